/* Password hashing: scrypt through OpenSSL 3's EVP_KDF, stored as a
 * self-describing string so the cost can be raised without breaking the
 * hashes already in the database:
 *
 *	$scrypt$ln=17,r=8,p=1$<salt>$<hash>
 *
 * ln is log2(N); salt and hash are standard base64 without padding (as in
 * the PHC string format): a 16-byte random salt and a 32-byte hash.
 *
 * Each call costs a few hundred milliseconds of CPU and 128 MiB of memory
 * at the default cost: call these from a workpool thread, never from the
 * event loop. All functions are thread-safe. */
#ifndef PWHASH_H
#define PWHASH_H

#include <stdbool.h>

#include "util.h"

/* Hashes password with a fresh salt at the current cost. Returns a malloc'd
 * string, or NULL (logged) if OpenSSL fails. */
char *pwhash_hash(const char *password) MUSTCHECK;

/* Constant-time check of password against a string from pwhash_hash. The
 * parameters come from the stored string, so old hashes keep verifying after
 * the defaults change. False on any malformed input, and on parameters beyond
 * the limits in pwhash.c (ln > 20, r*p > 256, more than 256 MiB): a tampered
 * row must not make the daemon allocate gigabytes. */
bool pwhash_verify(const char *password, const char *stored) MUSTCHECK;

/* True if stored uses weaker parameters than the current cost (or is
 * malformed): after a successful login the caller stores a fresh hash. */
bool pwhash_needs_rehash(const char *stored);

/* Spends the time of one verification at the current cost and throws the
 * result away: run it for an unknown e-mail so that an unknown user and a
 * wrong password answer after the same delay. */
void pwhash_dummy_verify(const char *password);

/* log2(N) of new hashes: OWASP's floor for scrypt (N = 2^17, r = 8, p = 1)
 * by default. The configuration (policy.password_cost) sets it; costs below
 * the default are for test suites, which would otherwise spend minutes
 * hashing. A change applies to the next hash; hashes already made at a
 * lower cost are upgraded at their next login (pwhash_needs_rehash). */
#define PWHASH_DEFAULT_LN 17
#define PWHASH_MIN_COST 1
#define PWHASH_MAX_COST 18
void pwhash_set_cost(int ln);
int pwhash_cost(void);

#endif
