/*
 * strapontin: command-line client for strapontind.
 *
 *	strapontin [global options] NOUN [VERB] [ARGS | --field value ...]
 *
 * Every command is a row of the commands[] table: the words that name it,
 * the JSON-RPC method it calls, and the function that builds the params and
 * prints the result. Commands that only map "--field value" pairs onto a
 * method's params need no function of their own (cmd_generic).
 *
 * Exit codes: 0 success, 1 the server refused (reason on stderr), 2 usage,
 * 3 no conversation with the server (connect, TLS, lost connection,
 * timeout, nonsense from the server) or no way to print the answer. The
 *certificate and the host name are always verified; there is deliberately no
 *way to turn that off.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MSG_NOSIGNAL, getaddrinfo, getopt_long */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "strapontin.h"

#ifndef STRAPONTIN_VERSION
#define STRAPONTIN_VERSION "unknown"
#endif
#ifndef STRAPONTIN_PROTOCOL
#define STRAPONTIN_PROTOCOL 1
#endif

#define DEFAULT_SERVER "127.0.0.1:7443"

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
};

struct cli {
	struct st_options opt;
	const char *server; /* as given, for messages */
	char host[256];
	char port[16];
	bool json; /* machine output: compact JSON of the result */
	struct st_client *client;
};

struct command;
typedef int (*command_fn)(struct cli *, const struct command *, int, char **);

struct command {
	const char *noun;
	const char *verb;   /* NULL for one-word commands */
	const char *method; /* JSON-RPC method; NULL when fn chooses it */
	command_fn fn;
	const char *args; /* usage of what follows the words */
	const char *help;
};

static int cmd_call(struct cli *, const struct command *, int, char **);
static int cmd_ping(struct cli *, const struct command *, int, char **);
static int cmd_version(struct cli *, const struct command *, int, char **);
static int cmd_health(struct cli *, const struct command *, int, char **);

static const struct command commands[] = {
    {"call", NULL, NULL, cmd_call, "METHOD [JSON | --field value ...]",
     "call any method, print its result"},
    {"ping", NULL, "system.ping", cmd_ping, "", "check the server answers"},
    {"version", NULL, "system.version", cmd_version, "",
     "server and client versions"},
    {"health", NULL, "system.health", cmd_health, "",
     "database state and counters"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
warnx(const char *fmt, ...)
{
	va_list ap;

	fputs("strapontin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"usage: strapontin [options] COMMAND [ARGS]\n"
		"\n"
		"options:\n"
		"  --server HOST:PORT  server (default $STRAPONTIN_SERVER, "
		"else %s)\n"
		"  --ca FILE           CA to verify the server (default "
		"$STRAPONTIN_CA, else\n"
		"                      the system store)\n"
		"  --cert FILE         client certificate (mutual TLS)\n"
		"  --key FILE          its private key (default: in --cert)\n"
		"  --timeout SECONDS   per request (default 10)\n"
		"  --json              print results as compact JSON\n"
		"  --help, --version\n"
		"\n"
		"commands:\n",
		DEFAULT_SERVER);
	for (i = 0; i < NCOMMANDS; i++) {
		char words[64];

		snprintf(words, sizeof words, "%s%s%s %s", commands[i].noun,
			 commands[i].verb ? " " : "",
			 commands[i].verb ? commands[i].verb : "",
			 commands[i].args);
		fprintf(f, "  %-40s %s\n", words, commands[i].help);
	}
	fprintf(f, "\n"
		   "A field value is taken as JSON when it parses as JSON "
		   "(42, true, null,\n"
		   "{...}, \"text\"), else as a string: quote digits meant as "
		   "text ('\"0612\"').\n"
		   "Exit: 0 ok, 1 refused by the server, 2 usage, 3 cannot "
		   "reach the server.\n");
}

/* "host:port", "[v6]:port", "host", "[v6]" or a bare v6 address. */
static int
parse_server(struct cli *cli, const char *s)
{
	const char *colon, *end;
	size_t hl;

	cli->server = s;
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
	} else {
		colon = strrchr(s, ':');
		if (colon != NULL && strchr(s, ':') != colon) {
			/* Several colons without []: an IPv6 address alone. */
			unsigned char a6[16];

			if (inet_pton(AF_INET6, s, a6) != 1)
				return -1;
			colon = NULL;
		}
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hl == 0 || hl >= sizeof cli->host)
		return -1;
	memcpy(cli->host, s, hl);
	cli->host[hl] = '\0';
	if (colon != NULL) {
		if (colon[1] == '\0' || strlen(colon + 1) >= sizeof cli->port ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return -1;
		snprintf(cli->port, sizeof cli->port, "%s", colon + 1);
	}
	return 0;
}

/* Connects on first use, so that usage errors never need a server. */
static int
cli_connect(struct cli *cli)
{
	struct st_error err;

	if (cli->client != NULL)
		return EXIT_OK;
	cli->client = st_connect(&cli->opt, &err);
	if (cli->client == NULL) {
		warnx("%s", st_strerror(&err));
		return err.status == ST_ERR_USAGE ? EXIT_USAGE : EXIT_CONNECT;
	}
	return EXIT_OK;
}

/* One call: EXIT_OK with *result, or the exit code, the reason printed. */
static int
cli_call(struct cli *cli, const char *method, json_t *params, json_t **result)
{
	struct st_error err;
	int r;

	*result = NULL;
	if ((r = cli_connect(cli)) != EXIT_OK)
		return r;
	switch (st_call(cli->client, method, params, result, &err)) {
	case ST_OK:
		return EXIT_OK;
	case ST_ERR_SERVER:
		r = EXIT_REFUSED;
		break;
	case ST_ERR_USAGE:
		r = EXIT_USAGE;
		break;
	default:
		r = EXIT_CONNECT;
		break;
	}
	warnx("%s", st_strerror(&err));
	st_error_clear(&err);
	return r;
}

static void
print_json(const json_t *v, bool compact)
{
	json_dumpf(v, stdout,
		   JSON_ENCODE_ANY | (compact ? JSON_COMPACT : JSON_INDENT(2)));
	fputc('\n', stdout);
}

/* A field value: JSON if it parses as JSON, else the string itself. */
static json_t *
field_value(const char *s)
{
	json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);

	return v != NULL ? v : json_string(s);
}

/* "--name value" and "--name=value" pairs into a params object. */
static int
parse_fields(int argc, char **argv, json_t **params)
{
	const char *name, *eq, *value;
	char key[128];
	json_t *p = json_object(), *v;
	size_t kl;
	int i;

	for (i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
			warnx("expected --field value, not '%s'", argv[i]);
			goto fail;
		}
		name = argv[i] + 2;
		if ((eq = strchr(name, '=')) != NULL) {
			kl = (size_t)(eq - name);
			value = eq + 1;
		} else {
			kl = strlen(name);
			if (i + 1 >= argc) {
				warnx("--%s needs a value", name);
				goto fail;
			}
			value = argv[++i];
		}
		if (kl == 0 || kl >= sizeof key) {
			warnx("bad field name '%s'", argv[i]);
			goto fail;
		}
		memcpy(key, name, kl);
		key[kl] = '\0';
		/* Field names are words: CLI style dashes become the
		 * protocol's underscores. */
		for (char *k = key; *k != '\0'; k++)
			if (*k == '-')
				*k = '_';
		if (json_object_get(p, key) != NULL) {
			warnx("field %s given twice", key);
			goto fail;
		}
		if ((v = field_value(value)) == NULL) {
			warnx("--%s: value is not valid UTF-8", key);
			goto fail;
		}
		json_object_set_new(p, key, v);
	}
	*params = p;
	return EXIT_OK;
fail:
	json_decref(p);
	return EXIT_USAGE;
}

/* Calls cmd->method with the fields as params and prints the result as
 * JSON: the default for commands without a nicer rendering. */
static int
cmd_generic(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	json_t *params = NULL, *result = NULL;
	int r;

	if ((r = parse_fields(argc, argv, &params)) != EXIT_OK)
		return r;
	if ((r = cli_call(cli, cmd->method, params, &result)) == EXIT_OK)
		print_json(result, cli->json);
	json_decref(params);
	json_decref(result);
	return r;
}

static int
cmd_call(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	json_t *params = NULL, *result = NULL;
	json_error_t jerr;
	int r;

	(void)cmd;
	if (argc < 1) {
		warnx("call: which method?");
		return EXIT_USAGE;
	}
	if (argc == 2 && strncmp(argv[1], "--", 2) != 0) {
		params = json_loads(argv[1], 0, &jerr);
		if (params == NULL) {
			warnx("call: params: %s", jerr.text);
			return EXIT_USAGE;
		}
		if (!json_is_object(params) && !json_is_array(params)) {
			warnx("call: params must be a JSON object");
			json_decref(params);
			return EXIT_USAGE;
		}
	} else if ((r = parse_fields(argc - 1, argv + 1, &params)) != EXIT_OK)
		return r;
	if ((r = cli_call(cli, argv[0], params, &result)) == EXIT_OK)
		print_json(result, cli->json);
	json_decref(params);
	json_decref(result);
	return r;
}

static int
no_args(const struct command *cmd, int argc)
{
	if (argc != 0) {
		warnx("%s takes no arguments", cmd->noun);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static double
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int
cmd_ping(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	struct timespec t0;
	json_t *result = NULL;
	const char *time;
	int r;

	(void)argv;
	if ((r = no_args(cmd, argc)) != EXIT_OK)
		return r;
	if ((r = cli_connect(cli)) != EXIT_OK)
		return r;
	/* Timed from after the handshake: the round trip of one request. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = cli_call(cli, cmd->method, NULL, &result)) != EXIT_OK)
		return r;
	if (cli->json)
		print_json(result, true);
	else {
		time = json_string_value(json_object_get(result, "time"));
		printf("pong from %s: %.1f ms, %s%s%s\n", cli->server,
		       elapsed_ms(&t0), st_tls_version(cli->client),
		       time ? ", server time " : "", time ? time : "");
	}
	json_decref(result);
	return EXIT_OK;
}

static int
cmd_version(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	json_t *result = NULL;
	const char *name, *version;
	int r;

	(void)argv;
	if ((r = no_args(cmd, argc)) != EXIT_OK)
		return r;
	if ((r = cli_call(cli, cmd->method, NULL, &result)) != EXIT_OK)
		return r;
	if (cli->json)
		print_json(result, true);
	else {
		name = json_string_value(json_object_get(result, "name"));
		version = json_string_value(json_object_get(result, "version"));
		printf("server: %s %s, protocol %lld, schema %lld\n",
		       name ? name : "?", version ? version : "?",
		       json_integer_value(json_object_get(result, "protocol")),
		       json_integer_value(json_object_get(result, "schema")));
		printf("client: strapontin %s, protocol %d\n",
		       STRAPONTIN_VERSION, STRAPONTIN_PROTOCOL);
	}
	json_decref(result);
	return EXIT_OK;
}

static int
cmd_health(struct cli *cli, const struct command *cmd, int argc, char **argv)
{
	json_t *result = NULL;
	const char *db;
	int r;

	(void)argv;
	if ((r = no_args(cmd, argc)) != EXIT_OK)
		return r;
	if ((r = cli_call(cli, cmd->method, NULL, &result)) != EXIT_OK)
		return r;
	if (cli->json)
		print_json(result, true);
	else {
		db = json_string_value(json_object_get(result, "db"));
		printf(
		    "database %s, up %llds, %lld connections, %lld "
		    "requests\n",
		    db ? db : "?",
		    json_integer_value(json_object_get(result, "uptime_s")),
		    json_integer_value(json_object_get(result, "connections")),
		    json_integer_value(json_object_get(result, "requests")));
	}
	json_decref(result);
	return EXIT_OK;
}

/* The row whose words start argv; *used gets how many words it took. */
static const struct command *
find_command(int argc, char **argv, int *used)
{
	const struct command *cmd;
	size_t i;

	for (i = 0; i < NCOMMANDS; i++) {
		cmd = &commands[i];
		if (strcmp(argv[0], cmd->noun) != 0)
			continue;
		if (cmd->verb == NULL) {
			*used = 1;
			return cmd;
		}
		if (argc >= 2 && strcmp(argv[1], cmd->verb) == 0) {
			*used = 2;
			return cmd;
		}
	}
	return NULL;
}

enum {
	OPT_SERVER = 256,
	OPT_CA,
	OPT_CERT,
	OPT_KEY,
	OPT_TIMEOUT,
	OPT_JSON,
	OPT_VERSION,
};

static const struct option long_options[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"ca", required_argument, NULL, OPT_CA},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

int
main(int argc, char **argv)
{
	struct cli cli;
	const struct command *cmd;
	const char *server, *env;
	char *end;
	long secs;
	int ch, used, r;

	memset(&cli, 0, sizeof cli);
	env = getenv("STRAPONTIN_SERVER");
	server = env != NULL && env[0] != '\0' ? env : DEFAULT_SERVER;
	env = getenv("STRAPONTIN_CA");
	cli.opt.ca_file = env != NULL && env[0] != '\0' ? env : NULL;

	/* "+": options end at the command word, so that the command's own
	 * --field arguments are not taken for global options. */
	while ((ch = getopt_long(argc, argv, "+h", long_options, NULL)) != -1) {
		switch (ch) {
		case OPT_SERVER:
			server = optarg;
			break;
		case OPT_CA:
			cli.opt.ca_file = optarg;
			break;
		case OPT_CERT:
			cli.opt.cert_file = optarg;
			break;
		case OPT_KEY:
			cli.opt.key_file = optarg;
			break;
		case OPT_TIMEOUT:
			errno = 0;
			secs = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || secs <= 0 ||
			    secs > 86400) {
				warnx("--timeout: 1 to 86400 seconds");
				return EXIT_USAGE;
			}
			cli.opt.timeout_ms = (int)secs * 1000;
			break;
		case OPT_JSON:
			cli.json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case OPT_VERSION:
			printf("strapontin %s (protocol %d, %s)\n",
			       STRAPONTIN_VERSION, STRAPONTIN_PROTOCOL,
			       OpenSSL_version(OPENSSL_VERSION));
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (parse_server(&cli, server) != 0) {
		warnx("bad server '%s': want HOST:PORT or [ADDRESS]:PORT",
		      server);
		return EXIT_USAGE;
	}
	cli.opt.host = cli.host;
	cli.opt.port = cli.port;
	if (cli.opt.key_file != NULL && cli.opt.cert_file == NULL) {
		warnx("--key needs --cert");
		return EXIT_USAGE;
	}

	if ((cmd = find_command(argc, argv, &used)) == NULL) {
		warnx("unknown command '%s%s%s' (see --help)", argv[0],
		      argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
		return EXIT_USAGE;
	}
	r = (cmd->fn ? cmd->fn : cmd_generic)(&cli, cmd, argc - used,
					      argv + used);
	st_close(cli.client);
	if (fflush(stdout) != 0 && r == EXIT_OK) {
		warnx("stdout: %s", strerror(errno));
		r = EXIT_CONNECT;
	}
	return r;
}
