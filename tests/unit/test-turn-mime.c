/*
 * NAME
 *	test-turn-mime - unit tests for turn/turn_mime (8BITMIME downgrade)
 * SYNOPSIS
 *	CMOCKA_MESSAGE_OUTPUT=TAP tests/unit/test-turn-mime
 * DESCRIPTION
 *	Table-driven; each row is its own TAP case.
 *
 *	downgrade rows give a message and either the exact 7-bit text
 *	turn_mime_downgrade() must append, or a part of the error it must
 *	return. The input is a heap copy of its exact size, so the
 *	sanitizers see any read past its end; out already holds a prefix,
 *	which must stay (and be all of out after an error). Every result
 *	must also pass turn_mime_is_7bit(), end each line in CRLF, and
 *	come out of a second downgrade unchanged.
 *
 *	is_7bit rows give a text and what turn_mime_is_7bit() says.
 *
 *	The other cases: nesting of 32 levels converts and 33 does not;
 *	pseudo-random text and binary bodies decode back to what they
 *	were (with quoted-printable and base64 decoders of our own) in
 *	lines of at most 76 octets; no encoded-word of a long UTF-8
 *	subject splits a character or passes 75 octets; a large message
 *	converts; and thousands of pseudo-random mutations of MIME
 *	messages either convert to 7-bit text or fail with an error.
 *
 *	LINES(n, "s") inside an input or an expected text stands for n
 *	copies of s.
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
#include "turn_mime.h"
#include "xmalloc.h"
#include "test-rows.h"

/* An input literal with its length, NULs included. */
#define IN(s)		.in = (s), .inlen = sizeof(s) - 1
#define OUT(s)		.out = (s), .outlen = sizeof(s) - 1
#define ERR(s)		.err = (s)
/* n copies of s, expanded by expand(); s holds no \x01..\x03 */
#define LINES(n, s)	"\x01" #n "\x02" s "\x03"

/* what out holds before each downgrade: it must stay */
#define PREFIX		"prefix\r\n"

/* the deepest nesting turn_mime converts */
#define DEPTH_MAX	32

struct mime_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	const char	*out;		/* NULL: an error is expected */
	size_t		 outlen;
	const char	*err;
};

struct bit7_case {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	int		 is7bit;
};

/* expand - a heap copy of in[0..len) with LINES() expanded, exact size */
static unsigned char *
expand(const char *in, size_t len, size_t *outlen)
{
	struct buf b;
	unsigned char *p;
	size_t i = 0;

	buf_init(&b);
	while (i < len) {
		if (in[i] == '\x01') {
			size_t n = 0, start;

			for (i++; i < len && in[i] >= '0' && in[i] <= '9'; i++)
				n = n * 10 + (size_t)(in[i] - '0');
			start = ++i;		/* past \x02 */
			while (i < len && in[i] != '\x03')
				i++;
			for (; n > 0; n--)
				buf_append(&b, in + start, i - start);
			i++;			/* past \x03 */
		} else
			buf_putc(&b, in[i++]);
	}
	*outlen = b.len;
	/* exactly b.len octets, so ASan sees a read past the end */
	p = xmalloc(b.len > 0 ? b.len : 1);
	if (b.len > 0)
		memcpy(p, b.data, b.len);
	buf_release(&b);
	return p;
}

/* check_lines - CRLF line ends only, lines of at most max octets */
static void
check_lines(const unsigned char *p, size_t len, size_t max)
{
	size_t i, col = 0;

	for (i = 0; i < len; i++) {
		if (p[i] == '\r') {
			if (i + 1 == len || p[i + 1] != '\n')
				fail_msg("bare CR at %zu", i);
			col = 0;
			i++;
			continue;
		}
		if (p[i] == '\n')
			fail_msg("bare LF at %zu", i);
		if (++col > max)
			fail_msg("line over %zu octets at %zu", max, i);
	}
	if (len > 0 && p[len - 1] != '\n')
		fail_msg("the text does not end in CRLF");
}

/* show - a printable copy of a text for a failure message */
static char *
show(const unsigned char *p, size_t len)
{
	struct buf b;
	size_t i;

	buf_init(&b);
	for (i = 0; i < len; i++) {
		if (p[i] == '\r')
			buf_puts(&b, "\\r");
		else if (p[i] == '\n')
			buf_puts(&b, "\\n\n");
		else if (p[i] < 32 || p[i] > 126)
			buf_printf(&b, "\\x%02x", p[i]);
		else
			buf_putc(&b, p[i]);
	}
	buf_putc(&b, '\0');
	return (char *)b.data;
}

/* downgrade rows */
static const struct mime_case mime_cases[] = {
	{ "7-bit message copied",
	    IN("Subject: hi\r\n"
	    "\r\n"
	    "body\r\n"),
	    OUT("Subject: hi\r\n"
	    "\r\n"
	    "body\r\n") },
	{ "bare LF line ends made CRLF",
	    IN("Subject: hi\n"
	    "\n"
	    "body\n"
	    "more"),
	    OUT("Subject: hi\r\n"
	    "\r\n"
	    "body\r\n"
	    "more\r\n") },
	{ "no MIME, UTF-8 body: text/plain utf-8",
	    IN("Subject: x\r\n"
	    "\r\n"
	    "h\xc3\xa9\r\n"),
	    OUT("Subject: x\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "h=C3=A9\r\n") },
	{ "no MIME, not UTF-8: unknown-8bit",
	    IN("Subject: x\r\n"
	    "\r\n"
	    "h\xe9\r\n"),
	    OUT("Subject: x\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=unknown-8bit\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "h=E9\r\n") },
	{ "8bit label on 7-bit text: relabelled",
	    IN("MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "ascii\r\n"),
	    OUT("MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"
	    "\r\n"
	    "ascii\r\n") },
	{ "QP: '=', trailing WSP, bare CR, NUL",
	    IN("Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "a = b \r\n"
	    "\xc3\xa9\t\r\n"
	    "x\ry\x00z\r\n"),
	    OUT("Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "a =3D b=20\r\n"
	    "=C3=A9=09\r\n"
	    "x=0Dy=00z\r\n") },
	{ "QP: soft breaks keep lines <= 76",
	    IN("Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    LINES(30, "\xc3\xa9") "\r\n"),
	    OUT("Content-Type: text/plain; charset=utf-8\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9="
	    "C3=A9=C3=A9=C3=A9=C3=\r\n"
	    "=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3="
	    "A9=C3=A9=C3=A9=C3=A9=\r\n"
	    "=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9\r\n") },
	{ "QP: a new line never starts with '-'",
	    IN("Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    LINES(74, "x") "--b \xc3\xa9\r\n"),
	    OUT("Content-Type: text/plain; charset=utf-8\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    LINES(74, "x") "-=\r\n"
	    "=2Db =C3=A9\r\n") },
	{ "base64 for application types",
	    IN("Content-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "\xff\xfe\xfd\r\n"),
	    OUT("Content-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "//79DQo=\r\n") },
	{ "base64 lines of 76",
	    IN("Content-Type: image/png\r\n"
	    "\r\n"
	    "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d"
	    "\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b"
	    "\x9c\x9d\x9e\x9f\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9"
	    "\xaa\xab\xac\xad\xae\xaf\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7"
	    "\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf\xc0\xc1\xc2\xc3\xc4\xc5"
	    "\xc6\xc7\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3"
	    "\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf\xe0\xe1"
	    "\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xeb\xec\xed\xee\xef"
	    "\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd"
	    "\xfe\xff\r\n"),
	    OUT("Content-Type: image/png\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp+goaKjpKWmp6i"
	    "pqqusra6vsLGys7S1tre4\r\n"
	    "ubq7vL2+v8DBwsPExcbHyMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OH"
	    "i4+Tl5ufo6err7O3u7/Dx\r\n"
	    "8vP09fb3+Pn6+/z9/v8NCg==\r\n") },
	{ "already base64: copied",
	    IN("Content-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "iVBORw0K\r\n"),
	    OUT("Content-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "iVBORw0K\r\n") },
	{ "QP with raw 8-bit octets escaped",
	    IN("Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: Quoted-Printable\r\n"
	    "\r\n"
	    "=C3=A9 \xc3\xa9=\r\n"
	    "=\r\n"),
	    OUT("Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: Quoted-Printable\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "=C3=A9 =C3=A9=\r\n"
	    "=\r\n") },
	{ "base64 with junk: re-wrapped without it",
	    IN("Content-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "iVBO\xffRw0K\r\n"
	    "AA==\r\n"),
	    OUT("Content-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "iVBORw0KAA==\r\n") },
	{ "multipart: 8-bit preamble and epilogue made '?'",
	    IN("MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n"
	    "\r\n"
	    "pr\xc3\xa9\r\n"
	    "--b\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"
	    "--b--\r\n"
	    "ep\xc3\xae\r\n"),
	    OUT("MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n"
	    "\r\n"
	    "pr??\r\n"
	    "--b\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "=C3=A9\r\n"
	    "--b--\r\n"
	    "ep??\r\n") },
	{ "multipart: missing close delimiter added",
	    IN("Content-Type: multipart/mixed; boundary=\"b\"\r\n"
	    "\r\n"
	    "--b\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"),
	    OUT("Content-Type: multipart/mixed; boundary=\"b\"\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "=C3=A9\r\n"
	    "--b--\r\n") },
	{ "multipart: transport padding and 7-bit parts",
	    IN("Content-Type: multipart/mixed; boundary=\"b c\"\r\n"
	    "\r\n"
	    "--b c \t\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "x\r\n"
	    "--b c-- \r\n"),
	    OUT("Content-Type: multipart/mixed; boundary=\"b c\"\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "--b c\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "x\r\n"
	    "--b c--\r\n") },
	{ "multipart: a lookalike boundary is text",
	    IN("Content-Type: multipart/mixed; boundary=b\r\n"
	    "\r\n"
	    "--b\r\n"
	    "\r\n"
	    "--bb\r\n"
	    "--b x\r\n"
	    "\xc3\xa9\r\n"
	    "--b--\r\n"),
	    OUT("Content-Type: multipart/mixed; boundary=b\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "--bb\r\n"
	    "--b x\r\n"
	    "=C3=A9\r\n"
	    "--b--\r\n") },
	{ "multipart/digest parts default to message/rfc822",
	    IN("Content-Type: multipart/digest; boundary=d\r\n"
	    "\r\n"
	    "--d\r\n"
	    "\r\n"
	    "Subject: \xc3\xa9\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"
	    "--d--\r\n"),
	    OUT("Content-Type: multipart/digest; boundary=d\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "--d\r\n"
	    "\r\n"
	    "Subject: =?utf-8?B?w6k=?=\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "=C3=A9\r\n"
	    "--d--\r\n") },
	{ "message/rfc822: the enclosed message is downgraded",
	    IN("Content-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "Subject: \xc3\xa9\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"),
	    OUT("Content-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "Subject: =?utf-8?B?w6k=?=\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "=C3=A9\r\n") },
	{ "Subject: runs of 8-bit words, Q",
	    IN("Subject: Re: caf\xc3\xa9 ol\xc3\xa9 and more\r\n"
	    "\r\n"),
	    OUT("Subject: Re: =?utf-8?B?Y2Fmw6kgb2zDqQ==?= and more\r\n"
	    "\r\n") },
	{ "Subject: looks like an encoded-word",
	    IN("Subject: \xc3\xa9 =?x?q?y?=\r\n"
	    "\r\n"),
	    OUT("Subject: =?utf-8?B?w6kgPT94P3E/eT89?=\r\n"
	    "\r\n") },
	{ "Subject: folded at 76 where encoded",
	    IN("Subject: " LINES(40, "\xc3\xa4") "\r\n"
	    "\r\n"),
	    OUT("Subject: =?utf-8?B?w6TDpMOkw6TDpMOkw6TDpMOkw6TDpMOkw6TD"
	    "pMOkw6TDpMOkw6Q=?=\r\n"
	    " =?utf-8?B?w6TDpMOkw6TDpMOkw6TDpMOkw6TDpMOkw6TDpMOkw6TD"
	    "pMOkw6TDpMOk?=\r\n"
	    "\r\n") },
	{ "From: quoted display name encoded whole",
	    IN("From: \"M\xc3\xbcller, J\xc3\xb6rg\" <j@example.org>\r\n"
	    "\r\n"),
	    OUT("From: =?utf-8?B?TcO8bGxlciwgSsO2cmc=?= <j@example.org>\r"
	    "\n"
	    "\r\n") },
	{ "To: 7-bit and 8-bit names, group",
	    IN("To: a@example.org, Zo\xc3\xab <z@example.org>, Gr\xc3\xbc"
	    "ppe: b@example.org;\r\n"
	    "\r\n"),
	    OUT("To: a@example.org, =?utf-8?B?Wm/Dqw==?= <z@example.org>"
	    ",\r\n"
	    " =?utf-8?B?R3LDvHBwZQ==?= : b@example.org;\r\n"
	    "\r\n") },
	{ "From: 8-bit address (EAI) is an error",
	    IN("From: j\xc3\xb6rg@example.org\r\n"
	    "\r\n"),
	    ERR("8-bit octets in header field From") },
	{ "To: 8-bit comment is an error",
	    IN("To: a@example.org (J\xc3\xb6rg)\r\n"
	    "\r\n"),
	    ERR("8-bit octets in header field To") },
	{ "Date: 8-bit is an error",
	    IN("Date: S\xc3\xa4t, 28 Nov 2026\r\n"
	    "\r\n"),
	    ERR("8-bit octets in header field Date") },
	{ "unknown field: 8-bit is an error",
	    IN("Foo: \xc3\xa9\r\n"
	    "\r\n"),
	    ERR("8-bit octets in header field Foo") },
	{ "X- field encoded",
	    IN("X-Foo: \xc3\xb1\r\n"
	    "\r\n"),
	    OUT("X-Foo: =?utf-8?B?w7E=?=\r\n"
	    "\r\n") },
	{ "Content-Disposition: RFC 2231 filename",
	    IN("Content-Type: application/pdf\r\n"
	    "Content-Disposition: attachment; filename=\"\xc3\x84rge"
	    "r.pdf\"; size=3\r\n"
	    "\r\n"),
	    OUT("Content-Type: application/pdf\r\n"
	    "Content-Disposition: attachment; filename*=utf-8''%C3%8"
	    "4rger.pdf; size=3\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n") },
	{ "Content-Disposition: 8-bit in a 2231 value is an error",
	    IN("Content-Disposition: attachment; filename*=utf-8''\xc3\x84"
	    "\r\n"
	    "\r\n"),
	    ERR("8-bit octets in header field Content-Disposition") },
	{ "Subject: charset of the part when not UTF-8",
	    IN("Content-Type: text/plain; charset=iso-8859-1\r\n"
	    "Subject: caf\xe9\r\n"
	    "\r\n"
	    "x\r\n"),
	    OUT("Content-Type: text/plain; charset=iso-8859-1\r\n"
	    "Subject: =?iso-8859-1?Q?caf=E9?=\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "x\r\n") },
	{ "Subject: not UTF-8, no charset: unknown-8bit",
	    IN("Subject: caf\xe9\r\n"
	    "\r\n"),
	    OUT("Subject: =?unknown-8bit?Q?caf=E9?=\r\n"
	    "\r\n") },
	{ "unknown encoding over 8-bit is an error",
	    IN("Content-Transfer-Encoding: x-uue\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"),
	    ERR("cannot downgrade Content-Transfer-Encoding x-uue") },
	{ "unknown encoding over 7-bit is copied",
	    IN("Content-Transfer-Encoding: x-uue\r\n"
	    "\r\n"
	    "begin\r\n"),
	    OUT("Content-Transfer-Encoding: x-uue\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "begin\r\n") },
	{ "binary with a line over 998 is an error",
	    IN("Content-Type: application/x\r\n"
	    "Content-Transfer-Encoding: binary\r\n"
	    "\r\n"
	    LINES(999, "\xff") "\r\n"),
	    ERR("binary body part with a line longer than 998 octets") },
	{ "binary that is lines: base64",
	    IN("Content-Type: application/x\r\n"
	    "Content-Transfer-Encoding: binary\r\n"
	    "\r\n"
	    "\x00\xff\r\n"),
	    OUT("Content-Type: application/x\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "AP8NCg==\r\n") },
	{ "message/partial with 8-bit is an error",
	    IN("Content-Type: message/partial; id=x; number=1\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"),
	    ERR("8-bit octets in a message/partial part") },
	{ "multipart without boundary, 8-bit: error",
	    IN("Content-Type: multipart/mixed\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"),
	    ERR("8-bit octets in a multipart/mixed part") },
	{ "multipart boundary never found, 8-bit: error",
	    IN("Content-Type: multipart/mixed; boundary=q\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"),
	    ERR("multipart boundary not found") },
	{ "NUL in a header field is an error",
	    IN("Subject: a\x00" "b\r\n"
	    "\r\n"),
	    ERR("NUL or bare CR in header field Subject") },
	{ "header line over 998 is an error",
	    IN("Subject: " LINES(990, "a") "\r\n"
	    "\r\n"),
	    ERR("header line longer than 998 octets") },
	{ "empty input",
	    IN(""),
	    OUT("\r\n") },
	{ "header only, no empty line",
	    IN("Subject: x"),
	    OUT("Subject: x\r\n"
	    "\r\n") },
	{ "WSP before the colon (RFC 5322 4.5)",
	    IN("Subject : \xc3\xa9\r\n"
	    "\r\n"),
	    OUT("Subject: =?utf-8?B?w6k=?=\r\n"
	    "\r\n") },
	{ "text without charset gets one",
	    IN("Content-Type: text/plain; format=flowed;\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"),
	    OUT("Content-Type: text/plain; format=flowed;\r\n"
	    "\tcharset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "=C3=A9\r\n") },
	{ "line of 998 octets is copied",
	    IN("Subject: x\r\n"
	    "\r\n"
	    LINES(998, "a") "\r\n"),
	    OUT("Subject: x\r\n"
	    "\r\n"
	    LINES(998, "a") "\r\n") },
	{ "line of 999 octets is encoded",
	    IN("Subject: x\r\n"
	    "\r\n"
	    LINES(999, "a") "\r\n"),
	    OUT("Subject: x\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(75, "a") "=\r\n"
	    LINES(24, "a") "\r\n") },
	{ "8-bit octets in a field name are an error",
	    IN("X-\xc3\x9cn\xc3\xaf: x\r\n"
	    "Subject: y\r\n"
	    "\r\n"
	    "z\r\n"),
	    ERR("8-bit octets in a header field name") },
	{ "Subject in Shift_JIS: split between characters",
	    IN("Content-Type: text/plain; charset=Shift_JIS\r\n"
	    "Subject: \x93\xfa\x96{\x8c\xea\x82\xcc\x8c\x8f\x96\xbc\x93"
	    "\xfa\x96{\x8c\xea\x82\xcc\x8c\x8f\x96\xbc\x93\xfa\x96{\x8c"
	    "\xea\x82\xcc\x8c\x8f\x96\xbc\x93\xfa\x96{\x8c\xea\x82\xcc"
	    "\x8c\x8f\x96\xbc\x93\xfa\x96{\x8c\xea\x82\xcc\x8c\x8f\x96"
	    "\xbc\r\n"
	    "\r\n"
	    "x\r\n"),
	    OUT("Content-Type: text/plain; charset=Shift_JIS\r\n"
	    "Subject: =?Shift_JIS?B?k/qWe4zqgsyMj5a8k/qWe4zqgsyMj5a8"
	    "k/qWe4zqgsyMj5a8?=\r\n"
	    " =?Shift_JIS?B?k/qWe4zqgsyMj5a8k/qWe4zqgsyMj5a8?=\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "x\r\n") },
	{ "Subject in EUC-KR: split between characters",
	    IN("Content-Type: text/plain; charset=euc-kr\r\n"
	    "Subject: \xc7\xd1\xb1\xb9\xbe\xee \xc1\xa6\xb8\xf1\xc0\xd4"
	    "\xb4\xcf\xb4\xd9\xc7\xd1\xb1\xb9\xbe\xee \xc1\xa6\xb8\xf1"
	    "\xc0\xd4\xb4\xcf\xb4\xd9\xc7\xd1\xb1\xb9\xbe\xee \xc1\xa6"
	    "\xb8\xf1\xc0\xd4\xb4\xcf\xb4\xd9\xc7\xd1\xb1\xb9\xbe\xee"
	    " \xc1\xa6\xb8\xf1\xc0\xd4\xb4\xcf\xb4\xd9\r\n"
	    "\r\n"
	    "x\r\n"),
	    OUT("Content-Type: text/plain; charset=euc-kr\r\n"
	    "Subject: =?euc-kr?B?x9Gxub7uIMGmuPHA1LTPtNnH0bG5vu4gwaa"
	    "48cDUtM+02cfRsbk=?=\r\n"
	    " =?euc-kr?B?vu4gwaa48cDUtM+02cfRsbm+7iDBprjxwNS0z7TZ?=\r"
	    "\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "x\r\n") },
	{ "8-bit boundary parameter is an error",
	    IN("Content-Type: multipart/mixed; boundary=\"\xc3\xa4\"\r\n"
	    "\r\n"
	    "--\xc3\xa4\r\n"
	    "\r\n"
	    "x\r\n"
	    "--\xc3\xa4--\r\n"),
	    ERR("8-bit octets in a multipart/mixed part") },
	{ "boundary with trailing WSP: rstripped",
	    IN("Content-Type: multipart/mixed; boundary=\"b\t\"\r\n"
	    "\r\n"
	    "--b\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"),
	    OUT("Content-Type: multipart/mixed; boundary=\"b\t\"\r\n"
	    "MIME-Version: 1.0\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "=C3=A9\r\n"
	    "--b--\r\n") },
	{ "charset added after a WSP-only fold",
	    IN("Content-Type: text/plain\r\n"
	    "\t\r\n"
	    "\r\n"
	    "\xc3\xa9\r\n"),
	    OUT("Content-Type: text/plain;\r\n"
	    "\tcharset=utf-8\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "=C3=A9\r\n") },
	{ "a body that is not a header starts the body",
	    IN("Subject: x\r\n"
	    "not a field\r\n"
	    "\xc3\xa9\r\n"),
	    OUT("Subject: x\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "not a field\r\n"
	    "=C3=A9\r\n") },
};

/* is_7bit rows */
static const struct bit7_case bit7_cases[] = {
	{ "empty", IN(""), 1 },
	{ "ASCII lines", IN("a\r\nb\r\n"), 1 },
	{ "an octet of 128", IN("a\x80\r\n"), 0 },
	{ "an octet of 255 last", IN("a\xff"), 0 },
	{ "NUL", IN("a\0b\r\n"), 0 },
	{ "a bare CR is 7-bit", IN("a\rb\r\n"), 1 },
	{ "998 octets", IN(LINES(998, "a") "\r\n"), 1 },
	{ "999 octets", IN(LINES(999, "a") "\r\n"), 0 },
	{ "998 octets, no line end", IN(LINES(998, "a")), 1 },
	{ "999 octets, no line end", IN(LINES(999, "a")), 0 },
	{ "998 octets, bare LF", IN(LINES(998, "a") "\n" LINES(998, "b")), 1 },
	{ "a CR before CRLF counts", IN(LINES(998, "a") "\r\r\n"), 0 },
};

/* test_downgrade - one downgrade row */
static void
test_downgrade(void **state)
{
	const struct mime_case *t = *state;
	unsigned char *in, *want = NULL;
	const char *error = NULL;
	struct buf out, again;
	size_t inlen, wantlen = 0;
	int rc;

	in = expand(t->in, t->inlen, &inlen);
	if (t->out != NULL)
		want = expand(t->out, t->outlen, &wantlen);
	buf_init(&out);
	buf_puts(&out, PREFIX);
	rc = turn_mime_downgrade(in, inlen, &out, &error);
	if (t->out == NULL) {
		assert_int_equal(rc, -1);
		assert_non_null(error);
		if (strstr(error, t->err) == NULL)
			fail_msg("error \"%s\", want \"%s\"", error, t->err);
		assert_int_equal(out.len, strlen(PREFIX));
		assert_string_equal(buf_str(&out), PREFIX);
		goto done;
	}
	if (rc != 0)
		fail_msg("error \"%s\"", error);
	assert_memory_equal(out.data, PREFIX, strlen(PREFIX));
	if (out.len - strlen(PREFIX) != wantlen || memcmp(out.data +
	    strlen(PREFIX), want, wantlen) != 0) {
		char *got = show(out.data + strlen(PREFIX),
		    out.len - strlen(PREFIX));

		fail_msg("got:\n%s", got);
	}
	assert_true(turn_mime_is_7bit(want, wantlen));
	check_lines(want, wantlen, 998);
	/* 7-bit MIME is a fixed point */
	buf_init(&again);
	assert_int_equal(turn_mime_downgrade(want, wantlen, &again, &error), 0);
	assert_int_equal(again.len, wantlen);
	assert_memory_equal(again.data, want, wantlen);
	buf_release(&again);
done:
	buf_release(&out);
	free(in);
	free(want);
}

/* test_is_7bit - one is_7bit row */
static void
test_is_7bit(void **state)
{
	const struct bit7_case *t = *state;
	unsigned char *in;
	size_t len;

	in = expand(t->in, t->inlen, &len);
	assert_int_equal(turn_mime_is_7bit(in, len), t->is7bit);
	free(in);
}

/* nested - depth multiparts around one 8-bit text part */
static void
nested(struct buf *b, int depth)
{
	int i;

	buf_reset(b);
	buf_puts(b, "MIME-Version: 1.0\r\n");
	for (i = 0; i < depth; i++)
		buf_printf(b, "Content-Type: multipart/mixed; boundary=b%d\r\n"
		    "\r\n--b%d\r\n", i, i);
	buf_puts(b, "Content-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9");
	for (i = depth - 1; i >= 0; i--)
		buf_printf(b, "\r\n--b%d--", i);
	buf_puts(b, "\r\n");
}

/* test_depth - 32 levels of nesting convert, 33 do not */
static void
test_depth(void **state)
{
	const char *error = NULL;
	struct buf in, out;

	(void)state;
	buf_init(&in);
	buf_init(&out);
	nested(&in, DEPTH_MAX);
	assert_int_equal(turn_mime_downgrade(in.data, in.len, &out, &error),
	    0);
	assert_non_null(strstr(buf_str(&out), "=C3=A9\r\n--b31--\r\n"));
	buf_reset(&out);
	nested(&in, DEPTH_MAX + 1);
	assert_int_equal(turn_mime_downgrade(in.data, in.len, &out, &error),
	    -1);
	assert_non_null(strstr(error, "nested deeper than 32"));
	assert_int_equal(out.len, 0);
	buf_release(&in);
	buf_release(&out);
}

/* rnd - xorshift64: the same pseudo-random run every time */
static uint64_t
rnd(uint64_t *seed)
{
	uint64_t x = *seed;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*seed = x;
	return x;
}

/* hexval - a hex digit's value, or -1 */
static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* qp_decode - strict RFC 2045 6.7 decoding of our own output */
static void
qp_decode(const unsigned char *p, size_t len, struct buf *out)
{
	size_t i = 0, col = 0;

	while (i < len) {
		if (p[i] == '\r') {
			assert_true(i + 1 < len && p[i + 1] == '\n');
			/* rule (3): nothing may end in white space */
			assert_true(i == 0 || (p[i - 1] != ' ' &&
			    p[i - 1] != '\t'));
			buf_append(out, "\r\n", 2);
			i += 2;
			col = 0;
			continue;
		}
		if (p[i] == '=') {
			if (i + 2 < len && p[i + 1] == '\r' &&
			    p[i + 2] == '\n') {
				assert_true(col + 1 <= 76);
				i += 3;
				col = 0;
				continue;
			}
			assert_true(i + 2 < len && hexval(p[i + 1]) >= 0 &&
			    hexval(p[i + 2]) >= 0);
			buf_putc(out, hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
			i += 3;
			col += 3;
		} else {
			assert_true(p[i] == ' ' || p[i] == '\t' ||
			    (p[i] > 32 && p[i] < 127));
			buf_putc(out, p[i++]);
			col++;
		}
		assert_true(col <= 76);
	}
}

/* b64_decode - base64 of our own output: lines of 76, CRLF between */
static void
b64_decode(const unsigned char *p, size_t len, struct buf *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t v = 0;
	size_t i, n = 0, col = 0, pad = 0;

	for (i = 0; i < len; i++) {
		if (p[i] == '\r' || p[i] == '\n') {
			assert_true(p[i] == '\n' || col == 76 || i + 2 >= len);
			col = 0;
			continue;
		}
		assert_true(++col <= 76);
		if (p[i] == '=') {
			pad++;
			v <<= 6;
		} else {
			assert_non_null(strchr(a, p[i]));
			assert_int_equal(pad, 0);
			v = v << 6 | (uint32_t)(strchr(a, p[i]) - a);
		}
		if (++n % 4 == 0) {
			buf_putc(out, (int)(v >> 16 & 255));
			if (pad < 2)
				buf_putc(out, (int)(v >> 8 & 255));
			if (pad < 1)
				buf_putc(out, (int)(v & 255));
			v = 0;
		}
	}
	assert_int_equal(n % 4, 0);
}

/* test_roundtrip - pseudo-random bodies decode back to what they were */
static void
test_roundtrip(void **state)
{
	static const char *const types[] = { "text/plain; charset=utf-8",
	    "application/octet-stream" };
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	const char *error = NULL, *body;
	struct buf in, out, dec, want;
	size_t i, n, k, hdr;
	int round, text;

	(void)state;
	buf_init(&in);
	buf_init(&out);
	buf_init(&dec);
	buf_init(&want);
	for (round = 0; round < 400; round++) {
		text = round % 2 == 0;
		buf_reset(&in);
		buf_printf(&in, "Content-Type: %s\r\n"
		    "Content-Transfer-Encoding: 8bit\r\n\r\n",
		    types[round % 2]);
		hdr = in.len;
		n = (size_t)(rnd(&seed) % 3000);
		for (i = 0; i < n; i++) {
			k = (size_t)(rnd(&seed) % 16);
			/* line ends, white space, '=', '-', 8-bit, anything */
			buf_putc(&in, k < 2 ? '\n' : k < 3 ? '\r' :
			    k < 5 ? ' ' : k < 6 ? '\t' : k < 7 ? '=' :
			    k < 8 ? '-' :
			    k < 11 ? (int)(0x80 | (rnd(&seed) & 0x7f)) :
			    (int)(rnd(&seed) & 0xff));
		}
		buf_append(&in, "\r\n", 2);
		buf_reset(&out);
		assert_int_equal(turn_mime_downgrade(in.data, in.len, &out,
		    &error), 0);
		check_lines(out.data, out.len, 998);
		body = strstr(buf_str(&out), "\r\n\r\n");
		assert_non_null(body);
		body += 4;
		buf_reset(&dec);
		buf_reset(&want);
		if (text) {
			assert_non_null(strstr(buf_str(&out),
			    "quoted-printable"));
			qp_decode((const unsigned char *)body, out.len -
			    (size_t)(body - (const char *)out.data), &dec);
			/* a bare LF ends a line: it comes back as CRLF */
			for (i = hdr; i < in.len; i++) {
				if (in.data[i] == '\n' &&
				    in.data[i - 1] != '\r')
					buf_putc(&want, '\r');
				buf_putc(&want, in.data[i]);
			}
		} else {
			assert_non_null(strstr(buf_str(&out), "base64"));
			b64_decode((const unsigned char *)body, out.len -
			    (size_t)(body - (const char *)out.data), &dec);
			buf_append(&want, in.data + hdr, in.len - hdr);
		}
		assert_int_equal(dec.len, want.len);
		assert_memory_equal(dec.data, want.data, want.len);
	}
	buf_release(&in);
	buf_release(&out);
	buf_release(&dec);
	buf_release(&want);
}

/* test_ew_split - encoded-words: whole UTF-8 characters, <= 75 octets */
static void
test_ew_split(void **state)
{
	const char *error = NULL, *p, *q, *end;
	struct buf in, out, text, dec;
	size_t i;

	(void)state;
	buf_init(&in);
	buf_init(&out);
	buf_init(&text);
	buf_init(&dec);
	/* 1-, 2-, 3- and 4-octet characters in every alignment */
	for (i = 0; i < 45; i++)
		buf_puts(&text, i % 4 == 0 ? "a" : i % 4 == 1 ? "\xc3\xa9" :
		    i % 4 == 2 ? "\xe2\x82\xac" : "\xf0\x9f\x98\x80");
	buf_printf(&in, "Subject: %s\r\n\r\n", buf_str(&text));
	assert_int_equal(turn_mime_downgrade(in.data, in.len, &out, &error),
	    0);
	check_lines(out.data, out.len, 76);
	end = strstr(buf_str(&out), "\r\n\r\n");
	assert_non_null(end);
	for (p = buf_str(&out); (p = strstr(p, "=?utf-8?")) != NULL &&
	    p < end; p = q + 2) {
		struct buf one;

		q = strstr(p + 10, "?=");
		assert_non_null(q);
		assert_true(q + 2 - p <= 75);
		buf_init(&one);
		if (p[8] == 'B')
			b64_decode((const unsigned char *)p + 10,
			    (size_t)(q - p - 10), &one);
		else {
			assert_int_equal(p[8], 'Q');
			for (i = 10; p + i < q; i++)
				if (p[i] == '_')
					buf_putc(&one, ' ');
				else if (p[i] == '=') {
					buf_putc(&one, hexval(p[i + 1]) * 16 +
					    hexval(p[i + 2]));
					i += 2;
				} else
					buf_putc(&one, p[i]);
		}
		/* each word on its own is whole characters (RFC 2047 5) */
		for (i = 0; i < one.len; i++)
			if ((one.data[i] & 0xc0) == 0x80)
				assert_true(i > 0 && one.data[i - 1] >= 0x80);
		assert_true(one.len == 0 || one.data[one.len - 1] < 0x80 ||
		    (one.data[one.len - 1] & 0xc0) == 0x80);
		if (one.len > 0 && one.data[0] >= 0x80)
			assert_true((one.data[0] & 0xc0) == 0xc0);
		buf_append(&dec, one.data, one.len);
		buf_release(&one);
	}
	assert_int_equal(dec.len, text.len);
	assert_memory_equal(dec.data, text.data, text.len);
	buf_release(&in);
	buf_release(&out);
	buf_release(&text);
	buf_release(&dec);
}

/* test_large - 8 MB of 8-bit text in one part converts */
static void
test_large(void **state)
{
	const char *error = NULL;
	struct buf in, out;
	size_t i;

	(void)state;
	buf_init(&in);
	buf_init(&out);
	buf_puts(&in, "Content-Type: multipart/mixed; boundary=L\r\n\r\n"
	    "--L\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
	for (i = 0; i < 8 * 1024 * 1024 / 64; i++)
		buf_puts(&in, "\xc3\xa9t\xc3\xa9 = summer, line of sixty-four"
		    " octets \xe2\x80\x93 xyz\r\n");
	buf_puts(&in, "--L--\r\n");
	assert_int_equal(turn_mime_downgrade(in.data, in.len, &out, &error),
	    0);
	assert_true(turn_mime_is_7bit(out.data, out.len));
	assert_true(out.len > in.len);
	buf_release(&in);
	buf_release(&out);
}

/* test_mutations - mutated MIME: 7-bit text or an error, never a crash */
static void
test_mutations(void **state)
{
	static const char *const seeds[] = {
		"From: \"J\xc3\xb6rg\" <j@example.org>\r\n"
		"Subject: gr\xc3\xbc\xc3\x9f\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"a\"\r\n"
		"\r\n"
		"pre\r\n"
		"--a\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n"
		"\r\n"
		"\xc3\xa9=\r\n"
		"--a\r\n"
		"Content-Type: message/rfc822\r\n"
		"\r\n"
		"Subject: \xc3\xa9\r\n"
		"Content-Type: multipart/alternative; boundary=b\r\n"
		"\r\n"
		"--b\r\n"
		"\r\n"
		"\xc3\xa9\r\n"
		"--b\r\n"
		"Content-Type: text/html\r\n"
		"\r\n"
		"<p>\xc3\xa9</p>\r\n"
		"--b--\r\n"
		"--a\r\n"
		"Content-Type: application/x; name=\"\xc3\xa9.bin\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\n"
		"AAA\xff=\r\n"
		"--a--\r\n",
		"To: a@b, Z\xc3\xb6 <z@b>, G: c@d;\r\n"
		"Content-Type: text/plain; charset=iso-8859-1\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n"
		"\r\n"
		"=E9\xe9 \r\n",
	};
	uint64_t seed = 42;
	const char *error;
	struct buf out;
	unsigned char *m;
	size_t len, i, n, pos;
	int round;

	(void)state;
	buf_init(&out);
	for (round = 0; round < 6000; round++) {
		const char *s = seeds[round % 2];

		len = strlen(s);
		m = xmalloc(len);
		memcpy(m, s, len);
		n = 1 + (size_t)(rnd(&seed) % 8);
		for (i = 0; i < n; i++) {
			pos = (size_t)(rnd(&seed) % len);
			switch (rnd(&seed) % 4) {
			case 0:
				m[pos] = (unsigned char)rnd(&seed);
				break;
			case 1:
				m[pos] = "\r\n:;\"<>=-( \t"[rnd(&seed) % 12];
				break;
			case 2:
				len = pos;	/* truncate */
				break;
			default:
				m[pos] = (unsigned char)(0x80 | rnd(&seed));
				break;
			}
			if (len == 0)
				break;
		}
		buf_reset(&out);
		error = NULL;
		if (turn_mime_downgrade(m, len, &out, &error) == 0) {
			assert_true(turn_mime_is_7bit(out.data, out.len));
			check_lines(out.data, out.len, 998);
		} else {
			assert_non_null(error);
			assert_true(error[0] != '\0');
			assert_int_equal(out.len, 0);
		}
		free(m);
	}
	buf_release(&out);
}

/* main - one TAP case per table row, then the other tests */
int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_ew_split),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_mutations),
	};
	size_t nrows = sizeof(mime_cases) / sizeof(mime_cases[0]) +
	    sizeof(bit7_cases) / sizeof(bit7_cases[0]);
	size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	size_t n = 0, i;
	struct CMUnitTest *tests;
	int rc;

	tests = xcalloc(nrows + nf, sizeof(*tests));
	ADD_ROWS("downgrade", mime_cases, test_downgrade);
	ADD_ROWS("is_7bit", bit7_cases, test_is_7bit);
	for (i = 0; i < nf; i++, n++)
		tests[n] = fixed[i];
	rc = _cmocka_run_group_tests("test-turn-mime", tests, n, NULL, NULL);
	for (i = 0; i < nrows; i++)
		free((char *)tests[i].name);
	free(tests);
	return rc;
}
