/* Parameter validation: every method declares its params as a table; the
 * dispatcher checks a request against it before the handler runs, so
 * handlers (and the SQL behind them) only ever see well-typed values. */
#ifndef PARAMS_H
#define PARAMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum ptype {
	PT_INT,      /* integer in [min, max] */
	PT_ID,       /* integer >= 1 */
	PT_NUMBER,   /* integer or real in [min, max] */
	PT_BOOL,
	PT_STRING,   /* one line of text, byte length in [min, max] */
	PT_TEXT,     /* free text, may hold newlines, length in [min, max] */
	PT_ENUM,     /* one of choices */
	PT_EMAIL,
	PT_TIME,     /* RFC 3339 date-time with an offset */
	PT_DATE,     /* YYYY-MM-DD */
	PT_HHMM,     /* HH:MM */
	PT_ID_ARRAY, /* array of ids, length in [min, max] */
	PT_ENUM_ARRAY, /* array of choices, length in [min, max] */
	PT_STRING_ARRAY, /* array of PT_STRING of 1 to 200 bytes, length in
	                  * [min, max] */
	PT_CURSOR,   /* list cursor: "id" or "microseconds:id" */
};

#define P_REQUIRED 0x1
#define P_NULLABLE 0x2  /* null accepted (and means "clear") */

struct param {
	const char *name;
	enum ptype type;
	unsigned flags;
	long long min, max;
	const char *const *choices; /* PT_ENUM, NULL-terminated */
};

/* Checks params (a JSON object) against spec, which ends with {NULL}.
 * Unknown members are refused too: a misspelt optional field must not be
 * silently ignored. On failure returns false, *field names the member and
 * msg says what is wrong. */
bool params_validate(const struct param *spec, json_t *params,
    const char **field, char *msg, size_t msglen);

bool params_is_rfc3339(const char *s);
bool params_is_date(const char *s);
bool params_is_email(const char *s);
/* A cursor of the shape and range the list functions give. */
bool params_is_cursor(const char *s);

#endif
