/*
 * strapontind under systemd, without systemd (docs/operations.md,
 * "systemd"): the test plays the service manager's notify socket (a
 * datagram socket it binds and names in NOTIFY_SOCKET) and checks what a
 * real daemon tells it: READY=1 once it serves, RELOADING=1 then READY=1
 * around a reload with the outcome in STATUS, `strapontind --reload PID`
 * (the unit's ExecReload) exiting with that outcome, STOPPING=1 when it
 * drains, WATCHDOG=1 when asked. Then the log lines when stderr is the
 * journal (JOURNAL_STREAM), and the unit file itself with
 * systemd-analyze verify.
 */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- the notify socket ---------------------------------------------------- */

/* Binds a datagram socket that receives its senders' credentials, as
 * systemd's does, at a path under the test directory or (abstract) at
 * "@name"; sets NOTIFY_SOCKET to it for the daemons started next. */
static int
notify_bind(bool abstract)
{
	struct sockaddr_un sa;
	socklen_t len;
	char name[sizeof sa.sun_path];
	int fd, one = 1;

	if (abstract)
		snprintf(name, sizeof name, "@strapontin-itest-%ld-%lld",
			 (long)getpid(), h_now_ms());
	else {
		snprintf(name, sizeof name, "%s/run/notify-%ld.sock",
			 h_test_dir(), (long)getpid());
		if (h_sh("mkdir -p '%s/run'", h_test_dir()) != 0)
			h_fail("cannot make %s/run", h_test_dir());
		unlink(name);
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, name, strlen(name));
	if (abstract)
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
			  strlen(name) + !abstract);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, len) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == -1)
		h_fail("notify socket %s: %s", name, strerror(errno));
	setenv("NOTIFY_SOCKET", name, 1);
	return fd;
}

static void
notify_close(int fd)
{
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

/* The next datagram into buf, within 10 s (scaled); false if none came.
 * *sender is the sending process, from its credentials. */
static bool
notify_recv(int fd, char *buf, size_t len, pid_t *sender)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
			   .msg_control = &ctl, .msg_controllen = sizeof ctl};
	struct cmsghdr *c;
	ssize_t n;

	if (poll(&p, 1, 10000 * h_timeout_scale()) != 1)
		return false;
	if ((n = recvmsg(fd, &m, 0)) < 0)
		h_fail("recvmsg: %s", strerror(errno));
	buf[n] = '\0';
	*sender = -1;
	for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred u;

			memcpy(&u, CMSG_DATA(c), sizeof u);
			*sender = u.pid;
		}
	return true;
}

/* True if the message has this line ("READY=1") or, for a "KEY=" prefix,
 * a line that starts so; its value then goes to value (may be NULL). */
static bool
has_line(const char *msg, const char *line, char *value, size_t vlen)
{
	size_t n = strlen(line);
	const char *p = msg;

	while (*p != '\0') {
		size_t l = strcspn(p, "\n");

		if (line[n - 1] == '=' ? (l >= n && strncmp(p, line, n) == 0)
				       : (l == n && strncmp(p, line, n) == 0)) {
			if (value != NULL)
				snprintf(value, vlen, "%.*s", (int)(l - n),
					 p + n);
			return true;
		}
		p += l + (p[l] == '\n');
	}
	return false;
}

/* The next message must come from the daemon's own process and hold
 * line; returns it in buf. */
#define expect_msg(fd, d, line, buf)                                           \
	expect_msg_at(__FILE__, __LINE__, (fd), (d), (line), (buf), sizeof(buf))
static void
expect_msg_at(const char *file, int line_no, int fd, const struct h_daemon *d,
	      const char *line, char *buf, size_t len)
{
	pid_t sender;

	if (!notify_recv(fd, buf, len, &sender))
		h_fail_at(file, line_no, "no notify message (waiting for %s)",
			  line);
	if (sender != d->pid)
		h_fail_at(file, line_no,
			  "notify message \"%s\" from process %ld, not the "
			  "daemon (%ld)",
			  buf, (long)sender, (long)d->pid);
	if (!has_line(buf, line, NULL, 0))
		h_fail_at(file, line_no, "notify message \"%s\" without %s",
			  buf, line);
}

static unsigned long long
monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL +
	       (unsigned long long)ts.tv_nsec / 1000;
}

/* `strapontind --reload PID`, its output in out; its exit status. */
static int
reload_cmd(const struct h_daemon *d, long pid, char *out, size_t len)
{
	char path[700];
	FILE *f;
	size_t n = 0;
	int st;

	snprintf(path, sizeof path, "%s/reload.out", d->dir);
	st = h_sh("'%s' --reload %ld >'%s' 2>&1", h_env("STRAPONTIND"), pid,
		  path);
	out[0] = '\0';
	if ((f = fopen(path, "r")) != NULL) {
		n = fread(out, 1, len - 1, f);
		fclose(f);
	}
	out[n] = '\0';
	return st;
}

/* A fresh connection pings. */
static void
ping_new(const struct h_daemon *d)
{
	struct st_client *c = h_connect(d);

	json_decref(h_call_ok(c, "system.ping", json_object()));
	st_close(c);
}

/* ---- readiness, reload, stop ---------------------------------------------- */

static void
test_ready_reload_stop(void **state)
{
	char msg[1024], out[1024], value[512];
	unsigned long long before, mono;
	struct h_daemon *d;
	int fd = notify_bind(false), n;

	(void)state;
	d = h_daemon_start("sd_notify", NULL);
	/* The first word is READY=1, from the daemon itself (not from its
	 * --migrate or --add-admin, which inherit NOTIFY_SOCKET too), with
	 * its pid, and it serves by then. */
	expect_msg(fd, d, "READY=1", msg);
	assert_true(has_line(msg, "MAINPID=", value, sizeof value));
	assert_int_equal(atol(value), d->pid);
	assert_true(has_line(msg, "STATUS=", value, sizeof value));
	assert_string_equal(value, "serving");
	assert_true(h_log_contains(d, "strapontind: ready"));
	ping_new(d);

	/* A good reload, as systemctl reload does it: the outcome comes
	 * once the new configuration is in force. Here: log level info,
	 * so a new connection is no longer logged (a debug line). */
	h_daemon_write_conf(d, "[log]\nlevel = info\n");
	before = monotonic_usec();
	assert_int_equal(reload_cmd(d, d->pid, out, sizeof out), 0);
	if (strstr(out, "reloaded its configuration") == NULL)
		h_fail("strapontind --reload said: %s", out);
	expect_msg(fd, d, "RELOADING=1", msg);
	assert_true(has_line(msg, "MONOTONIC_USEC=", value, sizeof value));
	mono = strtoull(value, NULL, 10);
	assert_true(mono >= before && mono <= monotonic_usec());
	expect_msg(fd, d, "READY=1", msg);
	assert_true(has_line(msg, "STATUS=", value, sizeof value));
	assert_string_equal(value, "serving; configuration reloaded");
	n = h_log_count(d, "accepted (");
	ping_new(d);
	assert_int_equal(h_log_count(d, "accepted ("), n);

	/* A broken file: --reload exits 1, the manager hears READY=1 with
	 * the failure, and the daemon serves on with what it had. */
	h_daemon_write_conf(d, "[server\nmax_connections = 3\n");
	assert_int_equal(reload_cmd(d, d->pid, out, sizeof out), 1);
	if (strstr(out, "kept its running configuration") == NULL)
		h_fail("strapontind --reload said: %s", out);
	expect_msg(fd, d, "RELOADING=1", msg);
	assert_true(has_line(msg, "MONOTONIC_USEC=", NULL, 0));
	expect_msg(fd, d, "READY=1", msg);
	assert_true(has_line(msg, "STATUS=", value, sizeof value));
	if (strstr(value, "reload failed") == NULL ||
	    strstr(value, "strapontind.conf") == NULL)
		h_fail("STATUS after a failed reload: %s", value);
	assert_true(h_log_contains(d, "reload failed"));
	ping_new(d);

	/* A plain SIGHUP (kill -HUP) is told to the manager just as well. */
	h_daemon_write_conf(d, NULL);
	assert_int_equal(h_daemon_signal(d, SIGHUP), 0);
	expect_msg(fd, d, "RELOADING=1", msg);
	expect_msg(fd, d, "READY=1", msg);
	assert_true(has_line(msg, "STATUS=", value, sizeof value));
	assert_string_equal(value, "serving; configuration reloaded");

	/* No daemon there: no answer, exit 2. */
	assert_int_equal(reload_cmd(d, 999999999L, out, sizeof out), 2);
	if (strstr(out, "cannot signal") == NULL)
		h_fail("strapontind --reload said: %s", out);

	/* SIGTERM: STOPPING=1 when the drain starts, then a clean exit. */
	assert_int_equal(h_daemon_signal(d, SIGTERM), 0);
	expect_msg(fd, d, "STOPPING=1", msg);
	assert_int_equal(h_daemon_stop(d), 0);
	notify_close(fd);
}

/* WATCHDOG_USEC: WATCHDOG=1 again and again (every half period), here on
 * an abstract socket. */
static void
test_watchdog(void **state)
{
	char msg[1024];
	struct h_daemon *d;
	int fd = notify_bind(true), i;
	pid_t sender;

	(void)state;
	setenv("WATCHDOG_USEC", "400000", 1);
	d = h_daemon_start("sd_watchdog", NULL);
	unsetenv("WATCHDOG_USEC");
	/* The watchdog runs from the start, before READY=1 too. */
	do {
		if (!notify_recv(fd, msg, sizeof msg, &sender))
			h_fail("no READY=1");
		assert_int_equal(sender, d->pid);
	} while (strcmp(msg, "WATCHDOG=1") == 0);
	assert_true(has_line(msg, "READY=1", NULL, 0));
	for (i = 0; i < 3; i++)
		expect_msg(fd, d, "WATCHDOG=1", msg);
	assert_true(h_log_contains(d, "watchdog: telling the service manager "
				      "every 200 ms"));
	assert_int_equal(h_daemon_stop(d), 0);
	notify_close(fd);
}

/* ---- logs to the journal -------------------------------------------------- */

/* Starts a daemon whose stderr (its log file) is named by JOURNAL_STREAM,
 * as systemd does when the journal takes a service's output. */
static struct h_daemon *
start_journaled(const char *name, const char *extra_ini)
{
	char dir[700], path[800], stream[64];
	struct h_daemon *d;
	struct stat st;
	FILE *f;

	snprintf(dir, sizeof dir, "%s/run/%s", h_test_dir(), name);
	snprintf(path, sizeof path, "%s/daemon.log", dir);
	/* The harness truncates the log, which keeps its inode. */
	if (h_sh("mkdir -p '%s'", dir) != 0 || (f = fopen(path, "a")) == NULL)
		h_fail("cannot make %s", path);
	fclose(f);
	if (stat(path, &st) == -1)
		h_fail("stat %s: %s", path, strerror(errno));
	snprintf(stream, sizeof stream, "%llu:%llu",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", stream, 1);
	d = h_daemon_start(name, extra_ini);
	unsetenv("JOURNAL_STREAM");
	return d;
}

/* Every line of the log starts with a syslog priority; returns how many
 * lines had priority prio. */
static int
check_prefixes(const struct h_daemon *d, char prio, bool json)
{
	char line[4096];
	int count = 0;
	FILE *f;

	if ((f = fopen(d->log, "r")) == NULL)
		h_fail("open %s: %s", d->log, strerror(errno));
	while (fgets(line, sizeof line, f) != NULL) {
		if (line[0] != '<' || strchr("3467", line[1]) == NULL ||
		    line[1] == '\0' || line[2] != '>')
			h_fail("a log line without its priority: %s", line);
		if (json) {
			json_t *o = json_loads(line + 3, 0, NULL);

			if (o == NULL || !json_is_string(json_object_get(o,
								 "ts")) ||
			    !json_is_string(json_object_get(o, "msg")))
				h_fail("not a JSON log line after its "
				       "priority: %s", line);
			json_decref(o);
		} else if (line[3] >= '0' && line[3] <= '9') {
			/* Text lines start with the level, not a date. */
			h_fail("a timestamp in a journal line: %s", line);
		}
		count += line[1] == prio;
	}
	fclose(f);
	return count;
}

static void
test_journal_lines(void **state)
{
	struct h_daemon *d;

	(void)state;
	d = start_journaled("sd_journal", NULL);
	assert_true(h_log_contains(d, "\n<6>info  ready_cb: strapontind: "
				      "ready\n"));
	/* A failed reload is an error, "<3>". */
	h_daemon_write_conf(d, "[server\n");
	assert_int_equal(h_daemon_signal(d, SIGHUP), 0);
	assert_true(h_log_wait(d, "<3>error server_reload: reload failed",
			       10000 * h_timeout_scale()));
	assert_int_equal(h_daemon_stop(d), 0);
	assert_true(check_prefixes(d, '7', false) > 0); /* level debug */
	assert_true(check_prefixes(d, '3', false) > 0);

	/* JSON lines keep their shape (ts included) behind the prefix. */
	d = start_journaled("sd_journal_json", "[log]\nformat = json\n");
	assert_int_equal(h_daemon_stop(d), 0);
	assert_true(check_prefixes(d, '6', true) > 0);
}

/* ---- the unit file -------------------------------------------------------- */

/* systemd-analyze (scripts/deps installs it) verify on
 * conf/strapontind.service, with the daemon's path pointed at this build,
 * and its security rating kept at the documented 1.2 or better
 * (docs/operations.md, "systemd"). */
static void
test_unit_verifies(void **state)
{
	char dir[700];

	(void)state;
	if (h_sh("command -v systemd-analyze >/dev/null") != 0)
		h_fail("systemd-analyze is missing: run scripts/deps");
	snprintf(dir, sizeof dir, "%s/run/sd_unit", h_test_dir());
	assert_int_equal(h_sh("mkdir -p '%s' && sed 's|/usr/sbin/strapontind|%s|g' "
			      "'%s/conf/strapontind.service' "
			      ">'%s/strapontind.service'",
			      dir, h_env("STRAPONTIND"), h_env("ST_SOURCE_DIR"),
			      dir),
			 0);
	assert_int_equal(h_sh("systemd-analyze verify --man=no "
			      "'%s/strapontind.service'",
			      dir),
			 0);
	/* "→ Overall exposure level for strapontind.service: 1.2 OK". */
	assert_int_equal(h_sh("systemd-analyze security --offline=true "
			      "'%s/strapontind.service' | sed -n "
			      "'s/.*Overall exposure level for [^:]*: "
			      "\\([0-9.]*\\).*/\\1/p' | awk "
			      "'{ v = $1 } END { print \"exposure \" v; "
			      "exit !(NR > 0 && v <= 1.2) }'",
			      dir),
			 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_reload_stop),
		cmocka_unit_test(test_watchdog),
		cmocka_unit_test(test_journal_lines),
		cmocka_unit_test(test_unit_verifies),
	};

	/* Run from a service of its own, the test would hand its manager's
	 * variables to the daemons: each test sets what it means to. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	unsetenv("JOURNAL_STREAM");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
