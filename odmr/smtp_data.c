/*
 * NAME
 *	smtp_data 3 - DATA and BDAT: the message text, and its commit
 * SYNOPSIS
 *	#include "smtp_session.h"
 * DESCRIPTION
 *	smtp_data_start() answers DATA (RFC 5321 section 4.1.1.4) and
 *	smtp_data_bdat() answers BDAT (RFC 3030). Both write our Received:
 *	field (RFC 5321 section 4.4) to the spool first, then the client's
 *	text as it arrives: DATA line by line, dot-unstuffed (section
 *	4.5.2), BDAT as raw octets.
 *
 *	The text is checked while it streams, and a bad message is read to
 *	its end before it is refused, so the session stays in step:
 *	- more than max_message_size octets: 552 5.3.4 (RFC 1870), even
 *	  without a SIZE parameter; the spool stops growing at the limit;
 *	- a DATA line over max_text_line octets (section 4.5.3.1.6), or a
 *	  line ending in a bare LF (section 2.3.8): 554 5.6.0. A bare LF
 *	  never ends the text: "<LF>.<LF>" is how SMTP smuggling starts;
 *	- more than max_received_headers Received: fields: 554 5.4.6, a
 *	  mail loop (section 6.3);
 *	- the spool could not be written (disk full): 452 4.3.1.
 *
 *	RFC 3030's rules for mixing: DATA after a BDAT chunk in the same
 *	transaction, and DATA with BODY=BINARYMIME, get 503 5.5.1. A BDAT
 *	chunk is always read to its end, even when the command is refused
 *	(no MAIL, no RCPT), because its octets are not commands.
 *
 *	The end of the text hands the message to the commit pool, where
 *	queue_enqueue() runs; the session reads nothing meanwhile. Only
 *	when the store says the transaction is on disk does the client get
 *	250 2.0.0 Ok: queued as ID. smtp_data_commit_reply() is the one
 *	place that turns a store status into an SMTP reply.
 * SEE ALSO
 *	smtp_session(3), smtp_spool(3), smtp_text(3), queue(3), RFC 5321,
 *	RFC 3030, RFC 1870, RFC 3463
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "compat.h"
#include "io.h"
#include "log.h"
#include "work.h"
#include "xmalloc.h"

#include "odmrd.h"
#include "queue.h"
#include "smtp_parse.h"
#include "smtp_session.h"
#include "smtp_spool.h"
#include "smtp_text.h"

/* smtp_data_write - append client text, within max_message_size */
static void
smtp_data_write(struct smtp_session *s, const void *p, size_t len)
{
	struct smtp_txn *t = &s->txn;

	t->octets += len;
	if (t->too_big)
		return;
	if (t->octets > s->d->conf->max_message_size) {
		t->too_big = 1;
		return;
	}
	smtp_text_scan_feed(&t->scan, p, len);
	(void)smtp_spool_write(s->spool, p, len);
}

/* smtp_data_begin - a fresh spool that starts with our Received: field */
static void
smtp_data_begin(struct smtp_session *s)
{
	struct smtp_text_received r;
	struct buf hdr;

	if (s->spool == NULL)
		s->spool = smtp_spool_new(s->d->spool_dir, SMTP_SPOOL_MEM_MAX);
	else
		smtp_spool_reset(s->spool);
	smtp_text_scan_init(&s->txn.scan);
	memset(&r, 0, sizeof(r));
	r.helo = s->helo;
	r.client_addr = s->addr;
	r.hostname = s->d->conf->hostname;
	r.id = s->txn.id;
	r.rcpt = s->txn.nrcpt == 1 ? s->txn.rcpt[0].addr : NULL;
	r.esmtp = s->esmtp;
	r.smtputf8 = s->txn.params.smtputf8;
	if (s->tls) {
		r.tls_version = s->tls_version;
		r.tls_cipher = s->tls_cipher;
		r.tls_bits = s->tls_bits;
	}
	r.when = time(NULL);
	buf_init(&hdr);
	smtp_text_received(&hdr, &r);
	(void)smtp_spool_write(s->spool, hdr.data, hdr.len);
	buf_release(&hdr);
}

/* smtp_data_sequence - the 503 text when no transaction can take text */
static const char *
smtp_data_sequence(const struct smtp_session *s)
{
	switch (s->state) {
	case SMTP_STATE_GREETING:
	case SMTP_STATE_HELO:
		return "5.5.1 Error: send HELO/EHLO first";
	case SMTP_STATE_READY:
		return "5.5.1 Error: need MAIL command";
	case SMTP_STATE_MAIL:
		return s->txn.rcpt_refused > 0 ?
		    "5.5.1 Error: no valid recipients" :
		    "5.5.1 Error: need RCPT command";
	default:
		return NULL;
	}
}

/* smtp_data_reserve_run - on the lookup pool: the message's queue id */
static void
smtp_data_reserve_run(void *arg)
{
	struct smtp_session *s = arg;
	uint64_t seq;

	s->txn.reserve_status = queue_id_reserve(s->d->queue, 1, &seq,
	    &s->txn.reserve_err);
	s->txn.qid = queue_id_make((uint64_t)time(NULL), seq);
}

/*
 * smtp_data_reserve - the message's queue id, then done: from the batch
 * odmrd reserved ahead when it has one (no thread hop), else from the
 * store on the lookup pool
 */
static void
smtp_data_reserve(struct smtp_session *s, work_fn done)
{
	if (odmrd_id_take(s->d, &s->txn.qid)) {
		s->txn.reserve_status = QUEUE_OK;
		s->job = 1;	/* done ends a job, as after the pool */
		done(s);
		return;
	}
	smtp_job_start(s);
	work_submit(s->d->lookup_pool, smtp_data_reserve_run, done, s);
}

/* smtp_data_reserved - 0 when the id came, else log; -1: session gone */
static int
smtp_data_reserved(struct smtp_session *s, int *ok)
{
	struct smtp_txn *t = &s->txn;

	if (smtp_job_end(s) == -1)
		return -1;
	*ok = t->reserve_status == QUEUE_OK;
	if (*ok)
		queue_id_format(t->qid, t->id);
	else
		log_warnx("session=%s event=store-error op=reserve-id status=%s"
		    " reason=\"%s\"", s->id, queue_status_name(t->reserve_status),
		    t->reserve_err.text);
	return 0;
}

/* smtp_data_reserved_data - DATA has its id: 354, or 451 without one */
static void
smtp_data_reserved_data(void *arg)
{
	struct smtp_session *s = arg;
	int ok;

	if (smtp_data_reserved(s, &ok) == -1)
		return;
	if (!ok)
		smtp_reject(s, "DATA", 451, "4.3.0 Error: temporary store"
		    " failure, try again later");
	else {
		log_debug("session=%s event=data id=%s", s->id, s->txn.id);
		smtp_data_begin(s);
		smtp_enter_state(s, SMTP_STATE_DATA);
		smtp_reply(s, 354, "End data with <CR><LF>.<CR><LF>");
	}
	smtp_session_resume(s);
}

/* smtp_data_reserved_bdat - the first chunk has its id: read it */
static void
smtp_data_reserved_bdat(void *arg)
{
	struct smtp_session *s = arg;
	int ok;

	if (smtp_data_reserved(s, &ok) == -1)
		return;
	if (!ok) {
		/* the chunk is still read, then refused */
		s->bdat_reply = 451;
		s->bdat_text = "4.3.0 Error: temporary store failure, try"
		    " again later";
	} else {
		log_debug("session=%s event=bdat id=%s", s->id, s->txn.id);
		s->txn.bdat = 1;
		smtp_data_begin(s);
	}
	smtp_enter_state(s, SMTP_STATE_BDAT);
	smtp_session_resume(s);
}

/* smtp_data_start - DATA: 354, then the text in SMTP_STATE_DATA */
void
smtp_data_start(struct smtp_session *s)
{
	const char *why;

	if ((why = smtp_data_sequence(s)) != NULL) {
		smtp_reject(s, "DATA", 503, "%s", why);
		return;
	}
	if (s->txn.bdat) {
		smtp_reject(s, "DATA", 503, "5.5.1 Error: DATA cannot follow"
		    " BDAT in the same transaction (RFC 3030)");
		return;
	}
	if (s->txn.params.body == QUEUE_BODY_BINARYMIME) {
		smtp_reject(s, "DATA", 503, "5.5.1 Error: BODY=BINARYMIME"
		    " needs BDAT (RFC 3030)");
		return;
	}
	smtp_data_reserve(s, smtp_data_reserved_data);
}

/* smtp_data_bdat - BDAT: read the chunk, then answer (RFC 3030) */
void
smtp_data_bdat(struct smtp_session *s, const char *arg, size_t len)
{
	struct smtp_parse_bdat b;
	const char *err, *why;
	enum smtp_parse_status st;

	st = smtp_parse_bdat(arg, len, &b, &err);
	if (st != SMTP_PARSE_OK) {
		smtp_reject(s, "BDAT", smtp_parse_status_code(st), "%s %s",
		    smtp_parse_status_enhanced(st), err);
		return;
	}
	s->bdat_left = b.size;
	s->bdat_last = b.last;
	s->bdat_reply = 0;
	s->bdat_text = NULL;
	s->bdat_prev = s->state;
	if ((why = smtp_data_sequence(s)) != NULL) {
		s->bdat_reply = 503;
		s->bdat_text = why;
	} else if (!s->txn.bdat) {
		smtp_data_reserve(s, smtp_data_reserved_bdat);
		return;
	}
	smtp_enter_state(s, SMTP_STATE_BDAT);
}

/* smtp_data_refuse - refuse the message, forget it, wait for commands */
static void
smtp_data_refuse(struct smtp_session *s, const char *cmd, unsigned code,
    const char *text)
{
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_STATE_READY);
	smtp_reject(s, cmd, code, "%s", text);
}

/* smtp_data_commit_reply - the one place a store status becomes a reply */
static void
smtp_data_commit_reply(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;
	const char *tls = s->tls ? s->tls_version : "none";

	switch (t->commit_status) {
	case QUEUE_OK:
		s->messages++;
		log_info("session=%s event=queued id=%s from=<%s> nrcpt=%zu"
		    " size=%llu client=%s tls=%s body=%s%s", s->id, t->msg.id,
		    t->sender, t->nrcpt, (unsigned long long)t->msg.size,
		    s->addr, tls, queue_body_type_name(t->params.body),
		    t->params.smtputf8 ? " smtputf8=yes" : "");
		smtp_reply(s, 250, "2.0.0 Ok: queued as %s", t->msg.id);
		return;
	case QUEUE_LIMIT:
		log_info("session=%s event=reject cmd=DATA code=452"
		    " reason=\"%s\"", s->id, t->commit_err.text);
		smtp_reply(s, 452, "4.2.2 Error: %s", t->commit_err.text);
		return;
	case QUEUE_NOSPACE:
		log_warnx("session=%s event=store-full reason=\"%s\"", s->id,
		    t->commit_err.text);
		smtp_reply(s, 452, "4.3.1 Error: insufficient system storage");
		return;
	case QUEUE_NOTFOUND:
		/* a customer domain was deleted while the text came in */
		log_warnx("session=%s event=store-error op=enqueue status=%s"
		    " reason=\"%s\"", s->id,
		    queue_status_name(t->commit_status), t->commit_err.text);
		smtp_reply(s, 451, "4.3.0 Error: %s, try again later",
		    t->commit_err.text);
		return;
	default:
		log_warnx("session=%s event=store-error op=enqueue status=%s"
		    " reason=\"%s\"", s->id,
		    queue_status_name(t->commit_status), t->commit_err.text);
		smtp_reply(s, 451, "4.3.0 Error: temporary store failure, try"
		    " again later");
		return;
	}
}

/* smtp_data_commit_run - on the commit pool: make the message durable */
static void
smtp_data_commit_run(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_txn *t = &s->txn;

	t->commit_status = queue_enqueue(s->d->queue, &t->msg,
	    smtp_spool_read, s->spool, &t->commit_err);
}

/* smtp_data_commit_done - on the loop: answer the end of the text */
static void
smtp_data_commit_done(void *arg)
{
	struct smtp_session *s = arg;

	if (smtp_job_end(s) == -1)
		return;
	smtp_data_commit_reply(s);
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_STATE_READY);
	smtp_session_resume(s);
}

/* smtp_data_commit - build the store's message and hand it over */
static void
smtp_data_commit(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;
	struct queue_msg *m = &t->msg;
	size_t i;

	memset(m, 0, sizeof(*m));
	m->reserved_qid = t->qid;
	m->sender = t->sender;
	m->envid = (t->params.seen & SMTP_PARSE_MAIL_ENVID) ?
	    t->params.envid : NULL;
	m->ret = t->params.ret;
	m->body = t->params.body;
	m->smtputf8 = t->params.smtputf8;
	m->client_addr = s->addr;
	m->helo = s->helo != NULL ? s->helo : (char *)"";
	m->nrcpt = t->nrcpt;
	m->rcpt = xcalloc(t->nrcpt, sizeof(*m->rcpt));
	for (i = 0; i < t->nrcpt; i++) {
		m->rcpt[i].addr = t->rcpt[i].addr;
		m->rcpt[i].orcpt = t->rcpt[i].orcpt;
		m->rcpt[i].notify = t->rcpt[i].notify;
		(void)strlcpy(m->rcpt[i].domain, t->rcpt[i].domain,
		    sizeof(m->rcpt[i].domain));
		m->rcpt[i].state = QUEUE_RCPT_QUEUED;
	}
	if (t->scan.eightbit && t->params.body == QUEUE_BODY_7BIT)
		log_info("session=%s event=8bit-in-7bit note=\"8-bit text"
		    " without BODY=8BITMIME, accepted\"", s->id);
	smtp_enter_state(s, SMTP_STATE_COMMIT);
	smtp_job_start(s);
	work_submit(s->d->commit_pool, smtp_data_commit_run,
	    smtp_data_commit_done, s);
}

/* smtp_data_end - the whole text is in: refuse it or commit it */
static void
smtp_data_end(struct smtp_session *s, const char *cmd)
{
	const struct odmr_conf *c = s->d->conf;
	struct smtp_txn *t = &s->txn;
	char text[256];

	if (t->too_big) {
		(void)snprintf(text, sizeof(text), "5.3.4 Error: message size"
		    " exceeds the fixed limit of %llu octets",
		    (unsigned long long)c->max_message_size);
		smtp_data_refuse(s, cmd, 552, text);
	} else if (t->line_too_long) {
		(void)snprintf(text, sizeof(text), "5.6.0 Error: a text line"
		    " is longer than %llu octets (RFC 5321 section"
		    " 4.5.3.1.6)", (unsigned long long)c->max_text_line);
		smtp_data_refuse(s, cmd, 554, text);
	} else if (t->bare_lf) {
		smtp_data_refuse(s, cmd, 554, "5.6.0 Error: bare <LF> in the"
		    " message text (RFC 5321 section 2.3.8)");
	} else if (t->scan.received > c->max_received_headers) {
		(void)snprintf(text, sizeof(text), "5.4.6 Error: too many"
		    " Received: headers (%u) - mail loop?", t->scan.received);
		smtp_data_refuse(s, cmd, 554, text);
	} else if (smtp_spool_failed(s->spool)) {
		log_warnx("session=%s event=spool-error reason=\"%s\"", s->id,
		    smtp_spool_error(s->spool));
		smtp_data_refuse(s, cmd, 452, "4.3.1 Error: insufficient"
		    " system storage");
	} else
		smtp_data_commit(s);
}

/* smtp_data_lines - DATA text: lines until the lone dot */
static void
smtp_data_lines(struct smtp_session *s)
{
	struct smtp_txn *t = &s->txn;
	size_t len, max = (size_t)s->d->conf->max_text_line - 2;
	int toolong;
	char *line;

	while ((line = io_getline(s->io, max, &len, &toolong)) != NULL) {
		if (toolong) {
			t->line_too_long = 1;
			continue;
		}
		/*
		 * The end is CRLF "." CRLF, nothing else: a dot line that
		 * ends in a bare LF, or follows a line that did, is text.
		 * Servers that accept "<LF>.<CR><LF>" as the end let a
		 * sender smuggle a second message past the first's checks.
		 */
		if (len == 1 && line[0] == '.' && !io_bare_lf(s->io) &&
		    !t->after_lf) {
			smtp_data_end(s, "DATA");
			return;
		}
		t->after_lf = io_bare_lf(s->io);
		if (t->after_lf)
			t->bare_lf = 1;
		/* RFC 5321 4.5.2: drop the first of a leading dot */
		if (len > 0 && line[0] == '.') {
			line++;
			len--;
		}
		smtp_data_write(s, line, len);
		smtp_data_write(s, "\r\n", 2);
	}
}

/* smtp_data_chunk_end - a BDAT chunk is read: answer it */
static void
smtp_data_chunk_end(struct smtp_session *s)
{
	char text[128];

	if (s->bdat_reply != 0) {
		smtp_enter_state(s, s->bdat_prev);
		smtp_reject(s, "BDAT", s->bdat_reply, "%s", s->bdat_text);
		return;
	}
	if (s->txn.too_big) {
		/* RFC 3030 4.2: the transaction fails at once; chunks
		 * already in the pipeline meet 503 and are discarded */
		smtp_data_end(s, "BDAT");
		return;
	}
	if (s->bdat_last) {
		smtp_data_end(s, "BDAT");
		return;
	}
	smtp_enter_state(s, SMTP_STATE_RCPT);
	(void)snprintf(text, sizeof(text), "2.0.0 Ok: %llu octets received",
	    (unsigned long long)s->txn.octets);
	smtp_reply(s, 250, "%s", text);
}

/* smtp_data_chunk - BDAT text: exactly the announced octets */
static void
smtp_data_chunk(struct smtp_session *s)
{
	size_t avail, n;

	while (s->bdat_left > 0 && (avail = io_datalen(s->io)) > 0) {
		n = avail < s->bdat_left ? avail : (size_t)s->bdat_left;
		if (s->bdat_reply == 0)
			smtp_data_write(s, io_data(s->io), n);
		io_drop(s->io, n);
		s->bdat_left -= n;
	}
	if (s->bdat_left == 0)
		smtp_data_chunk_end(s);
}

/* smtp_data_input - input while the text is being read */
void
smtp_data_input(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_DATA)
		smtp_data_lines(s);
	else if (s->state == SMTP_STATE_BDAT)
		smtp_data_chunk(s);
}
