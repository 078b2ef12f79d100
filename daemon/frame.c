#include "frame.h"

#include <event2/buffer.h>

#include "util.h"

enum frame_result
frame_take(struct evbuffer *in, size_t *scanned, size_t max_line,
    char **line, size_t *len)
{
	struct evbuffer_ptr start, eol;
	size_t have = evbuffer_get_length(in), eol_len;

	if (*scanned >= have) {
		*scanned = have;
		return have > max_line ? FRAME_TOO_LONG : FRAME_MORE;
	}
	evbuffer_ptr_set(in, &start, *scanned, EVBUFFER_PTR_SET);
	eol = evbuffer_search_eol(in, &start, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		*scanned = have;
		return have > max_line ? FRAME_TOO_LONG : FRAME_MORE;
	}
	*scanned = 0;
	if ((size_t)eol.pos > max_line)
		return FRAME_TOO_LONG;
	*len = (size_t)eol.pos;
	*line = xmalloc(*len + 1);
	evbuffer_remove(in, *line, *len);
	evbuffer_drain(in, eol_len);
	(*line)[*len] = '\0';
	return FRAME_LINE;
}

bool
frame_blank(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}
