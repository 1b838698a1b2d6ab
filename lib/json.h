/*
 * NAME
 *	json 3h - streaming JSON writer into a growable buffer
 * SYNOPSIS
 *	#include "json.h"
 * DESCRIPTION
 *	struct json writes one JSON document into a struct buf as the
 *	caller walks its data: json_begin_object(), json_key(), a value,
 *	..., json_end_object(), json_finish(). Commas, colons and (when
 *	pretty) indentation are placed by the writer, so callers cannot
 *	produce malformed output by forgetting one.
 *
 *	Strings are escaped as RFC 8259 requires: quote, backslash and
 *	every control character are escaped, and bytes that are not valid
 *	UTF-8 (stray continuation bytes, overlong forms, surrogates, code
 *	points past U+10FFFF, truncated sequences) each become \ufffd, so
 *	the output is always valid UTF-8 whatever the input. U+2028 and
 *	U+2029 are escaped as well so the text is also safe JavaScript.
 *
 *	json_base64_begin()/json_base64_add()/json_base64_end() write one
 *	string value holding the RFC 4648 base64 form of bytes that arrive
 *	in pieces, for content that must survive byte for byte.
 *
 *	Misuse (a value in an object without a key, unbalanced ends, nesting
 *	deeper than JSON_DEPTH_MAX) is a programming error and is fatal.
 *	The writer knows nothing about mail.
 */
#ifndef LIB_JSON_H
#define LIB_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define JSON_DEPTH_MAX	32

struct json {
	struct buf	*out;
	int		 pretty;
	int		 depth;
	char		 kind[JSON_DEPTH_MAX];	/* '{' or '[' */
	unsigned char	 nonempty[JSON_DEPTH_MAX];
	int		 after_key;
	int		 root_done;	/* the top-level value was written */
	int		 in_b64;
	unsigned char	 b64[3];
	size_t		 b64len;
};

void	json_init(struct json *, struct buf *out, int pretty);
void	json_finish(struct json *);

void	json_begin_object(struct json *);
void	json_end_object(struct json *);
void	json_begin_array(struct json *);
void	json_end_array(struct json *);
void	json_key(struct json *, const char *);

void	json_string(struct json *, const char *);	/* NULL writes null */
void	json_string_len(struct json *, const void *, size_t);
void	json_int(struct json *, int64_t);
void	json_uint(struct json *, uint64_t);
void	json_bool(struct json *, int);
void	json_null(struct json *);

void	json_base64_begin(struct json *);
void	json_base64_add(struct json *, const void *, size_t);
void	json_base64_end(struct json *);

void	json_kv_string(struct json *, const char *key, const char *);
void	json_kv_int(struct json *, const char *key, int64_t);
void	json_kv_uint(struct json *, const char *key, uint64_t);
void	json_kv_bool(struct json *, const char *key, int);
void	json_kv_null(struct json *, const char *key);

void	json_escape(struct buf *, const void *, size_t);
void	json_base64_encode(struct buf *, const void *, size_t);

#endif
