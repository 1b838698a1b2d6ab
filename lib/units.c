/*
 * NAME
 *	units 3 - parse and print sizes and durations
 * DESCRIPTION
 *	See units.h.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "units.h"

/* units_parse_num - leading decimal digits, overflow-checked */
static int
units_parse_num(const char **sp, uint64_t *v, const char **error_r)
{
	const char *s = *sp;
	uint64_t n = 0;

	if (!isdigit((unsigned char)*s)) {
		*error_r = "expected a number";
		return -1;
	}
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (n > (UINT64_MAX - d) / 10) {
			*error_r = "number too large";
			return -1;
		}
		n = n * 10 + d;
	}
	*sp = s;
	*v = n;
	return 0;
}

/* units_scale - multiply with an overflow check */
static int
units_scale(uint64_t *v, uint64_t mul, const char **error_r)
{
	if (mul && *v > UINT64_MAX / mul) {
		*error_r = "number too large";
		return -1;
	}
	*v *= mul;
	return 0;
}

/* units_parse_uint - plain non-negative integer */
int
units_parse_uint(const char *s, uint64_t *out, const char **error_r)
{
	uint64_t v;

	if (units_parse_num(&s, &v, error_r) < 0)
		return -1;
	if (*s != '\0') {
		*error_r = "trailing characters after number";
		return -1;
	}
	*out = v;
	return 0;
}

/* units_parse_size - "50M" style size in bytes */
int
units_parse_size(const char *s, uint64_t *out, const char **error_r)
{
	uint64_t v, mul = 1;

	if (units_parse_num(&s, &v, error_r) < 0)
		return -1;
	switch (*s) {
	case '\0': case 'b': case 'B':
		break;
	case 'k': case 'K':
		mul = 1024ULL; s++;
		break;
	case 'm': case 'M':
		mul = 1024ULL * 1024; s++;
		break;
	case 'g': case 'G':
		mul = 1024ULL * 1024 * 1024; s++;
		break;
	default:
		*error_r = "unknown size unit (use k, M or G)";
		return -1;
	}
	if (*s == 'b' || *s == 'B')
		s++;
	if (*s != '\0') {
		*error_r = "trailing characters after size";
		return -1;
	}
	if (units_scale(&v, mul, error_r) < 0)
		return -1;
	*out = v;
	return 0;
}

/* units_parse_duration - "5d" style duration in seconds */
int
units_parse_duration(const char *s, uint64_t *out, const char **error_r)
{
	uint64_t v, mul = 1;

	if (units_parse_num(&s, &v, error_r) < 0)
		return -1;
	switch (*s) {
	case '\0': case 's':
		break;
	case 'm':
		mul = 60; break;
	case 'h':
		mul = 3600; break;
	case 'd':
		mul = 86400; break;
	case 'w':
		mul = 7 * 86400; break;
	default:
		*error_r = "unknown duration unit (use s, m, h, d or w)";
		return -1;
	}
	if (*s != '\0')
		s++;
	if (*s != '\0') {
		*error_r = "trailing characters after duration";
		return -1;
	}
	if (units_scale(&v, mul, error_r) < 0)
		return -1;
	*out = v;
	return 0;
}

/* units_fmt_size - short human size: 512, 4.0K, 12M, 1.5G */
void
units_fmt_size(uint64_t b, char *out, size_t outsz)
{
	static const char sfx[] = "KMGTP";
	double v = (double)b;
	int i = -1;

	if (b < 1024) {
		snprintf(out, outsz, "%llu", (unsigned long long)b);
		return;
	}
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (v < 10)
		snprintf(out, outsz, "%.1f%c", v, sfx[i]);
	else
		snprintf(out, outsz, "%.0f%c", v, sfx[i]);
}

/* units_fmt_duration - short human duration: 45s, 12m, 3h12m, 2d4h */
void
units_fmt_duration(uint64_t s, char *out, size_t outsz)
{
	if (s < 60)
		snprintf(out, outsz, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(out, outsz, "%llum", (unsigned long long)(s / 60));
	else if (s < 86400)
		snprintf(out, outsz, "%lluh%02llum", (unsigned long long)(s / 3600),
		    (unsigned long long)(s % 3600 / 60));
	else
		snprintf(out, outsz, "%llud%02lluh", (unsigned long long)(s / 86400),
		    (unsigned long long)(s % 86400 / 3600));
}
