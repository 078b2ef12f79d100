/*
 * daemon/metrics.c: the exposition's details (escaping, cumulative
 * buckets, values), the address lists of http.metrics_allow, and every
 * family of the table documented in docs/operations.md, "Metrics".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <math.h>

#include "metrics.h"

/* The rendering, NUL-terminated (caller frees). */
static char *
render(void)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	assert_non_null(b);
	metrics_render(b);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	assert_non_null(s);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static void
assert_has(const char *text, const char *line)
{
	if (strstr(text, line) == NULL)
		fail_msg("missing \"%s\" in:\n%s", line, text);
}

static void
test_render(void **state)
{
	char *s;

	metrics_reset();
	metrics_add(M_REQUESTS, 1, "booking.create", "ok");
	metrics_add(M_REQUESTS, 2, "booking.create", "ok");
	metrics_add(M_REQUESTS, 1, "booking.create", "sold_out");
	/* Label values are escaped, whatever they hold. */
	metrics_add(M_REQUESTS, 1, "a\"b\\c\nd", "ok");
	metrics_observe(M_REQUEST_SECONDS, 0.003, "booking.create");
	metrics_observe(M_REQUEST_SECONDS, 0.005, "booking.create");
	metrics_observe(M_REQUEST_SECONDS, 20, "booking.create");
	metrics_set(M_OUTBOX_BACKLOG, 7);
	metrics_set(M_OUTBOX_BACKLOG, 3);
	metrics_set(M_DB_UP, NAN, "primary");
	metrics_set(M_DB_WAITING, INFINITY, "primary");
	s = render();
	assert_has(s, "# HELP strapontin_requests_total ");
	assert_has(s, "# TYPE strapontin_requests_total counter\n");
	assert_has(s, "\nstrapontin_requests_total{method=\"booking.create\","
	    "outcome=\"ok\"} 3\n");
	assert_has(s, "\nstrapontin_requests_total{method=\"booking.create\","
	    "outcome=\"sold_out\"} 1\n");
	assert_has(s, "\nstrapontin_requests_total{method=\"a\\\"b\\\\c\\nd\","
	    "outcome=\"ok\"} 1\n");
	/* Buckets count what is at most their bound, cumulatively; the
	 * bound itself is inside. */
	assert_has(s, "\nstrapontin_request_duration_seconds_bucket{method="
	    "\"booking.create\",le=\"0.0025\"} 0\n");
	assert_has(s, "\nstrapontin_request_duration_seconds_bucket{method="
	    "\"booking.create\",le=\"0.005\"} 2\n");
	assert_has(s, "\nstrapontin_request_duration_seconds_bucket{method="
	    "\"booking.create\",le=\"10\"} 2\n");
	assert_has(s, "\nstrapontin_request_duration_seconds_bucket{method="
	    "\"booking.create\",le=\"+Inf\"} 3\n");
	assert_has(s, "\nstrapontin_request_duration_seconds_count{method="
	    "\"booking.create\"} 3\n");
	assert_has(s, "\nstrapontin_request_duration_seconds_sum{method="
	    "\"booking.create\"} 20.008\n");
	assert_has(s, "\nstrapontin_outbox_backlog 3\n");
	assert_has(s, "\nstrapontin_db_up{pool=\"primary\"} NaN\n");
	assert_has(s, "\nstrapontin_db_waiting_queries{pool=\"primary\"} "
	    "+Inf\n");
	/* A family without labels shows its zero; build info its 1. */
	assert_has(s, "\nstrapontin_logins_throttled_total 0\n");
	assert_has(s, "\nstrapontin_booking_batch_size_bucket{le=\"+Inf\"} 0\n");
	assert_has(s, "\nstrapontin_build_info{version=\"");
	free(s);
	metrics_reset();
}

static int calls;

static void
collect(void *arg)
{
	calls++;
	metrics_set(M_CONNECTIONS, *(int *)arg, "rpc", "active");
}

static void
test_collectors(void **state)
{
	int n = 5;
	char *s;

	metrics_reset();
	calls = 0;
	metrics_collector_add(collect, &n);
	s = render();
	assert_int_equal(calls, 1);
	assert_has(s, "\nstrapontin_connections{transport=\"rpc\","
	    "state=\"active\"} 5\n");
	free(s);
	metrics_collector_remove(collect, &n);
	n = 9;
	free(render());
	assert_int_equal(calls, 1);
	metrics_reset();
}

/* Every family has its row in docs/operations.md. */
static void
test_documented(void **state)
{
	const char *src = getenv("ST_SOURCE_DIR"), *name;
	char path[1024], *doc;
	FILE *f;
	long n;
	size_t i;

	assert_non_null(src);
	snprintf(path, sizeof path, "%s/docs/operations.md", src);
	assert_non_null(f = fopen(path, "r"));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	assert_non_null(doc = malloc((size_t)n + 1));
	assert_int_equal(fread(doc, 1, (size_t)n, f), (size_t)n);
	doc[n] = '\0';
	fclose(f);
	for (i = 0; (name = metrics_name_at(i)) != NULL; i++) {
		char cell[160];

		snprintf(cell, sizeof cell, "| `%s`", name);
		if (strstr(doc, cell) == NULL)
			fail_msg("%s is not in docs/operations.md's table",
			    name);
	}
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_collectors),
		cmocka_unit_test(test_documented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
