/*
 * NAME
 *	xmalloc 3h - allocation that cannot fail
 * DESCRIPTION
 *	Each allocator calls fatalx() when memory is exhausted, so callers
 *	never test for NULL. xasprintf() formats into a fresh string.
 */
#ifndef LIB_XMALLOC_H
#define LIB_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
