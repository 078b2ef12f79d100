/*
 * Harness: the CLI's argument parser (client/cli_params.c), which turns
 * NOUN VERB [ID] --flag value ... into a method's params before anything
 * is sent. The input is one word a line:
 *
 *	offer publish
 *	--title
 *	Scapin
 *	--seats=40
 *
 * the first line names the command as a person would ("offer publish",
 * "ping", "call"), the others are its arguments. Usage errors are the
 * normal outcome; what matters is that none crashes, leaks or trips a
 * sanitizer, and that params come out an object exactly when the parser
 * says EXIT_OK. A --help prints the command's help (to /dev/null).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fuzz.h"

#define MAX_WORDS 64

static FILE *devnull;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Usage messages go to stderr through stdio: silence them, but not
	 * the sanitizers or libFuzzer, which write to the file descriptor
	 * (or to a stream opened before this). */
	if ((devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	stderr = devnull;
	/* Local times ("2025-06-14 20:30") are read in a fixed zone. */
	setenv("TZ", "Europe/Paris", 1);
	return 0;
}

static void
run(const struct cli_command *cmd, const char *words, int argc, char **argv)
{
	struct cli cli;
	json_t *params = NULL;
	char *dump;
	int r;

	memset(&cli, 0, sizeof cli);
	cli.words = words;
	cli.cmd = cmd;
	if (cmd->fn == cli_cmd_call)
		/* call METHOD --field value: argv[0] is the method */
		r = argc > 0 ? cli_params_generic(&cli, argc - 1, argv + 1,
		    &params) : EXIT_USAGE;
	else
		r = cli_params_from_args(&cli, cmd, argc, argv, &params);
	if (r != EXIT_OK && r != EXIT_USAGE)
		abort();
	/* Params exactly on success; but the help, which `call` looks for
	 * before (cli_cmd_call) and the others say so with cli.help. */
	if (r == EXIT_OK ? params == NULL && !cli.help : params != NULL)
		abort();
	if (params != NULL && !json_is_object(params))
		abort();
	if (cli.help && cmd->fn != cli_cmd_call)
		cli_params_help(devnull, cmd);
	if (params != NULL) {
		if ((dump = json_dumps(params, JSON_COMPACT)) == NULL)
			abort();
		free(dump);
	}
	json_decref(params);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct cli_command *cmd;
	char *buf, *rest, *argv[MAX_WORDS + 1], *noun, *verb, *line;
	char words[64];
	int argc = 0;

	if (devnull == NULL)
		LLVMFuzzerInitialize(NULL, NULL);
	if ((buf = malloc(size + 1)) == NULL)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	rest = buf;
	line = strsep(&rest, "\n");
	while (rest != NULL && argc < MAX_WORDS)
		argv[argc++] = strsep(&rest, "\n");
	argv[argc] = NULL;
	/* "noun verb", or a one-word command. */
	noun = line;
	verb = strchr(line, ' ');
	if (verb != NULL)
		*verb++ = '\0';
	cmd = verb != NULL ? cli_find(noun, verb) : cli_find(noun, NULL);
	if (cmd != NULL) {
		snprintf(words, sizeof words, "%s%s%s", cmd->noun,
		    cmd->verb ? " " : "", cmd->verb ? cmd->verb : "");
		run(cmd, words, argc, argv);
	}
	free(buf);
	return 0;
}
