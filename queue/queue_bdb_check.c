/*
 * NAME
 *	queue_bdb_check 3 - store statistics and the consistency check
 * DESCRIPTION
 *	The check cross-examines every table against the others: records
 *	decode, each live (message, domain) pair has its queue and expiry
 *	entries and nothing else does, bodies add up, and the counters match
 *	a recount.
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
#include <sys/stat.h>

#include "buf.h"
#include "compat.h"
#include "pack.h"
#include "queue.h"
#include "queue_backend.h"
#include "queue_bdb_int.h"
#include "queue_rec.h"
#include "xmalloc.h"

struct bdb_stats_arg {
	struct queue_stats *out;
};

/* bdb_stats_txn - store counters plus the domain count */
static int
bdb_stats_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_stats_arg *a = arg;
	struct bdb_stats s;
	DBC *c;
	DBT key, val;
	int rc;

	if ((rc = bdb_stats_get(b, t, &s, 0)) != 0)
		return rc;
	a->out->created = s.created;
	a->out->messages = s.messages;
	a->out->bytes = s.bytes;
	a->out->recipients = s.recipients;
	a->out->enqueued = s.enqueued;
	a->out->delivered = s.delivered;
	a->out->failed = s.failed;
	a->out->deferred = s.deferred;
	a->out->deleted = s.deleted;
	a->out->domains = 0;
	if ((rc = b->db[BDB_DOMAINS]->cursor(b->db[BDB_DOMAINS], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL;
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0)
		a->out->domains++;
	c->close(c);
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_stats - backend stats(): counters and environment figures */
enum queue_status
bdb_stats(void *state, struct queue_stats *out, struct queue_error *err)
{
	struct bdb *b = state;
	struct bdb_stats_arg a = { out };
	enum queue_status st;
	DB_LOCK_STAT *ls;
	DB_TXN_STAT *ts;
	DB_LOG_STAT *lg;
	DB_MPOOL_STAT *ms;
	char **list;

	if ((st = bdb_run(b, BDB_READ, bdb_stats_txn, &a, "stats", err)) != 0)
		return st;
	pthread_rwlock_rdlock(&b->lock);
	if (b->env == NULL) {		/* a reopen failed meanwhile */
		pthread_rwlock_unlock(&b->lock);
		return QUEUE_OK;
	}
	if (b->env->lock_stat(b->env, &ls, 0) == 0) {
		out->deadlocks = ls->st_ndeadlocks;
		free(ls);
	}
	if (b->env->log_stat(b->env, &lg, 0) == 0) {
		out->log_flushes = lg->st_scount;
		free(lg);
	}
	if (b->env->txn_stat(b->env, &ts, 0) == 0) {
		out->commits = ts->st_ncommits;
		free(ts);
	}
	if (b->env->memp_stat(b->env, &ms, NULL, 0) == 0) {
		uint64_t h = ms->st_cache_hit, m = ms->st_cache_miss;

		out->cache_hit_pct = h + m ? h * 100 / (h + m) : 100;
		free(ms);
	}
	if (b->env->log_archive(b->env, &list, DB_ARCH_LOG | DB_ARCH_ABS) == 0) {
		struct stat sb;

		if (list)
			for (char **p = list; *p; p++) {
				out->log_files++;
				if (stat(*p, &sb) == 0)
					out->log_bytes += (uint64_t)sb.st_size;
			}
		free(list);
	}
	pthread_rwlock_unlock(&b->lock);
	return QUEUE_OK;
}

/*
 * The check never holds one long transaction: that would either block
 * the daemon's writers (locks) or make them keep old page versions
 * until the cache fills (snapshot). It walks each table in batches of
 * BDB_BATCH entries, each batch in its own short transaction under
 * ordinary locking, and checks every entry against the other tables
 * inside that transaction. So each verdict is exact for the moment it
 * was made, whatever the daemon does meanwhile. Counters are recounted
 * per domain, each domain in one transaction.
 */
struct bdb_check_arg {
	queue_problem_fn fn;
	void		*fnarg;
	uint64_t	 problems;
	/* batch position, per table */
	unsigned char	 after[DNAME_MAX + 32];
	size_t		 afterlen;
	unsigned char	 last[DNAME_MAX + 32];
	size_t		 lastlen;
	int		 more;
	/* problems found in the current batch, reported after commit */
	char		(*found)[256];
	size_t		 nfound, maxfound;
	/* domain names, for the per-domain recount */
	char		(*names)[DNAME_MAX + 1];
	size_t		 nnames, maxnames;
	size_t		 names_mark;	/* nnames before this batch */
	const char	*domain;	/* the domain being recounted */
	uint64_t	 batch_msgs, batch_bytes, batch_rcpts;
	uint64_t	 notes;		/* passed to the callback, not counted */
};

/* bdb_problem - note one inconsistency of the current batch */
static void
bdb_problem(struct bdb_check_arg *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* bdb_problem - note one inconsistency of the current batch */
static void
bdb_problem(struct bdb_check_arg *a, const char *fmt, ...)
{
	va_list ap;

	if (a->nfound == a->maxfound) {
		a->maxfound = a->maxfound ? a->maxfound * 2 : 16;
		a->found = xreallocarray(a->found, a->maxfound,
		    sizeof(*a->found));
	}
	va_start(ap, fmt);
	vsnprintf(a->found[a->nfound++], sizeof(a->found[0]), fmt, ap);
	va_end(ap);
}

/* bdb_check_id - print a qid for a problem text */
static const char *
bdb_check_id(uint64_t qid, char buf[QUEUE_ID_LEN + 1])
{
	queue_id_format(qid, buf);
	return buf;
}

/* bdb_check_exists - does key exist in db? (no data read) */
static int
bdb_check_exists(DB *db, DB_TXN *t, const void *k, size_t n)
{
	DBT key = bdb_dbt(k, n), val;

	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL | DB_DBT_USERMEM;
	return db->get(db, t, &key, &val, 0);
}

/*
 * bdb_check_body - the chunks of qid must be numbered from 0 without a
 * gap and add up to size. Returns 0 or a DB error; problems are noted.
 */
static int
bdb_check_body(struct bdb *b, DB_TXN *t, struct bdb_check_arg *a,
    uint64_t qid, uint64_t size)
{
	unsigned char bk[12];
	char id[QUEUE_ID_LEN + 1];
	DBC *bc;
	DBT bkey, bval;
	uint64_t got = 0;
	uint32_t expect = 0;
	int rc, gap = 0;
	u_int32_t op = DB_SET_RANGE;

	if ((rc = b->db[BDB_BODIES]->cursor(b->db[BDB_BODIES], t, &bc, 0)) != 0)
		return rc;
	pack_be64(bk, qid);
	memset(bk + 8, 0, 4);
	memset(&bkey, 0, sizeof(bkey));
	bkey.data = bk;
	bkey.size = 12;
	bkey.ulen = sizeof(bk);
	bkey.flags = DB_DBT_USERMEM;
	memset(&bval, 0, sizeof(bval));
	while ((rc = bc->get(bc, &bkey, &bval, op)) == 0) {
		op = DB_NEXT;
		if (bkey.size != 12 || unpack_be64(bk) != qid)
			break;
		if ((((uint32_t)bk[8] << 24) | ((uint32_t)bk[9] << 16) |
		    ((uint32_t)bk[10] << 8) | bk[11]) != expect++)
			gap = 1;
		got += bval.size;	/* reading it also verifies checksums */
	}
	bc->close(bc);
	if (rc != 0 && rc != DB_NOTFOUND && rc != DB_BUFFER_SMALL)
		return rc;
	bdb_check_id(qid, id);
	if (expect == 0)
		bdb_problem(a, "message %s: body missing", id);
	else if (gap)
		bdb_problem(a, "message %s: body chunk missing", id);
	else if (got != size)
		bdb_problem(a, "message %s: body is %" PRIu64 " bytes, record "
		    "says %" PRIu64, id, got, size);
	return 0;
}

/* bdb_check_msg - one message against the indexes, domains and body */
static int
bdb_check_msg(struct bdb *b, DB_TXN *t, struct bdb_check_arg *a,
    const struct queue_msg *m)
{
	unsigned char k[DNAME_MAX + 32];
	struct queue_domain d;
	struct buf enc;
	size_t i, j;
	int rc = 0;

	if (!bdb_has_live(m, NULL))
		bdb_problem(a, "message %s has no live recipient", m->id);
	buf_init(&enc);
	queue_rec_msg_encode(&enc, m);
	for (i = 0; i < m->nrcpt && rc == 0; i++) {
		const char *dn = m->rcpt[i].domain;
		DBT key, val;
		int dup = 0;

		for (j = 0; j < i; j++)
			if (strcmp(m->rcpt[j].domain, dn) == 0)
				dup = 1;
		if (dup)
			continue;
		key = bdb_dbt(k, bdb_dq_key(k, dn, m->qid));
		val = bdb_dbt_malloc();
		rc = b->db[BDB_DOMAINQ]->get(b->db[BDB_DOMAINQ], t, &key, &val, 0);
		if (rc == DB_NOTFOUND) {
			rc = 0;
			if (bdb_has_live(m, dn))
				bdb_problem(a, "message %s: missing from the "
				    "queue of %s", m->id, dn);
			continue;
		}
		if (rc != 0)
			break;
		if (!bdb_has_live(m, dn))
			bdb_problem(a, "queue of %s lists %s, which has no live "
			    "recipient there", dn, m->id);
		else if (val.size != enc.len + 8 || memcmp((unsigned char *)
		    val.data + 8, enc.data, enc.len) != 0)
			bdb_problem(a, "queue of %s holds a stale copy of %s",
			    dn, m->id);
		if (val.size >= 8) {
			uint64_t exp = unpack_be64(val.data);

			rc = bdb_check_exists(b->db[BDB_EXPIRY], t, k,
			    bdb_exp_key(k, exp, m->qid, dn));
			if (rc == DB_NOTFOUND) {
				rc = 0;
				bdb_problem(a, "message %s: missing from the "
				    "expiry index for %s", m->id, dn);
			}
		}
		free(val.data);
		if (rc != 0)
			break;
		rc = bdb_dom_get(b, t, dn, &d, 0);
		if (rc == BDB_APP(QUEUE_NOTFOUND)) {
			rc = 0;
			bdb_problem(a, "message %s: domain %s does not exist",
			    m->id, dn);
		} else if (rc == EINVAL) {
			rc = 0;		/* reported by the domain pass */
		} else if (rc == 0)
			queue_domain_clear(&d);
	}
	buf_release(&enc);
	if (rc == 0)
		rc = bdb_check_body(b, t, a, m->qid, m->size);
	return rc;
}

/* bdb_check_cursor - open a cursor positioned for the next batch */
static int
bdb_check_cursor(struct bdb *b, DB_TXN *t, enum bdb_db which,
    struct bdb_check_arg *a, DBC **cp, DBT *key, unsigned char *kbuf,
    size_t kmax, u_int32_t *op)
{
	int rc;

	if ((rc = b->db[which]->cursor(b->db[which], t, cp, 0)) != 0)
		return rc;
	memset(key, 0, sizeof(*key));
	memcpy(kbuf, a->after, a->afterlen);
	key->data = kbuf;
	key->size = (u_int32_t)a->afterlen;
	key->ulen = (u_int32_t)kmax;
	key->flags = DB_DBT_USERMEM;
	*op = a->afterlen ? DB_SET_RANGE : DB_FIRST;
	a->nfound = 0;
	a->more = 0;
	a->lastlen = a->afterlen;
	memcpy(a->last, a->after, a->afterlen);
	return 0;
}

/* bdb_check_next - step a batch cursor; 1 to go on, 0 at batch end */
static int
bdb_check_next(struct bdb_check_arg *a, DBC *c, DBT *key, DBT *val,
    u_int32_t *op, size_t *seen, int *rc)
{
	for (;;) {
		*rc = c->get(c, key, val, *op);
		*op = DB_NEXT;
		if (*rc != 0)
			return 0;
		if (a->afterlen && key->size == a->afterlen &&
		    memcmp(key->data, a->after, a->afterlen) == 0)
			continue;	/* where the last batch stopped */
		if (*seen == BDB_BATCH) {
			a->more = 1;
			return 0;
		}
		(*seen)++;
		if (key->size <= sizeof(a->last)) {
			memcpy(a->last, key->data, key->size);
			a->lastlen = key->size;
		}
		return 1;
	}
}

/* bdb_check_end - common end of a batch transaction */
static int
bdb_check_end(DBC *c, int rc)
{
	c->close(c);
	if (rc == DB_NOTFOUND)
		return 0;
	return rc;
}

/* bdb_check_domains_txn - domain records decode; remember the names */
static int
bdb_check_domains_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_check_arg *a = arg;
	unsigned char kb[DNAME_MAX + 32];
	struct queue_domain d;
	size_t seen = 0;
	DBC *c;
	DBT key, val;
	u_int32_t op;
	int rc;

	if ((rc = bdb_check_cursor(b, t, BDB_DOMAINS, a, &c, &key, kb,
	    sizeof(kb), &op)) != 0)
		return rc;
	memset(&val, 0, sizeof(val));
	a->nnames = a->names_mark;	/* a retried batch starts over */
	while (bdb_check_next(a, c, &key, &val, &op, &seen, &rc)) {
		if (queue_rec_dom_decode(val.data, val.size, &d) < 0 ||
		    key.size != strlen(d.name) ||
		    memcmp(key.data, d.name, key.size) != 0) {
			bdb_problem(a, "domain record '%.*s' is corrupt",
			    (int)(key.size > 64 ? 64 : key.size),
			    (char *)key.data);
			queue_domain_clear(&d);	/* safe after a failed decode */
			continue;
		}
		if (a->nnames == a->maxnames) {
			a->maxnames = a->maxnames ? a->maxnames * 2 : 64;
			a->names = xreallocarray(a->names, a->maxnames,
			    sizeof(*a->names));
		}
		strlcpy(a->names[a->nnames++], d.name, sizeof(a->names[0]));
		queue_domain_clear(&d);
	}
	if (rc == DB_BUFFER_SMALL) {
		bdb_problem(a, "domain key longer than any domain name");
		rc = EINVAL;
	}
	return bdb_check_end(c, rc);
}

/* bdb_check_messages_txn - each message against everything it implies */
static int
bdb_check_messages_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_check_arg *a = arg;
	unsigned char kb[DNAME_MAX + 32];
	char id[QUEUE_ID_LEN + 1];
	struct queue_msg m;
	size_t seen = 0;
	DBC *c;
	DBT key, val;
	u_int32_t op;
	int rc;

	if ((rc = bdb_check_cursor(b, t, BDB_MESSAGES, a, &c, &key, kb,
	    sizeof(kb), &op)) != 0)
		return rc;
	memset(&val, 0, sizeof(val));
	while (bdb_check_next(a, c, &key, &val, &op, &seen, &rc)) {
		uint64_t qid;

		if (key.size != 8) {
			bdb_problem(a, "message key of %u bytes", key.size);
			continue;
		}
		qid = unpack_be64(key.data);
		if (queue_rec_msg_decode(val.data, val.size, &m) < 0 ||
		    m.qid != qid) {
			bdb_problem(a, "message %s: record is corrupt",
			    bdb_check_id(qid, id));
			queue_msg_clear(&m);	/* safe after a failed decode */
			continue;
		}
		rc = bdb_check_msg(b, t, a, &m);
		queue_msg_clear(&m);
		if (rc != 0)
			break;
	}
	return bdb_check_end(c, rc);
}

/* bdb_check_domainq_txn - each queue entry names a live message there */
static int
bdb_check_domainq_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_check_arg *a = arg;
	unsigned char kb[DNAME_MAX + 32], mk[8];
	char id[QUEUE_ID_LEN + 1];
	size_t seen = 0;
	DBC *c;
	DBT key, val;
	u_int32_t op;
	int rc, r2;

	if ((rc = bdb_check_cursor(b, t, BDB_DOMAINQ, a, &c, &key, kb,
	    sizeof(kb), &op)) != 0)
		return rc;
	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL;	/* keys are enough here */
	while (bdb_check_next(a, c, &key, &val, &op, &seen, &rc)) {
		const unsigned char *nul = memchr(kb, '\0', key.size);

		if (nul == NULL || (size_t)(nul - kb) + 9 != key.size) {
			bdb_problem(a, "malformed domain queue entry");
			continue;
		}
		memcpy(mk, nul + 1, 8);
		r2 = bdb_check_exists(b->db[BDB_MESSAGES], t, mk, 8);
		if (r2 == DB_NOTFOUND)
			bdb_problem(a, "queue of %s lists %s, which does not "
			    "exist", (const char *)kb,
			    bdb_check_id(unpack_be64(mk), id));
		else if (r2 != 0) {
			rc = r2;
			break;
		}
	}
	if (rc == DB_BUFFER_SMALL) {
		bdb_problem(a, "domain queue key too long");
		rc = EINVAL;
	}
	return bdb_check_end(c, rc);
}

/* bdb_check_expiry_txn - each expiry entry matches its queue entry */
static int
bdb_check_expiry_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_check_arg *a = arg;
	unsigned char kb[DNAME_MAX + 32];
	char dn[DNAME_MAX + 1];
	size_t seen = 0;
	uint64_t exp = 0;
	DBC *c;
	DBT key, val;
	u_int32_t op;
	int rc, r2;

	if ((rc = bdb_check_cursor(b, t, BDB_EXPIRY, a, &c, &key, kb,
	    sizeof(kb), &op)) != 0)
		return rc;
	memset(&val, 0, sizeof(val));
	while (bdb_check_next(a, c, &key, &val, &op, &seen, &rc)) {
		if (key.size < 17 || key.size > 16 + DNAME_MAX) {
			bdb_problem(a, "malformed expiry entry");
			continue;
		}
		memcpy(dn, kb + 16, key.size - 16);
		dn[key.size - 16] = '\0';
		r2 = bdb_dq_expiry(b, t, dn, unpack_be64(kb + 8), &exp, 0);
		if (r2 == DB_NOTFOUND)
			bdb_problem(a, "expiry entry for %s without a queue "
			    "entry", dn);
		else if (r2 != 0) {
			rc = r2;
			break;
		} else if (exp != unpack_be64(kb))
			bdb_problem(a, "expiry entry for %s disagrees with its "
			    "queue entry", dn);
	}
	if (rc == DB_BUFFER_SMALL) {
		bdb_problem(a, "expiry key too long");
		rc = EINVAL;
	}
	return bdb_check_end(c, rc);
}

/* bdb_check_bodies_txn - every body belongs to a message */
static int
bdb_check_bodies_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_check_arg *a = arg;
	unsigned char kb[DNAME_MAX + 32], mk[8];
	char id[QUEUE_ID_LEN + 1];
	size_t seen = 0;
	uint64_t prev = 0;
	DBC *c;
	DBT key, val;
	u_int32_t op;
	int rc, r2;

	if ((rc = bdb_check_cursor(b, t, BDB_BODIES, a, &c, &key, kb,
	    sizeof(kb), &op)) != 0)
		return rc;
	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL;
	while (bdb_check_next(a, c, &key, &val, &op, &seen, &rc)) {
		uint64_t qid;

		if (key.size != 12) {
			bdb_problem(a, "malformed body key");
			continue;
		}
		qid = unpack_be64(kb);
		if (qid == prev)
			continue;
		prev = qid;
		memcpy(mk, kb, 8);
		r2 = bdb_check_exists(b->db[BDB_MESSAGES], t, mk, 8);
		if (r2 == DB_NOTFOUND)
			bdb_problem(a, "orphan body of %s",
			    bdb_check_id(qid, id));
		else if (r2 != 0) {
			rc = r2;
			break;
		}
	}
	if (rc == DB_BUFFER_SMALL) {
		bdb_problem(a, "body key too long");
		rc = EINVAL;
	}
	return bdb_check_end(c, rc);
}

/* bdb_check_counts_txn - recount one domain against its counters */
static int
bdb_check_counts_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_check_arg *a = arg;
	unsigned char k[DNAME_MAX + 10], v[33];
	struct queue_domain d;
	size_t n = strlen(a->domain);
	uint64_t msgs = 0, bytes = 0;
	DBC *c;
	DBT key, val;
	int rc;
	u_int32_t op = DB_SET_RANGE;

	a->nfound = 0;
	rc = bdb_dom_get(b, t, a->domain, &d, 0);
	if (rc == BDB_APP(QUEUE_NOTFOUND) || rc == EINVAL)
		return 0;	/* deleted since, or reported already */
	if (rc != 0)
		return rc;
	if ((rc = b->db[BDB_DOMAINQ]->cursor(b->db[BDB_DOMAINQ], t, &c, 0)) != 0) {
		queue_domain_clear(&d);
		return rc;
	}
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = (u_int32_t)bdb_dq_key(k, a->domain, 0);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	/* expiry (8), then the record: version (1), qid, arrival, size */
	memset(&val, 0, sizeof(val));
	val.data = v;
	val.ulen = sizeof(v);
	val.dlen = sizeof(v);
	val.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
	while ((rc = c->get(c, &key, &val, op)) == 0) {
		op = DB_NEXT;
		if (key.size != n + 9 || memcmp(k, a->domain, n + 1) != 0)
			break;
		msgs++;
		if (val.size == sizeof(v))
			bytes += unpack_be64(v + 25);
	}
	c->close(c);
	if (rc == DB_NOTFOUND || rc == DB_BUFFER_SMALL)
		rc = 0;
	if (rc == 0 && (d.messages != msgs || d.bytes != bytes))
		bdb_problem(a, "domain %s counts %" PRIu64 " messages / %"
		    PRIu64 " bytes, found %" PRIu64 " / %" PRIu64, d.name,
		    d.messages, d.bytes, msgs, bytes);
	queue_domain_clear(&d);
	return rc;
}

static void bdb_check_report(struct bdb_check_arg *, queue_problem_fn, void *);

/* bdb_check_stats_txn - read the store-wide counters */
static int
bdb_check_stats_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	return bdb_stats_get(b, t, arg, 0);
}

/* bdb_check_recount_txn - add one batch of messages.db to the recount */
static int
bdb_check_recount_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_check_arg *a = arg;
	unsigned char kb[DNAME_MAX + 32];
	struct queue_msg m;
	size_t seen = 0, i;
	DBC *c;
	DBT key, val;
	u_int32_t op;
	int rc;

	if ((rc = bdb_check_cursor(b, t, BDB_MESSAGES, a, &c, &key, kb,
	    sizeof(kb), &op)) != 0)
		return rc;
	memset(&val, 0, sizeof(val));
	a->batch_msgs = a->batch_bytes = a->batch_rcpts = 0;
	while (bdb_check_next(a, c, &key, &val, &op, &seen, &rc)) {
		if (queue_rec_msg_decode(val.data, val.size, &m) < 0)
			continue;	/* reported by the message pass */
		a->batch_msgs++;
		a->batch_bytes += m.size;
		for (i = 0; i < m.nrcpt; i++)
			if (queue_rcpt_live(m.rcpt[i].state))
				a->batch_rcpts++;
		queue_msg_clear(&m);
	}
	return bdb_check_end(c, rc);
}

/* bdb_check_same_flow - no message came or went between two readings */
static int
bdb_check_same_flow(const struct bdb_stats *x, const struct bdb_stats *y)
{
	return x->enqueued == y->enqueued && x->delivered == y->delivered &&
	    x->failed == y->failed && x->deleted == y->deleted &&
	    x->deferred == y->deferred;
}

/*
 * bdb_check_totals - the store-wide counters against a recount of
 * messages.db. The recount goes in short batches, like everything else
 * here, so it is exact only if no message came or went meanwhile: the
 * monotonic counters are read before and after, and a recount that
 * overlapped with writes is done again. A store that never stops long
 * enough gets a note instead of a verdict; the per-domain counters,
 * which are checked exactly, cover the same ground domain by domain.
 */
static enum queue_status
bdb_check_totals(void *state, struct bdb_check_arg *a, queue_problem_fn fn,
    void *fnarg, struct queue_error *err)
{
	struct bdb_stats s0, s1;
	enum queue_status st;
	int attempt;

	for (attempt = 0; attempt < BDB_CHECK_RECOUNTS; attempt++) {
		uint64_t msgs = 0, bytes = 0, rcpts = 0;

		if ((st = bdb_run(state, BDB_READ, bdb_check_stats_txn, &s0,
		    "check", err)) != QUEUE_OK)
			return st;
		a->afterlen = 0;
		do {
			st = bdb_run(state, BDB_LOCKED, bdb_check_recount_txn, a,
			    "check", err);
			if (st != QUEUE_OK)
				return st;
			a->nfound = 0;	/* the message pass reported these */
			msgs += a->batch_msgs;
			bytes += a->batch_bytes;
			rcpts += a->batch_rcpts;
			memcpy(a->after, a->last, a->lastlen);
			a->afterlen = a->lastlen;
		} while (a->more);
		if ((st = bdb_run(state, BDB_READ, bdb_check_stats_txn, &s1,
		    "check", err)) != QUEUE_OK)
			return st;
		if (!bdb_check_same_flow(&s0, &s1))
			continue;
		if (s1.messages != msgs || s1.bytes != bytes ||
		    s1.recipients != rcpts) {
			bdb_problem(a, "store counts %" PRIu64 " messages / %"
			    PRIu64 " bytes / %" PRIu64 " recipients, found %"
			    PRIu64 " / %" PRIu64 " / %" PRIu64, s1.messages,
			    s1.bytes, s1.recipients, msgs, bytes, rcpts);
			bdb_check_report(a, fn, fnarg);
		}
		return QUEUE_OK;
	}
	a->notes++;
	if (fn)
		fn(QUEUE_CHECK_NOTE "the store-wide totals were not verified: "
		    "mail came or went during each recount (every domain's "
		    "counters were)", fnarg);
	return QUEUE_OK;
}

/* bdb_check_report - hand the committed batch's problems to the caller */
static void
bdb_check_report(struct bdb_check_arg *a, queue_problem_fn fn, void *fnarg)
{
	size_t i;

	for (i = 0; i < a->nfound; i++) {
		a->problems++;
		if (fn)
			fn(a->found[i], fnarg);
	}
	a->nfound = 0;
}

/* bdb_check_table - run one batched pass over a table */
static enum queue_status
bdb_check_table(void *state, bdb_txn_fn fn, struct bdb_check_arg *a,
    queue_problem_fn pfn, void *pfnarg, struct queue_error *err)
{
	enum queue_status st;

	a->afterlen = 0;
	do {
		a->names_mark = a->nnames;
		st = bdb_run(state, BDB_LOCKED, fn, a, "check", err);
		if (st != QUEUE_OK)
			return st;
		bdb_check_report(a, pfn, pfnarg);
		memcpy(a->after, a->last, a->lastlen);
		a->afterlen = a->lastlen;
	} while (a->more);
	return QUEUE_OK;
}

/* bdb_check - backend check(): every table, batch by batch */
enum queue_status
bdb_check(void *state, queue_problem_fn fn, void *fnarg, uint64_t *nproblems,
    struct queue_error *err)
{
	static const bdb_txn_fn passes[] = {
		bdb_check_domains_txn, bdb_check_messages_txn,
		bdb_check_domainq_txn, bdb_check_expiry_txn,
		bdb_check_bodies_txn,
	};
	struct bdb_check_arg *a = xcalloc(1, sizeof(*a));
	enum queue_status st = QUEUE_OK;
	size_t i;

	for (i = 0; st == QUEUE_OK && i < sizeof(passes) / sizeof(passes[0]); i++)
		st = bdb_check_table(state, passes[i], a, fn, fnarg, err);
	for (i = 0; st == QUEUE_OK && i < a->nnames; i++) {
		a->domain = a->names[i];
		st = bdb_run(state, BDB_LOCKED, bdb_check_counts_txn, a,
		    "check", err);
		bdb_check_report(a, fn, fnarg);
	}
	if (st == QUEUE_OK)
		st = bdb_check_totals(state, a, fn, fnarg, err);
	*nproblems = a->problems;
	free(a->found);
	free(a->names);
	free(a);
	return st;
}
