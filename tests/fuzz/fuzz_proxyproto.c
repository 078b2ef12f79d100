/*
 * Harness: the PROXY protocol header (daemon/proxyproto.c). The first
 * byte chooses the size of the pieces the rest is fed in, the rest is
 * what a balancer (or anyone) sent. Besides not crashing: fed in pieces
 * it must read what it reads at once, never take a byte past the
 * header's end, and a header it reads must be what the rules allow.
 * The same bytes, as text, are also tried as a trusted balancer's
 * address (netblock_parse).
 */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "netlist.h"
#include "proxyproto.h"

static void
check_done(const struct proxyproto *p, const uint8_t *data, size_t used)
{
	size_t len;

	if (p->version == 1) {
		if (used < 8 || used > PROXYPROTO_V1_MAX ||
		    memcmp(data, "PROXY ", 6) != 0 ||
		    data[used - 2] != '\r' || data[used - 1] != '\n' ||
		    memchr(data, '\n', used - 1) != NULL)
			abort();
	} else if (p->version == 2) {
		if (used < 16)
			abort();
		len = (size_t)data[14] << 8 | data[15];
		if (used != 16 + len || len > PROXYPROTO_V2_MAX_LEN)
			abort();
	} else
		abort();
	if (p->has_addr && !((p->src.ss_family == AF_INET &&
	    p->srclen == sizeof(struct sockaddr_in)) ||
	    (p->src.ss_family == AF_INET6 &&
	    p->srclen == sizeof(struct sockaddr_in6))))
		abort();
}

static void
try_net(const uint8_t *data, size_t size)
{
	struct netblock net;
	char s[64];

	if (size >= sizeof s)
		size = sizeof s - 1;
	memcpy(s, data, size);
	s[size] = '\0';
	if (!netblock_parse(s, &net))
		return;
	if ((net.family == AF_INET && net.bits > 32) ||
	    (net.family == AF_INET6 && net.bits > 128) ||
	    (net.family != AF_INET && net.family != AF_INET6))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto *whole, *pieces;
	size_t piece, used, used1 = 0, i, n;

	if (size < 1)
		return 0;
	piece = 1 + data[0] % 32;
	data++;
	size--;
	whole = malloc(sizeof *whole);
	pieces = malloc(sizeof *pieces);
	if (whole == NULL || pieces == NULL)
		abort();
	proxyproto_init(whole);
	used = proxyproto_feed(whole, data, size);
	proxyproto_init(pieces);
	for (i = 0; i < size && pieces->status == PROXYPROTO_MORE; i += n) {
		n = size - i < piece ? size - i : piece;
		used1 += proxyproto_feed(pieces, data + i, n);
	}
	if (used > size || used != used1 || whole->status != pieces->status ||
	    whole->version != pieces->version)
		abort();
	switch (whole->status) {
	case PROXYPROTO_MORE:
		if (used != size || used >= PROXYPROTO_MAX)
			abort();
		break;
	case PROXYPROTO_ERROR:
		if (whole->error == NULL || used == 0)
			abort();
		break;
	case PROXYPROTO_DONE:
		check_done(whole, data, used);
		if (whole->has_addr != pieces->has_addr || (whole->has_addr &&
		    memcmp(&whole->src, &pieces->src, whole->srclen) != 0))
			abort();
		/* Done takes nothing more. */
		if (proxyproto_feed(whole, data, size) != 0)
			abort();
		break;
	}
	free(whole);
	free(pieces);
	try_net(data, size);
	return 0;
}
