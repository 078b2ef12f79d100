/*
 * events.subscribe across daemons: changes made through one daemon reach
 * subscribers of the other (PostgreSQL NOTIFY), each subscriber sees only
 * what its role may read, and a subscriber that stops reading cannot grow
 * the daemon: its queue is dropped for a resync event.
 */
#include "world.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

static void
subscribe(struct st_client *c, const char *topics)
{
	json_decref(h_call_ok(c, "events.subscribe", json_pack("{s:o}",
	    "topics", json_loads(topics, 0, NULL))));
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
test_across_daemons_and_scoped(void **state)
{
	struct h_daemon *d1 = h_daemon_start("events1", NULL);
	struct h_daemon *d2 = h_daemon_start_same_db(d1, "events2", NULL);
	struct world w;
	struct st_client *admin2, *ref_on2, *ref2_on2, *partner_on2,
	    *partner2_on2;
	json_int_t o, b;
	json_t *ev, *bk;

	world_build(&w, d1);
	admin2 = h_login_admin(d2);
	ref_on2 = h_login(d2, W_REF_EMAIL, W_PASSWORD);
	ref2_on2 = h_login(d2, W_REF2_EMAIL, W_PASSWORD);
	partner_on2 = h_login(d2, W_PARTNER_EMAIL, W_PASSWORD);
	partner2_on2 = h_login(d2, W_PARTNER2_EMAIL, W_PASSWORD);
	subscribe(admin2, "[\"offer.published\", \"booking.created\"]");
	subscribe(ref_on2, "[\"offer.published\", \"booking.created\"]");
	subscribe(ref2_on2, "[\"offer.published\", \"booking.created\"]");
	subscribe(partner_on2, "[\"booking.created\", \"booking.cancelled\"]");
	subscribe(partner2_on2, "[\"offer.published\", \"booking.created\"]");
	json_decref(h_call_err(w.ref, "events.subscribe", json_pack(
	    "{s:[s]}", "topics", "everything"), -32602, "invalid_params"));

	/* Published through daemon 1, seen by everyone on daemon 2. */
	o = w_offer(w.partner, 10, 2, NULL);
	ev = next_event(admin2, "offer.published", 10000);
	assert_non_null(ev);
	assert_int_equal(w_int(json_object_get(ev, "data"), "id"), o);
	json_decref(ev);
	ev = next_event(ref2_on2, "offer.published", 10000);
	assert_non_null(ev);
	json_decref(ev);
	ev = next_event(partner2_on2, "offer.published", 10000);
	assert_non_null(ev);
	json_decref(ev);

	/* A booking: its structure and its partner see it, the others do
	 * not; the venue does not learn who the person is. */
	b = w_beneficiary(w.ref, "Anna", "Karenine");
	bk = w_book(w.ref, o, b, 2);
	ev = next_event(ref_on2, "booking.created", 10000);
	assert_non_null(ev);
	assert_int_equal(w_int(json_object_get(ev, "data"), "beneficiary_id"),
	    b);
	json_decref(ev);
	ev = next_event(partner_on2, "booking.created", 10000);
	assert_non_null(ev);
	assert_int_equal(w_int(json_object_get(ev, "data"), "id"),
	    w_int(bk, "id"));
	assert_null(json_object_get(json_object_get(ev, "data"),
	    "beneficiary_id"));
	json_decref(ev);
	ev = next_event(admin2, "booking.created", 10000);
	assert_non_null(ev);
	json_decref(ev);
	assert_null(next_event(ref2_on2, "booking.created", 1500));
	assert_null(next_event(partner2_on2, "booking.created", 500));

	/* Unsubscribed topics do not come. */
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    w_int(bk, "id")));
	ev = next_event(partner_on2, "booking.cancelled", 10000);
	assert_non_null(ev);
	json_decref(ev);
	assert_null(next_event(ref_on2, "booking.cancelled", 1000));

	json_decref(bk);
	st_close(admin2);
	st_close(ref_on2);
	st_close(ref2_on2);
	st_close(partner_on2);
	st_close(partner2_on2);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

/* The id of the booking in a booking.cancelled event, after checking
 * its status and whether the person's id is there. */
static json_int_t
cancelled_id(json_t *ev, const char *status, bool with_person)
{
	json_t *data;
	json_int_t id;

	assert_non_null(ev);
	data = json_object_get(ev, "data");
	id = w_int(data, "id");

	assert_string_equal(w_str(data, "status"), status);
	assert_int_equal(json_object_get(data, "beneficiary_id") != NULL,
	    with_person);
	json_decref(ev);
	return id;
}

/* Bookings cancelled by the venue's cancellation of the show or by an
 * erasure are announced like those cancelled one by one. */
static void
test_cancellations_announced(void **state)
{
	struct h_daemon *d = h_daemon_start("events_cancel", NULL);
	struct world w;
	struct st_client *ref_sub, *ref2_sub, *partner_sub;
	json_int_t o1, o2, b1, b2, b3, id1, id2, got1, got2;
	json_t *bk, *ev, *data;

	world_build(&w, d);
	ref_sub = h_login(d, W_REF_EMAIL, W_PASSWORD);
	ref2_sub = h_login(d, W_REF2_EMAIL, W_PASSWORD);
	partner_sub = h_login(d, W_PARTNER_EMAIL, W_PASSWORD);
	subscribe(ref_sub, "[\"booking.cancelled\", \"offer.seats_changed\"]");
	subscribe(ref2_sub, "[\"booking.cancelled\"]");
	subscribe(partner_sub, "[\"booking.cancelled\"]");

	o1 = w_offer(w.partner, 10, 2, NULL);
	o2 = w_offer(w.partner, 10, 2, NULL);
	b1 = w_beneficiary(w.ref, "Ilse", "Premier");
	b2 = w_beneficiary(w.ref, "Jules", "Second");
	b3 = w_beneficiary(w.ref, "Karl", "Troisieme");
	bk = w_book(w.ref, o1, b1, 1);
	id1 = w_int(bk, "id");
	json_decref(bk);
	bk = w_book(w.ref, o1, b2, 2);
	id2 = w_int(bk, "id");
	json_decref(bk);
	json_decref(w_book(w.ref, o2, b3, 1));

	/* The venue cancels the show: one event per booking, to the
	 * structure and (without the person) to the venue. */
	json_decref(OK(w.partner, "offer.cancel", "{s:I, s:s}", "offer_id", o1,
	    "reason", "storm"));
	got1 = cancelled_id(next_event(ref_sub, "booking.cancelled", 10000),
	    "cancelled_by_partner", true);
	got2 = cancelled_id(next_event(ref_sub, "booking.cancelled", 10000),
	    "cancelled_by_partner", true);
	assert_true((got1 == id1 && got2 == id2) || (got1 == id2 && got2 == id1));
	got1 = cancelled_id(next_event(partner_sub, "booking.cancelled", 10000),
	    "cancelled_by_partner", false);
	got2 = cancelled_id(next_event(partner_sub, "booking.cancelled", 10000),
	    "cancelled_by_partner", false);
	assert_true((got1 == id1 && got2 == id2) || (got1 == id2 && got2 == id1));
	assert_null(next_event(ref2_sub, "booking.cancelled", 1000));

	/* An erasure gives the person's upcoming seat back, and says so. */
	json_decref(OK(w.ref, "beneficiary.erase", "{s:I}", "beneficiary_id",
	    b3));
	ev = next_event(ref_sub, "booking.cancelled", 10000);
	assert_non_null(ev);
	data = json_object_get(ev, "data");
	assert_int_equal(w_int(data, "offer_id"), o2);
	assert_int_equal(w_int(data, "beneficiary_id"), b3);
	cancelled_id(ev, "cancelled", true);
	ev = next_event(ref_sub, "offer.seats_changed", 10000);
	assert_non_null(ev);
	data = json_object_get(ev, "data");
	assert_int_equal(w_int(data, "id"), o2);
	assert_int_equal(w_int(data, "seats_taken"), 0);
	json_decref(ev);
	assert_non_null(ev = next_event(partner_sub, "booking.cancelled",
	    10000));
	cancelled_id(ev, "cancelled", false);
	assert_null(next_event(ref2_sub, "booking.cancelled", 1000));

	st_close(ref_sub);
	st_close(ref2_sub);
	st_close(partner_sub);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

static void
test_slow_subscriber(void **state)
{
	struct h_daemon *d = h_daemon_start("events_slow",
	    "[server]\nmax_output_bytes = 65536\n");
	struct world w;
	struct st_client *slow;
	struct st_error err;
	json_int_t o;
	json_t *ev;
	int small = 4096, i, j;
	bool resync = false;

	world_build(&w, d);
	o = w_offer(w.partner, 10, 2, NULL);
	{
		/* Big events fill the kernel's buffers sooner. */
		char text[4001];

		memset(text, 'x', 4000);
		text[4000] = '\0';
		json_decref(OK(w.partner, "offer.update", "{s:I, s:s}",
		    "offer_id", o, "description", text));
	}
	slow = h_login_admin(d);
	subscribe(slow, "[\"offer.seats_changed\"]");
	setsockopt(st_fd(slow), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);

	/* Events (~1 KB each) while the subscriber reads nothing, until the
	 * kernel's buffers and the daemon's queue are full. */
	for (i = 0; i < 200 && !h_log_contains(d, "slow event subscriber");
	    i++) {
		int64_t ids[250];

		for (j = 0; j < 250; j++) {
			json_t *p = json_pack("{s:I, s:i}", "offer_id", o,
			    "seats", 10 + (i * 250 + j) % 50);

			ids[j] = st_send(w.partner, "offer.set_seats", p, &err);
			json_decref(p);
		}
		for (j = 0; j < 250; j++) {
			json_t *r;

			if (st_wait(w.partner, ids[j], &r, &err) != ST_OK)
				h_fail("set_seats: %s", st_strerror(&err));
			json_decref(r);
		}
	}
	assert_true(h_log_wait(d, "slow event subscriber", 10000));
	/* The others are served meanwhile. */
	json_decref(h_call_ok(w.ref, "system.ping", NULL));

	/* Reading again (with a normal window, or the backlog crawls), the
	 * subscriber is told it missed events. A request on the connection
	 * carries the new receive window to the daemon's side at once; without
	 * it the daemon's kernel may sit in zero-window probing, whose backoff
	 * reaches seconds after a long stall. The timeout is per event and
	 * generous: the backlog is megabytes on a loaded machine. */
	small = 4 << 20;
	setsockopt(st_fd(slow), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	{
		json_t *p = json_object();

		if (st_send(slow, "system.ping", p, &err) < 0)
			h_fail("ping: %s", st_strerror(&err));
		json_decref(p);
	}
	while ((ev = next_event(slow, "resync", 30000)) != NULL) {
		resync = true;
		json_decref(ev);
		break;
	}
	assert_true(resync);

	st_close(slow);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_across_daemons_and_scoped),
		cmocka_unit_test(test_cancellations_announced),
		cmocka_unit_test(test_slow_subscriber),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
