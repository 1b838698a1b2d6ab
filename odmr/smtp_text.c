/*
 * NAME
 *	smtp_text 3 - facts about a message's text, and its Received: line
 * SYNOPSIS
 *	#include "smtp_text.h"
 *
 *	void
 *	smtp_text_scan_init(scan)
 *
 *	void
 *	smtp_text_scan_feed(scan, data, len)
 *
 *	void
 *	smtp_text_received(out, received)
 * DESCRIPTION
 *	The scanner keeps the first octets of the current line in the
 *	struct until it can tell what the line is: the empty line that
 *	ends the header section, a continuation line (leading SP or HTAB),
 *	a "Received:" field, or any other line. After that it jumps to the
 *	next LF with memchr(), so a chunk boundary may fall anywhere, even
 *	inside a field name. The RFC 5322 section 4.5 obsolete syntax lets
 *	WSP stand between a field name and its colon, so "Received :"
 *	counts too; a run of WSP is kept as one octet, so no run is too
 *	long. Once the header section is over only the eightbit and nul
 *	flags are updated, eight octets at a time.
 *
 *	The Received: field starts a new line for each clause, as Postfix
 *	does (from, the TLS comment, by ... with ... id, for ...; date),
 *	and folds a clause that is still too long at the space before a
 *	word, so every line is at most 77 octets before its CRLF unless
 *	one word alone is longer (a 255-octet HELO).
 * SEE ALSO
 *	smtp_text.h, RFC 5321 sections 4.4 and 6.3, RFC 5322, RFC 3848,
 *	RFC 6531
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "smtp_text.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* RFC 5322 2.1.1 says 78 before the CRLF; we stay under it. */
#define SMTP_TEXT_LINE_MAX	77

/* RFC 5321 4.5.3.1.2: a domain is at most 255 octets. */
#define SMTP_TEXT_HELO_MAX	255

/* "Sat, 28 Nov 2026 16:04:44 +0000", with room for odd years */
#define SMTP_TEXT_DATE_MAX	64

/* The field name the loop detection counts, in lower case. */
#define SMTP_TEXT_RECEIVED	"received"
#define SMTP_TEXT_RECEIVED_LEN	(sizeof(SMTP_TEXT_RECEIVED) - 1)

/* What the first octets of a line say about it. */
enum smtp_text_line {
	SMTP_TEXT_LINE_MORE,		/* cannot tell yet */
	SMTP_TEXT_LINE_OTHER,		/* another field, or a continuation */
	SMTP_TEXT_LINE_RECEIVED,	/* a Received: field */
	SMTP_TEXT_LINE_EMPTY		/* the end of the header section */
};

/* smtp_text_scan_init - a scanner at the start of a message */
void
smtp_text_scan_init(struct smtp_text_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->in_header = 1;
}

/* smtp_text_is_wsp - SP or HTAB */
static int
smtp_text_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* smtp_text_classify - what a line is, from its first octets */
static enum smtp_text_line
smtp_text_classify(const char *p, size_t n)
{
	size_t i;

	/* RFC 5322 2.1: CRLF CRLF; a bare LF line is taken as well */
	if (p[0] == '\n')
		return SMTP_TEXT_LINE_EMPTY;
	if (p[0] == '\r') {
		if (n == 1)
			return SMTP_TEXT_LINE_MORE;
		return p[1] == '\n' ? SMTP_TEXT_LINE_EMPTY :
		    SMTP_TEXT_LINE_OTHER;
	}
	/* RFC 5322 2.2.3: WSP first is the unfolding of the last field */
	for (i = 0; i < n && i < SMTP_TEXT_RECEIVED_LEN; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c != (unsigned char)SMTP_TEXT_RECEIVED[i])
			return SMTP_TEXT_LINE_OTHER;
	}
	if (n == i)
		return SMTP_TEXT_LINE_MORE;
	/* RFC 5322 4.5: obs-optional allows *WSP before the colon */
	if (p[i] == ':')
		return SMTP_TEXT_LINE_RECEIVED;
	if (!smtp_text_is_wsp((unsigned char)p[i]))
		return SMTP_TEXT_LINE_OTHER;
	if (++i == n)
		return SMTP_TEXT_LINE_MORE;
	/* the run of WSP was kept as one octet: p[i] is not WSP */
	return p[i] == ':' ? SMTP_TEXT_LINE_RECEIVED : SMTP_TEXT_LINE_OTHER;
}

/* smtp_text_scan_flags - set eightbit and nul from one chunk */
static void
smtp_text_scan_flags(struct smtp_text_scan *s, const unsigned char *p,
    size_t len)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	if (!s->nul && memchr(p, '\0', len) != NULL)
		s->nul = 1;
	if (s->eightbit)
		return;
	for (; i + sizeof(w) <= len; i += sizeof(w)) {
		memcpy(&w, p + i, sizeof(w));
		acc |= w;
	}
	for (; i < len; i++)
		acc |= p[i];
	if (acc & UINT64_C(0x8080808080808080))
		s->eightbit = 1;
}

/* smtp_text_scan_feed - account for the next len octets of the text */
void
smtp_text_scan_feed(struct smtp_text_scan *s, const void *data, size_t len)
{
	const unsigned char *p = data, *lf;
	enum smtp_text_line what;
	size_t i = 0;

	if (len == 0)
		return;
	smtp_text_scan_flags(s, p, len);
	while (i < len && s->in_header) {
		if (s->line_done) {
			/* the rest of a classified line: find its end */
			lf = memchr(p + i, '\n', len - i);
			if (lf == NULL)
				return;
			i = (size_t)(lf - p) + 1;
			s->line_done = 0;
			s->prefix_len = 0;
			continue;
		}
		/* a run of WSP after the name is kept as one octet */
		if (!(s->prefix_len > SMTP_TEXT_RECEIVED_LEN &&
		    smtp_text_is_wsp(p[i]) &&
		    smtp_text_is_wsp((unsigned char)
		    s->prefix[s->prefix_len - 1])))
			s->prefix[s->prefix_len++] = (char)p[i];
		what = smtp_text_classify(s->prefix, s->prefix_len);
		if (what == SMTP_TEXT_LINE_MORE) {
			i++;
			continue;
		}
		if (what == SMTP_TEXT_LINE_EMPTY) {
			s->in_header = 0;
			return;
		}
		if (what == SMTP_TEXT_LINE_RECEIVED && s->received < UINT_MAX)
			s->received++;
		/* the octet that decided may be the LF that ends the line */
		s->line_done = p[i] != '\n';
		s->prefix_len = 0;
		i++;
	}
}

/* Folding of the Received: field. */

struct smtp_text_fold {
	struct buf	*out;
	size_t		 col;		/* octets on the current line */
	int		 bol;		/* no word on this line yet */
	struct buf	 word;		/* scratch for smtp_text_fold_printf() */
};

/* smtp_text_fold_break - end the line; the next one starts with HTAB */
static void
smtp_text_fold_break(struct smtp_text_fold *f)
{
	buf_append(f->out, "\r\n\t", 3);
	f->col = 1;
	f->bol = 1;
}

/* smtp_text_fold_word - add a word, folding before it when too long */
static void
smtp_text_fold_word(struct smtp_text_fold *f, const char *w, size_t len)
{
	if (!f->bol) {
		if (f->col + 1 + len > SMTP_TEXT_LINE_MAX)
			smtp_text_fold_break(f);
		else {
			buf_putc(f->out, ' ');
			f->col++;
		}
	}
	buf_append(f->out, w, len);
	f->col += len;
	f->bol = 0;
}

/* smtp_text_fold_puts - add a word given as a C string */
static void
smtp_text_fold_puts(struct smtp_text_fold *f, const char *w)
{
	smtp_text_fold_word(f, w, strlen(w));
}

/* smtp_text_fold_printf - add a formatted word */
static void __attribute__((format(printf, 2, 3)))
smtp_text_fold_printf(struct smtp_text_fold *f, const char *fmt, ...)
{
	va_list ap;
	char tmp[SMTP_TEXT_HELO_MAX * 2 + 32];
	int n;

	/* most words fit tmp; a long recipient goes through f->word */
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		smtp_text_fold_word(f, tmp, (size_t)n);
		return;
	}
	buf_reset(&f->word);
	buf_reserve(&f->word, (size_t)n);
	va_start(ap, fmt);
	(void)vsnprintf((char *)f->word.data, (size_t)n + 1, fmt, ap);
	va_end(ap);
	f->word.len = (size_t)n;
	smtp_text_fold_word(f, (const char *)f->word.data, f->word.len);
}

/* smtp_text_clean_helo - the HELO argument, safe inside the field */
static void
smtp_text_clean_helo(const char *helo, char *out, size_t outsz)
{
	size_t i;

	/* outsz > SMTP_TEXT_HELO_MAX: the cut is the only truncation */
	for (i = 0; helo[i] != '\0' && i < SMTP_TEXT_HELO_MAX &&
	    i + 1 < outsz; i++) {
		unsigned char c = (unsigned char)helo[i];

		/* RFC 5234 VCHAR, minus what would open or end a
		 * comment; brackets stay: "[192.0.2.1]" is a valid
		 * Extended-Domain (RFC 5321 4.4) */
		if (c < 0x21 || c > 0x7e || c == '(' || c == ')' ||
		    c == '\\')
			c = '?';
		out[i] = (char)c;
	}
	out[i] = '\0';
}

/* smtp_text_clean_rcpt - the recipient with control octets made '?' */
static void
smtp_text_clean_rcpt(const char *rcpt, struct buf *out)
{
	size_t i;

	/* the parser let no control octet through; this is the belt.
	 * UTF-8 stays: only an SMTPUTF8 message can carry it (RFC 6532) */
	for (i = 0; rcpt[i] != '\0'; i++) {
		unsigned char c = (unsigned char)rcpt[i];

		buf_putc(out, c < 0x20 || c == 0x7f ? '?' : c);
	}
}

/* smtp_text_date - RFC 5322 3.3 date-time, in the local time zone */
static void
smtp_text_date(time_t when, char *out, size_t outsz)
{
	/* names from tables: the locale of the process does not matter */
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	char zone[16];
	struct tm tm;
	time_t epoch = 0;
	int n;

	if (localtime_r(&when, &tm) != NULL) {
		if (strftime(zone, sizeof(zone), "%z", &tm) == 0)
			(void)snprintf(zone, sizeof(zone), "%s", "-0000");
	} else {
		/* RFC 5322 3.3: -0000 says nothing about the local zone */
		if (gmtime_r(&when, &tm) == NULL)
			(void)gmtime_r(&epoch, &tm);
		(void)snprintf(zone, sizeof(zone), "%s", "-0000");
	}
	n = snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d %s",
	    tm.tm_wday >= 0 && (size_t)tm.tm_wday < NELEM(days) ?
	    days[tm.tm_wday] : "Sun", tm.tm_mday,
	    tm.tm_mon >= 0 && (size_t)tm.tm_mon < NELEM(months) ?
	    months[tm.tm_mon] : "Jan", tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, zone);
	if (n < 0 || (size_t)n >= outsz)
		out[0] = '\0';		/* cannot happen: 64 octets */
}

/* smtp_text_protocol - the "with" keyword, RFC 3848 and RFC 6531 */
static const char *
smtp_text_protocol(const struct smtp_text_received *r)
{
	int tls = r->tls_version != NULL, auth = r->authenticated;

	if (r->smtputf8)
		return tls ? (auth ? "UTF8SMTPSA" : "UTF8SMTPS") :
		    (auth ? "UTF8SMTPA" : "UTF8SMTP");
	if (!r->esmtp)
		return "SMTP";		/* RFC 3848 has no SMTPS or SMTPA */
	return tls ? (auth ? "ESMTPSA" : "ESMTPS") :
	    (auth ? "ESMTPA" : "ESMTP");
}

/* smtp_text_received - append the Received: field of one message */
void
smtp_text_received(struct buf *out, const struct smtp_text_received *r)
{
	struct smtp_text_fold f;
	char helo[SMTP_TEXT_HELO_MAX + 1], date[SMTP_TEXT_DATE_MAX];
	const char *proto = smtp_text_protocol(r);
	const char *host = r->hostname != NULL ? r->hostname : "localhost";
	const char *addr = r->client_addr;

	if (r->helo != NULL && r->helo[0] != '\0')
		smtp_text_clean_helo(r->helo, helo, sizeof(helo));
	else
		(void)snprintf(helo, sizeof(helo), "%s", "unknown");
	smtp_text_date(r->when, date, sizeof(date));

	f.out = out;
	f.col = 0;
	f.bol = 1;
	buf_init(&f.word);

	/* RFC 5321 4.4: "from" Extended-Domain, then TCP-info */
	smtp_text_fold_puts(&f, "Received:");
	smtp_text_fold_puts(&f, "from");
	smtp_text_fold_puts(&f, helo);
	if (addr != NULL) {
		/* no reverse lookup is done: say so, as Postfix does,
		 * rather than repeat the unverified HELO name; RFC 5321
		 * 4.1.3: an IPv6 address literal is tagged */
		smtp_text_fold_puts(&f, "(unknown");
		smtp_text_fold_printf(&f, "[%s%s])",
		    strchr(addr, ':') != NULL ? "IPv6:" : "", addr);
	}

	if (r->tls_version != NULL) {
		smtp_text_fold_break(&f);
		smtp_text_fold_puts(&f, "(using");
		if (r->tls_cipher == NULL)
			smtp_text_fold_printf(&f, "%s)", r->tls_version);
		else {
			smtp_text_fold_puts(&f, r->tls_version);
			smtp_text_fold_puts(&f, "with");
			smtp_text_fold_puts(&f, "cipher");
			if (r->tls_bits > 0) {
				smtp_text_fold_puts(&f, r->tls_cipher);
				smtp_text_fold_printf(&f, "(%d bits))",
				    r->tls_bits);
			} else
				smtp_text_fold_printf(&f, "%s)",
				    r->tls_cipher);
		}
	}

	/* RFC 5321 4.4: the date follows the last ";" of the field */
	smtp_text_fold_break(&f);
	smtp_text_fold_puts(&f, "by");
	smtp_text_fold_puts(&f, host);
	smtp_text_fold_puts(&f, "(odmrd)");
	smtp_text_fold_puts(&f, "with");
	if (r->id == NULL)
		smtp_text_fold_printf(&f, "%s%s", proto,
		    r->rcpt != NULL ? "" : ";");
	else {
		smtp_text_fold_puts(&f, proto);
		smtp_text_fold_puts(&f, "id");
		smtp_text_fold_printf(&f, "%s%s", r->id,
		    r->rcpt != NULL ? "" : ";");
	}

	smtp_text_fold_break(&f);
	if (r->rcpt != NULL) {
		/* RFC 5321 7.2: only for one recipient, the caller knows */
		smtp_text_fold_puts(&f, "for");
		buf_reset(&f.word);
		buf_putc(&f.word, '<');
		smtp_text_clean_rcpt(r->rcpt, &f.word);
		buf_append(&f.word, ">;", 2);
		smtp_text_fold_word(&f, (const char *)f.word.data, f.word.len);
	}
	/* the date is one word: it is not folded inside */
	smtp_text_fold_puts(&f, date);
	buf_append(out, "\r\n", 2);
	buf_release(&f.word);
}
