/*
 * The benchmark's own data, made through the API like any client would:
 * a partner, a structure, a referent of that structure, offers published
 * by the admin for the partner, and beneficiaries made by the referent.
 * Everything is named after the run's tag, so runs on one database do not
 * collide.
 *
 * With --identity every beneficiary is given an identity key through
 * beneficiary.set_identity, as a referent would, and a share of them a
 * twin: a record of a second structure given the same identity, so the
 * same key. The names typed for the key carry the tag: the keys of two
 * runs never meet, and a person has exactly one or two records.
 *
 * With --bulk-beneficiaries the beneficiaries are inserted by one SQL
 * statement through --db instead: tens of thousands of beneficiary.create
 * calls take minutes on a durable cluster, where each is a commit waiting
 * for its WAL flush. The rows are the same but for the audit log. Plain
 * blocking libpq: this runs once, before the load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "bench.h"

/* Requests in flight while creating many objects on one connection: below
 * the daemon's default max_inflight (64). */
#define CREATE_WINDOW 32

static void random_password(char *, size_t);

/* The params of the i-th object of a series (new reference). */
typedef json_t *(*param_fn)(const struct bench_config *,
			    const struct bench_fixture *, int i);

static struct st_client *
connect_login(const struct bench_config *cfg, const char *email,
	      const char *password, char *token, size_t token_len)
{
	struct st_error err = {0};
	struct st_client *c;
	json_t *params, *res = NULL;
	const char *t;

	if ((c = st_connect(&cfg->opt, &err)) == NULL) {
		bench_warnx("%s: %s", cfg->server, st_strerror(&err));
		return NULL;
	}
	params = json_pack("{s:s, s:s}", "email", email, "password", password);
	if (st_call(c, "auth.login", params, &res, &err) != ST_OK) {
		bench_warnx("login as %s: %s", email, st_strerror(&err));
		st_error_clear(&err);
		goto fail;
	}
	t = json_string_value(json_object_get(res, "token"));
	if (t == NULL || strlen(t) >= token_len) {
		bench_warnx("login as %s: no token in the answer", email);
		goto fail;
	}
	snprintf(token, token_len, "%s", t);
	json_decref(params);
	json_decref(res);
	return c;
fail:
	json_decref(params);
	json_decref(res);
	st_close(c);
	return NULL;
}

/* One create call; its "id", or -1. params is stolen. */
static int64_t
create_one(struct st_client *c, const char *method, json_t *params)
{
	struct st_error err = {0};
	json_t *res = NULL;
	int64_t id = -1;

	if (params == NULL) {
		bench_warnx("%s: cannot build the params", method);
		return -1;
	}
	if (st_call(c, method, params, &res, &err) != ST_OK) {
		bench_warnx("%s: %s", method, st_strerror(&err));
		st_error_clear(&err);
	} else if (!json_is_integer(json_object_get(res, "id")))
		bench_warnx("%s: no id in the answer", method);
	else
		id = json_integer_value(json_object_get(res, "id"));
	json_decref(params);
	json_decref(res);
	return id;
}

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* n creations pipelined CREATE_WINDOW at a time; their ids, sorted, in
 * ids[]. 0 or -1. */
static int
create_many(const struct bench_config *cfg, const struct bench_fixture *fx,
	    struct st_client *c, const char *method, int n, param_fn fn,
	    int64_t *ids)
{
	int64_t reqs[CREATE_WINDOW];
	struct st_error err = {0};
	json_t *params, *res;
	int i, j, w;

	for (i = 0; i < n; i += w) {
		w = n - i < CREATE_WINDOW ? n - i : CREATE_WINDOW;
		for (j = 0; j < w; j++) {
			if ((params = fn(cfg, fx, i + j)) == NULL) {
				bench_warnx("%s: cannot build the params",
					    method);
				return -1;
			}
			reqs[j] = st_send(c, method, params, &err);
			json_decref(params);
			if (reqs[j] < 0) {
				bench_warnx("%s: %s", method,
					    st_strerror(&err));
				return -1;
			}
		}
		for (j = 0; j < w; j++) {
			if (st_wait(c, reqs[j], &res, &err) != ST_OK) {
				bench_warnx("%s: %s", method,
					    st_strerror(&err));
				st_error_clear(&err);
				return -1;
			}
			if (!json_is_integer(json_object_get(res, "id"))) {
				bench_warnx("%s: no id in the answer", method);
				json_decref(res);
				return -1;
			}
			ids[i + j] =
			    json_integer_value(json_object_get(res, "id"));
			json_decref(res);
		}
	}
	qsort(ids, (size_t)n, sizeof ids[0], cmp_id);
	return 0;
}

/* RFC 3339, UTC, `seconds` from now. */
static void
rfc3339_in(char *buf, size_t len, long long seconds)
{
	time_t t = time(NULL) + (time_t)seconds;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *
offer_params(const struct bench_config *cfg, const struct bench_fixture *fx,
	     int i)
{
	char starts[32], title[96];

	/* A month ahead, a minute apart: far from every deadline, and in
	 * offer.list's default window. */
	rfc3339_in(starts, sizeof starts, 30LL * 86400 + 60LL * i);
	snprintf(title, sizeof title, "Bench %s #%d", cfg->tag, i + 1);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:I}", "title",
			 title, "category", "show", "venue", "Salle du banc",
			 "city", "Benchville", "starts_at", starts, "seats",
			 fx->seats, "max_per_booking", 4, "partner_id",
			 (json_int_t)fx->partner_id);
}

static json_t *
beneficiary_params(const struct bench_config *cfg,
		   const struct bench_fixture *fx, int i)
{
	char last[32];

	snprintf(last, sizeof last, "P%06d", i + 1);
	return json_pack("{s:s, s:s, s:b}", "first_name", "Banc", "last_name",
			 last, "consent", 1);
}

/* The n beneficiaries of the referent's structure in one statement, named
 * as beneficiary_params() names them; their ids, sorted, in ids[]. 0 or
 * -1. */
static const char sql_bulk_beneficiaries[] =
    "INSERT INTO beneficiaries (structure_id, first_name, last_name,"
    "                           consent_at, created_by)"
    " SELECT $1::bigint, 'Banc', 'P' || lpad(i::text, 6, '0'), now(),"
    "        $2::bigint"
    "   FROM generate_series(1, $3::integer) i"
    " RETURNING id";

static int
bulk_beneficiaries(const struct bench_config *cfg, int64_t structure_id,
		   int64_t user_id, int n, int64_t *ids)
{
	char sid[24], uid[24], count[24];
	const char *params[3] = {sid, uid, count};
	PGconn *db;
	PGresult *r = NULL;
	int i, ret = -1;

	snprintf(sid, sizeof sid, "%lld", (long long)structure_id);
	snprintf(uid, sizeof uid, "%lld", (long long)user_id);
	snprintf(count, sizeof count, "%d", n);
	db = PQconnectdb(cfg->db);
	if (PQstatus(db) != CONNECTION_OK) {
		bench_warnx("--bulk-beneficiaries: database: %s",
			    PQerrorMessage(db));
		goto out;
	}
	r = PQexecParams(db, sql_bulk_beneficiaries, 3, NULL, params, NULL,
			 NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != n) {
		bench_warnx("--bulk-beneficiaries: %s", PQerrorMessage(db));
		goto out;
	}
	for (i = 0; i < n; i++)
		ids[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	qsort(ids, (size_t)n, sizeof ids[0], cmp_id);
	ret = 0;
out:
	PQclear(r);
	PQfinish(db);
	return ret;
}

/* What the referent types for the identity of the i-th beneficiary: the
 * run's tag in the name, so that only this run's records share a key. */
static json_t *
identity_of(const struct bench_config *cfg, int64_t id, int i)
{
	char last[80], first[32];

	snprintf(last, sizeof last, "Banc %s", cfg->tag);
	snprintf(first, sizeof first, "P%06d", i + 1);
	return json_pack("{s:I, s:s, s:s, s:s, s:b}", "beneficiary_id",
			 (json_int_t)id, "last_name", last, "first_name", first,
			 "birth_date", "1980-01-01", "consent", 1);
}

static json_t *
identity_params(const struct bench_config *cfg,
		const struct bench_fixture *fx, int i)
{
	return identity_of(cfg, fx->beneficiaries[i], i);
}

static json_t *
twin_identity_params(const struct bench_config *cfg,
		     const struct bench_fixture *fx, int j)
{
	return identity_of(cfg, fx->twins[j], fx->twin_of[j]);
}

/* The second structure and its referent, logged in; NULL on failure. */
static struct st_client *
second_structure(const struct bench_config *cfg, struct bench_fixture *fx,
		 struct st_client *admin, int64_t *user_id)
{
	char name[128], email[160], password[40], token[256];
	struct st_client *c;

	snprintf(name, sizeof name, "Bench structure %s bis", cfg->tag);
	fx->structure2_id = create_one(
	    admin, "structure.create",
	    json_pack("{s:s, s:s, s:s, s:s}", "name", name, "kind", "other",
		      "territory", "Bench", "city", "Benchville"));
	if (fx->structure2_id < 0)
		return NULL;
	snprintf(email, sizeof email, "bench-%s-bis@example.org", cfg->tag);
	random_password(password, sizeof password);
	*user_id = create_one(
	    admin, "user.create",
	    json_pack("{s:s, s:s, s:s, s:s, s:I}", "email", email,
		      "display_name", "Bench referent bis", "role", "referent",
		      "password", password, "structure_id",
		      (json_int_t)fx->structure2_id));
	c = *user_id < 0 ? NULL
			 : connect_login(cfg, email, password, token,
					 sizeof token);
	explicit_bzero(password, sizeof password);
	explicit_bzero(token, sizeof token);
	return c;
}

/* --identity: the twins (spread evenly over the beneficiaries: i has one
 * when (i + 1) x share / 100 passes a whole number), then every record's
 * key. 0 or -1. */
static int
identity_build(const struct bench_config *cfg, struct bench_fixture *fx,
	       struct st_client *admin, struct st_client *ref)
{
	struct st_client *ref2;
	struct st_error err = {0};
	int64_t user2, *scratch = NULL;
	int i, n = fx->nbeneficiaries, r = -1;

	if ((ref2 = second_structure(cfg, fx, admin, &user2)) == NULL)
		return -1;
	fx->twins = calloc((size_t)n + 1, sizeof fx->twins[0]);
	fx->twin_of = calloc((size_t)n + 1, sizeof fx->twin_of[0]);
	scratch = calloc((size_t)n + 1, sizeof scratch[0]);
	if (fx->twins == NULL || fx->twin_of == NULL || scratch == NULL) {
		bench_warnx("out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((long long)(i + 1) * cfg->identity_pct / 100 >
		    (long long)i * cfg->identity_pct / 100)
			fx->twin_of[fx->ntwins++] = i;
	if (cfg->bulk_beneficiaries)
		r = bulk_beneficiaries(cfg, fx->structure2_id, user2,
				       fx->ntwins, fx->twins);
	else
		r = create_many(cfg, fx, ref2, "beneficiary.create",
				fx->ntwins, beneficiary_params, fx->twins);
	if (r == 0)
		r = create_many(cfg, fx, ref, "beneficiary.set_identity", n,
				identity_params, scratch);
	if (r == 0)
		r = create_many(cfg, fx, ref2, "beneficiary.set_identity",
				fx->ntwins, twin_identity_params, scratch);
	if (r != 0)
		bench_warnx("--identity: not made (beneficiary.set_identity "
			    "needs the daemon's privacy.identity_secret_file, "
			    "docs/configuration.md)");
	fx->identity = r == 0;
	if (st_call(ref2, "auth.logout", NULL, NULL, &err) != ST_OK)
		st_error_clear(&err);
out:
	free(scratch);
	st_close(ref2);
	return r;
}

static int64_t
gcd(int64_t a, int64_t b)
{
	while (b != 0) {
		int64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

int64_t
bench_stride(int64_t pairs)
{
	int64_t s = (int64_t)((double)pairs * 0.6180339887498949);

	if (s < 1)
		s = 1;
	while (gcd(s, pairs) != 1)
		s++;
	return s;
}

static void
random_password(char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[16];
	size_t i;

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		/* Only a benchmark account: time and pid will do. */
		snprintf(buf, len, "bench-%lld-%d", (long long)time(NULL),
			 (int)getpid());
		return;
	}
	for (i = 0; i < sizeof raw && 2 * i + 2 < len; i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 15];
	}
	buf[2 * i] = '\0';
}

int
bench_fixture_build(const struct bench_config *cfg, struct bench_fixture *fx)
{
	struct st_client *admin = NULL, *ref = NULL;
	struct st_error err = {0};
	char admin_token[256], name[128], password[40];
	int noffers, nbens, r;

	memset(fx, 0, sizeof *fx);
	if (cfg->workload == BW_PING)
		return 0;
	switch (cfg->workload) {
	case BW_OFFER_LIST:
		noffers = cfg->offers;
		nbens = 0;
		fx->seats = cfg->seats > 0 ? cfg->seats : 100;
		break;
	case BW_BOOK_HOT:
		noffers = 1;
		nbens = cfg->beneficiaries;
		fx->seats = cfg->seats > 0 ? cfg->seats : 100;
		break;
	case BW_BOOK_GROUP:
		noffers = cfg->offers;
		nbens = cfg->beneficiaries;
		fx->group_size = cfg->group_size;
		fx->staff_seats = cfg->staff_seats;
		fx->ngroups = nbens / cfg->group_size;
		/* Enough that no offer sells out even if every group
		 * books it. */
		fx->seats = cfg->seats > 0 ? cfg->seats
					   : fx->ngroups * (cfg->group_size +
							    cfg->staff_seats);
		break;
	default:
		noffers = cfg->offers;
		nbens = cfg->beneficiaries;
		/* Enough that no offer sells out even if every
		 * beneficiary books it. */
		fx->seats = cfg->seats > 0 ? cfg->seats : cfg->beneficiaries;
		break;
	}

	if ((admin = connect_login(cfg, cfg->admin_email, cfg->password,
				   admin_token, sizeof admin_token)) == NULL)
		goto fail;
	explicit_bzero(admin_token, sizeof admin_token);

	snprintf(name, sizeof name, "Bench partner %s", cfg->tag);
	fx->partner_id =
	    create_one(admin, "partner.create",
		       json_pack("{s:s, s:s, s:s}", "name", name, "kind",
				 "other", "city", "Benchville"));
	if (fx->partner_id < 0)
		goto fail;
	snprintf(name, sizeof name, "Bench structure %s", cfg->tag);
	fx->structure_id = create_one(
	    admin, "structure.create",
	    json_pack("{s:s, s:s, s:s, s:s}", "name", name, "kind", "other",
		      "territory", "Bench", "city", "Benchville"));
	if (fx->structure_id < 0)
		goto fail;
	snprintf(fx->referent_email, sizeof fx->referent_email,
		 "bench-%s@example.org", cfg->tag);
	random_password(password, sizeof password);
	fx->referent_id = create_one(
	    admin, "user.create",
	    json_pack("{s:s, s:s, s:s, s:s, s:I}", "email", fx->referent_email,
		      "display_name", "Bench referent", "role", "referent",
		      "password", password, "structure_id",
		      (json_int_t)fx->structure_id));
	if (fx->referent_id < 0)
		goto fail;
	if ((ref = connect_login(cfg, fx->referent_email, password, fx->token,
				 sizeof fx->token)) == NULL)
		goto fail;

	fx->offers = calloc((size_t)noffers + 1, sizeof fx->offers[0]);
	fx->beneficiaries =
	    calloc((size_t)nbens + 1, sizeof fx->beneficiaries[0]);
	if (fx->offers == NULL || fx->beneficiaries == NULL) {
		bench_warnx("out of memory");
		goto fail;
	}
	if (create_many(cfg, fx, admin, "offer.publish", noffers, offer_params,
			fx->offers) != 0)
		goto fail;
	fx->noffers = noffers;
	if (cfg->bulk_beneficiaries)
		r = bulk_beneficiaries(cfg, fx->structure_id, fx->referent_id,
				       nbens, fx->beneficiaries);
	else
		r = create_many(cfg, fx, ref, "beneficiary.create", nbens,
				beneficiary_params, fx->beneficiaries);
	if (r != 0)
		goto fail;
	fx->nbeneficiaries = nbens;
	if (cfg->identity_pct >= 0 &&
	    identity_build(cfg, fx, admin, ref) != 0)
		goto fail;
	if (cfg->workload == BW_BOOK_UNIFORM)
		fx->stride = bench_stride((int64_t)noffers * nbens);
	else if (cfg->workload == BW_BOOK_GROUP)
		fx->stride = bench_stride((int64_t)noffers * fx->ngroups);

	/* The admin's session is not needed any more; the referent's is the
	 * run's. */
	if (st_call(admin, "auth.logout", NULL, NULL, &err) != ST_OK)
		st_error_clear(&err);
	explicit_bzero(password, sizeof password);
	st_close(admin);
	st_close(ref);
	return 0;
fail:
	explicit_bzero(password, sizeof password);
	st_close(admin);
	st_close(ref);
	bench_fixture_free(fx);
	return -1;
}

/* "first..last", and whether the ids are consecutive: the compare script
 * turns an index into an id by adding it to the first. */
static void
print_ids(const char *what, const int64_t *ids, int n)
{
	bool contiguous = n == 0 || ids[n - 1] - ids[0] == n - 1;

	printf("fixture: %s=%d first=%lld last=%lld contiguous=%s\n", what, n,
	       n ? (long long)ids[0] : 0LL, n ? (long long)ids[n - 1] : 0LL,
	       contiguous ? "yes" : "no");
}

void
bench_fixture_print(const struct bench_fixture *fx)
{
	printf("fixture: referent=%s partner_id=%lld structure_id=%lld "
	       "seats=%d referent_id=%lld\n",
	       fx->referent_email, (long long)fx->partner_id,
	       (long long)fx->structure_id, fx->seats,
	       (long long)fx->referent_id);
	print_ids("offers", fx->offers, fx->noffers);
	print_ids("beneficiaries", fx->beneficiaries, fx->nbeneficiaries);
	if (fx->identity)
		printf("fixture: identity keys=%d twins=%d structure2_id=%lld\n",
		       fx->nbeneficiaries, fx->ntwins,
		       (long long)fx->structure2_id);
	if (fx->ngroups > 0)
		printf("fixture: groups=%d size=%d staff_seats=%d\n",
		       fx->ngroups, fx->group_size, fx->staff_seats);
	if (fx->stride > 0)
		printf("fixture: pairs=%lld stride=%lld\n",
		       (long long)fx->noffers *
			   (fx->ngroups > 0 ? fx->ngroups : fx->nbeneficiaries),
		       (long long)fx->stride);
	fflush(stdout);
}

void
bench_fixture_logout(const struct bench_config *cfg,
		     const struct bench_fixture *fx)
{
	struct st_client *c;
	struct st_error err = {0};
	json_t *p;

	if (fx->token[0] == '\0' || (c = st_connect(&cfg->opt, &err)) == NULL)
		return;
	p = json_pack("{s:s}", "token", fx->token);
	if (st_call(c, "auth.resume", p, NULL, &err) == ST_OK &&
	    st_call(c, "auth.logout", NULL, NULL, &err) == ST_OK) {
		json_decref(p);
		st_close(c);
		return;
	}
	st_error_clear(&err);
	json_decref(p);
	st_close(c);
}

void
bench_fixture_free(struct bench_fixture *fx)
{
	free(fx->offers);
	free(fx->beneficiaries);
	free(fx->twins);
	free(fx->twin_of);
	fx->offers = fx->beneficiaries = fx->twins = NULL;
	fx->twin_of = NULL;
	fx->noffers = fx->nbeneficiaries = fx->ntwins = 0;
	explicit_bzero(fx->token, sizeof fx->token);
}
