/*
 * JSON-RPC 2.0, transport-neutral: turns a message into requests, hands
 * each well-formed one to the application, and writes the answers back
 * (alone, or gathered into one array for a batch).
 *
 * A transport (the line transport, or an HTTP exchange) makes one peer
 * per client with rpc_peer_new(), feeds it complete messages with
 * rpc_peer_input(), and says rpc_peer_gone() when the client left. The
 * protocol reaches the transport only through struct rpc_transport, and
 * the application only through struct rpc_hooks.
 *
 * Lifetimes: a peer is refcounted; every request and batch holds its
 * peer, so an answer that comes after the client left is dropped safely.
 * A batch is held by whoever loops over it. A request ends exactly once,
 * in one place (request_end, through rpc_reply() or rpc_error()); after
 * that it is gone.
 */
#ifndef RPC_H
#define RPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"
#include "util.h"

struct event_base;
struct rpc_peer;
struct batch;
struct method;
struct app;     /* the application's context: opaque to the protocol */

/* JSON-RPC's codes; the others are HTTP-like (docs/protocol.md). */
#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_INTERNAL_ERROR -32603

struct request {
	/* The protocol's fields: read-only for everyone else. */
	struct rpc_peer *peer;      /* held */
	struct app *app;
	json_t *msg;                /* the request object, held */
	json_t *id;                 /* NULL for a notification */
	const char *method_name;    /* inside msg */
	json_t *params;             /* object or array, inside msg ({} if
	                               absent); handlers may take values out */
	uint64_t seq;               /* daemon-wide request number, for logs */
	uint64_t started_ms;
	const char *outcome;        /* the error reason it ends with, or
	                               NULL: ok (for the metrics) */
	struct batch *batch;        /* or NULL */
	size_t batch_slot;

	/* The application's fields (methods.c, sqlcall.c, the handlers). */
	const struct method *method;
	void *ctx;
	void (*sql_after)(struct request *req, json_t *result);
	bool on_replica;        /* its SQL runs on the read pool */
};

struct rpc_limits {
	unsigned max_inflight;      /* requests of one peer at once */
	size_t max_batch;           /* elements of one batch */
	size_t max_answer;          /* bytes of one answer, a batch's too */
};

/*
 * What a transport does for its peers. Called by the protocol on the
 * loop thread; none of them may call back into the protocol for this
 * peer (feed it input, say it is gone) before returning: defer that.
 */
struct rpc_transport {
	/* One complete answer (JSON text, no newline). */
	void (*send)(void *t, const char *buf, size_t len);
	/* An event line. False if the transport's event queue is full
	 * (nothing queued); force queues it anyway. */
	bool (*send_event)(void *t, const char *buf, size_t len, bool force);
	/* Empties the event queue (a slow reader). */
	void (*drop_events)(void *t);
	/* Stop (true) or allow (false) input from this peer. */
	void (*pause)(void *t, bool paused);
	/* The peer has requests in flight (true) or none any more. */
	void (*busy)(void *t, bool busy);
	/* A session was bound (true) or unbound (false). */
	void (*session_changed)(void *t, bool bound);
	/* Optional (NULL: answers carry tokens). A login or resume made
	 * token (a NUL-terminated string, wiped after the call) the peer's
	 * session: true if the transport keeps it itself (an HTTP cookie),
	 * and the answer then leaves it out. */
	bool (*take_token)(void *t, const char *token);
};

/* The application, given once to rpc_init(). */
struct rpc_hooks {
	/* A well-formed request: look up req->method_name, check, and end
	 * it exactly once, now or later. */
	void (*dispatch)(struct request *req);
	/* The peer's transport is gone: forget the peer wherever it is
	 * kept (event subscriptions). May release references. */
	void (*peer_gone)(struct rpc_peer *p);
};

void rpc_init(struct event_base *base, const struct rpc_hooks *hooks,
    struct app *app, const struct rpc_limits *limits);
void rpc_set_limits(const struct rpc_limits *limits);
/* Requests dispatched since start. */
uint64_t rpc_requests_total(void);

struct rpc_peer *rpc_peer_new(const struct rpc_transport *t, void *tctx,
    const char *addr, const char *tag);
/* The transport is gone: answers are dropped from now on, and the peer
 * is freed once nothing holds it. */
void rpc_peer_gone(struct rpc_peer *p);
/* One complete message from the peer. */
void rpc_peer_input(struct rpc_peer *p, const char *buf, size_t len);

void rpc_peer_hold(struct rpc_peer *p);
void rpc_peer_release(struct rpc_peer *p);
bool rpc_peer_alive(const struct rpc_peer *p);
const char *rpc_peer_addr(const struct rpc_peer *p);
const char *rpc_peer_tag(const struct rpc_peer *p);
unsigned rpc_peer_inflight(const struct rpc_peer *p);
/* Nothing in flight and no batch waiting: no answer will come unless
 * more input is fed. */
bool rpc_peer_idle(const struct rpc_peer *p);
/* Offers a new session token to the transport (take_token); false if
 * the answer must carry it. */
bool rpc_peer_take_token(struct rpc_peer *p, const char *token);
const struct session *rpc_peer_session(const struct rpc_peer *p);
enum role rpc_peer_role(const struct rpc_peer *p);
void rpc_peer_bind(struct rpc_peer *p, const struct session *s);
void rpc_peer_unbind(struct rpc_peer *p);
/* No input is taken from the peer while blocked (a client certificate
 * being looked up, say). */
void rpc_peer_block(struct rpc_peer *p, bool blocked);
/* Queues an event line (no newline). A subscriber that does not read has
 * its queue dropped and replaced by one `resync` event. */
void rpc_peer_push_event(struct rpc_peer *p, const char *line, size_t len);

/* Ends req with a result (reference stolen). */
void rpc_reply(struct request *req, json_t *result);
/* The same with the result as JSON text that needs no checking (the
 * database's own output): written as it is, never parsed. */
void rpc_reply_text(struct request *req, const char *json, size_t len);
/* Ends req with an error. reason is the stable word of docs/protocol.md;
 * its code comes from the one table (rpc_code_for_reason). field may be
 * NULL; data (stolen, may be NULL) is merged into error.data. */
void rpc_error(struct request *req, const char *reason, const char *field,
    json_t *data, const char *fmt, ...) PRINTFLIKE(5, 6);
/* Ends req with internal_error, logging detail with the request number. */
void rpc_internal(struct request *req, const char *detail);

/* 0 for a reason not in the table. */
int rpc_code_for_reason(const char *reason);
/* The table itself, for tests and docs: reasons[i] until NULL. */
const char *rpc_reason_at(size_t i);

#endif
