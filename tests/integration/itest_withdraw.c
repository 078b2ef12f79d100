/*
 * A late withdrawal is not a no-show (docs/booking-rules.md,
 * "booking.withdraw"; docs/draw.md, rule 1): booking.withdraw after the
 * deadline gives the seats to the waiting list at once, the booking counts
 * with its own weight in the draw's score, a late arrival recorded at the
 * close of attendance is an outing, and the referent reads the record and
 * score the draw would use (beneficiary.record).
 */
#include "world.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static struct world W;
static PGconn *db;

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))
#define ERR(c, m, code, reason, ...) \
	h_call_err((c), (m), json_pack(__VA_ARGS__), (code), (reason))

static int
setup(void **state)
{
	struct h_daemon *d = h_daemon_start("withdraw",
	    "[policy]\nmax_upcoming_per_beneficiary = 10\nmax_per_month = 10\n"
	    "withdrawn_late_weight = 0.25\n");

	world_build(&W, d);
	db = h_db_connect(d->conninfo);
	return 0;
}

static int
teardown(void **state)
{
	world_close(&W);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(W.d), 0);
	return 0;
}

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
sql(const char *fmt, ...)
{
	char q[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q, sizeof q, fmt, ap);
	va_end(ap);
	h_db_exec(db, q);
}

/* The deadline passed, the show still to come. */
static void
past_deadline(json_int_t offer)
{
	sql("UPDATE offers SET booking_deadline = now() - interval '1 hour' "
	    "WHERE id = %lld", (long long)offer);
}

/* The show over, `days` ago. */
static void
show_over(json_int_t offer, int days)
{
	char q[300];

	snprintf(q, sizeof q, "UPDATE offers SET starts_at = now() - "
	    "interval '%d days', booking_deadline = now() - interval '%d days' "
	    "WHERE id = %lld", days, days + 2, (long long)offer);
	h_db_exec(db, q);
}

/* The next event with this topic within timeout_ms, or NULL. */
static json_t *
next_event(struct st_client *c, const char *topic, int timeout_ms)
{
	struct st_error err;
	json_t *ev;

	while (st_next_event(c, &ev, timeout_ms, &err) == ST_OK) {
		if (strcmp(w_str(ev, "topic"), topic) == 0)
			return ev;
		json_decref(ev);
	}
	return NULL;
}

static void
subscribe(struct st_client *c, const char *topic)
{
	json_decref(topic == NULL ?
	    OK(c, "events.subscribe", "{s:[]}", "topics") :
	    OK(c, "events.subscribe", "{s:[s]}", "topics", topic));
}

static const char *
field_of(json_t *data)
{
	json_t *f = json_object_get(data, "field");

	return json_is_string(f) ? json_string_value(f) : "";
}

static void
test_withdraw(void **state)
{
	json_int_t o = w_offer(W.partner, 1, 1, NULL);
	json_int_t p1 = w_beneficiary(W.ref, "Malik", "Retrait");
	json_int_t p2 = w_beneficiary(W.ref, "Nadia", "Attente");
	json_t *bk = w_book(W.ref, o, p1, 1), *r, *e, *data;
	json_int_t b1 = w_int(bk, "id"), entry;
	char code[32];

	snprintf(code, sizeof code, "%s", w_str(bk, "code"));
	json_decref(bk);
	e = OK(W.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id", o,
	    "beneficiary_id", p2, "seats", 1);
	entry = w_int(e, "id");
	json_decref(e);

	/* The params: a reason from the list, and nothing else. */
	data = ERR(W.ref, "booking.withdraw", -32602, "invalid_params",
	    "{s:I}", "booking_id", b1);
	assert_string_equal(field_of(data), "reason");
	json_decref(data);
	data = ERR(W.ref, "booking.withdraw", -32602, "invalid_params",
	    "{s:I, s:s}", "booking_id", b1, "reason", "weather");
	assert_string_equal(field_of(data), "reason");
	json_decref(data);
	/* Another structure's booking does not exist for this referent. */
	json_decref(ERR(W.ref2, "booking.withdraw", 404, "not_found",
	    "{s:I, s:s}", "booking_id", b1, "reason", "illness"));

	past_deadline(o);
	/* A waiting entry outlives the deadline: the sweep (each second)
	 * ends it only when the show starts. */
	h_sleep_ms(1500);
	assert_string_equal(h_db_exec(db, "SELECT string_agg(status, ',') "
	    "FROM waitlist_entries WHERE beneficiary_id IN (SELECT id FROM "
	    "beneficiaries WHERE last_name = 'Attente')"), "waiting");
	data = ERR(W.ref, "booking.cancel", 409, "deadline_passed", "{s:I}",
	    "booking_id", b1);
	json_decref(data);

	subscribe(W.ref, "booking.cancelled");
	subscribe(W.partner, "booking.cancelled");
	r = OK(W.ref, "booking.withdraw", "{s:I, s:s}", "booking_id", b1,
	    "reason", "illness");
	assert_string_equal(w_str(r, "status"), "withdrawn_late");
	assert_string_equal(w_str(r, "withdraw_reason"), "illness");
	assert_true(json_is_string(json_object_get(r, "cancelled_at")));
	json_decref(r);
	/* Announced; the venue learns the seat is free, not why. */
	e = next_event(W.ref, "booking.cancelled", 10000);
	assert_non_null(e);
	assert_string_equal(w_str(json_object_get(e, "data"),
	    "withdraw_reason"), "illness");
	json_decref(e);
	e = next_event(W.partner, "booking.cancelled", 10000);
	assert_non_null(e);
	assert_string_equal(w_str(json_object_get(e, "data"), "status"),
	    "withdrawn_late");
	assert_null(json_object_get(json_object_get(e, "data"),
	    "withdraw_reason"));
	json_decref(e);
	subscribe(W.ref, NULL);
	subscribe(W.partner, NULL);
	/* Again: the same answer, nothing more happens. */
	r = OK(W.ref, "booking.withdraw", "{s:I, s:s}", "booking_id", b1,
	    "reason", "other");
	assert_string_equal(w_str(r, "status"), "withdrawn_late");
	assert_string_equal(w_str(r, "withdraw_reason"), "illness");
	json_decref(r);
	r = OK(W.ref, "booking.cancel", "{s:I}", "booking_id", b1);
	assert_string_equal(w_str(r, "status"), "withdrawn_late");
	json_decref(r);

	/* The seat went to the waiting list at once, held until the show at
	 * most, and is taken after the deadline. */
	e = OK(W.ref, "waitlist.list", "{s:I}", "offer_id", o);
	r = json_array_get(json_object_get(e, "items"), 0);
	assert_int_equal(w_int(r, "id"), entry);
	assert_string_equal(w_str(r, "status"), "offered");
	json_decref(e);
	{
		char q[300];

		snprintf(q, sizeof q, "SELECT e.expires_at <= o.starts_at "
		    "FROM waitlist_entries e JOIN offers o ON o.id = e.offer_id "
		    "WHERE e.id = %lld", (long long)entry);
		assert_string_equal(h_db_exec(db, q), "t");
	}
	r = OK(W.ref, "waitlist.accept", "{s:I}", "entry_id", entry);
	assert_string_equal(w_str(r, "status"), "confirmed");
	assert_string_equal(w_str(r, "source"), "waitlist");
	json_decref(r);

	/* The withdrawn ticket no longer opens the door, nor shows. */
	data = ERR(W.partner, "ticket.check_in", 404, "not_found", "{s:s}",
	    "code", code);
	assert_string_equal(w_str(data, "status"), "withdrawn_late");
	json_decref(data);
	r = OK(W.partner, "offer.guest_list", "{s:I}", "offer_id", o);
	assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
	json_decref(r);
	r = OK(W.ref, "booking.list", "{s:I, s:s}", "offer_id", o, "status",
	    "withdrawn_late");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
	json_decref(r);

	/* Before the deadline it is a plain cancellation, with no reason
	 * kept and nothing counted. */
	{
		json_int_t o2 = w_offer(W.partner, 3, 1, NULL);

		bk = w_book(W.ref, o2, p1, 1);
		r = OK(W.ref, "booking.withdraw", "{s:I, s:s}", "booking_id",
		    w_int(bk, "id"), "reason", "family");
		assert_string_equal(w_str(r, "status"), "cancelled");
		assert_true(json_is_null(json_object_get(r, "withdraw_reason")));
		json_decref(r);
		json_decref(bk);

		/* Once the show has started, it is the venue's to record. */
		bk = w_book(W.ref, o2, p2, 1);
		show_over(o2, 0);
		data = ERR(W.ref, "booking.withdraw", 409, "deadline_passed",
		    "{s:I, s:s}", "booking_id", w_int(bk, "id"), "reason",
		    "transport");
		json_decref(data);
		json_decref(bk);
	}

	/* Seats counted right (docs/booking-rules.md invariant 1). */
	assert_string_equal(h_db_exec(db,
	    "SELECT count(*) FROM offers o WHERE o.seats_taken <> "
	    "(SELECT coalesce(sum(seats), 0) FROM bookings b WHERE b.offer_id "
	    "= o.id AND b.status IN ('confirmed', 'attended', 'no_show')) OR "
	    "o.seats_held <> (SELECT coalesce(sum(seats), 0) FROM "
	    "waitlist_entries e WHERE e.offer_id = o.id AND e.status = "
	    "'offered')"), "0");
}

static void
test_arrived_late(void **state)
{
	json_int_t o = w_offer(W.partner, 6, 2, NULL);
	json_int_t other = w_offer(W.partner, 6, 2, NULL);
	json_int_t b[3], stray;
	json_t *r, *data, *bk;
	int i;
	static const char *const names[] = {"Un", "Deux", "Trois"};

	for (i = 0; i < 3; i++) {
		bk = w_book(W.ref, o, w_beneficiary(W.ref, "Late", names[i]), 1);
		b[i] = w_int(bk, "id");
		json_decref(bk);
	}
	bk = w_book(W.ref, other, w_beneficiary(W.ref, "Late", "Ailleurs"), 1);
	stray = w_int(bk, "id");
	json_decref(bk);
	show_over(o, 0);

	/* Only live bookings of this offer. */
	data = ERR(W.partner, "offer.close_attendance", -32602,
	    "invalid_params", "{s:I, s:[I]}", "offer_id", o, "arrived_late",
	    stray);
	assert_string_equal(field_of(data), "arrived_late");
	json_decref(data);
	data = ERR(W.partner, "offer.close_attendance", -32602,
	    "invalid_params", "{s:I, s:[s]}", "offer_id", o, "arrived_late",
	    "x");
	assert_string_equal(field_of(data), "arrived_late");
	json_decref(data);

	r = OK(W.partner, "offer.close_attendance", "{s:I, s:[I]}",
	    "offer_id", o, "arrived_late", b[1]);
	assert_int_equal(w_int(r, "marked_arrived_late"), 1);
	assert_int_equal(w_int(r, "marked_no_show"), 2);
	assert_int_equal(w_int(r, "attended"), 1);
	assert_int_equal(w_int(r, "no_show"), 2);
	json_decref(r);
	r = OK(W.ref, "booking.get", "{s:I}", "booking_id", b[1]);
	assert_string_equal(w_str(r, "status"), "attended");
	assert_true(json_is_true(json_object_get(r, "arrived_late")));
	assert_true(json_is_string(json_object_get(r, "checked_in_at")));
	json_decref(r);

	/* Closed again the next morning: a no-show the venue remembers
	 * seeing becomes attended. */
	r = OK(W.partner, "offer.close_attendance", "{s:I, s:[I]}",
	    "offer_id", o, "arrived_late", b[2]);
	assert_int_equal(w_int(r, "marked_arrived_late"), 1);
	assert_int_equal(w_int(r, "attended"), 2);
	assert_int_equal(w_int(r, "no_show"), 1);
	assert_int_equal(w_int(r, "arrived_late"), 2);
	json_decref(r);
}

static void
test_record_and_draw(void **state)
{
	json_int_t x = w_beneficiary(W.ref, "Xavier", "Score");
	json_int_t y = w_beneficiary(W.ref, "Yasmine", "Neuve");
	json_int_t oa = w_offer(W.partner, 4, 2, NULL);
	json_int_t on = w_offer(W.partner, 4, 2, NULL);
	json_int_t ow = w_offer(W.partner, 4, 2, NULL);
	json_int_t oc = w_offer(W.partner, 1, 1, w_time(5 * W_DAY));
	json_int_t pm, bw;
	json_t *bk, *r, *items, *it, *res;
	char q[400];
	size_t i;

	/* An outing, a no-show and a late withdrawal, last month. */
	bk = w_book(W.ref, oa, x, 1);
	json_decref(OK(W.partner, "ticket.check_in", "{s:s}", "code",
	    w_str(bk, "code")));
	json_decref(bk);
	bk = w_book(W.ref, on, x, 1);
	json_decref(bk);
	bk = w_book(W.ref, ow, x, 1);
	bw = w_int(bk, "id");
	json_decref(bk);
	past_deadline(ow);
	json_decref(OK(W.ref, "booking.withdraw", "{s:I, s:s}", "booking_id",
	    bw, "reason", "transport"));
	show_over(oa, 30);
	show_over(on, 29);
	show_over(ow, 28);
	json_decref(OK(W.partner, "offer.close_attendance", "{s:I}",
	    "offer_id", on));

	r = OK(W.ref, "beneficiary.record", "{s:I}", "beneficiary_id", x);
	assert_int_equal(w_int(r, "attended"), 1);
	assert_int_equal(w_int(r, "no_shows"), 1);
	assert_int_equal(w_int(r, "withdrawn_late"), 1);
	/* 1 + 2 x 1 + 0.25 x 1, the weights of the configuration */
	assert_string_equal(h_json_str(json_object_get(r, "score")), "3.25");
	assert_string_equal(h_json_str(json_object_get(r,
	    "withdrawn_late_weight")), "0.25");
	assert_int_equal(w_int(r, "history_window_days"), 365);
	items = json_object_get(r, "items");
	assert_int_equal(json_array_size(items), 3);
	it = json_array_get(items, 2);
	assert_int_equal(w_int(it, "booking_id"), bw);
	assert_string_equal(w_str(it, "status"), "withdrawn_late");
	assert_string_equal(w_str(it, "withdraw_reason"), "transport");
	json_decref(r);
	/* A window that ends before them counts nothing. */
	r = OK(W.ref, "beneficiary.record", "{s:I, s:s}", "beneficiary_id", x,
	    "at", w_time(-40 * W_DAY));
	assert_string_equal(h_json_str(json_object_get(r, "score")), "0");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 0);
	json_decref(r);
	json_decref(ERR(W.ref2, "beneficiary.record", 404, "not_found",
	    "{s:I}", "beneficiary_id", x));

	/* beneficiary.get counts them over 12 months too. */
	r = OK(W.ref, "beneficiary.get", "{s:I}", "beneficiary_id", x);
	assert_int_equal(w_int(r, "withdrawn_late_12m"), 1);
	json_decref(r);

	/* The draw gives the same score; one seat: Yasmine (0) first. */
	r = OK(W.ref, "permanence.schedule", "{s:s, s:s}", "starts_at",
	    w_time(2 * W_DAY), "ends_at", w_time(2 * W_DAY + 3600));
	pm = w_int(r, "id");
	json_decref(r);
	json_decref(OK(W.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", x, "choices", oc, "seats", 1));
	json_decref(OK(W.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", y, "choices", oc, "seats", 1));
	r = OK(W.ref, "permanence.draw", "{s:I}", "permanence_id", pm);
	assert_string_equal(h_json_str(json_object_get(r,
	    "withdrawn_late_weight")), "0.25");
	res = json_object_get(r, "results");
	assert_int_equal(json_array_size(res), 2);
	for (i = 0; i < 2; i++) {
		it = json_array_get(res, i);
		if (w_int(it, "beneficiary_id") == x) {
			assert_int_equal(w_int(it, "position"), 2);
			assert_int_equal(w_int(it, "withdrawn_late"), 1);
			assert_string_equal(h_json_str(json_object_get(it,
			    "score")), "3.25");
			assert_string_equal(w_str(it, "reason"), "sold_out");
		} else {
			assert_int_equal(w_int(it, "position"), 1);
		}
	}
	json_decref(r);
	/* The record at the permanence's start, as core.person_history()
	 * gives it, is what the draw stored on the wish. */
	snprintf(q, sizeof q, "SELECT (h.score = w.score AND h.withdrawn_late "
	    "= w.withdrawn_late AND h.no_shows = w.no_shows AND h.attended = "
	    "w.attended)::text FROM wishes w JOIN permanences p ON p.id = "
	    "w.permanence_id, core.person_history(w.beneficiary_id, p.starts_at "
	    "- interval '365 days', p.starts_at, '{\"withdrawn_late_weight\": "
	    "0.25}') h WHERE w.permanence_id = %lld AND w.beneficiary_id = %lld",
	    (long long)pm, (long long)x);
	assert_string_equal(h_db_exec(db, q), "true");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_withdraw),
		cmocka_unit_test(test_arrived_late),
		cmocka_unit_test(test_record_and_draw),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
