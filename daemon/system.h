/* system.* methods: no login needed. */
#ifndef SYSTEM_H
#define SYSTEM_H

#include <stddef.h>

struct request;

void sys_ping(struct request *req);
void sys_version(struct request *req);
void sys_health(struct request *req);

/* Now as an RFC 3339 UTC string into buf (at least 32 bytes). */
void sys_time_now(char *buf, size_t len);

#endif
