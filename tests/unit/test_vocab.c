/*
 * One table per vocabulary (docs/architecture.md): the reasons of
 * daemon/rpc.c, the methods of daemon/methods.c, the topics of
 * daemon/events.c and the roles of daemon/session.c are the only lists in
 * code; the SQL and docs/protocol.md must agree with them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>

#include "events.h"
#include "methods.h"
#include "rpc.h"
#include "session.h"
#include "sqlcall.h"

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static char *
source_file(const char *rel)
{
	const char *src = getenv("ST_SOURCE_DIR");
	char path[1024];

	assert_non_null(src);
	snprintf(path, sizeof path, "%s/%s", src, rel);
	return slurp(path);
}

/* `word` appears in text between backquotes. */
static int
documented(const char *text, const char *word)
{
	char quoted[256];

	snprintf(quoted, sizeof quoted, "`%s`", word);
	return strstr(text, quoted) != NULL;
}

static void
test_reasons_documented(void **state)
{
	char *doc = source_file("docs/protocol.md");
	const char *r;
	size_t i;

	(void)state;
	for (i = 0; (r = rpc_reason_at(i)) != NULL; i++) {
		if (!documented(doc, r))
			fail_msg("reason %s is not in docs/protocol.md", r);
		assert_int_not_equal(rpc_code_for_reason(r), 0);
	}
	free(doc);
}

/* Every api_error('reason', ...) of sql/api names a reason of the table. */
static void
test_sql_reasons_known(void **state)
{
	const char *src = getenv("ST_SOURCE_DIR");
	char dir[1024], path[1300], reason[64];
	struct dirent *e;
	char *text, *p;
	DIR *d;
	int files = 0;

	(void)state;
	snprintf(dir, sizeof dir, "%s/sql/api", src);
	assert_non_null(d = opendir(dir));
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		if (n < 5 || strcmp(e->d_name + n - 4, ".sql") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		text = slurp(path);
		files++;
		for (p = text; (p = strstr(p, "api_error('")) != NULL; p++) {
			if (sscanf(p + 11, "%63[a-z_]", reason) != 1)
				continue;
			if (rpc_code_for_reason(reason) == 0)
				fail_msg("%s: api_error('%s') is not a reason of "
				    "daemon/rpc.c", e->d_name, reason);
		}
		free(text);
	}
	closedir(d);
	assert_true(files > 0);
}

static void
test_methods_documented(void **state)
{
	char *doc = source_file("docs/protocol.md");
	size_t i;

	(void)state;
	for (i = 0; i < methods_count; i++)
		if (!documented(doc, methods[i].name))
			fail_msg("method %s is not in docs/protocol.md",
			    methods[i].name);
	free(doc);
}

static void
test_topics_documented(void **state)
{
	char *doc = source_file("docs/protocol.md");
	size_t i;

	(void)state;
	for (i = 0; events_topics[i] != NULL; i++)
		if (!documented(doc, events_topics[i]))
			fail_msg("event topic %s is not in docs/protocol.md",
			    events_topics[i]);
	assert_int_equal(i, EVENTS_TOPICS);
	free(doc);
}

/* The roles the SQL stores are exactly the table's, and names round-trip. */
static void
test_roles_agree(void **state)
{
	static const enum role roles[] = {ROLE_ADMIN, ROLE_PARTNER,
	    ROLE_REFERENT};
	char *sql = source_file("sql/schema/001_foundation.sql");
	char *doc = source_file("docs/roles.md");
	char check[256];
	size_t i;

	(void)state;
	snprintf(check, sizeof check, "CHECK (role IN ('%s', '%s', '%s'))",
	    role_name(ROLE_ADMIN), role_name(ROLE_PARTNER),
	    role_name(ROLE_REFERENT));
	if (strstr(sql, check) == NULL)
		fail_msg("sql/schema/001_foundation.sql lacks %s", check);
	for (i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		assert_int_equal(role_from_name(role_name(roles[i])), roles[i]);
		if (strstr(doc, role_name(roles[i])) == NULL)
			fail_msg("role %s is not in docs/roles.md",
			    role_name(roles[i]));
	}
	assert_int_equal(role_from_name("root"), ROLE_ANON);
	free(sql);
	free(doc);
}

/* All of sql/api in one string, to look for a word anywhere. */
static char *
all_api_sql(void)
{
	const char *src = getenv("ST_SOURCE_DIR");
	char dir[1024], path[1300];
	struct dirent *e;
	char *all = calloc(1, 1), *text;
	size_t n = 0, k;
	DIR *d;

	snprintf(dir, sizeof dir, "%s/sql/api", src);
	assert_non_null(d = opendir(dir));
	while ((e = readdir(d)) != NULL) {
		if (strstr(e->d_name, ".sql") == NULL)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		text = slurp(path);
		k = strlen(text);
		all = realloc(all, n + k + 1);
		assert_non_null(all);
		memcpy(all + n, text, k + 1);
		n += k;
		free(text);
	}
	closedir(d);
	return all;
}

/* Every statement of the daemon's, a method's or its own, calls a function
 * of schema api, the only one the runtime role may execute
 * (core.privileges_apply()), and sql/api defines that function there. */
static void
test_statements_call_api(void **state)
{
	const char **stmts;
	char *sql = all_api_sql(), name[128], def[200];
	const char *p;
	size_t n, i;

	(void)state;
	stmts = sqlcall_statements(&n);
	assert_true(n > STMT_INTERNAL_COUNT);
	for (i = 0; i < n; i++) {
		p = strstr(stmts[i], "FROM ") ? strstr(stmts[i], "FROM ") + 5 :
		    stmts[i] + 7;
		if (strncmp(p, "api.", 4) != 0)
			fail_msg("%s: not a function of schema api", stmts[i]);
		if (sscanf(p + 4, "%127[a-z_](", name) != 1)
			fail_msg("cannot read the function of %s", stmts[i]);
		snprintf(def, sizeof def, "CREATE OR REPLACE FUNCTION api.%s(",
		    name);
		if (strstr(sql, def) == NULL)
			fail_msg("sql/api does not define api.%s, which the daemon "
			    "calls", name);
	}
	free(stmts);
	free(sql);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reasons_documented),
		cmocka_unit_test(test_sql_reasons_known),
		cmocka_unit_test(test_methods_documented),
		cmocka_unit_test(test_topics_documented),
		cmocka_unit_test(test_roles_agree),
		cmocka_unit_test(test_statements_call_api),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
