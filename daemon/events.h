/*
 * Live events (events.subscribe, docs/protocol.md). SQL functions write
 * each event, {topic, partner_id, structure_id, data}, as a row of the
 * outbox table in the changing transaction (emit(), sql/schema/014_outbox.sql, sql/api/90_events.sql);
 * every daemon reads the rows that are final, in id order, on its pool
 * listener connection and hands each to the subscribed peers that may
 * see it (docs/architecture.md, "Events: the outbox"). A read happens when
 * a change of this daemon calls events_kick(), when another daemon's
 * NOTIFY strapontin_outbox says the outbox grew, and by polling: every
 * POLL_BUSY_MS while there is activity, every second otherwise.
 *
 * A subscriber that does not read gets a `resync` event in place of what
 * it missed (rpc_peer_push_event), as do all subscribers after the
 * listener reconnects and those of a daemon that fell behind the
 * outbox's pruning.
 *
 * A subscription lasts while its session does: a revocation notified by
 * the database (NOTIFY strapontin_events) ends it at once, and
 * events_check_sessions() (after the listener comes back, and every few
 * seconds from the janitor) ends those whose session was revoked or
 * expired while no notification could come.
 */
#ifndef EVENTS_H
#define EVENTS_H

struct request;
struct rpc_peer;
struct app;

#define EVENTS_CHANNEL "strapontin_events"
#define EVENTS_OUTBOX_CHANNEL "strapontin_outbox"

/* The one table of topics, NULL-terminated, and its length. */
extern const char *const events_topics[];
#define EVENTS_TOPICS 7

void events_start(struct app *app);
void events_stop(void);
void events_subscribe(struct request *req);
/* The peer left (struct rpc_hooks.peer_gone). */
void events_peer_gone(struct rpc_peer *p);
/* Asks the database which subscribers' sessions are still alive. */
void events_check_sessions(void);
/* A change was committed through this daemon: read the outbox now, and
 * tell the other daemons (NOTIFY strapontin_outbox, outside the change's
 * transaction, at most once per 10 ms). Cheap: call it after every
 * successful call of a method that may change something. */
void events_kick(void);
/* No more reads nor timers: the database pool is about to go (called by
 * janitor_stop(), with the other periodic work). Subscribers stay until
 * events_stop(). */
void events_halt(void);

#endif
