/* The server's TLS context. A context is refcounted by OpenSSL: live
 * connections keep the one they started with when SIGHUP loads a new one.
 * Each context carries its own session-ticket keys (rotated, see tls.c) and
 * the fingerprint of what it trusts for client certificates. */
#ifndef TLS_H
#define TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct config;

/* How long a TLS session may be resumed, in seconds; also how long a
 * session-ticket key encrypts new tickets before it is replaced. */
#define TLS_SESSION_LIFETIME 3600

/* Builds a server context from cfg (certificate, key, client CA and CRL,
 * minimum version, ciphers). NULL on failure, with the reason in err. */
SSL_CTX *tls_server_ctx(const struct config *cfg, char *err, size_t errlen);

/* SHA-256 over what ctx trusts for client certificates (the certificates of
 * tls.client_ca and the CRLs of tls.client_crl, in any order). False, and
 * out untouched, if ctx asks for no client certificate. */
bool tls_client_trust_fingerprint(SSL_CTX *ctx, unsigned char out[32]);

/* True if sessions opened by certificate under old may not go on under
 * new: the client CA or CRL changed (or was added or removed). */
bool tls_client_trust_changed(SSL_CTX *old, SSL_CTX *new);

/* Retires the current session-ticket key of ctx at once: it still
 * decrypts (and renews) tickets until two lifetimes after it was made,
 * then is forgotten. The ticket callback does this by itself once a key is
 * TLS_SESSION_LIFETIME old. */
void tls_rotate_ticket_keys(SSL_CTX *ctx);

/* The e-mail address of the verified client certificate, malloc'd, or
 * NULL: the first rfc822Name of its subjectAltName; only a certificate with
 * no subjectAltName at all is named by its subject (emailAddress, else a CN
 * holding an '@'). */
char *tls_peer_email(SSL *ssl);

#endif
