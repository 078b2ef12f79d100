/*
 * Group commit (docs/booking-rules.md, "Group commit"): booking.create
 * requests that arrive together are committed together, and each still
 * gets the answer it would have got alone, in the order sent: the seats,
 * caps, duplicates and idempotency keys of the requests before it in the
 * same call count. One call under way at a time (booking_batch_inflight
 * = 1) and requests pipelined on one connection make the grouping
 * certain.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct want {
	const char *name;
	json_t *params;
	const char *reason;     /* NULL: booked */
	const char *field;      /* data.field of the error, if any */
	int64_t id;
	json_int_t booking;
};

static void
expect(struct want *w, json_t *r, int rc, struct st_error *err)
{
	if (w->reason == NULL) {
		if (rc != ST_OK)
			h_fail("%s: refused: %s", w->name, st_strerror(err));
		w->booking = w_int(r, "id");
		assert_string_equal(w_str(r, "status"), "confirmed");
		json_decref(r);
		return;
	}
	if (rc != ST_ERR_SERVER)
		h_fail("%s: wanted %s, got %s", w->name, w->reason,
		    rc == ST_OK ? "a booking" : st_strerror(err));
	if (strcmp(err->reason, w->reason) != 0)
		h_fail("%s: wanted %s, got %s (%s)", w->name, w->reason,
		    err->reason, err->message);
	if (w->field != NULL) {
		json_t *f = json_object_get(err->data, "field");

		if (!json_is_string(f) || strcmp(json_string_value(f),
		    w->field) != 0)
			h_fail("%s: wanted field %s", w->name, w->field);
	}
	st_error_clear(err);
}

static json_t *
book(json_int_t offer, json_int_t ben, int seats, const char *key)
{
	json_t *p = json_pack("{s:I, s:I, s:i}", "offer_id", offer,
	    "beneficiary_id", ben, "seats", seats);

	if (key != NULL)
		json_object_set_new(p, "idempotency_key", json_string(key));
	return p;
}

static void
test_rules_hold_within_a_call(void **state)
{
	struct h_daemon *d;
	struct world w;
	struct st_error err;
	json_int_t a, b, c, m1, m2, m3, ben[8], other;
	json_t *r, *health;
	PGconn *db;
	char sql[512];
	size_t i, n;
	int booked = 0;
	const char *month = w_time(45 * W_DAY);
	struct want wants[16];

	d = h_daemon_start("batch", "[database]\nbooking_batch_inflight = 1\n"
	    "[policy]\nmax_upcoming_per_beneficiary = 5\nmax_per_month = 2\n");
	world_build(&w, d);
	db = h_db_connect(d->conninfo);
	/* core.report_check() is a helper, run as an operator would
	 * (docs/operations.md, "The sql/ tree"). */
	h_db_exec(db, "SET search_path = core, api, public");
	a = w_offer(w.partner, 3, 2, NULL);
	b = w_offer(w.partner, 10, 2, NULL);
	c = w_offer(w.partner, 10, 2, NULL);
	m1 = w_offer(w.partner, 10, 2, month);
	m2 = w_offer(w.partner, 10, 2, month);
	m3 = w_offer(w.partner, 10, 2, month);
	for (i = 0; i < sizeof ben / sizeof ben[0]; i++) {
		char first[16];

		snprintf(first, sizeof first, "B%zu", i);
		ben[i] = w_beneficiary(w.ref, first, "Batch");
	}
	other = w_beneficiary(w.ref2, "Other", "Structure");

	n = 0;
	wants[n++] = (struct want){"first two seats", book(a, ben[0], 2, NULL), NULL, NULL, 0, 0};
	wants[n++] = (struct want){"two of one left", book(a, ben[1], 2, NULL), "sold_out", NULL, 0, 0};
	wants[n++] = (struct want){"the last seat", book(a, ben[2], 1, NULL), NULL, NULL, 0, 0};
	wants[n++] = (struct want){"same person again", book(a, ben[0], 1, NULL), "duplicate", NULL, 0, 0};
	wants[n++] = (struct want){"keyed", book(b, ben[3], 1, "key-1"), NULL, NULL, 0, 0};
	wants[n++] = (struct want){"keyed retry", book(b, ben[3], 1, "key-1"), NULL, NULL, 0, 0};
	wants[n++] = (struct want){"key reused", book(c, ben[3], 1, "key-1"), "invalid_params", "idempotency_key", 0, 0};
	wants[n++] = (struct want){"no such offer", book(999999, ben[4], 1, NULL), "not_found", "offer_id", 0, 0};
	wants[n++] = (struct want){"not my person", book(b, other, 1, NULL), "not_found", "beneficiary_id", 0, 0};
	wants[n++] = (struct want){"too many seats", book(b, ben[5], 3, NULL), "invalid_params", "seats", 0, 0};
	wants[n++] = (struct want){"month 1", book(m1, ben[6], 1, NULL), NULL, NULL, 0, 0};
	wants[n++] = (struct want){"month 2", book(m2, ben[6], 1, NULL), NULL, NULL, 0, 0};
	wants[n++] = (struct want){"month 3", book(m3, ben[6], 1, NULL), "limit_reached", NULL, 0, 0};
	wants[n++] = (struct want){"another", book(c, ben[7], 2, NULL), NULL, NULL, 0, 0};

	for (i = 0; i < n; i++) {
		wants[i].id = st_send(w.ref, "booking.create", wants[i].params,
		    &err);
		json_decref(wants[i].params);
		if (wants[i].id < 0)
			h_fail("send %s: %s", wants[i].name, st_strerror(&err));
	}
	for (i = 0; i < n; i++) {
		int rc = st_wait(w.ref, wants[i].id, &r, &err);

		expect(&wants[i], r, rc, &err);
		if (wants[i].reason == NULL)
			booked++;
	}
	/* The retry answered the first one's booking. */
	assert_int_equal(wants[4].booking, wants[5].booking);
	booked--;

	/* The requests went in fewer calls than there were requests. */
	health = h_call_ok(w.admin, "system.health", NULL);
	r = json_object_get(health, "booking_batches");
	assert_non_null(r);
	assert_int_equal(w_int(r, "requests"), (json_int_t)n);
	assert_true(w_int(r, "calls") < (json_int_t)n);
	json_decref(health);

	/* The database agrees with the answers. */
	snprintf(sql, sizeof sql, "SELECT seats_taken FROM offers WHERE id = "
	    "%lld", (long long)a);
	assert_string_equal(h_db_exec(db, sql), "3");
	snprintf(sql, sizeof sql, "SELECT count(*) FROM bookings WHERE "
	    "created_at > now() - interval '1 hour'");
	assert_int_equal(atoi(h_db_exec(db, sql)), booked);
	assert_int_equal(atoi(h_db_exec(db, "SELECT count(*) FROM audit_log "
	    "WHERE method = 'booking.create'")), booked);
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM "
	    "idempotency_keys WHERE key = 'key-1'"), "1");
	assert_string_equal(h_db_exec(db,
	    "SELECT count(*) FROM offers o WHERE o.seats_taken <> "
	    "(SELECT coalesce(sum(seats), 0) FROM bookings b WHERE b.offer_id "
	    "= o.id AND b.status IN ('confirmed', 'attended', 'no_show'))"),
	    "0");
	/* The report counters were kept by the one insert. */
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM "
	    "jsonb_each_text(core.report_check()) WHERE value::bigint <> 0"), "0");

	PQfinish(db);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Requests of two referents in one call: each is checked against its own
 * session and scope. */
static void
test_two_sessions_in_a_call(void **state)
{
	struct h_daemon *d;
	struct world w;
	struct st_error err;
	json_int_t o, b1, b2;
	int64_t id1, id2;
	json_t *r;

	d = h_daemon_start("batch2", "[database]\nbooking_batch_inflight = 1\n");
	world_build(&w, d);
	o = w_offer(w.partner, 10, 2, NULL);
	b1 = w_beneficiary(w.ref, "Un", "Seul");
	b2 = w_beneficiary(w.ref2, "Deux", "Seul");
	id1 = st_send(w.ref, "booking.create", r = book(o, b1, 1, NULL), &err);
	json_decref(r);
	id2 = st_send(w.ref2, "booking.create", r = book(o, b1, 1, NULL), &err);
	json_decref(r);
	assert_int_equal(st_wait(w.ref, id1, &r, &err), ST_OK);
	json_decref(r);
	assert_int_equal(st_wait(w.ref2, id2, &r, &err), ST_ERR_SERVER);
	assert_string_equal(err.reason, "not_found");
	st_error_clear(&err);
	r = w_book(w.ref2, o, b2, 1);
	json_decref(r);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_hold_within_a_call),
		cmocka_unit_test(test_two_sessions_in_a_call),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
