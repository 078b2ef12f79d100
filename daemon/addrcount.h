/*
 * Open connections per peer address, for server.max_connections_per_address.
 * One table is shared by the line and HTTPS transports, so that the limit
 * counts an address's connections on both listeners together.
 */
#ifndef ADDRCOUNT_H
#define ADDRCOUNT_H

#include <stddef.h>

struct addrcount;
struct addrcount_entry;

struct addrcount *addrcount_new(void);
/* Every entry must have been dropped. */
void addrcount_free(struct addrcount *t);
/* Connections open from addr. */
size_t addrcount_open(const struct addrcount *t, const char *addr);
/* One more from addr; the entry is the caller's until addrcount_drop(). */
struct addrcount_entry *addrcount_take(struct addrcount *t, const char *addr);
void addrcount_drop(struct addrcount *t, struct addrcount_entry *e);

#endif
