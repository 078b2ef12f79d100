/*
 * case_runner FILE.case: plays one protocol case against the daemon that
 * the `casesd` fixture started (st-testd start cases). The format is
 * described in tests/cases/README.md.
 *
 * The daemon's name is $ST_CASES_DAEMON, "cases" by default.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_TIMEOUT_MS 10000
#define NONE_WAIT_MS 300
#define MAX_GROUP 64

enum expect_kind { EXPECT_EXACT, EXPECT_SUBSET, EXPECT_NONE };

struct expect {
	int line;
	enum expect_kind kind;
	json_t *json; /* NULL for EXPECT_NONE */
};

static const char *case_path;
static struct h_daemon *daemon_;
static struct st_client *client;

static struct expect group[MAX_GROUP];
static int ngroup;

static bool match(const json_t *exp, const json_t *act, bool subset, bool top);

/* Kuhn's augmenting paths: can expectation i take a message, possibly
 * moving others to their other matches? */
static bool
augment(int i, bool ok[][MAX_GROUP], int n, int *owner, bool *seen)
{
	int m;

	for (m = 0; m < n; m++) {
		if (!ok[i][m] || seen[m])
			continue;
		seen[m] = true;
		if (owner[m] == -1 || augment(owner[m], ok, n, owner, seen)) {
			owner[m] = i;
			return true;
		}
	}
	return false;
}

/* True if the elements of exp and act pair up one to one, in any order. */
static bool
match_unordered(const json_t *exp, const json_t *act, bool subset)
{
	static bool ok[MAX_GROUP][MAX_GROUP];
	size_t n = json_array_size(exp), i, j;
	int owner[MAX_GROUP];
	bool seen[MAX_GROUP];

	if (n != json_array_size(act))
		return false;
	if (n > MAX_GROUP) {
		/* Too large to pair up: require the same order. */
		for (i = 0; i < n; i++)
			if (!match(json_array_get(exp, i),
				   json_array_get(act, i), subset, false))
				return false;
		return true;
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			ok[i][j] = match(json_array_get(exp, i),
					 json_array_get(act, j), subset, false);
	for (j = 0; j < n; j++)
		owner[j] = -1;
	for (i = 0; i < n; i++) {
		memset(seen, 0, sizeof seen);
		if (!augment((int)i, ok, (int)n, owner, seen))
			return false;
	}
	return true;
}

/* exp matches act: "*" matches any value; numbers compare by value; in
 * subset mode an object may have keys exp does not name. A top-level array
 * (a batch answer) matches in any order, as JSON-RPC allows; nested arrays
 * in order. */
static bool
match(const json_t *exp, const json_t *act, bool subset, bool top)
{
	const char *key;
	json_t *ev;
	size_t i;

	if (act == NULL)
		return false;
	if (json_is_string(exp) && strcmp(json_string_value(exp), "*") == 0)
		return true;
	if (json_is_number(exp) && json_is_number(act))
		return json_number_value(exp) == json_number_value(act);
	if (json_is_object(exp)) {
		if (!json_is_object(act))
			return false;
		if (!subset && json_object_size(exp) != json_object_size(act))
			return false;
		json_object_foreach((json_t *)exp, key, ev)
		{
			if (!match(ev, json_object_get(act, key), subset,
				   false))
				return false;
		}
		return true;
	}
	if (json_is_array(exp)) {
		if (!json_is_array(act))
			return false;
		if (top)
			return match_unordered(exp, act, subset);
		if (json_array_size(exp) != json_array_size(act))
			return false;
		for (i = 0; i < json_array_size(exp); i++)
			if (!match(json_array_get(exp, i),
				   json_array_get(act, i), subset, false))
				return false;
		return true;
	}
	return json_equal((json_t *)exp, (json_t *)act);
}

static void
ensure_connected(void)
{
	if (client == NULL)
		client = h_connect(daemon_);
}

static void
disconnect(void)
{
	if (client != NULL)
		st_close(client);
	client = NULL;
}

static void
clear_group(void)
{
	int i;

	for (i = 0; i < ngroup; i++)
		json_decref(group[i].json);
	ngroup = 0;
}

/* Reads the next message; fails the case at `line` if none comes. */
static json_t *
read_message(int line)
{
	struct st_error err = {0};
	json_t *msg = NULL;
	char why[1024];

	if (client == NULL)
		h_fail_at(case_path, line,
			  "expected an answer, but no connection is open");
	memset(&err, 0, sizeof err);
	if (st_read_message(client, &msg, READ_TIMEOUT_MS, &err) == ST_OK)
		return msg;
	snprintf(why, sizeof why, "%s (status %d)", st_strerror(&err),
		 err.status);
	st_error_clear(&err);
	h_fail_at(case_path, line, "expected an answer within %d ms: %s",
		  READ_TIMEOUT_MS, why);
}

/* Checks the pending `<` lines: as many messages as expectations, paired
 * in any order (pipelined answers may come in any order), then, if one of
 * them was `< (none)`, nothing more for NONE_WAIT_MS. */
static void
check_group(void)
{
	static bool ok[MAX_GROUP][MAX_GROUP];
	json_t *msgs[MAX_GROUP];
	int owner[MAX_GROUP], idx[MAX_GROUP];
	bool seen[MAX_GROUP], none = false;
	int n = 0, i, j, first_line = 0, none_line = 0;
	struct st_error err = {0};
	json_t *extra = NULL;

	if (ngroup == 0)
		return;
	for (i = 0; i < ngroup; i++) {
		if (group[i].kind == EXPECT_NONE) {
			none = true;
			none_line = group[i].line;
			continue;
		}
		if (first_line == 0)
			first_line = group[i].line;
		idx[n++] = i;
	}
	for (j = 0; j < n; j++)
		msgs[j] = read_message(group[idx[j]].line);
	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			ok[i][j] =
			    match(group[idx[i]].json, msgs[j],
				  group[idx[i]].kind == EXPECT_SUBSET, true);
	for (j = 0; j < n; j++)
		owner[j] = -1;
	for (i = 0; i < n; i++) {
		memset(seen, 0, sizeof seen);
		if (augment(i, ok, n, owner, seen))
			continue;
		/* Name the first expectation nothing matched, and what came. */
		fprintf(stderr, "case %s: the answers received were:\n",
			case_path);
		for (j = 0; j < n; j++)
			fprintf(stderr, "  %s\n", h_json_str(msgs[j]));
		h_fail_at(
		    case_path, group[idx[i]].line, "no answer matches%s %s",
		    group[idx[i]].kind == EXPECT_SUBSET ? " (subset)" : "",
		    h_json_str(group[idx[i]].json));
	}
	for (j = 0; j < n; j++)
		json_decref(msgs[j]);

	if (none) {
		if (client == NULL)
			h_fail_at(case_path, none_line,
				  "`< (none)` with no connection open");
		memset(&err, 0, sizeof err);
		switch (st_read_message(client, &extra, NONE_WAIT_MS, &err)) {
		case ST_ERR_TIMEOUT:
			break;
		case ST_OK:
			h_fail_at(case_path, none_line,
				  "expected no answer, got %s",
				  h_json_str(extra));
		default:
			h_fail_at(case_path, none_line,
				  "expected no answer, got: %s",
				  st_strerror(&err));
		}
		st_error_clear(&err);
	}
	clear_group();
}

static void
expect_close(int line)
{
	struct st_error err = {0};
	json_t *msg = NULL;
	int rc;

	if (client == NULL)
		h_fail_at(case_path, line, "!close: no connection is open");
	memset(&err, 0, sizeof err);
	rc = st_read_message(client, &msg, READ_TIMEOUT_MS, &err);
	if (rc == ST_OK)
		h_fail_at(case_path, line,
			  "expected the server to close the connection, got %s",
			  h_json_str(msg));
	if (rc != ST_ERR_IO)
		h_fail_at(case_path, line,
			  "expected the server to close the connection within "
			  "%d ms: %s",
			  READ_TIMEOUT_MS, st_strerror(&err));
	st_error_clear(&err);
	disconnect();
}

static void
send_line(int line, const char *text)
{
	struct st_error err = {0};
	size_t len = strlen(text);
	char *buf;

	ensure_connected();
	if ((buf = malloc(len + 2)) == NULL)
		abort();
	memcpy(buf, text, len);
	buf[len] = '\n';
	buf[len + 1] = '\0';
	memset(&err, 0, sizeof err);
	if (st_send_raw(client, buf, len + 1, &err) != ST_OK)
		h_fail_at(case_path, line, "cannot send: %s",
			  st_strerror(&err));
	free(buf);
}

static void
add_expect(int line, enum expect_kind kind, const char *text)
{
	json_error_t jerr;
	json_t *j = NULL;

	if (ngroup == MAX_GROUP)
		h_fail_at(case_path, line,
			  "more than %d answers expected in a row", MAX_GROUP);
	if (kind != EXPECT_NONE &&
	    (j = json_loads(text, JSON_DECODE_ANY, &jerr)) == NULL)
		h_fail_at(case_path, line,
			  "the expected answer is not JSON (column %d: %s)",
			  jerr.column, jerr.text);
	group[ngroup].line = line;
	group[ngroup].kind = kind;
	group[ngroup].json = j;
	ngroup++;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void
play_line(int line, char *s)
{
	json_error_t jerr;
	json_t *j;

	if (strncmp(s, "<~ ", 3) == 0) {
		add_expect(line, EXPECT_SUBSET, s + 3);
		return;
	}
	if (strcmp(s, "< (none)") == 0) {
		add_expect(line, EXPECT_NONE, NULL);
		return;
	}
	if (strncmp(s, "< ", 2) == 0) {
		add_expect(line, EXPECT_EXACT, s + 2);
		return;
	}

	check_group();
	if (strcmp(s, ">raw") == 0 || strncmp(s, ">raw ", 5) == 0) {
		send_line(line, s[4] ? s + 5 : "");
	} else if (strncmp(s, "> ", 2) == 0) {
		if ((j = json_loads(s + 2, JSON_DECODE_ANY, &jerr)) == NULL)
			h_fail_at(case_path, line,
				  "request is not JSON (column %d: %s); use "
				  ">raw to send it anyway",
				  jerr.column, jerr.text);
		json_decref(j);
		send_line(line, s + 2);
	} else if (strcmp(s, "!close") == 0) {
		expect_close(line);
	} else if (strcmp(s, "!reconnect") == 0) {
		disconnect();
		ensure_connected();
	} else if (strncmp(s, "!sleep ", 7) == 0) {
		sleep_ms(atoi(s + 7));
	} else {
		h_fail_at(case_path, line, "cannot parse this line: %s", s);
	}
}

static void
run_case(void **state)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int line = 0;
	FILE *f;

	(void)state;
	daemon_ = h_daemon_attach(
	    getenv("ST_CASES_DAEMON") ? getenv("ST_CASES_DAEMON") : "cases");
	if ((f = fopen(case_path, "r")) == NULL)
		h_fail("cannot open %s: %s", case_path, strerror(errno));
	ensure_connected();
	while ((n = getline(&buf, &cap, f)) != -1) {
		line++;
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		if (n == 0 || buf[0] == '#')
			continue;
		play_line(line, buf);
	}
	free(buf);
	fclose(f);
	check_group();
	disconnect();
}

int
main(int argc, char **argv)
{
	const char *name;
	struct CMUnitTest tests[1];

	if (argc != 2) {
		fprintf(stderr, "usage: case_runner FILE.case\n");
		return 2;
	}
	case_path = argv[1];
	name =
	    strrchr(case_path, '/') ? strrchr(case_path, '/') + 1 : case_path;
	memset(tests, 0, sizeof tests);
	tests[0].name = name;
	tests[0].test_func = run_case;
	return cmocka_run_group_tests_name("protocol case", tests, NULL, NULL);
}
