/*
 * NAME
 *	turn_session 3 - the SMTP client that delivers customer domains'
 *	queues over one connection (ATRN role reversal, ETRN)
 * SYNOPSIS
 *	#include "turn_session.h"
 * DESCRIPTION
 *	The client state machine of RFC 2645 section 4 ("the server
 *	becomes the client") and of an ETRN flush. Its state is an enum
 *	with a names table, a description table ("sending RCPT TO") for
 *	error texts, and a timeout table; every change goes through
 *	turn_enter_state(), which logs old -> new at debug level, sets the
 *	io timeout of the new state and reads from the customer only in
 *	states that wait for a reply. Replies are dispatched by state
 *	through turn_session_replies[].
 *
 *	Store work runs as jobs on the work pool (work 3h), in
 *	turn_session_store.c (turn_session_store 3): the list of queued
 *	message ids, each message's load, and the outcomes, recorded in
 *	batches while the next messages are sent. A job's completion hands
 *	the session back to the state machine (turn_session_next(),
 *	turn_session_ahead(), turn_session_quit()), or, once it is ending,
 *	to turn_session_maybe_finish(). All records are done before QUIT
 *	counts as completion. When the list is done the domains are walked
 *	again for mail that arrived meanwhile, up to TURN_ROUNDS_MAX times.
 *
 *	With PIPELINING (RFC 2920) MAIL, every RCPT and DATA (or the first
 *	BDAT chunk, RFC 3030) go out in one write: the io's output buffer
 *	is written only once the loop regains control, so one command
 *	group is one write(2), and TCP_NODELAY sends it at once. Replies
 *	are then taken in order. Without PIPELINING each command waits for
 *	its reply. BDAT is used whenever the customer offers CHUNKING;
 *	chunks are TURN_BDAT_CHUNK octets, pipelined when the customer
 *	offers PIPELINING. Long DATA text is queued TURN_WRITE_CHUNK
 *	octets at a time, on IO_LOWAT.
 *
 *	Transactions are pipelined back to back too (turn_session_ahead()):
 *	once a message's text (or BDAT LAST, or its RSET) is written, the
 *	next ones go without waiting for its replies, each opened with
 *	RSET so that it starts clean however the one before it ended. With
 *	BDAT whole messages of one chunk go, up to TURN_WINDOW of them and
 *	TURN_WINDOW_OCTETS of text; with DATA only the next group up to
 *	DATA, whose 354 must come first. cur is the transaction whose
 *	replies are awaited, sent[] those written behind it; when cur is
 *	done the oldest of sent[] takes its place in TURN_STATE_RESET, and
 *	the replies are taken by the same handlers as ever. A customer
 *	that refuses the RSET ends the session (its state is unknown).
 *
 *	Outcomes (RFC 5321 sections 3.3 and 4.2.5): a 5xx to RCPT fails
 *	that recipient, a 4xx defers it; a failed MAIL gives its reply to
 *	every recipient and is followed by RSET; the reply to the end of
 *	the text (or to the first refused BDAT chunk, or the last one)
 *	decides for every accepted recipient. Any other code than 2xx or
 *	5xx defers: when in doubt the message stays queued.
 *
 *	A 421, a timeout, a disconnection or a connection error ends the
 *	session at once (turn_session_lost()): the connection is closed,
 *	the message in progress has its accepted recipients deferred with
 *	the reason, and recipients whose RCPT was never answered, as those
 *	of every transaction written behind it, are left as they were.
 * SEE ALSO
 *	turn_session_store(3), turn_msg(3), turn_proto(3), queue(3), io(3),
 *	work(3), RFC 2645, RFC 5321, RFC 2920, RFC 3030
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "compat.h"
#include "dname.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

#include "queue.h"
#include "turn_msg.h"
#include "turn_proto.h"
#include "turn_session.h"
#include "turn_session_int.h"

#define TURN_WRITE_CHUNK	(256 * 1024)	/* DATA text per IO_LOWAT */
#define TURN_BDAT_CHUNK		(1024 * 1024)	/* octets per BDAT */
#define TURN_ROUNDS_MAX		8	/* walks for mail that came meanwhile */
#define TURN_HELO_MAX		255
#define TURN_WINDOW_OCTETS	(1024 * 1024)	/* their text, at most */
#define TURN_MIN		(60 * 1000)

const char *const turn_state_names[TURN_STATE_COUNT] = {
	[TURN_STATE_GREETING] = "greeting",
	[TURN_STATE_EHLO] = "ehlo",
	[TURN_STATE_HELO] = "helo",
	[TURN_STATE_STARTTLS] = "starttls",
	[TURN_STATE_TLS] = "tls",
	[TURN_STATE_LIST] = "list",
	[TURN_STATE_LOAD] = "load",
	[TURN_STATE_MAIL] = "mail",
	[TURN_STATE_RCPT] = "rcpt",
	[TURN_STATE_DATA] = "data",
	[TURN_STATE_TEXT] = "text",
	[TURN_STATE_DOT] = "dot",
	[TURN_STATE_BDAT] = "bdat",
	[TURN_STATE_LAST] = "last",
	[TURN_STATE_RSET] = "rset",
	[TURN_STATE_RESET] = "reset",
	[TURN_STATE_RECORD] = "record",
	[TURN_STATE_QUIT] = "quit",
	[TURN_STATE_END] = "end",
};

const char *const turn_state_descriptions[TURN_STATE_COUNT] = {
	[TURN_STATE_GREETING] = "waiting for the 220 greeting",
	[TURN_STATE_EHLO] = "sending EHLO",
	[TURN_STATE_HELO] = "sending HELO",
	[TURN_STATE_STARTTLS] = "sending STARTTLS",
	[TURN_STATE_TLS] = "in the TLS handshake",
	[TURN_STATE_LIST] = "listing the queued messages",
	[TURN_STATE_LOAD] = "reading the next message from the queue",
	[TURN_STATE_MAIL] = "sending MAIL FROM",
	[TURN_STATE_RCPT] = "sending RCPT TO",
	[TURN_STATE_DATA] = "sending DATA",
	[TURN_STATE_TEXT] = "sending the message text",
	[TURN_STATE_DOT] = "waiting for the DATA reply",
	[TURN_STATE_BDAT] = "sending BDAT",
	[TURN_STATE_LAST] = "waiting for the BDAT LAST reply",
	[TURN_STATE_RSET] = "sending RSET",
	[TURN_STATE_RESET] = "sending RSET before a pipelined transaction",
	[TURN_STATE_RECORD] = "recording the outcomes",
	[TURN_STATE_QUIT] = "sending QUIT",
	[TURN_STATE_END] = "finishing",
};

/* RFC 5321 4.5.3.2; 0 in a store state: the customer is not waited for */
const unsigned turn_session_timeout_default[TURN_STATE_COUNT] = {
	[TURN_STATE_GREETING] = 5 * TURN_MIN,
	[TURN_STATE_EHLO] = 5 * TURN_MIN,
	[TURN_STATE_HELO] = 5 * TURN_MIN,
	[TURN_STATE_STARTTLS] = 5 * TURN_MIN,
	[TURN_STATE_TLS] = 5 * TURN_MIN,
	[TURN_STATE_LIST] = 0,
	[TURN_STATE_LOAD] = 0,
	[TURN_STATE_MAIL] = 5 * TURN_MIN,
	[TURN_STATE_RCPT] = 5 * TURN_MIN,
	[TURN_STATE_DATA] = 2 * TURN_MIN,
	[TURN_STATE_TEXT] = 3 * TURN_MIN,
	[TURN_STATE_DOT] = 10 * TURN_MIN,
	[TURN_STATE_BDAT] = 3 * TURN_MIN,
	[TURN_STATE_LAST] = 10 * TURN_MIN,
	[TURN_STATE_RSET] = 5 * TURN_MIN,
	[TURN_STATE_RESET] = 5 * TURN_MIN,
	[TURN_STATE_RECORD] = 0,
	[TURN_STATE_QUIT] = 30 * 1000,
	[TURN_STATE_END] = 0,
};

/* the states that wait for a reply from the customer */
static const int turn_state_reads[TURN_STATE_COUNT] = {
	[TURN_STATE_GREETING] = 1, [TURN_STATE_EHLO] = 1,
	[TURN_STATE_HELO] = 1, [TURN_STATE_STARTTLS] = 1,
	[TURN_STATE_TLS] = 1,	/* the handshake reads; replies wait */
	[TURN_STATE_MAIL] = 1, [TURN_STATE_RCPT] = 1,
	[TURN_STATE_DATA] = 1, [TURN_STATE_DOT] = 1, [TURN_STATE_BDAT] = 1,
	[TURN_STATE_LAST] = 1,
	[TURN_STATE_RSET] = 1, [TURN_STATE_RESET] = 1,
	[TURN_STATE_QUIT] = 1,
};

typedef void (*turn_reply_fn)(struct turn_session *);

static void turn_session_end(struct turn_session *);
static void turn_session_lost(struct turn_session *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void turn_session_start_msg(struct turn_session *);

/* turn_enter_state - change state: log it, set timeout and reading */
void
turn_enter_state(struct turn_session *s, enum turn_state state)
{
	if (s->state != state)
		log_debug("session=%s event=turn-state from=%s to=%s", s->id,
		    turn_state_names[s->state], turn_state_names[state]);
	s->state = state;
	if (s->io == NULL)
		return;
	io_set_timeout(s->io, s->timeout_ms[state]);
	if (turn_state_reads[state])
		io_resume_read(s->io);
	else
		io_pause_read(s->io);
}

/* turn_session_error - the first reason the session stopped early */
void
turn_session_error(struct turn_session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->result.error[0] != '\0')
		return;
	va_start(ap, fmt);
	(void)vsnprintf(s->result.error, sizeof(s->result.error), fmt, ap);
	va_end(ap);
}

/* turn_kind - the outcome for a reply that is not a success */
static enum queue_outcome_kind
turn_kind(const struct turn_proto_reply *r)
{
	/* only 5xx is permanent; anything odd keeps the mail queued */
	return turn_proto_reply_class(r) == 5 ? QUEUE_OUTCOME_FAILED :
	    QUEUE_OUTCOME_DEFERRED;
}

/* turn_session_write - queue output; a failure ends the session */
static int
turn_session_write(struct turn_session *s, const void *p, size_t len)
{
	if (io_write(s->io, p, len) == -1) {
		turn_session_lost(s, "cannot write while %s: %s",
		    turn_state_descriptions[s->state], io_error(s->io));
		return -1;
	}
	return 0;
}

/* turn_session_cmd - send one command line */
static int
turn_session_cmd(struct turn_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* turn_session_cmd - send one command line */
static int
turn_session_cmd(struct turn_session *s, const char *fmt, ...)
{
	struct buf b;
	va_list ap;
	int n, rc;
	char line[1024];

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		turn_session_lost(s, "internal error: command too long");
		return -1;
	}
	buf_init(&b);
	buf_puts(&b, line);
	buf_puts(&b, "\r\n");
	rc = turn_session_write(s, b.data, b.len);
	buf_release(&b);
	return rc;
}

/* ---- the end ---- */

/* turn_session_drop - forget the messages not answered: still queued */
static void
turn_session_drop(struct turn_session *s)
{
	while (s->nsent > 0)
		turn_msg_free(&s->sent[--s->nsent]);
	while (s->nloaded > 0)
		turn_msg_free(&s->loaded[--s->nloaded]);
	s->sent_octets = s->loaded_octets = 0;
}

/* turn_session_orphan - the io's callback once the caller has it back */
static void
turn_session_orphan(struct io *io, enum io_event ev, void *arg)
{
	(void)io;
	(void)ev;
	(void)arg;
}

/* turn_session_free - release the session (the io is not ours) */
static void
turn_session_free(struct turn_session *s)
{
	size_t i;

	turn_msg_free(&s->cur);
	turn_session_drop(s);
	for (i = 0; i < s->ndomains; i++)
		free(s->domains[i]);
	free(s->domains);
	free(s->qids);
	free(s->seen);
	free(s->pending);	/* empty: every job ended before the finish */
	loop_timer_free(&s->record_timer);
	free(s->helo);
	free(s->tls_name);
	free(s->postmaster);
	free(s->rcpt_domain);
	free(s);
}

/* turn_session_finish - on the loop, every job done: summary, done() */
static void
turn_session_finish(void *arg)
{
	struct turn_session *s = arg;
	struct turn_result *r = &s->result;
	struct timespec now;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - s->started.tv_sec) +
	    (double)(now.tv_nsec - s->started.tv_nsec) / 1e9;
	r->completed = s->all_handled && s->quit_sent && r->error[0] == '\0';
	log_info("session=%s event=turn-end relay=%s completed=%s delivered=%u"
	    " deferred=%u failed=%u rcpt_delivered=%u rcpt_deferred=%u"
	    " rcpt_failed=%u store_errors=%u duration=%.3f%s%s%s", s->id,
	    s->relay, r->completed ? "yes" : "no", r->messages_delivered,
	    r->messages_deferred, r->messages_failed, r->rcpt_delivered,
	    r->rcpt_deferred, r->rcpt_failed, r->store_errors, secs,
	    r->error[0] ? " error=\"" : "", r->error, r->error[0] ? "\"" : "");
	if (s->io != NULL) {
		io_set_callback(s->io, turn_session_orphan, NULL);
		io_set_lowat(s->io, 0);
	}
	r->io_gone = s->io == NULL;
	s->done(s->arg, r);
	turn_session_free(s);
}

/* turn_session_maybe_finish - once nothing runs any more, post the end */
void
turn_session_maybe_finish(struct turn_session *s)
{
	if (!s->ending || s->jobs > 0 || s->finish_posted)
		return;
	s->finish_posted = 1;
	s->jobs++;	/* the posted finish holds the session */
	if (loop_post(turn_session_finish, s) == -1)
		turn_session_finish(s);
}

/* turn_session_end - no more protocol; finish once the jobs are done */
static void
turn_session_end(struct turn_session *s)
{
	turn_session_drop(s);
	turn_enter_state(s, TURN_STATE_END);
	s->ending = 1;
	turn_session_store_record_flush(s);
	turn_session_maybe_finish(s);
}

/* turn_session_close - close the connection now */
static void
turn_session_close(struct turn_session *s)
{
	if (s->io != NULL)
		io_free(&s->io);
	s->result.io_gone = 1;
}

/* turn_session_lost - the connection broke: keep what is known, end */
static void
turn_session_lost(struct turn_session *s, const char *fmt, ...)
{
	char why[TURN_SESSION_ERROR_MAX];
	va_list ap;
	size_t i;

	if (s->ending)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (s->state == TURN_STATE_QUIT) {
		/* QUIT went out: a missing 221 changes nothing */
		log_debug("session=%s event=turn-quit note=\"%s\"", s->id, why);
		turn_session_close(s);
		turn_session_end(s);
		return;
	}
	turn_session_error(s, "%s", why);
	log_info("session=%s event=turn-lost relay=%s state=%s reason=\"%s\"",
	    s->id, s->relay, turn_state_names[s->state], why);
	turn_session_close(s);
	turn_session_drop(s);
	if (s->cur != NULL) {
		/* accepted recipients were tried: deferred, not lost */
		for (i = 0; i < s->cur->nrcpt; i++)
			if (s->cur->rcpt[i].accepted)
				turn_msg_outcome(s->cur, i,
				    QUEUE_OUTCOME_DEFERRED, why);
		s->ending = 1;
		turn_session_store_record(s);
	}
	turn_session_end(s);
}

/* turn_session_fail - a refusal we cannot go on from: say so, QUIT */
static void
turn_session_fail(struct turn_session *s, const char *what)
{
	turn_session_error(s, "customer %s: %s", what, s->reply.text);
	log_info("session=%s event=turn-refused relay=%s state=%s"
	    " reason=\"%s\"", s->id, s->relay, turn_state_names[s->state],
	    s->result.error);
	turn_session_quit(s);
}

/* turn_session_quit - the last command */
void
turn_session_quit(struct turn_session *s)
{
	turn_session_drop(s);
	if (turn_session_cmd(s, "QUIT") == 0) {
		s->quit_sent = 1;
		turn_enter_state(s, TURN_STATE_QUIT);
	}
	turn_session_store_record_flush(s);
}

/* ---- one message ---- */

/* turn_session_resume - a pipelined transaction is next: its replies */
static void
turn_session_resume(struct turn_session *s)
{
	struct turn_msg *m = s->sent[0];

	memmove(s->sent, s->sent + 1, --s->nsent * sizeof(*s->sent));
	s->sent_octets -= m->text.len;
	s->cur = m;
	/* everything but the text of a DATA transaction went out */
	s->in_txn = 1;
	s->mail_ok = s->mail_replied = 0;
	s->rcpt_sent = m->nrcpt;
	s->rcpt_replies = 0;
	s->accepted = 0;
	s->dummy_dot = 0;
	s->text_off = m->bdat ? m->text.len : 0;
	s->chunks_sent = m->bdat ? 1 : 0;
	s->chunks_replied = 0;
	s->chunk_error = 0;
	s->last_sent = m->bdat;
	s->text_done = m->bdat;
	turn_enter_state(s, TURN_STATE_RESET);
	turn_session_ahead(s);
}

/* turn_session_next - the next message, the next walk, or QUIT */
void
turn_session_next(struct turn_session *s)
{
	if (s->ending)
		return;
	if (s->nsent > 0) {
		/* on the wire already: their replies come, stop or not */
		turn_session_resume(s);
		return;
	}
	if (s->stop) {
		turn_session_error(s, "stopped before the queue was empty");
		turn_session_quit(s);
		return;
	}
	if (s->nloaded > 0) {
		s->cur = s->loaded[0];
		memmove(s->loaded, s->loaded + 1, --s->nloaded *
		    sizeof(*s->loaded));
		s->loaded_octets -= s->cur->text.len;
		turn_session_start_msg(s);
		return;
	}
	if (s->loading) {
		turn_enter_state(s, TURN_STATE_LOAD);
		return;
	}
	if (s->nextq < s->nqids) {
		turn_session_store_prefetch(s);
		turn_enter_state(s, TURN_STATE_LOAD);
		return;
	}
	if (s->listing) {
		turn_enter_state(s, TURN_STATE_LIST);
		return;
	}
	if (s->records > 0) {
		/* a 452 may put a message back on the list: wait */
		turn_enter_state(s, TURN_STATE_RECORD);
		turn_session_store_record_flush(s);
		return;
	}
	if (s->round_new > 0 && s->rounds < TURN_ROUNDS_MAX) {
		/* mail may have come for the customer meanwhile */
		turn_session_store_list(s);
		turn_enter_state(s, TURN_STATE_LIST);
		return;
	}
	s->all_handled = 1;
	turn_session_quit(s);
}

/*
 * turn_session_ahead - write the next transactions while cur's replies
 * are awaited (RFC 2920: the text, or BDAT LAST, may be followed by
 * more commands). Each opens with RSET, so that however the one before
 * it ended, it starts clean: after a refused BDAT the server's state is
 * not known (RFC 3030 section 2), and a MAIL after a transaction left
 * open would be refused while its RCPTs and text went to the old one.
 * With BDAT a whole message goes, up to TURN_WINDOW of them; with DATA
 * only the group up to DATA, whose 354 must be waited for, so one.
 */
void
turn_session_ahead(struct turn_session *s)
{
	struct turn_msg *m;
	struct buf b;
	size_t i;

	while (!s->ending && !s->stop && s->io != NULL && s->cur != NULL &&
	    s->text_done && (s->ext.flags & TURN_PROTO_EXT_PIPELINING) &&
	    s->nloaded > 0 && s->nsent < TURN_WINDOW &&
	    s->sent_octets < TURN_WINDOW_OCTETS &&
	    (s->nsent == 0 || s->sent[s->nsent - 1]->bdat)) {
		m = s->loaded[0];
		/* a refusal, or BDAT in several chunks, waits its turn */
		if (m->refuse[0] != '\0' || (m->bdat &&
		    m->text.len > TURN_BDAT_CHUNK))
			break;
		buf_init(&b);
		buf_puts(&b, "RSET\r\n");
		(void)turn_proto_mail_cmd(&b, m->sender, m->size, m->wire_body,
		    m->smtputf8, m->ret, m->envid, &s->ext);
		for (i = 0; i < m->nrcpt; i++)
			(void)turn_proto_rcpt_cmd(&b, m->rcpt[i].addr,
			    m->rcpt[i].notify, m->rcpt[i].orcpt, &s->ext);
		if (m->bdat)
			buf_printf(&b, "BDAT %zu LAST\r\n", m->text.len);
		else
			buf_puts(&b, "DATA\r\n");
		if (turn_session_write(s, b.data, b.len) == -1 || (m->bdat &&
		    m->text.len > 0 && turn_session_write(s, m->text.data,
		    m->text.len) == -1)) {
			buf_release(&b);
			return;
		}
		buf_release(&b);
		memmove(s->loaded, s->loaded + 1, --s->nloaded *
		    sizeof(*s->loaded));
		s->loaded_octets -= m->text.len;
		s->sent[s->nsent++] = m;
		s->sent_octets += m->text.len;
		log_debug("session=%s event=turn-pipelined id=%s window=%zu",
		    s->id, m->id, s->nsent);
	}
	turn_session_store_prefetch(s);
}

/* turn_session_rcpt - send the next RCPT TO */
static int
turn_session_rcpt(struct turn_session *s)
{
	const struct turn_msg_rcpt *r = &s->cur->rcpt[s->rcpt_sent++];
	struct buf b;
	int rc;

	buf_init(&b);
	(void)turn_proto_rcpt_cmd(&b, r->addr, r->notify, r->orcpt, &s->ext);
	rc = turn_session_write(s, b.data, b.len);
	buf_release(&b);
	return rc;
}

/* turn_session_bdat - send the next BDAT chunk, if one may go */
static void
turn_session_bdat(struct turn_session *s)
{
	const struct turn_msg *m = s->cur;
	size_t n;
	int last;

	if (s->last_sent || s->chunk_error)
		return;
	/* RFC 3030: no more chunks once nobody is left to take them */
	if (s->mail_replied && !s->mail_ok)
		return;
	if (s->rcpt_replies == m->nrcpt && s->accepted == 0)
		return;
	n = m->text.len - s->text_off;
	if (n > TURN_BDAT_CHUNK)
		n = TURN_BDAT_CHUNK;
	last = s->text_off + n == m->text.len;
	if (turn_session_cmd(s, "BDAT %zu%s", n, last ? " LAST" : "") == -1)
		return;
	if (n > 0 && turn_session_write(s, m->text.data + s->text_off, n) ==
	    -1)
		return;
	s->text_off += n;
	s->chunks_sent++;
	s->last_sent = last;
	if (!last)
		return;
	if (s->state == TURN_STATE_BDAT)
		turn_enter_state(s, TURN_STATE_LAST);
	s->text_done = 1;
	turn_session_ahead(s);
}

/* turn_session_text - write the next piece of DATA text */
static void
turn_session_text(struct turn_session *s)
{
	const struct turn_msg *m = s->cur;
	size_t n = m->text.len - s->text_off;

	if (n > TURN_WRITE_CHUNK)
		n = TURN_WRITE_CHUNK;
	if (turn_session_write(s, m->text.data + s->text_off, n) == -1)
		return;
	s->text_off += n;
	if (s->text_off < m->text.len) {
		/* the rest on IO_LOWAT; a text written at once skips TEXT,
		 * whose pause of reading would cost two epoll_ctl(2) */
		if (s->state != TURN_STATE_TEXT)
			turn_enter_state(s, TURN_STATE_TEXT);
		return;
	}
	turn_enter_state(s, TURN_STATE_DOT);
	s->text_done = 1;
	turn_session_ahead(s);
}

/* turn_session_rset - end a transaction that went wrong */
static void
turn_session_rset(struct turn_session *s)
{
	if (s->nsent > 0) {
		/* the next one on the wire opens with its own RSET */
		turn_session_store_record(s);
		return;
	}
	if (turn_session_cmd(s, "RSET") == -1)
		return;
	turn_enter_state(s, TURN_STATE_RSET);
	s->text_done = 1;
	turn_session_ahead(s);
}

/* turn_session_start_msg - one message: refuse it, or start sending */
static void
turn_session_start_msg(struct turn_session *s)
{
	struct turn_msg *m = s->cur;
	struct buf b;
	size_t i;
	int pipelining = (s->ext.flags & TURN_PROTO_EXT_PIPELINING) != 0;

	s->mail_ok = s->mail_replied = 0;
	s->rcpt_sent = s->rcpt_replies = 0;
	s->accepted = 0;
	s->dummy_dot = 0;
	s->text_off = 0;
	s->chunks_sent = s->chunks_replied = 0;
	s->chunk_error = s->last_sent = 0;
	s->text_done = 0;
	if (m->refuse[0] != '\0') {
		for (i = 0; i < m->nrcpt; i++)
			turn_msg_outcome(m, i, QUEUE_OUTCOME_FAILED, m->refuse);
		turn_session_store_record(s);
		return;
	}
	s->in_txn = 1;
	turn_session_store_prefetch(s);
	buf_init(&b);
	(void)turn_proto_mail_cmd(&b, m->sender, m->size, m->wire_body,
	    m->smtputf8, m->ret, m->envid, &s->ext);
	if (pipelining) {
		/* RFC 2920: the whole group in one write */
		for (i = 0; i < m->nrcpt; i++)
			(void)turn_proto_rcpt_cmd(&b, m->rcpt[i].addr,
			    m->rcpt[i].notify, m->rcpt[i].orcpt, &s->ext);
		s->rcpt_sent = m->nrcpt;
		if (!m->bdat)
			buf_puts(&b, "DATA\r\n");
	}
	if (turn_session_write(s, b.data, b.len) == -1) {
		buf_release(&b);
		return;
	}
	buf_release(&b);
	if (pipelining && m->bdat)
		turn_session_bdat(s);
	if (!s->ending)
		turn_enter_state(s, TURN_STATE_MAIL);
}

/* ---- replies, by state ---- */

/* turn_reply_greeting - 220, or the customer does not want us */
static void
turn_reply_greeting(struct turn_session *s)
{
	if (s->reply.code != 220) {
		turn_session_fail(s, "greeted with");
		return;
	}
	s->result.greeted = 1;
	if (turn_session_cmd(s, "EHLO %s", s->helo) == 0)
		turn_enter_state(s, TURN_STATE_EHLO);
}

/* turn_session_ready - EHLO or HELO accepted: deliver */
static void
turn_session_ready(struct turn_session *s, int esmtp)
{
	char ext[256];

	s->ready = 1;
	turn_proto_ext_format(&s->ext, ext, sizeof(ext));
	log_info("session=%s event=turn-%s relay=%s extensions=%s", s->id,
	    esmtp ? "ehlo" : "helo", s->relay, ext);
	if (s->result.error[0] != '\0') {
		turn_session_quit(s);	/* the list failed */
		return;
	}
	if (s->listing)
		turn_enter_state(s, TURN_STATE_LIST);
	else
		turn_session_next(s);
}

/* turn_session_want_tls - the policy asks for TLS and STARTTLS is offered */
static int
turn_session_want_tls(const struct turn_session *s)
{
	return s->tls_policy != TLS_MODE_NONE && s->tls_ctx != NULL &&
	    !s->result.tls && (s->ext.flags & TURN_PROTO_EXT_STARTTLS) != 0;
}

/* turn_session_tls_ok - plaintext may go on; else fail the session */
static int
turn_session_tls_ok(struct turn_session *s)
{
	if (s->result.tls || s->tls_policy == TLS_MODE_NONE ||
	    s->tls_policy == TLS_MODE_MAY)
		return 1;
	/* encrypt, verify: never fall back to plaintext */
	s->result.tls_failed = 1;
	turn_session_error(s, "TLS is required (tls=%s) but %s does not"
	    " offer STARTTLS", tls_mode_names[s->tls_policy], s->relay);
	log_info("session=%s event=turn-tls-required relay=%s policy=%s",
	    s->id, s->relay, tls_mode_names[s->tls_policy]);
	turn_session_quit(s);
	return 0;
}

/* turn_session_starttls - ask for TLS (RFC 3207) */
static void
turn_session_starttls(struct turn_session *s)
{
	if (turn_session_cmd(s, "STARTTLS") == 0)
		turn_enter_state(s, TURN_STATE_STARTTLS);
}

/* turn_reply_starttls - 220: handshake; else plaintext or give up */
static void
turn_reply_starttls(struct turn_session *s)
{
	size_t junk;

	if (s->reply.code != 220) {
		log_info("session=%s event=turn-starttls-refused relay=%s"
		    " reply=\"%s\"", s->id, s->relay, s->reply.text);
		if (s->tls_policy != TLS_MODE_MAY) {
			s->result.tls_failed = 1;
			turn_session_fail(s, "refused STARTTLS");
			return;
		}
		turn_session_ready(s, 1);
		return;
	}
	/* RFC 3207 4.2: nothing sent before the handshake counts */
	if ((junk = io_discard_input(s->io)) > 0)
		log_info("session=%s event=turn-starttls-injection relay=%s"
		    " discarded=%zu", s->id, s->relay, junk);
	if (io_starttls_client(s->io, s->tls_ctx, s->tls_name) == -1) {
		s->result.tls_failed = 1;
		turn_session_lost(s, "cannot start TLS: %s", io_error(s->io));
		return;
	}
	turn_enter_state(s, TURN_STATE_TLS);
}

/* turn_session_tls_ready - the handshake is done: EHLO again inside */
static void
turn_session_tls_ready(struct turn_session *s)
{
	struct io_tls_info ti;

	if (s->state != TURN_STATE_TLS)
		return;
	s->result.tls = 1;
	if (io_tls_info(s->io, &ti) == 0)
		log_info("session=%s event=turn-tls relay=%s version=%s"
		    " cipher=%s bits=%d verified=%s name=%s%s%s", s->id,
		    s->relay, ti.version, ti.cipher, ti.bits,
		    ti.peer_verified ? "yes" : "no",
		    s->tls_name != NULL ? s->tls_name : "-",
		    ti.peer_verified ? "" : " verify_error=",
		    ti.peer_verified ? "" : ti.verify_error);
	/* RFC 3207 4.2: forget what was learnt before TLS */
	memset(&s->ext, 0, sizeof(s->ext));
	if (turn_session_cmd(s, "EHLO %s", s->helo) == 0)
		turn_enter_state(s, TURN_STATE_EHLO);
}

/* turn_reply_ehlo - 250 with keywords; 5xx: try HELO (RFC 5321 3.2) */
static void
turn_reply_ehlo(struct turn_session *s)
{
	unsigned c = turn_proto_reply_class(&s->reply);

	if (c == 2) {
		if (turn_session_want_tls(s))
			turn_session_starttls(s);
		else if (turn_session_tls_ok(s))
			turn_session_ready(s, 1);
		return;
	}
	memset(&s->ext, 0, sizeof(s->ext));
	if (c != 5) {
		turn_session_fail(s, "refused EHLO");
		return;
	}
	if (turn_session_cmd(s, "HELO %s", s->helo) == 0)
		turn_enter_state(s, TURN_STATE_HELO);
}

/* turn_reply_helo - plain SMTP: no extensions at all */
static void
turn_reply_helo(struct turn_session *s)
{
	if (turn_proto_reply_class(&s->reply) != 2) {
		turn_session_fail(s, "refused HELO");
		return;
	}
	if (turn_session_tls_ok(s))
		turn_session_ready(s, 0);
}

/* turn_reply_mail - the sender accepted, or every recipient has it */
static void
turn_reply_mail(struct turn_session *s)
{
	struct turn_msg *m = s->cur;
	size_t i;

	s->mail_replied = 1;
	s->mail_ok = turn_proto_reply_class(&s->reply) == 2;
	if (!s->mail_ok)
		for (i = 0; i < m->nrcpt; i++)
			turn_msg_outcome(m, i, turn_kind(&s->reply),
			    s->reply.text);
	if (s->ext.flags & TURN_PROTO_EXT_PIPELINING) {
		turn_enter_state(s, TURN_STATE_RCPT);
		return;
	}
	if (!s->mail_ok) {
		turn_session_rset(s);
		return;
	}
	if (turn_session_rcpt(s) == 0)
		turn_enter_state(s, TURN_STATE_RCPT);
}

/* turn_reply_rcpt - one recipient's fate; after the last, the text */
static void
turn_reply_rcpt(struct turn_session *s)
{
	struct turn_msg *m = s->cur;
	size_t i = s->rcpt_replies++;

	if (s->mail_ok) {
		if (turn_proto_reply_class(&s->reply) == 2) {
			m->rcpt[i].accepted = 1;
			s->accepted++;
		} else
			turn_msg_outcome(m, i, turn_kind(&s->reply),
			    s->reply.text);
	}
	if (s->rcpt_replies < m->nrcpt) {
		if (!(s->ext.flags & TURN_PROTO_EXT_PIPELINING))
			(void)turn_session_rcpt(s);
		return;
	}
	if (s->ext.flags & TURN_PROTO_EXT_PIPELINING) {
		/* DATA or the first chunk went with the group */
		turn_enter_state(s, !m->bdat ? TURN_STATE_DATA :
		    s->last_sent ? TURN_STATE_LAST : TURN_STATE_BDAT);
		return;
	}
	if (s->accepted == 0) {
		turn_session_rset(s);
		return;
	}
	if (m->bdat) {
		turn_enter_state(s, TURN_STATE_BDAT);
		turn_session_bdat(s);
	} else if (turn_session_cmd(s, "DATA") == 0)
		turn_enter_state(s, TURN_STATE_DATA);
}

/* turn_reply_data - 354: the text; else the accepted ones have it */
static void
turn_reply_data(struct turn_session *s)
{
	struct turn_msg *m = s->cur;
	size_t i;

	if (s->reply.code == 354) {
		if (s->mail_ok && s->accepted > 0) {
			turn_session_text(s);
			return;
		}
		/* RFC 2920 3.1: a 354 with no recipient: end it at once */
		s->dummy_dot = 1;
		if (turn_session_cmd(s, ".") == -1)
			return;
		turn_enter_state(s, TURN_STATE_DOT);
		s->text_done = 1;
		turn_session_ahead(s);
		return;
	}
	if (s->mail_ok)
		for (i = 0; i < m->nrcpt; i++)
			if (m->rcpt[i].accepted)
				turn_msg_outcome(m, i, turn_kind(&s->reply),
				    s->reply.text);
	turn_session_rset(s);
}

/* turn_session_final - the reply that decides for accepted recipients */
static void
turn_session_final(struct turn_session *s)
{
	struct turn_msg *m = s->cur;
	enum queue_outcome_kind kind;
	size_t i;

	kind = turn_proto_reply_class(&s->reply) == 2 ?
	    QUEUE_OUTCOME_DELIVERED : turn_kind(&s->reply);
	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].accepted)
			turn_msg_outcome(m, i, kind, s->reply.text);
}

/* turn_reply_dot - the reply to the end of the text */
static void
turn_reply_dot(struct turn_session *s)
{
	if (s->dummy_dot) {
		turn_session_rset(s);
		return;
	}
	turn_session_final(s);
	turn_session_store_record(s);
}

/* turn_reply_bdat - one chunk's reply (RFC 3030 section 2) */
static void
turn_reply_bdat(struct turn_session *s)
{
	s->chunks_replied++;
	if (turn_proto_reply_class(&s->reply) != 2 && !s->chunk_error) {
		/* the first refusal decides; later 503s only follow it */
		s->chunk_error = 1;
		if (s->mail_ok && s->accepted > 0)
			turn_session_final(s);
	}
	if (s->chunks_replied < s->chunks_sent)
		return;
	if (s->chunk_error || !s->mail_ok || s->accepted == 0) {
		turn_session_rset(s);
		return;
	}
	if (s->last_sent) {
		turn_session_final(s);
		turn_session_store_record(s);
		return;
	}
	if (!(s->ext.flags & TURN_PROTO_EXT_PIPELINING))
		turn_session_bdat(s);
	/* with PIPELINING the next chunk goes on IO_LOWAT */
}

/* turn_reply_rset - the transaction is over: record what is known */
static void
turn_reply_rset(struct turn_session *s)
{
	turn_session_store_record(s);
}

/* turn_reply_reset - the RSET before a pipelined transaction */
static void
turn_reply_reset(struct turn_session *s)
{
	/* its MAIL may have found a transaction left open: stop here */
	if (turn_proto_reply_class(&s->reply) != 2) {
		turn_session_lost(s, "customer refused RSET: %s",
		    s->reply.text);
		return;
	}
	turn_enter_state(s, TURN_STATE_MAIL);
}

/* turn_reply_quit - 221, or anything: the session is over */
static void
turn_reply_quit(struct turn_session *s)
{
	if (s->reply.code != 221)
		log_debug("session=%s event=turn-quit reply=\"%s\"", s->id,
		    s->reply.text);
	turn_session_end(s);
}

static const turn_reply_fn turn_session_replies[TURN_STATE_COUNT] = {
	[TURN_STATE_GREETING] = turn_reply_greeting,
	[TURN_STATE_EHLO] = turn_reply_ehlo,
	[TURN_STATE_HELO] = turn_reply_helo,
	[TURN_STATE_STARTTLS] = turn_reply_starttls,
	[TURN_STATE_MAIL] = turn_reply_mail,
	[TURN_STATE_RCPT] = turn_reply_rcpt,
	[TURN_STATE_DATA] = turn_reply_data,
	[TURN_STATE_DOT] = turn_reply_dot,
	[TURN_STATE_BDAT] = turn_reply_bdat,
	[TURN_STATE_LAST] = turn_reply_bdat,
	[TURN_STATE_RSET] = turn_reply_rset,
	[TURN_STATE_RESET] = turn_reply_reset,
	[TURN_STATE_QUIT] = turn_reply_quit,
};

/* turn_session_reply - one whole reply: 421 ends it, else by state */
static void
turn_session_reply(struct turn_session *s)
{
	log_debug("session=%s event=turn-reply state=%s reply=\"%s\"", s->id,
	    turn_state_names[s->state], s->reply.text);
	if (s->reply.code == 421 && s->state != TURN_STATE_QUIT) {
		/* RFC 5321 3.8: the customer is closing the channel */
		turn_session_lost(s, "customer closed the session while %s:"
		    " %s", turn_state_descriptions[s->state], s->reply.text);
		return;
	}
	turn_session_replies[s->state](s);
}

/* turn_session_input - take whole replies while a state waits for one */
static void
turn_session_input(struct turn_session *s)
{
	const char *text, *err;
	size_t len;
	int toolong;
	char *line;

	while (!s->ending && s->io != NULL && turn_state_reads[s->state] &&
	    s->state != TURN_STATE_TLS) {
		line = io_getline(s->io, TURN_PROTO_LINE_MAX, &len, &toolong);
		if (line == NULL)
			return;
		if (toolong) {
			turn_session_lost(s, "customer sent a reply line over"
			    " %u octets while %s", TURN_PROTO_LINE_MAX,
			    turn_state_descriptions[s->state]);
			return;
		}
		switch (turn_proto_reply_line(&s->reply, line, len, &text,
		    &err)) {
		case TURN_PROTO_BAD:
			turn_session_lost(s, "customer sent a bad reply while"
			    " %s: %s", turn_state_descriptions[s->state], err);
			return;
		case TURN_PROTO_MORE:
			if (s->state == TURN_STATE_EHLO && s->reply.nlines > 1)
				turn_proto_ext_line(&s->ext, text);
			continue;
		case TURN_PROTO_DONE:
			if (s->state == TURN_STATE_EHLO && s->reply.nlines > 1)
				turn_proto_ext_line(&s->ext, text);
			break;
		}
		turn_session_reply(s);
		turn_proto_reply_reset(&s->reply);
	}
}

/* turn_session_lowat - output drained: more text or the next chunk */
static void
turn_session_lowat(struct turn_session *s)
{
	if (s->ending || s->cur == NULL || !s->in_txn)
		return;
	if (s->state == TURN_STATE_TEXT)
		turn_session_text(s);
	else if (s->cur->bdat && (s->ext.flags & TURN_PROTO_EXT_PIPELINING))
		turn_session_bdat(s);
}

/* turn_session_io - the one callback for everything on the connection */
static void
turn_session_io(struct io *io, enum io_event ev, void *arg)
{
	struct turn_session *s = arg;
	const char *what = turn_state_descriptions[s->state];

	if (s->ending)
		return;
	switch (ev) {
	case IO_DATAIN:
		turn_session_input(s);
		break;
	case IO_LOWAT:
		turn_session_lowat(s);
		break;
	case IO_DISCONNECTED:
		turn_session_lost(s, "customer closed the connection while %s",
		    what);
		break;
	case IO_TIMEOUT:
		if (s->timeout_ms[s->state] == 0)
			break;	/* a store state: nothing is awaited */
		if (s->state == TURN_STATE_TLS)
			s->result.tls_failed = 1;
		if (s->timeout_ms[s->state] % 1000 == 0)
			turn_session_lost(s, "timeout (%u s) while %s",
			    s->timeout_ms[s->state] / 1000, what);
		else
			turn_session_lost(s, "timeout (%u ms) while %s",
			    s->timeout_ms[s->state], what);
		break;
	case IO_ERROR:
		if (s->state == TURN_STATE_TLS) {
			s->result.tls_failed = 1;
			turn_session_lost(s, "TLS handshake with %s failed: %s",
			    s->tls_name != NULL ? s->tls_name : s->relay,
			    io_error(io));
			break;
		}
		turn_session_lost(s, "connection error while %s: %s", what,
		    io_error(io));
		break;
	case IO_TLSREADY:
		turn_session_tls_ready(s);
		break;
	case IO_CONNECTED:
		break;
	}
}

/* ---- the interface ---- */

/* turn_session_start - take over the connection and deliver */
struct turn_session *
turn_session_start(struct io *io, const struct turn_params *p,
    const char **error_r)
{
	struct turn_session *s;
	char key[DNAME_MAX + 1];
	const char *err;
	size_t i;

	if (p->ndomains == 0 || p->queue == NULL || p->pool == NULL ||
	    p->done == NULL) {
		*error_r = "no domain, store, pool or done callback";
		return NULL;
	}
	if (p->helo_name == NULL || p->helo_name[0] == '\0' ||
	    strlen(p->helo_name) > TURN_HELO_MAX ||
	    strpbrk(p->helo_name, " \t\r\n") != NULL) {
		*error_r = "bad helo name";
		return NULL;
	}
	for (i = 0; i < p->ndomains; i++)
		if (dname_normalize(p->domains[i], key, &err) == -1) {
			*error_r = "a customer domain is not a valid name";
			return NULL;
		}
	s = xcalloc(1, sizeof(*s));
	(void)strlcpy(s->id, p->session_id != NULL ? p->session_id : "-",
	    sizeof(s->id));
	s->helo = xstrdup(p->helo_name);
	s->queue = p->queue;
	s->pool = p->pool;
	s->domains = xcalloc(p->ndomains, sizeof(*s->domains));
	for (i = 0; i < p->ndomains; i++) {
		(void)dname_normalize(p->domains[i], key, &err);
		s->domains[i] = xstrdup(key);
	}
	s->ndomains = p->ndomains;
	for (i = 0; i < TURN_STATE_COUNT; i++)
		s->timeout_ms[i] = p->timeout_ms[i] != 0 ? p->timeout_ms[i] :
		    turn_session_timeout_default[i];
	s->done = p->done;
	s->arg = p->arg;
	s->tls_policy = p->tls_policy;
	s->tls_ctx = p->tls_ctx;
	if (p->tls_name != NULL && p->tls_name[0] != '\0')
		s->tls_name = xstrdup(p->tls_name);
	s->dsn = p->dsn;
	if (p->rcpt_domain != NULL && p->rcpt_domain[0] != '\0')
		s->rcpt_domain = xstrdup(p->rcpt_domain);
	if (p->postmaster != NULL && p->postmaster[0] != '\0')
		s->postmaster = xstrdup(p->postmaster);
	s->io = io;
	(void)snprintf(s->relay, sizeof(s->relay), "[%s]:%u",
	    io_peer_addr(io), io_peer_port(io));
	(void)strlcpy(s->relay_host, io_peer_addr(io), sizeof(s->relay_host));
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	turn_proto_reply_reset(&s->reply);
	s->record_timer = loop_timer_new(turn_session_store_record_timer, s);

	io_set_callback(io, turn_session_io, s);
	io_set_lowat(io, 0);
	io_set_input_max(io, IO_INPUT_MAX);
	(void)io_set_nodelay(io, 1);	/* a pipelined group goes at once */
	log_info("session=%s event=turn-start relay=%s domains=%zu", s->id,
	    s->relay, s->ndomains);
	s->state = TURN_STATE_GREETING;
	/* paused then resumed: input already buffered is reported too */
	io_pause_read(io);
	turn_enter_state(s, TURN_STATE_GREETING);
	turn_session_store_list(s);
	return s;
}

/* turn_session_stop - QUIT after the message in progress */
void
turn_session_stop(struct turn_session *s)
{
	if (s == NULL || s->ending || s->stop)
		return;
	s->stop = 1;
	log_info("session=%s event=turn-stop state=%s", s->id,
	    turn_state_names[s->state]);
	/* between messages now: nothing is in progress to wait for */
	if (s->nsent == 0 && (s->state == TURN_STATE_LOAD ||
	    s->state == TURN_STATE_LIST || s->state == TURN_STATE_RECORD))
		turn_session_next(s);
}

/* turn_session_abort - close now; done follows from the loop */
void
turn_session_abort(struct turn_session **sp)
{
	struct turn_session *s = *sp;

	*sp = NULL;
	if (s == NULL || s->ending)
		return;
	turn_session_lost(s, "aborted while %s",
	    turn_state_descriptions[s->state]);
}
