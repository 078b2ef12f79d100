/*
 * The daemon's metrics, for GET /metrics (docs/operations.md, "Metrics"):
 * counters, gauges and histograms, rendered in the Prometheus text
 * exposition format 0.0.4.
 *
 * Everything is updated on the loop thread only (a worker pool's job is
 * counted when its completion comes back to the loop), so the values are
 * plain numbers, without locks or atomics. The families are one table in
 * metrics.c (metric_defs[]); a series is made the first time its label
 * values are used, and label values must come from the daemon's own
 * vocabularies (method names of the method table, error reasons, state
 * names), never from a client, so that their number stays bounded.
 *
 * Gauges that are cheaper to read than to follow (connections by state,
 * the database pool) are set at scrape time by collectors that their
 * modules register.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* The families, in the order of metric_defs[] (and of the output). */
enum metric {
	M_REQUESTS,             /* method, outcome */
	M_REQUEST_SECONDS,      /* method */
	M_CONNECTIONS,          /* transport, state */
	M_CONN_ACCEPTED,        /* transport */
	M_CONN_REFUSED,         /* transport, reason */
	M_DB_CONNECTIONS,       /* pool, state */
	M_DB_WAITING,           /* pool */
	M_DB_WAIT_SECONDS,      /* pool */
	M_DB_QUEUE_TIMEOUTS,    /* pool */
	M_DB_UP,                /* pool */
	M_DB_REPLICA_LAG,       /* pool */
	M_EVENT_SUBSCRIBERS,
	M_EVENTS_QUEUED,
	M_EVENTS_DROPPED,
	M_LOGINS_THROTTLED,
	M_JANITOR_RUNS,         /* job, outcome */
	M_OUTBOX_BACKLOG,
	M_BOOKING_BATCHES,
	M_BOOKING_BATCH_SIZE,
	M_MAIL_SENT,
	M_MAIL_FAILED,          /* kind */
	M_MAIL_GIVEN_UP,
	M_MAIL_BACKLOG,
	M_METRICS_REFUSED,
	M_START_TIME,
	M_BUILD_INFO,           /* version, protocol */
	M_NMETRICS
};

/* Called at each scrape, before rendering: sets gauges. */
typedef void metrics_collect_cb(void *arg);

/* Counters and gauges: add v (a counter never goes down). The label
 * values follow, as many as the family has labels (const char *). */
void metrics_add(enum metric m, double v, ...);
/* A gauge: set to v. */
void metrics_set(enum metric m, double v, ...);
/* A histogram: one observation of v (seconds for durations). */
void metrics_observe(enum metric m, double v, ...);

void metrics_collector_add(metrics_collect_cb *cb, void *arg);
void metrics_collector_remove(metrics_collect_cb *cb, void *arg);

/* Runs the collectors and appends every family to out. */
void metrics_render(struct evbuffer *out);

/* The family's name, or NULL past the last (for the docs' check). */
const char *metrics_name_at(size_t i);

/* Forgets every series and collector (tests, and the daemon's end). */
void metrics_reset(void);

#endif
