/* Unit tests of qr: the SVG of GET /qr/CODE.svg (docs/http.md) is a
 * well-formed document whose dark modules are exactly the QR symbol's,
 * of the size its version says, with the finder patterns where a reader
 * looks for them, and the same bytes for the same text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <qrencode.h>

#include "qr.h"

#define CODE "7K3M-QX2P-9TAB-W4C1"
#define QUIET 4
#define HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<svg xmlns=\"http://www.w3.org/2000/svg\""

/* Reads the path's runs back into a grid of side n (quiet zone
 * included); fails on anything but "M<x> <y>h<w>v1h-<w>z" runs. */
static unsigned char *
grid_of(const char *svg, int n)
{
	unsigned char *g = calloc((size_t)(n * n), 1);
	const char *p = strstr(svg, " d=\"");
	int x, y, w, w2, used, i;

	assert_non_null(g);
	assert_non_null(p);
	p += 4;
	while (*p == 'M') {
		assert_int_equal(sscanf(p, "M%d %dh%dv1h-%dz%n", &x, &y, &w,
		    &w2, &used), 4);
		assert_int_equal(w, w2);
		assert_true(x >= 0 && y >= 0 && w > 0 && x + w <= n && y < n);
		for (i = 0; i < w; i++)
			g[y * n + x + i] = 1;
		p += used;
	}
	assert_int_equal(*p, '"');
	return g;
}

static void
test_well_formed(void **state)
{
	size_t len;
	int side;
	char *svg = qr_svg(CODE, &len, &side);
	char expect[128];

	assert_non_null(svg);
	assert_int_equal(strlen(svg), len);
	assert_true(strncmp(svg, HEAD, strlen(HEAD)) == 0);
	assert_non_null(strstr(svg, "</svg>\n"));
	assert_int_equal(strcmp(svg + len - 7, "</svg>\n"), 0);
	/* One element of each, each closed. */
	assert_non_null(strstr(svg, "<rect "));
	assert_non_null(strstr(svg, "<path "));
	assert_int_equal(strstr(svg, "/>\n</svg>") != NULL, 1);
	assert_null(strchr(svg, '&'));
	/* 19 alphanumeric characters fit in version 1 (21 modules). */
	assert_int_equal(side, 21);
	snprintf(expect, sizeof expect, "viewBox=\"0 0 %d %d\"",
	    side + 2 * QUIET, side + 2 * QUIET);
	assert_non_null(strstr(svg, expect));
	free(svg);
}

/* The modules drawn are the symbol libqrencode computes, nothing more. */
static void
check_modules(const char *text)
{
	size_t len;
	int side, n, x, y;
	char *svg = qr_svg(text, &len, &side);
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	unsigned char *g;

	assert_non_null(svg);
	assert_non_null(q);
	assert_int_equal(side, q->width);
	assert_int_equal(side, 17 + 4 * q->version);
	n = side + 2 * QUIET;
	g = grid_of(svg, n);
	for (y = 0; y < n; y++)
		for (x = 0; x < n; x++) {
			int in = x >= QUIET && y >= QUIET && x < n - QUIET &&
			    y < n - QUIET;
			int want = in ? q->data[(y - QUIET) * side + x -
			    QUIET] & 1 : 0;

			assert_int_equal(g[y * n + x], want);
		}
	/* The finder patterns: dark 7x7 rings in three corners. */
	for (x = 0; x < 7; x++) {
		assert_int_equal(g[QUIET * n + QUIET + x], 1);
		assert_int_equal(g[(QUIET + 6) * n + QUIET + x], 1);
		assert_int_equal(g[QUIET * n + n - QUIET - 7 + x], 1);
		assert_int_equal(g[(n - QUIET - 1) * n + QUIET + x], 1);
	}
	free(g);
	free(svg);
	QRcode_free(q);
}

static void
test_modules(void **state)
{
	char longer[201];

	check_modules(CODE);
	memset(longer, 'x', 200);
	longer[200] = '\0';
	/* 200 bytes need a larger version: the side grows with it. */
	check_modules(longer);
}

static void
test_deterministic(void **state)
{
	size_t l1, l2, l3;
	char *a = qr_svg(CODE, &l1, NULL);
	char *b = qr_svg(CODE, &l2, NULL);
	char *c = qr_svg("7K3M-QX2P-9TAB-W4C2", &l3, NULL);

	assert_int_equal(l1, l2);
	assert_memory_equal(a, b, l1);
	assert_true(l1 != l3 || memcmp(a, c, l1) != 0);
	free(a);
	free(b);
	free(c);
}

static void
test_refused(void **state)
{
	size_t len;
	char *huge = malloc(8001);

	assert_null(qr_svg("", &len, NULL));
	assert_null(qr_svg(NULL, &len, NULL));
	/* More than the largest symbol holds. */
	memset(huge, 'x', 8000);
	huge[8000] = '\0';
	assert_null(qr_svg(huge, &len, NULL));
	free(huge);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_well_formed),
		cmocka_unit_test(test_modules),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
