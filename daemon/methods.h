/*
 * The method table: one declarative row per JSON-RPC method (name,
 * handler, roles allowed, parameter schema, SQL). methods_dispatch(), the
 * protocol's dispatch hook, enforces the roles and validates the params
 * from this table before a handler runs, so no handler re-implements
 * either. docs/protocol.md lists the methods; docs/roles.md the roles.
 *
 * Handler contract (method_fn): called on the loop thread with a request
 * whose params are an object that has been validated. It must end the
 * request exactly once, now or later, with rpc_reply() or rpc_error();
 * after that the request is gone and must not be touched. Everything it
 * needs comes through the request: req->app, req->peer.
 */
#ifndef METHODS_H
#define METHODS_H

#include <stdbool.h>
#include <stddef.h>

#include "params.h"
#include "session.h"

struct request;
typedef void method_fn(struct request *req);

/* Which statement_timeout a method's SQL runs under (configuration). */
enum method_class {
	MC_DEFAULT,
	MC_LIST,        /* lists and exports */
	MC_REPORT,      /* report.* */
};

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
enum method_class methods_class(const struct method *m);
/* True when m's SQL (a STABLE function) may run on the read pool, when
 * there is one within its lag bound: a few seconds stale at most, so only
 * for reads where that does no harm (docs/scaling.md, "Read replicas"). */
bool methods_on_replica(const struct method *m);
/* Set by sqlcall_statements() alone. */
void methods_set_stmt(size_t i, size_t stmt);
/* The protocol's dispatch hook (struct rpc_hooks). */
void methods_dispatch(struct request *req);

#endif
