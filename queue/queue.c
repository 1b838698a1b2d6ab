/*
 * NAME
 *	queue 3 - store front end: validation, names and dispatch
 * SYNOPSIS
 *	#include "queue.h"
 * DESCRIPTION
 *	Every public queue_*() function lands here first. Arguments are
 *	checked and domains normalised (lib/dname) before a backend sees
 *	them; then the call goes through the backend's const vtable. The
 *	mapping from enum values to names used by odmrctl and the logs
 *	lives here too, in one place.
 * SEE ALSO
 *	queue_bdb(3), queue_rec(3)
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compat.h"
#include "dname.h"
#include "queue.h"
#include "queue_backend.h"
#include "queue_rec.h"
#include "xmalloc.h"

struct queue {
	const struct queue_backend *be;
	void	*state;
};

/* queue_error_set - fill an optional error text */
void
queue_error_set(struct queue_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
}

/* queue_rcpt_live - is a recipient still waiting in the queue? */
int
queue_rcpt_live(enum queue_rcpt_state s)
{
	return s == QUEUE_RCPT_QUEUED || s == QUEUE_RCPT_HELD;
}

/* queue_key - normalise a domain argument into key form */
static enum queue_status
queue_key(const char *in, char out[DNAME_MAX + 1], struct queue_error *err)
{
	const char *why;

	if (in == NULL || dname_normalize(in, out, &why) < 0) {
		queue_error_set(err, "invalid domain '%s': %s",
		    in ? in : "(null)", in ? why : "missing");
		return QUEUE_INVALID;
	}
	return QUEUE_OK;
}

/* queue_open - open (and maybe create) the store under state_dir */
enum queue_status
queue_open(const struct queue_opts *opts, struct queue **qp,
    struct queue_error *err)
{
	struct queue *q;
	enum queue_status st;

	*qp = NULL;
	if (opts == NULL || opts->state_dir == NULL || opts->state_dir[0] != '/') {
		queue_error_set(err, "state_dir must be an absolute path");
		return QUEUE_INVALID;
	}
	q = xcalloc(1, sizeof(*q));
	q->be = &queue_bdb_backend;
	if ((st = q->be->open(opts, &q->state, err)) != QUEUE_OK) {
		free(q);
		return st;
	}
	*qp = q;
	return QUEUE_OK;
}

/* queue_close - close the store and clear the caller's pointer */
void
queue_close(struct queue **qp)
{
	if (*qp == NULL)
		return;
	(*qp)->be->close(&(*qp)->state);
	free(*qp);
	*qp = NULL;
}

/* queue_backend_name - which backend serves this handle */
const char *
queue_backend_name(const struct queue *q)
{
	return q->be->name;
}

/* queue_domain_valid - check the settings of a domain record */
static enum queue_status
queue_domain_valid(const struct queue_domain *d, struct queue_error *err)
{
	size_t i;

	if (d->nowners == 0) {
		queue_error_set(err, "domain %s needs at least one owner", d->name);
		return QUEUE_INVALID;
	}
	for (i = 0; i < d->nowners; i++)
		if (d->owners[i] == NULL || d->owners[i][0] == '\0') {
			queue_error_set(err, "empty owner name");
			return QUEUE_INVALID;
		}
	if (d->etrn > QUEUE_ETRN_OWNER || d->tls > QUEUE_TLS_VERIFY) {
		queue_error_set(err, "bad etrn or tls setting");
		return QUEUE_INVALID;
	}
	if (d->route != NULL && strcmp(d->route, "client") == 0 &&
	    d->etrn != QUEUE_ETRN_OWNER) {
		queue_error_set(err, "route 'client' requires etrn 'owner'");
		return QUEUE_INVALID;
	}
	return QUEUE_OK;
}

/* queue_domain_add - create a customer domain */
enum queue_status
queue_domain_add(struct queue *q, const struct queue_domain *d,
    struct queue_error *err)
{
	struct queue_domain c;
	enum queue_status st;

	c = *d;
	if ((st = queue_key(d->name, c.name, err)) != QUEUE_OK ||
	    (st = queue_domain_valid(&c, err)) != QUEUE_OK)
		return st;
	return q->be->domain_add(q->state, &c, err);
}

/* queue_domain_update - change a domain's settings in one transaction */
enum queue_status
queue_domain_update(struct queue *q, const char *name, queue_update_fn fn,
    void *arg, struct queue_error *err)
{
	char key[DNAME_MAX + 1];
	enum queue_status st;

	if ((st = queue_key(name, key, err)) != QUEUE_OK)
		return st;
	return q->be->domain_update(q->state, key, fn, arg, err);
}

/* queue_domain_get - read one domain with its counters */
enum queue_status
queue_domain_get(struct queue *q, const char *name, struct queue_domain *d,
    struct queue_error *err)
{
	char key[DNAME_MAX + 1];
	enum queue_status st;

	memset(d, 0, sizeof(*d));
	if ((st = queue_key(name, key, err)) != QUEUE_OK)
		return st;
	return q->be->domain_get(q->state, key, d, err);
}

/* queue_domain_del - remove a domain (with its mail when forced) */
enum queue_status
queue_domain_del(struct queue *q, const char *name, int force,
    struct queue_error *err)
{
	char key[DNAME_MAX + 1];
	enum queue_status st;

	if ((st = queue_key(name, key, err)) != QUEUE_OK)
		return st;
	return q->be->domain_del(q->state, key, force, err);
}

/* queue_domain_list - every domain, in name order, with counters */
enum queue_status
queue_domain_list(struct queue *q, queue_domain_fn fn, void *arg,
    struct queue_error *err)
{
	return q->be->domain_list(q->state, fn, arg, err);
}

/*
 * queue_domain_match - find the customer domain that takes a recipient
 * domain: the domain itself, or the nearest parent that has
 * --subdomains. Used by RCPT TO relay control.
 */
enum queue_status
queue_domain_match(struct queue *q, const char *rcpt_domain,
    char out[DNAME_MAX + 1], struct queue_error *err)
{
	char key[DNAME_MAX + 1];
	struct queue_domain d;
	const char *p;
	enum queue_status st;

	if ((st = queue_key(rcpt_domain, key, err)) != QUEUE_OK)
		return st;
	st = q->be->domain_exists(q->state, key, err);
	if (st != QUEUE_NOTFOUND) {
		if (st == QUEUE_OK)
			strlcpy(out, key, DNAME_MAX + 1);
		return st;
	}
	for (p = strchr(key, '.'); p != NULL; p = strchr(p + 1, '.')) {
		if (strchr(p + 1, '.') == NULL)
			break;		/* never match a bare TLD */
		st = q->be->domain_get(q->state, p + 1, &d, err);
		if (st == QUEUE_NOTFOUND)
			continue;
		if (st != QUEUE_OK)
			return st;
		if (d.subdomains) {
			strlcpy(out, d.name, DNAME_MAX + 1);
			queue_domain_clear(&d);
			return QUEUE_OK;
		}
		queue_domain_clear(&d);
		break;
	}
	queue_error_set(err, "%s is not a customer domain", key);
	return QUEUE_NOTFOUND;
}

/* queue_domain_clear - free what a domain record owns */
void
queue_domain_clear(struct queue_domain *d)
{
	size_t i;

	for (i = 0; i < d->nowners; i++)
		free(d->owners[i]);
	free(d->owners);
	free(d->route);
	free(d->claim_holder);
	d->owners = NULL;
	d->nowners = 0;
	d->route = NULL;
	d->claim_holder = NULL;
}

/* queue_enqueue - store a message durably; fills qid, id, size, arrival */
enum queue_status
queue_enqueue(struct queue *q, struct queue_msg *m, queue_reader_fn rd,
    void *ctx, struct queue_error *err)
{
	size_t i;
	enum queue_status st;

	if (m->nrcpt == 0 || m->nrcpt > QUEUE_REC_MAX_RCPT || m->rcpt == NULL) {
		queue_error_set(err, "a message needs 1 to %d recipients",
		    QUEUE_REC_MAX_RCPT);
		return QUEUE_INVALID;
	}
	for (i = 0; i < m->nrcpt; i++) {
		struct queue_rcpt *r = &m->rcpt[i];

		if (r->addr == NULL) {
			queue_error_set(err, "recipient %zu has no address", i);
			return QUEUE_INVALID;
		}
		if ((st = queue_key(r->domain, r->domain, err)) != QUEUE_OK)
			return st;
		r->index = (uint32_t)i;
		r->state = QUEUE_RCPT_QUEUED;
		r->attempts = 0;
		r->last_attempt = 0;
	}
	if (m->ret > QUEUE_RET_HDRS || m->body > QUEUE_BODY_BINARYMIME) {
		queue_error_set(err, "bad RET or BODY value");
		return QUEUE_INVALID;
	}
	return q->be->enqueue(q->state, m, rd, ctx, err);
}

struct queue_mem_reader {
	const unsigned char *p;
	size_t len;
};

/* queue_mem_read - queue_reader_fn over a memory buffer */
static ssize_t
queue_mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct queue_mem_reader *r = ctx;

	if (off >= r->len)
		return 0;
	if (len > r->len - off)
		len = (size_t)(r->len - off);
	memcpy(buf, r->p + off, len);
	return (ssize_t)len;
}

/* queue_id_reserve - n sequence numbers for messages still arriving */
enum queue_status
queue_id_reserve(struct queue *q, unsigned n, uint64_t *first,
    struct queue_error *err)
{
	if (n == 0 || n > QUEUE_ID_RESERVE_MAX) {
		queue_error_set(err, "reserve 1 to %d ids at a time",
		    QUEUE_ID_RESERVE_MAX);
		return QUEUE_INVALID;
	}
	return q->be->id_reserve(q->state, n, first, err);
}

/* queue_id_make - the queue id of a message: arrival, then sequence */
uint64_t
queue_id_make(uint64_t arrival, uint64_t seq)
{
	/* ids sort by arrival, so a domain's index is in arrival order */
	return (arrival << 24) | (seq & 0xffffff);
}

/* queue_enqueue_mem - queue_enqueue() with the body in memory */
enum queue_status
queue_enqueue_mem(struct queue *q, struct queue_msg *m, const void *body,
    size_t len, struct queue_error *err)
{
	struct queue_mem_reader r = { body, len };

	return queue_enqueue(q, m, queue_mem_read, &r, err);
}

/* queue_walk - visit one domain's messages in arrival order */
enum queue_status
queue_walk(struct queue *q, const char *domain, unsigned flags,
    queue_msg_fn fn, void *arg, struct queue_error *err)
{
	char key[DNAME_MAX + 1];
	enum queue_status st;

	if ((st = queue_key(domain, key, err)) != QUEUE_OK)
		return st;
	return q->be->walk(q->state, key, flags, fn, arg, err);
}

/* queue_deliverable_fn - stop the walk at the first message */
static int
queue_deliverable_fn(const struct queue_msg *m, void *arg)
{
	(void)m;
	*(int *)arg = 1;
	return 1;
}

/* queue_deliverable - does the domain hold a queued (not held) message? */
enum queue_status
queue_deliverable(struct queue *q, const char *domain, int *any,
    struct queue_error *err)
{
	*any = 0;
	return queue_walk(q, domain, QUEUE_WALK_DELIVERABLE,
	    queue_deliverable_fn, any, err);
}

/* queue_get - read a whole message envelope */
enum queue_status
queue_get(struct queue *q, uint64_t qid, struct queue_msg **mp,
    struct queue_error *err)
{
	*mp = NULL;
	return q->be->get(q->state, qid, mp, err);
}

/* queue_body_read - stream a message body in chunks */
enum queue_status
queue_body_read(struct queue *q, uint64_t qid, queue_chunk_fn fn, void *arg,
    struct queue_error *err)
{
	return q->be->body_read(q->state, qid, fn, arg, err);
}

/* queue_record - record per-recipient delivery outcomes durably */
enum queue_status
queue_record(struct queue *q, const struct queue_outcome *o, size_t n,
    struct queue_error *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (o[i].kind > QUEUE_OUTCOME_WARNED) {
			queue_error_set(err, "bad outcome kind");
			return QUEUE_INVALID;
		}
	if (n == 0)
		return QUEUE_OK;
	return q->be->record(q->state, o, n, err);
}

/* queue_msg_op - hold, release or delete one message (in one domain) */
enum queue_status
queue_msg_op(struct queue *q, enum queue_op op, uint64_t qid,
    const char *domain, struct queue_error *err)
{
	char key[DNAME_MAX + 1];
	enum queue_status st;

	if (op > QUEUE_OP_DELETE) {
		queue_error_set(err, "bad operation");
		return QUEUE_INVALID;
	}
	if (domain == NULL)
		return q->be->msg_op(q->state, op, qid, NULL, err);
	if ((st = queue_key(domain, key, err)) != QUEUE_OK)
		return st;
	return q->be->msg_op(q->state, op, qid, key, err);
}

/* queue_domain_op - hold, release or delete all of a domain's mail */
enum queue_status
queue_domain_op(struct queue *q, enum queue_op op, const char *domain,
    uint64_t *count, struct queue_error *err)
{
	char key[DNAME_MAX + 1];
	enum queue_status st;

	*count = 0;
	if (op > QUEUE_OP_DELETE) {
		queue_error_set(err, "bad operation");
		return QUEUE_INVALID;
	}
	if ((st = queue_key(domain, key, err)) != QUEUE_OK)
		return st;
	return q->be->domain_op(q->state, op, key, count, err);
}

/* queue_msg_free - free a message from queue_get() */
void
queue_msg_free(struct queue_msg **mp)
{
	if (*mp == NULL)
		return;
	queue_msg_clear(*mp);
	free(*mp);
	*mp = NULL;
}

/* queue_claim - take the exclusive flush claim on a domain */
enum queue_status
queue_claim(struct queue *q, const char *domain, const char *holder,
    uint64_t ttl, char busy_holder[QUEUE_HOLDER_MAX], struct queue_error *err)
{
	char key[DNAME_MAX + 1];
	enum queue_status st;

	if (busy_holder)
		busy_holder[0] = '\0';
	if (holder == NULL || holder[0] == '\0' ||
	    strlen(holder) >= QUEUE_HOLDER_MAX || ttl == 0) {
		queue_error_set(err, "a claim needs a holder name and a ttl");
		return QUEUE_INVALID;
	}
	if ((st = queue_key(domain, key, err)) != QUEUE_OK)
		return st;
	return q->be->claim(q->state, key, holder, ttl, busy_holder, err);
}

/* queue_unclaim - release a flush claim */
enum queue_status
queue_unclaim(struct queue *q, const char *domain, const char *holder,
    int picked_up, struct queue_error *err)
{
	char key[DNAME_MAX + 1];
	enum queue_status st;

	if (holder == NULL) {
		queue_error_set(err, "missing claim holder");
		return QUEUE_INVALID;
	}
	if ((st = queue_key(domain, key, err)) != QUEUE_OK)
		return st;
	return q->be->unclaim(q->state, key, holder, picked_up, err);
}

/* queue_expire_scan - visit (message, domain) pairs expired by now */
enum queue_status
queue_expire_scan(struct queue *q, uint64_t now, size_t limit,
    queue_expire_fn fn, void *arg, struct queue_error *err)
{
	return q->be->expire_scan(q->state, now, limit, fn, arg, err);
}

/* queue_stats - store-wide counters */
enum queue_status
queue_stats(struct queue *q, struct queue_stats *s, struct queue_error *err)
{
	memset(s, 0, sizeof(*s));
	return q->be->stats(q->state, s, err);
}

/* queue_check - full consistency check, batch by batch */
enum queue_status
queue_check(struct queue *q, queue_problem_fn fn, void *arg,
    uint64_t *nproblems, struct queue_error *err)
{
	*nproblems = 0;
	return q->be->check(q->state, fn, arg, nproblems, err);
}

/* queue_maintain - periodic housekeeping: dead processes, checkpoints, logs */
enum queue_status
queue_maintain(struct queue *q, struct queue_error *err)
{
	return q->be->maintain(q->state, err);
}

/* queue_id_format - print a queue id as 14 upper-case hex digits */
void
queue_id_format(uint64_t qid, char out[QUEUE_ID_LEN + 1])
{
	snprintf(out, QUEUE_ID_LEN + 1, "%014" PRIX64, qid);
}

/* queue_id_parse - parse a printed queue id (case-insensitive) */
int
queue_id_parse(const char *s, uint64_t *qid)
{
	uint64_t v = 0;
	size_t i;

	if (s == NULL || strlen(s) != QUEUE_ID_LEN)
		return -1;
	for (i = 0; i < QUEUE_ID_LEN; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return -1;
		v = (v << 4) | d;
	}
	*qid = v;
	return 0;
}

#define NAME_OF(tab, v) \
	((size_t)(v) < sizeof(tab) / sizeof(tab[0]) ? tab[v] : "unknown")

/* queue_status_name - short name of a status */
const char *
queue_status_name(enum queue_status s)
{
	static const char *const names[] = { "ok", "not found", "exists",
	    "busy", "limit reached", "no space", "invalid", "store error" };

	return NAME_OF(names, s);
}

/* queue_rcpt_state_name - name of a recipient state */
const char *
queue_rcpt_state_name(enum queue_rcpt_state s)
{
	static const char *const names[] = { "queued", "held", "delivered",
	    "failed", "deleted" };

	return NAME_OF(names, s);
}

/* queue_body_type_name - SMTP BODY= value */
const char *
queue_body_type_name(enum queue_body_type b)
{
	static const char *const names[] = { "7BIT", "8BITMIME", "BINARYMIME" };

	return NAME_OF(names, b);
}

/* queue_ret_name - RFC 3461 RET value */
const char *
queue_ret_name(enum queue_ret r)
{
	static const char *const names[] = { "default", "FULL", "HDRS" };

	return NAME_OF(names, r);
}

/* queue_body_type_parse - 7BIT|8BITMIME|BINARYMIME, any case */
int
queue_body_type_parse(const char *s, enum queue_body_type *b)
{
	static const char *const names[] = { "7BIT", "8BITMIME", "BINARYMIME" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0) {
			*b = (enum queue_body_type)i;
			return 0;
		}
	return -1;
}

/* queue_ret_parse - RFC 3461 FULL|HDRS, any case */
int
queue_ret_parse(const char *s, enum queue_ret *r)
{
	if (strcasecmp(s, "FULL") == 0)
		*r = QUEUE_RET_FULL;
	else if (strcasecmp(s, "HDRS") == 0)
		*r = QUEUE_RET_HDRS;
	else
		return -1;
	return 0;
}

static const char *const queue_etrn_names[] = { "off", "any", "owner" };
static const char *const queue_tls_names[] = { "none", "may", "encrypt",
    "verify" };

/* queue_etrn_name - name of an ETRN policy */
const char *
queue_etrn_name(enum queue_etrn e)
{
	return NAME_OF(queue_etrn_names, e);
}

/* queue_tls_name - name of a TLS policy */
const char *
queue_tls_name(enum queue_tls t)
{
	return NAME_OF(queue_tls_names, t);
}

/* queue_etrn_parse - parse off|any|owner */
int
queue_etrn_parse(const char *s, enum queue_etrn *e)
{
	size_t i;

	for (i = 0; i < sizeof(queue_etrn_names) / sizeof(queue_etrn_names[0]); i++)
		if (strcmp(s, queue_etrn_names[i]) == 0) {
			*e = (enum queue_etrn)i;
			return 0;
		}
	return -1;
}

/* queue_tls_parse - parse none|may|encrypt|verify */
int
queue_tls_parse(const char *s, enum queue_tls *t)
{
	size_t i;

	for (i = 0; i < sizeof(queue_tls_names) / sizeof(queue_tls_names[0]); i++)
		if (strcmp(s, queue_tls_names[i]) == 0) {
			*t = (enum queue_tls)i;
			return 0;
		}
	return -1;
}

/* queue_notify_format - "SUCCESS,FAILURE" style text, "-" when absent */
void
queue_notify_format(unsigned notify, char *out, size_t outsz)
{
	static const struct { unsigned bit; const char *name; } t[] = {
		{ QUEUE_NOTIFY_NEVER, "NEVER" },
		{ QUEUE_NOTIFY_SUCCESS, "SUCCESS" },
		{ QUEUE_NOTIFY_FAILURE, "FAILURE" },
		{ QUEUE_NOTIFY_DELAY, "DELAY" },
	};
	size_t i;

	if (outsz == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (notify & t[i].bit) {
			if (out[0])
				strlcat(out, ",", outsz);
			strlcat(out, t[i].name, outsz);
		}
	if (out[0] == '\0')
		strlcpy(out, "-", outsz);
}
