#include "qr.h"

#include <qrencode.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define QUIET 4         /* modules of white around the symbol */

/* A growing string; xrealloc never fails. */
struct sbuf {
	char *s;
	size_t len, cap;
};

static void
sb_printf(struct sbuf *b, const char *fmt, ...) PRINTFLIKE(2, 3);

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			fatal("qr: vsnprintf failed");
		if ((size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n;
		b->s = xrealloc(b->s, b->cap);
	}
	b->len += (size_t)n;
}

/*
 * One path of horizontal runs of dark modules, in module units: the image
 * scales without blur (shape-rendering crispEdges) and stays small, about
 * 1 KiB for a ticket code.
 */
char *
qr_svg(const char *text, size_t *len, int *side)
{
	struct sbuf b = {NULL, 0, 0};
	QRcode *q;
	int x, y, run, w, total;

	if (text == NULL || *text == '\0')
		return NULL;
	q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (q == NULL)
		return NULL;
	w = q->width;
	total = w + 2 * QUIET;
	b.cap = 2048;
	b.s = xmalloc(b.cap);
	b.s[0] = '\0';
	sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
	    "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
	    "shape-rendering=\"crispEdges\" role=\"img\">\n"
	    "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n"
	    "<path fill=\"#000\" d=\"", total, total, total * 8, total * 8,
	    total, total);
	for (y = 0; y < w; y++) {
		for (x = 0; x < w; x += run > 0 ? run : 1) {
			run = 0;
			while (x + run < w && (q->data[y * w + x + run] & 1))
				run++;
			if (run > 0)
				sb_printf(&b, "M%d %dh%dv1h-%dz", x + QUIET,
				    y + QUIET, run, run);
		}
	}
	sb_printf(&b, "\"/>\n</svg>\n");
	if (side != NULL)
		*side = w;
	QRcode_free(q);
	*len = b.len;
	return b.s;
}
