/*
 * NAME
 *	odmrctl_stats 3 - odmrctl stats and check
 * SYNOPSIS
 *	odmrctl [--json] stats
 *	odmrctl [--json] check
 * DESCRIPTION
 *	stats prints the store-wide counters (queue_stats): what is queued
 *	now, what went through since the store was made, and a few
 *	figures of the backend (log files, cache hits, deadlocks).
 *
 *	check runs the store's consistency check, batch by batch
 *	(queue_check), and prints each problem it finds on its own line.
 *	It only reads, so it is safe while odmrd runs.
 * DIAGNOSTICS
 *	check exits 3 when it found problems, with one summary line on
 *	stderr; the problems themselves go to stdout (or into the JSON).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "odmrctl.h"
#include "queue.h"
#include "units.h"
#include "xmalloc.h"

static const struct odmrctl_opt odmrctl_stats_opts[] = {
	{ NULL, 0, 0 },
};

/* odmrctl_stats_noargs - commands that take no argument */
static int
odmrctl_stats_noargs(struct odmrctl *ctl, int argc, char **argv)
{
	struct odmrctl_args a;
	const char *val;
	int id;

	odmrctl_args_init(&a, ctl, argc, argv);
	id = odmrctl_args_next(&a, odmrctl_stats_opts, &val);
	if (id == ODMRCTL_ARG_END)
		return 0;
	if (id == ODMRCTL_ARG_ERROR)
		return ODMRCTL_EXIT_USAGE;
	return odmrctl_syntax_err(ctl, "unexpected argument '%s'", val);
}

/* odmrctl_stats_json - the stats document */
static void
odmrctl_stats_json(struct odmrctl *ctl, const struct queue_stats *s,
    struct buf *out)
{
	struct json j;

	odmrctl_out_json_begin(ctl, &j, out, "odmrctl.stats/1");
	odmrctl_out_json_time(&j, "created", s->created);
	json_kv_uint(&j, "domains", s->domains);
	json_kv_uint(&j, "messages", s->messages);
	json_kv_uint(&j, "bytes", s->bytes);
	json_kv_uint(&j, "recipients", s->recipients);
	json_key(&j, "counters");
	json_begin_object(&j);
	json_kv_uint(&j, "enqueued", s->enqueued);
	json_kv_uint(&j, "delivered", s->delivered);
	json_kv_uint(&j, "failed", s->failed);
	json_kv_uint(&j, "deferred", s->deferred);
	json_kv_uint(&j, "deleted", s->deleted);
	json_end_object(&j);
	json_key(&j, "backend");
	json_begin_object(&j);
	json_kv_string(&j, "name", queue_backend_name(ctl->q));
	json_kv_uint(&j, "log_files", s->log_files);
	json_kv_uint(&j, "log_bytes", s->log_bytes);
	json_kv_uint(&j, "cache_hit_pct", s->cache_hit_pct);
	json_kv_uint(&j, "deadlocks", s->deadlocks);
	json_kv_uint(&j, "commits", s->commits);
	json_kv_uint(&j, "log_flushes", s->log_flushes);
	json_end_object(&j);
	odmrctl_out_json_end(&j);
}

/* odmrctl_stats_human - the stats as key-value lines */
static void
odmrctl_stats_human(struct odmrctl *ctl, const struct queue_stats *s,
    struct buf *out)
{
	char v[ODMRCTL_FIELD_MAX];

#define KV_U64(key, val) \
	odmrctl_out_kv(out, key, "%llu", (unsigned long long)(val))
	odmrctl_out_time(ctl->now, s->created, "-", v, sizeof(v));
	odmrctl_out_kv(out, "created", "%s", v);
	KV_U64("domains", s->domains);
	KV_U64("messages", s->messages);
	odmrctl_out_size(s->bytes, v, sizeof(v));
	odmrctl_out_kv(out, "size", "%s (%llu bytes)", v,
	    (unsigned long long)s->bytes);
	KV_U64("recipients", s->recipients);
	KV_U64("enqueued", s->enqueued);
	KV_U64("delivered", s->delivered);
	KV_U64("failed", s->failed);
	KV_U64("deferred", s->deferred);
	KV_U64("deleted", s->deleted);
	odmrctl_out_kv(out, "backend", "%s", queue_backend_name(ctl->q));
	KV_U64("log files", s->log_files);
	odmrctl_out_size(s->log_bytes, v, sizeof(v));
	odmrctl_out_kv(out, "log size", "%s", v);
	odmrctl_out_kv(out, "cache hits", "%llu%%",
	    (unsigned long long)s->cache_hit_pct);
	KV_U64("deadlocks", s->deadlocks);
	KV_U64("commits", s->commits);
	KV_U64("log flushes", s->log_flushes);
#undef KV_U64
}

/* odmrctl_stats - "stats": store-wide counters */
int
odmrctl_stats(struct odmrctl *ctl, int argc, char **argv)
{
	struct queue_stats s;
	struct queue_error qerr;
	struct buf out;
	enum queue_status st;
	int rc;

	if ((rc = odmrctl_stats_noargs(ctl, argc, argv)) != 0)
		return rc;
	if (odmrctl_store(ctl, &rc) < 0)
		return rc;
	memset(&qerr, 0, sizeof(qerr));
	if ((st = queue_stats(ctl->q, &s, &qerr)) != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "cannot read statistics");
	buf_init(&out);
	if (ctl->json)
		odmrctl_stats_json(ctl, &s, &out);
	else
		odmrctl_stats_human(ctl, &s, &out);
	rc = odmrctl_out_buf(&out) < 0 ? ODMRCTL_EXIT_STORE : ODMRCTL_EXIT_OK;
	buf_release(&out);
	return rc;
}

struct odmrctl_stats_check {
	struct json	*json;
	struct buf	*out;
	struct buf	 notes;		/* remarks, one per line */
};

/* odmrctl_stats_problem - queue_check callback: record one problem */
static int
odmrctl_stats_problem(const char *problem, void *arg)
{
	struct odmrctl_stats_check *c = arg;
	size_t nl = strlen(QUEUE_CHECK_NOTE);

	if (strncmp(problem, QUEUE_CHECK_NOTE, nl) == 0) {
		buf_puts(&c->notes, problem + nl);
		buf_putc(&c->notes, '\n');
	} else if (c->json != NULL)
		json_string(c->json, problem);
	else {
		buf_puts(c->out, problem);
		buf_putc(c->out, '\n');
	}
	return 0;
}

/* odmrctl_stats_check - "check": consistency check of the store */
int
odmrctl_stats_check(struct odmrctl *ctl, int argc, char **argv)
{
	struct odmrctl_stats_check c;
	struct queue_error qerr;
	struct json j;
	struct buf out;
	enum queue_status st;
	uint64_t n = 0;
	int rc;

	if ((rc = odmrctl_stats_noargs(ctl, argc, argv)) != 0)
		return rc;
	if (odmrctl_store(ctl, &rc) < 0)
		return rc;
	buf_init(&out);
	memset(&c, 0, sizeof(c));
	memset(&qerr, 0, sizeof(qerr));
	c.out = &out;
	if (ctl->json) {
		odmrctl_out_json_begin(ctl, &j, &out, "odmrctl.check/1");
		json_key(&j, "problems");
		json_begin_array(&j);
		c.json = &j;
	}
	buf_init(&c.notes);
	st = queue_check(ctl->q, odmrctl_stats_problem, &c, &n, &qerr);
	if (st != QUEUE_OK) {
		buf_release(&out);
		buf_release(&c.notes);
		return odmrctl_store_err(st, &qerr, "cannot check the store");
	}
	if (ctl->json) {
		const char *p = buf_str(&c.notes), *e;

		json_end_array(&j);
		json_key(&j, "notes");
		json_begin_array(&j);
		for (; (e = strchr(p, '\n')) != NULL; p = e + 1) {
			char *line = xstrndup(p, (size_t)(e - p));

			json_string(&j, line);
			free(line);
		}
		json_end_array(&j);
		json_kv_uint(&j, "count", n);
		json_kv_bool(&j, "ok", n == 0);
		odmrctl_out_json_end(&j);
	} else {
		const char *p = buf_str(&c.notes), *e;

		for (; (e = strchr(p, '\n')) != NULL; p = e + 1)
			buf_printf(&out, "note: %.*s\n", (int)(e - p), p);
		if (n == 0)
			buf_puts(&out, "store is consistent\n");
	}
	buf_release(&c.notes);
	rc = odmrctl_out_buf(&out) < 0 ? ODMRCTL_EXIT_STORE : ODMRCTL_EXIT_OK;
	buf_release(&out);
	if (rc == ODMRCTL_EXIT_OK && n > 0) {
		odmrctl_err("check found %llu problem%s in the store",
		    (unsigned long long)n, n == 1 ? "" : "s");
		rc = ODMRCTL_EXIT_STORE;
	}
	return rc;
}
