/* auth.*: password login (hash checked on the worker pool), token resume,
 * logout, and binding a connection by its client certificate. */
#ifndef AUTH_H
#define AUTH_H

#include <stdbool.h>

struct request;
struct rpc_peer;
struct app;

void auth_login(struct request *req);
void auth_resume(struct request *req);
void auth_logout(struct request *req);
void auth_change_password(struct request *req);
/* user.create: hashes params.password on the worker pool, then calls the
 * method's SQL with password_hash in its place. */
void auth_user_create(struct request *req);
/* After the handshake: a verified client certificate whose e-mail (taken)
 * names an enabled user logs the peer in. The peer is blocked meanwhile. */
void auth_bind_certificate(struct app *app, struct rpc_peer *p, char *email);
enum auth_token_status {
	AUTH_TOKEN_BOUND,       /* p is now logged in */
	AUTH_TOKEN_REFUSED,     /* unknown, revoked or expired */
	AUTH_TOKEN_UNAVAILABLE, /* the database could not tell */
};
/* Binds p to the session of token (an HTTP cookie), looked up as
 * auth.resume does; done(arg, status) follows once, from the database's
 * callback, never from inside this call. */
void auth_bind_token(struct app *app, struct rpc_peer *p, const char *token,
    void (*done)(void *arg, enum auth_token_status st), void *arg);

/* A new 256-bit token (base64url, 43 characters + NUL) and its stored
 * form, the hex SHA-256 (64 + NUL). */
void auth_new_token(char token[44], char hash[65]);
void auth_token_hash(const char *token, char hash[65]);

#endif
