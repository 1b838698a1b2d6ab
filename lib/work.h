/*
 * NAME
 *	work 3h - a pool of worker threads that report back through the loop
 * SYNOPSIS
 *	#include "work.h"
 * DESCRIPTION
 *	A struct work_pool runs blocking jobs (a store commit, a store
 *	lookup) away from the event loop, as STYLE.md rule 10 asks.
 *	work_submit() queues a job: run(arg) is called on one of the
 *	pool's threads, then done(arg) on the loop thread (loop 3h,
 *	loop_post()). Jobs start in the order submitted; with several
 *	threads they may finish in any order.
 *
 *	The caller must keep arg alive until done runs. A session that
 *	goes away while its job runs marks itself and frees itself from
 *	done.
 *
 *	work_pool_free() waits for every queued and running job and for
 *	their done callbacks to be posted; it must be called on the loop
 *	thread, and the loop must run afterwards for the done callbacks
 *	to happen; the pool's memory goes with the last of them. work_pool_pending()
 *	counts jobs submitted whose done has not run yet.
 * DIAGNOSTICS
 *	work_pool_new() is fatal when a thread cannot be created.
 */
#ifndef LIB_WORK_H
#define LIB_WORK_H

#include <stddef.h>

typedef void (*work_fn)(void *arg);

struct work_pool;

struct work_pool *work_pool_new(const char *name, unsigned nthreads);
void	work_submit(struct work_pool *, work_fn run, work_fn done, void *arg);
size_t	work_pool_pending(const struct work_pool *);
void	work_pool_free(struct work_pool **);

#endif
