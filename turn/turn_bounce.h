/*
 * NAME
 *	turn_bounce 3h - queue the DSNs that a message's outcomes call for
 * SYNOPSIS
 *	#include "turn_bounce.h"
 *
 *	enum turn_bounce_status turn_bounce_queue(const struct turn_bounce *b,
 *	    char *why, size_t whysz);
 *	enum queue_status turn_bounce_domain(struct queue *q,
 *	    const char *route, struct queue_error *err);
 * DESCRIPTION
 *	turn_bounce_queue() reads message b->qid from the store, keeps the
 *	recipients of b->rcpts that want a DSN of b->kind (RFC 3461
 *	NOTIFY, turn_dsn_wanted()), builds one DSN for them (turn_dsn(3))
 *	with the stored message as RET asks, and enqueues it in the DSN
 *	domain, TURN_BOUNCE_DOMAIN, from the null sender to the message's
 *	sender. It runs on a worker thread: every call is a store call.
 *
 *	A message from the null sender is never bounced to it (RFC 5321
 *	section 4.5.5). When such a message fails (a DSN that could not be
 *	delivered, for instance), the report goes to b->postmaster
 *	instead, a double bounce, unless the recipient that failed is the
 *	postmaster itself, or no postmaster is set: then nothing is sent
 *	and TURN_BOUNCE_LOST says so, for the caller's log. That ends any
 *	loop: a double bounce never makes a third message.
 *
 *	Callers record the outcomes (queue_record()) after the DSN is
 *	queued, so that a crash in between sends a DSN twice rather than
 *	never.
 *
 *	TURN_BOUNCE_DOMAIN is a name under .invalid (RFC 2606), so that no
 *	customer can own it; its owner "(system)" is no valid account name,
 *	so no ATRN can fetch it, and its ETRN is off. turn_bounce_domain()
 *	creates it when missing and sets its route (bounce_relay, or "mx":
 *	the DSN goes to the MX of its recipient's domain).
 * SEE ALSO
 *	turn_dsn(3), queue(3), RFC 3461, RFC 3464, RFC 5321 section 6.1
 */
#ifndef TURN_TURN_BOUNCE_H
#define TURN_TURN_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"
#include "turn_dsn.h"

#define TURN_BOUNCE_DOMAIN	"dsn.odmr.invalid"
#define TURN_BOUNCE_OWNER	"(system)"

enum turn_bounce_status {
	TURN_BOUNCE_QUEUED = 0,	/* a DSN is in the store */
	TURN_BOUNCE_NONE,	/* nobody asked for one (NOTIFY) */
	TURN_BOUNCE_LOST,	/* null sender, and no postmaster to tell */
	TURN_BOUNCE_ERROR,	/* the store or the builder failed: why */
};

struct turn_bounce_rcpt {
	uint32_t	 index;		/* struct queue_rcpt.index */
	const char	*action;	/* NULL: the kind's */
	const char	*status;	/* NULL: from diagnostic */
	const char	*diagnostic;	/* NULL: the stored last_error */
	const char	*remote_mta;	/* or NULL */
};

struct turn_bounce {
	struct queue	*queue;
	const char	*reporting_mta;	/* our hostname */
	const char	*postmaster;	/* double bounces; NULL or "": none */
	uint64_t	 qid;
	enum turn_dsn_kind kind;
	const struct turn_bounce_rcpt *rcpts;
	size_t		 nrcpt;
	uint64_t	 now;
	uint64_t	 expires;	/* delay DSNs: when it gives up */
	uint64_t	 dsn_qid;	/* out: the DSN's queue id */
	int		 double_bounce;	/* out: it went to the postmaster */
};

enum turn_bounce_status turn_bounce_queue(struct turn_bounce *,
	    char *why, size_t whysz);
enum queue_status turn_bounce_domain(struct queue *, const char *route,
	    struct queue_error *);
int	turn_bounce_is_dsn_domain(const char *key);

#endif
