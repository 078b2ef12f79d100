/* Unit tests of netlist: the address lists of the configuration, who is a
 * trusted balancer (server.proxy_from, docs/operations.md "Behind a load
 * balancer") and who may read the metrics (http.metrics_allow). A wrong
 * match lets a stranger claim any client address, or read the metrics. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netlist.h"

static struct netlist
list_of(const char *text)
{
	struct netlist l;
	char err[200];

	memset(&l, 0, sizeof l);
	assert_true(netlist_add(&l, text, err, sizeof err));
	return l;
}

static void
test_parse(void **state)
{
	struct netblock b;

	(void)state;
	assert_true(netblock_parse("10.0.0.5", &b));
	assert_int_equal(b.family, AF_INET);
	assert_int_equal(b.bits, 32);
	assert_true(netblock_parse("10.0.0.6/31", &b));
	assert_int_equal(b.bits, 31);
	assert_true(netblock_parse("0.0.0.0/0", &b));
	assert_true(netblock_parse("fd00::/64", &b));
	assert_int_equal(b.family, AF_INET6);
	assert_int_equal(b.bits, 64);
	assert_true(netblock_parse("::1", &b));
	assert_int_equal(b.bits, 128);
	/* Host bits past the prefix: a typo. */
	assert_false(netblock_parse("10.0.0.5/31", &b));
	assert_false(netblock_parse("10.0.0.0/33", &b));
	assert_false(netblock_parse("fd00::/129", &b));
	assert_false(netblock_parse("10.0.0.0/", &b));
	assert_false(netblock_parse("10.0.0.0/08", &b));
	assert_false(netblock_parse("10.0.0.0/-8", &b));
	assert_false(netblock_parse("/8", &b));
	assert_false(netblock_parse("lb.example.org", &b));
	assert_false(netblock_parse("localhost", &b));
	assert_false(netblock_parse("", &b));
}

static void
test_add(void **state)
{
	struct netlist l;
	char err[200], many[64 * 12 + 20];
	size_t i;

	(void)state;
	memset(&l, 0, sizeof l);
	assert_true(netlist_add(&l, "", err, sizeof err));
	assert_int_equal(l.n, 0);
	/* Spaces, tabs and commas separate; a second call adds. */
	assert_true(netlist_add(&l, " 127.0.0.1 ::1,10.0.0.0/8\tfe80::/10 ",
	    err, sizeof err));
	assert_int_equal(l.n, 4);
	assert_true(netlist_add(&l, "192.168.1.0/25", err, sizeof err));
	assert_int_equal(l.n, 5);
	/* A bad block is named in the message. */
	assert_false(netlist_add(&l, "10.0.0.9 ::1/129", err, sizeof err));
	assert_non_null(strstr(err, "\"::1/129\""));
	assert_false(netlist_add(&l, "localhost", err, sizeof err));
	/* At most NETLIST_MAX. */
	memset(&l, 0, sizeof l);
	many[0] = '\0';
	for (i = 0; i <= NETLIST_MAX; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many),
		    "10.0.%zu.1 ", i);
	assert_false(netlist_add(&l, many, err, sizeof err));
	assert_int_equal(l.n, NETLIST_MAX);
	assert_non_null(strstr(err, "more than"));
}

static void
test_match_text(void **state)
{
	struct netlist l;

	(void)state;
	memset(&l, 0, sizeof l);
	assert_false(netlist_match_text(&l, "127.0.0.1"));
	l = list_of("127.0.0.1 ::1");
	assert_true(netlist_match_text(&l, "127.0.0.1"));
	assert_false(netlist_match_text(&l, "127.0.0.2"));
	assert_true(netlist_match_text(&l, "::1"));
	assert_false(netlist_match_text(&l, NULL));
	assert_false(netlist_match_text(&l, "local"));
	l = list_of("10.0.0.0/8 192.168.1.0/25 2001:db8::/32");
	assert_true(netlist_match_text(&l, "10.200.3.4"));
	assert_false(netlist_match_text(&l, "11.0.0.1"));
	assert_true(netlist_match_text(&l, "192.168.1.127"));
	assert_false(netlist_match_text(&l, "192.168.1.128"));
	assert_true(netlist_match_text(&l, "2001:db8:1::5"));
	assert_false(netlist_match_text(&l, "2001:db9::5"));
	/* An IPv4 client on a dual-stack socket. */
	assert_true(netlist_match_text(&l, "::ffff:10.0.0.7"));
	l = list_of("0.0.0.0/0");
	assert_true(netlist_match_text(&l, "8.8.8.8"));
	assert_false(netlist_match_text(&l, "::1"));
}

static void
test_match_sockaddr(void **state)
{
	struct netlist l = list_of("10.0.0.5 10.0.0.6/31 fd00:1::/32");
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	(void)state;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "10.0.0.7", &sin.sin_addr);
	assert_true(netlist_match(&l, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "10.0.0.8", &sin.sin_addr);
	assert_false(netlist_match(&l, (struct sockaddr *)&sin));
	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "fd00:1:ffff::9", &sin6.sin6_addr);
	assert_true(netlist_match(&l, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "fd00:2::9", &sin6.sin6_addr);
	assert_false(netlist_match(&l, (struct sockaddr *)&sin6));
	/* A dual-stack listener's view of an IPv4 client. */
	inet_pton(AF_INET6, "::ffff:10.0.0.5", &sin6.sin6_addr);
	assert_true(netlist_match(&l, (struct sockaddr *)&sin6));
	inet_pton(AF_INET6, "::ffff:10.0.0.9", &sin6.sin6_addr);
	assert_false(netlist_match(&l, (struct sockaddr *)&sin6));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_match_text),
		cmocka_unit_test(test_match_sockaddr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
