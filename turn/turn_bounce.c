/*
 * NAME
 *	turn_bounce 3 - from outcomes to a queued DSN, and the DSN domain
 * SYNOPSIS
 *	#include "turn_bounce.h"
 * DESCRIPTION
 *	See turn_bounce.h.
 * SEE ALSO
 *	turn_dsn(3), queue(3)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "compat.h"
#include "xmalloc.h"

#include "queue.h"
#include "turn_bounce.h"
#include "turn_dsn.h"

#define TURN_BOUNCE_RETURN_MAX	(1024 * 1024)	/* octets returned whole */

/* turn_bounce_is_dsn_domain - is key the DSN domain? */
int
turn_bounce_is_dsn_domain(const char *key)
{
	return key != NULL && strcasecmp(key, TURN_BOUNCE_DOMAIN) == 0;
}

/* turn_bounce_set_route - domain update: the DSN domain's route */
static void
turn_bounce_set_route(struct queue_domain *d, void *arg)
{
	free(d->route);
	d->route = xstrdup(arg);
	d->etrn = QUEUE_ETRN_OFF;
}

/* turn_bounce_domain - create the DSN domain if need be; set its route */
enum queue_status
turn_bounce_domain(struct queue *q, const char *route,
    struct queue_error *err)
{
	struct queue_domain d;
	char *owners[] = { (char *)TURN_BOUNCE_OWNER };
	enum queue_status st;
	const char *r = route != NULL && route[0] != '\0' ? route : "mx";

	memset(&d, 0, sizeof(d));
	st = queue_domain_get(q, TURN_BOUNCE_DOMAIN, &d, err);
	if (st == QUEUE_OK) {
		int same = d.route != NULL && strcmp(d.route, r) == 0;

		queue_domain_clear(&d);
		if (same)
			return QUEUE_OK;
		return queue_domain_update(q, TURN_BOUNCE_DOMAIN,
		    turn_bounce_set_route, (void *)r, err);
	}
	if (st != QUEUE_NOTFOUND)
		return st;
	memset(&d, 0, sizeof(d));
	(void)strlcpy(d.name, TURN_BOUNCE_DOMAIN, sizeof(d.name));
	d.owners = owners;
	d.nowners = 1;
	d.etrn = QUEUE_ETRN_OFF;
	d.route = (char *)r;
	d.tls = QUEUE_TLS_MAY;
	st = queue_domain_add(q, &d, err);
	return st == QUEUE_EXISTS ? QUEUE_OK : st;
}

struct turn_bounce_body {
	struct turn_dsn	*dsn;
	const char	*error;
};

/* turn_bounce_chunk - feed one stored chunk to the builder */
static int
turn_bounce_chunk(const void *data, size_t len, void *arg)
{
	struct turn_bounce_body *bb = arg;

	if (turn_dsn_original(bb->dsn, data, len, &bb->error) == -1)
		return -1;
	return 0;
}

/* turn_bounce_enqueue - the DSN text into the DSN domain, from <> */
static enum queue_status
turn_bounce_enqueue(struct turn_bounce *b, const char *to,
    const struct buf *text, int eightbit, int smtputf8,
    struct queue_error *err)
{
	enum queue_status st;
	struct queue_msg m;
	struct queue_rcpt r;

	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	r.addr = (char *)to;
	r.notify = 0;	/* a failing DSN reaches the postmaster */
	(void)strlcpy(r.domain, TURN_BOUNCE_DOMAIN, sizeof(r.domain));
	m.sender = (char *)"";
	m.ret = QUEUE_RET_DEFAULT;
	m.body = eightbit ? QUEUE_BODY_8BITMIME : QUEUE_BODY_7BIT;
	m.smtputf8 = smtputf8;
	m.client_addr = (char *)"127.0.0.1";
	m.helo = (char *)b->reporting_mta;
	m.nrcpt = 1;
	m.rcpt = &r;
	st = queue_enqueue_mem(b->queue, &m, text->data, text->len, err);
	if (st == QUEUE_OK)
		b->dsn_qid = m.qid;
	return st;
}

/* turn_bounce_queue - build and queue the DSN for some recipients */
enum turn_bounce_status
turn_bounce_queue(struct turn_bounce *b, char *why, size_t whysz)
{
	struct queue_msg *m = NULL, copy;
	struct turn_dsn_rcpt *dr = NULL;
	struct turn_dsn_params p;
	struct turn_bounce_body bb;
	struct queue_error err;
	struct buf text;
	enum queue_status st;
	enum turn_bounce_status rc = TURN_BOUNCE_NONE;
	const char *to, *e;
	size_t i, k, n = 0;
	int lost_only = 0;

	why[0] = '\0';
	b->dsn_qid = 0;
	b->double_bounce = 0;
	memset(&bb, 0, sizeof(bb));
	buf_init(&text);
	if ((st = queue_get(b->queue, b->qid, &m, &err)) != QUEUE_OK) {
		(void)snprintf(why, whysz, "cannot read the message: %s",
		    err.text);
		return st == QUEUE_NOTFOUND ? TURN_BOUNCE_NONE :
		    TURN_BOUNCE_ERROR;
	}
	to = m->sender;
	if (to[0] == '\0') {
		/* never to <>: a failure goes to the postmaster, once */
		if (b->kind != TURN_DSN_FAILURE)
			goto out;
		to = b->postmaster;
		lost_only = to == NULL || to[0] == '\0';
	}
	dr = xcalloc(b->nrcpt > 0 ? b->nrcpt : 1, sizeof(*dr));
	for (i = 0; i < b->nrcpt; i++) {
		for (k = 0; k < m->nrcpt; k++)
			if (m->rcpt[k].index == b->rcpts[i].index)
				break;
		if (k == m->nrcpt)
			continue;
		if (m->sender[0] != '\0' &&
		    !turn_dsn_wanted(&m->rcpt[k], b->kind))
			continue;
		if (m->sender[0] == '\0' && !lost_only &&
		    strcasecmp(m->rcpt[k].addr, to) == 0) {
			lost_only = 1;	/* the postmaster's own bounce */
			continue;
		}
		dr[n].rcpt = &m->rcpt[k];
		dr[n].action = b->rcpts[i].action;
		dr[n].status = b->rcpts[i].status;
		dr[n].diagnostic = b->rcpts[i].diagnostic;
		dr[n].remote_mta = b->rcpts[i].remote_mta;
		n++;
	}
	if (n == 0 || (m->sender[0] == '\0' && lost_only)) {
		if (m->sender[0] == '\0' && (n > 0 || lost_only)) {
			(void)snprintf(why, whysz, "message %s from <> failed"
			    " and %s", m->id, b->postmaster != NULL &&
			    b->postmaster[0] != '\0' ? "it was a report to"
			    " the postmaster" : "no postmaster is set");
			rc = TURN_BOUNCE_LOST;
		}
		goto out;
	}
	copy = *m;
	copy.sender = (char *)to;	/* the report goes to whom it tells */
	memset(&p, 0, sizeof(p));
	p.reporting_mta = b->reporting_mta;
	p.msg = &copy;
	p.kind = b->kind;
	p.rcpts = dr;
	p.nrcpt = n;
	p.now = b->now != 0 ? b->now : (uint64_t)time(NULL);
	p.expires = b->expires;
	p.return_max = TURN_BOUNCE_RETURN_MAX;
	if ((bb.dsn = turn_dsn_new(&p, &e)) == NULL) {
		(void)snprintf(why, whysz, "cannot build the DSN: %s", e);
		rc = TURN_BOUNCE_ERROR;
		goto out;
	}
	st = queue_body_read(b->queue, b->qid, turn_bounce_chunk, &bb, &err);
	if (st != QUEUE_OK && bb.error == NULL) {
		(void)snprintf(why, whysz, "cannot read the message text: %s",
		    err.text);
		rc = TURN_BOUNCE_ERROR;
		goto out;
	}
	if (bb.error != NULL || turn_dsn_finish(bb.dsn, &text, &e) == -1) {
		(void)snprintf(why, whysz, "cannot build the DSN: %s",
		    bb.error != NULL ? bb.error : e);
		rc = TURN_BOUNCE_ERROR;
		goto out;
	}
	if ((st = turn_bounce_enqueue(b, to, &text, turn_dsn_8bit(bb.dsn),
	    turn_dsn_smtputf8(bb.dsn), &err)) != QUEUE_OK) {
		(void)snprintf(why, whysz, "cannot queue the DSN: %s",
		    err.text);
		rc = TURN_BOUNCE_ERROR;
		goto out;
	}
	b->double_bounce = m->sender[0] == '\0';
	(void)snprintf(why, whysz, "%s", to);
	rc = TURN_BOUNCE_QUEUED;
out:
	turn_dsn_free(&bb.dsn);
	buf_release(&text);
	free(dr);
	queue_msg_free(&m);
	return rc;
}
