/*
 * What the public web pages read without a login (docs/protocol.md,
 * "public"): voucher.get, with its one not_found for every dead code and
 * its rate limit per address; permanence.public_list; and the iCalendar
 * text of api.permanence_ics(), parsed as a calendar application would.
 */
#include "world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(c, m, ...) h_call_ok((c), (m), json_pack(__VA_ARGS__))

/* Fails unless o has exactly these keys (a NULL-ended list). */
static void
assert_keys(const json_t *o, const char *const *keys)
{
	size_t n = 0;

	assert_true(json_is_object(o));
	for (; keys[n] != NULL; n++)
		if (json_object_get(o, keys[n]) == NULL)
			h_fail("key %s missing from %s", keys[n], h_json_str(o));
	if (json_object_size(o) != n)
		h_fail("%s has keys beyond the contract", h_json_str(o));
}

/* The whole error of a call that must fail: "code message data". */
static char *
error_of(struct st_client *c, const char *method, json_t *params)
{
	struct st_error err;
	json_t *result = NULL;
	char buf[1024];

	memset(&err, 0, sizeof err);
	if (st_call(c, method, params, &result, &err) == 0)
		h_fail("%s answered %s", method, h_json_str(result));
	json_decref(params);
	snprintf(buf, sizeof buf, "%d %s %s", err.code, err.message,
	    h_json_str(err.data));
	st_error_clear(&err);
	return strdup(buf);
}

static json_t *
voucher(struct st_client *c, const char *code)
{
	return OK(c, "voucher.get", "{s:s}", "code", code);
}

static char *
voucher_error(struct st_client *c, const char *code)
{
	return error_of(c, "voucher.get", json_pack("{s:s}", "code", code));
}

static void
test_voucher(void **state)
{
	static const char *const top[] = {"offer", "seats", "first_name",
	    "last_initial", "code", "status", NULL};
	static const char *const offer[] = {"id", "title", "venue_name",
	    "address", "town", "starts_at", "ends_at", NULL};
	struct h_daemon *d = h_daemon_start("public_voucher", NULL);
	PGconn *db = h_db_connect(d->conninfo);
	struct world w;
	struct st_client *anon;
	json_t *o, *bk, *v, *past, *gone, *dropped;
	json_int_t offer_id, ben;
	char code[32], typed[32], sql[512], *unknown, *e;
	const char *p;
	size_t k;

	(void)state;
	world_build(&w, d);
	o = OK(w.partner, "offer.publish", "{s:s, s:s, s:s, s:s, s:s, s:s, "
	    "s:s, s:i}", "title", "Cyrano", "category", "show", "venue",
	    "Grande salle", "city", "Brest", "address", "2 quai de la Douane",
	    "starts_at", w_time(10 * W_DAY), "ends_at",
	    w_time(10 * W_DAY + 7200), "seats", 20);
	offer_id = w_int(o, "id");
	assert_string_equal(w_str(o, "address"), "2 quai de la Douane");
	ben = w_beneficiary(w.ref, "Awa", "Diallo");
	bk = w_book(w.ref, offer_id, ben, 2);
	snprintf(code, sizeof code, "%s", w_str(bk, "code"));

	/* Anonymous, typed the way a person types: lower case, no dashes. */
	for (p = code, k = 0; *p != '\0'; p++)
		if (*p != '-')
			typed[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	typed[k] = '\0';
	anon = h_connect(d);
	v = voucher(anon, typed);
	assert_keys(v, top);
	assert_keys(json_object_get(v, "offer"), offer);
	assert_int_equal(w_int(json_object_get(v, "offer"), "id"), offer_id);
	assert_string_equal(w_str(json_object_get(v, "offer"), "title"),
	    "Cyrano");
	assert_string_equal(w_str(json_object_get(v, "offer"), "venue_name"),
	    "Grande salle");
	assert_string_equal(w_str(json_object_get(v, "offer"), "address"),
	    "2 quai de la Douane");
	assert_string_equal(w_str(json_object_get(v, "offer"), "town"),
	    "Brest");
	assert_string_equal(w_str(json_object_get(v, "offer"), "starts_at"),
	    w_str(o, "starts_at"));
	assert_string_equal(w_str(json_object_get(v, "offer"), "ends_at"),
	    w_str(o, "ends_at"));
	assert_int_equal(w_int(v, "seats"), 2);
	assert_string_equal(w_str(v, "first_name"), "Awa");
	assert_string_equal(w_str(v, "last_initial"), "D");
	assert_string_equal(w_str(v, "code"), code);
	assert_string_equal(w_str(v, "status"), "confirmed");
	json_decref(v);
	/* A logged-in caller of any role may read it too. */
	json_decref(voucher(w.partner2, code));
	json_decref(voucher(w.ref2, code));

	/* Every dead code answers exactly what an unknown one does. */
	unknown = voucher_error(anon, "0000-0000-0000-0000");
	assert_non_null(strstr(unknown, "404 "));
	assert_non_null(strstr(unknown, "not_found"));
	/* a well-formed code (right check character) nobody holds */
	h_db_exec(db, "SELECT set_config('search_path', 'public, core', "
	    "false)");
	snprintf(sql, sizeof sql, "SELECT ticket_display(ticket_code())");
	e = voucher_error(anon, h_db_exec(db, sql));
	assert_string_equal(e, unknown);
	free(e);
	/* cancelled by the referent */
	gone = w_book(w.ref, w_offer(w.partner, 5, 2, NULL),
	    w_beneficiary(w.ref, "Jean", "Parti"), 1);
	json_decref(OK(w.ref, "booking.cancel", "{s:I}", "booking_id",
	    w_int(gone, "id")));
	e = voucher_error(anon, w_str(gone, "code"));
	assert_string_equal(e, unknown);
	free(e);
	/* cancelled with its offer */
	dropped = w_book(w.ref, w_offer(w.partner, 5, 2, NULL),
	    w_beneficiary(w.ref, "Lea", "Annulee"), 1);
	json_decref(OK(w.partner, "offer.cancel", "{s:I, s:s}", "offer_id",
	    w_int(dropped, "offer_id"), "reason", "Panne"));
	e = voucher_error(anon, w_str(dropped, "code"));
	assert_string_equal(e, unknown);
	free(e);
	/* a show that is over (no ends_at: 6 hours after its start) */
	past = w_book(w.ref, w_offer(w.partner, 5, 2, NULL),
	    w_beneficiary(w.ref, "Paul", "Passe"), 1);
	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = now() - "
	    "interval '7 hours', booking_deadline = now() - interval '8 hours'"
	    " WHERE id = %lld", (long long)w_int(past, "offer_id"));
	h_db_exec(db, sql);
	e = voucher_error(anon, w_str(past, "code"));
	assert_string_equal(e, unknown);
	free(e);
	/* ... and the same show still on (started 5 hours ago) is shown */
	snprintf(sql, sizeof sql, "UPDATE offers SET starts_at = now() - "
	    "interval '5 hours' WHERE id = %lld",
	    (long long)w_int(past, "offer_id"));
	h_db_exec(db, sql);
	json_decref(voucher(anon, w_str(past, "code")));

	/* Checked in at the door: still a voucher, status attended. */
	json_decref(OK(w.partner, "ticket.check_in", "{s:s}", "code", code));
	v = voucher(anon, code);
	assert_string_equal(w_str(v, "status"), "attended");
	json_decref(v);

	/* Refused before the database: a code too long, or missing. */
	json_decref(h_call_err(anon, "voucher.get", json_object(), -32602,
	    "invalid_params"));
	memset(sql, 'A', 65);
	sql[65] = '\0';
	json_decref(h_call_err(anon, "voucher.get", json_pack("{s:s}", "code",
	    sql), -32602, "invalid_params"));
	free(unknown);
	json_decref(gone);
	json_decref(dropped);
	json_decref(past);
	json_decref(bk);
	json_decref(o);
	st_close(anon);
	world_close(&w);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

/* The rate limit counts every call of an address within a clock minute;
 * the burst starts early in a minute, so all of it falls in one. */
static void
test_voucher_rate(void **state)
{
	struct h_daemon *d = h_daemon_start("public_rate",
	    "[policy]\nvoucher_rate = 4\n");
	PGconn *db = h_db_connect(d->conninfo);
	struct st_client *anon = h_connect(d);
	json_t *data;
	json_int_t retry;
	int i;

	(void)state;
	while (atoi(h_db_exec(db, "SELECT extract(second FROM "
	    "clock_timestamp())::integer")) > 45)
		h_sleep_ms(1000);
	/* refused calls count: 4 unknown codes, then the fifth is refused */
	for (i = 0; i < 4; i++)
		json_decref(h_call_err(anon, "voucher.get", json_pack("{s:s}",
		    "code", "0000-0000-0000-0000"), 404, "not_found"));
	data = h_call_err(anon, "voucher.get", json_pack("{s:s}", "code",
	    "0000-0000-0000-0000"), 429, "rate_limited");
	retry = w_int(data, "retry_after_s");
	assert_true(retry >= 1 && retry <= 60);
	json_decref(data);
	/* another connection from the same address is the same caller */
	st_close(anon);
	anon = h_connect(d);
	json_decref(h_call_err(anon, "voucher.get", json_pack("{s:s}", "code",
	    "0000-0000-0000-0000"), 429, "rate_limited"));
	/* the counts were kept although every call was refused */
	assert_int_equal(atoi(h_db_exec(db, "SELECT sum(hits) FROM "
	    "voucher_hits")), 6);
	st_close(anon);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

static json_int_t
schedule(struct st_client *ref, long long from_s, const char *location,
    const char *notes)
{
	json_t *p = json_pack("{s:s, s:s}", "starts_at", w_time(from_s),
	    "ends_at", w_time(from_s + 7200));
	json_t *r;
	json_int_t id;

	if (location != NULL)
		json_object_set_new(p, "location", json_string(location));
	if (notes != NULL)
		json_object_set_new(p, "notes", json_string(notes));
	r = h_call_ok(ref, "permanence.schedule", p);
	id = w_int(r, "id");
	if (notes != NULL)
		assert_string_equal(w_str(r, "notes"), notes);
	json_decref(r);
	return id;
}

/* A calendar as RFC 5545 writes it: CRLF after every line, none over 75
 * octets, a UTF-8 character never cut by a fold, BEGIN and END nested.
 * Returns the unfolded content lines, "\n"-separated (malloc'd). */
static char *
ics_check(const char *ics)
{
	char *out = malloc(strlen(ics) + 1), *o = out;
	const char *p = ics, *eol;
	char stack[8][32], name[32];
	int depth = 0;
	size_t len;

	assert_non_null(out);
	while (*p != '\0') {
		eol = strstr(p, "\r\n");
		if (eol == NULL)
			h_fail("a line does not end with CRLF: %.80s", p);
		len = (size_t)(eol - p);
		if (len > 75)
			h_fail("line of %zu octets: %.*s", len, (int)len, p);
		if (memchr(p, '\n', len) != NULL || memchr(p, '\r', len) != NULL)
			h_fail("bare CR or LF in: %.*s", (int)len, p);
		if (len > 0 && ((unsigned char)eol[-1] & 0xC0) == 0xC0)
			h_fail("fold inside a UTF-8 character: %.*s", (int)len,
			    p);
		if (*p == ' ') {	/* continuation: unfold */
			if (o == out)
				h_fail("calendar starts with a continuation");
			o--;	/* the previous line's "\n" */
			p++;
			len--;
			if (((unsigned char)*p & 0xC0) == 0x80)
				h_fail("fold inside a UTF-8 character");
		}
		memcpy(o, p, len);
		o += len;
		*o++ = '\n';
		p = eol + 2;
	}
	*o = '\0';
	/* nesting, on the unfolded lines */
	for (p = out; *p != '\0'; p = strchr(p, '\n') + 1) {
		if (sscanf(p, "BEGIN:%31[A-Z]", name) == 1) {
			assert_true(depth < 8);
			snprintf(stack[depth++], sizeof stack[0], "%s", name);
		} else if (sscanf(p, "END:%31[A-Z]", name) == 1) {
			if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
				h_fail("END:%s does not close what is open",
				    name);
			depth--;
		}
	}
	assert_int_equal(depth, 0);
	assert_true(strncmp(out, "BEGIN:VCALENDAR\n", 16) == 0);
	return out;
}

static int
count_of(const char *s, const char *needle)
{
	int n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

static void
test_permanences(void **state)
{
	static const char *const top[] = {"structure", "items", NULL};
	static const char *const structure[] = {"id", "name", "town", NULL};
	static const char *const item[] = {"id", "starts_at", "ends_at",
	    "place", "notes", NULL};
	/* Long, with accents, so that folds fall among multi-byte ones. */
	const char *notes = "Apportez une pièce d'identité et un justificatif "
	    "de domicile ; les enfants sont bienvenus, évidemment, à toute "
	    "heure de l'après-midi. Café offert.";
	struct h_daemon *d = h_daemon_start("public_perm", NULL);
	PGconn *db = h_db_connect(d->conninfo);
	PGconn *rt;
	PGresult *res;
	struct world w;
	struct st_client *anon;
	json_t *r, *items, *it;
	json_int_t next, later, past, closed, other;
	char sql[512], sid[32], uid[64], *ics;
	const char *values[1];

	(void)state;
	world_build(&w, d);
	next = schedule(w.ref, 2 * W_DAY, "Salle des fêtes", notes);
	later = schedule(w.ref, 9 * W_DAY, NULL, NULL);
	past = schedule(w.ref, -3 * W_DAY, "Salle 1", NULL);
	closed = schedule(w.ref, 4 * W_DAY, "Salle 2", NULL);
	other = schedule(w.ref2, 3 * W_DAY, "Ailleurs", NULL);
	snprintf(sql, sizeof sql, "UPDATE permanences SET state = 'closed', "
	    "closed_at = now() WHERE id = %lld", (long long)closed);
	h_db_exec(db, sql);
	/* a place with every character a TEXT value escapes */
	snprintf(sql, sizeof sql, "UPDATE permanences SET location = "
	    "E'Salle 2; bât. B, \\\\ étage\\nporte verte' WHERE id = %lld",
	    (long long)next);
	h_db_exec(db, sql);

	anon = h_connect(d);
	r = OK(anon, "permanence.public_list", "{s:I}", "structure_id",
	    w.structure_id);
	assert_keys(r, top);
	assert_keys(json_object_get(r, "structure"), structure);
	assert_int_equal(w_int(json_object_get(r, "structure"), "id"),
	    w.structure_id);
	items = json_object_get(r, "items");
	assert_int_equal(json_array_size(items), 2);	/* not past, closed, other */
	it = json_array_get(items, 0);
	assert_keys(it, item);
	assert_int_equal(w_int(it, "id"), next);
	assert_string_equal(w_str(it, "place"),
	    "Salle 2; bât. B, \\ étage\nporte verte");
	assert_string_equal(w_str(it, "notes"), notes);
	it = json_array_get(items, 1);
	assert_keys(it, item);
	assert_int_equal(w_int(it, "id"), later);
	assert_true(json_is_null(json_object_get(it, "place")));
	assert_true(json_is_null(json_object_get(it, "notes")));
	json_decref(r);
	json_decref(h_call_err(anon, "permanence.public_list", json_pack(
	    "{s:I}", "structure_id", (json_int_t)999999), 404, "not_found"));
	(void)past;
	(void)other;

	/* The calendar, as the daemon's runtime role reads it. */
	rt = h_db_connect(d->runtime_conninfo);
	snprintf(sid, sizeof sid, "%lld", (long long)w.structure_id);
	values[0] = sid;
	res = PQexecParams(rt, "SELECT api.permanence_ics($1::bigint)", 1,
	    NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		h_fail("permanence_ics: %s", PQresultErrorMessage(res));
	ics = ics_check(PQgetvalue(res, 0, 0));
	PQclear(res);
	assert_non_null(strstr(ics, "\nVERSION:2.0\n"));
	assert_non_null(strstr(ics, "\nPRODID:"));
	assert_int_equal(count_of(ics, "BEGIN:VEVENT\n"), 2);
	assert_int_equal(count_of(ics, "\nDTSTAMP:"), 2);
	snprintf(uid, sizeof uid, "\nUID:permanence-%lld@strapontin\n",
	    (long long)next);
	assert_non_null(strstr(ics, uid));
	snprintf(uid, sizeof uid, "\nUID:permanence-%lld@strapontin\n",
	    (long long)later);
	assert_non_null(strstr(ics, uid));
	assert_non_null(strstr(ics,
	    "\nLOCATION:Salle 2\\; bât. B\\, \\\\ étage\\nporte verte\n"));
	assert_non_null(strstr(ics, "justificatif de domicile \\; les "
	    "enfants sont bienvenus\\, évidemment\\,"));
	assert_non_null(strstr(ics, "\nSUMMARY:Permanence – "));
	/* UTC, with Z */
	assert_int_equal(count_of(ics, "\nDTSTART:20"), 2);
	assert_int_equal(count_of(ics, "Z\nDTEND:20"), 2);
	free(ics);
	values[0] = "999999";
	res = PQexecParams(rt, "SELECT api.permanence_ics($1::bigint)", 1,
	    NULL, values, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_true(PQgetisnull(res, 0, 0));
	PQclear(res);
	PQfinish(rt);

	st_close(anon);
	world_close(&w);
	PQfinish(db);
	assert_int_equal(h_daemon_stop(d), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_voucher),
	    cmocka_unit_test(test_voucher_rate),
	    cmocka_unit_test(test_permanences),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
