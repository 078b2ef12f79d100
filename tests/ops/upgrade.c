/*
 * Upgrades lose nothing (docs/operations.md, "Upgrades"): the strapontind
 * of an older commit (UPGRADE_FROM, built from the git history by
 * tests/ops/build-old-daemon) makes its database and serves it; it is
 * filled through that old daemon's API; then, with the old daemon still
 * running, as the documented procedure does, this tree's `--migrate
 * --dry-run` and `--migrate` run; the old daemon is stopped and one of
 * this tree started on the same database, which has every row of before,
 * the seat invariants, every login, every booking's code and state, and a
 * ticket that checks in.
 *
 * The old daemon is configured by this tree's harness: a configuration
 * key the harness learns later must be one the old daemon knows, or
 * UPGRADE_FROM must move forward with it.
 *
 * Plain build only (tests/CMakeLists.txt, label upgrade): building the
 * old daemon takes a minute or two.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

#include "../integration/ops_data.inc"

/* The state of main when issue 13 began. */
#define UPGRADE_FROM "be1d7a6"

static void
test_upgrade(void **state)
{
	char old_bin[1024], cur_bin[1024], path[1200], out[1200];
	struct h_daemon *old, *d;
	struct world w;
	struct ops_data o;
	PGconn *db;
	char digest[64], latest[16];
	json_t *r;
	FILE *f;

	(void)state;
	snprintf(cur_bin, sizeof cur_bin, "%s", h_env("STRAPONTIND"));
	snprintf(path, sizeof path, "%s/old-daemon.path", h_test_dir());
	if (h_sh("'%s/tests/ops/build-old-daemon' '%s' %s '%s/old-daemon' "
		 ">'%s'", h_env("ST_SOURCE_DIR"), h_env("ST_SOURCE_DIR"),
		 UPGRADE_FROM, h_test_dir(), path) != 0)
		h_fail("cannot build the strapontind of %s (its reason is "
		       "above)", UPGRADE_FROM);
	f = fopen(path, "r");
	if (f == NULL || fgets(old_bin, sizeof old_bin, f) == NULL)
		h_fail("no binary path in %s", path);
	fclose(f);
	old_bin[strcspn(old_bin, "\n")] = '\0';

	/* The old daemon makes its database and serves it. */
	setenv("STRAPONTIND", old_bin, 1);
	old = h_daemon_start("upg", NULL);
	setenv("STRAPONTIND", cur_bin, 1);
	world_build(&w, old);
	ops_fill(&w, &o);
	db = h_db_connect(old->conninfo);
	ops_invariants(db);
	snprintf(digest, sizeof digest, "%s", ops_digest(db));

	/* This tree's migration, under the running old daemon. */
	snprintf(out, sizeof out, "%s/dry-run.out", old->dir);
	if (h_sh("'%s' -c '%s' --migrate --dry-run >'%s' 2>&1", cur_bin,
		 old->setup_conf, out) != 0 ||
	    h_sh("grep -q 'nothing changed' '%s'", out) != 0)
		h_fail("--migrate --dry-run on the old database: see %s", out);
	if (strcmp(ops_digest(db), digest) != 0)
		h_fail("--migrate --dry-run changed rows");
	snprintf(out, sizeof out, "%s/migrate.out", old->dir);
	if (h_sh("'%s' -c '%s' --migrate >'%s' 2>&1", cur_bin,
		 old->setup_conf, out) != 0)
		h_fail("--migrate on the old database failed: see %s", out);
	snprintf(latest, sizeof latest, "%d", migrate_latest());
	assert_string_equal(h_db_exec(db, "SELECT max(version) FROM "
					  "schema_migrations"), latest);
	/* The old daemon's pool came through it. */
	r = h_call_ok(w.admin, "system.health", NULL);
	assert_string_equal(w_str(r, "db"), "ok");
	json_decref(r);
	world_close(&w);
	assert_int_equal(h_daemon_stop(old), 0);

	/* This tree's daemon on the migrated database. */
	d = h_daemon_start_same_db(old, "upg_new", NULL);
	if (strcmp(ops_digest(db), digest) != 0)
		h_fail("the upgrade changed or lost rows (users, beneficiaries, "
		       "offers, bookings, waiting list, blocks)");
	ops_invariants(db);
	ops_check_api(d, &o);
	ops_invariants(db);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upgrade),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
