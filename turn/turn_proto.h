/*
 * NAME
 *	turn_proto 3h - SMTP client protocol pieces: replies, EHLO keywords,
 *	MAIL/RCPT parameters, dot-stuffing
 * SYNOPSIS
 *	#include "turn_proto.h"
 * DESCRIPTION
 *	Pure functions with no I/O and no policy, shared by the delivery
 *	engine (turn_session 3) and its unit test.
 *
 *	turn_proto_reply_line() takes one reply line (without its CRLF)
 *	and adds it to a reply (RFC 5321 section 4.2): TURN_PROTO_MORE
 *	while "250-" continuation lines come, TURN_PROTO_DONE on the last
 *	line, TURN_PROTO_BAD for a line that is not a reply or whose code
 *	differs from the first line's. The reply's text keeps every line's
 *	text after the code, joined by spaces, printable (control octets,
 *	quotes and backslashes replaced) and bounded, so that it can go
 *	into a key=value log line and into the store. *line_text_r points
 *	at this line's own text (for EHLO keywords).
 *
 *	turn_proto_ext_line() reads one line of an EHLO reply (after the
 *	first): the keywords this engine uses (RFC 2920, RFC 3030,
 *	RFC 6152, RFC 6531, RFC 3461, RFC 1870, RFC 2034, RFC 3207).
 *	SIZE without a number, or SIZE 0, means no fixed limit.
 *
 *	turn_proto_mail_cmd() and turn_proto_rcpt_cmd() append one command
 *	line with CRLF; each parameter goes only when the customer offers
 *	its extension. They return -1, appending nothing, when a stored
 *	value could break the command line (CR, LF or NUL).
 *
 *	turn_proto_stuff_*() turn a message into DATA text (RFC 5321
 *	section 4.5.2): a leading dot is doubled, a bare LF becomes CRLF,
 *	a missing final CRLF is added, and "." CRLF ends it. The input may
 *	come in pieces of any size.
 * SEE ALSO
 *	turn_session(3), RFC 5321, RFC 2920, RFC 3030, RFC 3461, RFC 1870
 */
#ifndef TURN_TURN_PROTO_H
#define TURN_TURN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "queue.h"

#define TURN_PROTO_LINE_MAX	2048	/* longest reply line taken; RFC 5321
					   4.5.3.1.5 allows 512 */
#define TURN_PROTO_TEXT_MAX	1024	/* reply text kept, all lines */

enum turn_proto_status {
	TURN_PROTO_MORE = 0,
	TURN_PROTO_DONE,
	TURN_PROTO_BAD,
};

struct turn_proto_reply {
	unsigned	 code;		/* 220, 250, 354, 421, 550 ... */
	unsigned	 nlines;
	char		 text[TURN_PROTO_TEXT_MAX];	/* "250 2.0.0 Ok ..." */
};

/* EHLO keywords */
#define TURN_PROTO_EXT_PIPELINING	0x0001
#define TURN_PROTO_EXT_8BITMIME		0x0002
#define TURN_PROTO_EXT_BINARYMIME	0x0004
#define TURN_PROTO_EXT_CHUNKING		0x0008
#define TURN_PROTO_EXT_SMTPUTF8		0x0010
#define TURN_PROTO_EXT_DSN		0x0020
#define TURN_PROTO_EXT_SIZE		0x0040
#define TURN_PROTO_EXT_STARTTLS		0x0080
#define TURN_PROTO_EXT_ENHANCED		0x0100
#define TURN_PROTO_EXT_COUNT		9

struct turn_proto_ext {
	unsigned	 flags;		/* TURN_PROTO_EXT_* */
	uint64_t	 size;		/* SIZE limit, 0 = none */
};

struct turn_proto_stuff {
	int		 bol;		/* at the beginning of a line */
	int		 cr;		/* the last octet was a CR */
};

void	turn_proto_reply_reset(struct turn_proto_reply *);
enum turn_proto_status turn_proto_reply_line(struct turn_proto_reply *,
	    const char *line, size_t len, const char **line_text_r,
	    const char **error_r);
unsigned turn_proto_reply_class(const struct turn_proto_reply *);

void	turn_proto_ext_line(struct turn_proto_ext *, const char *line);
void	turn_proto_ext_format(const struct turn_proto_ext *, char *out,
	    size_t outsz);

int	turn_proto_mail_cmd(struct buf *, const char *sender, uint64_t size,
	    enum queue_body_type body, int smtputf8, enum queue_ret ret,
	    const char *envid, const struct turn_proto_ext *);
int	turn_proto_rcpt_cmd(struct buf *, const char *addr, unsigned notify,
	    const char *orcpt, const struct turn_proto_ext *);

void	turn_proto_stuff_init(struct turn_proto_stuff *);
void	turn_proto_stuff_feed(struct turn_proto_stuff *, const void *,
	    size_t, struct buf *out);
void	turn_proto_stuff_end(struct turn_proto_stuff *, struct buf *out);

#endif
