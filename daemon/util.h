/* Allocation that aborts on out-of-memory (tmux xmalloc.c): a daemon that
 * cannot allocate a few bytes cannot answer anyway, and NULL checks on every
 * allocation would drown the logic. */
#ifndef UTIL_H
#define UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))
#define MUSTCHECK __attribute__((warn_unused_result))
#define PRINTFLIKE(f, a) __attribute__((format(printf, f, a)))

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTFLIKE(1, 2);
char *xvasprintf(const char *fmt, va_list ap) PRINTFLIKE(1, 0);

/* Monotonic clock in milliseconds. */
uint64_t now_ms(void);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const unsigned char *in, size_t len, char *out);

/* Parses "123", "90s", "15m", "24h", "7d" into seconds. -1 on error. */
long long parse_duration(const char *s);

/* Strict decimal integer parse of the whole string into [min, max]. */
bool parse_ll(const char *s, long long min, long long max, long long *out);

#endif
