/* Unit tests of idkey: how names are normalised before they are keyed,
 * the key itself (an HMAC-SHA256 any other tool can recompute), and the
 * secret files the configuration names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "idkey.h"

#define SECRET "first-secret-of-the-tests-0123456789abcdef"

static void
norm_is(const char *in, const char *want)
{
	char out[256];

	assert_true(idkey_normalise(in, out, sizeof out));
	assert_string_equal(out, want);
}

static void
test_normalise(void **state)
{
	char out[8];

	norm_is("Marie-Hélène", "mariehelene");
	norm_is("  MARIE HELENE ", "mariehelene");
	norm_is("d’Estaing", "destaing");
	norm_is("D'ESTAING", "destaing");
	norm_is("Œdipe Ægir Straße", "oedipeaegirstrasse");
	norm_is("Çağlar Łukasz", "caglarlukasz");
	norm_is("Jean-Pierre II", "jeanpierreii");
	norm_is("Ngũgĩ", "ngugi");
	/* letters of other scripts are kept as typed */
	norm_is("Алиса", "Алиса");
	/* nothing left, or too long for the buffer */
	assert_false(idkey_normalise(" - ' ", out, sizeof out));
	assert_false(idkey_normalise("", out, sizeof out));
	assert_false(idkey_normalise("abcdefghij", out, sizeof out));
}

static void
test_key(void **state)
{
	char a[IDKEY_HEX], b[IDKEY_HEX], id[IDKEY_ID_HEX];
	const unsigned char *s = (const unsigned char *)SECRET;

	/* printf 'dupont\nmariehelene\n1980-04-02' |
	 *   openssl dgst -sha256 -hmac "$SECRET" */
	assert_true(idkey_make(s, strlen(SECRET), "Dupont", "Marie-Hélène",
	    "1980-04-02", a));
	assert_string_equal(a, "691b8be0aa3a52d4920a7c4e05832681"
	    "f42dd87d3bc55c372271111dc366c74e");
	assert_true(idkey_make(s, strlen(SECRET), "DUPONT", "marie helene",
	    "1980-04-02", b));
	assert_string_equal(a, b);
	/* another birth date, another secret, names swapped: another key */
	assert_true(idkey_make(s, strlen(SECRET), "Dupont", "Marie-Hélène",
	    "1980-04-03", b));
	assert_string_not_equal(a, b);
	assert_true(idkey_make(s, strlen(SECRET) - 1, "Dupont",
	    "Marie-Hélène", "1980-04-02", b));
	assert_string_not_equal(a, b);
	assert_true(idkey_make(s, strlen(SECRET), "Marie-Hélène", "Dupont",
	    "1980-04-02", b));
	assert_string_not_equal(a, b);
	assert_false(idkey_make(s, strlen(SECRET), "--", "Marie",
	    "1980-04-02", b));
	idkey_secret_id(s, strlen(SECRET), id);
	assert_string_equal(id, "a9d96f924d6a6d4b");
}

static char *
write_secret(const char *name, const char *text, mode_t mode)
{
	static char path[4][256];
	static int next;
	char *p = path[next++ % 4];
	FILE *f;

	snprintf(p, sizeof path[0], "%s/idkey-%d-%s", P_tmpdir, (int)getpid(),
	    name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	return p;
}

static void
test_configure(void **state)
{
	struct config cfg;
	char err[256], key[IDKEY_HEX], id[IDKEY_ID_HEX];
	char pkey[IDKEY_HEX], pid[IDKEY_ID_HEX];
	const char *why = NULL;
	char *good = write_secret("good", SECRET "\n", 0600);
	char *other = write_secret("other", SECRET "-2\n", 0640);
	char *open_ = write_secret("open", SECRET "\n", 0644);
	char *shortf = write_secret("short", "too short\n", 0600);

	memset(&cfg, 0, sizeof cfg);
	/* no secret: no key */
	assert_true(idkey_configure(&cfg, err, sizeof err));
	assert_false(idkey_person("Dupont", "Marie", "1980-04-02", key, id,
	    pkey, pid, &why));
	assert_string_equal(why, "secret");

	cfg.privacy_identity_previous_secret_file = good;
	assert_false(idkey_configure(&cfg, err, sizeof err));
	cfg.privacy_identity_secret_file = open_;
	cfg.privacy_identity_previous_secret_file = NULL;
	assert_false(idkey_configure(&cfg, err, sizeof err));
	assert_non_null(strstr(err, "readable"));
	cfg.privacy_identity_secret_file = shortf;
	assert_false(idkey_configure(&cfg, err, sizeof err));
	cfg.privacy_identity_secret_file = "/nonexistent/secret";
	assert_false(idkey_configure(&cfg, err, sizeof err));

	/* the trailing newline is not part of the secret */
	cfg.privacy_identity_secret_file = good;
	assert_true(idkey_configure(&cfg, err, sizeof err));
	assert_true(idkey_person("Dupont", "Marie-Hélène", "1980-04-02", key,
	    id, pkey, pid, &why));
	assert_string_equal(key, "691b8be0aa3a52d4920a7c4e05832681"
	    "f42dd87d3bc55c372271111dc366c74e");
	assert_string_equal(id, "a9d96f924d6a6d4b");
	assert_string_equal(pkey, "");

	/* a rotation: the new secret, and the previous one's key too */
	cfg.privacy_identity_secret_file = other;
	cfg.privacy_identity_previous_secret_file = good;
	assert_true(idkey_configure(&cfg, err, sizeof err));
	assert_true(idkey_person("Dupont", "Marie-Hélène", "1980-04-02", key,
	    id, pkey, pid, &why));
	assert_string_not_equal(key, pkey);
	assert_string_equal(pkey, "691b8be0aa3a52d4920a7c4e05832681"
	    "f42dd87d3bc55c372271111dc366c74e");
	assert_string_equal(pid, "a9d96f924d6a6d4b");
	/* a failed reload keeps the secrets in use */
	cfg.privacy_identity_secret_file = shortf;
	assert_false(idkey_configure(&cfg, err, sizeof err));
	idkey_ids(id, pid);
	assert_string_equal(pid, "a9d96f924d6a6d4b");

	idkey_reset();
	unlink(good);
	unlink(other);
	unlink(open_);
	unlink(shortf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_configure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
