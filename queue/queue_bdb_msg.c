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

/*
 * Group commit. Concurrent enqueues do not each run a transaction: they
 * join a queue of requests, and whichever caller finds no batch being
 * written becomes the leader and writes up to BDB_GC_BATCH waiting
 * messages in one transaction and one log flush, then wakes the others.
 * Each message is written in a child transaction, so one that cannot be
 * taken (unknown domain, quota, unreadable body) is refused alone; the
 * counters of the whole batch are updated once, at the end, in the
 * lock order every writer shares (messages, bodies, domain queue,
 * expiry, domains, meta).
 */
struct bdb_enq_arg {
	struct queue_msg *m;
	queue_reader_fn	 rd;
	void		*ctx;
	unsigned char	*chunk;		/* the leader's, while it writes */
	char		(*doms)[DNAME_MAX + 1];
	size_t		 ndoms;
	struct queue_error *err;
	enum queue_status st;		/* this message's own result */
	int		 survived;	/* found durable after a failed flush */
	int		 done;
	struct bdb_enq_arg *next;	/* in the waiting queue */
};

/* One customer domain touched by a batch: its quota state in memory. */
struct bdb_gc_dom {
	char		 name[DNAME_MAX + 1];
	int		 exists;
	uint64_t	 lifetime, max_messages, max_bytes;
	uint64_t	 messages, bytes;	/* as read, plus the batch */
	uint64_t	 add_msgs, add_bytes;	/* what the batch adds */
};

struct bdb_gc_batch {
	struct bdb_enq_arg **req;
	size_t		 n;
	struct bdb_gc_dom *doms;
	size_t		 ndoms;
	unsigned char	*chunk;
};

/* bdb_domcmp - qsort helper for domain names */
static int
bdb_domcmp(const void *x, const void *y)
{
	return strcmp((const char *)x, (const char *)y);
}

/* bdb_body_put - store the body in chunks; returns its size in *sizep */
static int
bdb_body_put(struct bdb *b, DB_TXN *t, struct bdb_enq_arg *a, uint64_t qid,
    uint64_t *sizep)
{
	unsigned char ck[12];
	uint64_t size = 0;
	uint32_t chunkno = 0;
	DBT key, val;
	int rc;

	for (;;) {
		size_t fill = 0;
		ssize_t n;

		while (fill < BDB_CHUNK) {
			n = a->rd(a->ctx, size + fill, a->chunk + fill,
			    BDB_CHUNK - fill);
			if (n < 0) {
				queue_error_set(a->err, "reading the message failed");
				return BDB_APP(QUEUE_ERROR);
			}
			if (n == 0)
				break;
			fill += (size_t)n;
		}
		if (fill == 0 && chunkno > 0)
			break;
		pack_be64(ck, qid);
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
	*sizep = size;
	return 0;
}

/* bdb_gc_dom_find - the batch's entry for a domain */
static struct bdb_gc_dom *
bdb_gc_dom_find(struct bdb_gc_batch *g, const char *name)
{
	size_t lo = 0, hi = g->ndoms;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(g->doms[mid].name, name);

		if (c == 0)
			return &g->doms[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* bdb_gc_dom_cmp - qsort helper for the batch's domains */
static int
bdb_gc_dom_cmp(const void *x, const void *y)
{
	return strcmp(((const struct bdb_gc_dom *)x)->name,
	    ((const struct bdb_gc_dom *)y)->name);
}

/* bdb_gc_domains - collect the batch's distinct domains, sorted */
static void
bdb_gc_domains(struct bdb_gc_batch *g)
{
	size_t i, j, n = 0, max = 0;

	for (i = 0; i < g->n; i++)
		max += g->req[i]->ndoms;
	g->doms = xcalloc(max ? max : 1, sizeof(*g->doms));
	for (i = 0; i < g->n; i++)
		for (j = 0; j < g->req[i]->ndoms; j++)
			strlcpy(g->doms[n++].name, g->req[i]->doms[j],
			    sizeof(g->doms[0].name));
	qsort(g->doms, n, sizeof(*g->doms), bdb_gc_dom_cmp);
	for (i = 0, j = 0; i < n; i++)
		if (j == 0 || strcmp(g->doms[j - 1].name, g->doms[i].name) != 0)
			g->doms[j++] = g->doms[i];
	g->ndoms = j;
}

/* bdb_gc_write_one - one message, inside its child transaction */
static int
bdb_gc_write_one(struct bdb *b, DB_TXN *t, struct bdb_gc_batch *g,
    struct bdb_enq_arg *a)
{
	struct queue_msg *m = a->m;
	unsigned char k[DNAME_MAX + 32];
	struct bdb_gc_dom *d;
	db_seq_t seq;
	size_t i;
	int rc;
	DBT key, val;

	if (m->reserved_qid != 0) {
		/* queue_id_reserve(): the id and the arrival are set */
		m->qid = m->reserved_qid;
		m->arrival = m->qid >> 24;
	} else {
		if ((rc = b->seq->get(b->seq, NULL, 1, &seq, 0)) != 0)
			return rc;
		m->arrival = bdb_now();
		m->qid = queue_id_make(m->arrival, (uint64_t)seq);
	}
	queue_id_format(m->qid, m->id);
	/* the envelope (size still unknown), then the body */
	m->size = 0;
	if ((rc = bdb_msg_put(b, t, m, DB_NOOVERWRITE)) != 0) {
		/* a fresh id that is taken: retry with another; a reserved
		 * one cannot change, and is an error */
		if (rc == DB_KEYEXIST && m->reserved_qid == 0)
			return DB_LOCK_DEADLOCK;
		return rc;
	}
	a->chunk = g->chunk;
	if ((rc = bdb_body_put(b, t, a, m->qid, &m->size)) != 0)
		return rc;
	for (i = 0; i < a->ndoms; i++) {
		d = bdb_gc_dom_find(g, a->doms[i]);
		if ((d->max_messages && d->messages + 1 > d->max_messages) ||
		    (d->max_bytes && d->bytes + m->size > d->max_bytes)) {
			queue_error_set(a->err, "domain %s is over its quota "
			    "(%" PRIu64 " messages, %" PRIu64 " bytes queued)",
			    d->name, d->messages, d->bytes);
			return BDB_APP(QUEUE_LIMIT);
		}
	}
	if ((rc = bdb_msg_put(b, t, m, 0)) != 0)
		return rc;
	for (i = 0; i < a->ndoms; i++) {
		d = bdb_gc_dom_find(g, a->doms[i]);
		if ((rc = bdb_dq_put(b, t, d->name, m, m->arrival +
		    d->lifetime)) != 0)
			return rc;
	}
	for (i = 0; i < a->ndoms; i++) {
		d = bdb_gc_dom_find(g, a->doms[i]);
		key = bdb_dbt(k, bdb_exp_key(k, m->arrival + d->lifetime,
		    m->qid, d->name));
		val = bdb_dbt("", 0);
		if ((rc = b->db[BDB_EXPIRY]->put(b->db[BDB_EXPIRY], t, &key,
		    &val, 0)) != 0)
			return rc;
	}
	return 0;
}

/* bdb_gc_txn - write one batch of enqueues in one transaction */
static int
bdb_gc_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_gc_batch *g = arg;
	struct queue_domain dom;
	struct bdb_stats s;
	uint64_t msgs = 0, bytes = 0, rcpts = 0;
	size_t i, j;
	int rc;

	/* quotas and lifetimes, read without keeping a lock */
	for (i = 0; i < g->ndoms; i++) {
		struct bdb_gc_dom *d = &g->doms[i];

		rc = bdb_dom_get(b, t, d->name, &dom, DB_READ_COMMITTED);
		d->exists = rc == 0;
		d->add_msgs = d->add_bytes = 0;
		if (rc == BDB_APP(QUEUE_NOTFOUND))
			continue;
		if (rc != 0)
			return rc;
		d->lifetime = dom.lifetime ? dom.lifetime : b->default_lifetime;
		d->max_messages = dom.max_messages;
		d->max_bytes = dom.max_bytes;
		d->messages = dom.messages;
		d->bytes = dom.bytes;
		queue_domain_clear(&dom);
	}
	/* each message in its own child transaction */
	for (i = 0; i < g->n; i++) {
		struct bdb_enq_arg *a = g->req[i];
		DB_TXN *c;

		a->st = QUEUE_OK;
		if (a->err)
			a->err->text[0] = '\0';
		for (j = 0; j < a->ndoms; j++)
			if (!bdb_gc_dom_find(g, a->doms[j])->exists) {
				queue_error_set(a->err, "%s is not a customer "
				    "domain", a->doms[j]);
				a->st = QUEUE_NOTFOUND;
			}
		if (a->st != QUEUE_OK)
			continue;
		if ((rc = b->env->txn_begin(b->env, t, &c, 0)) != 0)
			return rc;
		rc = bdb_gc_write_one(b, c, g, a);
		if (rc != 0) {
			(void)c->abort(c);
			if (!BDB_IS_APP(rc))
				return rc;	/* the whole batch retries */
			a->st = BDB_APP_ST(rc);
			continue;
		}
		if ((rc = c->commit(c, 0)) != 0)
			return rc;
		for (j = 0; j < a->ndoms; j++) {
			struct bdb_gc_dom *d = bdb_gc_dom_find(g, a->doms[j]);

			d->messages++;
			d->bytes += a->m->size;
			d->add_msgs++;
			d->add_bytes += a->m->size;
		}
		msgs++;
		bytes += a->m->size;
		rcpts += a->m->nrcpt;
	}
	/* the counters, once for the batch, in name order */
	for (i = 0; i < g->ndoms; i++) {
		struct bdb_gc_dom *d = &g->doms[i];

		if (d->add_msgs == 0)
			continue;
		if ((rc = bdb_dom_get(b, t, d->name, &dom, DB_RMW)) != 0)
			return rc == BDB_APP(QUEUE_NOTFOUND) ?
			    DB_LOCK_DEADLOCK : rc;	/* deleted meanwhile */
		if ((dom.max_messages && dom.messages + d->add_msgs >
		    dom.max_messages) || (dom.max_bytes && dom.bytes +
		    d->add_bytes > dom.max_bytes)) {
			/* others filled the quota since we read it: redo */
			queue_domain_clear(&dom);
			return DB_LOCK_DEADLOCK;
		}
		dom.messages += d->add_msgs;
		dom.bytes += d->add_bytes;
		rc = bdb_dom_put(b, t, &dom, 0);
		queue_domain_clear(&dom);
		if (rc != 0)
			return rc;
	}
	if (msgs == 0)
		return 0;
	if ((rc = bdb_stats_get(b, t, &s, DB_RMW)) != 0)
		return rc;
	s.messages += msgs;
	s.bytes += bytes;
	s.recipients += rcpts;
	s.enqueued += msgs;
	return bdb_stats_put(b, t, &s);
}

/*
 * bdb_gc_settle - after a batch's flush failed (the store was recovered
 * between its commit and its flush, or the flush itself failed): a
 * message that exists now is on disk, since recovery rebuilds the store
 * from the log on disk alone. Mark those survived, so only the others
 * are reported failed and retried by their senders.
 */
static void
bdb_gc_settle(struct bdb *b, struct bdb_gc_batch *g)
{
	struct queue_msg *m;
	size_t i;

	for (i = 0; i < g->n; i++) {
		struct bdb_enq_arg *a = g->req[i];

		a->survived = 0;
		if (a->st != QUEUE_OK)
			continue;
		m = NULL;
		if (bdb_get(b, a->m->qid, &m, NULL) == QUEUE_OK &&
		    bdb_flush(b, b->generation, NULL) == QUEUE_OK)
			a->survived = 1;
		queue_msg_free(&m);
	}
}

/* bdb_gc_lead - write the waiting requests as one batch (gc_mu held) */
static void
bdb_gc_lead(struct bdb *b)
{
	struct bdb_gc_batch g;
	struct queue_error err;
	enum queue_status st;
	uint64_t gen;
	size_t i;
	int committed;

	memset(&g, 0, sizeof(g));
	g.req = xcalloc(BDB_GC_BATCH, sizeof(*g.req));
	while (b->gc_head != NULL && g.n < BDB_GC_BATCH) {
		g.req[g.n++] = b->gc_head;
		b->gc_head = b->gc_head->next;
	}
	if (b->gc_head == NULL)
		b->gc_tail = &b->gc_head;
	b->gc_leader = 1;
	pthread_mutex_unlock(&b->gc_mu);

	bdb_gc_domains(&g);
	g.chunk = xmalloc(BDB_CHUNK);
	memset(&err, 0, sizeof(err));
	st = bdb_run(b, BDB_WRITE | BDB_NOFLUSH, bdb_gc_txn, &g, "enqueue",
	    &err);
	gen = bdb_commit_gen;
	free(g.chunk);
	free(g.doms);

	/*
	 * Committed, not yet durable. Let the next batch be written while
	 * this one's log flush runs: the disk and the CPU overlap.
	 */
	pthread_mutex_lock(&b->gc_mu);
	b->gc_leader = 0;
	pthread_cond_broadcast(&b->gc_cv);
	pthread_mutex_unlock(&b->gc_mu);
	committed = st == QUEUE_OK;
	if (committed)
		st = bdb_flush(b, gen, &err);
	if (committed && st != QUEUE_OK)
		bdb_gc_settle(b, &g);	/* which of them survived recovery? */

	pthread_mutex_lock(&b->gc_mu);
	for (i = 0; i < g.n; i++) {
		struct bdb_enq_arg *a = g.req[i];

		if (st != QUEUE_OK && !a->survived) {
			/* the batch failed as a whole: every message with it */
			a->st = st;
			if (a->err)
				*a->err = err;
		}
		a->done = 1;
	}
	pthread_cond_broadcast(&b->gc_cv);
	free(g.req);
}

/* bdb_id_reserve - backend id_reserve(): n sequence numbers, no txn */
enum queue_status
bdb_id_reserve(void *state, unsigned n, uint64_t *first,
    struct queue_error *err)
{
	struct bdb *b = state;
	db_seq_t seq;
	int rc;

	/* the sequence has a cache, so most calls touch no page at all */
	if ((rc = b->seq->get(b->seq, NULL, (u_int32_t)n, &seq, 0)) != 0)
		return bdb_fail(rc, "reserving queue ids", err);
	*first = (uint64_t)seq;
	return QUEUE_OK;
}

/* bdb_enqueue - backend enqueue(): join the group commit queue */
enum queue_status
bdb_enqueue(void *state, struct queue_msg *m, queue_reader_fn rd, void *ctx,
    struct queue_error *err)
{
	struct bdb *b = state;
	struct bdb_enq_arg a = { .m = m, .rd = rd, .ctx = ctx, .err = err };
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
	if (err)
		err->text[0] = '\0';

	pthread_mutex_lock(&b->gc_mu);
	*b->gc_tail = &a;
	b->gc_tail = &a.next;
	while (!a.done) {
		if (!b->gc_leader && b->gc_head != NULL)
			bdb_gc_lead(b);		/* returns with gc_mu held */
		else
			pthread_cond_wait(&b->gc_cv, &b->gc_mu);
	}
	pthread_mutex_unlock(&b->gc_mu);
	free(a.doms);
	return a.st;
}

/* ---- reading ---- */

/*
 * Long reads never hold a transaction open while the caller works: a
 * walk reads BDB_BATCH queue entries in one short transaction, closes
 * it, then hands them to the callback, so a reader stalled on a slow
 * pipe holds up nothing. Each message is read whole; a long listing is
 * a series of short reads.
 */
struct bdb_batch {
	const char	*domain;
	size_t		 dlen;
	unsigned	 flags;
	uint64_t	 after;		/* resume after this qid; 0 = start */
	struct queue_msg msgs[BDB_BATCH];
	size_t		 n;
	uint64_t	 last;		/* last qid read, kept or not */
	int		 more;		/* entries remain past this batch */
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

/* bdb_batch_clear - free the messages of a batch */
static void
bdb_batch_clear(struct bdb_batch *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		queue_msg_clear(&a->msgs[i]);
	a->n = 0;
}

/* bdb_batch_txn - read the next BDB_BATCH queue entries of a domain */
static int
bdb_batch_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_batch *a = arg;
	unsigned char k[DNAME_MAX + 10];
	size_t n = a->dlen, seen = 0;
	DBC *c;
	DBT key, val;
	int rc;
	u_int32_t op = DB_SET_RANGE;

	bdb_batch_clear(a);	/* a retried transaction starts over */
	a->more = 0;
	a->last = a->after;
	if ((rc = b->db[BDB_DOMAINQ]->cursor(b->db[BDB_DOMAINQ], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = (u_int32_t)bdb_dq_key(k, a->domain, a->after ?
	    a->after + 1 : 0);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, op)) == 0) {
		struct queue_msg *m = &a->msgs[a->n];

		op = DB_NEXT;
		if (key.size != n + 9 || memcmp(k, a->domain, n + 1) != 0)
			break;
		if (seen == BDB_BATCH) {
			a->more = 1;
			break;
		}
		seen++;
		a->last = unpack_be64(k + n + 1);
		if (val.size < 8 || queue_rec_msg_decode((unsigned char *)val.data
		    + 8, val.size - 8, m) < 0) {
			rc = EINVAL;	/* corrupt entry: check reports it */
			break;
		}
		bdb_msg_filter(m, a->domain, a->flags);
		if (m->nrcpt == 0)
			queue_msg_clear(m);
		else
			a->n++;
	}
	c->close(c);
	if (rc == DB_BUFFER_SMALL)	/* a longer key: another domain */
		rc = 0;
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_walk - backend walk(): batches of short reads */
enum queue_status
bdb_walk(void *state, const char *domain, unsigned flags, queue_msg_fn fn,
    void *fnarg, struct queue_error *err)
{
	struct bdb_batch *a = xcalloc(1, sizeof(*a));
	enum queue_status st;
	size_t i;
	int stop = 0;

	a->domain = domain;
	a->dlen = strlen(domain);
	a->flags = flags;
	do {
		st = bdb_run(state, BDB_READ, bdb_batch_txn, a, "walk", err);
		if (st != QUEUE_OK)
			break;
		for (i = 0; i < a->n && !stop; i++)
			stop = fn(&a->msgs[i], fnarg);
		bdb_batch_clear(a);
		a->after = a->last;
	} while (a->more && !stop);
	bdb_batch_clear(a);
	free(a);
	return st;
}

struct bdb_get_arg {
	uint64_t	 qid;
	struct queue_msg **out;
};

/* bdb_get_txn - read one message */
static int
bdb_get_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_get_arg *a = arg;
	struct queue_msg *m = xcalloc(1, sizeof(*m));
	int rc;

	if ((rc = bdb_msg_get(b, t, a->qid, m, 0)) != 0) {
		free(m);
		return rc;
	}
	queue_msg_free(a->out);	/* from an earlier try */
	*a->out = m;
	return 0;
}

/* bdb_get - backend get() */
enum queue_status
bdb_get(void *state, uint64_t qid, struct queue_msg **mp,
    struct queue_error *err)
{
	struct bdb_get_arg a = { qid, mp };
	char id[QUEUE_ID_LEN + 1];
	enum queue_status st;

	st = bdb_run(state, BDB_READ, bdb_get_txn, &a, "get", err);
	if (st == QUEUE_NOTFOUND) {
		queue_id_format(qid, id);
		queue_error_set(err, "no such message: %s", id);
	}
	return st;
}

struct bdb_body_arg {
	uint64_t	 qid;
	uint64_t	 size;		/* from the record, read first */
	int		 have_size;
	uint32_t	 chunkno;
	DBT		 data;		/* DB_DBT_REALLOC, reused */
	int		 found;
};

/* bdb_body_chunk_txn - read one chunk (and the size, the first time) */
static int
bdb_body_chunk_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_body_arg *a = arg;
	unsigned char k[12];
	struct queue_msg m;
	DBT key;
	int rc;

	if (!a->have_size) {
		if ((rc = bdb_msg_get(b, t, a->qid, &m, DB_READ_COMMITTED)) != 0)
			return rc;
		a->size = m.size;
		a->have_size = 1;
		queue_msg_clear(&m);
	}
	pack_be64(k, a->qid);
	k[8] = (unsigned char)(a->chunkno >> 24);
	k[9] = (unsigned char)(a->chunkno >> 16);
	k[10] = (unsigned char)(a->chunkno >> 8);
	k[11] = (unsigned char)a->chunkno;
	key = bdb_dbt(k, 12);
	rc = b->db[BDB_BODIES]->get(b->db[BDB_BODIES], t, &key, &a->data,
	    DB_READ_COMMITTED);
	a->found = rc == 0;
	return rc == DB_NOTFOUND ? 0 : rc;
}

/*
 * bdb_body_read - backend body_read(): one short transaction per chunk
 * and no lock held while the caller writes the bytes out,
 * so a slow reader never holds up delivery. A body that shrinks under
 * the reader (the message was delivered meanwhile) is reported as gone
 * rather than passed on truncated.
 */
enum queue_status
bdb_body_read(void *state, uint64_t qid, queue_chunk_fn fn, void *fnarg,
    struct queue_error *err)
{
	struct bdb_body_arg a;
	char id[QUEUE_ID_LEN + 1];
	enum queue_status st;
	uint64_t total = 0;

	memset(&a, 0, sizeof(a));
	a.qid = qid;
	a.data.flags = DB_DBT_REALLOC;
	queue_id_format(qid, id);
	for (;;) {
		st = bdb_run(state, BDB_LOCKED, bdb_body_chunk_txn, &a,
		    "body read", err);
		if (st != QUEUE_OK)
			break;
		if (!a.found)
			break;
		total += a.data.size;
		if (a.data.size && fn(a.data.data, a.data.size, fnarg) != 0)
			break;
		a.chunkno++;
		if (a.data.size < BDB_CHUNK || total >= a.size)
			break;		/* the last chunk is the short one */
	}
	free(a.data.data);
	if (st == QUEUE_OK && (total != a.size || (!a.found && a.chunkno == 0)))
		st = QUEUE_NOTFOUND;
	if (st == QUEUE_NOTFOUND)
		queue_error_set(err, "no such message: %s (or it left the queue "
		    "while being read)", id);
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
 * A write transaction that changes recipients works in two steps.
 * First it reads each message (in qid order, locking it) and changes
 * the states in memory, collecting the messages in a struct bdb_work.
 * Then bdb_work_commit() writes everything back in the one lock order
 * all writers share: messages, bodies, domain queue, expiry, domains,
 * meta. Counters change by deltas applied at the end.
 */
struct bdb_work {
	struct queue_msg *msgs;		/* changed messages, owned */
	size_t		 n, max;
	struct bdb_stats d;		/* deltas of the counters */
	uint64_t	 gone_msgs, gone_bytes, gone_rcpts;
};

struct bdb_dqop {
	const char	*domain;
	struct queue_msg *m;
	uint64_t	 expiry;
	int		 retire;
};

/* bdb_work_add - take ownership of a changed message */
static void
bdb_work_add(struct bdb_work *w, struct queue_msg *m)
{
	if (w->n == w->max) {
		w->max = w->max ? w->max * 2 : 8;
		w->msgs = xreallocarray(w->msgs, w->max, sizeof(*w->msgs));
	}
	w->msgs[w->n++] = *m;
	memset(m, 0, sizeof(*m));
}

/* bdb_work_clear - free a work list */
static void
bdb_work_clear(struct bdb_work *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		queue_msg_clear(&w->msgs[i]);
	free(w->msgs);
	memset(w, 0, sizeof(*w));
}

/* bdb_dqopcmp - domain queue operations in key order */
static int
bdb_dqopcmp(const void *x, const void *y)
{
	const struct bdb_dqop *a = x, *b = y;
	int c = strcmp(a->domain, b->domain);

	if (c)
		return c;
	return a->m->qid < b->m->qid ? -1 : a->m->qid > b->m->qid;
}

/* bdb_expopcmp - expiry deletions in key order */
static int
bdb_expopcmp(const void *x, const void *y)
{
	const struct bdb_dqop *a = x, *b = y;

	if (a->expiry != b->expiry)
		return a->expiry < b->expiry ? -1 : 1;
	if (a->m->qid != b->m->qid)
		return a->m->qid < b->m->qid ? -1 : 1;
	return strcmp(a->domain, b->domain);
}

/* bdb_work_domains - the (domain, message) pairs of a work list */
static struct bdb_dqop *
bdb_work_domains(struct bdb_work *w, size_t *np)
{
	struct bdb_dqop *ops = NULL;
	size_t i, j, l, n = 0, max = 0;

	for (i = 0; i < w->n; i++) {
		struct queue_msg *m = &w->msgs[i];

		for (j = 0; j < m->nrcpt; j++) {
			int seen = 0;

			for (l = 0; l < j; l++)
				if (strcmp(m->rcpt[l].domain,
				    m->rcpt[j].domain) == 0)
					seen = 1;
			if (seen)
				continue;
			if (n == max) {
				max = max ? max * 2 : 8;
				ops = xreallocarray(ops, max, sizeof(*ops));
			}
			ops[n].domain = m->rcpt[j].domain;
			ops[n].m = m;
			ops[n].expiry = 0;
			ops[n].retire = !bdb_has_live(m, m->rcpt[j].domain);
			n++;
		}
	}
	*np = n;
	return ops;
}

/* bdb_work_commit - write a work list back, in the shared lock order */
static int
bdb_work_commit(struct bdb *b, DB_TXN *t, struct bdb_work *w)
{
	unsigned char k[DNAME_MAX + 32];
	struct queue_domain dom;
	struct bdb_dqop *ops;
	struct bdb_stats s;
	size_t i, n;
	int rc = 0;
	DBT key;

	/* messages: rewrite, or delete the finished ones */
	for (i = 0; i < w->n && rc == 0; i++) {
		struct queue_msg *m = &w->msgs[i];

		if (bdb_has_live(m, NULL)) {
			rc = bdb_msg_put(b, t, m, 0);
			continue;
		}
		pack_be64(k, m->qid);
		key = bdb_dbt(k, 8);
		rc = b->db[BDB_MESSAGES]->del(b->db[BDB_MESSAGES], t, &key, 0);
		w->gone_msgs++;
		w->gone_bytes += m->size;
	}
	/* bodies of the finished ones */
	for (i = 0; i < w->n && rc == 0; i++)
		if (!bdb_has_live(&w->msgs[i], NULL))
			rc = bdb_body_del(b, t, w->msgs[i].qid);
	if (rc != 0)
		return rc;
	/* domain queue entries: refresh the copy, or retire */
	ops = bdb_work_domains(w, &n);
	qsort(ops, n, sizeof(*ops), bdb_dqopcmp);
	for (i = 0; i < n && rc == 0; i++) {
		rc = bdb_dq_expiry(b, t, ops[i].domain, ops[i].m->qid,
		    &ops[i].expiry, DB_RMW);
		if (rc == DB_NOTFOUND) {
			ops[i].retire = 0;	/* retired earlier */
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		if (!ops[i].retire) {
			rc = bdb_dq_put(b, t, ops[i].domain, ops[i].m,
			    ops[i].expiry);
			continue;
		}
		key = bdb_dbt(k, bdb_dq_key(k, ops[i].domain, ops[i].m->qid));
		rc = b->db[BDB_DOMAINQ]->del(b->db[BDB_DOMAINQ], t, &key, 0);
	}
	/* their expiry entries */
	qsort(ops, n, sizeof(*ops), bdb_expopcmp);
	for (i = 0; i < n && rc == 0; i++) {
		if (!ops[i].retire)
			continue;
		key = bdb_dbt(k, bdb_exp_key(k, ops[i].expiry, ops[i].m->qid,
		    ops[i].domain));
		rc = b->db[BDB_EXPIRY]->del(b->db[BDB_EXPIRY], t, &key, 0);
		if (rc == DB_NOTFOUND)
			rc = 0;
	}
	/* the retired domains' counters, in name order */
	qsort(ops, n, sizeof(*ops), bdb_dqopcmp);
	for (i = 0; i < n && rc == 0; i++) {
		uint64_t msgs = 0, bytes = 0;
		size_t j;

		if (i > 0 && strcmp(ops[i].domain, ops[i - 1].domain) == 0)
			continue;
		for (j = i; j < n && strcmp(ops[j].domain, ops[i].domain) == 0;
		    j++)
			if (ops[j].retire) {
				msgs++;
				bytes += ops[j].m->size;
			}
		if (msgs == 0)
			continue;
		rc = bdb_dom_get(b, t, ops[i].domain, &dom, DB_RMW);
		if (rc == BDB_APP(QUEUE_NOTFOUND)) {
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		dom.messages = bdb_sub(dom.messages, msgs);
		dom.bytes = bdb_sub(dom.bytes, bytes);
		rc = bdb_dom_put(b, t, &dom, 0);
		queue_domain_clear(&dom);
	}
	free(ops);
	if (rc != 0)
		return rc;
	/* and the store-wide counters, last */
	if ((rc = bdb_stats_get(b, t, &s, DB_RMW)) != 0)
		return rc;
	s.messages = bdb_sub(s.messages, w->gone_msgs);
	s.bytes = bdb_sub(s.bytes, w->gone_bytes);
	s.recipients = bdb_sub(s.recipients, w->gone_rcpts);
	s.delivered += w->d.delivered;
	s.failed += w->d.failed;
	s.deferred += w->d.deferred;
	s.deleted += w->d.deleted;
	return bdb_stats_put(b, t, &s);
}

struct bdb_rec_arg {
	const struct queue_outcome *o;
	size_t		 n;
	enum queue_op	 op;
	const char	*domain;
	uint64_t	*qids;
	size_t		 nqids;
	uint64_t	 changed;
};

/* bdb_outcmp - order outcomes by message */
static int
bdb_outcmp(const void *x, const void *y)
{
	const struct queue_outcome *a = x, *b = y;

	if (a->qid != b->qid)
		return a->qid < b->qid ? -1 : 1;
	return a->rcpt_index < b->rcpt_index ? -1 : a->rcpt_index > b->rcpt_index;
}

/* bdb_record_txn - apply a batch of outcomes */
static int
bdb_record_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_rec_arg *a = arg;
	struct bdb_work w;
	struct queue_msg m;
	uint64_t now = bdb_now();
	size_t i = 0, j;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	a->changed = 0;
	while (i < a->n) {
		uint64_t qid = a->o[i].qid;
		int changed = 0;

		for (j = i; j < a->n && a->o[j].qid == qid; j++)
			;
		rc = bdb_msg_get(b, t, qid, &m, DB_RMW);
		if (rc == BDB_APP(QUEUE_NOTFOUND)) {
			i = j;		/* already gone: nothing to record */
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		for (; i < j; i++) {
			const struct queue_outcome *o = &a->o[i];
			struct queue_rcpt *r;

			if (o->rcpt_index >= m.nrcpt)
				continue;
			if (i > 0 && a->o[i - 1].qid == o->qid &&
			    a->o[i - 1].rcpt_index == o->rcpt_index)
				continue;	/* the same outcome twice */
			r = &m.rcpt[o->rcpt_index];
			if (!queue_rcpt_live(r->state))
				continue;	/* recorded twice: idempotent */
			if (o->kind == QUEUE_OUTCOME_WARNED) {
				if (m.delay_warned == 0) {
					m.delay_warned = now;
					changed = 1;
					a->changed++;
				}
				continue;	/* no attempt was made */
			}
			r->attempts++;
			r->last_attempt = now;
			if (o->text) {
				free(r->last_error);
				r->last_error = xstrndup(o->text, 1000);
			}
			switch (o->kind) {
			case QUEUE_OUTCOME_DELIVERED:
				r->state = QUEUE_RCPT_DELIVERED;
				w.d.delivered++;
				w.gone_rcpts++;
				break;
			case QUEUE_OUTCOME_FAILED:
				r->state = QUEUE_RCPT_FAILED;
				w.d.failed++;
				w.gone_rcpts++;
				break;
			case QUEUE_OUTCOME_DEFERRED:
				w.d.deferred++;
				break;
			case QUEUE_OUTCOME_WARNED:
				break;
			}
			changed = 1;
			a->changed++;
		}
		if (changed)
			bdb_work_add(&w, &m);
		else
			queue_msg_clear(&m);
	}
	if (rc == 0 && w.n > 0)
		rc = bdb_work_commit(b, t, &w);
	bdb_work_clear(&w);
	return rc;
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
    struct bdb_work *w)
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
			w->gone_rcpts++;
		} else
			continue;
		n++;
	}
	return n;
}

/* bdb_qidcmp - qsort helper for qids */
static int
bdb_qidcmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* bdb_msg_op_txn - apply an operation to a list of messages */
static int
bdb_msg_op_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_rec_arg *a = arg;
	struct bdb_work w;
	struct queue_msg m;
	size_t i;
	int rc = 0;

	memset(&w, 0, sizeof(w));
	a->changed = 0;
	for (i = 0; i < a->nqids; i++) {
		rc = bdb_msg_get(b, t, a->qids[i], &m, DB_RMW);
		if (rc == BDB_APP(QUEUE_NOTFOUND)) {
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		if (bdb_apply_op(&m, a->op, a->domain, &w) > 0) {
			if (a->op == QUEUE_OP_DELETE)
				w.d.deleted++;
			a->changed++;
			bdb_work_add(&w, &m);
		} else
			queue_msg_clear(&m);
	}
	if (rc == 0 && w.n == 0)
		rc = BDB_APP(QUEUE_NOTFOUND);
	if (rc == 0)
		rc = bdb_work_commit(b, t, &w);
	bdb_work_clear(&w);
	return rc;
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

/* bdb_domain_op - backend domain_op(): batches of BDB_BATCH messages */
enum queue_status
bdb_domain_op(void *state, enum queue_op op, const char *domain,
    uint64_t *count, struct queue_error *err)
{
	struct bdb_batch *w = xcalloc(1, sizeof(*w));
	struct bdb_rec_arg a = { .op = op, .domain = domain };
	uint64_t qids[BDB_BATCH];
	enum queue_status st;
	size_t i;

	*count = 0;
	st = bdb_domain_exists(state, domain, err);
	if (st != QUEUE_OK) {
		free(w);
		if (st == QUEUE_NOTFOUND)
			queue_error_set(err, "no such domain: %s", domain);
		return st;
	}
	w->domain = domain;
	w->dlen = strlen(domain);
	do {
		st = bdb_run(state, BDB_READ, bdb_batch_txn, w, "walk", err);
		if (st != QUEUE_OK)
			break;
		if (w->n == 0) {
			w->after = w->last;
			continue;
		}
		for (i = 0; i < w->n; i++)
			qids[i] = w->msgs[i].qid;
		qsort(qids, w->n, sizeof(qids[0]), bdb_qidcmp);
		a.qids = qids;
		a.nqids = w->n;
		bdb_batch_clear(w);
		w->after = w->last;
		st = bdb_run(state, BDB_WRITE, bdb_msg_op_txn, &a, "update", err);
		if (st == QUEUE_OK)
			*count += a.changed;
		else if (st != QUEUE_NOTFOUND)
			break;
		st = QUEUE_OK;
	} while (w->more);
	bdb_batch_clear(w);
	free(w);
	if (st != QUEUE_OK)
		return st;
	if (*count == 0) {
		queue_error_set(err, "%s: no message to %s", domain,
		    op == QUEUE_OP_HOLD ? "hold" : op == QUEUE_OP_RELEASE ?
		    "release" : "delete");
		return QUEUE_NOTFOUND;
	}
	return QUEUE_OK;
}

/* ---- maintenance ---- */

struct bdb_exp_arg {
	uint64_t	 now;
	size_t		 limit;		/* 0 = no limit */
	unsigned char	 after[16 + DNAME_MAX];	/* resume past this key */
	size_t		 afterlen;
	unsigned char	 last[16 + DNAME_MAX];	/* last key of this batch */
	size_t		 lastlen;
	struct {
		uint64_t qid, expiry;
		char	 domain[DNAME_MAX + 1];
	}		 ent[BDB_BATCH];
	size_t		 n, seen;
	int		 more;
};

/* bdb_expire_txn - the next expired entries of expiry.db, oldest first */
static int
bdb_expire_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_exp_arg *a = arg;
	unsigned char k[16 + DNAME_MAX];
	DBC *c;
	DBT key, val;
	int rc;
	u_int32_t op = a->afterlen ? DB_SET_RANGE : DB_FIRST;

	a->n = 0;
	a->more = 0;
	if ((rc = b->db[BDB_EXPIRY]->cursor(b->db[BDB_EXPIRY], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	memcpy(k, a->after, a->afterlen);
	key.data = k;
	key.size = (u_int32_t)a->afterlen;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, op)) == 0) {
		uint64_t exp;

		op = DB_NEXT;
		if (a->afterlen && key.size == a->afterlen &&
		    memcmp(k, a->after, a->afterlen) == 0)
			continue;
		if (key.size < 17) {
			rc = EINVAL;
			break;
		}
		exp = unpack_be64(k);
		if (exp > a->now || (a->limit && a->seen + a->n >= a->limit))
			break;
		if (a->n == BDB_BATCH) {
			a->more = 1;
			break;
		}
		a->ent[a->n].expiry = exp;
		a->ent[a->n].qid = unpack_be64(k + 8);
		memcpy(a->ent[a->n].domain, k + 16, key.size - 16);
		a->ent[a->n].domain[key.size - 16] = '\0';
		a->n++;
		memcpy(a->last, k, key.size);
		a->lastlen = key.size;
	}
	c->close(c);
	if (rc == DB_BUFFER_SMALL)
		rc = EINVAL;	/* a key longer than any domain allows */
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_expire_scan - backend expire_scan(): cost follows what expired */
enum queue_status
bdb_expire_scan(void *state, uint64_t now, size_t limit, queue_expire_fn fn,
    void *fnarg, struct queue_error *err)
{
	struct bdb_exp_arg *a = xcalloc(1, sizeof(*a));
	enum queue_status st;
	size_t i;
	int stop = 0;

	a->now = now;
	a->limit = limit;
	do {
		st = bdb_run(state, BDB_READ, bdb_expire_txn, a, "expiry scan",
		    err);
		if (st != QUEUE_OK)
			break;
		for (i = 0; i < a->n && !stop; i++)
			stop = fn(a->ent[i].qid, a->ent[i].domain,
			    a->ent[i].expiry, fnarg);
		a->seen += a->n;
		memcpy(a->after, a->last, a->lastlen);
		a->afterlen = a->lastlen;
	} while (a->more && !stop);
	free(a);
	return st;
}
