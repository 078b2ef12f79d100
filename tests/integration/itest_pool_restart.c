/*
 * What must survive a restart or run once with several daemons: an
 * idempotent booking retried after the daemon restarted, and waitlist
 * offers that expire while two daemons sweep the same database.
 */
#include "world.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

static void
test_idempotency_across_restart(void **state)
{
	struct h_daemon *d = h_daemon_start("idem", NULL);
	struct world w;
	struct st_client *ref;
	json_int_t o, b;
	json_t *first, *again, *offer;

	world_build(&w, d);
	o = w_offer(w.partner, 10, 4, NULL);
	b = w_beneficiary(w.ref, "Rémi", "Retry");
	first = OK(w.ref, "booking.create", "{s:I, s:I, s:i, s:s}", "offer_id",
	    o, "beneficiary_id", b, "seats", 3, "idempotency_key",
	    "3f9c2c3e-retry");
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);

	h_daemon_restart(d);
	ref = h_login(d, W_REF_EMAIL, W_PASSWORD);
	again = OK(ref, "booking.create", "{s:I, s:I, s:i, s:s}", "offer_id", o,
	    "beneficiary_id", b, "seats", 3, "idempotency_key",
	    "3f9c2c3e-retry");
	assert_int_equal(w_int(again, "id"), w_int(first, "id"));
	assert_string_equal(w_str(again, "code"), w_str(first, "code"));
	offer = OK(ref, "offer.get", "{s:I}", "offer_id", o);
	assert_int_equal(w_int(offer, "seats_taken"), 3);
	json_decref(offer);
	/* another key is another request: refused as a duplicate */
	json_decref(h_call_err(ref, "booking.create", json_pack(
	    "{s:I, s:I, s:i, s:s}", "offer_id", o, "beneficiary_id", b, "seats",
	    3, "idempotency_key", "other"), 409, "duplicate"));
	json_decref(first);
	json_decref(again);
	st_close(ref);
	assert_int_equal(h_daemon_stop(d), 0);
}

static const char *
entry_status(struct st_client *c, json_int_t entry)
{
	static char buf[32];
	json_t *r = OK(c, "waitlist.list", "{s:s}", "status", "expired");
	json_t *items = json_object_get(r, "items");
	size_t i;

	snprintf(buf, sizeof buf, "not expired");
	for (i = 0; i < json_array_size(items); i++)
		if (w_int(json_array_get(items, i), "id") == entry)
			snprintf(buf, sizeof buf, "%s",
			    w_str(json_array_get(items, i), "status"));
	json_decref(r);
	return buf;
}

static void
test_waitlist_expiry_two_daemons(void **state)
{
	const char *ini = "[policy]\nwaitlist_hold = 2s\n";
	struct h_daemon *d1 = h_daemon_start("expiry1", ini);
	struct h_daemon *d2 = h_daemon_start_same_db(d1, "expiry2", ini);
	struct world w;
	json_int_t o, a, b, c, eb, ec;
	json_t *bk, *r;
	int waited;

	world_build(&w, d1);
	o = w_offer(w.partner, 2, 2, NULL);
	a = w_beneficiary(w.ref, "Alice", "Avant");
	b = w_beneficiary(w.ref, "Bruno", "Bientôt");
	c = w_beneficiary(w.ref, "Chloé", "Ensuite");
	bk = w_book(w.ref, o, a, 2);
	r = OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id", o,
	    "beneficiary_id", b, "seats", 2);
	eb = w_int(r, "id");
	json_decref(r);
	r = OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id", o,
	    "beneficiary_id", c, "seats", 1);
	ec = w_int(r, "id");
	json_decref(r);

	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    w_int(bk, "id")));
	/* B holds both seats for 2 s; nobody accepts; both daemons sweep. */
	for (waited = 0; waited < 20; waited++) {
		if (strcmp(entry_status(w.ref, eb), "expired") == 0)
			break;
		sleep(1);
	}
	assert_string_equal(entry_status(w.ref, eb), "expired");
	json_decref(h_call_err(w.ref, "waitlist.accept", json_pack("{s:I}",
	    "entry_id", eb), 409, "waitlist_state"));
	/* The seats went on to C, once. */
	r = OK(w.ref, "waitlist.accept", "{s:I}", "entry_id", ec);
	assert_int_equal(w_int(r, "seats"), 1);
	json_decref(r);
	r = OK(w.ref, "offer.get", "{s:I}", "offer_id", o);
	assert_int_equal(w_int(r, "seats_taken"), 1);
	assert_int_equal(w_int(r, "seats_held"), 0);
	json_decref(r);
	assert_int_equal(h_log_count(d1, "entries expired") +
	    h_log_count(d2, "entries expired"), 1);

	json_decref(bk);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idempotency_across_restart),
		cmocka_unit_test(test_waitlist_expiry_two_daemons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
