#include "conn.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "rpc.h"
#include "server.h"
#include "tls.h"
#include "auth.h"

static const char *const state_names[] = {"handshake", "binding", "active",
    "draining", "closing"};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void conn_resume_cb(evutil_socket_t fd, short what, void *arg);
static void conn_read_lines(struct conn *c);
static void conn_maybe_resume(struct conn *c);

static void
conn_update_tag(struct conn *c, const char *port)
{
	if (port != NULL)
		snprintf(c->tag, sizeof c->tag, "C-%llu %s:%s",
		    (unsigned long long)c->id, c->addr, port);
	else {
		char *p = strstr(c->tag, " user=");

		if (p != NULL)
			*p = '\0';
		if (c->session.bound) {
			size_t n = strlen(c->tag);

			snprintf(c->tag + n, sizeof c->tag - n, " user=%lld",
			    (long long)c->session.user_id);
		}
	}
}

void
conn_set_state(struct conn *c, enum conn_state state)
{
	if (c->state == state)
		return;
	log_debug("%s %s -> %s", c->tag, state_names[c->state],
	    state_names[state]);
	c->state = state;
}

static void
conn_arm_timer(struct conn *c, long long seconds)
{
	struct timeval tv = {(time_t)seconds, 0};

	evtimer_add(c->timer, &tv);
}

void
conn_accept(evutil_socket_t fd, struct sockaddr *sa, int salen)
{
	struct conn *c;
	SSL *ssl;
	char port[16] = "?";

	(void)salen;
	if (srv->draining || srv->nconns >= (size_t)srv->cfg->max_connections) {
		log_warn("refusing connection: %s (%zu open, max_connections "
		    "%lld)", srv->draining ? "server stopping" :
		    "too many connections", srv->nconns,
		    srv->cfg->max_connections);
		evutil_closesocket(fd);
		return;
	}
	if ((ssl = SSL_new(srv->ssl_ctx)) == NULL) {
		log_error("SSL_new failed");
		evutil_closesocket(fd);
		return;
	}
	{
		/* Answers are single small lines: do not let Nagle hold them
		 * back waiting for the client's delayed ACK. */
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	c = xcalloc(1, sizeof *c);
	c->id = ++srv->next_conn_id;
	c->refs = 1;	/* held by the server until closed */
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, c->addr, sizeof c->addr);
		snprintf(port, sizeof port, "%u", ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, c->addr, sizeof c->addr);
		snprintf(port, sizeof port, "%u", ntohs(sin6->sin6_port));
	} else
		snprintf(c->addr, sizeof c->addr, "local");
	conn_update_tag(c, port);

	c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_error("%s: cannot create TLS bufferevent", c->tag);
		SSL_free(ssl);
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	/* The write callback tells us when a slow reader has caught up. */
	bufferevent_setwatermark(c->bev, EV_WRITE,
	    (size_t)srv->cfg->max_output_bytes / 4, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->timer = evtimer_new(srv->base, conn_timer_cb, c);
	c->events = evbuffer_new();
	c->resume_ev = event_new(srv->base, -1, 0, conn_resume_cb, c);
	conn_arm_timer(c, srv->cfg->handshake_timeout);

	c->state = CONN_HANDSHAKE;
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
	log_debug("%s accepted (%zu open)", c->tag, srv->nconns);
}

void
conn_ref(struct conn *c)
{
	c->refs++;
}

static void
conn_free(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	log_debug("%s freed after %llu requests", c->tag,
	    (unsigned long long)c->requests);
	/* libevent never sends close_notify itself. */
	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	bufferevent_free(c->bev);
	event_free(c->timer);
	event_free(c->resume_ev);
	evbuffer_free(c->events);
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->nconns--;
	explicit_bzero(&c->session, sizeof c->session);
	free(c);
	server_conn_closed();
}

static void
conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

void
conn_unref(struct conn *c)
{
	struct timeval zero = {0, 0};

	if (--c->refs > 0)
		return;
	/* Never free inside a callback of c: after this loop pass. */
	event_base_once(srv->base, -1, EV_TIMEOUT, conn_free_cb, c, &zero);
}

static size_t
conn_output_len(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static void
conn_pause(struct conn *c)
{
	if (!c->read_paused) {
		c->read_paused = true;
		bufferevent_disable(c->bev, EV_READ);
	}
}

static bool
conn_can_read(const struct conn *c)
{
	return c->state == CONN_ACTIVE &&
	    c->inflight < (unsigned)srv->cfg->max_inflight &&
	    conn_output_len(c) < (size_t)srv->cfg->max_output_bytes;
}

/* Reading resumes through an event, never by calling conn_read_lines()
 * from inside a request's answer, which may itself be running inside
 * conn_read_lines(). */
static void
conn_maybe_resume(struct conn *c)
{
	if (c->read_paused && conn_can_read(c)) {
		c->read_paused = false;
		bufferevent_enable(c->bev, EV_READ);
		event_active(c->resume_ev, EV_TIMEOUT, 0);
	}
}

static void
conn_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	conn_read_lines(c);
}

static void
conn_close_now(struct conn *c, const char *why)
{
	if (c->state == CONN_CLOSING)
		return;
	if (why != NULL)
		log_info("%s closed: %s", c->tag, why);
	conn_set_state(c, CONN_CLOSING);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evtimer_del(c->timer);
	event_del(c->resume_ev);
	conn_unref(c);	/* the server's reference */
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
	conn_pause(c);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	evtimer_add(c->timer, &tv);
}

static void
frame_error(struct conn *c, const char *message)
{
	conn_send(c, rpc_error_message(NULL, RPC_INVALID_REQUEST,
	    "invalid_request", message));
	conn_close(c, message);
}

static void
conn_read_lines(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t max = (size_t)srv->cfg->max_request_bytes;
	struct evbuffer_ptr eol;
	size_t eol_len;
	char *line;

	while (!c->closing_after_write) {
		if (!conn_can_read(c)) {
			if (c->state != CONN_CLOSING)
				conn_pause(c);
			return;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > max)
				frame_error(c, "Request line too long.");
			return;
		}
		if ((size_t)eol.pos > max) {
			frame_error(c, "Request line too long.");
			return;
		}
		line = xmalloc((size_t)eol.pos + 1);
		evbuffer_remove(in, line, (size_t)eol.pos);
		evbuffer_drain(in, eol_len);
		line[eol.pos] = '\0';
		conn_arm_timer(c, srv->cfg->idle_timeout);
		/* Blank lines between messages are tolerated. */
		if (strspn(line, " \t\r") != (size_t)eol.pos)
			rpc_handle_line(c, line, (size_t)eol.pos);
		/* Lines may carry passwords. */
		explicit_bzero(line, (size_t)eol.pos);
		free(line);
	}
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	conn_read_lines(arg);
}

/* Moves queued events to the output while it has room. */
static void
conn_flush_events(struct conn *c)
{
	if (c->state == CONN_CLOSING || c->closing_after_write ||
	    evbuffer_get_length(c->events) == 0)
		return;
	if (conn_output_len(c) < (size_t)srv->cfg->max_output_bytes / 4)
		evbuffer_add_buffer(bufferevent_get_output(c->bev), c->events);
}

void
conn_push_event(struct conn *c, const char *line, bool always)
{
	static const char resync[] = "{\"jsonrpc\":\"2.0\",\"method\":"
	    "\"event\",\"params\":{\"topic\":\"resync\",\"data\":"
	    "{\"reason\":\"too many events waiting: this client reads too "
	    "slowly\"}}}\n";

	if (c->state == CONN_CLOSING)
		return;
	if (!always && evbuffer_get_length(c->events) >
	    (size_t)srv->cfg->max_output_bytes) {
		log_warn("%s: slow event subscriber, dropping %zu bytes of "
		    "events", c->tag, evbuffer_get_length(c->events));
		evbuffer_drain(c->events, evbuffer_get_length(c->events));
		evbuffer_add(c->events, resync, sizeof resync - 1);
	}
	evbuffer_add(c->events, line, strlen(line));
	evbuffer_add(c->events, "\n", 1);
	conn_flush_events(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	conn_flush_events(c);

	if (c->closing_after_write) {
		if (conn_output_len(c) == 0)
			conn_close_now(c, NULL);
		return;
	}
	if (c->state == CONN_DRAINING && conn_idle(c)) {
		conn_close_now(c, NULL);
		return;
	}
	conn_maybe_resume(c);
}

static void
conn_handshake_done(struct conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	log_debug("%s TLS %s %s", c->tag, SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
	conn_set_state(c, CONN_ACTIVE);
	conn_arm_timer(c, srv->cfg->idle_timeout);
	auth_bind_certificate(c);
	conn_read_lines(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	unsigned long e;
	char buf[256];

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
	case CONN_BINDING:
		if (c->inflight > 0) {
			conn_arm_timer(c, srv->cfg->idle_timeout);
			break;
		}
		conn_close_now(c, "idle timeout");
		break;
	case CONN_DRAINING:
		/* The server's drain timer bounds the drain; this timer only
		 * closes a drained connection that is idle. */
		if (c->inflight > 0) {
			conn_arm_timer(c, srv->cfg->idle_timeout);
			break;
		}
		conn_close_now(c, "idle while stopping");
		break;
	case CONN_CLOSING:
		break;
	}
}

static int
send_chunk(const char *buf, size_t len, void *arg)
{
	return evbuffer_add(arg, buf, len);
}

void
conn_send(struct conn *c, json_t *msg)
{
	struct evbuffer *out;

	if (msg == NULL)
		return;
	if (c->state == CONN_CLOSING) {
		json_decref(msg);
		return;
	}
	out = bufferevent_get_output(c->bev);
	if (json_dump_callback(msg, send_chunk, out, JSON_COMPACT) != 0)
		log_error("%s: cannot serialise an answer", c->tag);
	evbuffer_add(out, "\n", 1);
	json_decref(msg);
	/* A client that does not read cannot make us grow without bound. */
	if (conn_output_len(c) >= (size_t)srv->cfg->max_output_bytes &&
	    c->state == CONN_ACTIVE)
		conn_pause(c);
}

void
conn_request_done(struct conn *c)
{
	c->inflight--;
	if (c->state == CONN_DRAINING) {
		if (conn_idle(c))
			conn_close(c, NULL);
		return;
	}
	conn_maybe_resume(c);
}

bool
conn_idle(const struct conn *c)
{
	return c->inflight == 0 && conn_output_len(c) == 0;
}

void
conn_resume(struct conn *c)
{
	conn_maybe_resume(c);
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
	conn_pause(c);
	if (c->inflight == 0)
		conn_close(c, NULL);
}

void
conn_bind(struct conn *c, const struct session *s)
{
	c->session = *s;
	c->session.bound = true;
	conn_update_tag(c, NULL);
}

void
conn_unbind(struct conn *c)
{
	explicit_bzero(&c->session, sizeof c->session);
	conn_update_tag(c, NULL);
}
