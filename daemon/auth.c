#include "auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "app.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "methods.h"
#include "metrics.h"
#include "pwhash.h"
#include "rpc.h"
#include "sqlcall.h"
#include "workpool.h"

struct login;
static char *take_password(struct request *req, const char *name);
static void login_start(struct login *l);

/* Worker pool classes: a flood of logins must not hold password changes
 * and user.create behind it, nor the other way round. */
#define AUTH_JOB_LOGIN 0
#define AUTH_JOB_PASSWORD 1

/* Logins and password changes in progress or waiting. Attempts on one
 * e-mail, or from one address, run one at a time in a daemon, so each sees
 * the failures of the one before: pipelined guesses cannot all be checked
 * before the first failure is counted (the throttle of docs/protocol.md,
 * auth.login), and colleagues logging in at once are queued, not refused.
 * A password change checks the old password as a login would, in the same
 * queue. */
static TAILQ_HEAD(, login) logins = TAILQ_HEAD_INITIALIZER(logins);

struct login {
	TAILQ_ENTRY(login) entry;
	bool started;
	bool change;            /* auth.change_password, not auth.login */
	struct request *req;
	char *email;
	char *password;         /* the old one for a change */
	char *new_password;     /* change only */
	char *stored;           /* NULL: unknown or disabled account */
	char *new_hash;         /* change: of new_password; login: a rehash
	                           if stored used a lower cost */
	long long user_id;
	bool ok;
	char token[44];
	char token_hash[65];
};

void
auth_token_hash(const char *token, char hash[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)token, strlen(token), md);
	hex_encode(md, sizeof md, hash);
}

void
auth_new_token(char token[44], char hash[65])
{
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33];
	size_t i;

	if (RAND_bytes(raw, 32) != 1)
		fatal("the random generator failed");
	raw[32] = 0;
	/* 32 bytes: 10 groups of 3 bytes (40 characters), then 2 bytes. */
	for (i = 0; i < 11; i++) {
		unsigned v = (unsigned)raw[3 * i] << 16 |
		    (unsigned)raw[3 * i + 1] << 8 |
		    (3 * i + 2 < 33 ? raw[3 * i + 2] : 0);

		token[4 * i] = b64url[(v >> 18) & 63];
		token[4 * i + 1] = b64url[(v >> 12) & 63];
		token[4 * i + 2] = b64url[(v >> 6) & 63];
		if (i < 10)
			token[4 * i + 3] = b64url[v & 63];
	}
	token[43] = '\0';
	OPENSSL_cleanse(raw, sizeof raw);
	auth_token_hash(token, hash);
}

static void login_release(struct login *l);

static bool
logins_conflict(const struct login *a, const struct login *b)
{
	return strcmp(a->email, b->email) == 0 ||
	    strcmp(rpc_peer_addr(a->req->peer), rpc_peer_addr(b->req->peer)) == 0;
}

/* True if no login started before l in the list conflicts with it. */
static bool
login_may_start(const struct login *l)
{
	const struct login *o;

	TAILQ_FOREACH(o, &logins, entry) {
		if (o == l)
			return true;
		if (logins_conflict(o, l))
			return false;
	}
	return true;
}

/* Every login ends here: waiting attempts it held back may go. Starting
 * one runs a query; should its callback ever come before db_exec returns
 * and free a login, the nested call only flags the list as changed and the
 * walk starts over, never following a pointer it has not just read. */
static void
login_free(struct login *l)
{
	static bool walking, changed;
	struct login *w;

	TAILQ_REMOVE(&logins, l, entry);
	login_release(l);
	changed = true;
	if (walking)
		return;
	walking = true;
	while (changed) {
		changed = false;
		TAILQ_FOREACH(w, &logins, entry) {
			if (!w->started && login_may_start(w)) {
				login_start(w);
				if (changed)
					break;
			}
		}
	}
	walking = false;
}

static void
wipe_free(char *p)
{
	if (p != NULL) {
		OPENSSL_cleanse(p, strlen(p));
		free(p);
	}
}

static void
login_release(struct login *l)
{
	wipe_free(l->password);
	wipe_free(l->new_password);
	free(l->email);
	free(l->stored);
	free(l->new_hash);
	OPENSSL_cleanse(l->token, sizeof l->token);
	free(l);
}

static bool
session_from_user(json_t *user, struct session *s)
{
	json_t *id = json_object_get(user, "id");
	json_t *role = json_object_get(user, "role");

	memset(s, 0, sizeof *s);
	if (!json_is_integer(id) || !json_is_string(role))
		return false;
	s->user_id = json_integer_value(id);
	s->role = role_from_name(json_string_value(role));
	s->partner_id = json_integer_value(json_object_get(user, "partner_id"));
	s->structure_id = json_integer_value(json_object_get(user,
	    "structure_id"));
	return s->role != ROLE_ANON;
}

static void
login_success_done(PGresult *res, enum db_status st, void *arg)
{
	struct login *l = arg;
	struct request *req = l->req;
	struct session s;
	json_t *j;

	if (st != DB_OK) {
		login_free(l);
		sqlcall_error(req, res, st);
		return;
	}
	j = sqlcall_json(res);
	if (j == NULL || !session_from_user(json_object_get(j, "user"), &s)) {
		json_decref(j);
		login_free(l);
		rpc_internal(req, "auth_login_success answered no user");
		return;
	}
	memcpy(s.token_hash, l->token_hash, sizeof s.token_hash);
	rpc_peer_bind(req->peer, &s);
	log_info("%s logged in as %s", rpc_peer_tag(req->peer),
	    role_name(s.role));
	/* Over HTTP the token goes into a cookie, never into the body. */
	if (!rpc_peer_take_token(req->peer, l->token))
		json_object_set_new(j, "token", json_string(l->token));
	login_free(l);
	rpc_reply(req, j);
}

static void
login_failure_done(PGresult *res, enum db_status st, void *arg)
{
	struct login *l = arg;
	struct request *req = l->req;
	bool change = l->change;

	login_free(l);
	if (st == DB_UNAVAILABLE) {
		sqlcall_error(req, res, st);
		return;
	}
	if (change) {
		log_info("%s failed password change", rpc_peer_tag(req->peer));
		rpc_error(req, "unauthenticated", "old_password", NULL,
		    "The old password is wrong.");
		return;
	}
	log_info("%s failed login", rpc_peer_tag(req->peer));
	rpc_error(req, "unauthenticated", NULL, NULL,
	    "Unknown e-mail or wrong password.");
}

/* Worker thread: only the login's own strings are touched. */
static void
login_verify_work(void *arg)
{
	struct login *l = arg;

	if (l->stored == NULL) {
		pwhash_dummy_verify(l->password);
		l->ok = false;
		return;
	}
	l->ok = pwhash_verify(l->password, l->stored);
	if (l->ok && l->change)
		l->new_hash = pwhash_hash(l->new_password);
	else if (l->ok && pwhash_needs_rehash(l->stored))
		l->new_hash = pwhash_hash(l->password);
}

static void
change_done(PGresult *res, enum db_status st, void *arg)
{
	struct login *l = arg;
	struct request *req = l->req;
	json_t *j;

	login_free(l);
	if (st != DB_OK) {
		sqlcall_error(req, res, st);
		return;
	}
	if ((j = sqlcall_json(res)) == NULL) {
		rpc_internal(req, "auth_set_password answered no JSON");
		return;
	}
	log_info("%s changed its password", rpc_peer_tag(req->peer));
	rpc_reply(req, j);
}

static void
login_verify_done(void *arg)
{
	struct login *l = arg;
	struct request *req = l->req;
	const char *vals[5];
	char uid[24], ttl[24];

	OPENSSL_cleanse(l->password, strlen(l->password));
	if (workpool_skipped(req->app->workers)) {
		login_free(l);
		rpc_error(req, "unavailable", NULL, NULL,
		    "The server is stopping; try again.");
		return;
	}
	if (!l->ok) {
		vals[0] = l->email;
		vals[1] = rpc_peer_addr(req->peer);
		db_exec(req->app->db, sqlcall_stmt(STMT_AUTH_LOGIN_FAILURE), 2, vals,
		    login_failure_done, l);
		return;
	}
	if (l->change) {
		if (l->new_hash == NULL) {
			login_free(l);
			rpc_internal(req, "password hashing failed");
			return;
		}
		vals[0] = rpc_peer_session(req->peer)->token_hash;
		vals[1] = l->stored;
		vals[2] = l->new_hash;
		vals[3] = rpc_peer_addr(req->peer);
		db_exec(req->app->db, sqlcall_stmt(STMT_AUTH_SET_PASSWORD), 4, vals,
		    change_done, l);
		return;
	}
	auth_new_token(l->token, l->token_hash);
	snprintf(uid, sizeof uid, "%lld", l->user_id);
	snprintf(ttl, sizeof ttl, "%lld", req->app->cfg->policy.token_ttl);
	vals[0] = uid;
	vals[1] = l->token_hash;
	vals[2] = ttl;
	vals[3] = rpc_peer_addr(req->peer);
	vals[4] = l->new_hash;
	db_exec(req->app->db, sqlcall_stmt(STMT_AUTH_LOGIN_SUCCESS), 5, vals,
	    login_success_done, l);
}

static void
login_begin_done(PGresult *res, enum db_status st, void *arg)
{
	struct login *l = arg;
	struct request *req = l->req;
	json_t *j, *hash;

	if (st != DB_OK) {
		login_free(l);
		sqlcall_error(req, res, st);
		return;
	}
	if ((j = sqlcall_json(res)) == NULL) {
		login_free(l);
		rpc_internal(req, "auth_login_begin answered no JSON");
		return;
	}
	if (json_is_true(json_object_get(j, "locked"))) {
		json_int_t wait = json_integer_value(json_object_get(j,
		    "retry_after_s"));

		json_decref(j);
		login_free(l);
		log_warn("%s login refused: too many failures", rpc_peer_tag(req->peer));
		metrics_add(M_LOGINS_THROTTLED, 1);
		if (wait < 60)
			rpc_error(req, "rate_limited", NULL, json_pack("{s:I}",
			    "retry_after_s", wait), "Too many failed logins; "
			    "try again in %lld second%s.", (long long)wait,
			    wait > 1 ? "s" : "");
		else
			rpc_error(req, "rate_limited", NULL, json_pack("{s:I}",
			    "retry_after_s", wait), "Too many failed logins; "
			    "try again in %lld minute%s.",
			    (long long)(wait + 59) / 60, wait > 60 ? "s" : "");
		return;
	}
	hash = json_object_get(j, "password_hash");
	if (json_is_string(hash))
		l->stored = xstrdup(json_string_value(hash));
	l->user_id = json_integer_value(json_object_get(j, "user_id"));
	json_decref(j);
	workpool_submit_class(req->app->workers, l->change ? AUTH_JOB_PASSWORD :
	    AUTH_JOB_LOGIN, login_verify_work, login_verify_done, l);
}

static void
login_start(struct login *l)
{
	const struct app *app = l->req->app;
	const char *vals[4];
	char max[24], lockout[24];

	l->started = true;
	snprintf(max, sizeof max, "%lld", app->cfg->policy.login_max_failures);
	snprintf(lockout, sizeof lockout, "%lld",
	    app->cfg->policy.login_lockout);
	vals[0] = l->email;
	vals[1] = rpc_peer_addr(l->req->peer);
	vals[2] = max;
	vals[3] = lockout;
	db_exec(app->db, sqlcall_stmt(STMT_AUTH_LOGIN_BEGIN), 4, vals,
	    login_begin_done, l);
}

void
auth_login(struct request *req)
{
	struct login *l = xcalloc(1, sizeof *l);
	size_t i;

	l->req = req;
	l->email = xstrdup(json_string_value(json_object_get(req->params,
	    "email")));
	for (i = 0; l->email[i]; i++)
		if (l->email[i] >= 'A' && l->email[i] <= 'Z')
			l->email[i] = (char)(l->email[i] - 'A' + 'a');
	l->password = take_password(req, "password");
	TAILQ_INSERT_TAIL(&logins, l, entry);
	if (login_may_start(l))
		login_start(l);
}

/* auth.resume's context: the token (offered to the transport once it
 * proves good) and its hash. */
struct resume {
	char token[129];     /* resume_params: at most 128 */
	char hash[65];
};

static void
resume_free(struct resume *r)
{
	OPENSSL_cleanse(r, sizeof *r);
	free(r);
}

static void
resume_done(PGresult *res, enum db_status st, void *arg)
{
	struct request *req = arg;
	struct resume *r = req->ctx;
	struct session s;
	json_t *j;

	if (st != DB_OK) {
		resume_free(r);
		sqlcall_error(req, res, st);
		return;
	}
	j = sqlcall_json(res);
	if (j == NULL || !session_from_user(json_object_get(j, "user"), &s)) {
		resume_free(r);
		json_decref(j);
		rpc_internal(req, "auth_resume answered no user");
		return;
	}
	memcpy(s.token_hash, r->hash, sizeof s.token_hash);
	rpc_peer_bind(req->peer, &s);
	/* Over HTTP, a resumed token becomes the session cookie. */
	rpc_peer_take_token(req->peer, r->token);
	resume_free(r);
	rpc_reply(req, j);
}

void
auth_resume(struct request *req)
{
	const char *token = json_string_value(json_object_get(req->params,
	    "token"));
	struct resume *r = xcalloc(1, sizeof *r);
	const char *vals[1];

	snprintf(r->token, sizeof r->token, "%s", token);
	auth_token_hash(token, r->hash);
	req->ctx = r;
	vals[0] = r->hash;
	db_exec(req->app->db, sqlcall_stmt(STMT_AUTH_RESUME), 1, vals, resume_done,
	    req);
}

/* A session token from outside a request (an HTTP cookie). */
struct token_bind {
	struct rpc_peer *peer;      /* held */
	char hash[65];
	void (*done)(void *arg, enum auth_token_status st);
	void *arg;
};

static void
token_bind_done(PGresult *res, enum db_status st, void *arg)
{
	struct token_bind *tb = arg;
	struct rpc_peer *p = tb->peer;
	struct session s;
	json_t *j = st == DB_OK ? sqlcall_json(res) : NULL;
	enum auth_token_status ts = AUTH_TOKEN_REFUSED;
	const char *state = st == DB_SQL_ERROR ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	/* Only api_error() (SQLSTATE SP001, sql/api/00_core.sql) says the
	 * token is no good; anything else is the database's trouble. */
	if (st == DB_UNAVAILABLE || (st == DB_SQL_ERROR &&
	    (state == NULL || strcmp(state, "SP001") != 0)))
		ts = AUTH_TOKEN_UNAVAILABLE;
	else if (rpc_peer_alive(p) && j != NULL &&
	    session_from_user(json_object_get(j, "user"), &s)) {
		memcpy(s.token_hash, tb->hash, sizeof s.token_hash);
		rpc_peer_bind(p, &s);
		ts = AUTH_TOKEN_BOUND;
	}
	json_decref(j);
	tb->done(tb->arg, ts);
	free(tb);
	rpc_peer_release(p);
}

void
auth_bind_token(struct app *app, struct rpc_peer *p, const char *token,
    void (*done)(void *arg, enum auth_token_status st), void *arg)
{
	struct token_bind *tb = xcalloc(1, sizeof *tb);
	const char *vals[1];

	tb->peer = p;
	tb->done = done;
	tb->arg = arg;
	rpc_peer_hold(p);
	auth_token_hash(token, tb->hash);
	vals[0] = tb->hash;
	db_exec(app->db, sqlcall_stmt(STMT_AUTH_RESUME), 1, vals,
	    token_bind_done, tb);
}

static void
logout_after(struct request *req, json_t *result)
{
	rpc_peer_unbind(req->peer);
	rpc_reply(req, result);
}

void
auth_logout(struct request *req)
{
	sqlcall(req, logout_after);
}

struct cert_bind {
	struct rpc_peer *peer;      /* held */
	char token_hash[65];
	char *email;
};

static void
cert_done(PGresult *res, enum db_status st, void *arg)
{
	struct cert_bind *cb = arg;
	struct rpc_peer *p = cb->peer;
	struct session s;
	json_t *j = st == DB_OK ? sqlcall_json(res) : NULL;

	if (rpc_peer_alive(p)) {
		if (j != NULL && session_from_user(json_object_get(j, "user"),
		    &s)) {
			memcpy(s.token_hash, cb->token_hash,
			    sizeof s.token_hash);
			s.by_certificate = true;
			rpc_peer_bind(p, &s);
			log_info("%s logged in by client certificate",
			    rpc_peer_tag(p));
		} else if (st != DB_OK)
			log_warn("%s: client certificate not checked: "
			    "database unavailable", rpc_peer_tag(p));
		else
			log_info("%s: client certificate names no enabled "
			    "user", rpc_peer_tag(p));
		rpc_peer_block(p, false);
	}
	json_decref(j);
	free(cb->email);
	free(cb);
	rpc_peer_release(p);
}

void
auth_bind_certificate(struct app *app, struct rpc_peer *p, char *email)
{
	struct cert_bind *cb;
	char token[44], ttl[24];
	const char *vals[4];

	cb = xcalloc(1, sizeof *cb);
	cb->peer = p;
	cb->email = email;
	rpc_peer_hold(p);
	/* The token itself is never shown: the connection is the session. */
	auth_new_token(token, cb->token_hash);
	OPENSSL_cleanse(token, sizeof token);
	snprintf(ttl, sizeof ttl, "%lld", app->cfg->policy.token_ttl);
	vals[0] = email;
	vals[1] = cb->token_hash;
	vals[2] = ttl;
	vals[3] = rpc_peer_addr(p);
	/* Nothing is read from the client until it is known who it is. */
	rpc_peer_block(p, true);
	db_exec(app->db, sqlcall_stmt(STMT_AUTH_CERT_LOGIN), 4, vals, cert_done,
	    cb);
}

/* user.create's job: the request and the password to hash. */
struct pwjob {
	struct request *req;
	char *password;
	char *new_hash;
};

static void
pwjob_free(struct pwjob *j)
{
	wipe_free(j->password);
	free(j->new_hash);
	free(j);
}

/* Takes a password out of req->params, wiping the copy left there. */
static char *
take_password(struct request *req, const char *name)
{
	json_t *v = json_object_get(req->params, name);
	char *p = (char *)json_string_value(v);
	char *copy = xstrdup(p);

	OPENSSL_cleanse(p, strlen(p));
	json_object_del(req->params, name);
	return copy;
}

static void
hash_work(void *arg)
{
	struct pwjob *j = arg;

	j->new_hash = pwhash_hash(j->password);
}

static void
user_create_hashed(void *arg)
{
	struct pwjob *j = arg;
	struct request *req = j->req;

	if (workpool_skipped(req->app->workers)) {
		pwjob_free(j);
		rpc_error(req, "unavailable", NULL, NULL,
		    "The server is stopping; try again.");
		return;
	}
	if (j->new_hash == NULL) {
		pwjob_free(j);
		rpc_internal(req, "password hashing failed");
		return;
	}
	json_object_set_new(req->params, "password_hash",
	    json_string(j->new_hash));
	pwjob_free(j);
	sqlcall(req, NULL);
}

void
auth_user_create(struct request *req)
{
	struct pwjob *j = xcalloc(1, sizeof *j);

	j->req = req;
	j->password = take_password(req, "password");
	workpool_submit_class(req->app->workers, AUTH_JOB_PASSWORD, hash_work,
	    user_create_hashed, j);
}

/* The caller's e-mail is known: the check of the old password joins the
 * login queue and is throttled like a login of that e-mail from here. */
static void
change_email_loaded(PGresult *res, enum db_status st, void *arg)
{
	struct login *l = arg;
	struct request *req = l->req;
	json_t *r, *e;

	if (st != DB_OK) {
		login_release(l);
		sqlcall_error(req, res, st);
		return;
	}
	r = sqlcall_json(res);
	e = json_object_get(r, "email");
	if (!json_is_string(e)) {
		json_decref(r);
		login_release(l);
		rpc_internal(req, "auth_password_hash answered no e-mail");
		return;
	}
	l->email = xstrdup(json_string_value(e));
	json_decref(r);
	TAILQ_INSERT_TAIL(&logins, l, entry);
	if (login_may_start(l))
		login_start(l);
}

void
auth_change_password(struct request *req)
{
	struct login *l = xcalloc(1, sizeof *l);
	const char *vals[1];

	l->req = req;
	l->change = true;
	l->password = take_password(req, "old_password");
	l->new_password = take_password(req, "new_password");
	vals[0] = rpc_peer_session(req->peer)->token_hash;
	db_exec(req->app->db, sqlcall_stmt(STMT_AUTH_PASSWORD_HASH), 1, vals,
	    change_email_loaded, l);
}
