/*
 * What e-mail says, and to whom (docs/mail.md, "What is sent"): the rows
 * the changes and the composing job write to mail_outbox, read from the
 * database (sending them is the transport's business, tested on its own).
 * The job is run with a time of the test's choosing (core.mail_compose)
 * so that "the day before" and "the day after" need no waiting; the
 * janitor's own runs, with two daemons, are checked too.
 */
#include "world.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))
#define MARIE "marie@example.org"

/* The first column of the first row of a query made printf-style. */
static const char *
q(PGconn *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *
q(PGconn *db, const char *fmt, ...)
{
	char sql[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	return h_db_exec(db, sql);
}

/* As the superuser, with the helpers of schema core on the path, as the
 * entry points have them. */
static PGconn *
connect_core(const struct h_daemon *d)
{
	PGconn *db = h_db_connect(d->conninfo);

	h_db_exec(db, "SET search_path = public, core, api");
	return db;
}

/* Rows of mail_outbox matching a condition. */
static int
rows(PGconn *db, const char *where)
{
	return atoi(q(db, "SELECT count(*) FROM mail_outbox WHERE %s", where));
}

/* Fails, showing the outbox, unless exactly n rows match. */
#define EXPECT(db, n, where) expect_at(__FILE__, __LINE__, (db), (n), (where))
static void
expect_at(const char *file, int line, PGconn *db, int n, const char *where)
{
	int got = rows(db, where);

	if (got != n) {
		PGresult *r = PQexec(db, "SELECT kind, recipient, dedup_key, "
		    "subject, body FROM mail_outbox ORDER BY id");
		int i;

		for (i = 0; i < PQntuples(r); i++)
			fprintf(stderr, "%s %s %s %s\n%s\n", PQgetvalue(r, i, 0),
			    PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
			    PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
		PQclear(r);
		h_fail_at(file, line, "%d rows of mail_outbox where %s, not %d",
		    got, where, n);
	}
}

/* Every message of the composing job, run at "day + days" at hh:mm,
 * Europe/Paris, today being the database's. Returns how many it queued. */
static int
compose_at(PGconn *db, int days, int hh, int mm)
{
	return atoi(q(db, "SELECT core.mail_compose('{}', (date_trunc('day', "
	    "now() AT TIME ZONE 'Europe/Paris') + make_interval(days => %d, "
	    "hours => %d, mins => %d)) AT TIME ZONE 'Europe/Paris')", days, hh,
	    mm));
}

/* An RFC 3339 time: "day + days" at hh:00, Europe/Paris (static). */
static const char *
paris(PGconn *db, int days, int hh)
{
	static char buf[64];

	snprintf(buf, sizeof buf, "%s", q(db, "SELECT core.ts((date_trunc('day', "
	    "now() AT TIME ZONE 'Europe/Paris') + make_interval(days => %d, "
	    "hours => %d)) AT TIME ZONE 'Europe/Paris')", days, hh));
	return buf;
}

static json_int_t
offer_at(struct st_client *partner, const char *title, int seats,
    const char *starts)
{
	json_t *o = OK(partner, "offer.publish", "{s:s, s:s, s:s, s:s, s:s, "
	    "s:s, s:s, s:i, s:i}", "title", title, "category", "show",
	    "venue", "Grande salle", "city", "Billom", "address",
	    "2 place de la Halle", "starts_at", starts, "booking_deadline",
	    w_time(3600), "seats", seats, "max_per_booking", 4);
	json_int_t id = w_int(o, "id");

	json_decref(o);
	return id;
}

static void
test_content(void **state)
{
	struct h_daemon *d = h_daemon_start("mail_content", "[policy]\n"
	    "mail_interval = 3600\nmax_per_month = 10\n"
	    "max_upcoming_per_beneficiary = 10\n");
	PGconn *db = connect_core(d);
	struct world w;
	json_t *b, *bk, *e;
	json_int_t marie, paul, show, small, entry;
	char start[64], code[64], sql[512];

	(void)state;
	world_build(&w, d);

	/* The address and the consent: reminders need an address. */
	e = h_call_err(w.ref, "beneficiary.create", json_pack("{s:s, s:s, "
	    "s:b, s:b}", "first_name", "Léa", "last_name", "Roux", "consent", 1,
	    "reminders", 1), -32602, NULL);
	assert_string_equal(w_str(e, "field"), "reminders");
	json_decref(e);
	e = h_call_err(w.ref, "beneficiary.create", json_pack("{s:s, s:s, "
	    "s:b, s:s}", "first_name", "Léa", "last_name", "Roux", "consent", 1,
	    "email", "not an address"), -32602, NULL);
	assert_string_equal(w_str(e, "field"), "email");
	json_decref(e);
	b = OK(w.ref, "beneficiary.create", "{s:s, s:s, s:b, s:s, s:b}",
	    "first_name", "Marie", "last_name", "Dupont", "consent", 1, "email",
	    "Marie@Example.org", "reminders", 1);
	marie = w_int(b, "id");
	assert_string_equal(w_str(b, "email"), MARIE);
	assert_true(json_is_true(json_object_get(b, "reminders")));
	assert_non_null(w_str(b, "reminders_consent_at"));
	json_decref(b);
	paul = w_beneficiary(w.ref, "Paul", "Martin");
	b = OK(w.ref, "beneficiary.get", "{s:I}", "beneficiary_id", paul);
	assert_true(json_is_null(json_object_get(b, "email")));
	assert_true(json_is_false(json_object_get(b, "reminders")));
	json_decref(b);

	/* A show the day after tomorrow at 20:00 (Paris). Booking it sends
	 * Marie her voucher at once, in French then English, by first name;
	 * Paul gave no address and gets nothing. */
	snprintf(start, sizeof start, "%s", paris(db, 2, 20));
	show = offer_at(w.partner, "Cyrano", 10, start);
	bk = w_book(w.ref, show, marie, 2);
	snprintf(code, sizeof code, "%s", w_str(bk, "code"));
	json_decref(bk);
	json_decref(w_book(w.ref, show, paul, 1));
	EXPECT(db, 1, "kind = 'voucher'");
	snprintf(sql, sizeof sql, "kind = 'voucher' AND recipient = '" MARIE
	    "' AND body LIKE '%%Bonjour Marie,%%' AND body LIKE '%%Hello Marie,%%'"
	    " AND strpos(body, 'Bonjour') < strpos(body, 'Hello')"
	    " AND body LIKE '%%Cyrano%%' AND body LIKE '%%20 h 00%%'"
	    " AND body LIKE '%%at 20:00%%' AND body LIKE '%%Places : 2%%'"
	    " AND body LIKE '%%%s%%' AND body NOT LIKE '%%Dupont%%'"
	    " AND subject LIKE 'Votre place est réservée / Your seat is booked%%'",
	    code);
	EXPECT(db, 1, sql);

	/* Before policy.mail_hour (7:00) tomorrow, nothing is due. */
	assert_int_equal(compose_at(db, 1, 6, 30), 0);
	/* At 8:00 tomorrow: the referent's digest, the venue's guest list,
	 * Marie's reminder. Nobody appears by full name. */
	assert_int_equal(compose_at(db, 1, 8, 0), 3);
	EXPECT(db, 1, "kind = 'referent_digest' AND recipient = '"
	    W_REF_EMAIL "' AND body LIKE '%Marie D., 2 places%'"
	    " AND body LIKE '%Paul M., 1 place%' AND body LIKE '%Paul M., 1 seat%'"
	    " AND body LIKE '%« Cyrano »%' AND body NOT LIKE '%Dupont%'"
	    " AND body NOT LIKE '%Martin%'");
	EXPECT(db, 1, "kind = 'guest_list' AND recipient = '" W_PARTNER_EMAIL
	    "' AND body LIKE '%Marie D., 2 places (%' AND body LIKE '%Paul M.%'"
	    " AND body LIKE '%(3 places)%' AND body NOT LIKE '%Dupont%'");
	snprintf(sql, sizeof sql, "kind = 'reminder' AND recipient = '" MARIE
	    "' AND body LIKE '%%Bonjour Marie,%%' AND body LIKE '%%demain%%'"
	    " AND body LIKE '%%%s%%'", code);
	EXPECT(db, 1, sql);
	/* Nobody else: not the other structure's referent, not the other
	 * venue, not Paul. */
	EXPECT(db, 4, "true");
	/* Run again, or by another daemon: nothing twice. */
	assert_int_equal(compose_at(db, 1, 9, 0), 0);
	/* The day after the show, the venue is asked to close attendance;
	 * the message counts, it names nobody. */
	assert_int_equal(compose_at(db, 3, 8, 0), 1);
	EXPECT(db, 1, "kind = 'attendance_to_close' AND recipient = '"
	    W_PARTNER_EMAIL "' AND body LIKE '%2 réservation(s) (3 places)%'"
	    " AND body NOT LIKE '%Marie%'");

	/* The partner moves the show a day later: the referent hears of it
	 * at once, old and new times, their people by first name. */
	json_decref(OK(w.partner, "offer.update", "{s:I, s:s}", "offer_id",
	    show, "starts_at", paris(db, 3, 20)));
	EXPECT(db, 1, "kind = 'offer_moved' AND recipient = '" W_REF_EMAIL
	    "' AND body LIKE '%Désormais : « Cyrano »%' AND body LIKE '%Marie D.%'"
	    " AND body LIKE '%Before: \"Cyrano\"%'");
	/* A change of anything else tells nobody. */
	json_decref(OK(w.partner, "offer.update", "{s:I, s:s}", "offer_id",
	    show, "description", "Avec entracte"));
	EXPECT(db, 1, "kind = 'offer_moved'");
	/* Marie's reminder comes again for the new day. */
	assert_int_equal(compose_at(db, 2, 8, 0), 3);
	EXPECT(db, 2, "kind = 'reminder'");

	/* A waiting-list hold about to expire (policy.mail_hold_notice, 2 h):
	 * Paul waits for a one-seat show Marie holds; she cancels; the seat
	 * is offered to Paul. */
	small = offer_at(w.partner, "Le Misanthrope", 1, paris(db, 5, 20));
	bk = w_book(w.ref, small, marie, 1);
	entry = w_int(bk, "id");
	json_decref(bk);
	json_decref(OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id",
	    small, "beneficiary_id", paul, "seats", 1));
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id", entry));
	assert_string_equal(q(db, "SELECT status FROM waitlist_entries "
	    "WHERE beneficiary_id = %lld", (long long)paul), "offered");
	/* The hold lasts policy.waitlist_hold (24 h; the booking deadline
	 * no longer ends it, docs/booking-rules.md): not within a notice of
	 * 2 hours now, within it 23 hours later. */
	assert_int_equal(atoi(q(db, "SELECT core.mail_holds('{}', now())")), 0);
	assert_int_equal(atoi(q(db, "SELECT core.mail_holds('{}', "
	    "now() + interval '23 hours')")), 1);
	EXPECT(db, 1, "kind = 'hold_expiring' AND recipient = '" W_REF_EMAIL
	    "' AND body LIKE '%Paul M. (1 place)%' AND body LIKE '%Le Misanthrope%'");

	/* The partner cancels: one notice to the referent, both people. */
	json_decref(OK(w.partner, "offer.cancel", "{s:I, s:s}", "offer_id", show,
	    "reason", "Comédien malade"));
	EXPECT(db, 1, "kind = 'offer_cancelled' AND recipient = '" W_REF_EMAIL
	    "' AND body LIKE '%Marie D., 2 places%' AND body LIKE '%Paul M.%'"
	    " AND body LIKE '%Motif : Comédien malade%'");
	EXPECT(db, 0, "recipient IN ('" W_REF2_EMAIL "', '" W_PARTNER2_EMAIL
	    "')");
	/* Every staff message, of each of the six kinds, ends with the
	 * line telling how to stop it; a beneficiary's never has it. */
	assert_string_equal(q(db, "SELECT count(DISTINCT kind) FROM "
	    "mail_outbox WHERE kind NOT IN ('voucher', 'reminder')"), "6");
	EXPECT(db, 0, "kind NOT IN ('voucher', 'reminder') AND body NOT LIKE "
	    "'%' || E'\\nNe plus recevoir ces messages (' || kind || ') : "
	    "« Mon compte » sur le guichet web, ou strapontin auth "
	    "mail-preferences. / To stop them: \"My account\" on the web desk, "
	    "or strapontin auth mail-preferences.' || E'\\n'");
	EXPECT(db, 0, "kind IN ('voucher', 'reminder') AND body LIKE "
	    "'%Mon compte%'");

	/* Taking back the consent removes what was not sent yet; erasing
	 * the person wipes the address and every message to it. */
	h_db_exec(db, "UPDATE mail_outbox SET sent_at = now() "
	    "WHERE kind = 'voucher'");
	b = OK(w.ref, "beneficiary.update", "{s:I, s:b}", "beneficiary_id",
	    marie, "reminders", 0);
	assert_true(json_is_false(json_object_get(b, "reminders")));
	assert_string_equal(w_str(b, "email"), MARIE);
	json_decref(b);
	EXPECT(db, 0, "kind = 'reminder'");
	EXPECT(db, 2, "kind = 'voucher'");
	json_decref(OK(w.ref, "beneficiary.erase", "{s:I}", "beneficiary_id",
	    marie));
	EXPECT(db, 0, "recipient = '" MARIE "'");
	assert_string_equal(q(db, "SELECT count(*) FROM beneficiaries "
	    "WHERE email IS NOT NULL OR reminders_consent_at IS NOT NULL"), "0");

	/* A new address drops a consent given for the old one. */
	b = OK(w.ref, "beneficiary.update", "{s:I, s:s, s:b}", "beneficiary_id",
	    paul, "email", "paul@example.org", "reminders", 1);
	assert_true(json_is_true(json_object_get(b, "reminders")));
	json_decref(b);
	b = OK(w.ref, "beneficiary.update", "{s:I, s:s}", "beneficiary_id",
	    paul, "email", "paul.m@example.org");
	assert_true(json_is_false(json_object_get(b, "reminders")));
	json_decref(b);
	b = OK(w.ref, "beneficiary.update", "{s:I, s:n}", "beneficiary_id",
	    paul, "email");
	assert_true(json_is_null(json_object_get(b, "email")));
	json_decref(b);

	world_close(&w);
	PQfinish(db);
	h_daemon_stop(d);
}

/* The dedup_key of a message of tomorrow's (Paris): the janitor may have
 * composed today's meanwhile. */
#define TOMORROW "dedup_key LIKE '%:' || ((now() AT TIME ZONE " \
	"'Europe/Paris')::date + 1)"

/* Staff turn notices off (docs/mail.md, "Turning notices off"): the
 * composing job and the triggers leave them out, core.mail_queue refuses
 * them, and turning them back on brings the next ones back. */
static void
test_preferences(void **state)
{
	struct h_daemon *d = h_daemon_start("mail_prefs", "[policy]\n"
	    "mail_interval = 3600\nmax_per_month = 10\n"
	    "max_upcoming_per_beneficiary = 10\n");
	PGconn *db = connect_core(d);
	struct world w;
	json_int_t show, other, a, b;
	json_t *r;

	(void)state;
	world_build(&w, d);
	/* The referent reads the desk every morning; the venue has a box
	 * office. Chosen before anything is booked: the janitor's own pass,
	 * at the real time, must find nothing for them either. */
	r = OK(w.ref, "auth.set_mail_preferences", "{s:[s,s]}", "mail_off",
	    "referent_digest", "offer_cancelled");
	assert_int_equal(json_array_size(json_object_get(r, "mail_off")), 2);
	json_decref(r);
	json_decref(OK(w.partner, "auth.set_mail_preferences", "{s:[s]}",
	    "mail_off", "guest_list"));
	a = w_beneficiary(w.ref, "Alice", "Bernard");
	b = w_beneficiary(w.ref2, "Bruno", "Charles");
	show = offer_at(w.partner, "Cyrano", 10, paris(db, 2, 20));
	other = offer_at(w.partner, "Tartuffe", 10, paris(db, 4, 20));
	json_decref(w_book(w.ref, show, a, 1));
	json_decref(w_book(w.ref2, show, b, 1));
	json_decref(w_book(w.ref, other, a, 1));
	json_decref(w_book(w.ref2, other, b, 1));

	/* Tomorrow at 8:00: the other referent's digest, nothing else. */
	assert_int_equal(compose_at(db, 1, 8, 0), 1);
	EXPECT(db, 1, "kind = 'referent_digest' AND recipient = '"
	    W_REF2_EMAIL "' AND " TOMORROW);
	EXPECT(db, 0, "recipient IN ('" W_REF_EMAIL "', '" W_PARTNER_EMAIL
	    "')");
	/* The backstop: queued by hand, refused all the same. */
	assert_string_equal(q(db, "SELECT coalesce(core.mail_queue('guest_list', "
	    "'" W_PARTNER_EMAIL "', 's', 'b', 'by-hand:1')::text, 'none')"),
	    "none");
	q(db, "SELECT core.mail_queue('attendance_to_close', '"
	    W_PARTNER_EMAIL "', 's', 'b', 'by-hand:2')");
	EXPECT(db, 1, "dedup_key LIKE 'by-hand:%'");
	h_db_exec(db, "DELETE FROM mail_outbox WHERE dedup_key LIKE 'by-hand:%'");

	/* A cancelled offer: the other referent hears of it, not this one. */
	json_decref(OK(w.partner, "offer.cancel", "{s:I, s:s}", "offer_id",
	    other, "reason", "Salle inondée"));
	EXPECT(db, 1, "kind = 'offer_cancelled'");
	EXPECT(db, 1, "kind = 'offer_cancelled' AND recipient = '"
	    W_REF2_EMAIL "'");

	/* Back on: the same hour's run now queues what it left out. */
	r = OK(w.ref, "auth.set_mail_preferences", "{s:[]}", "mail_off");
	assert_int_equal(json_array_size(json_object_get(r, "mail_off")), 0);
	json_decref(r);
	json_decref(OK(w.partner, "auth.set_mail_preferences", "{s:[]}",
	    "mail_off"));
	assert_int_equal(compose_at(db, 1, 9, 0), 2);
	EXPECT(db, 1, "kind = 'referent_digest' AND recipient = '"
	    W_REF_EMAIL "' AND " TOMORROW " AND body LIKE '%Alice B.%' AND "
	    "body NOT LIKE '%Bruno%'");
	EXPECT(db, 1, "kind = 'guest_list' AND recipient = '" W_PARTNER_EMAIL
	    "' AND body LIKE '%(guest_list) : « Mon compte »%'");

	world_close(&w);
	PQfinish(db);
	h_daemon_stop(d);
}

/* Two daemons compose together (policy.mail_interval = 1 s): each
 * message is queued once. Then two compositions racing on one instant,
 * in two transactions, queue it once too. */
static void
test_two_daemons(void **state)
{
	const char *ini = "[policy]\nmail_interval = 1\nwaitlist_hold = 1h\n";
	struct h_daemon *d = h_daemon_start("mail_two", ini);
	struct h_daemon *d2 = h_daemon_start_same_db(d, "mail_two_b", ini);
	PGconn *db = connect_core(d);
	PGconn *c1 = connect_core(d), *c2 = connect_core(d);
	struct world w;
	json_t *bk;
	json_int_t a, b, offer, booking;
	long long until;
	PGresult *r;

	(void)state;
	world_build(&w, d);
	a = w_beneficiary(w.ref, "Alice", "Bernard");
	b = w_beneficiary(w.ref, "Bruno", "Charles");
	offer = w_offer(w.partner, 1, 1, NULL);
	bk = w_book(w.ref, offer, a, 1);
	booking = w_int(bk, "id");
	json_decref(bk);
	json_decref(OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id",
	    offer, "beneficiary_id", b, "seats", 1));
	/* The hold lasts 1 h, under the 2 h notice: due at once. */
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id", booking));
	until = h_now_ms() + 20000LL * h_timeout_scale();
	while (rows(db, "kind = 'hold_expiring'") == 0 && h_now_ms() < until)
		h_sleep_ms(100);
	EXPECT(db, 1, "kind = 'hold_expiring' AND body LIKE '%Bruno C.%'");

	/* The race: Alice goes to a show the day after tomorrow. c1
	 * composes tomorrow's digest and guest list; c2's composition of the
	 * same instant waits on c1's uncommitted rows, then finds them and
	 * queues nothing. */
	offer = offer_at(w.partner, "Tartuffe", 5, paris(db, 2, 20));
	json_decref(w_book(w.ref, offer, a, 1));
	h_db_exec(c1, "BEGIN");
	h_db_exec(c2, "BEGIN");
	assert_int_equal(compose_at(c1, 1, 8, 0), 2);
	if (!PQsendQuery(c2, "SELECT core.mail_compose('{}', (date_trunc('day', "
	    "now() AT TIME ZONE 'Europe/Paris') + interval '1 day 8 hours') "
	    "AT TIME ZONE 'Europe/Paris')"))
		h_fail("send: %s", PQerrorMessage(c2));
	h_db_exec(c1, "COMMIT");
	r = PQgetResult(c2);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	while ((r = PQgetResult(c2)) != NULL)
		PQclear(r);
	h_db_exec(c2, "COMMIT");
	/* The daemons, still at it, queued nothing more meanwhile. */
	EXPECT(db, 1, "kind = 'hold_expiring'");
	EXPECT(db, 1, "kind = 'guest_list'");
	EXPECT(db, 1, "kind = 'referent_digest' AND dedup_key LIKE '%:' || "
	    "((now() AT TIME ZONE 'Europe/Paris')::date + 1)");
	assert_true(h_log_contains(d, "mail sweep: ") ||
	    h_log_contains(d2, "mail sweep: "));

	world_close(&w);
	PQfinish(c1);
	PQfinish(c2);
	PQfinish(db);
	h_daemon_stop(d2);
	h_daemon_stop(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content),
		cmocka_unit_test(test_preferences),
		cmocka_unit_test(test_two_daemons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
