/*
 * libstrapontin: client library for the strapontind JSON-RPC 2.0 over TLS
 * protocol (see docs/protocol.md). Used by the strapontin CLI, the bench
 * and the test suite; usable by third parties.
 *
 * A client is one TLS connection. It is not thread-safe: use one client per
 * thread. Calls block, with a timeout. Several requests may be in flight on
 * one connection (pipelining): st_send() several times, then st_wait() for
 * each id in any order; responses and server events that arrive while
 * waiting for another id are kept until asked for.
 *
 * Ownership follows Jansson: parameters passed as `json_t *params` are
 * borrowed (the caller keeps its reference); every `json_t **out` receives a
 * new reference the caller must json_decref().
 *
 * Errors: every call that can fail takes a `struct st_error *err` (may be
 * NULL). It is output only: the library never reads it, so it needs no
 * initialisation, and it is left untouched on success. After an
 * ST_ERR_SERVER failure err->data holds a reference: release it with
 * st_error_clear() before reusing err (st_error_clear() is also fine on a
 * zeroed err or one holding a library error).
 *
 * SIGPIPE: the library writes with MSG_NOSIGNAL (through its own OpenSSL
 * BIO), so a vanished server gives ST_ERR_IO and callers need not ignore
 * SIGPIPE for its sake.
 *
 * Timeouts: st_connect (per address tried, then for the handshake), st_call,
 * st_send, st_notify, st_send_raw and st_wait use st_options.timeout_ms
 * (one budget per call). Functions taking their own
 * timeout_ms wait that long; 0 means "only what has already arrived" and
 * ST_WAIT_FOREVER (-1) means no limit.
 */
#ifndef STRAPONTIN_H
#define STRAPONTIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Negative error codes of the library itself (error.code < 0 and > -1000
 * never collide with JSON-RPC codes, which are -32xxx or positive). */
enum st_status {
	ST_OK = 0,
	ST_ERR_SERVER = -1,   /* the server answered an error: see st_error */
	ST_ERR_CONNECT = -2,  /* cannot resolve or connect */
	ST_ERR_TLS = -3,      /* handshake or certificate verification failed */
	ST_ERR_IO = -4,       /* connection lost or closed by the server */
	ST_ERR_TIMEOUT = -5,  /* no answer within the timeout */
	ST_ERR_PROTOCOL = -6, /* the server sent something that is not JSON-RPC */
	ST_ERR_USAGE = -7,    /* bad arguments to the library */
};

#define ST_WAIT_FOREVER (-1)

struct st_error {
	int status;          /* enum st_status */
	int code;            /* JSON-RPC error.code when status == ST_ERR_SERVER */
	char reason[64];     /* error.data.reason, or a library word: "usage",
	                        "resolve", "connect", "tls", "certificate",
	                        "timeout", "io", "protocol" */
	char field[64];      /* error.data.field, or "" */
	char message[512];   /* error.message, or the library's sentence saying
	                        what failed */
	json_t *data;        /* error.data (new reference) or NULL; freed by
	                        st_error_clear() */
};

struct st_options {
	const char *host;        /* name or address; required */
	const char *port;        /* default "7443" */
	const char *ca_file;     /* CA bundle to verify the server; NULL = system store */
	const char *server_name; /* name to verify and send as SNI; default host */
	const char *cert_file;   /* optional client certificate (mutual TLS) */
	const char *key_file;    /* its key */
	int timeout_ms;          /* per operation; 0 = 10000 */
	int min_tls_version;     /* TLS1_2_VERSION (default) or TLS1_3_VERSION; tests
	                            may pass TLS1_1_VERSION together with max below */
	int max_tls_version;     /* 0 = library default (highest) */
	bool insecure_for_tests; /* skip verification; only for the test suite's
	                            negative TLS tests, never exposed by the CLI */
};

struct st_client;

/* Connects and completes the TLS handshake. NULL on failure, err filled:
 * ST_ERR_CONNECT (resolution, refused, connect timeout), ST_ERR_TLS (setup,
 * handshake, reason "certificate" when verification failed),
 * ST_ERR_TIMEOUT (no handshake within the timeout), ST_ERR_USAGE.
 * host may be a name, an IPv4 or an IPv6 address, with or without [];
 * every address it resolves to is tried in turn. The certificate is checked
 * against server_name (default host): as an IP address when it is one,
 * otherwise as a DNS name, which is also sent as SNI. */
struct st_client *st_connect(const struct st_options *opt, struct st_error *err);
/* Sends close_notify if it can without waiting, then frees. NULL is fine. */
void st_close(struct st_client *c);

/* One call, waiting for its answer. ST_OK and *result set (new reference,
 * may be NULL if result is NULL), or an error status with err filled. */
int st_call(struct st_client *c, const char *method, json_t *params,
    json_t **result, struct st_error *err);

/* Pipelining: send a request and return its id (> 0), or -1 on error. */
int64_t st_send(struct st_client *c, const char *method, json_t *params,
    struct st_error *err);
/* Sends a notification (no id, no answer expected). */
int st_notify(struct st_client *c, const char *method, json_t *params,
    struct st_error *err);
/* Waits for the response with this id. A response with "id": null and an
 * error (the server could not read a request) also ends the wait, as
 * ST_ERR_SERVER. A failed write, a lost connection or an oversized line
 * (over 64 MiB) leave the connection unusable: later calls give ST_ERR_IO.
 * A read timeout does not: one may wait again. */
int st_wait(struct st_client *c, int64_t id, json_t **result,
    struct st_error *err);

/* Raw access for tests and `strapontin call --raw`: st_send_raw() writes
 * bytes as they are (the caller adds "\n"); st_read_message() returns the
 * messages kept by st_wait()/st_next_event() first, then reads the next
 * non-blank line the server sends, parsed (ST_ERR_PROTOCOL if it is not a
 * JSON object or array: the line is then lost; use st_read_line() to see
 * it). */
int st_send_raw(struct st_client *c, const char *data, size_t len,
    struct st_error *err);
int st_read_message(struct st_client *c, json_t **msg, int timeout_ms,
    struct st_error *err);
/* Reads the next line from the wire as it is: *line gets a malloc'd,
 * NUL-terminated copy without the "\n" (free() it), *len (if not NULL) its
 * length. Kept messages are not looked at. */
int st_read_line(struct st_client *c, char **line, size_t *len,
    int timeout_ms, struct st_error *err);

/* Server events (notifications with method "event") received so far or
 * within timeout_ms: *event gets its params {topic, data}. ST_ERR_TIMEOUT if
 * none came. */
int st_next_event(struct st_client *c, json_t **event, int timeout_ms,
    struct st_error *err);

/* The TLS version negotiated, e.g. "TLSv1.3". */
const char *st_tls_version(const struct st_client *c);
/* The socket, for poll() by callers that multiplex many clients. poll()
 * cannot see what the library already read: call st_buffered() first. */
int st_fd(const struct st_client *c);
/* True when a message can be had without reading the socket (kept
 * messages, a whole line buffered, or TLS data already decrypted). */
bool st_buffered(const struct st_client *c);

void st_error_clear(struct st_error *err);
/* "sold out: 0 of 40 seats left" style one-line description of an error:
 * for ST_ERR_SERVER "<message> (<reason>[, field <field>])" unless the
 * reason has its own wording; for library errors err->message. The string
 * lives in a thread-local buffer until the next call in the same thread. */
const char *st_strerror(const struct st_error *err);

#ifdef __cplusplus
}
#endif
#endif
