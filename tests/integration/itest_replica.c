/*
 * The read pool on a standby and its staleness bound (docs/scaling.md,
 * "Read replicas"): a daemon with [database] replica_conninfo naming a
 * streaming standby made by scripts/pg-tmp and replica_max_lag = 1 s.
 *
 * offer.list reads from the replica while it keeps up (the standby's own
 * statistics count the scans). Its replay is then paused and an offer
 * published on the primary: once the lag passes the bound the daemon says
 * so and offer.list answers from the primary, so the new offer is in it.
 * Replay resumed, the daemon says the replica is back and offer.list reads
 * from it again.
 */
#include "web.h"
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UP "replica is up and within replica_max_lag"
#define DOWN "replica is down or behind by more than replica_max_lag"

static char p_dir[600], s_dir[600];
static bool clusters;

static int
teardown(void **state)
{
	(void)state;
	/* Stopped hard first: these clusters are thrown away. */
	if (clusters)
		h_sh("S='%s/scripts/pg-tmp'; for d in '%s' '%s'; do "
		    "\"$S\" crash \"$d\"; \"$S\" stop \"$d\"; done "
		    ">/dev/null 2>&1", h_env("ST_SOURCE_DIR"), s_dir, p_dir);
	clusters = false;
	return 0;
}

/* Index and sequential scans of offers on the standby, by its own
 * statistics: only offer.list (of what this test calls) reads them. */
static long long
standby_offer_scans(void)
{
	char conninfo[800];
	PGconn *db;
	long long n;

	snprintf(conninfo, sizeof conninfo, "%s dbname=strapontin",
	    h_cluster_file(s_dir, "conninfo"));
	db = h_db_connect(conninfo);
	n = atoll(h_db_exec(db, "SELECT coalesce(seq_scan, 0) + "
	    "coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = "
	    "'offers'"));
	PQfinish(db);
	return n;
}

static bool
list_has(struct st_client *c, json_int_t offer)
{
	json_t *r = h_call_ok(c, "offer.list", json_object());
	json_t *items = json_object_get(r, "items"), *it;
	size_t i;
	bool found = false;

	if (!json_is_array(items))
		h_fail("offer.list: no items in %s", h_json_str(r));
	json_array_foreach(items, i, it)
		if (w_int(it, "id") == offer)
			found = true;
	json_decref(r);
	return found;
}

/* Waits until the standby has replayed everything the primary wrote so
 * far. Within replica_max_lag a replica may still miss the last second of
 * writes (docs/scaling.md), so an offer just published is looked for on it
 * only once replayed. Reads WAL positions only, not offers: the scan counts
 * stay the daemon's. */
static void
wait_replayed(void)
{
	char conninfo[800], sql[200];
	long long deadline = h_now_ms() + 20000LL * h_timeout_scale();
	PGconn *db;

	snprintf(conninfo, sizeof conninfo, "%s dbname=postgres",
	    h_cluster_file(p_dir, "conninfo"));
	db = h_db_connect(conninfo);
	snprintf(sql, sizeof sql, "SELECT pg_last_wal_replay_lsn() >= '%s'",
	    h_db_exec(db, "SELECT pg_current_wal_lsn()"));
	PQfinish(db);
	snprintf(conninfo, sizeof conninfo, "%s dbname=postgres",
	    h_cluster_file(s_dir, "conninfo"));
	db = h_db_connect(conninfo);
	while (strcmp(h_db_exec(db, sql), "t") != 0) {
		if (h_now_ms() > deadline)
			h_fail("the standby did not replay the primary's writes "
			    "within 20 s");
		h_sleep_ms(50);
	}
	PQfinish(db);
}

/* The read pool's replay lag as GET /metrics says it, in seconds. */
static double
lag_metric(int http_port)
{
	static const char name[] =
	    "strapontin_db_replica_lag_seconds{pool=\"replica\"} ";
	struct web_resp *r = web_get(http_port, "/metrics", NULL);
	const char *p;
	double lag;

	assert_int_equal(r->status, 200);
	if ((p = strstr(r->body, name)) == NULL)
		h_fail("no replica lag in the metrics:\n%s", r->body);
	lag = strtod(p + strlen(name), NULL);
	web_free(r);
	return lag;
}

/* offer.list is read from the standby: its scans of offers grow. The
 * statistics reach the view within a second or two of the reads. */
static void
expect_reads_on_standby(struct st_client *c, json_int_t offer)
{
	long long before, deadline;

	wait_replayed();
	before = standby_offer_scans();
	deadline = h_now_ms() + 15000LL * h_timeout_scale();
	for (;;) {
		int i;

		for (i = 0; i < 3; i++)
			assert_true(list_has(c, offer));
		if (standby_offer_scans() > before)
			return;
		if (h_now_ms() > deadline)
			h_fail("offer.list did not read from the replica");
		h_sleep_ms(200);
	}
}

static void
wait_log_count(const struct h_daemon *d, const char *needle, int n)
{
	long long deadline = h_now_ms() + 20000LL * h_timeout_scale();

	while (h_log_count(d, needle) < n) {
		if (h_now_ms() > deadline)
			h_fail("\"%s\" not logged %d times within 20 s", needle,
			    n);
		h_sleep_ms(50);
	}
}

static void
test_replica_lag_bound(void **state)
{
	char ini[3000], conninfo[1200], replica[700];
	int http_port = h_free_port();
	struct h_daemon *d;
	struct world w;
	PGconn *db, *standby;
	json_int_t first, second;

	(void)state;
	snprintf(p_dir, sizeof p_dir, "%s/run/replica_primary", h_test_dir());
	snprintf(s_dir, sizeof s_dir, "%s/run/replica_standby", h_test_dir());
	clusters = true;
	h_sh("mkdir -p '%s/run'", h_test_dir());
	h_pg_tmp(p_dir, "start '%s'", p_dir);
	snprintf(conninfo, sizeof conninfo, "%s dbname=postgres",
	    h_cluster_file(p_dir, "conninfo"));
	db = h_db_connect(conninfo);
	h_db_exec(db, "CREATE DATABASE strapontin OWNER strapontin_owner");
	PQfinish(db);
	h_pg_tmp(p_dir, "standby '%s' '%s'", s_dir, p_dir);

	snprintf(replica, sizeof replica, "host=127.0.0.1 port=%s "
	    "dbname=strapontin user=%s", h_cluster_file(s_dir, "port"),
	    H_RUNTIME_ROLE);
	snprintf(ini, sizeof ini, "[database]\n"
	    "conninfo = host=127.0.0.1 port=%s dbname=strapontin user=%s\n"
	    "migrate_conninfo = host=127.0.0.1 port=%s dbname=strapontin "
	    "user=%s\nreplica_conninfo = %s\nreplica_pool_size = 2\n"
	    "replica_max_lag = 1\n[http]\nlisten = 127.0.0.1:%d\n"
	    "metrics_allow = 127.0.0.1\n", h_cluster_file(p_dir, "port"),
	    H_RUNTIME_ROLE, h_cluster_file(p_dir, "port"), H_OWNER_ROLE,
	    replica, http_port);
	d = h_daemon_start("replica", ini);
	world_build(&w, d);
	first = w_offer(w.partner, 10, 2, NULL);

	/* Within the bound: offer.list reads from the replica. */
	wait_log_count(d, UP, 1);
	expect_reads_on_standby(w.ref, first);

	/* Replay paused, a write on the primary: once the lag passes the
	 * bound the daemon reads from the primary, which has the write. */
	snprintf(conninfo, sizeof conninfo, "%s dbname=strapontin",
	    h_cluster_file(s_dir, "conninfo"));
	standby = h_db_connect(conninfo);
	h_db_exec(standby, "SELECT pg_wal_replay_pause()");
	second = w_offer(w.partner, 10, 2, NULL);
	wait_log_count(d, DOWN, 1);
	assert_true(h_log_contains(d, "passes replica_max_lag (1000 ms)"));
	/* ...and the metrics show the lag past the bound. */
	assert_true(lag_metric(http_port) > 1.0);
	assert_true(list_has(w.ref, second));
	assert_true(list_has(w.admin, second));
	/* Still paused: the standby has not seen it. */
	snprintf(conninfo, sizeof conninfo, "SELECT count(*) FROM offers "
	    "WHERE id = %lld", (long long)second);
	assert_string_equal(h_db_exec(standby, conninfo), "0");

	/* Replay resumed: the replica catches up and is used again. */
	h_db_exec(standby, "SELECT pg_wal_replay_resume()");
	PQfinish(standby);
	wait_log_count(d, UP, 2);
	expect_reads_on_standby(w.ref, second);

	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_replica_lag_bound, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
