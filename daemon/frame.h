/*
 * Line framing for the line transport: finds complete lines in an input
 * buffer. Apart from conn.c so that it can be fuzzed and tested without
 * sockets.
 */
#ifndef FRAME_H
#define FRAME_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum frame_result {
	FRAME_MORE,     /* no complete line yet */
	FRAME_LINE,     /* *line (malloc'd, NUL-terminated) of *len bytes */
	FRAME_TOO_LONG, /* a line is or will be longer than max_line */
};

/* Takes the next line out of in, without its "\n". *scanned remembers how
 * many bytes of in are known to hold no "\n", so that the search resumes
 * there: a line arriving a byte at a time costs linear time, not
 * quadratic. Start with *scanned = 0 and keep it with the buffer. */
enum frame_result frame_take(struct evbuffer *in, size_t *scanned,
    size_t max_line, char **line, size_t *len);

/* Only spaces, tabs and "\r": a blank line, which carries no message. */
bool frame_blank(const char *s, size_t len);

#endif
