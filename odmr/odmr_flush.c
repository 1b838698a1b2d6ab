/*
 * NAME
 *	odmr_flush 3 - the daemon's outbound flushes: at most one per
 *	domain, at most max_deliveries at once, the rest in arrival order
 * SYNOPSIS
 *	#include "odmr_flush.h"
 * DESCRIPTION
 *	See odmr_flush.h. Each request becomes one turn_flush(3), with
 *	the domain's route and TLS policy, a client TLS context of the
 *	daemon (tls_ca_file for "verify"), dns_servers and
 *	connect_timeout from odmrd.conf, and the deliver pool for its
 *	store and DNS work.
 * SEE ALSO
 *	turn_flush(3), smtp_etrn(3), odmrd.conf(5)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "loop.h"
#include "tls.h"
#include "work.h"
#include "xmalloc.h"

#include "odmr_bounce.h"
#include "odmr_flush.h"
#include "odmrd.h"
#include "turn_flush.h"

#define ODMR_FLUSH_CLAIM_TTL	(2 * 60 * 60)	/* seconds; a dead holder
						   is noticed sooner */
#define ODMR_FLUSH_CLIENT_PORT	25
#define ODMR_FLUSH_RETRY_TICK	(5 * 1000)	/* ms between --retry scans */
#define ODMR_FLUSH_BACKOFF_MAX	16	/* failures stretch --retry this far */

/* --retry: when a domain may be tried next, and how often it failed */
struct odmr_flush_retry {
	char		 domain[DNAME_MAX + 1];
	uint64_t	 next;		/* unix time */
	unsigned	 factor;	/* 1, 2, 4 ... ODMR_FLUSH_BACKOFF_MAX */
	int		 seen;		/* in the last scan */
};

/* one domain the scan found due */
struct odmr_flush_due {
	char		 domain[DNAME_MAX + 1];
	char		*route;
	enum tls_mode	 tls;
	uint64_t	 retry;
};

struct odmr_flush_job {
	struct odmr_flush *fl;
	char		 domain[DNAME_MAX + 1];
	char		 route[TURN_FLUSH_ROUTE_MAX + 1];
	enum tls_mode	 tls;
	char		 id[ODMR_FLUSH_ID_MAX];
	char		 trigger[16];
	char		 asked_by[ODMR_FLUSH_ID_MAX];
	uint64_t	 retry;		/* the domain's --retry, for backoff */
	struct turn_flush *flush;	/* NULL while waiting */
	struct odmr_flush_job *prev, *next;
};

struct odmr_flush {
	struct odmrd	*d;
	struct odmr_flush_job *running, *waiting, *waiting_tail;
	size_t		 nrunning, nwaiting;
	int		 shutdown;
	/* --retry */
	struct loop_timer *retry_timer;
	int		 retry_scanning;
	struct odmr_flush_retry *retries;
	size_t		 nretries;
	struct odmr_flush_due *due;	/* the scan's answer */
	size_t		 ndue;
};

static int odmr_flush_start_job(struct odmr_flush *, struct odmr_flush_job *);

static void odmr_flush_retry_scan(void *);
static struct odmr_flush_job *odmr_flush_find(const struct odmr_flush *,
    const char *);

/* odmr_flush_new - no flush yet; the --retry scan starts */
struct odmr_flush *
odmr_flush_new(struct odmrd *d)
{
	struct odmr_flush *fl = xcalloc(1, sizeof(*fl));

	fl->d = d;
	fl->retry_timer = loop_timer_new(odmr_flush_retry_scan, fl);
	loop_timer_add(fl->retry_timer, ODMR_FLUSH_RETRY_TICK);
	return fl;
}

/* odmr_flush_retry_find - the backoff entry of a domain, made if need be */
static struct odmr_flush_retry *
odmr_flush_retry_find(struct odmr_flush *fl, const char *domain)
{
	size_t i;

	for (i = 0; i < fl->nretries; i++)
		if (strcmp(fl->retries[i].domain, domain) == 0)
			return &fl->retries[i];
	fl->retries = xreallocarray(fl->retries, fl->nretries + 1,
	    sizeof(*fl->retries));
	memset(&fl->retries[fl->nretries], 0, sizeof(fl->retries[0]));
	(void)strlcpy(fl->retries[fl->nretries].domain, domain, DNAME_MAX + 1);
	fl->retries[fl->nretries].factor = 1;
	return &fl->retries[fl->nretries++];
}

/* odmr_flush_retry_list_fn - a domain with --retry and mail, not claimed */
static int
odmr_flush_retry_list_fn(const struct queue_domain *dom, void *arg)
{
	struct odmr_flush *fl = arg;
	struct odmr_flush_due *u;

	if (dom->retry == 0 || dom->messages == 0 ||
	    dom->claim_holder != NULL || dom->route == NULL ||
	    strcmp(dom->route, "client") == 0)
		return 0;
	fl->due = xreallocarray(fl->due, fl->ndue + 1, sizeof(*fl->due));
	u = &fl->due[fl->ndue++];
	(void)strlcpy(u->domain, dom->name, sizeof(u->domain));
	u->route = xstrdup(dom->route);
	/* queue_tls and tls_mode list the same policies in one order */
	u->tls = (enum tls_mode)dom->tls;
	u->retry = dom->retry;
	return 0;
}

/* odmr_flush_retry_run - on the deliver pool: the domains to look at */
static void
odmr_flush_retry_run(void *arg)
{
	struct odmr_flush *fl = arg;
	struct queue_error err;

	if (queue_domain_list(fl->d->queue, odmr_flush_retry_list_fn, fl,
	    &err) != QUEUE_OK)
		log_warnx("event=store-error op=retry-scan reason=\"%s\"",
		    err.text);
}

/* odmr_flush_retry_done - on the loop: start the flushes that are due */
static void
odmr_flush_retry_done(void *arg)
{
	struct odmr_flush *fl = arg;
	struct odmr_flush_req req;
	struct odmr_flush_retry *r;
	uint64_t now = (uint64_t)time(NULL);
	size_t i;

	fl->retry_scanning = 0;
	for (i = 0; i < fl->ndue; i++) {
		r = odmr_flush_retry_find(fl, fl->due[i].domain);
		if (r->next == 0)
			r->next = now;	/* first seen: due now */
		if (!fl->shutdown && now >= r->next &&
		    odmr_flush_find(fl, fl->due[i].domain) == NULL) {
			memset(&req, 0, sizeof(req));
			req.domain = fl->due[i].domain;
			req.route = fl->due[i].route;
			req.tls = fl->due[i].tls;
			req.trigger = "retry";
			req.retry = fl->due[i].retry;
			/* the next try is set when this one ends */
			r->next = now + fl->due[i].retry;
			(void)odmr_flush_request(fl, &req);
		}
		free(fl->due[i].route);
	}
	free(fl->due);
	fl->due = NULL;
	fl->ndue = 0;
	if (!fl->shutdown)
		loop_timer_add(fl->retry_timer, ODMR_FLUSH_RETRY_TICK);
	else
		odmrd_flush_idle(fl->d);
}

/* odmr_flush_retry_scan - timer: which --retry domains are due */
static void
odmr_flush_retry_scan(void *arg)
{
	struct odmr_flush *fl = arg;

	if (fl->shutdown || fl->retry_scanning)
		return;
	fl->retry_scanning = 1;
	work_submit(fl->d->deliver_pool, odmr_flush_retry_run,
	    odmr_flush_retry_done, fl);
}

/* odmr_flush_retry_note - a flush ended: when to try the domain again */
static void
odmr_flush_retry_note(struct odmr_flush *fl, const struct odmr_flush_job *j,
    const struct turn_flush_result *r)
{
	struct odmr_flush_retry *e;

	if (j->retry == 0)
		return;
	e = odmr_flush_retry_find(fl, j->domain);
	if (r->status == TURN_FLUSH_DONE)
		e->factor = 1;
	else if (e->factor < ODMR_FLUSH_BACKOFF_MAX)
		e->factor *= 2;	/* a site that is down: back off */
	e->next = (uint64_t)time(NULL) + j->retry * e->factor;
	if (e->factor > 1)
		log_info("session=%s event=retry-backoff domain=%s"
		    " next_in=%llus", j->id, j->domain,
		    (unsigned long long)(j->retry * e->factor));
}

/* odmr_flush_find - a running or waiting job for the domain */
static struct odmr_flush_job *
odmr_flush_find(const struct odmr_flush *fl, const char *domain)
{
	struct odmr_flush_job *j;

	for (j = fl->running; j != NULL; j = j->next)
		if (strcmp(j->domain, domain) == 0)
			return j;
	for (j = fl->waiting; j != NULL; j = j->next)
		if (strcmp(j->domain, domain) == 0)
			return j;
	return NULL;
}

/* odmr_flush_unlink_running - take a job off the running list */
static void
odmr_flush_unlink_running(struct odmr_flush *fl, struct odmr_flush_job *j)
{
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		fl->running = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	j->prev = j->next = NULL;
	fl->nrunning--;
}

/* odmr_flush_pop_waiting - the oldest waiting job, or NULL */
static struct odmr_flush_job *
odmr_flush_pop_waiting(struct odmr_flush *fl)
{
	struct odmr_flush_job *j = fl->waiting;

	if (j == NULL)
		return NULL;
	fl->waiting = j->next;
	if (fl->waiting == NULL)
		fl->waiting_tail = NULL;
	j->next = NULL;
	fl->nwaiting--;
	return j;
}

/* odmr_flush_done - a flush ended: free its slot for the next one */
static void
odmr_flush_done(void *arg, const struct turn_flush_result *r)
{
	struct odmr_flush_job *j = arg;
	struct odmr_flush *fl = j->fl;
	struct odmr_flush_job *next;

	/* turn_flush logged the outcome (event=flush-end); failures
	 * queued DSNs: deliver them soon */
	if (r->turn.rcpt_failed > 0)
		odmr_bounce_kick(fl->d->bounce);
	odmr_flush_retry_note(fl, j, r);
	j->flush = NULL;
	odmr_flush_unlink_running(fl, j);
	free(j);
	while (!fl->shutdown && fl->nrunning < fl->d->conf->max_deliveries &&
	    (next = odmr_flush_pop_waiting(fl)) != NULL)
		(void)odmr_flush_start_job(fl, next);
	if (fl->nrunning == 0)
		odmrd_flush_idle(fl->d);
}

/* odmr_flush_tls_ctx - the daemon's client context for a policy */
static struct tls_ctx *
odmr_flush_tls_ctx(const struct odmr_flush *fl, enum tls_mode mode)
{
	switch (mode) {
	case TLS_MODE_NONE:
		return NULL;
	case TLS_MODE_VERIFY:
		return fl->d->tls_verify;
	default:
		return fl->d->tls_client;
	}
}

/* odmr_flush_start_job - run one flush now; -1 (job freed) if it cannot */
static int
odmr_flush_start_job(struct odmr_flush *fl, struct odmr_flush_job *j)
{
	const struct odmr_conf *c = fl->d->conf;
	struct turn_flush_params p;
	char holder[TURN_FLUSH_HOLDER_MAX];
	const char *err;

	memset(&p, 0, sizeof(p));
	(void)snprintf(holder, sizeof(holder), "odmrd[%ld] flush=%s"
	    " trigger=%s", (long)getpid(), j->id, j->trigger);
	p.queue = fl->d->queue;
	p.pool = fl->d->deliver_pool;
	p.dns_pool = fl->d->dns_pool;
	p.session_id = j->id;
	p.helo_name = c->hostname;
	p.domain = j->domain;
	p.route = j->route;
	p.tls = j->tls;
	p.tls_ctx = odmr_flush_tls_ctx(fl, j->tls);
	p.dns_servers = c->dns_servers;
	p.connect_timeout_ms = (unsigned)c->connect_timeout * 1000;
	p.dsn = 1;
	p.postmaster = c->postmaster;
	p.holder = holder;
	p.claim_ttl = ODMR_FLUSH_CLAIM_TTL;
	p.done = odmr_flush_done;
	p.arg = j;
	j->prev = NULL;
	j->next = fl->running;
	if (fl->running != NULL)
		fl->running->prev = j;
	fl->running = j;
	fl->nrunning++;
	log_info("session=%s event=flush-run domain=%s trigger=%s asked_by=%s"
	    " running=%zu waiting=%zu", j->id, j->domain, j->trigger,
	    j->asked_by, fl->nrunning, fl->nwaiting);
	if ((j->flush = turn_flush_start(&p, &err)) == NULL) {
		log_warnx("session=%s event=flush-error domain=%s reason=\"%s\"",
		    j->id, j->domain, err);
		odmr_flush_unlink_running(fl, j);
		free(j);
		if (fl->nrunning == 0)
			odmrd_flush_idle(fl->d);
		return -1;
	}
	return 0;
}

/* odmr_flush_request - start, queue or refuse a flush of one domain */
enum odmr_flush_status
odmr_flush_request(struct odmr_flush *fl, const struct odmr_flush_req *req)
{
	struct odmr_flush_job *j;
	int n;

	if (fl->shutdown)
		return ODMR_FLUSH_FULL;
	if (odmr_flush_find(fl, req->domain) != NULL)
		return ODMR_FLUSH_ALREADY;
	if (req->tls != TLS_MODE_NONE &&
	    odmr_flush_tls_ctx(fl, req->tls) == NULL)
		return ODMR_FLUSH_BAD;
	j = xcalloc(1, sizeof(*j));
	j->fl = fl;
	(void)strlcpy(j->domain, req->domain, sizeof(j->domain));
	if (strcmp(req->route, "client") == 0) {
		if (req->client_addr == NULL || req->client_addr[0] == '\0') {
			free(j);
			return ODMR_FLUSH_BAD;
		}
		n = snprintf(j->route, sizeof(j->route), "[%s]:%u",
		    req->client_addr, ODMR_FLUSH_CLIENT_PORT);
	} else
		n = snprintf(j->route, sizeof(j->route), "%s", req->route);
	if (n < 0 || (size_t)n >= sizeof(j->route)) {
		free(j);
		return ODMR_FLUSH_BAD;
	}
	j->tls = req->tls;
	j->retry = req->retry;
	(void)strlcpy(j->trigger, req->trigger, sizeof(j->trigger));
	(void)strlcpy(j->asked_by, req->session_id != NULL ?
	    req->session_id : "-", sizeof(j->asked_by));
	odmrd_session_id(fl->d, j->id, sizeof(j->id));
	if (fl->nrunning < fl->d->conf->max_deliveries)
		return odmr_flush_start_job(fl, j) == 0 ? ODMR_FLUSH_STARTED :
		    ODMR_FLUSH_BAD;
	if (fl->nwaiting >= ODMR_FLUSH_WAIT_MAX) {
		free(j);
		return ODMR_FLUSH_FULL;
	}
	if (fl->waiting_tail != NULL)
		fl->waiting_tail->next = j;
	else
		fl->waiting = j;
	fl->waiting_tail = j;
	fl->nwaiting++;
	log_info("session=%s event=flush-waiting domain=%s running=%zu"
	    " waiting=%zu", j->id, j->domain, fl->nrunning, fl->nwaiting);
	return ODMR_FLUSH_WAITING;
}

/* odmr_flush_drop_waiting - forget the requests that did not start */
static void
odmr_flush_drop_waiting(struct odmr_flush *fl)
{
	struct odmr_flush_job *j;

	while ((j = odmr_flush_pop_waiting(fl)) != NULL) {
		log_info("session=%s event=flush-dropped domain=%s"
		    " reason=\"shutting down\"", j->id, j->domain);
		free(j);
	}
}

/* odmr_flush_shutdown - SIGTERM: QUIT after each message in progress */
void
odmr_flush_shutdown(struct odmr_flush *fl)
{
	struct odmr_flush_job *j;

	fl->shutdown = 1;
	loop_timer_del(fl->retry_timer);
	odmr_flush_drop_waiting(fl);
	for (j = fl->running; j != NULL; j = j->next)
		turn_flush_stop(j->flush);
}

/* odmr_flush_abort - close every flush now; their done callbacks follow */
void
odmr_flush_abort(struct odmr_flush *fl)
{
	struct odmr_flush_job *j;
	struct turn_flush *f;

	fl->shutdown = 1;
	loop_timer_del(fl->retry_timer);
	odmr_flush_drop_waiting(fl);
	for (j = fl->running; j != NULL; j = j->next) {
		f = j->flush;
		turn_flush_abort(&f);
	}
}

/* odmr_flush_count - flushes running */
size_t
odmr_flush_count(const struct odmr_flush *fl)
{
	return fl != NULL ? fl->nrunning + (size_t)fl->retry_scanning : 0;
}

/* odmr_flush_free - after the loop ended: nothing may run any more */
void
odmr_flush_free(struct odmr_flush **flp)
{
	struct odmr_flush *fl = *flp;

	if (fl == NULL)
		return;
	*flp = NULL;
	odmr_flush_drop_waiting(fl);
	if (fl->nrunning > 0)
		log_warnx("event=flush-leak running=%zu", fl->nrunning);
	loop_timer_free(&fl->retry_timer);
	free(fl->retries);
	free(fl);
}
