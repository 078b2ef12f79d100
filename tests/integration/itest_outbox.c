/*
 * Events through the outbox (sql/schema/014_outbox.sql, sql/api/90_events.sql, docs/architecture.md,
 * "Events: the outbox"): an event is delivered if and only if its change
 * commits, even when it commits after events with higher ids; events of
 * one offer arrive in commit order under concurrent bookings through two
 * daemons, each exactly once to every subscriber of each daemon; a
 * daemon that falls behind the pruning tells its subscribers to resync.
 */
#include "world.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENTS 4       /* booking clients, half on each daemon */
#define PER_CLIENT 6    /* bookings each sends, pipelined */

static void
subscribe(struct st_client *c, const char *topics)
{
	json_decref(h_call_ok(c, "events.subscribe", json_pack("{s:o}",
	    "topics", json_loads(topics, 0, NULL))));
}

/* The next event within timeout_ms, or NULL. */
static json_t *
next_any(struct st_client *c, int timeout_ms)
{
	struct st_error err;
	json_t *ev;

	if (st_next_event(c, &ev, timeout_ms, &err) == ST_OK)
		return ev;
	return NULL;
}

static json_int_t
data_int(const json_t *ev, const char *key)
{
	return w_int(json_object_get(ev, "data"), key);
}

/* emit() as a change of the database's own would call it: one
 * offer.published with this id. */
static void
emit_sql(char *buf, size_t len, int id)
{
	snprintf(buf, len, "SELECT core.emit('offer.published', NULL, NULL, "
	    "'{\"id\": %d}')", id);
}

/* A rolled-back change sends nothing; one that commits after a later one
 * (a higher id) is not skipped; both arrive once. */
static void
test_rollback_and_late_commit(void **state)
{
	struct h_daemon *d = h_daemon_start("outbox_tx", NULL);
	struct st_client *admin = h_login_admin(d);
	PGconn *a = h_db_connect(d->conninfo), *b = h_db_connect(d->conninfo);
	bool seen[4] = {false};
	char sql[128];
	json_t *ev;
	int id;

	subscribe(admin, "[\"offer.published\"]");
	/* -1 rolls back; -2 takes its id first and commits last; -3
	 * commits in between with a higher id. */
	h_db_exec(a, "BEGIN");
	emit_sql(sql, sizeof sql, -1);
	h_db_exec(a, sql);
	h_db_exec(a, "ROLLBACK");
	h_db_exec(a, "BEGIN");
	emit_sql(sql, sizeof sql, -2);
	h_db_exec(a, sql);
	emit_sql(sql, sizeof sql, -3);
	h_db_exec(b, sql);
	h_db_exec(a, "COMMIT");
	/* The last one, after which nothing more may come. */
	emit_sql(sql, sizeof sql, 0);
	h_db_exec(b, sql);

	while ((ev = next_any(admin, 10000)) != NULL) {
		assert_string_equal(w_str(ev, "topic"), "offer.published");
		id = (int)data_int(ev, "id");
		json_decref(ev);
		assert_true(id <= 0 && id >= -3);
		assert_false(seen[-id]);
		seen[-id] = true;
		if (id == 0)
			break;
	}
	assert_true(seen[0]);
	assert_false(seen[1]);
	assert_true(seen[2]);
	assert_true(seen[3]);

	PQfinish(a);
	PQfinish(b);
	st_close(admin);
	assert_int_equal(h_daemon_stop(d), 0);
}

struct seen_offer {
	json_int_t last_taken;  /* seats_taken of the last seats_changed */
	int changes;
	json_int_t bookings[CLIENTS * PER_CLIENT];
	int nbookings;
};

/* Reads sub's events until n bookings of offer o were announced, and
 * checks them: every seats_changed of o shows more seats taken than the
 * one before (commit order), the last one all n, and no booking comes
 * twice. Bookings committed together (docs/booking-rules.md, "Group
 * commit") share one seats_changed, so there may be fewer than n. */
static void
collect(struct st_client *sub, json_int_t o, int n, struct seen_offer *s)
{
	json_t *ev;
	int i;

	memset(s, 0, sizeof *s);
	while (s->nbookings < n || s->last_taken < n) {
		ev = next_any(sub, 20000);
		if (ev == NULL)
			h_fail("%d bookings and %d seat changes of %d seen",
			    s->nbookings, s->changes, n);
		if (strcmp(w_str(ev, "topic"), "offer.seats_changed") == 0 &&
		    data_int(ev, "id") == o) {
			assert_true(data_int(ev, "seats_taken") >
			    s->last_taken);
			s->last_taken = data_int(ev, "seats_taken");
			s->changes++;
		} else if (strcmp(w_str(ev, "topic"), "booking.created") == 0) {
			for (i = 0; i < s->nbookings; i++)
				assert_true(s->bookings[i] !=
				    data_int(ev, "id"));
			assert_true(s->nbookings < n);
			s->bookings[s->nbookings++] = data_int(ev, "id");
		} else
			h_fail("unexpected event %s", h_json_str(ev));
		json_decref(ev);
	}
	assert_int_equal(s->last_taken, n);
}

/* Bookings of one offer sent at once by clients of two daemons. */
static void
test_commit_order_two_daemons(void **state)
{
	struct h_daemon *d1 = h_daemon_start("outbox_order1", NULL);
	struct h_daemon *d2 = h_daemon_start_same_db(d1, "outbox_order2",
	    NULL);
	struct st_client *sub1, *sub2, *refs[CLIENTS];
	int64_t ids[CLIENTS][PER_CLIENT];
	struct seen_offer s1, s2;
	struct st_error err;
	struct world w;
	json_int_t o, ben[CLIENTS][PER_CLIENT];
	json_t *r;
	int i, k;

	world_build(&w, d1);
	o = w_offer(w.partner, CLIENTS * PER_CLIENT, 1, NULL);
	for (i = 0; i < CLIENTS; i++) {
		refs[i] = h_login(i % 2 ? d2 : d1, W_REF_EMAIL, W_PASSWORD);
		for (k = 0; k < PER_CLIENT; k++) {
			char first[16];

			snprintf(first, sizeof first, "P%d-%d", i, k);
			ben[i][k] = w_beneficiary(w.ref, first, "Outbox");
		}
	}
	sub1 = h_login_admin(d1);
	sub2 = h_login_admin(d2);
	subscribe(sub1, "[\"offer.seats_changed\", \"booking.created\"]");
	subscribe(sub2, "[\"offer.seats_changed\", \"booking.created\"]");

	for (k = 0; k < PER_CLIENT; k++)
		for (i = 0; i < CLIENTS; i++) {
			memset(&err, 0, sizeof err);
			r = json_pack("{s:I, s:I, s:i}", "offer_id", o,
			    "beneficiary_id", ben[i][k], "seats", 1);
			ids[i][k] = st_send(refs[i], "booking.create", r,
			    &err);
			json_decref(r);
			assert_true(ids[i][k] > 0);
		}
	for (i = 0; i < CLIENTS; i++)
		for (k = 0; k < PER_CLIENT; k++) {
			r = NULL;
			memset(&err, 0, sizeof err);
			if (st_wait(refs[i], ids[i][k], &r, &err) != ST_OK)
				h_fail("booking %d/%d: %s", i, k,
				    st_strerror(&err));
			json_decref(r);
		}

	collect(sub1, o, CLIENTS * PER_CLIENT, &s1);
	collect(sub2, o, CLIENTS * PER_CLIENT, &s2);

	for (i = 0; i < CLIENTS; i++)
		st_close(refs[i]);
	st_close(sub1);
	st_close(sub2);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

/* A daemon that could not read (stopped) while the other pruned the rows
 * it had not read tells its subscribers to resync; the other daemon's
 * subscribers, which read everything, are not told. */
static void
test_pruned_before_read(void **state)
{
	const char *ini = "[database]\nevents_keep = 1\n";
	struct h_daemon *d1 = h_daemon_start("outbox_prune1", ini);
	struct h_daemon *d2 = h_daemon_start_same_db(d1, "outbox_prune2",
	    ini);
	struct st_client *sub1 = h_login_admin(d1), *sub2 = h_login_admin(d2);
	PGconn *db = h_db_connect(d1->conninfo);
	long long deadline, top;
	char sql[128];
	json_t *ev;
	bool got = false;

	subscribe(sub1, "[\"offer.published\"]");
	subscribe(sub2, "[\"offer.published\"]");
	assert_int_equal(h_daemon_signal(d2, SIGSTOP), 0);
	emit_sql(sql, sizeof sql, -7);
	h_db_exec(db, sql);
	top = atoll(h_db_exec(db, "SELECT max(id) FROM event_outbox"));
	/* d1 delivers it and its janitor prunes it, d2 sleeping. */
	ev = next_any(sub1, 10000);
	assert_non_null(ev);
	assert_int_equal(data_int(ev, "id"), -7);
	json_decref(ev);
	deadline = h_now_ms() + 20000;
	while (atoll(h_db_exec(db, "SELECT upto FROM event_outbox_pruned")) <
	    top && h_now_ms() < deadline)
		h_sleep_ms(100);
	assert_true(atoll(h_db_exec(db,
	    "SELECT upto FROM event_outbox_pruned")) >= top);
	assert_int_equal(h_daemon_signal(d2, SIGCONT), 0);

	while (!got && (ev = next_any(sub2, 10000)) != NULL) {
		got = strcmp(w_str(ev, "topic"), "resync") == 0;
		json_decref(ev);
	}
	assert_true(got);
	assert_true(h_log_contains(d2, "were pruned before this daemon "
	    "read them"));
	/* Reading goes on after it. A daemon's change would announce
	 * itself, and a second's pruning would not wait for a poll. */
	emit_sql(sql, sizeof sql, -8);
	h_db_exec(db, sql);
	h_db_exec(db, "NOTIFY strapontin_outbox");
	ev = next_any(sub2, 10000);
	assert_non_null(ev);
	assert_string_equal(w_str(ev, "topic"), "offer.published");
	assert_int_equal(data_int(ev, "id"), -8);
	json_decref(ev);
	ev = next_any(sub1, 10000);
	assert_non_null(ev);
	assert_int_equal(data_int(ev, "id"), -8);
	json_decref(ev);
	assert_false(h_log_contains(d1, "were pruned before this daemon"));

	PQfinish(db);
	st_close(sub1);
	st_close(sub2);
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rollback_and_late_commit),
		cmocka_unit_test(test_commit_order_two_daemons),
		cmocka_unit_test(test_pruned_before_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
