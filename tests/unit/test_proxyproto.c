/* Unit tests of proxyproto: the PROXY protocol header a load balancer
 * sends (docs/operations.md, "Behind a load balancer: the PROXY
 * protocol"), one test per rule, with the header a balancer or an
 * attacker would send; and its keys in the configuration (the trusted
 * balancers' list itself is tested in test_netlist.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "proxyproto.h"

/* Feeds len bytes at once; returns how many were taken. */
static size_t
feed(struct proxyproto *p, const void *data, size_t len)
{
	proxyproto_init(p);
	return proxyproto_feed(p, data, len);
}

static size_t
feed_str(struct proxyproto *p, const char *s)
{
	return feed(p, s, strlen(s));
}

/* The status of a text header fed at once. */
static enum proxyproto_status
status_of(const char *s)
{
	struct proxyproto p;

	feed_str(&p, s);
	if (p.status == PROXYPROTO_ERROR)
		assert_non_null(p.error);
	return p.status;
}

/* The client's address and port, "a.b.c.d:port" or "v6:port". */
static const char *
src_of(const struct proxyproto *p)
{
	static char out[80];
	char host[64];

	assert_true(p->has_addr);
	if (p->src.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)&p->src;

		assert_int_equal(p->srclen, sizeof *sin);
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
		snprintf(out, sizeof out, "%s:%u", host, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)&p->src;

		assert_int_equal(p->src.ss_family, AF_INET6);
		assert_int_equal(p->srclen, sizeof *sin6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
		snprintf(out, sizeof out, "%s:%u", host,
		    ntohs(sin6->sin6_port));
	}
	return out;
}

/* ---- version 1 ------------------------------------------------------------ */

static void
test_v1_tcp4(void **state)
{
	struct proxyproto p;
	const char *h = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n";

	assert_int_equal(feed_str(&p, h), strlen(h));
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_int_equal(p.version, 1);
	assert_string_equal(src_of(&p), "203.0.113.7:51234");
}

static void
test_v1_tcp6(void **state)
{
	struct proxyproto p;

	feed_str(&p, "PROXY TCP6 2001:db8::7 2001:db8::1 0 65535\r\n");
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_string_equal(src_of(&p), "2001:db8::7:0");
}

/* An IPv4 client given as IPv4-mapped IPv6 is the IPv4 address, as when
 * it comes directly (one count per client for the connection cap). */
static void
test_v4_mapped(void **state)
{
	struct proxyproto p;

	feed_str(&p, "PROXY TCP6 ::ffff:203.0.113.7 ::1 40000 443\r\n");
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_string_equal(src_of(&p), "203.0.113.7:40000");
}

/* UNKNOWN (a health check, or a family the balancer cannot say): the
 * connection keeps its own address, whatever follows the word. */
static void
test_v1_unknown(void **state)
{
	struct proxyproto p;

	feed_str(&p, "PROXY UNKNOWN\r\n");
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_false(p.has_addr);
	feed_str(&p, "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_false(p.has_addr);
	assert_int_equal(status_of("PROXY UNKNOWNX\r\n"), PROXYPROTO_ERROR);
}

/* What follows the header (the TLS ClientHello) is never taken. */
static void
test_v1_stops_at_end(void **state)
{
	struct proxyproto p;
	const char *h = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
	char buf[128];

	snprintf(buf, sizeof buf, "%s\x16\x03\x01", h);
	assert_int_equal(feed_str(&p, buf), strlen(h));
	assert_int_equal(p.status, PROXYPROTO_DONE);
	/* Once done, nothing more. */
	assert_int_equal(proxyproto_feed(&p, "\x16", 1), 0);
}

/* Byte by byte reads what at once reads: a header may come in pieces. */
static void
test_v1_in_pieces(void **state)
{
	struct proxyproto p;
	const char *h = "PROXY TCP4 198.51.100.9 10.0.0.1 4000 443\r\n";
	size_t i;

	proxyproto_init(&p);
	for (i = 0; h[i] != '\0'; i++) {
		assert_int_equal(p.status, PROXYPROTO_MORE);
		assert_int_equal(proxyproto_feed(&p, h + i, 1), 1);
	}
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_string_equal(src_of(&p), "198.51.100.9:4000");
}

/* At most 107 bytes, "\r\n" included. */
static void
test_v1_length_cap(void **state)
{
	char h[200];
	struct proxyproto p;

	snprintf(h, sizeof h, "PROXY UNKNOWN %.*s\r\n", 91,
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	assert_int_equal(strlen(h), 107);
	assert_int_equal(status_of(h), PROXYPROTO_DONE);
	snprintf(h, sizeof h, "PROXY UNKNOWN %.*s\r\n", 92,
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	/* Refused at the 107th byte, without waiting for the rest. */
	assert_int_equal(feed_str(&p, h), 107);
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	/* The longest real header fits. */
	assert_int_equal(status_of("PROXY TCP6 "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
	    PROXYPROTO_DONE);
}

static void
test_v1_line_end(void **state)
{
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
	/* Cut short: a valid beginning waits for more. */
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"),
	    PROXYPROTO_MORE);
}

/* One space between fields, six fields, nothing else. */
static void
test_v1_fields(void **state)
{
	assert_int_equal(status_of("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY \r\n"), PROXYPROTO_ERROR);
}

static void
test_v1_protocol(void **state)
{
	assert_int_equal(status_of("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
	/* The family must match the addresses. */
	assert_int_equal(status_of("PROXY TCP4 ::1 ::1 1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
}

static void
test_v1_addresses(void **state)
{
	assert_int_equal(status_of("PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.x 1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP6 1::2::3 ::1 1 2\r\n"),
	    PROXYPROTO_ERROR);
}

/* Ports: 0 to 65535, decimal, no sign, no leading zero. */
static void
test_v1_ports(void **state)
{
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(status_of("PROXY TCP4 1.2.3.4 5.6.7.8 0 0\r\n"),
	    PROXYPROTO_DONE);
}

/* Anything else is refused at its first wrong byte: a direct TLS client
 * (0x16), an HTTP request, a lower-case word, a control character. */
static void
test_not_a_header(void **state)
{
	struct proxyproto p;

	assert_int_equal(feed(&p, "\x16\x03\x01\x02\x00", 5), 1);
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	assert_int_equal(feed_str(&p, "GET / HTTP/1.1\r\n"), 1);
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	assert_int_equal(feed_str(&p, "PROXZ TCP4"), 5);
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	assert_int_equal(status_of("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    PROXYPROTO_ERROR);
	assert_int_equal(feed(&p, "PROXY UNKNOWN \x01\r\n", 17), 15);
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	assert_int_equal(feed(&p, "", 0), 0);
	assert_int_equal(p.status, PROXYPROTO_MORE);
}

/* ---- version 2 ------------------------------------------------------------ */

static const unsigned char sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

/* A version 2 header: signature, ver_cmd, fam, then len bytes of body. */
static size_t
v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam,
    const void *body, size_t len)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(len >> 8);
	out[15] = (unsigned char)len;
	if (len > 0 && body != NULL)
		memcpy(out + 16, body, len);
	return 16 + len;
}

static const unsigned char tcp4_body[12] = {
	203, 0, 113, 7,   10, 0, 0, 1,   0xc8, 0x22,   0x01, 0xbb,
};

static void
test_v2_tcp4(void **state)
{
	unsigned char h[64];
	struct proxyproto p;
	size_t n = v2(h, 0x21, 0x11, tcp4_body, sizeof tcp4_body);

	assert_int_equal(feed(&p, h, n), n);
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_int_equal(p.version, 2);
	assert_string_equal(src_of(&p), "203.0.113.7:51234");
}

static void
test_v2_tcp6(void **state)
{
	unsigned char body[36] = {0}, h[64];
	struct proxyproto p;
	size_t n;

	inet_pton(AF_INET6, "2001:db8::7", body);
	inet_pton(AF_INET6, "2001:db8::1", body + 16);
	body[32] = 0x13;
	body[33] = 0x88;        /* 5000 */
	n = v2(h, 0x21, 0x21, body, sizeof body);
	assert_int_equal(feed(&p, h, n), n);
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_string_equal(src_of(&p), "2001:db8::7:5000");
}

/* LOCAL: the balancer's own connection (a health check), whatever the
 * family and body say. */
static void
test_v2_local(void **state)
{
	unsigned char h[64];
	struct proxyproto p;
	size_t n;

	n = v2(h, 0x20, 0x00, NULL, 0);
	assert_int_equal(feed(&p, h, n), n);
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_false(p.has_addr);
	n = v2(h, 0x20, 0x11, tcp4_body, sizeof tcp4_body);
	feed(&p, h, n);
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_false(p.has_addr);
}

/* PROXY with an unspecified family: the connection's own address. */
static void
test_v2_unspec(void **state)
{
	unsigned char h[64];
	struct proxyproto p;
	size_t n = v2(h, 0x21, 0x00, NULL, 0);

	feed(&p, h, n);
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_false(p.has_addr);
}

/* TLVs after the addresses are skipped, and the header ends where its
 * length says: what follows stays for TLS. */
static void
test_v2_tlvs_skipped(void **state)
{
	unsigned char body[12 + 40], h[128];
	struct proxyproto p;
	size_t n, i;

	memcpy(body, tcp4_body, 12);
	body[12] = 0x04;        /* PP2_TYPE_NOOP */
	body[13] = 0;
	body[14] = 37;
	memset(body + 15, 0xee, 37);
	n = v2(h, 0x21, 0x11, body, sizeof body);
	h[n] = 0x16;            /* the ClientHello's first byte */
	assert_int_equal(feed(&p, h, n + 1), n);
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_string_equal(src_of(&p), "203.0.113.7:51234");
	/* And byte by byte. */
	proxyproto_init(&p);
	for (i = 0; i < n; i++)
		assert_int_equal(proxyproto_feed(&p, h + i, 1), 1);
	assert_int_equal(p.status, PROXYPROTO_DONE);
	assert_string_equal(src_of(&p), "203.0.113.7:51234");
}

/* A length past the cap is refused as soon as it is read, before any
 * of the body is. */
static void
test_v2_length_cap(void **state)
{
	static unsigned char h[16 + PROXYPROTO_V2_MAX_LEN + 1];
	struct proxyproto p;
	size_t n;

	n = v2(h, 0x21, 0x11, NULL, PROXYPROTO_V2_MAX_LEN + 1);
	memcpy(h + 16, tcp4_body, 12);
	assert_int_equal(feed(&p, h, n), 16);
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	n = v2(h, 0x21, 0x11, NULL, PROXYPROTO_V2_MAX_LEN);
	memcpy(h + 16, tcp4_body, 12);
	assert_int_equal(feed(&p, h, n), n);
	assert_int_equal(p.status, PROXYPROTO_DONE);
	n = v2(h, 0x21, 0x11, NULL, 0xffff);
	assert_int_equal(feed(&p, h, 16), 16);
	assert_int_equal(p.status, PROXYPROTO_ERROR);
}

static void
test_v2_version_and_command(void **state)
{
	unsigned char h[64];
	struct proxyproto p;

	feed(&p, h, v2(h, 0x11, 0x11, tcp4_body, 12));      /* version 1 */
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	feed(&p, h, v2(h, 0x31, 0x11, tcp4_body, 12));      /* version 3 */
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	feed(&p, h, v2(h, 0x22, 0x11, tcp4_body, 12));      /* command 2 */
	assert_int_equal(p.status, PROXYPROTO_ERROR);
}

/* Only TCP over IPv4 or IPv6 names a client. */
static void
test_v2_family(void **state)
{
	unsigned char body[216] = {0}, h[256];
	struct proxyproto p;

	feed(&p, h, v2(h, 0x21, 0x12, tcp4_body, 12));      /* UDP4 */
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	feed(&p, h, v2(h, 0x21, 0x22, body, 36));           /* UDP6 */
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	feed(&p, h, v2(h, 0x21, 0x31, body, 216));          /* UNIX */
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	feed(&p, h, v2(h, 0x21, 0x10, tcp4_body, 12));      /* no protocol */
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	feed(&p, h, v2(h, 0x21, 0x41, tcp4_body, 12));      /* no family */
	assert_int_equal(p.status, PROXYPROTO_ERROR);
}

/* A length too short for the family's addresses. */
static void
test_v2_short_addresses(void **state)
{
	unsigned char body[36] = {0}, h[64];
	struct proxyproto p;

	feed(&p, h, v2(h, 0x21, 0x11, tcp4_body, 11));
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	feed(&p, h, v2(h, 0x21, 0x21, body, 35));
	assert_int_equal(p.status, PROXYPROTO_ERROR);
}

static void
test_v2_signature(void **state)
{
	unsigned char h[64];
	struct proxyproto p;
	size_t n = v2(h, 0x21, 0x11, tcp4_body, 12);

	h[7] = 'q';
	assert_int_equal(feed(&p, h, n), 8);
	assert_int_equal(p.status, PROXYPROTO_ERROR);
	/* Cut short: waits. */
	n = v2(h, 0x21, 0x11, tcp4_body, 12);
	assert_int_equal(feed(&p, h, n - 1), n - 1);
	assert_int_equal(p.status, PROXYPROTO_MORE);
}

/* ---- trusted balancers --------------------------------------------------- */

static struct sockaddr_storage ss;

static const struct sockaddr *
sa_of(const char *addr)
{
	memset(&ss, 0, sizeof ss);
	if (strchr(addr, ':') == NULL) {
		struct sockaddr_in *sin = (void *)&ss;

		sin->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
	} else {
		struct sockaddr_in6 *sin6 = (void *)&ss;

		sin6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr),
		    1);
	}
	return (const struct sockaddr *)&ss;
}

/* ---- the configuration keys ---------------------------------------------- */

#define BASE                                                   \
	"[tls]\n"                                              \
	"cert = /etc/strapontin/server.pem\n"                  \
	"key = /etc/strapontin/server.key\n"                   \
	"[database]\n"                                         \
	"conninfo = host=/tmp dbname=strapontin\n"

static struct config *
load(const char *text, char *err, size_t errlen)
{
	err[0] = '\0';
	return config_load_mem("t.conf", text, strlen(text), err, errlen);
}

static void
test_config_keys(void **state)
{
	struct config *cfg;
	char err[512];

	cfg = load(BASE, err, sizeof err);
	assert_non_null(cfg);
	assert_false(cfg->proxy_protocol);
	assert_false(cfg->http_proxy_protocol);
	assert_int_equal(cfg->proxy_from.n, 0);
	config_free(cfg);

	cfg = load(BASE "[server]\nproxy_protocol = on\n"
	    "proxy_from = 10.0.0.5 10.0.0.6/31\nproxy_from = fd00::/64\n"
	    "[http]\nproxy_protocol = on\n", err, sizeof err);
	assert_non_null(cfg);
	assert_true(cfg->proxy_protocol);
	assert_true(cfg->http_proxy_protocol);
	assert_int_equal(cfg->proxy_from.n, 3);
	assert_true(netlist_match(&cfg->proxy_from, sa_of("10.0.0.7")));
	config_free(cfg);
}

/* On without a balancer would honour nobody: a mistake, said at load. */
static void
test_config_on_needs_from(void **state)
{
	char err[512];

	assert_null(load(BASE "[http]\nproxy_protocol = on\n", err,
	    sizeof err));
	assert_non_null(strstr(err, "proxy_from"));
	assert_null(load(BASE "[server]\nproxy_protocol = on\n", err,
	    sizeof err));
	assert_non_null(strstr(err, "proxy_from"));
}

static void
test_config_bad_values(void **state)
{
	char err[512];

	assert_null(load(BASE "[server]\nproxy_protocol = maybe\n", err,
	    sizeof err));
	assert_non_null(strstr(err, "t.conf:7: server.proxy_protocol must be "
	    "on or off"));
	assert_null(load(BASE "[server]\nproxy_from = 10.0.0.5 lb1\n", err,
	    sizeof err));
	assert_non_null(strstr(err, "t.conf:7: server.proxy_from: \"lb1\""));
	assert_null(load(BASE "[server]\nproxy_from = 10.0.0.1/24\n", err,
	    sizeof err));
	assert_non_null(strstr(err, "10.0.0.1/24"));
}

/* Every key takes effect on SIGHUP (new connections follow it). */
static void
test_config_reloadable(void **state)
{
	struct config *a, *b;
	char err[512];

	a = load(BASE, err, sizeof err);
	b = load(BASE "[server]\nproxy_protocol = on\nproxy_from = 10.0.0.5\n"
	    "[http]\nproxy_protocol = on\n", err, sizeof err);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(config_reloadable(a, b, err, sizeof err));
	config_keep_static(b, a);
	assert_true(b->proxy_protocol);
	assert_int_equal(b->proxy_from.n, 1);
	config_free(a);
	config_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v4_mapped),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_stops_at_end),
		cmocka_unit_test(test_v1_in_pieces),
		cmocka_unit_test(test_v1_length_cap),
		cmocka_unit_test(test_v1_line_end),
		cmocka_unit_test(test_v1_fields),
		cmocka_unit_test(test_v1_protocol),
		cmocka_unit_test(test_v1_addresses),
		cmocka_unit_test(test_v1_ports),
		cmocka_unit_test(test_not_a_header),
		cmocka_unit_test(test_v2_tcp4),
		cmocka_unit_test(test_v2_tcp6),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_unspec),
		cmocka_unit_test(test_v2_tlvs_skipped),
		cmocka_unit_test(test_v2_length_cap),
		cmocka_unit_test(test_v2_version_and_command),
		cmocka_unit_test(test_v2_family),
		cmocka_unit_test(test_v2_short_addresses),
		cmocka_unit_test(test_v2_signature),
		cmocka_unit_test(test_config_keys),
		cmocka_unit_test(test_config_on_needs_from),
		cmocka_unit_test(test_config_bad_values),
		cmocka_unit_test(test_config_reloadable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
