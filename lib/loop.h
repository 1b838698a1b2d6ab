/*
 * NAME
 *	loop 3h - the process event loop: signals, timers, cross-thread posts
 * SYNOPSIS
 *	#include "loop.h"
 * DESCRIPTION
 *	Each process has one event loop, run on its main thread. loop_init()
 *	creates it (with thread support, so that workers can post to it)
 *	and ignores SIGPIPE, since a peer that goes away must show up as a
 *	write error on its connection, not kill the process. loop_run()
 *	dispatches until loop_break() is called, even while nothing is
 *	pending (a worker may still post); loop_free() releases the loop, its signal handlers and any
 *	posts that never ran (their arguments are not freed).
 *
 *	loop_signal() runs cb(signo, arg) on the loop thread each time the
 *	signal arrives (SIGHUP reload, SIGTERM shutdown, SIGCHLD). The
 *	handler lasts until loop_free().
 *
 *	A struct loop_timer calls cb(arg) on the loop thread. loop_timer_add()
 *	arms it once, ms milliseconds from now; loop_timer_every() arms it
 *	every ms milliseconds until loop_timer_del() or loop_timer_free().
 *	Arming a pending timer rearms it. A timer may be freed from its own
 *	callback.
 *
 *	loop_post() is the one function here that any thread may call: it
 *	queues fn(arg) to run on the loop thread, in the order posted. This
 *	is how work done in a worker thread (a disk commit, a DNS lookup)
 *	reports back without the loop ever blocking on it (STYLE.md rule 10).
 *
 *	loop_watchdog_start() makes a stalled loop visible: a timer on the
 *	loop beats every LOOP_WATCHDOG_BEAT_MS (or a quarter of stall_ms)
 *	and a thread of its own, with every signal blocked, checks the
 *	beat; when the loop has not turned for stall_ms, the thread calls
 *	stalled(waited_ms, arg) (which is expected to log and abort: a
 *	deadlocked loop must not look like a live server).
 *	loop_watchdog_stop() ends the thread; loop_free() stops it too.
 *	loop_watchdog_beats() counts beats, for tests. loop_now_ms() is the
 *	monotonic clock in milliseconds, for deadlines.
 * DIAGNOSTICS
 *	loop_init() returns -1 and an allocated message through error_r.
 *	loop_signal(), loop_run() and loop_post() return -1 on failure,
 *	loop_post() when there is no loop.
 */
#ifndef LIB_LOOP_H
#define LIB_LOOP_H

#include <stdint.h>

typedef void (*loop_cb)(void *arg);
typedef void (*loop_signal_cb)(int signo, void *arg);
typedef void (*loop_stall_cb)(unsigned waited_ms, void *arg);

#define LOOP_WATCHDOG_BEAT_MS	1000	/* the loop's heartbeat, at most */

struct loop_timer;

int	loop_init(char **error_r);
void	loop_free(void);
int	loop_run(void);
void	loop_break(void);
int	loop_signal(int signo, loop_signal_cb cb, void *arg);
int	loop_post(loop_cb fn, void *arg);

struct loop_timer *loop_timer_new(loop_cb cb, void *arg);
void	loop_timer_add(struct loop_timer *, unsigned ms);
void	loop_timer_every(struct loop_timer *, unsigned ms);
void	loop_timer_del(struct loop_timer *);
int	loop_timer_pending(const struct loop_timer *);
void	loop_timer_free(struct loop_timer **);

uint64_t loop_now_ms(void);
int	loop_watchdog_start(unsigned stall_ms, loop_stall_cb stalled,
	    void *arg, char **error_r);
void	loop_watchdog_stop(void);
unsigned long loop_watchdog_beats(void);

#endif
