/*
 * NAME
 *	turn_msg 3h - one queued message, made ready for one customer
 * SYNOPSIS
 *	#include "turn_msg.h"
 * DESCRIPTION
 *	turn_msg_load() runs on a work pool thread (it blocks on the
 *	store). It reads message qid with queue_get(), keeps the
 *	recipients that are still queued (not held) in one of the given
 *	customer domains, and decides, from what the customer announced in
 *	EHLO, whether the message can go at all:
 *	- SMTPUTF8 mail for a customer without SMTPUTF8: 5.6.7 (RFC 6531
 *	  section 3.2; RFC 6533 names X.6.7 for it, as Postfix does);
 *	- BODY=BINARYMIME for a customer without BINARYMIME and CHUNKING:
 *	  5.6.3 "conversion required but not supported" (RFC 3463): RFC
 *	  3030 section 3 forbids sending it any other way, and binary
 *	  content has no 7-bit form that this engine can make;
 *	- larger than the customer's SIZE: 5.3.4 (RFC 1870 section 6.1,
 *	  RFC 3463 "message too big for system");
 *	- 8-bit text for a customer without 8BITMIME is converted with
 *	  turn_mime_downgrade() (RFC 6152 section 3), and is failed with
 *	  5.6.3 when that is not possible.
 *	Otherwise it reads the body and makes the octets that go on the
 *	wire: the body itself for BDAT (when the customer offers
 *	CHUNKING), or dot-stuffed DATA text ending in "." CRLF.
 *
 *	A message refused by those rules has refuse[] set: every
 *	recipient fails with that text, nothing is sent. A message with no
 *	recipient left to deliver (held, delivered or deleted meanwhile)
 *	has nrcpt 0; a message gone from the store has status
 *	QUEUE_NOTFOUND. Any other status is a store error (err).
 *
 *	turn_msg_outcome() sets a recipient's outcome once; the first
 *	outcome wins. turn_msg_outcomes() gives the array queue_record()
 *	takes, pointing into the message (valid until turn_msg_free()).
 * SEE ALSO
 *	turn_session(3), turn_proto(3), turn_mime(3), queue(3)
 */
#ifndef TURN_TURN_MSG_H
#define TURN_TURN_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "queue.h"
#include "turn_proto.h"

#define TURN_MSG_REFUSE_MAX	256

struct turn_msg_rcpt {
	char		*addr;
	char		*orcpt;
	unsigned	 notify;
	uint32_t	 index;		/* struct queue_rcpt.index */
	int		 accepted;	/* RCPT got 2xx */
	int		 has_outcome;
	enum queue_outcome_kind kind;
	char		*text;		/* the reply, or why */
};

struct turn_msg {
	uint64_t	 qid;
	char		 id[QUEUE_ID_LEN + 1];
	enum queue_status status;
	struct queue_error err;
	char		*sender;
	char		*envid;
	enum queue_ret	 ret;
	enum queue_body_type body;	/* as stored */
	enum queue_body_type wire_body;	/* as announced in MAIL */
	int		 smtputf8;
	int		 downgraded;	/* 8-bit text converted to 7-bit */
	uint64_t	 stored_size;
	uint64_t	 size;		/* octets sent, before dot-stuffing */
	size_t		 nrcpt;
	struct turn_msg_rcpt *rcpt;
	int		 bdat;		/* send with BDAT, else DATA */
	struct buf	 text;		/* the octets after DATA or BDAT */
	char		 refuse[TURN_MSG_REFUSE_MAX];
	struct queue_outcome *outcomes;	/* turn_msg_outcomes() */
};

struct turn_msg	*turn_msg_load(struct queue *, uint64_t qid,
		    char *const *domains, size_t ndomains,
		    const struct turn_proto_ext *);
void		 turn_msg_outcome(struct turn_msg *, size_t i,
		    enum queue_outcome_kind, const char *text);
void		 turn_msg_defer_failed(struct turn_msg *, const char *why);
int		 turn_msg_has_kind(const struct turn_msg *,
		    enum queue_outcome_kind);
size_t		 turn_msg_outcomes(struct turn_msg *,
		    const struct queue_outcome **);
void		 turn_msg_free(struct turn_msg **);

#endif
