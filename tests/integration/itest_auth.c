/*
 * Logging in and staying logged in: one answer for every bad credential,
 * throttling per (e-mail, client address) pair with a growing delay and per
 * address (policy.login_max_failures, login_lockout) that never locks an
 * account for everyone, the same throttle on auth.change_password, hashes
 * upgraded to policy.password_cost at login, tokens (auth.resume on a new
 * connection, logout, expiry), and that neither passwords nor tokens ever
 * reach the daemon's log.
 */
#include "harness.h"
#include "pwhash.h"
#include "util.h"

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

/* Tries a wrong password until it is checked (401) rather than refused
 * (429); a refused attempt counts no failure. */
static void
fail_when_allowed(struct st_client *c, const char *email, int max_ms)
{
	long long t0 = h_now_ms();
	struct st_error err = {0};

	for (;;) {
		login_fails(c, email, "wrong-password-9", &err);
		if (err.code == 401)
			break;
		if (err.code != 429)
			h_fail("login %s answered %d %s", email, err.code,
			    err.reason);
		st_error_clear(&err);
		if (h_now_ms() - t0 > max_ms)
			h_fail("%s still refused after %d ms", email, max_ms);
		h_sleep_ms(100);
	}
	st_error_clear(&err);
}

/* The retry_after_s of a login that must be refused with 429. */
static json_int_t
refused_for(struct st_client *c, const char *email, const char *password)
{
	struct st_error err = {0};
	json_int_t s;

	login_fails(c, email, password, &err);
	if (err.code != 429 || strcmp(err.reason, "rate_limited") != 0)
		h_fail("login %s: expected 429 rate_limited, got %d %s", email,
		    err.code, err.reason);
	s = json_integer_value(json_object_get(err.data, "retry_after_s"));
	if (s < 1)
		h_fail("rate_limited data: %s", h_json_str(err.data));
	st_error_clear(&err);
	return s;
}

/* The daemons below also listen on [::1]: a connection there comes from
 * another address than 127.0.0.1, as a victim elsewhere would. */
static struct h_daemon *
start_two_addresses(const char *name, const char *policy, int *port6)
{
	char ini[512];

	*port6 = h_free_port();
	snprintf(ini, sizeof ini, "[server]\nlisten = [::1]:%d\n[policy]\n%s",
	    *port6, policy);
	return h_daemon_start(name, ini);
}

static struct st_client *
connect_v6(const struct h_daemon *d, int port6)
{
	struct st_options o = h_options(d);
	struct st_error err = {0};
	struct st_client *c;
	char port[16];

	snprintf(port, sizeof port, "%d", port6);
	o.host = "::1";
	o.port = port;
	if ((c = h_connect_opts(&o, &err)) == NULL)
		h_fail("cannot connect to [::1]:%d: %s", port6,
		    st_strerror(&err));
	return c;
}

static long long
failures_of(PGconn *db, const char *email, const char *addr)
{
	char sql[256];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM login_failures "
	    "WHERE email = '%s' AND client_addr = '%s'", email, addr);
	return atoll(h_db_exec(db, sql));
}

/* Failures count per (e-mail, address): past login_max_failures, each one
 * makes that pair wait longer (2 s, 4 s, 8 s ... at most login_lockout),
 * but the account itself is never locked: its owner, at another address,
 * logs in at once, and does not reset the wait of the guesser. */
static void
test_login_throttling(void **state)
{
	int port6;
	struct h_daemon *d = start_two_addresses("auth_throttle",
	    "login_max_failures = 3\nlogin_lockout = 5s\n", &port6);
	struct st_client *c = h_connect(d), *v;
	PGconn *db = h_db_connect(d->conninfo);
	json_int_t wait;
	long long took;
	int i;

	(void)state;
	for (i = 0; i < 3; i++)
		expect_login_error(c, H_ADMIN_EMAIL, "wrong-password-9", 401,
		    "unauthenticated");
	/* From this address even the right password waits now, 2 s. */
	wait = refused_for(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD);
	if (wait > 2)
		h_fail("after 3 failures (login_max_failures = 3): wait %lld s, "
		    "expected 2", (long long)wait);
	/* A wrong password meanwhile is not checked, not counted. */
	expect_login_error(c, H_ADMIN_EMAIL, "wrong-password-9", 429,
	    "rate_limited");
	assert_int_equal(failures_of(db, H_ADMIN_EMAIL, "127.0.0.1"), 3);

	/* The owner elsewhere is not locked out. */
	v = connect_v6(d, port6);
	json_decref(h_call_ok(v, "auth.login", creds(H_ADMIN_EMAIL,
	    H_ADMIN_PASSWORD)));
	st_close(v);
	assert_int_equal(failures_of(db, H_ADMIN_EMAIL, "127.0.0.1"), 3);

	/* Each failure past the allowance doubles the wait: 4 s, then the
	 * 5 s of login_lockout, not 8. */
	fail_when_allowed(c, H_ADMIN_EMAIL, 10000);
	wait = refused_for(c, H_ADMIN_EMAIL, "wrong-password-9");
	if (wait < 3 || wait > 4)
		h_fail("after 4 failures: wait %lld s, expected 4",
		    (long long)wait);
	fail_when_allowed(c, H_ADMIN_EMAIL, 10000);
	wait = refused_for(c, H_ADMIN_EMAIL, "wrong-password-9");
	if (wait < 4 || wait > 5)
		h_fail("after 5 failures: wait %lld s, expected the 5 s of "
		    "login_lockout", (long long)wait);
	assert_int_equal(failures_of(db, H_ADMIN_EMAIL, "127.0.0.1"), 5);

	/* The right password, once the wait is over, logs in and clears the
	 * pair: three free failures again. */
	took = wait_unlocked(d, 30000);
	if (took < 1000)
		h_fail("a 5 s wait ended after %lld ms", took);
	assert_int_equal(failures_of(db, H_ADMIN_EMAIL, "127.0.0.1"), 0);
	for (i = 0; i < 3; i++)
		expect_login_error(c, H_ADMIN_EMAIL, "wrong-password-9", 401,
		    "unauthenticated");
	expect_login_error(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD, 429,
	    "rate_limited");
	/* Another e-mail from the same address is its own pair. */
	expect_login_error(c, "x1@example.org", "wrong-password-9", 401,
	    "unauthenticated");
	st_close(c);
	/* A new connection from the same address is no way round it. */
	c = h_connect(d);
	expect_login_error(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD, 429,
	    "rate_limited");
	st_close(c);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
	expect_not_logged(d, H_ADMIN_PASSWORD, "admin password");
	expect_not_logged(d, "wrong-password-9", "wrong password");
}

/* One address guessing many accounts: at most 10 x login_max_failures
 * failures within login_lockout, whatever the e-mails; then that address
 * waits, and only it. */
static void
test_login_address_rate(void **state)
{
	int port6;
	struct h_daemon *d = start_two_addresses("auth_addr_rate",
	    "login_max_failures = 1\nlogin_lockout = 1m\n", &port6);
	struct st_client *c = h_connect(d), *v;
	json_int_t wait;
	char email[64];
	int i;

	(void)state;
	for (i = 0; i < 10; i++) {
		snprintf(email, sizeof email, "x%d@example.org", i);
		expect_login_error(c, email, "wrong-password-9", 401,
		    "unauthenticated");
	}
	wait = refused_for(c, "x10@example.org", "wrong-password-9");
	if (wait < 30 || wait > 60)
		h_fail("address over its rate: wait %lld s, expected up to "
		    "the 60 s of login_lockout", (long long)wait);
	/* Every account, from this address. */
	expect_login_error(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD, 429,
	    "rate_limited");
	/* Not from another. */
	v = connect_v6(d, port6);
	json_decref(h_call_ok(v, "auth.login", creds(H_ADMIN_EMAIL,
	    H_ADMIN_PASSWORD)));
	st_close(v);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Guesses sent at once, pipelined on one connection or in one batch, are
 * no way round the throttle: the pipelined ones on one account are checked
 * at most login_max_failures times before the first wait, those on many
 * accounts at most at the address rate. */
static void
test_login_throttling_concurrent(void **state)
{
	int port6;
	struct h_daemon *d = start_two_addresses("auth_throttle_pipe",
	    "login_max_failures = 3\nlogin_lockout = 1m\n", &port6);
	struct st_options o = h_options(d);
	struct st_client *c;
	struct st_error err = {0};
	int64_t ids[10];
	int i, checked = 0, limited = 0;
	char line[8192];
	size_t len = 0;
	json_t *p, *r, *m;

	(void)state;
	/* Many password checks may take a while on a loaded machine. */
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
	/* 2 s after the third failure; the login clears the pair. */
	wait_unlocked(d, 30000);

	/* 40 e-mails in one batch: at most 30 (10 x 3) checked. */
	len += (size_t)snprintf(line + len, sizeof line - len, "[");
	for (i = 0; i < 40; i++)
		len += (size_t)snprintf(line + len, sizeof line - len,
		    "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"auth.login\","
		    "\"params\":{\"email\":\"u%d@example.org\",\"password\":"
		    "\"guess-number-%d\"}}", i ? "," : "", i + 1, i, i);
	len += (size_t)snprintf(line + len, sizeof line - len, "]\n");
	assert_true(len < sizeof line - 1);
	memset(&err, 0, sizeof err);
	assert_int_equal(st_send_raw(c, line, len, &err), ST_OK);
	memset(&err, 0, sizeof err);
	assert_int_equal(st_read_message(c, &r, 120000, &err), ST_OK);
	if (!json_is_array(r) || json_array_size(r) != 40)
		h_fail("batch of 40 logins answered %s", h_json_str(r));
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
	if (checked > 30 || limited == 0)
		h_fail("login_max_failures = 3 (30 failures an address), but "
		    "%d of 40 guesses in one batch were checked (%d "
		    "rate_limited)", checked, limited);
	expect_login_error(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD, 429,
	    "rate_limited");
	st_close(c);
	c = connect_v6(d, port6);
	json_decref(h_call_ok(c, "auth.login", creds(H_ADMIN_EMAIL,
	    H_ADMIN_PASSWORD)));
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* auth.change_password checks the old password like a login: a wrong one
 * is a failure of (that account, that address), and past the allowance the
 * change waits, as a login from there does. */
static void
test_change_password_throttled(void **state)
{
	int port6;
	struct h_daemon *d = start_two_addresses("auth_change_throttle",
	    "login_max_failures = 2\nlogin_lockout = 1m\n", &port6);
	struct st_client *c = h_connect(d), *v;
	PGconn *db = h_db_connect(d->conninfo);
	json_t *data;
	long long t0;
	int i;

	(void)state;
	json_decref(h_call_ok(c, "auth.login", creds(H_ADMIN_EMAIL,
	    H_ADMIN_PASSWORD)));
	for (i = 0; i < 2; i++) {
		data = h_call_err(c, "auth.change_password", json_pack(
		    "{s:s, s:s}", "old_password", "wrong-password-9",
		    "new_password", "a-new-password-1"), 401,
		    "unauthenticated");
		json_decref(data);
	}
	assert_int_equal(failures_of(db, H_ADMIN_EMAIL, "127.0.0.1"), 2);
	/* Now even the right old password waits... */
	data = h_call_err(c, "auth.change_password", json_pack("{s:s, s:s}",
	    "old_password", H_ADMIN_PASSWORD, "new_password",
	    "a-new-password-1"), 429, "rate_limited");
	if (json_integer_value(json_object_get(data, "retry_after_s")) < 1)
		h_fail("rate_limited data: %s", h_json_str(data));
	json_decref(data);
	/* ... and so does a login from this address, not from another. */
	expect_login_error(c, H_ADMIN_EMAIL, H_ADMIN_PASSWORD, 429,
	    "rate_limited");
	v = connect_v6(d, port6);
	json_decref(h_call_ok(v, "auth.login", creds(H_ADMIN_EMAIL,
	    H_ADMIN_PASSWORD)));
	st_close(v);

	/* After the wait the change goes through and clears the pair. */
	t0 = h_now_ms();
	for (;;) {
		struct st_error err = {0};
		json_t *p = json_pack("{s:s, s:s}", "old_password",
		    H_ADMIN_PASSWORD, "new_password", "a-new-password-1");
		json_t *r = NULL;
		int rc = st_call(c, "auth.change_password", p, &r, &err);

		json_decref(p);
		json_decref(r);
		if (rc == ST_OK)
			break;
		if (rc != ST_ERR_SERVER || err.code != 429)
			h_fail("change_password answered %s",
			    st_strerror(&err));
		st_error_clear(&err);
		if (h_now_ms() - t0 > 30000)
			h_fail("change_password still refused after 30 s");
		h_sleep_ms(250);
	}
	assert_int_equal(failures_of(db, H_ADMIN_EMAIL, "127.0.0.1"), 0);
	st_close(c);
	c = h_connect(d);
	json_decref(h_call_ok(c, "auth.login", creds(H_ADMIN_EMAIL,
	    "a-new-password-1")));
	st_close(c);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
	expect_not_logged(d, "a-new-password-1", "new password");
}

/* A hash below policy.password_cost is replaced at the next successful
 * login, by one at the configured cost that verifies the same password. */
static void
test_rehash_on_login(void **state)
{
	struct h_daemon *d = h_daemon_start("auth_rehash",
	    "[policy]\npassword_cost = 11\n");
	PGconn *db = h_db_connect(d->conninfo);
	const char *vals[2];
	struct st_client *c;
	char *weak, *now;
	PGresult *res;

	(void)state;
	/* What --add-admin stored: the configured cost. */
	now = xstrdup(h_db_exec(db, "SELECT password_hash FROM users WHERE "
	    "email = '" H_ADMIN_EMAIL "'"));
	if (strncmp(now, "$scrypt$ln=11,r=8,p=1$", 22) != 0)
		h_fail("--add-admin stored %.30s..., not ln=11", now);
	free(now);
	/* An older, weaker hash of the same password. */
	pwhash_set_cost(10);
	weak = pwhash_hash(H_ADMIN_PASSWORD);
	assert_non_null(weak);
	vals[0] = weak;
	vals[1] = H_ADMIN_EMAIL;
	res = PQexecParams(db, "UPDATE users SET password_hash = $1 WHERE "
	    "email = $2", 2, NULL, vals, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);

	c = h_connect(d);
	json_decref(h_call_ok(c, "auth.login", creds(H_ADMIN_EMAIL,
	    H_ADMIN_PASSWORD)));
	st_close(c);
	now = xstrdup(h_db_exec(db, "SELECT password_hash FROM users WHERE "
	    "email = '" H_ADMIN_EMAIL "'"));
	if (strcmp(now, weak) == 0)
		h_fail("the ln=10 hash is still stored after a login at "
		    "password_cost = 11");
	if (strncmp(now, "$scrypt$ln=11,r=8,p=1$", 22) != 0)
		h_fail("after login the hash is %.30s..., not ln=11", now);
	assert_true(pwhash_verify(H_ADMIN_PASSWORD, now));
	/* And the new one logs in. */
	c = h_connect(d);
	json_decref(h_call_ok(c, "auth.login", creds(H_ADMIN_EMAIL,
	    H_ADMIN_PASSWORD)));
	st_close(c);
	free(now);
	free(weak);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* auth_login_failure prunes old failures on every call: that DELETE must
 * find them by index, not by reading the whole table (at its largest when
 * someone is guessing). 50,000 recent failures and a few old ones, as
 * during an attack: the planner must not choose a sequential scan. */
static void
test_failures_cleanup_indexed(void **state)
{
	struct h_daemon *d = h_daemon_start("auth_cleanup_index", NULL);
	PGconn *db = h_db_connect(d->conninfo);
	PGresult *res;
	char plan[4096] = "", idx[128];
	size_t len = 0;
	int i;

	(void)state;
	h_db_exec(db, "INSERT INTO login_failures (email, client_addr, at) "
	    "SELECT 'u' || (i % 500) || '@example.org', '192.0.2.' || (i % 200), "
	    "now() - (i % 3600) * interval '1 second' "
	    "FROM generate_series(1, 50000) i");
	h_db_exec(db, "INSERT INTO login_failures (email, client_addr, at) "
	    "SELECT 'old@example.org', '192.0.2.1', now() - interval '8 days' "
	    "FROM generate_series(1, 10)");
	h_db_exec(db, "ANALYZE login_failures");
	res = PQexec(db, "EXPLAIN DELETE FROM login_failures WHERE at < now() "
	    "- interval '7 days'");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	for (i = 0; i < PQntuples(res); i++)
		len += (size_t)snprintf(plan + len, sizeof plan - len, "%s\n",
		    PQgetvalue(res, i, 0));
	PQclear(res);
	/* Reading the whole of an index led by another column is no better
	 * than reading the table: the scan must use one led by at. */
	snprintf(idx, sizeof idx, "on %s ", h_db_exec(db, "SELECT "
	    "coalesce(min(c.relname), 'no index led by at') FROM pg_index i "
	    "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_attribute a ON "
	    "a.attrelid = i.indrelid AND a.attnum = i.indkey[0] WHERE "
	    "i.indrelid = 'login_failures'::regclass AND a.attname = 'at'"));
	if (strstr(plan, "Seq Scan") != NULL || strstr(plan, idx) == NULL)
		h_fail("the cleanup of login_failures does not range-scan an "
		    "index on at:\n%s", plan);
	/* And it still deletes what it should. */
	h_db_exec(db, "DELETE FROM login_failures WHERE at < now() - "
	    "interval '7 days'");
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM login_failures "
	    "WHERE email = 'old@example.org'"), "0");
	PQfinish(db);
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
		cmocka_unit_test(test_login_address_rate),
		cmocka_unit_test(test_login_throttling_concurrent),
		cmocka_unit_test(test_change_password_throttled),
		cmocka_unit_test(test_rehash_on_login),
		cmocka_unit_test(test_failures_cleanup_indexed),
		cmocka_unit_test(test_tokens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
