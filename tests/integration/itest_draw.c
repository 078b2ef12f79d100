/*
 * The draw of a permanence (docs/protocol.md, docs/draw.md) against a real daemon,
 * checked against a second implementation of its rules written here, in
 * C, from what the test itself created:
 *
 *   - a history of outings built through the API (bookings checked in at
 *     the door, no-shows from offer.close_attendance, cancellations), the
 *     offers moved into the past with SQL, some inside the history window,
 *     some just outside, one on each of its edges;
 *   - caps (max_upcoming_per_beneficiary 2, max_per_month 1), duplicates,
 *     blocks of this permanence and of another one;
 *   - wishes of 30 people, a replaced one, an erased person.
 *
 * The model computes every score from that history, every lottery key with
 * OpenSSL's SHA-256 of "seed:id", the order, and then the allocation (block
 * first, then the pool, caps, duplicates, the first choice's refusal as the
 * reason), and each result of the daemon must agree field by field. Nobody
 * chooses the seed: the server drew it at scheduling and published its
 * SHA-256; the model replays from the seed the draw reveals, once its hash
 * is checked against the one published before. The same seed (planted in
 * the database) on a second permanence gives the same order; a draw
 * answers the same JSON twice and books once; every permanence has its own
 * seed of 64 hex digits; 2,000 wishes over 100 offers keep docs/booking-rules.md invariant 1.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

static PGconn *db;

/* ------------------------------------------------------------ helpers */

/* A number read from the database (db, this file's connection). */
#define sql_int(...) h_db_int(db, __VA_ARGS__)

/* Calendar month of t in Europe/Paris, the structures' timezone (TZ is set
 * so in main()). */
static int
paris_month(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* Noon UTC on day `day` of the month `add` months from now: noon UTC is in
 * the same calendar day, hence month, in Paris. */
static time_t
month_day(int add, int day)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	tm.tm_mon += add;
	tm.tm_mday = day;
	tm.tm_hour = 12;
	tm.tm_min = tm.tm_sec = 0;
	return timegm(&tm);
}

/* Lowercase hex SHA-256 of text, as `printf %s text | sha256sum`. */
static void
sha256_hex(const char *text, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	if (!EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) ||
	    len != 32)
		h_fail("SHA-256 of %s", text);
	for (i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The lottery key of docs/draw.md: lowercase hex SHA-256 of "seed:id". */
static void
lottery_key(const char *seed, json_int_t id, char out[65])
{
	char text[256];
	int n = snprintf(text, sizeof text, "%s:%lld", seed, (long long)id);

	if (n < 0 || (size_t)n >= sizeof text)
		h_fail("lottery key of %s", seed);
	sha256_hex(text, out);
}

static bool
is_hex64(const char *s)
{
	return s != NULL && strlen(s) == 64 &&
	    strspn(s, "0123456789abcdef") == 64;
}

/* The SHA-256 of its seed that permanence pm shows before its draw; the
 * seed itself must not be shown. */
static void
committed_hash(struct st_client *c, json_int_t pm, char out[65])
{
	json_t *r = h_call_ok(c, "permanence.get", json_pack("{s:I}",
	    "permanence_id", pm));

	if (!is_hex64(w_str(r, "seed_sha256")) ||
	    !json_is_null(json_object_get(r, "seed")))
		h_fail("permanence %lld before its draw: %s", (long long)pm,
		    h_json_str(r));
	memcpy(out, w_str(r, "seed_sha256"), 65);
	json_decref(r);
}

/* The seed the draw revealed, into seed, once checked against the hash
 * published before the draw. */
static void
revealed_seed(const json_t *draw, const char *hash, char seed[65])
{
	char h[65];

	if (!is_hex64(w_str(draw, "seed")))
		h_fail("seed is not 64 hex digits: %s", w_str(draw, "seed"));
	memcpy(seed, w_str(draw, "seed"), 65);
	sha256_hex(seed, h);
	if (strcmp(h, hash) != 0)
		h_fail("seed %s hashes to %s, not to the %s published before "
		    "the draw", seed, h, hash);
}

#include "perm_invariants.inc"

/* A fixed pseudo-random sequence: the same data on every run. */
static unsigned long long rng_state;

static unsigned
rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005ULL +
	    1442695040888963407ULL;
	return (unsigned)(rng_state >> 33) % n;
}

static json_int_t
id_of(json_t *r)
{
	json_int_t id = w_int(r, "id");

	json_decref(r);
	return id;
}

static json_int_t
offer_at(struct st_client *partner, int seats, int max, time_t starts)
{
	return id_of(OK(partner, "offer.publish",
	    "{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "title", "Sortie",
	    "category", "show", "venue", "Théâtre", "city", "Clermont",
	    "starts_at", w_iso(starts), "seats", seats, "max_per_booking", max));
}

static json_int_t
permanence_at(struct st_client *ref, time_t starts)
{
	return id_of(OK(ref, "permanence.schedule", "{s:s, s:s, s:s}",
	    "starts_at", w_iso(starts), "ends_at", w_iso(starts + 7200), "title",
	    "Permanence culture"));
}

/* A client whose calls may take minutes: a large draw. */
static struct st_client *
slow_client(struct h_daemon *d, const char *email, const char *password)
{
	struct st_options opt = h_options(d);
	struct st_error err;
	struct st_client *c;

	opt.timeout_ms = 280000;
	c = h_connect_opts(&opt, &err);
	if (c == NULL)
		h_fail("connect: %s", st_strerror(&err));
	json_decref(OK(c, "auth.login", "{s:s, s:s}", "email", email,
	    "password", password));
	return c;
}

/* Calls method for i in [0, n) over the connections, a window of requests
 * in flight on each, and hands each result to done (may be NULL). */
typedef json_t *(*params_fn)(int i);
typedef void (*done_fn)(int i, json_t *result);

static void
pipeline(struct st_client **cs, int nc, int n, const char *method,
    params_fn params, done_fn done)
{
	enum { WINDOW = 24 };
	int64_t *pending = calloc((size_t)n, sizeof *pending);
	struct st_error err;
	int base, i;

	assert_non_null(pending);
	for (base = 0; base < n; base += nc * WINDOW) {
		int end = base + nc * WINDOW < n ? base + nc * WINDOW : n;

		for (i = base; i < end; i++) {
			json_t *p = params(i);

			pending[i] = st_send(cs[i % nc], method, p, &err);
			json_decref(p);
			if (pending[i] < 0)
				h_fail("%s %d: %s", method, i,
				    st_strerror(&err));
		}
		for (i = base; i < end; i++) {
			json_t *r;

			if (st_wait(cs[i % nc], pending[i], &r, &err) != ST_OK)
				h_fail("%s %d: %s", method, i,
				    st_strerror(&err));
			if (done != NULL)
				done(i, r);
			json_decref(r);
		}
	}
	free(pending);
}

/* -------------------------------------------------------------- model */

#define MAX_BK 24

struct m_offer {
	json_int_t id;
	time_t starts;
	int month;
	int max;
	int pool;    /* free seats of the common pool */
	int block;   /* unclaimed seats of the drawn permanence's block */
};

struct m_booking {
	json_int_t offer_id;
	time_t starts;
	int month;
	bool confirmed;   /* else attended or no_show: live, not upcoming */
};

struct m_ben {
	json_int_t id;
	int attended;     /* in the history window */
	int no_shows;
	int nbk;          /* live bookings */
	struct m_booking bk[MAX_BK];
	bool erased;
};

struct m_wish {
	int ben;
	int n;
	int choice[3];    /* offer indexes */
	int seats;
};

struct m_result {
	int wish;
	int ben;
	double score;
	char key[65];
	int rank;         /* 0: nothing */
	int offer;        /* offer index, -1 */
	int from_block;
	const char *reason;
};

struct model {
	struct m_offer *o;
	int no;
	struct m_ben *b;
	int nb;
	struct m_wish *w;
	int nw;
	int max_upcoming, max_month;
	double weight;
};

static void
m_book(struct m_ben *b, json_int_t offer_id, time_t starts, bool confirmed)
{
	if (b->nbk == MAX_BK)
		h_fail("model: too many bookings");
	b->bk[b->nbk].offer_id = offer_id;
	b->bk[b->nbk].starts = starts;
	b->bk[b->nbk].month = paris_month(starts);
	b->bk[b->nbk].confirmed = confirmed;
	b->nbk++;
}

/* The rules of booking.create (docs/draw.md rule 3), in their order. */
static const char *
m_refusal(const struct model *m, const struct m_ben *b, const struct m_offer *o,
    int seats, time_t now)
{
	int k, upcoming = 0, month = 0;

	if (seats > o->max)
		return "limit_reached";
	for (k = 0; k < b->nbk; k++)
		if (b->bk[k].offer_id == o->id)
			return "duplicate";
	for (k = 0; k < b->nbk; k++) {
		upcoming += b->bk[k].confirmed && b->bk[k].starts > now;
		month += b->bk[k].month == o->month;
	}
	if (upcoming >= m->max_upcoming || month >= m->max_month)
		return "limit_reached";
	if (o->pool + o->block < seats)
		return "sold_out";
	return NULL;
}

static const struct model *sort_model;

static int
cmp_result(const void *pa, const void *pb)
{
	const struct m_result *a = pa, *b = pb;
	int c;

	if (a->score != b->score)
		return a->score < b->score ? -1 : 1;
	if ((c = strcmp(a->key, b->key)) != 0)
		return c;
	return sort_model->b[a->ben].id < sort_model->b[b->ben].id ? -1 : 1;
}

/* Rules 1 to 3 over the live wishes; the model's offers and people are
 * updated as the daemon's are. Returns the results in draw order (caller
 * frees), *n their number. */
static struct m_result *
m_draw(struct model *m, const char *seed, int *n)
{
	struct m_result *res = calloc((size_t)m->nw + 1, sizeof *res);
	time_t now = time(NULL);
	int i, k, c = 0;

	assert_non_null(res);
	for (i = 0; i < m->nw; i++) {
		const struct m_ben *b = &m->b[m->w[i].ben];

		if (b->erased)
			continue;
		res[c].wish = i;
		res[c].ben = m->w[i].ben;
		res[c].score = b->attended + m->weight * b->no_shows;
		lottery_key(seed, b->id, res[c].key);
		c++;
	}
	sort_model = m;
	qsort(res, (size_t)c, sizeof *res, cmp_result);
	for (i = 0; i < c; i++) {
		const struct m_wish *w = &m->w[res[i].wish];
		struct m_ben *b = &m->b[w->ben];

		res[i].offer = -1;
		for (k = 0; k < w->n; k++) {
			struct m_offer *o = &m->o[w->choice[k]];
			const char *why = m_refusal(m, b, o, w->seats, now);

			if (why == NULL) {
				int from_block = w->seats < o->block ?
				    w->seats : o->block;

				res[i].rank = k + 1;
				res[i].offer = w->choice[k];
				res[i].from_block = from_block;
				o->block -= from_block;
				o->pool -= w->seats - from_block;
				m_book(b, o->id, o->starts, true);
				break;
			}
			if (res[i].reason == NULL)
				res[i].reason = why;
		}
		if (res[i].rank != 0)
			res[i].reason = NULL;
	}
	*n = c;
	return res;
}

static const char *
str_or_null(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Every result of the daemon's draw against the model's, and each granted
 * booking against its row. */
static void
compare_draw(const struct model *m, const json_t *draw, json_int_t pm,
    const struct m_result *res, int n)
{
	json_t *results = json_object_get(draw, "results");
	int i, granted = 0;

	if ((int)json_array_size(results) != n)
		h_fail("%zu results, model has %d", json_array_size(results), n);
	for (i = 0; i < n; i++) {
		json_t *r = json_array_get(results, i);
		const struct m_result *x = &res[i];
		const struct m_ben *b = &m->b[x->ben];
		const struct m_wish *w = &m->w[x->wish];
		json_t *rank = json_object_get(r, "rank");
		json_t *offer = json_object_get(r, "offer_id");
		json_t *from = json_object_get(r, "from_block");
		json_t *bk = json_object_get(r, "booking_id");
		const char *reason = str_or_null(r, "reason");
		bool ok = true;

		ok &= w_int(r, "position") == i + 1;
		ok &= w_int(r, "beneficiary_id") == b->id;
		ok &= w_int(r, "attended") == b->attended;
		ok &= w_int(r, "no_shows") == b->no_shows;
		ok &= json_number_value(json_object_get(r, "score")) == x->score;
		ok &= strcmp(w_str(r, "lottery_key"), x->key) == 0;
		ok &= w_int(r, "seats") == w->seats;
		ok &= (int)json_array_size(json_object_get(r, "choices")) ==
		    w->n;
		if (x->rank == 0) {
			ok &= json_is_null(rank) && json_is_null(offer) &&
			    json_is_null(from) && json_is_null(bk) &&
			    json_is_null(json_object_get(r, "code"));
			ok &= reason != NULL && strcmp(reason, x->reason) == 0;
		} else {
			ok &= json_is_integer(rank) &&
			    json_integer_value(rank) == x->rank;
			ok &= json_is_integer(offer) &&
			    json_integer_value(offer) == m->o[x->offer].id;
			ok &= json_is_integer(from) &&
			    json_integer_value(from) == x->from_block;
			ok &= json_is_integer(bk) && reason == NULL &&
			    str_or_null(r, "code") != NULL;
		}
		if (!ok)
			h_fail("result %d: %s\nmodel: beneficiary %lld score %g "
			    "attended %d no_shows %d key %.12s rank %d offer "
			    "%lld from_block %d reason %s", i + 1,
			    h_json_str(r), (long long)b->id, x->score,
			    b->attended, b->no_shows, x->key, x->rank,
			    x->rank ? (long long)m->o[x->offer].id : 0LL,
			    x->from_block, x->reason ? x->reason : "-");
		if (x->rank != 0) {
			granted++;
			/* the booking is what the result says */
			assert_int_equal(sql_int("SELECT count(*) FROM bookings "
			    "WHERE id = %lld AND offer_id = %lld AND "
			    "beneficiary_id = %lld AND seats = %d AND "
			    "block_seats = %d AND permanence_id = %lld AND "
			    "source = 'draw' AND status = 'confirmed'",
			    (long long)json_integer_value(bk),
			    (long long)m->o[x->offer].id, (long long)b->id,
			    w->seats, x->from_block, (long long)pm), 1);
		}
	}
	assert_int_equal(w_int(draw, "wishes"), n);
	assert_int_equal(w_int(draw, "granted"), granted);
	assert_int_equal(w_int(draw, "permanence_id"), pm);
}

/* What each offer had at the start of the draw, as the daemon stored it:
 * every offer of the model found there agrees, and every one with block
 * seats is there. */
static void
compare_offers(const struct model *m, const json_t *draw)
{
	json_t *offers = json_object_get(draw, "offers"), *e;
	size_t i;
	int k;

	for (k = 0; k < m->no; k++) {
		bool found = false;

		json_array_foreach(offers, i, e) {
			if (m->o[k].id != w_int(e, "offer_id"))
				continue;
			if (w_int(e, "block_remaining") != m->o[k].block ||
			    w_int(e, "pool_available") != m->o[k].pool)
				h_fail("offer %lld at the start: %s, model "
				    "block %d pool %d", (long long)m->o[k].id,
				    h_json_str(e), m->o[k].block, m->o[k].pool);
			found = true;
		}
		if (!found && m->o[k].block > 0)
			h_fail("offer %lld with a block is not in %s",
			    (long long)m->o[k].id, h_json_str(offers));
	}
}

/* ----------------------------------------------- the rules, 30 people */

#define NB 30
#define ND 6
#define ROUNDS 7

enum outcome { NONE, ATTENDED, NO_SHOW, LATE, CANCELLED };

static struct world W;
static struct model M;
static struct m_offer offers[ND];
static struct m_ben bens[NB];
static struct m_wish wishes[NB];
static time_t T;                    /* the permanences' start */

/* One round of the history: an offer, bookings (some cancelled), the
 * door, then the offer moved to `at` and its attendance closed, and late
 * arrivals checked in after that. At `future` (at = T, not yet started)
 * there are only check-ins. The model counts what falls in the window. */
static void
history_round(time_t at, bool in_window, bool future)
{
	json_int_t o = offer_at(W.partner, NB + 5, 1, time(NULL) + 60 * W_DAY);
	json_int_t bk[NB] = {0};
	char codes[NB][32];
	enum outcome out[NB];
	char sql[512];
	int i;

	for (i = 0; i < NB; i++) {
		unsigned v = rnd(10);

		out[i] = v < 4 ? NONE : v < 6 || v == 9 ? ATTENDED :
		    v == 6 ? NO_SHOW : v == 7 ? LATE : CANCELLED;
		if (future && (out[i] == NO_SHOW || out[i] == LATE))
			out[i] = ATTENDED;
		if (out[i] == NONE)
			continue;
		{
			json_t *b = w_book(W.ref, o, bens[i].id, 1);

			bk[i] = w_int(b, "id");
			snprintf(codes[i], sizeof codes[i], "%s",
			    w_str(b, "code"));
			json_decref(b);
		}
		if (out[i] == CANCELLED)
			json_decref(OK(W.ref, "booking.cancel", "{s:I}",
			    "booking_id", bk[i]));
		else if (out[i] == ATTENDED)
			json_decref(OK(W.partner, "ticket.check_in", "{s:s}",
			    "code", codes[i]));
	}
	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = '%s', "
	    "booking_deadline = '%s' WHERE id = %lld", w_iso(at),
	    w_iso(at - 2 * W_DAY), (long long)o);
	h_db_exec(db, sql);
	if (!future) {
		json_t *c = OK(W.partner, "offer.close_attendance", "{s:I}",
		    "offer_id", o);
		int no_show = 0;

		for (i = 0; i < NB; i++)
			no_show += out[i] == NO_SHOW || out[i] == LATE;
		assert_int_equal(w_int(c, "no_show"), no_show);
		json_decref(c);
	}
	for (i = 0; i < NB; i++) {
		if (out[i] == LATE)     /* a late arrival after the close */
			json_decref(OK(W.partner, "ticket.check_in", "{s:s}",
			    "code", codes[i]));
		if (out[i] == NONE || out[i] == CANCELLED)
			continue;
		m_book(&bens[i], o, at, false);
		if (!in_window)
			continue;
		if (out[i] == NO_SHOW)
			bens[i].no_shows++;
		else
			bens[i].attended++;
	}
}

static json_t *
wish_params(json_int_t pm, const struct m_wish *w)
{
	json_t *choices = json_array();
	int k;

	for (k = 0; k < w->n; k++)
		json_array_append_new(choices,
		    json_integer(M.o[w->choice[k]].id));
	return json_pack("{s:I, s:I, s:o, s:i}", "permanence_id", pm,
	    "beneficiary_id", M.b[w->ben].id, "choices", choices, "seats",
	    w->seats);
}

/* Results in draw order: beneficiary ids, for comparing two draws. */
static void
draw_order(const json_t *draw, json_int_t *ids, int *n)
{
	json_t *results = json_object_get(draw, "results"), *r;
	size_t i;

	json_array_foreach(results, i, r)
		ids[i] = w_int(r, "beneficiary_id");
	*n = (int)json_array_size(results);
}

/* docs/draw.md's replay query, as printed there, with pid bound: every
 * recomputed position and score must be the stored ones. */
static void
replay_as_documented(json_int_t pm, int n_wishes)
{
	static const char query[] =
	    "WITH pm AS (\n"
	    "    SELECT p.id, p.starts_at, p.draw_seed AS seed,\n"
	    "           (p.draw_result->>'no_show_weight')::numeric AS weight,\n"
	    "           coalesce((p.draw_result->>'withdrawn_late_weight')::numeric, 0)\n"
	    "               AS wl_weight,\n"
	    "           (p.draw_result->>'window_from')::timestamptz AS window_from\n"
	    "      FROM permanences p\n"
	    "     WHERE p.id = %lld),\n"
	    "history AS (\n"
	    "    SELECT w.beneficiary_id, w.draw_position, w.score AS stored_score,\n"
	    "           count(bk.id) FILTER (WHERE bk.status = 'attended') AS attended,\n"
	    "           count(bk.id) FILTER (WHERE bk.status = 'no_show') AS no_shows,\n"
	    "           count(bk.id) FILTER (WHERE bk.status = 'withdrawn_late') AS withdrawn_late\n"
	    "      FROM pm\n"
	    "      JOIN wishes w ON w.permanence_id = pm.id AND w.draw_position IS NOT NULL\n"
	    "      LEFT JOIN (bookings bk JOIN offers o ON o.id = bk.offer_id)\n"
	    "             ON bk.beneficiary_id = w.beneficiary_id\n"
	    "            AND bk.status IN ('attended', 'no_show', 'withdrawn_late')\n"
	    "            AND o.starts_at >= pm.window_from AND o.starts_at < pm.starts_at\n"
	    "     GROUP BY w.beneficiary_id, w.draw_position, w.score),\n"
	    "replay AS (\n"
	    "    SELECT h.*, h.attended + pm.weight * h.no_shows\n"
	    "                + pm.wl_weight * h.withdrawn_late AS score,\n"
	    "           encode(sha256(convert_to(pm.seed || ':' || h.beneficiary_id, 'UTF8')),\n"
	    "                  'hex') AS lottery_key\n"
	    "      FROM history h, pm)\n"
	    "SELECT row_number() OVER (ORDER BY score, lottery_key COLLATE \"C\",\n"
	    "                          beneficiary_id) AS position,\n"
	    "       draw_position AS stored_position,\n"
	    "       beneficiary_id, attended, no_shows, withdrawn_late,\n"
	    "       trim_scale(score) AS score, stored_score,\n"
	    "       left(lottery_key, 16) AS lottery_key_start\n"
	    "  FROM replay\n"
	    " ORDER BY position";
	char sql[4096];

	snprintf(sql, sizeof sql, query, (long long)pm);
	{
		char wrap[4600];

		snprintf(wrap, sizeof wrap, "SELECT count(*) FILTER (WHERE "
		    "position = stored_position AND score = stored_score) || '/' "
		    "|| count(*) FROM (%s) q", sql);
		{
			char want[32];

			snprintf(want, sizeof want, "%d/%d", n_wishes, n_wishes);
			assert_string_equal(h_db_exec(db, wrap), want);
		}
	}
}

static void
test_draw_rules(void **state)
{
	struct h_daemon *d;
	json_t *r, *draw1, *again, *draw2;
	json_int_t pm1, pm2, pm3, pm_other, fa, fc;
	struct m_result *res;
	char seed[65], hash[65], sql[256];
	json_int_t ids1[NB], ids2[NB];
	int n1, n2, i, k, nres, nres2;
	long long bookings_before;
	int block_left;

	d = h_daemon_start("draw_rules", "[policy]\n"
	    "max_upcoming_per_beneficiary = 2\nmax_per_month = 1\n"
	    "history_window_days = 90\nno_show_weight = 3\n");
	world_build(&W, d);
	db = h_db_connect(d->conninfo);
	rng_state = 20190416;
	memset(&M, 0, sizeof M);
	memset(bens, 0, sizeof bens);
	M.o = offers;
	M.no = ND;
	M.b = bens;
	M.nb = NB;
	M.w = wishes;
	M.max_upcoming = 2;
	M.max_month = 1;
	M.weight = 3;

	/* The permanences start tomorrow, on the hour. */
	T = (time(NULL) / 3600 + 26) * 3600;
	pm1 = permanence_at(W.ref, T);
	for (i = 0; i < NB; i++) {
		char first[16];

		snprintf(first, sizeof first, "P%02d", i);
		bens[i].id = w_beneficiary(W.ref, first, "Tirage");
	}

	/* History. The window is [T - 90 x 24 h, T). */
	history_round(T - 10 * W_DAY, true, false);
	history_round(T - 40 * W_DAY, true, false);
	history_round(T - 89 * W_DAY, true, false);
	history_round(T - 90 * W_DAY, true, false);      /* first instant */
	history_round(T - 90 * W_DAY - 1, false, false); /* just before */
	history_round(T - 200 * W_DAY, false, false);
	history_round(T, false, true);                   /* at T: after */

	/* The offers drawn: months A (2 from now) and B (3 from now). */
	{
		static const struct { int seats, max, add, day, block; } s[ND] = {
			{4, 3, 2, 12, 2}, {3, 3, 2, 14, 0}, {5, 3, 3, 12, 3},
			{2, 2, 3, 14, 2}, {6, 3, 2, 16, 1}, {4, 3, 3, 16, 0},
		};

		for (k = 0; k < ND; k++) {
			offers[k].starts = month_day(s[k].add, s[k].day);
			/* a block holds at most half the seats
			 * (max_block_share): set it aside from twice as
			 * many, then the venue takes the extra seats away */
			offers[k].id = offer_at(W.partner, s[k].seats <
			    2 * s[k].block ? 2 * s[k].block : s[k].seats,
			    s[k].max, offers[k].starts);
			offers[k].month = paris_month(offers[k].starts);
			offers[k].max = s[k].max;
			offers[k].block = s[k].block;
			offers[k].pool = s[k].seats - s[k].block;
			if (s[k].block > 0)
				json_decref(OK(W.ref,
				    "permanence.reserve_block",
				    "{s:I, s:I, s:i}", "permanence_id", pm1,
				    "offer_id", offers[k].id, "seats",
				    s[k].block));
			if (s[k].seats < 2 * s[k].block)
				json_decref(OK(W.partner, "offer.set_seats",
				    "{s:I, s:i}", "offer_id", offers[k].id,
				    "seats", s[k].seats));
		}
	}
	/* Another permanence's block is not this one's to give. */
	pm_other = permanence_at(W.ref, T + 3 * W_DAY);
	json_decref(OK(W.ref, "permanence.reserve_block", "{s:I, s:I, s:i}",
	    "permanence_id", pm_other, "offer_id", offers[5].id, "seats", 1));
	offers[5].pool -= 1;

	/* Duplicates: P03 holds D0, P07 D2, P11 D5 (1 pool seat each). */
	{
		static const int who[] = {3, 7, 11}, what[] = {0, 2, 5};

		for (i = 0; i < 3; i++) {
			json_decref(w_book(W.ref, offers[what[i]].id,
			    bens[who[i]].id, 1));
			m_book(&bens[who[i]], offers[what[i]].id,
			    offers[what[i]].starts, true);
			offers[what[i]].pool -= 1;
		}
	}
	/* Caps: P04 and P08 have an outing in month A already, P09 two
	 * upcoming outings. */
	{
		time_t ta = month_day(2, 20), tc = month_day(4, 12);

		fa = offer_at(W.partner, 40, 1, ta);
		fc = offer_at(W.partner, 40, 1, tc);
		json_decref(w_book(W.ref, fa, bens[4].id, 1));
		m_book(&bens[4], fa, ta, true);
		json_decref(w_book(W.ref, fa, bens[8].id, 1));
		m_book(&bens[8], fa, ta, true);
		json_decref(w_book(W.ref, fa, bens[9].id, 1));
		m_book(&bens[9], fa, ta, true);
		json_decref(w_book(W.ref, fc, bens[9].id, 1));
		m_book(&bens[9], fc, tc, true);
	}

	/* Wishes: 1 to 3 choices, party of 1 to 3 within every choice's
	 * max_per_booking; some first choices forced onto the cases above. */
	for (i = 0; i < NB; i++) {
		struct m_wish *w = &wishes[i];
		int max = 3, forced = -1;

		w->ben = i;
		w->n = 1 + (int)rnd(3);
		for (k = 0; k < w->n; k++) {
			int c, j, dup;

			do {
				c = (int)rnd(ND);
				for (dup = 0, j = 0; j < k; j++)
					dup |= w->choice[j] == c;
			} while (dup);
			w->choice[k] = c;
		}
		forced = i == 3 ? 0 : i == 7 ? 2 : i == 11 ? 5 : i == 4 ? 1 :
		    i == 8 ? 4 : -1;
		if (forced >= 0) {
			for (k = 1; k < w->n; k++)
				if (w->choice[k] == forced)
					w->choice[k] = w->choice[0];
			w->choice[0] = forced;
		}
		/* P03 and P07 want only what they hold (duplicate), P04 only
		 * an offer of a month she has used up (limit_reached) */
		if (i == 3 || i == 7 || i == 4)
			w->n = 1;
		for (k = 0; k < w->n; k++)
			if (offers[w->choice[k]].max < max)
				max = offers[w->choice[k]].max;
		w->seats = 1 + (int)rnd((unsigned)max);
	}
	M.nw = NB;
	/* P05 first wished for D1 alone, then changed her mind. */
	{
		struct m_wish first = {5, 1, {1, 0, 0}, 1};
		json_t *w1 = h_call_ok(W.ref, "permanence.wish",
		    wish_params(pm1, &first));
		json_int_t old = w_int(w1, "id");

		json_decref(w1);
		w1 = h_call_ok(W.ref, "permanence.wish",
		    wish_params(pm1, &wishes[5]));
		assert_int_equal(w_int(w1, "replaces_wish_id"), old);
		json_decref(w1);
	}
	for (i = 0; i < NB; i++)
		if (i != 5)
			json_decref(h_call_ok(W.ref, "permanence.wish",
			    wish_params(pm1, &wishes[i])));
	/* P29 is erased after wishing: left out of the draw. */
	json_decref(OK(W.ref, "beneficiary.erase", "{s:I}", "beneficiary_id",
	    bens[29].id));
	bens[29].erased = true;
	r = OK(W.ref, "permanence.get", "{s:I}", "permanence_id", pm1);
	assert_int_equal(w_int(r, "wishes_count"), NB - 1);
	json_decref(r);

	/* The draw, and the model's. */
	bookings_before = sql_int("SELECT count(*) FROM bookings");
	committed_hash(W.ref, pm1, hash);
	draw1 = OK(W.ref, "permanence.draw", "{s:I}", "permanence_id", pm1);
	revealed_seed(draw1, hash, seed);
	assert_int_equal(w_int(draw1, "history_window_days"), 90);
	assert_true(json_number_value(json_object_get(draw1,
	    "no_show_weight")) == 3);
	assert_string_equal(w_str(draw1, "window_from"), w_iso(T - 90 * W_DAY));
	assert_string_equal(w_str(draw1, "window_to"), w_iso(T));
	compare_offers(&M, draw1);
	res = m_draw(&M, seed, &nres);
	assert_int_equal(nres, NB - 1);
	compare_draw(&M, draw1, pm1, res, nres);
	{
		/* the data exercise what they were built for */
		int reasons[3] = {0}, ranks[4] = {0}, blocks = 0;
		bool tie = false;

		for (i = 0; i < nres; i++) {
			if (res[i].reason != NULL)
				reasons[strcmp(res[i].reason, "sold_out") == 0 ?
				    0 : strcmp(res[i].reason, "duplicate") == 0 ?
				    1 : 2]++;
			ranks[res[i].rank]++;
			blocks += res[i].from_block;
			if (i > 0 && res[i].score == res[i - 1].score)
				tie = true;
		}
		print_message("draw of %d wishes: rank 1 %d, rank 2 %d, rank 3 "
		    "%d, sold_out %d, duplicate %d, limit_reached %d, %d seats "
		    "from the block\n", nres, ranks[1], ranks[2], ranks[3],
		    reasons[0], reasons[1], reasons[2], blocks);
		assert_true(reasons[0] > 0 && reasons[1] > 0 && reasons[2] > 0);
		assert_true(ranks[1] > 0 && ranks[2] + ranks[3] > 0);
		assert_true(blocks > 0);
		assert_true(tie);
		assert_true(res[0].score < res[nres - 1].score);
	}
	assert_int_equal(sql_int("SELECT count(*) FROM bookings") -
	    bookings_before, w_int(draw1, "granted"));
	/* blocks after the draw, by the model */
	block_left = 0;
	for (k = 0; k < ND; k++) {
		block_left += offers[k].block;
		assert_int_equal(sql_int("SELECT seats_total - seats_taken - "
		    "seats_held FROM offers WHERE id = %lld",
		    (long long)offers[k].id), offers[k].pool);
	}
	check_invariants();

	/* Drawing again: the same JSON, not one booking more. */
	bookings_before = sql_int("SELECT count(*) FROM bookings");
	again = OK(W.ref, "permanence.draw", "{s:I}", "permanence_id", pm1);
	if (!json_equal(draw1, again))
		h_fail("second draw differs:\n%s", h_json_str(again));
	json_decref(again);
	assert_int_equal(sql_int("SELECT count(*) FROM bookings"),
	    bookings_before);
	r = OK(W.ref, "permanence.get", "{s:I}", "permanence_id", pm1);
	assert_true(json_equal(json_object_get(r, "draw"), draw1));
	/* each wish shows its outcome */
	{
		json_t *ws = json_object_get(r, "wishes"), *x;
		size_t j;

		assert_int_equal(json_array_size(ws), NB - 1);
		json_array_foreach(ws, j, x) {
			for (i = 0; i < nres; i++)
				if (bens[res[i].ben].id ==
				    w_int(x, "beneficiary_id"))
					break;
			assert_true(i < nres);
			if (res[i].rank)
				assert_int_equal(w_int(x, "rank"), res[i].rank);
			else
				assert_string_equal(w_str(x, "reason"),
				    res[i].reason);
		}
	}
	json_decref(r);
	/* Anyone can replay it, as docs/draw.md shows. */
	replay_as_documented(pm1, nres);

	/* The same seed on a second permanence at the same time, the same
	 * wishes: the same order (scores and keys do not depend on the first
	 * draw's bookings, which are not outings yet), and the allocation
	 * the model finds with what the first draw left. No API chooses a
	 * seed: the test plants it in the database. */
	pm2 = permanence_at(W.ref, T);
	snprintf(sql, sizeof sql, "UPDATE permanences SET draw_secret = '%s' "
	    "WHERE id = %lld", seed, (long long)pm2);
	h_db_exec(db, sql);
	for (i = 0; i < NB - 1; i++)
		json_decref(h_call_ok(W.ref, "permanence.wish",
		    wish_params(pm2, &wishes[i])));
	for (k = 0; k < ND; k++)
		offers[k].block = 0;     /* pm2 has no block */
	committed_hash(W.ref, pm2, hash);
	draw2 = OK(W.ref, "permanence.draw", "{s:I}", "permanence_id", pm2);
	{
		char seed2[65];

		revealed_seed(draw2, hash, seed2);
		assert_string_equal(seed2, seed);
	}
	compare_offers(&M, draw2);
	draw_order(draw1, ids1, &n1);
	draw_order(draw2, ids2, &n2);
	assert_int_equal(n1, n2);
	for (i = 0; i < n1; i++)
		assert_int_equal(ids1[i], ids2[i]);
	{
		struct m_result *res2 = m_draw(&M, seed, &nres2);

		assert_int_equal(nres2, nres);
		compare_draw(&M, draw2, pm2, res2, nres2);
		for (i = 0; i < nres; i++)
			assert_string_equal(res[i].key, res2[i].key);
		free(res2);
	}
	json_decref(draw2);
	json_decref(draw1);
	check_invariants();

	/* A permanence's own seed: 32 random bytes in hex, committed to
	 * before, stored, and the keys are made with it. */
	pm3 = permanence_at(W.ref, T + W_DAY);
	for (i = 0; i < 4; i++)
		json_decref(OK(W.ref, "permanence.wish",
		    "{s:I, s:I, s:[I], s:i}", "permanence_id", pm3,
		    "beneficiary_id", bens[i].id, "choices", offers[1].id,
		    "seats", 1));
	committed_hash(W.ref, pm3, hash);
	r = OK(W.ref, "permanence.draw", "{s:I}", "permanence_id", pm3);
	revealed_seed(r, hash, seed);
	{
		const char *s = seed;
		json_t *results = json_object_get(r, "results"), *x;
		json_t *g = OK(W.ref, "permanence.get", "{s:I}",
		    "permanence_id", pm3);
		char key[65], prev[65] = "";
		double prev_score = -1;
		size_t j;

		if (!is_hex64(s))
			h_fail("seed is not 64 hex digits: %s", s);
		assert_string_equal(w_str(g, "seed"), s);
		json_decref(g);
		assert_int_equal(json_array_size(results), 4);
		json_array_foreach(results, j, x) {
			double sc = json_number_value(json_object_get(x,
			    "score"));

			lottery_key(s, w_int(x, "beneficiary_id"), key);
			assert_string_equal(w_str(x, "lottery_key"), key);
			assert_true(sc > prev_score || (sc == prev_score &&
			    strcmp(prev, key) < 0));
			prev_score = sc;
			memcpy(prev, key, sizeof key);
		}
		/* and another permanence has another seed */
		{
			json_int_t pm4 = permanence_at(W.ref, T + 2 * W_DAY);
			json_t *r4 = OK(W.ref, "permanence.draw", "{s:I}",
			    "permanence_id", pm4);

			assert_true(is_hex64(w_str(r4, "seed")));
			assert_string_not_equal(w_str(r4, "seed"), s);
			json_decref(r4);
		}
	}
	json_decref(r);

	/* Closing gives back exactly what the draw left in the block. */
	r = OK(W.ref, "permanence.close", "{s:I}", "permanence_id", pm1);
	assert_int_equal(w_int(r, "seats_returned"), block_left);
	json_decref(r);
	json_decref(OK(W.ref, "permanence.close", "{s:I}", "permanence_id",
	    pm_other));
	check_invariants();

	free(res);
	world_close(&W);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d), 0);
}

/* ----------------------------------------- 2,000 wishes, 100 offers */

#define BIG_B 2000
#define BIG_O 100
#define BIG_C 4

static struct model BM;
static struct m_offer big_o[BIG_O];
static struct m_ben *big_b;
static struct m_wish *big_w;
static json_int_t big_pm;

static json_t *
p_big_ben(int i)
{
	char first[16];

	snprintf(first, sizeof first, "G%04d", i);
	return json_pack("{s:s, s:s, s:b}", "first_name", first, "last_name",
	    "Foule", "consent", 1);
}

static void
d_big_ben(int i, json_t *r)
{
	big_b[i].id = w_int(r, "id");
}

static json_t *
p_big_wish(int i)
{
	const struct m_wish *w = &big_w[i];
	json_t *choices = json_array();
	int k;

	for (k = 0; k < w->n; k++)
		json_array_append_new(choices,
		    json_integer(big_o[w->choice[k]].id));
	return json_pack("{s:I, s:I, s:o, s:i}", "permanence_id", big_pm,
	    "beneficiary_id", big_b[w->ben].id, "choices", choices, "seats",
	    w->seats);
}

static void
test_draw_large(void **state)
{
	struct h_daemon *d;
	struct world w;
	struct st_client *cs[BIG_C], *slow;
	struct m_result *res;
	json_t *draw;
	int i, k, n, block_total = 0;
	char seed[65], hash[65];

	d = h_daemon_start("draw_large", "[database]\npool_size = 6\n"
	    "[policy]\nmax_upcoming_per_beneficiary = 2\nmax_per_month = 1\n");
	world_build(&w, d);
	db = h_db_connect(d->conninfo);
	rng_state = 7443;
	big_b = calloc(BIG_B, sizeof *big_b);
	big_w = calloc(BIG_B, sizeof *big_w);
	assert_non_null(big_b);
	assert_non_null(big_w);
	memset(&BM, 0, sizeof BM);
	BM.o = big_o;
	BM.no = BIG_O;
	BM.b = big_b;
	BM.nb = BIG_B;
	BM.w = big_w;
	BM.nw = BIG_B;
	BM.max_upcoming = 2;
	BM.max_month = 1;
	BM.weight = 2;

	big_pm = permanence_at(w.ref, (time(NULL) / 3600 + 26) * 3600);
	for (k = 0; k < BIG_O; k++) {
		int seats = 5 + (int)rnd(26);

		big_o[k].starts = time(NULL) + (20 + k % 60) * W_DAY;
		big_o[k].id = offer_at(w.partner, seats, 3, big_o[k].starts);
		big_o[k].month = paris_month(big_o[k].starts);
		big_o[k].max = 3;
		big_o[k].block = k % 3 == 0 ? 1 + (int)rnd(5) : 0;
		if (big_o[k].block > seats / 2)   /* max_block_share 50 */
			big_o[k].block = seats / 2;
		big_o[k].pool = seats - big_o[k].block;
		block_total += big_o[k].block;
		if (big_o[k].block > 0)
			json_decref(OK(w.ref, "permanence.reserve_block",
			    "{s:I, s:I, s:i}", "permanence_id", big_pm,
			    "offer_id", big_o[k].id, "seats", big_o[k].block));
	}
	for (i = 0; i < BIG_C; i++)
		cs[i] = h_login(d, W_REF_EMAIL, W_PASSWORD);
	pipeline(cs, BIG_C, BIG_B, "beneficiary.create", p_big_ben,
	    d_big_ben);
	for (i = 0; i < BIG_B; i++) {
		struct m_wish *x = &big_w[i];

		x->ben = i;
		x->n = 1 + (int)rnd(3);
		for (k = 0; k < x->n; k++) {
			int c, j, dup;

			do {
				c = (int)rnd(BIG_O);
				for (dup = 0, j = 0; j < k; j++)
					dup |= x->choice[j] == c;
			} while (dup);
			x->choice[k] = c;
		}
		x->seats = 1 + (int)rnd(3);
	}
	pipeline(cs, BIG_C, BIG_B, "permanence.wish", p_big_wish, NULL);

	slow = slow_client(d, W_REF_EMAIL, W_PASSWORD);
	committed_hash(slow, big_pm, hash);
	draw = OK(slow, "permanence.draw", "{s:I}", "permanence_id", big_pm);
	revealed_seed(draw, hash, seed);
	compare_offers(&BM, draw);
	res = m_draw(&BM, seed, &n);
	assert_int_equal(n, BIG_B);
	compare_draw(&BM, draw, big_pm, res, n);
	assert_true(w_int(draw, "granted") > 0);
	assert_true(w_int(draw, "granted") < BIG_B);
	assert_int_equal(sql_int("SELECT count(*) FROM bookings WHERE "
	    "permanence_id = %lld", (long long)big_pm), w_int(draw, "granted"));
	check_invariants();
	/* the stored answer comes back whole */
	{
		json_t *again = OK(slow, "permanence.draw", "{s:I}",
		    "permanence_id", big_pm);

		assert_true(json_equal(draw, again));
		json_decref(again);
	}
	/* closing returns what the draw left of the blocks */
	{
		json_t *r = OK(w.ref, "permanence.close", "{s:I}",
		    "permanence_id", big_pm);
		int left = 0;

		for (k = 0; k < BIG_O; k++)
			left += big_o[k].block;
		assert_true(left <= block_total);
		assert_int_equal(w_int(r, "seats_returned"), left);
		json_decref(r);
	}
	check_invariants();

	json_decref(draw);
	free(res);
	free(big_b);
	free(big_w);
	st_close(slow);
	for (i = 0; i < BIG_C; i++)
		st_close(cs[i]);
	world_close(&w);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d), 0);
}

/* ------------------------------------------------------ racing a draw */

#define RACE_WISHERS 30
#define RACE_LATE 20
#define RACE_DRAWS 6
#define RACE_DIRECT 20
#define RACE_CONNS (RACE_DRAWS + RACE_LATE + RACE_DIRECT)

/*
 * Two daemons: six draws of one permanence, twenty wishes
 * and twenty direct bookings of the same offers, all sent at once. One
 * draw happens: every answer is the same, with the seed committed to; every
 * wish acknowledged is in it, every wish refused was refused because the
 * permanence was drawn; invariant 1 (docs/booking-rules.md) holds.
 */
static void
test_draw_race(void **state)
{
	struct h_daemon *d1, *d2;
	struct world w;
	struct st_client *c[RACE_CONNS];
	int64_t pending[RACE_CONNS];
	json_int_t offer[3], pm, ben[RACE_WISHERS + RACE_LATE + RACE_DIRECT];
	bool acked[RACE_LATE] = {false};
	json_t *first = NULL, *r;
	struct st_error err;
	char token[128], hash[65], seed[65];
	int i, k, n_ack = 0;

	d1 = h_daemon_start("draw_race1", "[database]\npool_size = 6\n"
	    "[policy]\nmax_upcoming_per_beneficiary = 50\nmax_per_month = 50\n");
	d2 = h_daemon_start_same_db(d1, "draw_race2",
	    "[database]\npool_size = 6\n[policy]\n"
	    "max_upcoming_per_beneficiary = 50\nmax_per_month = 50\n");
	world_build(&w, d1);
	db = h_db_connect(d1->conninfo);
	rng_state = 1789;
	pm = permanence_at(w.ref, (time(NULL) / 3600 + 26) * 3600);
	committed_hash(w.ref, pm, hash);
	for (k = 0; k < 3; k++) {
		offer[k] = offer_at(w.partner, 12, 2, time(NULL) + (40 + k) *
		    W_DAY);
		json_decref(OK(w.ref, "permanence.reserve_block",
		    "{s:I, s:I, s:i}", "permanence_id", pm, "offer_id",
		    offer[k], "seats", 4));
	}
	for (i = 0; i < RACE_WISHERS + RACE_LATE + RACE_DIRECT; i++) {
		char first_name[16];

		snprintf(first_name, sizeof first_name, "C%02d", i);
		ben[i] = w_beneficiary(w.ref, first_name, "Course");
	}
	for (i = 0; i < RACE_WISHERS; i++)
		json_decref(OK(w.ref, "permanence.wish",
		    "{s:I, s:I, s:[I, I], s:i}", "permanence_id", pm,
		    "beneficiary_id", ben[i], "choices", offer[i % 3],
		    offer[(i + 1) % 3], "seats", 1 + (int)rnd(2)));

	r = OK(w.ref, "auth.whoami", "{}");
	json_decref(r);
	{
		struct st_client *l = h_connect(d2);

		r = OK(l, "auth.login", "{s:s, s:s}", "email", W_REF_EMAIL,
		    "password", W_PASSWORD);
		snprintf(token, sizeof token, "%s", w_str(r, "token"));
		json_decref(r);
		st_close(l);
	}
	for (i = 0; i < RACE_CONNS; i++) {
		c[i] = h_connect(i % 2 ? d2 : d1);
		json_decref(OK(c[i], "auth.resume", "{s:s}", "token", token));
	}

	/* All at once: draws, late wishes and bookings interleaved (7 is
	 * prime to RACE_CONNS: every connection once, in a mixed order). */
	for (k = 0; k < RACE_CONNS; k++) {
		json_t *p;
		const char *m;

		i = (k * 7 + 23) % RACE_CONNS;

		if (i < RACE_DRAWS) {
			m = "permanence.draw";
			p = json_pack("{s:I}", "permanence_id", pm);
		} else if (i < RACE_DRAWS + RACE_LATE) {
			int j = RACE_WISHERS + i - RACE_DRAWS;

			m = "permanence.wish";
			p = json_pack("{s:I, s:I, s:[I], s:i}", "permanence_id",
			    pm, "beneficiary_id", ben[j], "choices",
			    offer[j % 3], "seats", 1);
		} else {
			int j = RACE_WISHERS + i - RACE_DRAWS;

			m = "booking.create";
			p = json_pack("{s:I, s:I, s:i}", "beneficiary_id",
			    ben[j], "offer_id", offer[j % 3], "seats", 1);
		}
		pending[i] = st_send(c[i], m, p, &err);
		json_decref(p);
		if (pending[i] < 0)
			h_fail("send %d: %s", i, st_strerror(&err));
	}
	for (i = 0; i < RACE_CONNS; i++) {
		int s = st_wait(c[i], pending[i], &r, &err);

		if (i < RACE_DRAWS) {
			if (s != ST_OK)
				h_fail("draw %d: %s", i, st_strerror(&err));
			if (first == NULL)
				first = r;
			else {
				if (!json_equal(first, r))
					h_fail("two draws: %s", h_json_str(r));
				json_decref(r);
			}
		} else if (i < RACE_DRAWS + RACE_LATE) {
			if (s == ST_OK) {
				acked[i - RACE_DRAWS] = true;
				n_ack++;
				json_decref(r);
			} else if (s == ST_ERR_SERVER && strcmp(err.reason,
			    "permanence_state") == 0) {
				assert_string_equal(w_str(err.data, "state"),
				    "drawn");
				st_error_clear(&err);
			} else
				h_fail("wish %d: %s", i, st_strerror(&err));
		} else {
			if (s == ST_OK)
				json_decref(r);
			else if (s == ST_ERR_SERVER && strcmp(err.reason,
			    "sold_out") == 0)
				st_error_clear(&err);
			else
				h_fail("booking %d: %s", i, st_strerror(&err));
		}
	}

	/* The seed committed to; the wishes in it are exactly the first 30
	 * and the acknowledged late ones; keys made with that seed. */
	{
		const char *s = seed;
		json_t *results = json_object_get(first, "results"), *x;
		size_t j;
		char key[65];
		int late_in = 0;

		revealed_seed(first, hash, seed);
		assert_int_equal(json_array_size(results),
		    RACE_WISHERS + n_ack);
		json_array_foreach(results, j, x) {
			json_int_t who = w_int(x, "beneficiary_id");

			lottery_key(s, who, key);
			assert_string_equal(w_str(x, "lottery_key"), key);
			for (i = 0; i < RACE_LATE; i++)
				if (ben[RACE_WISHERS + i] == who) {
					assert_true(acked[i]);
					late_in++;
				}
		}
		assert_int_equal(late_in, n_ack);
		assert_int_equal(sql_int("SELECT count(*) FROM bookings WHERE "
		    "permanence_id = %lld", (long long)pm),
		    w_int(first, "granted"));
		assert_int_equal(sql_int("SELECT count(*) FROM wishes WHERE "
		    "permanence_id = %lld AND replaced_at IS NULL",
		    (long long)pm), RACE_WISHERS + n_ack);
		print_message("race: seed %s, %d late wishes in, %lld granted\n",
		    s, n_ack, (long long)w_int(first, "granted"));
	}
	json_decref(first);
	check_invariants();

	for (i = 0; i < RACE_CONNS; i++)
		st_close(c[i]);
	world_close(&w);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d2), 0);
	assert_int_equal(h_daemon_stop(d1), 0);
}

/* ------------------------------------ offers changed after the wishes */

/* One past outing of ben at `at`: booked, checked in or not, the offer
 * moved into the past, its attendance closed. */
static void
past_outing(struct world *w, json_int_t ben, bool attended, time_t at)
{
	json_int_t o = offer_at(w->partner, 5, 1, time(NULL) + 60 * W_DAY);
	json_t *bk = w_book(w->ref, o, ben, 1);
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

/* docs/draw.md: a wish that gets nothing carries its first choice's
 * refusal, offer_cancelled and deadline_passed included when the offer
 * changed after the wish, and limit_reached when the venue lowered the
 * party size. */
static void
test_draw_changed_offers(void **state)
{
	struct h_daemon *d;
	struct world w;
	json_t *draw, *results, *r;
	json_int_t x, y, z, v, a, b, c, e, pm;
	char sql[256];
	size_t i;

	d = h_daemon_start("draw_changed", NULL);
	world_build(&w, d);
	db = h_db_connect(d->conninfo);
	pm = permanence_at(w.ref, (time(NULL) / 3600 + 26) * 3600);
	x = offer_at(w.partner, 10, 3, time(NULL) + 40 * W_DAY);
	y = offer_at(w.partner, 10, 3, time(NULL) + 41 * W_DAY);
	z = offer_at(w.partner, 10, 3, time(NULL) + 42 * W_DAY);
	v = offer_at(w.partner, 10, 3, time(NULL) + 43 * W_DAY);
	a = w_beneficiary(w.ref, "Annulé", "Choix");
	b = w_beneficiary(w.ref, "Délai", "Choix");
	c = w_beneficiary(w.ref, "Jauge", "Choix");
	e = w_beneficiary(w.ref, "Repli", "Choix");
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", a, "choices", x, "seats", 1));
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", b, "choices", y, "seats", 1));
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", c, "choices", z, "seats", 2));
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I, I], s:i}",
	    "permanence_id", pm, "beneficiary_id", e, "choices", x, v,
	    "seats", 2));
	/* then the venues change their offers */
	json_decref(OK(w.partner, "offer.cancel", "{s:I, s:s}", "offer_id", x,
	    "reason", "Intempéries"));
	snprintf(sql, sizeof sql, "UPDATE offers SET booking_deadline = now() "
	    "- interval '1 hour' WHERE id = %lld", (long long)y);
	h_db_exec(db, sql);
	json_decref(OK(w.partner, "offer.update", "{s:I, s:i}", "offer_id", z,
	    "max_per_booking", 1));
	/* a wish made now is refused for those reasons */
	r = h_call_err(w.ref, "permanence.wish", json_pack(
	    "{s:I, s:I, s:[I], s:i}", "permanence_id", pm, "beneficiary_id", a,
	    "choices", y, "seats", 1), 409, "deadline_passed");
	assert_string_equal(w_str(r, "field"), "choices");
	json_decref(r);

	draw = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm);
	results = json_object_get(draw, "results");
	assert_int_equal(json_array_size(results), 4);
	json_array_foreach(results, i, r) {
		json_int_t who = w_int(r, "beneficiary_id");

		if (who == e) {
			assert_int_equal(w_int(r, "rank"), 2);
			assert_int_equal(w_int(r, "offer_id"), v);
			assert_true(json_is_null(json_object_get(r, "reason")));
			continue;
		}
		assert_true(json_is_null(json_object_get(r, "rank")));
		assert_string_equal(w_str(r, "reason"), who == a ?
		    "offer_cancelled" : who == b ? "deadline_passed" :
		    "limit_reached");
	}
	assert_int_equal(w_int(draw, "granted"), 1);
	json_decref(draw);
	check_invariants();
	world_close(&w);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d), 0);
}

/*
 * A fractional no_show_weight, as an operator writes it in the
 * configuration (0.2: five no-shows weigh one outing). docs/draw.md: score =
 * attended + no_show_weight x no-shows, ties broken by the lottery. A
 * person with one outing and one with five no-shows both score 1, and the
 * seed's lottery decides between them; the draw stores and shows the
 * weight used.
 */
static void
test_draw_weight_fraction(void **state)
{
	struct h_daemon *d;
	struct world w;
	json_t *draw, *results;
	json_int_t a, b, o, pm;
	time_t now = time(NULL);
	char seed[65], hash[65], ka[65], kb[65], sql[256];
	const json_t *first;
	int i;

	d = h_daemon_start("draw_weight", "[policy]\nno_show_weight = 0.2\n");
	world_build(&w, d);
	db = h_db_connect(d->conninfo);
	a = w_beneficiary(w.ref, "Alix", "Sortie");
	b = w_beneficiary(w.ref, "Basile", "Absent");
	past_outing(&w, a, true, now - 10 * W_DAY);
	for (i = 0; i < 5; i++)
		past_outing(&w, b, false, now - (20 + i) * W_DAY);
	o = offer_at(w.partner, 10, 2, now + 40 * W_DAY);
	pm = permanence_at(w.ref, (now / 3600 + 26) * 3600);
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", a, "choices", o, "seats",
	    1));
	json_decref(OK(w.ref, "permanence.wish", "{s:I, s:I, s:[I], s:i}",
	    "permanence_id", pm, "beneficiary_id", b, "choices", o, "seats",
	    1));
	committed_hash(w.ref, pm, hash);
	draw = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm);
	revealed_seed(draw, hash, seed);
	lottery_key(seed, a, ka);
	lottery_key(seed, b, kb);
	results = json_object_get(draw, "results");
	/* tied at 1, the smaller key first */
	first = json_array_get(results, 0);
	assert_int_equal(w_int(first, "beneficiary_id"),
	    strcmp(kb, ka) < 0 ? b : a);
	/* the weight and the scores, as stored, in decimal */
	snprintf(sql, sizeof sql, "SELECT draw_result->>'no_show_weight' || "
	    "' ' || string_agg(w.score::text, ' ' ORDER BY w.draw_position) "
	    "FROM permanences p JOIN wishes w ON w.permanence_id = p.id "
	    "WHERE p.id = %lld GROUP BY p.id", (long long)pm);
	{
		const char *stored = h_db_exec(db, sql);

		if (strcmp(stored, "0.2 1 1") != 0)
			h_fail("no_show_weight = 0.2, seed %s: Basile (5 "
			    "no-shows, key %.8s) should tie with Alix (1 "
			    "outing, key %.8s); stored weight and "
			    "scores in draw order: \"%s\" (expected \"0.2 1 "
			    "1\")", seed, kb, ka, stored);
	}
	for (i = 0; i < 2; i++) {
		const json_t *x = json_array_get(results, (size_t)i);
		bool basile = w_int(x, "beneficiary_id") == b;

		assert_int_equal(w_int(x, "no_shows"), basile ? 5 : 0);
		assert_int_equal(w_int(x, "attended"), basile ? 0 : 1);
	}
	json_decref(draw);
	world_close(&w);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d), 0);
}

/* ------------------------------------------ docs/draw.md, as printed */

/* The worked example of docs/draw.md, on a fresh database so that the ids
 * are the ones printed there: the series, the seed and its hash, the
 * scores, the keys, the order, the allocation and the stored snapshot. */
#define DOC_SEED \
	"25a2b6d0879683d79bd64675ae9c96415bc693ee2fa8ad5616f7fc373f5ae0bb"
#define DOC_SEED_SHA256 \
	"be0bc3a1b4ff5c9ad6db097e01f38e795f6baae697c00619351cde1c5c7e254d"

static void
test_draw_doc_example(void **state)
{
	static const struct {
		json_int_t who;
		double score;
		const char *key;
		int rank;
		json_int_t offer;
		int from_block;
	} want[5] = {
		{5, 0, "5ee15d43", 1, 2, 2}, {4, 0, "94985c27", 1, 3, 0},
		{3, 0, "9587b9c1", 1, 2, 0}, {1, 1, "10549b18", 0, 0, 0},
		{2, 2, "2732eea4", 0, 0, 0},
	};
	struct h_daemon *d;
	struct world w;
	json_t *r, *items, *results, *x;
	json_int_t hist, ben[5], pm;
	time_t now = time(NULL), at = now + 30 * W_DAY;
	static const char *const names[5] = {"Marie", "Jean", "Aïcha", "Paul",
	    "Lucie"};
	char sql[256], hash[65], seed[65];
	int i;

	d = h_daemon_start("draw_doc", NULL);
	world_build(&w, d);
	db = h_db_connect(d->conninfo);

	r = OK(w.ref, "permanence.schedule_series",
	    "{s:s, s:i, s:s, s:s, s:s, s:i, s:s, s:s}", "weekday", "tuesday",
	    "nth", 2, "start_time", "10:00", "end_time", "12:00", "from_date",
	    "2027-01-01", "count", 3, "title", "Permanence culture",
	    "location", "MDS Billom");
	items = json_object_get(r, "items");
	assert_string_equal(w_str(json_array_get(items, 0), "starts_at"),
	    "2027-01-12T09:00:00Z");
	assert_string_equal(w_str(json_array_get(items, 1), "starts_at"),
	    "2027-02-09T09:00:00Z");
	assert_string_equal(w_str(json_array_get(items, 2), "starts_at"),
	    "2027-03-09T09:00:00Z");
	pm = w_int(json_array_get(items, 0), "id");
	assert_int_equal(pm, 1);
	json_decref(r);

	/* Offer 1: Marie went, Jean did not come. It is closed once in the
	 * past, then set in June 2026, inside the window of the January
	 * 2027 permanence whatever today's date. */
	hist = offer_at(w.partner, 10, 2, now + 10 * W_DAY);
	assert_int_equal(hist, 1);
	for (i = 0; i < 5; i++) {
		ben[i] = w_beneficiary(w.ref, names[i], "Exemple");
		assert_int_equal(ben[i], i + 1);
	}
	r = w_book(w.ref, hist, ben[0], 1);
	json_decref(OK(w.partner, "ticket.check_in", "{s:s}", "code",
	    w_str(r, "code")));
	json_decref(r);
	json_decref(w_book(w.ref, hist, ben[1], 1));
	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = now() - "
	    "interval '1 hour', booking_deadline = now() - interval '2 hours' "
	    "WHERE id = %lld", (long long)hist);
	h_db_exec(db, sql);
	json_decref(OK(w.partner, "offer.close_attendance", "{s:I}",
	    "offer_id", hist));
	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = "
	    "'2026-06-05T18:00:00Z', booking_deadline = '2026-06-03T18:00:00Z' "
	    "WHERE id = %lld", (long long)hist);
	h_db_exec(db, sql);

	/* Offers 2 (4 seats, 2 set aside) and 3 (2 seats), after the
	 * permanence so that they take blocks. */
	if (at < 1800000000)        /* 2027-01-15 */
		at = 1800000000 + 4 * W_DAY;
	assert_int_equal(offer_at(w.partner, 4, 4, at), 2);
	assert_int_equal(offer_at(w.partner, 2, 4, at + W_DAY), 3);
	json_decref(OK(w.ref, "permanence.reserve_block", "{s:I, s:I, s:i}",
	    "permanence_id", pm, "offer_id", (json_int_t)2, "seats", 2));
	/* Marie 2, 3; Jean 2; Aïcha 2, 3; Paul 3, 2; Lucie 2 */
	{
		static const struct { int n; json_int_t c[2]; int seats; }
		    wish[5] = {{2, {2, 3}, 2}, {1, {2, 0}, 1}, {2, {2, 3}, 2},
		    {2, {3, 2}, 2}, {1, {2, 0}, 2}};

		for (i = 0; i < 5; i++) {
			json_t *c = json_array();
			int k;

			for (k = 0; k < wish[i].n; k++)
				json_array_append_new(c,
				    json_integer(wish[i].c[k]));
			json_decref(OK(w.ref, "permanence.wish",
			    "{s:I, s:I, s:o, s:i}", "permanence_id", pm,
			    "beneficiary_id", ben[i], "choices", c, "seats",
			    wish[i].seats));
		}
	}

	/* The seed drawn at scheduling is random: the test plants the one
	 * printed, and checks the hash printed too. */
	h_db_exec(db, "UPDATE permanences SET draw_secret = '" DOC_SEED "' "
	    "WHERE id = 1");
	committed_hash(w.ref, pm, hash);
	assert_string_equal(hash, DOC_SEED_SHA256);
	r = OK(w.ref, "permanence.draw", "{s:I}", "permanence_id", pm);
	revealed_seed(r, hash, seed);
	assert_string_equal(seed, DOC_SEED);
	assert_true(json_number_value(json_object_get(r, "no_show_weight")) ==
	    2);
	assert_int_equal(w_int(r, "history_window_days"), 365);
	assert_string_equal(w_str(r, "window_from"), "2026-01-12T09:00:00Z");
	assert_string_equal(w_str(r, "window_to"), "2027-01-12T09:00:00Z");
	assert_int_equal(w_int(r, "wishes"), 5);
	assert_int_equal(w_int(r, "granted"), 3);
	x = json_object_get(r, "offers");
	assert_int_equal(json_array_size(x), 2);
	assert_int_equal(w_int(json_array_get(x, 0), "offer_id"), 2);
	assert_int_equal(w_int(json_array_get(x, 0), "block_remaining"), 2);
	assert_int_equal(w_int(json_array_get(x, 0), "pool_available"), 2);
	assert_int_equal(w_int(json_array_get(x, 1), "offer_id"), 3);
	assert_int_equal(w_int(json_array_get(x, 1), "block_remaining"), 0);
	assert_int_equal(w_int(json_array_get(x, 1), "pool_available"), 2);
	results = json_object_get(r, "results");
	assert_int_equal(json_array_size(results), 5);
	for (i = 0; i < 5; i++) {
		x = json_array_get(results, i);
		assert_int_equal(w_int(x, "position"), i + 1);
		assert_int_equal(w_int(x, "beneficiary_id"), want[i].who);
		assert_true(json_number_value(json_object_get(x, "score")) ==
		    want[i].score);
		assert_memory_equal(w_str(x, "lottery_key"), want[i].key, 8);
		if (want[i].rank == 0) {
			assert_true(json_is_null(json_object_get(x, "rank")));
			assert_true(json_is_null(json_object_get(x,
			    "booking_id")));
			assert_string_equal(w_str(x, "reason"), "sold_out");
			continue;
		}
		assert_int_equal(w_int(x, "rank"), want[i].rank);
		assert_int_equal(w_int(x, "offer_id"), want[i].offer);
		assert_int_equal(w_int(x, "from_block"), want[i].from_block);
	}
	/* "booking_id": 3 for Lucie: the two history bookings came first */
	assert_int_equal(w_int(json_array_get(results, 0), "booking_id"), 3);
	json_decref(r);
	check_invariants();
	world_close(&w);
	PQfinish(db);
	db = NULL;
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_draw_doc_example),
		cmocka_unit_test(test_draw_rules),
		cmocka_unit_test(test_draw_large),
		cmocka_unit_test(test_draw_race),
		cmocka_unit_test(test_draw_changed_offers),
		cmocka_unit_test(test_draw_weight_fraction),
	};

	/* Months of the caps are calendar months in the structures' zone. */
	setenv("TZ", "Europe/Paris", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
