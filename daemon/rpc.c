#include "rpc.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "log.h"
#include "metrics.h"

TAILQ_HEAD(batch_queue, batch);

struct rpc_peer {
	const struct rpc_transport *t;
	void *tctx;
	int refs;
	bool alive;
	bool paused;                /* as last told to the transport */
	bool blocked;               /* rpc_peer_block() */
	unsigned inflight;          /* requests dispatched, not yet ended */
	/* Batches with elements not yet dispatched, oldest first: any answer
	 * that makes room pumps them, whichever request it ends. */
	struct batch_queue batches;
	uint64_t requests;          /* dispatched, for the log */
	char addr[64];
	char tag[128];              /* transport tag, then " user=N" */
	char base_tag[96];
	struct session session;
};

/* A batch gathers the answers of its elements, serialised, and sends
 * them as one array once the last is in. Slots of notifications stay
 * NULL. Each holder (the input that parsed it, a pump, an answer being
 * delivered, a scheduled pump) counts as one pending answer. */
struct batch {
	struct rpc_peer *peer;      /* held */
	json_t *elements;
	char **slots;
	size_t *lens;
	size_t n;
	size_t next;                /* first element not yet dispatched */
	size_t pending;
	size_t bytes;               /* of the answers so far */
	bool pumping;
	bool scheduled;
	bool queued;                /* in its peer's batches */
	TAILQ_ENTRY(batch) entry;
};

static struct {
	struct event_base *base;
	const struct rpc_hooks *hooks;
	struct app *app;
	struct rpc_limits limits;
	uint64_t requests;
} rpc;

/* The one table of error reasons (docs/protocol.md lists them). */
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
	{"wrong_offer", 409},
	{"permanence_state", 409},
	{"seats_taken", 409},
	{"waitlist_state", 409},
	{"too_large", 413},
	{"rate_limited", 429},
	{"unavailable", 503},
	{"timeout", 504},
};

static void handle_one(struct rpc_peer *p, struct batch *b, size_t slot,
    json_t *m);
static void batch_pump(struct batch *b);
static void peer_pump(struct rpc_peer *p);

int
rpc_code_for_reason(const char *reason)
{
	size_t i;

	for (i = 0; i < nitems(reason_codes); i++)
		if (strcmp(reason_codes[i].reason, reason) == 0)
			return reason_codes[i].code;
	return 0;
}

const char *
rpc_reason_at(size_t i)
{
	return i < nitems(reason_codes) ? reason_codes[i].reason : NULL;
}

void
rpc_init(struct event_base *base, const struct rpc_hooks *hooks,
    struct app *app, const struct rpc_limits *limits)
{
	rpc.base = base;
	rpc.hooks = hooks;
	rpc.app = app;
	rpc.limits = *limits;
}

void
rpc_set_limits(const struct rpc_limits *limits)
{
	rpc.limits = *limits;
}

uint64_t
rpc_requests_total(void)
{
	return rpc.requests;
}

/* ---- peers ------------------------------------------------------------- */

struct rpc_peer *
rpc_peer_new(const struct rpc_transport *t, void *tctx, const char *addr,
    const char *tag)
{
	struct rpc_peer *p = xcalloc(1, sizeof *p);

	p->t = t;
	p->tctx = tctx;
	p->refs = 1;	/* the transport's */
	p->alive = true;
	TAILQ_INIT(&p->batches);
	snprintf(p->addr, sizeof p->addr, "%s", addr);
	snprintf(p->base_tag, sizeof p->base_tag, "%s", tag);
	snprintf(p->tag, sizeof p->tag, "%s", tag);
	return p;
}

void
rpc_peer_hold(struct rpc_peer *p)
{
	p->refs++;
}

void
rpc_peer_release(struct rpc_peer *p)
{
	if (--p->refs > 0)
		return;
	log_debug("%s freed after %llu requests", p->tag,
	    (unsigned long long)p->requests);
	explicit_bzero(&p->session, sizeof p->session);
	free(p);
}

void
rpc_peer_gone(struct rpc_peer *p)
{
	if (!p->alive)
		return;
	p->alive = false;
	/* The transport's reference keeps p alive across the hook and the
	 * pump, which drops what its batches had not dispatched. */
	rpc.hooks->peer_gone(p);
	peer_pump(p);
	rpc_peer_release(p);
}

bool
rpc_peer_alive(const struct rpc_peer *p)
{
	return p->alive;
}

const char *
rpc_peer_addr(const struct rpc_peer *p)
{
	return p->addr;
}

const char *
rpc_peer_tag(const struct rpc_peer *p)
{
	return p->tag;
}

unsigned
rpc_peer_inflight(const struct rpc_peer *p)
{
	return p->inflight;
}

bool
rpc_peer_idle(const struct rpc_peer *p)
{
	return p->inflight == 0 && TAILQ_EMPTY(&p->batches);
}

bool
rpc_peer_take_token(struct rpc_peer *p, const char *token)
{
	return p->alive && p->t->take_token != NULL &&
	    p->t->take_token(p->tctx, token);
}

const struct session *
rpc_peer_session(const struct rpc_peer *p)
{
	return &p->session;
}

enum role
rpc_peer_role(const struct rpc_peer *p)
{
	return p->session.bound ? p->session.role : ROLE_ANON;
}

static void
peer_update_tag(struct rpc_peer *p)
{
	if (p->session.bound)
		snprintf(p->tag, sizeof p->tag, "%s user=%lld", p->base_tag,
		    (long long)p->session.user_id);
	else
		snprintf(p->tag, sizeof p->tag, "%s", p->base_tag);
}

void
rpc_peer_bind(struct rpc_peer *p, const struct session *s)
{
	p->session = *s;
	p->session.bound = true;
	peer_update_tag(p);
	if (p->alive)
		p->t->session_changed(p->tctx, true);
}

void
rpc_peer_unbind(struct rpc_peer *p)
{
	explicit_bzero(&p->session, sizeof p->session);
	peer_update_tag(p);
	if (p->alive)
		p->t->session_changed(p->tctx, false);
}

/* Input stops while the peer has max_inflight requests in flight, while
 * one of its batches still has elements to dispatch (so a client cannot
 * pile batches up), and while blocked. */
static void
peer_update_pause(struct rpc_peer *p)
{
	bool want = p->blocked || !TAILQ_EMPTY(&p->batches) ||
	    p->inflight >= rpc.limits.max_inflight;

	if (!p->alive || want == p->paused)
		return;
	p->paused = want;
	p->t->pause(p->tctx, want);
}

void
rpc_peer_block(struct rpc_peer *p, bool blocked)
{
	p->blocked = blocked;
	peer_update_pause(p);
}

static void
peer_send(struct rpc_peer *p, const char *buf, size_t len)
{
	if (p->alive)
		p->t->send(p->tctx, buf, len);
}

void
rpc_peer_push_event(struct rpc_peer *p, const char *line, size_t len)
{
	static const char resync[] = "{\"jsonrpc\":\"2.0\",\"method\":"
	    "\"event\",\"params\":{\"topic\":\"resync\",\"data\":"
	    "{\"reason\":\"too many events waiting: this client reads too "
	    "slowly\"}}}";

	if (!p->alive)
		return;
	metrics_add(M_EVENTS_QUEUED, 1);
	if (p->t->send_event(p->tctx, line, len, false))
		return;
	metrics_add(M_EVENTS_DROPPED, 1);
	p->t->drop_events(p->tctx);
	p->t->send_event(p->tctx, resync, sizeof resync - 1, true);
	p->t->send_event(p->tctx, line, len, true);
}

static void
peer_request_started(struct rpc_peer *p)
{
	if (p->inflight++ == 0 && p->alive)
		p->t->busy(p->tctx, true);
	peer_update_pause(p);
}

static void
peer_request_ended(struct rpc_peer *p)
{
	if (--p->inflight == 0 && p->alive)
		p->t->busy(p->tctx, false);
	peer_update_pause(p);
}

/* ---- answers ----------------------------------------------------------- */

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

static json_t *
error_message(json_t *id, int code, const char *reason, const char *field,
    const char *message)
{
	return json_pack("{s:s, s:O?, s:o}", "jsonrpc", "2.0", "id", id,
	    "error", error_object(code, reason, field, NULL, message));
}

/* An answer over room becomes too_large, keeping its id, so the client
 * knows which request it was. Takes s; returns what to send. */
static char *
fit(char *s, size_t *len, size_t room, json_t *id)
{
	json_t *e;

	if (*len <= room)
		return s;
	e = error_message(id, 413, "too_large", NULL, "The answer is too "
	    "large; ask for less (a smaller page or range).");
	free(s);
	s = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	if (s == NULL)
		fatal("cannot serialise an answer");
	*len = strlen(s);
	return s;
}

static void
batch_hold(struct batch *b)
{
	b->pending++;
}

static void
batch_finish(struct batch *b)
{
	struct rpc_peer *p = b->peer;
	size_t i, total = 1, at = 0, count = 0;
	char *out;

	for (i = 0; i < b->n; i++)
		if (b->slots[i] != NULL)
			total += b->lens[i] + 1;
	out = xmalloc(total + 1);
	out[at++] = '[';
	for (i = 0; i < b->n; i++) {
		if (b->slots[i] == NULL)
			continue;
		if (count++ > 0)
			out[at++] = ',';
		memcpy(out + at, b->slots[i], b->lens[i]);
		at += b->lens[i];
		free(b->slots[i]);
	}
	out[at++] = ']';
	/* A batch of notifications alone gets no answer at all. */
	if (count > 0)
		peer_send(p, out, at);
	free(out);
	json_decref(b->elements);
	free(b->slots);
	free(b->lens);
	free(b);
	rpc_peer_release(p);
}

static void
batch_release(struct batch *b)
{
	if (--b->pending == 0)
		batch_finish(b);
}

/* Puts one answer (stolen, may be NULL) where it belongs. */
/* Sends or files the answer s (taken), id being its request's. */
static void
deliver_text(struct rpc_peer *p, struct batch *b, size_t slot, char *s,
    size_t len, json_t *id)
{
	size_t room = rpc.limits.max_answer;

	if (b != NULL)
		room = b->bytes < room ? room - b->bytes : 0;
	s = fit(s, &len, room, id);
	if (b == NULL) {
		peer_send(p, s, len);
		free(s);
		return;
	}
	b->slots[slot] = s;
	b->lens[slot] = len;
	b->bytes += len + 1;
	batch_release(b);
}

static void
deliver(struct rpc_peer *p, struct batch *b, size_t slot, json_t *msg)
{
	char *s;

	if (msg == NULL) {
		if (b != NULL)
			batch_release(b);
		return;
	}
	if ((s = json_dumps(msg, JSON_COMPACT)) == NULL)
		fatal("cannot serialise an answer");
	deliver_text(p, b, slot, s, strlen(s), json_object_get(msg, "id"));
	json_decref(msg);
}

/* A method's name is a label only once the method table knew it: a
 * client's made-up names would make series without end. */
static void
request_count(const struct request *req)
{
	const char *method = req->method != NULL ? req->method_name :
	    "unknown";

	metrics_add(M_REQUESTS, 1, method, req->outcome != NULL ?
	    req->outcome : "ok");
	metrics_observe(M_REQUEST_SECONDS, (double)(now_ms() -
	    req->started_ms) / 1000.0, method);
}

static void
request_end(struct request *req, json_t *msg, char *text, size_t len)
{
	struct rpc_peer *p = req->peer;
	struct batch *b = req->batch;

	if (req->id == NULL) {	/* notification: never answered */
		json_decref(msg);
		msg = NULL;
		free(text);
		text = NULL;
	}
	log_debug("%s #%llu %s %llums", p->tag, (unsigned long long)req->seq,
	    req->method_name, (unsigned long long)(now_ms() - req->started_ms));
	request_count(req);
	/* Held across the delivery, which may be the batch's last answer,
	 * and across the pump that the room made by this answer allows. */
	if (b != NULL)
		batch_hold(b);
	if (text != NULL)
		deliver_text(p, b, req->batch_slot, text, len, req->id);
	else
		deliver(p, b, req->batch_slot, msg);
	json_decref(req->msg);
	free(req);
	peer_request_ended(p);
	/* The room this answer made goes to the oldest waiting batch, which
	 * may not be this request's. */
	peer_pump(p);
	if (b != NULL)
		batch_release(b);
	rpc_peer_release(p);
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
	request_end(req, msg, NULL, 0);
}

void
rpc_reply_text(struct request *req, const char *json, size_t len)
{
	static const char head[] = "{\"jsonrpc\":\"2.0\",\"id\":";
	static const char mid[] = ",\"result\":";
	char *idstr, *out;
	size_t idlen, at, i;

	if (req->id == NULL) {
		request_end(req, NULL, NULL, 0);
		return;
	}
	if ((idstr = json_dumps(req->id, JSON_COMPACT | JSON_ENCODE_ANY)) ==
	    NULL)
		fatal("cannot serialise an id");
	idlen = strlen(idstr);
	out = xmalloc(sizeof head + idlen + sizeof mid + len + 2);
	memcpy(out, head, sizeof head - 1);
	at = sizeof head - 1;
	memcpy(out + at, idstr, idlen);
	at += idlen;
	memcpy(out + at, mid, sizeof mid - 1);
	at += sizeof mid - 1;
	free(idstr);
	/* JSON allows a newline between tokens (json_agg() writes some), our
	 * framing does not; inside a string one is always escaped. */
	for (i = 0; i < len; i++)
		out[at++] = json[i] == '\n' || json[i] == '\r' ? ' ' : json[i];
	out[at++] = '}';
	out[at] = '\0';
	request_end(req, NULL, out, at);
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
		log_error("%s #%llu %s: unknown error reason %s", req->peer->tag,
		    (unsigned long long)req->seq, req->method_name, reason);
		code = RPC_INTERNAL_ERROR;
		reason = "internal_error";
	}
	req->outcome = reason;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (req->id != NULL)
		msg = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id",
		    req->id, "error", error_object(code, reason, field, data,
		    text));
	else
		json_decref(data);
	request_end(req, msg, NULL, 0);
}

void
rpc_internal(struct request *req, const char *detail)
{
	log_error("%s #%llu %s: internal error: %s", req->peer->tag,
	    (unsigned long long)req->seq, req->method_name, detail);
	rpc_error(req, "internal_error", NULL, json_pack("{s:I}", "request",
	    (json_int_t)req->seq), "Internal error; it has been logged as "
	    "request %llu.", (unsigned long long)req->seq);
}

/* ---- requests ---------------------------------------------------------- */

/* An envelope error: answered even without an id (JSON-RPC 2.0 §5). */
static void
early_error(struct rpc_peer *p, struct batch *b, size_t slot, json_t *id,
    const char *field, const char *message)
{
	metrics_add(M_REQUESTS, 1, "unknown", "invalid_request");
	if (b != NULL)
		batch_hold(b);
	deliver(p, b, slot, error_message(id, RPC_INVALID_REQUEST,
	    "invalid_request", field, message));
	if (b != NULL)
		batch_release(b);
}

static bool
valid_id(json_t *id)
{
	return json_is_string(id) || json_is_integer(id) || json_is_real(id) ||
	    json_is_null(id);
}

static void
handle_one(struct rpc_peer *p, struct batch *b, size_t slot, json_t *m)
{
	json_t *id, *jv, *jm, *params;
	struct request *req;

	if (!json_is_object(m)) {
		early_error(p, b, slot, NULL, NULL,
		    "A request must be a JSON object.");
		return;
	}
	id = json_object_get(m, "id");
	if (id != NULL && !valid_id(id)) {
		early_error(p, b, slot, NULL, "id",
		    "id must be a string, a number or null.");
		return;
	}
	jv = json_object_get(m, "jsonrpc");
	jm = json_object_get(m, "method");
	params = json_object_get(m, "params");
	if (!json_is_string(jv) || strcmp(json_string_value(jv), "2.0") != 0) {
		early_error(p, b, slot, id, "jsonrpc",
		    "jsonrpc must be \"2.0\".");
		return;
	}
	if (!json_is_string(jm)) {
		early_error(p, b, slot, id, "method",
		    "method must be a string.");
		return;
	}
	if (params != NULL && !json_is_object(params) && !json_is_array(params)) {
		early_error(p, b, slot, id, "params",
		    "params must be an object or an array.");
		return;
	}
	if (params == NULL) {
		/* Absent params are no params: handlers always see one. */
		params = json_object();
		json_object_set_new(m, "params", params);
	}
	req = xcalloc(1, sizeof *req);
	req->peer = p;
	rpc_peer_hold(p);
	req->app = rpc.app;
	req->msg = json_incref(m);
	req->id = id;
	req->method_name = json_string_value(jm);
	req->params = params;
	req->seq = ++rpc.requests;
	p->requests++;
	req->started_ms = now_ms();
	req->batch = b;
	req->batch_slot = slot;
	peer_request_started(p);
	rpc.hooks->dispatch(req);
}

static void
batch_pump_cb(evutil_socket_t fd, short what, void *arg)
{
	struct batch *b = arg;

	b->scheduled = false;
	batch_pump(b);
	batch_release(b);	/* the scheduled pump's hold */
}

/* Dispatches a batch's elements while the peer has room under
 * max_inflight. Elements answered at once count against that room too,
 * and the pump yields to the loop between rounds, so a batch of a
 * hundred invalid elements cannot hold the loop: it flows through a
 * round at a time, and its requests never land on the database all at
 * once. Answers that make room pump again. */
static void
batch_pump(struct batch *b)
{
	struct rpc_peer *p = b->peer;
	unsigned room;
	struct timeval zero = {0, 0};

	if (b->pumping || b->scheduled)
		return;
	batch_hold(b);
	b->pumping = true;
	room = p->inflight < rpc.limits.max_inflight ?
	    rpc.limits.max_inflight - p->inflight : 0;
	while (b->next < b->n && room > 0 && p->alive) {
		size_t i = b->next++;

		room--;
		handle_one(p, b, i, json_array_get(b->elements, i));
	}
	b->pumping = false;
	if (!p->alive && b->next < b->n) {
		/* The client left: what was never dispatched is dropped. */
		b->pending -= b->n - b->next;
		b->next = b->n;
	} else if (b->next < b->n && p->inflight < rpc.limits.max_inflight) {
		/* Room left but the round is spent: the next round after
		 * the loop has served everyone else. */
		b->scheduled = true;
		batch_hold(b);
		event_base_once(rpc.base, -1, EV_TIMEOUT, batch_pump_cb, b,
		    &zero);
	}
	if (b->next == b->n && b->queued) {
		/* Every element is out: the peer may send more. */
		TAILQ_REMOVE(&p->batches, b, entry);
		b->queued = false;
		peer_update_pause(p);
	}
	batch_release(b);
}

/* Pumps the peer's waiting batches, oldest first, while they take what
 * room there is (or, the peer gone, drop what they had not dispatched). */
static void
peer_pump(struct rpc_peer *p)
{
	struct batch *b;

	rpc_peer_hold(p);
	while ((b = TAILQ_FIRST(&p->batches)) != NULL && !b->pumping &&
	    !b->scheduled && (!p->alive ||
	    p->inflight < rpc.limits.max_inflight)) {
		batch_hold(b);
		batch_pump(b);
		/* Still first: it has more than the room (or it yielded). */
		if (TAILQ_FIRST(&p->batches) == b) {
			batch_release(b);
			break;
		}
		batch_release(b);
	}
	rpc_peer_release(p);
}

static void
handle_batch(struct rpc_peer *p, json_t *m)
{
	size_t n = json_array_size(m);
	struct batch *b;
	char text[96];

	if (n == 0) {
		early_error(p, NULL, 0, NULL, NULL,
		    "An empty batch is not a request.");
		return;
	}
	if (n > rpc.limits.max_batch) {
		snprintf(text, sizeof text, "A batch may hold at most %zu "
		    "requests.", rpc.limits.max_batch);
		early_error(p, NULL, 0, NULL, NULL, text);
		return;
	}
	b = xcalloc(1, sizeof *b);
	b->peer = p;
	rpc_peer_hold(p);
	b->elements = json_incref(m);
	b->n = n;
	b->slots = xcalloc(n, sizeof *b->slots);
	b->lens = xcalloc(n, sizeof *b->lens);
	b->pending = n;
	TAILQ_INSERT_TAIL(&p->batches, b, entry);
	b->queued = true;
	peer_update_pause(p);
	batch_hold(b);
	batch_pump(b);
	batch_release(b);
}

void
rpc_peer_input(struct rpc_peer *p, const char *buf, size_t len)
{
	json_error_t jerr;
	json_t *m;
	char text[300];

	/* Any JSON value parses; a non-object is then an invalid request, not
	 * a parse error. */
	m = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (m == NULL) {
		snprintf(text, sizeof text, "Not JSON: %s at column %d.",
		    jerr.text, jerr.column);
		metrics_add(M_REQUESTS, 1, "unknown", "parse_error");
		deliver(p, NULL, 0, json_pack("{s:s, s:n, s:{s:i, s:s, s:{s:s}}}",
		    "jsonrpc", "2.0", "id", "error", "code", RPC_PARSE_ERROR,
		    "message", text, "data", "reason", "parse_error"));
		return;
	}
	rpc_peer_hold(p);
	if (json_is_array(m))
		handle_batch(p, m);
	else
		handle_one(p, NULL, 0, m);
	json_decref(m);
	rpc_peer_release(p);
}
