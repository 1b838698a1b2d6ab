/*
 * NAME
 *	smtp_atrn 3 - ATRN (RFC 2645): check, claim, then reverse the roles
 * SYNOPSIS
 *	#include "smtp_session.h"
 * DESCRIPTION
 *	smtp_atrn_cmd() answers ATRN on the ODMR port. The argument is a
 *	comma-separated list of domains (a space after a comma is
 *	accepted); none means every domain the account owns. The decision
 *	runs on the lookup pool and reads only the domains named, so it
 *	takes the same time whatever the size of the store:
 *	- the account must be authenticated (530);
 *	- every domain must exist and list the account among its owners,
 *	  else 450 and nothing is delivered, so one customer can never
 *	  fetch another's mail (SPEC.md guarantee 3);
 *	- every domain is claimed (queue_claim()); a domain that another
 *	  session or odmrctl flush is delivering gets 451, and the claims
 *	  already taken are given back;
 *	- a domain set without deliverable mail gets 453.
 *	Otherwise the reply is 250, and the session hands its connection
 *	to turn(3), which waits for the customer's 220 and delivers. When
 *	turn reports back, the claims are given back (the pickup time
 *	recorded when the session ended cleanly) and the connection closes.
 *
 *	smtp_atrn_reply() is the one place an ATRN outcome becomes a
 *	reply. The replies are RFC 2645's, one line each.
 * SEE ALSO
 *	smtp_session(3), turn_session(3), queue(3), RFC 2645
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "dname.h"
#include "io.h"
#include "log.h"
#include "work.h"
#include "xmalloc.h"

#include "odmr_bounce.h"
#include "odmrd.h"
#include "queue.h"
#include "smtp_session.h"
#include "turn_session.h"

#define SMTP_ATRN_CLAIM_TTL	(2 * 60 * 60)	/* seconds; a dead holder
						   is noticed sooner */

enum smtp_atrn_result {
	SMTP_ATRN_REVERSE,	/* 250 */
	SMTP_ATRN_DENIED,	/* 450: not the account's, or unknown */
	SMTP_ATRN_BUSY,		/* 451: being flushed elsewhere */
	SMTP_ATRN_ERROR,	/* 451: store trouble */
	SMTP_ATRN_NO_MAIL,	/* 453 */
};

struct smtp_atrn {
	char		 (*domains)[DNAME_MAX + 1];
	size_t		 ndomains;
	int		 all;		/* no argument: every owned domain */
	size_t		 nclaimed;
	char		 holder[QUEUE_HOLDER_MAX];
	char		 busy_holder[QUEUE_HOLDER_MAX];
	char		 bad[DNAME_MAX + 1];	/* the domain refused */
	enum smtp_atrn_result result;
	struct queue_error err;
	/* the reversed session */
	struct turn_session *turn;
	struct turn_result turn_result;
	char		 **names;	/* domains, as turn wants them */
};

/* smtp_atrn_free - release the ATRN state of a session */
void
smtp_atrn_free(struct smtp_atrn **ap)
{
	struct smtp_atrn *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	turn_session_abort(&a->turn);
	free(a->names);
	free(a->domains);
	free(a);
}

/* smtp_atrn_stop - SIGTERM: QUIT after the message in progress */
void
smtp_atrn_stop(struct smtp_session *s)
{
	if (s->atrn != NULL && s->atrn->turn != NULL)
		turn_session_stop(s->atrn->turn);
}

/* smtp_atrn_abort - stop a reversed session (shutdown); no callback */
void
smtp_atrn_abort(struct smtp_session *s)
{
	if (s->atrn == NULL || s->atrn->turn == NULL)
		return;
	log_info("session=%s event=atrn-aborted user=%s", s->id,
	    s->auth_user);
	/* the engine closes and frees the io; its done callback follows
	 * and gives the claims back (the session waits for it as a job) */
	turn_session_abort(&s->atrn->turn);
	s->io = NULL;
}

/* smtp_atrn_add - one more domain for the ATRN, without duplicates */
static void
smtp_atrn_add(struct smtp_atrn *a, const char *key)
{
	size_t i;

	for (i = 0; i < a->ndomains; i++)
		if (strcmp(a->domains[i], key) == 0)
			return;
	a->domains = xreallocarray(a->domains, a->ndomains + 1,
	    sizeof(*a->domains));
	(void)strlcpy(a->domains[a->ndomains++], key, DNAME_MAX + 1);
}

/* smtp_atrn_parse - "d1,d2, d3" into a->domains; -1 on bad syntax */
static int
smtp_atrn_parse(struct smtp_atrn *a, const char *arg, size_t len)
{
	char name[DNAME_MAX + 2], key[DNAME_MAX + 1];
	const char *p = arg, *end = arg + len, *comma, *err;
	size_t n;

	while (p <= end) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (comma == NULL)
			comma = end;
		/* RFC 2645 allows no space; clients send one after ',' */
		while (p < comma && (*p == ' ' || *p == '\t'))
			p++;
		n = (size_t)(comma - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0 || n >= sizeof(name))
			return -1;
		memcpy(name, p, n);
		name[n] = '\0';
		if (dname_normalize(name, key, &err) == -1)
			return -1;
		if (a->ndomains >= SMTP_ATRN_DOMAINS_MAX)
			return -1;
		smtp_atrn_add(a, key);
		p = comma + 1;
	}
	return 0;
}

/* smtp_atrn_owner - user is among the domain's owners */
static int
smtp_atrn_owner(const struct queue_domain *dom, const char *user)
{
	size_t i;

	for (i = 0; i < dom->nowners; i++)
		if (strcmp(dom->owners[i], user) == 0)
			return 1;
	return 0;
}

struct smtp_atrn_list {
	struct smtp_atrn *a;
	const char	*user;
};

/* smtp_atrn_list_fn - collect the domains the account owns */
static int
smtp_atrn_list_fn(const struct queue_domain *dom, void *arg)
{
	struct smtp_atrn_list *l = arg;

	if (smtp_atrn_owner(dom, l->user) &&
	    l->a->ndomains < SMTP_ATRN_DOMAINS_MAX)
		smtp_atrn_add(l->a, dom->name);
	return 0;
}

/* smtp_atrn_unclaim - give back the claims taken so far */
static void
smtp_atrn_unclaim(struct smtp_session *s, int picked_up)
{
	struct smtp_atrn *a = s->atrn;
	struct queue_error err;
	size_t i;

	for (i = 0; i < a->nclaimed; i++)
		if (queue_unclaim(s->d->queue, a->domains[i], a->holder,
		    picked_up, &err) != QUEUE_OK)
			log_warnx("session=%s event=unclaim-error domain=%s"
			    " reason=\"%s\"", s->id, a->domains[i], err.text);
	a->nclaimed = 0;
}

/* smtp_atrn_run - on the lookup pool: ownership, claims, any mail? */
static void
smtp_atrn_run(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_atrn *a = s->atrn;
	struct queue *q = s->d->queue;
	struct smtp_atrn_list l = { a, s->auth_user };
	struct queue_domain dom;
	enum queue_status st;
	size_t i;
	int any = 0;

	if (a->all && (st = queue_domain_list(q, smtp_atrn_list_fn, &l,
	    &a->err)) != QUEUE_OK) {
		a->result = SMTP_ATRN_ERROR;
		return;
	}
	for (i = 0; i < a->ndomains; i++) {
		memset(&dom, 0, sizeof(dom));
		st = queue_domain_get(q, a->domains[i], &dom, &a->err);
		if (st == QUEUE_OK && !smtp_atrn_owner(&dom, s->auth_user))
			st = QUEUE_NOTFOUND;
		queue_domain_clear(&dom);
		if (st != QUEUE_OK) {
			(void)strlcpy(a->bad, a->domains[i], sizeof(a->bad));
			a->result = st == QUEUE_NOTFOUND ? SMTP_ATRN_DENIED :
			    SMTP_ATRN_ERROR;
			return;
		}
	}
	for (i = 0; i < a->ndomains; i++) {
		st = queue_claim(q, a->domains[i], a->holder,
		    SMTP_ATRN_CLAIM_TTL, a->busy_holder, &a->err);
		if (st != QUEUE_OK) {
			(void)strlcpy(a->bad, a->domains[i], sizeof(a->bad));
			a->result = st == QUEUE_BUSY ? SMTP_ATRN_BUSY :
			    SMTP_ATRN_ERROR;
			smtp_atrn_unclaim(s, 0);
			return;
		}
		a->nclaimed++;
	}
	for (i = 0; i < a->ndomains && !any; i++) {
		st = queue_deliverable(q, a->domains[i], &any, &a->err);
		if (st != QUEUE_OK) {
			a->result = SMTP_ATRN_ERROR;
			smtp_atrn_unclaim(s, 0);
			return;
		}
	}
	if (!any) {
		smtp_atrn_unclaim(s, 1);	/* a pickup that found nothing */
		a->result = SMTP_ATRN_NO_MAIL;
		return;
	}
	a->result = SMTP_ATRN_REVERSE;
}

/* smtp_atrn_unclaim_run - on the lookup pool: the flush is over */
static void
smtp_atrn_unclaim_run(void *arg)
{
	struct smtp_session *s = arg;

	smtp_atrn_unclaim(s, s->atrn->turn_result.completed);
}

/* smtp_atrn_unclaim_done - claims given back: the session ends */
static void
smtp_atrn_unclaim_done(void *arg)
{
	struct smtp_session *s = arg;

	if (smtp_job_end(s) == -1)
		return;
	smtp_session_end(s);
}

/* smtp_atrn_turn_failed - the engine could not start: give back, end */
static void
smtp_atrn_turn_failed(struct smtp_session *s, const char *why)
{
	log_warnx("session=%s event=turn-error reason=\"%s\"", s->id, why);
	io_free(&s->io);
	work_submit(s->d->lookup_pool, smtp_atrn_unclaim_run,
	    smtp_atrn_unclaim_done, s);
}

/* smtp_atrn_turn_done - turn/ finished the reversed session */
static void
smtp_atrn_turn_done(void *arg, const struct turn_result *r)
{
	struct smtp_session *s = arg;
	struct smtp_atrn *a = s->atrn;

	a->turn_result = *r;
	a->turn = NULL;		/* turn frees itself after this call */
	if (r->rcpt_failed > 0)
		odmr_bounce_kick(s->d->bounce);	/* DSNs were queued */
	if (r->io_gone)
		s->io = NULL;	/* the engine closed the connection */
	else
		io_free(&s->io);	/* after the customer's 221: done */
	log_info("session=%s event=atrn-done user=%s delivered=%u"
	    " deferred=%u failed=%u completed=%s%s%s%s", s->id, s->auth_user,
	    r->rcpt_delivered, r->rcpt_deferred, r->rcpt_failed,
	    r->completed ? "yes" : "no", r->error[0] ? " reason=\"" : "",
	    r->error, r->error[0] ? "\"" : "");
	/* still a job (set by smtp_atrn_reverse): the claims go back
	 * first, then the session ends, even if it was torn down */
	work_submit(s->d->lookup_pool, smtp_atrn_unclaim_run,
	    smtp_atrn_unclaim_done, s);
}

/* smtp_atrn_reverse - 250 is out: turn/ takes the connection */
static void
smtp_atrn_reverse(struct smtp_session *s)
{
	struct smtp_atrn *a = s->atrn;
	struct turn_params p;
	const char *err = NULL;
	size_t i;

	a->names = xcalloc(a->ndomains, sizeof(*a->names));
	for (i = 0; i < a->ndomains; i++)
		a->names[i] = a->domains[i];
	memset(&p, 0, sizeof(p));
	p.queue = s->d->queue;
	p.pool = s->d->lookup_pool;
	p.session_id = s->id;
	p.helo_name = s->d->conf->hostname;
	p.domains = a->names;
	p.ndomains = a->ndomains;
	p.dsn = 1;
	p.postmaster = s->d->conf->postmaster;
	p.done = smtp_atrn_turn_done;
	p.arg = s;
	smtp_enter_state(s, SMTP_STATE_TURN);
	/* fetchmail relays a reversed TLS session one record at a time,
	 * reading one line from each: lines must not share a record */
	if (s->tls)
		io_set_line_records(s->io, 1);
	/* the engine bounds its own output (its window of messages) */
	io_set_output_max(s->io, 0);
	/* the reversed session counts as a job: teardown waits for its
	 * done callback, which gives the claims back */
	s->job = 1;
	if ((a->turn = turn_session_start(s->io, &p, &err)) == NULL)
		smtp_atrn_turn_failed(s, err != NULL ? err : "unknown");
}

/* smtp_atrn_reply - the one place an ATRN outcome becomes a reply */
static void
smtp_atrn_reply(struct smtp_session *s)
{
	struct smtp_atrn *a = s->atrn;

	switch (a->result) {
	case SMTP_ATRN_REVERSE:
		log_info("session=%s event=atrn user=%s domains=%zu first=%s",
		    s->id, s->auth_user, a->ndomains, a->domains[0]);
		smtp_reply(s, 250, "OK now reversing the connection");
		smtp_atrn_reverse(s);
		return;
	case SMTP_ATRN_DENIED:
		/* RFC 2645 section 5: 450 for a domain not the user's */
		smtp_reject(s, "ATRN", 450, "Access denied to domain %s",
		    a->bad);
		break;
	case SMTP_ATRN_BUSY:
		log_info("session=%s event=atrn-busy domain=%s holder=\"%s\"",
		    s->id, a->bad, a->busy_holder);
		smtp_reply(s, 451, "Unable to process ATRN request now: %s"
		    " is being delivered by another session", a->bad);
		break;
	case SMTP_ATRN_ERROR:
		log_warnx("session=%s event=store-error op=atrn reason=\"%s\"",
		    s->id, a->err.text);
		smtp_reply(s, 451, "Unable to process ATRN request now");
		break;
	case SMTP_ATRN_NO_MAIL:
		log_info("session=%s event=atrn-no-mail user=%s domains=%zu",
		    s->id, s->auth_user, a->ndomains);
		smtp_reply(s, 453, "You have no mail");
		break;
	}
	smtp_atrn_free(&s->atrn);
	if (s->state == SMTP_STATE_ATRN)
		smtp_enter_state(s, SMTP_STATE_READY);
}

/* smtp_atrn_done - on the loop: the decision is in */
static void
smtp_atrn_done(void *arg)
{
	struct smtp_session *s = arg;

	if (smtp_job_end(s) == -1)
		return;
	smtp_atrn_reply(s);
	if (s->state != SMTP_STATE_TURN)
		smtp_session_resume(s);
}

/* smtp_atrn_cmd - ATRN [domain[,domain]...] */
void
smtp_atrn_cmd(struct smtp_session *s, const char *arg, size_t len)
{
	struct smtp_atrn *a;

	if (s->auth_user[0] == '\0') {
		smtp_reject(s, "ATRN", 530, "Authentication required");
		return;
	}
	if (s->state != SMTP_STATE_READY) {
		smtp_reject(s, "ATRN", 503, "Bad sequence of commands");
		return;
	}
	a = xcalloc(1, sizeof(*a));
	s->atrn = a;
	a->all = len == 0;
	if (!a->all && smtp_atrn_parse(a, arg, len) == -1) {
		smtp_atrn_free(&s->atrn);
		smtp_reject(s, "ATRN", 501, "Syntax error in parameters:"
		    " ATRN [domain[,domain]...]");
		return;
	}
	(void)snprintf(a->holder, sizeof(a->holder), "odmrd[%ld] session=%s"
	    " user=%s", (long)getpid(), s->id, s->auth_user);
	smtp_enter_state(s, SMTP_STATE_ATRN);
	smtp_job_start(s);
	work_submit(s->d->lookup_pool, smtp_atrn_run, smtp_atrn_done, s);
}
