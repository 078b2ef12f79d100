/*
 * Clients that send a big batch and close the connection at once,
 * politely or with a reset: the daemon survives, with no sanitizer report,
 * serves the others, and its rows stay consistent. No database is harmed:
 * the shared cluster.
 */
#include "chaos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PING_MS 10000 /* generous: others are served, not starved */

static long long
ping(struct st_client *c)
{
	long long t0 = h_now_ms();

	json_decref(h_call_ok(c, "system.ping", NULL));
	return h_now_ms() - t0;
}

#define BATCHES 10
#define BATCH 200

/* A batch of BATCH requests, one line: bookings of fresh pairs from *k
 * on, offer reads and pings. malloc'd. */
static char *
batch(const struct chaos_scene *s, int *k)
{
	json_t *a = json_array();
	char *line;
	int i;

	for (i = 0; i < BATCH; i++) {
		json_t *req;

		if (i % 3 == 0) {
			int n = (*k)++;

			req = json_pack("{s:s, s:i, s:s, s:{s:I, s:I, s:i}}",
			    "jsonrpc", "2.0", "id", i + 1, "method",
			    "booking.create", "params", "offer_id",
			    s->offers[n % CHAOS_OFFERS], "beneficiary_id",
			    s->beneficiaries[(n / CHAOS_OFFERS) %
			    CHAOS_BENEFICIARIES], "seats", 1);
		} else if (i % 3 == 1)
			req = json_pack("{s:s, s:i, s:s, s:{s:I}}", "jsonrpc",
			    "2.0", "id", i + 1, "method", "offer.get", "params",
			    "offer_id", s->offers[i % CHAOS_OFFERS]);
		else
			req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0",
			    "id", i + 1, "method", "system.ping");
		json_array_append_new(a, req);
	}
	line = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return line;
}

static void
test_disconnect_mid_batch(void **state)
{
	struct chaos_scene s;
	struct st_client *other;
	struct st_error err;
	int round, k = 0;
	PGconn *db;

	(void)state;
	chaos_scene_build(&s, "chaos_batch", 1, NULL, NULL);
	other = h_connect(s.d[0]);
	for (round = 0; round < BATCHES; round++) {
		struct st_client *c = h_connect(s.d[0]);
		char *line = batch(&s, &k);
		size_t len = strlen(line);

		json_decref(h_call_ok(c, "auth.resume", json_pack("{s:s}",
		    "token", s.token)));
		line[len] = '\n';	/* json_dumps' NUL becomes the end */
		if (st_send_raw(c, line, len + 1, &err) != ST_OK)
			h_fail("batch %d: %s", round, st_strerror(&err));
		free(line);
		if (round % 2) {
			/* A reset rather than a close. */
			struct linger lg = {1, 0};

			setsockopt(st_fd(c), SOL_SOCKET, SO_LINGER, &lg,
			    sizeof lg);
		}
		st_close(c);
		/* The others are served in the thick of it. */
		if (ping(other) > PING_MS)
			h_fail("a ping took over %d ms after batch %d",
			    PING_MS, round);
	}
	chaos_scene_recovered(&s, 0, 30000);
	db = h_db_connect(s.conninfo);
	fprintf(stderr, "chaos: %d batches of %d abandoned; %s bookings made "
	    "by them\n", BATCHES, BATCH, h_db_exec(db,
	    "SELECT count(*) - 1 FROM bookings"));
	PQfinish(db);
	chaos_scene_check(&s, NULL);
	st_close(other);
	chaos_scene_close(&s);
	/* No crash, a clean exit, and no sanitizer report in its log. */
	assert_true(h_daemon_wait(s.d[0], 0) == -2);
	assert_int_equal(h_daemon_stop(s.d[0]), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disconnect_mid_batch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
