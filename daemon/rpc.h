/*
 * JSON-RPC 2.0: turns a line into requests, dispatches them through the
 * method table, and writes their answers back (alone, or gathered into one
 * array for a batch). A request holds a reference on its connection, so an
 * answer that comes after the client left is dropped safely.
 */
#ifndef RPC_H
#define RPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct conn;
struct batch;
struct method;

/* JSON-RPC and SPEC §4 error codes. */
#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_INTERNAL_ERROR -32603

struct request {
	struct conn *conn;          /* referenced */
	struct batch *batch;        /* or NULL */
	size_t batch_slot;
	json_t *id;                 /* NULL for a notification */
	const struct method *method;
	json_t *params;             /* always an object */
	uint64_t seq;               /* server-wide request number, for logs */
	uint64_t started_ms;
	void *ctx;                  /* the handler's own state */
	/* for handlers built on methods_sql_call(): sees the result */
	void (*sql_after)(struct request *req, json_t *result);
};

/* Handles one complete line (without its "\n") received on conn. */
void rpc_handle_line(struct conn *conn, const char *line, size_t len);

/* Ends req with a result (reference stolen). */
void rpc_reply(struct request *req, json_t *result);
/* Ends req with an error. reason is the stable word; the HTTP-like or
 * JSON-RPC code is derived from it (rpc_code_for_reason). field may be
 * NULL; data (stolen, may be NULL) is merged into error.data. */
void rpc_error(struct request *req, const char *reason, const char *field,
    json_t *data, const char *fmt, ...) PRINTFLIKE(5, 6);
/* Ends req with internal_error, logging detail with the request number. */
void rpc_internal(struct request *req, const char *detail);

int rpc_code_for_reason(const char *reason);
/* A standalone error message (id may be NULL), for framing errors. */
json_t *rpc_error_message(json_t *id, int code, const char *reason,
    const char *message);

#endif
