/*
 * The PostgreSQL pool (daemon/db.c) itself, without a daemon: a pool on
 * its own event loop against the fixture cluster. statement_timeout per
 * class of statement, the SET it costs only when the class changes, and
 * the callback contract when a send fails inside db_exec().
 */
#include "harness.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

#define DB_NAME "dbpool"

/* Both classes run the same text: only the class tells them apart. */
static const char *const stmts[] = {
	"SELECT current_setting('statement_timeout'), pg_backend_pid(), "
	"pg_sleep($1::float8)",
	"SELECT current_setting('statement_timeout'), pg_backend_pid(), "
	"pg_sleep($1::float8)",
};
enum { S_SHORT, S_OTHER };

static struct event_base *base;
static char conninfo[1024];
static bool in_exec;	/* true while the test is inside db_exec() */

struct answer {
	bool done;
	bool during_exec;	/* the callback ran from inside db_exec() */
	enum db_status st;
	bool timeout;
	char setting[32];
	int pid;
};

static void
answer_cb(PGresult *res, enum db_status st, void *arg)
{
	struct answer *a = arg;

	a->done = true;
	a->during_exec = in_exec;
	a->st = st;
	a->timeout = db_result_is_timeout(res);
	if (st == DB_OK && PQntuples(res) == 1) {
		snprintf(a->setting, sizeof a->setting, "%s",
		    PQgetvalue(res, 0, 0));
		a->pid = atoi(PQgetvalue(res, 0, 1));
	}
}

/* Runs the loop until pred(arg) holds; a hang guard, not a timing check. */
static void
loop_until(bool (*pred)(void *), void *arg)
{
	long long deadline = h_now_ms() + 30000;

	while (!pred(arg)) {
		if (h_now_ms() > deadline)
			h_fail("the pool did not get there within 30 s");
		event_base_loop(base, EVLOOP_ONCE);
	}
}

static bool
answered(void *arg)
{
	return ((struct answer *)arg)->done;
}

static bool
pool_is_up(void *arg)
{
	return db_pool_up(arg);
}

static bool
pool_is_down(void *arg)
{
	return !db_pool_up(arg);
}

static struct answer
run(struct db_pool *pool, size_t stmt, const char *sleep_s)
{
	struct answer a = {0};
	const char *vals[1] = {sleep_s};

	in_exec = true;
	db_exec(pool, stmt, 1, vals, answer_cb, &a);
	in_exec = false;
	loop_until(answered, &a);
	assert_false(a.during_exec);
	return a;
}

static struct db_pool *
pool_new(void)
{
	struct db_pool *pool = db_pool_new(base, conninfo, 1, stmts,
	    sizeof stmts / sizeof *stmts);

	loop_until(pool_is_up, pool);
	return pool;
}

/* The SET and RESET statement_timeout the server logged for our
 * database (log_statement = all on it; the cluster logs `%d`). */
static int
timeout_sets(void)
{
	char path[1200], line[4096], *cluster;
	FILE *f;
	int n = 0;

	snprintf(path, sizeof path, "%s/pg/cluster", h_test_dir());
	if ((f = fopen(path, "r")) == NULL || fgets(line, sizeof line, f) == NULL)
		h_fail("cannot read %s", path);
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	cluster = strdup(line);
	snprintf(path, sizeof path, "%s/postgres.log", cluster);
	free(cluster);
	if ((f = fopen(path, "r")) == NULL)
		h_fail("cannot read %s", path);
	while (fgets(line, sizeof line, f) != NULL)
		if (strstr(line, "] " DB_NAME " LOG:  ") != NULL &&
		    (strstr(line, "statement: SET statement_timeout") != NULL ||
		    strstr(line, "statement: RESET statement_timeout") != NULL))
			n++;
	fclose(f);
	return n;
}

static int
setup(void **state)
{
	char admin[1200];
	PGconn *db;

	base = event_base_new();
	h_db_create(DB_NAME, conninfo, sizeof conninfo);
	snprintf(admin, sizeof admin, "%s dbname=postgres", h_pg_conninfo());
	db = h_db_connect(admin);
	h_db_exec(db, "ALTER DATABASE " DB_NAME " SET log_statement = 'all'");
	PQfinish(db);
	return 0;
}

static int
teardown(void **state)
{
	event_base_free(base);
	return 0;
}

/* A class with a 200 ms timeout is cancelled past it (57014), while the
 * other class, under the pool's default, runs longer on the same
 * connection; each change of class costs one SET, a run of one class
 * none, and a re-made connection sets its class again. */
static void
test_statement_timeout_per_class(void **state)
{
	struct db_pool *pool = pool_new();
	struct answer a;
	char sql[64];
	PGconn *db;
	int sets = timeout_sets(), pid;

	db_pool_set_statement_timeout(pool, DB_STMT_DEFAULT, 5000);
	db_pool_set_statement_timeout(pool, S_SHORT, 200);

	a = run(pool, S_SHORT, "1");
	assert_int_equal(a.st, DB_SQL_ERROR);
	assert_true(a.timeout);
	assert_int_equal(timeout_sets(), sets + 1);

	a = run(pool, S_OTHER, "0.5");
	assert_int_equal(a.st, DB_OK);
	assert_false(a.timeout);
	assert_string_equal(a.setting, "5s");
	assert_int_equal(timeout_sets(), sets + 2);
	a = run(pool, S_OTHER, "0");
	assert_string_equal(a.setting, "5s");
	assert_int_equal(timeout_sets(), sets + 2);

	a = run(pool, S_SHORT, "0");
	assert_int_equal(a.st, DB_OK);
	assert_string_equal(a.setting, "200ms");
	a = run(pool, S_SHORT, "0");
	assert_string_equal(a.setting, "200ms");
	assert_int_equal(timeout_sets(), sets + 3);
	pid = a.pid;

	/* The connection is re-made: its new session has the server's
	 * setting, so the class's SET is sent again. */
	db = h_db_connect(conninfo);
	snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid);
	h_db_exec(db, sql);
	PQfinish(db);
	loop_until(pool_is_down, pool);
	loop_until(pool_is_up, pool);
	a = run(pool, S_SHORT, "0");
	assert_int_equal(a.st, DB_OK);
	assert_int_not_equal(a.pid, pid);
	assert_string_equal(a.setting, "200ms");
	assert_int_equal(timeout_sets(), sets + 4);

	/* Back to the server's own setting: a RESET, then nothing. */
	db_pool_set_statement_timeout(pool, DB_STMT_DEFAULT, -1);
	db_pool_set_statement_timeout(pool, S_SHORT, -1);
	a = run(pool, S_SHORT, "0");
	assert_string_equal(a.setting, "0");
	a = run(pool, S_OTHER, "0");
	assert_string_equal(a.setting, "0");
	assert_int_equal(timeout_sets(), sets + 5);
	db_pool_free(pool);
}

/* A send that fails inside db_exec() (libpq refuses the query before
 * anything reaches the server: more parameters than the protocol allows):
 * the callback must still come from the loop, after db_exec() returned,
 * never from inside it. A caller walking its own queue of waiting
 * requests (the login queue) would otherwise find it changed under it. */
static void
test_send_failure_answers_from_the_loop(void **state)
{
	struct db_pool *pool = pool_new();
	struct answer a = {0};
	const char **vals = calloc(70000, sizeof *vals);

	in_exec = true;
	db_exec(pool, S_SHORT, 70000, vals, answer_cb, &a);
	in_exec = false;
	free(vals);
	assert_false(a.done);
	assert_int_equal(db_pool_pending(pool), 1);
	loop_until(answered, &a);
	assert_false(a.during_exec);
	assert_int_equal(a.st, DB_UNAVAILABLE);
	assert_int_equal(db_pool_pending(pool), 0);

	/* The pool dropped that connection and makes it again. */
	loop_until(pool_is_up, pool);
	a = run(pool, S_SHORT, "0");
	assert_int_equal(a.st, DB_OK);
	db_pool_free(pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statement_timeout_per_class),
		cmocka_unit_test(test_send_failure_answers_from_the_loop),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
