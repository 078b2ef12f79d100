/* Tells the service manager how the daemon is doing (sd_notify's protocol,
 * in a few lines rather than libsystemd): one datagram of "KEY=value" lines
 * to the AF_UNIX socket named by $NOTIFY_SOCKET, a path or an abstract
 * "@name". Without the variable every call does nothing. Sending never
 * blocks: a message the socket cannot take now is dropped and logged.
 * docs/operations.md, "systemd". */
#ifndef SDNOTIFY_H
#define SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* Reads $NOTIFY_SOCKET and opens the socket (close-on-exec). False if the
 * variable is absent or unusable (then logged); calls are no-ops then. */
bool sdnotify_open(void);
void sdnotify_close(void);
/* Sends the lines of fmt as one datagram. */
void sdnotify(const char *fmt, ...) PRINTFLIKE(1, 2);
/* The watchdog period asked for by $WATCHDOG_USEC, if meant for this process
 * ($WATCHDOG_PID absent or ours) and a notify socket is open; 0 if none. */
uint64_t sdnotify_watchdog_usec(void);
/* CLOCK_MONOTONIC in microseconds, for MONOTONIC_USEC= with RELOADING=1. */
uint64_t sdnotify_monotonic_usec(void);

#endif
