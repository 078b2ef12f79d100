/* The database's schema and API, compiled in from sql/ (docs/operations.md,
 * "The sql/ tree"): sql/schema/NNN_name.sql, append-only DDL applied once
 * each, and sql/api/NN_domain.sql, the functions, re-applied in full by
 * every run. These run before the daemon serves (--migrate, and the
 * start-up check), so they use blocking libpq: they are never on the
 * request path. */
#ifndef MIGRATE_H
#define MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct sql_file {
	int version;		/* NNN of the file's name */
	const char *name;	/* "001_foundation.sql" */
	const char *sql;
};

extern const struct sql_file schema_files[];
extern const size_t schema_files_count;
extern const struct sql_file api_files[];
extern const size_t api_files_count;

/* The schema version this binary expects: its last schema file's. */
int migrate_latest(void);

/* Under an advisory lock, so two daemons cannot migrate at once: refuses
 * (false, naming the file) if a schema file the database has applied
 * differs from this binary's by its SHA-256; applies the pending schema
 * files, each in its own transaction with its hash; then, in one
 * transaction, every api file, the removal of what they no longer define
 * (core.api_prune()) and the privilege rules (core.privileges_apply()).
 * conninfo is the schema owner's (database.migrate_conninfo). */
bool migrate_apply(const char *conninfo);

/* The same with the given files instead of the compiled ones: the tests'
 * way to present an edited schema file. */
bool migrate_apply_files(const char *conninfo,
    const struct sql_file *schema, size_t schema_count,
    const struct sql_file *api, size_t api_count);

/* --migrate --dry-run: the same steps, refusals and messages as
 * migrate_apply(), in one transaction rolled back at the end; prints to
 * out, French first, the schema files it would apply (with their
 * SHA-256), and the functions that sql/api would add, change or drop.
 * True if the migration would succeed. */
bool migrate_dry_run(const char *conninfo, FILE *out);
bool migrate_dry_run_files(const char *conninfo,
    const struct sql_file *schema, size_t schema_count,
    const struct sql_file *api, size_t api_count, FILE *out);

/* Number of compiled schema files the database lacks (-1 with a logged
 * reason if it cannot tell); *db_version gets the highest it has. Works as
 * the runtime role (api.schema_versions()). */
int migrate_pending(const char *conninfo, int *db_version);

/* Creates or updates an admin user (--add-admin). */
bool migrate_add_admin(const char *conninfo, const char *email,
    const char *password);

#endif
