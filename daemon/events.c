#include "events.h"

#include <event2/event.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "app.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "rpc.h"
#include "sqlcall.h"
#include "util.h"

/* The outbox reader (docs/architecture.md, "Events: the outbox"). */
#define READ_LIMIT 500          /* rows per read; a full read reads again */
#define POLL_BUSY_MS 20         /* while there is activity... */
#define POLL_IDLE_MS 1000       /* ...and when there has been none for */
#define BUSY_FOR_MS 1000
#define ANNOUNCE_GAP_MS 10      /* at most one NOTIFY strapontin_outbox */
/* read_done()'s arg */
#define READ_KICKED 1           /* the read follows a change of ours */
#define READ_ROWS 2             /* it asked for rows (READ_LIMIT) */

static const char read_sql[] = "SELECT r_settled, r_fence_id, r_fence_xid, "
    "r_pruned, r_last, r_events FROM api.events_read($1::bigint, $2::bigint, "
    "$3::bigint, $4::xid8, $5::integer)";
static const char announce_sql[] = "NOTIFY " EVENTS_OUTBOX_CHANNEL;

const char *const events_topics[EVENTS_TOPICS + 1] = {"offer.published",
    "offer.cancelled", "offer.seats_changed", "booking.created",
    "booking.cancelled", "waitlist.offered", "offer.opened", NULL};

struct subscriber {
	struct rpc_peer *peer;      /* held */
	unsigned topics;            /* bits of events_topics */
	long long after;            /* outbox id at subscription: older rows
	                             * are not this subscriber's */
	TAILQ_ENTRY(subscriber) entry;
};

static TAILQ_HEAD(, subscriber) subscribers =
    TAILQ_HEAD_INITIALIZER(subscribers);
static struct app *events_app;
static bool listener_lost;
static bool checking;

/* The reader's position in the outbox: rows up to `settled` are final
 * (api.events_read() in sql/api/90_events.sql), `pos` is the last one handled. */
static struct {
	bool started;           /* pos is known */
	long long pos;
	long long settled;
	long long fence_id;
	char fence_xid[24];     /* "": no fence pending */
	long long pruned_mark;  /* the pruning mark last resynced for */
	long long last;         /* the sequence's last id, as last read */
	long long announced;    /* the last id NOTIFY told the others about */
	bool halted;            /* events_halt(): the pool is going */
	bool reading;
	bool again;             /* woken while reading: read once more */
	bool kicked;            /* a local change since the last read began */
	uint64_t active_ms;     /* last sign of activity */
	uint64_t announced_ms;
	uint64_t read_ms;       /* when the last read began */
	struct event *poll;
	struct event *announce;
} rd;

static void read_start(void);

static unsigned
topic_bit(const char *topic)
{
	size_t i;

	for (i = 0; events_topics[i] != NULL; i++)
		if (strcmp(events_topics[i], topic) == 0)
			return 1u << i;
	return 0;
}

static void
subscriber_free(struct subscriber *s)
{
	TAILQ_REMOVE(&subscribers, s, entry);
	metrics_add(M_EVENT_SUBSCRIBERS, -1);
	rpc_peer_release(s->peer);
	free(s);
}

static struct subscriber *
subscriber_find(const struct rpc_peer *p)
{
	struct subscriber *s;

	TAILQ_FOREACH(s, &subscribers, entry)
		if (s->peer == p)
			return s;
	return NULL;
}

void
events_peer_gone(struct rpc_peer *p)
{
	struct subscriber *s = subscriber_find(p);

	if (s != NULL)
		subscriber_free(s);
}

/* Whether id is in the array of ids. */
static bool
in_ids(json_t *ids, json_int_t id)
{
	size_t i;
	json_t *v;

	json_array_foreach(ids, i, v)
		if (json_integer_value(v) == id)
			return true;
	return false;
}

/* Offers are public to every role, but an offer kept for its targets
 * (docs/booking-rules.md, "Targeted offers") only to the referents of
 * its audience; the rest to the partner whose offer it is and to the
 * structure whose person it is. */
static bool
visible(const struct session *s, const char *topic, json_int_t partner_id,
    json_int_t structure_id, json_t *audience)
{
	if (s->role == ROLE_ADMIN)
		return true;
	if (strncmp(topic, "offer.", 6) == 0)
		return s->role != ROLE_REFERENT || !json_is_array(audience) ||
		    in_ids(audience, s->structure_id);
	if (s->role == ROLE_PARTNER)
		return partner_id != 0 && partner_id == s->partner_id;
	if (s->role == ROLE_REFERENT)
		return structure_id != 0 && structure_id == s->structure_id;
	return false;
}

static char *
event_line(const char *topic, json_t *data)
{
	json_t *m = json_pack("{s:s, s:s, s:{s:s, s:O}}", "jsonrpc", "2.0",
	    "method", "event", "params", "topic", topic, "data", data);
	char *line = json_dumps(m, JSON_COMPACT);

	json_decref(m);
	return line;
}

static void
push(struct subscriber *s, const char *line)
{
	rpc_peer_push_event(s->peer, line, strlen(line));
}

/* Tells every subscriber that subscribed before outbox id `before` (all:
 * LLONG_MAX) to read the state again. */
static void
broadcast_resync(const char *reason, long long before)
{
	json_t *data = json_pack("{s:s}", "reason", reason);
	char *line = event_line("resync", data);
	struct subscriber *s;

	TAILQ_FOREACH(s, &subscribers, entry)
		if (s->after < before)
			push(s, line);
	free(line);
	json_decref(data);
}

/* A session ended somewhere (logout, password change, disabled user): its
 * peers here get no more events, and their next request answers as the
 * database says (unauthenticated). */
static void
session_revoked(const char *token_hash)
{
	struct subscriber *s, *next;

	for (s = TAILQ_FIRST(&subscribers); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (strcmp(rpc_peer_session(s->peer)->token_hash,
		    token_hash) != 0)
			continue;
		log_info("%s: session ended, events stopped",
		    rpc_peer_tag(s->peer));
		subscriber_free(s);
	}
}

/* A subscription belongs to the session it was made in: a peer that
 * logged out since has none (and no token to check). */
static void
drop_logged_out(void)
{
	struct subscriber *s, *next;

	for (s = TAILQ_FIRST(&subscribers); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (rpc_peer_session(s->peer)->bound)
			continue;
		log_info("%s: logged out, events stopped",
		    rpc_peer_tag(s->peer));
		subscriber_free(s);
	}
}

static void
fan_out(const char *topic, unsigned bit, json_t *n, long long id)
{
	json_int_t pid = json_integer_value(json_object_get(n, "partner_id"));
	json_int_t sid = json_integer_value(json_object_get(n, "structure_id"));
	json_t *audience = json_object_get(n, "audience");
	json_t *data = json_object_get(n, "data"), *partner_view = NULL;
	char *line = NULL, *partner_line = NULL;
	const struct session *ses;
	struct subscriber *s;

	drop_logged_out();
	TAILQ_FOREACH(s, &subscribers, entry) {
		ses = rpc_peer_session(s->peer);
		if (id <= s->after || !(s->topics & bit) ||
		    !visible(ses, topic, pid, sid, audience))
			continue;
		/* A venue needs the booking, not who holds it, nor why
		 * they withdrew (docs/privacy.md). */
		if (ses->role == ROLE_PARTNER && strncmp(topic, "offer.", 6) != 0) {
			if (partner_line == NULL) {
				partner_view = json_deep_copy(data);
				json_object_del(partner_view, "beneficiary_id");
				json_object_del(partner_view, "withdraw_reason");
				partner_line = event_line(topic, partner_view);
			}
			push(s, partner_line);
			continue;
		}
		if (line == NULL)
			line = event_line(topic, data);
		push(s, line);
	}
	free(line);
	free(partner_line);
	json_decref(partner_view);
}

/* Rows handed to the subscribers, in id order. */
static int
deliver(json_t *rows)
{
	const char *topic;
	json_t *row;
	unsigned bit;
	size_t i;

	json_array_foreach(rows, i, row) {
		long long id = json_integer_value(json_object_get(row, "id"));

		topic = json_string_value(json_object_get(row, "topic"));
		if (topic == NULL || (bit = topic_bit(topic)) == 0)
			log_warn("events: ignoring outbox row %lld", id);
		else
			fan_out(topic, bit, row, id);
		if (id > rd.pos)
			rd.pos = id;
	}
	return (int)json_array_size(rows);
}

static long long
value_ll(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? 0 : strtoll(PQgetvalue(res, 0, col),
	    NULL, 10);
}

static void
announce_done(PGresult *res, enum db_status st, void *arg)
{
	if (st == DB_SQL_ERROR)
		log_error("events: %s", PQresultErrorMessage(res));
}

static void
announce_now(void)
{
	rd.announced = rd.last;
	rd.announced_ms = now_ms();
	db_listen_exec(events_app->db, announce_sql, 0, NULL, announce_done,
	    NULL);
}

/* Tells the other daemons that the outbox grew, at most once per
 * ANNOUNCE_GAP_MS: the last change of a burst is announced by a timer. */
static void
announce(void)
{
	uint64_t since = now_ms() - rd.announced_ms;
	struct timeval tv = {0, 0};

	if (since >= ANNOUNCE_GAP_MS) {
		announce_now();
		return;
	}
	if (evtimer_pending(rd.announce, NULL))
		return;
	tv.tv_usec = (suseconds_t)(ANNOUNCE_GAP_MS - since) * 1000;
	evtimer_add(rd.announce, &tv);
}

static void
announce_cb(evutil_socket_t fd, short what, void *arg)
{
	if (events_app != NULL && !rd.halted && rd.last > rd.announced &&
	    db_listen_up(events_app->db))
		announce_now();
}

/* The next read: soon while there is activity, else at a slow pace. */
static void
poll_arm(void)
{
	bool busy = !TAILQ_EMPTY(&subscribers) &&
	    (rd.fence_xid[0] != '\0' || now_ms() - rd.active_ms < BUSY_FOR_MS);
	/* A change of ours not read yet (events_kick() during a read). */
	int ms = busy || rd.kicked ? POLL_BUSY_MS : POLL_IDLE_MS;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (!rd.halted)
		evtimer_add(rd.poll, &tv);
}

/*
 * How far a read that fetched no rows may move the position: to settled,
 * but not past a row that a subscriber who came while the read was on its
 * way must still get (rows above its `after`). Such a row was committed
 * after the read was sent and is below settled all the same when the
 * query ran late (a busy database, a queue on the listening connection).
 */
static long long
unfetched_upto(long long settled)
{
	struct subscriber *s;
	long long upto = settled;

	TAILQ_FOREACH(s, &subscribers, entry)
		if (s->after < upto)
			upto = s->after;
	return upto > rd.pos ? upto : rd.pos;
}

static void
read_done(PGresult *res, enum db_status st, void *arg)
{
	/* What the read asked for: a subscriber that came meanwhile must not
	 * move the position past rows a read of no rows did not fetch. */
	bool kicked = ((uintptr_t)arg & READ_KICKED) != 0;
	int limit = ((uintptr_t)arg & READ_ROWS) ? READ_LIMIT : 0, n = 0;
	long long settled, pruned;
	json_t *rows;

	rd.reading = false;
	if (events_app == NULL)
		return;
	if (st != DB_OK || PQntuples(res) != 1 || PQnfields(res) != 6) {
		if (st == DB_SQL_ERROR)
			log_error("events: outbox read: %s",
			    PQresultErrorMessage(res));
		poll_arm();
		return;
	}
	settled = value_ll(res, 0);
	pruned = value_ll(res, 3);
	rd.last = value_ll(res, 4);
	rd.fence_id = value_ll(res, 1);
	snprintf(rd.fence_xid, sizeof rd.fence_xid, "%s",
	    PQgetisnull(res, 0, 2) ? "" : PQgetvalue(res, 0, 2));
	if (!rd.started) {
		/* No backlog: a new daemon starts at the end. */
		rd.started = true;
		rd.pos = settled;
		rd.pruned_mark = pruned;
	} else {
		if (pruned > rd.pos && pruned > rd.pruned_mark) {
			log_warn("events: outbox rows up to %lld were pruned "
			    "before this daemon read them; sending resync",
			    pruned);
			broadcast_resync("events were lost: this server fell "
			    "behind", pruned);
			rd.pruned_mark = pruned;
		}
		rows = json_loads(PQgetvalue(res, 0, 5), 0, NULL);
		if (limit > 0 && json_is_array(rows))
			n = deliver(rows);
		json_decref(rows);
		if (limit == 0)
			rd.pos = unfetched_upto(settled);
		else if (n < limit && settled > rd.pos)
			rd.pos = settled;
	}
	log_debug("events: read %d rows; at %lld, final to %lld, fence %s",
	    n, rd.pos, settled, rd.fence_xid);
	rd.settled = settled;
	metrics_set(M_OUTBOX_BACKLOG, (double)(rd.last > rd.pos ?
	    rd.last - rd.pos : 0));
	if (n > 0)
		rd.active_ms = now_ms();
	if (kicked && rd.last > rd.announced)
		announce();
	if (rd.again || (limit > 0 && n == limit))
		read_start();
	else
		poll_arm();
}

static void
read_start(void)
{
	char pos[24], settled[24], fence[24], limit[16];
	const char *vals[5];
	bool kicked;

	if (events_app == NULL || rd.halted || !db_listen_up(events_app->db))
		return;
	if (rd.reading) {
		rd.again = true;
		return;
	}
	evtimer_del(rd.poll);
	rd.reading = true;
	rd.again = false;
	rd.read_ms = now_ms();
	kicked = rd.kicked;
	rd.kicked = false;
	snprintf(pos, sizeof pos, "%lld", rd.pos);
	snprintf(settled, sizeof settled, "%lld", rd.settled);
	snprintf(fence, sizeof fence, "%lld", rd.fence_id);
	snprintf(limit, sizeof limit, "%d",
	    TAILQ_EMPTY(&subscribers) ? 0 : READ_LIMIT);
	vals[0] = rd.started ? pos : NULL;
	vals[1] = settled;
	vals[2] = rd.fence_xid[0] != '\0' ? fence : NULL;
	vals[3] = rd.fence_xid[0] != '\0' ? rd.fence_xid : NULL;
	vals[4] = limit;
	db_listen_exec(events_app->db, read_sql, 5, vals, read_done,
	    (void *)(uintptr_t)((kicked ? READ_KICKED : 0) |
	    (TAILQ_EMPTY(&subscribers) ? 0 : READ_ROWS)));
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	read_start();
}

void
events_halt(void)
{
	rd.halted = true;
	if (rd.poll != NULL) {
		evtimer_del(rd.poll);
		evtimer_del(rd.announce);
	}
}

/*
 * A change of ours: read soon, but at most one read per POLL_BUSY_MS
 * however many changes. A read per change doubled the round trips of a
 * busy daemon (and took an xid for a fence each time) to deliver events
 * at most 20 ms sooner.
 */
void
events_kick(void)
{
	uint64_t now = now_ms(), since;
	struct timeval tv = {0, 0};

	rd.kicked = true;
	rd.active_ms = now;
	if (events_app == NULL || rd.halted || rd.reading)
		return;         /* read_done() looks at rd.active_ms */
	since = now - rd.read_ms;
	if (since >= POLL_BUSY_MS) {
		read_start();
		return;
	}
	tv.tv_usec = (suseconds_t)(POLL_BUSY_MS - since) * 1000;
	if (evtimer_add(rd.poll, &tv) == -1)
		read_start();
}

/* session.revoked on the events channel (a trigger's NOTIFY, rare); on
 * the outbox channel, another daemon's change: read now. */
static void
on_notify(const char *channel, const char *payload, void *arg)
{
	const char *topic, *h;
	json_t *n;

	if (strcmp(channel, EVENTS_OUTBOX_CHANNEL) == 0) {
		rd.active_ms = now_ms();
		if (!TAILQ_EMPTY(&subscribers))
			read_start();
		return;
	}
	if (TAILQ_EMPTY(&subscribers))
		return;
	n = json_loads(payload, 0, NULL);
	topic = json_string_value(json_object_get(n, "topic"));
	if (topic != NULL && strcmp(topic, "session.revoked") == 0) {
		if ((h = json_string_value(json_object_get(n, "token_hash"))))
			session_revoked(h);
	} else
		log_warn("ignoring a malformed event notification");
	json_decref(n);
}

static void
on_listen_state(bool up, void *arg)
{
	if (!up) {
		listener_lost = true;
		log_warn("events: listener lost; subscribers will be told to "
		    "resync");
		return;
	}
	if (listener_lost) {
		listener_lost = false;
		log_info("events: listener back; sending resync");
		broadcast_resync("events may have been lost while the "
		    "database was unreachable", LLONG_MAX);
		/* Revocations may have been lost too. */
		events_check_sessions();
	}
	read_start();
}

void
events_start(struct app *app)
{
	static const char *const channels[] = {EVENTS_CHANNEL,
	    EVENTS_OUTBOX_CHANNEL, NULL};

	events_app = app;
	memset(&rd, 0, sizeof rd);
	rd.poll = evtimer_new(app->base, poll_cb, NULL);
	rd.announce = evtimer_new(app->base, announce_cb, NULL);
	db_pool_listen(app->db, channels, on_notify, on_listen_state, NULL);
}

void
events_stop(void)
{
	while (!TAILQ_EMPTY(&subscribers))
		subscriber_free(TAILQ_FIRST(&subscribers));
	events_app = NULL;
	if (rd.poll != NULL) {
		event_free(rd.poll);
		event_free(rd.announce);
	}
	memset(&rd, 0, sizeof rd);
}

static bool
hash_in(json_t *alive, const char *hash)
{
	json_t *v;
	size_t i;

	json_array_foreach(alive, i, v)
		if (strcmp(json_string_value(v), hash) == 0)
			return true;
	return false;
}

/* A Postgres text[] literal of 64-hex tokens needs no quoting. */
static char *
hashes_literal(void)
{
	struct subscriber *s;
	size_t n = 0, at = 0;
	char *out;

	TAILQ_FOREACH(s, &subscribers, entry)
		n++;
	out = xmalloc(n * 65 + 3);
	out[at++] = '{';
	TAILQ_FOREACH(s, &subscribers, entry) {
		if (at > 1)
			out[at++] = ',';
		memcpy(out + at, rpc_peer_session(s->peer)->token_hash, 64);
		at += 64;
	}
	out[at++] = '}';
	out[at] = '\0';
	return out;
}

static void
check_done(PGresult *res, enum db_status st, void *arg)
{
	struct subscriber *s, *next;
	json_t *alive = NULL;

	checking = false;
	if (st != DB_OK || PQntuples(res) != 1) {
		if (st == DB_SQL_ERROR)
			log_error("events: session check: %s",
			    PQresultErrorMessage(res));
		return;
	}
	/* text[] comes back as {h1,h2,...}, each a 64-hex hash. */
	{
		const char *v = PQgetvalue(res, 0, 0);
		size_t len = strlen(v), i;

		alive = json_array();
		for (i = 1; len >= 2 && i + 64 <= len - 1; i += 65)
			json_array_append_new(alive, json_stringn(v + i, 64));
	}
	for (s = TAILQ_FIRST(&subscribers); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (hash_in(alive, rpc_peer_session(s->peer)->token_hash))
			continue;
		log_info("%s: session no longer valid, events stopped",
		    rpc_peer_tag(s->peer));
		subscriber_free(s);
	}
	json_decref(alive);
}

void
events_check_sessions(void)
{
	const char *vals[1];
	char *list;

	drop_logged_out();
	if (events_app == NULL || checking || TAILQ_EMPTY(&subscribers) ||
	    !db_pool_up(events_app->db))
		return;
	checking = true;
	list = hashes_literal();
	vals[0] = list;
	db_exec(events_app->db, sqlcall_stmt(STMT_AUTH_TOKENS_ALIVE), 1, vals,
	    check_done, NULL);
	free(list);
}

/* The session was checked in the database (events_subscribe()), so a
 * revoked token cannot subscribe. */
static void
subscribed(struct request *req, json_t *result)
{
	json_t *list = json_object_get(req->params, "topics"), *v;
	struct subscriber *s;
	unsigned mask = 0;
	long long after;
	size_t i;

	json_array_foreach(list, i, v)
		mask |= topic_bit(json_string_value(v));
	after = json_integer_value(json_object_get(result, "events_after"));
	json_decref(result);
	if (rpc_peer_alive(req->peer)) {
		if ((s = subscriber_find(req->peer)) == NULL) {
			s = xcalloc(1, sizeof *s);
			s->peer = req->peer;
			rpc_peer_hold(s->peer);
			TAILQ_INSERT_TAIL(&subscribers, s, entry);
			metrics_add(M_EVENT_SUBSCRIBERS, 1);
			/* Reading may have paused while nobody listened. */
			rd.active_ms = now_ms();
			read_start();
		}
		s->topics = mask;
		s->after = after;
		log_debug("%s subscribed to events 0x%x",
		    rpc_peer_tag(req->peer), mask);
	}
	rpc_reply(req, json_pack("{s:O}", "topics", list));
}

void
events_subscribe(struct request *req)
{
	sqlcall(req, subscribed);
}
