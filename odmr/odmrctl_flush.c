/*
 * NAME
 *	odmrctl_flush 3 - "odmrctl flush DOMAIN": deliver now over the
 *	domain's route, as ETRN would
 * SYNOPSIS
 *	odmrctl flush DOMAIN [-v]
 * DESCRIPTION
 *	odmrctl runs the flush itself, with the same engine as odmrd's
 *	ETRN (turn_flush(3)), so that it works whether odmrd runs or not.
 *	The domain's claim in the store keeps it from delivering a domain
 *	that odmrd (ETRN, ATRN) is delivering: that is reported and the
 *	exit code is 1. The domain's --route, --tls, and odmrd.conf's
 *	hostname, tls_ca_file, dns_servers and connect_timeout apply.
 *	"--route client" cannot be flushed from here: the site's address
 *	is only known when it sends ETRN.
 *
 *	It prints one line: what was delivered, deferred and failed, the
 *	relay, and the reason when the delivery did not complete. -v
 *	shows the delivery's log lines on standard error.
 * DIAGNOSTICS
 *	Exit 0 when the delivery completed (recipients deferred by the
 *	customer with 4xx are counted, and stay queued), 1 when there is
 *	nothing to deliver, the domain is unknown, its route is "client",
 *	or someone else is delivering it, 2 on a usage error, 3 when the
 *	delivery could not be made (no route, no connection, TLS required
 *	but failed; every queued recipient then carries the reason) or
 *	the store failed.
 * SEE ALSO
 *	odmrctl(8), turn_flush(3), smtp_etrn(3)
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "loop.h"
#include "tls.h"
#include "work.h"
#include "xmalloc.h"

#include "odmr_conf.h"
#include "odmrctl.h"
#include "queue.h"
#include "turn_bounce.h"
#include "turn_flush.h"

#define ODMRCTL_FLUSH_THREADS	2
#define ODMRCTL_FLUSH_CLAIM_TTL	(2 * 60 * 60)	/* seconds */

enum {
	FLUSH_OPT_VERBOSE = 1,
};

static const struct odmrctl_opt odmrctl_flush_opts[] = {
	{ "-v", 0, FLUSH_OPT_VERBOSE },
	{ "--verbose", 0, FLUSH_OPT_VERBOSE },
	{ NULL, 0, 0 },
};

struct odmrctl_flush {
	struct turn_flush *flush;
	struct turn_flush_result result;
	int		 have_result;
};

/* odmrctl_flush_done - the flush is over: keep its result, stop */
static void
odmrctl_flush_done(void *arg, const struct turn_flush_result *r)
{
	struct odmrctl_flush *of = arg;

	of->result = *r;
	of->have_result = 1;
	of->flush = NULL;
	loop_break();
}

/* odmrctl_flush_signal - SIGINT, SIGTERM: close now, keep the mail */
static void
odmrctl_flush_signal(int signo, void *arg)
{
	struct odmrctl_flush *of = arg;

	(void)signo;
	turn_flush_abort(&of->flush);
}

/* odmrctl_flush_report - the one line, and the exit code */
static int
odmrctl_flush_report(const char *domain, const struct turn_flush_result *r)
{
	const struct turn_result *t = &r->turn;

	switch (r->status) {
	case TURN_FLUSH_DONE:
		printf("%s: delivered %u, deferred %u, failed %u recipients"
		    " via %s%s\n", domain, t->rcpt_delivered, t->rcpt_deferred,
		    t->rcpt_failed, r->relay, t->tls ? " (TLS)" : "");
		return ODMRCTL_EXIT_OK;
	case TURN_FLUSH_BUSY:
		odmrctl_err("flush: %s is being delivered by %s", domain,
		    r->busy_holder);
		return ODMRCTL_EXIT_NOTFOUND;
	case TURN_FLUSH_FAILED:
		odmrctl_err("flush: %s: delivered %u, deferred %u, failed %u"
		    " recipients; not completed: %s%s", domain,
		    t->rcpt_delivered, t->rcpt_deferred, t->rcpt_failed,
		    r->error, r->deferred_recorded > 0 ?
		    " (recorded on every queued recipient)" : "");
		return ODMRCTL_EXIT_STORE;
	case TURN_FLUSH_ERROR:
		odmrctl_err("flush: %s: %s", domain, r->error);
		return ODMRCTL_EXIT_STORE;
	}
	return ODMRCTL_EXIT_STORE;
}

/* odmrctl_flush_run - the loop, the pool and the flush itself */
static int
odmrctl_flush_run(struct odmrctl *ctl, const struct queue_domain *dom)
{
	const struct odmr_conf *c = ctl->conf;
	struct odmrctl_flush of;
	struct turn_flush_params p;
	struct work_pool *pool;
	struct tls_ctx *tls = NULL;
	char holder[TURN_FLUSH_HOLDER_MAX], sid[32];
	const char *err;
	char *terr = NULL;
	int rc;

	memset(&of, 0, sizeof(of));
	if (loop_init(&terr) == -1) {
		odmrctl_err("flush: %s", terr);
		free(terr);
		return ODMRCTL_EXIT_STORE;
	}
	if (dom->tls != QUEUE_TLS_NONE && (tls = tls_client_new(
	    dom->tls == QUEUE_TLS_VERIFY ? TLS_MODE_VERIFY : TLS_MODE_MAY,
	    c->tls_ca_file, &terr)) == NULL) {
		odmrctl_err("flush: tls_ca_file: %s", terr);
		free(terr);
		loop_free();
		return ODMRCTL_EXIT_STORE;
	}
	pool = work_pool_new("flush", ODMRCTL_FLUSH_THREADS);
	(void)snprintf(sid, sizeof(sid), "odmrctl-%ld", (long)getpid());
	(void)snprintf(holder, sizeof(holder), "odmrctl[%ld] flush",
	    (long)getpid());
	memset(&p, 0, sizeof(p));
	p.queue = ctl->q;
	p.pool = pool;
	p.session_id = sid;
	p.helo_name = c->hostname;
	p.domain = dom->name;
	p.route = dom->route != NULL ? dom->route : "mx";
	/* queue_tls and tls_mode list the same policies in one order */
	p.tls = (enum tls_mode)dom->tls;
	p.tls_ctx = tls;
	p.dns_servers = c->dns_servers;
	p.connect_timeout_ms = (unsigned)c->connect_timeout * 1000;
	p.dsn = 1;		/* a 5xx tells the sender, as with ETRN */
	p.postmaster = c->postmaster;
	p.holder = holder;
	p.claim_ttl = ODMRCTL_FLUSH_CLAIM_TTL;
	p.done = odmrctl_flush_done;
	p.arg = &of;
	err = "cannot install the signal handlers";
	if (loop_signal(SIGINT, odmrctl_flush_signal, &of) == -1 ||
	    loop_signal(SIGTERM, odmrctl_flush_signal, &of) == -1 ||
	    (of.flush = turn_flush_start(&p, &err)) == NULL) {
		odmrctl_err("flush: %s: cannot start: %s", dom->name, err);
		rc = ODMRCTL_EXIT_STORE;
	} else {
		(void)loop_run();
		rc = of.have_result ? odmrctl_flush_report(dom->name,
		    &of.result) : ODMRCTL_EXIT_STORE;
	}
	work_pool_free(&pool);
	tls_ctx_free(&tls);
	loop_free();
	return rc;
}

/* odmrctl_flush - "flush DOMAIN": deliver now, as ETRN would */
int
odmrctl_flush(struct odmrctl *ctl, int argc, char **argv)
{
	struct odmrctl_args a;
	struct queue_domain dom;
	struct queue_error qerr;
	enum queue_status st;
	char name[DNAME_MAX + 1];
	const char *val, *operand = NULL;
	int id, rc, any = 0, verbose = 0;

	odmrctl_args_init(&a, ctl, argc, argv);
	while ((id = odmrctl_args_next(&a, odmrctl_flush_opts, &val)) !=
	    ODMRCTL_ARG_END) {
		if (id == ODMRCTL_ARG_ERROR)
			return ODMRCTL_EXIT_USAGE;
		if (id == FLUSH_OPT_VERBOSE)
			verbose = 1;
		else if (operand != NULL)
			return odmrctl_syntax_err(ctl, "one domain at a time");
		else
			operand = val;
	}
	if (operand == NULL)
		return odmrctl_syntax_err(ctl, "which domain?");
	if ((rc = odmrctl_domain_arg(ctl, operand, name)) != ODMRCTL_EXIT_OK)
		return rc;
	if (odmrctl_store(ctl, &rc) == -1)
		return rc;
	memset(&dom, 0, sizeof(dom));
	if ((st = queue_domain_get(ctl->q, name, &dom, &qerr)) != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "flush: %s", name);
	rc = ODMRCTL_EXIT_OK;
	if (turn_bounce_is_dsn_domain(name)) {
		odmrctl_err("flush: %s holds odmrd's DSNs: odmrd delivers them"
		    " every bounce_interval, to bounce_relay or each"
		    " recipient's MX", name);
		rc = ODMRCTL_EXIT_NOTFOUND;
	} else if (dom.route != NULL && strcmp(dom.route, "client") == 0) {
		odmrctl_err("flush: %s has --route client: it is delivered"
		    " to the site's address when the site sends ETRN", name);
		rc = ODMRCTL_EXIT_NOTFOUND;
	} else if ((st = queue_deliverable(ctl->q, name, &any, &qerr)) !=
	    QUEUE_OK)
		rc = odmrctl_store_err(st, &qerr, "flush: %s", name);
	else if (!any) {
		printf("%s: no mail to deliver\n", name);
		rc = ODMRCTL_EXIT_NOTFOUND;
	} else {
		if (verbose)
			log_set_level(LOG_LEVEL_INFO);
		rc = odmrctl_flush_run(ctl, &dom);
	}
	queue_domain_clear(&dom);
	return rc;
}
