/*
 * Backups that restore (docs/operations.md, "Backups, restores and
 * upgrades"): a database filled through the API of a running daemon is
 * dumped with pg_dump (custom format) and its roles with pg_dumpall
 * --globals-only, both restored into a fresh cluster (scripts/pg-tmp) the
 * way the documentation says, and a daemon started on the copy serves the
 * same data: same rows, the seat invariants, every user logs in, every
 * booking has its code and state, and a ticket checks in.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_data.inc"

/* The restored cluster's directory, stopped at exit whatever happens. */
static char restore_dir[600];

static void
stop_restore_cluster(void)
{
	if (restore_dir[0] != '\0')
		h_sh("'%s/scripts/pg-tmp' stop '%s' >/dev/null 2>&1",
		     h_env("ST_SOURCE_DIR"), restore_dir);
}

/* The directory of the newest PostgreSQL's programs, as scripts/pg-tmp
 * chooses it: pg_dump must be at least as new as the server. */
static const char *
pg_bindir(void)
{
	static char dir[256];
	FILE *f;

	if (dir[0] != '\0')
		return dir;
	f = popen("ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1",
		  "r");
	assert_non_null(f);
	if (fgets(dir, sizeof dir, f) == NULL)
		h_fail("no PostgreSQL in /usr/lib/postgresql (scripts/deps)");
	pclose(f);
	dir[strcspn(dir, "\n")] = '\0';
	return dir;
}

static void
test_dump_and_restore(void **state)
{
	struct h_daemon *d = h_daemon_start("bak_src", NULL), copy = {0}, *d2;
	const char *bin = pg_bindir(), *dir = h_test_dir();
	char su[300], owner[300], runtime[300], path[1200], digest[64];
	struct world w;
	struct ops_data o;
	PGconn *db, *admin;

	(void)state;
	world_build(&w, d);
	ops_fill(&w, &o);
	world_close(&w);
	db = h_db_connect(d->conninfo);
	ops_invariants(db);
	snprintf(digest, sizeof digest, "%s", ops_digest(db));
	PQfinish(db);

	/* The backup, taken while the daemon serves. */
	if (h_sh("'%s/pg_dump' -Fc -f '%s/bak.dump' -d '%s'", bin, dir,
		 d->conninfo) != 0)
		h_fail("pg_dump failed");
	if (h_sh("'%s/pg_dumpall' --globals-only -f '%s/bak-globals.sql' "
		 "-d '%s'", bin, dir, h_pg_conninfo()) != 0)
		h_fail("pg_dumpall --globals-only failed");
	assert_int_equal(h_daemon_stop(d), 0);

	/* A fresh cluster, without our roles: they come from the backup. */
	snprintf(restore_dir, sizeof restore_dir, "%s/pg-restore", dir);
	atexit(stop_restore_cluster);
	if (h_sh("'%s/scripts/pg-tmp' start '%s' >/dev/null",
		 h_env("ST_SOURCE_DIR"), restore_dir) != 0)
		h_fail("scripts/pg-tmp could not make the fresh cluster");
	snprintf(path, sizeof path, "%s/conninfo", restore_dir);
	h_read_line(path, su, sizeof su);
	snprintf(path, sizeof path, "%s/conninfo.owner", restore_dir);
	h_read_line(path, owner, sizeof owner);
	snprintf(path, sizeof path, "%s/conninfo.runtime", restore_dir);
	h_read_line(path, runtime, sizeof runtime);
	snprintf(path, sizeof path, "%s dbname=postgres", su);
	admin = h_db_connect(path);
	h_db_exec(admin, "DROP ROLE strapontin");
	h_db_exec(admin, "DROP ROLE strapontin_api");
	h_db_exec(admin, "DROP ROLE strapontin_owner");

	/* The restore, as docs/operations.md says: the roles (the only error
	 * allowed is the superuser's, which every cluster has), an empty
	 * database owned by the owner role, the dump. */
	h_sh("'%s/psql' -X -q -d '%s' -f '%s/bak-globals.sql' "
	     ">'%s/bak-globals.out' 2>&1", bin, path, dir, dir);
	if (h_sh("grep ERROR '%s/bak-globals.out' | grep -qv "
		 "'role \"postgres\" already exists'", dir) == 0)
		h_fail("restoring the roles failed: see %s/bak-globals.out",
		       dir);
	h_db_exec(admin, "CREATE DATABASE bak_dst OWNER strapontin_owner");
	PQfinish(admin);
	snprintf(copy.conninfo, sizeof copy.conninfo, "%s dbname=bak_dst", su);
	snprintf(copy.owner_conninfo, sizeof copy.owner_conninfo,
		 "%s dbname=bak_dst", owner);
	snprintf(copy.runtime_conninfo, sizeof copy.runtime_conninfo,
		 "%s dbname=bak_dst", runtime);
	if (h_sh("'%s/pg_restore' --exit-on-error -d '%s' '%s/bak.dump' "
		 ">'%s/bak-restore.out' 2>&1", bin, copy.conninfo, dir,
		 dir) != 0)
		h_fail("pg_restore failed: see %s/bak-restore.out", dir);

	/* The same rows, and they hold. */
	db = h_db_connect(copy.conninfo);
	if (strcmp(ops_digest(db), digest) != 0)
		h_fail("the restored rows differ from the dumped ones (users, "
		       "beneficiaries, offers, bookings, waiting list, blocks)");
	ops_invariants(db);

	d2 = h_daemon_start_same_db(&copy, "bak_dst", NULL);
	/* Nothing for --migrate to do: the schema's record and every
	 * function came through, privileges included. */
	snprintf(path, sizeof path, "%s/dry-run.out", d2->dir);
	if (h_sh("'%s' -c '%s' --migrate --dry-run >'%s' 2>&1",
		 h_env("STRAPONTIND"), d2->setup_conf, path) != 0 ||
	    h_sh("grep -q 'schema files to apply: 0' '%s' && "
		 "grep -q 'no function changes' '%s'", path, path) != 0)
		h_fail("--migrate --dry-run on the restored database: see %s",
		       path);
	ops_check_api(d2, &o);
	ops_invariants(db);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d2), 0);
	stop_restore_cluster();
	restore_dir[0] = '\0';
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump_and_restore),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
