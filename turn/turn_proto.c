/*
 * NAME
 *	turn_proto 3 - SMTP client protocol pieces: replies, EHLO keywords,
 *	MAIL/RCPT parameters, dot-stuffing
 * SYNOPSIS
 *	#include "turn_proto.h"
 * DESCRIPTION
 *	See turn_proto.h. Nothing here does I/O, allocates outside the
 *	caller's buffers, or logs: the session decides what a reply means.
 * SEE ALSO
 *	turn_session(3), RFC 5321 sections 4.2 and 4.5.2, RFC 2920,
 *	RFC 3030, RFC 3461, RFC 1870, RFC 6152, RFC 6531
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "compat.h"

#include "turn_proto.h"

static const struct {
	const char	*keyword;
	unsigned	 flag;
} turn_proto_keywords[TURN_PROTO_EXT_COUNT] = {
	{ "PIPELINING", TURN_PROTO_EXT_PIPELINING },
	{ "8BITMIME", TURN_PROTO_EXT_8BITMIME },
	{ "BINARYMIME", TURN_PROTO_EXT_BINARYMIME },
	{ "CHUNKING", TURN_PROTO_EXT_CHUNKING },
	{ "SMTPUTF8", TURN_PROTO_EXT_SMTPUTF8 },
	{ "DSN", TURN_PROTO_EXT_DSN },
	{ "SIZE", TURN_PROTO_EXT_SIZE },
	{ "STARTTLS", TURN_PROTO_EXT_STARTTLS },
	{ "ENHANCEDSTATUSCODES", TURN_PROTO_EXT_ENHANCED },
};

/* turn_proto_reply_reset - an empty reply, ready for its first line */
void
turn_proto_reply_reset(struct turn_proto_reply *r)
{
	r->code = 0;
	r->nlines = 0;
	r->text[0] = '\0';
}

/* turn_proto_reply_add - append printable text to the reply, bounded */
static void
turn_proto_reply_add(struct turn_proto_reply *r, const char *p, size_t len)
{
	size_t n = strlen(r->text);

	for (size_t i = 0; i < len && n + 1 < sizeof(r->text); i++) {
		unsigned char c = (unsigned char)p[i];

		/* the text goes into key=value logs and into DSNs */
		if (c < 0x20 || c == 0x7f)
			c = ' ';
		else if (c == '"')
			c = '\'';
		else if (c == '\\')
			c = '/';
		r->text[n++] = (char)c;
	}
	r->text[n] = '\0';
}

/* turn_proto_reply_line - add one reply line; DONE on the last one */
enum turn_proto_status
turn_proto_reply_line(struct turn_proto_reply *r, const char *line,
    size_t len, const char **line_text_r, const char **error_r)
{
	unsigned code;
	int last;

	*line_text_r = "";
	/* RFC 5321 4.2: three digits, then SP, "-" or the end of line */
	if (len < 3 || line[0] < '2' || line[0] > '5' ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-')) {
		*error_r = "not an SMTP reply line";
		return TURN_PROTO_BAD;
	}
	code = (unsigned)(line[0] - '0') * 100 +
	    (unsigned)(line[1] - '0') * 10 + (unsigned)(line[2] - '0');
	if (r->nlines > 0 && code != r->code) {
		*error_r = "reply code changes inside a multiline reply";
		return TURN_PROTO_BAD;
	}
	last = len == 3 || line[3] == ' ';
	if (r->nlines == 0) {
		r->code = code;
		(void)snprintf(r->text, sizeof(r->text), "%03u", code);
	}
	r->nlines++;
	if (len > 4) {
		turn_proto_reply_add(r, " ", 1);
		turn_proto_reply_add(r, line + 4, len - 4);
		*line_text_r = line + 4;
	}
	return last ? TURN_PROTO_DONE : TURN_PROTO_MORE;
}

/* turn_proto_reply_class - 2, 3, 4 or 5: the first digit of the code */
unsigned
turn_proto_reply_class(const struct turn_proto_reply *r)
{
	return r->code / 100;
}

/* turn_proto_ext_line - note the keyword of one EHLO reply line */
void
turn_proto_ext_line(struct turn_proto_ext *ext, const char *line)
{
	char word[32];
	const char *p = line, *arg;
	size_t n = 0;
	unsigned long long v;
	char *end;

	while (*p == ' ')
		p++;
	while (p[n] != '\0' && p[n] != ' ' && p[n] != '=' && n + 1 <
	    sizeof(word)) {
		word[n] = p[n];
		n++;
	}
	word[n] = '\0';
	if (p[n] != '\0' && p[n] != ' ' && p[n] != '=')
		return;		/* a keyword longer than any we know */
	arg = p + n;
	while (*arg == ' ' || *arg == '=')
		arg++;
	for (size_t i = 0; i < TURN_PROTO_EXT_COUNT; i++) {
		if (strcasecmp(word, turn_proto_keywords[i].keyword) != 0)
			continue;
		ext->flags |= turn_proto_keywords[i].flag;
		if (turn_proto_keywords[i].flag == TURN_PROTO_EXT_SIZE) {
			/* RFC 1870: no number or 0 means no fixed limit */
			ext->size = 0;
			if (isdigit((unsigned char)*arg)) {
				v = strtoull(arg, &end, 10);
				ext->size = (uint64_t)v;
			}
		}
		return;
	}
}

/* turn_proto_ext_format - the keywords as "PIPELINING,8BITMIME,SIZE=n" */
void
turn_proto_ext_format(const struct turn_proto_ext *ext, char *out,
    size_t outsz)
{
	char one[48];

	out[0] = '\0';
	for (size_t i = 0; i < TURN_PROTO_EXT_COUNT; i++) {
		if ((ext->flags & turn_proto_keywords[i].flag) == 0)
			continue;
		if (turn_proto_keywords[i].flag == TURN_PROTO_EXT_SIZE &&
		    ext->size > 0)
			(void)snprintf(one, sizeof(one), "%sSIZE=%" PRIu64,
			    out[0] ? "," : "", ext->size);
		else
			(void)snprintf(one, sizeof(one), "%s%s",
			    out[0] ? "," : "", turn_proto_keywords[i].keyword);
		if (strlcat(out, one, outsz) >= outsz)
			return;		/* truncated: fine for a log line */
	}
	if (out[0] == '\0')
		(void)strlcpy(out, "none", outsz);
}

/* turn_proto_safe - may this stored value go into a command line? */
static int
turn_proto_safe(const char *s)
{
	return s == NULL || strpbrk(s, "\r\n") == NULL;
}

/* turn_proto_mail_cmd - MAIL FROM with the parameters the customer takes */
int
turn_proto_mail_cmd(struct buf *b, const char *sender, uint64_t size,
    enum queue_body_type body, int smtputf8, enum queue_ret ret,
    const char *envid, const struct turn_proto_ext *ext)
{
	if (!turn_proto_safe(sender) || !turn_proto_safe(envid) ||
	    (envid != NULL && strchr(envid, ' ') != NULL))
		return -1;
	buf_printf(b, "MAIL FROM:<%s>", sender);
	if (ext->flags & TURN_PROTO_EXT_SIZE)
		buf_printf(b, " SIZE=%" PRIu64, size);
	if (body == QUEUE_BODY_8BITMIME &&
	    (ext->flags & TURN_PROTO_EXT_8BITMIME))
		buf_puts(b, " BODY=8BITMIME");
	else if (body == QUEUE_BODY_BINARYMIME &&
	    (ext->flags & TURN_PROTO_EXT_BINARYMIME))
		buf_puts(b, " BODY=BINARYMIME");
	if (smtputf8 && (ext->flags & TURN_PROTO_EXT_SMTPUTF8))
		buf_puts(b, " SMTPUTF8");
	if (ext->flags & TURN_PROTO_EXT_DSN) {
		if (ret == QUEUE_RET_FULL)
			buf_puts(b, " RET=FULL");
		else if (ret == QUEUE_RET_HDRS)
			buf_puts(b, " RET=HDRS");
		if (envid != NULL && envid[0] != '\0')
			buf_printf(b, " ENVID=%s", envid);
	}
	buf_puts(b, "\r\n");
	return 0;
}

/* turn_proto_rcpt_cmd - RCPT TO, with NOTIFY and ORCPT under DSN */
int
turn_proto_rcpt_cmd(struct buf *b, const char *addr, unsigned notify,
    const char *orcpt, const struct turn_proto_ext *ext)
{
	char n[64];

	if (!turn_proto_safe(addr) || !turn_proto_safe(orcpt) ||
	    (orcpt != NULL && strchr(orcpt, ' ') != NULL))
		return -1;
	buf_printf(b, "RCPT TO:<%s>", addr);
	if (ext->flags & TURN_PROTO_EXT_DSN) {
		if (notify != 0) {
			queue_notify_format(notify, n, sizeof(n));
			buf_printf(b, " NOTIFY=%s", n);
		}
		if (orcpt != NULL && orcpt[0] != '\0')
			buf_printf(b, " ORCPT=%s", orcpt);
	}
	buf_puts(b, "\r\n");
	return 0;
}

/* turn_proto_stuff_init - DATA text starts at the beginning of a line */
void
turn_proto_stuff_init(struct turn_proto_stuff *st)
{
	st->bol = 1;
	st->cr = 0;
}

/* turn_proto_stuff_feed - append one piece of message as DATA text */
void
turn_proto_stuff_feed(struct turn_proto_stuff *st, const void *in,
    size_t len, struct buf *out)
{
	const unsigned char *p = in, *end = p + len;

	buf_reserve(out, len + len / 64 + 8);
	while (p < end) {
		const unsigned char *q = p;

		if (st->cr) {
			st->cr = 0;
			if (*p == '\n') {
				buf_putc(out, '\n');
				st->bol = 1;
				p++;
				continue;
			}
			/* a bare CR is passed on; it does not end a line */
		}
		if (*p == '\r') {
			buf_putc(out, '\r');
			st->cr = 1;
			st->bol = 0;
			p++;
			continue;
		}
		if (*p == '\n') {
			/* RFC 5321 2.3.8: lines end in CRLF, never bare LF */
			buf_append(out, "\r\n", 2);
			st->bol = 1;
			p++;
			continue;
		}
		if (st->bol && *p == '.')
			buf_putc(out, '.');	/* RFC 5321 4.5.2 */
		st->bol = 0;
		while (q < end && *q != '\r' && *q != '\n')
			q++;
		buf_append(out, p, (size_t)(q - p));
		p = q;
	}
}

/* turn_proto_stuff_end - finish the last line, then "." CRLF */
void
turn_proto_stuff_end(struct turn_proto_stuff *st, struct buf *out)
{
	if (st->cr) {
		buf_putc(out, '\n');
		st->cr = 0;
		st->bol = 1;
	}
	if (!st->bol)
		buf_append(out, "\r\n", 2);
	buf_append(out, ".\r\n", 3);
	st->bol = 1;
}
