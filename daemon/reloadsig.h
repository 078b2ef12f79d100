/* SIGHUP with an answer, so that `systemctl reload` can say whether the
 * reload worked (docs/operations.md, "systemd"). `strapontind --reload PID`
 * sends SIGHUP with sigqueue(2) and a value that marks it as a request,
 * then waits; the daemon reloads and answers the sender SIGUSR1 (reloaded)
 * or SIGUSR2 (failed, running configuration kept). A plain `kill -HUP`
 * still reloads and gets no answer. Linux only (siginfo's si_pid). */
#ifndef RELOADSIG_H
#define RELOADSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Daemon side. Installs the SIGHUP handler; returns a descriptor (non-
 * blocking, close-on-exec) that becomes readable when SIGHUPs arrived, -1
 * on error (errno set). */
int reloadsig_listen(void);
/* Reads what arrived on fd: the number of SIGHUPs (0: none), and in
 * senders[] (room for max) the processes that wait for an answer. */
size_t reloadsig_take(int fd, pid_t *senders, size_t max, size_t *nsenders);
/* Answers one sender; false if it is gone. */
bool reloadsig_answer(pid_t sender, bool reloaded);
/* Restores SIGHUP's default and closes fd. */
void reloadsig_close(int fd);

/* Asker's side: signals pid and waits up to timeout_s for its answer.
 * 0: reloaded; 1: the reload failed; 2: no answer (err says why). */
int reloadsig_request(pid_t pid, int timeout_s, char *err, size_t errlen);

#endif
