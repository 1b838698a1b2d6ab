/*
 * NAME
 *	fetch_local 3h - odmr-fetch's client of the site's own MTA (SMTP
 *	or LMTP)
 * SYNOPSIS
 *	#include "fetch_local.h"
 *
 *	l = fetch_local_start(&params, &ops, arg);
 *	... ops.ready(arg): greeted, EHLO (or LHLO) answered
 *	fetch_local_cmd(l, "MAIL FROM:<%s>", addr);
 *	... ops.reply(arg, reply): one per command, in order
 *	fetch_local_text(l, data, len);  fetch_local_expect(l, 1);
 *	fetch_local_quit(l);
 *	... ops.closed(arg)
 *	fetch_local_free(&l);
 * DESCRIPTION
 *	One connection to the local MTA: SMTP over TCP (params.host and
 *	params.port, --deliver-to) or LMTP (RFC 2033) over a UNIX-domain
 *	socket (params.path, --lmtp). It connects, takes the 220 greeting,
 *	sends EHLO (LHLO for LMTP; HELO when an SMTP server refuses EHLO
 *	with a 5xx) and reports ops.ready() with the server's extensions
 *	(fetch_local_ext()).
 *
 *	fetch_local_set_ops() hands the connection to another owner (the
 *	relay, once the provider has turned the session round).
 *
 *	From then on the owner drives it: fetch_local_cmd() sends one
 *	command line and counts one reply as owed; fetch_local_text()
 *	sends raw message text, which owes nothing; fetch_local_expect()
 *	counts replies owed for text already sent (one after the end of
 *	DATA for SMTP, one per accepted recipient for LMTP). Each reply
 *	owed comes back through ops.reply() in order. Commands may be sent
 *	before earlier replies have come (RFC 2920): whether that is
 *	allowed is the owner's decision, from FETCH_EXT_PIPELINING.
 *	fetch_local_owed() counts the replies still owed, and
 *	fetch_local_queued() the output not yet handed to the kernel;
 *	ops.drained() says it has all gone (for flow control).
 *
 *	The state machine (an enum, a names table, a description table
 *	for error texts, fetch_local_enter_state() logging old -> new)
 *	waits with a timeout whenever a reply is owed or output is stuck.
 *	ops.lost() reports, once, that the connection could not be made
 *	or broke: refused, timed out, closed, a 421, a reply that was not
 *	asked for or not a reply at all. Before ops.ready() it means the
 *	local MTA is not there. fetch_local_quit() sends QUIT; ops.closed()
 *	follows once the 221 came (or the connection closed, or timed
 *	out). After lost() or closed() no callback comes any more; the
 *	owner calls fetch_local_free(), which may be done from inside
 *	either of them.
 * DIAGNOSTICS
 *	Log lines (debug): state changes and every line exchanged, keyed
 *	by "local=". Errors go to the owner through ops.lost().
 * SEE ALSO
 *	fetch_relay(3), io(3), RFC 5321, RFC 2033, RFC 2920
 */
#ifndef TURN_FETCH_LOCAL_H
#define TURN_FETCH_LOCAL_H

#include <stddef.h>

#include "fetch_reply.h"

enum fetch_local_state {
	FETCH_LOCAL_STATE_CONNECT = 0,
	FETCH_LOCAL_STATE_GREETING,
	FETCH_LOCAL_STATE_EHLO,
	FETCH_LOCAL_STATE_HELO,
	FETCH_LOCAL_STATE_READY,
	FETCH_LOCAL_STATE_QUIT,
	FETCH_LOCAL_STATE_CLOSED,
	FETCH_LOCAL_STATE_COUNT,
};
extern const char *const fetch_local_state_names[FETCH_LOCAL_STATE_COUNT];

struct fetch_local_params {
	const char	*host;		/* SMTP: host and port */
	unsigned	 port;
	const char	*path;		/* LMTP: a UNIX-domain socket */
	const char	*helo;		/* our name in EHLO/LHLO */
	unsigned	 timeout_ms;	/* every wait for a reply */
};

struct fetch_local_ops {
	void	(*ready)(void *arg);
	void	(*reply)(void *arg, const struct fetch_reply *);
	void	(*drained)(void *arg);
	void	(*lost)(void *arg, const char *why);
	void	(*closed)(void *arg);
};

struct fetch_local;

struct fetch_local *fetch_local_start(const struct fetch_local_params *,
	    const struct fetch_local_ops *, void *arg);
void	fetch_local_set_ops(struct fetch_local *,
	    const struct fetch_local_ops *, void *arg);
int	fetch_local_cmd(struct fetch_local *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	fetch_local_text(struct fetch_local *, const void *, size_t);
void	fetch_local_expect(struct fetch_local *, unsigned n);
unsigned fetch_local_owed(const struct fetch_local *);
size_t	fetch_local_queued(const struct fetch_local *);
const struct fetch_ext *fetch_local_ext(const struct fetch_local *);
int	fetch_local_lmtp(const struct fetch_local *);
const char *fetch_local_name(const struct fetch_local *);
int	fetch_local_quit(struct fetch_local *);
void	fetch_local_free(struct fetch_local **);

#endif
