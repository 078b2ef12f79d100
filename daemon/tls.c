#include "tls.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

/*
 * Session tickets. OpenSSL encrypts TLS 1.2 tickets, and the stateless
 * tickets it sends after every TLS 1.3 handshake, with keys made once per
 * context: without rotation, a key stolen from the process memory would
 * decrypt every ticket (and so every resumed session's secrets) issued
 * since the last reload. Here each context has two keys: the current one
 * encrypts for TLS_SESSION_LIFETIME, then it only decrypts, for as long
 * again, tickets that the client is told to replace; then it is erased. A
 * ticket thus outlives neither its session lifetime nor two key lifetimes.
 * Rotation happens in the ticket callback itself, so no timer is needed,
 * and a reload (a new context) starts with fresh keys.
 */
struct ticket_key {
	bool valid;
	uint64_t born;                  /* now_ms() */
	unsigned char name[16];
	unsigned char hmac[32];
	unsigned char aes[32];
};

/* What a context carries besides OpenSSL's own state; freed with it. */
struct tls_extra {
	struct ticket_key cur, prev;
	bool has_trust;
	unsigned char trust[32];        /* tls_client_trust_fingerprint() */
};

static int extra_index = -1;

static void
tls_errstr(const char *what, const char *path, char *err, size_t errlen)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof buf);
	snprintf(err, errlen, "%s %s: %s", what, path ? path : "", e ? buf : "");
	ERR_clear_error();
}

static void
extra_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	if (ptr != NULL) {
		OPENSSL_cleanse(ptr, sizeof(struct tls_extra));
		free(ptr);
	}
}

static struct tls_extra *
extra_get(SSL_CTX *ctx)
{
	return extra_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, extra_index);
}

static bool
ticket_key_new(struct ticket_key *k, uint64_t now)
{
	k->valid = RAND_bytes(k->name, sizeof k->name) == 1 &&
	    RAND_priv_bytes(k->hmac, sizeof k->hmac) == 1 &&
	    RAND_priv_bytes(k->aes, sizeof k->aes) == 1;
	k->born = now;
	return k->valid;
}

static void
ticket_key_forget(struct ticket_key *k)
{
	OPENSSL_cleanse(k, sizeof *k);
	k->valid = false;
}

static void
ticket_keys_rotate(struct tls_extra *x, uint64_t now)
{
	const uint64_t life = TLS_SESSION_LIFETIME * 1000ULL;

	/* A key retired longer than a lifetime ago is not kept at all. */
	if (x->cur.valid && now - x->cur.born < 2 * life)
		x->prev = x->cur;
	else
		ticket_key_forget(&x->prev);
	if (!ticket_key_new(&x->cur, now))
		ticket_key_forget(&x->cur);
}

static void
ticket_keys_age(struct tls_extra *x, uint64_t now)
{
	const uint64_t life = TLS_SESSION_LIFETIME * 1000ULL;

	if (!x->cur.valid || now - x->cur.born >= life)
		ticket_keys_rotate(x, now);
	if (x->prev.valid && now - x->prev.born >= 2 * life)
		ticket_key_forget(&x->prev);
}

/* OpenSSL's ticket callback: 1 use these keys, 2 use them and issue a new
 * ticket, 0 no ticket (a full handshake), -1 error. */
static int
ticket_key_cb(SSL *ssl, unsigned char name[16],
    unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX *cctx,
    EVP_MAC_CTX *hctx, int enc)
{
	struct tls_extra *x = extra_get(SSL_get_SSL_CTX(ssl));
	const EVP_CIPHER *cipher = EVP_aes_256_cbc();
	const struct ticket_key *k;
	OSSL_PARAM params[3];
	int ret = 1;

	if (x == NULL)
		return 0;
	ticket_keys_age(x, now_ms());
	if (enc) {
		k = &x->cur;
		if (!k->valid ||
		    RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1)
			return 0;
		memcpy(name, k->name, sizeof k->name);
		if (EVP_EncryptInit_ex(cctx, cipher, NULL, k->aes, iv) != 1)
			return -1;
	} else {
		if (x->cur.valid && memcmp(name, x->cur.name, 16) == 0)
			k = &x->cur;
		else if (x->prev.valid && memcmp(name, x->prev.name, 16) == 0) {
			k = &x->prev;
			ret = 2;	/* the client gets one of the current key */
		} else
			return 0;	/* unknown or forgotten key */
		if (EVP_DecryptInit_ex(cctx, cipher, NULL, k->aes, iv) != 1)
			return -1;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)k->hmac, sizeof k->hmac);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	return ret;
}

void
tls_rotate_ticket_keys(SSL_CTX *ctx)
{
	struct tls_extra *x = extra_get(ctx);

	if (x != NULL)
		ticket_keys_rotate(x, now_ms());
}

static int
digest_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* The fingerprint of the certificates and CRLs in store: SHA-256 of their
 * sorted SHA-256 digests, so the order of a bundle does not matter. */
static bool
trust_fingerprint(X509_STORE *store, unsigned char out[32])
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	int i, n = sk_X509_OBJECT_num(objs), k = 0;
	unsigned char (*d)[32];	/* SHA-256 digests, 32 bytes each */
	bool ok = true;

	d = xcalloc(n > 0 ? (size_t)n : 1, sizeof *d);
	for (i = 0; ok && i < n; i++) {
		X509_OBJECT *o = sk_X509_OBJECT_value(objs, i);
		X509 *x = X509_OBJECT_get0_X509(o);
		X509_CRL *crl = X509_OBJECT_get0_X509_CRL(o);

		if (x != NULL)
			ok = X509_digest(x, EVP_sha256(), d[k++], NULL) == 1;
		else if (crl != NULL)
			ok = X509_CRL_digest(crl, EVP_sha256(), d[k++],
			    NULL) == 1;
	}
	if (ok) {
		qsort(d, (size_t)k, sizeof *d, digest_cmp);
		ok = EVP_Digest(d, (size_t)k * sizeof *d, out, NULL,
		    EVP_sha256(), NULL) == 1;
	}
	free(d);
	return ok;
}

bool
tls_client_trust_fingerprint(SSL_CTX *ctx, unsigned char out[32])
{
	struct tls_extra *x = extra_get(ctx);

	if (x == NULL || !x->has_trust)
		return false;
	memcpy(out, x->trust, sizeof x->trust);
	return true;
}

bool
tls_client_trust_changed(SSL_CTX *old, SSL_CTX *new)
{
	unsigned char a[32], b[32];
	bool has_a = tls_client_trust_fingerprint(old, a);
	bool has_b = tls_client_trust_fingerprint(new, b);

	if (!has_a && !has_b)
		return false;
	return has_a != has_b || memcmp(a, b, sizeof a) != 0;
}

/* True if the client CA file holds a certificate that is not self-signed:
 * an intermediate, whose own revocation must be checked too. */
static bool
has_intermediates(X509_STORE *store)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	int i;

	for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (x != NULL && X509_self_signed(x, 0) != 1)
			return true;
	}
	return false;
}

/* Client certificates: the CA, and the optional CRL. */
static bool
load_client_trust(SSL_CTX *ctx, const struct config *cfg,
    struct tls_extra *x, char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_NAME) *names;

	if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
		tls_errstr("cannot load client CA", cfg->tls_client_ca, err,
		    errlen);
		return false;
	}
	names = SSL_load_client_CA_file(cfg->tls_client_ca);
	if (names != NULL)
		SSL_CTX_set_client_CA_list(ctx, names);
	if (cfg->tls_client_crl != NULL) {
		X509_LOOKUP *lu = X509_STORE_add_lookup(store,
		    X509_LOOKUP_file());
		unsigned long flags = X509_V_FLAG_CRL_CHECK;

		if (lu == NULL || X509_load_crl_file(lu, cfg->tls_client_crl,
		    X509_FILETYPE_PEM) <= 0) {
			tls_errstr("cannot load client CRL",
			    cfg->tls_client_crl, err, errlen);
			return false;
		}
		if (has_intermediates(store))
			flags |= X509_V_FLAG_CRL_CHECK_ALL;
		X509_STORE_set_flags(store, flags);
	}
	if (!trust_fingerprint(store, x->trust)) {
		tls_errstr("cannot fingerprint client CA", cfg->tls_client_ca,
		    err, errlen);
		return false;
	}
	x->has_trust = true;
	/* Optional: a client without a certificate logs in with a password
	 * instead. One that presents a certificate the CA did not sign, or
	 * that the CRL revokes, fails the handshake. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return true;
}

SSL_CTX *
tls_server_ctx(const struct config *cfg, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "strapontind";
	struct tls_extra *x;
	SSL_CTX *ctx;
	int minv;

	ERR_clear_error();
	if (extra_index < 0 && (extra_index = SSL_CTX_get_ex_new_index(0, NULL,
	    NULL, NULL, extra_free)) < 0) {
		tls_errstr("SSL_CTX_get_ex_new_index", NULL, err, errlen);
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_errstr("SSL_CTX_new", NULL, err, errlen);
		return NULL;
	}
	x = xcalloc(1, sizeof *x);
	if (SSL_CTX_set_ex_data(ctx, extra_index, x) != 1) {
		free(x);
		tls_errstr("SSL_CTX_set_ex_data", NULL, err, errlen);
		goto fail;
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
	/* Clients without tickets resume from this cache; bounded, as each
	 * entry may hold a client certificate. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 4096);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
	SSL_CTX_set_timeout(ctx, TLS_SESSION_LIFETIME);
	if (!ticket_key_new(&x->cur, now_ms())) {
		tls_errstr("cannot make a session-ticket key", NULL, err,
		    errlen);
		goto fail;
	}
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);

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
	if (cfg->tls_client_ca != NULL &&
	    !load_client_trust(ctx, cfg, x, err, errlen))
		goto fail;
	return ctx;
fail:
	SSL_CTX_free(ctx);	/* and x with it */
	return NULL;
}

/* A string of the certificate as UTF-8, malloc'd, or NULL if it holds a
 * NUL (which would let "a@x\0b" pass as "a@x") or a line break. */
static char *
asn1_text(const ASN1_STRING *s)
{
	unsigned char *utf8 = NULL;
	char *out = NULL;
	int n;

	if ((n = ASN1_STRING_to_UTF8(&utf8, s)) < 0)
		return NULL;
	if (n > 0 && memchr(utf8, '\0', (size_t)n) == NULL &&
	    strcspn((const char *)utf8, "\r\n") == (size_t)n)
		out = xstrndup((const char *)utf8, (size_t)n);
	OPENSSL_free(utf8);
	return out;
}

/* The first entry nid of the subject, if it looks like an e-mail. */
static char *
subject_email(X509 *cert, int nid)
{
	const X509_NAME *subj = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(subj, nid, -1);
	char *s;

	if (i < 0)
		return NULL;
	s = asn1_text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
	if (s != NULL && strchr(s, '@') == NULL) {
		free(s);
		s = NULL;
	}
	return s;
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
	if (X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) >= 0) {
		/* A subjectAltName, even without an e-mail in it (or one
		 * OpenSSL cannot parse), is the only name that counts. */
		sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
		for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
			const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);

			if (gn->type == GEN_EMAIL) {
				email = asn1_text(gn->d.rfc822Name);
				break;
			}
		}
		GENERAL_NAMES_free(sans);
	} else {
		email = subject_email(cert, NID_pkcs9_emailAddress);
		if (email == NULL)
			email = subject_email(cert, NID_commonName);
	}
	X509_free(cert);
	return email;
}
