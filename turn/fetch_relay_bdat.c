/*
 * NAME
 *	fetch_relay_bdat 3 - odmr-fetch's relay: BDAT chunks (RFC 3030)
 *	from the provider, relayed as BDAT or as DATA text
 * SYNOPSIS
 *	#include "fetch_relay_int.h"
 *
 *	int
 *	fetch_relay_bdat_cmd(r, args)
 *
 *	void
 *	fetch_relay_chunk_read(r)
 *
 *	void
 *	fetch_relay_bdat_data(r, slot, reply)
 *
 *	int
 *	fetch_relay_bdat_abandoned(r, what)
 * DESCRIPTION
 *	The BDAT part of fetch_relay 3; see fetch_relay.h for what the
 *	provider sees.
 *
 *	fetch_relay_bdat_cmd() is the handler of BDAT in fetch_relay.c's
 *	command table. It checks the chunk and picks what its octets
 *	become (enum fetch_relay_chunk): a BDAT of ours (the local MTA
 *	offers CHUNKING), DATA text (it does not), or nothing (the chunk
 *	is refused, with a reply of our own). FETCH_RELAY_STATE_CHUNK then
 *	takes exactly that many octets from the provider
 *	(fetch_relay_chunk_read(), called by the input loop), under the
 *	same HIWAT throttle. Toward a local MTA without CHUNKING the first
 *	chunk waits for the reply to our DATA (FETCH_RELAY_STATE_CHUNK_DATA,
 *	in which input is read but only kept, so that once the 354 is in,
 *	the text, the "." and the next transaction's commands go to the
 *	local MTA in one write). The chunk's slot takes that reply
 *	(fetch_relay_bdat_data()): a 354 is not passed on but starts the
 *	text (the slot then waits for our own "250 ... octets received",
 *	or, for a LAST chunk, for the reply to the "."), a refusal is the
 *	chunk's reply and the octets are dropped. The text scan keeps its
 *	place across chunks (a CRLF may be split between two). Once a LAST
 *	chunk is relayed the next commands are read and relayed at once,
 *	behind it: its reply comes in its turn. Each message's size rides
 *	in its end-of-text slot, since the next message may be streaming
 *	by the time the reply comes.
 *
 *	fetch_relay_bdat_abandoned() is for the commands that end a
 *	transaction (RSET, EHLO, HELO, an oversized BDAT): a text that a
 *	local MTA without CHUNKING has started taking cannot be taken
 *	back, so both connections are closed.
 * SEE ALSO
 *	fetch_relay(3), RFC 3030, RFC 5321 sections 4.4 and 4.5.2,
 *	RFC 1870 section 6.1
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "compat.h"
#include "io.h"
#include "log.h"

#include "fetch.h"
#include "fetch_local.h"
#include "fetch_relay_int.h"
#include "fetch_reply.h"

#define FETCH_RELAY_CHUNK_MAX	(1ULL << 60)	/* a larger BDAT size is
						   taken as a syntax error:
						   no sum with it overflows */

static const char *const fetch_relay_chunk_names[] = {
	[FETCH_RELAY_CHUNK_DROP] = "dropped",
	[FETCH_RELAY_CHUNK_BDAT] = "bdat",
	[FETCH_RELAY_CHUNK_TEXT] = "data",
};

/*
 * fetch_relay_bdat_abandoned - the provider ends a transaction whose
 * text a local MTA without CHUNKING has started taking as DATA (after
 * BDAT): SMTP has no way to take it back but hanging up, so that the
 * half message is not delivered; the provider gets 421 and keeps it.
 * 1 if so.
 */
int
fetch_relay_bdat_abandoned(struct fetch_relay *r, const char *what)
{
	if (!r->lopen || (r->lext.flags & FETCH_EXT_CHUNKING))
		return 0;
	log_info("relay event=bdat-abandoned command=%s chunks=%u", what,
	    r->chunks);
	fetch_relay_lane_drop_all(r);
	r->lopen = 0;
	fetch_relay_error(r, FETCH_EXIT_SERVER, "the provider abandoned a "
	    "BDAT transaction (%s)", what);
	fetch_relay_hangup(r, "421 4.3.0 %s cannot abandon a message being "
	    "relayed as DATA, closing", r->hostname);
	return 1;
}

/* fetch_relay_bdat_args - "size [LAST]" (RFC 3030 section 3); -1 if bad */
static int
fetch_relay_bdat_args(const char *args, unsigned long long *size_r,
    int *last_r)
{
	unsigned long long v = 0;
	const char *p;

	if (!isdigit((unsigned char)*args))
		return -1;
	for (p = args; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned)(*p - '0');
		if (v > FETCH_RELAY_CHUNK_MAX)
			return -1;
	}
	if (*p == ' ' && strcasecmp(p + 1, "LAST") == 0)
		*last_r = 1;
	else if (*p == '\0')
		*last_r = 0;
	else
		return -1;
	*size_r = v;
	return 0;
}

/* fetch_relay_chunk_start - read the chunk's octets, as mode says */
static void
fetch_relay_chunk_start(struct fetch_relay *r, enum fetch_relay_chunk mode)
{
	r->chunk_mode = mode;
	log_debug("relay event=relay-chunk size=%llu last=%s as=%s",
	    r->chunk_size, r->chunk_last ? "yes" : "no",
	    fetch_relay_chunk_names[mode]);
	fetch_relay_enter_state(r, FETCH_RELAY_STATE_CHUNK);
}

/* fetch_relay_chunk_drop - refuse the chunk; its octets are still read */
static void
fetch_relay_chunk_drop(struct fetch_relay *r, const char *reply)
{
	fetch_relay_own(r, "%s", reply);
	fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_DROP);
}

/*
 * fetch_relay_bdat_cmd - BDAT size [LAST]: check, then relay as BDAT,
 * start DATA for it, or drop its octets
 */
int
fetch_relay_bdat_cmd(struct fetch_relay *r, const char *args)
{
	struct fetch_relay_slot *s;
	unsigned long long size;
	char line[64];		/* "BDAT", a 20-digit number, "LAST" */
	int last;

	if (fetch_relay_bdat_args(args, &size, &last) == -1) {
		/* RFC 3030 section 3: where the octets end is unknown, so
		 * is where the next command starts; answer what is owed,
		 * then close */
		if (fetch_relay_lane_owed(r) > 0)
			return FETCH_RELAY_WAIT;
		fetch_relay_error(r, FETCH_EXIT_SERVER, "the provider sent "
		    "BDAT without a valid size");
		fetch_relay_hangup(r, "421 4.5.4 %s Syntax: BDAT size [LAST]; "
		    "closing", r->hostname);
		return FETCH_RELAY_DONE;
	}
	r->chunk_size = r->chunk_left = size;
	r->chunk_last = last;
	if (!r->txn_open) {
		fetch_relay_chunk_drop(r, "503 5.5.1 Error: need MAIL command");
		return FETCH_RELAY_DONE;
	}
	if (r->chunk_failed) {
		/* the local MTA refused DATA: the rest of the text has
		 * nowhere to go */
		fetch_relay_chunk_drop(r, "503 5.5.1 Error: an earlier chunk "
		    "of this message failed");
		return FETCH_RELAY_DONE;
	}
	/* LMTP: the number of end-of-text replies must be known */
	if (fetch_relay_local_busy(r) || (r->lmtp && r->rcpt_pending > 0))
		return FETCH_RELAY_WAIT;
	r->chunks++;
	if (r->rcpt_pending == 0 && r->accepted == 0) {
		fetch_relay_chunk_drop(r, "554 5.5.1 Error: no valid "
		    "recipients");
		return FETCH_RELAY_DONE;
	}
	if (r->size_limit > 0 && size > r->size_limit) {
		/* RFC 1870 6.1; the chunk is read, never held */
		if (fetch_relay_bdat_abandoned(r, "BDAT"))
			return FETCH_RELAY_DONE;
		fetch_relay_txn_reset(r);
		if ((s = fetch_relay_forward(r, FETCH_RELAY_VERB_RESET,
		    "RSET")) != NULL)
			(void)strlcpy(s->line, "552 5.3.4 Error: message "
			    "exceeds the size limit", sizeof(s->line));
		fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_DROP);
		return FETCH_RELAY_DONE;
	}
	if (!r->lopen)
		r->msg_bytes = 0;
	if (r->lext.flags & FETCH_EXT_CHUNKING) {
		/* our Received: field inside the first chunk, which grows by
		 * it: still one local BDAT, one reply, per chunk */
		(void)snprintf(line, sizeof(line), "BDAT %llu%s", size +
		    (r->lopen ? 0 : (unsigned long long)r->received.len),
		    last ? " LAST" : "");
		if ((s = fetch_relay_forward(r, last ? FETCH_RELAY_VERB_DOT :
		    FETCH_RELAY_VERB_BDAT, line)) == NULL) {
			fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_DROP);
			return FETCH_RELAY_DONE;
		}
		if (!r->lopen)
			fetch_relay_lane_text(r, r->received.data,
			    r->received.len);
		r->lopen = 1;
		r->chunk_slot = r->end - 1;
		(void)strlcpy(s->addr, r->sender, sizeof(s->addr));
		s->how = "bdat";
		fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_BDAT);
		return FETCH_RELAY_DONE;
	}
	if (r->lopen) {
		/* the local MTA takes DATA text already */
		s = fetch_relay_push(r, last ? FETCH_RELAY_VERB_DOT :
		    FETCH_RELAY_VERB_OWN);
		r->chunk_slot = r->end - 1;
		(void)strlcpy(s->addr, r->sender, sizeof(s->addr));
		s->how = "bdat-to-data";
		fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_TEXT);
		return FETCH_RELAY_DONE;
	}
	if (last && fetch_relay_lane_may_hold(r, size)) {
		/* the whole message in one chunk: the lane keeps it until
		 * its 354, and the next transaction may take another lane */
		if (fetch_relay_forward(r, FETCH_RELAY_VERB_HELD_DATA,
		    "DATA") == NULL) {
			fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_DROP);
			return FETCH_RELAY_DONE;
		}
		s = fetch_relay_push(r, FETCH_RELAY_VERB_DOT);
		r->chunk_slot = r->end - 1;
		(void)strlcpy(s->addr, r->sender, sizeof(s->addr));
		s->how = "bdat-to-data";
		r->scan = FETCH_RELAY_SCAN_BOL;
		r->prev_cr = 0;
		fetch_relay_lane_hold(r, r->chunk_slot);
		fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_TEXT);
		return FETCH_RELAY_DONE;
	}
	/* the 354 (or a refusal) decides: nothing is read meanwhile */
	if ((s = fetch_relay_forward(r, FETCH_RELAY_VERB_BDAT_DATA, "DATA")) ==
	    NULL) {
		fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_DROP);
		return FETCH_RELAY_DONE;
	}
	r->chunk_slot = r->end - 1;
	fetch_relay_enter_state(r, FETCH_RELAY_STATE_CHUNK_DATA);
	return FETCH_RELAY_DONE;
}

/* fetch_relay_bdat_data - the local reply to DATA for a first chunk */
void
fetch_relay_bdat_data(struct fetch_relay *r, struct fetch_relay_slot *s,
    const struct fetch_reply *rep)
{
	if (rep->code != 354) {
		/* the chunk's reply; the rest of the text is dropped */
		fetch_relay_map(rep, s->line, sizeof(s->line));
		s->done = 1;
		r->chunk_failed = 1;
		fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_DROP);
		return;
	}
	/* not for the provider: the slot waits for the chunk's end (our
	 * 250), or for the reply to the "." after the LAST chunk */
	r->lopen = 1;
	r->scan = FETCH_RELAY_SCAN_BOL;
	r->prev_cr = 0;
	(void)strlcpy(s->addr, r->sender, sizeof(s->addr));
	s->how = "bdat-to-data";
	if (r->chunk_last) {
		s->verb = FETCH_RELAY_VERB_DOT;
		r->lane->lnext = r->chunk_slot;
	} else
		s->verb = FETCH_RELAY_VERB_OWN;
	/* our trace field goes first (RFC 5321 4.4) */
	fetch_relay_lane_text(r, r->received.data, r->received.len);
	fetch_relay_chunk_start(r, FETCH_RELAY_CHUNK_TEXT);
}

/*
 * fetch_relay_chunk_stuff - chunk octets as DATA text: a line that begins
 * with "." gets another (RFC 5321 4.5.2), a bare LF is written as CRLF
 */
static void
fetch_relay_chunk_stuff(struct fetch_relay *r, const unsigned char *p,
    size_t n)
{
	const unsigned char *lf;
	size_t start = 0, i = 0;

	while (i < n) {
		if (r->scan == FETCH_RELAY_SCAN_BOL && p[i] == '.') {
			fetch_relay_text_out(r, p + start, i - start);
			fetch_relay_text_out(r, ".", 1);
			start = i;
		}
		if ((lf = memchr(p + i, '\n', n - i)) == NULL) {
			r->scan = FETCH_RELAY_SCAN_MID;
			r->prev_cr = p[n - 1] == '\r';
			break;
		}
		i = (size_t)(lf - p);
		if (i > 0 ? p[i - 1] != '\r' : !r->prev_cr) {
			fetch_relay_text_out(r, p + start, i - start);
			fetch_relay_text_out(r, "\r\n", 2);
			start = i + 1;
		}
		r->scan = FETCH_RELAY_SCAN_BOL;
		r->prev_cr = 0;
		i++;
	}
	fetch_relay_text_out(r, p + start, n - start);
}

/* fetch_relay_chunk_end - all the chunk's octets are in: its reply */
static void
fetch_relay_chunk_end(struct fetch_relay *r)
{
	struct fetch_relay_slot *s = fetch_relay_slot(r, r->chunk_slot);

	fetch_relay_enter_state(r, FETCH_RELAY_STATE_COMMAND);
	switch (r->chunk_mode) {
	case FETCH_RELAY_CHUNK_DROP:
		break;
	case FETCH_RELAY_CHUNK_BDAT:
		if (r->chunk_last)
			s->bytes = r->msg_bytes;
		break;
	case FETCH_RELAY_CHUNK_TEXT:
		if (!r->chunk_last) {
			(void)snprintf(s->line, FETCH_RELAY_REPLY_MAX - 2,
			    "250 2.0.0 %llu octets received", r->chunk_size);
			s->done = 1;
			break;
		}
		/* the text ends with CRLF, then the lone "." */
		if (r->scan != FETCH_RELAY_SCAN_BOL)
			fetch_relay_text_out(r, "\r\n", 2);
		s->bytes = r->msg_bytes;
		/* sent, or kept behind the text for the 354 */
		fetch_relay_lane_dot(r);
		break;
	}
	if (r->chunk_last) {
		if (r->chunk_mode != FETCH_RELAY_CHUNK_DROP)
			fetch_relay_txn_end(r);
		r->chunks = 0;
		r->chunk_failed = 0;
		r->lopen = 0;
	}
	fetch_relay_flush(r);
}

/* fetch_relay_chunk_read - take the chunk's octets that came */
void
fetch_relay_chunk_read(struct fetch_relay *r)
{
	const unsigned char *p;
	size_t n;

	if (r->io == NULL)
		return;
	n = io_datalen(r->io);
	if (n > r->chunk_left)
		n = (size_t)r->chunk_left;
	if (n > 0) {
		p = io_data(r->io);
		if (r->chunk_mode == FETCH_RELAY_CHUNK_BDAT)
			fetch_relay_text_out(r, p, n);	/* verbatim */
		else if (r->chunk_mode == FETCH_RELAY_CHUNK_TEXT)
			fetch_relay_chunk_stuff(r, p, n);
		io_drop(r->io, n);
		r->chunk_left -= n;
	}
	if (r->chunk_left == 0)
		fetch_relay_chunk_end(r);
	if (fetch_relay_lane_queued(r) > FETCH_RELAY_HIWAT)
		r->throttled = 1;
	fetch_relay_reading(r);
}
