/*
 * GET /metrics (docs/operations.md, "Metrics"): every line of a scrape
 * obeys the Prometheus text format 0.0.4 (checked by the strict parser
 * below), every family of the daemon's table is there, counters move
 * with real traffic (a booking, a failed login, a throttled one), and an
 * address outside http.metrics_allow gets a 404 that is itself counted.
 * One daemon serves every test.
 */
#include "web.h"
#include "world.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "util.h"

#define CTYPE "text/plain; version=0.0.4; charset=utf-8"

static struct h_daemon *d;
static int port;
static int plain_port;      /* http.metrics_listen */

/* ---- a strict parser of the text format -------------------------------- */

#define MAX_FAMILIES 128
#define MAX_SAMPLES 4096

struct family {
	char name[128];
	char type[16];          /* "" until its TYPE line */
	bool help, sampled, closed;
};

struct sample {
	char *name;             /* the sample's name (with _bucket...) */
	char *labels;           /* as written, le included: k="v",... */
	char *key;              /* name{labels without le} */
	char le[32];            /* the le label's value, or "" */
	double value;
};

struct scrape {
	struct family fam[MAX_FAMILIES];
	size_t nfam;
	struct sample s[MAX_SAMPLES];
	size_t n;
};

static bool
name_ok(const char *s, size_t n, bool metric)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || (metric && c == ':');

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* Go's ParseFloat as the format uses it: decimal or exponent notation,
 * NaN, +Inf, -Inf (Inf as well). */
static bool
value_parse(const char *s, double *v)
{
	char *end;

	if (strcmp(s, "NaN") == 0) {
		*v = NAN;
		return true;
	}
	if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0) {
		*v = INFINITY;
		return true;
	}
	if (strcmp(s, "-Inf") == 0) {
		*v = -INFINITY;
		return true;
	}
	if (*s == '\0' || strspn(s, "0123456789+-.eE") != strlen(s))
		return false;
	errno = 0;
	*v = strtod(s, &end);
	return *end == '\0' && errno == 0;
}

static struct family *
family_of(struct scrape *sc, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < sc->nfam; i++)
		if (strlen(sc->fam[i].name) == n &&
		    strncmp(sc->fam[i].name, name, n) == 0)
			return &sc->fam[i];
	if (sc->nfam == MAX_FAMILIES || n >= sizeof sc->fam[0].name)
		h_fail("too many families or too long a name");
	memset(&sc->fam[sc->nfam], 0, sizeof sc->fam[0]);
	memcpy(sc->fam[sc->nfam].name, name, n);
	return &sc->fam[sc->nfam++];
}

/* A sample's family: the histogram whose name it extends, else its own. */
static struct family *
family_of_sample(struct scrape *sc, const char *name, size_t n)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	size_t i, k;

	for (i = 0; i < nitems(sfx); i++) {
		k = strlen(sfx[i]);
		if (n > k && strncmp(name + n - k, sfx[i], k) == 0) {
			struct family *f;
			size_t j;

			for (j = 0; j < sc->nfam; j++) {
				f = &sc->fam[j];
				if (strlen(f->name) == n - k &&
				    strncmp(f->name, name, n - k) == 0 &&
				    strcmp(f->type, "histogram") == 0)
					return f;
			}
		}
	}
	return family_of(sc, name, n);
}

static void
comment_line(struct scrape *sc, const char *line, int no)
{
	const char *p = line + 1, *name, *rest;
	struct family *f;
	size_t n;

	p += strspn(p, " \t");
	if (strncmp(p, "HELP", 4) != 0 && strncmp(p, "TYPE", 4) != 0)
		return;         /* any other comment is allowed */
	if (p[4] != ' ' && p[4] != '\t')
		return;
	name = p + 5 + strspn(p + 5, " \t");
	n = strcspn(name, " \t");
	if (!name_ok(name, n, true))
		h_fail("line %d: bad metric name: %s", no, line);
	rest = name + n;
	rest += strspn(rest, " \t");
	f = family_of(sc, name, n);
	if (strncmp(p, "HELP", 4) == 0) {
		const char *q;

		if (f->help)
			h_fail("line %d: a second HELP for %s", no, f->name);
		f->help = true;
		for (q = rest; *q != '\0'; q++)
			if (*q == '\\' && q[1] != '\\' && q[1] != 'n')
				h_fail("line %d: bad escape in HELP", no);
			else if (*q == '\\')
				q++;
		return;
	}
	if (f->type[0] != '\0')
		h_fail("line %d: a second TYPE for %s", no, f->name);
	if (f->sampled)
		h_fail("line %d: TYPE of %s after its samples", no, f->name);
	if (strcmp(rest, "counter") != 0 && strcmp(rest, "gauge") != 0 &&
	    strcmp(rest, "histogram") != 0 && strcmp(rest, "summary") != 0 &&
	    strcmp(rest, "untyped") != 0)
		h_fail("line %d: bad type \"%s\"", no, rest);
	snprintf(f->type, sizeof f->type, "%s", rest);
}

/* name{k="v",...} value [timestamp] */
static void
sample_line(struct scrape *sc, const char *line, int no,
    struct family **last)
{
	struct sample *s;
	struct family *f;
	const char *p = line;
	char labels[1024], key_labels[1024], value[64], *end;
	size_t n = strcspn(line, "{ \t"), ln = 0, kn = 0;
	bool has_le = false;
	char le[32] = "";

	if (!name_ok(line, n, true))
		h_fail("line %d: bad metric name: %s", no, line);
	if (sc->n == MAX_SAMPLES)
		h_fail("too many samples");
	s = &sc->s[sc->n];
	s->name = strndup(line, n);
	p = line + n;
	labels[0] = key_labels[0] = '\0';
	if (*p == '{') {
		p++;
		while (*p != '}') {
			const char *lname = p;
			size_t lnl = strcspn(p, "=");
			char val[256];
			size_t vn = 0;

			if (!name_ok(lname, lnl, false) ||
			    strncmp(lname, "__", 2) == 0)
				h_fail("line %d: bad label name: %s", no, line);
			p += lnl;
			if (p[0] != '=' || p[1] != '"')
				h_fail("line %d: label without =\"", no);
			p += 2;
			while (*p != '"') {
				if (*p == '\0')
					h_fail("line %d: unterminated label", no);
				if (*p == '\\') {
					if (p[1] != '\\' && p[1] != '"' &&
					    p[1] != 'n')
						h_fail("line %d: bad escape in a "
						    "label value", no);
					p++;
				}
				if (vn + 1 >= sizeof val)
					h_fail("line %d: label too long", no);
				val[vn++] = *p++;
			}
			val[vn] = '\0';
			p++;
			if (lnl == 2 && strncmp(lname, "le", 2) == 0) {
				has_le = true;
				snprintf(le, sizeof le, "%.31s", val);
			} else {
				kn += (size_t)snprintf(key_labels + kn,
				    sizeof key_labels - kn, "%s%.*s=\"%.*s\"",
				    kn ? "," : "", (int)lnl, lname,
				    (int)(p - 1 - (lname + lnl + 2)),
				    lname + lnl + 2);
			}
			ln += (size_t)snprintf(labels + ln, sizeof labels - ln,
			    "%s%.*s", ln ? "," : "", (int)(p - lname), lname);
			if (*p == ',')
				p++;
			else if (*p != '}')
				h_fail("line %d: expected , or }", no);
		}
		p++;
	}
	if (*p != ' ' && *p != '\t')
		h_fail("line %d: no blank before the value: %s", no, line);
	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	if (n == 0 || n >= sizeof value)
		h_fail("line %d: no value", no);
	memcpy(value, p, n);
	value[n] = '\0';
	if (!value_parse(value, &s->value))
		h_fail("line %d: bad value \"%s\"", no, value);
	p += n;
	p += strspn(p, " \t");
	if (*p != '\0') {
		strtoll(p, &end, 10);
		if (*end != '\0' || !(*p == '-' || (*p >= '0' && *p <= '9')))
			h_fail("line %d: bad timestamp", no);
	}
	s->labels = strdup(labels);
	if (asprintf(&s->key, "%s{%s}", s->name, key_labels) < 0)
		h_fail("out of memory");
	snprintf(s->le, sizeof s->le, "%s", le);

	f = family_of_sample(sc, s->name, strlen(s->name));
	if (f->type[0] == '\0')
		h_fail("line %d: sample of %s before its TYPE", no, f->name);
	if (f->closed || (*last != NULL && *last != f && f->sampled))
		h_fail("line %d: samples of %s are not together", no, f->name);
	if (*last != NULL && *last != f)
		(*last)->closed = true;
	*last = f;
	f->sampled = true;
	if (strcmp(f->type, "histogram") == 0) {
		size_t k = strlen(f->name);

		if (strcmp(s->name + k, "_bucket") == 0 && !has_le)
			h_fail("line %d: a bucket without le", no);
		if (strcmp(s->name + k, "_bucket") != 0 && has_le)
			h_fail("line %d: le outside a bucket", no);
		if (s->name[k] == '\0')
			h_fail("line %d: a histogram's bare name", no);
	}
	if (strcmp(f->type, "counter") == 0 && !(s->value >= 0))
		h_fail("line %d: a counter below 0 or NaN", no);
	sc->n++;
}

static void
check_unique(const struct scrape *sc)
{
	size_t i, j;

	for (i = 0; i < sc->n; i++)
		for (j = i + 1; j < sc->n; j++)
			if (strcmp(sc->s[i].name, sc->s[j].name) == 0 &&
			    strcmp(sc->s[i].labels, sc->s[j].labels) == 0)
				h_fail("series %s{%s} twice", sc->s[i].name,
				    sc->s[i].labels);
}

static double
le_value(const char *le, const char *what)
{
	double v;

	if (!value_parse(le, &v) || isnan(v))
		h_fail("%s: bad le \"%s\"", what, le);
	return v;
}

/* Each histogram series: buckets in increasing le, counts that never go
 * down, the last +Inf, equal to _count; a _sum and a _count. */
static void
check_histograms(const struct scrape *sc)
{
	size_t f, i, j;

	for (f = 0; f < sc->nfam; f++) {
		const struct family *fam = &sc->fam[f];
		char bucket[160], sum[160], count[160];

		if (strcmp(fam->type, "histogram") != 0)
			continue;
		snprintf(bucket, sizeof bucket, "%s_bucket", fam->name);
		snprintf(sum, sizeof sum, "%s_sum", fam->name);
		snprintf(count, sizeof count, "%s_count", fam->name);
		for (i = 0; i < sc->n; i++) {
			const char *k = strchr(sc->s[i].key, '{');
			double prev_le = -INFINITY, prev = 0, inf = -1;
			bool have_sum = false, have_count = false;
			double cnt = -1;

			if (strcmp(sc->s[i].name, bucket) != 0)
				continue;
			/* The first bucket of its label set only. */
			for (j = 0; j < i; j++)
				if (strcmp(sc->s[j].name, bucket) == 0 &&
				    strcmp(strchr(sc->s[j].key, '{'), k) == 0)
					break;
			if (j < i)
				continue;
			for (j = i; j < sc->n; j++) {
				const struct sample *s = &sc->s[j];

				if (strcmp(strchr(s->key, '{'), k) != 0)
					continue;
				if (strcmp(s->name, bucket) == 0) {
					double le = le_value(s->le, s->key);

					if (inf >= 0)
						h_fail("%s: a bucket after +Inf",
						    s->key);
					if (le <= prev_le)
						h_fail("%s: le not increasing",
						    s->key);
					if (s->value < prev)
						h_fail("%s: buckets not "
						    "cumulative", s->key);
					prev_le = le;
					prev = s->value;
					if (isinf(le))
						inf = s->value;
				} else if (strcmp(s->name, sum) == 0) {
					have_sum = true;
				} else if (strcmp(s->name, count) == 0) {
					have_count = true;
					cnt = s->value;
				}
			}
			if (inf < 0)
				h_fail("%s%s: no +Inf bucket", bucket, k);
			if (!have_sum || !have_count)
				h_fail("%s%s: no _sum or _count", fam->name, k);
			if (cnt != inf)
				h_fail("%s%s: +Inf bucket %g, _count %g",
				    fam->name, k, inf, cnt);
		}
	}
}

static void
scrape_free(struct scrape *sc)
{
	size_t i;

	for (i = 0; i < sc->n; i++) {
		free(sc->s[i].name);
		free(sc->s[i].labels);
		free(sc->s[i].key);
	}
	free(sc);
}

/* Parses a whole exposition; fails the test at the first wrong line. */
static struct scrape *
parse(const char *text, size_t len)
{
	struct scrape *sc = calloc(1, sizeof *sc);
	struct family *last = NULL;
	const char *p = text, *nl;
	char line[2048];
	int no = 0;

	if (sc == NULL)
		h_fail("out of memory");
	if (len == 0 || text[len - 1] != '\n')
		h_fail("the exposition does not end with a newline");
	if (strlen(text) != len)
		h_fail("a NUL byte in the exposition");
	for (; p < text + len; p = nl + 1) {
		nl = strchr(p, '\n');
		no++;
		if ((size_t)(nl - p) >= sizeof line)
			h_fail("line %d too long", no);
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		if (strchr(line, '\r') != NULL)
			h_fail("line %d: a carriage return", no);
		if (line[strspn(line, " \t")] == '\0')
			continue;
		if (line[0] == '#')
			comment_line(sc, line, no);
		else
			sample_line(sc, line, no, &last);
	}
	check_unique(sc);
	check_histograms(sc);
	return sc;
}

static struct scrape *
parse_str(const char *text)
{
	return parse(text, strlen(text));
}

/* The value of name{labels} as the daemon writes it (labels in its
 * order), or 0 if the series is not there yet. */
static double
value_of(const struct scrape *sc, const char *name, const char *labels)
{
	size_t i;

	for (i = 0; i < sc->n; i++)
		if (strcmp(sc->s[i].name, name) == 0 &&
		    strcmp(sc->s[i].labels, labels) == 0)
			return sc->s[i].value;
	return 0;
}

static bool
has_family(const struct scrape *sc, const char *name, const char *type)
{
	size_t i;

	for (i = 0; i < sc->nfam; i++)
		if (strcmp(sc->fam[i].name, name) == 0)
			return sc->fam[i].help && (type == NULL ||
			    strcmp(sc->fam[i].type, type) == 0);
	return false;
}

/* ---- scraping ---------------------------------------------------------- */

static struct scrape *
scrape(void)
{
	struct web_resp *r = web_get(port, "/metrics", NULL);
	struct scrape *sc;

	if (r->status != 200)
		h_fail("GET /metrics: %d %s", r->status, r->body);
	assert_non_null(web_header(r, "Content-Type"));
	assert_string_equal(web_header(r, "Content-Type"), CTYPE);
	sc = parse(r->body, r->body_len);
	web_free(r);
	return sc;
}

/* GET /metrics over TLS from a source address of our choosing (any of
 * 127/8 is the loopback on Linux); returns the status. */
static int
get_from(const char *source)
{
	char ca[4200], req[256], buf[4096];
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, n, status = -1;
	size_t got = 0;

	snprintf(ca, sizeof ca, "%s/ca.pem", h_certs_dir());
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		h_fail("cannot load %s", ca);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	fd = h_tcp_from(source, port);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_set1_host(ssl, "localhost");
	if (SSL_connect(ssl) != 1)
		h_fail("TLS handshake from %s failed", source);
	n = snprintf(req, sizeof req, "GET /metrics HTTP/1.1\r\nHost: "
	    "localhost:%d\r\nConnection: close\r\n\r\n", port);
	if (SSL_write(ssl, req, n) != n)
		h_fail("cannot send the request");
	while (got < sizeof buf - 1 &&
	    (n = SSL_read(ssl, buf + got, (int)(sizeof buf - 1 - got))) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		h_fail("no answer from %s: %.100s", source, buf);
	/* Nothing of the metrics in a refusal. */
	if (status != 200)
		assert_null(strstr(buf, "strapontin_"));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return status;
}

/* ---- tests ------------------------------------------------------------- */

/* The daemon's configuration, with this metrics_allow. */
static void
config_text(char *ini, size_t len, const char *allow)
{
	/* login_max_failures = 1: the second failure in a row is throttled. */
	snprintf(ini, len, "[http]\nlisten = 127.0.0.1:%d\n"
	    "metrics_allow = %s\nmetrics_listen = 127.0.0.1:%d\n[policy]\n"
	    "login_max_failures = 1\n", port, allow, plain_port);
}

static int
setup(void **state)
{
	char ini[512];

	port = h_free_port();
	plain_port = h_free_port();
	config_text(ini, sizeof ini, "::1, 127.0.0.1/32");
	d = h_daemon_start("metrics", ini);
	return 0;
}

static int
teardown(void **state)
{
	assert_int_equal(h_daemon_stop(d), 0);
	return 0;
}

/* Every line parses, and every family of the daemon's table is there
 * with its HELP and TYPE. */
static void
test_format_and_families(void **state)
{
	struct scrape *sc = scrape();
	const char *name;
	size_t i;

	for (i = 0; (name = metrics_name_at(i)) != NULL; i++)
		if (!has_family(sc, name, NULL))
			h_fail("family %s missing", name);
	assert_true(has_family(sc, "strapontin_requests_total", "counter"));
	assert_true(has_family(sc, "strapontin_request_duration_seconds",
	    "histogram"));
	assert_true(has_family(sc, "strapontin_db_connections", "gauge"));
	/* The pool is up, and says so. */
	assert_true(value_of(sc, "strapontin_db_up", "pool=\"primary\"") == 1);
	assert_true(value_of(sc, "strapontin_start_time_seconds", "") >
	    1.7e9);
	/* This scrape's own connection is open and busy. */
	assert_true(value_of(sc, "strapontin_connections",
	    "transport=\"http\",state=\"busy\"") >= 1);
	scrape_free(sc);

	/* The parser takes what the format allows beyond our own output:
	 * escaped quotes, NaN. */
	sc = parse_str("# TYPE a counter\na 1\n");
	assert_true(value_of(sc, "a", "") == 1);
	scrape_free(sc);
	sc = parse_str("# TYPE h histogram\nh_bucket{x=\"a\\\"b\",le=\"1\"} 1\n"
	    "h_bucket{x=\"a\\\"b\",le=\"+Inf\"} 2\nh_sum{x=\"a\\\"b\"} NaN\n"
	    "h_count{x=\"a\\\"b\"} 2\n");
	scrape_free(sc);
}

/* A booking, a failed login and a throttled one each move their
 * series. */
static void
test_counters_move(void **state)
{
	static const char *const ok = "method=\"booking.create\",outcome=\"ok\"";
	static const char *const failed =
	    "method=\"auth.login\",outcome=\"unauthenticated\"";
	static const char *const throttled =
	    "method=\"auth.login\",outcome=\"rate_limited\"";
	struct world w;
	struct st_client *c;
	struct scrape *a, *b;
	json_int_t offer, ben;
	double t0, t1;
	int i, refusals = 0;

	world_build(&w, d);
	offer = w_offer(w.partner, 10, 4, NULL);
	ben = w_beneficiary(w.ref, "Lina", "Martin");
	a = scrape();
	json_decref(w_book(w.ref, offer, ben, 2));
	c = h_connect(d);
	json_decref(h_call_err(c, "auth.login", json_pack("{s:s, s:s}",
	    "email", "nobody@example.org", "password", "wrong-password-1"),
	    401, "unauthenticated"));
	/* Past login_max_failures (1), the next failure is throttled. */
	for (i = 0; i < 5 && refusals == 0; i++) {
		struct st_error err = {0};
		json_t *p = json_pack("{s:s, s:s}", "email",
		    "nobody@example.org", "password", "wrong-password-2");
		json_t *r = NULL;

		if (st_call(c, "auth.login", p, &r, &err) == ST_OK)
			h_fail("a wrong password logged in");
		json_decref(p);
		if (err.code == 429)
			refusals++;
		st_error_clear(&err);
	}
	assert_int_equal(refusals, 1);
	b = scrape();

	assert_true(value_of(b, "strapontin_requests_total", ok) ==
	    value_of(a, "strapontin_requests_total", ok) + 1);
	assert_true(value_of(b, "strapontin_request_duration_seconds_count",
	    "method=\"booking.create\"") == value_of(a,
	    "strapontin_request_duration_seconds_count",
	    "method=\"booking.create\"") + 1);
	assert_true(value_of(b, "strapontin_requests_total", failed) >=
	    value_of(a, "strapontin_requests_total", failed) + 1);
	assert_true(value_of(b, "strapontin_requests_total", throttled) ==
	    value_of(a, "strapontin_requests_total", throttled) + 1);
	assert_true(value_of(b, "strapontin_logins_throttled_total", "") ==
	    value_of(a, "strapontin_logins_throttled_total", "") + 1);
	/* The booking went through a group commit. */
	assert_true(value_of(b, "strapontin_booking_batches_total", "") >=
	    value_of(a, "strapontin_booking_batches_total", "") + 1);
	/* The line connection just made is counted. */
	assert_true(value_of(b, "strapontin_connections_accepted_total",
	    "transport=\"rpc\"") >= value_of(a,
	    "strapontin_connections_accepted_total", "transport=\"rpc\"") + 1);
	assert_true(value_of(b, "strapontin_connections",
	    "transport=\"rpc\",state=\"active\"") >= 1);
	t0 = value_of(a, "strapontin_db_wait_seconds_count",
	    "pool=\"primary\"");
	t1 = value_of(b, "strapontin_db_wait_seconds_count",
	    "pool=\"primary\"");
	assert_true(t1 > t0);
	scrape_free(a);
	scrape_free(b);
	st_close(c);
	world_close(&w);
}

/* An address outside metrics_allow gets the 404 of an unknown path,
 * and the refusal is counted. */
static void
test_refused_address(void **state)
{
	struct scrape *a, *b;

	a = scrape();
	assert_int_equal(get_from("127.0.0.2"), 404);
	assert_int_equal(get_from("127.0.0.2"), 404);
	b = scrape();
	assert_true(value_of(b, "strapontin_metrics_refused_total", "") ==
	    value_of(a, "strapontin_metrics_refused_total", "") + 2);
	scrape_free(a);
	scrape_free(b);
	/* The allowed address still gets them from a bound socket too. */
	assert_int_equal(get_from("127.0.0.1"), 200);
}

/* SIGHUP with a new metrics_allow: the next request follows it. */
static void
test_reload(void **state)
{
	const char *done = "configuration reloaded";
	struct web_resp *r;
	char ini[512];
	int before = h_log_count(d, done), i;

	config_text(ini, sizeof ini, "127.0.0.2");
	h_daemon_write_conf(d, ini);
	assert_int_equal(h_daemon_signal(d, SIGHUP), 0);
	for (i = 0; i < 200 && h_log_count(d, done) == before; i++)
		h_sleep_ms(50);
	assert_true(h_log_count(d, done) > before);
	assert_int_equal(get_from("127.0.0.2"), 200);
	r = web_get(port, "/metrics", NULL);
	assert_int_equal(r->status, 404);
	web_free(r);
}

/* A plain HTTP GET to http.metrics_listen from source; the whole
 * answer (caller frees). */
static char *
plain_get(const char *source, const char *path)
{
	char req[256], *buf;
	size_t got = 0, cap = 1 << 20;
	ssize_t n;
	int fd;

	if ((buf = malloc(cap)) == NULL)
		h_fail("out of memory");
	fd = h_tcp_from(source, plain_port);
	n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n"
	    "Connection: close\r\n\r\n", path);
	if (write(fd, req, (size_t)n) != n)
		h_fail("cannot send the request");
	while (got < cap - 1 && (n = read(fd, buf + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	return buf;
}

/* http.metrics_listen: the same exposition over plain HTTP, to whoever
 * reaches its address, and nothing else there. */
static void
test_plain_listener(void **state)
{
	char *a = plain_get("127.0.0.2", "/metrics"), *body;
	struct scrape *sc;

	if (strncmp(a, "HTTP/1.1 200 ", 13) != 0)
		h_fail("plain GET /metrics: %.100s", a);
	assert_non_null(strstr(a, "\r\nContent-Type: " CTYPE "\r\n"));
	assert_non_null(body = strstr(a, "\r\n\r\n"));
	body += 4;
	sc = parse(body, strlen(body));
	assert_true(has_family(sc, "strapontin_requests_total", "counter"));
	assert_true(value_of(sc, "strapontin_db_up", "pool=\"primary\"") == 1);
	scrape_free(sc);
	free(a);
	a = plain_get("127.0.0.1", "/rpc");
	if (strncmp(a, "HTTP/1.1 404 ", 13) != 0)
		h_fail("plain GET /rpc: %.100s", a);
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_families),
		cmocka_unit_test(test_counters_move),
		cmocka_unit_test(test_refused_address),
		cmocka_unit_test(test_plain_listener),
		cmocka_unit_test(test_reload),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
