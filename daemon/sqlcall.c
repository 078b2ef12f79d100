#include "sqlcall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "events.h"
#include "log.h"
#include "methods.h"
#include "rpc.h"

/* pg_type's oids for json and jsonb (fixed in every PostgreSQL). */
#define JSON_OID 114
#define JSONB_OID 3802

static const char *const internal_sql[STMT_INTERNAL_COUNT] = {
	[STMT_AUTH_LOGIN_BEGIN] = "SELECT api.auth_login_begin($1, $2, $3, $4)",
	[STMT_AUTH_LOGIN_SUCCESS] = "SELECT api.auth_login_success($1, $2, $3, $4, $5)",
	[STMT_AUTH_LOGIN_FAILURE] = "SELECT api.auth_login_failure($1, $2)",
	[STMT_AUTH_RESUME] = "SELECT api.auth_resume($1)",
	[STMT_AUTH_CERT_LOGIN] = "SELECT api.auth_cert_login($1, $2, $3, $4)",
	[STMT_AUTH_PASSWORD_HASH] = "SELECT api.auth_password_hash($1)",
	[STMT_AUTH_SET_PASSWORD] = "SELECT api.auth_set_password($1, $2, $3, $4)",
	[STMT_AUTH_TOKENS_ALIVE] = "SELECT api.auth_tokens_alive($1::text[])",
	[STMT_AUTH_REVOKE_CERT_SESSIONS] =
	    "SELECT count(*) FROM api.auth_revoke_cert_sessions()",
	[STMT_WAITLIST_SWEEP] = "SELECT api.waitlist_sweep($1::jsonb)",
	[STMT_RETENTION_SWEEP] = "SELECT api.retention_sweep($1::jsonb)",
	[STMT_MAIL_SWEEP] = "SELECT api.mail_sweep($1::jsonb)",
	[STMT_BOOKING_CREATE_BATCH] =
	    "SELECT api.booking_create_batch($1::jsonb, $2::jsonb)",
	[STMT_PERMANENCE_ICS] = "SELECT api.permanence_ics($1::bigint)",
	[STMT_MAIL_CLAIM] = "SELECT api.mail_claim($1, $2::integer, "
	    "$3::integer)",
	[STMT_MAIL_SETTLE] = "SELECT api.mail_settle($1, $2::jsonb, "
	    "$3::integer, $4::integer, $5::integer)",
};

static size_t first_internal;

const char **
sqlcall_statements(size_t *n)
{
	const char **list = xcalloc(methods_count + STMT_INTERNAL_COUNT,
	    sizeof *list);
	size_t i, k = 0;

	for (i = 0; i < methods_count; i++) {
		if (methods[i].sql == NULL)
			continue;
		methods_set_stmt(i, k);
		list[k++] = methods[i].sql;
	}
	first_internal = k;
	for (i = 0; i < STMT_INTERNAL_COUNT; i++)
		list[k++] = internal_sql[i];
	*n = k;
	return list;
}

size_t
sqlcall_stmt(enum sql_stmt s)
{
	return first_internal + (size_t)s;
}

/* An api_error() of reason, sentence hint and data (stolen; "field" in
 * it, if any, names the param). False if reason is not one of ours. */
static bool
end_with_api_error(struct request *req, const char *reason, const char *hint,
    json_t *data)
{
	const char *field = NULL;

	if (strcmp(reason, "internal_error") == 0) {
		json_decref(data);
		rpc_internal(req, hint ? hint : "api_error(internal_error)");
		return true;
	}
	if (rpc_code_for_reason(reason) == 0) {
		json_decref(data);
		return false;
	}
	if (json_is_object(data)) {
		json_t *f = json_object_get(data, "field");

		if (json_is_string(f))
			field = json_string_value(f);
	} else {
		json_decref(data);
		data = NULL;
	}
	/* field lives in data, which rpc_error takes: keep it alive. */
	json_incref(data);
	rpc_error(req, reason, field, data, "%s", hint ? hint : reason);
	json_decref(data);
	return true;
}

/* api_error(): MESSAGE is the reason, HINT the sentence, DETAIL a JSON
 * object of data (with "field" if any). False if not such an error. */
static bool
api_error(struct request *req, PGresult *res)
{
	const char *reason, *hint, *detail;

	reason = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	if (reason == NULL)
		return false;
	return end_with_api_error(req, reason, hint,
	    detail != NULL ? json_loads(detail, 0, NULL) : NULL);
}

bool
sqlcall_error_json(struct request *req, json_t *err)
{
	const char *reason = json_string_value(json_object_get(err, "reason"));
	const char *hint = json_string_value(json_object_get(err, "message"));

	if (reason == NULL)
		return false;
	return end_with_api_error(req, reason, hint,
	    json_incref(json_object_get(err, "data")));
}

void
sqlcall_error(struct request *req, PGresult *res, enum db_status st)
{
	const char *state;
	char detail[512];

	if (st == DB_UNAVAILABLE) {
		rpc_error(req, "unavailable", NULL, NULL,
		    "The database is unavailable; try again shortly.");
		return;
	}
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state != NULL && strcmp(state, "SP001") == 0 && api_error(req, res))
		return;
	if (state != NULL && strcmp(state, "57014") == 0) {
		rpc_error(req, "timeout", NULL, NULL, "This request took too "
		    "long and was stopped; ask for less (a shorter range, a "
		    "smaller page) or try again later.");
		return;
	}
	if (state != NULL && (strncmp(state, "40", 2) == 0 ||
	    strncmp(state, "53", 2) == 0)) {
		rpc_error(req, "unavailable", NULL, NULL,
		    "The database is busy; try again shortly.");
		return;
	}
	snprintf(detail, sizeof detail, "SQLSTATE %s: %s", state ? state : "?",
	    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?: "?");
	rpc_internal(req, detail);
}

json_t *
sqlcall_json(PGresult *res)
{
	if (PQntuples(res) != 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0))
		return NULL;
	return json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, NULL);
}

static void sqlcall_send(struct request *req, struct db_pool *pool);

static void
sqlcall_done(PGresult *res, enum db_status st, void *arg)
{
	struct request *req = arg;
	json_t *result;

	/* The replica went down or fell behind while the query waited, or
	 * refused (a token or a scope newer than what it has replayed: a
	 * session opened a moment ago is not there yet): the statement only
	 * reads, so it runs again on the primary, whose answer stands. */
	if (st != DB_OK && req->on_replica) {
		log_debug("%s: the replica answered %s; reading from the "
		    "primary", req->method->name, st == DB_UNAVAILABLE ?
		    "unavailable" :
		    PQresultErrorField(res, PG_DIAG_SQLSTATE) ?: "an error");
		sqlcall_send(req, req->app->db);
		return;
	}
	if (st != DB_OK) {
		sqlcall_error(req, res, st);
		return;
	}
	/* It may have written events (the outbox): read them now. */
	if (methods_class(req->method) == MC_DEFAULT)
		events_kick();
	/* The function's JSON goes out as PostgreSQL wrote it: parsing it
	 * only to write it again cost more than the rest of the daemon's
	 * share of a list. Only a value PostgreSQL typed json or jsonb, which
	 * it checked: anything else is parsed below. */
	if (req->sql_after == NULL && PQntuples(res) == 1 &&
	    PQnfields(res) >= 1 && !PQgetisnull(res, 0, 0) &&
	    (PQftype(res, 0) == JSONB_OID || PQftype(res, 0) == JSON_OID)) {
		rpc_reply_text(req, PQgetvalue(res, 0, 0),
		    (size_t)PQgetlength(res, 0, 0));
		return;
	}
	if ((result = sqlcall_json(res)) == NULL) {
		rpc_internal(req, "SQL function answered no JSON");
		return;
	}
	if (req->sql_after != NULL) {
		req->sql_after(req, result);
		return;
	}
	rpc_reply(req, result);
}

static void
sqlcall_send(struct request *req, struct db_pool *pool)
{
	const struct session *s = rpc_peer_session(req->peer);
	const char *values[4];
	char *params = json_dumps(req->params, JSON_COMPACT);

	values[0] = s->bound ? s->token_hash : NULL;
	values[1] = params;
	values[2] = rpc_peer_addr(req->peer);
	values[3] = req->app->policy_json;
	req->on_replica = pool != req->app->db;
	db_exec(pool, req->method->stmt, 4, values, sqlcall_done, req);
	free(params);
}

void
sqlcall(struct request *req, void (*after)(struct request *, json_t *))
{
	struct db_pool *replica = req->app->replica;

	req->sql_after = after;
	/* The read pool is "up" only while one of its connections is within
	 * database.replica_max_lag. */
	if (replica != NULL && methods_on_replica(req->method) &&
	    db_pool_up(replica))
		sqlcall_send(req, replica);
	else
		sqlcall_send(req, req->app->db);
}

void
method_sql(struct request *req)
{
	sqlcall(req, NULL);
}
