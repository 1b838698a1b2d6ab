/*
 * NAME
 *	units 3h - parse and print sizes and durations
 * DESCRIPTION
 *	units_parse_size() accepts a decimal number with an optional k, M
 *	or G suffix (powers of 1024). units_parse_duration() accepts a
 *	number with an optional s, m, h, d or w suffix (seconds by
 *	default). Both reject signs, overflow and trailing junk, and return
 *	an error string through error_r. units_fmt_*() print the short
 *	human form used by odmrctl ("4.0K", "3h12m").
 */
#ifndef LIB_UNITS_H
#define LIB_UNITS_H

#include <stddef.h>
#include <stdint.h>

int	units_parse_size(const char *, uint64_t *, const char **error_r);
int	units_parse_duration(const char *, uint64_t *secs, const char **error_r);
int	units_parse_uint(const char *, uint64_t *, const char **error_r);
void	units_fmt_size(uint64_t bytes, char *out, size_t outsz);
void	units_fmt_duration(uint64_t secs, char *out, size_t outsz);

#endif
