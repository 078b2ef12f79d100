/*
 * The PROXY protocol (docs/operations.md, "Behind a load balancer: the
 * PROXY protocol"): the header a TCP load balancer sends before anything
 * else, naming the client it forwards. Versions 1 (a text line) and 2
 * (binary). Pure: no I/O, no allocation, so it can be fuzzed; the
 * transport reads the bytes and feeds them here.
 *
 * Which balancers are believed (server.proxy_from) is a netlist
 * (netlist.h).
 */
#ifndef PROXYPROTO_H
#define PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A version 1 header is one line of at most 107 bytes, "\r\n" included. */
#define PROXYPROTO_V1_MAX 107
/* A version 2 header: 16 bytes, then at most this many (addresses and
 * TLVs). Enough for the addresses and the TLVs balancers add; a longer
 * one is refused rather than buffered. */
#define PROXYPROTO_V2_MAX_LEN 496
/* The longest header of either version. */
#define PROXYPROTO_MAX (16 + PROXYPROTO_V2_MAX_LEN)

enum proxyproto_status {
	PROXYPROTO_MORE,        /* a valid beginning: feed more */
	PROXYPROTO_DONE,        /* a whole header has been read */
	PROXYPROTO_ERROR,       /* not a valid header (error says why) */
};

struct proxyproto {
	enum proxyproto_status status;
	const char *error;      /* static text, when ERROR */
	int version;            /* 1 or 2, once the first byte is read */
	/* DONE: true if the header names the client (TCP4/TCP6, v2 PROXY
	 * over INET/INET6); false for v1 UNKNOWN, v2 LOCAL and v2 UNSPEC,
	 * which keep the connection's own address (a health check). */
	bool has_addr;
	struct sockaddr_storage src;    /* the client, when has_addr */
	socklen_t srclen;
	/* The parser's own: */
	size_t len;             /* bytes taken so far */
	size_t need;            /* v2: the header's whole length, once known */
	unsigned char buf[PROXYPROTO_V1_MAX + 1]; /* v1 line; v2's first bytes */
};

void proxyproto_init(struct proxyproto *p);
/* Takes bytes of data, in order, never past the end of the header: what
 * follows it (a TLS ClientHello) is left to the caller. Returns how many
 * bytes were taken (all of them while the status stays MORE); the status
 * is in p->status. Once DONE or ERROR it takes nothing more. */
size_t proxyproto_feed(struct proxyproto *p, const void *data, size_t len);

#endif
