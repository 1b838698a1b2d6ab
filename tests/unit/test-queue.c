/*
 * NAME
 *	test-queue - unit tests of the message store (queue/)
 * DESCRIPTION
 *	Every store operation against the real Berkeley DB backend in a
 *	fresh temporary state directory per test: domains, enqueue, walk,
 *	multi-domain messages, partial delivery and counters, claims and
 *	broken claims, expiry order, hold/release/delete, quotas, huge and
 *	empty bodies, and a consistency check after each scenario.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "queue.h"
#include "queue_rec.h"

struct fx {
	char		 dir[64];
	struct queue	*q;
};

/* rm_rf - remove a test directory */
static void
rm_rf(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* fx_open - open the store of a fixture */
static void
fx_open(struct fx *f)
{
	struct queue_opts o = { .state_dir = f->dir, .flags = QUEUE_OPEN_CREATE,
	    .default_lifetime = 3600 };
	struct queue_error err;

	assert_int_equal(queue_open(&o, &f->q, &err), QUEUE_OK);
}

/* setup - a fresh store in a temporary directory */
static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strlcpy(f->dir, "/tmp/test-queue.XXXXXX", sizeof(f->dir));
	if (mkdtemp(f->dir) == NULL)
		return -1;
	fx_open(f);
	*state = f;
	return 0;
}

/* problem_print - show check problems in the test output */
static int
problem_print(const char *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "# check: %s\n", p);
	return 0;
}

/* assert_consistent - queue_check finds nothing */
static void
assert_consistent(struct queue *q)
{
	struct queue_error err;
	uint64_t n = 99;

	assert_int_equal(queue_check(q, problem_print, NULL, &n, &err), QUEUE_OK);
	assert_int_equal(n, 0);
}

/* teardown - check, close and remove the store */
static int
teardown(void **state)
{
	struct fx *f = *state;

	if (f->q)
		assert_consistent(f->q);
	queue_close(&f->q);
	assert_null(f->q);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* add_domain - create a domain with one owner */
static void
add_domain(struct queue *q, const char *name, uint64_t lifetime,
    uint64_t max_messages, uint64_t max_bytes, int subdomains)
{
	char *owners[] = { "alice" };
	struct queue_domain d;
	struct queue_error err;

	memset(&d, 0, sizeof(d));
	strlcpy(d.name, name, sizeof(d.name));
	d.owners = owners;
	d.nowners = 1;
	d.etrn = QUEUE_ETRN_ANY;
	d.tls = QUEUE_TLS_MAY;
	d.lifetime = lifetime;
	d.max_messages = max_messages;
	d.max_bytes = max_bytes;
	d.subdomains = subdomains;
	if (queue_domain_add(q, &d, &err) != QUEUE_OK)
		fail_msg("domain add %s: %s", name, err.text);
}

/* enqueue - one message with recipients "addr" given as "user@domain" */
static enum queue_status
enqueue(struct queue *q, const char *body, size_t len, uint64_t *qid,
    const char **rcpts, size_t n)
{
	struct queue_rcpt r[16];
	struct queue_msg m;
	struct queue_error err;
	enum queue_status st;
	size_t i;

	memset(&m, 0, sizeof(m));
	memset(r, 0, sizeof(r));
	m.sender = "sender@example.net";
	m.envid = "env1";
	m.ret = QUEUE_RET_HDRS;
	m.body = QUEUE_BODY_8BITMIME;
	m.client_addr = "192.0.2.1";
	m.helo = "client.example.net";
	for (i = 0; i < n; i++) {
		r[i].addr = (char *)rcpts[i];
		r[i].notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY;
		strlcpy(r[i].domain, strchr(rcpts[i], '@') + 1,
		    sizeof(r[i].domain));
	}
	m.rcpt = r;
	m.nrcpt = n;
	st = queue_enqueue_mem(q, &m, body, len, &err);
	if (st == QUEUE_OK) {
		assert_int_equal(m.size, len);
		assert_string_not_equal(m.id, "");
		*qid = m.qid;
	}
	return st;
}

/* dom - read a domain's counters */
static struct queue_domain
dom(struct queue *q, const char *name)
{
	struct queue_domain d;
	struct queue_error err;

	assert_int_equal(queue_domain_get(q, name, &d, &err), QUEUE_OK);
	return d;
}

struct walk_acc {
	size_t	 msgs, rcpts;
	uint64_t qids[64];
	char	 addrs[64][64];
};

/* walk_fn - collect what a walk shows */
static int
walk_fn(const struct queue_msg *m, void *arg)
{
	struct walk_acc *w = arg;
	size_t i;

	if (w->msgs < 64)
		w->qids[w->msgs] = m->qid;
	w->msgs++;
	for (i = 0; i < m->nrcpt; i++) {
		if (w->rcpts < 64)
			strlcpy(w->addrs[w->rcpts], m->rcpt[i].addr, 64);
		w->rcpts++;
	}
	return 0;
}

/* walk - walk a domain into an accumulator */
static struct walk_acc
walk(struct queue *q, const char *d, unsigned flags)
{
	struct walk_acc w;
	struct queue_error err;

	memset(&w, 0, sizeof(w));
	assert_int_equal(queue_walk(q, d, flags, walk_fn, &w, &err), QUEUE_OK);
	return w;
}

/* body_acc - concatenate chunks */
static int
body_acc(const void *p, size_t n, void *arg)
{
	struct { char *buf; size_t len, cap; } *b = arg;

	if (b->len + n > b->cap)
		return -1;
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return 0;
}

/* test_open_missing - a missing store is reported, not created */
static void
test_open_missing(void **state)
{
	struct queue_opts o = { .state_dir = "/nonexistent/odmr-test" };
	struct queue_opts rel = { .state_dir = "relative/dir" };
	struct queue_error err;
	struct queue *q = NULL;

	(void)state;
	assert_int_equal(queue_open(&o, &q, &err), QUEUE_NOTFOUND);
	assert_null(q);
	assert_non_null(strstr(err.text, "no queue store"));
	assert_int_equal(queue_open(&rel, &q, &err), QUEUE_INVALID);
}

/* test_domains - add, duplicate, get, update, list, delete */
static void
test_domains(void **state)
{
	struct fx *f = *state;
	struct queue_domain d;
	struct queue_error err;
	static const struct { const char *name; enum queue_status want; } bad[] = {
		{ "", QUEUE_INVALID },
		{ "example.org.", QUEUE_INVALID },
		{ "a..b", QUEUE_INVALID },
		{ "[192.0.2.1]", QUEUE_INVALID },
		{ "nodot", QUEUE_INVALID },
	};
	size_t i;

	add_domain(f->q, "Example.ORG", 0, 0, 0, 0);
	d = dom(f->q, "example.org");
	assert_string_equal(d.name, "example.org");
	assert_string_equal(d.owners[0], "alice");
	assert_string_equal(d.route, "mx");
	assert_int_equal(d.messages, 0);
	assert_true(d.created > 0);
	queue_domain_clear(&d);
	memset(&d, 0, sizeof(d));
	strlcpy(d.name, "example.org", sizeof(d.name));
	d.owners = (char *[]){ "bob" };
	d.nowners = 1;
	assert_int_equal(queue_domain_add(f->q, &d, &err), QUEUE_EXISTS);
	assert_non_null(strstr(err.text, "already exists"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strlcpy(d.name, bad[i].name, sizeof(d.name));
		assert_int_equal(queue_domain_add(f->q, &d, &err), bad[i].want);
	}
	assert_int_equal(queue_domain_get(f->q, "other.example", &d, &err),
	    QUEUE_NOTFOUND);
	assert_int_equal(queue_domain_del(f->q, "example.org", 0, &err),
	    QUEUE_OK);
	assert_int_equal(queue_domain_del(f->q, "example.org", 0, &err),
	    QUEUE_NOTFOUND);
}

/* set_owner_bob - queue_update_fn that changes settings */
static void
set_owner_bob(struct queue_domain *d, void *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i < d->nowners; i++)
		free(d->owners[i]);
	d->owners[0] = strdup("bob");
	d->nowners = 1;
	d->etrn = QUEUE_ETRN_OWNER;
	d->messages = 12345;	/* must be ignored */
}

/* test_domain_update - settings change, counters do not */
static void
test_domain_update(void **state)
{
	struct fx *f = *state;
	struct queue_error err;
	struct queue_domain d;
	uint64_t qid;
	const char *r[] = { "u@example.org" };

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	assert_int_equal(enqueue(f->q, "x\r\n", 3, &qid, r, 1), QUEUE_OK);
	assert_int_equal(queue_domain_update(f->q, "example.org", set_owner_bob,
	    NULL, &err), QUEUE_OK);
	d = dom(f->q, "example.org");
	assert_string_equal(d.owners[0], "bob");
	assert_int_equal(d.etrn, QUEUE_ETRN_OWNER);
	assert_int_equal(d.messages, 1);
	queue_domain_clear(&d);
}

/* test_enqueue_walk - a message is durable, readable and walkable */
static void
test_enqueue_walk(void **state)
{
	struct fx *f = *state;
	const char *body = "Subject: hi\r\n\r\nhello\r\n";
	const char *r[] = { "a@example.org", "b@example.org" };
	struct { char *buf; size_t len, cap; } acc = { malloc(256), 0, 256 };
	struct queue_error err;
	struct queue_msg *m;
	struct queue_domain d;
	struct queue_stats s;
	struct walk_acc w;
	uint64_t qid, back;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	assert_int_equal(enqueue(f->q, body, strlen(body), &qid, r, 2), QUEUE_OK);
	assert_int_equal(queue_get(f->q, qid, &m, &err), QUEUE_OK);
	assert_string_equal(m->sender, "sender@example.net");
	assert_string_equal(m->envid, "env1");
	assert_int_equal(m->ret, QUEUE_RET_HDRS);
	assert_int_equal(m->body, QUEUE_BODY_8BITMIME);
	assert_int_equal(m->nrcpt, 2);
	assert_int_equal(m->rcpt[1].notify, QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY);
	assert_int_equal(m->size, strlen(body));
	assert_int_equal(queue_id_parse(m->id, &back), 0);
	assert_int_equal(back, qid);
	queue_msg_free(&m);
	assert_null(m);
	assert_int_equal(queue_body_read(f->q, qid, body_acc, &acc, &err), QUEUE_OK);
	assert_int_equal(acc.len, strlen(body));
	assert_memory_equal(acc.buf, body, acc.len);
	free(acc.buf);
	w = walk(f->q, "example.org", 0);
	assert_int_equal(w.msgs, 1);
	assert_int_equal(w.rcpts, 2);
	d = dom(f->q, "example.org");
	assert_int_equal(d.messages, 1);
	assert_int_equal(d.bytes, strlen(body));
	assert_true(d.oldest > 0);
	assert_int_equal(d.next_expiry, d.oldest + 3600);
	queue_domain_clear(&d);
	assert_int_equal(queue_stats(f->q, &s, &err), QUEUE_OK);
	assert_int_equal(s.messages, 1);
	assert_int_equal(s.recipients, 2);
	assert_int_equal(s.enqueued, 1);
	assert_int_equal(s.domains, 1);
	assert_int_equal(queue_get(f->q, qid + 1, &m, &err), QUEUE_NOTFOUND);
}

/* test_unknown_domain - enqueue for a non-customer domain is refused */
static void
test_unknown_domain(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a@example.org", "b@stranger.example" };
	uint64_t qid;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	assert_int_equal(enqueue(f->q, "x", 1, &qid, r, 2), QUEUE_NOTFOUND);
	assert_int_equal(walk(f->q, "example.org", 0).msgs, 0);
}

/* test_multi_domain - stored once, each domain sees only its own */
static void
test_multi_domain(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a1@a.example", "b1@b.example", "a2@a.example" };
	struct queue_outcome o[2];
	struct queue_error err;
	struct queue_stats s;
	struct queue_domain d;
	struct walk_acc w;
	struct queue_msg *m;
	uint64_t qid;

	add_domain(f->q, "a.example", 0, 0, 0, 0);
	add_domain(f->q, "b.example", 0, 0, 0, 0);
	assert_int_equal(enqueue(f->q, "body", 4, &qid, r, 3), QUEUE_OK);
	w = walk(f->q, "a.example", 0);
	assert_int_equal(w.rcpts, 2);
	assert_string_equal(w.addrs[0], "a1@a.example");
	assert_string_equal(w.addrs[1], "a2@a.example");
	w = walk(f->q, "b.example", 0);
	assert_int_equal(w.rcpts, 1);
	assert_string_equal(w.addrs[0], "b1@b.example");
	assert_int_equal(queue_stats(f->q, &s, &err), QUEUE_OK);
	assert_int_equal(s.messages, 1);	/* stored once */
	assert_int_equal(s.bytes, 4);
	/* a.example delivers both: b.example still has it */
	o[0] = (struct queue_outcome){ qid, 0, QUEUE_OUTCOME_DELIVERED, "250 ok" };
	o[1] = (struct queue_outcome){ qid, 2, QUEUE_OUTCOME_DELIVERED, "250 ok" };
	assert_int_equal(queue_record(f->q, o, 2, &err), QUEUE_OK);
	assert_int_equal(walk(f->q, "a.example", 0).msgs, 0);
	assert_int_equal(walk(f->q, "b.example", 0).msgs, 1);
	d = dom(f->q, "a.example");
	assert_int_equal(d.messages, 0);
	assert_int_equal(d.bytes, 0);
	queue_domain_clear(&d);
	d = dom(f->q, "b.example");
	assert_int_equal(d.messages, 1);
	queue_domain_clear(&d);
	assert_consistent(f->q);
	o[0] = (struct queue_outcome){ qid, 1, QUEUE_OUTCOME_DELIVERED, "250 ok" };
	assert_int_equal(queue_record(f->q, o, 1, &err), QUEUE_OK);
	assert_int_equal(queue_get(f->q, qid, &m, &err), QUEUE_NOTFOUND);
	assert_int_equal(queue_stats(f->q, &s, &err), QUEUE_OK);
	assert_int_equal(s.messages, 0);
	assert_int_equal(s.bytes, 0);
	assert_int_equal(s.recipients, 0);
	assert_int_equal(s.delivered, 3);
}

/* test_partial_delivery - 2xx, 4xx and 5xx on one message */
static void
test_partial_delivery(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a@example.org", "b@example.org", "c@example.org" };
	struct queue_outcome o[3];
	struct queue_error err;
	struct queue_msg *m;
	struct queue_domain d;
	struct queue_stats s;
	uint64_t qid;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	assert_int_equal(enqueue(f->q, "12345", 5, &qid, r, 3), QUEUE_OK);
	o[0] = (struct queue_outcome){ qid, 0, QUEUE_OUTCOME_DELIVERED, "250 2.0.0 ok" };
	o[1] = (struct queue_outcome){ qid, 1, QUEUE_OUTCOME_DEFERRED, "450 4.2.1 busy" };
	o[2] = (struct queue_outcome){ qid, 2, QUEUE_OUTCOME_FAILED, "550 5.1.1 unknown" };
	assert_int_equal(queue_record(f->q, o, 3, &err), QUEUE_OK);
	/* recording the same outcomes again changes nothing */
	assert_int_equal(queue_record(f->q, o, 1, &err), QUEUE_OK);
	assert_int_equal(queue_get(f->q, qid, &m, &err), QUEUE_OK);
	assert_int_equal(m->rcpt[0].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(m->rcpt[1].state, QUEUE_RCPT_QUEUED);
	assert_int_equal(m->rcpt[1].attempts, 1);
	assert_string_equal(m->rcpt[1].last_error, "450 4.2.1 busy");
	assert_int_equal(m->rcpt[2].state, QUEUE_RCPT_FAILED);
	assert_string_equal(m->rcpt[2].last_error, "550 5.1.1 unknown");
	queue_msg_free(&m);
	d = dom(f->q, "example.org");
	assert_int_equal(d.messages, 1);
	assert_int_equal(d.bytes, 5);
	queue_domain_clear(&d);
	assert_int_equal(walk(f->q, "example.org", 0).rcpts, 1);
	assert_int_equal(queue_stats(f->q, &s, &err), QUEUE_OK);
	assert_int_equal(s.recipients, 1);
	assert_int_equal(s.deferred, 1);
	assert_int_equal(s.failed, 1);
	assert_consistent(f->q);
	o[0] = (struct queue_outcome){ qid, 1, QUEUE_OUTCOME_DELIVERED, NULL };
	assert_int_equal(queue_record(f->q, o, 1, &err), QUEUE_OK);
	d = dom(f->q, "example.org");
	assert_int_equal(d.messages, 0);
	assert_int_equal(d.bytes, 0);
	queue_domain_clear(&d);
}

/* test_claims - exclusive, expiring, broken when the holder died */
static void
test_claims(void **state)
{
	struct fx *f = *state;
	char busy[QUEUE_HOLDER_MAX];
	struct queue_error err;
	struct queue_domain d;
	pid_t pid;
	int status;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	assert_int_equal(queue_claim(f->q, "example.org", "s1", 60, busy, &err),
	    QUEUE_OK);
	assert_int_equal(queue_claim(f->q, "example.org", "s2", 60, busy, &err),
	    QUEUE_BUSY);
	assert_string_equal(busy, "s1");
	assert_int_equal(queue_unclaim(f->q, "example.org", "s2", 1, &err),
	    QUEUE_NOTFOUND);
	assert_int_equal(queue_unclaim(f->q, "example.org", "s1", 1, &err),
	    QUEUE_OK);
	d = dom(f->q, "example.org");
	assert_null(d.claim_holder);
	assert_true(d.last_pickup > 0);
	queue_domain_clear(&d);
	/* an expired claim is broken */
	assert_int_equal(queue_claim(f->q, "example.org", "s3", 1, busy, &err),
	    QUEUE_OK);
	sleep(2);
	assert_int_equal(queue_claim(f->q, "example.org", "s4", 60, busy, &err),
	    QUEUE_OK);
	assert_int_equal(queue_unclaim(f->q, "example.org", "s4", 0, &err),
	    QUEUE_OK);
	/* a claim whose holder process is gone is broken */
	queue_close(&f->q);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fx c = *f;

		fx_open(&c);
		_exit(queue_claim(c.q, "example.org", "dead", 3600, NULL,
		    NULL) == QUEUE_OK ? 0 : 1);	/* exits without unclaim */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fx_open(f);
	assert_int_equal(queue_claim(f->q, "example.org", "alive", 60, busy,
	    &err), QUEUE_OK);
	assert_int_equal(queue_claim(f->q, "nosuch.example", "x", 60, busy,
	    &err), QUEUE_NOTFOUND);
}

struct exp_acc {
	size_t	 n;
	uint64_t exp[16];
	char	 dom[16][64];
};

/* exp_fn - collect expiry entries */
static int
exp_fn(uint64_t qid, const char *domain, uint64_t expiry, void *arg)
{
	struct exp_acc *e = arg;

	(void)qid;
	if (e->n < 16) {
		e->exp[e->n] = expiry;
		strlcpy(e->dom[e->n], domain, 64);
	}
	e->n++;
	return 0;
}

/* test_expiry_order - scanned in expiry order, only what has expired */
static void
test_expiry_order(void **state)
{
	struct fx *f = *state;
	const char *rl[] = { "x@long.example" }, *rs[] = { "x@short.example" };
	const char *rd[] = { "x@default.example" };
	struct queue_error err;
	struct exp_acc e;
	uint64_t qid, now = (uint64_t)time(NULL);

	add_domain(f->q, "long.example", 86400, 0, 0, 0);
	add_domain(f->q, "short.example", 10, 0, 0, 0);
	add_domain(f->q, "default.example", 0, 0, 0, 0);	/* 3600 */
	assert_int_equal(enqueue(f->q, "a", 1, &qid, rl, 1), QUEUE_OK);
	assert_int_equal(enqueue(f->q, "b", 1, &qid, rd, 1), QUEUE_OK);
	assert_int_equal(enqueue(f->q, "c", 1, &qid, rs, 1), QUEUE_OK);
	assert_int_equal(enqueue(f->q, "d", 1, &qid, rs, 1), QUEUE_OK);
	memset(&e, 0, sizeof(e));
	assert_int_equal(queue_expire_scan(f->q, now, 0, exp_fn, &e, &err),
	    QUEUE_OK);
	assert_int_equal(e.n, 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(queue_expire_scan(f->q, now + 4000, 0, exp_fn, &e,
	    &err), QUEUE_OK);
	assert_int_equal(e.n, 3);
	assert_string_equal(e.dom[0], "short.example");
	assert_string_equal(e.dom[1], "short.example");
	assert_string_equal(e.dom[2], "default.example");
	assert_true(e.exp[0] <= e.exp[1] && e.exp[1] <= e.exp[2]);
	memset(&e, 0, sizeof(e));
	assert_int_equal(queue_expire_scan(f->q, now + 4000, 2, exp_fn, &e,
	    &err), QUEUE_OK);
	assert_int_equal(e.n, 2);
}

/* test_hold_release_delete - by message and by domain */
static void
test_hold_release_delete(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a@example.org", "b@other.example" };
	struct queue_error err;
	struct queue_domain d;
	uint64_t q1, q2, n;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	add_domain(f->q, "other.example", 0, 0, 0, 0);
	assert_int_equal(enqueue(f->q, "1", 1, &q1, r, 2), QUEUE_OK);
	assert_int_equal(enqueue(f->q, "22", 2, &q2, r, 1), QUEUE_OK);
	assert_int_equal(queue_msg_op(f->q, QUEUE_OP_HOLD, q1, NULL, &err),
	    QUEUE_OK);
	assert_int_equal(walk(f->q, "example.org", QUEUE_WALK_DELIVERABLE).msgs, 1);
	assert_int_equal(walk(f->q, "example.org", 0).msgs, 2);
	assert_int_equal(queue_msg_op(f->q, QUEUE_OP_HOLD, q1, NULL, &err),
	    QUEUE_NOTFOUND);	/* nothing left to hold */
	assert_int_equal(queue_msg_op(f->q, QUEUE_OP_RELEASE, q1, NULL, &err),
	    QUEUE_OK);
	assert_int_equal(walk(f->q, "example.org", QUEUE_WALK_DELIVERABLE).msgs, 2);
	/* delete q1 in one domain only */
	assert_int_equal(queue_msg_op(f->q, QUEUE_OP_DELETE, q1, "example.org",
	    &err), QUEUE_OK);
	assert_int_equal(walk(f->q, "example.org", 0).msgs, 1);
	assert_int_equal(walk(f->q, "other.example", 0).msgs, 1);
	assert_consistent(f->q);
	assert_int_equal(queue_domain_op(f->q, QUEUE_OP_HOLD, "example.org", &n,
	    &err), QUEUE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(queue_domain_op(f->q, QUEUE_OP_DELETE, "example.org",
	    &n, &err), QUEUE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(queue_domain_op(f->q, QUEUE_OP_DELETE, "example.org",
	    &n, &err), QUEUE_NOTFOUND);
	d = dom(f->q, "example.org");
	assert_int_equal(d.messages, 0);
	queue_domain_clear(&d);
	assert_int_equal(queue_msg_op(f->q, QUEUE_OP_DELETE, q1, NULL, &err),
	    QUEUE_OK);
	assert_int_equal(queue_msg_op(f->q, QUEUE_OP_DELETE, q1, NULL, &err),
	    QUEUE_NOTFOUND);
}

/* test_limits - per-domain message and byte quotas */
static void
test_limits(void **state)
{
	struct fx *f = *state;
	const char *rm[] = { "a@msgs.example" }, *rb[] = { "a@bytes.example" };
	struct queue_error err;
	uint64_t qid;

	add_domain(f->q, "msgs.example", 0, 2, 0, 0);
	add_domain(f->q, "bytes.example", 0, 0, 10, 0);
	assert_int_equal(enqueue(f->q, "1", 1, &qid, rm, 1), QUEUE_OK);
	assert_int_equal(enqueue(f->q, "2", 1, &qid, rm, 1), QUEUE_OK);
	assert_int_equal(enqueue(f->q, "3", 1, &qid, rm, 1), QUEUE_LIMIT);
	assert_int_equal(enqueue(f->q, "123456", 6, &qid, rb, 1), QUEUE_OK);
	assert_int_equal(enqueue(f->q, "123456", 6, &qid, rb, 1), QUEUE_LIMIT);
	assert_int_equal(enqueue(f->q, "1234", 4, &qid, rb, 1), QUEUE_OK);
	(void)err;
}

struct pattern {
	uint64_t size;
};

/* pattern_read - a reproducible 50 MB body without holding it in memory */
static ssize_t
pattern_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct pattern *p = ctx;
	unsigned char *b = buf;
	size_t i;

	if (off >= p->size)
		return 0;
	if (len > p->size - off)
		len = (size_t)(p->size - off);
	for (i = 0; i < len; i++)
		b[i] = (unsigned char)((off + i) * 2654435761u >> 13);
	return (ssize_t)len;
}

struct pattern_check {
	uint64_t off;
	int	 bad;
};

/* pattern_check_fn - compare streamed chunks with the pattern */
static int
pattern_check_fn(const void *data, size_t n, void *arg)
{
	struct pattern_check *c = arg;
	const unsigned char *b = data;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != (unsigned char)((c->off + i) * 2654435761u >> 13))
			c->bad++;
	c->off += n;
	return 0;
}

/* test_huge_and_empty - a 50 MB body and an empty one */
static void
test_huge_and_empty(void **state)
{
	struct fx *f = *state;
	struct pattern p = { 50ULL * 1024 * 1024 };
	struct pattern_check pc = { 0, 0 };
	struct queue_rcpt r;
	struct queue_msg m;
	struct queue_error err;
	struct queue_domain d;
	const char *re[] = { "e@example.org" };
	uint64_t qid, empty;
	struct { char *buf; size_t len, cap; } acc = { malloc(16), 0, 16 };

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	m.sender = "";
	r.addr = "big@example.org";
	strlcpy(r.domain, "example.org", sizeof(r.domain));
	m.rcpt = &r;
	m.nrcpt = 1;
	assert_int_equal(queue_enqueue(f->q, &m, pattern_read, &p, &err), QUEUE_OK);
	assert_int_equal(m.size, p.size);
	qid = m.qid;
	assert_int_equal(queue_body_read(f->q, qid, pattern_check_fn, &pc, &err),
	    QUEUE_OK);
	assert_int_equal(pc.off, p.size);
	assert_int_equal(pc.bad, 0);
	assert_int_equal(enqueue(f->q, "", 0, &empty, re, 1), QUEUE_OK);
	assert_int_equal(queue_body_read(f->q, empty, body_acc, &acc, &err),
	    QUEUE_OK);
	assert_int_equal(acc.len, 0);
	free(acc.buf);
	d = dom(f->q, "example.org");
	assert_int_equal(d.messages, 2);
	assert_int_equal(d.bytes, p.size);
	queue_domain_clear(&d);
	assert_consistent(f->q);
	assert_int_equal(queue_msg_op(f->q, QUEUE_OP_DELETE, qid, NULL, &err),
	    QUEUE_OK);
	d = dom(f->q, "example.org");
	assert_int_equal(d.messages, 1);
	assert_int_equal(d.bytes, 0);
	queue_domain_clear(&d);
}

/* test_domain_match - exact, subdomains, and never a stranger */
static void
test_domain_match(void **state)
{
	struct fx *f = *state;
	static const struct { const char *in; enum queue_status st;
	    const char *out; } t[] = {
		{ "example.org", QUEUE_OK, "example.org" },
		{ "EXAMPLE.org", QUEUE_OK, "example.org" },
		{ "mail.example.org", QUEUE_NOTFOUND, NULL },
		{ "sub.example.com", QUEUE_OK, "example.com" },
		{ "a.b.example.com", QUEUE_OK, "example.com" },
		{ "example.com", QUEUE_OK, "example.com" },
		{ "com", QUEUE_INVALID, NULL },
		{ "evil.example", QUEUE_NOTFOUND, NULL },
		{ "example.org.", QUEUE_INVALID, NULL },
		{ "[127.0.0.1]", QUEUE_INVALID, NULL },
	};
	char out[DNAME_MAX + 1];
	struct queue_error err;
	size_t i;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	add_domain(f->q, "example.com", 0, 0, 0, 1);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(queue_domain_match(f->q, t[i].in, out, &err),
		    t[i].st);
		if (t[i].out)
			assert_string_equal(out, t[i].out);
	}
}

/* test_domain_del_force - a domain with mail needs --force */
static void
test_domain_del_force(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a@example.org", "b@keep.example" };
	struct queue_error err;
	uint64_t qid;
	int i;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	add_domain(f->q, "keep.example", 0, 0, 0, 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(enqueue(f->q, "x", 1, &qid, r, 2), QUEUE_OK);
	assert_int_equal(queue_domain_del(f->q, "example.org", 0, &err),
	    QUEUE_BUSY);
	assert_non_null(strstr(err.text, "--force"));
	assert_int_equal(queue_domain_del(f->q, "example.org", 1, &err),
	    QUEUE_OK);
	assert_int_equal(walk(f->q, "keep.example", 0).msgs, 3);
}

/* test_ids - printed ids round-trip and reject junk */
static void
test_ids(void **state)
{
	static const char *bad[] = { "", "123", "GGGGGGGGGGGGGG",
	    "0123456789ABCDE", "0123456789ABC" };
	char id[QUEUE_ID_LEN + 1];
	uint64_t v;
	size_t i;

	(void)state;
	queue_id_format(0x69293A1F000123ULL, id);
	assert_string_equal(id, "69293A1F000123");
	assert_int_equal(queue_id_parse("69293a1f000123", &v), 0);
	assert_int_equal(v, 0x69293A1F000123ULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(queue_id_parse(bad[i], &v), -1);
}

/* test_reserved_id - a reserved id names the message; it cannot repeat */
static void
test_reserved_id(void **state)
{
	struct fx *f = *state;
	struct queue_rcpt r;
	struct queue_msg m, *got;
	struct queue_domain d;
	struct queue_error err;
	uint64_t a, b;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	assert_int_equal(queue_id_reserve(f->q, 2, &a, &err), QUEUE_OK);
	b = queue_id_make((uint64_t)time(NULL), a + 1);
	a = queue_id_make((uint64_t)time(NULL), a);
	assert_true(a != b && a != 0 && b != 0);
	assert_int_equal(queue_id_reserve(f->q, 0, &a, &err), QUEUE_INVALID);
	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	m.sender = "s@example.net";
	r.addr = "u@example.org";
	strlcpy(r.domain, "example.org", sizeof(r.domain));
	m.rcpt = &r;
	m.nrcpt = 1;
	m.reserved_qid = b;
	assert_int_equal(queue_enqueue_mem(f->q, &m, "x\r\n", 3, &err),
	    QUEUE_OK);
	assert_true(m.qid == b);
	assert_true(m.arrival == b >> 24);
	assert_int_equal(queue_get(f->q, b, &got, &err), QUEUE_OK);
	queue_msg_free(&got);
	/* the same id twice is an error for that message only */
	assert_int_not_equal(queue_enqueue_mem(f->q, &m, "y\r\n", 3, &err),
	    QUEUE_OK);
	d = dom(f->q, "example.org");
	assert_int_equal(d.messages, 1);
	queue_domain_clear(&d);
	/* an id reserved and never used is just skipped */
	m.reserved_qid = 0;
	assert_int_equal(queue_enqueue_mem(f->q, &m, "z\r\n", 3, &err),
	    QUEUE_OK);
	assert_true(m.qid != a && m.qid != b);
}

/* test_reopen - everything survives close and reopen */
static void
test_reopen(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a@example.org" };
	struct queue_error err;
	struct queue_msg *m;
	uint64_t qid;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	assert_int_equal(enqueue(f->q, "persist", 7, &qid, r, 1), QUEUE_OK);
	queue_close(&f->q);
	fx_open(f);
	assert_int_equal(queue_get(f->q, qid, &m, &err), QUEUE_OK);
	assert_int_equal(m->size, 7);
	queue_msg_free(&m);
	assert_int_equal(queue_maintain(f->q, &err), QUEUE_OK);
}

/* count_logs - log files in the environment directory */
static int
count_logs(const char *dir)
{
	char path[128];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/queue", dir);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "log.", 4) == 0)
			n++;
	closedir(d);
	return n;
}

/* test_log_removal - checkpoints let old log files go */
static void
test_log_removal(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a@example.org" };
	struct queue_error err;
	size_t len = 1024 * 1024;
	char *body = malloc(len);
	uint64_t qid, n;
	int i, before;

	memset(body, 'x', len);
	add_domain(f->q, "example.org", 0, 0, 0, 0);
	for (i = 0; i < 80; i++)
		assert_int_equal(enqueue(f->q, body, len, &qid, r, 1), QUEUE_OK);
	free(body);
	before = count_logs(f->dir);
	assert_true(before >= 2);
	assert_int_equal(queue_domain_op(f->q, QUEUE_OP_DELETE, "example.org",
	    &n, &err), QUEUE_OK);
	assert_int_equal(n, 80);
	assert_int_equal(queue_maintain(f->q, &err), QUEUE_OK);
	assert_int_equal(queue_maintain(f->q, &err), QUEUE_OK);
	assert_true(count_logs(f->dir) < before);
	assert_true(count_logs(f->dir) <= 2);
}

/* count_fn - count walked messages */
static int
count_fn(const struct queue_msg *m, void *arg)
{
	(void)m;
	(*(size_t *)arg)++;
	return 0;
}

/* count_dom_fn - count listed domains */
static int
count_dom_fn(const struct queue_domain *d, void *arg)
{
	(void)d;
	(*(size_t *)arg)++;
	return 0;
}

/* test_batches - walks, lists, scans and domain ops cross batch edges */
static void
test_batches(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a@many.example" };
	struct queue_error err;
	struct exp_acc e;
	char name[64];
	size_t n = 0, i;
	uint64_t qid, cnt;

	add_domain(f->q, "many.example", 0, 0, 0, 0);
	for (i = 0; i < 600; i++) {
		snprintf(name, sizeof(name), "d%03zu.example", i);
		add_domain(f->q, name, 0, 0, 0, 0);
	}
	for (i = 0; i < 700; i++)
		assert_int_equal(enqueue(f->q, "x", 1, &qid, r, 1), QUEUE_OK);
	assert_int_equal(queue_walk(f->q, "many.example", 0, count_fn, &n,
	    &err), QUEUE_OK);
	assert_int_equal(n, 700);
	n = 0;
	assert_int_equal(queue_domain_list(f->q, count_dom_fn, &n, &err),
	    QUEUE_OK);
	assert_int_equal(n, 601);
	memset(&e, 0, sizeof(e));
	assert_int_equal(queue_expire_scan(f->q, (uint64_t)time(NULL) + 7200,
	    0, exp_fn, &e, &err), QUEUE_OK);
	assert_int_equal(e.n, 700);
	memset(&e, 0, sizeof(e));
	assert_int_equal(queue_expire_scan(f->q, (uint64_t)time(NULL) + 7200,
	    300, exp_fn, &e, &err), QUEUE_OK);
	assert_int_equal(e.n, 300);
	assert_int_equal(queue_domain_op(f->q, QUEUE_OP_HOLD, "many.example",
	    &cnt, &err), QUEUE_OK);
	assert_int_equal(cnt, 700);
	n = 0;
	assert_int_equal(queue_walk(f->q, "many.example", QUEUE_WALK_DELIVERABLE,
	    count_fn, &n, &err), QUEUE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(queue_domain_op(f->q, QUEUE_OP_DELETE, "many.example",
	    &cnt, &err), QUEUE_OK);
	assert_int_equal(cnt, 700);
}

struct gc_thread {
	struct queue	*q;
	const char	*rcpt;
	int		 ok, limit, notfound, other;
};

/* gc_worker - enqueue 50 messages from one thread */
static void *
gc_worker(void *arg)
{
	struct gc_thread *w = arg;
	const char *r[] = { w->rcpt };
	uint64_t qid;
	int i;

	for (i = 0; i < 50; i++)
		switch (enqueue(w->q, "body\r\n", 6, &qid, r, 1)) {
		case QUEUE_OK: w->ok++; break;
		case QUEUE_LIMIT: w->limit++; break;
		case QUEUE_NOTFOUND: w->notfound++; break;
		default: w->other++; break;
		}
	return NULL;
}

/* test_group_commit - concurrent enqueues share commits, fail alone */
static void
test_group_commit(void **state)
{
	struct fx *f = *state;
	static const char *rcpts[] = { "a@ok.example", "b@quota.example",
	    "c@nosuch.example", "d@ok.example", "e@quota.example",
	    "f@ok.example", "g@quota.example", "h@ok.example" };
	struct gc_thread w[8];
	pthread_t th[8];
	struct queue_domain d;
	int i, ok = 0, limit = 0, notfound = 0, other = 0;

	add_domain(f->q, "ok.example", 0, 0, 0, 0);
	add_domain(f->q, "quota.example", 0, 20, 0, 0);
	for (i = 0; i < 8; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].q = f->q;
		w[i].rcpt = rcpts[i];
		assert_int_equal(pthread_create(&th[i], NULL, gc_worker, &w[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
		limit += w[i].limit;
		notfound += w[i].notfound;
		other += w[i].other;
	}
	assert_int_equal(other, 0);
	assert_int_equal(notfound, 50);		/* nosuch.example, alone */
	assert_int_equal(ok, 200 + 20);		/* ok.example, and the quota */
	assert_int_equal(limit, 150 - 20);
	d = dom(f->q, "quota.example");
	assert_int_equal(d.messages, 20);
	queue_domain_clear(&d);
	d = dom(f->q, "ok.example");
	assert_int_equal(d.messages, 200);
	queue_domain_clear(&d);
}

/* test_survive_recovery - a process killed elsewhere makes the next
 * opener run recovery; a handle that stayed open must reopen and go on */
static void
test_survive_recovery(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a@example.org" };
	pid_t pid;
	int status, i;
	uint64_t qid;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	assert_int_equal(enqueue(f->q, "one", 3, &qid, r, 1), QUEUE_OK);
	for (i = 0; i < 2; i++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct fx c = *f;

			c.q = NULL;
			fx_open(&c);
			if (enqueue(c.q, "two", 3, &qid, r, 1) != QUEUE_OK)
				_exit(1);
			if (i == 0)
				kill(getpid(), SIGKILL);	/* dies registered */
			queue_close(&c.q);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (i == 0)
			assert_true(WIFSIGNALED(status));
		else
			assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* the second child ran recovery under our open handle */
	assert_int_equal(enqueue(f->q, "three", 5, &qid, r, 1), QUEUE_OK);
	assert_int_equal(walk(f->q, "example.org", 0).msgs, 4);
}

/* test_rec_versions - version 1 records (before retry, delay_warned) read */
static void
test_rec_versions(void **state)
{
	struct queue_domain d, back;
	struct queue_msg m, mback;
	struct queue_rcpt r;
	char *owners[] = { (char *)"alice" };
	struct buf b;

	(void)state;
	memset(&d, 0, sizeof(d));
	(void)strlcpy(d.name, "example.org", sizeof(d.name));
	d.owners = owners;
	d.nowners = 1;
	d.route = (char *)"mx";
	d.retry = 600;
	buf_init(&b);
	queue_rec_dom_encode(&b, &d);
	assert_int_equal(queue_rec_dom_decode(b.data, b.len, &back), 0);
	assert_int_equal(back.retry, 600);
	queue_domain_clear(&back);
	/* version 1: the same bytes without the trailing u64 retry */
	((unsigned char *)b.data)[0] = 1;
	assert_int_equal(queue_rec_dom_decode(b.data, b.len - 8, &back), 0);
	assert_int_equal(back.retry, 0);
	assert_string_equal(back.name, "example.org");
	queue_domain_clear(&back);
	/* a version 1 record with the new field is refused */
	assert_int_equal(queue_rec_dom_decode(b.data, b.len, &back), -1);
	buf_release(&b);

	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	r.addr = (char *)"u@example.org";
	(void)strlcpy(r.domain, "example.org", sizeof(r.domain));
	m.qid = 42;
	m.sender = (char *)"s@x.test";
	m.nrcpt = 1;
	m.rcpt = &r;
	m.delay_warned = 12345;
	queue_rec_msg_encode(&b, &m);
	assert_int_equal(queue_rec_msg_decode(b.data, b.len, &mback), 0);
	assert_int_equal(mback.delay_warned, 12345);
	queue_msg_clear(&mback);
	((unsigned char *)b.data)[0] = 1;
	assert_int_equal(queue_rec_msg_decode(b.data, b.len - 8, &mback), 0);
	assert_int_equal(mback.delay_warned, 0);
	assert_string_equal(mback.rcpt[0].addr, "u@example.org");
	queue_msg_clear(&mback);
	buf_release(&b);
}

/* test_warned - QUEUE_OUTCOME_WARNED marks the message, nothing else */
static void
test_warned(void **state)
{
	struct fx *f = *state;
	const char *r[] = { "a@example.org" };
	struct queue_outcome o;
	struct queue_msg *m = NULL;
	uint64_t qid;

	add_domain(f->q, "example.org", 0, 0, 0, 0);
	assert_int_equal(enqueue(f->q, "late", 4, &qid, r, 1), QUEUE_OK);
	memset(&o, 0, sizeof(o));
	o.qid = qid;
	o.rcpt_index = 0;
	o.kind = QUEUE_OUTCOME_WARNED;
	assert_int_equal(queue_record(f->q, &o, 1, NULL), QUEUE_OK);
	assert_int_equal(queue_get(f->q, qid, &m, NULL), QUEUE_OK);
	assert_true(m->delay_warned != 0);
	assert_int_equal(m->rcpt[0].state, QUEUE_RCPT_QUEUED);
	assert_int_equal(m->rcpt[0].attempts, 0);
	queue_msg_free(&m);
	assert_int_equal(walk(f->q, "example.org", 0).msgs, 1);
	assert_consistent(f->q);
}

/* main - run the table of store tests */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_missing),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_rec_versions),
		cmocka_unit_test_setup_teardown(test_warned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enqueue_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_domain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_domain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claims, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_release_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_del_force, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserved_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_removal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survive_recovery, setup, teardown),
	};

	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
