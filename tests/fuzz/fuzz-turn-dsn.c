/*
 * NAME
 *	fuzz-turn-dsn - libFuzzer target for the DSN builder
 * SYNOPSIS
 *	tests/fuzz/fuzz-turn-dsn [libFuzzer options] CORPUS...
 * DESCRIPTION
 *	The input is two control octets, then NUL-separated fields: the
 *	diagnostic, the ORCPT, the ENVID, the recipient address, the
 *	remote MTA, the sender, and last the original message (which may
 *	hold NULs). The control octets choose the kind, RET, SMTPUTF8,
 *	return_max, the action and the size of the chunks the original is
 *	fed in. A missing field takes a plain default.
 *
 *	Checks, beyond not crashing nor reading past the input:
 *	turn_dsn_new() either builds, or returns NULL with a one-line
 *	error; a built DSN finishes; every line of it ends in CRLF and has
 *	at most 998 octets; it has no NUL; it is 7-bit unless
 *	turn_dsn_8bit() says otherwise; and its boundary starts exactly
 *	one delimiter line per part plus the close delimiter, so no part
 *	contains it. Built with --enable-fuzzer this is a libFuzzer
 *	binary; otherwise fuzz-main.c replays the corpus.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xmalloc.h"

#include "queue.h"
#include "turn_dsn.h"

#define FUZZ_FIELDS	6	/* before the original */
#define FUZZ_LINE_MAX	998

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check_output - CRLF lines <= 998, no NUL, 7-bit unless allowed */
static void
check_output(const struct buf *b, int eightbit, const char *boundary,
    size_t parts)
{
	size_t i, col = 0, delims = 0, blen = strlen(boundary);

	for (i = 0; i < b->len; i++) {
		unsigned char c = b->data[i];

		if (c == '\0' || (c >= 0x80 && !eightbit))
			abort();
		if (c == '\r') {
			if (i + 1 == b->len || b->data[i + 1] != '\n')
				abort();
			continue;
		}
		if (c == '\n') {
			if (i == 0 || b->data[i - 1] != '\r')
				abort();
			col = 0;
			/* a line starting "--boundary" */
			if (b->len - (i + 1) >= blen + 2 &&
			    b->data[i + 1] == '-' && b->data[i + 2] == '-' &&
			    memcmp(b->data + i + 3, boundary, blen) == 0)
				delims++;
			continue;
		}
		if (++col > FUZZ_LINE_MAX)
			abort();
	}
	if (blen == 0 || delims != parts + 1)
		abort();
}

/* field - the next NUL-terminated field as a string, or def */
static char *
field(const uint8_t **p, size_t *len, const char *def)
{
	const uint8_t *nul;
	char *s;

	if (*len == 0)
		return xstrdup(def);
	nul = memchr(*p, '\0', *len);
	if (nul == NULL)
		return xstrdup(def);
	s = xstrndup((const char *)*p, (size_t)(nul - *p));
	*len -= (size_t)(nul - *p) + 1;
	*p = nul + 1;
	return s;
}

/* LLVMFuzzerTestOneInput - build a DSN from the fields, check it */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const actions[] = {
		NULL, "failed", "delayed", "delivered", "relayed", "expanded"
	};
	static const char *const defs[FUZZ_FIELDS] = {
		"550 5.1.1 no such user", "rfc822;user@example.org", "ID1",
		"user@example.org", "mx.example.org", "sender@example.com"
	};
	char *f[FUZZ_FIELDS];
	struct queue_rcpt qr;
	struct turn_dsn_rcpt dr;
	struct turn_dsn_params p;
	struct queue_msg m;
	struct turn_dsn *d;
	struct buf out;
	const char *error = NULL;
	unsigned c0, c1;
	size_t i, chunk, off;

	if (len < 2)
		return 0;
	c0 = data[0];
	c1 = data[1];
	data += 2;
	len -= 2;
	for (i = 0; i < FUZZ_FIELDS; i++)
		f[i] = field(&data, &len, defs[i]);

	memset(&m, 0, sizeof(m));
	memset(&qr, 0, sizeof(qr));
	memset(&dr, 0, sizeof(dr));
	memset(&p, 0, sizeof(p));
	memcpy(m.id, "018F2A3B4C5D6E", QUEUE_ID_LEN);
	m.sender = f[5];
	m.envid = f[2][0] != '\0' ? f[2] : NULL;
	m.ret = (enum queue_ret)(c0 % 3);
	m.smtputf8 = (c0 >> 2) & 1;
	m.arrival = 1700000000;
	qr.addr = f[3];
	qr.orcpt = f[1][0] != '\0' ? f[1] : NULL;
	qr.last_error = f[0];
	qr.last_attempt = 1700000100;
	dr.rcpt = &qr;
	dr.action = actions[(c0 >> 3) % 6];
	dr.remote_mta = f[4][0] != '\0' ? f[4] : NULL;
	p.reporting_mta = "mx.example.net";
	p.msg = &m;
	p.kind = (enum turn_dsn_kind)((c0 >> 6) % 3);
	p.rcpts = &dr;
	p.nrcpt = 1;
	p.now = 1700003600;
	p.expires = (c1 & 1) ? 1700400000 : 0;
	p.return_max = (c1 & 2) ? 64 : 0;
	p.nonce = 7;
	chunk = (c1 >> 2) + 1;

	buf_init(&out);
	if ((d = turn_dsn_new(&p, &error)) == NULL) {
		if (error == NULL || *error == '\0' ||
		    strchr(error, '\n') != NULL)
			abort();
	} else {
		for (off = 0; off < len; off += chunk) {
			size_t n = len - off < chunk ? len - off : chunk;
			unsigned char *piece = xmalloc(n);

			memcpy(piece, data + off, n);
			if (turn_dsn_original(d, piece, n, &error) == -1)
				abort();
			free(piece);
		}
		if (turn_dsn_finish(d, &out, &error) == -1)
			abort();
		check_output(&out, turn_dsn_8bit(d), turn_dsn_boundary(d),
		    len > 0 ? 3 : 2);
		turn_dsn_free(&d);
		if (d != NULL)
			abort();
	}
	buf_release(&out);
	for (i = 0; i < FUZZ_FIELDS; i++)
		free(f[i]);
	return 0;
}
