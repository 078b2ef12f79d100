/*
 * The load: -j threads share -c connections; each connection keeps -P
 * requests in flight, sending the next one as soon as an answer comes
 * back (a closed loop, like pgbench and redis-benchmark). Every answer's
 * latency is kept, so the percentiles are exact.
 *
 * Each thread polls its own connections: the library reads and writes
 * with a per-call deadline, and st_read_message() with a timeout of 0
 * returns what has already arrived without blocking.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"

/* How long poll() sleeps at most, so that timeouts are noticed. */
#define POLL_MS 100

struct slot {
	int64_t id; /* 0: free */
	uint64_t t0_us;
	int seats; /* seats asked, for bookings (a group's staff included) */
	int staff; /* of which a group's staff seats */
};

struct bconn {
	struct st_client *c;
	struct slot *slots; /* -P of them */
	int inflight;
	bool dead;
};

struct shared {
	const struct bench_config *cfg;
	const struct bench_fixture *fx;
	atomic_llong claimed;	/* -n: requests handed out so far */
	atomic_llong next_pair; /* booking workloads: next request's k */
	int64_t npairs;
	uint64_t start_us;
	uint64_t deadline_us;	 /* -T: no new request after this */
	pthread_barrier_t ready; /* every thread connected */
	pthread_barrier_t go;	 /* start_us set */
	atomic_bool abort;
};

struct worker {
	pthread_t tid;
	struct shared *sh;
	int nconns;
	struct bconn *conns;
	struct pollfd *pfds;
	struct bconn **pconns;
	struct bench_stats st;
	uint64_t last_answer_us;
	bool setup_failed;
};

uint64_t
bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void note_error(struct bench_stats *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note_error(struct bench_stats *st, const char *fmt, ...)
{
	va_list ap;

	if (st->first_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(st->first_error, sizeof st->first_error, fmt, ap);
	va_end(ap);
}

static int
lat_push(struct bench_stats *st, uint64_t us)
{
	uint32_t *p;
	size_t cap;

	if (st->nlat == st->cap) {
		cap = st->cap ? st->cap * 2 : 4096;
		if ((p = realloc(st->lat_us, cap * sizeof *p)) == NULL)
			return -1;
		st->lat_us = p;
		st->cap = cap;
	}
	st->lat_us[st->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	return 0;
}

/* May this thread send one more request? With both -T and -n, the first
 * limit reached ends the run: a booking run stops before it runs out of
 * (offer, beneficiary) pairs. */
static bool
may_send(struct shared *sh)
{
	if (atomic_load(&sh->abort))
		return false;
	if (sh->cfg->seconds > 0 && bench_now_us() >= sh->deadline_us)
		return false;
	if (sh->cfg->requests > 0)
		return atomic_fetch_add(&sh->claimed, 1) < sh->cfg->requests;
	return true;
}

/* booking.create_group of group g on offer: its people and staff. */
static json_t *
group_params(const struct bench_fixture *fx, int64_t offer, int64_t g)
{
	json_t *ids = json_array();
	int i;

	for (i = 0; i < fx->group_size; i++)
		json_array_append_new(ids, json_integer(
		    fx->beneficiaries[g * fx->group_size + i]));
	return json_pack("{s:I, s:o, s:i}", "offer_id", (json_int_t)offer,
			 "beneficiary_ids", ids, "staff_seats",
			 fx->staff_seats);
}

/* The next request of the workload: method and params (new reference or
 * NULL), the seats it books and how many of them are a group's staff. */
static const char *
next_request(struct shared *sh, json_t **params, int *seats, int *staff)
{
	const struct bench_fixture *fx = sh->fx;
	int64_t k, idx, offer, ben;

	*params = NULL;
	*seats = 0;
	*staff = 0;
	switch (sh->cfg->workload) {
	case BW_PING:
		return "system.ping";
	case BW_OFFER_LIST:
		*params = json_pack("{s:i}", "limit", sh->cfg->list_limit);
		return "offer.list";
	case BW_BOOK_UNIFORM:
		/* Pair k of a permutation of all (offer, beneficiary)
		 * pairs: each pair once until all were taken. */
		k = atomic_fetch_add(&sh->next_pair, 1);
		idx = (k % sh->npairs) * fx->stride % sh->npairs;
		offer = fx->offers[idx % fx->noffers];
		ben = fx->beneficiaries[idx / fx->noffers];
		break;
	case BW_BOOK_GROUP:
		/* The same permutation over (offer, group) pairs: a person
		 * is in one group, so books an offer once. */
		k = atomic_fetch_add(&sh->next_pair, 1);
		idx = (k % sh->npairs) * fx->stride % sh->npairs;
		*params = group_params(fx, fx->offers[idx % fx->noffers],
				       idx / fx->noffers);
		*staff = fx->staff_seats;
		*seats = fx->group_size + fx->staff_seats;
		return "booking.create_group";
	case BW_BOOK_HOT:
	default:
		k = atomic_fetch_add(&sh->next_pair, 1);
		offer = fx->offers[0];
		ben = fx->beneficiaries[k % fx->nbeneficiaries];
		break;
	}
	*seats = 1;
	*params = json_pack("{s:I, s:I, s:i}", "offer_id", (json_int_t)offer,
			    "beneficiary_id", (json_int_t)ben, "seats", *seats);
	return "booking.create";
}

/* A connection is lost: what it had in flight has an unknown fate. */
static void
conn_kill(struct worker *w, struct bconn *bc, const char *why)
{
	int i;

	note_error(&w->st, "connection lost: %s", why);
	for (i = 0; i < w->sh->cfg->pipeline; i++) {
		if (bc->slots[i].id == 0)
			continue;
		w->st.errors++;
		w->st.seats_unknown += bc->slots[i].seats;
		bc->slots[i].id = 0;
	}
	bc->inflight = 0;
	bc->dead = true;
	st_close(bc->c);
	bc->c = NULL;
}

static void
conn_fill(struct worker *w, struct bconn *bc)
{
	struct st_error err = {0};
	json_t *params;
	const char *method;
	int64_t id;
	int i, seats, staff;

	while (!bc->dead && bc->inflight < w->sh->cfg->pipeline &&
	       may_send(w->sh)) {
		for (i = 0; bc->slots[i].id != 0; i++)
			;
		method = next_request(w->sh, &params, &seats, &staff);
		bc->slots[i].t0_us = bench_now_us();
		id = st_send(bc->c, method, params, &err);
		json_decref(params);
		if (id < 0) {
			/* Nothing may have reached the server, or some: the
			 * request counts as lost. */
			bc->slots[i].id = -1;
			bc->slots[i].seats = seats;
			bc->slots[i].staff = staff;
			bc->inflight++;
			conn_kill(w, bc, st_strerror(&err));
			return;
		}
		bc->slots[i].id = id;
		bc->slots[i].seats = seats;
		bc->slots[i].staff = staff;
		bc->inflight++;
	}
}

static bool
is_refusal(const char *reason)
{
	static const char *const refusals[] = {
	    "sold_out",	       "duplicate",	  "limit_reached",
	    "deadline_passed", "offer_cancelled", NULL};
	int i;

	for (i = 0; refusals[i] != NULL; i++)
		if (strcmp(reason, refusals[i]) == 0)
			return true;
	return false;
}

/* An answer: its latency, and what it says. */
static void
take_answer(struct worker *w, struct bconn *bc, json_t *msg)
{
	struct bench_stats *st = &w->st;
	json_t *id = json_object_get(msg, "id"), *e, *data;
	const char *reason;
	uint64_t now;
	int i, p = w->sh->cfg->pipeline;

	if (!json_is_integer(id))
		return; /* an event, or an answer to nothing we sent */
	for (i = 0; i < p && bc->slots[i].id != json_integer_value(id); i++)
		;
	if (i == p)
		return;
	now = bench_now_us();
	w->last_answer_us = now;
	if (lat_push(st, now - bc->slots[i].t0_us) != 0) {
		note_error(st, "out of memory");
		atomic_store(&w->sh->abort, true);
	}
	bc->slots[i].id = 0;
	bc->inflight--;

	if ((e = json_object_get(msg, "error")) == NULL) {
		st->ok++;
		st->seats_acked += bc->slots[i].seats;
		st->staff_acked += bc->slots[i].staff;
		return;
	}
	data = json_object_get(e, "data");
	reason = json_string_value(json_object_get(data, "reason"));
	if (reason == NULL)
		reason = "?";
	if (bench_is_booking(w->sh->cfg->workload) && is_refusal(reason)) {
		st->refused++;
		if (strcmp(reason, "sold_out") == 0)
			st->refused_sold_out++;
		else if (strcmp(reason, "duplicate") == 0)
			st->refused_duplicate++;
		else if (strcmp(reason, "limit_reached") == 0)
			st->refused_limit++;
		else
			st->refused_other++;
		return;
	}
	st->errors++;
	/* "unavailable" may come after the database received the query:
	 * like an internal error, the booking may or may not exist. */
	st->seats_unknown += bc->slots[i].seats;
	note_error(st, "%s: %s", reason,
		   json_string_value(json_object_get(e, "message")) ?: "");
}

/* Reads every whole answer that has arrived, then tops the pipeline up. */
static void
conn_service(struct worker *w, struct bconn *bc)
{
	struct st_error err = {0};
	json_t *msg;
	int r;

	while (!bc->dead && bc->inflight > 0) {
		r = st_read_message(bc->c, &msg, 0, &err);
		if (r == ST_ERR_TIMEOUT)
			break;
		if (r != ST_OK) {
			conn_kill(w, bc, st_strerror(&err));
			st_error_clear(&err);
			return;
		}
		take_answer(w, bc, msg);
		json_decref(msg);
	}
	conn_fill(w, bc);
}

/* Connections whose oldest request waited longer than the timeout are
 * given up. */
static void
check_timeouts(struct worker *w)
{
	uint64_t now = bench_now_us(), limit;
	int i, j;

	limit = (uint64_t)w->sh->cfg->opt.timeout_ms * 1000u;
	for (i = 0; i < w->nconns; i++) {
		struct bconn *bc = &w->conns[i];

		if (bc->dead || bc->inflight == 0)
			continue;
		for (j = 0; j < w->sh->cfg->pipeline; j++)
			if (bc->slots[j].id > 0 &&
			    now - bc->slots[j].t0_us > limit) {
				conn_kill(w, bc,
					  "no answer within the timeout");
				break;
			}
	}
}

static int
worker_connect(struct worker *w)
{
	const struct bench_config *cfg = w->sh->cfg;
	struct st_error err = {0};
	json_t *p;
	int i, r;

	for (i = 0; i < w->nconns; i++) {
		struct bconn *bc = &w->conns[i];

		if ((bc->c = st_connect(&cfg->opt, &err)) == NULL) {
			bench_warnx("%s: %s", cfg->server, st_strerror(&err));
			return -1;
		}
		if (cfg->workload == BW_PING)
			continue;
		p = json_pack("{s:s}", "token", w->sh->fx->token);
		r = st_call(bc->c, "auth.resume", p, NULL, &err);
		json_decref(p);
		if (r != ST_OK) {
			bench_warnx("auth.resume: %s", st_strerror(&err));
			st_error_clear(&err);
			return -1;
		}
	}
	return 0;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	int i, n, r;

	if (worker_connect(w) != 0) {
		w->setup_failed = true;
		atomic_store(&sh->abort, true);
	}
	pthread_barrier_wait(&sh->ready);
	pthread_barrier_wait(&sh->go);
	if (atomic_load(&sh->abort))
		return NULL;

	for (i = 0; i < w->nconns; i++)
		conn_fill(w, &w->conns[i]);
	for (;;) {
		n = 0;
		for (i = 0; i < w->nconns; i++) {
			struct bconn *bc = &w->conns[i];

			if (bc->dead || bc->inflight == 0)
				continue;
			/* poll() cannot see what the library already
			 * read. */
			if (st_buffered(bc->c)) {
				conn_service(w, bc);
				if (bc->dead || bc->inflight == 0)
					continue;
			}
			w->pfds[n].fd = st_fd(bc->c);
			w->pfds[n].events = POLLIN;
			w->pfds[n].revents = 0;
			w->pconns[n++] = bc;
		}
		if (n == 0)
			break;
		r = poll(w->pfds, (nfds_t)n, POLL_MS);
		if (r < 0 && errno != EINTR) {
			note_error(&w->st, "poll: %s", strerror(errno));
			for (i = 0; i < n; i++)
				conn_kill(w, w->pconns[i], "poll failed");
			break;
		}
		for (i = 0; i < n && r > 0; i++)
			if (w->pfds[i].revents != 0)
				conn_service(w, w->pconns[i]);
		check_timeouts(w);
	}
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Adds w's counters to into, and moves its latencies there. */
static int
stats_merge(struct bench_stats *into, struct bench_stats *from)
{
	uint32_t *p;

	if (from->nlat > 0) {
		if ((p = realloc(into->lat_us, (into->nlat + from->nlat) *
						   sizeof *p)) == NULL)
			return -1;
		memcpy(p + into->nlat, from->lat_us, from->nlat * sizeof *p);
		into->lat_us = p;
		into->nlat += from->nlat;
		into->cap = into->nlat;
	}
	into->ok += from->ok;
	into->refused += from->refused;
	into->refused_sold_out += from->refused_sold_out;
	into->refused_duplicate += from->refused_duplicate;
	into->refused_limit += from->refused_limit;
	into->refused_other += from->refused_other;
	into->errors += from->errors;
	into->seats_acked += from->seats_acked;
	into->staff_acked += from->staff_acked;
	into->seats_unknown += from->seats_unknown;
	if (into->first_error[0] == '\0')
		memcpy(into->first_error, from->first_error,
		       sizeof into->first_error);
	return 0;
}

void
bench_stats_free(struct bench_stats *st)
{
	free(st->lat_us);
	memset(st, 0, sizeof *st);
}

static double
tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int
bench_run(const struct bench_config *cfg, const struct bench_fixture *fx,
	  struct bench_result *res)
{
	struct shared sh;
	struct worker *ws;
	struct rusage ru0, ru1;
	uint64_t last = 0;
	int t, i, ret = -1, per, extra;

	memset(res, 0, sizeof *res);
	memset(&sh, 0, sizeof sh);
	sh.cfg = cfg;
	sh.fx = fx;
	atomic_init(&sh.claimed, 0);
	atomic_init(&sh.next_pair, 0);
	atomic_init(&sh.abort, false);
	sh.npairs = (int64_t)fx->noffers *
		    (cfg->workload == BW_BOOK_GROUP ? fx->ngroups
						    : fx->nbeneficiaries);
	if (bench_is_booking(cfg->workload) &&
	    (fx->noffers == 0 || fx->nbeneficiaries == 0 ||
	     (cfg->workload == BW_BOOK_GROUP && fx->ngroups == 0))) {
		bench_warnx("no offers or no beneficiaries to book");
		return -1;
	}
	if ((ws = calloc((size_t)cfg->threads, sizeof *ws)) == NULL) {
		bench_warnx("out of memory");
		return -1;
	}
	pthread_barrier_init(&sh.ready, NULL, (unsigned)cfg->threads + 1);
	pthread_barrier_init(&sh.go, NULL, (unsigned)cfg->threads + 1);

	per = cfg->clients / cfg->threads;
	extra = cfg->clients % cfg->threads;
	for (t = 0; t < cfg->threads; t++) {
		struct worker *w = &ws[t];

		w->sh = &sh;
		w->nconns = per + (t < extra);
		w->conns = calloc((size_t)w->nconns, sizeof *w->conns);
		w->pfds = calloc((size_t)w->nconns, sizeof *w->pfds);
		w->pconns = calloc((size_t)w->nconns, sizeof *w->pconns);
		if (w->conns == NULL || w->pfds == NULL || w->pconns == NULL)
			goto oom;
		for (i = 0; i < w->nconns; i++) {
			w->conns[i].slots =
			    calloc((size_t)cfg->pipeline, sizeof(struct slot));
			if (w->conns[i].slots == NULL)
				goto oom;
		}
	}
	for (t = 0; t < cfg->threads; t++) {
		if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) !=
		    0) {
			/* The threads already started would wait forever at
			 * the barrier: nothing to do but end. */
			bench_warnx("cannot start %d threads", cfg->threads);
			exit(2);
		}
	}
	pthread_barrier_wait(&sh.ready);
	getrusage(RUSAGE_SELF, &ru0);
	sh.start_us = bench_now_us();
	if (cfg->seconds > 0)
		sh.deadline_us = sh.start_us + (uint64_t)(cfg->seconds * 1e6);
	pthread_barrier_wait(&sh.go);
	for (t = 0; t < cfg->threads; t++)
		pthread_join(ws[t].tid, NULL);
	getrusage(RUSAGE_SELF, &ru1);

	ret = 0;
	for (t = 0; t < cfg->threads; t++) {
		if (ws[t].setup_failed)
			ret = -1;
		if (ws[t].last_answer_us > last)
			last = ws[t].last_answer_us;
		if (stats_merge(&res->st, &ws[t].st) != 0) {
			bench_warnx("out of memory");
			ret = -1;
		}
	}
	res->elapsed_s =
	    last > sh.start_us ? (double)(last - sh.start_us) / 1e6 : 0;
	res->cpu_user_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime);
	res->cpu_sys_s = tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
	if (res->st.nlat > 0)
		qsort(res->st.lat_us, res->st.nlat, sizeof res->st.lat_us[0],
		      cmp_u32);
	goto out;
oom:
	bench_warnx("out of memory");
out:
	for (t = 0; t < cfg->threads; t++) {
		struct worker *w = &ws[t];

		for (i = 0; w->conns != NULL && i < w->nconns; i++) {
			st_close(w->conns[i].c);
			free(w->conns[i].slots);
		}
		free(w->conns);
		free(w->pfds);
		free(w->pconns);
		bench_stats_free(&w->st);
	}
	pthread_barrier_destroy(&sh.ready);
	pthread_barrier_destroy(&sh.go);
	free(ws);
	return ret;
}
