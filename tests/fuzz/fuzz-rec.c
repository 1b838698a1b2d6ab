/*
 * NAME
 *	fuzz-rec - fuzz target for the store's record decoders
 * DESCRIPTION
 *	The first byte selects the decoder (even: message, odd: domain);
 *	the rest is the record. A record that decodes must encode again
 *	to the same bytes, so the decoder can neither accept garbage it
 *	cannot represent nor lose a field.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "queue.h"
#include "queue_rec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
			if (b.len != size - 1 || memcmp(b.data, data + 1, b.len))
				abort();
			queue_msg_clear(&m);
		}
	} else {
		if (queue_rec_dom_decode(data + 1, size - 1, &d) == 0) {
			queue_rec_dom_encode(&b, &d);
			if (b.len != size - 1 || memcmp(b.data, data + 1, b.len))
				abort();
			queue_domain_clear(&d);
		}
	}
	buf_release(&b);
	return 0;
}
