/*
 * NAME
 *	dname 3h - validate and normalise DNS domain names
 * DESCRIPTION
 *	dname_normalize() turns a user- or wire-supplied domain into the
 *	canonical key form: IDNA2008 A-labels (via libidn2), lower case, no
 *	trailing dot. It rejects empty labels, labels over 63 octets, names
 *	over 253 octets, characters outside letters, digits and hyphen,
 *	labels that start or end with a hyphen, address literals and
 *	single-label names. Nothing else in the tree may use a domain as a
 *	key before it has passed through here.
 */
#ifndef LIB_DNAME_H
#define LIB_DNAME_H

#include <stddef.h>

#define DNAME_MAX	253

int	dname_normalize(const char *in, char out[DNAME_MAX + 1],
	    const char **error_r);
int	dname_is_subdomain(const char *name, const char *parent);

#endif
