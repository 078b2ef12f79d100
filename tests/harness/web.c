#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

struct web_stream {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char *buf;
	size_t len, cap;
	bool closed;
};

static void
stream_append(struct web_stream *s, const char *p, size_t n)
{
	if (s->len + n + 1 > s->cap) {
		s->cap = (s->len + n + 1) * 2;
		s->buf = realloc(s->buf, s->cap);
		if (s->buf == NULL)
			h_fail("out of memory");
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
}

struct web_stream *
web_stream_open(int port, const char *request)
{
	struct web_stream *s = calloc(1, sizeof *s);
	struct sockaddr_in sa;
	char ca[4200];

	if (s == NULL)
		h_fail("out of memory");
	stream_append(s, "", 0);
	s->len = 0;
	snprintf(ca, sizeof ca, "%s/ca.pem", h_certs_dir());
	s->ctx = SSL_CTX_new(TLS_client_method());
	if (s->ctx == NULL || SSL_CTX_load_verify_locations(s->ctx, ca,
	    NULL) != 1)
		h_fail("cannot load %s", ca);
	SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
	if ((s->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		h_fail("socket: %s", strerror(errno));
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(s->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		h_fail("connect to port %d: %s", port, strerror(errno));
	s->ssl = SSL_new(s->ctx);
	SSL_set_fd(s->ssl, s->fd);
	SSL_set_tlsext_host_name(s->ssl, "localhost");
	SSL_set1_host(s->ssl, "localhost");
	if (SSL_connect(s->ssl) != 1)
		h_fail("TLS handshake with port %d failed", port);
	if (request != NULL)
		web_stream_send(s, request, strlen(request));
	return s;
}

void
web_stream_send(struct web_stream *s, const char *data, size_t len)
{
	if (len > 0 && SSL_write(s->ssl, data, (int)len) != (int)len)
		h_fail("TLS write failed");
}

/* Reads what comes within timeout_ms; false once the server closed. */
static bool
stream_read(struct web_stream *s, int timeout_ms)
{
	struct pollfd pfd = {s->fd, POLLIN, 0};
	char buf[16384];
	int n;

	if (s->closed)
		return false;
	if (SSL_pending(s->ssl) == 0 && poll(&pfd, 1, timeout_ms) <= 0)
		return true;
	n = SSL_read(s->ssl, buf, sizeof buf);
	if (n <= 0) {
		s->closed = true;
		return false;
	}
	stream_append(s, buf, (size_t)n);
	return true;
}

bool
web_stream_wait(struct web_stream *s, const char *needle, int timeout_ms)
{
	long long end = h_now_ms() + (long long)timeout_ms * h_timeout_scale();

	while (strstr(s->buf, needle) == NULL) {
		long long left = end - h_now_ms();

		if (left <= 0 || !stream_read(s, (int)(left > 200 ? 200 : left)))
			return strstr(s->buf, needle) != NULL;
	}
	return true;
}

const char *
web_stream_text(const struct web_stream *s)
{
	return s->buf;
}

void
web_stream_close(struct web_stream *s)
{
	SSL_free(s->ssl);
	SSL_CTX_free(s->ctx);
	close(s->fd);
	free(s->buf);
	free(s);
}

/* Decodes a chunked body in place; its new length. */
static size_t
dechunk(char *b, size_t len)
{
	size_t in = 0, out = 0, n;
	char *end;

	while (in < len) {
		n = strtoul(b + in, &end, 16);
		if ((end = strstr(end, "\r\n")) == NULL)
			break;
		in = (size_t)(end - b) + 2;
		if (n == 0 || in + n > len)
			break;
		memmove(b + out, b + in, n);
		out += n;
		in += n + 2;
	}
	b[out] = '\0';
	return out;
}

struct web_resp *
web_raw(int port, const char *request, size_t len)
{
	struct web_stream *s = web_stream_open(port, NULL);
	long long end = h_now_ms() + 10000LL * h_timeout_scale();
	struct web_resp *r = calloc(1, sizeof *r);
	char *sep;
	size_t hlen;

	if (r == NULL)
		h_fail("out of memory");
	web_stream_send(s, request, len);
	while (stream_read(s, 200))
		if (h_now_ms() > end)
			h_fail("no end of the answer within 10 s: %.200s",
			    s->buf);
	if ((sep = strstr(s->buf, "\r\n\r\n")) == NULL)
		h_fail("no HTTP answer: \"%.200s\"", s->buf);
	hlen = (size_t)(sep - s->buf);
	r->head = strndup(s->buf, hlen);
	r->body_len = s->len - hlen - 4;
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, sep + 4, r->body_len);
	r->body[r->body_len] = '\0';
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		h_fail("bad status line: \"%.100s\"", r->head);
	web_stream_close(s);
	if (web_header(r, "Transfer-Encoding") != NULL &&
	    strcasecmp(web_header(r, "Transfer-Encoding"), "chunked") == 0)
		r->body_len = dechunk(r->body, r->body_len);
	return r;
}

struct web_resp *
web_get(int port, const char *path, const char *headers)
{
	char req[8192];
	int n;

	n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost:%d"
	    "\r\nConnection: close\r\n%s\r\n", path, port,
	    headers != NULL ? headers : "");
	return web_raw(port, req, (size_t)n);
}

struct web_resp *
web_post(int port, const char *path, const char *ctype, const char *origin,
    const char *cookie, const char *body)
{
	size_t blen = strlen(body), cap = blen + 4096;
	char *req = malloc(cap);
	struct web_resp *r;
	int n;

	if (req == NULL)
		h_fail("out of memory");
	n = snprintf(req, cap, "POST %s HTTP/1.1\r\nHost: localhost:%d\r\n"
	    "Connection: close\r\nContent-Length: %zu\r\n", path, port, blen);
	if (ctype != NULL)
		n += snprintf(req + n, cap - (size_t)n, "Content-Type: %s\r\n",
		    ctype);
	if (origin != NULL)
		n += snprintf(req + n, cap - (size_t)n, "Origin: %s\r\n",
		    origin);
	if (cookie != NULL)
		n += snprintf(req + n, cap - (size_t)n, "Cookie: %s\r\n",
		    cookie);
	n += snprintf(req + n, cap - (size_t)n, "\r\n");
	memcpy(req + n, body, blen);
	r = web_raw(port, req, (size_t)n + blen);
	free(req);
	return r;
}

const char *
web_header(const struct web_resp *r, const char *name)
{
	static char value[4096];
	size_t nlen = strlen(name);
	const char *p = strstr(r->head, "\r\n");

	while (p != NULL && p[0] != '\0') {
		p += 2;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1, *e = strstr(v, "\r\n");
			size_t vlen = e != NULL ? (size_t)(e - v) : strlen(v);

			while (*v == ' ' && vlen > 0) {
				v++;
				vlen--;
			}
			if (vlen >= sizeof value)
				vlen = sizeof value - 1;
			memcpy(value, v, vlen);
			value[vlen] = '\0';
			return value;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

int
web_header_count(const struct web_resp *r, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = strstr(r->head, "\r\n");
	int n = 0;

	while (p != NULL && p[0] != '\0') {
		p += 2;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':')
			n++;
		p = strstr(p, "\r\n");
	}
	return n;
}

void
web_free(struct web_resp *r)
{
	if (r == NULL)
		return;
	free(r->head);
	free(r->body);
	free(r);
}
