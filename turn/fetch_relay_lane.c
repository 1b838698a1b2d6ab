/*
 * NAME
 *	fetch_relay_lane 3 - odmr-fetch's relay: the connections to the
 *	local MTA, and the texts they hold for a 354
 * SYNOPSIS
 *	#include "fetch_relay_int.h"
 *
 *	fetch_relay_lane_init(r, local, &params, max)
 *	fetch_relay_lane_pick(r)
 *	fetch_relay_lane_hold(r, slot)
 *	fetch_relay_lane_text(r, data, len)
 *	fetch_relay_lane_dot(r)
 *	fetch_relay_lane_end(r)
 * DESCRIPTION
 *	The lane part of fetch_relay 3. A lane is one connection to the
 *	local MTA; each transaction of the provider's goes through one
 *	lane, and r->lane is the lane of the transaction being read.
 *	Replies owed to the provider stay in the one FIFO of fetch_relay.c,
 *	each slot naming the lane that owes its reply, so that replies
 *	still go out in command order whatever lane answers first.
 *
 *	Why more than one. Toward a local MTA without CHUNKING a BDAT
 *	message becomes DATA text, and the text may only follow the 354
 *	(RFC 2920 section 3.1): one round trip to the local MTA per
 *	message, in which nothing else moves on that connection. So a
 *	LAST first chunk of at most FETCH_RELAY_HIWAT octets is held: DATA
 *	goes, the chunk is read at once and kept (our Received: field
 *	first, dot-stuffed, the final "."), and the provider's next
 *	transaction may go to another lane meanwhile. The 354 lets the
 *	text go (fetch_relay_lane_held_data()); a refusal becomes the
 *	chunk's reply, the kept text is dropped, and the lane sends RSET
 *	before its next MAIL (its MAIL and RCPT are still open there).
 *
 *	fetch_relay_lane_pick() runs at MAIL: the current lane if it holds
 *	nothing, else another ready lane that holds nothing, else a new
 *	lane is opened (up to --local-connections, never again once one
 *	could not be) and MAIL waits (FETCH_RELAY_WAIT) for a lane to be
 *	ready or to let its text go. A new lane must offer what lane 0
 *	offered (the EHLO reply the provider saw was made from it); if
 *	not, it is closed and no more are opened. One that cannot be made
 *	is logged and the relay goes on with the lanes it has. Once a
 *	ready lane is lost, every lane is dropped and the provider gets
 *	421, as with one connection: what was not answered stays queued.
 *
 *	fetch_relay_lane_end() ends every lane when the provider is gone:
 *	QUIT where no transaction is open, a plain close where one is (so
 *	that a half message is never delivered); r->local_done once all
 *	are closed.
 * SEE ALSO
 *	fetch_relay(3), fetch_local(3), RFC 2920, RFC 3030, RFC 5321
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "xmalloc.h"

#include "fetch.h"
#include "fetch_local.h"
#include "fetch_relay_int.h"
#include "fetch_reply.h"

static void fetch_relay_lane_ready(void *);
static void fetch_relay_lane_reply(void *, const struct fetch_reply *);
static void fetch_relay_lane_drained(void *);
static void fetch_relay_lane_lost(void *, const char *);
static void fetch_relay_lane_closed(void *);

static const struct fetch_local_ops fetch_relay_lane_ops = {
	.ready = fetch_relay_lane_ready,
	.reply = fetch_relay_lane_reply,
	.drained = fetch_relay_lane_drained,
	.lost = fetch_relay_lane_lost,
	.closed = fetch_relay_lane_closed,
};

/* fetch_relay_lane_init - lane 0 is the connection made before the turn */
void
fetch_relay_lane_init(struct fetch_relay *r, struct fetch_local *local,
    const struct fetch_local_params *lp, unsigned max)
{
	unsigned i;

	for (i = 0; i < FETCH_RELAY_LANES_MAX; i++) {
		r->lanes[i].r = r;
		r->lanes[i].idx = i;
		buf_init(&r->lanes[i].hold);
	}
	r->lanes_max = max < 1 ? 1 : max > FETCH_RELAY_LANES_MAX ?
	    FETCH_RELAY_LANES_MAX : max;
	if (lp != NULL) {
		r->lparams = *lp;
		r->lparams.host = lp->host != NULL ? xstrdup(lp->host) : NULL;
		r->lparams.path = lp->path != NULL ? xstrdup(lp->path) : NULL;
		r->lparams.helo = xstrdup(lp->helo != NULL ? lp->helo :
		    r->hostname);
	} else
		r->lanes_max = 1;	/* nothing to open more with */
	r->lane = &r->lanes[0];
	r->lanes[0].local = local;
	r->lanes[0].ready = 1;
	r->result.local_connections = 1;
	r->nlanes = 1;
	fetch_local_set_ops(local, &fetch_relay_lane_ops, &r->lanes[0]);
}

/* fetch_relay_lane_owed - replies still owed by every lane */
unsigned
fetch_relay_lane_owed(const struct fetch_relay *r)
{
	unsigned i, n = 0;

	for (i = 0; i < r->nlanes; i++)
		if (r->lanes[i].local != NULL)
			n += fetch_local_owed(r->lanes[i].local);
	return n;
}

/* fetch_relay_lane_queued - what the current lane has not sent yet */
size_t
fetch_relay_lane_queued(const struct fetch_relay *r)
{
	const struct fetch_relay_lane *l = r->lane;

	return l->hold.len + (l->local != NULL ? fetch_local_queued(l->local) :
	    0);
}

/* fetch_relay_lane_usable - ready, and room for one more held text */
static int
fetch_relay_lane_usable(const struct fetch_relay_lane *l)
{
	return l->ready && l->local != NULL && !l->discard &&
	    l->nheld < FETCH_RELAY_HELD_MAX;
}

/* fetch_relay_lane_open - one more connection to the local MTA */
static void
fetch_relay_lane_open(struct fetch_relay *r)
{
	struct fetch_relay_lane *l = &r->lanes[r->nlanes++];

	log_debug("relay event=lane-open lane=%u", l->idx);
	l->ready = 0;
	l->local = fetch_local_start(&r->lparams, &fetch_relay_lane_ops, l);
}

/*
 * fetch_relay_lane_pick - at MAIL: the lane that holds the fewest texts
 * (the current one when it ties) becomes r->lane, with a RSET of ours in
 * front where one may be needed; FETCH_RELAY_WAIT if no lane can take it
 */
int
fetch_relay_lane_pick(struct fetch_relay *r)
{
	struct fetch_relay_lane *l = NULL, *c;
	unsigned i;

	if (fetch_relay_lane_usable(r->lane))
		l = r->lane;
	for (i = 0; i < r->nlanes; i++) {
		c = &r->lanes[i];
		if (fetch_relay_lane_usable(c) && (l == NULL ||
		    c->nheld < l->nheld))
			l = c;
	}
	/* every lane waits for a 354: one more, if allowed */
	if ((l == NULL || l->nheld > 0) && r->nlanes < r->lanes_max &&
	    !r->lanes_failed && r->lanes[r->nlanes - 1].ready)
		fetch_relay_lane_open(r);
	if (l == NULL)
		return FETCH_RELAY_WAIT;
	r->lane = l;
	/* behind a held text, RSET: should its DATA be refused, its MAIL
	 * and RCPT would still be open there */
	if (l->nheld > 0 || l->need_rset) {
		l->need_rset = 0;
		l->dot_sent = 0;
		(void)fetch_relay_forward(r, FETCH_RELAY_VERB_SILENT, "RSET");
	}
	return FETCH_RELAY_DONE;
}

/* fetch_relay_lane_may_hold - may this LAST first chunk be held? */
int
fetch_relay_lane_may_hold(const struct fetch_relay *r, unsigned long long size)
{
	/* held DATA is pipelined behind RCPT: PIPELINING is needed */
	return r->lanes_max > 1 && (r->lext.flags & FETCH_EXT_PIPELINING) &&
	    size <= FETCH_RELAY_HIWAT && r->lane->local != NULL &&
	    r->lane->nheld < FETCH_RELAY_HELD_MAX;
}

/* fetch_relay_lane_cmd - a command line on the current lane: sent or kept */
int
fetch_relay_lane_cmd(struct fetch_relay *r, const char *line)
{
	struct fetch_relay_lane *l = r->lane;
	struct fetch_relay_held *h;

	if (l->local == NULL)
		return -1;
	if (l->nheld == 0)
		return fetch_local_cmd(l->local, "%s", line);
	h = &l->held[l->nheld - 1];
	if (!h->dot) {
		/* it would land inside the text: cannot happen */
		log_warnx("relay event=relay-desync lane=%u command=\"%s\"",
		    l->idx, line);
		return -1;
	}
	log_debug("local=%s event=local-hold line=\"%s\"",
	    fetch_local_name(l->local), line);
	buf_puts(&l->hold, line);
	buf_append(&l->hold, "\r\n", 2);
	h->len += strlen(line) + 2;
	h->owed++;
	return 0;
}

/*
 * fetch_relay_lane_hold - DATA is on its way on the current lane: keep
 * the text (our Received: field first) until its 354; slot takes the
 * end's reply
 */
void
fetch_relay_lane_hold(struct fetch_relay *r, size_t slot)
{
	struct fetch_relay_lane *l = r->lane;
	struct fetch_relay_held *h = &l->held[l->nheld++];

	memset(h, 0, sizeof(*h));
	h->slot = slot;
	buf_append(&l->hold, r->received.data, r->received.len);
	h->len = h->text = r->received.len;
}

/* fetch_relay_lane_text - text for the current lane: kept, dropped or sent */
void
fetch_relay_lane_text(struct fetch_relay *r, const void *p, size_t n)
{
	struct fetch_relay_lane *l = r->lane;
	struct fetch_relay_held *h;

	if (l->discard || l->local == NULL)
		return;
	if (l->nheld == 0) {
		/* a failure is reported by the local side's lost() */
		(void)fetch_local_text(l->local, p, n);
		return;
	}
	h = &l->held[l->nheld - 1];
	buf_append(&l->hold, p, n);
	h->len += n;
	h->text += n;
}

/* fetch_relay_lane_dot - the final "." on the current lane; one reply */
void
fetch_relay_lane_dot(struct fetch_relay *r)
{
	struct fetch_relay_lane *l = r->lane;
	struct fetch_relay_held *h;

	if (l->discard) {
		/* DATA was refused; the chunk's reply is that */
		l->discard = 0;
		return;
	}
	if (l->local == NULL)
		return;
	if (l->nheld > 0) {
		h = &l->held[l->nheld - 1];
		buf_append(&l->hold, ".\r\n", 3);
		h->len += 3;
		h->text += 3;
		h->owed++;
		h->dot = 1;
	} else {
		(void)fetch_local_text(l->local, ".\r\n", 3);
		/* SMTP: one reply; LMTP: one recipient, so one */
		fetch_local_expect(l->local, 1);
	}
	l->dot_sent = 1;
}

/*
 * fetch_relay_lane_held_data - the reply to DATA for the oldest held
 * text: a 354 lets it go with the commands behind it; a refusal is the
 * chunk's reply, the text is dropped and only the commands go
 */
void
fetch_relay_lane_held_data(struct fetch_relay_lane *l,
    const struct fetch_reply *rep)
{
	struct fetch_relay *r = l->r;
	struct fetch_relay_held h;
	struct fetch_relay_slot *s;
	size_t from = 0;

	if (l->nheld == 0) {
		/* fetch_local counts what it owes: this cannot happen */
		log_warnx("relay event=relay-desync lane=%u reply=\"%u %s\"",
		    l->idx, rep->code, rep->text);
		return;
	}
	h = l->held[0];
	s = fetch_relay_slot(r, h.slot);
	l->nheld--;
	memmove(&l->held[0], &l->held[1], l->nheld * sizeof(l->held[0]));
	if (rep->code != 354) {
		fetch_relay_map(rep, s->line, sizeof(s->line));
		s->done = 1;
		fetch_relay_msg_done(r, s, rep);
		/* MAIL and RCPT are still open there: the RSET queued
		 * behind the text (fetch_relay_lane_pick()) closes them,
		 * or one goes before the next MAIL */
		l->need_rset = h.len == h.text;
		l->dot_sent = 0;
		if (!h.dot) {
			/* the chunk is still coming: the rest goes nowhere */
			l->discard = 1;
			buf_consume(&l->hold, h.len);
			return;
		}
		from = h.text;
		h.owed--;
	}
	if (l->local != NULL && h.len > from) {
		(void)fetch_local_text(l->local, l->hold.data + from,
		    h.len - from);
		fetch_local_expect(l->local, h.owed);
	}
	buf_consume(&l->hold, h.len);
}

/* fetch_relay_lane_ready - a new lane is greeted: usable if it matches */
static void
fetch_relay_lane_ready(void *arg)
{
	struct fetch_relay_lane *l = arg;
	struct fetch_relay *r = l->r;
	const struct fetch_ext *e = fetch_local_ext(l->local);
	unsigned need = FETCH_EXT_PIPELINING | FETCH_EXT_8BITMIME |
	    FETCH_EXT_SMTPUTF8 | FETCH_EXT_DSN;

	if ((e->flags & need) != (r->lext.flags & need) ||
	    (r->lext.size != 0 && (e->size == 0 || e->size < r->lext.size)) ||
	    (e->flags & FETCH_EXT_CHUNKING) !=
	    (r->lext.flags & FETCH_EXT_CHUNKING)) {
		/* the provider was told what lane 0 offers */
		log_warnx("relay event=lane-refused lane=%u reason=\"the local "
		    "MTA offers other extensions on this connection\"",
		    l->idx);
		r->lanes_failed = 1;
		if (fetch_local_quit(l->local) == -1)
			fetch_local_free(&l->local);
		fetch_relay_resume(r);
		return;
	}
	l->ready = 1;
	r->result.local_connections++;
	log_info("relay event=lane-ready lane=%u local=%s", l->idx,
	    fetch_local_name(l->local));
	fetch_relay_resume(r);
}

/* fetch_relay_lane_reply - a lane's reply: the relay matches it to a slot */
static void
fetch_relay_lane_reply(void *arg, const struct fetch_reply *rep)
{
	fetch_relay_local_reply(arg, rep);
}

/* fetch_relay_lane_drained - a lane's output left: read again */
static void
fetch_relay_lane_drained(void *arg)
{
	struct fetch_relay_lane *l = arg;

	fetch_relay_unthrottle(l->r);
}

/* fetch_relay_lane_live - lanes still connected or connecting */
static unsigned
fetch_relay_lane_live(const struct fetch_relay *r)
{
	unsigned i, n = 0;

	for (i = 0; i < r->nlanes; i++)
		if (r->lanes[i].local != NULL)
			n++;
	return n;
}

/* fetch_relay_lane_lost - a lane went away */
static void
fetch_relay_lane_lost(void *arg, const char *why)
{
	struct fetch_relay_lane *l = arg;
	struct fetch_relay *r = l->r;

	fetch_local_free(&l->local);
	if (!l->ready) {
		/* one more connection could not be made: go on without */
		log_warnx("relay event=lane-failed lane=%u reason=\"%s\"",
		    l->idx, why);
		r->lanes_failed = 1;
	} else
		fetch_relay_local_lost(r, l->idx, why);
	if (fetch_relay_lane_live(r) == 0) {
		r->local_done = 1;
		fetch_relay_finish(r);
	} else if (r->io != NULL && !r->provider_gone)
		fetch_relay_resume(r);
}

/* fetch_relay_lane_closed - a lane's QUIT was answered */
static void
fetch_relay_lane_closed(void *arg)
{
	struct fetch_relay_lane *l = arg;
	struct fetch_relay *r = l->r;

	fetch_local_free(&l->local);
	if (fetch_relay_lane_live(r) > 0) {
		/* a lane refused at its greeting: the rest goes on */
		if (r->io != NULL && !r->provider_gone)
			fetch_relay_resume(r);
		return;
	}
	r->local_done = 1;
	fetch_relay_finish(r);
}

/* fetch_relay_lane_drop_all - close every lane now, without QUIT */
void
fetch_relay_lane_drop_all(struct fetch_relay *r)
{
	unsigned i;

	for (i = 0; i < r->nlanes; i++) {
		fetch_local_free(&r->lanes[i].local);
		r->lanes[i].nheld = 0;
		buf_reset(&r->lanes[i].hold);
	}
	r->local_done = 1;
}

/*
 * fetch_relay_lane_end - the provider is gone: QUIT each lane, but close
 * one with a transaction open, so that half a message is not kept
 */
void
fetch_relay_lane_end(struct fetch_relay *r, int cur_open)
{
	struct fetch_relay_lane *l;
	unsigned i;

	for (i = 0; i < r->nlanes; i++) {
		l = &r->lanes[i];
		if (l->local == NULL)
			continue;
		if (l->nheld > 0 || l->discard || !l->ready ||
		    (l == r->lane && cur_open)) {
			fetch_local_free(&l->local);
			continue;
		}
		if (fetch_local_quit(l->local) == -1)
			fetch_local_free(&l->local);
		/* else closed() or lost() follows */
	}
	if (fetch_relay_lane_live(r) == 0) {
		r->local_done = 1;
		fetch_relay_finish(r);
	}
}

/* fetch_relay_lane_release - free every lane, at the relay's end */
void
fetch_relay_lane_release(struct fetch_relay *r)
{
	unsigned i;

	for (i = 0; i < FETCH_RELAY_LANES_MAX; i++) {
		fetch_local_free(&r->lanes[i].local);
		buf_release(&r->lanes[i].hold);
	}
	free((char *)r->lparams.host);
	free((char *)r->lparams.path);
	free((char *)r->lparams.helo);
	memset(&r->lparams, 0, sizeof(r->lparams));
}
