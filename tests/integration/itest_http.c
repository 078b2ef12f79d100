/*
 * The HTTPS front door (docs/http.md): POST /rpc with the session in a
 * cookie, the Origin and Content-Type rules, the headers on every answer,
 * static files and the paths that must not escape www_dir, /healthz,
 * /qr, the event stream, a client that leaves half-way, and the line
 * transport working alongside. One daemon serves every test.
 */
#include "web.h"
#include "world.h"
#include "ticket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* [http] timeout: short, for the slowloris test, but long enough for
 * every other test's client to send its request in time. */
#define HTTP_TIMEOUT_S 4

static struct h_daemon *d;
static int port;
static char origin[64];
static char www[1024];

#define LOGIN_BODY "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"auth.login\"," \
	"\"params\":{\"email\":\"" H_ADMIN_EMAIL "\",\"password\":\"" \
	H_ADMIN_PASSWORD "\"}}"
#define WHOAMI_BODY "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"auth.whoami\"}"
#define SECRET "top secret, outside www_dir"

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[2048];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		h_fail("cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static int
setup(void **state)
{
	char ini[4096], outside[1200], link[2200];

	/* www_dir: a page, a module, a style, a directory, and a symbolic
	 * link to a file outside it. */
	snprintf(www, sizeof www, "%s/run/http_www", h_test_dir());
	snprintf(outside, sizeof outside, "%s/run/http_secret.txt",
	    h_test_dir());
	h_sh("rm -rf '%s' && mkdir -p '%s/js' '%s/sub'", www, www, www);
	write_file(www, "index.html", "<!doctype html><html lang=\"fr\">"
	    "<title>Strapontin</title></html>\n");
	write_file(www, "js/app.js", "export const x = 1;\n");
	write_file(www, "style.css", "body { color: #111; }\n");
	write_file(www, "sub/page.txt", "bonjour\n");
	write_file(www, ".hidden.txt", "hidden\n");
	{
		FILE *f = fopen(outside, "w");

		if (f == NULL)
			h_fail("cannot write %s", outside);
		fputs(SECRET "\n", f);
		fclose(f);
	}
	snprintf(link, sizeof link, "%s/leak.txt", www);
	unlink(link);
	if (symlink(outside, link) != 0)
		h_fail("symlink failed");
	snprintf(link, sizeof link, "%s/up", www);
	unlink(link);
	if (symlink("..", link) != 0)
		h_fail("symlink failed");

	port = h_free_port();
	snprintf(origin, sizeof origin, "https://localhost:%d", port);
	snprintf(ini, sizeof ini, "[http]\nlisten = 127.0.0.1:%d\n"
	    "www_dir = %s\nmax_connections = 40\ntimeout = %d\n[server]\n"
	    "max_request_bytes = 4096\nmax_output_bytes = 65536\n"
	    "max_connections_per_address = 50\n", port, www,
	    HTTP_TIMEOUT_S * h_timeout_scale());
	d = h_daemon_start("http", ini);
	return 0;
}

static int
teardown(void **state)
{
	assert_int_equal(h_daemon_stop(d), 0);
	return 0;
}

/* Every answer of ours carries these (docs/http.md, "Headers"). */
static void
assert_security_headers(const struct web_resp *r)
{
	const char *v;

	v = web_header(r, "Content-Security-Policy");
	assert_non_null(v);
	assert_string_equal(v, "default-src 'self'; img-src 'self' data:; "
	    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
	assert_non_null(web_header(r, "Strict-Transport-Security"));
	assert_string_equal(web_header(r, "Strict-Transport-Security"),
	    "max-age=31536000");
	assert_non_null(web_header(r, "X-Content-Type-Options"));
	assert_string_equal(web_header(r, "X-Content-Type-Options"), "nosniff");
	assert_non_null(web_header(r, "Referrer-Policy"));
	assert_string_equal(web_header(r, "Referrer-Policy"), "no-referrer");
	assert_non_null(web_header(r, "Server"));
	assert_string_equal(web_header(r, "Server"), "strapontind");
}

static struct web_resp *
rpc(const char *cookie, const char *body)
{
	return web_post(port, "/rpc", "application/json", origin, cookie,
	    body);
}

/* The "st_session=TOKEN" part of a Set-Cookie, for a Cookie header. */
static char *
cookie_of(const struct web_resp *r)
{
	const char *sc = web_header(r, "Set-Cookie");
	size_t n;

	assert_non_null(sc);
	n = strcspn(sc, ";");
	return strndup(sc, n);
}

static char *
login(void)
{
	struct web_resp *r = rpc(NULL, LOGIN_BODY);
	char *c;

	assert_int_equal(r->status, 200);
	c = cookie_of(r);
	web_free(r);
	return c;
}

static void
test_rpc_and_batch(void **state)
{
	struct web_resp *r;
	json_t *a;

	r = rpc(NULL, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"system.ping\"}");
	assert_int_equal(r->status, 200);
	assert_string_equal(web_header(r, "Content-Type"), "application/json");
	assert_security_headers(r);
	a = json_loads(r->body, 0, NULL);
	assert_non_null(a);
	assert_int_equal(json_integer_value(json_object_get(a, "id")), 7);
	assert_non_null(json_object_get(a, "result"));
	json_decref(a);
	web_free(r);

	/* A batch: one answer array, in order. */
	r = rpc(NULL, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system.ping\"},"
	    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"no.such\"},"
	    "{\"jsonrpc\":\"2.0\",\"method\":\"system.ping\"}]");
	assert_int_equal(r->status, 200);
	a = json_loads(r->body, 0, NULL);
	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a,
	    1), "id")), 2);
	assert_non_null(json_object_get(json_array_get(a, 1), "error"));
	json_decref(a);
	web_free(r);

	/* Notifications alone: 204, no body. */
	r = rpc(NULL, "{\"jsonrpc\":\"2.0\",\"method\":\"system.ping\"}");
	assert_int_equal(r->status, 204);
	assert_int_equal(r->body_len, 0);
	web_free(r);
	r = rpc(NULL, "[{\"jsonrpc\":\"2.0\",\"method\":\"system.ping\"},"
	    "{\"jsonrpc\":\"2.0\",\"method\":\"system.ping\"}]");
	assert_int_equal(r->status, 204);
	web_free(r);

	/* Not JSON: the JSON-RPC parse error, as on the line transport. */
	r = rpc(NULL, "{nope");
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, "parse_error"));
	web_free(r);

	/* Methods that need a login answer unauthenticated without one. */
	r = rpc(NULL, WHOAMI_BODY);
	assert_non_null(strstr(r->body, "unauthenticated"));
	web_free(r);
}

static void
test_cookie_session(void **state)
{
	struct web_resp *r;
	const char *sc;
	char *cookie;
	json_t *a;

	r = rpc(NULL, LOGIN_BODY);
	assert_int_equal(r->status, 200);
	assert_security_headers(r);
	/* The token is in the cookie, never in the body. */
	a = json_loads(r->body, 0, NULL);
	assert_non_null(json_object_get(json_object_get(a, "result"), "user"));
	assert_non_null(json_object_get(json_object_get(a, "result"),
	    "expires_at"));
	assert_null(json_object_get(json_object_get(a, "result"), "token"));
	json_decref(a);
	assert_int_equal(web_header_count(r, "Set-Cookie"), 1);
	sc = web_header(r, "Set-Cookie");
	assert_non_null(sc);
	assert_true(strncmp(sc, "st_session=", 11) == 0);
	assert_non_null(strstr(sc, "; HttpOnly"));
	assert_non_null(strstr(sc, "; Secure"));
	assert_non_null(strstr(sc, "; SameSite=Strict"));
	assert_non_null(strstr(sc, "; Path=/"));
	assert_non_null(strstr(sc, "; Max-Age=43200"));
	assert_string_equal(web_header(r, "Cache-Control"), "no-store");
	cookie = cookie_of(r);
	/* The token appears nowhere in the log. */
	assert_false(h_log_contains(d, cookie + 11));
	web_free(r);

	/* The cookie logs later requests in. */
	r = rpc(cookie, WHOAMI_BODY);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, H_ADMIN_EMAIL));
	assert_null(web_header(r, "Set-Cookie"));
	web_free(r);

	/* Logout revokes it server-side and clears it. */
	r = rpc(cookie, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":"
	    "\"auth.logout\"}");
	assert_int_equal(r->status, 200);
	assert_null(strstr(r->body, "\"error\""));
	sc = web_header(r, "Set-Cookie");
	assert_non_null(sc);
	assert_true(strncmp(sc, "st_session=;", 12) == 0);
	assert_non_null(strstr(sc, "Max-Age=0"));
	web_free(r);

	/* The old cookie is anonymous now, and is cleared again. */
	r = rpc(cookie, WHOAMI_BODY);
	assert_non_null(strstr(r->body, "unauthenticated"));
	sc = web_header(r, "Set-Cookie");
	assert_non_null(sc);
	assert_non_null(strstr(sc, "Max-Age=0"));
	web_free(r);
	free(cookie);

	/* A made-up cookie is no one. */
	r = rpc("st_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    WHOAMI_BODY);
	assert_non_null(strstr(r->body, "unauthenticated"));
	web_free(r);
}

static void
test_origin_and_type(void **state)
{
	const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"system.ping\"}";
	struct web_resp *r;

	r = web_post(port, "/rpc", "application/json", NULL, NULL, body);
	assert_int_equal(r->status, 403);
	assert_security_headers(r);
	assert_null(strstr(r->body, "jsonrpc"));
	web_free(r);
	r = web_post(port, "/rpc", "application/json", "https://evil.example",
	    NULL, body);
	assert_int_equal(r->status, 403);
	web_free(r);
	/* Another port is another origin. */
	r = web_post(port, "/rpc", "application/json", "https://localhost:1",
	    NULL, body);
	assert_int_equal(r->status, 403);
	web_free(r);
	/* Plain http is another origin too. */
	{
		char o[80];

		snprintf(o, sizeof o, "http://localhost:%d", port);
		r = web_post(port, "/rpc", "application/json", o, NULL, body);
		assert_int_equal(r->status, 403);
		web_free(r);
	}
	r = web_post(port, "/rpc", "text/plain", origin, NULL, body);
	assert_int_equal(r->status, 415);
	assert_security_headers(r);
	web_free(r);
	r = web_post(port, "/rpc", NULL, origin, NULL, body);
	assert_int_equal(r->status, 415);
	web_free(r);
	r = web_post(port, "/rpc", "application/json; charset=utf-8", origin,
	    NULL, body);
	assert_int_equal(r->status, 200);
	web_free(r);
	/* GET /rpc: 405 with Allow. */
	r = web_get(port, "/rpc", NULL);
	assert_int_equal(r->status, 405);
	assert_string_equal(web_header(r, "Allow"), "POST");
	assert_security_headers(r);
	web_free(r);
	r = web_post(port, "/index.html", "application/json", origin, NULL,
	    body);
	assert_int_equal(r->status, 405);
	assert_string_equal(web_header(r, "Allow"), "GET, HEAD");
	web_free(r);
}

static void
test_body_cap(void **state)
{
	size_t n = 8192;
	char *big = malloc(n + 100);
	struct web_resp *r;

	/* max_request_bytes is 4096 in this daemon. */
	snprintf(big, n + 100, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
	    "\"system.ping\",\"params\":{\"x\":\"");
	memset(big + strlen(big), 'a', n);
	strcpy(big + strlen(big) - 0, "\"}}");
	r = rpc(NULL, big);
	assert_int_equal(r->status, 413);
	web_free(r);
	free(big);
	/* Still serving. */
	r = rpc(NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system.ping\"}");
	assert_int_equal(r->status, 200);
	web_free(r);
}

static void
test_static(void **state)
{
	struct web_resp *r;
	char etag[128], inm[200];

	r = web_get(port, "/", NULL);
	assert_int_equal(r->status, 200);
	assert_security_headers(r);
	assert_string_equal(web_header(r, "Content-Type"),
	    "text/html; charset=utf-8");
	assert_string_equal(web_header(r, "Cache-Control"), "no-cache");
	assert_non_null(strstr(r->body, "<title>Strapontin</title>"));
	assert_non_null(web_header(r, "ETag"));
	snprintf(etag, sizeof etag, "%s", web_header(r, "ETag"));
	web_free(r);

	/* Revalidation: 304, no body, the headers all the same. */
	snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
	r = web_get(port, "/index.html", inm);
	assert_int_equal(r->status, 304);
	assert_int_equal(r->body_len, 0);
	assert_security_headers(r);
	web_free(r);
	r = web_get(port, "/index.html", "If-None-Match: \"other\"\r\n");
	assert_int_equal(r->status, 200);
	web_free(r);

	r = web_get(port, "/js/app.js", NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(web_header(r, "Content-Type"),
	    "text/javascript; charset=utf-8");
	assert_string_equal(web_header(r, "Cache-Control"), "max-age=300");
	assert_string_equal(r->body, "export const x = 1;\n");
	web_free(r);
	r = web_get(port, "/style.css", NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(web_header(r, "Content-Type"),
	    "text/css; charset=utf-8");
	web_free(r);

	/* HEAD: the headers, no body. */
	r = web_raw(port, "HEAD /style.css HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", 56);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->body_len, 0);
	web_free(r);

	/* No listing, no hidden files, nothing unknown. */
	r = web_get(port, "/sub/", NULL);
	assert_int_equal(r->status, 404);
	assert_security_headers(r);
	web_free(r);
	r = web_get(port, "/sub", NULL);
	assert_int_equal(r->status, 404);
	web_free(r);
	r = web_get(port, "/.hidden.txt", NULL);
	assert_int_equal(r->status, 404);
	web_free(r);
	r = web_get(port, "/nothing.html", NULL);
	assert_int_equal(r->status, 404);
	web_free(r);
	r = web_get(port, "/sub/page.txt", NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "bonjour\n");
	web_free(r);

	/* Other methods: 405 with Allow. */
	r = web_raw(port, "DELETE /index.html HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n", 59);
	assert_int_equal(r->status, 405);
	assert_string_equal(web_header(r, "Allow"), "GET, HEAD");
	web_free(r);
}

static void
test_traversal(void **state)
{
	static const char *const paths[] = {
		"/../http_secret.txt",
		"/js/../../http_secret.txt",
		"/%2e%2e/http_secret.txt",
		"/%2E%2E/http_secret.txt",
		"/%252e%252e/http_secret.txt",
		"/..%2fhttp_secret.txt",
		"/js/..%2f..%2fhttp_secret.txt",
		"/..%5chttp_secret.txt",
		"/..\\http_secret.txt",
		"/index.html%00.txt",
		"/leak.txt",
		"/up/http_secret.txt",
		"//etc/passwd",
		"/./index.html",
	};
	struct web_resp *r;
	size_t i;
	char req[512];
	int n;

	for (i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		/* Raw, so that nothing normalises the path on the way. */
		n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n"
		    "Connection: close\r\n\r\n", paths[i]);
		r = web_raw(port, req, (size_t)n);
		if (r->status != 404 && r->status != 400)
			h_fail("%s answered %d", paths[i], r->status);
		assert_null(strstr(r->body, SECRET));
		assert_null(strstr(r->body, "root:"));
		web_free(r);
	}
}

static void
test_healthz_and_qr(void **state)
{
	struct web_resp *r;
	char *svg;
	char path[64];

	r = web_get(port, "/healthz", NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->body, "ok\n");
	assert_security_headers(r);
	web_free(r);

	/* A valid code (its check character computed as the server does),
	 * in lower case with look-alikes: the same image as the canonical
	 * form. */
	{
		char body[16], code[20], typed[20];
		size_t j;

		memcpy(body, "ABCDEFGHJKMNPQR", 15);
		body[15] = '\0';
		snprintf(code, sizeof code, "ABCD-EFGH-JKMN-PQR%c",
		    ticket_check_char(body));
		snprintf(path, sizeof path, "/qr/%s.svg", code);
		r = web_get(port, path, NULL);
		assert_int_equal(r->status, 200);
		assert_string_equal(web_header(r, "Content-Type"),
		    "image/svg+xml");
		assert_security_headers(r);
		assert_non_null(strstr(r->body, "<svg"));
		svg = strdup(r->body);
		web_free(r);
		for (j = 0; code[j]; j++)
			typed[j] = (char)(code[j] >= 'A' && code[j] <= 'Z' ?
			    code[j] - 'A' + 'a' : code[j]);
		typed[j] = '\0';
		snprintf(path, sizeof path, "/qr/%s.svg", typed);
		r = web_get(port, path, NULL);
		assert_int_equal(r->status, 200);
		assert_string_equal(r->body, svg);
		web_free(r);
		free(svg);
		/* A wrong check character. */
		code[18] = code[18] == 'A' ? 'B' : 'A';
		snprintf(path, sizeof path, "/qr/%s.svg", code);
		r = web_get(port, path, NULL);
		assert_int_equal(r->status, 404);
		assert_security_headers(r);
		web_free(r);
	}
	r = web_get(port, "/qr/hello.svg", NULL);
	assert_int_equal(r->status, 404);
	web_free(r);
}

static void
test_line_alongside(void **state)
{
	struct st_client *c = h_login_admin(d);

	json_decref(h_call_ok(c, "system.ping", NULL));
	st_close(c);
}

/* A client that sends half a request, or leaves before its answer. */
static void
test_client_leaves(void **state)
{
	struct web_stream *s;
	struct web_resp *r;
	char req[1024];
	char *cookie = login();
	int i, n;

	for (i = 0; i < 5; i++) {
		/* Half a body, then gone. */
		s = web_stream_open(port, NULL);
		n = snprintf(req, sizeof req, "POST /rpc HTTP/1.1\r\nHost: "
		    "localhost:%d\r\nOrigin: %s\r\nContent-Type: "
		    "application/json\r\nContent-Length: 100\r\n\r\n{\"json",
		    port, origin);
		web_stream_send(s, req, (size_t)n);
		web_stream_close(s);
		/* A whole request with the cookie (its session is being
		 * looked up when the client goes), then gone. */
		s = web_stream_open(port, NULL);
		n = snprintf(req, sizeof req, "POST /rpc HTTP/1.1\r\nHost: "
		    "localhost:%d\r\nOrigin: %s\r\nContent-Type: "
		    "application/json\r\nCookie: %s\r\nContent-Length: %zu"
		    "\r\n\r\n%s", port, origin, cookie, strlen(WHOAMI_BODY),
		    WHOAMI_BODY);
		web_stream_send(s, req, (size_t)n);
		web_stream_close(s);
		/* A login, gone before the password is checked. */
		s = web_stream_open(port, NULL);
		n = snprintf(req, sizeof req, "POST /rpc HTTP/1.1\r\nHost: "
		    "localhost:%d\r\nOrigin: %s\r\nContent-Type: "
		    "application/json\r\nContent-Length: %zu\r\n\r\n%s", port,
		    origin, strlen(LOGIN_BODY), LOGIN_BODY);
		web_stream_send(s, req, (size_t)n);
		web_stream_close(s);
	}
	h_sleep_ms(300);
	r = rpc(cookie, WHOAMI_BODY);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, H_ADMIN_EMAIL));
	web_free(r);
	free(cookie);
	assert_false(h_log_has_sanitizer_report(d));
}

static void
test_events_stream(void **state)
{
	struct world w;
	struct web_stream *s;
	struct web_resp *r;
	char req[1024], *cookie;
	json_int_t o, b;
	json_t *bk;

	/* Not logged in: 401, no stream. */
	r = web_get(port, "/events?topics=booking.created", NULL);
	assert_int_equal(r->status, 401);
	assert_security_headers(r);
	web_free(r);

	world_build(&w, d);
	/* The referent logs in on the web and listens. */
	{
		char body[512];

		snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,"
		    "\"method\":\"auth.login\",\"params\":{\"email\":\"%s\","
		    "\"password\":\"%s\"}}", W_REF_EMAIL, W_PASSWORD);
		r = rpc(NULL, body);
		assert_int_equal(r->status, 200);
		cookie = cookie_of(r);
		web_free(r);
	}
	/* An unknown topic: the subscription's own error, 400. */
	snprintf(req, sizeof req, "Cookie: %s\r\n", cookie);
	r = web_get(port, "/events?topics=everything", req);
	assert_int_equal(r->status, 400);
	assert_non_null(strstr(r->body, "invalid_params"));
	web_free(r);

	snprintf(req, sizeof req, "GET /events?topics=booking.created,"
	    "offer.published HTTP/1.1\r\nHost: localhost:%d\r\nCookie: %s\r\n"
	    "\r\n", port, cookie);
	s = web_stream_open(port, req);
	assert_true(web_stream_wait(s, "text/event-stream", 5000));
	assert_non_null(strstr(web_stream_text(s),
	    "Content-Security-Policy: default-src 'self'"));

	/* A booking made on another connection reaches the stream. */
	o = w_offer(w.partner, 10, 2, NULL);
	b = w_beneficiary(w.ref, "Anna", "Karenine");
	bk = w_book(w.ref, o, b, 1);
	assert_true(web_stream_wait(s, "\"booking.created\"", 10000));
	assert_non_null(strstr(web_stream_text(s), "data: {"));
	json_decref(bk);
	web_stream_close(s);
	free(cookie);

	/* The structure's calendar, anonymous: one upcoming permanence. */
	{
		json_t *pm = h_call_ok(w.ref, "permanence.schedule", json_pack(
		    "{s:s, s:s, s:s}", "starts_at", w_time(2 * W_DAY),
		    "ends_at", w_time(2 * W_DAY + 7200), "location",
		    "Salle des fêtes"));
		char path[64];

		json_decref(pm);
		snprintf(path, sizeof path, "/p/%lld.ics",
		    (long long)w.structure_id);
		r = web_get(port, path, NULL);
		assert_int_equal(r->status, 200);
		assert_string_equal(web_header(r, "Content-Type"),
		    "text/calendar; charset=utf-8");
		assert_security_headers(r);
		assert_true(strncmp(r->body, "BEGIN:VCALENDAR\r\n", 17) == 0);
		assert_non_null(strstr(r->body, "BEGIN:VEVENT\r\n"));
		assert_non_null(strstr(r->body, "Salle des f"));
		assert_non_null(strstr(r->body, "END:VCALENDAR\r\n"));
		web_free(r);
		r = web_get(port, "/p/999999.ics", NULL);
		assert_int_equal(r->status, 404);
		web_free(r);
		r = web_get(port, "/p/x1.ics", NULL);
		assert_int_equal(r->status, 404);
		web_free(r);
	}
	world_close(&w);
	/* The daemon noticed nothing wrong and still serves. */
	r = web_get(port, "/healthz", NULL);
	assert_int_equal(r->status, 200);
	web_free(r);
}

/*
 * A subscriber that does not read: once its stream holds more than
 * server.max_output_bytes (64 KiB here) it gets `resync`, and past twice
 * that the stream is ended; the daemon goes on serving. The events are
 * written straight into the outbox, big ones, so that a few hundred fill
 * the socket buffers and the daemon's.
 */
static void
test_events_slow_reader(void **state)
{
	struct web_stream *s;
	struct web_resp *r;
	char req[1024], *cookie = login();
	const char *text, *p;
	PGconn *db;
	int n = 0;

	snprintf(req, sizeof req, "GET /events?topics=offer.published "
	    "HTTP/1.1\r\nHost: localhost:%d\r\nCookie: %s\r\n\r\n", port,
	    cookie);
	s = web_stream_open(port, req);
	assert_true(web_stream_wait(s, "text/event-stream", 5000));

	db = h_db_connect(d->conninfo);
	h_db_exec(db, "INSERT INTO event_outbox (topic, partner_id, "
	    "structure_id, data) SELECT 'offer.published', NULL, NULL, "
	    "jsonb_build_object('id', g, 'pad', repeat('x', 4000)) "
	    "FROM generate_series(1, 600) g");
	h_db_exec(db, "NOTIFY " "strapontin_outbox");
	PQfinish(db);
	assert_true(h_log_wait(d, "event stream ended: the client reads too "
	    "slowly", 20000));

	/* Read what was sent before the end: the first events, resync,
	 * and not the 600. */
	web_stream_wait(s, "never sent", 3000);
	text = web_stream_text(s);
	assert_non_null(strstr(text, "\"topic\":\"resync\""));
	for (p = text; (p = strstr(p, "\"pad\"")) != NULL; p++)
		n++;
	assert_true(n > 0);
	assert_true(n < 600);
	web_stream_close(s);

	/* Everyone else is still served. */
	r = rpc(cookie, WHOAMI_BODY);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, H_ADMIN_EMAIL));
	web_free(r);
	free(cookie);
	assert_false(h_log_has_sanitizer_report(d));
}

/* auth.resume over HTTP: the token of another session (here, the cookie
 * of a login) becomes this browser's cookie, never a body's field. */
static void
test_resume_sets_cookie(void **state)
{
	struct web_resp *r;
	char *cookie = login(), body[256], *again;
	const char *token = strchr(cookie, '=') + 1;

	snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":3,"
	    "\"method\":\"auth.resume\",\"params\":{\"token\":\"%s\"}}",
	    token);
	r = rpc(NULL, body);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, "\"result\""));
	assert_null(strstr(r->body, token));
	assert_null(strstr(r->body, "\"token\""));
	assert_non_null(strstr(web_header(r, "Set-Cookie"), "HttpOnly"));
	again = cookie_of(r);
	assert_string_equal(again, cookie);
	web_free(r);
	r = rpc(again, WHOAMI_BODY);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, H_ADMIN_EMAIL));
	web_free(r);
	free(again);
	free(cookie);
}

/* [http] max_connections (40 here): one more is answered 503, and once
 * they are gone the desk serves again. */
static void
test_connection_cap(void **state)
{
	struct web_stream *s[40];
	struct web_resp *r;
	int i;

	h_sleep_ms(300);        /* the earlier tests' connections close */
	for (i = 0; i < 40; i++)
		s[i] = web_stream_open(port, NULL);
	r = web_get(port, "/healthz", NULL);
	assert_int_equal(r->status, 503);
	assert_non_null(strstr(r->body, "Too many connections"));
	assert_security_headers(r);
	web_free(r);
	for (i = 0; i < 40; i++)
		web_stream_close(s[i]);
	h_sleep_ms(300);
	r = web_get(port, "/healthz", NULL);
	assert_int_equal(r->status, 200);
	web_free(r);
}

/* True if the daemon closes a new TCP connection to port at once,
 * before any TLS: a client's first flight is the daemon's to wait for. */
static bool
closed_at_once(int to)
{
	struct sockaddr_in sin;
	struct pollfd pfd;
	char c;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)to);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 2000 * h_timeout_scale()) != 1) {
		close(fd);
		return false;
	}
	n = recv(fd, &c, 1, 0);
	close(fd);
	return n <= 0;
}

/* server.max_connections_per_address (50 here) counts one address's
 * connections on both listeners together: past it a new HTTPS connection
 * is closed at once, and once one of them is gone the desk serves again. */
static void
test_per_address_cap(void **state)
{
	struct st_client *line[30];
	struct web_stream *s[20];
	struct web_resp *r;
	int i;

	h_sleep_ms(300);        /* the earlier tests' connections close */
	for (i = 0; i < 30; i++)
		line[i] = h_connect(d);
	assert_false(closed_at_once(port));
	h_sleep_ms(300);        /* that probe is counted until it closes */
	for (i = 0; i < 20; i++)
		s[i] = web_stream_open(port, NULL);
	assert_true(closed_at_once(port));
	st_close(line[0]);
	h_sleep_ms(300);
	r = web_get(port, "/healthz", NULL);
	assert_int_equal(r->status, 200);
	web_free(r);
	for (i = 1; i < 30; i++)
		st_close(line[i]);
	for (i = 0; i < 20; i++)
		web_stream_close(s[i]);
	h_sleep_ms(300);
}

/* QR images are rate-limited per address (a burst of 60, then 2 a
 * second): a flood gets 429 with Retry-After. Last in the file: it uses
 * up this address's budget. */
static void
test_qr_rate_limit(void **state)
{
	struct web_resp *r;
	int i, status = 0;

	for (i = 0; i < 200 && status != 429; i++) {
		r = web_get(port, "/qr/0000-0000-0000-0000.svg", NULL);
		status = r->status;
		if (status == 429) {
			assert_non_null(web_header(r, "Retry-After"));
			assert_security_headers(r);
		}
		web_free(r);
	}
	assert_int_equal(status, 429);
	assert_true(i > 50);
	/* Other routes are not limited with it. */
	r = web_get(port, "/healthz", NULL);
	assert_int_equal(r->status, 200);
	web_free(r);
}

/* A refusal made while reading a request: our headers, a reason, and the
 * connection closed. */
static void
assert_refused(const char *request, int status)
{
	struct web_resp *r = web_raw(port, request, strlen(request));

	assert_int_equal(r->status, status);
	assert_security_headers(r);
	assert_string_equal(web_header(r, "Connection"), "close");
	assert_string_equal(web_header(r, "Content-Type"),
	    "text/plain; charset=utf-8");
	assert_non_null(strstr(r->body, "Request refused"));
	web_free(r);
}

/* What evhttp used to answer with its own page, without our headers
 * (docs/http.md, "What is read"). */
static void
test_refusals_have_headers(void **state)
{
	char *big;
	size_t n = 10000;
	int off;

	assert_refused("GET /index.html HTTP/1.1 extra\r\nHost: x\r\n\r\n",
	    400);
	assert_refused("GET http://localhost/ HTTP/1.1\r\nHost: x\r\n\r\n",
	    400);
	assert_refused("GET / HTTP/1.1\nHost: x\n\n", 400);
	assert_refused("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);
	assert_refused("GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n",
	    400);
	assert_refused("GET / HTTP/1.1\r\n\r\n", 400);
	assert_refused("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
	/* Transfer-Encoding alone is not supported; with Content-Length it
	 * is the request-smuggling case. */
	assert_refused("POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n0\r\n\r\n", 501);
	assert_refused("POST /rpc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
	    "chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400);
	assert_refused("POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	    "Content-Length: 7\r\n\r\nhello", 400);
	/* Headers over max_header_bytes (8192 by default): 431. */
	big = malloc(n + 200);
	off = snprintf(big, n + 200, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ");
	memset(big + off, 'a', n);
	strcpy(big + off + n, "\r\n\r\n");
	assert_refused(big, 431);
	free(big);
	/* Still serving. */
	{
		struct web_resp *r = web_get(port, "/healthz", NULL);

		assert_int_equal(r->status, 200);
		web_free(r);
	}
	assert_false(h_log_has_sanitizer_report(d));
}

/* A body over server.max_request_bytes (4096 here) is refused from its
 * head: the client never sends it, and still hears 413 with our
 * headers. */
static void
test_body_refused_unread(void **state)
{
	struct web_stream *s;
	char req[512];
	const char *t;

	snprintf(req, sizeof req, "POST /rpc HTTP/1.1\r\nHost: localhost:%d"
	    "\r\nOrigin: %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: 100000000\r\n\r\n", port, origin);
	s = web_stream_open(port, req);
	assert_true(web_stream_wait(s, "Request refused", 10000));
	t = web_stream_text(s);
	assert_true(strncmp(t, "HTTP/1.1 413 ", 13) == 0);
	assert_non_null(strstr(t, "\r\nContent-Security-Policy: default-src "
	    "'self'"));
	assert_non_null(strstr(t, "\r\nStrict-Transport-Security: "));
	assert_non_null(strstr(t, "\r\nX-Content-Type-Options: nosniff\r\n"));
	assert_non_null(strstr(t, "\r\nReferrer-Policy: no-referrer\r\n"));
	assert_non_null(strstr(t, "frame-ancestors 'none'"));
	assert_non_null(strstr(t, "\r\nConnection: close\r\n"));
	/* ...and the daemon closes. */
	assert_false(web_stream_wait(s, "never sent", 10000));
	web_stream_close(s);
}

/* Two requests in one write, on one connection: two answers, in order,
 * the connection kept open after the first. */
static void
test_pipelined(void **state)
{
	struct web_stream *s;
	char req[1024];
	const char *t, *first, *second;

	snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	s = web_stream_open(port, req);
	assert_false(web_stream_wait(s, "never sent", 10000));   /* closed */
	t = web_stream_text(s);
	first = strstr(t, "HTTP/1.1 200 OK\r\n");
	assert_non_null(first);
	assert_non_null(strstr(first, "\r\n\r\nok\n"));
	second = strstr(first + 1, "HTTP/1.1 200 OK\r\n");
	assert_non_null(second);
	assert_true(strstr(t, "ok\n") < second);
	assert_non_null(strstr(second, "Content-Type: text/css"));
	assert_non_null(strstr(second, "body { color: #111; }"));
	/* The first kept the connection, the second closed it. */
	assert_true(strstr(t, "Connection: close") > second);
	web_stream_close(s);
}

/* curl sends Expect: 100-continue for a body over 1 KiB and waits. */
static void
test_expect_continue(void **state)
{
	struct web_stream *s;
	char req[1024];
	static const char body[] = "{\"jsonrpc\":\"2.0\",\"id\":5,"
	    "\"method\":\"system.ping\"}";

	snprintf(req, sizeof req, "POST /rpc HTTP/1.1\r\nHost: localhost:%d"
	    "\r\nOrigin: %s\r\nContent-Type: application/json\r\n"
	    "Expect: 100-continue\r\nConnection: close\r\n"
	    "Content-Length: %zu\r\n\r\n", port, origin, sizeof body - 1);
	s = web_stream_open(port, req);
	assert_true(web_stream_wait(s, "HTTP/1.1 100 Continue\r\n\r\n", 10000));
	/* Nothing but the interim answer before the body is sent. */
	assert_null(strstr(web_stream_text(s), "200 OK"));
	web_stream_send(s, body, sizeof body - 1);
	assert_true(web_stream_wait(s, "\"id\":5", 10000));
	assert_non_null(strstr(web_stream_text(s), "HTTP/1.1 200 OK\r\n"));
	web_stream_close(s);
}

/* HTTP/1.0 closes after its answer unless it asks to stay. */
static void
test_http10(void **state)
{
	static const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
	struct web_stream *s;
	struct web_resp *r;

	r = web_raw(port, req, sizeof req - 1);   /* reads until closed */
	assert_int_equal(r->status, 200);
	assert_string_equal(web_header(r, "Connection"), "close");
	assert_string_equal(r->body, "ok\n");
	assert_security_headers(r);
	web_free(r);
	/* Keep-alive asked: two answers on one connection. */
	s = web_stream_open(port, "GET /healthz HTTP/1.0\r\nConnection: "
	    "keep-alive\r\n\r\n");
	assert_true(web_stream_wait(s, "ok\n", 10000));
	assert_non_null(strstr(web_stream_text(s), "Connection: keep-alive"));
	web_stream_send(s, "GET /healthz HTTP/1.0\r\n\r\n", 25);
	assert_false(web_stream_wait(s, "never sent", 10000));   /* closed */
	assert_non_null(strstr(strstr(web_stream_text(s), "ok\n") + 1,
	    "ok\n"));
	web_stream_close(s);
}

/* A client that never finishes its head (slowloris), even sending a byte
 * now and then, gets 408 once [http] timeout (4 s here) has passed since
 * its first byte; others are served meanwhile. */
static void
test_slowloris(void **state)
{
	struct web_stream *s;
	struct web_resp *r;
	int i;

	s = web_stream_open(port, "GET /index.html HTTP/1.1\r\nHost: x\r\n");
	r = web_get(port, "/healthz", NULL);
	assert_int_equal(r->status, 200);
	web_free(r);
	for (i = 0; i < 20 && !web_stream_wait(s, " 408 ", 400); i++)
		web_stream_send(s, "X", 1);
	assert_true(web_stream_wait(s, "HTTP/1.1 408 Request Timeout\r\n",
	    10000));
	assert_non_null(strstr(web_stream_text(s), "\r\nContent-Security-"
	    "Policy: default-src 'self'"));
	assert_non_null(strstr(web_stream_text(s), "\r\nConnection: close"));
	assert_false(web_stream_wait(s, "never sent", 10000));   /* closed */
	web_stream_close(s);
	assert_true(h_log_wait(d, "408: request not received in time", 5000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rpc_and_batch),
		cmocka_unit_test(test_cookie_session),
		cmocka_unit_test(test_origin_and_type),
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_refusals_have_headers),
		cmocka_unit_test(test_body_refused_unread),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_expect_continue),
		cmocka_unit_test(test_http10),
		cmocka_unit_test(test_slowloris),
		cmocka_unit_test(test_static),
		cmocka_unit_test(test_traversal),
		cmocka_unit_test(test_healthz_and_qr),
		cmocka_unit_test(test_line_alongside),
		cmocka_unit_test(test_client_leaves),
		cmocka_unit_test(test_events_stream),
		cmocka_unit_test(test_events_slow_reader),
		cmocka_unit_test(test_resume_sets_cookie),
		cmocka_unit_test(test_connection_cap),
		cmocka_unit_test(test_per_address_cap),
		cmocka_unit_test(test_qr_rate_limit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
