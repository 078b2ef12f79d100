#include "migrate.h"

#include <libpq-fe.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pwhash.h"
#include "util.h"

#define MIGRATE_LOCK_KEY "727001"	/* pg_advisory_lock key */

/* The api transaction: its objects are created where the files say (core.,
 * api., public.), and their bodies name each other unqualified. core comes
 * before public, so that a view re-created on a database made before
 * sql/api binds the new helpers, not the old copies that api_prune() then
 * drops from public. */
#define API_SEARCH_PATH "core, api, public"

int
migrate_latest(void)
{
	return schema_files_count ?
	    schema_files[schema_files_count - 1].version : 0;
}

static void
notice_quiet(void *arg, const char *msg)
{
}

static PGconn *
connect_blocking(const char *conninfo)
{
	PGconn *pg = PQconnectdb(conninfo);

	if (PQstatus(pg) != CONNECTION_OK) {
		char msg[512];

		snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg));
		msg[strcspn(msg, "\n")] = '\0';
		log_error("cannot connect to the database: %s", msg);
		PQfinish(pg);
		return NULL;
	}
	/* Our NOTICEs (CREATE IF NOT EXISTS...) are noise. */
	PQsetNoticeProcessor(pg, notice_quiet, NULL);
	return pg;
}

static bool
exec_ok(PGconn *pg, const char *sql, const char *what)
{
	PGresult *r = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(r);
	/* A schema file may hold only comments (its functions went to
	 * sql/api): an empty query. */
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ||
	    st == PGRES_EMPTY_QUERY;

	if (!ok)
		log_error("%s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

/* A step's transaction. A dry run (migrate_dry_run()) holds all of its
 * steps in one transaction that it rolls back: there each step is a
 * savepoint of it. */
static bool
step_begin(PGconn *pg, bool dry)
{
	return exec_ok(pg, dry ? "SAVEPOINT step" : "BEGIN", "begin");
}

static bool
step_commit(PGconn *pg, bool dry)
{
	return exec_ok(pg, dry ? "RELEASE SAVEPOINT step" : "COMMIT", "commit");
}

static void
step_rollback(PGconn *pg, bool dry)
{
	exec_ok(pg, dry ? "ROLLBACK TO SAVEPOINT step" : "ROLLBACK",
	    "rollback");
}

static const char *
sqlstate(const PGresult *r)
{
	return PQresultErrorField(r, PG_DIAG_SQLSTATE) ?: "";
}

/* Lower-case hex SHA-256 of a file's text, as sha256sum prints it. */
static void
file_sha256(const struct sql_file *f, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)f->sql, strlen(f->sql), md);
	hex_encode(md, sizeof md, out);
}

/* Marks in applied[] the schema files the database has. Returns the
 * highest version recorded (0 for an empty database), or -1. A file merged
 * late with a lower number than one already applied is still found
 * missing, so it is applied rather than skipped. */
static int
applied_versions(PGconn *pg, const struct sql_file *files, size_t count,
    bool *applied)
{
	PGresult *r;
	int max = 0, i;
	size_t j;

	for (j = 0; j < count; j++)
		applied[j] = false;
	r = PQexec(pg, "SELECT version FROM schema_migrations");
	/* The daemon's runtime role may not read the table (schema 11): it
	 * asks the function made for it, api.schema_versions(), or the one
	 * of a database that has not been migrated since sql/api exists. */
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
	    strcmp(sqlstate(r), "42501") == 0) {
		PQclear(r);
		r = PQexec(pg, "SELECT api.schema_versions()");
		if (PQresultStatus(r) != PGRES_TUPLES_OK &&
		    (strcmp(sqlstate(r), "3F000") == 0 ||
		    strcmp(sqlstate(r), "42883") == 0)) {
			PQclear(r);
			r = PQexec(pg, "SELECT schema_versions()");
		}
	}
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		/* no table yet: an empty database */
		bool empty = strcmp(sqlstate(r), "42P01") == 0;

		if (!empty)
			log_error("cannot read the schema version: %s",
			    PQresultErrorMessage(r));
		PQclear(r);
		return empty ? 0 : -1;
	}
	for (i = 0; i < PQntuples(r); i++) {
		int v = atoi(PQgetvalue(r, i, 0));

		if (v > max)
			max = v;
		for (j = 0; j < count; j++)
			if (files[j].version == v)
				applied[j] = true;
	}
	PQclear(r);
	return max;
}

/* Compares the hash of every applied schema file with this binary's.
 * A row without hash comes from a database made before hashes were
 * recorded (the numbered migrations of sql/): it adopts the file's
 * current hash, said in the log (counted in *adopted, and not said in a
 * dry run). False, naming the file, at the first difference. */
static bool
check_hashes(PGconn *pg, const struct sql_file *files, size_t count,
    bool dry, int *adopted)
{
	PGresult *r = PQexec(pg,
	    "SELECT version, sha256 FROM schema_migrations ORDER BY version");
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	int i;
	size_t j;

	if (!ok)
		log_error("reading the applied schema files: %s",
		    PQresultErrorMessage(r));
	for (i = 0; ok && i < PQntuples(r); i++) {
		int v = atoi(PQgetvalue(r, i, 0));
		const struct sql_file *f = NULL;
		char hash[65], ver[16];
		const char *vals[3];
		PGresult *u;

		for (j = 0; j < count && f == NULL; j++)
			if (files[j].version == v)
				f = &files[j];
		if (f == NULL)
			continue;	/* newer than us: refused by the caller */
		file_sha256(f, hash);
		if (!PQgetisnull(r, i, 1)) {
			if (strcmp(PQgetvalue(r, i, 1), hash) == 0)
				continue;
			log_error("sql/schema/%s was changed after the database "
			    "applied it (SHA-256 %s then, %s now): a schema "
			    "file is append-only; restore it and put the change "
			    "in a new file (docs/operations.md)", f->name,
			    PQgetvalue(r, i, 1), hash);
			ok = false;
			break;
		}
		(*adopted)++;
		if (!dry)
			log_info("schema file %s: applied before hashes were "
			    "recorded, recording its current SHA-256 %s",
			    f->name, hash);
		snprintf(ver, sizeof ver, "%d", v);
		vals[0] = ver;
		vals[1] = f->name;
		vals[2] = hash;
		u = PQexecParams(pg, "UPDATE schema_migrations SET name = $2, "
		    "sha256 = $3 WHERE version = $1", 3, NULL, vals, NULL, NULL,
		    0);
		ok = PQresultStatus(u) == PGRES_COMMAND_OK;
		if (!ok)
			log_error("recording the hash of %s: %s", f->name,
			    PQresultErrorMessage(u));
		PQclear(u);
	}
	PQclear(r);
	return ok;
}

/* One schema file and its record, in one transaction. */
static bool
apply_schema_file(PGconn *pg, const struct sql_file *f, bool dry)
{
	const char *vals[3];
	char ver[16], hash[65];
	PGresult *r;

	if (!dry)
		log_info("applying schema file %s", f->name);
	if (!step_begin(pg, dry))
		return false;
	if (!exec_ok(pg, f->sql, f->name))
		goto fail;
	snprintf(ver, sizeof ver, "%d", f->version);
	file_sha256(f, hash);
	vals[0] = ver;
	vals[1] = f->name;
	vals[2] = hash;
	r = PQexecParams(pg, "INSERT INTO schema_migrations "
	    "(version, name, sha256) VALUES ($1, $2, $3)", 3, NULL, vals, NULL,
	    NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_error("recording %s: %s", f->name, PQresultErrorMessage(r));
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	return step_commit(pg, dry);
fail:
	step_rollback(pg, dry);
	return false;
}

/* Runs a statement of one integer result; -1 on error (logged). */
static int
exec_count(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	int n = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		n = atoi(PQgetvalue(r, 0, 0));
	else
		log_error("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return n;
}

/* All of sql/api in one transaction: each function's one definition
 * replaces the database's, what sql/api no longer defines is dropped, and
 * the privilege rules apply to the result, so that no other session ever
 * sees the API half replaced or an entry point without its rules. Bodies
 * are checked when first called, not here: a function may call one of a
 * later file. */
static bool
apply_api(PGconn *pg, const struct sql_file *files, size_t count, bool dry,
    int *pruned_out)
{
	int pruned, entries;
	size_t i;

	/* Not a savepoint in a dry run: core.api_prune() keeps what the
	 * top transaction wrote, and a savepoint's rows bear its own xid. */
	if (!dry && !exec_ok(pg, "BEGIN", "begin"))
		return false;
	if (!exec_ok(pg, "SET LOCAL check_function_bodies = off; "
	    "SET LOCAL search_path = " API_SEARCH_PATH, "api settings"))
		goto fail;
	for (i = 0; i < count; i++)
		if (!exec_ok(pg, files[i].sql, files[i].name))
			goto fail;
	if ((pruned = exec_count(pg, "SELECT core.api_prune()")) < 0)
		goto fail;
	if ((entries = exec_count(pg, "SELECT core.privileges_apply()")) < 0)
		goto fail;
	if (!dry && !exec_ok(pg, "COMMIT", "commit"))
		return false;
	*pruned_out = pruned;
	if (!dry)
		log_info("api applied: %zu files, %d objects no longer defined "
		    "dropped, %d entry points for strapontin_api", count,
		    pruned, entries);
	return true;
fail:
	if (!dry)
		exec_ok(pg, "ROLLBACK", "rollback");
	return false;
}

int
migrate_pending(const char *conninfo, int *db_version)
{
	PGconn *pg = connect_blocking(conninfo);
	bool applied[schema_files_count ? schema_files_count : 1];
	int max, pending = 0;
	size_t j;

	if (pg == NULL)
		return -1;
	max = applied_versions(pg, schema_files, schema_files_count, applied);
	PQfinish(pg);
	if (max < 0)
		return -1;
	for (j = 0; j < schema_files_count; j++)
		pending += !applied[j];
	*db_version = max;
	return pending;
}

/* The functions of public, core and api, each as its signature and a
 * digest of its definition and privileges. Signatures are written with
 * search_path = pg_catalog, inside a savepoint that puts the path back:
 * schema-qualified the same way before and after. */
#define FUNCS_SQL \
	"SELECT n.nspname || '.' || p.proname || '(' || " \
	"pg_get_function_identity_arguments(p.oid) || ')' AS f, " \
	"md5(pg_get_functiondef(p.oid) || coalesce(p.proacl::text, '')) AS h " \
	"FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace " \
	"WHERE n.nspname IN ('public', 'core', 'api') " \
	"AND p.prokind IN ('f', 'p')"

/* The functions now, as a JSON object signature -> digest; NULL on error
 * (logged). The caller frees it. */
static char *
functions_snapshot(PGconn *pg)
{
	PGresult *r;
	char *json = NULL;

	if (!exec_ok(pg, "SAVEPOINT snap; SET LOCAL search_path = pg_catalog",
	    "snapshot"))
		return NULL;
	r = PQexec(pg, "SELECT coalesce(jsonb_object_agg(f, h), '{}')::text "
	    "FROM (" FUNCS_SQL ") s");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		json = xstrdup(PQgetvalue(r, 0, 0));
	else
		log_error("reading the functions: %s", PQresultErrorMessage(r));
	PQclear(r);
	if (!exec_ok(pg, "ROLLBACK TO SAVEPOINT snap; RELEASE SAVEPOINT snap",
	    "snapshot")) {
		free(json);
		json = NULL;
	}
	return json;
}

/* Prints the functions that differ from the snapshot before: new,
 * changed, dropped. False on error (logged). */
static bool
functions_diff(PGconn *pg, const char *before, FILE *out)
{
	const char *vals[1] = { before };
	PGresult *r;
	bool ok;
	int i, n;

	if (!exec_ok(pg, "SAVEPOINT snap; SET LOCAL search_path = pg_catalog",
	    "snapshot"))
		return false;
	r = PQexecParams(pg, "WITH b AS (SELECT key AS f, value AS h FROM "
	    "jsonb_each_text($1::jsonb)), a AS (" FUNCS_SQL ") "
	    "SELECT CASE WHEN b.f IS NULL THEN 'nouvelle / new' "
	    "WHEN a.f IS NULL THEN 'supprimée / dropped' "
	    "ELSE 'modifiée / changed' END, coalesce(a.f, b.f) "
	    "FROM a FULL JOIN b ON a.f = b.f WHERE a.h IS DISTINCT FROM b.h "
	    "ORDER BY 2", 1, NULL, vals, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		log_error("comparing the functions: %s",
		    PQresultErrorMessage(r));
	n = ok ? PQntuples(r) : 0;
	if (ok && n == 0)
		fprintf(out, "  aucune fonction ne change / no function "
		    "changes\n");
	else if (ok)
		fprintf(out, "  fonctions qui changent / functions that "
		    "change: %d\n", n);
	for (i = 0; i < n; i++)
		fprintf(out, "    %s : %s\n", PQgetvalue(r, i, 0),
		    PQgetvalue(r, i, 1));
	PQclear(r);
	return exec_ok(pg, "ROLLBACK TO SAVEPOINT snap; "
	    "RELEASE SAVEPOINT snap", "snapshot") && ok;
}

/* --migrate, or its dry run when dry is a stream: then every step runs in
 * one transaction, rolled back at the end, and what the steps would do is
 * printed to dry. The refusals (changed file, newer schema) are the same
 * in both, with the same messages. */
static bool
run_migration(const char *conninfo, const struct sql_file *schema,
    size_t schema_count, const struct sql_file *api, size_t api_count,
    FILE *dry)
{
	PGconn *pg = connect_blocking(conninfo);
	bool ok = false;
	bool applied[schema_count ? schema_count : 1];
	int latest = schema_count ? schema[schema_count - 1].version : 0;
	int cur, adopted = 0, pending = 0, pruned = 0;
	char *before = NULL, hash[65];
	size_t i;

	if (pg == NULL)
		return false;
	if (!exec_ok(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
	    "lock"))
		goto out;
	if (dry && !exec_ok(pg, "BEGIN", "begin"))
		goto out;
	/* sha256 is NULL in the rows of a database made before it existed. */
	if (!exec_ok(pg, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version integer PRIMARY KEY, name text NOT NULL, "
	    "applied_at timestamptz NOT NULL DEFAULT now(), sha256 text); "
	    "ALTER TABLE schema_migrations "
	    "ADD COLUMN IF NOT EXISTS sha256 text", "create table"))
		goto out;
	if ((cur = applied_versions(pg, schema, schema_count, applied)) < 0)
		goto out;
	if (cur > latest) {
		log_error("the database schema (%d) is newer than this "
		    "strapontind (%d): upgrade the daemon", cur, latest);
		goto out;
	}
	if (!check_hashes(pg, schema, schema_count, dry != NULL, &adopted))
		goto out;
	if (dry) {
		if ((before = functions_snapshot(pg)) == NULL)
			goto out;
		for (i = 0; i < schema_count; i++)
			pending += !applied[i];
		fprintf(dry, "schéma de la base / database schema: %d ; "
		    "de ce strapontind / of this strapontind: %d\n", cur,
		    latest);
		if (adopted > 0)
			fprintf(dry, "empreintes à enregistrer / hashes to "
			    "record: %d (fichiers appliqués avant les "
			    "empreintes / files applied before hashes)\n",
			    adopted);
		fprintf(dry, "fichiers de schéma à appliquer / schema files "
		    "to apply: %d\n", pending);
	}
	for (i = 0; i < schema_count; i++) {
		if (applied[i])
			continue;
		if (!apply_schema_file(pg, &schema[i], dry != NULL))
			goto out;
		if (dry) {
			file_sha256(&schema[i], hash);
			fprintf(dry, "  sql/schema/%s  SHA-256 %s\n",
			    schema[i].name, hash);
		}
	}
	if (!apply_api(pg, api, api_count, dry != NULL, &pruned))
		goto out;
	if (dry) {
		fprintf(dry, "sql/api : réappliqué en entier, %zu fichiers, "
		    "%d objets supprimés / re-applied in full, %zu files, "
		    "%d objects dropped\n", api_count, pruned, api_count,
		    pruned);
		if (!functions_diff(pg, before, dry))
			goto out;
		if (!exec_ok(pg, "ROLLBACK", "rollback"))
			goto out;
		fprintf(dry, "essai annulé, rien n'a changé / dry run rolled "
		    "back, nothing changed\n");
	} else
		log_info("schema is at version %d", latest);
	ok = true;
out:
	free(before);
	/* Also releases the advisory lock and, in a dry run that stopped
	 * half-way, rolls its transaction back. */
	PQfinish(pg);
	return ok;
}

bool
migrate_apply_files(const char *conninfo, const struct sql_file *schema,
    size_t schema_count, const struct sql_file *api, size_t api_count)
{
	return run_migration(conninfo, schema, schema_count, api, api_count,
	    NULL);
}

bool
migrate_apply(const char *conninfo)
{
	return migrate_apply_files(conninfo, schema_files, schema_files_count,
	    api_files, api_files_count);
}

bool
migrate_dry_run_files(const char *conninfo, const struct sql_file *schema,
    size_t schema_count, const struct sql_file *api, size_t api_count,
    FILE *out)
{
	bool ok = run_migration(conninfo, schema, schema_count, api,
	    api_count, out);

	fflush(out);
	return ok;
}

bool
migrate_dry_run(const char *conninfo, FILE *out)
{
	return migrate_dry_run_files(conninfo, schema_files,
	    schema_files_count, api_files, api_files_count, out);
}

bool
migrate_add_admin(const char *conninfo, const char *email,
    const char *password)
{
	PGconn *pg;
	PGresult *r;
	const char *vals[2];
	char *hash, *lower;
	bool ok;
	size_t i;

	if ((hash = pwhash_hash(password)) == NULL) {
		log_error("cannot hash the password");
		return false;
	}
	if ((pg = connect_blocking(conninfo)) == NULL) {
		free(hash);
		return false;
	}
	lower = xstrdup(email);
	for (i = 0; lower[i]; i++)
		if (lower[i] >= 'A' && lower[i] <= 'Z')
			lower[i] = (char)(lower[i] - 'A' + 'a');
	vals[0] = lower;
	vals[1] = hash;
	/* admin_upsert is a helper: its body and the triggers it fires name
	 * the helpers of core unqualified. */
	if (!exec_ok(pg, "SET search_path = " API_SEARCH_PATH, "search_path")) {
		ok = false;
		goto out;
	}
	r = PQexecParams(pg, "SELECT core.admin_upsert($1, $2)", 2, NULL, vals,
	    NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		log_error("cannot create the admin: %s",
		    PQresultErrorMessage(r));
	PQclear(r);
out:
	PQfinish(pg);
	explicit_bzero(hash, strlen(hash));
	free(hash);
	free(lower);
	return ok;
}
