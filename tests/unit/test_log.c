/* Unit tests of log's line formats (docs/operations.md, "Logs"): text and
 * JSON lines, with the timestamp on a terminal or a file and the syslog
 * priority instead when stderr is the journal; and the JOURNAL_STREAM
 * check that decides between them. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "log.h"

#define TS "2026-12-05T13:45:00.123Z"

static void
expect_line(enum log_level level, bool json, bool journal, const char *want)
{
	char *line = log_format_line(level, json, journal, TS, "f", "a \"b\"");

	assert_non_null(line);
	assert_string_equal(line, want);
	free(line);
}

static void
test_text_lines(void **state)
{
	(void)state;
	expect_line(LL_ERROR, false, false, TS " error f: a \"b\"\n");
	expect_line(LL_WARN, false, false, TS " warn  f: a \"b\"\n");
	expect_line(LL_INFO, false, false, TS " info  f: a \"b\"\n");
	expect_line(LL_DEBUG, false, false, TS " debug f: a \"b\"\n");
}

/* Under the journal: no timestamp (the journal has its own), the
 * priority first, which journald takes off and records. */
static void
test_text_lines_journal(void **state)
{
	(void)state;
	expect_line(LL_ERROR, false, true, "<3>error f: a \"b\"\n");
	expect_line(LL_WARN, false, true, "<4>warn  f: a \"b\"\n");
	expect_line(LL_INFO, false, true, "<6>info  f: a \"b\"\n");
	expect_line(LL_DEBUG, false, true, "<7>debug f: a \"b\"\n");
}

static void
test_json_lines(void **state)
{
	(void)state;
	expect_line(LL_WARN, true, false,
	    "{\"ts\":\"" TS "\",\"level\":\"warn\",\"func\":\"f\","
	    "\"msg\":\"a \\\"b\\\"\"}\n");
	/* The same object behind the priority. */
	expect_line(LL_WARN, true, true,
	    "<4>{\"ts\":\"" TS "\",\"level\":\"warn\",\"func\":\"f\","
	    "\"msg\":\"a \\\"b\\\"\"}\n");
	expect_line(LL_ERROR, true, true,
	    "<3>{\"ts\":\"" TS "\",\"level\":\"error\",\"func\":\"f\","
	    "\"msg\":\"a \\\"b\\\"\"}\n");
}

/* A message that is not valid UTF-8 cannot be a JSON string: no line,
 * rather than a broken one. */
static void
test_json_bad_utf8(void **state)
{
	(void)state;
	assert_null(log_format_line(LL_INFO, true, false, TS, "f", "\xff"));
}

static void
test_journal_stream(void **state)
{
	char path[] = "/tmp/test_log.XXXXXX", other[] = "/tmp/test_log.XXXXXX";
	char s[64], bad[80];
	struct stat st;
	int fd, fd2;

	(void)state;
	assert_true((fd = mkstemp(path)) != -1);
	assert_true((fd2 = mkstemp(other)) != -1);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(s, sizeof s, "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	assert_true(log_stream_is_journal(s, fd));
	/* Another file (the journal's stream was handed to a child, or
	 * stderr was redirected since): not the journal. */
	assert_false(log_stream_is_journal(s, fd2));
	snprintf(bad, sizeof bad, "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino + 1);
	assert_false(log_stream_is_journal(bad, fd));
	snprintf(bad, sizeof bad, "%sx", s);
	assert_false(log_stream_is_journal(bad, fd));
	assert_false(log_stream_is_journal(NULL, fd));
	assert_false(log_stream_is_journal("", fd));
	assert_false(log_stream_is_journal("12", fd));
	assert_false(log_stream_is_journal("a:b", fd));
	/* A closed descriptor. */
	assert_false(log_stream_is_journal(s, 12345));
	close(fd);
	close(fd2);
	unlink(path);
	unlink(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_lines),
		cmocka_unit_test(test_text_lines_journal),
		cmocka_unit_test(test_json_lines),
		cmocka_unit_test(test_json_bad_utf8),
		cmocka_unit_test(test_journal_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
