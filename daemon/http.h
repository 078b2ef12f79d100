/*
 * The HTTPS transport (docs/http.md): HTTP/1.1 read (httpmsg.h) and
 * written here, over the same TLS context as the line transport. This
 * layer knows HTTP, TLS, cookies, the Origin rule, static files and QR
 * images, and nothing of JSON-RPC:
 * POST /rpc, GET /events, GET /healthz, GET /metrics and GET /p/ID.ics
 * are handed to
 * the layer above through struct http_callbacks.
 *
 * One struct http_exchange per request being answered. The layer above
 * ends it exactly once, with http_reply() or, for a stream, with
 * http_stream_end(); or the client leaves first and gone() is called, after
 * which the exchange must not be used. Nothing of an exchange is freed
 * inside a call made by the layer above that the layer could still be
 * using: gone() always comes from the loop, never from inside an http_*()
 * call.
 */
#ifndef HTTP_H
#define HTTP_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct addrcount;
struct event_base;
struct http;
struct http_exchange;
struct netlist;

/* The cookie that carries a session token (docs/http.md, "Sessions"). */
#define HTTP_SESSION_COOKIE "st_session"

struct http_limits {
	size_t max_body;            /* bytes of a request body */
	size_t max_headers;         /* bytes of a request's headers */
	int timeout;                /* seconds: reading a request, idle */
	size_t max_output;          /* unsent bytes of an event stream */
	size_t max_connections;     /* open HTTPS connections */
	size_t max_per_address;     /* from one address, with the line's */
};

/* The variable settings, replaced as a whole on reload. */
struct http_settings {
	const char *www_dir;        /* static files */
	const char *const *origins; /* allowed Origin values... */
	size_t norigins;            /* ...or 0: https:// + Host */
	/* PROXY headers (docs/operations.md) read from these balancers
	 * only; proxy_from is copied. */
	bool proxy_protocol;
	const struct netlist *proxy_from;
};

/*
 * Callbacks to the layer above, on the loop thread. `token` is the
 * session cookie's value (NULL if none or malformed); the strings live
 * as long as the call.
 */
struct http_callbacks {
	/* POST /rpc, Origin and Content-Type checked; body is len bytes. */
	void (*rpc)(struct http_exchange *x, const char *body, size_t len,
	    const char *token, void *arg);
	/* GET /events?topics=a,b: topics is the raw list ("" if none). */
	void (*events)(struct http_exchange *x, const char *topics,
	    const char *token, void *arg);
	/* GET /p/ID.ics. */
	void (*ics)(struct http_exchange *x, long long structure_id,
	    void *arg);
	/* GET /healthz: true while the daemon serves. */
	bool (*healthy)(void *arg);
	/* GET /metrics (docs/operations.md, "Metrics"); NULL: not served. */
	void (*metrics)(struct http_exchange *x, void *arg);
	/* The client left before x ended; x is freed after this returns.
	 * xarg is the one given to http_exchange_set_arg(). */
	void (*gone)(struct http_exchange *x, void *xarg);
};

/* addrs counts connections per address, shared with the line transport
 * (borrowed: it outlives h). */
struct http *http_new(struct event_base *base, SSL_CTX *ctx,
    const struct http_limits *limits, const struct http_settings *settings,
    struct addrcount *addrs, const struct http_callbacks *cb, void *arg);
/* Listens on host:port; false (logged) if it cannot. */
bool http_listen(struct http *h, const char *spec);
/* New connections use ctx (a reloaded certificate); live ones keep the
 * context they began with. */
void http_set_tls(struct http *h, SSL_CTX *ctx);
void http_set_limits(struct http *h, const struct http_limits *limits);
/* Copies what it keeps. */
void http_set_settings(struct http *h, const struct http_settings *s);
/* Stops listening; new requests on open connections get 503, and event
 * streams end. */
void http_drain(struct http *h);
/* Exchanges not yet ended. */
size_t http_active(const struct http *h);
/* Ends everything (gone() for every live exchange) and frees h. */
void http_free(struct http *h);

void http_exchange_set_arg(struct http_exchange *x, void *xarg);
const char *http_exchange_addr(const struct http_exchange *x);
const char *http_exchange_tag(const struct http_exchange *x);

/* Headers for the answer, before http_reply()/http_stream_start(): the
 * session cookie set to token for max_age seconds, or cleared. */
void http_set_session_cookie(struct http_exchange *x, const char *token,
    long long max_age);
void http_clear_session_cookie(struct http_exchange *x);
void http_add_header(struct http_exchange *x, const char *name,
    const char *value);

/* Ends x with status and a body (may be NULL) of this content type.
 * x must not be used afterwards. */
void http_reply(struct http_exchange *x, int status, const char *ctype,
    const char *body, size_t len);
/* A short text/plain answer (message: one line, a newline is added). */
void http_reply_text(struct http_exchange *x, int status,
    const char *message);

/* Starts a Server-Sent Events stream (200 text/event-stream); a comment
 * line keeps it open every 25 seconds. */
void http_stream_start(struct http_exchange *x);
/* Sends one event: "data: " line "\n\n" (line must hold no newline).
 * False, nothing sent, when more than max_output bytes wait to be
 * written, unless force; a stream more than twice over is ended (the
 * client reconnects and starts afresh). */
bool http_stream_event(struct http_exchange *x, const char *line,
    size_t len, bool force);
/* Ends the stream; x must not be used afterwards. */
void http_stream_end(struct http_exchange *x);

#endif
