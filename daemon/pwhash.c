/* scrypt password hashes; see pwhash.h for the stored format. */
#include "pwhash.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "log.h"

#define PWHASH_PREFIX "$scrypt$"

/* Defaults for new hashes: N = 2^17, r = 8, p = 1 is OWASP's floor for
 * scrypt (Password Storage Cheat Sheet): 128 MiB and a few hundred
 * milliseconds a hash. PWHASH_DEFAULT_LN is in pwhash.h. */
#define PWHASH_DEFAULT_R 8
#define PWHASH_DEFAULT_P 1
#define PWHASH_SALT_LEN 16
#define PWHASH_HASH_LEN 32

/* What a stored string may ask for. These bound what a tampered or corrupt
 * row can cost us: memory is checked against PWHASH_MAX_MEM (also given to
 * OpenSSL as scrypt's maxmem, whose own default is about 1 GiB), and r*p is
 * capped so a small-memory row cannot ask for minutes of CPU instead.
 * 512 MiB admits ln=18 at r=8 (256 MiB), the highest cost pwhash_set_cost
 * takes. */
#define PWHASH_MAX_LN 20
#define PWHASH_MAX_RP 256
#define PWHASH_MAX_MEM ((uint64_t)512 * 1024 * 1024)
#define PWHASH_MIN_SALT 1	/* RFC 7914's own test vectors use "NaCl" */
#define PWHASH_MAX_SALT 64
#define PWHASH_MIN_HASH 16
#define PWHASH_MAX_HASH 64

struct pwhash_params {
	unsigned ln, r, p;
	unsigned char salt[PWHASH_MAX_SALT];
	size_t salt_len;
	unsigned char hash[PWHASH_MAX_HASH];
	size_t hash_len;
};

/* Set from the loop thread (on SIGHUP too), read by workers. */
static _Atomic int pwhash_cost_ln = PWHASH_DEFAULT_LN;

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(const unsigned char *, size_t, char *);
static bool b64_decode(const char *, size_t, unsigned char *, size_t,
    size_t *);
static bool parse_uint(const char **, const char *, unsigned, unsigned *);
static bool pwhash_parse(const char *, struct pwhash_params *);
static uint64_t pwhash_mem(unsigned, unsigned, unsigned);
static bool pwhash_derive(const char *, const unsigned char *, size_t,
    unsigned, unsigned, unsigned, unsigned char *, size_t);

void
pwhash_set_cost(int ln)
{
	if (ln < PWHASH_MIN_COST || ln > PWHASH_MAX_COST)
		fatal("pwhash_set_cost: ln %d out of range", ln);
	atomic_store_explicit(&pwhash_cost_ln, ln, memory_order_relaxed);
}

int
pwhash_cost(void)
{
	return atomic_load_explicit(&pwhash_cost_ln, memory_order_relaxed);
}

/* Unpadded base64 of len bytes into out (4 * ceil(len / 3) + 1 bytes is
 * enough). */
static void
b64_encode(const unsigned char *in, size_t len, char *out)
{
	uint32_t v;
	size_t i;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = b64_chars[v >> 18 & 63];
		*out++ = b64_chars[v >> 12 & 63];
		*out++ = b64_chars[v >> 6 & 63];
		*out++ = b64_chars[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*out++ = b64_chars[v >> 18 & 63];
		*out++ = b64_chars[v >> 12 & 63];
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = b64_chars[v >> 18 & 63];
		*out++ = b64_chars[v >> 12 & 63];
		*out++ = b64_chars[v >> 6 & 63];
	}
	*out = '\0';
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict decoder for what b64_encode writes: no padding, no white space, and
 * the unused low bits of the last character must be zero, so that each byte
 * string has exactly one accepted spelling. */
static bool
b64_decode(const char *in, size_t len, unsigned char *out, size_t outsize,
    size_t *outlen)
{
	uint32_t acc = 0;
	size_t i, n = 0;
	int bits = 0, v;

	if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > outsize)
		return false;
	for (i = 0; i < len; i++) {
		if ((v = b64_value(in[i])) < 0)
			return false;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return false;
	*outlen = n;
	return true;
}

/* Reads "<name><decimal>" at *sp into [1, max]; no sign, no leading zero. */
static bool
parse_uint(const char **sp, const char *name, unsigned max, unsigned *out)
{
	const char *s = *sp;
	size_t nlen = strlen(name);
	unsigned v = 0;

	if (strncmp(s, name, nlen) != 0)
		return false;
	s += nlen;
	if (*s < '1' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (unsigned)(*s++ - '0');
		if (v > max)
			return false;
	}
	*out = v;
	*sp = s;
	return true;
}

/* Bytes OpenSSL allocates for these parameters (kdf_scrypt.c: B is
 * 128*r*p, V is 128*r*(N+2)). The arguments are already bounded, so this
 * cannot overflow. */
static uint64_t
pwhash_mem(unsigned ln, unsigned r, unsigned p)
{
	return (uint64_t)128 * r * (((uint64_t)1 << ln) + 2 + p);
}

/* Splits and checks a stored string. Logs why a string is refused: a bad
 * row is a bug or tampering, and someone should hear about it. */
static bool
pwhash_parse(const char *stored, struct pwhash_params *pp)
{
	const char *s = stored, *dollar;
	const char *why;

	/* NULL is "no password set" (a certificate-only user): not a bug. */
	if (stored == NULL)
		return false;
	if (strncmp(s, PWHASH_PREFIX, strlen(PWHASH_PREFIX)) != 0) {
		why = "not an scrypt hash";
		goto fail;
	}
	s += strlen(PWHASH_PREFIX);
	if (!parse_uint(&s, "ln=", PWHASH_MAX_LN, &pp->ln) ||
	    !parse_uint(&s, ",r=", PWHASH_MAX_RP, &pp->r) ||
	    !parse_uint(&s, ",p=", PWHASH_MAX_RP, &pp->p) || *s++ != '$') {
		why = "bad or out-of-range parameters";
		goto fail;
	}
	if (pp->r * pp->p > PWHASH_MAX_RP ||
	    pwhash_mem(pp->ln, pp->r, pp->p) > PWHASH_MAX_MEM) {
		why = "parameters beyond the limits";
		goto fail;
	}
	if ((dollar = strchr(s, '$')) == NULL ||
	    !b64_decode(s, (size_t)(dollar - s), pp->salt, sizeof(pp->salt),
	    &pp->salt_len) || pp->salt_len < PWHASH_MIN_SALT) {
		why = "bad salt";
		goto fail;
	}
	s = dollar + 1;
	if (!b64_decode(s, strlen(s), pp->hash, sizeof(pp->hash),
	    &pp->hash_len) || pp->hash_len < PWHASH_MIN_HASH) {
		why = "bad hash";
		goto fail;
	}
	return true;

fail:
	log_warn("refusing stored password hash: %s", why);
	OPENSSL_cleanse(pp, sizeof(*pp));
	return false;
}

/* scrypt(password, salt, 2^ln, r, p) into out[outlen]. */
static bool
pwhash_derive(const char *password, const unsigned char *salt,
    size_t salt_len, unsigned ln, unsigned r, unsigned p, unsigned char *out,
    size_t outlen)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[7], *q = params;
	uint64_t n = (uint64_t)1 << ln, maxmem = PWHASH_MAX_MEM;
	uint32_t r32 = r, p32 = p;
	bool ok = false;

	/* Fetched per call: the provider caches the method, and sharing one
	 * EVP_KDF between threads would need its own once-init for nothing. */
	if ((kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL)
		goto fail;
	if ((ctx = EVP_KDF_CTX_new(kdf)) == NULL)
		goto fail;
	/* OpenSSL copies the password and wipes its copy on free. */
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    (void *)password, strlen(password));
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *)salt, salt_len);
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32);
	*q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32);
	/* pwhash_parse has checked the need against the same bound. */
	*q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM,
	    &maxmem);
	*q = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, outlen, params) != 1)
		goto fail;
	ok = true;

fail:
	if (!ok) {
		const char *reason;

		reason = ERR_reason_error_string(ERR_peek_last_error());
		log_error("scrypt failed: %s", reason ? reason : "unknown");
		ERR_clear_error();
		OPENSSL_cleanse(out, outlen);
	}
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok;
}

char *
pwhash_hash(const char *password)
{
	unsigned char salt[PWHASH_SALT_LEN], hash[PWHASH_HASH_LEN];
	char salt64[PWHASH_SALT_LEN * 4 / 3 + 4];
	char hash64[PWHASH_HASH_LEN * 4 / 3 + 4];
	char *out = NULL;
	unsigned ln = (unsigned)pwhash_cost();

	if (password == NULL)
		return NULL;
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		log_error("RAND_bytes failed");
		goto fail;
	}
	if (!pwhash_derive(password, salt, sizeof(salt), ln, PWHASH_DEFAULT_R,
	    PWHASH_DEFAULT_P, hash, sizeof(hash)))
		goto fail;
	b64_encode(salt, sizeof(salt), salt64);
	b64_encode(hash, sizeof(hash), hash64);
	out = xasprintf(PWHASH_PREFIX "ln=%u,r=%u,p=%u$%s$%s", ln,
	    PWHASH_DEFAULT_R, PWHASH_DEFAULT_P, salt64, hash64);

fail:
	OPENSSL_cleanse(hash, sizeof(hash));
	OPENSSL_cleanse(hash64, sizeof(hash64));
	OPENSSL_cleanse(salt, sizeof(salt));
	OPENSSL_cleanse(salt64, sizeof(salt64));
	return out;
}

bool
pwhash_verify(const char *password, const char *stored)
{
	struct pwhash_params pp;
	unsigned char derived[PWHASH_MAX_HASH];
	bool ok = false;

	if (password == NULL || !pwhash_parse(stored, &pp))
		return false;
	if (!pwhash_derive(password, pp.salt, pp.salt_len, pp.ln, pp.r, pp.p,
	    derived, pp.hash_len))
		goto fail;
	ok = CRYPTO_memcmp(derived, pp.hash, pp.hash_len) == 0;

fail:
	OPENSSL_cleanse(derived, sizeof(derived));
	OPENSSL_cleanse(&pp, sizeof(pp));
	return ok;
}

bool
pwhash_needs_rehash(const char *stored)
{
	struct pwhash_params pp;
	bool weaker;

	if (!pwhash_parse(stored, &pp))
		return true;
	weaker = pp.ln < (unsigned)pwhash_cost() || pp.r < PWHASH_DEFAULT_R ||
	    pp.p < PWHASH_DEFAULT_P || pp.salt_len < PWHASH_SALT_LEN ||
	    pp.hash_len < PWHASH_HASH_LEN;
	OPENSSL_cleanse(&pp, sizeof(pp));
	return weaker;
}

void
pwhash_dummy_verify(const char *password)
{
	/* Any fixed salt will do: only the time spent matters. */
	static const char salt[] = "strapontin-dummy-salt";
	unsigned char derived[PWHASH_HASH_LEN];

	if (password == NULL)
		password = "";
	(void)pwhash_derive(password, (const unsigned char *)salt,
	    PWHASH_SALT_LEN, (unsigned)pwhash_cost(), PWHASH_DEFAULT_R,
	    PWHASH_DEFAULT_P, derived, sizeof(derived));
	OPENSSL_cleanse(derived, sizeof(derived));
}
