/*
 * SQL-backed methods: most methods need no C handler. method_sql calls
 * the method row's SQL function with ($1 = the caller's token hash or
 * NULL, $2 = params as jsonb, $3 = the caller's address, $4 = the policy)
 * and answers the JSON it returns. Such functions check the token and
 * the caller's scope themselves, in the same round trip, and signal
 * errors with api_error() (sql/api/00_core.sql), whose reasons are
 * those of rpc.c's table.
 *
 * This module also owns the list of prepared statements: the methods'
 * SQL, then the daemon's own (enum sql_stmt).
 */
#ifndef SQLCALL_H
#define SQLCALL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "db.h"

struct request;

/* Statements the daemon runs itself, after the methods' ones. */
enum sql_stmt {
	STMT_AUTH_LOGIN_BEGIN,
	STMT_AUTH_LOGIN_SUCCESS,
	STMT_AUTH_LOGIN_FAILURE,
	STMT_AUTH_RESUME,
	STMT_AUTH_CERT_LOGIN,
	STMT_AUTH_PASSWORD_HASH,
	STMT_AUTH_SET_PASSWORD,
	STMT_AUTH_TOKENS_ALIVE,
	STMT_AUTH_REVOKE_CERT_SESSIONS,
	STMT_WAITLIST_SWEEP,
	STMT_RETENTION_SWEEP,
	STMT_MAIL_SWEEP,
	STMT_BOOKING_CREATE_BATCH,
	STMT_PERMANENCE_ICS,
	STMT_MAIL_CLAIM,
	STMT_MAIL_SETTLE,
	STMT_INTERNAL_COUNT
};

/* Every statement to prepare, in pool order (caller frees the array, not
 * the strings); gives each SQL-backed method its statement index. */
const char **sqlcall_statements(size_t *n);
/* Index of an internal statement in the pool. */
size_t sqlcall_stmt(enum sql_stmt s);

/* The generic handler. */
void method_sql(struct request *req);
/* The same call for C handlers: after (may be NULL) receives the JSON
 * result (reference stolen) and must end the request. */
void sqlcall(struct request *req,
    void (*after)(struct request *req, json_t *result));
/* Ends req with the error a failed query deserves: api_error() reasons as
 * they are, a statement timeout as timeout, connection trouble as
 * unavailable, the rest as internal_error (logged, never shown). */
void sqlcall_error(struct request *req, PGresult *res, enum db_status st);
/* Ends req with an api_error() that an SQL function caught and returned
 * as {reason, message, data}, as sqlcall_error() would have. False (req
 * not ended) when err is not such an object. */
bool sqlcall_error_json(struct request *req, json_t *err);
/* The JSON in the first column of the only row, or NULL. */
json_t *sqlcall_json(PGresult *res);

#endif
