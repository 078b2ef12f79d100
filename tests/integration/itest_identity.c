/*
 * One person followed by two structures (docs/privacy.md, "One person,
 * several structures"): with the same identity key their records share
 * the caps, one live booking per offer, one place in a waiting list and
 * the fairness score, while neither structure sees the other's record;
 * the secret's rotation re-keys a person when their identity is given
 * again; two daemons booking the same person at once keep the caps.
 */
#include "world.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))
#define ERR(c, m, code, reason, ...) \
	json_decref(h_call_err((c), (m), json_pack(__VA_ARGS__), (code), (reason)))

#define SECRET1 "first-secret-of-the-tests-0123456789abcdef"
#define SECRET2 "second-secret-of-the-tests-0123456789abcdef"

static char ini[2048];

static const char *
ini_with(const char *policy, const char *cur, const char *prev)
{
	int n = snprintf(ini, sizeof ini, "[policy]\n%s\n[privacy]\n"
	    "identity_secret_file = %s\n", policy, cur);

	if (prev != NULL)
		snprintf(ini + n, sizeof ini - (size_t)n,
		    "identity_previous_secret_file = %s\n", prev);
	return ini;
}

static json_t *
set_identity(struct st_client *ref, json_int_t b, const char *last,
    const char *first, const char *birth)
{
	return OK(ref, "beneficiary.set_identity", "{s:I, s:s, s:s, s:s, s:b}",
	    "beneficiary_id", b, "last_name", last, "first_name", first,
	    "birth_date", birth, "consent", 1);
}

static json_int_t
book_ok(struct st_client *ref, json_int_t o, json_int_t b)
{
	json_t *bk = w_book(ref, o, b, 1);
	json_int_t id = w_int(bk, "id");

	json_decref(bk);
	return id;
}

/* The keys of an answer, sorted, as one string: two answers of the same
 * shape tell nothing apart. */
static void
keys_of(const json_t *o, char *buf, size_t len)
{
	const char *k;
	json_t *v;

	buf[0] = '\0';
	json_object_foreach((json_t *)o, k, v) {
		strncat(buf, k, len - strlen(buf) - 2);
		strncat(buf, ",", len - strlen(buf) - 1);
	}
}

static bool
list_has_id(const json_t *page, json_int_t id)
{
	json_t *items = json_object_get(page, "items"), *it;
	size_t i;

	json_array_foreach(items, i, it)
		if (w_int(it, "id") == id)
			return true;
	return false;
}

static void
test_shared_rules_and_scoping(void **state)
{
	struct h_daemon *d = h_daemon_start("identity", ini_with(
	    "max_upcoming_per_beneficiary = 2\nmax_per_month = 10",
	    w_secret_file("identity1", SECRET1), NULL));
	struct world w;
	json_int_t a, b, c, dd, o1, o2, o3, o4, bk_a2, bk_a1;
	json_t *ra, *rb, *r, *data;
	char ka[512], kb[512];

	world_build(&w, d);
	a = w_beneficiary(w.ref, "Marie-Hélène", "Dupont");
	b = w_beneficiary(w.ref2, "Marie Helene", "DUPONT");
	c = w_beneficiary(w.ref2, "Paul", "Martin");
	dd = w_beneficiary(w.ref, "Denis", "Autre");

	/* Without consent, or with a name of nothing, no key. */
	ERR(w.ref, "beneficiary.set_identity", -32602, "invalid_params",
	    "{s:I, s:s, s:s, s:s, s:b}", "beneficiary_id", a, "last_name",
	    "Dupont", "first_name", "Marie", "birth_date", "1980-04-02",
	    "consent", 0);
	ERR(w.ref, "beneficiary.set_identity", -32602, "invalid_params",
	    "{s:I, s:s, s:s, s:s, s:b}", "beneficiary_id", a, "last_name",
	    " - ", "first_name", "Marie", "birth_date", "1980-04-02",
	    "consent", 1);
	/* Another structure's person is not found, key or no key. */
	ERR(w.ref2, "beneficiary.set_identity", 404, "not_found",
	    "{s:I, s:s, s:s, s:s, s:b}", "beneficiary_id", a, "last_name",
	    "Dupont", "first_name", "Marie-Hélène", "birth_date",
	    "1980-04-02", "consent", 1);

	/* The same person, typed differently in each structure: the first
	 * answer and the second (which matches) have the same shape. */
	ra = set_identity(w.ref, a, "Dupont", "Marie-Hélène", "1980-04-02");
	rb = set_identity(w.ref2, b, "DUPONT ", "marie helene", "1980-04-02");
	keys_of(ra, ka, sizeof ka);
	keys_of(rb, kb, sizeof kb);
	assert_string_equal(ka, kb);
	assert_non_null(w_str(rb, "identity_set_at"));
	assert_null(json_object_get(rb, "identity_key"));
	json_decref(ra);
	json_decref(rb);
	/* Paul, same name, another birth date: another person. */
	json_decref(set_identity(w.ref2, c, "Dupont", "Marie-Hélène",
	    "1980-04-03"));

	/* One live booking per offer across structures. */
	o1 = w_offer(w.partner, 10, 2, NULL);
	o2 = w_offer(w.partner, 10, 2, NULL);
	o3 = w_offer(w.partner, 10, 2, NULL);
	bk_a1 = book_ok(w.ref, o1, a);
	data = h_call_err(w.ref2, "booking.create", json_pack("{s:I, s:I, s:i}",
	    "offer_id", o1, "beneficiary_id", b, "seats", 1), 409, "duplicate");
	/* the refusal names nobody of the other structure */
	assert_null(json_object_get(data, "beneficiary_id"));
	assert_null(json_object_get(data, "booking_id"));
	assert_null(json_object_get(data, "structure_id"));
	json_decref(data);
	book_ok(w.ref2, o1, c);

	/* Shared caps: two upcoming outings for the person, whoever booked. */
	bk_a2 = book_ok(w.ref, o2, a);
	ERR(w.ref2, "booking.create", 409, "limit_reached", "{s:I, s:I, s:i}",
	    "offer_id", o3, "beneficiary_id", b, "seats", 1);
	book_ok(w.ref2, o3, c);

	/* Strict scoping: the other structure sees nothing of A. */
	ERR(w.ref2, "beneficiary.get", 404, "not_found", "{s:I}",
	    "beneficiary_id", a);
	ERR(w.ref2, "booking.get", 404, "not_found", "{s:I}", "booking_id",
	    bk_a1);
	ERR(w.ref2, "beneficiary.clear_identity", 404, "not_found", "{s:I}",
	    "beneficiary_id", a);
	r = OK(w.ref2, "beneficiary.list", "{s:s}", "query", "dupont");
	assert_false(list_has_id(r, a));
	assert_true(list_has_id(r, b));
	json_decref(r);
	r = OK(w.ref2, "booking.list", "{s:I}", "offer_id", o1);
	assert_int_equal(json_array_size(json_object_get(r, "items")), 1);
	json_decref(r);
	r = OK(w.ref2, "beneficiary.export", "{s:I}", "beneficiary_id", b);
	assert_int_equal(json_array_size(json_object_get(r, "bookings")), 0);
	assert_null(strstr(h_json_str(r), "\"Marie-Hélène\""));
	json_decref(r);

	/* One place per person in a waiting list. */
	o4 = w_offer(w.partner, 1, 1, NULL);
	book_ok(w.ref, o4, dd);
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id", bk_a2));
	json_decref(OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id",
	    o4, "beneficiary_id", a, "seats", 1));
	ERR(w.ref2, "waitlist.join", 409, "duplicate", "{s:I, s:I, s:i}",
	    "offer_id", o4, "beneficiary_id", b, "seats", 1);

	/* A structure's own duplicate is its to see. */
	data = h_call_err(w.ref, "beneficiary.set_identity", json_pack(
	    "{s:I, s:s, s:s, s:s, s:b}", "beneficiary_id", dd, "last_name",
	    "Dupont", "first_name", "Marie Hélène", "birth_date", "1980-04-02",
	    "consent", 1), 409, "duplicate");
	assert_int_equal(w_int(data, "beneficiary_id"), a);
	json_decref(data);

	/* Consent withdrawn: B is on its own again. */
	r = OK(w.ref2, "beneficiary.clear_identity", "{s:I}", "beneficiary_id", b);
	assert_true(json_is_null(json_object_get(r, "identity_set_at")));
	json_decref(r);
	book_ok(w.ref2, o1, b);
	json_decref(OK(w.ref2, "waitlist.join", "{s:I, s:I, s:i}", "offer_id",
	    o4, "beneficiary_id", b, "seats", 1));

	/* Erasure forgets the key. */
	json_decref(OK(w.ref, "beneficiary.erase", "{s:I}", "beneficiary_id", a));
	{
		PGconn *db = h_db_connect(d->conninfo);
		char sql[200];

		snprintf(sql, sizeof sql, "SELECT identity_key IS NULL FROM "
		    "beneficiaries WHERE id = %lld", (long long)a);
		assert_string_equal(h_db_exec(db, sql), "t");
		PQfinish(db);
	}
	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* The score of the draw and of person_history() is the person's. */
static void
test_shared_score(void **state)
{
	struct h_daemon *d = h_daemon_start("identity_score", ini_with(
	    "no_show_weight = 2", w_secret_file("identity_score", SECRET1),
	    NULL));
	struct world w;
	PGconn *db = h_db_connect(d->conninfo);
	json_int_t a, b, e, past, o, pm;
	json_t *r, *res, *it;
	char sql[600];
	size_t i;

	world_build(&w, d);
	a = w_beneficiary(w.ref, "Jeanne", "Lefèvre");
	b = w_beneficiary(w.ref2, "JEANNE", "LEFEVRE");
	e = w_beneficiary(w.ref2, "Emma", "Seule");
	json_decref(set_identity(w.ref, a, "Lefèvre", "Jeanne", "1975-11-30"));
	json_decref(set_identity(w.ref2, b, "Lefevre", "Jeanne", "1975-11-30"));

	/* A went out last month, through the first structure. */
	past = w_offer(w.partner, 5, 2, NULL);
	book_ok(w.ref, past, a);
	snprintf(sql, sizeof sql,
	    "UPDATE offers SET starts_at = now() - interval '30 days', "
	    "booking_deadline = now() - interval '31 days' WHERE id = %lld;"
	    "UPDATE bookings SET status = 'attended', checked_in_at = now() - "
	    "interval '30 days', offer_starts_at = now() - interval '30 days' "
	    "WHERE offer_id = %lld", (long long)past, (long long)past);
	h_db_exec(db, sql);
	snprintf(sql, sizeof sql, "SET search_path = pg_catalog, public, core; "
	    "SELECT score FROM core.person_history(%lld, "
	    "now() - interval '1 year', now(), '{}')", (long long)b);
	assert_string_equal(h_db_exec(db, sql), "1");

	/* The second structure's draw: B counts A's outing, and goes
	 * after Emma, who never went out, for the one seat. */
	o = w_offer(w.partner, 1, 1, NULL);
	pm = w_int(r = OK(w.ref2, "permanence.schedule", "{s:s, s:s, s:s}",
	    "starts_at", w_time(2 * W_DAY), "ends_at",
	    w_time(2 * W_DAY + 7200), "title", "Permanence"), "id");
	json_decref(r);
	json_decref(OK(w.ref2, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", b, "choices", o, "seats", 1));
	json_decref(OK(w.ref2, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", e, "choices", o, "seats", 1));
	r = OK(w.ref2, "permanence.draw", "{s:I}", "permanence_id", pm);
	res = json_object_get(r, "results");
	assert_int_equal(json_array_size(res), 2);
	json_array_foreach(res, i, it) {
		if (w_int(it, "beneficiary_id") == b) {
			assert_int_equal(w_int(it, "attended"), 1);
			assert_int_equal(w_int(it, "position"), 2);
			assert_true(json_is_null(json_object_get(it, "booking_id")));
		} else {
			assert_int_equal(w_int(it, "beneficiary_id"), e);
			assert_int_equal(w_int(it, "attended"), 0);
			assert_int_equal(w_int(it, "position"), 1);
		}
	}
	/* nothing of A's structure or booking in the answer */
	snprintf(sql, sizeof sql, "\"beneficiary_id\":%lld", (long long)a);
	assert_null(strstr(h_json_str(r), sql));
	json_decref(r);

	world_close(&w);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* The report's demand for a caller over the next weeks. */
static json_int_t
demand_total(struct st_client *c)
{
	json_t *r = OK(c, "report.activity", "{s:s, s:s, s:s}", "from",
	    w_time(-W_DAY), "to", w_time(60 * W_DAY), "group_by", "month");
	json_int_t n = w_int(json_object_get(r, "total"), "demand");

	json_decref(r);
	return n;
}

static json_int_t
unmet_seats(struct st_client *c, json_int_t offer)
{
	json_t *r = OK(c, "offer.demand", "{s:I}", "offer_id", offer);
	json_int_t n = w_int(json_array_get(json_object_get(r, "items"), 0),
	    "unmet_seats");

	json_decref(r);
	return n;
}

/* One place in a waiting list, one request in the demand: the draw's
 * loser does not join a list that another record of the person is
 * already on, the person's two requests (a lost wish here, a waiting
 * entry there) are one unmet seat, and seats offered through either
 * record answer both. */
static void
test_one_place_one_request(void **state)
{
	struct h_daemon *d = h_daemon_start("identity_place", ini_with("",
	    w_secret_file("identity_place", SECRET1), NULL));
	struct world w;
	PGconn *db = h_db_connect(d->conninfo);
	json_int_t a, b, e, f, o, pm, held;
	json_t *r, *res, *it;
	char sql[400], want[64];
	size_t i;

	world_build(&w, d);
	a = w_beneficiary(w.ref, "Paul", "Marchand");
	f = w_beneficiary(w.ref, "Lucie", "Autre");
	b = w_beneficiary(w.ref2, "Paul", "MARCHAND");
	e = w_beneficiary(w.ref2, "Emma", "Seule");
	json_decref(set_identity(w.ref, a, "Marchand", "Paul", "1980-02-03"));
	json_decref(set_identity(w.ref2, b, "Marchand", "Paul", "1980-02-03"));

	/* The one seat is Lucie's; Paul waits for it through the first
	 * structure. */
	o = w_offer(w.partner, 1, 1, NULL);
	held = book_ok(w.ref, o, f);
	json_decref(OK(w.ref, "waitlist.join", "{s:I, s:I, s:i}", "offer_id",
	    o, "beneficiary_id", a, "seats", 1));

	/* The second structure's draw: no seat for anyone; Emma joins the
	 * list, Paul is on it already. */
	pm = w_int(r = OK(w.ref2, "permanence.schedule", "{s:s, s:s, s:s}",
	    "starts_at", w_time(2 * W_DAY), "ends_at",
	    w_time(2 * W_DAY + 7200), "title", "Permanence"), "id");
	json_decref(r);
	json_decref(OK(w.ref2, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", b, "choices", o, "seats", 1));
	json_decref(OK(w.ref2, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", e, "choices", o, "seats", 1));
	r = OK(w.ref2, "permanence.draw", "{s:I}", "permanence_id", pm);
	assert_int_equal(w_int(r, "waitlisted"), 1);
	res = json_object_get(r, "results");
	json_array_foreach(res, i, it) {
		json_t *wl = json_object_get(it, "waitlist");

		assert_true(json_is_null(json_object_get(it, "booking_id")));
		assert_int_equal(json_array_size(wl),
		    w_int(it, "beneficiary_id") == e ? 1 : 0);
	}
	json_decref(r);
	snprintf(sql, sizeof sql, "SELECT string_agg(beneficiary_id::text, ' '"
	    " ORDER BY id) FROM waitlist_entries WHERE offer_id = %lld AND "
	    "status = 'waiting'", (long long)o);
	snprintf(want, sizeof want, "%lld %lld", (long long)a, (long long)e);
	assert_string_equal(h_db_exec(db, sql), want);

	/* Paul's lost wish and his waiting entry: one request. */
	assert_int_equal(unmet_seats(w.partner, o), 2);
	assert_int_equal(demand_total(w.admin), 2);
	assert_int_equal(demand_total(w.ref), 1);
	assert_int_equal(demand_total(w.ref2), 2);

	/* Lucie cannot come: the seat is offered to Paul, who waited
	 * longest, through the first structure. Both structures see his
	 * request answered; Emma's is what is left. */
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id", held));
	snprintf(sql, sizeof sql, "SELECT beneficiary_id FROM waitlist_entries "
	    "WHERE offer_id = %lld AND status = 'offered'", (long long)o);
	snprintf(want, sizeof want, "%lld", (long long)a);
	assert_string_equal(h_db_exec(db, sql), want);
	assert_int_equal(unmet_seats(w.partner, o), 1);
	assert_int_equal(demand_total(w.admin), 1);
	assert_int_equal(demand_total(w.ref), 0);
	assert_int_equal(demand_total(w.ref2), 1);

	world_close(&w);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

static json_int_t
status_count(struct st_client *admin, const char *which)
{
	json_t *r = OK(admin, "identity.status", "{}");
	json_int_t n = w_int(r, which);

	json_decref(r);
	return n;
}

static void
reload(struct h_daemon *d, const char *conf)
{
	int before = h_log_count(d, "configuration reloaded");
	long long t0 = h_now_ms();

	h_daemon_write_conf(d, conf);
	assert_int_equal(h_daemon_signal(d, SIGHUP), 0);
	while (h_log_count(d, "configuration reloaded") == before) {
		if (h_now_ms() - t0 > 10000)
			h_fail("no reload");
		h_sleep_ms(50);
	}
}

/* Rotation: with the new secret and the previous one, giving a person's
 * identity again re-keys their other records; dropping the previous
 * secret afterwards changes nothing for them. */
static void
test_rotation(void **state)
{
	const char *s1 = w_secret_file("identity_rot1", SECRET1);
	const char *s2 = w_secret_file("identity_rot2", SECRET2);
	const char *policy = "max_upcoming_per_beneficiary = 5";
	struct h_daemon *d = h_daemon_start("identity_rot",
	    ini_with(policy, s1, NULL));
	struct world w;
	json_int_t a, b, o;
	json_t *r;

	world_build(&w, d);
	a = w_beneficiary(w.ref, "Ahmed", "Benali");
	b = w_beneficiary(w.ref2, "Ahmed", "Benali");
	json_decref(set_identity(w.ref, a, "Benali", "Ahmed", "1990-01-15"));
	assert_int_equal(status_count(w.admin, "current"), 1);

	reload(d, ini_with(policy, s2, s1));
	r = OK(w.admin, "identity.status", "{}");
	assert_int_equal(w_int(r, "previous"), 1);
	assert_int_equal(w_int(r, "current"), 0);
	assert_string_not_equal(w_str(r, "current_secret_id"),
	    w_str(r, "previous_secret_id"));
	json_decref(r);

	/* The other structure gives the identity: A is re-keyed with it. */
	json_decref(set_identity(w.ref2, b, "Benali", "Ahmed", "1990-01-15"));
	assert_int_equal(status_count(w.admin, "current"), 2);
	assert_int_equal(status_count(w.admin, "previous"), 0);

	/* The previous secret gone, they are still one person. */
	reload(d, ini_with(policy, s2, NULL));
	o = w_offer(w.partner, 5, 2, NULL);
	book_ok(w.ref2, o, b);
	ERR(w.ref, "booking.create", 409, "duplicate", "{s:I, s:I, s:i}",
	    "offer_id", o, "beneficiary_id", a, "seats", 1);
	assert_int_equal(status_count(w.admin, "other"), 0);

	world_close(&w);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* Two daemons, each booking one record of the same person as fast as it
 * can: the caps and one booking per offer hold across them. */
/* The answers of n requests sent at once: how many were granted; every
 * refusal must be `refusal`. */
static int
granted_of(struct st_client **who, const int64_t *ids, int n,
    const char *refusal)
{
	struct st_error err = {0};
	int i, granted = 0;

	for (i = 0; i < n; i++) {
		json_t *res = NULL;

		if (st_wait(who[i], ids[i], &res, &err) == ST_OK)
			granted++;
		else {
			assert_string_equal(err.reason, refusal);
			st_error_clear(&err);
		}
		json_decref(res);
	}
	return granted;
}

/* How many live bookings records a and b hold between them. */
static const char *
live_bookings(PGconn *db, json_int_t a, json_int_t b)
{
	char sql[300];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM bookings WHERE "
	    "beneficiary_id IN (%lld, %lld) AND status = 'confirmed'",
	    (long long)a, (long long)b);
	return h_db_exec(db, sql);
}

static void
test_two_daemons(void **state)
{
	const char *conf = ini_with("max_upcoming_per_beneficiary = 3\n"
	    "max_per_month = 100", w_secret_file("identity_two", SECRET1), NULL);
	struct h_daemon *d1 = h_daemon_start("identity_two1", conf);
	struct h_daemon *d2 = h_daemon_start_same_db(d1, "identity_two2", conf);
	struct world w;
	struct st_client *ref2;
	PGconn *db = h_db_connect(d1->conninfo);
	struct st_error err = {0};
	json_int_t a, b, offers[8];
	int64_t ids[16];
	struct st_client *who[16];
	int i, n = 0;
	char sql[300];

	world_build(&w, d1);
	ref2 = h_login(d2, W_REF2_EMAIL, W_PASSWORD);
	a = w_beneficiary(w.ref, "Lucie", "Moreau");
	b = w_beneficiary(ref2, "Lucie", "Moreau");
	json_decref(set_identity(w.ref, a, "Moreau", "Lucie", "2001-06-21"));
	json_decref(set_identity(ref2, b, "Moreau", "Lucie", "2001-06-21"));
	for (i = 0; i < 8; i++)
		offers[i] = w_offer(w.partner, 10, 2, NULL);

	/* Caps: A asks for offers 0-3 through the first daemon, B for
	 * offers 4-7 through the second, all at once. */
	for (i = 0; i < 8; i++) {
		json_t *p = json_pack("{s:I, s:I, s:i}", "offer_id", offers[i],
		    "beneficiary_id", i < 4 ? a : b, "seats", 1);

		who[n] = i < 4 ? w.ref : ref2;
		ids[n] = st_send(who[n], "booking.create", p, &err);
		json_decref(p);
		assert_true(ids[n++] > 0);
	}
	assert_int_equal(granted_of(who, ids, n, "limit_reached"), 3);
	assert_string_equal(live_bookings(db, a, b), "3");

	/* One booking per offer: both ask for the same offers at once. */
	h_db_exec(db, "UPDATE bookings SET status = 'cancelled', "
	    "cancelled_at = now() WHERE status = 'confirmed'");
	n = 0;
	for (i = 0; i < 6; i++) {
		json_t *p = json_pack("{s:I, s:I, s:i}", "offer_id",
		    offers[i / 2], "beneficiary_id", i % 2 ? b : a, "seats", 1);

		who[n] = i % 2 ? ref2 : w.ref;
		ids[n] = st_send(who[n], "booking.create", p, &err);
		json_decref(p);
		assert_true(ids[n++] > 0);
	}
	for (i = 0; i < n; i++) {
		json_t *res = NULL;

		if (st_wait(who[i], ids[i], &res, &err) != ST_OK) {
			assert_string_equal(err.reason, "duplicate");
			st_error_clear(&err);
		}
		json_decref(res);
	}
	for (i = 0; i < 3; i++) {
		snprintf(sql, sizeof sql, "SELECT count(*) FROM bookings "
		    "WHERE offer_id = %lld AND status = 'confirmed'",
		    (long long)offers[i]);
		assert_string_equal(h_db_exec(db, sql), "1");
	}

	/* Caps again, a group outing's way: A goes out with groups (one
	 * person each) to offers 0-3 through the first daemon while B books
	 * offers 4-7 through the second. The group takes the person's lock
	 * as a booking does. */
	h_db_exec(db, "UPDATE bookings SET status = 'cancelled', "
	    "cancelled_at = now() WHERE status = 'confirmed'");
	n = 0;
	for (i = 0; i < 8; i++) {
		json_t *p = i < 4 ?
		    json_pack("{s:I, s:[I]}", "offer_id", offers[i],
		    "beneficiary_ids", a) :
		    json_pack("{s:I, s:I, s:i}", "offer_id", offers[i],
		    "beneficiary_id", b, "seats", 1);

		who[n] = i < 4 ? w.ref : ref2;
		ids[n] = st_send(who[n], i < 4 ? "booking.create_group" :
		    "booking.create", p, &err);
		json_decref(p);
		assert_true(ids[n++] > 0);
	}
	assert_int_equal(granted_of(who, ids, n, "limit_reached"), 3);
	assert_string_equal(live_bookings(db, a, b), "3");

	st_close(ref2);
	world_close(&w);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_rules_and_scoping),
		cmocka_unit_test(test_shared_score),
		cmocka_unit_test(test_one_place_one_request),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_two_daemons),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
