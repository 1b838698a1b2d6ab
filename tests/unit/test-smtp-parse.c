/*
 * NAME
 *	test-smtp-parse - unit tests for odmr/smtp_parse
 * SYNOPSIS
 *	CMOCKA_MESSAGE_OUTPUT=TAP tests/unit/test-smtp-parse
 * DESCRIPTION
 *	Table-driven: each row of the command, path, MAIL, RCPT, BDAT,
 *	EHLO and xtext tables is its own TAP case, and states its input,
 *	the expected status, the expected reply code and enhanced status
 *	code, and the expected flags and fields. The path table doubles as
 *	the relay-trick battery: every trick must come out as a flag or a
 *	refusal, never as a clean address.
 *
 *	Inputs are octet strings with an explicit length, so NULs can be
 *	tested. REP(n, "c") inside an input stands for n copies of c, for
 *	the length limits. Each accepted path is also re-serialised with
 *	smtp_parse_path_format(), which must give back the input exactly.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "compat.h"
#include "queue.h"
#include "smtp_parse.h"
#include "xmalloc.h"

/* An input literal with its length, NULs included. */
#define IN(s)		.in = (s), .len = sizeof(s) - 1
/* n copies of the one character c, expanded by expand() */
#define REP(n, c)	"\x01" #n c

#define OK		SMTP_PARSE_OK

/* reply shorthands: status and the reply it must map to */
#define R_OK		.st = SMTP_PARSE_OK, .reply = NULL
#define R_LONG		.st = SMTP_PARSE_LINE_TOO_LONG, .reply = "500 5.5.2"
#define R_LINE		.st = SMTP_PARSE_BAD_LINE, .reply = "500 5.5.2"
#define R_UNKNOWN	.st = SMTP_PARSE_UNKNOWN_COMMAND, .reply = "500 5.5.2"
#define R_ARGS		.st = SMTP_PARSE_BAD_ARGS, .reply = "501 5.5.4"
#define R_SENDER	.st = SMTP_PARSE_BAD_SENDER, .reply = "501 5.1.7"
#define R_RCPT		.st = SMTP_PARSE_BAD_RCPT, .reply = "501 5.1.3"
#define R_UTF8		.st = SMTP_PARSE_UTF8_ADDRESS, .reply = "553 5.6.7"
#define R_PARAM		.st = SMTP_PARSE_BAD_PARAM, .reply = "501 5.5.4"
#define R_UNKPARAM	.st = SMTP_PARSE_UNKNOWN_PARAM, .reply = "555 5.5.4"

/* path flag shorthands */
#define P_NULL		SMTP_PARSE_PATH_NULL
#define P_ROUTE		SMTP_PARSE_PATH_SOURCE_ROUTE
#define P_PCT		SMTP_PARSE_PATH_PERCENT
#define P_BANG		SMTP_PARSE_PATH_BANG
#define P_QUOTED	SMTP_PARSE_PATH_QUOTED_LOCAL
#define P_QAT		SMTP_PARSE_PATH_QUOTED_AT
#define P_LIT		SMTP_PARSE_PATH_DOMAIN_LITERAL
#define P_IPV6		SMTP_PARSE_PATH_IPV6
#define P_TDOT		SMTP_PARSE_PATH_TRAILING_DOT
#define P_UTF8		SMTP_PARSE_PATH_UTF8
#define P_PM		SMTP_PARSE_PATH_POSTMASTER
#define P_NOKEY		SMTP_PARSE_PATH_NO_KEY
#define P_QPAIR		SMTP_PARSE_PATH_QUOTED_PAIR

/* path input shorthands */
#define I_MAIL		SMTP_PARSE_PATH_IN_MAIL
#define I_UTF8		SMTP_PARSE_PATH_IN_SMTPUTF8

/* expand - a NUL-terminated copy of in[0..len) with REP() expanded */
static char *
expand(const char *in, size_t len, size_t *outlen)
{
	struct buf b;
	size_t i = 0;

	buf_init(&b);
	while (i < len) {
		if (in[i] == '\x01') {
			size_t n = 0;

			for (i++; i < len && in[i] >= '0' && in[i] <= '9'; i++)
				n = n * 10 + (size_t)(in[i] - '0');
			while (n-- > 0)
				buf_putc(&b, in[i]);
			i++;
		} else
			buf_putc(&b, in[i++]);
	}
	buf_putc(&b, '\0');		/* so an empty input is not NULL */
	*outlen = b.len - 1;
	return (char *)b.data;
}

/* check_reply - status, mapped reply and text of one parse */
static void
check_reply(const char *what, enum smtp_parse_status got,
    const char *error, enum smtp_parse_status want, const char *reply,
    const char *want_error)
{
	char r[32];

	if (got != want)
		fail_msg("%s: status %s (%s), want %s", what,
		    smtp_parse_status_name(got), got == OK ? "ok" : error,
		    smtp_parse_status_name(want));
	if (want == OK)
		return;
	snprintf(r, sizeof(r), "%u %s", smtp_parse_status_code(got),
	    smtp_parse_status_enhanced(got));
	assert_string_equal(r, reply);
	assert_non_null(error);
	assert_null(strchr(error, '\n'));
	assert_null(strchr(error, '\r'));
	if (want_error != NULL)
		assert_string_equal(error, want_error);
}

/* flags_text - flag names of a mask, for failure messages */
static const char *
flags_text(unsigned flags, const char *(*name)(unsigned), char *out,
    size_t outsz)
{
	unsigned bit;

	out[0] = '\0';
	for (bit = 1; bit != 0; bit <<= 1)
		if (flags & bit) {
			const char *n = name(bit);

			if (out[0] != '\0')
				strlcat(out, ",", outsz);
			strlcat(out, n != NULL ? n : "?", outsz);
		}
	return out;
}

/* check_flags - exact flag mask, with names when it differs */
static void
check_flags(const char *what, unsigned got, unsigned want,
    const char *(*name)(unsigned))
{
	char g[256], w[256];

	if (got != want)
		fail_msg("%s: flags {%s}, want {%s}", what,
		    flags_text(got, name, g, sizeof(g)),
		    flags_text(want, name, w, sizeof(w)));
}

/* cmd_flag_name - names for SMTP_PARSE_CMD_* (test only) */
static const char *
cmd_flag_name(unsigned bit)
{
	switch (bit) {
	case SMTP_PARSE_CMD_SPACE_AFTER_COLON:
		return "space-after-colon";
	case SMTP_PARSE_CMD_LAX_SPACE:
		return "lax-space";
	case SMTP_PARSE_CMD_TRAILING_SPACE:
		return "trailing-space";
	case SMTP_PARSE_CMD_LOWER_VERB:
		return "lower-verb";
	default:
		return NULL;
	}
}

/* command lines */

#define C_SAC	SMTP_PARSE_CMD_SPACE_AFTER_COLON
#define C_LAX	SMTP_PARSE_CMD_LAX_SPACE
#define C_TRAIL	SMTP_PARSE_CMD_TRAILING_SPACE
#define C_LOWER	SMTP_PARSE_CMD_LOWER_VERB
#define V(x)	.verb = SMTP_PARSE_VERB_ ## x

struct cmd_case {
	const char	*in;
	size_t		 len;
	enum smtp_parse_status st;
	const char	*reply;
	const char	*error;
	enum smtp_parse_verb verb;
	const char	*arg;		/* when OK */
	unsigned	 flags;
};

static const struct cmd_case cmd_cases[] = {
	{ IN("EHLO client.example.org"), R_OK, V(EHLO),
	    .arg = "client.example.org" },
	{ IN("ehlo client.example.org"), R_OK, V(EHLO),
	    .arg = "client.example.org", .flags = C_LOWER },
	{ IN("HeLo x"), R_OK, V(HELO), .arg = "x", .flags = C_LOWER },
	{ IN("MAIL FROM:<a@example.org>"), R_OK, V(MAIL),
	    .arg = "<a@example.org>" },
	{ IN("mail from:<a@example.org> SIZE=10"), R_OK, V(MAIL),
	    .arg = "<a@example.org> SIZE=10", .flags = C_LOWER },
	{ IN("MAIL FROM: <a@example.org>"), R_OK, V(MAIL),
	    .arg = "<a@example.org>", .flags = C_SAC },
	{ IN("MAIL FROM:<>"), R_OK, V(MAIL), .arg = "<>" },
	{ IN("MAIL From:<>"), R_OK, V(MAIL), .arg = "<>" },
	{ IN("RCPT TO:<b@example.org>"), R_OK, V(RCPT),
	    .arg = "<b@example.org>" },
	{ IN("RCPT To:<b@example.org> NOTIFY=NEVER"), R_OK, V(RCPT),
	    .arg = "<b@example.org> NOTIFY=NEVER" },
	{ IN("RCPT TO:   <a@b>  "), R_OK, V(RCPT), .arg = "<a@b>",
	    .flags = C_SAC | C_TRAIL },
	{ IN("MAIL TO:<a@b>"), R_ARGS,
	    .error = "Syntax: MAIL FROM:<address> [parameters]" },
	{ IN("MAIL <a@b>"), R_ARGS },
	{ IN("MAIL FROM:"), R_ARGS },
	{ IN("MAIL FROM:   "), R_ARGS },
	{ IN("MAIL"), R_ARGS },
	{ IN("RCPT TO :<a@b>"), R_ARGS,
	    .error = "Syntax: RCPT TO:<address> [parameters]" },
	{ IN("RCPT FROM:<a@b>"), R_ARGS },
	{ IN("MAILFROM:<a@b>"), R_UNKNOWN, .error = "Command unrecognized" },
	{ IN("MAIL  FROM:<a@b>"), R_OK, V(MAIL), .arg = "<a@b>",
	    .flags = C_LAX },
	{ IN("MAIL\tFROM:<a@b>"), R_OK, V(MAIL), .arg = "<a@b>",
	    .flags = C_LAX },
	{ IN("DATA"), R_OK, V(DATA), .arg = "" },
	{ IN("data "), R_OK, V(DATA), .arg = "",
	    .flags = C_LOWER | C_TRAIL },
	{ IN("DATA x"), R_ARGS, .error = "Syntax: DATA" },
	{ IN("RSET"), R_OK, V(RSET), .arg = "" },
	{ IN("RSET now"), R_ARGS },
	{ IN("QUIT"), R_OK, V(QUIT), .arg = "" },
	{ IN("QUIT bye"), R_ARGS },
	{ IN("NOOP"), R_OK, V(NOOP), .arg = "" },
	{ IN("NOOP hello world"), R_OK, V(NOOP), .arg = "hello world" },
	{ IN("NOOP caf\xc3\xa9"), R_OK, V(NOOP), .arg = "caf\xc3\xa9" },
	{ IN("HELP"), R_OK, V(HELP), .arg = "" },
	{ IN("help mail"), R_OK, V(HELP), .arg = "mail", .flags = C_LOWER },
	{ IN("VRFY"), R_ARGS },
	{ IN("VRFY postmaster"), R_OK, V(VRFY), .arg = "postmaster" },
	{ IN("EXPN staff"), R_OK, V(EXPN), .arg = "staff" },
	{ IN("STARTTLS"), R_OK, V(STARTTLS), .arg = "" },
	{ IN("StartTLS\t"), R_OK, V(STARTTLS), .arg = "",
	    .flags = C_LOWER | C_TRAIL },
	{ IN("STARTTLS now"), R_ARGS, .error = "Syntax: STARTTLS" },
	{ IN("AUTH PLAIN AGZvbwBiYXI="), R_OK, V(AUTH),
	    .arg = "PLAIN AGZvbwBiYXI=" },
	{ IN("AUTH"), R_ARGS },
	{ IN("ETRN @example.org"), R_OK, V(ETRN), .arg = "@example.org" },
	{ IN("ETRN"), R_ARGS },
	{ IN("ATRN"), R_OK, V(ATRN), .arg = "" },
	{ IN("ATRN example.org, example.net"), R_OK, V(ATRN),
	    .arg = "example.org, example.net" },
	{ IN("BDAT 100 LAST"), R_OK, V(BDAT), .arg = "100 LAST" },
	{ IN("BDAT"), R_ARGS },
	{ IN("XYZZY"), R_UNKNOWN, .error = "Command unrecognized" },
	{ IN("STARTTLSX"), R_UNKNOWN },
	{ IN("TURN"), R_UNKNOWN },
	{ IN(""), R_UNKNOWN },
	{ IN(" MAIL FROM:<>"), R_UNKNOWN },
	{ IN("NOOP\0x"), R_LINE, .error = "NUL character in command line" },
	{ IN("\0"), R_LINE },
	{ IN("NOOP a\rb"), R_LINE, .error = "Bare CR or LF in command line" },
	{ IN("NOOP a\nb"), R_LINE, .error = "Bare CR or LF in command line" },
	{ IN("QUIT\r"), R_LINE },
	{ IN("NOOP \x02"), R_LINE,
	    .error = "Control character in command line" },
	{ IN("NOOP \x7f"), R_LINE },
	{ IN("\x1b[AQUIT"), R_LINE },
	{ IN("M\xc3\xa4IL FROM:<>"), R_LINE,
	    .error = "Non-ASCII character in command verb" },
	{ IN("QUIT\xff"), R_LINE },
	/* RFC 5321 4.5.3.1.4: 512 with the CRLF */
	{ IN("NOOP " REP(505, "x")), R_OK, V(NOOP) },
	{ IN("NOOP " REP(506, "x")), R_LONG, .error = "Line too long" },
	{ IN(REP(600, "x")), R_LONG },
	{ IN("RSET " REP(600, " ")), R_LONG },
	/* extensions raise it for MAIL and RCPT */
	{ IN("MAIL FROM:<a@b> AUTH=" REP(1141, "x")), R_OK, V(MAIL) },
	{ IN("MAIL FROM:<a@b> AUTH=" REP(1142, "x")), R_LONG },
	{ IN("RCPT TO:<a@b> ORCPT=rfc822;" REP(983, "x")), R_OK, V(RCPT) },
	{ IN("RCPT TO:<a@b> ORCPT=rfc822;" REP(984, "x")), R_LONG },
	{ IN("NOOP " REP(5000, "x")), R_LONG },
};

/* test_cmd - one row of cmd_cases */
static void
test_cmd(void **state)
{
	const struct cmd_case *t = *state;
	struct smtp_parse_cmd cmd;
	const char *error = NULL;
	enum smtp_parse_status st;
	size_t len;
	char *in = expand(t->in, t->len, &len);

	st = smtp_parse_command(in, len, &cmd, &error);
	check_reply("command", st, error, t->st, t->reply, t->error);
	if (st == OK) {
		assert_int_equal(cmd.verb, t->verb);
		if (t->arg != NULL) {
			assert_int_equal(cmd.arglen, strlen(t->arg));
			assert_memory_equal(cmd.arg, t->arg, cmd.arglen);
		}
		check_flags("command", cmd.flags, t->flags, cmd_flag_name);
	}
	free(in);
}

/* paths: the relay-trick battery */

struct path_case {
	const char	*in;
	size_t		 len;
	unsigned	 in_flags;	/* I_MAIL, I_UTF8 */
	enum smtp_parse_status st;
	const char	*reply;
	const char	*error;
	unsigned	 flags;
	const char	*local;		/* when not NULL */
	const char	*domain;
	const char	*key;
	const char	*route;
};

static const struct path_case path_cases[] = {
	/* plain */
	{ IN("<user@example.org>"), 0, R_OK, .local = "user",
	    .domain = "example.org", .key = "example.org", .route = "" },
	{ IN("<user@example.org>"), I_MAIL, R_OK, .key = "example.org" },
	{ IN("<first.last@sub.example.org>"), 0, R_OK,
	    .local = "first.last", .key = "sub.example.org" },
	{ IN("<a+tag@example.org>"), 0, R_OK, .local = "a+tag" },
	{ IN("<!#$&'*+-/=?^_`{|}~@example.org>"), 0, R_OK, .flags = P_BANG,
	    .local = "!#$&'*+-/=?^_`{|}~" },
	{ IN("<a@b.c>"), 0, R_OK, .key = "b.c" },
	{ IN("<a@123.example>"), 0, R_OK, .key = "123.example" },
	{ IN("<a@xn--bcher-kva.example>"), 0, R_OK,
	    .key = "xn--bcher-kva.example" },
	/* uppercase: the domain is normalised, the local part kept */
	{ IN("<User@EXAMPLE.ORG>"), 0, R_OK, .local = "User",
	    .domain = "EXAMPLE.ORG", .key = "example.org" },
	/* null path and postmaster */
	{ IN("<>"), I_MAIL, R_OK, .flags = P_NULL | P_NOKEY, .local = "",
	    .domain = "", .key = "" },
	{ IN("<>"), 0, R_RCPT, .error = "Null recipient address" },
	{ IN("<Postmaster>"), 0, R_OK, .flags = P_PM | P_NOKEY,
	    .local = "Postmaster", .domain = "", .key = "" },
	{ IN("<POSTMASTER>"), 0, R_OK, .flags = P_PM | P_NOKEY },
	{ IN("<Postmaster>"), I_MAIL, R_SENDER, .error = "Missing domain" },
	{ IN("<postmaster@example.org>"), 0, R_OK, .key = "example.org" },
	{ IN("<postmasters>"), 0, R_RCPT, .error = "Missing domain" },
	/* RFC 1123 5.2.16 percent hack and UUCP bang paths */
	{ IN("<user%evil.example@example.org>"), 0, R_OK, .flags = P_PCT,
	    .local = "user%evil.example", .key = "example.org" },
	{ IN("<evil.example!user@example.org>"), 0, R_OK, .flags = P_BANG },
	{ IN("<a!b%c@example.org>"), 0, R_OK, .flags = P_BANG | P_PCT },
	{ IN("<user%example.org>"), 0, R_RCPT, .error = "Missing domain" },
	{ IN("<evil.example!user>"), 0, R_RCPT },
	/* source routes */
	{ IN("<@relay.example.net:user@example.org>"), 0, R_OK,
	    .flags = P_ROUTE, .route = "@relay.example.net",
	    .local = "user", .key = "example.org" },
	{ IN("<@a.example,@b.example:user@evil.example>"), 0, R_OK,
	    .flags = P_ROUTE, .route = "@a.example,@b.example",
	    .key = "evil.example" },
	{ IN("<@example.org>"), 0, R_RCPT },
	{ IN("<@a,b:u@example.org>"), 0, R_RCPT,
	    .error = "Invalid source route" },
	{ IN("<@a:@b:u@example.org>"), 0, R_RCPT },
	{ IN("<@[192.0.2.1]:u@example.org>"), 0, R_RCPT },
	{ IN("<@a.example.:u@example.org>"), 0, R_RCPT },
	{ IN("<@:u@example.org>"), 0, R_RCPT },
	/* quoted local parts */
	{ IN("<\"user@evil.example\"@example.org>"), 0, R_OK,
	    .flags = P_QUOTED | P_QAT, .local = "\"user@evil.example\"",
	    .key = "example.org" },
	{ IN("<\"john doe\"@example.org>"), 0, R_OK, .flags = P_QUOTED,
	    .local = "\"john doe\"" },
	{ IN("<\"a\\\"b\"@example.org>"), 0, R_OK,
	    .flags = P_QUOTED | P_QPAIR, .local = "\"a\\\"b\"" },
	{ IN("<\"a\\\\b\"@example.org>"), 0, R_OK,
	    .flags = P_QUOTED | P_QPAIR },
	{ IN("<\"\\@\"@example.org>"), 0, R_OK,
	    .flags = P_QUOTED | P_QPAIR | P_QAT },
	{ IN("<\"\"@example.org>"), 0, R_OK, .flags = P_QUOTED,
	    .local = "\"\"" },
	{ IN("<\"user%evil\"@example.org>"), 0, R_OK,
	    .flags = P_QUOTED | P_PCT },
	{ IN("<\"a!b\"@example.org>"), 0, R_OK, .flags = P_QUOTED | P_BANG },
	{ IN("<\"a\"\"b\"@example.org>"), 0, R_RCPT },
	{ IN("<\"a\"b@example.org>"), 0, R_RCPT },
	{ IN("<a\"b\"@example.org>"), 0, R_RCPT },
	{ IN("<\"a\".b@example.org>"), 0, R_RCPT },
	{ IN("<\"abc@example.org>"), 0, R_RCPT,
	    .error = "Unterminated address" },
	{ IN("<\"a\tb\"@example.org>"), 0, R_RCPT,
	    .error = "Invalid character in quoted local part" },
	{ IN("<\"a\\\tb\"@example.org>"), 0, R_RCPT,
	    .error = "Invalid quoted pair in local part" },
	{ IN("<\"a\\\xc3\xa9\"@example.org>"), I_UTF8, R_RCPT,
	    .error = "Invalid quoted pair in local part" },
	/* trailing dots */
	{ IN("<user@example.org.>"), 0, R_OK, .flags = P_TDOT | P_NOKEY,
	    .domain = "example.org.", .key = "" },
	{ IN("<user@EXAMPLE.org.>"), I_MAIL, R_OK,
	    .flags = P_TDOT | P_NOKEY },
	{ IN("<user@example.org..>"), 0, R_RCPT,
	    .error = "Empty label in domain" },
	{ IN("<user@.>"), 0, R_RCPT },
	{ IN("<user@.example.org>"), 0, R_RCPT },
	/* address literals */
	{ IN("<user@[192.0.2.1]>"), 0, R_OK, .flags = P_LIT | P_NOKEY,
	    .domain = "[192.0.2.1]", .key = "" },
	{ IN("<user@[001.002.003.004]>"), 0, R_OK, .flags = P_LIT | P_NOKEY },
	{ IN("<user@[IPv6:2001:db8::1]>"), 0, R_OK,
	    .flags = P_LIT | P_IPV6 | P_NOKEY,
	    .domain = "[IPv6:2001:db8::1]" },
	{ IN("<user@[ipv6:::1]>"), 0, R_OK,
	    .flags = P_LIT | P_IPV6 | P_NOKEY },
	{ IN("<user@[IPv6:::ffff:192.0.2.1]>"), 0, R_OK,
	    .flags = P_LIT | P_IPV6 | P_NOKEY },
	{ IN("<user@[300.1.1.1]>"), 0, R_RCPT,
	    .error = "Invalid address literal" },
	{ IN("<user@[1.2.3]>"), 0, R_RCPT },
	{ IN("<user@[1.2.3.4.5]>"), 0, R_RCPT },
	{ IN("<user@[1234.2.3.4]>"), 0, R_RCPT },
	{ IN("<user@[IPv6:1::2::3]>"), 0, R_RCPT },
	{ IN("<user@[IPv6:2001:db8::1%eth0]>"), 0, R_RCPT },
	{ IN("<user@[IPv6:192.0.2.1]>"), 0, R_RCPT },
	{ IN("<user@[x400:foo]>"), 0, R_RCPT },
	{ IN("<user@[]>"), 0, R_RCPT },
	{ IN("<user@[1.2.3.4>"), 0, R_RCPT },
	{ IN("<user@[1.2.3.4]x>"), 0, R_RCPT },
	/* domains lib/dname does not key */
	{ IN("<user@localhost>"), 0, R_OK, .flags = P_NOKEY,
	    .domain = "localhost", .key = "" },
	{ IN("<user@192.0.2.1>"), 0, R_OK, .flags = P_NOKEY, .key = "" },
	/* lengths: RFC 5321 4.5.3.1 */
	{ IN("<" REP(64, "a") "@example.org>"), 0, R_OK },
	{ IN("<" REP(65, "a") "@example.org>"), 0, R_RCPT,
	    .error = "Local part longer than 64 octets" },
	{ IN("<\"" REP(62, "a") "\"@example.org>"), 0, R_OK,
	    .flags = P_QUOTED },
	{ IN("<\"" REP(63, "a") "\"@example.org>"), 0, R_RCPT,
	    .error = "Local part longer than 64 octets" },
	{ IN("<" REP(64, "a") "@" REP(63, "b") "." REP(63, "c") "."
	    REP(61, "d") ">"), 0, R_OK },
	{ IN("<" REP(64, "a") "@" REP(63, "b") "." REP(63, "c") "."
	    REP(62, "d") ">"), 0, R_RCPT, .error = "Path too long" },
	{ IN("<a@" REP(300, "b") ">"), 0, R_RCPT, .error = "Path too long" },
	{ IN("<a@" REP(64, "b") ".example>"), 0, R_RCPT,
	    .error = "Label longer than 63 octets" },
	{ IN("<a@" REP(63, "b") ".example>"), 0, R_OK },
	/* malformed */
	{ IN("user@example.org"), 0, R_RCPT,
	    .error = "Address must be in angle brackets" },
	{ IN("user@example.org"), I_MAIL, R_SENDER },
	{ IN(""), 0, R_RCPT, .error = "Missing address" },
	{ IN("<"), 0, R_RCPT, .error = "Unterminated address" },
	{ IN("<user@example.org"), 0, R_RCPT,
	    .error = "Unterminated address" },
	{ IN("<<a@example.org>>"), 0, R_RCPT },
	{ IN("<a@<example.org>>"), 0, R_RCPT },
	{ IN("<a..b@example.org>"), 0, R_RCPT,
	    .error = "Empty atom in local part" },
	{ IN("<.a@example.org>"), 0, R_RCPT },
	{ IN("<a.@example.org>"), 0, R_RCPT },
	{ IN("<@>"), 0, R_RCPT },
	{ IN("<a b@example.org>"), 0, R_RCPT },
	{ IN("< a@example.org>"), 0, R_RCPT },
	{ IN("<a@example.org >"), 0, R_RCPT,
	    .error = "Invalid character in domain" },
	{ IN("<a@exa mple.org>"), 0, R_RCPT },
	{ IN("<a@-example.org>"), 0, R_RCPT },
	{ IN("<a@example-.org>"), 0, R_RCPT,
	    .error = "Label ends with a hyphen" },
	{ IN("<a@ex_ample.org>"), 0, R_RCPT },
	{ IN("<a@>"), 0, R_RCPT },
	{ IN("<a>"), 0, R_RCPT, .error = "Missing domain" },
	{ IN("<>"), I_MAIL | I_UTF8, R_OK, .flags = P_NULL | P_NOKEY },
	{ IN("< >"), I_MAIL, R_SENDER },
	{ IN("<a@b@example.org>"), 0, R_RCPT },
	{ IN("<a(comment)@example.org>"), 0, R_RCPT },
	{ IN("<a@example.org(comment)>"), 0, R_RCPT },
	{ IN("<a\0b@example.org>"), 0, R_RCPT },
	{ IN("<a@example.org\0>"), 0, R_RCPT },
	{ IN("<a\\@b@example.org>"), 0, R_RCPT },
	{ IN("<a,b@example.org>"), 0, R_RCPT },
	{ IN("<a:b@example.org>"), 0, R_RCPT },
	/* UTF-8: RFC 6531 */
	{ IN("<j\xc3\xb6rg@example.org>"), I_UTF8, R_OK, .flags = P_UTF8,
	    .local = "j\xc3\xb6rg" },
	{ IN("<j\xc3\xb6rg@example.org>"), 0, R_UTF8,
	    .error = "Non-ASCII recipient address without SMTPUTF8" },
	{ IN("<j\xc3\xb6rg@example.org>"), I_MAIL, R_UTF8,
	    .error = "Non-ASCII sender address without SMTPUTF8" },
	{ IN("<user@b\xc3\xbc" "cher.example>"), I_UTF8, R_OK,
	    .flags = P_UTF8, .key = "xn--bcher-kva.example" },
	{ IN("<user@b\xc3\xbc" "cher.example>"), 0, R_UTF8 },
	{ IN("<user@b\xc3\xbc" "cher.example.>"), I_UTF8, R_OK,
	    .flags = P_UTF8 | P_TDOT | P_NOKEY },
	{ IN("<\"j\xc3\xb6rg\"@example.org>"), I_UTF8, R_OK,
	    .flags = P_QUOTED | P_UTF8 },
	{ IN("<\xf0\x9f\x98\x80@example.org>"), I_UTF8, R_OK,
	    .flags = P_UTF8 },
	{ IN("<\xe9t\xe9@example.org>"), 0, R_RCPT,
	    .error = "Malformed UTF-8 in address" },
	{ IN("<\xe9t\xe9@example.org>"), I_UTF8, R_RCPT },
	{ IN("<\xc0\xaf@example.org>"), I_UTF8, R_RCPT },
	{ IN("<\xe0\x80\xaf@example.org>"), I_UTF8, R_RCPT },
	{ IN("<\xed\xa0\x80@example.org>"), I_UTF8, R_RCPT },
	{ IN("<\xf4\x90\x80\x80@example.org>"), I_UTF8, R_RCPT },
	{ IN("<\xf8\x88\x80\x80\x80@example.org>"), I_UTF8, R_RCPT },
	{ IN("<\x80@example.org>"), I_UTF8, R_RCPT },
	{ IN("<\xc3@example.org>"), I_UTF8, R_RCPT },
	{ IN("<a@\xc3\xa9-.example>"), I_UTF8, R_RCPT },
};

/* test_path - one row of path_cases, and the round trip */
static void
test_path(void **state)
{
	const struct path_case *t = *state;
	struct smtp_parse_path path, again;
	const char *error = NULL;
	enum smtp_parse_status st;
	char out[SMTP_PARSE_PATH_MAX + 1];
	size_t len;
	char *in = expand(t->in, t->len, &len);

	st = smtp_parse_path(in, len, t->in_flags, &path, &error);
	check_reply("path", st, error, t->st, t->reply, t->error);
	if (st != OK) {
		assert_int_equal(path.len, 0);
		assert_int_equal(path.mailbox[0], '\0');
		free(in);
		return;
	}
	check_flags("path", path.flags, t->flags, smtp_parse_path_flag_name);
	assert_int_equal(path.len, len);
	if (t->local != NULL)
		assert_string_equal(path.local, t->local);
	if (t->domain != NULL)
		assert_string_equal(path.domain, t->domain);
	if (t->key != NULL)
		assert_string_equal(path.domain_key, t->key);
	if (t->route != NULL)
		assert_string_equal(path.route, t->route);
	assert_true((path.domain_key[0] == '\0') ==
	    ((path.flags & P_NOKEY) != 0));
	assert_true((path.dname_error != NULL) ==
	    ((path.flags & P_NOKEY) != 0));
	/* the path re-serialises to exactly what was received */
	assert_int_equal(smtp_parse_path_format(&path, out, sizeof(out)),
	    (int)len);
	assert_memory_equal(out, in, len);
	assert_int_equal(smtp_parse_path(out, strlen(out), t->in_flags,
	    &again, &error), OK);
	assert_memory_equal(&path, &again, sizeof(path));
	free(in);
}

/* MAIL arguments */

#define M_SIZE	SMTP_PARSE_MAIL_SIZE
#define M_BODY	SMTP_PARSE_MAIL_BODY
#define M_UTF8	SMTP_PARSE_MAIL_SMTPUTF8
#define M_RET	SMTP_PARSE_MAIL_RET
#define M_ENVID	SMTP_PARSE_MAIL_ENVID
#define M_AUTH	SMTP_PARSE_MAIL_AUTH

struct mail_case {
	const char	*in;		/* what follows "MAIL FROM:" */
	size_t		 len;
	enum smtp_parse_status st;
	const char	*reply;
	const char	*error;
	unsigned	 seen;
	uint64_t	 size;
	int		 overflow;
	enum queue_body_type body;
	enum queue_ret	 ret;
	const char	*envid;
	const char	*auth;
	unsigned	 pflags;
	const char	*mailbox;
};

#define A	"<a@example.org>"

static const struct mail_case mail_cases[] = {
	{ IN(A), R_OK, .mailbox = "a@example.org" },
	{ IN("<>"), R_OK, .pflags = P_NULL | P_NOKEY, .mailbox = "" },
	{ IN("<> SIZE=1000"), R_OK, .seen = M_SIZE, .size = 1000,
	    .pflags = P_NULL | P_NOKEY },
	{ IN(A " SIZE=0"), R_OK, .seen = M_SIZE, .size = 0 },
	{ IN(A " SIZE=007"), R_OK, .seen = M_SIZE, .size = 7 },
	{ IN(A " SIZE=18446744073709551615"), R_OK, .seen = M_SIZE,
	    .size = UINT64_MAX },
	{ IN(A " SIZE=18446744073709551616"), R_OK, .seen = M_SIZE,
	    .size = UINT64_MAX, .overflow = 1 },
	{ IN(A " SIZE=99999999999999999999"), R_OK, .seen = M_SIZE,
	    .size = UINT64_MAX, .overflow = 1 },
	{ IN(A " SIZE=123456789012345678901"), R_PARAM,
	    .error = "Invalid SIZE value" },
	{ IN(A " SIZE="), R_PARAM, .error = "SIZE needs a value" },
	{ IN(A " SIZE"), R_PARAM, .error = "SIZE needs a value" },
	{ IN(A " SIZE=12k"), R_PARAM, .error = "Invalid SIZE value" },
	{ IN(A " SIZE=-1"), R_PARAM },
	{ IN(A " SIZE=+1"), R_PARAM },
	{ IN(A " size=10 SIZE=20"), R_PARAM,
	    .error = "Duplicate SIZE parameter" },
	{ IN(A " BODY=8BITMIME"), R_OK, .seen = M_BODY,
	    .body = QUEUE_BODY_8BITMIME },
	{ IN(A " body=binarymime"), R_OK, .seen = M_BODY,
	    .body = QUEUE_BODY_BINARYMIME },
	{ IN(A " BODY=7bit"), R_OK, .seen = M_BODY, .body = QUEUE_BODY_7BIT },
	{ IN(A " BODY=9BIT"), R_PARAM, .error = "Invalid BODY value" },
	{ IN(A " BODY=8BITMIMEX"), R_PARAM },
	{ IN(A " BODY=8BITMIME BODY=7BIT"), R_PARAM },
	{ IN(A " SMTPUTF8"), R_OK, .seen = M_UTF8 },
	{ IN(A " smtputf8"), R_OK, .seen = M_UTF8 },
	{ IN(A " SMTPUTF8=yes"), R_PARAM, .error = "SMTPUTF8 takes no value" },
	{ IN(A " SMTPUTF8="), R_PARAM },
	{ IN("<j\xc3\xb6rg@example.org> SMTPUTF8"), R_OK, .seen = M_UTF8,
	    .pflags = P_UTF8, .mailbox = "j\xc3\xb6rg@example.org" },
	{ IN("<j\xc3\xb6rg@example.org>"), R_UTF8,
	    .error = "Non-ASCII sender address without SMTPUTF8" },
	{ IN("<j\xc3\xb6rg@example.org> BODY=8BITMIME"), R_UTF8 },
	{ IN("<\xe9@example.org> SMTPUTF8"), R_SENDER,
	    .error = "Malformed UTF-8 in address" },
	{ IN(A " RET=FULL"), R_OK, .seen = M_RET, .ret = QUEUE_RET_FULL },
	{ IN(A " ret=hdrs"), R_OK, .seen = M_RET, .ret = QUEUE_RET_HDRS },
	{ IN(A " RET=BOTH"), R_PARAM, .error = "Invalid RET value" },
	{ IN(A " RET"), R_PARAM, .error = "RET needs a value" },
	{ IN(A " ENVID=QQ314159"), R_OK, .seen = M_ENVID,
	    .envid = "QQ314159" },
	{ IN(A " ENVID=a+2Bb+20c"), R_OK, .seen = M_ENVID,
	    .envid = "a+2Bb+20c" },
	{ IN(A " ENVID=a+2bb"), R_PARAM, .error = "Invalid ENVID value" },
	{ IN(A " ENVID=a+0Ab"), R_PARAM, .error = "Invalid ENVID value" },
	{ IN(A " ENVID=a+"), R_PARAM },
	{ IN(A " ENVID=" REP(100, "e")), R_OK, .seen = M_ENVID },
	{ IN(A " ENVID=" REP(101, "e")), R_PARAM,
	    .error = "ENVID longer than 100 characters" },
	{ IN(A " AUTH=<>"), R_OK, .seen = M_AUTH, .auth = "<>" },
	{ IN(A " AUTH=e+3Dmc2@example.com"), R_OK, .seen = M_AUTH,
	    .auth = "e+3Dmc2@example.com" },
	{ IN(A " AUTH=a+zz"), R_PARAM, .error = "Invalid AUTH value" },
	{ IN(A " AUTH=" REP(500, "u")), R_OK, .seen = M_AUTH },
	{ IN(A " AUTH=" REP(501, "u")), R_PARAM },
	{ IN(A " FOO=bar"), R_UNKPARAM, .error = "Unsupported MAIL parameter" },
	{ IN(A " NOTIFY=NEVER"), R_UNKPARAM },
	{ IN(A " X-FOO"), R_UNKPARAM },
	{ IN(A " -FOO=1"), R_PARAM, .error = "Invalid parameter keyword" },
	{ IN(A " =1"), R_PARAM, .error = "Invalid parameter keyword" },
	{ IN(A " SI_ZE=1"), R_PARAM },
	{ IN(A " SIZE=1=2"), R_PARAM,
	    .error = "Invalid character in parameter value" },
	{ IN(A " BODY=8BITMIME\xc3\xa9"), R_PARAM },
	{ IN(A " SIZE=1\tBODY=7BIT"), R_PARAM },
	{ IN(A "SIZE=1"), R_ARGS, .error = "Missing space after address" },
	{ IN(A "  SIZE=1   BODY=8BITMIME"), R_OK, .seen = M_SIZE | M_BODY,
	    .size = 1, .body = QUEUE_BODY_8BITMIME },
	{ IN("a@example.org SIZE=1"), R_SENDER,
	    .error = "Address must be in angle brackets" },
	{ IN(A " SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=x AUTH=<>"),
	    R_OK, .seen = M_SIZE | M_BODY | M_UTF8 | M_RET | M_ENVID | M_AUTH,
	    .size = 10, .body = QUEUE_BODY_8BITMIME, .ret = QUEUE_RET_HDRS,
	    .envid = "x", .auth = "<>" },
};

/* test_mail - one row of mail_cases */
static void
test_mail(void **state)
{
	const struct mail_case *t = *state;
	struct smtp_parse_path path;
	struct smtp_parse_mail_params p;
	const char *error = NULL;
	enum smtp_parse_status st;
	size_t len;
	char *in = expand(t->in, t->len, &len);

	st = smtp_parse_mail_args(in, len, &path, &p, &error);
	check_reply("mail", st, error, t->st, t->reply, t->error);
	if (st != OK) {
		assert_int_equal(p.seen, 0);
		assert_int_equal(path.len, 0);
		free(in);
		return;
	}
	assert_int_equal(p.seen, t->seen);
	assert_true(p.size == t->size);
	assert_int_equal(p.size_overflow, t->overflow);
	assert_int_equal(p.body, t->body);
	assert_int_equal(p.ret, t->ret);
	assert_int_equal(p.smtputf8, (t->seen & M_UTF8) != 0);
	if (t->envid != NULL)
		assert_string_equal(p.envid, t->envid);
	if (t->auth != NULL)
		assert_string_equal(p.auth, t->auth);
	check_flags("mail", path.flags, t->pflags, smtp_parse_path_flag_name);
	if (t->mailbox != NULL)
		assert_string_equal(path.mailbox, t->mailbox);
	free(in);
}

/* RCPT arguments */

#define N_NEVER	QUEUE_NOTIFY_NEVER
#define N_SUCC	QUEUE_NOTIFY_SUCCESS
#define N_FAIL	QUEUE_NOTIFY_FAILURE
#define N_DELAY	QUEUE_NOTIFY_DELAY
#define RN	SMTP_PARSE_RCPT_NOTIFY
#define RO	SMTP_PARSE_RCPT_ORCPT
#define B	"<b@example.org>"

struct rcpt_case {
	const char	*in;		/* what follows "RCPT TO:" */
	size_t		 len;
	int		 smtputf8;
	enum smtp_parse_status st;
	const char	*reply;
	const char	*error;
	unsigned	 seen;
	unsigned	 notify;
	const char	*orcpt;
	size_t		 orcpt_type_len;
	unsigned	 pflags;
};

static const struct rcpt_case rcpt_cases[] = {
	{ IN(B), 0, R_OK },
	{ IN(B " NOTIFY=NEVER"), 0, R_OK, .seen = RN, .notify = N_NEVER },
	{ IN(B " NOTIFY=SUCCESS,FAILURE"), 0, R_OK, .seen = RN,
	    .notify = N_SUCC | N_FAIL },
	{ IN(B " notify=delay,failure,success"), 0, R_OK, .seen = RN,
	    .notify = N_SUCC | N_FAIL | N_DELAY },
	{ IN(B " NOTIFY=NEVER,SUCCESS"), 0, R_PARAM,
	    .error = "NOTIFY=NEVER cannot be combined" },
	{ IN(B " NOTIFY=FAILURE,NEVER"), 0, R_PARAM,
	    .error = "NOTIFY=NEVER cannot be combined" },
	{ IN(B " NOTIFY=SUCCESS,SUCCESS"), 0, R_PARAM,
	    .error = "Invalid NOTIFY value" },
	{ IN(B " NOTIFY="), 0, R_PARAM, .error = "NOTIFY needs a value" },
	{ IN(B " NOTIFY"), 0, R_PARAM, .error = "NOTIFY needs a value" },
	{ IN(B " NOTIFY=SUCCESS,"), 0, R_PARAM },
	{ IN(B " NOTIFY=,SUCCESS"), 0, R_PARAM },
	{ IN(B " NOTIFY=SOMETIMES"), 0, R_PARAM },
	{ IN(B " NOTIFY=NEVER NOTIFY=NEVER"), 0, R_PARAM,
	    .error = "Duplicate NOTIFY parameter" },
	{ IN(B " ORCPT=rfc822;b@example.org"), 0, R_OK, .seen = RO,
	    .orcpt = "rfc822;b@example.org", .orcpt_type_len = 6 },
	{ IN(B " ORCPT=rfc822;b+2Bx@example.org NOTIFY=DELAY"), 0, R_OK,
	    .seen = RO | RN, .notify = N_DELAY,
	    .orcpt = "rfc822;b+2Bx@example.org", .orcpt_type_len = 6 },
	{ IN(B " ORCPT=utf-8;b\\x{E9}@example.org"), 0, R_OK, .seen = RO,
	    .orcpt_type_len = 5 },
	{ IN(B " ORCPT=rfc822"), 0, R_PARAM,
	    .error = "ORCPT needs type;address" },
	{ IN(B " ORCPT=;b@example.org"), 0, R_PARAM },
	{ IN(B " ORCPT=rfc822;"), 0, R_PARAM, .error = "Invalid ORCPT address" },
	{ IN(B " ORCPT=rfc822;a+zz"), 0, R_PARAM },
	{ IN(B " ORCPT=rfc(822);a"), 0, R_PARAM,
	    .error = "Invalid ORCPT address type" },
	{ IN(B " ORCPT=rfc822;" REP(493, "x")), 0, R_OK, .seen = RO,
	    .orcpt_type_len = 6 },
	{ IN(B " ORCPT=rfc822;" REP(494, "x")), 0, R_PARAM,
	    .error = "ORCPT longer than 500 characters" },
	{ IN(B " ORCPT=a;b ORCPT=a;b"), 0, R_PARAM },
	{ IN(B " SIZE=10"), 0, R_UNKPARAM,
	    .error = "Unsupported RCPT parameter" },
	{ IN(B " SMTPUTF8"), 0, R_UNKPARAM },
	{ IN(B ">"), 0, R_ARGS, .error = "Missing space after address" },
	{ IN("<j\xc3\xb6rg@example.org>"), 1, R_OK, .pflags = P_UTF8 },
	{ IN("<j\xc3\xb6rg@example.org>"), 0, R_UTF8,
	    .error = "Non-ASCII recipient address without SMTPUTF8" },
	{ IN("<Postmaster> NOTIFY=FAILURE"), 0, R_OK, .seen = RN,
	    .notify = N_FAIL, .pflags = P_PM | P_NOKEY },
	{ IN("<> NOTIFY=NEVER"), 0, R_RCPT },
	{ IN("<@r.example:b@example.org> NOTIFY=NEVER"), 0, R_OK,
	    .seen = RN, .notify = N_NEVER, .pflags = P_ROUTE },
};

/* test_rcpt - one row of rcpt_cases */
static void
test_rcpt(void **state)
{
	const struct rcpt_case *t = *state;
	struct smtp_parse_path path;
	struct smtp_parse_rcpt_params p;
	const char *error = NULL;
	enum smtp_parse_status st;
	size_t len;
	char *in = expand(t->in, t->len, &len);

	st = smtp_parse_rcpt_args(in, len, t->smtputf8, &path, &p, &error);
	check_reply("rcpt", st, error, t->st, t->reply, t->error);
	if (st != OK) {
		assert_int_equal(p.seen, 0);
		assert_int_equal(path.len, 0);
		free(in);
		return;
	}
	assert_int_equal(p.seen, t->seen);
	assert_int_equal(p.notify, t->notify);
	if (t->orcpt != NULL)
		assert_string_equal(p.orcpt, t->orcpt);
	if (t->seen & RO)
		assert_int_equal(p.orcpt_type_len, t->orcpt_type_len);
	else
		assert_string_equal(p.orcpt, "");
	check_flags("rcpt", path.flags, t->pflags, smtp_parse_path_flag_name);
	free(in);
}

/* BDAT */

struct bdat_case {
	const char	*in;
	size_t		 len;
	enum smtp_parse_status st;
	const char	*reply;
	const char	*error;
	uint64_t	 size;
	int		 last;
};

static const struct bdat_case bdat_cases[] = {
	{ IN("0 LAST"), R_OK, .size = 0, .last = 1 },
	{ IN("100"), R_OK, .size = 100 },
	{ IN("100 LAST"), R_OK, .size = 100, .last = 1 },
	{ IN("100 last"), R_OK, .size = 100, .last = 1 },
	{ IN("100  LAST"), R_OK, .size = 100, .last = 1 },
	{ IN("0"), R_OK },
	{ IN("18446744073709551615"), R_OK, .size = UINT64_MAX },
	{ IN("000000000000000000000000000001"), R_OK, .size = 1 },
	{ IN("18446744073709551616"), R_ARGS,
	    .error = "BDAT chunk size too large" },
	{ IN("99999999999999999999999 LAST"), R_ARGS },
	{ IN(""), R_ARGS, .error = "Syntax: BDAT chunk-size [LAST]" },
	{ IN("LAST"), R_ARGS },
	{ IN("100 LAST x"), R_ARGS },
	{ IN("100 LAST LAST"), R_ARGS },
	{ IN("100 FIRST"), R_ARGS },
	{ IN("100 LASTX"), R_ARGS },
	{ IN("100LAST"), R_ARGS },
	{ IN("-1"), R_ARGS },
	{ IN("+1"), R_ARGS },
	{ IN("1 0"), R_ARGS },
	{ IN("0x10"), R_ARGS },
	{ IN(" 100"), R_ARGS },
	{ IN("1\0"), R_ARGS },
};

/* test_bdat - one row of bdat_cases */
static void
test_bdat(void **state)
{
	const struct bdat_case *t = *state;
	struct smtp_parse_bdat b;
	const char *error = NULL;
	enum smtp_parse_status st;

	st = smtp_parse_bdat(t->in, t->len, &b, &error);
	check_reply("bdat", st, error, t->st, t->reply, t->error);
	if (st == OK) {
		assert_true(b.size == t->size);
		assert_int_equal(b.last, t->last);
	}
}

/* EHLO/HELO */

#define H_LIT	SMTP_PARSE_HELO_LITERAL
#define H_IPV6	SMTP_PARSE_HELO_IPV6
#define H_BADLIT SMTP_PARSE_HELO_BAD_LITERAL
#define H_TDOT	SMTP_PARSE_HELO_TRAILING_DOT
#define H_NODN	SMTP_PARSE_HELO_NOT_DNAME
#define H_EXTRA	SMTP_PARSE_HELO_EXTRA_ARGS
#define H_UTF8	SMTP_PARSE_HELO_UTF8
#define H_BARE	SMTP_PARSE_HELO_BARE_ADDRESS

struct helo_case {
	const char	*in;
	size_t		 len;
	enum smtp_parse_status st;
	const char	*reply;
	const char	*error;
	unsigned	 flags;
	const char	*name;
	const char	*key;
};

static const struct helo_case helo_cases[] = {
	{ IN("mail.example.org"), R_OK, .name = "mail.example.org",
	    .key = "mail.example.org" },
	{ IN("MAIL.Example.ORG"), R_OK, .name = "MAIL.Example.ORG",
	    .key = "mail.example.org" },
	{ IN("[192.0.2.1]"), R_OK, .flags = H_LIT, .name = "[192.0.2.1]",
	    .key = "" },
	{ IN("[IPv6:2001:db8::1]"), R_OK, .flags = H_LIT | H_IPV6, .key = "" },
	{ IN("[192.0.2.256]"), R_OK, .flags = H_BADLIT, .key = "" },
	{ IN("[192.0.2.1"), R_OK, .flags = H_BADLIT },
	{ IN("[]"), R_OK, .flags = H_BADLIT },
	{ IN("["), R_OK, .flags = H_BADLIT },
	{ IN("192.0.2.1"), R_OK, .flags = H_BARE | H_NODN, .key = "" },
	{ IN("localhost"), R_OK, .flags = H_NODN, .name = "localhost",
	    .key = "" },
	{ IN("my_pc.local"), R_OK, .flags = H_NODN },
	{ IN("-bad-.example"), R_OK, .flags = H_NODN },
	{ IN("."), R_OK, .flags = H_NODN },
	{ IN("mail.example.org."), R_OK, .flags = H_TDOT,
	    .name = "mail.example.org.", .key = "mail.example.org" },
	{ IN("mail.example.org extra words"), R_OK, .flags = H_EXTRA,
	    .name = "mail.example.org", .key = "mail.example.org" },
	{ IN("  mail.example.org  "), R_OK, .name = "mail.example.org" },
	{ IN("b\xc3\xbc" "cher.example"), R_OK, .flags = H_UTF8,
	    .key = "xn--bcher-kva.example" },
	{ IN(REP(63, "a") "." REP(63, "b") "." REP(63, "c") "." REP(63, "d")),
	    R_OK, .flags = H_NODN },
	{ IN(REP(255, "a")), R_OK, .flags = H_NODN },
	{ IN(REP(256, "a")), R_ARGS,
	    .error = "Hostname longer than 255 octets" },
	{ IN(""), R_ARGS, .error = "Syntax: EHLO hostname" },
	{ IN("   "), R_ARGS },
	{ IN("\xff\xfe"), R_ARGS, .error = "Malformed UTF-8 in hostname" },
	{ IN("a\x02" "b"), R_ARGS, .error = "Invalid character in hostname" },
	{ IN("a\0b"), R_ARGS },
};

/* test_helo - one row of helo_cases */
static void
test_helo(void **state)
{
	const struct helo_case *t = *state;
	struct smtp_parse_helo h;
	const char *error = NULL;
	enum smtp_parse_status st;
	size_t len;
	char *in = expand(t->in, t->len, &len);

	st = smtp_parse_helo(in, len, &h, &error);
	check_reply("helo", st, error, t->st, t->reply, t->error);
	if (st == OK) {
		check_flags("helo", h.flags, t->flags,
		    smtp_parse_helo_flag_name);
		if (t->name != NULL)
			assert_string_equal(h.name, t->name);
		if (t->key != NULL)
			assert_string_equal(h.key, t->key);
		assert_true((h.key[0] == '\0') ==
		    ((h.flags & (H_LIT | H_BADLIT | H_NODN)) != 0));
	}
	free(in);
}

/* xtext */

struct xtext_case {
	const char	*in;
	size_t		 len;
	int		 rc;
	const char	*out;		/* decoded, when rc == 0 */
	size_t		 outlen;
};

#define XOUT(s)	.out = (s), .outlen = sizeof(s) - 1

static const struct xtext_case xtext_cases[] = {
	{ IN("abc"), 0, XOUT("abc") },
	{ IN(""), 0, XOUT("") },
	{ IN("a+2Bb"), 0, XOUT("a+b") },
	{ IN("+3D"), 0, XOUT("=") },
	{ IN("+00"), 0, XOUT("\0") },
	{ IN("+FF+80"), 0, XOUT("\xff\x80") },
	{ IN("+41"), 0, XOUT("A") },
	{ IN("<>"), 0, XOUT("<>") },
	{ IN("a+2b"), -1 },
	{ IN("a+2"), -1 },
	{ IN("a+"), -1 },
	{ IN("+G0"), -1 },
	{ IN("a=b"), -1 },
	{ IN("a b"), -1 },
	{ IN("a\0b"), -1 },
	{ IN("\xc3\xa9"), -1 },
	{ IN("\x7f"), -1 },
};

/* test_xtext - one row of xtext_cases, both decoders, and re-encoding */
static void
test_xtext(void **state)
{
	const struct xtext_case *t = *state;
	char out[64], enc[256];
	const char *error = NULL;
	size_t outlen = 999;
	struct buf b;
	int rc;

	rc = smtp_xtext_decode(t->in, t->len, out, sizeof(out), &outlen,
	    &error);
	assert_int_equal(rc, t->rc);
	assert_int_equal(smtp_xtext_valid(t->in, t->len), rc == 0);
	buf_init(&b);
	buf_puts(&b, "x");
	assert_int_equal(smtp_xtext_decode_buf(t->in, t->len, &b, &error),
	    rc);
	if (rc == 0) {
		assert_int_equal(outlen, t->outlen);
		assert_memory_equal(out, t->out, outlen);
		assert_int_equal(out[outlen], '\0');
		assert_int_equal(b.len, 1 + t->outlen);
		assert_memory_equal(b.data + 1, t->out, t->outlen);
		/* decode(encode(x)) == x */
		rc = smtp_xtext_encode(out, outlen, enc, sizeof(enc));
		assert_true(rc >= 0);
		assert_int_equal(smtp_xtext_decode(enc, (size_t)rc, out,
		    sizeof(out), &outlen, &error), 0);
		assert_int_equal(outlen, t->outlen);
		assert_memory_equal(out, t->out, outlen);
	} else {
		assert_string_equal(error, "Invalid xtext");
		assert_int_equal(b.len, 1);	/* nothing appended */
		assert_string_equal(buf_str(&b), "x");
	}
	buf_release(&b);
}

/* test_xtext_all_octets - every octet survives encode and decode */
static void
test_xtext_all_octets(void **state)
{
	unsigned char raw[256], dec[257];
	char enc[256 * 3 + 1];
	struct buf b;
	size_t i, n;
	int len;

	(void)state;
	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)i;
	len = smtp_xtext_encode(raw, sizeof(raw), enc, sizeof(enc));
	assert_true(len > 0);
	assert_true(smtp_xtext_valid(enc, (size_t)len));
	assert_null(strchr(enc, '='));
	assert_int_equal(smtp_xtext_decode(enc, (size_t)len, (char *)dec,
	    sizeof(dec), &n, NULL), 0);
	assert_int_equal(n, sizeof(raw));
	assert_memory_equal(dec, raw, sizeof(raw));
	buf_init(&b);
	smtp_xtext_encode_buf(raw, sizeof(raw), &b);
	assert_int_equal(b.len, (size_t)len);
	assert_memory_equal(b.data, enc, b.len);
	buf_reset(&b);
	assert_int_equal(smtp_xtext_decode_buf(enc, (size_t)len, &b, NULL), 0);
	assert_memory_equal(b.data, raw, sizeof(raw));
	buf_release(&b);
}

/* test_xtext_bounds - the caller's buffer is never overrun */
static void
test_xtext_bounds(void **state)
{
	char out[4];
	const char *error = NULL;
	size_t n;

	(void)state;
	/* "a=" encodes to 4 octets: needs 5 with the NUL */
	assert_int_equal(smtp_xtext_encode("a=", 2, out, 5 - 1), -1);
	assert_string_equal(out, "");
	assert_int_equal(smtp_xtext_encode("a", 1, out, 2), 1);
	assert_int_equal(smtp_xtext_encode("a", 1, out, 1), -1);
	assert_int_equal(smtp_xtext_encode("", 0, out, 1), 0);
	assert_int_equal(smtp_xtext_encode("", 0, out, 0), -1);
	assert_int_equal(smtp_xtext_decode("abc", 3, out, sizeof(out), &n,
	    &error), 0);
	assert_int_equal(smtp_xtext_decode("abcd", 4, out, sizeof(out), &n,
	    &error), -1);
	assert_string_equal(error, "xtext does not fit the buffer");
	assert_int_equal(smtp_xtext_decode("a", 1, out, 0, &n, &error), -1);
}

/* test_status_table - every status has a name, a code, a class */
static void
test_status_table(void **state)
{
	enum smtp_parse_status st;

	(void)state;
	for (st = SMTP_PARSE_OK; st <= SMTP_PARSE_UNKNOWN_PARAM; st++) {
		unsigned code = smtp_parse_status_code(st);
		const char *enh = smtp_parse_status_enhanced(st);

		assert_string_not_equal(smtp_parse_status_name(st), "?");
		assert_true(code >= 200 && code < 600);
		/* RFC 3463 2: the class digit matches the reply */
		assert_int_equal(enh[0] - '0', (int)(code / 100));
	}
	assert_string_equal(smtp_parse_status_name((enum smtp_parse_status)99),
	    "?");
}

/* test_verb_table - each verb parses back to itself, in any case */
static void
test_verb_table(void **state)
{
	int v;

	(void)state;
	for (v = 0; v < SMTP_PARSE_VERB_COUNT; v++) {
		struct smtp_parse_cmd cmd;
		const char *name = smtp_parse_verb_name(
		    (enum smtp_parse_verb)v), *error = NULL;
		char line[64], lower[64];
		size_t i;

		snprintf(line, sizeof(line), "%s%s", name,
		    v == SMTP_PARSE_VERB_MAIL ? " FROM:<>" :
		    v == SMTP_PARSE_VERB_RCPT ? " TO:<a@b>" :
		    v == SMTP_PARSE_VERB_EHLO || v == SMTP_PARSE_VERB_HELO ||
		    v == SMTP_PARSE_VERB_BDAT || v == SMTP_PARSE_VERB_VRFY ||
		    v == SMTP_PARSE_VERB_EXPN || v == SMTP_PARSE_VERB_AUTH ||
		    v == SMTP_PARSE_VERB_ETRN ? " 1" : "");
		assert_int_equal(smtp_parse_command(line, strlen(line), &cmd,
		    &error), OK);
		assert_int_equal(cmd.verb, v);
		for (i = 0; line[i] != '\0'; i++)
			lower[i] = (char)(line[i] >= 'A' && line[i] <= 'Z' ?
			    line[i] - 'A' + 'a' : line[i]);
		lower[i] = '\0';
		assert_int_equal(smtp_parse_command(lower, strlen(lower), &cmd,
		    &error), OK);
		assert_int_equal(cmd.verb, v);
	}
}

/* test_flag_names - every flag bit has a name, and no others do */
static void
test_flag_names(void **state)
{
	unsigned i;

	(void)state;
	for (i = 0; i < SMTP_PARSE_PATH_FLAG_COUNT; i++)
		assert_non_null(smtp_parse_path_flag_name(1U << i));
	assert_null(smtp_parse_path_flag_name(1U <<
	    SMTP_PARSE_PATH_FLAG_COUNT));
	for (i = 0; i < SMTP_PARSE_HELO_FLAG_COUNT; i++)
		assert_non_null(smtp_parse_helo_flag_name(1U << i));
	assert_null(smtp_parse_helo_flag_name(1U <<
	    SMTP_PARSE_HELO_FLAG_COUNT));
	assert_null(smtp_parse_path_flag_name(3));
}

/* test_utf8_valid - RFC 3629 well-formedness at the edges */
static void
test_utf8_valid(void **state)
{
	static const struct { const char *s; size_t len; int ok; } t[] = {
		{ "", 0, 1 },
		{ "abc", 3, 1 },
		{ "\xc2\x80", 2, 1 },		/* U+0080 */
		{ "\xdf\xbf", 2, 1 },		/* U+07FF */
		{ "\xe0\xa0\x80", 3, 1 },	/* U+0800 */
		{ "\xed\x9f\xbf", 3, 1 },	/* U+D7FF */
		{ "\xee\x80\x80", 3, 1 },	/* U+E000 */
		{ "\xef\xbf\xbf", 3, 1 },	/* U+FFFF */
		{ "\xf0\x90\x80\x80", 4, 1 },	/* U+10000 */
		{ "\xf4\x8f\xbf\xbf", 4, 1 },	/* U+10FFFF */
		{ "\xc0\x80", 2, 0 },		/* overlong NUL */
		{ "\xc1\xbf", 2, 0 },		/* overlong */
		{ "\xe0\x9f\xbf", 3, 0 },	/* overlong */
		{ "\xf0\x8f\xbf\xbf", 4, 0 },	/* overlong */
		{ "\xed\xa0\x80", 3, 0 },	/* U+D800 */
		{ "\xed\xbf\xbf", 3, 0 },	/* U+DFFF */
		{ "\xf4\x90\x80\x80", 4, 0 },	/* U+110000 */
		{ "\xf5\x80\x80\x80", 4, 0 },
		{ "\xff", 1, 0 },
		{ "\x80", 1, 0 },
		{ "\xc3", 1, 0 },		/* truncated */
		{ "\xe2\x82", 2, 0 },		/* truncated */
		{ "\xe2\x28\xa1", 3, 0 },	/* bad continuation */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (smtp_parse_utf8_valid(t[i].s, t[i].len) != t[i].ok)
			fail_msg("utf8 row %zu: want %d", i, t[i].ok);
}

/* test_path_format_bounds - formatting never overruns a short buffer */
static void
test_path_format_bounds(void **state)
{
	struct smtp_parse_path p;
	const char *error = NULL;
	char out[8];

	(void)state;
	assert_int_equal(smtp_parse_path("<a@example.org>", 15, 0, &p,
	    &error), OK);
	assert_int_equal(smtp_parse_path_format(&p, out, sizeof(out)), -1);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_int_equal(smtp_parse_path("<>", 2, I_MAIL, &p, &error), OK);
	assert_int_equal(smtp_parse_path_format(&p, out, sizeof(out)), 2);
	assert_string_equal(out, "<>");
	/* the path parser stops at '>' and says how much it used */
	assert_int_equal(smtp_parse_path("<a@b.example> SIZE=1", 20, 0, &p,
	    &error), OK);
	assert_int_equal(p.len, 13);
}

/* case_name - a TAP-safe name for a table row */
static char *
case_name(const char *kind, size_t i, const char *in, size_t len,
    const char *want)
{
	char shown[48];
	size_t j, n = 0;
	char *name;

	for (j = 0; j < len && n + 4 < sizeof(shown); j++) {
		unsigned char c = (unsigned char)in[j];

		shown[n++] = (c < 0x20 || c >= 0x7f || c == '#') ? '_' :
		    (char)c;
	}
	if (j < len)
		shown[n++] = '~';
	shown[n] = '\0';
	name = xasprintf("%s %zu: '%s' -> %s", kind, i, shown, want);
	return name;
}

/* add_rows - one TAP case per row of a table */
#define ADD_ROWS(kind, table, fn) do {					\
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++, n++) {	\
		tests[n].name = case_name(kind, i, table[i].in,		\
		    table[i].len, smtp_parse_status_name(table[i].st));	\
		tests[n].test_func = fn;				\
		tests[n].initial_state = (void *)&table[i];		\
	}								\
} while (0)

/* main - one TAP case per table row, then the other tests */
int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_xtext_all_octets),
		cmocka_unit_test(test_xtext_bounds),
		cmocka_unit_test(test_status_table),
		cmocka_unit_test(test_verb_table),
		cmocka_unit_test(test_flag_names),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_path_format_bounds),
	};
	size_t nrows = sizeof(cmd_cases) / sizeof(cmd_cases[0]) +
	    sizeof(path_cases) / sizeof(path_cases[0]) +
	    sizeof(mail_cases) / sizeof(mail_cases[0]) +
	    sizeof(rcpt_cases) / sizeof(rcpt_cases[0]) +
	    sizeof(bdat_cases) / sizeof(bdat_cases[0]) +
	    sizeof(helo_cases) / sizeof(helo_cases[0]);
	size_t nx = sizeof(xtext_cases) / sizeof(xtext_cases[0]);
	size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	size_t n = 0, i;
	struct CMUnitTest *tests;
	int rc;

	tests = xcalloc(nrows + nx + nf, sizeof(*tests));
	ADD_ROWS("command", cmd_cases, test_cmd);
	ADD_ROWS("path", path_cases, test_path);
	ADD_ROWS("mail", mail_cases, test_mail);
	ADD_ROWS("rcpt", rcpt_cases, test_rcpt);
	ADD_ROWS("bdat", bdat_cases, test_bdat);
	ADD_ROWS("helo", helo_cases, test_helo);
	for (i = 0; i < nx; i++, n++) {
		tests[n].name = case_name("xtext", i, xtext_cases[i].in,
		    xtext_cases[i].len, xtext_cases[i].rc == 0 ? "ok" : "bad");
		tests[n].test_func = test_xtext;
		tests[n].initial_state = (void *)&xtext_cases[i];
	}
	for (i = 0; i < nf; i++, n++)
		tests[n] = fixed[i];
	rc = _cmocka_run_group_tests("test-smtp-parse", tests, n, NULL, NULL);
	for (i = 0; i < nrows + nx; i++)
		free((char *)tests[i].name);
	free(tests);
	return rc;
}
