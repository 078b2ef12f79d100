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
#include <openssl/ssl.h>
#include <openssl/x509.h>

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
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
