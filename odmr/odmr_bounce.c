/*
 * NAME
 *	odmr_bounce 3 - the daemon's DSN delivery and expiry scan
 * SYNOPSIS
 *	#include "odmr_bounce.h"
 *
 *	struct odmr_bounce *odmr_bounce_new(struct odmrd *d);
 *	void odmr_bounce_kick(struct odmr_bounce *b);
 *	void odmr_bounce_shutdown(struct odmr_bounce *b);
 *	int odmr_bounce_busy(const struct odmr_bounce *b);
 *	void odmr_bounce_free(struct odmr_bounce **bp);
 * DESCRIPTION
 *	A round runs at start-up, every bounce_interval, and soon after
 *	odmr_bounce_kick() (a delivery failed a recipient). Its steps
 *	(enum odmr_bounce_state: expire covers the first three):
 *	- expire: on the deliver pool, queue_expire_scan() lists the
 *	  messages whose lifetime is over (the domain's --lifetime, else
 *	  queue_lifetime). Each gets a failure DSN for its recipients
 *	  still queued or held in that domain (status 4.4.7, RFC 3463),
 *	  then those recipients are recorded failed. The scan reads only
 *	  what expired, whatever the size of the store. A domain being
 *	  delivered is left for the next round;
 *	- delay: with delay_warning set, at most every delay_warning/10 (and
 *	  every ODMR_BOUNCE_DELAY_EVERY seconds at least), each customer
 *	  domain's queue is
 *	  walked in arrival order up to the first message younger than
 *	  delay_warning; an older message not yet reported gets a delay
 *	  DSN (RFC 3464 "delayed", 4.4.1, Will-Retry-Until its expiry)
 *	  as NOTIFY allows, and is marked (QUEUE_OUTCOME_WARNED) so that
 *	  it is reported once;
 *	- list: the DSN domain (turn_bounce(3)) is walked for the
 *	  destinations of its queued DSNs;
 *	- deliver: with bounce_relay set, one turn_flush(3) to it delivers
 *	  every DSN; otherwise one turn_flush per destination domain, one
 *	  after the other, each to that domain's MX (RFC 5321 section
 *	  5.1). A DSN that cannot be delivered stays queued and is tried
 *	  again next round, until its own lifetime is over: then it fails,
 *	  and the report goes to the postmaster (a double bounce).
 *	odmr_bounce_shutdown() stops the timer and lets the delivery in
 *	progress QUIT after its message; odmr_bounce_busy() tells whether
 *	a round still runs.
 * DIAGNOSTICS
 *	event=expired (id, domain, rcpts), event=delayed, event=dsn-queued,
 *	event=dsn-lost,
 *	event=bounce-round (expired, destinations); the deliveries log as
 *	turn_flush(3) does.
 * SEE ALSO
 *	turn_bounce(3), turn_dsn(3), turn_flush(3), odmrd.conf(5)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "log.h"
#include "loop.h"
#include "work.h"
#include "xmalloc.h"

#include "odmr_bounce.h"
#include "odmrd.h"
#include "queue.h"
#include "turn_bounce.h"
#include "turn_flush.h"

#define ODMR_BOUNCE_EXPIRE_MAX	1000	/* expired messages per round */
#define ODMR_BOUNCE_DESTS_MAX	100	/* destination domains per round */
#define ODMR_BOUNCE_KICK_MS	500	/* a kick starts a round this soon */
#define ODMR_BOUNCE_CLAIM_TTL	(2 * 60 * 60)
#define ODMR_BOUNCE_LOG_MAX	64	/* expiry lines kept for the log */
#define ODMR_BOUNCE_DELAY_EVERY	600	/* s: the delay scan at most this
					   seldom (or delay_warning/10) */

enum odmr_bounce_state {
	ODMR_BOUNCE_STATE_IDLE = 0,
	ODMR_BOUNCE_STATE_EXPIRE,	/* scan and list, on the pool */
	ODMR_BOUNCE_STATE_DELIVER,
	ODMR_BOUNCE_STATE_COUNT
};

static const char *const odmr_bounce_state_names[ODMR_BOUNCE_STATE_COUNT] = {
	[ODMR_BOUNCE_STATE_IDLE] = "idle",
	[ODMR_BOUNCE_STATE_EXPIRE] = "expire",
	[ODMR_BOUNCE_STATE_DELIVER] = "deliver",
};

struct odmr_bounce_expired {
	uint64_t	 qid;
	char		 domain[DNAME_MAX + 1];
	uint64_t	 lifetime;	/* delay: the domain's */
	uint64_t	 arrival;
};

/* a customer domain, for the delay scan */
struct odmr_bounce_dom {
	char		 name[DNAME_MAX + 1];
	uint64_t	 lifetime;
};

struct odmr_bounce {
	struct odmrd	*d;
	struct loop_timer *timer;
	enum odmr_bounce_state state;
	int		 again;		/* kicked during a round */
	int		 shutdown;
	char		 id[ODMR_BOUNCE_ID_MAX];
	/* the round, filled on the pool */
	uint64_t	 now;
	uint64_t	 lifetime;	/* queue_lifetime */
	char		*postmaster;
	char		*hostname;
	struct odmr_bounce_expired *exp;
	size_t		 nexp;
	uint64_t	 delay_warning;	/* 0: off */
	uint64_t	 delay_scanned;	/* when the delay scan last ran */
	struct odmr_bounce_dom *doms;
	size_t		 ndoms;
	struct odmr_bounce_expired *late;	/* due a delay DSN */
	size_t		 nlate;
	const char	*walking;	/* the domain the delay walk reads */
	uint64_t	 walking_life;
	unsigned	 warned;
	unsigned	 expired;	/* messages given a failure */
	unsigned	 dsn_queued;
	unsigned	 dsn_lost;
	char		 lines[ODMR_BOUNCE_LOG_MAX][256];	/* for the log */
	size_t		 nlines;
	char		 dests[ODMR_BOUNCE_DESTS_MAX][DNAME_MAX + 1];
	size_t		 ndests, next;
	int		 any_dsn;
	struct queue_error err;
	enum queue_status status;
	struct turn_flush *flush;
};

static void odmr_bounce_next(struct odmr_bounce *);

/* odmr_bounce_enter_state - change state and log the transition */
static void
odmr_bounce_enter_state(struct odmr_bounce *b, enum odmr_bounce_state st)
{
	if (b->state != st)
		log_debug("session=%s event=bounce-state from=%s to=%s", b->id,
		    odmr_bounce_state_names[b->state],
		    odmr_bounce_state_names[st]);
	b->state = st;
}

/* odmr_bounce_note - keep one line for the loop to log */
static void
odmr_bounce_note(struct odmr_bounce *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* odmr_bounce_note - keep one line for the loop to log */
static void
odmr_bounce_note(struct odmr_bounce *b, const char *fmt, ...)
{
	va_list ap;

	if (b->nlines == ODMR_BOUNCE_LOG_MAX)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(b->lines[b->nlines++], sizeof(b->lines[0]), fmt, ap);
	va_end(ap);
}

/* odmr_bounce_expire_fn - collect one expired entry */
static int
odmr_bounce_expire_fn(uint64_t qid, const char *domain, uint64_t expiry,
    void *arg)
{
	struct odmr_bounce *b = arg;
	struct odmr_bounce_expired *e;

	(void)expiry;
	b->exp = xreallocarray(b->exp, b->nexp + 1, sizeof(*b->exp));
	e = &b->exp[b->nexp++];
	e->qid = qid;
	(void)strlcpy(e->domain, domain, sizeof(e->domain));
	return 0;
}

/* odmr_bounce_expire_one - fail one expired message's recipients */
static void
odmr_bounce_expire_one(struct odmr_bounce *b, const struct odmr_bounce_expired *e)
{
	struct queue *q = b->d->queue;
	struct queue_msg *m = NULL;
	struct queue_domain dom;
	struct turn_bounce_rcpt *br;
	struct queue_outcome *o;
	struct turn_bounce tb;
	struct queue_error err;
	char text[256], why[256], life[32];
	size_t i, n = 0;
	uint64_t lifetime;

	memset(&dom, 0, sizeof(dom));
	if (queue_domain_get(q, e->domain, &dom, &err) == QUEUE_OK &&
	    dom.claim_holder != NULL) {
		queue_domain_clear(&dom);
		return;		/* being delivered: next round */
	}
	lifetime = dom.lifetime != 0 ? dom.lifetime : b->lifetime;
	queue_domain_clear(&dom);
	if (queue_get(q, e->qid, &m, &err) != QUEUE_OK)
		return;
	br = xcalloc(m->nrcpt, sizeof(*br));
	o = xcalloc(m->nrcpt, sizeof(*o));
	(void)snprintf(life, sizeof(life), "%llu days",
	    (unsigned long long)(lifetime / 86400));
	if (lifetime < 86400)
		(void)snprintf(life, sizeof(life), "%llu seconds",
		    (unsigned long long)lifetime);
	(void)snprintf(text, sizeof(text), "4.4.7 message expired: not"
	    " collected by the customer site within %s", life);
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		if (strcmp(r->domain, e->domain) != 0 ||
		    (r->state != QUEUE_RCPT_QUEUED &&
		    r->state != QUEUE_RCPT_HELD))
			continue;
		br[n].index = r->index;
		br[n].status = "4.4.7";
		br[n].diagnostic = r->last_error != NULL ? r->last_error : NULL;
		o[n].qid = m->qid;
		o[n].rcpt_index = r->index;
		o[n].kind = QUEUE_OUTCOME_FAILED;
		o[n].text = text;
		n++;
	}
	if (n > 0) {
		memset(&tb, 0, sizeof(tb));
		tb.queue = q;
		tb.reporting_mta = b->hostname;
		tb.postmaster = b->postmaster;
		tb.qid = m->qid;
		tb.kind = TURN_DSN_FAILURE;
		tb.rcpts = br;
		tb.nrcpt = n;
		tb.now = b->now;
		/* the DSN first: a crash in between sends it twice */
		switch (turn_bounce_queue(&tb, why, sizeof(why))) {
		case TURN_BOUNCE_QUEUED:
			b->dsn_queued++;
			break;
		case TURN_BOUNCE_LOST:
			b->dsn_lost++;
			odmr_bounce_note(b, "event=dsn-lost id=%s reason=\"%s\"",
			    m->id, why);
			break;
		case TURN_BOUNCE_ERROR:
			odmr_bounce_note(b, "event=dsn-error id=%s"
			    " reason=\"%s\"", m->id, why);
			goto out;	/* keep it: the next round tries again */
		case TURN_BOUNCE_NONE:
			break;
		}
		if (queue_record(q, o, n, &err) == QUEUE_OK) {
			b->expired++;
			odmr_bounce_note(b, "event=expired id=%s domain=%s"
			    " rcpts=%zu dsn=%s", m->id, e->domain, n,
			    tb.dsn_qid != 0 ? "queued" : "none");
		} else
			odmr_bounce_note(b, "event=store-error op=expire id=%s"
			    " reason=\"%s\"", m->id, err.text);
	}
out:
	free(br);
	free(o);
	queue_msg_free(&m);
}

/* odmr_bounce_dom_fn - the customer domains (not the DSN domain) */
static int
odmr_bounce_dom_fn(const struct queue_domain *dom, void *arg)
{
	struct odmr_bounce *b = arg;

	if (turn_bounce_is_dsn_domain(dom->name) || dom->messages == 0 ||
	    dom->claim_holder != NULL)
		return 0;
	b->doms = xreallocarray(b->doms, b->ndoms + 1, sizeof(*b->doms));
	(void)strlcpy(b->doms[b->ndoms].name, dom->name, DNAME_MAX + 1);
	b->doms[b->ndoms].lifetime = dom->lifetime != 0 ? dom->lifetime :
	    b->lifetime;
	b->ndoms++;
	return 0;
}

/* odmr_bounce_late_fn - walk in arrival order; stop at the young ones */
static int
odmr_bounce_late_fn(const struct queue_msg *m, void *arg)
{
	struct odmr_bounce *b = arg;
	struct odmr_bounce_expired *e;

	if (m->arrival + b->delay_warning > b->now)
		return 1;	/* younger from here on: the walk ends */
	if (m->delay_warned != 0 || m->sender[0] == '\0' ||
	    m->arrival + b->walking_life <= b->now)
		return 0;	/* told already, <>, or expiring anyway */
	if (b->nlate >= ODMR_BOUNCE_EXPIRE_MAX)
		return 1;
	b->late = xreallocarray(b->late, b->nlate + 1, sizeof(*b->late));
	e = &b->late[b->nlate++];
	e->qid = m->qid;
	(void)strlcpy(e->domain, b->walking, sizeof(e->domain));
	e->lifetime = b->walking_life;
	e->arrival = m->arrival;
	return 0;
}

/* odmr_bounce_warn_one - a delay DSN for one message, then "warned" */
static void
odmr_bounce_warn_one(struct odmr_bounce *b, const struct odmr_bounce_expired *e)
{
	struct queue *q = b->d->queue;
	struct queue_msg *m = NULL;
	struct turn_bounce_rcpt *br;
	struct queue_outcome o;
	struct turn_bounce tb;
	struct queue_error err;
	char why[256];
	size_t i, n = 0;

	if (queue_get(q, e->qid, &m, &err) != QUEUE_OK)
		return;
	br = xcalloc(m->nrcpt, sizeof(*br));
	memset(&o, 0, sizeof(o));
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		if (strcmp(r->domain, e->domain) != 0 ||
		    r->state != QUEUE_RCPT_QUEUED)
			continue;
		br[n].index = r->index;
		br[n].status = "4.4.1";	/* RFC 3463: no answer yet */
		br[n].diagnostic = r->last_error != NULL ? r->last_error :
		    "4.4.1 waiting for the customer site to collect its mail";
		o.rcpt_index = r->index;
		n++;
	}
	if (n > 0) {
		memset(&tb, 0, sizeof(tb));
		tb.queue = q;
		tb.reporting_mta = b->hostname;
		tb.postmaster = NULL;	/* no delay reports about <> */
		tb.qid = m->qid;
		tb.kind = TURN_DSN_DELAY;
		tb.rcpts = br;
		tb.nrcpt = n;
		tb.now = b->now;
		tb.expires = e->arrival + e->lifetime;
		if (turn_bounce_queue(&tb, why, sizeof(why)) ==
		    TURN_BOUNCE_ERROR) {
			odmr_bounce_note(b, "event=dsn-error id=%s kind=delay"
			    " reason=\"%s\"", m->id, why);
			goto out;
		}
		/* queued, or not wanted (NOTIFY): either way, once only */
		o.qid = m->qid;
		o.kind = QUEUE_OUTCOME_WARNED;
		if (queue_record(q, &o, 1, &err) == QUEUE_OK) {
			b->warned++;
			odmr_bounce_note(b, "event=delayed id=%s domain=%s"
			    " rcpts=%zu dsn=%s", m->id, e->domain, n,
			    tb.dsn_qid != 0 ? "queued" : "none");
		}
	}
out:
	free(br);
	queue_msg_free(&m);
}

/* odmr_bounce_delay_scan - on the pool: delay DSNs (delay_warning) */
static void
odmr_bounce_delay_scan(struct odmr_bounce *b)
{
	struct queue *q = b->d->queue;
	struct queue_error err;
	uint64_t every;
	size_t i;

	/* the walk reads all the mail older than delay_warning: not every
	 * round, since a delay notice minutes late is as good */
	every = b->delay_warning / 10;
	if (every > ODMR_BOUNCE_DELAY_EVERY)
		every = ODMR_BOUNCE_DELAY_EVERY;
	if (b->delay_warning == 0 || (b->delay_scanned != 0 &&
	    b->now < b->delay_scanned + every && b->now >= b->delay_scanned))
		return;
	b->delay_scanned = b->now;
	if (queue_domain_list(q, odmr_bounce_dom_fn, b, &err) != QUEUE_OK)
		return;
	/* each walk goes in arrival order and stops at the first message
	 * younger than delay_warning: it reads only the old mail */
	for (i = 0; i < b->ndoms && b->nlate < ODMR_BOUNCE_EXPIRE_MAX; i++) {
		b->walking = b->doms[i].name;
		b->walking_life = b->doms[i].lifetime;
		(void)queue_walk(q, b->doms[i].name, QUEUE_WALK_DELIVERABLE,
		    odmr_bounce_late_fn, b, &err);
	}
	for (i = 0; i < b->nlate; i++)
		odmr_bounce_warn_one(b, &b->late[i]);
	free(b->late);
	b->late = NULL;
	b->nlate = 0;
	free(b->doms);
	b->doms = NULL;
	b->ndoms = 0;
}

/* odmr_bounce_dest_fn - the destination domains of queued DSNs */
static int
odmr_bounce_dest_fn(const struct queue_msg *m, void *arg)
{
	struct odmr_bounce *b = arg;
	const char *at;
	size_t i, k;

	b->any_dsn = 1;
	for (i = 0; i < m->nrcpt; i++) {
		if ((at = strrchr(m->rcpt[i].addr, '@')) == NULL)
			continue;
		at++;
		for (k = 0; k < b->ndests; k++)
			if (strcasecmp(b->dests[k], at) == 0)
				break;
		if (k == b->ndests && b->ndests < ODMR_BOUNCE_DESTS_MAX &&
		    strlen(at) <= DNAME_MAX)
			(void)strlcpy(b->dests[b->ndests++], at,
			    sizeof(b->dests[0]));
	}
	return 0;
}

/* odmr_bounce_scan_run - on the pool: expire, then list the DSNs */
static void
odmr_bounce_scan_run(void *arg)
{
	struct odmr_bounce *b = arg;
	struct queue *q = b->d->queue;
	size_t i;

	b->status = queue_expire_scan(q, b->now, ODMR_BOUNCE_EXPIRE_MAX,
	    odmr_bounce_expire_fn, b, &b->err);
	for (i = 0; i < b->nexp; i++)
		odmr_bounce_expire_one(b, &b->exp[i]);
	odmr_bounce_delay_scan(b);
	if (b->status == QUEUE_OK)
		b->status = queue_walk(q, TURN_BOUNCE_DOMAIN,
		    QUEUE_WALK_DELIVERABLE, odmr_bounce_dest_fn, b, &b->err);
}

/* odmr_bounce_round_end - the round is over: the next one later */
static void
odmr_bounce_round_end(struct odmr_bounce *b)
{
	odmr_bounce_enter_state(b, ODMR_BOUNCE_STATE_IDLE);
	if (b->shutdown) {
		odmrd_server_idle(b->d);
		return;
	}
	loop_timer_add(b->timer, b->again ? ODMR_BOUNCE_KICK_MS :
	    (unsigned)b->d->conf->bounce_interval * 1000);
	b->again = 0;
}

/* odmr_bounce_flush_done - one delivery of DSNs is over */
static void
odmr_bounce_flush_done(void *arg, const struct turn_flush_result *r)
{
	struct odmr_bounce *b = arg;

	(void)r;	/* turn_flush logged it */
	b->flush = NULL;
	odmr_bounce_next(b);
}

/* odmr_bounce_next - deliver to the next destination, or end */
static void
odmr_bounce_next(struct odmr_bounce *b)
{
	const struct odmr_conf *c = b->d->conf;
	struct turn_flush_params p;
	char holder[TURN_FLUSH_HOLDER_MAX];
	const char *err;
	int relay = c->bounce_relay[0] != '\0';

	if (b->shutdown || b->next >= (relay ? 1 : b->ndests) ||
	    (relay && !b->any_dsn)) {
		odmr_bounce_round_end(b);
		return;
	}
	memset(&p, 0, sizeof(p));
	(void)snprintf(holder, sizeof(holder), "odmrd[%ld] dsn=%s",
	    (long)getpid(), b->id);
	p.queue = b->d->queue;
	p.pool = b->d->deliver_pool;
	p.dns_pool = b->d->dns_pool;
	p.session_id = b->id;
	p.helo_name = c->hostname;
	p.domain = TURN_BOUNCE_DOMAIN;
	p.route = relay ? c->bounce_relay : "mx";
	p.rcpt_domain = relay ? NULL : b->dests[b->next];
	p.tls = TLS_MODE_MAY;	/* RFC 7435: opportunistic to strangers */
	p.tls_ctx = b->d->tls_client;
	p.dns_servers = c->dns_servers;
	p.connect_timeout_ms = (unsigned)c->connect_timeout * 1000;
	p.dsn = 1;
	p.postmaster = c->postmaster;
	p.holder = holder;
	p.claim_ttl = ODMR_BOUNCE_CLAIM_TTL;
	p.done = odmr_bounce_flush_done;
	p.arg = b;
	b->next++;
	if ((b->flush = turn_flush_start(&p, &err)) == NULL) {
		log_warnx("session=%s event=dsn-delivery-error reason=\"%s\"",
		    b->id, err);
		odmr_bounce_next(b);
	}
}

/* odmr_bounce_scan_done - on the loop: log, then deliver */
static void
odmr_bounce_scan_done(void *arg)
{
	struct odmr_bounce *b = arg;
	size_t i;

	for (i = 0; i < b->nlines; i++)
		log_info("session=%s %s", b->id, b->lines[i]);
	if (b->status != QUEUE_OK)
		log_warnx("session=%s event=store-error op=bounce-round"
		    " reason=\"%s\"", b->id, b->err.text);
	if (b->expired > 0 || b->warned > 0 || b->any_dsn)
		log_info("session=%s event=bounce-round expired=%u"
		    " delayed=%u dsn_queued=%u dsn_lost=%u destinations=%zu",
		    b->id, b->expired, b->warned, b->dsn_queued, b->dsn_lost,
		    b->ndests);
	free(b->exp);
	b->exp = NULL;
	b->nexp = 0;
	odmr_bounce_enter_state(b, ODMR_BOUNCE_STATE_DELIVER);
	odmr_bounce_next(b);
}

/* odmr_bounce_round - start a round (timer) */
static void
odmr_bounce_round(void *arg)
{
	struct odmr_bounce *b = arg;
	const struct odmr_conf *c = b->d->conf;

	if (b->shutdown || b->state != ODMR_BOUNCE_STATE_IDLE)
		return;
	odmrd_session_id(b->d, b->id, sizeof(b->id));
	b->now = (uint64_t)time(NULL);
	b->lifetime = c->queue_lifetime;
	b->delay_warning = c->delay_warning;
	b->warned = 0;
	free(b->postmaster);
	free(b->hostname);
	b->postmaster = xstrdup(c->postmaster);
	b->hostname = xstrdup(c->hostname);
	b->expired = b->dsn_queued = b->dsn_lost = 0;
	b->nlines = b->ndests = b->next = 0;
	b->any_dsn = 0;
	b->status = QUEUE_OK;
	odmr_bounce_enter_state(b, ODMR_BOUNCE_STATE_EXPIRE);
	work_submit(b->d->deliver_pool, odmr_bounce_scan_run,
	    odmr_bounce_scan_done, b);
}

/* odmr_bounce_new - the first round starts now (after a restart) */
struct odmr_bounce *
odmr_bounce_new(struct odmrd *d)
{
	struct odmr_bounce *b = xcalloc(1, sizeof(*b));

	b->d = d;
	b->timer = loop_timer_new(odmr_bounce_round, b);
	loop_timer_add(b->timer, 0);
	return b;
}

/* odmr_bounce_kick - a recipient failed: a round soon */
void
odmr_bounce_kick(struct odmr_bounce *b)
{
	if (b == NULL || b->shutdown)
		return;
	if (b->state != ODMR_BOUNCE_STATE_IDLE) {
		b->again = 1;
		return;
	}
	loop_timer_del(b->timer);
	loop_timer_add(b->timer, ODMR_BOUNCE_KICK_MS);
}

/* odmr_bounce_shutdown - no more rounds; the delivery QUITs */
void
odmr_bounce_shutdown(struct odmr_bounce *b)
{
	if (b == NULL)
		return;
	b->shutdown = 1;
	loop_timer_del(b->timer);
	if (b->flush != NULL)
		turn_flush_stop(b->flush);
}

/* odmr_bounce_abort - close the delivery now */
void
odmr_bounce_abort(struct odmr_bounce *b)
{
	if (b == NULL)
		return;
	b->shutdown = 1;
	loop_timer_del(b->timer);
	if (b->flush != NULL) {
		struct turn_flush *f = b->flush;

		turn_flush_abort(&f);
	}
}

/* odmr_bounce_busy - a round runs */
int
odmr_bounce_busy(const struct odmr_bounce *b)
{
	return b != NULL && b->state != ODMR_BOUNCE_STATE_IDLE;
}

/* odmr_bounce_free - after the loop */
void
odmr_bounce_free(struct odmr_bounce **bp)
{
	struct odmr_bounce *b = *bp;

	if (b == NULL)
		return;
	*bp = NULL;
	loop_timer_free(&b->timer);
	free(b->postmaster);
	free(b->hostname);
	free(b->exp);
	free(b);
}
