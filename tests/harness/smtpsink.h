/*
 * The SMTP relay of the e-mail tests: tests/harness/smtp_sink.py, started
 * and stopped by the test, which records every message it accepts to a
 * file (one JSON object a line; the script says which fields). Stopping
 * it and starting it again on the same port plays a relay that is down
 * for a while.
 */
#ifndef SMTPSINK_H
#define SMTPSINK_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

struct h_sink {
	pid_t pid;          /* 0 while stopped */
	int port;
	char file[600];     /* $ST_TEST_DIR/run/NAME.mail.jsonl */
	char log[600];      /* its output */
	/* Set before h_sink_start() (NULL: not wanted): STARTTLS required
	 * (or implicit TLS), with this certificate and key; a login
	 * required, as user with password. */
	const char *tls_cert, *tls_key;
	bool implicit_tls;  /* with tls_cert: TLS from the first byte */
	const char *user, *password;
};

/* A port and files for a sink named name; the file starts empty. Not
 * started. */
struct h_sink *h_sink_new(const char *name);
/* Starts it and waits up to 10 s until it listens; fails the test if it
 * does not. */
void h_sink_start(struct h_sink *s);
/* SIGTERM, and waits for it to exit. */
void h_sink_stop(struct h_sink *s);
/* Every message recorded so far, in order (new reference). */
json_t *h_sink_messages(const struct h_sink *s);

#endif
