/*
 * The protocol layer alone (daemon/rpc.c), with a fake transport and a
 * fake application: request lifetime, batches, the in-flight limit,
 * caps, notifications, a peer that leaves with requests in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "log.h"
#include "rpc.h"

/* ---- a fake transport -------------------------------------------------- */

struct fake {
	json_t *sent;           /* every answer, parsed */
	int paused;             /* as last told */
	int busy;
	int pauses;
	int events;
	int session_changes;
};

static void
f_send(void *t, const char *buf, size_t len)
{
	struct fake *f = t;
	json_t *m = json_loadb(buf, len, 0, NULL);

	assert_non_null(m);
	/* one answer, one line: the transport adds the newline */
	assert_null(memchr(buf, '\n', len));
	json_array_append_new(f->sent, m);
}

static bool
f_send_event(void *t, const char *buf, size_t len, bool force)
{
	struct fake *f = t;

	f->events++;
	return true;
}

static void
f_drop_events(void *t)
{
}

static void
f_pause(void *t, bool paused)
{
	struct fake *f = t;

	f->paused = paused;
	f->pauses++;
}

static void
f_busy(void *t, bool busy)
{
	((struct fake *)t)->busy = busy;
}

static void
f_session_changed(void *t, bool bound)
{
	((struct fake *)t)->session_changes++;
}

static const struct rpc_transport fake_transport = {
	f_send, f_send_event, f_drop_events, f_pause, f_busy,
	f_session_changed, NULL,
};

/* ---- a fake application ------------------------------------------------ */

/* "hold" requests wait here until the test answers them; "echo" answers
 * at once with its params; anything else is not found. */
static struct request *held[256];
static size_t nheld;
static int dispatched;
static int gone_peers;

static void
fake_dispatch(struct request *req)
{
	dispatched++;
	if (strcmp(req->method_name, "hold") == 0) {
		assert_true(nheld < 256);
		held[nheld++] = req;
		return;
	}
	if (strcmp(req->method_name, "echo") == 0) {
		rpc_reply(req, json_incref(req->params));
		return;
	}
	if (strcmp(req->method_name, "text") == 0) {
		/* as json_agg() writes: newlines between elements */
		static const char t[] = "[{\"a\": \"x\\ny\"},\n {\"a\": 2}]";

		rpc_reply_text(req, t, sizeof t - 1);
		return;
	}
	rpc_error(req, "method_not_found", NULL, NULL, "No such method.");
}

static void
fake_peer_gone(struct rpc_peer *p)
{
	gone_peers++;
}

static const struct rpc_hooks fake_hooks = {fake_dispatch, fake_peer_gone};

static struct event_base *base;

static void
setup_limits(unsigned inflight, size_t batch, size_t answer)
{
	struct rpc_limits l = {inflight, batch, answer};

	rpc_set_limits(&l);
}

static int
setup(void **state)
{
	struct rpc_limits l = {64, 100, 1 << 20};

	base = event_base_new();
	rpc_init(base, &fake_hooks, NULL, &l);
	nheld = 0;
	dispatched = 0;
	gone_peers = 0;
	return 0;
}

static int
teardown(void **state)
{
	event_base_free(base);
	return 0;
}

static void
run_loop(void)
{
	int i;

	for (i = 0; i < 50; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static struct rpc_peer *
new_peer(struct fake *f)
{
	memset(f, 0, sizeof *f);
	f->sent = json_array();
	return rpc_peer_new(&fake_transport, f, "127.0.0.1", "T-1");
}

static void
input(struct rpc_peer *p, const char *s)
{
	rpc_peer_input(p, s, strlen(s));
}

static void
answer_held(size_t i)
{
	rpc_reply(held[i], json_string("done"));
}

#define REQ(id, m) "{\"jsonrpc\":\"2.0\",\"id\":" #id ",\"method\":\"" m "\"}"

static void
test_single_and_errors(void **state)
{
	struct fake f;
	struct rpc_peer *p = new_peer(&f);
	json_t *m;

	input(p, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"echo\","
	    "\"params\":{\"a\":1}}");
	assert_int_equal(json_array_size(f.sent), 1);
	m = json_array_get(f.sent, 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m,
	    "result"), "a")), 1);
	input(p, "{not json");
	m = json_array_get(f.sent, 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m,
	    "error"), "code")), -32700);
	assert_true(json_is_null(json_object_get(m, "id")));
	input(p, "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"echo\"}");
	m = json_array_get(f.sent, 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m,
	    "error"), "code")), -32600);
	/* A notification is never answered, even with an error. */
	input(p, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}");
	assert_int_equal(json_array_size(f.sent), 3);
	/* Absent params reach the application as an empty object. */
	input(p, REQ(9, "echo"));
	m = json_array_get(f.sent, 3);
	assert_true(json_is_object(json_object_get(m, "result")));
	rpc_peer_gone(p);
	assert_int_equal(gone_peers, 1);
	json_decref(f.sent);
}

/* max_inflight = 2: a batch of five waiting requests goes two at a time;
 * the peer is paused meanwhile and busy until the last answer. */
static void
test_batch_inflight(void **state)
{
	struct fake f;
	struct rpc_peer *p = new_peer(&f);
	json_t *m;
	size_t i;

	setup_limits(2, 100, 1 << 20);
	input(p, "[" REQ(1, "hold") "," REQ(2, "hold") "," REQ(3, "hold") ","
	    REQ(4, "hold") "," REQ(5, "hold") "]");
	assert_int_equal(nheld, 2);
	assert_true(f.paused);
	assert_true(f.busy);
	for (i = 0; i < 5; i++) {
		while (i >= nheld)
			run_loop();
		answer_held(i);
		run_loop();
	}
	assert_int_equal(nheld, 5);
	assert_int_equal(json_array_size(f.sent), 1);
	m = json_array_get(f.sent, 0);
	assert_int_equal(json_array_size(m), 5);
	assert_false(f.paused);
	assert_false(f.busy);
	rpc_peer_gone(p);
	json_decref(f.sent);
}

/* The use-after-free of docs/robustness.md: the answer that frees room
 * pumps the rest of the batch, whose immediate answer is its last. */
static void
test_batch_finished_by_pump(void **state)
{
	struct fake f;
	struct rpc_peer *p = new_peer(&f);

	setup_limits(1, 100, 1 << 20);
	input(p, "[" REQ(1, "hold") ",42]");
	assert_int_equal(nheld, 1);
	answer_held(0);
	run_loop();
	assert_int_equal(json_array_size(f.sent), 1);
	assert_int_equal(json_array_size(json_array_get(f.sent, 0)), 2);
	rpc_peer_gone(p);
	json_decref(f.sent);
}

/* Elements answered at once count against max_inflight: a round
 * dispatches at most that many, then yields to the loop. */
static void
test_batch_yields(void **state)
{
	struct fake f;
	struct rpc_peer *p = new_peer(&f);
	char line[4096], *q = line;
	int k;

	setup_limits(3, 100, 1 << 20);
	q += sprintf(q, "[");
	for (k = 1; k <= 10; k++)
		q += sprintf(q, "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":"
		    "\"echo\"}", k > 1 ? "," : "", k);
	sprintf(q, "]");
	input(p, line);
	assert_int_equal(dispatched, 3);
	assert_int_equal(json_array_size(f.sent), 0);
	run_loop();
	assert_int_equal(dispatched, 10);
	assert_int_equal(json_array_size(json_array_get(f.sent, 0)), 10);
	rpc_peer_gone(p);
	json_decref(f.sent);
}

/* A batch that waits for room made by another batch's answers is pumped
 * by them (found by fuzz_rpc: it stayed stuck, and leaked). */
static void
test_batch_waits_for_another(void **state)
{
	struct fake f;
	struct rpc_peer *p = new_peer(&f);

	setup_limits(2, 100, 1 << 20);
	input(p, "[" REQ(1, "hold") "," REQ(2, "hold") "]");
	input(p, "[" REQ(3, "echo") "," REQ(4, "echo") "]");
	assert_int_equal(nheld, 2);
	assert_int_equal(json_array_size(f.sent), 0);
	answer_held(0);
	answer_held(1);
	run_loop();
	assert_int_equal(json_array_size(f.sent), 2);
	assert_int_equal(json_array_size(json_array_get(f.sent, 1)), 2);
	assert_false(f.paused);
	/* The same with the peer gone before the room came: nothing stays. */
	input(p, "[" REQ(5, "hold") "," REQ(6, "hold") "]");
	input(p, "[" REQ(7, "echo") "]");
	rpc_peer_gone(p);
	answer_held(2);
	answer_held(3);
	run_loop();
	json_decref(f.sent);
}

static void
test_caps(void **state)
{
	struct fake f;
	struct rpc_peer *p = new_peer(&f);
	json_t *m, *e;
	size_t i, big = 0;

	setup_limits(64, 3, 1 << 20);
	input(p, "[" REQ(1, "echo") "," REQ(2, "echo") "," REQ(3, "echo") ","
	    REQ(4, "echo") "]");
	m = json_array_get(f.sent, 0);
	assert_true(json_is_object(m));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m,
	    "error"), "code")), -32600);
	assert_int_equal(dispatched, 0);
	/* Answers over max_answer become too_large, keeping their ids. */
	setup_limits(64, 100, 80);
	input(p, "[" REQ(1, "echo") "," REQ(2, "echo") "," REQ(3, "echo") "]");
	m = json_array_get(f.sent, 1);
	assert_int_equal(json_array_size(m), 3);
	json_array_foreach(m, i, e)
		if (json_object_get(e, "error") != NULL) {
			big++;
			assert_true(json_is_integer(json_object_get(e, "id")));
		}
	assert_true(big >= 1);
	rpc_peer_gone(p);
	json_decref(f.sent);
}

/* A result given as text goes out as it is, on one line, alone or in a
 * batch, with the request's id, and within the size cap like any other. */
static void
test_reply_text(void **state)
{
	struct fake f;
	struct rpc_peer *p = new_peer(&f);
	json_t *m, *r;

	input(p, "{\"jsonrpc\":\"2.0\",\"id\":\"x-1\",\"method\":\"text\"}");
	assert_int_equal(json_array_size(f.sent), 1);
	m = json_array_get(f.sent, 0);
	assert_string_equal(json_string_value(json_object_get(m, "id")), "x-1");
	r = json_object_get(m, "result");
	assert_int_equal(json_array_size(r), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(r, 0), "a")), "x\ny");
	/* In a batch, and as a notification (no answer). */
	input(p, "[" REQ(2, "text") ",{\"jsonrpc\":\"2.0\",\"method\":\"text\"}]");
	m = json_array_get(f.sent, 1);
	assert_int_equal(json_array_size(m), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(m, 0),
	    "id")), 2);
	/* Over max_answer: too_large, keeping the id. */
	setup_limits(64, 100, 40);
	input(p, REQ(3, "text"));
	m = json_array_get(f.sent, 2);
	assert_int_equal(json_integer_value(json_object_get(m, "id")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(m,
	    "error"), "code")), 413);
	rpc_peer_gone(p);
	json_decref(f.sent);
}

/* A peer that leaves with requests in flight: their answers are dropped,
 * nothing is sent to the gone transport, and the batch's undispatched
 * elements are never dispatched. */
static void
test_peer_gone_in_flight(void **state)
{
	struct fake f;
	struct rpc_peer *p = new_peer(&f);

	setup_limits(2, 100, 1 << 20);
	input(p, "[" REQ(1, "hold") "," REQ(2, "hold") "," REQ(3, "hold") "]");
	/* The transport reads no more once paused; a line it had already
	 * read still goes through. */
	assert_true(f.paused);
	input(p, REQ(4, "hold"));
	assert_int_equal(nheld, 3);
	rpc_peer_gone(p);
	answer_held(0);
	answer_held(1);
	answer_held(2);
	run_loop();
	assert_int_equal(nheld, 3);
	assert_int_equal(json_array_size(f.sent), 0);
	json_decref(f.sent);
}

static void
test_bind_tells_transport(void **state)
{
	struct fake f;
	struct rpc_peer *p = new_peer(&f);
	struct session s = {0};

	s.user_id = 3;
	s.role = ROLE_REFERENT;
	assert_int_equal(rpc_peer_role(p), ROLE_ANON);
	rpc_peer_bind(p, &s);
	assert_int_equal(rpc_peer_role(p), ROLE_REFERENT);
	assert_non_null(strstr(rpc_peer_tag(p), "user=3"));
	rpc_peer_unbind(p);
	assert_int_equal(rpc_peer_role(p), ROLE_ANON);
	assert_int_equal(f.session_changes, 2);
	rpc_peer_gone(p);
	json_decref(f.sent);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_single_and_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_finished_by_pump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_yields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_waits_for_another, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_gone_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_tells_transport, setup, teardown),
	};

	log_configure(LL_ERROR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
