/*
 * Live events (SPEC events.subscribe). SQL functions NOTIFY at commit on
 * the channel "strapontin_events" with {topic, partner_id, structure_id,
 * data}; every daemon's pool listener receives them and this module hands
 * each to the subscribed connections that may see it. A subscriber that
 * does not read has its queue dropped past a limit and gets a `resync`
 * event instead, as do all subscribers after the listener reconnects
 * (notifications sent meanwhile are lost).
 */
#ifndef EVENTS_H
#define EVENTS_H

struct request;
struct db_pool;

#define EVENTS_CHANNEL "strapontin_events"

void events_start(struct db_pool *pool);
void events_subscribe(struct request *req);

/* Topic bits, for conn.event_topics. */
unsigned events_topic_bit(const char *topic);

#endif
