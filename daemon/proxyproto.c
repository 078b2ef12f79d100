#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* Version 2 begins with these 12 bytes, which no version 1 line, TLS
 * record or HTTP request can begin with. */
static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};
static const char v1_prefix[] = "PROXY ";

/* Version 2's 13th and 14th bytes. */
#define V2_VERSION      0x20
#define V2_CMD_LOCAL    0x00
#define V2_CMD_PROXY    0x01
#define V2_UNSPEC       0x00
#define V2_TCP4         0x11    /* AF_INET, STREAM */
#define V2_TCP6         0x21    /* AF_INET6, STREAM */
#define V2_TCP4_LEN     12      /* two IPv4 addresses, two ports */
#define V2_TCP6_LEN     36
/* What of a version 2 header is kept: its fixed part and the addresses.
 * TLVs that follow are counted, not kept. */
#define V2_KEEP         (16 + V2_TCP6_LEN)

void
proxyproto_init(struct proxyproto *p)
{
	memset(p, 0, sizeof *p);
	p->status = PROXYPROTO_MORE;
}

static void
fail(struct proxyproto *p, const char *why)
{
	p->status = PROXYPROTO_ERROR;
	p->error = why;
}

static void
set_v4(struct proxyproto *p, const void *addr, const void *port)
{
	struct sockaddr_in *sin = (void *)&p->src;

	memset(&p->src, 0, sizeof p->src);
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, addr, 4);
	memcpy(&sin->sin_port, port, 2);
	p->srclen = sizeof *sin;
	p->has_addr = true;
}

static const unsigned char v4_mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

/* An IPv4 client a balancer gives as ::ffff:a.b.c.d is given as IPv4,
 * so it counts as the same address as when it comes directly. */
static void
set_v6(struct proxyproto *p, const void *addr, const void *port)
{
	struct sockaddr_in6 *sin6 = (void *)&p->src;

	if (memcmp(addr, v4_mapped, sizeof v4_mapped) == 0) {
		set_v4(p, (const unsigned char *)addr + sizeof v4_mapped, port);
		return;
	}
	memset(&p->src, 0, sizeof p->src);
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, addr, 16);
	memcpy(&sin6->sin6_port, port, 2);
	p->srclen = sizeof *sin6;
	p->has_addr = true;
}

/* ---- version 1 ---------------------------------------------------------- */

/* A port: 0 to 65535 in decimal, no sign, no leading zero. */
static bool
v1_port(const char *s, unsigned char out[2])
{
	unsigned long v = 0;
	size_t i, n = strlen(s);

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	out[0] = (unsigned char)(v >> 8);
	out[1] = (unsigned char)v;
	return true;
}

/* The whole line is in p->buf, "\r\n" included. Fields are separated by
 * exactly one space: "PROXY TCP4 src dst sport dport". */
static void
v1_parse(struct proxyproto *p)
{
	char line[PROXYPROTO_V1_MAX + 1], *f[6], *s;
	unsigned char src[16], dst[16], sport[2], dport[2];
	size_t n = 0;
	int af;

	memcpy(line, p->buf, p->len - 2);
	line[p->len - 2] = '\0';
	/* Only "UNKNOWN" may be followed by anything (or nothing). */
	if (strcmp(line, "PROXY UNKNOWN") == 0 ||
	    strncmp(line, "PROXY UNKNOWN ", 14) == 0) {
		p->status = PROXYPROTO_DONE;
		return;
	}
	/* Split at each space: an empty field (two spaces) is an error. */
	for (s = line; s != NULL && n < 6; n++) {
		f[n] = s;
		if ((s = strchr(s, ' ')) != NULL)
			*s++ = '\0';
	}
	if (n != 6 || s != NULL) {
		fail(p, "PROXY v1: not six fields");
		return;
	}
	if (strcmp(f[1], "TCP4") == 0)
		af = AF_INET;
	else if (strcmp(f[1], "TCP6") == 0)
		af = AF_INET6;
	else {
		fail(p, "PROXY v1: protocol not TCP4, TCP6 or UNKNOWN");
		return;
	}
	/* inet_pton is strict: no leading zeros in IPv4, one "::" in IPv6. */
	if (inet_pton(af, f[2], src) != 1 || inet_pton(af, f[3], dst) != 1) {
		fail(p, "PROXY v1: bad address");
		return;
	}
	if (!v1_port(f[4], sport) || !v1_port(f[5], dport)) {
		fail(p, "PROXY v1: bad port");
		return;
	}
	if (af == AF_INET)
		set_v4(p, src, sport);
	else
		set_v6(p, src, sport);
	p->status = PROXYPROTO_DONE;
}

/* One more byte of a version 1 line: checked as it comes, so that a
 * stream that is not a header is refused at its first wrong byte. */
static void
v1_take(struct proxyproto *p, unsigned char c)
{
	size_t i = p->len;

	if (i < sizeof v1_prefix - 1 && c != (unsigned char)v1_prefix[i]) {
		fail(p, "not a PROXY header");
		return;
	}
	if (i > 0 && p->buf[i - 1] == '\r' && c != '\n') {
		fail(p, "PROXY v1: CR not followed by LF");
		return;
	}
	if (c == '\n' && (i == 0 || p->buf[i - 1] != '\r')) {
		fail(p, "PROXY v1: LF without CR");
		return;
	}
	if (c != '\r' && c != '\n' && (c < 0x20 || c > 0x7e)) {
		fail(p, "PROXY v1: not printable ASCII");
		return;
	}
	p->buf[p->len++] = c;
	if (c == '\n')
		v1_parse(p);
	else if (p->len == PROXYPROTO_V1_MAX)
		fail(p, "PROXY v1: longer than 107 bytes");
}

/* ---- version 2 ---------------------------------------------------------- */

/* The fixed part is complete: its version, command, family and length. */
static void
v2_head(struct proxyproto *p)
{
	unsigned char ver_cmd = p->buf[12], fam = p->buf[13];
	size_t len = (size_t)p->buf[14] << 8 | p->buf[15];

	if ((ver_cmd & 0xf0) != V2_VERSION) {
		fail(p, "PROXY v2: version not 2");
		return;
	}
	if ((ver_cmd & 0x0f) != V2_CMD_LOCAL &&
	    (ver_cmd & 0x0f) != V2_CMD_PROXY) {
		fail(p, "PROXY v2: command not LOCAL or PROXY");
		return;
	}
	if (len > PROXYPROTO_V2_MAX_LEN) {
		fail(p, "PROXY v2: longer than the cap");
		return;
	}
	/* LOCAL: the balancer speaks for itself, whatever the family. */
	if ((ver_cmd & 0x0f) == V2_CMD_PROXY) {
		if (fam != V2_UNSPEC && fam != V2_TCP4 && fam != V2_TCP6) {
			fail(p, "PROXY v2: family not TCP over IPv4 or IPv6");
			return;
		}
		if ((fam == V2_TCP4 && len < V2_TCP4_LEN) ||
		    (fam == V2_TCP6 && len < V2_TCP6_LEN)) {
			fail(p, "PROXY v2: addresses cut short");
			return;
		}
	}
	p->need = 16 + len;
}

static void
v2_done(struct proxyproto *p)
{
	const unsigned char *a = p->buf + 16;

	p->status = PROXYPROTO_DONE;
	if ((p->buf[12] & 0x0f) == V2_CMD_LOCAL)
		return;
	/* Source address, destination address, source port, dest port. */
	if (p->buf[13] == V2_TCP4)
		set_v4(p, a, a + 8);
	else if (p->buf[13] == V2_TCP6)
		set_v6(p, a, a + 32);
}

static void
v2_take(struct proxyproto *p, unsigned char c)
{
	size_t i = p->len;

	if (i < sizeof v2_sig && c != v2_sig[i]) {
		fail(p, "not a PROXY header");
		return;
	}
	if (i < V2_KEEP)
		p->buf[i] = c;
	p->len++;
	if (p->len == 16)
		v2_head(p);
	if (p->status == PROXYPROTO_MORE && p->need != 0 &&
	    p->len == p->need)
		v2_done(p);
}

size_t
proxyproto_feed(struct proxyproto *p, const void *data, size_t len)
{
	const unsigned char *d = data;
	size_t i;

	for (i = 0; i < len && p->status == PROXYPROTO_MORE; i++) {
		if (p->len == 0)
			p->version = d[i] == v1_prefix[0] ? 1 :
			    d[i] == v2_sig[0] ? 2 : 0;
		switch (p->version) {
		case 1:
			v1_take(p, d[i]);
			break;
		case 2:
			v2_take(p, d[i]);
			break;
		default:
			fail(p, "not a PROXY header");
			break;
		}
	}
	/* The byte that made it fail is not part of a header either, but
	 * nothing is read after a failure: say it was taken. */
	return i;
}
