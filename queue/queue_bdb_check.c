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
	DB_MPOOL_STAT *ms;
	char **list;

	if ((st = bdb_run(b, BDB_READ, bdb_stats_txn, &a, "stats", err)) != 0)
		return st;
	pthread_rwlock_rdlock(&b->lock);
	if (b->env->lock_stat(b->env, &ls, 0) == 0) {
		out->deadlocks = ls->st_ndeadlocks;
		free(ls);
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

struct bdb_check_arg {
	queue_problem_fn fn;
	void		*fnarg;
	uint64_t	 problems;
	/* recomputed per-domain counters, in domain-name order */
	char		(*names)[DNAME_MAX + 1];
	uint64_t	*msgs, *bytes;
	size_t		 ndom, maxdom;
	/* bodies to look at again after the snapshot */
	uint64_t	*suspect;
	size_t		 nsuspect, maxsuspect;
};

/* bdb_problem - report one inconsistency */
static void
bdb_problem(struct bdb_check_arg *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* bdb_problem - report one inconsistency */
static void
bdb_problem(struct bdb_check_arg *a, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	a->problems++;
	if (a->fn)
		a->fn(text, a->fnarg);
}

/* bdb_check_dom_index - position of a domain in the recomputed table */
static ssize_t
bdb_check_dom_index(struct bdb_check_arg *a, const char *name)
{
	size_t lo = 0, hi = a->ndom;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(a->names[mid], name);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* bdb_check_exists - does key exist in db? */
static int
bdb_check_exists(DB *db, DB_TXN *t, const void *k, size_t n, uint64_t *val8)
{
	DBT key = bdb_dbt(k, n), val;
	unsigned char v[8];
	int rc;

	memset(&val, 0, sizeof(val));
	val.data = v;
	val.ulen = sizeof(v);
	val.flags = DB_DBT_USERMEM;
	rc = db->get(db, t, &key, &val, 0);
	if (rc == 0 && val8 && val.size == 8)
		*val8 = unpack_be64(v);
	if (rc == DB_BUFFER_SMALL)
		rc = 0;
	return rc;
}

/* bdb_suspect - remember a body to recheck after the snapshot */
static void
bdb_suspect(struct bdb_check_arg *a, uint64_t qid)
{
	if (a->nsuspect == a->maxsuspect) {
		a->maxsuspect = a->maxsuspect ? a->maxsuspect * 2 : 16;
		a->suspect = xreallocarray(a->suspect, a->maxsuspect, 8);
	}
	a->suspect[a->nsuspect++] = qid;
}

/*
 * bdb_check_body - the chunks of qid must be numbered from 0 without a
 * gap and add up to size; with size UINT64_MAX there must be none.
 * Returns 0, BDB_APP(QUEUE_INVALID) with why filled in, or a DB error.
 */
static int
bdb_check_body(struct bdb *b, DB_TXN *t, uint64_t qid, uint64_t size,
    u_int32_t cflags, char *why, size_t whylen)
{
	unsigned char bk[12];
	DBC *bc;
	DBT bkey, bval;
	uint64_t got = 0;
	uint32_t expect = 0;
	int rc, gap = 0;
	u_int32_t op = DB_SET_RANGE;

	if ((rc = b->db[BDB_BODIES]->cursor(b->db[BDB_BODIES], t, &bc,
	    cflags)) != 0)
		return rc;
	pack_be64(bk, qid);
	memset(bk + 8, 0, 4);
	memset(&bkey, 0, sizeof(bkey));
	bkey.data = bk;
	bkey.size = 12;
	bkey.ulen = sizeof(bk);
	bkey.flags = DB_DBT_USERMEM;
	memset(&bval, 0, sizeof(bval));
	bval.flags = DB_DBT_PARTIAL;	/* sizes only */
	while ((rc = bc->get(bc, &bkey, &bval, op)) == 0) {
		DBT full;

		op = DB_NEXT;
		if (bkey.size != 12 || unpack_be64(bk) != qid)
			break;
		if ((((uint32_t)bk[8] << 24) | ((uint32_t)bk[9] << 16) |
		    ((uint32_t)bk[10] << 8) | bk[11]) != expect++)
			gap = 1;
		/* a partial read of zero bytes does not report the size */
		memset(&full, 0, sizeof(full));
		if ((rc = bc->get(bc, &bkey, &full, DB_CURRENT)) != 0)
			break;
		got += full.size;
	}
	bc->close(bc);
	if (rc != 0 && rc != DB_NOTFOUND && rc != DB_BUFFER_SMALL)
		return rc;
	if (size == UINT64_MAX) {
		if (expect == 0)
			return 0;
		if (why)
			snprintf(why, whylen, "orphan body");
		return BDB_APP(QUEUE_INVALID);
	}
	if (expect == 0 || gap || got != size) {
		if (why)
			snprintf(why, whylen, expect == 0 ? "body missing" :
			    gap ? "body chunk missing" : "body is %" PRIu64
			    " bytes, record says %" PRIu64, got, size);
		return BDB_APP(QUEUE_INVALID);
	}
	return 0;
}

struct bdb_recheck_arg {
	uint64_t	 qid;
	char		 why[128];
};

/* bdb_recheck_txn - one suspect body, under ordinary locking */
static int
bdb_recheck_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_recheck_arg *r = arg;
	struct queue_msg m;
	uint64_t size = UINT64_MAX;
	int rc;

	r->why[0] = '\0';
	rc = bdb_msg_get(b, t, r->qid, &m, 0);
	if (rc == 0) {
		size = m.size;
		queue_msg_clear(&m);
	} else if (rc != BDB_APP(QUEUE_NOTFOUND))
		return rc;
	rc = bdb_check_body(b, t, r->qid, size, 0, r->why, sizeof(r->why));
	return rc == BDB_APP(QUEUE_INVALID) ? 0 : rc;
}

/* bdb_check_txn - cross-check every table against the others */
static int
bdb_check_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_check_arg *a = arg;
	struct bdb_stats s;
	uint64_t live_msgs = 0, live_bytes = 0, live_rcpts = 0;
	unsigned char k[DNAME_MAX + 32];
	struct queue_domain d;
	struct queue_msg m;
	DBC *c;
	DBT key, val;
	size_t i, j;
	int rc;

	a->problems = 0;
	a->ndom = 0;
	/* domains: load names, check records */
	if ((rc = b->db[BDB_DOMAINS]->cursor(b->db[BDB_DOMAINS], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		if (queue_rec_dom_decode(val.data, val.size, &d) < 0) {
			bdb_problem(a, "domain record '%.*s' is corrupt",
			    (int)(key.size > 64 ? 64 : key.size),
			    (char *)key.data);
			continue;
		}
		if (a->ndom == a->maxdom) {
			a->maxdom = a->maxdom ? a->maxdom * 2 : 64;
			a->names = xreallocarray(a->names, a->maxdom,
			    sizeof(*a->names));
			a->msgs = xreallocarray(a->msgs, a->maxdom, 8);
			a->bytes = xreallocarray(a->bytes, a->maxdom, 8);
		}
		strlcpy(a->names[a->ndom], d.name, sizeof(a->names[0]));
		a->msgs[a->ndom] = a->bytes[a->ndom] = 0;
		a->ndom++;
		queue_domain_clear(&d);
	}
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* messages: decode, body, index entries */
	if ((rc = b->db[BDB_MESSAGES]->cursor(b->db[BDB_MESSAGES], t, &c, 0)) != 0)
		return rc;
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		uint64_t qid;

		if (key.size != 8) {
			bdb_problem(a, "message key of %u bytes", key.size);
			continue;
		}
		qid = unpack_be64(key.data);
		if (queue_rec_msg_decode(val.data, val.size, &m) < 0 ||
		    m.qid != qid) {
			char id[QUEUE_ID_LEN + 1];

			queue_id_format(qid, id);
			bdb_problem(a, "message %s: record is corrupt", id);
			continue;
		}
		if (!bdb_has_live(&m, NULL))
			bdb_problem(a, "message %s has no live recipient", m.id);
		live_msgs++;
		live_bytes += m.size;
		for (i = 0; i < m.nrcpt; i++)
			if (queue_rcpt_live(m.rcpt[i].state))
				live_rcpts++;
		for (i = 0; i < m.nrcpt; i++) {
			const char *dn = m.rcpt[i].domain;
			int dup = 0;
			uint64_t exp = 0;
			ssize_t di;

			for (j = 0; j < i; j++)
				if (strcmp(m.rcpt[j].domain, dn) == 0)
					dup = 1;
			if (dup || !bdb_has_live(&m, dn))
				continue;
			if ((di = bdb_check_dom_index(a, dn)) < 0)
				bdb_problem(a, "message %s: domain %s does not "
				    "exist", m.id, dn);
			else {
				a->msgs[di]++;
				a->bytes[di] += m.size;
			}
			rc = bdb_dq_expiry(b, t, dn, qid, &exp, 0);
			if (rc == DB_NOTFOUND) {
				bdb_problem(a, "message %s: missing from the "
				    "queue of %s", m.id, dn);
				continue;
			} else if (rc != 0)
				goto fail;
			rc = bdb_check_exists(b->db[BDB_EXPIRY], t, k,
			    bdb_exp_key(k, exp, qid, dn), NULL);
			if (rc == DB_NOTFOUND)
				bdb_problem(a, "message %s: missing from the "
				    "expiry index for %s", m.id, dn);
			else if (rc != 0)
				goto fail;
		}
		/*
		 * The body must add up to the recorded size. bodies.db is
		 * not multiversion: read it committed (no long read locks)
		 * and recheck a mismatch once the snapshot is over, since a
		 * delivery may have removed the message meanwhile.
		 */
		rc = bdb_check_body(b, t, qid, m.size, DB_READ_COMMITTED, NULL, 0);
		if (rc == BDB_APP(QUEUE_INVALID))
			bdb_suspect(a, qid);
		else if (rc != 0)
			goto fail;
		queue_msg_clear(&m);
	}
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* domainq: every entry points to a live message of that domain */
	if ((rc = b->db[BDB_DOMAINQ]->cursor(b->db[BDB_DOMAINQ], t, &c, 0)) != 0)
		return rc;
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		const unsigned char *kp = key.data;
		const unsigned char *nul = memchr(kp, '\0', key.size);
		char dn[DNAME_MAX + 1];
		uint64_t qid;

		if (nul == NULL || (size_t)(nul - kp) + 9 != key.size ||
		    (size_t)(nul - kp) > DNAME_MAX) {
			bdb_problem(a, "malformed domain queue entry");
			continue;
		}
		memcpy(dn, kp, (size_t)(nul - kp) + 1);
		qid = unpack_be64(nul + 1);
		rc = bdb_msg_get(b, t, qid, &m, 0);
		if (rc == BDB_APP(QUEUE_NOTFOUND)) {
			char id[QUEUE_ID_LEN + 1];

			queue_id_format(qid, id);
			bdb_problem(a, "queue of %s lists %s, which does not "
			    "exist", dn, id);
			continue;
		}
		if (rc == EINVAL)
			continue;	/* reported above */
		if (rc != 0)
			break;
		if (!bdb_has_live(&m, dn))
			bdb_problem(a, "queue of %s lists %s, which has no "
			    "live recipient there", dn, m.id);
		else {
			struct buf enc;

			buf_init(&enc);
			queue_rec_msg_encode(&enc, &m);
			if (val.size != enc.len + 8 || memcmp((unsigned char *)
			    val.data + 8, enc.data, enc.len) != 0)
				bdb_problem(a, "queue of %s holds a stale copy "
				    "of %s", dn, m.id);
			buf_release(&enc);
		}
		queue_msg_clear(&m);
	}
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* expiry: every entry has its domain queue entry */
	if ((rc = b->db[BDB_EXPIRY]->cursor(b->db[BDB_EXPIRY], t, &c, 0)) != 0)
		return rc;
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		const unsigned char *kp = key.data;
		char dn[DNAME_MAX + 1];
		uint64_t exp = 0;
		int r2;

		if (key.size < 17 || key.size > 16 + DNAME_MAX) {
			bdb_problem(a, "malformed expiry entry");
			continue;
		}
		memcpy(dn, kp + 16, key.size - 16);
		dn[key.size - 16] = '\0';
		r2 = bdb_dq_expiry(b, t, dn, unpack_be64(kp + 8), &exp, 0);
		if (r2 == DB_NOTFOUND)
			bdb_problem(a, "expiry entry for %s without a queue "
			    "entry", dn);
		else if (r2 == 0 && exp != unpack_be64(kp))
			bdb_problem(a, "expiry entry for %s disagrees with its "
			    "queue entry", dn);
		else if (r2 != 0) {
			rc = r2;
			break;
		}
	}
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* bodies without a message */
	if ((rc = b->db[BDB_BODIES]->cursor(b->db[BDB_BODIES], t, &c,
	    DB_READ_COMMITTED)) != 0)
		return rc;
	val.flags = DB_DBT_PARTIAL;
	{
		uint64_t last = 0;

		while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
			uint64_t qid;
			int r2;

			if (key.size != 12) {
				bdb_problem(a, "malformed body key");
				continue;
			}
			qid = unpack_be64(key.data);
			if (qid == last)
				continue;
			last = qid;
			pack_be64(k, qid);
			r2 = bdb_check_exists(b->db[BDB_MESSAGES], t, k, 8, NULL);
			if (r2 == DB_NOTFOUND)
				bdb_suspect(a, qid);	/* or enqueued since */
			else if (r2 != 0) {
				rc = r2;
				break;
			}
		}
	}
	val.flags = 0;
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* counters */
	for (i = 0; i < a->ndom; i++) {
		if ((rc = bdb_dom_get(b, t, a->names[i], &d, 0)) != 0)
			return rc == BDB_APP(QUEUE_NOTFOUND) ? 0 : rc;
		if (d.messages != a->msgs[i] || d.bytes != a->bytes[i])
			bdb_problem(a, "domain %s counts %" PRIu64 " messages / %"
			    PRIu64 " bytes, found %" PRIu64 " / %" PRIu64,
			    d.name, d.messages, d.bytes, a->msgs[i], a->bytes[i]);
		queue_domain_clear(&d);
	}
	if ((rc = bdb_stats_get(b, t, &s, 0)) != 0)
		return rc;
	if (s.messages != live_msgs || s.bytes != live_bytes ||
	    s.recipients != live_rcpts)
		bdb_problem(a, "store counts %" PRIu64 " messages / %" PRIu64
		    " bytes / %" PRIu64 " recipients, found %" PRIu64 " / %"
		    PRIu64 " / %" PRIu64, s.messages, s.bytes, s.recipients,
		    live_msgs, live_bytes, live_rcpts);
	return 0;
fail:
	queue_msg_clear(&m);
	c->close(c);
	return rc;
}

/* bdb_check - backend check() */
enum queue_status
bdb_check(void *state, queue_problem_fn fn, void *fnarg, uint64_t *nproblems,
    struct queue_error *err)
{
	struct bdb_check_arg a = { .fn = fn, .fnarg = fnarg };
	enum queue_status st;
	size_t i;

	st = bdb_run(state, BDB_READ, bdb_check_txn, &a, "check", err);
	for (i = 0; st == QUEUE_OK && i < a.nsuspect; i++) {
		struct bdb_recheck_arg r = { .qid = a.suspect[i] };
		char id[QUEUE_ID_LEN + 1];

		st = bdb_run(state, BDB_LOCKED, bdb_recheck_txn, &r, "check", err);
		if (st == QUEUE_OK && r.why[0]) {
			queue_id_format(r.qid, id);
			bdb_problem(&a, "message %s: %s", id, r.why);
		}
	}
	*nproblems = a.problems;
	free(a.suspect);
	free(a.names);
	free(a.msgs);
	free(a.bytes);
	return st;
}
