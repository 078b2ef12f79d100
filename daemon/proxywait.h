/*
 * Reading a PROXY header (proxyproto.h) on a freshly accepted socket,
 * before its TLS handshake, for either listener: from the loop, under a
 * timeout, one socket never holding up another. The header's bytes are
 * taken from the socket and nothing past them, so the TLS handshake
 * starts where the header ends.
 *
 * A socket whose header is complete goes to the done callback with the
 * client's address (or, for a LOCAL or UNKNOWN header, the balancer's
 * own); a socket that sends a bad header, closes, or is too slow is
 * closed here, and logged.
 */
#ifndef PROXYWAIT_H
#define PROXYWAIT_H

#include <event2/util.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct proxywait;

/* fd is the callee's from now on; sa is the address to serve it as
 * (valid during the call). Called from the loop, never from inside a
 * proxywait_*() call. */
typedef void (*proxywait_done)(evutil_socket_t fd, const struct sockaddr *sa,
    int salen, void *arg);

/* what names the listener in logs ("line", "http"). */
struct proxywait *proxywait_new(struct event_base *base, const char *what,
    proxywait_done done, void *arg);
/* Waits for fd's header for at most timeout seconds; fd (non-blocking)
 * and sa are the accepted socket and its peer, the balancer. */
void proxywait_add(struct proxywait *pw, evutil_socket_t fd,
    const struct sockaddr *sa, int salen, int timeout);
/* Sockets still sending their header. */
size_t proxywait_pending(const struct proxywait *pw);
/* Closes every socket still waiting and frees pw. NULL is fine. */
void proxywait_free(struct proxywait *pw);

#endif
