/*
 * NAME
 *	smtp_txn 3 - MAIL and RCPT: the envelope, and relay control
 * SYNOPSIS
 *	#include "smtp_session.h"
 * DESCRIPTION
 *	smtp_txn_mail() starts a mail transaction (RFC 5321 section
 *	4.1.1.2). The SIZE parameter (RFC 1870) is checked against
 *	max_message_size, and against the free space of the file system
 *	that holds the store, so that a message that cannot fit is refused
 *	before its text is sent.
 *
 *	smtp_txn_rcpt() is relay control, the one thing this node must
 *	never get wrong. A recipient is accepted only when all of this
 *	holds:
 *	- the address has none of the forms that some MTA somewhere routes
 *	  onwards: a source route, '%' or '!' in the local part, a quoted
 *	  local part holding '@', an address literal, a trailing dot, or
 *	  no domain at all (smtp_parse_path() reports each as a flag);
 *	- its domain, IDNA- and case-normalised, is a customer domain, or
 *	  a subdomain of one that was added with --subdomains
 *	  (queue_domain_match(), on the lookup pool);
 *	- that domain is under its --max-messages and --max-bytes quota
 *	  (452 4.2.2, RFC 3463: mailbox full is the nearest code).
 *	Anything else is 550 5.7.1. The domain is first looked up in the
 *	in-memory snapshot (smtp_domains(3)); only a domain it does not
 *	know is asked of the store, on the lookup pool, and the session
 *	stops reading until it answers, so pipelined replies stay in
 *	order.
 * SEE ALSO
 *	smtp_session(3), queue(3), RFC 5321, RFC 1870, RFC 3461, RFC 6531
 */
#include "config.h"

#include <sys/statvfs.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compat.h"
#include "log.h"
#include "work.h"
#include "xmalloc.h"

#include "odmrd.h"
#include "queue.h"
#include "smtp_parse.h"
#include "smtp_domains.h"
#include "smtp_session.h"
#include "smtp_spool.h"
#include "turn_bounce.h"

/* a message of SIZE octets needs this much more free space to come in */
#define SMTP_TXN_FREE_RESERVE	(16ULL * 1024 * 1024)

/* the path flags that make an address unfit for relaying, whatever its
 * domain: each is a way to route mail onwards through the next hop */
#define SMTP_TXN_RELAY_TRICKS	(SMTP_PARSE_PATH_SOURCE_ROUTE | \
	SMTP_PARSE_PATH_PERCENT | SMTP_PARSE_PATH_BANG | \
	SMTP_PARSE_PATH_QUOTED_AT | SMTP_PARSE_PATH_DOMAIN_LITERAL | \
	SMTP_PARSE_PATH_TRAILING_DOT | SMTP_PARSE_PATH_POSTMASTER | \
	SMTP_PARSE_PATH_NO_KEY)

/* smtp_txn_reset - forget the mail transaction in progress */
void
smtp_txn_reset(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;
	size_t i;

	free(t->sender);
	for (i = 0; i < t->nrcpt; i++) {
		free(t->rcpt[i].addr);
		free(t->rcpt[i].orcpt);
	}
	free(t->rcpt);
	free(t->msg.rcpt);
	memset(t, 0, sizeof(*t));
	if (s->spool != NULL)
		smtp_spool_reset(s->spool);
}

/* smtp_txn_space - 0 when the store's file system has room for size */
static int
smtp_txn_space(struct smtp_session *s, uint64_t size, uint64_t *avail)
{
	struct statvfs sv;
	uint64_t reserve;

	*avail = 0;
	if (statvfs(s->d->conf->state_dir, &sv) == -1)
		return 0;	/* unknown: let the commit decide */
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	/* the reserve is for the store's log and pages; on a small file
	 * system it is a twentieth of it */
	reserve = (uint64_t)sv.f_blocks * sv.f_frsize / 20;
	if (reserve > SMTP_TXN_FREE_RESERVE)
		reserve = SMTP_TXN_FREE_RESERVE;
	return *avail >= 2 * size + reserve ? 0 : -1;
}

/* smtp_txn_mail - MAIL FROM: the sender and the message's parameters */
void
smtp_txn_mail(struct smtp_session *s, const char *arg, size_t len)
{
	const struct odmr_conf *c = s->d->conf;
	struct smtp_txn *t = &s->txn;
	struct smtp_parse_path path;
	const char *err;
	enum smtp_parse_status st;
	uint64_t avail;

	st = smtp_parse_mail_args(arg, len, &path, &t->params, &err);
	if (st != SMTP_PARSE_OK) {
		smtp_reject(s, "MAIL", smtp_parse_status_code(st), "%s %s",
		    smtp_parse_status_enhanced(st), err);
		return;
	}
	if ((t->params.seen & SMTP_PARSE_MAIL_SIZE) &&
	    (t->params.size_overflow || t->params.size > c->max_message_size)) {
		smtp_reject(s, "MAIL", 552, "5.3.4 Error: message size exceeds"
		    " the fixed limit of %llu octets",
		    (unsigned long long)c->max_message_size);
		return;
	}
	if (smtp_txn_space(s, (t->params.seen & SMTP_PARSE_MAIL_SIZE) ?
	    t->params.size : 0, &avail) == -1) {
		log_warnx("session=%s event=disk-low avail=%llu state_dir=%s",
		    s->id, (unsigned long long)avail, c->state_dir);
		smtp_reject(s, "MAIL", 452, "4.3.1 Error: insufficient system"
		    " storage");
		return;
	}
	if (t->params.seen & SMTP_PARSE_MAIL_AUTH)
		log_debug("session=%s event=mail-auth-ignored", s->id);
	t->sender = xstrdup(path.mailbox);
	log_debug("session=%s event=mail from=<%s> size=%llu body=%s%s", s->id,
	    t->sender, (unsigned long long)t->params.size,
	    queue_body_type_name(t->params.body),
	    t->params.smtputf8 ? " smtputf8=yes" : "");
	smtp_enter_state(s, SMTP_STATE_MAIL);
	smtp_reply(s, 250, "2.1.0 Ok");
}

/* smtp_txn_lookup_run - on the lookup pool: which customer domain? */
static void
smtp_txn_lookup_run(void *arg)
{
	struct smtp_session *s = arg;

	queue_domain_clear(&s->lookup_dom);
	s->lookup_status = queue_domain_match(s->d->queue,
	    s->lookup_path.domain_key, s->lookup_domain, &s->lookup_err);
	if (s->lookup_status != QUEUE_OK)
		return;
	s->lookup_status = queue_domain_get(s->d->queue, s->lookup_domain,
	    &s->lookup_dom, &s->lookup_err);
}

/* smtp_txn_seen - the transaction already has this recipient */
static int
smtp_txn_seen(const struct smtp_txn *t, const char *addr)
{
	size_t i;

	for (i = 0; i < t->nrcpt; i++)
		if (strcasecmp(t->rcpt[i].addr, addr) == 0)
			return 1;
	return 0;
}

/* smtp_txn_accept - add the looked-up recipient to the transaction */
static void
smtp_txn_accept(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;
	struct smtp_rcpt *r;

	if (smtp_txn_seen(t, s->lookup_path.mailbox)) {
		log_debug("session=%s event=rcpt-duplicate to=<%s>", s->id,
		    s->lookup_path.mailbox);
		smtp_reply(s, 250, "2.1.5 Ok");
		return;
	}
	if (t->nrcpt == t->rcpt_cap) {
		t->rcpt_cap = t->rcpt_cap ? 2 * t->rcpt_cap : 4;
		t->rcpt = xreallocarray(t->rcpt, t->rcpt_cap, sizeof(*t->rcpt));
	}
	r = &t->rcpt[t->nrcpt++];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(s->lookup_path.mailbox);
	if (s->lookup_params.seen & SMTP_PARSE_RCPT_ORCPT)
		r->orcpt = xstrdup(s->lookup_params.orcpt);
	r->notify = s->lookup_params.notify;
	(void)strlcpy(r->domain, s->lookup_domain, sizeof(r->domain));
	log_debug("session=%s event=rcpt to=<%s> domain=%s", s->id, r->addr,
	    r->domain);
	smtp_enter_state(s, SMTP_STATE_RCPT);
	smtp_reply(s, 250, "2.1.5 Ok");
}

/* smtp_txn_decide - answer the RCPT from the lookup's result */
static void
smtp_txn_decide(struct smtp_session *s)
{
	const struct queue_domain *dom = &s->lookup_dom;
	const char *addr = s->lookup_path.mailbox;
	uint64_t size = s->txn.params.size;

	switch (s->lookup_status) {
	case QUEUE_OK:
		if ((strcmp(s->lookup_domain, s->lookup_path.domain_key) != 0 &&
		    !dom->subdomains) ||
		    turn_bounce_is_dsn_domain(s->lookup_domain)) {
			/* the DSN domain holds our reports: no mail in */
			smtp_reject(s, "RCPT", 550, "5.7.1 <%s>: Relay access"
			    " denied", addr);
			break;
		}
		if (dom->max_messages != 0 &&
		    dom->messages >= dom->max_messages) {
			smtp_reject(s, "RCPT", 452, "4.2.2 <%s>: domain %s is"
			    " over its quota of %llu messages", addr,
			    dom->name, (unsigned long long)dom->max_messages);
			break;
		}
		if (dom->max_bytes != 0 && dom->bytes + size > dom->max_bytes) {
			smtp_reject(s, "RCPT", 452, "4.2.2 <%s>: domain %s is"
			    " over its quota of %llu octets", addr,
			    dom->name, (unsigned long long)dom->max_bytes);
			break;
		}
		smtp_txn_accept(s);
		break;
	case QUEUE_NOTFOUND:
		smtp_reject(s, "RCPT", 550, "5.7.1 <%s>: Relay access denied",
		    addr);
		break;
	default:
		log_warnx("session=%s event=store-error op=domain-lookup"
		    " domain=%s status=%s reason=\"%s\"", s->id,
		    s->lookup_path.domain_key,
		    queue_status_name(s->lookup_status), s->lookup_err.text);
		smtp_reject(s, "RCPT", 451, "4.3.0 <%s>: temporary lookup"
		    " failure, try again later", addr);
		break;
	}
	queue_domain_clear(&s->lookup_dom);
}

/* smtp_txn_lookup_done - on the loop: the store answered */
static void
smtp_txn_lookup_done(void *arg)
{
	struct smtp_session *s = arg;

	if (smtp_job_end(s) == -1)
		return;
	smtp_txn_decide(s);
	smtp_session_resume(s);
}

/* smtp_txn_snapshot - 1 when the in-memory snapshot knows the domain */
static int
smtp_txn_snapshot(struct smtp_session *s)
{
	struct smtp_domains_entry e;

	if (!smtp_domains_match(s->d->domains, s->lookup_path.domain_key, &e))
		return 0;
	/* a quota needs the counters as they are now: ask the store */
	if (e.max_messages != 0 || e.max_bytes != 0)
		return 0;
	queue_domain_clear(&s->lookup_dom);
	memset(&s->lookup_dom, 0, sizeof(s->lookup_dom));
	(void)strlcpy(s->lookup_domain, e.name, sizeof(s->lookup_domain));
	(void)strlcpy(s->lookup_dom.name, e.name, sizeof(s->lookup_dom.name));
	s->lookup_dom.subdomains = e.subdomains;
	s->lookup_dom.max_messages = e.max_messages;
	s->lookup_dom.messages = e.messages;
	s->lookup_dom.max_bytes = e.max_bytes;
	s->lookup_dom.bytes = e.bytes;
	s->lookup_status = QUEUE_OK;
	return 1;
}

/* smtp_txn_rcpt - RCPT TO: syntax, relay tricks, then the store */
void
smtp_txn_rcpt(struct smtp_session *s, const char *arg, size_t len)
{
	const struct odmr_conf *c = s->d->conf;
	struct smtp_txn *t = &s->txn;
	const char *err;
	enum smtp_parse_status st;

	if (t->nrcpt >= c->max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, and the client tries the rest
		 * later; not a client error */
		t->rcpt_refused++;
		log_info("session=%s event=reject cmd=RCPT code=452"
		    " reason=\"too many recipients\" limit=%llu", s->id,
		    (unsigned long long)c->max_recipients);
		smtp_reply(s, 452, "4.5.3 Error: too many recipients");
		return;
	}
	st = smtp_parse_rcpt_args(arg, len, t->params.smtputf8,
	    &s->lookup_path, &s->lookup_params, &err);
	if (st != SMTP_PARSE_OK) {
		smtp_reject(s, "RCPT", smtp_parse_status_code(st), "%s %s",
		    smtp_parse_status_enhanced(st), err);
		return;
	}
	if (s->lookup_path.flags & SMTP_TXN_RELAY_TRICKS) {
		smtp_reject(s, "RCPT", 550, "5.7.1 <%s>: Relay access denied",
		    s->lookup_path.mailbox);
		return;
	}
	if (smtp_txn_snapshot(s)) {
		smtp_txn_decide(s);
		return;
	}
	smtp_job_start(s);
	work_submit(s->d->lookup_pool, smtp_txn_lookup_run,
	    smtp_txn_lookup_done, s);
}
