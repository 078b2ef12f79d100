/*
 * Fair waiting lists (docs/waitlist.md) against a real daemon:
 *
 *   - a waiting list is served by the person's score (core.person_history
 *     over the window before the offer's start), then by waiting time,
 *     whatever the order people joined in; positions say so; the round
 *     kept in waitlist_rounds is replayed by the query of docs/waitlist.md
 *     and agrees;
 *   - after a permanence's draw, the wishes that got nothing join the
 *     waiting list of their first choice (of every choice refused as sold
 *     out with waitlist_all), in draw order; a choice refused for another
 *     reason is not joined;
 *   - claims after the draw take what is left of the blocks while the desk
 *     is open (opened before the draw, not closed yet), and only then.
 */
#include "world.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

#define LOOSE_CAPS \
	"[policy]\nmax_upcoming_per_beneficiary = 50\nmax_per_month = 50\n"

static PGconn *db;

/* A number read from the database (db, this file's connection). */
#define sql_int(...) h_db_int(db, __VA_ARGS__)

static json_int_t
offer_in(struct st_client *partner, int seats, long long days)
{
	return w_offer(partner, seats, 2, w_iso(time(NULL) + days * W_DAY));
}

/* One past outing of ben, ten days ago: booked, checked in (attended) or
 * not (a no-show once the attendance is closed). */
static void
past_outing(struct world *w, json_int_t ben, bool attended)
{
	json_int_t o = offer_in(w->partner, 5, 60);
	json_t *bk = w_book(w->ref, o, ben, 1);
	time_t at = time(NULL) - 10 * W_DAY;
	char sql[256];

	if (attended)
		json_decref(OK(w->partner, "ticket.check_in", "{s:s}", "code",
		    w_str(bk, "code")));
	json_decref(bk);
	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = '%s', "
	    "booking_deadline = '%s' WHERE id = %lld", w_iso(at),
	    w_iso(at - 2 * W_DAY), (long long)o);
	h_db_exec(db, sql);
	json_decref(OK(w->partner, "offer.close_attendance", "{s:I}",
	    "offer_id", o));
}

static json_int_t
join(struct world *w, json_int_t o, json_int_t ben)
{
	json_t *r = OK(w->ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id",
	    o, "beneficiary_id", ben, "seats", 1);
	json_int_t id = w_int(r, "id");

	json_decref(r);
	return id;
}

/* The waiting entry of ben on offer o, from waitlist.list (new ref). */
static json_t *
entry_of(struct world *w, json_int_t o, json_int_t ben)
{
	json_t *r = OK(w->ref, "waitlist.list", "{s:I, s:I}", "offer_id", o,
	    "beneficiary_id", ben);
	json_t *items = json_object_get(r, "items");
	json_t *e;

	if (json_array_size(items) != 1)
		h_fail("entries of %lld on %lld: %s", (long long)ben,
		    (long long)o, h_json_str(r));
	e = json_incref(json_array_get(items, 0));
	json_decref(r);
	return e;
}

static json_int_t
position_of(struct world *w, json_int_t o, json_int_t ben)
{
	json_t *e = entry_of(w, o, ben);
	json_int_t n = json_is_integer(json_object_get(e, "position"))
	    ? w_int(e, "position") : 0;

	json_decref(e);
	return n;
}

static const char *
status_of(struct world *w, json_int_t o, json_int_t ben)
{
	static char buf[32];
	json_t *e = entry_of(w, o, ben);

	snprintf(buf, sizeof buf, "%s", w_str(e, "status"));
	json_decref(e);
	return buf;
}

/* The replay query of docs/waitlist.md, "Replaying a round", for round
 * `rid`: one line per entry, "position stored_position score stored_score
 * outcome", the lines joined by ';'. */
static const char *
replay(long long rid)
{
	static char sql[4096];

	snprintf(sql, sizeof sql,
	    "WITH r AS (SELECT * FROM waitlist_rounds WHERE id = %lld),\n"
	    "q AS (\n"
	    "    SELECT (x->>'entry_id')::bigint AS entry_id, x->>'outcome' AS outcome,\n"
	    "           (x->>'score')::numeric AS stored_score, t.n AS stored_position\n"
	    "      FROM r, jsonb_array_elements(r.queue) WITH ORDINALITY AS t(x, n)),\n"
	    "h AS (\n"
	    "    SELECT q.entry_id, q.outcome, q.stored_score, q.stored_position,\n"
	    "           e.beneficiary_id, e.created_at,\n"
	    "           count(bk.id) FILTER (WHERE bk.status = 'attended') AS attended,\n"
	    "           count(bk.id) FILTER (WHERE bk.status = 'no_show') AS no_shows,\n"
	    "           count(bk.id) FILTER (WHERE bk.status = 'withdrawn_late') AS withdrawn_late\n"
	    "      FROM r CROSS JOIN q\n"
	    "      JOIN waitlist_entries e ON e.id = q.entry_id\n"
	    "      LEFT JOIN bookings bk ON bk.beneficiary_id = e.beneficiary_id\n"
	    "            AND bk.status IN ('attended', 'no_show', 'withdrawn_late')\n"
	    "            AND bk.offer_starts_at >= r.window_from\n"
	    "            AND bk.offer_starts_at < r.window_to\n"
	    "     GROUP BY 1, 2, 3, 4, 5, 6),\n"
	    "s AS (\n"
	    "    SELECT h.*, trim_scale(h.attended + r.no_show_weight * h.no_shows\n"
	    "               + r.withdrawn_late_weight * h.withdrawn_late) AS score\n"
	    "      FROM h, r)\n"
	    "SELECT string_agg(concat_ws(' ', position, stored_position, score,\n"
	    "                            stored_score, outcome), ';' ORDER BY position)\n"
	    "  FROM (SELECT row_number() OVER (ORDER BY score, created_at, entry_id)\n"
	    "                   AS position, * FROM s) x",
	    rid);
	return h_db_exec(db, sql);
}

static void
finish(struct world *w)
{
	struct h_daemon *d = w->d;

	world_close(w);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d), 0);
}

/* ------------------------------------------------- the queue's order */

static void
test_order_by_score(void **state)
{
	struct world w;
	json_int_t o, x, a, b, c, d;
	json_t *bk, *e;
	long long rid;
	(void)state;

	world_build(&w, h_daemon_start("fair_order", LOOSE_CAPS));
	db = h_db_connect(w.d->conninfo);
	x = w_beneficiary(w.ref, "Xavier", "Place");
	a = w_beneficiary(w.ref, "Aline", "Sortie");     /* 1 outing: 1 */
	b = w_beneficiary(w.ref, "Bruno", "Absent");     /* 1 no-show: 2 */
	c = w_beneficiary(w.ref, "Chloé", "Jamais");     /* none: 0 */
	d = w_beneficiary(w.ref, "Driss", "Jamais");     /* none: 0 */
	past_outing(&w, a, true);
	past_outing(&w, b, false);
	o = offer_in(w.partner, 1, 20);
	bk = w_book(w.ref, o, x, 1);
	/* they join in the order a, b, c, d */
	join(&w, o, a);
	join(&w, o, b);
	join(&w, o, c);
	join(&w, o, d);
	/* served as c, d (score 0, by waiting time), a (1), b (2) */
	assert_int_equal(position_of(&w, o, c), 1);
	assert_int_equal(position_of(&w, o, d), 2);
	assert_int_equal(position_of(&w, o, a), 3);
	assert_int_equal(position_of(&w, o, b), 4);
	e = entry_of(&w, o, b);
	assert_int_equal(w_int(e, "no_shows"), 1);
	assert_int_equal(w_int(e, "score"), 2);
	assert_string_equal(w_str(e, "source"), "join");
	json_decref(e);

	/* a seat comes back: c is offered it, not a who joined first */
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    w_int(bk, "id")));
	json_decref(bk);
	assert_string_equal(status_of(&w, o, c), "offered");
	assert_string_equal(status_of(&w, o, a), "waiting");
	assert_int_equal(position_of(&w, o, d), 1);
	assert_int_equal(position_of(&w, o, a), 2);

	/* the round is kept and its replay agrees with it */
	rid = sql_int("SELECT max(id) FROM waitlist_rounds WHERE offer_id = %lld",
	    (long long)o);
	assert_int_equal(sql_int("SELECT count(*) FROM waitlist_rounds "
	    "WHERE offer_id = %lld", (long long)o), 1);
	assert_string_equal(replay(rid),
	    "1 1 0 0 offered;2 2 0 0 behind;3 3 1 1 behind;4 4 2 2 behind");

	/* c takes the seats, then leaves them: d is next, then a */
	bk = OK(w.ref, "waitlist.accept", "{s:I}", "entry_id",
	    sql_int("SELECT id FROM waitlist_entries WHERE beneficiary_id = "
	    "%lld AND offer_id = %lld", (long long)c, (long long)o));
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    w_int(bk, "id")));
	json_decref(bk);
	assert_string_equal(status_of(&w, o, d), "offered");
	assert_int_equal(position_of(&w, o, a), 1);
	assert_int_equal(position_of(&w, o, b), 2);

	finish(&w);
}

/* ------------------------------------------------ the draw's losers */

static json_int_t
wish(struct world *w, json_int_t pm, json_int_t ben, json_t *choices,
    bool all)
{
	json_t *r = h_call_ok(w->ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:o, s:i, s:b}", "permanence_id", pm, "beneficiary_id",
	    ben, "choices", choices, "seats", 1, "waitlist_all", all));
	json_int_t id = w_int(r, "id");

	assert_true(json_is_true(json_object_get(r, "waitlist_all")) == all);
	json_decref(r);
	return id;
}

/* The draw's result for ben. Borrowed. */
static json_t *
result_of(json_t *draw, json_int_t ben)
{
	json_t *x;
	size_t i;

	json_array_foreach(json_object_get(draw, "results"), i, x)
		if (w_int(x, "beneficiary_id") == ben)
			return x;
	h_fail("no result for %lld", (long long)ben);
	return NULL;
}

static void
test_draw_losers(void **state)
{
	struct world w;
	json_int_t o1, o2, o3, p1, p2, p3, p4, x, pm, pm2;
	json_t *draw, *r, *bk;
	long long pos2, pos3;
	(void)state;

	world_build(&w, h_daemon_start("fair_draw", LOOSE_CAPS));
	db = h_db_connect(w.d->conninfo);
	p1 = w_beneficiary(w.ref, "Paula", "Premiere");  /* score 0 */
	p2 = w_beneficiary(w.ref, "Pierre", "Second");   /* score 1 */
	p3 = w_beneficiary(w.ref, "Prisca", "Tierce");   /* score 1 */
	p4 = w_beneficiary(w.ref, "Paco", "Quatre");
	x = w_beneficiary(w.ref, "Xena", "Ailleurs");
	past_outing(&w, p2, true);
	past_outing(&w, p3, true);
	o1 = offer_in(w.partner, 1, 20);   /* one seat: p1 gets it */
	o2 = offer_in(w.partner, 1, 21);   /* held by p4 */
	o3 = offer_in(w.partner, 4, 22);   /* half in the block */
	json_decref(w_book(w.ref, o2, p4, 1));
	r = OK(w.ref, "permanence.schedule", "{s:s, s:s, s:s}", "starts_at",
	    w_iso(time(NULL) + 2 * W_DAY), "ends_at",
	    w_iso(time(NULL) + 2 * W_DAY + 7200), "title", "Permanence culture");
	pm = w_int(r, "id");
	json_decref(r);
	json_decref(OK(w.ref, "permanence.reserve_block", "{s:I, s:I, s:i}",
	    "permanence_id", pm, "offer_id", o3, "seats", 2));
	json_decref(OK(w.ref, "permanence.open", "{s:I}", "permanence_id",
	    pm));
	wish(&w, pm, p1, json_pack("[I]", o1), false);
	wish(&w, pm, p2, json_pack("[I, I]", o1, o2), false);
	wish(&w, pm, p3, json_pack("[I, I]", o1, o2), true);
	/* p4 holds o2: a duplicate, not a want of seats */
	wish(&w, pm, p4, json_pack("[I]", o2), true);

	draw = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm);
	assert_int_equal(w_int(draw, "granted"), 1);
	assert_int_equal(w_int(result_of(draw, p1), "offer_id"), o1);
	/* p2: its first choice only; p3: both, asked so; p4: none */
	r = json_pack("[I]", o1);
	assert_true(json_equal(json_object_get(result_of(draw, p2),
	    "waitlist"), r));
	json_decref(r);
	r = json_pack("[I, I]", o1, o2);
	assert_true(json_equal(json_object_get(result_of(draw, p3),
	    "waitlist"), r));
	json_decref(r);
	assert_string_equal(w_str(result_of(draw, p4), "reason"), "duplicate");
	assert_int_equal(json_array_size(json_object_get(result_of(draw, p4),
	    "waitlist")), 0);
	assert_int_equal(w_int(draw, "waitlisted"), 3);
	/* equal scores: the waiting list follows the draw's order */
	pos2 = w_int(result_of(draw, p2), "position");
	pos3 = w_int(result_of(draw, p3), "position");
	assert_int_equal(position_of(&w, o1, p2), pos2 < pos3 ? 1 : 2);
	assert_int_equal(position_of(&w, o1, p3), pos3 < pos2 ? 1 : 2);
	r = entry_of(&w, o1, p3);
	assert_string_equal(w_str(r, "source"), "draw");
	assert_int_equal(w_int(r, "score"), 1);
	assert_int_equal(w_int(r, "wish_id"), sql_int("SELECT id FROM wishes "
	    "WHERE beneficiary_id = %lld AND permanence_id = %lld",
	    (long long)p3, (long long)pm));
	json_decref(r);
	assert_int_equal(position_of(&w, o2, p3), 1);
	assert_int_equal(sql_int("SELECT count(*) FROM waitlist_entries "
	    "WHERE beneficiary_id = %lld", (long long)p4), 0);
	/* drawing again books and joins nothing more */
	r = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm);
	assert_true(json_equal(r, draw));
	json_decref(r);
	assert_int_equal(sql_int("SELECT count(*) FROM waitlist_entries"), 3);

	/* p1 gives the seat back: the first of the waiting list gets it */
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    w_int(result_of(draw, p1), "booking_id")));
	assert_string_equal(status_of(&w, o1, pos2 < pos3 ? p2 : p3),
	    "offered");
	json_decref(draw);

	/* after the draw the desk is still open: a walk-in takes what is
	 * left of the block */
	r = OK(w.ref, "permanence.get", "{s:I}", "permanence_id", pm);
	assert_string_equal(w_str(r, "state"), "drawn");
	assert_true(json_is_true(json_object_get(r, "claims_open")));
	json_decref(r);
	bk = OK(w.ref, "permanence.claim", "{s:I, s:I, s:I, s:i}",
	    "permanence_id", pm, "beneficiary_id", x, "offer_id", o3,
	    "seats", 2);
	assert_int_equal(w_int(bk, "from_block"), 2);
	json_decref(bk);
	json_decref(OK(w.ref, "permanence.close", "{s:I}", "permanence_id",
	    pm));
	json_decref(h_call_err(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm, "beneficiary_id", p4,
	    "offer_id", o3, "seats", 1), 409, "permanence_state"));

	/* drawn before its desk opened: no claims, and no opening after */
	r = OK(w.ref, "permanence.schedule", "{s:s, s:s, s:s}", "starts_at",
	    w_iso(time(NULL) + 3 * W_DAY), "ends_at",
	    w_iso(time(NULL) + 3 * W_DAY + 7200), "title", "Permanence sport");
	pm2 = w_int(r, "id");
	json_decref(r);
	r = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm2);
	json_decref(r);
	r = OK(w.ref, "permanence.get", "{s:I}", "permanence_id", pm2);
	assert_true(json_is_false(json_object_get(r, "claims_open")));
	json_decref(r);
	json_decref(h_call_err(w.ref, "permanence.claim", json_pack(
	    "{s:I, s:I, s:I, s:i}", "permanence_id", pm2, "beneficiary_id",
	    p4, "offer_id", o3, "seats", 1), 409, "permanence_state"));
	json_decref(h_call_err(w.ref, "permanence.open", json_pack("{s:I}",
	    "permanence_id", pm2), 409, "permanence_state"));

	finish(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_by_score),
		cmocka_unit_test(test_draw_losers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
