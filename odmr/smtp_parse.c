/*
 * NAME
 *	smtp_parse 3 - pure parsers for the ESMTP server's command lines
 * SYNOPSIS
 *	#include "smtp_parse.h"
 *
 *	enum smtp_parse_status
 *	smtp_parse_command(line, len, cmd, error_r)
 *
 *	enum smtp_parse_status
 *	smtp_parse_path(s, len, in_flags, path, error_r)
 *
 *	enum smtp_parse_status
 *	smtp_parse_mail_args(s, len, path, mail_params, error_r)
 *
 *	enum smtp_parse_status
 *	smtp_parse_rcpt_args(s, len, smtputf8, path, rcpt_params, error_r)
 *
 *	enum smtp_parse_status
 *	smtp_parse_bdat(s, len, bdat, error_r)
 *
 *	enum smtp_parse_status
 *	smtp_parse_helo(s, len, helo, error_r)
 * DESCRIPTION
 *	The syntax layer of the MX listener. Every function reads at most
 *	len octets, copies into fixed buffers only after it has checked the
 *	RFC limit that sizes them, and returns a status instead of logging.
 *	The status maps to exactly one reply code and enhanced status code
 *	in smtp_parse_statuses[]; *error_r is the matching reply text.
 *
 *	The path parser is strict RFC 5321 4.1.2 (plus RFC 6531 UTF-8 when
 *	asked), with two tolerated forms that it flags instead of refusing:
 *	source routes (RFC 5321 4.1.2 and C: accepted, to be ignored) and
 *	a domain ending in a dot. Whether an address may be relayed is not
 *	decided here.
 * DIAGNOSTICS
 *	SMTP_PARSE_OK, or a status and a one-line reply text.
 * SEE ALSO
 *	smtp_parse.h, dname(3)
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "dname.h"
#include "queue.h"
#include "smtp_parse.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* RFC 5321 4.1.3: the longest IPv6 literal text ("IPv6:" excluded). */
#define SMTP_PARSE_IPV6_TEXT_MAX	45

/* One reply per status: the only place that picks a code. */
static const struct {
	const char	*name;
	unsigned	 code;
	const char	*enhanced;
} smtp_parse_statuses[] = {
	[SMTP_PARSE_OK] = { "ok", 250, "2.0.0" },
	/* RFC 5321 4.5.3.1.10 "500 Line too long"; RFC 3463 X.5.6 */
	[SMTP_PARSE_LINE_TOO_LONG] = { "line-too-long", 500, "5.5.2" },
	[SMTP_PARSE_BAD_LINE] = { "bad-line", 500, "5.5.2" },
	[SMTP_PARSE_UNKNOWN_COMMAND] = { "unknown-command", 500, "5.5.2" },
	[SMTP_PARSE_BAD_ARGS] = { "bad-args", 501, "5.5.4" },
	/* RFC 3463 X.1.7 and X.1.3: bad sender / destination syntax */
	[SMTP_PARSE_BAD_SENDER] = { "bad-sender", 501, "5.1.7" },
	[SMTP_PARSE_BAD_RCPT] = { "bad-rcpt", 501, "5.1.3" },
	/* RFC 6531 3.5: 553 with X.6.7 */
	[SMTP_PARSE_UTF8_ADDRESS] = { "utf8-address", 553, "5.6.7" },
	[SMTP_PARSE_BAD_PARAM] = { "bad-param", 501, "5.5.4" },
	/* RFC 5321 4.2.3 / RFC 1869: 555 parameters not recognised */
	[SMTP_PARSE_UNKNOWN_PARAM] = { "unknown-param", 555, "5.5.4" },
};

/* How a verb takes its argument. */
enum smtp_parse_argmode {
	SMTP_PARSE_ARG_NONE = 0,	/* RFC 5321 4.1.1: DATA, RSET, QUIT */
	SMTP_PARSE_ARG_OPTIONAL,
	SMTP_PARSE_ARG_REQUIRED,
};

static const struct smtp_parse_verb_def {
	const char	*name;
	enum smtp_parse_argmode argmode;
	size_t		 line_max;	/* including the CRLF */
	const char	*usage;		/* reply text on a bad argument */
} smtp_parse_verbs[SMTP_PARSE_VERB_COUNT] = {
	[SMTP_PARSE_VERB_EHLO] = { "EHLO", SMTP_PARSE_ARG_REQUIRED,
	    SMTP_PARSE_LINE_MAX, "Syntax: EHLO hostname" },
	[SMTP_PARSE_VERB_HELO] = { "HELO", SMTP_PARSE_ARG_REQUIRED,
	    SMTP_PARSE_LINE_MAX, "Syntax: HELO hostname" },
	[SMTP_PARSE_VERB_MAIL] = { "MAIL", SMTP_PARSE_ARG_REQUIRED,
	    SMTP_PARSE_MAIL_LINE_MAX,
	    "Syntax: MAIL FROM:<address> [parameters]" },
	[SMTP_PARSE_VERB_RCPT] = { "RCPT", SMTP_PARSE_ARG_REQUIRED,
	    SMTP_PARSE_RCPT_LINE_MAX,
	    "Syntax: RCPT TO:<address> [parameters]" },
	[SMTP_PARSE_VERB_DATA] = { "DATA", SMTP_PARSE_ARG_NONE,
	    SMTP_PARSE_LINE_MAX, "Syntax: DATA" },
	[SMTP_PARSE_VERB_BDAT] = { "BDAT", SMTP_PARSE_ARG_REQUIRED,
	    SMTP_PARSE_LINE_MAX, "Syntax: BDAT chunk-size [LAST]" },
	[SMTP_PARSE_VERB_RSET] = { "RSET", SMTP_PARSE_ARG_NONE,
	    SMTP_PARSE_LINE_MAX, "Syntax: RSET" },
	[SMTP_PARSE_VERB_NOOP] = { "NOOP", SMTP_PARSE_ARG_OPTIONAL,
	    SMTP_PARSE_LINE_MAX, "Syntax: NOOP [string]" },
	[SMTP_PARSE_VERB_QUIT] = { "QUIT", SMTP_PARSE_ARG_NONE,
	    SMTP_PARSE_LINE_MAX, "Syntax: QUIT" },
	[SMTP_PARSE_VERB_HELP] = { "HELP", SMTP_PARSE_ARG_OPTIONAL,
	    SMTP_PARSE_LINE_MAX, "Syntax: HELP [topic]" },
	[SMTP_PARSE_VERB_VRFY] = { "VRFY", SMTP_PARSE_ARG_REQUIRED,
	    SMTP_PARSE_LINE_MAX, "Syntax: VRFY string" },
	[SMTP_PARSE_VERB_EXPN] = { "EXPN", SMTP_PARSE_ARG_REQUIRED,
	    SMTP_PARSE_LINE_MAX, "Syntax: EXPN string" },
	[SMTP_PARSE_VERB_STARTTLS] = { "STARTTLS", SMTP_PARSE_ARG_NONE,
	    SMTP_PARSE_LINE_MAX, "Syntax: STARTTLS" },
	[SMTP_PARSE_VERB_AUTH] = { "AUTH", SMTP_PARSE_ARG_REQUIRED,
	    SMTP_PARSE_LINE_MAX, "Syntax: AUTH mechanism [initial-response]" },
	[SMTP_PARSE_VERB_ETRN] = { "ETRN", SMTP_PARSE_ARG_REQUIRED,
	    SMTP_PARSE_LINE_MAX, "Syntax: ETRN [@#]domain" },
	/* RFC 2645 and SPEC.md: ATRN alone means all of the user's domains */
	[SMTP_PARSE_VERB_ATRN] = { "ATRN", SMTP_PARSE_ARG_OPTIONAL,
	    SMTP_PARSE_LINE_MAX, "Syntax: ATRN [domain[,domain]...]" },
};

#define SMTP_PARSE_VERB_LEN_MAX	8	/* STARTTLS */

static const char *const smtp_parse_path_flag_names[] = {
	"null", "source-route", "percent", "bang", "quoted-local",
	"quoted-at", "domain-literal", "ipv6", "trailing-dot", "utf8",
	"postmaster", "no-key", "quoted-pair",
};

static const char *const smtp_parse_helo_flag_names[] = {
	"literal", "ipv6", "bad-literal", "trailing-dot", "not-dname",
	"extra-args", "utf8", "bare-address",
};

/* smtp_parse_status_name - short name of a status, for logs and tests */
const char *
smtp_parse_status_name(enum smtp_parse_status st)
{
	if ((size_t)st >= NELEM(smtp_parse_statuses))
		return "?";
	return smtp_parse_statuses[st].name;
}

/* smtp_parse_status_code - the suggested SMTP reply code */
unsigned
smtp_parse_status_code(enum smtp_parse_status st)
{
	if ((size_t)st >= NELEM(smtp_parse_statuses))
		return 451;
	return smtp_parse_statuses[st].code;
}

/* smtp_parse_status_enhanced - the suggested RFC 3463 status code */
const char *
smtp_parse_status_enhanced(enum smtp_parse_status st)
{
	if ((size_t)st >= NELEM(smtp_parse_statuses))
		return "4.3.0";
	return smtp_parse_statuses[st].enhanced;
}

/* smtp_parse_verb_name - the verb in upper case */
const char *
smtp_parse_verb_name(enum smtp_parse_verb v)
{
	if ((size_t)v >= NELEM(smtp_parse_verbs))
		return "?";
	return smtp_parse_verbs[v].name;
}

/* flag_name - name of one bit from a names table */
static const char *
flag_name(const char *const *names, size_t n, unsigned bit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (bit == (1U << i))
			return names[i];
	return NULL;
}

/* smtp_parse_path_flag_name - name of one SMTP_PARSE_PATH_* bit */
const char *
smtp_parse_path_flag_name(unsigned bit)
{
	return flag_name(smtp_parse_path_flag_names,
	    NELEM(smtp_parse_path_flag_names), bit);
}

/* smtp_parse_helo_flag_name - name of one SMTP_PARSE_HELO_* bit */
const char *
smtp_parse_helo_flag_name(unsigned bit)
{
	return flag_name(smtp_parse_helo_flag_names,
	    NELEM(smtp_parse_helo_flag_names), bit);
}

/* set_error - store a reply text when the caller wants one */
static enum smtp_parse_status
set_error(const char **error_r, enum smtp_parse_status st, const char *text)
{
	if (error_r != NULL)
		*error_r = text;
	return st;
}

/* ascii_upper - toupper() for ASCII only, whatever the locale */
static int
ascii_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* ascii_alpha - ALPHA of RFC 5234 */
static int
ascii_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ascii_digit - DIGIT of RFC 5234 */
static int
ascii_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* word_eq - case-insensitive compare of s[0..len) with an ASCII word */
static int
word_eq(const char *s, size_t len, const char *word)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (word[i] == '\0' ||
		    ascii_upper((unsigned char)s[i]) != (unsigned char)word[i])
			return 0;
	return word[len] == '\0';
}

/* utf8_seq - length of the well-formed RFC 3629 sequence at s, or 0 */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (c == 0xed)
			hi = 0x9f;	/* UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;	/* overlong */
		else if (c == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;		/* continuation, C0/C1 overlong, F5-FF */
	if (len < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* smtp_parse_utf8_valid - true when s[0..len) is well-formed UTF-8 */
int
smtp_parse_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if ((n = utf8_seq(u + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* ipv4_literal - RFC 5321 4.1.3 IPv4-address-literal, Snum 3("." Snum) */
static int
ipv4_literal(const char *s, size_t len)
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0, digits = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
		while (i < len && ascii_digit((unsigned char)s[i])) {
			if (++digits > 3)
				return 0;
			v = v * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		if (digits == 0 || v > 255)
			return 0;
	}
	return i == len;
}

/* ipv6_literal - RFC 5321 4.1.3 IPv6-addr (after "IPv6:") */
static int
ipv6_literal(const char *s, size_t len)
{
	char text[SMTP_PARSE_IPV6_TEXT_MAX + 1];
	struct in6_addr a;
	size_t i;

	if (len == 0 || len > SMTP_PARSE_IPV6_TEXT_MAX)
		return 0;
	/* inet_pton() alone would take what the RFC grammar does not */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(ascii_digit(c) || (c >= 'a' && c <= 'f') ||
		    (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
			return 0;
	}
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(AF_INET6, text, &a) == 1;
}

enum smtp_parse_literal {
	SMTP_PARSE_LITERAL_BAD = 0,
	SMTP_PARSE_LITERAL_IPV4,
	SMTP_PARSE_LITERAL_IPV6,
};

/* address_literal - classify the text between '[' and ']' */
static enum smtp_parse_literal
address_literal(const char *s, size_t len)
{
	if (len > 5 && word_eq(s, 5, "IPV6:"))
		return ipv6_literal(s + 5, len - 5) ?
		    SMTP_PARSE_LITERAL_IPV6 : SMTP_PARSE_LITERAL_BAD;
	return ipv4_literal(s, len) ? SMTP_PARSE_LITERAL_IPV4 :
	    SMTP_PARSE_LITERAL_BAD;
}

/* ---------------------------------------------------------------- */
/* command line */

/* smtp_parse_command - split a command line into verb and argument */
enum smtp_parse_status
smtp_parse_command(const char *line, size_t len, struct smtp_parse_cmd *out,
    const char **error_r)
{
	return smtp_parse_command_ex(line, len, 0, out, error_r);
}

/* smtp_parse_command_ex - the same, with every line limit raised by extra */
enum smtp_parse_status
smtp_parse_command_ex(const char *line, size_t len, size_t extra,
    struct smtp_parse_cmd *out, const char **error_r)
{
	const struct smtp_parse_verb_def *def = NULL;
	size_t i, vlen, a, e;
	int v;

	memset(out, 0, sizeof(*out));
	out->arg = "";
	/* RFC 5321 4.5.3.1.4: 512 octets with the CRLF, or what an
	 * extension allows; the per-verb limit is checked below */
	if (len > SMTP_PARSE_READ_MAX + extra - 2)
		return set_error(error_r, SMTP_PARSE_LINE_TOO_LONG,
		    "Line too long");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\0')
			return set_error(error_r, SMTP_PARSE_BAD_LINE,
			    "NUL character in command line");
		/* RFC 5321 2.3.8: CR and LF only as the CRLF pair */
		if (c == '\r' || c == '\n')
			return set_error(error_r, SMTP_PARSE_BAD_LINE,
			    "Bare CR or LF in command line");
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return set_error(error_r, SMTP_PARSE_BAD_LINE,
			    "Control character in command line");
	}
	for (vlen = 0; vlen < len && line[vlen] != ' ' && line[vlen] != '\t';
	    vlen++)
		if ((unsigned char)line[vlen] >= 0x80)
			return set_error(error_r, SMTP_PARSE_BAD_LINE,
			    "Non-ASCII character in command verb");
	/* RFC 5321 2.4: verbs are case-insensitive */
	if (vlen <= SMTP_PARSE_VERB_LEN_MAX)
		for (v = 0; v < SMTP_PARSE_VERB_COUNT; v++)
			if (word_eq(line, vlen, smtp_parse_verbs[v].name)) {
				def = &smtp_parse_verbs[v];
				out->verb = (enum smtp_parse_verb)v;
				break;
			}
	if (def == NULL) {
		if (len + 2 > SMTP_PARSE_LINE_MAX + extra)
			return set_error(error_r, SMTP_PARSE_LINE_TOO_LONG,
			    "Line too long");
		return set_error(error_r, SMTP_PARSE_UNKNOWN_COMMAND,
		    "Command unrecognized");
	}
	for (i = 0; i < vlen; i++)
		if (line[i] >= 'a' && line[i] <= 'z')
			out->flags |= SMTP_PARSE_CMD_LOWER_VERB;
	if (len + 2 > def->line_max + extra)
		return set_error(error_r, SMTP_PARSE_LINE_TOO_LONG,
		    "Line too long");

	/* RFC 5321 4.1.1: exactly one SP; more, or HTAB, is tolerated */
	for (a = vlen; a < len && (line[a] == ' ' || line[a] == '\t'); a++)
		;
	for (e = len; e > a && (line[e - 1] == ' ' || line[e - 1] == '\t');
	    e--)
		;
	if (a < len && (a != vlen + 1 || line[vlen] != ' '))
		out->flags |= SMTP_PARSE_CMD_LAX_SPACE;
	if (e < len || (a == len && len > vlen))
		out->flags |= SMTP_PARSE_CMD_TRAILING_SPACE;
	if (a < e) {
		out->arg = line + a;
		out->arglen = e - a;
	} else {
		out->arg = "";
		out->arglen = 0;
	}
	if (def->argmode == SMTP_PARSE_ARG_NONE && out->arglen > 0)
		return set_error(error_r, SMTP_PARSE_BAD_ARGS, def->usage);
	if (def->argmode == SMTP_PARSE_ARG_REQUIRED && out->arglen == 0)
		return set_error(error_r, SMTP_PARSE_BAD_ARGS, def->usage);

	if (out->verb == SMTP_PARSE_VERB_MAIL ||
	    out->verb == SMTP_PARSE_VERB_RCPT) {
		/* RFC 5321 4.1.1.2, 4.1.1.3: "FROM:" and "TO:" */
		const char *kw = out->verb == SMTP_PARSE_VERB_MAIL ?
		    "FROM:" : "TO:";
		size_t kwlen = strlen(kw);

		if (out->arglen < kwlen || !word_eq(out->arg, kwlen, kw))
			return set_error(error_r, SMTP_PARSE_BAD_ARGS,
			    def->usage);
		out->arg += kwlen;
		out->arglen -= kwlen;
		/* "MAIL FROM: <a@b>" is common in the wild */
		while (out->arglen > 0 &&
		    (out->arg[0] == ' ' || out->arg[0] == '\t')) {
			out->flags |= SMTP_PARSE_CMD_SPACE_AFTER_COLON;
			out->arg++;
			out->arglen--;
		}
		if (out->arglen == 0)
			return set_error(error_r, SMTP_PARSE_BAD_ARGS,
			    def->usage);
	}
	return SMTP_PARSE_OK;
}

/* ---------------------------------------------------------------- */
/* paths */

/* The state of one path parse; octets past lim are never read. */
struct smtp_parse_pctx {
	const unsigned char *s;
	size_t		 len;		/* all of the input */
	size_t		 lim;		/* min(len, SMTP_PARSE_PATH_MAX) */
	size_t		 p;
	int		 utf8;		/* a non-ASCII octet was seen */
	const char	*error;
};

/* pctx_peek - the next octet, or -1 at the end of the path window */
static int
pctx_peek(const struct smtp_parse_pctx *c)
{
	return c->p < c->lim ? c->s[c->p] : -1;
}

/* pctx_fail - note why; running out of the window means "too long" */
static int
pctx_fail(struct smtp_parse_pctx *c, const char *why)
{
	/* RFC 5321 4.5.3.1.10 "501 Path too long" */
	if (c->p >= c->lim)
		why = c->len > c->lim ? "Path too long" :
		    "Unterminated address";
	c->error = why;
	return -1;
}

/* pctx_utf8 - consume one well-formed non-ASCII character */
static int
pctx_utf8(struct smtp_parse_pctx *c)
{
	size_t n = utf8_seq(c->s + c->p, c->len - c->p);

	if (n == 0)
		return pctx_fail(c, "Malformed UTF-8 in address");
	if (c->p + n > c->lim) {
		c->p = c->lim;
		return pctx_fail(c, "Malformed UTF-8 in address");
	}
	c->p += n;
	c->utf8 = 1;
	return 0;
}

/* is_atext - RFC 5322 3.2.3 atext, ASCII part */
static int
is_atext(int c)
{
	return c >= 0 && (ascii_alpha(c) || ascii_digit(c) ||
	    (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL));
}

/* is_letdig - RFC 5321 Let-dig, or a UTF-8 lead octet (RFC 6531) */
static int
is_letdig(int c)
{
	return c >= 0 && (ascii_alpha(c) || ascii_digit(c) || c >= 0x80);
}

/* pctx_domain - RFC 5321 Domain, U-labels allowed; no trailing dot
 * unless trailing_dot is non-NULL */
static int
pctx_domain(struct smtp_parse_pctx *c, int *trailing_dot)
{
	for (;;) {
		size_t start = c->p, octets = 0;
		int ascii = 1, last = -1, ch;

		ch = pctx_peek(c);
		if (!is_letdig(ch))
			return pctx_fail(c, ch == '.' ?
			    "Empty label in domain" : "Invalid domain");
		while ((ch = pctx_peek(c)) >= 0 &&
		    (is_letdig(ch) || ch == '-')) {
			if (ch >= 0x80) {
				if (pctx_utf8(c) == -1)
					return -1;
				ascii = 0;
			} else
				c->p++;
			last = ch;
			octets = c->p - start;
		}
		if (last == '-')
			return pctx_fail(c, "Label ends with a hyphen");
		/* RFC 1035 2.3.4; U-labels are measured by lib/dname */
		if (ascii && octets > SMTP_PARSE_LABEL_MAX)
			return pctx_fail(c, "Label longer than 63 octets");
		if (pctx_peek(c) != '.')
			return 0;
		c->p++;
		if (!is_letdig(pctx_peek(c)) && trailing_dot != NULL &&
		    pctx_peek(c) == '>') {
			*trailing_dot = 1;
			return 0;
		}
	}
}

/* pctx_quoted - RFC 5321 Quoted-string, RFC 6531 UTF-8 allowed */
static int
pctx_quoted(struct smtp_parse_pctx *c, unsigned *flags)
{
	int ch;

	c->p++;					/* the opening DQUOTE */
	*flags |= SMTP_PARSE_PATH_QUOTED_LOCAL;
	for (;;) {
		ch = pctx_peek(c);
		if (ch == '"') {
			c->p++;
			return 0;
		}
		if (ch == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			*flags |= SMTP_PARSE_PATH_QUOTED_PAIR;
			c->p++;
			ch = pctx_peek(c);
			if (ch < 32 || ch > 126)
				return pctx_fail(c,
				    "Invalid quoted pair in local part");
		} else if (ch >= 0x80) {
			if (pctx_utf8(c) == -1)
				return -1;
			continue;
		} else if (ch < 32 || ch > 126)	/* qtextSMTP, or the end */
			return pctx_fail(c, ch < 0 ?
			    "Unterminated quoted local part" :
			    "Invalid character in quoted local part");
		if (ch == '@')
			*flags |= SMTP_PARSE_PATH_QUOTED_AT;
		else if (ch == '%')
			*flags |= SMTP_PARSE_PATH_PERCENT;
		else if (ch == '!')
			*flags |= SMTP_PARSE_PATH_BANG;
		c->p++;
	}
}

/* pctx_dotstring - RFC 5321 Dot-string, RFC 6531 UTF-8 allowed */
static int
pctx_dotstring(struct smtp_parse_pctx *c, unsigned *flags)
{
	int ch;

	for (;;) {
		size_t start = c->p;

		while ((ch = pctx_peek(c)) >= 0 &&
		    (is_atext(ch) || ch >= 0x80)) {
			if (ch >= 0x80) {
				if (pctx_utf8(c) == -1)
					return -1;
				continue;
			}
			if (ch == '%')
				*flags |= SMTP_PARSE_PATH_PERCENT;
			else if (ch == '!')
				*flags |= SMTP_PARSE_PATH_BANG;
			c->p++;
		}
		if (c->p == start)
			return pctx_fail(c, ch == '@' || ch == '.' ?
			    "Empty atom in local part" :
			    "Invalid character in local part");
		if (ch != '.')
			return 0;
		c->p++;
	}
}

/* pctx_copy - copy s[from..to) into a buffer the limits already fit */
static void
pctx_copy(const struct smtp_parse_pctx *c, size_t from, size_t to,
    char *out, size_t outsz)
{
	size_t n = to - from;

	if (n >= outsz)			/* cannot happen: checked before */
		n = outsz - 1;
	memcpy(out, c->s + from, n);
	out[n] = '\0';
}

/* smtp_parse_path - one RFC 5321 4.1.2 Reverse-path or Forward-path */
enum smtp_parse_status
smtp_parse_path(const char *s, size_t len, unsigned in_flags,
    struct smtp_parse_path *out, const char **error_r)
{
	struct smtp_parse_pctx c;
	enum smtp_parse_status bad = (in_flags & SMTP_PARSE_PATH_IN_MAIL) ?
	    SMTP_PARSE_BAD_SENDER : SMTP_PARSE_BAD_RCPT;
	size_t mstart, lstart, lend, dstart, dend;
	int trailing = 0, ch;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.s = (const unsigned char *)s;
	c.len = len;
	c.lim = len < SMTP_PARSE_PATH_MAX ? len : SMTP_PARSE_PATH_MAX;

	if (pctx_peek(&c) != '<')
		return set_error(error_r, bad, len == 0 ?
		    "Missing address" : "Address must be in angle brackets");
	c.p++;
	/* RFC 5321 4.1.1.2: "<>" is the null reverse-path */
	if (pctx_peek(&c) == '>') {
		if (!(in_flags & SMTP_PARSE_PATH_IN_MAIL))
			return set_error(error_r, bad,
			    "Null recipient address");
		out->flags = SMTP_PARSE_PATH_NULL | SMTP_PARSE_PATH_NO_KEY;
		out->len = 2;
		out->dname_error = "null path";
		return SMTP_PARSE_OK;
	}
	/* RFC 5321 4.1.1.3: <Postmaster> without a domain, RCPT only */
	if (!(in_flags & SMTP_PARSE_PATH_IN_MAIL) && c.lim >= 12 &&
	    word_eq(s + 1, 10, "POSTMASTER") && s[11] == '>') {
		out->flags = SMTP_PARSE_PATH_POSTMASTER |
		    SMTP_PARSE_PATH_NO_KEY;
		out->len = 12;
		pctx_copy(&c, 1, 11, out->local, sizeof(out->local));
		pctx_copy(&c, 1, 11, out->mailbox, sizeof(out->mailbox));
		out->dname_error = "no domain";
		return SMTP_PARSE_OK;
	}
	/* RFC 5321 4.1.2 A-d-l: accepted, flagged, and to be ignored (C) */
	if (pctx_peek(&c) == '@') {
		out->flags |= SMTP_PARSE_PATH_SOURCE_ROUTE;
		for (;;) {
			c.p++;			/* '@' */
			if (pctx_domain(&c, NULL) == -1)
				goto fail;
			if (pctx_peek(&c) == ':')
				break;
			if (pctx_peek(&c) != ',') {
				pctx_fail(&c, "Invalid source route");
				goto fail;
			}
			c.p++;
			if (pctx_peek(&c) != '@') {
				pctx_fail(&c, "Invalid source route");
				goto fail;
			}
		}
		pctx_copy(&c, 1, c.p, out->route, sizeof(out->route));
		c.p++;				/* ':' */
	}

	mstart = lstart = c.p;
	ch = pctx_peek(&c);
	if (ch == '"') {
		if (pctx_quoted(&c, &out->flags) == -1)
			goto fail;
	} else if (ch == '>') {
		pctx_fail(&c, "Empty address");
		goto fail;
	} else if (pctx_dotstring(&c, &out->flags) == -1)
		goto fail;
	lend = c.p;
	/* RFC 5321 4.5.3.1.1 */
	if (lend - lstart > SMTP_PARSE_LOCAL_MAX) {
		pctx_fail(&c, "Local part longer than 64 octets");
		goto fail;
	}
	if (pctx_peek(&c) != '@') {
		pctx_fail(&c, pctx_peek(&c) == '>' ? "Missing domain" :
		    "Invalid character in local part");
		goto fail;
	}
	c.p++;
	dstart = c.p;
	if (pctx_peek(&c) == '[') {
		enum smtp_parse_literal lit;
		size_t ls;

		c.p++;
		ls = c.p;
		/* General-address-literal dcontent is %d33-90 / %d94-126 */
		while ((ch = pctx_peek(&c)) >= 33 && ch <= 126 &&
		    ch != '[' && ch != ']' && ch != '\\')
			c.p++;
		if (ch != ']') {
			pctx_fail(&c, "Invalid address literal");
			goto fail;
		}
		lit = address_literal(s + ls, c.p - ls);
		if (lit == SMTP_PARSE_LITERAL_BAD) {
			pctx_fail(&c, "Invalid address literal");
			goto fail;
		}
		c.p++;
		out->flags |= SMTP_PARSE_PATH_DOMAIN_LITERAL;
		if (lit == SMTP_PARSE_LITERAL_IPV6)
			out->flags |= SMTP_PARSE_PATH_IPV6;
	} else if (pctx_domain(&c, &trailing) == -1)
		goto fail;
	dend = c.p;
	if (pctx_peek(&c) != '>') {
		pctx_fail(&c, "Invalid character in domain");
		goto fail;
	}
	c.p++;
	/* RFC 5321 4.5.3.1.2 (never reached: the path limit is smaller) */
	if (dend - dstart > SMTP_PARSE_DOMAIN_MAX) {
		pctx_fail(&c, "Domain longer than 255 octets");
		goto fail;
	}
	if (trailing)
		out->flags |= SMTP_PARSE_PATH_TRAILING_DOT;
	if (c.utf8)
		out->flags |= SMTP_PARSE_PATH_UTF8;
	out->len = c.p;
	pctx_copy(&c, mstart, dend, out->mailbox, sizeof(out->mailbox));
	pctx_copy(&c, lstart, lend, out->local, sizeof(out->local));
	pctx_copy(&c, dstart, dend, out->domain, sizeof(out->domain));

	/* RFC 6531 3.5: UTF-8 only after SMTPUTF8 */
	if (c.utf8 && !(in_flags & SMTP_PARSE_PATH_IN_SMTPUTF8)) {
		memset(out, 0, sizeof(*out));
		return set_error(error_r, SMTP_PARSE_UTF8_ADDRESS, bad ==
		    SMTP_PARSE_BAD_SENDER ?
		    "Non-ASCII sender address without SMTPUTF8" :
		    "Non-ASCII recipient address without SMTPUTF8");
	}

	if (out->flags & SMTP_PARSE_PATH_DOMAIN_LITERAL)
		out->dname_error = "address literals are not domain names";
	else if (trailing)
		out->dname_error = "domain name ends with a dot";
	else if (dname_normalize(out->domain, out->domain_key,
	    &out->dname_error) == -1)
		out->domain_key[0] = '\0';
	else
		out->dname_error = NULL;
	if (out->domain_key[0] == '\0')
		out->flags |= SMTP_PARSE_PATH_NO_KEY;
	return SMTP_PARSE_OK;

fail:
	memset(out, 0, sizeof(*out));
	return set_error(error_r, bad, c.error);
}

/* smtp_parse_path_format - the path as it would be sent, "<...>" */
int
smtp_parse_path_format(const struct smtp_parse_path *path, char *out,
    size_t outsz)
{
	int n;

	if (path->route[0] != '\0')
		n = snprintf(out, outsz, "<%s:%s>", path->route,
		    path->mailbox);
	else
		n = snprintf(out, outsz, "<%s>", path->mailbox);
	if (n < 0 || (size_t)n >= outsz)
		return -1;
	return n;
}

/* ---------------------------------------------------------------- */
/* xtext, RFC 3461 4 */

/* is_xchar - "!" to "~" except "+" and "=" */
static int
is_xchar(int c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* hexval - value of an upper-case hex digit, or -1 (RFC 3461 4) */
static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* xtext_next - decode one xtext unit at in[*i]; -1 when invalid */
static int
xtext_next(const char *in, size_t len, size_t *i)
{
	int c = (unsigned char)in[*i], h, l;

	if (is_xchar(c)) {
		(*i)++;
		return c;
	}
	if (c != '+' || len - *i < 3)
		return -1;
	h = hexval((unsigned char)in[*i + 1]);
	l = hexval((unsigned char)in[*i + 2]);
	if (h < 0 || l < 0)
		return -1;
	*i += 3;
	return h * 16 + l;
}

/* smtp_xtext_valid - true when in[0..len) is RFC 3461 xtext */
int
smtp_xtext_valid(const char *in, size_t len)
{
	size_t i = 0;

	while (i < len)
		if (xtext_next(in, len, &i) < 0)
			return 0;
	return 1;
}

/* smtp_xtext_decode - decode into out (NUL-terminated); -1 if bad or
 * if it does not fit */
int
smtp_xtext_decode(const char *in, size_t len, char *out, size_t outsz,
    size_t *outlen_r, const char **error_r)
{
	size_t i = 0, n = 0;
	int c;

	if (outsz == 0) {
		if (error_r != NULL)
			*error_r = "xtext does not fit the buffer";
		return -1;
	}
	out[0] = '\0';
	while (i < len) {
		if ((c = xtext_next(in, len, &i)) < 0) {
			if (error_r != NULL)
				*error_r = "Invalid xtext";
			out[0] = '\0';
			return -1;
		}
		if (n + 1 >= outsz) {
			if (error_r != NULL)
				*error_r = "xtext does not fit the buffer";
			out[0] = '\0';
			return -1;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	if (outlen_r != NULL)
		*outlen_r = n;
	return 0;
}

/* smtp_xtext_decode_buf - decode and append to a growable buffer */
int
smtp_xtext_decode_buf(const char *in, size_t len, struct buf *out,
    const char **error_r)
{
	size_t i = 0, start = out->len;
	int c;

	while (i < len) {
		if ((c = xtext_next(in, len, &i)) < 0) {
			if (error_r != NULL)
				*error_r = "Invalid xtext";
			out->len = start;
			if (out->data != NULL)
				out->data[start] = '\0';
			return -1;
		}
		buf_putc(out, c);
	}
	return 0;
}

/* smtp_xtext_encode - encode into out; its length, or -1 if truncated */
int
smtp_xtext_encode(const void *in, size_t len, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *u = in;
	size_t i, n = 0;

	if (outsz == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (is_xchar(u[i])) {
			if (n + 1 >= outsz)
				goto trunc;
			out[n++] = (char)u[i];
		} else {
			if (n + 3 >= outsz)
				goto trunc;
			out[n++] = '+';
			out[n++] = hex[u[i] >> 4];
			out[n++] = hex[u[i] & 0x0f];
		}
	}
	out[n] = '\0';
	if (n > INT_MAX)
		return -1;
	return (int)n;
trunc:
	out[0] = '\0';
	return -1;
}

/* smtp_xtext_encode_buf - encode and append to a growable buffer */
void
smtp_xtext_encode_buf(const void *in, size_t len, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *u = in;
	size_t i;

	for (i = 0; i < len; i++) {
		if (is_xchar(u[i]))
			buf_putc(out, u[i]);
		else {
			buf_putc(out, '+');
			buf_putc(out, hex[u[i] >> 4]);
			buf_putc(out, hex[u[i] & 0x0f]);
		}
	}
}

/* ---------------------------------------------------------------- */
/* esmtp-params, RFC 5321 4.1.2 */

/* One esmtp-param, split; pointers into the caller's text. */
struct smtp_parse_param {
	const char	*key;
	size_t		 keylen;
	const char	*value;		/* NULL when there is no "=" */
	size_t		 valuelen;
};

/* param_next - split the next SP-separated esmtp-param off s[*i..len) */
static enum smtp_parse_status
param_next(const char *s, size_t len, size_t *i, struct smtp_parse_param *p,
    const char **error_r)
{
	size_t k, end;

	while (*i < len && s[*i] == ' ')
		(*i)++;
	if (*i >= len)
		return SMTP_PARSE_OK;		/* p->key stays NULL */
	for (end = *i; end < len && s[end] != ' '; end++)
		;
	p->key = s + *i;
	for (k = *i; k < end && s[k] != '='; k++)
		;
	p->keylen = k - *i;
	/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	if (p->keylen == 0)
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "Invalid parameter keyword");
	for (k = 0; k < p->keylen; k++) {
		unsigned char c = (unsigned char)p->key[k];

		if (!(ascii_alpha(c) || ascii_digit(c) ||
		    (c == '-' && k > 0)))
			return set_error(error_r, SMTP_PARSE_BAD_PARAM,
			    "Invalid parameter keyword");
	}
	if (*i + p->keylen < end) {
		p->value = p->key + p->keylen + 1;
		p->valuelen = end - (*i + p->keylen + 1);
		/* esmtp-value = 1*(%d33-60 / %d62-126) */
		for (k = 0; k < p->valuelen; k++) {
			unsigned char c = (unsigned char)p->value[k];

			if (c < 33 || c > 126 || c == '=')
				return set_error(error_r,
				    SMTP_PARSE_BAD_PARAM,
				    "Invalid character in parameter value");
		}
	}
	*i = end;
	return SMTP_PARSE_OK;
}

/* param_digits - 1*DIGIT into a uint64; -1 if not digits, 1 if it
 * overflowed (v is then UINT64_MAX) */
static int
param_digits(const char *s, size_t len, uint64_t *v)
{
	uint64_t n = 0;
	size_t i;
	int over = 0;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (!ascii_digit((unsigned char)s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			over = 1;
		else
			n = n * 10 + d;
	}
	*v = over ? UINT64_MAX : n;
	return over;
}

/* mail_size - RFC 1870 SIZE=1*20DIGIT */
static enum smtp_parse_status
mail_size(const struct smtp_parse_param *p, struct smtp_parse_mail_params *o,
    const char **error_r)
{
	int rc;

	if (p->valuelen > SMTP_PARSE_SIZE_DIGITS ||
	    (rc = param_digits(p->value, p->valuelen, &o->size)) < 0)
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "Invalid SIZE value");
	o->size_overflow = rc;
	return SMTP_PARSE_OK;
}

/* mail_body - RFC 6152 and RFC 3030 BODY=7BIT|8BITMIME|BINARYMIME */
static enum smtp_parse_status
mail_body(const struct smtp_parse_param *p, struct smtp_parse_mail_params *o,
    const char **error_r)
{
	if (word_eq(p->value, p->valuelen, "7BIT"))
		o->body = QUEUE_BODY_7BIT;
	else if (word_eq(p->value, p->valuelen, "8BITMIME"))
		o->body = QUEUE_BODY_8BITMIME;
	else if (word_eq(p->value, p->valuelen, "BINARYMIME"))
		o->body = QUEUE_BODY_BINARYMIME;
	else
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "Invalid BODY value");
	return SMTP_PARSE_OK;
}

/* mail_smtputf8 - RFC 6531 3.4 SMTPUTF8, no value */
static enum smtp_parse_status
mail_smtputf8(const struct smtp_parse_param *p,
    struct smtp_parse_mail_params *o, const char **error_r)
{
	(void)p;
	(void)error_r;
	o->smtputf8 = 1;
	return SMTP_PARSE_OK;
}

/* mail_ret - RFC 3461 4.3 RET=FULL|HDRS */
static enum smtp_parse_status
mail_ret(const struct smtp_parse_param *p, struct smtp_parse_mail_params *o,
    const char **error_r)
{
	if (word_eq(p->value, p->valuelen, "FULL"))
		o->ret = QUEUE_RET_FULL;
	else if (word_eq(p->value, p->valuelen, "HDRS"))
		o->ret = QUEUE_RET_HDRS;
	else
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "Invalid RET value");
	return SMTP_PARSE_OK;
}

/* mail_envid - RFC 3461 4.4 ENVID=xtext, at most 100 characters, of
 * printable US-ASCII once decoded */
static enum smtp_parse_status
mail_envid(const struct smtp_parse_param *p,
    struct smtp_parse_mail_params *o, const char **error_r)
{
	size_t i = 0;
	int c;

	if (p->valuelen > SMTP_PARSE_ENVID_MAX)
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "ENVID longer than 100 characters");
	while (i < p->valuelen) {
		c = xtext_next(p->value, p->valuelen, &i);
		if (c < 32 || c > 126)
			return set_error(error_r, SMTP_PARSE_BAD_PARAM,
			    "Invalid ENVID value");
	}
	memcpy(o->envid, p->value, p->valuelen);
	o->envid[p->valuelen] = '\0';
	return SMTP_PARSE_OK;
}

/* mail_auth - RFC 4954 5 AUTH=xtext or AUTH=<>; stored, not judged */
static enum smtp_parse_status
mail_auth(const struct smtp_parse_param *p, struct smtp_parse_mail_params *o,
    const char **error_r)
{
	if (p->valuelen > SMTP_PARSE_AUTH_MAX)
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "AUTH value longer than 500 characters");
	if (!smtp_xtext_valid(p->value, p->valuelen))
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "Invalid AUTH value");
	memcpy(o->auth, p->value, p->valuelen);
	o->auth[p->valuelen] = '\0';
	return SMTP_PARSE_OK;
}

enum smtp_parse_pvalue {
	SMTP_PARSE_PVALUE_NONE = 0,	/* a keyword alone */
	SMTP_PARSE_PVALUE_REQUIRED,
};

static const struct smtp_parse_mail_def {
	const char	*name;
	unsigned	 bit;
	enum smtp_parse_pvalue value;
	const char	*duplicate;
	const char	*novalue;	/* missing, or surplus for PVALUE_NONE */
	enum smtp_parse_status (*parse)(const struct smtp_parse_param *,
	    struct smtp_parse_mail_params *, const char **);
} smtp_parse_mail_defs[] = {
	{ "SIZE", SMTP_PARSE_MAIL_SIZE, SMTP_PARSE_PVALUE_REQUIRED,
	    "Duplicate SIZE parameter", "SIZE needs a value", mail_size },
	{ "BODY", SMTP_PARSE_MAIL_BODY, SMTP_PARSE_PVALUE_REQUIRED,
	    "Duplicate BODY parameter", "BODY needs a value", mail_body },
	{ "SMTPUTF8", SMTP_PARSE_MAIL_SMTPUTF8, SMTP_PARSE_PVALUE_NONE,
	    "Duplicate SMTPUTF8 parameter", "SMTPUTF8 takes no value",
	    mail_smtputf8 },
	{ "RET", SMTP_PARSE_MAIL_RET, SMTP_PARSE_PVALUE_REQUIRED,
	    "Duplicate RET parameter", "RET needs a value", mail_ret },
	{ "ENVID", SMTP_PARSE_MAIL_ENVID, SMTP_PARSE_PVALUE_REQUIRED,
	    "Duplicate ENVID parameter", "ENVID needs a value", mail_envid },
	{ "AUTH", SMTP_PARSE_MAIL_AUTH, SMTP_PARSE_PVALUE_REQUIRED,
	    "Duplicate AUTH parameter", "AUTH needs a value", mail_auth },
};

/* value_shape_ok - false on a missing or surplus value, per the table */
static int
value_shape_ok(enum smtp_parse_pvalue want, const struct smtp_parse_param *p)
{
	if (want == SMTP_PARSE_PVALUE_NONE)
		return p->value == NULL;
	return p->value != NULL && p->valuelen > 0;
}

/* smtp_parse_mail_params - RFC 5321 Mail-parameters */
enum smtp_parse_status
smtp_parse_mail_params(const char *s, size_t len,
    struct smtp_parse_mail_params *out, const char **error_r)
{
	enum smtp_parse_status st;
	size_t i = 0, d;

	memset(out, 0, sizeof(*out));
	out->body = QUEUE_BODY_7BIT;
	out->ret = QUEUE_RET_DEFAULT;
	for (;;) {
		struct smtp_parse_param p = { NULL, 0, NULL, 0 };
		const struct smtp_parse_mail_def *def = NULL;

		if ((st = param_next(s, len, &i, &p, error_r)) !=
		    SMTP_PARSE_OK)
			goto fail;
		if (p.key == NULL)
			return SMTP_PARSE_OK;
		for (d = 0; d < NELEM(smtp_parse_mail_defs); d++)
			if (word_eq(p.key, p.keylen,
			    smtp_parse_mail_defs[d].name))
				def = &smtp_parse_mail_defs[d];
		if (def == NULL) {
			st = set_error(error_r, SMTP_PARSE_UNKNOWN_PARAM,
			    "Unsupported MAIL parameter");
			goto fail;
		}
		if (out->seen & def->bit) {
			st = set_error(error_r, SMTP_PARSE_BAD_PARAM,
			    def->duplicate);
			goto fail;
		}
		if (!value_shape_ok(def->value, &p)) {
			st = set_error(error_r, SMTP_PARSE_BAD_PARAM,
			    def->novalue);
			goto fail;
		}
		if ((st = def->parse(&p, out, error_r)) != SMTP_PARSE_OK)
			goto fail;
		out->seen |= def->bit;
	}
fail:
	memset(out, 0, sizeof(*out));
	return st;
}

/* rcpt_notify - RFC 3461 4.1 NOTIFY=NEVER or a list of SUCCESS,
 * FAILURE and DELAY */
static enum smtp_parse_status
rcpt_notify(const struct smtp_parse_param *p,
    struct smtp_parse_rcpt_params *o, const char **error_r)
{
	static const struct { const char *name; unsigned bit; } t[] = {
		{ "NEVER", QUEUE_NOTIFY_NEVER },
		{ "SUCCESS", QUEUE_NOTIFY_SUCCESS },
		{ "FAILURE", QUEUE_NOTIFY_FAILURE },
		{ "DELAY", QUEUE_NOTIFY_DELAY },
	};
	size_t i = 0, j, k;
	unsigned bits = 0, bit;

	for (;;) {
		for (j = i; j < p->valuelen && p->value[j] != ','; j++)
			;
		bit = 0;
		for (k = 0; k < NELEM(t); k++)
			if (word_eq(p->value + i, j - i, t[k].name))
				bit = t[k].bit;
		if (bit == 0 || (bits & bit))
			return set_error(error_r, SMTP_PARSE_BAD_PARAM,
			    "Invalid NOTIFY value");
		bits |= bit;
		if (j == p->valuelen)
			break;
		i = j + 1;
	}
	if ((bits & QUEUE_NOTIFY_NEVER) && bits != QUEUE_NOTIFY_NEVER)
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "NOTIFY=NEVER cannot be combined");
	o->notify = bits;
	return SMTP_PARSE_OK;
}

/* rcpt_orcpt - RFC 3461 4.2 ORCPT=addr-type;xtext, 500 at most */
static enum smtp_parse_status
rcpt_orcpt(const struct smtp_parse_param *p,
    struct smtp_parse_rcpt_params *o, const char **error_r)
{
	size_t t;

	if (p->valuelen > SMTP_PARSE_ORCPT_MAX)
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "ORCPT longer than 500 characters");
	/* addr-type = atom */
	for (t = 0; t < p->valuelen && p->value[t] != ';'; t++)
		if (!is_atext((unsigned char)p->value[t]))
			return set_error(error_r, SMTP_PARSE_BAD_PARAM,
			    "Invalid ORCPT address type");
	if (t == 0 || t == p->valuelen)
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "ORCPT needs type;address");
	if (t + 1 == p->valuelen ||
	    !smtp_xtext_valid(p->value + t + 1, p->valuelen - t - 1))
		return set_error(error_r, SMTP_PARSE_BAD_PARAM,
		    "Invalid ORCPT address");
	memcpy(o->orcpt, p->value, p->valuelen);
	o->orcpt[p->valuelen] = '\0';
	o->orcpt_type_len = t;
	return SMTP_PARSE_OK;
}

static const struct smtp_parse_rcpt_def {
	const char	*name;
	unsigned	 bit;
	const char	*duplicate;
	const char	*novalue;
	enum smtp_parse_status (*parse)(const struct smtp_parse_param *,
	    struct smtp_parse_rcpt_params *, const char **);
} smtp_parse_rcpt_defs[] = {
	{ "NOTIFY", SMTP_PARSE_RCPT_NOTIFY, "Duplicate NOTIFY parameter",
	    "NOTIFY needs a value", rcpt_notify },
	{ "ORCPT", SMTP_PARSE_RCPT_ORCPT, "Duplicate ORCPT parameter",
	    "ORCPT needs a value", rcpt_orcpt },
};

/* smtp_parse_rcpt_params - RFC 5321 Rcpt-parameters */
enum smtp_parse_status
smtp_parse_rcpt_params(const char *s, size_t len,
    struct smtp_parse_rcpt_params *out, const char **error_r)
{
	enum smtp_parse_status st;
	size_t i = 0, d;

	memset(out, 0, sizeof(*out));
	for (;;) {
		struct smtp_parse_param p = { NULL, 0, NULL, 0 };
		const struct smtp_parse_rcpt_def *def = NULL;

		if ((st = param_next(s, len, &i, &p, error_r)) !=
		    SMTP_PARSE_OK)
			goto fail;
		if (p.key == NULL)
			return SMTP_PARSE_OK;
		for (d = 0; d < NELEM(smtp_parse_rcpt_defs); d++)
			if (word_eq(p.key, p.keylen,
			    smtp_parse_rcpt_defs[d].name))
				def = &smtp_parse_rcpt_defs[d];
		if (def == NULL) {
			st = set_error(error_r, SMTP_PARSE_UNKNOWN_PARAM,
			    "Unsupported RCPT parameter");
			goto fail;
		}
		if (out->seen & def->bit) {
			st = set_error(error_r, SMTP_PARSE_BAD_PARAM,
			    def->duplicate);
			goto fail;
		}
		if (!value_shape_ok(SMTP_PARSE_PVALUE_REQUIRED, &p)) {
			st = set_error(error_r, SMTP_PARSE_BAD_PARAM,
			    def->novalue);
			goto fail;
		}
		if ((st = def->parse(&p, out, error_r)) != SMTP_PARSE_OK)
			goto fail;
		out->seen |= def->bit;
	}
fail:
	memset(out, 0, sizeof(*out));
	return st;
}

/* after_path - the parameters must be SP-separated from the path */
static enum smtp_parse_status
after_path(const char *s, size_t len, size_t at, const char **error_r)
{
	if (at < len && s[at] != ' ')
		return set_error(error_r, SMTP_PARSE_BAD_ARGS,
		    "Missing space after address");
	return SMTP_PARSE_OK;
}

/* smtp_parse_mail_args - "<reverse-path> [params]" after "MAIL FROM:" */
enum smtp_parse_status
smtp_parse_mail_args(const char *s, size_t len, struct smtp_parse_path *path,
    struct smtp_parse_mail_params *params, const char **error_r)
{
	enum smtp_parse_status st;

	memset(params, 0, sizeof(*params));
	/* SMTPUTF8 comes after the path: read both, then judge the path */
	st = smtp_parse_path(s, len, SMTP_PARSE_PATH_IN_MAIL |
	    SMTP_PARSE_PATH_IN_SMTPUTF8, path, error_r);
	if (st != SMTP_PARSE_OK)
		return st;
	if ((st = after_path(s, len, path->len, error_r)) != SMTP_PARSE_OK ||
	    (st = smtp_parse_mail_params(s + path->len, len - path->len,
	    params, error_r)) != SMTP_PARSE_OK) {
		memset(path, 0, sizeof(*path));
		return st;
	}
	/* RFC 6531 3.5 */
	if ((path->flags & SMTP_PARSE_PATH_UTF8) && !params->smtputf8) {
		memset(path, 0, sizeof(*path));
		memset(params, 0, sizeof(*params));
		return set_error(error_r, SMTP_PARSE_UTF8_ADDRESS,
		    "Non-ASCII sender address without SMTPUTF8");
	}
	return SMTP_PARSE_OK;
}

/* smtp_parse_rcpt_args - "<forward-path> [params]" after "RCPT TO:" */
enum smtp_parse_status
smtp_parse_rcpt_args(const char *s, size_t len, int smtputf8,
    struct smtp_parse_path *path, struct smtp_parse_rcpt_params *params,
    const char **error_r)
{
	enum smtp_parse_status st;

	memset(params, 0, sizeof(*params));
	st = smtp_parse_path(s, len, smtputf8 ? SMTP_PARSE_PATH_IN_SMTPUTF8 :
	    0, path, error_r);
	if (st != SMTP_PARSE_OK)
		return st;
	if ((st = after_path(s, len, path->len, error_r)) != SMTP_PARSE_OK ||
	    (st = smtp_parse_rcpt_params(s + path->len, len - path->len,
	    params, error_r)) != SMTP_PARSE_OK) {
		memset(path, 0, sizeof(*path));
		return st;
	}
	return SMTP_PARSE_OK;
}

/* ---------------------------------------------------------------- */
/* BDAT and EHLO/HELO */

/* smtp_parse_bdat - RFC 3030 2: chunk-size [SP "LAST"] */
enum smtp_parse_status
smtp_parse_bdat(const char *s, size_t len, struct smtp_parse_bdat *out,
    const char **error_r)
{
	size_t i = 0, d;
	uint64_t v = 0;

	memset(out, 0, sizeof(*out));
	while (i < len && ascii_digit((unsigned char)s[i]))
		i++;
	if (i == 0 || (i < len && s[i] != ' '))
		return set_error(error_r, SMTP_PARSE_BAD_ARGS,
		    "Syntax: BDAT chunk-size [LAST]");
	if (param_digits(s, i, &v) != 0)
		return set_error(error_r, SMTP_PARSE_BAD_ARGS,
		    "BDAT chunk size too large");
	while (i < len && s[i] == ' ')
		i++;
	d = i;
	while (i < len && s[i] != ' ')
		i++;
	if (i > d && !word_eq(s + d, i - d, "LAST"))
		return set_error(error_r, SMTP_PARSE_BAD_ARGS,
		    "Syntax: BDAT chunk-size [LAST]");
	out->last = i > d;
	while (i < len && s[i] == ' ')
		i++;
	if (i < len)
		return set_error(error_r, SMTP_PARSE_BAD_ARGS,
		    "Syntax: BDAT chunk-size [LAST]");
	out->size = v;
	return SMTP_PARSE_OK;
}

/* smtp_parse_helo - RFC 5321 4.1.1.1 Domain / address-literal; odd
 * names are flagged, since refusing them loses real mail */
enum smtp_parse_status
smtp_parse_helo(const char *s, size_t len, struct smtp_parse_helo *out,
    const char **error_r)
{
	char name[SMTP_PARSE_DOMAIN_MAX + 1];
	const char *error;
	size_t i = 0, start, n;

	memset(out, 0, sizeof(*out));
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	start = i;
	while (i < len && s[i] != ' ' && s[i] != '\t')
		i++;
	n = i - start;
	if (n == 0)
		return set_error(error_r, SMTP_PARSE_BAD_ARGS,
		    "Syntax: EHLO hostname");
	if (n > SMTP_PARSE_DOMAIN_MAX)
		return set_error(error_r, SMTP_PARSE_BAD_ARGS,
		    "Hostname longer than 255 octets");
	for (; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			out->flags |= SMTP_PARSE_HELO_EXTRA_ARGS;
	s += start;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return set_error(error_r, SMTP_PARSE_BAD_ARGS,
			    "Invalid character in hostname");
		if (c >= 0x80)
			out->flags |= SMTP_PARSE_HELO_UTF8;
	}
	if ((out->flags & SMTP_PARSE_HELO_UTF8) &&
	    !smtp_parse_utf8_valid(s, n)) {
		out->flags = 0;
		return set_error(error_r, SMTP_PARSE_BAD_ARGS,
		    "Malformed UTF-8 in hostname");
	}
	memcpy(out->name, s, n);
	out->name[n] = '\0';

	if (s[0] == '[') {
		enum smtp_parse_literal lit = SMTP_PARSE_LITERAL_BAD;

		if (n >= 2 && s[n - 1] == ']')
			lit = address_literal(s + 1, n - 2);
		if (lit == SMTP_PARSE_LITERAL_BAD)
			out->flags |= SMTP_PARSE_HELO_BAD_LITERAL;
		else
			out->flags |= SMTP_PARSE_HELO_LITERAL;
		if (lit == SMTP_PARSE_LITERAL_IPV6)
			out->flags |= SMTP_PARSE_HELO_IPV6;
		return SMTP_PARSE_OK;
	}
	if (ipv4_literal(s, n))
		out->flags |= SMTP_PARSE_HELO_BARE_ADDRESS;
	memcpy(name, s, n);
	name[n] = '\0';
	if (n > 1 && name[n - 1] == '.') {
		out->flags |= SMTP_PARSE_HELO_TRAILING_DOT;
		name[n - 1] = '\0';
	}
	if (dname_normalize(name, out->key, &error) == -1) {
		out->key[0] = '\0';
		out->flags |= SMTP_PARSE_HELO_NOT_DNAME;
	}
	return SMTP_PARSE_OK;
}
