/*
 * Demand (docs/reports.md, "Demand"; docs/protocol.md, offer.demand): what
 * partners see of what was asked of their offers, and the unmet demand of
 * report.activity, through a real draw and a real waiting list.
 *
 * Offer A (2 seats, partner 1) is wished for by three people at a
 * permanence: the draw grants one and leaves two without seats. The
 * partner adds two seats and one of the two is booked directly: granted,
 * no longer unmet. A is sold out again; a new person and the other loser
 * join its waiting list (the loser's two requests are one). A past offer
 * shows its no-shows. Cancelling A takes its demand out of the report.
 * No answer names a person, and other partners and referents see none of
 * it.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct world W;
static PGconn *db;
static json_int_t offer_a, offer_past, offer_other, pm;
static json_int_t p[6];

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

/* offer.demand for one offer, by a caller allowed to see it. */
static json_t *
demand_of(struct st_client *c, json_int_t offer)
{
	json_t *r = OK(c, "offer.demand", "{s:I}", "offer_id", offer);
	json_t *items = json_object_get(r, "items");
	json_t *d;

	assert_int_equal(json_array_size(items), 1);
	d = json_incref(json_array_get(items, 0));
	assert_int_equal(w_int(d, "offer_id"), offer);
	json_decref(r);
	return d;
}

static void
expect_demand(json_int_t offer, int wishes, int waiting, int seats_waiting,
    int booked, int requested, int unmet)
{
	json_t *d = demand_of(W.partner, offer);
	const char *key;
	json_t *v;

	if (w_int(d, "wishes") != wishes || w_int(d, "waiting") != waiting ||
	    w_int(d, "seats_waiting") != seats_waiting ||
	    w_int(d, "seats_booked") != booked ||
	    w_int(d, "seats_requested") != requested ||
	    w_int(d, "unmet_seats") != unmet)
		h_fail("offer.demand: want wishes %d, waiting %d (%d seats), "
		    "booked %d, requested %d, unmet %d; got %s", wishes,
		    waiting, seats_waiting, booked, requested, unmet,
		    h_json_str(d));
	/* numbers only: nobody is named or identified */
	json_object_foreach(d, key, v)
		if (strstr(key, "name") != NULL || strstr(key, "beneficiar") != NULL ||
		    strstr(key, "structure") != NULL)
			h_fail("offer.demand tells %s", key);
	json_decref(d);
}

/* The report's demand total for a caller, over the next 60 days. */
static long long
report_demand(struct st_client *c, const char *group_by, const char *key)
{
	json_t *r = OK(c, "report.activity", "{s:s, s:s, s:s}", "from",
	    w_time(-40 * W_DAY), "to", w_time(60 * W_DAY), "group_by",
	    group_by);
	json_t *items = json_object_get(r, "items"), *it;
	long long total = w_int(json_object_get(r, "total"), "demand"), sum = 0;
	long long found = -1;
	size_t i;

	json_array_foreach(items, i, it) {
		json_t *k = json_object_get(it, "key");

		sum += w_int(it, "demand");
		if (key != NULL && json_is_string(k) &&
		    strcmp(json_string_value(k), key) == 0)
			found = w_int(it, "demand");
	}
	/* demand adds up: the rows' sum is the total */
	assert_int_equal(sum, total);
	json_decref(r);
	return key != NULL ? found : total;
}

static int
setup(void **state)
{
	world_build(&W, h_daemon_start("demand", NULL));
	db = h_db_connect(W.d->conninfo);
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
test_demand(void **state)
{
	json_t *r;
	int i;

	offer_a = w_offer(W.partner, 2, 2, w_time(20 * W_DAY));
	offer_other = w_offer(W.partner2, 5, 2, w_time(21 * W_DAY));
	for (i = 0; i < 6; i++) {
		char first[16];

		snprintf(first, sizeof first, "Personne%d", i);
		p[i] = w_beneficiary(W.ref, first, "Demande");
	}

	/* Before anything: no demand. */
	expect_demand(offer_a, 0, 0, 0, 0, 0, 0);

	/* Three wishes for A, two seats each: pending, they are requested. */
	r = OK(W.ref, "permanence.schedule", "{s:s, s:s, s:s}", "starts_at",
	    w_time(2 * W_DAY), "ends_at", w_time(2 * W_DAY + 7200), "title",
	    "Permanence culture");
	pm = w_int(r, "id");
	json_decref(r);
	for (i = 0; i < 3; i++)
		json_decref(OK(W.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
		    "permanence_id", pm, "beneficiary_id", p[i], "choices",
		    offer_a, "seats", 2));
	{
		json_t *d = demand_of(W.partner, offer_a);

		assert_int_equal(w_int(d, "wishes_first_choice"), 3);
		assert_int_equal(w_int(d, "seats_wished"), 6);
		json_decref(d);
	}
	expect_demand(offer_a, 3, 0, 0, 0, 6, 0);

	/* The draw grants one: two wishes lost, 4 seats unmet. */
	json_decref(OK(W.ref, "permanence.draw", "{s:I}", "permanence_id", pm));
	/* The losers joined A's waiting list (docs/waitlist.md): a lost wish
	 * and its wait are one request each. */
	expect_demand(offer_a, 3, 2, 4, 2, 6, 4);
	assert_int_equal(report_demand(W.admin, "category", "museum"), 4);

	/* Two more seats: offered to a loser, who accepts: granted. */
	json_decref(OK(W.partner, "offer.set_seats", "{s:I, s:i}", "offer_id",
	    offer_a, "seats", 4));
	{
		json_int_t entry = atoll(h_db_exec(db, "SELECT id FROM "
		    "waitlist_entries WHERE status = 'offered'"));

		/* offered seats are granted, even before they are taken */
		expect_demand(offer_a, 3, 2, 4, 2, 6, 2);
		json_decref(OK(W.ref, "waitlist.accept", "{s:I}", "entry_id",
		    entry));
		expect_demand(offer_a, 3, 1, 2, 4, 6, 2);
	}
	/* Sold out again: a new person waits too. */
	json_decref(OK(W.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id",
	    offer_a, "beneficiary_id", p[3], "seats", 1));
	expect_demand(offer_a, 3, 2, 3, 4, 7, 3);

	/* The report: by every group_by the rows add up to the total. */
	assert_int_equal(report_demand(W.admin, "category", "museum"), 3);
	assert_int_equal(report_demand(W.admin, "territory", NULL), 3);
	assert_int_equal(report_demand(W.admin, "month", NULL), 3);
	assert_int_equal(report_demand(W.admin, "partner", NULL), 3);
	assert_int_equal(report_demand(W.admin, "structure", NULL), 3);
	/* Scoped: the partner its offers, the referent its people. */
	assert_int_equal(report_demand(W.partner, "category", NULL), 3);
	assert_int_equal(report_demand(W.partner2, "category", NULL), 0);
	assert_int_equal(report_demand(W.ref, "structure", NULL), 3);
	assert_int_equal(report_demand(W.ref2, "structure", NULL), 0);

	/* Another partner's offer is not found; referents may not ask. */
	json_decref(h_call_err(W.partner2, "offer.demand",
	    json_pack("{s:I}", "offer_id", offer_a), 404, "not_found"));
	json_decref(h_call_err(W.ref, "offer.demand",
	    json_pack("{s:I}", "offer_id", offer_a), 403, "forbidden"));
	/* Its own list: the partner's offers only. */
	r = OK(W.partner2, "offer.demand", "{}");
	assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
	assert_int_equal(w_int(json_array_get(json_object_get(r, "items"), 0),
	    "offer_id"), offer_other);
	json_decref(r);

	/* Cancelled by the partner: no demand left to count. */
	json_decref(OK(W.partner, "offer.cancel", "{s:I, s:s}", "offer_id",
	    offer_a, "reason", "Travaux"));
	assert_int_equal(report_demand(W.admin, "category", NULL), 0);
	expect_demand(offer_a, 3, 0, 0, 0, 0, 0);
}

static void
test_no_shows_of_past_dates(void **state)
{
	json_t *d;
	char sql[256];

	offer_past = w_offer(W.partner, 6, 3, w_time(10 * W_DAY));
	json_decref(w_book(W.ref, offer_past, p[4], 3));
	json_decref(w_book(W.ref, offer_past, p[5], 1));
	d = demand_of(W.partner, offer_past);
	assert_true(json_is_null(json_object_get(d, "no_shows")));
	json_decref(d);
	/* Time passes (as itest_reports does it), attendance is closed. */
	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = now() - "
	    "interval '2 days', booking_deadline = now() - interval '3 days' "
	    "WHERE id = %lld", (long long)offer_past);
	h_db_exec(db, sql);
	json_decref(OK(W.partner, "offer.close_attendance", "{s:I}",
	    "offer_id", offer_past));
	d = demand_of(W.partner, offer_past);
	assert_int_equal(w_int(d, "no_shows"), 4);
	json_decref(d);
	/* The admin sees it too, in the partner's list over a range. */
	{
		json_t *r = OK(W.admin, "offer.demand", "{s:I, s:s, s:s}",
		    "partner_id", W.partner_id, "from", w_time(-5 * W_DAY), "to",
		    w_time(0));

		assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
		json_decref(r);
	}
	/* Bad params name their field. */
	json_decref(h_call_err(W.partner, "offer.demand",
	    json_pack("{s:s}", "from", "yesterday"), -32602, "invalid_params"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demand),
		cmocka_unit_test(test_no_shows_of_past_dates),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
