/*
 * A client connection: TLS bufferevent, line framing, flow control and the
 * session bound by auth.login / auth.resume / a client certificate.
 *
 * States, changed only through conn_set_state() which logs the move:
 *   HANDSHAKE -> ACTIVE -> (DRAINING) -> CLOSING
 * A connection is never freed inside one of its own callbacks: conn_close()
 * marks it CLOSING and the free happens from a deferred callback once no
 * request holds a reference any more.
 */
#ifndef CONN_H
#define CONN_H

#include <event2/bufferevent.h>
#include <event2/util.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "methods.h"

enum conn_state {
	CONN_HANDSHAKE,
	CONN_BINDING,   /* client certificate being looked up; not reading */
	CONN_ACTIVE,
	CONN_DRAINING,  /* server stopping: answer what is in flight, then close */
	CONN_CLOSING,
};

struct session {
	bool bound;
	int64_t user_id;
	enum role role;
	int64_t partner_id;     /* 0 if none */
	int64_t structure_id;   /* 0 if none */
	char token_hash[65];    /* hex SHA-256 of the token */
};

struct conn {
	uint64_t id;
	char addr[64];              /* peer address, without port */
	char tag[128];              /* "C-42 10.0.0.5:51234 user=7" for logs */
	enum conn_state state;
	struct bufferevent *bev;
	struct event *timer;        /* handshake, then idle timeout */
	struct event *resume_ev;    /* resumes reading after a pause */
	int refs;
	unsigned inflight;          /* requests dispatched, not yet answered */
	bool read_paused;           /* inflight or output limit reached */
	bool closing_after_write;   /* framing error: flush the error, close */
	uint64_t requests;
	struct session session;
	unsigned event_topics;      /* events.subscribe, 0 if none */
	struct evbuffer *events;    /* event lines waiting for the output */
	TAILQ_ENTRY(conn) entry;
};

void conn_accept(evutil_socket_t fd, struct sockaddr *sa, int salen);
void conn_set_state(struct conn *c, enum conn_state state);
void conn_ref(struct conn *c);
void conn_unref(struct conn *c);
/* Queues one message (reference stolen) as a line, unless closing. */
void conn_send(struct conn *c, json_t *msg);
/* Queues an event line (copied; "\n" added). Events wait in their own
 * queue until the output has room, so answers are never held back by
 * them; a queue grown past max_output_bytes is dropped and replaced by one
 * resync event. `always` adds the line even then (it is a resync). */
void conn_push_event(struct conn *c, const char *line, bool always);
/* A request of c has been answered. */
void conn_request_done(struct conn *c);
/* Closes after what is queued has been written. */
void conn_close(struct conn *c, const char *why);
void conn_bind(struct conn *c, const struct session *s);
void conn_unbind(struct conn *c);
/* Reading may go on (after BINDING, say). */
void conn_resume(struct conn *c);
/* Server is stopping: stop reading, close once idle. */
void conn_drain(struct conn *c);
bool conn_idle(const struct conn *c);

#endif
