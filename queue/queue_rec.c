/*
 * NAME
 *	queue_rec 3 - on-disk record encoding for the store
 * DESCRIPTION
 *	See queue_rec.h. The layouts, all integers big-endian:
 *
 *	message: u8 version, u64 qid, u64 arrival, u64 size, u8 ret,
 *	    u8 body, u8 smtputf8, str sender, str envid, str client_addr,
 *	    str helo, str auth_id, u32 nrcpt, then per recipient: str addr,
 *	    str orcpt, u8 notify, str domain, u8 state, u32 attempts,
 *	    u64 last_attempt, str last_error; since message version 2,
 *	    then u64 delay_warned (version 1 reads as 0).
 *
 *	domain: u8 version, str name, u32 nowners, str owner..., u8
 *	    subdomains, u8 etrn, str route, u8 tls, u64 max_messages, u64
 *	    max_bytes, u64 lifetime, u64 created, u64 messages, u64 bytes,
 *	    u64 last_pickup, str claim_holder, u64 claim_pid, u64
 *	    claim_expiry, and since domain version 2, u64 retry. Version
 *	    1 domain records (before --retry) are read with retry 0.
 *
 *	Decoders reject unknown versions, out-of-range enums, missing
 *	mandatory strings and trailing bytes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "pack.h"
#include "queue.h"
#include "queue_rec.h"
#include "xmalloc.h"

/* queue_rec_msg_encode - serialise a message envelope */
void
queue_rec_msg_encode(struct buf *b, const struct queue_msg *m)
{
	size_t i;

	pack_u8(b, QUEUE_REC_MSG_VERSION);
	pack_u64(b, m->qid);
	pack_u64(b, m->arrival);
	pack_u64(b, m->size);
	pack_u8(b, (uint8_t)m->ret);
	pack_u8(b, (uint8_t)m->body);
	pack_u8(b, m->smtputf8 ? 1 : 0);
	pack_str(b, m->sender ? m->sender : "");
	pack_str(b, m->envid);
	pack_str(b, m->client_addr);
	pack_str(b, m->helo);
	pack_str(b, m->auth_id);
	pack_u32(b, (uint32_t)m->nrcpt);
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		pack_str(b, r->addr);
		pack_str(b, r->orcpt);
		pack_u8(b, (uint8_t)r->notify);
		pack_str(b, r->domain);
		pack_u8(b, (uint8_t)r->state);
		pack_u32(b, r->attempts);
		pack_u64(b, r->last_attempt);
		pack_str(b, r->last_error);
	}
	pack_u64(b, m->delay_warned);
}

/* queue_msg_clear - free everything a decoded message owns */
void
queue_msg_clear(struct queue_msg *m)
{
	size_t i;

	free(m->sender);
	free(m->envid);
	free(m->client_addr);
	free(m->helo);
	free(m->auth_id);
	for (i = 0; i < m->nrcpt; i++) {
		free(m->rcpt[i].addr);
		free(m->rcpt[i].orcpt);
		free(m->rcpt[i].last_error);
	}
	free(m->rcpt);
	memset(m, 0, sizeof(*m));
}

/* queue_rec_msg_decode - parse and validate a message record */
int
queue_rec_msg_decode(const void *p, size_t n, struct queue_msg *m)
{
	struct unpack u;
	uint32_t nrcpt, i;
	uint8_t v, version;

	memset(m, 0, sizeof(*m));
	unpack_init(&u, p, n);
	version = unpack_u8(&u);
	if (version != 1 && version != QUEUE_REC_MSG_VERSION)
		return -1;
	m->qid = unpack_u64(&u);
	m->arrival = unpack_u64(&u);
	m->size = unpack_u64(&u);
	if ((v = unpack_u8(&u)) > QUEUE_RET_HDRS)
		u.error = 1;
	m->ret = (enum queue_ret)v;
	if ((v = unpack_u8(&u)) > QUEUE_BODY_BINARYMIME)
		u.error = 1;
	m->body = (enum queue_body_type)v;
	if ((v = unpack_u8(&u)) > 1)
		u.error = 1;
	m->smtputf8 = v;
	m->sender = unpack_str(&u);
	m->envid = unpack_str(&u);
	m->client_addr = unpack_str(&u);
	m->helo = unpack_str(&u);
	m->auth_id = unpack_str(&u);
	nrcpt = unpack_u32(&u);
	if (u.error || m->sender == NULL || nrcpt == 0 ||
	    nrcpt > QUEUE_REC_MAX_RCPT || (size_t)nrcpt * 24 > u.left)
		goto bad;
	m->rcpt = xcalloc(nrcpt, sizeof(*m->rcpt));
	for (i = 0; i < nrcpt && !u.error; i++) {
		struct queue_rcpt *r = &m->rcpt[i];
		char *dom;

		m->nrcpt = i + 1;
		r->index = i;
		r->addr = unpack_str(&u);
		r->orcpt = unpack_str(&u);
		if ((v = unpack_u8(&u)) > 0x0f)
			u.error = 1;
		r->notify = v;
		dom = unpack_str(&u);
		if (dom == NULL || strlcpy(r->domain, dom, sizeof(r->domain)) >=
		    sizeof(r->domain) || dom[0] == '\0')
			u.error = 1;
		free(dom);
		if ((v = unpack_u8(&u)) > QUEUE_RCPT_DELETED)
			u.error = 1;
		r->state = (enum queue_rcpt_state)v;
		r->attempts = unpack_u32(&u);
		r->last_attempt = unpack_u64(&u);
		r->last_error = unpack_str(&u);
		if (r->addr == NULL)
			u.error = 1;
	}
	if (version >= 2)
		m->delay_warned = unpack_u64(&u);
	if (u.error || u.left != 0)
		goto bad;
	queue_id_format(m->qid, m->id);
	return 0;
bad:
	queue_msg_clear(m);
	return -1;
}

/* queue_rec_dom_encode - serialise a domain record */
void
queue_rec_dom_encode(struct buf *b, const struct queue_domain *d)
{
	size_t i;

	pack_u8(b, QUEUE_REC_DOM_VERSION);
	pack_str(b, d->name);
	pack_u32(b, (uint32_t)d->nowners);
	for (i = 0; i < d->nowners; i++)
		pack_str(b, d->owners[i]);
	pack_u8(b, d->subdomains ? 1 : 0);
	pack_u8(b, (uint8_t)d->etrn);
	pack_str(b, d->route);
	pack_u8(b, (uint8_t)d->tls);
	pack_u64(b, d->max_messages);
	pack_u64(b, d->max_bytes);
	pack_u64(b, d->lifetime);
	pack_u64(b, d->created);
	pack_u64(b, d->messages);
	pack_u64(b, d->bytes);
	pack_u64(b, d->last_pickup);
	pack_str(b, d->claim_holder);
	pack_u64(b, d->claim_pid);
	pack_u64(b, d->claim_expiry);
	pack_u64(b, d->retry);
}

/* queue_rec_dom_decode - parse and validate a domain record */
int
queue_rec_dom_decode(const void *p, size_t n, struct queue_domain *d)
{
	struct unpack u;
	uint32_t nown, i;
	uint8_t v, version;
	char *name;

	memset(d, 0, sizeof(*d));
	unpack_init(&u, p, n);
	version = unpack_u8(&u);
	if (version != 1 && version != QUEUE_REC_DOM_VERSION)
		return -1;
	name = unpack_str(&u);
	if (name == NULL || name[0] == '\0' ||
	    strlcpy(d->name, name, sizeof(d->name)) >= sizeof(d->name))
		u.error = 1;
	free(name);
	nown = unpack_u32(&u);
	if (u.error || nown > QUEUE_REC_MAX_OWNERS || (size_t)nown * 4 > u.left)
		goto bad;
	d->owners = xcalloc(nown ? nown : 1, sizeof(char *));
	for (i = 0; i < nown && !u.error; i++) {
		d->owners[i] = unpack_str(&u);
		d->nowners = i + 1;
		if (d->owners[i] == NULL)
			u.error = 1;
	}
	if ((v = unpack_u8(&u)) > 1)
		u.error = 1;
	d->subdomains = v;
	if ((v = unpack_u8(&u)) > QUEUE_ETRN_OWNER)
		u.error = 1;
	d->etrn = (enum queue_etrn)v;
	d->route = unpack_str(&u);
	if ((v = unpack_u8(&u)) > QUEUE_TLS_VERIFY)
		u.error = 1;
	d->tls = (enum queue_tls)v;
	d->max_messages = unpack_u64(&u);
	d->max_bytes = unpack_u64(&u);
	d->lifetime = unpack_u64(&u);
	d->created = unpack_u64(&u);
	d->messages = unpack_u64(&u);
	d->bytes = unpack_u64(&u);
	d->last_pickup = unpack_u64(&u);
	d->claim_holder = unpack_str(&u);
	d->claim_pid = unpack_u64(&u);
	d->claim_expiry = unpack_u64(&u);
	if (version >= 2)
		d->retry = unpack_u64(&u);
	if (u.error || u.left != 0)
		goto bad;
	return 0;
bad:
	queue_domain_clear(d);
	return -1;
}
