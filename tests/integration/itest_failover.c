/*
 * The database fails over under load (docs/scaling.md, "Failover"): a
 * primary and a streaming standby made by scripts/pg-tmp (pg_basebackup
 * -R), synchronous replication on, two daemons whose conninfo names both
 * hosts with target_session_attrs=read-write. Four clients book through
 * both daemons and record every booking they were told is made; the
 * primary is stopped hard (pg_ctl stop -m immediate) in the middle, the
 * standby promoted, and the clients go on booking (retrying what was
 * answered `unavailable` with the same idempotency key) on the new
 * primary, which the daemons must find by themselves.
 *
 * Afterwards, on the new primary: every acknowledged booking is there, as
 * it was acknowledged; no offer is overbooked (seats_taken is the sum of
 * its live bookings and at most its seats); and the outbox listener of
 * each daemon followed too (an offer published after the failover reaches
 * a subscriber of each daemon).
 */
#include "world.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKERS 4
#define BENEFICIARIES 25        /* per worker */
#define OFFERS 5
#define MAX_ACKS (WORKERS * BENEFICIARIES * OFFERS)
/* Enough bookings on each side of the failover to matter. */
#define BEFORE 30
#define AFTER 30

static char p_dir[600], s_dir[600];
static bool clusters;

struct ack {
	json_int_t booking, offer;
	int seats;
};

static struct ack acks[MAX_ACKS];
static int nacks, acks_after;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool stop, promoted;
static json_int_t offers[OFFERS];

struct worker {
	pthread_t th;
	int index;
	struct st_client *c;
	json_int_t ben[BENEFICIARIES];
	int unavailable;
	char error[700];        /* an answer no booking client expects (mu) */
};

static int
teardown(void **state)
{
	(void)state;
	/* Stopped hard first: a clean shutdown's checkpoint costs seconds
	 * and these clusters are thrown away. */
	if (clusters) {
		h_sh("S='%s/scripts/pg-tmp'; for d in '%s' '%s'; do "
		    "\"$S\" crash \"$d\"; \"$S\" stop \"$d\"; done "
		    ">/dev/null 2>&1", h_env("ST_SOURCE_DIR"), s_dir, p_dir);
	}
	clusters = false;
	return 0;
}

static void
record(const json_t *booking)
{
	/* Not w_int(): a worker thread must not fail the test itself. */
	pthread_mutex_lock(&mu);
	acks[nacks].booking = json_integer_value(json_object_get(booking,
	    "id"));
	acks[nacks].offer = json_integer_value(json_object_get(booking,
	    "offer_id"));
	acks[nacks].seats = (int)json_integer_value(json_object_get(booking,
	    "seats"));
	nacks++;
	if (promoted)
		acks_after++;
	pthread_mutex_unlock(&mu);
}

/* Books each (beneficiary, offer) pair once, retrying `unavailable` with
 * the same idempotency key until the database answers. */
static void *
work(void *arg)
{
	struct worker *w = arg;
	struct st_error err;
	char key[64];
	int b, o;

	for (b = 0; b < BENEFICIARIES && !stop; b++) {
		for (o = 0; o < OFFERS && !stop; o++) {
			snprintf(key, sizeof key, "failover-%d-%d-%d", w->index,
			    b, o);
			while (!stop) {
				json_t *r = NULL, *p = json_pack("{s:I, s:I, "
				    "s:i, s:s}", "offer_id", offers[o],
				    "beneficiary_id", w->ben[b], "seats",
				    1 + (b + o) % 2, "idempotency_key", key);
				int rc = st_call(w->c, "booking.create", p, &r,
				    &err);

				json_decref(p);
				if (rc == ST_OK) {
					record(r);
					json_decref(r);
					break;
				}
				if (rc == ST_ERR_SERVER &&
				    strcmp(err.reason, "unavailable") == 0) {
					st_error_clear(&err);
					w->unavailable++;
					h_sleep_ms(20);
					continue;
				}
				if (rc == ST_ERR_SERVER &&
				    strcmp(err.reason, "sold_out") == 0) {
					st_error_clear(&err);
					break;
				}
				pthread_mutex_lock(&mu);
				snprintf(w->error, sizeof w->error,
				    "worker %d, %s: %s (%.400s)", w->index, key,
				    err.reason, err.message);
				pthread_mutex_unlock(&mu);
				st_error_clear(&err);
				return NULL;
			}
			h_sleep_ms(10);
		}
	}
	return NULL;
}

/* Waits until at least n bookings were acknowledged (after the promotion
 * if after), or fails the test. */
static void
wait_acks(int n, bool after, struct worker *w)
{
	long long deadline = h_now_ms() + 30000LL * h_timeout_scale();
	int i, got;

	for (;;) {
		char error[700] = "";

		pthread_mutex_lock(&mu);
		got = after ? acks_after : nacks;
		for (i = 0; i < WORKERS; i++)
			if (w[i].error[0])
				memcpy(error, w[i].error, sizeof error);
		pthread_mutex_unlock(&mu);
		if (error[0])
			h_fail("%s", error);
		if (got >= n)
			return;
		if (h_now_ms() > deadline)
			h_fail("only %d bookings acknowledged%s within 30 s", got,
			    after ? " after the promotion" : "");
		h_sleep_ms(20);
	}
}

/* The next offer.published event for offer o within 1 s, else false. */
static bool
saw_offer(struct st_client *c, json_int_t o)
{
	struct st_error err;
	json_t *ev;
	bool seen = false;

	while (!seen && st_next_event(c, &ev, 1000, &err) == ST_OK) {
		seen = strcmp(w_str(ev, "topic"), "offer.published") == 0 &&
		    w_int(json_object_get(ev, "data"), "id") == o;
		json_decref(ev);
	}
	return seen;
}

/* The outbox listener of each daemon is back, on the new primary: an
 * offer published now reaches the subscribers of both. Offers are
 * published again until they do, as notifications sent while a listener
 * was reconnecting are lost (its subscribers get a resync). */
static void
check_listeners(struct st_client *partner, struct st_client *sub1,
    struct st_client *sub2)
{
	long long deadline = h_now_ms() + 20000LL * h_timeout_scale();
	bool got1 = false, got2 = false;

	while (!(got1 && got2)) {
		json_int_t o;

		if (h_now_ms() > deadline)
			h_fail("no offer.published event after the failover "
			    "(daemon 1: %s, daemon 2: %s)", got1 ? "yes" : "no",
			    got2 ? "yes" : "no");
		o = w_offer(partner, 5, 1, NULL);
		got1 = got1 || saw_offer(sub1, o);
		got2 = got2 || saw_offer(sub2, o);
	}
}

/* One booking.create; its error reason, or "" when it was made. */
static const char *
try_book(struct st_client *c, json_int_t offer, json_int_t beneficiary)
{
	static char reason[64];
	struct st_error err;
	json_t *r = NULL, *p = json_pack("{s:I, s:I, s:i}", "offer_id", offer,
	    "beneficiary_id", beneficiary, "seats", 1);
	int rc = st_call(c, "booking.create", p, &r, &err);

	json_decref(p);
	json_decref(r);
	if (rc == ST_OK)
		return "";
	if (rc != ST_ERR_SERVER)
		h_fail("booking.create: %s", st_strerror(&err));
	snprintf(reason, sizeof reason, "%s", err.reason);
	st_error_clear(&err);
	return reason;
}

/* A primary that turns read-only under the daemon (SQLSTATE 25006 on
 * every write, as a demoted server would answer): the daemon drops those
 * connections and answers `unavailable` (the client retries), never an
 * internal error, and takes the server back once it accepts writes. */
static void
check_read_only(struct world *wd, const struct h_daemon *d,
    const char *conninfo)
{
	PGconn *db = h_db_connect(conninfo);
	json_int_t offer = w_offer(wd->partner, 40, 1, NULL), ben[20];
	long long deadline;
	const char *reason = "";
	int i;

	for (i = 0; i < 20; i++)
		ben[i] = w_beneficiary(wd->ref, "Lecture", "Seule");
	h_db_exec(db, "ALTER SYSTEM SET default_transaction_read_only = on");
	h_db_exec(db, "SELECT pg_reload_conf()");
	/* Bookings go through until the sessions have reloaded, which
	 * idle sessions do at once: a few seconds at most. */
	for (i = 0; i < 19; i++) {
		reason = try_book(wd->ref, offer, ben[i]);
		if (reason[0] != '\0')
			break;
		h_sleep_ms(250 * h_timeout_scale());
	}
	if (strcmp(reason, "unavailable") != 0)
		h_fail("booking.create on a read-only primary: \"%s\", not "
		    "unavailable", reason);
	assert_true(h_log_contains(d, "read-only (SQLSTATE 25006)"));

	h_db_exec(db, "ALTER SYSTEM RESET default_transaction_read_only");
	h_db_exec(db, "SELECT pg_reload_conf()");
	PQfinish(db);
	deadline = h_now_ms() + 20000LL * h_timeout_scale();
	while ((reason = try_book(wd->ref, offer, ben[19]))[0] != '\0') {
		if (strcmp(reason, "unavailable") != 0)
			h_fail("booking.create once writable again: %s", reason);
		if (h_now_ms() > deadline)
			h_fail("the daemon did not take the primary back once "
			    "writable");
		h_sleep_ms(100);
	}
}

static void
test_failover_under_load(void **state)
{
	char ini[3000], admin[1400], conninfo[700], sql[256];
	const char *pport, *sport;
	struct h_daemon *d1, *d2;
	struct worker w[WORKERS];
	struct world wd;
	struct st_client *sub1, *sub2;
	PGconn *db;
	int i, b, missing = 0, unavailable = 0;

	(void)state;
	snprintf(p_dir, sizeof p_dir, "%s/run/failover_primary", h_test_dir());
	snprintf(s_dir, sizeof s_dir, "%s/run/failover_standby", h_test_dir());
	clusters = true;
	h_sh("mkdir -p '%s/run'", h_test_dir());
	snprintf(admin, sizeof admin, "start '%s'", p_dir);
	h_pg_tmp(p_dir, "%s", admin);
	snprintf(admin, sizeof admin, "%s dbname=postgres",
	    h_cluster_file(p_dir, "conninfo"));
	db = h_db_connect(admin);
	h_db_exec(db, "CREATE DATABASE strapontin OWNER strapontin_owner");
	PQfinish(db);
	snprintf(admin, sizeof admin, "standby '%s' '%s'", s_dir, p_dir);
	h_pg_tmp(p_dir, "%s", admin);
	snprintf(admin, sizeof admin, "sync '%s'", p_dir);
	h_pg_tmp(p_dir, "%s", admin);

	/* Both servers by address, the primary first; libpq skips the one
	 * that is down or read-only. */
	pport = h_cluster_file(p_dir, "port");
	sport = h_cluster_file(s_dir, "port");
	snprintf(conninfo, sizeof conninfo, "host=127.0.0.1,127.0.0.1 "
	    "port=%s,%s dbname=strapontin target_session_attrs=read-write "
	    "connect_timeout=2", pport, sport);
	snprintf(ini, sizeof ini, "[database]\nconninfo = %s user=%s\n"
	    "migrate_conninfo = %s user=%s\n"
	    "[policy]\nmax_upcoming_per_beneficiary = 100\n"
	    "max_per_month = 100\n", conninfo, H_RUNTIME_ROLE, conninfo,
	    H_OWNER_ROLE);
	d1 = h_daemon_start("failover1", ini);
	d2 = h_daemon_start_same_db(d1, "failover2", ini);

	world_build(&wd, d1);
	/* One small offer sells out: refusals happen on both servers. */
	offers[0] = w_offer(wd.partner, 12, 2, NULL);
	for (i = 1; i < OFFERS; i++)
		offers[i] = w_offer(wd.partner, 120, 2, NULL);
	sub1 = h_login(d1, W_PARTNER_EMAIL, W_PASSWORD);
	sub2 = h_login(d2, W_PARTNER_EMAIL, W_PASSWORD);
	json_decref(h_call_ok(sub1, "events.subscribe",
	    json_pack("{s:[s]}", "topics", "offer.published")));
	json_decref(h_call_ok(sub2, "events.subscribe",
	    json_pack("{s:[s]}", "topics", "offer.published")));
	for (i = 0; i < WORKERS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].index = i;
		w[i].c = h_login(i % 2 ? d2 : d1, W_REF_EMAIL, W_PASSWORD);
		for (b = 0; b < BENEFICIARIES; b++) {
			char first[32];

			snprintf(first, sizeof first, "W%dB%d", i, b);
			w[i].ben[b] = w_beneficiary(wd.ref, first, "Failover");
		}
	}

	for (i = 0; i < WORKERS; i++)
		if (pthread_create(&w[i].th, NULL, work, &w[i]) != 0)
			h_fail("pthread_create");
	wait_acks(BEFORE, false, w);
	/* Mid-load, as a power cut would. */
	snprintf(admin, sizeof admin, "crash '%s'", p_dir);
	h_pg_tmp(p_dir, "%s", admin);
	snprintf(admin, sizeof admin, "promote '%s'", s_dir);
	h_pg_tmp(p_dir, "%s", admin);
	promoted = true;
	wait_acks(AFTER, true, w);
	stop = true;
	for (i = 0; i < WORKERS; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].error[0])
			h_fail("%s", w[i].error);
		unavailable += w[i].unavailable;
	}
	fprintf(stderr, "failover: %d bookings acknowledged, %d after the "
	    "promotion; %d answers `unavailable` retried\n", nacks, acks_after,
	    unavailable);

	/* On the new primary: every acknowledged booking, as told. */
	snprintf(admin, sizeof admin, "%s dbname=strapontin",
	    h_cluster_file(s_dir, "conninfo"));
	db = h_db_connect(admin);
	assert_string_equal(h_db_exec(db, "SELECT pg_is_in_recovery()"), "f");
	for (i = 0; i < nacks; i++) {
		snprintf(sql, sizeof sql, "SELECT count(*) FROM bookings WHERE "
		    "id = %lld AND offer_id = %lld AND seats = %d AND status = "
		    "'confirmed'", (long long)acks[i].booking,
		    (long long)acks[i].offer, acks[i].seats);
		if (strcmp(h_db_exec(db, sql), "1") != 0) {
			fprintf(stderr, "booking %lld (offer %lld, %d seats) "
			    "acknowledged but not on the new primary\n",
			    (long long)acks[i].booking,
			    (long long)acks[i].offer, acks[i].seats);
			missing++;
		}
	}
	assert_int_equal(missing, 0);
	/* No offer overbooked (docs/booking-rules.md invariant 1). */
	assert_string_equal(h_db_exec(db,
	    "SELECT count(*) FROM offers o WHERE o.seats_taken <> "
	    "(SELECT coalesce(sum(seats), 0) FROM bookings b WHERE b.offer_id "
	    "= o.id AND b.status IN ('confirmed', 'attended', 'no_show')) OR "
	    "o.seats_taken + o.seats_held > o.seats_total"), "0");
	PQfinish(db);

	check_listeners(wd.partner, sub1, sub2);
	snprintf(admin, sizeof admin, "%s dbname=strapontin",
	    h_cluster_file(s_dir, "conninfo"));
	check_read_only(&wd, d1, admin);

	st_close(sub1);
	st_close(sub2);
	for (i = 0; i < WORKERS; i++)
		st_close(w[i].c);
	world_close(&wd);
	assert_int_equal(h_daemon_stop(d1), 0);
	assert_int_equal(h_daemon_stop(d2), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_failover_under_load, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
