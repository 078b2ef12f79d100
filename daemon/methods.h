/*
 * The method table: one declarative row per JSON-RPC method (name,
 * handler, roles allowed, parameter schema, SQL). The dispatcher enforces
 * the roles and validates the params from this table before a handler
 * runs, so no handler re-implements either.
 *
 * Handler contract (method_fn): called on the loop thread with a request
 * whose params have been validated. It must end the request exactly once,
 * now or later, with rpc_reply() or rpc_error(); after that the request is
 * gone and must not be touched.
 *
 * Most methods need no C handler: method_sql calls the row's SQL function
 * with ($1 = caller's token hash or NULL, $2 = params as jsonb,
 * $3 = caller's address) and answers the JSON it returns. Such functions
 * check the token and the caller's scope themselves, in the same round
 * trip, and signal errors with api_error() (sql/001_foundation.sql).
 */
#ifndef METHODS_H
#define METHODS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "db.h"
#include "params.h"

struct request;
typedef void method_fn(struct request *req);

enum role {
	ROLE_ANON = 0x1,
	ROLE_ADMIN = 0x2,
	ROLE_PARTNER = 0x4,
	ROLE_REFERENT = 0x8,
};
#define ROLES_USERS (ROLE_ADMIN | ROLE_PARTNER | ROLE_REFERENT)
#define ROLES_ALL (ROLE_ANON | ROLES_USERS)

struct method {
	const char *name;
	method_fn *fn;
	unsigned roles;
	const struct param *params;
	const char *sql;        /* for method_sql, or NULL */
	size_t stmt;            /* index of sql among the prepared statements */
};

extern struct method methods[];
extern const size_t methods_count;

const struct method *methods_find(const char *name);
enum role methods_role_from_name(const char *name);
const char *methods_role_name(enum role role);

/* Generic handler: see above. */
void method_sql(struct request *req);

/* For C handlers built on the same call: after (may be NULL) receives the
 * JSON result (reference stolen) and must end the request. */
void methods_sql_call(struct request *req,
    void (*after)(struct request *req, json_t *result));

/* Ends req with the error a failed query deserves: api_error() reasons
 * as they are, connection trouble as unavailable, the rest as
 * internal_error (logged, never shown). */
void methods_sql_error(struct request *req, PGresult *res, enum db_status st);
/* The JSON in the first column of the only row, or NULL. */
json_t *methods_sql_json(PGresult *res);

#endif
