/*
 * Output. Three forms of every result:
 *   people  aligned tables for lists, "key: value" for one object, times
 *           in the local timezone (TZ respected), statuses in words;
 *   --json  exactly the result, compact, one line;
 *   --csv   lists as RFC 4180: a header row of field names, then one row
 *           per item, every field, values as the server sent them.
 *
 * Strings from the server are shown to people with control characters
 * replaced, so that a title cannot drive the terminal. JSON and CSV are
 * data and are written as they are.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum col_kind {
	C_STR,	  /* the string as it is */
	C_INT,	  /* a number, right-aligned */
	C_TIME,	  /* RFC 3339 shown in local time */
	C_STATUS, /* a status word: underscores become spaces */
	C_FRAC,	  /* key/key2, e.g. seats available/total */
	C_NAME,	  /* key + " " + key2 */
	C_OBJ,	  /* key2 + " " + key: "offer 12" */
	C_JSON,	  /* compact JSON */
	C_BOOL,	  /* yes / no */
};

struct cli_col {
	const char *header;
	const char *key;
	enum col_kind kind;
	const char *key2;
	int max; /* at most this many characters on a terminal; 0: no limit */
};

struct cli_view {
	const char *items; /* the list's key in the result; NULL: one object */
	const struct cli_col *cols;
	/* Lines before a table, or instead of "key: value" for one object. */
	void (*head)(const struct cli *, const json_t *result);
	bool replace; /* head replaces the key: value view */
	/* One object: these keys first, in this order (then the columns'
	 * keys, then the rest alphabetically). */
	const char *order;
	/* Lines after a table. */
	void (*foot)(const struct cli *, const json_t *result);
};

#define END {NULL, NULL, C_STR, NULL, 0}

/* ------------------------------------------------------------- columns */

static const struct cli_col offer_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("STARTS"), "starts_at", C_TIME, NULL, 0},
    {N_("TITLE"), "title", C_STR, NULL, 36},
    {N_("VENUE"), "venue", C_STR, NULL, 24},
    {N_("CITY"), "city", C_STR, NULL, 16},
    {N_("SEATS"), "seats_available", C_FRAC, "seats_total", 0},
    {N_("STATUS"), "status", C_STATUS, NULL, 0},
    END};
static const struct cli_col booking_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("OFFER"), "offer_title", C_STR, NULL, 32},
    {N_("STARTS"), "starts_at", C_TIME, NULL, 0},
    {N_("PERSON"), "beneficiary_id", C_INT, NULL, 0},
    {N_("SEATS"), "seats", C_INT, NULL, 0},
    {N_("CODE"), "code", C_STR, NULL, 0},
    {N_("STATUS"), "status", C_STATUS, NULL, 0},
    END};
static const struct cli_col group_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("OFFER"), "offer_title", C_STR, NULL, 32},
    {N_("STARTS"), "starts_at", C_TIME, NULL, 0},
    {N_("SEATS"), "seats", C_INT, NULL, 0},
    {N_("STAFF"), "staff_seats", C_INT, NULL, 0},
    {N_("CODE"), "code", C_STR, NULL, 0},
    {N_("STATUS"), "status", C_STATUS, NULL, 0},
    END};
static const struct cli_col guest_cols[] = {
    {N_("HOLDER"), "holder", C_STR, NULL, 30},
    {N_("SEATS"), "seats", C_INT, NULL, 0},
    {N_("CODE"), "code", C_STR, NULL, 0},
    {N_("STRUCTURE"), "structure", C_STR, NULL, 30},
    {N_("STATUS"), "status", C_STATUS, NULL, 0},
    {N_("BOOKING"), "booking_id", C_INT, NULL, 0},
    END};
static const struct cli_col beneficiary_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("NAME"), "first_name", C_NAME, "last_name", 36},
    {N_("BORN"), "birth_year", C_INT, NULL, 0},
    {N_("HOUSEHOLD"), "household_size", C_INT, NULL, 0},
    {N_("POSTCODE"), "postal_code", C_STR, NULL, 0},
    {N_("STRUCTURE"), "structure_id", C_INT, NULL, 0},
    END};
static const struct cli_col partner_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("NAME"), "name", C_STR, NULL, 36},
    {N_("KIND"), "kind", C_STATUS, NULL, 0},
    {N_("CITY"), "city", C_STR, NULL, 20},
    {N_("CONTACT"), "contact_email", C_STR, NULL, 0},
    END};
static const struct cli_col structure_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("NAME"), "name", C_STR, NULL, 36},
    {N_("KIND"), "kind", C_STATUS, NULL, 0},
    {N_("TERRITORY"), "territory", C_STR, NULL, 24},
    {N_("CITY"), "city", C_STR, NULL, 20},
    {N_("TIMEZONE"), "timezone", C_STR, NULL, 0},
    END};
static const struct cli_col user_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("EMAIL"), "email", C_STR, NULL, 0},
    {N_("NAME"), "display_name", C_STR, NULL, 30},
    {N_("ROLE"), "role", C_STR, NULL, 0},
    {N_("PARTNER"), "partner_id", C_INT, NULL, 0},
    {N_("STRUCTURE"), "structure_id", C_INT, NULL, 0},
    {N_("ENABLED"), "enabled", C_BOOL, NULL, 0},
    END};
static const struct cli_col waitlist_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("OFFER"), "offer_id", C_INT, NULL, 0},
    {N_("PERSON"), "beneficiary_id", C_INT, NULL, 0},
    {N_("SEATS"), "seats", C_INT, NULL, 0},
    {N_("STATUS"), "status", C_STATUS, NULL, 0},
    {N_("POSITION"), "position", C_INT, NULL, 0},
    {N_("SCORE"), "score", C_INT, NULL, 0},
    {N_("UNTIL"), "expires_at", C_TIME, NULL, 0},
    {N_("BOOKING"), "booking_id", C_INT, NULL, 0},
    END};
static const struct cli_col audit_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("AT"), "at", C_TIME, NULL, 0},
    {N_("USER"), "user_id", C_INT, NULL, 0},
    {N_("METHOD"), "method", C_STR, NULL, 0},
    {N_("OBJECT"), "object_id", C_OBJ, "object_type", 0},
    {N_("SUMMARY"), "summary", C_JSON, NULL, 50},
    END};
static const struct cli_col permanence_cols[] = {
    {N_("ID"), "id", C_INT, NULL, 0},
    {N_("STARTS"), "starts_at", C_TIME, NULL, 0},
    {N_("ENDS"), "ends_at", C_TIME, NULL, 0},
    {N_("TITLE"), "title", C_STR, NULL, 30},
    {N_("LOCATION"), "location", C_STR, NULL, 24},
    {N_("STATE"), "state", C_STATUS, NULL, 0},
    END};
static const struct cli_col block_cols[] = {
    {N_("OFFER"), "offer_id", C_INT, NULL, 0},
    {N_("TITLE"), "offer_title", C_STR, NULL, 32},
    {N_("STARTS"), "offer_starts_at", C_TIME, NULL, 0},
    {N_("SEATS"), "seats", C_INT, NULL, 0},
    {N_("CLAIMED"), "claimed", C_INT, NULL, 0},
    {N_("LEFT"), "remaining", C_INT, NULL, 0},
    {N_("POOL"), "pool_available", C_INT, NULL, 0},
    END};
static const struct cli_col wish_cols[] = {
    {N_("PERSON"), "beneficiary_id", C_INT, NULL, 0},
    {N_("NAME"), "holder", C_STR, NULL, 30},
    {N_("CHOICES"), "choices", C_JSON, NULL, 0},
    {N_("SEATS"), "seats", C_INT, NULL, 0},
    {N_("RANK"), "rank", C_INT, NULL, 0},
    {N_("BOOKING"), "booking_id", C_INT, NULL, 0},
    {N_("REASON"), "reason", C_STATUS, NULL, 0},
    END};
static const struct cli_col draw_cols[] = {
    {"#", "position", C_INT, NULL, 0},
    {N_("PERSON"), "beneficiary_id", C_INT, NULL, 0},
    {N_("SCORE"), "score", C_INT, NULL, 0},
    {N_("CHOICES"), "choices", C_JSON, NULL, 0},
    {N_("RANK"), "rank", C_INT, NULL, 0},
    {N_("OFFER"), "offer_id", C_INT, NULL, 0},
    {N_("SEATS"), "seats", C_INT, NULL, 0},
    {N_("CODE"), "code", C_STR, NULL, 0},
    {N_("REASON"), "reason", C_STATUS, NULL, 0},
    {N_("WAITING FOR"), "waitlist", C_JSON, NULL, 0},
    END};
static const struct cli_col record_cols[] = {
    {N_("STARTS"), "starts_at", C_TIME, NULL, 0},
    {N_("OFFER"), "offer_title", C_STR, NULL, 32},
    {N_("SEATS"), "seats", C_INT, NULL, 0},
    {N_("STATUS"), "status", C_STATUS, NULL, 0},
    {N_("REASON"), "withdraw_reason", C_STATUS, NULL, 0},
    {N_("BOOKING"), "booking_id", C_INT, NULL, 0},
    END};
static const struct cli_col report_cols[] = {
    {N_("KEY"), "key", C_STR, NULL, 30},
    {N_("NAME"), "name", C_STR, NULL, 30},
    {N_("OFFERED"), "seats_offered", C_INT, NULL, 0},
    {N_("BOOKED"), "seats_booked", C_INT, NULL, 0},
    {N_("ATTENDED"), "seats_attended", C_INT, NULL, 0},
    {N_("NO-SHOWS"), "no_shows", C_INT, NULL, 0},
    {N_("PEOPLE"), "beneficiaries", C_INT, NULL, 0},
    {N_("FIRST TIME"), "first_timers", C_INT, NULL, 0},
    {N_("STAFF"), "staff_seats", C_INT, NULL, 0},
    {N_("WITHDRAWN LATE"), "withdrawn_late", C_INT, NULL, 0},
    {N_("UNMET"), "demand", C_INT, NULL, 0},
    END};
static const struct cli_col demand_cols[] = {
    {N_("OFFER"), "offer_id", C_INT, NULL, 0},
    {N_("STARTS"), "starts_at", C_TIME, NULL, 0},
    {N_("TITLE"), "title", C_STR, NULL, 30},
    {N_("SEATS"), "seats_total", C_INT, NULL, 0},
    {N_("BOOKED"), "seats_booked", C_INT, NULL, 0},
    {N_("WISHES"), "wishes", C_INT, NULL, 0},
    {N_("WAITING"), "waiting", C_INT, NULL, 0},
    {N_("REQUESTED"), "seats_requested", C_INT, NULL, 0},
    {N_("UNMET"), "unmet_seats", C_INT, NULL, 0},
    {N_("NO-SHOWS"), "no_shows", C_INT, NULL, 0},
    END};
static const struct cli_col checkin_cols[] = {
    {"", "holder", C_STR, NULL, 0},   {"", "seats", C_INT, NULL, 0},
    {"", "offer_title", C_STR, NULL, 0}, {"", "code", C_STR, NULL, 0},
    {"", "status", C_STATUS, NULL, 0}, END};
static const struct cli_col none_cols[] = {END};

/* Arrays of objects inside one object get a table with these columns. */
static const struct {
	const char *key;
	const struct cli_col *cols;
} nested[] = {
    {"upcoming", booking_cols}, {"bookings", booking_cols},
    {"members", booking_cols},
    {"waitlist", waitlist_cols}, {"blocks", block_cols},
    {"wishes", wish_cols},	{"results", draw_cols},
    {"items", permanence_cols},
};

/* ---------------------------------------------------------- text helpers */

/* Out of memory in a one-shot command: nothing better to do than stop. */
static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

/* Characters a terminal shows, roughly: UTF-8 continuation bytes do not
 * count. Wide characters count one; good enough for names and titles. */
static size_t
text_width(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

/* Byte length of the first `width` characters of s. */
static size_t
text_prefix(const char *s, size_t width)
{
	size_t i = 0, n = 0;

	while (s[i] != '\0') {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (n == width)
				break;
			n++;
		}
		i++;
	}
	return i;
}

/* A copy safe to print on a terminal: C0 and C1 controls and DEL become
 * '?', a newline becomes a space. Caller frees. */
static char *
text_safe(const char *s)
{
	size_t i, o = 0, len = strlen(s);
	char *out = xcalloc(len + 1, 1);
	unsigned char c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == 0xC2 && i + 1 < len &&
		    (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9F) {
			out[o++] = '?';
			i++;
		} else if (c == '\n' || c == '\t')
			out[o++] = ' ';
		else if (c < 0x20 || c == 0x7F)
			out[o++] = '?';
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

static void
put_safe(FILE *f, const char *s)
{
	char *t = text_safe(s);

	fputs(t, f);
	free(t);
}

static void
words(const char *s, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "%s", s);
	for (i = 0; buf[i] != '\0'; i++)
		if (buf[i] == '_')
			buf[i] = ' ';
}

/* A field's label for people: offer_id -> "offer id", in the CLI's
 * language. */
static void
field_label(const char *key, char *buf, size_t len)
{
	char w[80];
	const char *t;

	words(key, w, sizeof w);
	t = w[0] != '\0' ? _(w) : w;
	snprintf(buf, len, "%s", t);
}

static bool
is_time_key(const char *key)
{
	size_t l = strlen(key);

	return strcmp(key, "at") == 0 || strcmp(key, "time") == 0 ||
	       (l > 3 && strcmp(key + l - 3, "_at") == 0) ||
	       (l > 8 && strcmp(key + l - 8, "deadline") == 0) ||
	       strcmp(key, "window_from") == 0 ||
	       strcmp(key, "window_to") == 0;
}

/* A scalar for people (NULL for null). Caller frees. */
static char *
scalar_text(const char *key, const json_t *v, bool status)
{
	char buf[128];
	const char *s;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		if (key != NULL && is_time_key(key))
			s = cli_time_local(s, false, buf, sizeof buf);
		else if (status) {
			words(s, buf, sizeof buf);
			s = buf[0] != '\0' ? _(buf) : buf;
		}
		return text_safe(s);
	case JSON_INTEGER:
		snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return xstrdup(buf);
	case JSON_REAL:
		snprintf(buf, sizeof buf, "%g", json_real_value(v));
		return xstrdup(buf);
	case JSON_TRUE:
		return xstrdup(_("yes"));
	case JSON_FALSE:
		return xstrdup(_("no"));
	case JSON_NULL:
		return NULL;
	default: {
		char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		char *t = text_safe(d ? d : "");

		free(d);
		return t;
	}
	}
}

/* [4, 9, 12] as "4,9,12". */
static char *
joined(const json_t *arr)
{
	char *out = xstrdup(""), *t, *n;
	size_t i;

	for (i = 0; i < json_array_size(arr); i++) {
		t = scalar_text(NULL, json_array_get(arr, i), false);
		if (asprintf(&n, "%s%s%s", out, i ? "," : "", t ? t : "-") < 0)
			abort();
		free(out);
		free(t);
		out = n;
	}
	return out;
}

static char *
cell_text(const json_t *item, const struct cli_col *c)
{
	const json_t *v = json_object_get(item, c->key);
	const json_t *v2 = c->key2 ? json_object_get(item, c->key2) : NULL;
	char *a, *b, *out;
	size_t n;

	switch (c->kind) {
	case C_TIME:
		return json_is_string(v) ? scalar_text("at", v, false) : NULL;
	case C_STATUS:
		return v ? scalar_text(NULL, v, true) : NULL;
	case C_FRAC:
	case C_NAME:
	case C_OBJ:
		if (c->kind == C_OBJ) {
			const json_t *t = v;

			v = v2;
			v2 = t;
		}
		a = v ? scalar_text(NULL, v, false) : NULL;
		b = v2 ? scalar_text(NULL, v2, false) : NULL;
		if (a == NULL || b == NULL) {
			free(b);
			return a;
		}
		n = strlen(a) + strlen(b) + 2;
		out = xcalloc(n, 1);
		snprintf(out, n, "%s%s%s", a, c->kind == C_FRAC ? "/" : " ",
			 b);
		free(a);
		free(b);
		return out;
	case C_JSON:
		if (v == NULL || json_is_null(v))
			return NULL;
		if (json_is_object(v) && json_object_size(v) == 0)
			return NULL;
		if (json_is_array(v) && !json_is_object(json_array_get(v, 0)) &&
		    !json_is_array(json_array_get(v, 0)))
			return joined(v);
		return scalar_text(NULL, v, false);
	default:
		return v ? scalar_text(NULL, v, false) : NULL;
	}
}

/* ---------------------------------------------------------------- tables */

static void
print_table(FILE *f, const json_t *items, const struct cli_col *cols,
	    const char *indent)
{
	size_t ncols = 0, nrows = json_array_size(items), r, c, w;
	size_t *width, last = 0;
	char **cells, **headers;
	bool tty = isatty(fileno(f)), *used, right;

	while (cols[ncols].key != NULL)
		ncols++;
	if (ncols == 0)
		return;
	cells = xcalloc(nrows * ncols + 1, sizeof *cells);
	width = xcalloc(ncols, sizeof *width);
	used = xcalloc(ncols, sizeof *used);
	headers = xcalloc(ncols, sizeof *headers);
	for (c = 0; c < ncols; c++) {
		if (cols[c].header != NULL)
			headers[c] = xstrdup(cols[c].header[0] != '\0' ?
			    _(cols[c].header) : "");
		else {
			/* offer_id -> OFFER ID */
			headers[c] = xstrdup(cols[c].key);
			for (char *p = headers[c]; *p != '\0'; p++) {
				unsigned char ch = (unsigned char)*p;

				*p = ch == '_' ? ' ' : (char)toupper(ch);
			}
		}
		width[c] = text_width(headers[c]);
	}
	for (r = 0; r < nrows; r++)
		for (c = 0; c < ncols; c++) {
			char *t = cell_text(json_array_get(items, r), &cols[c]);

			if (t != NULL && tty && cols[c].max > 0 &&
			    text_width(t) > (size_t)cols[c].max) {
				/* Cut long titles on a terminal only: files
				 * and pipes get them whole. */
				size_t cut =
				    text_prefix(t, (size_t)cols[c].max - 1);
				char *s = realloc(t, cut + 4);

				if (s == NULL)
					abort();
				memcpy(s + cut, "\xE2\x80\xA6", 4); /* … */
				t = s;
			}
			cells[r * ncols + c] = t;
			if (t != NULL) {
				used[c] = true;
				if ((w = text_width(t)) > width[c])
					width[c] = w;
			}
		}
	/* Columns empty in every row are left out: a partner has no
	 * structure, a page of waiting entries may have no deadline. */
	for (c = 0; c < ncols; c++)
		if (used[c])
			last = c;
	for (r = 0; r <= nrows; r++) {
		fputs(indent, f);
		for (c = 0, w = 0; c < ncols; c++) {
			const char *t = r == 0 ? headers[c]
					       : cells[(r - 1) * ncols + c];
			size_t pad;

			if (!used[c])
				continue;
			if (w++ > 0)
				fputs("  ", f);
			if (t == NULL)
				t = "-";
			pad = width[c] - text_width(t);
			right = cols[c].kind == C_INT || cols[c].kind == C_FRAC;
			if (right)
				fprintf(f, "%*s", (int)pad, "");
			fputs(t, f);
			/* No blanks at the end of a line. */
			if (!right && c != last)
				fprintf(f, "%*s", (int)pad, "");
		}
		fputc('\n', f);
	}
	for (c = 0; c < ncols; c++)
		free(headers[c]);
	free(headers);
	for (r = 0; r < nrows * ncols; r++)
		free(cells[r]);
	free(cells);
	free(width);
	free(used);
}

/* Columns for a nested array of objects: known ones by key, else every
 * scalar field of the first item. */
static const struct cli_col *
nested_cols(const char *key, const json_t *arr, struct cli_col *buf,
	    size_t max)
{
	const json_t *first = json_array_get(arr, 0), *v;
	const char *k;
	size_t i, n = 0;

	for (i = 0; i < sizeof nested / sizeof nested[0]; i++)
		if (strcmp(nested[i].key, key) == 0)
			return nested[i].cols;
	json_object_foreach((json_t *)first, k, v) {
		if (n + 1 >= max)
			break;
		buf[n].header = NULL; /* from the key */
		buf[n].key = k;
		buf[n].kind = json_is_integer(v)	? C_INT
			      : is_time_key(k)		? C_TIME
			      : json_is_object(v) || json_is_array(v) ? C_JSON
								: C_STR;
		buf[n].key2 = NULL;
		buf[n].max = 40;
		n++;
	}
	memset(&buf[n], 0, sizeof buf[n]);
	return buf;
}

/* ------------------------------------------------------------ key: value */

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_object(FILE *f, const json_t *o, const struct cli_col *cols,
			 const char *order, int depth);

static void
print_field(FILE *f, const char *key, const json_t *v, int width, int depth)
{
	char label[80], *t;
	struct cli_col buf[16];

	field_label(key, label, sizeof label);
	if (json_is_array(v) && json_array_size(v) > 0 &&
	    json_is_object(json_array_get(v, 0))) {
		char indent[32];

		fprintf(f, "%*s%s:\n", depth * 2, "", label);
		snprintf(indent, sizeof indent, "%*s", depth * 2 + 2, "");
		print_table(f, v, nested_cols(key, v, buf, 16), indent);
		return;
	}
	if (json_is_object(v)) {
		if (json_object_size(v) == 0)
			return;
		fprintf(f, "%*s%s:\n", depth * 2, "", label);
		print_object(f, v, none_cols, NULL, depth + 1);
		return;
	}
	if (json_is_array(v)) {
		size_t i;

		if (json_array_size(v) == 0)
			return;
		fprintf(f, "%*s%s:%*s ", depth * 2, "", label,
			(int)(width - text_width(label)), "");
		for (i = 0; i < json_array_size(v); i++) {
			t = scalar_text(NULL, json_array_get(v, i), false);
			fprintf(f, "%s%s", i ? ", " : "", t ? t : "-");
			free(t);
		}
		fputc('\n', f);
		return;
	}
	t = scalar_text(key, v,
			strcmp(key, "status") == 0 ||
			    strcmp(key, "state") == 0 ||
			    strcmp(key, "reason") == 0);
	if (t == NULL)
		return;
	if (is_time_key(key) && json_is_string(v)) {
		char buf2[128];

		free(t);
		t = text_safe(cli_time_local(json_string_value(v), true, buf2,
					     sizeof buf2));
	}
	fprintf(f, "%*s%s:%*s %s\n", depth * 2, "", label,
		(int)(width - text_width(label)), "", t);
	free(t);
}

/* keys[] gets k (a key of o) unless it has it already. */
static void
add_key(const json_t *o, const char **keys, size_t *n, const char *k)
{
	const char *ok;
	json_t *v;
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp(keys[i], k) == 0)
			return;
	/* The object's own copy of the name: k may be a temporary. */
	json_object_foreach((json_t *)o, ok, v) {
		if (strcmp(ok, k) == 0) {
			keys[(*n)++] = ok;
			return;
		}
	}
}

/* The view's order first, then its columns, then the rest alphabetically;
 * null fields are left out. */
static void
print_object(FILE *f, const json_t *o, const struct cli_col *cols,
	     const char *order, int depth)
{
	const char **keys, *k, *e;
	char word[64];
	size_t n = 0, i, c, w = 0;
	json_t *v;

	keys = xcalloc(json_object_size(o) + 1, sizeof *keys);
	for (k = order; k != NULL && *k != '\0'; k = e) {
		while (*k == ' ')
			k++;
		e = k + strcspn(k, " ");
		if (e > k && (size_t)(e - k) < sizeof word) {
			memcpy(word, k, (size_t)(e - k));
			word[e - k] = '\0';
			add_key(o, keys, &n, word);
		}
	}
	for (c = 0; cols[c].key != NULL; c++) {
		add_key(o, keys, &n, cols[c].key);
		if (cols[c].key2 != NULL)
			add_key(o, keys, &n, cols[c].key2);
	}
	c = n;
	json_object_foreach((json_t *)o, k, v) {
		for (i = 0; i < c; i++)
			if (strcmp(keys[i], k) == 0)
				break;
		if (i == c)
			keys[n++] = k;
	}
	qsort(keys + c, n - c, sizeof *keys, key_cmp);
	for (i = 0; i < n; i++) {
		v = json_object_get(o, keys[i]);
		if (json_is_null(v) || json_is_object(v) ||
		    (json_is_array(v) &&
		     (json_array_size(v) == 0 ||
		      json_is_object(json_array_get(v, 0)))))
			continue; /* not on a "key: value" line */
		field_label(keys[i], word, sizeof word);
		if (text_width(word) > w)
			w = text_width(word);
	}
	for (i = 0; i < n; i++) {
		v = json_object_get(o, keys[i]);
		if (!json_is_null(v))
			print_field(f, keys[i], v, (int)w, depth);
	}
	free(keys);
}

/* ------------------------------------------------------------------ CSV */

static void
csv_cell(FILE *f, const json_t *v)
{
	char *d = NULL;
	const char *s;
	char num[64];

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		s = num;
		break;
	case JSON_REAL:
		snprintf(num, sizeof num, "%.17g", json_real_value(v));
		s = num;
		break;
	case JSON_TRUE:
		s = "true";
		break;
	case JSON_FALSE:
		s = "false";
		break;
	case JSON_NULL:
		return;
	default:
		s = d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (s == NULL)
			return;
		break;
	}
	if (strpbrk(s, ",\"\r\n") == NULL && s[0] != ' ' &&
	    (s[0] == '\0' || s[strlen(s) - 1] != ' ')) {
		fputs(s, f);
	} else {
		fputc('"', f);
		for (; *s != '\0'; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	}
	free(d);
}

/* Header: the view's fields first, then every other field in the order
 * first seen. RFC 4180 lines end with CRLF. */
static void
print_csv(FILE *f, const json_t *items, const struct cli_col *cols)
{
	json_t *keys = json_array(), *item, *v;
	const char *k;
	size_t i, j, c;

#define ADD_KEY(name)                                                          \
	do {                                                                   \
		for (j = 0; j < json_array_size(keys); j++)                    \
			if (strcmp(json_string_value(json_array_get(keys, j)), \
				   (name)) == 0)                               \
				break;                                         \
		if (j == json_array_size(keys))                                \
			json_array_append_new(keys, json_string(name));        \
	} while (0)

	for (c = 0; cols != NULL && cols[c].key != NULL; c++) {
		bool present = false;

		for (i = 0; i < json_array_size(items); i++)
			present |= json_object_get(json_array_get(items, i),
						   cols[c].key) != NULL;
		if (present)
			ADD_KEY(cols[c].key);
		if (cols[c].key2 == NULL)
			continue;
		present = false;
		for (i = 0; i < json_array_size(items); i++)
			present |= json_object_get(json_array_get(items, i),
						   cols[c].key2) != NULL;
		if (present)
			ADD_KEY(cols[c].key2);
	}
	json_array_foreach(items, i, item) {
		if (!json_is_object(item))
			continue;
		json_object_foreach(item, k, v) {
			ADD_KEY(k);
		}
	}
#undef ADD_KEY
	json_array_foreach(keys, j, v) {
		if (j > 0)
			fputc(',', f);
		csv_cell(f, v);
	}
	fputs("\r\n", f);
	json_array_foreach(items, i, item) {
		for (j = 0; j < json_array_size(keys); j++) {
			if (j > 0)
				fputc(',', f);
			v = json_object_get(
			    item, json_string_value(json_array_get(keys, j)));
			if (v != NULL)
				csv_cell(f, v);
		}
		fputs("\r\n", f);
	}
	json_decref(keys);
}

/* --------------------------------------------------------------- heads */

/* Lines that say in words what a result means, before or instead of its
 * fields. Numbers absent from the result print as 0. */

static long long
ival(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static const char *
sval(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "?";
}

static const char *
plural(long long n)
{
	return n == 1 ? "" : "s";
}

static void
head_guest_list(const struct cli *cli, const json_t *r)
{
	const json_t *o = json_object_get(r, "offer");
	const json_t *items = json_object_get(r, "items"), *it;
	long long seats = 0, n = (long long)json_array_size(items);
	char buf[64];
	size_t i;

	(void)cli;
	json_array_foreach(items, i, it) {
		seats += ival(it, "seats");
	}
	put_safe(stdout, sval(o, "title"));
	printf(", %s, ", cli_time_local(sval(o, "starts_at"), true, buf,
					sizeof buf));
	put_safe(stdout, sval(o, "venue"));
	printf(_(": %lld booking%s, %lld seat%s\n\n"), n, plural(n), seats,
	       plural(seats));
}

static void
head_draw(const struct cli *cli, const json_t *r)
{
	(void)cli;
	printf(_("permanence %lld: %lld of %lld wishes granted, seed "),
	       ival(r, "permanence_id"), ival(r, "granted"),
	       ival(r, "wishes"));
	put_safe(stdout, sval(r, "seed"));
	fputs("\n\n", stdout);
}

static void
head_series(const struct cli *cli, const json_t *r)
{
	const json_t *skipped = json_object_get(r, "skipped_months");
	size_t i;

	(void)cli;
	if (json_object_get(r, "series_id") == NULL)
		return; /* permanence list */
	printf(_("series %lld"), ival(r, "series_id"));
	if (json_array_size(skipped) > 0) {
		fputs(_(" (no such day in"), stdout);
		for (i = 0; i < json_array_size(skipped); i++) {
			const char *m =
			    json_string_value(json_array_get(skipped, i));

			fputs(i ? ", " : " ", stdout);
			put_safe(stdout, m ? m : "?");
		}
		fputc(')', stdout);
	}
	fputs("\n\n", stdout);
}

static void
head_checkin(const struct cli *cli, const json_t *r)
{
	long long seats = ival(r, "seats");

	(void)cli;
	fputs(_("checked in: "), stdout);
	put_safe(stdout, sval(r, "holder"));
	printf(_(", %lld seat%s, "), seats, plural(seats));
	put_safe(stdout, sval(r, "offer_title"));
	if (json_is_integer(json_object_get(r, "group_id")))
		printf(_(" (group %lld: %lld people, %lld staff)\n"),
		       ival(r, "group_id"), ival(r, "members_checked_in"),
		       ival(r, "staff_seats"));
	else
		printf(_(" (booking %lld)\n"), ival(r, "id"));
}

static void
head_attendance(const struct cli *cli, const json_t *r)
{
	(void)cli;
	printf(_("attendance closed for offer %lld: %lld attended (%lld "
	       "seats), %lld no-show (%lld seats)\n"),
	       ival(r, "offer_id"), ival(r, "attended"),
	       ival(r, "attended_seats"), ival(r, "no_show"),
	       ival(r, "no_show_seats"));
	if (ival(r, "arrived_late") > 0)
		printf(_("of whom %lld arrived late\n"),
		       ival(r, "arrived_late"));
}

/* beneficiary.record: the figures of the draw's score above the list
 * (weights and score may have fractions). */
static void
head_record(const struct cli *cli, const json_t *r)
{
	char from[64], to[64];

	(void)cli;
	printf(_("person %lld, %s to %s: %lld outings, %lld no-shows, %lld "
	       "late withdrawals: score %g\n"),
	       ival(r, "beneficiary_id"),
	       cli_time_local(sval(r, "window_from"), false, from, sizeof from),
	       cli_time_local(sval(r, "window_to"), false, to, sizeof to),
	       ival(r, "attended"), ival(r, "no_shows"),
	       ival(r, "withdrawn_late"),
	       json_number_value(json_object_get(r, "score")));
	printf(_("(an outing counts 1, a no-show %g, a late withdrawal %g; "
	       "the lowest score goes first at a draw)\n\n"),
	       json_number_value(json_object_get(r, "no_show_weight")),
	       json_number_value(json_object_get(r, "withdrawn_late_weight")));
}

static void
head_whoami(const struct cli *cli, const json_t *r)
{
	const json_t *u = json_object_get(r, "user");
	const char *exp = json_string_value(json_object_get(r, "expires_at"));
	char buf[64];

	put_safe(stdout, sval(u, "display_name"));
	fputs(" <", stdout);
	put_safe(stdout, sval(u, "email"));
	fputs(">, ", stdout);
	put_safe(stdout, sval(u, "role"));
	if (json_is_integer(json_object_get(u, "partner_id")))
		printf(_(" of partner %lld"), ival(u, "partner_id"));
	if (json_is_integer(json_object_get(u, "structure_id")))
		printf(_(" of structure %lld"), ival(u, "structure_id"));
	printf(_(" (user %lld)\n"), ival(u, "id"));
	/* auth.whoami does not say until when; the resume did. */
	if (exp == NULL && cli->resumed)
		exp = cli->session.expires_at;
	if (exp != NULL && exp[0] != '\0')
		printf(_("session on %s until %s\n"), cli->server,
		       cli_time_local(exp, true, buf, sizeof buf));
}

/* One line per notice the role receives: received or turned off. */
static void
head_mail(const struct cli *cli, const json_t *r)
{
	const json_t *kinds = json_object_get(r, "mail_kinds");
	const json_t *off = json_object_get(r, "mail_off");
	const json_t *k, *o;
	size_t i, j;
	bool is_off;

	(void)cli;
	if (json_array_size(kinds) == 0) {
		printf(_("your role receives no e-mail notice\n"));
		return;
	}
	json_array_foreach(kinds, i, k) {
		is_off = false;
		json_array_foreach(off, j, o)
			if (json_equal(k, o))
				is_off = true;
		printf("%-20s ", json_string_value(k));
		printf("%s\n", is_off ? _("off") : _("received"));
	}
}

static void
head_report(const struct cli *cli, const json_t *r)
{
	char b1[64], b2[64];

	(void)cli;
	if (!json_is_string(json_object_get(r, "from")))
		return;
	printf(_("offers starting from %s to %s, by "),
	       cli_time_local(sval(r, "from"), true, b1, sizeof b1),
	       cli_time_local(sval(r, "to"), true, b2, sizeof b2));
	put_safe(stdout, sval(r, "group_by"));
	fputs("\n\n", stdout);
}

static void
foot_report(const struct cli *cli, const json_t *r)
{
	const json_t *t = json_object_get(r, "total");

	(void)cli;
	if (!json_is_object(t))
		return;
	printf(_("\ntotal: %lld seats offered, %lld booked, %lld attended, "
	       "%lld no-shows, %lld people, %lld for the first time\n"),
	       ival(t, "seats_offered"), ival(t, "seats_booked"),
	       ival(t, "seats_attended"), ival(t, "no_shows"),
	       ival(t, "beneficiaries"), ival(t, "first_timers"));
	printf(_("%lld seats withdrawn late (given back after the deadline)\n"),
	       ival(t, "withdrawn_late"));
}

/* ---------------------------------------------------------------- events */

void
cli_print_event(const json_t *ev)
{
	const char *topic = sval(ev, "topic");
	const json_t *d = json_object_get(ev, "data");
	const char *status = json_string_value(json_object_get(d, "status"));
	const char *until = json_string_value(json_object_get(d, "expires_at"));
	char now[32], buf[64];
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(now, sizeof now, "%H:%M:%S", &tm);
	printf("%s  ", now);
	put_safe(stdout, topic);
	fputs(": ", stdout);
	if (strcmp(topic, "resync") == 0) {
		printf(_("events may have been lost; look again at what "
		       "matters\n"));
		return;
	}
	if (!json_is_object(d)) {
		cli_print_json(d);
		return;
	}
	if (strncmp(topic, "offer.", 6) == 0) {
		printf(_("offer %lld "), ival(d, "id"));
		put_safe(stdout, sval(d, "title"));
		printf(", %s", cli_time_local(sval(d, "starts_at"), false, buf,
					      sizeof buf));
		if (json_is_integer(json_object_get(d, "seats_total")))
			printf(_(", %lld/%lld seats"), ival(d, "seats_available"),
			       ival(d, "seats_total"));
	} else {
		printf(_("%s %lld, offer %lld"),
		       strncmp(topic, "waitlist.", 9) == 0 ? "entry"
							   : "booking",
		       ival(d, "id"), ival(d, "offer_id"));
		if (json_is_string(json_object_get(d, "offer_title"))) {
			fputc(' ', stdout);
			put_safe(stdout, sval(d, "offer_title"));
		}
		if (json_is_integer(json_object_get(d, "seats")))
			printf(_(", %lld seats"), ival(d, "seats"));
		if (until != NULL)
			printf(_(", until %s"),
			       cli_time_local(until, false, buf, sizeof buf));
	}
	if (status != NULL) {
		words(status, buf, sizeof buf);
		fputs(" (", stdout);
		put_safe(stdout, buf);
		fputc(')', stdout);
	}
	fputc('\n', stdout);
}

/* ---------------------------------------------------------------- views */

#define LIST_VIEW(name, cols, head)                                           \
	const struct cli_view name = {"items", cols, head, false, NULL, NULL}
#define ONE_VIEW(name, cols, order)                                            \
	const struct cli_view name = {NULL, cols, NULL, false, order, NULL}

LIST_VIEW(view_offers, offer_cols, NULL);
LIST_VIEW(view_offer_series, offer_cols, head_series);
ONE_VIEW(view_offer, offer_cols,
	 "id title category partner_name partner_id venue city starts_at "
	 "ends_at booking_deadline seats_total seats_taken seats_held "
	 "seats_available max_per_booking delivery status description "
	 "accessibility cancel_reason cancelled_at bookings_cancelled "
	 "waitlist_ended attendance_closed_at series_id target_structure_ids "
	 "target_territories opens_to_all_at opens_to_all_hours open_to_all");
LIST_VIEW(view_guest_list, guest_cols, head_guest_list);
const struct cli_view view_attendance = {NULL, none_cols, head_attendance,
					 true, NULL, NULL};
LIST_VIEW(view_record, record_cols, head_record);
LIST_VIEW(view_bookings, booking_cols, NULL);
ONE_VIEW(view_group, group_cols,
	 "id code code_admits status seats staff_seats offer_id offer_title "
	 "starts_at venue city structure_id cancelled_at checked_in_at members");
ONE_VIEW(view_booking, booking_cols,
	 "id code status seats offer_id offer_title starts_at venue city "
	 "beneficiary_id structure_id source checked_in_at cancelled_at "
	 "withdraw_reason arrived_late");
LIST_VIEW(view_beneficiaries, beneficiary_cols, NULL);
ONE_VIEW(view_beneficiary, beneficiary_cols,
	 "id first_name last_name birth_year household_size postal_code "
	 "structure_id consent consent_at email reminders "
	 "reminders_consent_at identity_set_at outings_12m no_shows_12m "
	 "withdrawn_late_12m upcoming");
LIST_VIEW(view_partners, partner_cols, NULL);
ONE_VIEW(view_partner, partner_cols, NULL);
LIST_VIEW(view_structures, structure_cols, NULL);
ONE_VIEW(view_structure, structure_cols, NULL);
LIST_VIEW(view_users, user_cols, NULL);
ONE_VIEW(view_user, user_cols, NULL);
LIST_VIEW(view_waitlists, waitlist_cols, NULL);
ONE_VIEW(view_waitlist, waitlist_cols,
	 "id status position score attended no_shows withdrawn_late source "
	 "offer_id beneficiary_id seats offered_at expires_at booking_id");
const struct cli_view view_checkin = {NULL, checkin_cols, head_checkin, true,
				      NULL, NULL};
LIST_VIEW(view_audit, audit_cols, NULL);
ONE_VIEW(view_permanence, permanence_cols,
	 "id title location state claims_open starts_at ends_at timezone "
	 "structure_id "
	 "series_id seed_sha256 seed seats_set_aside seats_claimed "
	 "seats_remaining blocks block wishes_count wishes");
LIST_VIEW(view_permanences, permanence_cols, head_series);
const struct cli_view view_draw = {"results", draw_cols, head_draw, false,
				   NULL, NULL};
const struct cli_view view_report = {"items", report_cols, head_report,
				     false, NULL, foot_report};
LIST_VIEW(view_demand, demand_cols, NULL);
const struct cli_view view_whoami = {NULL, none_cols, head_whoami, true, NULL,
				     NULL};
const struct cli_view view_mail_preferences = {NULL, none_cols, head_mail,
    true, NULL, NULL};

/* --------------------------------------------------------------- print */

void
cli_print_json(const json_t *v)
{
	json_dumpf(v, stdout, JSON_COMPACT | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

void
cli_print(struct cli *cli, const struct cli_command *cmd, json_t *result)
{
	const struct cli_view *view = cmd ? cmd->view : NULL;
	const json_t *items = NULL, *next;
	const struct cli_col *cols = view ? view->cols : none_cols;
	struct cli_col buf[24];

	if (cli->format == FMT_JSON) {
		cli_print_json(result);
		return;
	}
	if (view != NULL && view->items != NULL)
		items = json_object_get(result, view->items);
	else if (view == NULL)
		items = json_object_get(result, "items");
	if (!json_is_array(items))
		items = NULL;

	if (cli->format == FMT_CSV) {
		if (items != NULL)
			print_csv(stdout, items, cols);
		else if (json_is_object(result)) {
			/* One object: a one-row table. */
			json_t *one = json_pack("[O]", result);

			print_csv(stdout, one, cols);
			json_decref(one);
		} else
			cli_print_json(result);
		return;
	}

	if (view == NULL && cmd != NULL && cmd->method == NULL) {
		/* `call`: no view known, the JSON indented. */
		json_dumpf(result, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
		fputc('\n', stdout);
		return;
	}
	if (!json_is_object(result)) {
		cli_print_json(result);
		return;
	}
	if (view != NULL && view->head != NULL)
		view->head(cli, result);
	if (view != NULL && view->replace)
		return;
	if (items == NULL) {
		print_object(stdout, result, cols, view ? view->order : NULL,
			     0);
		return;
	}
	if (json_array_size(items) == 0)
		printf(_("(none)\n"));
	else {
		if (cols[0].key == NULL)
			cols = nested_cols("", items, buf, 24);
		print_table(stdout, items, cols, "");
	}
	if (view != NULL && view->foot != NULL)
		view->foot(cli, result);
	next = json_object_get(result, "next_cursor");
	if (json_is_string(next))
		fprintf(stderr,
			_("strapontin: more items: add --cursor %s, or --all for "
			"every page\n"),
			json_string_value(next));
}
