#include "mail.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "sqlcall.h"
#include "util.h"
#include "workpool.h"

/* What a message is sent with: copied from the configuration when it is
 * claimed, so that the thread never reads a configuration a reload may
 * free. Shared by the messages of one claim; counted on the loop only. */
struct mail_conf {
	int refs;
	char *url;              /* smtp://host:port, smtps:// with implicit TLS */
	char *from;
	const char *domain;     /* in from, for the Message-ID */
	char *username;         /* NULL: no AUTH */
	char *password;
	char *ca_file;
	bool starttls;
	bool implicit_tls;      /* TLS from the first byte (port 465) */
	long timeout_ms;
};

/* One message, from its claim to its settle. The thread writes payload
 * and the outcome; the loop reads them only in send_done(), after. */
struct mail_msg {
	struct mail_conf *conf;
	long long id;
	long long created_at;   /* seconds since the epoch */
	char *kind;
	char *recipient;
	char *subject;
	char *body;
	char *payload;          /* headers and body, CRLF, base64 */
	size_t len, off;
	bool ok;
	bool permanent;         /* the recipient is refused for good */
	char error[256];
};

static struct {
	struct app *app;
	struct workpool *wp;    /* one thread: the sender */
	struct event *timer;
	char owner[160];        /* lease_owner: host:pid:start */
	char *password;         /* mail.password_file's first line */
	bool claiming;
	bool claim_due;         /* a tick came, or the last claim was full */
	size_t sending;         /* messages handed to the thread */
	json_t *results;        /* outcomes not settled yet */
	json_t *settling;       /* those of the settle in flight */
	bool stopped;
	CURL *curl;             /* the thread's; kept, with its connection */
} mail;

/* Set by the loop to make the thread drop the message it sends. */
static atomic_bool mail_abort;

static void mail_kick(void);

/* ---- the thread -------------------------------------------------------- */

/* An address the relay can be given as it is, and that cannot add a
 * header: printable ASCII, one @, none of the characters that separate
 * addresses. */
static bool
address_ok(const char *a)
{
	const char *at = strchr(a, '@');
	size_t n = strlen(a);

	if (n < 3 || n > 254 || at == NULL || at == a || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL)
		return false;
	for (; *a != '\0'; a++)
		if (*a <= ' ' || *a >= 0x7f || strchr("<>,;:()\"\\[]", *a))
			return false;
	return true;
}

static void
buf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		while (*len + n + 1 > *cap)
			*cap = *cap ? *cap * 2 : 1024;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

/* The subject as RFC 2047 encoded words of whole UTF-8 characters (a
 * word may not split one), each at most 75 characters, on folded lines. */
static void
add_subject(char **buf, size_t *len, size_t *cap, const char *s)
{
	unsigned char out[64 + 1];
	size_t n = strlen(s), take;
	int k;

	buf_add(buf, len, cap, "Subject:", 8);
	do {
		take = n < 45 ? n : 45;
		/* back off to the start of a character */
		while (take < n && take > 0 &&
		    ((unsigned char)s[take] & 0xc0) == 0x80)
			take--;
		k = EVP_EncodeBlock(out, (const unsigned char *)s, (int)take);
		buf_add(buf, len, cap, " =?UTF-8?B?", 11);
		buf_add(buf, len, cap, (const char *)out, (size_t)k);
		buf_add(buf, len, cap, "?=\r\n", 4);
		s += take;
		n -= take;
	} while (n > 0);
}

/* The message as the relay gets it: headers, then the body in base64 (a
 * line of any length, any byte and a lone "." go through unharmed). */
static void
build_payload(struct mail_msg *m)
{
	static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat"};
	static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	unsigned char out[76 + 1];
	char *buf = NULL, *h;
	size_t len = 0, cap = 0, blen = strlen(m->body), take;
	time_t now = time(NULL);
	struct tm tm;
	int k;

	gmtime_r(&now, &tm);
	h = xasprintf("Date: %s, %02d %s %d %02d:%02d:%02d +0000\r\n"
	    "From: Strapontin <%s>\r\nTo: <%s>\r\n"
	    "Message-ID: <strapontin.%lld.%lld@%s>\r\n",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    m->conf->from, m->recipient, m->id, m->created_at,
	    m->conf->domain);
	buf_add(&buf, &len, &cap, h, strlen(h));
	free(h);
	add_subject(&buf, &len, &cap, m->subject);
	h = "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Auto-Submitted: auto-generated\r\n\r\n";
	buf_add(&buf, &len, &cap, h, strlen(h));
	for (h = m->body; blen > 0; h += take, blen -= take) {
		take = blen < 57 ? blen : 57;
		k = EVP_EncodeBlock(out, (const unsigned char *)h, (int)take);
		buf_add(&buf, &len, &cap, (const char *)out, (size_t)k);
		buf_add(&buf, &len, &cap, "\r\n", 2);
	}
	m->payload = buf;
	m->len = len;
	m->off = 0;
}

static size_t
read_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct mail_msg *m = arg;
	size_t n = size * nmemb;

	if (n > m->len - m->off)
		n = m->len - m->off;
	memcpy(ptr, m->payload + m->off, n);
	m->off += n;
	return n;
}

/* A stopping daemon does not wait for a slow relay. */
static int
progress_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	return atomic_load(&mail_abort) ? 1 : 0;
}

static void
send_setopt(CURL *c, struct mail_msg *m, struct curl_slist *rcpt,
    char *errbuf)
{
	char *from = xasprintf("<%s>", m->conf->from);

	curl_easy_setopt(c, CURLOPT_URL, m->conf->url);
	/* One scheme only: a URL of the other would never be followed. */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, m->conf->implicit_tls ?
	    "smtps" : "smtp");
	curl_easy_setopt(c, CURLOPT_USE_SSL, m->conf->starttls ||
	    m->conf->implicit_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	if (m->conf->username != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, m->conf->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, m->conf->password != NULL ?
		    m->conf->password : "");
	}
	if (m->conf->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, m->conf->ca_file);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, m);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, m->conf->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, m->conf->timeout_ms);
	/* also bounds the QUIT of a connection closed later */
	curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT,
	    m->conf->timeout_ms / 1000 > 0 ? m->conf->timeout_ms / 1000 : 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	/* curl copies the strings it is given */
	free(from);
}

/* Runs on the sender thread: one message to the relay. */
static void
send_work(void *arg)
{
	struct mail_msg *m = arg;
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *rcpt;
	long code = 0;
	CURLcode rc;

	if (atomic_load(&mail_abort)) {
		snprintf(m->error, sizeof m->error, "the daemon is stopping");
		return;
	}
	if (!address_ok(m->recipient)) {
		m->permanent = true;
		snprintf(m->error, sizeof m->error, "not an address the "
		    "sender takes (ASCII, one @, no separators)");
		return;
	}
	if (mail.curl == NULL && (mail.curl = curl_easy_init()) == NULL) {
		snprintf(m->error, sizeof m->error, "curl_easy_init failed");
		return;
	}
	/* A reset keeps the connection to the relay for the next message. */
	curl_easy_reset(mail.curl);
	build_payload(m);
	rcpt = curl_slist_append(NULL, m->recipient);
	errbuf[0] = '\0';
	send_setopt(mail.curl, m, rcpt, errbuf);
	rc = curl_easy_perform(mail.curl);
	curl_easy_getinfo(mail.curl, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_setopt(mail.curl, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(rcpt);
	free(m->payload);
	m->payload = NULL;
	if (rc == CURLE_OK) {
		m->ok = true;
		return;
	}
	/* Only a refused recipient is final (its address will not work
	 * tomorrow either); a refused sender, a login or a relay that is
	 * down is a problem of ours or of the moment: retried. */
	m->permanent = code >= 500 && code < 600 &&
	    strncmp(errbuf, "RCPT failed", 11) == 0;
	snprintf(m->error, sizeof m->error, "%s (%s, SMTP %ld)",
	    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc),
	    curl_easy_strerror(rc), code);
}

/* Runs on the sender thread, last: the connection's QUIT is the thread's
 * to wait for, not the loop's. */
static void
close_work(void *arg)
{
	if (mail.curl != NULL)
		curl_easy_cleanup(mail.curl);
	mail.curl = NULL;
}

static void
close_done(void *arg)
{
}

/* ---- the loop ---------------------------------------------------------- */

static void
conf_unref(struct mail_conf *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	free(c->url);
	free(c->from);
	free(c->username);
	if (c->password != NULL) {
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
	}
	free(c->ca_file);
	free(c);
}

static struct mail_conf *
conf_new(const struct config *cfg)
{
	struct mail_conf *c = xcalloc(1, sizeof *c);
	bool v6 = strchr(cfg->mail_host, ':') != NULL;

	c->refs = 1;
	c->implicit_tls = cfg->mail_implicit_tls;
	c->url = xasprintf("%s://%s%s%s:%lld", c->implicit_tls ? "smtps" :
	    "smtp", v6 ? "[" : "",
	    cfg->mail_host, v6 ? "]" : "", cfg->mail_port);
	c->from = xstrdup(cfg->mail_from);
	c->domain = strchr(c->from, '@') + 1;  /* config.c checked the @ */
	if (cfg->mail_username != NULL)
		c->username = xstrdup(cfg->mail_username);
	if (mail.password != NULL)
		c->password = xstrdup(mail.password);
	if (cfg->mail_ca_file != NULL)
		c->ca_file = xstrdup(cfg->mail_ca_file);
	c->starttls = cfg->mail_starttls;
	c->timeout_ms = (long)cfg->mail_timeout * 1000;
	return c;
}

static void
msg_free(struct mail_msg *m)
{
	conf_unref(m->conf);
	free(m->kind);
	free(m->recipient);
	free(m->subject);
	free(m->body);
	free(m->payload);
	free(m);
}

static bool
idle(void)
{
	return !mail.claiming && mail.sending == 0 && mail.settling == NULL &&
	    json_array_size(mail.results) == 0;
}

static void
settle_done(PGresult *res, enum db_status st, void *arg)
{
	const struct config *cfg = mail.app->cfg;
	long long given_up;

	if (mail.stopped)
		goto out;
	if (st != DB_OK) {
		if (st == DB_SQL_ERROR)
			log_error("mail: settle: %s", PQresultErrorMessage(res));
		else
			log_warn("mail: cannot record %zu outcomes now; "
			    "trying again", json_array_size(mail.settling));
		/* Kept for the next tick, before what came meanwhile. */
		json_array_extend(mail.settling, mail.results);
		json_decref(mail.results);
		mail.results = mail.settling;
		mail.settling = NULL;
		return;
	}
	if (PQntuples(res) == 1 && parse_ll(PQgetvalue(res, 0, 0), 0,
	    1LL << 40, &given_up) && given_up > 0) {
		metrics_add(M_MAIL_GIVEN_UP, (double)given_up);
		log_error("mail: %lld message(s) given up (mail_outbox."
		    "given_up_at; last_error says why; mail.give_up_after %llds)",
		    given_up, cfg->mail_give_up_after);
	}
out:
	json_decref(mail.settling);
	mail.settling = NULL;
	if (!mail.stopped)
		mail_kick();
}

static void
settle(void)
{
	const struct config *cfg = mail.app->cfg;
	char min[24], max[24], give[24];
	const char *vals[5];
	char *results;

	mail.settling = mail.results;
	mail.results = json_array();
	results = json_dumps(mail.settling, JSON_COMPACT);
	snprintf(min, sizeof min, "%lld", cfg->mail_retry_min);
	snprintf(max, sizeof max, "%lld", cfg->mail_retry_max);
	snprintf(give, sizeof give, "%lld", cfg->mail_give_up_after);
	vals[0] = mail.owner;
	vals[1] = results;
	vals[2] = min;
	vals[3] = max;
	vals[4] = give;
	db_exec(mail.app->db, sqlcall_stmt(STMT_MAIL_SETTLE), 5, vals,
	    settle_done, NULL);
	free(results);
}

/* On the loop, once the thread is done with m. */
static void
send_done(void *arg)
{
	struct mail_msg *m = arg;
	json_t *r;

	mail.sending--;
	if (mail.stopped) {
		msg_free(m);
		return;
	}
	r = json_pack("{s:I, s:b}", "id", (json_int_t)m->id, "ok", m->ok);
	if (m->ok) {
		metrics_add(M_MAIL_SENT, 1);
		log_debug("mail: message %lld (%s) sent", m->id, m->kind);
	} else {
		metrics_add(M_MAIL_FAILED, 1, m->permanent ? "permanent" :
		    "temporary");
		json_object_set_new(r, "permanent", json_boolean(m->permanent));
		json_object_set_new(r, "error", json_string(m->error));
		log_warn("mail: message %lld (%s) not sent: %s", m->id,
		    m->kind, m->error);
	}
	json_array_append_new(mail.results, r);
	msg_free(m);
	if (mail.settling == NULL)
		settle();
}

static struct mail_msg *
msg_new(json_t *item, struct mail_conf *conf)
{
	struct mail_msg *m;
	const char *kind, *rcpt, *subject, *body;
	json_int_t id, created;

	if (json_unpack(item, "{s:I, s:s, s:s, s:s, s:s, s:I}", "id", &id,
	    "kind", &kind, "recipient", &rcpt, "subject", &subject,
	    "body", &body, "created_at", &created) != 0)
		return NULL;
	m = xcalloc(1, sizeof *m);
	m->conf = conf;
	conf->refs++;
	m->id = id;
	m->created_at = created;
	m->kind = xstrdup(kind);
	m->recipient = xstrdup(rcpt);
	m->subject = xstrdup(subject);
	m->body = xstrdup(body);
	return m;
}

static void
claim_done(PGresult *res, enum db_status st, void *arg)
{
	const struct config *cfg = mail.app->cfg;
	struct mail_conf *conf;
	struct mail_msg *m;
	json_t *j, *items, *item;
	size_t i;

	mail.claiming = false;
	if (mail.stopped || st != DB_OK) {
		if (st == DB_SQL_ERROR)
			log_error("mail: claim: %s", PQresultErrorMessage(res));
		return;
	}
	if ((j = sqlcall_json(res)) == NULL ||
	    !json_is_array(items = json_object_get(j, "items"))) {
		log_error("mail: claim: unexpected answer");
		json_decref(j);
		return;
	}
	metrics_set(M_MAIL_BACKLOG, (double)json_integer_value(
	    json_object_get(j, "backlog")));
	/* The relay may have changed since the claim was asked (SIGHUP):
	 * whatever mail.host is now, the rows are leased and go to it. */
	if (cfg->mail_host == NULL) {
		json_decref(j);
		return;
	}
	conf = conf_new(cfg);
	json_array_foreach(items, i, item) {
		if ((m = msg_new(item, conf)) == NULL) {
			log_error("mail: claim: malformed item");
			continue;
		}
		mail.sending++;
		workpool_submit(mail.wp, send_work, send_done, m);
	}
	mail.claim_due = json_array_size(items) == (size_t)cfg->mail_batch;
	conf_unref(conf);
	json_decref(j);
}

static void
claim(void)
{
	const struct config *cfg = mail.app->cfg;
	char limit[24], lease[24];
	const char *vals[3];

	snprintf(limit, sizeof limit, "%lld", cfg->mail_batch);
	snprintf(lease, sizeof lease, "%lld", cfg->mail_lease);
	vals[0] = mail.owner;
	vals[1] = limit;
	vals[2] = lease;
	mail.claiming = true;
	mail.claim_due = false;
	db_exec(mail.app->db, sqlcall_stmt(STMT_MAIL_CLAIM), 3, vals,
	    claim_done, NULL);
}

/* One claim at a time, after the last one's outcomes are recorded: a
 * message is never claimed by its own daemon while still in hand. A
 * full batch is followed by the next at once; otherwise the timer. */
static void
mail_kick(void)
{
	if (mail.stopped || !db_pool_up(mail.app->db))
		return;
	/* Outcomes are recorded even if a reload just unset mail.host. */
	if (mail.settling == NULL && json_array_size(mail.results) > 0)
		settle();
	else if (idle() && mail.claim_due && mail.app->cfg->mail_host != NULL)
		claim();
}

/* mail.interval may change on reload: re-armed each time. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = {(time_t)mail.app->cfg->mail_interval, 0};

	if (mail.stopped)
		return;
	evtimer_add(mail.timer, &tv);
	mail.claim_due = mail.claim_due || idle();
	mail_kick();
}

/* The first line of mail.password_file; NULL (logged) if unreadable. */
static char *
password_read(const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		log_error("mail.password_file %s: %s", path, strerror(errno));
		return NULL;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	if (n < 0) {
		log_error("mail.password_file %s: empty", path);
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static void
password_forget(void)
{
	if (mail.password != NULL) {
		explicit_bzero(mail.password, strlen(mail.password));
		free(mail.password);
	}
	mail.password = NULL;
}

void
mail_reload(void)
{
	const char *path = mail.app->cfg->mail_password_file;
	char *pw;

	if (path == NULL) {
		password_forget();
		return;
	}
	/* An unreadable file keeps the password read before. */
	if ((pw = password_read(path)) != NULL) {
		password_forget();
		mail.password = pw;
	}
}

void
mail_start(struct app *app)
{
	struct timeval second = {1, 0};
	char host[64];

	mail.app = app;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatal("mail: cannot initialise libcurl");
	if ((mail.wp = workpool_new(app->base, 1)) == NULL)
		fatal("mail: cannot start the sender thread");
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "?");
	host[sizeof host - 1] = '\0';
	snprintf(mail.owner, sizeof mail.owner, "%s:%ld:%llu", host,
	    (long)getpid(), (unsigned long long)time(NULL));
	mail.results = json_array();
	atomic_store(&mail_abort, false);
	mail_reload();
	if (app->cfg->mail_password_file != NULL && mail.password == NULL)
		fatal("mail: cannot read mail.password_file");
	mail.timer = evtimer_new(app->base, timer_cb, NULL);
	evtimer_add(mail.timer, &second);
	if (app->cfg->mail_host != NULL)
		log_info("mail: sending to %s port %lld%s as %s", app->cfg->
		    mail_host, app->cfg->mail_port, app->cfg->mail_implicit_tls ?
		    " (TLS)" : app->cfg->mail_starttls ? " (STARTTLS)" : "",
		    mail.owner);
}

void
mail_stop(void)
{
	mail.stopped = true;
	atomic_store(&mail_abort, true);
	if (mail.timer != NULL)
		event_del(mail.timer);
}

void
mail_free(void)
{
	if (mail.wp != NULL) {
		mail_stop();
		workpool_submit(mail.wp, close_work, close_done, NULL);
		/* Delivers the last send_done()s, which only free. */
		workpool_free(mail.wp);
		curl_global_cleanup();
	}
	if (mail.timer != NULL)
		event_free(mail.timer);
	json_decref(mail.results);
	json_decref(mail.settling);
	password_forget();
	memset(&mail, 0, sizeof mail);
}
