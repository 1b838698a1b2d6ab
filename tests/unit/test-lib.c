/*
 * NAME
 *	test-lib - unit tests for lib/units, lib/dname, lib/pack and lib/buf
 * SYNOPSIS
 *	CMOCKA_MESSAGE_OUTPUT=TAP tests/unit/test-lib
 * DESCRIPTION
 *	Table-driven: each row of the units and dname tables is its own
 *	TAP case. pack and buf are tested by round trips, by truncating
 *	every record at every length, and by growing buffers past their
 *	first allocation.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "dname.h"
#include "json.h"
#include "pack.h"
#include "units.h"
#include "xmalloc.h"

/* units */

enum unit_kind { U_SIZE, U_DURATION, U_UINT };

struct unit_case {
	enum unit_kind	 kind;
	const char	*in;
	int		 rc;
	uint64_t	 want;		/* when rc == 0 */
	const char	*error;		/* when rc == -1 */
};

static const struct unit_case unit_cases[] = {
	{ U_SIZE, "0", 0, 0, NULL },
	{ U_SIZE, "1", 0, 1, NULL },
	{ U_SIZE, "1k", 0, 1024, NULL },
	{ U_SIZE, "1K", 0, 1024, NULL },
	{ U_SIZE, "1kB", 0, 1024, NULL },
	{ U_SIZE, "512b", 0, 512, NULL },
	{ U_SIZE, "512B", 0, 512, NULL },
	{ U_SIZE, "512bb", -1, 0, "trailing characters after size" },
	{ U_SIZE, "50M", 0, 50ULL * 1024 * 1024, NULL },
	{ U_SIZE, "50m", 0, 50ULL * 1024 * 1024, NULL },
	{ U_SIZE, "3G", 0, 3ULL * 1024 * 1024 * 1024, NULL },
	{ U_SIZE, "007k", 0, 7 * 1024, NULL },
	{ U_SIZE, "18446744073709551615", 0, UINT64_MAX, NULL },
	{ U_SIZE, "17179869183G", 0, 17179869183ULL << 30, NULL },
	{ U_SIZE, "18446744073709551616", -1, 0, "number too large" },
	{ U_SIZE, "99999999999999999999999", -1, 0, "number too large" },
	{ U_SIZE, "17179869184G", -1, 0, "number too large" },
	{ U_SIZE, "18014398509481984k", -1, 0, "number too large" },
	{ U_SIZE, "", -1, 0, "expected a number" },
	{ U_SIZE, "M", -1, 0, "expected a number" },
	{ U_SIZE, "-1", -1, 0, "expected a number" },
	{ U_SIZE, "+1", -1, 0, "expected a number" },
	{ U_SIZE, " 1", -1, 0, "expected a number" },
	{ U_SIZE, "1 ", -1, 0, "unknown size unit (use k, M or G)" },
	{ U_SIZE, "1T", -1, 0, "unknown size unit (use k, M or G)" },
	{ U_SIZE, "0x10", -1, 0, "unknown size unit (use k, M or G)" },
	{ U_SIZE, "1.5M", -1, 0, "unknown size unit (use k, M or G)" },
	{ U_SIZE, "1MM", -1, 0, "trailing characters after size" },
	{ U_SIZE, "1kBx", -1, 0, "trailing characters after size" },
	{ U_DURATION, "0", 0, 0, NULL },
	{ U_DURATION, "45", 0, 45, NULL },
	{ U_DURATION, "45s", 0, 45, NULL },
	{ U_DURATION, "2m", 0, 120, NULL },
	{ U_DURATION, "3h", 0, 3 * 3600, NULL },
	{ U_DURATION, "5d", 0, 5 * 86400, NULL },
	{ U_DURATION, "2w", 0, 14 * 86400, NULL },
	{ U_DURATION, "30500568904943w", 0, 30500568904943ULL * 604800,
	    NULL },
	{ U_DURATION, "30500568904944w", -1, 0, "number too large" },
	{ U_DURATION, "", -1, 0, "expected a number" },
	{ U_DURATION, "-5s", -1, 0, "expected a number" },
	{ U_DURATION, "+5s", -1, 0, "expected a number" },
	{ U_DURATION, "d", -1, 0, "expected a number" },
	{ U_DURATION, "1M", -1, 0,
	    "unknown duration unit (use s, m, h, d or w)" },
	{ U_DURATION, "1y", -1, 0,
	    "unknown duration unit (use s, m, h, d or w)" },
	{ U_DURATION, "1d1h", -1, 0, "trailing characters after duration" },
	{ U_DURATION, "1ss", -1, 0, "trailing characters after duration" },
	{ U_UINT, "0", 0, 0, NULL },
	{ U_UINT, "42", 0, 42, NULL },
	{ U_UINT, "18446744073709551615", 0, UINT64_MAX, NULL },
	{ U_UINT, "18446744073709551616", -1, 0, "number too large" },
	{ U_UINT, "42k", -1, 0, "trailing characters after number" },
	{ U_UINT, "4 2", -1, 0, "trailing characters after number" },
	{ U_UINT, "-42", -1, 0, "expected a number" },
	{ U_UINT, "", -1, 0, "expected a number" },
};

/* test_units_parse - one row of unit_cases */
static void
test_units_parse(void **state)
{
	const struct unit_case *t = *state;
	const char *error = NULL;
	uint64_t v = 12345;
	int rc;

	switch (t->kind) {
	case U_SIZE:
		rc = units_parse_size(t->in, &v, &error);
		break;
	case U_DURATION:
		rc = units_parse_duration(t->in, &v, &error);
		break;
	default:
		rc = units_parse_uint(t->in, &v, &error);
		break;
	}
	assert_int_equal(rc, t->rc);
	if (rc == 0)
		assert_true(v == t->want);
	else {
		assert_string_equal(error, t->error);
		assert_true(v == 12345);	/* untouched on error */
	}
}

/* test_units_fmt - the short human forms odmrctl prints */
static void
test_units_fmt(void **state)
{
	static const struct { uint64_t v; const char *size, *dur; } t[] = {
		{ 0, "0", "0s" },
		{ 45, "45", "45s" },
		{ 720, "720", "12m" },
		{ 1023, "1023", "17m" },
		{ 1024, "1.0K", "17m" },
		{ 3900, "3.8K", "1h05m" },
		{ 11520, "11K", "3h12m" },
		{ 187200, "183K", "2d04h" },
		{ 12ULL << 20, "12M", "145d15h" },
		{ 3ULL << 29, "1.5G", "18641d08h" },
	};
	char out[32], tiny[3];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		units_fmt_size(t[i].v, out, sizeof(out));
		assert_string_equal(out, t[i].size);
		units_fmt_duration(t[i].v, out, sizeof(out));
		assert_string_equal(out, t[i].dur);
	}
	/* the output is bounded by the buffer */
	units_fmt_size(123456, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), 2);
	units_fmt_duration(123456, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), 2);
}

/* dname */

struct dname_case {
	const char	*in;	/* "@63" etc. are built at run time */
	int		 rc;
	const char	*want;	/* normalised name, or error text */
};

static const struct dname_case dname_cases[] = {
	{ "example.org", 0, "example.org" },
	{ "Example.ORG", 0, "example.org" },
	{ "MX.Sub.Example.Org", 0, "mx.sub.example.org" },
	{ "b\xc3\xbc" "cher.example", 0, "xn--bcher-kva.example" },
	{ "xn--bcher-kva.example", 0, "xn--bcher-kva.example" },
	{ "XN--BCHER-KVA.example", 0, "xn--bcher-kva.example" },
	{ "a-b.example", 0, "a-b.example" },
	{ "a--b.example", 0, "a--b.example" },
	{ "123.example", 0, "123.example" },
	{ "a.b2", 0, "a.b2" },
	{ "example.org.", -1, "domain name ends with a dot" },
	{ ".", -1, "domain name ends with a dot" },
	{ "a..example", -1, "empty label in domain name" },
	{ ".example", -1, "empty label in domain name" },
	{ "", -1, "empty domain name" },
	{ "[192.0.2.1]", -1, "address literals are not domain names" },
	{ "[IPv6:2001:db8::1]", -1, "address literals are not domain names" },
	{ "localhost", -1, "domain name needs at least two labels" },
	{ "LOCALHOST", -1, "domain name needs at least two labels" },
	{ "192.0.2.1", -1, "numeric top-level label (address literal?)" },
	{ "example.123", -1, "numeric top-level label (address literal?)" },
	{ "-a.example", -1, "label starts with a hyphen" },
	{ "a.-example", -1, "label starts with a hyphen" },
	{ "a-.example", -1, "label ends with a hyphen" },
	{ "a.example-", -1, "label ends with a hyphen" },
	{ "a_b.example", -1, "invalid character in domain name" },
	{ "a b.example", -1, "invalid character in domain name" },
	{ "a%b.example", -1, "invalid character in domain name" },
	{ "user@example.org", -1, "invalid character in domain name" },
	{ "@63", 0, NULL },
	{ "@64", -1, "label longer than 63 octets" },
	{ "@253", 0, NULL },
	{ "@254", -1, "domain name longer than 253 octets" },
	{ "@2000", -1, "domain name too long" },
};

/* dname_build - expand "@N": a label or name of exactly N octets */
static char *
dname_build(const char *spec)
{
	size_t n = (size_t)strtoul(spec + 1, NULL, 10), i;
	char *s;

	if (n == 63 || n == 64) {
		/* one long label, then ".example" */
		s = xmalloc(n + sizeof(".example"));
		memset(s, 'a', n);
		memcpy(s + n, ".example", sizeof(".example"));
		return s;
	}
	/* labels of 63 octets and dots, with a short last label "x..." */
	s = xmalloc(n + 1);
	for (i = 0; i < n; i++)
		s[i] = (i % 64 == 63) ? '.' : 'b';
	s[n] = '\0';
	if (s[n - 1] == '.')
		s[n - 1] = 'c';
	return s;
}

/* test_dname - one row of dname_cases */
static void
test_dname(void **state)
{
	const struct dname_case *t = *state;
	char out[DNAME_MAX + 1], *in;
	const char *error = NULL;
	int rc;

	in = t->in[0] == '@' ? dname_build(t->in) : xstrdup(t->in);
	rc = dname_normalize(in, out, &error);
	if (rc != t->rc)
		fail_msg("'%s': rc %d (%s)", in, rc, error ? error : "ok");
	if (rc == 0 && t->want != NULL)
		assert_string_equal(out, t->want);
	else if (rc == 0)
		assert_string_equal(out, in);	/* already canonical */
	else
		assert_string_equal(error, t->want);
	free(in);
}

/* test_dname_null - NULL input is an empty name, not a crash */
static void
test_dname_null(void **state)
{
	char out[DNAME_MAX + 1];
	const char *error = NULL;

	(void)state;
	assert_int_equal(dname_normalize(NULL, out, &error), -1);
	assert_string_equal(error, "empty domain name");
}

/* test_dname_subdomain - strictly-below relation */
static void
test_dname_subdomain(void **state)
{
	static const struct { const char *name, *parent; int want; } t[] = {
		{ "a.example.org", "example.org", 1 },
		{ "a.b.example.org", "example.org", 1 },
		{ "example.org", "example.org", 0 },
		{ "badexample.org", "example.org", 0 },
		{ "org", "example.org", 0 },
		{ "example.org", "org", 1 },
		{ ".example.org", "example.org", 0 },
		{ "a.example.org", "b.example.org", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (dname_is_subdomain(t[i].name, t[i].parent) != t[i].want)
			fail_msg("dname_is_subdomain(%s, %s) != %d", t[i].name,
			    t[i].parent, t[i].want);
}

/* pack */

/* pack_sample - a record with every field type */
static void
pack_sample(struct buf *b)
{
	pack_u8(b, 0xab);
	pack_u32(b, 0xdeadbeefU);
	pack_u64(b, 0x0102030405060708ULL);
	pack_str(b, "hello");
	pack_str(b, NULL);
	pack_str(b, "");
	pack_u8(b, 0);
}

/* test_pack_roundtrip - what is packed is unpacked, byte for byte */
static void
test_pack_roundtrip(void **state)
{
	static const unsigned char want[] = {
		0xab, 0xde, 0xad, 0xbe, 0xef,
		1, 2, 3, 4, 5, 6, 7, 8,
		0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o',
		0xff, 0xff, 0xff, 0xff,
		0, 0, 0, 0,
		0,
	};
	struct buf b;
	struct unpack u;
	char *s;

	(void)state;
	buf_init(&b);
	pack_sample(&b);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));

	unpack_init(&u, b.data, b.len);
	assert_int_equal(unpack_u8(&u), 0xab);
	assert_true(unpack_u32(&u) == 0xdeadbeefU);
	assert_true(unpack_u64(&u) == 0x0102030405060708ULL);
	s = unpack_str(&u);
	assert_string_equal(s, "hello");
	free(s);
	assert_null(unpack_str(&u));		/* NULL round trip */
	assert_int_equal(u.error, 0);
	s = unpack_str(&u);
	assert_non_null(s);			/* "" is not NULL */
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(unpack_u8(&u), 0);
	assert_int_equal(u.error, 0);
	assert_int_equal(u.left, 0);

	/* reading past the end sets the flag and returns zero */
	assert_int_equal(unpack_u8(&u), 0);
	assert_int_equal(u.error, 1);
	buf_release(&b);
}

/* test_pack_extremes - boundary values survive */
static void
test_pack_extremes(void **state)
{
	static const uint64_t v64[] = { 0, 1, 0xff, 0x100, UINT32_MAX,
	    (uint64_t)UINT32_MAX + 1, UINT64_MAX - 1, UINT64_MAX };
	unsigned char be[8];
	struct buf b;
	struct unpack u;
	size_t i;

	(void)state;
	buf_init(&b);
	for (i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
		pack_u64(&b, v64[i]);
		pack_u32(&b, (uint32_t)v64[i]);
		pack_be64(be, v64[i]);
		assert_true(unpack_be64(be) == v64[i]);
	}
	unpack_init(&u, b.data, b.len);
	for (i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
		assert_true(unpack_u64(&u) == v64[i]);
		assert_true(unpack_u32(&u) == (uint32_t)v64[i]);
	}
	assert_int_equal(u.error, 0);

	/* big-endian keys sort like the numbers they hold */
	{
		unsigned char a[8], c[8];

		pack_be64(a, 0xff);
		pack_be64(c, 0x100);
		assert_true(memcmp(a, c, 8) < 0);
		assert_int_equal(a[7], 0xff);
		assert_int_equal(c[6], 0x01);
	}
	buf_release(&b);
}

/* test_pack_truncated - every proper prefix of a record is an error */
static void
test_pack_truncated(void **state)
{
	struct buf b;
	size_t cut;

	(void)state;
	buf_init(&b);
	pack_sample(&b);
	for (cut = 0; cut < b.len; cut++) {
		struct unpack u;
		char *s1, *s2, *s3;

		unpack_init(&u, b.data, cut);
		(void)unpack_u8(&u);
		(void)unpack_u32(&u);
		(void)unpack_u64(&u);
		s1 = unpack_str(&u);
		s2 = unpack_str(&u);
		s3 = unpack_str(&u);
		(void)unpack_u8(&u);
		if (u.error != 1)
			fail_msg("prefix of %zu octets not flagged", cut);
		free(s1);
		free(s2);
		free(s3);
	}
	buf_release(&b);
}

/* test_pack_corrupt - hostile lengths and embedded NUL are errors */
static void
test_pack_corrupt(void **state)
{
	static const unsigned char nul[] = { 0, 0, 0, 3, 'a', 0, 'b' };
	static const unsigned char huge[] = { 0x7f, 0xff, 0xff, 0xff, 'a' };
	static const unsigned char past[] = { 0, 0, 0, 9, 'a', 'b' };
	static const unsigned char ok[] = { 0, 0, 0, 2, 'a', 'b', 0x42 };
	struct unpack u;
	char *s;

	(void)state;
	unpack_init(&u, nul, sizeof(nul));
	assert_null(unpack_str(&u));
	assert_int_equal(u.error, 1);

	unpack_init(&u, huge, sizeof(huge));
	assert_null(unpack_str(&u));
	assert_int_equal(u.error, 1);

	unpack_init(&u, past, sizeof(past));
	assert_null(unpack_str(&u));
	assert_int_equal(u.error, 1);
	/* the flag is sticky: later reads fail even if bytes remain */
	assert_int_equal(unpack_u8(&u), 0);
	assert_int_equal(u.error, 1);

	unpack_init(&u, ok, sizeof(ok));
	s = unpack_str(&u);
	assert_string_equal(s, "ab");
	free(s);
	assert_int_equal(unpack_u8(&u), 0x42);
	assert_int_equal(u.error, 0);

	unpack_init(&u, NULL, 0);
	assert_int_equal(unpack_u32(&u), 0);
	assert_int_equal(u.error, 1);
}

/* buf */

/* test_buf_basic - append, printf, consume, reset, and NUL termination */
static void
test_buf_basic(void **state)
{
	struct buf b;
	struct buf *bp;

	(void)state;
	buf_init(&b);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(b.len, 0);
	buf_puts(&b, "hello");
	buf_putc(&b, ' ');
	buf_printf(&b, "%s %d", "world", 42);
	assert_string_equal(buf_str(&b), "hello world 42");
	assert_int_equal(b.len, 14);
	assert_true(b.cap > b.len);
	buf_consume(&b, 6);
	assert_string_equal(buf_str(&b), "world 42");
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	assert_string_equal(buf_str(&b), "");
	buf_append(&b, "a\0b", 3);		/* binary data is kept */
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 3);
	assert_int_equal(b.data[3], '\0');
	buf_append(&b, NULL, 0);
	assert_int_equal(b.len, 3);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_true(b.cap > 0);
	buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);

	bp = buf_new(10);
	assert_true(bp->cap >= 11);
	buf_puts(bp, "x");
	buf_free(&bp);
	assert_null(bp);
	buf_free(&bp);				/* freeing NULL is harmless */
	bp = buf_new(0);
	assert_null(bp->data);
	buf_free(&bp);
}

/* test_buf_grow - growth past many reallocations keeps the contents */
static void
test_buf_grow(void **state)
{
	struct buf b;
	size_t i;
	char *big;

	(void)state;
	buf_init(&b);
	for (i = 0; i < 100000; i++)
		buf_putc(&b, 'a' + (int)(i % 26));
	assert_int_equal(b.len, 100000);
	for (i = 0; i < 100000; i += 9973)
		assert_int_equal(b.data[i], 'a' + (int)(i % 26));
	assert_int_equal(b.data[b.len], '\0');
	buf_reset(&b);

	big = xmalloc(70001);
	memset(big, 'z', 70000);
	big[70000] = '\0';
	buf_printf(&b, "<%s>", big);
	assert_int_equal(b.len, 70002);
	assert_int_equal(b.data[0], '<');
	assert_int_equal(b.data[70001], '>');
	assert_int_equal(strlen(buf_str(&b)), 70002);
	free(big);
	buf_release(&b);
}

/* case_name - a TAP-safe name for a table row */
static char *
case_name(const char *kind, size_t i, const char *what)
{
	char *name = xasprintf("%s %zu: %s", kind, i, what);

	for (char *p = name; *p; p++)
		if (*p == '#' || (unsigned char)*p < 0x20)
			*p = '_';
	return name;
}


static const struct {
	const char	*in;
	size_t		 len;
	const char	*out;		/* the escaped text, without quotes */
} json_escape_cases[] = {
	{ "plain", 5, "plain" },
	{ "a\"b\\c", 5, "a\\\"b\\\\c" },
	{ "\n\r\t\b\f", 5, "\\n\\r\\t\\b\\f" },
	{ "\x01\x1f", 2, "\\u0001\\u001f" },
	{ "nul\0x", 5, "nul\\u0000x" },
	{ "caf\xc3\xa9", 5, "caf\xc3\xa9" },		/* valid UTF-8 kept */
	{ "\xff", 1, "\\ufffd" },			/* invalid byte */
	{ "\xc3", 1, "\\ufffd" },			/* truncated sequence */
	{ "\xc0\xaf", 2, "\\ufffd\\ufffd" },		/* overlong */
	{ "\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd" },	/* surrogate */
	{ "\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd" }, /* > U+10FFFF */
};

/* test_json_escape - table: escaping and replacement of bad UTF-8 */
static void
test_json_escape(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(json_escape_cases) / sizeof(json_escape_cases[0]);
	    i++) {
		buf_init(&b);
		json_escape(&b, json_escape_cases[i].in, json_escape_cases[i].len);
		if (strcmp(buf_str(&b), json_escape_cases[i].out) != 0)
			fail_msg("case %zu: got <%s> want <%s>", i, buf_str(&b),
			    json_escape_cases[i].out);
		buf_release(&b);
	}
}

/* test_json_document - a nested document, and base64 in pieces */
static void
test_json_document(void **state)
{
	struct json j;
	struct buf b, b64;

	(void)state;
	buf_init(&b);
	json_init(&j, &b, 0);
	json_begin_object(&j);
	json_kv_string(&j, "s", "x");
	json_kv_int(&j, "i", -3);
	json_kv_uint(&j, "u", 18446744073709551615ULL);
	json_kv_bool(&j, "t", 1);
	json_kv_null(&j, "n");
	json_key(&j, "a");
	json_begin_array(&j);
	json_uint(&j, 1);
	json_string(&j, NULL);
	json_end_array(&j);
	json_key(&j, "b");
	json_base64_begin(&j);
	json_base64_add(&j, "he", 2);
	json_base64_add(&j, "llo", 3);
	json_base64_end(&j);
	json_end_object(&j);
	json_finish(&j);
	assert_non_null(strstr(buf_str(&b), "\"s\":\"x\""));
	assert_non_null(strstr(buf_str(&b), "\"i\":-3"));
	assert_non_null(strstr(buf_str(&b), "\"u\":18446744073709551615"));
	assert_non_null(strstr(buf_str(&b), "\"t\":true"));
	assert_non_null(strstr(buf_str(&b), "\"n\":null"));
	assert_non_null(strstr(buf_str(&b), "\"a\":[1,null]"));
	assert_non_null(strstr(buf_str(&b), "\"b\":\"aGVsbG8=\""));
	buf_init(&b64);
	json_base64_encode(&b64, "hello", 5);
	assert_string_equal(buf_str(&b64), "aGVsbG8=");
	buf_reset(&b64);
	json_base64_encode(&b64, "", 0);
	assert_string_equal(buf_str(&b64), "");
	buf_release(&b64);
	buf_release(&b);
}

/* main - one TAP case per table row, then the other tests */
int
main(void)
{
	static const char *const kinds[] = { "size", "duration", "uint" };
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_units_fmt),
		cmocka_unit_test(test_dname_null),
		cmocka_unit_test(test_dname_subdomain),
		cmocka_unit_test(test_pack_roundtrip),
		cmocka_unit_test(test_pack_extremes),
		cmocka_unit_test(test_pack_truncated),
		cmocka_unit_test(test_pack_corrupt),
		cmocka_unit_test(test_buf_basic),
		cmocka_unit_test(test_buf_grow),
		cmocka_unit_test(test_json_escape),
		cmocka_unit_test(test_json_document),
	};
	size_t nu = sizeof(unit_cases) / sizeof(unit_cases[0]);
	size_t nd = sizeof(dname_cases) / sizeof(dname_cases[0]);
	size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	size_t n = 0, i;
	struct CMUnitTest *tests;
	int rc;

	tests = xcalloc(nu + nd + nf, sizeof(*tests));
	for (i = 0; i < nu; i++, n++) {
		char *what = xasprintf("%s '%s' -> %s",
		    kinds[unit_cases[i].kind], unit_cases[i].in,
		    unit_cases[i].rc == 0 ? "ok" : unit_cases[i].error);

		tests[n].name = case_name("units", i, what);
		tests[n].test_func = test_units_parse;
		tests[n].initial_state = (void *)&unit_cases[i];
		free(what);
	}
	for (i = 0; i < nd; i++, n++) {
		char *what = xasprintf("'%s' -> %s", dname_cases[i].in,
		    dname_cases[i].want ? dname_cases[i].want : "ok");

		tests[n].name = case_name("dname", i, what);
		tests[n].test_func = test_dname;
		tests[n].initial_state = (void *)&dname_cases[i];
		free(what);
	}
	for (i = 0; i < nf; i++, n++)
		tests[n] = fixed[i];
	rc = _cmocka_run_group_tests("test-lib", tests, n, NULL, NULL);
	for (i = 0; i < nu + nd; i++)
		free((char *)tests[i].name);
	free(tests);
	return rc;
}
