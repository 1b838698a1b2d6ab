/*
 * NAME
 *	fuzz-rec - fuzz target for the store's record decoders
 * DESCRIPTION
 *	The first byte selects the decoder (even: message, odd: domain);
 *	the rest is the record. A record of the current version that
 *	decodes must encode again to the same bytes, so the decoder can
 *	neither accept garbage it cannot represent nor lose a field. An
 *	older version (still read, written as the current one) must give
 *	a current record that decodes and encodes to itself.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "queue.h"
#include "queue_rec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_rec_same - the encoding is the input, byte for byte */
static void
fuzz_rec_same(const struct buf *b, const uint8_t *p, size_t n)
{
	if (b->len != n || memcmp(b->data, p, n) != 0)
		abort();
}

/* fuzz_rec_stable - an upgraded record decodes and encodes to itself */
static void
fuzz_rec_stable(const struct buf *b, int domain)
{
	struct queue_msg m;
	struct queue_domain d;
	struct buf again;

	buf_init(&again);
	if (domain) {
		if (queue_rec_dom_decode(b->data, b->len, &d) != 0)
			abort();
		queue_rec_dom_encode(&again, &d);
		queue_domain_clear(&d);
	} else {
		if (queue_rec_msg_decode(b->data, b->len, &m) != 0)
			abort();
		queue_rec_msg_encode(&again, &m);
		queue_msg_clear(&m);
	}
	if (again.len != b->len || memcmp(again.data, b->data, b->len) != 0)
		abort();
	buf_release(&again);
}

/* LLVMFuzzerTestOneInput - decode, re-encode, compare */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_msg m;
	struct queue_domain d;
	struct buf b;

	if (size < 1)
		return 0;
	buf_init(&b);
	if ((data[0] & 1) == 0) {
		if (queue_rec_msg_decode(data + 1, size - 1, &m) == 0) {
			queue_rec_msg_encode(&b, &m);
			queue_msg_clear(&m);
			if (size > 1 && data[1] == QUEUE_REC_MSG_VERSION)
				fuzz_rec_same(&b, data + 1, size - 1);
			else
				fuzz_rec_stable(&b, 0);
		}
	} else {
		if (queue_rec_dom_decode(data + 1, size - 1, &d) == 0) {
			queue_rec_dom_encode(&b, &d);
			queue_domain_clear(&d);
			if (size > 1 && data[1] == QUEUE_REC_DOM_VERSION)
				fuzz_rec_same(&b, data + 1, size - 1);
			else
				fuzz_rec_stable(&b, 1);
		}
	}
	buf_release(&b);
	return 0;
}
