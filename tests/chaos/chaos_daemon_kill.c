/*
 * One of two daemons is killed with SIGKILL while both take bookings: its
 * clients go to the other, which keeps serving; the killed one starts
 * again and serves too; and the rows hold every acknowledged booking and
 * no overbooked offer (a transaction cut by the kill is rolled back, never
 * half done).
 */
#include "chaos.h"

#include <signal.h>
#include <stdio.h>

#define PROGRESS_MS 30000
#define RECOVERY_MS 30000

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
test_kill_under_load(void **state)
{
	struct chaos_scene s;
	struct chaos_load l;

	(void)state;
	chaos_scene_build(&s, "chaos_kill", 2, NULL, NULL);
	chaos_load_init(&l, &s, 6, 50);
	chaos_load_start(&l);
	wait_acks(&l, 30, "before the kill");

	assert_int_equal(h_daemon_signal(s.d[1], SIGKILL), 0);
	assert_int_equal(h_daemon_wait(s.d[1], 10000), -1);
	/* The survivor serves, the load included. */
	chaos_scene_recovered(&s, 0, RECOVERY_MS);
	if (chaos_load_tally(&l).sold_out == 0)
		wait_acks(&l, 20, "after the kill");
	h_daemon_restart(s.d[1]);
	chaos_scene_recovered(&s, 1, RECOVERY_MS);
	chaos_load_stop(&l);
	/* The clients of the killed daemon noticed, and moved. */
	if (l.tally.lost == 0)
		h_fail("no client lost its connection to the killed daemon");
	chaos_scene_check(&s, &l);

	chaos_load_free(&l);
	chaos_scene_close(&s);
	assert_int_equal(h_daemon_stop(s.d[1]), 0);
	assert_int_equal(h_daemon_stop(s.d[0]), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_under_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
