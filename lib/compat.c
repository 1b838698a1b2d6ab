/*
 * NAME
 *	compat 3 - functions some C libraries lack
 * DESCRIPTION
 *	See compat.h.
 */
#include "config.h"

#include <string.h>

#include "compat.h"

#ifndef HAVE_STRLCPY
/* strlcpy - bounded copy that always terminates */
size_t
strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t c = n >= size ? size - 1 : n;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}
#endif

#ifndef HAVE_STRLCAT
/* strlcat - bounded append that always terminates */
size_t
strlcat(char *dst, const char *src, size_t size)
{
	size_t d = strnlen(dst, size);

	if (d == size)
		return size + strlen(src);
	return d + strlcpy(dst + d, src, size - d);
}
#endif
