#include "rpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "methods.h"
#include "server.h"

/* A batch gathers the answers of its requests into one array, sent when
 * the last one is answered. Slots of notifications stay NULL. */
struct batch {
	struct conn *conn;      /* referenced */
	json_t *elements;       /* the parsed array */
	json_t **slots;
	size_t n;
	size_t next;            /* first element not yet dispatched */
	size_t pending;         /* elements not yet answered or skipped */
	bool pumping;
};

static void handle_one(struct conn *c, struct batch *b, size_t slot, json_t *m);

static const struct {
	const char *reason;
	int code;
} reason_codes[] = {
	{"parse_error", RPC_PARSE_ERROR},
	{"invalid_request", RPC_INVALID_REQUEST},
	{"method_not_found", RPC_METHOD_NOT_FOUND},
	{"invalid_params", RPC_INVALID_PARAMS},
	{"internal_error", RPC_INTERNAL_ERROR},
	{"unauthenticated", 401},
	{"forbidden", 403},
	{"not_found", 404},
	{"sold_out", 409},
	{"deadline_passed", 409},
	{"offer_cancelled", 409},
	{"limit_reached", 409},
	{"duplicate", 409},
	{"already_used", 409},
	{"permanence_state", 409},
	{"seats_taken", 409},
	{"waitlist_state", 409},
	{"rate_limited", 429},
	{"unavailable", 503},
};

int
rpc_code_for_reason(const char *reason)
{
	size_t i;

	for (i = 0; i < nitems(reason_codes); i++)
		if (strcmp(reason_codes[i].reason, reason) == 0)
			return reason_codes[i].code;
	return 0;
}

json_t *
rpc_error_message(json_t *id, int code, const char *reason,
    const char *message)
{
	return json_pack("{s:s, s:O?, s:{s:i, s:s, s:{s:s}}}", "jsonrpc", "2.0",
	    "id", id, "error", "code", code, "message", message, "data",
	    "reason", reason);
}

static void
batch_finish(struct batch *b)
{
	json_t *out = json_array();
	size_t i;

	for (i = 0; i < b->n; i++)
		if (b->slots[i] != NULL)
			json_array_append_new(out, b->slots[i]);
	/* A batch of notifications alone gets no answer at all. */
	if (json_array_size(out) > 0)
		conn_send(b->conn, out);
	else
		json_decref(out);
	conn_unref(b->conn);
	json_decref(b->elements);
	free(b->slots);
	free(b);
}

/* A batch lives while it has answers to wait for (pending) and while
 * someone loops over it: each holder counts as one pending answer, so the
 * last answer delivered under a holder cannot free the batch under it. */
static void
batch_hold(struct batch *b)
{
	b->pending++;
}

static void
batch_release(struct batch *b)
{
	if (--b->pending == 0)
		batch_finish(b);
}

/* Dispatches a batch's elements while the connection has room under
 * server.max_inflight; answers make room and pump again, so a large batch
 * flows through instead of landing on the database all at once. Elements
 * answered at once may complete the batch: the pump holds it meanwhile. */
static void
batch_pump(struct batch *b)
{
	struct conn *c = b->conn;

	if (b->pumping)
		return;
	batch_hold(b);
	b->pumping = true;
	while (b->next < b->n && c->state != CONN_CLOSING &&
	    c->inflight < (unsigned)srv->cfg->max_inflight) {
		size_t i = b->next++;

		handle_one(c, b, i, json_array_get(b->elements, i));
	}
	b->pumping = false;
	/* The client left: what was never dispatched is dropped. */
	if (c->state == CONN_CLOSING && b->next < b->n) {
		b->pending -= b->n - b->next;
		b->next = b->n;
	}
	batch_release(b);
}

/* Puts one answer (stolen, may be NULL) where it belongs. */
static void
deliver(struct conn *c, struct batch *b, size_t slot, json_t *msg)
{
	if (b == NULL) {
		if (msg != NULL)
			conn_send(c, msg);
		return;
	}
	b->slots[slot] = msg;
	batch_release(b);
}

/* After an answer: a batch of c waiting for room may go on. */
static void
request_finished(struct conn *c, struct batch *b)
{
	if (b != NULL && b->pending > 0 && b->next < b->n)
		batch_pump(b);
}

static void
request_end(struct request *req, json_t *msg)
{
	struct conn *c = req->conn;
	struct batch *b = req->batch;

	if (req->id == NULL) {	/* notification: never answered */
		json_decref(msg);
		msg = NULL;
	}
	log_debug("%s #%llu %s %llums", c->tag, (unsigned long long)req->seq,
	    req->method->name,
	    (unsigned long long)(now_ms() - req->started_ms));
	/* Held across the delivery, which may be the batch's last answer,
	 * and the pump that the room made by this answer allows. */
	if (b != NULL)
		batch_hold(b);
	deliver(c, b, req->batch_slot, msg);
	json_decref(req->id);
	json_decref(req->params);
	free(req);
	conn_request_done(c);
	if (b != NULL) {
		request_finished(c, b);
		batch_release(b);
	}
	conn_unref(c);
}

void
rpc_reply(struct request *req, json_t *result)
{
	json_t *msg = NULL;

	if (req->id != NULL)
		msg = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id",
		    req->id, "result", result ? result : json_null());
	else
		json_decref(result);
	request_end(req, msg);
}

static json_t *
error_object(int code, const char *reason, const char *field, json_t *data,
    const char *message)
{
	json_t *d = json_is_object(data) ? json_incref(data) : json_object();

	json_object_set_new(d, "reason", json_string(reason));
	if (field != NULL)
		json_object_set_new(d, "field", json_string(field));
	json_decref(data);
	return json_pack("{s:i, s:s, s:o}", "code", code, "message", message,
	    "data", d);
}

void
rpc_error(struct request *req, const char *reason, const char *field,
    json_t *data, const char *fmt, ...)
{
	int code = rpc_code_for_reason(reason);
	json_t *msg = NULL;
	va_list ap;
	char text[512];

	if (code == 0) {
		log_error("%s #%llu %s: unknown error reason %s", req->conn->tag,
		    (unsigned long long)req->seq, req->method->name, reason);
		code = RPC_INTERNAL_ERROR;
		reason = "internal_error";
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (req->id != NULL)
		msg = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id",
		    req->id, "error", error_object(code, reason, field, data,
		    text));
	else
		json_decref(data);
	request_end(req, msg);
}

void
rpc_internal(struct request *req, const char *detail)
{
	log_error("%s #%llu %s: internal error: %s", req->conn->tag,
	    (unsigned long long)req->seq, req->method->name, detail);
	rpc_error(req, "internal_error", NULL, json_pack("{s:I}", "request",
	    (json_int_t)req->seq), "Internal error; it has been logged as "
	    "request %llu.", (unsigned long long)req->seq);
}

/* An error decided before any request object exists. */
static void
early_error(struct conn *c, struct batch *b, size_t slot, json_t *id,
    bool notification, int code, const char *reason, const char *field,
    const char *message)
{
	json_t *msg = NULL;

	if (!notification)
		msg = json_pack("{s:s, s:O?, s:o}", "jsonrpc", "2.0", "id", id,
		    "error", error_object(code, reason, field, NULL, message));
	deliver(c, b, slot, msg);
}

static bool
valid_id(json_t *id)
{
	return json_is_string(id) || json_is_integer(id) || json_is_real(id) ||
	    json_is_null(id);
}

static void
handle_one(struct conn *c, struct batch *b, size_t slot, json_t *m)
{
	json_t *id, *jv, *jm, *params;
	const struct method *method;
	struct request *req;
	enum role role;
	const char *field, *name;
	bool notification;
	char msg[256];

	if (!json_is_object(m)) {
		early_error(c, b, slot, NULL, false, RPC_INVALID_REQUEST,
		    "invalid_request", NULL, "A request must be a JSON object.");
		return;
	}
	id = json_object_get(m, "id");
	notification = id == NULL;
	if (id != NULL && !valid_id(id)) {
		early_error(c, b, slot, NULL, false, RPC_INVALID_REQUEST,
		    "invalid_request", "id",
		    "id must be a string, a number or null.");
		return;
	}
	jv = json_object_get(m, "jsonrpc");
	jm = json_object_get(m, "method");
	params = json_object_get(m, "params");
	if (!json_is_string(jv) || strcmp(json_string_value(jv), "2.0") != 0) {
		early_error(c, b, slot, id, false, RPC_INVALID_REQUEST,
		    "invalid_request", "jsonrpc", "jsonrpc must be \"2.0\".");
		return;
	}
	if (!json_is_string(jm)) {
		early_error(c, b, slot, id, false, RPC_INVALID_REQUEST,
		    "invalid_request", "method", "method must be a string.");
		return;
	}
	if (params != NULL && !json_is_object(params) && !json_is_array(params)) {
		early_error(c, b, slot, id, false, RPC_INVALID_REQUEST,
		    "invalid_request", "params",
		    "params must be an object or an array.");
		return;
	}
	name = json_string_value(jm);
	if ((method = methods_find(name)) == NULL) {
		early_error(c, b, slot, id, notification, RPC_METHOD_NOT_FOUND,
		    "method_not_found", NULL, "No such method.");
		return;
	}
	if (json_is_array(params)) {
		early_error(c, b, slot, id, notification, RPC_INVALID_PARAMS,
		    "invalid_params", "params",
		    "params must be an object of named parameters.");
		return;
	}
	role = c->session.bound ? c->session.role : ROLE_ANON;
	if (!(method->roles & role)) {
		if (role == ROLE_ANON)
			early_error(c, b, slot, id, notification, 401,
			    "unauthenticated", NULL, "Log in first.");
		else
			early_error(c, b, slot, id, notification, 403,
			    "forbidden", NULL,
			    "Your role may not call this method.");
		return;
	}
	params = params ? json_incref(params) : json_object();
	if (!params_validate(method->params, params, &field, msg, sizeof msg)) {
		early_error(c, b, slot, id, notification, RPC_INVALID_PARAMS,
		    "invalid_params", field, msg);
		json_decref(params);
		return;
	}

	req = xcalloc(1, sizeof *req);
	req->conn = c;
	conn_ref(c);
	req->batch = b;
	req->batch_slot = slot;
	req->id = id ? json_incref(id) : NULL;
	req->method = method;
	req->params = params;
	req->seq = ++srv->requests;
	req->started_ms = now_ms();
	c->inflight++;
	c->requests++;
	method->fn(req);
}

void
rpc_handle_line(struct conn *c, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *m;
	struct batch *b;
	size_t n;

	/* Any JSON value parses; a non-object is then an invalid request, not
	 * a parse error. */
	m = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (m == NULL) {
		char text[300];

		snprintf(text, sizeof text, "Not JSON: %s at column %d.",
		    jerr.text, jerr.column);
		conn_send(c, rpc_error_message(NULL, RPC_PARSE_ERROR,
		    "parse_error", text));
		return;
	}
	if (!json_is_array(m)) {
		handle_one(c, NULL, 0, m);
		json_decref(m);
		return;
	}
	if ((n = json_array_size(m)) == 0) {
		conn_send(c, rpc_error_message(NULL, RPC_INVALID_REQUEST,
		    "invalid_request", "An empty batch is not a request."));
		json_decref(m);
		return;
	}
	b = xcalloc(1, sizeof *b);
	b->conn = c;
	conn_ref(c);
	b->elements = m;
	b->n = n;
	b->slots = xcalloc(n, sizeof *b->slots);
	b->pending = n;
	batch_hold(b);
	batch_pump(b);
	batch_release(b);
}
