#include "tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "config.h"
#include "util.h"

static void
tls_errstr(const char *what, const char *path, char *err, size_t errlen)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof buf);
	snprintf(err, errlen, "%s %s: %s", what, path ? path : "", e ? buf : "");
	ERR_clear_error();
}

SSL_CTX *
tls_server_ctx(const struct config *cfg, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "strapontind";
	SSL_CTX *ctx;
	int minv;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_errstr("SSL_CTX_new", NULL, err, errlen);
		return NULL;
	}
	minv = strcmp(cfg->tls_min_version, "1.3") == 0 ? TLS1_3_VERSION :
	    TLS1_2_VERSION;
	SSL_CTX_set_min_proto_version(ctx, minv);
	/* A peer that closes without close_notify is a normal event for a
	 * line protocol, not an error worth a log line. */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_COMPRESSION);
	/* Idle connections then hold no 34 KiB read and write buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
	SSL_CTX_set_timeout(ctx, 3600);

	if (cfg->tls_ciphers != NULL &&
	    SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		tls_errstr("tls.ciphers", cfg->tls_ciphers, err, errlen);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		tls_errstr("cannot load certificate", cfg->tls_cert, err, errlen);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
		tls_errstr("cannot load key", cfg->tls_key, err, errlen);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_errstr("key does not match certificate", cfg->tls_key, err,
		    errlen);
		goto fail;
	}
	if (cfg->tls_client_ca != NULL) {
		STACK_OF(X509_NAME) *names;

		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca,
		    NULL) != 1) {
			tls_errstr("cannot load client CA", cfg->tls_client_ca,
			    err, errlen);
			goto fail;
		}
		names = SSL_load_client_CA_file(cfg->tls_client_ca);
		if (names != NULL)
			SSL_CTX_set_client_CA_list(ctx, names);
		/* Optional: a client without a certificate logs in with a
		 * password instead. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

char *
tls_peer_email(SSL *ssl)
{
	X509 *cert;
	GENERAL_NAMES *sans;
	char *email = NULL;
	int i;

	if (SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	if ((cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return NULL;
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);

		if (gn->type == GEN_EMAIL) {
			const ASN1_IA5STRING *s = gn->d.rfc822Name;
			const char *d = (const char *)ASN1_STRING_get0_data(s);
			size_t n = (size_t)ASN1_STRING_length(s);

			/* An embedded NUL would let "a@x\0b" pass as "a@x". */
			if (memchr(d, '\0', n) == NULL)
				email = xstrndup(d, n);
			break;
		}
	}
	GENERAL_NAMES_free(sans);
	if (email == NULL) {
		char cn[256];
		int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
		    NID_commonName, cn, sizeof cn);

		if (n > 0 && strchr(cn, '@') != NULL)
			email = xstrdup(cn);
	}
	X509_free(cert);
	if (email != NULL && strlen(email) != strcspn(email, "\r\n")) {
		free(email);	/* a newline is not in any address */
		email = NULL;
	}
	return email;
}
