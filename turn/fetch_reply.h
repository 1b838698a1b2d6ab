/*
 * NAME
 *	fetch_reply 3h - SMTP replies and EHLO keywords for odmr-fetch
 * SYNOPSIS
 *	#include "fetch_reply.h"
 * DESCRIPTION
 *	Pure functions, no I/O and no policy, shared by the three state
 *	machines of odmr-fetch that read replies (fetch_provider,
 *	fetch_local) or pass them on (fetch_relay).
 *
 *	fetch_reply_line() adds one reply line (without its CRLF) to a
 *	reply (RFC 5321 section 4.2): FETCH_REPLY_MORE while "250-"
 *	continuation lines come, FETCH_REPLY_DONE on the last line, and
 *	FETCH_REPLY_BAD for a line that is not a reply, or whose code
 *	differs from the first line's. The reply's text keeps every line's
 *	text after the code, joined by single spaces, printable (control
 *	octets, double quotes and backslashes replaced) and bounded by
 *	FETCH_REPLY_TEXT_MAX, so that it can go into a key=value log line
 *	and back onto the wire as one reply line. *line_text_r points at
 *	this line's own text, for EHLO keywords.
 *
 *	fetch_reply_ext_line() reads one line of an EHLO or LHLO reply
 *	(after the first) into a struct fetch_ext: the keywords odmr-fetch
 *	acts on (RFC 2920, 6152, 6531, 3461, 1870, 3207, 2034, 3030, 4954,
 *	2645, 1985). SIZE without a number, or SIZE 0, means no fixed
 *	limit (size 0). AUTH keeps the mechanism names, upper case,
 *	separated by single spaces, from every AUTH line (and the old
 *	"AUTH=" form). fetch_reply_ext_format() lists the keywords found,
 *	for a log line.
 *
 *	fetch_reply_has_word() says whether a space-separated list holds a
 *	word, case-insensitively. fetch_reply_enhanced() says whether a
 *	text starts with an RFC 3463 enhanced status code ("5.1.1 ").
 * SEE ALSO
 *	fetch(3), RFC 5321, RFC 1869, RFC 2034
 */
#ifndef TURN_FETCH_REPLY_H
#define TURN_FETCH_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define FETCH_REPLY_LINE_MAX	2048	/* longest reply line taken; RFC 5321
					   4.5.3.1.5 allows 512 */
#define FETCH_REPLY_TEXT_MAX	4096	/* reply text kept, all lines */
#define FETCH_EXT_AUTH_MAX	256	/* the AUTH mechanisms kept */

enum fetch_reply_status {
	FETCH_REPLY_MORE = 0,
	FETCH_REPLY_DONE,
	FETCH_REPLY_BAD,
};

struct fetch_reply {
	unsigned	 code;		/* 220, 250, 334, 354, 421, 550 ... */
	unsigned	 nlines;
	size_t		 len;		/* of text */
	char		 text[FETCH_REPLY_TEXT_MAX];	/* after the code */
};

/* EHLO and LHLO keywords */
#define FETCH_EXT_PIPELINING	0x0001
#define FETCH_EXT_8BITMIME	0x0002
#define FETCH_EXT_SMTPUTF8	0x0004
#define FETCH_EXT_DSN		0x0008
#define FETCH_EXT_SIZE		0x0010
#define FETCH_EXT_STARTTLS	0x0020
#define FETCH_EXT_ENHANCED	0x0040
#define FETCH_EXT_CHUNKING	0x0080
#define FETCH_EXT_AUTH		0x0100
#define FETCH_EXT_ATRN		0x0200
#define FETCH_EXT_ETRN		0x0400

struct fetch_ext {
	unsigned	 flags;		/* FETCH_EXT_* */
	uint64_t	 size;		/* SIZE limit, 0 = none given */
	char		 auth[FETCH_EXT_AUTH_MAX];	/* "CRAM-MD5 ..." */
};

void	fetch_reply_reset(struct fetch_reply *);
enum fetch_reply_status fetch_reply_line(struct fetch_reply *,
	    const char *line, size_t len, const char **line_text_r,
	    const char **error_r);
unsigned fetch_reply_class(const struct fetch_reply *);

void	fetch_reply_ext_line(struct fetch_ext *, const char *text);
void	fetch_reply_ext_format(const struct fetch_ext *, char *out,
	    size_t outsz);
int	fetch_reply_has_word(const char *list, const char *word);
int	fetch_reply_enhanced(const char *text);

#endif
