/*
 * NAME
 *	turn_session 3h - the SMTP client that delivers customer domains'
 *	queues over one connection (ATRN role reversal, ETRN)
 * SYNOPSIS
 *	#include "turn_session.h"
 *
 *	struct turn_session *turn_session_start(struct io *io,
 *	    const struct turn_params *p, const char **error_r);
 *	void turn_session_stop(struct turn_session *s);
 *	void turn_session_abort(struct turn_session **sp);
 * DESCRIPTION
 *	turn_session_start() takes over a connected io (accepted and
 *	answered "250" to ATRN, RFC 2645; or opened with io_connect() for
 *	ETRN, RFC 1985) and becomes the SMTP client on it: it waits for
 *	the customer's 220, sends EHLO (HELO when EHLO gets 5xx), and
 *	delivers every queued (not held) recipient of p->domains, message
 *	by message in arrival order (with PIPELINING, several transactions
 *	on the wire at once, each opened with RSET), then sends QUIT. The
 *	caller must have claimed the domains (queue_claim()) and releases
 *	them in done.
 *
 *	Every store call runs on p->pool; the loop never blocks. The
 *	outcomes are recorded (queue_record()) on the pool in batches while
 *	the next messages are sent, at most TURN_RECORDS_MAX messages
 *	behind, so the store's disk flush does not stall the customer; all
 *	are durable before done is called, and a 452 that puts a message
 *	back is waited for before QUIT. A crash may so deliver a message
 *	twice, never zero times. A recipient never tried keeps its
 *	attempts.
 *
 *	p->done(p->arg, result) is called exactly once, later, from the
 *	loop (never from inside turn_session_start()), once every store
 *	job of the session has finished. The session is gone when done
 *	returns. If result->io_gone is set, the engine closed and freed
 *	the io (the connection broke, timed out or was aborted); otherwise
 *	the io is the caller's again, after the customer's 221 or its
 *	timeout: the caller must set its own callback or io_free() it
 *	before done returns (until then a no-op callback is installed).
 *	The io's timeout is left at the QUIT state's, its low-water mark
 *	at 0 and its input bound at IO_INPUT_MAX; TCP_NODELAY stays on.
 *	The session pointer is invalid once done has been called.
 *
 *	turn_session_stop() asks the session to QUIT after the message in
 *	progress (a SIGTERM that lets transfers finish). turn_session_abort()
 *	closes the connection at once: the message in progress stays
 *	queued (its accepted recipients are recorded as deferred), done
 *	follows with io_gone set, and *sp is set to NULL.
 *
 *	With p->tls_policy other than TLS_MODE_NONE the engine sends
 *	STARTTLS when the EHLO reply offers it, discards anything the
 *	customer sent before the handshake, and sends EHLO again inside
 *	TLS (RFC 3207 section 4.2). Under TLS_MODE_MAY a customer without
 *	STARTTLS (or refusing it with a reply) gets the mail in plaintext;
 *	under TLS_MODE_ENCRYPT and TLS_MODE_VERIFY nothing is sent without
 *	TLS: the session QUITs (or, when the handshake failed, closes) with
 *	result->error saying why, and result->tls_failed set.
 *
 *	p->timeout_ms[state] is how long each state may wait for the
 *	customer; 0 takes turn_session_timeout_default[state] (RFC 5321
 *	section 4.5.3.2: greeting 5 min, MAIL 5 min, RCPT 5 min, DATA 2
 *	min, each text block 3 min, end of text 10 min; a BDAT chunk is
 *	taken as a text block, and BDAT LAST as the end of the text).
 *
 *	turn_session_start() returns NULL, without calling done and
 *	without touching io, only when p is unusable (no domain, a domain
 *	that is not a valid name, no helo name); *error_r then says why.
 * DIAGNOSTICS
 *	One key=value line per event, each with session=ID: event=turn-start,
 *	event=turn-ehlo (the customer's extensions), one line per message
 *	and outcome (event=delivered, event=deferred or event=failed, with
 *	id=, to=<a>,<b>, relay=, size=, reply=), event=turn-lost when the
 *	session breaks, and event=turn-end with the counters.
 * SEE ALSO
 *	turn_msg(3), turn_proto(3), queue(3), io(3), work(3), RFC 2645,
 *	RFC 1985, RFC 5321, RFC 2920, RFC 3030, RFC 3461, RFC 1870,
 *	RFC 6152, RFC 6531
 */
#ifndef TURN_TURN_SESSION_H
#define TURN_TURN_SESSION_H

#include <stddef.h>

#include "io.h"
#include "queue.h"
#include "tls.h"
#include "work.h"

#define TURN_SESSION_ID_MAX	64
#define TURN_SESSION_ERROR_MAX	256

enum turn_state {
	TURN_STATE_GREETING = 0,	/* waiting for the 220 */
	TURN_STATE_EHLO,
	TURN_STATE_HELO,
	TURN_STATE_STARTTLS,		/* waiting for the 220 to STARTTLS */
	TURN_STATE_TLS,			/* the TLS handshake */
	TURN_STATE_LIST,		/* store: which messages are queued */
	TURN_STATE_LOAD,		/* store: read the next message */
	TURN_STATE_MAIL,
	TURN_STATE_RCPT,
	TURN_STATE_DATA,		/* waiting for 354 */
	TURN_STATE_TEXT,		/* writing the DATA text */
	TURN_STATE_DOT,			/* waiting for the reply to "." */
	TURN_STATE_BDAT,		/* BDAT chunks and their replies */
	TURN_STATE_LAST,		/* waiting for the reply to BDAT LAST */
	TURN_STATE_RSET,
	TURN_STATE_RESET,		/* waiting for the reply to the RSET
					   that opens a pipelined transaction */
	TURN_STATE_RECORD,		/* store: record the outcomes */
	TURN_STATE_QUIT,
	TURN_STATE_END,
	TURN_STATE_COUNT
};

extern const char *const turn_state_names[TURN_STATE_COUNT];
extern const char *const turn_state_descriptions[TURN_STATE_COUNT];
extern const unsigned turn_session_timeout_default[TURN_STATE_COUNT];

struct turn_result {
	/* each message handled counts once: deferred when a recipient
	 * stays queued, else delivered when one got 2xx, else failed */
	unsigned	 messages_delivered;
	unsigned	 messages_deferred;
	unsigned	 messages_failed;
	unsigned	 rcpt_delivered;
	unsigned	 rcpt_deferred;
	unsigned	 rcpt_failed;
	unsigned	 store_errors;		/* messages the store could
						   not give: still queued */
	int		 completed;	/* every message handled, QUIT sent */
	int		 io_gone;	/* the engine freed the io */
	int		 greeted;	/* the customer's 220 came */
	int		 tls;		/* the session ran inside TLS */
	int		 tls_failed;	/* STARTTLS was refused or its
					   handshake failed */
	char		 error[TURN_SESSION_ERROR_MAX];	/* why it stopped, "" */
};

struct turn_params {
	struct queue	*queue;
	struct work_pool *pool;		/* for every store call */
	const char	*session_id;	/* for logs: session=ID */
	const char	*helo_name;	/* our name in EHLO */
	char *const	*domains;	/* customer domains, already claimed */
	size_t		 ndomains;
	unsigned	 timeout_ms[TURN_STATE_COUNT];	/* 0: the default */
	/* STARTTLS (RFC 3207) for ETRN; ATRN leaves tls_policy at
	 * TLS_MODE_NONE. tls_ctx is a client context made for the policy
	 * (tls_client_new()); tls_name is the host name sent as SNI and,
	 * with TLS_MODE_VERIFY, checked against the certificate */
	enum tls_mode	 tls_policy;
	struct tls_ctx	*tls_ctx;
	const char	*tls_name;
	/* DSNs (turn_bounce(3)): with dsn set, a failed recipient's DSN
	 * (and a "relayed" one for NOTIFY=SUCCESS when the customer does
	 * not offer DSN) is queued before its outcome is recorded; a
	 * failure of a message from <> goes to postmaster */
	int		 dsn;
	const char	*postmaster;
	/* only the messages with a recipient in this (mail) domain: the
	 * node's DSNs go to the MX of each recipient's domain */
	const char	*rcpt_domain;
	void		(*done)(void *arg, const struct turn_result *);
	void		*arg;
};

struct turn_session;

struct turn_session *turn_session_start(struct io *, const struct turn_params *,
	    const char **error_r);
void	turn_session_stop(struct turn_session *);
void	turn_session_abort(struct turn_session **);

#endif
