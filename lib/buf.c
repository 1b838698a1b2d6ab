/*
 * NAME
 *	buf 3 - growable byte buffer
 * DESCRIPTION
 *	See buf.h. Growth is geometric; allocation failure is fatal.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "xmalloc.h"

/* buf_init - make an empty buffer in caller storage */
void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* buf_new - allocate an empty buffer */
struct buf *
buf_new(size_t hint)
{
	struct buf *b = xcalloc(1, sizeof(*b));

	if (hint)
		buf_reserve(b, hint);
	return b;
}

/* buf_release - free the storage of a caller-owned buffer */
void
buf_release(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

/* buf_free - free a buffer from buf_new() and clear the pointer */
void
buf_free(struct buf **bp)
{
	if (*bp == NULL)
		return;
	buf_release(*bp);
	free(*bp);
	*bp = NULL;
}

/* buf_reserve - make room for more bytes plus the terminating NUL */
void
buf_reserve(struct buf *b, size_t more)
{
	size_t need, ncap;

	if (more > (size_t)-1 - b->len - 1)
		fatalx("buffer size overflow");
	need = b->len + more + 1;
	if (need <= b->cap)
		return;
	ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
	b->data = xreallocarray(b->data, ncap, 1);
	b->cap = ncap;
}

/* buf_append - append bytes */
void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* buf_puts - append a C string */
void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/* buf_putc - append one byte */
void
buf_putc(struct buf *b, int c)
{
	unsigned char ch = (unsigned char)c;

	buf_append(b, &ch, 1);
}

/* buf_vprintf - append formatted text */
void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	if (n < 0)
		fatalx("buf_printf: bad format");
	buf_reserve(b, (size_t)n);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	b->len += (size_t)n;
}

/* buf_printf - append formatted text */
void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

/* buf_reset - empty the buffer, keeping its storage */
void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* buf_consume - drop n bytes from the front */
void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

/* buf_str - the contents as a C string (never NULL) */
const char *
buf_str(const struct buf *b)
{
	return b->data ? (const char *)b->data : "";
}
