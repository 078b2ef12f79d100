/* A small pool of threads for CPU-heavy jobs (password hashing), so the
 * event loop never blocks on them.
 *
 * Contract of a job, submitted as (work, done, arg):
 * - work(arg) runs on a worker thread. It must not touch libevent or any
 *   object the loop thread owns: it only computes into arg. Workers never
 *   call libevent, so evthread_use_pthreads() is not needed.
 * - done(arg) then runs on the loop thread, from the event loop, exactly once
 *   for every submitted job, always after work(arg) has returned - also when
 *   the pool is freed with the job still queued. done owns arg: the pool
 *   never looks at it. done may submit new jobs; it must not call
 *   workpool_free.
 *
 * The queue is not bounded: callers bound concurrency themselves (a
 * connection has at most server.max_inflight requests in flight, the daemon
 * at most server.max_connections connections), and refusing a job here would
 * only move the error handling somewhere worse. workpool_pending() tells how
 * deep the queue is for those who want to shed load.
 *
 * While jobs are outstanding the pool holds an event on the base, so
 * event_base_dispatch() keeps running until every done has been delivered;
 * an idle pool holds none and does not keep the loop alive. */
#ifndef WORKPOOL_H
#define WORKPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

struct workpool;
typedef void workpool_fn(void *arg);

/* Starts threads (clamped to 1..64) workers; done callbacks are delivered on
 * base's loop thread. NULL (logged) if the threads or the wake-up descriptor
 * cannot be created. */
struct workpool *workpool_new(struct event_base *base, int threads);

/* Jobs come in classes (0 to WORKPOOL_CLASSES - 1), each queued in order;
 * idle workers serve the classes that have jobs in turn. A flood of one
 * class (logins) thus cannot starve another (password changes): a job waits
 * for at most one job of each other class per job ahead of it in its own. */
#define WORKPOOL_CLASSES 4

/* Queues a job of class cls. Loop thread only. Never fails. */
void workpool_submit_class(struct workpool *wp, unsigned cls,
    workpool_fn *work, workpool_fn *done, void *arg);
/* The same, in class 0. */
void workpool_submit(struct workpool *wp, workpool_fn *work, workpool_fn *done,
    void *arg);

/* Jobs submitted whose done has not run yet: queued, running, or finished
 * and waiting for the loop. Loop thread only. */
size_t workpool_pending(const struct workpool *wp);

/* For a forced stop: queued jobs whose work has not started are not run;
 * their done callbacks still come, and workpool_skipped() tells them so.
 * Jobs already running finish. Loop thread only. */
void workpool_abandon(struct workpool *wp);
/* Inside a done callback: true if the job's work never ran. */
bool workpool_skipped(const struct workpool *wp);

/* Stops, runs every queued job to completion, joins the threads, delivers
 * the remaining done callbacks (on the calling thread, before returning) and
 * frees. Call from the loop thread, outside any done callback. NULL is a
 * no-op. */
void workpool_free(struct workpool *wp);

#endif
