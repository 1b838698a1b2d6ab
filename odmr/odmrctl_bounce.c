/*
 * NAME
 *	odmrctl_bounce 3 - "odmrctl bounce ID...": fail messages now and
 *	tell their senders
 * SYNOPSIS
 *	odmrctl bounce ID...
 * DESCRIPTION
 *	Each message's recipients still queued or held are failed, and
 *	their sender gets a failure DSN (turn_bounce(3): RFC 3464, status
 *	5.0.0, "returned by the administrator"), subject to the NOTIFY
 *	each recipient asked for. The DSN is queued first, then the
 *	outcome recorded, so a crash in between repeats the DSN rather
 *	than losing it. odmrd delivers the DSN with its next bounce round
 *	(bounce_interval); with odmrd stopped it waits in the store, under
 *	the DSN domain, where "odmrctl queue" shows it. A message from the
 *	null sender is reported to the postmaster of odmrd.conf, if set.
 * DIAGNOSTICS
 *	Exit 0 when every ID was bounced, 1 when one was not found or had
 *	nothing left to bounce, 2 on a usage error, 3 on a store error.
 * SEE ALSO
 *	odmrctl(8), turn_bounce(3), turn_dsn(3)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compat.h"
#include "xmalloc.h"

#include "odmr_conf.h"
#include "odmrctl.h"
#include "queue.h"
#include "turn_bounce.h"

#define ODMRCTL_BOUNCE_TEXT	"5.0.0 message returned by the administrator"

/* odmrctl_bounce_one - fail one message's open recipients, with a DSN */
static int
odmrctl_bounce_one(struct odmrctl *ctl, const char *arg)
{
	struct queue_msg *m = NULL;
	struct turn_bounce_rcpt *br;
	struct queue_outcome *o;
	struct turn_bounce b;
	struct queue_error qerr;
	enum queue_status st;
	char why[256], dsnid[QUEUE_ID_LEN + 1];
	uint64_t qid;
	size_t i, n = 0;
	int rc = ODMRCTL_EXIT_OK;

	if (queue_id_parse(arg, &qid) == -1)
		return odmrctl_usage_err(ctl, "bad queue id '%s'", arg);
	if ((st = queue_get(ctl->q, qid, &m, &qerr)) != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "bounce: %s", arg);
	br = xcalloc(m->nrcpt, sizeof(*br));
	o = xcalloc(m->nrcpt, sizeof(*o));
	for (i = 0; i < m->nrcpt; i++) {
		if (m->rcpt[i].state != QUEUE_RCPT_QUEUED &&
		    m->rcpt[i].state != QUEUE_RCPT_HELD)
			continue;
		br[n].index = m->rcpt[i].index;
		br[n].status = "5.0.0";
		br[n].diagnostic = ODMRCTL_BOUNCE_TEXT;
		o[n].qid = m->qid;
		o[n].rcpt_index = m->rcpt[i].index;
		o[n].kind = QUEUE_OUTCOME_FAILED;
		o[n].text = ODMRCTL_BOUNCE_TEXT;
		n++;
	}
	if (n == 0) {
		odmrctl_err("bounce: %s has no recipient left to bounce", m->id);
		rc = ODMRCTL_EXIT_NOTFOUND;
		goto out;
	}
	memset(&b, 0, sizeof(b));
	b.queue = ctl->q;
	b.reporting_mta = ctl->conf->hostname;
	b.postmaster = ctl->conf->postmaster;
	b.qid = m->qid;
	b.kind = TURN_DSN_FAILURE;
	b.rcpts = br;
	b.nrcpt = n;
	b.now = (uint64_t)time(NULL);
	switch (turn_bounce_queue(&b, why, sizeof(why))) {
	case TURN_BOUNCE_QUEUED:
		queue_id_format(b.dsn_qid, dsnid);
		printf("%s: %zu recipient(s) bounced; DSN %s queued to <%s>\n",
		    m->id, n, dsnid, why);
		break;
	case TURN_BOUNCE_NONE:
		printf("%s: %zu recipient(s) bounced; no DSN (NOTIFY)\n",
		    m->id, n);
		break;
	case TURN_BOUNCE_LOST:
		printf("%s: %zu recipient(s) bounced; no DSN: %s\n", m->id, n,
		    why);
		break;
	case TURN_BOUNCE_ERROR:
		odmrctl_err("bounce: %s: %s; nothing changed", m->id, why);
		rc = ODMRCTL_EXIT_STORE;
		goto out;
	}
	if ((st = queue_record(ctl->q, o, n, &qerr)) != QUEUE_OK)
		rc = odmrctl_store_err(st, &qerr, "bounce: %s", m->id);
out:
	free(br);
	free(o);
	queue_msg_free(&m);
	return rc;
}

/* odmrctl_bounce - "bounce ID...": fail the messages, DSN to senders */
int
odmrctl_bounce(struct odmrctl *ctl, int argc, char **argv)
{
	int i, rc, worst = ODMRCTL_EXIT_OK;

	if (argc < 1)
		return odmrctl_syntax_err(ctl, "which message?");
	if (odmrctl_store(ctl, &rc) == -1)
		return rc;
	for (i = 0; i < argc; i++) {
		rc = odmrctl_bounce_one(ctl, argv[i]);
		if (rc > worst)
			worst = rc;
	}
	return worst;
}
