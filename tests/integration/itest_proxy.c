/*
 * The PROXY protocol (docs/operations.md, "Behind a load balancer: the
 * PROXY protocol") against a real daemon, on both listeners. The
 * balancers are 127.0.0.5 and 127.0.0.6/31: Linux lets a client bind
 * any 127.x.y.z source, so one machine plays balancer, direct client and
 * stranger. What the header claims shows in a per-address control, the
 * connection cap (max_connections_per_address = 2), which both
 * listeners share.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

#define BALANCER "127.0.0.5"
#define LOCAL_BALANCER "127.0.0.7"      /* in 127.0.0.6/31 */
#define STRANGER "127.0.0.9"
#define HANDSHAKE_S 2          /* the line's wait for a header */
#define HTTP_TIMEOUT_S 4        /* the desk's */

static struct h_daemon *d;
static int http_port;
static SSL_CTX *ctx;

/* One raw client: a socket from a chosen source, then TLS. */
struct pc {
	int fd;
	SSL *ssl;
};

static void
send_all(int fd, const void *buf, size_t len)
{
	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		h_fail("send of %zu bytes: %s", len, strerror(errno));
}

/* A header's length when it is a string. */
#define STR ((size_t)-1)

/* Connects from src to port, sends hdr (len bytes, may be 0, or STR),
 * then does the TLS handshake: the client, or NULL if the daemon would
 * not. */
static struct pc *
pc_open(const char *src, int port, const void *hdr, size_t len)
{
	struct pc *c = calloc(1, sizeof *c);

	if (len == STR)
		len = strlen(hdr);

	c->fd = h_tcp_from(src, port);
	if (len > 0)
		send_all(c->fd, hdr, len);
	c->ssl = SSL_new(ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	SSL_set1_host(c->ssl, "localhost");
	if (SSL_connect(c->ssl) != 1) {
		ERR_clear_error();
		SSL_free(c->ssl);
		close(c->fd);
		free(c);
		return NULL;
	}
	return c;
}

static void
pc_close(struct pc *c)
{
	if (c == NULL)
		return;
	SSL_shutdown(c->ssl);
	SSL_free(c->ssl);
	close(c->fd);
	free(c);
}

/* Reads until needle shows up; false on EOF, error or timeout. */
static bool
pc_expect(struct pc *c, const char *req, const char *needle)
{
	char buf[4096];
	size_t have = 0;
	int n;

	if (SSL_write(c->ssl, req, (int)strlen(req)) <= 0) {
		ERR_clear_error();
		return false;
	}
	while (have < sizeof buf - 1) {
		n = SSL_read(c->ssl, buf + have, (int)(sizeof buf - 1 - have));
		if (n <= 0) {
			ERR_clear_error();
			return false;
		}
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, needle) != NULL)
			return true;
	}
	return false;
}

/* Served: system.ping on the line listener, /healthz on the desk. */
static bool
pc_served(struct pc *c, int port)
{
	if (port == d->port)
		return pc_expect(c, "{\"jsonrpc\":\"2.0\",\"id\":1,"
		    "\"method\":\"system.ping\"}\n", "\"pong\":true");
	return pc_expect(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
	    "HTTP/1.1 200");
}

/* Opens through the balancer with this header; fails the test unless
 * it is served. */
static struct pc *
pc_ok(const char *src, int port, const void *hdr, size_t len)
{
	struct pc *c = pc_open(src, port, hdr, len);

	if (len == STR)
		len = strlen(hdr);
	if (c == NULL || !pc_served(c, port))
		h_fail("from %s to %s with a %zu-byte header: not served", src,
		    port == d->port ? "the line listener" : "the desk", len);
	return c;
}

/* The same, but the daemon must refuse it (close before TLS is up or
 * before it answers). */
static void
pc_refused(const char *src, int port, const void *hdr, size_t len)
{
	struct pc *c = pc_open(src, port, hdr, len);

	if (len == STR)
		len = strlen(hdr);
	if (c != NULL && pc_served(c, port))
		h_fail("from %s to %s with a %zu-byte header: served, but "
		    "should have been refused", src,
		    port == d->port ? "the line listener" : "the desk", len);
	pc_close(c);
}

/* Waits for the daemon to close a raw socket: true on EOF or reset,
 * false if it stays open (SO_RCVTIMEO). */
static bool
closed_by_daemon(int fd)
{
	char buf[256];
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sizeof buf, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false;
	}
}

static char v1buf[128];

static const char *
v1(const char *client, int port)
{
	snprintf(v1buf, sizeof v1buf, "PROXY TCP4 %s 127.0.0.1 %d 7443\r\n",
	    client, port);
	return v1buf;
}

/* A version 2 header: PROXY TCP4 client:port, or LOCAL if client is
 * NULL; with one TLV. Returns its length. */
static size_t
v2(unsigned char *out, const char *client, int port)
{
	static const unsigned char sig[12] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
		0x54, 0x0a,
	};
	unsigned char *b = out + 16;

	memcpy(out, sig, 12);
	if (client == NULL) {
		out[12] = 0x20;
		out[13] = 0x00;
		out[14] = 0;
		out[15] = 0;
		return 16;
	}
	out[12] = 0x21;
	out[13] = 0x11;
	out[14] = 0;
	out[15] = 12 + 7;
	inet_pton(AF_INET, client, b);
	inet_pton(AF_INET, "127.0.0.1", b + 4);
	b[8] = (unsigned char)(port >> 8);
	b[9] = (unsigned char)port;
	b[10] = 0x1d;
	b[11] = 0x13;
	b[12] = 0x04;           /* a NOOP TLV of 4 bytes, skipped */
	b[13] = 0;
	b[14] = 4;
	memcpy(b + 15, "abcd", 4);
	return 16 + 12 + 7;
}

static size_t
v2_tcp6(unsigned char *out, const char *client)
{
	unsigned char *b = out + 16;

	v2(out, "0.0.0.0", 0);
	out[13] = 0x21;
	out[15] = 36;
	memset(b, 0, 36);
	inet_pton(AF_INET6, client, b);
	inet_pton(AF_INET6, "::1", b + 16);
	b[32] = 0x30;
	b[33] = 0x39;           /* 12345 */
	return 16 + 36;
}

static void
assert_log(const char *needle)
{
	if (!h_log_wait(d, needle, 5000 * h_timeout_scale()))
		h_fail("the daemon's log lacks \"%s\"", needle);
}

/* ---- the tests ------------------------------------------------------------ */

/* A v1 header's client is the one the cap counts: two connections
 * claiming 203.0.113.1 are served, a third is refused, while the
 * balancer's own address counts for nothing (a fourth, for another
 * client, is served). */
static void
test_line_v1(void **state)
{
	struct pc *a, *b, *other;
	(void)state;
	a = pc_ok(BALANCER, d->port, v1("203.0.113.1", 40001), STR);
	b = pc_ok(BALANCER, d->port, v1("203.0.113.1", 40002), STR);
	pc_refused(BALANCER, d->port, v1("203.0.113.1", 40003),
	    STR);
	assert_log("refusing connection from 203.0.113.1: too many "
	    "connections from this address");
	other = pc_ok(BALANCER, d->port, v1("203.0.113.2", 40004), STR);
	/* The connection's tag in the log is the client's. */
	assert_log("203.0.113.1:40001 accepted");
	pc_close(a);
	pc_close(b);
	pc_close(other);
}

/* The same with version 2, over IPv6 addresses. */
static void
test_line_v2(void **state)
{
	unsigned char h[64];
	struct pc *a, *b;
	size_t n = v2_tcp6(h, "2001:db8::1");

	(void)state;
	a = pc_ok(BALANCER, d->port, h, n);
	b = pc_ok(BALANCER, d->port, h, n);
	pc_refused(BALANCER, d->port, h, n);
	assert_log("refusing connection from 2001:db8::1: too many");
	assert_log("2001:db8::1:12345 accepted");
	pc_close(a);
	pc_close(b);
}

/* The desk: v1 and v2 headers give the client, as on the line. */
static void
test_http_v1_v2(void **state)
{
	unsigned char h[64];
	struct pc *a, *b, *other;
	size_t n = v2(h, "203.0.113.3", 40011);

	(void)state;
	a = pc_ok(BALANCER, http_port, v1("203.0.113.3", 40010),
	    STR);
	b = pc_ok(BALANCER, http_port, h, n);
	pc_refused(BALANCER, http_port, v1("203.0.113.3", 40012),
	    STR);
	assert_log("http: refusing connection from 203.0.113.3: too many "
	    "connections");
	other = pc_ok(BALANCER, http_port, v1("203.0.113.4", 40013),
	    STR);
	pc_close(a);
	pc_close(b);
	pc_close(other);
}

/* One client through both listeners: the cap counts them together. */
static void
test_shared_cap(void **state)
{
	unsigned char h[64];
	struct pc *a, *b;
	size_t n = v2(h, "203.0.113.6", 40021);

	(void)state;
	a = pc_ok(BALANCER, d->port, v1("203.0.113.6", 40020),
	    STR);
	b = pc_ok(BALANCER, http_port, h, n);
	pc_refused(BALANCER, d->port, h, n);
	pc_refused(BALANCER, http_port, v1("203.0.113.6", 40022),
	    STR);
	pc_close(a);
	pc_close(b);
}

/* From an address that is not a balancer, a header is never read: the
 * connection is served as itself (its own address, counted as such),
 * and a header it sends is only garbage before TLS. */
static void
test_stranger_not_honoured(void **state)
{
	unsigned char h[64];
	struct pc *a, *b;
	size_t n = v2(h, "203.0.113.7", 40031);

	(void)state;
	pc_refused(STRANGER, d->port, v1("203.0.113.7", 40030),
	    STR);
	pc_refused(STRANGER, http_port, h, n);
	a = pc_ok(STRANGER, d->port, NULL, 0);
	b = pc_ok(STRANGER, http_port, NULL, 0);
	/* Its own address is at the cap now. */
	pc_refused(STRANGER, d->port, NULL, 0);
	assert_log("refusing connection from " STRANGER ": too many");
	if (h_log_contains(d, "203.0.113.7"))
		h_fail("a stranger's PROXY header was read");
	pc_close(a);
	pc_close(b);
}

/* A balancer must send a header: a bare TLS connection from it is
 * refused on both listeners. */
static void
test_balancer_without_header(void **state)
{
	(void)state;
	pc_refused("127.0.0.6", d->port, NULL, 0);
	pc_refused("127.0.0.6", http_port, NULL, 0);
	assert_log("line 127.0.0.6:");
	assert_log("closed: not a PROXY header");
	assert_log("http 127.0.0.6:");
}

/* Malformed and oversized headers close their own connection, and only
 * it: a direct client is served meanwhile. */
static void
test_bad_headers(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 203.0.113.8 127.0.0.1 1\r\n",
		"PROXY TCP4 203.0.113.8 127.0.0.1 1 2\n",
		"PROXY TCP4 203.0.113.888 127.0.0.1 1 2\r\n",
		"PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
	};
	unsigned char big[64];
	struct st_client *direct = h_connect(d);
	size_t i;
	int port, fd;

	(void)state;
	for (port = d->port; ; port = http_port) {
		for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			fd = h_tcp_from(BALANCER, port);
			send_all(fd, bad[i], strlen(bad[i]));
			if (!closed_by_daemon(fd))
				h_fail("bad header %zu left open", i);
			close(fd);
		}
		/* A v2 length of 65535: refused before its body comes. */
		v2(big, "203.0.113.8", 1);
		big[14] = 0xff;
		big[15] = 0xff;
		fd = h_tcp_from(BALANCER, port);
		send_all(fd, big, 16);
		if (!closed_by_daemon(fd))
			h_fail("an oversized v2 header left its socket open");
		close(fd);
		json_decref(h_call_ok(direct, "system.ping", NULL));
		if (port == http_port)
			break;
	}
	assert_log("PROXY v1: not six fields");
	assert_log("PROXY v1: LF without CR");
	assert_log("PROXY v1: bad address");
	assert_log("PROXY v1: longer than 107 bytes");
	assert_log("PROXY v2: longer than the cap");
	if (h_log_contains(d, "203.0.113.8"))
		h_fail("a bad header's client was served");
	st_close(direct);
}

/* A header that stops half way holds only its own connection, until
 * the handshake timeout closes it; clients direct and proxied are
 * served meanwhile. */
static void
test_slow_header(void **state)
{
	struct st_client *direct;
	struct pc *other;
	int line_fd, http_fd;

	(void)state;
	line_fd = h_tcp_from(BALANCER, d->port);
	send_all(line_fd, "PROXY TCP4 203.0.113.9 ", 23);
	http_fd = h_tcp_from(BALANCER, http_port);
	send_all(http_fd, "PROXY TCP4 203.0.113.9 ", 23);
	direct = h_connect(d);
	json_decref(h_call_ok(direct, "system.ping", NULL));
	other = pc_ok(BALANCER, d->port, v1("203.0.113.10", 40040),
	    STR);
	pc_close(other);
	other = pc_ok(BALANCER, http_port, v1("203.0.113.10", 40041),
	    STR);
	pc_close(other);
	if (!closed_by_daemon(line_fd))
		h_fail("a half header stayed open on the line listener");
	if (!closed_by_daemon(http_fd))
		h_fail("a half header stayed open on the desk");
	assert_log("closed: no complete PROXY header in time");
	json_decref(h_call_ok(direct, "system.ping", NULL));
	close(line_fd);
	close(http_fd);
	st_close(direct);
}

/* LOCAL (v2) and UNKNOWN (v1): the balancer's own connection, served
 * and counted as the balancer's address. */
static void
test_local(void **state)
{
	unsigned char h[64];
	struct pc *a, *b;
	size_t n = v2(h, NULL, 0);
	static const char unknown[] = "PROXY UNKNOWN\r\n";

	(void)state;
	a = pc_ok(LOCAL_BALANCER, d->port, h, n);
	b = pc_ok(LOCAL_BALANCER, http_port, unknown, strlen(unknown));
	pc_refused(LOCAL_BALANCER, d->port, h, n);
	assert_log("refusing connection from " LOCAL_BALANCER ": too many");
	pc_close(a);
	pc_close(b);
}

/* Login throttling counts failures per e-mail and client address
 * (docs/protocol.md, rate_limited): behind the balancer, the address is
 * the one the header names. Five failures claimed by 203.0.113.21 lock
 * that client out; 203.0.113.22, through the same balancer, may still
 * try. */
static void
test_login_throttled_by_client(void **state)
{
	static const char login[] = "{\"jsonrpc\":\"2.0\",\"id\":2,"
	    "\"method\":\"auth.login\",\"params\":{\"email\":"
	    "\"guess@example.org\",\"password\":\"not-the-password\"}}\n";
	struct pc *a, *b;
	int i;

	(void)state;
	a = pc_ok(BALANCER, d->port, v1("203.0.113.21", 40070), STR);
	for (i = 0; i < 5; i++)
		if (!pc_expect(a, login, "\"unauthenticated\""))
			h_fail("failed login %d: no unauthenticated answer", i + 1);
	assert_true(pc_expect(a, login, "\"rate_limited\""));
	b = pc_ok(BALANCER, d->port, v1("203.0.113.22", 40071), STR);
	assert_true(pc_expect(b, login, "\"unauthenticated\""));
	pc_close(a);
	pc_close(b);
}

/* The keys take effect on SIGHUP, for new connections, no restart. */
static void
test_reload(void **state)
{
	char ini[1024];
	struct pc *a, *b, *c;
	int n = h_log_count(d, "configuration reloaded");
	long long until = h_now_ms() + 10000LL * h_timeout_scale();

	(void)state;
	snprintf(ini, sizeof ini, "[server]\nproxy_protocol = off\n"
	    "proxy_from = " BALANCER "\n"
	    "max_connections_per_address = 2\nhandshake_timeout = %d\n"
	    "[http]\nlisten = 127.0.0.1:%d\nproxy_protocol = on\n"
	    "timeout = %d\n", HANDSHAKE_S * h_timeout_scale(), http_port,
	    HTTP_TIMEOUT_S * h_timeout_scale());
	h_daemon_write_conf(d, ini);
	if (h_daemon_signal(d, SIGHUP) != 0)
		h_fail("cannot signal the daemon");
	while (h_log_count(d, "configuration reloaded") == n &&
	    h_now_ms() < until)
		h_sleep_ms(50);
	if (h_log_count(d, "configuration reloaded") == n)
		h_fail("no reload");
	if (h_log_contains(d, "need a restart"))
		h_fail("a PROXY key asked for a restart");
	/* The line listener reads no header any more. */
	a = pc_ok(BALANCER, d->port, NULL, 0);
	pc_refused(BALANCER, d->port, v1("203.0.113.12", 40060), STR);
	/* 127.0.0.7 is no balancer any more: served as itself. */
	b = pc_ok(LOCAL_BALANCER, http_port, NULL, 0);
	/* The desk still wants a header from 127.0.0.5. */
	c = pc_ok(BALANCER, http_port, v1("203.0.113.12", 40061), STR);
	pc_refused(BALANCER, http_port, NULL, 0);
	pc_close(a);
	pc_close(b);
	pc_close(c);
}

static int
setup(void **state)
{
	char ini[1024];

	signal(SIGPIPE, SIG_IGN);
	ctx = SSL_CTX_new(TLS_client_method());
	snprintf(ini, sizeof ini, "%s/ca.pem", h_certs_dir());
	if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ini, NULL) != 1)
		h_fail("cannot make the clients' TLS context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	http_port = h_free_port();
	snprintf(ini, sizeof ini, "[server]\nproxy_protocol = on\n"
	    "proxy_from = " BALANCER " 127.0.0.6/31\n"
	    "max_connections_per_address = 2\nhandshake_timeout = %d\n"
	    "[http]\nlisten = 127.0.0.1:%d\nproxy_protocol = on\n"
	    "timeout = %d\n", HANDSHAKE_S * h_timeout_scale(), http_port,
	    HTTP_TIMEOUT_S * h_timeout_scale());
	d = h_daemon_start("proxy", ini);
	return 0;
}

static int
teardown(void **state)
{
	assert_int_equal(h_daemon_stop(d), 0);
	SSL_CTX_free(ctx);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_v1),
		cmocka_unit_test(test_line_v2),
		cmocka_unit_test(test_http_v1_v2),
		cmocka_unit_test(test_shared_cap),
		cmocka_unit_test(test_stranger_not_honoured),
		cmocka_unit_test(test_balancer_without_header),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_slow_header),
		cmocka_unit_test(test_local),
		cmocka_unit_test(test_login_throttled_by_client),
		cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
