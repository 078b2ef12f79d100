/*
 * A subscriber that stops reading while events pour in: the daemon's
 * memory stays bounded (its queue is dropped for a `resync` event, see
 * docs/protocol.md), others are served meanwhile, and the subscriber is
 * told to resync once it reads again. No database is harmed: the shared
 * cluster.
 */
#include "chaos.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ROUND 250	  /* offer.set_seats pipelined per round */
#define FILL_ROUNDS 200	  /* at most, until the daemon drops the queue */
#define MORE_EVENTS 6000  /* after that */
#define PING_MS 10000	  /* generous: others are served, not starved */

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

/* One round of set_seats on offer o: ROUND events. */
static void
set_seats_round(struct st_client *c, json_int_t o, int round)
{
	struct st_error err;
	int64_t ids[ROUND];
	int j;

	for (j = 0; j < ROUND; j++) {
		json_t *p = json_pack("{s:I, s:i}", "offer_id", o, "seats",
		    10 + (round * ROUND + j) % 50);

		ids[j] = st_send(c, "offer.set_seats", p, &err);
		json_decref(p);
		if (ids[j] < 0)
			h_fail("set_seats: %s", st_strerror(&err));
	}
	for (j = 0; j < ROUND; j++) {
		json_t *r;

		if (st_wait(c, ids[j], &r, &err) != ST_OK)
			h_fail("set_seats: %s", st_strerror(&err));
		json_decref(r);
	}
}

static long long
ping(struct st_client *c)
{
	long long t0 = h_now_ms();

	json_decref(h_call_ok(c, "system.ping", NULL));
	return h_now_ms() - t0;
}

/* The next event with this topic within timeout_ms, or NULL. */
static json_t *
next_event(struct st_client *c, const char *topic, int timeout_ms)
{
	struct st_error err;
	json_t *ev;

	while (st_next_event(c, &ev, timeout_ms, &err) == ST_OK) {
		if (strcmp(w_str(ev, "topic"), topic) == 0)
			return ev;
		json_decref(ev);
	}
	return NULL;
}

static void
test_slow_reader(void **state)
{
	struct chaos_scene s;
	struct st_client *slow, *reader, *other;
	struct st_error err;
	char *dump;
	json_int_t o;
	json_t *ev;
	size_t event_bytes;
	long rss1, rss2, unbounded_kb;
	long long worst = 0, lat, t0;
	int small = 4096, i;
	const char *asan = getenv("ASAN_OPTIONS");
	char opts[512];

	(void)state;
	/* ASan keeps freed memory aside (256 MB by default) before reuse:
	 * the daemon's resident size would then grow with the traffic, not
	 * with what it holds. */
	snprintf(opts, sizeof opts, "%s%squarantine_size_mb=4", asan ? asan : "",
	    asan && *asan ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	chaos_scene_build(&s, "chaos_slow", 1, NULL,
	    "[server]\nmax_output_bytes = 65536\n");
	o = s.offers[0];

	/* What one event weighs on the wire. */
	reader = h_login_admin(s.d[0]);
	json_decref(OK(reader, "events.subscribe", "{s:[s]}", "topics",
	    "offer.seats_changed"));
	json_decref(OK(s.w.partner, "offer.set_seats", "{s:I, s:i}", "offer_id",
	    o, "seats", 60));
	assert_non_null(ev = next_event(reader, "offer.seats_changed", 10000));
	dump = json_dumps(ev, JSON_COMPACT);
	event_bytes = strlen(dump);
	free(dump);
	json_decref(ev);
	st_close(reader);

	slow = h_login_admin(s.d[0]);
	json_decref(OK(slow, "events.subscribe", "{s:[s]}", "topics",
	    "offer.seats_changed"));
	setsockopt(st_fd(slow), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	other = h_connect(s.d[0]);

	t0 = h_now_ms();
	/* Until the kernel's buffers and the daemon's queue are full. */
	for (i = 0; i < FILL_ROUNDS &&
	    !h_log_contains(s.d[0], "slow event subscriber"); i++) {
		set_seats_round(s.w.partner, o, i);
		lat = ping(other);
		worst = lat > worst ? lat : worst;
	}
	assert_true(h_log_wait(s.d[0], "slow event subscriber", 10000));
	fprintf(stderr, "chaos: queue dropped after %d rounds, %lld ms\n", i,
	    h_now_ms() - t0);
	rss1 = wire_rss_kb(s.d[0]->pid);
	/* As many events again as would take megabytes to keep. */
	for (i = 0; i < MORE_EVENTS / ROUND; i++) {
		set_seats_round(s.w.partner, o, i);
		lat = ping(other);
		worst = lat > worst ? lat : worst;
	}
	rss2 = wire_rss_kb(s.d[0]->pid);
	unbounded_kb = (long)(MORE_EVENTS * event_bytes / 1024);
	fprintf(stderr, "chaos: %d events of %zu bytes to a reader that reads "
	    "nothing: resident %ld KiB, then %ld KiB (%ld KiB if kept); "
	    "slowest ping %lld ms; %lld ms\n", MORE_EVENTS, event_bytes, rss1,
	    rss2, unbounded_kb, worst, h_now_ms() - t0);
	if (rss2 - rss1 > unbounded_kb / 2)
		h_fail("the daemon grew by %ld KiB for %ld KiB of events to a "
		    "reader that reads nothing", rss2 - rss1, unbounded_kb);
	if (worst > PING_MS)
		h_fail("a ping took %lld ms during the flood", worst);
	chaos_scene_recovered(&s, 0, 30000);

	/* Reading again (a normal window; a request carries it to the
	 * daemon at once), the subscriber is told it missed events. */
	small = 4 << 20;
	setsockopt(st_fd(slow), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	{
		json_t *p = json_object();

		if (st_send(slow, "system.ping", p, &err) < 0)
			h_fail("ping: %s", st_strerror(&err));
		json_decref(p);
	}
	assert_non_null(ev = next_event(slow, "resync", 60000));
	json_decref(ev);

	st_close(slow);
	st_close(other);
	chaos_scene_check(&s, NULL);
	chaos_scene_close(&s);
	assert_int_equal(h_daemon_stop(s.d[0]), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
