/*
 * Integration test harness: see harness.h. This is test code: it blocks,
 * polls, and fails the running test rather than returning errors.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_LINE "strapontind: ready"
#define READY_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 30000
#define EXIT_TIMEOUT_MS 5000
#define TAIL_LINES 40
#define MAX_DAEMONS 64
#define POLL_MS 20

/* Every daemon this process knows, kept until exit so that pointers handed
 * to tests stay valid. `owned` ones were started here and are stopped at
 * exit; attached ones belong to another process. */
static struct {
	struct h_daemon *d;
	bool owned;
} registry[MAX_DAEMONS];
static int nregistry;

/* Set once a check failed. */
static bool failed;

static const char *sanitizer_marks[] = {
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "WARNING: ThreadSanitizer",
};

int
h_timeout_scale(void)
{
	const char *s = getenv("ST_TIMEOUT_SCALE");
	int n = s != NULL ? atoi(s) : 1;

	return n >= 1 && n <= 20 ? n : 1;
}

void
h_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

long long
h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
h_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	fflush(NULL);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* The whole file, NUL-terminated, or NULL (errno set). */
static char *
read_whole(const char *path, size_t *lenp)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap + 1);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

static void
chomp(char *s)
{
	size_t n = strlen(s);

	while (n > 0 &&
	       (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/* LeakSanitizer asks this before its check at exit. A failed check
 * longjmps out of the test and leaves behind, on purpose, whatever the test
 * held; reporting that would bury the failure under noise. */
int __lsan_is_turned_off(void);
int
__lsan_is_turned_off(void)
{
	return failed;
}

void
h_fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[8192];
	va_list ap;
	int i;

	failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);

	/* The logs first, so that the reason is the last thing on screen. */
	for (i = 0; i < nregistry; i++) {
		const struct h_daemon *d = registry[i].d;

		fprintf(stderr,
			"----- last %d lines of %s (daemon %s, %s) -----\n",
			TAIL_LINES, d->log, d->name,
			d->running ? "running" : "exited");
		h_log_tail(d, TAIL_LINES);
		fprintf(stderr, "----- end of %s -----\n", d->log);
	}
	fflush(stderr);
	/* Our own location too: outside a running test cmocka drops its own. */
	print_error("ERROR: %s:%d: %s\n", file, line, msg);
	_fail(file, line);
	/* _fail() longjmps out of a running test, or exits outside one. */
	abort();
}

const char *
h_json_str(const json_t *v)
{
	static char bufs[4][2048];
	static int next;
	char *buf = bufs[next++ % 4];
	char *s;

	if (v == NULL)
		return "(null)";
	s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (s == NULL)
		return "(unprintable)";
	snprintf(buf, sizeof bufs[0], "%s", s);
	if (strlen(s) >= sizeof bufs[0])
		memcpy(buf + sizeof bufs[0] - 4, "...", 4);
	free(s);
	return buf;
}

const char *
h_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		h_fail_at(__FILE__, __LINE__,
			  "environment variable %s is not set: run the tests "
			  "through ctest",
			  name);
	return v;
}

const char *
h_test_dir(void)
{
	return h_env("ST_TEST_DIR");
}

const char *
h_certs_dir(void)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/certs", h_test_dir());
	return path;
}

static void
mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	char *p;

	snprintf(tmp, sizeof tmp, "%s", path);
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) == -1 && errno != EEXIST)
			h_fail("mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0755) == -1 && errno != EEXIST)
		h_fail("mkdir %s: %s", tmp, strerror(errno));
}

/* ---- PostgreSQL ---------------------------------------------------- */

/* One of the conninfo files scripts/pg-tmp writes, read once into buf. */
static const char *
pg_conninfo_file(const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	char *s;

	if (buf[0] != '\0')
		return buf;
	snprintf(path, sizeof path, "%s/pg/%s", h_test_dir(), name);
	if ((s = read_whole(path, NULL)) == NULL)
		h_fail("cannot read %s (%s): is the `pg` fixture "
		       "(scripts/pg-tmp) set up?",
		       path, strerror(errno));
	chomp(s);
	snprintf(buf, len, "%s", s);
	free(s);
	return buf;
}

int
h_tcp_from(const char *src, int port)
{
	struct sockaddr_in sin;
	struct timeval tv = {10L * h_timeout_scale(), 0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		h_fail("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, src, &sin.sin_addr);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
		h_fail("bind %s: %s", src, strerror(errno));
	sin.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
		h_fail("connect from %s to %d: %s", src, port, strerror(errno));
	return fd;
}

void
h_pg_tmp(const char *log, const char *fmt, ...)
{
	char args[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	if (h_sh("'%s/scripts/pg-tmp' %s >'%s.log' 2>&1", h_env("ST_SOURCE_DIR"),
	    args, log) != 0)
		h_fail("scripts/pg-tmp %s failed (see %s.log)", args, log);
}

void
h_read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (f == NULL || fgets(buf, (int)len, f) == NULL)
		h_fail("cannot read %s", path);
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
}

const char *
h_cluster_file(const char *dir, const char *name)
{
	static char buf[4][600];
	static int k;
	char path[PATH_MAX];
	char *b = buf[k++ % 4];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	h_read_line(path, b, sizeof buf[0]);
	return b;
}

const char *
h_pg_conninfo(void)
{
	static char conninfo[1024];

	return pg_conninfo_file("conninfo", conninfo, sizeof conninfo);
}

const char *
h_pg_conninfo_owner(void)
{
	static char conninfo[1024];

	return pg_conninfo_file("conninfo.owner", conninfo, sizeof conninfo);
}

const char *
h_pg_conninfo_runtime(void)
{
	static char conninfo[1024];

	return pg_conninfo_file("conninfo.runtime", conninfo, sizeof conninfo);
}

PGconn *
h_db_connect(const char *conninfo)
{
	PGconn *db = PQconnectdb(conninfo);
	char msg[1024];

	if (db == NULL)
		h_fail("PQconnectdb(%s): out of memory", conninfo);
	if (PQstatus(db) != CONNECTION_OK) {
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(db));
		chomp(msg);
		PQfinish(db);
		h_fail("cannot connect to PostgreSQL (%s): %s", conninfo, msg);
	}
	return db;
}

const char *
h_db_exec(PGconn *db, const char *sql)
{
	static char value[1024];
	PGresult *res = PQexec(db, sql);
	ExecStatusType st = PQresultStatus(res);
	char msg[1024];

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(db));
		chomp(msg);
		PQclear(res);
		h_fail("SQL failed: %s: %s", sql, msg);
	}
	value[0] = '\0';
	if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0)
		snprintf(value, sizeof value, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return value;
}

long long
h_db_int(PGconn *db, const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof sql)
		h_fail("SQL longer than %zu bytes: %.80s...", sizeof sql, sql);
	return atoll(h_db_exec(db, sql));
}

/* Database and directory names: kept to what needs no quoting anywhere. */
static void
check_name(const char *file, int line, const char *name)
{
	const char *p;

	if (name == NULL || *name == '\0' || strlen(name) >= 60)
		h_fail_at(file, line, "bad daemon/database name \"%s\"",
			  name ? name : "(null)");
	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			h_fail_at(file, line,
				  "bad name \"%s\": use lowercase letters, "
				  "digits and _",
				  name);
}

static void
quiet_notice(void *arg, const char *message)
{
}

void
h_db_create(const char *name, char *conninfo, size_t len)
{
	char admin[1200], sql[256];
	PGconn *db;

	check_name(__FILE__, __LINE__, name);
	snprintf(admin, sizeof admin, "%s dbname=postgres", h_pg_conninfo());
	db = h_db_connect(admin);
	/* No "database does not exist, skipping" notices in the test output. */
	PQsetNoticeProcessor(db, quiet_notice, NULL);
	/* FORCE: a daemon of an earlier, killed run may still be connected. */
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
		 name);
	h_db_exec(db, sql);
	snprintf(sql, sizeof sql,
		 "CREATE DATABASE \"%s\" OWNER " H_OWNER_ROLE, name);
	h_db_exec(db, sql);
	PQfinish(db);
	snprintf(conninfo, len, "%s dbname=%s", h_pg_conninfo(), name);
}

/* ---- daemons ------------------------------------------------------- */

static void register_daemon(struct h_daemon *d, bool owned);

static void
stop_all_at_exit(void)
{
	long long deadline;
	int i;

	for (i = 0; i < nregistry; i++)
		if (registry[i].owned && registry[i].d->running)
			kill(registry[i].d->pid, SIGTERM);
	deadline = h_now_ms() + EXIT_TIMEOUT_MS;
	for (i = 0; i < nregistry; i++) {
		struct h_daemon *d = registry[i].d;
		int left;

		if (!registry[i].owned || !d->running)
			continue;
		left = (int)(deadline - h_now_ms());
		if (h_daemon_wait(d, left > 0 ? left : 0) == -2) {
			kill(d->pid, SIGKILL);
			h_daemon_wait(d, 1000);
		}
	}
	/* A daemon the test never stopped (or a failed test left behind) must
	 * not hide a sanitizer report: too late to fail a test, so fail the
	 * process. */
	for (i = 0; i < nregistry; i++) {
		struct h_daemon *d = registry[i].d;

		if (!registry[i].owned || !h_log_has_sanitizer_report(d))
			continue;
		fprintf(stderr, "----- last %d lines of %s -----\n", TAIL_LINES,
			d->log);
		h_log_tail(d, TAIL_LINES);
		fprintf(stderr, "harness: daemon %s: sanitizer report in %s\n",
			d->name, d->log);
		fflush(stderr);
		_exit(1);
	}
}

static void
register_daemon(struct h_daemon *d, bool owned)
{
	static bool hooked;

	if (nregistry == MAX_DAEMONS)
		h_fail("more than %d daemons in one test process", MAX_DAEMONS);
	if (owned && !hooked) {
		atexit(stop_all_at_exit);
		hooked = true;
	}
	registry[nregistry].d = d;
	registry[nregistry].owned = owned;
	nregistry++;
}

static struct h_daemon *
daemon_new(const char *file, int line, const char *name, const char *extra_ini,
	   bool owned)
{
	struct h_daemon *d;
	char path[PATH_MAX];
	static const char *stale[] = {"pid", "port", "exit_status"};
	size_t i;

	check_name(file, line, name);
	if ((d = calloc(1, sizeof *d)) == NULL)
		abort();
	snprintf(d->name, sizeof d->name, "%s", name);
	snprintf(d->dir, sizeof d->dir, "%s/run/%s", h_test_dir(), name);
	snprintf(d->conf, sizeof d->conf, "%s/strapontind.conf", d->dir);
	snprintf(d->setup_conf, sizeof d->setup_conf, "%s/setup.conf", d->dir);
	snprintf(d->log, sizeof d->log, "%s/daemon.log", d->dir);
	if (extra_ini != NULL &&
	    (size_t)snprintf(d->extra_ini, sizeof d->extra_ini, "%s",
			     extra_ini) >= sizeof d->extra_ini)
		h_fail_at(file, line, "extra_ini longer than %zu bytes",
			  sizeof d->extra_ini - 1);
	d->pid = -1;
	if (owned) {
		mkdir_p(d->dir);
		for (i = 0; i < sizeof stale / sizeof stale[0]; i++) {
			snprintf(path, sizeof path, "%s/%s", d->dir, stale[i]);
			unlink(path);
		}
	}
	register_daemon(d, owned);
	return d;
}

static void
set_port(struct h_daemon *d, int port)
{
	d->port = port;
	snprintf(d->port_str, sizeof d->port_str, "%d", port);
}

/* The daemon's configuration file, and setup.conf for its set-up
 * commands: the same but connecting as the schema's owner, as --migrate
 * and --add-admin must. */
static void write_conf_file(struct h_daemon *d, const char *path,
			    const char *conninfo);

static void
write_conf(struct h_daemon *d)
{
	write_conf_file(d, d->conf, d->runtime_conninfo);
	write_conf_file(d, d->setup_conf, d->owner_conninfo);
}

static void
write_conf_file(struct h_daemon *d, const char *path, const char *conninfo)
{
	const char *certs = h_certs_dir();
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		h_fail("cannot write %s: %s", path, strerror(errno));
	fprintf(f,
		"# Written by the test harness (tests/harness/harness.c).\n"
		"[server]\n"
		"listen = 127.0.0.1:%d\n"
		"\n"
		"[tls]\n"
		"cert = %s/server.pem\n"
		"key = %s/server.key\n"
		"\n"
		"[database]\n"
		"conninfo = %s\n"
		"migrate_conninfo = %s\n"
		"pool_size = 4\n"
		"\n"
		"[policy]\n"
		"# Cheap password hashes (1 MiB, a millisecond or so): the\n"
		"# suite logs in a lot. A test's extra_ini may set more.\n"
		"password_cost = 10\n"
		"\n"
		"[log]\n"
		"level = debug\n",
		d->port, certs, certs, conninfo, d->owner_conninfo);
	/* A slow build runs a test for longer than the default idle timeout
	 * (300 s): connections a test keeps would be closed under it. Tests
	 * also keep anonymous connections across long steps: the login
	 * deadline (30 s by default) is tested where a test sets it. */
	fprintf(f, "\n[server]\nauth_timeout = %d\n", 300 * h_timeout_scale());
	if (h_timeout_scale() > 1)
		fprintf(f, "idle_timeout = %d\n", 300 * h_timeout_scale());
	if (d->extra_ini[0] != '\0')
		fprintf(f, "\n# extra_ini of the test\n%s\n", d->extra_ini);
	if (fclose(f) != 0)
		h_fail("cannot write %s: %s", path, strerror(errno));
}

void
h_daemon_write_conf(struct h_daemon *d, const char *extra_ini)
{
	snprintf(d->extra_ini, sizeof d->extra_ini, "%s",
		 extra_ini ? extra_ini : "");
	write_conf(d);
}

/* Forks and execs argv with stdout and stderr to log_path (appended to,
 * or truncated first) and stdin from stdin_fd (-1: /dev/null). The child
 * gets SIGTERM if this process dies, so no daemon outlives a crashed test. */
static pid_t
spawn(const char *const argv[], const char *log_path, bool truncate,
      int stdin_fd)
{
	int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
		    (truncate ? O_TRUNC : 0);
	pid_t parent = getpid(), pid;
	int logfd, infd;

	if ((logfd = open(log_path, flags, 0644)) == -1)
		h_fail("open %s: %s", log_path, strerror(errno));
	fflush(NULL);
	if ((pid = fork()) == -1)
		h_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		infd = stdin_fd != -1 ? stdin_fd : open("/dev/null", O_RDONLY);
		if (infd == -1 || dup2(infd, 0) == -1 || dup2(logfd, 1) == -1 ||
		    dup2(logfd, 2) == -1)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		dprintf(2, "harness: cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(logfd);
	return pid;
}

/* Runs a set-up command of d (migrate, add-admin) to completion, its output
 * in dir/setup.log; fails the test unless it exits 0. */
static void
run_setup(const char *file, int line, struct h_daemon *d,
	  const char *const argv[], const char *input)
{
	char log_path[PATH_MAX];
	int fds[2] = {-1, -1}, status;
	pid_t pid;
	FILE *f;
	char *out;

	snprintf(log_path, sizeof log_path, "%s/setup.log", d->dir);
	if (input != NULL && pipe2(fds, O_CLOEXEC) == -1)
		h_fail_at(file, line, "pipe: %s", strerror(errno));
	if ((f = fopen(log_path, "a")) != NULL) {
		fprintf(f, "$ %s %s %s %s %s\n", argv[0], argv[1], argv[2],
			argv[3], argv[4] ? argv[4] : "");
		fclose(f);
	}
	pid = spawn(argv, log_path, false, fds[0]);
	if (input != NULL) {
		close(fds[0]);
		/* Short enough to fit in the pipe: cannot block. */
		if (write(fds[1], input, strlen(input)) == -1)
			h_fail_at(file, line, "write to %s: %s", argv[0],
				  strerror(errno));
		close(fds[1]);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			h_fail_at(file, line, "waitpid: %s", strerror(errno));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	out = read_whole(log_path, NULL);
	fprintf(stderr, "----- %s -----\n%s----- end -----\n", log_path,
		out ? out : "");
	free(out);
	if (WIFEXITED(status))
		h_fail_at(file, line, "`%s -c %s %s` exited %d (output above)",
			  argv[0], d->conf, argv[3], WEXITSTATUS(status));
	h_fail_at(file, line,
		  "`%s -c %s %s` killed by signal %d (output above)", argv[0],
		  d->conf, argv[3], WTERMSIG(status));
}

static void
record_status(struct h_daemon *d, int status)
{
	d->running = false;
	if (WIFEXITED(status)) {
		d->exit_status = WEXITSTATUS(status);
		d->term_signal = 0;
	} else {
		d->exit_status = -1;
		d->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	}
}

/* For a daemon that is not our child: the supervisor of st-testd writes
 * "exit N" or "signal N" to dir/exit_status once it has reaped it. */
static bool
read_status_file(struct h_daemon *d)
{
	char path[PATH_MAX];
	char *s;
	int n;

	snprintf(path, sizeof path, "%s/exit_status", d->dir);
	if ((s = read_whole(path, NULL)) == NULL)
		return false;
	d->running = false;
	if (sscanf(s, "exit %d", &n) == 1) {
		d->exit_status = n;
		d->term_signal = 0;
	} else if (sscanf(s, "signal %d", &n) == 1) {
		d->exit_status = -1;
		d->term_signal = n;
	} else {
		d->running = true;
	}
	free(s);
	return !d->running;
}

int
h_daemon_wait(struct h_daemon *d, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms, gone_since = 0;
	int status;
	pid_t r;

	for (;;) {
		if (!d->running)
			return d->exit_status;
		r = waitpid(d->pid, &status, WNOHANG);
		if (r == d->pid) {
			record_status(d, status);
			continue;
		}
		if (r == -1 && errno == ECHILD) {
			if (read_status_file(d))
				continue;
			/* Gone, and its supervisor wrote no status: it died
			 * too. */
			if (kill(d->pid, 0) == -1 && errno == ESRCH) {
				if (gone_since == 0) {
					gone_since = h_now_ms();
				} else if (h_now_ms() - gone_since > 2000) {
					d->running = false;
					d->exit_status = -1;
					d->term_signal = 0;
					continue;
				}
			}
		}
		if (h_now_ms() >= deadline)
			return -2;
		h_sleep_ms(POLL_MS);
	}
}

int
h_daemon_signal(struct h_daemon *d, int sig)
{
	if (!d->running || d->pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	return kill(d->pid, sig);
}

static off_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : 0;
}

static bool
log_contains_from(const struct h_daemon *d, off_t from, const char *needle)
{
	size_t len;
	char *s = read_whole(d->log, &len);
	bool found;

	if (s == NULL)
		return false;
	found = (size_t)from <= len && memmem(s + from, len - (size_t)from,
					      needle, strlen(needle)) != NULL;
	free(s);
	return found;
}

/* Starts the daemon of d (d->conf written) and waits for its ready line
 * past the log offset `from`. False if it exited first or took too long
 * (then it has been killed). */
static bool
launch_once(struct h_daemon *d, bool truncate)
{
	const char *argv[] = {h_env("STRAPONTIND"), "-c", d->conf, NULL};
	off_t from = truncate ? 0 : file_size(d->log);
	long long deadline;

	d->pid = spawn(argv, d->log, truncate, -1);
	d->running = true;
	d->exit_status = 0;
	d->term_signal = 0;
	deadline = h_now_ms() + READY_TIMEOUT_MS * h_timeout_scale();
	while (h_now_ms() < deadline) {
		if (log_contains_from(d, from, READY_LINE))
			return true;
		if (h_daemon_wait(d, 0) != -2)
			return false;
		h_sleep_ms(POLL_MS);
	}
	kill(d->pid, SIGKILL);
	h_daemon_wait(d, 5000);
	return false;
}

static const char *
status_str(const struct h_daemon *d)
{
	static char buf[64];

	if (d->running)
		return "still running";
	if (d->term_signal != 0)
		snprintf(buf, sizeof buf, "killed by signal %d",
			 d->term_signal);
	else
		snprintf(buf, sizeof buf, "exited %d", d->exit_status);
	return buf;
}

/* Picks a port and starts; a port taken between h_free_port() and the
 * daemon's bind() is retried with another one. */
static void
launch(const char *file, int line, struct h_daemon *d)
{
	int attempt;

	for (attempt = 0; attempt < 3; attempt++) {
		set_port(d, h_free_port());
		write_conf(d);
		if (launch_once(d, true))
			return;
		if (!(d->exit_status != 0 && h_log_contains(d, "in use")))
			break;
	}
	h_fail_at(file, line,
		  "daemon %s did not log \"%s\" within %d ms (%s); log %s",
		  d->name, READY_LINE, READY_TIMEOUT_MS * h_timeout_scale(),
		  status_str(d), d->log);
}

static void
set_role_conninfos(struct h_daemon *d, const char *dbname)
{
	snprintf(d->owner_conninfo, sizeof d->owner_conninfo, "%s dbname=%s",
		 h_pg_conninfo_owner(), dbname);
	snprintf(d->runtime_conninfo, sizeof d->runtime_conninfo,
		 "%s dbname=%s", h_pg_conninfo_runtime(), dbname);
}

struct h_daemon *
h_daemon_start_at(const char *file, int line, const char *name,
		  const char *extra_ini)
{
	struct h_daemon *d = daemon_new(file, line, name, extra_ini, true);
	const char *bin = h_env("STRAPONTIND");
	const char *migrate[] = {bin, "-c", d->setup_conf, "--migrate", NULL};
	const char *add_admin[] = {bin,		  "-c",		 d->setup_conf,
				   "--add-admin", H_ADMIN_EMAIL, NULL};
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/setup.log", d->dir);
	unlink(path);
	h_db_create(name, d->conninfo, sizeof d->conninfo);
	set_role_conninfos(d, name);
	/* The set-up commands need a valid file; the port is chosen later. */
	set_port(d, h_free_port());
	write_conf(d);
	run_setup(file, line, d, migrate, NULL);
	run_setup(file, line, d, add_admin, H_ADMIN_PASSWORD "\n");
	launch(file, line, d);
	return d;
}

struct h_daemon *
h_daemon_start_same_db_at(const char *file, int line,
			  const struct h_daemon *first, const char *name,
			  const char *extra_ini)
{
	struct h_daemon *d = daemon_new(file, line, name, extra_ini, true);

	snprintf(d->conninfo, sizeof d->conninfo, "%s", first->conninfo);
	snprintf(d->owner_conninfo, sizeof d->owner_conninfo, "%s",
		 first->owner_conninfo);
	snprintf(d->runtime_conninfo, sizeof d->runtime_conninfo, "%s",
		 first->runtime_conninfo);
	launch(file, line, d);
	return d;
}

void
h_daemon_restart_at(const char *file, int line, struct h_daemon *d)
{
	if (d->running)
		h_fail_at(file, line,
			  "h_daemon_restart: daemon %s still runs (pid %d)",
			  d->name, (int)d->pid);
	if (!launch_once(d, false))
		h_fail_at(file, line, "daemon %s did not restart (%s); log %s",
			  d->name, status_str(d), d->log);
}

int
h_daemon_stop_at(const char *file, int line, struct h_daemon *d)
{
	size_t i;

	if (d->running) {
		kill(d->pid, SIGTERM);
		if (h_daemon_wait(d, STOP_TIMEOUT_MS) == -2) {
			fprintf(stderr,
				"harness: daemon %s did not exit within %d ms "
				"of SIGTERM: killing it\n",
				d->name, STOP_TIMEOUT_MS);
			kill(d->pid, SIGKILL);
			if (h_daemon_wait(d, 5000) == -2)
				h_fail_at(file, line,
					  "daemon %s (pid %d) survives SIGKILL",
					  d->name, (int)d->pid);
		}
	}
	for (i = 0; i < sizeof sanitizer_marks / sizeof sanitizer_marks[0]; i++)
		if (h_log_contains(d, sanitizer_marks[i]))
			h_fail_at(file, line,
				  "daemon %s: sanitizer report (\"%s\") in %s",
				  d->name, sanitizer_marks[i], d->log);
	return d->exit_status;
}

struct h_daemon *
h_daemon_attach(const char *name)
{
	struct h_daemon *d = daemon_new(__FILE__, __LINE__, name, NULL, false);
	char path[PATH_MAX];
	char *s;

	snprintf(path, sizeof path, "%s/port", d->dir);
	if ((s = read_whole(path, NULL)) == NULL)
		h_fail("cannot read %s (%s): was `st-testd start %s` run?",
		       path, strerror(errno), name);
	set_port(d, atoi(s));
	free(s);
	snprintf(path, sizeof path, "%s/pid", d->dir);
	if ((s = read_whole(path, NULL)) == NULL)
		h_fail("cannot read %s: %s", path, strerror(errno));
	d->pid = (pid_t)atoi(s);
	free(s);
	d->running = true;
	read_status_file(d);
	return d;
}

/* ---- logs ---------------------------------------------------------- */

bool
h_log_contains(const struct h_daemon *d, const char *needle)
{
	return log_contains_from(d, 0, needle);
}

int
h_log_count(const struct h_daemon *d, const char *needle)
{
	size_t len, nlen = strlen(needle);
	char *s = read_whole(d->log, &len);
	const char *p, *end;
	int n = 0;

	if (s == NULL || nlen == 0) {
		free(s);
		return 0;
	}
	end = s + len;
	for (p = s; (p = memmem(p, (size_t)(end - p), needle, nlen)) != NULL;
	     p += nlen)
		n++;
	free(s);
	return n;
}

bool
h_log_wait(const struct h_daemon *d, const char *needle, int timeout_ms)
{
	long long deadline = h_now_ms() + timeout_ms;

	for (;;) {
		if (h_log_contains(d, needle))
			return true;
		if (h_now_ms() >= deadline)
			return false;
		h_sleep_ms(POLL_MS);
	}
}

void
h_log_tail(const struct h_daemon *d, int lines)
{
	size_t len;
	char *s = read_whole(d->log, &len);
	const char *p;
	int n = 0;

	if (s == NULL) {
		fprintf(stderr, "(no log %s: %s)\n", d->log, strerror(errno));
		return;
	}
	p = s + len;
	if (p > s && p[-1] == '\n')
		p--;
	while (p > s) {
		if (p[-1] == '\n' && ++n == lines)
			break;
		p--;
	}
	fwrite(p, 1, len - (size_t)(p - s), stderr);
	if (len > 0 && s[len - 1] != '\n')
		fputc('\n', stderr);
	free(s);
}

bool
h_log_has_sanitizer_report(const struct h_daemon *d)
{
	size_t i;

	for (i = 0; i < sizeof sanitizer_marks / sizeof sanitizer_marks[0]; i++)
		if (h_log_contains(d, sanitizer_marks[i]))
			return true;
	return false;
}

/* ---- clients ------------------------------------------------------- */

struct st_options
h_options(const struct h_daemon *d)
{
	static char ca[PATH_MAX + 16];
	struct st_options o;

	snprintf(ca, sizeof ca, "%s/ca.pem", h_certs_dir());
	memset(&o, 0, sizeof o);
	o.host = "127.0.0.1";
	o.port = d->port_str;
	o.ca_file = ca;
	/* The certificate names localhost and 127.0.0.1: verify the name, which
	 * every client checks the same way. */
	o.server_name = "localhost";
	o.timeout_ms = 10000 * h_timeout_scale();
	return o;
}

struct st_client *
h_connect_opts(const struct st_options *opt, struct st_error *err)
{
	return st_connect(opt, err);
}

struct st_client *
h_connect_at(const char *file, int line, const struct h_daemon *d)
{
	struct st_options o = h_options(d);
	struct st_error err = {0};
	struct st_client *c;
	char msg[1024];

	memset(&err, 0, sizeof err);
	if ((c = st_connect(&o, &err)) != NULL)
		return c;
	snprintf(msg, sizeof msg, "%s (status %d, reason %s)",
		 st_strerror(&err), err.status, err.reason);
	st_error_clear(&err);
	h_fail_at(file, line, "cannot connect to daemon %s at 127.0.0.1:%d: %s",
		  d->name, d->port, msg);
}

struct st_client *
h_login_at(const char *file, int line, const struct h_daemon *d,
	   const char *email, const char *password)
{
	struct st_client *c = h_connect_at(file, line, d);
	json_t *res;

	res = h_call_ok_at(
	    file, line, c, "auth.login",
	    json_pack("{s:s, s:s}", "email", email, "password", password));
	if (json_string_value(json_object_get(res, "token")) == NULL)
		h_fail_at(file, line, "auth.login answered no token: %s",
			  h_json_str(res));
	json_decref(res);
	return c;
}

struct st_client *
h_login_admin_at(const char *file, int line, const struct h_daemon *d)
{
	return h_login_at(file, line, d, H_ADMIN_EMAIL, H_ADMIN_PASSWORD);
}

/* One line describing err, for failure messages. */
static void
describe_error(const struct st_error *err, char *buf, size_t len)
{
	if (err->status == ST_ERR_SERVER)
		snprintf(buf, len, "error %d reason \"%s\"%s%s%s: %s; data %s",
			 err->code, err->reason,
			 err->field[0] ? " field \"" : "", err->field,
			 err->field[0] ? "\"" : "", err->message,
			 h_json_str(err->data));
	else
		snprintf(buf, len, "library status %d (%s): %s", err->status,
			 err->reason, st_strerror(err));
}

json_t *
h_call_ok_at(const char *file, int line, struct st_client *c,
	     const char *method, json_t *params)
{
	struct st_error err = {0};
	json_t *result = NULL;
	char msg[2048], sent[2048];
	int rc;

	memset(&err, 0, sizeof err);
	rc = st_call(c, method, params, &result, &err);
	if (rc == ST_OK) {
		json_decref(params);
		return result;
	}
	snprintf(sent, sizeof sent, "%s", h_json_str(params));
	json_decref(params);
	describe_error(&err, msg, sizeof msg);
	st_error_clear(&err);
	h_fail_at(file, line, "%s %s failed: %s", method, sent, msg);
}

json_t *
h_call_err_at(const char *file, int line, struct st_client *c,
	      const char *method, json_t *params, int code, const char *reason)
{
	struct st_error err = {0};
	json_t *result = NULL, *data;
	char msg[2048], sent[2048];
	int rc;

	memset(&err, 0, sizeof err);
	rc = st_call(c, method, params, &result, &err);
	snprintf(sent, sizeof sent, "%s", h_json_str(params));
	json_decref(params);
	if (rc == ST_OK) {
		snprintf(msg, sizeof msg, "%s", h_json_str(result));
		json_decref(result);
		h_fail_at(
		    file, line, "%s %s: expected error %d (%s), got result %s",
		    method, sent, code, reason ? reason : "any reason", msg);
	}
	if (rc != ST_ERR_SERVER || err.code != code ||
	    (reason != NULL && strcmp(err.reason, reason) != 0)) {
		describe_error(&err, msg, sizeof msg);
		st_error_clear(&err);
		h_fail_at(file, line, "%s %s: expected error %d (%s), got %s",
			  method, sent, code, reason ? reason : "any reason",
			  msg);
	}
	data = json_incref(err.data);
	st_error_clear(&err);
	return data;
}

/* ---- ports --------------------------------------------------------- */

int
h_free_port(void)
{
	static int used[256];
	static int nused;
	static bool seeded;
	struct sockaddr_in sin;
	int i, j, fd, port, ok;

	if (!seeded) {
		srandom((unsigned)getpid() ^ (unsigned)time(NULL));
		seeded = true;
	}
	for (i = 0; i < 500; i++) {
		/* Below Linux's ephemeral range (32768-60999), where outgoing
		 * connections would take ports from under us. */
		port = 20000 + (int)(random() % 12000);
		for (j = 0; j < nused && used[j] != port; j++)
			;
		if (j < nused)
			continue;
		if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			h_fail("socket: %s", strerror(errno));
		memset(&sin, 0, sizeof sin);
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
		close(fd);
		if (!ok)
			continue;
		if (nused < (int)(sizeof used / sizeof used[0]))
			used[nused++] = port;
		return port;
	}
	h_fail("no free TCP port on 127.0.0.1 in 20000-31999");
}
