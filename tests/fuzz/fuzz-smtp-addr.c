/*
 * NAME
 *	fuzz-smtp-addr - libFuzzer target for SMTP paths and EHLO names
 * SYNOPSIS
 *	tests/fuzz/fuzz-smtp-addr [libFuzzer options] CORPUS...
 * DESCRIPTION
 *	The first input octet picks the smtp_parse_path() input flags
 *	(bit 0: MAIL, bit 1: SMTPUTF8); the rest is the path text. Checks:
 *	an accepted path re-serialises to exactly the octets it consumed
 *	and parses again to the same structure; its flags agree with its
 *	fields (a key iff no NO_KEY, QUOTED_AT only with QUOTED_LOCAL,
 *	IPV6 only with DOMAIN_LITERAL, UTF8 only when SMTPUTF8 was given);
 *	a key is already canonical for lib/dname; and allowing SMTPUTF8
 *	never refuses what was accepted without it. The same octets also
 *	go through smtp_parse_helo(). Built with --enable-fuzzer this is a
 *	libFuzzer binary; otherwise fuzz-main.c replays the corpus.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dname.h"
#include "smtp_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check_text - a reply text: present and one line */
static void
check_text(const char *error)
{
	if (error == NULL || *error == '\0' || strchr(error, '\n') != NULL)
		abort();
}

/* check_path - every invariant of an accepted path */
static void
check_path(const char *s, size_t len, unsigned in,
    const struct smtp_parse_path *p)
{
	struct smtp_parse_path again;
	char out[SMTP_PARSE_PATH_MAX + 1], key[DNAME_MAX + 1];
	const char *error = NULL;
	unsigned f = p->flags;
	int n;

	if (p->len < 2 || p->len > len || p->len > SMTP_PARSE_PATH_MAX)
		abort();
	if (strlen(p->local) > SMTP_PARSE_LOCAL_MAX)
		abort();
	if ((p->domain_key[0] == '\0') != ((f & SMTP_PARSE_PATH_NO_KEY) != 0))
		abort();
	if ((f & SMTP_PARSE_PATH_QUOTED_AT) &&
	    !(f & SMTP_PARSE_PATH_QUOTED_LOCAL))
		abort();
	if ((f & SMTP_PARSE_PATH_IPV6) &&
	    !(f & SMTP_PARSE_PATH_DOMAIN_LITERAL))
		abort();
	if ((f & SMTP_PARSE_PATH_UTF8) && !(in & SMTP_PARSE_PATH_IN_SMTPUTF8))
		abort();
	if ((f & SMTP_PARSE_PATH_NULL) && (!(in & SMTP_PARSE_PATH_IN_MAIL) ||
	    p->mailbox[0] != '\0' || p->len != 2))
		abort();
	if (((f & SMTP_PARSE_PATH_SOURCE_ROUTE) != 0) !=
	    (p->route[0] != '\0'))
		abort();
	if (!(f & SMTP_PARSE_PATH_UTF8) &&
	    !(f & (SMTP_PARSE_PATH_NULL | SMTP_PARSE_PATH_POSTMASTER))) {
		const char *q;

		for (q = p->mailbox; *q; q++)
			if ((unsigned char)*q >= 0x80)
				abort();
	}
	if (p->domain_key[0] != '\0') {
		if (dname_normalize(p->domain_key, key, &error) != 0 ||
		    strcmp(key, p->domain_key) != 0)
			abort();
		if (f & (SMTP_PARSE_PATH_DOMAIN_LITERAL |
		    SMTP_PARSE_PATH_TRAILING_DOT))
			abort();
	}
	/* re-serialised: the very octets consumed, and the same parse */
	n = smtp_parse_path_format(p, out, sizeof(out));
	if (n < 0 || (size_t)n != p->len || memcmp(out, s, p->len) != 0)
		abort();
	if (smtp_parse_path(out, (size_t)n, in, &again, &error) !=
	    SMTP_PARSE_OK || memcmp(&again, p, sizeof(again)) != 0)
		abort();
}

/* check_helo - an accepted EHLO argument */
static void
check_helo(const struct smtp_parse_helo *h)
{
	size_t n = strlen(h->name);

	if (n == 0 || n > SMTP_PARSE_DOMAIN_MAX)
		abort();
	if (!smtp_parse_utf8_valid(h->name, n))
		abort();
	if ((h->key[0] == '\0') != ((h->flags & (SMTP_PARSE_HELO_LITERAL |
	    SMTP_PARSE_HELO_BAD_LITERAL | SMTP_PARSE_HELO_NOT_DNAME)) != 0))
		abort();
}

/* LLVMFuzzerTestOneInput - parse one path both ways, check invariants */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_parse_path path, wide;
	struct smtp_parse_helo helo;
	const char *s, *error = NULL;
	enum smtp_parse_status st;
	unsigned in;
	size_t len;

	if (size == 0)
		return 0;
	in = data[0] & (SMTP_PARSE_PATH_IN_MAIL | SMTP_PARSE_PATH_IN_SMTPUTF8);
	s = (const char *)data + 1;
	len = size - 1;

	st = smtp_parse_path(s, len, in, &path, &error);
	if (st == SMTP_PARSE_OK) {
		check_path(s, len, in, &path);
		if (!(in & SMTP_PARSE_PATH_IN_SMTPUTF8)) {
			unsigned w = in | SMTP_PARSE_PATH_IN_SMTPUTF8;

			if (smtp_parse_path(s, len, w, &wide, &error) !=
			    SMTP_PARSE_OK ||
			    memcmp(&wide, &path, sizeof(wide)) != 0)
				abort();
		}
	} else {
		check_text(error);
		if (path.len != 0 || path.flags != 0)
			abort();
		if (st == SMTP_PARSE_UTF8_ADDRESS &&
		    smtp_parse_path(s, len, in | SMTP_PARSE_PATH_IN_SMTPUTF8,
		    &wide, &error) != SMTP_PARSE_OK)
			abort();
	}

	st = smtp_parse_helo(s, len, &helo, &error);
	if (st == SMTP_PARSE_OK)
		check_helo(&helo);
	else
		check_text(error);
	return 0;
}
