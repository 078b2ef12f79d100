/*
 * The line transport: one TLS connection carrying newline-framed
 * messages. This layer knows sockets, TLS, framing, timers and output
 * watermarks, and nothing of what the lines mean: it hands each complete
 * line to the layer above through the callbacks given to conn_accept().
 *
 * States: HANDSHAKE -> ACTIVE -> (DRAINING) -> CLOSING. A connection is
 * never freed inside one of its own callbacks: conn_close() and friends
 * mark it CLOSING, call on_closed once, and the free happens after the
 * loop pass once nobody holds it (conn_hold / conn_release).
 */
#ifndef CONN_H
#define CONN_H

#include <event2/util.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct conn;

struct conn_limits {
	size_t max_line;          /* longest line, without its "\n" */
	size_t max_output;        /* unsent bytes past which reading stops */
	int handshake_timeout;    /* seconds */
	int idle_timeout;         /* seconds with nothing in flight */
};

/*
 * Callbacks to the layer above, all on the loop thread, each from one of
 * the connection's own libevent callbacks, never from inside a conn_*()
 * call made by the layer above. The connection is held across each call,
 * so the callee may close it. `arg` is the one given to conn_accept().
 */
struct conn_callbacks {
	/* The TLS handshake is done (conn_peer_email() now answers). */
	void (*on_open)(struct conn *c, void *arg);
	/* One complete line, NUL-terminated, without its "\n"; blank lines
	 * never reach here. The buffer is the connection's and is wiped
	 * after the call (lines may carry passwords): copy what you keep. */
	void (*on_line)(struct conn *c, char *line, size_t len, void *arg);
	/* The output has fallen back under a quarter of max_output. */
	void (*on_drained)(struct conn *c, void *arg);
	/* Called once, when the connection starts closing: no callback
	 * follows and writes are dropped from then on. */
	void (*on_closed)(struct conn *c, void *arg);
};

/* Takes fd and ssl (freed on failure too). NULL if it cannot start. */
struct conn *conn_accept(struct event_base *base, SSL *ssl,
    evutil_socket_t fd, const struct sockaddr *sa,
    const struct conn_limits *limits, const struct conn_callbacks *cb,
    void *arg);

void conn_hold(struct conn *c);
void conn_release(struct conn *c);

/* Limits for this connection from now on (after a reload). */
void conn_set_limits(struct conn *c, const struct conn_limits *limits);

/* Writes one line (buf has no "\n"; one is added). Dropped if closing. */
void conn_write_line(struct conn *c, const char *buf, size_t len);
/* Low-priority lines (events): kept in their own queue, moved to the
 * output only while it has room, so answers are never held back by them.
 * False, and nothing queued, when that queue already holds more than
 * max_output bytes (unless force); conn_drop_low() empties it. */
bool conn_write_low(struct conn *c, const char *buf, size_t len, bool force);
void conn_drop_low(struct conn *c);

/* The layer above stops (true) or allows (false) reading, e.g. while it
 * has too many requests of this connection in flight. */
void conn_pause(struct conn *c, bool paused);
/* While busy, the idle timeout does not close the connection. */
void conn_set_busy(struct conn *c, bool busy);
/* Closes the connection unless conn_set_deadline(c, 0) comes first,
 * `seconds` from now (e.g. an anonymous caller must log in in time). */
void conn_set_deadline(struct conn *c, int seconds, const char *why);

/* Closes after what is queued has been written (a few seconds at most). */
void conn_close(struct conn *c, const char *why);
/* Stops reading; closes once not busy and everything is written. */
void conn_drain(struct conn *c);

bool conn_is_closing(const struct conn *c);
uint64_t conn_id(const struct conn *c);
const char *conn_addr(const struct conn *c);  /* peer address, no port */
const char *conn_tag(const struct conn *c);   /* "C-42 10.0.0.5:51234" */
/* The verified client certificate's e-mail (malloc'd), or NULL. */
char *conn_peer_email(const struct conn *c);
/* Bytes of output not yet written, events excluded. */
size_t conn_output_len(const struct conn *c);
/* Frees a connection that never closed (server shutdown only). */
void conn_free_now(struct conn *c);

/* Each connection is a descriptor. Raises the soft RLIMIT_NOFILE to the
 * hard limit if it is lower (most service managers start at 1024), and
 * says so; warns if the limit stays under `want`, what the configuration
 * may use. At start-up. */
void conn_raise_fd_limit(unsigned long long want);

#endif
