#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "util.h"

enum conn_state {
	CONN_HANDSHAKE,
	CONN_ACTIVE,
	CONN_DRAINING,  /* server stopping: finish what is in flight, close */
	CONN_CLOSING,
};

static const char *const state_names[] = {"handshake", "active",
    "draining", "closing"};

/*
 * Thousands of connections may sit idle (docs/BENCHMARKS.md, "Idle
 * connections"): what an idle one holds here is this struct, its
 * bufferevent (OpenSSL's buffers are released when empty, see tls.c), two
 * timers and one event. The event queue exists once an event is queued.
 */
struct conn {
	uint64_t id;
	char addr[48];              /* INET6_ADDRSTRLEN, rounded up */
	char tag[80];               /* "C-<id> <addr>:<port>" */
	enum conn_state state;
	struct event_base *base;
	struct bufferevent *bev;
	struct conn_limits limits;
	const struct conn_callbacks *cb;
	void *arg;
	struct event *timer;        /* handshake, then idle timeout */
	struct event *deadline;     /* conn_set_deadline() */
	const char *deadline_why;
	/* From the loop, not the caller's stack: reads again after a pause,
	 * or, once CLOSING, tells on_closed. */
	struct event *soon;
	struct evbuffer *low;       /* conn_write_low() lines, or NULL */
	int refs;
	size_t scanned;             /* input bytes known to hold no "\n" */
	bool paused_above;          /* conn_pause() */
	bool paused_output;         /* too much unsent output */
	bool read_on;               /* EV_READ enabled on bev */
	bool busy;
	bool closing_after_write;
};

static uint64_t next_id;

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg);
static void conn_soon_cb(evutil_socket_t fd, short what, void *arg);
static void conn_read_lines(struct conn *c);
static void conn_close_now(struct conn *c, const char *why);

static void
conn_set_state(struct conn *c, enum conn_state state)
{
	if (c->state == state)
		return;
	log_debug("%s %s -> %s", c->tag, state_names[c->state],
	    state_names[state]);
	metrics_add(M_CONNECTIONS, -1, "rpc", state_names[c->state]);
	metrics_add(M_CONNECTIONS, 1, "rpc", state_names[state]);
	c->state = state;
}

static void
conn_arm_timer(struct conn *c, int seconds)
{
	struct timeval tv = {(time_t)seconds, 0};

	evtimer_add(c->timer, &tv);
}

static void
format_peer(struct conn *c, const struct sockaddr *sa)
{
	char port[16] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, c->addr, sizeof c->addr);
		snprintf(port, sizeof port, "%u", ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, c->addr, sizeof c->addr);
		snprintf(port, sizeof port, "%u", ntohs(sin6->sin6_port));
	} else
		snprintf(c->addr, sizeof c->addr, "local");
	snprintf(c->tag, sizeof c->tag, "C-%llu %s:%s",
	    (unsigned long long)c->id, c->addr, port);
}

struct conn *
conn_accept(struct event_base *base, SSL *ssl, evutil_socket_t fd,
    const struct sockaddr *sa, const struct conn_limits *limits,
    const struct conn_callbacks *cb, void *arg)
{
	struct conn *c;
	int one = 1;

	/* Answers are single small lines: do not let Nagle hold them back
	 * waiting for the client's delayed ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c = xcalloc(1, sizeof *c);
	c->id = ++next_id;
	c->refs = 1;	/* its own, until it closes */
	c->base = base;
	c->limits = *limits;
	c->cb = cb;
	c->arg = arg;
	format_peer(c, sa);

	c->bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_error("%s: cannot create TLS bufferevent", c->tag);
		SSL_free(ssl);
		evutil_closesocket(fd);
		free(c);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/* The write callback tells us when a slow reader has caught up. */
	bufferevent_setwatermark(c->bev, EV_WRITE, c->limits.max_output / 4, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->read_on = true;
	c->timer = evtimer_new(base, conn_timer_cb, c);
	c->deadline = evtimer_new(base, conn_deadline_cb, c);
	c->soon = event_new(base, -1, 0, conn_soon_cb, c);
	c->state = CONN_HANDSHAKE;
	metrics_add(M_CONNECTIONS, 1, "rpc", state_names[c->state]);
	conn_arm_timer(c, c->limits.handshake_timeout);
	return c;
}

void
conn_set_limits(struct conn *c, const struct conn_limits *limits)
{
	c->limits = *limits;
	if (!c->closing_after_write)
		bufferevent_setwatermark(c->bev, EV_WRITE,
		    c->limits.max_output / 4, 0);
}

void
conn_hold(struct conn *c)
{
	c->refs++;
}

static void
conn_free(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	log_debug("%s freed", c->tag);
	metrics_add(M_CONNECTIONS, -1, "rpc", state_names[c->state]);
	/* libevent never sends close_notify itself. */
	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	bufferevent_free(c->bev);
	event_free(c->timer);
	event_free(c->deadline);
	event_free(c->soon);
	if (c->low != NULL)
		evbuffer_free(c->low);
	free(c);
}

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

void
conn_release(struct conn *c)
{
	struct timeval zero = {0, 0};

	if (--c->refs > 0)
		return;
	if (c->refs < 0) {
		/* A release without its hold: freeing again would corrupt
		 * the heap; say it instead. */
		log_error("%s released more often than held", c->tag);
		return;
	}
	/* Never free inside a callback of c: after this loop pass. */
	event_base_once(c->base, -1, EV_TIMEOUT, conn_free_cb, c, &zero);
}

void
conn_free_now(struct conn *c)
{
	conn_free(c);
}

void
conn_raise_fd_limit(unsigned long long want)
{
	struct rlimit rl;
	unsigned long long was;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	was = (unsigned long long)rl.rlim_cur;
	/* Only when needed: a service manager that gives the hard limit
	 * already (LimitNOFILE=N) may also forbid setrlimit(). */
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			log_warn("cannot raise the open files limit from %llu "
			    "to %llu: %s", was,
			    (unsigned long long)rl.rlim_max, strerror(errno));
			rl.rlim_cur = (rlim_t)was;
		} else
			log_info("open files limit raised from %llu to %llu "
			    "(the hard limit)", was,
			    (unsigned long long)rl.rlim_cur);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (unsigned long long)rl.rlim_cur <
	    want)
		log_warn("open files limit %llu is under the %llu that "
		    "server.max_connections may need: raise it (systemd: "
		    "LimitNOFILE=)", (unsigned long long)rl.rlim_cur, want);
}

size_t
conn_output_len(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Reading is on exactly when the connection is active, nobody paused it
 * and the output has room. */
static void
conn_update_read(struct conn *c)
{
	bool want = c->state == CONN_ACTIVE && !c->paused_above &&
	    !c->paused_output && !c->closing_after_write;

	if (want == c->read_on)
		return;
	c->read_on = want;
	if (want) {
		bufferevent_enable(c->bev, EV_READ);
		/* Lines may already wait in the input buffer: read them from
		 * an event, never from inside the caller's stack. */
		event_active(c->soon, EV_TIMEOUT, 0);
	} else
		bufferevent_disable(c->bev, EV_READ);
}

void
conn_pause(struct conn *c, bool paused)
{
	c->paused_above = paused;
	conn_update_read(c);
}

void
conn_set_busy(struct conn *c, bool busy)
{
	c->busy = busy;
	if (!busy && c->state == CONN_DRAINING && conn_output_len(c) == 0)
		conn_close(c, NULL);
}

void
conn_set_deadline(struct conn *c, int seconds, const char *why)
{
	struct timeval tv = {(time_t)seconds, 0};

	if (seconds <= 0) {
		evtimer_del(c->deadline);
		return;
	}
	c->deadline_why = why;
	evtimer_add(c->deadline, &tv);
}

/* A request in flight (a login being checked, say) may finish first. */
static void
conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct timeval second = {1, 0};

	if (c->busy) {
		evtimer_add(c->deadline, &second);
		return;
	}
	conn_close_now(c, c->deadline_why);
}

/* on_closed runs from an event, so that a close asked for by the layer
 * above never calls back into it from inside its own call. A resume
 * still pending then becomes this: the same event, run once. */
static void
conn_close_now(struct conn *c, const char *why)
{
	if (c->state == CONN_CLOSING)
		return;
	if (why != NULL)
		log_info("%s closed: %s", c->tag, why);
	conn_set_state(c, CONN_CLOSING);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	c->read_on = false;
	evtimer_del(c->timer);
	evtimer_del(c->deadline);
	event_active(c->soon, EV_TIMEOUT, 0);
}

static void
conn_soon_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->state != CONN_CLOSING) {
		conn_read_lines(c);
		return;
	}
	c->cb->on_closed(c, c->arg);
	conn_release(c);	/* its own reference */
}

void
conn_close(struct conn *c, const char *why)
{
	struct timeval tv = {5, 0};

	if (c->state == CONN_CLOSING || c->closing_after_write)
		return;
	if (conn_output_len(c) == 0) {
		conn_close_now(c, why);
		return;
	}
	/* Let the last answer (often the error that says why) reach the
	 * client, but not for longer than a few seconds. */
	if (why != NULL)
		log_info("%s closing: %s", c->tag, why);
	c->closing_after_write = true;
	conn_update_read(c);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	evtimer_add(c->timer, &tv);
}

void
conn_drain(struct conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	if (c->state == CONN_HANDSHAKE) {
		conn_close_now(c, NULL);
		return;
	}
	conn_set_state(c, CONN_DRAINING);
	conn_update_read(c);
	if (!c->busy)
		conn_close(c, NULL);
}

bool
conn_is_closing(const struct conn *c)
{
	return c->state == CONN_CLOSING || c->closing_after_write;
}

uint64_t
conn_id(const struct conn *c)
{
	return c->id;
}

const char *
conn_addr(const struct conn *c)
{
	return c->addr;
}

const char *
conn_tag(const struct conn *c)
{
	return c->tag;
}

char *
conn_peer_email(const struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	return ssl != NULL ? tls_peer_email(ssl) : NULL;
}

/* A framing error: the layer above never sees the line. The error line
 * is JSON-RPC's, but framing is where it is known; it is fixed text. */
static void
frame_error(struct conn *c, const char *why)
{
	static const char msg[] = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":"
	    "{\"code\":-32600,\"message\":\"Request line too long.\","
	    "\"data\":{\"reason\":\"invalid_request\"}}}";

	conn_write_line(c, msg, sizeof msg - 1);
	conn_close(c, why);
}

/* Hands complete lines up while reading is on (frame.c finds them). */
static void
conn_read_lines(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len;
	char *line;

	conn_hold(c);
	while (c->read_on) {
		switch (frame_take(in, &c->scanned, c->limits.max_line, &line,
		    &len)) {
		case FRAME_MORE:
			goto out;
		case FRAME_TOO_LONG:
			frame_error(c, "Request line too long.");
			goto out;
		case FRAME_LINE:
			break;
		}
		/* Blank lines between messages are tolerated, but they are
		 * not activity: they do not keep a connection alive. */
		if (!frame_blank(line, len)) {
			conn_arm_timer(c, c->limits.idle_timeout);
			c->cb->on_line(c, line, len, c->arg);
		}
		explicit_bzero(line, len);
		free(line);
	}
out:
	conn_release(c);
}

/*
 * The bufferevent's callbacks are deferred: one queued before the close
 * may still run after it, even after on_closed and the last release.
 * Then it must not touch the layer above (gone) nor take and drop a
 * reference (which would free the connection a second time).
 */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state != CONN_CLOSING)
		conn_read_lines(c);
}

/* Moves queued low-priority lines to the output while it has room. */
static void
conn_flush_low(struct conn *c)
{
	if (c->state == CONN_CLOSING || c->closing_after_write ||
	    c->low == NULL || evbuffer_get_length(c->low) == 0)
		return;
	if (conn_output_len(c) < c->limits.max_output / 4)
		evbuffer_add_buffer(bufferevent_get_output(c->bev), c->low);
}

bool
conn_write_low(struct conn *c, const char *buf, size_t len, bool force)
{
	if (c->state == CONN_CLOSING)
		return true;
	if (c->low == NULL)
		c->low = evbuffer_new();
	if (!force && evbuffer_get_length(c->low) > c->limits.max_output)
		return false;
	evbuffer_add(c->low, buf, len);
	evbuffer_add(c->low, "\n", 1);
	conn_flush_low(c);
	return true;
}

void
conn_drop_low(struct conn *c)
{
	if (c->low == NULL)
		return;
	log_warn("%s: slow event subscriber, dropping %zu bytes of events", c->tag,
	    evbuffer_get_length(c->low));
	evbuffer_drain(c->low, evbuffer_get_length(c->low));
}

void
conn_write_line(struct conn *c, const char *buf, size_t len)
{
	struct evbuffer *out;

	if (c->state == CONN_CLOSING)
		return;
	out = bufferevent_get_output(c->bev);
	evbuffer_add(out, buf, len);
	evbuffer_add(out, "\n", 1);
	/* A client that does not read cannot make us grow without bound. */
	if (conn_output_len(c) >= c->limits.max_output && !c->paused_output) {
		c->paused_output = true;
		conn_update_read(c);
	}
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == CONN_CLOSING)
		return;         /* see conn_read_cb */
	conn_flush_low(c);
	if (c->closing_after_write) {
		if (conn_output_len(c) == 0)
			conn_close_now(c, NULL);
		return;
	}
	if (c->state == CONN_DRAINING && !c->busy &&
	    conn_output_len(c) == 0) {
		conn_close_now(c, NULL);
		return;
	}
	if (c->paused_output &&
	    conn_output_len(c) < c->limits.max_output / 4 + 1) {
		c->paused_output = false;
		conn_update_read(c);
	}
	conn_hold(c);
	c->cb->on_drained(c, c->arg);
	conn_release(c);
}

static void
conn_handshake_done(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	log_debug("%s TLS %s %s", c->tag, SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
	conn_set_state(c, CONN_ACTIVE);
	conn_arm_timer(c, c->limits.idle_timeout);
	conn_hold(c);
	c->cb->on_open(c, c->arg);
	conn_update_read(c);
	if (c->read_on)
		conn_read_lines(c);
	conn_release(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	unsigned long e;
	char buf[256];

	if (c->state == CONN_CLOSING)
		return;         /* see conn_read_cb */
	if (what & BEV_EVENT_CONNECTED) {
		conn_handshake_done(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		conn_close_now(c, c->state == CONN_HANDSHAKE ?
		    "closed during handshake" : NULL);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		e = bufferevent_get_openssl_error(bev);
		if (e != 0) {
			ERR_error_string_n(e, buf, sizeof buf);
			while (bufferevent_get_openssl_error(bev) != 0)
				;
		} else
			snprintf(buf, sizeof buf, "%s",
			    evutil_socket_error_to_string(
			    EVUTIL_SOCKET_ERROR()));
		if (c->state == CONN_HANDSHAKE)
			log_info("%s TLS handshake failed: %s", c->tag, buf);
		conn_close_now(c, c->state == CONN_HANDSHAKE ? NULL : buf);
	}
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->closing_after_write) {
		conn_close_now(c, "client did not read its last answer");
		return;
	}
	switch (c->state) {
	case CONN_HANDSHAKE:
		conn_close_now(c, "TLS handshake timeout");
		break;
	case CONN_ACTIVE:
	case CONN_DRAINING:
		if (c->busy) {
			conn_arm_timer(c, c->limits.idle_timeout);
			break;
		}
		conn_close_now(c, c->state == CONN_ACTIVE ? "idle timeout" :
		    "idle while stopping");
		break;
	case CONN_CLOSING:
		break;
	}
}
