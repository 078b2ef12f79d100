/* A small HTTPS client for the tests of the web front door
 * (docs/http.md): verified TLS to 127.0.0.1 (server name "localhost",
 * the fixture's CA), one request per connection, the whole answer read.
 * Each helper fails the running test on an I/O error. */
#ifndef WEB_H
#define WEB_H

#include <stdbool.h>
#include <stddef.h>

struct web_resp {
	int status;
	char *head;         /* the status line and headers, NUL-terminated */
	char *body;         /* NUL-terminated; chunked bodies are decoded */
	size_t body_len;
};

/* Sends request (the whole text: request line, headers, blank line and
 * body; "Connection: close" is expected in it) and reads the answer
 * until the server closes. */
struct web_resp *web_raw(int port, const char *request, size_t len);
/* GET path with extra header lines (each ending "\r\n", may be NULL). */
struct web_resp *web_get(int port, const char *path, const char *headers);
/* POST path with a body; ctype, origin and cookie may be NULL (then the
 * header is left out). */
struct web_resp *web_post(int port, const char *path, const char *ctype,
    const char *origin, const char *cookie, const char *body);
/* The value of the first header called name (case-insensitive), in a
 * static buffer, or NULL. */
const char *web_header(const struct web_resp *r, const char *name);
/* How many headers are called name. */
int web_header_count(const struct web_resp *r, const char *name);
void web_free(struct web_resp *r);

/* An open exchange read bit by bit (event streams). */
struct web_stream;
struct web_stream *web_stream_open(int port, const char *request);
/* Reads until the text received so far holds needle (true) or
 * timeout_ms passes or the server closes (false). */
bool web_stream_wait(struct web_stream *s, const char *needle,
    int timeout_ms);
/* Everything received so far (NUL-terminated). */
const char *web_stream_text(const struct web_stream *s);
/* Writes part of a request (a client that stops half-way). */
void web_stream_send(struct web_stream *s, const char *data, size_t len);
void web_stream_close(struct web_stream *s);

#endif
