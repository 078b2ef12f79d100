/*
 * Where to connect, and the saved session.
 *
 * Settings come from, weakest first: built-in defaults, the file
 * $XDG_CONFIG_HOME/strapontin/client.conf (~/.config if unset), the
 * environment (STRAPONTIN_SERVER, STRAPONTIN_CA), then the command line.
 *
 * The session is $XDG_STATE_HOME/strapontin/token (~/.local/state if
 * unset): the token and the server it belongs to. It is a credential: the
 * directory is 0700, the file 0600, written under umask 077 to a fresh
 * O_EXCL file that is renamed over the old one, and a file that others
 * could read, or that is not ours, or a symbolic link, is not used.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "cli.h"

#define DEFAULT_SERVER "127.0.0.1:7443"

static const char *
home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h != NULL && h[0] == '/')
		return h;
	if ((pw = getpwuid(getuid())) != NULL && pw->pw_dir != NULL)
		return pw->pw_dir;
	return "/";
}

/* $VAR if set and absolute (the XDG rule), else ~/fallback. */
static void
xdg_dir(const char *var, const char *fallback, char *buf, size_t len)
{
	const char *v = getenv(var);

	if (v != NULL && v[0] == '/')
		snprintf(buf, len, "%s", v);
	else
		snprintf(buf, len, "%s/%s", home_dir(), fallback);
}

/* ---------------------------------------------------------------- server */

/* "host:port", "[v6]:port", "host", "[v6]" or a bare v6 address; sets
 * host, port and the canonical cli->server ("[::1]:7443"). */
int
cli_parse_server(struct cli *cli, const char *s)
{
	const char *colon, *end;
	unsigned char a6[16];
	size_t hl;
	bool v6 = false;

	snprintf(cli->port, sizeof cli->port, "7443");
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		hl = (size_t)(end - s - 1);
		if (end[1] == ':')
			colon = end + 1;
		else if (end[1] == '\0')
			colon = NULL;
		else
			return -1;
		s++;
		v6 = true;
	} else {
		colon = strrchr(s, ':');
		if (colon != NULL && strchr(s, ':') != colon) {
			/* Several colons without []: an IPv6 address alone. */
			if (inet_pton(AF_INET6, s, a6) != 1)
				return -1;
			colon = NULL;
			v6 = true;
		}
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hl == 0 || hl >= sizeof cli->host)
		return -1;
	memcpy(cli->host, s, hl);
	cli->host[hl] = '\0';
	if (colon != NULL) {
		char *e;
		long p;

		if (colon[1] == '\0' || strlen(colon + 1) >= sizeof cli->port ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return -1;
		p = strtol(colon + 1, &e, 10);
		if (p < 1 || p > 65535)
			return -1;
		snprintf(cli->port, sizeof cli->port, "%ld", p);
	}
	snprintf(cli->server, sizeof cli->server, "%s%s%s:%s", v6 ? "[" : "",
		 cli->host, v6 ? "]" : "", cli->port);
	cli->opt.host = cli->host;
	cli->opt.port = cli->port;
	return 0;
}

/* ------------------------------------------------------------ client.conf */

struct conf_ctx {
	struct cli *cli;
	char dir[PATH_MAX]; /* of the file, for relative paths */
	char server[300];
	int bad_line;
	char bad_key[64];
};

/* "~/x" is in the home directory, "x" next to the configuration file. */
static bool
conf_path(struct conf_ctx *ctx, const char *name, const char *v, char *out,
	  size_t len)
{
	int n;

	if (v[0] == '~' && v[1] == '/')
		n = snprintf(out, len, "%s/%s", home_dir(), v + 2);
	else if (v[0] == '/' || v[0] == '\0')
		n = snprintf(out, len, "%s", v);
	else
		n = snprintf(out, len, "%s/%s", ctx->dir, v);
	if (n < 0 || (size_t)n >= len) {
		snprintf(ctx->bad_key, sizeof ctx->bad_key, "%s (too long)",
			 name);
		return false;
	}
	return true;
}

static int
conf_handler(void *user, const char *section, const char *name,
	     const char *value)
{
	struct conf_ctx *ctx = user;
	struct cli *cli = ctx->cli;

	if (section[0] != '\0' && strcmp(section, "client") != 0) {
		snprintf(ctx->bad_key, sizeof ctx->bad_key, "[%s]", section);
		return 0;
	}
	if (strcmp(name, "server") == 0)
		snprintf(ctx->server, sizeof ctx->server, "%s", value);
	else if (strcmp(name, "ca") == 0)
		return conf_path(ctx, name, value, cli->ca, sizeof cli->ca);
	else if (strcmp(name, "cert") == 0)
		return conf_path(ctx, name, value, cli->cert, sizeof cli->cert);
	else if (strcmp(name, "key") == 0)
		return conf_path(ctx, name, value, cli->key, sizeof cli->key);
	else if (strcmp(name, "timeout") == 0) {
		char *e;
		long s = strtol(value, &e, 10);

		if (*e != '\0' || s < 1 || s > 86400) {
			snprintf(ctx->bad_key, sizeof ctx->bad_key,
				 "timeout = %.40s", value);
			return 0;
		}
		cli->opt.timeout_ms = (int)s * 1000;
	} else {
		snprintf(ctx->bad_key, sizeof ctx->bad_key, "%s", name);
		return 0;
	}
	return 1;
}

int
cli_conf_load(struct cli *cli)
{
	struct conf_ctx ctx;
	char path[PATH_MAX + 32];
	const char *env;
	FILE *f;
	int line;

	memset(&ctx, 0, sizeof ctx);
	ctx.cli = cli;
	snprintf(ctx.server, sizeof ctx.server, "%s", DEFAULT_SERVER);
	xdg_dir("XDG_CONFIG_HOME", ".config", ctx.dir, sizeof ctx.dir);
	if (strlen(ctx.dir) + sizeof "/strapontin" < sizeof ctx.dir)
		strcat(ctx.dir, "/strapontin");
	snprintf(path, sizeof path, "%s/client.conf", ctx.dir);
	if ((f = fopen(path, "re")) != NULL) {
		line = ini_parse_file(f, conf_handler, &ctx);
		fclose(f);
		if (line != 0) {
			cli_warnx(_("%s: line %d: %s%s"), path, line,
				  ctx.bad_key[0] ? "unknown or bad setting "
						 : "syntax error",
				  ctx.bad_key);
			return EXIT_USAGE;
		}
	} else if (errno != ENOENT) {
		cli_warnx("%s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	if ((env = getenv("STRAPONTIN_SERVER")) != NULL && env[0] != '\0')
		snprintf(ctx.server, sizeof ctx.server, "%s", env);
	if ((env = getenv("STRAPONTIN_CA")) != NULL && env[0] != '\0')
		snprintf(cli->ca, sizeof cli->ca, "%s", env);
	/* Kept as text until the command line had its say. */
	snprintf(cli->server, sizeof cli->server, "%s", ctx.server);
	return EXIT_OK;
}

/* ---------------------------------------------------------------- session */

static char session_dir[PATH_MAX];
static char session_file[PATH_MAX + 16];

const char *
cli_session_path(void)
{
	if (session_file[0] == '\0') {
		xdg_dir("XDG_STATE_HOME", ".local/state", session_dir,
			sizeof session_dir);
		if (strlen(session_dir) + sizeof "/strapontin" <
		    sizeof session_dir)
			strcat(session_dir, "/strapontin");
		snprintf(session_file, sizeof session_file, "%s/token",
			 session_dir);
	}
	return session_file;
}

static bool
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7F)
			return false;
	return true;
}

static int
session_handler(void *user, const char *section, const char *name,
		const char *value)
{
	struct cli_session *s = user;
	char *dst;
	size_t len;

	(void)section;
	if (strcmp(name, "server") == 0) {
		dst = s->server;
		len = sizeof s->server;
	} else if (strcmp(name, "email") == 0) {
		dst = s->email;
		len = sizeof s->email;
	} else if (strcmp(name, "token") == 0) {
		dst = s->token;
		len = sizeof s->token;
	} else if (strcmp(name, "expires_at") == 0) {
		dst = s->expires_at;
		len = sizeof s->expires_at;
	} else
		return 1; /* a later version's field */
	if (strlen(value) >= len || !printable(value))
		return 0;
	memcpy(dst, value, strlen(value) + 1);
	return 1;
}

void
cli_session_load(struct cli *cli)
{
	const char *path = cli_session_path();
	struct stat st;
	FILE *f;
	int fd;

	memset(&cli->session, 0, sizeof cli->session);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno != ENOENT)
			cli_warnx(_("cannot read %s: %s"), path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		cli_warnx(_("not using %s: it must be a file of yours that only "
			  "you can read (mode 0600); log in again"),
			  path);
		close(fd);
		return;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		return;
	}
	if (ini_parse_file(f, session_handler, &cli->session) != 0 ||
	    cli->session.token[0] == '\0' || cli->session.server[0] == '\0') {
		cli_warnx(_("not using %s: it is damaged; log in again"), path);
		memset(&cli->session, 0, sizeof cli->session);
		fclose(f);
		return;
	}
	fclose(f);
	cli->session.loaded = true;
}

/* mkdir -p, every directory made 0700. */
static int
make_dirs(const char *dir)
{
	char buf[PATH_MAX], *p;

	if (strlen(dir) >= sizeof buf)
		return -1;
	memcpy(buf, dir, strlen(dir) + 1);
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int
cli_session_save(struct cli *cli)
{
	const char *path = cli_session_path();
	char tmp[PATH_MAX + 32], *text = NULL;
	struct stat st;
	mode_t old_mask;
	int fd = -1, len, r = EXIT_REFUSED;

	old_mask = umask(077);
	if (make_dirs(session_dir) != 0) {
		cli_warnx(_("cannot make %s: %s"), session_dir, strerror(errno));
		goto out;
	}
	/* Our own directory, closed to others, whatever it was before. */
	if (lstat(session_dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid()) {
		cli_warnx(_("%s is not a directory of yours: session not saved"),
			  session_dir);
		goto out;
	}
	if ((st.st_mode & 077) != 0 && chmod(session_dir, 0700) != 0) {
		cli_warnx(_("chmod %s: %s"), session_dir, strerror(errno));
		goto out;
	}
	len = asprintf(&text,
		       "# strapontin session: a password for as long as it "
		       "lasts. Do not share.\n"
		       "server=%s\nemail=%s\ntoken=%s\nexpires_at=%s\n",
		       cli->session.server, cli->session.email,
		       cli->session.token, cli->session.expires_at);
	if (len < 0) {
		text = NULL;
		goto out;
	}
	/* A new file (O_EXCL: nothing planted there can be reused), filled,
	 * then renamed over the old one: never half written, never open to
	 * others even for an instant. */
	snprintf(tmp, sizeof tmp, "%s.%ld.new", path, (long)getpid());
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd == -1) {
		cli_warnx(_("cannot create %s: %s"), tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) != 0 || write(fd, text, (size_t)len) != len ||
	    fsync(fd) != 0) {
		cli_warnx(_("cannot write %s: %s"), tmp, strerror(errno));
		goto out_unlink;
	}
	if (close(fd) != 0) {
		fd = -1;
		cli_warnx(_("cannot write %s: %s"), tmp, strerror(errno));
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		cli_warnx(_("cannot rename %s to %s: %s"), tmp, path,
			  strerror(errno));
		goto out_unlink;
	}
	r = EXIT_OK;
	goto out;
out_unlink:
	(void)unlink(tmp);
out:
	if (fd != -1)
		close(fd);
	if (text != NULL) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	umask(old_mask);
	return r;
}

bool
cli_session_delete(struct cli *cli)
{
	const char *path = cli_session_path();

	explicit_bzero(&cli->session, sizeof cli->session);
	if (unlink(path) == 0)
		return true;
	if (errno != ENOENT)
		cli_warnx(_("cannot remove %s: %s"), path, strerror(errno));
	return false;
}
