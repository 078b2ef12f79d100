#include "db.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define DB_MAX_RETRIES 3
#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 5000
/* After a read-only error, do not come back sooner than this: a server
 * that stays read-only must not turn the pool into a reconnection loop. */
#define DB_READ_ONLY_BACKOFF_MS 1000
/* How often a replica pool measures each connection's replay lag. */
#define DB_LAG_INTERVAL_MS 1000

/* A replica's replay lag in milliseconds: 0 when it has replayed all the
 * WAL it received, else the age of the last transaction it replayed (an
 * over-estimate after a quiet spell on the primary, which only sends
 * reads to the primary a little sooner); -1 when the server is not a
 * standby (a promoted replica is not behind anyone). A day, i.e. too far,
 * when it does not stream from a primary (it would look caught up while
 * it falls behind) or has replayed nothing since it started. */
static const char lag_sql[] =
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN -1 "
    "WHEN NOT EXISTS (SELECT FROM pg_stat_wal_receiver) THEN 86400000 "
    "WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM "
    "pg_last_wal_replay_lsn() THEN 0 "
    "ELSE coalesce(floor(extract(epoch FROM clock_timestamp() - "
    "pg_last_xact_replay_timestamp()) * 1000), 86400000) END::bigint";

struct db_query {
	TAILQ_ENTRY(db_query) entry;
	size_t stmt;
	int nparams;
	char **values;
	db_cb *cb;
	void *arg;
	uint64_t queued_ms;
	int retries;
	char *sql;              /* a query of the listener: text, unprepared */
};
TAILQ_HEAD(db_queue, db_query);

enum dc_state {
	DC_DOWN,        /* waiting for the backoff timer */
	DC_CONNECTING,  /* PQconnectPoll in progress */
	DC_PREPARING,   /* preparing statements one by one */
	DC_IDLE,
	DC_BUSY,
	DC_LISTENING,   /* the listener, after its LISTEN succeeded */
};

struct db_conn {
	struct db_pool *pool;
	int index;
	PGconn *pg;
	enum dc_state state;
	struct event *ev;       /* socket readiness; re-assigned as fd changes */
	struct event *timer;    /* connect timeout, or backoff */
	int backoff_ms;
	size_t prepared;        /* statements prepared so far */
	struct db_query *cur;
	PGresult *result;       /* the result kept for the callback */
	int timeout_ms;         /* statement_timeout in force; -1: the session's default */
	int setting_ms;         /* the one a SET in flight asks for */
	bool setting;           /* a SET statement_timeout is in flight */
	uint64_t connect_started_ms;
	bool listener;          /* the pool's LISTEN connection */
	bool listening;         /* the listener's LISTEN succeeded */
	bool read_only_seen;    /* lost to a read-only error, no query since */
	bool probing;           /* the lag query is in flight (replica) */
	bool lag_due;           /* measure the lag before the next query */
	bool lagging;           /* replica: lag unknown or past the bound */
	long long lag_ms;       /* replica: last lag measured */
};

struct db_pool {
	struct event_base *base;
	char *conninfo;
	struct db_conn *conns;
	int size;
	const char *const *stmts;
	size_t nstmts;
	struct db_queue queue;
	size_t queued;
	size_t running;
	struct db_queue failed; /* answered unavailable from the loop */
	size_t failing;
	struct event *fail_ev;
	int *stmt_timeout_ms;   /* per statement; -1: default_timeout_ms */
	int default_timeout_ms; /* -1: the server's own setting */
	struct event *sweep;    /* fails queries that waited too long */
	int connect_timeout_s;
	int queue_timeout_s;
	bool was_up;
	struct db_conn *listener;
	char **channels;        /* NULL-terminated */
	struct db_queue listen_queue;   /* db_listen_exec(), one at a time */
	bool closing;           /* in db_pool_free(): callbacks may still call */
	db_notify_cb *notify_cb;
	db_listen_state_cb *listen_state_cb;
	void *listen_arg;
	const char *label;      /* the metrics' pool label (static) */
	const char *name;       /* in log lines: "db" or "replica" */
	bool replica;           /* a read pool: lag measured, no writes */
	int max_lag_ms;
	struct event *lag_timer;
};

static void dc_connect(struct db_conn *dc);
static void dc_io_cb(evutil_socket_t fd, short what, void *arg);
static void dc_dispatch(struct db_pool *pool);
static void dc_timer_cb(evutil_socket_t fd, short what, void *arg);
static void dc_init(struct db_pool *pool, struct db_conn *dc, int index);
static void dc_free(struct db_conn *dc);
static void listen_fail_queue(struct db_pool *pool);
static void dc_probe(struct db_conn *dc);

/* libpq's messages end in newlines and may hold several lines: one log
 * line each. */
static const char *
pg_message(PGconn *pg)
{
	static char buf[512];
	size_t i;

	snprintf(buf, sizeof buf, "%s", pg ? PQerrorMessage(pg) : "no connection");
	for (i = 0; buf[i]; i++)
		if (buf[i] == '\n' || buf[i] == '\t')
			buf[i] = ' ';
	while (i > 0 && buf[i - 1] == ' ')
		buf[--i] = '\0';
	return buf;
}

/* Server notices (and the FATAL a closing server sends an idle
 * connection) go through our logger, not to stderr raw. */
static void
pg_notice(void *arg, const char *message)
{
	char buf[512];
	size_t i;

	snprintf(buf, sizeof buf, "%s", message);
	for (i = 0; buf[i]; i++)
		if (buf[i] == '\n' || buf[i] == '\t')
			buf[i] = ' ';
	log_info("db: %s", buf);
}

bool
db_sqlstate_is_fatal(const char *s)
{
	if (s == NULL)
		return true;
	return strncmp(s, "08", 2) == 0 || strncmp(s, "57P", 3) == 0 ||
	    strncmp(s, "58", 2) == 0 || strcmp(s, "53300") == 0;
}

static void
query_free(struct db_query *q)
{
	int i;

	for (i = 0; i < q->nparams; i++)
		free(q->values[i]);
	free(q->values);
	free(q->sql);
	free(q);
}

static void
query_finish(struct db_query *q, PGresult *res, enum db_status st)
{
	q->cb(res, st, q->arg);
	query_free(q);
}

bool
db_pool_up(const struct db_pool *pool)
{
	int i;

	for (i = 0; i < pool->size; i++)
		if ((pool->conns[i].state == DC_IDLE ||
		    pool->conns[i].state == DC_BUSY) && !pool->conns[i].lagging)
			return true;
	return false;
}

size_t
db_pool_pending(const struct db_pool *pool)
{
	return pool->queued + pool->running + pool->failing;
}

static void
pool_note_state(struct db_pool *pool)
{
	bool up = db_pool_up(pool);

	if (up == pool->was_up)
		return;
	pool->was_up = up;
	if (pool->replica && up)
		log_info("replica is up and within replica_max_lag; lists "
		    "and reports read from it");
	else if (pool->replica)
		log_warn("replica is down or behind by more than "
		    "replica_max_lag; lists and reports read from the primary");
	else if (up)
		log_info("database is up");
	else
		log_warn("database is down; requests answer "
		    "unavailable until it returns");
}

/* Answers q `unavailable` from the loop, never from the caller's stack:
 * a failure found inside db_exec() (a send that fails) must not call back
 * into a caller that is still in the middle of queueing its query. */
static void
query_fail_later(struct db_pool *pool, struct db_query *q)
{
	TAILQ_INSERT_TAIL(&pool->failed, q, entry);
	pool->failing++;
	event_active(pool->fail_ev, EV_TIMEOUT, 0);
}

static void
pool_failed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *pool = arg;
	struct db_query *q;

	/* A callback may queue a query that fails at once: it is appended
	 * and answered in this same walk. */
	while ((q = TAILQ_FIRST(&pool->failed)) != NULL) {
		TAILQ_REMOVE(&pool->failed, q, entry);
		pool->failing--;
		query_finish(q, NULL, DB_UNAVAILABLE);
	}
}

/* With no connection up, nothing queued can be served soon: fail fast so
 * clients get `unavailable` and may retry, instead of hanging. */
static void
pool_fail_queue(struct db_pool *pool)
{
	struct db_query *q;

	while ((q = TAILQ_FIRST(&pool->queue)) != NULL) {
		TAILQ_REMOVE(&pool->queue, q, entry);
		pool->queued--;
		query_fail_later(pool, q);
	}
}

static void
dc_watch(struct db_conn *dc, short what, int timeout_s)
{
	struct timeval tv = {timeout_s, 0};
	evutil_socket_t fd = PQsocket(dc->pg);

	/* Most queries leave the watch as it was (read, persistent): skip the
	 * two epoll_ctl calls a re-arm would cost on every query. */
	if (timeout_s == 0 && (what & EV_PERSIST) &&
	    event_get_fd(dc->ev) == fd && event_get_events(dc->ev) == what &&
	    event_pending(dc->ev, EV_READ | EV_WRITE, NULL))
		return;
	event_del(dc->ev);
	event_assign(dc->ev, dc->pool->base, fd, what, dc_io_cb, dc);
	event_add(dc->ev, timeout_s > 0 ? &tv : NULL);
}

static void
dc_lost(struct db_conn *dc, const char *why)
{
	struct db_pool *pool = dc->pool;
	struct timeval tv;
	struct db_query *q = dc->cur;

	log_warn("%s[%d]: %s; reconnecting in %d ms", pool->name, dc->index,
	    why, dc->backoff_ms);
	event_del(dc->ev);
	if (dc->result != NULL) {
		PQclear(dc->result);
		dc->result = NULL;
	}
	if (dc->pg != NULL) {
		PQfinish(dc->pg);
		dc->pg = NULL;
	}
	dc->state = DC_DOWN;
	if (dc->listener && dc->listening) {
		dc->listening = false;
		pool->listen_state_cb(false, pool->listen_arg);
	}
	dc->cur = NULL;
	dc->setting = false;
	dc->probing = false;
	dc->lagging = pool->replica;
	tv.tv_sec = dc->backoff_ms / 1000;
	tv.tv_usec = (dc->backoff_ms % 1000) * 1000;
	evtimer_add(dc->timer, &tv);
	dc->backoff_ms = dc->backoff_ms * 2 > DB_BACKOFF_MAX_MS ?
	    DB_BACKOFF_MAX_MS : dc->backoff_ms * 2;
	pool_note_state(pool);
	/* The query may or may not have committed: the client is told the
	 * database was unavailable and retries (idempotency keys make a retry
	 * of a booking safe). */
	if (q != NULL) {
		if (!dc->listener)
			pool->running--;
		query_fail_later(pool, q);
	}
	if (dc->listener)
		listen_fail_queue(pool);
	if (!db_pool_up(pool))
		pool_fail_queue(pool);
}

static void
dc_send_prepare(struct db_conn *dc)
{
	char name[32];

	snprintf(name, sizeof name, "s%zu", dc->prepared);
	if (!PQsendPrepare(dc->pg, name, dc->pool->stmts[dc->prepared], 0,
	    NULL)) {
		dc_lost(dc, pg_message(dc->pg));
		return;
	}
	dc_watch(dc, EV_READ | EV_WRITE | EV_PERSIST, 0);
}

/* One LISTEN per channel, sent as one simple query. */
static void
dc_send_listen(struct db_conn *dc)
{
	char *sql = xstrdup(""), *ident, *more, **ch;

	for (ch = dc->pool->channels; *ch != NULL; ch++) {
		if ((ident = PQescapeIdentifier(dc->pg, *ch,
		    strlen(*ch))) == NULL) {
			free(sql);
			dc_lost(dc, pg_message(dc->pg));
			return;
		}
		more = xasprintf("%sLISTEN %s;", sql, ident);
		PQfreemem(ident);
		free(sql);
		sql = more;
	}
	dc->state = DC_BUSY;
	if (!PQsendQuery(dc->pg, sql)) {
		free(sql);
		dc_lost(dc, pg_message(dc->pg));
		return;
	}
	free(sql);
	dc_watch(dc, EV_READ | EV_WRITE | EV_PERSIST, 0);
}

static void
dc_ready(struct db_conn *dc)
{
	/* After a read-only error the backoff is reset by a query that
	 * succeeds, not by a connect: that server may still be read-only. */
	if (!dc->read_only_seen)
		dc->backoff_ms = DB_BACKOFF_MIN_MS;
	if (dc->listener) {
		dc_send_listen(dc);
		return;
	}
	if (dc->pool->replica) {
		/* Not used before its lag is known. */
		dc->lagging = true;
		dc_probe(dc);
		return;
	}
	dc->state = DC_IDLE;
	/* Watch an idle connection too, to see the server go away. */
	dc_watch(dc, EV_READ | EV_PERSIST, 0);
	pool_note_state(dc->pool);
	dc_dispatch(dc->pool);
}

static void
dc_connected(struct db_conn *dc)
{
	evtimer_del(dc->timer);
	if (PQsetnonblocking(dc->pg, 1) != 0) {
		dc_lost(dc, "cannot make the connection non-blocking");
		return;
	}
	log_debug("%s[%d]: connected in %llu ms", dc->pool->name, dc->index,
	    (unsigned long long)(now_ms() - dc->connect_started_ms));
	dc->state = DC_PREPARING;
	dc->prepared = 0;
	/* A new session: whatever an earlier one SET is gone. */
	dc->timeout_ms = -1;
	if (dc->pool->nstmts == 0 || dc->listener)
		dc_ready(dc);
	else
		dc_send_prepare(dc);
}

static void
dc_poll_connect(struct db_conn *dc)
{
	switch (PQconnectPoll(dc->pg)) {
	case PGRES_POLLING_READING:
		dc_watch(dc, EV_READ, 0);
		break;
	case PGRES_POLLING_WRITING:
		dc_watch(dc, EV_WRITE, 0);
		break;
	case PGRES_POLLING_OK:
		dc_connected(dc);
		break;
	default: {
		char msg[256];

		snprintf(msg, sizeof msg, "connection failed: %s",
		    pg_message(dc->pg));
		dc_lost(dc, msg);
		break;
	}
	}
}

static void
dc_connect(struct db_conn *dc)
{
	struct timeval tv = {dc->pool->connect_timeout_s, 0};

	dc->connect_started_ms = now_ms();
	/* Hosts must be addresses or socket paths: a name lookup inside
	 * PQconnectStart would block the loop (documented in
	 * strapontind.conf(5)). */
	dc->pg = PQconnectStart(dc->pool->conninfo);
	if (dc->pg == NULL || PQstatus(dc->pg) == CONNECTION_BAD ||
	    PQsocket(dc->pg) < 0) {
		dc_lost(dc, dc->pg ? pg_message(dc->pg) : "out of memory");
		return;
	}
	PQsetNoticeProcessor(dc->pg, pg_notice, dc);
	dc->state = DC_CONNECTING;
	evtimer_add(dc->timer, &tv);
	/* libpq wants to be polled once the socket is writable. */
	dc_watch(dc, EV_WRITE, 0);
}

static void
dc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *dc = arg;

	if (dc->state == DC_DOWN)
		dc_connect(dc);
	else if (dc->state == DC_CONNECTING)
		dc_lost(dc, "connect timeout");
}

static bool
dc_retryable(PGresult *res)
{
	const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return s != NULL && (strcmp(s, "40001") == 0 ||
	    strcmp(s, "40P01") == 0);
}

/* 25006 read_only_sql_transaction: the server is a standby (it was
 * demoted, or the conninfo let libpq pick it) or was made read-only. */
static bool
dc_read_only(PGresult *res)
{
	const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return s != NULL && strcmp(s, "25006") == 0;
}

/* q failed on a read-only server, so nothing of it was written: it goes
 * back to the head of the queue for another connection (or fails
 * unavailable when it has been tried too often, or no connection is
 * left), and this connection is re-made, which with
 * target_session_attrs=read-write finds the new primary. The backoff is
 * at least DB_READ_ONLY_BACKOFF_MS and grows until a query succeeds, so
 * a server that stays read-only costs a reconnection now and then, not a
 * loop. */
static void
dc_requeue_read_only(struct db_conn *dc, struct db_query *q, PGresult *res)
{
	struct db_pool *pool = dc->pool;

	PQclear(res);
	if (++q->retries <= DB_MAX_RETRIES) {
		TAILQ_INSERT_HEAD(&pool->queue, q, entry);
		pool->queued++;
	} else
		query_fail_later(pool, q);
	if (dc->backoff_ms < DB_READ_ONLY_BACKOFF_MS)
		dc->backoff_ms = DB_READ_ONLY_BACKOFF_MS;
	dc->read_only_seen = true;
	dc_lost(dc, "the server is read-only (SQLSTATE 25006), a standby? "
	    "(database.conninfo wants target_session_attrs=read-write)");
	dc_dispatch(pool);
}

/* The statement_timeout q must run under: its statement's, else the
 * pool's default; -1 is the session's own (role, database, server). */
static int
query_timeout_ms(const struct db_pool *pool, const struct db_query *q)
{
	int ms = q->stmt < pool->nstmts ? pool->stmt_timeout_ms[q->stmt] : -1;

	return ms >= 0 ? ms : pool->default_timeout_ms;
}

/* After a PQsend*: PQflush's 1 means more to send, so wait for
 * writability too. */
static void
dc_flush(struct db_conn *dc)
{
	switch (PQflush(dc->pg)) {
	case 0:
		dc_watch(dc, EV_READ | EV_PERSIST, 0);
		break;
	case 1:
		dc_watch(dc, EV_READ | EV_WRITE | EV_PERSIST, 0);
		break;
	default:
		dc_lost(dc, pg_message(dc->pg));
		break;
	}
}

/* The replay lag query, on a replica connection that runs nothing else;
 * answered in lag_done(). */
static void
dc_probe(struct db_conn *dc)
{
	dc->lag_due = false;
	dc->probing = true;
	dc->state = DC_BUSY;
	if (!PQsendQuery(dc->pg, lag_sql)) {
		dc_lost(dc, pg_message(dc->pg));
		return;
	}
	dc_flush(dc);
}

static void
lag_done(struct db_conn *dc, PGresult *res)
{
	struct db_pool *pool = dc->pool;
	bool ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1 && PQnfields(res) == 1;
	long long lag = ok ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	bool was = dc->lagging;

	PQclear(res);
	dc->probing = false;
	if (!ok) {
		dc_lost(dc, "cannot measure the replay lag");
		return;
	}
	dc->lag_ms = lag;
	/* -1: no longer a standby (promoted), so behind nobody. */
	dc->lagging = lag > pool->max_lag_ms;
	if (dc->lagging && !was)
		log_warn("replica[%d]: replay lag %lld ms passes "
		    "replica_max_lag (%d ms); not used until it catches up",
		    dc->index, lag, pool->max_lag_ms);
	else if (!dc->lagging && was)
		log_info("replica[%d]: replay lag %lld ms, within "
		    "replica_max_lag (%d ms); used for reads", dc->index,
		    lag < 0 ? 0 : lag, pool->max_lag_ms);
	dc->state = DC_IDLE;
	dc_watch(dc, EV_READ | EV_PERSIST, 0);
	pool_note_state(pool);
	/* What waits now would wait for a lagging replica: the caller
	 * reads from the primary instead. */
	if (!db_pool_up(pool))
		pool_fail_queue(pool);
	dc_dispatch(pool);
}

/* Every DB_LAG_INTERVAL_MS: an idle replica connection is measured now,
 * a busy one before its next query. */
static void
lag_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *pool = arg;
	int i;

	for (i = 0; i < pool->size; i++) {
		struct db_conn *dc = &pool->conns[i];

		if (dc->state == DC_IDLE)
			dc_probe(dc);
		else if (dc->state == DC_BUSY)
			dc->lag_due = true;
	}
}

static void
dc_send_query(struct db_conn *dc)
{
	struct db_query *q = dc->cur;
	char name[32];

	snprintf(name, sizeof name, "s%zu", q->stmt);
	if (!PQsendQueryPrepared(dc->pg, name, q->nparams,
	    (const char *const *)q->values, NULL, NULL, 0)) {
		dc_lost(dc, pg_message(dc->pg));
		return;
	}
	dc_flush(dc);
}

/* A connection keeps its statement_timeout between queries: a SET goes
 * first only when q's class wants another one, so a run of queries of
 * one class costs no extra round trip. */
static void
dc_start_query(struct db_conn *dc, struct db_query *q)
{
	int ms = query_timeout_ms(dc->pool, q);
	char sql[64];

	dc->cur = q;
	dc->state = DC_BUSY;
	if (ms == dc->timeout_ms) {
		dc_send_query(dc);
		return;
	}
	if (ms < 0)
		snprintf(sql, sizeof sql, "RESET statement_timeout");
	else
		snprintf(sql, sizeof sql, "SET statement_timeout = %d", ms);
	dc->setting = true;
	dc->setting_ms = ms;
	if (!PQsendQuery(dc->pg, sql)) {
		dc_lost(dc, pg_message(dc->pg));
		return;
	}
	dc_flush(dc);
}

/* The listener's queries (db_listen_exec): one at a time, between
 * notifications, which keep coming while one runs. */
static void
listen_dispatch(struct db_pool *pool)
{
	struct db_conn *dc = pool->listener;
	struct db_query *q;

	if (dc == NULL || dc->state != DC_LISTENING ||
	    (q = TAILQ_FIRST(&pool->listen_queue)) == NULL)
		return;
	TAILQ_REMOVE(&pool->listen_queue, q, entry);
	dc->cur = q;
	dc->state = DC_BUSY;
	if (!PQsendQueryParams(dc->pg, q->sql, q->nparams, NULL,
	    (const char *const *)q->values, NULL, NULL, 0)) {
		dc_lost(dc, pg_message(dc->pg));
		return;
	}
	dc_flush(dc);
}

static void
listen_fail_queue(struct db_pool *pool)
{
	struct db_query *q;

	while ((q = TAILQ_FIRST(&pool->listen_queue)) != NULL) {
		TAILQ_REMOVE(&pool->listen_queue, q, entry);
		query_fail_later(pool, q);
	}
}

static void
listen_query_done(struct db_conn *dc, PGresult *res)
{
	struct db_query *q = dc->cur;
	ExecStatusType rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	enum db_status st;

	dc->cur = NULL;
	dc->state = DC_LISTENING;
	dc_watch(dc, EV_READ | EV_PERSIST, 0);
	if (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK)
		st = DB_OK;
	else if (res != NULL &&
	    !db_sqlstate_is_fatal(PQresultErrorField(res, PG_DIAG_SQLSTATE)))
		st = DB_SQL_ERROR;
	else
		st = DB_UNAVAILABLE;
	query_finish(q, st == DB_UNAVAILABLE ? NULL : res, st);
	PQclear(res);
	if (st == DB_UNAVAILABLE && PQstatus(dc->pg) != CONNECTION_OK) {
		dc_lost(dc, "connection lost");
		return;
	}
	listen_dispatch(dc->pool);
}

/* The current command produced its last result. */
static void
dc_command_done(struct db_conn *dc)
{
	struct db_pool *pool = dc->pool;
	PGresult *res = dc->result;
	struct db_query *q;
	enum db_status st;
	ExecStatusType rs;

	dc->result = NULL;
	if (dc->state == DC_PREPARING) {
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			log_error("%s[%d]: cannot prepare statement %zu: %s",
			    pool->name, dc->index, dc->prepared,
			    res ? PQresultErrorMessage(res) : "no result");
			PQclear(res);
			dc_lost(dc, "statement preparation failed");
			return;
		}
		PQclear(res);
		if (++dc->prepared == pool->nstmts)
			dc_ready(dc);
		else
			dc_send_prepare(dc);
		return;
	}

	if (dc->listener && dc->cur != NULL) {
		listen_query_done(dc, res);
		return;
	}
	if (dc->listener) {
		bool ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;

		PQclear(res);
		if (!ok) {
			/* On a standby (a conninfo without
			 * target_session_attrs=read-write): not too often. */
			if (dc->backoff_ms < DB_READ_ONLY_BACKOFF_MS)
				dc->backoff_ms = DB_READ_ONLY_BACKOFF_MS;
			dc->read_only_seen = true;
			dc_lost(dc, "LISTEN failed");
			return;
		}
		dc->read_only_seen = false;
		dc->backoff_ms = DB_BACKOFF_MIN_MS;
		dc->state = DC_LISTENING;
		dc->listening = true;
		dc_watch(dc, EV_READ | EV_PERSIST, 0);
		log_debug("db: listening on %s", pool->channels[0]);
		pool->listen_state_cb(true, pool->listen_arg);
		listen_dispatch(pool);
		return;
	}
	if (dc->probing) {
		lag_done(dc, res);
		return;
	}
	if (dc->setting) {
		bool ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;

		if (!ok)
			log_error("%s[%d]: cannot set statement_timeout: %s",
			    pool->name, dc->index,
			    res ? PQresultErrorMessage(res) : "no result");
		PQclear(res);
		dc->setting = false;
		if (!ok) {
			dc_lost(dc, "SET statement_timeout failed");
			return;
		}
		dc->timeout_ms = dc->setting_ms;
		dc_send_query(dc);
		return;
	}
	q = dc->cur;
	dc->cur = NULL;
	dc->state = DC_IDLE;
	dc_watch(dc, EV_READ | EV_PERSIST, 0);
	pool->running--;
	rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK) {
		st = DB_OK;
		if (dc->read_only_seen) {
			dc->read_only_seen = false;
			dc->backoff_ms = DB_BACKOFF_MIN_MS;
		}
	} else if (res != NULL && !pool->replica && dc_read_only(res)) {
		dc_requeue_read_only(dc, q, res);
		return;
	} else if (res != NULL && dc_retryable(res) && q->retries < DB_MAX_RETRIES) {
		q->retries++;
		log_debug("%s[%d]: retrying statement %zu after %s",
		    pool->name, dc->index, q->stmt,
		    PQresultErrorField(res, PG_DIAG_SQLSTATE));
		PQclear(res);
		TAILQ_INSERT_HEAD(&pool->queue, q, entry);
		pool->queued++;
		dc_dispatch(pool);
		return;
	} else if (res != NULL &&
	    !db_sqlstate_is_fatal(PQresultErrorField(res, PG_DIAG_SQLSTATE)))
		st = DB_SQL_ERROR;
	else
		st = DB_UNAVAILABLE;
	query_finish(q, st == DB_UNAVAILABLE ? NULL : res, st);
	PQclear(res);
	if (st == DB_UNAVAILABLE && PQstatus(dc->pg) != CONNECTION_OK) {
		dc_lost(dc, "connection lost");
		return;
	}
	dc_dispatch(pool);
}

static void
dc_read(struct db_conn *dc)
{
	PGresult *res;
	PGnotify *n;

	if (!PQconsumeInput(dc->pg)) {
		char msg[256];

		snprintf(msg, sizeof msg, "%s", pg_message(dc->pg));
		dc_lost(dc, msg[0] ? msg : "connection lost");
		return;
	}
	while ((n = PQnotifies(dc->pg)) != NULL) {
		/* Our own NOTIFYs (db_listen_exec) are for the others. */
		if (dc->listener && dc->listening &&
		    n->be_pid != PQbackendPID(dc->pg))
			dc->pool->notify_cb(n->relname, n->extra,
			    dc->pool->listen_arg);
		PQfreemem(n);
	}
	if (dc->state != DC_BUSY && dc->state != DC_PREPARING) {
		if (PQstatus(dc->pg) != CONNECTION_OK)
			dc_lost(dc, "connection closed by the server");
		return;
	}
	while (!PQisBusy(dc->pg)) {
		res = PQgetResult(dc->pg);
		if (res == NULL) {
			dc_command_done(dc);
			return;
		}
		/* Keep the last result: for a single statement, the only one. */
		if (dc->result != NULL)
			PQclear(dc->result);
		dc->result = res;
	}
}

static void
dc_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *dc = arg;

	switch (dc->state) {
	case DC_CONNECTING:
		dc_poll_connect(dc);
		return;
	case DC_DOWN:
		return;
	default:
		break;
	}
	if (what & EV_WRITE) {
		int r = PQflush(dc->pg);

		if (r < 0) {
			dc_lost(dc, pg_message(dc->pg));
			return;
		}
		if (r == 0)
			dc_watch(dc, EV_READ | EV_PERSIST, 0);
	}
	if (what & EV_READ)
		dc_read(dc);
}

static void
dc_dispatch(struct db_pool *pool)
{
	struct db_query *q;
	int i;

	for (i = 0; i < pool->size && !TAILQ_EMPTY(&pool->queue); i++) {
		struct db_conn *dc = &pool->conns[i];

		if (dc->state != DC_IDLE)
			continue;
		if (dc->lag_due) {
			dc_probe(dc);
			continue;
		}
		if (dc->lagging)
			continue;
		q = TAILQ_FIRST(&pool->queue);
		TAILQ_REMOVE(&pool->queue, q, entry);
		pool->queued--;
		pool->running++;
		metrics_observe(M_DB_WAIT_SECONDS, (double)(now_ms() -
		    q->queued_ms) / 1000.0, pool->label);
		dc_start_query(dc, q);
	}
}

static void
pool_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *pool = arg;
	struct db_query *q, *next;
	uint64_t limit = (uint64_t)pool->queue_timeout_s * 1000, now = now_ms();

	for (q = TAILQ_FIRST(&pool->queue); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (now - q->queued_ms < limit)
			continue;
		TAILQ_REMOVE(&pool->queue, q, entry);
		pool->queued--;
		metrics_add(M_DB_QUEUE_TIMEOUTS, 1, pool->label);
		query_finish(q, NULL, DB_UNAVAILABLE);
	}
}

void
db_exec(struct db_pool *pool, size_t stmt, int nparams,
    const char *const *values, db_cb *cb, void *arg)
{
	struct db_query *q = xcalloc(1, sizeof *q);
	int i;

	q->stmt = stmt;
	q->nparams = nparams;
	q->values = xcalloc((size_t)(nparams ? nparams : 1), sizeof(char *));
	for (i = 0; i < nparams; i++)
		q->values[i] = values[i] ? xstrdup(values[i]) : NULL;
	q->cb = cb;
	q->arg = arg;
	q->queued_ms = now_ms();
	/* Queries are always answered from the loop, never from inside
	 * db_exec(): a caller's state is then never changed under it. */
	if (!db_pool_up(pool)) {
		query_fail_later(pool, q);
		return;
	}
	TAILQ_INSERT_TAIL(&pool->queue, q, entry);
	pool->queued++;
	dc_dispatch(pool);
}

/* The pool's connections by state, at scrape time (docs/operations.md,
 * "Metrics"); the listener is not one of them. */
static void
pool_collect(void *arg)
{
	const struct db_pool *pool = arg;
	size_t idle = 0, busy = 0, connecting = 0, down = 0;
	int i;

	for (i = 0; i < pool->size; i++) {
		switch (pool->conns[i].state) {
		case DC_IDLE: idle++; break;
		case DC_BUSY: case DC_LISTENING: busy++; break;
		case DC_CONNECTING: case DC_PREPARING: connecting++; break;
		case DC_DOWN: down++; break;
		}
	}
	metrics_set(M_DB_CONNECTIONS, (double)idle, pool->label, "idle");
	metrics_set(M_DB_CONNECTIONS, (double)busy, pool->label, "busy");
	metrics_set(M_DB_CONNECTIONS, (double)connecting, pool->label,
	    "connecting");
	metrics_set(M_DB_CONNECTIONS, (double)down, pool->label, "down");
	metrics_set(M_DB_WAITING, (double)pool->queued, pool->label);
	metrics_set(M_DB_UP, db_pool_up(pool) ? 1 : 0, pool->label);
	if (pool->replica) {
		long long lag = 0;

		for (i = 0; i < pool->size; i++)
			if (pool->conns[i].state != DC_DOWN &&
			    pool->conns[i].lag_ms > lag)
				lag = pool->conns[i].lag_ms;
		metrics_set(M_DB_REPLICA_LAG, (double)lag / 1000.0,
		    pool->label);
	}
}

struct db_pool *
db_pool_new(struct event_base *base, const char *conninfo, int size,
    const char *const *statements, size_t nstatements)
{
	struct db_pool *pool = xcalloc(1, sizeof *pool);
	struct timeval tv = {0, 250000};
	int i;

	pool->base = base;
	pool->name = "db";
	pool->conninfo = xstrdup(conninfo);
	pool->size = size;
	pool->stmts = statements;
	pool->nstmts = nstatements;
	pool->connect_timeout_s = 5;
	pool->queue_timeout_s = 5;
	TAILQ_INIT(&pool->queue);
	TAILQ_INIT(&pool->failed);
	TAILQ_INIT(&pool->listen_queue);
	pool->fail_ev = event_new(base, -1, 0, pool_failed_cb, pool);
	pool->default_timeout_ms = -1;
	pool->stmt_timeout_ms = xcalloc(nstatements ? nstatements : 1,
	    sizeof *pool->stmt_timeout_ms);
	for (i = 0; i < (int)nstatements; i++)
		pool->stmt_timeout_ms[i] = -1;
	pool->conns = xcalloc((size_t)size, sizeof *pool->conns);
	for (i = 0; i < size; i++) {
		dc_init(pool, &pool->conns[i], i);
		dc_connect(&pool->conns[i]);
	}
	pool->sweep = event_new(base, -1, EV_PERSIST, pool_sweep_cb, pool);
	event_add(pool->sweep, &tv);
	pool->label = "primary";
	metrics_collector_add(pool_collect, pool);
	return pool;
}

static void
dc_init(struct db_pool *pool, struct db_conn *dc, int index)
{
	dc->pool = pool;
	dc->index = index;
	dc->backoff_ms = DB_BACKOFF_MIN_MS;
	dc->timeout_ms = -1;
	dc->ev = event_new(pool->base, -1, 0, dc_io_cb, dc);
	dc->timer = evtimer_new(pool->base, dc_timer_cb, dc);
}

static void
dc_free(struct db_conn *dc)
{
	if (dc->cur != NULL)
		query_finish(dc->cur, NULL, DB_UNAVAILABLE);
	if (dc->result != NULL)
		PQclear(dc->result);
	if (dc->pg != NULL)
		PQfinish(dc->pg);
	event_free(dc->ev);
	event_free(dc->timer);
}

void
db_pool_listen(struct db_pool *pool, const char *const *channels,
    db_notify_cb *cb, db_listen_state_cb *state_cb, void *arg)
{
	size_t i, n = 0;

	while (channels[n] != NULL)
		n++;
	pool->channels = xcalloc(n + 1, sizeof *pool->channels);
	for (i = 0; i < n; i++)
		pool->channels[i] = xstrdup(channels[i]);
	pool->notify_cb = cb;
	pool->listen_state_cb = state_cb;
	pool->listen_arg = arg;
	pool->listener = xcalloc(1, sizeof *pool->listener);
	dc_init(pool, pool->listener, -1);
	pool->listener->listener = true;
	dc_connect(pool->listener);
}

void
db_listen_exec(struct db_pool *pool, const char *sql, int nparams,
    const char *const *values, db_cb *cb, void *arg)
{
	struct db_query *q = xcalloc(1, sizeof *q);
	int i;

	q->sql = xstrdup(sql);
	q->nparams = nparams;
	q->values = xcalloc((size_t)(nparams ? nparams : 1), sizeof(char *));
	for (i = 0; i < nparams; i++)
		q->values[i] = values[i] ? xstrdup(values[i]) : NULL;
	q->cb = cb;
	q->arg = arg;
	q->queued_ms = now_ms();
	if (!db_listen_up(pool)) {
		query_fail_later(pool, q);
		return;
	}
	TAILQ_INSERT_TAIL(&pool->listen_queue, q, entry);
	listen_dispatch(pool);
}

bool
db_listen_up(const struct db_pool *pool)
{
	return !pool->closing && pool->listener != NULL &&
	    pool->listener->listening;
}

void
db_pool_set_timeouts(struct db_pool *pool, int connect_s, int queue_s)
{
	pool->connect_timeout_s = connect_s;
	pool->queue_timeout_s = queue_s;
}

void
db_pool_set_statement_timeout(struct db_pool *pool, size_t stmt, int ms)
{
	if (stmt == DB_STMT_DEFAULT)
		pool->default_timeout_ms = ms < 0 ? -1 : ms;
	else if (stmt < pool->nstmts)
		pool->stmt_timeout_ms[stmt] = ms < 0 ? -1 : ms;
}

void
db_pool_set_replica(struct db_pool *pool, int max_lag_ms)
{
	struct timeval tv = {DB_LAG_INTERVAL_MS / 1000,
	    (DB_LAG_INTERVAL_MS % 1000) * 1000};
	int i;

	pool->max_lag_ms = max_lag_ms;
	if (pool->replica)
		return;
	pool->replica = true;
	pool->name = "replica";
	pool->label = "replica";
	for (i = 0; i < pool->size; i++)
		pool->conns[i].lagging = true;
	pool->lag_timer = event_new(pool->base, -1, EV_PERSIST, lag_timer_cb,
	    pool);
	event_add(pool->lag_timer, &tv);
}

bool
db_result_is_timeout(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s != NULL && strcmp(s, "57014") == 0;
}

void
db_pool_free(struct db_pool *pool)
{
	struct db_query *q;
	int i;

	if (pool == NULL)
		return;
	metrics_collector_remove(pool_collect, pool);
	pool->closing = true;
	for (i = 0; i < pool->size; i++)
		dc_free(&pool->conns[i]);
	if (pool->listener != NULL) {
		char **ch;

		dc_free(pool->listener);
		free(pool->listener);
		for (ch = pool->channels; *ch != NULL; ch++)
			free(*ch);
		free(pool->channels);
	}
	while ((q = TAILQ_FIRST(&pool->listen_queue)) != NULL) {
		TAILQ_REMOVE(&pool->listen_queue, q, entry);
		query_finish(q, NULL, DB_UNAVAILABLE);
	}
	while ((q = TAILQ_FIRST(&pool->queue)) != NULL) {
		TAILQ_REMOVE(&pool->queue, q, entry);
		query_finish(q, NULL, DB_UNAVAILABLE);
	}
	while ((q = TAILQ_FIRST(&pool->failed)) != NULL) {
		TAILQ_REMOVE(&pool->failed, q, entry);
		query_finish(q, NULL, DB_UNAVAILABLE);
	}
	event_free(pool->fail_ev);
	event_free(pool->sweep);
	if (pool->lag_timer != NULL)
		event_free(pool->lag_timer);
	free(pool->stmt_timeout_ms);
	free(pool->conns);
	free(pool->conninfo);
	free(pool);
}
