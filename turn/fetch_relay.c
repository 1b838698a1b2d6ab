/*
 * NAME
 *	fetch_relay 3 - odmr-fetch after the turn: an SMTP server toward
 *	the provider that relays each transaction to the local MTA
 * SYNOPSIS
 *	#include "fetch_relay.h"
 * DESCRIPTION
 *	See fetch_relay.h for what the provider sees. Inside:
 *
 *	Replies owed to the provider sit in a FIFO of slots, one per
 *	command, in command order. An own slot is filled at once (EHLO,
 *	NOOP, 452, 503 ...); a local slot is filled by the local MTA's
 *	reply to the command relayed for it, and those come back in the
 *	order they were sent (fetch_local 3). fetch_relay_flush() writes
 *	the filled slots at the head of the FIFO, so replies always leave
 *	in order, and a group pipelined by the provider (MAIL, RCPT...,
 *	DATA) goes to the local MTA as one group too when it offers
 *	PIPELINING.
 *
 *	Commands come from a table (verb, handler). A handler that cannot
 *	decide before earlier local replies are in (a local MTA without
 *	PIPELINING that still owes a reply; an LMTP RCPT while another
 *	RCPT's fate is unknown) returns FETCH_RELAY_WAIT before doing
 *	anything: the line is kept, reading stops (FETCH_RELAY_STATE_WAIT)
 *	and the handler runs again after the next local reply.
 *
 *	After DATA nothing is read until the local 354 (or refusal) is in:
 *	the provider must wait for it too (RFC 2920 section 3.1). The text
 *	is then scanned octet by octet for the end (a line holding a lone
 *	"."), relayed as it comes, and a bare LF is written as CRLF. When
 *	more than FETCH_RELAY_HIWAT octets wait for the local MTA, reading
 *	from the provider stops until they have drained.
 *
 *	BDAT (RFC 3030) is in fetch_relay_bdat.c: the command table hands
 *	BDAT to fetch_relay_bdat_cmd(), the input loop hands a chunk's
 *	octets to fetch_relay_chunk_read(), the local reply to DATA for a
 *	first chunk goes to fetch_relay_bdat_data(), and RSET, EHLO and
 *	HELO ask fetch_relay_bdat_abandoned() first. What the two files
 *	share (struct fetch_relay, its reply slots, the limits, and the
 *	helpers of this file that the BDAT code calls) is declared in
 *	fetch_relay_int.h.
 *
 *	The state is an enum with a names table and a description table;
 *	fetch_relay_enter_state() logs old -> new, and fetch_relay_reading()
 *	is the one place that turns reading from the provider on or off.
 *	The end always goes through fetch_relay_finish(), which waits for
 *	both connections to close and posts done() to the loop.
 * SEE ALSO
 *	fetch_relay_bdat(3), RFC 2645 section 4, RFC 5321 sections 3.3,
 *	4.1.1, 4.4, 4.5.2 and 4.5.3.1.10, RFC 2920, RFC 2033 section 4.2,
 *	RFC 2034, RFC 3848, RFC 3030
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

#include "fetch.h"
#include "fetch_local.h"
#include "fetch_relay.h"
#include "fetch_relay_int.h"
#include "fetch_reply.h"

#define FETCH_RELAY_SLOTS	256	/* replies owed to the provider */
#define FETCH_RELAY_RECEIVED_MAX 1024	/* room kept in SIZE for our
					   Received: field */
#define FETCH_RELAY_PATH_MAX	512	/* RFC 5321 4.5.3.1.3: 256, and
					   some room */
#define FETCH_RELAY_RCPT_MAX	1000	/* per transaction */

const char *const fetch_relay_state_names[FETCH_RELAY_STATE_COUNT] = {
	[FETCH_RELAY_STATE_COMMAND] = "command",
	[FETCH_RELAY_STATE_WAIT] = "wait",
	[FETCH_RELAY_STATE_DATA] = "data",
	[FETCH_RELAY_STATE_TEXT] = "text",
	[FETCH_RELAY_STATE_CHUNK_DATA] = "chunk-data",
	[FETCH_RELAY_STATE_CHUNK] = "chunk",
	[FETCH_RELAY_STATE_QUIT] = "quit",
	[FETCH_RELAY_STATE_CLOSING] = "closing",
	[FETCH_RELAY_STATE_END] = "end",
};

static const char *const fetch_relay_descriptions[] = {
	[FETCH_RELAY_STATE_COMMAND] = "waiting for a command",
	[FETCH_RELAY_STATE_WAIT] = "waiting for the local MTA",
	[FETCH_RELAY_STATE_DATA] = "waiting for the local MTA's reply to DATA",
	[FETCH_RELAY_STATE_TEXT] = "relaying the message text",
	[FETCH_RELAY_STATE_CHUNK_DATA] = "waiting for the local MTA's reply "
	    "to DATA for a BDAT chunk",
	[FETCH_RELAY_STATE_CHUNK] = "reading a BDAT chunk",
	[FETCH_RELAY_STATE_QUIT] = "closing the session",
	[FETCH_RELAY_STATE_CLOSING] = "closing the local session",
	[FETCH_RELAY_STATE_END] = "finishing",
};

/*
 * the states that read from the provider (unless throttled); in
 * CHUNK_DATA what comes is only kept (up to the io's input bound), so
 * that the chunk and the commands pipelined behind it are all there
 * when the 354 comes, and go to the local MTA in one write
 */
static const int fetch_relay_reads[FETCH_RELAY_STATE_COUNT] = {
	[FETCH_RELAY_STATE_COMMAND] = 1,
	[FETCH_RELAY_STATE_TEXT] = 1,
	[FETCH_RELAY_STATE_CHUNK_DATA] = 1,
	[FETCH_RELAY_STATE_CHUNK] = 1,
};

typedef int (*fetch_relay_cmd_fn)(struct fetch_relay *, const char *args);

struct fetch_relay_cmd {
	const char		*verb;
	fetch_relay_cmd_fn	 fn;
};

static void fetch_relay_input(struct fetch_relay *);

/* fetch_relay_enter_state - change state and log old -> new */
void
fetch_relay_enter_state(struct fetch_relay *r, enum fetch_relay_state state)
{
	if (r->state != state)
		log_debug("relay event=relay-state from=%s to=%s",
		    fetch_relay_state_names[r->state],
		    fetch_relay_state_names[state]);
	r->state = state;
}

/* fetch_relay_reading - the one place that turns provider input on/off */
void
fetch_relay_reading(struct fetch_relay *r)
{
	if (r->io == NULL)
		return;
	if (fetch_relay_reads[r->state] && !r->throttled && !r->closing &&
	    r->end - r->first < FETCH_RELAY_SLOTS - 1)
		io_resume_read(r->io);
	else
		io_pause_read(r->io);
}

/* fetch_relay_error - keep the first reason and its exit status */
void
fetch_relay_error(struct fetch_relay *r, enum fetch_exit exit,
    const char *fmt, ...)
{
	va_list ap;

	if (r->result.error[0] != '\0')
		return;
	r->result.exit = exit;
	va_start(ap, fmt);
	(void)vsnprintf(r->result.error, sizeof(r->result.error), fmt, ap);
	va_end(ap);
}

/* ---- the reply FIFO ---- */

/* fetch_relay_slot - the slot at absolute index i */
struct fetch_relay_slot *
fetch_relay_slot(struct fetch_relay *r, size_t i)
{
	return &r->slots[i % FETCH_RELAY_SLOTS];
}

/* fetch_relay_push - a new slot at the end of the FIFO */
struct fetch_relay_slot *
fetch_relay_push(struct fetch_relay *r, enum fetch_relay_verb verb)
{
	struct fetch_relay_slot *s = fetch_relay_slot(r, r->end++);

	s->verb = verb;
	s->done = 0;
	s->lane = r->lane->idx;
	s->txn = r->txn;
	s->line[0] = '\0';
	s->addr[0] = '\0';
	s->bytes = 0;
	s->how = NULL;
	return s;
}

/* fetch_relay_own - a reply of our own, in its turn */
void
fetch_relay_own(struct fetch_relay *r, const char *fmt, ...)
{
	struct fetch_relay_slot *s = fetch_relay_push(r, FETCH_RELAY_VERB_OWN);
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(s->line, FETCH_RELAY_REPLY_MAX - 2, fmt, ap);
	va_end(ap);
	s->done = 1;
	fetch_relay_flush(r);
}

/* fetch_relay_flush - send the filled replies at the head, in order */
void
fetch_relay_flush(struct fetch_relay *r)
{
	struct fetch_relay_slot *s;
	unsigned i;

	while (r->first < r->end) {
		s = fetch_relay_slot(r, r->first);
		if (!s->done)
			break;
		r->first++;
		if (r->io == NULL || r->provider_gone ||
		    s->verb == FETCH_RELAY_VERB_SILENT ||
		    s->verb == FETCH_RELAY_VERB_HELD_DATA)
			continue;
		log_debug("relay event=relay-reply reply=\"%.*s\"",
		    (int)strcspn(s->line, "\r"), s->line);
		if (io_printf(r->io, "%s\r\n", s->line) == -1)
			fetch_relay_error(r, FETCH_EXIT_SERVER, "cannot write "
			    "to the provider: %s", io_error(r->io));
	}
	for (i = 0; i < r->nlanes; i++)
		if (r->lanes[i].lnext < r->first)
			r->lanes[i].lnext = r->first;
	if (r->state == FETCH_RELAY_STATE_QUIT && r->first == r->end &&
	    !r->closing && r->io != NULL) {
		/* the 221 (or 421) is queued: close once it has left */
		r->closing = 1;
		r->closing_since = loop_now_ms();
		io_set_lowat(r->io, 0);
	}
	fetch_relay_reading(r);
}

/* fetch_relay_map - a local reply as the provider's reply: the one place */
void
fetch_relay_map(const struct fetch_reply *rep, char *out, size_t outsz)
{
	unsigned c = fetch_reply_class(rep);
	const char *text = rep->len > 0 ? rep->text : c == 2 ? "Ok" :
	    c == 3 ? "Go ahead" : "Error";

	if (outsz > FETCH_RELAY_REPLY_MAX - 2)
		outsz = FETCH_RELAY_REPLY_MAX - 2;
	if (c < 2 || c > 5) {
		/* a 1xx or a code out of range: when in doubt, keep the mail */
		(void)snprintf(out, outsz, "451 4.3.0 Error: the local MTA "
		    "sent an unexpected reply (%u)", rep->code);
		return;
	}
	/* RFC 2034: we announce ENHANCEDSTATUSCODES, so every reply but
	 * 354 carries one; a local MTA without them gets a generic one */
	/* the text is cut to fit one reply line (RFC 5321 4.5.3.1.5) */
	if (c == 3 || fetch_reply_enhanced(text))
		(void)snprintf(out, outsz, "%u %.*s", rep->code,
		    (int)(outsz - 5), text);
	else
		(void)snprintf(out, outsz, "%u %u.0.0 %.*s", rep->code, c,
		    (int)(outsz - 11), text);
}

/* ---- relaying commands ---- */

/* fetch_relay_local_busy - a local MTA without PIPELINING still owes */
int
fetch_relay_local_busy(const struct fetch_relay *r)
{
	return !(r->lext.flags & FETCH_EXT_PIPELINING) &&
	    r->lane->local != NULL && fetch_local_owed(r->lane->local) > 0;
}

/* fetch_relay_forward - relay a command line to the transaction's lane */
struct fetch_relay_slot *
fetch_relay_forward(struct fetch_relay *r, enum fetch_relay_verb verb,
    const char *line)
{
	if (fetch_relay_lane_cmd(r, line) == -1) {
		/* the local MTA is going: its lost() follows from the loop */
		fetch_relay_own(r, "451 4.4.0 Error: the local MTA is "
		    "unavailable");
		return NULL;
	}
	return fetch_relay_push(r, verb);
}

/* fetch_relay_txn_reset - forget the transaction */
void
fetch_relay_txn_reset(struct fetch_relay *r)
{
	r->txn_open = 0;
	r->rcpt_pending = 0;
	r->accepted = 0;
	r->nrcpt = 0;
	r->sender[0] = '\0';
	r->chunks = 0;
	r->chunk_failed = 0;
	r->lopen = 0;
	buf_reset(&r->received);
}

/*
 * fetch_relay_txn_end - the text has ended: the transaction is over here,
 * and replies still owed for its RCPTs (a held text, RFC 2920 pipelining)
 * no longer count for the next one
 */
void
fetch_relay_txn_end(struct fetch_relay *r)
{
	r->txn_open = 0;
	r->rcpt_pending = 0;
	r->accepted = 0;
	r->txn++;
}

/* fetch_relay_path - "FROM:<path> params": path and where params start */
static const char *
fetch_relay_path(const char *args, const char *prefix, char *path,
    size_t pathsz, const char **params_r)
{
	size_t n = strlen(prefix), i;
	const char *p;
	int quoted = 0;

	if (strncasecmp(args, prefix, n) != 0)
		return "5.5.4 Syntax error in parameters";
	p = args + n;
	while (*p == ' ')
		p++;	/* RFC 5321 allows none; some clients send one */
	if (*p != '<')
		return "5.5.4 Syntax error: the address must be in <>";
	for (i = 1; p[i] != '\0'; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f)
			return "5.5.4 Syntax error: control character in the "
			    "address";
		if (c == '\\' && quoted && p[i + 1] != '\0')
			i++;
		else if (c == '"')
			quoted = !quoted;
		else if (c == '>' && !quoted)
			break;
	}
	if (p[i] != '>')
		return "5.5.4 Syntax error: no closing >";
	if (i + 2 > pathsz)
		return "5.1.3 The address is too long";
	memcpy(path, p, i + 1);
	path[i + 1] = '\0';
	p += i + 1;
	if (*p != '\0' && *p != ' ')
		return "5.5.4 Syntax error after the address";
	while (*p == ' ')
		p++;
	*params_r = p;
	return NULL;
}

/* fetch_relay_param_ok - a parameter's text is safe to relay */
static int
fetch_relay_param_ok(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] == 0x7f)
			return 0;
	return n > 0;
}

/* fetch_relay_key - the parameter's keyword (k octets) is name */
static int
fetch_relay_key(const char *p, size_t k, const char *name)
{
	return strlen(name) == k && strncasecmp(p, name, k) == 0;
}

/*
 * fetch_relay_params - check MAIL or RCPT parameters against what the
 * local MTA offers, append those to relay to out; an error text or NULL
 */
static const char *
fetch_relay_params(struct fetch_relay *r, const char *p, int mail,
    struct buf *out)
{
	unsigned long long v;
	size_t n, k;
	char *end;

	while (*p != '\0') {
		n = strcspn(p, " ");
		k = strcspn(p, "=");
		if (k > n)
			k = n;
		if (!fetch_relay_param_ok(p, n))
			return "5.5.4 Syntax error in parameters";
		if (mail && fetch_relay_key(p, k, "SIZE")) {
			errno = 0;
			v = strtoull(p + k + 1, &end, 10);
			if (k == n || end != p + n || errno != 0)
				return "5.5.4 Bad SIZE parameter";
			/* RFC 1870: ours grows by the Received: field */
			if (r->lext.flags & FETCH_EXT_SIZE)
				buf_printf(out, " SIZE=%llu", v +
				    (unsigned long long)r->received.len);
		} else if (mail && fetch_relay_key(p, k, "BODY")) {
			/* RFC 6152; BINARYMIME (RFC 3030) is not offered */
			if (k == n || !(fetch_relay_key(p + k + 1, n - k - 1,
			    "7BIT") || fetch_relay_key(p + k + 1, n - k - 1,
			    "8BITMIME")))
				return "5.5.4 Unsupported BODY value";
			if (r->lext.flags & FETCH_EXT_8BITMIME)
				buf_printf(out, " %.*s", (int)n, p);
			else if (n - k - 1 != 4)
				return "5.6.3 8-bit mail was not announced";
			/* BODY=7BIT to a 7-bit MTA: the same without it */
		} else if (mail && fetch_relay_key(p, k, "SMTPUTF8")) {
			if (!(r->lext.flags & FETCH_EXT_SMTPUTF8) || k != n)
				return "5.6.7 SMTPUTF8 was not announced";
			buf_puts(out, " SMTPUTF8");
		} else if (mail && fetch_relay_key(p, k, "AUTH")) {
			/* RFC 4954 5: not offered, so not passed on */
		} else if (mail ? fetch_relay_key(p, k, "RET") ||
		    fetch_relay_key(p, k, "ENVID") :
		    fetch_relay_key(p, k, "NOTIFY") ||
		    fetch_relay_key(p, k, "ORCPT")) {
			if (!(r->lext.flags & FETCH_EXT_DSN))
				return "5.5.4 DSN was not announced";
			buf_printf(out, " %.*s", (int)n, p);
		} else
			return "5.5.4 Unsupported parameter";
		p += n;
		while (*p == ' ')
			p++;
	}
	if (out->len > FETCH_CMD_MAX)
		return "5.5.4 Too many parameters";
	return NULL;
}

/* fetch_relay_received - our trace field (RFC 5321 4.4, RFC 3848) */
static void
fetch_relay_received(struct fetch_relay *r)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z",
	    &tm) == 0)
		(void)strlcpy(date, "Thu, 01 Jan 1970 00:00:00 +0000",
		    sizeof(date));
	buf_reset(&r->received);
	buf_printf(&r->received, "Received: from %s ([%s])\r\n"
	    "\tby %s (odmr-fetch) with %s id %ld.%u;\r\n\t%s\r\n",
	    r->helo[0] != '\0' ? r->helo : "unknown", r->provider_addr,
	    r->hostname, r->tls ? "ESMTPS" : "ESMTP", (long)getpid(),
	    ++r->msgno, date);
}

/* fetch_relay_greet - EHLO/HELO: keep the name, answer with reply */
static int
fetch_relay_greet(struct fetch_relay *r, const char *verb, const char *args,
    const char *reply)
{
	struct fetch_relay_slot *s;
	size_t i;

	if (*args == '\0') {
		fetch_relay_own(r, "501 5.5.4 Syntax: %s hostname", verb);
		return FETCH_RELAY_DONE;
	}
	if (r->txn_open && fetch_relay_local_busy(r))
		return FETCH_RELAY_WAIT;
	if (fetch_relay_bdat_abandoned(r, verb))
		return FETCH_RELAY_DONE;
	for (i = 0; args[i] != '\0' && args[i] != ' ' &&
	    i < sizeof(r->helo) - 1; i++)
		r->helo[i] = isgraph((unsigned char)args[i]) ? args[i] : '?';
	r->helo[i] = '\0';
	r->greeted = 1;
	if (!r->txn_open) {
		fetch_relay_own(r, "%s", reply);
		return FETCH_RELAY_DONE;
	}
	/* RFC 5321 4.1.4: EHLO (and HELO) resets the transaction, the local
	 * one too */
	fetch_relay_txn_reset(r);
	if ((s = fetch_relay_forward(r, FETCH_RELAY_VERB_RESET, "RSET")) !=
	    NULL)
		(void)strlcpy(s->line, reply, sizeof(s->line));
	return FETCH_RELAY_DONE;
}

/* fetch_relay_cmd_ehlo - our extensions: what the local MTA can take */
static int
fetch_relay_cmd_ehlo(struct fetch_relay *r, const char *args)
{
	return fetch_relay_greet(r, "EHLO", args, r->ehlo);
}

/* fetch_relay_cmd_helo - plain SMTP */
static int
fetch_relay_cmd_helo(struct fetch_relay *r, const char *args)
{
	char reply[FETCH_RELAY_EHLO_MAX];	/* as long as a slot's line */

	(void)snprintf(reply, sizeof(reply), "250 %s", r->hostname);
	return fetch_relay_greet(r, "HELO", args, reply);
}

/* fetch_relay_cmd_mail - MAIL FROM: checked, then relayed */
static int
fetch_relay_cmd_mail(struct fetch_relay *r, const char *args)
{
	char path[FETCH_RELAY_PATH_MAX];
	const char *params, *err;
	struct buf line;

	if (!r->greeted) {
		fetch_relay_own(r, "503 5.5.1 Error: send HELO/EHLO first");
		return FETCH_RELAY_DONE;
	}
	if (r->txn_open) {
		fetch_relay_own(r, "503 5.5.1 Error: nested MAIL command");
		return FETCH_RELAY_DONE;
	}
	if (r->stopping) {
		/* answers owed go first; then 421 instead of this MAIL */
		if (fetch_relay_lane_owed(r) > 0)
			return FETCH_RELAY_WAIT;
		fetch_relay_error(r, FETCH_EXIT_SERVER, "stopped by a signal");
		fetch_relay_hangup(r, "421 4.3.2 %s odmr-fetch is shutting "
		    "down, try again later", r->hostname);
		return FETCH_RELAY_DONE;
	}
	if (fetch_relay_local_busy(r))
		return FETCH_RELAY_WAIT;
	if ((err = fetch_relay_path(args, "FROM:", path, sizeof(path),
	    &params)) != NULL) {
		fetch_relay_own(r, "501 %s", err);
		return FETCH_RELAY_DONE;
	}
	/* a lane that holds no text for a 354 (fetch_relay_lane.c) */
	if (fetch_relay_lane_pick(r) == FETCH_RELAY_WAIT)
		return FETCH_RELAY_WAIT;
	fetch_relay_txn_reset(r);
	r->txn++;
	fetch_relay_received(r);
	buf_init(&line);
	buf_printf(&line, "MAIL FROM:%s", path);
	if ((err = fetch_relay_params(r, params, 1, &line)) != NULL) {
		buf_release(&line);
		fetch_relay_own(r, "555 %s", err);
		return FETCH_RELAY_DONE;
	}
	(void)strlcpy(r->sender, path, sizeof(r->sender));
	r->lane->dot_sent = 0;
	if (fetch_relay_forward(r, FETCH_RELAY_VERB_MAIL, buf_str(&line)) !=
	    NULL)
		r->txn_open = 1;
	buf_release(&line);
	return FETCH_RELAY_DONE;
}

/* fetch_relay_cmd_rcpt - RCPT TO: relayed; LMTP takes one per transaction */
static int
fetch_relay_cmd_rcpt(struct fetch_relay *r, const char *args)
{
	char path[FETCH_RELAY_PATH_MAX];
	struct fetch_relay_slot *s;
	const char *params, *err;
	struct buf line;

	if (!r->txn_open) {
		fetch_relay_own(r, "503 5.5.1 Error: need MAIL command");
		return FETCH_RELAY_DONE;
	}
	if (r->chunks > 0) {
		fetch_relay_own(r, "503 5.5.1 Error: RCPT after BDAT");
		return FETCH_RELAY_DONE;
	}
	if (fetch_relay_local_busy(r) || (r->lmtp && r->rcpt_pending > 0))
		return FETCH_RELAY_WAIT;
	if ((err = fetch_relay_path(args, "TO:", path, sizeof(path),
	    &params)) != NULL) {
		fetch_relay_own(r, "501 %s", err);
		return FETCH_RELAY_DONE;
	}
	if ((r->lmtp && r->accepted > 0) || r->nrcpt >= FETCH_RELAY_RCPT_MAX) {
		/*
		 * LMTP answers the end of the text once per recipient and
		 * the provider waits for one reply: one recipient per
		 * transaction. RFC 5321 4.5.3.1.10: the client sends the
		 * rest in another transaction.
		 */
		r->result.rcpt_deferred++;
		fetch_relay_own(r, "452 4.5.3 Too many recipients");
		return FETCH_RELAY_DONE;
	}
	buf_init(&line);
	buf_printf(&line, "RCPT TO:%s", path);
	if ((err = fetch_relay_params(r, params, 0, &line)) != NULL) {
		buf_release(&line);
		fetch_relay_own(r, "555 %s", err);
		return FETCH_RELAY_DONE;
	}
	if ((s = fetch_relay_forward(r, FETCH_RELAY_VERB_RCPT,
	    buf_str(&line))) != NULL) {
		(void)strlcpy(s->addr, path, sizeof(s->addr));
		r->rcpt_pending++;
		r->nrcpt++;
	}
	buf_release(&line);
	return FETCH_RELAY_DONE;
}

/* fetch_relay_cmd_data - DATA relayed; nothing is read until its reply */
static int
fetch_relay_cmd_data(struct fetch_relay *r, const char *args)
{
	if (*args != '\0') {
		fetch_relay_own(r, "501 5.5.4 Syntax: DATA");
		return FETCH_RELAY_DONE;
	}
	if (!r->txn_open) {
		fetch_relay_own(r, "503 5.5.1 Error: need RCPT command");
		return FETCH_RELAY_DONE;
	}
	if (r->chunks > 0) {
		/* RFC 3030 section 3 */
		fetch_relay_own(r, "503 5.5.1 Error: DATA inside a BDAT "
		    "transaction");
		return FETCH_RELAY_DONE;
	}
	/* LMTP: the number of end-of-text replies must be known */
	if (fetch_relay_local_busy(r) || (r->lmtp && r->rcpt_pending > 0))
		return FETCH_RELAY_WAIT;
	if (r->rcpt_pending == 0 && r->accepted == 0) {
		/* RFC 2920 3.1: no valid recipient, so no text */
		fetch_relay_own(r, "554 5.5.1 Error: no valid recipients");
		return FETCH_RELAY_DONE;
	}
	if (fetch_relay_forward(r, FETCH_RELAY_VERB_DATA, "DATA") != NULL)
		fetch_relay_enter_state(r, FETCH_RELAY_STATE_DATA);
	return FETCH_RELAY_DONE;
}

/*
 * fetch_relay_cmd_rset - RSET: relayed when a transaction may be open
 * there. After a "." it is not, whatever the reply to the "." will be
 * (RFC 5321 4.1.1.4): the RSET odmrd puts in front of each pipelined
 * transaction is then answered here, one command less for the local MTA
 */
static int
fetch_relay_cmd_rset(struct fetch_relay *r, const char *args)
{
	int open = r->txn_open || r->accepted > 0 || r->rcpt_pending > 0;

	if (*args != '\0') {
		fetch_relay_own(r, "501 5.5.4 Syntax: RSET");
		return FETCH_RELAY_DONE;
	}
	if (open && fetch_relay_local_busy(r))
		return FETCH_RELAY_WAIT;
	if (fetch_relay_bdat_abandoned(r, "RSET"))
		return FETCH_RELAY_DONE;
	fetch_relay_txn_reset(r);
	if (!open && (r->lane->local == NULL || r->lane->dot_sent ||
	    fetch_local_owed(r->lane->local) == 0)) {
		fetch_relay_own(r, "250 2.0.0 Ok");
		return FETCH_RELAY_DONE;
	}
	(void)fetch_relay_forward(r, FETCH_RELAY_VERB_RSET, "RSET");
	return FETCH_RELAY_DONE;
}

/* fetch_relay_cmd_noop - NOOP */
static int
fetch_relay_cmd_noop(struct fetch_relay *r, const char *args)
{
	(void)args;
	fetch_relay_own(r, "250 2.0.0 Ok");
	return FETCH_RELAY_DONE;
}

/* fetch_relay_cmd_vrfy - VRFY: RFC 5321 3.5.3 allows 252 */
static int
fetch_relay_cmd_vrfy(struct fetch_relay *r, const char *args)
{
	(void)args;
	fetch_relay_own(r, "252 2.5.2 Cannot VRFY; send some mail and see");
	return FETCH_RELAY_DONE;
}

/* fetch_relay_cmd_help - HELP */
static int
fetch_relay_cmd_help(struct fetch_relay *r, const char *args)
{
	(void)args;
	fetch_relay_own(r, "214 2.0.0 odmr-fetch relays to the local MTA: "
	    "EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY QUIT");
	return FETCH_RELAY_DONE;
}

/* fetch_relay_cmd_quit - 221; the session ends once it has left */
static int
fetch_relay_cmd_quit(struct fetch_relay *r, const char *args)
{
	(void)args;
	r->result.quit = 1;
	fetch_relay_enter_state(r, FETCH_RELAY_STATE_QUIT);
	fetch_relay_own(r, "221 2.0.0 %s closing connection", r->hostname);
	return FETCH_RELAY_DONE;
}

/* fetch_relay_cmd_refuse - known, but not in this direction */
static int
fetch_relay_cmd_refuse(struct fetch_relay *r, const char *args)
{
	(void)args;
	fetch_relay_own(r, "502 5.5.1 Error: command not implemented");
	return FETCH_RELAY_DONE;
}

static const struct fetch_relay_cmd fetch_relay_cmds[] = {
	{ "EHLO", fetch_relay_cmd_ehlo },
	{ "HELO", fetch_relay_cmd_helo },
	{ "MAIL", fetch_relay_cmd_mail },
	{ "RCPT", fetch_relay_cmd_rcpt },
	{ "DATA", fetch_relay_cmd_data },
	{ "BDAT", fetch_relay_bdat_cmd },
	{ "RSET", fetch_relay_cmd_rset },
	{ "NOOP", fetch_relay_cmd_noop },
	{ "VRFY", fetch_relay_cmd_vrfy },
	{ "HELP", fetch_relay_cmd_help },
	{ "QUIT", fetch_relay_cmd_quit },
	/* the rest belongs to the other side */
	{ "EXPN", fetch_relay_cmd_refuse },
	{ "STARTTLS", fetch_relay_cmd_refuse },
	{ "AUTH", fetch_relay_cmd_refuse },
	{ "ATRN", fetch_relay_cmd_refuse },
	{ "ETRN", fetch_relay_cmd_refuse },
	{ "TURN", fetch_relay_cmd_refuse },
};

/* fetch_relay_dispatch - one command line, by verb */
static int
fetch_relay_dispatch(struct fetch_relay *r, const char *line)
{
	size_t n = strcspn(line, " "), i;
	const char *args = line + n;

	if (*args == ' ')
		args++;
	for (i = 0; i < sizeof(fetch_relay_cmds) / sizeof(fetch_relay_cmds[0]);
	    i++)
		if (strlen(fetch_relay_cmds[i].verb) == n &&
		    strncasecmp(line, fetch_relay_cmds[i].verb, n) == 0)
			return fetch_relay_cmds[i].fn(r, args);
	fetch_relay_own(r, "500 5.5.2 Error: command not recognized");
	return FETCH_RELAY_DONE;
}

/* ---- the message text ---- */

/* fetch_relay_text_out - relay text toward the local MTA */
void
fetch_relay_text_out(struct fetch_relay *r, const void *p, size_t n)
{
	if (n == 0)
		return;
	fetch_relay_lane_text(r, p, n);
	r->msg_bytes += n;
}

/* fetch_relay_text_end - the lone "." came: the local MTA decides */
static void
fetch_relay_text_end(struct fetch_relay *r)
{
	struct fetch_relay_slot *s = fetch_relay_push(r, FETCH_RELAY_VERB_DOT);

	(void)strlcpy(s->addr, r->sender, sizeof(s->addr));
	s->bytes = r->msg_bytes;
	s->how = "data";
	/* SMTP: one reply; LMTP: one per accepted recipient, and that is
	 * one (fetch_relay_cmd_rcpt) */
	if (r->lane->local != NULL)
		fetch_local_expect(r->lane->local, 1);
	r->lane->dot_sent = 1;
	fetch_relay_txn_end(r);
	fetch_relay_enter_state(r, FETCH_RELAY_STATE_COMMAND);
}

/*
 * fetch_relay_text - relay the text that came, up to its end
 *
 * The scanner finds the line holding only "." (after CRLF or a bare
 * LF, RFC 5321 4.5.2); bare LFs are written as CRLF, so that the local
 * MTA sees the end exactly where we do.
 */
static void
fetch_relay_text(struct fetch_relay *r)
{
	const unsigned char *p;
	size_t n, i, start = 0;
	int end = 0;

	if (r->io == NULL || (n = io_datalen(r->io)) == 0)
		return;
	p = io_data(r->io);
	for (i = 0; i < n && !end; i++) {
		unsigned char c = p[i];

		switch (r->scan) {
		case FETCH_RELAY_SCAN_BOL:
			r->scan = c == '.' ? FETCH_RELAY_SCAN_DOT :
			    c == '\n' ? FETCH_RELAY_SCAN_BOL :
			    FETCH_RELAY_SCAN_MID;
			break;
		case FETCH_RELAY_SCAN_MID:
			if (c == '\n')
				r->scan = FETCH_RELAY_SCAN_BOL;
			break;
		case FETCH_RELAY_SCAN_DOT:
			r->scan = c == '\r' ? FETCH_RELAY_SCAN_DOTCR :
			    c == '\n' ? FETCH_RELAY_SCAN_BOL :
			    FETCH_RELAY_SCAN_MID;
			end = c == '\n';
			break;
		case FETCH_RELAY_SCAN_DOTCR:
			r->scan = c == '\n' ? FETCH_RELAY_SCAN_BOL :
			    FETCH_RELAY_SCAN_MID;
			end = c == '\n';
			break;
		}
		if (c == '\n' && !r->prev_cr) {
			/* a bare LF: written as CRLF */
			fetch_relay_text_out(r, p + start, i - start);
			fetch_relay_text_out(r, "\r\n", 2);
			start = i + 1;
		}
		r->prev_cr = c == '\r';
	}
	fetch_relay_text_out(r, p + start, i - start);
	io_drop(r->io, i);
	if (end) {
		r->msg_bytes -= r->msg_bytes >= 3 ? 3 : r->msg_bytes;
		fetch_relay_text_end(r);
	}
	if (fetch_relay_lane_queued(r) > FETCH_RELAY_HIWAT)
		r->throttled = 1;
	fetch_relay_reading(r);
}

/* ---- input from the provider ---- */

/* fetch_relay_input - commands, or text, while we may read */
static void
fetch_relay_input(struct fetch_relay *r)
{
	size_t len;
	int toolong;
	char *line;

	while (!r->ending && r->io != NULL && !r->closing) {
		if (r->state == FETCH_RELAY_STATE_TEXT) {
			fetch_relay_text(r);
			if (r->state == FETCH_RELAY_STATE_TEXT)
				return;
			continue;
		}
		if (r->state == FETCH_RELAY_STATE_CHUNK) {
			fetch_relay_chunk_read(r);
			if (r->state == FETCH_RELAY_STATE_CHUNK)
				return;
			continue;
		}
		if (r->state != FETCH_RELAY_STATE_COMMAND || r->throttled ||
		    r->end - r->first >= FETCH_RELAY_SLOTS - 1)
			break;
		line = io_getline(r->io, FETCH_CMD_MAX, &len, &toolong);
		if (line == NULL)
			break;
		if (toolong) {
			fetch_relay_own(r, "500 5.5.2 Error: line too long");
			continue;
		}
		if (strlen(line) != len) {
			fetch_relay_own(r, "500 5.5.2 Error: NUL in command");
			continue;
		}
		log_debug("relay event=relay-command line=\"%s\"", line);
		if (fetch_relay_dispatch(r, line) == FETCH_RELAY_WAIT) {
			(void)strlcpy(r->stash, line, sizeof(r->stash));
			r->stashed = 1;
			fetch_relay_enter_state(r, FETCH_RELAY_STATE_WAIT);
			break;
		}
	}
	fetch_relay_reading(r);
}

/* ---- the local MTA's side ---- */

/* fetch_relay_msg_done - the local reply to the end of the text */
void
fetch_relay_msg_done(struct fetch_relay *r, struct fetch_relay_slot *s,
    const struct fetch_reply *rep)
{
	const char *how = s->how != NULL ? s->how : "data";

	if (fetch_reply_class(rep) == 2) {
		r->result.messages++;
		r->result.bytes += s->bytes;
		log_debug("relay event=relayed from=%s size=%llu as=%s "
		    "reply=\"%u %s\"", s->addr, s->bytes, how, rep->code,
		    rep->text);
	} else {
		r->result.messages_refused++;
		log_info("relay event=message-refused from=%s size=%llu as=%s "
		    "reply=\"%u %s\"", s->addr, s->bytes, how, rep->code,
		    rep->text);
	}
}

/* fetch_relay_maybe_stop - SIGTERM: hang up between transactions */
static void
fetch_relay_maybe_stop(struct fetch_relay *r)
{
	if (!r->stopping || r->ending || r->closing ||
	    r->state != FETCH_RELAY_STATE_COMMAND || r->txn_open ||
	    r->first != r->end || fetch_relay_lane_owed(r) > 0)
		return;
	fetch_relay_error(r, FETCH_EXIT_SERVER, "stopped by a signal");
	fetch_relay_hangup(r, "421 4.3.2 %s odmr-fetch is shutting down, try "
	    "again later", r->hostname);
}

/*
 * fetch_relay_local_reply - a lane's reply: it belongs to that lane's
 * oldest slot still owed
 */
void
fetch_relay_local_reply(struct fetch_relay_lane *l, const struct fetch_reply *rep)
{
	struct fetch_relay *r = l->r;
	struct fetch_relay_slot *s = NULL;
	unsigned c = fetch_reply_class(rep);
	int cur;

	while (l->lnext < r->end) {
		s = fetch_relay_slot(r, l->lnext++);
		if (!s->done && s->verb != FETCH_RELAY_VERB_OWN &&
		    s->lane == l->idx)
			break;
		s = NULL;
	}
	if (s == NULL) {
		/* fetch_local counts what it owes: this cannot happen */
		log_warnx("relay event=relay-desync lane=%u reply=\"%u %s\"",
		    l->idx, rep->code, rep->text);
		return;
	}
	/* the transaction being read, or one held before it */
	cur = s->txn == r->txn;
	/* DATA for a first chunk: fetch_relay_bdat_data() fills the slot,
	 * now or later */
	if (s->verb != FETCH_RELAY_VERB_BDAT_DATA) {
		if (s->verb != FETCH_RELAY_VERB_RESET)
			fetch_relay_map(rep, s->line, sizeof(s->line));
		s->done = 1;
	}
	switch (s->verb) {
	case FETCH_RELAY_VERB_MAIL:
		if (c != 2 && cur)
			r->txn_open = 0;
		break;
	case FETCH_RELAY_VERB_RCPT:
		if (cur && r->rcpt_pending > 0)
			r->rcpt_pending--;
		if (c == 2) {
			if (cur)
				r->accepted++;
			r->result.rcpt_accepted++;
		} else {
			if (c == 5)
				r->result.rcpt_refused++;
			else
				r->result.rcpt_deferred++;
			log_info("relay event=rcpt-refused to=%s reply=\"%u "
			    "%s\"", s->addr, rep->code, rep->text);
		}
		break;
	case FETCH_RELAY_VERB_DATA:
		if (rep->code == 354) {
			/* our trace field goes first (RFC 5321 4.4) */
			r->msg_bytes = 0;
			r->scan = FETCH_RELAY_SCAN_BOL;
			r->prev_cr = 0;
			fetch_relay_lane_text(r, r->received.data,
			    r->received.len);
			fetch_relay_enter_state(r, FETCH_RELAY_STATE_TEXT);
		} else
			fetch_relay_enter_state(r, FETCH_RELAY_STATE_COMMAND);
		break;
	case FETCH_RELAY_VERB_DOT:
		l->messages++;
		fetch_relay_msg_done(r, s, rep);
		break;
	case FETCH_RELAY_VERB_BDAT_DATA:
		fetch_relay_bdat_data(r, s, rep);
		break;
	case FETCH_RELAY_VERB_HELD_DATA:
		fetch_relay_lane_held_data(l, rep);
		break;
	case FETCH_RELAY_VERB_BDAT:
		if (c != 2)
			log_info("relay event=chunk-refused from=%s reply=\"%u "
			    "%s\"", s->addr, rep->code, rep->text);
		break;
	case FETCH_RELAY_VERB_SILENT:
		if (c != 2)
			log_info("relay event=rset-refused lane=%u reply=\"%u "
			    "%s\"", l->idx, rep->code, rep->text);
		break;
	case FETCH_RELAY_VERB_RSET:
	case FETCH_RELAY_VERB_RESET:
	case FETCH_RELAY_VERB_OWN:
		break;
	}
	fetch_relay_resume(r);
}

/* fetch_relay_resume - replies out, a waiting command again, more input */
void
fetch_relay_resume(struct fetch_relay *r)
{
	fetch_relay_flush(r);
	if (r->state == FETCH_RELAY_STATE_WAIT && r->stashed) {
		fetch_relay_enter_state(r, FETCH_RELAY_STATE_COMMAND);
		log_debug("relay event=relay-command line=\"%s\" note=resumed",
		    r->stash);
		if (fetch_relay_dispatch(r, r->stash) == FETCH_RELAY_WAIT)
			fetch_relay_enter_state(r, FETCH_RELAY_STATE_WAIT);
		else
			r->stashed = 0;
	}
	fetch_relay_maybe_stop(r);
	fetch_relay_input(r);
}

/* fetch_relay_unthrottle - the local output left: read again */
void
fetch_relay_unthrottle(struct fetch_relay *r)
{
	if (!r->throttled)
		return;
	r->throttled = 0;
	fetch_relay_input(r);
}

/*
 * fetch_relay_local_lost - a ready lane went away: every lane is dropped
 * and the provider gets 421 (RFC 5321 3.8); it keeps what we did not take
 */
void
fetch_relay_local_lost(struct fetch_relay *r, unsigned lane, const char *why)
{
	r->result.local_lost = 1;
	r->throttled = 0;
	fetch_relay_error(r, FETCH_EXIT_LOCAL, "local MTA: %s", why);
	log_warnx("relay event=local-lost lane=%u reason=\"%s\"", lane, why);
	if (r->io == NULL || r->provider_gone)
		return;
	fetch_relay_lane_drop_all(r);
	fetch_relay_hangup(r, "421 4.4.0 %s the local mail server is "
	    "unavailable, try again later", r->hostname);
}

/* ---- the end ---- */

/* fetch_relay_posted - on the loop: hand the result to the owner */
static void
fetch_relay_posted(void *arg)
{
	struct fetch_relay *r = arg;

	r->done(r->arg, &r->result);	/* may free r */
}

/* fetch_relay_exit - the exit status of a relay that ended cleanly */
static enum fetch_exit
fetch_relay_exit(const struct fetch_relay_result *res)
{
	if (res->messages > 0)
		return FETCH_EXIT_DELIVERED;
	if (res->messages_refused > 0 || res->rcpt_refused > 0 ||
	    res->rcpt_deferred > 0)
		return FETCH_EXIT_LOCAL;	/* offered mail, took none */
	return FETCH_EXIT_NO_MAIL;
}

/* fetch_relay_finish - once both sides are closed, post the result */
void
fetch_relay_finish(struct fetch_relay *r)
{
	if (r->posted || r->io != NULL || !r->local_done)
		return;
	r->ending = 1;
	r->posted = 1;
	fetch_relay_enter_state(r, FETCH_RELAY_STATE_END);
	if (r->result.error[0] == '\0') {
		if (r->result.quit)
			r->result.exit = fetch_relay_exit(&r->result);
		else {
			r->result.exit = FETCH_EXIT_SERVER;
			(void)strlcpy(r->result.error, "the provider ended "
			    "without QUIT", sizeof(r->result.error));
		}
	}
	if (loop_post(fetch_relay_posted, r) == -1)
		fetch_relay_posted(r);
}

/* fetch_relay_end_local - the provider is gone: end the local side */
static void
fetch_relay_end_local(struct fetch_relay *r)
{
	/* half a message on the transaction's lane: hang up there, so
	 * that it is not kept */
	int open = r->state == FETCH_RELAY_STATE_TEXT ||
	    r->state == FETCH_RELAY_STATE_DATA ||
	    r->state == FETCH_RELAY_STATE_CHUNK_DATA ||
	    r->state == FETCH_RELAY_STATE_CHUNK || r->lopen;

	if (!r->local_done)
		fetch_relay_enter_state(r, FETCH_RELAY_STATE_CLOSING);
	fetch_relay_lane_end(r, open);
	if (r->local_done)
		fetch_relay_finish(r);
}

/* fetch_relay_provider_close - close the provider's connection */
static void
fetch_relay_provider_close(struct fetch_relay *r)
{
	io_free(&r->io);
	r->provider_gone = 1;
	fetch_relay_end_local(r);
}

/* fetch_relay_provider_lost - the provider went away or misbehaved */
static void
fetch_relay_provider_lost(struct fetch_relay *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fetch_relay_provider_lost - the provider went away or misbehaved */
static void
fetch_relay_provider_lost(struct fetch_relay *r, const char *fmt, ...)
{
	char why[FETCH_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!r->result.quit)
		fetch_relay_error(r, FETCH_EXIT_SERVER, "%s", why);
	log_debug("relay event=provider-lost state=%s reason=\"%s\"",
	    fetch_relay_state_names[r->state], why);
	fetch_relay_provider_close(r);
}

/* fetch_relay_hangup - reply line first, then close the connection */
void
fetch_relay_hangup(struct fetch_relay *r, const char *fmt, ...)
{
	struct fetch_relay_slot *s;
	unsigned i;
	va_list ap;

	if (r->io == NULL || r->closing)
		return;
	/* what is answered already goes first; the rest is never answered */
	fetch_relay_flush(r);
	r->first = r->end = 0;
	for (i = 0; i < r->nlanes; i++)
		r->lanes[i].lnext = 0;
	s = fetch_relay_push(r, FETCH_RELAY_VERB_OWN);
	va_start(ap, fmt);
	(void)vsnprintf(s->line, FETCH_RELAY_REPLY_MAX - 2, fmt, ap);
	va_end(ap);
	s->done = 1;
	fetch_relay_enter_state(r, FETCH_RELAY_STATE_QUIT);
	fetch_relay_flush(r);
}

/* fetch_relay_lowat - output left: close after the last reply */
static void
fetch_relay_lowat(struct fetch_relay *r)
{
	if (!r->closing)
		return;
	/* RFC 8446 6.1: close_notify first, so the end is not a truncation */
	if (!r->shutdown_sent && io_tls_shutdown(r->io) == 0) {
		r->shutdown_sent = 1;
		return;
	}
	fetch_relay_provider_close(r);
}

/* fetch_relay_io - the one callback for the provider's connection */
static void
fetch_relay_io(struct io *io, enum io_event ev, void *arg)
{
	struct fetch_relay *r = arg;
	const char *what = fetch_relay_descriptions[r->state];

	if (r->ending || r->provider_gone)
		return;
	switch (ev) {
	case IO_DATAIN:
		fetch_relay_input(r);
		break;
	case IO_LOWAT:
		fetch_relay_lowat(r);
		break;
	case IO_DISCONNECTED:
		if (r->closing || r->state == FETCH_RELAY_STATE_QUIT)
			fetch_relay_provider_close(r);
		else
			fetch_relay_provider_lost(r, "the provider closed the "
			    "connection while %s", what);
		break;
	case IO_TIMEOUT:
		/*
		 * Closing: the last reply (a 421 after the local MTA timed
		 * out, say) gets a whole timeout of its own to leave. The
		 * provider's timer started with the local one, so its event
		 * may already be queued when we hang up; the io's timer
		 * runs again, so a provider that never reads is still cut
		 * off one timeout later.
		 */
		if (r->closing &&
		    loop_now_ms() - r->closing_since < r->timeout_ms)
			break;
		/* waiting for the local MTA: its own timeout covers that */
		if (io_queued(io) == 0 && !r->closing &&
		    (!fetch_relay_reads[r->state] || r->throttled ||
		    fetch_relay_lane_owed(r) > 0))
			break;
		fetch_relay_provider_lost(r, "timeout (%u s) while %s",
		    r->timeout_ms / 1000, what);
		break;
	case IO_ERROR:
		fetch_relay_provider_lost(r, "connection error while %s: %s",
		    what, io_error(io));
		break;
	case IO_CONNECTED:
	case IO_TLSREADY:
		break;
	}
}

/* fetch_relay_ehlo_text - our EHLO reply, from the local MTA's */
static void
fetch_relay_ehlo_text(struct fetch_relay *r)
{
	char size[64];
	uint64_t lim = r->lext.size;

	r->size_limit = lim == 0 ? 0 : lim > 2 * FETCH_RELAY_RECEIVED_MAX ?
	    lim - FETCH_RELAY_RECEIVED_MAX : lim / 2;
	if (lim == 0)
		(void)strlcpy(size, "SIZE", sizeof(size));
	else
		(void)snprintf(size, sizeof(size), "SIZE %llu",
		    (unsigned long long)r->size_limit);
	/* CHUNKING always: BDAT goes on as BDAT, or as DATA text */
	(void)snprintf(r->ehlo, sizeof(r->ehlo), "250-%s\r\n250-PIPELINING\r\n"
	    "250-CHUNKING\r\n250-%s\r\n%s%s%s250 ENHANCEDSTATUSCODES",
	    r->hostname, size,
	    r->lext.flags & FETCH_EXT_8BITMIME ? "250-8BITMIME\r\n" : "",
	    r->lext.flags & FETCH_EXT_SMTPUTF8 ? "250-SMTPUTF8\r\n" : "",
	    r->lext.flags & FETCH_EXT_DSN ? "250-DSN\r\n" : "");
}

/* ---- the interface ---- */

/* fetch_relay_start - take both connections; greet the provider */
struct fetch_relay *
fetch_relay_start(struct io *provider, struct fetch_local *local,
    const struct fetch_relay_params *p, fetch_relay_done_fn done, void *arg)
{
	struct fetch_relay *r = xcalloc(1, sizeof(*r));

	r->hostname = xstrdup(p->hostname);
	r->provider_addr = xstrdup(p->provider_addr);
	r->tls = p->tls;
	r->timeout_ms = p->timeout_ms;
	r->done = done;
	r->arg = arg;
	r->io = provider;
	r->lext = *fetch_local_ext(local);
	r->lmtp = fetch_local_lmtp(local);
	r->slots = xcalloc(FETCH_RELAY_SLOTS, sizeof(*r->slots));
	buf_init(&r->received);
	fetch_relay_ehlo_text(r);
	fetch_relay_lane_init(r, local, p->local, p->local_connections);
	io_set_callback(provider, fetch_relay_io, r);
	io_set_timeout(provider, p->timeout_ms);
	io_set_lowat(provider, 0);
	io_set_input_max(provider, IO_INPUT_MAX);
	r->state = FETCH_RELAY_STATE_COMMAND;
	log_debug("relay event=relay-start local=%s protocol=%s",
	    fetch_local_name(local), r->lmtp ? "lmtp" : "smtp");
	/* RFC 2645 section 4: the customer's 220 comes first */
	fetch_relay_own(r, "220 %s ESMTP odmr-fetch", r->hostname);
	return r;
}

/* fetch_relay_stop - SIGTERM: finish the transaction, then 421 */
void
fetch_relay_stop(struct fetch_relay *r)
{
	if (r == NULL || r->ending)
		return;
	r->stopping = 1;
	fetch_relay_maybe_stop(r);
}

/* fetch_relay_abort - close both connections now; done() follows */
void
fetch_relay_abort(struct fetch_relay *r)
{
	if (r == NULL || r->posted)
		return;
	fetch_relay_error(r, FETCH_EXIT_SERVER, "interrupted while %s",
	    fetch_relay_descriptions[r->state]);
	io_free(&r->io);
	r->provider_gone = 1;
	fetch_relay_lane_drop_all(r);
	fetch_relay_finish(r);
}

/* fetch_relay_free - release; the caller's pointer is cleared */
void
fetch_relay_free(struct fetch_relay **rp)
{
	struct fetch_relay *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	io_free(&r->io);
	fetch_relay_lane_release(r);
	buf_release(&r->received);
	free(r->slots);
	free(r->hostname);
	free(r->provider_addr);
	free(r);
}
