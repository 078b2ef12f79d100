/*
 * The daemon's life as an operator sees it: SIGHUP reloads (new
 * certificate, log level and policy; a broken file or a changed listen
 * address keep the running configuration), SIGTERM drains (what is in
 * flight is answered, new connections are refused, a second SIGTERM exits
 * at once), max_connections, and the command-line actions (--check-config,
 * --migrate, --add-admin, --version, --help, an outdated schema).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <time.h>

/* The harness configures cheap password hashes; the drain tests need them
 * slow enough (tens of milliseconds each) to still be in flight when the
 * signal comes. */
#define SLOW_HASHES "[policy]\npassword_cost = 15\n"

/* Runs argv with input on stdin (NULL: none), its stdout and stderr into
 * out; kills it after timeout_ms. Returns the exit status, or -1 if it was
 * killed (then out says so). */
static int
run(const char *const argv[], const char *input, char *out, size_t outlen,
    int timeout_ms)
{
	int in[2], o[2], status = 0;
	size_t len = 0;
	long long deadline = h_now_ms() + timeout_ms;
	bool killed = false;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(o, O_CLOEXEC) == -1)
		h_fail("pipe: %s", strerror(errno));
	fflush(NULL);
	if ((pid = fork()) == -1)
		h_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(o[1], 1);
		dup2(o[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(o[1]);
	if (input != NULL && write(in[1], input, strlen(input)) < 0)
		h_fail("write: %s", strerror(errno));
	close(in[1]);
	out[0] = '\0';
	for (;;) {
		struct pollfd p = {o[0], POLLIN, 0};
		long long left = deadline - h_now_ms();
		char buf[4096];
		ssize_t n;

		if (left <= 0) {
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		if ((n = read(o[0], buf, sizeof buf)) <= 0)
			break;
		if (len + 1 < outlen) {
			size_t k = (size_t)n < outlen - len - 1 ?
			    (size_t)n : outlen - len - 1;

			memcpy(out + len, buf, k);
			len += k;
			out[len] = '\0';
		}
	}
	close(o[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (killed) {
		snprintf(out + len, outlen - len, "\n[killed after %d ms]",
		    timeout_ms);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *
daemon_bin(void)
{
	return h_env("STRAPONTIND");
}

static void
ping(struct st_client *c)
{
	json_t *r = h_call_ok(c, "system.ping", NULL);

	assert_true(json_is_true(json_object_get(r, "pong")));
	json_decref(r);
}

static void
ping_new(const struct h_daemon *d)
{
	struct st_client *c = h_connect(d);

	ping(c);
	st_close(c);
}

static json_t *
login_params(void)
{
	return json_pack("{s:s, s:s}", "email", H_ADMIN_EMAIL, "password",
	    H_ADMIN_PASSWORD);
}

static int64_t
send_req(struct st_client *c, const char *method, json_t *params)
{
	struct st_error err;
	int64_t id;

	memset(&err, 0, sizeof err);
	id = st_send(c, method, params, &err);
	json_decref(params);
	if (id <= 0)
		h_fail("st_send %s: %s", method, st_strerror(&err));
	return id;
}

/* Sends SIGHUP and waits for the outcome line (after `before` lines of
 * it). */
static void
reload(struct h_daemon *d, const char *outcome)
{
	int before = h_log_count(d, outcome);
	int i;

	assert_int_equal(h_daemon_signal(d, SIGHUP), 0);
	for (i = 0; i < 200 && h_log_count(d, outcome) == before; i++)
		h_sleep_ms(50);
	if (h_log_count(d, outcome) == before)
		h_fail("no \"%s\" in the log after SIGHUP", outcome);
}

/* The serial of the certificate a fresh TLS connection sees, as openssl
 * prints it ("serial=..."), or of a file. */
static void
served_serial(const struct h_daemon *d, char *out, size_t len)
{
	char cmd[1024];
	FILE *p;

	snprintf(cmd, sizeof cmd, "timeout 20 openssl s_client -connect "
	    "127.0.0.1:%d -servername localhost </dev/null 2>/dev/null | "
	    "openssl x509 -noout -serial 2>&1", d->port);
	fflush(NULL);
	if ((p = popen(cmd, "r")) == NULL || fgets(out, (int)len, p) == NULL)
		h_fail("cannot run: %s", cmd);
	pclose(p);
	out[strcspn(out, "\n")] = '\0';
	if (strncmp(out, "serial=", 7) != 0)
		h_fail("%s printed \"%s\"", cmd, out);
}

static void
file_serial(const char *path, char *out, size_t len)
{
	char cmd[1024];
	FILE *p;

	snprintf(cmd, sizeof cmd, "openssl x509 -noout -serial -in '%s'", path);
	fflush(NULL);
	if ((p = popen(cmd, "r")) == NULL || fgets(out, (int)len, p) == NULL)
		h_fail("cannot run: %s", cmd);
	pclose(p);
	out[strcspn(out, "\n")] = '\0';
}

/* A second server certificate (localhost, 127.0.0.1) from the same CA. */
static void
make_server_cert(const char *dir, const char *name)
{
	const char *certs = h_certs_dir();

	if (h_sh("cd '%s' && "
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	    "-out %s.key 2>/dev/null && "
	    "openssl req -new -key %s.key -subj '/O=tests/CN=localhost' "
	    "-out %s.csr 2>/dev/null && "
	    "printf 'basicConstraints=critical,CA:FALSE\\n"
	    "keyUsage=critical,digitalSignature\\nextendedKeyUsage=serverAuth\\n"
	    "subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > %s.ext && "
	    "openssl x509 -req -in %s.csr -CA '%s/ca.pem' -CAkey '%s/ca.key' "
	    "-set_serial 0x$(openssl rand -hex 16) -days 30 -sha256 "
	    "-extfile %s.ext -out %s.pem 2>/dev/null",
	    dir, name, name, name, name, name, certs, certs, name, name) != 0)
		h_fail("cannot make %s/%s.pem", dir, name);
}

/* ---- SIGHUP --------------------------------------------------------------- */

static void
test_reload_certificate_and_settings(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_reload", NULL);
	struct st_client *old, *old12, *c;
	struct st_options o;
	struct st_error err;
	char ini[2048], s_old[128], s_new[128], s_served[128], path[700];
	int n;

	(void)state;
	make_server_cert(d->dir, "server2");
	snprintf(path, sizeof path, "%s/server.pem", h_certs_dir());
	file_serial(path, s_old, sizeof s_old);
	snprintf(path, sizeof path, "%s/server2.pem", d->dir);
	file_serial(path, s_new, sizeof s_new);
	assert_string_not_equal(s_old, s_new);
	served_serial(d, s_served, sizeof s_served);
	assert_string_equal(s_served, s_old);

	old = h_login_admin(d);
	o = h_options(d);
	o.max_tls_version = TLS1_2_VERSION;
	old12 = h_connect_opts(&o, &err);
	assert_non_null(old12);
	snprintf(ini, sizeof ini,
	    "[tls]\ncert = %s/server2.pem\nkey = %s/server2.key\n"
	    "min_version = 1.3\n"
	    "[log]\nlevel = info\n"
	    "[policy]\nlogin_max_failures = 2\n", d->dir, d->dir);
	h_daemon_write_conf(d, ini);
	reload(d, "configuration reloaded");
	assert_false(h_log_contains(d, "need a restart"));

	/* New connections get the new certificate, verified by the CA. */
	served_serial(d, s_served, sizeof s_served);
	assert_string_equal(s_served, s_new);
	c = h_connect(d);
	ping(c);
	st_close(c);
	/* The connection opened before goes on, still logged in. */
	json_decref(h_call_ok(old, "auth.whoami", NULL));
	ping(old);
	/* tls.min_version = 1.3 now: a TLS 1.2 client is refused, the one
	 * connected before is not cut. */
	memset(&err, 0, sizeof err);
	c = h_connect_opts(&o, &err);
	if (c != NULL) {
		st_close(c);
		h_fail("TLS 1.2 accepted after a reload to min_version = 1.3");
	}
	assert_int_equal(err.status, ST_ERR_TLS);
	st_error_clear(&err);
	ping(old12);
	st_close(old12);

	/* log.level = info: no more debug lines. */
	n = h_log_count(d, " debug ");
	ping_new(d);
	json_decref(h_call_ok(old, "system.ping", NULL));
	assert_int_equal(h_log_count(d, " debug "), n);

	/* The new policy: after 2 failures this address waits for this
	 * account (2 s). */
	c = h_connect(d);
	json_decref(h_call_err(c, "auth.login", json_pack("{s:s, s:s}",
	    "email", H_ADMIN_EMAIL, "password", "wrong-password-1"), 401,
	    "unauthenticated"));
	json_decref(h_call_err(c, "auth.login", json_pack("{s:s, s:s}",
	    "email", H_ADMIN_EMAIL, "password", "wrong-password-2"), 401,
	    "unauthenticated"));
	json_decref(h_call_err(c, "auth.login", login_params(), 429,
	    "rate_limited"));
	st_close(c);
	st_close(old);
	assert_int_equal(h_daemon_stop(d), 0);
}

static void
test_reload_broken_config(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_badreload", NULL);
	struct st_client *old = h_login_admin(d);
	char ini[1024], s0[128], s1[128];
	int n;

	(void)state;
	served_serial(d, s0, sizeof s0);
	/* A syntax error. */
	h_daemon_write_conf(d, "[server\nmax_connections = 3\n");
	reload(d, "reload failed");
	assert_true(h_log_contains(d, "strapontind.conf:"));
	/* Still serving, old connection and new ones, with the old settings
	 * (log level debug: a new connection is logged). */
	json_decref(h_call_ok(old, "auth.whoami", NULL));
	n = h_log_count(d, "accepted (");
	ping_new(d);
	assert_int_equal(h_log_count(d, "accepted ("), n + 1);

	/* A value out of range. */
	h_daemon_write_conf(d, "[server]\nmax_connections = 0\n");
	reload(d, "reload failed");
	ping_new(d);

	/* A certificate that does not exist: the old one is kept. */
	snprintf(ini, sizeof ini, "[tls]\ncert = %s/missing.pem\n", d->dir);
	h_daemon_write_conf(d, ini);
	reload(d, "reload failed");
	served_serial(d, s1, sizeof s1);
	assert_string_equal(s0, s1);
	ping_new(d);

	/* Fixed: reloads again. */
	h_daemon_write_conf(d, NULL);
	reload(d, "configuration reloaded");
	ping_new(d);
	json_decref(h_call_ok(old, "auth.whoami", NULL));
	st_close(old);
	assert_int_equal(h_daemon_stop(d), 0);
}

static void
test_reload_listen_needs_restart(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_listen", NULL);
	int port = h_free_port();
	struct st_options o;
	struct st_error err;
	struct st_client *c;
	char ini[256], port_str[16];

	(void)state;
	snprintf(ini, sizeof ini, "[server]\nlisten = 127.0.0.1:%d\n"
	    "workers = 3\n", port);
	h_daemon_write_conf(d, ini);
	reload(d, "need a restart");
	assert_true(h_log_contains(d, "server.listen"));
	assert_true(h_log_contains(d, "server.workers"));
	/* Kept as it was: the old address serves, the new one does not. */
	ping_new(d);
	o = h_options(d);
	snprintf(port_str, sizeof port_str, "%d", port);
	o.port = port_str;
	memset(&err, 0, sizeof err);
	c = h_connect_opts(&o, &err);
	if (c != NULL) {
		st_close(c);
		h_fail("the daemon listens on the new address without a restart");
	}
	assert_int_equal(err.status, ST_ERR_CONNECT);
	st_error_clear(&err);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* ---- SIGTERM -------------------------------------------------------------- */

/* Sends n logins then a ping and waits for the ping's answer: the logins
 * before it have then all been read by the daemon and are in flight. */
static void
logins_in_flight(struct st_client *c, int n, int64_t *ids)
{
	struct st_error err;
	json_t *r = NULL;
	int64_t ping_id;
	int i;

	for (i = 0; i < n; i++)
		ids[i] = send_req(c, "auth.login", login_params());
	ping_id = send_req(c, "system.ping", NULL);
	memset(&err, 0, sizeof err);
	if (st_wait(c, ping_id, &r, &err) != ST_OK)
		h_fail("ping behind the logins: %s", st_strerror(&err));
	json_decref(r);
}

/* A client that waits long: password checks queue up on a loaded
 * machine. */
static struct st_client *
connect_patient(const struct h_daemon *d)
{
	struct st_options o = h_options(d);
	struct st_error err;
	struct st_client *c;

	o.timeout_ms = 120000;
	memset(&err, 0, sizeof err);
	if ((c = h_connect_opts(&o, &err)) == NULL)
		h_fail("cannot connect: %s", st_strerror(&err));
	return c;
}

static void
test_sigterm_drains(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_drain",
	    "[server]\ndrain_timeout = 120\n" SLOW_HASHES);
	struct st_client *c = connect_patient(d), *idle = h_connect(d), *late;
	struct st_options o = h_options(d);
	struct st_error err;
	int64_t ids[10];
	json_t *r;
	int i, rc;

	(void)state;
	logins_in_flight(c, 10, ids);
	assert_int_equal(h_daemon_signal(d, SIGTERM), 0);
	assert_true(h_log_wait(d, "stopping: no new connections", 10000));

	/* No new connections. */
	memset(&err, 0, sizeof err);
	late = h_connect_opts(&o, &err);
	if (late != NULL) {
		st_close(late);
		h_fail("a connection opened after SIGTERM was accepted");
	}
	st_error_clear(&err);

	/* Every request in flight is answered. */
	for (i = 0; i < 10; i++) {
		r = NULL;
		memset(&err, 0, sizeof err);
		if (st_wait(c, ids[i], &r, &err) != ST_OK)
			h_fail("login %d of 10 not answered during the drain: %s",
			    i + 1, st_strerror(&err));
		if (json_string_value(json_object_get(r, "token")) == NULL)
			h_fail("login %d answered %s", i + 1, h_json_str(r));
		json_decref(r);
	}
	/* Then the connections are closed, the idle one too. */
	r = NULL;
	memset(&err, 0, sizeof err);
	rc = st_read_message(c, &r, 20000, &err);
	if (rc == ST_OK)
		h_fail("after the drain: unexpected %s", h_json_str(r));
	assert_int_equal(rc, ST_ERR_IO);
	st_error_clear(&err);
	rc = st_read_message(idle, &r, 20000, &err);
	assert_int_equal(rc, ST_ERR_IO);
	st_error_clear(&err);
	st_close(c);
	st_close(idle);
	assert_int_equal(h_daemon_wait(d, 30000), 0);
	assert_int_equal(h_daemon_stop(d), 0);
	assert_true(h_log_contains(d, "all connections closed"));
}

/* Logs c in as the admin, then sends n user.create (each a password hash
 * for the workers; unlike logins, not serialised by the login throttle)
 * and a ping, and waits for the ping: the n are then in flight, queued on
 * the workers. */
static void
hashes_in_flight(struct st_client *c, int n, int64_t *ids)
{
	struct st_error err;
	json_t *r = NULL;
	int64_t ping_id;
	int i;

	json_decref(h_call_ok(c, "auth.login", login_params()));
	for (i = 0; i < n; i++) {
		char email[64];

		snprintf(email, sizeof email, "hash%d@example.org", i);
		ids[i] = send_req(c, "user.create", json_pack(
		    "{s:s, s:s, s:s, s:s}", "email", email, "display_name",
		    "Hash", "role", "admin", "password", "a-long-password-1"));
	}
	ping_id = send_req(c, "system.ping", NULL);
	memset(&err, 0, sizeof err);
	if (st_wait(c, ping_id, &r, &err) != ST_OK)
		h_fail("ping behind the user.create: %s", st_strerror(&err));
	json_decref(r);
}

/* The drain lasts up to drain_timeout, however short idle_timeout is:
 * requests in flight are not idleness. */
static void
test_drain_outlives_idle_timeout(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_drainidle",
	    "[server]\nidle_timeout = 1\nworkers = 1\ndrain_timeout = 120\n"
	    SLOW_HASHES);
	struct st_client *c = connect_patient(d);
	struct st_error err;
	int64_t ids[10];
	json_t *r;
	int i;

	(void)state;
	logins_in_flight(c, 10, ids);
	assert_int_equal(h_daemon_signal(d, SIGTERM), 0);
	for (i = 0; i < 10; i++) {
		r = NULL;
		memset(&err, 0, sizeof err);
		if (st_wait(c, ids[i], &r, &err) != ST_OK)
			h_fail("login %d of 10 not answered during the drain "
			    "(idle_timeout = 1, drain_timeout = 120): %s", i + 1,
			    st_strerror(&err));
		json_decref(r);
	}
	st_close(c);
	assert_int_equal(h_daemon_wait(d, 30000), 0);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* A second SIGTERM does not wait for what is in flight: with 62 password
 * hashes queued on one worker (about 10 s of scrypt), the daemon is gone
 * long before they could all have run, and exits 0 cleanly. */
static void
test_second_sigterm(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_sigterm2",
	    "[server]\nworkers = 1\n" SLOW_HASHES);
	struct st_client *c = h_connect(d);
	int64_t ids[63];
	long long t0, elapsed;
	int st;

	(void)state;
	hashes_in_flight(c, 62, ids);
	assert_int_equal(h_daemon_signal(d, SIGTERM), 0);
	assert_true(h_log_wait(d, "stopping: no new connections", 10000));
	t0 = h_now_ms();
	assert_int_equal(h_daemon_signal(d, SIGTERM), 0);
	st = h_daemon_wait(d, 15000);
	elapsed = h_now_ms() - t0;
	if (st == -2) {
		/* Do not leave it burning CPU under the next tests. */
		h_daemon_signal(d, SIGKILL);
		h_daemon_wait(d, 5000);
		h_fail("the daemon still ran 15 s after a second SIGTERM (it "
		    "runs the queued work first); killed");
	}
	fprintf(stderr, "second SIGTERM: exited %d after %lld ms\n", st,
	    elapsed);
	assert_true(h_log_contains(d, "second stop signal"));
	assert_int_equal(st, 0);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
	/* 62 hashes of ~150 ms on one worker: about 10 s if they all ran. */
	if (elapsed > 6000)
		h_fail("a second SIGTERM took %lld ms to exit: the daemon ran "
		    "the queued work first", elapsed);
}

/* An operator who presses Ctrl-C again and again, or a manager that
 * repeats SIGTERM, while the daemon is already on its way out: every
 * signal, down to the last instructions of the exit, must leave it a
 * clean exit 0, never a death by signal. */
static void
test_signals_while_exiting(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_sigstorm", NULL);
	long long deadline;
	int st = -2, n = 0;

	(void)state;
	st_close(h_login_admin(d));
	deadline = h_now_ms() + 15000;
	while ((st = h_daemon_wait(d, 0)) == -2 && h_now_ms() < deadline) {
		kill(d->pid, n++ % 2 ? SIGINT : SIGTERM);
		usleep(500);
	}
	if (st == -2) {
		h_daemon_signal(d, SIGKILL);
		h_daemon_wait(d, 5000);
		h_fail("the daemon still ran 15 s into a storm of SIGTERM");
	}
	fprintf(stderr, "exited %d (signal %d) after %d signals\n", st,
	    d->term_signal, n);
	assert_int_equal(d->term_signal, 0);
	assert_int_equal(st, 0);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* server.drain_timeout bounds the drain: with more queued work than it
 * allows (62 password hashes on one worker, about 10 s), the daemon gives
 * up after it, closes what is left and exits 0. */
static void
test_drain_timeout(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_draintimeout",
	    "[server]\nworkers = 1\ndrain_timeout = 1\n" SLOW_HASHES);
	struct st_client *c = h_connect(d);
	int64_t ids[63];
	long long t0, elapsed;
	int st;

	(void)state;
	hashes_in_flight(c, 62, ids);
	t0 = h_now_ms();
	assert_int_equal(h_daemon_signal(d, SIGTERM), 0);
	st = h_daemon_wait(d, 15000);
	elapsed = h_now_ms() - t0;
	if (st == -2) {
		h_daemon_signal(d, SIGKILL);
		h_daemon_wait(d, 5000);
		h_fail("the daemon still ran 15 s after SIGTERM with "
		    "drain_timeout = 1 (it runs the queued work first); killed");
	}
	fprintf(stderr, "drain_timeout = 1: exited %d after %lld ms\n", st,
	    elapsed);
	assert_int_equal(st, 0);
	assert_true(h_log_contains(d, "drain timeout"));
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
	if (elapsed > 6000)
		h_fail("with drain_timeout = 1 the daemon took %lld ms to exit: "
		    "it ran the queued work first", elapsed);
}

/* ---- max_connections ------------------------------------------------------ */

static void
test_max_connections(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_maxconn",
	    "[server]\nmax_connections = 5\n");
	struct st_client *c[5], *extra;
	struct st_options o = h_options(d);
	struct st_error err;
	long long deadline;
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		c[i] = h_connect(d);
		ping(c[i]);
	}
	memset(&err, 0, sizeof err);
	extra = h_connect_opts(&o, &err);
	if (extra != NULL) {
		struct st_error e2;
		json_t *r = NULL;
		int rc;

		/* Connected at TCP and TLS level: it must be closed at once. */
		memset(&e2, 0, sizeof e2);
		rc = st_call(extra, "system.ping", NULL, &r, &e2);
		json_decref(r);
		st_error_clear(&e2);
		st_close(extra);
		if (rc == ST_OK)
			h_fail("a 6th connection was served with "
			    "max_connections = 5");
	}
	st_error_clear(&err);
	assert_true(h_log_wait(d, "too many connections", 5000));
	/* The five are untouched. */
	for (i = 0; i < 5; i++)
		ping(c[i]);

	/* Once one closes, a new one works (the close is seen shortly). */
	st_close(c[0]);
	deadline = h_now_ms() + 10000;
	for (;;) {
		memset(&err, 0, sizeof err);
		extra = h_connect_opts(&o, &err);
		st_error_clear(&err);
		if (extra != NULL) {
			struct st_error e2;
			json_t *r = NULL;

			memset(&e2, 0, sizeof e2);
			if (st_call(extra, "system.ping", NULL, &r, &e2) ==
			    ST_OK) {
				json_decref(r);
				break;
			}
			st_error_clear(&e2);
			st_close(extra);
		}
		if (h_now_ms() > deadline)
			h_fail("no new connection served after closing one");
		h_sleep_ms(100);
	}
	for (i = 1; i < 5; i++)
		ping(c[i]);
	st_close(extra);
	for (i = 1; i < 5; i++)
		st_close(c[i]);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* ---- the command line ------------------------------------------------------ */

/* Writes a configuration for database dbname (on the fixture cluster) to
 * path, with extra appended. */
static void
write_conf(const char *path, const char *dbname, int port, const char *extra)
{
	const char *certs = h_certs_dir();
	FILE *f = fopen(path, "w");

	if (f == NULL)
		h_fail("cannot write %s: %s", path, strerror(errno));
	fprintf(f, "[server]\nlisten = 127.0.0.1:%d\n\n"
	    "[tls]\ncert = %s/server.pem\nkey = %s/server.key\n\n"
	    "[database]\nconninfo = %s dbname=%s\npool_size = 2\n%s",
	    port, certs, certs, h_pg_conninfo(), dbname, extra ? extra : "");
	fclose(f);
}

static void
run_dir(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "%s/run/%s", h_test_dir(), name);
	if (h_sh("mkdir -p '%s'", dir) != 0)
		h_fail("cannot make %s", dir);
}

static void
expect_output(const char *out, const char *needle, const char *what)
{
	if (strstr(out, needle) == NULL)
		h_fail("%s: no \"%s\" in the output:\n%s", what, needle, out);
}

static void
test_check_config(void **state)
{
	char dir[600], good[700], bad[700], range[700], nocert[700];
	char out[8192], want[800];
	const char *argv[5] = {daemon_bin(), "-c", NULL, "--check-config", NULL};

	(void)state;
	run_dir(dir, sizeof dir, "lc_check");
	snprintf(good, sizeof good, "%s/good.conf", dir);
	snprintf(bad, sizeof bad, "%s/bad.conf", dir);
	snprintf(range, sizeof range, "%s/range.conf", dir);
	snprintf(nocert, sizeof nocert, "%s/nocert.conf", dir);
	write_conf(good, "lc_check", 7443, "[policy]\ntoken_ttl = 15m\n");
	/* Line 14: a line that is not a setting. */
	write_conf(bad, "lc_check", 7443, "\n[log]\nlevel = info\nthis is not a setting\n");
	/* Line 12: a value out of range. */
	write_conf(range, "lc_check", 7443, "[server]\nmax_connections = 0\n");
	write_conf(nocert, "lc_check", 7443, "[tls]\ncert = /nonexistent/x.pem\n");

	argv[2] = good;
	assert_int_equal(run(argv, NULL, out, sizeof out, 20000), 0);
	expect_output(out, "configuration correcte / configuration OK",
	    "good file");

	argv[2] = bad;
	assert_int_equal(run(argv, NULL, out, sizeof out, 20000), 1);
	snprintf(want, sizeof want, "%s:14", bad);
	expect_output(out, want, "syntax error");

	argv[2] = range;
	assert_int_equal(run(argv, NULL, out, sizeof out, 20000), 1);
	snprintf(want, sizeof want, "%s:12", range);
	expect_output(out, want, "value out of range");
	expect_output(out, "max_connections", "value out of range");

	argv[2] = nocert;
	assert_int_equal(run(argv, NULL, out, sizeof out, 20000), 1);
	expect_output(out, "/nonexistent/x.pem", "missing certificate");

	snprintf(want, sizeof want, "%s/missing.conf", dir);
	argv[2] = want;
	assert_int_equal(run(argv, NULL, out, sizeof out, 20000), 1);
	expect_output(out, "missing.conf", "missing file");
}

static int
migrations_rows(const char *dbname)
{
	char conninfo[1024];
	PGconn *db;
	int n;

	snprintf(conninfo, sizeof conninfo, "%s dbname=%s", h_pg_conninfo(),
	    dbname);
	db = h_db_connect(conninfo);
	n = atoi(h_db_exec(db, "SELECT count(*) FROM schema_migrations"));
	PQfinish(db);
	return n;
}

static void
test_migrate_twice(void **state)
{
	char dir[600], conf[700], conninfo[1024], out[16384];
	const char *argv[5] = {daemon_bin(), "-c", NULL, "--migrate", NULL};
	int rows;

	(void)state;
	run_dir(dir, sizeof dir, "lc_migrate");
	snprintf(conf, sizeof conf, "%s/strapontind.conf", dir);
	h_db_create("lc_migrate", conninfo, sizeof conninfo);
	write_conf(conf, "lc_migrate", 7443, NULL);
	argv[2] = conf;
	assert_int_equal(run(argv, NULL, out, sizeof out, 60000), 0);
	expect_output(out, "applying schema file", "first --migrate");
	expect_output(out, "api applied", "first --migrate");
	rows = migrations_rows("lc_migrate");
	assert_true(rows >= 1);
	/* No schema file again; all of sql/api again, with nothing stale. */
	assert_int_equal(run(argv, NULL, out, sizeof out, 60000), 0);
	if (strstr(out, "applying schema file") != NULL)
		h_fail("second --migrate applied a schema file:\n%s", out);
	expect_output(out, "api applied: ", "second --migrate");
	expect_output(out, " 0 objects no longer defined dropped",
	    "second --migrate");
	assert_int_equal(migrations_rows("lc_migrate"), rows);
}

static void
test_old_schema_refused(void **state)
{
	char dir[600], conf[700], conninfo[1024], out[16384], sql[700];
	const char *argv[4] = {daemon_bin(), "-c", NULL, NULL};
	PGconn *db;
	int rc;

	(void)state;
	run_dir(dir, sizeof dir, "lc_oldschema");
	snprintf(conf, sizeof conf, "%s/strapontind.conf", dir);
	h_db_create("lc_oldschema", conninfo, sizeof conninfo);
	snprintf(sql, sizeof sql, "%s/sql/schema/001_foundation.sql",
	    h_env("ST_SOURCE_DIR"));
	if (h_sh("psql -X -q -v ON_ERROR_STOP=1 '%s' -f '%s' >'%s/psql.log' 2>&1",
	    conninfo, sql, dir) != 0)
		h_fail("psql -f %s failed (see %s/psql.log)", sql, dir);
	db = h_db_connect(conninfo);
	h_db_exec(db, "CREATE TABLE schema_migrations (version integer PRIMARY "
	    "KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT "
	    "now())");
	h_db_exec(db, "INSERT INTO schema_migrations (version, name) VALUES "
	    "(1, '001_foundation.sql')");
	PQfinish(db);

	write_conf(conf, "lc_oldschema", h_free_port(), NULL);
	argv[2] = conf;
	rc = run(argv, NULL, out, sizeof out, 20000);
	if (rc != 1)
		h_fail("against schema 1, the daemon exited %d (want 1):\n%s",
		    rc, out);
	expect_output(out, "--migrate", "old schema");
	if (strstr(out, "strapontind: ready") != NULL)
		h_fail("the daemon said ready on an old schema:\n%s", out);

	/* And --migrate brings it up to date, after which it starts. */
	{
		const char *mig[5] = {daemon_bin(), "-c", conf, "--migrate", NULL};

		assert_int_equal(run(mig, NULL, out, sizeof out, 60000), 0);
		expect_output(out, "applying schema file", "--migrate from 1");
	}
}

static void
test_command_line(void **state)
{
	struct h_daemon *d = h_daemon_start("lc_cli", NULL);
	char out[8192];
	const char *add[6] = {daemon_bin(), "-c", d->conf, "--add-admin",
	    "second@example.org", NULL};
	const char *version[3] = {daemon_bin(), "--version", NULL};
	const char *help[3] = {daemon_bin(), "--help", NULL};
	const char *bogus[3] = {daemon_bin(), "--bogus", NULL};
	const char *extra[5] = {daemon_bin(), "-c", d->conf, "stray", NULL};
	struct st_client *c;

	(void)state;
	/* A password under 8 characters is refused, and nothing is made. */
	assert_int_equal(run(add, "short\n", out, sizeof out, 30000), 1);
	expect_output(out, "au moins 8 caractères / the password must have at "
	    "least 8 characters", "short password");
	assert_int_equal(run(add, "", out, sizeof out, 30000), 1);
	c = h_connect(d);
	json_decref(h_call_err(c, "auth.login", json_pack("{s:s, s:s}", "email",
	    "second@example.org", "password", "short"), 401,
	    "unauthenticated"));
	st_close(c);
	add[4] = "not-an-address";
	assert_int_equal(run(add, "long-enough-password\n", out, sizeof out,
	    30000), 1);
	/* A good one works, and the new admin can log in at once. */
	add[4] = "second@example.org";
	assert_int_equal(run(add, "second-password-1\n", out, sizeof out,
	    30000), 0);
	c = h_login(d, "second@example.org", "second-password-1");
	st_close(c);

	assert_int_equal(run(version, NULL, out, sizeof out, 10000), 0);
	expect_output(out, "strapontind", "--version");
	assert_int_equal(run(help, NULL, out, sizeof out, 10000), 0);
	/* French first, then English */
	expect_output(out, "usage : strapontind", "--help");
	expect_output(out, "usage: strapontind", "--help");
	if (strstr(out, "usage : ") > strstr(out, "usage: "))
		h_fail("--help speaks English first: %s", out);
	expect_output(out, "--migrate", "--help");
	assert_int_not_equal(run(bogus, NULL, out, sizeof out, 10000), 0);
	assert_int_not_equal(run(extra, NULL, out, sizeof out, 10000), 0);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reload_certificate_and_settings),
		cmocka_unit_test(test_reload_broken_config),
		cmocka_unit_test(test_reload_listen_needs_restart),
		cmocka_unit_test(test_sigterm_drains),
		cmocka_unit_test(test_drain_outlives_idle_timeout),
		cmocka_unit_test(test_second_sigterm),
		cmocka_unit_test(test_drain_timeout),
		cmocka_unit_test(test_signals_while_exiting),
		cmocka_unit_test(test_max_connections),
		cmocka_unit_test(test_check_config),
		cmocka_unit_test(test_migrate_twice),
		cmocka_unit_test(test_old_schema_refused),
		cmocka_unit_test(test_command_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
