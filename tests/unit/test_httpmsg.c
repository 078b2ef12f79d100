/* Unit tests of httpmsg: reading a request head (docs/http.md, "What is
 * read"). Each rule is tried with the request a client or an attacker
 * would send, and the status it must get. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "httpmsg.h"

#define MAX_HEAD 1024
#define MAX_BODY 4096

/* The parser works in place: each test gets its own copy, freed at the
 * end of the test (the struct points into it). */
static char *kept;

/* Scans (all at once) and parses text: 0 if it is read, else the status
 * of the refusal. */
static int
parse(const char *text, struct httpmsg *m)
{
	struct httpmsg_refusal why = {0, NULL};
	size_t scanned = 0, head_len = 0, len = strlen(text);

	free(kept);
	kept = strdup(text);
	switch (httpmsg_scan(kept, len, MAX_HEAD, &scanned, &head_len,
	    &why)) {
	case HTTPMSG_MORE:
		return -1;
	case HTTPMSG_REFUSED:
		assert_non_null(why.reason);
		return why.status;
	case HTTPMSG_HEAD:
		break;
	}
	if (!httpmsg_parse(kept, head_len, MAX_BODY, m, &why)) {
		assert_non_null(why.reason);
		return why.status;
	}
	return 0;
}

static int
status_of(const char *text)
{
	struct httpmsg m;

	return parse(text, &m);
}

static void
test_simple_get(void **state)
{
	struct httpmsg m;

	assert_int_equal(parse("GET /index.html?x=1 HTTP/1.1\r\n"
	    "Host: example.org\r\nCookie:  a=b ; c=d \t\r\n"
	    "X-Empty:\r\n\r\n", &m), 0);
	assert_string_equal(m.method, "GET");
	assert_string_equal(m.target, "/index.html?x=1");
	assert_int_equal(m.minor, 1);
	assert_int_equal(m.nfields, 3);
	assert_true(m.keep_alive);
	assert_false(m.expect_continue);
	assert_int_equal(m.content_length, 0);
	/* Lookup ignores case; blanks around a value are not part of it. */
	assert_string_equal(httpmsg_header(&m, "HOST"), "example.org");
	assert_string_equal(httpmsg_header(&m, "cookie"), "a=b ; c=d");
	assert_string_equal(httpmsg_header(&m, "x-empty"), "");
	assert_null(httpmsg_header(&m, "Origin"));
	/* UTF-8 in a value is kept as it is. */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nX-Name: "
	    "Gis\xc3\xa8le\r\n\r\n", &m), 0);
	assert_string_equal(httpmsg_header(&m, "X-Name"), "Gis\xc3\xa8le");
}

/* The head may come a few bytes at a time; each byte is looked at once. */
static void
test_scan_incremental(void **state)
{
	static const char text[] = "POST /rpc HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 2\r\n\r\n{}";
	struct httpmsg_refusal why;
	size_t scanned = 0, head_len = 0, i, last = 0;
	enum httpmsg_scan st = HTTPMSG_MORE;

	for (i = 1; i <= sizeof text - 1 && st == HTTPMSG_MORE; i++) {
		st = httpmsg_scan(text, i, MAX_HEAD, &scanned, &head_len,
		    &why);
		assert_true(scanned >= last);
		assert_true(scanned <= i);
		last = scanned;
	}
	assert_int_equal(st, HTTPMSG_HEAD);
	/* It ends at the blank line: the body is not part of it. */
	assert_int_equal(head_len, sizeof text - 1 - 2);
	assert_int_equal(i - 1, head_len);
	/* A CR last in the buffer waits for its LF. */
	scanned = 0;
	assert_int_equal(httpmsg_scan("GET / HTTP/1.1\r", 15, MAX_HEAD,
	    &scanned, &head_len, &why), HTTPMSG_MORE);
	assert_int_equal(scanned, 14);
}

static void
test_request_line(void **state)
{
	/* Origin form only. */
	assert_int_equal(status_of("GET http://example.org/ HTTP/1.1\r\n"
	    "Host: example.org\r\n\r\n"), 400);
	assert_int_equal(status_of("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
	    400);
	assert_int_equal(status_of("CONNECT example.org:443 HTTP/1.1\r\n"
	    "Host: h\r\n\r\n"), 400);
	assert_int_equal(status_of("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"),
	    400);
	/* Exactly one space between the parts; a method is a token. */
	assert_int_equal(status_of("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(status_of("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(status_of("GET /\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / http/1.1\r\nHost: h\r\n\r\n"), 400);
	assert_int_equal(status_of("\r\n\r\n"), 400);
	assert_int_equal(status_of("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n"),
	    400);
	/* A method we do not serve is read: the router says 405. */
	assert_int_equal(status_of("BREW / HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
}

static void
test_versions(void **state)
{
	struct httpmsg m;

	assert_int_equal(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
	assert_int_equal(status_of("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
	assert_int_equal(status_of("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
	assert_int_equal(status_of("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), 400);
	/* 1.0 needs no Host and closes unless it asks to stay. */
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &m), 0);
	assert_int_equal(m.minor, 0);
	assert_false(m.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n"
	    "\r\n", &m), 0);
	assert_true(m.keep_alive);
	/* 1.1 stays unless it says close, in any case, in a list. */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: "
	    "TE, CLOSE\r\n\r\n", &m), 0);
	assert_false(m.keep_alive);
	/* A 1.1 request without Host, or with two. */
	assert_int_equal(status_of("GET / HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
	    "\r\n"), 400);
}

static void
test_fields(void **state)
{
	/* Whitespace before the colon (a smuggling classic). */
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length\t: 5\r\n\r\n"), 400);
	/* Obsolete line folding. */
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n"
	    " c\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n"
	    "\tc\r\n\r\n"), 400);
	/* No colon, an empty name, a name that is not a token. */
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n"),
	    400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n"),
	    400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX\"A: b\r\n"
	    "\r\n"), 400);
	/* Control characters and DEL in a value. */
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: \x01"
	    "\r\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f"
	    "\r\n\r\n"), 400);
}

/* Line ends are CRLF, nothing else. */
static void
test_line_ends(void **state)
{
	struct httpmsg_refusal why;
	size_t scanned = 0, head_len;
	static const char nul[] = "GET / HTTP/1.1\r\nHost: h\0x\r\n\r\n";

	assert_int_equal(status_of("GET / HTTP/1.1\nHost: h\n\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\n\r\n"), 400);
	assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"),
	    400);
	assert_int_equal(httpmsg_scan(nul, sizeof nul - 1, MAX_HEAD, &scanned,
	    &head_len, &why), HTTPMSG_REFUSED);
	assert_int_equal(why.status, 400);
	/* The parser refuses them too when given such a head directly. */
	{
		char bad[] = "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n";
		struct httpmsg m;

		assert_false(httpmsg_parse(bad, sizeof bad - 1, MAX_BODY, &m,
		    &why));
		assert_int_equal(why.status, 400);
	}
	/* Empty lines before a request are the caller's to skip; a head
	 * that is only a blank line has no request line. */
	assert_int_equal(status_of("\r\n\r\n"), 400);
}

static void
test_caps(void **state)
{
	char big[MAX_HEAD + 64];
	struct httpmsg_refusal why;
	size_t scanned = 0, head_len, n;
	int i;

	/* A head that does not end within MAX_HEAD: 431, from the scan,
	 * before the rest is even sent. */
	n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: h\r\n"
	    "X-Pad: ");
	memset(big + n, 'a', sizeof big - n - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(httpmsg_scan(big, MAX_HEAD, MAX_HEAD, &scanned,
	    &head_len, &why), HTTPMSG_REFUSED);
	assert_int_equal(why.status, 431);
	/* Exactly MAX_HEAD bytes, blank line included: read. */
	n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: h\r\n"
	    "X-Pad: ");
	memset(big + n, 'a', MAX_HEAD - n - 4);
	memcpy(big + MAX_HEAD - 4, "\r\n\r\n", 5);
	assert_int_equal(strlen(big), MAX_HEAD);
	assert_int_equal(status_of(big), 0);
	/* One more byte: refused. */
	big[n] = 'b';
	memmove(big + n + 1, big + n, MAX_HEAD - n + 1);
	assert_int_equal(status_of(big), 431);
	/* A CR last at the cap would end the head past it. */
	memset(big, 'a', MAX_HEAD);
	memcpy(big, "GET / HTTP/1.1\r\n", 16);
	big[MAX_HEAD - 1] = '\r';
	scanned = 0;
	assert_int_equal(httpmsg_scan(big, MAX_HEAD, MAX_HEAD, &scanned,
	    &head_len, &why), HTTPMSG_REFUSED);
	assert_int_equal(why.status, 431);
	/* Too many fields. */
	n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
	for (i = 0; i < HTTPMSG_MAX_FIELDS + 1; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "A: b\r\n");
	snprintf(big + n, sizeof big - n, "\r\n");
	assert_int_equal(status_of(big), 431);
}

static void
test_framing(void **state)
{
	struct httpmsg m;

	assert_int_equal(parse("POST /rpc HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 0042\r\n\r\n", &m), 0);
	assert_int_equal(m.content_length, 42);
	/* Duplicates must agree. */
	assert_int_equal(parse("POST /rpc HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5\r\ncontent-length: 5\r\n\r\n", &m), 0);
	assert_int_equal(m.content_length, 5);
	assert_int_equal(status_of("POST /rpc HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400);
	/* Digits only: no sign, no list, no blank inside, not empty. */
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: +5\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 5, 5\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 1 2\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 0x10\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length:\r\n\r\n"), 400);
	/* Overflow is refused, not wrapped to something small. */
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 18446744073709551617\r\n\r\n"), 400);
	/* Over the body cap: 413 from the head alone. */
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 4097\r\n\r\n"), 413);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 4096\r\n\r\n"), 0);
	/* Transfer-Encoding: not supported (501); with Content-Length, the
	 * request smuggling case (400). */
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), 501);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), 400);
	assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 3\r\ntransfer-encoding: identity\r\n\r\n"), 400);
}

static void
test_expect(void **state)
{
	struct httpmsg m;

	assert_int_equal(parse("POST /rpc HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 10\r\nExpect: 100-Continue\r\n\r\n", &m), 0);
	assert_true(m.expect_continue);
	/* HTTP/1.0 knows nothing of it. */
	assert_int_equal(parse("POST /rpc HTTP/1.0\r\n"
	    "Content-Length: 10\r\nExpect: 100-continue\r\n\r\n", &m), 0);
	assert_false(m.expect_continue);
	assert_int_equal(status_of("POST /rpc HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 10\r\nExpect: something-else\r\n\r\n"), 417);
	/* Over the cap: 413 rather than 100, so curl sends no body. */
	assert_int_equal(status_of("POST /rpc HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 99999\r\nExpect: 100-continue\r\n\r\n"), 413);
}

static int
cleanup(void **state)
{
	free(kept);
	kept = NULL;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_simple_get, cleanup),
		cmocka_unit_test_teardown(test_scan_incremental, cleanup),
		cmocka_unit_test_teardown(test_request_line, cleanup),
		cmocka_unit_test_teardown(test_versions, cleanup),
		cmocka_unit_test_teardown(test_fields, cleanup),
		cmocka_unit_test_teardown(test_line_ends, cleanup),
		cmocka_unit_test_teardown(test_caps, cleanup),
		cmocka_unit_test_teardown(test_framing, cleanup),
		cmocka_unit_test_teardown(test_expect, cleanup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
