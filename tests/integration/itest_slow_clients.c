/*
 * A thousand slow clients (TLS handshake, then a byte a second, never a
 * whole line) must not hold up the others (docs/robustness.md): while they
 * trickle, a logged-in client's pings are all answered, none of them
 * waiting anywhere near a slow client's next byte, as a loop that waited
 * on one of them would; and every slow client is still connected at the
 * end. The slow clients come from eight loopback addresses, as from
 * several hosts; the run is bounded (1000 connections, 10 seconds of
 * trickle). The latencies are printed, not asserted: how fast is a
 * benchmark's question (docs/BENCHMARKS.md), and a loaded machine moves
 * them.
 */
#include "wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOW 1000
#define SECONDS 10
#define PINGS_PER_SECOND 20

struct slow {
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

/* A blocking TLS connection from 127.0.0.(2 + i % 8). */
static void
slow_open(struct slow *s, SSL_CTX *ctx, int port, int i)
{
	struct sockaddr_in src = {0}, dst = {0};

	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % 8));
	dst.sin_family = AF_INET;
	dst.sin_port = htons((uint16_t)port);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(s->fd, (struct sockaddr *)&src, sizeof src) != 0 ||
	    connect(s->fd, (struct sockaddr *)&dst, sizeof dst) != 0)
		h_fail("slow client %d: cannot connect", i);
	s->ssl = SSL_new(ctx);
	SSL_set_fd(s->ssl, s->fd);
	SSL_set_tlsext_host_name(s->ssl, "localhost");
	if (SSL_connect(s->ssl) != 1)
		h_fail("slow client %d: TLS handshake failed", i);
}

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

static long long
ping_us(struct st_client *c)
{
	long long t0 = now_us();

	json_decref(h_call_ok(c, "system.ping", NULL));
	return now_us() - t0;
}

/* p99 of ping latencies over SECONDS while `trickle` (if set) sends one
 * byte a second from every slow client, spread evenly over each second. */
static long long
measure(struct st_client *c, struct slow *slow, bool trickle, long long *max)
{
	long long lat[SECONDS * PINGS_PER_SECOND], start = now_us();
	int n = 0, next_slow = 0;
	long long step_us = 1000000 / PINGS_PER_SECOND;

	while (n < SECONDS * PINGS_PER_SECOND) {
		long long due = start + (long long)n * step_us;
		/* Slow clients that are due before this ping. */
		long long sent_due = (now_us() - start) * SLOW / 1000000;

		while (trickle && next_slow < sent_due) {
			struct slow *s = &slow[next_slow % SLOW];

			if (SSL_write(s->ssl, "{", 1) != 1)
				h_fail("slow client %d was closed",
				    next_slow % SLOW);
			next_slow++;
		}
		if (now_us() < due) {
			usleep(1000);
			continue;
		}
		lat[n++] = ping_us(c);
	}
	qsort(lat, (size_t)n, sizeof lat[0], cmp_ll);
	*max = lat[n - 1];
	return lat[n * 99 / 100 - 1];
}

static void
test_slow_clients_do_not_slow_others(void **state)
{
	struct h_daemon *d = h_daemon_start("slow_clients",
	    "[server]\nmax_connections = 2000\nauth_timeout = 300\n"
	    "idle_timeout = 300\nhandshake_timeout = 60\n");
	struct st_client *c = h_login_admin(d);
	struct slow *slow = calloc(SLOW, sizeof *slow);
	SSL_CTX *ctx = client_ctx();
	long long base_p99, base_max, p99, max;
	int i;

	(void)state;
	assert_non_null(slow);
	base_p99 = measure(c, slow, false, &base_max);
	for (i = 0; i < SLOW; i++)
		slow_open(&slow[i], ctx, d->port, i);
	p99 = measure(c, slow, true, &max);
	fprintf(stderr, "ping p99: %lld us alone (max %lld), %lld us with %d "
	    "slow clients (max %lld)\n", base_p99, base_max, p99, SLOW, max);
	/* A stall, not a slowdown: a byte a second from each slow client,
	 * so a loop held by one of them would keep a ping a second or more,
	 * again and again. */
	if (max >= 2000000LL * h_timeout_scale())
		h_fail("with %d slow clients a ping waited %lld ms (alone at "
		    "most %lld ms): the loop waits on slow clients", SLOW,
		    max / 1000, base_max / 1000);
	/* Every slow client is still connected: none was served or hurt. */
	json_decref(h_call_ok(c, "system.ping", NULL));
	for (i = 0; i < SLOW; i++) {
		SSL_free(slow[i].ssl);
		close(slow[i].fd);
	}
	free(slow);
	SSL_CTX_free(ctx);
	st_close(c);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_clients_do_not_slow_others),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
