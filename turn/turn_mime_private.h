/*
 * NAME
 *	turn_mime_private 3h - what turn_mime.c shares with turn_mime_hdr.c
 * DESCRIPTION
 *	Not for other modules: the entity walk (turn_mime.c) and the header
 *	field rewriting (turn_mime_hdr.c) share the field and Content-Type
 *	records, the error slot of one downgrade, and a few scanners over
 *	octets that are not NUL-terminated.
 */
#ifndef TURN_TURN_MIME_PRIVATE_H
#define TURN_TURN_MIME_PRIVATE_H

#include <stddef.h>

struct buf;

#define TURN_MIME_LINE_MAX	998	/* RFC 5322 2.1.1, RFC 5321 4.5.3.1.6 */
#define TURN_MIME_TOKEN_MAX	127	/* RFC 6838 4.2: type, subtype */
#define TURN_MIME_CHARSET_MAX	64	/* RFC 2978 names are up to 40 */
#define TURN_MIME_BOUNDARY_MAX	200	/* RFC 2046 says 70; be lenient */
#define TURN_MIME_NAME_SHOWN	64	/* field name octets in an error */

#define TURN_MIME_WSP(c)	((c) == ' ' || (c) == '\t')
#define TURN_MIME_NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* One header field, as offsets into its entity. */
struct turn_mime_field {
	size_t	start;		/* the first octet of the name */
	size_t	namelen;	/* the name, without WSP before the colon */
	size_t	value;		/* the first octet after the colon */
	size_t	end;		/* the end of its last line, before CRLF */
};

/* What a Content-Type field says. */
struct turn_mime_ctype {
	int	present;	/* there is a Content-Type field */
	int	valid;		/* it has a type/subtype */
	char	type[TURN_MIME_TOKEN_MAX + 1];
	char	subtype[TURN_MIME_TOKEN_MAX + 1];
	char	boundary[TURN_MIME_BOUNDARY_MAX + 1];
	size_t	blen;		/* 0: no usable boundary */
	char	charset[TURN_MIME_CHARSET_MAX + 1];
};

/* One downgrade. */
struct turn_mime_ctx {
	struct buf	*out;
	const char	*error;		/* the first error, or NULL */
};

extern const char turn_mime_hex[];
extern const char turn_mime_b64_alphabet[];

int	turn_mime_fail(struct turn_mime_ctx *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	turn_mime_line(const unsigned char *, size_t, size_t, size_t *,
	    size_t *);
int	turn_mime_clean(const unsigned char *, size_t);
int	turn_mime_has8bit(const unsigned char *, size_t);
size_t	turn_mime_utf8_len(const unsigned char *, size_t);
int	turn_mime_utf8(const unsigned char *, size_t);
int	turn_mime_ieq(const void *, size_t, const char *);
int	turn_mime_is_token(unsigned char);
void	turn_mime_trim(const unsigned char *, size_t *, size_t *);
size_t	turn_mime_skip_quoted(const unsigned char *, size_t, size_t);
size_t	turn_mime_param_end(const unsigned char *, size_t, size_t);
void	turn_mime_unfold(const unsigned char *, size_t, struct buf *);
void	turn_mime_copy(struct buf *, const unsigned char *, size_t);

/* turn_mime_hdr.c */
int	turn_mime_hdr_field(struct turn_mime_ctx *, const unsigned char *,
	    const struct turn_mime_field *, const struct turn_mime_ctype *);

#endif
