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
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "tls.h"
#include "xmalloc.h"

#include "odmr_bounce.h"
#include "odmr_flush.h"
#include "odmrd.h"
#include "turn_flush.h"

#define ODMR_FLUSH_CLAIM_TTL	(2 * 60 * 60)	/* seconds; a dead holder
						   is noticed sooner */
#define ODMR_FLUSH_CLIENT_PORT	25

struct odmr_flush_job {
	struct odmr_flush *fl;
	char		 domain[DNAME_MAX + 1];
	char		 route[TURN_FLUSH_ROUTE_MAX + 1];
	enum tls_mode	 tls;
	char		 id[ODMR_FLUSH_ID_MAX];
	char		 trigger[16];
	char		 asked_by[ODMR_FLUSH_ID_MAX];
	struct turn_flush *flush;	/* NULL while waiting */
	struct odmr_flush_job *prev, *next;
};

struct odmr_flush {
	struct odmrd	*d;
	struct odmr_flush_job *running, *waiting, *waiting_tail;
	size_t		 nrunning, nwaiting;
	int		 shutdown;
};

static void odmr_flush_start_job(struct odmr_flush *, struct odmr_flush_job *);

/* odmr_flush_new - no flush yet */
struct odmr_flush *
odmr_flush_new(struct odmrd *d)
{
	struct odmr_flush *fl = xcalloc(1, sizeof(*fl));

	fl->d = d;
	return fl;
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
	j->flush = NULL;
	odmr_flush_unlink_running(fl, j);
	free(j);
	while (!fl->shutdown && fl->nrunning < fl->d->conf->max_deliveries &&
	    (next = odmr_flush_pop_waiting(fl)) != NULL)
		odmr_flush_start_job(fl, next);
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

/* odmr_flush_start_job - run one flush now */
static void
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
	}
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
	(void)strlcpy(j->trigger, req->trigger, sizeof(j->trigger));
	(void)strlcpy(j->asked_by, req->session_id != NULL ?
	    req->session_id : "-", sizeof(j->asked_by));
	odmrd_session_id(fl->d, j->id, sizeof(j->id));
	if (fl->nrunning < fl->d->conf->max_deliveries) {
		odmr_flush_start_job(fl, j);
		return ODMR_FLUSH_STARTED;
	}
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
	return fl != NULL ? fl->nrunning : 0;
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
	free(fl);
}
