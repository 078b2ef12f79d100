/*
 * Integration test harness: throwaway databases, real strapontind
 * processes, and verified TLS clients, for cmocka tests.
 *
 * These helpers block and, on any failure, fail the running cmocka test
 * with a message naming what went wrong and the caller's file and line,
 * after printing the last lines of every running daemon's log. Outside a
 * cmocka test a failure exits the process with status 255.
 *
 * They read the environment that tests/CMakeLists.txt sets:
 *   ST_TEST_DIR   the tests' build directory: pg/conninfo (the `pg`
 *                 fixture), certs/ (the `certs` fixture), run/NAME/ (daemons)
 *   STRAPONTIND   the daemon binary       ST_CLI      the CLI binary
 *   ST_SOURCE_DIR the source tree         ST_BUILD_DIR the build tree
 *   ST_TIMEOUT_SCALE  (optional) multiplies the harness's own waits for
 *                 the daemon (ready, client timeout) in slow builds
 *
 * Daemons started here are kept until the process exits (so a test may
 * read a log after h_daemon_stop()); any still running then are sent
 * SIGTERM, then SIGKILL. They also receive SIGTERM if the test process
 * dies.
 */
#ifndef HARNESS_H
#define HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "strapontin.h"

/* The administrator every h_daemon_start() creates. */
#define H_ADMIN_EMAIL "admin@example.org"
#define H_ADMIN_PASSWORD "admin-password-1"

/* The environment; h_env() fails the test if the variable is unset. */
const char *h_env(const char *name);
const char *h_test_dir(void);  /* $ST_TEST_DIR */
const char *h_certs_dir(void); /* $ST_TEST_DIR/certs */

/* Contents of $ST_TEST_DIR/pg/conninfo, without dbname: the superuser. */
const char *h_pg_conninfo(void);
/* The same as the login roles scripts/pg-tmp makes (docs/operations.md):
 * the owner of the test databases, which runs --migrate, and the daemons'
 * runtime role, a member of strapontin_api. */
#define H_OWNER_ROLE "strapontin_owner"
#define H_RUNTIME_ROLE "strapontin"
const char *h_pg_conninfo_owner(void);
const char *h_pg_conninfo_runtime(void);
/* Runs scripts/pg-tmp with the arguments fmt makes (quoted by the caller),
 * its output in LOG.log; fails the test if it fails. For tests that make
 * clusters of their own (a standby, a restore). */
void h_pg_tmp(const char *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The first line of a file, without its newline; fails the test if it
 * cannot be read. */
void h_read_line(const char *path, char *buf, size_t len);
/* The first line of DIR/NAME, one of the files scripts/pg-tmp writes for
 * the cluster of DIR ("port", "conninfo"); valid until the fourth call
 * after. */
const char *h_cluster_file(const char *dir, const char *name);
/* Creates database NAME on the fixture cluster, owned by H_OWNER_ROLE,
 * dropping any old one (and its connections) first; its superuser
 * conninfo is written to conninfo. */
void h_db_create(const char *name, char *conninfo, size_t len);
/* Connects, blocking; fails the test on error. */
PGconn *h_db_connect(const char *conninfo);
/* Runs one SQL statement that must succeed; returns the first column of the
 * first row as a static string ("" if none), for quick checks. */
const char *h_db_exec(PGconn *db, const char *sql);
/* h_db_exec of a formatted statement, its first value read as a number. */
long long h_db_int(PGconn *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct h_daemon {
	pid_t pid;
	int port;
	char port_str[8];   /* port, for struct st_options */
	char dir[512];	    /* $ST_TEST_DIR/run/NAME */
	char conf[600];	    /* dir/strapontind.conf */
	char log[600];	    /* dir/daemon.log: the daemon's stderr and stdout */
	char conninfo[512]; /* its database, with dbname, as the superuser */
	char owner_conninfo[1200];   /* as H_OWNER_ROLE: migrate_conninfo */
	char runtime_conninfo[1200]; /* as H_RUNTIME_ROLE: the daemon's */
	char setup_conf[600];	    /* dir/setup.conf: conninfo as the owner */
	char name[64];
	char extra_ini[4096];
	bool running;	 /* started and not yet reaped */
	int exit_status; /* once reaped: exit code; -1: killed by a signal */
	int term_signal; /* the signal that killed it, or 0 */
};

/* Makes $ST_TEST_DIR/run/NAME and database NAME, writes a configuration
 * (listen 127.0.0.1:<free port>, the fixture's certificates, conninfo as
 * H_RUNTIME_ROLE, migrate_conninfo as H_OWNER_ROLE, pool_size 4, log level
 * debug) followed by extra_ini (may be NULL; a later key wins), runs
 * `strapontind --migrate` and `--add-admin H_ADMIN_EMAIL` as the owner
 * (setup.conf), starts the daemon and waits up to 10 s for "strapontind:
 * ready" in its log. */
#define h_daemon_start(name, extra_ini)                                        \
	h_daemon_start_at(__FILE__, __LINE__, (name), (extra_ini))
/* A second daemon on the database of first: no migrate, no add-admin. */
#define h_daemon_start_same_db(first, name, extra_ini)                         \
	h_daemon_start_same_db_at(__FILE__, __LINE__, (first), (name),         \
				  (extra_ini))
/* Starts a stopped daemon again, same configuration and port (the
 * configuration file may have been rewritten meanwhile: see
 * h_daemon_write_conf); its log is appended to. */
#define h_daemon_restart(d) h_daemon_restart_at(__FILE__, __LINE__, (d))
/* SIGTERM, waits up to 30 s (then SIGKILL), returns the exit status (-1 if
 * killed by a signal); fails the test if the log holds a sanitizer report
 * ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
 * "WARNING: ThreadSanitizer"). */
#define h_daemon_stop(d) h_daemon_stop_at(__FILE__, __LINE__, (d))

struct h_daemon *h_daemon_start_at(const char *file, int line, const char *name,
				   const char *extra_ini);
struct h_daemon *h_daemon_start_same_db_at(const char *file, int line,
					   const struct h_daemon *first,
					   const char *name,
					   const char *extra_ini);
void h_daemon_restart_at(const char *file, int line, struct h_daemon *d);
int h_daemon_stop_at(const char *file, int line, struct h_daemon *d);

/* Rewrites d->conf with a new extra_ini (e.g. before SIGHUP). */
void h_daemon_write_conf(struct h_daemon *d, const char *extra_ini);
/* kill(2) on the daemon; 0 or -1. */
int h_daemon_signal(struct h_daemon *d, int sig);
/* Waits up to timeout_ms for the daemon to exit by itself: its exit status,
 * -1 if a signal killed it, -2 if it still runs. */
int h_daemon_wait(struct h_daemon *d, int timeout_ms);
/* For a daemon another process started (st-testd): reads run/NAME/port and
 * run/NAME/pid. Fails the test if they are missing. Not stopped at exit. */
struct h_daemon *h_daemon_attach(const char *name);

bool h_log_contains(const struct h_daemon *d, const char *needle);
/* Number of occurrences of needle in the log. */
int h_log_count(const struct h_daemon *d, const char *needle);
bool h_log_wait(const struct h_daemon *d, const char *needle, int timeout_ms);
/* Prints the log's last lines to stderr. */
void h_log_tail(const struct h_daemon *d, int lines);
/* True if the log holds a sanitizer report. */
bool h_log_has_sanitizer_report(const struct h_daemon *d);

/* Options for a verified TLS connection to d: 127.0.0.1:port, server name
 * "localhost", CA $ST_TEST_DIR/certs/ca.pem, timeout 10 s. Tests change
 * fields (client certificate, TLS versions) before h_connect_opts(). The
 * strings stay valid as long as d. */
struct st_options h_options(const struct h_daemon *d);
/* Connects with these options; NULL with err filled on failure, for
 * negative tests (the caller clears err). */
struct st_client *h_connect_opts(const struct st_options *opt,
				 struct st_error *err);

/* Connects (verified TLS); fails the test if it cannot. */
#define h_connect(d) h_connect_at(__FILE__, __LINE__, (d))
/* Connects and logs in as H_ADMIN_EMAIL. */
#define h_login_admin(d) h_login_admin_at(__FILE__, __LINE__, (d))
/* Connects and logs in as email/password. */
#define h_login(d, email, password)                                            \
	h_login_at(__FILE__, __LINE__, (d), (email), (password))
/* Calls method; params (may be NULL) is stolen. Fails the test on any
 * error; returns the result (new reference). */
#define h_call_ok(c, method, params)                                           \
	h_call_ok_at(__FILE__, __LINE__, (c), (method), (params))
/* Calls method, params stolen, and asserts it answers an error with this
 * code and data.reason (reason NULL: any). Returns error.data (new
 * reference, NULL if the error had none). */
#define h_call_err(c, method, params, code, reason)                            \
	h_call_err_at(__FILE__, __LINE__, (c), (method), (params), (code),     \
		      (reason))

struct st_client *h_connect_at(const char *file, int line,
			       const struct h_daemon *d);
struct st_client *h_login_admin_at(const char *file, int line,
				   const struct h_daemon *d);
struct st_client *h_login_at(const char *file, int line,
			     const struct h_daemon *d, const char *email,
			     const char *password);
json_t *h_call_ok_at(const char *file, int line, struct st_client *c,
		     const char *method, json_t *params);
json_t *h_call_err_at(const char *file, int line, struct st_client *c,
		      const char *method, json_t *params, int code,
		      const char *reason);

/* $ST_TIMEOUT_SCALE, 1 if unset: ThreadSanitizer builds are slower. */
int h_timeout_scale(void);

/* Milliseconds on the monotonic clock. */
long long h_now_ms(void);

/* Sleeps ms milliseconds, through signals. */
void h_sleep_ms(int ms);

/* Runs a shell command built printf-style; its exit status, or -1 if it
 * could not run or was killed by a signal. */
int h_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A TCP connection from src (any of 127/8 is the loopback on Linux, so a
 * test can play several clients' addresses) to 127.0.0.1:port, with
 * send and receive timeouts; fails the test if it cannot be made. */
int h_tcp_from(const char *src, int port);

/* A TCP port on 127.0.0.1 that nothing listens on now, below the
 * ephemeral range, never the same twice in one process. */
int h_free_port(void);

/* Fails the running test at file:line with a printf-style message, after
 * printing the tails of the running daemons' logs. */
void h_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#define h_fail(...) h_fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* A compact JSON text of v, for messages; static storage, truncated. */
const char *h_json_str(const json_t *v);

#endif
