#include "httpmsg.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static bool
refuse(struct httpmsg_refusal *why, int status, const char *reason)
{
	why->status = status;
	why->reason = reason;
	return false;
}

/* RFC 9110 tchar. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value's bytes: visible, blanks, and obs-text (UTF-8 bytes). */
static bool
is_vchar(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

enum httpmsg_scan
httpmsg_scan(const char *buf, size_t len, size_t max_head, size_t *scanned,
    size_t *head_len, struct httpmsg_refusal *why)
{
	size_t i, stop = len < max_head ? len : max_head;

	for (i = *scanned; i < stop; i++) {
		switch (buf[i]) {
		case '\0':
			refuse(why, 400, "NUL byte in the request head");
			return HTTPMSG_REFUSED;
		case '\r':
			/* Its LF is still to come, or would be past the
			 * cap. */
			if (i + 1 == stop)
				goto out;
			if (buf[i + 1] != '\n') {
				refuse(why, 400, "bare CR in the request head");
				return HTTPMSG_REFUSED;
			}
			break;
		case '\n':
			if (i == 0 || buf[i - 1] != '\r') {
				refuse(why, 400, "bare LF in the request head");
				return HTTPMSG_REFUSED;
			}
			if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
				*scanned = i + 1;
				*head_len = i + 1;
				return HTTPMSG_HEAD;
			}
			break;
		}
	}
out:
	*scanned = i;
	/* No end within max_head bytes (a CR at the very last place would
	 * end the head one byte past it). */
	if (len >= max_head) {
		refuse(why, 431, "request head too large");
		return HTTPMSG_REFUSED;
	}
	return HTTPMSG_MORE;
}

/* The "\r\n" that ends the line at p, or NULL if an LF comes alone. */
static char *
line_end(char *p, char *end)
{
	char *lf = memchr(p, '\n', (size_t)(end - p));

	if (lf == NULL || lf == p || lf[-1] != '\r')
		return NULL;
	return lf - 1;
}

/* METHOD SP origin-form SP HTTP/1.x, cut in place. */
static bool
request_line(char *p, char *eol, struct httpmsg *m,
    struct httpmsg_refusal *why)
{
	char *q;
	size_t vlen;

	for (q = p; q < eol && is_tchar((unsigned char)*q); q++)
		;
	if (q == p || q == eol || *q != ' ')
		return refuse(why, 400, "malformed request line");
	*q++ = '\0';
	m->method = p;
	for (p = q; q < eol && *q > 0x20 && *q < 0x7f; q++)
		;
	if (q == p || q == eol || *q != ' ')
		return refuse(why, 400, "malformed request line");
	*q++ = '\0';
	m->target = p;
	if (*p != '/')
		return refuse(why, 400, "request target not in origin form");
	if (strchr(p, '#') != NULL)
		return refuse(why, 400, "fragment in the request target");
	vlen = (size_t)(eol - q);
	if (vlen != 8 || memcmp(q, "HTTP/", 5) != 0 || q[5] < '0' ||
	    q[5] > '9' || q[6] != '.' || q[7] < '0' || q[7] > '9')
		return refuse(why, 400, "malformed request line");
	if (q[5] != '1' || (q[7] != '0' && q[7] != '1'))
		return refuse(why, 505, "HTTP version not supported");
	m->minor = q[7] - '0';
	*eol = '\0';
	return true;
}

/* Digits only; a duplicate must say the same. */
static bool
content_length(const char *v, bool *seen, size_t *out,
    struct httpmsg_refusal *why)
{
	size_t n = 0, d;
	const char *p;

	if (*v == '\0')
		return refuse(why, 400, "empty Content-Length");
	for (p = v; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return refuse(why, 400, "malformed Content-Length");
		d = (size_t)(*p - '0');
		if (n > (SIZE_MAX - d) / 10)
			return refuse(why, 400, "Content-Length overflows");
		n = n * 10 + d;
	}
	if (*seen && n != *out)
		return refuse(why, 400, "conflicting Content-Length fields");
	*seen = true;
	*out = n;
	return true;
}

/* Connection: a comma-separated list of options. */
static void
connection_options(const char *v, bool *close, bool *keep)
{
	size_t n;

	while (*v != '\0') {
		v += strspn(v, " \t,");
		n = strcspn(v, " \t,");
		if (n == 5 && strncasecmp(v, "close", 5) == 0)
			*close = true;
		else if (n == 10 && strncasecmp(v, "keep-alive", 10) == 0)
			*keep = true;
		v += n;
	}
}

struct framing {
	size_t hosts;
	bool cl_seen, te_seen, close, keep, expect_other;
};

/* The fields that decide how the request is read and answered. */
static bool
note_field(const struct httpmsg_field *f, struct httpmsg *m,
    struct framing *fr, struct httpmsg_refusal *why)
{
	if (strcasecmp(f->name, "Host") == 0)
		fr->hosts++;
	else if (strcasecmp(f->name, "Content-Length") == 0)
		return content_length(f->value, &fr->cl_seen,
		    &m->content_length, why);
	else if (strcasecmp(f->name, "Transfer-Encoding") == 0)
		fr->te_seen = true;
	else if (strcasecmp(f->name, "Connection") == 0)
		connection_options(f->value, &fr->close, &fr->keep);
	else if (strcasecmp(f->name, "Expect") == 0) {
		if (strcasecmp(f->value, "100-continue") == 0)
			m->expect_continue = true;
		else
			fr->expect_other = true;
	}
	return true;
}

/* name ":" OWS value OWS, cut in place. */
static bool
field_line(char *p, char *eol, struct httpmsg *m,
    struct httpmsg_refusal *why)
{
	struct httpmsg_field *f;
	char *q, *v;

	if (*p == ' ' || *p == '\t')
		return refuse(why, 400, "obsolete line folding");
	for (q = p; q < eol && is_tchar((unsigned char)*q); q++)
		;
	if (q == p || q == eol || *q != ':')
		return refuse(why, 400, "malformed header field");
	if (m->nfields == HTTPMSG_MAX_FIELDS)
		return refuse(why, 431, "too many header fields");
	*q++ = '\0';
	while (q < eol && (*q == ' ' || *q == '\t'))
		q++;
	for (v = q; q < eol; q++)
		if (!is_vchar((unsigned char)*q))
			return refuse(why, 400, "control character in a "
			    "header field");
	while (q > v && (q[-1] == ' ' || q[-1] == '\t'))
		q--;
	*q = '\0';
	f = &m->fields[m->nfields++];
	f->name = p;
	f->value = v;
	return true;
}

/* What the fields together say (RFC 9112, "Message Body Length"). */
static bool
framing_check(struct httpmsg *m, const struct framing *fr, size_t max_body,
    struct httpmsg_refusal *why)
{
	if (fr->te_seen && fr->cl_seen)
		return refuse(why, 400, "both Transfer-Encoding and "
		    "Content-Length");
	if (fr->hosts > 1)
		return refuse(why, 400, "more than one Host field");
	if (m->minor == 1 && fr->hosts == 0)
		return refuse(why, 400, "no Host field");
	if (fr->te_seen)
		return refuse(why, 501, "Transfer-Encoding not supported");
	if (m->content_length > max_body)
		return refuse(why, 413, "request body too large");
	if (fr->expect_other)
		return refuse(why, 417, "unknown expectation");
	/* HTTP/1.0 knows nothing of 100 Continue. */
	if (m->minor == 0)
		m->expect_continue = false;
	m->keep_alive = !fr->close && (m->minor == 1 || fr->keep);
	return true;
}

bool
httpmsg_parse(char *buf, size_t len, size_t max_body, struct httpmsg *m,
    struct httpmsg_refusal *why)
{
	char *p = buf, *end = buf + len, *eol;
	struct framing fr;
	size_t i;

	memset(m, 0, sizeof *m);
	memset(&fr, 0, sizeof fr);
	if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0)
		return refuse(why, 400, "incomplete request head");
	if (memchr(buf, '\0', len) != NULL)
		return refuse(why, 400, "NUL byte in the request head");
	if ((eol = line_end(p, end)) == NULL)
		return refuse(why, 400, "bare LF in the request head");
	if (!request_line(p, eol, m, why))
		return false;
	/* The last "\r\n" is the blank line that ends the head. */
	for (p = eol + 2; p < end - 2; p = eol + 2) {
		if ((eol = line_end(p, end)) == NULL)
			return refuse(why, 400, "bare LF in the request head");
		if (!field_line(p, eol, m, why))
			return false;
	}
	for (i = 0; i < m->nfields; i++)
		if (!note_field(&m->fields[i], m, &fr, why))
			return false;
	return framing_check(m, &fr, max_body, why);
}

const char *
httpmsg_header(const struct httpmsg *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nfields; i++)
		if (strcasecmp(m->fields[i].name, name) == 0)
			return m->fields[i].value;
	return NULL;
}
