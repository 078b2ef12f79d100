#include "smtpsink.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

struct h_sink *
h_sink_new(const char *name)
{
	struct h_sink *s = calloc(1, sizeof *s);

	if (s == NULL)
		h_fail("out of memory");
	s->port = h_free_port();
	h_sh("mkdir -p '%s/run'", h_test_dir());
	snprintf(s->file, sizeof s->file, "%s/run/%s.mail.jsonl",
	    h_test_dir(), name);
	snprintf(s->log, sizeof s->log, "%s/run/%s.sink.log", h_test_dir(),
	    name);
	unlink(s->file);
	unlink(s->log);
	return s;
}

/* Debian's interpreter, which has python3-aiosmtpd (scripts/deps), before
 * whatever python3 comes first in PATH. */
static const char *
python(void)
{
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" :
	    "python3";
}

static bool
log_has(const char *path, const char *needle)
{
	char line[512];
	bool found = false;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return false;
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

void
h_sink_start(struct h_sink *s)
{
	char script[600], port[16];
	const char *argv[12];
	long long deadline;
	size_t n = 0;
	int fd, st;

	snprintf(script, sizeof script, "%s/tests/harness/smtp_sink.py",
	    h_env("ST_SOURCE_DIR"));
	snprintf(port, sizeof port, "%d", s->port);
	argv[n++] = "python3";
	argv[n++] = script;
	argv[n++] = port;
	argv[n++] = s->file;
	if (s->tls_cert != NULL) {
		argv[n++] = "--tls";
		argv[n++] = s->tls_cert;
		argv[n++] = s->tls_key;
		if (s->implicit_tls)
			argv[n++] = "--implicit";
	}
	if (s->user != NULL) {
		argv[n++] = "--auth";
		argv[n++] = s->user;
		argv[n++] = s->password;
	}
	argv[n] = NULL;
	fflush(NULL);
	if ((s->pid = fork()) == -1)
		h_fail("fork: %s", strerror(errno));
	if (s->pid == 0) {
		/* the sink goes with the test, whatever ends it */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execvp(python(), (char *const *)argv);
		_exit(127);
	}
	deadline = h_now_ms() + 10000LL * h_timeout_scale();
	while (!log_has(s->log, "smtp sink: ready")) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			h_sh("cat '%s' >&2", s->log);
			h_fail("the SMTP sink exited (python3-aiosmtpd "
			    "missing? scripts/deps)");
		}
		if (h_now_ms() > deadline)
			h_fail("the SMTP sink did not start in time");
		h_sleep_ms(20);
	}
}

void
h_sink_stop(struct h_sink *s)
{
	int st;

	if (s->pid == 0)
		return;
	kill(s->pid, SIGTERM);
	while (waitpid(s->pid, &st, 0) == -1 && errno == EINTR)
		;
	s->pid = 0;
}

json_t *
h_sink_messages(const struct h_sink *s)
{
	json_t *all = json_array(), *m;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	if ((f = fopen(s->file, "r")) == NULL)
		return all;
	while (getline(&line, &cap, f) > 0) {
		if ((m = json_loads(line, 0, NULL)) == NULL)
			h_fail("the SMTP sink's file has a bad line: %s", line);
		json_array_append_new(all, m);
	}
	free(line);
	fclose(f);
	return all;
}
