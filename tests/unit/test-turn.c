/*
 * NAME
 *	test-turn - unit tests for turn/turn_proto
 * SYNOPSIS
 *	CMOCKA_MESSAGE_OUTPUT=TAP tests/unit/test-turn
 * DESCRIPTION
 *	Table-driven; each row is its own TAP case.
 *
 *	reply rows feed reply lines to turn_proto_reply_line() and give
 *	the status after each line, then the code and the kept text.
 *	ext rows feed the lines of an EHLO reply after the first to
 *	turn_proto_ext_line() and give the flags and SIZE found.
 *	mail and rcpt rows give an envelope and the customer's extensions,
 *	and the exact command line (or NULL when it must be refused).
 *	stuff rows give a message and its exact DATA text; each is fed
 *	whole, one octet at a time and split at every point into two, each
 *	piece a heap copy of its own size so the sanitizers see any read
 *	past it.
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
#include "xmalloc.h"

#include "queue.h"
#include "turn_proto.h"
#include "test-rows.h"

#define E(x)	TURN_PROTO_EXT_##x
#define MAXL	12

struct reply_case {
	const char	*name;
	const char	*lines[MAXL];
	enum turn_proto_status status[MAXL];
	unsigned	 code;
	const char	*text;
};

static const struct reply_case reply_cases[] = {
	{ "one line", { "250 2.0.0 Ok" }, { TURN_PROTO_DONE }, 250,
	    "250 2.0.0 Ok" },
	{ "code only", { "354" }, { TURN_PROTO_DONE }, 354, "354" },
	{ "multiline", { "250-mx.test", "250-PIPELINING", "250 SIZE 10" },
	    { TURN_PROTO_MORE, TURN_PROTO_MORE, TURN_PROTO_DONE }, 250,
	    "250 mx.test PIPELINING SIZE 10" },
	{ "empty last line (smtp-sink)", { "250-a", "250 " },
	    { TURN_PROTO_MORE, TURN_PROTO_DONE }, 250, "250 a" },
	{ "code changes", { "250-a", "251 b" },
	    { TURN_PROTO_MORE, TURN_PROTO_BAD }, 0, NULL },
	{ "not a reply", { "hello" }, { TURN_PROTO_BAD }, 0, NULL },
	{ "bad separator", { "250_x" }, { TURN_PROTO_BAD }, 0, NULL },
	{ "code 600", { "600 x" }, { TURN_PROTO_BAD }, 0, NULL },
	{ "too short", { "25" }, { TURN_PROTO_BAD }, 0, NULL },
	{ "controls and quotes made printable",
	    { "550 a\"b\\c\td\x7f" }, { TURN_PROTO_DONE }, 550,
	    "550 a'b/c d " },
};

struct ext_case {
	const char	*name;
	const char	*lines[MAXL];
	unsigned	 flags;
	uint64_t	 size;
};

static const struct ext_case ext_cases[] = {
	{ "none", { NULL }, 0, 0 },
	{ "everything", { "PIPELINING", "8BITMIME", "BINARYMIME", "CHUNKING",
	    "SMTPUTF8", "DSN", "SIZE 52428800", "STARTTLS",
	    "ENHANCEDSTATUSCODES" }, E(PIPELINING) | E(8BITMIME) |
	    E(BINARYMIME) | E(CHUNKING) | E(SMTPUTF8) | E(DSN) | E(SIZE) |
	    E(STARTTLS) | E(ENHANCED), 52428800 },
	{ "case and junk", { "pipelining", "Size", "AUTH PLAIN LOGIN",
	    "XCLIENT NAME", "", "PIPELININGX", "8BITMIMEVERYLONGKEYWORDTHATGOESON" },
	    E(PIPELINING) | E(SIZE), 0 },
	{ "SIZE 0 means no limit", { "SIZE 0" }, E(SIZE), 0 },
	{ "SIZE=n (old form)", { "SIZE=1000" }, E(SIZE), 1000 },
};

struct mail_case {
	const char	*name;
	const char	*sender;
	uint64_t	 size;
	enum queue_body_type body;
	int		 smtputf8;
	enum queue_ret	 ret;
	const char	*envid;
	unsigned	 ext;
	const char	*want;
};

static const struct mail_case mail_cases[] = {
	{ "plain", "a@b.test", 10, QUEUE_BODY_7BIT, 0, QUEUE_RET_DEFAULT,
	    NULL, 0, "MAIL FROM:<a@b.test>\r\n" },
	{ "null sender", "", 10, QUEUE_BODY_7BIT, 0, QUEUE_RET_DEFAULT, NULL,
	    0, "MAIL FROM:<>\r\n" },
	{ "everything offered", "a@b.test", 10, QUEUE_BODY_8BITMIME, 1,
	    QUEUE_RET_HDRS, "X+2B", E(SIZE) | E(8BITMIME) | E(SMTPUTF8) |
	    E(DSN), "MAIL FROM:<a@b.test> SIZE=10 BODY=8BITMIME SMTPUTF8"
	    " RET=HDRS ENVID=X+2B\r\n" },
	{ "nothing offered", "a@b.test", 10, QUEUE_BODY_8BITMIME, 1,
	    QUEUE_RET_FULL, "X", 0, "MAIL FROM:<a@b.test>\r\n" },
	{ "binarymime", "a@b.test", 7, QUEUE_BODY_BINARYMIME, 0,
	    QUEUE_RET_FULL, NULL, E(BINARYMIME) | E(CHUNKING) | E(DSN),
	    "MAIL FROM:<a@b.test> BODY=BINARYMIME RET=FULL\r\n" },
	{ "7bit has no BODY", "a@b.test", 7, QUEUE_BODY_7BIT, 0,
	    QUEUE_RET_DEFAULT, NULL, E(8BITMIME),
	    "MAIL FROM:<a@b.test>\r\n" },
	{ "CRLF in the sender", "a@b\r\nRCPT TO:<x@y>", 7, QUEUE_BODY_7BIT,
	    0, QUEUE_RET_DEFAULT, NULL, 0, NULL },
	{ "space in ENVID", "a@b.test", 7, QUEUE_BODY_7BIT, 0,
	    QUEUE_RET_DEFAULT, "a b", E(DSN), NULL },
};

struct rcpt_case {
	const char	*name;
	const char	*addr;
	unsigned	 notify;
	const char	*orcpt;
	unsigned	 ext;
	const char	*want;
};

static const struct rcpt_case rcpt_cases[] = {
	{ "plain", "u@example.org", 0, NULL, E(DSN),
	    "RCPT TO:<u@example.org>\r\n" },
	{ "DSN", "u@example.org", QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_DELAY,
	    "rfc822;u@example.org", E(DSN), "RCPT TO:<u@example.org>"
	    " NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u@example.org\r\n" },
	{ "NEVER", "u@example.org", QUEUE_NOTIFY_NEVER, NULL, E(DSN),
	    "RCPT TO:<u@example.org> NOTIFY=NEVER\r\n" },
	{ "no DSN offered", "u@example.org", QUEUE_NOTIFY_FAILURE,
	    "rfc822;u@example.org", E(PIPELINING),
	    "RCPT TO:<u@example.org>\r\n" },
	{ "quoted local part", "\"a b\"@example.org", 0, NULL, 0,
	    "RCPT TO:<\"a b\"@example.org>\r\n" },
	{ "LF in the address", "u@example.org\nDATA", 0, NULL, 0, NULL },
};

struct stuff_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	const char	*want;
	size_t		 wantlen;
};

#define S(name, in, want)	{ name, in, sizeof(in) - 1, want, sizeof(want) - 1 }
static const struct stuff_case stuff_cases[] = {
	S("empty", "", ".\r\n"),
	S("one line", "a\r\n", "a\r\n.\r\n"),
	S("no final CRLF", "a", "a\r\n.\r\n"),
	S("leading dots", ".a\r\n..b\r\n.\r\nc.\r\n",
	    "..a\r\n...b\r\n..\r\nc.\r\n.\r\n"),
	S("dot first", ".", "..\r\n.\r\n"),
	S("bare LF becomes CRLF", "a\nb\n.c\n", "a\r\nb\r\n..c\r\n.\r\n"),
	S("bare CR passes, no line start", "a\r.b\r\n", "a\r.b\r\n.\r\n"),
	S("trailing CR", "a\r", "a\r\n.\r\n"),
	S("CR CR LF", "a\r\r\n.x\r\n", "a\r\r\n..x\r\n.\r\n"),
	S("NUL and 8-bit", "\0\xff\r\n.\0\r\n", "\0\xff\r\n..\0\r\n.\r\n"),
};

/* test_reply - one reply row */
static void
test_reply(void **state)
{
	const struct reply_case *c = *state;
	struct turn_proto_reply r;
	enum turn_proto_status st = TURN_PROTO_MORE;
	const char *text, *err;
	size_t i;

	turn_proto_reply_reset(&r);
	for (i = 0; i < MAXL && c->lines[i] != NULL; i++) {
		char *line = xstrdup(c->lines[i]);

		st = turn_proto_reply_line(&r, line, strlen(line), &text,
		    &err);
		free(line);
		if (st != c->status[i])
			fail_msg("line %zu: status %d, want %d", i, st,
			    c->status[i]);
		if (st == TURN_PROTO_BAD)
			return;
	}
	assert_int_equal(st, TURN_PROTO_DONE);
	assert_int_equal(r.code, c->code);
	assert_string_equal(r.text, c->text);
}

/* test_ext - one EHLO row */
static void
test_ext(void **state)
{
	const struct ext_case *c = *state;
	struct turn_proto_ext ext = { 0, 0 };
	char shown[256];
	size_t i;

	for (i = 0; i < MAXL && c->lines[i] != NULL; i++)
		turn_proto_ext_line(&ext, c->lines[i]);
	assert_int_equal(ext.flags, c->flags);
	assert_int_equal(ext.size, c->size);
	turn_proto_ext_format(&ext, shown, sizeof(shown));
	assert_true(shown[0] != '\0');
}

/* test_mail - one MAIL row */
static void
test_mail(void **state)
{
	const struct mail_case *c = *state;
	struct turn_proto_ext ext = { c->ext, 0 };
	struct buf b;
	int rc;

	buf_init(&b);
	rc = turn_proto_mail_cmd(&b, c->sender, c->size, c->body,
	    c->smtputf8, c->ret, c->envid, &ext);
	if (c->want == NULL) {
		assert_int_equal(rc, -1);
		assert_int_equal(b.len, 0);
	} else {
		assert_int_equal(rc, 0);
		assert_string_equal(buf_str(&b), c->want);
	}
	buf_release(&b);
}

/* test_rcpt - one RCPT row */
static void
test_rcpt(void **state)
{
	const struct rcpt_case *c = *state;
	struct turn_proto_ext ext = { c->ext, 0 };
	struct buf b;
	int rc;

	buf_init(&b);
	rc = turn_proto_rcpt_cmd(&b, c->addr, c->notify, c->orcpt, &ext);
	if (c->want == NULL) {
		assert_int_equal(rc, -1);
		assert_int_equal(b.len, 0);
	} else {
		assert_int_equal(rc, 0);
		assert_string_equal(buf_str(&b), c->want);
	}
	buf_release(&b);
}

/* stuff_pieces - feed in pieces cut at cuts[], compare with want */
static void
stuff_pieces(const struct stuff_case *c, const size_t *cuts, size_t ncuts)
{
	struct turn_proto_stuff st;
	struct buf out;
	size_t from = 0, i;

	buf_init(&out);
	turn_proto_stuff_init(&st);
	for (i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : c->inlen;
		char *piece = xmalloc(to - from + 1);

		memcpy(piece, c->in + from, to - from);
		turn_proto_stuff_feed(&st, piece, to - from, &out);
		free(piece);
		from = to;
	}
	turn_proto_stuff_end(&st, &out);
	if (out.len != c->wantlen || memcmp(out.data, c->want, c->wantlen) != 0)
		fail_msg("got \"%s\" (%zu octets)", buf_str(&out), out.len);
	buf_release(&out);
}

/* test_stuff - one DATA text row, whole, by octet, and split in two */
static void
test_stuff(void **state)
{
	const struct stuff_case *c = *state;
	size_t *cuts = xcalloc(c->inlen + 1, sizeof(*cuts));
	size_t i;

	stuff_pieces(c, NULL, 0);
	for (i = 0; i < c->inlen; i++)
		cuts[i] = i + 1;
	if (c->inlen > 0)
		stuff_pieces(c, cuts, c->inlen - 1);
	for (i = 0; i <= c->inlen; i++) {
		cuts[0] = i;
		stuff_pieces(c, cuts, 1);
	}
	free(cuts);
}

#define NROWS(t)	(sizeof(t) / sizeof(t[0]))

/* main - one TAP case per table row */
int
main(void)
{
	size_t nrows = NROWS(reply_cases) + NROWS(ext_cases) +
	    NROWS(mail_cases) + NROWS(rcpt_cases) + NROWS(stuff_cases);
	struct CMUnitTest *tests = xcalloc(nrows, sizeof(*tests));
	size_t n = 0, i;
	int rc;

	ADD_ROWS("reply", reply_cases, test_reply);
	ADD_ROWS("ext", ext_cases, test_ext);
	ADD_ROWS("mail", mail_cases, test_mail);
	ADD_ROWS("rcpt", rcpt_cases, test_rcpt);
	ADD_ROWS("stuff", stuff_cases, test_stuff);
	rc = _cmocka_run_group_tests("test-turn", tests, n, NULL, NULL);
	for (i = 0; i < n; i++)
		free((char *)tests[i].name);
	free(tests);
	return rc;
}
