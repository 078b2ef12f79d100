/*
 * The e-mail sender (daemon/mail.c, docs/mail.md, "Transport"): two
 * daemons on one database send the rows of mail_outbox to an SMTP relay
 * (tests/harness/smtp_sink.py) that is down for a while, twice: nothing
 * is lost, nothing is sent twice, and what arrives is what was queued
 * (French text intact, the headers a mail client needs). A refused
 * recipient and a message too old are given up; a refusal for now is
 * retried; an address that could add a header is never sent; a message
 * not due yet waits. A reload moves the sender to a relay that wants
 * STARTTLS (certificate checked) and a login (password from a file).
 */
#include "world.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpsink.h"
#include "web.h"

#define N 12            /* messages per outage */

static struct h_sink *sink;
static struct h_daemon *d1, *d2;
static int http1, http2;
static PGconn *db;

static const char *body_fr = "Bonjour,\n\nZoé B. a une sortie demain : "
    "« Théâtre du Rond-Point », 20 h 30.\n.\nUne ligne seule avec un "
    "point, au-dessus : elle doit arriver telle quelle.\n";

static void
ini(char *buf, size_t len, int http_port)
{
	snprintf(buf, len, "[mail]\nhost = 127.0.0.1\nport = %d\n"
	    "starttls = off\nfrom = no-reply@strapontin.test\ninterval = 1\n"
	    "batch = 3\nretry_min = 1\nretry_max = 2\ntimeout = 5\n"
	    "lease = 30\n[http]\nlisten = 127.0.0.1:%d\n"
	    "metrics_allow = 127.0.0.1/32\n", sink->port, http_port);
}

static int
setup(void **state)
{
	char conf[1024];

	sink = h_sink_new("mail");
	http1 = h_free_port();
	http2 = h_free_port();
	ini(conf, sizeof conf, http1);
	d1 = h_daemon_start("mail", conf);
	ini(conf, sizeof conf, http2);
	d2 = h_daemon_start_same_db(d1, "mail_b", conf);
	db = h_db_connect(d1->conninfo);
	return 0;
}

static int
teardown(void **state)
{
	h_sink_stop(sink);
	PQfinish(db);
	if (d2->running)
		h_daemon_stop(d2);
	h_daemon_stop(d1);
	free(sink);
	return 0;
}

static void
queue(int i)
{
	char sql[1024], *body;

	body = PQescapeLiteral(db, body_fr, strlen(body_fr));
	snprintf(sql, sizeof sql, "SELECT core.mail_queue('reminder', "
	    "'referent%d@example.org', 'Rappel : sortie n°%d / Reminder', %s, "
	    "'itest:%d')", i, i, body, i);
	PQfreemem(body);
	h_db_exec(db, sql);
}

static long
count(const char *where)
{
	char sql[512];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM mail_outbox WHERE %s",
	    where);
	return atol(h_db_exec(db, sql));
}

/* Waits (up to 30 s) until want rows match where. */
static void
wait_count(const char *where, long want)
{
	long long deadline = h_now_ms() + 30000LL * h_timeout_scale();
	long n;

	while ((n = count(where)) != want) {
		if (h_now_ms() > deadline)
			h_fail("%ld rows, not %ld, WHERE %s", n, want, where);
		h_sleep_ms(100);
	}
}

/* A metric's value on one daemon (0 if absent). */
static double
metric(int port, const char *series)
{
	struct web_resp *r = web_get(port, "/metrics", NULL);
	size_t n = strlen(series);
	double v = 0;
	char *p;

	if (r->status != 200)
		h_fail("GET /metrics: %d", r->status);
	for (p = r->body; p != NULL; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			v = strtod(p + n + 1, NULL);
	}
	web_free(r);
	return v;
}

/* Each of messages [from, to) arrived exactly once, as it was queued;
 * nothing else arrived; returns how many messages the sink holds. */
static size_t
check_arrived(int from, int to)
{
	json_t *all = h_sink_messages(sink), *m;
	char subject[128], rcpt[64];
	size_t i, total = json_array_size(all);
	int k, seen;

	for (k = from; k < to; k++) {
		snprintf(subject, sizeof subject,
		    "Rappel : sortie n°%d / Reminder", k);
		snprintf(rcpt, sizeof rcpt, "referent%d@example.org", k);
		seen = 0;
		json_array_foreach(all, i, m) {
			if (strcmp(w_str(m, "subject"), subject) != 0)
				continue;
			seen++;
			assert_string_equal(w_str(m, "body"), body_fr);
			assert_string_equal(w_str(m, "from"),
			    "no-reply@strapontin.test");
			assert_string_equal(json_string_value(json_array_get(
			    json_object_get(m, "to"), 0)), rcpt);
			assert_non_null(strstr(w_str(m, "message_id"),
			    "@strapontin.test>"));
			assert_string_equal(json_string_value(json_object_get(
			    json_object_get(m, "headers"), "Auto-Submitted")),
			    "auto-generated");
			assert_non_null(strstr(json_string_value(
			    json_object_get(json_object_get(m, "headers"),
			    "Content-Type")), "charset=\"UTF-8\""));
		}
		if (seen != 1)
			h_fail("message %d arrived %d times", k, seen);
	}
	/* Message-IDs are unique: no message went twice under another
	 * subject either. */
	json_array_foreach(all, i, m) {
		size_t j;

		for (j = i + 1; j < total; j++)
			assert_string_not_equal(w_str(m, "message_id"),
			    w_str(json_array_get(all, j), "message_id"));
	}
	json_decref(all);
	return total;
}

/* The relay down, then up, twice, with two daemons sending. */
static void
test_relay_down_two_daemons(void **state)
{
	double sent, failed;
	int i;

	/* Not due for an hour: waits whatever happens. */
	h_db_exec(db, "SELECT core.mail_queue('reminder', "
	    "'later-on@example.org', 's', 'b', 'itest:future', "
	    "now() + interval '1 hour')");
	for (i = 0; i < N; i++)
		queue(i);
	/* Every message tried, and tried again, while the relay is down. */
	wait_count("dedup_key LIKE 'itest:_%' AND dedup_key <> 'itest:future' "
	    "AND attempts >= 2 AND last_error IS NOT NULL", N);
	assert_int_equal(count("sent_at IS NOT NULL OR given_up_at IS NOT "
	    "NULL"), 0);
	h_sink_start(sink);
	wait_count("sent_at IS NOT NULL", N);
	assert_int_equal(check_arrived(0, N), N);
	/* Who sent each is recorded. */
	assert_int_equal(count("sent_at IS NOT NULL AND (lease_owner IS NULL "
	    "OR lease_until IS NOT NULL OR last_error IS NOT NULL)"), 0);

	/* Down again, with messages queued meanwhile. */
	h_sink_stop(sink);
	for (i = N; i < 2 * N; i++)
		queue(i);
	wait_count("sent_at IS NULL AND attempts >= 1 AND last_error IS NOT "
	    "NULL AND dedup_key <> 'itest:future'", N);
	h_sink_start(sink);
	wait_count("sent_at IS NOT NULL", 2 * N);
	assert_int_equal(check_arrived(0, 2 * N), 2 * N);

	assert_int_equal(count("dedup_key = 'itest:future' AND attempts = 0 "
	    "AND sent_at IS NULL"), 1);
	assert_int_equal(count("given_up_at IS NOT NULL"), 0);
	/* Each daemon counts what it sent: together, each message once. */
	sent = metric(http1, "strapontin_mail_sent_total") +
	    metric(http2, "strapontin_mail_sent_total");
	assert_true(sent == 2 * N);
	failed = metric(http1, "strapontin_mail_failed_total{kind=\"temporary\"}")
	    + metric(http2, "strapontin_mail_failed_total{kind=\"temporary\"}");
	assert_true(failed >= N);
	assert_true(metric(http1, "strapontin_mail_backlog") >= 1);
}

/* What the relay refuses, and what no relay should get. */
static void
test_refusals(void **state)
{
	json_t *all;
	size_t i, before;

	h_sink_start(sink);
	all = h_sink_messages(sink);
	before = json_array_size(all);
	json_decref(all);
	/* 550 at RCPT: the address will not work tomorrow either. */
	h_db_exec(db, "SELECT core.mail_queue('voucher', 'bounce@example.org',"
	    " 'Votre billet', 'x', 'itest:bounce')");
	/* 451: retried, until it waited mail.give_up_after (3 days). */
	h_db_exec(db, "SELECT core.mail_queue('voucher', 'later@example.org',"
	    " 'Votre billet', 'x', 'itest:later')");
	h_db_exec(db, "INSERT INTO mail_outbox (kind, recipient, subject, "
	    "body, dedup_key, created_at, not_before) VALUES ('voucher', "
	    "'later-old@example.org', 'Votre billet', 'x', 'itest:old', "
	    "now() - interval '4 days', now() - interval '4 days')");
	/* An address that would add a header. */
	h_db_exec(db, "SELECT core.mail_queue('voucher', "
	    "E'a@example.org\\r\\nBcc: spy@example.org', 'Votre billet', 'x',"
	    " 'itest:inject')");

	wait_count("dedup_key IN ('itest:bounce', 'itest:old', "
	    "'itest:inject') AND given_up_at IS NOT NULL AND attempts = 1", 3);
	assert_int_equal(count("dedup_key = 'itest:bounce' AND last_error "
	    "LIKE '%550%'"), 1);
	wait_count("dedup_key = 'itest:later' AND attempts >= 2", 1);
	assert_int_equal(count("dedup_key = 'itest:later' AND given_up_at "
	    "IS NULL AND sent_at IS NULL"), 1);
	assert_int_equal(count("sent_at IS NOT NULL AND dedup_key IN "
	    "('itest:bounce', 'itest:old', 'itest:inject', 'itest:later')"), 0);
	all = h_sink_messages(sink);
	assert_int_equal(json_array_size(all), before);
	for (i = 0; i < json_array_size(all); i++)
		assert_null(strstr(h_json_str(json_array_get(all, i)), "spy@"));
	json_decref(all);
	assert_true(metric(http1, "strapontin_mail_given_up_total") +
	    metric(http2, "strapontin_mail_given_up_total") == 3);
	assert_true(metric(http1, "strapontin_mail_failed_total{kind=\"permanent\"}")
	    + metric(http2, "strapontin_mail_failed_total{kind=\"permanent\"}")
	    == 2);
}

/* A relay that wants TLS (STARTTLS, or from the first byte) and a login,
 * with the test CA's certificate; d1 (alone by then) is moved to it by a
 * SIGHUP, its password read from mail.password_file. */
static struct h_sink *
tls_relay(const char *name, bool implicit)
{
	struct h_sink *tls = h_sink_new(name);
	static char cert[600], key[600];
	char ca[600], pwfile[600], conf[2048];
	int reloads = h_log_count(d1, "configuration reloaded");
	long long t0;
	FILE *f;

	snprintf(cert, sizeof cert, "%s/server.pem", h_certs_dir());
	snprintf(key, sizeof key, "%s/server.key", h_certs_dir());
	snprintf(ca, sizeof ca, "%s/ca.pem", h_certs_dir());
	snprintf(pwfile, sizeof pwfile, "%s/smtp-password", d1->dir);
	tls->tls_cert = cert;
	tls->tls_key = key;
	tls->implicit_tls = implicit;
	tls->user = "strapontin";
	tls->password = "s3cret pass";
	h_sink_start(tls);
	if ((f = fopen(pwfile, "w")) == NULL)
		h_fail("cannot write %s", pwfile);
	fputs("s3cret pass\n", f);
	fclose(f);
	snprintf(conf, sizeof conf, "[mail]\nhost = localhost\nport = %d\n"
	    "implicit_tls = %s\nfrom = no-reply@strapontin.test\n"
	    "ca_file = %s\nusername = strapontin\npassword_file = %s\n"
	    "interval = 1\nretry_min = 1\nretry_max = 2\ntimeout = 5\n"
	    "lease = 30\n[http]\nlisten = 127.0.0.1:%d\n"
	    "metrics_allow = 127.0.0.1/32\n", tls->port,
	    implicit ? "on" : "off", ca, pwfile, http1);
	h_daemon_write_conf(d1, conf);
	assert_int_equal(h_daemon_signal(d1, SIGHUP), 0);
	t0 = h_now_ms();
	while (h_log_count(d1, "configuration reloaded") == reloads) {
		if (h_now_ms() - t0 > 10000)
			h_fail("no reload");
		h_sleep_ms(50);
	}
	return tls;
}

/* One message queued by hand reaches the relay, subject and body intact. */
static void
expect_through(struct h_sink *relay, const char *to, const char *subject,
    const char *key)
{
	char sql[512], where[128];
	json_t *all;

	snprintf(sql, sizeof sql, "SELECT core.mail_queue('voucher', '%s', "
	    "'%s', 'Bonjour Zoé', '%s')", to, subject, key);
	h_db_exec(db, sql);
	snprintf(where, sizeof where, "dedup_key = '%s' AND sent_at IS NOT "
	    "NULL", key);
	wait_count(where, 1);
	all = h_sink_messages(relay);
	assert_int_equal(json_array_size(all), 1);
	assert_string_equal(w_str(json_array_get(all, 0), "subject"), subject);
	assert_string_equal(w_str(json_array_get(all, 0), "body"),
	    "Bonjour Zoé");
	json_decref(all);
}

/* SIGHUP moves the sender to another relay: STARTTLS with the test CA,
 * and a login whose password is read from mail.password_file. */
static void
test_starttls_login_after_reload(void **state)
{
	struct h_sink *tls;

	(void)state;
	/* One daemon, so that the message goes through the reloaded one. */
	h_daemon_stop(d2);
	tls = tls_relay("mail_tls", false);
	expect_through(tls, "tls@example.org", "Votre billet – chiffré",
	    "itest:tls");
	h_sink_stop(tls);
	free(tls);
}

/* A relay that speaks TLS from the first byte (SMTPS): implicit_tls, with
 * the same certificate checks and the login. */
static void
test_implicit_tls(void **state)
{
	struct h_sink *tls;

	(void)state;
	tls = tls_relay("mail_smtps", true);
	expect_through(tls, "smtps@example.org", "Votre billet – SMTPS",
	    "itest:smtps");
	h_sink_stop(tls);
	free(tls);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_down_two_daemons),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_starttls_login_after_reload),
		cmocka_unit_test(test_implicit_tls),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
