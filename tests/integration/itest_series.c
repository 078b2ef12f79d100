/*
 * Recurring offers (docs/series.md): offer.publish_series publishes one
 * offer per date of its rule at the same wall-clock time across
 * daylight-saving changes; offer.update and offer.cancel reach "this one"
 * or "this and the following", and nothing before.
 */
#include "world.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

static struct world W;
static PGconn *DB;

static int
setup(void **state)
{
	world_build(&W, h_daemon_start("series", ""));
	DB = h_db_connect(W.d->conninfo);
	return 0;
}

static int
teardown(void **state)
{
	struct h_daemon *d = W.d;

	world_close(&W);
	PQfinish(DB);
	assert_int_equal(h_daemon_stop(d), 0);
	return 0;
}

/* "YYYY-MM-DD" of a day next year (static buffer, 2 in rotation). */
static const char *
next_year(int month, int day)
{
	static char bufs[2][32];
	static int next;
	char *b = bufs[next++ % 2];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(b, 32, "%04d-%02d-%02d", tm.tm_year + 1900 + 1, month, day);
	return b;
}

/* The common fields of a series; the rule is added by the caller. */
static json_t *
series(const char *weekday, const char *from_date)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s}",
	    "title", "Jardin partagé", "category", "workshop", "venue",
	    "Jardin des Lilas", "city", "Billom", "seats", 6,
	    "max_per_booking", 2, "weekday", weekday, "start_time", "14:00",
	    "end_time", "16:00", "from_date", from_date);
}

static json_t *
publish(json_t *p)
{
	return h_call_ok(W.partner, "offer.publish_series", p);
}

static json_int_t
item_id(const json_t *r, size_t i)
{
	return w_int(json_array_get(json_object_get(r, "items"), i), "id");
}

/* The first value of a query built printf-style. */
static const char *sqlf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static const char *
sqlf(const char *fmt, ...)
{
	static char sql[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	return h_db_exec(DB, sql);
}

/* Six Wednesdays from the 1st of March: the clocks go forward on the last
 * Sunday of March, in the middle. Every offer still starts at 14:00 and
 * ends at 16:00 in Paris, a week apart; the instants differ by the hour. */
static void
test_weekly_across_dst(void **state)
{
	json_t *p = series("wednesday", next_year(3, 1));
	json_t *r;
	json_int_t sid;

	json_object_set_new(p, "count", json_integer(6));
	r = publish(p);
	sid = w_int(r, "series_id");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 6);
	assert_int_equal(json_array_size(json_object_get(r, "skipped_months")),
	    0);
	assert_int_equal(w_int(json_array_get(json_object_get(r, "items"), 0),
	    "series_id"), sid);
	assert_string_equal(sqlf("SELECT count(*) FROM offers WHERE series_id "
	    "= %lld AND to_char(starts_at AT TIME ZONE 'Europe/Paris', "
	    "'ID HH24:MI') = '3 14:00' AND to_char(ends_at AT TIME ZONE "
	    "'Europe/Paris', 'HH24:MI') = '16:00' AND booking_deadline = "
	    "starts_at - interval '48 hours' AND seats_total = 6 AND "
	    "max_per_booking = 2", sid), "6");
	assert_string_equal(sqlf("SELECT count(DISTINCT extract(hour FROM "
	    "starts_at AT TIME ZONE 'UTC')) FROM offers WHERE series_id = "
	    "%lld", sid), "2");
	/* the first Wednesday on or after the 1st, then every 7 days */
	assert_string_equal(sqlf("SELECT bool_and(d - prev = 7) FROM (SELECT "
	    "d, lag(d) OVER (ORDER BY d) AS prev FROM (SELECT (starts_at AT "
	    "TIME ZONE 'Europe/Paris')::date AS d FROM offers WHERE series_id "
	    "= %lld) x) y WHERE prev IS NOT NULL", sid), "t");
	assert_string_equal(sqlf("SELECT extract(day FROM min(starts_at AT "
	    "TIME ZONE 'Europe/Paris')) <= 7 FROM offers WHERE series_id = "
	    "%lld", sid), "t");
	json_decref(r);

	/* until_date, inclusive: four weeks hold four of each weekday */
	p = series("sunday", next_year(6, 1));
	json_object_set_new(p, "until_date", json_string(next_year(6, 28)));
	json_object_set_new(p, "deadline_hours", json_integer(0));
	json_object_del(p, "end_time");
	r = publish(p);
	sid = w_int(r, "series_id");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 4);
	assert_string_equal(sqlf("SELECT count(*) FROM offers WHERE series_id "
	    "= %lld AND ends_at IS NULL AND booking_deadline = starts_at AND "
	    "extract(isodow FROM starts_at AT TIME ZONE 'Europe/Paris') = 7",
	    sid), "4");
	json_decref(r);
}

/* The 5th Thursday of the month, four times: the months without one are
 * skipped and named. An evening ending after midnight ends the next day. */
static void
test_monthly_nth(void **state)
{
	json_t *p = series("thursday", next_year(1, 1));
	json_t *r, *skipped;
	json_int_t sid;
	char sql[400];
	size_t i;

	json_object_set_new(p, "nth", json_integer(5));
	json_object_set_new(p, "count", json_integer(4));
	json_object_set_new(p, "start_time", json_string("21:00"));
	json_object_set_new(p, "end_time", json_string("01:00"));
	r = publish(p);
	sid = w_int(r, "series_id");
	skipped = json_object_get(r, "skipped_months");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 4);
	assert_true(json_array_size(skipped) >= 4);
	assert_string_equal(sqlf("SELECT count(*) FROM offers WHERE series_id "
	    "= %lld AND extract(day FROM starts_at AT TIME ZONE "
	    "'Europe/Paris') >= 29 AND to_char(starts_at AT TIME ZONE "
	    "'Europe/Paris', 'ID HH24:MI') = '4 21:00' AND ends_at = starts_at "
	    "+ interval '4 hours'", sid), "4");
	/* each month skipped is one without a 5th Thursday */
	for (i = 0; i < json_array_size(skipped); i++) {
		snprintf(sql, sizeof sql, "SELECT count(*) FROM generate_series("
		    "'%s-01'::date, ('%s-01'::date + interval '1 month' - "
		    "interval '1 day')::date, interval '1 day') g WHERE "
		    "extract(isodow FROM g) = 4 AND extract(day FROM g) >= 29",
		    json_string_value(json_array_get(skipped, i)),
		    json_string_value(json_array_get(skipped, i)));
		assert_string_equal(h_db_exec(DB, sql), "0");
	}
	json_decref(r);
}

static void
expect_field(json_t *p, const char *field)
{
	json_t *data = h_call_err(W.partner, "offer.publish_series", p,
	    -32602, "invalid_params");

	assert_non_null(data);
	assert_string_equal(w_str(data, "field"), field);
	json_decref(data);
}

/* A wrong rule is refused, naming the field, and publishes nothing. */
static void
test_refusals(void **state)
{
	const char *before = NULL;
	char n[32];
	json_t *p;

	snprintf(n, sizeof n, "%s", h_db_exec(DB, "SELECT count(*) FROM "
	    "offers"));
	before = n;
	/* neither count nor until_date, and both */
	expect_field(series("monday", next_year(4, 1)), "count");
	p = series("monday", next_year(4, 1));
	json_object_set_new(p, "count", json_integer(2));
	json_object_set_new(p, "until_date", json_string(next_year(5, 1)));
	expect_field(p, "count");
	p = series("monday", next_year(4, 1));
	json_object_set_new(p, "nth", json_integer(0));
	json_object_set_new(p, "count", json_integer(2));
	expect_field(p, "nth");
	p = series("monday", next_year(4, 1));
	json_object_set_new(p, "count", json_integer(2));
	json_object_set_new(p, "end_time", json_string("14:00"));
	expect_field(p, "end_time");
	/* a series is not a calendar for years: at most 120 dates */
	p = series("monday", next_year(1, 1));
	json_object_set_new(p, "until_date", json_string("2099-12-31"));
	expect_field(p, "until_date");
	p = series("monday", next_year(4, 1));
	json_object_set_new(p, "until_date", json_string(next_year(3, 1)));
	expect_field(p, "until_date");
	/* its first date is past */
	p = series("monday", "2020-01-06");
	json_object_set_new(p, "count", json_integer(3));
	expect_field(p, "from_date");
	/* times come from the rule, not as instants */
	p = series("monday", next_year(4, 1));
	json_object_set_new(p, "count", json_integer(2));
	json_object_set_new(p, "starts_at", json_string(w_time(W_DAY)));
	expect_field(p, "starts_at");
	assert_string_equal(h_db_exec(DB, "SELECT count(*) FROM offers"),
	    before);
	/* another partner's name is not found, as for offer.publish */
	p = series("monday", next_year(4, 1));
	json_object_set_new(p, "count", json_integer(2));
	json_object_set_new(p, "partner_id", json_integer(W.partner_id));
	json_decref(h_call_err(W.partner2, "offer.publish_series", p, 404,
	    "not_found"));
}

static const char *
status_of(json_int_t offer)
{
	return sqlf("SELECT status || ' ' || title || ' ' || to_char("
	    "starts_at AT TIME ZONE 'Europe/Paris', 'HH24:MI') FROM offers "
	    "WHERE id = %lld", offer);
}

/* "This one" leaves the others alone; "this and the following" reaches
 * the later published offers of the series, never the earlier ones;
 * their bookings stay, or are cancelled with them. */
static void
test_this_and_following(void **state)
{
	json_t *p = series("tuesday", next_year(5, 1));
	json_t *r, *u, *data;
	json_int_t o[5], b1, b2, lone;
	char sql[256];
	int i;

	json_object_set_new(p, "count", json_integer(5));
	r = publish(p);
	for (i = 0; i < 5; i++)
		o[i] = item_id(r, i);
	json_decref(r);
	b1 = w_beneficiary(W.ref, "Léa", "Mardi");
	b2 = w_beneficiary(W.ref, "Paul", "Mardi");
	json_decref(w_book(W.ref, o[1], b1, 2));
	json_decref(w_book(W.ref, o[3], b2, 1));

	/* this one */
	json_decref(OK(W.partner, "offer.update", "{s:I, s:s}", "offer_id",
	    o[0], "title", "Jardin (pluie)"));
	assert_string_equal(status_of(o[0]), "published Jardin (pluie) 14:00");
	assert_string_equal(status_of(o[1]), "published Jardin partagé 14:00");

	/* this and the following: from the 3rd, an hour later, new title;
	 * the length and the deadline's lead are kept */
	u = OK(W.partner, "offer.update", "{s:I, s:s, s:s, s:s}", "offer_id",
	    o[2], "scope", "following", "title", "Jardin d'été", "start_time",
	    "15:00");
	assert_int_equal(w_int(u, "id"), o[2]);
	assert_int_equal(json_array_size(json_object_get(u, "items")), 3);
	json_decref(u);
	assert_string_equal(status_of(o[1]), "published Jardin partagé 14:00");
	for (i = 2; i < 5; i++)
		assert_string_equal(status_of(o[i]),
		    "published Jardin d'été 15:00");
	snprintf(sql, sizeof sql, "SELECT count(*) FROM offers WHERE id IN "
	    "(%lld, %lld) AND ends_at - starts_at = interval '2 hours' AND "
	    "starts_at - booking_deadline = interval '48 hours'",
	    (long long)o[2], (long long)o[3]);
	assert_string_equal(h_db_exec(DB, sql), "2");
	assert_string_equal(sqlf("SELECT status FROM bookings WHERE offer_id "
	    "= %lld", o[3]), "confirmed");

	/* instants name one offer; wall clock only with following */
	data = h_call_err(W.partner, "offer.update", json_pack("{s:I, s:s, "
	    "s:s}", "offer_id", o[2], "scope", "following", "starts_at",
	    w_time(40 * W_DAY)), -32602, "invalid_params");
	assert_string_equal(w_str(data, "field"), "starts_at");
	json_decref(data);
	data = h_call_err(W.partner, "offer.update", json_pack("{s:I, s:s}",
	    "offer_id", o[2], "start_time", "10:00"), -32602,
	    "invalid_params");
	assert_string_equal(w_str(data, "field"), "start_time");
	json_decref(data);
	/* an offer alone has no following */
	lone = w_offer(W.partner, 5, 2, NULL);
	data = h_call_err(W.partner, "offer.cancel", json_pack("{s:I, s:s, "
	    "s:s}", "offer_id", lone, "scope", "following", "reason", "x"),
	    -32602, "invalid_params");
	assert_string_equal(w_str(data, "field"), "scope");
	json_decref(data);
	/* another partner's series is not found */
	json_decref(h_call_err(W.partner2, "offer.cancel", json_pack("{s:I, "
	    "s:s, s:s}", "offer_id", o[1], "scope", "following", "reason",
	    "x"), 404, "not_found"));

	/* the 4th cancelled alone, then the 2nd and the following: the 2nd,
	 * 3rd and 5th go, with the 2nd's booking; the 1st stays */
	json_decref(OK(W.partner, "offer.cancel", "{s:I, s:s}", "offer_id",
	    o[3], "reason", "Fermé ce jour-là"));
	u = OK(W.partner, "offer.cancel", "{s:I, s:s, s:s}", "offer_id", o[1],
	    "scope", "following", "reason", "Fin de saison");
	assert_int_equal(w_int(u, "id"), o[1]);
	assert_int_equal(w_int(u, "bookings_cancelled"), 1);
	assert_int_equal(json_array_size(json_object_get(u, "items")), 3);
	json_decref(u);
	assert_string_equal(status_of(o[0]), "published Jardin (pluie) 14:00");
	for (i = 1; i < 5; i++)
		assert_string_equal(sqlf("SELECT status FROM offers WHERE id = "
		    "%lld", o[i]), "cancelled");
	assert_string_equal(sqlf("SELECT cancel_reason FROM offers WHERE id "
	    "= %lld", o[4]), "Fin de saison");
	assert_string_equal(sqlf("SELECT status FROM bookings WHERE offer_id "
	    "= %lld", o[1]), "cancelled_by_partner");
	assert_string_equal(sqlf("SELECT count(*) FROM audit_log WHERE method "
	    "= 'offer.cancel' AND object_id = %lld", o[4]), "1");
}

/* How many offers of the series open to everyone exactly hours before
 * their own start, keeping that lead. */
static const char *
opening_lead(json_int_t sid, int hours)
{
	return sqlf("SELECT count(*) FROM offers WHERE series_id = %lld AND "
	    "opens_to_all_hours = %d AND opens_to_all_at = starts_at - "
	    "interval '%d hours'", (long long)sid, hours, hours);
}

/* Kept for the Puy-de-Dôme until 72 hours before each show: every date
 * opens at its own time, which "this and the following" moves date by
 * date; a lead shorter than the deadline's is refused for the series. */
static void
test_opening_lead(void **state)
{
	json_t *p = series("friday", next_year(3, 1));
	json_t *r, *u, *v;
	json_int_t sid, o[3];
	size_t i;

	json_object_set_new(p, "count", json_integer(3));
	json_object_set_new(p, "target_territories",
	    json_pack("[s]", "Puy-de-Dôme"));
	json_object_set_new(p, "opens_to_all_hours", json_integer(72));
	r = publish(p);
	sid = w_int(r, "series_id");
	json_array_foreach(json_object_get(r, "items"), i, v) {
		o[i] = w_int(v, "id");
		assert_int_equal(w_int(v, "opens_to_all_hours"), 72);
		assert_true(json_is_false(json_object_get(v, "open_to_all")));
	}
	json_decref(r);
	/* three openings, a week apart, each 72 hours before its show */
	assert_string_equal(opening_lead(sid, 72), "3");
	assert_string_equal(sqlf("SELECT count(DISTINCT opens_to_all_at) FROM "
	    "offers WHERE series_id = %lld", sid), "3");
	/* kept: the other territory's referent sees none of them yet */
	r = OK(W.ref2, "offer.list", "{s:i}", "limit", 500);
	json_array_foreach(json_object_get(r, "items"), i, v)
		assert_int_not_equal(json_integer_value(json_object_get(v,
		    "series_id")), sid);
	json_decref(r);
	json_decref(h_call_err(W.ref2, "offer.get", json_pack("{s:I}",
	    "offer_id", o[2]), 404, "not_found"));

	/* From the 2nd, an hour later: the openings follow, date by date;
	 * then a longer lead for the same ones. The 1st keeps its own. */
	u = OK(W.partner, "offer.update", "{s:I, s:s, s:s}", "offer_id", o[1],
	    "scope", "following", "start_time", "15:00");
	assert_int_equal(json_array_size(json_object_get(u, "items")), 2);
	json_decref(u);
	assert_string_equal(opening_lead(sid, 72), "3");
	u = OK(W.partner, "offer.update", "{s:I, s:s, s:i}", "offer_id", o[1],
	    "scope", "following", "opens_to_all_hours", 96);
	json_array_foreach(json_object_get(u, "items"), i, v)
		assert_int_equal(w_int(v, "opens_to_all_hours"), 96);
	json_decref(u);
	assert_string_equal(opening_lead(sid, 96), "2");
	assert_string_equal(sqlf("SELECT opens_to_all_hours FROM offers WHERE "
	    "id = %lld", o[0]), "72");
	/* a deadline further than the lead, for the following: refused, on
	 * the lead, and nothing changed */
	u = h_call_err(W.partner, "offer.update", json_pack("{s:I, s:s, s:i}",
	    "offer_id", o[1], "scope", "following", "deadline_hours", 120),
	    -32602, "invalid_params");
	assert_string_equal(w_str(u, "field"), "opens_to_all_hours");
	json_decref(u);
	assert_string_equal(opening_lead(sid, 96), "2");

	/* a lead shorter than the deadline's (48 hours by default) */
	p = series("friday", next_year(4, 1));
	json_object_set_new(p, "count", json_integer(3));
	json_object_set_new(p, "target_territories",
	    json_pack("[s]", "Puy-de-Dôme"));
	json_object_set_new(p, "opens_to_all_hours", json_integer(24));
	expect_field(p, "opens_to_all_hours");
	p = series("friday", next_year(4, 1));
	json_object_set_new(p, "count", json_integer(3));
	json_object_set_new(p, "target_territories",
	    json_pack("[s]", "Puy-de-Dôme"));
	json_object_set_new(p, "opens_to_all_hours", json_integer(72));
	json_object_set_new(p, "deadline_hours", json_integer(100));
	expect_field(p, "opens_to_all_hours");
	/* not with an instant too, not without targets */
	p = series("friday", next_year(4, 1));
	json_object_set_new(p, "count", json_integer(3));
	json_object_set_new(p, "target_territories",
	    json_pack("[s]", "Puy-de-Dôme"));
	json_object_set_new(p, "opens_to_all_hours", json_integer(72));
	json_object_set_new(p, "opens_to_all_at", json_string(w_time(W_DAY)));
	expect_field(p, "opens_to_all_hours");
	p = series("friday", next_year(4, 1));
	json_object_set_new(p, "count", json_integer(3));
	json_object_set_new(p, "opens_to_all_hours", json_integer(72));
	expect_field(p, "opens_to_all_hours");
	/* a lead equal to the deadline's: each date opens as bookings close */
	p = series("friday", next_year(4, 1));
	json_object_set_new(p, "count", json_integer(3));
	json_object_set_new(p, "target_territories",
	    json_pack("[s]", "Puy-de-Dôme"));
	json_object_set_new(p, "opens_to_all_hours", json_integer(48));
	r = publish(p);
	assert_string_equal(opening_lead(w_int(r, "series_id"), 48), "3");
	json_decref(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weekly_across_dst),
		cmocka_unit_test(test_monthly_nth),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_this_and_following),
		cmocka_unit_test(test_opening_lead),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
