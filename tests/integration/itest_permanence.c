/*
 * Permanences (docs/protocol.md permanence.*) against real daemons and PostgreSQL:
 * series of dates in a structure's timezone, blocks of seats and what
 * closing does with them, claims racing through two daemons, the state
 * machine, claims and their errors, wishes and the desk's view.
 *
 * The draw itself has its own file, itest_draw.c.
 */
#include "world.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))
#define ERR(c, m, code, reason, ...) \
	json_decref(h_call_err((c), (m), json_pack(__VA_ARGS__), (code), (reason)))

/* Generous caps unless a test is about them. */
#define LOOSE_CAPS \
	"[policy]\nmax_upcoming_per_beneficiary = 50\nmax_per_month = 50\n"

static PGconn *db;

#include "perm_common.inc"

/* 409 permanence_state whose data.state is state. */
static void
expect_state(struct st_client *c, const char *method, json_t *params,
    const char *state)
{
	json_t *data = h_call_err(c, method, params, 409, "permanence_state");

	assert_non_null(data);
	assert_string_equal(w_str(data, "state"), state);
	json_decref(data);
}

#include "perm_invariants.inc"

/* Lowercase hex SHA-256 of s, as `printf %s s | sha256sum` prints it. */
static void
sha256_hex(const char *s, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	if (!EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL) ||
	    len != 32)
		h_fail("SHA-256 of %s", s);
	for (i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static bool
is_hex64(const char *s)
{
	return s != NULL && strlen(s) == 64 &&
	    strspn(s, "0123456789abcdef") == 64;
}

/* The answer r must not hold the text s anywhere. */
static void
assert_not_contains(const json_t *r, const char *s)
{
	char *text = json_dumps(r, JSON_COMPACT);

	assert_non_null(text);
	if (strstr(text, s) != NULL)
		h_fail("%s shows up in %s", s, text);
	free(text);
}

/* "YYYY-MM-DDTHH:00:00Z" on day `day` of the month `add` months from the
 * current one (UTC): offers whose calendar month the test controls. */
static const char *
month_day(int add, int day, int hour)
{
	static char bufs[4][32];
	static int next;
	char *b = bufs[next++ % 4];
	time_t t = time(NULL);
	struct tm tm;
	int m;

	gmtime_r(&t, &tm);
	m = tm.tm_year * 12 + tm.tm_mon + add;
	snprintf(b, 32, "%04d-%02d-%02dT%02d:00:00Z", 1900 + m / 12,
	    m % 12 + 1, day, hour);
	return b;
}

/* ------------------------------------------------------------ series */

/* The items of a series, one starts_at/ends_at/local_starts_at each. */
static void
expect_series(const json_t *r, int n, const char *const *starts,
    const char *const *ends, const char *local_start)
{
	json_t *items = json_object_get(r, "items");
	json_int_t series = w_int(r, "series_id");
	int i;

	if ((int)json_array_size(items) != n)
		h_fail("%d items expected in %s", n, h_json_str(r));
	for (i = 0; i < n; i++) {
		json_t *p = json_array_get(items, i);
		char local[32];

		if (strcmp(w_str(p, "starts_at"), starts[i]) != 0 ||
		    strcmp(w_str(p, "ends_at"), ends[i]) != 0)
			h_fail("item %d is %s .. %s, expected %s .. %s", i,
			    w_str(p, "starts_at"), w_str(p, "ends_at"),
			    starts[i], ends[i]);
		assert_int_equal(w_int(p, "series_id"), series);
		assert_string_equal(w_str(p, "state"), "scheduled");
		if (local_start != NULL) {
			/* the date of starts[i] with the wall-clock time */
			snprintf(local, sizeof local, "%.10sT%s", starts[i],
			    local_start);
			assert_string_equal(w_str(p, "local_starts_at"), local);
		}
	}
}

static json_t *
series(struct st_client *c, const char *weekday, int nth, const char *from,
    const char *to, const char *from_date, int count)
{
	return OK(c, "permanence.schedule_series",
	    "{s:s, s:i, s:s, s:s, s:s, s:i, s:s, s:s}", "weekday", weekday,
	    "nth", nth, "start_time", from, "end_time", to, "from_date",
	    from_date, "count", count, "title", "Permanence culture",
	    "location", "MDS");
}

static void
expect_skipped(const json_t *r, int n, const char *const *months)
{
	json_t *s = json_object_get(r, "skipped_months");
	int i;

	if (!json_is_array(s) || (int)json_array_size(s) != n)
		h_fail("skipped_months: %s", h_json_str(r));
	for (i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_array_get(s, i)),
		    months[i]);
}

/* The example of docs/protocol.md, and the list and get views of what it made. */
static void
test_series_spec_example(void **state)
{
	static const char *const starts[] = {"2019-04-16T08:00:00Z",
	    "2019-05-21T08:00:00Z", "2019-06-18T08:00:00Z",
	    "2019-07-16T08:00:00Z"};
	static const char *const ends[] = {"2019-04-16T10:00:00Z",
	    "2019-05-21T10:00:00Z", "2019-06-18T10:00:00Z",
	    "2019-07-16T10:00:00Z"};
	struct world w;
	json_t *r, *l, *p;

	start(&w, "perm_series", NULL);
	r = series(w.ref, "tuesday", 3, "10:00", "12:00", "2019-04-01", 4);
	expect_series(r, 4, starts, ends, "10:00");
	expect_skipped(r, 0, NULL);
	p = json_array_get(json_object_get(r, "items"), 0);
	assert_string_equal(w_str(p, "timezone"), "Europe/Paris");
	assert_string_equal(w_str(p, "local_ends_at"), "2019-04-16T12:00");
	assert_int_equal(w_int(p, "structure_id"), w.structure_id);
	assert_string_equal(w_str(p, "title"), "Permanence culture");
	assert_string_equal(w_str(p, "location"), "MDS");

	/* The list finds them, in time order, in its range only. */
	l = OK(w.ref, "permanence.list", "{s:s, s:s}", "from",
	    "2019-05-01T00:00:00Z", "to", "2019-07-01T00:00:00Z");
	assert_int_equal(json_array_size(json_object_get(l, "items")), 2);
	assert_string_equal(w_str(json_array_get(json_object_get(l, "items"),
	    0), "starts_at"), starts[1]);
	json_decref(l);
	/* Pages: 3, then the rest, in order. */
	l = OK(w.ref, "permanence.list", "{s:s, s:s, s:i}", "from",
	    "2019-01-01T00:00:00Z", "to", "2020-01-01T00:00:00Z", "limit", 3);
	assert_int_equal(json_array_size(json_object_get(l, "items")), 3);
	{
		json_t *l2 = OK(w.ref, "permanence.list", "{s:s, s:s, s:s}",
		    "from", "2019-01-01T00:00:00Z", "to", "2020-01-01T00:00:00Z",
		    "cursor", w_str(l, "next_cursor"));
		json_t *items2 = json_object_get(l2, "items");

		assert_int_equal(json_array_size(items2), 1);
		assert_string_equal(w_str(json_array_get(items2, 0),
		    "starts_at"), starts[3]);
		assert_true(json_is_null(json_object_get(l2, "next_cursor")));
		json_decref(l2);
	}
	json_decref(l);
	/* Another structure sees none of them. */
	l = OK(w.ref2, "permanence.list", "{}");
	assert_int_equal(json_array_size(json_object_get(l, "items")), 0);
	json_decref(l);
	ERR(w.ref2, "permanence.get", 404, "not_found", "{s:I}",
	    "permanence_id", w_int(p, "id"));
	/* An admin names the structure. */
	expect_field(w.admin, "permanence.schedule_series", json_pack(
	    "{s:s, s:i, s:s, s:s, s:s, s:i}", "weekday", "tuesday", "nth", 3,
	    "start_time", "10:00", "end_time", "12:00", "from_date",
	    "2019-04-01", "count", 1), -32602, "invalid_params",
	    "structure_id");
	json_decref(r);

	/* from_date after the month's date: that month is not a skip. */
	r = series(w.ref, "tuesday", 3, "10:00", "12:00", "2019-04-17", 1);
	{
		static const char *const s1[] = {"2019-05-21T08:00:00Z"};
		static const char *const e1[] = {"2019-05-21T10:00:00Z"};

		expect_series(r, 1, s1, e1, "10:00");
		expect_skipped(r, 0, NULL);
	}
	json_decref(r);
	/* from_date on the day itself counts it. */
	r = series(w.ref, "tuesday", 3, "10:00", "12:00", "2019-04-16", 1);
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    0), "starts_at"), starts[0]);
	json_decref(r);
	finish(&w);
}

/* 10:00 wall-clock stays 10:00 across both daylight-saving changes. */
static void
test_series_dst(void **state)
{
	/* the last Sunday of each month, March to October 2019: the changes
	 * are on the last Sundays of March and October themselves */
	static const char *const s8[] = {"2019-03-31T08:00:00Z",
	    "2019-04-28T08:00:00Z", "2019-05-26T08:00:00Z",
	    "2019-06-30T08:00:00Z", "2019-07-28T08:00:00Z",
	    "2019-08-25T08:00:00Z", "2019-09-29T08:00:00Z",
	    "2019-10-27T09:00:00Z"};
	static const char *const e8[] = {"2019-03-31T10:00:00Z",
	    "2019-04-28T10:00:00Z", "2019-05-26T10:00:00Z",
	    "2019-06-30T10:00:00Z", "2019-07-28T10:00:00Z",
	    "2019-08-25T10:00:00Z", "2019-09-29T10:00:00Z",
	    "2019-10-27T11:00:00Z"};
	static const char *const sm[] = {"2019-02-04T09:00:00Z",
	    "2019-03-04T09:00:00Z", "2019-04-01T08:00:00Z"};
	static const char *const em[] = {"2019-02-04T11:00:00Z",
	    "2019-03-04T11:00:00Z", "2019-04-01T10:00:00Z"};
	static const char *const sa[] = {"2019-09-02T08:00:00Z",
	    "2019-10-07T08:00:00Z", "2019-11-04T09:00:00Z",
	    "2019-12-02T09:00:00Z"};
	static const char *const ea[] = {"2019-09-02T09:00:00Z",
	    "2019-10-07T09:00:00Z", "2019-11-04T10:00:00Z",
	    "2019-12-02T10:00:00Z"};
	struct world w;
	json_t *r;

	start(&w, "perm_dst", NULL);
	r = series(w.ref, "sunday", -1, "10:00", "12:00", "2019-03-01", 8);
	expect_series(r, 8, s8, e8, "10:00");
	json_decref(r);
	/* spring: 1st Monday, winter then summer time */
	r = series(w.ref, "monday", 1, "10:00", "12:00", "2019-02-01", 3);
	expect_series(r, 3, sm, em, "10:00");
	json_decref(r);
	/* autumn, a range ending at 11:00 */
	r = series(w.ref, "monday", 1, "10:00", "11:00", "2019-09-01", 4);
	expect_series(r, 4, sa, ea, "10:00");
	json_decref(r);

	/* sql/004 documents the edges: a time inside the spring-forward gap
	 * (02:30 on 31 March 2019 does not exist in Paris) is read as before
	 * the change, 01:30Z; the end, 03:30 local = 01:30Z, would not be
	 * after it, so the permanence keeps its hour. The repeated hour of
	 * autumn (02:30 on 27 October 2019 happens twice) is read as the
	 * later, standard-time instant, 01:30Z. */
	r = series(w.ref, "sunday", -1, "02:30", "03:30", "2019-03-01", 1);
	{
		static const char *const s[] = {"2019-03-31T01:30:00Z"};
		static const char *const e[] = {"2019-03-31T02:30:00Z"};

		expect_series(r, 1, s, e, NULL);
	}
	json_decref(r);
	r = series(w.ref, "sunday", -1, "02:30", "03:30", "2019-10-01", 1);
	{
		static const char *const s[] = {"2019-10-27T01:30:00Z"};
		static const char *const e[] = {"2019-10-27T02:30:00Z"};

		expect_series(r, 1, s, e, "02:30");
	}
	json_decref(r);
	finish(&w);
}

/* nth: the last one, the 5th (months without one are skipped and named,
 * the count still honoured), and the values refused. */
static void
test_series_nth(void **state)
{
	static const char *const sl[] = {"2019-04-30T08:00:00Z",
	    "2019-05-28T08:00:00Z", "2019-06-25T08:00:00Z"};
	static const char *const el[] = {"2019-04-30T10:00:00Z",
	    "2019-05-28T10:00:00Z", "2019-06-25T10:00:00Z"};
	static const char *const s5[] = {"2019-04-30T08:00:00Z",
	    "2019-07-30T08:00:00Z", "2019-10-29T09:00:00Z"};
	static const char *const e5[] = {"2019-04-30T10:00:00Z",
	    "2019-07-30T10:00:00Z", "2019-10-29T11:00:00Z"};
	static const char *const skipped[] = {"2019-05", "2019-06", "2019-08",
	    "2019-09"};
	static const char *const skipped2[] = {"2019-05", "2019-06"};
	struct world w;
	json_t *r;
	long long before;

	start(&w, "perm_nth", NULL);
	r = series(w.ref, "tuesday", -1, "10:00", "12:00", "2019-04-01", 3);
	expect_series(r, 3, sl, el, "10:00");
	expect_skipped(r, 0, NULL);
	json_decref(r);
	r = series(w.ref, "tuesday", 5, "10:00", "12:00", "2019-04-01", 3);
	expect_series(r, 3, s5, e5, "10:00");
	expect_skipped(r, 4, skipped);
	json_decref(r);
	/* a first month without the day is skipped too */
	r = series(w.ref, "tuesday", 5, "10:00", "12:00", "2019-05-01", 1);
	{
		static const char *const s[] = {"2019-07-30T08:00:00Z"};
		static const char *const e[] = {"2019-07-30T10:00:00Z"};

		expect_series(r, 1, s, e, "10:00");
		expect_skipped(r, 2, skipped2);
	}
	json_decref(r);

	/* the last Tuesday of December, across the new year */
	r = series(w.ref, "tuesday", -1, "10:00", "12:00", "2019-12-31", 2);
	{
		static const char *const s[] = {"2019-12-31T09:00:00Z",
		    "2020-01-28T09:00:00Z"};
		static const char *const e[] = {"2019-12-31T11:00:00Z",
		    "2020-01-28T11:00:00Z"};

		expect_series(r, 2, s, e, "10:00");
	}
	json_decref(r);
	/* the largest series: 120 fifth Tuesdays, about 30 years */
	r = series(w.ref, "tuesday", 5, "10:00", "12:00", "2019-01-01", 120);
	assert_int_equal(json_array_size(json_object_get(r, "items")), 120);
	assert_true(json_array_size(json_object_get(r, "skipped_months")) >
	    200);
	json_decref(r);
	/* a referent schedules for her structure only */
	expect_field(w.ref, "permanence.schedule_series", json_pack(
	    "{s:s, s:i, s:s, s:s, s:s, s:i, s:I}", "weekday", "tuesday", "nth",
	    3, "start_time", "10:00", "end_time", "12:00", "from_date",
	    "2019-04-01", "count", 1, "structure_id", w.structure2_id), 404,
	    "not_found", "structure_id");

	before = sql_int("SELECT count(*) FROM permanences");
#define BAD_SERIES(wd, nth, from, to, date, count, field) \
	expect_field(w.ref, "permanence.schedule_series", json_pack( \
	    "{s:s, s:i, s:s, s:s, s:s, s:i}", "weekday", (wd), "nth", (nth), \
	    "start_time", (from), "end_time", (to), "from_date", (date), \
	    "count", (count)), -32602, "invalid_params", (field))
	BAD_SERIES("tuesday", 0, "10:00", "12:00", "2019-04-01", 4, "nth");
	BAD_SERIES("tuesday", 6, "10:00", "12:00", "2019-04-01", 4, "nth");
	BAD_SERIES("tuesday", -2, "10:00", "12:00", "2019-04-01", 4, "nth");
	BAD_SERIES("tuesday", 3, "12:00", "10:00", "2019-04-01", 4,
	    "end_time");
	BAD_SERIES("tuesday", 3, "10:00", "10:00", "2019-04-01", 4,
	    "end_time");
	BAD_SERIES("mardi", 3, "10:00", "12:00", "2019-04-01", 4, "weekday");
	BAD_SERIES("tuesday", 3, "10h00", "12:00", "2019-04-01", 4,
	    "start_time");
	BAD_SERIES("tuesday", 3, "10:00", "24:00", "2019-04-01", 4,
	    "end_time");
	BAD_SERIES("tuesday", 3, "10:00", "12:00", "2019-02-30", 4,
	    "from_date");
	BAD_SERIES("tuesday", 3, "10:00", "12:00", "2019-04-01", 0, "count");
	BAD_SERIES("tuesday", 3, "10:00", "12:00", "2019-04-01", 121,
	    "count");
#undef BAD_SERIES
	/* nothing was made by the refused ones */
	assert_int_equal(sql_int("SELECT count(*) FROM permanences"), before);
	/* a single permanence the wrong way round */
	expect_field(w.ref, "permanence.schedule", json_pack("{s:s, s:s}",
	    "starts_at", w_time(W_DAY), "ends_at", w_time(W_DAY)), -32602,
	    "invalid_params", "ends_at");
	finish(&w);
}

/* A structure in another timezone gets its own UTC offsets. */
static void
test_series_timezones(void **state)
{
	static const char *const sc[] = {"2019-01-15T13:00:00Z",
	    "2019-04-16T13:00:00Z"};
	static const char *const ec[] = {"2019-01-15T15:00:00Z",
	    "2019-04-16T15:00:00Z"};
	/* Nouméa is UTC+11: 10:00 there is 23:00Z the day before */
	static const char *const sn[] = {"2019-01-14T23:00:00Z",
	    "2019-02-18T23:00:00Z"};
	static const char *const en[] = {"2019-01-15T01:00:00Z",
	    "2019-02-19T01:00:00Z"};
	struct world w;
	json_t *r;
	json_int_t cayenne, noumea;

	start(&w, "perm_tz", NULL);
	r = OK(w.admin, "structure.create", "{s:s, s:s, s:s, s:s, s:s}",
	    "name", "CCAS de Cayenne", "kind", "ccas", "territory", "Guyane",
	    "city", "Cayenne", "timezone", "America/Cayenne");
	cayenne = w_int(r, "id");
	assert_string_equal(w_str(r, "timezone"), "America/Cayenne");
	json_decref(r);
	r = OK(w.admin, "structure.create", "{s:s, s:s, s:s, s:s, s:s}",
	    "name", "CCAS de Nouméa", "kind", "ccas", "territory",
	    "Nouvelle-Calédonie", "city", "Nouméa", "timezone",
	    "Pacific/Noumea");
	noumea = w_int(r, "id");
	json_decref(r);
	expect_field(w.admin, "structure.create", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s}", "name", "X", "kind", "ccas",
	    "territory", "X", "city", "X", "timezone", "Mars/Olympus"),
	    -32602, "invalid_params", "timezone");

	/* Cayenne (UTC-3, no daylight saving): January and April alike */
	r = OK(w.admin, "permanence.schedule_series",
	    "{s:s, s:i, s:s, s:s, s:s, s:i, s:I}", "weekday", "tuesday", "nth",
	    3, "start_time", "10:00", "end_time", "12:00", "from_date",
	    "2019-01-01", "count", 4, "structure_id", cayenne);
	{
		json_t *items = json_object_get(r, "items");
		json_t *two = json_array(), *p;

		json_array_append(two, json_array_get(items, 0));
		json_array_append(two, json_array_get(items, 3));
		p = json_pack("{s:I, s:o}", "series_id", w_int(r, "series_id"),
		    "items", two);
		expect_series(p, 2, sc, ec, "10:00");
		assert_string_equal(w_str(json_array_get(items, 0),
		    "timezone"), "America/Cayenne");
		assert_int_equal(w_int(json_array_get(items, 0),
		    "structure_id"), cayenne);
		json_decref(p);
	}
	json_decref(r);
	/* Nouméa: the UTC date is the day before */
	r = OK(w.admin, "permanence.schedule_series",
	    "{s:s, s:i, s:s, s:s, s:s, s:i, s:I}", "weekday", "tuesday", "nth",
	    3, "start_time", "10:00", "end_time", "12:00", "from_date",
	    "2019-01-01", "count", 2, "structure_id", noumea);
	expect_series(r, 2, sn, en, NULL);
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    0), "local_starts_at"), "2019-01-15T10:00");
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    1), "local_ends_at"), "2019-02-19T12:00");
	json_decref(r);
	/* the Paris structure, same request, its own offsets */
	r = series(w.ref, "tuesday", 3, "10:00", "12:00", "2019-01-01", 1);
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    0), "starts_at"), "2019-01-15T09:00:00Z");
	json_decref(r);
	finish(&w);
}

/* ------------------------------------------------------------ blocks */

static void
test_blocks(void **state)
{
	struct world w;
	json_t *r, *k, *e_y, *e_v, *bz, *data;
	json_int_t o, pm, x, y, z, v, u, o2, pm2, o3;

	start(&w, "perm_blocks", LOOSE_CAPS);
	o = offer_at(w.partner, 10, 4, NULL);
	pm = permanence(w.ref, W_DAY);

	/* Setting aside more than is free: sold_out, with what is free. */
	data = h_call_err(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", o, "seats", 11),
	    409, "sold_out");
	assert_int_equal(w_int(data, "seats_available"), 10);
	json_decref(data);
	r = reserve(w.ref, pm, o, 4);
	k = json_object_get(r, "block");
	assert_int_equal(w_int(k, "seats"), 4);
	assert_int_equal(w_int(k, "claimed"), 0);
	assert_int_equal(w_int(k, "remaining"), 4);
	assert_int_equal(w_int(k, "pool_available"), 6);
	json_decref(r);
	/* more seats on the same block add up */
	r = reserve(w.ref, pm, o, 1);
	assert_int_equal(w_int(json_object_get(r, "block"), "seats"), 5);
	assert_int_equal(w_int(r, "seats_set_aside"), 5);
	json_decref(r);
	/* and stop at half the offer (policy.max_block_share, 50 by
	 * default): test_block_cap has the rest */
	data = h_call_err(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", o, "seats", 1),
	    409, "limit_reached");
	assert_int_equal(w_int(data, "max_block_seats"), 5);
	json_decref(data);
	/* The venue may take seats away down to what is taken: 6 left. */
	json_decref(OK(w.partner, "offer.set_seats", "{s:I, s:i}", "offer_id",
	    o, "seats", 6));
	assert_int_equal(available(w.ref, o), 1);
	data = h_call_err(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", o, "seats", 2),
	    409, "sold_out");
	assert_int_equal(w_int(data, "seats_available"), 1);
	json_decref(data);
	r = OK(w.ref, "permanence.release_block", "{s:I, s:I, s:i}",
	    "permanence_id", pm, "offer_id", o, "seats", 1);
	assert_int_equal(w_int(r, "released"), 1);
	assert_int_equal(w_int(json_object_get(r, "block"), "seats"), 4);
	json_decref(r);
	r = offer_get(w.ref, o);
	assert_int_equal(w_int(r, "seats_taken"), 4);
	assert_int_equal(w_int(r, "seats_available"), 2);
	json_decref(r);

	/* The venue cannot go below what blocks hold. */
	data = h_call_err(w.partner, "offer.set_seats", json_pack(
	    "{s:I, s:i}", "offer_id", o, "seats", 3), 409, "seats_taken");
	assert_int_equal(w_int(data, "seats_taken"), 4);
	json_decref(data);
	r = OK(w.partner, "offer.set_seats", "{s:I, s:i}", "offer_id", o,
	    "seats", 4);
	assert_int_equal(w_int(r, "seats_available"), 0);
	json_decref(r);
	json_decref(OK(w.partner, "offer.set_seats", "{s:I, s:i}", "offer_id",
	    o, "seats", 6));

	/* The pool runs out; two people wait, 2 seats each. */
	x = w_beneficiary(w.ref, "Xavier", "Pool");
	y = w_beneficiary(w.ref, "Yasmine", "Attente");
	v = w_beneficiary(w.ref, "Victor", "Attente");
	z = w_beneficiary(w.ref, "Zoé", "Bloc");
	u = w_beneficiary(w.ref, "Ugo", "Bloc");
	json_decref(w_book(w.ref, o, x, 2));
	e_y = OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id", o,
	    "beneficiary_id", y, "seats", 2);
	e_v = OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id", o,
	    "beneficiary_id", v, "seats", 2);
	assert_string_equal(w_str(e_y, "status"), "waiting");

	/* At the desk, Zoé takes one block seat. */
	json_decref(OK(w.ref, "permanence.open", "{s:I}", "permanence_id",
	    pm));
	bz = claim(w.ref, pm, z, o, 1);
	assert_int_equal(w_int(bz, "from_block"), 1);
	expect_block(w.ref, pm, o, 4, 1, 3);
	/* Releasing more than is unclaimed: seats_taken, nothing moves. */
	data = h_call_err(w.ref, "permanence.release_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", o, "seats", 4),
	    409, "seats_taken");
	assert_int_equal(w_int(data, "unclaimed"), 3);
	json_decref(data);
	expect_block(w.ref, pm, o, 4, 1, 3);

	/* Cancelled before the close, her seat goes back to the block, not
	 * to the pool: the waitlist is not served. */
	r = OK(w.ref, "booking.cancel", "{s:I}", "booking_id", w_int(bz,
	    "id"));
	assert_string_equal(w_str(r, "status"), "cancelled");
	json_decref(r);
	json_decref(bz);
	expect_block(w.ref, pm, o, 4, 0, 4);
	r = offer_get(w.ref, o);
	assert_int_equal(w_int(r, "seats_available"), 0);
	assert_int_equal(w_int(r, "seats_held"), 0);
	json_decref(r);
	r = OK(w.ref, "waitlist.list", "{s:I}", "offer_id", o);
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    0), "status"), "waiting");
	json_decref(r);
	/* and the desk hands it out again */
	bz = claim(w.ref, pm, z, o, 1);
	assert_int_equal(w_int(bz, "from_block"), 1);
	expect_block(w.ref, pm, o, 4, 1, 3);
	check_invariants();

	/* Closing frees exactly the 3 unclaimed seats and serves the
	 * waitlist with them: Yasmine (2 seats) is offered, Victor (2) does
	 * not fit in the one seat left. */
	r = OK(w.ref, "permanence.close", "{s:I}", "permanence_id", pm);
	assert_string_equal(w_str(r, "state"), "closed");
	assert_int_equal(w_int(r, "seats_returned"), 3);
	assert_int_equal(w_int(r, "waitlist_served"), 1);
	assert_int_equal(w_int(r, "seats_remaining"), 0);
	k = block_of(r, o);
	assert_int_equal(w_int(k, "remaining"), 0);
	assert_int_equal(w_int(k, "claimed"), 1);
	assert_true(json_is_string(json_object_get(k, "returned_at")));
	json_decref(r);
	r = offer_get(w.ref, o);
	assert_int_equal(w_int(r, "seats_taken"), 3);  /* Xavier 2, Zoé 1 */
	assert_int_equal(w_int(r, "seats_held"), 2);
	assert_int_equal(w_int(r, "seats_available"), 1);
	json_decref(r);
	r = OK(w.ref, "waitlist.list", "{s:I}", "offer_id", o);
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    0), "status"), "offered");
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    1), "status"), "waiting");
	json_decref(r);
	check_invariants();

	/* Cancelled after the close, Zoé's seat goes to the pool, and the
	 * waitlist gets it: Victor now fits (1 free + 1 freed). */
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    w_int(bz, "id")));
	json_decref(bz);
	r = offer_get(w.ref, o);
	assert_int_equal(w_int(r, "seats_taken"), 2);
	assert_int_equal(w_int(r, "seats_held"), 4);
	assert_int_equal(w_int(r, "seats_available"), 0);
	json_decref(r);
	r = OK(w.ref, "waitlist.list", "{s:I, s:s}", "offer_id", o, "status",
	    "offered");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 2);
	json_decref(r);
	r = get(w.ref, pm);
	assert_int_equal(w_int(block_of(r, o), "claimed"), 0);
	assert_int_equal(w_int(block_of(r, o), "remaining"), 0);
	json_decref(r);
	/* A closed permanence neither gives nor takes seats. */
	expect_state(w.ref, "permanence.release_block", json_pack(
	    "{s:I, s:I}", "permanence_id", pm, "offer_id", o), "closed");
	expect_state(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", o, "seats", 1),
	    "closed");
	check_invariants();
	json_decref(e_y);
	json_decref(e_v);

	/* release_block without seats releases every unclaimed seat. */
	o2 = offer_at(w.partner, 10, 4, NULL);
	pm2 = permanence(w.ref, 2 * W_DAY);
	json_decref(reserve(w.ref, pm2, o2, 3));
	json_decref(OK(w.ref, "permanence.open", "{s:I}", "permanence_id",
	    pm2));
	bz = claim(w.ref, pm2, u, o2, 1);
	r = OK(w.ref, "permanence.release_block", "{s:I, s:I}",
	    "permanence_id", pm2, "offer_id", o2);
	assert_int_equal(w_int(r, "released"), 2);
	k = json_object_get(r, "block");
	assert_int_equal(w_int(k, "seats"), 1);
	assert_int_equal(w_int(k, "claimed"), 1);
	assert_int_equal(w_int(k, "remaining"), 0);
	json_decref(r);
	assert_int_equal(available(w.ref, o2), 9);
	r = OK(w.ref, "permanence.release_block", "{s:I, s:I}",
	    "permanence_id", pm2, "offer_id", o2);
	assert_int_equal(w_int(r, "released"), 0);
	json_decref(r);
	/* Ugo cancels: his seat goes back to the (open) block, and then the
	 * whole block can go. */
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    w_int(bz, "id")));
	json_decref(bz);
	expect_block(w.ref, pm2, o2, 1, 0, 1);
	assert_int_equal(available(w.ref, o2), 9);
	r = OK(w.ref, "permanence.release_block", "{s:I, s:I}",
	    "permanence_id", pm2, "offer_id", o2);
	assert_int_equal(w_int(r, "released"), 1);
	assert_true(json_is_null(json_object_get(r, "block")));
	assert_int_equal(json_array_size(json_object_get(r, "blocks")), 0);
	json_decref(r);
	assert_int_equal(available(w.ref, o2), 10);
	expect_field(w.ref, "permanence.release_block", json_pack(
	    "{s:I, s:I}", "permanence_id", pm2, "offer_id", o2), 404,
	    "not_found", "offer_id");
	/* releasing serves the waitlist with the freed seats */
	{
		json_int_t o4 = offer_at(w.partner, 6, 3, NULL);
		json_t *e;

		json_decref(reserve(w.ref, pm2, o4, 3));
		json_decref(w_book(w.ref, o4, u, 3));    /* the pool is gone */
		e = OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id",
		    o4, "beneficiary_id", x, "seats", 2);
		assert_string_equal(w_str(e, "status"), "waiting");
		json_decref(e);
		r = OK(w.ref, "permanence.release_block", "{s:I, s:I, s:i}",
		    "permanence_id", pm2, "offer_id", o4, "seats", 2);
		assert_int_equal(w_int(r, "released"), 2);
		json_decref(r);
		r = OK(w.ref, "waitlist.list", "{s:I}", "offer_id", o4);
		assert_string_equal(w_str(json_array_get(json_object_get(r,
		    "items"), 0), "status"), "offered");
		json_decref(r);
		r = offer_get(w.ref, o4);
		assert_int_equal(w_int(r, "seats_held"), 2);
		assert_int_equal(w_int(r, "seats_available"), 0);
		json_decref(r);
	}
	/* an offer without a block, an unknown offer */
	o3 = offer_at(w.partner, 5, 2, NULL);
	expect_field(w.ref, "permanence.release_block", json_pack(
	    "{s:I, s:I}", "permanence_id", pm2, "offer_id", o3), 404,
	    "not_found", "offer_id");
	expect_field(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm2, "offer_id",
	    (json_int_t)999999, "seats", 1), 404, "not_found", "offer_id");
	/* seats must be positive */
	expect_field(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm2, "offer_id", o3, "seats",
	    0), -32602, "invalid_params", "seats");
	expect_field(w.ref, "permanence.release_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm2, "offer_id", o3, "seats",
	    0), -32602, "invalid_params", "seats");
	/* another structure never sees the permanence */
	ERR(w.ref2, "permanence.reserve_block", 404, "not_found",
	    "{s:I, s:I, s:i}", "permanence_id", pm2, "offer_id", o3, "seats",
	    1);
	/* a cancelled offer takes no block */
	json_decref(OK(w.partner, "offer.cancel", "{s:I, s:s}", "offer_id",
	    o3, "reason", "Travaux"));
	ERR(w.ref, "permanence.reserve_block", 409, "offer_cancelled",
	    "{s:I, s:I, s:i}", "permanence_id", pm2, "offer_id", o3, "seats",
	    1);
	/* nor does an offer whose bookings close before the permanence */
	{
		json_int_t early = offer_at(w.partner, 5, 2, w_time(3 * W_DAY));

		expect_field(w.ref, "permanence.reserve_block", json_pack(
		    "{s:I, s:I, s:i}", "permanence_id", pm2, "offer_id", early,
		    "seats", 1), 409, "deadline_passed", "offer_id");
	}
	check_invariants();
	finish(&w);
}

/* ------------------------------------------------------- the race */

#define RACERS 40
#define DIRECT 20

struct racer {
	struct st_client *c;
	json_int_t beneficiary;
	int64_t pending;
	int outcome;            /* 1 granted, 0 sold_out */
	json_int_t from_block;
};

static struct racer rc[RACERS + DIRECT];

static void
resume_all(struct h_daemon *d1, struct h_daemon *d2, const char *token,
    int n)
{
	struct st_error err;
	json_t *p, *r;
	int i;

	for (i = 0; i < n; i++) {
		rc[i].c = h_connect(i % 2 ? d2 : d1);
		p = json_pack("{s:s}", "token", token);
		rc[i].pending = st_send(rc[i].c, "auth.resume", p, &err);
		json_decref(p);
		if (rc[i].pending < 0)
			h_fail("resume %d: %s", i, st_strerror(&err));
	}
	for (i = 0; i < n; i++) {
		if (st_wait(rc[i].c, rc[i].pending, &r, &err) != ST_OK)
			h_fail("resume %d: %s", i, st_strerror(&err));
		json_decref(r);
	}
}

/* Sends every request first, then reads every answer: the requests of
 * both daemons are in the database at the same time. */
static void
race(int n, json_int_t pm, json_int_t offer, int n_claims)
{
	struct st_error err;
	json_t *p, *r;
	int i;

	for (i = 0; i < n; i++) {
		if (i < n_claims)
			p = json_pack("{s:I, s:I, s:I, s:i}", "permanence_id",
			    pm, "beneficiary_id", rc[i].beneficiary,
			    "offer_id", offer, "seats", 1);
		else
			p = json_pack("{s:I, s:I, s:i}", "beneficiary_id",
			    rc[i].beneficiary, "offer_id", offer, "seats", 1);
		rc[i].pending = st_send(rc[i].c, i < n_claims ?
		    "permanence.claim" : "booking.create", p, &err);
		json_decref(p);
		if (rc[i].pending < 0)
			h_fail("send %d: %s", i, st_strerror(&err));
	}
	for (i = 0; i < n; i++) {
		int s = st_wait(rc[i].c, rc[i].pending, &r, &err);

		rc[i].from_block = 0;
		if (s == ST_OK) {
			rc[i].outcome = 1;
			if (i < n_claims)
				rc[i].from_block = w_int(r, "from_block");
			json_decref(r);
		} else if (s == ST_ERR_SERVER && err.code == 409 &&
		    strcmp(err.reason, "sold_out") == 0) {
			rc[i].outcome = 0;
			st_error_clear(&err);
		} else
			h_fail("request %d: %s", i, st_strerror(&err));
	}
}

/* Claims racing from two daemons never take more than the block. */
static void
test_block_race(void **state)
{
	struct h_daemon *d1, *d2;
	struct world w;
	json_t *r;
	json_int_t o, o2, pm;
	char token[128];
	int i, granted = 0, from_block = 0, claims_ok = 0;

	d1 = h_daemon_start("perm_race1", "[database]\npool_size = 6\n"
	    LOOSE_CAPS);
	d2 = h_daemon_start_same_db(d1, "perm_race2",
	    "[database]\npool_size = 6\n" LOOSE_CAPS);
	world_build(&w, d1);
	db = h_db_connect(d1->conninfo);
	{
		struct st_client *c = h_connect(d2);

		r = OK(c, "auth.login", "{s:s, s:s}", "email", W_REF_EMAIL,
		    "password", W_PASSWORD);
		snprintf(token, sizeof token, "%s", w_str(r, "token"));
		json_decref(r);
		st_close(c);
	}
	for (i = 0; i < RACERS + DIRECT; i++) {
		char first[16];

		snprintf(first, sizeof first, "R%02d", i);
		rc[i].beneficiary = w_beneficiary(w.ref, first, "Course");
	}
	resume_all(d1, d2, token, RACERS + DIRECT);

	/* 10 seats, all in the block: the pool has none (the block takes
	 * half of 20 seats, then the venue takes the other 10 away). */
	o = offer_at(w.partner, 20, 2, NULL);
	pm = permanence(w.ref, W_DAY);
	json_decref(reserve(w.ref, pm, o, 10));
	json_decref(OK(w.partner, "offer.set_seats", "{s:I, s:i}", "offer_id",
	    o, "seats", 10));
	assert_int_equal(available(w.ref, o), 0);
	json_decref(OK(w.ref, "permanence.open", "{s:I}", "permanence_id",
	    pm));
	race(RACERS, pm, o, RACERS);
	for (i = 0; i < RACERS; i++) {
		granted += rc[i].outcome;
		from_block += (int)rc[i].from_block;
	}
	assert_int_equal(granted, 10);
	assert_int_equal(from_block, 10);
	assert_int_equal(sql_int("SELECT count(*) FROM bookings WHERE "
	    "offer_id = %lld AND status = 'confirmed' AND block_seats = 1 AND "
	    "permanence_id = %lld AND source = 'claim'", (long long)o,
	    (long long)pm), 10);
	assert_int_equal(sql_int("SELECT claimed FROM permanence_blocks WHERE "
	    "offer_id = %lld", (long long)o), 10);
	assert_int_equal(sql_int("SELECT seats_taken FROM offers WHERE id = "
	    "%lld", (long long)o), 10);
	expect_block(w.ref, pm, o, 10, 10, 0);
	check_invariants();

	/* 20 seats, 10 in the block: 40 claims and 20 direct bookings race.
	 * Exactly 20 seats go; the 10 block seats only to claims. */
	o2 = offer_at(w.partner, 20, 2, NULL);
	json_decref(reserve(w.ref, pm, o2, 10));
	race(RACERS + DIRECT, pm, o2, RACERS);
	granted = from_block = 0;
	for (i = 0; i < RACERS + DIRECT; i++) {
		granted += rc[i].outcome;
		from_block += (int)rc[i].from_block;
		if (i < RACERS)
			claims_ok += rc[i].outcome;
	}
	assert_int_equal(granted, 20);
	assert_int_equal(from_block, 10);
	assert_true(claims_ok >= 10);
	assert_int_equal(sql_int("SELECT count(*) FROM bookings WHERE "
	    "offer_id = %lld AND status = 'confirmed'", (long long)o2), 20);
	assert_int_equal(sql_int("SELECT count(*) FROM bookings WHERE "
	    "offer_id = %lld AND source = 'claim'", (long long)o2), claims_ok);
	assert_int_equal(sql_int("SELECT seats_total - seats_taken - "
	    "seats_held FROM offers WHERE id = %lld", (long long)o2), 0);
	check_invariants();

	for (i = 0; i < RACERS + DIRECT; i++)
		st_close(rc[i].c);
	world_close(&w);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

/* Claims racing a close through two daemons: every block seat is either
 * claimed before the close or returned by it, never both, never lost. */
static void
test_close_race(void **state)
{
	struct h_daemon *d1, *d2;
	struct world w;
	struct st_error err;
	json_t *r, *closed = NULL;
	json_int_t o, pm;
	int64_t close_id = 0;
	char token[128];
	int i, ok = 0, from_block = 0, refused_state = 0, sold_out = 0;

	d1 = h_daemon_start("perm_close1", "[database]\npool_size = 6\n"
	    LOOSE_CAPS);
	d2 = h_daemon_start_same_db(d1, "perm_close2",
	    "[database]\npool_size = 6\n" LOOSE_CAPS);
	world_build(&w, d1);
	db = h_db_connect(d1->conninfo);
	r = OK(w.ref, "auth.login", "{s:s, s:s}", "email", W_REF_EMAIL,
	    "password", W_PASSWORD);
	snprintf(token, sizeof token, "%s", w_str(r, "token"));
	json_decref(r);
	for (i = 0; i < RACERS; i++) {
		char first[16];

		snprintf(first, sizeof first, "F%02d", i);
		rc[i].beneficiary = w_beneficiary(w.ref, first, "Fermeture");
	}
	resume_all(d1, d2, token, RACERS);
	o = offer_at(w.partner, 40, 2, NULL);
	pm = permanence(w.ref, W_DAY);
	json_decref(reserve(w.ref, pm, o, 20));
	json_decref(OK(w.partner, "offer.set_seats", "{s:I, s:i}", "offer_id",
	    o, "seats", 30));
	json_decref(OK(w.ref, "permanence.open", "{s:I}", "permanence_id",
	    pm));

	for (i = 0; i < RACERS; i++) {
		json_t *p = json_pack("{s:I, s:I, s:I, s:i}", "permanence_id",
		    pm, "beneficiary_id", rc[i].beneficiary, "offer_id", o,
		    "seats", 1);

		rc[i].pending = st_send(rc[i].c, "permanence.claim", p, &err);
		json_decref(p);
		if (rc[i].pending < 0)
			h_fail("send %d: %s", i, st_strerror(&err));
		if (i == RACERS / 4) {
			p = json_pack("{s:I}", "permanence_id", pm);
			close_id = st_send(w.ref, "permanence.close", p, &err);
			json_decref(p);
			if (close_id < 0)
				h_fail("send close: %s", st_strerror(&err));
		}
	}
	for (i = 0; i < RACERS; i++) {
		int s = st_wait(rc[i].c, rc[i].pending, &r, &err);

		if (s == ST_OK) {
			ok++;
			from_block += (int)w_int(r, "from_block");
			json_decref(r);
		} else if (s == ST_ERR_SERVER &&
		    strcmp(err.reason, "permanence_state") == 0) {
			assert_string_equal(w_str(err.data, "state"), "closed");
			refused_state++;
			st_error_clear(&err);
		} else if (s == ST_ERR_SERVER &&
		    strcmp(err.reason, "sold_out") == 0) {
			sold_out++;
			st_error_clear(&err);
		} else
			h_fail("claim %d: %s", i, st_strerror(&err));
	}
	if (st_wait(w.ref, close_id, &closed, &err) != ST_OK)
		h_fail("close: %s", st_strerror(&err));
	print_message("close race: %d claims before the close (%d block "
	    "seats), %d after, %d seats returned\n", ok, from_block,
	    refused_state, (int)w_int(closed, "seats_returned"));
	assert_int_equal(ok + refused_state + sold_out, RACERS);
	/* 30 seats for 40 claims: sold_out only if the close came last */
	assert_true(sold_out == 0 || ok == 30);
	assert_true(from_block <= 20);
	assert_int_equal(from_block + w_int(closed, "seats_returned"), 20);
	assert_int_equal(w_int(closed, "seats_claimed"), from_block);
	json_decref(closed);
	assert_int_equal(sql_int("SELECT seats_taken FROM offers WHERE id = "
	    "%lld", (long long)o), ok);
	check_invariants();

	for (i = 0; i < RACERS; i++)
		st_close(rc[i].c);
	world_close(&w);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

/* ------------------------------------------------------------ states */

static void
test_states(void **state)
{
	struct world w;
	json_t *r, *r2, *d1, *d2;
	json_int_t o, pm, pm2, pm3, a, b;
	char hash[65], seed_hash[65], secret[128];

	start(&w, "perm_states", LOOSE_CAPS);
	o = offer_at(w.partner, 10, 2, NULL);
	a = w_beneficiary(w.ref, "Anne", "Etat");
	b = w_beneficiary(w.ref, "Bruno", "Etat");
	pm = permanence(w.ref, W_DAY);
	json_decref(reserve(w.ref, pm, o, 2));

	/* scheduled: no claims yet; wishes are fine */
	expect_state(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", a,
	    "offer_id", o, "seats", 1), "scheduled");
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", a, "choices", o, "seats",
	    1));
	/* open, and open again: the same object */
	r = OK(w.ref, "permanence.open", "{s:I}", "permanence_id", pm);
	assert_string_equal(w_str(r, "state"), "open");
	assert_true(json_is_string(json_object_get(r, "opened_at")));
	r2 = OK(w.ref, "permanence.open", "{s:I}", "permanence_id", pm);
	if (!json_equal(r, r2))
		h_fail("open twice: %s", h_json_str(r2));
	json_decref(r);
	json_decref(r2);
	/* open: wishes, claims, blocks */
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", b, "choices", o, "seats",
	    1));
	json_decref(reserve(w.ref, pm, o, 1));

	/* Before the draw the seed is committed: its SHA-256 is shown, the
	 * seed itself nowhere; nobody may choose it. */
	snprintf(secret, sizeof secret, "%s", h_db_exec(db, "SELECT "
	    "draw_secret FROM permanences WHERE id = 1"));
	assert_int_equal(pm, 1);
	assert_true(is_hex64(secret));
	sha256_hex(secret, seed_hash);
	r = get(w.ref, pm);
	snprintf(hash, sizeof hash, "%s", w_str(r, "seed_sha256"));
	assert_string_equal(hash, seed_hash);
	assert_true(json_is_null(json_object_get(r, "seed")));
	assert_not_contains(r, secret);
	json_decref(r);
	r = OK(w.ref, "permanence.list", "{s:s}", "state", "open");
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    0), "seed_sha256"), hash);
	assert_not_contains(r, secret);
	json_decref(r);
	r = OK(w.admin, "audit.list", "{s:i}", "limit", 500);
	assert_not_contains(r, secret);
	json_decref(r);
	expect_field(w.ref, "permanence.draw", json_pack("{s:I, s:s}",
	    "permanence_id", pm, "seed", "etats"), -32602, "invalid_params",
	    "seed");

	/* the draw, from open: it reveals the seed committed to */
	d1 = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm);
	assert_int_equal(w_int(d1, "granted"), 2);
	assert_true(is_hex64(w_str(d1, "seed")));
	sha256_hex(w_str(d1, "seed"), seed_hash);
	assert_string_equal(seed_hash, hash);
	r = get(w.ref, pm);
	assert_string_equal(w_str(r, "state"), "drawn");
	assert_true(json_is_string(json_object_get(r, "drawn_at")));
	assert_string_equal(w_str(r, "seed"), w_str(d1, "seed"));
	assert_string_equal(w_str(r, "seed_sha256"), hash);
	if (!json_equal(json_object_get(r, "draw"), d1))
		h_fail("get shows another draw: %s", h_json_str(r));
	json_decref(r);
	/* drawn: no more wishes or blocks; claims stay open, since the desk
	 * was opened before the draw (docs/draw.md): a claim is refused by
	 * the booking rules only (a holds o already), and opening again
	 * answers the permanence as it is */
	expect_state(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I], s:i}", "permanence_id", pm, "beneficiary_id", a,
	    "choices", o, "seats", 1), "drawn");
	json_decref(h_call_err(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", a,
	    "offer_id", o, "seats", 1), 409, "duplicate"));
	r = OK(w.ref, "permanence.open", "{s:I}", "permanence_id", pm);
	assert_string_equal(w_str(r, "state"), "drawn");
	assert_true(json_is_true(json_object_get(r, "claims_open")));
	json_decref(r);
	expect_state(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", o, "seats", 1),
	    "drawn");
	/* drawing again answers the stored result */
	d2 = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm);
	if (!json_equal(d1, d2))
		h_fail("second draw differs: %s", h_json_str(d2));
	json_decref(d2);
	/* release_block is fine while drawn: 1 of 3 block seats left */
	r = OK(w.ref, "permanence.release_block", "{s:I, s:I, s:i}",
	    "permanence_id", pm, "offer_id", o, "seats", 1);
	assert_int_equal(w_int(r, "released"), 1);
	assert_string_equal(w_str(r, "state"), "drawn");
	json_decref(r);

	/* close from drawn, then close again */
	r = OK(w.ref, "permanence.close", "{s:I}", "permanence_id", pm);
	assert_string_equal(w_str(r, "state"), "closed");
	assert_int_equal(w_int(r, "seats_returned"), 0);
	assert_true(json_is_string(json_object_get(r, "closed_at")));
	json_decref(r);
	r = OK(w.ref, "permanence.close", "{s:I}", "permanence_id", pm);
	assert_string_equal(w_str(r, "state"), "closed");
	assert_int_equal(w_int(r, "seats_returned"), 0);
	assert_int_equal(w_int(r, "waitlist_served"), 0);
	json_decref(r);
	/* a drawn then closed permanence still answers its draw */
	d2 = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm);
	if (!json_equal(d1, d2))
		h_fail("draw after close differs: %s", h_json_str(d2));
	json_decref(d2);
	json_decref(d1);
	expect_state(w.ref, "permanence.open", json_pack("{s:I}",
	    "permanence_id", pm), "closed");
	expect_state(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I], s:i}", "permanence_id", pm, "beneficiary_id", a,
	    "choices", o, "seats", 1), "closed");
	expect_state(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", a,
	    "offer_id", o, "seats", 1), "closed");

	/* closed without a draw: no draw any more */
	pm2 = permanence(w.ref, 2 * W_DAY);
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm2, "beneficiary_id", a, "choices", o, "seats",
	    1));
	r = OK(w.ref, "permanence.close", "{s:I}", "permanence_id", pm2);
	assert_int_equal(w_int(r, "seats_returned"), 0);
	json_decref(r);
	expect_state(w.ref, "permanence.draw", json_pack("{s:I}",
	    "permanence_id", pm2), "closed");
	r = get(w.ref, pm2);
	assert_true(json_is_null(json_object_get(r, "draw")));
	assert_true(json_is_null(json_object_get(r, "seed")));
	assert_true(is_hex64(w_str(r, "seed_sha256")));
	json_decref(r);

	/* drawn straight from scheduled, without wishes: nobody to serve */
	pm3 = permanence(w.ref, 3 * W_DAY);
	r = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm3);
	assert_int_equal(w_int(r, "wishes"), 0);
	assert_int_equal(json_array_size(json_object_get(r, "results")), 0);
	json_decref(r);
	expect_state(w.ref, "permanence.open", json_pack("{s:I}",
	    "permanence_id", pm3), "drawn");
	/* unknown ids and other structures: not_found */
	ERR(w.ref, "permanence.open", 404, "not_found", "{s:I}",
	    "permanence_id", (json_int_t)999999);
	ERR(w.ref2, "permanence.close", 404, "not_found", "{s:I}",
	    "permanence_id", pm3);
	ERR(w.ref2, "permanence.draw", 404, "not_found", "{s:I}",
	    "permanence_id", pm3);
	ERR(w.partner, "permanence.open", 403, "forbidden", "{s:I}",
	    "permanence_id", pm3);
	check_invariants();
	finish(&w);
}

/* ------------------------------------------------------------ claims */

static void
test_claims(void **state)
{
	struct world w;
	json_t *r, *r2, *data, *bk;
	json_int_t oa, ob, oc, od, pm, p, q, s, t, other;
	long long taken;

	/* max_per_month 1 and max_upcoming 2: caps are easy to hit */
	start(&w, "perm_claims", "[policy]\nmax_upcoming_per_beneficiary = "
	    "2\nmax_per_month = 1\n");
	oa = offer_at(w.partner, 5, 2, month_day(2, 10, 12));
	ob = offer_at(w.partner, 5, 2, month_day(2, 20, 12));
	oc = offer_at(w.partner, 6, 3, month_day(3, 10, 12));
	od = offer_at(w.partner, 6, 3, month_day(4, 10, 12));
	p = w_beneficiary(w.ref, "Paule", "Guichet");
	q = w_beneficiary(w.ref, "Quentin", "Guichet");
	s = w_beneficiary(w.ref, "Sarah", "Guichet");
	t = w_beneficiary(w.ref, "Théo", "Guichet");
	other = w_beneficiary(w.ref2, "Olga", "Ailleurs");
	pm = permanence(w.ref, W_DAY);
	json_decref(reserve(w.ref, pm, oa, 2));
	json_decref(reserve(w.ref, pm, oc, 1));
	json_decref(OK(w.ref, "permanence.open", "{s:I}", "permanence_id",
	    pm));

	/* party size outside 1..max_per_booking */
	expect_field(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", p,
	    "offer_id", oa, "seats", 3), -32602, "invalid_params", "seats");
	expect_field(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", p,
	    "offer_id", oa, "seats", 0), -32602, "invalid_params", "seats");

	/* block first: Paule's 2 seats are the block's */
	bk = claim(w.ref, pm, p, oa, 2);
	assert_int_equal(w_int(bk, "from_block"), 2);
	assert_int_equal(w_int(bk, "permanence_id"), pm);
	assert_int_equal(w_int(bk, "seats"), 2);
	assert_string_equal(w_str(bk, "status"), "confirmed");
	assert_string_equal(w_str(bk, "source"), "claim");
	assert_true(strlen(w_str(bk, "code")) >= 16);
	json_decref(bk);
	expect_block(w.ref, pm, oa, 2, 2, 0);
	/* then the pool: Quentin's 2 seats */
	bk = claim(w.ref, pm, q, oa, 2);
	assert_int_equal(w_int(bk, "from_block"), 0);
	json_decref(bk);
	assert_int_equal(available(w.ref, oa), 1);
	/* a claim that takes both: block 1 on C, pool for the rest */
	bk = claim(w.ref, pm, q, oc, 3);
	assert_int_equal(w_int(bk, "from_block"), 1);
	json_decref(bk);
	expect_block(w.ref, pm, oc, 1, 1, 0);
	r = offer_get(w.ref, oc);
	assert_int_equal(w_int(r, "seats_taken"), 3);
	assert_int_equal(w_int(r, "seats_available"), 3);
	json_decref(r);

	/* sold_out says what is left (pool 1, block 0) */
	data = h_call_err(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", s,
	    "offer_id", oa, "seats", 2), 409, "sold_out");
	assert_int_equal(w_int(data, "seats_available"), 1);
	json_decref(data);
	/* duplicate: Paule holds A */
	ERR(w.ref, "permanence.claim", 409, "duplicate",
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", p,
	    "offer_id", oa, "seats", 1);
	/* limit_reached, per month: B is in A's month */
	data = h_call_err(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", p,
	    "offer_id", ob, "seats", 1), 409, "limit_reached");
	assert_string_equal(w_str(data, "cap"), "max_per_month");
	json_decref(data);
	/* limit_reached, upcoming: Quentin holds A and C */
	data = h_call_err(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", q,
	    "offer_id", od, "seats", 1), 409, "limit_reached");
	assert_string_equal(w_str(data, "cap"), "max_upcoming_per_beneficiary");
	json_decref(data);
	/* the same as booking.create for the same case */
	data = h_call_err(w.ref, "booking.create", json_pack(
	    "{s:I, s:I, s:i}", "beneficiary_id", q, "offer_id", od, "seats",
	    1), 409, "limit_reached");
	assert_string_equal(w_str(data, "cap"), "max_upcoming_per_beneficiary");
	json_decref(data);

	/* not found: offer, beneficiary of another structure, permanence of
	 * another structure */
	expect_field(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", s,
	    "offer_id", (json_int_t)999999, "seats", 1), 404, "not_found",
	    "offer_id");
	expect_field(w.admin, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id",
	    other, "offer_id", ob, "seats", 1), 404, "not_found",
	    "beneficiary_id");
	ERR(w.ref2, "permanence.claim", 404, "not_found",
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id",
	    other, "offer_id", ob, "seats", 1);

	/* idempotency: the same key answers the first booking again and
	 * takes no more seats */
	r = OK(w.ref, "permanence.claim", "{s:I, s:I, s:I, s:i, s:s}",
	    "permanence_id", pm, "beneficiary_id", t, "offer_id", od, "seats",
	    2, "idempotency_key", "desk-42");
	taken = sql_int("SELECT seats_taken FROM offers WHERE id = %lld",
	    (long long)od);
	assert_int_equal(taken, 2);
	r2 = OK(w.ref, "permanence.claim", "{s:I, s:I, s:I, s:i, s:s}",
	    "permanence_id", pm, "beneficiary_id", t, "offer_id", od, "seats",
	    2, "idempotency_key", "desk-42");
	if (!json_equal(r, r2))
		h_fail("replay differs: %s", h_json_str(r2));
	json_decref(r2);
	assert_int_equal(sql_int("SELECT seats_taken FROM offers WHERE id = "
	    "%lld", (long long)od), taken);
	assert_int_equal(sql_int("SELECT count(*) FROM bookings WHERE "
	    "beneficiary_id = %lld", (long long)t), 1);
	/* the same key for another request: refused, nothing booked */
	expect_field(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i, s:s}", "permanence_id", pm,
	    "beneficiary_id", t, "offer_id", od, "seats", 1,
	    "idempotency_key", "desk-42"), -32602, "invalid_params",
	    "idempotency_key");
	/* a key of booking.create is not a claim's */
	json_decref(OK(w.ref, "booking.create", "{s:I, s:I, s:i, s:s}",
	    "beneficiary_id", s, "offer_id", od, "seats", 1,
	    "idempotency_key", "desk-44"));
	expect_field(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i, s:s}", "permanence_id", pm,
	    "beneficiary_id", s, "offer_id", od, "seats", 1,
	    "idempotency_key", "desk-44"), -32602, "invalid_params",
	    "idempotency_key");
	/* keys are per user: the admin's "desk-42" is another key */
	bk = OK(w.admin, "permanence.claim", "{s:I, s:I, s:I, s:i, s:s}",
	    "permanence_id", pm, "beneficiary_id", s, "offer_id", oc, "seats",
	    1, "idempotency_key", "desk-42");
	assert_int_equal(w_int(bk, "beneficiary_id"), s);
	json_decref(bk);
	assert_int_equal(sql_int("SELECT seats_taken FROM offers WHERE id = "
	    "%lld", (long long)od), taken + 1);
	/* without the key, a second try is a duplicate */
	ERR(w.ref, "permanence.claim", 409, "duplicate",
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", t,
	    "offer_id", od, "seats", 2);
	/* the replay still answers once the permanence is closed */
	json_decref(OK(w.ref, "permanence.close", "{s:I}", "permanence_id",
	    pm));
	r2 = OK(w.ref, "permanence.claim", "{s:I, s:I, s:I, s:i, s:s}",
	    "permanence_id", pm, "beneficiary_id", t, "offer_id", od, "seats",
	    2, "idempotency_key", "desk-42");
	if (!json_equal(r, r2))
		h_fail("replay after close differs: %s", h_json_str(r2));
	json_decref(r2);
	json_decref(r);
	/* a new key after the close: permanence_state */
	expect_state(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i, s:s}", "permanence_id", pm,
	    "beneficiary_id", s, "offer_id", od, "seats", 1,
	    "idempotency_key", "desk-43"), "closed");
	check_invariants();
	finish(&w);
}

/* -------------------------------------------------- wishes and desk */

static void
test_wishes_and_desk(void **state)
{
	struct world w;
	json_t *r, *wish, *items, *k, *data;
	json_int_t o1, o2, o3, gone, pm, a, b, c, e, other;
	json_int_t first_wish;
	size_t i;

	start(&w, "perm_wishes", LOOSE_CAPS);
	o1 = offer_at(w.partner, 8, 2, NULL);
	o2 = offer_at(w.partner, 5, 3, NULL);
	o3 = offer_at(w.partner, 4, 4, NULL);
	gone = offer_at(w.partner, 4, 4, NULL);
	json_decref(OK(w.partner, "offer.cancel", "{s:I, s:s}", "offer_id",
	    gone, "reason", "Annulé"));
	a = w_beneficiary(w.ref, "Amélie", "Voeu");
	b = w_beneficiary(w.ref, "Basile", "Voeu");
	c = w_beneficiary(w.ref, "Chloé", "Voeu");
	e = w_beneficiary(w.ref, "Émile", "Efface");
	other = w_beneficiary(w.ref2, "Omar", "Ailleurs");
	pm = permanence(w.ref, W_DAY);
	json_decref(reserve(w.ref, pm, o1, 3));
	json_decref(reserve(w.ref, pm, o2, 2));

	/* refused wishes */
	expect_field(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I, I], s:i}", "permanence_id", pm,
	    "beneficiary_id", a, "choices", o1, o1, "seats", 1), -32602,
	    "invalid_params", "choices");
	expect_field(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I, I], s:i}", "permanence_id", pm,
	    "beneficiary_id", a, "choices", o1, (json_int_t)999999, "seats",
	    1), 404, "not_found", "choices");
	expect_field(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I, I], s:i}", "permanence_id", pm,
	    "beneficiary_id", a, "choices", o2, o1, "seats", 3), -32602,
	    "invalid_params", "seats");
	expect_field(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I, I, I, I], s:i}", "permanence_id", pm,
	    "beneficiary_id", a, "choices", o1, o2, o3, gone, "seats", 1),
	    -32602, "invalid_params", "choices");
	expect_field(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[], s:i}", "permanence_id", pm, "beneficiary_id", a,
	    "choices", "seats", 1), -32602, "invalid_params", "choices");
	expect_field(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I], s:i}", "permanence_id", pm, "beneficiary_id", a,
	    "choices", o1, "seats", 0), -32602, "invalid_params", "seats");
	data = h_call_err(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I, I], s:i}", "permanence_id", pm,
	    "beneficiary_id", a, "choices", o1, gone, "seats", 1), 409,
	    "offer_cancelled");
	assert_string_equal(field_of(data), "choices");
	json_decref(data);
	{
		json_int_t late = offer_at(w.partner, 4, 4, NULL);
		char sql[160];

		snprintf(sql, sizeof sql, "UPDATE offers SET booking_deadline "
		    "= now() - interval '1 minute' WHERE id = %lld",
		    (long long)late);
		h_db_exec(db, sql);
		data = h_call_err(w.ref, "permanence.wish", json_pack(
		    "{s:I, s:I, s:[I], s:i}", "permanence_id", pm,
		    "beneficiary_id", a, "choices", late, "seats", 1), 409,
		    "deadline_passed");
		assert_string_equal(field_of(data), "choices");
		json_decref(data);
	}
	expect_field(w.admin, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I], s:i}", "permanence_id", pm, "beneficiary_id",
	    other, "choices", o1, "seats", 1), 404, "not_found",
	    "beneficiary_id");
	ERR(w.ref2, "permanence.wish", 404, "not_found",
	    "{s:I, s:I, s:[I], s:i}", "permanence_id", pm, "beneficiary_id",
	    other, "choices", o1, "seats", 1);
	assert_int_equal(sql_int("SELECT count(*) FROM wishes"), 0);

	/* Amélie wishes, then changes her mind: the new wish replaces */
	wish = OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I, I], s:i}",
	    "permanence_id", pm, "beneficiary_id", a, "choices", o1, o2,
	    "seats", 2);
	assert_true(json_is_null(json_object_get(wish, "replaces_wish_id")));
	assert_int_equal(json_integer_value(json_array_get(json_object_get(
	    wish, "choices"), 1)), o2);
	first_wish = w_int(wish, "id");
	json_decref(wish);
	wish = OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I, I, I], s:i}",
	    "permanence_id", pm, "beneficiary_id", a, "choices", o3, o2, o1,
	    "seats", 1);
	assert_int_equal(w_int(wish, "replaces_wish_id"), first_wish);
	assert_true(w_int(wish, "id") != first_wish);
	json_decref(wish);
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", b, "choices", o2, "seats",
	    3));
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I, I], s:i}",
	    "permanence_id", pm, "beneficiary_id", e, "choices", o1, o3,
	    "seats", 1));

	/* at the desk: open, Chloé claims 2 block seats of o1 */
	json_decref(OK(w.ref, "permanence.open", "{s:I}", "permanence_id",
	    pm));
	json_decref(claim(w.ref, pm, c, o1, 2));
	/* Émile is erased: his wish leaves the desk's view */
	json_decref(OK(w.ref, "beneficiary.erase", "{s:I}", "beneficiary_id",
	    e));

	/* One call shows blocks with what is left, and the wishes so far. */
	r = get(w.ref, pm);
	assert_string_equal(w_str(r, "state"), "open");
	assert_int_equal(w_int(r, "seats_set_aside"), 5);
	assert_int_equal(w_int(r, "seats_claimed"), 2);
	assert_int_equal(w_int(r, "seats_remaining"), 3);
	assert_int_equal(w_int(r, "wishes_count"), 2);
	assert_int_equal(json_array_size(json_object_get(r, "blocks")), 2);
	k = block_of(r, o1);
	assert_int_equal(w_int(k, "seats"), 3);
	assert_int_equal(w_int(k, "claimed"), 2);
	assert_int_equal(w_int(k, "remaining"), 1);
	assert_int_equal(w_int(k, "pool_available"), 5);   /* 8 - 3 */
	assert_int_equal(w_int(k, "max_per_booking"), 2);
	assert_true(json_is_string(json_object_get(k, "offer_title")));
	k = block_of(r, o2);
	assert_int_equal(w_int(k, "remaining"), 2);
	assert_int_equal(w_int(k, "pool_available"), 3);
	items = json_object_get(r, "wishes");
	assert_int_equal(json_array_size(items), 2);
	json_array_foreach(items, i, k) {
		json_int_t who = w_int(k, "beneficiary_id");

		assert_true(who == a || who == b);
		assert_true(json_is_null(json_object_get(k, "replaced_at")));
		assert_true(json_is_null(json_object_get(k, "rank")));
		if (who == a) {
			assert_string_equal(w_str(k, "holder"), "Amélie Voeu");
			assert_int_equal(w_int(k, "seats"), 1);
			assert_int_equal(json_array_size(json_object_get(k,
			    "choices")), 3);
			assert_int_equal(json_integer_value(json_array_get(
			    json_object_get(k, "choices"), 0)), o3);
		} else
			assert_string_equal(w_str(k, "holder"), "Basile Voeu");
	}
	assert_true(json_is_null(json_object_get(r, "draw")));
	json_decref(r);
	/* the list shows the same counts */
	r = OK(w.ref, "permanence.list", "{s:s}", "state", "open");
	items = json_object_get(r, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(w_int(json_array_get(items, 0), "wishes_count"), 2);
	assert_int_equal(w_int(json_array_get(items, 0), "seats_remaining"),
	    3);
	json_decref(r);
	/* Chloé erased: her claimed seats go back to the block */
	r = OK(w.ref, "beneficiary.erase", "{s:I}", "beneficiary_id", c);
	assert_int_equal(w_int(r, "bookings_cancelled"), 1);
	json_decref(r);
	expect_block(w.ref, pm, o1, 3, 0, 3);
	/* the export of a person shows her wishes, the old one too */
	r = OK(w.ref, "beneficiary.export", "{s:I}", "beneficiary_id", a);
	assert_int_equal(json_array_size(json_object_get(r, "wishes")), 2);
	json_decref(r);
	check_invariants();
	finish(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_series_spec_example),
		cmocka_unit_test(test_series_dst),
		cmocka_unit_test(test_series_nth),
		cmocka_unit_test(test_series_timezones),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_block_race),
		cmocka_unit_test(test_close_race),
		cmocka_unit_test(test_states),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_wishes_and_desk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
