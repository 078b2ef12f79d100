#include "booking_batch.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config.h"
#include "db.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "rpc.h"
#include "session.h"
#include "sqlcall.h"
#include "util.h"

/* One call of booking_create_batch(): its requests, in order, and the
 * offers they name, which no other call may name while it is under way. */
struct call {
	struct request **reqs;
	size_t n;
	json_int_t *offers;
	size_t noffers;
};

static struct {
	struct app *app;
	struct request **queue;	/* waiting, oldest first */
	uint64_t *since;	/* when each began to wait */
	size_t n, cap;
	int inflight;		/* calls sent, not yet answered */
	json_int_t *busy;	/* the offers of the calls under way */
	size_t nbusy, busy_cap;
	struct event *flush;	/* sends what waits, after this loop pass */
	struct event *expire;	/* answers what waited too long */
	bool flush_pending;
	unsigned long long calls, requests;
} bb;

static void flush_cb(evutil_socket_t fd, short what, void *arg);
static void expire_cb(evutil_socket_t fd, short what, void *arg);

/* How often waiting requests are checked against queue_timeout. */
#define EXPIRE_EVERY_MS 250

void
booking_batch_start(struct app *app)
{
	memset(&bb, 0, sizeof bb);
	bb.app = app;
	bb.flush = event_new(app->base, -1, 0, flush_cb, NULL);
	bb.expire = evtimer_new(app->base, expire_cb, NULL);
	if (bb.flush == NULL || bb.expire == NULL)
		fatal("cannot create the booking batch event");
}

static void
schedule_flush(void)
{
	if (!bb.flush_pending) {
		bb.flush_pending = true;
		event_active(bb.flush, 0, 0);
	}
}

/* {"token": …, "params": …, "addr": …} for each request. */
static char *
items_json(struct request **reqs, size_t n)
{
	json_t *a = json_array();
	char *s;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct session *ss = rpc_peer_session(reqs[i]->peer);

		json_array_append_new(a, json_pack("{s:s?, s:O, s:s}",
		    "token", ss->bound ? ss->token_hash : NULL,
		    "params", reqs[i]->params,
		    "addr", rpc_peer_addr(reqs[i]->peer)));
	}
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (s == NULL)
		fatal("cannot serialise a booking batch");
	return s;
}

/* One request's share of the answer: {"result": …} or {"error": {reason,
 * message, data}}. */
static void
answer_one(struct request *req, json_t *r)
{
	json_t *result = json_object_get(r, "result");
	json_t *err = json_object_get(r, "error");

	if (result != NULL) {
		rpc_reply(req, json_incref(result));
		return;
	}
	if (!json_is_object(err) || !sqlcall_error_json(req, err))
		rpc_internal(req, "booking_create_batch: malformed answer");
}

static json_int_t
offer_of(const struct request *req)
{
	return json_integer_value(json_object_get(req->params, "offer_id"));
}

static bool
in(const json_int_t *set, size_t n, json_int_t v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (set[i] == v)
			return true;
	return false;
}

static void
busy_add(json_int_t offer)
{
	if (bb.nbusy == bb.busy_cap) {
		bb.busy_cap = bb.busy_cap ? bb.busy_cap * 2 : 64;
		bb.busy = xrealloc(bb.busy, bb.busy_cap * sizeof *bb.busy);
	}
	bb.busy[bb.nbusy++] = offer;
}

static void
busy_remove(json_int_t offer)
{
	size_t i;

	for (i = 0; i < bb.nbusy; i++)
		if (bb.busy[i] == offer) {
			bb.busy[i] = bb.busy[--bb.nbusy];
			return;
		}
}

static void
call_done(PGresult *res, enum db_status st, void *arg)
{
	struct call *c = arg;
	json_t *answers = NULL;
	size_t i;

	bb.inflight--;
	for (i = 0; i < c->noffers; i++)
		busy_remove(c->offers[i]);
	if (st == DB_OK)
		answers = sqlcall_json(res);
	for (i = 0; i < c->n; i++) {
		if (st != DB_OK)
			sqlcall_error(c->reqs[i], res, st);
		else if (!json_is_array(answers) ||
		    json_array_size(answers) != c->n)
			rpc_internal(c->reqs[i],
			    "booking_create_batch: wrong number of answers");
		else
			answer_one(c->reqs[i], json_array_get(answers, i));
	}
	json_decref(answers);
	free(c->reqs);
	free(c->offers);
	free(c);
	/* The bookings wrote events (the outbox): read them now. */
	if (st == DB_OK)
		events_kick();
	if (bb.n > 0)
		schedule_flush();
}

/*
 * Takes out of the queue, oldest first, up to max requests whose offers
 * no call under way names, into a new call. The others keep their place:
 * the requests of one offer go in the order they came. Calls on one offer
 * would only wait for each other on its row lock, each through its own
 * commit; held here, they go together in the next call instead.
 */
static struct call *
take_call(size_t max)
{
	struct call *c = xcalloc(1, sizeof *c);
	size_t i, kept = 0;

	c->reqs = xcalloc(max, sizeof *c->reqs);
	c->offers = xcalloc(max, sizeof *c->offers);
	for (i = 0; i < bb.n; i++) {
		json_int_t o = offer_of(bb.queue[i]);

		if (c->n < max && !in(bb.busy, bb.nbusy, o)) {
			c->reqs[c->n++] = bb.queue[i];
			if (!in(c->offers, c->noffers, o))
				c->offers[c->noffers++] = o;
			continue;
		}
		bb.queue[kept] = bb.queue[i];
		bb.since[kept++] = bb.since[i];
	}
	bb.n = kept;
	if (c->n == 0) {
		free(c->reqs);
		free(c->offers);
		free(c);
		return NULL;
	}
	for (i = 0; i < c->noffers; i++)
		busy_add(c->offers[i]);
	return c;
}

static void
send_call(struct call *c)
{
	const char *values[2];
	char *items;
	size_t n = c->n;

	items = items_json(c->reqs, n);
	values[0] = items;
	values[1] = bb.app->policy_json;
	bb.inflight++;
	bb.calls++;
	bb.requests += n;
	metrics_add(M_BOOKING_BATCHES, 1);
	metrics_observe(M_BOOKING_BATCH_SIZE, (double)n);
	db_exec(bb.app->db, sqlcall_stmt(STMT_BOOKING_CREATE_BATCH), 2, values,
	    call_done, c);
	free(items);
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	const struct config *cfg = bb.app->cfg;
	size_t max = (size_t)cfg->db_booking_batch_max;

	long long limit = cfg->db_booking_batch_inflight > 0 ?
	    cfg->db_booking_batch_inflight : cfg->db_pool_size;
	struct call *c;

	bb.flush_pending = false;
	while (bb.n > 0 && bb.inflight < limit && (c = take_call(max)) != NULL)
		send_call(c);
}

static void
arm_expire(void)
{
	struct timeval tv = {0, EXPIRE_EVERY_MS * 1000};

	/* Fails only when libevent cannot allocate: then nothing would
	 * expire, which the log must say. */
	if (!evtimer_pending(bb.expire, NULL) &&
	    evtimer_add(bb.expire, &tv) == -1)
		log_error("booking batch: cannot arm the queue timer");
}

/* A request waits here at most database.queue_timeout, as it would in the
 * pool's queue: while the database does not answer (the calls under way
 * hang), the others are told so in time rather than waiting with them. */
static void
expire_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t limit = (uint64_t)bb.app->cfg->db_queue_timeout * 1000;
	uint64_t now = now_ms();
	size_t k = 0, i;

	while (k < bb.n && now - bb.since[k] >= limit)
		k++;
	if (k > 0) {
		struct request **old = xcalloc(k, sizeof *old);

		memcpy(old, bb.queue, k * sizeof *old);
		bb.n -= k;
		memmove(bb.queue, bb.queue + k, bb.n * sizeof *bb.queue);
		memmove(bb.since, bb.since + k, bb.n * sizeof *bb.since);
		for (i = 0; i < k; i++)
			rpc_error(old[i], "unavailable", NULL, NULL,
			    "The database is unavailable; try again shortly.");
		free(old);
	}
	if (bb.n > 0)
		arm_expire();
}

void
booking_batch_stats(unsigned long long *calls, unsigned long long *requests)
{
	*calls = bb.calls;
	*requests = bb.requests;
}

void
booking_batch_submit(struct request *req)
{
	if (bb.n == bb.cap) {
		bb.cap = bb.cap ? bb.cap * 2 : 64;
		bb.queue = xrealloc(bb.queue, bb.cap * sizeof *bb.queue);
		bb.since = xrealloc(bb.since, bb.cap * sizeof *bb.since);
	}
	bb.since[bb.n] = now_ms();
	bb.queue[bb.n++] = req;
	arm_expire();
	/* Not at once: the requests read in this loop pass go together. */
	schedule_flush();
}

void
booking_batch_stop(void)
{
	struct request **old;
	size_t n, i;

	/* An answer can let a peer send another booking.create, which lands
	 * in the queue: answer a detached copy, until none is left. */
	while (bb.n > 0) {
		old = bb.queue;
		n = bb.n;
		bb.queue = NULL;
		bb.n = bb.cap = 0;
		free(bb.since);
		bb.since = NULL;
		for (i = 0; i < n; i++)
			rpc_error(old[i], "unavailable", NULL, NULL,
			    "The server is stopping; try again shortly.");
		free(old);
	}
	free(bb.queue);
	free(bb.since);
	free(bb.busy);
	if (bb.flush != NULL)
		event_free(bb.flush);
	if (bb.expire != NULL)
		event_free(bb.expire);
	memset(&bb, 0, sizeof bb);
}
