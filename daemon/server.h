/* The server: event base, configuration, listeners, the set of
 * connections, the database pool and the worker pool. One instance, reached
 * through `srv`, as tmux reaches its global state. */
#ifndef SERVER_H
#define SERVER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "conn.h"

struct event_base;
struct config;
struct db_pool;
struct workpool;

TAILQ_HEAD(conn_list, conn);

struct server {
	struct event_base *base;
	struct config *cfg;
	SSL_CTX *ssl_ctx;
	struct db_pool *db;
	struct workpool *workers;
	struct evconnlistener *listeners[16];
	size_t nlisteners;
	struct conn_list conns;
	size_t nconns;
	uint64_t next_conn_id;
	uint64_t requests;          /* requests dispatched since start */
	uint64_t started_ms;
	bool draining;
	struct event *signals[4];
	struct event *drain_timer;
	struct event *sweep_timer;  /* waitlist expiry */
	bool sweep_running;
	struct event *retention_timer;
	bool retention_running;
	char *policy_json;
};

extern struct server *srv;

/* Sets up everything from cfg (taken) and runs the loop until stopped.
 * Returns the exit status. */
int server_run(struct config *cfg);
/* A connection left: drain completion check. */
void server_conn_closed(void);
/* The prepared statements of the pool: methods' SQL, then internal ones. */
enum server_stmt {
	STMT_AUTH_LOGIN_BEGIN,
	STMT_AUTH_LOGIN_SUCCESS,
	STMT_AUTH_LOGIN_FAILURE,
	STMT_AUTH_RESUME,
	STMT_AUTH_CERT_LOGIN,
	STMT_AUTH_PASSWORD_HASH,
	STMT_AUTH_SET_PASSWORD,
	STMT_WAITLIST_SWEEP,
	STMT_RETENTION_SWEEP,
	STMT_INTERNAL_COUNT
};
/* Index of an internal statement in the pool. */
size_t server_stmt(enum server_stmt s);
/* The [policy] section as the JSON object the SQL functions take. */
const char *server_policy_json(void);

#endif
