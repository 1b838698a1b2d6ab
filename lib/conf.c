/*
 * NAME
 *	conf 3 - table-driven "key = value" configuration parser
 * SYNOPSIS
 *	#include "conf.h"
 * DESCRIPTION
 *	See conf.h. Each line is copied into a fixed buffer of
 *	CONF_LINE_MAX + 1 octets after its length has been checked, so a
 *	hostile file can neither overrun a buffer nor make us allocate more
 *	than its own size. Values are converted by one function per type;
 *	defaults go through the same functions as file values.
 * DIAGNOSTICS
 *	Errors are returned through error_r as one allocated line; this
 *	module never logs.
 * SEE ALSO
 *	units(3), odmrd.conf(5)
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "conf.h"
#include "log.h"
#include "units.h"
#include "xmalloc.h"

#define CONF_QUOTE_MAX	64	/* input octets shown in a message */
#define CONF_QUOTE_BUF	(CONF_QUOTE_MAX * 4 + 8)	/* escaped quote */
#define CONF_WHY_MAX	512	/* length of a reason text */

/* conf_quote - printable, shortened copy of untrusted text for a message */
static void
conf_quote(const char *s, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0;

	for (i = 0; i < len && i < CONF_QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[8];
		size_t n;

		if (c >= 0x20 && c < 0x7f) {
			tmp[0] = (char)c;
			n = 1;
		} else
			n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		if (o + n + 4 >= outsz)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	if (i < len && o + 3 < outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* conf_field - address of a key's field in the caller's struct */
static void *
conf_field(const struct conf_key *k, void *base)
{
	return (char *)base + k->offset;
}

/* conf_is_stringy - the field is a char * owned by this module */
static int
conf_is_stringy(enum conf_type t)
{
	switch (t) {
	case CONF_STRING:
	case CONF_LISTEN:
	case CONF_HOSTNAME:
	case CONF_HOSTPORT:
	case CONF_PATH:
		return 1;
	default:
		return 0;
	}
}

/* conf_store_str - replace a string field, taking ownership of s */
static void
conf_store_str(const struct conf_key *k, void *base, char *s)
{
	char **fp = conf_field(k, base);

	free(*fp);
	*fp = s;
}

/* conf_port - parse a decimal port 1..65535 */
static int
conf_port(const char *s, size_t len, unsigned *port, const char **why)
{
	unsigned v = 0;
	size_t i;

	if (len == 0 || len > 5) {
		*why = "expected a port number from 1 to 65535";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i])) {
			*why = "expected a port number from 1 to 65535";
			return -1;
		}
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535) {
		*why = "expected a port number from 1 to 65535";
		return -1;
	}
	*port = v;
	return 0;
}

/* conf_ip_literal - copy len octets and test them with inet_pton */
static int
conf_ip_literal(int af, const char *s, size_t len, char *addr, size_t addrsz)
{
	unsigned char bin[16];
	char tmp[CONF_LISTEN_ADDR_MAX + 1];

	if (len >= sizeof(tmp) || len >= addrsz)
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(af, tmp, bin) != 1)
		return -1;
	memcpy(addr, tmp, len + 1);
	return 0;
}

/* conf_listen_item - split and check one "addr:port" listen element */
int
conf_listen_item(const char *item, size_t len, char *addr, size_t addrsz,
    unsigned *port, const char **error_r)
{
	const char *colon, *end = item + len;

	if (addrsz == 0) {
		*error_r = "no room for the address";
		return -1;
	}
	if (len == 0) {
		*error_r = "empty listen address";
		return -1;
	}
	if (item[0] == '[') {
		const char *rb = memchr(item, ']', len);

		if (rb == NULL || conf_ip_literal(AF_INET6, item + 1,
		    (size_t)(rb - item - 1), addr, addrsz) < 0) {
			*error_r = "expected [IPv6 address]:port";
			return -1;
		}
		if (rb + 1 == end || rb[1] != ':') {
			*error_r = "missing ':port' after the address";
			return -1;
		}
		return conf_port(rb + 2, (size_t)(end - rb - 2), port, error_r);
	}
	colon = NULL;
	for (const char *p = item; p < end; p++)
		if (*p == ':') {
			if (colon != NULL) {
				*error_r = "an IPv6 address must be written "
				    "in brackets: [address]:port";
				return -1;
			}
			colon = p;
		}
	if (colon == NULL) {
		*error_r = "missing ':port' after the address";
		return -1;
	}
	if (colon - item == 1 && item[0] == '*')
		addr[0] = '\0';
	else if (conf_ip_literal(AF_INET, item, (size_t)(colon - item),
	    addr, addrsz) < 0) {
		*error_r = "expected an IPv4 address, [IPv6 address] or '*' "
		    "before ':port'";
		return -1;
	}
	return conf_port(colon + 1, (size_t)(end - colon - 1), port, error_r);
}

/* conf_listen - check and normalise a comma-separated listen list */
static char *
conf_listen(const char *v, char *why, size_t whysz)
{
	struct buf out;
	const char *p = v;

	buf_init(&out);
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *s = p, *e = comma ? comma : p + strlen(p);
		const char *reason;
		char addr[CONF_LISTEN_ADDR_MAX + 1], q[CONF_QUOTE_BUF];
		unsigned port;

		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e) {
			snprintf(why, whysz, "empty element in listen list");
			buf_release(&out);
			return NULL;
		}
		conf_quote(s, (size_t)(e - s), q, sizeof(q));
		if (conf_listen_item(s, (size_t)(e - s), addr, sizeof(addr),
		    &port, &reason) < 0) {
			snprintf(why, whysz, "'%s': %s", q, reason);
			buf_release(&out);
			return NULL;
		}
		/* Listing one socket twice would only fail later, at bind. */
		for (const char *o = buf_str(&out); *o; ) {
			size_t n = strcspn(o, ",");

			if (n == (size_t)(e - s) && memcmp(o, s, n) == 0) {
				snprintf(why, whysz, "'%s' listed twice", q);
				buf_release(&out);
				return NULL;
			}
			o += n;
			if (*o == ',')
				o++;
		}
		if (out.len)
			buf_putc(&out, ',');
		buf_append(&out, s, (size_t)(e - s));
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return (char *)out.data;
}

/* conf_hostname_check - ASCII letters-digits-hyphen host name rules */
static int
conf_hostname_check(const char *s, size_t len, const char **why)
{
	size_t i, lab = 0;
	int all_digits = 1;

	if (len == 0) {
		*why = "empty host name";
		return -1;
	}
	if (len > CONF_HOST_MAX) {
		*why = "host name longer than 253 octets";
		return -1;
	}
	if (s[len - 1] == '.') {
		*why = "host name ends with a dot";
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (lab == 0) {
				*why = "empty label in host name";
				return -1;
			}
			if (s[i - 1] == '-') {
				*why = "label ends with a hyphen";
				return -1;
			}
			lab = 0;
			all_digits = 1;
			continue;
		}
		if (c >= 0x80) {
			*why = "non-ASCII host name (write the xn-- form)";
			return -1;
		}
		if (!(isalnum(c) || c == '-')) {
			*why = "invalid character in host name";
			return -1;
		}
		if (c == '-' && lab == 0) {
			*why = "label starts with a hyphen";
			return -1;
		}
		if (!isdigit(c))
			all_digits = 0;
		if (++lab > 63) {
			*why = "label longer than 63 octets";
			return -1;
		}
	}
	if (s[len - 1] == '-') {
		*why = "label ends with a hyphen";
		return -1;
	}
	if (all_digits) {
		*why = "numeric last label (an address is not a host name)";
		return -1;
	}
	return 0;
}

/* conf_lower - lower-cased copy of len octets */
static char *
conf_lower(const char *s, size_t len)
{
	char *r = xstrndup(s, len);

	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

/* conf_hostport - check and normalise "host[:port]" or "[addr][:port]" */
static char *
conf_hostport(const char *v, char *why, size_t whysz)
{
	size_t len = strlen(v), hlen;
	const char *colon = NULL, *reason;
	char addr[CONF_LISTEN_ADDR_MAX + 1];
	unsigned port;

	if (v[0] == '[') {
		const char *rb = strchr(v, ']');

		if (rb == NULL || (conf_ip_literal(AF_INET6, v + 1,
		    (size_t)(rb - v - 1), addr, sizeof(addr)) < 0 &&
		    conf_ip_literal(AF_INET, v + 1, (size_t)(rb - v - 1),
		    addr, sizeof(addr)) < 0)) {
			snprintf(why, whysz, "expected [IP address][:port]");
			return NULL;
		}
		if (rb[1] != '\0' && (rb[1] != ':' || conf_port(rb + 2,
		    strlen(rb + 2), &port, &reason) < 0)) {
			snprintf(why, whysz, "expected a port number from "
			    "1 to 65535 after ']:'");
			return NULL;
		}
		return conf_lower(v, len);
	}
	for (const char *p = v; *p; p++)
		if (*p == ':') {
			if (colon != NULL) {
				snprintf(why, whysz, "an IPv6 address must be "
				    "written in brackets: [address]:port");
				return NULL;
			}
			colon = p;
		}
	hlen = colon ? (size_t)(colon - v) : len;
	if (colon != NULL && conf_port(colon + 1, strlen(colon + 1), &port,
	    &reason) < 0) {
		snprintf(why, whysz, "%s", reason);
		return NULL;
	}
	if (conf_ip_literal(AF_INET, v, hlen, addr, sizeof(addr)) == 0)
		return conf_lower(v, len);
	if (conf_hostname_check(v, hlen, &reason) < 0) {
		snprintf(why, whysz, "%s", reason);
		return NULL;
	}
	return conf_lower(v, len);
}

/* conf_bool - parse yes/no, true/false, on/off, 1/0 */
static int
conf_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* conf_number - size, duration or plain number, with bounds */
static int
conf_number(const struct conf_key *k, const char *v, uint64_t *out,
    char *why, size_t whysz)
{
	const char *reason = NULL, *unit = "";
	int rc;

	switch (k->type) {
	case CONF_SIZE:
		rc = units_parse_size(v, out, &reason);
		unit = " octets";
		break;
	case CONF_DURATION:
		rc = units_parse_duration(v, out, &reason);
		unit = " seconds";
		break;
	default:
		rc = units_parse_uint(v, out, &reason);
		break;
	}
	if (rc < 0) {
		snprintf(why, whysz, "%s", reason);
		return -1;
	}
	if (*out < k->min) {
		snprintf(why, whysz, "must be at least %llu%s",
		    (unsigned long long)k->min, unit);
		return -1;
	}
	if (k->max != 0 && *out > k->max) {
		snprintf(why, whysz, "must be at most %llu%s",
		    (unsigned long long)k->max, unit);
		return -1;
	}
	return 0;
}

/* conf_value - convert one value and store it; reason text on error */
static int
conf_value(const struct conf_key *k, void *base, const char *v,
    char *why, size_t whysz)
{
	const char *reason;
	char *s;

	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(why, whysz, "control character in value");
			return -1;
		}
	if (*v == '\0') {
		if ((k->flags & CONF_EMPTY_OK) && conf_is_stringy(k->type)) {
			conf_store_str(k, base, xstrdup(""));
			return 0;
		}
		snprintf(why, whysz, "empty value");
		return -1;
	}
	switch (k->type) {
	case CONF_STRING:
		conf_store_str(k, base, xstrdup(v));
		return 0;
	case CONF_PATH:
		if (v[0] != '/') {
			snprintf(why, whysz, "expected an absolute path");
			return -1;
		}
		conf_store_str(k, base, xstrdup(v));
		return 0;
	case CONF_HOSTNAME:
		if (conf_hostname_check(v, strlen(v), &reason) < 0) {
			snprintf(why, whysz, "%s", reason);
			return -1;
		}
		conf_store_str(k, base, conf_lower(v, strlen(v)));
		return 0;
	case CONF_HOSTPORT:
		if ((s = conf_hostport(v, why, whysz)) == NULL)
			return -1;
		conf_store_str(k, base, s);
		return 0;
	case CONF_LISTEN:
		if ((s = conf_listen(v, why, whysz)) == NULL)
			return -1;
		conf_store_str(k, base, s);
		return 0;
	case CONF_BOOL:
		if (conf_bool(v, conf_field(k, base)) < 0) {
			snprintf(why, whysz, "expected yes or no");
			return -1;
		}
		return 0;
	case CONF_LOG_LEVEL: {
		enum log_level lvl;
		int bad;

		s = conf_lower(v, strlen(v));
		bad = log_level_parse(s, &lvl) < 0;
		free(s);
		if (bad) {
			snprintf(why, whysz,
			    "expected err, warning, info or debug");
			return -1;
		}
		*(enum log_level *)conf_field(k, base) = lvl;
		return 0;
	}
	case CONF_SIZE:
	case CONF_DURATION:
	case CONF_UINT: {
		uint64_t n;

		if (conf_number(k, v, &n, why, whysz) < 0)
			return -1;
		*(uint64_t *)conf_field(k, base) = n;
		return 0;
	}
	}
	snprintf(why, whysz, "unknown value type");
	return -1;
}

/* conf_lookup - find a key by name */
const struct conf_key *
conf_lookup(const struct conf_key *keys, const char *name)
{
	for (; keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

/* conf_set - set one key from text, as if read from a file */
int
conf_set(const struct conf_key *k, void *base, const char *value,
    char **error_r)
{
	char why[CONF_WHY_MAX], q[CONF_QUOTE_BUF];

	if (conf_value(k, base, value, why, sizeof(why)) < 0) {
		conf_quote(value, strlen(value), q, sizeof(q));
		*error_r = xasprintf("bad value for %s '%s': %s", k->name, q,
		    why);
		return -1;
	}
	return 0;
}

/* conf_defaults - apply every built-in default through conf_set() */
int
conf_defaults(const struct conf_key *keys, void *base, char **error_r)
{
	char *err = NULL;

	for (; keys->name != NULL; keys++) {
		if (keys->def == NULL)
			continue;
		if (conf_set(keys, base, keys->def, &err) < 0) {
			*error_r = xasprintf("built-in default: %s", err);
			free(err);
			return -1;
		}
	}
	return 0;
}

/* conf_trim - strip leading and trailing white space in place */
static char *
conf_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* conf_line - parse one NUL-terminated line; 0 ok, -1 with message */
static int
conf_line(const struct conf_key *keys, void *base, const char *name,
    unsigned lineno, char *line, unsigned *lines, char **error_r)
{
	const struct conf_key *k;
	char *key, *val, *eq, why[CONF_WHY_MAX], q[CONF_QUOTE_BUF];
	size_t i;

	for (i = 0; line[i] != '\0'; i++)
		if (line[i] == '#' &&
		    (i == 0 || isspace((unsigned char)line[i - 1]))) {
			line[i] = '\0';
			break;
		}
	key = conf_trim(line);
	if (*key == '\0')
		return 0;
	for (i = 0; key[i] != '\0'; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) {
			if (key[i] == '\t')
				continue;
			*error_r = xasprintf("%s:%u: control character 0x%02x "
			    "in line", name, lineno, (unsigned char)key[i]);
			return -1;
		}
	if ((eq = strchr(key, '=')) == NULL) {
		size_t n = strcspn(key, " \t");

		conf_quote(key, n, q, sizeof(q));
		*error_r = xasprintf("%s:%u: missing '=' after '%s'", name,
		    lineno, q);
		return -1;
	}
	*eq = '\0';
	val = conf_trim(eq + 1);
	key = conf_trim(key);
	if (*key == '\0') {
		*error_r = xasprintf("%s:%u: missing key before '='", name,
		    lineno);
		return -1;
	}
	if ((k = conf_lookup(keys, key)) == NULL) {
		conf_quote(key, strlen(key), q, sizeof(q));
		*error_r = xasprintf("%s:%u: unknown key '%s'", name, lineno,
		    q);
		return -1;
	}
	if (lines[k - keys] != 0) {
		*error_r = xasprintf("%s:%u: '%s' already set at line %u",
		    name, lineno, k->name, lines[k - keys]);
		return -1;
	}
	if (conf_value(k, base, val, why, sizeof(why)) < 0) {
		conf_quote(val, strlen(val), q, sizeof(q));
		*error_r = xasprintf("%s:%u: bad value for %s '%s': %s", name,
		    lineno, k->name, q, why);
		return -1;
	}
	lines[k - keys] = lineno;
	return 0;
}

/* conf_parse - parse a whole text against a key table */
int
conf_parse(const struct conf_key *keys, void *base, const char *name,
    const char *text, size_t len, unsigned *lines, char **error_r)
{
	char line[CONF_LINE_MAX + 1];
	unsigned *seen = lines, lineno = 0;
	size_t nkeys = 0, pos = 0;
	int rc = 0;

	while (keys[nkeys].name != NULL)
		nkeys++;
	if (seen == NULL)
		seen = xcalloc(nkeys + 1, sizeof(*seen));
	else
		memset(seen, 0, nkeys * sizeof(*seen));
	if (name == NULL)
		name = "(configuration)";
	/* A UTF-8 byte order mark, as some editors write, is not a key. */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *start = text + pos, *nl;
		size_t n;

		if (lineno == (unsigned)-1) {
			*error_r = xasprintf("%s: too many lines", name);
			rc = -1;
			break;
		}
		lineno++;
		nl = memchr(start, '\n', len - pos);
		n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl != NULL);
		if (n > CONF_LINE_MAX) {
			*error_r = xasprintf("%s:%u: line longer than %d "
			    "octets", name, lineno, CONF_LINE_MAX);
			rc = -1;
			break;
		}
		if (memchr(start, '\0', n) != NULL) {
			*error_r = xasprintf("%s:%u: NUL byte in line", name,
			    lineno);
			rc = -1;
			break;
		}
		memcpy(line, start, n);
		line[n] = '\0';
		if ((rc = conf_line(keys, base, name, lineno, line, seen,
		    error_r)) < 0)
			break;
	}
	if (seen != lines)
		free(seen);
	return rc;
}

/* conf_read_file - read a whole file, bounded; errno kept on failure */
int
conf_read_file(const char *path, char **text_r, size_t *len_r,
    char **error_r)
{
	struct stat st;
	size_t len = 0;
	char *text;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		saved = errno;
		*error_r = xasprintf("cannot open %s: %s", path,
		    strerror(saved));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		saved = errno;
		*error_r = xasprintf("cannot stat %s: %s", path,
		    strerror(saved));
		close(fd);
		errno = saved;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file", path);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	text = xmalloc(CONF_FILE_MAX + 2);
	for (;;) {
		n = read(fd, text + len, CONF_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			*error_r = xasprintf("cannot read %s: %s", path,
			    strerror(saved));
			free(text);
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONF_FILE_MAX) {
			*error_r = xasprintf("%s: file larger than %d octets",
			    path, CONF_FILE_MAX);
			free(text);
			close(fd);
			errno = EFBIG;
			return -1;
		}
	}
	close(fd);
	text[len] = '\0';
	*text_r = text;
	*len_r = len;
	return 0;
}

/* conf_release - free every string field and clear it */
void
conf_release(const struct conf_key *keys, void *base)
{
	for (; keys->name != NULL; keys++)
		if (conf_is_stringy(keys->type))
			conf_store_str(keys, base, NULL);
}
