/*
 * An optional listener of its own for GET /metrics (docs/operations.md,
 * "Metrics"): plain HTTP, nothing but the metrics, for a scraper on a
 * management network or on the host itself. Whoever can reach its
 * address may read them: the address it is bound to is its access
 * control.
 */
#ifndef METRICS_LISTEN_H
#define METRICS_LISTEN_H

#include <stdbool.h>

struct event_base;
struct metrics_listen;

/* Makes the listener (none yet). */
struct metrics_listen *metrics_listen_new(struct event_base *base);
/* Listens on host:port too; false (logged) if it cannot. */
bool metrics_listen_add(struct metrics_listen *ml, const char *spec);
/* Closes every listener and open connection; NULL does nothing. */
void metrics_listen_free(struct metrics_listen *ml);

#endif
