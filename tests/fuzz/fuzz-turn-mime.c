/*
 * NAME
 *	fuzz-turn-mime - libFuzzer target for the 8BITMIME downgrade
 * SYNOPSIS
 *	tests/fuzz/fuzz-turn-mime [libFuzzer options] CORPUS...
 * DESCRIPTION
 *	The input is a message. Checks, beyond not crashing nor reading
 *	past its end: turn_mime_downgrade() either appends a text that
 *	turn_mime_is_7bit() accepts, with CRLF line ends only, and that a
 *	second downgrade leaves exactly as it is (7-bit MIME is a fixed
 *	point), or it returns a one-line error and leaves the buffer as it
 *	was. Built with --enable-fuzzer this is a libFuzzer binary;
 *	otherwise fuzz-main.c replays the corpus.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "turn_mime.h"

/* what the buffer holds before each downgrade: it must stay */
#define FUZZ_PREFIX	"x\r\n"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check_crlf - every CR starts a CRLF and every LF ends one */
static void
check_crlf(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n')) ||
		    (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')))
			abort();
}

/* LLVMFuzzerTestOneInput - downgrade, check, downgrade again */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const size_t plen = strlen(FUZZ_PREFIX);
	const char *error = NULL;
	struct buf out, again;

	buf_init(&out);
	buf_init(&again);
	buf_puts(&out, FUZZ_PREFIX);
	if (turn_mime_downgrade(data, len, &out, &error) == -1) {
		if (error == NULL || *error == '\0' ||
		    strchr(error, '\n') != NULL || out.len != plen ||
		    memcmp(out.data, FUZZ_PREFIX, plen) != 0)
			abort();
	} else {
		if (!turn_mime_is_7bit(out.data + plen, out.len - plen))
			abort();
		check_crlf(out.data + plen, out.len - plen);
		if (turn_mime_downgrade(out.data + plen, out.len - plen,
		    &again, &error) == -1 || again.len != out.len - plen ||
		    memcmp(again.data, out.data + plen, again.len) != 0)
			abort();
	}
	buf_release(&out);
	buf_release(&again);
	return 0;
}
