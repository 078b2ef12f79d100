/*
 * strapontin, the command-line client: what its modules share.
 *
 *	cli.c        cli_main(): global options, finding the command, help
 *	cli_main.c   main(), which only calls cli_main()
 *	cli_table.c  the command table (noun, verb, method, positional
 *	             param, params) and the enumerations
 *	cli_params.c params of a command: the spec language, --flag parsing
 *	             into a JSON object, help text, times given as input
 *	cli_conf.c   client.conf, environment, the session (token) file
 *	cli_auth.c   connecting, resuming the session, login, logout, whoami
 *	cli_out.c    output: tables, key: value, CSV, JSON, local times
 *	cli_events.c events subscribe: live events until interrupted
 *	cli_i18n.c   the language (gettext, French first) and the display
 *	             zone (cli_i18n.h)
 *
 * Exit codes are part of the interface (docs/man/strapontin.1).
 */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#include "cli_i18n.h"
#include "strapontin.h"

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1, /* the server refused, or the session is gone */
	EXIT_USAGE = 2,	  /* bad command line: nothing was sent */
	EXIT_CONNECT = 3, /* cannot connect, TLS failure, connection lost */
};

enum cli_format {
	FMT_HUMAN = 0, /* aligned tables, key: value, local times */
	FMT_JSON,      /* exactly the result, compact JSON */
	FMT_CSV,       /* lists: RFC 4180, a header row */
};

/* The session file's content (cli_conf.c). */
struct cli_session {
	bool loaded;
	char server[300]; /* host:port the token belongs to */
	char email[256];
	char token[160];
	char expires_at[40];
};

struct cli {
	struct st_options opt;
	char server[300]; /* host:port as configured, for messages and the
			     session file */
	char host[256];
	char port[16];
	char ca[1024];
	char cert[1024];
	char key[1024];
	enum cli_format format;
	bool all;  /* lists: follow next_cursor to the end */
	bool help; /* --help seen after the command words */
	struct st_client *client;
	struct cli_session session;
	bool resumed;	   /* this connection carries the session's token */
	const char *words; /* "offer publish", for messages */
	const struct cli_command *cmd;
};

struct cli_command;
/* A command's function: params are the parsed flags (NULL for `call`,
 * which reads argv itself). Returns the exit code. */
typedef int cli_fn(struct cli *, const struct cli_command *, json_t *params,
		   int argc, char **argv);

/* How a result is shown to a person (cli_out.c). */
struct cli_view;

#define CMD_ANON 0x1   /* needs no session: never sends the token */
#define CMD_LIST 0x2   /* answers {items, next_cursor}: --all, --csv */
#define CMD_SECRET 0x4 /* has password params: prompt, never argv */

struct cli_command {
	const char *noun;
	const char *verb;	/* NULL for one-word commands */
	const char *method;	/* NULL: fn does it all */
	const char *positional; /* param a first bare argument gives, or NULL */
	const char *params;	/* spec, see cli_params.c */
	const struct cli_view *view;
	unsigned flags;
	cli_fn *fn; /* NULL: cli_run_method */
	const char *help;
};

/* cli_table.c */
extern const struct cli_command cli_commands[];
extern const size_t cli_ncommands;
struct cli_enum {
	const char *name;
	const char *const *values;
};
const char *const *cli_enum_values(const char *name);
/* Commands of a noun, in table order; NULL-terminated noun list. */
const char *const *cli_nouns(void);
const char *cli_noun_help(const char *noun);
const struct cli_command *cli_find(const char *noun, const char *verb);
bool cli_noun_exists(const char *noun);

/* cli_params.c: a parsed spec. */
enum cli_ptype {
	CP_STRING,
	CP_TEXT,
	CP_INT,
	CP_ID,
	CP_BOOL,
	CP_EMAIL,
	CP_TIME,
	CP_DATE,
	CP_HHMM,
	CP_IDS,
	CP_STRS, /* an array of names: "a,b" on the command line */
	CP_CURSOR,
	CP_ENUM,
	CP_ENUMS, /* an array of choices: "a,b" on the command line */
	CP_TICKET, /* a string: a ticket code, checked and put in shape */
};
struct cli_param {
	char name[40];
	enum cli_ptype type;
	const char *const *choices; /* CP_ENUM, CP_ENUMS */
	char enum_name[32];
	bool required;
	bool nullable;
	bool secret; /* never a flag: asked for (cli_fill_secrets) */
};
#define CLI_MAX_PARAMS 24
/* Parses cmd->params; -1 (and a message on stderr) if the table is wrong,
 * which the test suite makes sure never ships. */
int cli_params_parse(const char *spec, struct cli_param *out, size_t max,
		     size_t *n);
const char *cli_ptype_name(enum cli_ptype t);
/* argv (after the command words) into a params object. Recognises the
 * output flags (--json, --csv, --all, --help) anywhere. EXIT_OK or
 * EXIT_USAGE (message printed). */
int cli_params_from_args(struct cli *cli, const struct cli_command *cmd,
			 int argc, char **argv, json_t **params);
/* The generic form of `call`: --name value, value as JSON if it parses. */
int cli_params_generic(struct cli *cli, int argc, char **argv, json_t **params);
void cli_params_help(FILE *f, const struct cli_command *cmd);

/* Times. cli_time_parse: RFC 3339 UTC/offset string into time_t.
 * cli_time_input: what a person typed (RFC 3339, "YYYY-MM-DD HH:MM[:SS]"
 * or "YYYY-MM-DD" in local time, "now") into RFC 3339 UTC. */
bool cli_time_parse(const char *s, time_t *t);
bool cli_time_input(const char *s, char *out, size_t outlen);
/* Local time for people: "2025-06-14 20:30" (with_zone: "... CEST"). */
const char *cli_time_local(const char *rfc3339, bool with_zone, char *buf,
			   size_t len);

/* cli_conf.c */
/* Fills server/ca/cert/key/timeout from the file and environment;
 * flags are applied afterwards by main(). EXIT_OK or EXIT_USAGE. */
int cli_conf_load(struct cli *cli);
int cli_parse_server(struct cli *cli, const char *s);
/* The session file: loaded into cli->session (loaded false if none or not
 * usable, with a warning when it is unsafe). */
void cli_session_load(struct cli *cli);
int cli_session_save(struct cli *cli);
/* Deletes the file; true if there was one. */
bool cli_session_delete(struct cli *cli);
/* Its path, for messages. */
const char *cli_session_path(void);

/* cli_auth.c */
int cli_connect(struct cli *cli);
/* Resumes the saved session on this connection if it belongs to this
 * server. EXIT_OK (resumed or nothing to resume), or an exit code with
 * the message printed ("session expired: log in again"). */
int cli_resume(struct cli *cli);
/* One call; EXIT_OK with *result, or the exit code with the reason on
 * stderr in one sentence. */
int cli_call(struct cli *cli, const char *method, json_t *params,
	     json_t **result);
/* Secret params of the command ("*" in its spec) asked for on the
 * terminal, or read from standard input, into params. */
int cli_fill_secrets(struct cli *cli, const struct cli_command *cmd,
		     json_t *params);
cli_fn cli_cmd_login, cli_cmd_logout, cli_cmd_whoami, cli_cmd_password;
/* cli_events.c */
cli_fn cli_cmd_events;

/* cli_out.c */
void cli_print(struct cli *cli, const struct cli_command *cmd, json_t *result);
void cli_print_json(const json_t *v);
/* Views named in the table. */
extern const struct cli_view view_offer, view_offers, view_offer_series,
    view_guest_list, view_attendance, view_record, view_booking, view_bookings, view_group, view_beneficiary,
    view_beneficiaries, view_partner, view_partners, view_structure,
    view_structures, view_user, view_users, view_waitlist, view_waitlists,
    view_checkin, view_audit, view_permanence, view_permanences, view_draw,
    view_report, view_demand, view_whoami, view_mail_preferences;
/* One server event ({topic, data}) on one line, for people. */
void cli_print_event(const json_t *event);

/* cli.c */
/* The whole program; main() (cli_main.c) only calls it, so that tests
 * can link every module but main. */
int cli_main(int argc, char **argv);
void cli_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
cli_fn cli_run_method, cli_cmd_call, cli_cmd_ping, cli_cmd_version,
    cli_cmd_health;

#endif
