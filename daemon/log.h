/* Logging to stderr, as text or JSON lines. Never log a secret or a
 * beneficiary's name: log ids. Safe to call from worker threads. */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include "util.h"

enum log_level { LL_ERROR, LL_WARN, LL_INFO, LL_DEBUG };

void log_configure(enum log_level level, bool json);
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
