/*
 * NAME
 *	turn_flush 3h - deliver one customer domain over a new connection
 *	to its route (ETRN, odmrctl flush)
 * SYNOPSIS
 *	#include "turn_flush.h"
 *
 *	struct turn_flush *turn_flush_start(const struct turn_flush_params *p,
 *	    const char **error_r);
 *	void turn_flush_stop(struct turn_flush *f);
 *	void turn_flush_abort(struct turn_flush **fp);
 * DESCRIPTION
 *	turn_flush_start() runs one flush of p->domain, RFC 1985's "start
 *	the queue" for one node, as a small state machine:
 *	- claim: queue_claim() on p->pool, so that only one flush (or one
 *	  ATRN session) delivers a domain at a time; a claim held by
 *	  someone else ends the flush with TURN_FLUSH_BUSY;
 *	- route: "mx" asks DNS for the domain's MX hosts on p->pool
 *	  (turn_mx(3): preference order, A/AAAA fallback); otherwise the
 *	  route is a list of HOST[:PORT] (port 25 by default), tried in
 *	  order, host names resolved by io_connect();
 *	- connect, each address at most p->connect_timeout_ms;
 *	- deliver: turn_session(3) with the domain's TLS policy; the host
 *	  name is given for SNI and, with TLS_MODE_VERIFY, checked;
 *	- record: when the delivery did not complete (no route, every
 *	  address refused, TLS required but impossible, connection lost),
 *	  every recipient still queued gets a deferred attempt with the
 *	  reason as its last error, so that "odmrctl queue DOMAIN" shows
 *	  why the mail is still there;
 *	- unclaim, the pickup time recorded when the delivery completed.
 *
 *	The next address is tried when a connection fails or the server
 *	does not greet with 220 (RFC 5321 section 5.1). Under TLS_MODE_MAY
 *	a failed TLS handshake is retried once in plaintext on the same
 *	address (RFC 7435 opportunistic security); under TLS_MODE_ENCRYPT
 *	and TLS_MODE_VERIFY it never is: the mail stays queued.
 *
 *	p->done(p->arg, result) is called once, later, from the loop. The
 *	flush is gone when it returns. turn_flush_stop() lets the message
 *	in progress finish, then QUITs; turn_flush_abort() closes the
 *	connection at once (the message in progress stays queued) and
 *	done follows from the loop; *fp is set to NULL.
 * DIAGNOSTICS
 *	One key=value line per event with session=ID: event=flush-start,
 *	event=flush-route (the addresses found), event=flush-connect-error,
 *	event=flush-busy, event=flush-deferred, event=flush-end. The
 *	delivery's own lines come from turn_session(3).
 * SEE ALSO
 *	turn_session(3), turn_mx(3), queue(3), RFC 1985, RFC 5321, RFC 7435
 */
#ifndef TURN_TURN_FLUSH_H
#define TURN_TURN_FLUSH_H

#include <stdint.h>

#include "queue.h"
#include "tls.h"
#include "turn_session.h"

#define TURN_FLUSH_HOLDER_MAX	QUEUE_HOLDER_MAX
#define TURN_FLUSH_ROUTE_MAX	1024	/* octets of a --route value */

enum turn_flush_status {
	TURN_FLUSH_DONE = 0,	/* delivered; nothing left (but 4xx) */
	TURN_FLUSH_BUSY,	/* another flush or ATRN holds the domain */
	TURN_FLUSH_FAILED,	/* no route, no connection, no TLS, lost */
	TURN_FLUSH_ERROR,	/* the store failed */
};

struct turn_flush_result {
	enum turn_flush_status status;
	struct turn_result turn;	/* the delivery's counters */
	char		 relay[IO_ADDR_MAX + 16];	/* last tried, or "" */
	char		 error[TURN_SESSION_ERROR_MAX];	/* why, or "" */
	char		 busy_holder[QUEUE_HOLDER_MAX];
	unsigned	 deferred_recorded;	/* recipients given the error */
};

struct turn_flush_params {
	struct queue	*queue;
	struct work_pool *pool;		/* store calls */
	struct work_pool *dns_pool;	/* MX lookups (they may wait for
					   seconds); NULL: pool */
	const char	*session_id;	/* for logs */
	const char	*helo_name;
	const char	*domain;	/* customer domain, key form */
	const char	*route;		/* "mx" or "HOST[:PORT][,...]" */
	enum tls_mode	 tls;		/* the domain's --tls */
	struct tls_ctx	*tls_ctx;	/* a client context for it, or NULL
					   when tls is TLS_MODE_NONE */
	const char	*dns_servers;	/* NULL or "": /etc/resolv.conf */
	unsigned	 connect_timeout_ms;
	unsigned	 timeout_ms[TURN_STATE_COUNT];	/* 0: the default */
	int		 dsn;		/* queue DSNs (turn_session(3)) */
	const char	*postmaster;	/* double bounces */
	const char	*rcpt_domain;	/* deliver only the mail for this
					   domain, to its MX when the route
					   is "mx" (the DSN domain) */
	const char	*holder;	/* claim holder text */
	uint64_t	 claim_ttl;	/* seconds */
	void		(*done)(void *arg, const struct turn_flush_result *);
	void		*arg;
};

struct turn_flush;

struct turn_flush *turn_flush_start(const struct turn_flush_params *,
	    const char **error_r);
void	turn_flush_stop(struct turn_flush *);
void	turn_flush_abort(struct turn_flush **);
const char *turn_flush_status_name(enum turn_flush_status);

#endif
