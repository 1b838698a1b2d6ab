/*
 * NAME
 *	queue_bdb_msg 3 - messages, delivery outcomes and expiry in Berkeley DB
 * DESCRIPTION
 *	Enqueue writes the envelope, the body chunks, each domain's queue
 *	entry and expiry entry, and the counters in one transaction.
 *	Outcomes, hold, release and delete change recipient states and then
 *	settle the message: a domain with no live recipient left leaves the
 *	indexes, and the message and its body go with the last recipient.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "pack.h"
#include "queue.h"
#include "queue_backend.h"
#include "queue_bdb_int.h"
#include "queue_rec.h"
#include "xmalloc.h"

/* ---- enqueue ---- */

struct bdb_enq_arg {
	struct queue_msg *m;
	queue_reader_fn	 rd;
	void		*ctx;
	unsigned char	*chunk;
	char		(*doms)[DNAME_MAX + 1];
	size_t		 ndoms;
	struct queue_error *err;
	int		 read_failed;
};

/* bdb_domcmp - qsort helper for domain names */
static int
bdb_domcmp(const void *x, const void *y)
{
	return strcmp((const char *)x, (const char *)y);
}

/* bdb_enqueue_txn - write envelope, body, indexes and counters at once */
static int
bdb_enqueue_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_enq_arg *a = arg;
	struct queue_msg *m = a->m;
	struct bdb_stats s;
	unsigned char k[DNAME_MAX + 32], ck[12];
	struct queue_domain *dom;
	uint64_t size = 0, *expiry;
	uint32_t chunkno = 0;
	db_seq_t seq;
	size_t i;
	int rc = 0;
	DBT key, val;

	if ((rc = b->seq->get(b->seq, NULL, 1, &seq, 0)) != 0)
		return rc;
	m->arrival = bdb_now();
	m->qid = (m->arrival << 24) | ((uint64_t)seq & 0xffffff);
	queue_id_format(m->qid, m->id);

	/* the body, chunk by chunk, inside this transaction */
	for (;;) {
		size_t fill = 0;
		ssize_t n;

		while (fill < BDB_CHUNK) {
			n = a->rd(a->ctx, size + fill, a->chunk + fill,
			    BDB_CHUNK - fill);
			if (n < 0) {
				a->read_failed = 1;
				queue_error_set(a->err, "reading the message failed");
				return BDB_APP(QUEUE_ERROR);
			}
			if (n == 0)
				break;
			fill += (size_t)n;
		}
		if (fill == 0 && chunkno > 0)
			break;
		pack_be64(ck, m->qid);
		ck[8] = (unsigned char)(chunkno >> 24);
		ck[9] = (unsigned char)(chunkno >> 16);
		ck[10] = (unsigned char)(chunkno >> 8);
		ck[11] = (unsigned char)chunkno;
		key = bdb_dbt(ck, 12);
		val = bdb_dbt(a->chunk, fill);
		if ((rc = b->db[BDB_BODIES]->put(b->db[BDB_BODIES], t, &key,
		    &val, 0)) != 0)
			return rc;
		size += fill;
		chunkno++;
		if (fill < BDB_CHUNK)
			break;
	}
	m->size = size;

	/* the domains, in name order so that writers lock in one order */
	dom = xcalloc(a->ndoms, sizeof(*dom));
	expiry = xcalloc(a->ndoms, sizeof(*expiry));
	for (i = 0; i < a->ndoms; i++) {
		if ((rc = bdb_dom_get(b, t, a->doms[i], &dom[i], DB_RMW)) != 0) {
			if (rc == BDB_APP(QUEUE_NOTFOUND))
				queue_error_set(a->err, "%s is not a customer "
				    "domain", a->doms[i]);
			goto out;
		}
		if ((dom[i].max_messages && dom[i].messages + 1 >
		    dom[i].max_messages) ||
		    (dom[i].max_bytes && dom[i].bytes + size > dom[i].max_bytes)) {
			queue_error_set(a->err, "domain %s is over its quota "
			    "(%" PRIu64 " messages, %" PRIu64 " bytes queued)",
			    dom[i].name, dom[i].messages, dom[i].bytes);
			rc = BDB_APP(QUEUE_LIMIT);
			goto out;
		}
		dom[i].messages++;
		dom[i].bytes += size;
		expiry[i] = m->arrival + (dom[i].lifetime ? dom[i].lifetime :
		    b->default_lifetime);
		if ((rc = bdb_dom_put(b, t, &dom[i], 0)) != 0)
			goto out;
	}
	if ((rc = bdb_msg_put(b, t, m, DB_NOOVERWRITE)) != 0) {
		if (rc == DB_KEYEXIST)
			rc = DB_LOCK_DEADLOCK;	/* id collision: retry */
		goto out;
	}
	for (i = 0; i < a->ndoms; i++) {
		if ((rc = bdb_dq_put(b, t, a->doms[i], m, expiry[i])) != 0)
			goto out;
		key = bdb_dbt(k, bdb_exp_key(k, expiry[i], m->qid, a->doms[i]));
		val = bdb_dbt("", 0);
		if ((rc = b->db[BDB_EXPIRY]->put(b->db[BDB_EXPIRY], t, &key,
		    &val, 0)) != 0)
			goto out;
	}
	if ((rc = bdb_stats_get(b, t, &s, DB_RMW)) != 0)
		goto out;
	s.messages++;
	s.bytes += size;
	s.recipients += m->nrcpt;
	s.enqueued++;
	rc = bdb_stats_put(b, t, &s);
out:
	for (i = 0; i < a->ndoms; i++)
		queue_domain_clear(&dom[i]);
	free(dom);
	free(expiry);
	return rc;
}

/* bdb_enqueue - backend enqueue() */
enum queue_status
bdb_enqueue(void *state, struct queue_msg *m, queue_reader_fn rd, void *ctx,
    struct queue_error *err)
{
	struct bdb_enq_arg a = { .m = m, .rd = rd, .ctx = ctx, .err = err };
	enum queue_status st;
	size_t i, j;

	/* the distinct customer domains of this message, sorted */
	a.doms = xcalloc(m->nrcpt, sizeof(*a.doms));
	for (i = 0; i < m->nrcpt; i++)
		strlcpy(a.doms[i], m->rcpt[i].domain, sizeof(a.doms[i]));
	qsort(a.doms, m->nrcpt, sizeof(*a.doms), bdb_domcmp);
	for (i = 0, j = 0; i < m->nrcpt; i++)
		if (j == 0 || strcmp(a.doms[j - 1], a.doms[i]) != 0)
			memmove(a.doms[j++], a.doms[i], sizeof(a.doms[i]));
	a.ndoms = j;
	a.chunk = xmalloc(BDB_CHUNK);
	if (err)
		err->text[0] = '\0';
	/* a retried transaction reads the body again from offset 0 */
	st = bdb_run(state, BDB_WRITE, bdb_enqueue_txn, &a, "enqueue", err);
	free(a.chunk);
	free(a.doms);
	return st;
}

/* ---- reading ---- */

struct bdb_walk_arg {
	const char	*domain;
	unsigned	 flags;
	queue_msg_fn	 fn;
	void		*fnarg;
	uint64_t	 qid;
	struct queue_msg **out;
	queue_chunk_fn	 chunk_fn;
	int		 stopped;
};

/* bdb_msg_filter - keep only one domain's (deliverable) recipients */
static void
bdb_msg_filter(struct queue_msg *m, const char *domain, unsigned flags)
{
	size_t i, j;

	for (i = 0, j = 0; i < m->nrcpt; i++) {
		struct queue_rcpt *r = &m->rcpt[i];
		int keep = strcmp(r->domain, domain) == 0 &&
		    queue_rcpt_live(r->state);

		if (keep && (flags & QUEUE_WALK_DELIVERABLE))
			keep = r->state == QUEUE_RCPT_QUEUED;
		if (keep)
			m->rcpt[j++] = *r;
		else {
			free(r->addr);
			free(r->orcpt);
			free(r->last_error);
		}
	}
	m->nrcpt = j;
}

/* bdb_walk_txn - one domain's messages in arrival order */
static int
bdb_walk_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_walk_arg *a = arg;
	unsigned char k[DNAME_MAX + 10];
	size_t n = strlen(a->domain);
	struct queue_msg m;
	DBC *c;
	DBT key, val;
	int rc, crc;
	u_int32_t op = DB_SET_RANGE;

	a->stopped = 0;
	if ((rc = b->db[BDB_DOMAINQ]->cursor(b->db[BDB_DOMAINQ], t, &c, 0)) != 0)
		return rc;
	memcpy(k, a->domain, n + 1);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = (u_int32_t)(n + 1);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, op)) == 0) {
		op = DB_NEXT;
		if (key.size != n + 9 || memcmp(k, a->domain, n + 1) != 0)
			break;
		if (val.size < 8 || queue_rec_msg_decode((unsigned char *)val.data
		    + 8, val.size - 8, &m) < 0) {
			rc = EINVAL;	/* corrupt entry: check reports it */
			break;
		}
		bdb_msg_filter(&m, a->domain, a->flags);
		crc = m.nrcpt ? a->fn(&m, a->fnarg) : 0;
		queue_msg_clear(&m);
		if (crc != 0) {
			a->stopped = crc;
			break;
		}
	}
	c->close(c);
	if (rc == DB_BUFFER_SMALL)	/* a longer key: another domain */
		rc = 0;
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_walk - backend walk() */
enum queue_status
bdb_walk(void *state, const char *domain, unsigned flags, queue_msg_fn fn,
    void *fnarg, struct queue_error *err)
{
	struct bdb_walk_arg a = { .domain = domain, .flags = flags, .fn = fn,
	    .fnarg = fnarg };

	return bdb_run(state, BDB_READ, bdb_walk_txn, &a, "walk", err);
}

/* bdb_get_txn - read one message */
static int
bdb_get_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_walk_arg *a = arg;
	struct queue_msg *m = xcalloc(1, sizeof(*m));
	int rc;

	if ((rc = bdb_msg_get(b, t, a->qid, m, 0)) != 0) {
		free(m);
		return rc;
	}
	*a->out = m;
	return 0;
}

/* bdb_get - backend get() */
enum queue_status
bdb_get(void *state, uint64_t qid, struct queue_msg **mp,
    struct queue_error *err)
{
	struct bdb_walk_arg a = { .qid = qid, .out = mp };
	char id[QUEUE_ID_LEN + 1];
	enum queue_status st;

	st = bdb_run(state, BDB_READ, bdb_get_txn, &a, "get", err);
	if (st == QUEUE_NOTFOUND) {
		queue_id_format(qid, id);
		queue_error_set(err, "no such message: %s", id);
	}
	return st;
}

/* bdb_body_txn - stream the chunks of one body */
static int
bdb_body_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_walk_arg *a = arg;
	unsigned char k[12];
	DBC *c;
	DBT key, val;
	uint32_t expect = 0;
	int rc, crc;
	u_int32_t op = DB_SET_RANGE;

	a->stopped = 0;
	if ((rc = b->db[BDB_BODIES]->cursor(b->db[BDB_BODIES], t, &c, 0)) != 0)
		return rc;
	pack_be64(k, a->qid);
	memset(k + 8, 0, 4);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = 12;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, op)) == 0) {
		op = DB_NEXT;
		if (key.size != 12 || unpack_be64(k) != a->qid)
			break;
		if ((((uint32_t)k[8] << 24) | ((uint32_t)k[9] << 16) |
		    ((uint32_t)k[10] << 8) | k[11]) != expect++) {
			rc = EINVAL;	/* a gap in the chunks */
			break;
		}
		if (val.size && (crc = a->chunk_fn(val.data, val.size,
		    a->fnarg)) != 0) {
			a->stopped = crc;
			break;
		}
	}
	c->close(c);
	if (rc == DB_NOTFOUND || rc == DB_BUFFER_SMALL)
		rc = 0;
	if (rc == 0 && expect == 0 && !a->stopped)
		rc = BDB_APP(QUEUE_NOTFOUND);
	return rc;
}

/* bdb_body_read - backend body_read() */
enum queue_status
bdb_body_read(void *state, uint64_t qid, queue_chunk_fn fn, void *fnarg,
    struct queue_error *err)
{
	struct bdb_walk_arg a = { .qid = qid, .chunk_fn = fn, .fnarg = fnarg };
	char id[QUEUE_ID_LEN + 1];
	enum queue_status st;

	st = bdb_run(state, BDB_READ, bdb_body_txn, &a, "body read", err);
	if (st == QUEUE_NOTFOUND) {
		queue_id_format(qid, id);
		queue_error_set(err, "no such message: %s", id);
	}
	return st;
}

/* ---- outcomes, hold, release, delete ---- */

/* bdb_body_del - delete every chunk of a body */
static int
bdb_body_del(struct bdb *b, DB_TXN *t, uint64_t qid)
{
	unsigned char k[12];
	DBC *c;
	DBT key, val;
	int rc;
	u_int32_t op = DB_SET_RANGE;

	if ((rc = b->db[BDB_BODIES]->cursor(b->db[BDB_BODIES], t, &c,
	    0)) != 0)
		return rc;
	pack_be64(k, qid);
	memset(k + 8, 0, 4);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = 12;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL;	/* no need to read the bytes */
	while ((rc = c->get(c, &key, &val, op | DB_RMW)) == 0) {
		op = DB_NEXT;
		if (key.size != 12 || unpack_be64(k) != qid)
			break;
		if ((rc = c->del(c, 0)) != 0)
			break;
	}
	c->close(c);
	return rc == DB_NOTFOUND || rc == DB_BUFFER_SMALL ? 0 : rc;
}

/*
 * bdb_settle - after recipient states changed: retire the domains that
 * have no live recipient left, and the message when none is left at
 * all; otherwise write the updated record. The domains still live get
 * a fresh copy of the record in their queue entry.
 */
static int
bdb_settle(struct bdb *b, DB_TXN *t, struct queue_msg *m,
    struct bdb_stats *s)
{
	unsigned char k[DNAME_MAX + 32];
	size_t i, j;
	int rc;
	DBT key;

	for (i = 0; i < m->nrcpt; i++) {
		const char *d = m->rcpt[i].domain;
		struct queue_domain dom;
		uint64_t exp;
		int seen = 0;

		for (j = 0; j < i; j++)
			if (strcmp(m->rcpt[j].domain, d) == 0)
				seen = 1;
		if (seen)
			continue;
		rc = bdb_dq_expiry(b, t, d, m->qid, &exp, DB_RMW);
		if (rc == DB_NOTFOUND)
			continue;	/* retired earlier */
		if (rc != 0)
			return rc;
		if (bdb_has_live(m, d)) {
			/* still queued here: refresh the record copy */
			if ((rc = bdb_dq_put(b, t, d, m, exp)) != 0)
				return rc;
			continue;
		}
		/* no live recipient left in d: retire the domain's entries */
		{
			unsigned char ek[DNAME_MAX + 32];
			DBT ekey = bdb_dbt(ek, bdb_exp_key(ek, exp, m->qid, d));

			rc = b->db[BDB_EXPIRY]->del(b->db[BDB_EXPIRY], t, &ekey, 0);
			if (rc != 0 && rc != DB_NOTFOUND)
				return rc;
		}
		key = bdb_dbt(k, bdb_dq_key(k, d, m->qid));
		if ((rc = b->db[BDB_DOMAINQ]->del(b->db[BDB_DOMAINQ], t, &key,
		    0)) != 0)
			return rc;
		rc = bdb_dom_get(b, t, d, &dom, DB_RMW);
		if (rc == BDB_APP(QUEUE_NOTFOUND))
			continue;
		if (rc != 0)
			return rc;
		dom.messages = bdb_sub(dom.messages, 1);
		dom.bytes = bdb_sub(dom.bytes, m->size);
		rc = bdb_dom_put(b, t, &dom, 0);
		queue_domain_clear(&dom);
		if (rc != 0)
			return rc;
	}
	if (bdb_has_live(m, NULL))
		return bdb_msg_put(b, t, m, 0);
	unsigned char mk[8];

	pack_be64(mk, m->qid);
	key = bdb_dbt(mk, 8);
	if ((rc = b->db[BDB_MESSAGES]->del(b->db[BDB_MESSAGES], t, &key, 0)) != 0)
		return rc;
	s->messages = bdb_sub(s->messages, 1);
	s->bytes = bdb_sub(s->bytes, m->size);
	return bdb_body_del(b, t, m->qid);
}

struct bdb_rec_arg {
	const struct queue_outcome *o;
	size_t		 n;
	enum queue_op	 op;
	uint64_t	 qid;
	const char	*domain;
	uint64_t	*qids;
	size_t		 nqids;
	uint64_t	 changed;
};

/* bdb_qidcmp - order outcomes by message */
static int
bdb_outcmp(const void *x, const void *y)
{
	const struct queue_outcome *a = x, *b = y;

	if (a->qid != b->qid)
		return a->qid < b->qid ? -1 : 1;
	return a->rcpt_index < b->rcpt_index ? -1 : a->rcpt_index > b->rcpt_index;
}

/* bdb_record_txn - apply a batch of outcomes, message by message */
static int
bdb_record_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_rec_arg *a = arg;
	struct bdb_stats s;
	struct queue_msg m;
	uint64_t now = bdb_now();
	size_t i = 0, j;
	int rc;

	if ((rc = bdb_stats_get(b, t, &s, DB_RMW)) != 0)
		return rc;
	while (i < a->n) {
		uint64_t qid = a->o[i].qid;

		for (j = i; j < a->n && a->o[j].qid == qid; j++)
			;
		rc = bdb_msg_get(b, t, qid, &m, DB_RMW);
		if (rc == BDB_APP(QUEUE_NOTFOUND)) {
			i = j;		/* already gone: nothing to record */
			continue;
		}
		if (rc != 0)
			return rc;
		for (; i < j; i++) {
			const struct queue_outcome *o = &a->o[i];
			struct queue_rcpt *r;

			if (o->rcpt_index >= m.nrcpt)
				continue;
			r = &m.rcpt[o->rcpt_index];
			if (!queue_rcpt_live(r->state))
				continue;	/* recorded twice: idempotent */
			r->attempts++;
			r->last_attempt = now;
			if (o->text) {
				free(r->last_error);
				r->last_error = xstrndup(o->text, 1000);
			}
			switch (o->kind) {
			case QUEUE_OUTCOME_DELIVERED:
				r->state = QUEUE_RCPT_DELIVERED;
				s.delivered++;
				s.recipients = bdb_sub(s.recipients, 1);
				break;
			case QUEUE_OUTCOME_FAILED:
				r->state = QUEUE_RCPT_FAILED;
				s.failed++;
				s.recipients = bdb_sub(s.recipients, 1);
				break;
			case QUEUE_OUTCOME_DEFERRED:
				s.deferred++;
				break;
			}
			a->changed++;
		}
		rc = bdb_settle(b, t, &m, &s);
		queue_msg_clear(&m);
		if (rc != 0)
			return rc;
	}
	return bdb_stats_put(b, t, &s);
}

/* bdb_record - backend record() */
enum queue_status
bdb_record(void *state, const struct queue_outcome *o, size_t n,
    struct queue_error *err)
{
	struct queue_outcome *sorted = xcalloc(n, sizeof(*sorted));
	struct bdb_rec_arg a = { .o = sorted, .n = n };
	enum queue_status st;

	memcpy(sorted, o, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), bdb_outcmp);
	st = bdb_run(state, BDB_WRITE, bdb_record_txn, &a, "record", err);
	free(sorted);
	return st;
}

/* bdb_apply_op - hold/release/delete the matching recipients of m */
static uint64_t
bdb_apply_op(struct queue_msg *m, enum queue_op op, const char *domain,
    struct bdb_stats *s)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < m->nrcpt; i++) {
		struct queue_rcpt *r = &m->rcpt[i];

		if (domain && strcmp(r->domain, domain) != 0)
			continue;
		if (op == QUEUE_OP_HOLD && r->state == QUEUE_RCPT_QUEUED)
			r->state = QUEUE_RCPT_HELD;
		else if (op == QUEUE_OP_RELEASE && r->state == QUEUE_RCPT_HELD)
			r->state = QUEUE_RCPT_QUEUED;
		else if (op == QUEUE_OP_DELETE && queue_rcpt_live(r->state)) {
			r->state = QUEUE_RCPT_DELETED;
			s->recipients = bdb_sub(s->recipients, 1);
		} else
			continue;
		n++;
	}
	return n;
}

/* bdb_msg_op_txn - apply an operation to a list of messages */
static int
bdb_msg_op_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_rec_arg *a = arg;
	struct bdb_stats s;
	struct queue_msg m;
	size_t i;
	int rc, touched = 0;

	a->changed = 0;
	if ((rc = bdb_stats_get(b, t, &s, DB_RMW)) != 0)
		return rc;
	for (i = 0; i < a->nqids; i++) {
		uint64_t n;

		rc = bdb_msg_get(b, t, a->qids[i], &m, DB_RMW);
		if (rc == BDB_APP(QUEUE_NOTFOUND))
			continue;
		if (rc != 0)
			return rc;
		n = bdb_apply_op(&m, a->op, a->domain, &s);
		if (n > 0) {
			touched++;
			if (a->op == QUEUE_OP_DELETE)
				s.deleted++;
			rc = bdb_settle(b, t, &m, &s);
		}
		queue_msg_clear(&m);
		if (rc != 0)
			return rc;
		a->changed += n ? 1 : 0;
	}
	if (touched == 0)
		return BDB_APP(QUEUE_NOTFOUND);
	return bdb_stats_put(b, t, &s);
}

/* bdb_msg_op - backend msg_op() */
enum queue_status
bdb_msg_op(void *state, enum queue_op op, uint64_t qid, const char *domain,
    struct queue_error *err)
{
	struct bdb_rec_arg a = { .op = op, .domain = domain, .qids = &qid,
	    .nqids = 1 };
	char id[QUEUE_ID_LEN + 1];
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_msg_op_txn, &a, "update", err);
	if (st == QUEUE_NOTFOUND) {
		queue_id_format(qid, id);
		queue_error_set(err, "%s: no such message%s%s, or nothing to %s",
		    id, domain ? " in " : "", domain ? domain : "",
		    op == QUEUE_OP_HOLD ? "hold" : op == QUEUE_OP_RELEASE ?
		    "release" : "delete");
	}
	return st;
}

struct bdb_collect {
	uint64_t	*qids;
	size_t		 n, max;
	uint64_t	 after;
};

/* bdb_collect_fn - gather one batch of qids from a walk */
static int
bdb_collect_fn(const struct queue_msg *m, void *arg)
{
	struct bdb_collect *c = arg;

	if (m->qid <= c->after)
		return 0;
	c->qids[c->n++] = m->qid;
	return c->n == c->max ? 1 : 0;
}

/* bdb_domain_op - backend domain_op(): batches of BDB_BATCH messages */
enum queue_status
bdb_domain_op(void *state, enum queue_op op, const char *domain,
    uint64_t *count, struct queue_error *err)
{
	struct bdb_collect c = { .max = BDB_BATCH };
	struct bdb_walk_arg w = { .domain = domain, .fn = bdb_collect_fn,
	    .fnarg = &c };
	struct bdb_rec_arg a = { .op = op, .domain = domain };
	enum queue_status st;

	*count = 0;
	st = bdb_domain_exists(state, domain, err);
	if (st != QUEUE_OK) {
		if (st == QUEUE_NOTFOUND)
			queue_error_set(err, "no such domain: %s", domain);
		return st;
	}
	c.qids = xcalloc(BDB_BATCH, sizeof(uint64_t));
	for (;;) {
		c.n = 0;
		st = bdb_run(state, BDB_READ, bdb_walk_txn, &w, "walk", err);
		if (st != QUEUE_OK || c.n == 0)
			break;
		a.qids = c.qids;
		a.nqids = c.n;
		st = bdb_run(state, BDB_WRITE, bdb_msg_op_txn, &a, "update", err);
		if (st == QUEUE_OK)
			*count += a.changed;
		else if (st != QUEUE_NOTFOUND)
			break;
		c.after = c.qids[c.n - 1];
		if (c.n < c.max)
			break;
	}
	free(c.qids);
	if (st == QUEUE_OK || st == QUEUE_NOTFOUND) {
		if (*count == 0) {
			queue_error_set(err, "%s: no message to %s", domain,
			    op == QUEUE_OP_HOLD ? "hold" : op == QUEUE_OP_RELEASE ?
			    "release" : "delete");
			return QUEUE_NOTFOUND;
		}
		return QUEUE_OK;
	}
	return st;
}

/* ---- maintenance ---- */

struct bdb_exp_arg {
	uint64_t	 now;
	size_t		 limit;
	queue_expire_fn	 fn;
	void		*fnarg;
};

/* bdb_expire_txn - walk expiry.db from the start up to now */
static int
bdb_expire_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_exp_arg *a = arg;
	char dom[DNAME_MAX + 1];
	size_t seen = 0;
	DBC *c;
	DBT key, val;
	int rc;

	if ((rc = b->db[BDB_EXPIRY]->cursor(b->db[BDB_EXPIRY], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		const unsigned char *k = key.data;
		uint64_t exp;
		size_t dl;

		if (key.size < 17 || key.size > 16 + DNAME_MAX) {
			rc = EINVAL;
			break;
		}
		exp = unpack_be64(k);
		if (exp > a->now || (a->limit && seen >= a->limit))
			break;
		dl = key.size - 16;
		memcpy(dom, k + 16, dl);
		dom[dl] = '\0';
		seen++;
		if (a->fn(unpack_be64(k + 8), dom, exp, a->fnarg) != 0)
			break;
	}
	c->close(c);
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_expire_scan - backend expire_scan(): cost follows what expired */
enum queue_status
bdb_expire_scan(void *state, uint64_t now, size_t limit, queue_expire_fn fn,
    void *fnarg, struct queue_error *err)
{
	struct bdb_exp_arg a = { now, limit, fn, fnarg };

	return bdb_run(state, BDB_READ, bdb_expire_txn, &a, "expiry scan", err);
}
