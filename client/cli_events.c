/*
 * `strapontin events subscribe --topics ...`: subscribes, then prints each
 * event the server sends, one a line (--json: the notification's params,
 * compact), until SIGINT or SIGTERM (exit 0) or the connection ends
 * (exit 3). Output is flushed after every event, so that a pipe into
 * another program sees each one as it comes.
 */
#include <signal.h>
#include <string.h>

#include "cli.h"

/* How often the loop looks at the stop flag while no event comes. */
#define POLL_MS 500

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int
cli_cmd_events(struct cli *cli, const struct cli_command *cmd, json_t *params,
	       int argc, char **argv)
{
	struct sigaction sa;
	struct st_error err = {0};
	json_t *result = NULL, *ev, *topic;
	size_t i;
	int r, st;

	(void)argc;
	(void)argv;
	if ((r = cli_resume(cli)) != EXIT_OK)
		return r;
	if ((r = cli_call(cli, cmd->method, params, &result)) != EXIT_OK)
		return r;
	/* Said on stderr, so that stdout holds nothing but events. */
	fprintf(stderr, _("strapontin: watching"));
	json_array_foreach(json_object_get(result, "topics"), i, topic) {
		fprintf(stderr, "%s %s", i ? "," : "",
			json_string_value(topic));
	}
	fprintf(stderr, _(" on %s (Ctrl-C to stop)\n"), cli->server);
	json_decref(result);

	/* No SA_RESTART: the flag is looked at between waits anyway. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop) {
		st = st_next_event(cli->client, &ev, POLL_MS, &err);
		if (st == ST_ERR_TIMEOUT)
			continue;
		if (st != ST_OK) {
			if (stop)
				break;
			cli_warnx("%s: %s", cli->server, st_strerror(&err));
			st_error_clear(&err);
			return EXIT_CONNECT;
		}
		if (cli->format == FMT_JSON)
			cli_print_json(ev);
		else
			cli_print_event(ev);
		json_decref(ev);
		fflush(stdout);
	}
	return EXIT_OK;
}
