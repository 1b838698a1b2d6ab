/*
 * NAME
 *	turn_msg 3 - one queued message, made ready for one customer
 * SYNOPSIS
 *	#include "turn_msg.h"
 * DESCRIPTION
 *	See turn_msg.h. turn_msg_load() blocks on the store and runs on a
 *	work pool thread; everything else here is plain memory work. The
 *	body is held in memory: the store bounds it (max_message_size),
 *	and the session holds at most two messages at a time.
 * SEE ALSO
 *	turn_session(3), turn_proto(3), turn_mime(3), queue(3), RFC 1870,
 *	RFC 3030, RFC 3463, RFC 6152, RFC 6531
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "xmalloc.h"

#include "queue.h"
#include "turn_mime.h"
#include "turn_msg.h"
#include "turn_proto.h"

/* How queue_body_read() chunks reach the message. */
struct turn_msg_reader {
	struct buf		*out;
	struct turn_proto_stuff	*stuff;	/* NULL: copy the octets as they are */
	uint64_t		 octets;
};

/* turn_msg_chunk - queue_body_read() callback: copy or dot-stuff */
static int
turn_msg_chunk(const void *data, size_t len, void *arg)
{
	struct turn_msg_reader *r = arg;

	r->octets += len;
	if (r->stuff != NULL)
		turn_proto_stuff_feed(r->stuff, data, len, r->out);
	else
		buf_append(r->out, data, len);
	return 0;
}

/* turn_msg_refuse - fail every recipient with text, send nothing */
static void
turn_msg_refuse(struct turn_msg *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* turn_msg_refuse - fail every recipient with text, send nothing */
static void
turn_msg_refuse(struct turn_msg *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(m->refuse, sizeof(m->refuse), fmt, ap);
	va_end(ap);
	buf_release(&m->text);
}

/* turn_msg_domain - is this recipient's customer domain one of ours? */
static int
turn_msg_domain(const char *domain, char *const *domains, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(domain, domains[i]) == 0)
			return 1;
	return 0;
}

/* turn_msg_envelope - copy the envelope and our recipients */
static void
turn_msg_envelope(struct turn_msg *m, const struct queue_msg *qm,
    char *const *domains, size_t ndomains)
{
	size_t i, n = 0;

	m->rcpt = xcalloc(qm->nrcpt > 0 ? qm->nrcpt : 1, sizeof(*m->rcpt));
	for (i = 0; i < qm->nrcpt; i++) {
		const struct queue_rcpt *r = &qm->rcpt[i];

		if (r->state != QUEUE_RCPT_QUEUED ||
		    !turn_msg_domain(r->domain, domains, ndomains))
			continue;
		m->rcpt[n].addr = xstrdup(r->addr);
		m->rcpt[n].orcpt = r->orcpt != NULL ? xstrdup(r->orcpt) : NULL;
		m->rcpt[n].notify = r->notify;
		m->rcpt[n].index = r->index;
		n++;
	}
	m->nrcpt = n;
	m->sender = xstrdup(qm->sender != NULL ? qm->sender : "");
	m->envid = qm->envid != NULL ? xstrdup(qm->envid) : NULL;
	m->ret = qm->ret;
	m->body = m->wire_body = qm->body;
	m->smtputf8 = qm->smtputf8;
	m->stored_size = m->size = qm->size;
}

/* turn_msg_too_big - the customer's SIZE (RFC 1870) refuses this size */
static int
turn_msg_too_big(struct turn_msg *m, uint64_t size,
    const struct turn_proto_ext *ext)
{
	if (!(ext->flags & TURN_PROTO_EXT_SIZE) || ext->size == 0 ||
	    size <= ext->size)
		return 0;
	turn_msg_refuse(m, "5.3.4 message too big for the customer's SIZE"
	    " limit (%" PRIu64 " > %" PRIu64 " octets)", size, ext->size);
	return 1;
}

/* turn_msg_policy - may this message go to this customer at all? */
static int
turn_msg_policy(struct turn_msg *m, const struct turn_proto_ext *ext)
{
	if (m->smtputf8 && !(ext->flags & TURN_PROTO_EXT_SMTPUTF8)) {
		turn_msg_refuse(m, "5.6.7 SMTPUTF8 is required, but the"
		    " customer's server does not offer it (RFC 6531)");
		return -1;
	}
	if (m->body == QUEUE_BODY_BINARYMIME &&
	    ((ext->flags & TURN_PROTO_EXT_BINARYMIME) == 0 ||
	    (ext->flags & TURN_PROTO_EXT_CHUNKING) == 0)) {
		turn_msg_refuse(m, "5.6.3 binary content (BODY=BINARYMIME)"
		    " and the customer's server does not offer BINARYMIME"
		    " with CHUNKING (RFC 3030)");
		return -1;
	}
	if (turn_msg_too_big(m, m->stored_size, ext))
		return -1;
	return 0;
}

/* turn_msg_downgrade - 8-bit text for a 7-bit customer (RFC 6152) */
static int
turn_msg_downgrade(struct turn_msg *m, const struct turn_proto_ext *ext)
{
	struct buf conv;
	struct turn_proto_stuff st;
	const char *why = "conversion failed";

	buf_init(&conv);
	if (turn_mime_downgrade(m->text.data, m->text.len, &conv, &why) < 0) {
		buf_release(&conv);
		turn_msg_refuse(m, "5.6.3 the customer's server does not"
		    " offer 8BITMIME and the message cannot be converted to"
		    " 7 bits: %s", why);
		return -1;
	}
	m->downgraded = 1;
	m->wire_body = QUEUE_BODY_7BIT;
	m->size = conv.len;
	if (turn_msg_too_big(m, m->size, ext)) {
		buf_release(&conv);
		return -1;
	}
	buf_reset(&m->text);
	if (m->bdat)
		buf_append(&m->text, conv.data, conv.len);
	else {
		turn_proto_stuff_init(&st);
		turn_proto_stuff_feed(&st, conv.data, conv.len, &m->text);
		turn_proto_stuff_end(&st, &m->text);
	}
	buf_release(&conv);
	return 0;
}

/* turn_msg_load - read a message and make it ready for this customer */
struct turn_msg *
turn_msg_load(struct queue *q, uint64_t qid, char *const *domains,
    size_t ndomains, const struct turn_proto_ext *ext)
{
	struct turn_msg *m = xcalloc(1, sizeof(*m));
	struct queue_msg *qm = NULL;
	struct turn_msg_reader rd;
	struct turn_proto_stuff st;
	int convert;

	m->qid = qid;
	queue_id_format(qid, m->id);
	buf_init(&m->text);
	m->status = queue_get(q, qid, &qm, &m->err);
	if (m->status != QUEUE_OK)
		return m;
	turn_msg_envelope(m, qm, domains, ndomains);
	queue_msg_free(&qm);
	if (m->nrcpt == 0 || turn_msg_policy(m, ext) == -1)
		return m;
	m->bdat = (ext->flags & TURN_PROTO_EXT_CHUNKING) != 0;
	convert = m->body == QUEUE_BODY_8BITMIME &&
	    (ext->flags & TURN_PROTO_EXT_8BITMIME) == 0;
	buf_reserve(&m->text, (size_t)m->stored_size + 64);
	memset(&rd, 0, sizeof(rd));
	rd.out = &m->text;
	if (!m->bdat && !convert) {
		turn_proto_stuff_init(&st);
		rd.stuff = &st;
	}
	m->status = queue_body_read(q, qid, turn_msg_chunk, &rd, &m->err);
	if (m->status != QUEUE_OK) {
		buf_release(&m->text);
		return m;
	}
	m->size = rd.octets;
	if (rd.stuff != NULL)
		turn_proto_stuff_end(&st, &m->text);
	if (convert)
		(void)turn_msg_downgrade(m, ext);
	return m;
}

/* turn_msg_outcome - the recipient's outcome; the first one stays */
void
turn_msg_outcome(struct turn_msg *m, size_t i, enum queue_outcome_kind kind,
    const char *text)
{
	struct turn_msg_rcpt *r = &m->rcpt[i];

	if (r->has_outcome)
		return;
	r->has_outcome = 1;
	r->kind = kind;
	r->text = xstrdup(text);
}

/* turn_msg_outcomes - the recorded outcomes as queue_record() takes them */
size_t
turn_msg_outcomes(struct turn_msg *m, const struct queue_outcome **out)
{
	size_t i, n = 0;

	free(m->outcomes);
	m->outcomes = xcalloc(m->nrcpt > 0 ? m->nrcpt : 1,
	    sizeof(*m->outcomes));
	for (i = 0; i < m->nrcpt; i++) {
		const struct turn_msg_rcpt *r = &m->rcpt[i];

		if (!r->has_outcome)
			continue;	/* never tried: attempts stay */
		m->outcomes[n].qid = m->qid;
		m->outcomes[n].rcpt_index = r->index;
		m->outcomes[n].kind = r->kind;
		m->outcomes[n].text = r->text;
		n++;
	}
	*out = m->outcomes;
	return n;
}

/* turn_msg_has_kind - some recipient has an outcome of this kind */
int
turn_msg_has_kind(const struct turn_msg *m, enum queue_outcome_kind kind)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].has_outcome && m->rcpt[i].kind == kind)
			return 1;
	return 0;
}

/* turn_msg_defer_failed - failed recipients become deferred, with why */
void
turn_msg_defer_failed(struct turn_msg *m, const char *why)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].has_outcome &&
		    m->rcpt[i].kind == QUEUE_OUTCOME_FAILED) {
			m->rcpt[i].kind = QUEUE_OUTCOME_DEFERRED;
			free(m->rcpt[i].text);
			m->rcpt[i].text = xasprintf("4.3.0 failed, but its DSN"
			    " could not be queued: %s", why);
		}
}

/* turn_msg_free - free a message and set the pointer to NULL */
void
turn_msg_free(struct turn_msg **mp)
{
	struct turn_msg *m = *mp;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nrcpt; i++) {
		free(m->rcpt[i].addr);
		free(m->rcpt[i].orcpt);
		free(m->rcpt[i].text);
	}
	free(m->rcpt);
	free(m->sender);
	free(m->envid);
	free(m->outcomes);
	buf_release(&m->text);
	free(m);
	*mp = NULL;
}
