#include "events.h"

#include <jansson.h>
#include <string.h>

#include "conn.h"
#include "db.h"
#include "log.h"
#include "methods.h"
#include "rpc.h"
#include "server.h"

static const char *const topics[] = {"offer.published", "offer.cancelled",
    "offer.seats_changed", "booking.created", "booking.cancelled",
    "waitlist.offered", NULL};

static bool listener_lost;

static void session_revoked(const char *token_hash);

unsigned
events_topic_bit(const char *topic)
{
	size_t i;

	for (i = 0; topics[i] != NULL; i++)
		if (strcmp(topics[i], topic) == 0)
			return 1u << i;
	return 0;
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
broadcast_resync(const char *reason)
{
	json_t *data = json_pack("{s:s}", "reason", reason);
	char *line = event_line("resync", data);
	struct conn *c;

	TAILQ_FOREACH(c, &srv->conns, entry)
		if (c->event_topics != 0)
			conn_push_event(c, line, true);
	free(line);
	json_decref(data);
}

static bool
anyone_subscribed(void)
{
	struct conn *c;

	TAILQ_FOREACH(c, &srv->conns, entry)
		if (c->event_topics != 0)
			return true;
	return false;
}

static void
on_notify(const char *channel, const char *payload, void *arg)
{
	json_t *n, *data, *partner_view = NULL;
	char *line = NULL, *partner_line = NULL;
	const char *topic;
	json_int_t pid, sid;
	unsigned bit;
	struct conn *c;

	/* Every booking notifies; most daemons have no subscriber to tell,
	 * and decoding costs a third of a booking's time in the daemon. */
	if (!anyone_subscribed())
		return;
	n = json_loads(payload, 0, NULL);
	topic = json_string_value(json_object_get(n, "topic"));
	pid = json_integer_value(json_object_get(n, "partner_id"));
	sid = json_integer_value(json_object_get(n, "structure_id"));

	if (topic != NULL && strcmp(topic, "session.revoked") == 0) {
		const char *h = json_string_value(json_object_get(n,
		    "token_hash"));

		if (h != NULL)
			session_revoked(h);
		json_decref(n);
		return;
	}
	if (topic == NULL || (bit = events_topic_bit(topic)) == 0) {
		log_warn("ignoring a malformed event notification");
		json_decref(n);
		return;
	}
	data = json_object_get(n, "data");
	TAILQ_FOREACH(c, &srv->conns, entry) {
		if (!(c->event_topics & bit) || !c->session.bound ||
		    !visible(&c->session, topic, pid, sid))
			continue;
		/* A venue needs the booking, not who holds it. */
		if (c->session.role == ROLE_PARTNER &&
		    strncmp(topic, "offer.", 6) != 0) {
			if (partner_line == NULL) {
				partner_view = json_deep_copy(data);
				json_object_del(partner_view, "beneficiary_id");
				partner_line = event_line(topic, partner_view);
			}
			conn_push_event(c, partner_line, false);
			continue;
		}
		if (line == NULL)
			line = event_line(topic, data);
		conn_push_event(c, line, false);
	}
	free(line);
	free(partner_line);
	json_decref(partner_view);
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
	}
}

void
events_start(struct db_pool *pool)
{
	db_pool_listen(pool, EVENTS_CHANNEL, on_notify, on_listen_state, NULL);
}

/* The session was checked in the database (events_subscribe()), so a
 * revoked token cannot subscribe. */
static void
subscribed(struct request *req, json_t *result)
{
	json_t *list = json_object_get(req->params, "topics"), *v;
	unsigned mask = 0;
	size_t i;

	json_array_foreach(list, i, v)
		mask |= events_topic_bit(json_string_value(v));
	req->conn->event_topics = mask;
	log_debug("%s subscribed to events 0x%x", req->conn->tag, mask);
	json_decref(result);
	rpc_reply(req, json_pack("{s:O}", "topics", list));
}

void
events_subscribe(struct request *req)
{
	methods_sql_call(req, subscribed);
}

/* A session ended somewhere (logout, password change, disabled user): its
 * connections here get no more events, and their next request answers as
 * the database says (unauthenticated). */
static void
session_revoked(const char *token_hash)
{
	struct conn *c;

	TAILQ_FOREACH(c, &srv->conns, entry) {
		if (!c->session.bound ||
		    strcmp(c->session.token_hash, token_hash) != 0)
			continue;
		if (c->event_topics != 0)
			log_info("%s: session revoked, events stopped", c->tag);
		c->event_topics = 0;
	}
}
