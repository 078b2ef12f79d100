/*
 * QR codes as SVG images (GET /qr/CODE.svg, docs/http.md): a pure
 * function of its text, so the same code always gives the same bytes and
 * an image can be cached and compared.
 */
#ifndef QR_H
#define QR_H

#include <stddef.h>

/* The SVG document of a QR code of text (error correction level M, the
 * smallest version that holds it, a quiet zone of 4 modules), malloc'd
 * and NUL-terminated, its length in *len; NULL if text cannot be encoded
 * (empty, or too long for a QR code). *side, if not NULL, gets the
 * symbol's side in modules (17 + 4 * version), quiet zone excluded. */
char *qr_svg(const char *text, size_t *len, int *side);

#endif
