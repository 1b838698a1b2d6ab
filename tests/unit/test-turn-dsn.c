/*
 * NAME
 *	test-turn-dsn - unit tests for turn/turn_dsn (DSN builder)
 * SYNOPSIS
 *	CMOCKA_MESSAGE_OUTPUT=TAP tests/unit/test-turn-dsn
 * DESCRIPTION
 *	Table-driven; each row is its own TAP case.
 *
 *	status rows give an SMTP reply and what turn_dsn_status_from_reply()
 *	returns and writes. notify rows give the NOTIFY bits of a recipient
 *	and whether turn_dsn_wanted() asks for a failure, a delay and a
 *	success DSN. refuse rows spoil one argument of a good DSN and give
 *	a part of the error turn_dsn_new() must return. build rows give a
 *	DSN's arguments and original, and texts its output must and must
 *	not contain; every output must also have CRLF lines of at most 998
 *	octets, no NUL, and no 8-bit octet unless turn_dsn_8bit() says so.
 *
 *	The other cases: a boundary that occurs in the original, or in a
 *	diagnostic, is replaced by one that does not; feeding the original
 *	one octet at a time gives the same DSN as feeding it whole; an
 *	original of exactly return_max octets is returned whole and one
 *	more is not; turn_dsn_finish() works once; turn_dsn_free() clears
 *	the pointer.
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
#include "turn_dsn.h"
#include "test-rows.h"

#define NRCPT_MAX	4
#define MUST_MAX	8
#define LINE_MAX_OCTETS	998

#define MSG	"From: a@example.com\r\nTo: b@example.org\r\n" \
		"Subject: hello\r\n\r\nbody line\r\n"

struct status_case {
	const char	*name;
	const char	*reply;
	int		 rc;
	const char	*out;
};

struct notify_case {
	const char	*name;
	unsigned	 notify;
	int		 failure, delay, success;
};

/* what a refuse row spoils in a good DSN */
enum spoil {
	SPOIL_NULL_SENDER, SPOIL_NO_RCPT, SPOIL_NULL_RCPTS, SPOIL_NO_MTA,
	SPOIL_BAD_MTA, SPOIL_SENDER_CRLF, SPOIL_RCPT_LF, SPOIL_STATUS_SHORT,
	SPOIL_STATUS_CLASS, SPOIL_ACTION, SPOIL_UTF8_SENDER, SPOIL_BAD_UTF8,
	SPOIL_NO_MSG, SPOIL_TIME, SPOIL_KIND, SPOIL_LONG_ADDR,
};

struct refuse_case {
	const char	*name;
	enum spoil	 spoil;
	const char	*err;
};

struct rcpt_row {
	const char	*addr, *orcpt, *action, *status, *diag, *last_error;
	const char	*remote;
	uint64_t	 last;
};

struct build_case {
	const char	*name;
	enum turn_dsn_kind kind;
	enum queue_ret	 ret;
	int		 smtputf8;
	const char	*sender;
	const char	*envid;
	uint64_t	 expires;
	size_t		 return_max;
	const char	*orig;		/* NULL: none fed */
	struct rcpt_row	 r[NRCPT_MAX];
	const char	*must[MUST_MAX];
	const char	*mustnot[MUST_MAX];
	enum turn_dsn_return returned;
	int		 eightbit, utf8;
};

static const struct status_case status_cases[] = {
	{ "enhanced", "550 5.1.1 no such user", 1, "5.1.1" },
	{ "multiline form", "550-5.1.1 no such user", 1, "5.1.1" },
	{ "temporary", "451 4.4.1 no answer", 1, "4.4.1" },
	{ "success", "250 2.0.0 Ok: queued", 1, "2.0.0" },
	{ "three-digit parts", "554 5.123.456 policy", 1, "5.123.456" },
	{ "code only", "550 5.7.1", 1, "5.7.1" },
	{ "tab after code", "552 5.2.2\tfull", 1, "5.2.2" },
	{ "no enhanced code", "550 no such user", 0, "5.0.0" },
	{ "bare reply code", "421", 0, "4.0.0" },
	{ "class mismatch", "550 4.1.1 odd", 0, "5.0.0" },
	{ "subject too long", "550 5.1234.1 x", 0, "5.0.0" },
	{ "detail too long", "550 5.1.1234 x", 0, "5.0.0" },
	{ "junk after code", "550 5.1.1x no", 0, "5.0.0" },
	{ "missing detail", "550 5.1 no", 0, "5.0.0" },
	{ "intermediate reply", "354 go ahead", -1, "" },
	{ "four digits", "5501 no", -1, "" },
	{ "not a reply", "connection refused", -1, "" },
	{ "empty", "", -1, "" },
	{ "NULL", NULL, -1, "" },
	{ "class 6", "650 6.1.1 x", -1, "" },
};

static const struct notify_case notify_cases[] = {
	{ "absent", 0, 1, 1, 0 },
	{ "NEVER", QUEUE_NOTIFY_NEVER, 0, 0, 0 },
	{ "SUCCESS", QUEUE_NOTIFY_SUCCESS, 0, 0, 1 },
	{ "FAILURE", QUEUE_NOTIFY_FAILURE, 1, 0, 0 },
	{ "DELAY", QUEUE_NOTIFY_DELAY, 0, 1, 0 },
	{ "SUCCESS,FAILURE", QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE,
	    1, 0, 1 },
	{ "FAILURE,DELAY", QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY,
	    1, 1, 0 },
	{ "SUCCESS,FAILURE,DELAY", QUEUE_NOTIFY_SUCCESS |
	    QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY, 1, 1, 1 },
	{ "NEVER with FAILURE is NEVER", QUEUE_NOTIFY_NEVER |
	    QUEUE_NOTIFY_FAILURE, 0, 0, 0 },
};

static const struct refuse_case refuse_cases[] = {
	{ "null sender", SPOIL_NULL_SENDER, "null sender" },
	{ "no recipients", SPOIL_NO_RCPT, "no recipient" },
	{ "NULL recipients", SPOIL_NULL_RCPTS, "no recipient" },
	{ "no reporting MTA", SPOIL_NO_MTA, "reporting MTA" },
	{ "reporting MTA with a space", SPOIL_BAD_MTA, "reporting MTA" },
	{ "CRLF in the sender", SPOIL_SENDER_CRLF, "control character" },
	{ "LF in a recipient", SPOIL_RCPT_LF, "control character" },
	{ "short status", SPOIL_STATUS_SHORT, "bad status" },
	{ "status of class 3", SPOIL_STATUS_CLASS, "bad status" },
	{ "unknown action", SPOIL_ACTION, "unknown action" },
	{ "UTF-8 sender without SMTPUTF8", SPOIL_UTF8_SENDER, "SMTPUTF8" },
	{ "invalid UTF-8 recipient", SPOIL_BAD_UTF8, "UTF-8" },
	{ "no message", SPOIL_NO_MSG, "no message" },
	{ "time past 9999", SPOIL_TIME, "time out of range" },
	{ "unknown kind", SPOIL_KIND, "kind" },
	{ "recipient address too long", SPOIL_LONG_ADDR, "longer than" },
};

static const struct build_case build_cases[] = {
	{ "failure returns the whole message", TURN_DSN_FAILURE,
	    QUEUE_RET_DEFAULT, 0, "s@example.com", NULL, 0, 0, MSG,
	    { { "u@example.org", NULL, NULL, NULL, "550 5.1.1 no such user",
	    NULL, "mx.example.org", 1700000100 } },
	    { "Content-Type: multipart/report; report-type=delivery-status;",
	    "\r\nAuto-Submitted: auto-replied\r\n",
	    "\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n",
	    "\r\nTo: <s@example.com>\r\n",
	    "Final-Recipient: rfc822; u@example.org\r\nAction: failed\r\n"
	    "Status: 5.1.1\r\nRemote-MTA: dns; mx.example.org\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
	    "Last-Attempt-Date: Tue, 14 Nov 2023 22:15:00 +0000\r\n",
	    "Content-Type: message/rfc822\r\n\r\n" MSG "\r\n--",
	    "Subject: Undelivered Mail Returned to Sender\r\n",
	    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n" },
	    { "Original-Recipient", "Original-Envelope-Id",
	    "Will-Retry-Until", "Content-Transfer-Encoding" },
	    TURN_DSN_RETURN_FULL, 0, 0 },
	{ "RET=HDRS returns the header section", TURN_DSN_FAILURE,
	    QUEUE_RET_HDRS, 0, "s@example.com", NULL, 0, 0, MSG,
	    { { "u@example.org", NULL, NULL, NULL, NULL, NULL, NULL, 0 } },
	    { "Content-Type: text/rfc822-headers\r\n\r\nFrom: a@example.com"
	    "\r\nTo: b@example.org\r\nSubject: hello\r\n\r\n--",
	    "RET=HDRS", "Status: 5.0.0\r\n" },
	    { "body line", "Diagnostic-Code", "Remote-MTA" },
	    TURN_DSN_RETURN_HEADERS, 0, 0 },
	{ "ENVID and ORCPT are decoded from xtext", TURN_DSN_FAILURE,
	    QUEUE_RET_FULL, 0, "s@example.com", "QQ+2B314159", 0, 0, MSG,
	    { { "u@example.org", "rfc822;o+2Bx@example.org", NULL, NULL,
	    "550 5.1.1 gone", NULL, NULL, 0 },
	    { "v@example.org", NULL, NULL, NULL, NULL, "550 5.2.1 disabled",
	    NULL, 0 } },
	    { "Original-Envelope-Id: QQ+314159\r\n",
	    "Original-Recipient: rfc822; o+x@example.org\r\n"
	    "Final-Recipient: rfc822; u@example.org\r\n",
	    "\r\n\r\nFinal-Recipient: rfc822; v@example.org\r\n",
	    "Diagnostic-Code: smtp; 550 5.2.1 disabled\r\n",
	    "Status: 5.2.1\r\n" },
	    { NULL }, TURN_DSN_RETURN_FULL, 0, 0 },
	{ "ENVID that is not xtext stays as stored", TURN_DSN_FAILURE,
	    QUEUE_RET_FULL, 0, "s@example.com", "a=b+ZZ", 0, 0, MSG,
	    { { "u@example.org", "rfc822;bad+0Dcr", NULL, NULL, NULL, NULL,
	    NULL, 0 } },
	    { "Original-Envelope-Id: a=b+ZZ\r\n",
	    "Original-Recipient: rfc822; bad+0Dcr\r\n" },
	    { NULL }, TURN_DSN_RETURN_FULL, 0, 0 },
	{ "delay warning", TURN_DSN_DELAY, QUEUE_RET_FULL, 0,
	    "s@example.com", NULL, 1700400000, 0, MSG,
	    { { "u@example.org", NULL, NULL, NULL, "451 4.4.1 no answer",
	    NULL, "mx.example.org", 0 } },
	    { "Subject: Delayed Mail (still being retried)\r\n",
	    "Action: delayed\r\nStatus: 4.4.1\r\n",
	    "Will-Retry-Until: Sun, 19 Nov 2023 13:20:00 +0000\r\n",
	    "Content-Type: text/rfc822-headers\r\n" },
	    { "body line", "message/rfc822" },
	    TURN_DSN_RETURN_HEADERS, 0, 0 },
	{ "success and relayed", TURN_DSN_SUCCESS, QUEUE_RET_FULL, 0,
	    "s@example.com", NULL, 0, 0, MSG,
	    { { "u@example.org", NULL, NULL, NULL, "250 2.0.0 Ok", NULL,
	    "mx.example.org", 0 },
	    { "v@example.org", NULL, "relayed", NULL, NULL, NULL, NULL, 0 } },
	    { "Subject: Successful Mail Delivery Report\r\n",
	    "Action: delivered\r\nStatus: 2.0.0\r\n",
	    "Action: relayed\r\nStatus: 2.0.0\r\n" },
	    { "Will-Retry-Until", "body line" },
	    TURN_DSN_RETURN_HEADERS, 0, 0 },
	{ "mixed outcomes in one failure DSN", TURN_DSN_FAILURE,
	    QUEUE_RET_DEFAULT, 0, "s@example.com", NULL, 1700400000, 0, MSG,
	    { { "u@example.org", NULL, NULL, NULL, "550 5.1.1 gone", NULL,
	    NULL, 0 },
	    { "v@example.org", NULL, "delayed", NULL, "452 4.2.2 full", NULL,
	    NULL, 0 },
	    { "w@example.org", NULL, "delivered", "2.1.5", NULL, NULL, NULL,
	    0 } },
	    { "Action: failed\r\nStatus: 5.1.1\r\n",
	    "Action: delayed\r\nStatus: 4.2.2\r\n",
	    "Will-Retry-Until: ",
	    "Action: delivered\r\nStatus: 2.1.5\r\n" },
	    { NULL }, TURN_DSN_RETURN_FULL, 0, 0 },
	{ "not an SMTP reply is X-odmrd", TURN_DSN_FAILURE,
	    QUEUE_RET_DEFAULT, 0, "s@example.com", NULL, 0, 0, MSG,
	    { { "u@example.org", NULL, NULL, NULL,
	    "message expired\r\nafter 5 days", NULL, NULL, 0 } },
	    { "Diagnostic-Code: X-odmrd; message expired after 5 days\r\n",
	    "Status: 5.0.0\r\n", "Reason: message expired" },
	    { NULL }, TURN_DSN_RETURN_FULL, 0, 0 },
	{ "no original: two parts", TURN_DSN_FAILURE, QUEUE_RET_DEFAULT,
	    0, "s@example.com", NULL, 0, 0, NULL,
	    { { "u@example.org", NULL, NULL, NULL, NULL, NULL, NULL, 0 } },
	    { "could not be attached" },
	    { "message/rfc822", "text/rfc822-headers" },
	    TURN_DSN_RETURN_NONE, 0, 0 },
	{ "too large: the header section only", TURN_DSN_FAILURE,
	    QUEUE_RET_FULL, 0, "s@example.com", NULL, 0, 20, MSG,
	    { { "u@example.org", NULL, NULL, NULL, NULL, NULL, NULL, 0 } },
	    { "larger than 20 octets", "text/rfc822-headers" },
	    { "body line" }, TURN_DSN_RETURN_HEADERS, 0, 0 },
	{ "8-bit body is returned 8bit", TURN_DSN_FAILURE,
	    QUEUE_RET_DEFAULT, 0, "s@example.com", NULL, 0, 0,
	    "Subject: x\r\n\r\ncaf\xc3\xa9\r\n",
	    { { "u@example.org", NULL, NULL, NULL, NULL, NULL, NULL, 0 } },
	    { "Content-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n",
	    "boundary=\"=_odmr_018F2A3B4C5D6E_0000000000000007_f0\"\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n" },
	    { "global" }, TURN_DSN_RETURN_FULL, 1, 0 },
	{ "LF line ends become CRLF", TURN_DSN_FAILURE, QUEUE_RET_DEFAULT,
	    0, "s@example.com", NULL, 0, 0, "Subject: x\n\nline\n",
	    { { "u@example.org", NULL, NULL, NULL, NULL, NULL, NULL, 0 } },
	    { "message/rfc822\r\n\r\nSubject: x\r\n\r\nline\r\n\r\n--" },
	    { NULL }, TURN_DSN_RETURN_FULL, 0, 0 },
	{ "a bare CR is not returned whole", TURN_DSN_FAILURE,
	    QUEUE_RET_DEFAULT, 0, "s@example.com", NULL, 0, 0,
	    "Subject: x\r\n\r\nline\rmore\r\n",
	    { { "u@example.org", NULL, NULL, NULL, NULL, NULL, NULL, 0 } },
	    { "could not be enclosed", "text/rfc822-headers" },
	    { "line\rmore", "line more" }, TURN_DSN_RETURN_HEADERS, 0, 0 },
	{ "SMTPUTF8 with a UTF-8 address: global types", TURN_DSN_FAILURE,
	    QUEUE_RET_DEFAULT, 1, "s\xc3\xa9@example.com", NULL, 0, 0, MSG,
	    { { "j\xc3\xb6+x@example.org", NULL, NULL, NULL, NULL, NULL,
	    NULL, 0 } },
	    { "report-type=global-delivery-status",
	    "Content-Type: message/global-delivery-status\r\n",
	    "Final-Recipient: utf-8; j\xc3\xb6\\x{2B}x@example.org\r\n",
	    "\r\nTo: <s\xc3\xa9@example.com>\r\n",
	    "Content-Type: message/global\r\n",
	    "text/plain; charset=utf-8" },
	    { NULL }, TURN_DSN_RETURN_FULL, 1, 1 },
	{ "SMTPUTF8 but all ASCII: plain types", TURN_DSN_FAILURE,
	    QUEUE_RET_DEFAULT, 1, "s@example.com", NULL, 0, 0, MSG,
	    { { "u@example.org", NULL, NULL, NULL, NULL, NULL, NULL, 0 } },
	    { "report-type=delivery-status", "message/rfc822" },
	    { "global" }, TURN_DSN_RETURN_FULL, 0, 0 },
	{ "UTF-8 header with SMTPUTF8: global headers", TURN_DSN_DELAY,
	    QUEUE_RET_DEFAULT, 1, "s@example.com", NULL, 0, 0,
	    "Subject: caf\xc3\xa9\r\n\r\nx\r\n",
	    { { "u@example.org", NULL, NULL, NULL, NULL, NULL, NULL, 0 } },
	    { "Content-Type: message/global-headers\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n",
	    "report-type=global-delivery-status" },
	    { NULL }, TURN_DSN_RETURN_HEADERS, 1, 1 },
	{ "UTF-8 recipient without SMTPUTF8: utf-8-addr-xtext",
	    TURN_DSN_FAILURE, QUEUE_RET_HDRS, 0, "s@example.com", NULL, 0, 0,
	    MSG, { { "j\xc3\xb6@example.org", NULL, NULL, NULL, NULL, NULL,
	    NULL, 0 } },
	    { "Final-Recipient: utf-8; j\\x{F6}@example.org\r\n",
	    "<j\\x{F6}@example.org>: delivery failed" },
	    { "global" }, TURN_DSN_RETURN_HEADERS, 0, 0 },
};

/* check_lines - CRLF only, lines <= 998, no NUL; 7-bit unless allowed */
static void
check_lines(const struct buf *b, int eightbit)
{
	size_t i, col = 0;

	for (i = 0; i < b->len; i++) {
		unsigned char c = b->data[i];

		assert_int_not_equal(c, '\0');
		if (!eightbit)
			assert_true(c < 0x80);
		if (c == '\r') {
			assert_true(i + 1 < b->len && b->data[i + 1] == '\n');
			continue;
		}
		if (c == '\n') {
			assert_true(i > 0 && b->data[i - 1] == '\r');
			col = 0;
			continue;
		}
		col++;
		assert_true(col <= LINE_MAX_OCTETS);
	}
	assert_true(b->len >= 2 && b->data[b->len - 1] == '\n');
}

/* test_status - one status row */
static void
test_status(void **state)
{
	const struct status_case *c = *state;
	char out[TURN_DSN_STATUS_LEN];

	memset(out, 'x', sizeof(out));
	assert_int_equal(turn_dsn_status_from_reply(c->reply, out), c->rc);
	assert_string_equal(out, c->out);
}

/* test_notify - one NOTIFY row, for each kind */
static void
test_notify(void **state)
{
	const struct notify_case *c = *state;
	struct queue_rcpt r;

	memset(&r, 0, sizeof(r));
	r.addr = "u@example.org";
	r.notify = c->notify;
	assert_int_equal(turn_dsn_wanted(&r, TURN_DSN_FAILURE), c->failure);
	assert_int_equal(turn_dsn_wanted(&r, TURN_DSN_DELAY), c->delay);
	assert_int_equal(turn_dsn_wanted(&r, TURN_DSN_SUCCESS), c->success);
}

/* good_args - a DSN turn_dsn_new() accepts */
static void
good_args(struct turn_dsn_params *p, struct queue_msg *m,
    struct queue_rcpt *qr, struct turn_dsn_rcpt *dr)
{
	memset(p, 0, sizeof(*p));
	memset(m, 0, sizeof(*m));
	memset(qr, 0, sizeof(*qr));
	memset(dr, 0, sizeof(*dr));
	m->sender = "s@example.com";
	memcpy(m->id, "018F2A3B4C5D6E", QUEUE_ID_LEN + 1);
	m->arrival = 1700000000;
	qr->addr = "u@example.org";
	dr->rcpt = qr;
	p->reporting_mta = "mx.example.net";
	p->msg = m;
	p->kind = TURN_DSN_FAILURE;
	p->rcpts = dr;
	p->nrcpt = 1;
	p->now = 1700003600;
	p->nonce = 7;
}

/* test_refuse - one refuse row: NULL and the error */
static void
test_refuse(void **state)
{
	const struct refuse_case *c = *state;
	struct turn_dsn_params p;
	struct queue_msg m;
	struct queue_rcpt qr;
	struct turn_dsn_rcpt dr;
	struct turn_dsn *d;
	const char *error = NULL;
	char *longaddr = NULL;

	good_args(&p, &m, &qr, &dr);
	/* the good arguments build */
	d = turn_dsn_new(&p, &error);
	assert_non_null(d);
	turn_dsn_free(&d);
	assert_null(d);

	switch (c->spoil) {
	case SPOIL_NULL_SENDER: m.sender = ""; break;
	case SPOIL_NO_RCPT: p.nrcpt = 0; break;
	case SPOIL_NULL_RCPTS: p.rcpts = NULL; break;
	case SPOIL_NO_MTA: p.reporting_mta = NULL; break;
	case SPOIL_BAD_MTA: p.reporting_mta = "mx example"; break;
	case SPOIL_SENDER_CRLF: m.sender = "s@x\r\nBcc: v@y"; break;
	case SPOIL_RCPT_LF: qr.addr = "u@x\n"; break;
	case SPOIL_STATUS_SHORT: dr.status = "5.1"; break;
	case SPOIL_STATUS_CLASS: dr.status = "3.1.1"; break;
	case SPOIL_ACTION: dr.action = "bounced"; break;
	case SPOIL_UTF8_SENDER: m.sender = "s\xc3\xa9@example.com"; break;
	case SPOIL_BAD_UTF8: m.smtputf8 = 1; qr.addr = "u\xc3@x"; break;
	case SPOIL_NO_MSG: p.msg = NULL; break;
	case SPOIL_TIME: p.now = UINT64_C(300000000000); break;
	case SPOIL_KIND: p.kind = (enum turn_dsn_kind)7; break;
	case SPOIL_LONG_ADDR:
		longaddr = xmalloc(2000);
		memset(longaddr, 'a', 1999);
		longaddr[1999] = '\0';
		qr.addr = longaddr;
		break;
	}
	error = NULL;
	d = turn_dsn_new(&p, &error);
	assert_null(d);
	assert_non_null(error);
	assert_non_null(strstr(error, c->err));
	assert_null(strchr(error, '\n'));
	free(longaddr);
}

/* build - a DSN from a build row; the builder stays for its flags */
static struct turn_dsn *
build(const struct build_case *c, struct buf *out)
{
	struct queue_rcpt qr[NRCPT_MAX];
	struct turn_dsn_rcpt dr[NRCPT_MAX];
	struct turn_dsn_params p;
	struct queue_msg m;
	struct turn_dsn *d;
	const char *error = NULL;
	size_t i, n = 0;

	memset(qr, 0, sizeof(qr));
	memset(dr, 0, sizeof(dr));
	memset(&p, 0, sizeof(p));
	memset(&m, 0, sizeof(m));
	memcpy(m.id, "018F2A3B4C5D6E", QUEUE_ID_LEN + 1);
	m.sender = (char *)c->sender;
	m.envid = (char *)c->envid;
	m.ret = c->ret;
	m.smtputf8 = c->smtputf8;
	m.arrival = 1700000000;
	for (i = 0; i < NRCPT_MAX && c->r[i].addr != NULL; i++, n++) {
		qr[i].addr = (char *)c->r[i].addr;
		qr[i].orcpt = (char *)c->r[i].orcpt;
		qr[i].last_error = (char *)c->r[i].last_error;
		dr[i].rcpt = &qr[i];
		dr[i].action = c->r[i].action;
		dr[i].status = c->r[i].status;
		dr[i].diagnostic = c->r[i].diag;
		dr[i].remote_mta = c->r[i].remote;
		dr[i].last_attempt = c->r[i].last;
	}
	p.reporting_mta = "mx.example.net";
	p.msg = &m;
	p.kind = c->kind;
	p.rcpts = dr;
	p.nrcpt = n;
	p.now = 1700003600;
	p.expires = c->expires;
	p.return_max = c->return_max;
	p.nonce = 7;
	d = turn_dsn_new(&p, &error);
	if (d == NULL)
		fail_msg("turn_dsn_new: %s", error);
	/* the caller's message and recipients may go now */
	memset(qr, 0, sizeof(qr));
	memset(&m, 0, sizeof(m));
	if (c->orig != NULL &&
	    turn_dsn_original(d, c->orig, strlen(c->orig), &error) == -1)
		fail_msg("turn_dsn_original: %s", error);
	if (turn_dsn_finish(d, out, &error) == -1)
		fail_msg("turn_dsn_finish: %s", error);
	return d;
}

/* test_build - one build row */
static void
test_build(void **state)
{
	const struct build_case *c = *state;
	struct turn_dsn *d;
	struct buf out;
	size_t i;

	buf_init(&out);
	d = build(c, &out);
	check_lines(&out, turn_dsn_8bit(d));
	for (i = 0; i < MUST_MAX && c->must[i] != NULL; i++)
		if (strstr(buf_str(&out), c->must[i]) == NULL)
			fail_msg("missing \"%s\" in:\n%s", c->must[i],
			    buf_str(&out));
	for (i = 0; i < MUST_MAX && c->mustnot[i] != NULL; i++)
		if (strstr(buf_str(&out), c->mustnot[i]) != NULL)
			fail_msg("unwanted \"%s\" in:\n%s", c->mustnot[i],
			    buf_str(&out));
	assert_int_equal(turn_dsn_returned(d), c->returned);
	assert_int_equal(turn_dsn_8bit(d), c->eightbit);
	assert_int_equal(turn_dsn_smtputf8(d), c->utf8);
	turn_dsn_free(&d);
	assert_null(d);
	buf_release(&out);
}

/* boundary_of - the boundary of a DSN of the first build row */
static char *
boundary_of(const char *orig, const char *diag, struct buf *out)
{
	struct build_case c = build_cases[0];
	struct turn_dsn *d;
	char *b;

	c.orig = orig;
	if (diag != NULL)
		c.r[0].diag = diag;
	buf_reset(out);
	d = build(&c, out);
	b = xstrdup(turn_dsn_boundary(d));
	turn_dsn_free(&d);
	return b;
}

/* test_boundary - a boundary found in the parts is never used */
static void
test_boundary(void **state)
{
	struct buf out, orig;
	char *b[4], *bd;
	size_t i, j;

	(void)state;
	buf_init(&out);
	buf_init(&orig);
	b[0] = boundary_of(MSG, NULL, &out);
	assert_true(strlen(b[0]) > 0 && strlen(b[0]) <= 70);
	/* an original holding each boundary chosen so far, as MIME would */
	for (i = 1; i < 4; i++) {
		buf_reset(&orig);
		buf_puts(&orig, "Subject: x\r\nContent-Type: multipart/mixed;"
		    " boundary=x\r\n\r\n");
		for (j = 0; j < i; j++)
			buf_printf(&orig, "--%s\r\nline\r\n--%s--\r\n", b[j],
			    b[j]);
		b[i] = boundary_of(buf_str(&orig), NULL, &out);
		for (j = 0; j < i; j++)
			assert_string_not_equal(b[i], b[j]);
		assert_null(strstr(buf_str(&orig), b[i]));
		check_lines(&out, 0);
		/* the original comes back whole all the same */
		assert_non_null(strstr(buf_str(&out), buf_str(&orig)));
	}
	/* a diagnostic is a part's text too */
	buf_reset(&orig);
	buf_printf(&orig, "550 5.1.1 see --%s", b[0]);
	bd = boundary_of(MSG, buf_str(&orig), &out);
	assert_string_not_equal(bd, b[0]);
	for (i = 0; i < 4; i++)
		free(b[i]);
	free(bd);
	buf_release(&out);
	buf_release(&orig);
}

/* test_chunks - octet by octet gives what one piece gives */
static void
test_chunks(void **state)
{
	static const char orig[] = "From: a@example.com\r\nSubject: x\r\n"
	    "\r\nline 1\r\nline 2\r\n";
	struct buf whole, bytes;
	struct queue_rcpt qr;
	struct turn_dsn_rcpt dr;
	struct turn_dsn_params p;
	struct queue_msg m;
	struct turn_dsn *d;
	const char *error = NULL;
	size_t i, k;

	(void)state;
	buf_init(&whole);
	buf_init(&bytes);
	for (k = 0; k < 2; k++) {
		struct buf *out = k == 0 ? &whole : &bytes;
		enum queue_ret ret[] = { QUEUE_RET_FULL, QUEUE_RET_HDRS };
		size_t r;

		for (r = 0; r < 2; r++) {
			good_args(&p, &m, &qr, &dr);
			m.ret = ret[r];
			d = turn_dsn_new(&p, &error);
			assert_non_null(d);
			if (k == 0)
				assert_int_equal(turn_dsn_original(d, orig,
				    sizeof(orig) - 1, &error), 0);
			else
				for (i = 0; i < sizeof(orig) - 1; i++)
					assert_int_equal(turn_dsn_original(d,
					    orig + i, 1, &error), 0);
			assert_int_equal(turn_dsn_finish(d, out, &error), 0);
			turn_dsn_free(&d);
		}
	}
	assert_int_equal(whole.len, bytes.len);
	assert_memory_equal(whole.data, bytes.data, whole.len);
	buf_release(&whole);
	buf_release(&bytes);
}

/* test_return_max - exactly return_max octets come back whole */
static void
test_return_max(void **state)
{
	struct queue_rcpt qr;
	struct turn_dsn_rcpt dr;
	struct turn_dsn_params p;
	struct queue_msg m;
	struct turn_dsn *d;
	const char *error = NULL;
	struct buf out;
	size_t extra;

	(void)state;
	buf_init(&out);
	for (extra = 0; extra < 2; extra++) {
		good_args(&p, &m, &qr, &dr);
		p.return_max = strlen(MSG) - 1 + extra;
		d = turn_dsn_new(&p, &error);
		assert_non_null(d);
		assert_int_equal(turn_dsn_original(d, MSG, strlen(MSG),
		    &error), 0);
		assert_int_equal(turn_dsn_finish(d, &out, &error), 0);
		assert_int_equal(turn_dsn_returned(d), extra ?
		    TURN_DSN_RETURN_FULL : TURN_DSN_RETURN_HEADERS);
		turn_dsn_free(&d);
	}
	buf_release(&out);
}

/* test_once - finish once; nothing is fed after it */
static void
test_once(void **state)
{
	struct queue_rcpt qr;
	struct turn_dsn_rcpt dr;
	struct turn_dsn_params p;
	struct queue_msg m;
	struct turn_dsn *d;
	const char *error = NULL;
	struct buf out;
	size_t len;

	(void)state;
	buf_init(&out);
	good_args(&p, &m, &qr, &dr);
	d = turn_dsn_new(&p, &error);
	assert_non_null(d);
	assert_int_equal(turn_dsn_8bit(d), 0);
	assert_string_equal(turn_dsn_boundary(d), "");
	assert_int_equal(turn_dsn_finish(d, &out, &error), 0);
	len = out.len;
	assert_int_equal(turn_dsn_finish(d, &out, &error), -1);
	assert_non_null(strstr(error, "finished"));
	assert_int_equal(turn_dsn_original(d, "x", 1, &error), -1);
	assert_int_equal(out.len, len);
	turn_dsn_free(&d);
	assert_null(d);
	turn_dsn_free(&d);		/* NULL is fine */
	assert_string_equal(turn_dsn_kind_name(TURN_DSN_DELAY), "delay");
	assert_string_equal(turn_dsn_return_name(TURN_DSN_RETURN_FULL),
	    "full");
	buf_release(&out);
}

/* main - one TAP case per table row, then the other tests */
int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_boundary),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_return_max),
		cmocka_unit_test(test_once),
	};
	size_t nrows = sizeof(status_cases) / sizeof(status_cases[0]) +
	    sizeof(notify_cases) / sizeof(notify_cases[0]) +
	    sizeof(refuse_cases) / sizeof(refuse_cases[0]) +
	    sizeof(build_cases) / sizeof(build_cases[0]);
	size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	size_t n = 0, i;
	struct CMUnitTest *tests;
	int rc;

	tests = xcalloc(nrows + nf, sizeof(*tests));
	ADD_ROWS("status", status_cases, test_status);
	ADD_ROWS("notify", notify_cases, test_notify);
	ADD_ROWS("refuse", refuse_cases, test_refuse);
	ADD_ROWS("build", build_cases, test_build);
	for (i = 0; i < nf; i++, n++)
		tests[n] = fixed[i];
	rc = _cmocka_run_group_tests("test-turn-dsn", tests, n, NULL, NULL);
	for (i = 0; i < nrows; i++)
		free((char *)tests[i].name);
	free(tests);
	return rc;
}
