#include "params.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static bool
digits(const char *s, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int
num(const char *s, int n)
{
	int i, v = 0;

	for (i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static bool
valid_ymd(int y, int m, int d)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (y < 1900 || y > 9999 || m < 1 || m > 12 || d < 1)
		return false;
	if (m == 2 && !leap)
		return d <= 28;
	return d <= mdays[m - 1];
}

/* YYYY-MM-DD at the start of s. */
static bool
date_prefix(const char *s)
{
	if (strnlen(s, 10) != 10 || !digits(s, 4) || s[4] != '-' ||
	    !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
		return false;
	return valid_ymd(num(s, 4), num(s + 5, 2), num(s + 8, 2));
}

bool
params_is_date(const char *s)
{
	return strlen(s) == 10 && date_prefix(s);
}

bool
params_is_rfc3339(const char *s)
{
	const char *p;

	if (strlen(s) < 20 || !date_prefix(s))
		return false;
	p = s + 10;
	if ((*p != 'T' && *p != 't' && *p != ' ') || !digits(p + 1, 2) ||
	    p[3] != ':' || !digits(p + 4, 2) || p[6] != ':' || !digits(p + 7, 2))
		return false;
	if (num(p + 1, 2) > 23 || num(p + 4, 2) > 59 || num(p + 7, 2) > 59)
		return false;
	p += 9;
	if (*p == '.') {
		int n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++)
			n++;
		if (n == 0 || n > 9)
			return false;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return true;
	if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' &&
	    digits(p + 4, 2) && p[6] == '\0')
		return num(p + 1, 2) <= 23 && num(p + 4, 2) <= 59;
	return false;
}

bool
params_is_email(const char *s)
{
	const char *at = strchr(s, '@');
	size_t i, len = strlen(s);

	if (len < 3 || len > 254 || at == NULL || at == s || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || strchr(at + 1, '.') == NULL)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/* Up to 18 digits (so no overflow) at s, read into *v; returns the
 * length read, 0 if none or too many. */
static size_t
cursor_number(const char *s, long long *v)
{
	size_t i, n = strspn(s, "0123456789");

	if (n == 0 || n > 18)
		return 0;
	*v = 0;
	for (i = 0; i < n; i++)
		*v = *v * 10 + (s[i] - '0');
	return n;
}

/*
 * The two shapes of cursor the list functions give (sql/api/00_core.sql):
 * "id" for lists in id order, "microseconds since the epoch:id" for lists
 * in time order. The SQL decodes the time with to_timestamp(), which
 * fails on an instant PostgreSQL cannot hold: a crafted cursor would end
 * in internal_error, so its range is checked here. Times come from
 * PT_TIME values (years 1900 to 9999, any offset): the years 0001 to
 * 10000 hold them all.
 */
#define CURSOR_MIN_US (-62135596800000000LL)  /* 0001-01-01T00:00:00Z */
#define CURSOR_MAX_US (253433923199999999LL)  /* 10000-12-31T23:59:59.999999Z */

bool
params_is_cursor(const char *s)
{
	long long t, id;
	bool minus = s[0] == '-';
	size_t n;

	n = cursor_number(s + minus, &t);
	if (n == 0)
		return false;
	s += minus + n;
	if (*s == '\0')
		return !minus;                  /* "id" */
	if (*s != ':')
		return false;
	if (minus)
		t = -t;
	if (t < CURSOR_MIN_US || t > CURSOR_MAX_US)
		return false;
	n = cursor_number(s + 1, &id);
	return n > 0 && s[1 + n] == '\0';
}

static bool
has_control(const char *s, bool text)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (text && (c == '\n' || c == '\t' || c == '\r'))
			continue;
		if (c < 0x20 || c == 0x7f)
			return true;
	}
	return false;
}

static bool
in_choices(const char *const *choices, const char *s)
{
	for (; *choices; choices++)
		if (strcmp(*choices, s) == 0)
			return true;
	return false;
}

static void
list_choices(const char *const *choices, char *msg, size_t len, const char *name)
{
	size_t n = (size_t)snprintf(msg, len, "%s must be one of", name);

	for (; *choices && n < len; choices++)
		n += (size_t)snprintf(msg + n, len - n, " %s", *choices);
}

/* An item of a PT_STRING_ARRAY: a name (a territory), not free text. */
#define ARRAY_STRING_MAX 200

static bool
array_string(json_t *e)
{
	const char *s;
	size_t n;

	if (!json_is_string(e))
		return false;
	s = json_string_value(e);
	n = json_string_length(e);
	return n >= 1 && n <= ARRAY_STRING_MAX && strlen(s) == n &&
	    !has_control(s, false) && strspn(s, " ") < n;
}

#define FAIL(...) do { snprintf(msg, len, __VA_ARGS__); return false; } while (0)

static bool
check_one(const struct param *p, json_t *v, char *msg, size_t len)
{
	const char *s;
	size_t n, i;

	switch (p->type) {
	case PT_INT:
	case PT_ID: {
		long long min = p->type == PT_ID ? 1 : p->min;
		long long max = p->type == PT_ID ? (1LL << 53) : p->max;

		if (!json_is_integer(v))
			FAIL("%s must be an integer", p->name);
		if (json_integer_value(v) < min || json_integer_value(v) > max)
			FAIL("%s must be from %lld to %lld", p->name, min, max);
		return true;
	}
	case PT_NUMBER:
		if (!json_is_number(v))
			FAIL("%s must be a number", p->name);
		if (json_number_value(v) < (double)p->min ||
		    json_number_value(v) > (double)p->max)
			FAIL("%s must be from %lld to %lld", p->name, p->min,
			    p->max);
		return true;
	case PT_BOOL:
		if (!json_is_boolean(v))
			FAIL("%s must be true or false", p->name);
		return true;
	case PT_ID_ARRAY:
	case PT_ENUM_ARRAY:
	case PT_STRING_ARRAY:
		if (!json_is_array(v))
			FAIL("%s must be an array", p->name);
		n = json_array_size(v);
		if ((long long)n < p->min || (long long)n > p->max)
			FAIL("%s must hold from %lld to %lld items", p->name,
			    p->min, p->max);
		for (i = 0; i < n; i++) {
			json_t *e = json_array_get(v, i);

			if (p->type == PT_ID_ARRAY && (!json_is_integer(e) ||
			    json_integer_value(e) < 1 ||
			    json_integer_value(e) > (1LL << 53)))
				FAIL("%s must hold ids (positive integers)",
				    p->name);
			if (p->type == PT_ENUM_ARRAY && (!json_is_string(e) ||
			    !in_choices(p->choices, json_string_value(e)))) {
				list_choices(p->choices, msg, len, p->name);
				return false;
			}
			if (p->type == PT_STRING_ARRAY && !array_string(e))
				FAIL("%s must hold strings of 1 to %d bytes, "
				    "on one line", p->name, ARRAY_STRING_MAX);
		}
		return true;
	default:
		break;
	}

	if (!json_is_string(v))
		FAIL("%s must be a string", p->name);
	s = json_string_value(v);
	n = json_string_length(v);
	if (strlen(s) != n)
		FAIL("%s must not contain NUL characters", p->name);

	switch (p->type) {
	case PT_STRING:
	case PT_TEXT:
		if ((long long)n < p->min || (long long)n > p->max)
			FAIL("%s must be from %lld to %lld bytes long", p->name,
			    p->min, p->max);
		if (has_control(s, p->type == PT_TEXT))
			FAIL("%s must not contain control characters", p->name);
		if (p->min > 0 && strspn(s, " \t\r\n") == n)
			FAIL("%s must not be blank", p->name);
		return true;
	case PT_ENUM:
		if (!in_choices(p->choices, s)) {
			list_choices(p->choices, msg, len, p->name);
			return false;
		}
		return true;
	case PT_EMAIL:
		if (!params_is_email(s))
			FAIL("%s must be an e-mail address", p->name);
		return true;
	case PT_TIME:
		if (!params_is_rfc3339(s))
			FAIL("%s must be an RFC 3339 time such as "
			    "2026-03-14T20:30:00Z", p->name);
		return true;
	case PT_DATE:
		if (!params_is_date(s))
			FAIL("%s must be a date YYYY-MM-DD", p->name);
		return true;
	case PT_HHMM:
		if (n != 5 || !digits(s, 2) || s[2] != ':' || !digits(s + 3, 2) ||
		    num(s, 2) > 23 || num(s + 3, 2) > 59)
			FAIL("%s must be a time of day HH:MM", p->name);
		return true;
	case PT_CURSOR:
		if (!params_is_cursor(s))
			FAIL("%s is not a cursor this server gave", p->name);
		return true;
	default:
		FAIL("%s has an unknown type", p->name);
	}
}

bool
params_validate(const struct param *spec, json_t *params, const char **field,
    char *msg, size_t len)
{
	const struct param *p;
	const char *key;
	json_t *v;

	json_object_foreach(params, key, v) {
		for (p = spec; p->name != NULL; p++)
			if (strcmp(p->name, key) == 0)
				break;
		if (p->name == NULL) {
			*field = key;
			snprintf(msg, len, "unknown parameter %.64s", key);
			return false;
		}
	}
	for (p = spec; p->name != NULL; p++) {
		v = json_object_get(params, p->name);
		*field = p->name;
		if (v == NULL || json_is_null(v)) {
			if (p->flags & P_REQUIRED) {
				snprintf(msg, len, "%s is required", p->name);
				return false;
			}
			if (v != NULL && !(p->flags & P_NULLABLE)) {
				snprintf(msg, len, "%s may not be null", p->name);
				return false;
			}
			continue;
		}
		if (!check_one(p, v, msg, len))
			return false;
	}
	*field = NULL;
	return true;
}
