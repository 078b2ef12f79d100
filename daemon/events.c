#include "events.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "app.h"
#include "db.h"
#include "log.h"
#include "rpc.h"
#include "sqlcall.h"

const char *const events_topics[EVENTS_TOPICS + 1] = {"offer.published",
    "offer.cancelled", "offer.seats_changed", "booking.created",
    "booking.cancelled", "waitlist.offered", NULL};

struct subscriber {
	struct rpc_peer *peer;      /* held */
	unsigned topics;            /* bits of events_topics */
	TAILQ_ENTRY(subscriber) entry;
};

static TAILQ_HEAD(, subscriber) subscribers =
    TAILQ_HEAD_INITIALIZER(subscribers);
static struct app *events_app;
static bool listener_lost;
static bool checking;

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

/* Offers are public to every role; the rest to the partner whose offer it
 * is and to the structure whose person it is. */
static bool
visible(const struct session *s, const char *topic, json_int_t partner_id,
    json_int_t structure_id)
{
	if (s->role == ROLE_ADMIN || strncmp(topic, "offer.", 6) == 0)
		return true;
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

static void
broadcast_resync(const char *reason)
{
	json_t *data = json_pack("{s:s}", "reason", reason);
	char *line = event_line("resync", data);
	struct subscriber *s;

	TAILQ_FOREACH(s, &subscribers, entry)
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
fan_out(const char *topic, unsigned bit, json_t *n)
{
	json_int_t pid = json_integer_value(json_object_get(n, "partner_id"));
	json_int_t sid = json_integer_value(json_object_get(n, "structure_id"));
	json_t *data = json_object_get(n, "data"), *partner_view = NULL;
	char *line = NULL, *partner_line = NULL;
	const struct session *ses;
	struct subscriber *s;

	drop_logged_out();
	TAILQ_FOREACH(s, &subscribers, entry) {
		ses = rpc_peer_session(s->peer);
		if (!(s->topics & bit) || !visible(ses, topic, pid, sid))
			continue;
		/* A venue needs the booking, not who holds it. */
		if (ses->role == ROLE_PARTNER && strncmp(topic, "offer.", 6) != 0) {
			if (partner_line == NULL) {
				partner_view = json_deep_copy(data);
				json_object_del(partner_view, "beneficiary_id");
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

static void
on_notify(const char *channel, const char *payload, void *arg)
{
	const char *topic, *h;
	unsigned bit;
	json_t *n;

	/* Every booking notifies; most daemons have no subscriber to tell,
	 * and decoding costs a third of a booking's time in the daemon. */
	if (TAILQ_EMPTY(&subscribers))
		return;
	n = json_loads(payload, 0, NULL);
	topic = json_string_value(json_object_get(n, "topic"));
	if (topic != NULL && strcmp(topic, "session.revoked") == 0) {
		if ((h = json_string_value(json_object_get(n, "token_hash"))))
			session_revoked(h);
	} else if (topic == NULL || (bit = topic_bit(topic)) == 0)
		log_warn("ignoring a malformed event notification");
	else
		fan_out(topic, bit, n);
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
		    "database was unreachable");
		/* Revocations may have been lost too. */
		events_check_sessions();
	}
}

void
events_start(struct app *app)
{
	events_app = app;
	db_pool_listen(app->db, EVENTS_CHANNEL, on_notify, on_listen_state,
	    NULL);
}

void
events_stop(void)
{
	while (!TAILQ_EMPTY(&subscribers))
		subscriber_free(TAILQ_FIRST(&subscribers));
	events_app = NULL;
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
	size_t i;

	json_array_foreach(list, i, v)
		mask |= topic_bit(json_string_value(v));
	json_decref(result);
	if (rpc_peer_alive(req->peer)) {
		if ((s = subscriber_find(req->peer)) == NULL) {
			s = xcalloc(1, sizeof *s);
			s->peer = req->peer;
			rpc_peer_hold(s->peer);
			TAILQ_INSERT_TAIL(&subscribers, s, entry);
		}
		s->topics = mask;
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
