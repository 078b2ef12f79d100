#include "netlist.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* How a dual-stack socket shows an IPv4 peer: ::ffff:a.b.c.d */
static const unsigned char v4_mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

bool
netblock_parse(const char *s, struct netblock *b)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned long bits, max, i;
	const char *p;

	if (alen == 0 || alen >= sizeof addr)
		return false;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(b, 0, sizeof *b);
	if (inet_pton(AF_INET, addr, b->addr) == 1) {
		b->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, b->addr) == 1) {
		b->family = AF_INET6;
		max = 128;
	} else
		return false;
	bits = max;
	if (slash != NULL) {
		p = slash + 1;
		if (*p == '\0' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0'))
			return false;
		for (bits = 0; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return false;
			bits = bits * 10 + (unsigned long)(*p - '0');
		}
		if (bits > max)
			return false;
	}
	b->bits = (unsigned)bits;
	for (i = bits; i < max; i++)
		if (b->addr[i / 8] & (0x80 >> (i % 8)))
			return false;
	return true;
}

bool
netlist_add(struct netlist *l, const char *text, char *err, size_t errlen)
{
	static const char sep[] = " \t,";
	char word[INET6_ADDRSTRLEN + 8];
	const char *p = text;
	size_t n;

	for (;;) {
		p += strspn(p, sep);
		if (*p == '\0')
			return true;
		n = strcspn(p, sep);
		if (l->n == NETLIST_MAX) {
			snprintf(err, errlen, "more than %d addresses",
			    NETLIST_MAX);
			return false;
		}
		if (n < sizeof word) {
			memcpy(word, p, n);
			word[n] = '\0';
		}
		if (n >= sizeof word || !netblock_parse(word, &l->v[l->n])) {
			snprintf(err, errlen, "\"%.*s\" is not an address or "
			    "address/prefix (10.0.0.0/8, ::1)",
			    (int)(n > 64 ? 64 : n), p);
			return false;
		}
		l->n++;
		p += n;
	}
}

static bool
block_match(const struct netblock *b, const unsigned char *addr)
{
	unsigned full = b->bits / 8, rest = b->bits % 8;
	unsigned char mask;

	if (memcmp(b->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (b->addr[full] & mask) == (addr[full] & mask);
}

static bool
match_raw(const struct netlist *l, int family, const unsigned char *addr)
{
	size_t i;

	if (family == AF_INET6 &&
	    memcmp(addr, v4_mapped, sizeof v4_mapped) == 0) {
		addr += sizeof v4_mapped;
		family = AF_INET;
	}
	for (i = 0; i < l->n; i++)
		if (l->v[i].family == family && block_match(&l->v[i], addr))
			return true;
	return false;
}

bool
netlist_match(const struct netlist *l, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return match_raw(l, AF_INET, (const unsigned char *)
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6)
		return match_raw(l, AF_INET6, (const unsigned char *)
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
	return false;
}

bool
netlist_match_text(const struct netlist *l, const char *addr)
{
	unsigned char raw[16];

	if (addr == NULL)
		return false;
	if (inet_pton(AF_INET, addr, raw) == 1)
		return match_raw(l, AF_INET, raw);
	if (inet_pton(AF_INET6, addr, raw) == 1)
		return match_raw(l, AF_INET6, raw);
	return false;
}
