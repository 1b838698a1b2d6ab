/*
 * NAME
 *	turn_dsn 3 - delivery status notifications (RFC 3461, 3464, 6522)
 * SYNOPSIS
 *	#include "turn_dsn.h"
 *
 *	struct turn_dsn *
 *	turn_dsn_new(params, error_r)
 *
 *	int
 *	turn_dsn_original(dsn, data, len, error_r)
 *
 *	int
 *	turn_dsn_finish(dsn, out, error_r)
 *
 *	void
 *	turn_dsn_free(&dsn)
 *
 *	int
 *	turn_dsn_wanted(rcpt, kind)
 *
 *	int
 *	turn_dsn_status_from_reply(reply, out)
 * DESCRIPTION
 *	turn_dsn_new() checks its arguments and renders, at once, the
 *	top-level header fields, the human-readable part and the
 *	message/delivery-status part (RFC 3464 section 2): per-message
 *	fields Original-Envelope-Id (the ENVID, decoded from xtext as RFC
 *	3461 section 6.3 (a) says, or as received when it does not decode
 *	to printable text), Reporting-MTA, Arrival-Date; then for each
 *	recipient Original-Recipient (only with an ORCPT, RFC 3461 section
 *	6.3 (d), its address decoded from xtext), Final-Recipient, Action,
 *	Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date and, for a
 *	delayed recipient, Will-Retry-Until. A diagnostic that is an SMTP
 *	reply has type "smtp"; any other text has type "X-odmrd". Its
 *	control characters become spaces and its 8-bit octets "?", and it
 *	is cut at TURN_DSN_DIAG_MAX octets.
 *
 *	turn_dsn_original() keeps what the DSN may return: the whole
 *	message while it may still be returned whole (a failure without
 *	RET=HDRS, no longer than return_max), else its header section
 *	only (at most TURN_DSN_HEADER_MAX octets, cut at a line end). So
 *	the memory held is bounded by return_max whatever the message.
 *
 *	turn_dsn_finish() chooses what is returned, picks a boundary that
 *	occurs nowhere in the parts ("=_" cannot occur in base64 or
 *	quoted-printable text either; a candidate that does occur is
 *	replaced by the next, TURN_DSN_BOUNDARY_TRIES times), and appends
 *	the DSN to out. A returned header section with a NUL, a bare CR or
 *	a line over 998 octets is repaired (spaces; the line folded), as a
 *	header section is only shown to the sender; a whole message is
 *	never altered, only its line ends made CRLF.
 *
 *	All header fields are folded at spaces to 78 columns where
 *	possible (RFC 5322 section 2.1.1); a word too long for that is
 *	broken at TURN_DSN_FOLD_HARD octets, so no line passes 998. Dates
 *	are RFC 5322 dates in UTC. The Message-ID is built from the date,
 *	the queue id, the kind, the nonce and the reporting MTA.
 * DIAGNOSTICS
 *	See turn_dsn.h. turn_dsn_status_from_reply() returns 1 when the
 *	reply carries an enhanced status code (RFC 3463, of the reply's
 *	class), 0 when out is the class default ("5.0.0") of a reply
 *	without one, and -1, with out empty, for text that is not an SMTP
 *	reply.
 * SEE ALSO
 *	turn_mime(3), queue(3), RFC 3461, RFC 3463, RFC 3464, RFC 3834,
 *	RFC 5322, RFC 6522, RFC 6532, RFC 6533
 */
#include "config.h"

#include <sys/random.h>
#include <sys/types.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "xmalloc.h"

#include "queue.h"
#include "turn_dsn.h"

#define TURN_DSN_LINE_MAX	998	/* RFC 5322 2.1.1 */
#define TURN_DSN_FOLD_SOFT	78	/* RFC 5322 2.1.1: SHOULD */
#define TURN_DSN_FOLD_HARD	900	/* a longer word is broken here */
#define TURN_DSN_TEXT_WIDTH	72	/* the human-readable part */
#define TURN_DSN_HEADER_MAX	(256 * 1024)	/* header section kept */
#define TURN_DSN_HOST_MAX	255	/* reporting and remote MTA */
#define TURN_DSN_ADDR_MAX	512	/* RFC 5321 4.5.3.1.3 says 256 */
#define TURN_DSN_XTEXT_MAX	1000	/* ENVID and ORCPT as stored */
#define TURN_DSN_DIAG_MAX	2000	/* diagnostic octets kept */
#define TURN_DSN_BOUNDARY_MAX	70	/* RFC 2046 5.1.1 */
#define TURN_DSN_BOUNDARY_TRIES	64
#define TURN_DSN_DATE_MAX	64
#define TURN_DSN_TIME_MAX	UINT64_C(253402300799)	/* 9999-12-31 */
#define TURN_DSN_ERR_MAX	200

/* Why the third part holds what it holds. */
enum turn_dsn_why {
	TURN_DSN_WHY_ASKED,		/* RET, or the kind */
	TURN_DSN_WHY_SIZE,		/* longer than return_max */
	TURN_DSN_WHY_UNFIT,		/* NUL, bare CR, line over 998 */
};

struct turn_dsn {
	enum turn_dsn_kind kind;
	int		 want_full;	/* failure without RET=HDRS */
	int		 smtputf8;	/* the original came with SMTPUTF8 */
	int		 global_addr;	/* it has an address that is not ASCII */
	size_t		 return_max;
	char		 id[QUEUE_ID_LEN + 1];
	uint64_t	 nonce;

	struct buf	 head;		/* top-level fields but the MIME ones */
	struct buf	 text;		/* human-readable part but its end */
	struct buf	 status;	/* message/delivery-status */

	/* the original, as fed */
	struct buf	 orig;
	int		 have_orig;
	uint64_t	 orig_len;	/* octets fed */
	int		 full;		/* orig still holds all of them */
	int		 hdr_done;	/* the header section's end is known */
	int		 hdr_cut;	/* it was over TURN_DSN_HEADER_MAX */
	size_t		 hdr_len;	/* its octets, without the empty line */
	size_t		 line_start;	/* the scanner: current line in orig */
	size_t		 line_octets;
	int		 line_cr;	/* its last octet is a CR */

	/* the result */
	int		 finished;
	enum turn_dsn_return returned;
	int		 eightbit;
	int		 global;
	char		 boundary[TURN_DSN_BOUNDARY_MAX + 1];
};

/* the last error of this thread: see turn_dsn.h */
static __thread char turn_dsn_errbuf[TURN_DSN_ERR_MAX];

static const char *const turn_dsn_kind_names[] = {
	[TURN_DSN_FAILURE] = "failure",
	[TURN_DSN_DELAY] = "delay",
	[TURN_DSN_SUCCESS] = "success",
};

static const char *const turn_dsn_return_names[] = {
	[TURN_DSN_RETURN_NONE] = "none",
	[TURN_DSN_RETURN_HEADERS] = "headers",
	[TURN_DSN_RETURN_FULL] = "full",
};

/* RFC 3464 2.3.3 action values, and what the text says of each */
static const struct {
	const char	*action;
	const char	*said;
	char		 class;		/* of the default status */
} turn_dsn_actions[] = {
	{ "failed", "delivery failed", '5' },
	{ "delayed", "not delivered yet, still trying", '4' },
	{ "delivered", "delivered", '2' },
	{ "relayed", "relayed to a system that sends no delivery reports",
	    '2' },
	{ "expanded", "delivered, and forwarded to further addresses",
	    '2' },
};

#define TURN_DSN_NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* turn_dsn_fail - set *error_r to a formatted message; always -1 */
static int
turn_dsn_fail(const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* turn_dsn_fail - set *error_r to a formatted message; always -1 */
static int
turn_dsn_fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(turn_dsn_errbuf, sizeof(turn_dsn_errbuf), fmt, ap);
	va_end(ap);
	if (error_r != NULL)
		*error_r = turn_dsn_errbuf;
	return -1;
}

/* turn_dsn_kind_name - "failure", "delay", "success" */
const char *
turn_dsn_kind_name(enum turn_dsn_kind kind)
{
	if ((size_t)kind >= TURN_DSN_NELEM(turn_dsn_kind_names))
		return "unknown";
	return turn_dsn_kind_names[kind];
}

/* turn_dsn_return_name - "none", "headers", "full" */
const char *
turn_dsn_return_name(enum turn_dsn_return r)
{
	if ((size_t)r >= TURN_DSN_NELEM(turn_dsn_return_names))
		return "unknown";
	return turn_dsn_return_names[r];
}

/* turn_dsn_wanted - RFC 3461 4.1: does NOTIFY ask for this kind of DSN */
int
turn_dsn_wanted(const struct queue_rcpt *r, enum turn_dsn_kind kind)
{
	unsigned notify = r->notify;

	/*
	 * RFC 3461 4.1: without NOTIFY the default is FAILURE or
	 * FAILURE,DELAY; we take the latter. NEVER excludes the others,
	 * so a value that has it with anything else is NEVER too.
	 */
	if (notify == 0)
		notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY;
	if (notify & QUEUE_NOTIFY_NEVER)
		return 0;
	switch (kind) {
	case TURN_DSN_FAILURE:
		return (notify & QUEUE_NOTIFY_FAILURE) != 0;
	case TURN_DSN_DELAY:
		return (notify & QUEUE_NOTIFY_DELAY) != 0;
	case TURN_DSN_SUCCESS:
		return (notify & QUEUE_NOTIFY_SUCCESS) != 0;
	}
	return 0;
}

/* turn_dsn_digits - 1 to max decimal digits at p; their count, or 0 */
static size_t
turn_dsn_digits(const char *p, size_t max)
{
	size_t n = 0;

	while (n <= max && p[n] >= '0' && p[n] <= '9')
		n++;
	return n >= 1 && n <= max ? n : 0;
}

/* turn_dsn_status_len - RFC 3463 class.subject.detail at p; its length */
static size_t
turn_dsn_status_len(const char *p)
{
	size_t n, len;

	if ((p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
		return 0;
	len = 2;
	if ((n = turn_dsn_digits(p + len, 3)) == 0 || p[len + n] != '.')
		return 0;
	len += n + 1;
	if ((n = turn_dsn_digits(p + len, 3)) == 0)
		return 0;
	return len + n;
}

/* turn_dsn_reply - an SMTP reply: RFC 5321 4.2, 3 digits, SP, "-" or end */
static int
turn_dsn_reply(const char *text)
{
	return text[0] >= '2' && text[0] <= '5' &&
	    turn_dsn_digits(text, 3) == 3 &&
	    (text[3] == '\0' || text[3] == ' ' || text[3] == '-');
}

/* turn_dsn_status_from_reply - "550 5.1.1 x" to "5.1.1"; see above */
int
turn_dsn_status_from_reply(const char *reply, char out[TURN_DSN_STATUS_LEN])
{
	const char *p;
	size_t n;

	out[0] = '\0';
	/* RFC 3463 2: a status is of class 2, 4 or 5; 3xx is no outcome */
	if (reply == NULL || !turn_dsn_reply(reply) || reply[0] == '3')
		return -1;
	p = reply[3] == '\0' ? reply + 3 : reply + 4;
	while (*p == ' ')
		p++;
	/* RFC 3463 2: the class of the enhanced code is the reply's */
	if ((n = turn_dsn_status_len(p)) > 0 && p[0] == reply[0] &&
	    (p[n] == '\0' || p[n] == ' ' || p[n] == '\t') &&
	    n < TURN_DSN_STATUS_LEN) {
		memcpy(out, p, n);
		out[n] = '\0';
		return 1;
	}
	(void)snprintf(out, TURN_DSN_STATUS_LEN, "%c.0.0", reply[0]);
	return 0;
}

/* turn_dsn_utf8 - the length of a valid UTF-8 character at p, or 0 */
static size_t
turn_dsn_utf8(const unsigned char *p, size_t len, uint32_t *cp)
{
	size_t n, i;
	uint32_t c, min;

	if (len == 0)
		return 0;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2; c = p[0] & 0x1f; min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3; c = p[0] & 0x0f; min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4; c = p[0] & 0x07; min = 0x10000;
	} else
		return 0;
	if (n > len)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if (c < min || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	*cp = c;
	return n;
}

/* turn_dsn_ascii - printable ASCII only (space included) */
static int
turn_dsn_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* turn_dsn_check_addr - an address we can write: no CTL, valid UTF-8 */
static int
turn_dsn_check_addr(const char *addr, const char *what, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)addr;
	size_t len, i, n;
	uint32_t cp;

	if (addr == NULL)
		return turn_dsn_fail(error_r, "%s address missing", what);
	if ((len = strlen(addr)) == 0 || len > TURN_DSN_ADDR_MAX)
		return turn_dsn_fail(error_r, "%s address empty or longer "
		    "than %d octets", what, TURN_DSN_ADDR_MAX);
	for (i = 0; i < len; i += n) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return turn_dsn_fail(error_r, "control character in "
			    "%s address", what);
		if ((n = turn_dsn_utf8(p + i, len - i, &cp)) == 0)
			return turn_dsn_fail(error_r, "%s address is not "
			    "valid UTF-8", what);
	}
	return 0;
}

/* turn_dsn_check_host - a host name: letters, digits, "-", ".", "_" */
static int
turn_dsn_check_host(const char *host)
{
	size_t i;

	if (host == NULL || host[0] == '\0' || strlen(host) > TURN_DSN_HOST_MAX)
		return 0;
	for (i = 0; host[i] != '\0'; i++)
		if (!((host[i] >= 'a' && host[i] <= 'z') ||
		    (host[i] >= 'A' && host[i] <= 'Z') ||
		    (host[i] >= '0' && host[i] <= '9') ||
		    host[i] == '-' || host[i] == '.' || host[i] == '_'))
			return 0;
	return 1;
}

/*
 * turn_dsn_put_addr - an address, raw when ASCII or when raw UTF-8 may
 * be written, else as RFC 6533 utf-8-addr-xtext. In the utf-8 forms
 * "+", "=", "\" and the space are embedded too (QCHAR, QUCHAR).
 */
static void
turn_dsn_put_addr(struct buf *b, const char *addr, int raw_utf8)
{
	const unsigned char *p = (const unsigned char *)addr;
	size_t len = strlen(addr), i, n;
	uint32_t cp;

	if (turn_dsn_ascii(addr)) {
		buf_puts(b, addr);
		return;
	}
	for (i = 0; i < len; i += n) {
		if ((n = turn_dsn_utf8(p + i, len - i, &cp)) == 0) {
			/* checked already; stay safe all the same */
			buf_puts(b, "\\x{FFFD}");
			n = 1;
		} else if (cp > 0x20 && cp < 0x7f && cp != '+' && cp != '=' &&
		    cp != '\\')
			buf_putc(b, (int)cp);
		else if (cp >= 0x80 && raw_utf8)
			buf_append(b, p + i, n);
		else
			buf_printf(b, "\\x{%" PRIX32 "}", cp);
	}
}

/* turn_dsn_addr_type - "rfc822" for ASCII, "utf-8" (RFC 6533) else */
static const char *
turn_dsn_addr_type(const char *addr)
{
	return turn_dsn_ascii(addr) ? "rfc822" : "utf-8";
}

/* turn_dsn_hexval - the value of a hex digit, or -1 */
static int
turn_dsn_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * turn_dsn_xtext - RFC 3461 4: decode xtext to printable ASCII; 0, or -1
 * when it is not xtext or does not decode to printable text. Lower-case
 * hex digits are taken too.
 */
static int
turn_dsn_xtext(const char *in, struct buf *out)
{
	int hi, lo;

	for (; *in != '\0'; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '+') {
			if ((hi = turn_dsn_hexval(in[1])) < 0 ||
			    (lo = turn_dsn_hexval(in[2])) < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			in += 2;
			if (c < 0x20 || c > 0x7e)
				return -1;
		} else if (c < 0x21 || c > 0x7e || c == '=')
			return -1;
		buf_putc(out, c);
	}
	return 0;
}

/*
 * turn_dsn_envid - the Original-Envelope-Id value: the ENVID decoded
 * from xtext, else as stored when that is printable; 0 if neither
 */
static int
turn_dsn_envid(const char *envid, struct buf *out)
{
	buf_reset(out);
	if (envid == NULL || envid[0] == '\0' ||
	    strlen(envid) > TURN_DSN_XTEXT_MAX)
		return 0;
	if (turn_dsn_xtext(envid, out) == 0 && out->len > 0)
		return 1;
	buf_reset(out);
	if (!turn_dsn_ascii(envid))
		return 0;
	buf_puts(out, envid);
	return 1;
}

/*
 * turn_dsn_orcpt - the Original-Recipient value from "type;xtext":
 * "type; address", the address decoded from xtext (a utf-8 one is
 * already utf-8-addr-xtext, RFC 6533 3, and stays); 0 if unusable
 */
static int
turn_dsn_orcpt(const char *orcpt, struct buf *out)
{
	const char *semi;
	struct buf dec;
	size_t tlen, i;
	int ok = 1;

	buf_reset(out);
	if (orcpt == NULL || strlen(orcpt) > TURN_DSN_XTEXT_MAX ||
	    (semi = strchr(orcpt, ';')) == NULL || semi == orcpt ||
	    semi[1] == '\0')
		return 0;
	tlen = (size_t)(semi - orcpt);
	/* RFC 3461 4.2: addr-type is an atom */
	for (i = 0; i < tlen; i++)
		if (!((orcpt[i] >= 'a' && orcpt[i] <= 'z') ||
		    (orcpt[i] >= 'A' && orcpt[i] <= 'Z') ||
		    (orcpt[i] >= '0' && orcpt[i] <= '9') ||
		    strchr("!#$%&'*+-/=?^_`{|}~", orcpt[i]) != NULL))
			return 0;
	buf_append(out, orcpt, tlen);
	buf_puts(out, "; ");
	if (tlen == 5 && strncasecmp(orcpt, "utf-8", 5) == 0) {
		if (!turn_dsn_ascii(semi + 1) || strchr(semi + 1, ' ') != NULL)
			return 0;
		buf_puts(out, semi + 1);
		return 1;
	}
	buf_init(&dec);
	if (turn_dsn_xtext(semi + 1, &dec) == 0)
		buf_append(out, dec.data, dec.len);
	else if (turn_dsn_ascii(semi + 1) && strchr(semi + 1, ' ') == NULL)
		buf_puts(out, semi + 1);
	else
		ok = 0;
	buf_release(&dec);
	return ok;
}

/*
 * turn_dsn_clean - text fit for a field or a line: control characters
 * (CR, LF, TAB) become one space, 8-bit octets "?", the ends trimmed;
 * at most max octets, then "..."
 */
static void
turn_dsn_clean(struct buf *out, const char *in, size_t max)
{
	size_t start = out->len, n = 0;
	int space = 0;

	for (; *in != '\0' && n < max; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c == 0x7f || c == ' ') {
			space = 1;
			continue;
		}
		if (space && out->len > start) {
			buf_putc(out, ' ');
			n++;
		}
		space = 0;
		buf_putc(out, c >= 0x80 ? '?' : c);
		n++;
	}
	if (*in != '\0')
		buf_puts(out, "...");
}

/* turn_dsn_date - an RFC 5322 3.3 date in UTC; -1 out of range */
static int
turn_dsn_date(uint64_t t, char out[TURN_DSN_DATE_MAX])
{
	/* names from tables: the locale does not matter */
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	time_t when = (time_t)t;
	struct tm tm;
	int n;

	out[0] = '\0';
	if (t > TURN_DSN_TIME_MAX || (uint64_t)when != t ||
	    gmtime_r(&when, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11)
		return -1;
	n = snprintf(out, TURN_DSN_DATE_MAX,
	    "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
	    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	if (n < 0 || n >= TURN_DSN_DATE_MAX)
		return -1;
	return 0;
}

/* turn_dsn_break - where to break a word of len octets: not in UTF-8 */
static size_t
turn_dsn_break(const unsigned char *p, size_t len, size_t max)
{
	size_t at = max;

	if (len <= max)
		return len;
	/* back over continuation octets, so a character stays whole */
	while (at > max - 3 && (p[at] & 0xc0) == 0x80)
		at--;
	return at;
}

/*
 * turn_dsn_fold - first, then words (split at spaces) on lines of at
 * most width octets; a line passes width only for a single word, and a
 * word over TURN_DSN_FOLD_HARD octets is broken. Lines end in CRLF and
 * each after the first begins with cont.
 */
static void
turn_dsn_fold(struct buf *b, const char *first, const char *words,
    size_t width, const char *cont)
{
	const unsigned char *p = (const unsigned char *)words;
	size_t col = strlen(first), clen = strlen(cont), wlen, n;
	int fresh = 1;		/* no word on this line yet */

	buf_puts(b, first);
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		wlen = strcspn((const char *)p, " ");
		while (wlen > 0) {
			n = turn_dsn_break(p, wlen, TURN_DSN_FOLD_HARD);
			if (!fresh && col + 1 + n > width) {
				buf_puts(b, "\r\n");
				buf_puts(b, cont);
				col = clen;
				fresh = 1;
			}
			if (!fresh) {
				buf_putc(b, ' ');
				col++;
			}
			buf_append(b, p, n);
			col += n;
			fresh = 0;
			p += n;
			wlen -= n;
			if (wlen > 0) {
				/* the rest of a broken word: the next line */
				buf_puts(b, "\r\n");
				buf_puts(b, cont);
				col = clen;
				fresh = 1;
			}
		}
	}
	buf_puts(b, "\r\n");
}

/* turn_dsn_field - "Name: value" CRLF, folded at spaces (RFC 5322) */
static void
turn_dsn_field(struct buf *b, const char *name, const char *value)
{
	char first[64];
	int n;

	/* our field names are short; a long one is a bug, made visible */
	n = snprintf(first, sizeof(first), "%s: ", name);
	if (n < 0 || (size_t)n >= sizeof(first))
		(void)snprintf(first, sizeof(first), "X-Field-Too-Long: ");
	turn_dsn_fold(b, first, value, TURN_DSN_FOLD_SOFT, " ");
}

/* turn_dsn_fieldf - turn_dsn_field() with a formatted value */
static void
turn_dsn_fieldf(struct buf *b, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* turn_dsn_fieldf - turn_dsn_field() with a formatted value */
static void
turn_dsn_fieldf(struct buf *b, const char *name, const char *fmt, ...)
{
	struct buf v;
	va_list ap;

	buf_init(&v);
	va_start(ap, fmt);
	buf_vprintf(&v, fmt, ap);
	va_end(ap);
	turn_dsn_field(b, name, buf_str(&v));
	buf_release(&v);
}

/* turn_dsn_para - a paragraph of the human-readable part, wrapped */
static void
turn_dsn_para(struct buf *b, const char *indent, const char *text)
{
	turn_dsn_fold(b, indent, text, TURN_DSN_TEXT_WIDTH, indent);
}

/* turn_dsn_action - the index of a known action, or -1 */
static int
turn_dsn_action(const char *action)
{
	size_t i;

	for (i = 0; i < TURN_DSN_NELEM(turn_dsn_actions); i++)
		if (strcasecmp(action, turn_dsn_actions[i].action) == 0)
			return (int)i;
	return -1;
}

/* turn_dsn_default_action - the action of a recipient of this kind */
static const char *
turn_dsn_default_action(enum turn_dsn_kind kind)
{
	switch (kind) {
	case TURN_DSN_FAILURE:
		return "failed";
	case TURN_DSN_DELAY:
		return "delayed";
	case TURN_DSN_SUCCESS:
		break;
	}
	return "delivered";
}

/* turn_dsn_nonce - a value to make the boundary and Message-ID unique */
static uint64_t
turn_dsn_nonce(uint64_t now)
{
	static __thread uint64_t seq;
	struct timespec ts;
	uint64_t n = 0;

	if (getrandom(&n, sizeof(n), GRND_NONBLOCK) == (ssize_t)sizeof(n) &&
	    n != 0)
		return n;
	/* no entropy yet (early boot): the time, the process, a counter */
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	n = now ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^
	    (++seq * UINT64_C(0x9e3779b97f4a7c15));
	return n != 0 ? n : 1;
}

/* turn_dsn_check - the arguments turn_dsn_new() can work with */
static int
turn_dsn_check(const struct turn_dsn_params *p, const char **error_r)
{
	const struct queue_msg *m = p->msg;
	char date[TURN_DSN_DATE_MAX];
	size_t i;

	if (m == NULL || m->sender == NULL)
		return turn_dsn_fail(error_r, "no message");
	/* RFC 5321 4.5.5: nothing answers the null sender; no loops */
	if (m->sender[0] == '\0')
		return turn_dsn_fail(error_r, "no DSN to the null sender");
	if ((size_t)p->kind >= TURN_DSN_NELEM(turn_dsn_kind_names))
		return turn_dsn_fail(error_r, "unknown DSN kind %d",
		    (int)p->kind);
	if (p->rcpts == NULL || p->nrcpt == 0)
		return turn_dsn_fail(error_r, "no recipient to report");
	if (!turn_dsn_check_host(p->reporting_mta))
		return turn_dsn_fail(error_r, "reporting MTA is not a host "
		    "name");
	if (turn_dsn_check_addr(m->sender, "sender", error_r) == -1)
		return -1;
	if (!m->smtputf8 && !turn_dsn_ascii(m->sender))
		return turn_dsn_fail(error_r, "UTF-8 sender address without "
		    "SMTPUTF8");
	if (turn_dsn_date(p->now, date) == -1 ||
	    turn_dsn_date(m->arrival, date) == -1 ||
	    turn_dsn_date(p->expires, date) == -1)
		return turn_dsn_fail(error_r, "time out of range");
	for (i = 0; i < p->nrcpt; i++) {
		const struct turn_dsn_rcpt *r = &p->rcpts[i];

		if (r->rcpt == NULL)
			return turn_dsn_fail(error_r, "recipient %zu missing",
			    i);
		if (turn_dsn_check_addr(r->rcpt->addr, "recipient",
		    error_r) == -1)
			return -1;
		if (r->action != NULL && turn_dsn_action(r->action) < 0)
			return turn_dsn_fail(error_r, "unknown action for "
			    "recipient %zu", i);
		if (r->status != NULL &&
		    (strlen(r->status) >= TURN_DSN_STATUS_LEN ||
		    turn_dsn_status_len(r->status) != strlen(r->status)))
			return turn_dsn_fail(error_r, "bad status for "
			    "recipient %zu", i);
		if (turn_dsn_date(r->last_attempt, date) == -1 ||
		    turn_dsn_date(r->rcpt->last_attempt, date) == -1)
			return turn_dsn_fail(error_r, "time out of range");
	}
	return 0;
}

/* turn_dsn_subject - the Subject: of each kind */
static const char *
turn_dsn_subject(enum turn_dsn_kind kind)
{
	switch (kind) {
	case TURN_DSN_FAILURE:
		return "Undelivered Mail Returned to Sender";
	case TURN_DSN_DELAY:
		return "Delayed Mail (still being retried)";
	case TURN_DSN_SUCCESS:
		break;
	}
	return "Successful Mail Delivery Report";
}

/* turn_dsn_head - the top-level fields, but the MIME ones */
static void
turn_dsn_head(struct turn_dsn *d, const struct turn_dsn_params *p)
{
	char date[TURN_DSN_DATE_MAX], stamp[32];
	time_t when = (time_t)p->now;
	struct tm tm;
	struct buf v;

	buf_init(&v);
	(void)turn_dsn_date(p->now, date);
	turn_dsn_field(&d->head, "Date", date);
	buf_printf(&v, "Mail Delivery System <MAILER-DAEMON@%s>",
	    p->reporting_mta);
	turn_dsn_field(&d->head, "From", buf_str(&v));
	buf_reset(&v);
	buf_putc(&v, '<');
	buf_puts(&v, p->msg->sender);	/* checked: raw UTF-8 only global */
	buf_putc(&v, '>');
	turn_dsn_field(&d->head, "To", buf_str(&v));
	turn_dsn_field(&d->head, "Subject", turn_dsn_subject(p->kind));
	if (gmtime_r(&when, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
		(void)snprintf(stamp, sizeof(stamp), "%" PRIu64, p->now);
	turn_dsn_fieldf(&d->head, "Message-ID", "<%s.%s.%c%016" PRIx64 "@%s>",
	    stamp, d->id[0] != '\0' ? d->id : "0",
	    turn_dsn_kind_name(p->kind)[0] - 'a' + 'A', d->nonce,
	    p->reporting_mta);
	/* RFC 3834 5: so that no auto-responder answers a DSN */
	turn_dsn_field(&d->head, "Auto-Submitted", "auto-replied");
	buf_release(&v);
}

/* turn_dsn_diag - the diagnostic of a recipient, cleaned; 0 if none */
static int
turn_dsn_diag(const struct turn_dsn_rcpt *r, struct buf *out, int *smtp)
{
	const char *d = r->diagnostic != NULL ? r->diagnostic :
	    r->rcpt->last_error;
	buf_reset(out);
	*smtp = 0;
	if (d == NULL)
		return 0;
	turn_dsn_clean(out, d, TURN_DSN_DIAG_MAX);
	if (out->len == 0)
		return 0;
	*smtp = turn_dsn_reply(buf_str(out));
	return 1;
}

/* turn_dsn_rcpt_status - the Status: given, from the reply, or default */
static void
turn_dsn_rcpt_status(const struct turn_dsn_rcpt *r, const char *diag,
    int smtp, char cls, char out[TURN_DSN_STATUS_LEN])
{
	if (r->status != NULL) {
		(void)snprintf(out, TURN_DSN_STATUS_LEN, "%s", r->status);
		return;
	}
	if (smtp && turn_dsn_status_from_reply(diag, out) >= 0)
		return;
	(void)snprintf(out, TURN_DSN_STATUS_LEN, "%c.0.0", cls);
}

/* turn_dsn_rcpt_report - one recipient's fields and text */
static void
turn_dsn_rcpt_report(struct turn_dsn *d, const struct turn_dsn_params *p,
    const struct turn_dsn_rcpt *r)
{
	const char *action = r->action != NULL ? r->action :
	    turn_dsn_default_action(p->kind);
	int a = turn_dsn_action(action), smtp, has_diag;
	char status[TURN_DSN_STATUS_LEN], date[TURN_DSN_DATE_MAX];
	uint64_t last = r->last_attempt != 0 ? r->last_attempt :
	    r->rcpt->last_attempt;
	struct buf diag, v, host;

	buf_init(&diag);
	buf_init(&v);
	buf_init(&host);
	has_diag = turn_dsn_diag(r, &diag, &smtp);
	turn_dsn_rcpt_status(r, buf_str(&diag), smtp,
	    turn_dsn_actions[a].class, status);
	if (r->remote_mta != NULL)
		turn_dsn_clean(&host, r->remote_mta, TURN_DSN_HOST_MAX);

	/* RFC 3464 2.3: a blank line, then the per-recipient fields */
	buf_puts(&d->status, "\r\n");
	if (turn_dsn_orcpt(r->rcpt->orcpt, &v))
		turn_dsn_field(&d->status, "Original-Recipient", buf_str(&v));
	buf_reset(&v);
	buf_printf(&v, "%s; ", turn_dsn_addr_type(r->rcpt->addr));
	turn_dsn_put_addr(&v, r->rcpt->addr, d->global_addr);
	turn_dsn_field(&d->status, "Final-Recipient", buf_str(&v));
	turn_dsn_field(&d->status, "Action", turn_dsn_actions[a].action);
	turn_dsn_field(&d->status, "Status", status);
	if (host.len > 0)
		turn_dsn_fieldf(&d->status, "Remote-MTA", "dns; %s",
		    buf_str(&host));
	if (has_diag)
		turn_dsn_fieldf(&d->status, "Diagnostic-Code", "%s; %s",
		    smtp ? "smtp" : "X-odmrd", buf_str(&diag));
	if (last != 0 && turn_dsn_date(last, date) == 0)
		turn_dsn_field(&d->status, "Last-Attempt-Date", date);
	if (strcmp(turn_dsn_actions[a].action, "delayed") == 0 &&
	    p->expires != 0 && turn_dsn_date(p->expires, date) == 0)
		turn_dsn_field(&d->status, "Will-Retry-Until", date);

	/* the human-readable lines */
	buf_reset(&v);
	buf_putc(&v, '<');
	turn_dsn_put_addr(&v, r->rcpt->addr, d->global_addr);
	buf_printf(&v, ">: %s (%s)", turn_dsn_actions[a].said, status);
	buf_puts(&d->text, "\r\n");
	turn_dsn_para(&d->text, "", buf_str(&v));
	if (has_diag) {
		buf_reset(&v);
		if (smtp && host.len > 0)
			buf_printf(&v, "The server %s replied: %s",
			    buf_str(&host), buf_str(&diag));
		else if (smtp)
			buf_printf(&v, "The reply was: %s", buf_str(&diag));
		else
			buf_printf(&v, "Reason: %s", buf_str(&diag));
		turn_dsn_para(&d->text, "    ", buf_str(&v));
	} else if (host.len > 0) {
		buf_reset(&v);
		buf_printf(&v, "Next hop: %s", buf_str(&host));
		turn_dsn_para(&d->text, "    ", buf_str(&v));
	}
	buf_release(&diag);
	buf_release(&v);
	buf_release(&host);
}

/* turn_dsn_intro - the first paragraphs of the human-readable part */
static void
turn_dsn_intro(struct turn_dsn *d, const struct turn_dsn_params *p)
{
	char date[TURN_DSN_DATE_MAX];
	struct buf v;

	buf_init(&v);
	buf_printf(&v, "This is the mail delivery system at %s.",
	    p->reporting_mta);
	switch (p->kind) {
	case TURN_DSN_FAILURE:
		buf_puts(&v, " Your message could not be delivered to one "
		    "or more of its recipients. Delivery to them has been "
		    "given up; the details are below.");
		break;
	case TURN_DSN_DELAY:
		buf_puts(&v, " Your message has not yet been delivered to "
		    "one or more of its recipients. This is only a warning: "
		    "the message is still queued");
		if (p->expires != 0 && turn_dsn_date(p->expires, date) == 0)
			buf_printf(&v, ", and delivery will be tried again "
			    "until %s, when it will be returned to you if it "
			    "has still not been delivered.", date);
		else
			buf_puts(&v, ", and delivery will be tried again.");
		buf_puts(&v, " You do not need to send it again.");
		break;
	case TURN_DSN_SUCCESS:
		buf_puts(&v, " As you asked, this is a report on the "
		    "delivery of your message to the recipients below.");
		break;
	}
	turn_dsn_para(&d->text, "", buf_str(&v));
	buf_puts(&d->text, "\r\n");
	buf_reset(&v);
	buf_puts(&v, "Sender: <");
	turn_dsn_put_addr(&v, p->msg->sender, d->global_addr);
	buf_putc(&v, '>');
	turn_dsn_para(&d->text, "    ", buf_str(&v));
	if (d->id[0] != '\0') {
		buf_reset(&v);
		buf_printf(&v, "Queue id: %s", d->id);
		turn_dsn_para(&d->text, "    ", buf_str(&v));
	}
	if (p->msg->arrival != 0 && turn_dsn_date(p->msg->arrival, date) == 0) {
		buf_reset(&v);
		buf_printf(&v, "Arrived: %s", date);
		turn_dsn_para(&d->text, "    ", buf_str(&v));
	}
	buf_release(&v);
}

/* turn_dsn_new - check the arguments, render the report; NULL on error */
struct turn_dsn *
turn_dsn_new(const struct turn_dsn_params *p, const char **error_r)
{
	const struct queue_msg *m;
	struct turn_dsn *d;
	char date[TURN_DSN_DATE_MAX];
	struct buf v;
	size_t i;

	if (p == NULL) {
		(void)turn_dsn_fail(error_r, "no parameters");
		return NULL;
	}
	if (turn_dsn_check(p, error_r) == -1)
		return NULL;
	m = p->msg;
	d = xcalloc(1, sizeof(*d));
	d->kind = p->kind;
	/*
	 * RFC 3461 4.3 leaves the default of RET to us: a failure returns
	 * the whole message, delay and success reports the header only.
	 */
	d->want_full = p->kind == TURN_DSN_FAILURE && m->ret != QUEUE_RET_HDRS;
	d->full = d->want_full;
	d->smtputf8 = m->smtputf8 != 0;
	d->return_max = p->return_max != 0 ? p->return_max :
	    TURN_DSN_RETURN_DEFAULT;
	if (memchr(m->id, '\0', sizeof(m->id)) != NULL && turn_dsn_ascii(m->id))
		(void)snprintf(d->id, sizeof(d->id), "%s", m->id);
	for (i = 0; d->id[i] != '\0'; i++)
		if (!((d->id[i] >= '0' && d->id[i] <= '9') ||
		    (d->id[i] >= 'A' && d->id[i] <= 'Z') ||
		    (d->id[i] >= 'a' && d->id[i] <= 'z')))
			d->id[i] = 'X';	/* it goes into the Message-ID */
	d->nonce = p->nonce != 0 ? p->nonce : turn_dsn_nonce(p->now);
	if (d->smtputf8) {
		d->global_addr = !turn_dsn_ascii(m->sender);
		for (i = 0; i < p->nrcpt; i++)
			if (!turn_dsn_ascii(p->rcpts[i].rcpt->addr))
				d->global_addr = 1;
	}
	buf_init(&d->head);
	buf_init(&d->text);
	buf_init(&d->status);
	buf_init(&d->orig);
	buf_init(&v);

	turn_dsn_head(d, p);
	turn_dsn_intro(d, p);

	/* RFC 3464 2.2: the per-message fields, in its grammar's order */
	if (turn_dsn_envid(m->envid, &v))
		turn_dsn_field(&d->status, "Original-Envelope-Id", buf_str(&v));
	turn_dsn_fieldf(&d->status, "Reporting-MTA", "dns; %s",
	    p->reporting_mta);
	if (m->arrival != 0 && turn_dsn_date(m->arrival, date) == 0)
		turn_dsn_field(&d->status, "Arrival-Date", date);
	for (i = 0; i < p->nrcpt; i++)
		turn_dsn_rcpt_report(d, p, &p->rcpts[i]);
	buf_release(&v);
	return d;
}

/* turn_dsn_free - release the builder; *dp becomes NULL */
void
turn_dsn_free(struct turn_dsn **dp)
{
	struct turn_dsn *d = *dp;

	if (d == NULL)
		return;
	buf_release(&d->head);
	buf_release(&d->text);
	buf_release(&d->status);
	buf_release(&d->orig);
	free(d);
	*dp = NULL;
}

/*
 * turn_dsn_scan - find the end of the header section in data; returns
 * the octets that belong to it (the empty line included)
 */
static size_t
turn_dsn_scan(struct turn_dsn *d, const unsigned char *data, size_t len)
{
	size_t i, off;

	for (i = 0; i < len; i++) {
		off = d->orig.len + i;
		if (data[i] == '\n') {
			if (d->line_octets == 0 ||
			    (d->line_octets == 1 && d->line_cr)) {
				/* RFC 5322 2.1: the empty line ends it */
				d->hdr_len = d->line_start;
				d->hdr_done = 1;
				return i + 1;
			}
			d->line_start = off + 1;
			d->line_octets = 0;
			d->line_cr = 0;
			continue;
		}
		if (off >= TURN_DSN_HEADER_MAX) {
			/* too long: keep the lines that ended before */
			d->hdr_len = d->line_start;
			d->hdr_done = 1;
			d->hdr_cut = 1;
			return i;
		}
		d->line_octets++;
		d->line_cr = data[i] == '\r';
	}
	d->hdr_len = d->orig.len + len;	/* so far, all header */
	return len;
}

/* turn_dsn_original - feed the next octets of the original message */
int
turn_dsn_original(struct turn_dsn *d, const void *data, size_t len,
    const char **error_r)
{
	const unsigned char *p = data;
	size_t n;

	if (d->finished)
		return turn_dsn_fail(error_r, "DSN already finished");
	d->have_orig = 1;
	if (len == 0)
		return 0;
	if (p == NULL)
		return turn_dsn_fail(error_r, "no data");
	d->orig_len += len;
	if (!d->hdr_done) {
		n = turn_dsn_scan(d, p, len);
		buf_append(&d->orig, p, n);
		p += n;
		len -= n;
	}
	if (d->full && d->orig_len > d->return_max)
		d->full = 0;
	if (d->full)
		buf_append(&d->orig, p, len);
	else if (d->hdr_done && d->orig.len > d->hdr_len) {
		/* only the header section is kept from now on */
		d->orig.len = d->hdr_len;
		d->orig.data[d->orig.len] = '\0';
	}
	return 0;
}

/* turn_dsn_fit - CRLF (or LF) lines of at most 998 octets, no NUL nor CR */
static int
turn_dsn_fit(const unsigned char *p, size_t len)
{
	size_t pos = 0, end, i;
	const unsigned char *lf;

	while (pos < len) {
		lf = memchr(p + pos, '\n', len - pos);
		end = lf != NULL ? (size_t)(lf - p) : len;
		if (end > pos && lf != NULL && p[end - 1] == '\r')
			end--;
		if (end - pos > TURN_DSN_LINE_MAX)
			return 0;
		for (i = pos; i < end; i++)
			if (p[i] == '\0' || p[i] == '\r')
				return 0;
		pos = lf != NULL ? (size_t)(lf - p) + 1 : len;
	}
	return 1;
}

/*
 * turn_dsn_lines - copy text with CRLF line ends, the last line ended
 * too; repair: NUL and bare CR become spaces and a line over
 * TURN_DSN_FOLD_HARD octets is folded (CRLF TAB), for a header section
 */
static void
turn_dsn_lines(struct buf *b, const unsigned char *p, size_t len, int repair)
{
	size_t pos = 0, end, next, i, n;
	const unsigned char *lf;

	while (pos < len) {
		lf = memchr(p + pos, '\n', len - pos);
		end = lf != NULL ? (size_t)(lf - p) : len;
		next = lf != NULL ? end + 1 : len;
		if (end > pos && lf != NULL && p[end - 1] == '\r')
			end--;
		if (!repair) {
			buf_append(b, p + pos, end - pos);
			buf_puts(b, "\r\n");
			pos = next;
			continue;
		}
		while (pos < end) {
			n = turn_dsn_break(p + pos, end - pos,
			    TURN_DSN_FOLD_HARD);
			for (i = pos; i < pos + n; i++)
				buf_putc(b, p[i] == '\0' || p[i] == '\r' ?
				    ' ' : p[i]);
			pos += n;
			if (pos < end)
				buf_puts(b, "\r\n\t");
		}
		buf_puts(b, "\r\n");
		pos = next;
	}
}

/* turn_dsn_has8bit - an octet above 127 */
static int
turn_dsn_has8bit(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] >= 0x80)
			return 1;
	return 0;
}

/* turn_dsn_contains - needle anywhere in the buffer */
static int
turn_dsn_contains(const struct buf *b, const char *needle, size_t nlen)
{
	const unsigned char *p, *end;

	if (b->len < nlen || nlen == 0)
		return 0;
	p = b->data;
	end = b->data + b->len;
	while ((size_t)(end - p) >= nlen) {
		p = memchr(p, needle[0], (size_t)(end - p) - nlen + 1);
		if (p == NULL)
			return 0;
		if (memcmp(p, needle, nlen) == 0)
			return 1;
		p++;
	}
	return 0;
}

/* turn_dsn_pick_boundary - one that occurs in none of the parts */
static int
turn_dsn_pick_boundary(struct turn_dsn *d, const struct buf *content,
    const char **error_r)
{
	unsigned i;
	size_t n;
	int len;

	for (i = 0; i < TURN_DSN_BOUNDARY_TRIES; i++) {
		/* RFC 2046 5.1.1 bchars; "=_" is in no encoded text */
		len = snprintf(d->boundary, sizeof(d->boundary),
		    "=_odmr_%s_%016" PRIx64 "_%c%u", d->id[0] != '\0' ?
		    d->id : "0", d->nonce,
		    turn_dsn_kind_name(d->kind)[0], i);
		if (len < 0 || (size_t)len >= sizeof(d->boundary))
			return turn_dsn_fail(error_r, "boundary too long");
		n = (size_t)len;
		if (!turn_dsn_contains(&d->text, d->boundary, n) &&
		    !turn_dsn_contains(&d->status, d->boundary, n) &&
		    !turn_dsn_contains(content, d->boundary, n))
			return 0;
	}
	d->boundary[0] = '\0';
	return turn_dsn_fail(error_r, "no MIME boundary found that the "
	    "message does not contain");
}

/* turn_dsn_content - the third part's content; sets returned and why */
static enum turn_dsn_why
turn_dsn_content(struct turn_dsn *d, struct buf *content)
{
	enum turn_dsn_why why = TURN_DSN_WHY_ASKED;

	if (!d->have_orig) {
		d->returned = TURN_DSN_RETURN_NONE;
		return why;
	}
	if (d->full && turn_dsn_fit(d->orig.data, d->orig.len)) {
		turn_dsn_lines(content, d->orig.data, d->orig.len, 0);
		d->returned = TURN_DSN_RETURN_FULL;
		return why;
	}
	if (d->want_full)
		why = d->full ? TURN_DSN_WHY_UNFIT : TURN_DSN_WHY_SIZE;
	turn_dsn_lines(content, d->orig.data,
	    d->hdr_done ? d->hdr_len : d->orig.len, 1);
	d->returned = TURN_DSN_RETURN_HEADERS;
	return why;
}

/* turn_dsn_outro - the end of the human-readable part: what is attached */
static void
turn_dsn_outro(struct turn_dsn *d, enum turn_dsn_why why, struct buf *text)
{
	struct buf v;

	buf_init(&v);
	switch (d->returned) {
	case TURN_DSN_RETURN_NONE:
		buf_puts(&v, "The message itself could not be attached.");
		break;
	case TURN_DSN_RETURN_FULL:
		buf_puts(&v, "Your message is attached below.");
		break;
	case TURN_DSN_RETURN_HEADERS:
		switch (why) {
		case TURN_DSN_WHY_SIZE:
			buf_printf(&v, "Your message was larger than %zu "
			    "octets, so only its header is attached below.",
			    d->return_max);
			break;
		case TURN_DSN_WHY_UNFIT:
			buf_puts(&v, "Your message could not be enclosed as "
			    "it is (it has NUL octets, bare carriage returns "
			    "or lines longer than 998 octets), so only its "
			    "header is attached below.");
			break;
		case TURN_DSN_WHY_ASKED:
			if (d->want_full || d->kind != TURN_DSN_FAILURE)
				buf_puts(&v, "The header of your message is "
				    "attached below.");
			else
				buf_puts(&v, "As you asked (RET=HDRS), only "
				    "the header of your message is attached "
				    "below.");
			break;
		}
		if (d->hdr_cut)
			buf_printf(&v, " Its header was longer than %d octets "
			    "and has been cut short.", TURN_DSN_HEADER_MAX);
		break;
	}
	buf_puts(text, "\r\n");
	turn_dsn_para(text, "", buf_str(&v));
	buf_release(&v);
}

/* turn_dsn_part - a delimiter and the header of one body part */
static void
turn_dsn_part(struct buf *out, const struct turn_dsn *d, const char *desc,
    const char *type, int eightbit)
{
	buf_printf(out, "\r\n--%s\r\n", d->boundary);
	turn_dsn_field(out, "Content-Description", desc);
	turn_dsn_field(out, "Content-Type", type);
	if (eightbit)
		turn_dsn_field(out, "Content-Transfer-Encoding", "8bit");
	buf_puts(out, "\r\n");
}

/* turn_dsn_finish - append the whole DSN to out */
int
turn_dsn_finish(struct turn_dsn *d, struct buf *out, const char **error_r)
{
	struct buf content, text;
	enum turn_dsn_why why;
	int text8, status8, content8;
	const char *type, *desc;

	if (d->finished)
		return turn_dsn_fail(error_r, "DSN already finished");
	buf_init(&content);
	buf_init(&text);
	why = turn_dsn_content(d, &content);
	buf_append(&text, d->text.data, d->text.len);
	turn_dsn_outro(d, why, &text);

	/*
	 * RFC 6533: the global types when an SMTPUTF8 message needs them,
	 * for a UTF-8 address or a returned header section with UTF-8.
	 */
	content8 = turn_dsn_has8bit(content.data, content.len);
	d->global = d->smtputf8 && (d->global_addr ||
	    (d->returned != TURN_DSN_RETURN_NONE &&
	    turn_dsn_has8bit(d->orig.data, d->hdr_len)));
	text8 = turn_dsn_has8bit(text.data, text.len);
	status8 = turn_dsn_has8bit(d->status.data, d->status.len);
	d->eightbit = text8 || status8 || content8;
	if (turn_dsn_pick_boundary(d, &content, error_r) == -1) {
		buf_release(&content);
		buf_release(&text);
		return -1;
	}
	d->finished = 1;

	buf_append(out, d->head.data, d->head.len);
	turn_dsn_field(out, "MIME-Version", "1.0");
	turn_dsn_fieldf(out, "Content-Type", "multipart/report; "
	    "report-type=%s; boundary=\"%s\"", d->global ?
	    "global-delivery-status" : "delivery-status", d->boundary);
	if (d->eightbit)
		turn_dsn_field(out, "Content-Transfer-Encoding", "8bit");
	buf_puts(out, "\r\nThis is a MIME-encapsulated delivery status "
	    "notification.\r\n");

	turn_dsn_part(out, d, "Notification", text8 ?
	    "text/plain; charset=utf-8" : "text/plain; charset=us-ascii",
	    text8);
	buf_append(out, text.data, text.len);

	turn_dsn_part(out, d, "Delivery report", d->global ?
	    "message/global-delivery-status" : "message/delivery-status",
	    status8);
	buf_append(out, d->status.data, d->status.len);

	if (d->returned != TURN_DSN_RETURN_NONE) {
		if (d->returned == TURN_DSN_RETURN_FULL) {
			type = d->global ? "message/global" : "message/rfc822";
			desc = d->kind == TURN_DSN_FAILURE ?
			    "Undelivered Message" : "Message";
		} else {
			type = d->global ? "message/global-headers" :
			    "text/rfc822-headers";
			desc = d->kind == TURN_DSN_FAILURE ?
			    "Undelivered Message Headers" : "Message Headers";
		}
		turn_dsn_part(out, d, desc, type, content8);
		buf_append(out, content.data, content.len);
	}
	buf_printf(out, "\r\n--%s--\r\n", d->boundary);
	buf_release(&content);
	buf_release(&text);
	return 0;
}

/* turn_dsn_8bit - the DSN has 8-bit octets: send it BODY=8BITMIME */
int
turn_dsn_8bit(const struct turn_dsn *d)
{
	return d->finished && d->eightbit;
}

/* turn_dsn_smtputf8 - the DSN uses the RFC 6533 types: send it SMTPUTF8 */
int
turn_dsn_smtputf8(const struct turn_dsn *d)
{
	return d->finished && d->global;
}

/* turn_dsn_returned - what the third part holds */
enum turn_dsn_return
turn_dsn_returned(const struct turn_dsn *d)
{
	return d->finished ? d->returned : TURN_DSN_RETURN_NONE;
}

/* turn_dsn_boundary - the MIME boundary of the finished DSN, or "" */
const char *
turn_dsn_boundary(const struct turn_dsn *d)
{
	return d->finished ? d->boundary : "";
}
