#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pwhash.h"
#include "util.h"

/* The installed web pages (CMake sets it from the install prefix). */
#ifndef WWWDIR
#define WWWDIR "/usr/local/share/strapontin/www"
#endif

enum ctype { C_INT, C_DURATION, C_DOUBLE, C_STRING, C_LISTEN, C_LEVEL,
	C_FORMAT, C_TLSVER, C_LIST, C_BOOL, C_NETS };

struct cdef {
	const char *section;
	const char *name;
	enum ctype type;
	size_t offset;
	const char *def;      /* default, as it would be written in the file */
	long long min, max;   /* for C_INT and C_DURATION */
	bool reloadable;
};

#define O(f) offsetof(struct config, f)
#define DAY (86400LL)

static const struct cdef cdefs[] = {
	{"server", "listen", C_LISTEN, O(listen), "127.0.0.1:7443", 0, 0, false},
	{"server", "workers", C_INT, O(workers), "2", 1, 64, false},
	{"server", "max_connections", C_INT, O(max_connections), "1024", 1, 1000000, true},
	{"server", "max_request_bytes", C_INT, O(max_request_bytes), "65536", 256, 64 << 20, true},
	{"server", "idle_timeout", C_DURATION, O(idle_timeout), "300", 1, 30 * DAY, true},
	{"server", "handshake_timeout", C_DURATION, O(handshake_timeout), "10", 1, 600, true},
	{"server", "drain_timeout", C_DURATION, O(drain_timeout), "30", 0, 3600, true},
	{"server", "max_inflight", C_INT, O(max_inflight), "64", 1, 100000, true},
	{"server", "max_output_bytes", C_INT, O(max_output_bytes), "4194304", 65536, 1LL << 30, true},
	{"server", "max_connections_per_address", C_INT, O(max_connections_per_address), "256", 1, 1000000, true},
	{"server", "auth_timeout", C_DURATION, O(auth_timeout), "30", 1, 3600, true},
	{"server", "max_batch", C_INT, O(max_batch), "100", 1, 100000, true},
	{"server", "max_answer_bytes", C_INT, O(max_answer_bytes), "4194304", 65536, 1LL << 30, true},
	{"server", "proxy_protocol", C_BOOL, O(proxy_protocol), "off", 0, 0, true},
	{"server", "proxy_from", C_NETS, O(proxy_from), NULL, 0, 0, true},

	{"tls", "cert", C_STRING, O(tls_cert), NULL, 0, 0, true},
	{"tls", "key", C_STRING, O(tls_key), NULL, 0, 0, true},
	{"tls", "client_ca", C_STRING, O(tls_client_ca), NULL, 0, 0, true},
	{"tls", "client_crl", C_STRING, O(tls_client_crl), NULL, 0, 0, true},
	{"tls", "min_version", C_TLSVER, O(tls_min_version), "1.2", 0, 0, true},
	{"tls", "ciphers", C_STRING, O(tls_ciphers),
	    "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!SHA1:!SHA256:!SHA384", 0, 0, true},

	{"database", "conninfo", C_STRING, O(db_conninfo), NULL, 0, 0, false},
	{"database", "pool_size", C_INT, O(db_pool_size), "4", 1, 500, false},
	{"database", "connect_timeout", C_DURATION, O(db_connect_timeout), "5", 1, 600, true},
	{"database", "queue_timeout", C_DURATION, O(db_queue_timeout), "5", 1, 600, true},
	{"database", "migrate_conninfo", C_STRING, O(db_migrate_conninfo), NULL, 0, 0, true},
	{"database", "statement_timeout", C_DURATION, O(db_statement_timeout), "10", 0, DAY, false},
	{"database", "list_statement_timeout", C_DURATION, O(db_list_statement_timeout), "5", 0, DAY, false},
	{"database", "report_statement_timeout", C_DURATION, O(db_report_statement_timeout), "30", 0, DAY, false},
	{"database", "booking_batch_max", C_INT, O(db_booking_batch_max), "32", 1, 64, true},
	{"database", "booking_batch_inflight", C_INT, O(db_booking_batch_inflight), "0", 0, 500, true},
	{"database", "events_keep", C_DURATION, O(db_events_keep), "300", 1, DAY, true},
	{"database", "replica_conninfo", C_STRING, O(db_replica_conninfo), NULL, 0, 0, false},
	{"database", "replica_pool_size", C_INT, O(db_replica_pool_size), "4", 1, 500, false},
	{"database", "replica_max_lag", C_DURATION, O(db_replica_max_lag), "5", 1, 3600, true},

	{"policy", "max_upcoming_per_beneficiary", C_INT, O(policy.max_upcoming_per_beneficiary), "2", 0, 1000, true},
	{"policy", "max_per_month", C_INT, O(policy.max_per_month), "2", 0, 1000, true},
	{"policy", "waitlist_hold", C_DURATION, O(policy.waitlist_hold), "24h", 1, 30 * DAY, true},
	{"policy", "history_window_days", C_INT, O(policy.history_window_days), "365", 1, 3650, true},
	{"policy", "no_show_weight", C_DOUBLE, O(policy.no_show_weight), "2", 0, 100, true},
	{"policy", "withdrawn_late_weight", C_DOUBLE, O(policy.withdrawn_late_weight), "0.5", 0, 100, true},
	{"policy", "max_block_share", C_INT, O(policy.max_block_share), "50", 0, 100, true},
	{"policy", "login_max_failures", C_INT, O(policy.login_max_failures), "5", 1, 1000, true},
	{"policy", "login_lockout", C_DURATION, O(policy.login_lockout), "15m", 1, 7 * DAY, true},
	{"policy", "token_ttl", C_DURATION, O(policy.token_ttl), "12h", 60, 90 * DAY, true},
	{"policy", "password_cost", C_INT, O(policy.password_cost), "17", 10, PWHASH_MAX_COST, true},
	{"policy", "retention_months", C_INT, O(policy.retention_months), "24", 1, 240, true},
	{"policy", "retention_interval", C_DURATION, O(policy.retention_interval), "1h", 1, 7 * DAY, true},
	{"policy", "report_max_days", C_INT, O(policy.report_max_days), "400", 1, 3660, true},
	{"policy", "voucher_rate", C_INT, O(policy.voucher_rate), "30", 1, 100000, true},
	{"policy", "mail_hour", C_INT, O(policy.mail_hour), "7", 0, 23, true},
	{"policy", "mail_digest_days", C_INT, O(policy.mail_digest_days), "2", 0, 14, true},
	{"policy", "mail_hold_notice", C_DURATION, O(policy.mail_hold_notice), "2h", 60, 7 * DAY, true},
	{"policy", "mail_interval", C_DURATION, O(policy.mail_interval), "60", 1, 3600, true},
	{"policy", "mail_keep_days", C_INT, O(policy.mail_keep_days), "30", 7, 3650, true},

	{"http", "listen", C_LIST, O(http_listen), NULL, 0, 0, false},
	{"http", "origin", C_LIST, O(http_origin), NULL, 0, 0, true},
	{"http", "www_dir", C_STRING, O(http_www_dir), WWWDIR, 0, 0, true},
	{"http", "max_connections", C_INT, O(http_max_connections), "512", 1, 1000000, true},
	{"http", "timeout", C_DURATION, O(http_timeout), "30", 1, 3600, true},
	{"http", "max_header_bytes", C_INT, O(http_max_header_bytes), "8192", 1024, 1 << 20, true},
	{"http", "proxy_protocol", C_BOOL, O(http_proxy_protocol), "off", 0, 0, true},
	{"http", "metrics_allow", C_NETS, O(http_metrics_allow), NULL, 0, 0, true},
	{"http", "metrics_listen", C_LIST, O(http_metrics_listen), NULL, 0, 0, false},

	{"mail", "host", C_STRING, O(mail_host), NULL, 0, 0, true},
	{"mail", "port", C_INT, O(mail_port), "587", 1, 65535, true},
	{"mail", "starttls", C_BOOL, O(mail_starttls), "on", 0, 0, true},
	{"mail", "implicit_tls", C_BOOL, O(mail_implicit_tls), "off", 0, 0, true},
	{"mail", "username", C_STRING, O(mail_username), NULL, 0, 0, true},
	{"mail", "password_file", C_STRING, O(mail_password_file), NULL, 0, 0, true},
	{"mail", "from", C_STRING, O(mail_from), NULL, 0, 0, true},
	{"mail", "ca_file", C_STRING, O(mail_ca_file), NULL, 0, 0, true},
	{"mail", "batch", C_INT, O(mail_batch), "20", 1, 500, true},
	{"mail", "interval", C_DURATION, O(mail_interval), "5", 1, 3600, true},
	{"mail", "timeout", C_DURATION, O(mail_timeout), "60", 1, 600, true},
	{"mail", "lease", C_DURATION, O(mail_lease), "5m", 10, DAY, true},
	{"mail", "retry_min", C_DURATION, O(mail_retry_min), "1m", 1, DAY, true},
	{"mail", "retry_max", C_DURATION, O(mail_retry_max), "1h", 1, 7 * DAY, true},
	{"mail", "give_up_after", C_DURATION, O(mail_give_up_after), "3d", 60, 30 * DAY, true},
	{"privacy", "identity_secret_file", C_STRING, O(privacy_identity_secret_file), NULL, 0, 0, true},
	{"privacy", "identity_previous_secret_file", C_STRING, O(privacy_identity_previous_secret_file), NULL, 0, 0, true},

	{"log", "level", C_LEVEL, O(log_level), "info", 0, 0, true},
	{"log", "format", C_FORMAT, O(log_format), "text", 0, 0, true},
};

struct parse_state {
	struct config *cfg;
	bool listen_seen;
	char err[256];
	int err_line;           /* the line err is about */
	/* our own line reader: inih's fixed 200-byte buffer would split a
	 * long line silently, and its line numbers would then lie */
	FILE *f;
	char *buf;
	size_t cap;
	int lineno;
	int long_line;          /* first line too long for inih, or 0 */
};

static const struct cdef *
cdef_find(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < nitems(cdefs); i++)
		if (strcmp(cdefs[i].section, section) == 0 &&
		    strcmp(cdefs[i].name, name) == 0)
			return &cdefs[i];
	return NULL;
}

bool
config_split_hostport(const char *s, char **host, char **port)
{
	const char *colon;
	long long p;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || end[1] != ':')
			return false;
		*host = xstrndup(s + 1, (size_t)(end - s - 1));
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s || memchr(s, ':', (size_t)(colon - s)))
			return false;
		*host = xstrndup(s, (size_t)(colon - s));
	}
	if (!parse_ll(colon + 1, 0, 65535, &p) || (*host)[0] == '\0') {
		free(*host);
		*host = NULL;
		return false;
	}
	*port = xstrdup(colon + 1);
	return true;
}

/* Addresses or CIDR blocks (netlist.h); a key given again adds to the
 * list. */
static const char *
nets_add(struct parse_state *ps, const struct cdef *d, struct netlist *l,
    const char *value)
{
	char why[160];

	if (!netlist_add(l, value, why, sizeof why)) {
		snprintf(ps->err, sizeof ps->err, "%s.%s: %s", d->section,
		    d->name, why);
		return ps->err;
	}
	return NULL;
}

/* Stores one value; returns NULL or a problem description. */
static const char *
cdef_set(struct parse_state *ps, const struct cdef *d, const char *value)
{
	char *base = (char *)ps->cfg + d->offset;
	long long v;
	char **sp = (char **)base;
	enum log_level lvl;

	switch (d->type) {
	case C_INT:
		if (!parse_ll(value, d->min, d->max, &v)) {
			snprintf(ps->err, sizeof ps->err,
			    "%s.%s must be an integer from %lld to %lld",
			    d->section, d->name, d->min, d->max);
			return ps->err;
		}
		*(long long *)base = v;
		return NULL;
	case C_DURATION:
		v = parse_duration(value);
		if (v < d->min || v > d->max) {
			snprintf(ps->err, sizeof ps->err,
			    "%s.%s must be a duration (90s, 15m, 24h, 7d) from "
			    "%llds to %llds", d->section, d->name, d->min, d->max);
			return ps->err;
		}
		*(long long *)base = v;
		return NULL;
	case C_DOUBLE: {
		char *end;
		double x;

		errno = 0;
		x = strtod(value, &end);
		if (errno || *value == '\0' || *end != '\0' || x != x ||
		    x < (double)d->min || x > (double)d->max) {
			snprintf(ps->err, sizeof ps->err,
			    "%s.%s must be a number from %lld to %lld",
			    d->section, d->name, d->min, d->max);
			return ps->err;
		}
		*(double *)base = x;
		return NULL;
	}
	case C_LISTEN: {
		struct config *cfg = ps->cfg;
		char *h, *p;
		size_t i;

		if (!config_split_hostport(value, &h, &p))
			return "server.listen must be host:port or [ipv6]:port";
		free(h);
		free(p);
		/* The first explicit listen replaces the default. */
		if (!ps->listen_seen) {
			for (i = 0; i < cfg->nlisten; i++)
				free(cfg->listen[i]);
			cfg->nlisten = 0;
			ps->listen_seen = true;
		}
		if (cfg->nlisten == CONFIG_MAX_LISTEN)
			return "too many server.listen addresses";
		cfg->listen[cfg->nlisten++] = xstrdup(value);
		return NULL;
	}
	case C_LIST: {
		struct config_list *list = (struct config_list *)(void *)base;
		char *h, *p;

		if (strcmp(d->name, "listen") == 0 ||
		    strcmp(d->name, "metrics_listen") == 0) {
			if (!config_split_hostport(value, &h, &p)) {
				snprintf(ps->err, sizeof ps->err, "%s.%s must "
				    "be host:port or [ipv6]:port", d->section,
				    d->name);
				return ps->err;
			}
			free(h);
			free(p);
		} else if (strncmp(value, "https://", 8) != 0 ||
		    value[8] == '\0' || strchr(value + 8, '/') != NULL) {
			snprintf(ps->err, sizeof ps->err, "%s.%s must be "
			    "https://host or https://host:port", d->section,
			    d->name);
			return ps->err;
		}
		if (list->n == CONFIG_MAX_LISTEN) {
			snprintf(ps->err, sizeof ps->err, "too many %s.%s "
			    "values (at most %d)", d->section, d->name,
			    CONFIG_MAX_LISTEN);
			return ps->err;
		}
		list->v[list->n++] = xstrdup(value);
		return NULL;
	}
	case C_BOOL:
		if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0 ||
		    strcmp(value, "true") == 0)
			*(bool *)(void *)base = true;
		else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0 ||
		    strcmp(value, "false") == 0)
			*(bool *)(void *)base = false;
		else {
			snprintf(ps->err, sizeof ps->err, "%s.%s must be on or "
			    "off", d->section, d->name);
			return ps->err;
		}
		return NULL;
	case C_NETS:
		return nets_add(ps, d, (struct netlist *)(void *)base,
		    value);
	case C_LEVEL:
		if (!log_parse_level(value, &lvl))
			return "log.level must be error, warn, info or debug";
		break;
	case C_FORMAT:
		if (strcmp(value, "text") != 0 && strcmp(value, "json") != 0)
			return "log.format must be text or json";
		break;
	case C_TLSVER:
		if (strcmp(value, "1.2") != 0 && strcmp(value, "1.3") != 0)
			return "tls.min_version must be 1.2 or 1.3";
		break;
	case C_STRING:
		break;
	}
	free(*sp);
	*sp = value[0] != '\0' ? xstrdup(value) : NULL;
	return NULL;
}

static int
config_ini_cb(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse_state *ps = user;
	const struct cdef *d;
	const char *problem;

	if (name == NULL)	/* a section header alone */
		return 1;
	if (ps->err[0] != '\0')	/* inih goes on after an error: keep the first */
		return 0;
	d = cdef_find(section, name);
	if (d == NULL) {
		snprintf(ps->err, sizeof ps->err, "unknown setting %s.%s",
		    section, name);
		ps->err_line = ps->lineno;
		return 0;
	}
	problem = cdef_set(ps, d, value);
	if (problem != NULL) {
		if (problem != ps->err)
			snprintf(ps->err, sizeof ps->err, "%s", problem);
		ps->err_line = ps->lineno;
		return 0;
	}
	return 1;
}

/* fgets-like reader for ini_parse_stream() that counts lines. */
static char *
config_read_line(char *str, int num, void *stream)
{
	struct parse_state *ps = stream;
	ssize_t n = getline(&ps->buf, &ps->cap, ps->f);

	if (n < 0)
		return NULL;
	ps->lineno++;
	if (n >= num - 1 && ps->long_line == 0 &&
	    !(n == num - 1 && ps->buf[n - 1] == '\n'))
		ps->long_line = ps->lineno;
	snprintf(str, (size_t)num, "%s", ps->buf);
	return str;
}

static void
config_defaults(struct parse_state *ps)
{
	size_t i;

	for (i = 0; i < nitems(cdefs); i++) {
		if (cdefs[i].def != NULL && cdef_set(ps, &cdefs[i], cdefs[i].def))
			fatal("bad built-in default for %s.%s",
			    cdefs[i].section, cdefs[i].name);
	}
	ps->listen_seen = false;
}

/* A host on this machine: the only relay to which mail may go without
 * STARTTLS (the password and the messages never cross a network). */
static bool
is_loopback(const char *host)
{
	return strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
	    strncmp(host, "127.", 4) == 0;
}

/* [mail] keys that only make sense together (docs/configuration.md). */
static bool
mail_check(const struct config *cfg, char *err, size_t errlen)
{
	const char *from = cfg->mail_from;
	struct in6_addr v6;

	if (cfg->mail_host == NULL)
		return true;
	if (from == NULL || strchr(from, '@') == NULL ||
	    strpbrk(from, " \t\r\n<>,\"") != NULL) {
		snprintf(err, errlen, "%s: mail.host needs mail.from, an "
		    "address such as no-reply@example.org", cfg->path);
		return false;
	}
	if (strpbrk(cfg->mail_host, " \t/[]@") != NULL ||
	    (strchr(cfg->mail_host, ':') != NULL &&
	    inet_pton(AF_INET6, cfg->mail_host, &v6) != 1)) {
		snprintf(err, errlen, "%s: mail.host must be a host name or "
		    "an address, without a port (mail.port)", cfg->path);
		return false;
	}
	if (cfg->mail_implicit_tls && !cfg->mail_starttls) {
		snprintf(err, errlen, "%s: mail.implicit_tls is TLS from the "
		    "first byte; mail.starttls = off says no TLS: choose one",
		    cfg->path);
		return false;
	}
	if (!cfg->mail_starttls && !is_loopback(cfg->mail_host)) {
		snprintf(err, errlen, "%s: mail.starttls may be off only for a "
		    "relay on this host (localhost, 127.0.0.1, ::1)", cfg->path);
		return false;
	}
	if (cfg->mail_password_file != NULL && cfg->mail_username == NULL) {
		snprintf(err, errlen, "%s: mail.password_file needs "
		    "mail.username", cfg->path);
		return false;
	}
	if (cfg->mail_timeout >= cfg->mail_lease) {
		snprintf(err, errlen, "%s: mail.timeout must be shorter than "
		    "mail.lease, or a slow message could be sent twice",
		    cfg->path);
		return false;
	}
	if (cfg->mail_retry_min > cfg->mail_retry_max) {
		snprintf(err, errlen, "%s: mail.retry_min must not be longer "
		    "than mail.retry_max", cfg->path);
		return false;
	}
	return true;
}

/* Parses f, named path in messages; does not close it. */
static struct config *
config_parse(FILE *f, const char *path, char *err, size_t errlen)
{
	struct parse_state ps;
	int line;

	memset(&ps, 0, sizeof ps);
	ps.cfg = xcalloc(1, sizeof *ps.cfg);
	ps.cfg->path = xstrdup(path);
	config_defaults(&ps);

	ps.f = f;
	line = ini_parse_stream(config_read_line, &ps, config_ini_cb, &ps);
	free(ps.buf);
	if (ps.long_line != 0 && (line == 0 || ps.long_line <= line)) {
		snprintf(err, errlen, "%s:%d: line too long (at most %d bytes)",
		    path, ps.long_line, INI_MAX_LINE - 2);
		goto fail;
	}
	if (line != 0) {
		/* inih names the first bad line; our message may be about a
		 * later one if the first was a syntax error. */
		snprintf(err, errlen, "%s:%d: %s", path, line,
		    ps.err[0] && ps.err_line == line ? ps.err : "syntax error");
		goto fail;
	}
	if (ps.cfg->db_conninfo == NULL) {
		snprintf(err, errlen, "%s: database.conninfo is required", path);
		goto fail;
	}
	/* --migrate connects as the owner of the schema when one is given,
	 * else with the daemon's own conninfo. */
	if (ps.cfg->db_migrate_conninfo == NULL)
		ps.cfg->db_migrate_conninfo = xstrdup(ps.cfg->db_conninfo);
	if (ps.cfg->tls_cert == NULL || ps.cfg->tls_key == NULL) {
		snprintf(err, errlen, "%s: tls.cert and tls.key are required",
		    path);
		goto fail;
	}
	if (ps.cfg->tls_client_crl != NULL && ps.cfg->tls_client_ca == NULL) {
		snprintf(err, errlen, "%s: tls.client_crl needs tls.client_ca",
		    path);
		goto fail;
	}
	if ((ps.cfg->proxy_protocol || ps.cfg->http_proxy_protocol) &&
	    ps.cfg->proxy_from.n == 0) {
		snprintf(err, errlen, "%s: proxy_protocol needs "
		    "server.proxy_from, the balancers' addresses", path);
		goto fail;
	}
	if (!mail_check(ps.cfg, err, errlen))
		goto fail;
	pwhash_set_cost((int)ps.cfg->policy.password_cost);
	return ps.cfg;
fail:
	config_free(ps.cfg);
	return NULL;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	cfg = config_parse(f, path, err, errlen);
	fclose(f);
	return cfg;
}

struct config *
config_load_mem(const char *name, const char *text, size_t len, char *err,
    size_t errlen)
{
	struct config *cfg;
	FILE *f;

	/* Read through a stream all the same, so that a text and a file
	 * go through the one line reader. An empty stream is a valid
	 * (empty) file, but fmemopen() wants a non-empty buffer. */
	if ((f = fmemopen(len > 0 ? (void *)text : "", len > 0 ? len : 1,
	    "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		return NULL;
	}
	cfg = config_parse(f, name, err, errlen);
	fclose(f);
	return cfg;
}

void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < nitems(cdefs); i++) {
		if (cdefs[i].type == C_STRING || cdefs[i].type == C_LEVEL ||
		    cdefs[i].type == C_FORMAT || cdefs[i].type == C_TLSVER)
			free(*(char **)((char *)cfg + cdefs[i].offset));
	}
	for (i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i]);
	for (i = 0; i < cfg->http_listen.n; i++)
		free(cfg->http_listen.v[i]);
	for (i = 0; i < cfg->http_origin.n; i++)
		free(cfg->http_origin.v[i]);
	for (i = 0; i < cfg->http_metrics_listen.n; i++)
		free(cfg->http_metrics_listen.v[i]);
	free(cfg->path);
	free(cfg);
}

static bool
str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

bool
config_reloadable(const struct config *old, const struct config *new,
    char *err, size_t errlen)
{
	size_t i, len = 0;
	bool ok = true;

	err[0] = '\0';
	for (i = 0; i < nitems(cdefs); i++) {
		const struct cdef *d = &cdefs[i];
		const char *a = (const char *)old + d->offset;
		const char *b = (const char *)new + d->offset;
		bool differs;

		if (d->reloadable)
			continue;
		switch (d->type) {
		case C_LISTEN: {
			size_t j;

			differs = old->nlisten != new->nlisten;
			for (j = 0; !differs && j < old->nlisten; j++)
				differs = strcmp(old->listen[j], new->listen[j]);
			break;
		}
		case C_LIST: {
			const struct config_list *la = (const void *)a;
			const struct config_list *lb = (const void *)b;
			size_t j;

			differs = la->n != lb->n;
			for (j = 0; !differs && j < la->n; j++)
				differs = strcmp(la->v[j], lb->v[j]);
			break;
		}
		case C_INT:
		case C_DURATION:
			differs = *(const long long *)a != *(const long long *)b;
			break;
		case C_DOUBLE:
			differs = *(const double *)a != *(const double *)b;
			break;
		case C_BOOL:
			differs = *(const bool *)a != *(const bool *)b;
			break;
		case C_NETS:
			differs = memcmp(a, b, sizeof(struct netlist));
			break;
		default:
			differs = str_differs(*(char *const *)a, *(char *const *)b);
			break;
		}
		if (differs) {
			ok = false;
			if (len < errlen)
				len += (size_t)snprintf(err + len, errlen - len,
				    "%s%s.%s", len ? ", " : "", d->section,
				    d->name);
		}
	}
	return ok;
}

void
config_keep_static(struct config *new, struct config *old)
{
	size_t i;

	for (i = 0; i < nitems(cdefs); i++) {
		const struct cdef *d = &cdefs[i];
		char *a = (char *)old + d->offset, *b = (char *)new + d->offset;
		char tmp[sizeof(char *) > sizeof(long long) ?
		    sizeof(char *) : sizeof(long long)];
		size_t size;

		if (d->reloadable)
			continue;
		if (d->type == C_LISTEN) {
			char *l[CONFIG_MAX_LISTEN];
			size_t n = old->nlisten;

			memcpy(l, old->listen, sizeof l);
			memcpy(old->listen, new->listen, sizeof l);
			memcpy(new->listen, l, sizeof l);
			old->nlisten = new->nlisten;
			new->nlisten = n;
			continue;
		}
		if (d->type == C_LIST) {
			struct config_list l;

			memcpy(&l, a, sizeof l);
			memcpy(a, b, sizeof l);
			memcpy(b, &l, sizeof l);
			continue;
		}
		switch (d->type) {
		case C_INT:
		case C_DURATION: size = sizeof(long long); break;
		case C_DOUBLE: size = sizeof(double); break;
		case C_BOOL: size = sizeof(bool); break;
		case C_NETS: continue;  /* reloadable: never here */
		default: size = sizeof(char *); break;
		}
		memcpy(tmp, a, size);
		memcpy(a, b, size);
		memcpy(b, tmp, size);
	}
}

/* The [policy] section as the JSON object every SQL function takes ($4):
 * made from the table, so a key added there reaches SQL with no other
 * change. Durations are seconds. */
char *
config_policy_json(const struct config *cfg)
{
	json_t *j = json_object();
	const struct cdef *d;
	const char *base = (const char *)cfg;
	char *s;
	size_t i;

	for (i = 0; i < nitems(cdefs); i++) {
		d = &cdefs[i];
		if (strcmp(d->section, "policy") != 0)
			continue;
		switch (d->type) {
		case C_INT:
		case C_DURATION:
			json_object_set_new(j, d->name, json_integer(
			    *(const long long *)(const void *)(base + d->offset)));
			break;
		case C_DOUBLE:
			json_object_set_new(j, d->name, json_real(
			    *(const double *)(const void *)(base + d->offset)));
			break;
		default:
			json_object_set_new(j, d->name, json_string(
			    *(char *const *)(const void *)(base + d->offset)));
			break;
		}
	}
	/* 15 digits: 0.2 must reach SQL as 0.2, not 0.20000000000000001,
	 * or draw scores that should tie do not. */
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
	json_decref(j);
	if (s == NULL)
		fatal("cannot build the policy");
	return s;
}
