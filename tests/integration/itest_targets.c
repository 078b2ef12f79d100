/*
 * Targeted offers (docs/booking-rules.md, "Targeted offers"): an offer kept
 * for some structures or territories is invisible to the other referents
 * and cannot be booked, waited for or set aside by them, until it opens to
 * everyone; its events reach only its audience; its opening is announced
 * once (offer.opened), however many daemons sweep.
 *
 * The world: structure_id is in the territory "Puy-de-Dôme", structure2_id
 * in "Corrèze" (tests/harness/world.c).
 */
#include "world.h"

#include <string.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

static void
expect_field(struct st_client *c, const char *method, json_t *params,
    int code, const char *reason, const char *field)
{
	json_t *data = h_call_err(c, method, params, code, reason);
	json_t *f = json_object_get(data, "field");

	assert_string_equal(json_is_string(f) ? json_string_value(f) : "",
	    field);
	json_decref(data);
}

/* Whether offer.list shows the offer to this caller. */
static bool
listed(struct st_client *c, json_int_t offer)
{
	json_t *r = OK(c, "offer.list", "{s:i}", "limit", 500), *v;
	bool found = false;
	size_t i;

	json_array_foreach(json_object_get(r, "items"), i, v)
		if (w_int(v, "id") == offer)
			found = true;
	json_decref(r);
	return found;
}

/* A museum visit in 30 days kept for targets (a JSON text), opening to
 * everyone at opens (NULL: never). */
static json_int_t
targeted(struct st_client *partner, int seats, const char *targets,
    const char *opens)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "title",
	    "Répétition générale", "category", "show", "venue",
	    "Théâtre municipal", "city", "Clermont-Ferrand", "starts_at",
	    w_time(30 * W_DAY), "seats", seats, "max_per_booking", 2);
	json_t *t = json_loads(targets, 0, NULL), *r;
	json_int_t id;

	assert_non_null(t);
	json_object_update(p, t);
	json_decref(t);
	if (opens != NULL)
		json_object_set_new(p, "opens_to_all_at", json_string(opens));
	r = h_call_ok(partner, "offer.publish", p);
	id = w_int(r, "id");
	json_decref(r);
	return id;
}

static void
subscribe(struct st_client *c, const char *topics)
{
	json_decref(h_call_ok(c, "events.subscribe", json_pack("{s:o}",
	    "topics", json_loads(topics, 0, NULL))));
}

/* The next event of this topic about this offer within timeout_ms, or
 * NULL; events about other offers are skipped. */
static json_t *
next_event(struct st_client *c, const char *topic, json_int_t offer,
    int timeout_ms)
{
	struct st_error err;
	json_t *ev;

	while (st_next_event(c, &ev, timeout_ms, &err) == ST_OK) {
		if (strcmp(w_str(ev, "topic"), topic) == 0 &&
		    w_int(json_object_get(ev, "data"), "id") == offer)
			return ev;
		json_decref(ev);
	}
	return NULL;
}

/* The next event about either offer within timeout_ms, or NULL. */
static json_t *
first_about(struct st_client *c, json_int_t o1, json_int_t o2,
    int timeout_ms)
{
	struct st_error err;
	json_int_t id;
	json_t *ev;

	while (st_next_event(c, &ev, timeout_ms, &err) == ST_OK) {
		id = w_int(json_object_get(ev, "data"), "id");
		if (id == o1 || id == o2)
			return ev;
		json_decref(ev);
	}
	return NULL;
}

static void
test_scoping(void **state)
{
	struct h_daemon *d = h_daemon_start("targets", NULL);
	struct world w;
	json_int_t t, s, b1, b2, pm;
	json_t *r;
	char targets[128];

	world_build(&w, d);
	b1 = w_beneficiary(w.ref, "Lucie", "Aubrac");
	b2 = w_beneficiary(w.ref2, "Marius", "Pagnol");

	/* Kept for the Puy-de-Dôme: the MDS of Billom sees it, the CCAS of
	 * Brive does not, whatever the way it asks. */
	t = targeted(w.partner, 10, "{\"target_territories\": [\"Puy-de-Dôme\"]}",
	    NULL);
	r = OK(w.ref, "offer.get", "{s:I}", "offer_id", t);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(r, "target_territories"), 0)), "Puy-de-Dôme");
	assert_true(json_is_false(json_object_get(r, "open_to_all")));
	assert_true(json_is_null(json_object_get(r, "opens_to_all_at")));
	json_decref(r);
	assert_true(listed(w.ref, t));
	assert_false(listed(w.ref2, t));
	expect_field(w.ref2, "offer.get", json_pack("{s:I}", "offer_id", t),
	    404, "not_found", "offer_id");
	expect_field(w.ref2, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", t, "beneficiary_id", b2, "seats", 1), 404,
	    "not_found", "offer_id");
	/* (seats above max_per_booking: still no such offer, not a hint) */
	expect_field(w.ref2, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", t, "beneficiary_id", b2, "seats", 3), 404,
	    "not_found", "offer_id");
	expect_field(w.ref2, "waitlist.join", json_pack("{s:I, s:I, s:i}",
	    "offer_id", t, "beneficiary_id", b2, "seats", 1), 404,
	    "not_found", "offer_id");
	/* An admin booking for a person of Brive: the rule is the
	 * structure's. */
	expect_field(w.admin, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", t, "beneficiary_id", b2, "seats", 1), 404,
	    "not_found", "offer_id");
	r = OK(w.ref2, "permanence.schedule", "{s:s, s:s}", "starts_at",
	    w_time(W_DAY), "ends_at", w_time(W_DAY + 7200));
	pm = w_int(r, "id");
	json_decref(r);
	expect_field(w.ref2, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", t, "seats", 2),
	    404, "not_found", "offer_id");
	expect_field(w.ref2, "permanence.wish", json_pack("{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", b2, "choices", t, "seats", 1),
	    404, "not_found", "choices");
	/* Partners and admins see every offer. */
	json_decref(OK(w.partner2, "offer.get", "{s:I}", "offer_id", t));
	json_decref(OK(w.admin, "offer.get", "{s:I}", "offer_id", t));
	assert_true(listed(w.partner2, t));
	/* The target books as usual. */
	json_decref(w_book(w.ref, t, b1, 2));

	/* Kept for a structure by id: the other way round. */
	snprintf(targets, sizeof targets, "{\"target_structure_ids\": [%lld]}",
	    (long long)w.structure2_id);
	s = targeted(w.partner, 10, targets, NULL);
	assert_true(listed(w.ref2, s));
	assert_false(listed(w.ref, s));
	expect_field(w.ref, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", s, "beneficiary_id", b1, "seats", 1), 404,
	    "not_found", "offer_id");

	/* Open to everyone from a time already past: Brive sees and books
	 * the first one. */
	json_decref(OK(w.partner, "offer.update", "{s:I, s:s}", "offer_id", t,
	    "opens_to_all_at", w_time(-60)));
	assert_true(listed(w.ref2, t));
	r = OK(w.ref2, "offer.get", "{s:I}", "offer_id", t);
	assert_true(json_is_true(json_object_get(r, "open_to_all")));
	json_decref(r);
	json_decref(w_book(w.ref2, t, b2, 1));

	/* Targets cleared (null): the second one is for everyone. */
	json_decref(OK(w.partner, "offer.update", "{s:I, s:n}", "offer_id", s,
	    "target_structure_ids"));
	assert_true(listed(w.ref, s));
	json_decref(w_book(w.ref, s, b1, 1));

	/* What a partner may not write. */
	expect_field(w.partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i, s:[s]}", "title", "X", "category",
	    "show", "venue", "V", "city", "C", "starts_at", w_time(30 * W_DAY),
	    "seats", 5, "target_territories", "Atlantide"), -32602,
	    "invalid_params", "target_territories");
	expect_field(w.partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i, s:[s]}", "title", "X", "category",
	    "show", "venue", "V", "city", "C", "starts_at", w_time(30 * W_DAY),
	    "seats", 5, "target_territories", " "), -32602,
	    "invalid_params", "target_territories");
	expect_field(w.partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i, s:[i]}", "title", "X", "category",
	    "show", "venue", "V", "city", "C", "starts_at", w_time(30 * W_DAY),
	    "seats", 5, "target_structure_ids", 999999), 404, "not_found",
	    "target_structure_ids");
	expect_field(w.partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "title", "X", "category",
	    "show", "venue", "V", "city", "C", "starts_at", w_time(30 * W_DAY),
	    "seats", 5, "opens_to_all_at", w_time(W_DAY)), -32602,
	    "invalid_params", "opens_to_all_at");
	/* (the deadline is 48 hours before the show by default) */
	expect_field(w.partner, "offer.publish", json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:i, s:[s], s:s}", "title", "X",
	    "category", "show", "venue", "V", "city", "C", "starts_at",
	    w_time(30 * W_DAY), "seats", 5, "target_territories", "Corrèze",
	    "opens_to_all_at", w_time(29 * W_DAY)), -32602, "invalid_params",
	    "opens_to_all_at");

	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Two daemons sweep the same database: each opening is announced once,
 * to everyone, and only when seats are left; before it, the offer's
 * events reach only its targets. */
static void
test_opened_once(void **state)
{
	struct h_daemon *d1 = h_daemon_start("targets_open1", NULL);
	struct h_daemon *d2 = h_daemon_start_same_db(d1, "targets_open2", NULL);
	struct world w;
	struct st_client *ref2_on2, *ref_on2;
	json_int_t a, full, b1, b2;
	json_t *ev, *r;
	char opens[40];

	world_build(&w, d1);
	ref2_on2 = h_login(d2, W_REF2_EMAIL, W_PASSWORD);
	ref_on2 = h_login(d2, W_REF_EMAIL, W_PASSWORD);
	subscribe(w.ref2, "[\"offer.published\", \"offer.seats_changed\", "
	    "\"offer.opened\"]");
	subscribe(ref2_on2, "[\"offer.opened\"]");
	subscribe(ref_on2, "[\"offer.published\", \"offer.seats_changed\", "
	    "\"offer.opened\"]");
	b1 = w_beneficiary(w.ref, "Lucie", "Aubrac");
	b2 = w_beneficiary(w.ref, "Jean", "Valjean");

	/* Both open in a few seconds; the second is full by then. */
	snprintf(opens, sizeof opens, "%s", w_time(4));
	a = targeted(w.partner, 4, "{\"target_territories\": [\"Puy-de-Dôme\"]}",
	    opens);
	full = targeted(w.partner, 2,
	    "{\"target_territories\": [\"Puy-de-Dôme\"]}", opens);
	json_decref(w_book(w.ref, full, b1, 2));
	json_decref(w_book(w.ref, a, b2, 1));

	/* The target hears of them, the others do not. */
	ev = next_event(ref_on2, "offer.published", a, 10000);
	assert_non_null(ev);
	json_decref(ev);
	ev = next_event(ref_on2, "offer.seats_changed", full, 10000);
	assert_non_null(ev);
	json_decref(ev);

	/* Opened: announced once on each daemon, with the seats left. The
	 * first event about either offer that reaches Brive is that one:
	 * none of those sent while they were kept. */
	ev = first_about(w.ref2, a, full, 20000);
	assert_non_null(ev);
	assert_string_equal(w_str(ev, "topic"), "offer.opened");
	assert_int_equal(w_int(json_object_get(ev, "data"), "id"), a);
	assert_int_equal(w_int(json_object_get(ev, "data"), "seats_available"),
	    3);
	assert_true(json_is_true(json_object_get(json_object_get(ev, "data"),
	    "open_to_all")));
	json_decref(ev);
	ev = next_event(ref2_on2, "offer.opened", a, 10000);
	assert_non_null(ev);
	json_decref(ev);
	ev = next_event(ref_on2, "offer.opened", a, 10000);
	assert_non_null(ev);
	json_decref(ev);
	/* Nothing more: no second announcement (both daemons swept several
	 * times meanwhile) and nothing for the full one. */
	h_sleep_ms(2500);
	assert_null(first_about(w.ref2, a, full, 200));
	assert_null(next_event(ref2_on2, "offer.opened", a, 200));
	assert_null(next_event(ref_on2, "offer.opened", a, 200));
	assert_null(next_event(ref_on2, "offer.opened", full, 200));
	/* Brive now sees the full one too. */
	r = OK(w.ref2, "offer.get", "{s:I}", "offer_id", full);
	assert_int_equal(w_int(r, "seats_available"), 0);
	json_decref(r);

	st_close(ref2_on2);
	st_close(ref_on2);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scoping),
		cmocka_unit_test(test_opened_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
