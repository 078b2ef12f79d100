/* The configuration: one declarative table (config.c) gives every key its
 * type, default, limits and whether SIGHUP may change it; the same table
 * drives parsing, --check-config and reload. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "netlist.h"

#define CONFIG_MAX_LISTEN 16

/* A key that may be given several times. */
struct config_list {
	char *v[CONFIG_MAX_LISTEN];
	size_t n;
};

struct policy {
	long long max_upcoming_per_beneficiary;
	long long max_per_month;
	long long waitlist_hold;       /* seconds */
	long long history_window_days;
	double no_show_weight;
	double withdrawn_late_weight;
	long long max_block_share;     /* percent of an offer's seats */
	long long login_max_failures;
	long long login_lockout;       /* seconds */
	long long token_ttl;           /* seconds */
	long long password_cost;       /* log2 of scrypt's N for new hashes */
	long long retention_months;
	long long retention_interval;  /* seconds between retention checks */
	long long report_max_days;     /* longest report.activity range */
	long long voucher_rate;        /* voucher.get calls per address and minute */
	long long mail_hour;           /* local hour of the day's e-mails */
	long long mail_digest_days;    /* days after today in a digest */
	long long mail_hold_notice;    /* seconds before a hold expires */
	long long mail_interval;       /* seconds between mail compositions */
	long long mail_keep_days;      /* days an e-mail is kept after queued */
};

struct config {
	char *path;

	char *listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	long long workers;
	long long max_connections;
	long long max_request_bytes;
	long long idle_timeout;        /* seconds */
	long long handshake_timeout;   /* seconds */
	long long drain_timeout;       /* seconds */
	long long max_inflight;
	long long max_output_bytes;    /* stop reading a client past this */
	long long max_connections_per_address;
	long long auth_timeout;        /* seconds to log in on a new connection */
	long long max_batch;           /* elements of one batch */
	long long max_answer_bytes;    /* one answer, a batch's included */
	/* The PROXY protocol (docs/operations.md): on the line listener,
	 * and the balancers whose headers are believed (both listeners). */
	bool proxy_protocol;
	struct netlist proxy_from;

	char *tls_cert;
	char *tls_key;
	char *tls_client_ca;
	char *tls_client_crl;         /* needs tls_client_ca */
	char *tls_min_version;         /* "1.2" or "1.3" */
	char *tls_ciphers;             /* TLS 1.2 cipher list */

	char *db_conninfo;
	long long db_pool_size;
	long long db_connect_timeout;  /* seconds */
	long long db_queue_timeout;    /* seconds a request may wait for a connection */
	char *db_migrate_conninfo;     /* the schema owner's, for --migrate */
	/* statement_timeout per method class, seconds (0: none) */
	long long db_statement_timeout;
	long long db_list_statement_timeout;
	long long db_report_statement_timeout;
	long long db_booking_batch_max;      /* booking.create requests per call */
	long long db_booking_batch_inflight; /* such calls at once (0: pool_size) */
	long long db_events_keep;      /* seconds an outbox row is kept */
	/* the optional read pool on standbys (docs/scaling.md) */
	char *db_replica_conninfo;     /* NULL: none */
	long long db_replica_pool_size;
	long long db_replica_max_lag;  /* seconds of replay lag tolerated */

	/* [http]: the web desk's HTTPS listener (docs/http.md) */
	struct config_list http_listen;  /* none: no HTTP listener */
	struct config_list http_origin;  /* none: https:// + the Host header */
	char *http_www_dir;
	long long http_max_connections;
	long long http_timeout;        /* seconds */
	long long http_max_header_bytes;
	bool http_proxy_protocol;      /* PROXY headers from server.proxy_from */
	struct netlist http_metrics_allow; /* GET /metrics from these */
	struct config_list http_metrics_listen; /* plain, metrics only */

	struct policy policy;

	/* [mail]: the sender of mail_outbox (docs/mail.md, "Transport") */
	char *mail_host;               /* NULL: nothing is sent */
	long long mail_port;
	bool mail_starttls;
	bool mail_implicit_tls;
	char *mail_username;
	char *mail_password_file;
	char *mail_from;
	char *mail_ca_file;            /* NULL: the system's trust store */
	long long mail_batch;          /* messages per claim */
	long long mail_interval;       /* seconds between looks at the outbox */
	long long mail_timeout;        /* seconds one message may take */
	long long mail_lease;          /* seconds a claim holds its rows */
	long long mail_retry_min;      /* seconds, first retry */
	long long mail_retry_max;      /* seconds, longest wait between tries */
	long long mail_give_up_after;  /* seconds after which a message is dropped */
	/* [privacy]: the secrets of identity keys (docs/privacy.md) */
	char *privacy_identity_secret_file;          /* NULL: no keys */
	char *privacy_identity_previous_secret_file; /* during a rotation */

	char *log_level;
	char *log_format;
};

/* Parses path. On error returns NULL and writes "file:line: problem" (or
 * "file: problem") into err. A file that loads also sets the cost of new
 * password hashes (pwhash_set_cost): --add-admin and the daemon, at start
 * and on SIGHUP, hash at the configured cost. */
struct config *config_load(const char *path, char *err, size_t errlen);
/* The same for a text in memory (len bytes, NULs and all), named name in
 * messages: for tests and the fuzzer. */
struct config *config_load_mem(const char *name, const char *text,
    size_t len, char *err, size_t errlen);
void config_free(struct config *cfg);

/* Lists into err the keys whose values differ between old and new but
 * cannot change without a restart; returns false if there are any. */
bool config_reloadable(const struct config *old, const struct config *new,
    char *err, size_t errlen);

/* Moves the values SIGHUP cannot change from old into new (and new's into
 * old, to be freed with it), so a reload applies the rest. */
void config_keep_static(struct config *new, struct config *old);

/* The [policy] section as a JSON object (malloc'd). */
char *config_policy_json(const struct config *cfg);

/* Splits "host:port" or "[v6]:port"; host and port are malloc'd. */
bool config_split_hostport(const char *s, char **host, char **port);

#endif
