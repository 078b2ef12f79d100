/*
 * libstrapontin: one blocking TLS connection to strapontind, speaking
 * line-framed JSON-RPC 2.0 (see strapontin.h for the contract).
 *
 * The socket is non-blocking underneath and every wait goes through poll()
 * with a deadline, so no call can block longer than its timeout. OpenSSL
 * talks to the socket through a small BIO of our own (st_bio_*) whose only
 * reason to exist is send(..., MSG_NOSIGNAL): a server that goes away must
 * give ST_ERR_IO, not kill the caller with SIGPIPE, and a library has no
 * business changing the process' signal dispositions.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MSG_NOSIGNAL, getaddrinfo, getopt_long */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "strapontin.h"

#define ST_DEFAULT_PORT "7443"
#define ST_DEFAULT_TIMEOUT_MS 10000
/* A line longer than this is not something strapontind would send. */
#define ST_MAX_LINE (64u * 1024 * 1024)
#define ST_READ_CHUNK 16384

struct st_client {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	bool handshake_done;
	bool eof; /* the peer closed its side (set by the BIO) */
	int timeout_ms;
	int64_t next_id;

	/* Incoming bytes: [in_off, in_len) is unconsumed, and the first
	 * in_scan bytes of it are known to hold no "\n" (so a long line is
	 * scanned once, not once per read). */
	char *in;
	size_t in_off, in_len, in_cap, in_scan;

	/* Messages read while waiting for something else, in arrival
	 * order: responses to other ids, events, anything unexpected. */
	json_t *kept;

	/* After a failed write, a lost connection or an oversized line the
	 * stream is out of step: every later I/O fails with this reason. */
	bool broken;
	char broken_msg[256];
};

static int set_error(struct st_error *, int, const char *, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* --- errors --------------------------------------------------------- */

static void
copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Fills err (if any) and returns status, so that callers can write
 * `return set_error(...)`. err is output only: its old content is not
 * looked at (see struct st_error in the header). */
static int
set_error(struct st_error *err, int status, const char *reason, const char *fmt,
	  ...)
{
	va_list ap;

	if (err == NULL)
		return status;
	memset(err, 0, sizeof *err);
	err->status = status;
	copy_str(err->reason, sizeof err->reason, reason);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return status;
}

/* The first error OpenSSL queued is usually the cause, the later ones the
 * call stack above it. Empties the queue. */
static const char *
tls_errstr(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();
	const char *r;

	ERR_clear_error();
	if (e == 0)
		return "unknown TLS error";
	if (ERR_SYSTEM_ERROR(e)) {
		/* errno wrapped by OpenSSL, e.g. a missing file. */
		copy_str(buf, size, strerror(ERR_GET_REASON(e)));
		return buf;
	}
	r = ERR_reason_error_string(e);
	if (r != NULL)
		copy_str(buf, size, r);
	else
		ERR_error_string_n(e, buf, size);
	return buf;
}

/* Marks the connection unusable and fills err. */
static int
set_broken(struct st_client *c, struct st_error *err, int status,
	   const char *reason, const char *msg)
{
	if (!c->broken) {
		c->broken = true;
		copy_str(c->broken_msg, sizeof c->broken_msg, msg);
	}
	return set_error(err, status, reason, "%s", msg);
}

static int
broken_error(const struct st_client *c, struct st_error *err)
{
	return set_error(err, ST_ERR_IO, "io",
			 "connection unusable after an earlier error: %s",
			 c->broken_msg);
}

/* --- time ------------------------------------------------------------- */

static int64_t
now_ms_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A timeout < 0 means no deadline (-1). */
static int64_t
deadline_in(int timeout_ms)
{
	if (timeout_ms < 0)
		return -1;
	return now_ms_mono() + timeout_ms;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, -1
 * poll failed (errno set). A passed deadline still polls once, so data
 * already there is never reported as a timeout. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int64_t left;
	int n;

	for (;;) {
		if (deadline < 0)
			left = -1;
		else {
			left = deadline - now_ms_mono();
			if (left < 0)
				left = 0;
			if (left > 1000 * 1000 * 1000)
				left = 1000 * 1000 * 1000;
		}
		n = poll(&pfd, 1, (int)left);
		if (n >= 0)
			return n > 0 ? 1 : 0;
		if (errno != EINTR)
			return -1;
	}
}

/* --- the socket BIO ----------------------------------------------------- */

/* Like OpenSSL's socket BIO, minus SIGPIPE. The BIO's data is the client,
 * which owns the descriptor. */

static BIO_METHOD *st_bio_method;
static CRYPTO_ONCE st_bio_once = CRYPTO_ONCE_STATIC_INIT;

static int
st_bio_write(BIO *b, const char *buf, size_t len, size_t *written)
{
	struct st_client *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	*written = 0;
	do
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_write(b);
		return 0;
	}
	*written = (size_t)n;
	return 1;
}

static int
st_bio_read(BIO *b, char *buf, size_t len, size_t *readbytes)
{
	struct st_client *c = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	*readbytes = 0;
	do
		n = recv(c->fd, buf, len, 0);
	while (n == -1 && errno == EINTR);
	if (n == 0) {
		/* OpenSSL asks BIO_eof() to tell a clean EOF from an error
		 * (SSL_OP_IGNORE_UNEXPECTED_EOF depends on it). */
		c->eof = true;
		return 0;
	}
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_read(b);
		return 0;
	}
	*readbytes = (size_t)n;
	return 1;
}

static long
st_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct st_client *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* nothing is buffered here */
	case BIO_CTRL_EOF:
		return c != NULL && c->eof;
	default:
		return 0;
	}
}

static void
st_bio_init_method(void)
{
	BIO_METHOD *m;

	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
			 "strapontin socket");
	if (m == NULL)
		return;
	if (!BIO_meth_set_write_ex(m, st_bio_write) ||
	    !BIO_meth_set_read_ex(m, st_bio_read) ||
	    !BIO_meth_set_ctrl(m, st_bio_ctrl)) {
		BIO_meth_free(m);
		return;
	}
	st_bio_method = m;
}

static BIO *
st_bio_new(struct st_client *c)
{
	BIO *b;

	if (!CRYPTO_THREAD_run_once(&st_bio_once, st_bio_init_method) ||
	    st_bio_method == NULL)
		return NULL;
	if ((b = BIO_new(st_bio_method)) == NULL)
		return NULL;
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	return b;
}

/* --- connecting ------------------------------------------------------- */

/* "[::1]" -> "::1"; anything else is copied as is. */
static void
strip_brackets(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= 2 && src[0] == '[' && src[n - 1] == ']') {
		n -= 2;
		src++;
	}
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool
is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

/* Tries one address; 0 and c->fd set, or -1 with errno (ETIMEDOUT for
 * the deadline). */
static int
tcp_try(struct st_client *c, const struct addrinfo *ai, int64_t deadline)
{
	int fd, soerr = 0, one = 1, saved;
	socklen_t len = sizeof soerr;

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd == -1)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		if (errno != EINPROGRESS)
			goto fail;
		switch (wait_fd(fd, POLLOUT, deadline)) {
		case 0:
			errno = ETIMEDOUT;
			goto fail;
		case -1:
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
			goto fail;
		if (soerr != 0) {
			errno = soerr;
			goto fail;
		}
	}
	/* Requests are small and answered one by one: no Nagle delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->fd = fd;
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static int
tcp_connect(struct st_client *c, const char *host, const char *port,
	    struct st_error *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char addr[INET6_ADDRSTRLEN] = "";
	int gai, saved = ECONNREFUSED;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* No AI_ADDRCONFIG: it hides ::1 on hosts whose only IPv6 address is
	 * the loopback one, which is exactly where tests run. */
	gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0)
		return set_error(err, ST_ERR_CONNECT, "resolve",
				 "cannot resolve %s port %s: %s", host, port,
				 gai == EAI_SYSTEM ? strerror(errno)
						   : gai_strerror(gai));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (tcp_try(c, ai, deadline_in(c->timeout_ms)) == 0)
			break;
		saved = errno;
		getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr,
			    NULL, 0, NI_NUMERICHOST);
	}
	freeaddrinfo(res);
	if (c->fd != -1)
		return ST_OK;
	if (strcmp(addr, host) == 0 || addr[0] == '\0')
		return set_error(err, ST_ERR_CONNECT, "connect",
				 "cannot connect to %s port %s: %s", host, port,
				 strerror(saved));
	return set_error(err, ST_ERR_CONNECT, "connect",
			 "cannot connect to %s (%s) port %s: %s", host, addr,
			 port, strerror(saved));
}

static int
tls_setup(struct st_client *c, const struct st_options *opt, const char *name,
	  struct st_error *err)
{
	int min = opt->min_tls_version ? opt->min_tls_version : TLS1_2_VERSION;
	char ebuf[256];
	BIO *bio;

	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto tls_fail;
	if (!SSL_CTX_set_min_proto_version(c->ctx, min) ||
	    (opt->max_tls_version &&
	     !SSL_CTX_set_max_proto_version(c->ctx, opt->max_tls_version)))
		return set_error(err, ST_ERR_USAGE, "usage",
				 "unsupported TLS version bounds");
	/* OpenSSL 3 refuses anything below TLS 1.2 at its default security
	 * level; the test suite asks for it to check the server says no. */
	if (min < TLS1_2_VERSION)
		SSL_CTX_set_security_level(c->ctx, 0);
	/* A server that closes without close_notify has still said all it
	 * had to say: treat it as an end of stream, not a TLS error. */
	SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
					SSL_OP_NO_RENEGOTIATION);

	if (!opt->insecure_for_tests) {
		SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
		if (opt->ca_file != NULL) {
			if (!SSL_CTX_load_verify_locations(c->ctx, opt->ca_file,
							   NULL))
				return set_error(err, ST_ERR_TLS, "tls",
						 "cannot load CA file %s: %s",
						 opt->ca_file,
						 tls_errstr(ebuf, sizeof ebuf));
		} else if (!SSL_CTX_set_default_verify_paths(c->ctx))
			return set_error(err, ST_ERR_TLS, "tls",
					 "cannot load the system CA store: %s",
					 tls_errstr(ebuf, sizeof ebuf));
	}

	if (opt->key_file != NULL && opt->cert_file == NULL)
		return set_error(err, ST_ERR_USAGE, "usage",
				 "a client key needs a client certificate");
	if (opt->cert_file != NULL) {
		const char *key =
		    opt->key_file ? opt->key_file : opt->cert_file;

		if (!SSL_CTX_use_certificate_chain_file(c->ctx, opt->cert_file))
			return set_error(
			    err, ST_ERR_TLS, "tls",
			    "cannot load client certificate %s: %s",
			    opt->cert_file, tls_errstr(ebuf, sizeof ebuf));
		if (!SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM))
			return set_error(err, ST_ERR_TLS, "tls",
					 "cannot load client key %s: %s", key,
					 tls_errstr(ebuf, sizeof ebuf));
		if (!SSL_CTX_check_private_key(c->ctx))
			return set_error(
			    err, ST_ERR_TLS, "tls",
			    "client key %s does not match certificate %s", key,
			    opt->cert_file);
	}

	if ((c->ssl = SSL_new(c->ctx)) == NULL)
		goto tls_fail;
	if ((bio = st_bio_new(c)) == NULL)
		goto tls_fail;
	SSL_set_bio(c->ssl, bio, bio);

	/* SNI carries names only (RFC 6066); an IP literal is checked
	 * against the certificate's IP addresses instead. */
	if (is_ip_literal(name)) {
		if (!opt->insecure_for_tests &&
		    !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
						   name))
			goto tls_fail;
	} else {
		if (!SSL_set_tlsext_host_name(c->ssl, name))
			goto tls_fail;
		if (!opt->insecure_for_tests) {
			SSL_set_hostflags(c->ssl,
					  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (!SSL_set1_host(c->ssl, name))
				goto tls_fail;
		}
	}
	SSL_set_connect_state(c->ssl);
	return ST_OK;

tls_fail:
	return set_error(err, ST_ERR_TLS, "tls", "cannot set up TLS: %s",
			 tls_errstr(ebuf, sizeof ebuf));
}

static int
tls_handshake(struct st_client *c, const char *name, bool verify,
	      struct st_error *err)
{
	int64_t deadline = deadline_in(c->timeout_ms);
	char ebuf[256];
	long vr;
	int r, e, w;

	for (;;) {
		ERR_clear_error();
		r = SSL_connect(c->ssl);
		if (r == 1)
			break;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			w = wait_fd(c->fd,
				    e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
				    deadline);
			if (w == 1)
				continue;
			if (w == 0)
				return set_error(
				    err, ST_ERR_TIMEOUT, "timeout",
				    "TLS handshake with %s timed out after "
				    "%d ms",
				    name, c->timeout_ms);
			return set_error(err, ST_ERR_TLS, "tls",
					 "TLS handshake with %s failed: %s",
					 name, strerror(errno));
		}
		vr = SSL_get_verify_result(c->ssl);
		if (verify && vr != X509_V_OK) {
			ERR_clear_error();
			return set_error(
			    err, ST_ERR_TLS, "certificate",
			    "cannot verify the certificate of %s: %s", name,
			    X509_verify_cert_error_string(vr));
		}
		if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
			/* Closed or reset before any TLS alert. */
			return set_error(err, ST_ERR_TLS, "tls",
					 "TLS handshake with %s failed: %s",
					 name,
					 c->eof || errno == 0
					     ? "connection closed by the server"
					     : strerror(errno));
		}
		return set_error(err, ST_ERR_TLS, "tls",
				 "TLS handshake with %s failed: %s", name,
				 tls_errstr(ebuf, sizeof ebuf));
	}
	c->handshake_done = true;
	return ST_OK;
}

struct st_client *
st_connect(const struct st_options *opt, struct st_error *err)
{
	struct st_client *c;
	char host[256], name[256];
	const char *port;

	if (opt == NULL || opt->host == NULL || opt->host[0] == '\0') {
		set_error(err, ST_ERR_USAGE, "usage", "no server host given");
		return NULL;
	}
	if ((c = calloc(1, sizeof *c)) == NULL) {
		set_error(err, ST_ERR_IO, "io", "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->timeout_ms =
	    opt->timeout_ms > 0 ? opt->timeout_ms : ST_DEFAULT_TIMEOUT_MS;
	c->next_id = 1;
	if ((c->kept = json_array()) == NULL) {
		set_error(err, ST_ERR_IO, "io", "out of memory");
		goto fail;
	}

	strip_brackets(host, sizeof host, opt->host);
	strip_brackets(name, sizeof name,
		       opt->server_name != NULL ? opt->server_name : opt->host);
	port = opt->port != NULL && opt->port[0] != '\0' ? opt->port
							 : ST_DEFAULT_PORT;

	if (tcp_connect(c, host, port, err) != ST_OK)
		goto fail;
	if (tls_setup(c, opt, name, err) != ST_OK)
		goto fail;
	if (tls_handshake(c, name, !opt->insecure_for_tests, err) != ST_OK)
		goto fail;
	return c;
fail:
	st_close(c);
	return NULL;
}

void
st_close(struct st_client *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL) {
		/* Best effort close_notify: one non-blocking try, no wait
		 * for the server's. */
		if (c->handshake_done && !c->broken) {
			ERR_clear_error();
			SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);
	}
	ERR_clear_error();
	SSL_CTX_free(c->ctx);
	if (c->fd != -1)
		close(c->fd);
	free(c->in);
	json_decref(c->kept);
	free(c);
}

/* --- reading ---------------------------------------------------------- */

/* Makes room for at least one more chunk past in_len. */
static int
in_reserve(struct st_client *c, struct st_error *err)
{
	size_t cap;
	char *p;

	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->in_cap - c->in_len >= ST_READ_CHUNK)
		return ST_OK;
	cap = c->in_cap ? c->in_cap * 2 : 4 * ST_READ_CHUNK;
	if (cap > ST_MAX_LINE + ST_READ_CHUNK)
		cap = ST_MAX_LINE + ST_READ_CHUNK;
	if ((p = realloc(c->in, cap)) == NULL)
		return set_broken(c, err, ST_ERR_IO, "io", "out of memory");
	c->in = p;
	c->in_cap = cap;
	return ST_OK;
}

/* Reads whatever the server has sent, waiting until the deadline. */
static int
in_fill(struct st_client *c, int64_t deadline, struct st_error *err)
{
	char ebuf[256], msg[256];
	size_t n;
	int r, e, w;

	if (c->broken)
		return broken_error(c, err);
	if ((r = in_reserve(c, err)) != ST_OK)
		return r;
	for (;;) {
		ERR_clear_error();
		if (SSL_read_ex(c->ssl, c->in + c->in_len,
				c->in_cap - c->in_len, &n)) {
			c->in_len += n;
			return ST_OK;
		}
		e = SSL_get_error(c->ssl, 0);
		switch (e) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			w = wait_fd(c->fd,
				    e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
				    deadline);
			if (w == 1)
				continue;
			if (w == 0)
				return set_error(
				    err, ST_ERR_TIMEOUT, "timeout",
				    "no answer within the timeout");
			snprintf(msg, sizeof msg, "poll: %s", strerror(errno));
			break;
		case SSL_ERROR_ZERO_RETURN:
			snprintf(msg, sizeof msg,
				 "connection closed by the server");
			break;
		case SSL_ERROR_SYSCALL:
			snprintf(msg, sizeof msg, "connection lost: %s",
				 errno ? strerror(errno) : "closed");
			ERR_clear_error();
			break;
		default:
			snprintf(msg, sizeof msg, "connection lost: %s",
				 tls_errstr(ebuf, sizeof ebuf));
			break;
		}
		return set_broken(c, err, ST_ERR_IO, "io", msg);
	}
}

/* The next whole line, without its "\n". *line points into the input
 * buffer and stays valid until the next read. */
static int
next_line(struct st_client *c, int64_t deadline, char **line, size_t *len,
	  struct st_error *err)
{
	char *start, *nl;
	size_t avail;
	int r;

	for (;;) {
		/* c->in is NULL until the first read: no arithmetic on it. */
		start = c->in != NULL ? c->in + c->in_off : NULL;
		avail = c->in_len - c->in_off;
		nl = avail > c->in_scan
			 ? memchr(start + c->in_scan, '\n', avail - c->in_scan)
			 : NULL;
		if (nl != NULL) {
			*line = start;
			*len = (size_t)(nl - start);
			c->in_off += *len + 1;
			c->in_scan = 0;
			return ST_OK;
		}
		c->in_scan = avail;
		if (avail >= ST_MAX_LINE)
			return set_broken(c, err, ST_ERR_PROTOCOL, "protocol",
					  "the server sent a line longer than "
					  "64 MiB");
		if ((r = in_fill(c, deadline, err)) != ST_OK)
			return r;
	}
}

static bool
is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* Reads and parses the next message from the wire (blank lines are
 * skipped). The queue of kept messages is not looked at. */
static int
read_message(struct st_client *c, int64_t deadline, json_t **msg,
	     struct st_error *err)
{
	json_error_t jerr;
	char *line;
	size_t len;
	int r;

	*msg = NULL;
	do {
		if ((r = next_line(c, deadline, &line, &len, err)) != ST_OK)
			return r;
	} while (is_blank(line, len));
	if ((*msg = json_loadb(line, len, 0, &jerr)) == NULL)
		return set_error(err, ST_ERR_PROTOCOL, "protocol",
				 "the server sent a line that is not a JSON "
				 "object: %s",
				 jerr.text);
	return ST_OK;
}

/* --- messages ----------------------------------------------------------- */

static bool
is_response(const json_t *msg)
{
	return json_is_object(msg) && (json_object_get(msg, "result") != NULL ||
				       json_object_get(msg, "error") != NULL);
}

static bool
is_response_for(const json_t *msg, int64_t id)
{
	const json_t *v = json_object_get(msg, "id");

	return is_response(msg) && json_is_integer(v) &&
	       json_integer_value(v) == id;
}

/* An error answer the server could not tie to a request (id null): a line
 * too long or not JSON. It concerns whoever is waiting. */
static bool
is_orphan_error(const json_t *msg)
{
	return is_response(msg) && json_is_null(json_object_get(msg, "id")) &&
	       json_object_get(msg, "error") != NULL;
}

static bool
is_event(const json_t *msg)
{
	const json_t *m = json_object_get(msg, "method");

	return json_is_object(msg) && json_object_get(msg, "id") == NULL &&
	       json_is_string(m) && strcmp(json_string_value(m), "event") == 0;
}

static void
copy_json_str(char *dst, size_t size, const json_t *v)
{
	copy_str(dst, size, json_is_string(v) ? json_string_value(v) : "");
}

/* Turns a response into ST_OK and *result, or into ST_ERR_SERVER. */
static int
take_response(const json_t *msg, json_t **result, struct st_error *err)
{
	const json_t *e = json_object_get(msg, "error"), *data;

	if (e != NULL) {
		if (!json_is_object(e))
			return set_error(
			    err, ST_ERR_PROTOCOL, "protocol",
			    "the server sent an error that is not an "
			    "object");
		if (err == NULL)
			return ST_ERR_SERVER;
		memset(err, 0, sizeof *err);
		err->status = ST_ERR_SERVER;
		err->code = (int)json_integer_value(json_object_get(e, "code"));
		copy_json_str(err->message, sizeof err->message,
			      json_object_get(e, "message"));
		data = json_object_get(e, "data");
		if (data != NULL) {
			err->data = json_incref((json_t *)data);
			copy_json_str(err->reason, sizeof err->reason,
				      json_object_get(data, "reason"));
			copy_json_str(err->field, sizeof err->field,
				      json_object_get(data, "field"));
		}
		return ST_ERR_SERVER;
	}
	if (result != NULL)
		*result = json_incref(json_object_get(msg, "result"));
	return ST_OK;
}

/* Removes and returns (as a reference the caller owns) the first kept
 * message that pred accepts. */
static json_t *
kept_take(struct st_client *c, bool (*pred)(const json_t *, int64_t),
	  int64_t id)
{
	json_t *m;
	size_t i;

	json_array_foreach(c->kept, i, m)
	{
		if (pred(m, id)) {
			json_incref(m);
			json_array_remove(c->kept, i);
			return m;
		}
	}
	return NULL;
}

static bool
pred_response(const json_t *m, int64_t id)
{
	return is_response_for(m, id);
}

static bool
pred_event(const json_t *m, int64_t id)
{
	(void)id;
	return is_event(m);
}

static int
keep(struct st_client *c, json_t *msg, struct st_error *err)
{
	if (json_array_append_new(c->kept, msg) != 0)
		return set_broken(c, err, ST_ERR_IO, "io", "out of memory");
	return ST_OK;
}

/* --- writing ---------------------------------------------------------- */

static int
write_all(struct st_client *c, const char *data, size_t len,
	  struct st_error *err)
{
	int64_t deadline = deadline_in(c->timeout_ms);
	char ebuf[256], msg[256];
	size_t n;
	int e, w;

	if (c->broken)
		return broken_error(c, err);
	/* Without SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_write_ex() succeeds
	 * only once everything is written; a retry must pass the same
	 * buffer, which this loop does. */
	while (len > 0) {
		ERR_clear_error();
		if (SSL_write_ex(c->ssl, data, len, &n)) {
			data += n;
			len -= n;
			continue;
		}
		e = SSL_get_error(c->ssl, 0);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			w = wait_fd(c->fd,
				    e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
				    deadline);
			if (w == 1)
				continue;
			/* Part of a record may be on the wire: the stream
			 * cannot be resumed. */
			if (w == 0) {
				snprintf(msg, sizeof msg,
					 "sending timed out after %d ms",
					 c->timeout_ms);
				return set_broken(c, err, ST_ERR_TIMEOUT,
						  "timeout", msg);
			}
			snprintf(msg, sizeof msg, "poll: %s", strerror(errno));
		} else if (e == SSL_ERROR_SYSCALL) {
			snprintf(msg, sizeof msg, "connection lost: %s",
				 errno ? strerror(errno) : "closed");
			ERR_clear_error();
		} else if (e == SSL_ERROR_ZERO_RETURN) {
			snprintf(msg, sizeof msg,
				 "connection closed by the server");
		} else
			snprintf(msg, sizeof msg, "connection lost: %s",
				 tls_errstr(ebuf, sizeof ebuf));
		return set_broken(c, err, ST_ERR_IO, "io", msg);
	}
	return ST_OK;
}

/* Sends {"jsonrpc":"2.0","id":id,"method":...,"params":...} and "\n";
 * id 0 makes a notification. */
static int
send_message(struct st_client *c, int64_t id, const char *method,
	     json_t *params, struct st_error *err)
{
	json_t *msg;
	char *buf = NULL;
	size_t size;
	int r;

	if (c == NULL || method == NULL)
		return set_error(err, ST_ERR_USAGE, "usage",
				 "no client or no method");
	if (params != NULL && !json_is_object(params) && !json_is_array(params))
		return set_error(err, ST_ERR_USAGE, "usage",
				 "params must be a JSON object or array");
	if (c->broken)
		return broken_error(c, err);

	/* json_object_set_new() takes the value even when it fails, and
	 * fails on a NULL value, so each line below leaks nothing. */
	if ((msg = json_object()) == NULL ||
	    json_object_set_new(msg, "jsonrpc", json_string("2.0")) != 0 ||
	    (id > 0 && json_object_set_new(msg, "id", json_integer(id)) != 0)) {
		r = set_error(err, ST_ERR_IO, "io", "out of memory");
		goto out;
	}
	if (json_object_set_new(msg, "method", json_string(method)) != 0) {
		r = set_error(err, ST_ERR_USAGE, "usage",
			      "method name is not valid UTF-8");
		goto out;
	}
	/* Named params always: an explicit {} is valid for every method. */
	if (json_object_set_new(msg, "params",
				params != NULL ? json_incref(params)
					       : json_object()) != 0) {
		r = set_error(err, ST_ERR_IO, "io", "out of memory");
		goto out;
	}

	/* Compact output never contains a raw "\n", so one message is one
	 * line; it goes out in one SSL_write, so in one record when small. */
	size = json_dumpb(msg, NULL, 0, JSON_COMPACT);
	if (size == 0 || (buf = malloc(size + 1)) == NULL) {
		r = set_error(err, ST_ERR_USAGE, "usage",
			      "params cannot be encoded");
		goto out;
	}
	json_dumpb(msg, buf, size, JSON_COMPACT);
	buf[size] = '\n';
	r = write_all(c, buf, size + 1, err);
out:
	json_decref(msg);
	free(buf);
	return r;
}

/* --- the API ---------------------------------------------------------- */

int64_t
st_send(struct st_client *c, const char *method, json_t *params,
	struct st_error *err)
{
	int64_t id;

	if (c == NULL) {
		set_error(err, ST_ERR_USAGE, "usage", "no client");
		return -1;
	}
	id = c->next_id;
	if (send_message(c, id, method, params, err) != ST_OK)
		return -1;
	c->next_id++;
	return id;
}

int
st_notify(struct st_client *c, const char *method, json_t *params,
	  struct st_error *err)
{
	return send_message(c, 0, method, params, err);
}

int
st_wait(struct st_client *c, int64_t id, json_t **result, struct st_error *err)
{
	int64_t deadline;
	json_t *msg;
	int r;

	if (result != NULL)
		*result = NULL;
	if (c == NULL || id <= 0)
		return set_error(err, ST_ERR_USAGE, "usage",
				 "no client or bad request id");

	if ((msg = kept_take(c, pred_response, id)) != NULL)
		goto found;
	deadline = deadline_in(c->timeout_ms);
	for (;;) {
		r = read_message(c, deadline, &msg, err);
		if (r == ST_ERR_TIMEOUT)
			return set_error(
			    err, ST_ERR_TIMEOUT, "timeout",
			    "no answer to request %lld within %d ms",
			    (long long)id, c->timeout_ms);
		if (r != ST_OK)
			return r;
		if (is_response_for(msg, id) || is_orphan_error(msg))
			goto found;
		if (!json_is_object(msg) && !json_is_array(msg)) {
			json_decref(msg);
			return set_error(err, ST_ERR_PROTOCOL, "protocol",
					 "the server sent a message that is "
					 "not JSON-RPC");
		}
		if ((r = keep(c, msg, err)) != ST_OK)
			return r;
	}
found:
	r = take_response(msg, result, err);
	json_decref(msg);
	return r;
}

int
st_call(struct st_client *c, const char *method, json_t *params,
	json_t **result, struct st_error *err)
{
	int64_t id;
	int r;

	if (result != NULL)
		*result = NULL;
	if (c == NULL)
		return set_error(err, ST_ERR_USAGE, "usage", "no client");
	id = c->next_id;
	if ((r = send_message(c, id, method, params, err)) != ST_OK)
		return r;
	c->next_id++;
	return st_wait(c, id, result, err);
}

int
st_send_raw(struct st_client *c, const char *data, size_t len,
	    struct st_error *err)
{
	if (c == NULL || (data == NULL && len > 0))
		return set_error(err, ST_ERR_USAGE, "usage",
				 "no client or data");
	return write_all(c, data, len, err);
}

int
st_read_message(struct st_client *c, json_t **msg, int timeout_ms,
		struct st_error *err)
{
	int r;

	if (msg == NULL || c == NULL)
		return set_error(err, ST_ERR_USAGE, "usage",
				 "no client or message");
	*msg = NULL;
	if (json_array_size(c->kept) > 0) {
		*msg = json_incref(json_array_get(c->kept, 0));
		json_array_remove(c->kept, 0);
		return ST_OK;
	}
	r = read_message(c, deadline_in(timeout_ms), msg, err);
	if (r == ST_ERR_TIMEOUT)
		return set_error(err, ST_ERR_TIMEOUT, "timeout",
				 "no message within %d ms", timeout_ms);
	return r;
}

int
st_read_line(struct st_client *c, char **line, size_t *len, int timeout_ms,
	     struct st_error *err)
{
	char *l;
	size_t n;
	int r;

	if (line == NULL || c == NULL)
		return set_error(err, ST_ERR_USAGE, "usage",
				 "no client or line");
	*line = NULL;
	if (len != NULL)
		*len = 0;
	r = next_line(c, deadline_in(timeout_ms), &l, &n, err);
	if (r == ST_ERR_TIMEOUT)
		return set_error(err, ST_ERR_TIMEOUT, "timeout",
				 "no line within %d ms", timeout_ms);
	if (r != ST_OK)
		return r;
	if ((*line = malloc(n + 1)) == NULL)
		return set_error(err, ST_ERR_IO, "io", "out of memory");
	memcpy(*line, l, n);
	(*line)[n] = '\0';
	if (len != NULL)
		*len = n;
	return ST_OK;
}

int
st_next_event(struct st_client *c, json_t **event, int timeout_ms,
	      struct st_error *err)
{
	json_t *msg, *params;
	int64_t deadline;
	int r;

	if (event == NULL || c == NULL)
		return set_error(err, ST_ERR_USAGE, "usage",
				 "no client or event");
	*event = NULL;
	if ((msg = kept_take(c, pred_event, 0)) == NULL) {
		deadline = deadline_in(timeout_ms);
		for (;;) {
			r = read_message(c, deadline, &msg, err);
			if (r == ST_ERR_TIMEOUT)
				return set_error(err, ST_ERR_TIMEOUT, "timeout",
						 "no event within %d ms",
						 timeout_ms);
			if (r != ST_OK)
				return r;
			if (is_event(msg))
				break;
			if ((r = keep(c, msg, err)) != ST_OK)
				return r;
		}
	}
	params = json_object_get(msg, "params");
	*event = params != NULL ? json_incref(params) : json_object();
	json_decref(msg);
	return ST_OK;
}

bool
st_buffered(const struct st_client *c)
{
	if (c == NULL)
		return false;
	if (json_array_size(c->kept) > 0)
		return true;
	if (c->in_len - c->in_off > c->in_scan &&
	    memchr(c->in + c->in_off + c->in_scan, '\n',
		   c->in_len - c->in_off - c->in_scan) != NULL)
		return true;
	return c->ssl != NULL && SSL_has_pending(c->ssl);
}

const char *
st_tls_version(const struct st_client *c)
{
	if (c == NULL || c->ssl == NULL)
		return "";
	return SSL_get_version(c->ssl);
}

int
st_fd(const struct st_client *c)
{
	return c != NULL ? c->fd : -1;
}

void
st_error_clear(struct st_error *err)
{
	if (err == NULL)
		return;
	json_decref(err->data);
	memset(err, 0, sizeof *err);
}

static const char *
status_sentence(int status)
{
	switch (status) {
	case ST_OK:
		return "success";
	case ST_ERR_SERVER:
		return "the server refused the request";
	case ST_ERR_CONNECT:
		return "cannot connect to the server";
	case ST_ERR_TLS:
		return "TLS handshake failed";
	case ST_ERR_IO:
		return "connection lost";
	case ST_ERR_TIMEOUT:
		return "no answer within the timeout";
	case ST_ERR_PROTOCOL:
		return "the server sent something that is not JSON-RPC";
	case ST_ERR_USAGE:
		return "bad arguments";
	default:
		return "unknown error";
	}
}

/* The sentence for a server error. Reasons whose data says more than the
 * message get their own wording; the rest share a generic one. */
static const char *
server_sentence(const struct st_error *err, char *buf, size_t size)
{
	const json_t *left = json_object_get(err->data, "seats_available");
	const json_t *total = json_object_get(err->data, "seats_total");
	const char *what = err->message[0] ? err->message : err->reason;

	if (strcmp(err->reason, "sold_out") == 0 && json_is_integer(left)) {
		long long n = json_integer_value(left);

		if (json_is_integer(total))
			snprintf(buf, size, "sold out: %lld of %lld seats left",
				 n, (long long)json_integer_value(total));
		else
			snprintf(buf, size, "sold out: %lld seat%s left", n,
				 n == 1 ? "" : "s");
		return buf;
	}
	if (what[0] == '\0')
		snprintf(buf, size, "the server refused the request (error %d)",
			 err->code);
	else if (err->reason[0] == '\0' || what == err->reason)
		snprintf(buf, size, "%s (error %d)", what, err->code);
	else if (err->field[0] != '\0')
		snprintf(buf, size, "%s (%s, field %s)", what, err->reason,
			 err->field);
	else
		snprintf(buf, size, "%s (%s)", what, err->reason);
	return buf;
}

const char *
st_strerror(const struct st_error *err)
{
	static _Thread_local char buf[sizeof err->message + 192];

	if (err == NULL)
		return "no error information";
	if (err->status == ST_ERR_SERVER)
		return server_sentence(err, buf, sizeof buf);
	if (err->status != ST_OK && err->message[0] != '\0')
		return err->message;
	return status_sentence(err->status);
}
