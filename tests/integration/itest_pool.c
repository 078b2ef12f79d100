/*
 * The ticket pool, method family by family, against a real daemon and
 * database: every success path and every error reason docs/protocol.md gives.
 */
#include "world.h"

#include <string.h>
#include <unistd.h>

static struct world W;
static PGconn *db;

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))
#define ERR(c, m, code, reason, ...) \
	json_decref(h_call_err((c), (m), json_pack(__VA_ARGS__), (code), (reason)))

static const char *
field_of(json_t *data)
{
	json_t *f = json_object_get(data, "field");

	return json_is_string(f) ? json_string_value(f) : "";
}

static void
expect_field(struct st_client *c, const char *method, json_t *params,
    int code, const char *reason, const char *field)
{
	json_t *data = h_call_err(c, method, params, code, reason);

	assert_string_equal(field_of(data), field);
	json_decref(data);
}

static int
setup(void **state)
{
	struct h_daemon *d = h_daemon_start("pool",
	    "[policy]\nmax_upcoming_per_beneficiary = 3\nmax_per_month = 2\n");

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

static void
test_accounts(void **state)
{
	json_t *r, *items;
	struct st_client *c;
	json_int_t uid;

	expect_field(W.admin, "partner.create", json_pack("{s:s, s:s, s:s}",
	    "name", "X", "kind", "circus", "city", "Y"), -32602,
	    "invalid_params", "kind");
	expect_field(W.admin, "structure.create", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s}", "name", "X", "kind", "mds",
	    "territory", "T", "city", "C", "timezone", "Mars/Olympus"), -32602,
	    "invalid_params", "timezone");
	expect_field(W.admin, "user.create", json_pack(
	    "{s:s, s:s, s:s, s:s}", "email", "new@example.org",
	    "display_name", "N", "role", "partner", "password", W_PASSWORD),
	    -32602, "invalid_params", "partner_id");
	expect_field(W.admin, "user.create", json_pack(
	    "{s:s, s:s, s:s, s:s, s:I}", "email", "new@example.org",
	    "display_name", "N", "role", "referent", "password", "short",
	    "structure_id", W.structure_id), -32602, "invalid_params",
	    "password");
	expect_field(W.admin, "user.create", json_pack(
	    "{s:s, s:s, s:s, s:s, s:I}", "email", W_REF_EMAIL,
	    "display_name", "N", "role", "referent", "password", W_PASSWORD,
	    "structure_id", W.structure_id), 409, "duplicate", "email");
	ERR(W.admin, "user.create", 404, "not_found",
	    "{s:s, s:s, s:s, s:s, s:I}", "email", "n2@example.org",
	    "display_name", "N", "role", "referent", "password", W_PASSWORD,
	    "structure_id", (json_int_t)999999);

	/* Lists: every role reads partners; pages follow the cursor. */
	r = OK(W.ref, "partner.list", "{s:i}", "limit", 1);
	assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
	assert_true(json_is_string(json_object_get(r, "next_cursor")));
	{
		json_t *r2 = OK(W.ref, "partner.list", "{s:i, s:s}", "limit", 1,
		    "cursor", w_str(r, "next_cursor"));

		items = json_object_get(r2, "items");
		assert_int_equal(w_int(json_array_get(items, 0), "id"),
		    W.partner2_id);
		json_decref(r2);
	}
	json_decref(r);
	r = OK(W.admin, "user.list", "{s:s}", "role", "referent");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 2);
	json_decref(r);
	ERR(W.ref, "user.list", 403, "forbidden", "{}");

	/* Disabling a user ends its live sessions at the next request. */
	uid = w_int(r = OK(W.admin, "user.create", "{s:s, s:s, s:s, s:s, s:I}",
	    "email", "Temp@Example.org", "display_name", "Temp", "role",
	    "referent", "password", W_PASSWORD, "structure_id",
	    W.structure_id), "id");
	assert_string_equal(w_str(r, "email"), "temp@example.org");
	json_decref(r);
	c = h_login(W.d, "temp@example.org", W_PASSWORD);
	json_decref(OK(c, "auth.whoami", "{}"));
	json_decref(OK(W.admin, "user.disable", "{s:I}", "user_id", uid));
	ERR(c, "auth.whoami", 401, "unauthenticated", "{}");
	ERR(c, "beneficiary.list", 401, "unauthenticated", "{}");
	st_close(c);
	c = h_connect(W.d);
	ERR(c, "auth.login", 401, "unauthenticated", "{s:s, s:s}", "email",
	    "temp@example.org", "password", W_PASSWORD);
	st_close(c);
	ERR(W.admin, "user.disable", 404, "not_found", "{s:I}", "user_id",
	    (json_int_t)999999);
}

static void
test_offers(void **state)
{
	json_t *r, *items;
	json_int_t o;
	size_t i;

	/* A partner publishes for itself; naming another partner is 404. */
	r = OK(W.partner, "offer.publish", "{s:s, s:s, s:s, s:s, s:s, s:i, s:s}",
	    "title", "Concert du nouvel an", "category", "concert", "venue",
	    "Salle", "city", "Lezoux", "starts_at", w_time(40 * W_DAY), "seats",
	    10, "description", "Deux heures.\nEntracte.");
	o = w_int(r, "id");
	assert_int_equal(w_int(r, "partner_id"), W.partner_id);
	assert_int_equal(w_int(r, "seats_total"), 10);
	assert_int_equal(w_int(r, "seats_available"), 10);
	assert_int_equal(w_int(r, "max_per_booking"), 4);
	assert_string_equal(w_str(r, "delivery"), "guest_list");
	json_decref(r);
	ERR(W.partner, "offer.publish", 404, "not_found",
	    "{s:s, s:s, s:s, s:s, s:s, s:i, s:I}", "title", "T", "category",
	    "show", "venue", "V", "city", "C", "starts_at", w_time(W_DAY),
	    "seats", 1, "partner_id", W.partner2_id);
	expect_field(W.admin, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i}", "title", "T", "category", "show",
	    "venue", "V", "city", "C", "starts_at", w_time(W_DAY), "seats", 1),
	    -32602, "invalid_params", "partner_id");
	expect_field(W.partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i}", "title", "T", "category", "show",
	    "venue", "V", "city", "C", "starts_at", w_time(-W_DAY), "seats", 1),
	    -32602, "invalid_params", "starts_at");
	expect_field(W.partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "title", "T", "category",
	    "show", "venue", "V", "city", "C", "starts_at", w_time(2 * W_DAY),
	    "ends_at", w_time(W_DAY), "seats", 1), -32602, "invalid_params",
	    "ends_at");
	expect_field(W.partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i}", "title", "T", "category", "show",
	    "venue", "V", "city", "C", "starts_at", "tomorrow", "seats", 1),
	    -32602, "invalid_params", "starts_at");
	expect_field(W.partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i}", "title", "T", "category", "show",
	    "venue", "V", "city", "C", "starts_at", w_time(W_DAY), "seats", 0),
	    -32602, "invalid_params", "seats");
	ERR(W.ref, "offer.publish", 403, "forbidden", "{}");

	/* Update: own offers only; any field but seats. */
	r = OK(W.partner, "offer.update", "{s:I, s:s, s:s}", "offer_id", o,
	    "title", "Concert du Nouvel An", "accessibility", "PMR");
	assert_string_equal(w_str(r, "title"), "Concert du Nouvel An");
	assert_string_equal(w_str(r, "accessibility"), "PMR");
	json_decref(r);
	ERR(W.partner2, "offer.update", 404, "not_found", "{s:I, s:s}",
	    "offer_id", o, "title", "Mine");
	expect_field(W.partner, "offer.update", json_pack("{s:I, s:i}",
	    "offer_id", o, "seats", 3), -32602, "invalid_params", "seats");

	/* Every role reads offers; unknown ids are 404. */
	r = OK(W.ref2, "offer.get", "{s:I}", "offer_id", o);
	assert_int_equal(w_int(r, "id"), o);
	json_decref(r);
	ERR(W.ref, "offer.get", 404, "not_found", "{s:I}", "offer_id",
	    (json_int_t)999999);
	r = OK(W.ref, "offer.list", "{s:s, s:b}", "category", "concert",
	    "available_only", 1);
	items = json_object_get(r, "items");
	assert_true(json_array_size(items) >= 1);
	for (i = 0; i < json_array_size(items); i++)
		assert_string_equal(w_str(json_array_get(items, i), "category"),
		    "concert");
	json_decref(r);

	/* set_seats: not below what is taken. */
	{
		json_int_t b = w_beneficiary(W.ref, "Lucie", "Bernard");
		json_t *bk = w_book(W.ref, o, b, 3);

		json_decref(bk);
		expect_field(W.partner, "offer.set_seats", json_pack("{s:I, s:i}",
		    "offer_id", o, "seats", 2), 409, "seats_taken", "seats");
		r = OK(W.partner, "offer.set_seats", "{s:I, s:i}", "offer_id",
		    o, "seats", 3);
		assert_int_equal(w_int(r, "seats_available"), 0);
		assert_int_equal(w_int(r, "seats_taken"), 3);
		json_decref(r);
		ERR(W.partner2, "offer.set_seats", 404, "not_found",
		    "{s:I, s:i}", "offer_id", o, "seats", 50);
	}
}

static void
test_beneficiaries(void **state)
{
	json_t *r;
	json_int_t b, o, past;

	expect_field(W.ref, "beneficiary.create", json_pack(
	    "{s:s, s:s, s:b}", "first_name", "A", "last_name", "B", "consent",
	    0), -32602, "invalid_params", "consent");
	expect_field(W.ref, "beneficiary.create", json_pack(
	    "{s:s, s:s}", "first_name", "A", "last_name", "B"), -32602,
	    "invalid_params", "consent");
	expect_field(W.admin, "beneficiary.create", json_pack(
	    "{s:s, s:s, s:b}", "first_name", "A", "last_name", "B", "consent",
	    1), -32602, "invalid_params", "structure_id");
	ERR(W.partner, "beneficiary.create", 403, "forbidden", "{}");

	b = w_beneficiary(W.ref, "Marie", "Dupont");
	r = OK(W.ref, "beneficiary.get", "{s:I}", "beneficiary_id", b);
	assert_string_equal(w_str(r, "first_name"), "Marie");
	assert_int_equal(w_int(r, "outings_12m"), 0);
	assert_int_equal(w_int(r, "no_shows_12m"), 0);
	assert_true(json_is_array(json_object_get(r, "upcoming")));
	assert_true(json_is_string(json_object_get(r, "consent_at")));
	json_decref(r);
	/* Another structure never learns the person exists. */
	ERR(W.ref2, "beneficiary.get", 404, "not_found", "{s:I}",
	    "beneficiary_id", b);
	ERR(W.ref2, "beneficiary.update", 404, "not_found", "{s:I, s:s}",
	    "beneficiary_id", b, "first_name", "X");
	r = OK(W.ref2, "beneficiary.list", "{s:s}", "query", "dupont");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 0);
	json_decref(r);
	r = OK(W.ref, "beneficiary.list", "{s:s}", "query", "marie dup");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
	json_decref(r);
	r = OK(W.ref, "beneficiary.update", "{s:I, s:i, s:s}",
	    "beneficiary_id", b, "household_size", 3, "postal_code", "63160");
	assert_int_equal(w_int(r, "household_size"), 3);
	json_decref(r);

	/* An upcoming booking and a past, attended one. */
	o = w_offer(W.partner, 5, 2, NULL);
	json_decref(w_book(W.ref, o, b, 2));
	past = w_offer(W.partner, 5, 2, NULL);
	json_decref(w_book(W.ref, past, b, 1));
	{
		char sql[256];

		snprintf(sql, sizeof sql, "UPDATE bookings SET status = "
		    "'attended', checked_in_at = now() - interval '10 days' "
		    "WHERE offer_id = %lld; UPDATE offers SET starts_at = now() "
		    "- interval '10 days', booking_deadline = now() - interval "
		    "'12 days' WHERE id = %lld", (long long)past,
		    (long long)past);
		h_db_exec(db, sql);
	}
	r = OK(W.ref, "beneficiary.get", "{s:I}", "beneficiary_id", b);
	assert_int_equal(w_int(r, "outings_12m"), 1);
	assert_int_equal(json_array_size(json_object_get(r, "upcoming")), 1);
	json_decref(r);

	r = OK(W.ref, "beneficiary.export", "{s:I}", "beneficiary_id", b);
	assert_int_equal(json_array_size(json_object_get(r, "bookings")), 2);
	assert_string_equal(w_str(json_object_get(r, "beneficiary"),
	    "last_name"), "Dupont");
	json_decref(r);

	/* Erasure: names gone for good, upcoming seats freed, history kept. */
	r = OK(W.ref, "beneficiary.erase", "{s:I}", "beneficiary_id", b);
	assert_int_equal(w_int(r, "bookings_cancelled"), 1);
	json_decref(r);
	ERR(W.ref, "beneficiary.get", 404, "not_found", "{s:I}",
	    "beneficiary_id", b);
	r = OK(W.ref, "offer.get", "{s:I}", "offer_id", o);
	assert_int_equal(w_int(r, "seats_available"), 5);
	json_decref(r);
	{
		char sql[256];

		snprintf(sql, sizeof sql, "SELECT count(*) FROM beneficiaries "
		    "WHERE id = %lld AND first_name IS NULL AND last_name IS "
		    "NULL AND erased_at IS NOT NULL", (long long)b);
		assert_string_equal(h_db_exec(db, sql), "1");
		snprintf(sql, sizeof sql, "SELECT count(*) FROM bookings WHERE "
		    "beneficiary_id = %lld AND status = 'attended'",
		    (long long)b);
		assert_string_equal(h_db_exec(db, sql), "1");
		assert_string_equal(h_db_exec(db, "SELECT count(*) FROM "
		    "audit_log WHERE summary::text ILIKE '%dupont%' OR "
		    "summary::text ILIKE '%marie%'"), "0");
	}
}

static void
test_bookings(void **state)
{
	json_t *r, *r2, *data;
	json_int_t o, o2, a, b, c, bk;
	const char *deadline_soon;

	o = w_offer(W.partner, 4, 3, NULL);
	a = w_beneficiary(W.ref, "Jean", "Martin");
	b = w_beneficiary(W.ref, "Sofia", "Lopes");
	c = w_beneficiary(W.ref2, "Ali", "Benali");

	r = w_book(W.ref, o, a, 3);
	bk = w_int(r, "id");
	assert_string_equal(w_str(r, "status"), "confirmed");
	assert_int_equal(w_int(r, "seats"), 3);
	assert_int_equal(strlen(w_str(r, "code")), 19);
	json_decref(r);

	expect_field(W.ref, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", b, "seats", 4), -32602,
	    "invalid_params", "seats");
	expect_field(W.ref, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", b, "seats", 0), -32602,
	    "invalid_params", "seats");
	data = h_call_err(W.ref, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", b, "seats", 2), 409, "sold_out");
	assert_int_equal(w_int(data, "seats_available"), 1);
	json_decref(data);
	ERR(W.ref, "booking.create", 409, "duplicate", "{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", a, "seats", 1);
	/* Another structure's person, and unknown offers: 404. */
	ERR(W.ref, "booking.create", 404, "not_found", "{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", c, "seats", 1);
	ERR(W.ref, "booking.create", 404, "not_found", "{s:I, s:I, s:i}",
	    "offer_id", (json_int_t)999999, "beneficiary_id", b, "seats", 1);
	ERR(W.partner, "booking.create", 403, "forbidden", "{}");

	/* get/list are scoped to the structure. */
	r = OK(W.ref, "booking.get", "{s:I}", "booking_id", bk);
	assert_int_equal(w_int(r, "beneficiary_id"), a);
	json_decref(r);
	ERR(W.ref2, "booking.get", 404, "not_found", "{s:I}", "booking_id", bk);
	r = OK(W.ref2, "booking.list", "{s:I}", "offer_id", o);
	assert_int_equal(json_array_size(json_object_get(r, "items")), 0);
	json_decref(r);
	r = OK(W.ref, "booking.list", "{s:I, s:s}", "offer_id", o, "status",
	    "confirmed");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
	json_decref(r);

	/* Cancel gives the seats back; cancelling twice answers the same. */
	ERR(W.ref2, "booking.cancel", 404, "not_found", "{s:I}", "booking_id",
	    bk);
	r = OK(W.ref, "booking.cancel", "{s:I}", "booking_id", bk);
	assert_string_equal(w_str(r, "status"), "cancelled");
	json_decref(r);
	r = OK(W.ref, "booking.cancel", "{s:I}", "booking_id", bk);
	assert_string_equal(w_str(r, "status"), "cancelled");
	json_decref(r);
	r = OK(W.ref, "offer.get", "{s:I}", "offer_id", o);
	assert_int_equal(w_int(r, "seats_available"), 4);
	json_decref(r);

	/* Cancelled offers and passed deadlines. */
	o2 = w_offer(W.partner, 4, 2, NULL);
	json_decref(OK(W.partner, "offer.cancel", "{s:I, s:s}", "offer_id", o2,
	    "reason", "Fermeture"));
	ERR(W.ref, "booking.create", 409, "offer_cancelled", "{s:I, s:I, s:i}",
	    "offer_id", o2, "beneficiary_id", b, "seats", 1);
	deadline_soon = w_time(2);
	r = OK(W.partner, "offer.publish", "{s:s, s:s, s:s, s:s, s:s, s:s, s:i}",
	    "title", "Séance", "category", "cinema", "venue", "Rex", "city",
	    "Brive", "starts_at", w_time(3 * W_DAY), "booking_deadline",
	    deadline_soon, "seats", 5);
	o2 = w_int(r, "id");
	json_decref(r);
	sleep(3);
	ERR(W.ref, "booking.create", 409, "deadline_passed", "{s:I, s:I, s:i}",
	    "offer_id", o2, "beneficiary_id", b, "seats", 1);

	/* Idempotency: the same key answers the same booking, seats once. */
	r = OK(W.ref, "booking.create", "{s:I, s:I, s:i, s:s}", "offer_id", o,
	    "beneficiary_id", b, "seats", 2, "idempotency_key", "desk-42");
	r2 = OK(W.ref, "booking.create", "{s:I, s:I, s:i, s:s}", "offer_id", o,
	    "beneficiary_id", b, "seats", 2, "idempotency_key", "desk-42");
	assert_int_equal(w_int(r, "id"), w_int(r2, "id"));
	assert_string_equal(w_str(r, "code"), w_str(r2, "code"));
	json_decref(r);
	json_decref(r2);
	r = OK(W.ref, "offer.get", "{s:I}", "offer_id", o);
	assert_int_equal(w_int(r, "seats_taken"), 2);
	json_decref(r);
}

static void
test_caps(void **state)
{
	json_int_t p = w_beneficiary(W.ref, "Nadia", "Roux");
	json_int_t jan[3], feb, mar;
	json_t *data;
	int i;

	/* This daemon: 3 upcoming at most, 2 per calendar month. */
	for (i = 0; i < 3; i++)
		jan[i] = w_offer(W.partner, 10, 2, "2031-01-15T19:00:00Z");
	feb = w_offer(W.partner, 10, 2, "2031-02-15T19:00:00Z");
	mar = w_offer(W.partner, 10, 2, "2031-03-15T19:00:00Z");
	json_decref(w_book(W.ref, jan[0], p, 1));
	json_decref(w_book(W.ref, jan[1], p, 1));
	data = h_call_err(W.ref, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", jan[2], "beneficiary_id", p, "seats", 1), 409,
	    "limit_reached");
	assert_string_equal(w_str(data, "cap"), "max_per_month");
	json_decref(data);
	json_decref(w_book(W.ref, feb, p, 1));
	data = h_call_err(W.ref, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", mar, "beneficiary_id", p, "seats", 1), 409,
	    "limit_reached");
	assert_string_equal(w_str(data, "cap"), "max_upcoming_per_beneficiary");
	json_decref(data);

	/* The month is the show's, as it is now: a show moved to April no
	 * longer counts in January... */
	p = w_beneficiary(W.ref, "Samir", "Benali");
	json_decref(w_book(W.ref, jan[0], p, 1));
	json_decref(w_book(W.ref, jan[1], p, 1));
	json_decref(h_call_err(W.ref, "booking.create", json_pack(
	    "{s:I, s:I, s:i}", "offer_id", jan[2], "beneficiary_id", p,
	    "seats", 1), 409, "limit_reached"));
	json_decref(OK(W.partner, "offer.update", "{s:I, s:s}", "offer_id",
	    jan[1], "starts_at", "2031-04-15T18:00:00Z"));
	json_decref(w_book(W.ref, jan[2], p, 1));

	/* ...and a month is the structure's (Europe/Paris): 23:30 UTC on
	 * 31 January is 1 February there. */
	p = w_beneficiary(W.ref, "Inès", "Morel");
	feb = w_offer(W.partner, 10, 2, "2031-01-31T23:30:00Z");
	json_decref(w_book(W.ref, jan[0], p, 1));
	json_decref(w_book(W.ref, jan[2], p, 1));
	json_decref(w_book(W.ref, feb, p, 1));
}

static void
test_waitlist(void **state)
{
	json_int_t o = w_offer(W.partner, 3, 3, NULL);
	json_int_t a = w_beneficiary(W.ref, "Hugo", "Petit");
	json_int_t b = w_beneficiary(W.ref, "Emma", "Grand");
	json_int_t c = w_beneficiary(W.ref, "Louis", "Moyen");
	json_t *r, *bk;
	json_int_t eb, ec, booking;

	ERR(W.ref, "waitlist.join", 409, "waitlist_state", "{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", b, "seats", 1);
	bk = w_book(W.ref, o, a, 3);
	booking = w_int(bk, "id");
	json_decref(bk);
	r = OK(W.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id", o,
	    "beneficiary_id", b, "seats", 3);
	eb = w_int(r, "id");
	assert_string_equal(w_str(r, "status"), "waiting");
	assert_int_equal(w_int(r, "position"), 1);
	json_decref(r);
	r = OK(W.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id", o,
	    "beneficiary_id", c, "seats", 1);
	ec = w_int(r, "id");
	assert_int_equal(w_int(r, "position"), 2);
	json_decref(r);
	ERR(W.ref, "waitlist.join", 409, "duplicate", "{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", c, "seats", 1);
	ERR(W.ref, "waitlist.accept", 409, "waitlist_state", "{s:I}",
	    "entry_id", eb);
	ERR(W.ref2, "waitlist.leave", 404, "not_found", "{s:I}", "entry_id",
	    eb);

	/* Freed seats go to the oldest entry that fits, and are held. */
	json_decref(OK(W.ref, "booking.cancel", "{s:I}", "booking_id",
	    booking));
	r = OK(W.ref, "waitlist.list", "{s:I}", "offer_id", o);
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    0), "status"), "offered");
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    1), "status"), "waiting");
	json_decref(r);
	r = OK(W.ref, "offer.get", "{s:I}", "offer_id", o);
	assert_int_equal(w_int(r, "seats_held"), 3);
	assert_int_equal(w_int(r, "seats_available"), 0);
	json_decref(r);
	ERR(W.ref, "booking.create", 409, "sold_out", "{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", a, "seats", 1);

	r = OK(W.ref, "waitlist.accept", "{s:I}", "entry_id", eb);
	assert_string_equal(w_str(r, "status"), "confirmed");
	assert_string_equal(w_str(r, "source"), "waitlist");
	assert_int_equal(w_int(r, "seats"), 3);
	json_decref(r);
	ERR(W.ref, "waitlist.accept", 409, "waitlist_state", "{s:I}",
	    "entry_id", eb);
	r = OK(W.ref, "waitlist.leave", "{s:I}", "entry_id", ec);
	assert_string_equal(w_str(r, "status"), "left");
	json_decref(r);
	ERR(W.ref, "waitlist.leave", 409, "waitlist_state", "{s:I}",
	    "entry_id", ec);
}

static void
test_check_in(void **state)
{
	json_int_t o = w_offer(W.partner, 10, 4, NULL);
	json_int_t p = w_beneficiary(W.ref, "Marie", "Curie");
	json_t *bk = w_book(W.ref, o, p, 2), *r, *data;
	char code[32], typo[32];
	size_t i, j;

	/* lower case, no dashes: the door reads it however it comes */
	for (i = j = 0; w_str(bk, "code")[i]; i++)
		if (w_str(bk, "code")[i] != '-')
			code[j++] = (char)(w_str(bk, "code")[i] | 0x20);
	code[j] = '\0';
	ERR(W.partner2, "ticket.check_in", 404, "not_found", "{s:s}", "code",
	    code);
	snprintf(typo, sizeof typo, "%s", w_str(bk, "code"));
	typo[0] = typo[0] == 'A' ? 'B' : 'A';
	data = h_call_err(W.partner, "ticket.check_in", json_pack("{s:s}",
	    "code", typo), 404, "not_found");
	json_decref(data);
	ERR(W.ref, "ticket.check_in", 403, "forbidden", "{s:s}", "code", code);

	/* At the door of another show of the venue: refused, and the
	 * ticket stays good for its own show. */
	{
		json_int_t other = w_offer(W.partner, 10, 4, NULL);

		data = h_call_err(W.partner, "ticket.check_in", json_pack(
		    "{s:s, s:I}", "code", code, "offer_id", other), 409,
		    "wrong_offer");
		assert_int_equal(json_integer_value(json_object_get(data,
		    "booking_offer_id")), o);
		assert_non_null(json_object_get(data, "starts_at"));
		json_decref(data);
	}

	r = OK(W.partner, "ticket.check_in", "{s:s, s:I}", "code", code,
	    "offer_id", o);
	assert_string_equal(w_str(r, "status"), "attended");
	assert_string_equal(w_str(r, "holder"), "Marie C.");
	assert_int_equal(w_int(r, "seats"), 2);
	assert_null(json_object_get(r, "last_name"));
	json_decref(r);
	ERR(W.partner, "ticket.check_in", 409, "already_used", "{s:s}", "code",
	    w_str(bk, "code"));

	/* The guest list shows first name and initial, nothing more. */
	r = OK(W.partner, "offer.guest_list", "{s:I}", "offer_id", o);
	{
		json_t *g = json_array_get(json_object_get(r, "items"), 0);
		const char *k;
		json_t *v;

		json_object_foreach(g, k, v)
			assert_true(strcmp(k, "booking_id") == 0 ||
			    strcmp(k, "holder") == 0 || strcmp(k, "seats") == 0 ||
			    strcmp(k, "code") == 0 || strcmp(k, "structure") == 0 ||
			    strcmp(k, "status") == 0);
		assert_string_equal(w_str(g, "holder"), "Marie C.");
		assert_string_equal(w_str(g, "status"), "attended");
	}
	json_decref(r);
	ERR(W.partner2, "offer.guest_list", 404, "not_found", "{s:I}",
	    "offer_id", o);
	json_decref(bk);
}

static void
test_close_attendance(void **state)
{
	json_int_t o = w_offer(W.partner, 10, 4, NULL);
	json_int_t p = w_beneficiary(W.ref, "Yann", "Le Gall");
	json_int_t q = w_beneficiary(W.ref, "Inès", "Haddad");
	json_t *bp = w_book(W.ref, o, p, 1), *bq = w_book(W.ref, o, q, 2), *r;
	char sql[200];

	expect_field(W.partner, "offer.close_attendance", json_pack("{s:I}",
	    "offer_id", o), -32602, "invalid_params", "offer_id");
	json_decref(OK(W.partner, "ticket.check_in", "{s:s}", "code",
	    w_str(bp, "code")));
	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = now() - "
	    "interval '1 hour', booking_deadline = now() - interval '2 days' "
	    "WHERE id = %lld", (long long)o);
	h_db_exec(db, sql);
	r = OK(W.partner, "offer.close_attendance", "{s:I}", "offer_id", o);
	assert_int_equal(w_int(r, "no_show"), 1);
	assert_int_equal(w_int(r, "attended"), 1);
	json_decref(r);
	r = OK(W.ref, "booking.get", "{s:I}", "booking_id", w_int(bq, "id"));
	assert_string_equal(w_str(r, "status"), "no_show");
	json_decref(r);
	/* a late arrival still gets in */
	r = OK(W.partner, "ticket.check_in", "{s:s}", "code", w_str(bq, "code"));
	assert_string_equal(w_str(r, "status"), "attended");
	json_decref(r);
	ERR(W.ref, "booking.cancel", 409, "already_used", "{s:I}",
	    "booking_id", w_int(bq, "id"));
	json_decref(bp);
	json_decref(bq);
}

static void
test_partner_cancels(void **state)
{
	json_int_t o = w_offer(W.partner, 2, 2, NULL);
	json_int_t p = w_beneficiary(W.ref, "Léa", "Fontaine");
	json_int_t q = w_beneficiary(W.ref2, "Tom", "Rivière");
	json_t *bk = w_book(W.ref, o, p, 2), *r, *e;

	e = OK(W.ref2, "waitlist.join", "{s:I, s:I, s:i}", "offer_id", o,
	    "beneficiary_id", q, "seats", 1);
	ERR(W.partner2, "offer.cancel", 404, "not_found", "{s:I, s:s}",
	    "offer_id", o, "reason", "x");
	r = OK(W.partner, "offer.cancel", "{s:I, s:s}", "offer_id", o,
	    "reason", "Intempéries");
	assert_string_equal(w_str(r, "status"), "cancelled");
	assert_int_equal(w_int(r, "bookings_cancelled"), 1);
	assert_int_equal(w_int(r, "waitlist_ended"), 1);
	json_decref(r);
	r = OK(W.ref, "booking.get", "{s:I}", "booking_id", w_int(bk, "id"));
	assert_string_equal(w_str(r, "status"), "cancelled_by_partner");
	json_decref(r);
	r = OK(W.ref2, "waitlist.list", "{s:I}", "offer_id", o);
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    0), "status"), "cancelled");
	json_decref(r);
	ERR(W.partner, "ticket.check_in", 409, "offer_cancelled", "{s:s}",
	    "code", w_str(bk, "code"));
	ERR(W.partner, "offer.cancel", 409, "offer_cancelled", "{s:I, s:s}",
	    "offer_id", o, "reason", "again");
	json_decref(bk);
	json_decref(e);
}

static void
test_audit(void **state)
{
	json_t *r = OK(W.admin, "audit.list", "{s:i}", "limit", 500), *items;
	size_t i;
	bool saw_booking = false, saw_checkin = false;

	items = json_object_get(r, "items");
	for (i = 0; i < json_array_size(items); i++) {
		json_t *a = json_array_get(items, i);
		const char *m = w_str(a, "method");

		saw_booking |= strcmp(m, "booking.create") == 0;
		saw_checkin |= strcmp(m, "ticket.check_in") == 0;
		assert_true(json_is_integer(json_object_get(a, "user_id")));
		assert_true(json_is_string(json_object_get(a, "at")));
	}
	assert_true(saw_booking);
	assert_true(saw_checkin);
	json_decref(r);
	r = OK(W.admin, "audit.list", "{s:I}", "user_id", W.partner_user);
	items = json_object_get(r, "items");
	assert_true(json_array_size(items) > 0);
	for (i = 0; i < json_array_size(items); i++)
		assert_int_equal(w_int(json_array_get(items, i), "user_id"),
		    W.partner_user);
	json_decref(r);
	ERR(W.ref, "audit.list", 403, "forbidden", "{}");
	/* Nothing secret in the audit, the log or the tokens table. */
	assert_string_equal(h_db_exec(db, "SELECT count(*) FROM audit_log "
	    "WHERE summary::text ILIKE '%password%' OR summary::text ILIKE "
	    "'%token%'"), "0");
	assert_false(h_log_contains(W.d, W_PASSWORD));
	assert_false(h_log_contains(W.d, "Dupont"));
}

/* docs/booking-rules.md invariant 1, checked by the database's own numbers. */
static void
test_invariants(void **state)
{
	assert_string_equal(h_db_exec(db,
	    "SELECT count(*) FROM offers o WHERE o.seats_taken <> "
	    "(SELECT coalesce(sum(seats), 0) FROM bookings b WHERE b.offer_id "
	    "= o.id AND b.status IN ('confirmed', 'attended', 'no_show')) OR "
	    "o.seats_held <> (SELECT coalesce(sum(seats), 0) FROM "
	    "waitlist_entries e WHERE e.offer_id = o.id AND e.status = "
	    "'offered') OR o.seats_taken + o.seats_held > o.seats_total"), "0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accounts),
		cmocka_unit_test(test_offers),
		cmocka_unit_test(test_beneficiaries),
		cmocka_unit_test(test_bookings),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_waitlist),
		cmocka_unit_test(test_check_in),
		cmocka_unit_test(test_close_attendance),
		cmocka_unit_test(test_partner_cancels),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_invariants),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
