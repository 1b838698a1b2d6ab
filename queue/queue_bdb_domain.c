/*
 * NAME
 *	queue_bdb_domain 3 - customer domains and flush claims in Berkeley DB
 * DESCRIPTION
 *	Domain records live in domains.db, keyed by the normalised name.
 *	They carry the settings odmrctl manages and the counters the store
 *	keeps in the same transactions as the messages, plus the flush
 *	claim: holder, pid and expiry. A claim whose expiry passed or whose
 *	holder process is gone is broken by the next claimant.
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

/* ---- domains ---- */

struct bdb_dom_arg {
	const struct queue_domain *in;
	const char	*name;
	queue_update_fn	 fn;
	void		*fnarg;
	struct queue_domain *out;
	int		 force;
	struct queue_error *err;
};

/* bdb_domain_add_txn - insert a new domain record */
static int
bdb_domain_add_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_dom_arg *a = arg;
	struct queue_domain d = *a->in;

	d.created = bdb_now();
	d.messages = d.bytes = d.last_pickup = 0;
	d.claim_holder = NULL;
	d.claim_pid = d.claim_expiry = 0;
	if (d.route == NULL)
		d.route = "mx";
	return bdb_dom_put(b, t, &d, DB_NOOVERWRITE);
}

/* bdb_domain_add - backend domain_add() */
enum queue_status
bdb_domain_add(void *state, const struct queue_domain *d,
    struct queue_error *err)
{
	struct bdb_dom_arg a = { .in = d };
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_domain_add_txn, &a, "domain add", err);
	if (st == QUEUE_EXISTS)
		queue_error_set(err, "domain %s already exists", d->name);
	return st;
}

/* bdb_domain_update_txn - read, let the caller change, write back */
static int
bdb_domain_update_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_dom_arg *a = arg;
	struct queue_domain d, keep;
	int rc;

	if ((rc = bdb_dom_get(b, t, a->name, &d, DB_RMW)) != 0)
		return rc;
	keep = d;
	a->fn(&d, a->fnarg);
	/* the store owns the counters and the claim */
	strlcpy(d.name, keep.name, sizeof(d.name));
	d.created = keep.created;
	d.messages = keep.messages;
	d.bytes = keep.bytes;
	d.last_pickup = keep.last_pickup;
	d.claim_holder = keep.claim_holder;
	d.claim_pid = keep.claim_pid;
	d.claim_expiry = keep.claim_expiry;
	if (d.nowners == 0 || (d.route && strcmp(d.route, "client") == 0 &&
	    d.etrn != QUEUE_ETRN_OWNER))
		rc = BDB_APP(QUEUE_INVALID);
	else
		rc = bdb_dom_put(b, t, &d, 0);
	queue_domain_clear(&d);
	return rc;
}

/* bdb_domain_update - backend domain_update() */
enum queue_status
bdb_domain_update(void *state, const char *name, queue_update_fn fn,
    void *fnarg, struct queue_error *err)
{
	struct bdb_dom_arg a = { .name = name, .fn = fn, .fnarg = fnarg };
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_domain_update_txn, &a,
	    "domain set", err);
	if (st == QUEUE_NOTFOUND)
		queue_error_set(err, "no such domain: %s", name);
	else if (st == QUEUE_INVALID)
		queue_error_set(err, "domain %s: needs an owner, and route "
		    "'client' requires etrn 'owner'", name);
	return st;
}

/* bdb_dom_oldest - fill oldest/next_expiry from the domain's first entry */
int
bdb_dom_oldest(struct bdb *b, DB_TXN *t, struct queue_domain *d)
{
	unsigned char k[DNAME_MAX + 10];
	DBC *c;
	DBT key, val;
	size_t n = strlen(d->name);
	int rc;

	d->oldest = d->next_expiry = 0;
	if ((rc = b->db[BDB_DOMAINQ]->cursor(b->db[BDB_DOMAINQ], t, &c, 0)) != 0)
		return rc;
	memcpy(k, d->name, n + 1);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = (u_int32_t)(n + 1);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	rc = c->get(c, &key, &val, DB_SET_RANGE);
	if (rc == 0 && key.size == n + 9 && memcmp(k, d->name, n + 1) == 0) {
		d->oldest = unpack_be64(k + n + 1) >> 24;
		if (val.size >= 8)
			d->next_expiry = unpack_be64(val.data);
	} else if (rc == DB_NOTFOUND || rc == 0)
		rc = 0;
	c->close(c);
	return rc == DB_BUFFER_SMALL ? 0 : rc;
}

/* bdb_domain_get_txn - read one domain and its oldest message */
static int
bdb_domain_get_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_dom_arg *a = arg;
	int rc;

	if ((rc = bdb_dom_get(b, t, a->name, a->out, 0)) != 0)
		return rc;
	if ((rc = bdb_dom_oldest(b, t, a->out)) != 0)
		queue_domain_clear(a->out);
	return rc;
}

/* bdb_domain_get - backend domain_get() */
enum queue_status
bdb_domain_get(void *state, const char *name, struct queue_domain *d,
    struct queue_error *err)
{
	struct bdb_dom_arg a = { .name = name, .out = d };
	enum queue_status st;

	st = bdb_run(state, BDB_READ, bdb_domain_get_txn, &a, "domain get", err);
	if (st == QUEUE_NOTFOUND)
		queue_error_set(err, "no such domain: %s", name);
	return st;
}

/* bdb_domain_exists_txn - existence test without decoding */
static int
bdb_domain_exists_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	const char *name = arg;
	DBT key = bdb_dbt(name, strlen(name)), val;
	int rc;

	/* DB_THREAD wants a memory flag even for a zero-length read */
	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL | DB_DBT_USERMEM;
	rc = b->db[BDB_DOMAINS]->get(b->db[BDB_DOMAINS], t, &key, &val, 0);
	return rc == DB_NOTFOUND ? BDB_APP(QUEUE_NOTFOUND) : rc;
}

/* bdb_domain_exists - backend domain_exists() */
enum queue_status
bdb_domain_exists(void *state, const char *name, struct queue_error *err)
{
	return bdb_run(state, BDB_READ, bdb_domain_exists_txn,
	    (void *)(uintptr_t)name, "domain lookup", err);
}

struct bdb_list_arg {
	char		 after[DNAME_MAX + 1];	/* resume past this name */
	struct queue_domain doms[BDB_BATCH];
	size_t		 n;
	int		 more;
};

/* bdb_list_clear - free a batch of domains */
static void
bdb_list_clear(struct bdb_list_arg *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		queue_domain_clear(&a->doms[i]);
	a->n = 0;
}

/* bdb_domain_list_txn - the next BDB_BATCH domains in name order */
static int
bdb_domain_list_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_list_arg *a = arg;
	unsigned char k[DNAME_MAX + 1];
	DBC *c;
	DBT key, val;
	int rc;
	u_int32_t op = a->after[0] ? DB_SET_RANGE : DB_FIRST;

	bdb_list_clear(a);
	a->more = 0;
	if ((rc = b->db[BDB_DOMAINS]->cursor(b->db[BDB_DOMAINS], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = (u_int32_t)strlen(a->after);
	memcpy(k, a->after, key.size);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, op)) == 0) {
		struct queue_domain *d = &a->doms[a->n];

		op = DB_NEXT;
		if (a->after[0] && key.size == strlen(a->after) &&
		    memcmp(k, a->after, key.size) == 0)
			continue;	/* the one we stopped at */
		if (a->n == BDB_BATCH) {
			a->more = 1;
			break;
		}
		if (queue_rec_dom_decode(val.data, val.size, d) < 0) {
			rc = EINVAL;
			break;
		}
		a->n++;
		if ((rc = bdb_dom_oldest(b, t, d)) != 0)
			break;
	}
	c->close(c);
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_domain_list - backend domain_list(): batches, callbacks outside */
enum queue_status
bdb_domain_list(void *state, queue_domain_fn fn, void *fnarg,
    struct queue_error *err)
{
	struct bdb_list_arg *a = xcalloc(1, sizeof(*a));
	enum queue_status st;
	size_t i;
	int stop = 0;

	do {
		st = bdb_run(state, BDB_READ, bdb_domain_list_txn, a,
		    "domain list", err);
		if (st != QUEUE_OK)
			break;
		for (i = 0; i < a->n && !stop; i++)
			stop = fn(&a->doms[i], fnarg);
		if (a->n)
			strlcpy(a->after, a->doms[a->n - 1].name,
			    sizeof(a->after));
		bdb_list_clear(a);
	} while (a->more && !stop);
	bdb_list_clear(a);
	free(a);
	return st;
}

/* bdb_domain_del_txn - delete an empty domain record */
static int
bdb_domain_del_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_dom_arg *a = arg;
	struct queue_domain d;
	DBT key;
	int rc;

	if ((rc = bdb_dom_get(b, t, a->name, &d, DB_RMW)) != 0)
		return rc;
	if (d.messages > 0) {
		queue_error_set(a->err, "domain %s still holds %" PRIu64
		    " message(s); use --force to delete them too", a->name,
		    d.messages);
		queue_domain_clear(&d);
		return BDB_APP(QUEUE_BUSY);
	}
	queue_domain_clear(&d);
	key = bdb_dbt(a->name, strlen(a->name));
	return b->db[BDB_DOMAINS]->del(b->db[BDB_DOMAINS], t, &key, 0);
}

/* bdb_domain_del - backend domain_del(); --force deletes the mail first */
enum queue_status
bdb_domain_del(void *state, const char *name, int force,
    struct queue_error *err)
{
	struct bdb_dom_arg a = { .name = name, .err = err };
	enum queue_status st;
	uint64_t n;
	int round;

	for (round = 0; round < 100; round++) {
		if (force) {
			st = bdb_domain_op(state, QUEUE_OP_DELETE, name, &n, err);
			if (st != QUEUE_OK && st != QUEUE_NOTFOUND)
				return st;
		}
		if (err)
			err->text[0] = '\0';
		st = bdb_run(state, BDB_WRITE, bdb_domain_del_txn, &a,
		    "domain del", err);
		if (st == QUEUE_NOTFOUND)
			queue_error_set(err, "no such domain: %s", name);
		if (st != QUEUE_BUSY || !force)
			return st;
	}
	return st;
}

/* ---- claims ---- */

struct bdb_claim_arg {
	const char	*domain;
	const char	*holder;
	uint64_t	 ttl;
	char		*busy;
	int		 picked_up;
};

/* bdb_claim_dead - may an existing claim be broken? */
static int
bdb_claim_dead(const struct queue_domain *d, uint64_t now)
{
	if (d->claim_holder == NULL)
		return 1;
	if (d->claim_expiry <= now)
		return 1;
	if (d->claim_pid != 0 && kill((pid_t)d->claim_pid, 0) < 0 &&
	    errno == ESRCH)
		return 1;
	return 0;
}

/* bdb_claim_txn - take the claim if it is free, expired or orphaned */
static int
bdb_claim_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_claim_arg *a = arg;
	struct queue_domain d;
	uint64_t now = bdb_now();
	int rc;

	if ((rc = bdb_dom_get(b, t, a->domain, &d, DB_RMW)) != 0)
		return rc;
	if (!bdb_claim_dead(&d, now) && strcmp(d.claim_holder, a->holder) != 0) {
		if (a->busy)
			strlcpy(a->busy, d.claim_holder, QUEUE_HOLDER_MAX);
		queue_domain_clear(&d);
		return BDB_APP(QUEUE_BUSY);
	}
	free(d.claim_holder);
	d.claim_holder = xstrdup(a->holder);
	d.claim_pid = (uint64_t)getpid();
	d.claim_expiry = now + a->ttl;
	rc = bdb_dom_put(b, t, &d, 0);
	queue_domain_clear(&d);
	return rc;
}

/* bdb_claim - backend claim() */
enum queue_status
bdb_claim(void *state, const char *domain, const char *holder, uint64_t ttl,
    char *busy, struct queue_error *err)
{
	struct bdb_claim_arg a = { domain, holder, ttl, busy, 0 };
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_claim_txn, &a, "claim", err);
	if (st == QUEUE_BUSY)
		queue_error_set(err, "domain %s is being flushed by %s", domain,
		    busy ? busy : "another process");
	else if (st == QUEUE_NOTFOUND)
		queue_error_set(err, "no such domain: %s", domain);
	return st;
}

/* bdb_unclaim_txn - release our claim; record the pickup time */
static int
bdb_unclaim_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_claim_arg *a = arg;
	struct queue_domain d;
	int rc;

	if ((rc = bdb_dom_get(b, t, a->domain, &d, DB_RMW)) != 0)
		return rc;
	if (d.claim_holder == NULL || strcmp(d.claim_holder, a->holder) != 0) {
		queue_domain_clear(&d);
		return BDB_APP(QUEUE_NOTFOUND);
	}
	free(d.claim_holder);
	d.claim_holder = NULL;
	d.claim_pid = d.claim_expiry = 0;
	if (a->picked_up)
		d.last_pickup = bdb_now();
	rc = bdb_dom_put(b, t, &d, 0);
	queue_domain_clear(&d);
	return rc;
}

/* bdb_unclaim - backend unclaim() */
enum queue_status
bdb_unclaim(void *state, const char *domain, const char *holder,
    int picked_up, struct queue_error *err)
{
	struct bdb_claim_arg a = { domain, holder, 0, NULL, picked_up };
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_unclaim_txn, &a, "unclaim", err);
	if (st == QUEUE_NOTFOUND)
		queue_error_set(err, "%s holds no claim on %s", holder, domain);
	return st;
}
