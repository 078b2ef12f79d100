#include "migrate.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pwhash.h"
#include "util.h"

#define MIGRATE_LOCK_KEY "727001"	/* pg_advisory_lock key */

int
migrate_latest(void)
{
	return migrations_count ? migrations[migrations_count - 1].version : 0;
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
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		log_error("%s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

/* Marks in applied[] the compiled migrations the database has. Returns
 * the highest version recorded (0 for an empty database), or -1. A
 * migration merged late with a lower number than one already applied is
 * still found missing, so it is applied rather than skipped. */
static int
applied_versions(PGconn *pg, bool *applied)
{
	PGresult *r;
	int max = 0, i;
	size_t j;

	for (j = 0; j < migrations_count; j++)
		applied[j] = false;
	r = PQexec(pg, "SELECT version FROM schema_migrations");
	/* The daemon's runtime role may not read the table (migration 11):
	 * it asks the function made for it. */
	if (PQresultStatus(r) != PGRES_TUPLES_OK &&
	    strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE) ?: "", "42501") == 0) {
		PQclear(r);
		r = PQexec(pg, "SELECT schema_versions()");
	}
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		bool empty = strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE) ?: "",
		    "42P01") == 0;	/* no table yet: an empty database */

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
		for (j = 0; j < migrations_count; j++)
			if (migrations[j].version == v)
				applied[j] = true;
	}
	PQclear(r);
	return max;
}

/* The privilege rules (sql/011_least_privilege.sql) again, after every
 * run: a function a migration created or replaced gets them too. */
static bool
apply_privileges(PGconn *pg)
{
	PGresult *r = PQexec(pg, "SELECT privileges_apply()");
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;

	if (ok)
		log_info("privileges applied: %s API entry points for "
		    "strapontin_api", PQgetvalue(r, 0, 0));
	else
		log_error("applying the privileges: %s",
		    PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

int
migrate_pending(const char *conninfo, int *db_version)
{
	PGconn *pg = connect_blocking(conninfo);
	bool applied[migrations_count ? migrations_count : 1];
	int max, pending = 0;
	size_t j;

	if (pg == NULL)
		return -1;
	max = applied_versions(pg, applied);
	PQfinish(pg);
	if (max < 0)
		return -1;
	for (j = 0; j < migrations_count; j++)
		pending += !applied[j];
	*db_version = max;
	return pending;
}

bool
migrate_apply(const char *conninfo)
{
	PGconn *pg = connect_blocking(conninfo);
	bool ok = false;
	bool applied[migrations_count ? migrations_count : 1];
	size_t i;
	int cur;

	if (pg == NULL)
		return false;
	if (!exec_ok(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
	    "lock"))
		goto out;
	if (!exec_ok(pg, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version integer PRIMARY KEY, name text NOT NULL, "
	    "applied_at timestamptz NOT NULL DEFAULT now())", "create table"))
		goto out;
	if ((cur = applied_versions(pg, applied)) < 0)
		goto out;
	if (cur > migrate_latest()) {
		log_error("the database schema (%d) is newer than this "
		    "strapontind (%d): upgrade the daemon", cur,
		    migrate_latest());
		goto out;
	}
	for (i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		const char *vals[2];
		char ver[16];
		PGresult *r;

		if (applied[i])
			continue;
		log_info("applying migration %s", m->name);
		if (!exec_ok(pg, "BEGIN", "begin"))
			goto out;
		if (!exec_ok(pg, m->sql, m->name)) {
			exec_ok(pg, "ROLLBACK", "rollback");
			goto out;
		}
		snprintf(ver, sizeof ver, "%d", m->version);
		vals[0] = ver;
		vals[1] = m->name;
		r = PQexecParams(pg, "INSERT INTO schema_migrations "
		    "(version, name) VALUES ($1, $2)", 2, NULL, vals, NULL,
		    NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			log_error("recording %s: %s", m->name,
			    PQresultErrorMessage(r));
			PQclear(r);
			exec_ok(pg, "ROLLBACK", "rollback");
			goto out;
		}
		PQclear(r);
		if (!exec_ok(pg, "COMMIT", "commit"))
			goto out;
	}
	if (!apply_privileges(pg))
		goto out;
	log_info("schema is at version %d", migrate_latest());
	ok = true;
out:
	PQfinish(pg);	/* also releases the advisory lock */
	return ok;
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
	r = PQexecParams(pg, "SELECT admin_upsert($1, $2)", 2, NULL, vals,
	    NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		log_error("cannot create the admin: %s",
		    PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(pg);
	explicit_bzero(hash, strlen(hash));
	free(hash);
	free(lower);
	return ok;
}
