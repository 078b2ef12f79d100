/*
 * TLS as a client meets it: protocol versions (1.2 and 1.3 accepted, 1.1
 * refused, tls.min_version = 1.3), server certificate verification, mutual
 * TLS (a client certificate of the configured CA logs in at once; none, or
 * one naming nobody, still connects and must log in; one of another CA is
 * refused), session resumption (checked with `openssl s_client`, since
 * libstrapontin does not expose sessions), a client CRL (tls.client_crl,
 * also on SIGHUP), and the SQL that ends the sessions opened by
 * certificate (auth_revoke_cert_sessions, sql/012).
 */
#include "harness.h"

#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *
cert_path(const char *name)
{
	static char bufs[8][600];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof bufs[0], "%s/%s", h_certs_dir(), name);
	return b;
}

/* Connects with o; expects a failure of this status. */
static void
expect_connect_fails(const struct st_options *o, int status, const char *reason,
    const char *what)
{
	struct st_error err;
	struct st_client *c;

	memset(&err, 0, sizeof err);
	c = h_connect_opts(o, &err);
	if (c != NULL) {
		const char *v = st_tls_version(c);

		st_close(c);
		h_fail("%s: the connection succeeded (%s)", what, v);
	}
	if (err.status != status ||
	    (reason != NULL && strcmp(err.reason, reason) != 0))
		h_fail("%s: expected status %d (%s), got %d (%s): %s", what,
		    status, reason ? reason : "any reason", err.status,
		    err.reason, st_strerror(&err));
	st_error_clear(&err);
}

static struct st_client *
connect_ok(const struct st_options *o, const char *what)
{
	struct st_error err;
	struct st_client *c;

	memset(&err, 0, sizeof err);
	if ((c = h_connect_opts(o, &err)) == NULL) {
		char msg[600];

		snprintf(msg, sizeof msg, "%s", st_strerror(&err));
		st_error_clear(&err);
		h_fail("%s: cannot connect: %s", what, msg);
	}
	return c;
}

static void
ping(struct st_client *c)
{
	json_t *r = h_call_ok(c, "system.ping", NULL);

	assert_true(json_is_true(json_object_get(r, "pong")));
	json_decref(r);
}

static void
expect_whoami(struct st_client *c, const char *email)
{
	json_t *r = h_call_ok(c, "auth.whoami", NULL);
	json_t *u = json_object_get(r, "user");

	assert_string_equal(json_string_value(json_object_get(u, "email")),
	    email);
	json_decref(r);
}

static void
expect_anonymous(struct st_client *c)
{
	json_decref(h_call_err(c, "auth.whoami", NULL, 401, "unauthenticated"));
}

static void
login(struct st_client *c)
{
	json_t *r = h_call_ok(c, "auth.login", json_pack("{s:s, s:s}", "email",
	    H_ADMIN_EMAIL, "password", H_ADMIN_PASSWORD));

	json_decref(r);
}

/* A client certificate for email signed by the CA of prefix (ca or
 * other-ca), written to dir/name.pem and dir/name.key. */
static void
make_client_cert(const char *dir, const char *name, const char *ca,
    const char *email)
{
	if (h_sh("cd '%s' && "
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	    "-out %s.key 2>/dev/null && "
	    "openssl req -new -key %s.key -subj '/O=tests/CN=%s' -out %s.csr "
	    "2>/dev/null && "
	    "printf 'basicConstraints=critical,CA:FALSE\\n"
	    "keyUsage=critical,digitalSignature\\nextendedKeyUsage=clientAuth\\n"
	    "subjectAltName=email:%s\\n' > %s.ext && "
	    "openssl x509 -req -in %s.csr -CA '%s' -CAkey '%s' "
	    "-set_serial 0x$(openssl rand -hex 8) -days 30 -sha256 "
	    "-extfile %s.ext -out %s.pem 2>/dev/null",
	    dir, name, name, email, name, email, name, name,
	    cert_path(strcmp(ca, "ca") == 0 ? "ca.pem" : "other-ca.pem"),
	    cert_path(strcmp(ca, "ca") == 0 ? "ca.key" : "other-ca.key"),
	    name, name) != 0)
		h_fail("cannot make the client certificate %s/%s.pem", dir, name);
}

static void
test_versions(void **state)
{
	struct h_daemon *d = h_daemon_start("tls_versions", NULL);
	struct st_options o;
	struct st_client *c;

	(void)state;
	/* By default the best: 1.3. */
	o = h_options(d);
	c = connect_ok(&o, "default");
	assert_string_equal(st_tls_version(c), "TLSv1.3");
	ping(c);
	st_close(c);

	o = h_options(d);
	o.max_tls_version = TLS1_2_VERSION;
	c = connect_ok(&o, "TLS 1.2");
	assert_string_equal(st_tls_version(c), "TLSv1.2");
	ping(c);
	login(c);
	expect_whoami(c, H_ADMIN_EMAIL);
	st_close(c);

	o = h_options(d);
	o.min_tls_version = TLS1_3_VERSION;
	c = connect_ok(&o, "TLS 1.3");
	assert_string_equal(st_tls_version(c), "TLSv1.3");
	ping(c);
	st_close(c);

	/* The library lowers its own security level for these, so the refusal
	 * is the server's. */
	o = h_options(d);
	o.min_tls_version = TLS1_1_VERSION;
	o.max_tls_version = TLS1_1_VERSION;
	expect_connect_fails(&o, ST_ERR_TLS, NULL, "TLS 1.1");
	o.min_tls_version = TLS1_VERSION;
	o.max_tls_version = TLS1_VERSION;
	expect_connect_fails(&o, ST_ERR_TLS, NULL, "TLS 1.0");
	assert_true(h_log_wait(d, "unsupported protocol", 5000));
	/* A client offering 1.1 and 1.2 gets 1.2. */
	o.min_tls_version = TLS1_1_VERSION;
	o.max_tls_version = TLS1_2_VERSION;
	c = connect_ok(&o, "TLS 1.1 to 1.2");
	assert_string_equal(st_tls_version(c), "TLSv1.2");
	ping(c);
	st_close(c);

	/* Without tls.client_ca a client certificate is not asked for, and
	 * logs nobody in. */
	o = h_options(d);
	o.cert_file = cert_path("client.pem");
	o.key_file = cert_path("client.key");
	c = connect_ok(&o, "client certificate, no client_ca");
	expect_anonymous(c);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

static void
test_min_version_13(void **state)
{
	struct h_daemon *d = h_daemon_start("tls_min13",
	    "[tls]\nmin_version = 1.3\n");
	struct st_options o = h_options(d);
	struct st_client *c;

	(void)state;
	o.max_tls_version = TLS1_2_VERSION;
	expect_connect_fails(&o, ST_ERR_TLS, NULL, "1.2-only client, min 1.3");
	o = h_options(d);
	c = connect_ok(&o, "default client, min 1.3");
	assert_string_equal(st_tls_version(c), "TLSv1.3");
	ping(c);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

static void
test_server_verification(void **state)
{
	struct h_daemon *d = h_daemon_start("tls_verify", NULL);
	struct st_options o;
	struct st_client *c;

	(void)state;
	o = h_options(d);
	o.ca_file = cert_path("other-ca.pem");
	expect_connect_fails(&o, ST_ERR_TLS, "certificate", "other CA");
	/* A name the certificate does not carry. */
	o = h_options(d);
	o.server_name = "strapontin.example.com";
	expect_connect_fails(&o, ST_ERR_TLS, "certificate", "wrong name");
	/* The address the certificate carries is checked as an address. */
	o = h_options(d);
	o.server_name = NULL;
	c = connect_ok(&o, "by IP address");
	ping(c);
	st_close(c);
	o.server_name = "127.0.0.2";
	expect_connect_fails(&o, ST_ERR_TLS, "certificate", "wrong address");
	/* The failures above were verification, not the connection. */
	o = h_options(d);
	o.ca_file = cert_path("other-ca.pem");
	o.insecure_for_tests = true;
	c = connect_ok(&o, "insecure");
	ping(c);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* A certificate the server must refuse: the handshake fails (TLS 1.2), or
 * with TLS 1.3, where the client finishes first, the connection is closed
 * before any answer. */
static void
expect_cert_refused(struct st_options *o, const char *what)
{
	struct st_error err;
	struct st_client *c;
	json_t *r = NULL;
	int rc;

	memset(&err, 0, sizeof err);
	if ((c = h_connect_opts(o, &err)) == NULL) {
		if (err.status != ST_ERR_TLS)
			h_fail("%s: expected a TLS failure, got %d: %s", what,
			    err.status, st_strerror(&err));
		st_error_clear(&err);
		return;
	}
	rc = st_call(c, "system.ping", NULL, &r, &err);
	if (rc == ST_OK) {
		json_decref(r);
		st_close(c);
		h_fail("%s: the server accepted the certificate and answered",
		    what);
	}
	if (rc != ST_ERR_IO && rc != ST_ERR_TLS)
		h_fail("%s: expected the connection to be closed, got %d: %s",
		    what, rc, st_strerror(&err));
	st_error_clear(&err);
	st_close(c);
}

static void
test_mutual_tls(void **state)
{
	struct h_daemon *d;
	struct st_options o;
	struct st_client *c;
	char ini[1024];
	json_t *r;

	(void)state;
	snprintf(ini, sizeof ini, "[tls]\nclient_ca = %s\n", cert_path("ca.pem"));
	d = h_daemon_start("tls_mutual", ini);
	make_client_cert(d->dir, "nobody", "ca", "nobody@example.org");

	/* The harness admin's certificate: logged in at once, both versions. */
	o = h_options(d);
	o.cert_file = cert_path("client.pem");
	o.key_file = cert_path("client.key");
	c = connect_ok(&o, "client certificate");
	expect_whoami(c, H_ADMIN_EMAIL);
	r = h_call_ok(c, "auth.whoami", NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r,
	    "user"), "role")), "admin");
	json_decref(r);
	st_close(c);
	o.max_tls_version = TLS1_2_VERSION;
	c = connect_ok(&o, "client certificate, TLS 1.2");
	expect_whoami(c, H_ADMIN_EMAIL);
	st_close(c);
	assert_true(h_log_contains(d, "logged in by client certificate"));

	/* No certificate: connects, must log in. */
	o = h_options(d);
	c = connect_ok(&o, "no client certificate");
	ping(c);
	expect_anonymous(c);
	login(c);
	expect_whoami(c, H_ADMIN_EMAIL);
	st_close(c);

	/* A valid certificate naming nobody: same. */
	{
		char pem[700], key[700];

		snprintf(pem, sizeof pem, "%s/nobody.pem", d->dir);
		snprintf(key, sizeof key, "%s/nobody.key", d->dir);
		o = h_options(d);
		o.cert_file = pem;
		o.key_file = key;
		c = connect_ok(&o, "certificate of an unknown e-mail");
		expect_anonymous(c);
		login(c);
		expect_whoami(c, H_ADMIN_EMAIL);
		st_close(c);
		assert_true(h_log_contains(d, "names no enabled user"));
	}

	/* The admin's e-mail, but signed by another CA: refused. */
	o = h_options(d);
	o.cert_file = cert_path("other-client.pem");
	o.key_file = cert_path("other-client.key");
	o.max_tls_version = TLS1_2_VERSION;
	expect_connect_fails(&o, ST_ERR_TLS, NULL, "other CA's client, TLS 1.2");
	o.max_tls_version = 0;
	expect_cert_refused(&o, "other CA's client, TLS 1.3");
	assert_true(h_log_wait(d, "certificate verify failed", 5000));
	assert_int_equal(h_log_count(d, "logged in by client certificate"), 2);

	/* The daemon serves on. */
	o = h_options(d);
	c = connect_ok(&o, "after the refusals");
	ping(c);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Session resumption, TLS 1.2 (session cache) and 1.3 (tickets). The
 * client sends a ping and waits a little, so that TLS 1.3 tickets, sent
 * after the handshake, reach it. */
static int
s_client(const struct h_daemon *d, const char *version, const char *sess_opt,
    const char *sess_file, const char *out)
{
	return h_sh("(printf '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"system.ping\"}\\n'; sleep 1) | timeout 20 openssl s_client "
	    "-connect 127.0.0.1:%d -servername localhost -CAfile '%s' "
	    "-verify_return_error %s %s '%s' > '%s' 2>&1",
	    d->port, cert_path("ca.pem"), version, sess_opt, sess_file, out);
}

static bool
file_has(const char *path, const char *needle)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static void
test_session_resumption(void **state)
{
	struct h_daemon *d;
	static const char *const versions[] = {"-tls1_2", "-tls1_3"};
	static const char *const names[] = {"TLSv1.2", "TLSv1.3"};
	char sess[700], out[700], want[64];
	size_t i;

	(void)state;
	if (h_sh("command -v openssl >/dev/null") != 0 ||
	    h_sh("command -v timeout >/dev/null") != 0) {
		fprintf(stderr, "no openssl or timeout command: session "
		    "resumption not checked\n");
		skip();
	}
	d = h_daemon_start("tls_resume", NULL);
	for (i = 0; i < 2; i++) {
		snprintf(sess, sizeof sess, "%s/session%zu.pem", d->dir, i);
		snprintf(out, sizeof out, "%s/s_client%zu-first.txt", d->dir, i);
		unlink(sess);
		if (s_client(d, versions[i], "-sess_out", sess, out) != 0 ||
		    access(sess, R_OK) != 0)
			h_fail("openssl s_client %s failed or saved no session "
			    "(see %s)", versions[i], out);
		snprintf(want, sizeof want, "New, %s", names[i]);
		if (!file_has(out, want) || !file_has(out, "\"pong\":true"))
			h_fail("first %s connection: no \"%s\" or no pong in %s",
			    names[i], want, out);
		snprintf(out, sizeof out, "%s/s_client%zu-second.txt", d->dir, i);
		if (s_client(d, versions[i], "-sess_in", sess, out) != 0)
			h_fail("openssl s_client -sess_in %s failed (see %s)",
			    versions[i], out);
		snprintf(want, sizeof want, "Reused, %s", names[i]);
		if (!file_has(out, want) || !file_has(out, "\"pong\":true"))
			h_fail("%s session not resumed: no \"%s\" or no pong "
			    "in %s", names[i], want, out);
	}
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Sends SIGHUP and waits for one more "configuration reloaded". */
static void
reload(struct h_daemon *d)
{
	const char *done = "configuration reloaded";
	int before = h_log_count(d, done);
	int i;

	assert_int_equal(h_daemon_signal(d, SIGHUP), 0);
	for (i = 0; i < 200 && h_log_count(d, done) == before; i++)
		h_sleep_ms(50);
	if (h_log_count(d, done) == before)
		h_fail("no \"%s\" in the log after SIGHUP", done);
}

/* Waits up to 5 s for the log to hold n lines with needle. */
static void
wait_count(const struct h_daemon *d, const char *needle, int n)
{
	int i;

	for (i = 0; i < 100 && h_log_count(d, needle) < n; i++)
		h_sleep_ms(50);
	if (h_log_count(d, needle) != n)
		h_fail("%d \"%s\" in the log, expected %d",
		    h_log_count(d, needle), needle, n);
}

/* tls.client_crl: the revoked certificate (of the admin, signed by the CA)
 * is refused with both versions while the others log in; the CRL is read
 * again on SIGHUP, like the rest of the TLS settings. */
static void
test_client_crl(void **state)
{
	struct h_daemon *d;
	struct st_options o;
	struct st_client *c;
	char ca[1200], crl[2600];

	(void)state;
	snprintf(ca, sizeof ca, "[tls]\nclient_ca = %s\n", cert_path("ca.pem"));
	snprintf(crl, sizeof crl, "%sclient_crl = %s\n", ca,
	    cert_path("crl.pem"));
	d = h_daemon_start("tls_crl", ca);

	/* Without the CRL, the certificate is good. */
	o = h_options(d);
	o.cert_file = cert_path("revoked-client.pem");
	o.key_file = cert_path("revoked-client.key");
	c = connect_ok(&o, "revoked certificate, no CRL yet");
	expect_whoami(c, H_ADMIN_EMAIL);

	h_daemon_write_conf(d, crl);
	reload(d);
	o.max_tls_version = TLS1_2_VERSION;
	expect_connect_fails(&o, ST_ERR_TLS, NULL, "revoked certificate, 1.2");
	o.max_tls_version = 0;
	expect_cert_refused(&o, "revoked certificate, TLS 1.3");
	/* The server refused both (its log cannot say why: OpenSSL's error
	 * names no verification result). */
	wait_count(d, "certificate verify failed", 2);

	/* Another certificate of the same CA and e-mail still logs in. */
	o = h_options(d);
	o.cert_file = cert_path("client.pem");
	o.key_file = cert_path("client.key");
	st_close(connect_ok(&o, "good certificate, with the CRL"));
	o.max_tls_version = TLS1_2_VERSION;
	st_close(connect_ok(&o, "good certificate, with the CRL, TLS 1.2"));
	/* So does a client without one. */
	o = h_options(d);
	st_close(connect_ok(&o, "no certificate, with the CRL"));

	/* A reload that cannot read the CRL keeps the running context. */
	snprintf(crl, sizeof crl, "%sclient_crl = %s/no-such-crl.pem\n", ca,
	    d->dir);
	h_daemon_write_conf(d, crl);
	assert_int_equal(h_daemon_signal(d, SIGHUP), 0);
	assert_true(h_log_wait(d, "no-such-crl.pem", 10000));
	o = h_options(d);
	o.cert_file = cert_path("revoked-client.pem");
	o.key_file = cert_path("revoked-client.key");
	o.max_tls_version = TLS1_2_VERSION;
	expect_connect_fails(&o, ST_ERR_TLS, NULL,
	    "revoked certificate, after a failed reload");
	wait_count(d, "certificate verify failed", 3);

	/* The connection opened before the CRL is still there; ending it is
	 * the reload's business (tls_client_trust_changed()), see
	 * test_revoke_cert_sessions for the database side. */
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* The live token of each connection's session, newest first. */
static void
live_tokens(PGconn *db, const char *via, char *out, size_t len)
{
	char sql[256];

	snprintf(sql, sizeof sql, "SELECT string_agg(token_hash, ',' ORDER BY "
	    "created_at DESC, token_hash) FROM tokens WHERE via = '%s' AND "
	    "revoked_at IS NULL", via);
	snprintf(out, len, "%s", h_db_exec(db, sql));
}

/* auth_revoke_cert_sessions() (sql/012): what a reload calls when the
 * client CA or CRL changed. It ends the sessions opened by certificate,
 * those named or all, and never a password session; the connections
 * concerned are then unauthenticated. */
static void
test_revoke_cert_sessions(void **state)
{
	struct h_daemon *d;
	struct st_options o;
	struct st_client *cert1, *cert2, *pw;
	char ini[1024], sql[1024], t1[200], t2[200], tp[200];
	PGconn *db;

	(void)state;
	snprintf(ini, sizeof ini, "[tls]\nclient_ca = %s\n", cert_path("ca.pem"));
	d = h_daemon_start("tls_revoke", ini);
	db = h_db_connect(d->conninfo);
	o = h_options(d);
	o.cert_file = cert_path("client.pem");
	o.key_file = cert_path("client.key");
	cert1 = connect_ok(&o, "first certificate session");
	expect_whoami(cert1, H_ADMIN_EMAIL);
	live_tokens(db, "certificate", t1, sizeof t1);
	cert2 = connect_ok(&o, "second certificate session");
	expect_whoami(cert2, H_ADMIN_EMAIL);
	live_tokens(db, "certificate", t2, sizeof t2);
	/* t2 is "second,first": keep the second only. */
	assert_int_equal(strlen(t2), 64 + 1 + 64);
	t2[64] = '\0';
	assert_string_not_equal(t1, t2);
	o = h_options(d);
	pw = connect_ok(&o, "password session");
	login(pw);
	live_tokens(db, "password", tp, sizeof tp);
	assert_int_equal(strlen(tp), 64);

	/* Named: only the certificate sessions among the names. */
	snprintf(sql, sizeof sql, "SELECT string_agg(h, ',') FROM "
	    "api.auth_revoke_cert_sessions(ARRAY['%s', '%s']) AS h", t2, tp);
	assert_string_equal(h_db_exec(db, sql), t2);
	expect_anonymous(cert2);
	expect_whoami(cert1, H_ADMIN_EMAIL);
	expect_whoami(pw, H_ADMIN_EMAIL);
	/* Already revoked: nothing more. */
	assert_string_equal(h_db_exec(db, sql), "");

	/* All of them: the first certificate session goes, the password one
	 * stays. */
	assert_string_equal(h_db_exec(db,
	    "SELECT string_agg(h, ',') FROM api.auth_revoke_cert_sessions() AS h"),
	    t1);
	expect_anonymous(cert1);
	expect_whoami(pw, H_ADMIN_EMAIL);
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM tokens WHERE "
	    "via = 'certificate' AND revoked_at IS NULL"), "0");

	/* A revoked session may log in again with a password. */
	login(cert1);
	expect_whoami(cert1, H_ADMIN_EMAIL);

	st_close(cert1);
	st_close(cert2);
	st_close(pw);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* A SIGHUP that changes what client certificates are checked against
 * ends the sessions opened by certificate: their connections close and
 * their tokens are revoked; password sessions stay; the same CA again
 * changes nothing; the certificate logs in anew on a new connection. */
static void
test_reload_ends_cert_sessions(void **state)
{
	struct h_daemon *d;
	struct st_options o;
	struct st_client *cert, *pw;
	char ini[2600];
	PGconn *db;
	json_t *r = NULL;
	struct st_error err;
	int i, rc = ST_OK;

	(void)state;
	snprintf(ini, sizeof ini, "[tls]\nclient_ca = %s\n", cert_path("ca.pem"));
	d = h_daemon_start("tls_reload_ca", ini);
	db = h_db_connect(d->conninfo);
	o = h_options(d);
	o.cert_file = cert_path("client.pem");
	o.key_file = cert_path("client.key");
	cert = connect_ok(&o, "certificate session");
	expect_whoami(cert, H_ADMIN_EMAIL);
	o = h_options(d);
	pw = connect_ok(&o, "password session");
	login(pw);

	/* The same configuration again: nothing changes. */
	reload(d);
	expect_whoami(cert, H_ADMIN_EMAIL);

	/* A CRL added: what client certificates are checked against changed. */
	snprintf(ini, sizeof ini, "[tls]\nclient_ca = %s\nclient_crl = %s\n",
	    cert_path("ca.pem"), cert_path("crl.pem"));
	h_daemon_write_conf(d, ini);
	reload(d);
	assert_true(h_log_wait(d, "sessions opened by certificate revoked",
	    10000));
	memset(&err, 0, sizeof err);
	for (i = 0; i < 50; i++) {
		rc = st_call(cert, "auth.whoami", NULL, &r, &err);
		if (rc != ST_OK)
			break;
		json_decref(r);
		h_sleep_ms(100);
	}
	if (rc == ST_OK)
		h_fail("a certificate session outlived a change of client CA");
	st_error_clear(&err);
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM tokens WHERE "
	    "via = 'certificate' AND revoked_at IS NULL"), "0");
	expect_whoami(pw, H_ADMIN_EMAIL);

	/* A good certificate logs in again on a new connection. */
	o = h_options(d);
	o.cert_file = cert_path("client.pem");
	o.key_file = cert_path("client.key");
	st_close(cert);
	cert = connect_ok(&o, "certificate session after the reload");
	expect_whoami(cert, H_ADMIN_EMAIL);

	st_close(cert);
	st_close(pw);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_min_version_13),
		cmocka_unit_test(test_server_verification),
		cmocka_unit_test(test_mutual_tls),
		cmocka_unit_test(test_session_resumption),
		cmocka_unit_test(test_client_crl),
		cmocka_unit_test(test_revoke_cert_sessions),
		cmocka_unit_test(test_reload_ends_cert_sessions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
