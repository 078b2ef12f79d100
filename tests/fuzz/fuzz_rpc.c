/*
 * Harness: the request path from the line framer down to the method table
 * (daemon/frame.c, rpc.c, methods.c and the handlers), with a fake SQL
 * call layer and a fake worker pool defined here in place of db.c and
 * workpool.c. The input is what a client sends, cut into reads at the
 * bytes 0x01 (a byte a client would not send): every line goes through
 * the real framer, protocol, dispatch, parameter checks and handlers
 * (auth.*, events.subscribe, method_sql...); each database call answers,
 * from the loop, with one of a few canned results or "unavailable",
 * chosen by the input. Everything must end: no crash, no leak, every
 * request answered or dropped, the peer freed.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config.h"
#include "db.h"
#include "events.h"
#include "frame.h"
#include "fuzz.h"
#include "log.h"
#include "methods.h"
#include "pwhash.h"
#include "rpc.h"
#include "sqlcall.h"
#include "workpool.h"

static struct event_base *base;
static struct app *app;
static const uint8_t *input;
static size_t input_len, input_at;
static int pending;             /* fake calls whose callback is due */

/* A byte of the input, to choose an answer; 0 once it is used up. */
static uint8_t
choice(void)
{
	return input_at < input_len ? input[input_at++ % input_len] : 0;
}

/* ---- the fake database --------------------------------------------------- */

struct call {
	db_cb *cb;
	void *arg;
	uint8_t pick;
};

static const char *const answers[] = {
	"{}",
	"null",
	"[]",
	"{\"user\":{\"id\":1,\"role\":\"admin\",\"partner_id\":null,"
	    "\"structure_id\":null}}",
	"{\"user\":{\"id\":2,\"role\":\"referent\",\"structure_id\":3}}",
	"{\"locked\":true,\"retry_after_s\":30}",
	"{\"password_hash\":\"$scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaA\","
	    "\"user_id\":1,\"email\":\"a@b.c\"}",
	"{\"items\":[],\"next_cursor\":null}",
	"\"not an object\"",
	"{nope",
};

static void
call_cb(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	PGresult *res;
	PGresAttDesc att = {0};
	const char *v;

	pending--;
	if (c->pick % 4 == 0) {
		c->cb(NULL, DB_UNAVAILABLE, c->arg);
		free(c);
		return;
	}
	v = answers[c->pick % (sizeof answers / sizeof answers[0])];
	res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	att.name = (char *)"r";
	att.format = 0;
	att.typid = 25;
	att.typlen = -1;
	att.atttypmod = -1;
	PQsetResultAttrs(res, 1, &att);
	PQsetvalue(res, 0, 0, (char *)v, (int)strlen(v));
	c->cb(res, DB_OK, c->arg);
	PQclear(res);
	free(c);
}

void
db_exec(struct db_pool *pool, size_t stmt, int nparams,
    const char *const *values, db_cb *cb, void *arg)
{
	struct call *c = calloc(1, sizeof *c);
	struct timeval zero = {0, 0};

	c->cb = cb;
	c->arg = arg;
	c->pick = choice();
	pending++;
	/* db.h: never from inside db_exec(). */
	event_base_once(base, -1, EV_TIMEOUT, call_cb, c, &zero);
}

bool
db_pool_up(const struct db_pool *pool)
{
	return true;
}

void
db_pool_listen(struct db_pool *pool, const char *const *channels,
    db_notify_cb *cb, db_listen_state_cb *state_cb, void *arg)
{
}

void
db_listen_exec(struct db_pool *pool, const char *sql, int nparams,
    const char *const *values, db_cb *cb, void *arg)
{
	db_exec(pool, 0, nparams, values, cb, arg);
}

bool
db_listen_up(const struct db_pool *pool)
{
	return false;
}

/* ---- the fake worker pool: the work is skipped, as in a forced stop ---- */

struct job {
	workpool_fn *done;
	void *arg;
};

static void
job_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	pending--;
	j->done(j->arg);
	free(j);
}

void
workpool_submit_class(struct workpool *wp, unsigned cls, workpool_fn *work,
    workpool_fn *done, void *arg)
{
	struct job *j = calloc(1, sizeof *j);
	struct timeval zero = {0, 0};

	j->done = done;
	j->arg = arg;
	pending++;
	event_base_once(base, -1, EV_TIMEOUT, job_cb, j, &zero);
}

void
workpool_submit(struct workpool *wp, workpool_fn *work, workpool_fn *done,
    void *arg)
{
	workpool_submit_class(wp, 0, work, done, arg);
}

bool
workpool_skipped(const struct workpool *wp)
{
	return true;
}

/* ---- a fake transport -------------------------------------------------- */

static void
t_send(void *t, const char *buf, size_t len)
{
	json_t *m = json_loadb(buf, len, 0, NULL);

	/* Every answer is one JSON value: the protocol's promise. */
	if (m == NULL)
		abort();
	json_decref(m);
}

static bool
t_send_event(void *t, const char *buf, size_t len, bool force)
{
	return true;
}

static void
t_nothing(void *t)
{
}

static void
t_flag(void *t, bool on)
{
}

static const struct rpc_transport transport = {t_send, t_send_event,
    t_nothing, t_flag, t_flag, t_flag, NULL};

static const struct rpc_hooks hooks = {methods_dispatch, events_peer_gone};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char conf[] = "[tls]\ncert = /nonexistent\n"
	    "key = /nonexistent\n[database]\nconninfo = dbname=x\n";
	struct rpc_limits limits = {4, 16, 65536};
	const char **stmts;
	struct config *cfg;
	char err[256];
	size_t n;

	log_configure(LL_ERROR, false);
	base = event_base_new();
	cfg = config_load_mem("fuzz.conf", conf, sizeof conf - 1, err,
	    sizeof err);
	if (cfg == NULL)
		abort();
	app = app_new(base, NULL, NULL, cfg);
	/* Gives each method its statement index, as the daemon does. */
	stmts = sqlcall_statements(&n);
	free(stmts);
	rpc_init(base, &hooks, app, &limits);
	return 0;
}

static void
settle(void)
{
	int i;

	for (i = 0; i < 1000 && pending > 0; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_loop(base, EVLOOP_NONBLOCK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *in = evbuffer_new();
	struct rpc_peer *p;
	size_t at = 0, end, scanned = 0, len;
	char *line;
	bool closed = false;

	if (base == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	input = data;
	input_len = size;
	input_at = size / 2;
	p = rpc_peer_new(&transport, NULL, "127.0.0.1", "F-1");
	while (at < size && !closed) {
		for (end = at; end < size && data[end] != 0x01; end++)
			;
		evbuffer_add(in, data + at, end - at);
		at = end + 1;
		for (;;) {
			enum frame_result r = frame_take(in, &scanned, 4096,
			    &line, &len);

			if (r == FRAME_TOO_LONG) {
				closed = true;
				break;
			}
			if (r == FRAME_MORE)
				break;
			if (!frame_blank(line, len))
				rpc_peer_input(p, line, len);
			free(line);
		}
		settle();
	}
	rpc_peer_gone(p);
	settle();
	evbuffer_free(in);
	return 0;
}
