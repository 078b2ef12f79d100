/* Pseudonymous identity keys (docs/privacy.md, "One person, several
 * structures"): HMAC-SHA256, under a secret held by the configuration, of
 * a person's normalised last name, first name and birth date. Two
 * structures that follow the same person, each with the person's consent,
 * get the same key without either learning anything about the other; the
 * database holds the key only, never what it was made from.
 *
 * The secrets live here, read from the files [privacy] names at start and
 * on SIGHUP (idkey_configure). The loop thread alone calls these. */
#ifndef IDKEY_H
#define IDKEY_H

#include <stdbool.h>
#include <stddef.h>

struct config;

#define IDKEY_HEX 65            /* 64 hex digits and the NUL */
#define IDKEY_ID_HEX 17         /* a secret's id: 16 hex digits and the NUL */
#define IDKEY_MIN_SECRET 32     /* bytes of a secret file, at least */

/* One name as the key sees it: lowercase ASCII letters and digits, the
 * accents of Latin letters taken off (é -> e, Œ -> oe, ß -> ss), spaces,
 * hyphens, apostrophes and other punctuation left out; other letters are
 * kept as typed. False when nothing is left or out is too small. */
bool idkey_normalise(const char *in, char *out, size_t outlen);

/* The key of a person under secret, in lowercase hex: HMAC-SHA256 of
 * "last\nfirst\nYYYY-MM-DD", both names normalised. False when a name
 * normalises to nothing. */
bool idkey_make(const unsigned char *secret, size_t secretlen,
    const char *last, const char *first, const char *birth_date,
    char out[IDKEY_HEX]);

/* A secret's public id: the first 8 bytes of its SHA-256, in hex. */
void idkey_secret_id(const unsigned char *secret, size_t secretlen,
    char out[IDKEY_ID_HEX]);

/* Reads the secret files of cfg ([privacy] identity_secret_file and
 * identity_previous_secret_file, both optional). On success they replace
 * the secrets in use; on failure (unreadable, shorter than
 * IDKEY_MIN_SECRET, readable by every user, a previous secret without a
 * current one) err says why and the secrets in use stay. */
bool idkey_configure(const struct config *cfg, char *err, size_t errlen);

/* The person's key and the id of the secret under the current secret, and
 * under the previous one when there is one (prev_key and prev_id then
 * set, else empty strings). False when no secret is configured or a name
 * normalises to nothing (*why says which: "secret" or "name"). */
bool idkey_person(const char *last, const char *first, const char *birth_date,
    char key[IDKEY_HEX], char id[IDKEY_ID_HEX],
    char prev_key[IDKEY_HEX], char prev_id[IDKEY_ID_HEX], const char **why);

/* The ids of the secrets in use ("" when none). */
void idkey_ids(char id[IDKEY_ID_HEX], char prev_id[IDKEY_ID_HEX]);

/* Forgets the secrets (wiped from memory). */
void idkey_reset(void);

#endif
