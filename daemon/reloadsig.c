#include "reloadsig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Marks a SIGHUP (and its answer) as ours: a stray sigqueue() of another
 * program is not mistaken for a request. */
#define RELOADSIG_MAGIC 0x5354524c	/* "STRL" */

static int pipe_w = -1;

/* One record per SIGHUP: the sender to answer, or 0 if it waits for none.
 * write(2) on a pipe is async-signal-safe, and records this small are
 * written whole. */
static void
on_sighup(int sig, siginfo_t *si, void *uctx)
{
	int saved = errno;
	pid_t who = 0;

	(void)sig;
	(void)uctx;
	if (si != NULL && si->si_code == SI_QUEUE &&
	    si->si_value.sival_int == RELOADSIG_MAGIC)
		who = si->si_pid;
	if (pipe_w != -1 && write(pipe_w, &who, sizeof who) == -1) {
		/* A full pipe holds thousands of SIGHUPs not yet read:
		 * one reload will serve them; this sender gets no answer. */
	}
	errno = saved;
}

int
reloadsig_listen(void)
{
	struct sigaction sa;
	int fds[2];

	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	pipe_w = fds[1];
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sighup;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGHUP, &sa, NULL) == -1) {
		int saved = errno;

		close(fds[0]);
		close(fds[1]);
		pipe_w = -1;
		errno = saved;
		return -1;
	}
	return fds[0];
}

size_t
reloadsig_take(int fd, pid_t *senders, size_t max, size_t *nsenders)
{
	pid_t rec[64];
	ssize_t n;
	size_t i, count = 0;

	*nsenders = 0;
	while ((n = read(fd, rec, sizeof rec)) > 0) {
		for (i = 0; i < (size_t)n / sizeof rec[0]; i++) {
			count++;
			if (rec[i] != 0 && *nsenders < max)
				senders[(*nsenders)++] = rec[i];
		}
	}
	return count;
}

bool
reloadsig_answer(pid_t sender, bool reloaded)
{
	union sigval v = {.sival_int = RELOADSIG_MAGIC};

	return sigqueue(sender, reloaded ? SIGUSR1 : SIGUSR2, v) == 0;
}

void
reloadsig_close(int fd)
{
	signal(SIGHUP, SIG_DFL);
	if (pipe_w != -1)
		close(pipe_w);
	pipe_w = -1;
	if (fd != -1)
		close(fd);
}

int
reloadsig_request(pid_t pid, int timeout_s, char *err, size_t errlen)
{
	union sigval v = {.sival_int = RELOADSIG_MAGIC};
	struct timespec deadline, now, left;
	siginfo_t si;
	sigset_t set;
	int sig;

	/* Blocked before asking, so the answer waits for sigtimedwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (sigqueue(pid, SIGHUP, v) == -1) {
		snprintf(err, errlen, "impossible de signaler le processus "
		    "%ld / cannot signal process %ld: %s", (long)pid,
		    (long)pid, strerror(errno));
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_s;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = deadline.tv_sec - now.tv_sec;
		left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_sec--;
			left.tv_nsec += 1000000000L;
		}
		if (left.tv_sec < 0)
			break;
		sig = sigtimedwait(&set, &si, &left);
		if (sig == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		/* Only the daemon's own answer counts. */
		if (si.si_pid == pid && si.si_code == SI_QUEUE &&
		    si.si_value.sival_int == RELOADSIG_MAGIC)
			return sig == SIGUSR1 ? 0 : 1;
	}
	snprintf(err, errlen, "le processus %ld n'a pas répondu en %d s "
	    "(est-ce un strapontind de cette version ?) / process %ld did not "
	    "answer within %d s (is it a strapontind of this version?)",
	    (long)pid, timeout_s, (long)pid, timeout_s);
	return 2;
}
