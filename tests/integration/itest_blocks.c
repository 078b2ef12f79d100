/*
 * Permanence blocks against real daemons and PostgreSQL: the share of an
 * offer one structure may hold in blocks (policy.max_block_share), and
 * unclaimed block seats going back by themselves at the permanence's end
 * or the offer's booking deadline, swept by two daemons
 * (sql/api/60_permanences.sql, docs/booking-rules.md).
 *
 * Blocks set aside, claimed and closed by hand are in itest_permanence.c.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))
#define ERR(c, m, code, reason, ...) \
	json_decref(h_call_err((c), (m), json_pack(__VA_ARGS__), (code), (reason)))

/* Generous caps: the tests are about blocks. */
#define LOOSE_CAPS \
	"[policy]\nmax_upcoming_per_beneficiary = 50\nmax_per_month = 50\n"

static PGconn *db;

#include "perm_common.inc"

#include "perm_invariants.inc"

/* One structure holds at most policy.max_block_share percent (50 by
 * default) of an offer's seats in blocks, over all its permanences; another
 * structure has its own share; returned blocks no longer count. */
static void
test_block_cap(void **state)
{
	struct world w;
	json_t *r, *data;
	json_int_t o, pm1, pm2, pm3;

	start(&w, "perm_cap", LOOSE_CAPS);
	o = offer_at(w.partner, 10, 4, NULL);
	pm1 = permanence(w.ref, W_DAY);
	pm2 = permanence(w.ref, 2 * W_DAY);
	json_decref(reserve(w.ref, pm1, o, 3));
	json_decref(reserve(w.ref, pm2, o, 2));
	data = h_call_err(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm2, "offer_id", o, "seats", 1),
	    409, "limit_reached");
	assert_string_equal(field_of(data), "seats");
	assert_int_equal(w_int(data, "max_block_share"), 50);
	assert_int_equal(w_int(data, "max_block_seats"), 5);
	assert_int_equal(w_int(data, "block_seats_held"), 5);
	json_decref(data);
	/* one big block is no way round it either */
	ERR(w.ref, "permanence.reserve_block", 409, "limit_reached",
	    "{s:I, s:I, s:i}", "permanence_id", permanence(w.ref, 3 * W_DAY),
	    "offer_id", o, "seats", 1);
	assert_int_equal(available(w.ref, o), 5);

	/* the other structure has its own half, within what is free */
	r = OK(w.ref2, "permanence.schedule", "{s:s, s:s}", "starts_at",
	    w_time(W_DAY), "ends_at", w_time(W_DAY + 7200));
	pm3 = w_int(r, "id");
	json_decref(r);
	json_decref(reserve(w.ref2, pm3, o, 4));
	assert_int_equal(available(w.ref, o), 1);

	/* released seats leave room in the share */
	json_decref(OK(w.ref, "permanence.release_block", "{s:I, s:I, s:i}",
	    "permanence_id", pm1, "offer_id", o, "seats", 1));
	json_decref(reserve(w.ref, pm2, o, 1));
	ERR(w.ref, "permanence.reserve_block", 409, "limit_reached",
	    "{s:I, s:I, s:i}", "permanence_id", pm2, "offer_id", o, "seats",
	    1);
	/* and so do seats returned by closing: pm1's 2 */
	json_decref(OK(w.ref, "permanence.close", "{s:I}", "permanence_id",
	    pm1));
	r = reserve(w.ref, pm2, o, 2);
	assert_int_equal(w_int(json_object_get(r, "block"), "seats"), 5);
	json_decref(r);
	assert_int_equal(available(w.ref, o), 1);
	check_invariants();
	finish(&w);
}

/* policy.max_block_share reaches the SQL from the configuration: 20 % of
 * a 10-seat offer is 2 seats for one structure. */
static void
test_block_share_configured(void **state)
{
	struct world w;
	json_t *data;
	json_int_t o, pm;

	start(&w, "perm_share", LOOSE_CAPS "max_block_share = 20\n");
	o = offer_at(w.partner, 10, 4, NULL);
	pm = permanence(w.ref, W_DAY);
	json_decref(reserve(w.ref, pm, o, 2));
	data = h_call_err(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", o, "seats", 1),
	    409, "limit_reached");
	assert_int_equal(w_int(data, "max_block_share"), 20);
	assert_int_equal(w_int(data, "max_block_seats"), 2);
	json_decref(data);
	check_invariants();
	finish(&w);
}

/* Polls permanence.get until the block on offer o is returned; the sweep
 * runs every second in each daemon. Returns the permanence. */
static json_t *
wait_returned(struct st_client *ref, json_int_t pm, json_int_t o)
{
	long long until = h_now_ms() + 20000;
	json_t *r;

	for (;;) {
		r = get(ref, pm);
		if (json_is_string(json_object_get(block_of(r, o),
		    "returned_at")))
			return r;
		if (h_now_ms() > until)
			h_fail("block of permanence %lld on offer %lld never "
			    "returned: %s", (long long)pm, (long long)o,
			    h_json_str(r));
		json_decref(r);
		h_sleep_ms(100);
	}
}

/* Unclaimed block seats go back to everyone by themselves at the
 * permanence's end or the offer's booking deadline, whichever comes
 * first: once, with two daemons sweeping; the waitlist is served with
 * them, and the return is audited. */
static void
test_block_return(void **state)
{
	struct h_daemon *d2;
	struct world w;
	json_t *r, *k, *e, *bz;
	json_int_t o, o2, pm, pm2, x, y, z;
	char sql[512], returned_at[64];

	start(&w, "perm_return1", LOOSE_CAPS);
	d2 = h_daemon_start_same_db(w.d, "perm_return2", LOOSE_CAPS);
	o = offer_at(w.partner, 10, 6, NULL);
	pm = permanence(w.ref, W_DAY);
	json_decref(reserve(w.ref, pm, o, 4));
	x = w_beneficiary(w.ref, "Xavier", "Retour");
	y = w_beneficiary(w.ref, "Yasmine", "Retour");
	z = w_beneficiary(w.ref, "Zoé", "Retour");
	json_decref(w_book(w.ref, o, x, 6));            /* the pool is gone */
	e = OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id", o,
	    "beneficiary_id", y, "seats", 2);
	assert_string_equal(w_str(e, "status"), "waiting");
	json_decref(e);
	json_decref(OK(w.ref, "permanence.open", "{s:I}", "permanence_id",
	    pm));
	bz = claim(w.ref, pm, z, o, 1);
	assert_int_equal(w_int(bz, "from_block"), 1);
	json_decref(bz);
	/* not due yet: a few sweeps leave the block alone */
	h_sleep_ms(2500);
	expect_block(w.ref, pm, o, 4, 1, 3);

	/* The permanence ends (the desk forgot to close it). */
	snprintf(sql, sizeof sql, "UPDATE permanences SET starts_at = now() - "
	    "interval '2 hours', ends_at = now() - interval '1 second' WHERE "
	    "id = %lld", (long long)pm);
	h_db_exec(db, sql);
	r = wait_returned(w.ref, pm, o);
	assert_string_equal(w_str(r, "state"), "open");
	k = block_of(r, o);
	assert_int_equal(w_int(k, "seats"), 1);         /* Zoé's, claimed */
	assert_int_equal(w_int(k, "claimed"), 1);
	assert_int_equal(w_int(k, "remaining"), 0);
	snprintf(returned_at, sizeof returned_at, "%s", w_str(k,
	    "returned_at"));
	json_decref(r);
	/* 3 seats back: Yasmine is offered 2, 1 is free */
	r = offer_get(w.ref, o);
	assert_int_equal(w_int(r, "seats_taken"), 7);   /* Xavier 6, Zoé 1 */
	assert_int_equal(w_int(r, "seats_held"), 2);
	assert_int_equal(w_int(r, "seats_available"), 1);
	json_decref(r);
	r = OK(w.ref, "waitlist.list", "{s:I}", "offer_id", o);
	assert_string_equal(w_str(json_array_get(json_object_get(r, "items"),
	    0), "status"), "offered");
	json_decref(r);
	/* once, whatever the number of daemons and sweeps */
	h_sleep_ms(2500);
	assert_int_equal(sql_int("SELECT count(*) FROM audit_log WHERE method "
	    "= 'permanence.block_return' AND object_id = %lld AND user_id IS "
	    "NULL AND summary->>'reason' = 'permanence_ended' AND "
	    "(summary->>'seats_returned')::int = 3 AND (summary->>'offer_id')"
	    "::bigint = %lld", (long long)pm, (long long)o), 1);
	check_invariants();
	/* nothing more can be set aside there, nor released twice */
	expect_field(w.ref, "permanence.reserve_block", json_pack(
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", o, "seats", 1),
	    409, "deadline_passed", "permanence_id");
	r = OK(w.ref, "permanence.release_block", "{s:I, s:I}",
	    "permanence_id", pm, "offer_id", o);
	assert_int_equal(w_int(r, "released"), 0);
	json_decref(r);
	ERR(w.ref, "permanence.release_block", 409, "seats_taken",
	    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id", o, "seats", 1);
	r = offer_get(w.ref, o);
	assert_int_equal(w_int(r, "seats_taken"), 7);
	json_decref(r);
	/* closing later returns nothing more and keeps the return time */
	r = OK(w.ref, "permanence.close", "{s:I}", "permanence_id", pm);
	assert_int_equal(w_int(r, "seats_returned"), 0);
	assert_string_equal(w_str(block_of(r, o), "returned_at"), returned_at);
	json_decref(r);
	check_invariants();

	/* The offer's booking deadline passes before the permanence. */
	o2 = offer_at(w.partner, 10, 4, NULL);
	pm2 = permanence(w.ref, 2 * W_DAY);
	json_decref(reserve(w.ref, pm2, o2, 5));
	assert_int_equal(available(w.ref, o2), 5);
	snprintf(sql, sizeof sql, "UPDATE offers SET booking_deadline = now() "
	    "- interval '1 second' WHERE id = %lld", (long long)o2);
	h_db_exec(db, sql);
	r = wait_returned(w.ref, pm2, o2);
	assert_string_equal(w_str(r, "state"), "scheduled");
	assert_int_equal(w_int(r, "seats_remaining"), 0);
	json_decref(r);
	assert_int_equal(available(w.ref, o2), 10);
	assert_int_equal(sql_int("SELECT count(*) FROM audit_log WHERE method "
	    "= 'permanence.block_return' AND object_id = %lld AND "
	    "summary->>'reason' = 'booking_deadline'", (long long)pm2), 1);
	check_invariants();

	assert_int_equal(h_daemon_stop(d2), 0);
	finish(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_cap),
		cmocka_unit_test(test_block_share_configured),
		cmocka_unit_test(test_block_return),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
