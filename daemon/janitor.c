#include "janitor.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "config.h"
#include "db.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "sqlcall.h"

/* Subscribers whose session ended without a notification reaching us stop
 * getting events within this many seconds. */
#define SESSION_CHECK_S 10

struct sweep {
	const char *name;
	const char *what;           /* "N <what>" in the log */
	enum sql_stmt stmt;
	struct event *timer;
	bool running;
};

static struct {
	struct app *app;
	struct sweep waitlist;
	struct sweep retention;
	struct sweep mail;
	struct event *sessions;
	struct event *prune;
	bool pruning;
	bool stopped;
} jan;

static void
sweep_done(PGresult *res, enum db_status st, void *arg)
{
	struct sweep *s = arg;

	s->running = false;
	metrics_add(M_JANITOR_RUNS, 1, s->name, st == DB_OK ? "ok" :
	    st == DB_SQL_ERROR ? "error" : "unavailable");
	if (st == DB_SQL_ERROR)
		log_error("%s sweep: %s", s->name, PQresultErrorMessage(res));
	else if (st == DB_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		log_info("%s sweep: %s %s", s->name, PQgetvalue(res, 0, 0),
		    s->what);
}

static void
sweep_run(struct sweep *s)
{
	const char *vals[1];

	if (s->running || jan.stopped || !db_pool_up(jan.app->db))
		return;
	s->running = true;
	vals[0] = jan.app->policy_json;
	db_exec(jan.app->db, sqlcall_stmt(s->stmt), 1, vals, sweep_done, s);
}

static void
waitlist_cb(evutil_socket_t fd, short what, void *arg)
{
	sweep_run(&jan.waitlist);
}

/* policy.retention_interval may change on reload: re-armed each time. */
static void
retention_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = {(time_t)jan.app->cfg->policy.retention_interval, 0};

	if (jan.stopped)
		return;
	evtimer_add(jan.retention.timer, &tv);
	sweep_run(&jan.retention);
}

/* The e-mails due by now (docs/mail.md, "When"): every
 * policy.mail_interval, which may change on reload. */
static void
mail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = {(time_t)jan.app->cfg->policy.mail_interval, 0};

	if (jan.stopped)
		return;
	evtimer_add(jan.mail.timer, &tv);
	sweep_run(&jan.mail);
}

static void
sessions_cb(evutil_socket_t fd, short what, void *arg)
{
	if (!jan.stopped)
		events_check_sessions();
}

static void
prune_done(PGresult *res, enum db_status st, void *arg)
{
	jan.pruning = false;
	metrics_add(M_JANITOR_RUNS, 1, "events_prune", st == DB_OK ? "ok" :
	    st == DB_SQL_ERROR ? "error" : "unavailable");
	if (st == DB_SQL_ERROR)
		log_error("events prune: %s", PQresultErrorMessage(res));
	else if (st == DB_OK && PQntuples(res) == 1)
		log_debug("events prune: %s outbox rows deleted",
		    PQgetvalue(res, 0, 0));
}

/* Old outbox rows go every few seconds (a tenth of database.events_keep,
 * 1 s to 10 s), on the listener connection like the reads: a prune must
 * not wait behind requests, and runs on every daemon (two at once only
 * delete less each). events_keep may change on reload: re-armed each
 * time. */
static void
prune_cb(evutil_socket_t fd, short what, void *arg)
{
	long long keep = jan.app->cfg->db_events_keep;
	struct timeval tv = {(time_t)(keep / 10 < 1 ? 1 : keep / 10 > 10 ?
	    10 : keep / 10), 0};
	char secs[24];
	const char *vals[1];

	if (jan.stopped)
		return;
	evtimer_add(jan.prune, &tv);
	if (jan.pruning || !db_listen_up(jan.app->db))
		return;
	jan.pruning = true;
	snprintf(secs, sizeof secs, "%lld", keep);
	vals[0] = secs;
	db_listen_exec(jan.app->db, "SELECT api.events_prune(make_interval("
	    "secs => $1::double precision))", 1, vals, prune_done, NULL);
}

void
janitor_start(struct app *app)
{
	struct timeval second = {1, 0}, check = {SESSION_CHECK_S, 0};

	jan.app = app;
	jan.waitlist.name = "waitlist";
	jan.waitlist.stmt = STMT_WAITLIST_SWEEP;
	jan.waitlist.what = "entries expired";
	jan.retention.name = "retention";
	jan.retention.stmt = STMT_RETENTION_SWEEP;
	jan.retention.what = "beneficiaries anonymised after policy."
	    "retention_months without activity";
	jan.mail.name = "mail";
	jan.mail.stmt = STMT_MAIL_SWEEP;
	jan.mail.what = "e-mails queued";
	jan.waitlist.timer = event_new(app->base, -1, EV_PERSIST, waitlist_cb,
	    NULL);
	evtimer_add(jan.waitlist.timer, &second);
	/* The first retention check soon after start, then every interval. */
	jan.retention.timer = evtimer_new(app->base, retention_cb, NULL);
	evtimer_add(jan.retention.timer, &second);
	jan.mail.timer = evtimer_new(app->base, mail_cb, NULL);
	evtimer_add(jan.mail.timer, &second);
	jan.sessions = event_new(app->base, -1, EV_PERSIST, sessions_cb, NULL);
	evtimer_add(jan.sessions, &check);
	jan.prune = evtimer_new(app->base, prune_cb, NULL);
	evtimer_add(jan.prune, &second);
}

void
janitor_stop(void)
{
	jan.stopped = true;
	/* The outbox reads are periodic work too: none may start once the
	 * pool is going. */
	events_halt();
	if (jan.waitlist.timer != NULL) {
		event_del(jan.waitlist.timer);
		event_del(jan.retention.timer);
		event_del(jan.mail.timer);
		event_del(jan.sessions);
		event_del(jan.prune);
	}
}

void
janitor_free(void)
{
	if (jan.waitlist.timer != NULL) {
		event_free(jan.waitlist.timer);
		event_free(jan.retention.timer);
		event_free(jan.mail.timer);
		event_free(jan.sessions);
		event_free(jan.prune);
	}
	memset(&jan, 0, sizeof jan);
}
