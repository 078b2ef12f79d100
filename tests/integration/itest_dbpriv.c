/*
 * Least privilege in the database (docs/operations.md, "Database roles";
 * core.privileges_apply() in sql/api/00_core.sql): the daemon's runtime
 * role may only call the API entry points, the functions of schema api;
 * admin-only functions refuse other roles even when called directly;
 * --migrate leaves in core and api only what sql/api defines; the events
 * path (outbox, channel) still works. Also report.activity's longest
 * range.
 *
 * Every other integration test runs its daemon as the runtime role too,
 * which shows the whole API works with these privileges.
 */
#include "world.h"

#include <stdlib.h>
#include <string.h>

#define OUTBOX_CHANNEL "strapontin_outbox"

/* Known tokens, stored by hash as the daemon does (the hash is all SQL
 * sees); 64 hex digits. */
#define ADMIN_TOKEN "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define REF_TOKEN "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct world W;
static PGconn *su;	/* the superuser, to look and to set up */
static PGconn *rt;	/* the daemon's runtime role */

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

static void
quiet(void *arg, const char *message)
{
}

/* Runs sql that must fail; returns its SQLSTATE and, for api_error, the
 * reason (the message) in reason. */
static const char *
fails(PGconn *db, const char *sql, char *reason, size_t len)
{
	static char state[8];
	PGresult *r = PQexec(db, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		h_fail("as the runtime role, this should fail: %s", sql);
	snprintf(state, sizeof state, "%s",
		 PQresultErrorField(r, PG_DIAG_SQLSTATE) ?: "");
	if (reason != NULL)
		snprintf(reason, len, "%s",
			 PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) ?: "");
	PQclear(r);
	return state;
}

static void
denied(PGconn *db, const char *sql)
{
	assert_string_equal(fails(db, sql, NULL, 0), "42501");
}

static int
setup(void **state)
{
	char sql[512];

	world_build(&W, h_daemon_start("dbpriv", NULL));
	su = h_db_connect(W.d->conninfo);
	rt = h_db_connect(W.d->runtime_conninfo);
	PQsetNoticeProcessor(rt, quiet, NULL);
	snprintf(sql, sizeof sql,
		 "INSERT INTO tokens (token_hash, user_id, expires_at) "
		 "SELECT '" ADMIN_TOKEN "', id, now() + interval '1 hour' "
		 "FROM users WHERE email = '%s'", H_ADMIN_EMAIL);
	h_db_exec(su, sql);
	snprintf(sql, sizeof sql,
		 "INSERT INTO tokens (token_hash, user_id, expires_at) "
		 "SELECT '" REF_TOKEN "', id, now() + interval '1 hour' "
		 "FROM users WHERE email = '%s'", W_REF_EMAIL);
	h_db_exec(su, sql);
	return 0;
}

static int
teardown(void **state)
{
	PQfinish(rt);
	PQfinish(su);
	world_close(&W);
	assert_int_equal(h_daemon_stop(W.d), 0);
	return 0;
}

/* The runtime role reads and writes nothing directly, and calls no
 * helper: only entry points. */
static void
test_runtime_role_only_executes(void **state)
{
	/* The test talks to the database as the runtime role indeed. */
	assert_string_equal(h_db_exec(rt, "SELECT current_user"),
			    H_RUNTIME_ROLE);

	denied(rt, "SELECT * FROM users");
	denied(rt, "SELECT token_hash FROM tokens");
	denied(rt, "SELECT * FROM schema_migrations");
	denied(rt, "INSERT INTO partners (name, kind, city) "
		   "VALUES ('x', 'theatre', 'y')");
	denied(rt, "UPDATE offers SET seats_total = 0");
	denied(rt, "DELETE FROM audit_log");
	denied(rt, "SELECT nextval(pg_get_serial_sequence('users', 'id'))");
	denied(rt, "CREATE TABLE mine (x int)");

	/* Helpers that are not entry points. */
	denied(rt, "SELECT core.auth_user('" ADMIN_TOKEN "')");
	denied(rt, "SELECT core.admin_upsert('evil@example.org', 'x')");
	denied(rt, "SELECT core.privileges_apply()");
	denied(rt, "SELECT core.api_prune()");
	denied(rt, "SELECT core.ts(now())");
	denied(rt, "SELECT core.user_list_unchecked('" REF_TOKEN "', '{}', "
		   "'127.0.0.1', '{}')");
	denied(rt, "SELECT core.report_activity_unchecked('" REF_TOKEN "', "
		   "'{}', '127.0.0.1', '{}')");
	/* The draw with a seed of the caller's choosing: a method's
	 * signature, not a method. */
	denied(rt, "SELECT core.permanence_draw_with_seed('" ADMIN_TOKEN "', "
		   "'{\"permanence_id\": 1, \"seed\": \"x\"}', '127.0.0.1', '{}')");

	/* An entry point works, as the schema's owner would run it. */
	assert_string_equal(
	    h_db_exec(rt, "SELECT api.auth_whoami('" REF_TOKEN "', '{}', "
			  "'127.0.0.1', '{}')->'user'->>'email'"),
	    W_REF_EMAIL);
	assert_string_not_equal(h_db_exec(rt, "SELECT max(v) FROM "
					      "api.schema_versions() v"), "");
}

/* What the rules left, seen from the catalogue: the runtime role owns
 * nothing, PUBLIC has nothing, and every function strapontin_api may run
 * is SECURITY DEFINER with the fixed search_path. */
static void
test_catalogue(void **state)
{
	assert_string_equal(
	    h_db_exec(su, "SELECT (SELECT count(*) FROM pg_class WHERE relowner = "
			  "'" H_RUNTIME_ROLE "'::regrole) + (SELECT count(*) FROM "
			  "pg_proc WHERE proowner = '" H_RUNTIME_ROLE "'::regrole) + "
			  "(SELECT count(*) FROM pg_type WHERE typowner = '"
			  H_RUNTIME_ROLE "'::regrole) + (SELECT count(*) FROM "
			  "pg_namespace WHERE nspowner = '" H_RUNTIME_ROLE
			  "'::regrole)"),
	    "0");
	/* PUBLIC (grantee 0) and the group hold nothing on relations. */
	assert_string_equal(
	    h_db_exec(su, "SELECT count(*) FROM pg_class c, "
			  "aclexplode(c.relacl) a WHERE c.relnamespace = "
			  "'public'::regnamespace AND (a.grantee = 0 OR "
			  "a.grantee = 'strapontin_api'::regrole)"),
	    "0");
	/* No function of ours left in public; PUBLIC may run none of those
	 * of core and api. */
	assert_string_equal(
	    h_db_exec(su, "SELECT count(*) FROM pg_proc p WHERE p.pronamespace "
			  "= 'public'::regnamespace AND p.proowner = '"
			  H_OWNER_ROLE "'::regrole"),
	    "0");
	assert_string_equal(
	    h_db_exec(su, "SELECT count(*) FROM pg_proc p WHERE p.pronamespace "
			  "IN ('core'::regnamespace, 'api'::regnamespace) AND "
			  "(p.proacl IS NULL OR EXISTS (SELECT 1 FROM "
			  "aclexplode(p.proacl) a WHERE a.grantee = 0))"),
	    "0");
	/* The group may use schema api, not core. */
	assert_string_equal(
	    h_db_exec(su, "SELECT has_schema_privilege('strapontin_api', "
			  "'api', 'USAGE')::text || has_schema_privilege("
			  "'strapontin_api', 'core', 'USAGE')::text"),
	    "truefalse");
	/* What it may run is exactly schema api, each SECURITY DEFINER with
	 * the fixed search_path; the only other setting a function may carry
	 * is its plan cache mode (booking_create_batch()). */
	assert_string_equal(
	    h_db_exec(su, "SELECT count(*) FROM pg_proc p WHERE "
			  "has_function_privilege('strapontin_api', p.oid, "
			  "'EXECUTE') <> (p.pronamespace = 'api'::regnamespace) "
			  "AND p.pronamespace IN ('public'::regnamespace, "
			  "'core'::regnamespace, 'api'::regnamespace)"),
	    "0");
	assert_string_equal(
	    h_db_exec(su, "SELECT count(*) FROM pg_proc p WHERE p.pronamespace "
			  "= 'api'::regnamespace AND NOT (p.prosecdef AND "
			  "p.proconfig @> ARRAY['search_path=pg_catalog, public, "
			  "core, api, pg_temp'] AND (SELECT bool_and(c = "
			  "'search_path=pg_catalog, public, core, api, pg_temp' "
			  "OR c LIKE 'plan\\_cache\\_mode=%') FROM "
			  "unnest(p.proconfig) c))"),
	    "0");
	/* Every method of the daemon and its own statements: more than 40. */
	assert_true(atoi(h_db_exec(
	    su, "SELECT count(*) FROM pg_proc p WHERE "
		"has_function_privilege('strapontin_api', p.oid, 'EXECUTE') "
		"AND p.pronamespace = 'api'::regnamespace")) > 40);
}

/* Each admin-only function refuses a referent's token by itself. */
static void
test_admin_functions_check_the_role(void **state)
{
	static const char *const fns[] = {"partner_create", "structure_create",
	    "user_create", "user_list", "user_disable", "audit_list"};
	char sql[512], reason[128];
	size_t i;

	for (i = 0; i < sizeof fns / sizeof *fns; i++) {
		snprintf(sql, sizeof sql,
			 "SELECT api.%s('" REF_TOKEN "', '{\"name\": \"X\", "
			 "\"kind\": \"theatre\", \"city\": \"Y\", \"user_id\": 1}', "
			 "'127.0.0.1', '{}')", fns[i]);
		assert_string_equal(fails(rt, sql, reason, sizeof reason),
				    "SP001");
		if (strcmp(reason, "forbidden") != 0)
			h_fail("%s with a referent's token: %s, not forbidden",
			       fns[i], reason);
	}
	/* Nothing was done meanwhile. */
	assert_string_equal(h_db_exec(su, "SELECT count(*) FROM partners "
					  "WHERE name = 'X'"), "0");
	/* With an admin's token they answer. */
	assert_string_not_equal(
	    h_db_exec(rt, "SELECT api.user_list('" ADMIN_TOKEN "', '{}', "
			  "'127.0.0.1', '{}')->>'items'"),
	    "");
}

/* --migrate makes schema api what sql/api defines, with its rules: a
 * function put there by hand is dropped, not granted; one put in public
 * by hand stays closed to the runtime role. */
static void
test_rules_after_migrate(void **state)
{
	PGconn *owner = h_db_connect(W.d->owner_conninfo);

	h_db_exec(owner, "CREATE FUNCTION api.zz_method(p_token text, p jsonb, "
			 "p_addr text, p_policy jsonb) RETURNS jsonb "
			 "LANGUAGE sql AS $$ SELECT jsonb_build_object('who', "
			 "current_user::text) $$");
	h_db_exec(owner, "CREATE FUNCTION zz_helper() RETURNS int "
			 "LANGUAGE sql AS $$ SELECT 1 $$");
	PQfinish(owner);
	denied(rt, "SELECT api.zz_method(NULL, '{}', NULL, '{}')");

	if (h_sh("'%s' -c '%s' --migrate >>'%s/setup.log' 2>&1",
		 h_env("STRAPONTIND"), W.d->setup_conf, W.d->dir) != 0)
		h_fail("--migrate failed: see %s/setup.log", W.d->dir);
	assert_string_equal(h_db_exec(su, "SELECT count(*) FROM pg_proc WHERE "
					  "proname = 'zz_method'"), "0");
	denied(rt, "SELECT zz_helper()");
	/* The entry points still answer, with their rules. */
	assert_string_equal(
	    h_db_exec(rt, "SELECT api.auth_whoami('" REF_TOKEN "', '{}', "
			  "'127.0.0.1', '{}')->'user'->>'email'"),
	    W_REF_EMAIL);
}

/* The daemon's events path (sql/schema/014_outbox.sql, sql/api/90_events.sql): the runtime role may
 * LISTEN on the outbox channel, on which a daemon announces its changes,
 * and read the outbox through events_read(), though not the table. */
static void
test_events_channel(void **state)
{
	char sql[256];
	long long deadline;
	PGnotify *n = NULL;
	json_int_t o;
	bool seen = false;

	h_db_exec(rt, "LISTEN " OUTBOX_CHANNEL);
	o = w_offer(W.partner, 5, 2, NULL);
	deadline = h_now_ms() + 10000;
	while (n == NULL && h_now_ms() < deadline) {
		PQconsumeInput(rt);
		if ((n = PQnotifies(rt)) == NULL)
			h_sleep_ms(20);
	}
	if (n == NULL)
		h_fail("no notification on " OUTBOX_CHANNEL " within 10 s");
	PQfreemem(n);
	h_db_exec(rt, "UNLISTEN *");

	/* The first read may wait on a fence: read until it settles. */
	snprintf(sql, sizeof sql, "SELECT count(*) FROM api.events_read(0, 0, "
	    "NULL, NULL, 1000), jsonb_array_elements(r_events) e WHERE "
	    "e->>'topic' = 'offer.published' AND (e->'data'->>'id')::bigint "
	    "= %lld", (long long)o);
	deadline = h_now_ms() + 10000;
	while (!seen && h_now_ms() < deadline) {
		seen = strcmp(h_db_exec(rt, sql), "1") == 0;
		if (!seen)
			h_sleep_ms(20);
	}
	assert_true(seen);
	denied(rt, "SELECT count(*) FROM event_outbox");
	denied(rt, "DELETE FROM event_outbox");
	denied(rt, "UPDATE event_outbox_pruned SET upto = 0");
}

/* report.activity reads at most policy.report_max_days (400 by default)
 * of history per call. */
static void
test_report_range_is_bounded(void **state)
{
	json_t *data;

	json_decref(OK(W.admin, "report.activity", "{s:s, s:s, s:s}", "from",
		       "2025-01-01T00:00:00Z", "to", "2026-02-05T00:00:00Z",
		       "group_by", "month"));
	data = h_call_err(W.admin, "report.activity",
			  json_pack("{s:s, s:s, s:s}", "from",
				    "2025-01-01T00:00:00Z", "to",
				    "2026-02-05T00:00:01Z", "group_by", "month"),
			  -32602, "invalid_params");
	assert_string_equal(json_string_value(json_object_get(data, "field")),
			    "to");
	json_decref(data);
	json_decref(h_call_err(W.ref, "report.activity",
			       json_pack("{s:s, s:s, s:s}", "from",
					 "2000-01-01T00:00:00Z", "to",
					 "2030-01-01T00:00:00Z", "group_by",
					 "structure"),
			       -32602, "invalid_params"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtime_role_only_executes),
		cmocka_unit_test(test_catalogue),
		cmocka_unit_test(test_admin_functions_check_the_role),
		cmocka_unit_test(test_rules_after_migrate),
		cmocka_unit_test(test_events_channel),
		cmocka_unit_test(test_report_range_is_bounded),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
