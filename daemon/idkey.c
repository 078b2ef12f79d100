#include "idkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "config.h"
#include "util.h"

#define SECRET_MAX 4096

struct secret {
	unsigned char *bytes;   /* NULL: none */
	size_t len;
	char id[IDKEY_ID_HEX];
};

static struct secret current, previous;

/* What a Latin letter of U+00C0..U+017F becomes, by ranges of code
 * points; NULL drops it (× and ÷). */
static const struct fold {
	unsigned lo, hi;
	const char *to;
} folds[] = {
	{0xC0, 0xC5, "a"}, {0xC6, 0xC6, "ae"}, {0xC7, 0xC7, "c"},
	{0xC8, 0xCB, "e"}, {0xCC, 0xCF, "i"}, {0xD0, 0xD0, "d"},
	{0xD1, 0xD1, "n"}, {0xD2, 0xD6, "o"}, {0xD7, 0xD7, NULL},
	{0xD8, 0xD8, "o"}, {0xD9, 0xDC, "u"}, {0xDD, 0xDD, "y"},
	{0xDE, 0xDE, "th"}, {0xDF, 0xDF, "ss"},
	{0xE0, 0xE5, "a"}, {0xE6, 0xE6, "ae"}, {0xE7, 0xE7, "c"},
	{0xE8, 0xEB, "e"}, {0xEC, 0xEF, "i"}, {0xF0, 0xF0, "d"},
	{0xF1, 0xF1, "n"}, {0xF2, 0xF6, "o"}, {0xF7, 0xF7, NULL},
	{0xF8, 0xF8, "o"}, {0xF9, 0xFC, "u"}, {0xFD, 0xFD, "y"},
	{0xFE, 0xFE, "th"}, {0xFF, 0xFF, "y"},
	{0x100, 0x105, "a"}, {0x106, 0x10D, "c"}, {0x10E, 0x111, "d"},
	{0x112, 0x11B, "e"}, {0x11C, 0x123, "g"}, {0x124, 0x127, "h"},
	{0x128, 0x131, "i"}, {0x132, 0x133, "ij"}, {0x134, 0x135, "j"},
	{0x136, 0x138, "k"}, {0x139, 0x142, "l"}, {0x143, 0x14B, "n"},
	{0x14C, 0x151, "o"}, {0x152, 0x153, "oe"}, {0x154, 0x159, "r"},
	{0x15A, 0x161, "s"}, {0x162, 0x167, "t"}, {0x168, 0x173, "u"},
	{0x174, 0x175, "w"}, {0x176, 0x178, "y"}, {0x179, 0x17E, "z"},
	{0x17F, 0x17F, "s"},
};

/* Right single quotation mark (’), the apostrophe of French keyboards
 * and word processors: punctuation like '. */
#define RSQUO 0x2019

static bool
append(char *out, size_t outlen, size_t *n, const char *s, size_t len)
{
	if (*n + len >= outlen)
		return false;
	memcpy(out + *n, s, len);
	*n += len;
	return true;
}

/* The code point of a two- or three-byte UTF-8 sequence at p (0 if
 * malformed) and its length in *len. */
static unsigned
utf8_at(const unsigned char *p, size_t *len)
{
	if ((p[0] & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) {
		*len = 2;
		return ((unsigned)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
	}
	if ((p[0] & 0xF0) == 0xE0 && (p[1] & 0xC0) == 0x80 &&
	    (p[2] & 0xC0) == 0x80) {
		*len = 3;
		return ((unsigned)(p[0] & 0x0F) << 12) |
		    ((unsigned)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
	}
	*len = 1;
	return 0;
}

bool
idkey_normalise(const char *in, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = 0, len, i;
	unsigned cp;
	char c;

	while (*p != '\0') {
		if (*p < 0x80) {
			c = (char)*p++;
			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) &&
			    !append(out, outlen, &n, &c, 1))
				return false;
			continue;
		}
		cp = utf8_at(p, &len);
		for (i = 0; i < nitems(folds); i++)
			if (cp >= folds[i].lo && cp <= folds[i].hi)
				break;
		if (i < nitems(folds)) {
			if (folds[i].to != NULL && !append(out, outlen, &n,
			    folds[i].to, strlen(folds[i].to)))
				return false;
		} else if (cp != RSQUO) {
			/* another letter: as typed, whole sequence */
			while (len < 4 && (p[len] & 0xC0) == 0x80)
				len++;
			if (!append(out, outlen, &n, (const char *)p, len))
				return false;
		}
		p += len;
	}
	if (n == 0 || outlen == 0)
		return false;
	out[n] = '\0';
	return true;
}

static void
hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xF];
	}
	out[2 * n] = '\0';
}

bool
idkey_make(const unsigned char *secret, size_t secretlen, const char *last,
    const char *first, const char *birth_date, char out[IDKEY_HEX])
{
	/* names are at most 100 bytes (params); a fold at most doubles one */
	char l[512], f[512], msg[1100];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int n;
	bool ok = false;

	if (!idkey_normalise(last, l, sizeof l) ||
	    !idkey_normalise(first, f, sizeof f))
		goto done;
	n = snprintf(msg, sizeof msg, "%s\n%s\n%s", l, f, birth_date);
	if (n < 0 || (size_t)n >= sizeof msg)
		goto done;
	if (HMAC(EVP_sha256(), secret, (int)secretlen, (unsigned char *)msg,
	    (size_t)n, mac, &maclen) == NULL || maclen != 32)
		goto done;
	hex(mac, maclen, out);
	ok = true;
done:
	/* what the person's name became is personal data too */
	OPENSSL_cleanse(l, sizeof l);
	OPENSSL_cleanse(f, sizeof f);
	OPENSSL_cleanse(msg, sizeof msg);
	return ok;
}

void
idkey_secret_id(const unsigned char *secret, size_t secretlen,
    char out[IDKEY_ID_HEX])
{
	unsigned char d[SHA256_DIGEST_LENGTH];

	SHA256(secret, secretlen, d);
	hex(d, 8, out);
}

static void
secret_clear(struct secret *s)
{
	if (s->bytes != NULL) {
		OPENSSL_cleanse(s->bytes, s->len);
		free(s->bytes);
	}
	memset(s, 0, sizeof *s);
}

/* Reads path into s: the file's bytes less trailing newlines. */
static bool
secret_read(const char *key, const char *path, struct secret *s, char *err,
    size_t errlen)
{
	unsigned char buf[SECRET_MAX + 1];
	struct stat st;
	ssize_t r;
	size_t n = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "privacy.%s: %s: %s", key, path,
		    strerror(errno));
		return false;
	}
	if (fstat(fd, &st) == -1 || (st.st_mode & S_IROTH)) {
		snprintf(err, errlen, "privacy.%s: %s must not be readable "
		    "by every user (chmod o-r)", key, path);
		close(fd);
		return false;
	}
	while (n < sizeof buf &&
	    (r = read(fd, buf + n, sizeof buf - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "privacy.%s: %s: %s", key, path,
			    strerror(errno));
			close(fd);
			OPENSSL_cleanse(buf, sizeof buf);
			return false;
		}
		n += (size_t)r;
	}
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n < IDKEY_MIN_SECRET || n > SECRET_MAX) {
		snprintf(err, errlen, "privacy.%s: %s must hold %d to %d bytes "
		    "(e.g. openssl rand -base64 48)", key, path,
		    IDKEY_MIN_SECRET, SECRET_MAX);
		OPENSSL_cleanse(buf, sizeof buf);
		return false;
	}
	s->bytes = xcalloc(1, n);
	memcpy(s->bytes, buf, n);
	s->len = n;
	OPENSSL_cleanse(buf, sizeof buf);
	idkey_secret_id(s->bytes, s->len, s->id);
	return true;
}

bool
idkey_configure(const struct config *cfg, char *err, size_t errlen)
{
	struct secret cur = {0}, prev = {0};

	if (cfg->privacy_identity_previous_secret_file != NULL &&
	    cfg->privacy_identity_secret_file == NULL) {
		snprintf(err, errlen, "privacy.identity_previous_secret_file "
		    "needs privacy.identity_secret_file");
		return false;
	}
	if (cfg->privacy_identity_secret_file != NULL &&
	    !secret_read("identity_secret_file",
	    cfg->privacy_identity_secret_file, &cur, err, errlen))
		return false;
	if (cfg->privacy_identity_previous_secret_file != NULL &&
	    !secret_read("identity_previous_secret_file",
	    cfg->privacy_identity_previous_secret_file, &prev, err, errlen)) {
		secret_clear(&cur);
		return false;
	}
	if (prev.bytes != NULL && strcmp(prev.id, cur.id) == 0)
		secret_clear(&prev);    /* the same secret twice: one */
	secret_clear(&current);
	secret_clear(&previous);
	current = cur;
	previous = prev;
	return true;
}

bool
idkey_person(const char *last, const char *first, const char *birth_date,
    char key[IDKEY_HEX], char id[IDKEY_ID_HEX], char prev_key[IDKEY_HEX],
    char prev_id[IDKEY_ID_HEX], const char **why)
{
	prev_key[0] = prev_id[0] = '\0';
	if (current.bytes == NULL) {
		*why = "secret";
		return false;
	}
	if (!idkey_make(current.bytes, current.len, last, first, birth_date,
	    key)) {
		*why = "name";
		return false;
	}
	memcpy(id, current.id, IDKEY_ID_HEX);
	if (previous.bytes != NULL) {
		if (!idkey_make(previous.bytes, previous.len, last, first,
		    birth_date, prev_key)) {
			*why = "name";
			return false;
		}
		memcpy(prev_id, previous.id, IDKEY_ID_HEX);
	}
	return true;
}

void
idkey_ids(char id[IDKEY_ID_HEX], char prev_id[IDKEY_ID_HEX])
{
	snprintf(id, IDKEY_ID_HEX, "%s", current.id);
	snprintf(prev_id, IDKEY_ID_HEX, "%s", previous.id);
}

void
idkey_reset(void)
{
	secret_clear(&current);
	secret_clear(&previous);
}
