#include "methods.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conn.h"
#include "db.h"
#include "log.h"
#include "rpc.h"
#include "server.h"
#include "system.h"

static const struct param no_params[] = {{NULL}};

static const struct param login_params[] = {
	{"email", PT_EMAIL, P_REQUIRED, 0, 0, NULL},
	{"password", PT_STRING, P_REQUIRED, 1, 1024, NULL},
	{NULL}};

static const struct param resume_params[] = {
	{"token", PT_STRING, P_REQUIRED, 1, 128, NULL},
	{NULL}};

/* The one table. Keep it sorted by family; docs/protocol.md lists it. */
struct method methods[] = {
	{"system.ping", sys_ping, ROLES_ALL, no_params, NULL, 0},
	{"system.version", sys_version, ROLES_ALL, no_params, NULL, 0},
	{"system.health", sys_health, ROLES_ALL, no_params, NULL, 0},

	{"auth.login", auth_login, ROLES_ALL, login_params, NULL, 0},
	{"auth.resume", auth_resume, ROLES_ALL, resume_params, NULL, 0},
	{"auth.logout", auth_logout, ROLES_USERS, no_params,
	    "SELECT auth_logout($1, $2::jsonb, $3)", 0},
	{"auth.whoami", method_sql, ROLES_USERS, no_params,
	    "SELECT auth_whoami($1, $2::jsonb, $3)", 0},
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
	const char *values[3];
	char *params = json_dumps(req->params, JSON_COMPACT);

	values[0] = c->session.bound ? c->session.token_hash : NULL;
	values[1] = params;
	values[2] = c->addr;
	req->sql_after = after;
	db_exec(srv->db, req->method->stmt, 3, values, method_sql_done, req);
	free(params);
}

void
method_sql(struct request *req)
{
	methods_sql_call(req, NULL);
}
