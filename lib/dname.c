/*
 * NAME
 *	dname 3 - validate and normalise DNS domain names
 * DESCRIPTION
 *	See dname.h. A trailing dot is rejected rather than stripped:
 *	"example.org." in an address is a relay trick, not a spelling.
 */
#include "config.h"

#include <ctype.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "dname.h"

/* dname_check_ascii - LDH rules on an ASCII, lower-cased name */
static int
dname_check_ascii(const char *s, const char **error_r)
{
	size_t len = strlen(s), lab = 0, labels = 1;
	const char *p;
	int all_digits_tld = 1;

	if (len == 0) {
		*error_r = "empty domain name";
		return -1;
	}
	if (len > DNAME_MAX) {
		*error_r = "domain name longer than 253 octets";
		return -1;
	}
	if (s[len - 1] == '.') {
		*error_r = "domain name ends with a dot";
		return -1;
	}
	for (p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.') {
			if (lab == 0) {
				*error_r = "empty label in domain name";
				return -1;
			}
			if (p[-1] == '-') {
				*error_r = "label ends with a hyphen";
				return -1;
			}
			lab = 0;
			labels++;
			all_digits_tld = 1;
			continue;
		}
		if (!(isalnum(c) || c == '-')) {
			*error_r = "invalid character in domain name";
			return -1;
		}
		if (c == '-' && lab == 0) {
			*error_r = "label starts with a hyphen";
			return -1;
		}
		if (!isdigit(c))
			all_digits_tld = 0;
		if (++lab > 63) {
			*error_r = "label longer than 63 octets";
			return -1;
		}
	}
	if (s[len - 1] == '-') {
		*error_r = "label ends with a hyphen";
		return -1;
	}
	if (labels < 2) {
		*error_r = "domain name needs at least two labels";
		return -1;
	}
	if (all_digits_tld) {
		*error_r = "numeric top-level label (address literal?)";
		return -1;
	}
	return 0;
}

/* dname_normalize - validate and produce the canonical key form */
int
dname_normalize(const char *in, char out[DNAME_MAX + 1], const char **error_r)
{
	const unsigned char *p;
	int ascii = 1;

	if (in == NULL || *in == '\0') {
		*error_r = "empty domain name";
		return -1;
	}
	if (*in == '[') {
		*error_r = "address literals are not domain names";
		return -1;
	}
	if (strlen(in) > 1024) {
		*error_r = "domain name too long";
		return -1;
	}
	for (p = (const unsigned char *)in; *p; p++)
		if (*p >= 0x80)
			ascii = 0;
	if (ascii) {
		size_t i, n = strlen(in);

		if (n > DNAME_MAX) {
			*error_r = "domain name longer than 253 octets";
			return -1;
		}
		for (i = 0; i < n; i++)
			out[i] = (char)tolower((unsigned char)in[i]);
		out[n] = '\0';
	} else {
		char *alabel = NULL;
		int rc = idn2_to_ascii_8z(in, &alabel,
		    IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);

		if (rc != IDN2_OK) {
			*error_r = "invalid internationalised domain name";
			return -1;
		}
		if (strlcpy(out, alabel, DNAME_MAX + 1) >= DNAME_MAX + 1) {
			idn2_free(alabel);
			*error_r = "domain name longer than 253 octets";
			return -1;
		}
		idn2_free(alabel);
		for (char *q = out; *q; q++)
			*q = (char)tolower((unsigned char)*q);
	}
	return dname_check_ascii(out, error_r);
}

/* dname_is_subdomain - true when name lies strictly below parent */
int
dname_is_subdomain(const char *name, const char *parent)
{
	size_t n = strlen(name), m = strlen(parent);

	return n > m + 1 && name[n - m - 1] == '.' &&
	    strcmp(name + n - m, parent) == 0;
}
