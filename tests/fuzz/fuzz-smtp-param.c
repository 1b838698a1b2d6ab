/*
 * NAME
 *	fuzz-smtp-param - libFuzzer target for ESMTP parameters and xtext
 * SYNOPSIS
 *	tests/fuzz/fuzz-smtp-param [libFuzzer options] CORPUS...
 * DESCRIPTION
 *	The first input octet picks the parser, the rest is its input:
 *	0 MAIL parameters, 1 RCPT parameters, 2 xtext, 3 BDAT arguments.
 *	Checks, beyond not crashing: accepted MAIL and RCPT parameters,
 *	written back out in canonical form, parse to the same structure;
 *	stored ENVID, AUTH and ORCPT values are valid xtext within their
 *	RFC limits; NOTIFY=NEVER stands alone; for any octets x,
 *	decode(encode(x)) == x, and a valid xtext decodes to the same
 *	octets through the fixed-buffer and the struct buf decoders; an
 *	accepted BDAT size prints back to the same value. Built with
 *	--enable-fuzzer this is a libFuzzer binary; otherwise fuzz-main.c
 *	replays the corpus.
 */
#include "config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "queue.h"
#include "smtp_parse.h"

#define FUZZ_XTEXT_MAX	4096	/* octets of raw input worth encoding */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check_text - a reply text: present and one line */
static void
check_text(const char *error)
{
	if (error == NULL || *error == '\0' || strchr(error, '\n') != NULL)
		abort();
}

/* fuzz_mail - parse, write back canonically, parse again */
static void
fuzz_mail(const char *s, size_t len)
{
	static const char *const bodies[] = { "7BIT", "8BITMIME",
	    "BINARYMIME" };
	static const char *const rets[] = { "", "FULL", "HDRS" };
	struct smtp_parse_mail_params p, again;
	const char *error = NULL;
	struct buf b;

	if (smtp_parse_mail_params(s, len, &p, &error) != SMTP_PARSE_OK) {
		check_text(error);
		if (p.seen != 0)
			abort();
		return;
	}
	if (strlen(p.envid) > SMTP_PARSE_ENVID_MAX ||
	    !smtp_xtext_valid(p.envid, strlen(p.envid)) ||
	    strlen(p.auth) > SMTP_PARSE_AUTH_MAX ||
	    !smtp_xtext_valid(p.auth, strlen(p.auth)))
		abort();
	if (p.size_overflow && p.size != UINT64_MAX)
		abort();
	if ((unsigned)p.body > QUEUE_BODY_BINARYMIME ||
	    (unsigned)p.ret > QUEUE_RET_HDRS)
		abort();
	buf_init(&b);
	if (p.seen & SMTP_PARSE_MAIL_SIZE) {
		if (p.size_overflow)
			buf_puts(&b, " SIZE=99999999999999999999");
		else
			buf_printf(&b, " SIZE=%" PRIu64, p.size);
	}
	if (p.seen & SMTP_PARSE_MAIL_BODY)
		buf_printf(&b, " BODY=%s", bodies[p.body]);
	if (p.seen & SMTP_PARSE_MAIL_SMTPUTF8)
		buf_puts(&b, " SMTPUTF8");
	if (p.seen & SMTP_PARSE_MAIL_RET)
		buf_printf(&b, " RET=%s", rets[p.ret]);
	if (p.seen & SMTP_PARSE_MAIL_ENVID)
		buf_printf(&b, " ENVID=%s", p.envid);
	if (p.seen & SMTP_PARSE_MAIL_AUTH)
		buf_printf(&b, " AUTH=%s", p.auth);
	if (smtp_parse_mail_params(buf_str(&b), b.len, &again,
	    &error) != SMTP_PARSE_OK ||
	    memcmp(&p, &again, sizeof(p)) != 0)
		abort();
	buf_release(&b);
}

/* fuzz_rcpt - parse, write back canonically, parse again */
static void
fuzz_rcpt(const char *s, size_t len)
{
	struct smtp_parse_rcpt_params p, again;
	const char *error = NULL;
	char notify[64];
	struct buf b;
	size_t n;

	if (smtp_parse_rcpt_params(s, len, &p, &error) != SMTP_PARSE_OK) {
		check_text(error);
		if (p.seen != 0)
			abort();
		return;
	}
	if ((p.notify & QUEUE_NOTIFY_NEVER) && p.notify != QUEUE_NOTIFY_NEVER)
		abort();
	if (((p.seen & SMTP_PARSE_RCPT_NOTIFY) != 0) != (p.notify != 0))
		abort();
	n = strlen(p.orcpt);
	if (n > SMTP_PARSE_ORCPT_MAX)
		abort();
	if (p.seen & SMTP_PARSE_RCPT_ORCPT) {
		if (p.orcpt_type_len == 0 || p.orcpt_type_len + 1 >= n ||
		    p.orcpt[p.orcpt_type_len] != ';' ||
		    !smtp_xtext_valid(p.orcpt + p.orcpt_type_len + 1,
		    n - p.orcpt_type_len - 1))
			abort();
	} else if (n != 0)
		abort();
	buf_init(&b);
	if (p.seen & SMTP_PARSE_RCPT_ORCPT)
		buf_printf(&b, "ORCPT=%s ", p.orcpt);
	if (p.seen & SMTP_PARSE_RCPT_NOTIFY) {
		static const struct { unsigned bit; const char *name; }
		    t[] = {
			{ QUEUE_NOTIFY_NEVER, "never" },
			{ QUEUE_NOTIFY_SUCCESS, "SUCCESS" },
			{ QUEUE_NOTIFY_FAILURE, "Failure" },
			{ QUEUE_NOTIFY_DELAY, "DELAY" },
		};
		size_t i;

		notify[0] = '\0';
		for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
			if (p.notify & t[i].bit) {
				if (notify[0] != '\0')
					strlcat(notify, ",", sizeof(notify));
				strlcat(notify, t[i].name, sizeof(notify));
			}
		buf_printf(&b, "notify=%s", notify);
	}
	if (smtp_parse_rcpt_params(buf_str(&b), b.len, &again,
	    &error) != SMTP_PARSE_OK ||
	    memcmp(&p, &again, sizeof(p)) != 0)
		abort();
	buf_release(&b);
}

/* fuzz_xtext - round trips through both encoders and decoders */
static void
fuzz_xtext(const char *s, size_t len)
{
	static char enc[FUZZ_XTEXT_MAX * 3 + 1], dec[FUZZ_XTEXT_MAX + 1];
	const char *error = NULL;
	struct buf b;
	size_t n;
	int e;

	if (len > FUZZ_XTEXT_MAX)
		len = FUZZ_XTEXT_MAX;
	/* decode(encode(x)) == x */
	e = smtp_xtext_encode(s, len, enc, sizeof(enc));
	if (e < 0 || !smtp_xtext_valid(enc, (size_t)e))
		abort();
	if (smtp_xtext_decode(enc, (size_t)e, dec, sizeof(dec), &n,
	    &error) != 0 || n != len || memcmp(dec, s, len) != 0)
		abort();
	buf_init(&b);
	smtp_xtext_encode_buf(s, len, &b);
	if (b.len != (size_t)e || memcmp(buf_str(&b), enc, b.len) != 0)
		abort();
	buf_release(&b);
	/* the input as xtext: both decoders agree */
	buf_init(&b);
	if (smtp_xtext_decode(s, len, dec, sizeof(dec), &n, &error) == 0) {
		if (!smtp_xtext_valid(s, len) ||
		    smtp_xtext_decode_buf(s, len, &b, &error) != 0 ||
		    b.len != n || memcmp(buf_str(&b), dec, n) != 0)
			abort();
	} else {
		check_text(error);
		if (smtp_xtext_valid(s, len) ||
		    smtp_xtext_decode_buf(s, len, &b, &error) == 0 ||
		    b.len != 0)
			abort();
	}
	buf_release(&b);
}

/* fuzz_bdat - an accepted size prints back to the same size */
static void
fuzz_bdat(const char *s, size_t len)
{
	struct smtp_parse_bdat bd, again;
	const char *error = NULL;
	char line[64];
	int n;

	if (smtp_parse_bdat(s, len, &bd, &error) != SMTP_PARSE_OK) {
		check_text(error);
		return;
	}
	n = snprintf(line, sizeof(line), "%" PRIu64 "%s", bd.size,
	    bd.last ? " LAST" : "");
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    smtp_parse_bdat(line, (size_t)n, &again, &error) !=
	    SMTP_PARSE_OK || again.size != bd.size || again.last != bd.last)
		abort();
}

/* LLVMFuzzerTestOneInput - dispatch on the first octet */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;

	if (size == 0)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_mail(s, size - 1);
		break;
	case 1:
		fuzz_rcpt(s, size - 1);
		break;
	case 2:
		fuzz_xtext(s, size - 1);
		break;
	default:
		fuzz_bdat(s, size - 1);
		break;
	}
	return 0;
}
