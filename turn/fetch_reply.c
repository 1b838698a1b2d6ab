/*
 * NAME
 *	fetch_reply 3 - SMTP replies and EHLO keywords for odmr-fetch
 * SYNOPSIS
 *	#include "fetch_reply.h"
 * DESCRIPTION
 *	See fetch_reply.h. Nothing here allocates or logs.
 * SEE ALSO
 *	RFC 5321 section 4.2, RFC 1869, RFC 2034, RFC 3463
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compat.h"

#include "fetch_reply.h"

/* one EHLO keyword and the flag it sets */
struct fetch_reply_kw {
	const char	*name;
	unsigned	 flag;
};

static const struct fetch_reply_kw fetch_reply_kws[] = {
	{ "PIPELINING", FETCH_EXT_PIPELINING },		/* RFC 2920 */
	{ "8BITMIME", FETCH_EXT_8BITMIME },		/* RFC 6152 */
	{ "SMTPUTF8", FETCH_EXT_SMTPUTF8 },		/* RFC 6531 */
	{ "DSN", FETCH_EXT_DSN },			/* RFC 3461 */
	{ "SIZE", FETCH_EXT_SIZE },			/* RFC 1870 */
	{ "STARTTLS", FETCH_EXT_STARTTLS },		/* RFC 3207 */
	{ "ENHANCEDSTATUSCODES", FETCH_EXT_ENHANCED },	/* RFC 2034 */
	{ "CHUNKING", FETCH_EXT_CHUNKING },		/* RFC 3030 */
	{ "AUTH", FETCH_EXT_AUTH },			/* RFC 4954 */
	{ "ATRN", FETCH_EXT_ATRN },			/* RFC 2645 */
	{ "ETRN", FETCH_EXT_ETRN },			/* RFC 1985 */
};
#define FETCH_REPLY_NKWS (sizeof(fetch_reply_kws) / sizeof(fetch_reply_kws[0]))

/* fetch_reply_reset - an empty reply, ready for its first line */
void
fetch_reply_reset(struct fetch_reply *r)
{
	r->code = 0;
	r->nlines = 0;
	r->len = 0;
	r->text[0] = '\0';
}

/* fetch_reply_add - append text, printable and bounded */
static void
fetch_reply_add(struct fetch_reply *r, const char *p, size_t n)
{
	size_t i;
	unsigned char c;

	for (i = 0; i < n && r->len + 1 < sizeof(r->text); i++) {
		c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f)
			c = '?';
		else if (c == '"')
			c = '\'';
		else if (c == '\\')
			c = '/';
		r->text[r->len++] = (char)c;
	}
	r->text[r->len] = '\0';
}

/* fetch_reply_line - one reply line: more to come, done, or bad */
enum fetch_reply_status
fetch_reply_line(struct fetch_reply *r, const char *line, size_t len,
    const char **line_text_r, const char **error_r)
{
	unsigned code;

	*line_text_r = "";
	if (len < 3 || line[0] < '1' || line[0] > '5' ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2])) {
		*error_r = "not a reply line (no three-digit code)";
		return FETCH_REPLY_BAD;
	}
	if (len > 3 && line[3] != ' ' && line[3] != '-') {
		*error_r = "no space or hyphen after the reply code";
		return FETCH_REPLY_BAD;
	}
	code = (unsigned)(line[0] - '0') * 100 +
	    (unsigned)(line[1] - '0') * 10 + (unsigned)(line[2] - '0');
	if (r->nlines > 0 && code != r->code) {
		*error_r = "reply code changed in a multi-line reply";
		return FETCH_REPLY_BAD;
	}
	r->code = code;
	if (len > 4) {
		if (r->nlines > 0 && r->len > 0)
			fetch_reply_add(r, " ", 1);
		fetch_reply_add(r, line + 4, len - 4);
		*line_text_r = line + 4;
	}
	r->nlines++;
	return len > 3 && line[3] == '-' ? FETCH_REPLY_MORE : FETCH_REPLY_DONE;
}

/* fetch_reply_class - 2 for 2xx, 4 for 4xx and so on */
unsigned
fetch_reply_class(const struct fetch_reply *r)
{
	return r->code / 100;
}

/* fetch_reply_auth - remember the mechanisms of one AUTH line */
static void
fetch_reply_auth(struct fetch_ext *e, const char *p)
{
	char word[64];
	size_t n, used = strlen(e->auth), i;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '=')
			p++;
		if (*p == '\0')
			return;
		n = strcspn(p, " \t");
		if (n < sizeof(word)) {
			for (i = 0; i < n; i++)
				word[i] = (char)toupper((unsigned char)p[i]);
			word[n] = '\0';
			if (!fetch_reply_has_word(e->auth, word) &&
			    used + n + 2 <= sizeof(e->auth)) {
				if (used > 0)
					e->auth[used++] = ' ';
				memcpy(e->auth + used, word, n + 1);
				used += n;
			}
		}
		p += n;
	}
}

/* fetch_reply_ext_line - one EHLO keyword line into the extension set */
void
fetch_reply_ext_line(struct fetch_ext *e, const char *text)
{
	size_t n = strcspn(text, " \t=");
	const char *arg = text + n;
	unsigned long long v;
	char *end;
	size_t i;

	for (i = 0; i < FETCH_REPLY_NKWS; i++) {
		if (strlen(fetch_reply_kws[i].name) != n ||
		    strncasecmp(text, fetch_reply_kws[i].name, n) != 0)
			continue;
		e->flags |= fetch_reply_kws[i].flag;
		if (fetch_reply_kws[i].flag == FETCH_EXT_AUTH)
			fetch_reply_auth(e, arg);
		if (fetch_reply_kws[i].flag == FETCH_EXT_SIZE) {
			while (*arg == ' ' || *arg == '\t')
				arg++;
			e->size = 0;
			if (isdigit((unsigned char)*arg)) {
				errno = 0;
				v = strtoull(arg, &end, 10);
				if (errno == 0 && (*end == '\0' || *end == ' '))
					e->size = (uint64_t)v;
			}
		}
		return;
	}
}

/* fetch_reply_ext_format - "pipelining,8bitmime,size=1000" for a log */
void
fetch_reply_ext_format(const struct fetch_ext *e, char *out, size_t outsz)
{
	char one[64];
	size_t i, k;
	int first = 1;

	if (outsz == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < FETCH_REPLY_NKWS; i++) {
		if (!(e->flags & fetch_reply_kws[i].flag))
			continue;
		for (k = 0; fetch_reply_kws[i].name[k] != '\0' &&
		    k + 1 < sizeof(one); k++)
			one[k] = (char)tolower(
			    (unsigned char)fetch_reply_kws[i].name[k]);
		one[k] = '\0';
		if (!first)
			(void)strlcat(out, ",", outsz);
		(void)strlcat(out, one, outsz);
		if (fetch_reply_kws[i].flag == FETCH_EXT_SIZE && e->size > 0) {
			(void)snprintf(one, sizeof(one), "=%llu",
			    (unsigned long long)e->size);
			(void)strlcat(out, one, outsz);
		}
		first = 0;
	}
	if (first)
		(void)strlcpy(out, "none", outsz);
}

/* fetch_reply_has_word - list holds word (case-insensitive) */
int
fetch_reply_has_word(const char *list, const char *word)
{
	size_t n = strlen(word), k;

	while (*list != '\0') {
		while (*list == ' ')
			list++;
		k = strcspn(list, " ");
		if (k == n && k > 0 && strncasecmp(list, word, n) == 0)
			return 1;
		list += k;
	}
	return 0;
}

/* fetch_reply_enhanced - text starts with "c.s.d " (RFC 3463) */
int
fetch_reply_enhanced(const char *t)
{
	size_t n;

	if (t[0] < '2' || t[0] > '5' || t[1] != '.')
		return 0;
	t += 2;
	for (n = 0; isdigit((unsigned char)t[n]); n++)
		;
	if (n < 1 || n > 3 || t[n] != '.')
		return 0;
	t += n + 1;
	for (n = 0; isdigit((unsigned char)t[n]); n++)
		;
	return n >= 1 && n <= 3 && (t[n] == ' ' || t[n] == '\0');
}
