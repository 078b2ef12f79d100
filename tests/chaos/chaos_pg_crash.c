/*
 * PostgreSQL crashes (every server process quits at once, `pg_ctl stop -m
 * immediate`) and restarts while two daemons take bookings. Requests
 * meanwhile answer `unavailable`, never hang; client connections stay
 * open; both daemons book again once the database is back; and the rows
 * hold every acknowledged booking and no overbooked offer.
 */
#include "chaos.h"

#include <stdio.h>

#define PROGRESS_MS 30000
#define RECOVERY_MS 45000
#define OUTAGE_MS 3000

static struct chaos_pg pg;

static int
teardown(void **state)
{
	(void)state;
	chaos_pg_stop(&pg);
	return 0;
}

/* Waits for the load to have acknowledged n more bookings. */
static void
wait_acks(struct chaos_load *l, int more, const char *what)
{
	long long deadline = h_now_ms() + PROGRESS_MS;
	int want = chaos_load_acked(l) + more;

	while (chaos_load_acked(l) < want)
		if (h_now_ms() > deadline)
			h_fail("%s: fewer than %d bookings in %d ms", what, more,
			    PROGRESS_MS);
		else
			h_sleep_ms(100);
}

static void
test_crash_under_load(void **state)
{
	struct chaos_scene s;
	struct chaos_load l;
	int i;

	(void)state;
	chaos_pg_start(&pg, "chaos_crash_pg");
	chaos_scene_build(&s, "chaos_crash", 2, &pg, NULL);
	chaos_load_init(&l, &s, 4, 100);
	chaos_load_start(&l);
	wait_acks(&l, 20, "before the crash");

	chaos_pg_crash(&pg);
	h_sleep_ms(OUTAGE_MS);
	chaos_pg_resume(&pg);

	for (i = 0; i < 2; i++)
		chaos_scene_recovered(&s, i, RECOVERY_MS);
	/* The load itself books again (unless the offers sold out). */
	if (chaos_load_tally(&l).sold_out == 0)
		wait_acks(&l, 10, "after the restart");
	chaos_load_stop(&l);
	if (l.tally.unavailable == 0)
		h_fail("no request answered unavailable: the crash was not "
		    "seen");
	/* A database crash is no reason to drop a client. */
	assert_int_equal(l.tally.lost, 0);
	chaos_scene_check(&s, &l);

	chaos_load_free(&l);
	chaos_scene_close(&s);
	for (i = 0; i < 2; i++)
		assert_int_equal(h_daemon_stop(s.d[i]), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_under_load),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
