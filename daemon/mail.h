/*
 * The e-mail sender (docs/mail.md, "Transport"): every daemon takes due
 * rows of mail_outbox under a lease (api.mail_claim), sends them to the
 * relay of [mail] over SMTP with libcurl, and records what became of each
 * (api.mail_settle): sent, retried after a backoff, or given up.
 *
 * libcurl blocks, so messages are sent by a thread of the module's own
 * (a workpool of one thread, apart from the password workers): the loop
 * only claims, hands each message over and settles the answers. That
 * thread owns the curl handle, so the relay's connection is kept from one
 * message to the next; it reads nothing of the loop's but the message and
 * a copy of the settings made when the message was claimed.
 *
 * Without mail.host, nothing is claimed: messages wait in the outbox.
 */
#ifndef MAIL_H
#define MAIL_H

struct app;

/* Starts the timer that looks at the outbox every mail.interval and the
 * sending thread; fatal if the thread cannot start. */
void mail_start(struct app *app);
/* The configuration changed (SIGHUP): reads mail.password_file again. */
void mail_reload(void);
/* No new claim; the message being sent is abandoned (its row is sent
 * again after mail.lease, by this daemon or another). */
void mail_stop(void);
/* After the database pool is gone: joins the thread, frees the rest. */
void mail_free(void);

#endif
