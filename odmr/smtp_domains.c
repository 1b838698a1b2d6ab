/*
 * NAME
 *	smtp_domains 3 - the customer domains, in memory, for RCPT
 * SYNOPSIS
 *	#include "smtp_domains.h"
 * DESCRIPTION
 *	Every RCPT needs to know whether its domain is a customer's. Asking
 *	the store means a trip to a worker thread and back per recipient,
 *	which the accept benchmark showed to be a good part of the cost of
 *	a message. So the MX side keeps a snapshot of the domain table (the
 *	settings and the quota counters RCPT looks at), read on the lookup
 *	pool every SMTP_DOMAINS_REFRESH_MS and swapped in on the loop.
 *
 *	The snapshot only ever says yes: a domain found in it is accepted
 *	or refused at once (the same rules as the store lookup: nearest
 *	parent, --subdomains). A domain not found in it, and a domain with
 *	a --max-messages or --max-bytes quota (whose counters must be
 *	current), are asked of the store, as before. So a domain that
 *	odmrctl has just added is served at once, and relaying is decided
 *	by the store whenever the snapshot does not know. A domain deleted
 *	since the last refresh may still be accepted for up to one
 *	refresh; the enqueue then refuses the message with 451 4.3.0.
 * SEE ALSO
 *	smtp_txn(3), queue(3)
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "log.h"
#include "loop.h"
#include "work.h"
#include "xmalloc.h"

#include "odmrd.h"
#include "queue.h"
#include "smtp_domains.h"

#define SMTP_DOMAINS_REFRESH_MS	2000

struct smtp_domains_table {
	struct smtp_domains_entry *slots;	/* open addressing */
	size_t		 nslots;		/* a power of two */
	size_t		 count;
};

struct smtp_domains {
	struct odmrd	*d;
	struct smtp_domains_table *table;	/* NULL until the first load */
	struct smtp_domains_table *next;	/* built by the job */
	struct loop_timer *timer;
	int		 loading;
	int		 freed;			/* free once the job is back */
	enum queue_status status;
	struct queue_error err;
};

/* smtp_domains_hash - FNV-1a of a domain key */
static uint32_t
smtp_domains_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* smtp_domains_table_free - release a snapshot */
static void
smtp_domains_table_free(struct smtp_domains_table **tp)
{
	if (*tp == NULL)
		return;
	free((*tp)->slots);
	free(*tp);
	*tp = NULL;
}

/* smtp_domains_put - add one entry to a table being built */
static void
smtp_domains_put(struct smtp_domains_table *t,
    const struct smtp_domains_entry *e)
{
	size_t i, n;
	struct smtp_domains_entry *old;

	if (2 * (t->count + 1) > t->nslots) {
		old = t->slots;
		n = t->nslots;
		t->nslots = n ? 2 * n : 64;
		t->slots = xcalloc(t->nslots, sizeof(*t->slots));
		t->count = 0;
		for (i = 0; i < n; i++)
			if (old[i].name[0] != '\0')
				smtp_domains_put(t, &old[i]);
		free(old);
	}
	for (i = smtp_domains_hash(e->name) & (t->nslots - 1);
	    t->slots[i].name[0] != '\0'; i = (i + 1) & (t->nslots - 1))
		;
	t->slots[i] = *e;
	t->count++;
}

/* smtp_domains_find - the entry of exactly this key, or NULL */
static const struct smtp_domains_entry *
smtp_domains_find(const struct smtp_domains_table *t, const char *key)
{
	size_t i;

	if (t->nslots == 0)
		return NULL;
	for (i = smtp_domains_hash(key) & (t->nslots - 1);
	    t->slots[i].name[0] != '\0'; i = (i + 1) & (t->nslots - 1))
		if (strcmp(t->slots[i].name, key) == 0)
			return &t->slots[i];
	return NULL;
}

/* smtp_domains_list_fn - one domain of the store into the new table */
static int
smtp_domains_list_fn(const struct queue_domain *dom, void *arg)
{
	struct smtp_domains_table *t = arg;
	struct smtp_domains_entry e;

	memset(&e, 0, sizeof(e));
	(void)strlcpy(e.name, dom->name, sizeof(e.name));
	e.subdomains = dom->subdomains;
	e.max_messages = dom->max_messages;
	e.messages = dom->messages;
	e.max_bytes = dom->max_bytes;
	e.bytes = dom->bytes;
	smtp_domains_put(t, &e);
	return 0;
}

/* smtp_domains_load_run - on the lookup pool: read the domain table */
static void
smtp_domains_load_run(void *arg)
{
	struct smtp_domains *dm = arg;

	dm->next = xcalloc(1, sizeof(*dm->next));
	dm->status = queue_domain_list(dm->d->queue, smtp_domains_list_fn,
	    dm->next, &dm->err);
}

/* smtp_domains_load_done - on the loop: swap the new snapshot in */
static void
smtp_domains_load_done(void *arg)
{
	struct smtp_domains *dm = arg;

	dm->loading = 0;
	if (dm->freed) {
		smtp_domains_table_free(&dm->next);
		smtp_domains_table_free(&dm->table);
		free(dm);
		return;
	}
	if (dm->status != QUEUE_OK) {
		/* keep the old snapshot; misses still ask the store */
		log_warnx("event=store-error op=domain-snapshot reason=\"%s\"",
		    dm->err.text);
		smtp_domains_table_free(&dm->next);
		if (dm->d->draining)
			odmrd_server_idle(dm->d);
		return;
	}
	smtp_domains_table_free(&dm->table);
	dm->table = dm->next;
	dm->next = NULL;
	if (dm->d->draining)
		odmrd_server_idle(dm->d);	/* it may wait for us */
}

/* smtp_domains_tick - time for a fresh snapshot */
static void
smtp_domains_tick(void *arg)
{
	struct smtp_domains *dm = arg;

	if (dm->loading)
		return;
	dm->loading = 1;
	work_submit(dm->d->lookup_pool, smtp_domains_load_run,
	    smtp_domains_load_done, dm);
}

/* smtp_domains_new - start keeping a snapshot of the domain table */
struct smtp_domains *
smtp_domains_new(struct odmrd *d)
{
	struct smtp_domains *dm;

	dm = xcalloc(1, sizeof(*dm));
	dm->d = d;
	dm->timer = loop_timer_new(smtp_domains_tick, dm);
	loop_timer_every(dm->timer, SMTP_DOMAINS_REFRESH_MS);
	smtp_domains_tick(dm);
	return dm;
}

/* smtp_domains_stop - no more refreshes (shutdown) */
void
smtp_domains_stop(struct smtp_domains *dm)
{
	loop_timer_del(dm->timer);
}

/* smtp_domains_busy - a refresh is on a worker thread */
int
smtp_domains_busy(const struct smtp_domains *dm)
{
	return dm != NULL && dm->loading;
}

/* smtp_domains_free - stop refreshing; memory goes when a job is back */
void
smtp_domains_free(struct smtp_domains **dmp)
{
	struct smtp_domains *dm = *dmp;

	if (dm == NULL)
		return;
	*dmp = NULL;
	loop_timer_free(&dm->timer);
	if (dm->loading) {
		dm->freed = 1;
		return;
	}
	smtp_domains_table_free(&dm->table);
	free(dm);
}

/*
 * smtp_domains_match - the nearest customer domain of key, as
 * queue_domain_match() finds it: 1 and *out when the snapshot has one,
 * 0 when it does not (then ask the store)
 */
int
smtp_domains_match(const struct smtp_domains *dm, const char *key,
    struct smtp_domains_entry *out)
{
	const struct smtp_domains_entry *e;
	const char *p = key;

	if (dm == NULL || dm->table == NULL)
		return 0;
	for (;;) {
		if ((e = smtp_domains_find(dm->table, p)) != NULL) {
			*out = *e;
			return 1;
		}
		if ((p = strchr(p, '.')) == NULL)
			return 0;
		p++;
	}
}
