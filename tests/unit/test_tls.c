/* Unit tests of tls: the server context built from the configuration, with
 * the development certificates of scripts/mkcert (made afresh in a
 * temporary directory), and handshakes over memory BIOs to check that the
 * context does what its settings say. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "tls.h"
#include "util.h"

static char dir[PATH_MAX];         /* the temporary directory */
static char certs[PATH_MAX + 8];   /* dir/certs, made by mkcert */
static char conf[PATH_MAX + 16];

static bool
is_executable(const char *p)
{
	return access(p, X_OK) == 0;
}

/* Cuts the last n components off p. */
static void
strip_components(char *p, int n)
{
	char *slash;

	while (n-- > 0 && (slash = strrchr(p, '/')) != NULL)
		*(slash == p ? slash + 1 : slash) = '\0';
}

/* The source tree's scripts/mkcert: from $ST_SOURCE_DIR (ctest sets it for
 * the integration tests), else from this file's own path (CMake compiles
 * it by its absolute name), else from the directories above the executable
 * (an in-tree build) or the source directory of the CMake cache found
 * there (an out-of-tree one). */
static bool
find_mkcert(char *out, size_t len)
{
	char p[PATH_MAX], line[PATH_MAX + 64];
	const char *env = getenv("ST_SOURCE_DIR");
	static const char key[] = "CMAKE_HOME_DIRECTORY:INTERNAL=";
	ssize_t n;
	FILE *f;

	if (env != NULL && *env != '\0') {
		snprintf(out, len, "%s/scripts/mkcert", env);
		if (is_executable(out))
			return true;
	}
	if (__FILE__[0] == '/') {
		snprintf(p, sizeof p, "%s", __FILE__);
		strip_components(p, 3);	/* tests/unit/test_tls.c */
		snprintf(out, len, "%s/scripts/mkcert", p);
		if (is_executable(out))
			return true;
	}
	if ((n = readlink("/proc/self/exe", p, sizeof p - 1)) <= 0)
		return false;
	p[n] = '\0';
	for (strip_components(p, 1); p[0] != '\0' && strcmp(p, "/") != 0;
	    strip_components(p, 1)) {
		snprintf(out, len, "%s/scripts/mkcert", p);
		if (is_executable(out))
			return true;
		snprintf(line, sizeof line, "%s/CMakeCache.txt", p);
		if ((f = fopen(line, "r")) == NULL)
			continue;
		while (fgets(line, sizeof line, f) != NULL) {
			if (strncmp(line, key, sizeof key - 1) != 0)
				continue;
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s/scripts/mkcert",
			    line + sizeof key - 1);
			break;
		}
		fclose(f);
		if (is_executable(out))
			return true;
	}
	return false;
}

static int
group_setup(void **state)
{
	char mkcert[2 * PATH_MAX], cmd[5 * PATH_MAX];

	if (!find_mkcert(mkcert, sizeof mkcert)) {
		fprintf(stderr, "test_tls: cannot find scripts/mkcert; set "
		    "ST_SOURCE_DIR to the source tree\n");
		return -1;
	}
	snprintf(dir, sizeof dir, "%s/test_tls.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(certs, sizeof certs, "%s/certs", dir);
	snprintf(conf, sizeof conf, "%s/t.conf", dir);
	snprintf(cmd, sizeof cmd, "'%s' '%s' >/dev/null", mkcert, certs);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_tls: %s failed\n", cmd);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[PATH_MAX + 32];

	/* dir is ours, made by mkdtemp above. */
	if (dir[0] != '\0') {
		snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "test_tls: cannot remove %s\n", dir);
	}
	return 0;
}

/* "certs/NAME", or NAME as it is if it starts with '/'. */
static const char *
cert_path(const char *name, char *buf, size_t len)
{
	if (name[0] == '/')
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%s/%s", certs, name);
	return buf;
}

/* A configuration naming these files (ca may be NULL), plus extra lines
 * for [tls]. */
static struct config *
make_config(const char *cert, const char *key, const char *ca,
    const char *tls_extra)
{
	char a[PATH_MAX + 32], b[PATH_MAX + 32], c[PATH_MAX + 32], err[512];
	struct config *cfg;
	FILE *f;

	assert_non_null(f = fopen(conf, "w"));
	fprintf(f, "[tls]\ncert = %s\nkey = %s\n",
	    cert_path(cert, a, sizeof a), cert_path(key, b, sizeof b));
	if (ca != NULL)
		fprintf(f, "client_ca = %s\n", cert_path(ca, c, sizeof c));
	fprintf(f, "%s\n[database]\nconninfo = dbname=unused\n",
	    tls_extra ? tls_extra : "");
	assert_int_equal(fclose(f), 0);
	if ((cfg = config_load(conf, err, sizeof err)) == NULL)
		fail_msg("config_load: %s", err);
	return cfg;
}

/* tls_server_ctx must fail, with an error holding each non-NULL part. */
static void
expect_failure(int line, struct config *cfg, const char *part1,
    const char *part2)
{
	char err[1024];
	SSL_CTX *ctx;

	err[0] = '\0';
	if ((ctx = tls_server_ctx(cfg, err, sizeof err)) != NULL) {
		SSL_CTX_free(ctx);
		fail_msg("line %d: tls_server_ctx succeeded", line);
	}
	if (part1 != NULL && strstr(err, part1) == NULL)
		fail_msg("line %d: error \"%s\" lacks \"%s\"", line, err,
		    part1);
	if (part2 != NULL && strstr(err, part2) == NULL)
		fail_msg("line %d: error \"%s\" lacks \"%s\"", line, err,
		    part2);
	/* Nothing left behind to confuse the next OpenSSL caller. */
	if (ERR_peek_error() != 0)
		fail_msg("line %d: OpenSSL error queue not cleared", line);
	config_free(cfg);
}
#define FAILS(cfg, p1, p2) expect_failure(__LINE__, cfg, p1, p2)

static SSL_CTX *
server_ctx(struct config *cfg)
{
	char err[1024];
	SSL_CTX *ctx;

	err[0] = '\0';
	if ((ctx = tls_server_ctx(cfg, err, sizeof err)) == NULL)
		fail_msg("tls_server_ctx: %s", err);
	return ctx;
}

/* A client trusting the development CA, with at most TLS max_version
 * (0: any), presenting cert/key if given. */
static SSL_CTX *
client_ctx(int max_version, const char *cert, const char *key)
{
	char a[PATH_MAX + 32];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx,
	    cert_path("ca.pem", a, sizeof a), NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (max_version != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(ctx,
		    max_version), 1);
	if (cert != NULL) {
		assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx,
		    cert_path(cert, a, sizeof a)), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx,
		    cert_path(key, a, sizeof a), SSL_FILETYPE_PEM), 1);
	}
	return ctx;
}

/* Runs a handshake between the two contexts over a memory BIO pair.
 * Returns true if both ends completed; *server_out gets the server's SSL
 * (to be freed by the caller) either way. */
static bool
handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL **server_out)
{
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	BIO *sb = NULL, *cb = NULL;
	bool sdone = false, cdone = false, failed = false;
	int i, rc;

	assert_non_null(s);
	assert_non_null(c);
	assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	assert_int_equal(SSL_set1_host(c, "localhost"), 1);

	for (i = 0; i < 50 && !failed && !(sdone && cdone); i++) {
		if (!cdone) {
			rc = SSL_do_handshake(c);
			if (rc == 1)
				cdone = true;
			else if (SSL_get_error(c, rc) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(c, rc) != SSL_ERROR_WANT_WRITE)
				failed = true;
		}
		if (!sdone && !failed) {
			rc = SSL_do_handshake(s);
			if (rc == 1)
				sdone = true;
			else if (SSL_get_error(s, rc) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(s, rc) != SSL_ERROR_WANT_WRITE)
				failed = true;
		}
	}
	/* With TLS 1.3 the server judges the client's certificate after the
	 * client has finished: let the client read the verdict. */
	if (!failed && sdone && cdone) {
		char byte;

		rc = SSL_read(c, &byte, 1);
		if (rc <= 0 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ)
			failed = true;
	}
	ERR_clear_error();
	SSL_free(c);
	*server_out = s;
	return !failed && sdone && cdone;
}

static void
test_good_config(void **state)
{
	struct config *cfg = make_config("server.pem", "server.key", NULL,
	    NULL);
	SSL_CTX *ctx = server_ctx(cfg);
	X509 *x;
	char cn[256];

	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	/* No client CA: no certificate asked of clients. */
	assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_IGNORE_UNEXPECTED_EOF);
	assert_non_null(x = SSL_CTX_get0_certificate(ctx));
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, cn, sizeof cn) > 0);
	assert_string_equal(cn, "localhost");
	assert_int_equal(ERR_peek_error(), 0);
	SSL_CTX_free(ctx);
	config_free(cfg);
}

static void
test_client_ca(void **state)
{
	struct config *cfg = make_config("server.pem", "server.key", "ca.pem",
	    NULL);
	SSL_CTX *ctx = server_ctx(cfg);
	STACK_OF(X509_NAME) *names;

	/* Asked for, but optional: a client without one logs in with a
	 * password. */
	assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
	assert_non_null(names = SSL_CTX_get_client_CA_list(ctx));
	assert_int_equal(sk_X509_NAME_num(names), 1);
	SSL_CTX_free(ctx);
	config_free(cfg);
}

static void
test_min_version(void **state)
{
	struct config *cfg;
	SSL_CTX *ctx;

	cfg = make_config("server.pem", "server.key", NULL,
	    "min_version = 1.3");
	ctx = server_ctx(cfg);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
	SSL_CTX_free(ctx);
	config_free(cfg);

	cfg = make_config("server.pem", "server.key", NULL,
	    "min_version = 1.2");
	ctx = server_ctx(cfg);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	SSL_CTX_free(ctx);
	config_free(cfg);
}

/* A key of another certificate: the error names the key and says it does
 * not match ("key values mismatch" from OpenSSL's own check when loading
 * the key, or ours, "key does not match certificate"). */
static void
test_wrong_key(void **state)
{
	FAILS(make_config("server.pem", "other-client.key", NULL, NULL),
	    "match", "other-client.key");
	FAILS(make_config("client.pem", "server.key", NULL, NULL),
	    "match", "server.key");
}

static void
test_missing_files(void **state)
{
	char nope[PATH_MAX + 32];

	snprintf(nope, sizeof nope, "%s/no-such-cert.pem", certs);
	FAILS(make_config(nope, "server.key", NULL, NULL), nope, NULL);
	snprintf(nope, sizeof nope, "%s/no-such-key.key", certs);
	FAILS(make_config("server.pem", nope, NULL, NULL), nope, NULL);
	snprintf(nope, sizeof nope, "%s/no-such-ca.pem", certs);
	FAILS(make_config("server.pem", "server.key", nope, NULL), nope, NULL);
}

/* Files that exist but hold the wrong thing. */
static void
test_wrong_files(void **state)
{
	char key[PATH_MAX + 32], cert[PATH_MAX + 32];

	/* A configuration file is no certificate, nor a key, nor a CA. */
	FAILS(make_config(conf, "server.key", NULL, NULL), conf, NULL);
	FAILS(make_config("server.pem", conf, NULL, NULL), conf, NULL);
	FAILS(make_config("server.pem", "server.key", conf, NULL), conf, NULL);
	/* A key given as the certificate, and the other way round. */
	cert_path("server.key", key, sizeof key);
	cert_path("server.pem", cert, sizeof cert);
	FAILS(make_config(key, key, NULL, NULL), key, NULL);
	FAILS(make_config(cert, cert, NULL, NULL), cert, NULL);
}

static void
test_bad_ciphers(void **state)
{
	FAILS(make_config("server.pem", "server.key", NULL,
	    "ciphers = NO-SUCH-CIPHER"), "tls.ciphers", NULL);
}

/* The default cipher list leaves TLS 1.2 clients a suite for the EC key,
 * and TLS 1.3 is what a modern client gets. */
static void
test_handshake_versions(void **state)
{
	struct config *cfg = make_config("server.pem", "server.key", NULL,
	    NULL);
	SSL_CTX *sctx = server_ctx(cfg), *cctx;
	SSL *s;

	cctx = client_ctx(0, NULL, NULL);
	assert_true(handshake(sctx, cctx, &s));
	assert_int_equal(SSL_version(s), TLS1_3_VERSION);
	SSL_free(s);
	SSL_CTX_free(cctx);

	cctx = client_ctx(TLS1_2_VERSION, NULL, NULL);
	assert_true(handshake(sctx, cctx, &s));
	assert_int_equal(SSL_version(s), TLS1_2_VERSION);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	config_free(cfg);

	/* min_version = 1.3 turns a TLS 1.2 client away. */
	cfg = make_config("server.pem", "server.key", NULL,
	    "min_version = 1.3");
	sctx = server_ctx(cfg);
	cctx = client_ctx(TLS1_2_VERSION, NULL, NULL);
	assert_false(handshake(sctx, cctx, &s));
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	config_free(cfg);
}

/* With a client CA: a client with no certificate still gets in (and is
 * nobody), one with a certificate of the CA is named by its e-mail, and one
 * from another CA is never taken for that person. */
static void
test_client_certificates(void **state)
{
	struct config *cfg = make_config("server.pem", "server.key", "ca.pem",
	    NULL);
	SSL_CTX *sctx = server_ctx(cfg), *cctx;
	char *email;
	SSL *s;
	int v;

	for (v = 0; v < 2; v++) {
		int maxv = v == 0 ? 0 : TLS1_2_VERSION;

		cctx = client_ctx(maxv, NULL, NULL);
		assert_true(handshake(sctx, cctx, &s));
		assert_null(tls_peer_email(s));
		SSL_free(s);
		SSL_CTX_free(cctx);

		cctx = client_ctx(maxv, "client.pem", "client.key");
		assert_true(handshake(sctx, cctx, &s));
		email = tls_peer_email(s);
		assert_non_null(email);
		assert_string_equal(email, "admin@example.org");
		free(email);
		SSL_free(s);
		SSL_CTX_free(cctx);

		cctx = client_ctx(maxv, "other-client.pem", "other-client.key");
		if (handshake(sctx, cctx, &s))
			assert_null(tls_peer_email(s));
		SSL_free(s);
		SSL_CTX_free(cctx);
	}
	SSL_CTX_free(sctx);
	config_free(cfg);
}

/* ---- revocation: tls.client_crl ---------------------------------------- */

static void
test_crl(void **state)
{
	struct config *cfg;
	SSL_CTX *sctx, *cctx;
	X509_VERIFY_PARAM *param;
	char crl[PATH_MAX + 64], line[PATH_MAX + 96], err[512];
	char *email;
	SSL *s;
	int v;

	/* Without a CRL the revoked certificate is as good as any. */
	cfg = make_config("server.pem", "server.key", "ca.pem", NULL);
	sctx = server_ctx(cfg);
	cctx = client_ctx(0, "revoked-client.pem", "revoked-client.key");
	assert_true(handshake(sctx, cctx, &s));
	assert_non_null(email = tls_peer_email(s));
	free(email);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	config_free(cfg);

	snprintf(line, sizeof line, "client_crl = %s",
	    cert_path("crl.pem", crl, sizeof crl));
	cfg = make_config("server.pem", "server.key", "ca.pem", line);
	sctx = server_ctx(cfg);
	param = X509_STORE_get0_param(SSL_CTX_get_cert_store(sctx));
	assert_true(X509_VERIFY_PARAM_get_flags(param) & X509_V_FLAG_CRL_CHECK);
	/* The development CA has no intermediate: only the leaf's issuer has
	 * a CRL, and CRL_CHECK_ALL would refuse every certificate. */
	assert_false(X509_VERIFY_PARAM_get_flags(param) &
	    X509_V_FLAG_CRL_CHECK_ALL);
	for (v = 0; v < 2; v++) {
		int maxv = v == 0 ? 0 : TLS1_2_VERSION;

		/* The revoked certificate ends the handshake... */
		cctx = client_ctx(maxv, "revoked-client.pem",
		    "revoked-client.key");
		assert_false(handshake(sctx, cctx, &s));
		assert_int_equal(SSL_get_verify_result(s),
		    X509_V_ERR_CERT_REVOKED);
		assert_null(tls_peer_email(s));
		SSL_free(s);
		SSL_CTX_free(cctx);
		/* ...the others of the CA still log in... */
		cctx = client_ctx(maxv, "client.pem", "client.key");
		assert_true(handshake(sctx, cctx, &s));
		assert_non_null(email = tls_peer_email(s));
		assert_string_equal(email, "admin@example.org");
		free(email);
		SSL_free(s);
		SSL_CTX_free(cctx);
		/* ...and a client without a certificate is let in. */
		cctx = client_ctx(maxv, NULL, NULL);
		assert_true(handshake(sctx, cctx, &s));
		assert_null(tls_peer_email(s));
		SSL_free(s);
		SSL_CTX_free(cctx);
	}
	SSL_CTX_free(sctx);
	config_free(cfg);

	/* A CRL that is not there, or not a CRL. */
	snprintf(line, sizeof line, "client_crl = %s/no-such-crl.pem", certs);
	FAILS(make_config("server.pem", "server.key", "ca.pem", line),
	    "client CRL", "no-such-crl.pem");
	snprintf(line, sizeof line, "client_crl = %s",
	    cert_path("ca.pem", crl, sizeof crl));
	FAILS(make_config("server.pem", "server.key", "ca.pem", line),
	    "client CRL", "ca.pem");

	/* A CRL without a client CA has nothing to check. */
	{
		FILE *f = fopen(conf, "w");

		assert_non_null(f);
		fprintf(f, "[tls]\ncert = /c\nkey = /k\nclient_crl = /crl\n"
		    "[database]\nconninfo = dbname=unused\n");
		assert_int_equal(fclose(f), 0);
		assert_null(config_load(conf, err, sizeof err));
		assert_non_null(strstr(err, "tls.client_crl needs tls.client_ca"));
	}
}

/* With an intermediate CA in tls.client_ca, the CRLs of the whole chain
 * are checked. */
static void
test_crl_intermediate(void **state)
{
	char cmd[6 * PATH_MAX], crl[PATH_MAX + 64], line[PATH_MAX + 96];
	X509_VERIFY_PARAM *param;
	struct config *cfg;
	SSL_CTX *sctx;

	snprintf(cmd, sizeof cmd, "cd '%s' && "
	    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -keyout inter.key -subj '/CN=test intermediate' "
	    "-out inter.csr 2>/dev/null && "
	    "printf 'basicConstraints=critical,CA:TRUE\\n"
	    "keyUsage=critical,keyCertSign,cRLSign\\n' > inter.ext && "
	    "openssl x509 -req -in inter.csr -CA ca.pem -CAkey ca.key "
	    "-set_serial 77 -days 2 -extfile inter.ext -out inter.pem "
	    "2>/dev/null && cat ca.pem inter.pem > chain.pem", certs);
	assert_int_equal(system(cmd), 0);
	snprintf(line, sizeof line, "client_crl = %s",
	    cert_path("crl.pem", crl, sizeof crl));
	cfg = make_config("server.pem", "server.key", "chain.pem", line);
	sctx = server_ctx(cfg);
	param = X509_STORE_get0_param(SSL_CTX_get_cert_store(sctx));
	assert_true(X509_VERIFY_PARAM_get_flags(param) &
	    X509_V_FLAG_CRL_CHECK_ALL);
	SSL_CTX_free(sctx);
	config_free(cfg);
}

/* ---- what the context trusts: tls_client_trust_fingerprint ------------- */

static SSL_CTX *
ctx_trusting(const char *ca, const char *crl)
{
	char line[PATH_MAX + 96], p[PATH_MAX + 64];
	struct config *cfg;
	SSL_CTX *ctx;

	line[0] = '\0';
	if (crl != NULL)
		snprintf(line, sizeof line, "client_crl = %s",
		    cert_path(crl, p, sizeof p));
	cfg = make_config("server.pem", "server.key", ca, line);
	ctx = server_ctx(cfg);
	config_free(cfg);
	return ctx;
}

static void
test_trust_fingerprint(void **state)
{
	char cmd[4 * PATH_MAX];
	unsigned char a[32], b[32];
	SSL_CTX *none = ctx_trusting(NULL, NULL);
	SSL_CTX *ca1 = ctx_trusting("ca.pem", NULL);
	SSL_CTX *ca2 = ctx_trusting("ca.pem", NULL);
	SSL_CTX *other = ctx_trusting("other-ca.pem", NULL);
	SSL_CTX *crl = ctx_trusting("ca.pem", "crl.pem");
	SSL_CTX *ab, *ba;

	assert_false(tls_client_trust_fingerprint(none, a));
	assert_true(tls_client_trust_fingerprint(ca1, a));
	assert_true(tls_client_trust_fingerprint(ca2, b));
	assert_memory_equal(a, b, sizeof a);

	/* A reload with the same CA keeps the sessions opened by
	 * certificate; any change of what is trusted ends them. */
	assert_false(tls_client_trust_changed(none, none));
	assert_false(tls_client_trust_changed(ca1, ca2));
	assert_true(tls_client_trust_changed(ca1, other));
	assert_true(tls_client_trust_changed(none, ca1));
	assert_true(tls_client_trust_changed(ca1, none));
	assert_true(tls_client_trust_changed(ca1, crl));
	assert_true(tls_client_trust_changed(crl, ca1));

	/* A bundle is the same bundle in any order. */
	snprintf(cmd, sizeof cmd, "cd '%s' && cat ca.pem other-ca.pem > ab.pem "
	    "&& cat other-ca.pem ca.pem > ba.pem", certs);
	assert_int_equal(system(cmd), 0);
	ab = ctx_trusting("ab.pem", NULL);
	ba = ctx_trusting("ba.pem", NULL);
	assert_false(tls_client_trust_changed(ab, ba));
	assert_true(tls_client_trust_changed(ab, ca1));

	SSL_CTX_free(ab);
	SSL_CTX_free(ba);
	SSL_CTX_free(none);
	SSL_CTX_free(ca1);
	SSL_CTX_free(ca2);
	SSL_CTX_free(other);
	SSL_CTX_free(crl);
}

/* ---- session tickets ---------------------------------------------------- */

/* A handshake offering sess (may be NULL), with a TLS 1.2 or 1.3 client.
 * Returns the client's session afterwards (with the ticket it was given),
 * and whether the server resumed. */
static SSL_SESSION *
resume(SSL_CTX *sctx, int version, SSL_SESSION *sess, bool *reused)
{
	SSL_CTX *cctx = client_ctx(version, NULL, NULL);
	SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
	BIO *sb = NULL, *cb = NULL;
	SSL_SESSION *out;
	char byte;
	int i, rc;
	bool sdone = false, cdone = false;

	assert_int_equal(SSL_CTX_set_min_proto_version(cctx, version), 1);
	assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	assert_int_equal(SSL_set1_host(c, "localhost"), 1);
	if (sess != NULL)
		assert_int_equal(SSL_set_session(c, sess), 1);
	for (i = 0; i < 50 && !(sdone && cdone); i++) {
		if (!cdone && (rc = SSL_do_handshake(c)) == 1)
			cdone = true;
		else if (!cdone)
			assert_int_equal(SSL_get_error(c, rc), SSL_ERROR_WANT_READ);
		if (!sdone && (rc = SSL_do_handshake(s)) == 1)
			sdone = true;
		else if (!sdone)
			assert_int_equal(SSL_get_error(s, rc), SSL_ERROR_WANT_READ);
	}
	assert_true(sdone && cdone);
	/* TLS 1.3 tickets come after the handshake: let the client read. */
	rc = SSL_read(c, &byte, 1);
	assert_int_equal(SSL_get_error(c, rc), SSL_ERROR_WANT_READ);
	ERR_clear_error();
	*reused = SSL_session_reused(s) == 1;
	assert_int_equal(SSL_version(s), version);
	assert_non_null(out = SSL_get1_session(c));
	/* As after a clean close: OpenSSL makes the session of a connection
	 * freed in mid-flight unresumable. */
	SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	return out;
}

/* Both versions resume with tickets; a retired key still resumes (and the
 * client gets a ticket of the current key), a key retired twice no longer
 * does, and a new context (a reload) resumes nothing of the old one. */
static void
test_session_tickets(void **state)
{
	static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
	struct config *cfg = make_config("server.pem", "server.key", NULL,
	    NULL);
	SSL_CTX *sctx, *sctx2;
	SSL_SESSION *first, *again, *renewed, *late;
	const unsigned char *t1, *t2;
	size_t i, n1, n2;
	bool reused;

	for (i = 0; i < nitems(versions); i++) {
		sctx = server_ctx(cfg);
		first = resume(sctx, versions[i], NULL, &reused);
		assert_false(reused);
		assert_true(SSL_SESSION_has_ticket(first));
		assert_int_equal(SSL_SESSION_get_ticket_lifetime_hint(first),
		    TLS_SESSION_LIFETIME);
		again = resume(sctx, versions[i], first, &reused);
		assert_true(reused);
		SSL_SESSION_free(again);

		/* One rotation: the old ticket still works, and is replaced
		 * by one of the new key (its name, the first 16 bytes,
		 * differs). */
		tls_rotate_ticket_keys(sctx);
		renewed = resume(sctx, versions[i], first, &reused);
		assert_true(reused);
		SSL_SESSION_get0_ticket(first, &t1, &n1);
		SSL_SESSION_get0_ticket(renewed, &t2, &n2);
		assert_true(n1 >= 16 && n2 >= 16);
		assert_memory_not_equal(t1, t2, 16);
		/* Two: the first key is gone, a full handshake follows; the
		 * renewed ticket is of the key still kept. */
		tls_rotate_ticket_keys(sctx);
		late = resume(sctx, versions[i], first, &reused);
		assert_false(reused);
		SSL_SESSION_free(late);
		late = resume(sctx, versions[i], renewed, &reused);
		assert_true(reused);
		SSL_SESSION_free(late);

		/* A reload builds a new context, with keys of its own. */
		sctx2 = server_ctx(cfg);
		late = resume(sctx2, versions[i], renewed, &reused);
		assert_false(reused);
		SSL_SESSION_free(late);
		SSL_CTX_free(sctx2);

		SSL_SESSION_free(renewed);
		SSL_SESSION_free(first);
		SSL_CTX_free(sctx);
	}
	config_free(cfg);
}

/* ---- the e-mail of a client certificate --------------------------------- */

static EVP_PKEY *
load_key(const char *name)
{
	char p[PATH_MAX + 64];
	EVP_PKEY *k;
	FILE *f;

	assert_non_null(f = fopen(cert_path(name, p, sizeof p), "r"));
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(k);
	return k;
}

static X509 *
load_cert(const char *name)
{
	char p[PATH_MAX + 64];
	X509 *x;
	FILE *f;

	assert_non_null(f = fopen(cert_path(name, p, sizeof p), "r"));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

/* A client certificate signed by the development CA, for the key of
 * client.key, with this subject (CN and emailAddress may be NULL) and this
 * subjectAltName (an X509V3 config string, or NULL for none); raw_san, if
 * given, is an rfc822Name of that many bytes, NULs and all. */
static X509 *
make_cert(const char *cn, const char *subj_email, const char *san,
    const char *raw_san, size_t raw_len)
{
	EVP_PKEY *cakey = load_key("ca.key"), *key = load_key("client.key");
	X509 *ca = load_cert("ca.pem"), *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x),
	    (long)(random() & 0x7fffffff)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"tests", -1, -1, 0), 1);
	if (cn != NULL)
		assert_int_equal(X509_NAME_add_entry_by_NID(name,
		    NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
		    -1, -1, 0), 1);
	if (subj_email != NULL)
		assert_int_equal(X509_NAME_add_entry_by_NID(name,
		    NID_pkcs9_emailAddress, MBSTRING_ASC,
		    (const unsigned char *)subj_email, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(ca)), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
	if (san != NULL) {
		assert_non_null(ext = X509V3_EXT_conf_nid(NULL, &v3,
		    NID_subject_alt_name, san));
		assert_int_equal(X509_add_ext(x, ext, -1), 1);
		X509_EXTENSION_free(ext);
	}
	if (raw_san != NULL) {
		GENERAL_NAMES *gens = GENERAL_NAMES_new();
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();

		assert_int_equal(ASN1_STRING_set(s, raw_san, (int)raw_len), 1);
		GENERAL_NAME_set0_value(gn, GEN_EMAIL, s);
		assert_true(sk_GENERAL_NAME_push(gens, gn) > 0);
		assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name,
		    gens, 0, 0), 1);
		GENERAL_NAMES_free(gens);
	}
	assert_true(X509_sign(x, cakey, EVP_sha256()) > 0);
	X509_NAME_free(name);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	return x;
}

/* The e-mail the server reads from a client presenting cert (NULL: none);
 * malloc'd. */
static char *
email_of(SSL_CTX *sctx, X509 *cert)
{
	SSL_CTX *cctx = client_ctx(0, NULL, NULL);
	EVP_PKEY *key = load_key("client.key");
	char *email;
	SSL *s;

	assert_int_equal(SSL_CTX_use_certificate(cctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(cctx, key), 1);
	assert_true(handshake(sctx, cctx, &s));
	email = tls_peer_email(s);
	SSL_free(s);
	SSL_CTX_free(cctx);
	EVP_PKEY_free(key);
	X509_free(cert);
	return email;
}

static void
expect_email(int line, SSL_CTX *sctx, X509 *cert, const char *want)
{
	char *got = email_of(sctx, cert);

	if (want == NULL && got != NULL)
		fail_msg("line %d: expected no e-mail, got \"%s\"", line, got);
	if (want != NULL && (got == NULL || strcmp(got, want) != 0))
		fail_msg("line %d: expected \"%s\", got \"%s\"", line, want,
		    got ? got : "(none)");
	free(got);
}
#define EMAIL(cert, want) expect_email(__LINE__, sctx, cert, want)

static void
test_peer_email(void **state)
{
	struct config *cfg = make_config("server.pem", "server.key", "ca.pem",
	    NULL);
	SSL_CTX *sctx = server_ctx(cfg);
	static const char nul[] = "admin@example.org\0.evil.example";

	/* The subjectAltName e-mail, whatever the subject says. */
	EMAIL(make_cert("cn@example.org", "subj@example.org",
	    "email:san@example.org", NULL, 0), "san@example.org");
	/* The first e-mail among other names. */
	EMAIL(make_cert(NULL, NULL, "DNS:host.example.org,"
	    "email:first@example.org,email:second@example.org", NULL, 0),
	    "first@example.org");
	/* A subjectAltName without an e-mail: no name at all, though the
	 * subject holds one. */
	EMAIL(make_cert("cn@example.org", "subj@example.org",
	    "DNS:host.example.org,URI:https://example.org/", NULL, 0), NULL);
	/* No subjectAltName: the subject's emailAddress, else its CN. */
	EMAIL(make_cert("cn@example.org", "subj@example.org", NULL, NULL, 0),
	    "subj@example.org");
	EMAIL(make_cert("cn@example.org", NULL, NULL, NULL, 0),
	    "cn@example.org");
	EMAIL(make_cert("Jeanne Martin", NULL, NULL, NULL, 0), NULL);
	EMAIL(make_cert(NULL, NULL, NULL, NULL, 0), NULL);
	/* An embedded NUL is not read as the end of the address. */
	EMAIL(make_cert(NULL, NULL, NULL, nul, sizeof nul - 1), NULL);
	EMAIL(make_cert(NULL, NULL, NULL, "admin@example.org\n", 18), NULL);

	SSL_CTX_free(sctx);
	config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_config),
		cmocka_unit_test(test_client_ca),
		cmocka_unit_test(test_min_version),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_missing_files),
		cmocka_unit_test(test_wrong_files),
		cmocka_unit_test(test_bad_ciphers),
		cmocka_unit_test(test_handshake_versions),
		cmocka_unit_test(test_client_certificates),
		cmocka_unit_test(test_crl),
		cmocka_unit_test(test_crl_intermediate),
		cmocka_unit_test(test_trust_fingerprint),
		cmocka_unit_test(test_session_tickets),
		cmocka_unit_test(test_peer_email),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
