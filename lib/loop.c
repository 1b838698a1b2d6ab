/*
 * NAME
 *	loop 3 - the process event loop: signals, timers, cross-thread posts
 * SYNOPSIS
 *	#include "loop.h"
 * DESCRIPTION
 *	See loop.h. A thin layer over one libevent event_base created after
 *	evthread_use_pthreads(), so that event_active() may be called from
 *	any thread. loop_post() keeps its own FIFO under a mutex and wakes
 *	the loop with one internal event: however many posts arrive, the
 *	loop is woken at most once per batch.
 * SEE ALSO
 *	io(3), listen(3)
 */
#include "config.h"

#include <sys/time.h>

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "loop.h"
#include "loop_private.h"
#include "xmalloc.h"

struct loop_post_item {
	struct loop_post_item	*next;
	loop_cb			 fn;
	void			*arg;
};

struct loop_sig {
	struct loop_sig		*next;
	struct event		*ev;
	loop_signal_cb		 cb;
	void			*arg;
};

struct loop_timer {
	struct event		*ev;
	loop_cb			 cb;
	void			*arg;
	struct timeval		 every;		/* zero for a one-shot timer */
};

static struct event_base	*loop_base;
static struct event		*loop_post_ev;
static struct loop_sig		*loop_sigs;

static pthread_mutex_t		 loop_post_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct loop_post_item	*loop_post_head;
static struct loop_post_item	**loop_post_tail = &loop_post_head;
static int			 loop_post_woken;

/* loop_event_base - the libevent base, for io.c and listen.c */
struct event_base *
loop_event_base(void)
{
	return loop_base;
}

/* loop_ms_to_tv - milliseconds as a struct timeval */
void
loop_ms_to_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* loop_post_run - run every queued post on the loop thread, in order */
static void
loop_post_run(evutil_socket_t fd, short what, void *arg)
{
	struct loop_post_item *list, *next;

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&loop_post_mtx);
	list = loop_post_head;
	loop_post_head = NULL;
	loop_post_tail = &loop_post_head;
	loop_post_woken = 0;
	pthread_mutex_unlock(&loop_post_mtx);
	for (; list != NULL; list = next) {
		next = list->next;
		list->fn(list->arg);
		free(list);
	}
}

/* loop_init - create the process event loop */
int
loop_init(char **error_r)
{
	if (loop_base != NULL) {
		*error_r = xstrdup("the event loop exists already");
		return -1;
	}
	if (evthread_use_pthreads() != 0) {
		*error_r = xstrdup("libevent: cannot enable thread support");
		return -1;
	}
	if ((loop_base = event_base_new()) == NULL) {
		*error_r = xstrdup("libevent: cannot create the event loop");
		return -1;
	}
	loop_post_ev = event_new(loop_base, -1, 0, loop_post_run, NULL);
	if (loop_post_ev == NULL) {
		event_base_free(loop_base);
		loop_base = NULL;
		*error_r = xstrdup("libevent: cannot create the post event");
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* loop_free - free the loop, its signal handlers and unrun posts */
void
loop_free(void)
{
	struct loop_post_item *p, *pnext;
	struct loop_sig *s, *snext;

	if (loop_base == NULL)
		return;
	loop_watchdog_stop();
	for (s = loop_sigs; s != NULL; s = snext) {
		snext = s->next;
		event_free(s->ev);
		free(s);
	}
	loop_sigs = NULL;
	pthread_mutex_lock(&loop_post_mtx);
	event_free(loop_post_ev);
	loop_post_ev = NULL;
	for (p = loop_post_head; p != NULL; p = pnext) {
		pnext = p->next;
		free(p);
	}
	loop_post_head = NULL;
	loop_post_tail = &loop_post_head;
	loop_post_woken = 0;
	pthread_mutex_unlock(&loop_post_mtx);
	event_base_free(loop_base);
	loop_base = NULL;
}

/* loop_run - dispatch events until loop_break() */
int
loop_run(void)
{
	if (loop_base == NULL)
		return -1;
	/* a post may still come from a worker: an empty loop is no end */
	return event_base_loop(loop_base, EVLOOP_NO_EXIT_ON_EMPTY) < 0 ?
	    -1 : 0;
}

/* loop_break - make loop_run() return after the current callback */
void
loop_break(void)
{
	if (loop_base != NULL)
		event_base_loopbreak(loop_base);
}

/* loop_signal_fire - call the handler of a signal */
static void
loop_signal_fire(evutil_socket_t signo, short what, void *arg)
{
	struct loop_sig *s = arg;

	(void)what;
	s->cb((int)signo, s->arg);
}

/* loop_signal - run cb(signo, arg) on the loop each time signo arrives */
int
loop_signal(int signo, loop_signal_cb cb, void *arg)
{
	struct loop_sig *s;

	if (loop_base == NULL)
		return -1;
	s = xcalloc(1, sizeof(*s));
	s->cb = cb;
	s->arg = arg;
	s->ev = evsignal_new(loop_base, signo, loop_signal_fire, s);
	if (s->ev == NULL || evsignal_add(s->ev, NULL) != 0) {
		if (s->ev != NULL)
			event_free(s->ev);
		free(s);
		return -1;
	}
	s->next = loop_sigs;
	loop_sigs = s;
	return 0;
}

/* loop_post - from any thread, run fn(arg) on the loop thread */
int
loop_post(loop_cb fn, void *arg)
{
	struct loop_post_item *p = xmalloc(sizeof(*p));
	int wake = 0;

	p->next = NULL;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&loop_post_mtx);
	if (loop_post_ev == NULL) {
		pthread_mutex_unlock(&loop_post_mtx);
		free(p);
		return -1;
	}
	*loop_post_tail = p;
	loop_post_tail = &p->next;
	if (!loop_post_woken)
		wake = loop_post_woken = 1;
	/* under the mutex, so that loop_free() cannot free the event */
	if (wake)
		event_active(loop_post_ev, EV_TIMEOUT, 0);
	pthread_mutex_unlock(&loop_post_mtx);
	return 0;
}

/* loop_timer_fire - call a timer's callback, rearming a periodic one */
static void
loop_timer_fire(evutil_socket_t fd, short what, void *arg)
{
	struct loop_timer *t = arg;

	(void)fd;
	(void)what;
	/* rearm first: the callback may free the timer */
	if (timerisset(&t->every))
		evtimer_add(t->ev, &t->every);
	t->cb(t->arg);
}

/* loop_timer_new - a disarmed timer calling cb(arg) on the loop */
struct loop_timer *
loop_timer_new(loop_cb cb, void *arg)
{
	struct loop_timer *t;

	if (loop_base == NULL)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->cb = cb;
	t->arg = arg;
	if ((t->ev = evtimer_new(loop_base, loop_timer_fire, t)) == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

/* loop_timer_add - fire once, ms milliseconds from now */
void
loop_timer_add(struct loop_timer *t, unsigned ms)
{
	struct timeval tv;

	timerclear(&t->every);
	loop_ms_to_tv(ms, &tv);
	evtimer_add(t->ev, &tv);
}

/* loop_timer_every - fire every ms milliseconds, starting ms from now */
void
loop_timer_every(struct loop_timer *t, unsigned ms)
{
	loop_ms_to_tv(ms == 0 ? 1 : ms, &t->every);
	evtimer_add(t->ev, &t->every);
}

/* loop_timer_del - disarm a timer */
void
loop_timer_del(struct loop_timer *t)
{
	timerclear(&t->every);
	evtimer_del(t->ev);
}

/* loop_timer_pending - whether the timer is armed */
int
loop_timer_pending(const struct loop_timer *t)
{
	return evtimer_pending(t->ev, NULL) != 0;
}

/* loop_timer_free - disarm and free a timer, and clear the pointer */
void
loop_timer_free(struct loop_timer **tp)
{
	if (*tp == NULL)
		return;
	event_free((*tp)->ev);
	free(*tp);
	*tp = NULL;
}

/*
 * The watchdog: the loop's beat timer stores the monotonic time in
 * loop_wd_beat; the thread compares it with the clock.
 */
static pthread_t		 loop_wd_thread;
static int			 loop_wd_running;
static pthread_mutex_t		 loop_wd_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 loop_wd_cond;
static int			 loop_wd_stop;
static unsigned			 loop_wd_stall_ms;
static loop_stall_cb		 loop_wd_cb;
static void			*loop_wd_arg;
static struct loop_timer	*loop_wd_timer;
static uint64_t			 loop_wd_beat;		/* atomic */
static unsigned long		 loop_wd_beats;		/* atomic */

/* loop_now_ms - the monotonic clock in milliseconds (any thread) */
uint64_t
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* loop_wd_tick - on the loop: it turned */
static void
loop_wd_tick(void *arg)
{
	(void)arg;
	__atomic_store_n(&loop_wd_beat, loop_now_ms(), __ATOMIC_RELEASE);
	__atomic_add_fetch(&loop_wd_beats, 1, __ATOMIC_RELAXED);
}

/* loop_wd_main - the watchdog thread: check the beat until stopped */
static void *
loop_wd_main(void *arg)
{
	struct timespec until;
	uint64_t beat, now;
	unsigned check = loop_wd_stall_ms / 4;

	(void)arg;
	if (check == 0)
		check = 1;
	if (check > LOOP_WATCHDOG_BEAT_MS)
		check = LOOP_WATCHDOG_BEAT_MS;
	pthread_mutex_lock(&loop_wd_mtx);
	while (!loop_wd_stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += check / 1000;
		until.tv_nsec += (long)(check % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&loop_wd_cond, &loop_wd_mtx,
		    &until);
		if (loop_wd_stop)
			break;
		beat = __atomic_load_n(&loop_wd_beat, __ATOMIC_ACQUIRE);
		now = loop_now_ms();
		if (now > beat && now - beat >= loop_wd_stall_ms) {
			pthread_mutex_unlock(&loop_wd_mtx);
			loop_wd_cb((unsigned)(now - beat), loop_wd_arg);
			pthread_mutex_lock(&loop_wd_mtx);
			/* a callback that returns: wait for a new stall */
			__atomic_store_n(&loop_wd_beat, loop_now_ms(),
			    __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&loop_wd_mtx);
	return NULL;
}

/* loop_watchdog_start - call stalled() if the loop stops for stall_ms */
int
loop_watchdog_start(unsigned stall_ms, loop_stall_cb stalled, void *arg,
    char **error_r)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	unsigned beat;
	int rc;

	if (loop_base == NULL || loop_wd_running || stall_ms == 0) {
		*error_r = xstrdup(loop_wd_running ? "the watchdog runs"
		    " already" : stall_ms == 0 ? "a stall of 0 ms" :
		    "no event loop");
		return -1;
	}
	loop_wd_stall_ms = stall_ms;
	loop_wd_cb = stalled;
	loop_wd_arg = arg;
	loop_wd_stop = 0;
	beat = stall_ms / 4;
	if (beat == 0)
		beat = 1;
	if (beat > LOOP_WATCHDOG_BEAT_MS)
		beat = LOOP_WATCHDOG_BEAT_MS;
	if ((loop_wd_timer = loop_timer_new(loop_wd_tick, NULL)) == NULL) {
		*error_r = xstrdup("cannot create the watchdog timer");
		return -1;
	}
	loop_wd_tick(NULL);
	loop_timer_every(loop_wd_timer, beat);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&loop_wd_cond, &ca);
	pthread_condattr_destroy(&ca);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);	/* signals stay ours */
	rc = pthread_create(&loop_wd_thread, NULL, loop_wd_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		loop_timer_free(&loop_wd_timer);
		pthread_cond_destroy(&loop_wd_cond);
		*error_r = xasprintf("cannot start the watchdog thread: %s",
		    strerror(rc));
		return -1;
	}
	loop_wd_running = 1;
	return 0;
}

/* loop_watchdog_stop - end the watchdog thread and its timer */
void
loop_watchdog_stop(void)
{
	if (!loop_wd_running)
		return;
	pthread_mutex_lock(&loop_wd_mtx);
	loop_wd_stop = 1;
	pthread_cond_signal(&loop_wd_cond);
	pthread_mutex_unlock(&loop_wd_mtx);
	pthread_join(loop_wd_thread, NULL);
	pthread_cond_destroy(&loop_wd_cond);
	loop_timer_free(&loop_wd_timer);
	loop_wd_running = 0;
}

/* loop_watchdog_beats - how often the loop has beaten, for tests */
unsigned long
loop_watchdog_beats(void)
{
	return __atomic_load_n(&loop_wd_beats, __ATOMIC_RELAXED);
}
