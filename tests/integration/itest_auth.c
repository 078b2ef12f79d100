/*
 * Logging in and staying logged in: one answer for every bad credential,
 * throttling per e-mail and per client address (policy.login_max_failures,
 * login_lockout), tokens (auth.resume on a new connection, logout, expiry),
 * and that neither passwords nor tokens ever reach the daemon's log.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *
creds(const char *email, const char *password)
{
	return json_pack("{s:s, s:s}", "email", email, "password", password);
}

/* auth.login that must fail; err filled. */
static void
login_fails(struct st_client *c, const char *email, const char *password,
    struct st_error *err)
{
	json_t *p = creds(email, password), *r = NULL;
	int rc;

	memset(err, 0, sizeof *err);
	rc = st_call(c, "auth.login", p, &r, err);
	json_decref(p);
	if (rc == ST_OK) {
		json_decref(r);
		h_fail("login %s succeeded", email);
	}
	if (rc != ST_ERR_SERVER)
		h_fail("login %s: no answer: %s", email, st_strerror(err));
}

static void
expect_login_error(struct st_client *c, const char *email,
    const char *password, int code, const char *reason)
{
	struct st_error err = {0};

	login_fails(c, email, password, &err);
	if (err.code != code || strcmp(err.reason, reason) != 0)
		h_fail("login %s: expected %d %s, got %d %s (%s)", email, code,
		    reason, err.code, err.reason, err.message);
	st_error_clear(&err);
}

/* Logs in on c; the token (static, 2 in rotation). */
static const char *
login_token(struct st_client *c, const char *email, const char *password)
{
	static char bufs[2][128];
	static int next;
	char *b = bufs[next++ % 2];
	json_t *r = h_call_ok(c, "auth.login", creds(email, password));
	const char *t = json_string_value(json_object_get(r, "token"));

	if (t == NULL || strlen(t) < 32)
		h_fail("login answered no proper token: %s", h_json_str(r));
	snprintf(b, sizeof bufs[0], "%s", t);
	json_decref(r);
	return b;
}

static json_int_t
whoami_id(struct st_client *c)
{
	json_t *r = h_call_ok(c, "auth.whoami", NULL);
	json_int_t id = json_integer_value(json_object_get(json_object_get(r,
	    "user"), "id"));

	json_decref(r);
	assert_true(id > 0);
	return id;
}

static void
expect_unauthenticated(struct st_client *c, const char *method, json_t *params)
{
	json_decref(h_call_err(c, method, params, 401, "unauthenticated"));
}

static void
expect_not_logged(const struct h_daemon *d, const char *secret,
    const char *what)
{
	if (h_log_contains(d, secret))
		h_fail("the daemon log %s contains the %s", d->log, what);
}

static void
test_same_error_for_bad_credentials(void **state)
{
	struct h_daemon *d = h_daemon_start("auth_errors", NULL);
	struct st_client *c = h_connect(d);
	struct st_error wrong, unknown;
	json_t *r, *u;

	(void)state;
	login_fails(c, H_ADMIN_EMAIL, "wrong-password-1", &wrong);
	login_fails(c, "nobody@example.org", "wrong-password-1", &unknown);
	assert_int_equal(wrong.code, 401);
	assert_string_equal(wrong.reason, "unauthenticated");
	assert_int_equal(wrong.code, unknown.code);
	assert_string_equal(wrong.reason, unknown.reason);
	assert_string_equal(wrong.message, unknown.message);
	assert_string_equal(wrong.field, unknown.field);
	if (!json_equal(wrong.data, unknown.data))
		h_fail("error data differ: %s vs %s", h_json_str(wrong.data),
		    h_json_str(unknown.data));
	st_error_clear(&wrong);
	st_error_clear(&unknown);
	/* Still anonymous after both. */
	expect_unauthenticated(c, "auth.whoami", NULL);

	/* The right one: a token, its expiry, the user; the e-mail's case
	 * does not matter. */
	r = h_call_ok(c, "auth.login", creds("Admin@Example.ORG",
	    H_ADMIN_PASSWORD));
	assert_non_null(json_string_value(json_object_get(r, "token")));
	assert_non_null(json_string_value(json_object_get(r, "expires_at")));
	u = json_object_get(r, "user");
	assert_string_equal(json_string_value(json_object_get(u, "email")),
	    H_ADMIN_EMAIL);
	assert_string_equal(json_string_value(json_object_get(u, "role")),
	    "admin");
	assert_null(json_object_get(u, "password_hash"));
	json_decref(r);
	whoami_id(c);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
	expect_not_logged(d, H_ADMIN_PASSWORD, "admin password");
	expect_not_logged(d, "wrong-password-1", "wrong password");
}

/* Retries the right password until it works; 429 meanwhile. Returns the
 * time it took. */
static long long
wait_unlocked(const struct h_daemon *d, int max_ms)
{
	long long t0 = h_now_ms();
	struct st_client *c = h_connect(d);
	struct st_error err = {0};
	json_t *p, *r;
	int rc;

	for (;;) {
		p = creds(H_ADMIN_EMAIL, H_ADMIN_PASSWORD);
		r = NULL;
		memset(&err, 0, sizeof err);
		rc = st_call(c, "auth.login", p, &r, &err);
		json_decref(p);
		json_decref(r);
		if (rc == ST_OK)
			break;
		if (rc != ST_ERR_SERVER || err.code != 429)
			h_fail("while locked out, login answered %s",
			    st_strerror(&err));
		st_error_clear(&err);
		if (h_now_ms() - t0 > max_ms)
			h_fail("still locked out after %d ms", max_ms);
		h_sleep_ms(250);
	}
	st_close(c);
	return h_now_ms() - t0;
}

static void
test_login_throttling(void **state)
{
	struct h_daemon *d = h_daemon_start("auth_throttle",
	    "[policy]\nlogin_max_failures = 3\nlogin_lockout = 5s\n");
	struct st_client *c = h_connect(d);
	struct st_error err = {0};
	long long took;
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		expect_login_error(c, H_ADMIN_EMAIL, "wrong-password-9", 401,
		    "unauthenticated");
	/* Even the right password is refused now, with the retry delay. */
	login_fails(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD, &err);
	if (err.code != 429 || strcmp(err.reason, "rate_limited") != 0)
		h_fail("after 3 failures: expected 429 rate_limited, got %d %s",
		    err.code, err.reason);
	/* the time left until the lock ends: at most the 5 s lockout */
	if (json_integer_value(json_object_get(err.data, "retry_after_s")) < 1 ||
	    json_integer_value(json_object_get(err.data, "retry_after_s")) > 5)
		h_fail("rate_limited data: %s", h_json_str(err.data));
	st_error_clear(&err);
	/* A wrong password meanwhile is not told apart either. */
	expect_login_error(c, H_ADMIN_EMAIL, "wrong-password-9", 429,
	    "rate_limited");
	took = wait_unlocked(d, 30000);
	if (took < 1000)
		h_fail("the 5 s lockout ended after %lld ms", took);

	/* Per address: failures spread over several e-mails from one client
	 * lock it out too, whatever the e-mail. */
	expect_login_error(c, "x1@example.org", "wrong-password-9", 401,
	    "unauthenticated");
	expect_login_error(c, "x2@example.org", "wrong-password-9", 401,
	    "unauthenticated");
	expect_login_error(c, "x3@example.org", "wrong-password-9", 401,
	    "unauthenticated");
	expect_login_error(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD, 429,
	    "rate_limited");
	expect_login_error(c, "x4@example.org", "wrong-password-9", 429,
	    "rate_limited");
	st_close(c);
	/* A new connection from the same address is no way round it. */
	c = h_connect(d);
	expect_login_error(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD, 429,
	    "rate_limited");
	st_close(c);
	wait_unlocked(d, 30000);
	assert_int_equal(h_daemon_stop(d), 0);
	expect_not_logged(d, H_ADMIN_PASSWORD, "admin password");
	expect_not_logged(d, "wrong-password-9", "wrong password");
}

/* Guesses sent at once, pipelined on one connection or in one batch, are
 * no way round login_max_failures: at most that many are checked per
 * lockout, the others answer rate_limited. */
static void
test_login_throttling_concurrent(void **state)
{
	struct h_daemon *d = h_daemon_start("auth_throttle_pipe",
	    "[policy]\nlogin_max_failures = 3\nlogin_lockout = 5s\n");
	struct st_options o = h_options(d);
	struct st_client *c;
	struct st_error err = {0};
	int64_t ids[10];
	int i, checked = 0, limited = 0;
	char line[4096];
	size_t len = 0;
	json_t *p, *r, *m;

	(void)state;
	/* Ten password checks may take a while on a loaded machine. */
	o.timeout_ms = 120000;
	memset(&err, 0, sizeof err);
	c = h_connect_opts(&o, &err);
	assert_non_null(c);
	for (i = 0; i < 10; i++) {
		char pw[32];

		snprintf(pw, sizeof pw, "guess-number-%d", i);
		p = creds(H_ADMIN_EMAIL, pw);
		memset(&err, 0, sizeof err);
		ids[i] = st_send(c, "auth.login", p, &err);
		json_decref(p);
		assert_true(ids[i] > 0);
	}
	for (i = 0; i < 10; i++) {
		r = NULL;
		memset(&err, 0, sizeof err);
		if (st_wait(c, ids[i], &r, &err) == ST_OK)
			h_fail("guess %d logged in", i);
		if (err.code == 401)
			checked++;
		else if (err.code == 429)
			limited++;
		else
			h_fail("guess %d: %s", i, st_strerror(&err));
		st_error_clear(&err);
	}
	if (checked > 3)
		h_fail("login_max_failures = 3, but %d of 10 pipelined guesses "
		    "were checked (%d rate_limited)", checked, limited);
	expect_login_error(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD, 429,
	    "rate_limited");
	wait_unlocked(d, 30000);

	/* The same in one batch, spread over e-mails (the address limit). */
	len += (size_t)snprintf(line + len, sizeof line - len, "[");
	for (i = 0; i < 10; i++)
		len += (size_t)snprintf(line + len, sizeof line - len,
		    "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"auth.login\","
		    "\"params\":{\"email\":\"u%d@example.org\",\"password\":"
		    "\"guess-number-%d\"}}", i ? "," : "", i + 1, i, i);
	len += (size_t)snprintf(line + len, sizeof line - len, "]\n");
	memset(&err, 0, sizeof err);
	assert_int_equal(st_send_raw(c, line, len, &err), ST_OK);
	memset(&err, 0, sizeof err);
	assert_int_equal(st_read_message(c, &r, 60000, &err), ST_OK);
	if (!json_is_array(r) || json_array_size(r) != 10)
		h_fail("batch of 10 logins answered %s", h_json_str(r));
	checked = limited = 0;
	json_array_foreach(r, len, m) {
		json_int_t code = json_integer_value(json_object_get(
		    json_object_get(m, "error"), "code"));

		if (code == 401)
			checked++;
		else if (code == 429)
			limited++;
		else
			h_fail("batch answer %s", h_json_str(m));
	}
	json_decref(r);
	if (checked > 3)
		h_fail("login_max_failures = 3, but %d of 10 guesses in one "
		    "batch were checked (%d rate_limited)", checked, limited);
	st_close(c);
	wait_unlocked(d, 30000);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Seconds from now to an RFC 3339 UTC time. */
static long long
seconds_until(const char *rfc3339)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	if (rfc3339 == NULL || strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ", &tm) ==
	    NULL)
		h_fail("not an RFC 3339 UTC time: %s", rfc3339 ? rfc3339 : "null");
	return (long long)timegm(&tm) - (long long)time(NULL);
}

static void
test_tokens(void **state)
{
	struct h_daemon *d = h_daemon_start("auth_tokens",
	    "[policy]\ntoken_ttl = 60\n");
	struct st_client *a = h_connect(d), *b = h_connect(d), *e;
	PGconn *db = h_db_connect(d->conninfo);
	char token[128], token2[128], sql[512];
	json_int_t uid;
	long long left;
	json_t *r;

	(void)state;
	/* Login: the token lives token_ttl (60 s). */
	r = h_call_ok(a, "auth.login", creds(H_ADMIN_EMAIL, H_ADMIN_PASSWORD));
	snprintf(token, sizeof token, "%s",
	    json_string_value(json_object_get(r, "token")));
	left = seconds_until(json_string_value(json_object_get(r,
	    "expires_at")));
	if (left < 30 || left > 90)
		h_fail("token_ttl = 60 but the token expires in %lld s", left);
	json_decref(r);
	uid = whoami_id(a);

	/* Resume on another connection: the same user. */
	r = h_call_ok(b, "auth.resume", json_pack("{s:s}", "token", token));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r,
	    "user"), "id")), uid);
	json_decref(r);
	assert_int_equal(whoami_id(b), uid);

	/* Garbage tokens. */
	e = h_connect(d);
	expect_unauthenticated(e, "auth.resume", json_pack("{s:s}", "token",
	    "garbage"));
	expect_unauthenticated(e, "auth.resume", json_pack("{s:s}", "token",
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	json_decref(h_call_err(e, "auth.resume", json_object(), -32602,
	    "invalid_params"));
	expect_unauthenticated(e, "auth.whoami", NULL);

	/* Logout revokes the token everywhere. */
	json_decref(h_call_ok(a, "auth.logout", NULL));
	expect_unauthenticated(a, "auth.whoami", NULL);
	expect_unauthenticated(b, "auth.whoami", NULL);
	expect_unauthenticated(e, "auth.resume", json_pack("{s:s}", "token",
	    token));
	expect_unauthenticated(e, "auth.whoami", NULL);

	/* Expiry: the database's clock decides. */
	snprintf(token2, sizeof token2, "%s", login_token(a, H_ADMIN_EMAIL,
	    H_ADMIN_PASSWORD));
	r = h_call_ok(b, "auth.resume", json_pack("{s:s}", "token", token2));
	json_decref(r);
	assert_int_equal(whoami_id(b), uid);
	snprintf(sql, sizeof sql, "UPDATE tokens SET expires_at = now() - "
	    "interval '1s' WHERE token_hash = encode(sha256('%s'::bytea), "
	    "'hex') RETURNING 1", token2);
	assert_string_equal(h_db_exec(db, sql), "1");
	expect_unauthenticated(a, "auth.whoami", NULL);
	expect_unauthenticated(b, "auth.whoami", NULL);
	expect_unauthenticated(e, "auth.resume", json_pack("{s:s}", "token",
	    token2));
	/* Logging in again gives a new, working token. */
	login_token(e, H_ADMIN_EMAIL, H_ADMIN_PASSWORD);
	assert_int_equal(whoami_id(e), uid);

	st_close(a);
	st_close(b);
	st_close(e);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
	/* Debug level logs every request: still no secret. */
	expect_not_logged(d, H_ADMIN_PASSWORD, "admin password");
	expect_not_logged(d, token, "first token");
	expect_not_logged(d, token2, "second token");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_error_for_bad_credentials),
		cmocka_unit_test(test_login_throttling),
		cmocka_unit_test(test_login_throttling_concurrent),
		cmocka_unit_test(test_tokens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
