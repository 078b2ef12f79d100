#include "chaos.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the private cluster ------------------------------------------------ */

static int signal_cluster(struct chaos_pg *pg, int sig);

static void
pg_tmp(struct chaos_pg *pg, const char *action)
{
	if (h_sh("'%s/scripts/pg-tmp' %s '%s' >'%s.%s.log' 2>&1",
	    h_env("ST_SOURCE_DIR"), action, pg->dir, pg->dir, action) != 0)
		h_fail("scripts/pg-tmp %s %s failed (see %s.%s.log)", action,
		    pg->dir, pg->dir, action);
}

/* Reads the first line of path into buf; false if it cannot. */
static bool
read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	bool ok;

	if (f == NULL)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

void
chaos_pg_start(struct chaos_pg *pg, const char *name)
{
	char path[700], base[900], admin[1100];
	PGconn *db;

	memset(pg, 0, sizeof *pg);
	snprintf(pg->dir, sizeof pg->dir, "%s/run/%s", h_test_dir(), name);
	if (h_sh("mkdir -p '%s'", pg->dir) != 0)
		h_fail("cannot make %s", pg->dir);
	pg_tmp(pg, "start");
	pg->started = true;
	snprintf(path, sizeof path, "%s/conninfo", pg->dir);
	if (!read_line(path, base, sizeof base))
		h_fail("cannot read %s", path);
	snprintf(pg->conninfo, sizeof pg->conninfo, "%s dbname=strapontin",
	    base);
	snprintf(admin, sizeof admin, "%s dbname=postgres", base);
	db = h_db_connect(admin);
	h_db_exec(db, "CREATE DATABASE strapontin");
	/* pg-tmp trades durability for speed with synchronous_commit = off:
	 * then a commit is acknowledged before its WAL leaves the server's
	 * memory, and a crash loses it. A production server keeps the
	 * default, and so must a test of what a crash may lose. */
	h_db_exec(db, "ALTER SYSTEM SET synchronous_commit = on");
	h_db_exec(db, "SELECT pg_reload_conf()");
	PQfinish(db);
}

void
chaos_pg_stop(struct chaos_pg *pg)
{
	if (!pg->started)
		return;
	/* A frozen cluster would not stop; a crashed one has no process. */
	signal_cluster(pg, SIGCONT);
	h_sh("'%s/scripts/pg-tmp' stop '%s' >/dev/null 2>&1",
	    h_env("ST_SOURCE_DIR"), pg->dir);
	pg->started = false;
}

void
chaos_pg_crash(struct chaos_pg *pg)
{
	pg_tmp(pg, "crash");
}

void
chaos_pg_resume(struct chaos_pg *pg)
{
	pg_tmp(pg, "resume");
}

/* The parent pid in /proc/PID/stat, or -1. The command name (field 2) may
 * hold spaces and parentheses: parse from the last ')'. */
static pid_t
parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (!read_line(path, buf, sizeof buf) || (p = strrchr(buf, ')')) == NULL)
		return -1;
	if (sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/* Sends sig to the postmaster of pg and to its children; the number of
 * children signalled, or -1 if there is no running postmaster. */
static int
signal_cluster(struct chaos_pg *pg, int sig)
{
	char cluster[600], path[700], line[64];
	pid_t postmaster;
	struct dirent *e;
	DIR *proc;
	int n = 0;

	snprintf(path, sizeof path, "%s/cluster", pg->dir);
	if (!read_line(path, cluster, sizeof cluster))
		return -1;
	snprintf(path, sizeof path, "%s/data/postmaster.pid", cluster);
	if (!read_line(path, line, sizeof line) ||
	    (postmaster = (pid_t)atoi(line)) <= 0)
		return -1;
	/* The postmaster first when stopping, so that it forks no new
	 * process meanwhile; its children are then all there is. */
	if (sig == SIGSTOP && kill(postmaster, sig) != 0)
		return -1;
	if ((proc = opendir("/proc")) == NULL)
		return -1;
	while ((e = readdir(proc)) != NULL) {
		pid_t pid = (pid_t)atoi(e->d_name);

		if (pid > 0 && parent_of(pid) == postmaster &&
		    kill(pid, sig) == 0)
			n++;
	}
	closedir(proc);
	if (sig != SIGSTOP)
		kill(postmaster, sig);
	return n;
}

void
chaos_pg_freeze(struct chaos_pg *pg, bool freeze)
{
	if (signal_cluster(pg, freeze ? SIGSTOP : SIGCONT) <= 0)
		h_fail("no PostgreSQL processes to %s in %s",
		    freeze ? "stop" : "continue", pg->dir);
}

const char *
chaos_pg_ini(const struct chaos_pg *pg, const char *more)
{
	static char ini[3072];

	/* A later key wins over the harness's conninfos: the daemon, and
	 * --migrate and --add-admin, use the private cluster. */
	snprintf(ini, sizeof ini, "[database]\nconninfo = %s\n"
	    "migrate_conninfo = %s\n%s", pg->conninfo, pg->conninfo,
	    more ? more : "");
	return ini;
}

/* ---- the load ----------------------------------------------------------- */

struct load_thread {
	struct chaos_load *l;
	int index;
};

static void
sleep_ms(int ms)
{
	if (ms > 0)
		h_sleep_ms(ms);
}

/* A connection to daemon `which` with the referent's session, or NULL. */
static struct st_client *
session(struct chaos_load *l, int which, struct st_error *err)
{
	struct st_client *c = st_connect(&l->opt[which], err);
	json_t *p, *r = NULL;
	int rc;

	if (c == NULL)
		return NULL;
	p = json_pack("{s:s}", "token", l->token);
	rc = st_call(c, "auth.resume", p, &r, err);
	json_decref(p);
	json_decref(r);
	if (rc != ST_OK) {
		st_close(c);
		return NULL;
	}
	return c;
}

static void
note_bad(struct chaos_load *l, int *counter, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
note_bad(struct chaos_load *l, int *counter, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&l->lock);
	(*counter)++;
	if (l->tally.first_bad[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(l->tally.first_bad, sizeof l->tally.first_bad, fmt,
		    ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&l->lock);
}

static void
count(struct chaos_load *l, int *counter)
{
	pthread_mutex_lock(&l->lock);
	(*counter)++;
	pthread_mutex_unlock(&l->lock);
}

static void
add_ack(struct chaos_load *l, const json_t *r, int seats)
{
	json_t *id = json_object_get(r, "id"), *code = json_object_get(r,
	    "code");
	struct chaos_ack a = {0};

	if (!json_is_integer(id) || !json_is_string(code)) {
		/* Not h_json_str(): its buffer is not the thread's own. */
		char *text = json_dumps(r, JSON_COMPACT);

		note_bad(l, &l->tally.other, "a booking without id or code: %s",
		    text ? text : "?");
		free(text);
		return;
	}
	a.id = json_integer_value(id);
	snprintf(a.code, sizeof a.code, "%s", json_string_value(code));
	a.seats = seats;
	pthread_mutex_lock(&l->lock);
	if (l->nacks == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		if ((l->acks = realloc(l->acks, l->cap * sizeof *l->acks)) ==
		    NULL)
			abort();
	}
	l->acks[l->nacks++] = a;
	l->tally.ok++;
	pthread_mutex_unlock(&l->lock);
}

/* One booking.create; false if the connection is gone. */
static bool
book_once(struct chaos_load *l, struct st_client *c, int k)
{
	int seats = 1 + k % 2;
	json_int_t offer = l->offers[k % l->noffers],
	    ben = l->beneficiaries[(k / l->noffers) % l->nbeneficiaries];
	struct st_error err;
	json_t *p, *r = NULL;
	int rc;

	p = json_pack("{s:I, s:I, s:i}", "offer_id", offer, "beneficiary_id",
	    ben, "seats", seats);
	rc = st_call(c, "booking.create", p, &r, &err);
	json_decref(p);
	switch (rc) {
	case ST_OK:
		add_ack(l, r, seats);
		json_decref(r);
		return true;
	case ST_ERR_SERVER:
		if (err.code == 503 && strcmp(err.reason, "unavailable") == 0) {
			/* Back off, as a client should. */
			count(l, &l->tally.unavailable);
			sleep_ms(200);
		} else if (strcmp(err.reason, "sold_out") == 0)
			count(l, &l->tally.sold_out);
		else
			note_bad(l, &l->tally.other,
			    "booking %d of offer %lld: %s", k, (long long)offer,
			    st_strerror(&err));
		st_error_clear(&err);
		return true;
	case ST_ERR_TIMEOUT:
		note_bad(l, &l->tally.hung, "booking %d: no answer: %s", k,
		    st_strerror(&err));
		return false;
	case ST_ERR_IO:
	case ST_ERR_CONNECT:
	case ST_ERR_TLS:
		count(l, &l->tally.lost);
		return false;
	default:
		note_bad(l, &l->tally.other, "booking %d: %s", k,
		    st_strerror(&err));
		return false;
	}
}

static void *
load_thread(void *arg)
{
	struct load_thread *t = arg;
	struct chaos_load *l = t->l;
	int which = t->index % l->ndaemons, npairs = l->noffers *
	    l->nbeneficiaries;
	struct st_client *c = NULL;
	struct st_error err;

	while (!atomic_load(&l->stop)) {
		int k;

		if (c == NULL) {
			if ((c = session(l, which, &err)) == NULL) {
				/* Refused, or the database is down: the
				 * next daemon, after a pause. */
				if (err.status == ST_ERR_TIMEOUT)
					note_bad(l, &l->tally.hung, "resume: "
					    "no answer: %s", st_strerror(&err));
				else if (err.status != ST_ERR_SERVER)
					count(l, &l->tally.lost);
				st_error_clear(&err);
				which = (which + 1) % l->ndaemons;
				sleep_ms(100);
				continue;
			}
		}
		if ((k = atomic_fetch_add(&l->next, 1)) >= npairs)
			break;
		if (!book_once(l, c, k)) {
			st_close(c);
			c = NULL;
			which = (which + 1) % l->ndaemons;
		}
		sleep_ms(l->pause_ms);
	}
	st_close(c);
	free(t);
	return NULL;
}

void
chaos_load_start(struct chaos_load *l)
{
	int i;

	if (l->threads < 1 || l->threads > CHAOS_MAX_THREADS ||
	    l->ndaemons < 1 || l->ndaemons > CHAOS_MAX_DAEMONS)
		h_fail("chaos_load_start: bad thread or daemon count");
	atomic_init(&l->next, 0);
	atomic_init(&l->stop, false);
	pthread_mutex_init(&l->lock, NULL);
	memset(&l->tally, 0, sizeof l->tally);
	for (i = 0; i < l->threads; i++) {
		struct load_thread *t = calloc(1, sizeof *t);

		if (t == NULL)
			abort();
		t->l = l;
		t->index = i;
		if (pthread_create(&l->tid[i], NULL, load_thread, t) != 0)
			h_fail("pthread_create failed");
	}
}

struct chaos_tally
chaos_load_tally(struct chaos_load *l)
{
	struct chaos_tally t;

	pthread_mutex_lock(&l->lock);
	t = l->tally;
	pthread_mutex_unlock(&l->lock);
	return t;
}

int
chaos_load_acked(struct chaos_load *l)
{
	int n;

	pthread_mutex_lock(&l->lock);
	n = l->tally.ok;
	pthread_mutex_unlock(&l->lock);
	return n;
}

void
chaos_load_stop(struct chaos_load *l)
{
	const struct chaos_tally *t = &l->tally;
	int i;

	atomic_store(&l->stop, true);
	for (i = 0; i < l->threads; i++)
		pthread_join(l->tid[i], NULL);
	fprintf(stderr, "chaos: %d bookings tried: %d acknowledged, %d "
	    "unavailable, %d sold out, %d connections lost, %d hung, %d "
	    "other\n", t->ok + t->unavailable + t->sold_out + t->hung +
	    t->other, t->ok, t->unavailable, t->sold_out, t->lost, t->hung,
	    t->other);
	if (t->hung > 0 || t->other > 0)
		h_fail("%d requests hung and %d got an unexpected answer; the "
		    "first: %s", t->hung, t->other, t->first_bad);
}

void
chaos_load_free(struct chaos_load *l)
{
	free(l->acks);
	l->acks = NULL;
	l->nacks = l->cap = 0;
	pthread_mutex_destroy(&l->lock);
}

/* ---- checks --------------------------------------------------------------- */

void
chaos_check_rows(const char *conninfo, const struct chaos_ack *acks,
    size_t nacks)
{
	PGconn *db = h_db_connect(conninfo);
	size_t i;

	for (i = 0; i < nacks; i++) {
		char id[32];
		const char *values[2] = {id, acks[i].code};
		PGresult *res;

		snprintf(id, sizeof id, "%lld", (long long)acks[i].id);
		/* The code as the client got it: ticket_display(). */
		res = PQexecParams(db, "SELECT status, seats FROM bookings "
		    "WHERE id = $1 AND core.ticket_display(code) = $2", 2, NULL, values, NULL, NULL,
		    0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			h_fail("reading booking %s: %s", id,
			    PQerrorMessage(db));
		if (PQntuples(res) != 1)
			h_fail("acknowledged booking %s (code %s) is not in the "
			    "database", id, acks[i].code);
		if (strcmp(PQgetvalue(res, 0, 0), "confirmed") != 0 ||
		    atoi(PQgetvalue(res, 0, 1)) != acks[i].seats)
			h_fail("acknowledged booking %s is %s with %s seats, "
			    "not confirmed with %d", id, PQgetvalue(res, 0, 0),
			    PQgetvalue(res, 0, 1), acks[i].seats);
		PQclear(res);
	}
	/* The rows themselves, whatever the daemons said: live bookings fit
	 * and agree with the counter every booking moves. */
	assert_string_equal(h_db_exec(db,
	    "SELECT count(*) FROM offers o, LATERAL (SELECT coalesce(sum("
	    "b.seats), 0) AS live FROM bookings b WHERE b.offer_id = o.id AND "
	    "b.status IN ('confirmed', 'attended', 'no_show')) s "
	    "WHERE s.live > o.seats_total OR s.live <> o.seats_taken OR "
	    "o.seats_held <> 0"), "0");
	assert_string_equal(h_db_exec(db, "SELECT count(*) - count(DISTINCT "
	    "code) FROM bookings"), "0");
	PQfinish(db);
}

struct chaos_ack
chaos_book_until_ok(const struct h_daemon *d, const char *token,
    json_int_t offer, json_int_t beneficiary, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;
	struct st_options o = h_options(d);
	char last[600] = "nothing";
	struct chaos_ack a = {0};

	for (;;) {
		struct st_error err;
		struct st_client *c = st_connect(&o, &err);
		json_t *p, *r = NULL;
		int rc = ST_ERR_CONNECT;

		if (c != NULL) {
			p = json_pack("{s:s}", "token", token);
			rc = st_call(c, "auth.resume", p, &r, &err);
			json_decref(p);
			json_decref(r);
			r = NULL;
		}
		if (rc == ST_OK) {
			p = json_pack("{s:I, s:I, s:i}", "offer_id", offer,
			    "beneficiary_id", beneficiary, "seats", 1);
			rc = st_call(c, "booking.create", p, &r, &err);
			json_decref(p);
		}
		st_close(c);
		if (rc == ST_OK) {
			a.id = w_int(r, "id");
			snprintf(a.code, sizeof a.code, "%s", w_str(r, "code"));
			a.seats = 1;
			json_decref(r);
			return a;
		}
		/* Only unavailable may come while the service returns. */
		if (rc == ST_ERR_SERVER && strcmp(err.reason, "unavailable") != 0)
			h_fail("booking on %s while the service returns: %s",
			    d->name, st_strerror(&err));
		snprintf(last, sizeof last, "%s", st_strerror(&err));
		st_error_clear(&err);
		if (h_now_ms() > deadline)
			h_fail("no booking on %s within %d ms; last: %s",
			    d->name, timeout_ms, last);
		h_sleep_ms(250);
	}
}

const char *
chaos_ref_token(const struct h_daemon *d)
{
	static char token[128];
	struct st_client *c = h_connect(d);
	json_t *r = h_call_ok(c, "auth.login", json_pack("{s:s, s:s}", "email",
	    W_REF_EMAIL, "password", W_PASSWORD));

	snprintf(token, sizeof token, "%s", w_str(r, "token"));
	json_decref(r);
	st_close(c);
	return token;
}

/* ---- scenes ---------------------------------------------------------------- */

#define CHAOS_POLICY                                                           \
	"[policy]\nmax_upcoming_per_beneficiary = 1000\nmax_per_month = 1000\n"

void
chaos_scene_build(struct chaos_scene *s, const char *name, int ndaemons,
    struct chaos_pg *pg, const char *more_ini)
{
	char ini[4096], dname[64], first[32];
	struct st_error err;
	int64_t ids[CHAOS_BENEFICIARIES];
	int i;

	memset(s, 0, sizeof *s);
	s->pg = pg;
	s->ndaemons = ndaemons;
	if (pg != NULL)
		snprintf(ini, sizeof ini, "%s%s%s", chaos_pg_ini(pg, NULL),
		    CHAOS_POLICY, more_ini ? more_ini : "");
	else
		snprintf(ini, sizeof ini, "%s%s", CHAOS_POLICY,
		    more_ini ? more_ini : "");
	for (i = 0; i < ndaemons; i++) {
		snprintf(dname, sizeof dname, "%s%d", name, i + 1);
		s->d[i] = i == 0 ? h_daemon_start(dname, ini) :
		    h_daemon_start_same_db(s->d[0], dname, ini);
	}
	s->conninfo = pg != NULL ? pg->conninfo : s->d[0]->conninfo;
	world_build(&s->w, s->d[0]);
	for (i = 0; i < CHAOS_OFFERS; i++)
		/* One a day: no two at the same time. */
		s->offers[i] = w_offer(s->w.partner, CHAOS_SEATS, 2,
		    w_time((30 + i) * W_DAY));
	s->spare_offer = w_offer(s->w.partner, 2 * CHAOS_SPARES, 2,
	    w_time(60 * W_DAY));
	/* Pipelined: a hundred round trips would be slow under sanitizers. */
	for (i = 0; i < CHAOS_BENEFICIARIES; i++) {
		json_t *p;

		snprintf(first, sizeof first, "C%03d", i);
		p = json_pack("{s:s, s:s, s:b}", "first_name", first,
		    "last_name", "Chaos", "consent", 1);
		ids[i] = st_send(s->w.ref, "beneficiary.create", p, &err);
		json_decref(p);
		if (ids[i] < 0)
			h_fail("beneficiary.create: %s", st_strerror(&err));
	}
	for (i = 0; i < CHAOS_BENEFICIARIES; i++) {
		json_t *r;

		if (st_wait(s->w.ref, ids[i], &r, &err) != ST_OK)
			h_fail("beneficiary.create: %s", st_strerror(&err));
		s->beneficiaries[i] = w_int(r, "id");
		json_decref(r);
	}
	for (i = 0; i < CHAOS_SPARES; i++)
		s->spares[i] = w_beneficiary(s->w.ref, "Spare", "Chaos");
	snprintf(s->token, sizeof s->token, "%s", chaos_ref_token(s->d[0]));
}

void
chaos_load_init(struct chaos_load *l, const struct chaos_scene *s,
    int threads, int pause_ms)
{
	int i;

	memset(l, 0, sizeof *l);
	for (i = 0; i < s->ndaemons; i++) {
		l->opt[i] = h_options(s->d[i]);
		/* Generous: an answer later than this is a hang. */
		l->opt[i].timeout_ms = 30000;
	}
	l->ndaemons = s->ndaemons;
	snprintf(l->token, sizeof l->token, "%s", s->token);
	l->offers = s->offers;
	l->noffers = CHAOS_OFFERS;
	l->beneficiaries = s->beneficiaries;
	l->nbeneficiaries = CHAOS_BENEFICIARIES;
	l->threads = threads;
	l->pause_ms = pause_ms;
}

void
chaos_scene_recovered(struct chaos_scene *s, int i, int timeout_ms)
{
	if (s->spares_used == CHAOS_SPARES)
		h_fail("chaos_scene_recovered: no spare beneficiary left");
	s->extra[s->spares_used] = chaos_book_until_ok(s->d[i], s->token,
	    s->spare_offer, s->spares[s->spares_used], timeout_ms);
	s->spares_used++;
}

void
chaos_scene_check(struct chaos_scene *s, const struct chaos_load *l)
{
	if (l != NULL)
		chaos_check_rows(s->conninfo, l->acks, l->nacks);
	chaos_check_rows(s->conninfo, s->extra, (size_t)s->spares_used);
}

void
chaos_scene_close(struct chaos_scene *s)
{
	world_close(&s->w);
}
