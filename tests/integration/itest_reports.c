/*
 * report.activity (docs/protocol.md, sql/api/70_reports.sql,
 * docs/reports.md) against a network built through the API: offers of
 * three partners in several categories moved into the past, bookings of
 * four structures' people,
 * cancellations, late withdrawals, check-ins before and after an offer
 * moves, closed
 * attendance, a late arrival, a cancelled offer, a category change.
 *
 * Every group_by, for every scope (admin, both partners, both referents)
 * and for ranges that take both ways through the SQL (a whole calendar
 * year or month of the network reads the summary tables; anything else the
 * bookings), is checked against numbers this file computes by itself, in C,
 * from the raw rows of offers and bookings. The summaries the triggers keep
 * must also equal a recomputation from scratch (report_check()), including
 * after check-ins of the same people racing on several connections.
 * Unmet demand (docs/reports.md, "Demand") is checked the same way, from
 * waiting-list entries of every kind written into the network.
 * Group outings' staff seats (`staff_seats`) are cross-checked the same
 * way, from the raw booking_groups rows.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_OFFERS 64
#define MAX_BOOKINGS 1024
#define MAX_PEOPLE 64
#define MAX_GROUPS 128

static struct world W;
static PGconn *db;
static json_int_t structure3_id, structure4_id, partner3_id;

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

/* The id of a created object, which is then let go. */
static json_int_t
take_id(json_t *r)
{
	json_int_t id = w_int(r, "id");

	json_decref(r);
	return id;
}

/* ------------------------------------------------------ the raw rows */

struct raw_offer {
	long long id, partner, seats;
	long long starts;	/* epoch seconds */
	char category[16];
	bool cancelled;
};

struct raw_booking {
	long long id, person, structure, seats, offer;
	char status[24];
};

/* A request that may be unmet: a waiting-list entry, or a wish a draw
 * left without seats (for its first choice). */
struct raw_ask {
	long long offer, person, structure, seats;
	bool offered;	/* seats were offered to it once */
};

/* A group outing's staff seats (booking_groups). */
struct raw_group {
	long long offer, structure, staff;
	bool confirmed;
};

struct raw_named {
	long long id;
	char name[128];
	char territory[128];
};

static struct raw_offer ro[MAX_OFFERS];
static struct raw_booking rb[MAX_BOOKINGS];
static struct raw_named rs[16], rp[16];
static struct raw_ask ra[MAX_BOOKINGS];
static struct raw_group rg[16];
static int n_ro, n_rb, n_rs, n_rp, n_ra, n_rg;

static PGresult *
query(const char *sql)
{
	PGresult *res = PQexec(db, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		h_fail("%s: %s", sql, PQresultErrorMessage(res));
	return res;
}

static void
copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src);
}

/* Reads offers, bookings, structures and partners as they are now. */
static void
load_raw(void)
{
	PGresult *res;
	int i;

	res = query("SELECT id, partner_id, seats_total, "
	    "extract(epoch FROM starts_at)::bigint, category, "
	    "status = 'cancelled' FROM offers ORDER BY id");
	n_ro = PQntuples(res);
	assert_true(n_ro <= MAX_OFFERS);
	for (i = 0; i < n_ro; i++) {
		ro[i].id = atoll(PQgetvalue(res, i, 0));
		ro[i].partner = atoll(PQgetvalue(res, i, 1));
		ro[i].seats = atoll(PQgetvalue(res, i, 2));
		ro[i].starts = atoll(PQgetvalue(res, i, 3));
		copy(ro[i].category, sizeof ro[i].category, PQgetvalue(res, i, 4));
		ro[i].cancelled = PQgetvalue(res, i, 5)[0] == 't';
	}
	PQclear(res);
	res = query("SELECT id, beneficiary_id, structure_id, seats, offer_id, "
	    "status FROM bookings ORDER BY id");
	n_rb = PQntuples(res);
	assert_true(n_rb <= MAX_BOOKINGS);
	for (i = 0; i < n_rb; i++) {
		rb[i].id = atoll(PQgetvalue(res, i, 0));
		rb[i].person = atoll(PQgetvalue(res, i, 1));
		rb[i].structure = atoll(PQgetvalue(res, i, 2));
		rb[i].seats = atoll(PQgetvalue(res, i, 3));
		rb[i].offer = atoll(PQgetvalue(res, i, 4));
		copy(rb[i].status, sizeof rb[i].status, PQgetvalue(res, i, 5));
	}
	PQclear(res);
	res = query("SELECT e.offer_id, e.beneficiary_id, e.structure_id, "
	    "e.seats, e.offered_at IS NOT NULL FROM waitlist_entries e "
	    "UNION ALL SELECT w.choices[1], w.beneficiary_id, b.structure_id, "
	    "w.seats, false "
	    "FROM wishes w JOIN beneficiaries b ON b.id = w.beneficiary_id "
	    "WHERE w.replaced_at IS NULL AND w.draw_position IS NOT NULL "
	    "AND w.granted_rank IS NULL");
	n_ra = PQntuples(res);
	assert_true(n_ra <= MAX_BOOKINGS);
	for (i = 0; i < n_ra; i++) {
		ra[i].offer = atoll(PQgetvalue(res, i, 0));
		ra[i].person = atoll(PQgetvalue(res, i, 1));
		ra[i].structure = atoll(PQgetvalue(res, i, 2));
		ra[i].seats = atoll(PQgetvalue(res, i, 3));
		ra[i].offered = PQgetvalue(res, i, 4)[0] == 't';
	}
	PQclear(res);
	res = query("SELECT offer_id, structure_id, staff_seats, "
	    "status = 'confirmed' FROM booking_groups ORDER BY id");
	n_rg = PQntuples(res);
	assert_true(n_rg <= 16);
	for (i = 0; i < n_rg; i++) {
		rg[i].offer = atoll(PQgetvalue(res, i, 0));
		rg[i].structure = atoll(PQgetvalue(res, i, 1));
		rg[i].staff = atoll(PQgetvalue(res, i, 2));
		rg[i].confirmed = PQgetvalue(res, i, 3)[0] == 't';
	}
	PQclear(res);
	res = query("SELECT id, name, territory FROM structures ORDER BY id");
	n_rs = PQntuples(res);
	for (i = 0; i < n_rs; i++) {
		rs[i].id = atoll(PQgetvalue(res, i, 0));
		copy(rs[i].name, sizeof rs[i].name, PQgetvalue(res, i, 1));
		copy(rs[i].territory, sizeof rs[i].territory, PQgetvalue(res, i, 2));
	}
	PQclear(res);
	res = query("SELECT id, name FROM partners ORDER BY id");
	n_rp = PQntuples(res);
	for (i = 0; i < n_rp; i++) {
		rp[i].id = atoll(PQgetvalue(res, i, 0));
		copy(rp[i].name, sizeof rp[i].name, PQgetvalue(res, i, 1));
	}
	PQclear(res);
}

static const struct raw_offer *
offer_of(long long id)
{
	int i;

	for (i = 0; i < n_ro; i++)
		if (ro[i].id == id)
			return &ro[i];
	h_fail("no offer %lld", id);
}

static const struct raw_named *
named(const struct raw_named *t, int n, long long id)
{
	int i;

	for (i = 0; i < n; i++)
		if (t[i].id == id)
			return &t[i];
	h_fail("no row %lld", id);
}

/* ------------------------------------------------- expected numbers */

/* The calendar month of t in Paris, by the C library's own zone rules. */
static void
paris_month(long long t, char out[8])
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	if (strftime(out, 8, "%Y-%m", &tm) != 7)
		h_fail("no month for %lld", t);
}

static long long
epoch_of(const char *rfc3339)
{
	PGresult *res;
	char sql[128];
	long long t;

	snprintf(sql, sizeof sql, "SELECT extract(epoch FROM '%s'::timestamptz)"
	    "::bigint", rfc3339);
	res = query(sql);
	t = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return t;
}

enum who { ADMIN, PARTNER1, PARTNER2, REF1, REF2, NWHO };
static const char *const who_names[] = {"admin", "partner", "partner2",
    "referent", "referent2"};

struct group {
	char key[128];
	long long order_id;	/* partners, structures: id, else 0 */
	char order_name[128];
	bool has_offered;
	long long offered, booked, attended, no_shows, first, withdrawn, demand;
	long long staff;
	long long people[MAX_PEOPLE];
	int n_people;
};

struct expect {
	struct group g[MAX_GROUPS];
	int n;
	struct group total;
};

static bool offer_grouped(const char *by)
{
	return strcmp(by, "month") == 0 || strcmp(by, "partner") == 0 ||
	    strcmp(by, "category") == 0;
}

static void
key_of(const char *by, const struct raw_offer *o, long long structure,
    char *key, size_t len, long long *id, char *name)
{
	*id = 0;
	name[0] = '\0';
	if (strcmp(by, "month") == 0) {
		char m[8];

		paris_month(o->starts, m);
		copy(key, len, m);
	} else if (strcmp(by, "category") == 0)
		copy(key, len, o->category);
	else if (strcmp(by, "partner") == 0) {
		*id = o->partner;
		snprintf(key, len, "%lld", o->partner);
		copy(name, 128, named(rp, n_rp, o->partner)->name);
	} else if (strcmp(by, "structure") == 0) {
		*id = structure;
		snprintf(key, len, "%lld", structure);
		copy(name, 128, named(rs, n_rs, structure)->name);
	} else
		copy(key, len, named(rs, n_rs, structure)->territory);
}

static struct group *
group_for(struct expect *e, const char *key, long long id, const char *name)
{
	int i;

	for (i = 0; i < e->n; i++)
		if (strcmp(e->g[i].key, key) == 0)
			return &e->g[i];
	assert_true(e->n < MAX_GROUPS);
	memset(&e->g[e->n], 0, sizeof e->g[e->n]);
	copy(e->g[e->n].key, sizeof e->g[e->n].key, key);
	e->g[e->n].order_id = id;
	copy(e->g[e->n].order_name, sizeof e->g[e->n].order_name, name);
	return &e->g[e->n++];
}

static void
add_person(struct group *g, long long person)
{
	int i;

	for (i = 0; i < g->n_people; i++)
		if (g->people[i] == person)
			return;
	assert_true(g->n_people < MAX_PEOPLE);
	g->people[g->n_people++] = person;
}

static bool
is_live(const char *status)
{
	return strcmp(status, "confirmed") == 0 ||
	    strcmp(status, "attended") == 0 || strcmp(status, "no_show") == 0;
}

/* The person's first outing ever: their attended booking whose offer
 * started first (the lower booking id on a tie). */
static bool
is_first_outing(const struct raw_booking *b)
{
	const struct raw_offer *o = offer_of(b->offer);
	int i;

	if (strcmp(b->status, "attended") != 0)
		return false;
	for (i = 0; i < n_rb; i++) {
		const struct raw_offer *x;

		if (rb[i].person != b->person || rb[i].id == b->id ||
		    strcmp(rb[i].status, "attended") != 0)
			continue;
		x = offer_of(rb[i].offer);
		if (x->starts < o->starts ||
		    (x->starts == o->starts && rb[i].id < b->id))
			return false;
	}
	return true;
}

static int
cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	int c;

	if ((c = strcmp(x->order_name, y->order_name)) != 0)
		return c;
	if (x->order_id != y->order_id)
		return x->order_id < y->order_id ? -1 : 1;
	return strcmp(x->key, y->key);
}

static json_t *
group_json(const struct group *g, const char *by, bool item)
{
	json_t *o = json_object();

	if (item) {
		if (g->order_id != 0) {
			json_object_set_new(o, "key", json_integer(g->order_id));
			json_object_set_new(o, "name", json_string(g->order_name));
		} else
			json_object_set_new(o, "key", json_string(g->key));
	}
	json_object_set_new(o, "seats_offered", item && !offer_grouped(by) ?
	    json_null() : json_integer(g->offered));
	json_object_set_new(o, "seats_booked", json_integer(g->booked));
	json_object_set_new(o, "seats_attended", json_integer(g->attended));
	json_object_set_new(o, "no_shows", json_integer(g->no_shows));
	json_object_set_new(o, "beneficiaries", json_integer(g->n_people));
	json_object_set_new(o, "first_timers", json_integer(g->first));
	json_object_set_new(o, "withdrawn_late", json_integer(g->withdrawn));
	json_object_set_new(o, "demand", json_integer(g->demand));
	json_object_set_new(o, "staff_seats", json_integer(g->staff));
	return o;
}

/* Whether the person holds a live booking of the offer. */
static bool
has_live_booking(long long offer, long long person)
{
	int i;

	for (i = 0; i < n_rb; i++)
		if (rb[i].offer == offer && rb[i].person == person &&
		    (is_live(rb[i].status) ||
		    strcmp(rb[i].status, "withdrawn_late") == 0))
			return true;
	return false;
}

/* Unmet demand: per person and offer asked for (the larger request when
 * asked twice), never offered seats and holding no live booking of it,
 * on offers of the range not cancelled. */
static void
add_demand(struct expect *e, const char *by, long long from, long long to,
    long long partner, long long structure)
{
	char key[128], name[128];
	long long id;
	int i, j;

	for (i = 0; i < n_ra; i++) {
		const struct raw_ask *a = &ra[i];
		const struct raw_offer *o = offer_of(a->offer);
		long long seats = 0;
		bool first = true, offered = false;

		/* the pair's first row counts for all its rows: the seats of
		 * the largest request, unless seats were offered to one */
		for (j = 0; j < n_ra; j++) {
			if (ra[j].offer != a->offer || ra[j].person != a->person)
				continue;
			if (j < i)
				first = false;
			offered |= ra[j].offered;
			if (ra[j].seats > seats)
				seats = ra[j].seats;
		}
		if (offered)
			continue;
		if (!first || seats == 0 || o->starts < from || o->starts >= to ||
		    o->cancelled || (partner != 0 && o->partner != partner) ||
		    (structure != 0 && a->structure != structure) ||
		    has_live_booking(a->offer, a->person))
			continue;
		key_of(by, o, a->structure, key, sizeof key, &id, name);
		group_for(e, key, id, name)->demand += seats;
		e->total.demand += seats;
	}
}

/* What report.activity must answer, from the raw rows only. */
static json_t *
expected(enum who who, const char *by, long long from, long long to)
{
	static struct expect e;
	long long partner = who == PARTNER1 ? W.partner_id :
	    who == PARTNER2 ? W.partner2_id : 0;
	long long structure = who == REF1 ? W.structure_id :
	    who == REF2 ? W.structure2_id : 0;
	json_t *items = json_array();
	char key[128], name[128];
	long long id;
	int i;

	memset(&e, 0, sizeof e);
	if (strcmp(by, "month") == 0) {
		/* Every month of the range, even an empty one. */
		char m[8], last[8];
		long long t = from;

		paris_month(to - 1, last);
		for (;;) {
			paris_month(t, m);
			group_for(&e, m, 0, "");
			if (strcmp(m, last) == 0)
				break;
			t += 20 * 86400;
			paris_month(t, key);
			while (strcmp(key, m) == 0) {
				t += 86400;
				paris_month(t, key);
			}
		}
	}
	for (i = 0; i < n_ro; i++) {
		const struct raw_offer *o = &ro[i];

		if (o->starts < from || o->starts >= to || o->cancelled ||
		    (partner != 0 && o->partner != partner))
			continue;
		e.total.offered += o->seats;
		if (offer_grouped(by)) {
			key_of(by, o, 0, key, sizeof key, &id, name);
			group_for(&e, key, id, name)->offered += o->seats;
		}
	}
	for (i = 0; i < n_rb; i++) {
		const struct raw_booking *b = &rb[i];
		const struct raw_offer *o = offer_of(b->offer);
		struct group *g;
		bool att = strcmp(b->status, "attended") == 0;
		bool wl = strcmp(b->status, "withdrawn_late") == 0;

		if ((!is_live(b->status) && !wl) || o->starts < from ||
		    o->starts >= to || (partner != 0 && o->partner != partner) ||
		    (structure != 0 && b->structure != structure))
			continue;
		key_of(by, o, b->structure, key, sizeof key, &id, name);
		g = group_for(&e, key, id, name);
		if (wl) {	/* seats given back late: apart */
			g->withdrawn += b->seats;
			e.total.withdrawn += b->seats;
			continue;
		}
		g->booked += b->seats;
		e.total.booked += b->seats;
		if (att) {
			g->attended += b->seats;
			e.total.attended += b->seats;
			add_person(g, b->person);
			add_person(&e.total, b->person);
		}
		if (strcmp(b->status, "no_show") == 0) {
			g->no_shows += b->seats;
			e.total.no_shows += b->seats;
		}
		if (is_first_outing(b)) {
			g->first++;
			e.total.first++;
		}
	}
	add_demand(&e, by, from, to, partner, structure);
	/* Staff seats of the groups still confirmed, in the row of their
	 * offer and structure (docs/reports.md). */
	for (i = 0; i < n_rg; i++) {
		const struct raw_offer *o = offer_of(rg[i].offer);

		if (!rg[i].confirmed || o->starts < from || o->starts >= to ||
		    (partner != 0 && o->partner != partner) ||
		    (structure != 0 && rg[i].structure != structure))
			continue;
		key_of(by, o, rg[i].structure, key, sizeof key, &id, name);
		group_for(&e, key, id, name)->staff += rg[i].staff;
		e.total.staff += rg[i].staff;
	}
	qsort(e.g, (size_t)e.n, sizeof e.g[0], cmp_group);
	for (i = 0; i < e.n; i++)
		json_array_append_new(items, group_json(&e.g[i], by, true));
	return json_pack("{s:o, s:o}", "items", items, "total",
	    group_json(&e.total, by, false));
}

static struct st_client *
client_of(enum who who)
{
	switch (who) {
	case ADMIN: return W.admin;
	case PARTNER1: return W.partner;
	case PARTNER2: return W.partner2;
	case REF1: return W.ref;
	default: return W.ref2;
	}
}

static const char *const group_bys[] = {"month", "structure", "partner",
    "category", "territory"};

/* Every group_by for every caller over [from, to), against expected(). */
static int
check_range(const char *from, const char *to)
{
	long long f = epoch_of(from), t = epoch_of(to);
	int who, k, items = 0;

	for (who = ADMIN; who < NWHO; who++) {
		for (k = 0; k < 5; k++) {
			json_t *r = OK(client_of((enum who)who), "report.activity",
			    "{s:s, s:s, s:s}", "from", from, "to", to,
			    "group_by", group_bys[k]);
			json_t *want = expected((enum who)who, group_bys[k], f, t);
			json_t *got = json_pack("{s:O, s:O}", "items",
			    json_object_get(r, "items"), "total",
			    json_object_get(r, "total"));

			if (!json_equal(want, got)) {
				char *w = json_dumps(want, JSON_SORT_KEYS | JSON_INDENT(1));
				char *g = json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(1));

				fprintf(stderr, "want:\n%s\ngot:\n%s\n", w, g);
				free(w);
				free(g);
				h_fail("report.activity [%s, %s) by %s for %s "
				    "differs from the raw rows", from, to,
				    group_bys[k], who_names[who]);
			}
			assert_string_equal(w_str(r, "group_by"), group_bys[k]);
			assert_string_equal(w_str(r, "timezone"), "Europe/Paris");
			items += (int)json_array_size(json_object_get(r, "items"));
			json_decref(want);
			json_decref(got);
			json_decref(r);
		}
	}
	return items;
}

static void
assert_summaries_exact(void)
{
	const char *bad = h_db_exec(db, "SELECT count(*) FROM "
	    "jsonb_each_text(core.report_check()) WHERE value::bigint <> 0");

	if (strcmp(bad, "0") != 0)
		h_fail("the kept summaries differ from a recomputation: %s",
		    h_db_exec(db, "SELECT core.report_check()::text"));
}

/* ------------------------------------------------------ the network */

struct plan_offer {
	const char *starts_at;	/* where it ends up, in the past (or NULL:
				   stays in the future) */
	const char *category;
	int who;		/* 0, 1: W.partner, W.partner2; 2: partner 3 (admin) */
	int seats;
	bool close;		/* close attendance */
	bool cancel;		/* cancelled by its partner */
};

/* Times chosen at the edges: 2024-02-29 23:30Z is March in Paris,
 * 2024-12-31 22:30Z still 2024, 2024-12-31 23:30Z already 2025. */
static const struct plan_offer plan[] = {
	{"2023-11-15T19:00:00Z", "show", 0, 20, true, false},
	{"2023-12-31T23:30:00Z", "concert", 1, 12, true, false},
	{"2024-01-10T18:30:00Z", "museum", 0, 15, true, false},
	{"2024-02-29T23:30:00Z", "cinema", 1, 10, true, false},
	{"2024-03-15T19:00:00Z", "show", 2, 30, true, false},
	{"2024-03-20T14:00:00Z", "museum", 0, 8, false, false},
	{"2024-06-01T20:00:00Z", "concert", 2, 25, true, false},
	{"2024-06-15T09:00:00Z", "sport", 1, 10, false, true},
	{"2024-09-10T19:30:00Z", "show", 0, 16, true, false},
	{"2024-12-31T22:30:00Z", "festival", 2, 40, true, false},
	{"2024-12-31T23:30:00Z", "festival", 1, 20, true, false},
	{"2025-02-01T15:00:00Z", "heritage", 1, 12, true, false},
	{NULL, "show", 0, 10, false, false},
	{NULL, "workshop", 2, 10, false, false},
};
#define NPLAN (sizeof plan / sizeof plan[0])
#define NPEOPLE 17

static json_int_t people[NPEOPLE];
static json_int_t offers[NPLAN];

struct booked {
	json_int_t id;
	char code[32];
	int offer;	/* plan index */
	int person;
};
static struct booked bookings[NPLAN * NPEOPLE];
static int n_bookings;

static struct st_client *
referent_of(int person)
{
	/* People 0-5: structure 1, 6-9: structure 2, the rest admin's
	 * structures 3 and 4. */
	return person < 6 ? W.ref : person < 10 ? W.ref2 : W.admin;
}

static struct st_client *
partner_client(int who)
{
	return who == 0 ? W.partner : who == 1 ? W.partner2 : W.admin;
}

static void
check_in(int b)
{
	json_decref(OK(partner_client(plan[bookings[b].offer].who),
	    "ticket.check_in", "{s:s}", "code", bookings[b].code));
}

/* The API only publishes and moves offers into the future; the test makes
 * time pass by moving them into the past itself (the report triggers see
 * the same UPDATE of starts_at as from offer.update). */
static void
move_offer(json_int_t offer, const char *starts_at)
{
	char sql[256];

	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = '%s', "
	    "booking_deadline = '%s'::timestamptz - interval '2 days' "
	    "WHERE id = %lld", starts_at, starts_at, (long long)offer);
	h_db_exec(db, sql);
}

/* A deterministic scatter of who goes where and what becomes of it. */
static unsigned
mix(unsigned a, unsigned b)
{
	unsigned h = a * 2654435761u ^ (b + 0x9e3779b9u + (a << 6) + (a >> 2));

	h ^= h >> 15;
	h *= 2246822519u;
	h ^= h >> 13;
	return h;
}

/* Waiting-list entries of every kind, written as the waiting list leaves
 * them: waiting, left, expired after seats were offered, cancelled with
 * their offer; some of people who also hold (or held) a booking of the
 * offer, some asked twice with different seats. */
static void
add_waiting(void)
{
	static const char *const kinds[] = {"'waiting', NULL",
	    "'left', NULL", "'expired', now() - interval '1 day'",
	    "'cancelled', NULL"};
	char sql[512];
	size_t i;
	int j;

	for (i = 0; i < NPLAN; i++)
		for (j = 0; j < NPEOPLE; j++) {
			unsigned h = mix((unsigned)i, (unsigned)j) % 100;
			unsigned k = mix((unsigned)j, (unsigned)i + 50u) % 4;

			if (h < 38 || h >= 60)
				continue;
			snprintf(sql, sizeof sql, "INSERT INTO waitlist_entries "
			    "(offer_id, beneficiary_id, structure_id, seats, "
			    "status, offered_at) SELECT %lld, id, structure_id, "
			    "%u, %s FROM beneficiaries WHERE id = %lld",
			    (long long)offers[i], 1 + h % 3, kinds[k],
			    (long long)people[j]);
			h_db_exec(db, sql);
			if (k == 1) {
				/* left, then asked again for more */
				snprintf(sql, sizeof sql, "INSERT INTO "
				    "waitlist_entries (offer_id, beneficiary_id, "
				    "structure_id, seats) SELECT %lld, id, "
				    "structure_id, %u FROM beneficiaries WHERE "
				    "id = %lld", (long long)offers[i], 2 + h % 3,
				    (long long)people[j]);
				h_db_exec(db, sql);
			}
		}
}

/* Group outings (docs/booking-rules.md, "Group outings") of people who
 * book nothing else: staff seats kept, checked in, gone with a cancelled
 * offer, with a whole group cancelled; one person of a group cancelled. */
static void
build_groups(void)
{
	json_int_t g[6];
	json_t *r;
	int i;

	for (i = 0; i < 6; i++) {
		char first[16];

		snprintf(first, sizeof first, "Groupe%d", i);
		g[i] = i < 4 ? w_beneficiary(W.ref, first, "Sortie") :
		    take_id(OK(W.admin, "beneficiary.create",
			"{s:s, s:s, s:b, s:I}", "first_name", first,
			"last_name", "Sortie", "consent", 1, "structure_id",
			structure3_id));
	}
	/* per-person codes: the group's admits its 2 staff */
	r = OK(W.ref, "booking.create_group", "{s:I, s:[I, I], s:[i, i], s:i}",
	    "offer_id", offers[0], "beneficiary_ids", g[0], g[1], "seats", 2, 1,
	    "staff_seats", 2);
	json_decref(OK(W.partner, "ticket.check_in", "{s:s}", "code",
	    w_str(r, "code")));
	json_decref(r);
	/* one code for everyone */
	json_decref(OK(W.admin, "offer.update", "{s:I, s:s}", "offer_id",
	    offers[4], "group_codes", "group"));
	r = OK(W.admin, "booking.create_group", "{s:I, s:[I, I], s:i}",
	    "offer_id", offers[4], "beneficiary_ids", g[4], g[5],
	    "staff_seats", 1);
	json_decref(OK(W.admin, "ticket.check_in", "{s:s}", "code",
	    w_str(r, "code")));
	json_decref(r);
	/* on the offer its partner cancels: the group goes too */
	json_decref(OK(W.ref, "booking.create_group", "{s:I, s:[I], s:i}",
	    "offer_id", offers[7], "beneficiary_ids", g[2], "staff_seats", 3));
	/* in the future, one person cancelled: the staff stay */
	r = OK(W.ref, "booking.create_group", "{s:I, s:[I, I], s:i}",
	    "offer_id", offers[12], "beneficiary_ids", g[2], g[3],
	    "staff_seats", 1);
	json_decref(OK(W.ref, "booking.cancel", "{s:I}", "booking_id",
	    w_int(json_array_get(json_object_get(r, "members"), 1), "id")));
	json_decref(r);
	/* cancelled as a whole */
	r = OK(W.ref, "booking.create_group", "{s:I, s:[I], s:i}", "offer_id",
	    offers[9], "beneficiary_ids", g[3], "staff_seats", 2);
	json_decref(OK(W.ref, "booking.cancel_group", "{s:I}", "group_id",
	    w_int(r, "id")));
	json_decref(r);
}

static void
build_network(void)
{
	size_t i;
	int j, b;

	structure3_id = take_id(OK(W.admin, "structure.create",
	    "{s:s, s:s, s:s, s:s}", "name", "Centre social des Cézeaux",
	    "kind", "centre_social", "territory", "Puy-de-Dôme", "city",
	    "Aubière"));
	structure4_id = take_id(OK(W.admin, "structure.create",
	    "{s:s, s:s, s:s, s:s}", "name", "Association Accueil", "kind",
	    "association", "territory", "Allier", "city", "Moulins"));
	partner3_id = take_id(OK(W.admin, "partner.create", "{s:s, s:s, s:s}",
	    "name", "Cinéma Le Rio", "kind", "cinema", "city",
	    "Clermont-Ferrand"));

	for (j = 0; j < NPEOPLE; j++) {
		char first[16];

		snprintf(first, sizeof first, "Personne%02d", j);
		if (j < 10)
			people[j] = w_beneficiary(referent_of(j), first, "Test");
		else {
			people[j] = take_id(OK(W.admin, "beneficiary.create",
			    "{s:s, s:s, s:b, s:I}", "first_name", first,
			    "last_name", "Test", "consent", 1, "structure_id",
			    j < 14 ? structure3_id : structure4_id));
		}
	}

	/* Offers start in the future, take their bookings, then most move
	 * into the past. */
	for (i = 0; i < NPLAN; i++) {
		json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}",
		    "title", "Sortie", "category", plan[i].category, "venue",
		    "Salle", "city", "Clermont", "starts_at",
		    w_time((long long)(10 + i) * W_DAY), "seats", 40 + plan[i].seats,
		    "max_per_booking", 3);

		if (plan[i].who == 2)
			json_object_set_new(p, "partner_id", json_integer(partner3_id));
		offers[i] = take_id(h_call_ok(partner_client(plan[i].who),
		    "offer.publish", p));
	}
	for (i = 0; i < NPLAN; i++)
		for (j = 0; j < NPEOPLE; j++) {
			json_t *r;

			if (mix((unsigned)i, (unsigned)j) % 100 >= 45)
				continue;
			r = w_book(referent_of(j), offers[i], people[j],
			    1 + (int)(mix((unsigned)j, (unsigned)i) % 3));
			bookings[n_bookings].id = w_int(r, "id");
			copy(bookings[n_bookings].code,
			    sizeof bookings[n_bookings].code, w_str(r, "code"));
			bookings[n_bookings].offer = (int)i;
			bookings[n_bookings].person = j;
			n_bookings++;
			json_decref(r);
		}

	build_groups();

	/* Some cancel; some are checked in early (before their offer
	 * moves: the move must carry their flags along). */
	for (b = 0; b < n_bookings; b++) {
		unsigned h = mix((unsigned)b, 77u) % 100;

		if (h < 12)
			json_decref(OK(referent_of(bookings[b].person),
			    "booking.cancel", "{s:I}", "booking_id",
			    bookings[b].id));
		else if (h < 30 && plan[bookings[b].offer].starts_at != NULL &&
		    !plan[bookings[b].offer].cancel)
			check_in(b);
	}

	/* Some withdraw late: after their offer's deadline, before it
	 * starts (then it moves into the past with the others). */
	for (b = 0; b < n_bookings; b++) {
		unsigned h = mix((unsigned)b, 77u) % 100;
		char sql[200];

		if (h < 80 || h >= 86 || plan[bookings[b].offer].cancel)
			continue;
		snprintf(sql, sizeof sql, "UPDATE offers SET booking_deadline = "
		    "least(booking_deadline, now() - interval '1 hour') WHERE id = "
		    "%lld", (long long)offers[bookings[b].offer]);
		h_db_exec(db, sql);
		json_decref(OK(referent_of(bookings[b].person),
		    "booking.withdraw", "{s:I, s:s}", "booking_id",
		    bookings[b].id, "reason", "illness"));
	}

	/* Time passes: into the past, latest first, so that check-ins then
	 * arrive out of order. */
	for (i = NPLAN; i-- > 0;)
		if (plan[i].starts_at != NULL)
			move_offer(offers[i], plan[i].starts_at);
	for (b = 0; b < n_bookings; b++) {
		unsigned h = mix((unsigned)b, 77u) % 100;

		if (h >= 30 && h < 75 && plan[bookings[b].offer].starts_at != NULL &&
		    !plan[bookings[b].offer].cancel)
			check_in(b);
	}
	for (i = 0; i < NPLAN; i++) {
		if (plan[i].close)
			json_decref(OK(partner_client(plan[i].who),
			    "offer.close_attendance", "{s:I}", "offer_id",
			    offers[i]));
		if (plan[i].cancel)
			json_decref(OK(partner_client(plan[i].who),
			    "offer.cancel", "{s:I, s:s}", "offer_id", offers[i],
			    "reason", "Intempéries"));
	}
	/* A late arrival: no_show, then checked in. */
	for (b = 0; b < n_bookings; b++) {
		unsigned h = mix((unsigned)b, 77u) % 100;

		if (h >= 75 && h < 80 && plan[bookings[b].offer].close &&
		    !plan[bookings[b].offer].cancel)
			check_in(b);
	}
	/* A category changes after the fact. */
	json_decref(OK(W.partner, "offer.update", "{s:I, s:s}", "offer_id",
	    offers[2], "category", "heritage"));
	add_waiting();
}

/* ----------------------------------------------------------- tests */

static int
setup(void **state)
{
	struct h_daemon *d = h_daemon_start("reports",
	    "[database]\npool_size = 6\n"
	    "[policy]\nmax_upcoming_per_beneficiary = 1000\n"
	    "max_per_month = 1000\n");

	setenv("TZ", "Europe/Paris", 1);
	tzset();
	world_build(&W, d);
	db = h_db_connect(d->conninfo);
	/* report_check() and report_rebuild() are helpers (schema core), run
	 * as an operator would (docs/operations.md, "The sql/ tree"). */
	h_db_exec(db, "SET search_path = core, api, public");
	build_network();
	load_raw();
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
test_summaries_kept(void **state)
{
	/* Every counter, kept row by row by the triggers, is what a
	 * recomputation from the bookings gives; a rebuild changes nothing. */
	assert_string_not_equal(h_db_exec(db, "SELECT count(*) FROM bookings "
	    "WHERE status = 'withdrawn_late'"), "0");
	assert_summaries_exact();
	assert_string_equal(h_db_exec(db, "SELECT core.report_rebuild()::text"),
	    "{\"report_flags\": 0, \"offer_starts_at\": 0}");
	assert_summaries_exact();
}

static void
test_calendar_year(void **state)
{
	/* The whole network's year: the summary tables. */
	int items = check_range("2024-01-01T00:00:00+01:00",
	    "2025-01-01T00:00:00+01:00");
	json_t *r = OK(W.admin, "report.activity", "{s:s, s:s, s:s}", "from",
	    "2024-01-01T00:00:00+01:00", "to", "2025-01-01T00:00:00+01:00",
	    "group_by", "category");

	assert_true(items > 40);
	/* the network has unmet demand to check */
	assert_true(w_int(json_object_get(r, "total"), "demand") > 10);
	json_decref(r);
}

static void
test_calendar_month(void **state)
{
	check_range("2024-03-01T00:00:00+01:00", "2024-04-01T00:00:00+02:00");
	check_range("2024-12-01T00:00:00+01:00", "2025-01-01T00:00:00+01:00");
}

static void
test_other_ranges(void **state)
{
	/* From the bookings: ranges that are no calendar year or month, one
	 * reaching into the future (confirmed bookings only), one empty. */
	check_range("2023-11-01T00:00:00Z", "2024-12-04T12:00:00Z");
	/* Across the new year; two ranges, since one may not pass
	 * policy.report_max_days (400). */
	check_range("2024-09-01T00:00:00Z", "2025-03-01T12:00:00Z");
	check_range("2024-03-01T00:00:00Z", "2024-06-30T00:00:00Z");
	check_range(w_time(-30 * W_DAY), w_time(60 * W_DAY));
	check_range("2019-01-01T00:00:00Z", "2019-02-01T00:00:00Z");
	/* The same instants as the year, written in UTC: same answer. */
	check_range("2023-12-31T23:00:00Z", "2024-12-31T23:00:00Z");
}

static void
test_month_ranges(void **state)
{
	/* Ranges of whole Paris months that are no calendar year or month:
	 * a quarter, twelve months across the new year (the month keys of
	 * offers and bookings are then found among the range's months). */
	check_range("2024-04-01T00:00:00+02:00", "2024-07-01T00:00:00+02:00");
	check_range("2024-03-01T00:00:00+01:00", "2025-03-01T00:00:00+01:00");
	/* 45 days, and eleven months from and to the middle of a month:
	 * the offer of 2024-02-29 23:30Z (March in Paris) is just in the
	 * first, just out of the second; its month is in both answers. */
	check_range("2024-02-29T23:30:00Z", "2024-04-14T23:30:00Z");
	check_range("2024-02-29T23:31:00Z", "2025-01-15T12:00:00+01:00");
}

static void
test_staff_seats(void **state)
{
	/* The groups' staff seats are in the cross-checks above; here their
	 * sum: 2 (checked in, 2023) + 1 (2024); the cancelled ones count 0. */
	json_t *r = OK(W.admin, "report.activity", "{s:s, s:s, s:s}", "from",
	    "2023-11-01T00:00:00Z", "to", "2024-12-04T12:00:00Z", "group_by",
	    "structure");

	assert_int_equal(w_int(json_object_get(r, "total"), "staff_seats"), 3);
	json_decref(r);
}

static void
test_scope(void **state)
{
	json_t *r, *items;

	/* A referent sees its own structure only; a partner itself only. */
	r = OK(W.ref, "report.activity", "{s:s, s:s, s:s}", "from",
	    "2024-01-01T00:00:00Z", "to", "2025-01-31T00:00:00Z", "group_by",
	    "structure");
	items = json_object_get(r, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(w_int(json_array_get(items, 0), "key"), W.structure_id);
	assert_string_equal(w_str(json_array_get(items, 0), "name"), "MDS de Billom");
	assert_true(json_is_null(json_object_get(json_array_get(items, 0),
	    "seats_offered")));
	json_decref(r);
	r = OK(W.partner2, "report.activity", "{s:s, s:s, s:s}", "from",
	    "2024-01-01T00:00:00Z", "to", "2025-01-31T00:00:00Z", "group_by",
	    "partner");
	items = json_object_get(r, "items");
	assert_int_equal(json_array_size(items), 1);
	assert_int_equal(w_int(json_array_get(items, 0), "key"), W.partner2_id);
	json_decref(r);
	/* Territories gather their structures: structures 1 and 3 are both
	 * in the Puy-de-Dôme. */
	r = OK(W.admin, "report.activity", "{s:s, s:s, s:s}", "from",
	    "2024-01-01T00:00:00Z", "to", "2025-01-31T00:00:00Z", "group_by",
	    "territory");
	items = json_object_get(r, "items");
	assert_int_equal(json_array_size(items), 3);
	assert_string_equal(w_str(json_array_get(items, 0), "key"), "Allier");
	assert_string_equal(w_str(json_array_get(items, 2), "key"), "Puy-de-Dôme");
	json_decref(r);
}

static void
test_params(void **state)
{
	struct st_client *anon;
	json_t *data;

	data = h_call_err(W.admin, "report.activity", json_pack(
	    "{s:s, s:s, s:s}", "from", "2024-01-01T00:00:00Z", "to",
	    "2024-01-01T00:00:00Z", "group_by", "month"), -32602,
	    "invalid_params");
	assert_string_equal(w_str(data, "field"), "to");
	json_decref(data);
	data = h_call_err(W.ref, "report.activity", json_pack(
	    "{s:s, s:s, s:s}", "from", "2024-01-01T00:00:00Z", "to",
	    "2025-01-01T00:00:00Z", "group_by", "year"), -32602,
	    "invalid_params");
	assert_string_equal(w_str(data, "field"), "group_by");
	json_decref(data);
	data = h_call_err(W.partner, "report.activity", json_pack(
	    "{s:s, s:s}", "from", "2024-01-01T00:00:00Z", "group_by",
	    "month"), -32602, "invalid_params");
	assert_string_equal(w_str(data, "field"), "to");
	json_decref(data);
	data = h_call_err(W.admin, "report.activity", json_pack(
	    "{s:s, s:s, s:s}", "from", "2024-01-01", "to",
	    "2025-01-01T00:00:00Z", "group_by", "month"), -32602,
	    "invalid_params");
	assert_string_equal(w_str(data, "field"), "from");
	json_decref(data);
	anon = h_connect(W.d);
	json_decref(h_call_err(anon, "report.activity", json_pack(
	    "{s:s, s:s, s:s}", "from", "2024-01-01T00:00:00Z", "to",
	    "2025-01-01T00:00:00Z", "group_by", "month"), 401,
	    "unauthenticated"));
	st_close(anon);
}

/* Check-ins of the same people, on several connections at once, in
 * opposite orders: each check-in recomputes its person's flags, under the
 * person's lock. Afterwards the summaries must still be exact. */
#define RACERS 4
#define RACE_PEOPLE 6
#define RACE_OFFERS 8

static void
test_concurrent_check_ins(void **state)
{
	struct st_client *c[RACERS];
	json_int_t o[RACE_OFFERS], p[RACE_PEOPLE];
	char codes[RACE_OFFERS][RACE_PEOPLE][32];
	int64_t pending[RACERS][RACE_OFFERS * RACE_PEOPLE / RACERS + 1];
	int n_pending[RACERS] = {0};
	struct st_error err;
	int i, j, k;

	for (j = 0; j < RACE_PEOPLE; j++) {
		char first[16];

		snprintf(first, sizeof first, "Course%d", j);
		p[j] = w_beneficiary(W.ref, first, "Rapide");
	}
	for (i = 0; i < RACE_OFFERS; i++) {
		o[i] = w_offer(W.partner, 20, 2, w_time((long long)(5 + i) * W_DAY));
		for (j = 0; j < RACE_PEOPLE; j++) {
			json_t *r = w_book(W.ref, o[i], p[j], 1 + (i + j) % 2);

			copy(codes[i][j], sizeof codes[i][j], w_str(r, "code"));
			json_decref(r);
		}
	}
	/* All in the same two months of 2022, so that flags move a lot. */
	for (i = 0; i < RACE_OFFERS; i++) {
		char when[32];

		snprintf(when, sizeof when, "2022-%02d-%02dT18:00:00Z",
		    5 + i % 2, 10 + i);
		move_offer(o[i], when);
	}
	for (k = 0; k < RACERS; k++)
		c[k] = h_login(W.d, W_PARTNER_EMAIL, W_PASSWORD);
	/* Racer k takes the tickets whose index is k mod RACERS, walking the
	 * offers forwards (even k) or backwards (odd k). */
	for (k = 0; k < RACERS; k++)
		for (i = 0; i < RACE_OFFERS; i++) {
			int oi = k % 2 ? RACE_OFFERS - 1 - i : i;

			for (j = 0; j < RACE_PEOPLE; j++) {
				json_t *params;

				if ((oi * RACE_PEOPLE + j) % RACERS != k)
					continue;
				params = json_pack("{s:s}", "code", codes[oi][j]);
				pending[k][n_pending[k]] = st_send(c[k],
				    "ticket.check_in", params, &err);
				json_decref(params);
				if (pending[k][n_pending[k]] < 0)
					h_fail("send: %s", st_strerror(&err));
				n_pending[k]++;
			}
		}
	for (k = 0; k < RACERS; k++) {
		for (i = 0; i < n_pending[k]; i++) {
			json_t *r;

			if (st_wait(c[k], pending[k][i], &r, &err) != ST_OK)
				h_fail("racer %d check-in %d: %s", k, i,
				    st_strerror(&err));
			json_decref(r);
		}
		st_close(c[k]);
	}
	assert_summaries_exact();
	load_raw();
	check_range("2022-01-01T00:00:00+01:00", "2023-01-01T00:00:00+01:00");
	check_range("2022-05-01T00:00:00+02:00", "2022-06-01T00:00:00+02:00");
	check_range("2022-05-01T00:00:00Z", "2022-07-01T00:00:00Z");
}

/* Two bookings for people of one structure, for shows of the same
 * month, in two transactions open at once: the second must not wait for
 * the first to commit (each takes a report counter row of its own), and
 * both are counted. A wait would end in lock_timeout and fail the test. */
static void
test_one_structure_books_in_parallel(void **state)
{
	static const char tok[] =
	    "encode(sha256('itest-reports-parallel'::bytea), 'hex')";
	PGconn *a = h_db_connect(W.d->conninfo);
	PGconn *b = h_db_connect(W.d->conninfo);
	json_int_t o1, o2, p1, p2;
	char sql[1024];

	(void)state;
	o1 = w_offer(W.partner, 10, 2, w_time(70 * W_DAY));
	o2 = w_offer(W.partner, 10, 2, w_time(70 * W_DAY + 3600));
	p1 = w_beneficiary(W.ref, "Paule", "Ensemble");
	p2 = w_beneficiary(W.ref, "Quentin", "Ensemble");
	snprintf(sql, sizeof sql, "INSERT INTO tokens (token_hash, user_id, "
	    "expires_at) VALUES (%s, %" JSON_INTEGER_FORMAT ", now() + "
	    "interval '1 hour')", tok, W.ref_user);
	h_db_exec(a, sql);

	h_db_exec(a, "BEGIN");
	snprintf(sql, sizeof sql, "SELECT api.booking_create(%s, jsonb_build_object("
	    "'offer_id', %" JSON_INTEGER_FORMAT ", 'beneficiary_id', %"
	    JSON_INTEGER_FORMAT ", 'seats', 1), NULL, '{}')->>'status'", tok,
	    o1, p1);
	assert_string_equal(h_db_exec(a, sql), "confirmed");
	h_db_exec(b, "SET lock_timeout = '5s'");
	snprintf(sql, sizeof sql, "SELECT api.booking_create(%s, jsonb_build_object("
	    "'offer_id', %" JSON_INTEGER_FORMAT ", 'beneficiary_id', %"
	    JSON_INTEGER_FORMAT ", 'seats', 2), NULL, '{}')->>'status'", tok,
	    o2, p2);
	assert_string_equal(h_db_exec(b, sql), "confirmed");
	h_db_exec(a, "COMMIT");

	/* Both counted, whatever the rows they went to. */
	assert_summaries_exact();
	PQfinish(a);
	PQfinish(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summaries_kept),
		cmocka_unit_test(test_calendar_year),
		cmocka_unit_test(test_calendar_month),
		cmocka_unit_test(test_other_ranges),
		cmocka_unit_test(test_month_ranges),
		cmocka_unit_test(test_staff_seats),
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_concurrent_check_ins),
		cmocka_unit_test(test_one_structure_books_in_parallel),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
