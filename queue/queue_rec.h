/*
 * NAME
 *	queue_rec 3h - on-disk record encoding for the store
 * DESCRIPTION
 *	Messages and domains are stored as versioned binary records built
 *	with lib/pack. The decoders validate every field and return -1 on a
 *	corrupt record instead of trusting it; they are fuzzed
 *	(tests/fuzz/fuzz-rec.c). Nothing here knows about Berkeley DB, so a
 *	future backend can reuse the same formats.
 */
#ifndef QUEUE_QUEUE_REC_H
#define QUEUE_QUEUE_REC_H

#include "buf.h"
#include "queue.h"

#define QUEUE_REC_MSG_VERSION	2	/* 2 added delay_warned; 1 is read */
#define QUEUE_REC_DOM_VERSION	2	/* 2 added retry; 1 is read too */
#define QUEUE_REC_MAX_RCPT	100000
#define QUEUE_REC_MAX_OWNERS	1000

void	queue_rec_msg_encode(struct buf *, const struct queue_msg *);
int	queue_rec_msg_decode(const void *, size_t, struct queue_msg *);
void	queue_rec_dom_encode(struct buf *, const struct queue_domain *);
int	queue_rec_dom_decode(const void *, size_t, struct queue_domain *);
void	queue_msg_clear(struct queue_msg *);

#endif
