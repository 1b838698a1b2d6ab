/*
 * NAME
 *	work 3 - a pool of worker threads that report back through the loop
 * SYNOPSIS
 *	#include "work.h"
 * DESCRIPTION
 *	A fixed set of threads takes jobs from one FIFO under a mutex and
 *	a condition variable. When a job's run function returns, its done
 *	function is posted to the loop (loop_post()). A job is one small
 *	allocation; the FIFO has no bound of its own, because every
 *	submitter is a session that waits for its job before it submits
 *	another, so the sessions bound it.
 * SEE ALSO
 *	loop(3)
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "log.h"
#include "loop.h"
#include "work.h"
#include "xmalloc.h"

struct work_job {
	work_fn		 run;
	work_fn		 done;
	void		*arg;
	struct work_job	*next;
};

struct work_pool {
	char		 name[32];
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct work_job	*head;
	struct work_job	*tail;
	int		 stop;
	unsigned	 nthreads;
	pthread_t	*threads;
	size_t		 pending;	/* loop thread only */
	int		 freed;		/* work_pool_free() ran: the last
					   done callback frees the pool */
};

struct work_done {
	struct work_pool *pool;
	work_fn		 done;
	void		*arg;
};

/* work_pool_destroy - release a pool whose threads have exited */
static void
work_pool_destroy(struct work_pool *pool)
{
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->cv);
	free(pool->threads);
	free(pool);
}

/* work_done_cb - on the loop: count the job finished, call its done */
static void
work_done_cb(void *p)
{
	struct work_done *d = p;

	struct work_pool *pool = d->pool;

	pool->pending--;
	d->done(d->arg);
	free(d);
	if (pool->freed && pool->pending == 0)
		work_pool_destroy(pool);
}

/* work_thread - take jobs until the pool stops and the FIFO is empty */
static void *
work_thread(void *p)
{
	struct work_pool *pool = p;
	struct work_job *job;
	struct work_done *d;

	for (;;) {
		pthread_mutex_lock(&pool->mu);
		while (pool->head == NULL && !pool->stop)
			pthread_cond_wait(&pool->cv, &pool->mu);
		if ((job = pool->head) == NULL) {
			pthread_mutex_unlock(&pool->mu);
			return NULL;
		}
		if ((pool->head = job->next) == NULL)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->mu);

		job->run(job->arg);
		/* reuse the job's memory for the trip back */
		d = (struct work_done *)job;
		{
			work_fn done = job->done;
			void *arg = job->arg;

			d->pool = pool;
			d->done = done;
			d->arg = arg;
		}
		if (loop_post(work_done_cb, d) == -1)
			fatalx("work %s: cannot post a finished job to the "
			    "event loop", pool->name);
	}
}

/* work_pool_new - start nthreads workers */
struct work_pool *
work_pool_new(const char *name, unsigned nthreads)
{
	struct work_pool *pool;
	sigset_t all, old;
	unsigned i;
	int rc;

	pool = xcalloc(1, sizeof(*pool));
	(void)strlcpy(pool->name, name, sizeof(pool->name));
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cv, NULL);
	pool->nthreads = nthreads > 0 ? nthreads : 1;
	pool->threads = xcalloc(pool->nthreads, sizeof(*pool->threads));
	/* signals belong to the loop thread: workers block them all */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < pool->nthreads; i++) {
		if ((rc = pthread_create(&pool->threads[i], NULL, work_thread,
		    pool)) != 0) {
			errno = rc;
			fatal("work %s: cannot start thread %u", name, i);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pool;
}

/* work_submit - queue run(arg) for a worker, then done(arg) on the loop */
void
work_submit(struct work_pool *pool, work_fn run, work_fn done, void *arg)
{
	struct work_job *job;

	/* the job is reused as struct work_done: make room for either */
	job = xcalloc(1, sizeof(*job) > sizeof(struct work_done) ?
	    sizeof(*job) : sizeof(struct work_done));
	job->run = run;
	job->done = done;
	job->arg = arg;
	pool->pending++;
	pthread_mutex_lock(&pool->mu);
	if (pool->tail != NULL)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
}

/* work_pool_pending - jobs submitted whose done has not run yet */
size_t
work_pool_pending(const struct work_pool *pool)
{
	return pool->pending;
}

/* work_pool_free - finish every job, join the threads, free the pool */
void
work_pool_free(struct work_pool **poolp)
{
	struct work_pool *pool = *poolp;
	unsigned i;

	if (pool == NULL)
		return;
	*poolp = NULL;
	pthread_mutex_lock(&pool->mu);
	pool->stop = 1;
	pthread_cond_broadcast(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	if (pool->pending == 0)
		work_pool_destroy(pool);
	else
		pool->freed = 1;	/* done callbacks are still posted */
}
