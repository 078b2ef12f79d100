/*
 * The migrator and the sql/ tree (docs/operations.md, "The sql/ tree"):
 * an applied schema file that changed is refused, naming the file, and
 * nothing is applied; a second --migrate changes no schema file and puts
 * sql/api back as the tree defines it; a database made by the numbered
 * migrations of before (tests/integration/old_sql, as released) upgrades
 * in place and then serves.
 *
 * The migrator runs in this process (migrate_apply_files()), as the
 * owner, the way --migrate runs it; its log goes to stderr, which the
 * tests read back from a file.
 */
#include "world.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "migrate.h"
#include "pwhash.h"

/* Runs the migrator on the given files with its stderr in path, as a dry
 * run printing to dry if that is not NULL; its result. */
static bool
migrate_run_logged(const char *conninfo, const struct sql_file *schema,
		   size_t schema_count, const struct sql_file *api,
		   size_t api_count, const char *path, FILE *dry)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int saved = dup(STDERR_FILENO);
	bool ok;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	close(fd);
	if (dry)
		ok = migrate_dry_run_files(conninfo, schema, schema_count, api,
					   api_count, dry);
	else
		ok = migrate_apply_files(conninfo, schema, schema_count, api,
					 api_count);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	return ok;
}

static bool
migrate_logged(const char *conninfo, const struct sql_file *schema,
	       size_t schema_count, const char *path)
{
	return migrate_run_logged(conninfo, schema, schema_count, api_files,
				  api_files_count, path, NULL);
}

static bool
file_contains(const char *path, const char *needle)
{
	char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, needle) != NULL;
}

static const char *
schema_record(PGconn *db)
{
	return h_db_exec(db, "SELECT string_agg(version || ' ' || name || ' ' "
			     "|| sha256 || ' ' || applied_at, ', ' ORDER BY "
			     "version) FROM schema_migrations");
}

/* An applied schema file whose text changed stops --migrate before
 * anything runs: not its new statement, not a pending file, not sql/api. */
static void
test_edited_schema_file_refused(void **state)
{
	struct h_daemon *d = h_daemon_start("mig_edited", NULL);
	PGconn *db = h_db_connect(d->conninfo);
	struct sql_file *edited;
	char log[700], out[700], before[4096], *text;
	FILE *dry;
	size_t i;

	(void)state;
	snprintf(log, sizeof log, "%s/edited.log", d->dir);
	snprintf(out, sizeof out, "%s/edited.out", d->dir);
	snprintf(before, sizeof before, "%s", schema_record(db));
	edited = calloc(schema_files_count, sizeof *edited);
	assert_non_null(edited);
	for (i = 0; i < schema_files_count; i++)
		edited[i] = schema_files[i];
	assert_string_equal(edited[1].name, "002_pool.sql");
	text = xasprintf("%s\nCREATE TABLE zz_edited (x integer);\n",
			       edited[1].sql);
	edited[1].sql = text;

	/* --dry-run refuses it the same way. */
	dry = fopen(out, "w");
	assert_non_null(dry);
	assert_false(migrate_run_logged(d->owner_conninfo, edited,
					schema_files_count, api_files,
					api_files_count, log, dry));
	fclose(dry);
	if (!file_contains(log, "sql/schema/002_pool.sql was changed"))
		h_fail("the dry run's refusal does not name the file: see %s",
		       log);
	if (file_contains(out, "rien n'a chang"))
		h_fail("the dry run refused and said it would work: see %s",
		       out);

	assert_false(migrate_logged(d->owner_conninfo, edited,
				    schema_files_count, log));
	if (!file_contains(log, "sql/schema/002_pool.sql was changed"))
		h_fail("the refusal does not name the file: see %s", log);
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM pg_class "
					  "WHERE relname = 'zz_edited'"), "0");
	assert_string_equal(schema_record(db), before);

	/* The file as released passes again. */
	assert_true(migrate_logged(d->owner_conninfo, schema_files,
				   schema_files_count, log));
	free(text);
	free(edited);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* A second --migrate applies no schema file, and sql/api again: a
 * function changed by hand gets its definition back with its rules, one
 * that sql/api does not define is dropped. */
static void
test_migrate_again(void **state)
{
	struct h_daemon *d = h_daemon_start("mig_again", NULL);
	PGconn *db = h_db_connect(d->conninfo);
	PGconn *owner = h_db_connect(d->owner_conninfo);
	PGconn *rt = h_db_connect(d->runtime_conninfo);
	char log[700], before[4096], nfuncs[32];

	(void)state;
	snprintf(log, sizeof log, "%s/again.log", d->dir);
	snprintf(before, sizeof before, "%s", schema_record(db));
	snprintf(nfuncs, sizeof nfuncs, "%s",
		 h_db_exec(db, "SELECT count(*) FROM pg_proc WHERE pronamespace "
			       "IN ('core'::regnamespace, 'api'::regnamespace)"));
	assert_true(atoi(nfuncs) > 100);
	h_db_exec(owner, "CREATE OR REPLACE FUNCTION api.schema_versions() "
			 "RETURNS SETOF integer LANGUAGE sql AS "
			 "$$ SELECT -1 $$");
	h_db_exec(owner, "CREATE FUNCTION core.zz_stale() RETURNS int "
			 "LANGUAGE sql AS $$ SELECT 1 $$");
	h_db_exec(owner, "CREATE FUNCTION api.zz_stale(p_token text, p jsonb, "
			 "p_addr text, p_policy jsonb) RETURNS jsonb "
			 "LANGUAGE sql AS $$ SELECT '{}'::jsonb $$");

	assert_true(migrate_logged(d->owner_conninfo, schema_files,
				   schema_files_count, log));
	if (file_contains(log, "applying schema file"))
		h_fail("a second run applied a schema file: see %s", log);
	assert_string_equal(schema_record(db), before);
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM pg_proc WHERE "
					  "proname = 'zz_stale'"), "0");
	assert_string_equal(
	    h_db_exec(db, "SELECT count(*) FROM pg_proc WHERE pronamespace "
			  "IN ('core'::regnamespace, 'api'::regnamespace)"),
	    nfuncs);
	/* The runtime role reads the real versions again, through the
	 * function's rules (SECURITY DEFINER: it may not read the table). */
	assert_int_equal(atoi(h_db_exec(rt, "SELECT max(v) FROM "
					    "api.schema_versions() v")),
			 migrate_latest());
	PQfinish(rt);
	PQfinish(owner);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* The digest of a function of the database, to see that it is unchanged. */
static const char *
function_def(PGconn *db, const char *signature)
{
	char sql[512];

	snprintf(sql, sizeof sql, "SELECT md5(pg_get_functiondef('%s'::"
		 "regprocedure))", signature);
	return h_db_exec(db, sql);
}

/* --migrate --dry-run says what --migrate would do, the pending schema
 * file with its SHA-256 and the functions sql/api would add, change or
 * drop, and changes nothing: not the schema, not the record, not a
 * function. The binary's option exits 0, and 2 without --migrate. */
static void
test_dry_run(void **state)
{
	struct h_daemon *d = h_daemon_start("mig_dry", NULL);
	PGconn *db = h_db_connect(d->conninfo);
	PGconn *owner = h_db_connect(d->owner_conninfo);
	struct sql_file *schema, *api;
	char log[700], out[700], before[4096], changed[64];
	char nfuncs[32];
	FILE *dry;
	size_t i;

	(void)state;
	snprintf(log, sizeof log, "%s/dry.log", d->dir);
	snprintf(out, sizeof out, "%s/dry.out", d->dir);
	snprintf(before, sizeof before, "%s", schema_record(db));

	/* One schema file more, one api file more; a function changed by
	 * hand (sql/api would put it back), one sql/api does not define. */
	schema = calloc(schema_files_count + 1, sizeof *schema);
	api = calloc(api_files_count + 1, sizeof *api);
	assert_true(schema != NULL && api != NULL);
	for (i = 0; i < schema_files_count; i++)
		schema[i] = schema_files[i];
	schema[i].version = schema[i - 1].version + 1;
	schema[i].name = "999_zz_dry.sql";
	schema[i].sql = "CREATE TABLE zz_dry (x integer);";
	for (i = 0; i < api_files_count; i++)
		api[i] = api_files[i];
	api[i].version = 99;
	api[i].name = "99_zz_dry.sql";
	api[i].sql = "CREATE OR REPLACE FUNCTION core.zz_dry_new() "
		     "RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;";
	h_db_exec(owner, "CREATE OR REPLACE FUNCTION api.schema_versions() "
			 "RETURNS SETOF integer LANGUAGE sql AS "
			 "$$ SELECT -1 $$");
	h_db_exec(owner, "CREATE FUNCTION core.zz_dry_stale() RETURNS int "
			 "LANGUAGE sql AS $$ SELECT 1 $$");
	snprintf(changed, sizeof changed, "%s",
		 function_def(db, "api.schema_versions()"));
	snprintf(nfuncs, sizeof nfuncs, "%s",
		 h_db_exec(db, "SELECT count(*) FROM pg_proc"));

	dry = fopen(out, "w");
	assert_non_null(dry);
	if (!migrate_run_logged(d->owner_conninfo, schema,
				schema_files_count + 1, api,
				api_files_count + 1, log, dry))
		h_fail("the dry run failed: see %s and %s", log, out);
	fclose(dry);
	if (!file_contains(out, "schema files to apply: 1"))
		h_fail("the dry run does not count the pending file: see %s",
		       out);
	/* sha256sum of the file's text */
	if (!file_contains(out, "sql/schema/999_zz_dry.sql  SHA-256 "
				"d3bbb16b5aaa8ff7a16705c35f510f6b182f37eb"
				"e11a746bd599d2784cc7fece"))
		h_fail("the dry run does not name the pending file with its "
		       "SHA-256: see %s", out);
	if (!file_contains(out, "nouvelle / new : core.zz_dry_new()") ||
	    !file_contains(out, "modifiée / changed : "
				"api.schema_versions()") ||
	    !file_contains(out, "supprimée / dropped : core.zz_dry_stale()"))
		h_fail("the dry run does not list the functions that change: "
		       "see %s", out);
	if (!file_contains(out, "functions that change: 3"))
		h_fail("the dry run lists functions that do not change: "
		       "see %s", out);
	if (file_contains(log, "applying schema file"))
		h_fail("the dry run logs that it applies: see %s", log);

	/* Nothing changed. */
	assert_string_equal(schema_record(db), before);
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM pg_class "
					  "WHERE relname = 'zz_dry'"), "0");
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM pg_proc"),
			    nfuncs);
	assert_string_equal(function_def(db, "api.schema_versions()"),
			    changed);

	/* The option, through the binary. */
	assert_int_equal(h_sh("'%s' -c '%s' --migrate --dry-run >'%s' 2>&1",
			      h_env("STRAPONTIND"), d->setup_conf, out), 0);
	if (!file_contains(out, "schema files to apply: 0") ||
	    !file_contains(out, "modifiée / changed : "
				"api.schema_versions()"))
		h_fail("strapontind --migrate --dry-run: see %s", out);
	assert_string_equal(function_def(db, "api.schema_versions()"),
			    changed);
	assert_int_equal(h_sh("'%s' -c '%s' --dry-run >/dev/null 2>&1",
			      h_env("STRAPONTIND"), d->setup_conf), 2);

	free(api);
	free(schema);
	PQfinish(owner);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Applies tests/integration/old_sql as the numbered-migration strapontind
 * did: each file in its transaction, recorded without hash, then its
 * privilege rules. */
static void
build_old_database(const char *owner_conninfo)
{
	PGconn *db = h_db_connect(owner_conninfo);
	char path[1200], sql[256];
	int v;

	h_db_exec(db, "CREATE TABLE schema_migrations (version integer "
		      "PRIMARY KEY, name text NOT NULL, applied_at timestamptz "
		      "NOT NULL DEFAULT now())");
	for (v = 1; v <= 13; v++) {
		char pattern[1300];
		char *text;
		FILE *f;
		long n;

		snprintf(pattern, sizeof pattern,
			 "ls '%s'/tests/integration/old_sql/%03d_*.sql",
			 h_env("ST_SOURCE_DIR"), v);
		f = popen(pattern, "r");
		assert_non_null(f);
		assert_non_null(fgets(path, sizeof path, f));
		pclose(f);
		path[strcspn(path, "\n")] = '\0';
		f = fopen(path, "r");
		assert_non_null(f);
		fseek(f, 0, SEEK_END);
		n = ftell(f);
		rewind(f);
		text = calloc(1, (size_t)n + 1);
		assert_non_null(text);
		assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
		fclose(f);
		h_db_exec(db, "BEGIN");
		h_db_exec(db, text);
		snprintf(sql, sizeof sql, "INSERT INTO schema_migrations "
			 "(version, name) VALUES (%d, '%s')", v,
			 strrchr(path, '/') + 1);
		h_db_exec(db, sql);
		h_db_exec(db, "COMMIT");
		free(text);
	}
	h_db_exec(db, "SELECT privileges_apply()");
	PQfinish(db);
}

/* A database of the numbered migrations, with data made by their
 * functions, upgrades: the hashes are recorded, its functions leave public
 * for core and api, and a daemon of this tree serves it. */
static void
test_upgrade_from_numbered_migrations(void **state)
{
	struct h_daemon old = {0}, *d;
	struct world w;
	PGconn *db;
	json_int_t offer, person;
	json_t *r;
	char log[700];

	(void)state;
	h_db_create("mig_old", old.conninfo, sizeof old.conninfo);
	snprintf(old.owner_conninfo, sizeof old.owner_conninfo,
		 "%s dbname=mig_old", h_pg_conninfo_owner());
	snprintf(old.runtime_conninfo, sizeof old.runtime_conninfo,
		 "%s dbname=mig_old", h_pg_conninfo_runtime());
	build_old_database(old.owner_conninfo);
	db = h_db_connect(old.conninfo);
	assert_true(atoi(h_db_exec(db, "SELECT count(*) FROM pg_proc WHERE "
				       "pronamespace = 'public'::regnamespace "
				       "AND proname = 'booking_create'")) == 1);

	snprintf(log, sizeof log, "%s/mig_old.log", h_test_dir());
	if (!migrate_logged(old.owner_conninfo, schema_files,
			    schema_files_count, log))
		h_fail("the upgrade failed: see %s", log);
	if (!file_contains(log, "001_foundation.sql: applied before hashes "
				"were recorded"))
		h_fail("the upgrade did not say it adopted the hashes: see %s",
		       log);
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM "
					  "schema_migrations WHERE sha256 IS NULL"),
			    "0");
	/* None of ours left in public: no stale duplicate to call. */
	assert_string_equal(
	    h_db_exec(db, "SELECT count(*) FROM pg_proc p WHERE pronamespace = "
			  "'public'::regnamespace AND proowner = '" H_OWNER_ROLE
			  "'::regrole"),
	    "0");
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM pg_proc WHERE "
					  "proname = 'booking_create'"), "1");
	PQfinish(db);

	log_configure(LL_WARN, false);
	/* The cost the harness's daemons have (policy.password_cost), so
	 * that logging in takes no longer than in the other tests. */
	pwhash_set_cost(10);
	assert_true(migrate_add_admin(old.owner_conninfo, H_ADMIN_EMAIL,
				      H_ADMIN_PASSWORD));
	d = h_daemon_start_same_db(&old, "mig_old_d", NULL);
	world_build(&w, d);
	offer = w_offer(w.partner, 4, 2, NULL);
	person = w_beneficiary(w.ref, "Aline", "Ancienne");
	r = w_book(w.ref, offer, person, 2);
	assert_string_equal(w_str(r, "status"), "confirmed");
	json_decref(r);
	r = h_call_ok(w.partner, "offer.get", json_pack("{sI}", "offer_id",
							 offer));
	assert_int_equal(w_int(r, "seats_available"), 2);
	json_decref(r);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edited_schema_file_refused),
		cmocka_unit_test(test_migrate_again),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_upgrade_from_numbered_migrations),
	};

	log_configure(LL_INFO, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
