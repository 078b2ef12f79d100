#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

bool
sdnotify_open(void)
{
	const char *name = getenv("NOTIFY_SOCKET");
	size_t n;

	if (notify_fd != -1)
		return true;
	if (name == NULL || *name == '\0')
		return false;
	n = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || n < 2 ||
	    n >= sizeof notify_addr.sun_path) {
		log_warn("NOTIFY_SOCKET=%s is neither a path nor an abstract "
		    "@name: not notifying", name);
		return false;
	}
	memset(&notify_addr, 0, sizeof notify_addr);
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, name, n);
	/* An abstract name has a NUL where the "@" is, and no trailing
	 * NUL: its length is exact. */
	if (name[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
	    (name[0] == '/'));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (notify_fd == -1) {
		log_warn("NOTIFY_SOCKET: socket: %s", strerror(errno));
		return false;
	}
	return true;
}

void
sdnotify_close(void)
{
	if (notify_fd != -1)
		close(notify_fd);
	notify_fd = -1;
}

void
sdnotify(const char *fmt, ...)
{
	va_list ap;
	char buf[1024];
	int n;

	if (notify_fd == -1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf)
		n = (int)strlen(buf);
	/* Each address given anew rather than connect()ed once: the manager
	 * may re-create its socket (a daemon-reexec) under the same name. */
	if (sendto(notify_fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT,
	    (struct sockaddr *)&notify_addr, notify_len) == -1)
		log_warn("cannot notify the service manager (%.*s): %s",
		    (int)strcspn(buf, "\n"), buf, strerror(errno));
	else
		log_debug("notified the service manager: %.*s",
		    (int)strcspn(buf, "\n"), buf);
}

uint64_t
sdnotify_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	long long v, p;

	if (notify_fd == -1 || usec == NULL)
		return 0;
	if (pid != NULL && (!parse_ll(pid, 1, INT32_MAX, &p) ||
	    (pid_t)p != getpid()))
		return 0;
	if (!parse_ll(usec, 1, INT64_MAX, &v)) {
		log_warn("WATCHDOG_USEC=%s is not a number of microseconds: "
		    "no watchdog", usec);
		return 0;
	}
	return (uint64_t)v;
}

uint64_t
sdnotify_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}
