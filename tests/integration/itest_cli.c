/*
 * The strapontin CLI ($ST_CLI), run as people run it, against a real
 * daemon and a small world (world_build): every command family, the three
 * output forms parsed back (--json with Jansson, --csv with an RFC 4180
 * reader), the exit codes (0 ok, 1 refused, 2 usage, 3 connection or
 * TLS), the session file and its mode, an expired session, a password
 * typed on a terminal (a pseudo-terminal) without echo.
 *
 * It also holds the CLI to the daemon's method table: every method there
 * must be a command whose flags are the method's params with the same
 * types, required-ness and choices, and every command must be in the man
 * page and answer --help.
 *
 * Each run gets its own environment: STRAPONTIN_SERVER/STRAPONTIN_CA
 * pointing at the daemon, HOME and XDG_CONFIG_HOME in a private directory,
 * XDG_STATE_HOME per person (admin, partner, referent...), so that each
 * keeps its own session file. A run whose stderr holds a sanitizer report
 * fails the test (the CLI is built with the sanitizers too).
 */
#include "world.h"
#include "methods.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* A timezone without tzdata: Central European, with summer time. */
#define TEST_TZ "CET-1CEST,M3.5.0,M10.5.0/3"

static struct world W;
static char tmpdir[256];
static char server[64];
static char ca[512];

/* The last run: exit status, standard output and error. */
static struct {
	int status;
	char *out;
	char *err;
} R;

/* ---------------------------------------------------------- running */

static char *
slurp_fd(int fd)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if ((buf = realloc(buf, cap)) == NULL)
				abort();
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		abort();
	buf[len] = '\0';
	return buf;
}

static int
tmpfile_fd(const char *name)
{
	char path[400];
	int fd;

	snprintf(path, sizeof path, "%s/%s.XXXXXX", tmpdir, name);
	if ((fd = mkstemp(path)) == -1)
		h_fail("mkstemp %s: %s", path, strerror(errno));
	unlink(path);
	return fd;
}

/*
 * Runs the CLI as `who` (its XDG_STATE_HOME is tmpdir/state-who) with
 * input on standard input (NULL: /dev/null) and env, a NULL-terminated
 * list of "NAME=value" to set or "NAME" to unset, then the arguments up to
 * NULL. Sets R; returns the exit status.
 */
static int
cli_v(const char *file, int line, const char *who, const char *input,
      const char *const *env, va_list ap)
{
	const char *argv[64];
	char state[400];
	int argc = 0, in[2], out, err, st, i;
	pid_t pid;

	argv[argc++] = h_env("ST_CLI");
	while ((argv[argc] = va_arg(ap, const char *)) != NULL)
		if (++argc == 63)
			h_fail_at(file, line, "too many arguments");
	free(R.out);
	free(R.err);
	R.out = R.err = NULL;
	snprintf(state, sizeof state, "%s/state-%s", tmpdir, who);
	out = tmpfile_fd("out");
	err = tmpfile_fd("err");
	if (pipe(in) != 0)
		h_fail_at(file, line, "pipe: %s", strerror(errno));
	if ((pid = fork()) == -1)
		h_fail_at(file, line, "fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out, 1);
		dup2(err, 2);
		close(in[0]);
		close(in[1]);
		setenv("XDG_STATE_HOME", state, 1);
		for (i = 0; env != NULL && env[i] != NULL; i++) {
			const char *eq = strchr(env[i], '=');

			if (eq == NULL)
				unsetenv(env[i]);
			else {
				char name[128];

				snprintf(name, sizeof name, "%.*s",
					 (int)(eq - env[i]), env[i]);
				setenv(name, eq + 1, 1);
			}
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	if (input != NULL &&
	    write(in[1], input, strlen(input)) != (ssize_t)strlen(input))
		h_fail_at(file, line, "write to the CLI: %s", strerror(errno));
	close(in[1]);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			h_fail_at(file, line, "waitpid: %s", strerror(errno));
	R.out = slurp_fd(out);
	R.err = slurp_fd(err);
	close(out);
	close(err);
	if (WIFSIGNALED(st))
		h_fail_at(file, line, "strapontin %s killed by signal %d\n%s",
			  argv[1], WTERMSIG(st), R.err);
	R.status = WEXITSTATUS(st);
	if (strstr(R.err, "AddressSanitizer") ||
	    strstr(R.err, "LeakSanitizer") || strstr(R.err, "runtime error:"))
		h_fail_at(file, line, "sanitizer report from the CLI:\n%s",
			  R.err);
	return R.status;
}

/* Runs and asserts the exit status; the output is in R. */
static void
expect_at(const char *file, int line, int want, const char *who,
	  const char *input, const char *const *env, ...)
{
	va_list ap;

	va_start(ap, env);
	cli_v(file, line, who, input, env, ap);
	va_end(ap);
	if (R.status != want)
		h_fail_at(file, line,
			  "exit status %d, expected %d\n--- stdout:\n%s--- "
			  "stderr:\n%s",
			  R.status, want, R.out, R.err);
}

#define EXPECT(code, who, ...)                                                 \
	expect_at(__FILE__, __LINE__, code, who, NULL, NULL, ##__VA_ARGS__,    \
		  (char *)NULL)
#define EXPECT_IN(code, who, input, ...)                                       \
	expect_at(__FILE__, __LINE__, code, who, input, NULL, ##__VA_ARGS__,   \
		  (char *)NULL)
#define EXPECT_ENV(code, who, env, ...)                                        \
	expect_at(__FILE__, __LINE__, code, who, NULL, env, ##__VA_ARGS__,     \
		  (char *)NULL)
#define OK(who, ...) EXPECT(0, who, __VA_ARGS__)

/* The result of a --json run, parsed (new reference). */
#define JSON(who, ...)                                                         \
	json_at(__FILE__, __LINE__, who, __VA_ARGS__, (char *)NULL)

static json_t *
json_at(const char *file, int line, const char *who, ...)
{
	json_error_t jerr;
	va_list ap;
	json_t *j;

	va_start(ap, who);
	cli_v(file, line, who, NULL, (const char *const[]){NULL}, ap);
	va_end(ap);
	if (R.status != 0)
		h_fail_at(file, line, "exit status %d\n%s", R.status, R.err);
	if ((j = json_loads(R.out, 0, &jerr)) == NULL)
		h_fail_at(file, line, "not JSON (%s): %s", jerr.text, R.out);
	if (strchr(R.out, '\n') != R.out + strlen(R.out) - 1)
		h_fail_at(file, line, "--json must print one line: %s", R.out);
	return j;
}

static void
contains_at(const char *file, int line, const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		h_fail_at(file, line, "'%s' not found in:\n%s", needle, hay);
}
#define CONTAINS(hay, needle) contains_at(__FILE__, __LINE__, hay, needle)

static const char *
num(json_int_t v)
{
	static char bufs[8][24];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, 24, "%" JSON_INTEGER_FORMAT, v);
	return b;
}

/* ------------------------------------------------------------- CSV */

/* RFC 4180: rows of fields, quoted fields with "" for a quote, CRLF (or
 * LF) between rows. A JSON array of arrays of strings. */
static json_t *
csv_parse(const char *s)
{
	json_t *rows = json_array(), *row = json_array();
	char *field = malloc(strlen(s) + 1);
	size_t fl = 0;
	bool quoted = false, any = false;

	if (field == NULL)
		abort();
	for (; *s != '\0'; s++) {
		if (quoted) {
			if (*s == '"' && s[1] == '"') {
				field[fl++] = '"';
				s++;
			} else if (*s == '"')
				quoted = false;
			else
				field[fl++] = *s;
			continue;
		}
		if (*s == '"') {
			quoted = true;
			any = true;
		} else if (*s == ',') {
			field[fl] = '\0';
			json_array_append_new(row, json_string(field));
			fl = 0;
			any = true;
		} else if (*s == '\r' && s[1] == '\n') {
			continue;
		} else if (*s == '\n') {
			field[fl] = '\0';
			json_array_append_new(row, json_string(field));
			json_array_append_new(rows, row);
			row = json_array();
			fl = 0;
			any = false;
		} else {
			field[fl++] = *s;
			any = true;
		}
	}
	if (any || fl > 0) {
		field[fl] = '\0';
		json_array_append_new(row, json_string(field));
		json_array_append_new(rows, row);
	} else
		json_decref(row);
	free(field);
	return rows;
}

/* The column named name in a CSV's header row, or -1. */
static int
csv_col(const json_t *rows, const char *name)
{
	const json_t *header = json_array_get(rows, 0), *v;
	size_t i;

	for (i = 0; i < json_array_size(header); i++) {
		v = json_array_get(header, i);
		if (strcmp(json_string_value(v), name) == 0)
			return (int)i;
	}
	return -1;
}

static const char *
csv_cell(const json_t *rows, size_t row, const char *name)
{
	int c = csv_col(rows, name);

	if (c < 0)
		h_fail("no column %s in the CSV", name);
	return json_string_value(
	    json_array_get(json_array_get(rows, row), (size_t)c));
}

/* ------------------------------------------------------------- setup */

static void
login_as(const char *who, const char *email, const char *password)
{
	char input[128];

	snprintf(input, sizeof input, "%s\n", password);
	EXPECT_IN(0, who, input, "login", email);
	CONTAINS(R.out, "logged in");
}

static int
group_setup(void **state)
{
	struct h_daemon *d;
	char path[400];

	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "%s/run/cli-XXXXXX", h_test_dir());
	snprintf(path, sizeof path, "%s/run", h_test_dir());
	mkdir(path, 0755);
	if (mkdtemp(tmpdir) == NULL)
		h_fail("mkdtemp %s: %s", tmpdir, strerror(errno));
	d = h_daemon_start("cli", NULL);
	world_build(&W, d);
	snprintf(server, sizeof server, "127.0.0.1:%d", d->port);
	snprintf(ca, sizeof ca, "%s/ca.pem", h_certs_dir());
	/* What every run inherits; runs change some of it. */
	setenv("STRAPONTIN_SERVER", server, 1);
	setenv("STRAPONTIN_CA", ca, 1);
	snprintf(path, sizeof path, "%s/home", tmpdir);
	mkdir(path, 0700);
	setenv("HOME", path, 1);
	snprintf(path, sizeof path, "%s/config", tmpdir);
	setenv("XDG_CONFIG_HOME", path, 1);
	setenv("TZ", TEST_TZ, 1);
	unsetenv("STRAPONTIN_PASSWORD");
	/* The CLI speaks French unless asked for English (test_language):
	 * the other tests read its English. */
	setenv("STRAPONTIN_LANG", "en", 1);

	login_as("admin", H_ADMIN_EMAIL, H_ADMIN_PASSWORD);
	login_as("partner", W_PARTNER_EMAIL, W_PASSWORD);
	login_as("ref", W_REF_EMAIL, W_PASSWORD);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	world_close(&W);
	free(R.out);
	free(R.err);
	if (h_daemon_stop(W.d) != 0)
		h_fail("the daemon did not exit 0");
	return 0;
}

/* ---------------------------------------------------- the table itself */

static const char *
daemon_type(const struct param *p, char *buf, size_t len)
{
	size_t i, l;

	switch (p->type) {
	case PT_INT:
		return "int";
	case PT_ID:
		return "id";
	case PT_BOOL:
		return "bool";
	case PT_STRING:
		return "str";
	case PT_TEXT:
		return "text";
	case PT_EMAIL:
		return "email";
	case PT_TIME:
		return "time";
	case PT_DATE:
		return "date";
	case PT_HHMM:
		return "hhmm";
	case PT_ID_ARRAY:
		return "ids";
	case PT_STRING_ARRAY:
		return "strs";
	case PT_CURSOR:
		return "cursor";
	case PT_ENUM:
	case PT_ENUM_ARRAY:
		snprintf(buf, len, p->type == PT_ENUM ? "enum(" : "enums(");
		for (i = 0; p->choices[i] != NULL; i++) {
			l = strlen(buf);
			snprintf(buf + l, len - l, "%s%s", i ? "|" : "",
				 p->choices[i]);
		}
		l = strlen(buf);
		snprintf(buf + l, len - l, ")");
		return buf;
	default:
		return "?";
	}
}

/* The CLI's line in `strapontin _table` for method, or NULL. */
static const char *
table_line(const char *table, const char *method, char *buf, size_t len)
{
	char needle[128];
	const char *p, *e;

	snprintf(needle, sizeof needle, " %s ", method);
	for (p = table; (p = strstr(p, needle)) != NULL; p++) {
		const char *bol = p;

		while (bol > table && bol[-1] != '\n')
			bol--;
		/* "noun verb method": the method is the third word. */
		if (strchr(bol, ' ') + 1 + strcspn(strchr(bol, ' ') + 1, " ") !=
		    p)
			continue;
		e = strchr(p, '\n');
		snprintf(buf, len, "%.*s", (int)(e - bol), bol);
		return buf;
	}
	return NULL;
}

/* Whether the line has this word (between spaces, or at its end). */
static bool
has_word(const char *line, const char *word)
{
	const char *p = line;
	size_t l = strlen(word);

	while ((p = strstr(p, word)) != NULL) {
		if ((p == line || p[-1] == ' ') &&
		    (p[l] == ' ' || p[l] == '\0'))
			return true;
		p++;
	}
	return false;
}

static void
test_table_covers_daemon(void **state)
{
	char *table, line[4096], want[1024], secret[1030], tbuf[512],
	    ticket[1024];
	const struct param *p;
	const char *w;
	size_t i, nparams;
	int nwords;

	(void)state;
	OK("anon", "_table");
	table = strdup(R.out);
	for (i = 0; i < methods_count; i++) {
		if (table_line(table, methods[i].name, line, sizeof line) ==
		    NULL)
			h_fail("method %s has no command in the CLI table",
			       methods[i].name);
		/* Every param of the daemon, as the CLI spells it
		 * ("name:type:flags"; a secret has an extra "s"). */
		nparams = 0;
		for (p = methods[i].params; p->name != NULL; p++) {
			nparams++;
			snprintf(want, sizeof want, "%s:%s:%s%s", p->name,
				 daemon_type(p, tbuf, sizeof tbuf),
				 p->flags & P_REQUIRED ? "r" : "",
				 p->flags & P_NULLABLE ? "n" : "");
			snprintf(secret, sizeof secret, "%ss", want);
			/* The CLI may check a string further: a ticket
			 * code is still a string on the wire. */
			snprintf(ticket, sizeof ticket, "%s:ticket:%s%s",
				 p->name, p->flags & P_REQUIRED ? "r" : "",
				 p->flags & P_NULLABLE ? "n" : "");
			if (!has_word(line, want) && !has_word(line, secret) &&
			    !(p->type == PT_STRING && has_word(line, ticket)))
				h_fail(
				    "%s: the CLI lacks or mistypes '%s':\n%s",
				    methods[i].name, want, line);
		}
		/* And nothing more: "noun verb method positional", then one
		 * word per param. */
		nwords = 1;
		for (w = line; (w = strchr(w, ' ')) != NULL; w++)
			nwords++;
		if ((size_t)(nwords - 4) != nparams)
			h_fail("%s: the CLI has %d params, the daemon %zu:\n%s",
			       methods[i].name, nwords - 4, nparams, line);
	}
	free(table);
}

/* Every command answers --help, and is in the man page. */
static void
test_help_and_man_page(void **state)
{
	char *table, *man, path[512], words[128], *line, *save, *p;
	FILE *f;

	(void)state;
	OK("anon", "--help");
	CONTAINS(R.out, "usage: strapontin");
	CONTAINS(R.out, "offer");
	OK("anon", "offer", "--help");
	CONTAINS(R.out, "publish");
	CONTAINS(R.out, "guest-list");
	OK("anon", "offer", "publish", "--help");
	CONTAINS(R.out, "--starts-at TIME");
	CONTAINS(R.out, "--seats N");
	CONTAINS(R.out, "one of: show,");
	CONTAINS(R.out, "workshop, other");
	OK("anon", "help", "booking", "create");
	CONTAINS(R.out, "--beneficiary-id ID");
	OK("anon", "call", "--help");

	snprintf(path, sizeof path, "%s/docs/man/strapontin.1",
		 h_env("ST_SOURCE_DIR"));
	if ((f = fopen(path, "r")) == NULL)
		h_fail("%s: %s", path, strerror(errno));
	fclose(f);
	{
		int fd = open(path, O_RDONLY);

		man = slurp_fd(fd);
		close(fd);
	}
	/* roff escapes hyphens as \-: compare without the backslashes. */
	for (p = man; (p = strstr(p, "\\-")) != NULL;)
		memmove(p, p + 1, strlen(p));
	for (p = man; (p = strstr(p, "\\fB")) != NULL;)
		memmove(p, p + 3, strlen(p + 3) + 1);
	for (p = man; (p = strstr(p, "\\fR")) != NULL;)
		memmove(p, p + 3, strlen(p + 3) + 1);

	OK("anon", "_table");
	table = strdup(R.out);
	for (line = strtok_r(table, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char noun[40], verb[40];

		if (sscanf(line, "%39s %39s", noun, verb) != 2)
			h_fail("bad _table line: %s", line);
		if (strcmp(verb, "-") == 0) {
			EXPECT(0, "anon", noun, "--help");
			snprintf(words, sizeof words, "%s", noun);
		} else {
			EXPECT(0, "anon", noun, verb, "--help");
			snprintf(words, sizeof words, "%s %s", noun, verb);
		}
		CONTAINS(R.out, "usage: strapontin");
		if (strstr(man, words) == NULL)
			h_fail("'%s' is not in %s", words, path);
	}
	free(table);
	free(man);

	/* man -l renders it without a warning. */
	if (access("/usr/bin/man", X_OK) == 0) {
		char cmd[1200];
		int st;

		snprintf(cmd, sizeof cmd,
			 "MANWIDTH=80 man --warnings -l '%s' 2>&1 >/dev/null | "
			 "grep . && exit 1; MANWIDTH=80 man -l '%s' | grep -q "
			 "'offer publish'",
			 path, path);
		st = system(cmd);
		if (st != 0)
			h_fail("man -l %s: warnings, or no 'offer publish'",
			       path);
	}
}

static void
test_completion(void **state)
{
	(void)state;
	OK("anon", "_complete");
	CONTAINS(R.out, "offer\n");
	CONTAINS(R.out, "login\n");
	OK("anon", "_complete", "offer");
	CONTAINS(R.out, "set-seats\n");
	CONTAINS(R.out, "close-attendance\n");
	OK("anon", "_complete", "offer", "publish");
	CONTAINS(R.out, "--starts-at\n");
	CONTAINS(R.out, "--max-per-booking\n");
	OK("anon", "_complete", "offer", "publish", "--category");
	CONTAINS(R.out, "concert\n");
	OK("anon", "_complete", "--json", "user", "create");
	if (strstr(R.out, "--password") != NULL)
		h_fail("a secret is offered as a flag:\n%s", R.out);
}

/* ------------------------------------------------------------- usage */

static void
test_usage_errors(void **state)
{
	(void)state;
	EXPECT(2, "anon");
	CONTAINS(R.err, "usage:");
	EXPECT(2, "anon", "frobnicate");
	CONTAINS(R.err, "unknown command 'frobnicate'");
	EXPECT(2, "anon", "offer");
	CONTAINS(R.err, "which verb");
	EXPECT(2, "anon", "offer", "frob");
	CONTAINS(R.err, "unknown verb 'frob'");
	EXPECT(2, "admin", "offer", "list", "--colour", "blue");
	CONTAINS(R.err, "unknown option --colour");
	EXPECT(2, "admin", "offer", "list", "-x");
	EXPECT(2, "admin", "offer", "get");
	CONTAINS(R.err, "--offer-id");
	EXPECT(2, "admin", "offer", "get", "twelve");
	CONTAINS(R.err, "--offer-id wants an id");
	EXPECT(2, "admin", "offer", "get", "12", "13");
	CONTAINS(R.err, "unexpected argument '13'");
	EXPECT(2, "admin", "offer", "get", "12", "--offer-id", "13");
	CONTAINS(R.err, "given twice");
	EXPECT(2, "admin", "offer", "list", "--category", "opera");
	CONTAINS(R.err, "one of show, concert");
	EXPECT(2, "admin", "offer", "list", "--from", "next week");
	CONTAINS(R.err, "--from wants a time");
	EXPECT(2, "admin", "offer", "list", "--from", "2025-02-30");
	EXPECT(2, "admin", "offer", "list", "--limit");
	CONTAINS(R.err, "--limit needs a value");
	EXPECT(2, "admin", "offer", "publish", "--title", "x");
	CONTAINS(R.err, "--category is required");
	EXPECT(2, "admin", "user", "create", "x@example.org", "--password",
	       "secret-password");
	CONTAINS(R.err, "never taken from the command line");
	EXPECT(2, "admin", "--timeout", "0", "ping");
	EXPECT(2, "admin", "--server", "host:port", "ping");
	CONTAINS(R.err, "bad server");
	EXPECT(2, "admin", "--frob", "ping");
	EXPECT(2, "admin", "call");
	EXPECT(2, "admin", "call", "offer.get", "{not json");
	EXPECT(2, "admin", "call", "offer.get", "[1]");
	/* Nothing was sent: the daemon never saw these. */
	EXPECT(0, "anon", "--version");
	CONTAINS(R.out, "strapontin ");
}

/* ------------------------------------------------------------- sessions */

/* The token saved in who's session file. */
static void
saved_token(const char *who, char *buf, size_t len)
{
	char path[512], line[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/state-%s/strapontin/token", tmpdir, who);
	if ((f = fopen(path, "r")) == NULL)
		h_fail("%s: %s", path, strerror(errno));
	buf[0] = '\0';
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "token=", 6) == 0) {
			size_t n = strcspn(line + 6, "\n");

			if (n >= len)
				h_fail("token too long in %s", path);
			memcpy(buf, line + 6, n);
			buf[n] = '\0';
		}
	fclose(f);
	if (buf[0] == '\0')
		h_fail("no token in %s", path);
}

static void
test_session_file(void **state)
{
	char path[1024], dir[512], old[128], now[128];
	struct stat st;
	json_t *j;

	(void)state;
	snprintf(dir, sizeof dir, "%s/state-admin/strapontin", tmpdir);
	snprintf(path, sizeof path, "%s/token", dir);
	if (stat(path, &st) != 0)
		h_fail("%s: %s", path, strerror(errno));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(S_ISREG(st.st_mode));
	if (stat(dir, &st) != 0)
		h_fail("%s: %s", dir, strerror(errno));
	assert_int_equal(st.st_mode & 0777, 0700);
	{
		int fd = open(path, O_RDONLY);
		char *text = slurp_fd(fd);
		char want[128];

		close(fd);
		snprintf(want, sizeof want, "server=%s\n", server);
		CONTAINS(text, want);
		CONTAINS(text, "token=");
		free(text);
	}

	j = JSON("admin", "--json", "whoami");
	assert_string_equal(w_str(json_object_get(j, "user"), "email"),
			    H_ADMIN_EMAIL);
	json_decref(j);
	OK("admin", "whoami");
	CONTAINS(R.out, H_ADMIN_EMAIL);
	CONTAINS(R.out, "admin");

	/* A file others can read is refused, not used. */
	chmod(path, 0644);
	EXPECT(1, "admin", "offer", "list");
	CONTAINS(R.err, "only you can read");
	chmod(path, 0600);
	OK("admin", "offer", "list");

	/* Not logged in. */
	EXPECT(1, "nobody", "offer", "list");
	CONTAINS(R.err, "not logged in");
	EXPECT(1, "nobody", "whoami");

	/* The password from STRAPONTIN_PASSWORD; the token never printed. */
	EXPECT_ENV(
	    0, "envlogin",
	    ((const char *const[]){"STRAPONTIN_PASSWORD=" W_PASSWORD, NULL}),
	    "--json", "login", W_REF2_EMAIL);
	j = json_loads(R.out, 0, NULL);
	assert_non_null(j);
	assert_null(json_object_get(j, "token"));
	assert_string_equal(w_str(json_object_get(j, "user"), "email"),
			    W_REF2_EMAIL);
	json_decref(j);
	OK("envlogin", "whoami");
	CONTAINS(R.out, W_REF2_EMAIL);

	/* Wrong password: refused, nothing saved. */
	EXPECT_IN(1, "wrong", "not-the-password\n", "login", W_REF_EMAIL);
	CONTAINS(R.err, "wrong password");
	snprintf(path, sizeof path, "%s/state-wrong/strapontin/token", tmpdir);
	assert_int_not_equal(access(path, F_OK), 0);
	EXPECT(2, "wrong", "login", W_REF_EMAIL); /* no password at all */

	/* Logout ends the session on the server and removes the file. */
	OK("envlogin", "logout");
	CONTAINS(R.out, "logged out");
	snprintf(path, sizeof path, "%s/state-envlogin/strapontin/token",
		 tmpdir);
	assert_int_not_equal(access(path, F_OK), 0);
	EXPECT(1, "envlogin", "whoami");
	OK("envlogin", "logout");
	CONTAINS(R.out, "not logged in");

	/* A new login replaces the saved session and ends the old one on
	 * the server too. */
	login_as("relogin", W_PARTNER2_EMAIL, W_PASSWORD);
	saved_token("relogin", old, sizeof old);
	login_as("relogin", W_PARTNER2_EMAIL, W_PASSWORD);
	saved_token("relogin", now, sizeof now);
	assert_string_not_equal(old, now);
	{
		struct st_client *c = h_connect(W.d);

		json_decref(h_call_err(c, "auth.resume", json_pack("{s:s}",
		    "token", old), 401, "unauthenticated"));
		st_close(c);
	}
	OK("relogin", "whoami");
	CONTAINS(R.out, W_PARTNER2_EMAIL);

	/* A session is only sent to the server that gave it. */
	{
		char other[64];

		snprintf(other, sizeof other, "localhost:%d", W.d->port);
		EXPECT(1, "admin", "--server", other, "offer", "list");
		CONTAINS(R.err, "not logged in to");
	}
}

static void
test_expired_session(void **state)
{
	PGconn *db;
	char sql[256], path[512];
	json_t *u;

	(void)state;
	/* An account of its own, made with the CLI, password on stdin. */
	EXPECT_IN(0, "admin", "expiring-password\n", "--json", "user", "create",
		  "late@example.org", "--display-name", "Late", "--role",
		  "referent", "--structure-id", num(W.structure_id));
	u = json_loads(R.out, 0, NULL);
	assert_non_null(u);
	login_as("late", "late@example.org", "expiring-password");
	OK("late", "whoami");

	db = h_db_connect(W.d->conninfo);
	snprintf(sql, sizeof sql,
		 "UPDATE tokens SET expires_at = now() - interval '1s' "
		 "WHERE user_id = %" JSON_INTEGER_FORMAT,
		 w_int(u, "id"));
	h_db_exec(db, sql);
	PQfinish(db);

	EXPECT(1, "late", "offer", "list");
	CONTAINS(R.err, "session expired: log in again");
	snprintf(path, sizeof path, "%s/state-late/strapontin/token", tmpdir);
	assert_int_not_equal(access(path, F_OK), 0);
	EXPECT(1, "late", "offer", "list");
	CONTAINS(R.err, "not logged in");

	/* Disabled: the next command says so the same way. */
	login_as("late", "late@example.org", "expiring-password");
	OK("admin", "user", "disable", num(w_int(u, "id")));
	CONTAINS(R.out, "enabled:");
	EXPECT(1, "late", "whoami");
	CONTAINS(R.err, "session expired");
	json_decref(u);
}

/* auth change-password and auth resume read their secrets from stdin. */
static void
test_password_change(void **state)
{
	char path[512], *text, *tok, token[128];
	int fd;

	(void)state;
	EXPECT_IN(0, "admin", "first-password\n", "user", "create",
		  "changer@example.org", "--display-name", "Changer", "--role",
		  "referent", "--structure-id", num(W.structure_id));
	login_as("changer", "changer@example.org", "first-password");
	EXPECT_IN(1, "changer", "not-my-password\nsecond-password\n", "auth",
		  "change-password");
	CONTAINS(R.err, "old password is wrong");
	EXPECT_IN(2, "changer", "first-password\n", "auth", "change-password");
	EXPECT_IN(0, "changer", "first-password\nsecond-password\n", "auth",
		  "change-password");
	CONTAINS(R.out, "password changed");
	OK("changer", "whoami"); /* this session lives on */
	EXPECT_IN(1, "changer2", "first-password\n", "login",
		  "changer@example.org");
	login_as("changer2", "changer@example.org", "second-password");

	/* The token, given on stdin, names its user. */
	snprintf(path, sizeof path, "%s/state-changer2/strapontin/token",
		 tmpdir);
	if ((fd = open(path, O_RDONLY)) == -1)
		h_fail("%s: %s", path, strerror(errno));
	text = slurp_fd(fd);
	close(fd);
	if ((tok = strstr(text, "token=")) == NULL)
		h_fail("no token in %s", path);
	snprintf(token, sizeof token, "%.*s\n", (int)strcspn(tok + 6, "\n"),
		 tok + 6);
	free(text);
	EXPECT_IN(0, "anon", token, "auth", "resume");
	CONTAINS(R.out, "changer@example.org");
	EXPECT_IN(1, "anon", "not-a-token\n", "auth", "resume");
	EXPECT(2, "anon", "auth", "resume", "--token", "abc");
}

/* A password typed on a terminal is not echoed. */
static void
test_password_on_terminal(void **state)
{
	char buf[8192], state_dir[400];
	size_t len = 0;
	int master, slave, st;
	pid_t pid;
	bool sent = false;

	(void)state;
	if ((master = posix_openpt(O_RDWR | O_NOCTTY)) == -1 ||
	    grantpt(master) != 0 || unlockpt(master) != 0)
		h_fail("pty: %s", strerror(errno));
	snprintf(state_dir, sizeof state_dir, "%s/state-tty", tmpdir);
	if ((pid = fork()) == -1)
		h_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		setsid();
		if ((slave = open(ptsname(master), O_RDWR)) == -1)
			_exit(126);
		close(master);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		setenv("XDG_STATE_HOME", state_dir, 1);
		execl(h_env("ST_CLI"), "strapontin", "login", W_PARTNER2_EMAIL,
		      (char *)NULL);
		_exit(127);
	}
	for (;;) {
		struct pollfd pfd = {master, POLLIN, 0};
		ssize_t n;

		if (poll(&pfd, 1, 20000) <= 0)
			h_fail("the CLI said nothing for 20 s: %.*s", (int)len,
			       buf);
		n = read(master, buf + len, sizeof buf - len - 1);
		if (n <= 0)
			break; /* EIO: the other side is closed */
		len += (size_t)n;
		buf[len] = '\0';
		if (!sent && strstr(buf, "Password for") != NULL) {
			/* The CLI turns echo off before it prompts; check
			 * the terminal agrees before typing. */
			struct termios t;
			int tries;

			for (tries = 0; tries < 200; tries++) {
				if (tcgetattr(master, &t) == 0 &&
				    !(t.c_lflag & ECHO))
					break;
				usleep(10000);
			}
			if (write(master, W_PASSWORD "\n",
				  strlen(W_PASSWORD) + 1) < 0)
				h_fail("write: %s", strerror(errno));
			sent = true;
		}
	}
	waitpid(pid, &st, 0);
	close(master);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		h_fail("login on a terminal failed:\n%s", buf);
	CONTAINS(buf, "logged in");
	if (strstr(buf, W_PASSWORD) != NULL)
		h_fail("the password was echoed:\n%s", buf);
	OK("tty", "whoami");
	CONTAINS(R.out, W_PARTNER2_EMAIL);
}

/* ------------------------------------------------------------ admin */

static void
test_admin_commands(void **state)
{
	json_t *j, *rows;
	json_int_t pid, sid;

	(void)state;
	j = JSON("admin", "--json", "partner", "create", "--name",
		 "Cinéma \"Le Rex\", salle 2", "--kind", "cinema", "--city",
		 "Clermont-Ferrand", "--contact-email", "rex@example.org");
	pid = w_int(j, "id");
	assert_string_equal(w_str(j, "kind"), "cinema");
	json_decref(j);
	OK("admin", "partner", "create", "--name", "Salle des fêtes", "--kind",
	   "concert-hall", "--city", "Thiers");
	CONTAINS(R.out, "concert_hall");

	/* CSV: quotes and commas survive, the header names the fields. */
	OK("admin", "--csv", "partner", "list");
	rows = csv_parse(R.out);
	assert_true(json_array_size(rows) >= 4);
	assert_true(csv_col(rows, "id") == 0);
	assert_true(csv_col(rows, "name") >= 0);
	{
		size_t i;
		bool found = false;

		for (i = 1; i < json_array_size(rows); i++)
			if (strcmp(csv_cell(rows, i, "id"), num(pid)) == 0) {
				assert_string_equal(
				    csv_cell(rows, i, "name"),
				    "Cinéma \"Le Rex\", salle 2");
				assert_string_equal(csv_cell(rows, i, "city"),
						    "Clermont-Ferrand");
				found = true;
			}
		assert_true(found);
	}
	json_decref(rows);
	assert_non_null(strstr(R.out, "\r\n"));

	/* People: a table with a header. */
	OK("admin", "partner", "list");
	CONTAINS(R.out, "ID");
	CONTAINS(R.out, "NAME");
	CONTAINS(R.out, "Cinéma \"Le Rex\", salle 2");

	j = JSON("admin", "--json", "structure", "create", "--name",
		 "Centre social des Vergnes", "--kind", "centre_social",
		 "--territory", "Clermont", "--city", "Clermont-Ferrand");
	sid = w_int(j, "id");
	assert_string_equal(w_str(j, "timezone"), "Europe/Paris");
	json_decref(j);
	OK("admin", "--csv", "structure", "list");
	rows = csv_parse(R.out);
	assert_true(csv_col(rows, "territory") >= 0);
	json_decref(rows);

	EXPECT_IN(0, "admin", "partner-password\n", "user", "create", "--email",
		  "rex@example.org", "--display-name", "Rex", "--role",
		  "partner", "--partner-id", num(pid));
	CONTAINS(R.out, "rex@example.org");
	/* The server's refusal, in one sentence, exit 1. */
	EXPECT_IN(1, "admin", "partner-password\n", "user", "create", "--email",
		  "rex@example.org", "--display-name", "Rex", "--role",
		  "partner", "--partner-id", num(pid));
	CONTAINS(R.err, "duplicate");
	EXPECT_IN(1, "admin", "a-password-1\n", "user", "create", "--email",
		  "vergnes@example.org", "--display-name", "V", "--role",
		  "referent");
	CONTAINS(R.err, "structure_id");
	(void)sid;

	j = JSON("admin", "--json", "user", "list", "--role", "partner");
	assert_true(json_array_size(json_object_get(j, "items")) >= 3);
	json_decref(j);

	/* Only an admin may. */
	EXPECT(1, "ref", "user", "list");
	CONTAINS(R.err, "forbidden");

	j = JSON("admin", "--json", "audit", "list", "--limit", "500");
	{
		const json_t *it;
		size_t i;
		bool seen = false;

		for (i = 0; i < json_array_size(json_object_get(j, "items"));
		     i++) {
			it = json_array_get(json_object_get(j, "items"), i);
			if (strcmp(w_str(it, "method"), "partner.create") == 0)
				seen = true;
		}
		assert_true(seen);
	}
	json_decref(j);
	OK("admin", "--csv", "audit", "list");
	rows = csv_parse(R.out);
	assert_true(csv_col(rows, "method") >= 0);
	json_decref(rows);
}

/* ------------------------------------------------- offers and bookings */

static void
test_offers_and_bookings(void **state)
{
	json_t *j, *rows, *b;
	json_int_t offer, small, ben, ben2, booking;
	char code[64];

	(void)state;
	/* A local time in, UTC on the wire: 20:30 in summer is 18:30Z. */
	j = JSON("partner", "--json", "offer", "publish", "--title",
		 "Les Fourberies de Scapin", "--category", "show", "--venue",
		 "Comédie de Clermont", "--city", "Clermont-Ferrand",
		 "--starts-at", "2031-06-14 20:30", "--seats", "40");
	offer = w_int(j, "id");
	assert_string_equal(w_str(j, "starts_at"), "2031-06-14T18:30:00Z");
	assert_int_equal(w_int(j, "seats_available"), 40);
	json_decref(j);
	/* And back in local time for people. */
	OK("partner", "offer", "get", num(offer));
	CONTAINS(R.out, "2031-06-14 20:30 CEST");
	CONTAINS(R.out, "Les Fourberies de Scapin");
	OK("ref", "offer", "list");
	CONTAINS(R.out, "STARTS");
	CONTAINS(R.out, "2031-06-14 20:30");
	CONTAINS(R.out, "40/40");
	/* An explicit offset is kept as meant. */
	j = JSON("partner", "--json", "offer", "publish", "--title",
		 "Petite forme", "--category", "workshop", "--venue", "Atelier",
		 "--city", "Lezoux", "--starts-at", "2031-01-10T10:00:00+01:00",
		 "--seats", "1", "--max-per-booking", "1", "--description",
		 "Deux lignes,\navec \"guillemets\"");
	small = w_int(j, "id");
	assert_string_equal(w_str(j, "starts_at"), "2031-01-10T09:00:00Z");
	json_decref(j);

	/* A weekly series, at 14:00 Paris on both sides of the spring change
	 * (30 March 2031); then from its first date on, an hour later; then
	 * its second date and the following cancelled. */
	j = JSON("partner", "--json", "offer", "publish-series", "--title",
		 "Jardin partagé", "--category", "workshop", "--venue", "Jardin",
		 "--city", "Billom", "--seats", "6", "--weekday", "wednesday",
		 "--start-time", "14:00", "--from-date", "2031-03-19", "--count",
		 "3");
	assert_int_equal(json_array_size(json_object_get(j, "items")), 3);
	assert_string_equal(w_str(json_array_get(json_object_get(j, "items"),
	    2), "starts_at"), "2031-04-02T12:00:00Z");
	{
		json_int_t first = w_int(json_array_get(json_object_get(j,
		    "items"), 0), "id");
		json_int_t second = w_int(json_array_get(json_object_get(j,
		    "items"), 1), "id");
		json_t *c;

		OK("partner", "offer", "update", num(first), "--scope",
		   "following", "--start-time", "15:00");
		CONTAINS(R.out, "2031-03-19 15:00");
		c = JSON("partner", "--json", "offer", "cancel", num(second),
			 "--reason", "Fin de saison", "--scope", "following");
		assert_int_equal(json_array_size(json_object_get(c, "items")),
		    2);
		json_decref(c);
	}
	json_decref(j);

	/* --json is exactly the result; --csv has a row per item. */
	j = JSON("ref", "--json", "offer", "get", num(offer));
	assert_int_equal(w_int(j, "id"), offer);
	assert_int_equal(w_int(j, "seats_total"), 40);
	json_decref(j);
	OK("ref", "offer", "list", "--csv", "--city", "Lezoux");
	rows = csv_parse(R.out);
	assert_true(json_array_size(rows) >= 2);
	assert_int_equal(csv_col(rows, "id"), 0);
	assert_true(csv_col(rows, "starts_at") >= 0);
	assert_true(csv_col(rows, "seats_available") >= 0);
	{
		size_t i;
		bool found = false;

		for (i = 1; i < json_array_size(rows); i++)
			if (strcmp(csv_cell(rows, i, "id"), num(small)) == 0) {
				assert_string_equal(
				    csv_cell(rows, i, "description"),
				    "Deux lignes,\navec \"guillemets\"");
				found = true;
			}
		assert_true(found);
	}
	json_decref(rows);

	/* Beneficiaries. */
	j = JSON("ref", "--json", "beneficiary", "create", "--first-name",
		 "Marie", "--last-name", "Dupont", "--birth-year", "1961",
		 "--consent");
	ben = w_int(j, "id");
	json_decref(j);
	j = JSON("ref", "--json", "beneficiary", "create", "--first-name",
		 "Ahmed", "--last-name", "Benali", "--consent", "true");
	ben2 = w_int(j, "id");
	json_decref(j);
	EXPECT(1, "ref", "beneficiary", "create", "--first-name", "No",
	       "--last-name", "Consent", "--consent", "false");
	CONTAINS(R.err, "consent");
	OK("ref", "beneficiary", "list", "--query", "dup");
	CONTAINS(R.out, "Marie Dupont");
	OK("ref", "beneficiary", "update", num(ben), "--postal-code", "63190");
	CONTAINS(R.out, "63190");
	OK("ref", "beneficiary", "update", num(ben), "--postal-code", "null");

	/* Bookings. */
	b = JSON("ref", "--json", "booking", "create", "--offer-id", num(offer),
		 "--beneficiary-id", num(ben), "--seats", "2");
	booking = w_int(b, "id");
	assert_string_equal(w_str(b, "status"), "confirmed");
	snprintf(code, sizeof code, "%s", w_str(b, "code"));
	json_decref(b);
	OK("ref", "booking", "get", num(booking));
	CONTAINS(R.out, code);
	EXPECT(1, "ref", "booking", "create", "--offer-id", num(offer),
	       "--beneficiary-id", num(ben), "--seats", "1");
	CONTAINS(R.err, "already holds");
	/* Sold out, said with the numbers. */
	OK("ref", "booking", "create", "--offer-id", num(small),
	   "--beneficiary-id", num(ben2), "--seats", "1");
	EXPECT(1, "ref", "booking", "create", "--offer-id", num(small),
	       "--beneficiary-id", num(ben), "--seats", "1");
	CONTAINS(R.err, "sold out: 0 of 1 seats left");

	OK("ref", "booking", "list");
	CONTAINS(R.out, "CODE");
	CONTAINS(R.out, code);
	CONTAINS(R.out, "confirmed");
	OK("ref", "--csv", "booking", "list", "--offer-id", num(offer));
	rows = csv_parse(R.out);
	assert_int_equal(json_array_size(rows), 2);
	assert_string_equal(csv_cell(rows, 1, "code"), code);
	assert_string_equal(csv_cell(rows, 1, "status"), "confirmed");
	json_decref(rows);

	/* A group outing: two people (one with a companion), a staff seat;
	 * then cancelled as a whole, its seats back. */
	{
		json_int_t p1, p2, group;
		char ids[64], gcode[64];

		j = JSON("ref", "--json", "beneficiary", "create", "--first-name",
			 "Lucie", "--last-name", "Groupe", "--consent");
		p1 = w_int(j, "id");
		json_decref(j);
		j = JSON("ref", "--json", "beneficiary", "create", "--first-name",
			 "Malik", "--last-name", "Groupe", "--consent");
		p2 = w_int(j, "id");
		json_decref(j);
		snprintf(ids, sizeof ids, "%s,%s", num(p1), num(p2));
		j = JSON("ref", "--json", "booking", "create-group", "--offer-id",
			 num(offer), "--beneficiary-ids", ids, "--seats", "2,1",
			 "--staff-seats", "1");
		group = w_int(j, "id");
		assert_int_equal(w_int(j, "seats"), 4);
		assert_int_equal(w_int(j, "staff_seats"), 1);
		assert_int_equal(json_array_size(json_object_get(j, "members")), 2);
		snprintf(gcode, sizeof gcode, "%s", w_str(j, "code"));
		json_decref(j);
		OK("ref", "booking", "get-group", num(group));
		CONTAINS(R.out, gcode);
		j = JSON("ref", "--json", "booking", "cancel-group", num(group));
		assert_string_equal(w_str(j, "status"), "cancelled");
		assert_int_equal(w_int(j, "seats"), 0);
		json_decref(j);
	}

	/* The waiting list. */
	j = JSON("ref", "--json", "waitlist", "join", "--offer-id", num(small),
		 "--beneficiary-id", num(ben), "--seats", "1");
	assert_string_equal(w_str(j, "status"), "waiting");
	assert_int_equal(w_int(j, "position"), 1);
	json_decref(j);
	OK("ref", "waitlist", "list", "--offer-id", num(small));
	CONTAINS(R.out, "waiting");
	OK("ref", "--csv", "waitlist", "list");
	rows = csv_parse(R.out);
	assert_true(csv_col(rows, "position") >= 0);
	json_decref(rows);
	/* The partner sees the demand, in numbers. */
	OK("partner", "--csv", "offer", "demand", num(small));
	rows = csv_parse(R.out);
	assert_int_equal(json_array_size(rows), 2);
	assert_string_equal(csv_cell(rows, 1, "waiting"), "1");
	assert_string_equal(csv_cell(rows, 1, "unmet_seats"), "1");
	json_decref(rows);

	/* The door: check-in with the code as typed, twice. */
	OK("partner", "offer", "guest-list", num(offer));
	CONTAINS(R.out, "Marie D.");
	CONTAINS(R.out, code);
	OK("partner", "--csv", "offer", "guest-list", num(offer));
	rows = csv_parse(R.out);
	assert_int_equal(json_array_size(rows), 2);
	assert_string_equal(csv_cell(rows, 1, "holder"), "Marie D.");
	json_decref(rows);
	{
		char lower[64];
		size_t i;

		for (i = 0; code[i] != '\0' && i + 1 < sizeof lower; i++)
			lower[i] = (char)(code[i] >= 'A' && code[i] <= 'Z'
					      ? code[i] + 32
					      : code[i]);
		lower[i] = '\0';
		OK("partner", "ticket", "check-in", lower);
	}
	CONTAINS(R.out, "checked in: Marie D., 2 seats");
	{
		/* As read aloud: blanks for dashes, O for 0, l for 1. */
		char typed[64];
		size_t i;

		for (i = 0; code[i] != '\0' && i + 1 < sizeof typed; i++)
			typed[i] = code[i] == '-'   ? ' '
				   : code[i] == '0' ? 'O'
				   : code[i] == '1' ? 'l'
						    : code[i];
		typed[i] = '\0';
		EXPECT(1, "partner", "ticket", "check-in", typed);
	}
	CONTAINS(R.err, "already used");
	EXPECT(1, "partner2", "ticket", "check-in", code); /* not logged in */
	/* A mistyped code is refused by the CLI itself, nothing sent
	 * (exit 2); a well-formed code that no booking has, by the server. */
	{
		char wrong[64];

		snprintf(wrong, sizeof wrong, "%s", code);
		wrong[0] = wrong[0] == '7' ? '8' : '7';
		EXPECT(2, "partner", "ticket", "check-in", wrong);
		CONTAINS(R.err, "Code de billet invalide (caractère de "
				"contrôle) / invalid ticket code (check "
				"character)");
	}
	EXPECT(2, "partner", "ticket", "check-in", "AAAA-BBBB-CCCC-DDDD");
	CONTAINS(R.err, "(caractère de contrôle)");
	EXPECT(2, "partner", "ticket", "check-in", "AAAA-BBBB-CCCC-DDDU");
	CONTAINS(R.err, "la lettre U");
	EXPECT(2, "partner", "ticket", "check-in", "AAAA-BBBB-CCCC");
	CONTAINS(R.err, "16 caractères attendus");
	EXPECT(1, "partner", "ticket", "check-in", "0000-0000-0000-0000");
	CONTAINS(R.err, "not_found");

	/* Cancel a booking (its id first) and the seats come back. */
	b = JSON("ref", "--json", "booking", "create", "--offer-id", num(offer),
		 "--beneficiary-id", num(ben2), "--seats", "3");
	booking = w_int(b, "id");
	json_decref(b);
	j = JSON("ref", "--json", "booking", "cancel", num(booking));
	assert_string_equal(w_str(j, "status"), "cancelled");
	json_decref(j);
	j = JSON("ref", "--json", "offer", "get", num(offer));
	assert_int_equal(w_int(j, "seats_available"), 38);
	json_decref(j);

	/* The partner's side. */
	j = JSON("partner", "--json", "offer", "set-seats", num(offer),
		 "--seats", "50");
	assert_int_equal(w_int(j, "seats_total"), 50);
	json_decref(j);
	EXPECT(1, "partner", "offer", "set-seats", num(offer), "--seats", "1");
	OK("partner", "offer", "update", num(offer), "--accessibility",
	   "Boucle magnétique");
	CONTAINS(R.out, "Boucle magnétique");
	j = JSON("partner", "--json", "offer", "cancel", num(small), "--reason",
		 "Artiste malade");
	assert_string_equal(w_str(j, "status"), "cancelled");
	json_decref(j);
	EXPECT(1, "partner", "offer", "close-attendance", num(offer));

	/* Everything held about a person, and erasing it. */
	j = JSON("ref", "--json", "beneficiary", "export", num(ben));
	assert_true(json_array_size(json_object_get(j, "bookings")) >= 1);
	json_decref(j);
	OK("ref", "beneficiary", "get", num(ben));
	CONTAINS(R.out, "outings 12m");
	j = JSON("ref", "--json", "beneficiary", "erase", num(ben2));
	assert_true(json_is_true(json_object_get(j, "erased")));
	json_decref(j);
}

static void
test_pages(void **state)
{
	json_t *j;
	size_t total;

	(void)state;
	j = JSON("admin", "--json", "partner", "list");
	total = json_array_size(json_object_get(j, "items"));
	json_decref(j);
	assert_true(total >= 3);
	OK("admin", "partner", "list", "--limit", "1");
	CONTAINS(R.err, "--cursor");
	j = JSON("admin", "--json", "--all", "partner", "list", "--limit", "1");
	assert_int_equal(json_array_size(json_object_get(j, "items")), total);
	assert_true(json_is_null(json_object_get(j, "next_cursor")));
	json_decref(j);
	OK("admin", "--csv", "partner", "list", "--limit", "1", "--all");
	{
		json_t *rows = csv_parse(R.out);

		assert_int_equal(json_array_size(rows), total + 1);
		json_decref(rows);
	}
}

static void
test_permanences(void **state)
{
	json_t *j, *it;
	json_int_t offer, ben, perm;
	char hash[65], seed[65];

	(void)state;
	offer = w_offer(W.partner, 10, 2, w_time(60 * W_DAY));
	ben = w_beneficiary(W.ref, "Lucie", "Martin");
	j = JSON("ref", "--json", "permanence", "schedule-series", "--weekday",
		 "tuesday", "--nth", "3", "--start-time", "10:00", "--end-time",
		 "12:00", "--from-date", "2019-04-01", "--count", "4",
		 "--location", "MDS");
	assert_int_equal(json_array_size(json_object_get(j, "items")), 4);
	it = json_array_get(json_object_get(j, "items"), 0);
	assert_string_equal(w_str(it, "local_starts_at"), "2019-04-16T10:00");
	json_decref(j);

	j = JSON("ref", "--json", "permanence", "schedule", "--starts-at",
		 w_time(10 * W_DAY), "--ends-at", w_time(10 * W_DAY + 7200),
		 "--title", "Permanence CLI");
	perm = w_int(j, "id");
	json_decref(j);
	OK("ref", "permanence", "reserve-block", num(perm), "--offer-id",
	   num(offer), "--seats", "4");
	OK("ref", "permanence", "open", num(perm));
	OK("ref", "permanence", "wish", num(perm), "--beneficiary-id", num(ben),
	   "--choices", num(offer), "--seats", "1", "--waitlist-all");
	/* The seed is the server's: get shows its SHA-256 before the draw,
	 * the draw shows the seed, and nobody can pass one. */
	j = JSON("ref", "--json", "permanence", "get", num(perm));
	assert_true(json_is_true(json_object_get(json_array_get(
	    json_object_get(j, "wishes"), 0), "waitlist_all")));
	snprintf(hash, sizeof hash, "%s", w_str(j, "seed_sha256"));
	assert_int_equal(strlen(hash), 64);
	json_decref(j);
	OK("ref", "permanence", "get", num(perm));
	CONTAINS(R.out, hash);
	EXPECT(2, "ref", "permanence", "draw", num(perm), "--seed", "cli");
	CONTAINS(R.err, "unknown option --seed");
	j = JSON("ref", "--json", "permanence", "draw", num(perm));
	snprintf(seed, sizeof seed, "%s", w_str(j, "seed"));
	assert_int_equal(strlen(seed), 64);
	it = json_array_get(json_object_get(j, "results"), 0);
	assert_int_equal(w_int(it, "offer_id"), offer);
	json_decref(j);
	{
		char cmd[256];

		snprintf(cmd, sizeof cmd, "printf %%s %s | sha256sum | "
		    "grep -q '^%s '", seed, hash);
		assert_int_equal(h_sh("%s", cmd), 0);
	}
	OK("ref", "permanence", "draw", num(perm));
	CONTAINS(R.out, seed);
	OK("ref", "permanence", "get", num(perm));
	CONTAINS(R.out, "Permanence CLI");
	CONTAINS(R.out, "drawn");
	CONTAINS(R.out, "claims open:     yes");  /* after the draw */
	OK("ref", "permanence", "list", "--state", "drawn");
	CONTAINS(R.out, "Permanence CLI");
	OK("ref", "permanence", "close", num(perm));
}

/* ------------------------------------------------------- raw and system */

static void
test_call_and_system(void **state)
{
	json_t *j;

	(void)state;
	j = JSON("anon", "--json", "call", "system.ping");
	assert_true(json_is_true(json_object_get(j, "pong")));
	json_decref(j);
	j = JSON("admin", "call", "partner.list", "{\"limit\": 1}", "--json");
	assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
	json_decref(j);
	j = JSON("admin", "--json", "call", "user.list", "--role", "admin");
	assert_true(json_array_size(json_object_get(j, "items")) >= 1);
	json_decref(j);
	EXPECT(1, "admin", "call", "no.such_method");
	CONTAINS(R.err, "method_not_found");
	EXPECT(1, "admin", "call", "offer.get", "{\"offer_id\": \"x\"}");
	CONTAINS(R.err, "offer_id");

	OK("anon", "ping");
	CONTAINS(R.out, "pong from");
	OK("anon", "system", "version");
	CONTAINS(R.out, "protocol 1");
	OK("anon", "health");
	CONTAINS(R.out, "database ok");
	j = JSON("anon", "--json", "health");
	assert_string_equal(w_str(j, "db"), "ok");
	json_decref(j);
}

/* ------------------------------------------------------------- events */

static void
test_events(void **state)
{
	char state_dir[400], line[8192], *err = NULL;
	size_t len = 0;
	int out[2], errfd, st, tries;
	json_t *ev;
	json_int_t offer;
	pid_t pid;

	(void)state;
	snprintf(state_dir, sizeof state_dir, "%s/state-partner", tmpdir);
	errfd = tmpfile_fd("events-err");
	if (pipe(out) != 0)
		h_fail("pipe: %s", strerror(errno));
	if ((pid = fork()) == -1)
		h_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, 0);
		dup2(out[1], 1);
		dup2(errfd, 2);
		close(out[0]);
		setenv("XDG_STATE_HOME", state_dir, 1);
		execl(h_env("ST_CLI"), "strapontin", "--json", "events",
		      "subscribe", "--topics",
		      "offer.published,offer.cancelled", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	/* Subscribed once it says so on stderr. */
	for (tries = 0; tries < 200; tries++) {
		free(err);
		err = slurp_fd(errfd);
		if (strstr(err, "watching") != NULL)
			break;
		usleep(50000);
	}
	if (strstr(err, "watching offer.published, offer.cancelled") == NULL)
		h_fail("events subscribe did not start:\n%s", err);
	offer = w_offer(W.partner, 5, 2, NULL);
	while (memchr(line, '\n', len) == NULL) {
		struct pollfd pfd = {out[0], POLLIN, 0};
		ssize_t n;

		if (len + 1 >= sizeof line || poll(&pfd, 1, 10000) <= 0)
			h_fail("no event within 10 s: %.*s", (int)len, line);
		if ((n = read(out[0], line + len, sizeof line - len - 1)) <= 0)
			h_fail("events subscribe ended: %s", slurp_fd(errfd));
		len += (size_t)n;
	}
	line[len] = '\0';
	ev = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
	if (ev == NULL)
		h_fail("not a JSON event: %s", line);
	assert_string_equal(w_str(ev, "topic"), "offer.published");
	assert_int_equal(w_int(json_object_get(ev, "data"), "id"), offer);
	json_decref(ev);

	/* SIGTERM (as Ctrl-C) ends it cleanly, exit 0. */
	kill(pid, SIGTERM);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	free(err);
	err = slurp_fd(errfd);
	close(errfd);
	close(out[0]);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		h_fail("events subscribe: status %d:\n%s", st, err);
	if (strstr(err, "Sanitizer") || strstr(err, "runtime error:"))
		h_fail("sanitizer report from the CLI:\n%s", err);
	free(err);

	EXPECT(2, "partner", "events", "subscribe", "--topics", "offer.sold");
	EXPECT(1, "nobody", "events", "subscribe", "--topics", "all");
	CONTAINS(R.err, "not logged in");
}

/* ----------------------------------------------------- where to connect */

static void
test_connection(void **state)
{
	char bad[64], conf[300], path[1024], other_ca[512], env1[600];
	FILE *f;

	(void)state;
	/* Nobody listening: 3. */
	snprintf(bad, sizeof bad, "127.0.0.1:%d", h_free_port());
	EXPECT(3, "admin", "--server", bad, "ping");
	CONTAINS(R.err, "cannot connect");
	snprintf(env1, sizeof env1, "STRAPONTIN_SERVER=%s", bad);
	EXPECT_ENV(3, "admin", ((const char *const[]){env1, NULL}), "ping");
	EXPECT_ENV(3, "admin", ((const char *const[]){env1, NULL}), "offer",
		   "list");

	/* A certificate the CA does not vouch for: 3, whatever is asked. */
	snprintf(other_ca, sizeof other_ca, "%s/other-ca.pem", h_certs_dir());
	EXPECT(3, "admin", "--ca", other_ca, "ping");
	CONTAINS(R.err, "certificate");
	EXPECT(3, "admin", "--ca", other_ca, "offer", "list");
	EXPECT(3, "admin", "--ca", "/nonexistent/ca.pem", "ping");
	/* No CA given: the system store does not know the test CA. */
	EXPECT_ENV(3, "admin", ((const char *const[]){"STRAPONTIN_CA", NULL}),
		   "ping");

	/* client.conf: used when nothing else is given... */
	snprintf(conf, sizeof conf, "%s/conf1", tmpdir);
	mkdir(conf, 0700);
	snprintf(path, sizeof path, "%s/strapontin", conf);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/strapontin/client.conf", conf);
	if ((f = fopen(path, "w")) == NULL)
		h_fail("%s: %s", path, strerror(errno));
	fprintf(f, "; the desk's settings\nserver = %s\nca = %s\n", server, ca);
	fclose(f);
	snprintf(env1, sizeof env1, "XDG_CONFIG_HOME=%s", conf);
	EXPECT_ENV(0, "admin",
		   ((const char *const[]){env1, "STRAPONTIN_SERVER",
					  "STRAPONTIN_CA", NULL}),
		   "offer", "list");
	/* ...the environment beats it... */
	{
		char env2[128];

		snprintf(env2, sizeof env2, "STRAPONTIN_SERVER=%s", bad);
		EXPECT_ENV(3, "admin",
			   ((const char *const[]){env1, env2, NULL}), "ping");
		/* ...and the command line beats both. */
		EXPECT_ENV(0, "admin",
			   ((const char *const[]){env1, env2, NULL}),
			   "--server", server, "ping");
	}
	/* A relative ca= is next to the file. */
	if ((f = fopen(path, "w")) == NULL)
		h_fail("%s: %s", path, strerror(errno));
	fprintf(f, "[client]\nserver=%s\nca=ca-copy.pem\n", server);
	fclose(f);
	{
		char cmd[1200];

		snprintf(cmd, sizeof cmd, "cp '%s' '%s/strapontin/ca-copy.pem'",
			 ca, conf);
		if (system(cmd) != 0)
			h_fail("%s failed", cmd);
	}
	EXPECT_ENV(0, "admin",
		   ((const char *const[]){env1, "STRAPONTIN_SERVER",
					  "STRAPONTIN_CA", NULL}),
		   "ping");
	/* A typo in the file is a usage error. */
	if ((f = fopen(path, "w")) == NULL)
		h_fail("%s: %s", path, strerror(errno));
	fprintf(f, "sever = %s\n", server);
	fclose(f);
	EXPECT_ENV(2, "admin", ((const char *const[]){env1, NULL}), "ping");
	CONTAINS(R.err, "sever");
	/* XDG_CONFIG_HOME unset: ~/.config. */
	snprintf(path, sizeof path, "%s/home/.config/strapontin", tmpdir);
	{
		char cmd[2400];

		snprintf(cmd, sizeof cmd,
			 "mkdir -p '%s' && printf 'server = %s\\n' > "
			 "'%s/client.conf'",
			 path, bad, path);
		if (system(cmd) != 0)
			h_fail("%s failed", cmd);
	}
	EXPECT_ENV(3, "admin",
		   ((const char *const[]){"XDG_CONFIG_HOME",
					  "STRAPONTIN_SERVER", NULL}),
		   "ping");
	unlink(path);
}

/* French by default, with times in Europe/Paris written the French way;
 * English when the locale or STRAPONTIN_LANG asks for it; --json the same
 * in both. */
/* auth mail-preferences: shows the notices, turns some off, "none"
 * turns them all back on; another role's kind is refused by the server,
 * an unknown one before anything is sent. */
static void
test_mail_preferences(void **state)
{
	static const char *const french[] = {"LANG", "LC_ALL", "LC_MESSAGES",
	    "STRAPONTIN_LANG", NULL};
	json_t *j;

	(void)state;
	OK("partner", "auth", "mail-preferences");
	CONTAINS(R.out, "guest_list");
	CONTAINS(R.out, "received");
	OK("partner", "auth", "mail-preferences", "--mail-off", "guest_list");
	CONTAINS(R.out, "off");
	j = JSON("partner", "--json", "auth", "whoami");
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    json_object_get(j, "user"), "mail_off"), 0)), "guest_list");
	json_decref(j);
	EXPECT_ENV(0, "partner", french, "auth", "mail-preferences");
	CONTAINS(R.out, "désactivé");
	OK("partner", "auth", "mail-preferences", "--mail-off", "none");
	j = JSON("partner", "--json", "auth", "mail-preferences");
	assert_int_equal(json_array_size(json_object_get(j, "mail_off")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "mail_kinds")), 2);
	json_decref(j);
	EXPECT(1, "partner", "auth", "mail-preferences", "--mail-off",
	    "referent_digest");
	CONTAINS(R.err, "mail_off");
	EXPECT(2, "ref", "auth", "mail-preferences", "--mail-off", "digest");
	OK("admin", "auth", "mail-preferences");
	CONTAINS(R.out, "no e-mail notice");
}

static void
test_language(void **state)
{
	static const char *const french[] = {"LANG", "LC_ALL", "LC_MESSAGES",
	    "STRAPONTIN_LANG", "TZ", NULL};
	static const char *const fr_locale[] = {"STRAPONTIN_LANG",
	    "LANG=fr_FR.UTF-8", "TZ", NULL};
	static const char *const english[] = {"STRAPONTIN_LANG",
	    "LANG=en_US.UTF-8", "TZ", NULL};
	static const char *const asked[] = {"LANG", "STRAPONTIN_LANG=en",
	    "TZ", NULL};
	const char *id;
	char *fr_out;
	json_t *j;

	(void)state;
	/* 08:30 UTC is 10:30 in Paris, summer time, on a Friday. */
	id = num(w_offer(W.partner, 12, 2, "2027-04-16T08:30:00Z"));

	EXPECT_ENV(0, "ref", french, "offer", "get", id);
	CONTAINS(R.out, "vendredi 16 avril 2027, 10 h 30");
	CONTAINS(R.out, "places libres");
	CONTAINS(R.out, "publiée");
	fr_out = strdup(R.out);
	EXPECT_ENV(0, "ref", fr_locale, "offer", "get", id);
	assert_string_equal(R.out, fr_out);
	free(fr_out);
	/* a table: the short form, French headers */
	EXPECT_ENV(0, "ref", french, "offer", "list", "--from",
	    "2027-04-16", "--to", "2027-04-17");
	CONTAINS(R.out, "DÉBUT");
	CONTAINS(R.out, "16/04/2027 10 h 30");
	/* a refusal before anything is sent */
	EXPECT_ENV(2, "ref", french, "offer", "get", "douze");
	CONTAINS(R.err, "attend un identifiant");
	/* a refusal of the server: its meaning in French, then its words */
	EXPECT_ENV(1, "ref", french, "offer", "get", "999999");
	CONTAINS(R.err, "introuvable / ");
	EXPECT_ENV(0, "anon", french, "--help");
	CONTAINS(R.out, "commandes :");

	EXPECT_ENV(0, "ref", english, "offer", "get", id);
	CONTAINS(R.out, "2027-04-16 10:30 CEST");
	CONTAINS(R.out, "seats available");
	CONTAINS(R.out, "published");
	assert_null(strstr(R.out, "avril"));
	EXPECT_ENV(0, "ref", asked, "offer", "get", id);
	CONTAINS(R.out, "2027-04-16 10:30 CEST");
	EXPECT_ENV(2, "ref", english, "offer", "get", "douze");
	CONTAINS(R.err, "wants an id");

	/* Machines read the same thing in every language. */
	EXPECT_ENV(0, "ref", french, "--json", "offer", "get", id);
	j = json_loads(R.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j,
	    "starts_at")), "2027-04-16T08:30:00Z");
	assert_string_equal(json_string_value(json_object_get(j, "status")),
	    "published");
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_covers_daemon),
	    cmocka_unit_test(test_help_and_man_page),
	    cmocka_unit_test(test_completion),
	    cmocka_unit_test(test_usage_errors),
	    cmocka_unit_test(test_session_file),
	    cmocka_unit_test(test_expired_session),
	    cmocka_unit_test(test_password_change),
	    cmocka_unit_test(test_password_on_terminal),
	    cmocka_unit_test(test_admin_commands),
	    cmocka_unit_test(test_offers_and_bookings),
	    cmocka_unit_test(test_pages),
	    cmocka_unit_test(test_permanences),
	    cmocka_unit_test(test_call_and_system),
	    cmocka_unit_test(test_events),
	    cmocka_unit_test(test_connection),
	    cmocka_unit_test(test_language),
	    cmocka_unit_test(test_mail_preferences),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
