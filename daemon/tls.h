/* The server's TLS context. A context is refcounted by OpenSSL: live
 * connections keep the one they started with when SIGHUP loads a new one. */
#ifndef TLS_H
#define TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

struct config;

/* Builds a server context from cfg (certificate, key, client CA, minimum
 * version, ciphers). NULL on failure, with the reason in err. */
SSL_CTX *tls_server_ctx(const struct config *cfg, char *err, size_t errlen);

/* The e-mail address of the verified client certificate (SAN email, else
 * CN), malloc'd, or NULL. */
char *tls_peer_email(SSL *ssl);

#endif
