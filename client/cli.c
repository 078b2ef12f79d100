/*
 * strapontin: command-line client for strapontind.
 *
 *	strapontin [global options] NOUN VERB [ID] [--field value ...]
 *	strapontin call METHOD ['{json params}' | --field value ...]
 *
 * Every command is a row of cli_commands[] (cli_table.c): the words that
 * name it, the JSON-RPC method, the param that a first bare argument
 * gives, and the params. Most commands need no code of their own:
 * cli_run_method() turns the flags into params, resumes the saved session,
 * calls, and prints the result through the row's view (cli_out.c).
 *
 * Exit codes: 0 success, 1 the server refused (reason on stderr; also an
 * ended session), 2 usage (nothing was sent), 3 no conversation with the
 * server (connect, TLS, lost connection, timeout, nonsense). The server's
 * certificate and name are always verified; there is deliberately no way
 * to turn that off.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "cli.h"

#ifndef STRAPONTIN_VERSION
#define STRAPONTIN_VERSION "unknown"
#endif
#ifndef STRAPONTIN_PROTOCOL
#define STRAPONTIN_PROTOCOL 1
#endif

/* Pages fetched by --all at most: a server that keeps answering a cursor
 * must not keep us forever. */
#define MAX_PAGES 10000

void
cli_warnx(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("strapontin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ----------------------------------------------------------------- help */

static void
usage(FILE *f)
{
	const char *const *nouns = cli_nouns();
	size_t i;

	fprintf(f,
		_("usage: strapontin [options] NOUN VERB [ID] [--field value "
		"...]\n"
		"       strapontin [options] COMMAND [ARGS]\n"
		"\n"
		"options:\n"
		"  --server HOST:PORT  the server (client.conf, "
		"$STRAPONTIN_SERVER; 127.0.0.1:7443)\n"
		"  --ca FILE           CA that signed the server's certificate "
		"(client.conf,\n"
		"                      $STRAPONTIN_CA; else the system's)\n"
		"  --cert FILE, --key FILE  client certificate and key\n"
		"  --timeout SECONDS   per request (default 10)\n"
		"  --json              print the result as JSON, exactly\n"
		"  --csv               print lists as CSV\n"
		"  --all               lists: every page, not only the "
		"first\n"
		"  --help, --version\n"
		"\n"
		"commands:\n"));
	for (i = 0; i < cli_ncommands; i++)
		if (cli_commands[i].verb == NULL)
			fprintf(f, "  %-14s %s\n", cli_commands[i].noun,
				_(cli_commands[i].help));
	fprintf(f, _("\nnouns (strapontin NOUN --help lists the verbs):\n"));
	for (i = 0; nouns[i] != NULL; i++)
		fprintf(f, "  %-14s %s\n", nouns[i], _(cli_noun_help(nouns[i])));
	fprintf(f,
		_("\nexamples:\n"
		"  strapontin login ref@example.org\n"
		"  strapontin offer list --from today --available-only\n"
		"  strapontin booking create --offer-id 12 --beneficiary-id 7 "
		"--seats 2\n"
		"  strapontin ticket check-in 7KQ4-M2XD-9TPB-W3RF\n"
		"\nexit status: 0 ok, 1 refused by the server, 2 usage, "
		"3 cannot connect or TLS failure.\n"
		"See strapontin(1).\n"));
}

static void
noun_usage(FILE *f, const char *noun)
{
	const struct cli_command *c;
	size_t i;

	fprintf(f,
		_("usage: strapontin %s VERB [ID] [--field value ...]\n\n%s."
		"\n\nverbs:\n"),
		noun, cli_noun_help(noun) ? _(cli_noun_help(noun)) : noun);
	for (i = 0; i < cli_ncommands; i++) {
		c = &cli_commands[i];
		if (c->verb != NULL && strcmp(c->noun, noun) == 0)
			fprintf(f, "  %-18s %s\n", c->verb, _(c->help));
	}
	fprintf(f, _("\nstrapontin %s VERB --help lists a verb's fields.\n"),
		noun);
}

static int
cmd_help_call(void)
{
	printf(_("usage: strapontin call METHOD ['{json params}']\n"
	       "       strapontin call METHOD [--field value ...]\n"
	       "\n"
	       "Calls any method with the saved session and prints its result "
	       "(indented JSON;\n"
	       "--json: compact). A --field value is taken as JSON when it "
	       "parses as JSON\n"
	       "(42, true, null, [1,2], \"text\"), else as a string: quote "
	       "digits meant as\n"
	       "text ('\"0612\"'). Dashes in field names become "
	       "underscores.\n"));
	return EXIT_OK;
}

/* ----------------------------------------------------- running methods */

/* One call, or with --all every page of a list, items gathered into one
 * {items, next_cursor: null}. */
static int
call_all(struct cli *cli, const struct cli_command *cmd, json_t *params,
	 json_t **result)
{
	json_t *page = NULL, *all = NULL, *next;
	char *last = NULL;
	int r, n;

	if (!cli->all || !(cmd->flags & CMD_LIST))
		return cli_call(cli, cmd->method, params, result);
	for (n = 0; n < MAX_PAGES; n++) {
		if ((r = cli_call(cli, cmd->method, params, &page)) != EXIT_OK)
			goto fail;
		next = json_object_get(page, "next_cursor");
		/* A cursor seen before would loop: stop there. */
		if (!json_is_string(next) ||
		    (last != NULL &&
		     strcmp(last, json_string_value(next)) == 0))
			next = NULL;
		free(last);
		last = next ? strdup(json_string_value(next)) : NULL;
		if (all == NULL)
			all = json_incref(page);
		else
			json_array_extend(json_object_get(all, "items"),
					  json_object_get(page, "items"));
		json_decref(page);
		page = NULL;
		if (last == NULL)
			break;
		json_object_set_new(params, "cursor", json_string(last));
	}
	if (json_object_get(all, "next_cursor") != NULL)
		json_object_set_new(all, "next_cursor", json_null());
	free(last);
	*result = all;
	return EXIT_OK;
fail:
	free(last);
	json_decref(all);
	return r;
}

int
cli_run_method(struct cli *cli, const struct cli_command *cmd, json_t *params,
	       int argc, char **argv)
{
	json_t *result = NULL;
	int r;

	(void)argc;
	(void)argv;
	if ((cmd->flags & CMD_SECRET) &&
	    (r = cli_fill_secrets(cli, cmd, params)) != EXIT_OK)
		return r;
	if (!(cmd->flags & CMD_ANON) && (r = cli_resume(cli)) != EXIT_OK)
		return r;
	if ((r = call_all(cli, cmd, params, &result)) != EXIT_OK)
		return r;
	cli_print(cli, cmd, result);
	json_decref(result);
	return EXIT_OK;
}

int
cli_cmd_call(struct cli *cli, const struct cli_command *cmd, json_t *params,
	     int argc, char **argv)
{
	json_t *result = NULL;
	json_error_t jerr;
	const char *method;
	char **rest;
	int r, i, n = 0;

	(void)params;
	params = NULL;
	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			return cmd_help_call();
	if ((rest = calloc((size_t)argc + 1, sizeof *rest)) == NULL)
		abort();
	/* The output flags may come anywhere; the rest keeps its order. */
	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0)
			cli->format = FMT_JSON;
		else if (strcmp(argv[i], "--csv") == 0)
			cli->format = FMT_CSV;
		else
			rest[n++] = argv[i];
	r = EXIT_USAGE;
	if (n < 1 || rest[0][0] == '-') {
		cli_warnx(_("call: which method? (strapontin call METHOD "
			  "'{json}')"));
		goto out;
	}
	method = rest[0];
	if (n >= 2 && rest[1][0] != '-') {
		if (n > 2) {
			cli_warnx(_("call: give params as JSON or as --field "
				  "value, not both"));
			goto out;
		}
		if ((params = json_loads(rest[1], 0, &jerr)) == NULL) {
			cli_warnx(_("call: params: %s"), jerr.text);
			goto out;
		}
		if (!json_is_object(params)) {
			cli_warnx(_("call: params must be a JSON object"));
			goto out;
		}
	} else if ((r = cli_params_generic(cli, n - 1, rest + 1, &params)) !=
		   EXIT_OK)
		goto out;
	/* Raw access is still done as the saved user, if there is one. */
	if ((r = cli_resume(cli)) == EXIT_OK &&
	    (r = cli_call(cli, method, params, &result)) == EXIT_OK)
		cli_print(cli, cmd, result);
out:
	free(rest);
	json_decref(params);
	json_decref(result);
	return r;
}

/* ------------------------------------------------------ system commands */

static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

int
cli_cmd_ping(struct cli *cli, const struct cli_command *cmd, json_t *params,
	     int argc, char **argv)
{
	struct timespec t0;
	json_t *result = NULL;
	const char *time;
	char buf[64];
	int r;

	(void)params;
	(void)argc;
	(void)argv;
	if ((r = cli_connect(cli)) != EXIT_OK)
		return r;
	/* Timed from after the handshake: the round trip of one request. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = cli_call(cli, cmd->method, NULL, &result)) != EXIT_OK)
		return r;
	if (cli->format != FMT_HUMAN)
		cli_print(cli, cmd, result);
	else {
		time = json_string_value(json_object_get(result, "time"));
		printf(_("pong from %s: %.1f ms, %s%s%s\n"), cli->server,
		       elapsed_ms(&t0), st_tls_version(cli->client),
		       time ? ", server time " : "",
		       time ? cli_time_local(time, true, buf, sizeof buf) : "");
	}
	json_decref(result);
	return EXIT_OK;
}

int
cli_cmd_version(struct cli *cli, const struct cli_command *cmd, json_t *params,
		int argc, char **argv)
{
	json_t *result = NULL;
	const char *name, *version;
	int r;

	(void)params;
	(void)argc;
	(void)argv;
	if ((r = cli_call(cli, cmd->method, NULL, &result)) != EXIT_OK)
		return r;
	if (cli->format != FMT_HUMAN)
		cli_print(cli, cmd, result);
	else {
		name = json_string_value(json_object_get(result, "name"));
		version = json_string_value(json_object_get(result, "version"));
		printf("server: %s %s, protocol %" JSON_INTEGER_FORMAT
		       ", schema %" JSON_INTEGER_FORMAT "\n",
		       name ? name : "?", version ? version : "?",
		       json_integer_value(json_object_get(result, "protocol")),
		       json_integer_value(json_object_get(result, "schema")));
		printf(_("client: strapontin %s, protocol %d\n"),
		       STRAPONTIN_VERSION, STRAPONTIN_PROTOCOL);
	}
	json_decref(result);
	return EXIT_OK;
}

int
cli_cmd_health(struct cli *cli, const struct cli_command *cmd, json_t *params,
	       int argc, char **argv)
{
	json_t *result = NULL;
	const char *db;
	int r;

	(void)params;
	(void)argc;
	(void)argv;
	if ((r = cli_call(cli, cmd->method, NULL, &result)) != EXIT_OK)
		return r;
	if (cli->format != FMT_HUMAN)
		cli_print(cli, cmd, result);
	else {
		db = json_string_value(json_object_get(result, "db"));
		printf(
		    "database %s, up %" JSON_INTEGER_FORMAT
		    " s, %" JSON_INTEGER_FORMAT
		    " connections, %" JSON_INTEGER_FORMAT " requests\n",
		    db ? db : "?",
		    json_integer_value(json_object_get(result, "uptime_s")),
		    json_integer_value(json_object_get(result, "connections")),
		    json_integer_value(json_object_get(result, "requests")));
	}
	json_decref(result);
	return EXIT_OK;
}

/* ------------------------------------------ hidden helper commands */

/* `strapontin _complete WORD...`: the candidates for the word after
 * WORD..., one a line, for scripts/strapontin.bash-completion. */
static int
complete(int argc, char **argv)
{
	static const char *const globals[] = {
	    "--server", "--ca",	 "--cert", "--key",	"--timeout", "--json",
	    "--csv",	"--all", "--help", "--version", NULL};
	const struct cli_command *cmd = NULL;
	struct cli_param ps[CLI_MAX_PARAMS];
	const char *const *values;
	char flag[64];
	size_t i, n, j;
	int k = 0;

	/* Global options and their values come first. */
	while (k < argc && argv[k][0] == '-') {
		if (strcmp(argv[k], "--json") != 0 &&
		    strcmp(argv[k], "--csv") != 0 &&
		    strcmp(argv[k], "--all") != 0 &&
		    strchr(argv[k], '=') == NULL)
			k++;
		k++;
	}
	if (k > argc)
		return EXIT_OK; /* a global option's value: files, hosts */
	if (k == argc) {
		for (i = 0; globals[i] != NULL; i++)
			puts(globals[i]);
		for (i = 0; i < cli_ncommands; i++)
			if (cli_commands[i].verb == NULL)
				puts(cli_commands[i].noun);
		for (i = 0; cli_nouns()[i] != NULL; i++)
			puts(cli_nouns()[i]);
		puts("help");
		return EXIT_OK;
	}
	if ((cmd = cli_find(argv[k], NULL)) == NULL) {
		if (!cli_noun_exists(argv[k]))
			return EXIT_OK;
		if (k + 1 == argc) {
			for (i = 0; i < cli_ncommands; i++)
				if (cli_commands[i].verb != NULL &&
				    strcmp(cli_commands[i].noun, argv[k]) == 0)
					puts(cli_commands[i].verb);
			return EXIT_OK;
		}
		if ((cmd = cli_find(argv[k], argv[k + 1])) == NULL)
			return EXIT_OK;
		k += 2;
	} else
		k++;
	if (cli_params_parse(cmd->params, ps, CLI_MAX_PARAMS, &n) != 0)
		return EXIT_OK;
	/* After a flag that takes a value: that flag's values, if known. */
	if (k < argc && strncmp(argv[argc - 1], "--", 2) == 0) {
		for (i = 0; i < n; i++) {
			char *p;

			snprintf(flag, sizeof flag, "--%.40s", ps[i].name);
			for (p = flag + 2; *p != '\0'; p++)
				if (*p == '_')
					*p = '-';
			if (strcmp(flag, argv[argc - 1]) != 0)
				continue;
			if (ps[i].type == CP_ENUM || ps[i].type == CP_ENUMS)
				for (values = ps[i].choices, j = 0;
				     values[j] != NULL; j++)
					puts(values[j]);
			else if (ps[i].type == CP_BOOL) {
				puts("true");
				puts("false");
			}
			if (ps[i].type != CP_BOOL)
				return EXIT_OK;
		}
	}
	for (i = 0; i < n; i++) {
		char *p;

		if (ps[i].secret)
			continue;
		snprintf(flag, sizeof flag, "--%.40s", ps[i].name);
		for (p = flag + 2; *p != '\0'; p++)
			if (*p == '_')
				*p = '-';
		puts(flag);
	}
	puts("--json");
	if (cmd->flags & CMD_LIST) {
		puts("--csv");
		puts("--all");
	}
	puts("--help");
	return EXIT_OK;
}

/* `strapontin _table`: the table as data, one command a line:
 * "noun verb method positional name:type:flags ...", "-" for none; type
 * is a word of cli_params.c or enum(a|b|c); flags are r (required),
 * n (nullable), s (secret). For the test that compares
 * it with the daemon's method table. */
static int
dump_table(void)
{
	struct cli_param ps[CLI_MAX_PARAMS];
	const struct cli_command *c;
	size_t i, j, n;

	for (i = 0; i < cli_ncommands; i++) {
		c = &cli_commands[i];
		if (cli_params_parse(c->params, ps, CLI_MAX_PARAMS, &n) != 0)
			return EXIT_USAGE;
		printf("%s %s %s %s", c->noun, c->verb ? c->verb : "-",
		       c->method ? c->method : "-",
		       c->positional ? c->positional : "-");
		for (j = 0; j < n; j++) {
			printf(" %s:", ps[j].name);
			if (ps[j].type == CP_ENUM || ps[j].type == CP_ENUMS) {
				size_t k;

				fputs(ps[j].type == CP_ENUM ? "enum("
							    : "enums(",
				      stdout);
				for (k = 0; ps[j].choices[k] != NULL; k++)
					printf("%s%s", k ? "|" : "",
					       ps[j].choices[k]);
				putchar(')');
			} else
				fputs(cli_ptype_name(ps[j].type), stdout);
			printf(":%s%s%s", ps[j].required ? "r" : "",
			       ps[j].nullable ? "n" : "",
			       ps[j].secret ? "s" : "");
		}
		putchar('\n');
	}
	return EXIT_OK;
}

/* ------------------------------------------------------------------ main */

enum {
	OPT_SERVER = 256,
	OPT_CA,
	OPT_CERT,
	OPT_KEY,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_CSV,
	OPT_ALL,
	OPT_VERSION,
};

static const struct option long_options[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"ca", required_argument, NULL, OPT_CA},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"csv", no_argument, NULL, OPT_CSV},
    {"all", no_argument, NULL, OPT_ALL},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* `strapontin help [NOUN [VERB]]`, and --help before the words. */
static int
help(int argc, char **argv)
{
	const struct cli_command *cmd;

	if (argc == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[0], "call") == 0)
		return cmd_help_call();
	if ((cmd = cli_find(argv[0], NULL)) != NULL ||
	    (argc > 1 && (cmd = cli_find(argv[0], argv[1])) != NULL)) {
		cli_params_help(stdout, cmd);
		return EXIT_OK;
	}
	if (cli_noun_exists(argv[0]) && argc == 1) {
		noun_usage(stdout, argv[0]);
		return EXIT_OK;
	}
	cli_warnx(_("no such command: %s%s%s (see 'strapontin --help')"), argv[0],
		  argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
	return EXIT_USAGE;
}

static int
run(struct cli *cli, int argc, char **argv)
{
	const struct cli_command *cmd;
	const char *server = NULL;
	json_t *params = NULL;
	char words[64], *end;
	long secs;
	int ch, used, r;
	bool want_help = false;

	if ((r = cli_conf_load(cli)) != EXIT_OK)
		return r;
	/* "+": options end at the first word, so that the command's own
	 * --field arguments are not taken for global options. */
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "+h", long_options, NULL)) != -1) {
		switch (ch) {
		case OPT_SERVER:
			server = optarg;
			break;
		case OPT_CA:
			snprintf(cli->ca, sizeof cli->ca, "%s", optarg);
			break;
		case OPT_CERT:
			snprintf(cli->cert, sizeof cli->cert, "%s", optarg);
			break;
		case OPT_KEY:
			snprintf(cli->key, sizeof cli->key, "%s", optarg);
			break;
		case OPT_TIMEOUT:
			errno = 0;
			secs = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || secs <= 0 ||
			    secs > 86400) {
				cli_warnx(_("--timeout: 1 to 86400 seconds"));
				return EXIT_USAGE;
			}
			cli->opt.timeout_ms = (int)secs * 1000;
			break;
		case OPT_JSON:
			cli->format = FMT_JSON;
			break;
		case OPT_CSV:
			cli->format = FMT_CSV;
			break;
		case OPT_ALL:
			cli->all = true;
			break;
		case 'h':
			want_help = true;
			break;
		case OPT_VERSION:
			printf(_("strapontin %s (protocol %d, %s)\n"),
			       STRAPONTIN_VERSION, STRAPONTIN_PROTOCOL,
			       OpenSSL_version(OPENSSL_VERSION));
			return EXIT_OK;
		default:
			fprintf(stderr, _("(see 'strapontin --help')\n"));
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (want_help || (argc > 0 && strcmp(argv[0], "help") == 0))
		return help(argc - (want_help ? 0 : 1),
			    argv + (want_help ? 0 : 1));
	if (argc == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[0], "_complete") == 0)
		return complete(argc - 1, argv + 1);
	if (strcmp(argv[0], "_table") == 0)
		return dump_table();

	if (cli_parse_server(cli, server ? server : cli->server) != 0) {
		cli_warnx(_("bad server '%s': want HOST:PORT or [ADDRESS]:PORT"),
			  server ? server : cli->server);
		return EXIT_USAGE;
	}
	cli->opt.ca_file = cli->ca[0] ? cli->ca : NULL;
	cli->opt.cert_file = cli->cert[0] ? cli->cert : NULL;
	cli->opt.key_file = cli->key[0] ? cli->key : NULL;
	if (cli->opt.key_file != NULL && cli->opt.cert_file == NULL) {
		cli_warnx(_("--key needs --cert"));
		return EXIT_USAGE;
	}

	if ((cmd = cli_find(argv[0], NULL)) != NULL)
		used = 1;
	else if (cli_noun_exists(argv[0])) {
		if (argc < 2 || argv[1][0] == '-') {
			if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
					  strcmp(argv[1], "-h") == 0)) {
				noun_usage(stdout, argv[0]);
				return EXIT_OK;
			}
			cli_warnx(_("%s: which verb?"), argv[0]);
			noun_usage(stderr, argv[0]);
			return EXIT_USAGE;
		}
		if ((cmd = cli_find(argv[0], argv[1])) == NULL) {
			cli_warnx(_("%s: unknown verb '%s' (see 'strapontin %s "
				  "--help')"),
				  argv[0], argv[1], argv[0]);
			return EXIT_USAGE;
		}
		used = 2;
	} else {
		cli_warnx(_("unknown command '%s' (see 'strapontin --help')"),
			  argv[0]);
		return EXIT_USAGE;
	}
	snprintf(words, sizeof words, "%s%s%s", cmd->noun, cmd->verb ? " " : "",
		 cmd->verb ? cmd->verb : "");
	cli->words = words;
	cli->cmd = cmd;
	argc -= used;
	argv += used;
	if (cmd->fn == cli_cmd_call)
		return cli_cmd_call(cli, cmd, NULL, argc, argv);
	if ((r = cli_params_from_args(cli, cmd, argc, argv, &params)) !=
	    EXIT_OK)
		return r;
	if (cli->help) {
		cli_params_help(stdout, cmd);
		json_decref(params);
		return EXIT_OK;
	}
	r = (cmd->fn ? cmd->fn : cli_run_method)(cli, cmd, params, argc, argv);
	json_decref(params);
	return r;
}

int
cli_main(int argc, char **argv)
{
	struct cli cli;
	int r;

	memset(&cli, 0, sizeof cli);
	cli_i18n_init();
	r = run(&cli, argc, argv);
	st_close(cli.client);
	explicit_bzero(&cli.session, sizeof cli.session);
	if (fflush(stdout) != 0 && r == EXIT_OK) {
		cli_warnx(_("stdout: %s"), strerror(errno));
		r = EXIT_CONNECT;
	}
	return r;
}
