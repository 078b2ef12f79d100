/*
 * The privacy of the people served: retention anonymises by itself, once
 * with two daemons, keeping the statistics; and nothing personal or secret
 * ever reaches the daemons' logs, even at debug level.
 */
#include "world.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

static void
test_retention_two_daemons(void **state)
{
	const char *ini = "[policy]\nretention_months = 24\n"
	    "retention_interval = 1s\n[log]\nformat = json\n";
	struct h_daemon *d1 = h_daemon_start("retention1", ini);
	struct h_daemon *d2 = h_daemon_start_same_db(d1, "retention2", ini);
	struct world w;
	PGconn *db = h_db_connect(d1->conninfo);
	json_int_t old, recent, future, o_past, o_future;
	char sql[512];
	int i;

	world_build(&w, d1);
	old = w_beneficiary(w.ref, "Odile", "Ancienne");
	recent = w_beneficiary(w.ref, "Rita", "Récente");
	future = w_beneficiary(w.ref, "Félix", "Lointain");
	o_past = w_offer(w.partner, 5, 2, NULL);
	o_future = w_offer(w.partner, 5, 2, NULL);
	json_decref(w_book(w.ref, o_past, old, 2));
	json_decref(w_book(w.ref, o_future, future, 1));
	/* Odile went out 26 months ago and has not been seen since; Félix
	 * booked long ago for an offer still to come. */
	snprintf(sql, sizeof sql,
	    "UPDATE offers SET starts_at = now() - interval '26 months', "
	    "booking_deadline = now() - interval '27 months' WHERE id = %lld;"
	    "UPDATE bookings SET status = 'attended', checked_in_at = now() - "
	    "interval '26 months' WHERE offer_id = %lld;"
	    "UPDATE beneficiaries SET last_activity_at = now() - interval "
	    "'26 months' WHERE id IN (%lld, %lld)", (long long)o_past,
	    (long long)o_past, (long long)old, (long long)future);
	h_db_exec(db, sql);
	/* E-mails are kept policy.mail_keep_days (30) after they were
	 * queued, sent or not: two of these four go. */
	h_db_exec(db, "INSERT INTO mail_outbox (kind, recipient, subject, body, "
	    "created_at, sent_at, given_up_at) VALUES "
	    "('digest', 'ref@example.org', 's', 'Odile A.', now() - interval "
	    "'40 days', now() - interval '40 days', NULL), "
	    "('digest', 'ref@example.org', 's', 'Rita R.', now() - interval "
	    "'5 days', now() - interval '5 days', NULL), "
	    "('reminder', 'x@example.org', 's', 'b', now() - interval "
	    "'40 days', NULL, NULL), "
	    "('reminder', 'y@example.org', 's', 'b', now() - interval "
	    "'2 days', NULL, NULL)");

	snprintf(sql, sizeof sql, "SELECT count(*) FROM beneficiaries WHERE "
	    "id = %lld AND erased_at IS NOT NULL", (long long)old);
	for (i = 0; i < 30 && strcmp(h_db_exec(db, sql), "1") != 0; i++)
		sleep(1);
	assert_string_equal(h_db_exec(db, sql), "1");
	sleep(2);	/* both daemons have swept again since */

	json_decref(h_call_err(w.ref, "beneficiary.get", json_pack("{s:I}",
	    "beneficiary_id", old), 404, "not_found"));
	json_decref(OK(w.ref, "beneficiary.get", "{s:I}", "beneficiary_id",
	    recent));
	json_decref(OK(w.ref, "beneficiary.get", "{s:I}", "beneficiary_id",
	    future));
	snprintf(sql, sizeof sql, "SELECT first_name IS NULL AND last_name IS "
	    "NULL AND birth_year IS NULL AND postal_code IS NULL FROM "
	    "beneficiaries WHERE id = %lld", (long long)old);
	assert_string_equal(h_db_exec(db, sql), "t");
	assert_string_equal(h_db_exec(db, "SELECT string_agg(body, ',' ORDER BY "
	    "id) FROM mail_outbox WHERE subject = 's'"), "Rita R.,b");
	/* the outing stays, anonymous, for the statistics */
	snprintf(sql, sizeof sql, "SELECT count(*) FROM bookings WHERE "
	    "beneficiary_id = %lld AND status = 'attended' AND seats = 2",
	    (long long)old);
	assert_string_equal(h_db_exec(db, sql), "1");
	/* once, with two daemons, and audited */
	snprintf(sql, sizeof sql, "SELECT count(*) FROM audit_log WHERE "
	    "method = 'retention' AND object_id = %lld", (long long)old);
	assert_string_equal(h_db_exec(db, sql), "1");
	assert_int_equal(h_log_count(d1, "beneficiaries anonymised") +
	    h_log_count(d2, "beneficiaries anonymised"), 1);

	world_close(&w);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

/* Whether booking offer o for p, last seen `ago` before, wrote p's last
 * activity. */
static bool
booking_touches(PGconn *db, struct world *w, json_int_t p, json_int_t o,
    const char *ago)
{
	char sql[256];

	snprintf(sql, sizeof sql, "UPDATE beneficiaries SET last_activity_at "
	    "= now() - interval '%s' WHERE id = %lld", ago, (long long)p);
	h_db_exec(db, sql);
	json_decref(w_book(w->ref, o, p, 1));
	snprintf(sql, sizeof sql, "SELECT last_activity_at > now() - "
	    "interval '1 minute' FROM beneficiaries WHERE id = %lld",
	    (long long)p);
	return strcmp(h_db_exec(db, sql), "t") == 0;
}

/* A booking is activity, kept to the day: it writes a person's last
 * activity when that is more than a day old, and leaves a fresher one
 * alone (docs/privacy.md, "Retention"). */
static void
test_activity_kept_to_the_day(void **state)
{
	struct h_daemon *d = h_daemon_start("activity", "");
	struct world w;
	PGconn *db = h_db_connect(d->conninfo);
	json_int_t p;

	world_build(&w, d);
	p = w_beneficiary(w.ref, "Agathe", "Dujour");
	assert_true(booking_touches(db, &w, p, w_offer(w.partner, 5, 2, NULL),
	    "3 days"));
	assert_false(booking_touches(db, &w, p,
	    w_offer(w.partner, 5, 2, NULL), "5 hours"));
	world_close(&w);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* A full day at the desk and the door, at debug level: the log may say
 * what happened, never to whom, and never a secret. */
static void
test_logs_hold_nothing_personal(void **state)
{
	struct h_daemon *d = h_daemon_start("privacy_logs",
	    "[log]\nlevel = debug\n");
	struct world w;
	struct st_client *c;
	json_int_t o, b;
	json_t *bk, *login;
	char token[64];

	world_build(&w, d);
	c = h_connect(d);
	login = h_call_ok(c, "auth.login", json_pack("{s:s, s:s}", "email",
	    W_REF_EMAIL, "password", W_PASSWORD));
	snprintf(token, sizeof token, "%s", w_str(login, "token"));
	json_decref(login);
	json_decref(h_call_err(c, "auth.change_password", json_pack(
	    "{s:s, s:s}", "old_password", "Wrong-Secret-123", "new_password",
	    "Next-Secret-456"), 401, "unauthenticated"));
	o = w_offer(w.partner, 5, 2, NULL);
	{
		json_t *r = OK(c, "beneficiary.create",
		    "{s:s, s:s, s:i, s:s, s:b}", "first_name", "Zéphyrine",
		    "last_name", "Quatremare", "birth_year", 1948,
		    "postal_code", "63190", "consent", 1);

		b = w_int(r, "id");
		json_decref(r);
		r = OK(c, "beneficiary.list", "{s:s}", "query", "Quatremare");
		assert_int_equal(json_array_size(json_object_get(r, "items")),
		    1);
		json_decref(r);
	}
	bk = w_book(c, o, b, 2);
	json_decref(OK(w.partner, "ticket.check_in", "{s:s}", "code",
	    w_str(bk, "code")));
	json_decref(OK(w.partner, "offer.guest_list", "{s:I}", "offer_id", o));
	json_decref(OK(c, "beneficiary.export", "{s:I}", "beneficiary_id", b));
	json_decref(OK(c, "beneficiary.erase", "{s:I}", "beneficiary_id", b));
	json_decref(bk);
	st_close(c);
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);

	assert_true(h_log_contains(d, "beneficiary.erase"));
	assert_false(h_log_contains(d, "Zéphyrine"));
	assert_false(h_log_contains(d, "Quatremare"));
	assert_false(h_log_contains(d, "63190"));
	assert_false(h_log_contains(d, W_PASSWORD));
	assert_false(h_log_contains(d, H_ADMIN_PASSWORD));
	assert_false(h_log_contains(d, "Wrong-Secret-123"));
	assert_false(h_log_contains(d, "Next-Secret-456"));
	assert_false(h_log_contains(d, token));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retention_two_daemons),
		cmocka_unit_test(test_activity_kept_to_the_day),
		cmocka_unit_test(test_logs_hold_nothing_personal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
