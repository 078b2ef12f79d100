/*
 * Periodic work of every daemon: the waitlist sweep (each second), the
 * retention sweep (policy.retention_interval), the e-mails to compose
 * (policy.mail_interval), and the check of event
 * subscribers' sessions. SKIP LOCKED in the SQL sweeps makes each change
 * happen once with several daemons; each sweep runs one at a time here.
 */
#ifndef JANITOR_H
#define JANITOR_H

struct app;

void janitor_start(struct app *app);
/* No new sweep starts (the daemon is stopping). */
void janitor_stop(void);
void janitor_free(void);

#endif
