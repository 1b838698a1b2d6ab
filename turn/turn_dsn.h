/*
 * NAME
 *	turn_dsn 3h - delivery status notifications (RFC 3461, 3464, 6522)
 * SYNOPSIS
 *	#include "turn_dsn.h"
 * DESCRIPTION
 *	A DSN tells the sender of a message what happened to some of its
 *	recipients: failed, delayed, delivered or relayed. turn_dsn_new()
 *	takes the envelope and the recipients to report, feeds the stored
 *	original message in with turn_dsn_original(), in chunks of any
 *	size, and turn_dsn_finish() appends the whole DSN to a buffer: a
 *	multipart/report message with CRLF line ends, no line over 998
 *	octets, ready to be enqueued from the null sender to msg->sender.
 *	Nothing is copied from params by reference: the caller may free
 *	the message and the recipients once turn_dsn_new() returns.
 *
 *	Every recipient given is reported; the caller chooses them, with
 *	turn_dsn_wanted() for the RFC 3461 NOTIFY rules. A turn_dsn_rcpt
 *	that leaves diagnostic or last_attempt unset takes them from its
 *	queue_rcpt (last_error, last_attempt). A NULL action is the one of
 *	the kind ("failed", "delayed", "delivered"); a NULL status comes
 *	from the diagnostic's enhanced code (turn_dsn_status_from_reply()),
 *	else it is the default of the action's class: 5.0.0, 4.0.0, 2.0.0.
 *
 *	What is returned of the original: a failure DSN returns the whole
 *	message (message/rfc822) unless RET=HDRS was asked for, the
 *	message is longer than return_max octets (0 means
 *	TURN_DSN_RETURN_DEFAULT), or it is not fit to be enclosed as is (a
 *	NUL, a bare CR, a line over 998 octets); then, and for delay and
 *	success DSNs, only its header section (text/rfc822-headers). The
 *	human-readable part says which, and why. Without any
 *	turn_dsn_original() call the DSN has two parts only. msg->body is
 *	not consulted: the octets themselves decide whether the message
 *	can be enclosed, and whether the DSN is 8-bit.
 *
 *	SMTPUTF8 (RFC 6533): when the original was received with SMTPUTF8
 *	and the report would carry UTF-8 (an address that is not ASCII,
 *	8-bit octets in the returned header section), the DSN uses the
 *	global types: report-type=global-delivery-status,
 *	message/global-delivery-status, message/global or
 *	message/global-headers. turn_dsn_smtputf8() then says that it must
 *	be sent with SMTPUTF8. Otherwise a non-ASCII address is written in
 *	the utf-8-addr-xtext form of RFC 6533 section 3, which is ASCII.
 *	turn_dsn_8bit() says that the DSN holds 8-bit octets and must be
 *	sent with BODY=8BITMIME (or be downgraded with turn_mime(3) for a
 *	next hop without 8BITMIME).
 *
 *	turn_dsn_new() returns NULL and an error for the null sender (no
 *	DSN is ever sent to <>, RFC 5321 section 4.5.5), for no recipients,
 *	and for arguments it cannot put in a DSN safely (control
 *	characters in an address, a bad status, a bad reporting MTA name).
 *	Error strings stay valid until the next call in the same thread.
 *	Nothing is logged.
 */
#ifndef TURN_TURN_DSN_H
#define TURN_TURN_DSN_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct queue_msg;
struct queue_rcpt;

#define TURN_DSN_RETURN_DEFAULT	(1024 * 1024)	/* return_max 0: 1 MiB */
#define TURN_DSN_STATUS_LEN	16	/* "5.123.123" and its NUL fit */

enum turn_dsn_kind {
	TURN_DSN_FAILURE,
	TURN_DSN_DELAY,
	TURN_DSN_SUCCESS,
};

/* what the third part of a finished DSN holds */
enum turn_dsn_return {
	TURN_DSN_RETURN_NONE,		/* no original was fed: two parts */
	TURN_DSN_RETURN_HEADERS,	/* text/rfc822-headers */
	TURN_DSN_RETURN_FULL,		/* message/rfc822 */
};

struct turn_dsn_rcpt {
	const struct queue_rcpt *rcpt;	/* addr, orcpt, last_error, ... */
	const char	*action;	/* "failed", "delayed", "delivered",
					   "relayed", "expanded"; NULL: the kind's */
	const char	*status;	/* "5.1.1"; NULL: from the diagnostic */
	const char	*diagnostic;	/* "550 5.1.1 no such user"; NULL:
					   rcpt->last_error */
	const char	*remote_mta;	/* next hop's host name, or NULL */
	uint64_t	 last_attempt;	/* unix time; 0: rcpt->last_attempt */
};

struct turn_dsn_params {
	const char	*reporting_mta;	/* our host name */
	const struct queue_msg *msg;	/* sender, envid, ret, arrival, id */
	enum turn_dsn_kind kind;
	const struct turn_dsn_rcpt *rcpts;
	size_t		 nrcpt;
	uint64_t	 now;		/* Date:, Message-ID */
	uint64_t	 expires;	/* delay DSN: Will-Retry-Until; 0: none */
	size_t		 return_max;	/* 0: TURN_DSN_RETURN_DEFAULT */
	uint64_t	 nonce;		/* unique per DSN, in the boundary and
					   Message-ID; 0: from getrandom(2) */
};

struct turn_dsn;

struct turn_dsn *turn_dsn_new(const struct turn_dsn_params *,
	    const char **error_r);
int	turn_dsn_original(struct turn_dsn *, const void *data, size_t len,
	    const char **error_r);
int	turn_dsn_finish(struct turn_dsn *, struct buf *out,
	    const char **error_r);
void	turn_dsn_free(struct turn_dsn **);

/* after turn_dsn_finish() */
int	turn_dsn_8bit(const struct turn_dsn *);
int	turn_dsn_smtputf8(const struct turn_dsn *);
enum turn_dsn_return turn_dsn_returned(const struct turn_dsn *);
const char *turn_dsn_boundary(const struct turn_dsn *);

int	turn_dsn_wanted(const struct queue_rcpt *, enum turn_dsn_kind);
int	turn_dsn_status_from_reply(const char *reply,
	    char out[TURN_DSN_STATUS_LEN]);
const char *turn_dsn_kind_name(enum turn_dsn_kind);
const char *turn_dsn_return_name(enum turn_dsn_return);

#endif
