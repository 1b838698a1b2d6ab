/*
 * NAME
 *	turn_mime 3h - 8BITMIME to 7-bit MIME downgrade of a message
 * SYNOPSIS
 *	#include "turn_mime.h"
 * DESCRIPTION
 *	RFC 6152 section 3: a message received with BODY=8BITMIME may only
 *	be relayed to a server that does not announce 8BITMIME after it
 *	has been converted to 7-bit MIME. turn_mime_is_7bit() says whether
 *	the text needs no conversion: every octet is below 128 and not NUL,
 *	and no line is longer than 998 octets (RFC 5322 section 2.1.1).
 *
 *	turn_mime_downgrade() appends a 7-bit version of the message to
 *	out, with CRLF line ends and no line over 998 octets, and returns
 *	0. When the message cannot be converted safely (8-bit octets in an
 *	address, in a structured header field, in a message/partial part;
 *	an unknown Content-Transfer-Encoding over 8-bit data; nesting
 *	deeper than 32 levels) it leaves out as it was, returns -1 and
 *	sets *error_r to a message such as "8-bit octets in header field
 *	Date", so that the caller can fail the message with 5.6.3 (RFC
 *	3463: conversion required but not supported). The error string
 *	stays valid until the next call in the same thread. Nothing is
 *	logged. The input need not be NUL-terminated.
 */
#ifndef TURN_TURN_MIME_H
#define TURN_TURN_MIME_H

#include <stddef.h>

struct buf;

int	turn_mime_is_7bit(const void *in, size_t len);
int	turn_mime_downgrade(const void *in, size_t len, struct buf *out,
	    const char **error_r);

#endif
