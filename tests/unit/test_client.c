/*
 * libstrapontin against a scripted in-process TLS server.
 *
 * Each test starts a server thread that accepts one connection on
 * 127.0.0.1 (or ::1), completes the handshake with a self-signed P-256
 * certificate made at start-up, and plays one scenario. cmocka is not
 * thread-safe, so the server only records what it saw and the test thread
 * asserts on it after pthread_join().
 *
 * SIGPIPE keeps its default disposition in the test thread on purpose: if
 * the library ever wrote to a dead socket without MSG_NOSIGNAL the test
 * would die.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "strapontin.h"

/* --- certificates ------------------------------------------------------- */

struct pki {
	EVP_PKEY *key;
	X509 *cert;
	char path[64]; /* the certificate as PEM, to pass as ca_file */
};

static struct pki server_pki, other_pki;

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A self-signed certificate valid for 127.0.0.1, ::1 and localhost. */
static int
make_pki(struct pki *p, const char *cn)
{
	X509_NAME *name;
	FILE *f;
	int fd;

	if ((p->key = EVP_EC_gen("P-256")) == NULL ||
	    (p->cert = X509_new()) == NULL)
		return -1;
	X509_set_version(p->cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(p->cert), (long)random());
	X509_gmtime_adj(X509_getm_notBefore(p->cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(p->cert), 3600);
	X509_set_pubkey(p->cert, p->key);
	name = X509_get_subject_name(p->cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(p->cert, name);
	if (add_ext(p->cert, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_ext(p->cert, NID_subject_key_identifier, "hash") ||
	    add_ext(p->cert, NID_subject_alt_name,
		    "IP:127.0.0.1,IP:::1,DNS:localhost"))
		return -1;
	if (!X509_sign(p->cert, p->key, EVP_sha256()))
		return -1;

	snprintf(p->path, sizeof p->path, "/tmp/test_client_caXXXXXX");
	if ((fd = mkstemp(p->path)) == -1)
		return -1;
	if ((f = fdopen(fd, "w")) == NULL)
		return -1;
	PEM_write_X509(f, p->cert);
	return fclose(f) == 0 ? 0 : -1;
}

static void
free_pki(struct pki *p)
{
	if (p->path[0] != '\0')
		unlink(p->path);
	X509_free(p->cert);
	EVP_PKEY_free(p->key);
	memset(p, 0, sizeof *p);
}

/* --- the scripted server ------------------------------------------------ */

enum scenario {
	SC_REVERSE, /* read 3 requests, answer in reverse, event in between */
	SC_ECHO,    /* answer each request at once, by method name */
	SC_SILENT,  /* read requests, never answer */
	SC_CLOSE,   /* read one request, close without close_notify */
	SC_CLOSE_NOTIFY, /* read one request, close_notify, close */
	SC_HANDSHAKE,	 /* handshake, then read until the client leaves */
};

struct server {
	int lfd;
	enum scenario sc;
	pthread_t thread;
	/* What the server saw, for the test thread to check. */
	bool handshake_ok;
	int requests;  /* well-formed JSON-RPC 2.0 requests read */
	int malformed; /* lines that were not */
	char last_method[64];
};

static SSL_CTX *server_ctx;
static int listen4 = -1, listen6 = -1;
static char port4[16], port6[16];

struct lbuf {
	char data[1 << 16];
	size_t len;
};

/* One line (without "\n") into out, or -1 at EOF or error. */
static int
srv_read_line(SSL *ssl, struct lbuf *b, char *out, size_t size)
{
	char *nl;
	size_t n;
	int r;

	for (;;) {
		nl = memchr(b->data, '\n', b->len);
		if (nl != NULL) {
			n = (size_t)(nl - b->data);
			if (n >= size)
				return -1;
			memcpy(out, b->data, n);
			out[n] = '\0';
			memmove(b->data, nl + 1, b->len - n - 1);
			b->len -= n + 1;
			return 0;
		}
		if (b->len == sizeof b->data)
			return -1;
		r = SSL_read(ssl, b->data + b->len,
			     (int)(sizeof b->data - b->len));
		if (r <= 0)
			return -1;
		b->len += (size_t)r;
	}
}

static int
srv_write(SSL *ssl, const char *s, size_t len)
{
	return SSL_write(ssl, s, (int)len) == (int)len ? 0 : -1;
}

static int
srv_write_json(SSL *ssl, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	int r;

	json_decref(msg);
	if (s == NULL)
		return -1;
	r = srv_write(ssl, s, strlen(s));
	if (r == 0)
		r = srv_write(ssl, "\n", 1);
	free(s);
	return r;
}

/* Parses a request line; its id (0 for none) and method go to the
 * caller, and the server's counters are updated. */
static json_t *
srv_parse(struct server *s, const char *line, json_int_t *id)
{
	json_t *req = json_loads(line, 0, NULL);
	const char *method = NULL, *version = NULL;
	json_t *params = NULL;

	*id = 0;
	if (req == NULL ||
	    json_unpack(req, "{s:s, s?I, s:s, s?o}", "jsonrpc", &version, "id",
			id, "method", &method, "params", &params) != 0 ||
	    strcmp(version, "2.0") != 0 ||
	    (params != NULL && !json_is_object(params))) {
		s->malformed++;
		return req;
	}
	s->requests++;
	snprintf(s->last_method, sizeof s->last_method, "%s", method);
	return req;
}

static json_t *
answer_for(json_int_t id, const char *method, json_t *params)
{
	if (strcmp(method, "fail") == 0)
		return json_pack("{s:s, s:I, s:{s:i, s:s, s:{s:s, s:i, s:i}}}",
				 "jsonrpc", "2.0", "id", id, "error", "code",
				 409, "message", "No seats left", "data",
				 "reason", "sold_out", "seats_available", 0,
				 "seats_total", 40);
	if (strcmp(method, "bad") == 0)
		return json_pack("{s:s, s:I, s:{s:i, s:s, s:{s:s, s:s}}}",
				 "jsonrpc", "2.0", "id", id, "error", "code",
				 -32602, "message", "Invalid params", "data",
				 "reason", "invalid_params", "field", "email");
	return json_pack("{s:s, s:I, s:{s:s, s:O}}", "jsonrpc", "2.0", "id", id,
			 "result", "method", method, "params",
			 params ? params : json_null());
}

static void
srv_reverse(struct server *s, SSL *ssl, struct lbuf *b)
{
	json_t *req[3] = {NULL, NULL, NULL}, *ev;
	json_int_t id;
	char line[4096], *half;
	int i;

	for (i = 0; i < 3; i++) {
		if (srv_read_line(ssl, b, line, sizeof line) != 0)
			goto out;
		req[i] = srv_parse(s, line, &id);
	}
	for (i = 2; i >= 0; i--) {
		json_t *a = answer_for(
		    json_integer_value(json_object_get(req[i], "id")),
		    json_string_value(json_object_get(req[i], "method")),
		    json_object_get(req[i], "params"));

		if (i == 1) {
			/* Split in two records: the client must put a line
			 * together from several reads. */
			half = json_dumps(a, JSON_COMPACT);
			json_decref(a);
			srv_write(ssl, half, 5);
			usleep(20 * 1000);
			srv_write(ssl, half + 5, strlen(half) - 5);
			srv_write(ssl, "\n", 1);
			free(half);
		} else
			srv_write_json(ssl, a);
		if (i == 2) {
			ev = json_pack("{s:s, s:s, s:{s:s, s:{s:i}}}",
				       "jsonrpc", "2.0", "method", "event",
				       "params", "topic", "offer.published",
				       "data", "id", 7);
			srv_write_json(ssl, ev);
		}
	}
	while (srv_read_line(ssl, b, line, sizeof line) == 0)
		;
out:
	for (i = 0; i < 3; i++)
		json_decref(req[i]);
}

static void
srv_echo(struct server *s, SSL *ssl, struct lbuf *b)
{
	static const char orphan[] =
	    "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,"
	    "\"message\":\"Request too large\",\"data\":{\"reason\":"
	    "\"invalid_request\"}}}\n";
	json_int_t id;
	json_t *req;
	char line[4096], *big;
	const char *method;
	size_t i;

	while (srv_read_line(ssl, b, line, sizeof line) == 0) {
		req = srv_parse(s, line, &id);
		method = json_string_value(json_object_get(req, "method"));
		if (method == NULL)
			method = "";
		if (strcmp(method, "garbage") == 0)
			srv_write(ssl, "this is not json\n", 17);
		else if (strcmp(method, "big") == 0) {
			/* 1 MiB in one line: the input buffer must grow. */
			big = malloc(1 << 20);
			memset(big, 'a', 1 << 20);
			srv_write_json(ssl,
				       json_pack("{s:s, s:I, s:s#}", "jsonrpc",
						 "2.0", "id", id, "result", big,
						 (int)(1 << 20)));
			free(big);
		} else if (strcmp(method, "huge") == 0) {
			/* Over 64 MiB and no "\n": the client must give up. */
			big = malloc(1 << 20);
			memset(big, 'x', 1 << 20);
			for (i = 0; i < 70; i++)
				if (srv_write(ssl, big, 1 << 20) != 0)
					break;
			free(big);
		} else if (strcmp(method, "orphan") == 0)
			srv_write(ssl, orphan, sizeof orphan - 1);
		else if (id != 0)
			srv_write_json(
			    ssl, answer_for(id, method,
					    json_object_get(req, "params")));
		json_decref(req);
	}
}

static void *
server_main(void *arg)
{
	struct server *s = arg;
	struct lbuf *b = calloc(1, sizeof *b);
	char line[4096];
	sigset_t set;
	SSL *ssl = NULL;
	int fd;

	/* SIGPIPE is thread-directed: blocked here, a write to a gone client
	 * fails with EPIPE instead of killing the test. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if ((fd = accept(s->lfd, NULL, NULL)) == -1)
		goto out;
	ssl = SSL_new(server_ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		goto out;
	s->handshake_ok = true;

	switch (s->sc) {
	case SC_REVERSE:
		srv_reverse(s, ssl, b);
		break;
	case SC_ECHO:
		srv_echo(s, ssl, b);
		break;
	case SC_SILENT:
	case SC_HANDSHAKE:
		while (srv_read_line(ssl, b, line, sizeof line) == 0) {
			json_int_t id;

			json_decref(srv_parse(s, line, &id));
		}
		break;
	case SC_CLOSE:
	case SC_CLOSE_NOTIFY:
		if (srv_read_line(ssl, b, line, sizeof line) == 0) {
			json_int_t id;

			json_decref(srv_parse(s, line, &id));
		}
		if (s->sc == SC_CLOSE_NOTIFY)
			SSL_shutdown(ssl);
		else
			SSL_set_quiet_shutdown(ssl, 1);
		break;
	}
out:
	ERR_clear_error();
	SSL_free(ssl);
	if (fd != -1)
		close(fd);
	free(b);
	OPENSSL_thread_stop();
	return NULL;
}

static void
server_start(struct server *s, int lfd, enum scenario sc)
{
	memset(s, 0, sizeof *s);
	s->lfd = lfd;
	s->sc = sc;
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void
server_join(struct server *s)
{
	pthread_join(s->thread, NULL);
}

static int
listen_on(int family, char *port, size_t size)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof ss);
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof *sin;
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof *sin6;
	}
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 8) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		close(fd);
		return -1;
	}
	snprintf(port, size, "%u",
		 ntohs(family == AF_INET ? sin->sin_port : sin6->sin6_port));
	return fd;
}

static int
group_setup(void **state)
{
	(void)state;
	srandom((unsigned)time(NULL));
	if (make_pki(&server_pki, "strapontin test") != 0 ||
	    make_pki(&other_pki, "some other CA") != 0)
		return -1;
	if ((server_ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    !SSL_CTX_use_certificate(server_ctx, server_pki.cert) ||
	    !SSL_CTX_use_PrivateKey(server_ctx, server_pki.key))
		return -1;
	SSL_CTX_set_options(server_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* So that the TLS 1.1 test can see the server agree to it. */
	SSL_CTX_set_min_proto_version(server_ctx, TLS1_2_VERSION);
	if ((listen4 = listen_on(AF_INET, port4, sizeof port4)) == -1)
		return -1;
	listen6 = listen_on(AF_INET6, port6, sizeof port6); /* may fail */
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (listen4 != -1)
		close(listen4);
	if (listen6 != -1)
		close(listen6);
	SSL_CTX_free(server_ctx);
	free_pki(&server_pki);
	free_pki(&other_pki);
	return 0;
}

static struct st_options
options(void)
{
	struct st_options o = {
	    .host = "127.0.0.1",
	    .port = port4,
	    .ca_file = server_pki.path,
	    .timeout_ms = 5000,
	};
	return o;
}

static int64_t
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* --- tests ---------------------------------------------------------- */

static void
test_pipelining_reverse_order(void **state)
{
	struct st_options o = options();
	struct st_error err = {0};
	struct st_client *c;
	struct server s;
	json_t *res = NULL, *ev = NULL, *p;
	int64_t id1, id2, id3;

	(void)state;
	server_start(&s, listen4, SC_REVERSE);
	c = st_connect(&o, &err);
	assert_non_null(c);
	assert_string_equal(st_tls_version(c), "TLSv1.3");
	assert_true(st_fd(c) >= 0);

	p = json_pack("{s:i}", "n", 1);
	id1 = st_send(c, "one", p, &err);
	json_decref(p);
	id2 = st_send(c, "two", NULL, &err);
	id3 = st_send(c, "fail", NULL, &err);
	assert_true(id1 > 0 && id2 == id1 + 1 && id3 == id2 + 1);

	/* Answers come 3, event, 2, 1: waiting for 2 keeps 3 and the
	 * event. */
	assert_int_equal(st_wait(c, id2, &res, &err), ST_OK);
	assert_string_equal(json_string_value(json_object_get(res, "method")),
			    "two");
	assert_true(json_is_object(json_object_get(res, "params")));
	json_decref(res);
	assert_true(st_buffered(c));

	assert_int_equal(st_wait(c, id1, &res, &err), ST_OK);
	assert_string_equal(json_string_value(json_object_get(res, "method")),
			    "one");
	assert_int_equal(json_integer_value(json_object_get(
			     json_object_get(res, "params"), "n")),
			 1);
	json_decref(res);

	assert_int_equal(st_wait(c, id3, &res, &err), ST_ERR_SERVER);
	assert_null(res);
	assert_int_equal(err.status, ST_ERR_SERVER);
	assert_int_equal(err.code, 409);
	assert_string_equal(err.reason, "sold_out");
	assert_string_equal(err.field, "");
	assert_string_equal(err.message, "No seats left");
	assert_non_null(err.data);
	assert_string_equal(st_strerror(&err), "sold out: 0 of 40 seats left");
	st_error_clear(&err);
	assert_null(err.data);

	assert_int_equal(st_next_event(c, &ev, 0, &err), ST_OK);
	assert_string_equal(json_string_value(json_object_get(ev, "topic")),
			    "offer.published");
	assert_int_equal(json_integer_value(json_object_get(
			     json_object_get(ev, "data"), "id")),
			 7);
	json_decref(ev);
	assert_false(st_buffered(c));

	assert_int_equal(st_next_event(c, &ev, 50, &err), ST_ERR_TIMEOUT);
	assert_null(ev);
	assert_string_equal(err.reason, "timeout");

	st_close(c);
	server_join(&s);
	assert_true(s.handshake_ok);
	assert_int_equal(s.requests, 3);
	assert_int_equal(s.malformed, 0);
}

static void
test_echo_errors_and_raw(void **state)
{
	struct st_options o = options();
	struct st_error err = {0};
	struct st_client *c;
	struct server s;
	json_t *res = NULL, *msg = NULL, *p;
	char *line = NULL;
	size_t len = 0;

	(void)state;
	server_start(&s, listen4, SC_ECHO);
	o.host = "localhost"; /* a name: resolved, SNI, DNS SAN check */
	c = st_connect(&o, &err);
	assert_non_null(c);

	/* An error with a field: the generic sentence. */
	assert_int_equal(st_call(c, "bad", NULL, &res, &err), ST_ERR_SERVER);
	assert_int_equal(err.code, -32602);
	assert_string_equal(err.field, "email");
	assert_string_equal(st_strerror(&err),
			    "Invalid params (invalid_params, field email)");
	st_error_clear(&err);

	/* A result may be asked to be dropped. */
	assert_int_equal(st_call(c, "system.ping", NULL, NULL, &err), ST_OK);

	/* Params the library refuses. */
	p = json_string("positional?");
	assert_int_equal(st_call(c, "x", p, &res, &err), ST_ERR_USAGE);
	json_decref(p);
	assert_int_equal(st_send(c, NULL, NULL, &err), -1);
	assert_int_equal(err.status, ST_ERR_USAGE);

	/* A notification gets no answer; the next call still works. */
	assert_int_equal(st_notify(c, "note", NULL, &err), ST_OK);

	/* A line that grows the buffer well past its first size. */
	assert_int_equal(st_call(c, "big", NULL, &res, &err), ST_OK);
	assert_int_equal(json_string_length(res), 1 << 20);
	json_decref(res);

	/* Not JSON: ST_ERR_PROTOCOL, and the connection goes on. */
	assert_int_equal(st_call(c, "garbage", NULL, &res, &err),
			 ST_ERR_PROTOCOL);
	assert_string_equal(err.reason, "protocol");

	/* An error the server could not tie to a request ends the wait. */
	assert_int_equal(st_call(c, "orphan", NULL, &res, &err), ST_ERR_SERVER);
	assert_string_equal(err.reason, "invalid_request");
	assert_string_equal(st_strerror(&err),
			    "Request too large (invalid_request)");
	st_error_clear(&err);

	/* Raw: bytes out as given, a line back as sent. */
	const char raw[] =
	    "{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"raw\"}\n";
	assert_int_equal(st_send_raw(c, raw, sizeof raw - 1, &err), ST_OK);
	assert_int_equal(st_read_message(c, &msg, 2000, &err), ST_OK);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 99);
	json_decref(msg);
	assert_int_equal(st_send_raw(c, raw, sizeof raw - 1, &err), ST_OK);
	assert_int_equal(st_read_line(c, &line, &len, 2000, &err), ST_OK);
	assert_int_equal(len, strlen(line));
	assert_non_null(strstr(line, "\"id\":99"));
	free(line);
	const char notjson[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
			       "\"garbage\"}\n";
	assert_int_equal(st_send_raw(c, notjson, sizeof notjson - 1, &err),
			 ST_OK);
	assert_int_equal(st_read_line(c, &line, NULL, 2000, &err), ST_OK);
	assert_string_equal(line, "this is not json");
	free(line);

	/* Over 64 MiB without a newline: protocol error, connection done. */
	assert_int_equal(st_call(c, "huge", NULL, &res, &err), ST_ERR_PROTOCOL);
	assert_non_null(strstr(st_strerror(&err), "64 MiB"));
	assert_int_equal(st_call(c, "system.ping", NULL, &res, &err),
			 ST_ERR_IO);

	st_close(c);
	server_join(&s);
	assert_int_equal(s.malformed, 0);
}

static void
test_timeout(void **state)
{
	struct st_options o = options();
	struct st_error err = {0};
	struct st_client *c;
	struct server s;
	struct timespec t0;
	json_t *res = NULL;
	int64_t ms;

	(void)state;
	server_start(&s, listen4, SC_SILENT);
	o.timeout_ms = 200;
	c = st_connect(&o, &err);
	assert_non_null(c);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(st_call(c, "system.ping", NULL, &res, &err),
			 ST_ERR_TIMEOUT);
	ms = elapsed_ms(&t0);
	assert_true(ms >= 190 && ms < 3000);
	assert_null(res);
	assert_string_equal(err.reason, "timeout");
	/* A read timeout leaves the connection usable. */
	assert_int_equal(st_send(c, "again", NULL, &err), 2);
	st_close(c);
	server_join(&s);
	assert_int_equal(s.requests, 2);
}

static void
test_handshake_timeout(void **state)
{
	struct st_options o = options();
	struct st_error err = {0};
	char port[16];
	int fd;

	(void)state;
	/* Nobody accepts: TCP completes in the backlog, TLS never does. */
	fd = listen_on(AF_INET, port, sizeof port);
	assert_true(fd >= 0);
	o.port = port;
	o.timeout_ms = 200;
	assert_null(st_connect(&o, &err));
	assert_int_equal(err.status, ST_ERR_TIMEOUT);
	close(fd);
}

static void
check_server_close(enum scenario sc)
{
	struct st_options o = options();
	struct st_error err = {0};
	struct st_client *c;
	struct server s;
	json_t *res = NULL;

	server_start(&s, listen4, sc);
	c = st_connect(&o, &err);
	assert_non_null(c);
	assert_int_equal(st_call(c, "system.ping", NULL, &res, &err),
			 ST_ERR_IO);
	assert_string_equal(err.reason, "io");
	/* Broken for good, without touching the socket again. */
	assert_int_equal(st_call(c, "system.ping", NULL, &res, &err),
			 ST_ERR_IO);
	assert_non_null(strstr(err.message, "earlier error"));
	st_close(c);
	server_join(&s);
}

static void
test_server_closes(void **state)
{
	(void)state;
	check_server_close(SC_CLOSE);
	check_server_close(SC_CLOSE_NOTIFY);
}

static void
test_no_sigpipe(void **state)
{
	struct st_options o = options();
	struct st_error err = {0};
	struct st_client *c;
	struct server s;
	char buf[4096];
	int i, r = ST_OK;

	(void)state;
	server_start(&s, listen4, SC_CLOSE);
	c = st_connect(&o, &err);
	assert_non_null(c);
	assert_true(st_send(c, "x", NULL, &err) > 0);
	server_join(&s);
	/* The peer is gone: writes soon fail with EPIPE / ECONNRESET, which
	 * must come back as ST_ERR_IO, not as a fatal SIGPIPE. */
	memset(buf, ' ', sizeof buf);
	buf[sizeof buf - 1] = '\n';
	for (i = 0; i < 100 && r == ST_OK; i++) {
		r = st_send_raw(c, buf, sizeof buf, &err);
		usleep(2000);
	}
	assert_int_equal(r, ST_ERR_IO);
	st_close(c);
}

static void
test_verification(void **state)
{
	struct st_options o;
	struct st_error err = {0};
	struct st_client *c;
	struct server s;

	(void)state;
	/* Another CA. */
	o = options();
	o.ca_file = other_pki.path;
	server_start(&s, listen4, SC_HANDSHAKE);
	assert_null(st_connect(&o, &err));
	assert_int_equal(err.status, ST_ERR_TLS);
	assert_string_equal(err.reason, "certificate");
	assert_non_null(strstr(st_strerror(&err), "self-signed"));
	server_join(&s);
	assert_false(s.handshake_ok);

	/* A name the certificate does not carry. */
	o = options();
	o.server_name = "www.example.org";
	server_start(&s, listen4, SC_HANDSHAKE);
	assert_null(st_connect(&o, &err));
	assert_int_equal(err.status, ST_ERR_TLS);
	assert_non_null(strstr(st_strerror(&err), "hostname mismatch"));
	server_join(&s);

	/* An address the certificate does not carry. */
	o = options();
	o.server_name = "127.0.0.2";
	server_start(&s, listen4, SC_HANDSHAKE);
	assert_null(st_connect(&o, &err));
	assert_int_equal(err.status, ST_ERR_TLS);
	assert_non_null(strstr(st_strerror(&err), "IP address mismatch"));
	server_join(&s);

	/* The right name, given apart from the address. */
	o = options();
	o.server_name = "localhost";
	server_start(&s, listen4, SC_HANDSHAKE);
	c = st_connect(&o, &err);
	assert_non_null(c);
	st_close(c);
	server_join(&s);
	assert_true(s.handshake_ok);

	/* The test-only escape hatch. */
	o = options();
	o.ca_file = other_pki.path;
	o.insecure_for_tests = true;
	server_start(&s, listen4, SC_HANDSHAKE);
	c = st_connect(&o, &err);
	assert_non_null(c);
	st_close(c);
	server_join(&s);

	/* A CA file that is not there: no connection is even tried. */
	o = options();
	o.ca_file = "/nonexistent/ca.pem";
	server_start(&s, listen4, SC_HANDSHAKE);
	assert_null(st_connect(&o, &err));
	assert_int_equal(err.status, ST_ERR_TLS);
	assert_non_null(strstr(err.message, "/nonexistent/ca.pem"));
	/* The TCP connection was made before TLS was set up: let the server
	 * see its end. */
	server_join(&s);
}

static void
test_tls_versions(void **state)
{
	struct st_options o = options();
	struct st_error err = {0};
	struct st_client *c;
	struct server s;

	(void)state;
	o.max_tls_version = TLS1_2_VERSION;
	server_start(&s, listen4, SC_HANDSHAKE);
	c = st_connect(&o, &err);
	assert_non_null(c);
	assert_string_equal(st_tls_version(c), "TLSv1.2");
	st_close(c);
	server_join(&s);

	/* The server wants 1.2 at least: a 1.1-only client is refused. */
	o.min_tls_version = TLS1_1_VERSION;
	o.max_tls_version = TLS1_1_VERSION;
	server_start(&s, listen4, SC_HANDSHAKE);
	assert_null(st_connect(&o, &err));
	assert_int_equal(err.status, ST_ERR_TLS);
	server_join(&s);
	assert_false(s.handshake_ok);
}

static void
test_ipv6(void **state)
{
	struct st_options o = options();
	struct st_error err = {0};
	struct st_client *c;
	struct server s;
	json_t *res = NULL;

	(void)state;
	if (listen6 == -1)
		skip();
	o.host = "[::1]";
	o.port = port6;
	server_start(&s, listen6, SC_ECHO);
	c = st_connect(&o, &err);
	if (c == NULL)
		fail_msg("%s", st_strerror(&err));
	assert_int_equal(st_call(c, "system.ping", NULL, &res, &err), ST_OK);
	json_decref(res);
	st_close(c);
	server_join(&s);
}

static void
test_connect_errors(void **state)
{
	struct st_options o = options();
	struct st_error err = {0};
	char port[16];
	int fd;

	(void)state;
	assert_null(st_connect(NULL, &err));
	assert_int_equal(err.status, ST_ERR_USAGE);
	o.host = "";
	assert_null(st_connect(&o, NULL));

	/* A port nobody listens on any more. */
	fd = listen_on(AF_INET, port, sizeof port);
	assert_true(fd >= 0);
	close(fd);
	o = options();
	o.port = port;
	assert_null(st_connect(&o, &err));
	assert_int_equal(err.status, ST_ERR_CONNECT);
	assert_non_null(strstr(st_strerror(&err), "refused"));

	o.host = "no-such-host.invalid";
	assert_null(st_connect(&o, &err));
	assert_int_equal(err.status, ST_ERR_CONNECT);
	assert_string_equal(err.reason, "resolve");
}

static void
test_strerror(void **state)
{
	struct st_error e;

	(void)state;
	memset(&e, 0, sizeof e);
	e.status = ST_ERR_SERVER;
	e.code = 409;
	snprintf(e.reason, sizeof e.reason, "sold_out");
	snprintf(e.message, sizeof e.message, "No seats left");
	e.data =
	    json_pack("{s:s, s:i}", "reason", "sold_out", "seats_available", 1);
	assert_string_equal(st_strerror(&e), "sold out: 1 seat left");
	st_error_clear(&e);

	e.status = ST_ERR_SERVER;
	e.code = 403;
	snprintf(e.message, sizeof e.message, "Forbidden");
	assert_string_equal(st_strerror(&e), "Forbidden (error 403)");
	snprintf(e.reason, sizeof e.reason, "forbidden");
	assert_string_equal(st_strerror(&e), "Forbidden (forbidden)");
	e.message[0] = '\0';
	assert_string_equal(st_strerror(&e), "forbidden (error 403)");

	memset(&e, 0, sizeof e);
	e.status = ST_ERR_TIMEOUT;
	assert_string_equal(st_strerror(&e), "no answer within the timeout");
	assert_string_equal(st_strerror(NULL), "no error information");
	st_error_clear(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pipelining_reverse_order),
	    cmocka_unit_test(test_echo_errors_and_raw),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_handshake_timeout),
	    cmocka_unit_test(test_server_closes),
	    cmocka_unit_test(test_no_sigpipe),
	    cmocka_unit_test(test_verification),
	    cmocka_unit_test(test_tls_versions),
	    cmocka_unit_test(test_ipv6),
	    cmocka_unit_test(test_connect_errors),
	    cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
