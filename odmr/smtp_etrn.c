/*
 * NAME
 *	smtp_etrn 3 - ETRN (RFC 1985): check the node, count, start a flush
 * SYNOPSIS
 *	#include "smtp_session.h"
 * DESCRIPTION
 *	smtp_etrn_cmd() answers ETRN on the MX port, and on the ODMR port
 *	after AUTH. RFC 1985 section 5 gives three node forms:
 *	- "ETRN domain": the customer domain that takes mail for domain
 *	  (the domain itself, or the nearest parent with --subdomains);
 *	- "ETRN @domain": that domain and every customer domain below it;
 *	- "ETRN #name": a queue name. The node keeps queues per customer
 *	  domain only, so #name works when name is one, and otherwise
 *	  gets 459 saying so.
 *	The name is checked and normalised (lib/dname: lower case, IDNA)
 *	before any lookup. The decision runs on the lookup pool and reads
 *	only the domains concerned:
 *	- each domain's --etrn policy: "off" refuses, "any" accepts,
 *	  "owner" wants the session authenticated (AUTH) as one of the
 *	  domain's owners;
 *	- the domain's counter of queued messages; when it says there is
 *	  mail, one deliverable message is looked for, so that 251 ("no
 *	  messages waiting") is only ever said of a queue with nothing to
 *	  deliver: fetchmail stops at the first 251.
 *	Then odmr_flush(3) starts (or queues) one flush per domain with
 *	mail. A domain whose flush already runs is not flushed twice.
 *
 *	smtp_etrn_reply() is the one place an ETRN outcome becomes a
 *	reply. The success replies are RFC 1985's own wording (253 gives
 *	the count right after "OK,"); the refusals carry enhanced status
 *	codes.
 * SEE ALSO
 *	smtp_session(3), odmr_flush(3), turn_flush(3), RFC 1985
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "dname.h"
#include "io.h"
#include "log.h"
#include "tls.h"
#include "work.h"
#include "xmalloc.h"

#include "odmr_flush.h"
#include "odmrd.h"
#include "queue.h"
#include "smtp_session.h"

#define SMTP_ETRN_DOMAINS_MAX	256	/* customer domains below @domain */
#define SMTP_ETRN_WHY_MAX	(DNAME_MAX + 128)

enum smtp_etrn_result {
	SMTP_ETRN_STARTED,	/* 253 n, or 250 when already running */
	SMTP_ETRN_EMPTY,	/* 251 */
	SMTP_ETRN_UNABLE,	/* 458 */
	SMTP_ETRN_DENIED,	/* 459 */
};

struct smtp_etrn_dom {
	char		 name[DNAME_MAX + 1];
	char		*route;
	enum tls_mode	 tls;
	uint64_t	 messages;
	int		 any;		/* a deliverable message exists */
};

struct smtp_etrn {
	char		 node[DNAME_MAX + 2];	/* as the client wrote it */
	char		 key[DNAME_MAX + 1];	/* normalised */
	int		 below;		/* "@domain" */
	int		 queue_name;	/* "#name" */
	struct smtp_etrn_dom *doms;
	size_t		 ndoms;
	size_t		 denied;	/* domains refused by policy */
	enum smtp_etrn_result result;
	char		 why[SMTP_ETRN_WHY_MAX];
	uint64_t	 pending;	/* messages in the flushes started */
	int		 already;	/* a flush ran already */
	struct queue_error err;
};

/* smtp_etrn_free - the ETRN state of a session */
void
smtp_etrn_free(struct smtp_etrn **ep)
{
	struct smtp_etrn *e = *ep;
	size_t i;

	if (e == NULL)
		return;
	*ep = NULL;
	for (i = 0; i < e->ndoms; i++)
		free(e->doms[i].route);
	free(e->doms);
	free(e);
}

/* smtp_etrn_owner - the authenticated user owns the domain */
static int
smtp_etrn_owner(const struct queue_domain *dom, const char *user)
{
	size_t i;

	if (user[0] == '\0')
		return 0;
	for (i = 0; i < dom->nowners; i++)
		if (strcmp(dom->owners[i], user) == 0)
			return 1;
	return 0;
}

/* smtp_etrn_take - policy check of one domain; keep it if allowed */
static void
smtp_etrn_take(struct smtp_session *s, const struct queue_domain *dom)
{
	struct smtp_etrn *e = s->etrn;
	struct smtp_etrn_dom *t;

	switch (dom->etrn) {
	case QUEUE_ETRN_OFF:
		e->denied++;
		(void)snprintf(e->why, sizeof(e->why), "ETRN is turned off"
		    " for %s", dom->name);
		return;
	case QUEUE_ETRN_OWNER:
		if (!smtp_etrn_owner(dom, s->auth_user)) {
			e->denied++;
			(void)snprintf(e->why, sizeof(e->why), "ETRN for %s"
			    " needs AUTH as one of its owners", dom->name);
			return;
		}
		break;
	case QUEUE_ETRN_ANY:
		break;
	}
	if (strcmp(dom->route, "client") == 0 && s->auth_user[0] == '\0') {
		/* odmrctl only allows route client with --etrn owner */
		e->denied++;
		(void)snprintf(e->why, sizeof(e->why), "%s is delivered to"
		    " the client that asks: AUTH first", dom->name);
		return;
	}
	if (e->ndoms == SMTP_ETRN_DOMAINS_MAX)
		return;
	e->doms = xreallocarray(e->doms, e->ndoms + 1, sizeof(*e->doms));
	t = &e->doms[e->ndoms++];
	memset(t, 0, sizeof(*t));
	(void)strlcpy(t->name, dom->name, sizeof(t->name));
	t->route = xstrdup(dom->route != NULL ? dom->route : "mx");
	t->tls = (enum tls_mode)dom->tls;
	t->messages = dom->messages;
}

/* smtp_etrn_below_fn - "@domain": the domain and the ones below it */
static int
smtp_etrn_below_fn(const struct queue_domain *dom, void *arg)
{
	struct smtp_session *s = arg;
	const char *key = s->etrn->key;
	size_t n = strlen(dom->name), k = strlen(key);

	if (strcmp(dom->name, key) == 0 || (n > k + 1 &&
	    dom->name[n - k - 1] == '.' && strcmp(dom->name + n - k, key) == 0))
		smtp_etrn_take(s, dom);
	return 0;
}

/* smtp_etrn_run - on the lookup pool: which domains, allowed, any mail */
static void
smtp_etrn_run(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_etrn *e = s->etrn;
	struct queue *q = s->d->queue;
	char name[DNAME_MAX + 1];
	struct queue_domain dom;
	enum queue_status st;
	size_t i;

	if (e->key[0] == '\0')
		st = QUEUE_NOTFOUND;	/* "#name" that is no domain name */
	else if (e->below)
		st = queue_domain_list(q, smtp_etrn_below_fn, s, &e->err);
	else {
		st = queue_domain_match(q, e->key, name, &e->err);
		if (st == QUEUE_OK && e->queue_name &&
		    strcmp(name, e->key) != 0)
			st = QUEUE_NOTFOUND;	/* #name must be a domain */
		if (st == QUEUE_OK) {
			memset(&dom, 0, sizeof(dom));
			st = queue_domain_get(q, name, &dom, &e->err);
			if (st == QUEUE_OK)
				smtp_etrn_take(s, &dom);
			queue_domain_clear(&dom);
		}
	}
	if (st == QUEUE_NOTFOUND || (st == QUEUE_OK && e->ndoms == 0 &&
	    e->denied == 0)) {
		e->result = SMTP_ETRN_DENIED;
		(void)snprintf(e->why, sizeof(e->why), e->queue_name ?
		    "this node keeps no queue of that name, only customer"
		    " domains" : "not a customer domain of this node");
		return;
	}
	if (st != QUEUE_OK) {
		e->result = SMTP_ETRN_UNABLE;
		(void)snprintf(e->why, sizeof(e->why), "the queue cannot be"
		    " read now");
		return;
	}
	if (e->ndoms == 0) {
		e->result = SMTP_ETRN_DENIED;	/* e->why says which rule */
		return;
	}
	for (i = 0; i < e->ndoms; i++) {
		if (e->doms[i].messages == 0)
			continue;
		st = queue_deliverable(q, e->doms[i].name, &e->doms[i].any,
		    &e->err);
		if (st != QUEUE_OK) {
			e->result = SMTP_ETRN_UNABLE;
			(void)snprintf(e->why, sizeof(e->why), "the queue"
			    " cannot be read now");
			return;
		}
	}
	e->result = SMTP_ETRN_STARTED;
}

/* smtp_etrn_start - on the loop: a flush for every domain with mail */
static void
smtp_etrn_start(struct smtp_session *s)
{
	struct smtp_etrn *e = s->etrn;
	struct odmr_flush_req req;
	size_t i, started = 0, full = 0;

	for (i = 0; i < e->ndoms; i++) {
		if (!e->doms[i].any)
			continue;
		memset(&req, 0, sizeof(req));
		req.domain = e->doms[i].name;
		req.route = e->doms[i].route;
		req.tls = e->doms[i].tls;
		req.client_addr = s->addr;
		req.trigger = "etrn";
		req.session_id = s->id;
		switch (odmr_flush_request(s->d->flush, &req)) {
		case ODMR_FLUSH_STARTED:
		case ODMR_FLUSH_WAITING:
			started++;
			e->pending += e->doms[i].messages;
			break;
		case ODMR_FLUSH_ALREADY:
			started++;
			e->already = 1;
			e->pending += e->doms[i].messages;
			break;
		case ODMR_FLUSH_FULL:
			full++;
			(void)snprintf(e->why, sizeof(e->why), "%s",
			    s->d->draining ? "the node is shutting down" :
			    "too many deliveries are waiting; try again"
			    " later");
			break;
		case ODMR_FLUSH_BAD:
			full++;
			(void)snprintf(e->why, sizeof(e->why), "the route of"
			    " %s cannot be used", e->doms[i].name);
			break;
		}
	}
	if (started > 0)
		e->result = SMTP_ETRN_STARTED;
	else if (full > 0)
		e->result = SMTP_ETRN_UNABLE;
	else
		e->result = SMTP_ETRN_EMPTY;
}

/* smtp_etrn_reply - the one place an ETRN outcome becomes a reply */
static void
smtp_etrn_reply(struct smtp_session *s)
{
	struct smtp_etrn *e = s->etrn;

	switch (e->result) {
	case SMTP_ETRN_STARTED:
		log_info("session=%s event=etrn node=%s domains=%zu"
		    " pending=%llu already=%s user=%s", s->id, e->node,
		    e->ndoms, (unsigned long long)e->pending,
		    e->already ? "yes" : "no",
		    s->auth_user[0] ? s->auth_user : "-");
		if (e->already && e->pending == 0)
			smtp_reply(s, 250, "OK, queuing for node %s started",
			    e->node);
		else
			smtp_reply(s, 253, "OK, %llu pending messages for node"
			    " %s started", (unsigned long long)e->pending,
			    e->node);
		break;
	case SMTP_ETRN_EMPTY:
		log_info("session=%s event=etrn-empty node=%s domains=%zu",
		    s->id, e->node, e->ndoms);
		smtp_reply(s, 251, "OK, no messages waiting for node %s",
		    e->node);
		break;
	case SMTP_ETRN_UNABLE:
		if (e->err.text[0] != '\0')
			log_warnx("session=%s event=store-error op=etrn"
			    " reason=\"%s\"", s->id, e->err.text);
		log_info("session=%s event=etrn-unable node=%s reason=\"%s\"",
		    s->id, e->node, e->why);
		smtp_reply(s, 458, "4.3.0 Unable to queue messages for node"
		    " %s: %s", e->node, e->why);
		break;
	case SMTP_ETRN_DENIED:
		/* RFC 1985 section 5: 459 with the reason */
		smtp_reject(s, "ETRN", 459, "4.7.1 Node %s not allowed: %s",
		    e->node, e->why);
		break;
	}
	smtp_etrn_free(&s->etrn);
	if (s->state == SMTP_STATE_ETRN)
		smtp_enter_state(s, SMTP_STATE_READY);
}

/* smtp_etrn_done - on the loop: the decision is in */
static void
smtp_etrn_done(void *arg)
{
	struct smtp_session *s = arg;

	if (smtp_job_end(s) == -1)
		return;
	if (s->etrn->result == SMTP_ETRN_STARTED)
		smtp_etrn_start(s);
	smtp_etrn_reply(s);
	smtp_session_resume(s);
}

/* smtp_etrn_parse - "[@|#]domain" into e; -1 with a reason if bad */
static int
smtp_etrn_parse(struct smtp_etrn *e, const char *arg, size_t len,
    const char **why)
{
	char name[DNAME_MAX + 2];
	const char *err;

	if (len == 0) {
		*why = "a node name is required";
		return -1;
	}
	if (len >= sizeof(e->node)) {
		*why = "the node name is too long";
		return -1;
	}
	memcpy(e->node, arg, len);
	e->node[len] = '\0';
	if (memchr(e->node, ' ', len) != NULL ||
	    memchr(e->node, '\t', len) != NULL) {
		*why = "one node name only";
		return -1;
	}
	if (arg[0] == '@')
		e->below = 1;
	else if (arg[0] == '#')
		e->queue_name = 1;
	(void)strlcpy(name, e->node + (e->below || e->queue_name), sizeof(name));
	if (dname_normalize(name, e->key, &err) == -1) {
		if (e->queue_name) {
			/* a queue name that is no domain: 459, not 501 */
			e->key[0] = '\0';
			return 0;
		}
		*why = err;
		return -1;
	}
	return 0;
}

/* smtp_etrn_cmd - ETRN [@|#]domain */
void
smtp_etrn_cmd(struct smtp_session *s, const char *arg, size_t len)
{
	struct smtp_etrn *e;
	const char *why;

	if (s->mode == SMTP_MODE_ODMR && s->auth_user[0] == '\0') {
		smtp_reject(s, "ETRN", 530, "5.7.0 Authentication required");
		return;
	}
	if (s->helo == NULL) {
		smtp_reject(s, "ETRN", 503, "5.5.1 Error: send HELO/EHLO"
		    " first");
		return;
	}
	if (s->state != SMTP_STATE_READY) {
		/* RFC 1985 section 3: not inside a mail transaction */
		smtp_reject(s, "ETRN", 503, "5.5.1 Error: MAIL transaction"
		    " in progress");
		return;
	}
	e = xcalloc(1, sizeof(*e));
	s->etrn = e;
	if (smtp_etrn_parse(e, arg, len, &why) == -1) {
		smtp_etrn_free(&s->etrn);
		smtp_reject(s, "ETRN", 501, "5.5.4 Syntax: ETRN [@]domain"
		    " (%s)", why);
		return;
	}
	smtp_enter_state(s, SMTP_STATE_ETRN);
	smtp_job_start(s);
	work_submit(s->d->lookup_pool, smtp_etrn_run, smtp_etrn_done, s);
}
