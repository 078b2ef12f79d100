#include "server.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "events.h"
#include <event2/buffer.h>
#include "log.h"
#include "methods.h"
#include "migrate.h"
#include "tls.h"
#include "workpool.h"

struct server *srv;

/* Statements the daemon runs itself, after the methods' ones. */
static const char *const internal_sql[STMT_INTERNAL_COUNT] = {
	[STMT_AUTH_LOGIN_BEGIN] = "SELECT auth_login_begin($1, $2, $3, $4)",
	[STMT_AUTH_LOGIN_SUCCESS] = "SELECT auth_login_success($1, $2, $3, $4, $5)",
	[STMT_AUTH_LOGIN_FAILURE] = "SELECT auth_login_failure($1, $2)",
	[STMT_AUTH_RESUME] = "SELECT auth_resume($1)",
	[STMT_AUTH_CERT_LOGIN] = "SELECT auth_cert_login($1, $2, $3, $4)",
	[STMT_AUTH_PASSWORD_HASH] = "SELECT auth_password_hash($1)",
	[STMT_AUTH_SET_PASSWORD] = "SELECT auth_set_password($1, $2, $3, $4)",
	[STMT_WAITLIST_SWEEP] = "SELECT waitlist_sweep($1::jsonb)",
	[STMT_RETENTION_SWEEP] = "SELECT retention_sweep($1::jsonb)",
};

static const char **statements;
static size_t nstatements, first_internal;
static struct event *ready_timer;
static uint64_t ready_deadline;

size_t
server_stmt(enum server_stmt s)
{
	return first_internal + (size_t)s;
}

static void
build_statements(void)
{
	size_t i;

	statements = xcalloc(methods_count + STMT_INTERNAL_COUNT,
	    sizeof *statements);
	for (i = 0; i < methods_count; i++) {
		if (methods[i].sql == NULL)
			continue;
		methods[i].stmt = nstatements;
		statements[nstatements++] = methods[i].sql;
	}
	first_internal = nstatements;
	for (i = 0; i < STMT_INTERNAL_COUNT; i++)
		statements[nstatements++] = internal_sql[i];
}

const char *
server_policy_json(void)
{
	return srv->policy_json;
}

static void
build_policy_json(void)
{
	const struct policy *p = &srv->cfg->policy;
	json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I}",
	    "max_upcoming_per_beneficiary",
	    (json_int_t)p->max_upcoming_per_beneficiary,
	    "max_per_month", (json_int_t)p->max_per_month,
	    "waitlist_hold", (json_int_t)p->waitlist_hold,
	    "history_window_days", (json_int_t)p->history_window_days,
	    "no_show_weight", p->no_show_weight,
	    "login_max_failures", (json_int_t)p->login_max_failures,
	    "login_lockout", (json_int_t)p->login_lockout,
	    "token_ttl", (json_int_t)p->token_ttl,
	    "retention_months", (json_int_t)p->retention_months);

	free(srv->policy_json);
	/* 15 digits: 0.2 must reach SQL as 0.2, not 0.20000000000000001,
	 * or draw scores that should tie do not. */
	srv->policy_json = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(j);
	if (srv->policy_json == NULL)
		fatal("cannot build the policy");
}

static void
sweep_done(PGresult *res, enum db_status st, void *arg)
{
	srv->sweep_running = false;
	if (st == DB_SQL_ERROR)
		log_error("waitlist sweep: %s", PQresultErrorMessage(res));
	else if (st == DB_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		log_info("waitlist sweep: %s entries expired",
		    PQgetvalue(res, 0, 0));
}

/* Every daemon sweeps; SKIP LOCKED in waitlist_sweep() makes each expiry
 * happen once. One sweep at a time per daemon, and none while stopping. */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	const char *vals[1];

	if (srv->sweep_running || srv->draining || !db_pool_up(srv->db))
		return;
	srv->sweep_running = true;
	vals[0] = srv->policy_json;
	db_exec(srv->db, server_stmt(STMT_WAITLIST_SWEEP), 1, vals, sweep_done,
	    NULL);
}

static void
retention_done(PGresult *res, enum db_status st, void *arg)
{
	srv->retention_running = false;
	if (st == DB_SQL_ERROR)
		log_error("retention: %s", PQresultErrorMessage(res));
	else if (st == DB_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		log_info("retention: %s beneficiaries anonymised after %lld "
		    "months without activity", PQgetvalue(res, 0, 0),
		    srv->cfg->policy.retention_months);
}

/* policy.retention_months: every daemon checks each retention_interval;
 * SKIP LOCKED in retention_sweep() anonymises each person once. */
static void
retention_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = {(time_t)srv->cfg->policy.retention_interval, 0};
	const char *vals[1];

	evtimer_add(srv->retention_timer, &tv);
	if (srv->retention_running || srv->draining || !db_pool_up(srv->db))
		return;
	srv->retention_running = true;
	vals[0] = srv->policy_json;
	db_exec(srv->db, server_stmt(STMT_RETENTION_SWEEP), 1, vals,
	    retention_done, NULL);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	conn_accept(fd, sa, salen);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	if (!srv->draining)
		evconnlistener_enable(arg);
}

/* Out of descriptors: accept() fails at once and would spin; pause the
 * listener for a moment instead. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct timeval tv = {0, 200000};
	int err = EVUTIL_SOCKET_ERROR();

	log_warn("accept: %s", evutil_socket_error_to_string(err));
	evconnlistener_disable(l);
	event_base_once(srv->base, -1, EV_TIMEOUT, listener_resume_cb, l, &tv);
}

static bool
listen_all(void)
{
	size_t i;

	for (i = 0; i < srv->cfg->nlisten; i++) {
		struct addrinfo hints, *ai = NULL, *p;
		char *host, *port;
		int rc;

		if (!config_split_hostport(srv->cfg->listen[i], &host, &port))
			return false;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		/* Start-up only: a blocking lookup is harmless here. */
		rc = getaddrinfo(host, port, &hints, &ai);
		free(host);
		free(port);
		if (rc != 0) {
			log_error("listen %s: %s", srv->cfg->listen[i],
			    gai_strerror(rc));
			return false;
		}
		for (p = ai; p != NULL; p = p->ai_next) {
			struct evconnlistener *l;

			if (srv->nlisteners == nitems(srv->listeners))
				break;
			l = evconnlistener_new_bind(srv->base, accept_cb, NULL,
			    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
			    LEV_OPT_CLOSE_ON_EXEC, 511, p->ai_addr,
			    (int)p->ai_addrlen);
			if (l == NULL) {
				log_error("cannot listen on %s: %s",
				    srv->cfg->listen[i],
				    evutil_socket_error_to_string(
				    EVUTIL_SOCKET_ERROR()));
				freeaddrinfo(ai);
				return false;
			}
			evconnlistener_set_error_cb(l, accept_error_cb);
			srv->listeners[srv->nlisteners++] = l;
			log_info("listening on %s", srv->cfg->listen[i]);
		}
		freeaddrinfo(ai);
	}
	return true;
}

static void
close_listeners(void)
{
	size_t i;

	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_free(srv->listeners[i]);
	srv->nlisteners = 0;
}

void
server_conn_closed(void)
{
	if (srv->draining && srv->nconns == 0) {
		log_info("all connections closed");
		event_base_loopexit(srv->base, NULL);
	}
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c;

	log_warn("drain timeout: closing %zu connections", srv->nconns);
	TAILQ_FOREACH(c, &srv->conns, entry)
		conn_close(c, "drain timeout");
	event_base_loopexit(srv->base, NULL);
}

static void
server_drain(void)
{
	struct conn *c, *next;
	struct timeval tv = {(time_t)srv->cfg->drain_timeout, 0};

	if (srv->draining) {
		log_warn("second stop signal: exiting now");
		event_base_loopbreak(srv->base);
		return;
	}
	log_info("stopping: no new connections, finishing %zu",
	    srv->nconns);
	srv->draining = true;
	close_listeners();
	event_del(srv->sweep_timer);
	event_del(srv->retention_timer);
	for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		conn_drain(c);
	}
	srv->drain_timer = evtimer_new(srv->base, drain_timeout_cb, NULL);
	evtimer_add(srv->drain_timer, &tv);
	if (srv->nconns == 0)
		event_base_loopexit(srv->base, NULL);
}

static void
apply_log_config(const struct config *cfg)
{
	enum log_level level = LL_INFO;

	log_parse_level(cfg->log_level, &level);
	log_configure(level, strcmp(cfg->log_format, "json") == 0);
}

static void
server_reload(void)
{
	struct config *cfg;
	SSL_CTX *ctx;
	char err[512];

	log_info("SIGHUP: reloading %s", srv->cfg->path);
	if ((cfg = config_load(srv->cfg->path, err, sizeof err)) == NULL) {
		log_error("reload failed, keeping the running configuration: "
		    "%s", err);
		return;
	}
	if ((ctx = tls_server_ctx(cfg, err, sizeof err)) == NULL) {
		log_error("reload failed, keeping the running configuration "
		    "and certificate: %s", err);
		config_free(cfg);
		return;
	}
	if (!config_reloadable(srv->cfg, cfg, err, sizeof err))
		log_warn("changed settings that need a restart (kept as "
		    "they were): %s", err);
	config_keep_static(cfg, srv->cfg);
	/* Live connections keep a reference to the context they began
	 * with; new ones get the new certificate. */
	SSL_CTX_free(srv->ssl_ctx);
	srv->ssl_ctx = ctx;
	config_free(srv->cfg);
	srv->cfg = cfg;
	build_policy_json();
	apply_log_config(cfg);
	db_pool_set_timeouts(srv->db, (int)cfg->db_connect_timeout,
	    (int)cfg->db_queue_timeout);
	log_info("configuration reloaded");
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGHUP:
		server_reload();
		break;
	case SIGTERM:
	case SIGINT:
		server_drain();
		break;
	}
}

/* "ready" is said once the database answers, so that whoever waits for
 * it (an init system, the test harness) can use the daemon at once. */
static void
ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = {0, 20000};

	if (db_pool_up(srv->db) || now_ms() > ready_deadline) {
		if (!db_pool_up(srv->db))
			log_warn("database not reachable yet; answering "
			    "unavailable until it is");
		log_info("strapontind: ready");
		return;
	}
	evtimer_add(ready_timer, &tv);
}

static void
server_free(void)
{
	struct conn *c;
	size_t i;

	close_listeners();
	/* A forced stop (second signal, drain timeout) does not hash every
	 * queued password first. */
	workpool_abandon(srv->workers);
	/* Order matters: the worker pool's last callbacks may still query,
	 * the pool's last callbacks answer requests, and answered requests
	 * release their connections; one more loop pass runs the frees. */
	workpool_free(srv->workers);
	db_pool_free(srv->db);
	srv->workers = NULL;
	srv->db = NULL;
	event_base_loop(srv->base, EVLOOP_NONBLOCK);
	/* Whatever did not finish within the drain timeout. */
	while ((c = TAILQ_FIRST(&srv->conns)) != NULL) {
		TAILQ_REMOVE(&srv->conns, c, entry);
		bufferevent_free(c->bev);
		event_free(c->timer);
		event_free(c->resume_ev);
		evbuffer_free(c->events);
		free(c);
	}
	for (i = 0; i < nitems(srv->signals); i++)
		if (srv->signals[i] != NULL)
			event_free(srv->signals[i]);
	if (srv->drain_timer != NULL)
		event_free(srv->drain_timer);
	if (ready_timer != NULL)
		event_free(ready_timer);
	if (srv->sweep_timer != NULL)
		event_free(srv->sweep_timer);
	if (srv->retention_timer != NULL)
		event_free(srv->retention_timer);
	free(srv->policy_json);
	SSL_CTX_free(srv->ssl_ctx);
	config_free(srv->cfg);
	event_base_free(srv->base);
	free(statements);
	free(srv);
	srv = NULL;
}

int
server_run(struct config *cfg)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	struct timeval zero = {0, 0};
	char err[512];
	int schema = 0, pending;
	size_t i;

	srv = xcalloc(1, sizeof *srv);
	srv->cfg = cfg;
	srv->started_ms = now_ms();
	TAILQ_INIT(&srv->conns);
	apply_log_config(cfg);
	if ((srv->base = event_base_new()) == NULL)
		fatal("cannot create the event loop");
	if ((srv->ssl_ctx = tls_server_ctx(cfg, err, sizeof err)) == NULL)
		fatal("%s", err);

	pending = migrate_pending(cfg->db_conninfo, &schema);
	if (pending > 0)
		fatal("the database lacks %d of this strapontind's migrations: "
		    "run `strapontind -c %s --migrate`", pending, cfg->path);
	if (pending == 0 && schema > migrate_latest())
		fatal("the database schema (%d) is newer than this "
		    "strapontind (%d)", schema, migrate_latest());
	if (pending < 0)
		log_warn("cannot check the schema version now; serving and "
		    "retrying the database");

	build_statements();
	build_policy_json();
	srv->db = db_pool_new(srv->base, cfg->db_conninfo,
	    (int)cfg->db_pool_size, statements, nstatements);
	db_pool_set_timeouts(srv->db, (int)cfg->db_connect_timeout,
	    (int)cfg->db_queue_timeout);
	events_start(srv->db);
	if ((srv->workers = workpool_new(srv->base, (int)cfg->workers)) == NULL)
		fatal("cannot start the worker threads");

	if (!listen_all())
		fatal("cannot listen; exiting");
	for (i = 0; i < nitems(sigs); i++) {
		srv->signals[i] = evsignal_new(srv->base, sigs[i], signal_cb,
		    NULL);
		evsignal_add(srv->signals[i], NULL);
	}
	ready_deadline = now_ms() + (uint64_t)cfg->db_connect_timeout * 1000;
	ready_timer = evtimer_new(srv->base, ready_cb, NULL);
	evtimer_add(ready_timer, &zero);
	{
		struct timeval second = {1, 0};

		srv->sweep_timer = event_new(srv->base, -1, EV_PERSIST,
		    sweep_cb, NULL);
		evtimer_add(srv->sweep_timer, &second);
		/* first check soon after start, then every interval */
		srv->retention_timer = evtimer_new(srv->base, retention_cb,
		    NULL);
		evtimer_add(srv->retention_timer, &second);
	}

	event_base_dispatch(srv->base);
	log_info("stopped after %llu requests",
	    (unsigned long long)srv->requests);
	server_free();
	return 0;
}
