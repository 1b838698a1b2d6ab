/*
 * NAME
 *	fetch_poll 3 - one pickup of odmr-fetch: the local MTA, the
 *	provider, the relay
 * SYNOPSIS
 *	#include "fetch_poll.h"
 * DESCRIPTION
 *	See fetch_poll.h. The pickup owns the three sub-sessions in turn;
 *	the local connection passes to the relay at the turn. Every state
 *	change goes through fetch_poll_enter_state(), which logs old ->
 *	new. fetch_poll_end() is the one way out: it posts done() to the
 *	loop once nothing is left open.
 * SEE ALSO
 *	RFC 2645 section 4, RFC 1985
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compat.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

#include "fetch.h"
#include "fetch_local.h"
#include "fetch_poll.h"
#include "fetch_provider.h"
#include "fetch_relay.h"

const char *const fetch_poll_state_names[FETCH_POLL_STATE_COUNT] = {
	[FETCH_POLL_STATE_LOCAL] = "local",
	[FETCH_POLL_STATE_PROVIDER] = "provider",
	[FETCH_POLL_STATE_RELAY] = "relay",
	[FETCH_POLL_STATE_QUIT] = "quit",
	[FETCH_POLL_STATE_END] = "end",
};

const char *const fetch_poll_exit_names[] = {
	[FETCH_EXIT_DELIVERED] = "delivered",
	[FETCH_EXIT_NO_MAIL] = "no-mail",
	[FETCH_EXIT_AUTH] = "refused",
	[FETCH_EXIT_SERVER] = "server-error",
	[FETCH_EXIT_LOCAL] = "local-error",
	[FETCH_EXIT_USAGE] = "usage",
};

struct fetch_poll {
	struct fetch_provider_params pp;
	struct fetch_local_params lp;
	unsigned	 lanes;		/* connections to the local MTA */
	char		*hostname;
	fetch_poll_done_fn done;
	void		*arg;

	enum fetch_poll_state state;
	struct fetch_local *local;
	struct fetch_provider *provider;
	struct fetch_relay *relay;
	int		 local_lost;	/* while the provider was asked */
	int		 stopping;
	int		 posted;
	struct timespec	 started;
	struct fetch_poll_result result;
};

static void fetch_poll_end(struct fetch_poll *);

/* fetch_poll_enter_state - change state and log old -> new */
static void
fetch_poll_enter_state(struct fetch_poll *p, enum fetch_poll_state state)
{
	if (p->state != state)
		log_debug("event=poll-state from=%s to=%s",
		    fetch_poll_state_names[p->state],
		    fetch_poll_state_names[state]);
	p->state = state;
}

/* fetch_poll_fail - keep the first reason and its exit status */
static void
fetch_poll_fail(struct fetch_poll *p, enum fetch_exit exit, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* fetch_poll_fail - keep the first reason and its exit status */
static void
fetch_poll_fail(struct fetch_poll *p, enum fetch_exit exit, const char *fmt,
    ...)
{
	va_list ap;

	if (p->result.error[0] != '\0')
		return;
	p->result.exit = exit;
	va_start(ap, fmt);
	(void)vsnprintf(p->result.error, sizeof(p->result.error), fmt, ap);
	va_end(ap);
}

/* ---- the local MTA, before the turn ---- */

/* fetch_poll_local_ready - the local MTA can take mail: ask for it */
static void fetch_poll_provider(struct fetch_poll *);

/* fetch_poll_local_ready - the local MTA can take mail: ask for it */
static void
fetch_poll_local_ready(void *arg)
{
	struct fetch_poll *p = arg;

	if (p->stopping) {
		fetch_poll_fail(p, FETCH_EXIT_SERVER, "stopped by a signal");
		fetch_poll_enter_state(p, FETCH_POLL_STATE_QUIT);
		if (fetch_local_quit(p->local) == -1) {
			fetch_local_free(&p->local);
			fetch_poll_end(p);
		}
		return;
	}
	fetch_poll_provider(p);
}

/* fetch_poll_local_reply - nothing is asked before the turn */
static void
fetch_poll_local_reply(void *arg, const struct fetch_reply *r)
{
	(void)arg;
	(void)r;
}

/* fetch_poll_local_drained - nothing is sent before the turn */
static void
fetch_poll_local_drained(void *arg)
{
	(void)arg;
}

/* fetch_poll_local_lost - the local MTA is not there, or went away */
static void
fetch_poll_local_lost(void *arg, const char *why)
{
	struct fetch_poll *p = arg;

	fetch_local_free(&p->local);
	switch (p->state) {
	case FETCH_POLL_STATE_LOCAL:
		/* never ask for mail that cannot be delivered */
		fetch_poll_fail(p, FETCH_EXIT_LOCAL, "local MTA %s: %s",
		    p->lp.path != NULL ? p->lp.path : p->lp.host, why);
		fetch_poll_end(p);
		return;
	case FETCH_POLL_STATE_PROVIDER:
		fetch_poll_fail(p, FETCH_EXIT_LOCAL, "local MTA went away "
		    "before the turn: %s", why);
		p->local_lost = 1;
		fetch_provider_abort(p->provider);
		return;
	case FETCH_POLL_STATE_QUIT:
	case FETCH_POLL_STATE_RELAY:
	case FETCH_POLL_STATE_END:
	case FETCH_POLL_STATE_COUNT:
		break;
	}
	fetch_poll_end(p);
}

/* fetch_poll_local_closed - QUIT answered */
static void
fetch_poll_local_closed(void *arg)
{
	struct fetch_poll *p = arg;

	fetch_local_free(&p->local);
	fetch_poll_end(p);
}

static const struct fetch_local_ops fetch_poll_local_ops = {
	.ready = fetch_poll_local_ready,
	.reply = fetch_poll_local_reply,
	.drained = fetch_poll_local_drained,
	.lost = fetch_poll_local_lost,
	.closed = fetch_poll_local_closed,
};

/* ---- the relay ---- */

/* fetch_poll_relay_done - the reversed session is over */
static void
fetch_poll_relay_done(void *arg, const struct fetch_relay_result *r)
{
	struct fetch_poll *p = arg;

	p->result.messages = r->messages;
	p->result.bytes = r->bytes;
	p->result.messages_refused = r->messages_refused;
	p->result.rcpt_refused = r->rcpt_refused;
	p->result.rcpt_deferred = r->rcpt_deferred;
	p->result.local_connections = r->local_connections;
	if (r->error[0] != '\0')
		fetch_poll_fail(p, r->exit, "%s", r->error);
	else
		p->result.exit = r->exit;
	fetch_relay_free(&p->relay);
	fetch_poll_end(p);
}

/* ---- the provider ---- */

/* fetch_poll_provider_done - ATRN or ETRN answered, or it went wrong */
static void
fetch_poll_provider_done(void *arg, const struct fetch_provider_result *r)
{
	struct fetch_poll *p = arg;
	struct fetch_relay_params rp;
	struct io *io = r->io;

	(void)strlcpy(p->result.mech, r->mech, sizeof(p->result.mech));
	p->result.etrn_started = r->etrn_started;
	p->result.etrn_pending = r->etrn_pending;
	if (r->reversed && (p->local == NULL || p->stopping)) {
		/* nobody to take the mail: hang up, the provider keeps it */
		io_free(&io);
		if (!p->local_lost)
			fetch_poll_fail(p, FETCH_EXIT_SERVER,
			    "stopped by a signal");
	} else if (r->reversed) {
		p->result.reversed = 1;
		memset(&rp, 0, sizeof(rp));
		rp.hostname = p->hostname;
		rp.provider_addr = r->addr;
		rp.tls = r->tls;
		rp.timeout_ms = p->pp.timeout_ms;
		rp.local = &p->lp;
		rp.local_connections = p->lanes;
		fetch_poll_enter_state(p, FETCH_POLL_STATE_RELAY);
		/* the relay takes both connections */
		p->relay = fetch_relay_start(io, p->local, &rp,
		    fetch_poll_relay_done, p);
		p->local = NULL;
		fetch_provider_free(&p->provider);	/* r goes with it */
		return;
	} else if (r->error[0] != '\0')
		fetch_poll_fail(p, r->exit, "%s", r->error);
	else
		p->result.exit = r->exit;
	fetch_provider_free(&p->provider);
	if (p->local == NULL) {
		fetch_poll_end(p);
		return;
	}
	fetch_poll_enter_state(p, FETCH_POLL_STATE_QUIT);
	if (fetch_local_quit(p->local) == -1) {
		fetch_local_free(&p->local);
		fetch_poll_end(p);
	}
}

/* fetch_poll_provider - ask the provider */
static void
fetch_poll_provider(struct fetch_poll *p)
{
	fetch_poll_enter_state(p, FETCH_POLL_STATE_PROVIDER);
	p->provider = fetch_provider_start(&p->pp, fetch_poll_provider_done,
	    p);
}

/* ---- the end ---- */

/* fetch_poll_posted - on the loop: hand the result to the owner */
static void
fetch_poll_posted(void *arg)
{
	struct fetch_poll *p = arg;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	p->result.seconds = (double)(now.tv_sec - p->started.tv_sec) +
	    (double)(now.tv_nsec - p->started.tv_nsec) / 1e9;
	p->done(p->arg, &p->result);	/* may free p */
}

/* fetch_poll_end - nothing is open any more: report */
static void
fetch_poll_end(struct fetch_poll *p)
{
	if (p->posted)
		return;
	p->posted = 1;
	fetch_poll_enter_state(p, FETCH_POLL_STATE_END);
	if (loop_post(fetch_poll_posted, p) == -1)
		fetch_poll_posted(p);
}

/* ---- the interface ---- */

/* fetch_poll_start - one pickup; done() follows from the loop */
struct fetch_poll *
fetch_poll_start(const struct fetch_poll_params *prm, fetch_poll_done_fn done,
    void *arg)
{
	struct fetch_poll *p = xcalloc(1, sizeof(*p));

	p->pp = prm->provider;
	p->lp = prm->local;
	p->lanes = prm->local_connections;
	p->hostname = xstrdup(prm->hostname);
	p->pp.helo = p->hostname;
	p->lp.helo = p->hostname;
	p->done = done;
	p->arg = arg;
	p->result.exit = FETCH_EXIT_SERVER;
	clock_gettime(CLOCK_MONOTONIC, &p->started);
	if (p->pp.etrn) {
		p->state = FETCH_POLL_STATE_PROVIDER;
		fetch_poll_provider(p);
		return p;
	}
	p->state = FETCH_POLL_STATE_LOCAL;
	p->local = fetch_local_start(&p->lp, &fetch_poll_local_ops, p);
	return p;
}

/* fetch_poll_stop - a signal: drop it before the turn, finish after */
void
fetch_poll_stop(struct fetch_poll *p)
{
	if (p == NULL || p->posted || p->stopping)
		return;
	p->stopping = 1;
	log_info("event=poll-stop state=%s", fetch_poll_state_names[p->state]);
	switch (p->state) {
	case FETCH_POLL_STATE_LOCAL:
		fetch_poll_fail(p, FETCH_EXIT_SERVER, "stopped by a signal");
		if (fetch_local_quit(p->local) == -1) {
			fetch_local_free(&p->local);
			fetch_poll_end(p);
			return;
		}
		fetch_poll_enter_state(p, FETCH_POLL_STATE_QUIT);
		return;
	case FETCH_POLL_STATE_PROVIDER:
		fetch_poll_fail(p, FETCH_EXIT_SERVER, "stopped by a signal");
		fetch_provider_abort(p->provider);
		return;
	case FETCH_POLL_STATE_RELAY:
		fetch_relay_stop(p->relay);
		return;
	case FETCH_POLL_STATE_QUIT:
	case FETCH_POLL_STATE_END:
	case FETCH_POLL_STATE_COUNT:
		return;
	}
}

/* fetch_poll_abort - a second signal: close everything now */
void
fetch_poll_abort(struct fetch_poll *p)
{
	if (p == NULL || p->posted)
		return;
	fetch_poll_fail(p, FETCH_EXIT_SERVER, "interrupted");
	switch (p->state) {
	case FETCH_POLL_STATE_PROVIDER:
		fetch_provider_abort(p->provider);
		return;
	case FETCH_POLL_STATE_RELAY:
		fetch_relay_abort(p->relay);
		return;
	case FETCH_POLL_STATE_LOCAL:
	case FETCH_POLL_STATE_QUIT:
		fetch_local_free(&p->local);
		fetch_poll_end(p);
		return;
	case FETCH_POLL_STATE_END:
	case FETCH_POLL_STATE_COUNT:
		return;
	}
}

/* fetch_poll_free - release; the caller's pointer is cleared */
void
fetch_poll_free(struct fetch_poll **pp)
{
	struct fetch_poll *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	fetch_local_free(&p->local);
	fetch_provider_free(&p->provider);
	fetch_relay_free(&p->relay);
	free(p->hostname);
	free(p);
}
