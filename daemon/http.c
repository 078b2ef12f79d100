#include "http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addrcount.h"
#include "config.h"
#include "httpmsg.h"
#include "log.h"
#include "netlist.h"
#include "proxywait.h"
#include "metrics.h"
#include "qr.h"
#include "ticket.h"
#include "util.h"

#define MAX_PATH 1024           /* bytes of a decoded request path */
#define MAX_FILE (16 << 20)     /* a static file larger is refused */
#define KEEPALIVE_S 25          /* ": keepalive" on event streams */
#define LINGER_S 2              /* reading what follows a refusal */
#define HEAD_CHUNK 1024         /* a head buffer's first size */
#define MAX_LISTENERS (CONFIG_MAX_LISTEN * 4)

/* QR images and calendars (anonymous, and not free): a token bucket per
 * address, in a small table. Addresses
 * that share a slot evict each other (a fresh bucket is full), which
 * costs an attacker as much as it gives. */
#define QR_SLOTS 256
#define QR_BURST 60.0           /* images at once */
#define QR_RATE 2.0             /* images a second, in the long run */

struct qr_bucket {
	char addr[64];
	double tokens;
	uint64_t at_ms;
};

/*
 * One HTTPS connection. It reads one request at a time: a pipelined
 * request waits in the input buffer until the answer before it is
 * written. States:
 *   HEAD   waiting for, or reading, a request head (idle between requests)
 *   BODY   reading its body (Content-Length bytes)
 *   BUSY   its exchange is being answered by the layer above
 *   FLUSH  the answer is being written; then HEAD again (keep-alive)
 *   LAST   the last answer is being written; then LINGER or closed
 *   LINGER after a refusal: what the client still sends is read and
 *          dropped for a moment, so that closing does not reset the
 *          connection before the client has read the refusal
 *   CLOSED callbacks return at once; freed after the loop pass
 */
enum hconn_state {
	HC_HEAD, HC_BODY, HC_BUSY, HC_FLUSH, HC_LAST, HC_LINGER, HC_CLOSED,
};

struct hconn {
	struct http *h;
	struct bufferevent *bev;
	enum hconn_state state;
	struct event *timer;        /* reading a request, writing an answer */
	struct event *soon;         /* goes on from the loop */
	char addr[64];
	char port[16];
	struct addrcount_entry *from;   /* counted per address */
	char *head;                 /* the head being read (head_cap bytes) */
	size_t head_cap, head_len;
	size_t scanned;             /* head bytes known to hold no end */
	struct httpmsg msg;         /* the parsed head, pointing into head */
	char *body;                 /* msg.content_length bytes, or NULL */
	bool started;               /* a byte of this request has come */
	bool keep_alive;
	bool head_only;             /* HEAD: the answer has no body */
	bool linger;                /* refused before its end was read */
	struct http_exchange *x;    /* being answered, or NULL */
	TAILQ_ENTRY(hconn) entry;
};

struct http_exchange {
	struct http *h;
	struct hconn *c;            /* NULL once answered or gone */
	struct evbuffer *hdrs;      /* the answer's headers, "N: v\r\n" */
	void *xarg;
	bool ended;                 /* the layer above ended it */
	bool streaming;
	bool gone_pending;          /* gone() is scheduled */
	struct event *gone_ev;      /* ...by this timer */
	char addr[64];
	char tag[96];
	TAILQ_ENTRY(http_exchange) entry;
};

TAILQ_HEAD(hconn_list, hconn);

struct http {
	struct event_base *base;
	SSL_CTX *ctx;                   /* a reference of ours */
	struct http_limits limits;
	struct addrcount *addrs;        /* borrowed, shared with the line's */
	char *www_dir;
	char **origins;
	size_t norigins;
	bool proxy_protocol;
	struct netlist proxy_from;
	struct proxywait *proxy;        /* sockets sending a PROXY header */
	const struct http_callbacks *cb;
	void *arg;
	TAILQ_HEAD(, http_exchange) exchanges;
	size_t nexchanges;
	struct hconn_list conns;        /* open */
	size_t nconns;
	struct hconn_list dead;         /* closed, freed by reap */
	struct event *reap;
	struct event *resume;           /* listeners, after EMFILE */
	uint64_t next_id;
	bool draining;
	struct event *keepalive;
	struct evconnlistener *listeners[MAX_LISTENERS];
	size_t nlisteners;
	struct qr_bucket qr[QR_SLOTS];
};

static void exchange_free(struct http_exchange *x);
static void schedule_gone(struct http_exchange *x);
static void hconn_close(struct hconn *c, const char *why);
static void hconn_process(struct hconn *c);
static void route(struct hconn *c, struct http_exchange *x);

/* ---- answers ----------------------------------------------------------- */

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* RFC 9110 IMF-fixdate, whatever the locale. */
static void
http_date(char *buf, size_t len)
{
	static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat"};
	static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * The status line and headers of every answer, ours and every refusal
 * alike: the one place that writes them, so none lacks the security
 * headers (docs/http.md, "Headers"). extra holds further header lines
 * (may be NULL); length is the body's, or -1 for a body that ends when
 * the connection does (an event stream); close says the connection
 * closes after this answer.
 */
static void
write_head(struct hconn *c, int status, const char *ctype,
    struct evbuffer *extra, long long length, bool close)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char date[64];

	http_date(date, sizeof date);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n"
	    "Server: strapontind\r\n"
	    "Content-Security-Policy: default-src 'self'; img-src 'self' "
	    "data:; frame-ancestors 'none'; base-uri 'none'; "
	    "form-action 'self'\r\n"
	    "Strict-Transport-Security: max-age=31536000\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Referrer-Policy: no-referrer\r\n", status, status_text(status),
	    date);
	if (extra != NULL)
		evbuffer_add(out, evbuffer_pullup(extra, -1),
		    evbuffer_get_length(extra));
	if (ctype != NULL)
		evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
	if (length >= 0 && status != 204 && status != 304)
		evbuffer_add_printf(out, "Content-Length: %lld\r\n", length);
	if (close)
		evbuffer_add_printf(out, "Connection: close\r\n");
	else if (c->msg.minor == 0)
		evbuffer_add_printf(out, "Connection: keep-alive\r\n");
	evbuffer_add(out, "\r\n", 2);
}

static void
arm_timer(struct hconn *c, int seconds)
{
	struct timeval tv = {(time_t)seconds, 0};

	evtimer_add(c->timer, &tv);
}

/* An answer is queued: once it is written, the next request is read, or
 * the connection ends (after_write). */
static void
answer_queued(struct hconn *c, bool close)
{
	c->x = NULL;
	c->state = close ? HC_LAST : HC_FLUSH;
	/* A client that does not read its answer is not waited for. */
	arm_timer(c, c->h->limits.timeout);
	event_active(c->soon, EV_TIMEOUT, 0);
}

/* A request refused before any exchange: said, and the connection closes,
 * since what follows in it cannot be trusted to start a request. */
static void
refuse(struct hconn *c, int status, const char *reason)
{
	struct evbuffer *extra;
	char body[256];
	int n;

	log_info("http %s:%s: %d: %s", c->addr, c->port, status, reason);
	n = snprintf(body, sizeof body, "Requête refusée (%d). / Request "
	    "refused: %s.\n", status, reason);
	if (n < 0 || n >= (int)sizeof body)
		n = (int)sizeof body - 1;
	c->keep_alive = false;
	c->head_only = false;
	c->linger = true;
	if ((extra = evbuffer_new()) == NULL)
		fatal("http: out of memory");
	evbuffer_add_printf(extra, "Cache-Control: no-store\r\n");
	write_head(c, status, "text/plain; charset=utf-8", extra, n, true);
	evbuffer_free(extra);
	evbuffer_add(bufferevent_get_output(c->bev), body, (size_t)n);
	answer_queued(c, true);
}

/* The exchange is over for the layer above: freed now unless gone() is
 * still to come from the loop, which frees it then. */
static void
exchange_end(struct http_exchange *x)
{
	x->ended = true;
	x->c = NULL;
	if (!x->gone_pending)
		exchange_free(x);
}

/* Ends x with body (may be NULL; its bytes are moved out). */
static void
reply_buffer(struct http_exchange *x, int status, const char *ctype,
    struct evbuffer *body)
{
	struct hconn *c = x->c;
	size_t len = body != NULL ? evbuffer_get_length(body) : 0;
	bool close;

	if (x->ended)
		fatal("http: exchange %s ended twice", x->tag);
	if (c != NULL) {
		close = !c->keep_alive || x->h->draining;
		write_head(c, status, ctype, x->hdrs, (long long)len, close);
		if (body != NULL && !c->head_only && status != 204 &&
		    status != 304)
			evbuffer_add_buffer(bufferevent_get_output(c->bev),
			    body);
		answer_queued(c, close);
	}
	exchange_end(x);
}

void
http_reply(struct http_exchange *x, int status, const char *ctype,
    const char *body, size_t len)
{
	struct evbuffer *b;

	if ((b = evbuffer_new()) == NULL)
		fatal("http: out of memory");
	if (body != NULL && len > 0)
		evbuffer_add(b, body, len);
	reply_buffer(x, status, ctype, b);
	evbuffer_free(b);
}

void
http_reply_text(struct http_exchange *x, int status, const char *message)
{
	char buf[256];
	int n = snprintf(buf, sizeof buf, "%s\n", message);

	http_add_header(x, "Cache-Control", "no-store");
	http_reply(x, status, "text/plain; charset=utf-8", buf,
	    n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Names and values come from this file and the layer above, never from
 * a request; a CR or LF in them would still split the answer, so such a
 * header is dropped. */
void
http_add_header(struct http_exchange *x, const char *name, const char *value)
{
	if (x->ended || strpbrk(name, "\r\n:") != NULL ||
	    strpbrk(value, "\r\n") != NULL) {
		log_warn("%s: header %s dropped", x->tag, name);
		return;
	}
	evbuffer_add_printf(x->hdrs, "%s: %s\r\n", name, value);
}

void
http_set_session_cookie(struct http_exchange *x, const char *token,
    long long max_age)
{
	char buf[256];

	snprintf(buf, sizeof buf, HTTP_SESSION_COOKIE "=%s; HttpOnly; Secure; "
	    "SameSite=Strict; Path=/; Max-Age=%lld", token, max_age);
	http_add_header(x, "Set-Cookie", buf);
	explicit_bzero(buf, sizeof buf);
}

void
http_clear_session_cookie(struct http_exchange *x)
{
	http_add_header(x, "Set-Cookie", HTTP_SESSION_COOKIE "=; HttpOnly; "
	    "Secure; SameSite=Strict; Path=/; Max-Age=0");
}

/* ---- event streams ----------------------------------------------------- */

static size_t
stream_output(struct http_exchange *x)
{
	return x->c != NULL ?
	    evbuffer_get_length(bufferevent_get_output(x->c->bev)) : 0;
}

/* The stream's body ends with the connection (no Content-Length, no
 * chunks): what EventSource reads, and nothing to frame. */
void
http_stream_start(struct http_exchange *x)
{
	struct hconn *c = x->c;

	if (c == NULL || x->ended || x->streaming)
		return;
	http_add_header(x, "Cache-Control", "no-store");
	/* A reverse proxy must pass events on at once (nginx). */
	http_add_header(x, "X-Accel-Buffering", "no");
	c->keep_alive = false;
	write_head(c, 200, "text/event-stream", x->hdrs, -1, true);
	/* The stream outlives the request timeout; a client that stops
	 * reading is caught by max_output instead. */
	evtimer_del(c->timer);
	x->streaming = true;
}

static void
stream_write(struct http_exchange *x, const char *a, size_t alen,
    const char *b, size_t blen, const char *c, size_t clen)
{
	struct evbuffer *out = bufferevent_get_output(x->c->bev);

	evbuffer_add(out, a, alen);
	evbuffer_add(out, b, blen);
	evbuffer_add(out, c, clen);
}

bool
http_stream_event(struct http_exchange *x, const char *line, size_t len,
    bool force)
{
	size_t out;

	if (x->c == NULL || !x->streaming)
		return true;    /* gone: what it misses does not matter */
	out = stream_output(x);
	if (out > x->h->limits.max_output && !force)
		return false;
	if (out > 2 * x->h->limits.max_output) {
		/* Ended here, but the layer above, inside whose call this
		 * is, hears of it from the loop, as if the client had left.
		 * What is queued (a resync) is still written, if the client
		 * reads it within [http] timeout. */
		log_warn("%s: event stream ended: the client reads too slowly",
		    x->tag);
		answer_queued(x->c, true);
		x->c = NULL;
		schedule_gone(x);
		return true;
	}
	stream_write(x, "data: ", 6, line, len, "\n\n", 2);
	return true;
}

void
http_stream_end(struct http_exchange *x)
{
	if (x->ended)
		return;
	if (x->c != NULL && !x->streaming) {
		reply_buffer(x, 503, NULL, NULL);
		return;
	}
	if (x->c != NULL)
		answer_queued(x->c, true);
	exchange_end(x);
}

static void
keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct http_exchange *x;

	TAILQ_FOREACH(x, &h->exchanges, entry)
		if (x->streaming && x->c != NULL && !x->ended &&
		    stream_output(x) <= h->limits.max_output)
			stream_write(x, ": keepalive", 11, "", 0, "\n\n", 2);
}

/* ---- exchanges --------------------------------------------------------- */

static void
gone_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_exchange *x = arg;

	x->gone_pending = false;
	if (!x->ended) {
		x->ended = true;
		if (x->h->cb->gone != NULL)
			x->h->cb->gone(x, x->xarg);
	}
	exchange_free(x);
}

static void
schedule_gone(struct http_exchange *x)
{
	struct timeval zero = {0, 0};

	x->gone_pending = true;
	if ((x->gone_ev = evtimer_new(x->h->base, gone_cb, x)) == NULL)
		fatal("http: out of memory");
	evtimer_add(x->gone_ev, &zero);
}

static struct http_exchange *
exchange_new(struct hconn *c)
{
	struct http *h = c->h;
	struct http_exchange *x = xcalloc(1, sizeof *x);

	x->h = h;
	x->c = c;
	if ((x->hdrs = evbuffer_new()) == NULL)
		fatal("http: out of memory");
	snprintf(x->addr, sizeof x->addr, "%s", c->addr);
	snprintf(x->tag, sizeof x->tag, "H-%llu %s:%s",
	    (unsigned long long)++h->next_id, c->addr, c->port);
	TAILQ_INSERT_TAIL(&h->exchanges, x, entry);
	h->nexchanges++;
	return x;
}

static void
exchange_free(struct http_exchange *x)
{
	TAILQ_REMOVE(&x->h->exchanges, x, entry);
	x->h->nexchanges--;
	if (x->gone_ev != NULL)
		event_free(x->gone_ev);
	evbuffer_free(x->hdrs);
	free(x);
}

void
http_exchange_set_arg(struct http_exchange *x, void *xarg)
{
	x->xarg = xarg;
}

const char *
http_exchange_addr(const struct http_exchange *x)
{
	return x->addr;
}

const char *
http_exchange_tag(const struct http_exchange *x)
{
	return x->tag;
}

/* ---- request checks ---------------------------------------------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The request's path, percent-decoded once, into out. False for a path
 * that could mean something else to someone else: an encoded "/", "\" or
 * "%" (double encoding), a NUL or control character, a "\" at all, a "."
 * or ".." segment, an empty segment ("//").
 */
static bool
path_decode(const char *uri, char *out, size_t outlen)
{
	size_t i = 0, seg = 0;
	const char *p;
	int c, hi, lo;

	if (uri == NULL || uri[0] != '/')
		return false;
	for (p = uri; *p != '\0' && *p != '?' && *p != '#'; p++) {
		c = (unsigned char)*p;
		if (c == '%') {
			if ((hi = hexval(p[1])) < 0 || (lo = hexval(p[2])) < 0)
				return false;
			c = hi * 16 + lo;
			p += 2;
			if (c == '/' || c == '%')
				return false;
		}
		if (c < 0x20 || c == 0x7f || c == '\\')
			return false;
		if (i + 1 >= outlen)
			return false;
		out[i++] = (char)c;
		if (c == '/') {
			/* the segment just closed: out[seg .. i-2] */
			if (i - 1 > 0 && i - 1 == seg)
				return false;                   /* "//" */
			if (i - 1 - seg == 1 && out[seg] == '.')
				return false;
			if (i - 1 - seg == 2 && out[seg] == '.' &&
			    out[seg + 1] == '.')
				return false;
			seg = i;
		}
	}
	out[i] = '\0';
	if (i - seg == 1 && out[seg] == '.')
		return false;
	if (i - seg == 2 && out[seg] == '.' && out[seg + 1] == '.')
		return false;
	return true;
}

static const char *
input_header(const struct hconn *c, const char *name)
{
	return httpmsg_header(&c->msg, name);
}

/* CSRF: a POST must come from a page of the desk itself. */
static bool
origin_ok(const struct http *h, const struct hconn *c)
{
	const char *origin = input_header(c, "Origin");
	const char *host;
	size_t i;

	if (origin == NULL)
		return false;
	if (h->norigins > 0) {
		for (i = 0; i < h->norigins; i++)
			if (strcasecmp(origin, h->origins[i]) == 0)
				return true;
		return false;
	}
	host = input_header(c, "Host");
	return host != NULL && *host != '\0' &&
	    strncasecmp(origin, "https://", 8) == 0 &&
	    strcasecmp(origin + 8, host) == 0;
}

/* application/json, with parameters (charset) or not. */
static bool
json_content_type(const struct hconn *c)
{
	const char *ct = input_header(c, "Content-Type");
	size_t n;

	if (ct == NULL)
		return false;
	n = strcspn(ct, "; \t");
	return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* The session cookie's value, if well-formed (base64url, as tokens are
 * made), into out; NULL otherwise. */
static const char *
session_cookie(const struct hconn *c, char *out, size_t outlen)
{
	static const char name[] = HTTP_SESSION_COOKIE "=";
	const char *cookie = input_header(c, "Cookie");
	const char *p;
	size_t n, i;

	for (p = cookie; p != NULL && *p != '\0'; ) {
		while (*p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, ";");
		if (n > sizeof name - 1 &&
		    strncmp(p, name, sizeof name - 1) == 0) {
			p += sizeof name - 1;
			n -= sizeof name - 1;
			while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				n--;
			if (n == 0 || n >= outlen)
				return NULL;
			for (i = 0; i < n; i++) {
				int ch = (unsigned char)p[i];

				if (!((ch >= 'A' && ch <= 'Z') ||
				    (ch >= 'a' && ch <= 'z') ||
				    (ch >= '0' && ch <= '9') || ch == '-' ||
				    ch == '_'))
					return NULL;
			}
			memcpy(out, p, n);
			out[n] = '\0';
			return out;
		}
		p += n;
		if (*p == ';')
			p++;
	}
	return NULL;
}

static void
method_not_allowed(struct http_exchange *x, const char *allow)
{
	http_add_header(x, "Allow", allow);
	http_reply_text(x, 405, "Méthode non permise. / Method not allowed.");
}

static void
not_found(struct http_exchange *x)
{
	http_reply_text(x, 404, "Introuvable. / Not found.");
}

/* ---- static files ------------------------------------------------------ */

static const struct {
	const char *ext;
	const char *type;
} content_types[] = {
	{"html", "text/html; charset=utf-8"},
	{"js", "text/javascript; charset=utf-8"},
	{"mjs", "text/javascript; charset=utf-8"},
	{"css", "text/css; charset=utf-8"},
	{"svg", "image/svg+xml"},
	{"png", "image/png"},
	{"ico", "image/x-icon"},
	{"json", "application/json"},
	{"webmanifest", "application/manifest+json"},
	{"woff2", "font/woff2"},
	{"txt", "text/plain; charset=utf-8"},
};

static const char *
content_type_of(const char *path)
{
	const char *dot = strrchr(path, '.');
	size_t i;

	if (dot == NULL || strchr(dot, '/') != NULL)
		return NULL;
	for (i = 0; i < nitems(content_types); i++)
		if (strcmp(dot + 1, content_types[i].ext) == 0)
			return content_types[i].type;
	return NULL;
}

/*
 * Opens path (decoded, checked by path_decode) under www_dir one
 * component at a time, never following a symbolic link, so nothing
 * outside www_dir can be reached whatever the tree holds. A hidden
 * component (".git") is not served. -1 if there is no such regular file.
 */
static int
open_under(const char *root, const char *path, struct stat *st)
{
	char comp[MAX_PATH];
	const char *p = path + 1, *slash;
	int dir, fd;

	if ((dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		log_warn("http: www_dir %s: %s", root, strerror(errno));
		return -1;
	}
	for (;;) {
		slash = strchr(p, '/');
		if (slash == NULL)
			break;
		if ((size_t)(slash - p) >= sizeof comp || *p == '.')
			goto fail;
		memcpy(comp, p, (size_t)(slash - p));
		comp[slash - p] = '\0';
		fd = openat(dir, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(dir);
		if ((dir = fd) < 0)
			return -1;
		p = slash + 1;
	}
	if (*p == '\0' || *p == '.')
		goto fail;
	fd = openat(dir, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	close(dir);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) ||
	    st->st_size > MAX_FILE) {
		close(fd);
		return -1;
	}
	return fd;
fail:
	close(dir);
	return -1;
}

/* Does If-None-Match name etag? ("*" too.) */
static bool
etag_matches(const struct hconn *c, const char *etag)
{
	const char *inm = input_header(c, "If-None-Match");

	return inm != NULL && (strstr(inm, etag) != NULL ||
	    strcmp(inm, "*") == 0);
}

/* HEAD gets the same head, Content-Length included (reply_buffer leaves
 * the body out). */
static void
serve_file(struct hconn *c, struct http_exchange *x, const char *path)
{
	struct evbuffer_file_segment *seg;
	struct evbuffer *b;
	const char *type;
	struct stat st;
	char etag[64];
	int fd;

	if (strcmp(path, "/") == 0)
		path = "/index.html";
	if ((type = content_type_of(path)) == NULL) {
		not_found(x);
		return;
	}
	if ((fd = open_under(x->h->www_dir, path, &st)) < 0) {
		not_found(x);
		return;
	}
	/* Size and modification time: changes whenever the file does. */
	snprintf(etag, sizeof etag, "\"%llx-%llx\"",
	    (unsigned long long)st.st_size,
	    (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
	    (unsigned long long)st.st_mtim.tv_nsec);
	http_add_header(x, "ETag", etag);
	/* Pages are revalidated every time, so a new version of the desk
	 * is seen at once; the rest may be kept a few minutes. */
	http_add_header(x, "Cache-Control", strncmp(type, "text/html", 9) == 0
	    ? "no-cache" : "max-age=300");
	if (etag_matches(c, etag)) {
		close(fd);
		http_reply(x, 304, NULL, NULL, 0);
		return;
	}
	if ((b = evbuffer_new()) == NULL)
		fatal("http: out of memory");
	/* Mapped or read, not sendfile(2): the bytes go through TLS. The
	 * segment takes fd and closes it once the data is out. */
	if (st.st_size > 0) {
		seg = evbuffer_file_segment_new(fd, 0, st.st_size,
		    EVBUF_FS_DISABLE_SENDFILE | EVBUF_FS_CLOSE_ON_FREE);
		if (seg == NULL || evbuffer_add_file_segment(b, seg, 0,
		    st.st_size) != 0) {
			if (seg != NULL)
				evbuffer_file_segment_free(seg);
			else
				close(fd);
			evbuffer_free(b);
			log_warn("%s: cannot read %s", x->tag, path);
			http_reply_text(x, 500, "Erreur interne. / Internal "
			    "error.");
			return;
		}
		evbuffer_file_segment_free(seg);
	} else
		close(fd);
	reply_buffer(x, 200, type, b);
	evbuffer_free(b);
}

/* ---- QR images --------------------------------------------------------- */

static bool
rate_allowed(struct http *h, const char *addr)
{
	unsigned hash = 5381;
	const char *p;
	struct qr_bucket *b;
	uint64_t now = now_ms();

	for (p = addr; *p; p++)
		hash = hash * 33 + (unsigned char)*p;
	b = &h->qr[hash % QR_SLOTS];
	if (strcmp(b->addr, addr) != 0) {
		snprintf(b->addr, sizeof b->addr, "%s", addr);
		b->tokens = QR_BURST;
		b->at_ms = now;
	}
	b->tokens += (double)(now - b->at_ms) / 1000.0 * QR_RATE;
	if (b->tokens > QR_BURST)
		b->tokens = QR_BURST;
	b->at_ms = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

static void
too_many(struct http_exchange *x)
{
	http_add_header(x, "Retry-After", "1");
	http_reply_text(x, 429, "Trop de demandes ; réessayez dans un "
	    "instant. / Too many requests; try again shortly.");
}

/* /qr/CODE.svg: CODE as a person may type it (ticket_parse). */
static void
serve_qr(struct http_exchange *x, const char *name)
{
	char code[TICKET_DISPLAY_LEN + 1];
	size_t n = strlen(name), len;
	char *svg;

	if (n < 5 || strcmp(name + n - 4, ".svg") != 0 ||
	    ticket_parse(name, n - 4, code) != TICKET_OK) {
		not_found(x);
		return;
	}
	if (!rate_allowed(x->h, x->addr)) {
		too_many(x);
		return;
	}
	if ((svg = qr_svg(code, &len, NULL)) == NULL) {
		not_found(x);
		return;
	}
	http_add_header(x, "Cache-Control", "private, max-age=86400");
	http_reply(x, 200, "image/svg+xml", svg, len);
	free(svg);
}

/* ---- routing ----------------------------------------------------------- */

static void
route_rpc(struct hconn *c, struct http_exchange *x)
{
	char token[160];

	if (!json_content_type(c)) {
		http_reply_text(x, 415, "Content-Type doit être "
		    "application/json. / Content-Type must be "
		    "application/json.");
		return;
	}
	http_add_header(x, "Cache-Control", "no-store");
	x->h->cb->rpc(x, c->body != NULL ? c->body : "",
	    c->msg.content_length, session_cookie(c, token, sizeof token),
	    x->h->arg);
	explicit_bzero(token, sizeof token);
}

static void
route_events(struct hconn *c, struct http_exchange *x)
{
	const char *q = strchr(c->msg.target, '?'), *topics = NULL;
	struct evkeyvalq params;
	char token[160];

	TAILQ_INIT(&params);
	if (q != NULL && evhttp_parse_query_str(q + 1, &params) == 0)
		topics = evhttp_find_header(&params, "topics");
	x->h->cb->events(x, topics != NULL ? topics : "",
	    session_cookie(c, token, sizeof token), x->h->arg);
	explicit_bzero(token, sizeof token);
	evhttp_clear_headers(&params);
}

/* /p/ID.ics */
static bool
ics_id(const char *path, long long *id)
{
	char digits[24];
	size_t n;

	if (strncmp(path, "/p/", 3) != 0)
		return false;
	n = strspn(path + 3, "0123456789");
	if (n == 0 || n >= sizeof digits || strcmp(path + 3 + n, ".ics") != 0)
		return false;
	memcpy(digits, path + 3, n);
	digits[n] = '\0';
	return parse_ll(digits, 1, INT64_MAX, id);
}

/* One request, read whole: c->msg and c->body stay until the next one. */
static void
route(struct hconn *c, struct http_exchange *x)
{
	struct http *h = c->h;
	const char *m = c->msg.method;
	bool post = strcmp(m, "POST") == 0;
	bool get = strcmp(m, "GET") == 0 || c->head_only;
	char path[MAX_PATH];
	long long id;

	if (h->draining || h->nconns > h->limits.max_connections) {
		c->keep_alive = false;
		http_reply_text(x, 503, h->draining ? "Le serveur s'arrête. / "
		    "The server is stopping." : "Trop de connexions. / Too "
		    "many connections.");
		return;
	}
	if (post && !origin_ok(h, c)) {
		log_info("%s: POST refused: Origin missing or not the desk's",
		    x->tag);
		http_reply_text(x, 403, "Origine refusée. / Origin refused.");
		return;
	}
	if (!path_decode(c->msg.target, path, sizeof path)) {
		http_reply_text(x, 400, "Chemin invalide. / Bad path.");
		return;
	}
	if (strcmp(path, "/rpc") == 0) {
		if (!post)
			method_not_allowed(x, "POST");
		else
			route_rpc(c, x);
	} else if (strcmp(path, "/events") == 0) {
		if (strcmp(m, "GET") != 0)
			method_not_allowed(x, "GET");
		else
			route_events(c, x);
	} else if (!get) {
		method_not_allowed(x, "GET, HEAD");
	} else if (strcmp(path, "/metrics") == 0 && h->cb->metrics != NULL) {
		h->cb->metrics(x, h->arg);
	} else if (strcmp(path, "/healthz") == 0) {
		if (h->cb->healthy(h->arg))
			http_reply_text(x, 200, "ok");
		else
			http_reply_text(x, 503, "unavailable");
	} else if (strncmp(path, "/qr/", 4) == 0) {
		serve_qr(x, path + 4);
	} else if (ics_id(path, &id)) {
		if (rate_allowed(h, x->addr))
			h->cb->ics(x, id, h->arg);
		else
			too_many(x);
	} else {
		serve_file(c, x, path);
	}
}

/* ---- connections ------------------------------------------------------- */

/* Forgets the request just answered; its bytes may hold a password or a
 * cookie. */
static void
hconn_reset(struct hconn *c)
{
	if (c->head != NULL) {
		explicit_bzero(c->head, c->head_cap);
		free(c->head);
	}
	if (c->body != NULL) {
		explicit_bzero(c->body, c->msg.content_length);
		free(c->body);
	}
	c->head = c->body = NULL;
	c->head_cap = c->head_len = c->scanned = 0;
	memset(&c->msg, 0, sizeof c->msg);
	c->started = c->head_only = false;
}

/* Pipelined requests wait in the input: no more than one request (head
 * and body, under the current limits) and a little more are read ahead. */
static void
read_ahead(struct hconn *c)
{
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	    c->h->limits.max_headers + c->h->limits.max_body + 4096);
}

/* Empty lines before a request are ignored (RFC 9112, 2.2). */
static void
skip_empty_lines(struct evbuffer *in)
{
	while (evbuffer_get_length(in) >= 2 &&
	    memcmp(evbuffer_pullup(in, 2), "\r\n", 2) == 0)
		evbuffer_drain(in, 2);
}

/* Moves what has come into the head buffer, which grows by doubling up
 * to max_headers: each byte is copied once and scanned once. */
static void
take_head_bytes(struct hconn *c, struct evbuffer *in)
{
	size_t max = c->h->limits.max_headers, want, cap;

	want = evbuffer_get_length(in);
	if (c->head_len >= max)         /* max_headers lowered by a reload */
		want = 0;
	else if (want > max - c->head_len)
		want = max - c->head_len;
	if (c->head_len + want > c->head_cap) {
		for (cap = c->head_cap > 0 ? c->head_cap : HEAD_CHUNK;
		    cap < c->head_len + want; cap *= 2)
			;
		if (cap > max)
			cap = max;
		c->head = realloc(c->head, cap);
		if (c->head == NULL)
			fatal("http: out of memory");
		c->head_cap = cap;
	}
	evbuffer_remove(in, c->head + c->head_len, want);
	c->head_len += want;
}

static void dispatch(struct hconn *c);

/* True if the state moved on (a body to read, or dispatched). */
static bool
read_head(struct hconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct httpmsg_refusal why;
	size_t end = 0;

	if (c->head_len == 0)
		skip_empty_lines(in);
	if (evbuffer_get_length(in) == 0)
		return false;
	c->started = true;
	take_head_bytes(c, in);
	switch (httpmsg_scan(c->head, c->head_len, c->h->limits.max_headers,
	    &c->scanned, &end, &why)) {
	case HTTPMSG_MORE:
		return false;
	case HTTPMSG_REFUSED:
		refuse(c, why.status, why.reason);
		return false;
	case HTTPMSG_HEAD:
		break;
	}
	/* What follows the head is the body, or the next request. */
	if (c->head_len > end)
		evbuffer_prepend(in, c->head + end, c->head_len - end);
	c->head_len = end;
	if (!httpmsg_parse(c->head, end, c->h->limits.max_body, &c->msg,
	    &why)) {
		refuse(c, why.status, why.reason);
		return false;
	}
	c->keep_alive = c->msg.keep_alive;
	c->head_only = strcmp(c->msg.method, "HEAD") == 0;
	if (c->msg.content_length == 0) {
		dispatch(c);
		return true;
	}
	c->state = HC_BODY;
	read_ahead(c);
	/* curl waits for this before a body over 1 KiB. */
	if (c->msg.expect_continue &&
	    evbuffer_get_length(in) < c->msg.content_length)
		evbuffer_add(bufferevent_get_output(c->bev),
		    "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return true;
}

static bool
read_body(struct hconn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t n = c->msg.content_length;

	if (evbuffer_get_length(in) < n)
		return false;
	c->body = xmalloc(n + 1);
	evbuffer_remove(in, c->body, n);
	c->body[n] = '\0';
	dispatch(c);
	return true;
}

/* Reads requests while the connection is reading them. */
static void
hconn_process(struct hconn *c)
{
	for (;;) {
		if (c->state == HC_HEAD) {
			if (!read_head(c))
				return;
		} else if (c->state == HC_BODY) {
			if (!read_body(c))
				return;
		} else
			return;
	}
}

static void
dispatch(struct hconn *c)
{
	evtimer_del(c->timer);
	c->state = HC_BUSY;
	c->x = exchange_new(c);
	route(c, c->x);
}

static void
start_linger(struct hconn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	c->state = HC_LINGER;
	/* close_notify: the client knows the answer is whole. */
	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	arm_timer(c, LINGER_S);
}

/* The output is empty: the next request, or the end. */
static void
after_write(struct hconn *c)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		return;
	if (c->state == HC_FLUSH) {
		hconn_reset(c);
		c->state = HC_HEAD;
		arm_timer(c, c->h->limits.timeout);
		hconn_process(c);
	} else if (c->state == HC_LAST) {
		if (c->linger)
			start_linger(c);
		else
			hconn_close(c, NULL);
	}
}

/*
 * The bufferevent's callbacks are deferred: one queued before the close
 * may still run after it (docs/architecture.md). Once CLOSED they return
 * at once; bufferevent_free() then drops any still queued.
 */
static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct hconn *c = arg;

	if (c->state == HC_HEAD || c->state == HC_BODY)
		hconn_process(c);
	else if (c->state == HC_LINGER)
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct hconn *c = arg;

	if (c->state != HC_CLOSED)
		after_write(c);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct hconn *c = arg;
	unsigned long e;
	char buf[256];

	if (c->state == HC_CLOSED || (what & BEV_EVENT_CONNECTED))
		return;
	if (what & BEV_EVENT_EOF) {
		hconn_close(c, NULL);
		return;
	}
	e = bufferevent_get_openssl_error(bev);
	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		while (bufferevent_get_openssl_error(bev) != 0)
			;
	} else
		snprintf(buf, sizeof buf, "%s", evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	log_debug("http %s:%s: %s", c->addr, c->port, buf);
	hconn_close(c, NULL);
}

/* [http] timeout: for a whole request head and body from the first byte
 * (a client sending slowly gains nothing), for an idle connection, and
 * for a client to read its answer. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hconn *c = arg;

	switch (c->state) {
	case HC_HEAD:
		if (!c->started) {
			hconn_close(c, NULL);   /* idle, or no TLS */
			break;
		}
		/* FALLTHROUGH */
	case HC_BODY:
		refuse(c, 408, "request not received in time");
		break;
	case HC_FLUSH:
	case HC_LAST:
		hconn_close(c, "client did not read its answer");
		break;
	case HC_LINGER:
		hconn_close(c, NULL);
		break;
	case HC_BUSY:
	case HC_CLOSED:
		break;
	}
}

static void
soon_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hconn *c = arg;

	if (c->state != HC_CLOSED)
		after_write(c);
}

static void
hconn_free(struct hconn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	/* libevent never sends close_notify itself. */
	if (ssl != NULL && SSL_is_init_finished(ssl) &&
	    !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		SSL_shutdown(ssl);
	bufferevent_free(c->bev);
	event_free(c->timer);
	event_free(c->soon);
	hconn_reset(c);
	addrcount_drop(c->h->addrs, c->from);
	free(c);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct hconn *c;

	while ((c = TAILQ_FIRST(&h->dead)) != NULL) {
		TAILQ_REMOVE(&h->dead, c, entry);
		hconn_free(c);
	}
}

/* Never frees inside a callback of c: after this loop pass (reap). An
 * exchange still open hears gone() from the loop. */
static void
hconn_close(struct hconn *c, const char *why)
{
	struct http *h = c->h;
	struct http_exchange *x = c->x;

	if (c->state == HC_CLOSED)
		return;
	if (why != NULL)
		log_info("http %s:%s closed: %s", c->addr, c->port, why);
	c->state = HC_CLOSED;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evtimer_del(c->timer);
	event_del(c->soon);
	if (x != NULL) {
		c->x = NULL;
		x->c = NULL;
		log_debug("%s: client left before the answer", x->tag);
		schedule_gone(x);
	}
	TAILQ_REMOVE(&h->conns, c, entry);
	h->nconns--;
	TAILQ_INSERT_TAIL(&h->dead, c, entry);
	event_active(h->reap, EV_TIMEOUT, 0);
}

/* A connection to serve as coming from sa: the client's own address, or
 * the one its balancer's PROXY header gave. */
static void
accept_client(struct http *h, evutil_socket_t fd, const struct sockaddr *sa,
    int salen)
{
	struct hconn *c;
	char addr[64], port[16];
	SSL *ssl;
	int one = 1;

	if (getnameinfo(sa, (socklen_t)salen, addr, sizeof addr, port,
	    sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(addr, sizeof addr, "?");
		snprintf(port, sizeof port, "?");
	}
	/* Closed at once, as on the line listener: an answer would cost a
	 * TLS handshake to whoever is flooding. */
	if (addrcount_open(h->addrs, addr) >= h->limits.max_per_address) {
		log_warn("http: refusing connection from %s: too many "
		    "connections from this address "
		    "(max_connections_per_address %zu)", addr,
		    h->limits.max_per_address);
		metrics_add(M_CONN_REFUSED, 1, "http", "max_per_address");
		evutil_closesocket(fd);
		return;
	}
	if ((ssl = SSL_new(h->ctx)) == NULL) {
		log_error("http: SSL_new failed");
		metrics_add(M_CONN_REFUSED, 1, "http", "tls_error");
		evutil_closesocket(fd);
		return;
	}
	/* Small answers and events: Nagle would hold them back. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c = xcalloc(1, sizeof *c);
	c->h = h;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	snprintf(c->port, sizeof c->port, "%s", port);
	c->bev = bufferevent_openssl_socket_new(h->base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_error("http: cannot make a TLS bufferevent");
		SSL_free(ssl);
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	if ((c->timer = evtimer_new(h->base, timer_cb, c)) == NULL ||
	    (c->soon = event_new(h->base, -1, 0, soon_cb, c)) == NULL)
		fatal("http: out of memory");
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	read_ahead(c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = HC_HEAD;
	arm_timer(c, h->limits.timeout);        /* TLS and the first head */
	TAILQ_INSERT_TAIL(&h->conns, c, entry);
	h->nconns++;
	c->from = addrcount_take(h->addrs, c->addr);
	metrics_add(M_CONN_ACCEPTED, 1, "http");
}

/* A balancer's PROXY header has been read: the per-address cap and
 * everything after it see the client it names. */
static void
proxy_done(evutil_socket_t fd, const struct sockaddr *sa, int salen,
    void *arg)
{
	accept_client(arg, fd, sa, salen);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct http *h = arg;

	/* Only a trusted balancer's header is read; anyone else is served
	 * as itself (docs/operations.md, "Behind a load balancer"). */
	if (h->proxy_protocol && netlist_match(&h->proxy_from, sa)) {
		if (proxywait_pending(h->proxy) >= h->limits.max_connections) {
			log_warn("http: refusing connection from a balancer: "
			    "%zu PROXY headers awaited (max_connections)",
			    proxywait_pending(h->proxy));
			evutil_closesocket(fd);
			return;
		}
		proxywait_add(h->proxy, fd, sa, salen, h->limits.timeout);
		return;
	}
	accept_client(h, fd, sa, salen);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	size_t i;

	if (h->draining)
		return;
	for (i = 0; i < h->nlisteners; i++)
		evconnlistener_enable(h->listeners[i]);
}

/* Out of descriptors: accept() fails at once and would spin; pause the
 * listeners for a moment instead. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct http *h = arg;
	struct timeval tv = {0, 200000};
	int err = EVUTIL_SOCKET_ERROR();

	log_warn("http accept: %s", evutil_socket_error_to_string(err));
	metrics_add(M_CONN_REFUSED, 1, "http", "accept_error");
	evconnlistener_disable(l);
	evtimer_add(h->resume, &tv);
}

/* ---- the server -------------------------------------------------------- */

/* Open connections by state, counted at scrape time (docs/operations.md,
 * "Metrics"): idle between requests, reading one, busy (its answer is
 * being made above), writing it, streaming events, lingering after a
 * refusal. */
static void
http_collect(void *arg)
{
	static const char *const names[] = {"idle", "reading", "busy",
	    "writing", "streaming", "lingering"};
	struct http *h = arg;
	const struct hconn *c;
	size_t n[nitems(names)] = {0}, i;

	TAILQ_FOREACH(c, &h->conns, entry) {
		if (c->x != NULL && c->x->streaming)
			n[4]++;
		else if (c->state == HC_HEAD)
			n[c->started ? 1 : 0]++;
		else if (c->state == HC_BODY)
			n[1]++;
		else if (c->state == HC_BUSY)
			n[2]++;
		else if (c->state == HC_LINGER)
			n[5]++;
		else
			n[3]++;
	}
	for (i = 0; i < nitems(names); i++)
		metrics_set(M_CONNECTIONS, (double)n[i], "http", names[i]);
}

struct http *
http_new(struct event_base *base, SSL_CTX *ctx,
    const struct http_limits *limits, const struct http_settings *settings,
    struct addrcount *addrs, const struct http_callbacks *cb, void *arg)
{
	struct http *h = xcalloc(1, sizeof *h);
	struct timeval ka = {KEEPALIVE_S, 0};

	h->base = base;
	h->addrs = addrs;
	h->cb = cb;
	h->arg = arg;
	h->proxy = proxywait_new(base, "http", proxy_done, h);
	TAILQ_INIT(&h->exchanges);
	TAILQ_INIT(&h->conns);
	TAILQ_INIT(&h->dead);
	http_set_tls(h, ctx);
	http_set_limits(h, limits);
	http_set_settings(h, settings);
	if ((h->reap = event_new(base, -1, 0, reap_cb, h)) == NULL ||
	    (h->resume = evtimer_new(base, listener_resume_cb, h)) == NULL ||
	    (h->keepalive = event_new(base, -1, EV_PERSIST, keepalive_cb,
	    h)) == NULL)
		fatal("http: out of memory");
	event_add(h->keepalive, &ka);
	metrics_collector_add(http_collect, h);
	return h;
}

bool
http_listen(struct http *h, const char *spec)
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
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	/* Start-up only: a blocking lookup is harmless here. */
	rc = getaddrinfo(host, port, &hints, &ai);
	free(host);
	free(port);
	if (rc != 0) {
		log_error("http listen %s: %s", spec, gai_strerror(rc));
		return false;
	}
	for (p = ai; p != NULL && h->nlisteners < MAX_LISTENERS;
	    p = p->ai_next) {
		l = evconnlistener_new_bind(h->base, accept_cb, h,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		    LEV_OPT_CLOSE_ON_EXEC, 511, p->ai_addr, (int)p->ai_addrlen);
		if (l == NULL) {
			log_error("cannot listen (http) on %s: %s", spec,
			    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
			freeaddrinfo(ai);
			return false;
		}
		evconnlistener_set_error_cb(l, accept_error_cb);
		h->listeners[h->nlisteners++] = l;
		log_info("listening (https) on %s", spec);
	}
	freeaddrinfo(ai);
	return true;
}

void
http_set_tls(struct http *h, SSL_CTX *ctx)
{
	SSL_CTX_up_ref(ctx);
	SSL_CTX_free(h->ctx);
	h->ctx = ctx;
}

/* Heads and bodies being read keep the limits they started with only as
 * far as their buffers go; new reads use these. */
void
http_set_limits(struct http *h, const struct http_limits *limits)
{
	h->limits = *limits;
}

void
http_set_settings(struct http *h, const struct http_settings *s)
{
	size_t i;

	for (i = 0; i < h->norigins; i++)
		free(h->origins[i]);
	free(h->origins);
	free(h->www_dir);
	h->www_dir = xstrdup(s->www_dir != NULL ? s->www_dir : "");
	h->norigins = s->norigins;
	h->origins = xcalloc(s->norigins + 1, sizeof *h->origins);
	for (i = 0; i < s->norigins; i++)
		h->origins[i] = xstrdup(s->origins[i]);
	h->proxy_protocol = s->proxy_protocol && s->proxy_from != NULL;
	if (s->proxy_from != NULL)
		h->proxy_from = *s->proxy_from;
}

static void
close_listeners(struct http *h)
{
	size_t i;

	for (i = 0; i < h->nlisteners; i++)
		evconnlistener_free(h->listeners[i]);
	h->nlisteners = 0;
}

void
http_drain(struct http *h)
{
	struct http_exchange *x, *next;
	struct hconn *c, *cnext;

	h->draining = true;
	close_listeners(h);
	proxywait_free(h->proxy);
	h->proxy = NULL;
	evtimer_del(h->resume);
	for (x = TAILQ_FIRST(&h->exchanges); x != NULL; x = next) {
		next = TAILQ_NEXT(x, entry);
		if (x->streaming && !x->ended) {
			if (h->cb->gone != NULL)
				h->cb->gone(x, x->xarg);
			http_stream_end(x);
		}
	}
	/* Idle connections wait for nothing. */
	for (c = TAILQ_FIRST(&h->conns); c != NULL; c = cnext) {
		cnext = TAILQ_NEXT(c, entry);
		if (c->state == HC_HEAD && !c->started)
			hconn_close(c, NULL);
	}
}

size_t
http_active(const struct http *h)
{
	const struct http_exchange *x;
	size_t n = 0;

	TAILQ_FOREACH(x, &h->exchanges, entry)
		if (!x->ended)
			n++;
	return n;
}

void
http_free(struct http *h)
{
	struct http_exchange *x;
	struct hconn *c;
	size_t i;

	if (h == NULL)
		return;
	metrics_collector_remove(http_collect, h);
	/* Exchanges still open hear they are gone (a scheduled gone() is
	 * cancelled: it comes now); then the connections go. */
	while ((x = TAILQ_FIRST(&h->exchanges)) != NULL) {
		if (x->c != NULL)
			x->c->x = NULL;
		x->c = NULL;
		if (!x->ended && h->cb->gone != NULL) {
			x->ended = true;
			h->cb->gone(x, x->xarg);
		}
		exchange_free(x);
	}
	while ((c = TAILQ_FIRST(&h->conns)) != NULL) {
		TAILQ_REMOVE(&h->conns, c, entry);
		hconn_free(c);
	}
	reap_cb(-1, 0, h);
	close_listeners(h);
	proxywait_free(h->proxy);
	event_free(h->reap);
	event_free(h->resume);
	event_free(h->keepalive);
	for (i = 0; i < h->norigins; i++)
		free(h->origins[i]);
	free(h->origins);
	free(h->www_dir);
	SSL_CTX_free(h->ctx);
	free(h);
}
