/*
 * NAME
 *	fetch_relay 3h - odmr-fetch after the turn: an SMTP server toward
 *	the provider that relays each transaction to the local MTA
 * SYNOPSIS
 *	#include "fetch_relay.h"
 *
 *	r = fetch_relay_start(provider_io, local, &params, done, arg);
 *	... done(arg, &result)
 *	fetch_relay_free(&r);
 * DESCRIPTION
 *	After the provider's 250 to ATRN the roles reverse (RFC 2645
 *	section 4): odmr-fetch sends "220 NAME ESMTP" on the same
 *	connection and serves SMTP to the provider, relaying every
 *	transaction to the local MTA (fetch_local 3): first over the
 *	connection already made and greeted, and, toward a local MTA
 *	without CHUNKING, over more connections opened as needed (up to
 *	params.local_connections, from params.local; fetch_relay_lane.c).
 *
 *	What is announced. The EHLO reply offers only what the local MTA
 *	can take, so that the provider adapts (it downgrades 8-bit mail
 *	for a site without 8BITMIME and bounces SMTPUTF8 mail it cannot
 *	deliver): PIPELINING (always; commands are relayed in order),
 *	SIZE (the local limit less room for our Received: field, or no
 *	number when the local MTA states none), 8BITMIME, SMTPUTF8 and
 *	DSN only when the local MTA has them, and ENHANCEDSTATUSCODES
 *	(a local reply without an enhanced code gets a generic one).
 *	CHUNKING (RFC 3030) is offered always, BINARYMIME never: the
 *	provider may send DATA or BDAT, and either text is relayed as it
 *	streams in, holding at most 1 MiB of a message (below). MAIL and RCPT
 *	parameters pass through when the local MTA offers their extension
 *	(SIZE grows by our Received: field; BODY=7BIT or 8BITMIME only);
 *	others get 555.
 *
 *	BDAT. "BDAT size [LAST]" is followed by exactly size octets. To a
 *	local MTA with CHUNKING each chunk goes as a BDAT of its own, the
 *	octets verbatim, our Received: field inside the first chunk (whose
 *	size grows by it): each chunk's reply is the local MTA's reply to
 *	the same BDAT. To one without CHUNKING the chunks become DATA text:
 *	DATA goes with the first chunk (pipelined with MAIL and RCPT when
 *	the local MTA offers PIPELINING), its 354 is awaited, and the
 *	octets follow dot-stuffed, bare LFs as CRLF, a CRLF added if the
 *	text does not end with one, and after the LAST chunk the final
 *	".". A chunk but the LAST one is then answered "250 2.0.0 N octets
 *	received" once its octets are passed on (or with the local MTA's
 *	refusal of DATA), the LAST one with the local reply to the ".".
 *	A message that is one LAST chunk of at most 1 MiB is not waited
 *	for: with more than one connection allowed and PIPELINING, DATA
 *	goes, the chunk is read and held until the 354, and the next
 *	transaction goes to another connection or queues behind the held
 *	text with a RSET of ours in front (fetch_relay_lane.c); a refused
 *	DATA is then that chunk's reply.
 *	The octets of a chunk that cannot be taken are read and dropped:
 *	no MAIL (503 5.5.1), no valid recipient (554 5.5.1), a chunk after
 *	one the local MTA refused DATA for, or DATA inside a BDAT
 *	transaction (503 5.5.1), a chunk larger than our SIZE limit (552
 *	5.3.4, and the transaction ends). A BDAT whose size cannot be read
 *	leaves no way to find the next command (RFC 3030 section 3): the
 *	replies owed are sent, then "421 4.5.4" and the connection is
 *	closed. A local MTA without CHUNKING that has started taking the
 *	text cannot be told to drop it: when the provider abandons such a
 *	transaction (RSET, EHLO, a chunk over the limit) the local
 *	connection is dropped and the provider gets 421.
 *
 *	What is answered. Every reply to MAIL, RCPT, DATA, RSET, BDAT and
 *	to the end of the text is the local MTA's reply to the same command,
 *	passed on (fetch_relay_map() is the one place a local reply becomes
 *	a provider reply): a recipient is acknowledged only once the local
 *	MTA has accepted it, a local 4xx stays a 4xx (the provider keeps
 *	the mail) and a local 5xx a 5xx (it bounces). Replies go out in
 *	the order of the commands, whatever mix of local and own replies
 *	(EHLO, NOOP, 452, 503, a chunk's 250) they are. Commands are
 *	relayed to the local MTA pipelined when it offers PIPELINING, one
 *	at a time otherwise.
 *
 *	LMTP. An LMTP server (RFC 2033) answers the end of the text once
 *	per accepted recipient; the provider expects one reply. So toward
 *	an LMTP server only one recipient per transaction is accepted:
 *	later RCPTs of the same transaction get "452 4.5.3 Too many
 *	recipients", and RFC 5321 section 4.5.3.1.10 has the client send
 *	them in a later transaction. (odmrd keeps them queued and delivers
 *	them at the next pickup.) Each LMTP reply then belongs to exactly
 *	one recipient.
 *
 *	Text. A Received: field of ours (RFC 5321 section 4.4) goes first;
 *	the rest is relayed unchanged but for bare LFs in DATA text (sent
 *	as DATA or converted from BDAT), which become CRLF so that the
 *	local MTA ends the text exactly where we do (a lone "." line) and
 *	nothing can be smuggled past the end. BDAT to BDAT is verbatim.
 *
 *	Failures. If a local connection in use goes away (closes, times
 *	out, sends a 421), every local connection is dropped and the
 *	provider gets "421 4.4.0" at once and the connection is
 *	closed: every recipient it has no 250 for stays queued there, so
 *	nothing is lost. If the provider goes away, the local connection
 *	is dropped without QUIT when a transaction is open there, so a
 *	half-relayed message is never delivered. The provider's QUIT gets
 *	221, then the local MTA gets QUIT too.
 *
 *	fetch_relay_stop() (SIGTERM) lets the transaction in progress
 *	finish, then answers 421 and closes.
 *
 *	done() is called once, from the loop, after both connections are
 *	closed, with the counts and SPEC.md's exit status:
 *	0 at least one message delivered and the provider ended with QUIT;
 *	1 the provider ended with QUIT without any transaction;
 *	4 the local MTA went away, or it refused every message offered;
 *	3 the provider went away without QUIT, broke the protocol, or the
 *	  relay was stopped.
 * DIAGNOSTICS
 *	Info: each recipient or message the local MTA refused, each
 *	further local connection ready; warning: one that could not be
 *	made or offers other extensions; debug: the state changes, every
 *	command and reply, each chunk and message relayed, each command
 *	queued behind a held text (local-hold).
 * SEE ALSO
 *	fetch_local(3), fetch_poll(3), RFC 2645, RFC 5321, RFC 2920,
 *	RFC 2033, RFC 1870, RFC 3461, RFC 3030
 */
#ifndef TURN_FETCH_RELAY_H
#define TURN_FETCH_RELAY_H

#include "fetch.h"
#include "fetch_local.h"
#include "io.h"

enum fetch_relay_state {
	FETCH_RELAY_STATE_COMMAND = 0,	/* reading commands */
	FETCH_RELAY_STATE_WAIT,		/* a command waits for local replies */
	FETCH_RELAY_STATE_DATA,		/* DATA relayed, the 354 awaited */
	FETCH_RELAY_STATE_TEXT,		/* relaying the message text */
	FETCH_RELAY_STATE_CHUNK_DATA,	/* DATA relayed for a BDAT chunk,
					   the 354 awaited */
	FETCH_RELAY_STATE_CHUNK,	/* reading a BDAT chunk's octets */
	FETCH_RELAY_STATE_QUIT,		/* 221 going out, then close */
	FETCH_RELAY_STATE_CLOSING,	/* provider gone: ending locally */
	FETCH_RELAY_STATE_END,
	FETCH_RELAY_STATE_COUNT,
};
extern const char *const fetch_relay_state_names[FETCH_RELAY_STATE_COUNT];

struct fetch_relay_params {
	const char	*hostname;	/* ours: 220, EHLO, Received: */
	const char	*provider_addr;	/* for Received: */
	int		 tls;		/* the connection is inside TLS */
	unsigned	 timeout_ms;
	const struct fetch_local_params *local;	/* to open more lanes;
						   NULL: only the one */
	unsigned	 local_connections;	/* at most, 1..8 */
};

struct fetch_relay_result {
	enum fetch_exit	 exit;
	unsigned	 messages;	/* end of text answered 2xx */
	unsigned long long bytes;	/* their text, as relayed */
	unsigned	 messages_refused;	/* end of text 4xx/5xx */
	unsigned	 rcpt_accepted;
	unsigned	 rcpt_refused;		/* local 5xx */
	unsigned	 rcpt_deferred;		/* local 4xx, our 452 */
	int		 quit;		/* the provider ended with QUIT */
	int		 local_lost;
	unsigned	 local_connections;	/* made and greeted */
	char		 error[FETCH_ERROR_MAX];
};

typedef void (*fetch_relay_done_fn)(void *arg,
    const struct fetch_relay_result *);

struct fetch_relay;

struct fetch_relay *fetch_relay_start(struct io *provider,
	    struct fetch_local *local, const struct fetch_relay_params *,
	    fetch_relay_done_fn, void *arg);
void	fetch_relay_stop(struct fetch_relay *);
void	fetch_relay_abort(struct fetch_relay *);
void	fetch_relay_free(struct fetch_relay **);

#endif
