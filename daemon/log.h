/* Logging to stderr, as text or JSON lines. Never log a secret or a
 * beneficiary's name: log ids. Safe to call from worker threads.
 * When stderr is the journal, lines start with their syslog priority
 * ("<3>" ... "<7>") and text lines drop the timestamp, which the journal
 * keeps (docs/operations.md, "Logs"). */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include "util.h"

enum log_level { LL_ERROR, LL_WARN, LL_INFO, LL_DEBUG };

void log_configure(enum log_level level, bool json);
/* Looks at $JOURNAL_STREAM: is stderr the journal? Once, at start. */
void log_detect_journal(void);
bool log_to_journal(void);
/* True if journal_stream ("DEVICE:INODE", as systemd sets
 * $JOURNAL_STREAM) names the file open on fd. */
bool log_stream_is_journal(const char *journal_stream, int fd);
/* "<3>" for an error when stderr is the journal, "" otherwise: for the
 * few messages written to stderr without log_msg(). */
const char *log_prefix(enum log_level level);
/* One log line, newline included (malloc'd; NULL if JSON fails): what
 * log_msg() writes, given the time ts (UTC, ISO 8601). */
char *log_format_line(enum log_level level, bool json, bool journal,
    const char *ts, const char *func, const char *msg);
bool log_enabled(enum log_level level);
bool log_parse_level(const char *s, enum log_level *out);
/* Routes libevent's internal messages into ours. */
void log_route_libevent(void);
void log_msg(enum log_level level, const char *func, const char *fmt, ...)
    PRINTFLIKE(3, 4);

#define log_error(...) log_msg(LL_ERROR, __func__, __VA_ARGS__)
#define log_warn(...) log_msg(LL_WARN, __func__, __VA_ARGS__)
#define log_info(...) log_msg(LL_INFO, __func__, __VA_ARGS__)
#define log_debug(...)                                                   \
	do {                                                             \
		if (log_enabled(LL_DEBUG))                               \
			log_msg(LL_DEBUG, __func__, __VA_ARGS__);        \
	} while (0)

/* For the impossible and for start-up failures: logs and exits 1. */
void fatal(const char *fmt, ...) PRINTFLIKE(1, 2) __attribute__((noreturn));

#endif
