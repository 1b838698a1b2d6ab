/*
 * NAME
 *	turn_session_store 3 - turn_session's store jobs: the list of
 *	queued messages, their loads, and the records of the outcomes
 * SYNOPSIS
 *	#include "turn_session_int.h"
 *
 *	void
 *	turn_session_store_list(s)
 *
 *	void
 *	turn_session_store_prefetch(s)
 *
 *	void
 *	turn_session_store_record(s)
 *
 *	void
 *	turn_session_store_record_flush(s)
 *
 *	void
 *	turn_session_store_record_timer(arg)
 * DESCRIPTION
 *	The store part of turn_session 3; see turn_session.h for what the
 *	caller sees. Store work runs as jobs on the work pool (work 3h);
 *	each job's completion runs on the loop and hands the session back
 *	to the state machine of turn_session.c. A job that runs holds the
 *	session (s->jobs), so that it ends only once every job is done.
 *
 *	turn_session_store_list() lists the queued message ids (one walk
 *	per domain, ids only, so no walk is held open across network
 *	waits); an id listed by an earlier walk of the session is not
 *	listed again. turn_session_store_prefetch() loads the next messages
 *	(turn_msg 3): they are read TURN_LOAD_BATCH at a time (at most
 *	TURN_LOAD_OCTETS of text ahead) while earlier ones are on the wire.
 *
 *	turn_session_store_record() hands a message's outcomes to the store
 *	(queue_record()). Outcomes are recorded in batches, one transaction
 *	and one disk flush each: a batch goes when it holds
 *	TURN_RECORD_BATCH messages, has waited TURN_RECORD_DELAY_MS
 *	(turn_session_store_record_timer()), or the session waits for it
 *	(turn_session_store_record_flush()); up to TURN_RECORDS_MAX
 *	messages may be answered and not yet recorded. Guarantee 2
 *	(SPEC.md) holds, since a crash before the record only means those
 *	messages are sent again: delivered twice at worst, never lost.
 *
 *	With DSNs on, the record job first queues the DSNs a message's
 *	outcomes call for (turn_bounce 3), then records them: a crash in
 *	between sends a DSN twice, never not at all. When a failure's DSN
 *	cannot be queued, its recipients are deferred instead. A 452 to
 *	some recipients of a message that others accepted puts the message
 *	back on the list (RFC 5321 section 4.5.3.1.10), up to
 *	TURN_AGAIN_MAX times a session.
 * SEE ALSO
 *	turn_session(3), turn_msg(3), turn_bounce(3), queue(3), work(3),
 *	RFC 3461, RFC 5321
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"
#include "loop.h"
#include "work.h"
#include "xmalloc.h"

#include "queue.h"
#include "turn_bounce.h"
#include "turn_dsn.h"
#include "turn_msg.h"
#include "turn_proto.h"
#include "turn_session_int.h"

#define TURN_AGAIN_MAX		1000	/* transactions for the 452 rest */
#define TURN_RECORDS_MAX	128	/* messages not yet recorded while
					   the next ones are sent */
#define TURN_RECORD_BATCH	32	/* messages per record job */
#define TURN_RECORD_DELAY_MS	100	/* a smaller batch waits this long */
#define TURN_LOAD_OCTETS	(1024 * 1024)	/* text read ahead, at most */

static void turn_session_store_record_due(struct turn_session *);

/* turn_session_store_job_new - a job for this session; counts as running */
static struct turn_job *
turn_session_store_job_new(struct turn_session *s)
{
	struct turn_job *j = xcalloc(1, sizeof(*j));

	j->s = s;
	s->jobs++;
	return j;
}

/* turn_session_store_job_free - release a job and what it still holds */
static void
turn_session_store_job_free(struct turn_job *j)
{
	size_t i;

	for (i = 0; i < j->nmsgs; i++)
		turn_msg_free(&j->msgs[i]);
	turn_msg_free(&j->msg);
	free(j->ids);
	free(j);
}

/* turn_session_store_list_collect - queue_walk() callback: keep the id only */
static int
turn_session_store_list_collect(const struct queue_msg *m, void *arg)
{
	struct turn_job *j = arg;
	const char *at;
	size_t i;

	if (j->s->rcpt_domain != NULL) {
		/* DSNs by MX: only the mail for one destination */
		for (i = 0; i < m->nrcpt; i++)
			if ((at = strrchr(m->rcpt[i].addr, '@')) != NULL &&
			    strcasecmp(at + 1, j->s->rcpt_domain) == 0)
				break;
		if (i == m->nrcpt)
			return 0;
	}
	if (j->nids == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 256;
		j->ids = xreallocarray(j->ids, j->cap, sizeof(*j->ids));
	}
	j->ids[j->nids++] = m->qid;
	return 0;
}

/* turn_session_store_u64cmp - qsort order for ids */
static int
turn_session_store_u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* turn_session_store_list_run - on the pool: each domain's deliverable ids */
static void
turn_session_store_list_run(void *arg)
{
	struct turn_job *j = arg;
	struct turn_session *s = j->s;
	size_t i, n;

	j->status = QUEUE_OK;
	for (i = 0; i < s->ndomains && j->status == QUEUE_OK; i++)
		j->status = queue_walk(s->queue, s->domains[i],
		    QUEUE_WALK_DELIVERABLE, turn_session_store_list_collect, j,
		    &j->err);
	/* queue ids grow with arrival; a message in two domains once */
	if (j->nids > 1)
		qsort(j->ids, j->nids, sizeof(*j->ids),
		    turn_session_store_u64cmp);
	for (i = 0, n = 0; i < j->nids; i++)
		if (n == 0 || j->ids[n - 1] != j->ids[i])
			j->ids[n++] = j->ids[i];
	j->nids = n;
}

/* turn_session_store_list_merge - keep the unseen ids; remember them all */
static void
turn_session_store_list_merge(struct turn_session *s, struct turn_job *j)
{
	uint64_t *seen;
	size_t i = 0, k = 0, n = 0, fresh = 0;

	free(s->qids);
	s->qids = xcalloc(j->nids > 0 ? j->nids : 1, sizeof(*s->qids));
	seen = xcalloc(s->nseen + j->nids + 1, sizeof(*seen));
	/* both sorted: one merge pass */
	while (i < s->nseen || k < j->nids) {
		if (k == j->nids || (i < s->nseen && s->seen[i] < j->ids[k]))
			seen[n++] = s->seen[i++];
		else if (i < s->nseen && s->seen[i] == j->ids[k]) {
			seen[n++] = s->seen[i++];
			k++;
		} else {
			s->qids[fresh++] = j->ids[k];
			seen[n++] = j->ids[k++];
		}
	}
	free(s->seen);
	s->seen = seen;
	s->nseen = n;
	s->nqids = fresh;
	s->nextq = 0;
	s->round_new = fresh;
}

/* turn_session_store_list_done - on the loop: the ids are known */
static void
turn_session_store_list_done(void *arg)
{
	struct turn_job *j = arg;
	struct turn_session *s = j->s;

	s->jobs--;
	s->listing = 0;
	if (s->ending) {
		turn_session_store_job_free(j);
		turn_session_maybe_finish(s);
		return;
	}
	if (j->status != QUEUE_OK) {
		log_warnx("session=%s event=store-error op=list status=%s"
		    " reason=\"%s\"", s->id, queue_status_name(j->status),
		    j->err.text);
		turn_session_error(s, "store error while listing the queue:"
		    " %s", j->err.text);
		j->nids = 0;
	}
	s->rounds++;
	turn_session_store_list_merge(s, j);
	log_debug("session=%s event=turn-list round=%u messages=%zu", s->id,
	    s->rounds, s->nqids);
	turn_session_store_job_free(j);
	if (s->result.error[0] != '\0' && s->ready) {
		turn_session_quit(s);
		return;
	}
	if (s->state == TURN_STATE_LIST)
		turn_session_next(s);
}

/* turn_session_store_list - walk the domains for deliverable message ids */
void
turn_session_store_list(struct turn_session *s)
{
	s->listing = 1;
	work_submit(s->pool, turn_session_store_list_run,
	    turn_session_store_list_done, turn_session_store_job_new(s));
}

/* turn_session_store_load_run - on the pool: read messages for the wire */
static void
turn_session_store_load_run(void *arg)
{
	struct turn_job *j = arg;
	struct turn_session *s = j->s;
	size_t octets = 0;

	/* in order, until the batch or TURN_LOAD_OCTETS of text is read */
	while (j->nmsgs < j->nids && octets < TURN_LOAD_OCTETS) {
		j->msgs[j->nmsgs] = turn_msg_load(s->queue, j->ids[j->nmsgs],
		    s->domains, s->ndomains, &j->ext);
		octets += j->msgs[j->nmsgs++]->text.len;
	}
}

/* turn_session_store_load_take - keep a loaded message, or say why not */
static void
turn_session_store_load_take(struct turn_session *s, struct turn_msg *m)
{
	if (m->status != QUEUE_OK && m->status != QUEUE_NOTFOUND) {
		log_warnx("session=%s event=store-error op=load id=%s status=%s"
		    " reason=\"%s\"", s->id, m->id,
		    queue_status_name(m->status), m->err.text);
		s->result.store_errors++;
	}
	if (m->status != QUEUE_OK || m->nrcpt == 0) {
		/* gone, held or delivered meanwhile, or unreadable */
		log_debug("session=%s event=turn-skip id=%s", s->id, m->id);
		turn_msg_free(&m);
		return;
	}
	s->loaded[s->nloaded++] = m;
	s->loaded_octets += m->text.len;
}

/* turn_session_store_load_done - on the loop: messages ready, or skipped */
static void
turn_session_store_load_done(void *arg)
{
	struct turn_job *j = arg;
	struct turn_session *s = j->s;
	size_t i;

	s->jobs--;
	s->loading = 0;
	/* the ids the batch did not reach go back to the list */
	s->nextq -= j->nids - j->nmsgs;
	if (!s->ending)
		for (i = 0; i < j->nmsgs; i++) {
			turn_session_store_load_take(s, j->msgs[i]);
			j->msgs[i] = NULL;
		}
	turn_session_store_job_free(j);
	if (s->ending) {
		turn_session_maybe_finish(s);
		return;
	}
	if (s->state == TURN_STATE_LOAD)
		turn_session_next(s);
	else
		turn_session_ahead(s);
}

/* turn_session_store_prefetch - read the next messages while these are sent */
void
turn_session_store_prefetch(struct turn_session *s)
{
	struct turn_job *j;
	size_t n;

	if (s->loading || s->stop || s->ending || s->nextq >= s->nqids ||
	    s->nloaded == TURN_LOAD_BATCH ||
	    s->loaded_octets >= TURN_LOAD_OCTETS)
		return;
	n = TURN_LOAD_BATCH - s->nloaded;
	if (n > s->nqids - s->nextq)
		n = s->nqids - s->nextq;
	j = turn_session_store_job_new(s);
	j->ids = xcalloc(n, sizeof(*j->ids));
	memcpy(j->ids, s->qids + s->nextq, n * sizeof(*j->ids));
	j->nids = n;
	s->nextq += n;
	j->ext = s->ext;
	s->loading = 1;
	work_submit(s->pool, turn_session_store_load_run,
	    turn_session_store_load_done, j);
}

/* turn_session_store_record_dsn - on the pool: the DSN of one kind, if due */
static void
turn_session_store_record_dsn(struct turn_job *j, enum turn_dsn_kind kind)
{
	struct turn_session *s = j->s;
	const struct turn_msg *m = j->msg;
	struct turn_bounce_rcpt *br;
	struct turn_bounce b;
	size_t i, n = 0;
	int relayed = (s->ext.flags & TURN_PROTO_EXT_DSN) == 0;

	br = xcalloc(m->nrcpt, sizeof(*br));
	for (i = 0; i < m->nrcpt; i++) {
		const struct turn_msg_rcpt *r = &m->rcpt[i];

		if (!r->has_outcome)
			continue;
		if (kind == TURN_DSN_FAILURE && r->kind != QUEUE_OUTCOME_FAILED)
			continue;
		/* RFC 3461 5.2.2: a next hop without DSN gets "relayed" */
		if (kind == TURN_DSN_SUCCESS &&
		    (r->kind != QUEUE_OUTCOME_DELIVERED || !relayed ||
		    (r->notify & QUEUE_NOTIFY_SUCCESS) == 0))
			continue;
		br[n].index = r->index;
		br[n].action = kind == TURN_DSN_SUCCESS ? "relayed" : NULL;
		br[n].diagnostic = r->text;
		br[n].remote_mta = s->relay_host;
		n++;
	}
	if (n > 0) {
		memset(&b, 0, sizeof(b));
		b.queue = s->queue;
		b.reporting_mta = s->helo;
		b.postmaster = s->postmaster;
		b.qid = m->qid;
		b.kind = kind;
		b.rcpts = br;
		b.nrcpt = n;
		j->dsn_status = turn_bounce_queue(&b, j->dsn_why,
		    sizeof(j->dsn_why));
		j->dsn_qid = b.dsn_qid;
		j->dsn_kind = kind;
		j->dsn_double = b.double_bounce;
	}
	free(br);
}

/* turn_session_store_record_msg - on the pool: one message's DSNs, first */
static void
turn_session_store_record_msg(struct turn_job *j)
{
	j->dsn_status = TURN_BOUNCE_NONE;
	/* the DSN is queued before the failure is recorded: a crash in
	 * between sends it twice, never not at all */
	if (j->s->dsn && turn_msg_has_kind(j->msg, QUEUE_OUTCOME_DELIVERED))
		turn_session_store_record_dsn(j, TURN_DSN_SUCCESS);
	if (j->s->dsn && turn_msg_has_kind(j->msg, QUEUE_OUTCOME_FAILED)) {
		turn_session_store_record_dsn(j, TURN_DSN_FAILURE);
		if (j->dsn_status == TURN_BOUNCE_ERROR)
			/* no DSN, no failure: the sender must hear of it,
			 * so the recipients stay queued (at worst until
			 * they expire, which reports them again) */
			turn_msg_defer_failed(j->msg, j->dsn_why);
	}
}

/* turn_session_store_record_run - on the pool: the DSNs, then one record */
static void
turn_session_store_record_run(void *arg)
{
	struct turn_job *j = arg;
	const struct queue_outcome *o;
	struct queue_outcome *all = NULL;
	size_t i, n, total = 0;

	for (i = 0; i < j->nbatch; i++) {
		turn_session_store_record_msg(j->batch[i]);
		n = turn_msg_outcomes(j->batch[i]->msg, &o);
		all = xreallocarray(all, total + n + 1, sizeof(*all));
		memcpy(all + total, o, n * sizeof(*o));
		total += n;
	}
	/* one transaction, one disk flush, for the whole batch */
	j->status = queue_record(j->s->queue, all, total, &j->err);
	free(all);
}

/* turn_session_store_log_msg - one line per outcome and reply, and counters */
static void
turn_session_store_log_msg(struct turn_session *s, const struct turn_msg *m)
{
	static const char *const events[] = {
		[QUEUE_OUTCOME_DELIVERED] = "delivered",
		[QUEUE_OUTCOME_DEFERRED] = "deferred",
		[QUEUE_OUTCOME_FAILED] = "failed",
	};
	unsigned count[3] = { 0, 0, 0 };
	char *logged = xcalloc(m->nrcpt + 1, 1);
	struct buf to;
	size_t i, k;

	buf_init(&to);
	for (i = 0; i < m->nrcpt; i++) {
		const struct turn_msg_rcpt *r = &m->rcpt[i];

		if (!r->has_outcome)
			continue;
		count[r->kind]++;
		if (logged[i])
			continue;
		buf_reset(&to);
		buf_printf(&to, "<%s>", r->addr);
		for (k = i + 1; k < m->nrcpt; k++) {
			const struct turn_msg_rcpt *o = &m->rcpt[k];

			if (!o->has_outcome || logged[k] || o->kind != r->kind ||
			    strcmp(o->text, r->text) != 0)
				continue;
			logged[k] = 1;
			buf_printf(&to, ",<%s>", o->addr);
		}
		log_info("session=%s event=%s id=%s to=%s relay=%s size=%" PRIu64
		    "%s reply=\"%s\"", s->id, events[r->kind], m->id,
		    buf_str(&to), s->relay, m->size,
		    m->downgraded ? " conversion=8bit-to-7bit" : "", r->text);
	}
	buf_release(&to);
	free(logged);
	s->result.rcpt_delivered += count[QUEUE_OUTCOME_DELIVERED];
	s->result.rcpt_deferred += count[QUEUE_OUTCOME_DEFERRED];
	s->result.rcpt_failed += count[QUEUE_OUTCOME_FAILED];
	if (count[QUEUE_OUTCOME_DEFERRED] > 0)
		s->result.messages_deferred++;
	else if (count[QUEUE_OUTCOME_DELIVERED] > 0)
		s->result.messages_delivered++;
	else if (count[QUEUE_OUTCOME_FAILED] > 0)
		s->result.messages_failed++;
}

/* turn_session_store_log_dsn - what became of the DSN the outcomes call for */
static void
turn_session_store_log_dsn(struct turn_session *s, const struct turn_job *j)
{
	char id[QUEUE_ID_LEN + 1];

	switch (j->dsn_status) {
	case TURN_BOUNCE_QUEUED:
		queue_id_format(j->dsn_qid, id);
		log_info("session=%s event=dsn-queued id=%s dsn=%s kind=%s"
		    " to=<%s>%s", s->id, j->msg->id, id,
		    turn_dsn_kind_name(j->dsn_kind), j->dsn_why,
		    j->dsn_double ? " double_bounce=yes" : "");
		break;
	case TURN_BOUNCE_LOST:
		log_warnx("session=%s event=dsn-lost id=%s reason=\"%s\"",
		    s->id, j->msg->id, j->dsn_why);
		break;
	case TURN_BOUNCE_ERROR:
		log_warnx("session=%s event=dsn-error id=%s kind=%s"
		    " reason=\"%s\"", s->id, j->msg->id,
		    turn_dsn_kind_name(j->dsn_kind), j->dsn_why);
		break;
	case TURN_BOUNCE_NONE:
		break;
	}
}

/*
 * turn_session_store_again - RFC 5321 4.5.3.1.10: a 452 for "too many
 * recipients" means the rest go in another transaction; when some got
 * through, send the message again in this session (odmr-fetch with LMTP
 * takes one recipient per transaction)
 */
static void
turn_session_store_again(struct turn_session *s, const struct turn_msg *m)
{
	size_t i;
	int more = 0;

	if (s->listing || s->stop || s->again >= TURN_AGAIN_MAX ||
	    !turn_msg_has_kind(m, QUEUE_OUTCOME_DELIVERED))
		return;
	for (i = 0; i < m->nrcpt; i++)
		if (m->rcpt[i].has_outcome &&
		    m->rcpt[i].kind == QUEUE_OUTCOME_DEFERRED &&
		    m->rcpt[i].text != NULL &&
		    strncmp(m->rcpt[i].text, "452", 3) == 0)
			more = 1;
	if (!more)
		return;
	s->qids = xreallocarray(s->qids, s->nqids + 1, sizeof(*s->qids));
	s->qids[s->nqids++] = m->qid;
	s->again++;
	log_info("session=%s event=turn-again id=%s reason=\"452 for some"
	    " recipients\"", s->id, m->id);
}

/* turn_session_store_record_done - on the loop: a batch is recorded; go on */
static void
turn_session_store_record_done(void *arg)
{
	struct turn_job *j = arg, *m;
	struct turn_session *s = j->s;
	size_t i;

	s->jobs--;
	s->recording = 0;
	for (i = 0; i < j->nbatch; i++) {
		m = j->batch[i];
		if (j->status != QUEUE_OK) {
			/* the customer has it, the store does not know: it
			 * is sent again (at least once, guarantee 2) */
			log_warnx("session=%s event=store-error op=record"
			    " id=%s status=%s reason=\"%s\"", s->id,
			    m->msg->id, queue_status_name(j->status),
			    j->err.text);
			s->result.store_errors++;
			turn_session_error(s, "store error while recording"
			    " the outcomes of %s: %s", m->msg->id, j->err.text);
		} else
			turn_session_store_log_msg(s, m->msg);
		turn_session_store_log_dsn(s, m);
		turn_session_store_again(s, m->msg);
		s->jobs--;
		turn_session_store_job_free(m);
		s->records--;
	}
	free(j->batch);
	free(j);
	turn_session_store_record_due(s);
	if (s->ending) {
		turn_session_maybe_finish(s);
		return;
	}
	if (s->result.error[0] != '\0')
		s->stop = 1;	/* QUIT after the message on the wire */
	/* the next message may already be on the wire; if the session
	 * waits for the records, it goes on now */
	if (s->state == TURN_STATE_RECORD)
		turn_session_next(s);
}

/* turn_session_store_record_flush - one record job for the waiting messages */
void
turn_session_store_record_flush(struct turn_session *s)
{
	struct turn_job *j;

	if (s->recording || s->npending == 0)
		return;
	if (s->record_timer != NULL)
		loop_timer_del(s->record_timer);
	j = turn_session_store_job_new(s);
	j->batch = s->pending;
	j->nbatch = s->npending;
	s->pending = NULL;
	s->npending = 0;
	s->recording = 1;
	work_submit(s->pool, turn_session_store_record_run,
	    turn_session_store_record_done, j);
}

/*
 * turn_session_store_record_due - a record job once the batch is full or
 * has waited TURN_RECORD_DELAY_MS; at once when the session waits for
 * the records, ends or stops
 */
static void
turn_session_store_record_due(struct turn_session *s)
{
	if (s->recording || s->npending == 0)
		return;
	if (s->npending >= TURN_RECORD_BATCH || s->ending || s->stop ||
	    s->state == TURN_STATE_RECORD || s->state == TURN_STATE_QUIT ||
	    s->record_timer == NULL)
		turn_session_store_record_flush(s);
	else if (!loop_timer_pending(s->record_timer))
		loop_timer_add(s->record_timer, TURN_RECORD_DELAY_MS);
}

/* turn_session_store_record_timer - the small batch has waited long enough */
void
turn_session_store_record_timer(void *arg)
{
	turn_session_store_record_flush(arg);
}

/* turn_session_store_record - hand the message's outcomes to the store */
void
turn_session_store_record(struct turn_session *s)
{
	struct turn_msg *m = s->cur;
	struct turn_job *j;
	size_t i, n = 0;

	s->cur = NULL;
	s->in_txn = 0;
	for (i = 0; i < m->nrcpt; i++)
		n += m->rcpt[i].has_outcome;
	if (n == 0) {
		turn_msg_free(&m);
		if (!s->ending)
			turn_session_next(s);
		return;
	}
	/* the text has gone out: a DSN reads the stored message */
	buf_release(&m->text);
	j = turn_session_store_job_new(s);
	j->msg = m;
	s->pending = xreallocarray(s->pending, s->npending + 1,
	    sizeof(*s->pending));
	s->pending[s->npending++] = j;
	s->records++;
	/*
	 * The outcomes are durable before the session ends, not before the
	 * next message goes: while one batch commits (a disk flush), the
	 * next messages are sent and their outcomes gather into the next
	 * batch, up to TURN_RECORDS_MAX messages not yet durable
	 */
	if (s->ending) {
		turn_session_store_record_flush(s);
		return;
	}
	if (s->records < TURN_RECORDS_MAX)
		turn_session_next(s);
	else
		turn_enter_state(s, TURN_STATE_RECORD);
	turn_session_store_record_due(s);
}
