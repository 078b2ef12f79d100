#include "metrics.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "version.h"

#define MAX_LABELS 2

enum mtype { COUNTER, GAUGE, HISTOGRAM };

struct metric_def {
	const char *name;
	enum mtype type;
	const char *help;
	const char *labels[MAX_LABELS];
	const double *bounds;       /* histograms: upper bounds, ascending */
	size_t nbounds;
};

/* Seconds a request takes, from its arrival to its answer. */
static const double request_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
/* Seconds a query waits for a pool connection (now_ms(): whole ms). */
static const double wait_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1, 2.5, 5};
/* Bookings per group commit (database.booking_batch_max: 64 at most). */
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64};

#define B(a) a, nitems(a)

/* The one table of metrics: docs/operations.md ("Metrics") lists each,
 * which unit_metrics checks. */
static const struct metric_def metric_defs[M_NMETRICS] = {
	[M_REQUESTS] = {"strapontin_requests_total", COUNTER,
	    "JSON-RPC requests answered, by method and outcome (ok or the "
	    "error reason).", {"method", "outcome"}, NULL, 0},
	[M_REQUEST_SECONDS] = {"strapontin_request_duration_seconds",
	    HISTOGRAM, "Time from a request's arrival to its answer.",
	    {"method", NULL}, B(request_bounds)},
	[M_CONNECTIONS] = {"strapontin_connections", GAUGE,
	    "Open client connections, by transport and state.",
	    {"transport", "state"}, NULL, 0},
	[M_CONN_ACCEPTED] = {"strapontin_connections_accepted_total", COUNTER,
	    "Client connections accepted.", {"transport", NULL}, NULL, 0},
	[M_CONN_REFUSED] = {"strapontin_connections_refused_total", COUNTER,
	    "Client connections refused at accept, by reason.",
	    {"transport", "reason"}, NULL, 0},
	[M_DB_CONNECTIONS] = {"strapontin_db_connections", GAUGE,
	    "Database pool connections, by state.", {"pool", "state"}, NULL,
	    0},
	[M_DB_WAITING] = {"strapontin_db_waiting_queries", GAUGE,
	    "Queries waiting for a pool connection.", {"pool", NULL}, NULL, 0},
	[M_DB_WAIT_SECONDS] = {"strapontin_db_wait_seconds", HISTOGRAM,
	    "Time a query waited for a pool connection.", {"pool", NULL},
	    B(wait_bounds)},
	[M_DB_QUEUE_TIMEOUTS] = {"strapontin_db_queue_timeouts_total",
	    COUNTER, "Queries answered unavailable after waiting "
	    "database.queue_timeout for a connection.", {"pool", NULL}, NULL,
	    0},
	[M_DB_UP] = {"strapontin_db_up", GAUGE,
	    "1 if the pool has a usable database connection, else 0.",
	    {"pool", NULL}, NULL, 0},
	[M_DB_REPLICA_LAG] = {"strapontin_db_replica_lag_seconds", GAUGE,
	    "Replay lag of the read pool's standby: the largest its "
	    "connections last measured.", {"pool", NULL}, NULL, 0},
	[M_EVENT_SUBSCRIBERS] = {"strapontin_event_subscribers", GAUGE,
	    "Clients subscribed to live events.", {NULL, NULL}, NULL, 0},
	[M_EVENTS_QUEUED] = {"strapontin_events_queued_total", COUNTER,
	    "Events queued to subscribers.", {NULL, NULL}, NULL, 0},
	[M_EVENTS_DROPPED] = {"strapontin_events_dropped_total", COUNTER,
	    "Times a slow subscriber's waiting events were dropped (it is "
	    "sent resync).", {NULL, NULL}, NULL, 0},
	[M_LOGINS_THROTTLED] = {"strapontin_logins_throttled_total", COUNTER,
	    "Logins refused as rate_limited after too many failures.",
	    {NULL, NULL}, NULL, 0},
	[M_JANITOR_RUNS] = {"strapontin_janitor_runs_total", COUNTER,
	    "Periodic sweeps run, by job and outcome (ok, error, "
	    "unavailable).", {"job", "outcome"}, NULL, 0},
	[M_OUTBOX_BACKLOG] = {"strapontin_outbox_backlog", GAUGE,
	    "Events outbox ids handed out that this daemon has not read yet "
	    "(at its last read).", {NULL, NULL}, NULL, 0},
	[M_BOOKING_BATCHES] = {"strapontin_booking_batches_total", COUNTER,
	    "Group commits of booking.create sent to the database.",
	    {NULL, NULL}, NULL, 0},
	[M_BOOKING_BATCH_SIZE] = {"strapontin_booking_batch_size", HISTOGRAM,
	    "Bookings per group commit.", {NULL, NULL}, B(batch_bounds)},
	[M_MAIL_SENT] = {"strapontin_mail_sent_total", COUNTER,
	    "E-mails of mail_outbox the relay accepted from this daemon.",
	    {NULL, NULL}, NULL, 0},
	[M_MAIL_FAILED] = {"strapontin_mail_failed_total", COUNTER,
	    "Attempts to send an e-mail that failed, by kind (temporary: "
	    "retried; permanent: the recipient was refused).",
	    {"kind", NULL}, NULL, 0},
	[M_MAIL_GIVEN_UP] = {"strapontin_mail_given_up_total", COUNTER,
	    "E-mails this daemon gave up (refused recipient, or "
	    "mail.give_up_after passed).", {NULL, NULL}, NULL, 0},
	[M_MAIL_BACKLOG] = {"strapontin_mail_backlog", GAUGE,
	    "E-mails neither sent nor given up, due or not (at this daemon's "
	    "last claim).", {NULL, NULL}, NULL, 0},
	[M_METRICS_REFUSED] = {"strapontin_metrics_refused_total", COUNTER,
	    "Scrapes of /metrics refused: the address is not in "
	    "http.metrics_allow.", {NULL, NULL}, NULL, 0},
	[M_START_TIME] = {"strapontin_start_time_seconds", GAUGE,
	    "When the daemon started, in seconds since the Unix epoch.",
	    {NULL, NULL}, NULL, 0},
	[M_BUILD_INFO] = {"strapontin_build_info", GAUGE,
	    "Always 1; the labels say the version and protocol.",
	    {"version", "protocol"}, NULL, 0},
};

struct series {
	char *values[MAX_LABELS];
	double value;
	uint64_t *buckets;          /* histograms: per bucket, not cumulative */
	uint64_t count;
	double sum;
};

struct family {
	struct series **series;     /* in the order they were made */
	size_t n, cap;
};

struct collector {
	metrics_collect_cb *cb;
	void *arg;
};

static struct {
	bool started;
	struct family fam[M_NMETRICS];
	struct collector *collectors;
	size_t ncollectors, capcollectors;
} reg;

static size_t
nlabels(const struct metric_def *d)
{
	size_t n = 0;

	while (n < MAX_LABELS && d->labels[n] != NULL)
		n++;
	return n;
}

static void
start(void)
{
	char protocol[16];

	if (reg.started)
		return;
	reg.started = true;
	metrics_set(M_START_TIME, (double)time(NULL));
	snprintf(protocol, sizeof protocol, "%d", STRAPONTIN_PROTOCOL);
	metrics_set(M_BUILD_INFO, 1, STRAPONTIN_VERSION, protocol);
}

/* The series of m with the label values in ap, made if new. A linear
 * search: the largest family (requests) holds the methods used times the
 * outcomes seen, a few hundred at most, and strcmp stops at the first
 * byte for most. */
static struct series *
find(enum metric m, va_list ap)
{
	const struct metric_def *d = &metric_defs[m];
	struct family *f = &reg.fam[m];
	const char *v[MAX_LABELS];
	struct series *s;
	size_t i, j, n = nlabels(d);

	for (j = 0; j < n; j++) {
		v[j] = va_arg(ap, const char *);
		if (v[j] == NULL)
			v[j] = "";
	}
	for (i = 0; i < f->n; i++) {
		s = f->series[i];
		for (j = 0; j < n && strcmp(s->values[j], v[j]) == 0; j++)
			;
		if (j == n)
			return s;
	}
	s = xcalloc(1, sizeof *s);
	for (j = 0; j < n; j++)
		s->values[j] = xstrdup(v[j]);
	if (d->type == HISTOGRAM)
		s->buckets = xcalloc(d->nbounds, sizeof *s->buckets);
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->series = xrealloc(f->series, f->cap * sizeof *f->series);
	}
	f->series[f->n++] = s;
	return s;
}

static struct series *
series_of(enum metric m, ...)
{
	struct series *s;
	va_list ap;

	va_start(ap, m);
	s = find(m, ap);
	va_end(ap);
	return s;
}

void
metrics_add(enum metric m, double v, ...)
{
	va_list ap;

	start();
	va_start(ap, v);
	find(m, ap)->value += v;
	va_end(ap);
}

void
metrics_set(enum metric m, double v, ...)
{
	va_list ap;

	start();
	va_start(ap, v);
	find(m, ap)->value = v;
	va_end(ap);
}

void
metrics_observe(enum metric m, double v, ...)
{
	const struct metric_def *d = &metric_defs[m];
	struct series *s;
	va_list ap;
	size_t i;

	start();
	va_start(ap, v);
	s = find(m, ap);
	va_end(ap);
	for (i = 0; i < d->nbounds && v > d->bounds[i]; i++)
		;
	if (i < d->nbounds)
		s->buckets[i]++;
	s->count++;
	s->sum += v;
}

void
metrics_collector_add(metrics_collect_cb *cb, void *arg)
{
	if (reg.ncollectors == reg.capcollectors) {
		reg.capcollectors = reg.capcollectors ? reg.capcollectors * 2 : 4;
		reg.collectors = xrealloc(reg.collectors,
		    reg.capcollectors * sizeof *reg.collectors);
	}
	reg.collectors[reg.ncollectors].cb = cb;
	reg.collectors[reg.ncollectors].arg = arg;
	reg.ncollectors++;
}

void
metrics_collector_remove(metrics_collect_cb *cb, void *arg)
{
	size_t i;

	for (i = 0; i < reg.ncollectors; i++) {
		if (reg.collectors[i].cb == cb && reg.collectors[i].arg == arg) {
			memmove(&reg.collectors[i], &reg.collectors[i + 1],
			    (reg.ncollectors - i - 1) * sizeof *reg.collectors);
			reg.ncollectors--;
			return;
		}
	}
}

/* A sample value: integers as such (counters up to 2^53), others with
 * enough digits, and the format's spellings of the infinities and NaN. */
static void
put_value(struct evbuffer *out, double v)
{
	if (isnan(v))
		evbuffer_add_printf(out, "NaN");
	else if (isinf(v))
		evbuffer_add_printf(out, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		evbuffer_add_printf(out, "%.0f", v);
	else
		evbuffer_add_printf(out, "%.15g", v);
}

/* A label value: backslash, double quote and newline escaped. */
static void
put_label_value(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			evbuffer_add(out, "\\\\", 2);
		else if (*s == '"')
			evbuffer_add(out, "\\\"", 2);
		else if (*s == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, s, 1);
	}
}

/* name{labels[,le="bound"]} value: le is NULL, or the bucket's bound. */
static void
put_sample(struct evbuffer *out, const struct metric_def *d,
    const char *suffix, const struct series *s, const char *le, double v)
{
	size_t j, n = nlabels(d);

	evbuffer_add_printf(out, "%s%s", d->name, suffix);
	if (n > 0 || le != NULL) {
		evbuffer_add(out, "{", 1);
		for (j = 0; j < n; j++) {
			evbuffer_add_printf(out, "%s%s=\"", j ? "," : "",
			    d->labels[j]);
			put_label_value(out, s->values[j]);
			evbuffer_add(out, "\"", 1);
		}
		if (le != NULL)
			evbuffer_add_printf(out, "%sle=\"%s\"", n ? "," : "",
			    le);
		evbuffer_add(out, "}", 1);
	}
	evbuffer_add(out, " ", 1);
	put_value(out, v);
	evbuffer_add(out, "\n", 1);
}

static void
put_histogram(struct evbuffer *out, const struct metric_def *d,
    const struct series *s)
{
	uint64_t cumulative = 0;
	char le[32];
	size_t i;

	for (i = 0; i < d->nbounds; i++) {
		cumulative += s->buckets[i];
		snprintf(le, sizeof le, "%g", d->bounds[i]);
		put_sample(out, d, "_bucket", s, le, (double)cumulative);
	}
	put_sample(out, d, "_bucket", s, "+Inf", (double)s->count);
	put_sample(out, d, "_sum", s, NULL, s->sum);
	put_sample(out, d, "_count", s, NULL, (double)s->count);
}

void
metrics_render(struct evbuffer *out)
{
	static const char *const type_names[] = {"counter", "gauge",
	    "histogram"};
	const struct metric_def *d;
	struct family *f;
	size_t m, i;

	start();
	for (i = 0; i < reg.ncollectors; i++)
		reg.collectors[i].cb(reg.collectors[i].arg);
	for (m = 0; m < M_NMETRICS; m++) {
		d = &metric_defs[m];
		f = &reg.fam[m];
		/* The help texts hold no backslash nor newline, which
		 * would need escaping. */
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n",
		    d->name, d->help, d->name, type_names[d->type]);
		/* A family without labels shows its zero. */
		if (f->n == 0 && nlabels(d) == 0)
			(void)series_of((enum metric)m);
		for (i = 0; i < f->n; i++) {
			if (d->type == HISTOGRAM)
				put_histogram(out, d, f->series[i]);
			else
				put_sample(out, d, "", f->series[i], NULL,
				    f->series[i]->value);
		}
	}
}

const char *
metrics_name_at(size_t i)
{
	return i < M_NMETRICS ? metric_defs[i].name : NULL;
}

void
metrics_reset(void)
{
	struct series *s;
	size_t m, i, j;

	for (m = 0; m < M_NMETRICS; m++) {
		for (i = 0; i < reg.fam[m].n; i++) {
			s = reg.fam[m].series[i];
			for (j = 0; j < MAX_LABELS; j++)
				free(s->values[j]);
			free(s->buckets);
			free(s);
		}
		free(reg.fam[m].series);
	}
	free(reg.collectors);
	memset(&reg, 0, sizeof reg);
}
