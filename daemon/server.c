#include "server.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "addrcount.h"
#include "app.h"
#include "auth.h"
#include "booking_batch.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "events.h"
#include "http.h"
#include "idkey.h"
#include "janitor.h"
#include "mail.h"
#include "log.h"
#include "methods.h"
#include "metrics.h"
#include "metrics_listen.h"
#include "migrate.h"
#include "netlist.h"
#include "proxywait.h"
#include "reloadsig.h"
#include "rpc.h"
#include "sdnotify.h"
#include "sqlcall.h"
#include "tls.h"
#include "workpool.h"

/* One client of the line transport: its connection and its protocol
 * peer, joined here and nowhere else. */
struct client {
	struct conn *conn;          /* held */
	struct rpc_peer *peer;      /* the transport's reference */
	struct addrcount_entry *from;
	TAILQ_ENTRY(client) entry;
};

static struct {
	struct event_base *base;
	struct config *cfg;
	SSL_CTX *ssl_ctx;
	struct db_pool *db;
	struct db_pool *replica;        /* the read pool, or NULL */
	struct workpool *workers;
	struct app *app;
	const char **statements;
	struct evconnlistener *listeners[CONFIG_MAX_LISTEN * 4];
	size_t nlisteners;
	TAILQ_HEAD(, client) clients;
	size_t nclients;
	struct addrcount *addrs;    /* both transports' connections */
	bool draining;
	bool ready;                 /* READY=1 sent (docs/operations.md) */
	struct event *signals[2];
	int hup_fd;                 /* reloadsig's pipe, -1 if none */
	struct event *hup_event;
	struct event *drain_timer;
	struct event *ready_timer;
	struct event *watchdog_timer;
	uint64_t ready_deadline;
	struct http *http;          /* NULL without [http] listen */
	struct proxywait *proxy;    /* line sockets sending a PROXY header */
	struct metrics_listen *metrics; /* NULL without metrics_listen */
} srv;

static const struct rpc_hooks hooks = {
	.dispatch = methods_dispatch,
	.peer_gone = events_peer_gone,
};

/* ---- limits from the configuration -------------------------------------- */

static struct conn_limits
conn_limits_of(const struct config *cfg)
{
	struct conn_limits l = {
		.max_line = (size_t)cfg->max_request_bytes,
		.max_output = (size_t)cfg->max_output_bytes,
		.handshake_timeout = (int)cfg->handshake_timeout,
		.idle_timeout = (int)cfg->idle_timeout,
	};

	return l;
}

static struct rpc_limits
rpc_limits_of(const struct config *cfg)
{
	struct rpc_limits l = {
		.max_inflight = (unsigned)cfg->max_inflight,
		.max_batch = (size_t)cfg->max_batch,
		.max_answer = (size_t)cfg->max_answer_bytes,
	};

	return l;
}

/* ---- the line transport's glue ----------------------------------------- */

static void
t_send(void *t, const char *buf, size_t len)
{
	conn_write_line(((struct client *)t)->conn, buf, len);
}

static bool
t_send_event(void *t, const char *buf, size_t len, bool force)
{
	return conn_write_low(((struct client *)t)->conn, buf, len, force);
}

static void
t_drop_events(void *t)
{
	conn_drop_low(((struct client *)t)->conn);
}

static void
t_pause(void *t, bool paused)
{
	conn_pause(((struct client *)t)->conn, paused);
}

static void
t_busy(void *t, bool busy)
{
	conn_set_busy(((struct client *)t)->conn, busy);
}

/* An anonymous connection must log in within auth_timeout. */
static void
t_session_changed(void *t, bool bound)
{
	struct client *cl = t;

	conn_set_deadline(cl->conn, bound ? 0 : (int)srv.cfg->auth_timeout,
	    "did not log in within auth_timeout");
}

static const struct rpc_transport line_transport = {
	.send = t_send,
	.send_event = t_send_event,
	.drop_events = t_drop_events,
	.pause = t_pause,
	.busy = t_busy,
	.session_changed = t_session_changed,
};

static void
on_open(struct conn *c, void *arg)
{
	struct client *cl = arg;
	char *email;

	conn_set_deadline(c, (int)srv.cfg->auth_timeout,
	    "did not log in within auth_timeout");
	if (srv.cfg->tls_client_ca != NULL &&
	    (email = conn_peer_email(c)) != NULL)
		auth_bind_certificate(srv.app, cl->peer, email);
}

static void
on_line(struct conn *c, char *line, size_t len, void *arg)
{
	struct client *cl = arg;

	rpc_peer_input(cl->peer, line, len);
}

static void
on_drained(struct conn *c, void *arg)
{
}

static void server_check_drained(void);

static void
on_closed(struct conn *c, void *arg)
{
	struct client *cl = arg;

	rpc_peer_gone(cl->peer);
	TAILQ_REMOVE(&srv.clients, cl, entry);
	srv.nclients--;
	addrcount_drop(srv.addrs, cl->from);
	app_connection_closed(srv.app);
	conn_release(cl->conn);
	free(cl);
	server_check_drained();
}

static const struct conn_callbacks line_callbacks = {
	.on_open = on_open,
	.on_line = on_line,
	.on_drained = on_drained,
	.on_closed = on_closed,
};

/* ---- the HTTP transport's glue ----------------------------------------- */

/*
 * One HTTP exchange that speaks JSON-RPC (POST /rpc, GET /events) and its
 * protocol peer, joined here. The session cookie is bound to the peer
 * before its input is fed (auth_bind_token); a login or resume hands its
 * token to take_token, which keeps it for the Set-Cookie and out of the
 * answer; a logout unbinds, and the answer clears the cookie.
 */
struct web {
	struct http_exchange *x;    /* NULL once answered or gone */
	struct rpc_peer *peer;      /* the transport's reference */
	bool events;                /* GET /events: a stream */
	bool binding;               /* a query is under way (the cookie's
	                               session, the calendar) */
	bool had_cookie;
	bool unbound;               /* a logout (or revocation) happened */
	bool answered;
	bool finishing;             /* `later` ends it, else checks for 204 */
	char *token;                /* a new session token, for the cookie */
	char *body;                 /* input held while binding */
	size_t len;
	struct event *later;
};

static void
web_free(struct web *w)
{
	if (w->peer != NULL)
		rpc_peer_gone(w->peer);
	if (w->token != NULL) {
		explicit_bzero(w->token, strlen(w->token));
		free(w->token);
	}
	if (w->body != NULL) {
		explicit_bzero(w->body, w->len);
		free(w->body);
	}
	if (w->later != NULL)
		event_free(w->later);
	free(w);
	server_check_drained();
}

static void
web_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct web *w = arg;

	if (w->finishing || w->x == NULL) {
		web_free(w);
		return;
	}
	/* Only notifications: nothing to answer. */
	if (!w->answered && rpc_peer_idle(w->peer)) {
		w->answered = true;
		http_reply(w->x, 204, NULL, NULL, 0);
		w->x = NULL;
		web_free(w);
	}
}

/* From inside a protocol call: what follows waits for the loop. */
static void
web_schedule(struct web *w, bool finish)
{
	struct timeval zero = {0, 0};

	w->finishing = w->finishing || finish;
	evtimer_add(w->later, &zero);
}

/* The cookie this answer sets or clears. */
static void
web_cookie(struct web *w)
{
	if (w->token != NULL) {
		http_set_session_cookie(w->x, w->token,
		    srv.cfg->policy.token_ttl);
		explicit_bzero(w->token, strlen(w->token));
		free(w->token);
		w->token = NULL;
	} else if ((w->had_cookie || w->unbound) &&
	    !rpc_peer_session(w->peer)->bound)
		http_clear_session_cookie(w->x);
}

/* The answer to GET /events' subscription: the stream, or the error
 * with its HTTP status. */
static void
web_events_answer(struct web *w, const char *buf, size_t len)
{
	json_t *a = json_loadb(buf, len, 0, NULL);
	json_t *e = json_object_get(a, "error");
	json_int_t code = json_integer_value(json_object_get(e, "code"));

	web_cookie(w);
	if (a != NULL && e == NULL) {
		http_stream_start(w->x);
		log_info("%s: event stream", http_exchange_tag(w->x));
	} else {
		http_add_header(w->x, "Cache-Control", "no-store");
		http_reply(w->x, code >= 400 && code < 600 ? (int)code : 400,
		    "application/json", buf, len);
		w->x = NULL;
		web_schedule(w, true);
	}
	json_decref(a);
}

static void
w_send(void *t, const char *buf, size_t len)
{
	struct web *w = t;

	if (w->x == NULL || w->answered)
		return;
	w->answered = true;
	if (w->events) {
		web_events_answer(w, buf, len);
		return;
	}
	web_cookie(w);
	http_reply(w->x, 200, "application/json", buf, len);
	w->x = NULL;
	web_schedule(w, true);
}

static bool
w_send_event(void *t, const char *buf, size_t len, bool force)
{
	struct web *w = t;

	/* Events reach only a stream; a subscription made by POST /rpc ends
	 * with its exchange. */
	if (w->x == NULL || !w->events || !w->answered)
		return true;
	return http_stream_event(w->x, buf, len, force);
}

static void
w_drop_events(void *t)
{
	/* What is written to a stream cannot be taken back; the stream
	 * ends instead when it stays too far behind (http_stream_event). */
}

static void
w_pause(void *t, bool paused)
{
	/* An exchange brings one message: there is nothing more to stop. */
}

static void
w_busy(void *t, bool busy)
{
	struct web *w = t;

	/* The last answer of a batch comes after its requests end. */
	if (!busy && !w->answered && w->x != NULL)
		web_schedule(w, false);
}

static void
w_session_changed(void *t, bool bound)
{
	struct web *w = t;

	w->unbound = !bound;
	/* A stream whose session ended (logout elsewhere, revocation)
	 * ends too. */
	if (!bound && w->events && w->answered && w->x != NULL) {
		http_stream_end(w->x);
		w->x = NULL;
		web_schedule(w, true);
	}
}

static bool
w_take_token(void *t, const char *token)
{
	struct web *w = t;

	if (w->token != NULL) {
		explicit_bzero(w->token, strlen(w->token));
		free(w->token);
	}
	w->token = xstrdup(token);
	return true;
}

static const struct rpc_transport web_transport = {
	.send = w_send,
	.send_event = w_send_event,
	.drop_events = w_drop_events,
	.pause = w_pause,
	.busy = w_busy,
	.session_changed = w_session_changed,
	.take_token = w_take_token,
};

static void
web_feed(struct web *w, const char *body, size_t len)
{
	rpc_peer_input(w->peer, body, len);
	if (w->x != NULL && !w->answered && rpc_peer_idle(w->peer))
		web_schedule(w, false);
}

static void
web_bound(void *arg, enum auth_token_status st)
{
	struct web *w = arg;

	w->binding = false;
	if (w->x == NULL) {         /* the client left meanwhile */
		web_free(w);
		return;
	}
	if (st == AUTH_TOKEN_UNAVAILABLE) {
		/* Not a reason to log the user out: the cookie stays. */
		w->answered = true;
		http_add_header(w->x, "Retry-After", "5");
		http_reply_text(w->x, 503, "Service momentanément "
		    "indisponible. / Temporarily unavailable.");
		w->x = NULL;
		web_free(w);
		return;
	}
	if (st == AUTH_TOKEN_REFUSED)
		log_debug("%s: session cookie unknown or expired",
		    http_exchange_tag(w->x));
	web_feed(w, w->body, w->len);
	explicit_bzero(w->body, w->len);
	free(w->body);
	w->body = NULL;
}

static struct web *
web_new(struct http_exchange *x, bool events)
{
	struct web *w = xcalloc(1, sizeof *w);

	w->x = x;
	w->events = events;
	if ((w->later = evtimer_new(srv.base, web_later_cb, w)) == NULL)
		fatal("out of memory");
	http_exchange_set_arg(x, w);
	w->peer = rpc_peer_new(&web_transport, w, http_exchange_addr(x),
	    http_exchange_tag(x));
	return w;
}

/* Binds the cookie's session first, if there is a cookie. */
static void
web_start(struct web *w, const char *body, size_t len, const char *token)
{
	if (token == NULL) {
		web_feed(w, body, len);
		return;
	}
	w->had_cookie = true;
	w->binding = true;
	w->body = xmalloc(len + 1);
	memcpy(w->body, body, len);
	w->len = len;
	auth_bind_token(srv.app, w->peer, token, web_bound, w);
}

static void
h_rpc(struct http_exchange *x, const char *body, size_t len,
    const char *token, void *arg)
{
	web_start(web_new(x, false), body, len, token);
}

/* GET /events?topics=a,b is events.subscribe {topics: [a, b]}. */
static void
h_events(struct http_exchange *x, const char *topics, const char *token,
    void *arg)
{
	json_t *list, *msg;
	const char *p = topics;
	size_t n;
	char *text;

	if (token == NULL) {
		http_reply_text(x, 401, "Connectez-vous d'abord. / Log in "
		    "first.");
		return;
	}
	list = json_array();
	while (*p != '\0') {
		n = strcspn(p, ",");
		if (n > 0)
			json_array_append_new(list, json_stringn(p, n));
		p += n;
		if (*p == ',')
			p++;
	}
	msg = json_pack("{s:s, s:i, s:s, s:{s:o}}", "jsonrpc", "2.0", "id", 1,
	    "method", "events.subscribe", "params", "topics", list);
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (text == NULL)
		fatal("out of memory");
	web_start(web_new(x, true), text, strlen(text), token);
	free(text);
}

static void
h_gone(struct http_exchange *x, void *xarg)
{
	struct web *w = xarg;

	if (w == NULL)
		return;
	w->x = NULL;
	if (!w->binding)
		web_free(w);
}

static bool
h_healthy(void *arg)
{
	return !srv.draining && db_pool_up(srv.db);
}

static void
ics_done(PGresult *res, enum db_status st, void *arg)
{
	struct web *w = arg;
	char disp[64];

	w->binding = false;
	if (w->x == NULL) {
		web_free(w);
		return;
	}
	if (st != DB_OK || PQntuples(res) != 1) {
		log_warn("%s: calendar: %s", http_exchange_tag(w->x),
		    st == DB_SQL_ERROR ? PQresultErrorMessage(res) :
		    "database unavailable");
		http_add_header(w->x, "Retry-After", "5");
		http_reply_text(w->x, 503, "Service momentanément "
		    "indisponible. / Temporarily unavailable.");
	} else if (PQgetisnull(res, 0, 0)) {
		http_reply_text(w->x, 404, "Introuvable. / Not found.");
	} else {
		/* Public by design (docs/privacy.md): calendar clients may
		 * keep it a few minutes. */
		snprintf(disp, sizeof disp, "inline; filename=\"%s\"",
		    "permanences.ics");
		http_add_header(w->x, "Content-Disposition", disp);
		http_add_header(w->x, "Cache-Control", "max-age=300");
		http_reply(w->x, 200, "text/calendar; charset=utf-8",
		    PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
	}
	w->x = NULL;
	web_free(w);
}

/* GET /p/ID.ics: api.permanence_ics(), anonymous. */
static void
h_ics(struct http_exchange *x, long long structure_id, void *arg)
{
	struct web *w = xcalloc(1, sizeof *w);
	char id[24];
	const char *vals[1];

	w->x = x;
	http_exchange_set_arg(x, w);
	w->binding = true;
	snprintf(id, sizeof id, "%lld", structure_id);
	vals[0] = id;
	db_exec(srv.db, sqlcall_stmt(STMT_PERMANENCE_ICS), 1, vals, ics_done,
	    w);
}

/* GET /metrics (docs/operations.md, "Metrics"): only from the addresses
 * of http.metrics_allow (none by default); any other gets the 404 of an
 * unknown path, so the route is not advertised. */
static void
h_metrics(struct http_exchange *x, void *arg)
{
	struct evbuffer *b;

	if (!netlist_match_text(&srv.cfg->http_metrics_allow,
	    http_exchange_addr(x))) {
		metrics_add(M_METRICS_REFUSED, 1);
		log_info("%s: /metrics refused: not in http.metrics_allow",
		    http_exchange_tag(x));
		http_reply_text(x, 404, "Introuvable. / Not found.");
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		fatal("out of memory");
	metrics_render(b);
	http_add_header(x, "Cache-Control", "no-store");
	http_reply(x, 200, "text/plain; version=0.0.4; charset=utf-8",
	    (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
}

static const struct http_callbacks http_cbs = {
	.rpc = h_rpc,
	.events = h_events,
	.ics = h_ics,
	.healthy = h_healthy,
	.metrics = h_metrics,
	.gone = h_gone,
};

static struct http_limits
http_limits_of(const struct config *cfg)
{
	struct http_limits l = {
		.max_body = (size_t)cfg->max_request_bytes,
		.max_headers = (size_t)cfg->http_max_header_bytes,
		.timeout = (int)cfg->http_timeout,
		.max_output = (size_t)cfg->max_output_bytes,
		.max_connections = (size_t)cfg->http_max_connections,
		.max_per_address = (size_t)cfg->max_connections_per_address,
	};

	return l;
}

static struct http_settings
http_settings_of(const struct config *cfg)
{
	struct http_settings s = {
		.www_dir = cfg->http_www_dir,
		.origins = (const char *const *)cfg->http_origin.v,
		.norigins = cfg->http_origin.n,
		.proxy_protocol = cfg->http_proxy_protocol,
		.proxy_from = &cfg->proxy_from,
	};

	return s;
}

static void
http_start(const struct config *cfg)
{
	struct http_limits l = http_limits_of(cfg);
	struct http_settings s = http_settings_of(cfg);
	size_t i;

	if (cfg->http_listen.n == 0)
		return;
	srv.http = http_new(srv.base, srv.ssl_ctx, &l, &s, srv.addrs, &http_cbs,
	    NULL);
	for (i = 0; i < cfg->http_listen.n; i++)
		if (!http_listen(srv.http, cfg->http_listen.v[i]))
			fatal("cannot listen (http); exiting");
}

/* [http] metrics_listen: the metrics' own plain listener. */
static void
metrics_start(const struct config *cfg)
{
	size_t i;

	if (cfg->http_metrics_listen.n == 0)
		return;
	srv.metrics = metrics_listen_new(srv.base);
	for (i = 0; i < cfg->http_metrics_listen.n; i++)
		if (!metrics_listen_add(srv.metrics,
		    cfg->http_metrics_listen.v[i]))
			fatal("cannot listen (metrics); exiting");
}

static void
format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	if (sa->sa_family == AF_INET)
		evutil_inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, buf, len);
	else if (sa->sa_family == AF_INET6)
		evutil_inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, buf, len);
	else
		snprintf(buf, len, "local");
}

/* A connection to serve as coming from sa: the client's own address, or
 * the one its balancer's PROXY header gave. */
static void
accept_client(evutil_socket_t fd, const struct sockaddr *sa)
{
	struct conn_limits limits = conn_limits_of(srv.cfg);
	struct client *cl;
	char addr[64];
	SSL *ssl;

	format_addr(sa, addr, sizeof addr);
	if (addrcount_open(srv.addrs, addr) >=
	    (size_t)srv.cfg->max_connections_per_address) {
		log_warn("refusing connection from %s: too many connections "
		    "from this address (max_connections_per_address %lld)",
		    addr, srv.cfg->max_connections_per_address);
		metrics_add(M_CONN_REFUSED, 1, "rpc", "max_per_address");
		evutil_closesocket(fd);
		return;
	}
	if ((ssl = SSL_new(srv.ssl_ctx)) == NULL) {
		log_error("SSL_new failed");
		metrics_add(M_CONN_REFUSED, 1, "rpc", "tls_error");
		evutil_closesocket(fd);
		return;
	}
	cl = xcalloc(1, sizeof *cl);
	cl->conn = conn_accept(srv.base, ssl, fd, sa, &limits, &line_callbacks,
	    cl);
	if (cl->conn == NULL) {
		free(cl);
		return;
	}
	conn_hold(cl->conn);
	cl->peer = rpc_peer_new(&line_transport, cl, conn_addr(cl->conn),
	    conn_tag(cl->conn));
	cl->from = addrcount_take(srv.addrs, addr);
	TAILQ_INSERT_TAIL(&srv.clients, cl, entry);
	srv.nclients++;
	app_connection_opened(srv.app);
	metrics_add(M_CONN_ACCEPTED, 1, "rpc");
	log_debug("%s accepted (%zu open)", conn_tag(cl->conn), srv.nclients);
}

/* A balancer's PROXY header has been read: the per-address cap and
 * everything after it see the client it names. */
static void
proxy_done(evutil_socket_t fd, const struct sockaddr *sa, int salen,
    void *arg)
{
	accept_client(fd, sa);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	size_t n = srv.nclients + proxywait_pending(srv.proxy);
	char addr[64];

	if (srv.draining || n >= (size_t)srv.cfg->max_connections) {
		format_addr(sa, addr, sizeof addr);
		log_warn("refusing connection from %s: %s (%zu open, "
		    "max_connections %lld)", addr, srv.draining ?
		    "server stopping" : "too many connections", n,
		    srv.cfg->max_connections);
		metrics_add(M_CONN_REFUSED, 1, "rpc", srv.draining ?
		    "draining" : "max_connections");
		evutil_closesocket(fd);
		return;
	}
	/* Only a trusted balancer's header is read; anyone else is served
	 * as itself (docs/operations.md, "Behind a load balancer"). */
	if (srv.cfg->proxy_protocol &&
	    netlist_match(&srv.cfg->proxy_from, sa)) {
		proxywait_add(srv.proxy, fd, sa, salen,
		    (int)srv.cfg->handshake_timeout);
		return;
	}
	accept_client(fd, sa);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	if (!srv.draining)
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
	metrics_add(M_CONN_REFUSED, 1, "rpc", "accept_error");
	evconnlistener_disable(l);
	event_base_once(srv.base, -1, EV_TIMEOUT, listener_resume_cb, l, &tv);
}

static bool
listen_one(const char *spec)
{
	struct addrinfo hints, *ai = NULL, *p;
	struct evconnlistener *l;
	char *host, *port;
	int rc;

	if (!config_split_hostport(spec, &host, &port))
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
		log_error("listen %s: %s", spec, gai_strerror(rc));
		return false;
	}
	for (p = ai; p != NULL; p = p->ai_next) {
		if (srv.nlisteners == nitems(srv.listeners))
			break;
		l = evconnlistener_new_bind(srv.base, accept_cb, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		    LEV_OPT_CLOSE_ON_EXEC, 511, p->ai_addr, (int)p->ai_addrlen);
		if (l == NULL) {
			log_error("cannot listen on %s: %s", spec,
			    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
			freeaddrinfo(ai);
			return false;
		}
		evconnlistener_set_error_cb(l, accept_error_cb);
		srv.listeners[srv.nlisteners++] = l;
		log_info("listening on %s", spec);
	}
	freeaddrinfo(ai);
	return true;
}

static void
close_listeners(void)
{
	size_t i;

	for (i = 0; i < srv.nlisteners; i++)
		evconnlistener_free(srv.listeners[i]);
	srv.nlisteners = 0;
}

/* ---- stopping ---------------------------------------------------------- */

static void
server_check_drained(void)
{
	if (srv.draining && srv.nclients == 0 &&
	    (srv.http == NULL || http_active(srv.http) == 0)) {
		log_info("all connections closed");
		event_base_loopexit(srv.base, NULL);
	}
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *cl;

	log_warn("drain timeout: closing %zu connections", srv.nclients);
	TAILQ_FOREACH(cl, &srv.clients, entry)
		conn_close(cl->conn, "drain timeout");
	event_base_loopexit(srv.base, NULL);
}

static void
server_drain(void)
{
	struct timeval tv = {(time_t)srv.cfg->drain_timeout, 0};
	struct client *cl;

	if (srv.draining) {
		log_warn("second stop signal: exiting now");
		event_base_loopbreak(srv.base);
		return;
	}
	log_info("stopping: no new connections, finishing %zu", srv.nclients);
	sdnotify("STOPPING=1\nSTATUS=stopping: finishing %zu connections",
	    srv.nclients);
	srv.draining = true;
	close_listeners();
	proxywait_free(srv.proxy);
	srv.proxy = NULL;
	if (srv.http != NULL)
		http_drain(srv.http);
	janitor_stop();
	mail_stop();
	/* conn_drain() only schedules closes: the list does not change
	 * under this loop. */
	TAILQ_FOREACH(cl, &srv.clients, entry)
		conn_drain(cl->conn);
	srv.drain_timer = evtimer_new(srv.base, drain_timeout_cb, NULL);
	evtimer_add(srv.drain_timer, &tv);
	server_check_drained();
}

/* ---- reload ------------------------------------------------------------ */

static void
apply_log_config(const struct config *cfg)
{
	enum log_level level = LL_INFO;

	log_parse_level(cfg->log_level, &level);
	log_configure(level, strcmp(cfg->log_format, "json") == 0);
}

static void
apply_limits(void)
{
	struct conn_limits cl = conn_limits_of(srv.cfg);
	struct rpc_limits rl = rpc_limits_of(srv.cfg);
	struct client *c;

	rpc_set_limits(&rl);
	TAILQ_FOREACH(c, &srv.clients, entry)
		conn_set_limits(c->conn, &cl);
	if (srv.http != NULL) {
		struct http_limits hl = http_limits_of(srv.cfg);
		struct http_settings hs = http_settings_of(srv.cfg);

		http_set_limits(srv.http, &hl);
		http_set_settings(srv.http, &hs);
	}
}

/* statement_timeout per method class (docs/configuration.md), on the
 * primary's pool and the replica's alike. */
static void
pool_statement_timeouts(struct db_pool *pool, const struct config *cfg)
{
	long long s;
	size_t i;

	db_pool_set_statement_timeout(pool, DB_STMT_DEFAULT,
	    (int)(cfg->db_statement_timeout * 1000));
	for (i = 0; i < methods_count; i++) {
		if (methods[i].sql == NULL)
			continue;
		switch (methods_class(&methods[i])) {
		case MC_LIST:
			s = cfg->db_list_statement_timeout;
			break;
		case MC_REPORT:
			s = cfg->db_report_statement_timeout;
			break;
		default:
			continue;
		}
		db_pool_set_statement_timeout(pool, methods[i].stmt,
		    (int)(s * 1000));
	}
}

static void
apply_statement_timeouts(const struct config *cfg)
{
	pool_statement_timeouts(srv.db, cfg);
	if (srv.replica != NULL)
		pool_statement_timeouts(srv.replica, cfg);
}

static void
revoke_done(PGresult *res, enum db_status st, void *arg)
{
	if (st == DB_OK && PQntuples(res) == 1)
		log_info("client certificate trust changed: %s sessions opened "
		    "by certificate revoked", PQgetvalue(res, 0, 0));
	else
		log_error("client certificate trust changed, but the sessions "
		    "opened by certificate could not be revoked: %s",
		    st == DB_SQL_ERROR ? PQresultErrorMessage(res) :
		    "database unavailable");
}

/* A new client CA or CRL: sessions opened by a certificate the old one
 * trusted end, in the database (every daemon's) and here, where their
 * connections close; clients reconnect and are checked anew. */
static void
revoke_certificate_sessions(void)
{
	struct client *cl;

	db_exec(srv.db, sqlcall_stmt(STMT_AUTH_REVOKE_CERT_SESSIONS), 0, NULL,
	    revoke_done, NULL);
	TAILQ_FOREACH(cl, &srv.clients, entry)
		if (rpc_peer_session(cl->peer)->by_certificate)
			conn_close(cl->conn, "client certificate trust "
			    "changed");
}

/* False, with err, if the new configuration or certificate is refused:
 * the running ones stay. */
static bool
server_reload(char *err, size_t errlen)
{
	bool trust_changed;
	struct config *cfg;
	SSL_CTX *ctx;

	log_info("SIGHUP: reloading %s", srv.cfg->path);
	if ((cfg = config_load(srv.cfg->path, err, errlen)) == NULL) {
		log_error("reload failed, keeping the running configuration: "
		    "%s", err);
		return false;
	}
	if ((ctx = tls_server_ctx(cfg, err, errlen)) == NULL) {
		log_error("reload failed, keeping the running configuration "
		    "and certificate: %s", err);
		config_free(cfg);
		return false;
	}
	if (!idkey_configure(cfg, err, errlen)) {
		log_error("reload failed, keeping the running configuration "
		    "and certificate: %s", err);
		SSL_CTX_free(ctx);
		config_free(cfg);
		return false;
	}
	if (!config_reloadable(srv.cfg, cfg, err, errlen))
		log_warn("changed settings that need a restart (kept as "
		    "they were): %s", err);
	config_keep_static(cfg, srv.cfg);
	trust_changed = tls_client_trust_changed(srv.ssl_ctx, ctx);
	/* Live connections keep a reference to the context they began
	 * with; new ones get the new certificate. */
	SSL_CTX_free(srv.ssl_ctx);
	srv.ssl_ctx = ctx;
	if (srv.http != NULL)
		http_set_tls(srv.http, ctx);
	app_set_config(srv.app, cfg);
	config_free(srv.cfg);
	srv.cfg = cfg;
	apply_log_config(cfg);
	apply_limits();
	mail_reload();
	db_pool_set_timeouts(srv.db, (int)cfg->db_connect_timeout,
	    (int)cfg->db_queue_timeout);
	if (srv.replica != NULL) {
		db_pool_set_timeouts(srv.replica, (int)cfg->db_connect_timeout,
		    (int)cfg->db_queue_timeout);
		db_pool_set_replica(srv.replica,
		    (int)(cfg->db_replica_max_lag * 1000));
	}
	if (trust_changed)
		revoke_certificate_sessions();
	log_info("configuration reloaded");
	return true;
}

/* SIGHUPs (reloadsig.h): one reload for all that arrived, told to the
 * service manager around it and answered to each sender that waits
 * (`strapontind --reload`, systemd's ExecReload). */
static void
hup_cb(evutil_socket_t fd, short what, void *arg)
{
	pid_t senders[16];
	size_t i, nsenders;
	char err[512];
	bool ok, notify;

	if (reloadsig_take(fd, senders, nitems(senders), &nsenders) == 0)
		return;
	/* Before READY=1 (start-up) or after STOPPING=1 the manager is
	 * not told of a reload: it is not in a state that has one. */
	notify = srv.ready && !srv.draining;
	if (notify)
		sdnotify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading "
		    "the configuration", (unsigned long long)
		    sdnotify_monotonic_usec());
	ok = server_reload(err, sizeof err);
	if (notify) {
		if (ok)
			sdnotify("READY=1\nSTATUS=serving; configuration "
			    "reloaded");
		else
			sdnotify("READY=1\nSTATUS=serving; reload failed, "
			    "running configuration kept: %s", err);
	}
	for (i = 0; i < nsenders; i++)
		if (!reloadsig_answer(senders[i], ok))
			log_warn("cannot tell process %ld the reload's "
			    "outcome: it is gone", (long)senders[i]);
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	sdnotify("WATCHDOG=1");
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
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

	if (db_pool_up(srv.db) || now_ms() > srv.ready_deadline) {
		if (!db_pool_up(srv.db))
			log_warn("database not reachable yet; answering "
			    "unavailable until it is");
		log_info("strapontind: ready");
		srv.ready = true;
		sdnotify("READY=1\nSTATUS=%s\nMAINPID=%ld", db_pool_up(srv.db) ?
		    "serving" : "serving; the database is not reachable yet",
		    (long)getpid());
		return;
	}
	evtimer_add(srv.ready_timer, &tv);
}

/* ---- start and stop ---------------------------------------------------- */

static void
check_schema(const struct config *cfg)
{
	int schema = 0, pending;

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
}

static void
server_free(void)
{
	struct client *cl;
	size_t i;

	close_listeners();
	proxywait_free(srv.proxy);
	srv.proxy = NULL;
	/* Exchanges still open end now: their peers go before the pools. */
	http_free(srv.http);
	srv.http = NULL;
	metrics_listen_free(srv.metrics);
	srv.metrics = NULL;
	janitor_stop();
	mail_stop();
	/* A forced stop (second signal, drain timeout) does not hash every
	 * queued password first. */
	workpool_abandon(srv.workers);
	/* Order matters: the worker pool's last callbacks may still query,
	 * the pool's last callbacks answer requests, and answered requests
	 * release their peers; one more loop pass runs the deferred frees. */
	workpool_free(srv.workers);
	booking_batch_stop();
	db_pool_free(srv.replica);
	db_pool_free(srv.db);
	event_base_loop(srv.base, EVLOOP_NONBLOCK);
	events_stop();
	/* Whatever did not finish within the drain timeout. */
	while ((cl = TAILQ_FIRST(&srv.clients)) != NULL) {
		TAILQ_REMOVE(&srv.clients, cl, entry);
		rpc_peer_gone(cl->peer);
		addrcount_drop(srv.addrs, cl->from);
		conn_free_now(cl->conn);
		free(cl);
	}
	janitor_free();
	mail_free();
	for (i = 0; i < nitems(srv.signals); i++)
		if (srv.signals[i] != NULL)
			event_free(srv.signals[i]);
	/* Freeing the events gave SIGTERM and SIGINT back their default,
	 * deadly action; one more of them now, a repeated Ctrl-C or a
	 * manager insisting, would turn this clean exit into a kill. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	if (srv.drain_timer != NULL)
		event_free(srv.drain_timer);
	if (srv.ready_timer != NULL)
		event_free(srv.ready_timer);
	if (srv.watchdog_timer != NULL)
		event_free(srv.watchdog_timer);
	if (srv.hup_event != NULL)
		event_free(srv.hup_event);
	reloadsig_close(srv.hup_fd);
	sdnotify_close();
	app_free(srv.app);
	addrcount_free(srv.addrs);
	SSL_CTX_free(srv.ssl_ctx);
	idkey_reset();
	config_free(srv.cfg);
	event_base_free(srv.base);
	free(srv.statements);
	memset(&srv, 0, sizeof srv);
}

int
server_run(struct config *cfg)
{
	static const int sigs[] = {SIGTERM, SIGINT};
	struct rpc_limits limits = rpc_limits_of(cfg);
	struct timeval zero = {0, 0};
	char err[512];
	size_t i, n;
	uint64_t watchdog;

	memset(&srv, 0, sizeof srv);
	srv.cfg = cfg;
	sdnotify_open();
	/* From the start: a SIGHUP during the start-up's blocking steps
	 * waits in the pipe for the loop instead of killing the daemon. */
	if ((srv.hup_fd = reloadsig_listen()) == -1)
		fatal("cannot catch SIGHUP: %s", strerror(errno));
	TAILQ_INIT(&srv.clients);
	srv.addrs = addrcount_new();
	apply_log_config(cfg);
	if ((srv.base = event_base_new()) == NULL)
		fatal("cannot create the event loop");
	if ((srv.ssl_ctx = tls_server_ctx(cfg, err, sizeof err)) == NULL)
		fatal("%s", err);
	if (!idkey_configure(cfg, err, sizeof err))
		fatal("%s", err);
	check_schema(cfg);

	srv.statements = sqlcall_statements(&n);
	srv.db = db_pool_new(srv.base, cfg->db_conninfo, (int)cfg->db_pool_size,
	    srv.statements, n);
	db_pool_set_timeouts(srv.db, (int)cfg->db_connect_timeout,
	    (int)cfg->db_queue_timeout);
	if (cfg->db_replica_conninfo != NULL) {
		srv.replica = db_pool_new(srv.base, cfg->db_replica_conninfo,
		    (int)cfg->db_replica_pool_size, srv.statements, n);
		db_pool_set_timeouts(srv.replica, (int)cfg->db_connect_timeout,
		    (int)cfg->db_queue_timeout);
		db_pool_set_replica(srv.replica,
		    (int)(cfg->db_replica_max_lag * 1000));
	}
	apply_statement_timeouts(cfg);
	if ((srv.workers = workpool_new(srv.base, (int)cfg->workers)) == NULL)
		fatal("cannot start the worker threads");
	srv.app = app_new(srv.base, srv.db, srv.workers, cfg);
	srv.app->replica = srv.replica;
	rpc_init(srv.base, &hooks, srv.app, &limits);
	events_start(srv.app);
	booking_batch_start(srv.app);

	srv.proxy = proxywait_new(srv.base, "line", proxy_done, NULL);
	for (i = 0; i < cfg->nlisten; i++)
		if (!listen_one(cfg->listen[i]))
			fatal("cannot listen; exiting");
	http_start(cfg);
	metrics_start(cfg);
	for (i = 0; i < nitems(sigs); i++) {
		srv.signals[i] = evsignal_new(srv.base, sigs[i], signal_cb, NULL);
		evsignal_add(srv.signals[i], NULL);
	}
	srv.hup_event = event_new(srv.base, srv.hup_fd, EV_READ | EV_PERSIST,
	    hup_cb, NULL);
	event_add(srv.hup_event, NULL);
	/* Twice per period, as systemd asks: a loop that stalls for half of
	 * WatchdogSec= gets the daemon killed and restarted. */
	if ((watchdog = sdnotify_watchdog_usec()) > 0) {
		struct timeval half = {(time_t)(watchdog / 2 / 1000000),
		    (suseconds_t)(watchdog / 2 % 1000000)};

		srv.watchdog_timer = event_new(srv.base, -1, EV_PERSIST,
		    watchdog_cb, NULL);
		event_add(srv.watchdog_timer, &half);
		log_info("watchdog: telling the service manager every %llu ms",
		    (unsigned long long)(watchdog / 2000));
	}
	srv.ready_deadline = now_ms() + (uint64_t)cfg->db_connect_timeout * 1000;
	srv.ready_timer = evtimer_new(srv.base, ready_cb, NULL);
	evtimer_add(srv.ready_timer, &zero);
	janitor_start(srv.app);
	mail_start(srv.app);

	event_base_dispatch(srv.base);
	log_info("stopped after %llu requests",
	    (unsigned long long)rpc_requests_total());
	server_free();
	return 0;
}
