/* Unit tests of config: the declarative table's defaults (docs/configuration.md), value
 * parsing and limits, error messages that point at the right line, the
 * listen list, and what a reload (SIGHUP) may and may not change. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "pwhash.h"
#include "util.h"

/* Five lines every valid file needs; the bodies below start at line 6. */
#define BASE                                                   \
	"[tls]\n"                                              \
	"cert = /etc/strapontin/server.pem\n"                  \
	"key = /etc/strapontin/server.key\n"                   \
	"[database]\n"                                         \
	"conninfo = host=/tmp port=5432 dbname=strapontin\n"
#define BODY_LINE 6

static char dir[PATH_MAX];
static char path[PATH_MAX + 16];

static int
group_setup(void **state)
{
	snprintf(dir, sizeof dir, "%s/test_config.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/t.conf", dir);
	return 0;
}

static int
group_teardown(void **state)
{
	unlink(path);
	rmdir(dir);
	return 0;
}

static void
write_text(const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static struct config *
load_text(const char *text, char *err, size_t errlen)
{
	write_text(text);
	err[0] = '\0';
	return config_load(path, err, errlen);
}

/* BASE + body must load. */
static struct config *
load_ok_at(int line, const char *body)
{
	char text[16384], err[512];
	struct config *cfg;

	snprintf(text, sizeof text, "%s%s", BASE, body);
	if ((cfg = load_text(text, err, sizeof err)) == NULL)
		fail_msg("line %d: refused: %s\n--- file:\n%s", line, err,
		    text);
	return cfg;
}
#define load_ok(body) load_ok_at(__LINE__, body)

/* text must be refused with "PATH:errline: ..." holding part. */
static void
refuse_text_at(int line, const char *text, int errline, const char *part)
{
	char err[512], want[PATH_MAX + 64];
	struct config *cfg;

	if ((cfg = load_text(text, err, sizeof err)) != NULL) {
		config_free(cfg);
		fail_msg("line %d: accepted\n--- file:\n%s", line, text);
	}
	if (errline > 0)
		snprintf(want, sizeof want, "%s:%d: ", path, errline);
	else
		snprintf(want, sizeof want, "%s: ", path);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("line %d: error \"%s\" does not start with \"%s\"",
		    line, err, want);
	if (part != NULL && strstr(err, part) == NULL)
		fail_msg("line %d: error \"%s\" lacks \"%s\"", line, err, part);
}
#define refuse_text(text, errline, part) \
	refuse_text_at(__LINE__, text, errline, part)

/* BASE + body refused at body line n (1 = the body's first line). */
static void
refuse_body_at(int line, const char *body, int n, const char *part)
{
	char text[16384];

	snprintf(text, sizeof text, "%s%s", BASE, body);
	refuse_text_at(line, text, BODY_LINE - 1 + n, part);
}
#define refuse(body, n, part) refuse_body_at(__LINE__, body, n, part)

static void
test_defaults(void **state)
{
	struct config *cfg = load_ok("");

	/* docs/configuration.md policy defaults. */
	assert_int_equal(cfg->policy.max_upcoming_per_beneficiary, 2);
	assert_int_equal(cfg->policy.max_per_month, 2);
	assert_int_equal(cfg->policy.waitlist_hold, 24 * 3600);
	assert_int_equal(cfg->policy.history_window_days, 365);
	assert_true(cfg->policy.no_show_weight == 2.0);
	assert_int_equal(cfg->policy.max_block_share, 50);
	assert_int_equal(cfg->policy.login_max_failures, 5);
	assert_int_equal(cfg->policy.login_lockout, 15 * 60);
	assert_int_equal(cfg->policy.token_ttl, 12 * 3600);
	assert_int_equal(cfg->policy.retention_months, 24);
	assert_int_equal(cfg->policy.mail_hour, 7);
	assert_int_equal(cfg->policy.mail_digest_days, 2);
	assert_int_equal(cfg->policy.mail_hold_notice, 2 * 3600);
	assert_int_equal(cfg->policy.mail_interval, 60);
	assert_int_equal(cfg->policy.mail_keep_days, 30);
	/* New password hashes at OWASP's scrypt floor, N = 2^17, and the
	 * loaded file sets the cost pwhash uses. */
	assert_int_equal(cfg->policy.password_cost, 17);
	assert_int_equal(pwhash_cost(), 17);

	/* The server defaults the documentation gives. */
	assert_int_equal(cfg->nlisten, 1);
	assert_string_equal(cfg->listen[0], "127.0.0.1:7443");
	assert_int_equal(cfg->max_connections, 1024);
	assert_int_equal(cfg->max_request_bytes, 65536);
	assert_int_equal(cfg->idle_timeout, 300);
	assert_int_equal(cfg->max_inflight, 64);
	assert_int_equal(cfg->handshake_timeout, 10);
	assert_int_equal(cfg->drain_timeout, 30);
	assert_int_equal(cfg->workers, 2);
	assert_int_equal(cfg->db_pool_size, 4);
	assert_int_equal(cfg->db_statement_timeout, 10);
	assert_int_equal(cfg->db_list_statement_timeout, 5);
	assert_int_equal(cfg->db_report_statement_timeout, 30);
	assert_int_equal(cfg->db_events_keep, 300);
	/* No read pool unless asked (docs/scaling.md). */
	assert_null(cfg->db_replica_conninfo);
	assert_int_equal(cfg->db_replica_pool_size, 4);
	assert_int_equal(cfg->db_replica_max_lag, 5);
	assert_int_equal(cfg->policy.report_max_days, 400);
	assert_string_equal(cfg->tls_min_version, "1.2");
	assert_null(cfg->tls_client_ca);
	assert_non_null(cfg->tls_ciphers);
	assert_string_equal(cfg->log_level, "info");
	assert_string_equal(cfg->log_format, "text");

	/* What the file said. */
	assert_string_equal(cfg->path, path);
	assert_string_equal(cfg->tls_cert, "/etc/strapontin/server.pem");
	assert_string_equal(cfg->tls_key, "/etc/strapontin/server.key");
	assert_string_equal(cfg->db_conninfo,
	    "host=/tmp port=5432 dbname=strapontin");
	/* --migrate uses conninfo when no owner's conninfo is given. */
	assert_string_equal(cfg->db_migrate_conninfo, cfg->db_conninfo);
	config_free(cfg);
}

static void
test_all_keys(void **state)
{
	struct config *cfg = load_ok(
	    "[server]\n"
	    "listen = 0.0.0.0:9000\n"
	    "workers = 8\n"
	    "max_connections = 100\n"
	    "max_request_bytes = 4096\n"
	    "idle_timeout = 1m\n"
	    "max_inflight = 7\n"
	    "handshake_timeout = 3\n"
	    "drain_timeout = 0\n"
	    "max_output_bytes = 65536\n"
	    "[tls]\n"
	    "client_ca = /etc/strapontin/ca.pem\n"
	    "min_version = 1.3\n"
	    "ciphers = ECDHE+AESGCM\n"
	    "[database]\n"
	    "pool_size = 9\n"
	    "connect_timeout = 2\n"
	    "queue_timeout = 3s\n"
	    "migrate_conninfo = host=/tmp dbname=strapontin user=owner\n"
	    "statement_timeout = 0\n"
	    "list_statement_timeout = 2s\n"
	    "report_statement_timeout = 1m\n"
	    "events_keep = 2m\n"
	    "replica_conninfo = host=10.0.0.12 dbname=strapontin\n"
	    "replica_pool_size = 2\n"
	    "replica_max_lag = 30s\n"
	    "[policy]\n"
	    "max_upcoming_per_beneficiary = 3\n"
	    "max_per_month = 4\n"
	    "waitlist_hold = 2h\n"
	    "history_window_days = 30\n"
	    "no_show_weight = 1.5\n"
	    "max_block_share = 30\n"
	    "login_max_failures = 10\n"
	    "login_lockout = 1h\n"
	    "token_ttl = 7d\n"
	    "retention_months = 12\n"
	    "report_max_days = 31\n"
	    "password_cost = 12\n"
	    "[log]\n"
	    "level = debug\n"
	    "format = json\n");

	assert_int_equal(cfg->nlisten, 1);
	assert_string_equal(cfg->listen[0], "0.0.0.0:9000");
	assert_int_equal(cfg->workers, 8);
	assert_int_equal(cfg->max_connections, 100);
	assert_int_equal(cfg->max_request_bytes, 4096);
	assert_int_equal(cfg->idle_timeout, 60);
	assert_int_equal(cfg->max_inflight, 7);
	assert_int_equal(cfg->handshake_timeout, 3);
	assert_int_equal(cfg->drain_timeout, 0);
	assert_int_equal(cfg->max_output_bytes, 65536);
	assert_string_equal(cfg->tls_client_ca, "/etc/strapontin/ca.pem");
	assert_string_equal(cfg->tls_min_version, "1.3");
	assert_string_equal(cfg->tls_ciphers, "ECDHE+AESGCM");
	assert_int_equal(cfg->db_pool_size, 9);
	assert_int_equal(cfg->db_connect_timeout, 2);
	assert_int_equal(cfg->db_queue_timeout, 3);
	assert_string_equal(cfg->db_migrate_conninfo,
	    "host=/tmp dbname=strapontin user=owner");
	assert_int_equal(cfg->db_statement_timeout, 0);
	assert_int_equal(cfg->db_list_statement_timeout, 2);
	assert_int_equal(cfg->db_report_statement_timeout, 60);
	assert_int_equal(cfg->db_events_keep, 120);
	assert_string_equal(cfg->db_replica_conninfo,
	    "host=10.0.0.12 dbname=strapontin");
	assert_int_equal(cfg->db_replica_pool_size, 2);
	assert_int_equal(cfg->db_replica_max_lag, 30);
	assert_int_equal(cfg->policy.report_max_days, 31);
	assert_int_equal(cfg->policy.max_upcoming_per_beneficiary, 3);
	assert_int_equal(cfg->policy.max_per_month, 4);
	assert_int_equal(cfg->policy.waitlist_hold, 7200);
	assert_int_equal(cfg->policy.history_window_days, 30);
	assert_true(cfg->policy.no_show_weight == 1.5);
	assert_int_equal(cfg->policy.max_block_share, 30);
	assert_int_equal(cfg->policy.login_max_failures, 10);
	assert_int_equal(cfg->policy.login_lockout, 3600);
	assert_int_equal(cfg->policy.token_ttl, 7 * 86400);
	assert_int_equal(cfg->policy.retention_months, 12);
	assert_int_equal(cfg->policy.password_cost, 12);
	assert_int_equal(pwhash_cost(), 12);
	assert_string_equal(cfg->log_level, "debug");
	assert_string_equal(cfg->log_format, "json");
	config_free(cfg);
}

static void
test_durations(void **state)
{
	static const struct {
		const char *text;
		long long seconds;
	} cases[] = {
		{ "90s", 90 }, { "15m", 900 }, { "24h", 86400 },
		{ "7d", 604800 }, { "3600", 3600 }, { "1", 1 },
		{ "2d", 172800 },
	};
	char body[256];
	struct config *cfg;
	size_t i;

	for (i = 0; i < nitems(cases); i++) {
		snprintf(body, sizeof body, "[policy]\nwaitlist_hold = %s\n"
		    "login_lockout = %s\n[server]\nidle_timeout = %s\n",
		    cases[i].text, cases[i].text, cases[i].text);
		cfg = load_ok(body);
		assert_int_equal(cfg->policy.waitlist_hold, cases[i].seconds);
		assert_int_equal(cfg->policy.login_lockout, cases[i].seconds);
		assert_int_equal(cfg->idle_timeout, cases[i].seconds);
		config_free(cfg);
	}
	cfg = load_ok("[policy]\ntoken_ttl = 90s\n");
	assert_int_equal(cfg->policy.token_ttl, 90);
	config_free(cfg);
}

static void
test_bad_durations(void **state)
{
	static const char *const bad[] = { "5x", "-1", "", "1.5h", "h", "1h30m",
	    "15 m", "0", "31d" };
	char body[256];
	size_t i;

	for (i = 0; i < nitems(bad); i++) {
		snprintf(body, sizeof body, "[policy]\nmax_per_month = 3\n"
		    "waitlist_hold = %s\n", bad[i]);
		refuse(body, 3, "policy.waitlist_hold");
	}
	/* Each duration has its own limits. */
	refuse("[policy]\ntoken_ttl = 59\n", 2, "policy.token_ttl");
	refuse("[policy]\nlogin_lockout = 8d\n", 2, "policy.login_lockout");
	refuse("[server]\nhandshake_timeout = 11m\n", 2,
	    "server.handshake_timeout");
	refuse("[server]\ndrain_timeout = 2h\n", 2, "server.drain_timeout");
}

static void
test_int_ranges(void **state)
{
	struct config *cfg;

	cfg = load_ok("[server]\nworkers = 1\n[database]\npool_size = 500\n");
	assert_int_equal(cfg->workers, 1);
	assert_int_equal(cfg->db_pool_size, 500);
	config_free(cfg);
	cfg = load_ok("[server]\nworkers = 64\nmax_request_bytes = 256\n"
	    "[policy]\nmax_upcoming_per_beneficiary = 0\nmax_per_month = 0\n");
	assert_int_equal(cfg->workers, 64);
	assert_int_equal(cfg->max_request_bytes, 256);
	assert_int_equal(cfg->policy.max_upcoming_per_beneficiary, 0);
	assert_int_equal(cfg->policy.max_per_month, 0);
	config_free(cfg);

	refuse("[server]\nworkers = 0\n", 2, "server.workers");
	refuse("[server]\nworkers = 65\n", 2, "server.workers");
	refuse("[server]\nworkers = -1\n", 2, "server.workers");
	refuse("[server]\nworkers = two\n", 2, "server.workers");
	refuse("[server]\nworkers = 2.5\n", 2, "server.workers");
	refuse("[server]\nworkers = 2x\n", 2, "server.workers");
	refuse("[server]\nworkers =\n", 2, "server.workers");
	refuse("[server]\nworkers = 99999999999999999999\n", 2,
	    "server.workers");
	refuse("[server]\nmax_request_bytes = 255\n", 2,
	    "server.max_request_bytes");
	refuse("[server]\nmax_connections = 0\n", 2, "server.max_connections");
	refuse("[database]\npool_size = 0\n", 2, "database.pool_size");
	refuse("[database]\npool_size = 501\n", 2, "database.pool_size");
	refuse("[policy]\nhistory_window_days = 0\n", 2,
	    "policy.history_window_days");
	refuse("[policy]\nretention_months = 241\n", 2,
	    "policy.retention_months");
	refuse("[policy]\nlogin_max_failures = 0\n", 2,
	    "policy.login_max_failures");
	refuse("[policy]\nmax_per_month = -1\n", 2, "policy.max_per_month");
	refuse("[policy]\npassword_cost = 9\n", 2, "policy.password_cost");
	refuse("[policy]\npassword_cost = 19\n", 2, "policy.password_cost");
	/* The message gives the limits. */
	refuse("[server]\nworkers = 65\n", 2, "1 to 64");
}

static void
test_no_show_weight(void **state)
{
	static const struct {
		const char *text;
		double v;
	} good[] = { { "0", 0 }, { "1.5", 1.5 }, { "100", 100 },
	    { "2.25", 2.25 } };
	static const char *const bad[] = { "-1", "100.5", "abc", "", "1.5x",
	    "nan", "NAN", "inf", "-inf", "1e400" };
	char body[128];
	struct config *cfg;
	size_t i;

	for (i = 0; i < nitems(good); i++) {
		snprintf(body, sizeof body, "[policy]\nno_show_weight = %s\n",
		    good[i].text);
		cfg = load_ok(body);
		assert_true(cfg->policy.no_show_weight == good[i].v);
		config_free(cfg);
	}
	for (i = 0; i < nitems(bad); i++) {
		snprintf(body, sizeof body, "[policy]\nno_show_weight = %s\n",
		    bad[i]);
		refuse(body, 2, "policy.no_show_weight");
	}
}

static void
test_unknown_key(void **state)
{
	refuse("[server]\nworkers = 2\nbogus = 1\n", 3,
	    "unknown setting server.bogus");
	refuse("[policy]\nmax_per_mont = 2\n", 2, "policy.max_per_mont");
	/* A key of another section is unknown here. */
	refuse("[server]\nconninfo = x\n", 2, "server.conninfo");
	/* Names are case-sensitive. */
	refuse("[server]\nWorkers = 2\n", 2, "server.Workers");
}

static void
test_unknown_section(void **state)
{
	refuse("[bogus]\nx = 1\n", 2, "bogus.x");
	refuse("[Server]\nworkers = 2\n", 2, "Server.workers");
	/* Keys before any section. */
	refuse_text("workers = 2\n" BASE, 1, "workers");
}

static void
test_required(void **state)
{
	refuse_text("[tls]\ncert = /c\nkey = /k\n", 0, "database.conninfo");
	refuse_text("[tls]\ncert = /c\nkey = /k\n[database]\nconninfo =\n", 0,
	    "database.conninfo");
	refuse_text("[tls]\nkey = /k\n[database]\nconninfo = dbname=x\n", 0,
	    "tls.cert");
	refuse_text("[tls]\ncert = /c\n[database]\nconninfo = dbname=x\n", 0,
	    "tls.key");
	refuse_text("", 0, "required");
}

static void
test_missing_file(void **state)
{
	char err[512], nope[PATH_MAX + 32];

	snprintf(nope, sizeof nope, "%s/no-such.conf", dir);
	assert_null(config_load(nope, err, sizeof err));
	assert_non_null(strstr(err, nope));
	assert_non_null(strstr(err, "No such file"));
}

/* An error message longer than the caller's buffer is cut, not overrun. */
static void
test_small_err_buffer(void **state)
{
	char err[8];
	struct config *cfg;

	memset(err, 'x', sizeof err);
	cfg = load_text(BASE "[server]\nbogus = 1\n", err, sizeof err);
	assert_null(cfg);
	assert_true(memchr(err, '\0', sizeof err) != NULL);
}

static void
test_listen(void **state)
{
	struct config *cfg;

	/* The first explicit listen replaces the default; more add up. */
	cfg = load_ok("[server]\nlisten = 127.0.0.1:8000\n"
	    "listen = [::1]:8001\n");
	assert_int_equal(cfg->nlisten, 2);
	assert_string_equal(cfg->listen[0], "127.0.0.1:8000");
	assert_string_equal(cfg->listen[1], "[::1]:8001");
	config_free(cfg);

	cfg = load_ok("[server]\nlisten = [::1]:7443\n");
	assert_int_equal(cfg->nlisten, 1);
	assert_string_equal(cfg->listen[0], "[::1]:7443");
	config_free(cfg);

	cfg = load_ok("[server]\nlisten = localhost:7443\nworkers = 3\n"
	    "listen = 0.0.0.0:7444\n");
	assert_int_equal(cfg->nlisten, 2);
	assert_string_equal(cfg->listen[1], "0.0.0.0:7444");
	config_free(cfg);

	refuse("[server]\nlisten = ::1:7443\n", 2, "server.listen");
	refuse("[server]\nlisten = 127.0.0.1\n", 2, "server.listen");
	refuse("[server]\nlisten = 127.0.0.1:\n", 2, "server.listen");
	refuse("[server]\nlisten = :7443\n", 2, "server.listen");
	refuse("[server]\nlisten = 127.0.0.1:65536\n", 2, "server.listen");
	refuse("[server]\nlisten = 127.0.0.1:http\n", 2, "server.listen");
	refuse("[server]\nlisten = [::1]7443\n", 2, "server.listen");
	refuse("[server]\nlisten =\n", 2, "server.listen");
	refuse("[server]\nlisten = 127.0.0.1:7443\nlisten = nope\n", 3,
	    "server.listen");
}

/* [http] (docs/configuration.md): no listener by default, listen and
 * origin repeatable, an origin is https://host[:port] only; listen needs
 * a restart, origin reloads, and a reload keeps the running listeners. */
static void
test_http(void **state)
{
	struct config *a, *b;
	char err[512];

	a = load_ok("");
	assert_int_equal(a->http_listen.n, 0);
	assert_int_equal(a->http_origin.n, 0);
	assert_non_null(a->http_www_dir);
	assert_int_equal(a->http_max_connections, 512);
	assert_int_equal(a->http_timeout, 30);
	config_free(a);

	a = load_ok("[http]\nlisten = 127.0.0.1:8443\nlisten = [::1]:8443\n"
	    "origin = https://desk.example.org\n"
	    "origin = https://desk.example.org:8443\nwww_dir = /srv/www\n");
	assert_int_equal(a->http_listen.n, 2);
	assert_string_equal(a->http_listen.v[1], "[::1]:8443");
	assert_int_equal(a->http_origin.n, 2);
	assert_string_equal(a->http_origin.v[1],
	    "https://desk.example.org:8443");
	assert_string_equal(a->http_www_dir, "/srv/www");

	refuse("[http]\nlisten = nope\n", 2, "http.listen");
	refuse("[http]\norigin = http://desk.example.org\n", 2, "https://");
	refuse("[http]\norigin = https://desk.example.org/\n", 2,
	    "http.origin");
	refuse("[http]\norigin = https://\n", 2, "http.origin");

	/* A new origin reloads; a new listen waits for a restart. */
	b = load_ok("[http]\nlisten = 127.0.0.1:8443\nlisten = [::1]:8443\n"
	    "origin = https://other.example.org\nwww_dir = /srv/www\n");
	assert_true(config_reloadable(a, b, err, sizeof err));
	config_free(b);
	b = load_ok("[http]\nlisten = 127.0.0.1:9443\n");
	assert_false(config_reloadable(a, b, err, sizeof err));
	assert_non_null(strstr(err, "http.listen"));
	config_keep_static(b, a);
	assert_int_equal(b->http_listen.n, 2);
	assert_string_equal(b->http_listen.v[0], "127.0.0.1:8443");
	assert_int_equal(b->http_origin.n, 0);
	config_free(a);
	config_free(b);
}

/* [http] metrics_allow (an address list, reloads) and metrics_listen
 * (host:port, repeatable, restart): docs/configuration.md. */
static void
test_http_metrics(void **state)
{
	struct config *a, *b;
	char err[512];

	a = load_ok("");
	assert_int_equal(a->http_metrics_allow.n, 0);
	assert_int_equal(a->http_metrics_listen.n, 0);
	config_free(a);

	a = load_ok("[http]\nmetrics_allow = 127.0.0.1 ::1, 10.0.0.0/8\n"
	    "metrics_listen = 127.0.0.1:9465\n");
	assert_int_equal(a->http_metrics_allow.n, 3);
	assert_true(netlist_match_text(&a->http_metrics_allow, "10.1.2.3"));
	assert_false(netlist_match_text(&a->http_metrics_allow, "127.0.0.2"));
	assert_int_equal(a->http_metrics_listen.n, 1);
	refuse("[http]\nmetrics_allow = 10.0.0.0/33\n", 2,
	    "http.metrics_allow");
	refuse("[http]\nmetrics_allow = localhost\n", 2, "http.metrics_allow");
	refuse("[http]\nmetrics_listen = 9465\n", 2, "http.metrics_listen");

	b = load_ok("[http]\nmetrics_allow = ::1\n"
	    "metrics_listen = 127.0.0.1:9465\n");
	assert_true(config_reloadable(a, b, err, sizeof err));
	config_free(b);
	b = load_ok("[http]\nmetrics_allow = 127.0.0.1\n");
	assert_false(config_reloadable(a, b, err, sizeof err));
	assert_non_null(strstr(err, "http.metrics_listen"));
	config_free(a);
	config_free(b);
}

static void
test_listen_too_many(void **state)
{
	char body[4096];
	size_t len, i;
	struct config *cfg;

	len = (size_t)snprintf(body, sizeof body, "[server]\n");
	for (i = 0; i < CONFIG_MAX_LISTEN; i++)
		len += (size_t)snprintf(body + len, sizeof body - len,
		    "listen = 127.0.0.1:%zu\n", 8000 + i);
	cfg = load_ok(body);
	assert_int_equal(cfg->nlisten, CONFIG_MAX_LISTEN);
	assert_string_equal(cfg->listen[CONFIG_MAX_LISTEN - 1],
	    "127.0.0.1:8015");
	config_free(cfg);

	snprintf(body + len, sizeof body - len, "listen = 127.0.0.1:9999\n");
	refuse(body, 2 + CONFIG_MAX_LISTEN, "too many");
}

static void
test_choices(void **state)
{
	static const char *const levels[] = { "error", "warn", "info",
	    "debug" };
	char body[128];
	struct config *cfg;
	size_t i;

	for (i = 0; i < nitems(levels); i++) {
		snprintf(body, sizeof body, "[log]\nlevel = %s\n", levels[i]);
		cfg = load_ok(body);
		assert_string_equal(cfg->log_level, levels[i]);
		config_free(cfg);
	}
	refuse("[log]\nlevel = verbose\n", 2, "log.level");
	refuse("[log]\nlevel = INFO\n", 2, "log.level");
	refuse("[log]\nlevel =\n", 2, "log.level");

	cfg = load_ok("[log]\nformat = json\n");
	assert_string_equal(cfg->log_format, "json");
	config_free(cfg);
	cfg = load_ok("[log]\nformat = text\n");
	assert_string_equal(cfg->log_format, "text");
	config_free(cfg);
	refuse("[log]\nformat = xml\n", 2, "log.format");
	refuse("[log]\nformat =\n", 2, "log.format");

	cfg = load_ok("[tls]\nmin_version = 1.3\n");
	assert_string_equal(cfg->tls_min_version, "1.3");
	config_free(cfg);
	cfg = load_ok("[tls]\nmin_version = 1.2\n");
	assert_string_equal(cfg->tls_min_version, "1.2");
	config_free(cfg);
	refuse("[tls]\nmin_version = 1.1\n", 2, "tls.min_version");
	refuse("[tls]\nmin_version = 1.0\n", 2, "tls.min_version");
	refuse("[tls]\nmin_version = 1.4\n", 2, "tls.min_version");
	refuse("[tls]\nmin_version = TLSv1.3\n", 2, "tls.min_version");
}

/* Values keep their own '=' signs; "; comment" after a blank is dropped;
 * whole-line comments and blank lines are skipped but still counted. */
static void
test_values_and_comments(void **state)
{
	struct config *cfg;

	cfg = load_ok("; a comment\n"
	    "# another\n"
	    "\n"
	    "[database]\n"
	    "conninfo = host=/run/pg port=6543 user=st dbname=a=b ; the db\n"
	    "[server]\n"
	    "workers = 3 ; three\n");
	assert_string_equal(cfg->db_conninfo,
	    "host=/run/pg port=6543 user=st dbname=a=b");
	assert_int_equal(cfg->workers, 3);
	config_free(cfg);

	refuse("; one\n\n# two\n[server]\nbogus = 1\n", 5, "server.bogus");
}

/* With two bad lines, the first is the one reported, with its own
 * problem. */
static void
test_first_error(void **state)
{
	refuse("[server]\nworkers = 0\nmax_inflight = 0\n", 2,
	    "server.workers");
	refuse("[server]\nbogus = 1\nworkers = 0\n", 2, "server.bogus");
	refuse("[server]\nworkers = 0\nbogus = 1\n", 2, "server.workers");
	refuse("[policy]\nwaitlist_hold = 5x\n[log]\nlevel = loud\n", 2,
	    "policy.waitlist_hold");
}

/* A line that is not "key = value" is reported as such, at its own line,
 * and not with the problem of some later line. */
static void
syntax_error_at(int line, const char *body, int n, const char *not_part)
{
	char text[1024], err[512], want[PATH_MAX + 64];
	struct config *cfg;

	snprintf(text, sizeof text, "%s%s", BASE, body);
	if ((cfg = load_text(text, err, sizeof err)) != NULL) {
		config_free(cfg);
		fail_msg("line %d: accepted\n--- file:\n%s", line, text);
	}
	snprintf(want, sizeof want, "%s:%d: ", path, BODY_LINE - 1 + n);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("line %d: error \"%s\" should start with \"%s\"",
		    line, err, want);
	if (not_part != NULL && strstr(err, not_part) != NULL)
		fail_msg("line %d: error \"%s\" blames body line %d for what "
		    "is wrong on a later line", line, err, n);
}
#define syntax_error(body, n, not_part) \
	syntax_error_at(__LINE__, body, n, not_part)

static void
test_syntax_error(void **state)
{
	syntax_error("[server]\nthis is not a setting\n", 2, NULL);
	syntax_error("[server]\ngarbage\nbogus = 1\n", 2, "bogus");
	syntax_error("[server\nworkers = 2\n", 1, "workers");
	syntax_error("[server]\nworkers = 2\n[log\nlevel = loud\n", 3,
	    "level");
}

/* A long value (a conninfo with many options, a deep certificate path) is
 * either read whole or refused at its own line: never cut short nor
 * reported at a line the file does not have. */
static void
test_long_line(void **state)
{
	char value[400], text[1024], err[512], want[PATH_MAX + 64];
	struct config *cfg;
	size_t len;

	len = (size_t)snprintf(value, sizeof value, "host=/run/postgresql "
	    "port=5432 user=strapontin dbname=strapontin "
	    "application_name=strapontind sslmode=disable "
	    "connect_timeout=10 keepalives=1 keepalives_idle=30");
	while (len < 300)
		len += (size_t)snprintf(value + len, sizeof value - len,
		    " options=-cstatement_timeout=%zu", len);
	snprintf(text, sizeof text, "[tls]\ncert = /c\nkey = /k\n[database]\n"
	    "conninfo = %s\n", value);
	cfg = load_text(text, err, sizeof err);
	if (cfg != NULL) {
		assert_string_equal(cfg->db_conninfo, value);
		config_free(cfg);
		return;
	}
	snprintf(want, sizeof want, "%s:5: ", path);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("a %zu-byte conninfo on line 5 gave \"%s\"",
		    strlen(value), err);
}

/* Loads two files into a and b. */
static void
load_pair(const char *body_a, const char *body_b, struct config **a,
    struct config **b)
{
	*a = load_ok(body_a);
	*b = load_ok(body_b);
}

static void
test_reloadable(void **state)
{
	struct config *a, *b;
	char err[256];

	/* Nothing changed. */
	load_pair("", "", &a, &b);
	memset(err, 'x', sizeof err);
	assert_true(config_reloadable(a, b, err, sizeof err));
	assert_string_equal(err, "");
	config_free(a);
	config_free(b);

	/* Only what SIGHUP may change. */
	load_pair("",
	    "[policy]\nmax_per_month = 5\nwaitlist_hold = 1h\n"
	    "no_show_weight = 3\ntoken_ttl = 1d\n"
	    "[server]\nmax_connections = 10\nidle_timeout = 60\n"
	    "[log]\nlevel = debug\n[tls]\nmin_version = 1.3\n"
	    "client_ca = /ca.pem\n", &a, &b);
	assert_true(config_reloadable(a, b, err, sizeof err));
	assert_string_equal(err, "");
	config_free(a);
	config_free(b);

	/* A listen address. */
	load_pair("[server]\nlisten = 127.0.0.1:7443\n",
	    "[server]\nlisten = 127.0.0.1:7444\n", &a, &b);
	assert_false(config_reloadable(a, b, err, sizeof err));
	assert_string_equal(err, "server.listen");
	config_free(a);
	config_free(b);

	/* One more listen address, the first unchanged. */
	load_pair("", "[server]\nlisten = 127.0.0.1:7443\n"
	    "listen = [::1]:7443\n", &a, &b);
	assert_false(config_reloadable(a, b, err, sizeof err));
	assert_string_equal(err, "server.listen");
	config_free(a);
	config_free(b);

	/* The explicit default is no change. */
	load_pair("", "[server]\nlisten = 127.0.0.1:7443\n", &a, &b);
	assert_true(config_reloadable(a, b, err, sizeof err));
	config_free(a);
	config_free(b);

	/* The database. */
	load_pair("", "[database]\nconninfo = dbname=other\n", &a, &b);
	assert_false(config_reloadable(a, b, err, sizeof err));
	assert_string_equal(err, "database.conninfo");
	config_free(a);
	config_free(b);

	/* Several at once, with reloadable changes mixed in: only the static
	 * ones are named. */
	load_pair("", "[server]\nlisten = 127.0.0.1:1\nworkers = 3\n"
	    "[database]\nconninfo = dbname=other\npool_size = 2\n"
	    "[policy]\nmax_per_month = 9\n", &a, &b);
	assert_false(config_reloadable(a, b, err, sizeof err));
	assert_non_null(strstr(err, "server.listen"));
	assert_non_null(strstr(err, "server.workers"));
	assert_non_null(strstr(err, "database.conninfo"));
	assert_non_null(strstr(err, "database.pool_size"));
	assert_null(strstr(err, "policy"));

	/* A short buffer is cut, not overrun, and the answer stays. */
	assert_false(config_reloadable(a, b, err, 12));
	assert_true(strlen(err) < 12);
	config_free(a);
	config_free(b);
}

static void
test_keep_static(void **state)
{
	static const char old_body[] = "[server]\nlisten = 127.0.0.1:7443\n"
	    "workers = 2\n[policy]\nmax_per_month = 2\n";
	struct config *old, *new, *running;
	char err[256];

	running = load_ok(old_body);
	load_pair(old_body,
	    "[server]\nlisten = 127.0.0.1:8000\nlisten = [::1]:8000\n"
	    "workers = 5\nmax_connections = 7\n"
	    "[database]\nconninfo = dbname=other\npool_size = 9\n"
	    "[policy]\nmax_per_month = 6\n[log]\nlevel = warn\n", &old, &new);

	config_keep_static(new, old);

	/* new keeps old's static values... */
	assert_int_equal(new->nlisten, 1);
	assert_string_equal(new->listen[0], "127.0.0.1:7443");
	assert_string_equal(new->db_conninfo,
	    "host=/tmp port=5432 dbname=strapontin");
	assert_int_equal(new->workers, 2);
	assert_int_equal(new->db_pool_size, 4);
	/* ...and its own reloadable ones. */
	assert_int_equal(new->policy.max_per_month, 6);
	assert_int_equal(new->max_connections, 7);
	assert_string_equal(new->log_level, "warn");
	/* Now nothing static differs from the running configuration. */
	assert_true(config_reloadable(running, new, err, sizeof err));
	config_free(running);

	/* old holds new's former values, so freeing both frees each once
	 * (the sanitizers check). */
	assert_int_equal(old->nlisten, 2);
	assert_string_equal(old->listen[0], "127.0.0.1:8000");
	assert_string_equal(old->listen[1], "[::1]:8000");
	assert_string_equal(old->db_conninfo, "dbname=other");
	config_free(old);
	config_free(new);
}

static void
expect_split(int line, const char *s, const char *host, const char *port)
{
	char *h = (char *)"unset", *p = (char *)"unset";
	bool ok = config_split_hostport(s, &h, &p);

	char shown[512];
	bool right;

	if (!ok) {
		if (host != NULL)
			fail_msg("line %d: \"%s\" refused", line, s);
		return;
	}
	/* Freed before any failure, so that it leaks nothing. */
	snprintf(shown, sizeof shown, "\"%s\" \"%s\"", h, p);
	right = host != NULL && strcmp(h, host) == 0 && strcmp(p, port) == 0;
	free(h);
	free(p);
	if (!right)
		fail_msg("line %d: \"%s\" split as %s", line, s, shown);
}
#define SPLIT(s, h, p) expect_split(__LINE__, s, h, p)

static void
test_split_hostport(void **state)
{
	SPLIT("127.0.0.1:7443", "127.0.0.1", "7443");
	SPLIT("localhost:1", "localhost", "1");
	SPLIT("0.0.0.0:65535", "0.0.0.0", "65535");
	SPLIT("[::1]:7443", "::1", "7443");
	SPLIT("[::]:7443", "::", "7443");
	SPLIT("[fe80::1%eth0]:7443", "fe80::1%eth0", "7443");
	SPLIT("db.example.org:5432", "db.example.org", "5432");

	SPLIT("::1:7443", NULL, NULL);
	SPLIT("127.0.0.1", NULL, NULL);
	SPLIT("127.0.0.1:", NULL, NULL);
	SPLIT(":7443", NULL, NULL);
	SPLIT("", NULL, NULL);
	SPLIT(":", NULL, NULL);
	SPLIT("[]:7443", NULL, NULL);
	SPLIT("[::1]", NULL, NULL);
	SPLIT("[::1]:", NULL, NULL);
	SPLIT("[::1]7443", NULL, NULL);
	SPLIT("[::1:7443", NULL, NULL);
	SPLIT("127.0.0.1:65536", NULL, NULL);
	SPLIT("127.0.0.1:-1", NULL, NULL);
	SPLIT("127.0.0.1:http", NULL, NULL);
	SPLIT("127.0.0.1:74x3", NULL, NULL);
	SPLIT("127.0.0.1: 7443", NULL, NULL);
}

/* A text in memory goes through the same parser as a file: the same
 * values, the same errors at the same lines, under the name given. */
static void
test_load_mem(void **state)
{
	static const char body[] = BASE "[server]\nworkers = 7\n"
	    "listen = [::1]:9443\n";
	char err[512];
	struct config *cfg;

	cfg = config_load_mem("inline", body, sizeof body - 1, err, sizeof err);
	assert_non_null(cfg);
	assert_int_equal(cfg->workers, 7);
	assert_int_equal(cfg->nlisten, 1);
	assert_string_equal(cfg->listen[0], "[::1]:9443");
	assert_string_equal(cfg->path, "inline");
	config_free(cfg);

	/* Only len bytes are read: the rest would be a bad line 8. */
	cfg = config_load_mem("inline", BASE "[server]\nworkers = 7\nbad",
	    strlen(BASE "[server]\nworkers = 7\n"), err, sizeof err);
	assert_non_null(cfg);
	config_free(cfg);

	assert_null(config_load_mem("inline", BASE "[server]\nworkers = 99\n",
	    strlen(BASE "[server]\nworkers = 99\n"), err, sizeof err));
	assert_string_equal(err, "inline:7: server.workers must be an integer "
	    "from 1 to 64");
	/* A NUL ends its line there, as in a file. */
	assert_null(config_load_mem("inline", "[tls]\ncert\0 = x\n", 16, err,
	    sizeof err));
	assert_string_equal(err, "inline:2: syntax error");
	assert_null(config_load_mem("inline", "", 0, err, sizeof err));
	assert_string_equal(err, "inline: database.conninfo is required");
}

/* [mail] (docs/configuration.md): nothing sent by default; STARTTLS on
 * unless the relay is on this host; from required; the keys that only
 * make sense together. A whole-file check reports no line (0). */
static void
test_mail(void **state)
{
	struct config *cfg;

	cfg = load_ok("");
	assert_null(cfg->mail_host);
	assert_true(cfg->mail_starttls);
	assert_false(cfg->mail_implicit_tls);
	assert_int_equal(cfg->mail_port, 587);
	assert_int_equal(cfg->mail_batch, 20);
	assert_int_equal(cfg->mail_lease, 300);
	assert_int_equal(cfg->mail_retry_min, 60);
	assert_int_equal(cfg->mail_retry_max, 3600);
	assert_int_equal(cfg->mail_give_up_after, 3 * 86400);
	config_free(cfg);
	cfg = load_ok("[mail]\nhost = smtp.example.org\n"
	    "from = no-reply@example.org\nusername = u\n"
	    "password_file = /etc/pw\n");
	assert_string_equal(cfg->mail_host, "smtp.example.org");
	config_free(cfg);
	config_free(load_ok("[mail]\nhost = 127.0.0.1\nstarttls = off\n"
	    "port = 25\nfrom = a@b.org\n"));
	config_free(load_ok("[mail]\nhost = ::1\nstarttls = off\n"
	    "from = a@b.org\n"));
	refuse_text(BASE "[mail]\nhost = smtp.example.org\nstarttls = off\n"
	    "from = a@b.org\n", 0, "only for a relay on this host");
	cfg = load_ok("[mail]\nhost = smtp.example.org\nport = 465\n"
	    "implicit_tls = on\nfrom = a@b.org\n");
	assert_true(cfg->mail_implicit_tls);
	config_free(cfg);
	refuse_text(BASE "[mail]\nhost = localhost\nimplicit_tls = on\n"
	    "starttls = off\nfrom = a@b.org\n", 0, "choose one");
	refuse_text(BASE "[mail]\nhost = smtp.example.org\n", 0,
	    "needs mail.from");
	refuse_text(BASE "[mail]\nhost = smtp.example.org\n"
	    "from = Me <a@b.org>\n", 0, "needs mail.from");
	refuse_text(BASE "[mail]\nhost = smtp.example.org:25\n"
	    "from = a@b.org\n", 0, "without a port");
	refuse_text(BASE "[mail]\nhost = smtp.example.org\nfrom = a@b.org\n"
	    "password_file = /etc/pw\n", 0, "needs mail.username");
	refuse_text(BASE "[mail]\nhost = smtp.example.org\nfrom = a@b.org\n"
	    "timeout = 60\nlease = 60\n", 0, "shorter than mail.lease");
	refuse_text(BASE "[mail]\nhost = smtp.example.org\nfrom = a@b.org\n"
	    "retry_min = 2h\nretry_max = 1h\n", 0, "retry_min");
	refuse("[mail]\nbatch = 0\n", 2, "mail.batch");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_keys),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_bad_durations),
		cmocka_unit_test(test_int_ranges),
		cmocka_unit_test(test_no_show_weight),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_small_err_buffer),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_listen_too_many),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_metrics),
		cmocka_unit_test(test_choices),
		cmocka_unit_test(test_values_and_comments),
		cmocka_unit_test(test_first_error),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_reloadable),
		cmocka_unit_test(test_keep_static),
		cmocka_unit_test(test_split_hostport),
		cmocka_unit_test(test_load_mem),
		cmocka_unit_test(test_mail),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
