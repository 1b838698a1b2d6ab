/*
 * NAME
 *	conf 3h - table-driven "key = value" configuration parser
 * SYNOPSIS
 *	#include "conf.h"
 * DESCRIPTION
 *	The caller describes its keys with a table of struct conf_key,
 *	ended by an entry whose name is NULL. Each entry names a key, its
 *	value type, flags, a default written as text, bounds for numeric
 *	types, and the offset of the field it fills in the caller's struct.
 *	This module knows nothing about the keys themselves.
 *
 *	conf_defaults() parses every default through the same code as a
 *	value read from a file, so a bad default is caught too. A key whose
 *	default is NULL is left alone; the caller fills it afterwards with
 *	conf_set() (for example from gethostname()).
 *
 *	conf_parse() reads text of a given length (not necessarily NUL
 *	terminated). Lines are "key = value"; whitespace around key and
 *	value is trimmed; "#" at the start of a line or after whitespace
 *	starts a comment; blank lines are ignored. A key may be set once.
 *	When lines is not NULL, lines[i] receives the line that set keys[i],
 *	or 0 when the file did not set it.
 *
 *	Field types: CONF_STRING, CONF_LISTEN, CONF_HOSTNAME, CONF_HOSTPORT
 *	and CONF_PATH fill a char * (never NULL after conf_defaults(); ""
 *	for an empty value); CONF_BOOL fills an int; CONF_SIZE, CONF_DURATION
 *	and CONF_UINT fill a uint64_t (bytes, seconds, count);
 *	CONF_LOG_LEVEL fills an enum log_level. A listen list is stored
 *	normalised, without the spaces after its commas.
 *
 *	conf_listen_item() splits one listen element ("addr:port",
 *	"[v6]:port" or "*:port") for the code that binds it; the wildcard
 *	comes back as an empty address.
 *
 *	conf_release() frees the strings of a struct filled by this module.
 * DIAGNOSTICS
 *	Every function that can fail returns -1 and an allocated one-line
 *	message through error_r, which the caller frees; nothing is logged.
 *	Messages read "FILE:LINE: unknown key 'foo'", "FILE:LINE: missing
 *	'=' after 'foo'", "FILE:LINE: bad value for KEY 'VALUE': REASON",
 *	"FILE:LINE: 'KEY' already set at line N", "FILE:LINE: line longer
 *	than 4096 octets" and "FILE:LINE: NUL byte in line". Input quoted in
 *	a message is shortened and its unprintable bytes escaped.
 */
#ifndef LIB_CONF_H
#define LIB_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_LINE_MAX		4096		/* octets, without newline */
#define CONF_FILE_MAX		(1024 * 1024)	/* octets */
#define CONF_HOST_MAX		253		/* as DNAME_MAX */
#define CONF_LISTEN_ADDR_MAX	46		/* INET6_ADDRSTRLEN */

enum conf_type {
	CONF_STRING,		/* any text without control characters */
	CONF_BOOL,		/* yes/no, true/false, on/off, 1/0 */
	CONF_SIZE,		/* number with k, M or G */
	CONF_DURATION,		/* number with s, m, h, d or w */
	CONF_UINT,		/* plain number */
	CONF_LISTEN,		/* addr:port[, addr:port...] */
	CONF_LOG_LEVEL,		/* err, warning, info, debug */
	CONF_HOSTNAME,		/* ASCII LDH host name, lower-cased */
	CONF_HOSTPORT,		/* host name or [address], optional :port */
	CONF_PATH,		/* absolute path */
};

#define CONF_EMPTY_OK	0x01	/* an empty value is allowed */

struct conf_key {
	const char	*name;
	enum conf_type	 type;
	unsigned	 flags;
	const char	*def;		/* default as text, NULL: caller sets */
	size_t		 offset;	/* offsetof() the field */
	uint64_t	 min;		/* numeric types: lower bound */
	uint64_t	 max;		/* numeric types: upper bound, 0 none */
};

const struct conf_key *conf_lookup(const struct conf_key *, const char *name);
int	conf_set(const struct conf_key *, void *base, const char *value,
	    char **error_r);
int	conf_defaults(const struct conf_key *, void *base, char **error_r);
int	conf_parse(const struct conf_key *, void *base, const char *name,
	    const char *text, size_t len, unsigned *lines, char **error_r);
int	conf_read_file(const char *path, char **text_r, size_t *len_r,
	    char **error_r);
int	conf_listen_item(const char *item, size_t len, char *addr,
	    size_t addrsz, unsigned *port, const char **error_r);
void	conf_release(const struct conf_key *, void *base);

#endif
