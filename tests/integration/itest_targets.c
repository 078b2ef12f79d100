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

/* A kept offer of the Puy-de-Dôme starting at starts, opening to everyone
 * hours before it (docs/booking-rules.md, "Targeted offers"). */
static json_int_t
kept_lead(struct st_client *partner, const char *starts, int hours)
{
	json_t *r = OK(partner, "offer.publish", "{s:s, s:s, s:s, s:s, s:s, "
	    "s:i, s:[s], s:i}", "title", "Concert du soir", "category",
	    "concert", "venue", "Opéra", "city", "Vichy", "starts_at", starts,
	    "seats", 4, "target_territories", "Puy-de-Dôme",
	    "opens_to_all_hours", hours);
	json_int_t id = w_int(r, "id");

	assert_int_equal(w_int(r, "opens_to_all_hours"), hours);
	json_decref(r);
	return id;
}

/* The hours between an offer's opening and its start, as the database
 * keeps them ("" if it has no opening), and its lead. */
static const char *
lead_of(PGconn *db, json_int_t offer)
{
	char sql[200];

	snprintf(sql, sizeof sql, "SELECT (extract(epoch FROM starts_at - "
	    "opens_to_all_at) / 3600)::float8 || ' ' || "
	    "coalesce(opens_to_all_hours::text, '-') FROM offers WHERE id = "
	    "%lld", (long long)offer);
	return h_db_exec(db, sql);
}

/* The opening as a lead before the show: the instant follows the show
 * when it moves; one way or the other, never both; the rules of the
 * instant (targets, not after the deadline) named on the lead. */
static void
test_lead(void **state)
{
	struct h_daemon *d = h_daemon_start("targets_lead", NULL);
	PGconn *db = h_db_connect(d->conninfo);
	struct world w;
	json_int_t o;
	json_t *r;
	char starts[40];

	world_build(&w, d);
	snprintf(starts, sizeof starts, "%s", w_time(30 * W_DAY));
	o = kept_lead(w.partner, starts, 72);
	assert_string_equal(lead_of(db, o), "72 72");
	assert_false(listed(w.ref2, o));

	/* The show moved earlier: the opening with it (the deadline, after
	 * the new start, goes back to 48 hours before it). */
	r = OK(w.partner, "offer.update", "{s:I, s:s}", "offer_id", o,
	    "starts_at", w_time(20 * W_DAY));
	assert_int_equal(w_int(r, "opens_to_all_hours"), 72);
	json_decref(r);
	assert_string_equal(lead_of(db, o), "72 72");
	/* Later, with its deadline: the same. */
	json_decref(OK(w.partner, "offer.update", "{s:I, s:s, s:s}",
	    "offer_id", o, "starts_at", w_time(40 * W_DAY), "booking_deadline",
	    w_time(38 * W_DAY)));
	assert_string_equal(lead_of(db, o), "72 72");
	/* Later without it: the opening would come after the deadline, which
	 * stays where it was. Refused, on the lead. */
	expect_field(w.partner, "offer.update", json_pack("{s:I, s:s}",
	    "offer_id", o, "starts_at", w_time(50 * W_DAY)), -32602,
	    "invalid_params", "opens_to_all_hours");
	/* A deadline before the opening: refused on the lead too. */
	expect_field(w.partner, "offer.update", json_pack("{s:I, s:s}",
	    "offer_id", o, "booking_deadline", w_time(36 * W_DAY)), -32602,
	    "invalid_params", "opens_to_all_hours");
	expect_field(w.partner, "offer.update", json_pack("{s:I, s:i}",
	    "offer_id", o, "opens_to_all_hours", 24), -32602,
	    "invalid_params", "opens_to_all_hours");
	assert_string_equal(lead_of(db, o), "72 72");

	/* Setting one clears the other. */
	r = OK(w.partner, "offer.update", "{s:I, s:s}", "offer_id", o,
	    "opens_to_all_at", w_time(35 * W_DAY));
	assert_true(json_is_null(json_object_get(r, "opens_to_all_hours")));
	json_decref(r);
	assert_string_equal(lead_of(db, o), "120 -");
	/* (an instant does not follow the show) */
	json_decref(OK(w.partner, "offer.update", "{s:I, s:s}", "offer_id", o,
	    "starts_at", w_time(39 * W_DAY)));
	assert_string_equal(lead_of(db, o), "96 -");
	json_decref(OK(w.partner, "offer.update", "{s:I, s:i}", "offer_id", o,
	    "opens_to_all_hours", 100));
	assert_string_equal(lead_of(db, o), "100 100");
	/* A null lead with no instant: kept to the end. */
	r = OK(w.partner, "offer.update", "{s:I, s:n}", "offer_id", o,
	    "opens_to_all_hours");
	assert_true(json_is_null(json_object_get(r, "opens_to_all_at")));
	assert_true(json_is_false(json_object_get(r, "open_to_all")));
	json_decref(r);
	assert_string_equal(lead_of(db, o), "");
	json_decref(OK(w.partner, "offer.update", "{s:I, s:i}", "offer_id", o,
	    "opens_to_all_hours", 48));
	assert_string_equal(lead_of(db, o), "48 48");
	/* Targets cleared: no lead either. */
	r = OK(w.partner, "offer.update", "{s:I, s:n}", "offer_id", o,
	    "target_territories");
	assert_true(json_is_null(json_object_get(r, "opens_to_all_hours")));
	assert_true(json_is_true(json_object_get(r, "open_to_all")));
	json_decref(r);

	/* One or the other, within bounds, only with targets, not after the
	 * deadline (48 hours before the show by default). */
	expect_field(w.partner, "offer.publish", json_pack("{s:s, s:s, s:s, "
	    "s:s, s:s, s:i, s:[s], s:s, s:i}", "title", "X", "category", "show",
	    "venue", "V", "city", "C", "starts_at", w_time(30 * W_DAY), "seats",
	    5, "target_territories", "Corrèze", "opens_to_all_at",
	    w_time(20 * W_DAY), "opens_to_all_hours", 72), -32602,
	    "invalid_params", "opens_to_all_hours");
	expect_field(w.partner, "offer.publish", json_pack("{s:s, s:s, s:s, "
	    "s:s, s:s, s:i, s:[s], s:i}", "title", "X", "category", "show",
	    "venue", "V", "city", "C", "starts_at", w_time(30 * W_DAY), "seats",
	    5, "target_territories", "Corrèze", "opens_to_all_hours", 0),
	    -32602, "invalid_params", "opens_to_all_hours");
	expect_field(w.partner, "offer.publish", json_pack("{s:s, s:s, s:s, "
	    "s:s, s:s, s:i, s:[s], s:i}", "title", "X", "category", "show",
	    "venue", "V", "city", "C", "starts_at", w_time(30 * W_DAY), "seats",
	    5, "target_territories", "Corrèze", "opens_to_all_hours", 2161),
	    -32602, "invalid_params", "opens_to_all_hours");
	expect_field(w.partner, "offer.publish", json_pack("{s:s, s:s, s:s, "
	    "s:s, s:s, s:i, s:i}", "title", "X", "category", "show", "venue",
	    "V", "city", "C", "starts_at", w_time(30 * W_DAY), "seats", 5,
	    "opens_to_all_hours", 72), -32602, "invalid_params",
	    "opens_to_all_hours");
	expect_field(w.partner, "offer.publish", json_pack("{s:s, s:s, s:s, "
	    "s:s, s:s, s:i, s:[s], s:i}", "title", "X", "category", "show",
	    "venue", "V", "city", "C", "starts_at", w_time(30 * W_DAY), "seats",
	    5, "target_territories", "Corrèze", "opens_to_all_hours", 47),
	    -32602, "invalid_params", "opens_to_all_hours");
	expect_field(w.partner, "offer.update", json_pack("{s:I, s:s, s:i}",
	    "offer_id", o, "opens_to_all_at", w_time(W_DAY),
	    "opens_to_all_hours", 72), -32602, "invalid_params",
	    "opens_to_all_hours");
	/* A lead of 90 days on a show in 30: open from the start, as an
	 * instant already past. */
	r = OK(w.partner, "offer.publish", "{s:s, s:s, s:s, s:s, s:s, s:i, "
	    "s:[s], s:i}", "title", "X", "category", "show", "venue", "V",
	    "city", "C", "starts_at", w_time(30 * W_DAY), "seats", 5,
	    "target_territories", "Corrèze", "opens_to_all_hours", 2160);
	assert_true(json_is_true(json_object_get(r, "open_to_all")));
	assert_true(listed(w.ref, w_int(r, "id")));
	json_decref(r);
	/* The database keeps the instant and the lead together, whatever
	 * writes them (offers_opens_hours_instant). */
	h_db_exec(db, "DO $$ BEGIN UPDATE offers SET opens_to_all_at = "
	    "opens_to_all_at + interval '1 hour' WHERE opens_to_all_hours IS "
	    "NOT NULL; RAISE EXCEPTION 'not refused'; EXCEPTION WHEN "
	    "check_violation THEN NULL; END $$");

	PQfinish(db);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* The real opening of an offer kept until 72 hours before its show: an
 * out-of-target referent sees and books it from then on, and hears of it
 * once. Moved later, it is kept again until its new opening, which is
 * announced in turn. */
static void
test_lead_opens(void **state)
{
	struct h_daemon *d = h_daemon_start("targets_lead_open", NULL);
	PGconn *db = h_db_connect(d->conninfo);
	struct world w;
	json_int_t o, b2;
	json_t *ev, *r;
	char sql[200];

	world_build(&w, d);
	subscribe(w.ref2, "[\"offer.opened\"]");
	b2 = w_beneficiary(w.ref2, "Marius", "Pagnol");
	o = kept_lead(w.partner, w_time(72 * 3600 + 4), 72);
	assert_false(listed(w.ref2, o));
	expect_field(w.ref2, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", b2, "seats", 1), 404,
	    "not_found", "offer_id");

	ev = next_event(w.ref2, "offer.opened", o, 20000);
	assert_non_null(ev);
	assert_int_equal(w_int(json_object_get(ev, "data"), "opens_to_all_hours"),
	    72);
	json_decref(ev);
	assert_true(listed(w.ref2, o));
	json_decref(w_book(w.ref2, o, b2, 1));
	h_sleep_ms(2500);
	assert_null(next_event(w.ref2, "offer.opened", o, 200));

	/* Moved ten days later: its opening is seven days away again, so it
	 * is kept until then; the booking made meanwhile stays. */
	r = OK(w.partner, "offer.update", "{s:I, s:s, s:s}", "offer_id", o,
	    "starts_at", w_time(10 * W_DAY), "booking_deadline",
	    w_time(8 * W_DAY));
	assert_true(json_is_false(json_object_get(r, "open_to_all")));
	json_decref(r);
	assert_false(listed(w.ref2, o));
	snprintf(sql, sizeof sql, "SELECT count(*) FROM bookings WHERE "
	    "offer_id = %lld AND status = 'confirmed'", (long long)o);
	assert_string_equal(h_db_exec(db, sql), "1");
	snprintf(sql, sizeof sql, "SELECT opened_at IS NULL FROM offers WHERE "
	    "id = %lld", (long long)o);
	assert_string_equal(h_db_exec(db, sql), "t");

	/* Back to opening within seconds: announced again, once. */
	json_decref(OK(w.partner, "offer.update", "{s:I, s:s}", "offer_id", o,
	    "starts_at", w_time(72 * 3600 + 3)));
	ev = next_event(w.ref2, "offer.opened", o, 20000);
	assert_non_null(ev);
	assert_int_equal(w_int(json_object_get(ev, "data"), "seats_available"),
	    3);
	json_decref(ev);
	h_sleep_ms(2500);
	assert_null(next_event(w.ref2, "offer.opened", o, 200));
	assert_true(listed(w.ref2, o));

	PQfinish(db);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scoping),
		cmocka_unit_test(test_opened_once),
		cmocka_unit_test(test_lead),
		cmocka_unit_test(test_lead_opens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
