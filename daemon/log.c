#include "log.h"

#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

static enum log_level log_level = LL_INFO;
static bool log_json;
static bool log_journal;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* syslog(3)'s LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
static const int level_priorities[] = {3, 4, 6, 7};

void
log_configure(enum log_level level, bool json)
{
	log_level = level;
	log_json = json;
}

bool
log_stream_is_journal(const char *journal_stream, int fd)
{
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (journal_stream == NULL ||
	    sscanf(journal_stream, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
	    journal_stream[end] != '\0')
		return false;
	return fstat(fd, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_detect_journal(void)
{
	log_journal = log_stream_is_journal(getenv("JOURNAL_STREAM"), 2);
}

bool
log_to_journal(void)
{
	return log_journal;
}

const char *
log_prefix(enum log_level level)
{
	static const char *const prefixes[] = {"<3>", "<4>", "<6>", "<7>"};

	return log_journal ? prefixes[level] : "";
}

char *
log_format_line(enum log_level level, bool json, bool journal, const char *ts,
    const char *func, const char *msg)
{
	char prefix[8] = "";
	char *line, *out;
	json_t *o;

	if (journal)
		snprintf(prefix, sizeof prefix, "<%d>",
		    level_priorities[level]);
	if (!json)
		return journal ? xasprintf("%s%-5s %s: %s\n", prefix,
		    level_names[level], func, msg) :
		    xasprintf("%s %-5s %s: %s\n", ts, level_names[level], func,
		    msg);
	/* The same object with or without the journal: tools that read the
	 * lines see one shape; journald takes the prefix off. */
	o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level",
	    level_names[level], "func", func, "msg", msg);
	if (o == NULL)
		return NULL;
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (line == NULL)
		return NULL;
	out = xasprintf("%s%s\n", prefix, line);
	free(line);
	return out;
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
	char ts[64], *line;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(tv.tv_usec / 1000));

	line = log_format_line(level, log_json, log_journal, ts, func, msg);
	pthread_mutex_lock(&log_lock);
	if (line != NULL)
		fputs(line, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
	free(line);
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
