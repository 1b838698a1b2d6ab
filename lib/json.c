/*
 * NAME
 *	json 3 - streaming JSON writer into a growable buffer
 * SYNOPSIS
 *	#include "json.h"
 *
 *	struct json j;
 *	json_init(&j, out, 1);
 *	json_begin_object(&j);
 *	json_kv_string(&j, "name", name);
 *	json_end_object(&j);
 *	json_finish(&j);
 * DESCRIPTION
 *	See json.h. The writer keeps one small frame per open container
 *	(its kind and whether it already holds an element) and decides
 *	where commas, colons and line breaks go. String escaping follows
 *	RFC 8259 section 7; the UTF-8 checks follow RFC 3629 section 4 and
 *	replace each maximal invalid subsequence with U+FFFD, as Unicode
 *	chapter 3 ("U+FFFD substitution of maximal subparts") recommends.
 * DIAGNOSTICS
 *	Misuse is fatal (fatalx): it is a bug in the caller, never bad data.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "log.h"

static const char json_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* json_init - start a document that is written to out */
void
json_init(struct json *j, struct buf *out, int pretty)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->pretty = pretty;
}

/* json_indent - newline and indentation for the current depth */
static void
json_indent(struct json *j)
{
	int i;

	if (!j->pretty)
		return;
	buf_putc(j->out, '\n');
	for (i = 0; i < j->depth; i++)
		buf_puts(j->out, "  ");
}

/* json_value_prefix - separator before a value, and misuse checks */
static void
json_value_prefix(struct json *j)
{
	if (j->in_b64)
		fatalx("json: value inside a base64 string");
	if (j->depth == 0) {
		if (j->root_done)
			fatalx("json: second top-level value");
		j->root_done = 1;
		return;
	}
	if (j->kind[j->depth - 1] == '{') {
		if (!j->after_key)
			fatalx("json: object member without a key");
		j->after_key = 0;
		return;
	}
	if (j->nonempty[j->depth - 1])
		buf_putc(j->out, ',');
	j->nonempty[j->depth - 1] = 1;
	json_indent(j);
}

/* json_begin - open a container of the given kind */
static void
json_begin(struct json *j, char kind)
{
	json_value_prefix(j);
	if (j->depth >= JSON_DEPTH_MAX)
		fatalx("json: nesting deeper than %d", JSON_DEPTH_MAX);
	buf_putc(j->out, kind);
	j->kind[j->depth] = kind;
	j->nonempty[j->depth] = 0;
	j->depth++;
}

/* json_end - close the innermost container, which must be of kind */
static void
json_end(struct json *j, char kind)
{
	if (j->depth == 0 || j->kind[j->depth - 1] != kind || j->after_key ||
	    j->in_b64)
		fatalx("json: unbalanced end of %s",
		    kind == '{' ? "object" : "array");
	j->depth--;
	if (j->nonempty[j->depth])
		json_indent(j);
	buf_putc(j->out, kind == '{' ? '}' : ']');
}

/* json_begin_object - open an object */
void
json_begin_object(struct json *j)
{
	json_begin(j, '{');
}

/* json_end_object - close the innermost object */
void
json_end_object(struct json *j)
{
	json_end(j, '{');
}

/* json_begin_array - open an array */
void
json_begin_array(struct json *j)
{
	json_begin(j, '[');
}

/* json_end_array - close the innermost array */
void
json_end_array(struct json *j)
{
	json_end(j, '[');
}

/* json_key - name the next member of the innermost object */
void
json_key(struct json *j, const char *key)
{
	if (j->depth == 0 || j->kind[j->depth - 1] != '{' || j->after_key ||
	    j->in_b64)
		fatalx("json: key outside an object");
	if (j->nonempty[j->depth - 1])
		buf_putc(j->out, ',');
	j->nonempty[j->depth - 1] = 1;
	json_indent(j);
	buf_putc(j->out, '"');
	json_escape(j->out, key, strlen(key));
	buf_puts(j->out, j->pretty ? "\": " : "\":");
	j->after_key = 1;
}

/* json_finish - check the document is complete and end it with a newline */
void
json_finish(struct json *j)
{
	if (j->depth != 0 || j->after_key || j->in_b64 || !j->root_done)
		fatalx("json: document not complete");
	buf_putc(j->out, '\n');
}

/* json_utf8_len - length of a valid UTF-8 sequence at p, or 0 */
static size_t
json_utf8_len(const unsigned char *p, size_t left, size_t *bad_r)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	size_t need, i;

	if (c >= 0xC2 && c <= 0xDF)
		need = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0;		/* overlong */
		else if (c == 0xED)
			hi = 0x9F;		/* UTF-16 surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90;		/* overlong */
		else if (c == 0xF4)
			hi = 0x8F;		/* past U+10FFFF */
	} else {
		*bad_r = 1;
		return 0;
	}
	for (i = 1; i < need; i++) {
		if (i >= left || p[i] < lo || p[i] > hi) {
			*bad_r = i;	/* the maximal invalid subpart */
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return need;
}

/* json_escape - append the escaped form of bytes, without quotes */
void
json_escape(struct buf *out, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0, run, n, bad;

	while (i < len) {
		/* copy runs of plain ASCII in one go */
		for (run = i; run < len && p[run] >= 0x20 && p[run] < 0x7F &&
		    p[run] != '"' && p[run] != '\\'; run++)
			;
		if (run > i) {
			buf_append(out, p + i, run - i);
			i = run;
			continue;
		}
		switch (p[i]) {
		case '"':  buf_puts(out, "\\\""); i++; continue;
		case '\\': buf_puts(out, "\\\\"); i++; continue;
		case '\b': buf_puts(out, "\\b"); i++; continue;
		case '\f': buf_puts(out, "\\f"); i++; continue;
		case '\n': buf_puts(out, "\\n"); i++; continue;
		case '\r': buf_puts(out, "\\r"); i++; continue;
		case '\t': buf_puts(out, "\\t"); i++; continue;
		default:
			break;
		}
		if (p[i] < 0x20 || p[i] == 0x7F) {
			buf_printf(out, "\\u%04x", p[i]);
			i++;
			continue;
		}
		bad = 0;
		n = json_utf8_len(p + i, len - i, &bad);
		if (n == 0) {
			buf_puts(out, "\\ufffd");
			i += bad;
			continue;
		}
		/* U+2028 and U+2029 end lines in JavaScript */
		if (n == 3 && p[i] == 0xE2 && p[i + 1] == 0x80 &&
		    (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
			buf_puts(out, p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029");
			i += 3;
			continue;
		}
		buf_append(out, p + i, n);
		i += n;
	}
}

/* json_string_len - a string value from bytes of any kind */
void
json_string_len(struct json *j, const void *data, size_t len)
{
	json_value_prefix(j);
	buf_putc(j->out, '"');
	json_escape(j->out, data, len);
	buf_putc(j->out, '"');
}

/* json_string - a string value, or null for a NULL pointer */
void
json_string(struct json *j, const char *s)
{
	if (s == NULL)
		json_null(j);
	else
		json_string_len(j, s, strlen(s));
}

/* json_int - a signed integer value */
void
json_int(struct json *j, int64_t v)
{
	json_value_prefix(j);
	buf_printf(j->out, "%" PRId64, v);
}

/* json_uint - an unsigned integer value */
void
json_uint(struct json *j, uint64_t v)
{
	json_value_prefix(j);
	buf_printf(j->out, "%" PRIu64, v);
}

/* json_bool - true or false */
void
json_bool(struct json *j, int v)
{
	json_value_prefix(j);
	buf_puts(j->out, v ? "true" : "false");
}

/* json_null - the null value */
void
json_null(struct json *j)
{
	json_value_prefix(j);
	buf_puts(j->out, "null");
}

/* json_b64_quad - append the four characters for up to three bytes */
static void
json_b64_quad(struct buf *out, const unsigned char *in, size_t n)
{
	char q[4];
	uint32_t v;

	v = (uint32_t)in[0] << 16;
	if (n > 1)
		v |= (uint32_t)in[1] << 8;
	if (n > 2)
		v |= in[2];
	q[0] = json_b64_alphabet[(v >> 18) & 0x3F];
	q[1] = json_b64_alphabet[(v >> 12) & 0x3F];
	q[2] = n > 1 ? json_b64_alphabet[(v >> 6) & 0x3F] : '=';
	q[3] = n > 2 ? json_b64_alphabet[v & 0x3F] : '=';
	buf_append(out, q, sizeof(q));
}

/* json_base64_encode - append the base64 form of bytes (RFC 4648) */
void
json_base64_encode(struct buf *out, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (; len >= 3; p += 3, len -= 3)
		json_b64_quad(out, p, 3);
	if (len)
		json_b64_quad(out, p, len);
}

/* json_base64_begin - open a string value that receives base64 text */
void
json_base64_begin(struct json *j)
{
	json_value_prefix(j);
	buf_putc(j->out, '"');
	j->in_b64 = 1;
	j->b64len = 0;
}

/* json_base64_add - encode more bytes, keeping a partial group back */
void
json_base64_add(struct json *j, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t whole;

	if (!j->in_b64)
		fatalx("json: base64 data outside a base64 string");
	while (len > 0 && j->b64len > 0 && j->b64len < 3) {
		j->b64[j->b64len++] = *p++;
		len--;
	}
	if (j->b64len == 3) {
		json_b64_quad(j->out, j->b64, 3);
		j->b64len = 0;
	}
	whole = len - len % 3;
	json_base64_encode(j->out, p, whole);
	p += whole;
	len -= whole;
	if (len > 0) {
		memcpy(j->b64, p, len);
		j->b64len = len;
	}
}

/* json_base64_end - flush the last partial group and close the string */
void
json_base64_end(struct json *j)
{
	if (!j->in_b64)
		fatalx("json: base64 end without a begin");
	if (j->b64len)
		json_b64_quad(j->out, j->b64, j->b64len);
	j->b64len = 0;
	j->in_b64 = 0;
	buf_putc(j->out, '"');
}

/* json_kv_string - member with a string value (NULL writes null) */
void
json_kv_string(struct json *j, const char *key, const char *v)
{
	json_key(j, key);
	json_string(j, v);
}

/* json_kv_int - member with a signed integer value */
void
json_kv_int(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_int(j, v);
}

/* json_kv_uint - member with an unsigned integer value */
void
json_kv_uint(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	json_uint(j, v);
}

/* json_kv_bool - member with a boolean value */
void
json_kv_bool(struct json *j, const char *key, int v)
{
	json_key(j, key);
	json_bool(j, v);
}

/* json_kv_null - member whose value is null */
void
json_kv_null(struct json *j, const char *key)
{
	json_key(j, key);
	json_null(j);
}
