/*
 * NAME
 *	turn_mime 3 - 8BITMIME to 7-bit MIME downgrade of a message
 * SYNOPSIS
 *	#include "turn_mime.h"
 *
 *	int
 *	turn_mime_is_7bit(in, len)
 *
 *	int
 *	turn_mime_downgrade(in, len, out, error_r)
 * DESCRIPTION
 *	The message is walked as a tree of entities (RFC 2045, RFC 2046).
 *	Each entity's header is split into fields (RFC 5322 section 2.2,
 *	folded lines; RFC 5322 section 4.5 WSP before the colon), and its
 *	first Content-Type and Content-Transfer-Encoding decide the body:
 *	- a multipart type with a boundary: the parts between the delimiter
 *	  lines (RFC 2046 section 5.1.1) are entities of their own; the
 *	  preamble and the epilogue are kept, with any 8-bit octet in them
 *	  made a "?" (readers ignore both); a missing close delimiter is
 *	  added. The parts of multipart/digest default to message/rfc822.
 *	- message/rfc822: RFC 2046 section 5.2.1 allows no encoding but
 *	  7bit, 8bit and binary, so the enclosed message is downgraded
 *	  as a message of its own instead.
 *	- message/partial and message/external-body (which must be 7bit),
 *	  and a multipart type without a boundary: copied when 7-bit, an
 *	  error otherwise.
 *	- any other entity is a leaf. A leaf that is not 7bit data (RFC
 *	  2045 section 2.7: 8-bit octets, NUL, a CR outside CRLF, a line
 *	  over 998 octets) is encoded: quoted-printable (RFC 2045 section
 *	  6.7, lines of at most 76 octets, CRLF kept as hard line breaks)
 *	  for text types, base64 (section 6.8) for the rest. A leaf
 *	  declared 8bit or binary that is 7bit data is only relabelled. A
 *	  quoted-printable leaf with raw 8-bit octets gets them escaped,
 *	  and a base64 leaf with junk in it is re-wrapped without the junk
 *	  (decoders ignore it, section 6.8); anything else already encoded
 *	  is copied. A binary leaf with a line over 998 octets cannot have
 *	  come over 8BITMIME intact and is an error.
 *	A text leaf that gets encoded and has no charset gets one: utf-8
 *	when its octets are valid UTF-8, else unknown-8bit (RFC 1428); a
 *	message with no Content-Type gets "text/plain; charset=...", and
 *	MIME-Version: 1.0 when it had none.
 *
 *	Header fields with 8-bit octets are rewritten by turn_mime_hdr(3).
 *	Every line of the output ends in CRLF. The input is never read
 *	past len; nesting is bounded by TURN_MIME_DEPTH_MAX, and the work
 *	is linear in the input for each level of nesting.
 * DIAGNOSTICS
 *	turn_mime_downgrade() returns -1 and an error string; see
 *	turn_mime.h.
 * SEE ALSO
 *	turn_mime_hdr(3), RFC 6152 section 3, RFC 2045, RFC 2046, RFC 2047,
 *	RFC 2231, RFC 1428, RFC 5322
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "compat.h"
#include "xmalloc.h"
#include "turn_mime.h"
#include "turn_mime_private.h"

#define TURN_MIME_DEPTH_MAX	32	/* nested multipart, message/rfc822 */
#define TURN_MIME_ENC_LINE	76	/* RFC 2045 6.7 (5) and 6.8 */
#define TURN_MIME_QP_FIX_LINE	990	/* where a repaired QP line breaks */
#define TURN_MIME_ERR_MAX	160
#define TURN_MIME_INPUT_MAX	(SIZE_MAX / 8)	/* so sizes cannot wrap */

/* The header section of one entity. */
struct turn_mime_header {
	struct turn_mime_field	*f;
	size_t			 n, cap;
	size_t			 body;	/* where the body starts */
};

/* The Content-Transfer-Encoding of an entity (RFC 2045 section 6.1). */
enum turn_mime_cte {
	TURN_MIME_CTE_NONE,
	TURN_MIME_CTE_7BIT,
	TURN_MIME_CTE_8BIT,
	TURN_MIME_CTE_BINARY,
	TURN_MIME_CTE_QP,
	TURN_MIME_CTE_BASE64,
	TURN_MIME_CTE_OTHER
};

/* What is done with the body of an entity. */
enum turn_mime_how {
	TURN_MIME_HOW_COPY,		/* 7bit data: copied */
	TURN_MIME_HOW_QP,		/* encoded quoted-printable */
	TURN_MIME_HOW_BASE64,		/* encoded base64 */
	TURN_MIME_HOW_QP_FIX,		/* QP with raw 8-bit octets */
	TURN_MIME_HOW_BASE64_FIX,	/* base64 with junk in it */
	TURN_MIME_HOW_MULTIPART,	/* parts, each downgraded */
	TURN_MIME_HOW_MESSAGE		/* an enclosed message, downgraded */
};

/* What is done with one entity. */
struct turn_mime_plan {
	enum turn_mime_how	 how;
	const char		*new_cte;	/* the CTE field to write */
	const char		*charset;	/* to name for encoded text */
	int			 add_ct;	/* add "text/plain; charset=" */
};

/* A delimiter line of a multipart body. */
struct turn_mime_delim {
	size_t	start;		/* its first "-" */
	size_t	end;		/* its end, before CRLF */
	size_t	next;		/* past its CRLF */
	int	close;		/* "--boundary--" */
};

const char turn_mime_hex[] = "0123456789ABCDEF";
const char turn_mime_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* the last error of this thread: see turn_mime.h */
static __thread char turn_mime_errbuf[TURN_MIME_ERR_MAX];

static int turn_mime_entity(struct turn_mime_ctx *, const unsigned char *,
    size_t, int, int, int);

/* turn_mime_fail - record the first error; always -1 */
int
turn_mime_fail(struct turn_mime_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->error != NULL)
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(turn_mime_errbuf, sizeof(turn_mime_errbuf), fmt, ap);
	va_end(ap);
	c->error = turn_mime_errbuf;
	return -1;
}

/* turn_mime_line - the line at pos: the end of its text, the next line */
int
turn_mime_line(const unsigned char *p, size_t len, size_t pos, size_t *end,
    size_t *next)
{
	const unsigned char *lf;

	if (pos >= len)
		return 0;
	lf = memchr(p + pos, '\n', len - pos);
	if (lf == NULL) {
		*end = *next = len;
		return 1;
	}
	*next = (size_t)(lf - p) + 1;
	*end = *next - 1;
	if (*end > pos && p[*end - 1] == '\r')
		(*end)--;
	return 1;
}

/* turn_mime_scan - no NUL, no 8-bit octet, lines <= 998; strict: no bare CR */
static int
turn_mime_scan(const unsigned char *p, size_t len, int strict)
{
	size_t pos = 0, end, next, i;

	while (turn_mime_line(p, len, pos, &end, &next)) {
		if (end - pos > TURN_MIME_LINE_MAX)
			return 0;
		for (i = pos; i < end; i++)
			if (p[i] == '\0' || p[i] >= 0x80 ||
			    (strict && p[i] == '\r'))
				return 0;
		pos = next;
	}
	return 1;
}

/* turn_mime_is_7bit - every octet < 128, no NUL, lines <= 998 */
int
turn_mime_is_7bit(const void *in, size_t len)
{
	return turn_mime_scan(in, len, 0);
}

/* turn_mime_clean - 7bit data (RFC 2045 2.7): CR only in CRLF too */
int
turn_mime_clean(const unsigned char *p, size_t len)
{
	return turn_mime_scan(p, len, 1);
}

/* turn_mime_has8bit - an octet above 127 */
int
turn_mime_has8bit(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] >= 0x80)
			return 1;
	return 0;
}

/* turn_mime_utf8_len - octets of the valid UTF-8 character at p, or 0 */
size_t
turn_mime_utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;		/* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f;		/* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;		/* nothing past U+10FFFF */
	} else
		return 0;
	if (n <= need || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i <= need; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return need + 1;
}

/* turn_mime_utf8 - the octets are valid UTF-8 */
int
turn_mime_utf8(const unsigned char *p, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((n = turn_mime_utf8_len(p + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* turn_mime_ieq - p[0..n) is name, without regard to case */
int
turn_mime_ieq(const void *p, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

/* turn_mime_is_tspecial - RFC 2045 5.1 tspecials */
static int
turn_mime_is_tspecial(unsigned char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* turn_mime_is_token - RFC 2045 5.1 token characters */
int
turn_mime_is_token(unsigned char c)
{
	return c > 32 && c < 127 && !turn_mime_is_tspecial(c);
}

/* turn_mime_header_add - one more field slot */
static struct turn_mime_field *
turn_mime_header_add(struct turn_mime_header *h)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->f = xreallocarray(h->f, h->cap, sizeof(*h->f));
	}
	return &h->f[h->n++];
}

/* turn_mime_header_parse - split the header section into fields */
static void
turn_mime_header_parse(struct turn_mime_header *h, const unsigned char *p,
    size_t len)
{
	struct turn_mime_field *f;
	size_t pos = 0, end, next, i, namelen;

	memset(h, 0, sizeof(*h));
	h->body = len;
	while (turn_mime_line(p, len, pos, &end, &next)) {
		if (end == pos) {
			/* RFC 5322 2.1: the empty line ends the header */
			h->body = next;
			return;
		}
		if (TURN_MIME_WSP(p[pos])) {
			/* RFC 5322 2.2.3: a folded line of the last field */
			if (h->n == 0)
				break;
			h->f[h->n - 1].end = end;
			pos = next;
			continue;
		}
		/* 8-bit octets here make a field that fails, not the body */
		for (i = pos; i < end && p[i] > 32 && p[i] != 127 &&
		    p[i] != ':'; i++)
			;
		namelen = i - pos;
		while (i < end && TURN_MIME_WSP(p[i]))
			i++;		/* RFC 5322 4.5: obs-optional */
		if (namelen == 0 || i == end || p[i] != ':')
			break;		/* not a field: the body starts here */
		f = turn_mime_header_add(h);
		f->start = pos;
		f->namelen = namelen;
		f->value = i + 1;
		f->end = end;
		pos = next;
	}
	h->body = pos < len ? pos : len;
}

/* turn_mime_unfold - a field body without its line ends or outer WSP */
void
turn_mime_unfold(const unsigned char *p, size_t len, struct buf *b)
{
	size_t i, s = 0;

	buf_reset(b);
	for (i = 0; i < len; i++) {
		if (p[i] == '\n' || (p[i] == '\r' && i + 1 < len &&
		    p[i + 1] == '\n'))
			continue;
		buf_putc(b, p[i]);
	}
	while (s < b->len && TURN_MIME_WSP(b->data[s]))
		s++;
	while (b->len > s && TURN_MIME_WSP(b->data[b->len - 1]))
		b->len--;
	if (s > 0)
		memmove(b->data, b->data + s, b->len - s);
	b->len -= s;
	buf_reserve(b, 0);
	b->data[b->len] = '\0';
}

/* turn_mime_trim - shrink [*s, *e) past WSP at both ends */
void
turn_mime_trim(const unsigned char *t, size_t *s, size_t *e)
{
	while (*s < *e && TURN_MIME_WSP(t[*s]))
		(*s)++;
	while (*e > *s && TURN_MIME_WSP(t[*e - 1]))
		(*e)--;
}

/* turn_mime_skip_quoted - past the quoted string at t[i] == '"' */
size_t
turn_mime_skip_quoted(const unsigned char *t, size_t n, size_t i)
{
	for (i++; i < n && t[i] != '"'; i++)
		if (t[i] == '\\' && i + 1 < n)
			i++;
	return i < n ? i + 1 : n;
}

/* turn_mime_param_end - the ';' that ends the parameter at i, or n */
size_t
turn_mime_param_end(const unsigned char *t, size_t n, size_t i)
{
	while (i < n && t[i] != ';') {
		if (t[i] == '"')
			i = turn_mime_skip_quoted(t, n, i);
		else
			i++;
	}
	return i;
}

/* turn_mime_copy_name - a type or subtype: lower case, token, bounded */
static int
turn_mime_copy_name(char *dst, size_t dstsz, const unsigned char *t,
    size_t n)
{
	size_t i;

	if (n == 0 || n >= dstsz)
		return 0;
	for (i = 0; i < n; i++) {
		if (!turn_mime_is_token(t[i]))
			return 0;
		dst[i] = (char)(t[i] >= 'A' && t[i] <= 'Z' ? t[i] + 32 : t[i]);
	}
	dst[n] = '\0';
	return 1;
}

/* turn_mime_param_value - a parameter value, unquoted, into dst */
static size_t
turn_mime_param_value(char *dst, size_t dstsz, const unsigned char *t,
    size_t s, size_t e)
{
	size_t n = 0, i;

	/* Python's email.utils.unquote: only a fully quoted value */
	if (e - s >= 2 && t[s] == '"' && t[e - 1] == '"') {
		for (i = s + 1; i < e - 1; i++) {
			if (t[i] == '\\' && i + 1 < e - 1)
				i++;
			if (n + 1 >= dstsz)
				return 0;
			dst[n++] = (char)t[i];
		}
	} else {
		if (e - s >= dstsz)
			return 0;
		memcpy(dst, t + s, e - s);
		n = e - s;
	}
	dst[n] = '\0';
	return n;
}

/* turn_mime_ctype_parse - type, subtype, boundary and charset */
static void
turn_mime_ctype_parse(struct turn_mime_ctype *ct, const unsigned char *t,
    size_t n)
{
	size_t i, s, e, eq, slash, len;
	int have_b = 0, have_cs = 0;

	/* the type is everything up to the first ';', as Python has it */
	for (e = 0; e < n && t[e] != ';'; e++)
		;
	s = 0;
	turn_mime_trim(t, &s, &e);
	for (slash = s; slash < e && t[slash] != '/'; slash++)
		;
	ct->valid = slash < e &&
	    turn_mime_copy_name(ct->type, sizeof(ct->type), t + s,
	    slash - s) &&
	    turn_mime_copy_name(ct->subtype, sizeof(ct->subtype),
	    t + slash + 1, e - slash - 1);
	for (i = e; i < n && t[i] != ';'; i++)
		;
	while (i < n) {
		s = i + 1;
		i = turn_mime_param_end(t, n, s);
		for (eq = s; eq < i && t[eq] != '='; eq++)
			;
		if (eq == i)
			continue;
		e = eq;
		turn_mime_trim(t, &s, &e);
		if (!have_b && turn_mime_ieq(t + s, e - s, "boundary")) {
			have_b = 1;
			s = eq + 1;
			e = i;
			turn_mime_trim(t, &s, &e);
			len = turn_mime_param_value(ct->boundary,
			    sizeof(ct->boundary), t, s, e);
			while (len > 0 && TURN_MIME_WSP(ct->boundary[len - 1]))
				len--;		/* Python rstrips it */
			ct->boundary[len] = '\0';
			ct->blen = len;
			for (s = 0; s < len; s++)
				if ((unsigned char)ct->boundary[s] < 32 ||
				    (unsigned char)ct->boundary[s] > 126)
					ct->blen = 0;
		} else if (!have_cs && turn_mime_ieq(t + s, e - s, "charset")) {
			have_cs = 1;
			s = eq + 1;
			e = i;
			turn_mime_trim(t, &s, &e);
			(void)turn_mime_param_value(ct->charset,
			    sizeof(ct->charset), t, s, e);
		}
	}
}

/* turn_mime_cte_parse - the encoding named by a field body */
static enum turn_mime_cte
turn_mime_cte_parse(const unsigned char *t, size_t n)
{
	static const struct {
		const char		*name;
		enum turn_mime_cte	 cte;
	} names[] = {
		{ "7bit", TURN_MIME_CTE_7BIT },
		{ "8bit", TURN_MIME_CTE_8BIT },
		{ "binary", TURN_MIME_CTE_BINARY },
		{ "quoted-printable", TURN_MIME_CTE_QP },
		{ "base64", TURN_MIME_CTE_BASE64 }
	};
	size_t i;

	for (i = 0; i < TURN_MIME_NELEM(names); i++)
		if (turn_mime_ieq(t, n, names[i].name))
			return names[i].cte;
	return TURN_MIME_CTE_OTHER;
}

/* turn_mime_copy - 7-bit text with CRLF line ends; no line end is added */
void
turn_mime_copy(struct buf *out, const unsigned char *p, size_t len)
{
	size_t pos = 0, end, next;

	while (turn_mime_line(p, len, pos, &end, &next)) {
		buf_append(out, p + pos, end - pos);
		if (next > end)
			buf_append(out, "\r\n", 2);
		pos = next;
	}
}

/* turn_mime_filler - preamble or epilogue: 8-bit, NUL and bare CR made "?" */
static int
turn_mime_filler(struct turn_mime_ctx *c, const unsigned char *p, size_t len)
{
	size_t pos = 0, end, next, i;
	unsigned char *o;

	while (turn_mime_line(p, len, pos, &end, &next)) {
		if (end - pos > TURN_MIME_LINE_MAX)
			return turn_mime_fail(c, "multipart preamble or"
			    " epilogue line longer than %d octets",
			    TURN_MIME_LINE_MAX);
		buf_reserve(c->out, end - pos + 2);
		o = c->out->data + c->out->len;
		for (i = pos; i < end; i++)
			*o++ = p[i] == '\0' || p[i] == '\r' || p[i] >= 0x80 ?
			    '?' : p[i];
		if (next > end) {
			*o++ = '\r';
			*o++ = '\n';
		}
		c->out->len = (size_t)(o - c->out->data);
		c->out->data[c->out->len] = '\0';
		pos = next;
	}
	return 0;
}

/* turn_mime_qp_put - one octet as "=XX" */
static unsigned char *
turn_mime_qp_put(unsigned char *o, unsigned char ch)
{
	*o++ = '=';
	*o++ = (unsigned char)turn_mime_hex[ch >> 4];
	*o++ = (unsigned char)turn_mime_hex[ch & 15];
	return o;
}

/* turn_mime_qp - quoted-printable (RFC 2045 6.7), CRLF as hard breaks */
static void
turn_mime_qp(struct buf *out, const unsigned char *p, size_t len)
{
	size_t pos = 0, end, next, i, col, t;
	unsigned char *o, ch;
	int lit, last;

	while (turn_mime_line(p, len, pos, &end, &next)) {
		/* 3 octets for each, a soft break per 25: below 4 */
		buf_reserve(out, 4 * (end - pos) + 8);
		o = out->data + out->len;
		for (col = 0, i = pos; i < end; i++) {
			ch = p[i];
			last = i + 1 == end;
			/* rule (3): no white space at the end of a line */
			lit = (ch > 32 && ch < 127 && ch != '=') ||
			    (TURN_MIME_WSP(ch) && !last);
			t = lit ? 1 : 3;
			/* rule (5): 76 octets with the "=" of a soft break */
			if (col + t > TURN_MIME_ENC_LINE - (last ? 0 : 1)) {
				*o++ = '=';
				*o++ = '\r';
				*o++ = '\n';
				col = 0;
				/* a new line must not look like a delimiter */
				if (ch == '-') {
					lit = 0;
					t = 3;
				}
			}
			if (lit)
				*o++ = ch;
			else
				o = turn_mime_qp_put(o, ch);
			col += t;
		}
		if (next > end) {
			*o++ = '\r';
			*o++ = '\n';
		}
		out->len = (size_t)(o - out->data);
		out->data[out->len] = '\0';
		pos = next;
	}
}

/* turn_mime_qp_fix - quoted-printable with raw 8-bit octets escaped */
static void
turn_mime_qp_fix(struct buf *out, const unsigned char *p, size_t len)
{
	size_t pos = 0, end, next, i, col, since_eq, t;
	unsigned char *o, ch;
	int esc;

	while (turn_mime_line(p, len, pos, &end, &next)) {
		buf_reserve(out, 4 * (end - pos) + 8);
		o = out->data + out->len;
		for (col = 0, since_eq = 3, i = pos; i < end; i++) {
			ch = p[i];
			esc = ch >= 0x80 || ch == '\0' || ch == '\r';
			t = esc ? 3 : 1;
			/* a soft break, but never inside the sender's "=XX" */
			if (col + t > TURN_MIME_QP_FIX_LINE && (since_eq >= 3 ||
			    col + t > TURN_MIME_LINE_MAX - 1)) {
				*o++ = '=';
				*o++ = '\r';
				*o++ = '\n';
				col = 0;
			}
			if (esc)
				o = turn_mime_qp_put(o, ch);
			else
				*o++ = ch;
			col += t;
			since_eq = !esc && ch == '=' ? 1 : since_eq + 1;
		}
		if (next > end) {
			*o++ = '\r';
			*o++ = '\n';
		}
		out->len = (size_t)(o - out->data);
		out->data[out->len] = '\0';
		pos = next;
	}
}

/* turn_mime_b64 - base64 (RFC 2045 6.8) in lines of 76; no final CRLF */
static void
turn_mime_b64(struct buf *out, const unsigned char *p, size_t len)
{
	const char *a = turn_mime_b64_alphabet;
	size_t i, col = 0;
	unsigned char *o;
	uint32_t v;

	buf_reserve(out, 4 * (len / 3 + 1) + 2 * (len / 57 + 1));
	o = out->data + out->len;
	for (i = 0; i < len; i += 3) {
		if (col == TURN_MIME_ENC_LINE) {
			*o++ = '\r';
			*o++ = '\n';
			col = 0;
		}
		v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = (unsigned char)a[v >> 18];
		*o++ = (unsigned char)a[(v >> 12) & 63];
		*o++ = i + 1 < len ? (unsigned char)a[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? (unsigned char)a[v & 63] : '=';
		col += 4;
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}

/* turn_mime_b64_fix - the base64 alphabet only, re-wrapped at 76 */
static void
turn_mime_b64_fix(struct buf *out, const unsigned char *p, size_t len)
{
	size_t i, col = 0;
	unsigned char *o;

	buf_reserve(out, len + 2 * (len / TURN_MIME_ENC_LINE + 1));
	o = out->data + out->len;
	for (i = 0; i < len; i++) {
		/* RFC 2045 6.8: decoders ignore anything else */
		if (p[i] == '\0' || (p[i] != '=' &&
		    strchr(turn_mime_b64_alphabet, p[i]) == NULL))
			continue;
		if (col == TURN_MIME_ENC_LINE) {
			*o++ = '\r';
			*o++ = '\n';
			col = 0;
		}
		*o++ = p[i];
		col++;
	}
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
}

/* turn_mime_delim_find - the next delimiter line from pos (RFC 2046 5.1.1) */
static int
turn_mime_delim_find(const unsigned char *p, size_t len, size_t pos,
    const char *b, size_t blen, struct turn_mime_delim *d)
{
	size_t end, next, i;

	while (turn_mime_line(p, len, pos, &end, &next)) {
		if (end - pos >= blen + 2 && p[pos] == '-' &&
		    p[pos + 1] == '-' && memcmp(p + pos + 2, b, blen) == 0) {
			i = pos + 2 + blen;
			d->close = i + 2 <= end && p[i] == '-' &&
			    p[i + 1] == '-';
			if (d->close)
				i += 2;
			while (i < end && TURN_MIME_WSP(p[i]))
				i++;	/* transport padding */
			if (i == end) {
				d->start = pos;
				d->end = end;
				d->next = next;
				return 1;
			}
		}
		pos = next;
	}
	return 0;
}

/* turn_mime_multipart - the parts of a multipart body, each downgraded */
static int
turn_mime_multipart(struct turn_mime_ctx *c, const unsigned char *p,
    size_t len, const struct turn_mime_ctype *ct, int depth)
{
	struct turn_mime_delim d, nd;
	size_t part, pend;
	int found, digest = strcmp(ct->subtype, "digest") == 0;

	if (!turn_mime_delim_find(p, len, 0, ct->boundary, ct->blen, &d)) {
		if (!turn_mime_clean(p, len))
			return turn_mime_fail(c, "multipart boundary not"
			    " found");
		turn_mime_copy(c->out, p, len);
		return 0;
	}
	/* the preamble, with the CRLF that starts the first delimiter */
	if (turn_mime_filler(c, p, d.start) == -1)
		return -1;
	while (!d.close) {
		part = d.next;
		found = turn_mime_delim_find(p, len, part, ct->boundary,
		    ct->blen, &nd);
		pend = found ? nd.start : len;
		/* the CRLF before a delimiter belongs to it, not the part */
		if (pend > part && p[pend - 1] == '\n') {
			pend--;
			if (pend > part && p[pend - 1] == '\r')
				pend--;
		}
		buf_printf(c->out, "--%s\r\n", ct->boundary);
		if (turn_mime_entity(c, p + part, pend - part, digest,
		    depth + 1, 0) == -1)
			return -1;
		buf_append(c->out, "\r\n", 2);
		if (!found) {
			/* RFC 2046 5.1.1: the close delimiter is required */
			buf_printf(c->out, "--%s--\r\n", ct->boundary);
			return 0;
		}
		d = nd;
	}
	buf_printf(c->out, "--%s--", ct->boundary);
	return turn_mime_filler(c, p + d.end, len - d.end);
}

/* turn_mime_binary_ok - binary came over 8BITMIME only if it is lines */
static int
turn_mime_binary_ok(const unsigned char *p, size_t len)
{
	size_t pos = 0, end, next;

	while (turn_mime_line(p, len, pos, &end, &next)) {
		if (end - pos > TURN_MIME_LINE_MAX)
			return 0;
		pos = next;
	}
	return 1;
}

/* turn_mime_plan_leaf - what to do with the body of a leaf entity */
static int
turn_mime_plan_leaf(struct turn_mime_ctx *c, const struct turn_mime_ctype *ct,
    enum turn_mime_cte cte, const struct buf *cte_text,
    const unsigned char *body, size_t blen, struct turn_mime_plan *plan)
{
	int clean = turn_mime_clean(body, blen);
	int text = strcmp(ct->type, "text") == 0;

	switch (cte) {
	case TURN_MIME_CTE_QP:
		plan->how = clean ? TURN_MIME_HOW_COPY : TURN_MIME_HOW_QP_FIX;
		return 0;
	case TURN_MIME_CTE_BASE64:
		plan->how = clean ? TURN_MIME_HOW_COPY :
		    TURN_MIME_HOW_BASE64_FIX;
		return 0;
	case TURN_MIME_CTE_OTHER:
		if (clean)
			return 0;
		return turn_mime_fail(c, "cannot downgrade"
		    " Content-Transfer-Encoding %.*s",
		    TURN_MIME_NAME_SHOWN < cte_text->len ?
		    TURN_MIME_NAME_SHOWN : (int)cte_text->len,
		    (const char *)cte_text->data);
	case TURN_MIME_CTE_BINARY:
		if (!clean && !turn_mime_binary_ok(body, blen))
			return turn_mime_fail(c, "binary body part with a line"
			    " longer than %d octets", TURN_MIME_LINE_MAX);
		break;
	default:
		break;
	}
	if (clean)
		return 0;
	plan->how = text ? TURN_MIME_HOW_QP : TURN_MIME_HOW_BASE64;
	plan->new_cte = text ? "quoted-printable" : "base64";
	/* text that names no charset: say what the octets are */
	if (text && (!ct->present || (ct->valid && ct->charset[0] == '\0'))) {
		plan->charset = turn_mime_utf8(body, blen) ? "utf-8" :
		    "unknown-8bit";
		plan->add_ct = !ct->present;
	}
	return 0;
}

/* turn_mime_plan - what to do with the body of an entity */
static int
turn_mime_plan(struct turn_mime_ctx *c, const struct turn_mime_ctype *ct,
    enum turn_mime_cte cte, const struct buf *cte_text,
    const unsigned char *body, size_t blen, struct turn_mime_plan *plan)
{
	int multipart = strcmp(ct->type, "multipart") == 0;
	int message = strcmp(ct->type, "message") == 0;

	memset(plan, 0, sizeof(*plan));
	plan->how = TURN_MIME_HOW_COPY;
	if (multipart && ct->blen > 0)
		plan->how = TURN_MIME_HOW_MULTIPART;
	else if (message && strcmp(ct->subtype, "rfc822") == 0 &&
	    cte != TURN_MIME_CTE_QP && cte != TURN_MIME_CTE_BASE64)
		plan->how = TURN_MIME_HOW_MESSAGE;
	else if (multipart || (message &&
	    (strcmp(ct->subtype, "partial") == 0 ||
	    strcmp(ct->subtype, "external-body") == 0))) {
		/* RFC 2046 5.2.2, 5.2.3: 7bit only; no encoding may help */
		if (!turn_mime_clean(body, blen))
			return turn_mime_fail(c, "8-bit octets in a %s/%s part",
			    ct->type, ct->subtype);
	} else if (turn_mime_plan_leaf(c, ct, cte, cte_text, body, blen,
	    plan) == -1)
		return -1;
	if (plan->new_cte == NULL && (cte == TURN_MIME_CTE_8BIT ||
	    cte == TURN_MIME_CTE_BINARY))
		plan->new_cte = "7bit";	/* 7bit data, or parts made so */
	return 0;
}

/* turn_mime_header_out - the header section, with the fields plan changes */
static int
turn_mime_header_out(struct turn_mime_ctx *c, const unsigned char *p,
    const struct turn_mime_header *h, const struct turn_mime_ctype *ct,
    const struct turn_mime_plan *plan, int add_mv)
{
	const struct turn_mime_field *f;
	size_t i, mark;
	int cte_seen = 0, ct_seen = 0;

	for (i = 0; i < h->n; i++) {
		f = &h->f[i];
		if (plan->new_cte != NULL && turn_mime_ieq(p + f->start,
		    f->namelen, "content-transfer-encoding")) {
			/* the first one is replaced, any other dropped */
			if (!cte_seen++)
				buf_printf(c->out, "Content-Transfer-Encoding:"
				    " %s\r\n", plan->new_cte);
			continue;
		}
		mark = c->out->len;
		if (turn_mime_hdr_field(c, p, f, ct) == -1)
			return -1;
		if (plan->charset != NULL && !plan->add_ct &&
		    turn_mime_ieq(p + f->start, f->namelen, "content-type") &&
		    !ct_seen++) {
			/* a charset for the text we encode, on its own line */
			while (c->out->len > mark + f->namelen + 1 &&
			    c->out->data[c->out->len - 1] != '\0' &&
			    strchr(" \t\r\n;", c->out->data[c->out->len - 1]))
				c->out->len--;
			buf_printf(c->out, ";\r\n\tcharset=%s\r\n",
			    plan->charset);
		}
	}
	if (add_mv)
		buf_puts(c->out, "MIME-Version: 1.0\r\n");
	if (plan->add_ct)
		buf_printf(c->out, "Content-Type: text/plain; charset=%s\r\n",
		    plan->charset);
	if (plan->new_cte != NULL && !cte_seen)
		buf_printf(c->out, "Content-Transfer-Encoding: %s\r\n",
		    plan->new_cte);
	buf_append(c->out, "\r\n", 2);
	return 0;
}

/* turn_mime_entity - one entity: its header fields, then its body */
static int
turn_mime_entity(struct turn_mime_ctx *c, const unsigned char *p, size_t len,
    int digest_part, int depth, int is_message)
{
	struct turn_mime_header h;
	struct turn_mime_ctype ct;
	struct turn_mime_plan plan;
	const struct turn_mime_field *ctf = NULL, *ctef = NULL, *mvf = NULL;
	enum turn_mime_cte cte = TURN_MIME_CTE_NONE;
	const unsigned char *body;
	struct buf tmp;
	size_t blen, i;
	int rc = -1;

	if (depth > TURN_MIME_DEPTH_MAX)
		return turn_mime_fail(c, "MIME parts nested deeper than %d",
		    TURN_MIME_DEPTH_MAX);
	turn_mime_header_parse(&h, p, len);
	buf_init(&tmp);
	for (i = 0; i < h.n; i++) {
		const unsigned char *name = p + h.f[i].start;
		size_t n = h.f[i].namelen;

		if (ctf == NULL && turn_mime_ieq(name, n, "content-type"))
			ctf = &h.f[i];
		else if (ctef == NULL && turn_mime_ieq(name, n,
		    "content-transfer-encoding"))
			ctef = &h.f[i];
		else if (mvf == NULL && turn_mime_ieq(name, n, "mime-version"))
			mvf = &h.f[i];
	}
	memset(&ct, 0, sizeof(ct));
	if (ctf != NULL) {
		ct.present = 1;
		turn_mime_unfold(p + ctf->value, ctf->end - ctf->value, &tmp);
		turn_mime_ctype_parse(&ct, tmp.data, tmp.len);
	}
	if (!ct.valid) {
		/* RFC 2046 5.1.5 and RFC 2045 5.2: the defaults */
		(void)strlcpy(ct.type, digest_part && !ct.present ? "message" :
		    "text", sizeof(ct.type));
		(void)strlcpy(ct.subtype, digest_part && !ct.present ?
		    "rfc822" : "plain", sizeof(ct.subtype));
	}
	buf_reset(&tmp);
	if (ctef != NULL) {
		turn_mime_unfold(p + ctef->value, ctef->end - ctef->value,
		    &tmp);
		cte = turn_mime_cte_parse(tmp.data, tmp.len);
	}
	body = p + h.body;
	blen = len - h.body;
	if (turn_mime_plan(c, &ct, cte, &tmp, body, blen, &plan) == -1 ||
	    turn_mime_header_out(c, p, &h, &ct, &plan, is_message &&
	    mvf == NULL && (ctf != NULL || ctef != NULL ||
	    plan.new_cte != NULL)) == -1)
		goto done;
	rc = 0;
	switch (plan.how) {
	case TURN_MIME_HOW_COPY:
		turn_mime_copy(c->out, body, blen);
		break;
	case TURN_MIME_HOW_QP:
		turn_mime_qp(c->out, body, blen);
		break;
	case TURN_MIME_HOW_BASE64:
		turn_mime_b64(c->out, body, blen);
		break;
	case TURN_MIME_HOW_QP_FIX:
		turn_mime_qp_fix(c->out, body, blen);
		break;
	case TURN_MIME_HOW_BASE64_FIX:
		turn_mime_b64_fix(c->out, body, blen);
		break;
	case TURN_MIME_HOW_MULTIPART:
		rc = turn_mime_multipart(c, body, blen, &ct, depth);
		break;
	case TURN_MIME_HOW_MESSAGE:
		/* RFC 2046 5.2.1: the message itself is made 7-bit */
		rc = turn_mime_entity(c, body, blen, 0, depth + 1, 1);
		break;
	}
done:
	free(h.f);
	buf_release(&tmp);
	return rc;
}

/* turn_mime_downgrade - append a 7-bit version of the message to out */
int
turn_mime_downgrade(const void *in, size_t len, struct buf *out,
    const char **error_r)
{
	struct turn_mime_ctx c;
	size_t mark = out->len;

	c.out = out;
	c.error = NULL;
	if (len > TURN_MIME_INPUT_MAX)
		(void)turn_mime_fail(&c, "message too large to convert");
	else if (turn_mime_entity(&c, in != NULL ? in : "", len, 0, 0,
	    1) == 0) {
		if (out->len > mark && out->data[out->len - 1] != '\n')
			buf_append(out, "\r\n", 2);
		return 0;
	}
	out->len = mark;
	if (out->data != NULL)
		out->data[mark] = '\0';
	*error_r = c.error != NULL ? c.error : "cannot convert the message";
	return -1;
}
