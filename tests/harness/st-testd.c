/*
 * st-testd: starts a strapontind that outlives this command, and stops it
 * later, for ctest fixtures (the protocol cases share one daemon).
 *
 *   st-testd start NAME [EXTRA_INI_FILE]
 *   st-testd stop NAME
 *
 * start prepares and starts the daemon like h_daemon_start() (database
 * NAME, run/NAME/, admin account) under a small supervisor process that
 * waits for it and writes run/NAME/exit_status, so that stop, which is not
 * its parent, can tell how it ended. start writes run/NAME/pid and
 * run/NAME/port and exits 0 once the daemon is ready.
 *
 * stop sends SIGTERM, waits up to 30 s, and exits 0 only if the daemon
 * exited 0 and its log holds no sanitizer report.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define START_TIMEOUT_MS 180000

static void
usage(void)
{
	fprintf(stderr, "usage: st-testd start NAME [EXTRA_INI_FILE]\n"
			"       st-testd stop NAME\n");
	exit(2);
}

/* Writes path atomically: readers never see half a file. */
static void write_file(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
write_file(const char *path, const char *fmt, ...)
{
	char tmp[PATH_MAX];
	va_list ap;
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		h_fail("cannot write %s: %s", tmp, strerror(errno));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f) != 0 || rename(tmp, path) == -1)
		h_fail("cannot write %s: %s", path, strerror(errno));
}

static char *
read_extra(const char *path)
{
	char *buf;
	long len;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL)
		h_fail("cannot read %s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) == -1 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1)
		h_fail("cannot read %s: %s", path, strerror(errno));
	if ((buf = calloc(1, (size_t)len + 1)) == NULL)
		abort();
	if (fread(buf, 1, (size_t)len, f) != (size_t)len)
		h_fail("cannot read %s", path);
	fclose(f);
	return buf;
}

/* The supervisor: starts the daemon, says "ok" on the pipe, waits for the
 * daemon and records how it ended. Its own output goes to a file: ctest
 * waits for every holder of a test's output pipe to close it. */
static int
supervise(const char *name, char *extra, int ready_fd, const char *sup_log)
{
	struct h_daemon *d;
	char path[PATH_MAX];
	int fd, st;

	setsid();
	if ((fd = open(sup_log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1)
		_exit(1);
	dup2(fd, 1);
	dup2(fd, 2);
	close(fd);
	if ((fd = open("/dev/null", O_RDONLY)) != -1) {
		dup2(fd, 0);
		close(fd);
	}

	d = h_daemon_start(name, extra);
	free(extra);
	snprintf(path, sizeof path, "%s/pid", d->dir);
	write_file(path, "%d\n", (int)d->pid);
	snprintf(path, sizeof path, "%s/port", d->dir);
	write_file(path, "%d\n", d->port);
	printf("st-testd: daemon %s ready on 127.0.0.1:%d, pid %d\n", name,
	       d->port, (int)d->pid);
	fflush(stdout);
	if (write(ready_fd, "ok\n", 3) != 3)
		h_fail("cannot tell st-testd start: %s", strerror(errno));
	close(ready_fd);

	while ((st = h_daemon_wait(d, 60000)) == -2)
		;
	snprintf(path, sizeof path, "%s/exit_status", d->dir);
	if (d->term_signal != 0)
		write_file(path, "signal %d\n", d->term_signal);
	else
		write_file(path, "exit %d\n", st);
	printf("st-testd: daemon %s %s %d\n", name,
	       d->term_signal ? "killed by signal" : "exited",
	       d->term_signal ? d->term_signal : st);
	return 0;
}

static int
cmd_start(const char *name, const char *extra_file)
{
	char run[PATH_MAX], sup_log[PATH_MAX + 128], buf[16];
	char *extra = extra_file ? read_extra(extra_file) : NULL;
	struct pollfd pfd;
	ssize_t n = 0;
	int fds[2];
	pid_t pid;
	FILE *f;
	int c;

	snprintf(run, sizeof run, "%s/run", h_test_dir());
	if (mkdir(run, 0755) == -1 && errno != EEXIST)
		h_fail("mkdir %s: %s", run, strerror(errno));
	snprintf(sup_log, sizeof sup_log, "%s/%s.supervisor.log", run, name);

	/* CLOEXEC: the daemon must not keep the write end, or we would wait
	 * for it to exit rather than for "ok". */
	if (pipe2(fds, O_CLOEXEC) == -1)
		h_fail("pipe: %s", strerror(errno));
	fflush(NULL);
	if ((pid = fork()) == -1)
		h_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		exit(supervise(name, extra, fds[1], sup_log));
	}
	close(fds[1]);
	free(extra);

	pfd.fd = fds[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, START_TIMEOUT_MS) == 1)
		n = read(fds[0], buf, sizeof buf - 1);
	close(fds[0]);
	if (n == 3 && memcmp(buf, "ok\n", 3) == 0) {
		if ((f = fopen(sup_log, "r")) != NULL) {
			while ((c = fgetc(f)) != EOF)
				putchar(c);
			fclose(f);
		}
		return 0;
	}
	fprintf(stderr, "st-testd: daemon %s did not start; %s says:\n", name,
		sup_log);
	if ((f = fopen(sup_log, "r")) != NULL) {
		while ((c = fgetc(f)) != EOF)
			fputc(c, stderr);
		fclose(f);
	}
	return 1;
}

static int
cmd_stop(const char *name)
{
	struct h_daemon *d;
	char path[PATH_MAX];
	int st;

	/* If start failed, that failure is the one to read: do not add ours. */
	snprintf(path, sizeof path, "%s/run/%s/pid", h_test_dir(), name);
	if (access(path, F_OK) == -1) {
		printf("st-testd: daemon %s was not started: nothing to stop\n",
		       name);
		return 0;
	}
	d = h_daemon_attach(name);
	st = h_daemon_stop(d);

	if (st == 0) {
		printf("st-testd: daemon %s exited 0, no sanitizer report\n",
		       name);
		return 0;
	}
	fprintf(stderr, "----- last 40 lines of %s -----\n", d->log);
	h_log_tail(d, 40);
	if (d->term_signal != 0)
		fprintf(stderr, "st-testd: daemon %s was killed by signal %d\n",
			name, d->term_signal);
	else
		fprintf(stderr, "st-testd: daemon %s exited %d, not 0\n", name,
			st);
	return 1;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "start") == 0)
		return cmd_start(argv[2], NULL);
	if (argc == 4 && strcmp(argv[1], "start") == 0)
		return cmd_start(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "stop") == 0)
		return cmd_stop(argv[2]);
	usage();
}
