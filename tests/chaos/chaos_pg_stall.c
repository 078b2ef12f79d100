/*
 * PostgreSQL stalls: every server process is stopped (SIGSTOP) with its
 * connections open, then continued (SIGCONT). Meanwhile the daemon's loop
 * is not blocked: system.ping, which needs no database, answers promptly,
 * and new connections are accepted; booking calls beyond the pool's
 * connections answer `unavailable` within [database] queue_timeout (and a
 * generous margin), none succeeds. Once continued, the calls that were
 * waiting on the stopped server are answered and the service resumes.
 */
#include "chaos.h"

#include <stdio.h>
#include <string.h>

#define POOL 2
#define QUEUE_TIMEOUT_MS 1000
/* Margins for a loaded 2-CPU machine under sanitizers. */
#define MARGIN_MS 5000
#define PING_MS 3000
/* The stall lasts at least this long, so that the pings span seconds. */
#define STALL_MIN_MS 4000
#define REQUESTS 8
#define AFTER_MS 30000

static struct chaos_pg pg;

static int
teardown(void **state)
{
	(void)state;
	chaos_pg_stop(&pg);
	return 0;
}

struct pending {
	int64_t id;
	int seats;
	bool answered;
};

/* Takes one answer off c if one comes within timeout_ms: 1 for a
 * booking (ack filled), 0 for `unavailable`, -1 for nothing yet. Fails the
 * test on any other answer. */
static int
take_answer(struct st_client *c, struct pending *p, int n, int timeout_ms,
    struct chaos_ack *ack)
{
	struct st_error err;
	json_t *msg, *error, *result;
	json_int_t id;
	int i, rc;

	rc = st_read_message(c, &msg, timeout_ms, &err);
	if (rc == ST_ERR_TIMEOUT)
		return -1;
	if (rc != ST_OK)
		h_fail("reading the answers: %s", st_strerror(&err));
	id = json_integer_value(json_object_get(msg, "id"));
	for (i = 0; i < n && p[i].id != id; i++)
		;
	if (i == n || p[i].answered)
		h_fail("an answer to no pending request: %s", h_json_str(msg));
	p[i].answered = true;
	error = json_object_get(msg, "error");
	result = json_object_get(msg, "result");
	if (error != NULL) {
		const char *reason = json_string_value(json_object_get(
		    json_object_get(error, "data"), "reason"));

		if (json_integer_value(json_object_get(error, "code")) != 503 ||
		    reason == NULL || strcmp(reason, "unavailable") != 0)
			h_fail("booking answered %s, not unavailable",
			    h_json_str(msg));
		json_decref(msg);
		return 0;
	}
	ack->id = w_int(result, "id");
	snprintf(ack->code, sizeof ack->code, "%s", w_str(result, "code"));
	ack->seats = p[i].seats;
	json_decref(msg);
	return 1;
}

/* A ping on c; its round trip in ms. */
static long long
ping(struct st_client *c)
{
	long long t0 = h_now_ms();

	json_decref(h_call_ok(c, "system.ping", NULL));
	return h_now_ms() - t0;
}

static void
test_stall(void **state)
{
	struct chaos_scene s;
	struct pending p[REQUESTS];
	struct chaos_ack acks[REQUESTS];
	struct st_client *pinger, *late;
	struct st_error err;
	long long t0, deadline, next_ping, worst = 0, lat;
	int i, unavailable = 0, nacks = 0, left = REQUESTS;
	char more[128];

	(void)state;
	chaos_pg_start(&pg, "chaos_stall_pg");
	/* Each booking committed alone (no group commit): a call hanging on
	 * a stopped server holds only its own request, so the count below is
	 * per connection. Those waiting behind the calls under way are
	 * answered by the same queue_timeout. */
	snprintf(more, sizeof more, "[database]\npool_size = %d\n"
	    "queue_timeout = %ds\nbooking_batch_max = 1\n", POOL,
	    QUEUE_TIMEOUT_MS / 1000);
	chaos_scene_build(&s, "chaos_stall", 1, &pg, more);
	pinger = h_connect(s.d[0]);
	ping(pinger);

	chaos_pg_freeze(&pg, true);
	t0 = h_now_ms();
	for (i = 0; i < REQUESTS; i++) {
		json_t *params = json_pack("{s:I, s:I, s:i}", "offer_id",
		    s.offers[i], "beneficiary_id", s.beneficiaries[i], "seats",
		    1);

		p[i].seats = 1;
		p[i].answered = false;
		p[i].id = st_send(s.w.ref, "booking.create", params, &err);
		json_decref(params);
		if (p[i].id < 0)
			h_fail("send: %s", st_strerror(&err));
	}
	/* While stopped: pings answer, bookings past the pool's connections
	 * answer unavailable in time, no booking succeeds. */
	deadline = t0 + QUEUE_TIMEOUT_MS + MARGIN_MS;
	next_ping = t0;
	while (h_now_ms() < t0 + STALL_MIN_MS ||
	    (unavailable < REQUESTS - POOL && h_now_ms() < deadline)) {
		int got;

		if (h_now_ms() >= next_ping) {
			lat = ping(pinger);
			worst = lat > worst ? lat : worst;
			next_ping = h_now_ms() + 500;
		}
		got = take_answer(s.w.ref, p, REQUESTS, 100, &acks[nacks]);
		if (got == 1)
			h_fail("booking %lld succeeded while PostgreSQL was "
			    "stopped", (long long)acks[nacks].id);
		if (got == 0) {
			unavailable++;
			left--;
			if (h_now_ms() > deadline)
				h_fail("unavailable came %lld ms after the "
				    "request; queue_timeout is %d ms",
				    h_now_ms() - t0, QUEUE_TIMEOUT_MS);
		}
	}
	/* A new connection, TLS handshake included, is served too. */
	late = h_connect(s.d[0]);
	lat = ping(late);
	worst = lat > worst ? lat : worst;
	st_close(late);
	fprintf(stderr, "chaos: stalled %lld ms: %d of %d bookings answered "
	    "unavailable, slowest ping %lld ms\n", h_now_ms() - t0, unavailable,
	    REQUESTS, worst);
	if (unavailable < REQUESTS - POOL)
		h_fail("only %d of %d bookings answered unavailable within %d "
		    "ms", unavailable, REQUESTS, QUEUE_TIMEOUT_MS + MARGIN_MS);
	if (worst > PING_MS)
		h_fail("a ping took %lld ms while PostgreSQL was stopped: the "
		    "loop blocked", worst);

	/* Continued: what waited on the server is answered, either way. */
	chaos_pg_freeze(&pg, false);
	deadline = h_now_ms() + AFTER_MS;
	while (left > 0) {
		int got = take_answer(s.w.ref, p, REQUESTS, 500, &acks[nacks]);

		if (got >= 0)
			left--;
		if (got == 1)
			nacks++;
		if (got < 0 && h_now_ms() > deadline)
			h_fail("%d bookings unanswered %d ms after PostgreSQL "
			    "continued", left, AFTER_MS);
	}
	chaos_scene_recovered(&s, 0, AFTER_MS);
	chaos_check_rows(s.conninfo, acks, (size_t)nacks);
	chaos_scene_check(&s, NULL);

	st_close(pinger);
	chaos_scene_close(&s);
	assert_int_equal(h_daemon_stop(s.d[0]), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stall),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
