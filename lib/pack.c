/*
 * NAME
 *	pack 3 - bounds-checked binary record encoding
 * DESCRIPTION
 *	See pack.h. Strings are encoded as a u32 length plus bytes; the
 *	length 0xffffffff marks a NULL pointer. A string may not contain
 *	NUL; such a record is reported as corrupt.
 */
#include "config.h"

#include <string.h>

#include "pack.h"
#include "xmalloc.h"

#define PACK_NULL_LEN	0xffffffffU
#define PACK_MAX_STR	(64U * 1024 * 1024)

/* pack_be64 - encode a u64 big-endian into 8 bytes */
void
pack_be64(unsigned char out[8], uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		out[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

/* unpack_be64 - decode 8 big-endian bytes */
uint64_t
unpack_be64(const unsigned char in[8])
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	return v;
}

/* pack_u8 - append one byte */
void
pack_u8(struct buf *b, uint8_t v)
{
	buf_append(b, &v, 1);
}

/* pack_u32 - append a big-endian u32 */
void
pack_u32(struct buf *b, uint32_t v)
{
	unsigned char c[4] = { v >> 24, v >> 16, v >> 8, v };

	buf_append(b, c, 4);
}

/* pack_u64 - append a big-endian u64 */
void
pack_u64(struct buf *b, uint64_t v)
{
	unsigned char c[8];

	pack_be64(c, v);
	buf_append(b, c, 8);
}

/* pack_str - append a length-prefixed string, NULL allowed */
void
pack_str(struct buf *b, const char *s)
{
	size_t n;

	if (s == NULL) {
		pack_u32(b, PACK_NULL_LEN);
		return;
	}
	n = strlen(s);
	pack_u32(b, (uint32_t)n);
	buf_append(b, s, n);
}

/* unpack_init - start reading a record */
void
unpack_init(struct unpack *u, const void *p, size_t n)
{
	u->p = p;
	u->left = n;
	u->error = 0;
}

/* unpack_take - consume n bytes, or flag an error */
static const unsigned char *
unpack_take(struct unpack *u, size_t n)
{
	const unsigned char *p;

	if (u->error || u->left < n) {
		u->error = 1;
		return NULL;
	}
	p = u->p;
	u->p += n;
	u->left -= n;
	return p;
}

/* unpack_u8 - read one byte */
uint8_t
unpack_u8(struct unpack *u)
{
	const unsigned char *p = unpack_take(u, 1);

	return p ? p[0] : 0;
}

/* unpack_u32 - read a big-endian u32 */
uint32_t
unpack_u32(struct unpack *u)
{
	const unsigned char *p = unpack_take(u, 4);

	if (p == NULL)
		return 0;
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/* unpack_u64 - read a big-endian u64 */
uint64_t
unpack_u64(struct unpack *u)
{
	const unsigned char *p = unpack_take(u, 8);

	return p ? unpack_be64(p) : 0;
}

/* unpack_str - read a length-prefixed string into fresh storage */
char *
unpack_str(struct unpack *u)
{
	const unsigned char *p;
	uint32_t n = unpack_u32(u);

	if (u->error || n == PACK_NULL_LEN)
		return NULL;
	if (n > PACK_MAX_STR || (p = unpack_take(u, n)) == NULL) {
		u->error = 1;
		return NULL;
	}
	if (memchr(p, '\0', n) != NULL) {
		u->error = 1;
		return NULL;
	}
	return xstrndup((const char *)p, n);
}
