/*
 * Group outings (docs/booking-rules.md, "Group outings"): a referent books
 * several people, their companions and staff seats at once. Each person
 * is a booking of their own under every rule of a booking; staff seats
 * take seats of the offer and are nobody's outing; the group's code
 * admits everyone or only its staff, as the partner chose on the offer;
 * cancelling one person frees their seats only; the last one gone takes
 * the staff seats along. Two daemons racing for the last seats never
 * overbook.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

static PGconn *db;

static long long
seats_taken(json_int_t offer)
{
	char sql[128];

	snprintf(sql, sizeof sql, "SELECT seats_taken FROM offers WHERE id = "
	    "%lld", (long long)offer);
	return atoll(h_db_exec(db, sql));
}

/* Bookings of a group, of one status or (NULL) any. */
static long long
members_in(json_int_t group_id, const char *status)
{
	char sql[256];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM bookings WHERE "
	    "group_id = %lld AND status = coalesce(%s%s%s, status)",
	    (long long)group_id, status ? "'" : "", status ? status : "NULL",
	    status ? "'" : "");
	return atoll(h_db_exec(db, sql));
}

/* Invariant 1 with staff seats: seats_taken is exactly the live bookings'
 * seats plus the staff seats of confirmed groups, for every offer. */
static void
assert_seats_exact(void)
{
	assert_string_equal(h_db_exec(db,
	    "SELECT count(*) FROM offers o WHERE o.seats_taken <> "
	    "(SELECT coalesce(sum(seats), 0) FROM bookings b WHERE b.offer_id "
	    "= o.id AND b.status IN ('confirmed', 'attended', 'no_show')) + "
	    "(SELECT coalesce(sum(staff_seats), 0) FROM booking_groups g "
	    "WHERE g.offer_id = o.id AND g.status = 'confirmed')"), "0");
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM "
	    "jsonb_each_text(core.report_check()) WHERE value::bigint <> 0"),
	    "0");
}

static json_t *
ids2(json_int_t a, json_int_t b)
{
	return json_pack("[I, I]", a, b);
}

static json_t *
group(struct st_client *ref, json_int_t offer, json_t *ids, json_t *seats,
    int staff)
{
	json_t *p = json_pack("{s:I, s:o, s:i}", "offer_id", offer,
	    "beneficiary_ids", ids, "staff_seats", staff);

	if (seats != NULL)
		json_object_set_new(p, "seats", seats);
	return h_call_ok(ref, "booking.create_group", p);
}

static json_t *
group_err(struct st_client *ref, json_int_t offer, json_t *ids,
    json_t *seats, int staff, int code, const char *reason,
    const char *field)
{
	json_t *p = json_pack("{s:I, s:o, s:i}", "offer_id", offer,
	    "beneficiary_ids", ids, "staff_seats", staff);
	json_t *data;

	if (seats != NULL)
		json_object_set_new(p, "seats", seats);
	data = h_call_err(ref, "booking.create_group", p, code, reason);
	if (field != NULL)
		assert_string_equal(w_str(data, "field"), field);
	return data;
}

static json_int_t
member(const json_t *g, size_t i)
{
	return w_int(json_array_get(json_object_get(g, "members"), i), "id");
}

static void
test_group_rules(void **state)
{
	struct h_daemon *d;
	struct world w;
	json_int_t offer, full, a, b, c, e, x, busy, gid;
	json_t *g, *r, *data;
	char code[32];

	(void)state;
	d = h_daemon_start("groups", "[policy]\nmax_upcoming_per_beneficiary = 2\n"
	    "max_per_month = 5\n");
	world_build(&w, d);
	db = h_db_connect(d->conninfo);
	/* report_check() is a helper, run as an operator would. */
	h_db_exec(db, "SET search_path = core, api, public");
	offer = w_offer(w.partner, 10, 3, NULL);
	full = w_offer(w.partner, 4, 3, NULL);
	a = w_beneficiary(w.ref, "Awa", "Diallo");
	b = w_beneficiary(w.ref, "Bruno", "Morel");
	c = w_beneficiary(w.ref, "Chloé", "Petit");
	e = w_beneficiary(w.ref, "Émile", "Roux");
	busy = w_beneficiary(w.ref, "Zoé", "Occupée");
	x = w_beneficiary(w.ref2, "Xavier", "Ailleurs");

	/* Three people (one with two companions... within max 3), two staff. */
	g = group(w.ref, offer, json_pack("[I, I, I]", a, b, c),
	    json_pack("[i, i, i]", 3, 1, 1), 2);
	gid = w_int(g, "id");
	assert_int_equal(w_int(g, "seats"), 7);
	assert_int_equal(w_int(g, "staff_seats"), 2);
	assert_string_equal(w_str(g, "status"), "confirmed");
	assert_string_equal(w_str(g, "code_admits"), "staff");
	assert_int_equal(json_array_size(json_object_get(g, "members")), 3);
	assert_int_equal(w_int(json_array_get(json_object_get(g, "members"), 0),
	    "group_id"), gid);
	snprintf(code, sizeof code, "%s", w_str(g, "code"));
	assert_int_equal(seats_taken(offer), 7);
	/* Each person is their own outing; staff are nobody's. */
	assert_int_equal(members_in(gid, NULL), 3);
	assert_seats_exact();

	/* Refusals: all or nothing, naming the person. */
	json_decref(group_err(w.ref, offer, ids2(e, x), NULL, 0, 404,
	    "not_found", "beneficiary_ids"));
	json_decref(group_err(w.ref, offer, ids2(e, e), NULL, 0, -32602,
	    "invalid_params", "beneficiary_ids"));
	json_decref(group_err(w.ref, offer, ids2(e, busy), json_pack("[i]", 1),
	    0, -32602, "invalid_params", "seats"));
	json_decref(group_err(w.ref, offer, ids2(e, busy), json_pack("[i, i]",
	    1, 4), 0, -32602, "invalid_params", "seats"));
	json_decref(group_err(w.ref, offer, ids2(e, busy), json_pack("[i, I]",
	    1, (json_int_t)1 << 40), 0, -32602, "invalid_params", "seats"));
	json_decref(group_err(w.ref, offer, ids2(e, busy), NULL, 21, -32602,
	    "invalid_params", "staff_seats"));
	data = group_err(w.ref, offer, ids2(e, a), NULL, 0, 409, "duplicate",
	    NULL);
	assert_int_equal(w_int(data, "beneficiary_id"), a);
	json_decref(data);
	/* busy has reached max_upcoming_per_beneficiary (2) */
	json_decref(w_book(w.ref, w_offer(w.partner, 5, 1, NULL), busy, 1));
	json_decref(w_book(w.ref, w_offer(w.partner, 5, 1, NULL), busy, 1));
	data = group_err(w.ref, offer, ids2(e, busy), NULL, 0, 409,
	    "limit_reached", NULL);
	assert_int_equal(w_int(data, "beneficiary_id"), busy);
	assert_string_equal(w_str(data, "cap"), "max_upcoming_per_beneficiary");
	json_decref(data);
	/* 3 seats left: one person and three staff do not fit */
	data = group_err(w.ref, offer, json_pack("[I]", e), NULL, 3, 409,
	    "sold_out", NULL);
	assert_int_equal(w_int(data, "seats_available"), 3);
	assert_int_equal(w_int(data, "seats_wanted"), 4);
	json_decref(data);
	assert_int_equal(atoll(h_db_exec(db, "SELECT count(*) FROM bookings b JOIN "
	    "beneficiaries p ON p.id = b.beneficiary_id WHERE p.first_name = "
	    "'Émile'")), 0);
	assert_int_equal(seats_taken(offer), 7);

	/* The referent of another structure does not see the group. */
	json_decref(h_call_err(w.ref2, "booking.get_group", json_pack("{s:I}",
	    "group_id", gid), 404, "not_found"));
	json_decref(h_call_err(w.partner, "booking.get_group", json_pack(
	    "{s:I}", "group_id", gid), 403, "forbidden"));

	/* The partner's guest list shows the group: structure, code, staff
	 * seats, how many people. */
	r = OK(w.partner, "offer.guest_list", "{s:I}", "offer_id", offer);
	assert_int_equal(json_array_size(json_object_get(r, "groups")), 1);
	assert_int_equal(w_int(json_array_get(json_object_get(r, "groups"), 0),
	    "staff_seats"), 2);
	assert_int_equal(w_int(json_array_get(json_object_get(r, "groups"), 0),
	    "members"), 3);
	json_decref(r);

	/* Cancelling one person frees their seats only. */
	r = OK(w.ref, "booking.cancel", "{s:I}", "booking_id", member(g, 0));
	json_decref(r);
	assert_int_equal(seats_taken(offer), 4);
	r = OK(w.ref, "booking.get_group", "{s:I}", "group_id", gid);
	assert_string_equal(w_str(r, "status"), "confirmed");
	assert_int_equal(w_int(r, "seats"), 4);
	json_decref(r);
	assert_seats_exact();

	/* At the door ('person' codes): the group's code admits its staff,
	 * once; each person shows their own. */
	r = OK(w.partner, "ticket.check_in", "{s:s, s:I}", "code", code,
	    "offer_id", offer);
	assert_int_equal(w_int(r, "seats"), 2);
	assert_int_equal(w_int(r, "members_checked_in"), 0);
	assert_int_equal(w_int(r, "group_id"), gid);
	json_decref(r);
	json_decref(h_call_err(w.partner, "ticket.check_in", json_pack(
	    "{s:s}", "code", code), 409, "already_used"));
	json_decref(h_call_err(w.partner, "ticket.check_in", json_pack(
	    "{s:s, s:I}", "code", code, "offer_id", full), 409, "wrong_offer"));
	json_decref(h_call_err(w.partner2, "ticket.check_in", json_pack(
	    "{s:s}", "code", code), 404, "not_found"));
	assert_int_equal(members_in(gid, "attended"), 0);
	/* checked in: the group can no longer be cancelled as a whole */
	json_decref(h_call_err(w.ref, "booking.cancel_group", json_pack(
	    "{s:I}", "group_id", gid), 409, "already_used"));
	json_decref(g);

	/* 'group' codes: one scan admits everyone. */
	json_decref(OK(w.partner, "offer.update", "{s:I, s:s}", "offer_id",
	    full, "group_codes", "group"));
	g = group(w.ref, full, ids2(e, c), json_pack("[i, i]", 2, 1), 1);
	assert_string_equal(w_str(g, "code_admits"), "everyone");
	r = OK(w.partner, "ticket.check_in", "{s:s}", "code", w_str(g, "code"));
	assert_int_equal(w_int(r, "seats"), 4);
	assert_int_equal(w_int(r, "members_checked_in"), 2);
	assert_string_equal(w_str(r, "status"), "attended");
	json_decref(r);
	assert_int_equal(members_in(w_int(g, "id"), "attended"), 2);
	json_decref(g);
	assert_seats_exact();

	/* booking.cancel_group: every member and the staff; again: the same
	 * answer. */
	offer = w_offer(w.partner, 10, 3, NULL);
	g = group(w.ref, offer, ids2(a, b), NULL, 2);
	assert_int_equal(seats_taken(offer), 4);
	r = OK(w.ref, "booking.cancel_group", "{s:I}", "group_id",
	    w_int(g, "id"));
	assert_string_equal(w_str(r, "status"), "cancelled");
	assert_int_equal(w_int(r, "seats"), 0);
	json_decref(r);
	r = OK(w.ref, "booking.cancel_group", "{s:I}", "group_id",
	    w_int(g, "id"));
	assert_string_equal(w_str(r, "status"), "cancelled");
	json_decref(r);
	assert_int_equal(seats_taken(offer), 0);
	json_decref(g);

	/* The last person gone takes the staff seats along. */
	g = group(w.ref, offer, ids2(a, b), NULL, 2);
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    member(g, 0)));
	assert_int_equal(seats_taken(offer), 3);
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    member(g, 1)));
	assert_int_equal(seats_taken(offer), 0);
	r = OK(w.ref, "booking.get_group", "{s:I}", "group_id", w_int(g, "id"));
	assert_string_equal(w_str(r, "status"), "cancelled");
	json_decref(r);
	json_decref(g);

	/* The offer cancelled: the group goes with it. */
	g = group(w.ref, offer, ids2(a, b), NULL, 1);
	json_decref(OK(w.partner, "offer.cancel", "{s:I, s:s}", "offer_id",
	    offer, "reason", "Travaux"));
	r = OK(w.ref, "booking.get_group", "{s:I}", "group_id", w_int(g, "id"));
	assert_string_equal(w_str(r, "status"), "cancelled_by_partner");
	json_decref(r);
	json_decref(g);
	assert_seats_exact();

	/* A retry with its key answers the same group and takes nothing. */
	offer = w_offer(w.partner, 10, 3, NULL);
	r = OK(w.ref, "booking.create_group", "{s:I, s:[I], s:i, s:s}",
	    "offer_id", offer, "beneficiary_ids", b, "staff_seats", 1,
	    "idempotency_key", "sortie-du-12");
	g = OK(w.ref, "booking.create_group", "{s:I, s:[I], s:i, s:s}",
	    "offer_id", offer, "beneficiary_ids", b, "staff_seats", 1,
	    "idempotency_key", "sortie-du-12");
	assert_int_equal(w_int(r, "id"), w_int(g, "id"));
	assert_int_equal(seats_taken(offer), 2);
	json_decref(r);
	json_decref(g);

	/* Staff seats in the report, apart from the people's seats. */
	r = OK(w.admin, "report.activity", "{s:s, s:s, s:s}", "from",
	    w_time(-W_DAY), "to", w_time(300 * W_DAY), "group_by", "structure");
	data = json_object_get(r, "total");
	/* live groups: the first (2 staff), the 'group' one (1), the last (1) */
	assert_int_equal(w_int(data, "staff_seats"), 4);
	assert_int_equal(w_int(json_array_get(json_object_get(r, "items"), 0),
	    "staff_seats"), 4);
	json_decref(r);
	r = OK(w.ref2, "report.activity", "{s:s, s:s, s:s}", "from",
	    w_time(-W_DAY), "to", w_time(300 * W_DAY), "group_by", "month");
	assert_int_equal(w_int(json_object_get(r, "total"), "staff_seats"), 0);
	json_decref(r);

	assert_seats_exact();
	PQfinish(db);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Two daemons, two groups wanting 4 of the 6 seats left at the same
 * moment: one gets them, the other is told sold_out, nothing overbooks. */
static void
test_two_daemons_race(void **state)
{
	struct h_daemon *d1, *d2;
	struct world w;
	struct st_client *c2;
	struct st_error err;
	json_int_t offer, p[4];
	json_t *r, *p1, *p2;
	int64_t id1, id2;
	int rc1, rc2, round;

	(void)state;
	d1 = h_daemon_start("groups1", NULL);
	d2 = h_daemon_start_same_db(d1, "groups2", NULL);
	world_build(&w, d1);
	db = h_db_connect(d1->conninfo);
	h_db_exec(db, "SET search_path = core, api, public");
	c2 = h_login(d2, W_REF_EMAIL, W_PASSWORD);
	for (round = 0; round < 5; round++) {
		offer = w_offer(w.partner, 6, 2, NULL);
		p[0] = w_beneficiary(w.ref, "Un", "Groupe");
		p[1] = w_beneficiary(w.ref, "Deux", "Groupe");
		p[2] = w_beneficiary(w.ref, "Trois", "Groupe");
		p[3] = w_beneficiary(w.ref, "Quatre", "Groupe");
		p1 = json_pack("{s:I, s:[I, I], s:i}", "offer_id", offer,
		    "beneficiary_ids", p[0], p[1], "staff_seats", 2);
		p2 = json_pack("{s:I, s:[I, I], s:i}", "offer_id", offer,
		    "beneficiary_ids", p[2], p[3], "staff_seats", 2);
		id1 = st_send(w.ref, "booking.create_group", p1, &err);
		id2 = st_send(c2, "booking.create_group", p2, &err);
		json_decref(p1);
		json_decref(p2);
		rc1 = st_wait(w.ref, id1, &r, &err);
		if (rc1 == ST_OK)
			json_decref(r);
		else {
			assert_string_equal(err.reason, "sold_out");
			st_error_clear(&err);
		}
		rc2 = st_wait(c2, id2, &r, &err);
		if (rc2 == ST_OK)
			json_decref(r);
		else {
			assert_string_equal(err.reason, "sold_out");
			st_error_clear(&err);
		}
		assert_true((rc1 == ST_OK) != (rc2 == ST_OK));
		assert_int_equal(seats_taken(offer), 4);
	}
	assert_seats_exact();
	st_close(c2);
	PQfinish(db);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_rules),
		cmocka_unit_test(test_two_daemons_race),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
