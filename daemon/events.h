/*
 * Live events (events.subscribe, docs/protocol.md). SQL functions NOTIFY
 * at commit on the channel "strapontin_events" with {topic, partner_id,
 * structure_id, data}; every daemon's pool listener receives them and
 * this module hands each to the subscribed peers that may see it. A
 * subscriber that does not read gets a `resync` event in place of what
 * it missed (rpc_peer_push_event), as do all subscribers after the
 * listener reconnects (notifications sent meanwhile are lost).
 *
 * A subscription lasts while its session does: a revocation notified by
 * the database ends it at once, and events_check_sessions() (after the
 * listener comes back, and every few seconds from the janitor) ends those
 * whose session was revoked or expired while no notification could come.
 */
#ifndef EVENTS_H
#define EVENTS_H

struct request;
struct rpc_peer;
struct app;

#define EVENTS_CHANNEL "strapontin_events"

/* The one table of topics, NULL-terminated, and its length. */
extern const char *const events_topics[];
#define EVENTS_TOPICS 6

void events_start(struct app *app);
void events_stop(void);
void events_subscribe(struct request *req);
/* The peer left (struct rpc_hooks.peer_gone). */
void events_peer_gone(struct rpc_peer *p);
/* Asks the database which subscribers' sessions are still alive. */
void events_check_sessions(void);

#endif
