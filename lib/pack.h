/*
 * NAME
 *	pack 3h - bounds-checked binary record encoding
 * DESCRIPTION
 *	pack_*() append fixed-width big-endian integers and length-prefixed
 *	strings to a struct buf. struct unpack walks a record; every read is
 *	bounds-checked and sets the error flag instead of overrunning, so a
 *	corrupt record is detected, never trusted. Big-endian integers also
 *	sort correctly as keys.
 */
#ifndef LIB_PACK_H
#define LIB_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct unpack {
	const unsigned char	*p;
	size_t			 left;
	int			 error;
};

void	pack_u8(struct buf *, uint8_t);
void	pack_u32(struct buf *, uint32_t);
void	pack_u64(struct buf *, uint64_t);
void	pack_str(struct buf *, const char *);	/* NULL packs as absent */

void	pack_be64(unsigned char out[8], uint64_t);
uint64_t unpack_be64(const unsigned char in[8]);

void	unpack_init(struct unpack *, const void *, size_t);
uint8_t	unpack_u8(struct unpack *);
uint32_t unpack_u32(struct unpack *);
uint64_t unpack_u64(struct unpack *);
char	*unpack_str(struct unpack *);		/* xmalloc'd, or NULL */

#endif
