/*
 * The asynchronous PostgreSQL pool. Every connection is non-blocking and
 * driven by libevent; nothing here ever blocks the loop.
 *
 * Statements are given once to db_pool_new() and prepared on every
 * connection as it comes up; queries name them by index. A query waits in
 * the pool's queue while every connection is busy, and fails with
 * DB_UNAVAILABLE at once when no connection is up, or after
 * database.queue_timeout in the queue. A lost connection is re-made with
 * exponential backoff; the pool recovers by itself when the server returns.
 *
 * Callback contract (db_cb): called exactly once per db_exec(), on the loop
 * thread, never from inside db_exec() itself. `res` belongs to the pool and
 * is cleared after the callback returns; the callback may issue new
 * queries. Serialization failures and deadlocks are retried by the pool
 * (the transaction was rolled back, so a retry is safe) before the callback
 * sees them.
 *
 * Failover: conninfo may name several hosts (libpq's multi-host form) with
 * target_session_attrs=read-write; every connection, the listener's too,
 * is re-made through the whole list, so after a failover the pool finds
 * the new primary by itself. A statement refused as read-only (SQLSTATE
 * 25006: the server became a standby) is put back in the queue and its
 * connection re-made, with a backoff of at least 1 s until a statement
 * succeeds again.
 *
 * A read pool (db_pool_set_replica) runs on hot standbys: each of its
 * connections measures its replay lag every second, between queries, and
 * is not used while the lag passes the bound; the pool is then "down"
 * (db_pool_up() false, queries fail DB_UNAVAILABLE) and the caller reads
 * from the primary instead. docs/scaling.md.
 */
#ifndef DB_H
#define DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;

enum db_status {
	DB_OK,          /* res is PGRES_TUPLES_OK or PGRES_COMMAND_OK */
	DB_SQL_ERROR,   /* res holds the error (PQresultErrorField) */
	DB_UNAVAILABLE, /* res is NULL: no connection, or lost mid-query */
};

typedef void db_cb(PGresult *res, enum db_status status, void *arg);
/* Called on the loop thread for every NOTIFY the listener receives. */
typedef void db_notify_cb(const char *channel, const char *payload, void *arg);
/* The listener came up (LISTEN done) or went down; notifications sent
 * while it was down are lost, so subscribers must be told to resync. */
typedef void db_listen_state_cb(bool up, void *arg);

struct db_pool;

struct db_pool *db_pool_new(struct event_base *base, const char *conninfo,
    int size, const char *const *statements, size_t nstatements);
void db_pool_free(struct db_pool *pool);
void db_pool_set_timeouts(struct db_pool *pool, int connect_s, int queue_s);

/* Makes pool a read pool on standbys, whose connections are used only
 * while their replay lag is at most max_lag_ms; may be called again to
 * change the bound. Call it before the loop runs. */
void db_pool_set_replica(struct db_pool *pool, int max_lag_ms);

/* statement_timeout per class of statement. Statement `stmt` runs under
 * ms milliseconds (0: no limit; < 0: the pool's default again); with
 * stmt = DB_STMT_DEFAULT, ms sets the pool's default (< 0: the session's
 * own, as the role, database or server set it; the initial value). Each
 * connection sends a SET (or RESET) before a query only when the query
 * wants another timeout than the connection's current one, so queries of
 * one class cost no extra round trip; a re-made connection starts again
 * from the session's own. Takes effect from the next query. A statement
 * cancelled by it fails with DB_SQL_ERROR and SQLSTATE 57014: see
 * db_result_is_timeout(). */
#define DB_STMT_DEFAULT ((size_t)-1)
void db_pool_set_statement_timeout(struct db_pool *pool, size_t stmt, int ms);
/* True when res is a statement cancelled (SQLSTATE 57014 query_canceled),
 * which for the pool's queries means its statement_timeout ran out. */
bool db_result_is_timeout(const PGresult *res);

/* Adds the pool's LISTEN connection: one more connection, made and re-made
 * like the others, that listens on every channel of the NULL-terminated
 * list and hands every notification to cb. */
void db_pool_listen(struct db_pool *pool, const char *const *channels,
    db_notify_cb *cb, db_listen_state_cb *state_cb, void *arg);
/* Runs sql (text, not prepared; parameters as for db_exec) on the LISTEN
 * connection, queued behind its other queries: for reads that must not
 * wait behind the requests in the pool's queue, nor take one of its
 * connections. Notifications keep coming meanwhile. Fails with
 * DB_UNAVAILABLE (from the loop) while the listener is not listening; no
 * statement_timeout, no retry. Same callback contract as db_exec(). */
void db_listen_exec(struct db_pool *pool, const char *sql, int nparams,
    const char *const *values, db_cb *cb, void *arg);
/* True while the LISTEN connection listens. */
bool db_listen_up(const struct db_pool *pool);

/* Runs prepared statement `stmt` with text parameters (NULL = SQL NULL;
 * values are copied). */
void db_exec(struct db_pool *pool, size_t stmt, int nparams,
    const char *const *values, db_cb *cb, void *arg);

/* True while at least one connection is up. */
bool db_pool_up(const struct db_pool *pool);
/* Queries queued, running, or failed and about to be answered. */
size_t db_pool_pending(const struct db_pool *pool);

/* The reason word of an SQLSTATE: true for connection-class errors after
 * which the connection must be re-made. */
bool db_sqlstate_is_fatal(const char *sqlstate);

#endif
