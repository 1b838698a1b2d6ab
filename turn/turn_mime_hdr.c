/*
 * NAME
 *	turn_mime_hdr 3 - header fields of a downgraded message, 7-bit
 * SYNOPSIS
 *	#include "turn_mime_private.h"
 *
 *	int
 *	turn_mime_hdr_field(c, p, field, ctype)
 * DESCRIPTION
 *	turn_mime_hdr_field() appends one header field of the entity at p
 *	to c->out, ending in CRLF: as it is (line ends made CRLF) when it
 *	is 7-bit, else rewritten as RFC 2047 says, and folded at white
 *	space to lines of at most 76 octets where encoded-words are, 78
 *	elsewhere:
 *	- unstructured fields (Subject, Comments, Keywords,
 *	  Content-Description, Organization, Thread-Topic, Summary, X-*):
 *	  each run of words with 8-bit octets becomes encoded-words;
 *	- address fields (From, Sender, Reply-To, To, Cc, Bcc, their
 *	  Resent- forms, Mail-Followup-To, Mail-Reply-To): only a display
 *	  name or group name phrase is encoded, as a whole, with quoted
 *	  strings unquoted first (RFC 2047 section 5 (3));
 *	- Content-Type and Content-Disposition: a parameter value with
 *	  8-bit octets becomes an RFC 2231 value (filename*=utf-8''...),
 *	  split into continuations when long; but not a boundary or a
 *	  charset, which the structure depends on.
 *	Any other field with 8-bit octets, 8-bit octets in a field name,
 *	an address or a comment, or a NUL or bare CR in a header field is
 *	an error.
 *	The charset named is utf-8 when the octets are valid UTF-8 (what a
 *	raw 8-bit header field nearly always holds, RFC 6532), else the
 *	entity's own charset parameter, else unknown-8bit. No encoded-word
 *	splits a character (RFC 2047 section 5): UTF-8, Shift_JIS, EUC-JP,
 *	GB18030 and the EUC-KR/GBK/Big5 family are known; any other charset
 *	that is not known to be single-octet is split only at white space,
 *	so its encoded-words may pass 75 octets.
 * DIAGNOSTICS
 *	-1, with the error in c: "8-bit octets in header field NAME", "8-bit
 *	octets in a header field name", "NUL or bare CR in header field
 *	NAME", or "header line longer than 998 octets".
 * SEE ALSO
 *	turn_mime(3), RFC 2047, RFC 2231, RFC 5322, RFC 6532
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "turn_mime_private.h"

#define TURN_MIME_HDR_LINE	78	/* RFC 5322 2.1.1 SHOULD */
#define TURN_MIME_HDR_EW_LINE	76	/* RFC 2047 2: encoded-word lines */
#define TURN_MIME_HDR_EW_MAX	75	/* RFC 2047 2: one encoded-word */
#define TURN_MIME_HDR_EW_MIN	12	/* encoded text worth a line's end */
#define TURN_MIME_HDR_CHUNK	60	/* RFC 2231 3: one continuation */

/* How a header field with 8-bit octets may be rewritten. */
enum turn_mime_hdr_class {
	TURN_MIME_HDR_CLASS_NONE,	/* it may not: an error */
	TURN_MIME_HDR_CLASS_TEXT,	/* unstructured: encoded-words */
	TURN_MIME_HDR_CLASS_ADDRESS,	/* display names: encoded-words */
	TURN_MIME_HDR_CLASS_PARAMS	/* parameter values: RFC 2231 */
};

/* What an encoded-word may not split (RFC 2047 section 5). */
enum turn_mime_hdr_unit {
	TURN_MIME_HDR_UNIT_OCTET,	/* a single-octet charset */
	TURN_MIME_HDR_UNIT_UTF8,	/* a UTF-8 character */
	TURN_MIME_HDR_UNIT_SJIS,	/* Shift_JIS: 1 or 2 octets */
	TURN_MIME_HDR_UNIT_EUCJP,	/* EUC-JP: 1, 2 or 3 octets */
	TURN_MIME_HDR_UNIT_GB18030,	/* GB18030: 1, 2 or 4 octets */
	TURN_MIME_HDR_UNIT_DBCS,	/* EUC-KR, GBK, Big5: a lead >= 0x81 */
	TURN_MIME_HDR_UNIT_WORD		/* unknown: a run between WSP */
};

/* How the encoded-words of one field are written. */
struct turn_mime_hdr_ew {
	const char		*charset;
	enum turn_mime_hdr_unit	 unit;
	int			 b;	/* B encoding, else Q */
};

/* A header field being written: folding at white space. */
struct turn_mime_hdr_hw {
	struct buf		*out;
	size_t			 col;	/* octets on the output line so far */
	const unsigned char	*ws;	/* white space before the next word */
	size_t			 wslen;
	int			 toolong; /* a line passed 998 octets */
};

/* Unstructured fields (RFC 5322 3.6.5, RFC 2045 8, and common ones). */
static const char *const turn_mime_hdr_text_fields[] = {
	"subject", "comments", "keywords", "content-description",
	"organization", "thread-topic", "summary"
};

/* Fields whose body is an address list (RFC 5322 3.6.2, 3.6.3, 3.6.6). */
static const char *const turn_mime_hdr_address_fields[] = {
	"from", "sender", "reply-to", "to", "cc", "bcc", "resent-from",
	"resent-sender", "resent-to", "resent-cc", "resent-bcc",
	"mail-followup-to", "mail-reply-to"
};

/* Where the characters of a known charset end (RFC 2047 5: not split). */
static const struct {
	const char		*prefix;
	enum turn_mime_hdr_unit	 unit;
} turn_mime_hdr_charsets[] = {
	{ "iso-8859-", TURN_MIME_HDR_UNIT_OCTET },
	{ "iso8859-", TURN_MIME_HDR_UNIT_OCTET },
	{ "iso_8859-", TURN_MIME_HDR_UNIT_OCTET },
	{ "windows-125", TURN_MIME_HDR_UNIT_OCTET },
	{ "cp125", TURN_MIME_HDR_UNIT_OCTET },
	{ "koi8-", TURN_MIME_HDR_UNIT_OCTET },
	{ "latin", TURN_MIME_HDR_UNIT_OCTET },
	{ "macintosh", TURN_MIME_HDR_UNIT_OCTET },
	{ "tis-620", TURN_MIME_HDR_UNIT_OCTET },
	{ "shift_jis", TURN_MIME_HDR_UNIT_SJIS },
	{ "shift-jis", TURN_MIME_HDR_UNIT_SJIS },
	{ "sjis", TURN_MIME_HDR_UNIT_SJIS },
	{ "windows-31j", TURN_MIME_HDR_UNIT_SJIS },
	{ "cp932", TURN_MIME_HDR_UNIT_SJIS },
	{ "euc-jp", TURN_MIME_HDR_UNIT_EUCJP },
	{ "gb18030", TURN_MIME_HDR_UNIT_GB18030 },
	{ "gb2312", TURN_MIME_HDR_UNIT_DBCS },
	{ "gbk", TURN_MIME_HDR_UNIT_DBCS },
	{ "cp936", TURN_MIME_HDR_UNIT_DBCS },
	{ "euc-cn", TURN_MIME_HDR_UNIT_DBCS },
	{ "euc-kr", TURN_MIME_HDR_UNIT_DBCS },
	{ "ks_c_5601", TURN_MIME_HDR_UNIT_DBCS },
	{ "cp949", TURN_MIME_HDR_UNIT_DBCS },
	{ "big5", TURN_MIME_HDR_UNIT_DBCS }
};

/* turn_mime_hdr_charset_ok - usable in an encoded-word and in RFC 2231 */
static int
turn_mime_hdr_charset_ok(const char *cs)
{
	size_t i;

	if (cs[0] == '\0')
		return 0;
	for (i = 0; cs[i] != '\0'; i++)
		if (!((cs[i] >= 'a' && cs[i] <= 'z') ||
		    (cs[i] >= 'A' && cs[i] <= 'Z') ||
		    (cs[i] >= '0' && cs[i] <= '9') ||
		    strchr("!#$&+-^_`{}~", cs[i]) != NULL))
			return 0;
	return strcasecmp(cs, "us-ascii") != 0 &&
	    strcasecmp(cs, "utf-8") != 0 && strcasecmp(cs, "utf8") != 0;
}

/* turn_mime_hdr_charset_pick - the charset to name for 8-bit header text */
static void
turn_mime_hdr_charset_pick(const unsigned char *t, size_t n,
    const struct turn_mime_ctype *ct, struct turn_mime_hdr_ew *e)
{
	size_t i;

	if (turn_mime_utf8(t, n)) {
		e->charset = "utf-8";
		e->unit = TURN_MIME_HDR_UNIT_UTF8;
		return;
	}
	if (!turn_mime_hdr_charset_ok(ct->charset)) {
		e->charset = "unknown-8bit";
		e->unit = TURN_MIME_HDR_UNIT_OCTET;
		return;
	}
	e->charset = ct->charset;
	e->unit = TURN_MIME_HDR_UNIT_WORD;
	for (i = 0; i < TURN_MIME_NELEM(turn_mime_hdr_charsets); i++)
		if (strncasecmp(ct->charset, turn_mime_hdr_charsets[i].prefix,
		    strlen(turn_mime_hdr_charsets[i].prefix)) == 0) {
			e->unit = turn_mime_hdr_charsets[i].unit;
			break;
		}
}

/* turn_mime_hdr_q_safe - RFC 2047 5 (3): octets a Q encoded-word keeps */
static int
turn_mime_hdr_q_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
	    c == '-' || c == '/' || c == ' ';
}

/* turn_mime_hdr_q_len - octets of the Q encoding of t[0..n) */
static size_t
turn_mime_hdr_q_len(const unsigned char *t, size_t n)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++)
		len += turn_mime_hdr_q_safe(t[i]) ? 1 : 3;
	return len;
}

/* turn_mime_hdr_ew_unit - octets that one encoded-word must not split */
static size_t
turn_mime_hdr_ew_unit(const unsigned char *t, size_t n,
    enum turn_mime_hdr_unit u)
{
	unsigned char c = t[0];
	size_t i = 1;

	switch (u) {
	case TURN_MIME_HDR_UNIT_UTF8:
		i = turn_mime_utf8_len(t, n);
		return i > 0 ? i : 1;
	case TURN_MIME_HDR_UNIT_SJIS:
		if ((c >= 0x81 && c <= 0x9f) || (c >= 0xe0 && c <= 0xfc))
			i = 2;
		break;
	case TURN_MIME_HDR_UNIT_EUCJP:
		if (c == 0x8f)
			i = 3;		/* JIS X 0212 */
		else if (c == 0x8e || c >= 0xa1)
			i = 2;
		break;
	case TURN_MIME_HDR_UNIT_GB18030:
		if (c >= 0x81)
			i = n > 1 && t[1] >= '0' && t[1] <= '9' ? 4 : 2;
		break;
	case TURN_MIME_HDR_UNIT_DBCS:
		if (c >= 0x81)
			i = 2;
		break;
	case TURN_MIME_HDR_UNIT_WORD:
		if (TURN_MIME_WSP(c))
			return 1;
		for (i = 0; i < n && !TURN_MIME_WSP(t[i]); i++)
			;
		return i;
	case TURN_MIME_HDR_UNIT_OCTET:
		break;
	}
	return i < n ? i : n;
}

/* turn_mime_hdr_hw_put - white space, then a word; fold past limit */
static void
turn_mime_hdr_hw_put(struct turn_mime_hdr_hw *w, const void *word, size_t n,
    size_t limit)
{
	/* RFC 5322 2.2.3: a fold is a CRLF before white space */
	if (w->wslen > 0 && w->col + w->wslen + n > limit) {
		buf_append(w->out, "\r\n", 2);
		w->col = 0;
	}
	buf_append(w->out, w->ws, w->wslen);
	buf_append(w->out, word, n);
	w->col += w->wslen + n;
	w->wslen = 0;
	if (w->col > TURN_MIME_LINE_MAX)
		w->toolong = 1;
}

/* turn_mime_hdr_hw_space - a single space is the next fold point */
static void
turn_mime_hdr_hw_space(struct turn_mime_hdr_hw *w)
{
	w->ws = (const unsigned char *)" ";
	w->wslen = 1;
}

/* turn_mime_hdr_hw_text - 7-bit text, folded at its white space */
static void
turn_mime_hdr_hw_text(struct turn_mime_hdr_hw *w, const unsigned char *t,
    size_t n)
{
	size_t i = 0, s;

	while (i < n) {
		s = i;
		if (TURN_MIME_WSP(t[i])) {
			while (i < n && TURN_MIME_WSP(t[i]))
				i++;
			w->ws = t + s;
			w->wslen = i - s;
			continue;
		}
		while (i < n && !TURN_MIME_WSP(t[i]))
			i++;
		turn_mime_hdr_hw_put(w, t + s, i - s, TURN_MIME_HDR_LINE);
	}
}

/* turn_mime_hdr_hw_ew - t[0..n) as encoded-words of at most 75 octets */
static void
turn_mime_hdr_hw_ew(struct turn_mime_hdr_hw *w, const unsigned char *t,
    size_t n, const struct turn_mime_hdr_ew *e, struct buf *word)
{
	size_t pos = 0, overhead, room, avail, k, u, enc, nenc, i;
	unsigned char q;

	overhead = strlen(e->charset) + 7;	/* =?cs?X? ?= */
	while (pos < n) {
		room = w->col + w->wslen < TURN_MIME_HDR_EW_LINE ?
		    TURN_MIME_HDR_EW_LINE - w->col - w->wslen : 0;
		if (room < overhead + TURN_MIME_HDR_EW_MIN && w->wslen > 0) {
			/* a fresh line holds more of it */
			buf_append(w->out, "\r\n", 2);
			w->col = 0;
			room = TURN_MIME_HDR_EW_LINE - w->wslen;
		}
		if (room > TURN_MIME_HDR_EW_MAX)
			room = TURN_MIME_HDR_EW_MAX;
		avail = room > overhead ? room - overhead : 0;
		for (k = 0, enc = 0; pos + k < n; k += u, enc = nenc) {
			u = turn_mime_hdr_ew_unit(t + pos + k, n - pos - k,
			    e->unit);
			nenc = e->b ? 4 * ((k + u + 2) / 3) :
			    enc + turn_mime_hdr_q_len(t + pos + k, u);
			if (k > 0 && nenc > avail)
				break;
		}
		buf_reset(word);
		buf_printf(word, "=?%s?%c?", e->charset, e->b ? 'B' : 'Q');
		for (i = 0; e->b && i < k; i += 3) {
			uint32_t v = (uint32_t)t[pos + i] << 16;

			if (i + 1 < k)
				v |= (uint32_t)t[pos + i + 1] << 8;
			if (i + 2 < k)
				v |= t[pos + i + 2];
			buf_putc(word, turn_mime_b64_alphabet[v >> 18]);
			buf_putc(word, turn_mime_b64_alphabet[(v >> 12) & 63]);
			buf_putc(word, i + 1 < k ?
			    turn_mime_b64_alphabet[(v >> 6) & 63] : '=');
			buf_putc(word, i + 2 < k ?
			    turn_mime_b64_alphabet[v & 63] : '=');
		}
		for (i = 0; !e->b && i < k; i++) {
			q = t[pos + i];
			if (q == ' ')
				buf_putc(word, '_');
			else if (turn_mime_hdr_q_safe(q))
				buf_putc(word, q);
			else
				buf_printf(word, "=%c%c", turn_mime_hex[q >> 4],
				    turn_mime_hex[q & 15]);
		}
		buf_puts(word, "?=");
		turn_mime_hdr_hw_put(w, word->data, word->len, SIZE_MAX);
		pos += k;
		/* RFC 2047 6.2: white space between encoded-words is dropped */
		turn_mime_hdr_hw_space(w);
	}
	w->wslen = 0;
}

/* turn_mime_hdr_word_needs - a word that must become an encoded-word */
static int
turn_mime_hdr_word_needs(const unsigned char *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i] >= 0x80 || (t[i] == '=' && i + 1 < n &&
		    t[i + 1] == '?'))
			return 1;
	return 0;
}

/* turn_mime_hdr_field_text - unstructured: runs of 8-bit words encoded */
static int
turn_mime_hdr_field_text(struct turn_mime_hdr_hw *w, const unsigned char *t,
    size_t n, const struct turn_mime_hdr_ew *e, struct buf *tmp)
{
	size_t i = 0, s, end, k, k2;

	while (i < n) {
		s = i;
		if (TURN_MIME_WSP(t[i])) {
			while (i < n && TURN_MIME_WSP(t[i]))
				i++;
			w->ws = t + s;
			w->wslen = i - s;
			continue;
		}
		while (i < n && !TURN_MIME_WSP(t[i]))
			i++;
		if (!turn_mime_hdr_word_needs(t + s, i - s)) {
			turn_mime_hdr_hw_put(w, t + s, i - s,
			    TURN_MIME_HDR_LINE);
			continue;
		}
		/* the next words that need it join this run, with the WSP */
		for (end = i;;) {
			for (k = end; k < n && TURN_MIME_WSP(t[k]); k++)
				;
			for (k2 = k; k2 < n && !TURN_MIME_WSP(t[k2]); k2++)
				;
			if (k == n || !turn_mime_hdr_word_needs(t + k, k2 - k))
				break;
			end = k2;
		}
		turn_mime_hdr_hw_ew(w, t + s, end - s, e, tmp);
		i = end;
	}
	return 0;
}

/* turn_mime_hdr_phrase - a display name: kept if 7-bit, else encoded whole */
static int
turn_mime_hdr_phrase(struct turn_mime_hdr_hw *w, const unsigned char *t,
    size_t n, const struct turn_mime_hdr_ew *e, struct buf *tmp,
    struct buf *text)
{
	size_t s = 0, end = n, i;

	if (!turn_mime_has8bit(t, n)) {
		turn_mime_hdr_hw_text(w, t, n);
		return 0;
	}
	turn_mime_trim(t, &s, &end);
	if (s > 0) {
		w->ws = t;
		w->wslen = s;
	} else if (w->col > 0)
		turn_mime_hdr_hw_space(w);
	/* the words of the phrase, quoted strings unquoted, as one text */
	buf_reset(text);
	for (i = s; i < end;) {
		if (t[i] == '"') {
			for (i++; i < end && t[i] != '"'; i++) {
				if (t[i] == '\\' && i + 1 < end)
					i++;
				buf_putc(text, t[i]);
			}
			i++;
		} else if (t[i] == '(' || t[i] == ')' || t[i] == '\\')
			return -1;	/* a comment: not encoded here */
		else if (TURN_MIME_WSP(t[i])) {
			while (i < end && TURN_MIME_WSP(t[i]))
				i++;
			buf_putc(text, ' ');
		} else
			buf_putc(text, t[i++]);
	}
	turn_mime_hdr_hw_ew(w, text->data, text->len, e, tmp);
	turn_mime_hdr_hw_space(w);
	return 0;
}

/* turn_mime_hdr_field_address - an address list: display names encoded */
static int
turn_mime_hdr_field_address(struct turn_mime_hdr_hw *w, const unsigned char *t,
    size_t n, const struct turn_mime_hdr_ew *e, struct buf *tmp,
    struct buf *text)
{
	size_t i = 0, seg = 0, j, depth;

	while (i < n) {
		switch (t[i]) {
		case '"':
			i = turn_mime_skip_quoted(t, n, i);
			continue;
		case '(':
			for (depth = 0; i < n; i++) {
				if (t[i] == '\\' && i + 1 < n)
					i++;
				else if (t[i] == '(')
					depth++;
				else if (t[i] == ')' && --depth == 0)
					break;
			}
			i = i < n ? i + 1 : n;
			continue;
		case '[':
			while (i < n && t[i] != ']')
				i++;
			i = i < n ? i + 1 : n;
			continue;
		case '<':
		case ':':
			/* RFC 5322 3.4: name-addr and group: a phrase first */
			if (turn_mime_hdr_phrase(w, t + seg, i - seg, e, tmp,
			    text) == -1)
				return -1;
			j = i + 1;
			while (t[i] == '<' && j < n && t[j] != '>')
				j = t[j] == '"' ?
				    turn_mime_skip_quoted(t, n, j) : j + 1;
			if (t[i] == '<' && j < n)
				j++;
			if (turn_mime_has8bit(t + i, j - i))
				return -1;	/* RFC 6532 address */
			turn_mime_hdr_hw_text(w, t + i, j - i);
			seg = i = j;
			continue;
		case ',':
		case ';':
			if (turn_mime_has8bit(t + seg, i + 1 - seg))
				return -1;
			turn_mime_hdr_hw_text(w, t + seg, i + 1 - seg);
			seg = ++i;
			continue;
		default:
			i++;
		}
	}
	if (turn_mime_has8bit(t + seg, n - seg))
		return -1;
	turn_mime_hdr_hw_text(w, t + seg, n - seg);
	return 0;
}

/* turn_mime_hdr_param_2231 - name*=charset''value (RFC 2231 3, 4), in pieces */
static void
turn_mime_hdr_param_2231(struct turn_mime_hdr_hw *w, const unsigned char *name,
    size_t namelen, const unsigned char *v, size_t vlen,
    const struct turn_mime_hdr_ew *e, struct buf *tmp)
{
	struct buf piece;
	size_t i, s, k, total;

	buf_reset(tmp);
	for (i = 0; i < vlen; i++) {
		if (turn_mime_is_token(v[i]) && v[i] != '*' && v[i] != '\'' &&
		    v[i] != '%')
			buf_putc(tmp, v[i]);
		else
			buf_printf(tmp, "%%%c%c", turn_mime_hex[v[i] >> 4],
			    turn_mime_hex[v[i] & 15]);
	}
	total = tmp->len;
	buf_init(&piece);
	for (s = 0, k = 0; s < total || k == 0; k++) {
		/* one piece: up to TURN_MIME_HDR_CHUNK octets, no %XX split */
		for (i = s; i < total && i - s < TURN_MIME_HDR_CHUNK;)
			i += tmp->data[i] == '%' ? 3 : 1;
		buf_reset(&piece);
		if (k == 0 && i == total)
			buf_printf(&piece, "%.*s*=%s''", (int)namelen,
			    (const char *)name, e->charset);
		else if (k == 0)
			buf_printf(&piece, "%.*s*0*=%s''", (int)namelen,
			    (const char *)name, e->charset);
		else
			buf_printf(&piece, "%.*s*%zu*=", (int)namelen,
			    (const char *)name, k);
		buf_append(&piece, tmp->data + s, i - s);
		turn_mime_hdr_hw_put(w, ";", 1, TURN_MIME_HDR_LINE);
		turn_mime_hdr_hw_space(w);
		turn_mime_hdr_hw_put(w, piece.data, piece.len,
		    TURN_MIME_HDR_LINE);
		s = i;
	}
	buf_release(&piece);
}

/* turn_mime_hdr_field_params - Content-Type/-Disposition: RFC 2231 values */
static int
turn_mime_hdr_field_params(struct turn_mime_hdr_hw *w, const unsigned char *t,
    size_t n, const struct turn_mime_hdr_ew *e, struct buf *tmp,
    struct buf *text)
{
	size_t i, s, end, eq, ns, ne;

	i = turn_mime_param_end(t, n, 0);
	if (turn_mime_has8bit(t, i))
		return -1;
	turn_mime_hdr_hw_text(w, t, i);
	while (i < n) {
		s = i + 1;
		end = turn_mime_param_end(t, n, s);
		if (!turn_mime_has8bit(t + s, end - s)) {
			turn_mime_hdr_hw_text(w, t + i, end - i);
			i = end;
			continue;
		}
		for (eq = s; eq < end && t[eq] != '='; eq++)
			;
		ns = s;
		ne = eq;
		turn_mime_trim(t, &ns, &ne);
		if (eq == end || ns == ne)
			return -1;
		for (s = ns; s < ne; s++)
			if (!turn_mime_is_token(t[s]) || t[s] == '*')
				return -1;	/* RFC 2231 already, or junk */
		/* the structure hangs on these: they must stay as they are */
		if (turn_mime_ieq(t + ns, ne - ns, "boundary") ||
		    turn_mime_ieq(t + ns, ne - ns, "charset"))
			return -1;
		s = eq + 1;
		turn_mime_trim(t, &s, &end);
		buf_reset(text);
		if (end - s >= 2 && t[s] == '"' && t[end - 1] == '"') {
			for (s++; s < end - 1; s++) {
				if (t[s] == '\\' && s + 1 < end - 1)
					s++;
				buf_putc(text, t[s]);
			}
		} else
			buf_append(text, t + s, end - s);
		turn_mime_hdr_param_2231(w, t + ns, ne - ns, text->data,
		    text->len, e, tmp);
		i = turn_mime_param_end(t, n, eq);
	}
	return 0;
}

/* turn_mime_hdr_field_class - how a field with 8-bit octets may be rewritten */
static enum turn_mime_hdr_class
turn_mime_hdr_field_class(const unsigned char *name, size_t n)
{
	size_t i;

	if (n > 2 && strncasecmp((const char *)name, "x-", 2) == 0)
		return TURN_MIME_HDR_CLASS_TEXT;
	for (i = 0; i < TURN_MIME_NELEM(turn_mime_hdr_text_fields); i++)
		if (turn_mime_ieq(name, n, turn_mime_hdr_text_fields[i]))
			return TURN_MIME_HDR_CLASS_TEXT;
	for (i = 0; i < TURN_MIME_NELEM(turn_mime_hdr_address_fields); i++)
		if (turn_mime_ieq(name, n, turn_mime_hdr_address_fields[i]))
			return TURN_MIME_HDR_CLASS_ADDRESS;
	if (turn_mime_ieq(name, n, "content-type") ||
	    turn_mime_ieq(name, n, "content-disposition"))
		return TURN_MIME_HDR_CLASS_PARAMS;
	return TURN_MIME_HDR_CLASS_NONE;
}

/* turn_mime_hdr_field - one header field, copied or rewritten 7-bit */
int
turn_mime_hdr_field(struct turn_mime_ctx *c, const unsigned char *p,
    const struct turn_mime_field *f, const struct turn_mime_ctype *ct)
{
	const unsigned char *name = p + f->start;
	struct turn_mime_hdr_hw w;
	struct turn_mime_hdr_ew e;
	struct buf text, tmp, piece;
	enum turn_mime_hdr_class cls;
	size_t i, n = f->end - f->start;
	int rc;

	if (turn_mime_has8bit(name, f->namelen))
		return turn_mime_fail(c, "8-bit octets in a header field name");
	for (i = 0; i < n; i++)
		if (name[i] == '\0' || (name[i] == '\r' && (i + 1 == n ||
		    name[i + 1] != '\n')))
			return turn_mime_fail(c, "NUL or bare CR in header"
			    " field %.*s", TURN_MIME_NAME_SHOWN < f->namelen ?
			    TURN_MIME_NAME_SHOWN : (int)f->namelen,
			    (const char *)name);
	if (!turn_mime_has8bit(name, n)) {
		if (!turn_mime_clean(name, n))
			return turn_mime_fail(c, "header line longer than %d"
			    " octets", TURN_MIME_LINE_MAX);
		turn_mime_copy(c->out, name, n);
		buf_append(c->out, "\r\n", 2);
		return 0;
	}
	cls = turn_mime_hdr_field_class(name, f->namelen);
	if (cls == TURN_MIME_HDR_CLASS_NONE)
		goto fail;
	buf_init(&text);
	buf_init(&tmp);
	buf_init(&piece);
	turn_mime_unfold(p + f->value, f->end - f->value, &text);
	turn_mime_hdr_charset_pick(text.data, text.len, ct, &e);
	/* the shorter encoding, as Python's email package chooses */
	e.b = turn_mime_hdr_q_len(text.data, text.len) >
	    4 * ((text.len + 2) / 3);
	memset(&w, 0, sizeof(w));
	w.out = c->out;
	buf_append(c->out, name, f->namelen);
	buf_putc(c->out, ':');
	w.col = f->namelen + 1;
	turn_mime_hdr_hw_space(&w);
	switch (cls) {
	case TURN_MIME_HDR_CLASS_TEXT:
		rc = turn_mime_hdr_field_text(&w, text.data, text.len, &e,
		    &tmp);
		break;
	case TURN_MIME_HDR_CLASS_ADDRESS:
		rc = turn_mime_hdr_field_address(&w, text.data, text.len, &e,
		    &tmp, &piece);
		break;
	default:
		rc = turn_mime_hdr_field_params(&w, text.data, text.len, &e,
		    &tmp, &piece);
		break;
	}
	buf_release(&text);
	buf_release(&tmp);
	buf_release(&piece);
	if (rc == -1)
		goto fail;
	if (w.toolong)
		return turn_mime_fail(c, "header line longer than %d octets",
		    TURN_MIME_LINE_MAX);
	buf_append(c->out, "\r\n", 2);
	return 0;
fail:
	return turn_mime_fail(c, "8-bit octets in header field %.*s",
	    TURN_MIME_NAME_SHOWN < f->namelen ? TURN_MIME_NAME_SHOWN :
	    (int)f->namelen, (const char *)name);
}
