/*
 * NAME
 *	fetch_poll 3h - one pickup of odmr-fetch: the local MTA, the
 *	provider, the relay
 * SYNOPSIS
 *	#include "fetch_poll.h"
 *
 *	p = fetch_poll_start(&params, done, arg);
 *	... done(arg, &result)
 *	fetch_poll_free(&p);
 * DESCRIPTION
 *	One pickup, as a small state machine over the three others:
 *
 *	LOCAL	  connect to the local MTA and greet it (fetch_local 3).
 *		  If it is not there, the pickup ends with exit 4 before
 *		  the provider is even contacted: mail is only asked for
 *		  when it can be taken, and the provider keeps everything.
 *	PROVIDER  connect, secure, authenticate, ATRN (fetch_provider 3).
 *		  If the local MTA goes away meanwhile, the provider
 *		  connection is dropped and the exit is 4.
 *	RELAY	  after the provider's 250: the reversed session
 *		  (fetch_relay 3), until the provider's QUIT.
 *	QUIT	  no mail, refused or failed: QUIT to the local MTA.
 *
 *	With params.etrn the LOCAL state is skipped: the provider opens a
 *	connection of its own to the site's route (RFC 1985).
 *
 *	done() is called once, from the loop, with SPEC.md's exit status
 *	(the provider's for everything up to the turn, the relay's after
 *	it, 4 for a local MTA that is not there) and the counts for the
 *	log line of the pickup.
 *
 *	fetch_poll_stop() (SIGTERM, SIGINT): before the turn the pickup
 *	is dropped (the provider keeps the mail); in the relay, the
 *	message in progress is finished first. fetch_poll_abort(), a
 *	second signal: everything is closed at once.
 * SEE ALSO
 *	fetch_local(3), fetch_provider(3), fetch_relay(3), odmr-fetch(1)
 */
#ifndef TURN_FETCH_POLL_H
#define TURN_FETCH_POLL_H

#include "fetch.h"
#include "fetch_local.h"
#include "fetch_provider.h"

enum fetch_poll_state {
	FETCH_POLL_STATE_LOCAL = 0,
	FETCH_POLL_STATE_PROVIDER,
	FETCH_POLL_STATE_RELAY,
	FETCH_POLL_STATE_QUIT,
	FETCH_POLL_STATE_END,
	FETCH_POLL_STATE_COUNT,
};
extern const char *const fetch_poll_state_names[FETCH_POLL_STATE_COUNT];
extern const char *const fetch_poll_exit_names[];

struct fetch_poll_params {
	struct fetch_provider_params provider;
	struct fetch_local_params local;	/* unused with ETRN */
	const char	*hostname;
	unsigned	 local_connections;	/* at most, for the relay */
};

struct fetch_poll_result {
	enum fetch_exit	 exit;
	int		 reversed;
	unsigned	 messages;
	unsigned long long bytes;
	unsigned	 messages_refused;
	unsigned	 rcpt_refused;
	unsigned	 rcpt_deferred;
	unsigned	 local_connections;	/* to the local MTA, after ATRN */
	unsigned	 etrn_started;
	unsigned long	 etrn_pending;
	double		 seconds;
	char		 mech[32];
	char		 error[FETCH_ERROR_MAX];
};

typedef void (*fetch_poll_done_fn)(void *arg, const struct fetch_poll_result *);

struct fetch_poll;

struct fetch_poll *fetch_poll_start(const struct fetch_poll_params *,
	    fetch_poll_done_fn, void *arg);
void	fetch_poll_stop(struct fetch_poll *);
void	fetch_poll_abort(struct fetch_poll *);
void	fetch_poll_free(struct fetch_poll **);

#endif
