/*
 * The authorization matrix: every method of the daemon's own table, called
 * by an anonymous client, an admin, a partner, another partner, a referent
 * and another structure's referent. A method the table has and this file
 * does not know fails the test, so no method can skip the matrix.
 *
 * Expected: a role the table refuses answers unauthenticated (anonymous)
 * or forbidden; an allowed caller succeeds, except that an object of
 * another partner or structure answers not_found, like an unknown id.
 */
#include "world.h"
#include "methods.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

#define PARTNERS (ROLE_ADMIN | ROLE_PARTNER)
#define REFERENTS (ROLE_ADMIN | ROLE_REFERENT)

enum caller { ANON, ADMIN, PARTNER, PARTNER2, REF, REF2, NCALLERS };
static const char *const caller_names[] = {"anonymous", "admin", "partner",
    "other partner", "referent", "other referent"};

/* Which objects a method works on, so who is "out of scope". */
enum scope { ANY, OF_PARTNER, OF_STRUCTURE };

struct fixture {
	struct world w;
	PGconn *db;
	char token[NCALLERS][64];
	const char *email[NCALLERS];
	int seq;
};
static struct fixture F;

typedef json_t *prepare_fn(enum caller who);

struct row {
	const char *method;
	unsigned roles;        /* who may call it, as docs/roles.md says */
	enum scope scope;
	prepare_fn *prepare;   /* fresh params for one call */
};

static const char *
fresh_email(void)
{
	static char buf[64];

	snprintf(buf, sizeof buf, "u%d@example.org", ++F.seq);
	return buf;
}

static json_int_t
sold_out_offer(json_int_t *booking)
{
	json_int_t o = w_offer(F.w.partner, 1, 1, NULL);
	json_int_t b = w_beneficiary(F.w.ref, "Anne", "Pleine");
	json_t *bk = w_book(F.w.ref, o, b, 1);

	if (booking != NULL)
		*booking = w_int(bk, "id");
	json_decref(bk);
	return o;
}

static json_t *p_none(enum caller who) { return json_object(); }
static json_t *p_login(enum caller who)
{
	return json_pack("{s:s, s:s}", "email", W_REF_EMAIL, "password",
	    W_PASSWORD);
}
static json_t *p_resume(enum caller who)
{
	return json_pack("{s:s}", "token", F.token[who == ANON ? REF : who]);
}
static json_t *p_change_password(enum caller who)
{
	return json_pack("{s:s, s:s}", "old_password",
	    who == ADMIN ? H_ADMIN_PASSWORD : W_PASSWORD, "new_password",
	    who == ADMIN ? H_ADMIN_PASSWORD : W_PASSWORD);
}
static json_t *p_mail_preferences(enum caller who)
{
	return json_pack("{s:[]}", "mail_off");
}
static json_t *p_partner_create(enum caller who)
{
	return json_pack("{s:s, s:s, s:s}", "name", "Cinéma Le Rex", "kind",
	    "cinema", "city", "Brive");
}
static json_t *p_structure_create(enum caller who)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "name", "Centre social",
	    "kind", "centre_social", "territory", "Savoie", "city", "Chambéry");
}
static json_t *p_user_create(enum caller who)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I}", "email", fresh_email(),
	    "display_name", "New", "role", "referent", "password", W_PASSWORD,
	    "structure_id", F.w.structure_id);
}
static json_t *p_user_disable(enum caller who)
{
	json_t *u = h_call_ok(F.w.admin, "user.create", p_user_create(who));
	json_t *p = json_pack("{s:I}", "user_id", w_int(u, "id"));

	json_decref(u);
	return p;
}
static json_t *p_offer_publish(enum caller who)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I}", "title", "Bal",
	    "category", "show", "venue", "Halle", "city", "Billom",
	    "starts_at", w_time(20 * W_DAY), "seats", 5, "partner_id",
	    F.w.partner_id);
}
static json_t *p_offer_series(enum caller who)
{
	json_t *p = p_offer_publish(who);

	json_object_del(p, "starts_at");
	json_object_update_new(p, json_pack("{s:s, s:s, s:s, s:i}", "weekday",
	    "wednesday", "start_time", "14:00", "from_date", w_time(20 * W_DAY),
	    "count", 2));
	json_object_set_new(p, "from_date", json_stringn(w_str(p, "from_date"),
	    10));
	return p;
}
static json_t *p_offer_id(enum caller who)
{
	return json_pack("{s:I}", "offer_id", w_offer(F.w.partner, 5, 2, NULL));
}
static json_t *p_offer_update(enum caller who)
{
	json_t *p = p_offer_id(who);

	json_object_set_new(p, "title", json_string("Nouveau titre"));
	return p;
}
static json_t *p_offer_seats(enum caller who)
{
	json_t *p = p_offer_id(who);

	json_object_set_new(p, "seats", json_integer(8));
	return p;
}
static json_t *p_offer_cancel(enum caller who)
{
	json_t *p = p_offer_id(who);

	json_object_set_new(p, "reason", json_string("Annulé"));
	return p;
}
static json_t *p_offer_started(enum caller who)
{
	json_int_t o = w_offer(F.w.partner, 5, 2, NULL);
	char sql[200];

	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = now() - "
	    "interval '1 hour', booking_deadline = now() - interval '1 day' "
	    "WHERE id = %lld", (long long)o);
	h_db_exec(F.db, sql);
	return json_pack("{s:I}", "offer_id", o);
}
static json_t *p_beneficiary_create(enum caller who)
{
	return json_pack("{s:s, s:s, s:b, s:I}", "first_name", "Rose",
	    "last_name", "Nouvelle", "consent", 1, "structure_id",
	    F.w.structure_id);
}
static json_t *p_beneficiary_id(enum caller who)
{
	return json_pack("{s:I}", "beneficiary_id",
	    w_beneficiary(F.w.ref, "Paul", "Durand"));
}
/* A fresh person each time: a structure holds one identity once. */
static json_t *p_set_identity(enum caller who)
{
	json_t *p = p_beneficiary_id(who);
	char last[32];

	snprintf(last, sizeof last, "Durand%d", ++F.seq);
	json_object_set_new(p, "last_name", json_string(last));
	json_object_set_new(p, "first_name", json_string("Paul"));
	json_object_set_new(p, "birth_date", json_string("1970-01-01"));
	json_object_set_new(p, "consent", json_true());
	return p;
}
static json_t *p_beneficiary_update(enum caller who)
{
	json_t *p = p_beneficiary_id(who);

	json_object_set_new(p, "postal_code", json_string("63160"));
	return p;
}
static json_t *p_booking_create(enum caller who)
{
	return json_pack("{s:I, s:I, s:i}", "offer_id",
	    w_offer(F.w.partner, 5, 2, NULL), "beneficiary_id",
	    w_beneficiary(F.w.ref, "Jade", "Simon"), "seats", 1);
}
static json_t *p_booking_id(enum caller who)
{
	json_t *bk = w_book(F.w.ref, w_offer(F.w.partner, 5, 2, NULL),
	    w_beneficiary(F.w.ref, "Noé", "Blanc"), 1);
	json_t *p = json_pack("{s:I}", "booking_id", w_int(bk, "id"));

	json_decref(bk);
	return p;
}
/* A booking whose deadline has passed, its show still to come. */
static json_t *p_booking_withdraw(enum caller who)
{
	json_int_t o = w_offer(F.w.partner, 5, 2, NULL);
	json_t *bk = w_book(F.w.ref, o, w_beneficiary(F.w.ref, "Ines", "Tard"), 1);
	json_t *p = json_pack("{s:I, s:s}", "booking_id", w_int(bk, "id"),
	    "reason", "transport");
	char sql[200];

	snprintf(sql, sizeof sql, "UPDATE offers SET booking_deadline = now() "
	    "- interval '1 hour' WHERE id = %lld", (long long)o);
	h_db_exec(F.db, sql);
	json_decref(bk);
	return p;
}
static json_t *p_group_create(enum caller who)
{
	return json_pack("{s:I, s:[I, I], s:i}", "offer_id",
	    w_offer(F.w.partner, 5, 2, NULL), "beneficiary_ids",
	    w_beneficiary(F.w.ref, "Lou", "Groupe"),
	    w_beneficiary(F.w.ref, "Max", "Groupe"), "staff_seats", 1);
}
static json_t *p_group_id(enum caller who)
{
	json_t *g = h_call_ok(F.w.ref, "booking.create_group", p_group_create(who));
	json_t *p = json_pack("{s:I}", "group_id", w_int(g, "id"));

	json_decref(g);
	return p;
}
static json_t *p_waitlist_join(enum caller who)
{
	return json_pack("{s:I, s:I, s:i}", "offer_id", sold_out_offer(NULL),
	    "beneficiary_id", w_beneficiary(F.w.ref, "Léon", "Attend"),
	    "seats", 1);
}
static json_int_t
waiting_entry(bool offered)
{
	json_int_t booking, o = sold_out_offer(&booking);
	json_t *e = h_call_ok(F.w.ref, "waitlist.join", json_pack(
	    "{s:I, s:I, s:i}", "offer_id", o, "beneficiary_id",
	    w_beneficiary(F.w.ref, "Zoé", "Patiente"), "seats", 1));
	json_int_t id = w_int(e, "id");

	json_decref(e);
	if (offered)
		json_decref(h_call_ok(F.w.ref, "booking.cancel", json_pack(
		    "{s:I}", "booking_id", booking)));
	return id;
}
static json_t *p_entry_waiting(enum caller who)
{
	return json_pack("{s:I}", "entry_id", waiting_entry(false));
}
static json_t *p_entry_offered(enum caller who)
{
	return json_pack("{s:I}", "entry_id", waiting_entry(true));
}
static json_t *p_check_in(enum caller who)
{
	json_t *bk = w_book(F.w.ref, w_offer(F.w.partner, 5, 2, NULL),
	    w_beneficiary(F.w.ref, "Eva", "Porte"), 1);
	json_t *p = json_pack("{s:s}", "code", w_str(bk, "code"));

	json_decref(bk);
	return p;
}

static json_t *p_voucher(enum caller who)
{
	return p_check_in(who);
}
static json_t *p_public_list(enum caller who)
{
	return json_pack("{s:I}", "structure_id", F.w.structure_id);
}

static json_t *p_events(enum caller who)
{
	return json_pack("{s:[s]}", "topics", "offer.published");
}

#include "authz_permanence.inc"

static const struct row rows[] = {
	{"system.ping", ROLES_ALL, ANY, p_none},
	{"system.version", ROLES_ALL, ANY, p_none},
	{"system.health", ROLES_ALL, ANY, p_none},
	{"auth.login", ROLES_ALL, ANY, p_login},
	{"auth.resume", ROLES_ALL, ANY, p_resume},
	{"auth.logout", ROLES_USERS, ANY, p_none},
	{"auth.whoami", ROLES_USERS, ANY, p_none},
	{"auth.change_password", ROLES_USERS, ANY, p_change_password},
	{"auth.set_mail_preferences", ROLES_USERS, ANY, p_mail_preferences},
	{"partner.create", ROLE_ADMIN, ANY, p_partner_create},
	{"partner.list", ROLES_USERS, ANY, p_none},
	{"structure.create", ROLE_ADMIN, ANY, p_structure_create},
	{"structure.list", ROLES_USERS, ANY, p_none},
	{"user.create", ROLE_ADMIN, ANY, p_user_create},
	{"user.list", ROLE_ADMIN, ANY, p_none},
	{"user.disable", ROLE_ADMIN, ANY, p_user_disable},
	{"offer.publish", PARTNERS, OF_PARTNER, p_offer_publish},
	{"offer.publish_series", PARTNERS, OF_PARTNER, p_offer_series},
	{"offer.update", PARTNERS, OF_PARTNER, p_offer_update},
	{"offer.set_seats", PARTNERS, OF_PARTNER, p_offer_seats},
	{"offer.cancel", PARTNERS, OF_PARTNER, p_offer_cancel},
	{"offer.list", ROLES_USERS, ANY, p_none},
	{"offer.get", ROLES_USERS, ANY, p_offer_id},
	{"offer.guest_list", PARTNERS, OF_PARTNER, p_offer_id},
	{"offer.close_attendance", PARTNERS, OF_PARTNER, p_offer_started},
	{"beneficiary.create", REFERENTS, OF_STRUCTURE, p_beneficiary_create},
	{"beneficiary.list", REFERENTS, ANY, p_none},
	{"beneficiary.get", REFERENTS, OF_STRUCTURE, p_beneficiary_id},
	{"beneficiary.update", REFERENTS, OF_STRUCTURE, p_beneficiary_update},
	{"beneficiary.erase", REFERENTS, OF_STRUCTURE, p_beneficiary_id},
	{"beneficiary.export", REFERENTS, OF_STRUCTURE, p_beneficiary_id},
	{"beneficiary.set_identity", REFERENTS, OF_STRUCTURE, p_set_identity},
	{"beneficiary.clear_identity", REFERENTS, OF_STRUCTURE, p_beneficiary_id},
	{"identity.status", ROLE_ADMIN, ANY, p_none},
	{"booking.create", REFERENTS, OF_STRUCTURE, p_booking_create},
	{"booking.cancel", REFERENTS, OF_STRUCTURE, p_booking_id},
	{"booking.withdraw", REFERENTS, OF_STRUCTURE, p_booking_withdraw},
	{"beneficiary.record", REFERENTS, OF_STRUCTURE, p_beneficiary_id},
	{"booking.list", REFERENTS, ANY, p_none},
	{"booking.get", REFERENTS, OF_STRUCTURE, p_booking_id},
	{"booking.create_group", REFERENTS, OF_STRUCTURE, p_group_create},
	{"booking.get_group", REFERENTS, OF_STRUCTURE, p_group_id},
	{"booking.cancel_group", REFERENTS, OF_STRUCTURE, p_group_id},
	{"waitlist.join", REFERENTS, OF_STRUCTURE, p_waitlist_join},
	{"waitlist.leave", REFERENTS, OF_STRUCTURE, p_entry_waiting},
	{"waitlist.list", REFERENTS, ANY, p_none},
	{"waitlist.accept", REFERENTS, OF_STRUCTURE, p_entry_offered},
	{"ticket.check_in", PARTNERS, OF_PARTNER, p_check_in},
	{"audit.list", ROLE_ADMIN, ANY, p_none},
	{"voucher.get", ROLES_ALL, ANY, p_voucher},
	{"permanence.public_list", ROLES_ALL, ANY, p_public_list},
	{"offer.demand", PARTNERS, OF_PARTNER, p_offer_id},
	AUTHZ_PERMANENCE_ROWS
};

static const struct row *
row_for(const char *method)
{
	size_t i;

	for (i = 0; i < nitems(rows); i++)
		if (strcmp(rows[i].method, method) == 0)
			return &rows[i];
	return NULL;
}

static enum role
role_of(enum caller who)
{
	switch (who) {
	case ADMIN: return ROLE_ADMIN;
	case PARTNER: case PARTNER2: return ROLE_PARTNER;
	case REF: case REF2: return ROLE_REFERENT;
	default: return ROLE_ANON;
	}
}

static void
login_token(enum caller who, const char *email, const char *password)
{
	struct st_client *c = h_connect(F.w.d);
	json_t *r;

	r = h_call_ok(c, "auth.login", json_pack("{s:s, s:s}", "email", email,
	    "password", password));
	snprintf(F.token[who], sizeof F.token[who], "%s", w_str(r, "token"));
	F.email[who] = email;
	json_decref(r);
	st_close(c);
}

/* A password change ends the user's other sessions, by design: log the
 * shared sessions of that user in again. */
static void
refresh_sessions(enum caller who)
{
	struct st_client **shared[NCALLERS] = {NULL, &F.w.admin, &F.w.partner,
	    &F.w.partner2, &F.w.ref, &F.w.ref2};
	const char *password = who == ADMIN ? H_ADMIN_PASSWORD : W_PASSWORD;

	login_token(who, F.email[who], password);
	st_close(*shared[who]);
	*shared[who] = h_login(F.w.d, F.email[who], password);
}

static bool
out_of_scope(enum scope s, enum caller who)
{
	return (s == OF_PARTNER && who == PARTNER2) ||
	    (s == OF_STRUCTURE && who == REF2);
}

/* A connection of its own for every call: a login, a logout or a
 * password change must not disturb the next call. */
static struct st_client *
session(enum caller who, const char *method)
{
	struct st_client *c;

	if (who == ANON)
		return h_connect(F.w.d);
	if (strcmp(method, "auth.logout") == 0 ||
	    strcmp(method, "auth.change_password") == 0)
		return h_login(F.w.d, F.email[who], who == ADMIN ?
		    H_ADMIN_PASSWORD : W_PASSWORD);
	c = h_connect(F.w.d);
	json_decref(h_call_ok(c, "auth.resume", json_pack("{s:s}", "token",
	    F.token[who])));
	return c;
}

static void
check_call(const struct method *m, const struct row *r, enum caller who)
{
	struct st_client *c = session(who, m->name);
	json_t *params = r->prepare(who), *res = NULL;
	struct st_error err;
	bool allowed = (m->roles & role_of(who)) != 0;
	int rc;

	rc = st_call(c, m->name, params, &res, &err);
	json_decref(params);
	if (!allowed) {
		int want = who == ANON ? 401 : 403;

		if (rc != ST_ERR_SERVER || err.code != want)
			h_fail("%s by %s: want error %d, got %s", m->name,
			    caller_names[who], want, rc == ST_OK ?
			    h_json_str(res) : st_strerror(&err));
	} else if (out_of_scope(r->scope, who)) {
		if (rc != ST_ERR_SERVER || strcmp(err.reason, "not_found") != 0)
			h_fail("%s by %s: want not_found, got %s", m->name,
			    caller_names[who], rc == ST_OK ? h_json_str(res) :
			    st_strerror(&err));
	} else if (rc != ST_OK)
		h_fail("%s by %s: want success, got %s", m->name,
		    caller_names[who], st_strerror(&err));
	if (rc == ST_ERR_SERVER)
		st_error_clear(&err);
	json_decref(res);
	st_close(c);
	if (strcmp(m->name, "auth.change_password") == 0 && who != ANON &&
	    allowed)
		refresh_sessions(who);
}

static void
test_matrix(void **state)
{
	size_t i;
	int who;

	for (i = 0; i < methods_count; i++) {
		const struct row *r = row_for(methods[i].name);

		if (r == NULL)
			h_fail("method %s is not in the authorization matrix",
			    methods[i].name);
		if (r->roles != methods[i].roles)
			h_fail("method %s: the daemon allows roles 0x%x, the "
			    "specification 0x%x", methods[i].name,
			    methods[i].roles, r->roles);
		for (who = ANON; who < NCALLERS; who++)
			check_call(&methods[i], r, (enum caller)who);
	}
}

/* Each role turns off only the notices it receives (docs/mail.md,
 * "Turning notices off"): another role's kind is invalid_params on
 * mail_off, an admin receives none; a change is audited. */
static void
test_mail_kinds(void **state)
{
	struct {
		struct st_client *c;
		const char *own, *other;
		int kinds;
	} who[] = {
	    {F.w.partner, "guest_list", "referent_digest", 2},
	    {F.w.ref, "hold_expiring", "attendance_to_close", 4},
	    {F.w.admin, NULL, "offer_moved", 0},
	};
	json_t *r, *e, *u;
	size_t i;

	(void)state;
	for (i = 0; i < nitems(who); i++) {
		e = h_call_err(who[i].c, "auth.set_mail_preferences", json_pack(
		    "{s:[s]}", "mail_off", who[i].other), -32602,
		    "invalid_params");
		assert_string_equal(w_str(e, "field"), "mail_off");
		json_decref(e);
		r = h_call_ok(who[i].c, "auth.set_mail_preferences", json_object());
		assert_int_equal(json_array_size(json_object_get(r, "mail_kinds")),
		    who[i].kinds);
		assert_int_equal(json_array_size(json_object_get(r, "mail_off")), 0);
		json_decref(r);
		if (who[i].own == NULL)
			continue;
		r = h_call_ok(who[i].c, "auth.set_mail_preferences", json_pack(
		    "{s:[s,s]}", "mail_off", who[i].own, who[i].own));
		assert_int_equal(json_array_size(json_object_get(r, "mail_off")), 1);
		json_decref(r);
		r = h_call_ok(who[i].c, "auth.whoami", NULL);
		u = json_object_get(r, "user");
		assert_string_equal(json_string_value(json_array_get(
		    json_object_get(u, "mail_off"), 0)), who[i].own);
		assert_int_equal(json_array_size(json_object_get(u, "mail_kinds")),
		    who[i].kinds);
		json_decref(r);
		json_decref(h_call_ok(who[i].c, "auth.set_mail_preferences",
		    json_pack("{s:[]}", "mail_off")));
	}
	assert_true(h_db_int(F.db, "SELECT count(*) FROM audit_log WHERE "
	    "method = 'auth.set_mail_preferences' AND object_type = 'user' "
	    "AND summary->'mail_off' = '[\"guest_list\"]'") == 1);
	assert_true(h_db_int(F.db, "SELECT count(*) FROM users "
	    "WHERE mail_off <> '{}'") == 0);
}

static int
setup(void **state)
{
	char ini[1024];
	struct h_daemon *d;

	snprintf(ini, sizeof ini, "[policy]\nmax_upcoming_per_beneficiary = 1000\n"
	    "max_per_month = 1000\n[privacy]\nidentity_secret_file = %s\n",
	    w_secret_file("authz", "the-authz-identity-secret-0123456789abcdef"));
	d = h_daemon_start("authz", ini);

	world_build(&F.w, d);
	F.db = h_db_connect(d->conninfo);
	login_token(ADMIN, H_ADMIN_EMAIL, H_ADMIN_PASSWORD);
	login_token(PARTNER, W_PARTNER_EMAIL, W_PASSWORD);
	login_token(PARTNER2, W_PARTNER2_EMAIL, W_PASSWORD);
	login_token(REF, W_REF_EMAIL, W_PASSWORD);
	login_token(REF2, W_REF2_EMAIL, W_PASSWORD);
	return 0;
}

static int
teardown(void **state)
{
	world_close(&F.w);
	PQfinish(F.db);
	assert_int_equal(h_daemon_stop(F.w.d), 0);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix),
		cmocka_unit_test(test_mail_kinds),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
