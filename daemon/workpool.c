/* Worker threads with results handed back to the event loop.
 *
 * Jobs go from a todo list per class (guarded by lock, workers sleep on
 * cond) to the done list (same lock). Idle workers take the classes in
 * turn, so a flood of one kind of job delays a job of another kind by one
 * job per class ahead of it, not by the whole flood. A worker that makes
 * the done list non-empty writes to an eventfd, which an event on the
 * loop's base watches. Only writing to a descriptor crosses threads, so
 * libevent needs no locking of its own. */
#include "workpool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define WORKPOOL_MAX_THREADS 64

struct workpool_job {
	workpool_fn *work;
	workpool_fn *done;
	void *arg;
	bool skipped;			/* abandoned before its work ran */
	STAILQ_ENTRY(workpool_job) entry;
};
STAILQ_HEAD(workpool_jobs, workpool_job);

struct workpool {
	struct event_base *base;
	struct event *wake_ev;
	int wake_fd;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct workpool_jobs todo[WORKPOOL_CLASSES];	/* under lock */
	size_t ntodo;			/* under lock: jobs in all todo lists */
	unsigned next_class;		/* under lock: where the next pick starts */
	struct workpool_jobs done;	/* under lock */
	bool stopping;			/* under lock */

	pthread_t *threads;
	int nthreads;

	/* Loop thread only, so no lock: jobs whose done has not run. */
	size_t pending;
	bool delivering;
	bool wake_added;
	bool current_skipped;		/* of the done being delivered */
};

static void *workpool_thread(void *);
static void workpool_wake_cb(evutil_socket_t, short, void *);
static void workpool_deliver(struct workpool *);
static void workpool_signal(struct workpool *);
static void workpool_finish(struct workpool *, struct workpool_job *);
static struct workpool_job *workpool_take(struct workpool *);

/* With lock held: the next job to run, the classes served in turn (round
 * robin over the non-empty ones), or NULL. */
static struct workpool_job *
workpool_take(struct workpool *wp)
{
	struct workpool_job *job;
	unsigned i, c;

	for (i = 0; i < WORKPOOL_CLASSES; i++) {
		c = (wp->next_class + i) % WORKPOOL_CLASSES;
		if ((job = STAILQ_FIRST(&wp->todo[c])) == NULL)
			continue;
		STAILQ_REMOVE_HEAD(&wp->todo[c], entry);
		wp->ntodo--;
		wp->next_class = (c + 1) % WORKPOOL_CLASSES;
		return job;
	}
	return NULL;
}

/* Called with no lock held: tells the loop the done list has work. */
static void
workpool_signal(struct workpool *wp)
{
	uint64_t one = 1;
	ssize_t n;

	do
		n = write(wp->wake_fd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	/* EAGAIN means the counter is near 2^64: the loop is awake anyway.
	 * Anything else means the descriptor is gone, a broken invariant. */
	if (n < 0 && errno != EAGAIN)
		fatal("workpool: eventfd write: %s", strerror(errno));
}

/* Moves a job whose work has run onto the done list. */
static void
workpool_finish(struct workpool *wp, struct workpool_job *job)
{
	bool was_empty;

	pthread_mutex_lock(&wp->lock);
	was_empty = STAILQ_EMPTY(&wp->done);
	STAILQ_INSERT_TAIL(&wp->done, job, entry);
	pthread_mutex_unlock(&wp->lock);
	/* Only the first job on an empty list needs to wake the loop: the
	 * loop takes the whole list at once. */
	if (was_empty)
		workpool_signal(wp);
}

static void *
workpool_thread(void *arg)
{
	struct workpool *wp = arg;
	struct workpool_job *job;

	pthread_mutex_lock(&wp->lock);
	for (;;) {
		while (wp->ntodo == 0 && !wp->stopping)
			pthread_cond_wait(&wp->cond, &wp->lock);
		/* Stopping still drains the queue: every done must follow
		 * its work. */
		if ((job = workpool_take(wp)) == NULL)
			break;
		pthread_mutex_unlock(&wp->lock);

		job->work(job->arg);
		workpool_finish(wp, job);

		pthread_mutex_lock(&wp->lock);
	}
	pthread_mutex_unlock(&wp->lock);
	return NULL;
}

/* Runs the done callbacks of every finished job. Loop thread only. */
static void
workpool_deliver(struct workpool *wp)
{
	struct workpool_jobs ready;
	struct workpool_job *job;

	/* Take the whole list and run it unlocked: done may submit, and
	 * workers may keep finishing meanwhile. */
	pthread_mutex_lock(&wp->lock);
	STAILQ_INIT(&ready);
	STAILQ_CONCAT(&ready, &wp->done);
	pthread_mutex_unlock(&wp->lock);

	wp->delivering = true;
	while ((job = STAILQ_FIRST(&ready)) != NULL) {
		STAILQ_REMOVE_HEAD(&ready, entry);
		wp->pending--;
		wp->current_skipped = job->skipped;
		job->done(job->arg);
		wp->current_skipped = false;
		free(job);
	}
	wp->delivering = false;

	/* Outstanding jobs keep the loop alive, an idle pool does not. */
	if (wp->pending == 0 && wp->wake_added) {
		event_del(wp->wake_ev);
		wp->wake_added = false;
	}
}

static void
workpool_wake_cb(evutil_socket_t fd, short events, void *arg)
{
	struct workpool *wp = arg;
	uint64_t count;

	/* Read before taking the list: a job finished after this read finds
	 * the list empty (or soon emptied by us) and writes again, so no
	 * wake-up is lost. At worst we wake once for nothing. */
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN &&
	    errno != EINTR)
		log_warn("eventfd read: %s", strerror(errno));
	workpool_deliver(wp);
}

struct workpool *
workpool_new(struct event_base *base, int threads)
{
	struct workpool *wp;
	sigset_t all, old;
	int i, error;
	unsigned c;

	if (threads < 1)
		threads = 1;
	if (threads > WORKPOOL_MAX_THREADS)
		threads = WORKPOOL_MAX_THREADS;

	wp = xcalloc(1, sizeof(*wp));
	wp->base = base;
	for (c = 0; c < WORKPOOL_CLASSES; c++)
		STAILQ_INIT(&wp->todo[c]);
	STAILQ_INIT(&wp->done);
	pthread_mutex_init(&wp->lock, NULL);
	pthread_cond_init(&wp->cond, NULL);
	wp->threads = xcalloc((size_t)threads, sizeof(*wp->threads));

	if ((wp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		log_error("eventfd: %s", strerror(errno));
		goto fail;
	}
	wp->wake_ev = event_new(base, wp->wake_fd, EV_READ | EV_PERSIST,
	    workpool_wake_cb, wp);
	if (wp->wake_ev == NULL) {
		log_error("event_new failed");
		goto fail;
	}

	/* Workers inherit the mask: block everything so signals are handled
	 * by the loop thread, and workers see no EINTR. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < threads; i++) {
		error = pthread_create(&wp->threads[i], NULL, workpool_thread,
		    wp);
		if (error != 0) {
			log_error("pthread_create: %s", strerror(error));
			break;
		}
		wp->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (wp->nthreads != threads)
		goto fail;
	return wp;

fail:
	/* Nothing was submitted: this only stops and joins the threads. */
	workpool_free(wp);
	return NULL;
}

void
workpool_submit(struct workpool *wp, workpool_fn *work, workpool_fn *done,
    void *arg)
{
	workpool_submit_class(wp, 0, work, done, arg);
}

void
workpool_submit_class(struct workpool *wp, unsigned cls, workpool_fn *work,
    workpool_fn *done, void *arg)
{
	struct workpool_job *job;
	bool stopping;

	if (cls >= WORKPOOL_CLASSES)
		fatal("workpool: no job class %u", cls);

	job = xmalloc(sizeof(*job));
	job->work = work;
	job->done = done;
	job->skipped = false;
	job->arg = arg;

	wp->pending++;
	if (!wp->wake_added) {
		event_add(wp->wake_ev, NULL);
		wp->wake_added = true;
	}

	pthread_mutex_lock(&wp->lock);
	stopping = wp->stopping;
	if (!stopping) {
		STAILQ_INSERT_TAIL(&wp->todo[cls], job, entry);
		wp->ntodo++;
		pthread_cond_signal(&wp->cond);
	}
	pthread_mutex_unlock(&wp->lock);

	/* Only a done callback run by workpool_free gets here: the threads
	 * are gone, so run the work now and let workpool_free deliver it. */
	if (stopping) {
		work(arg);
		workpool_finish(wp, job);
	}
}

size_t
workpool_pending(const struct workpool *wp)
{
	return wp->pending;
}

void
workpool_abandon(struct workpool *wp)
{
	struct workpool_job *job;
	bool any;

	if (wp == NULL)
		return;
	pthread_mutex_lock(&wp->lock);
	any = wp->ntodo != 0;
	while ((job = workpool_take(wp)) != NULL) {
		job->skipped = true;
		STAILQ_INSERT_TAIL(&wp->done, job, entry);
	}
	pthread_mutex_unlock(&wp->lock);
	if (any)
		workpool_signal(wp);
}

bool
workpool_skipped(const struct workpool *wp)
{
	return wp->current_skipped;
}

void
workpool_free(struct workpool *wp)
{
	int i;

	if (wp == NULL)
		return;
	if (wp->delivering)
		fatal("workpool_free called from a done callback");

	pthread_mutex_lock(&wp->lock);
	wp->stopping = true;
	pthread_cond_broadcast(&wp->cond);
	pthread_mutex_unlock(&wp->lock);
	for (i = 0; i < wp->nthreads; i++)
		pthread_join(wp->threads[i], NULL);

	/* done callbacks may submit more; those run inline (see submit). */
	while (wp->pending != 0)
		workpool_deliver(wp);

	if (wp->wake_ev != NULL)
		event_free(wp->wake_ev);
	if (wp->wake_fd >= 0)
		close(wp->wake_fd);
	pthread_cond_destroy(&wp->cond);
	pthread_mutex_destroy(&wp->lock);
	free(wp->threads);
	free(wp);
}
