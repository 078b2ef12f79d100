/* Unit tests of util: parse_duration (the configuration's durations),
 * parse_ll (every integer of the configuration, and listen ports) and
 * hex_encode (token hashes). */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"

#define YEARS_100 (100LL * 365 * 86400)

static void
test_duration_units(void **state)
{
	assert_int_equal(parse_duration("0"), 0);
	assert_int_equal(parse_duration("1"), 1);
	assert_int_equal(parse_duration("300"), 300);
	assert_int_equal(parse_duration("0s"), 0);
	assert_int_equal(parse_duration("90s"), 90);
	assert_int_equal(parse_duration("15m"), 900);
	assert_int_equal(parse_duration("24h"), 86400);
	assert_int_equal(parse_duration("12h"), 43200);
	assert_int_equal(parse_duration("7d"), 604800);
	assert_int_equal(parse_duration("1d"), 86400);
}

static void
test_duration_bad(void **state)
{
	static const char *const bad[] = {
		"", "5x", "-1", "-1s", "1.5h", "1,5h", "s", "m", "h", "d",
		"h1", "1 h", "1h ", "1h30m", "7D", "15M", "0x10", "1e3",
		"ten", "5ss", "--5",
		/* 32 characters or more */
		"000000000000000000000000000000001",
	};
	size_t i;

	for (i = 0; i < nitems(bad); i++) {
		if (parse_duration(bad[i]) != -1)
			fail_msg("parse_duration(\"%s\") = %lld, expected -1",
			    bad[i], parse_duration(bad[i]));
	}
}

/* A duration is capped at 100 years, whatever its unit, so that no
 * multiplication can overflow. */
static void
test_duration_limits(void **state)
{
	char buf[64];

	snprintf(buf, sizeof buf, "%lld", YEARS_100);
	assert_int_equal(parse_duration(buf), YEARS_100);
	snprintf(buf, sizeof buf, "%lld", YEARS_100 + 1);
	assert_int_equal(parse_duration(buf), -1);
	assert_int_equal(parse_duration("36500d"), YEARS_100);
	assert_int_equal(parse_duration("36501d"), -1);
	assert_int_equal(parse_duration("876000h"), YEARS_100);
	assert_int_equal(parse_duration("876001h"), -1);
	assert_int_equal(parse_duration("52560000m"), YEARS_100);
	assert_int_equal(parse_duration("52560001m"), -1);
	assert_int_equal(parse_duration("99999999999999999999d"), -1);
	assert_int_equal(parse_duration("9223372036854775807s"), -1);
	assert_int_equal(parse_duration("9223372036854775808"), -1);
}

static void
test_parse_ll_good(void **state)
{
	long long v = 42;

	assert_true(parse_ll("0", 0, 10, &v));
	assert_int_equal(v, 0);
	assert_true(parse_ll("10", 0, 10, &v));
	assert_int_equal(v, 10);
	assert_true(parse_ll("-5", -10, 10, &v));
	assert_int_equal(v, -5);
	assert_true(parse_ll("007", 0, 10, &v));
	assert_int_equal(v, 7);
	assert_true(parse_ll("9223372036854775807", 0, LLONG_MAX, &v));
	assert_int_equal(v, LLONG_MAX);
	assert_true(parse_ll("-9223372036854775808", LLONG_MIN, 0, &v));
	assert_true(v == LLONG_MIN);
}

static void
test_parse_ll_bad(void **state)
{
	static const char *const bad[] = {
		"", "a", "12a", "1.0", "1e2", "0x10", "5 ", "1 2", "--1",
		"9223372036854775808", "-9223372036854775809",
		"99999999999999999999999",
	};
	long long v = 42;
	size_t i;

	assert_false(parse_ll(NULL, 0, 10, &v));
	for (i = 0; i < nitems(bad); i++) {
		if (parse_ll(bad[i], LLONG_MIN, LLONG_MAX, &v))
			fail_msg("parse_ll(\"%s\") accepted, as %lld", bad[i],
			    v);
	}
	/* Out of range, either side. */
	assert_false(parse_ll("11", 0, 10, &v));
	assert_false(parse_ll("-1", 0, 10, &v));
	assert_false(parse_ll("65536", 0, 65535, &v));
	/* A failed parse leaves the output alone. */
	assert_int_equal(v, 42);
}

/* "Strict decimal integer parse of the whole string" (util.h): strtoll's
 * leniency about leading blanks must not leak through, or "127.0.0.1: 7443"
 * passes as a listen address and " 5" as a setting. */
static void
test_parse_ll_strict(void **state)
{
	static const char *const lax[] = { " 5", "\t5", "\n5", " -5" };
	long long v = 42;
	size_t i;

	for (i = 0; i < nitems(lax); i++) {
		if (parse_ll(lax[i], LLONG_MIN, LLONG_MAX, &v))
			fail_msg("parse_ll(\"%s\") accepted, as %lld", lax[i],
			    v);
	}
	assert_int_equal(parse_duration(" 5"), -1);
	assert_int_equal(parse_duration(" 5m"), -1);
}

static void
test_hex_encode(void **state)
{
	static const unsigned char bytes[] = { 0x00, 0xff, 0x1a, 0xa1, 0x09,
	    0x90 };
	unsigned char all[256];
	char out[2 * sizeof all + 1];
	size_t i;

	memset(out, 'x', sizeof out);
	hex_encode(bytes, 0, out);
	assert_string_equal(out, "");

	hex_encode(bytes, sizeof bytes, out);
	assert_string_equal(out, "00ff1aa10990");

	for (i = 0; i < sizeof all; i++)
		all[i] = (unsigned char)i;
	hex_encode(all, sizeof all, out);
	assert_int_equal(strlen(out), 2 * sizeof all);
	for (i = 0; i < sizeof all; i++) {
		unsigned int b;
		char pair[3] = { out[2 * i], out[2 * i + 1], '\0' };

		/* Lower case, two digits a byte, in order. */
		assert_true(strspn(pair, "0123456789abcdef") == 2);
		assert_int_equal(sscanf(pair, "%x", &b), 1);
		assert_int_equal(b, i);
	}
}

/* The x* allocators never return NULL, and handle the zero sizes that
 * plain malloc may answer with NULL. */
static void
test_xalloc(void **state)
{
	char *p, *q;

	p = xmalloc(0);
	assert_non_null(p);
	free(p);
	p = xcalloc(0, 0);
	assert_non_null(p);
	free(p);
	p = xstrndup("abcdef", 3);
	assert_string_equal(p, "abc");
	q = xasprintf("%s-%d", p, 7);
	assert_string_equal(q, "abc-7");
	free(p);
	free(q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_duration_limits),
		cmocka_unit_test(test_parse_ll_good),
		cmocka_unit_test(test_parse_ll_bad),
		cmocka_unit_test(test_parse_ll_strict),
		cmocka_unit_test(test_hex_encode),
		cmocka_unit_test(test_xalloc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
