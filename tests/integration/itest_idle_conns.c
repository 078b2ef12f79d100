/*
 * Many idle TLS connections (docs/BENCHMARKS.md, "Idle connections";
 * bench/idle-conns holds ten thousand): the daemon, started with a soft
 * open files limit below what they need, raises it to the hard limit
 * (docs/operations.md), accepts them all from one address under
 * server.max_connections_per_address, keeps every one open and served,
 * still answers a new client, and holds them in bounded memory: in the
 * plain build, at most IDLE_KB_MAX KiB of resident memory each (about 17
 * today, mostly OpenSSL's; 26 without SSL_MODE_RELEASE_BUFFERS, when half
 * of them have read a request). Under the sanitizers the RSS measures
 * their shadow memory and quarantine, not the daemon: it is not bounded.
 */
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define IDLE 400
#define DAEMON_SOFT_NOFILE 256  /* fewer than IDLE: it must raise it */
#define IDLE_KB_MAX 20

#define PING_LINE "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"system.ping\"}\n"

struct idle {
	int fd;
	SSL *ssl;
};

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char ca[1024];

	snprintf(ca, sizeof ca, "%s/ca.pem", h_certs_dir());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

/* A blocking TLS connection to 127.0.0.1, handshake done. */
static void
idle_open(struct idle *c, SSL_CTX *ctx, int port, int i)
{
	struct sockaddr_in dst = {0};
	struct timeval tv = {30, 0};

	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		h_fail("connection %d: socket: %s", i, strerror(errno));
	/* A connection the daemon never serves fails the test, not hangs. */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(c->fd, (struct sockaddr *)&dst, sizeof dst) != 0)
		h_fail("connection %d: connect: %s", i, strerror(errno));
	c->ssl = SSL_new(ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "localhost");
	if (SSL_connect(c->ssl) != 1)
		h_fail("connection %d: TLS handshake failed", i);
}

/* One system.ping on an open connection; fails unless answered. */
static void
idle_ping(struct idle *c, int i)
{
	char buf[512];
	size_t len = 0;
	int n;

	if (SSL_write(c->ssl, PING_LINE, (int)strlen(PING_LINE)) <= 0)
		h_fail("connection %d: cannot send (closed?)", i);
	while (len == 0 || buf[len - 1] != '\n') {
		if (len == sizeof buf - 1 ||
		    (n = SSL_read(c->ssl, buf + len, (int)(sizeof buf - 1 -
		    len))) <= 0)
			h_fail("connection %d: no answer (closed?)", i);
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (strstr(buf, "\"id\":7") == NULL || strstr(buf, "\"result\"") ==
	    NULL)
		h_fail("connection %d: unexpected answer %s", i, buf);
}

/* The daemon inherits our limits: starts it with a soft limit of `soft`. */
static struct h_daemon *
start_with_soft_nofile(const char *name, const char *ini, rlim_t soft)
{
	struct rlimit mine, low;
	struct h_daemon *d;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &mine), 0);
	if (mine.rlim_max < IDLE + 128)
		h_fail("the hard open files limit (%llu) is under %d: raise it "
		    "(ulimit -Hn)", (unsigned long long)mine.rlim_max,
		    IDLE + 128);
	low = mine;
	low.rlim_cur = soft;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	d = h_daemon_start(name, ini);
	/* This process holds IDLE connections too. */
	mine.rlim_cur = mine.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &mine), 0);
	return d;
}

static void
test_many_idle_connections(void **state)
{
	struct h_daemon *d = start_with_soft_nofile("idle_conns",
	    "[server]\nmax_connections = 1000\n"
	    "max_connections_per_address = 1000\n"
	    "auth_timeout = 300\nidle_timeout = 300\nhandshake_timeout = 60\n",
	    DAEMON_SOFT_NOFILE);
	struct idle *idle = calloc(IDLE, sizeof *idle);
	SSL_CTX *ctx = client_ctx();
	struct st_client *fresh;
	long rss0, rss1;
	int i;

	(void)state;
	assert_non_null(idle);
	assert_true(h_log_contains(d, "open files limit raised from 256"));
	/* One connection first: OpenSSL's one-time set-up is not theirs. */
	fresh = h_connect(d);
	json_decref(h_call_ok(fresh, "system.ping", NULL));
	st_close(fresh);
	rss0 = wire_rss_kb(d->pid);
	for (i = 0; i < IDLE; i++) {
		idle_open(&idle[i], ctx, d->port, i);
		/* Half of them used once, then idle. */
		if (i % 2 == 0)
			idle_ping(&idle[i], i);
	}
	/* Everything the daemon sent after the handshakes (TLS 1.3 session
	 * tickets) is read by the pings below; a new client is served. */
	fresh = h_connect(d);
	json_decref(h_call_ok(fresh, "system.ping", NULL));
	st_close(fresh);
	rss1 = wire_rss_kb(d->pid);
	fprintf(stderr, "%d idle connections: daemon RSS %ld -> %ld KiB, "
	    "%ld bytes each\n", IDLE, rss0, rss1, (rss1 - rss0) * 1024 / IDLE);
	if (!SANITIZED && rss1 - rss0 > (long)IDLE * IDLE_KB_MAX)
		h_fail("%d idle connections cost %ld KiB (%ld KiB each, at "
		    "most %d)", IDLE, rss1 - rss0, (rss1 - rss0) / IDLE,
		    IDLE_KB_MAX);
	/* Every one is still open and served. */
	for (i = 0; i < IDLE; i++)
		idle_ping(&idle[i], i);
	assert_false(h_log_contains(d, "accept:"));
	assert_false(h_log_contains(d, "refusing connection"));
	for (i = 0; i < IDLE; i++) {
		SSL_free(idle[i].ssl);
		close(idle[i].fd);
	}
	free(idle);
	SSL_CTX_free(ctx);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_idle_connections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
