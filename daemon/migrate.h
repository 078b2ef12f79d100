/* Schema migrations, compiled in from sql/NNN_name.sql. These run before
 * the daemon serves (--migrate, and the start-up check), so they use
 * blocking libpq: they are never on the request path. */
#ifndef MIGRATE_H
#define MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const size_t migrations_count;

/* The schema version this binary expects. */
int migrate_latest(void);

/* Applies pending migrations, each in its own transaction, under an
 * advisory lock so two daemons cannot migrate at once, then the privilege
 * rules (privileges_apply()) to every function of the schema. conninfo is
 * the schema owner's (database.migrate_conninfo). */
bool migrate_apply(const char *conninfo);

/* Number of compiled migrations the database lacks (-1 with a logged
 * reason if it cannot tell); *db_version gets the highest it has. */
int migrate_pending(const char *conninfo, int *db_version);

/* Creates or updates an admin user (--add-admin). */
bool migrate_add_admin(const char *conninfo, const char *email,
    const char *password);

#endif
