/*
 * Reading an HTTP/1.x request head (docs/http.md, "What is read"): bytes
 * in, a parsed head or a refusal (a status and a short reason) out. No
 * I/O, no libevent, no allocation: the caller owns the bytes.
 *
 * Two steps. httpmsg_scan() finds where the head ends in what has arrived
 * so far, remembering how far it looked, so each new read costs only its
 * new bytes; it refuses at once a bare CR or LF, a NUL, or a head longer
 * than its cap. httpmsg_parse() then reads that head in place: it cuts
 * the request line and the fields into NUL-terminated strings inside the
 * caller's buffer, which must outlive the struct httpmsg.
 */
#ifndef HTTPMSG_H
#define HTTPMSG_H

#include <stdbool.h>
#include <stddef.h>

/* Header fields kept per request; more is 431. */
#define HTTPMSG_MAX_FIELDS 64

struct httpmsg_refusal {
	int status;             /* 400, 413, 417, 431, 501, 505 */
	const char *reason;     /* short English text, static */
};

struct httpmsg_field {
	const char *name;       /* as sent; compare without case */
	const char *value;      /* surrounding blanks removed */
};

struct httpmsg {
	const char *method;     /* a token, case-sensitive ("GET") */
	const char *target;     /* origin-form: "/path?query" */
	int minor;              /* HTTP/1.<minor>: 0 or 1 */
	struct httpmsg_field fields[HTTPMSG_MAX_FIELDS];
	size_t nfields;
	size_t content_length;  /* 0 without a body */
	bool keep_alive;        /* the connection may carry another request */
	bool expect_continue;   /* "Expect: 100-continue" */
};

enum httpmsg_scan {
	HTTPMSG_MORE,           /* no end yet: read more */
	HTTPMSG_HEAD,           /* *head_len bytes are a whole head */
	HTTPMSG_REFUSED,        /* *why says why */
};

/*
 * Looks for the blank line that ends a head in buf[0..len), starting at
 * *scanned (0 for a new head; kept between calls for the same head). A
 * head must end within max_head bytes (request line and fields, the
 * blank line included), or 431.
 */
enum httpmsg_scan httpmsg_scan(const char *buf, size_t len, size_t max_head,
    size_t *scanned, size_t *head_len, struct httpmsg_refusal *why);

/*
 * Parses the head buf[0..len) (as found by httpmsg_scan: it ends with
 * "\r\n\r\n"), in place. A body announced over max_body is 413. False,
 * with why set, if the request must be refused.
 */
bool httpmsg_parse(char *buf, size_t len, size_t max_body, struct httpmsg *m,
    struct httpmsg_refusal *why);

/* The value of the first field called name (any case), or NULL. */
const char *httpmsg_header(const struct httpmsg *m, const char *name);

#endif
