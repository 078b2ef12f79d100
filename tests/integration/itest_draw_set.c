/*
 * The set-based draw of schema 15 against the draw it replaced, on the
 * same permanence and the same seed: 300 wishes of 1 to 3 choices over 12
 * offers, with blocks, party sizes, a history of outings (scores), caps
 * (max_upcoming_per_beneficiary 2, max_per_month 1), duplicates and a
 * cancelled offer, so that every rule and every reason comes up.
 *
 * The draw of schema 4 (permanence_draw, which booked each wish through
 * permanence_book) is read from the copy of the released migrations
 * (tests/integration/old_sql/004_permanences.sql) and created beside the
 * new one as permanence_draw_old. Each draw runs
 * in a transaction that is rolled back, and what it left is written down:
 * the answer (order, scores, keys, ranks, offers, seats from the block,
 * reasons), the bookings, every offer's seat counts, every block's claimed
 * seats, the wishes, who was marked active, the report counters. The old
 * draw, the new one twice, and then the new one through the protocol must
 * all leave the same; docs/booking-rules.md invariant 1 holds after; the
 * partner gets one booking.created per offer, summing up its bookings.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

static PGconn *db;

#include "perm_invariants.inc"

#define NP 300          /* people, one wish each */
#define NO 12           /* offers */

static unsigned long long rng_state = 20261205;

static unsigned
rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rng_state >> 33) % n;
}

/* The first column of the first row of sql, which must succeed, as a
 * malloc'd string (caller frees). */
static char *
sql_text(const char *sql)
{
	PGresult *res = PQexec(db, sql);
	char *s;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		h_fail("SQL failed: %.200s: %s", sql, PQerrorMessage(db));
	}
	s = strdup(PQgetvalue(res, 0, 0));
	assert_non_null(s);
	PQclear(res);
	return s;
}

static void
sql_ok(const char *sql)
{
	PGresult *res = PQexec(db, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		h_fail("SQL failed: %.200s: %s", sql, PQerrorMessage(db));
	PQclear(res);
}

/* Schema 4's permanence_draw, from the source tree, as permanence_draw_old.
 * It takes the seed in its params. */
static void
create_old_draw(void)
{
	const char *head = "CREATE FUNCTION permanence_draw(p_token text";
	char path[1024], *text, *start, *end, *sql;
	FILE *f;
	long n;

	snprintf(path, sizeof path,
	    "%s/tests/integration/old_sql/004_permanences.sql",
	    h_env("ST_SOURCE_DIR"));
	f = fopen(path, "r");
	if (f == NULL)
		h_fail("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	start = strstr(text, head);
	assert_non_null(start);
	end = strstr(start, "\nEND $$;");
	assert_non_null(end);
	end[strlen("\nEND $$;")] = '\0';
	start += strlen("CREATE FUNCTION permanence_draw");
	sql = malloc(strlen(start) + 64);
	assert_non_null(sql);
	sprintf(sql, "CREATE FUNCTION permanence_draw_old%s", start);
	sql_ok(sql);
	free(sql);
	free(text);
}

/*
 * What a draw of permanence pm left, in the order that makes two draws
 * comparable line by line: booking ids and codes differ from one draw to
 * the next (a rolled-back sequence still moves), nothing else may.
 */
static char *
snapshot(json_int_t pm)
{
	char sql[4096];

	snprintf(sql, sizeof sql,
	    "WITH p AS (SELECT draw_result::jsonb AS j, drawn_at FROM permanences "
	    "  WHERE id = %lld) "
	    "SELECT concat_ws(E'\\n', "
	    " 'wishes ' || (j->>'wishes') || ' granted ' || (j->>'granted') "
	    "  || ' seed ' || (j->>'seed'), "
	    " 'offers ' || (j->'offers')::text, "
	    " (SELECT string_agg(concat_ws(' ', r->>'position', "
	    "   r->>'beneficiary_id', r->>'wish_id', r->>'choices', r->>'seats', "
	    "   r->>'attended', r->>'no_shows', r->>'score', r->>'lottery_key', "
	    "   coalesce(r->>'rank', '-'), coalesce(r->>'offer_id', '-'), "
	    "   coalesce(r->>'from_block', '-'), coalesce(r->>'reason', '-'), "
	    "   r->>'code' ~ '^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$', "
	    "   (r->>'booking_id') IS NOT NULL), E'\\n' "
	    "   ORDER BY (r->>'position')::int) "
	    "   FROM jsonb_array_elements(j->'results') r), "
	    " (SELECT string_agg(concat_ws(' ', 'booking', beneficiary_id, "
	    "   offer_id, seats, block_seats, status, source, created_by, "
	    "   structure_id, offer_starts_at, report_flags), E'\\n' "
	    "   ORDER BY id) FROM bookings WHERE permanence_id = %lld), "
	    " (SELECT 'seats ' || string_agg(concat_ws(' ', id, seats_taken, "
	    "   seats_held), ', ' ORDER BY id) FROM offers), "
	    " (SELECT 'blocks ' || string_agg(concat_ws(' ', permanence_id, "
	    "   offer_id, seats, claimed, returned_at), ', ' "
	    "   ORDER BY permanence_id, offer_id) FROM permanence_blocks), "
	    " (SELECT 'wish rows ' || string_agg(concat_ws(' ', w.id, "
	    "   w.draw_position, w.attended, w.no_shows, w.score, w.lottery_key, "
	    "   w.granted_rank, w.reason, b.offer_id, b.seats), ', ' "
	    "   ORDER BY w.id) FROM wishes w LEFT JOIN bookings b ON "
	    "   b.id = w.booking_id WHERE w.permanence_id = %lld), "
	    /* the wishes that got nothing join waiting lists since
	     * (docs/waitlist.md), which is activity: only the new draw does */
	    " (SELECT 'active ' || string_agg(id::text, ' ' ORDER BY id) "
	    "   FROM beneficiaries WHERE last_activity_at >= p.drawn_at "
	    "    AND id NOT IN (SELECT beneficiary_id FROM waitlist_entries "
	    "                    WHERE source = 'draw')), "
	    " (SELECT 'report offers ' || string_agg(t::text, ', ' "
	    "   ORDER BY t.offer_id) FROM report_offers t), "
	    " (SELECT 'report months ' || md5(string_agg(t::text, ', ' "
	    "   ORDER BY t::text)) FROM report_structure_months t)) "
	    "FROM p",
	    (long long)pm, (long long)pm, (long long)pm);
	return sql_text(sql);
}

/* The first line where a and b differ, for the failure message. */
static void
assert_same(const char *what, const char *a, const char *b)
{
	const char *pa = a, *pb = b;

	if (strcmp(a, b) == 0)
		return;
	for (;;) {
		const char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
		size_t la = ea ? (size_t)(ea - pa) : strlen(pa);
		size_t lb = eb ? (size_t)(eb - pb) : strlen(pb);

		if (la != lb || memcmp(pa, pb, la) != 0)
			h_fail("%s differ:\n  %.*s\n  %.*s", what, (int)la, pa,
			    (int)lb, pb);
		if (ea == NULL || eb == NULL)
			break;
		pa = ea + 1;
		pb = eb + 1;
	}
	h_fail("%s differ in length", what);
}

/* One draw in a transaction rolled back: call is the SQL of the draw. */
static char *
draw_rolled_back(json_int_t pm, const char *call)
{
	char *snap;

	sql_ok("BEGIN");
	sql_ok(call);
	snap = snapshot(pm);
	sql_ok("ROLLBACK");
	return snap;
}

static json_t *
next_event(struct st_client *c, const char *topic)
{
	struct st_error err;
	json_t *ev;

	while (st_next_event(c, &ev, 30000, &err) == ST_OK) {
		if (strcmp(w_str(ev, "topic"), topic) == 0)
			return ev;
		json_decref(ev);
	}
	h_fail("no %s event: %s", topic, st_strerror(&err));
	return NULL;
}

static void
test_same_as_before(void **state)
{
	/* the policy the daemon passes to the SQL, for the draws run here */
	const char *policy = "{\"max_upcoming_per_beneficiary\": 2, "
	    "\"max_per_month\": 1, \"no_show_weight\": 2.0, "
	    "\"history_window_days\": 365}";
	struct h_daemon *d;
	struct world w;
	struct st_client *slow;
	struct st_options opt;
	struct st_error err;
	json_int_t offers[NO], people[NP], pm;
	json_t *r;
	char sql[1024], *token, *seed, *old, *new1, *new2, *wire;
	char first[16];
	int i, k, offers_booked;

	(void)state;
	d = h_daemon_start("draw_set", "[policy]\n"
	    "max_upcoming_per_beneficiary = 2\nmax_per_month = 1\n");
	world_build(&w, d);
	db = h_db_connect(d->conninfo);
	/* The old draw and this test's SQL call helpers by their names, as
	 * the API's own search_path finds them. */
	sql_ok("SET search_path = public, core, api");

	pm = w_int(r = OK(w.ref, "permanence.schedule", "{s:s, s:s}",
	    "starts_at", w_time(2 * W_DAY), "ends_at",
	    w_time(2 * W_DAY + 7200)), "id");
	json_decref(r);
	/* Offers in three months; scarce seats; two take at most 2 a
	 * booking; blocks on every third. */
	for (k = 0; k < NO; k++) {
		int seats = 10 + (int)rnd(15);

		offers[k] = w_offer(w.partner, seats, k % 5 == 4 ? 2 : 3,
		    w_time((20 + 30 * (k % 3)) * W_DAY + k * 3600));
		if (k % 3 == 0)
			json_decref(OK(w.ref, "permanence.reserve_block",
			    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id",
			    offers[k], "seats", 1 + (int)rnd(seats / 3)));
	}
	for (i = 0; i < NP; i++) {
		snprintf(first, sizeof first, "S%03d", i);
		people[i] = w_beneficiary(w.ref, first, "Tirage");
	}
	/* Bookings already held: duplicates and caps (one outing a month,
	 * two upcoming). */
	for (i = 0; i < NP; i += 15)
		json_decref(w_book(w.ref, offers[rnd(NO)], people[i], 1));
	for (i = 4; i < NP; i += 37) {  /* none of the above */
		json_decref(w_book(w.ref, offers[(i + 1) % NO], people[i], 1));
		json_decref(w_book(w.ref, offers[(i + 5) % NO], people[i], 1));
	}
	/* A history: attended and missed outings in the window. */
	snprintf(sql, sizeof sql,
	    "WITH o AS (INSERT INTO offers (partner_id, title, category, venue, "
	    " city, starts_at, seats_total, booking_deadline) "
	    " VALUES (%lld, 'Avant', 'show', 'Salle', 'Brest', "
	    " now() - interval '40 days', 200, now() - interval '40 days') "
	    " RETURNING id, starts_at) "
	    "INSERT INTO bookings (offer_id, beneficiary_id, structure_id, seats, "
	    " code, status, checked_in_at) "
	    "SELECT o.id, b.id, b.structure_id, 1, ticket_code(), "
	    " CASE WHEN b.id %% 2 = 0 THEN 'attended' ELSE 'no_show' END, "
	    " CASE WHEN b.id %% 2 = 0 THEN o.starts_at END "
	    "FROM o, beneficiaries b WHERE b.id %% 5 < 2 "
	    " AND b.structure_id = %lld",
	    (long long)w.partner_id, (long long)w.structure_id);
	sql_ok(sql);
	for (i = 0; i < NP; i++) {
		json_t *choices = json_array();
		int n = 1 + (int)rnd(3), c[3], max = 3;

		for (k = 0; k < n; k++) {
			int j, dup;

			do {
				c[k] = (int)rnd(NO);
				for (dup = 0, j = 0; j < k; j++)
					dup |= c[j] == c[k];
			} while (dup);
			json_array_append_new(choices,
			    json_integer(offers[c[k]]));
			if (c[k] % 5 == 4)
				max = 2;
		}
		json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:o, s:i}",
		    "permanence_id", pm, "beneficiary_id", people[i], "choices",
		    choices, "seats", 1 + (int)rnd((unsigned)max)));
	}
	/* after the wishes: offer_cancelled for whoever chose it */
	json_decref(OK(w.partner, "offer.cancel", "{s:I, s:s}", "offer_id",
	    offers[7], "reason", "Relâche"));
	check_invariants();

	/* Everyone last seen two days ago: a booking writes a person's
	 * activity only when more than a day old (docs/privacy.md), the old
	 * draw at every booking, so both then mark the same people. */
	sql_ok("UPDATE beneficiaries SET last_activity_at = now() - "
	    "interval '2 days'");
	/* The old draw and the new, each rolled back, with the seed drawn
	 * at scheduling and the referent's session. */
	create_old_draw();
	snprintf(sql, sizeof sql, "SELECT draw_secret FROM permanences WHERE "
	    "id = %lld", (long long)pm);
	seed = sql_text(sql);
	token = sql_text("SELECT t.token_hash FROM tokens t JOIN users u ON "
	    "u.id = t.user_id WHERE u.email = '" W_REF_EMAIL "' AND "
	    "t.revoked_at IS NULL ORDER BY t.created_at DESC LIMIT 1");
	snprintf(sql, sizeof sql, "SELECT permanence_draw_old('%s', "
	    "'{\"permanence_id\": %lld, \"seed\": \"%s\"}', 'test', '%s')",
	    token, (long long)pm, seed, policy);
	old = draw_rolled_back(pm, sql);
	snprintf(sql, sizeof sql, "SELECT permanence_draw('%s', "
	    "'{\"permanence_id\": %lld}', 'test', '%s')", token,
	    (long long)pm, policy);
	new1 = draw_rolled_back(pm, sql);
	new2 = draw_rolled_back(pm, sql);
	/* every rule came up */
	assert_non_null(strstr(old, " sold_out "));
	assert_non_null(strstr(old, " limit_reached "));
	assert_non_null(strstr(old, " duplicate "));
	assert_non_null(strstr(old, " offer_cancelled "));
	assert_same("old and new draw", old, new1);
	assert_same("two new draws", new1, new2);

	/* Through the protocol, with the partner listening. */
	opt = h_options(d);
	opt.timeout_ms = 280000;
	slow = h_connect_opts(&opt, &err);
	if (slow == NULL)
		h_fail("connect: %s", st_strerror(&err));
	json_decref(OK(slow, "auth.login", "{s:s, s:s}", "email", W_REF_EMAIL,
	    "password", W_PASSWORD));
	json_decref(OK(w.partner, "events.subscribe", "{s:[s]}", "topics",
	    "booking.created"));
	r = OK(slow, "permanence.draw", "{s:I}", "permanence_id", pm);
	assert_string_equal(w_str(r, "seed"), seed);
	json_decref(r);
	wire = snapshot(pm);
	assert_same("rolled-back and real draw", new1, wire);
	check_invariants();
	/* second and third choices were granted too */
	snprintf(sql, sizeof sql, "SELECT count(DISTINCT granted_rank) FROM "
	    "wishes WHERE permanence_id = %lld", (long long)pm);
	assert_int_equal(atoi(h_db_exec(db, sql)), 3);

	/* One booking.created per offer that got bookings, in offer order,
	 * with that offer's count of bookings and seats. */
	snprintf(sql, sizeof sql, "SELECT count(DISTINCT offer_id) FROM "
	    "bookings WHERE permanence_id = %lld", (long long)pm);
	offers_booked = atoi(h_db_exec(db, sql));
	assert_true(offers_booked > 1);
	for (i = 0; i < offers_booked; i++) {
		json_t *ev = next_event(w.partner, "booking.created");
		json_t *data = json_object_get(ev, "data");
		json_int_t offer = w_int(data, "offer_id");

		assert_string_equal(w_str(data, "source"), "draw");
		assert_int_equal(w_int(data, "permanence_id"), pm);
		assert_null(json_object_get(data, "beneficiary_id"));
		snprintf(sql, sizeof sql, "SELECT count(*) || ' ' || sum(seats) "
		    "FROM bookings WHERE "
		    "permanence_id = %lld AND offer_id = %lld", (long long)pm,
		    (long long)offer);
		snprintf(first, sizeof first, "%lld %lld",
		    (long long)w_int(data, "bookings"),
		    (long long)w_int(data, "seats"));
		assert_string_equal(h_db_exec(db, sql), first);
		assert_int_equal(json_array_size(json_object_get(data,
		    "booking_ids")), w_int(data, "bookings"));
		snprintf(sql, sizeof sql, "SELECT count(DISTINCT offer_id) FROM "
		    "bookings WHERE permanence_id = %lld AND offer_id <= %lld",
		    (long long)pm, (long long)offer);
		assert_int_equal(atoi(h_db_exec(db, sql)), i + 1);
		json_decref(ev);
	}

	free(old);
	free(new1);
	free(new2);
	free(wire);
	free(seed);
	free(token);
	st_close(slow);
	world_close(&w);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_before),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
