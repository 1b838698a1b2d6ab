/*
 * NAME
 *	odmrctl_out 3 - odmrctl output: tables, human values, JSON glue
 * SYNOPSIS
 *	#include "odmrctl.h"
 * DESCRIPTION
 *	Human output is aligned columns under a header line, or "key: value"
 *	lines for one object. Sizes are printed with units_fmt_size() and
 *	ages with units_fmt_duration() ("3h12m ago"); an empty value is "-"
 *	or "never". Commands build their whole output in a struct buf and
 *	write it at the end, so a store error half-way through never leaves
 *	half a table or half a JSON document on stdout.
 *
 *	The JSON side puts the envelope every document shares around the
 *	command's data: one object whose first member is "schema"
 *	("odmrctl.<command>/<version>"), then "now", the unix time the
 *	command ran at. Times are unix seconds, or null when there is none;
 *	sizes are bytes. The domain object is written here because three
 *	documents share it.
 * DIAGNOSTICS
 *	A failed write to stdout is reported once, as an odmrctl error.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compat.h"
#include "json.h"
#include "odmrctl.h"
#include "queue.h"
#include "units.h"
#include "xmalloc.h"

#define ODMRCTL_OUT_GAP		2	/* spaces between table columns */
#define ODMRCTL_OUT_KEYW	16	/* width of "key:" in key-value lines */

struct odmrctl_table {
	size_t		 ncols;
	size_t		 nrows;		/* row 0 is the header */
	size_t		 caprows;
	char		**cells;	/* nrows * ncols */
	size_t		*width;
	unsigned char	*right;		/* right-aligned columns */
};

static int odmrctl_out_failed;		/* a write error was reported */

/* odmrctl_out_width - display width of a cell: UTF-8 characters */
static size_t
odmrctl_out_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

/* odmrctl_out_sanitize - make control characters harmless on a terminal */
static void
odmrctl_out_sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7F)
			*s = '?';
}

/* odmrctl_out_table_new - a table with its header line */
struct odmrctl_table *
odmrctl_out_table_new(const char *const *headers, size_t ncols)
{
	struct odmrctl_table *t = xcalloc(1, sizeof(*t));

	t->ncols = ncols;
	t->width = xcalloc(ncols, sizeof(*t->width));
	t->right = xcalloc(ncols, 1);
	odmrctl_out_table_row(t, headers);
	return t;
}

/* odmrctl_out_table_right - right-align a (numeric) column */
void
odmrctl_out_table_right(struct odmrctl_table *t, size_t col)
{
	if (col < t->ncols)
		t->right[col] = 1;
}

/* odmrctl_out_table_row - append one row of ncols cells (NULL is "-") */
void
odmrctl_out_table_row(struct odmrctl_table *t, const char *const *cells)
{
	size_t c, w;

	if (t->nrows == t->caprows) {
		t->caprows = t->caprows ? t->caprows * 2 : 16;
		t->cells = xreallocarray(t->cells, t->caprows * t->ncols,
		    sizeof(*t->cells));
	}
	for (c = 0; c < t->ncols; c++) {
		const char *s = cells[c] != NULL && cells[c][0] != '\0' ?
		    cells[c] : "-";

		t->cells[t->nrows * t->ncols + c] = xstrdup(s);
		odmrctl_out_sanitize(t->cells[t->nrows * t->ncols + c]);
		if ((w = odmrctl_out_width(s)) > t->width[c])
			t->width[c] = w;
	}
	t->nrows++;
}

/* odmrctl_out_table_print - append the aligned table to a buffer */
void
odmrctl_out_table_print(const struct odmrctl_table *t, struct buf *out)
{
	size_t r, c, w, pad;

	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			int last = c + 1 == t->ncols;

			w = odmrctl_out_width(s);
			pad = t->width[c] - w;
			if (t->right[c])
				for (; pad > 0; pad--)
					buf_putc(out, ' ');
			buf_puts(out, s);
			if (last)
				break;
			for (pad += ODMRCTL_OUT_GAP; pad > 0; pad--)
				buf_putc(out, ' ');
		}
		buf_putc(out, '\n');
	}
}

/* odmrctl_out_table_free - free a table and clear the pointer */
void
odmrctl_out_table_free(struct odmrctl_table **tp)
{
	struct odmrctl_table *t = *tp;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t->right);
	free(t);
	*tp = NULL;
}

/* odmrctl_out_size - human size: 512, 4.0K, 12M */
void
odmrctl_out_size(uint64_t bytes, char *out, size_t outsz)
{
	units_fmt_size(bytes, out, outsz);
}

/* odmrctl_out_ago - "3h12m ago" for a past time, none for 0 */
void
odmrctl_out_ago(uint64_t now, uint64_t t, const char *none, char *out,
    size_t outsz)
{
	char d[32];

	if (t == 0) {
		strlcpy(out, none, outsz);
		return;
	}
	if (t > now) {			/* clock skew between processes */
		units_fmt_duration(t - now, d, sizeof(d));
		snprintf(out, outsz, "in %s", d);
		return;
	}
	units_fmt_duration(now - t, d, sizeof(d));
	snprintf(out, outsz, "%s ago", d);
}

/* odmrctl_out_until - "in 4d20h" for a future time, none for 0 */
void
odmrctl_out_until(uint64_t now, uint64_t t, const char *none, char *out,
    size_t outsz)
{
	char d[32];

	if (t == 0) {
		strlcpy(out, none, outsz);
		return;
	}
	if (t < now) {			/* due: the scheduler has not run yet */
		units_fmt_duration(now - t, d, sizeof(d));
		snprintf(out, outsz, "%s ago", d);
		return;
	}
	units_fmt_duration(t - now, d, sizeof(d));
	snprintf(out, outsz, "in %s", d);
}

/* odmrctl_out_time - "2024-05-01 12:00:00 (3h12m ago)", none for 0 */
void
odmrctl_out_time(uint64_t now, uint64_t t, const char *none, char *out,
    size_t outsz)
{
	char when[64], rel[48];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0) {
		strlcpy(out, none, outsz);
		return;
	}
	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
		snprintf(when, sizeof(when), "@%llu", (unsigned long long)t);
	if (t > now)
		odmrctl_out_until(now, t, none, rel, sizeof(rel));
	else
		odmrctl_out_ago(now, t, none, rel, sizeof(rel));
	snprintf(out, outsz, "%s (%s)", when, rel);
}

/* odmrctl_out_limit - "unlimited" for 0, else a count or a size */
void
odmrctl_out_limit(uint64_t v, int is_size, char *out, size_t outsz)
{
	if (v == 0)
		strlcpy(out, "unlimited", outsz);
	else if (is_size)
		odmrctl_out_size(v, out, outsz);
	else
		snprintf(out, outsz, "%llu", (unsigned long long)v);
}

/* odmrctl_out_sender - the envelope sender, "<>" for the null sender */
const char *
odmrctl_out_sender(const char *sender)
{
	return sender == NULL || sender[0] == '\0' ? "<>" : sender;
}

/* odmrctl_out_claim - the flush state of a domain in words */
void
odmrctl_out_claim(uint64_t now, const struct queue_domain *d, int verbose,
    char *out, size_t outsz)
{
	const char *state;

	if (d->claim_holder == NULL) {
		strlcpy(out, verbose ? "none running" : "-", outsz);
		return;
	}
	state = d->claim_expiry != 0 && d->claim_expiry < now ?
	    "stale" : "running";
	if (!verbose) {
		strlcpy(out, state, outsz);
		return;
	}
	snprintf(out, outsz, "%s (holder %s, pid %llu, claim expires %llu)",
	    state, d->claim_holder, (unsigned long long)d->claim_pid,
	    (unsigned long long)d->claim_expiry);
}

/* odmrctl_out_kv - append one "key:  value" line */
void
odmrctl_out_kv(struct buf *out, const char *key, const char *fmt, ...)
{
	char val[ODMRCTL_FIELD_MAX * 2];
	va_list ap;
	size_t w;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	if (n < 0)
		val[0] = '\0';
	else if ((size_t)n >= sizeof(val))
		/* mark the cut so that nobody mistakes it for the value */
		memcpy(val + sizeof(val) - 4, "...", 4);
	odmrctl_out_sanitize(val);
	buf_puts(out, key);
	buf_putc(out, ':');
	for (w = strlen(key) + 1; w < ODMRCTL_OUT_KEYW; w++)
		buf_putc(out, ' ');
	buf_putc(out, ' ');
	buf_puts(out, val);
	buf_putc(out, '\n');
}

/* odmrctl_out_json_begin - open a document with its schema name */
void
odmrctl_out_json_begin(struct odmrctl *ctl, struct json *j, struct buf *out,
    const char *schema)
{
	json_init(j, out, 1);
	json_begin_object(j);
	json_kv_string(j, "schema", schema);
	json_kv_uint(j, "now", ctl->now);
}

/* odmrctl_out_json_end - close the document */
void
odmrctl_out_json_end(struct json *j)
{
	json_end_object(j);
	json_finish(j);
}

/* odmrctl_out_json_time - a unix time, or null for "none" (0) */
void
odmrctl_out_json_time(struct json *j, const char *key, uint64_t t)
{
	if (t == 0)
		json_kv_null(j, key);
	else
		json_kv_uint(j, key, t);
}

/* odmrctl_out_json_flush - the "flush" member: null or the claim */
void
odmrctl_out_json_flush(struct odmrctl *ctl, struct json *j,
    const struct queue_domain *d)
{
	json_key(j, "flush");
	if (d->claim_holder == NULL) {
		json_null(j);
		return;
	}
	json_begin_object(j);
	json_kv_string(j, "holder", d->claim_holder);
	json_kv_uint(j, "pid", d->claim_pid);
	odmrctl_out_json_time(j, "expiry", d->claim_expiry);
	json_kv_bool(j, "stale", d->claim_expiry != 0 &&
	    d->claim_expiry < ctl->now);
	json_end_object(j);
}

/* odmrctl_out_json_domain - the domain object of domain list and show */
void
odmrctl_out_json_domain(struct odmrctl *ctl, struct json *j,
    const struct queue_domain *d)
{
	size_t i;

	json_begin_object(j);
	json_kv_string(j, "name", d->name);
	json_key(j, "owners");
	json_begin_array(j);
	for (i = 0; i < d->nowners; i++)
		json_string(j, d->owners[i]);
	json_end_array(j);
	json_kv_bool(j, "subdomains", d->subdomains);
	json_kv_string(j, "etrn", queue_etrn_name(d->etrn));
	json_kv_string(j, "route", d->route ? d->route : "mx");
	json_kv_string(j, "tls", queue_tls_name(d->tls));
	json_kv_uint(j, "max_messages", d->max_messages);
	json_kv_uint(j, "max_bytes", d->max_bytes);
	json_kv_uint(j, "lifetime", d->lifetime);
	json_kv_uint(j, "retry", d->retry);
	json_kv_uint(j, "effective_lifetime",
	    d->lifetime ? d->lifetime : odmrctl_default_lifetime(ctl));
	odmrctl_out_json_time(j, "created", d->created);
	json_kv_uint(j, "messages", d->messages);
	json_kv_uint(j, "bytes", d->bytes);
	odmrctl_out_json_time(j, "oldest", d->oldest);
	odmrctl_out_json_time(j, "next_expiry", d->next_expiry);
	odmrctl_out_json_time(j, "last_pickup", d->last_pickup);
	odmrctl_out_json_flush(ctl, j, d);
	json_end_object(j);
}

/* odmrctl_out_write - write bytes to stdout, reporting a failure once */
int
odmrctl_out_write(const void *data, size_t len)
{
	if (odmrctl_out_failed)
		return -1;
	if (len > 0 && fwrite(data, 1, len, stdout) != len) {
		odmrctl_out_failed = 1;
		odmrctl_err("write error on standard output: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* odmrctl_out_buf - write a whole buffer to stdout */
int
odmrctl_out_buf(const struct buf *b)
{
	return odmrctl_out_write(b->data, b->len);
}

/* odmrctl_out_flush - flush stdout and report an earlier or late error */
int
odmrctl_out_flush(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (!odmrctl_out_failed)
			odmrctl_err("write error on standard output: %s",
			    strerror(errno));
		odmrctl_out_failed = 1;
		return -1;
	}
	return odmrctl_out_failed ? -1 : 0;
}

/* odmrctl_out_list_begin - start a listing: a JSON document or a table */
void
odmrctl_out_list_begin(struct odmrctl_list *l, struct odmrctl *ctl,
    const char *schema, const char *const *headers, size_t ncols)
{
	memset(l, 0, sizeof(*l));
	buf_init(&l->out);
	if (ctl->json) {
		odmrctl_out_json_begin(ctl, &l->j, &l->out, schema);
		l->json = &l->j;
	} else
		l->table = odmrctl_out_table_new(headers, ncols);
}

/* odmrctl_out_list_array - open the array of rows (JSON only) */
void
odmrctl_out_list_array(struct odmrctl_list *l, const char *key)
{
	if (l->json == NULL)
		return;
	json_key(l->json, key);
	json_begin_array(l->json);
}

/* odmrctl_out_list_finish - close the listing and write it out */
int
odmrctl_out_list_finish(struct odmrctl_list *l)
{
	if (l->json != NULL) {
		json_end_array(l->json);
		odmrctl_out_json_end(l->json);
	} else
		odmrctl_out_table_print(l->table, &l->out);
	return odmrctl_out_buf(&l->out) < 0 ? ODMRCTL_EXIT_STORE :
	    ODMRCTL_EXIT_OK;
}

/* odmrctl_out_list_release - free what a listing holds */
void
odmrctl_out_list_release(struct odmrctl_list *l)
{
	odmrctl_out_table_free(&l->table);
	buf_release(&l->out);
}
