#include "log.h"

#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level log_level = LL_INFO;
static bool log_json;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_configure(enum log_level level, bool json)
{
	log_level = level;
	log_json = json;
}

bool
log_enabled(enum log_level level)
{
	return level <= log_level;
}

bool
log_parse_level(const char *s, enum log_level *out)
{
	size_t i;

	for (i = 0; i < nitems(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

static void
log_write(enum log_level level, const char *func, const char *msg)
{
	struct timeval tv;
	struct tm tm;
	char ts[64];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(tv.tv_usec / 1000));

	pthread_mutex_lock(&log_lock);
	if (log_json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level",
		    level_names[level], "func", func, "msg", msg);
		char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;

		if (line != NULL)
			fprintf(stderr, "%s\n", line);
		free(line);
		json_decref(o);
	} else
		fprintf(stderr, "%s %-5s %s: %s\n", ts, level_names[level], func,
		    msg);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

void
log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	va_list ap;
	char buf[2048];

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_write(level, func, buf);
}

static void
libevent_log(int severity, const char *msg)
{
	enum log_level l;

	switch (severity) {
	case EVENT_LOG_DEBUG: l = LL_DEBUG; break;
	case EVENT_LOG_MSG: l = LL_INFO; break;
	case EVENT_LOG_WARN: l = LL_WARN; break;
	default: l = LL_ERROR; break;
	}
	if (log_enabled(l))
		log_write(l, "libevent", msg);
}

void
log_route_libevent(void)
{
	event_set_log_callback(libevent_log);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	char buf[2048];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	log_write(LL_ERROR, "fatal", buf);
	exit(1);
}
