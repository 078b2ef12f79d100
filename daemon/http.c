#include "http.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "qr.h"
#include "ticket.h"
#include "util.h"

#define MAX_PATH 1024           /* bytes of a decoded request path */
#define MAX_FILE (16 << 20)     /* a static file larger is refused */
#define KEEPALIVE_S 25          /* ": keepalive" on event streams */
#define STREAM_TIMEOUT_S 86400  /* an event stream's read/write timeout */
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

struct http_exchange {
	struct http *h;
	struct evhttp_request *req;     /* NULL once the client is gone */
	struct evhttp_connection *evcon;
	void *xarg;
	bool ended;                     /* the layer above ended it */
	bool streaming;
	bool gone_pending;              /* gone() is scheduled */
	struct event *gone_ev;          /* ...by this timer */
	char addr[64];
	char tag[96];
	TAILQ_ENTRY(http_exchange) entry;
};

struct http {
	struct event_base *base;
	struct evhttp *evh;
	SSL_CTX *ctx;                   /* a reference of ours */
	struct http_limits limits;
	char *www_dir;
	char **origins;
	size_t norigins;
	const struct http_callbacks *cb;
	void *arg;
	TAILQ_HEAD(, http_exchange) exchanges;
	size_t nexchanges;
	uint64_t next_id;
	bool draining;
	struct event *keepalive;
	struct evhttp_bound_socket *bound[MAX_LISTENERS];
	size_t nbound;
	struct qr_bucket qr[QR_SLOTS];
};

/* Open HTTPS connections: counted with their SSL objects, which libevent
 * frees with the connection (an ex_data free callback), so a connection
 * that never sends a request is counted too. */
static size_t http_conns;
static int conn_index = -1;

static void exchange_free(struct http_exchange *x);
static void schedule_gone(struct http_exchange *x);

static void
conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	if (ptr == &http_conns)
		http_conns--;
}

/* ---- answers ----------------------------------------------------------- */

/* On every answer of ours (docs/http.md, "Headers"). */
static void
add_common_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Server", "strapontind");
	evhttp_add_header(h, "Content-Security-Policy", "default-src 'self'; "
	    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
	    "form-action 'self'");
	evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

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
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

/* The exchange is over for the layer above: freed now unless gone() is
 * still to come from the loop, which frees it then. */
static void
exchange_end(struct http_exchange *x)
{
	x->ended = true;
	if (x->req != NULL)
		evhttp_connection_set_closecb(x->evcon, NULL, NULL);
	x->req = NULL;
	if (!x->gone_pending)
		exchange_free(x);
}

void
http_reply(struct http_exchange *x, int status, const char *ctype,
    const char *body, size_t len)
{
	struct evkeyvalq *h;
	struct evbuffer *b;

	if (x->ended)
		fatal("http: exchange %s ended twice", x->tag);
	if (x->req != NULL) {
		h = evhttp_request_get_output_headers(x->req);
		if (ctype != NULL)
			evhttp_add_header(h, "Content-Type", ctype);
		if ((b = evbuffer_new()) == NULL)
			fatal("http: out of memory");
		if (body != NULL && len > 0)
			evbuffer_add(b, body, len);
		evhttp_connection_set_closecb(x->evcon, NULL, NULL);
		evhttp_send_reply(x->req, status, status_text(status), b);
		evbuffer_free(b);
		x->req = NULL;
	}
	exchange_end(x);
}

void
http_reply_text(struct http_exchange *x, int status, const char *message)
{
	char buf[256];
	int n = snprintf(buf, sizeof buf, "%s\n", message);

	if (x->req != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(x->req),
		    "Cache-Control", "no-store");
	http_reply(x, status, "text/plain; charset=utf-8", buf,
	    n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}

void
http_add_header(struct http_exchange *x, const char *name, const char *value)
{
	if (x->req != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(x->req),
		    name, value);
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
	struct bufferevent *bev = evhttp_connection_get_bufferevent(x->evcon);

	return evbuffer_get_length(bufferevent_get_output(bev));
}

void
http_stream_start(struct http_exchange *x)
{
	struct evkeyvalq *h;

	if (x->req == NULL)
		return;
	h = evhttp_request_get_output_headers(x->req);
	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-store");
	/* A reverse proxy must pass events on at once (nginx). */
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	/* The stream outlives the request timeout; a client that stops
	 * reading is caught by max_output instead. */
	evhttp_connection_set_timeout(x->evcon, STREAM_TIMEOUT_S);
	evhttp_send_reply_start(x->req, 200, "OK");
	x->streaming = true;
}

static void
stream_write(struct http_exchange *x, const char *a, size_t alen,
    const char *b, size_t blen, const char *c, size_t clen)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL)
		fatal("http: out of memory");
	evbuffer_add(buf, a, alen);
	evbuffer_add(buf, b, blen);
	evbuffer_add(buf, c, clen);
	evhttp_send_reply_chunk(x->req, buf);
	evbuffer_free(buf);
}

bool
http_stream_event(struct http_exchange *x, const char *line, size_t len,
    bool force)
{
	size_t out;

	if (x->req == NULL || !x->streaming)
		return true;    /* gone: what it misses does not matter */
	out = stream_output(x);
	if (out > x->h->limits.max_output && !force)
		return false;
	if (out > 2 * x->h->limits.max_output) {
		/* Ended here, but the layer above, inside whose call this
		 * is, hears of it from the loop, as if the client had left. */
		log_warn("%s: event stream ended: the client reads too slowly",
		    x->tag);
		evhttp_connection_set_closecb(x->evcon, NULL, NULL);
		evhttp_send_reply_end(x->req);
		x->req = NULL;
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
	if (x->req != NULL) {
		evhttp_connection_set_closecb(x->evcon, NULL, NULL);
		if (x->streaming)
			evhttp_send_reply_end(x->req);
		else
			evhttp_send_reply(x->req, 503, status_text(503), NULL);
		x->req = NULL;
	}
	exchange_end(x);
}

static void
keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct http_exchange *x;

	TAILQ_FOREACH(x, &h->exchanges, entry)
		if (x->streaming && x->req != NULL && !x->ended &&
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

/* The connection goes (the client left, a timeout, shutdown). A request
 * the layer above still answers has been detached from it by libevent
 * and is ours to free; the layer above hears of it from the loop. */
static void
closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct http_exchange *x = arg;
	struct evhttp_request *req = x->req;

	if (req == NULL)
		return;
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	x->req = NULL;
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
	log_debug("%s: client left before the answer", x->tag);
	schedule_gone(x);
}

static struct http_exchange *
exchange_new(struct http *h, struct evhttp_request *req)
{
	struct http_exchange *x = xcalloc(1, sizeof *x);
	char *addr = NULL;
	ev_uint16_t port = 0;

	x->h = h;
	x->req = req;
	x->evcon = evhttp_request_get_connection(req);
	evhttp_connection_get_peer(x->evcon, &addr, &port);
	snprintf(x->addr, sizeof x->addr, "%s", addr != NULL ? addr : "?");
	snprintf(x->tag, sizeof x->tag, "H-%llu %s:%u",
	    (unsigned long long)++h->next_id, x->addr, (unsigned)port);
	evhttp_connection_set_closecb(x->evcon, closed_cb, x);
	add_common_headers(req);
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
input_header(struct evhttp_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

/* CSRF: a POST must come from a page of the desk itself. */
static bool
origin_ok(const struct http *h, struct evhttp_request *req)
{
	const char *origin = input_header(req, "Origin");
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
	host = input_header(req, "Host");
	return host != NULL && *host != '\0' &&
	    strncasecmp(origin, "https://", 8) == 0 &&
	    strcasecmp(origin + 8, host) == 0;
}

/* application/json, with parameters (charset) or not. */
static bool
json_content_type(struct evhttp_request *req)
{
	const char *ct = input_header(req, "Content-Type");
	size_t n;

	if (ct == NULL)
		return false;
	n = strcspn(ct, "; \t");
	return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* The session cookie's value, if well-formed (base64url, as tokens are
 * made), into out; NULL otherwise. */
static const char *
session_cookie(struct evhttp_request *req, char *out, size_t outlen)
{
	static const char name[] = HTTP_SESSION_COOKIE "=";
	const char *c = input_header(req, "Cookie");
	const char *p;
	size_t n, i;

	for (p = c; p != NULL && *p != '\0'; ) {
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
etag_matches(struct evhttp_request *req, const char *etag)
{
	const char *inm = input_header(req, "If-None-Match");

	return inm != NULL && (strstr(inm, etag) != NULL ||
	    strcmp(inm, "*") == 0);
}

static void
serve_file(struct http_exchange *x, const char *path, bool head)
{
	struct evbuffer_file_segment *seg;
	struct evbuffer *b;
	const char *type;
	struct stat st;
	char etag[64], clen[32];
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
	if (etag_matches(x->req, etag)) {
		close(fd);
		http_reply(x, 304, NULL, NULL, 0);
		return;
	}
	http_add_header(x, "Content-Type", type);
	if (head) {
		close(fd);
		snprintf(clen, sizeof clen, "%lld", (long long)st.st_size);
		http_add_header(x, "Content-Length", clen);
		http_reply(x, 200, NULL, NULL, 0);
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
	evhttp_connection_set_closecb(x->evcon, NULL, NULL);
	evhttp_send_reply(x->req, 200, "OK", b);
	evbuffer_free(b);
	x->req = NULL;
	exchange_end(x);
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
route_rpc(struct http_exchange *x, enum evhttp_cmd_type m)
{
	struct evhttp_request *req = x->req;
	struct evbuffer *in;
	char token[160];

	if (m != EVHTTP_REQ_POST) {
		method_not_allowed(x, "POST");
		return;
	}
	if (!json_content_type(req)) {
		http_reply_text(x, 415, "Content-Type doit être "
		    "application/json. / Content-Type must be "
		    "application/json.");
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	http_add_header(x, "Cache-Control", "no-store");
	x->h->cb->rpc(x, (const char *)evbuffer_pullup(in, -1),
	    evbuffer_get_length(in), session_cookie(req, token, sizeof token),
	    x->h->arg);
	explicit_bzero(token, sizeof token);
}

static void
route_events(struct http_exchange *x)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(x->req);
	const char *q = evhttp_uri_get_query(u), *topics = NULL;
	struct evkeyvalq params;
	char token[160];

	TAILQ_INIT(&params);
	if (q != NULL && evhttp_parse_query_str(q, &params) == 0)
		topics = evhttp_find_header(&params, "topics");
	x->h->cb->events(x, topics != NULL ? topics : "",
	    session_cookie(x->req, token, sizeof token), x->h->arg);
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

static void
request_cb(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	struct http_exchange *x = exchange_new(h, req);
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	bool get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
	char path[MAX_PATH];
	long long id;

	if (h->draining || http_conns > h->limits.max_connections) {
		http_add_header(x, "Connection", "close");
		http_reply_text(x, 503, h->draining ? "Le serveur s'arrête. / "
		    "The server is stopping." : "Trop de connexions. / Too "
		    "many connections.");
		return;
	}
	if (m == EVHTTP_REQ_POST && !origin_ok(h, req)) {
		log_info("%s: POST refused: Origin missing or not the desk's",
		    x->tag);
		http_reply_text(x, 403, "Origine refusée. / Origin refused.");
		return;
	}
	if (!path_decode(evhttp_request_get_uri(req), path, sizeof path)) {
		http_reply_text(x, 400, "Chemin invalide. / Bad path.");
		return;
	}
	if (strcmp(path, "/rpc") == 0) {
		route_rpc(x, m);
	} else if (strcmp(path, "/events") == 0) {
		if (m != EVHTTP_REQ_GET)
			method_not_allowed(x, "GET");
		else
			route_events(x);
	} else if (!get) {
		method_not_allowed(x, "GET, HEAD");
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
		serve_file(x, path, m == EVHTTP_REQ_HEAD);
	}
}

/* Each connection speaks TLS with the current context. */
static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
	struct http *h = arg;
	struct bufferevent *bev;
	SSL *ssl;

	/* Returning NULL would make libevent speak plain HTTP on the
	 * socket: out of memory here is fatal. */
	if ((ssl = SSL_new(h->ctx)) == NULL)
		fatal("http: SSL_new failed");
	SSL_set_ex_data(ssl, conn_index, &http_conns);
	http_conns++;
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatal("http: cannot make a TLS bufferevent");
	return bev;
}

/* ---- the server -------------------------------------------------------- */

static void
apply_limits(struct http *h)
{
	evhttp_set_max_body_size(h->evh, (ev_ssize_t)h->limits.max_body);
	evhttp_set_max_headers_size(h->evh, (ev_ssize_t)h->limits.max_headers);
	evhttp_set_timeout(h->evh, h->limits.timeout);
}

struct http *
http_new(struct event_base *base, SSL_CTX *ctx,
    const struct http_limits *limits, const struct http_settings *settings,
    const struct http_callbacks *cb, void *arg)
{
	struct http *h = xcalloc(1, sizeof *h);
	struct timeval ka = {KEEPALIVE_S, 0};

	if (conn_index < 0 && (conn_index = SSL_get_ex_new_index(0, NULL,
	    NULL, NULL, conn_ex_free)) < 0)
		fatal("http: SSL_get_ex_new_index failed");
	h->base = base;
	h->cb = cb;
	h->arg = arg;
	TAILQ_INIT(&h->exchanges);
	if ((h->evh = evhttp_new(base)) == NULL)
		fatal("http: evhttp_new failed");
	/* Every method reaches request_cb, which answers 405 with Allow
	 * and our headers; libevent's own refusal would have neither. */
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(h->evh, "text/plain; charset=utf-8");
	evhttp_set_bevcb(h->evh, bev_cb, h);
	evhttp_set_gencb(h->evh, request_cb, h);
	http_set_tls(h, ctx);
	http_set_limits(h, limits);
	http_set_settings(h, settings);
	h->keepalive = event_new(base, -1, EV_PERSIST, keepalive_cb, h);
	event_add(h->keepalive, &ka);
	return h;
}

bool
http_listen(struct http *h, const char *spec)
{
	struct addrinfo hints, *ai = NULL, *p;
	struct evhttp_bound_socket *bs;
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
	if (rc != 0) {
		log_error("http listen %s: %s", spec, gai_strerror(rc));
		free(host);
		free(port);
		return false;
	}
	for (p = ai; p != NULL && h->nbound < MAX_LISTENERS; p = p->ai_next) {
		char addr[NI_MAXHOST];

		if (getnameinfo(p->ai_addr, p->ai_addrlen, addr, sizeof addr,
		    NULL, 0, NI_NUMERICHOST) != 0)
			continue;
		bs = evhttp_bind_socket_with_handle(h->evh, addr,
		    (ev_uint16_t)atoi(port));
		if (bs == NULL) {
			log_error("cannot listen (http) on %s: %s", spec,
			    strerror(errno));
			freeaddrinfo(ai);
			free(host);
			free(port);
			return false;
		}
		h->bound[h->nbound++] = bs;
		log_info("listening (https) on %s", spec);
	}
	freeaddrinfo(ai);
	free(host);
	free(port);
	return true;
}

void
http_set_tls(struct http *h, SSL_CTX *ctx)
{
	SSL_CTX_up_ref(ctx);
	SSL_CTX_free(h->ctx);
	h->ctx = ctx;
}

void
http_set_limits(struct http *h, const struct http_limits *limits)
{
	h->limits = *limits;
	apply_limits(h);
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
}

void
http_drain(struct http *h)
{
	struct http_exchange *x, *next;
	size_t i;

	h->draining = true;
	for (i = 0; i < h->nbound; i++)
		evhttp_del_accept_socket(h->evh, h->bound[i]);
	h->nbound = 0;
	for (x = TAILQ_FIRST(&h->exchanges); x != NULL; x = next) {
		next = TAILQ_NEXT(x, entry);
		if (x->streaming && !x->ended) {
			if (h->cb->gone != NULL)
				h->cb->gone(x, x->xarg);
			http_stream_end(x);
		}
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
	size_t i;

	if (h == NULL)
		return;
	/* Exchanges still open hear they are gone (a scheduled gone() is
	 * cancelled: it comes now); libevent then frees the connections and
	 * their requests. */
	while ((x = TAILQ_FIRST(&h->exchanges)) != NULL) {
		if (x->req != NULL)
			evhttp_connection_set_closecb(x->evcon, NULL, NULL);
		x->req = NULL;
		if (!x->ended && h->cb->gone != NULL) {
			x->ended = true;
			h->cb->gone(x, x->xarg);
		}
		exchange_free(x);
	}
	evhttp_free(h->evh);
	event_free(h->keepalive);
	for (i = 0; i < h->norigins; i++)
		free(h->origins[i]);
	free(h->origins);
	free(h->www_dir);
	SSL_CTX_free(h->ctx);
	free(h);
}
