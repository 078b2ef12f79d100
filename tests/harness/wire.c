/* Raw wire helpers for the protocol and abuse tests: each fails the test
 * on error. */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The next message from the wire, kept ones first; fails the test on error. */
json_t *
wire_read_msg(struct st_client *c, int timeout_ms)
{
	struct st_error err;
	json_t *m = NULL;

	memset(&err, 0, sizeof err);
	if (st_read_message(c, &m, timeout_ms, &err) != ST_OK) {
		char msg[600];

		snprintf(msg, sizeof msg, "%s", st_strerror(&err));
		st_error_clear(&err);
		h_fail("no message within %d ms: %s", timeout_ms, msg);
	}
	return m;
}

/* The next raw line; fails the test on error. Caller frees. */
char *
wire_read_line(struct st_client *c, int timeout_ms)
{
	struct st_error err;
	char *line = NULL;

	memset(&err, 0, sizeof err);
	if (st_read_line(c, &line, NULL, timeout_ms, &err) != ST_OK) {
		char msg[600];

		snprintf(msg, sizeof msg, "%s", st_strerror(&err));
		st_error_clear(&err);
		h_fail("no line within %d ms: %s", timeout_ms, msg);
	}
	return line;
}

void
wire_send_raw(struct st_client *c, const char *data, size_t len)
{
	struct st_error err;

	memset(&err, 0, sizeof err);
	if (st_send_raw(c, data, len, &err) != ST_OK) {
		char msg[600];

		snprintf(msg, sizeof msg, "%s", st_strerror(&err));
		st_error_clear(&err);
		h_fail("st_send_raw of %zu bytes: %s", len, msg);
	}
}

void
wire_send_str(struct st_client *c, const char *s)
{
	wire_send_raw(c, s, strlen(s));
}

int64_t
wire_send_req(struct st_client *c, const char *method, json_t *params)
{
	struct st_error err;
	int64_t id;

	memset(&err, 0, sizeof err);
	id = st_send(c, method, params, &err);
	json_decref(params);
	if (id <= 0) {
		char msg[600];

		snprintf(msg, sizeof msg, "%s", st_strerror(&err));
		st_error_clear(&err);
		h_fail("st_send %s: %s", method, msg);
	}
	return id;
}

/* Integer id of a response, -1 if it has none. */
json_int_t
wire_msg_id(const json_t *m)
{
	json_t *id = json_object_get(m, "id");

	return json_is_integer(id) ? json_integer_value(id) : -1;
}

const char *
wire_msg_reason(const json_t *m)
{
	json_t *r = json_object_get(json_object_get(json_object_get(m, "error"),
	    "data"), "reason");

	return json_is_string(r) ? json_string_value(r) : "";
}

json_int_t
wire_msg_code(const json_t *m)
{
	return json_integer_value(json_object_get(json_object_get(m, "error"),
	    "code"));
}

bool
wire_is_pong(const json_t *m)
{
	return json_is_true(json_object_get(json_object_get(m, "result"),
	    "pong"));
}

/* The server closes the connection: no message, an I/O error. */
void
wire_expect_closed(struct st_client *c, int timeout_ms)
{
	struct st_error err;
	json_t *m = NULL;
	int r;

	memset(&err, 0, sizeof err);
	r = st_read_message(c, &m, timeout_ms, &err);
	if (r == ST_OK) {
		const char *s = h_json_str(m);

		json_decref(m);
		h_fail("expected the connection to be closed, got %s", s);
	}
	if (r != ST_ERR_IO) {
		char msg[600];

		snprintf(msg, sizeof msg, "%s", st_strerror(&err));
		st_error_clear(&err);
		h_fail("expected the connection to be closed, got status %d: %s",
		    r, msg);
	}
	st_error_clear(&err);
}

long
wire_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		h_fail("cannot open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	if (kb < 0)
		h_fail("no VmRSS in %s", path);
	return kb;
}

