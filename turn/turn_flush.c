/*
 * NAME
 *	turn_flush 3 - one domain's delivery over a new connection: claim,
 *	route, connect, deliver, record, unclaim
 * SYNOPSIS
 *	#include "turn_flush.h"
 * DESCRIPTION
 *	See turn_flush.h. The flush is a state machine (enum
 *	turn_flush_state, turn_flush_state_names, turn_flush_enter_state()).
 *	Store and DNS work runs on the pool; the loop only connects and
 *	lets turn_session(3) deliver.
 * SEE ALSO
 *	turn_session(3), turn_mx(3), RFC 1985, RFC 5321 section 5.1
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compat.h"
#include "io.h"
#include "log.h"
#include "work.h"
#include "xmalloc.h"

#include "queue.h"
#include "turn_bounce.h"
#include "turn_flush.h"
#include "turn_mx.h"
#include "turn_session.h"

#define TURN_FLUSH_TARGETS_MAX	TURN_MX_ADDR_MAX
#define TURN_FLUSH_PORT		25
#define TURN_FLUSH_RECORD_BATCH	512	/* deferred outcomes per write */
#define TURN_FLUSH_DNS_MS	30000

enum turn_flush_state {
	TURN_FLUSH_STATE_CLAIM = 0,
	TURN_FLUSH_STATE_ROUTE,
	TURN_FLUSH_STATE_CONNECT,
	TURN_FLUSH_STATE_DELIVER,
	TURN_FLUSH_STATE_RECORD,
	TURN_FLUSH_STATE_UNCLAIM,
	TURN_FLUSH_STATE_DONE,
	TURN_FLUSH_STATE_COUNT
};

static const char *const turn_flush_state_names[TURN_FLUSH_STATE_COUNT] = {
	[TURN_FLUSH_STATE_CLAIM] = "claim",
	[TURN_FLUSH_STATE_ROUTE] = "route",
	[TURN_FLUSH_STATE_CONNECT] = "connect",
	[TURN_FLUSH_STATE_DELIVER] = "deliver",
	[TURN_FLUSH_STATE_RECORD] = "record",
	[TURN_FLUSH_STATE_UNCLAIM] = "unclaim",
	[TURN_FLUSH_STATE_DONE] = "done",
};

static const char *const turn_flush_status_names[] = {
	[TURN_FLUSH_DONE] = "done",
	[TURN_FLUSH_BUSY] = "busy",
	[TURN_FLUSH_FAILED] = "failed",
	[TURN_FLUSH_ERROR] = "store-error",
};

/* One place to connect to: a name to resolve, or an address found. */
struct turn_flush_target {
	char		 host[DNAME_MAX + 1];	/* name, or literal */
	unsigned	 port;
	int		 have_addr;
	struct sockaddr_storage ss;
	socklen_t	 sslen;
};

struct turn_flush {
	struct turn_flush_params p;	/* strings below are our copies */
	char		*session_id;
	char		*helo_name;
	char		*domain;
	char		*route;
	char		*dns_servers;
	char		*holder;
	char		*postmaster;
	char		*rcpt_domain;
	char		*domains[1];	/* for turn_session */

	enum turn_flush_state state;
	int		 claimed;
	int		 job;		/* a pool job runs */
	int		 stopping;
	int		 aborted;
	struct turn_flush_target targets[TURN_FLUSH_TARGETS_MAX];
	size_t		 ntargets, next;
	enum tls_mode	 tls;		/* for the current address */
	int		 plain_retry;	/* this try: TLS may, gone plain */
	int		 plain_pending;	/* the next try is that */
	struct io	*io;
	struct turn_session *turn;
	int		 delivered_any;
	/* a DSN's destination that cannot exist (NXDOMAIN, null MX):
	 * its DSNs fail now instead of retrying until they expire */
	int		 permanent;
	char		 perm_status[TURN_MX_CODE_LEN];
	unsigned	 dsn_failed, dsn_reported, dsn_lost;
	struct turn_flush_result result;
	struct queue_error err;
	/* the record job */
	struct queue_outcome *outcomes;
	size_t		 noutcomes, outcomes_cap;
	enum queue_status status;
};

static void turn_flush_connect_next(struct turn_flush *);
static void turn_flush_finish(struct turn_flush *);

/* turn_flush_status_name - "done", "busy", "failed", "store-error" */
const char *
turn_flush_status_name(enum turn_flush_status st)
{
	if ((size_t)st >= sizeof(turn_flush_status_names) /
	    sizeof(turn_flush_status_names[0]))
		return "unknown";
	return turn_flush_status_names[st];
}

/* turn_flush_enter_state - change state and log the transition */
static void
turn_flush_enter_state(struct turn_flush *f, enum turn_flush_state state)
{
	if (f->state != state)
		log_debug("session=%s event=flush-state domain=%s from=%s"
		    " to=%s", f->session_id, f->domain,
		    turn_flush_state_names[f->state],
		    turn_flush_state_names[state]);
	f->state = state;
}

/* turn_flush_error - keep the first reason the flush did not complete */
static void
turn_flush_error(struct turn_flush *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* turn_flush_error - keep the first reason the flush did not complete */
static void
turn_flush_error(struct turn_flush *f, const char *fmt, ...)
{
	va_list ap;

	if (f->result.error[0] != '\0')
		return;
	va_start(ap, fmt);
	(void)vsnprintf(f->result.error, sizeof(f->result.error), fmt, ap);
	va_end(ap);
}

/* turn_flush_free - release everything; the io and session are gone */
static void
turn_flush_free(struct turn_flush *f)
{
	free(f->session_id);
	free(f->helo_name);
	free(f->domain);
	free(f->route);
	free(f->dns_servers);
	free(f->holder);
	free(f->postmaster);
	free(f->rcpt_domain);
	free(f->outcomes);
	free(f);
}

/* ---- claim ---- */

/* turn_flush_claim_run - on the pool: take the domain */
static void
turn_flush_claim_run(void *arg)
{
	struct turn_flush *f = arg;

	f->status = queue_claim(f->p.queue, f->domain, f->holder,
	    f->p.claim_ttl, f->result.busy_holder, &f->err);
}

/* turn_flush_parse_route - "h1[:p],[v6]:p,..." into targets; -1 if bad */
static int
turn_flush_parse_route(struct turn_flush *f, const char **error_r)
{
	const char *p = f->route, *comma, *host, *colon;
	size_t n, hn;
	char *end;
	unsigned long port;

	while (*p != '\0') {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		while (n > 0 && *p == ' ') {
			p++;
			n--;
		}
		if (n == 0 || f->ntargets == TURN_FLUSH_TARGETS_MAX) {
			*error_r = "bad route: an empty host or too many hosts";
			return -1;
		}
		port = TURN_FLUSH_PORT;
		host = p;
		if (*p == '[') {
			colon = memchr(p, ']', n);
			if (colon == NULL) {
				*error_r = "bad route: '[' without ']'";
				return -1;
			}
			host = p + 1;
			hn = (size_t)(colon - host);
			colon++;
			if (colon < p + n && *colon != ':') {
				*error_r = "bad route: junk after ']'";
				return -1;
			}
			if (colon == p + n)
				colon = NULL;
		} else {
			colon = memchr(p, ':', n);
			hn = colon != NULL ? (size_t)(colon - p) : n;
		}
		if (colon != NULL) {
			port = strtoul(colon + 1, &end, 10);
			if (end != p + n || port == 0 || port > 65535) {
				*error_r = "bad route: bad port";
				return -1;
			}
		}
		if (hn == 0 || hn > DNAME_MAX) {
			*error_r = "bad route: bad host";
			return -1;
		}
		if (host != p && hn > 5 && strncasecmp(host, "IPv6:", 5) == 0) {
			host += 5;	/* RFC 5321 4.1.3 literal */
			hn -= 5;
		}
		memcpy(f->targets[f->ntargets].host, host, hn);
		f->targets[f->ntargets].host[hn] = '\0';
		f->targets[f->ntargets].port = (unsigned)port;
		f->ntargets++;
		p += n;
		if (*p == ',')
			p++;
	}
	if (f->ntargets == 0) {
		*error_r = "empty route";
		return -1;
	}
	return 0;
}

/* ---- route ---- */

struct turn_flush_mx {
	struct turn_flush *f;
	struct turn_mx_result res;
};

/* turn_flush_mx_run - on the pool: MX hosts and their addresses */
static void
turn_flush_mx_run(void *arg)
{
	struct turn_flush_mx *m = arg;
	struct turn_mx_opts o;

	memset(&o, 0, sizeof(o));
	o.servers = m->f->dns_servers;
	o.timeout_ms = TURN_FLUSH_DNS_MS;
	/* RFC 5321 5.1: never our own MX record, nor a worse one */
	o.myhostname = m->f->helo_name;
	(void)turn_mx_resolve(&o, m->f->rcpt_domain != NULL ?
	    m->f->rcpt_domain : m->f->domain, TURN_FLUSH_PORT, &m->res);
}

/* turn_flush_mx_done - on the loop: connect to what DNS said */
static void
turn_flush_mx_done(void *arg)
{
	struct turn_flush_mx *m = arg;
	struct turn_flush *f = m->f;
	struct turn_flush_target *t;
	char addr[IO_ADDR_MAX];
	unsigned port;
	size_t i;

	f->job = 0;
	if (m->res.status != TURN_MX_OK) {
		turn_flush_error(f, "MX lookup for %s failed: %s",
		    f->rcpt_domain != NULL ? f->rcpt_domain : f->domain,
		    m->res.error);
		log_info("session=%s event=flush-route domain=%s route=mx"
		    " status=%s reason=\"%s\"", f->session_id, f->domain,
		    m->res.status == TURN_MX_PERMFAIL ? "permanent" :
		    "temporary", m->res.error);
		if (m->res.status == TURN_MX_PERMFAIL && f->rcpt_domain != NULL &&
		    f->p.dsn) {
			f->permanent = 1;
			(void)strlcpy(f->perm_status, m->res.status_code,
			    sizeof(f->perm_status));
		}
		free(m);
		f->result.status = TURN_FLUSH_FAILED;
		turn_flush_finish(f);
		return;
	}
	for (i = 0; i < m->res.naddr && i < TURN_FLUSH_TARGETS_MAX; i++) {
		t = &f->targets[f->ntargets++];
		(void)strlcpy(t->host, m->res.addr[i].host, sizeof(t->host));
		t->port = TURN_FLUSH_PORT;
		t->have_addr = 1;
		memcpy(&t->ss, &m->res.addr[i].ss, sizeof(t->ss));
		t->sslen = m->res.addr[i].len;
		if (io_addr_text((const struct sockaddr *)&t->ss, addr,
		    sizeof(addr), &port) == 0)
			log_info("session=%s event=flush-route domain=%s"
			    " mx=%s pref=%u addr=%s", f->session_id, f->domain,
			    t->host, m->res.addr[i].pref, addr);
	}
	free(m);
	if (f->aborted) {
		f->result.status = TURN_FLUSH_FAILED;
		turn_flush_error(f, "aborted");
		turn_flush_finish(f);
		return;
	}
	turn_flush_connect_next(f);
}

/* turn_flush_route - resolve the route, then connect */
static void
turn_flush_route(struct turn_flush *f)
{
	struct turn_flush_mx *m;
	const char *err;

	turn_flush_enter_state(f, TURN_FLUSH_STATE_ROUTE);
	if (strcmp(f->route, "mx") == 0) {
		m = xcalloc(1, sizeof(*m));
		m->f = f;
		f->job = 1;
		work_submit(f->p.dns_pool != NULL ? f->p.dns_pool : f->p.pool,
		    turn_flush_mx_run, turn_flush_mx_done, m);
		return;
	}
	if (turn_flush_parse_route(f, &err) == -1) {
		turn_flush_error(f, "%s: \"%s\"", err, f->route);
		f->result.status = TURN_FLUSH_FAILED;
		turn_flush_finish(f);
		return;
	}
	turn_flush_connect_next(f);
}

/* turn_flush_claim_done - on the loop: ours, or someone else's */
static void
turn_flush_claim_done(void *arg)
{
	struct turn_flush *f = arg;

	f->job = 0;
	switch (f->status) {
	case QUEUE_OK:
		f->claimed = 1;
		if (f->aborted) {
			f->result.status = TURN_FLUSH_FAILED;
			turn_flush_error(f, "aborted");
			turn_flush_finish(f);
			return;
		}
		turn_flush_route(f);
		return;
	case QUEUE_BUSY:
		log_info("session=%s event=flush-busy domain=%s holder=\"%s\"",
		    f->session_id, f->domain, f->result.busy_holder);
		f->result.status = TURN_FLUSH_BUSY;
		turn_flush_error(f, "%s is being delivered by %s", f->domain,
		    f->result.busy_holder);
		break;
	default:
		f->result.status = TURN_FLUSH_ERROR;
		turn_flush_error(f, "cannot claim %s: %s", f->domain,
		    f->err.text);
		break;
	}
	turn_flush_finish(f);
}

/* ---- connect and deliver ---- */

/* turn_flush_turn_done - the delivery is over: next address, or finish */
static void
turn_flush_turn_done(void *arg, const struct turn_result *r)
{
	struct turn_flush *f = arg;
	const struct turn_flush_target *t = &f->targets[f->next - 1];
	int any = r->rcpt_delivered + r->rcpt_failed + r->rcpt_deferred > 0;

	f->turn = NULL;
	if (r->io_gone)
		f->io = NULL;
	else
		io_free(&f->io);
	f->result.turn.messages_delivered += r->messages_delivered;
	f->result.turn.messages_deferred += r->messages_deferred;
	f->result.turn.messages_failed += r->messages_failed;
	f->result.turn.rcpt_delivered += r->rcpt_delivered;
	f->result.turn.rcpt_deferred += r->rcpt_deferred;
	f->result.turn.rcpt_failed += r->rcpt_failed;
	f->result.turn.store_errors += r->store_errors;
	f->result.turn.tls |= r->tls;
	f->delivered_any |= any;
	if (r->completed) {
		f->result.turn.completed = 1;
		f->result.error[0] = '\0';
		f->result.status = TURN_FLUSH_DONE;
		turn_flush_finish(f);
		return;
	}
	/* keep the latest reason: it is the one the next try replaces */
	f->result.error[0] = '\0';
	turn_flush_error(f, "%s", r->error[0] ? r->error : "not completed");
	f->result.status = TURN_FLUSH_FAILED;
	if (f->aborted || f->stopping || any) {
		turn_flush_finish(f);
		return;
	}
	if (r->tls_failed && f->tls == TLS_MODE_MAY && !f->plain_retry) {
		/* RFC 7435: opportunistic TLS that fails may go plain */
		log_info("session=%s event=flush-tls-fallback domain=%s"
		    " relay=%s reason=\"%s\"", f->session_id, f->domain,
		    t->host, r->error);
		f->plain_pending = 1;
		f->next--;
		turn_flush_connect_next(f);
		return;
	}
	/* RFC 5321 5.1: nothing was delivered here: the next address */
	turn_flush_connect_next(f);
}

/* turn_flush_deliver - connected: let turn_session deliver */
static void
turn_flush_deliver(struct turn_flush *f)
{
	const struct turn_flush_target *t = &f->targets[f->next - 1];
	struct turn_params tp;
	const char *err;

	turn_flush_enter_state(f, TURN_FLUSH_STATE_DELIVER);
	memset(&tp, 0, sizeof(tp));
	tp.queue = f->p.queue;
	tp.pool = f->p.pool;
	tp.session_id = f->session_id;
	tp.helo_name = f->helo_name;
	f->domains[0] = f->domain;
	tp.domains = f->domains;
	tp.ndomains = 1;
	memcpy(tp.timeout_ms, f->p.timeout_ms, sizeof(tp.timeout_ms));
	tp.tls_policy = f->plain_retry ? TLS_MODE_NONE : f->tls;
	tp.tls_ctx = f->p.tls_ctx;
	/* a name: SNI and the name checked; a literal: its iPAddress */
	tp.tls_name = t->host;
	tp.dsn = f->p.dsn;
	tp.postmaster = f->postmaster;
	tp.rcpt_domain = f->rcpt_domain;
	tp.done = turn_flush_turn_done;
	tp.arg = f;
	/* a next hop that writes its replies in pieces with Nagle on would
	 * otherwise wait for our delayed ACK when we have nothing to send */
	io_set_quickack(f->io, 1);
	if ((f->turn = turn_session_start(f->io, &tp, &err)) == NULL) {
		io_free(&f->io);
		turn_flush_error(f, "cannot start the delivery: %s", err);
		f->result.status = TURN_FLUSH_FAILED;
		turn_flush_finish(f);
	}
}

/* turn_flush_io - the connection attempt's callback */
static void
turn_flush_io(struct io *io, enum io_event ev, void *arg)
{
	struct turn_flush *f = arg;
	const struct turn_flush_target *t = &f->targets[f->next - 1];

	switch (ev) {
	case IO_CONNECTED:
		(void)snprintf(f->result.relay, sizeof(f->result.relay),
		    "%s[%s]:%u", t->host, io_peer_addr(io), io_peer_port(io));
		turn_flush_deliver(f);
		break;
	case IO_ERROR:
	case IO_DISCONNECTED:
	case IO_TIMEOUT:
		f->result.error[0] = '\0';
		turn_flush_error(f, "cannot connect to %s:%u: %s", t->host,
		    t->port, io_error(io));
		log_info("session=%s event=flush-connect-error domain=%s"
		    " relay=%s:%u reason=\"%s\"", f->session_id, f->domain,
		    t->host, t->port, io_error(io));
		io_free(&f->io);
		if (f->aborted || f->stopping) {
			f->result.status = TURN_FLUSH_FAILED;
			turn_flush_finish(f);
			return;
		}
		turn_flush_connect_next(f);
		break;
	default:
		break;
	}
}

/* turn_flush_connect_next - try the next address, or give up */
static void
turn_flush_connect_next(struct turn_flush *f)
{
	struct turn_flush_target *t;

	turn_flush_enter_state(f, TURN_FLUSH_STATE_CONNECT);
	if (f->next == f->ntargets) {
		f->result.status = TURN_FLUSH_FAILED;
		turn_flush_error(f, "no address of the route answered");
		turn_flush_finish(f);
		return;
	}
	t = &f->targets[f->next++];
	f->plain_retry = f->plain_pending;
	f->plain_pending = 0;
	(void)snprintf(f->result.relay, sizeof(f->result.relay), "%s:%u",
	    t->host, t->port);
	if (t->have_addr)
		f->io = io_connect_addr((const struct sockaddr *)&t->ss,
		    t->sslen, f->p.connect_timeout_ms, turn_flush_io, f);
	else
		f->io = io_connect(t->host, t->port, f->p.connect_timeout_ms,
		    turn_flush_io, f);
}

/* ---- the end ---- */

/* turn_flush_collect - every recipient still queued gets the reason */
static int
turn_flush_collect(const struct queue_msg *m, void *arg)
{
	struct turn_flush *f = arg;
	const char *at;
	size_t i;

	for (i = 0; i < m->nrcpt; i++) {
		if (m->rcpt[i].state != QUEUE_RCPT_QUEUED)
			continue;
		if (f->rcpt_domain != NULL && ((at = strrchr(m->rcpt[i].addr,
		    '@')) == NULL || strcasecmp(at + 1, f->rcpt_domain) != 0))
			continue;
		if (f->noutcomes == f->outcomes_cap) {
			f->outcomes_cap = f->outcomes_cap ? f->outcomes_cap * 2 :
			    64;
			f->outcomes = xreallocarray(f->outcomes,
			    f->outcomes_cap, sizeof(*f->outcomes));
		}
		f->outcomes[f->noutcomes].qid = m->qid;
		f->outcomes[f->noutcomes].rcpt_index = m->rcpt[i].index;
		f->outcomes[f->noutcomes].kind = f->permanent ?
		    QUEUE_OUTCOME_FAILED : QUEUE_OUTCOME_DEFERRED;
		f->outcomes[f->noutcomes].text = f->result.error;
		f->noutcomes++;
	}
	return 0;
}

/* turn_flush_report - a DSN that can never be delivered: tell postmaster */
static void
turn_flush_report(struct turn_flush *f, size_t i)
{
	struct turn_bounce_rcpt br;
	struct turn_bounce b;
	char why[TURN_SESSION_ERROR_MAX];

	memset(&br, 0, sizeof(br));
	br.index = f->outcomes[i].rcpt_index;
	br.status = f->perm_status[0] != '\0' ? f->perm_status : "5.1.2";
	br.diagnostic = f->result.error;
	memset(&b, 0, sizeof(b));
	b.queue = f->p.queue;
	b.reporting_mta = f->helo_name;
	b.postmaster = f->postmaster;
	b.qid = f->outcomes[i].qid;
	b.kind = TURN_DSN_FAILURE;
	b.rcpts = &br;
	b.nrcpt = 1;
	switch (turn_bounce_queue(&b, why, sizeof(why))) {
	case TURN_BOUNCE_QUEUED:
		f->dsn_reported++;
		break;
	case TURN_BOUNCE_LOST:
		f->dsn_lost++;
		break;
	case TURN_BOUNCE_ERROR:
		/* keep it queued: it expires, and is reported, later */
		f->outcomes[i].kind = QUEUE_OUTCOME_DEFERRED;
		break;
	case TURN_BOUNCE_NONE:
		break;
	}
}

/* turn_flush_record_run - on the pool: record the reason, then unclaim */
static void
turn_flush_record_run(void *arg)
{
	struct turn_flush *f = arg;
	struct queue_error err;
	size_t off, n;

	if (f->result.status == TURN_FLUSH_FAILED && !f->delivered_any) {
		f->noutcomes = 0;
		if (queue_walk(f->p.queue, f->domain, QUEUE_WALK_DELIVERABLE,
		    turn_flush_collect, f, &err) != QUEUE_OK)
			log_warnx("session=%s event=store-error op=walk"
			    " domain=%s reason=\"%s\"", f->session_id,
			    f->domain, err.text);
		/* reports first, then the failures (turn_bounce(3)) */
		for (off = 0; f->permanent && off < f->noutcomes; off++)
			turn_flush_report(f, off);
		for (off = 0; off < f->noutcomes; off += n) {
			n = f->noutcomes - off;
			if (n > TURN_FLUSH_RECORD_BATCH)
				n = TURN_FLUSH_RECORD_BATCH;
			if (queue_record(f->p.queue, f->outcomes + off, n,
			    &err) != QUEUE_OK) {
				log_warnx("session=%s event=store-error"
				    " op=record domain=%s reason=\"%s\"",
				    f->session_id, f->domain, err.text);
				break;
			}
			f->result.deferred_recorded += (unsigned)n;
		}
		if (f->permanent)
			f->dsn_failed = f->result.deferred_recorded;
	}
	if (f->claimed && queue_unclaim(f->p.queue, f->domain, f->holder,
	    f->result.turn.completed, &err) != QUEUE_OK)
		log_warnx("session=%s event=unclaim-error domain=%s"
		    " reason=\"%s\"", f->session_id, f->domain, err.text);
	f->claimed = 0;
}

/* turn_flush_record_done - on the loop: tell the caller, free */
static void
turn_flush_record_done(void *arg)
{
	struct turn_flush *f = arg;
	const struct turn_flush_result *r = &f->result;

	f->job = 0;
	turn_flush_enter_state(f, TURN_FLUSH_STATE_DONE);
	if (f->permanent)
		log_info("session=%s event=dsn-undeliverable domain=%s"
		    " destination=%s failed=%u to_postmaster=%u lost=%u"
		    " reason=\"%s\"", f->session_id, f->domain,
		    f->rcpt_domain, f->dsn_failed, f->dsn_reported,
		    f->dsn_lost, r->error);
	else if (r->deferred_recorded > 0)
		log_info("session=%s event=flush-deferred domain=%s rcpts=%u"
		    " reason=\"%s\"", f->session_id, f->domain,
		    r->deferred_recorded, r->error);
	log_info("session=%s event=flush-end domain=%s status=%s relay=%s"
	    " tls=%s delivered=%u deferred=%u failed=%u%s%s%s",
	    f->session_id, f->domain, turn_flush_status_name(r->status),
	    r->relay[0] ? r->relay : "-", r->turn.tls ? "yes" : "no",
	    r->turn.rcpt_delivered, r->turn.rcpt_deferred,
	    r->turn.rcpt_failed, r->error[0] ? " reason=\"" : "", r->error,
	    r->error[0] ? "\"" : "");
	f->p.done(f->p.arg, r);
	turn_flush_free(f);
}

/* turn_flush_finish - record the reason if need be, unclaim, report */
static void
turn_flush_finish(struct turn_flush *f)
{
	turn_flush_enter_state(f, f->claimed ? TURN_FLUSH_STATE_RECORD :
	    TURN_FLUSH_STATE_UNCLAIM);
	f->job = 1;
	work_submit(f->p.pool, turn_flush_record_run, turn_flush_record_done,
	    f);
}

/* ---- the interface ---- */

/* turn_flush_start - claim, route, connect, deliver; done() at the end */
struct turn_flush *
turn_flush_start(const struct turn_flush_params *p, const char **error_r)
{
	struct turn_flush *f;

	if (p->queue == NULL || p->pool == NULL || p->done == NULL ||
	    p->domain == NULL || p->domain[0] == '\0' || p->route == NULL ||
	    p->helo_name == NULL || p->holder == NULL) {
		*error_r = "no store, pool, domain, route, helo name, holder"
		    " or done callback";
		return NULL;
	}
	if (p->route[0] == '\0' || strlen(p->route) > TURN_FLUSH_ROUTE_MAX ||
	    strcmp(p->route, "client") == 0) {
		*error_r = "the route is empty, too long or still \"client\"";
		return NULL;
	}
	if (p->tls != TLS_MODE_NONE && p->tls_ctx == NULL) {
		*error_r = "a TLS policy without a TLS client context";
		return NULL;
	}
	f = xcalloc(1, sizeof(*f));
	f->p = *p;
	f->session_id = xstrdup(p->session_id != NULL ? p->session_id : "-");
	f->helo_name = xstrdup(p->helo_name);
	f->domain = xstrdup(p->domain);
	f->route = xstrdup(p->route);
	f->dns_servers = p->dns_servers != NULL && p->dns_servers[0] != '\0' ?
	    xstrdup(p->dns_servers) : NULL;
	f->holder = xstrdup(p->holder);
	f->postmaster = p->postmaster != NULL ? xstrdup(p->postmaster) : NULL;
	f->rcpt_domain = p->rcpt_domain != NULL && p->rcpt_domain[0] != '\0' ?
	    xstrdup(p->rcpt_domain) : NULL;
	f->p.postmaster = f->postmaster;
	f->p.rcpt_domain = f->rcpt_domain;
	f->tls = p->tls;
	if (f->p.connect_timeout_ms == 0)
		f->p.connect_timeout_ms = 30000;
	if (f->p.claim_ttl == 0)
		f->p.claim_ttl = 2 * 60 * 60;
	log_info("session=%s event=flush-start domain=%s route=%s tls=%s",
	    f->session_id, f->domain, f->route, tls_mode_names[f->tls]);
	f->state = TURN_FLUSH_STATE_CLAIM;
	f->job = 1;
	work_submit(p->pool, turn_flush_claim_run, turn_flush_claim_done, f);
	return f;
}

/* turn_flush_stop - finish the message in progress, then QUIT */
void
turn_flush_stop(struct turn_flush *f)
{
	if (f == NULL)
		return;
	f->stopping = 1;
	if (f->turn != NULL)
		turn_session_stop(f->turn);
}

/* turn_flush_abort - close now; done follows from the loop */
void
turn_flush_abort(struct turn_flush **fp)
{
	struct turn_flush *f = *fp;

	*fp = NULL;
	if (f == NULL)
		return;
	f->aborted = 1;
	if (f->turn != NULL) {
		turn_session_abort(&f->turn);	/* its done follows */
		return;
	}
	if (f->io != NULL && f->state == TURN_FLUSH_STATE_CONNECT) {
		io_free(&f->io);
		f->result.status = TURN_FLUSH_FAILED;
		turn_flush_error(f, "aborted while connecting");
		turn_flush_finish(f);
	}
	/* a pool job runs: its done sees f->aborted */
}
