/*
 * NAME
 *	fetch_relay_int 3h - what fetch_relay.c shares with
 *	fetch_relay_bdat.c
 * SYNOPSIS
 *	#include "fetch_relay_int.h"
 * DESCRIPTION
 *	Not for other modules, whose API is fetch_relay.h: the relay
 *	session (struct fetch_relay), its reply slots, the limits both
 *	files use, the reply FIFO and relaying helpers of fetch_relay.c
 *	that the BDAT code calls, and the BDAT entry points
 *	(fetch_relay_bdat.c) that the command table, the input loop and
 *	the local reply handler of fetch_relay.c call.
 *
 *	A command handler returns FETCH_RELAY_DONE, or FETCH_RELAY_WAIT
 *	before doing anything when it cannot decide before earlier local
 *	replies are in.
 * SEE ALSO
 *	fetch_relay(3), fetch_relay_bdat(3)
 */
#ifndef TURN_FETCH_RELAY_INT_H
#define TURN_FETCH_RELAY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#include "fetch.h"
#include "fetch_local.h"
#include "fetch_relay.h"
#include "fetch_reply.h"

#define FETCH_RELAY_REPLY_MAX	512	/* a reply line with CRLF, RFC 5321
					   4.5.3.1.5 */
#define FETCH_RELAY_EHLO_MAX	1024	/* our EHLO reply, all lines */
#define FETCH_RELAY_HIWAT	(1024 * 1024)	/* text waiting for the
						   local MTA: stop reading */
#define FETCH_RELAY_LOG_MAX	256	/* an address kept for the log */
#define FETCH_RELAY_LANES_MAX	FETCH_LANES_MAX

enum fetch_relay_verb {
	FETCH_RELAY_VERB_OWN = 0,	/* answered by us */
	FETCH_RELAY_VERB_MAIL,
	FETCH_RELAY_VERB_RCPT,
	FETCH_RELAY_VERB_DATA,
	FETCH_RELAY_VERB_DOT,
	FETCH_RELAY_VERB_RSET,
	FETCH_RELAY_VERB_RESET,		/* a local RSET for EHLO/HELO: the
					   provider gets our own reply */
	FETCH_RELAY_VERB_BDAT,		/* a chunk but the LAST, as BDAT */
	FETCH_RELAY_VERB_BDAT_DATA,	/* DATA for a first chunk: a 354
					   starts the text, a refusal is
					   the chunk's reply */
	FETCH_RELAY_VERB_HELD_DATA,	/* DATA for a LAST first chunk whose
					   text the lane holds: a 354 lets
					   it go, a refusal is the chunk's
					   reply; never sent on */
	FETCH_RELAY_VERB_SILENT,	/* a RSET of ours: never sent on */
};

struct fetch_relay_slot {
	enum fetch_relay_verb verb;
	int		 done;
	unsigned	 lane;		/* the lane that owes its reply */
	unsigned	 txn;		/* the transaction it belongs to */
	char		 line[FETCH_RELAY_EHLO_MAX];	/* without last CRLF */
	char		 addr[FETCH_RELAY_LOG_MAX];	/* RCPT, for logs */
	unsigned long long bytes;	/* DOT: the text relayed */
	const char	*how;		/* DOT: "data", "bdat", "bdat-to-data" */
};

/* the text scanner: where in a line we are */
enum fetch_relay_scan {
	FETCH_RELAY_SCAN_BOL = 0,	/* at the start of a line */
	FETCH_RELAY_SCAN_MID,
	FETCH_RELAY_SCAN_DOT,		/* "." at the start of a line */
	FETCH_RELAY_SCAN_DOTCR,		/* ".\r" */
};

/* what the octets of a BDAT chunk become */
enum fetch_relay_chunk {
	FETCH_RELAY_CHUNK_DROP = 0,	/* refused: read and dropped */
	FETCH_RELAY_CHUNK_BDAT,		/* verbatim, in a local BDAT */
	FETCH_RELAY_CHUNK_TEXT,		/* local DATA text: dot-stuffed */
};

#define FETCH_RELAY_DONE	0
#define FETCH_RELAY_WAIT	1

#define FETCH_RELAY_HELD_MAX	2	/* texts a lane holds for their 354 */

/* a text a lane holds for its 354, and the commands queued behind it */
struct fetch_relay_held {
	size_t		 len;		/* its octets in the lane's hold */
	size_t		 text;		/* of which the text: our Received:,
					   the chunk, the "." */
	unsigned	 owed;		/* replies owed for them: the "."
					   and the commands */
	int		 dot;		/* the text is complete */
	size_t		 slot;		/* the end of text's reply slot */
};

/*
 * One connection to the local MTA (fetch_relay_lane.c). Lane 0 is the
 * one odmr-fetch opened before the turn; more are opened only while
 * the lanes in use hold texts for their 354.
 */
struct fetch_relay_lane {
	struct fetch_relay *r;
	unsigned	 idx;
	struct fetch_local *local;	/* NULL: closed, lost or never made */
	int		 ready;		/* greeted: takes transactions */
	size_t		 lnext;		/* the next slot it may owe */
	int		 dot_sent;	/* its last transaction ended with
					   "." (RFC 5321 4.1.1.4 clears its
					   state, whatever the reply) */
	struct buf	 hold;		/* output kept for a 354 */
	struct fetch_relay_held held[FETCH_RELAY_HELD_MAX];
	unsigned	 nheld;		/* DATAs sent, their 354 awaited */
	int		 discard;	/* DATA refused: the rest of the
					   chunk goes nowhere */
	int		 need_rset;	/* DATA refused: MAIL and RCPT are
					   still open there */
	unsigned	 messages;	/* relayed through it, for the log */
};

struct fetch_relay {
	char		*hostname;
	char		*provider_addr;
	int		 tls;
	unsigned	 timeout_ms;
	fetch_relay_done_fn done;
	void		*arg;

	struct io	*io;		/* the provider */
	struct fetch_ext lext;		/* what the local MTA offers (lane 0) */
	struct fetch_relay_lane lanes[FETCH_RELAY_LANES_MAX];
	struct fetch_relay_lane *lane;	/* the transaction's; never NULL */
	unsigned	 nlanes;	/* lanes opened or opening */
	unsigned	 lanes_max;	/* --local-connections */
	int		 lanes_failed;	/* one could not be opened: no more */
	struct fetch_local_params lparams;	/* to open more */
	int		 lmtp;
	enum fetch_relay_state state;
	char		 ehlo[FETCH_RELAY_EHLO_MAX];

	/* the reply FIFO; absolute counters, slot i at i %
	 * FETCH_RELAY_SLOTS (fetch_relay.c) */
	struct fetch_relay_slot *slots;
	size_t		 first, end;

	char		 stash[FETCH_CMD_MAX + 1];	/* a waiting command */
	int		 stashed;

	/* session and transaction */
	int		 greeted;
	char		 helo[FETCH_NAME_MAX + 1];
	int		 txn_open;	/* MAIL relayed, text not yet ended */
	unsigned	 txn;		/* the transaction being read: a
					   held one's replies come later */
	unsigned	 rcpt_pending;	/* RCPTs relayed, not yet answered */
	unsigned	 accepted;	/* this transaction's accepted RCPTs */
	unsigned	 nrcpt;
	char		 sender[FETCH_RELAY_LOG_MAX];
	struct buf	 received;
	unsigned long long msg_bytes;
	unsigned	 msgno;

	/* text */
	enum fetch_relay_scan scan;
	int		 prev_cr;
	int		 throttled;

	/* BDAT: the transaction's chunks and the one being read */
	uint64_t	 size_limit;	/* our SIZE, 0 = none */
	unsigned	 chunks;	/* BDATs in this transaction */
	int		 chunk_failed;	/* the local MTA refused its DATA */
	int		 lopen;		/* the local MTA takes the text: a
					   BDAT relayed, or DATA's 354 in */
	enum fetch_relay_chunk chunk_mode;
	unsigned long long chunk_left;	/* octets still to read */
	unsigned long long chunk_size;
	int		 chunk_last;
	size_t		 chunk_slot;	/* its reply's slot */

	/* the end */
	int		 provider_gone;
	int		 local_done;	/* every lane closed */
	int		 closing;	/* close once output has left */
	uint64_t	 closing_since;	/* loop_now_ms() when closing began */
	int		 shutdown_sent;
	int		 stopping;
	int		 ending;
	int		 posted;
	struct fetch_relay_result result;
};

/* fetch_relay.c: state, the reply FIFO, relaying */
void	fetch_relay_enter_state(struct fetch_relay *, enum fetch_relay_state);
void	fetch_relay_reading(struct fetch_relay *);
void	fetch_relay_error(struct fetch_relay *, enum fetch_exit,
	    const char *, ...) __attribute__((format(printf, 3, 4)));
struct fetch_relay_slot *fetch_relay_push(struct fetch_relay *,
	    enum fetch_relay_verb);
void	fetch_relay_own(struct fetch_relay *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	fetch_relay_flush(struct fetch_relay *);
void	fetch_relay_map(const struct fetch_reply *, char *, size_t);
int	fetch_relay_local_busy(const struct fetch_relay *);
struct fetch_relay_slot *fetch_relay_forward(struct fetch_relay *,
	    enum fetch_relay_verb, const char *);
void	fetch_relay_txn_reset(struct fetch_relay *);
void	fetch_relay_txn_end(struct fetch_relay *);
void	fetch_relay_text_out(struct fetch_relay *, const void *, size_t);
void	fetch_relay_hangup(struct fetch_relay *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

struct fetch_relay_slot *fetch_relay_slot(struct fetch_relay *, size_t);
void	fetch_relay_local_reply(struct fetch_relay_lane *,
	    const struct fetch_reply *);
void	fetch_relay_local_lost(struct fetch_relay *, unsigned, const char *);
void	fetch_relay_msg_done(struct fetch_relay *, struct fetch_relay_slot *,
	    const struct fetch_reply *);
void	fetch_relay_resume(struct fetch_relay *);
void	fetch_relay_unthrottle(struct fetch_relay *);
void	fetch_relay_finish(struct fetch_relay *);

/* fetch_relay_lane.c: the connections to the local MTA */
void	fetch_relay_lane_init(struct fetch_relay *, struct fetch_local *,
	    const struct fetch_local_params *, unsigned);
unsigned fetch_relay_lane_owed(const struct fetch_relay *);
size_t	fetch_relay_lane_queued(const struct fetch_relay *);
int	fetch_relay_lane_pick(struct fetch_relay *);
int	fetch_relay_lane_may_hold(const struct fetch_relay *,
	    unsigned long long);
void	fetch_relay_lane_hold(struct fetch_relay *, size_t);
int	fetch_relay_lane_cmd(struct fetch_relay *, const char *);
void	fetch_relay_lane_text(struct fetch_relay *, const void *, size_t);
void	fetch_relay_lane_dot(struct fetch_relay *);
void	fetch_relay_lane_held_data(struct fetch_relay_lane *,
	    const struct fetch_reply *);
void	fetch_relay_lane_drop_all(struct fetch_relay *);
void	fetch_relay_lane_end(struct fetch_relay *, int);
void	fetch_relay_lane_release(struct fetch_relay *);

/* fetch_relay_bdat.c: BDAT (RFC 3030) */
int	fetch_relay_bdat_cmd(struct fetch_relay *, const char *);
void	fetch_relay_bdat_data(struct fetch_relay *, struct fetch_relay_slot *,
	    const struct fetch_reply *);
int	fetch_relay_bdat_abandoned(struct fetch_relay *, const char *);
void	fetch_relay_chunk_read(struct fetch_relay *);

#endif
