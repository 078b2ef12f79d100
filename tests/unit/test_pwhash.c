/* Unit tests of pwhash: scrypt hashes, their stored format, and the refusal
 * of malformed or abusive stored strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "log.h"
#include "pwhash.h"
#include "util.h"

/* Cheap cost for the tests: 1 MiB and a few milliseconds a hash. */
#define TEST_LN 10

/* RFC 7914 section 12, third vector: scrypt("password", "NaCl", N=1024,
 * r=8, p=16, 64 bytes), in our format. Proves we interoperate with every
 * other scrypt. */
#define RFC7914_HASH                                                      \
	"$scrypt$ln=10,r=8,p=16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0" \
	"s3MWIurzDZLiKjiG/xCSedmDDaxyevuUqD7m2DYMvfoswGQA"

/* pwhash_cost() before any test changed it: the built-in default. */
static int builtin_ln;

static int
setup(void **state)
{
	pwhash_set_cost(TEST_LN);
	return 0;
}

/* Elapsed milliseconds, finer than now_ms, for the timing checks. */
static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Copy of tmpl with "{S}" replaced by salt and "{H}" by hash. */
static char *
expand(const char *tmpl, const char *salt, const char *hash)
{
	char *out = xmalloc(strlen(tmpl) + 3 * (strlen(salt) + strlen(hash)) +
	    1);
	char *o = out;

	while (*tmpl != '\0') {
		if (strncmp(tmpl, "{S}", 3) == 0 || strncmp(tmpl, "{H}", 3) == 0) {
			strcpy(o, tmpl[1] == 'S' ? salt : hash);
			o += strlen(o);
			tmpl += 3;
		} else
			*o++ = *tmpl++;
	}
	*o = '\0';
	return out;
}

static void
test_roundtrip(void **state)
{
	char *h = pwhash_hash("correct horse battery staple");
	const char *salt, *hash;

	assert_non_null(h);
	assert_true(strncmp(h, "$scrypt$ln=10,r=8,p=1$", 22) == 0);
	/* 16-byte salt and 32-byte hash, unpadded base64. */
	salt = h + 22;
	hash = strchr(salt, '$');
	assert_non_null(hash);
	assert_int_equal(hash - salt, 22);
	assert_int_equal(strlen(hash + 1), 43);
	assert_null(strchr(salt, '='));

	assert_true(pwhash_verify("correct horse battery staple", h));
	free(h);
}

static void
test_wrong_password(void **state)
{
	char *h = pwhash_hash("correct horse battery staple");

	assert_non_null(h);
	assert_false(pwhash_verify("correct horse battery stapl", h));
	assert_false(pwhash_verify("correct horse battery staple ", h));
	assert_false(pwhash_verify("Correct horse battery staple", h));
	assert_false(pwhash_verify("", h));
	assert_false(pwhash_verify(NULL, h));
	free(h);
}

static void
test_empty_and_unicode_password(void **state)
{
	char *h;

	h = pwhash_hash("");
	assert_non_null(h);
	assert_true(pwhash_verify("", h));
	assert_false(pwhash_verify(" ", h));
	free(h);

	h = pwhash_hash("m\xc3\xa9lanie \xe2\x82\xac");
	assert_non_null(h);
	assert_true(pwhash_verify("m\xc3\xa9lanie \xe2\x82\xac", h));
	assert_false(pwhash_verify("melanie \xe2\x82\xac", h));
	free(h);

	assert_null(pwhash_hash(NULL));
}

static void
test_salted(void **state)
{
	char *a = pwhash_hash("same password");
	char *b = pwhash_hash("same password");

	assert_non_null(a);
	assert_non_null(b);
	assert_string_not_equal(a, b);
	/* Not only the hash: the salt part differs. */
	assert_memory_not_equal(a + 22, b + 22, 22);
	assert_true(pwhash_verify("same password", a));
	assert_true(pwhash_verify("same password", b));
	free(a);
	free(b);
}

static void
test_known_answer(void **state)
{
	assert_true(pwhash_verify("password", RFC7914_HASH));
	assert_false(pwhash_verify("Password", RFC7914_HASH));
}

/* A tampered hash (valid format, wrong bytes) is a wrong password. */
static void
test_tampered_hash(void **state)
{
	char *h = pwhash_hash("secret");
	size_t len;

	assert_non_null(h);
	len = strlen(h);
	h[len - 10] = h[len - 10] == 'A' ? 'B' : 'A';
	assert_false(pwhash_verify("secret", h));
	free(h);
}

static void
test_malformed(void **state)
{
	char *good = pwhash_hash("pw");
	char *salt, *hash, *s;
	size_t i;
	/* Each is built from good with one fault; {S} stands for its salt,
	 * {H} for its hash. */
	static const char *const bad[] = {
		"",
		"$scrypt$",
		"$scrypt$ln=10,r=8,p=1$",
		"$scrypt$ln=10,r=8,p=1${S}",
		"$scrypt$ln=10,r=8,p=1${S}$",
		"$scrypt$ln=10,r=8,p=1$${H}",
		"$SCRYPT$ln=10,r=8,p=1${S}${H}",
		"scrypt$ln=10,r=8,p=1${S}${H}",
		"$argon2id$v=19$m=65536,t=3,p=4${S}${H}",
		"$2b$10$abcdefghijklmnopqrstuuJ7bm5l0C7J0MCmlzMy6jyAbzm1bq2y",
		/* parameters */
		"$scrypt$ln=21,r=8,p=1${S}${H}",	/* absurd ln */
		"$scrypt$ln=99,r=8,p=1${S}${H}",
		"$scrypt$ln=4294967306,r=8,p=1${S}${H}", /* wraps to 10 */
		"$scrypt$ln=0,r=8,p=1${S}${H}",
		"$scrypt$ln=010,r=8,p=1${S}${H}",
		"$scrypt$ln=+10,r=8,p=1${S}${H}",
		"$scrypt$ln=-10,r=8,p=1${S}${H}",
		"$scrypt$ln= 10,r=8,p=1${S}${H}",
		"$scrypt$ln=10,r=0,p=1${S}${H}",
		"$scrypt$ln=10,r=8,p=0${S}${H}",
		"$scrypt$ln=10,r=32,p=16${S}${H}",	/* r*p = 512 */
		"$scrypt$ln=10,r=1,p=257${S}${H}",
		"$scrypt$ln=20,r=8,p=1${S}${H}",	/* 1 GiB */
		"$scrypt$ln=10,p=1,r=8${S}${H}",
		"$scrypt$ln=10,r=8${S}${H}",
		"$scrypt$ln=10,r=8,p=1,x=2${S}${H}",
		"$scrypt$n=1024,r=8,p=1${S}${H}",
		/* base64 */
		"$scrypt$ln=10,r=8,p=1${S}==${H}",	/* padding */
		"$scrypt$ln=10,r=8,p=1${S}${H}=",
		"$scrypt$ln=10,r=8,p=1$!{S}${H}",	/* bad characters */
		"$scrypt$ln=10,r=8,p=1${S}${H}!",
		"$scrypt$ln=10,r=8,p=1${S}$-{H}",	/* base64url */
		"$scrypt$ln=10,r=8,p=1${S}$ {H}",
		"$scrypt$ln=10,r=8,p=1${S}${H}\n",
		"$scrypt$ln=10,r=8,p=1${S}AAA${H}",	/* length 4k+1 */
		"$scrypt$ln=10,r=8,p=1${S}${H}$",
		"$scrypt$ln=10,r=8,p=1${S}${H}${H}",
		"$scrypt$ln=10,r=8,p=1${S}$AAAAAAAAAAA", /* 8-byte hash */
		("$scrypt$ln=10,r=8,p=1${S}$" /* 88 characters, 66 bytes */
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
	};

	assert_non_null(good);
	salt = xstrdup(good + 22);
	*strchr(salt, '$') = '\0';
	hash = xstrdup(strrchr(good, '$') + 1);

	/* The template itself verifies: each failure is the fault's. */
	s = xasprintf("$scrypt$ln=10,r=8,p=1$%s$%s", salt, hash);
	assert_string_equal(s, good);
	assert_true(pwhash_verify("pw", s));
	free(s);

	for (i = 0; i < nitems(bad); i++) {
		s = expand(bad[i], salt, hash);
		if (pwhash_verify("pw", s))
			fail_msg("accepted malformed #%zu: %s", i, s);
		assert_true(pwhash_needs_rehash(s));
		free(s);
	}
	assert_false(pwhash_verify("pw", NULL));

	free(salt);
	free(hash);
	free(good);
}

/* The last base64 character of a 16-byte salt only has 2 significant bits:
 * any other spelling of the same bytes is refused. */
static void
test_noncanonical_base64(void **state)
{
	/* "AAAAAAAAAAAAAAAAAAAAAA" is 16 zero bytes; ending it in 'B' sets
	 * an unused bit. */
	assert_false(pwhash_verify("pw", "$scrypt$ln=10,r=8,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAB$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	/* Same with the 32-byte hash (43 characters, 2 unused bits). */
	assert_false(pwhash_verify("pw", "$scrypt$ln=10,r=8,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"));
	/* The canonical zeros parse (and are simply the wrong hash). */
	assert_false(pwhash_needs_rehash("$scrypt$ln=10,r=8,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_true(pwhash_needs_rehash("$scrypt$ln=10,r=8,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAB$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
}

static void
test_needs_rehash(void **state)
{
	char *h = pwhash_hash("pw");

	assert_non_null(h);
	assert_false(pwhash_needs_rehash(h));

	/* The defaults go up: the old hash still verifies, but asks for a
	 * rehash. */
	pwhash_set_cost(TEST_LN + 1);
	assert_true(pwhash_needs_rehash(h));
	assert_true(pwhash_verify("pw", h));
	/* And down: a stronger hash is left alone. */
	pwhash_set_cost(TEST_LN - 1);
	assert_false(pwhash_needs_rehash(h));
	pwhash_set_cost(TEST_LN);

	/* Weaker r, weaker p, shorter salt or hash. */
	assert_true(pwhash_needs_rehash("$scrypt$ln=10,r=4,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_true(pwhash_needs_rehash("$scrypt$ln=10,r=8,p=1$"
	    "AAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_true(pwhash_needs_rehash("$scrypt$ln=10,r=8,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAA"));
	/* Stronger p is fine. */
	assert_false(pwhash_needs_rehash("$scrypt$ln=10,r=8,p=2$"
	    "AAAAAAAAAAAAAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	/* Malformed or missing: yes (a fresh hash can only help). */
	assert_true(pwhash_needs_rehash(""));
	assert_true(pwhash_needs_rehash(NULL));
	free(h);
}

/* The dummy verification costs what a real one does, or unknown e-mails
 * would be told apart from wrong passwords by the clock. Minimum of several
 * runs, generous bounds: this must not be flaky on a loaded machine. */
static void
test_dummy_verify_time(void **state)
{
	struct timespec t0;
	double real = 1e9, dummy = 1e9, t;
	char *h;
	int i;

	pwhash_set_cost(13);
	h = pwhash_hash("pw");
	assert_non_null(h);
	for (i = 0; i < 5; i++) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_false(pwhash_verify("wrong", h));
		if ((t = ms_since(&t0)) < real)
			real = t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		pwhash_dummy_verify("wrong");
		if ((t = ms_since(&t0)) < dummy)
			dummy = t;
	}
	print_message("ln=13: verify %.2f ms, dummy %.2f ms\n", real, dummy);
	/* The property is "same order of cost" (a dummy that skipped the hash
	 * would be a thousand times faster); the band is wide because this
	 * runs beside the rest of the suite on a loaded machine. */
	assert_true(dummy > real * 0.25 && dummy < real * 4.0);
	pwhash_dummy_verify(NULL);
	pwhash_dummy_verify("");
	pwhash_set_cost(TEST_LN);
	free(h);
}

/* The built-in cost is at least OWASP's floor for scrypt, N = 2^17, r = 8,
 * p = 1: a hash made below it in any parameter asks for an upgrade. */
static void
test_builtin_default(void **state)
{
	assert_true(builtin_ln >= 17);
	assert_int_equal(PWHASH_DEFAULT_LN, builtin_ln);
	pwhash_set_cost(builtin_ln);
	assert_true(pwhash_needs_rehash("$scrypt$ln=16,r=8,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_true(pwhash_needs_rehash("$scrypt$ln=17,r=4,p=2$"
	    "AAAAAAAAAAAAAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	assert_false(pwhash_needs_rehash("$scrypt$ln=17,r=8,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	pwhash_set_cost(TEST_LN);
}

/* One hash at the built-in cost, to show it works within the memory limit
 * given to OpenSSL (128 MiB for N = 2^17, r = 8) and to report what a
 * login costs. */
static void
test_default_cost(void **state)
{
	struct timespec t0;
	char prefix[64];
	char *h;

	pwhash_set_cost(builtin_ln);
	snprintf(prefix, sizeof prefix, "$scrypt$ln=%d,r=8,p=1$", builtin_ln);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	h = pwhash_hash("pw");
	print_message("built-in cost (ln=%d, r=8, p=1): hash %.1f ms\n",
	    builtin_ln, ms_since(&t0));
	assert_non_null(h);
	assert_true(strncmp(h, prefix, strlen(prefix)) == 0);
	assert_false(pwhash_needs_rehash(h));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(pwhash_verify("pw", h));
	print_message("built-in cost: verify %.1f ms\n", ms_since(&t0));
	pwhash_set_cost(TEST_LN);
	free(h);
}

/* The highest cost the configuration accepts (ln=18, 256 MiB) still fits
 * under the memory bound of stored hashes. */
static void
test_max_cost_verifies(void **state)
{
	/* Parsing alone decides: a refused string would need a rehash and
	 * log a warning, an accepted one at the current cost needs none. */
	pwhash_set_cost(PWHASH_MAX_COST);
	assert_false(pwhash_needs_rehash("$scrypt$ln=18,r=8,p=1$"
	    "AAAAAAAAAAAAAAAAAAAAAA$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	pwhash_set_cost(TEST_LN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_empty_and_unicode_password),
		cmocka_unit_test(test_salted),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_tampered_hash),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_noncanonical_base64),
		cmocka_unit_test(test_needs_rehash),
		cmocka_unit_test(test_dummy_verify_time),
		cmocka_unit_test(test_builtin_default),
		cmocka_unit_test(test_default_cost),
		cmocka_unit_test(test_max_cost_verifies),
	};

	/* The malformed cases are logged at warn on purpose; keep the test
	 * output readable. */
	log_configure(LL_ERROR, false);
	builtin_ln = pwhash_cost();
	return cmocka_run_group_tests(tests, setup, NULL);
}
