/*
 * What one client must not be able to do to the others (docs/robustness.md):
 * oversized batches and answers, too many connections from one address,
 * staying anonymous, keeping a connection alive with blank lines, making
 * the daemon rescan a long line at every read, and keeping a subscription
 * to events after its session ended.
 */
#include "wire.h"
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *
ping_batch(int n, const char *method)
{
	char *line = malloc((size_t)n * 80 + 4), *p = line;
	int k;

	assert_non_null(line);
	*p++ = '[';
	for (k = 1; k <= n; k++)
		p += sprintf(p, "%s{\"jsonrpc\":\"2.0\",\"id\":%d,"
		    "\"method\":\"%s\"}", k > 1 ? "," : "", k, method);
	*p++ = ']';
	*p++ = '\n';
	*p = '\0';
	return line;
}

/* max_batch (default 100): one element more and the whole batch is
 * refused at once with one error; the connection goes on. */
static void
test_batch_cap(void **state)
{
	struct h_daemon *d = h_daemon_start("abuse_batch", NULL);
	struct st_client *c = h_connect(d);
	char *line;
	json_t *m;

	(void)state;
	line = ping_batch(101, "system.ping");
	wire_send_str(c, line);
	free(line);
	m = wire_read_msg(c, 10000);
	if (!json_is_object(m) || wire_msg_code(m) != -32600 ||
	    strstr(h_json_str(json_object_get(m, "error")), "at most 100") ==
	    NULL)
		h_fail("a batch of 101: expected one invalid_request error, "
		    "got %s", h_json_str(m));
	json_decref(m);
	line = ping_batch(100, "system.ping");
	wire_send_str(c, line);
	free(line);
	m = wire_read_msg(c, 10000);
	assert_true(json_is_array(m));
	assert_int_equal(json_array_size(m), 100);
	json_decref(m);
	/* A line of bare zeros is refused the same way, whatever its size. */
	line = malloc(60002);
	assert_non_null(line);
	line[0] = '[';
	for (int i = 0; i < 30000; i++) {
		line[1 + 2 * i] = '0';
		line[2 + 2 * i] = i < 29999 ? ',' : ']';
	}
	line[60001] = '\0';
	wire_send_str(c, line);
	wire_send_str(c, "\n");
	free(line);
	m = wire_read_msg(c, 10000);
	assert_int_equal(wire_msg_code(m), -32600);
	json_decref(m);
	json_decref(h_call_ok(c, "system.ping", NULL));
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* max_answer_bytes: the answers of a batch past the cap are each replaced
 * by a too_large error that keeps its id; the line stays bounded. */
static void
test_answer_cap(void **state)
{
	struct h_daemon *d = h_daemon_start("abuse_answer",
	    "[server]\nmax_batch = 1000\nmax_answer_bytes = 65536\n"
	    "max_inflight = 1000\n");
	struct st_client *c = h_connect(d);
	char *line, *raw;
	size_t i, ok = 0, big = 0;
	json_t *m, *e;

	(void)state;
	line = ping_batch(1000, "system.version");
	wire_send_str(c, line);
	free(line);
	raw = wire_read_line(c, 20000);
	m = json_loads(raw, 0, NULL);
	assert_true(json_is_array(m));
	assert_int_equal(json_array_size(m), 1000);
	json_array_foreach(m, i, e) {
		if (json_object_get(e, "result") != NULL)
			ok++;
		else if (wire_msg_code(e) == 413 &&
		    strcmp(wire_msg_reason(e), "too_large") == 0 &&
		    wire_msg_id(e) > 0)
			big++;
	}
	if (ok == 0 || big == 0 || ok + big != 1000)
		h_fail("expected answers then too_large errors, got %zu and "
		    "%zu", ok, big);
	/* The answers kept fit under the cap. */
	if (ok * 90 > 65536)
		h_fail("%zu answers kept: more than 64 KiB of them", ok);
	json_decref(m);
	free(raw);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

static struct st_client *
try_connect(const struct h_daemon *d)
{
	struct st_options o = h_options(d);
	struct st_error err;
	struct st_client *c;
	json_t *r = NULL;

	memset(&err, 0, sizeof err);
	if ((c = h_connect_opts(&o, &err)) == NULL) {
		st_error_clear(&err);
		return NULL;
	}
	if (st_call(c, "system.ping", NULL, &r, &err) != ST_OK) {
		st_error_clear(&err);
		st_close(c);
		return NULL;
	}
	json_decref(r);
	return c;
}

/* max_connections_per_address: the next connection from the same address
 * is closed at once; when one leaves, a new one is welcome. */
static void
test_per_address_cap(void **state)
{
	struct h_daemon *d = h_daemon_start("abuse_peraddr",
	    "[server]\nmax_connections_per_address = 3\n");
	struct st_client *c[3], *extra;
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		if ((c[i] = try_connect(d)) == NULL)
			h_fail("connection %d of 3 refused", i + 1);
	if ((extra = try_connect(d)) != NULL)
		h_fail("a fourth connection from one address was served");
	assert_true(h_log_wait(d, "too many connections from this address",
	    5000));
	st_close(c[0]);
	for (i = 0; i < 50 && (extra = try_connect(d)) == NULL; i++)
		h_sleep_ms(100);
	if (extra == NULL)
		h_fail("no new connection once one had left");
	st_close(extra);
	st_close(c[1]);
	st_close(c[2]);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* auth_timeout: a connection that does not log in is closed, however busy
 * it keeps itself; one that logged in stays. */
static void
test_auth_timeout(void **state)
{
	struct h_daemon *d = h_daemon_start("abuse_authto",
	    "[server]\nauth_timeout = 2\nidle_timeout = 60\n");
	struct st_client *anon = h_connect(d), *user = h_login_admin(d);
	struct st_error err;
	long long until = h_now_ms() + 8000;
	json_t *r = NULL;
	bool closed = false;

	(void)state;
	memset(&err, 0, sizeof err);
	while (h_now_ms() < until) {
		if (st_call(anon, "system.ping", NULL, &r, &err) != ST_OK) {
			st_error_clear(&err);
			closed = true;
			break;
		}
		json_decref(r);
		h_sleep_ms(200);
	}
	if (!closed)
		h_fail("an anonymous connection was served for 8 s with "
		    "auth_timeout = 2");
	assert_true(h_log_contains(d, "did not log in within auth_timeout"));
	json_decref(h_call_ok(user, "auth.whoami", NULL));
	st_close(anon);
	st_close(user);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Blank lines are tolerated between messages but are not activity. */
static void
test_blank_lines_do_not_keep_alive(void **state)
{
	struct h_daemon *d = h_daemon_start("abuse_blank",
	    "[server]\nidle_timeout = 2\n");
	struct st_client *c = h_login_admin(d);
	struct st_error err;
	long long until = h_now_ms() + 10000;
	bool closed = false;

	(void)state;
	memset(&err, 0, sizeof err);
	while (h_now_ms() < until) {
		if (st_send_raw(c, "\n", 1, &err) != ST_OK) {
			st_error_clear(&err);
			closed = true;
			break;
		}
		h_sleep_ms(250);
		if (h_log_contains(d, "idle timeout")) {
			closed = true;
			break;
		}
	}
	if (!closed)
		h_fail("blank lines kept a connection alive past idle_timeout");
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* utime + stime of a process, in milliseconds. */
static long long
cpu_ms(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		h_fail("cannot open %s", path);
	if (fgets(buf, sizeof buf, f) == NULL)
		h_fail("cannot read %s", path);
	fclose(f);
	/* Fields after the command name (which may hold spaces). */
	p = strrchr(buf, ')');
	assert_non_null(p);
	for (i = 0; i < 12 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	assert_non_null(p);
	if (sscanf(p + 1, "%llu %llu", &ut, &st) != 2)
		h_fail("cannot parse %s", path);
	return (long long)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
}

/* A 48 MiB line arriving in TLS records: the daemon looks for "\n" in
 * each new byte once, not in the whole buffer at each read (which costs
 * tens of gigabytes of scanning, seconds of CPU). The bound grows with
 * the sanitizers' slowdown (ST_TIMEOUT_SCALE): under TSan the linear work
 * alone, decryption included, comes near 4 s; rescanning the buffer at
 * each read (tens of gigabytes) would still take several times more. */
static void
test_long_line_scanned_once(void **state)
{
	struct h_daemon *d = h_daemon_start("abuse_longline",
	    "[server]\nmax_request_bytes = 67108864\nmax_output_bytes = 67108864\n");
	struct st_client *c = h_connect(d);
	size_t chunk = 1 << 20, i;
	char *buf = malloc(chunk);
	long long before, used;
	json_t *m;

	(void)state;
	assert_non_null(buf);
	memset(buf, ' ', chunk);
	before = cpu_ms(d->pid);
	for (i = 0; i < 48; i++)
		wire_send_raw(c, buf, chunk);
	wire_send_str(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system.ping\"}\n");
	m = wire_read_msg(c, 60000);
	assert_true(wire_is_pong(m));
	json_decref(m);
	used = cpu_ms(d->pid) - before;
	if (used > 4000LL * h_timeout_scale())
		h_fail("the daemon spent %lld ms of CPU on one 48 MiB line",
		    used);
	free(buf);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Anonymous callers learn only whether the database answers. */
static void
test_health_scoped(void **state)
{
	struct h_daemon *d = h_daemon_start("abuse_health", NULL);
	struct st_client *anon = h_connect(d), *admin = h_login_admin(d);
	json_t *r;

	(void)state;
	r = h_call_ok(anon, "system.health", NULL);
	assert_string_equal(w_str(r, "db"), "ok");
	assert_null(json_object_get(r, "connections"));
	assert_null(json_object_get(r, "requests"));
	json_decref(r);
	r = h_call_ok(admin, "system.health", NULL);
	assert_true(json_integer_value(json_object_get(r, "connections")) >= 2);
	assert_non_null(json_object_get(r, "requests"));
	json_decref(r);
	st_close(anon);
	st_close(admin);
	assert_int_equal(h_daemon_stop(d), 0);
}

static bool
got_event(struct st_client *c, const char *topic, int timeout_ms)
{
	struct st_error err;
	json_t *ev;
	bool found = false;

	memset(&err, 0, sizeof err);
	while (!found && st_next_event(c, &ev, timeout_ms, &err) == ST_OK) {
		found = strcmp(w_str(ev, "topic"), topic) == 0;
		json_decref(ev);
	}
	st_error_clear(&err);
	return found;
}

/* A session that ends without its notification reaching the daemon (here
 * the token is revoked, and another one expired, straight in the
 * database) stops its subscription all the same within seconds. */
static void
test_subscription_ends_with_session(void **state)
{
	struct h_daemon *d = h_daemon_start("abuse_subs", NULL);
	struct world w;
	struct st_client *a, *b, *c;
	PGconn *db;
	int round;

	(void)state;
	world_build(&w, d);
	a = h_login(d, W_REF_EMAIL, W_PASSWORD);
	b = h_login(d, W_REF2_EMAIL, W_PASSWORD);
	json_decref(h_call_ok(a, "events.subscribe", json_pack("{s:[s]}",
	    "topics", "offer.published")));
	json_decref(h_call_ok(b, "events.subscribe", json_pack("{s:[s]}",
	    "topics", "offer.published")));
	/* A third subscriber logs out on its connection: its subscription
	 * ends, and it must not stop the check of the others. */
	c = h_login_admin(d);
	json_decref(h_call_ok(c, "events.subscribe", json_pack("{s:[s]}",
	    "topics", "offer.published")));
	w_offer(w.partner, 10, 2, NULL);
	assert_true(got_event(a, "offer.published", 10000));
	assert_true(got_event(b, "offer.published", 10000));
	assert_true(got_event(c, "offer.published", 10000));
	json_decref(h_call_ok(c, "auth.logout", NULL));

	db = h_db_connect(d->conninfo);
	/* No trigger, so no NOTIFY: as if the daemon's listener had been
	 * down when the sessions ended. */
	h_db_exec(db, "SET session_replication_role = replica");
	h_db_exec(db, "UPDATE tokens SET revoked_at = now() WHERE token_hash ="
	    " (SELECT token_hash FROM tokens t JOIN users u ON u.id = t.user_id"
	    " WHERE u.email = '" W_REF_EMAIL "' ORDER BY t.created_at DESC"
	    " LIMIT 1)");
	h_db_exec(db, "UPDATE tokens SET expires_at = now() WHERE token_hash ="
	    " (SELECT token_hash FROM tokens t JOIN users u ON u.id = t.user_id"
	    " WHERE u.email = '" W_REF2_EMAIL "' ORDER BY t.created_at DESC"
	    " LIMIT 1)");
	PQfinish(db);
	/* The daemon checks subscribers' sessions every few seconds. */
	for (round = 0; round < 60 &&
	    h_log_count(d, "session no longer valid, events stopped") < 2;
	    round++)
		h_sleep_ms(500);
	/* c's own logout is notified too, and may reach the listener before
	 * its answer ends the subscription: at most that one. */
	if (h_log_count(d, "session ended, events stopped") > 1)
		h_fail("a notification reached the daemon: the test is void");
	if (h_log_count(d, "session no longer valid, events stopped") < 2)
		h_fail("subscriptions outlived their sessions");
	w_offer(w.partner, 10, 2, NULL);
	if (got_event(a, "offer.published", 3000))
		h_fail("a revoked session still gets events");
	if (got_event(b, "offer.published", 1000))
		h_fail("an expired session still gets events");
	if (got_event(c, "offer.published", 1000))
		h_fail("a connection that logged out still gets events");
	if (h_log_contains(d, "session check:"))
		h_fail("the check of subscribers' sessions failed");
	st_close(a);
	st_close(b);
	st_close(c);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* A request whose SQL runs past its class's statement_timeout is stopped
 * and answered timeout (504), and the connection goes on. Here a booking
 * waits for an offer's row that another transaction holds. */
static void
test_statement_timeout(void **state)
{
	struct h_daemon *d = h_daemon_start("abuse_timeout",
	    "[database]\nstatement_timeout = 1\n");
	struct world w;
	json_int_t o, b;
	char sql[128];
	PGconn *db;
	json_t *e;

	(void)state;
	world_build(&w, d);
	o = w_offer(w.partner, 10, 2, NULL);
	b = w_beneficiary(w.ref, "Lucie", "Aubrac");
	db = h_db_connect(d->conninfo);
	h_db_exec(db, "BEGIN");
	snprintf(sql, sizeof sql, "SELECT id FROM offers WHERE id = %lld FOR "
	    "UPDATE", (long long)o);
	h_db_exec(db, sql);
	e = h_call_err(w.ref, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", b, "seats", 1), 504, "timeout");
	json_decref(e);
	h_db_exec(db, "ROLLBACK");
	PQfinish(db);
	/* Nothing was kept, and the same booking goes through now. */
	json_decref(w_book(w.ref, o, b, 1));
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_cap),
		cmocka_unit_test(test_answer_cap),
		cmocka_unit_test(test_per_address_cap),
		cmocka_unit_test(test_auth_timeout),
		cmocka_unit_test(test_blank_lines_do_not_keep_alive),
		cmocka_unit_test(test_long_line_scanned_once),
		cmocka_unit_test(test_health_scoped),
		cmocka_unit_test(test_subscription_ends_with_session),
		cmocka_unit_test(test_statement_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
