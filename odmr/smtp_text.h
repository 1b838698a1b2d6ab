/*
 * NAME
 *	smtp_text 3h - facts about a message's text, and its Received: line
 * SYNOPSIS
 *	#include "smtp_text.h"
 * DESCRIPTION
 *	struct smtp_text_scan watches the message text as it streams in
 *	(after dot-unstuffing, in CRLF form, in chunks of any size and
 *	split anywhere) and keeps the facts the session decides on:
 *	- received: the number of "Received:" header fields (the field
 *	  name is matched without regard to case, RFC 5322 section 3.6.7)
 *	  in the header section, which ends at the first empty line; RFC
 *	  5321 section 6.3 loop detection refuses a message with more than
 *	  the configured number (50);
 *	- in_header: still in the header section;
 *	- eightbit: an octet above 127 was seen (a 7BIT message that
 *	  carries one is logged, not refused: Postfix does the same);
 *	- nul: a NUL octet was seen.
 *	Only the start of each header line is examined, so the cost per
 *	octet is a memchr() for the next LF, plus a memchr() for NUL and
 *	an OR per eight octets for the flags. A "Received" name may be
 *	split across feeds; WSP before its colon (RFC 5322 section 4.5,
 *	obsolete syntax) still counts; a line starting with SP or HTAB
 *	continues the field before it; a line of just CRLF or of just LF
 *	ends the header section.
 *
 *	smtp_text_received() appends the trace field of RFC 5321 section
 *	4.4 for one message to out, folded to lines under 78 octets and
 *	ending in CRLF:
 *
 *	Received: from HELO (unknown [ADDR])
 *		(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256 bits))
 *		by HOSTNAME (odmrd) with ESMTPS id SESSION-ID
 *		for <RCPT>; Sat, 28 Nov 2026 16:04:44 +0000
 *
 *	The TLS comment appears only with TLS. The "with" protocol is
 *	chosen as RFC 3848 and RFC 6531 say: SMTP for HELO, ESMTP for
 *	EHLO, an "S" suffix with TLS, an "A" suffix when authenticated,
 *	and UTF8SMTP / UTF8SMTPS / UTF8SMTPA / UTF8SMTPSA for a message
 *	sent with the SMTPUTF8 parameter. "for" is given only when the
 *	message has exactly one recipient (RFC 5321 section 7.2: several
 *	would disclose the others). An IPv6 client is written
 *	[IPv6:ADDR]. Any text taken from the client (the HELO argument)
 *	is cleaned so that it cannot break the header: octets outside
 *	printable ASCII (RFC 5234 VCHAR, so SP too), parentheses,
 *	backslashes and brackets become '?' and it is cut at 255 octets;
 *	a NULL or empty HELO is written "unknown". rcpt is the address
 *	without its angle brackets; a control octet in it becomes '?'.
 *	The date is RFC 5322 section 3.3 form in the local time zone,
 *	with English names whatever the locale.
 *
 *	Each clause starts a line, and a clause that is still too long is
 *	folded between words, so no line has more than 77 octets before
 *	its CRLF unless one word alone is longer (a 255-octet HELO). With
 *	no recipient the date has a line of its own after "id ID;".
 */
#ifndef ODMR_SMTP_TEXT_H
#define ODMR_SMTP_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct buf;

struct smtp_text_scan {
	unsigned	 received;	/* Received: fields in the header */
	int		 in_header;	/* no empty line seen yet */
	int		 eightbit;	/* an octet > 127 was seen */
	int		 nul;		/* a NUL octet was seen */
	/* private: the state of a line that spans chunks */
	size_t		 prefix_len;	/* octets of this line kept below */
	char		 prefix[16];	/* its first octets, to match names */
	int		 line_done;	/* this line's start was classified */
};

void	smtp_text_scan_init(struct smtp_text_scan *);
void	smtp_text_scan_feed(struct smtp_text_scan *, const void *, size_t);

struct smtp_text_received {
	const char	*helo;		/* as the client sent it, or NULL */
	const char	*client_addr;	/* "192.0.2.1" or "2001:db8::1" */
	const char	*hostname;	/* ours */
	const char	*id;		/* session or queue id */
	const char	*rcpt;		/* the one recipient, or NULL */
	int		 esmtp;		/* EHLO rather than HELO */
	int		 smtputf8;
	int		 authenticated;
	const char	*tls_version;	/* NULL without TLS */
	const char	*tls_cipher;
	int		 tls_bits;
	time_t		 when;
};

void	smtp_text_received(struct buf *out, const struct smtp_text_received *);

#endif
