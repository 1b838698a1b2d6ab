/*
 * NAME
 *	odmrctl_queue 3 - odmrctl queue: the queue per domain and per message
 * SYNOPSIS
 *	odmrctl [--json] queue
 *	odmrctl [--json] queue DOMAIN
 * DESCRIPTION
 *	Without an argument, one line per customer domain from the counters
 *	that the store keeps with each domain (queue_domain_list), so the
 *	summary costs one read per domain whatever the size of the queue,
 *	and a domain without mail is listed too.
 *
 *	With a domain, one line per message that still has a recipient in
 *	that domain, queued or held (queue_walk). Only that domain's
 *	recipients are shown: a message for two customer domains is stored
 *	once but each domain sees its own part of it.
 * DIAGNOSTICS
 *	1 for an unknown domain, 2 for a bad domain name, 3 for store errors.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "dname.h"
#include "json.h"
#include "odmrctl.h"
#include "queue.h"

static const struct odmrctl_opt odmrctl_queue_opts[] = {
	{ NULL, 0, 0 },
};

struct odmrctl_queue_walk {
	struct odmrctl		*ctl;
	struct odmrctl_table	*table;
	struct json		*json;
};

/* odmrctl_queue_domain_row - queue_domain_list callback: one domain */
static int
odmrctl_queue_domain_row(const struct queue_domain *d, void *arg)
{
	struct odmrctl_queue_walk *w = arg;
	struct odmrctl *ctl = w->ctl;
	char msgs[24], size[24], oldest[48], expiry[48], pickup[48], flush[32];
	const char *cells[7];

	if (w->json != NULL) {
		json_begin_object(w->json);
		json_kv_string(w->json, "domain", d->name);
		json_kv_uint(w->json, "messages", d->messages);
		json_kv_uint(w->json, "bytes", d->bytes);
		odmrctl_out_json_time(w->json, "oldest", d->oldest);
		odmrctl_out_json_time(w->json, "next_expiry", d->next_expiry);
		odmrctl_out_json_time(w->json, "last_pickup", d->last_pickup);
		odmrctl_out_json_flush(ctl, w->json, d);
		json_end_object(w->json);
		return 0;
	}
	snprintf(msgs, sizeof(msgs), "%llu", (unsigned long long)d->messages);
	odmrctl_out_size(d->bytes, size, sizeof(size));
	odmrctl_out_ago(ctl->now, d->oldest, "-", oldest, sizeof(oldest));
	odmrctl_out_until(ctl->now, d->next_expiry, "-", expiry,
	    sizeof(expiry));
	odmrctl_out_ago(ctl->now, d->last_pickup, "never", pickup,
	    sizeof(pickup));
	odmrctl_out_claim(ctl->now, d, 0, flush, sizeof(flush));
	cells[0] = d->name;
	cells[1] = msgs;
	cells[2] = size;
	cells[3] = oldest;
	cells[4] = expiry;
	cells[5] = pickup;
	cells[6] = flush;
	odmrctl_out_table_row(w->table, cells);
	return 0;
}

/* odmrctl_queue_summary - "queue": one line per customer domain */
static int
odmrctl_queue_summary(struct odmrctl *ctl)
{
	static const char *const headers[] = { "DOMAIN", "MSGS", "SIZE",
	    "OLDEST", "NEXT-EXPIRY", "LAST-PICKUP", "FLUSH" };
	struct odmrctl_queue_walk w;
	struct queue_error qerr;
	struct odmrctl_list list;
	enum queue_status st;
	int rc;

	memset(&w, 0, sizeof(w));
	memset(&qerr, 0, sizeof(qerr));
	w.ctl = ctl;
	odmrctl_out_list_begin(&list, ctl, "odmrctl.queue/1", headers, 7);
	odmrctl_out_list_array(&list, "domains");
	w.json = list.json;
	if ((w.table = list.table) != NULL) {
		odmrctl_out_table_right(w.table, 1);
		odmrctl_out_table_right(w.table, 2);
	}
	st = queue_domain_list(ctl->q, odmrctl_queue_domain_row, &w, &qerr);
	if (st == QUEUE_OK)
		rc = odmrctl_out_list_finish(&list);
	else
		rc = odmrctl_store_err(st, &qerr, "cannot read the queue");
	odmrctl_out_list_release(&list);
	return rc;
}

/* odmrctl_queue_last_error - the most recent error among the recipients */
static const struct queue_rcpt *
odmrctl_queue_last_error(const struct queue_msg *m, uint32_t *attempts)
{
	const struct queue_rcpt *best = NULL;
	size_t i;

	*attempts = 0;
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		if (r->attempts > *attempts)
			*attempts = r->attempts;
		if (r->last_error == NULL || r->last_error[0] == '\0')
			continue;
		if (best == NULL || r->last_attempt >= best->last_attempt)
			best = r;
	}
	return best;
}

/* odmrctl_queue_msg_json - one message of a domain as JSON */
static void
odmrctl_queue_msg_json(struct json *j, const struct queue_msg *m)
{
	const struct queue_rcpt *err;
	uint32_t attempts;
	size_t i, held = 0;

	err = odmrctl_queue_last_error(m, &attempts);
	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].state == QUEUE_RCPT_HELD)
			held++;
	json_begin_object(j);
	json_kv_string(j, "id", m->id);
	json_kv_uint(j, "arrival", m->arrival);
	json_kv_uint(j, "size", m->size);
	json_kv_string(j, "sender", m->sender ? m->sender : "");
	json_kv_bool(j, "held", m->nrcpt > 0 && held == m->nrcpt);
	json_kv_uint(j, "attempts", attempts);
	json_kv_string(j, "last_error", err ? err->last_error : NULL);
	json_key(j, "recipients");
	json_begin_array(j);
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		json_begin_object(j);
		json_kv_string(j, "address", r->addr);
		json_kv_string(j, "state", queue_rcpt_state_name(r->state));
		json_kv_uint(j, "attempts", r->attempts);
		odmrctl_out_json_time(j, "last_attempt", r->last_attempt);
		json_kv_string(j, "last_error", r->last_error);
		json_end_object(j);
	}
	json_end_array(j);
	json_end_object(j);
}

/* odmrctl_queue_msg_row - queue_walk callback: one message line */
static int
odmrctl_queue_msg_row(const struct queue_msg *m, void *arg)
{
	struct odmrctl_queue_walk *w = arg;
	char arrival[48], size[24], rcpts[ODMRCTL_FIELD_MAX], att[16];
	const struct queue_rcpt *err;
	const char *cells[7];
	uint32_t attempts;
	size_t i, held = 0;
	int n;

	if (w->json != NULL) {
		odmrctl_queue_msg_json(w->json, m);
		return 0;
	}
	err = odmrctl_queue_last_error(m, &attempts);
	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].state == QUEUE_RCPT_HELD)
			held++;
	odmrctl_out_ago(w->ctl->now, m->arrival, "-", arrival,
	    sizeof(arrival));
	odmrctl_out_size(m->size, size, sizeof(size));
	snprintf(att, sizeof(att), "%lu", (unsigned long)attempts);
	/* one address and a count keeps the line readable */
	if (m->nrcpt == 0)
		n = snprintf(rcpts, sizeof(rcpts), "-");
	else if (m->nrcpt == 1)
		n = snprintf(rcpts, sizeof(rcpts), "%s", m->rcpt[0].addr);
	else
		n = snprintf(rcpts, sizeof(rcpts), "%s +%zu",
		    m->rcpt[0].addr, m->nrcpt - 1);
	if (n >= 0 && (size_t)n < sizeof(rcpts) && held > 0) {
		size_t len = (size_t)n;

		if (held == m->nrcpt)
			snprintf(rcpts + len, sizeof(rcpts) - len, " (held)");
		else
			snprintf(rcpts + len, sizeof(rcpts) - len,
			    " (%zu held)", held);
	}
	cells[0] = m->id;
	cells[1] = arrival;
	cells[2] = size;
	cells[3] = odmrctl_out_sender(m->sender);
	cells[4] = rcpts;
	cells[5] = att;
	cells[6] = err ? err->last_error : "-";
	odmrctl_out_table_row(w->table, cells);
	return 0;
}

/* odmrctl_queue_domain - "queue DOMAIN": one line per message */
static int
odmrctl_queue_domain(struct odmrctl *ctl, const char *name)
{
	static const char *const headers[] = { "ID", "ARRIVAL", "SIZE",
	    "SENDER", "RCPTS", "ATTEMPTS", "LAST-ERROR" };
	struct odmrctl_queue_walk w;
	struct queue_error qerr;
	struct odmrctl_list list;
	enum queue_status st;
	int rc;

	if ((rc = odmrctl_domain_known(ctl, name)) != ODMRCTL_EXIT_OK)
		return rc;
	memset(&qerr, 0, sizeof(qerr));
	memset(&w, 0, sizeof(w));
	w.ctl = ctl;
	odmrctl_out_list_begin(&list, ctl, "odmrctl.queue.domain/1", headers, 7);
	if (list.json != NULL)
		json_kv_string(list.json, "domain", name);
	odmrctl_out_list_array(&list, "messages");
	w.json = list.json;
	if ((w.table = list.table) != NULL) {
		odmrctl_out_table_right(w.table, 2);
		odmrctl_out_table_right(w.table, 5);
	}
	st = queue_walk(ctl->q, name, 0, odmrctl_queue_msg_row, &w, &qerr);
	if (st == QUEUE_OK)
		rc = odmrctl_out_list_finish(&list);
	else if (st == QUEUE_NOTFOUND) {	/* deleted meanwhile */
		odmrctl_err("unknown domain %s", name);
		rc = ODMRCTL_EXIT_NOTFOUND;
	} else
		rc = odmrctl_store_err(st, &qerr, "cannot read the queue of %s",
		    name);
	odmrctl_out_list_release(&list);
	return rc;
}

/* odmrctl_queue - "queue [DOMAIN]" */
int
odmrctl_queue(struct odmrctl *ctl, int argc, char **argv)
{
	struct odmrctl_args a;
	const char *val, *domain = NULL;
	char name[DNAME_MAX + 1];
	int id, rc;

	odmrctl_args_init(&a, ctl, argc, argv);
	while ((id = odmrctl_args_next(&a, odmrctl_queue_opts, &val)) !=
	    ODMRCTL_ARG_END) {
		if (id == ODMRCTL_ARG_ERROR)
			return ODMRCTL_EXIT_USAGE;
		if (domain != NULL)
			return odmrctl_syntax_err(ctl,
			    "unexpected argument '%s'", val);
		domain = val;
	}
	if (domain != NULL && odmrctl_domain_arg(ctl, domain, name) < 0)
		return ODMRCTL_EXIT_USAGE;
	if (odmrctl_store(ctl, &rc) < 0)
		return rc;
	if (domain == NULL)
		return odmrctl_queue_summary(ctl);
	return odmrctl_queue_domain(ctl, name);
}
