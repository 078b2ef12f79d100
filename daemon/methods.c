#include "methods.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "booking_batch.h"
#include "events.h"
#include "rpc.h"
#include "sqlcall.h"
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
/* what a group outing's code admits at the door: everyone, or its staff */
static const char *const group_codes[] = {"group", "person", NULL};
static const char *const booking_statuses[] = {"confirmed", "cancelled",
    "cancelled_by_partner", "attended", "no_show", "withdrawn_late", NULL};
static const char *const withdraw_reasons[] = {"illness", "transport",
    "family", "other", NULL};
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
/* Every staff notice; which of them a role receives, and so may turn
 * off, is the SQL's rule (core.mail_kinds, docs/mail.md). */
static const char *const mail_kinds[] = {"referent_digest",
    "offer_cancelled", "offer_moved", "hold_expiring", "guest_list",
    "attendance_to_close", NULL};
static const struct param mail_preferences_params[] = {
	{"mail_off", PT_ENUM_ARRAY, 0, 0, 6, mail_kinds},
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

/* What an offer is, apart from when: shared by offer.publish and
 * offer.publish_series, whose dates come from its rule. */
#define OFFER_WHAT_FIELDS(req) \
	{"title", PT_STRING, req, 1, 200, NULL}, \
	{"category", PT_ENUM, req, 0, 0, categories}, \
	{"venue", PT_STRING, req, 1, 200, NULL}, \
	{"city", PT_STRING, req, 1, 200, NULL}, \
	{"max_per_booking", PT_INT, 0, 1, 100, NULL}, \
	{"delivery", PT_ENUM, 0, 0, 0, deliveries}, \
	{"description", PT_TEXT, P_NULLABLE, 0, 4000, NULL}, \
	{"accessibility", PT_TEXT, P_NULLABLE, 0, 1000, NULL}, \
	{"address", PT_STRING, P_NULLABLE, 1, 300, NULL}, \
	{"group_codes", PT_ENUM, 0, 0, 0, group_codes}
#define OFFER_FIELDS(req) \
	OFFER_WHAT_FIELDS(req), \
	{"starts_at", PT_TIME, req, 0, 0, NULL}, \
	{"ends_at", PT_TIME, P_NULLABLE, 0, 0, NULL}, \
	{"booking_deadline", PT_TIME, 0, 0, 0, NULL}

/* Targeted offers (docs/booking-rules.md, "Targeted offers"): the opening
 * is an instant or a lead before the show (up to 90 days), one of the
 * two (checked in SQL, with the targets and the deadline). */
#define OFFER_TARGETS \
	{"target_structure_ids", PT_ID_ARRAY, P_NULLABLE, 0, 200, NULL}, \
	{"target_territories", PT_STRING_ARRAY, P_NULLABLE, 0, 50, NULL}, \
	{"opens_to_all_at", PT_TIME, P_NULLABLE, 0, 0, NULL}, \
	{"opens_to_all_hours", PT_INT, P_NULLABLE, 1, 2160, NULL}

static const struct param offer_publish_params[] = {
	OFFER_FIELDS(P_REQUIRED),
	{"seats", PT_INT, P_REQUIRED, 1, 100000, NULL},
	{"partner_id", PT_ID, 0, 0, 0, NULL},
	OFFER_TARGETS,
	{0}};
/* scope "following": this offer and the later ones of its series, whose
 * times are then given as wall clock (docs/series.md). */
static const char *const offer_scopes[] = {"this", "following", NULL};
static const struct param offer_update_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	OFFER_FIELDS(0),
	{"scope", PT_ENUM, 0, 0, 0, offer_scopes},
	{"start_time", PT_HHMM, 0, 0, 0, NULL},
	{"end_time", PT_HHMM, P_NULLABLE, 0, 0, NULL},
	{"deadline_hours", PT_INT, 0, 0, 720, NULL},
	OFFER_TARGETS,
	{0}};
static const struct param offer_seats_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"seats", PT_INT, P_REQUIRED, 1, 100000, NULL},
	{0}};
static const struct param offer_cancel_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"reason", PT_STRING, P_REQUIRED, 1, 500, NULL},
	{"scope", PT_ENUM, 0, 0, 0, offer_scopes},
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
	{"email", PT_EMAIL, 0, 0, 0, NULL},
	{"reminders", PT_BOOL, 0, 0, 0, NULL},
	{0}};
static const struct param beneficiary_update_params[] = {
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	BENEFICIARY_FIELDS(0),
	{"email", PT_EMAIL, P_NULLABLE, 0, 0, NULL},
	{"reminders", PT_BOOL, 0, 0, 0, NULL},
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
static const struct param booking_withdraw_params[] = {
	{"booking_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"reason", PT_ENUM, P_REQUIRED, 0, 0, withdraw_reasons},
	{0}};
static const struct param beneficiary_record_params[] = {
	{"beneficiary_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"at", PT_TIME, 0, 0, 0, NULL},
	{0}};
static const struct param close_attendance_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"arrived_late", PT_ID_ARRAY, 0, 0, 500, NULL},
	{0}};
/* A group outing: one person per id, `seats` (each >= 1: the person and
 * their companions; one per id, all 1 if absent) bounded in SQL by the
 * offer's max_per_booking; staff seats are nobody's outing. */
static const struct param booking_group_params[] = {
	{"offer_id", PT_ID, P_REQUIRED, 0, 0, NULL},
	{"beneficiary_ids", PT_ID_ARRAY, P_REQUIRED, 1, 50, NULL},
	{"seats", PT_ID_ARRAY, 0, 1, 50, NULL},
	{"staff_seats", PT_INT, 0, 0, 20, NULL},
	{"idempotency_key", PT_STRING, 0, 1, 128, NULL},
	{0}};
static const struct param group_id_params[] = {
	{"group_id", PT_ID, P_REQUIRED, 0, 0, NULL}, {0}};
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

static const struct param subscribe_params[] = {
	{"topics", PT_ENUM_ARRAY, P_REQUIRED, 0, EVENTS_TOPICS, events_topics},
	{0}};

static const struct param check_in_params[] = {
	{"code", PT_STRING, P_REQUIRED, 1, 64, NULL},
	{"offer_id", PT_ID, 0, 0, 0, NULL}, {0}};
static const struct param voucher_get_params[] = {
	{"code", PT_STRING, P_REQUIRED, 1, 64, NULL}, {0}};
static const struct param public_list_params[] = {
	{"structure_id", PT_ID, P_REQUIRED, 0, 0, NULL}, {0}};
static const struct param audit_list_params[] = {
	{"from", PT_TIME, 0, 0, 0, NULL},
	{"to", PT_TIME, 0, 0, 0, NULL},
	{"user_id", PT_ID, 0, 0, 0, NULL},
	LIST_PARAMS, {0}};

#define SQL(fn) "SELECT api." fn "($1, $2::jsonb, $3, $4::jsonb)"
#define REFERENTS (ROLE_ADMIN | ROLE_REFERENT)
#define PARTNERS (ROLE_ADMIN | ROLE_PARTNER)

#include "methods_permanence.h"
#include "methods_report.h"
#include "methods_identity.h"

/* The rule is permanence.schedule_series's, nth optional (every week);
 * count or until_date, one of them (checked in SQL). */
static const struct param offer_series_params[] = {
	OFFER_WHAT_FIELDS(P_REQUIRED),
	{"seats", PT_INT, P_REQUIRED, 1, 100000, NULL},
	{"partner_id", PT_ID, 0, 0, 0, NULL},
	{"weekday", PT_ENUM, P_REQUIRED, 0, 0, permanence_weekdays},
	{"nth", PT_INT, 0, -1, 5, NULL},
	{"start_time", PT_HHMM, P_REQUIRED, 0, 0, NULL},
	{"end_time", PT_HHMM, 0, 0, 0, NULL},
	{"from_date", PT_DATE, P_REQUIRED, 0, 0, NULL},
	{"count", PT_INT, 0, 1, 120, NULL},
	{"until_date", PT_DATE, 0, 0, 0, NULL},
	{"deadline_hours", PT_INT, 0, 0, 720, NULL},
	OFFER_TARGETS,
	{0}};

/* api.voucher_get() never raises, so that a refusal keeps the count of
 * the rate limit it wrote: it answers {"result": ...} or {"error":
 * {reason, message, data}} (sql/api/40_bookings.sql). */
static void
voucher_get_after(struct request *req, json_t *answer)
{
	json_t *err = json_object_get(answer, "error");
	json_t *result = json_object_get(answer, "result");

	if (json_is_object(result))
		rpc_reply(req, json_incref(result));
	else if (!json_is_object(err) || !sqlcall_error_json(req, err))
		rpc_internal(req, "voucher_get: malformed answer");
	json_decref(answer);
}

static void
voucher_get(struct request *req)
{
	sqlcall(req, voucher_get_after);
}

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
	{"auth.set_mail_preferences", method_sql, ROLES_USERS,
	    mail_preferences_params, SQL("auth_set_mail_preferences"), 0},

	{"partner.create", method_sql, ROLE_ADMIN, partner_create_params, SQL("partner_create"), 0},
	{"partner.list", method_sql, ROLES_USERS, page_params, SQL("partner_list"), 0},
	{"structure.create", method_sql, ROLE_ADMIN, structure_create_params, SQL("structure_create"), 0},
	{"structure.list", method_sql, ROLES_USERS, page_params, SQL("structure_list"), 0},
	{"user.create", auth_user_create, ROLE_ADMIN, user_create_params, SQL("user_create"), 0},
	{"user.list", method_sql, ROLE_ADMIN, user_list_params, SQL("user_list"), 0},
	{"user.disable", method_sql, ROLE_ADMIN, user_id_params, SQL("user_disable"), 0},

	{"offer.publish", method_sql, PARTNERS, offer_publish_params, SQL("offer_publish"), 0},
	{"offer.publish_series", method_sql, PARTNERS, offer_series_params, SQL("offer_publish_series"), 0},
	{"offer.update", method_sql, PARTNERS, offer_update_params, SQL("offer_update"), 0},
	{"offer.set_seats", method_sql, PARTNERS, offer_seats_params, SQL("offer_set_seats"), 0},
	{"offer.cancel", method_sql, PARTNERS, offer_cancel_params, SQL("offer_cancel"), 0},
	{"offer.list", method_sql, ROLES_USERS, offer_list_params, SQL("offer_list"), 0},
	{"offer.get", method_sql, ROLES_USERS, offer_id_params, SQL("offer_get"), 0},
	{"offer.guest_list", method_sql, PARTNERS, offer_id_params, SQL("offer_guest_list"), 0},
	{"offer.close_attendance", method_sql, PARTNERS, close_attendance_params, SQL("offer_close_attendance"), 0},

	{"beneficiary.create", method_sql, REFERENTS, beneficiary_create_params, SQL("beneficiary_create"), 0},
	{"beneficiary.list", method_sql, REFERENTS, beneficiary_list_params, SQL("beneficiary_list"), 0},
	{"beneficiary.get", method_sql, REFERENTS, beneficiary_id_params, SQL("beneficiary_get"), 0},
	{"beneficiary.update", method_sql, REFERENTS, beneficiary_update_params, SQL("beneficiary_update"), 0},
	{"beneficiary.erase", method_sql, REFERENTS, beneficiary_id_params, SQL("beneficiary_erase"), 0},
	{"beneficiary.export", method_sql, REFERENTS, beneficiary_id_params, SQL("beneficiary_export"), 0},
	{"beneficiary.record", method_sql, REFERENTS, beneficiary_record_params, SQL("beneficiary_record"), 0},

	{"booking.create", booking_batch_submit, REFERENTS, booking_create_params, NULL, 0},
	{"booking.cancel", method_sql, REFERENTS, booking_id_params, SQL("booking_cancel"), 0},
	{"booking.withdraw", method_sql, REFERENTS, booking_withdraw_params, SQL("booking_withdraw"), 0},
	{"booking.list", method_sql, REFERENTS, booking_list_params, SQL("booking_list"), 0},
	{"booking.get", method_sql, REFERENTS, booking_id_params, SQL("booking_get"), 0},
	{"booking.create_group", method_sql, REFERENTS, booking_group_params, SQL("booking_create_group"), 0},
	{"booking.get_group", method_sql, REFERENTS, group_id_params, SQL("booking_get_group"), 0},
	{"booking.cancel_group", method_sql, REFERENTS, group_id_params, SQL("booking_cancel_group"), 0},

	{"waitlist.join", method_sql, REFERENTS, waitlist_join_params, SQL("waitlist_join"), 0},
	{"waitlist.leave", method_sql, REFERENTS, entry_id_params, SQL("waitlist_leave"), 0},
	{"waitlist.list", method_sql, REFERENTS, waitlist_list_params, SQL("waitlist_list"), 0},
	{"waitlist.accept", method_sql, REFERENTS, entry_id_params, SQL("waitlist_accept"), 0},

	{"ticket.check_in", method_sql, PARTNERS, check_in_params, SQL("ticket_check_in"), 0},
	{"audit.list", method_sql, ROLE_ADMIN, audit_list_params, SQL("audit_list"), 0},

	/* For the public web pages: no login (docs/roles.md). */
	{"voucher.get", voucher_get, ROLES_ALL, voucher_get_params, SQL("voucher_get"), 0},
	{"permanence.public_list", method_sql, ROLES_ALL, public_list_params,
	    SQL("permanence_public_list"), 0},

	PERMANENCE_METHODS
	REPORT_METHODS
	IDENTITY_METHODS

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

/* The methods whose SQL may read from a replica: the catalogue (the seats
 * it shows are a hint; booking.create decides on the primary), the
 * funders' report, the audit journal and the public permanence page.
 * Never what a referent or a partner has just changed and reads back
 * (bookings, beneficiaries, waitlists, guest lists): those stay on the
 * primary. docs/scaling.md, "Read replicas". */
static const char *const replica_methods[] = {"offer.list",
    "report.activity", "audit.list", "permanence.public_list", NULL};
static bool on_replica[nitems(methods)];       /* by index in methods[] */

void
methods_set_stmt(size_t i, size_t stmt)
{
	const char *const *r;

	methods[i].stmt = stmt;
	for (r = replica_methods; *r != NULL; r++)
		if (strcmp(*r, methods[i].name) == 0)
			on_replica[i] = true;
}

bool
methods_on_replica(const struct method *m)
{
	return on_replica[m - methods];
}

enum method_class
methods_class(const struct method *m)
{
	size_t n = strlen(m->name);

	if (strncmp(m->name, "report.", 7) == 0)
		return MC_REPORT;
	if ((n > 5 && strcmp(m->name + n - 5, ".list") == 0) ||
	    (n > 7 && strcmp(m->name + n - 7, ".export") == 0) ||
	    strcmp(m->name, "offer.guest_list") == 0 ||
	    strcmp(m->name, "permanence.public_list") == 0)
		return MC_LIST;
	return MC_DEFAULT;
}

void
methods_dispatch(struct request *req)
{
	const struct method *m = methods_find(req->method_name);
	const char *field;
	enum role role;
	char msg[256];

	if (m == NULL) {
		rpc_error(req, "method_not_found", NULL, NULL, "No such method.");
		return;
	}
	req->method = m;
	if (json_is_array(req->params)) {
		rpc_error(req, "invalid_params", "params", NULL,
		    "params must be an object of named parameters.");
		return;
	}
	role = rpc_peer_role(req->peer);
	if (!(m->roles & role)) {
		if (role == ROLE_ANON)
			rpc_error(req, "unauthenticated", NULL, NULL,
			    "Log in first.");
		else
			rpc_error(req, "forbidden", NULL, NULL,
			    "Your role may not call this method.");
		return;
	}
	if (!params_validate(m->params, req->params, &field, msg, sizeof msg)) {
		rpc_error(req, "invalid_params", field, NULL, "%s", msg);
		return;
	}
	m->fn(req);
}
