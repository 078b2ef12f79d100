/*
 * The line transport alone (daemon/conn.c), over a socket pair with real
 * TLS and a client thread: framing across reads, blank lines, the line
 * limit, pausing, writing, and on_closed called once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <limits.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

static char dir[PATH_MAX];
static SSL_CTX *sctx, *cctx;

/* ---- the client thread ------------------------------------------------- */

struct client {
	int fd;
	const char *const *chunks;  /* written one by one, 30 ms apart */
	size_t expect;              /* bytes to read back before closing */
	char got[4096];
	size_t ngot;
	pthread_t thread;
};

static void *
client_main(void *arg)
{
	struct client *cl = arg;
	SSL *ssl = SSL_new(cctx);
	size_t i;
	int n;

	SSL_set_fd(ssl, cl->fd);
	if (SSL_connect(ssl) != 1)
		goto out;
	for (i = 0; cl->chunks[i] != NULL; i++) {
		if (SSL_write(ssl, cl->chunks[i], (int)strlen(cl->chunks[i])) <= 0)
			break;
		usleep(30000);
	}
	while (cl->ngot < cl->expect && cl->ngot < sizeof cl->got - 1 &&
	    (n = SSL_read(ssl, cl->got + cl->ngot,
	    (int)(sizeof cl->got - 1 - cl->ngot))) > 0)
		cl->ngot += (size_t)n;
	cl->got[cl->ngot] = '\0';
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	close(cl->fd);
	return NULL;
}

/* ---- the layer above --------------------------------------------------- */

struct above {
	struct event_base *base;
	char lines[16][128];
	int nlines;
	int opened;
	int closed;
	bool echo;                  /* write each line back, upper-cased */
	bool pause_after_first;
	struct event *unpause;
	struct conn *conn;
	long long unpaused_ms;
	long long line_ms[16];
};

static long long
ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_open(struct conn *c, void *arg)
{
	((struct above *)arg)->opened++;
}

static void
unpause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct above *a = arg;

	a->unpaused_ms = ms();
	conn_pause(a->conn, false);
}

static void
on_line(struct conn *c, char *line, size_t len, void *arg)
{
	struct above *a = arg;
	struct timeval tv = {0, 200000};
	size_t i;

	assert_true(a->nlines < 16);
	assert_int_equal(strlen(line), len);
	snprintf(a->lines[a->nlines], sizeof a->lines[0], "%s", line);
	a->line_ms[a->nlines++] = ms();
	if (a->echo) {
		for (i = 0; i < len; i++)
			if (line[i] >= 'a' && line[i] <= 'z')
				line[i] = (char)(line[i] - 32);
		conn_write_line(c, line, len);
	}
	if (a->pause_after_first && a->nlines == 1) {
		conn_pause(c, true);
		a->unpause = evtimer_new(a->base, unpause_cb, a);
		evtimer_add(a->unpause, &tv);
	}
}

static void
on_drained(struct conn *c, void *arg)
{
}

static void
on_closed(struct conn *c, void *arg)
{
	struct above *a = arg;

	a->closed++;
	event_base_loopexit(a->base, NULL);
}

static const struct conn_callbacks callbacks = {on_open, on_line,
    on_drained, on_closed};

/* Runs one connection until it closes (or 10 s). */
static void
run(struct above *a, struct client *cl, size_t max_line)
{
	struct conn_limits lim = {max_line, 1 << 20, 10, 10};
	struct sockaddr_un_like { sa_family_t f; char p[14]; } sa = {AF_UNIX, ""};
	struct timeval ten = {10, 0};
	int sv[2];
	SSL *ssl;

	a->base = event_base_new();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	evutil_make_socket_nonblocking(sv[0]);
	cl->fd = sv[1];
	ssl = SSL_new(sctx);
	a->conn = conn_accept(a->base, ssl, sv[0], (struct sockaddr *)&sa,
	    &lim, &callbacks, a);
	assert_non_null(a->conn);
	assert_int_equal(pthread_create(&cl->thread, NULL, client_main, cl), 0);
	event_base_loopexit(a->base, &ten);
	event_base_dispatch(a->base);
	pthread_join(cl->thread, NULL);
	/* The deferred free runs on the next pass. */
	event_base_loop(a->base, EVLOOP_NONBLOCK);
	if (a->unpause != NULL)
		event_free(a->unpause);
	event_base_free(a->base);
}

static void
test_framing(void **state)
{
	static const char *const chunks[] = {"a\n\n  \r\nbb", "b\ncc", "c",
	    "\n\t\n", "last\n", NULL};
	struct client cl = {.chunks = chunks};
	struct above a = {0};

	run(&a, &cl, 1024);
	assert_int_equal(a.opened, 1);
	assert_int_equal(a.nlines, 4);
	assert_string_equal(a.lines[0], "a");
	assert_string_equal(a.lines[1], "bbb");
	assert_string_equal(a.lines[2], "ccc");
	assert_string_equal(a.lines[3], "last");
	assert_int_equal(a.closed, 1);
}

static void
test_line_too_long(void **state)
{
	static const char *const chunks[] = {"0123456789", "0123456789",
	    "0123456789", NULL};
	struct client cl = {.chunks = chunks, .expect = 40};
	struct above a = {0};

	run(&a, &cl, 16);
	assert_int_equal(a.nlines, 0);
	assert_non_null(strstr(cl.got, "Request line too long."));
	assert_int_equal(a.closed, 1);
}

static void
test_write_and_pause(void **state)
{
	static const char *const chunks[] = {"one\ntwo\n", NULL};
	struct client cl = {.chunks = chunks, .expect = 8};
	struct above a = {.echo = true, .pause_after_first = true};

	run(&a, &cl, 1024);
	assert_int_equal(a.nlines, 2);
	assert_string_equal(cl.got, "ONE\nTWO\n");
	/* The second line, already in the buffer, waited for the unpause. */
	assert_true(a.unpaused_ms > 0);
	assert_true(a.line_ms[1] >= a.unpaused_ms);
	assert_int_equal(a.closed, 1);
}

static int
group_setup(void **state)
{
	const char *src = getenv("ST_SOURCE_DIR");
	char cmd[3 * PATH_MAX], path[PATH_MAX + 64];

	if (src == NULL)
		return -1;
	snprintf(dir, sizeof dir, "%s/test_conn.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd, sizeof cmd, "'%s/scripts/mkcert' '%s/certs' >/dev/null",
	    src, dir);
	if (system(cmd) != 0)
		return -1;
	sctx = SSL_CTX_new(TLS_server_method());
	snprintf(path, sizeof path, "%s/certs/server.pem", dir);
	if (SSL_CTX_use_certificate_chain_file(sctx, path) != 1)
		return -1;
	snprintf(path, sizeof path, "%s/certs/server.key", dir);
	if (SSL_CTX_use_PrivateKey_file(sctx, path, SSL_FILETYPE_PEM) != 1)
		return -1;
	cctx = SSL_CTX_new(TLS_client_method());
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[PATH_MAX + 32];

	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_conn: cannot remove %s\n", dir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_write_and_pause),
	};

	log_configure(LL_ERROR, false);
	/* The client may write after the server closed, as the daemon's
	 * clients may (main.c ignores SIGPIPE too). */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
