#include "methods.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conn.h"
#include "db.h"
#include "events.h"
#include "log.h"
#include "rpc.h"
#include "server.h"
#include "system.h"

static const struct param no_params[] = {{0}};

#define LIST_PARAMS \
	{"limit", PT_INT, 0, 1, 500, NULL}, \
	{"cursor", PT_CURSOR, 0, 0, 0, NULL}

static const char *const partner_kinds[] = {"theatre", "cinema", "museum",
    "heritage", "concert_hall", "festival", "sport", "library", "other",
    NULL};
static const char *const structure_kinds[] = {"mds", "centre_social",
    "ccas", "association", "housing", "other", NULL};
static const char *const roles[] = {"admin", "partner", "referent", NULL};
static const char *const categories[] = {"show", "concert", "cinema",
    "heritage", "museum", "sport", "festival", "workshop", "other", NULL};
static const char *const deliveries[] = {"guest_list", "e_ticket", "pickup",
    NULL};
static const char *const booking_statuses[] = {"confirmed", "cancelled",
    "cancelled_by_partner", "attended", "no_show", NULL};
static const char *const waitlist_statuses[] = {"waiting", "offered",
    "accepted", "expired", "left", "cancelled", NULL};

static const struct param login_params[] = {
	{"email", PT_EMAIL, P_REQUIRED, 0, 0, NULL},
	{"password", PT_STRING, P_REQUIRED, 1, 1024, NULL},
	{0}};
static const struct param resume_params[] = {
	{"token", PT_STRING, P_REQUIRED, 1, 128, NULL},
	{0}};
static const struct param change_password_params[] = {
	{"old_password", PT_STRING, P_REQUIRED, 1, 1024, NULL},
	{"new_password", PT_STRING, P_REQUIRED, 8, 1024, NULL},
	{0}};

static const struct param partner_create_params[] = {
	{"name", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"kind", PT_ENUM, P_REQUIRED, 0, 0, partner_kinds},
	{"city", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"contact_email", PT_EMAIL, 0, 0, 0, NULL},
	{0}};
static const struct param page_params[] = {LIST_PARAMS, {0}};
static const struct param structure_create_params[] = {
	{"name", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"kind", PT_ENUM, P_REQUIRED, 0, 0, structure_kinds},
	{"territory", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"city", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"timezone", PT_STRING, 0, 1, 64, NULL},
	{0}};
static const struct param user_create_params[] = {
	{"email", PT_EMAIL, P_REQUIRED, 0, 0, NULL},
	{"display_name", PT_STRING, P_REQUIRED, 1, 200, NULL},
	{"role", PT_ENUM, P_REQUIRED, 0, 0, roles},
	{"password", PT_STRING, P_REQUIRED, 8, 1024, NULL},
	{"partner_id", PT_ID, 0, 0, 0, NULL},
	{"structure_id", PT_ID, 0, 0, 0, NULL},
	{0}};
static const struct param user_list_params[] = {
	{"role", PT_ENUM, 0, 0, 0, roles}, LIST_PARAMS, {0}};
static const struct param user_id_params[] = {
	{"user_id", PT_ID, P_REQUIRED, 0, 0, NULL}, {0}};

#define OFFER_FIELDS(req) \
	{"title", PT_STRING, req, 1, 200, NULL}, \
	{"category", PT_ENUM, req, 0, 0, categories}, \
	{"venue", PT_STRING, req, 1, 200, NULL}, \
	{"city", PT_STRING, req, 1, 200, NULL}, \
	{"starts_at", PT_TIME, req, 0, 0, NULL}, \
	{"ends_at", PT_TIME, P_NULLABLE, 0, 0, NULL}, \
	{"max_per_booking", PT_INT, 0, 1, 100, NULL}, \
	{"booking_deadline", PT_TIME, 0, 0, 0, NULL}, \
	{"delivery", PT_ENUM, 0, 0, 0, deliveries}, \
	{"description", PT_TEXT, P_NULLABLE, 0, 4000, NULL}, \
	{"accessibility", PT_TEXT, P_NULLABLE, 0, 1000, NULL}

static const struct param offer_publish_params[] = {
	OFFER_FIELDS(P_REQUIRED),
	{"seats", PT_INT, P_REQUIRED, 1, 100000, NULL},
	{"partner_id", PT_ID, 0, 0, 0, NULL},
	{0}};
static const struct param offer_update_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	OFFER_FIELDS(0),
	{0}};
static const struct param offer_seats_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"seats", PT_INT, P_REQUIRED, 1, 100000, NULL},
	{0}};
static const struct param offer_cancel_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"reason", PT_STRING, P_REQUIRED, 1, 500, NULL},
	{0}};
static const struct param offer_id_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL}, {0}};
static const struct param offer_list_params[] = {
	{"from", PT_TIME, 0, 0, 0, NULL},
	{"to", PT_TIME, 0, 0, 0, NULL},
	{"category", PT_ENUM, 0, 0, 0, categories},
	{"city", PT_STRING, 0, 1, 200, NULL},
	{"partner_id", PT_ID, 0, 0, 0, NULL},
	{"available_only", PT_BOOL, 0, 0, 0, NULL},
	LIST_PARAMS, {0}};

#define BENEFICIARY_FIELDS(req) \
	{"first_name", PT_STRING, req, 1, 100, NULL}, \
	{"last_name", PT_STRING, req, 1, 100, NULL}, \
	{"birth_year", PT_INT, P_NULLABLE, 1900, 2100, NULL}, \
	{"household_size", PT_INT, P_NULLABLE, 1, 30, NULL}, \
	{"postal_code", PT_STRING, P_NULLABLE, 2, 10, NULL}

static const struct param beneficiary_create_params[] = {
	BENEFICIARY_FIELDS(P_REQUIRED),
	{"consent", PT_BOOL, P_REQUIRED, 0, 0, NULL},
	{"structure_id", PT_ID, 0, 0, 0, NULL},
	{0}};
static const struct param beneficiary_update_params[] = {
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	BENEFICIARY_FIELDS(0),
	{0}};
static const struct param beneficiary_list_params[] = {
	{"query", PT_STRING, 0, 1, 100, NULL},
	{"structure_id", PT_ID, 0, 0, 0, NULL},
	LIST_PARAMS, {0}};
static const struct param beneficiary_id_params[] = {
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL}, {0}};

static const struct param booking_create_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"seats", PT_INT, P_REQUIRED, 1, 100, NULL},
	{"idempotency_key", PT_STRING, 0, 1, 128, NULL},
	{0}};
static const struct param booking_id_params[] = {
	{"booking_id", PT_ID, P_REQUIRED, 0, 0, NULL}, {0}};
static const struct param booking_list_params[] = {
	{"beneficiary_id", PT_ID, 0, 0, 0, NULL},
	{"offer_id", PT_ID, 0, 0, 0, NULL},
	{"status", PT_ENUM, 0, 0, 0, booking_statuses},
	{"from", PT_TIME, 0, 0, 0, NULL},
	{"to", PT_TIME, 0, 0, 0, NULL},
	LIST_PARAMS, {0}};

static const struct param waitlist_join_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"seats", PT_INT, P_REQUIRED, 1, 100, NULL},
	{0}};
static const struct param entry_id_params[] = {
	{"entry_id", PT_ID, P_REQUIRED, 0, 0, NULL}, {0}};
static const struct param waitlist_list_params[] = {
	{"offer_id", PT_ID, 0, 0, 0, NULL},
	{"beneficiary_id", PT_ID, 0, 0, 0, NULL},
	{"status", PT_ENUM, 0, 0, 0, waitlist_statuses},
	LIST_PARAMS, {0}};

static const char *const event_topics[] = {"offer.published",
    "offer.cancelled", "offer.seats_changed", "booking.created",
    "booking.cancelled", "waitlist.offered", NULL};
static const struct param subscribe_params[] = {
	{"topics", PT_ENUM_ARRAY, P_REQUIRED, 0, 6, event_topics}, {0}};

static const struct param check_in_params[] = {
	{"code", PT_STRING, P_REQUIRED, 1, 64, NULL}, {0}};
static const struct param audit_list_params[] = {
	{"from", PT_TIME, 0, 0, 0, NULL},
	{"to", PT_TIME, 0, 0, 0, NULL},
	{"user_id", PT_ID, 0, 0, 0, NULL},
	LIST_PARAMS, {0}};

#define SQL(fn) "SELECT " fn "($1, $2::jsonb, $3, $4::jsonb)"
#define REFERENTS (ROLE_ADMIN | ROLE_REFERENT)
#define PARTNERS (ROLE_ADMIN | ROLE_PARTNER)

#include "methods_permanence.h"
#include "methods_report.h"

/* The one table. docs/protocol.md lists it; the authorization matrix test
 * walks it, so a method added here is tested for every role. */
struct method methods[] = {
	{"system.ping", sys_ping, ROLES_ALL, no_params, NULL, 0},
	{"system.version", sys_version, ROLES_ALL, no_params, NULL, 0},
	{"system.health", sys_health, ROLES_ALL, no_params, NULL, 0},

	{"auth.login", auth_login, ROLES_ALL, login_params, NULL, 0},
	{"auth.resume", auth_resume, ROLES_ALL, resume_params, NULL, 0},
	{"auth.logout", auth_logout, ROLES_USERS, no_params, SQL("auth_logout"), 0},
	{"auth.whoami", method_sql, ROLES_USERS, no_params, SQL("auth_whoami"), 0},
	{"auth.change_password", auth_change_password, ROLES_USERS,
	    change_password_params, NULL, 0},

	{"partner.create", method_sql, ROLE_ADMIN, partner_create_params, SQL("partner_create"), 0},
	{"partner.list", method_sql, ROLES_USERS, page_params, SQL("partner_list"), 0},
	{"structure.create", method_sql, ROLE_ADMIN, structure_create_params, SQL("structure_create"), 0},
	{"structure.list", method_sql, ROLES_USERS, page_params, SQL("structure_list"), 0},
	{"user.create", auth_user_create, ROLE_ADMIN, user_create_params, SQL("user_create"), 0},
	{"user.list", method_sql, ROLE_ADMIN, user_list_params, SQL("user_list"), 0},
	{"user.disable", method_sql, ROLE_ADMIN, user_id_params, SQL("user_disable"), 0},

	{"offer.publish", method_sql, PARTNERS, offer_publish_params, SQL("offer_publish"), 0},
	{"offer.update", method_sql, PARTNERS, offer_update_params, SQL("offer_update"), 0},
	{"offer.set_seats", method_sql, PARTNERS, offer_seats_params, SQL("offer_set_seats"), 0},
	{"offer.cancel", method_sql, PARTNERS, offer_cancel_params, SQL("offer_cancel"), 0},
	{"offer.list", method_sql, ROLES_USERS, offer_list_params, SQL("offer_list"), 0},
	{"offer.get", method_sql, ROLES_USERS, offer_id_params, SQL("offer_get"), 0},
	{"offer.guest_list", method_sql, PARTNERS, offer_id_params, SQL("offer_guest_list"), 0},
	{"offer.close_attendance", method_sql, PARTNERS, offer_id_params, SQL("offer_close_attendance"), 0},

	{"beneficiary.create", method_sql, REFERENTS, beneficiary_create_params, SQL("beneficiary_create"), 0},
	{"beneficiary.list", method_sql, REFERENTS, beneficiary_list_params, SQL("beneficiary_list"), 0},
	{"beneficiary.get", method_sql, REFERENTS, beneficiary_id_params, SQL("beneficiary_get"), 0},
	{"beneficiary.update", method_sql, REFERENTS, beneficiary_update_params, SQL("beneficiary_update"), 0},
	{"beneficiary.erase", method_sql, REFERENTS, beneficiary_id_params, SQL("beneficiary_erase"), 0},
	{"beneficiary.export", method_sql, REFERENTS, beneficiary_id_params, SQL("beneficiary_export"), 0},

	{"booking.create", method_sql, REFERENTS, booking_create_params, SQL("booking_create"), 0},
	{"booking.cancel", method_sql, REFERENTS, booking_id_params, SQL("booking_cancel"), 0},
	{"booking.list", method_sql, REFERENTS, booking_list_params, SQL("booking_list"), 0},
	{"booking.get", method_sql, REFERENTS, booking_id_params, SQL("booking_get"), 0},

	{"waitlist.join", method_sql, REFERENTS, waitlist_join_params, SQL("waitlist_join"), 0},
	{"waitlist.leave", method_sql, REFERENTS, entry_id_params, SQL("waitlist_leave"), 0},
	{"waitlist.list", method_sql, REFERENTS, waitlist_list_params, SQL("waitlist_list"), 0},
	{"waitlist.accept", method_sql, REFERENTS, entry_id_params, SQL("waitlist_accept"), 0},

	{"ticket.check_in", method_sql, PARTNERS, check_in_params, SQL("ticket_check_in"), 0},
	{"audit.list", method_sql, ROLE_ADMIN, audit_list_params, SQL("audit_list"), 0},

	PERMANENCE_METHODS
	REPORT_METHODS

	{"events.subscribe", events_subscribe, ROLES_USERS, subscribe_params, SQL("events_subscribe"), 0},
};
const size_t methods_count = nitems(methods);

const struct method *
methods_find(const char *name)
{
	size_t i;

	for (i = 0; i < methods_count; i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

static const char *const role_names[] = {"anonymous", "admin", "partner",
    "referent"};

enum role
methods_role_from_name(const char *name)
{
	if (strcmp(name, "admin") == 0)
		return ROLE_ADMIN;
	if (strcmp(name, "partner") == 0)
		return ROLE_PARTNER;
	if (strcmp(name, "referent") == 0)
		return ROLE_REFERENT;
	return ROLE_ANON;
}

const char *
methods_role_name(enum role role)
{
	switch (role) {
	case ROLE_ADMIN: return role_names[1];
	case ROLE_PARTNER: return role_names[2];
	case ROLE_REFERENT: return role_names[3];
	default: return role_names[0];
	}
}

void
methods_sql_error(struct request *req, PGresult *res, enum db_status st)
{
	const char *state, *reason, *hint, *detail;
	json_t *data = NULL;
	const char *field = NULL;

	if (st == DB_UNAVAILABLE) {
		rpc_error(req, "unavailable", NULL, NULL,
		    "The database is unavailable; try again shortly.");
		return;
	}
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state != NULL && strcmp(state, "SP001") == 0) {
		/* api_error(): MESSAGE is the reason, HINT the sentence,
		 * DETAIL a JSON object of data (with "field" if any). */
		reason = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		if (detail != NULL)
			data = json_loads(detail, 0, NULL);
		if (json_is_object(data)) {
			json_t *f = json_object_get(data, "field");

			if (json_is_string(f))
				field = json_string_value(f);
		}
		if (reason != NULL && strcmp(reason, "internal_error") == 0) {
			json_decref(data);
			rpc_internal(req, hint ? hint : "api_error(internal_error)");
			return;
		}
		if (reason != NULL && rpc_code_for_reason(reason) != 0) {
			json_incref(data);
			rpc_error(req, reason, field, data, "%s",
			    hint ? hint : reason);
			json_decref(data);
			return;
		}
		json_decref(data);
	}
	if (state != NULL && (strcmp(state, "57014") == 0 ||
	    strncmp(state, "40", 2) == 0 || strncmp(state, "53", 2) == 0)) {
		rpc_error(req, "unavailable", NULL, NULL,
		    "The database is busy; try again shortly.");
		return;
	}
	{
		char detail_buf[512];

		snprintf(detail_buf, sizeof detail_buf, "SQLSTATE %s: %s",
		    state ? state : "?", PQresultErrorField(res,
		    PG_DIAG_MESSAGE_PRIMARY) ?: "?");
		rpc_internal(req, detail_buf);
	}
}

json_t *
methods_sql_json(PGresult *res)
{
	if (PQntuples(res) != 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0))
		return NULL;
	return json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL);
}

static void
method_sql_done(PGresult *res, enum db_status st, void *arg)
{
	struct request *req = arg;
	json_t *result;

	if (st != DB_OK) {
		methods_sql_error(req, res, st);
		return;
	}
	if ((result = methods_sql_json(res)) == NULL) {
		rpc_internal(req, "SQL function answered no JSON");
		return;
	}
	if (req->sql_after != NULL) {
		req->sql_after(req, result);
		return;
	}
	rpc_reply(req, result);
}

void
methods_sql_call(struct request *req, void (*after)(struct request *, json_t *))
{
	const struct conn *c = req->conn;
	const char *values[4];
	char *params = json_dumps(req->params, JSON_COMPACT);

	values[0] = c->session.bound ? c->session.token_hash : NULL;
	values[1] = params;
	values[2] = c->addr;
	values[3] = server_policy_json();
	req->sql_after = after;
	db_exec(srv->db, req->method->stmt, 4, values, method_sql_done, req);
	free(params);
}

void
method_sql(struct request *req)
{
	methods_sql_call(req, NULL);
}
