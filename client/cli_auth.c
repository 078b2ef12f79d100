/*
 * The conversation with the server: connecting, resuming the saved
 * session, one call with its refusal said in one sentence, and the
 * commands that manage the session itself (login, logout, whoami,
 * change-password).
 *
 * Passwords: STRAPONTIN_PASSWORD (login only), else asked on the terminal
 * without echo, else one line of standard input. Never from argv, where
 * ps(1) and the shell history would keep them. Buffers holding them are
 * wiped after use.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"

#define SECRET_MAX 1024

int
cli_connect(struct cli *cli)
{
	struct st_error err = {0};

	if (cli->client != NULL)
		return EXIT_OK;
	cli->client = st_connect(&cli->opt, &err);
	if (cli->client == NULL) {
		cli_warnx("%s", st_strerror(&err));
		return err.status == ST_ERR_USAGE ? EXIT_USAGE : EXIT_CONNECT;
	}
	return EXIT_OK;
}

static int
status_exit(int status)
{
	switch (status) {
	case ST_OK:
		return EXIT_OK;
	case ST_ERR_SERVER:
		return EXIT_REFUSED;
	case ST_ERR_USAGE:
		return EXIT_USAGE;
	default:
		return EXIT_CONNECT;
	}
}

static void
say_not_logged_in(struct cli *cli)
{
	if (cli->session.loaded &&
	    strcmp(cli->session.server, cli->server) != 0)
		cli_warnx(_("not logged in to %s (your session is on %s): run "
			  "'strapontin login EMAIL'"),
			  cli->server, cli->session.server);
	else
		cli_warnx(_("not logged in: run 'strapontin login EMAIL' first"));
}

/* What each refusal means, for people who do not read the server's
 * English: said first, the server's own sentence after it. */
static const struct {
	const char *reason;
	const char *meaning;
} meanings[] = {
    {"invalid_params", N_("refused parameter")},
    {"unauthenticated", N_("not logged in")},
    {"forbidden", N_("your role may not do this")},
    {"not_found", N_("not found")},
    {"sold_out", N_("sold out")},
    {"deadline_passed", N_("the booking deadline has passed")},
    {"offer_cancelled", N_("the offer was cancelled")},
    {"limit_reached", N_("a limit was reached")},
    {"duplicate", N_("already done")},
    {"already_used", N_("already used")},
    {"wrong_offer", N_("this ticket is for another show")},
    {"permanence_state", N_("not possible in the permanence's state")},
    {"seats_taken", N_("seats are taken")},
    {"waitlist_state", N_("not possible in the entry's state")},
    {"too_large", N_("answer too large: ask for less")},
    {"rate_limited", N_("too many attempts: try again later")},
    {"unavailable", N_("the server is unavailable: try again shortly")},
    {"timeout", N_("the request took too long and was stopped")},
};

static void
say_server_words(const struct st_error *err)
{
	size_t i;

	if (cli_french())
		for (i = 0; i < sizeof meanings / sizeof meanings[0]; i++)
			if (strcmp(meanings[i].reason, err->reason) == 0) {
				cli_warnx("%s / %s", _(meanings[i].meaning),
				    st_strerror(err));
				return;
			}
	cli_warnx("%s", st_strerror(err));
}

/* The sentence for a refusal; some reasons say more than the server's
 * message, or mean something about the session. */
static void
say_refusal(struct cli *cli, struct st_error *err)
{
	const json_t *at;
	char buf[64];
	/* Anonymous commands and raw calls: the server's own words. */
	bool anon = cli->cmd != NULL && ((cli->cmd->flags & CMD_ANON) ||
					 cli->cmd->fn == cli_cmd_call);

	if (strcmp(err->reason, "unauthenticated") == 0 &&
	    err->field[0] == '\0' && !anon) {
		if (cli->resumed) {
			/* The token died between resume and now. */
			cli_warnx(_("session expired: log in again"));
			cli_session_delete(cli);
		} else
			say_not_logged_in(cli);
		return;
	}
	if (strcmp(err->reason, "already_used") == 0 &&
	    json_is_string(at = json_object_get(err->data, "checked_in_at"))) {
		cli_warnx(_("already used: this ticket was checked in at %s"),
			  cli_time_local(json_string_value(at), true, buf,
					 sizeof buf));
		return;
	}
	say_server_words(err);
}

int
cli_call(struct cli *cli, const char *method, json_t *params, json_t **result)
{
	struct st_error err = {0};
	int r, st;

	*result = NULL;
	if ((r = cli_connect(cli)) != EXIT_OK)
		return r;
	st = st_call(cli->client, method, params, result, &err);
	if (st == ST_OK)
		return EXIT_OK;
	if (st == ST_ERR_SERVER)
		say_refusal(cli, &err);
	else
		cli_warnx("%s: %s", cli->server, st_strerror(&err));
	st_error_clear(&err);
	return status_exit(st);
}

int
cli_resume(struct cli *cli)
{
	struct st_error err = {0};
	json_t *params, *result = NULL;
	int r, st;

	if (cli->resumed)
		return EXIT_OK;
	cli_session_load(cli);
	/* A token goes only to the server that gave it. */
	if (!cli->session.loaded ||
	    strcmp(cli->session.server, cli->server) != 0)
		return EXIT_OK;
	if ((r = cli_connect(cli)) != EXIT_OK)
		return r;
	params = json_pack("{ss}", "token", cli->session.token);
	st = st_call(cli->client, "auth.resume", params, &result, &err);
	json_decref(params);
	if (st == ST_OK) {
		const char *exp =
		    json_string_value(json_object_get(result, "expires_at"));

		if (exp != NULL)
			snprintf(cli->session.expires_at,
				 sizeof cli->session.expires_at, "%s", exp);
		json_decref(result);
		cli->resumed = true;
		return EXIT_OK;
	}
	if (st == ST_ERR_SERVER && strcmp(err.reason, "unauthenticated") == 0) {
		/* Expired, revoked, or the account disabled: the file is of
		 * no use any more. */
		cli_warnx(_("session expired: log in again"));
		cli_session_delete(cli);
	} else if (st == ST_ERR_SERVER)
		cli_warnx("%s", st_strerror(&err));
	else
		cli_warnx("%s: %s", cli->server, st_strerror(&err));
	st_error_clear(&err);
	return status_exit(st);
}

/* ----------------------------------------------------------- passwords */

static struct termios saved_tio;
static volatile sig_atomic_t tio_changed;

/* A signal while echo is off: put the terminal back, then die of it. */
static void
restore_tty(int sig)
{
	if (tio_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line from fd, without its "\n" (and "\r"); -1 at EOF with nothing,
 * or if it does not fit. Byte by byte: nothing past the line is taken
 * from standard input. */
static int
read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;
	char c;

	for (;;) {
		r = read(fd, &c, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (n == 0)
				return -1;
			break;
		}
		if (c == '\n')
			break;
		if (n + 1 >= len) {
			explicit_bzero(buf, len);
			return -1;
		}
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (int)n;
}

static int
ask(const char *prompt, char *buf, size_t len)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
	struct sigaction sa, old[sizeof sigs / sizeof sigs[0]];
	struct termios t;
	size_t i;
	int r;

	if (tcgetattr(STDIN_FILENO, &saved_tio) != 0)
		return read_line(STDIN_FILENO, buf, len);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = restore_tty;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, &old[i]);
	t = saved_tio;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	t.c_lflag |= ECHONL; /* the newline still shows */
	/* Echo off before the prompt: whatever is typed after seeing it
	 * stays hidden. */
	tio_changed = 1;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
	fputs(prompt, stderr);
	fflush(stderr);
	r = read_line(STDIN_FILENO, buf, len);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	tio_changed = 0;
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &old[i], NULL);
	return r;
}

/* A secret: env (if given and set), else the terminal (twice when
 * confirm), else a line of standard input. EXIT_OK or EXIT_USAGE. */
static int
read_secret(const char *env, const char *prompt, bool confirm, char *buf,
	    size_t len)
{
	char again[SECRET_MAX], p2[128];
	const char *v;
	int n;

	if (env != NULL && (v = getenv(env)) != NULL && v[0] != '\0') {
		if (strlen(v) >= len) {
			cli_warnx(_("%s is too long"), env);
			return EXIT_USAGE;
		}
		memcpy(buf, v, strlen(v) + 1);
		return EXIT_OK;
	}
	if (!isatty(STDIN_FILENO)) {
		if (read_line(STDIN_FILENO, buf, len) <= 0) {
			cli_warnx(_("%s: expected a line on standard input"),
				  prompt);
			return EXIT_USAGE;
		}
		return EXIT_OK;
	}
	if ((n = ask(prompt, buf, len)) <= 0) {
		cli_warnx("%s", n == 0 ? "empty password" : "no password read");
		return EXIT_USAGE;
	}
	if (!confirm)
		return EXIT_OK;
	snprintf(p2, sizeof p2, "Again: ");
	n = ask(p2, again, sizeof again);
	if (n < 0 || strcmp(again, buf) != 0) {
		explicit_bzero(again, sizeof again);
		explicit_bzero(buf, len);
		cli_warnx(_("the two passwords differ"));
		return EXIT_USAGE;
	}
	explicit_bzero(again, sizeof again);
	return EXIT_OK;
}

int
cli_fill_secrets(struct cli *cli, const struct cli_command *cmd, json_t *params)
{
	struct cli_param ps[CLI_MAX_PARAMS];
	char buf[SECRET_MAX], prompt[300];
	const char *email;
	size_t n, i;
	bool login = cmd->fn == cli_cmd_login, confirm;
	int r;

	if (cli_params_parse(cmd->params, ps, CLI_MAX_PARAMS, &n) != 0)
		return EXIT_USAGE;
	email = json_string_value(json_object_get(params, "email"));
	for (i = 0; i < n; i++) {
		if (!ps[i].secret)
			continue;
		confirm = false;
		if (login)
			snprintf(prompt, sizeof prompt,
				 "Password for %s: ", email ? email : "?");
		else if (strcmp(ps[i].name, "old_password") == 0)
			snprintf(prompt, sizeof prompt, "Current password: ");
		else if (strcmp(ps[i].name, "new_password") == 0) {
			snprintf(prompt, sizeof prompt, "New password: ");
			confirm = true;
		} else if (strcmp(ps[i].name, "password") == 0) {
			snprintf(prompt, sizeof prompt,
				 "Password for the new account %s: ",
				 email ? email : "");
			confirm = true;
		} else
			snprintf(prompt, sizeof prompt, "%.40s: ", ps[i].name);
		r = read_secret(login ? "STRAPONTIN_PASSWORD" : NULL, prompt,
				confirm, buf, sizeof buf);
		if (r != EXIT_OK)
			return r;
		json_object_set_new(params, ps[i].name, json_string(buf));
		explicit_bzero(buf, sizeof buf);
		if (json_object_get(params, ps[i].name) == NULL ||
		    json_is_null(json_object_get(params, ps[i].name))) {
			cli_warnx(_("%s: not valid UTF-8"), ps[i].name);
			return EXIT_USAGE;
		}
	}
	return EXIT_OK;
}

/* Jansson keeps its own copy of strings; wipe it before letting go. */
static void
wipe_secrets(const struct cli_command *cmd, json_t *params)
{
	struct cli_param ps[CLI_MAX_PARAMS];
	json_t *v;
	size_t n, i;

	if (params == NULL ||
	    cli_params_parse(cmd->params, ps, CLI_MAX_PARAMS, &n) != 0)
		return;
	for (i = 0; i < n; i++) {
		if (!ps[i].secret)
			continue;
		v = json_object_get(params, ps[i].name);
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v),
					json_string_length(v));
	}
}

/* ------------------------------------------------------------- commands */

int
cli_cmd_login(struct cli *cli, const struct cli_command *cmd, json_t *params,
	      int argc, char **argv)
{
	json_t *result = NULL, *old, *user;
	const char *token, *exp;
	char buf[64];
	int r;

	(void)argc;
	(void)argv;
	if ((r = cli_fill_secrets(cli, cmd, params)) != EXIT_OK)
		goto out;
	/* A new login replaces the saved session: end the old one on the
	 * server too, rather than leave it alive until it expires. */
	cli_session_load(cli);
	if (cli->session.loaded &&
	    strcmp(cli->session.server, cli->server) == 0 &&
	    cli_connect(cli) == EXIT_OK) {
		struct st_error err = {0};

		old = json_pack("{ss}", "token", cli->session.token);
		if (st_call(cli->client, "auth.resume", old, NULL, &err) ==
		    ST_OK)
			st_call(cli->client, "auth.logout", NULL, NULL, &err);
		st_error_clear(&err);
		json_decref(old);
		/* A bound connection cannot log in as someone else. */
		st_close(cli->client);
		cli->client = NULL;
	}
	if ((r = cli_call(cli, "auth.login", params, &result)) != EXIT_OK)
		goto out;
	token = json_string_value(json_object_get(result, "token"));
	exp = json_string_value(json_object_get(result, "expires_at"));
	user = json_object_get(result, "user");
	if (token == NULL || strlen(token) >= sizeof cli->session.token) {
		cli_warnx(_("the server sent no usable token"));
		r = EXIT_CONNECT;
		goto out;
	}
	memset(&cli->session, 0, sizeof cli->session);
	snprintf(cli->session.server, sizeof cli->session.server, "%s",
		 cli->server);
	snprintf(cli->session.email, sizeof cli->session.email, "%s",
		 json_string_value(json_object_get(params, "email")));
	snprintf(cli->session.token, sizeof cli->session.token, "%s", token);
	snprintf(cli->session.expires_at, sizeof cli->session.expires_at, "%s",
		 exp ? exp : "");
	if ((r = cli_session_save(cli)) != EXIT_OK) {
		/* Unkept, the token would only linger on the server. */
		json_t *res2 = NULL;

		cli_call(cli, "auth.logout", NULL, &res2);
		json_decref(res2);
		goto out;
	}
	/* The token is in the session file; it is not printed, not even
	 * with --json, so that it does not end up in a terminal's
	 * scroll-back or a script's log. */
	json_object_del(result, "token");
	if (cli->format == FMT_JSON)
		cli_print_json(result);
	else
		printf(_("logged in to %s as %s <%s>, %s, until %s\n"),
		       cli->server,
		       json_string_value(json_object_get(user, "display_name"))
			   ?: "?",
		       json_string_value(json_object_get(user, "email")) ?: "?",
		       json_string_value(json_object_get(user, "role")) ?: "?",
		       exp ? cli_time_local(exp, true, buf, sizeof buf) : "?");
out:
	wipe_secrets(cmd, params);
	explicit_bzero(&cli->session.token, sizeof cli->session.token);
	json_decref(result);
	return r;
}

int
cli_cmd_logout(struct cli *cli, const struct cli_command *cmd, json_t *params,
	       int argc, char **argv)
{
	json_t *result = NULL;
	int r;

	(void)cmd;
	(void)params;
	(void)argc;
	(void)argv;
	cli_session_load(cli);
	if (!cli->session.loaded) {
		printf(_("not logged in\n"));
		return EXIT_OK;
	}
	/* The session is ended where it was opened, whatever the current
	 * server setting says. */
	if (strcmp(cli->session.server, cli->server) != 0 &&
	    cli_parse_server(cli, cli->session.server) != 0) {
		cli_session_delete(cli);
		printf(_("logged out (the saved session was damaged)\n"));
		return EXIT_OK;
	}
	r = cli_resume(cli);
	if (r == EXIT_REFUSED) {
		/* Expired already: the file is gone, nothing else to do. */
		printf(_("logged out\n"));
		return EXIT_OK;
	}
	if (r == EXIT_OK)
		r = cli_call(cli, "auth.logout", NULL, &result);
	json_decref(result);
	cli_session_delete(cli);
	if (r == EXIT_OK) {
		printf(_("logged out\n"));
		return EXIT_OK;
	}
	cli_warnx(_("the session was forgotten here, but %s could not end it: "
		  "it ends by itself when it expires"),
		  cli->server);
	return r;
}

int
cli_cmd_whoami(struct cli *cli, const struct cli_command *cmd, json_t *params,
	       int argc, char **argv)
{
	json_t *result = NULL;
	int r;

	(void)params;
	(void)argc;
	(void)argv;
	if ((r = cli_resume(cli)) != EXIT_OK)
		return r;
	if (!cli->resumed) {
		say_not_logged_in(cli);
		return EXIT_REFUSED;
	}
	if ((r = cli_call(cli, cmd->method, NULL, &result)) != EXIT_OK)
		return r;
	cli_print(cli, cmd, result);
	json_decref(result);
	return EXIT_OK;
}

int
cli_cmd_password(struct cli *cli, const struct cli_command *cmd, json_t *params,
		 int argc, char **argv)
{
	json_t *result = NULL;
	int r;

	(void)argc;
	(void)argv;
	/* Resumed first: no point asking for passwords without a session. */
	if ((r = cli_resume(cli)) != EXIT_OK)
		goto out;
	if (!cli->resumed) {
		say_not_logged_in(cli);
		r = EXIT_REFUSED;
		goto out;
	}
	if ((r = cli_fill_secrets(cli, cmd, params)) != EXIT_OK)
		goto out;
	if ((r = cli_call(cli, cmd->method, params, &result)) != EXIT_OK)
		goto out;
	if (cli->format == FMT_JSON)
		cli_print_json(result);
	else
		printf(_("password changed; your other sessions have ended\n"));
out:
	wipe_secrets(cmd, params);
	json_decref(result);
	return r;
}
