/* Unit tests of params: every parameter type with good and bad values, the
 * flags (required, nullable), unknown members, and the RFC 3339, date and
 * e-mail checks the dispatcher relies on before any handler or SQL runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "params.h"
#include "util.h"

static const char *const colours[] = { "red", "green", "blue", NULL };

struct outcome {
	bool ok;
	char field[128];  /* "" if validation gave none */
	char msg[256];
};

/* Validates params (reference stolen) against spec; copies the field name
 * out before params goes, since it may point into params' own keys. */
static struct outcome
run(const struct param *spec, json_t *params)
{
	struct outcome o;
	const char *field = "(untouched)";

	memset(&o, 0, sizeof o);
	assert_non_null(params);
	o.ok = params_validate(spec, params, &field, o.msg, sizeof o.msg);
	if (field != NULL)
		snprintf(o.field, sizeof o.field, "%s", field);
	json_decref(params);
	return o;
}

static json_t *
load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);

	if (j == NULL)
		fail_msg("bad JSON in the test itself: %s: %s", text,
		    jerr.text);
	return j;
}

/* One required parameter "v" of the given type, set to value (stolen). */
static struct outcome
run_one(enum ptype type, long long min, long long max,
    const char *const *choices, json_t *value)
{
	struct param spec[2];
	json_t *params = json_object();

	memset(spec, 0, sizeof spec);
	spec[0].name = "v";
	spec[0].type = type;
	spec[0].flags = P_REQUIRED;
	spec[0].min = min;
	spec[0].max = max;
	spec[0].choices = choices;
	assert_non_null(value);
	json_object_set_new(params, "v", value);
	return run(spec, params);
}

static void
expect_one(int line, bool want, enum ptype type, long long min,
    long long max, const char *const *choices, json_t *value)
{
	char *dump = json_dumps(value, JSON_ENCODE_ANY), shown[256];
	struct outcome o;

	/* Copied, so that a failure (a longjmp) leaks nothing. */
	snprintf(shown, sizeof shown, "%s", dump);
	free(dump);
	o = run_one(type, min, max, choices, value);

	if (o.ok != want)
		fail_msg("line %d: %s was %s (%s)", line, shown,
		    o.ok ? "accepted" : "refused", o.msg);
	if (!o.ok) {
		/* The failure names the member and says what is wrong. */
		if (strcmp(o.field, "v") != 0)
			fail_msg("line %d: %s: field is \"%s\", expected \"v\"",
			    line, shown, o.field);
		if (strncmp(o.msg, "v ", 2) != 0)
			fail_msg("line %d: %s: message \"%s\" should start "
			    "with the field name", line, shown, o.msg);
	} else if (o.field[0] != '\0') {
		fail_msg("line %d: %s accepted but field left as \"%s\"", line,
		    shown, o.field);
	}
}

#define GOOD(t, min, max, ch, j) expect_one(__LINE__, true, t, min, max, ch, j)
#define BAD(t, min, max, ch, j) expect_one(__LINE__, false, t, min, max, ch, j)
#define GOODJ(t, min, max, ch, text) GOOD(t, min, max, ch, load(text))
#define BADJ(t, min, max, ch, text) BAD(t, min, max, ch, load(text))
#define GOODS(t, min, max, ch, s) GOOD(t, min, max, ch, json_string(s))
#define BADS(t, min, max, ch, s) BAD(t, min, max, ch, json_string(s))

static void
test_int(void **state)
{
	GOODJ(PT_INT, 1, 10, NULL, "1");
	GOODJ(PT_INT, 1, 10, NULL, "10");
	GOODJ(PT_INT, -5, 5, NULL, "-5");
	GOODJ(PT_INT, 1900, 2100, NULL, "1985");
	BADJ(PT_INT, 1, 10, NULL, "0");
	BADJ(PT_INT, 1, 10, NULL, "11");
	BADJ(PT_INT, 1, 10, NULL, "-1");
	BADJ(PT_INT, 1, 10, NULL, "5.0");
	BADJ(PT_INT, 1, 10, NULL, "5.5");
	BADJ(PT_INT, 1, 10, NULL, "\"5\"");
	BADJ(PT_INT, 1, 10, NULL, "true");
	BADJ(PT_INT, 1, 10, NULL, "[5]");
	BADJ(PT_INT, 1, 10, NULL, "{}");
	BADJ(PT_INT, 1, 100000, NULL, "9223372036854775807");
}

static void
test_id(void **state)
{
	GOODJ(PT_ID, 0, 0, NULL, "1");
	GOODJ(PT_ID, 0, 0, NULL, "123456789");
	/* The largest integer a JavaScript client holds exactly. */
	GOODJ(PT_ID, 0, 0, NULL, "9007199254740992");
	BADJ(PT_ID, 0, 0, NULL, "9007199254740993");
	BADJ(PT_ID, 0, 0, NULL, "0");
	BADJ(PT_ID, 0, 0, NULL, "-1");
	BADJ(PT_ID, 0, 0, NULL, "1.0");
	BADJ(PT_ID, 0, 0, NULL, "\"1\"");
	BADJ(PT_ID, 0, 0, NULL, "false");
}

static void
test_number(void **state)
{
	GOODJ(PT_NUMBER, 0, 100, NULL, "0");
	GOODJ(PT_NUMBER, 0, 100, NULL, "1.5");
	GOODJ(PT_NUMBER, 0, 100, NULL, "100");
	GOODJ(PT_NUMBER, 0, 100, NULL, "100.0");
	GOODJ(PT_NUMBER, 0, 100, NULL, "2e1");
	BADJ(PT_NUMBER, 0, 100, NULL, "-0.5");
	BADJ(PT_NUMBER, 0, 100, NULL, "100.5");
	BADJ(PT_NUMBER, 0, 100, NULL, "1e300");
	BADJ(PT_NUMBER, 0, 100, NULL, "\"1.5\"");
	BADJ(PT_NUMBER, 0, 100, NULL, "true");
}

static void
test_bool(void **state)
{
	GOODJ(PT_BOOL, 0, 0, NULL, "true");
	GOODJ(PT_BOOL, 0, 0, NULL, "false");
	BADJ(PT_BOOL, 0, 0, NULL, "0");
	BADJ(PT_BOOL, 0, 0, NULL, "1");
	BADJ(PT_BOOL, 0, 0, NULL, "\"true\"");
	BADJ(PT_BOOL, 0, 0, NULL, "[]");
}

static void
test_string(void **state)
{
	char big[202];

	GOODS(PT_STRING, 1, 10, NULL, "a");
	GOODS(PT_STRING, 1, 10, NULL, "0123456789");
	GOODS(PT_STRING, 0, 10, NULL, "");
	/* Lengths are in bytes: "é" is two. */
	GOODS(PT_STRING, 1, 2, NULL, "\xc3\xa9");
	BADS(PT_STRING, 1, 1, NULL, "\xc3\xa9");
	GOODS(PT_STRING, 1, 100, NULL, "Théâtre du Châtelet – salle 2");
	BADS(PT_STRING, 1, 10, NULL, "");
	BADS(PT_STRING, 1, 10, NULL, "01234567890");
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	BADS(PT_STRING, 1, 200, NULL, big);
	big[200] = '\0';
	GOODS(PT_STRING, 1, 200, NULL, big);
	BADJ(PT_STRING, 1, 10, NULL, "5");
	BADJ(PT_STRING, 1, 10, NULL, "[\"a\"]");
	BADJ(PT_STRING, 1, 10, NULL, "true");
}

static void
test_string_control(void **state)
{
	/* One line of text: no control character at all. */
	BADS(PT_STRING, 1, 100, NULL, "two\nlines");
	BADS(PT_STRING, 1, 100, NULL, "tab\there");
	BADS(PT_STRING, 1, 100, NULL, "cr\r");
	BADS(PT_STRING, 1, 100, NULL, "bell\a");
	BADS(PT_STRING, 1, 100, NULL, "\x1b[31mred");
	BADS(PT_STRING, 1, 100, NULL, "del\x7f");
	BADS(PT_STRING, 1, 100, NULL, "\x01");
	/* Free text may hold line breaks and tabs, nothing else. */
	GOODS(PT_TEXT, 0, 100, NULL, "two\nlines\r\n\tindented");
	BADS(PT_TEXT, 0, 100, NULL, "bell\a");
	BADS(PT_TEXT, 0, 100, NULL, "\x1b[2J");
	BADS(PT_TEXT, 0, 100, NULL, "del\x7f");
	GOODS(PT_TEXT, 0, 5, NULL, "");
	BADS(PT_TEXT, 0, 5, NULL, "123456");
}

static void
test_string_blank(void **state)
{
	BADS(PT_STRING, 1, 100, NULL, " ");
	BADS(PT_STRING, 1, 100, NULL, "   ");
	BADS(PT_TEXT, 1, 100, NULL, " \n\t\r\n ");
	GOODS(PT_STRING, 1, 100, NULL, " x ");
	/* With no minimum length, blank is as good as empty. */
	GOODS(PT_STRING, 0, 100, NULL, "  ");
}

/* "a\u0000b" is valid JSON (the JSON parser of the daemon refuses it, but
 * a value built any other way must not slip through as "a"). */
static void
test_string_nul(void **state)
{
	BAD(PT_STRING, 0, 100, NULL, json_stringn("a\0b", 3));
	BAD(PT_TEXT, 0, 100, NULL, json_stringn("a\0b", 3));
	BAD(PT_STRING, 0, 100, NULL, json_stringn("\0", 1));
	BAD(PT_EMAIL, 0, 0, NULL, json_stringn("a@b.org\0x", 9));
	BAD(PT_ENUM, 0, 0, colours, json_stringn("red\0", 4));
	BAD(PT_CURSOR, 0, 0, NULL, json_stringn("abc\0def", 7));
	BAD(PT_DATE, 0, 0, NULL, json_stringn("2024-02-29\0", 11));
	BAD(PT_TIME, 0, 0, NULL, json_stringn("2024-02-29T10:00:00Z\0", 21));
}

static void
test_enum(void **state)
{
	struct outcome o;

	GOODS(PT_ENUM, 0, 0, colours, "red");
	GOODS(PT_ENUM, 0, 0, colours, "blue");
	BADS(PT_ENUM, 0, 0, colours, "Red");
	BADS(PT_ENUM, 0, 0, colours, "re");
	BADS(PT_ENUM, 0, 0, colours, "redd");
	BADS(PT_ENUM, 0, 0, colours, "");
	BADJ(PT_ENUM, 0, 0, colours, "1");
	BADJ(PT_ENUM, 0, 0, colours, "[\"red\"]");

	/* The message lists the choices. */
	o = run_one(PT_ENUM, 0, 0, colours, json_string("pink"));
	assert_false(o.ok);
	assert_non_null(strstr(o.msg, "red"));
	assert_non_null(strstr(o.msg, "green"));
	assert_non_null(strstr(o.msg, "blue"));
}

static void
test_email(void **state)
{
	char big[300];

	GOODS(PT_EMAIL, 0, 0, NULL, "admin@example.org");
	GOODS(PT_EMAIL, 0, 0, NULL, "a@b.c");
	GOODS(PT_EMAIL, 0, 0, NULL, "first.last+tag@sub.example.fr");
	GOODS(PT_EMAIL, 0, 0, NULL, "J\xc3\xa9r\xc3\xb4me@exemple.fr");
	BADS(PT_EMAIL, 0, 0, NULL, "");
	BADS(PT_EMAIL, 0, 0, NULL, "nope");
	BADS(PT_EMAIL, 0, 0, NULL, "a@b");
	BADS(PT_EMAIL, 0, 0, NULL, "@example.org");
	BADS(PT_EMAIL, 0, 0, NULL, "a@");
	BADS(PT_EMAIL, 0, 0, NULL, "a@@example.org");
	BADS(PT_EMAIL, 0, 0, NULL, "a@b@example.org");
	BADS(PT_EMAIL, 0, 0, NULL, "a b@example.org");
	BADS(PT_EMAIL, 0, 0, NULL, "a@example.org ");
	BADS(PT_EMAIL, 0, 0, NULL, " a@example.org");
	BADS(PT_EMAIL, 0, 0, NULL, "a@example.org\n");
	BADS(PT_EMAIL, 0, 0, NULL, "a\r@example.org");
	BADS(PT_EMAIL, 0, 0, NULL, "a\x7f@example.org");
	BADS(PT_EMAIL, 0, 0, NULL, "a\t@example.org");
	BADJ(PT_EMAIL, 0, 0, NULL, "1");

	/* 254 bytes at most (RFC 5321 path limit). */
	memset(big, 'a', sizeof big);
	memcpy(big + 254 - 12, "@example.org", 13);
	assert_int_equal(strlen(big), 254);
	GOODS(PT_EMAIL, 0, 0, NULL, big);
	memset(big, 'a', sizeof big);
	memcpy(big + 255 - 12, "@example.org", 13);
	BADS(PT_EMAIL, 0, 0, NULL, big);

	assert_true(params_is_email("admin@example.org"));
	assert_false(params_is_email("admin.example.org"));
}

static void
test_time(void **state)
{
	static const char *const good[] = {
		"2024-02-29T10:00:00Z",
		"2024-02-29T10:00:00+01:00",
		"2024-02-29T10:00:00-05:30",
		"2024-02-29T10:00:00+00:00",
		"2024-02-29T10:00:00-00:00",
		"2024-02-29T10:00:00.5Z",
		"2024-02-29T10:00:00.123456Z",
		"2024-02-29T10:00:00.123456789+02:00",
		"2024-02-29t10:00:00z",
		"2024-02-29 10:00:00Z",
		"2000-02-29T00:00:00Z",
		"2026-03-14T20:30:00Z",
		"2026-12-31T23:59:59Z",
		"2026-01-01T00:00:00+23:59",
	};
	static const char *const bad[] = {
		"",
		"2023-02-29T10:00:00Z",        /* not a leap year */
		"1900-02-29T10:00:00Z",        /* nor this one */
		"2024-04-31T10:00:00Z",
		"2024-13-01T10:00:00Z",
		"2024-00-01T10:00:00Z",
		"2024-01-00T10:00:00Z",
		"2024-01-32T10:00:00Z",
		"2024-02-29T24:00:00Z",
		"2024-02-29T23:60:00Z",
		"2024-02-29T23:59:61Z",
		"2024-02-29T10:00:00",         /* no offset */
		"2024-02-29T10:00Z",           /* no seconds */
		"2024-02-29T10:00:00+0100",
		"2024-02-29T10:00:00+01",
		"2024-02-29T10:00:00+24:00",
		"2024-02-29T10:00:00+01:60",
		"2024-02-29T10:00:00.Z",
		"2024-02-29T10:00:00,5Z",
		"2024-02-29T10:00:00ZZ",
		"2024-02-29T10:00:00Z ",
		" 2024-02-29T10:00:00Z",
		"2024-02-29T10:00:00+01:00x",
		"2024-02-29X10:00:00Z",
		"2024-02-29T1:00:00Z",
		"2024-2-29T10:00:00Z",
		"24-02-29T10:00:00Z",
		"2024-02-29",
		"10:00:00Z",
		"2024-02-29T10:00:00UTC",
		"2024-02-29T10:00:00+01:00Z",
		"2024-02-29T10:00:00Z+01:00",
	};
	size_t i;

	for (i = 0; i < nitems(good); i++) {
		if (!params_is_rfc3339(good[i]))
			fail_msg("\"%s\" refused as RFC 3339", good[i]);
		GOODS(PT_TIME, 0, 0, NULL, good[i]);
	}
	for (i = 0; i < nitems(bad); i++) {
		if (params_is_rfc3339(bad[i]))
			fail_msg("\"%s\" accepted as RFC 3339", bad[i]);
		BADS(PT_TIME, 0, 0, NULL, bad[i]);
	}
	BADJ(PT_TIME, 0, 0, NULL, "1709200800");
}

static void
test_date(void **state)
{
	static const char *const good[] = {
		"2024-02-29", "2000-02-29", "2019-04-01", "2026-12-31",
		"2026-01-01", "2024-04-30",
	};
	static const char *const bad[] = {
		"", "2023-02-29", "1900-02-29", "2100-02-29", "2024-04-31",
		"2024-13-01", "2024-00-10", "2024-01-00", "2024-01-32",
		"2024-2-29", "2024-02-9", "24-02-29", "2024/02/29",
		"2024-02-29 ", "2024-02-29x", "2024-02-29T00:00:00Z",
		"29-02-2024", "abcd-ef-gh",
	};
	size_t i;

	for (i = 0; i < nitems(good); i++) {
		if (!params_is_date(good[i]))
			fail_msg("\"%s\" refused as a date", good[i]);
		GOODS(PT_DATE, 0, 0, NULL, good[i]);
	}
	for (i = 0; i < nitems(bad); i++) {
		if (params_is_date(bad[i]))
			fail_msg("\"%s\" accepted as a date", bad[i]);
		BADS(PT_DATE, 0, 0, NULL, bad[i]);
	}
	BADJ(PT_DATE, 0, 0, NULL, "20240229");
}

static void
test_hhmm(void **state)
{
	GOODS(PT_HHMM, 0, 0, NULL, "00:00");
	GOODS(PT_HHMM, 0, 0, NULL, "10:00");
	GOODS(PT_HHMM, 0, 0, NULL, "23:59");
	BADS(PT_HHMM, 0, 0, NULL, "24:00");
	BADS(PT_HHMM, 0, 0, NULL, "12:60");
	BADS(PT_HHMM, 0, 0, NULL, "7:30");
	BADS(PT_HHMM, 0, 0, NULL, "07:3");
	BADS(PT_HHMM, 0, 0, NULL, "07-30");
	BADS(PT_HHMM, 0, 0, NULL, "07h30");
	BADS(PT_HHMM, 0, 0, NULL, "07:30:00");
	BADS(PT_HHMM, 0, 0, NULL, "");
	BADS(PT_HHMM, 0, 0, NULL, "ab:cd");
	BADJ(PT_HHMM, 0, 0, NULL, "1030");
}

static void
test_id_array(void **state)
{
	GOODJ(PT_ID_ARRAY, 1, 3, NULL, "[1]");
	GOODJ(PT_ID_ARRAY, 1, 3, NULL, "[1,2,3]");
	GOODJ(PT_ID_ARRAY, 0, 3, NULL, "[]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "[]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "[1,2,3,4]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "[0]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "[1,-2]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "[1,\"2\"]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "[1.0]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "[null]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "[[1]]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "1");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "\"1,2\"");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "{\"0\":1}");
	/* The same bound as a single id (PT_ID): the largest integer a
	 * JavaScript client holds exactly. */
	GOODJ(PT_ID_ARRAY, 1, 3, NULL, "[9007199254740992]");
	BADJ(PT_ID_ARRAY, 1, 3, NULL, "[9007199254740993]");
}

static void
test_enum_array(void **state)
{
	GOODJ(PT_ENUM_ARRAY, 1, 3, colours, "[\"red\"]");
	GOODJ(PT_ENUM_ARRAY, 1, 3, colours, "[\"red\",\"green\",\"blue\"]");
	GOODJ(PT_ENUM_ARRAY, 0, 3, colours, "[]");
	BADJ(PT_ENUM_ARRAY, 1, 3, colours, "[]");
	BADJ(PT_ENUM_ARRAY, 1, 3, colours,
	    "[\"red\",\"green\",\"blue\",\"red\"]");
	BADJ(PT_ENUM_ARRAY, 1, 3, colours, "[\"pink\"]");
	BADJ(PT_ENUM_ARRAY, 1, 3, colours, "[\"red\",\"RED\"]");
	BADJ(PT_ENUM_ARRAY, 1, 3, colours, "[1]");
	BADJ(PT_ENUM_ARRAY, 1, 3, colours, "[null]");
	BADJ(PT_ENUM_ARRAY, 1, 3, colours, "\"red\"");
}

/* Territory names: one line each, never empty or blank. */
static void
test_string_array(void **state)
{
	char big[300];

	GOODJ(PT_STRING_ARRAY, 0, 3, NULL, "[]");
	GOODJ(PT_STRING_ARRAY, 1, 3, NULL, "[\"Livradois-Forez\"]");
	GOODJ(PT_STRING_ARRAY, 1, 3, NULL, "[\"Billom\",\"Brive\",\"Thiers\"]");
	BADJ(PT_STRING_ARRAY, 1, 3, NULL, "[]");
	BADJ(PT_STRING_ARRAY, 1, 3, NULL, "[\"a\",\"b\",\"c\",\"d\"]");
	BADJ(PT_STRING_ARRAY, 1, 3, NULL, "[\"\"]");
	BADJ(PT_STRING_ARRAY, 1, 3, NULL, "[\"   \"]");
	BADJ(PT_STRING_ARRAY, 1, 3, NULL, "[\"a\\nb\"]");
	BADJ(PT_STRING_ARRAY, 1, 3, NULL, "[1]");
	BADJ(PT_STRING_ARRAY, 1, 3, NULL, "[null]");
	BADJ(PT_STRING_ARRAY, 1, 3, NULL, "\"Billom\"");
	snprintf(big, sizeof big, "[\"%0201d\"]", 0);
	BADJ(PT_STRING_ARRAY, 1, 3, NULL, big);
	snprintf(big, sizeof big, "[\"%0200d\"]", 0);
	GOODJ(PT_STRING_ARRAY, 1, 3, NULL, big);
}

static void
test_cursor(void **state)
{
	char big[202];

	/* the shapes the lists give: "id" and "microseconds:id" */
	GOODS(PT_CURSOR, 0, 0, NULL, "1");
	GOODS(PT_CURSOR, 0, 0, NULL, "999999999999999999");
	GOODS(PT_CURSOR, 0, 0, NULL, "1773520200000000:42");
	GOODS(PT_CURSOR, 0, 0, NULL, "-2208988800000000:1");  /* 1900 */
	GOODS(PT_CURSOR, 0, 0, NULL, "253402300799999999:1"); /* 9999 */
	GOODS(PT_CURSOR, 0, 0, NULL, "0:7");
	/* instants PostgreSQL cannot hold (to_timestamp would fail) */
	BADS(PT_CURSOR, 0, 0, NULL, "-99999999999999999999:1");
	BADS(PT_CURSOR, 0, 0, NULL, "-99999999999999999:1");
	BADS(PT_CURSOR, 0, 0, NULL, "999999999999999999:1");
	BADS(PT_CURSOR, 0, 0, NULL, "-62135596800000001:1");
	BADS(PT_CURSOR, 0, 0, NULL, "253433923200000000:1");
	/* ids beyond bigint, and other shapes */
	BADS(PT_CURSOR, 0, 0, NULL, "9999999999999999999");
	BADS(PT_CURSOR, 0, 0, NULL, "1:9999999999999999999");
	BADS(PT_CURSOR, 0, 0, NULL, "-1");
	BADS(PT_CURSOR, 0, 0, NULL, "1:");
	BADS(PT_CURSOR, 0, 0, NULL, ":1");
	BADS(PT_CURSOR, 0, 0, NULL, "1:2:3");
	BADS(PT_CURSOR, 0, 0, NULL, "1:-2");
	BADS(PT_CURSOR, 0, 0, NULL, "--1:2");
	BADS(PT_CURSOR, 0, 0, NULL, "+1");
	BADS(PT_CURSOR, 0, 0, NULL, " 1");
	BADS(PT_CURSOR, 0, 0, NULL, "abc");
	BADS(PT_CURSOR, 0, 0, NULL, "AZaz09-_.:");
	BADS(PT_CURSOR, 0, 0, NULL, "2026-03-14T20:30:00Z.1234");
	BADS(PT_CURSOR, 0, 0, NULL, "");
	BADS(PT_CURSOR, 0, 0, NULL, "a b");
	BADS(PT_CURSOR, 0, 0, NULL, "a/b");
	BADS(PT_CURSOR, 0, 0, NULL, "a+b");
	BADS(PT_CURSOR, 0, 0, NULL, "a=b");
	BADS(PT_CURSOR, 0, 0, NULL, "a'b");
	BADS(PT_CURSOR, 0, 0, NULL, "a\"b");
	BADS(PT_CURSOR, 0, 0, NULL, "a;b");
	BADS(PT_CURSOR, 0, 0, NULL, "a\nb");
	BADS(PT_CURSOR, 0, 0, NULL, "caf\xc3\xa9");
	BADJ(PT_CURSOR, 0, 0, NULL, "12");
	memset(big, 'c', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	BADS(PT_CURSOR, 0, 0, NULL, big);
	memset(big, '1', sizeof big - 1);
	BADS(PT_CURSOR, 0, 0, NULL, big);
}

static const struct param flags_spec[] = {
	{ "name", PT_STRING, P_REQUIRED, 1, 50, NULL },
	{ "age", PT_INT, 0, 0, 150, NULL },
	{ "note", PT_TEXT, P_NULLABLE, 0, 100, NULL },
	{ "email", PT_EMAIL, P_REQUIRED | P_NULLABLE, 0, 0, NULL },
	{ NULL, 0, 0, 0, 0, NULL },
};

static void
expect_flags(int line, const char *json, bool want, const char *field,
    const char *msg_part)
{
	struct outcome o = run(flags_spec, load(json));

	if (o.ok != want)
		fail_msg("line %d: %s was %s (%s)", line, json,
		    o.ok ? "accepted" : "refused", o.msg);
	if (want)
		return;
	if (strcmp(o.field, field) != 0)
		fail_msg("line %d: %s: field \"%s\", expected \"%s\"", line,
		    json, o.field, field);
	if (msg_part != NULL && strstr(o.msg, msg_part) == NULL)
		fail_msg("line %d: %s: message \"%s\" lacks \"%s\"", line,
		    json, o.msg, msg_part);
}
#define FLAGS(json, want, field, part) \
	expect_flags(__LINE__, json, want, field, part)

static void
test_flags(void **state)
{
	FLAGS("{\"name\":\"x\",\"email\":\"a@b.org\"}", true, NULL, NULL);
	FLAGS("{\"name\":\"x\",\"email\":\"a@b.org\",\"age\":3,\"note\":\"n\"}",
	    true, NULL, NULL);
	/* Missing required members, in the order of the spec. */
	FLAGS("{}", false, "name", "required");
	FLAGS("{\"email\":\"a@b.org\"}", false, "name", "required");
	FLAGS("{\"name\":\"x\"}", false, "email", "required");
	/* null for a required member counts as missing, even if nullable. */
	FLAGS("{\"name\":null,\"email\":\"a@b.org\"}", false, "name",
	    "required");
	FLAGS("{\"name\":\"x\",\"email\":null}", false, "email", "required");
	/* null for an optional member: only if it is nullable. */
	FLAGS("{\"name\":\"x\",\"email\":\"a@b.org\",\"note\":null}", true,
	    NULL, NULL);
	FLAGS("{\"name\":\"x\",\"email\":\"a@b.org\",\"age\":null}", false,
	    "age", "null");
	/* A bad value is named even when a later member is missing. */
	FLAGS("{\"name\":\"x\",\"age\":-1}", false, "age", NULL);
}

static void
test_unknown_member(void **state)
{
	/* A misspelt optional member is refused, not ignored; the field is
	 * that member's own name. */
	FLAGS("{\"name\":\"x\",\"email\":\"a@b.org\",\"agee\":3}", false,
	    "agee", "unknown");
	FLAGS("{\"Name\":\"x\",\"email\":\"a@b.org\"}", false, "Name",
	    "unknown");
	/* Refused before anything else is looked at. */
	FLAGS("{\"bogus\":1}", false, "bogus", "unknown");
	FLAGS("{\"name\":\"x\",\"email\":\"a@b.org\",\"\":1}", false, "",
	    "unknown");
}

/* A member name too long for the message is cut there, but the field still
 * names it whole. */
static void
test_unknown_member_long(void **state)
{
	char name[400], json[500];
	struct outcome o;

	memset(name, 'k', 100);
	name[100] = '\0';
	snprintf(json, sizeof json, "{\"%s\":1}", name);
	o = run(flags_spec, load(json));
	assert_false(o.ok);
	assert_string_equal(o.field, name);
	assert_true(strlen(o.msg) < sizeof o.msg - 1);
}

static void
test_no_params(void **state)
{
	static const struct param none[] = { { NULL, 0, 0, 0, 0, NULL } };
	struct outcome o;

	o = run(none, json_object());
	assert_true(o.ok);
	assert_string_equal(o.field, "");
	o = run(none, load("{\"x\":1}"));
	assert_false(o.ok);
	assert_string_equal(o.field, "x");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_number),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_string),
		cmocka_unit_test(test_string_control),
		cmocka_unit_test(test_string_blank),
		cmocka_unit_test(test_string_nul),
		cmocka_unit_test(test_enum),
		cmocka_unit_test(test_email),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_hhmm),
		cmocka_unit_test(test_id_array),
		cmocka_unit_test(test_enum_array),
		cmocka_unit_test(test_string_array),
		cmocka_unit_test(test_cursor),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_unknown_member),
		cmocka_unit_test(test_unknown_member_long),
		cmocka_unit_test(test_no_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
