/* Unit tests of workpool: jobs run off the loop thread, every done runs
 * exactly once on the loop thread, free delivers what is left, and a slow
 * job does not hold up the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "util.h"
#include "workpool.h"

struct job {
	int id;
	useconds_t work_us;	/* how long work sleeps */
	pthread_t worker;
	volatile bool work_ran;	/* written by the worker, read in done */
	int done_calls;
	bool done_on_loop;
	bool work_before_done;
	uint64_t done_at;
	struct test_ctx *ctx;
	struct job *chain;	/* submitted by done, if set */
};

struct test_ctx {
	struct event_base *base;
	struct workpool *wp;
	pthread_t loop_thread;
	int done_total;
};

static void
job_work(void *arg)
{
	struct job *j = arg;

	j->worker = pthread_self();
	if (j->work_us != 0)
		usleep(j->work_us);
	j->work_ran = true;
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	j->done_calls++;
	j->done_on_loop = pthread_equal(pthread_self(), j->ctx->loop_thread);
	j->work_before_done = j->work_ran;
	j->done_at = now_ms();
	j->ctx->done_total++;
	if (j->chain != NULL)
		workpool_submit(j->ctx->wp, job_work, job_done, j->chain);
}

static int
setup(void **state)
{
	struct test_ctx *ctx = xcalloc(1, sizeof(*ctx));

	ctx->loop_thread = pthread_self();
	ctx->base = event_base_new();
	assert_non_null(ctx->base);
	ctx->wp = workpool_new(ctx->base, 2);
	assert_non_null(ctx->wp);
	*state = ctx;
	return 0;
}

static int
teardown(void **state)
{
	struct test_ctx *ctx = *state;

	workpool_free(ctx->wp);
	event_base_free(ctx->base);
	free(ctx);
	return 0;
}

static void
check_job(const struct job *j, const struct test_ctx *ctx)
{
	assert_int_equal(j->done_calls, 1);
	assert_true(j->done_on_loop);
	assert_true(j->work_before_done);
	if (pthread_equal(j->worker, ctx->loop_thread))
		fail_msg("job %d: work ran on the loop thread", j->id);
}

/* 100 jobs on 2 threads: all complete, each done once on the loop thread,
 * and the loop returns by itself once the pool is idle. */
static void
test_many_jobs(void **state)
{
	struct test_ctx *ctx = *state;
	struct job jobs[100];
	pthread_t seen[2];
	int i, k, nseen = 0;

	memset(jobs, 0, sizeof(jobs));
	for (i = 0; i < 100; i++) {
		jobs[i].id = i;
		jobs[i].work_us = 1000;
		jobs[i].ctx = ctx;
		workpool_submit(ctx->wp, job_work, job_done, &jobs[i]);
	}
	assert_int_equal(workpool_pending(ctx->wp), 100);

	assert_int_equal(event_base_dispatch(ctx->base), 1);

	assert_int_equal(ctx->done_total, 100);
	assert_int_equal(workpool_pending(ctx->wp), 0);
	for (i = 0; i < 100; i++) {
		check_job(&jobs[i], ctx);
		for (k = 0; k < nseen; k++)
			if (pthread_equal(seen[k], jobs[i].worker))
				break;
		if (k == nseen) {
			if (nseen == 2)
				fail_msg("more than 2 worker threads");
			seen[nseen++] = jobs[i].worker;
		}
	}
}

/* workpool_free with jobs still queued runs them and delivers every done,
 * including a job submitted by a done callback during the free. */
static void
test_free_with_pending(void **state)
{
	struct test_ctx *ctx = *state;
	struct job jobs[20], chained;
	int i;

	memset(jobs, 0, sizeof(jobs));
	memset(&chained, 0, sizeof(chained));
	chained.id = 100;
	chained.ctx = ctx;
	for (i = 0; i < 20; i++) {
		jobs[i].id = i;
		jobs[i].work_us = 5000;
		jobs[i].ctx = ctx;
	}
	jobs[19].chain = &chained;
	for (i = 0; i < 20; i++)
		workpool_submit(ctx->wp, job_work, job_done, &jobs[i]);

	/* No dispatch: the loop never ran. */
	workpool_free(ctx->wp);
	ctx->wp = NULL;

	assert_int_equal(ctx->done_total, 21);
	for (i = 0; i < 20; i++)
		check_job(&jobs[i], ctx);
	/* The chained job ran inline: the threads were gone. */
	assert_int_equal(chained.done_calls, 1);
	assert_true(chained.done_on_loop);
	assert_true(chained.work_before_done);
	/* And the pool left nothing behind on the base. */
	assert_int_equal(event_base_loop(ctx->base, EVLOOP_NONBLOCK), 1);
}

struct timer_ctx {
	uint64_t fired_at;
	int fired;
};

static void
timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct timer_ctx *t = arg;

	t->fired_at = now_ms();
	t->fired++;
}

/* A 500 ms job does not hold up a 10 ms timer. */
static void
test_slow_job_does_not_block_loop(void **state)
{
	struct test_ctx *ctx = *state;
	struct timer_ctx t = {0, 0};
	struct timeval tv = {0, 10 * 1000};
	struct event *ev;
	struct job slow;
	uint64_t start;

	memset(&slow, 0, sizeof(slow));
	slow.work_us = 500 * 1000;
	slow.ctx = ctx;
	ev = evtimer_new(ctx->base, timer_cb, &t);
	assert_non_null(ev);

	start = now_ms();
	workpool_submit(ctx->wp, job_work, job_done, &slow);
	evtimer_add(ev, &tv);
	event_base_dispatch(ctx->base);

	check_job(&slow, ctx);
	assert_int_equal(t.fired, 1);
	print_message("timer after %llu ms, job done after %llu ms\n",
	    (unsigned long long)(t.fired_at - start),
	    (unsigned long long)(slow.done_at - start));
	/* Generous bound for sanitizers and a loaded machine; the point is
	 * that it is nowhere near 500. */
	assert_true(t.fired_at - start < 250);
	assert_true(slow.done_at - start >= 500);
	assert_true(t.fired_at < slow.done_at);
	event_free(ev);
}

/* A done callback may submit the next job during normal running. */
static void
test_done_submits(void **state)
{
	struct test_ctx *ctx = *state;
	struct job a, b, c;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	a.ctx = b.ctx = c.ctx = ctx;
	a.id = 1;
	b.id = 2;
	c.id = 3;
	a.chain = &b;
	b.chain = &c;
	workpool_submit(ctx->wp, job_work, job_done, &a);
	event_base_dispatch(ctx->base);

	check_job(&a, ctx);
	check_job(&b, ctx);
	check_job(&c, ctx);
	assert_true(a.done_at <= b.done_at && b.done_at <= c.done_at);
	assert_int_equal(workpool_pending(ctx->wp), 0);
}

/* An idle pool does not keep the loop alive, and can be freed at once. */
static void
test_idle(void **state)
{
	struct test_ctx *ctx = *state;

	assert_int_equal(workpool_pending(ctx->wp), 0);
	assert_int_equal(event_base_dispatch(ctx->base), 1);
}

/* Thread counts are clamped, never refused. */
static void
test_thread_clamp(void **state)
{
	struct test_ctx *ctx = *state;
	struct workpool *big;
	struct job j;

	memset(&j, 0, sizeof(j));
	j.ctx = ctx;
	workpool_free(ctx->wp);
	ctx->wp = workpool_new(ctx->base, 0);
	assert_non_null(ctx->wp);
	workpool_submit(ctx->wp, job_work, job_done, &j);
	event_base_dispatch(ctx->base);
	check_job(&j, ctx);

	big = workpool_new(ctx->base, 100000);
	assert_non_null(big);
	workpool_free(big);
	workpool_free(NULL);
}

/* Fairness: one worker held busy, 100 jobs of class 0 queued, then one of
 * class 1. Served in turn, the class 1 job runs second once the worker is
 * free, not after the whole flood. */
struct order {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;		/* the gate the first job waits on */
	int next;		/* run order handed out by work */
	int ran_at[102];
};

struct ordered_job {
	struct order *o;
	int id;
};

static void
ordered_work(void *arg)
{
	struct ordered_job *j = arg;
	struct order *o = j->o;

	pthread_mutex_lock(&o->lock);
	while (j->id == 0 && !o->open)
		pthread_cond_wait(&o->cond, &o->lock);
	o->ran_at[j->id] = o->next++;
	pthread_mutex_unlock(&o->lock);
}

static void
ordered_done(void *arg)
{
	(void)arg;
}

static void
test_classes_fair(void **state)
{
	struct test_ctx *ctx = *state;
	struct workpool *wp = workpool_new(ctx->base, 1);
	struct ordered_job jobs[102];
	struct order o;
	int i, behind = 0;

	memset(&o, 0, sizeof o);
	pthread_mutex_init(&o.lock, NULL);
	pthread_cond_init(&o.cond, NULL);
	assert_non_null(wp);
	/* Job 0 holds the only worker until every other job is queued. */
	for (i = 0; i <= 100; i++) {
		jobs[i].o = &o;
		jobs[i].id = i;
		workpool_submit_class(wp, 0, ordered_work, ordered_done,
		    &jobs[i]);
	}
	jobs[101].o = &o;
	jobs[101].id = 101;
	workpool_submit_class(wp, 1, ordered_work, ordered_done, &jobs[101]);
	pthread_mutex_lock(&o.lock);
	o.open = true;
	pthread_cond_signal(&o.cond);
	pthread_mutex_unlock(&o.lock);
	event_base_dispatch(ctx->base);
	workpool_free(wp);

	assert_int_equal(o.next, 102);
	for (i = 1; i <= 100; i++)
		if (o.ran_at[i] > o.ran_at[101])
			behind++;
	if (behind < 98)
		fail_msg("the class 1 job ran after %d of the 100 class 0 "
		    "jobs queued before it", 100 - behind);
	pthread_cond_destroy(&o.cond);
	pthread_mutex_destroy(&o.lock);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_many_jobs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_with_pending, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_slow_job_does_not_block_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_done_submits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thread_clamp, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_classes_fair, setup,
		    teardown),
	};

	/* A hang (a lost wake-up) must fail the test, not block ctest. */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
