/*
 * Harness: reading a request head (daemon/httpmsg.c, docs/http.md). The
 * first two bytes choose the caps, the rest is what a client sent.
 * Besides not crashing: scanning it byte by byte must find what scanning
 * it at once finds, and a head that is read must be what the rules
 * allow (an origin-form target, HTTP/1.0 or 1.1, token names, values
 * without control characters, a body within the cap).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "httpmsg.h"

static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') ||
		    strchr("!#$%&'*+-.^_`|~", *s) != NULL))
			return false;
	return true;
}

static void
check_head(const struct httpmsg *m, size_t max_body)
{
	const unsigned char *v;
	size_t i;

	if (!is_token(m->method) || m->target[0] != '/' ||
	    strchr(m->target, '#') != NULL || (m->minor != 0 &&
	    m->minor != 1) || m->content_length > max_body ||
	    m->nfields > HTTPMSG_MAX_FIELDS)
		abort();
	for (v = (const unsigned char *)m->target; *v != '\0'; v++)
		if (*v <= 0x20 || *v >= 0x7f)
			abort();
	for (i = 0; i < m->nfields; i++) {
		if (!is_token(m->fields[i].name))
			abort();
		v = (const unsigned char *)m->fields[i].value;
		if (*v == ' ' || *v == '\t')
			abort();
		for (; *v != '\0'; v++)
			if ((*v < 0x20 && *v != '\t') || *v == 0x7f)
				abort();
		/* The lookup finds a field of that name. */
		v = (const unsigned char *)httpmsg_header(m,
		    m->fields[i].name);
		if (v == NULL)
			abort();
	}
	if (m->minor == 1 && httpmsg_header(m, "Host") == NULL)
		abort();
	if (httpmsg_header(m, "Transfer-Encoding") != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpmsg_refusal why, why1;
	size_t max_head, max_body, len, scanned = 0, scanned1 = 0;
	size_t head_len = 0, head_len1 = 0, i;
	enum httpmsg_scan st, st1 = HTTPMSG_MORE;
	struct httpmsg *m;
	char *buf;

	if (size < 2)
		return 0;
	max_head = 4 + (size_t)data[0] * 8;
	max_body = (size_t)data[1] * 16;
	data += 2;
	len = size - 2;
	buf = malloc(len + 1);
	m = malloc(sizeof *m);
	if (buf == NULL || m == NULL)
		abort();
	memcpy(buf, data, len);
	st = httpmsg_scan(buf, len, max_head, &scanned, &head_len, &why);
	for (i = 1; i <= len && st1 == HTTPMSG_MORE; i++)
		st1 = httpmsg_scan(buf, i, max_head, &scanned1, &head_len1,
		    &why1);
	if (st != st1 || scanned > len)
		abort();
	if (st == HTTPMSG_REFUSED && (why.status != why1.status ||
	    why.reason == NULL))
		abort();
	if (st == HTTPMSG_HEAD) {
		if (head_len != head_len1 || head_len > max_head ||
		    head_len > len || head_len < 4 ||
		    memcmp(buf + head_len - 4, "\r\n\r\n", 4) != 0)
			abort();
		if (httpmsg_parse(buf, head_len, max_body, m, &why))
			check_head(m, max_body);
		else if (why.reason == NULL || why.status < 400 ||
		    why.status > 505)
			abort();
	}
	free(m);
	free(buf);
	return 0;
}
