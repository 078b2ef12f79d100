/*
 * Lists of addresses and CIDR blocks, as the configuration names them:
 * the balancers whose PROXY headers are believed (server.proxy_from) and
 * who may read the metrics (http.metrics_allow). Pure: parsed once, when
 * the configuration is read, then matched against a peer.
 */
#ifndef NETLIST_H
#define NETLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* One address or CIDR block. */
struct netblock {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network byte order, host bits zero */
	unsigned bits;          /* prefix length */
};

#define NETLIST_MAX 64

struct netlist {
	struct netblock v[NETLIST_MAX];
	size_t n;
};

/* "10.0.0.5", "10.0.0.6/31", "fd00::1", "fd00::/64". False if s is none
 * of these (or has host bits set past the prefix: a typo more often than
 * not). */
bool netblock_parse(const char *s, struct netblock *b);
/* Adds the blocks of text, separated by spaces, tabs or commas, to l.
 * False with a message in err on a bad block or past NETLIST_MAX; l then
 * holds the blocks before it. */
bool netlist_add(struct netlist *l, const char *text, char *err,
    size_t errlen);
/* True if sa (AF_INET or AF_INET6; an IPv4-mapped IPv6 address counts as
 * the IPv4 one) is in one of the blocks. */
bool netlist_match(const struct netlist *l, const struct sockaddr *sa);
/* The same for an address in text form ("10.0.0.5", "::1"); false for
 * anything that is not one. */
bool netlist_match_text(const struct netlist *l, const char *addr);

#endif
