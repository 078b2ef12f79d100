/*
 * PostgreSQL goes away and comes back, on a cluster of this test's own
 * (scripts/pg-tmp): requests that need the database answer 503
 * `unavailable` promptly instead of hanging or claiming bad credentials,
 * what needs no database (ping, health) goes on, and the daemon recovers
 * by itself once the database is back. Also: the daemon starts while the
 * database is down, and recovers the same way.
 */
#include "harness.h"
#include "web.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Generous: the cluster restarts and the daemon's reconnection backoff
 * (at most 5 s) on a loaded machine. */
#define RECOVERY_MS 40000
#define OUTAGE_MS 20000

static char pg_dir[600];
static char pg_conninfo[1024];
static bool pg_started;

static void
pg_tmp(const char *action)
{
	if (h_sh("'%s/scripts/pg-tmp' %s '%s' >'%s.%s.log' 2>&1",
	    h_env("ST_SOURCE_DIR"), action, pg_dir, pg_dir, action) != 0)
		h_fail("scripts/pg-tmp %s %s failed (see %s.%s.log)", action,
		    pg_dir, pg_dir, action);
}

static int
setup(void **state)
{
	char path[700], admin[1200];
	FILE *f;
	PGconn *db;

	(void)state;
	snprintf(pg_dir, sizeof pg_dir, "%s/run/outage_pg", h_test_dir());
	pg_tmp("start");
	pg_started = true;
	snprintf(path, sizeof path, "%s/conninfo", pg_dir);
	if ((f = fopen(path, "r")) == NULL ||
	    fgets(pg_conninfo, sizeof pg_conninfo, f) == NULL)
		h_fail("cannot read %s", path);
	fclose(f);
	pg_conninfo[strcspn(pg_conninfo, "\n")] = '\0';
	snprintf(admin, sizeof admin, "%s dbname=postgres", pg_conninfo);
	db = h_db_connect(admin);
	h_db_exec(db, "CREATE DATABASE strapontin");
	PQfinish(db);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (pg_started)
		h_sh("'%s/scripts/pg-tmp' stop '%s' >/dev/null 2>&1",
		    h_env("ST_SOURCE_DIR"), pg_dir);
	pg_started = false;
	return 0;
}

static int http_port;   /* the desk's listener, for /healthz */

/* What a load balancer sees: /healthz's status. */
static int
healthz(void)
{
	struct web_resp *r = web_get(http_port, "/healthz", NULL);
	int status = r->status;

	web_free(r);
	return status;
}

static struct h_daemon *
start_daemon(const char *name)
{
	char ini[2600];

	/* A later key wins: the harness's conninfos are replaced by ours, for
	 * --migrate and --add-admin too. */
	http_port = h_free_port();
	snprintf(ini, sizeof ini, "[database]\nconninfo = %s dbname=strapontin\n"
	    "migrate_conninfo = %s dbname=strapontin\n[http]\n"
	    "listen = 127.0.0.1:%d\nwww_dir = %s/web\n", pg_conninfo,
	    pg_conninfo, http_port, h_env("ST_SOURCE_DIR"));
	return h_daemon_start(name, ini);
}

static const char *
health_db(struct st_client *c)
{
	static char db[32];
	json_t *r = h_call_ok(c, "system.health", NULL);

	snprintf(db, sizeof db, "%s",
	    json_string_value(json_object_get(r, "db")) ?: "(none)");
	json_decref(r);
	return db;
}

/* One call; ST_OK, or the error filled. Fails the test if the client
 * library gave up (timeout, connection lost): the daemon must answer. */
static int
call(struct st_client *c, const char *method, json_t *params,
    struct st_error *err, const char *what)
{
	json_t *r = NULL;
	long long t0 = h_now_ms();
	int rc;

	memset(err, 0, sizeof *err);
	rc = st_call(c, method, params, &r, err);
	json_decref(params);
	json_decref(r);
	if (rc != ST_OK && rc != ST_ERR_SERVER)
		h_fail("%s: %s gave no answer after %lld ms: %s", what, method,
		    h_now_ms() - t0, st_strerror(err));
	return rc;
}

static bool
is_unavailable(int rc, const struct st_error *err)
{
	return rc == ST_ERR_SERVER && err->code == 503 &&
	    strcmp(err->reason, "unavailable") == 0;
}

static void
expect_unavailable(struct st_client *c, const char *method, json_t *params,
    const char *what)
{
	struct st_error err;
	int rc = call(c, method, params, &err, what);

	if (!is_unavailable(rc, &err))
		h_fail("%s: %s should answer 503 unavailable, got %s", what,
		    method, rc == ST_OK ? "a result" : st_strerror(&err));
	st_error_clear(&err);
}

static json_t *
login_params(const char *password)
{
	return json_pack("{s:s, s:s}", "email", H_ADMIN_EMAIL, "password",
	    password);
}

/* What the database outage looks like from a client. */
static void
check_outage(const struct h_daemon *d, struct st_client *admin,
    const char *token)
{
	struct st_client *c = h_connect(d);
	json_t *r;

	expect_unavailable(admin, "auth.whoami", NULL, "logged in");
	/* A login is not a wrong password, in either case. */
	expect_unavailable(c, "auth.login", login_params(H_ADMIN_PASSWORD),
	    "right password");
	expect_unavailable(c, "auth.login", login_params("wrong-password"),
	    "wrong password");
	if (token != NULL)
		expect_unavailable(c, "auth.resume", json_pack("{s:s}", "token",
		    token), "resume");
	/* What needs no database goes on. */
	r = h_call_ok(c, "system.ping", NULL);
	json_decref(r);
	r = h_call_ok(admin, "system.ping", NULL);
	json_decref(r);
	assert_string_equal(health_db(c), "down");
	st_close(c);
}

/* Waits for the daemon to notice the outage on its own: whoami answers
 * unavailable. Before, it may still answer. */
static void
wait_unavailable(struct st_client *admin)
{
	long long deadline = h_now_ms() + OUTAGE_MS;
	struct st_error err;
	int rc;

	for (;;) {
		rc = call(admin, "auth.whoami", NULL, &err, "outage");
		if (is_unavailable(rc, &err))
			break;
		if (rc != ST_OK)
			h_fail("during the outage whoami answered %s, not 503 "
			    "unavailable", st_strerror(&err));
		if (h_now_ms() > deadline)
			h_fail("whoami still works %d ms after the database "
			    "stopped", OUTAGE_MS);
		h_sleep_ms(200);
	}
	st_error_clear(&err);
}

/* Waits for the daemon to serve logins again, with no restart. */
static void
wait_recovered(const struct h_daemon *d)
{
	long long deadline = h_now_ms() + RECOVERY_MS;
	struct st_client *c = h_connect(d);
	struct st_error err;
	int rc;

	for (;;) {
		rc = call(c, "auth.login", login_params(H_ADMIN_PASSWORD), &err,
		    "recovery");
		if (rc == ST_OK)
			break;
		if (!is_unavailable(rc, &err))
			h_fail("while the database returns, login answered %s",
			    st_strerror(&err));
		st_error_clear(&err);
		if (h_now_ms() > deadline)
			h_fail("no login %d ms after the database came back",
			    RECOVERY_MS);
		h_sleep_ms(250);
	}
	/* Health may lag the first answer by nothing: the pool is up. */
	assert_string_equal(health_db(c), "ok");
	json_decref(h_call_ok(c, "auth.whoami", NULL));
	st_close(c);
}

static void
test_outage_and_recovery(void **state)
{
	struct h_daemon *d = start_daemon("outage");
	struct st_client *admin, *c, *pipe, *sub;
	int64_t ids[10];
	struct st_error err;
	json_t *r;
	char token[128];
	int i;

	(void)state;
	admin = h_connect(d);
	assert_string_equal(health_db(admin), "ok");
	assert_int_equal(healthz(), 200);
	r = h_call_ok(admin, "auth.login", login_params(H_ADMIN_PASSWORD));
	snprintf(token, sizeof token, "%s",
	    json_string_value(json_object_get(r, "token")));
	json_decref(r);
	/* An event subscriber: told to resync once the listener is back,
	 * since notifications sent meanwhile were lost. */
	sub = h_connect(d);
	json_decref(h_call_ok(sub, "auth.resume", json_pack("{s:s}", "token",
	    token)));
	json_decref(h_call_ok(sub, "events.subscribe", json_pack("{s:[s]}",
	    "topics", "booking.created")));

	/* Logins in flight when the database goes: each is answered. */
	{
		struct st_options o = h_options(d);

		o.timeout_ms = 120000;
		memset(&err, 0, sizeof err);
		pipe = h_connect_opts(&o, &err);
		assert_non_null(pipe);
	}
	for (i = 0; i < 10; i++) {
		memset(&err, 0, sizeof err);
		r = login_params(H_ADMIN_PASSWORD);
		ids[i] = st_send(pipe, "auth.login", r, &err);
		json_decref(r);
		assert_true(ids[i] > 0);
	}
	pg_tmp("pause");
	for (i = 0; i < 10; i++) {
		int rc;

		r = NULL;
		memset(&err, 0, sizeof err);
		rc = st_wait(pipe, ids[i], &r, &err);
		json_decref(r);
		if (rc != ST_OK && !is_unavailable(rc, &err))
			h_fail("login %d in flight during the outage: %s", i,
			    st_strerror(&err));
		st_error_clear(&err);
	}
	st_close(pipe);

	wait_unavailable(admin);
	/* A load balancer takes this daemon out while it has no database. */
	assert_int_equal(healthz(), 503);
	check_outage(d, admin, token);
	assert_true(h_log_contains(d, "database is down"));
	/* Repeatedly, and the daemon does not fall over meanwhile. */
	for (i = 0; i < 5; i++) {
		expect_unavailable(admin, "auth.whoami", NULL, "repeat");
		h_sleep_ms(200);
	}

	pg_tmp("resume");
	wait_recovered(d);
	assert_int_equal(healthz(), 200);
	/* The connection logged in before the outage is logged in still. */
	r = h_call_ok(admin, "auth.whoami", NULL);
	json_decref(r);
	c = h_connect(d);
	r = h_call_ok(c, "auth.resume", json_pack("{s:s}", "token", token));
	json_decref(r);
	st_close(c);
	{
		bool resync = false;

		while (!resync && st_next_event(sub, &r, 30000, &err) == ST_OK) {
			resync = strcmp(json_string_value(json_object_get(r,
			    "topic")) ?: "", "resync") == 0;
			json_decref(r);
		}
		if (!resync)
			h_fail("no resync event after the database came back");
		assert_true(h_log_contains(d, "events: listener back"));
	}
	st_close(sub);
	st_close(admin);
	assert_true(h_log_contains(d, "database is up"));
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Every line of a log.format = json log is one JSON object: what a log
 * shipper relies on, outage or not. */
static void
expect_json_log(const struct h_daemon *d)
{
	char line[16384];
	int n = 0;
	FILE *f = fopen(d->log, "r");

	if (f == NULL)
		h_fail("cannot read %s", d->log);
	while (fgets(line, sizeof line, f) != NULL) {
		json_t *j = json_loads(line, 0, NULL);

		n++;
		if (!json_is_object(j)) {
			json_decref(j);
			fclose(f);
			h_fail("%s line %d is not a JSON log entry: %s", d->log,
			    n, line);
		}
		json_decref(j);
	}
	fclose(f);
}

/* The daemon starts while the database is down: it serves what it can,
 * answers unavailable for the rest, and recovers without a restart. Its
 * log (JSON) stays one entry per line through it all. */
static void
test_start_without_database(void **state)
{
	char ini[2600];
	struct h_daemon *d;
	struct st_client *c;

	(void)state;
	snprintf(ini, sizeof ini, "[database]\nconninfo = %s dbname=strapontin\n"
	    "migrate_conninfo = %s dbname=strapontin\n[log]\nformat = json\n",
	    pg_conninfo, pg_conninfo);
	d = h_daemon_start("outage_start", ini);
	c = h_login_admin(d);
	/* Live pool connections are cut. */
	pg_tmp("pause");
	wait_unavailable(c);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);

	h_daemon_restart(d);
	c = h_connect(d);
	json_decref(h_call_ok(c, "system.ping", NULL));
	assert_string_equal(health_db(c), "down");
	expect_unavailable(c, "auth.login", login_params(H_ADMIN_PASSWORD),
	    "start without database");
	pg_tmp("resume");
	wait_recovered(d);
	json_decref(h_call_ok(c, "auth.login", login_params(H_ADMIN_PASSWORD)));
	json_decref(h_call_ok(c, "auth.whoami", NULL));
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
	expect_json_log(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outage_and_recovery),
		cmocka_unit_test(test_start_without_database),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
