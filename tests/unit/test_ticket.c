/* Unit tests of ticket: reading a code as a person types it at a door
 * (docs/booking-rules.md, "Tickets"). The check character is computed
 * here again, transcribed from ticket_check_char() in
 * sql/api/40_bookings.sql, and codes that the SQL itself generated are
 * read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ticket.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* The SQL, line for line: s := s + (strpos(alphabet, c) - 1) * i for i in
 * 1..15, then substr(alphabet, s % 31 + 1, 1). */
static char
sql_check_char(const char *body)
{
	int s = 0, i;

	for (i = 1; i <= 15; i++)
		s += (int)(strchr(alphabet, body[i - 1]) - alphabet) * i;
	return alphabet[s % 31];
}

/* A deterministic stream of codes of the documented format. */
static unsigned long long seed = 88172645463325252ULL;

static unsigned
next_rand(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return (unsigned)(seed >> 32);
}

/* A random valid code, as the server shows it: "XXXX-XXXX-XXXX-XXXX". */
static void
random_code(char out[20])
{
	char body[17];
	int i, j;

	for (i = 0; i < 15; i++)
		body[i] = alphabet[next_rand() % 32];
	body[15] = sql_check_char(body);
	body[16] = '\0';
	for (i = 0, j = 0; i < 16; i++) {
		if (i > 0 && i % 4 == 0)
			out[j++] = '-';
		out[j++] = body[i];
	}
	out[j] = '\0';
}

static enum ticket_status
parse(const char *s, char out[20])
{
	return ticket_parse(s, strlen(s), out);
}

/* Codes that ticket_code() of sql/api/40_bookings.sql generated
 * (PostgreSQL 15), as ticket_display() shows them. */
static void
test_sql_generated(void **state)
{
	static const char *const codes[] = {
	    "5NC9-19HX-Q0RQ-WSTR", "BBWY-7T7X-J7AC-EYX0",
	    "CVP4-V0YH-2AFZ-RVVQ", "MMK6-Y78A-GFZK-5CW1",
	    "M8R8-C614-2FTD-18R6", "NRZZ-6HPW-B32S-X3NW",
	    "EAJ9-1C0J-BDMQ-0RRY", "A66M-35RZ-19S7-2EZN",
	    "XFW4-Z2D3-PSS3-6P3K", "7Y8M-1MSC-KFA7-9YNC",
	    "96CH-WF09-A549-7JG0", "4PJV-B75A-MP58-DJPK",
	};
	char out[20];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		assert_int_equal(parse(codes[i], out), TICKET_OK);
		assert_string_equal(out, codes[i]);
	}
	/* And check characters the SQL gave for these bodies. */
	assert_int_equal(ticket_check_char("AAAABBBBCCCCDDD"), 'A');
	assert_int_equal(ticket_check_char("7KQ4M2XD9TPBW3R"), 'F');
	assert_int_equal(ticket_check_char("000000000000000"), '0');
}

static void
test_check_char_matches_sql(void **state)
{
	char code[20], body[16];
	int n;

	(void)state;
	for (n = 0; n < 10000; n++) {
		random_code(code);
		memcpy(body, code, 4);
		memcpy(body + 4, code + 5, 4);
		memcpy(body + 8, code + 10, 4);
		memcpy(body + 12, code + 15, 3);
		body[15] = '\0';
		assert_int_equal(ticket_check_char(body), sql_check_char(body));
	}
}

/* Whatever the way it is typed, the code comes out as the server shows
 * it. */
static void
test_as_typed(void **state)
{
	char out[20];

	(void)state;
	assert_int_equal(parse("7KQ4-M2XD-9TPB-W3RF", out), TICKET_OK);
	assert_string_equal(out, "7KQ4-M2XD-9TPB-W3RF");
	memset(out, 0, sizeof out);
	assert_int_equal(parse("7kq4m2xd9tpbw3rf", out), TICKET_OK);
	assert_string_equal(out, "7KQ4-M2XD-9TPB-W3RF");
	assert_int_equal(parse(" 7KQ4 M2XD\t9TPB\nW3RF\r\n", out), TICKET_OK);
	assert_string_equal(out, "7KQ4-M2XD-9TPB-W3RF");
	assert_int_equal(parse("7-K-Q-4--M2XD9TPB-W3RF-", out), TICKET_OK);
	assert_string_equal(out, "7KQ4-M2XD-9TPB-W3RF");
	/* Crockford's look-alikes: O is 0, I and L are 1, either case. */
	assert_int_equal(parse("5NC9-I9HX-QoRQ-WSTR", out), TICKET_OK);
	assert_string_equal(out, "5NC9-19HX-Q0RQ-WSTR");
	assert_int_equal(parse("96CH-WFO9-A549-7JGO", out), TICKET_OK);
	assert_string_equal(out, "96CH-WF09-A549-7JG0");
	assert_int_equal(parse("M8R8-C6L4-2FTD-I8R6", out), TICKET_OK);
	assert_string_equal(out, "M8R8-C614-2FTD-18R6");
}

static void
test_random_codes_as_typed(void **state)
{
	char code[20], typed[64], out[20];
	size_t i, j;
	int n;

	(void)state;
	for (n = 0; n < 2000; n++) {
		random_code(code);
		/* lower case, blanks for dashes, look-alikes */
		for (i = 0, j = 0; code[i] != '\0'; i++) {
			char c = code[i];

			if (c == '-')
				c = n % 2 ? ' ' : '-';
			else if (c == '0' && n % 3 == 0)
				c = 'o';
			else if (c == '1' && n % 3 == 1)
				c = 'L';
			else if (c == '1')
				c = 'i';
			else if (n % 5 == 0 && c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			typed[j++] = c;
		}
		typed[j] = '\0';
		memset(out, 'x', sizeof out);
		assert_int_equal(parse(typed, out), TICKET_OK);
		assert_string_equal(out, code);
	}
}

/* The check character catches any single misread character but 0 for Z
 * (values 31 apart) in the body, and any swap of two neighbours in the
 * body but 0 and Z. */
static void
test_check_catches_mistakes(void **state)
{
	char code[20], wrong[20], out[20];
	size_t i, k;
	int n;

	(void)state;
	for (n = 0; n < 300; n++) {
		random_code(code);
		for (i = 0; i < 19; i++) {
			if (code[i] == '-')
				continue;
			for (k = 0; k < 32; k++) {
				if (alphabet[k] == code[i])
					continue;
				memcpy(wrong, code, sizeof wrong);
				wrong[i] = alphabet[k];
				if (i < 18 && strchr("0Z", code[i]) &&
				    strchr("0Z", alphabet[k]))
					continue;
				memset(out, 'x', sizeof out);
				assert_int_equal(parse(wrong, out),
				    TICKET_CHECK);
				/* out is left alone on a refusal */
				assert_int_equal(out[0], 'x');
			}
		}
		for (i = 0; i + 1 < 18; i++) {
			size_t a = i, b = i + 1;

			if (code[a] == '-' || code[b] == '-' ||
			    code[a] == code[b] ||
			    (strchr("0Z", code[a]) && strchr("0Z", code[b])))
				continue;
			memcpy(wrong, code, sizeof wrong);
			wrong[a] = code[b];
			wrong[b] = code[a];
			assert_int_equal(parse(wrong, out), TICKET_CHECK);
		}
	}
}

static void
test_refused(void **state)
{
	char out[20];

	(void)state;
	memset(out, 'x', sizeof out);
	assert_int_equal(parse("", out), TICKET_LENGTH);
	assert_int_equal(parse(" - -- ", out), TICKET_LENGTH);
	assert_int_equal(parse("7KQ4-M2XD-9TPB-W3R", out), TICKET_LENGTH);
	assert_int_equal(parse("7KQ4-M2XD-9TPB-W3RFF", out), TICKET_LENGTH);
	assert_int_equal(parse("7KQ4-M2XD-9TPB-W3RF-7KQ4-M2XD-9TPB-W3RF",
	    out), TICKET_LENGTH);
	assert_int_equal(parse("7KQ4-M2XD-9TPB-W3RC", out), TICKET_CHECK);
	assert_int_equal(parse("AAAA-BBBB-CCCC-DDDD", out), TICKET_CHECK);
	/* U is not in the alphabet, and is named as such. */
	assert_int_equal(parse("7KQ4-M2XD-9TPB-W3RU", out), TICKET_LETTER_U);
	assert_int_equal(parse("u", out), TICKET_LETTER_U);
	/* Anything else outside it, even where the length is wrong. */
	assert_int_equal(parse("7KQ4_M2XD_9TPB_W3RF", out), TICKET_BAD_CHAR);
	assert_int_equal(parse("7KQ4-M2XD-9TPB-W3R*", out), TICKET_BAD_CHAR);
	assert_int_equal(parse("7KQ4-M2XD-9TPB-W3R\xc3\xa9", out),
	    TICKET_BAD_CHAR);
	assert_int_equal(parse("#", out), TICKET_BAD_CHAR);
	assert_int_equal(ticket_parse("7KQ4-M2XD\0-9TPB-W3RF", 20, out),
	    TICKET_BAD_CHAR);
	assert_int_equal(out[0], 'x');
	/* len bounds the input: the rest of the string is not read. */
	assert_int_equal(ticket_parse("7KQ4-M2XD-9TPB-W3RF****", 19, out),
	    TICKET_OK);
	assert_string_equal(out, "7KQ4-M2XD-9TPB-W3RF");
}

static void
test_reasons(void **state)
{
	(void)state;
	assert_string_equal(ticket_reason(TICKET_CHECK),
	    "Code de billet invalide (caractère de contrôle) / invalid "
	    "ticket code (check character)");
	assert_non_null(strstr(ticket_reason(TICKET_LENGTH), "16"));
	assert_non_null(strstr(ticket_reason(TICKET_LETTER_U), "U"));
	assert_non_null(strstr(ticket_reason(TICKET_BAD_CHAR),
	    "caractère non autorisé"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sql_generated),
		cmocka_unit_test(test_check_char_matches_sql),
		cmocka_unit_test(test_as_typed),
		cmocka_unit_test(test_random_codes_as_typed),
		cmocka_unit_test(test_check_catches_mistakes),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_reasons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
