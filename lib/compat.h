/*
 * NAME
 *	compat 3h - functions some C libraries lack
 * DESCRIPTION
 *	strlcpy() and strlcat() as in OpenBSD, provided when libc has none
 *	(glibc before 2.38). Both return the length they tried to create;
 *	a result >= size means truncation, which callers must check.
 */
#ifndef LIB_COMPAT_H
#define LIB_COMPAT_H

#include <stddef.h>

#ifndef HAVE_STRLCPY
size_t	strlcpy(char *dst, const char *src, size_t size);
#endif
#ifndef HAVE_STRLCAT
size_t	strlcat(char *dst, const char *src, size_t size);
#endif

#endif
