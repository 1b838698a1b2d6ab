/*
 * NAME
 *	buf 3h - growable byte buffer
 * DESCRIPTION
 *	struct buf holds unbounded data (message bodies, records, output).
 *	The data is always NUL-terminated past len so it can be printed as a
 *	string, but it may also hold NUL bytes. buf_free() releases the
 *	storage and sets the caller's pointer to NULL.
 */
#ifndef LIB_BUF_H
#define LIB_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	unsigned char	*data;
	size_t		 len;
	size_t		 cap;
};

struct buf	*buf_new(size_t hint);
void		 buf_free(struct buf **);
void		 buf_init(struct buf *);
void		 buf_release(struct buf *);
void		 buf_reserve(struct buf *, size_t more);
void		 buf_append(struct buf *, const void *, size_t);
void		 buf_puts(struct buf *, const char *);
void		 buf_putc(struct buf *, int);
void		 buf_printf(struct buf *, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
void		 buf_vprintf(struct buf *, const char *fmt, va_list)
		    __attribute__((format(printf, 2, 0)));
void		 buf_reset(struct buf *);
void		 buf_consume(struct buf *, size_t n);
const char	*buf_str(const struct buf *);

#endif
