/* Raw wire helpers for the protocol and abuse tests: each fails the test
 * on error. */
#ifndef WIRE_H
#define WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

/* The next message from the wire, kept ones first. */
json_t *wire_read_msg(struct st_client *c, int timeout_ms);
/* The next raw line. Caller frees. */
char *wire_read_line(struct st_client *c, int timeout_ms);
void wire_send_raw(struct st_client *c, const char *data, size_t len);
void wire_send_str(struct st_client *c, const char *s);
/* Sends a request (params stolen); returns its id. */
int64_t wire_send_req(struct st_client *c, const char *method, json_t *params);
/* Integer id of a response, -1 if it has none. */
json_int_t wire_msg_id(const json_t *m);
const char *wire_msg_reason(const json_t *m);
json_int_t wire_msg_code(const json_t *m);
bool wire_is_pong(const json_t *m);
/* The server closes the connection: no message, an I/O error. */
void wire_expect_closed(struct st_client *c, int timeout_ms);
/* Resident memory of a process, in KiB. */
long wire_rss_kb(pid_t pid);

#endif
