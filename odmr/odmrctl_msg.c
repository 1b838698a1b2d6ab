/*
 * NAME
 *	odmrctl_msg 3 - odmrctl show, delete, hold and release
 * SYNOPSIS
 *	odmrctl [--json] show ID [--headers|--body|--raw]
 *	odmrctl delete ID...|--domain DOMAIN
 *	odmrctl hold ID...|--domain DOMAIN
 *	odmrctl release ID...|--domain DOMAIN
 * DESCRIPTION
 *	show prints a message's envelope and recipients, or with --raw the
 *	exact stored bytes, with --headers the header section (up to and
 *	including the line end of the last header line) and with --body
 *	what follows the first empty line; headers, an empty line and the
 *	body give back the raw message. The content is streamed from the
 *	store in chunks (queue_body_read) and never held in memory, except
 *	in JSON form where it becomes "content_base64".
 *
 *	delete, hold and release act on every recipient of each message
 *	given, or only on the recipients of one domain when --domain is
 *	given too; with --domain alone they act on all of that domain's
 *	mail. Every id is processed even when an earlier one fails; the
 *	exit code is the worst outcome.
 * DIAGNOSTICS
 *	1 for an unknown id or domain, a release of a message that is not
 *	held, a hold of one that is held already, and a --domain that
 *	matched nothing; 2 for a malformed id; 3 for store errors.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dname.h"
#include "json.h"
#include "odmrctl.h"
#include "queue.h"
#include "units.h"
#include "xmalloc.h"

#define ODMRCTL_MSG_OUTBUF	65536	/* bytes gathered per stdout write */

enum {
	MSG_OPT_HEADERS = 1,
	MSG_OPT_BODY,
	MSG_OPT_RAW,
	MSG_OPT_DOMAIN,
};

enum odmrctl_msg_part {
	MSG_PART_NONE = 0,
	MSG_PART_HEADERS,
	MSG_PART_BODY,
	MSG_PART_RAW,
};

static const char *const odmrctl_msg_part_names[] = {
	[MSG_PART_NONE] = "none",
	[MSG_PART_HEADERS] = "headers",
	[MSG_PART_BODY] = "body",
	[MSG_PART_RAW] = "raw",
};

static const struct odmrctl_opt odmrctl_msg_show_opts[] = {
	{ "--headers", 0, MSG_OPT_HEADERS },
	{ "--body", 0, MSG_OPT_BODY },
	{ "--raw", 0, MSG_OPT_RAW },
	{ NULL, 0, 0 },
};

static const struct odmrctl_opt odmrctl_msg_op_opts[] = {
	{ "--domain", 1, MSG_OPT_DOMAIN },
	{ NULL, 0, 0 },
};

/* what an operation is called in messages */
static const struct {
	const char	*verb;		/* "delete" */
	const char	*done;		/* "deleted" */
} odmrctl_msg_op_names[] = {
	[QUEUE_OP_HOLD] = { "hold", "held" },
	[QUEUE_OP_RELEASE] = { "release", "released" },
	[QUEUE_OP_DELETE] = { "delete", "deleted" },
};

/* streaming state of show --headers/--body/--raw */
struct odmrctl_msg_stream {
	enum odmrctl_msg_part part;
	struct json	*json;		/* NULL: write to stdout */
	struct buf	 out;		/* pending stdout bytes */
	int		 in_body;	/* past the first empty line */
	int		 at_bol;	/* at the start of a line */
	int		 pending_cr;	/* a CR at line start, not yet placed */
	int		 failed;	/* stdout write error */
};

/* odmrctl_msg_emit - send content bytes to stdout or into the JSON */
static void
odmrctl_msg_emit(struct odmrctl_msg_stream *s, const void *p, size_t len)
{
	if (len == 0 || s->failed)
		return;
	if (s->json != NULL) {
		json_base64_add(s->json, p, len);
		return;
	}
	buf_append(&s->out, p, len);
	if (s->out.len >= ODMRCTL_MSG_OUTBUF) {
		if (odmrctl_out_buf(&s->out) < 0)
			s->failed = 1;
		buf_reset(&s->out);
	}
}

/*
 * odmrctl_msg_chunk - queue_body_read callback: split a chunk into
 * header section and body. The header section ends at the first empty
 * line, "\n" or "\r\n" (RFC 5322 section 2.1); that line belongs to
 * neither part. A CR at the start of a line is kept back until the
 * next byte shows whether the line is empty, even across chunks.
 */
static int
odmrctl_msg_chunk(const void *data, size_t len, void *arg)
{
	struct odmrctl_msg_stream *s = arg;
	const unsigned char *p = data;
	size_t i, start;

	if (s->part == MSG_PART_RAW) {
		odmrctl_msg_emit(s, p, len);
		return s->failed;
	}
	for (i = 0; i < len && !s->in_body; i++) {
		if (s->at_bol && !s->pending_cr && p[i] == '\r') {
			s->pending_cr = 1;
			continue;
		}
		if (s->at_bol && p[i] == '\n') {
			s->in_body = 1;
			s->pending_cr = 0;
			continue;
		}
		if (s->pending_cr) {
			s->pending_cr = 0;
			if (s->part == MSG_PART_HEADERS)
				odmrctl_msg_emit(s, "\r", 1);
		}
		/* emit the rest of this line in one go */
		start = i;
		while (i < len && p[i] != '\n')
			i++;
		s->at_bol = i < len;
		if (s->part == MSG_PART_HEADERS)
			odmrctl_msg_emit(s, p + start, i - start + (i < len));
	}
	if (s->in_body && s->part == MSG_PART_BODY)
		odmrctl_msg_emit(s, p + i, len - i);
	return s->failed;
}

/* odmrctl_msg_content - stream the chosen part; returns an exit code */
static int
odmrctl_msg_content(struct odmrctl *ctl, const struct queue_msg *m,
    enum odmrctl_msg_part part, struct json *json)
{
	struct odmrctl_msg_stream s;
	struct queue_error qerr;
	enum queue_status st;
	int rc = ODMRCTL_EXIT_OK;

	memset(&s, 0, sizeof(s));
	memset(&qerr, 0, sizeof(qerr));
	buf_init(&s.out);
	s.part = part;
	s.json = json;
	s.at_bol = 1;
	if (json != NULL)
		json_base64_begin(json);
	st = queue_body_read(ctl->q, m->qid, odmrctl_msg_chunk, &s, &qerr);
	/* a lone CR that ends the header section is header text */
	if (st == QUEUE_OK && !s.in_body && s.pending_cr &&
	    part == MSG_PART_HEADERS)
		odmrctl_msg_emit(&s, "\r", 1);
	if (json != NULL)
		json_base64_end(json);
	else if (!s.failed && odmrctl_out_buf(&s.out) < 0)
		s.failed = 1;
	if (s.failed)
		rc = ODMRCTL_EXIT_STORE;
	else if (st == QUEUE_NOTFOUND) {
		odmrctl_err("message %s is gone (deleted meanwhile)", m->id);
		rc = ODMRCTL_EXIT_NOTFOUND;
	} else if (st != QUEUE_OK)
		rc = odmrctl_store_err(st, &qerr, "cannot read message %s",
		    m->id);
	buf_release(&s.out);
	return rc;
}

/* odmrctl_msg_notify_json - NOTIFY as null or an array of keywords */
static void
odmrctl_msg_notify_json(struct json *j, unsigned notify)
{
	static const struct { unsigned bit; const char *name; } t[] = {
		{ QUEUE_NOTIFY_NEVER, "NEVER" },
		{ QUEUE_NOTIFY_SUCCESS, "SUCCESS" },
		{ QUEUE_NOTIFY_FAILURE, "FAILURE" },
		{ QUEUE_NOTIFY_DELAY, "DELAY" },
	};
	size_t i;

	json_key(j, "notify");
	if (notify == 0) {
		json_null(j);
		return;
	}
	json_begin_array(j);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (notify & t[i].bit)
			json_string(j, t[i].name);
	json_end_array(j);
}

/* odmrctl_msg_json - the "message" object of show --json */
static void
odmrctl_msg_json(struct json *j, const struct queue_msg *m)
{
	size_t i;

	json_key(j, "message");
	json_begin_object(j);
	json_kv_string(j, "id", m->id);
	json_kv_uint(j, "arrival", m->arrival);
	json_kv_uint(j, "size", m->size);
	json_kv_string(j, "sender", m->sender ? m->sender : "");
	json_kv_string(j, "envid", m->envid);
	json_kv_string(j, "ret", queue_ret_name(m->ret));
	json_kv_string(j, "body", queue_body_type_name(m->body));
	json_kv_bool(j, "smtputf8", m->smtputf8);
	json_kv_string(j, "client_addr", m->client_addr);
	json_kv_string(j, "helo", m->helo);
	json_kv_string(j, "auth_id", m->auth_id);
	json_key(j, "recipients");
	json_begin_array(j);
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		json_begin_object(j);
		json_kv_uint(j, "index", r->index);
		json_kv_string(j, "address", r->addr);
		json_kv_string(j, "domain", r->domain);
		json_kv_string(j, "orcpt", r->orcpt);
		odmrctl_msg_notify_json(j, r->notify);
		json_kv_string(j, "state", queue_rcpt_state_name(r->state));
		json_kv_uint(j, "attempts", r->attempts);
		odmrctl_out_json_time(j, "last_attempt", r->last_attempt);
		json_kv_string(j, "last_error", r->last_error);
		json_end_object(j);
	}
	json_end_array(j);
	json_end_object(j);
}

/* odmrctl_msg_human - the envelope and recipients as key-value lines */
static void
odmrctl_msg_human(struct odmrctl *ctl, const struct queue_msg *m,
    struct buf *out)
{
	char v[ODMRCTL_FIELD_MAX];
	size_t i;

#define OR_DASH(s)	((s) != NULL && (s)[0] != '\0' ? (s) : "-")
	odmrctl_out_kv(out, "id", "%s", m->id);
	odmrctl_out_time(ctl->now, m->arrival, "-", v, sizeof(v));
	odmrctl_out_kv(out, "arrival", "%s", v);
	odmrctl_out_size(m->size, v, sizeof(v));
	odmrctl_out_kv(out, "size", "%s (%llu bytes)", v,
	    (unsigned long long)m->size);
	odmrctl_out_kv(out, "sender", "%s", odmrctl_out_sender(m->sender));
	odmrctl_out_kv(out, "envid", "%s", OR_DASH(m->envid));
	odmrctl_out_kv(out, "ret", "%s", queue_ret_name(m->ret));
	odmrctl_out_kv(out, "body", "%s", queue_body_type_name(m->body));
	odmrctl_out_kv(out, "smtputf8", "%s", m->smtputf8 ? "yes" : "no");
	odmrctl_out_kv(out, "client", "%s", OR_DASH(m->client_addr));
	odmrctl_out_kv(out, "helo", "%s", OR_DASH(m->helo));
	odmrctl_out_kv(out, "auth id", "%s", OR_DASH(m->auth_id));
	odmrctl_out_kv(out, "recipients", "%zu", m->nrcpt);
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		buf_putc(out, '\n');
		odmrctl_out_kv(out, "recipient", "%s", r->addr);
		odmrctl_out_kv(out, "  domain", "%s", r->domain);
		odmrctl_out_kv(out, "  orcpt", "%s", OR_DASH(r->orcpt));
		queue_notify_format(r->notify, v, sizeof(v));
		odmrctl_out_kv(out, "  notify", "%s", v);
		odmrctl_out_kv(out, "  state", "%s",
		    queue_rcpt_state_name(r->state));
		odmrctl_out_kv(out, "  attempts", "%lu",
		    (unsigned long)r->attempts);
		odmrctl_out_ago(ctl->now, r->last_attempt, "never", v,
		    sizeof(v));
		odmrctl_out_kv(out, "  last attempt", "%s", v);
		odmrctl_out_kv(out, "  last error", "%s",
		    OR_DASH(r->last_error));
	}
#undef OR_DASH
}

/* odmrctl_msg_id - parse a queue id argument */
static int
odmrctl_msg_id(struct odmrctl *ctl, const char *s, uint64_t *qid)
{
	if (queue_id_parse(s, qid) < 0) {
		odmrctl_usage_err(ctl, "bad queue id '%s': expected %d hex "
		    "digits", s, QUEUE_ID_LEN);
		return -1;
	}
	return 0;
}

/* odmrctl_msg_show - "show ID": one message */
int
odmrctl_msg_show(struct odmrctl *ctl, int argc, char **argv)
{
	struct odmrctl_args a;
	struct queue_error qerr;
	struct queue_msg *m = NULL;
	enum odmrctl_msg_part part = MSG_PART_NONE;
	enum queue_status st;
	struct json j;
	struct buf out;
	const char *val, *idarg = NULL;
	uint64_t qid;
	int id, rc;

	odmrctl_args_init(&a, ctl, argc, argv);
	while ((id = odmrctl_args_next(&a, odmrctl_msg_show_opts, &val)) !=
	    ODMRCTL_ARG_END) {
		if (id == ODMRCTL_ARG_ERROR)
			return ODMRCTL_EXIT_USAGE;
		if (id == ODMRCTL_ARG_OPERAND) {
			if (idarg != NULL)
				return odmrctl_syntax_err(ctl,
				    "unexpected argument '%s'", val);
			idarg = val;
			continue;
		}
		if (part != MSG_PART_NONE)
			return odmrctl_usage_err(ctl, "give only one of "
			    "--headers, --body and --raw");
		part = id == MSG_OPT_HEADERS ? MSG_PART_HEADERS :
		    id == MSG_OPT_BODY ? MSG_PART_BODY : MSG_PART_RAW;
	}
	if (idarg == NULL)
		return odmrctl_syntax_err(ctl, "missing message ID");
	if (odmrctl_msg_id(ctl, idarg, &qid) < 0)
		return ODMRCTL_EXIT_USAGE;
	if (odmrctl_store(ctl, &rc) < 0)
		return rc;
	memset(&qerr, 0, sizeof(qerr));
	st = queue_get(ctl->q, qid, &m, &qerr);
	if (st == QUEUE_NOTFOUND) {
		odmrctl_err("no message %s in the queue", idarg);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	if (st != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "cannot read message %s",
		    idarg);
	buf_init(&out);
	rc = ODMRCTL_EXIT_OK;
	if (ctl->json) {
		odmrctl_out_json_begin(ctl, &j, &out, "odmrctl.show/1");
		odmrctl_msg_json(&j, m);
		json_kv_string(&j, "content", odmrctl_msg_part_names[part]);
		if (part != MSG_PART_NONE) {
			json_key(&j, "content_base64");
			rc = odmrctl_msg_content(ctl, m, part, &j);
		}
		odmrctl_out_json_end(&j);
		if (rc == ODMRCTL_EXIT_OK && odmrctl_out_buf(&out) < 0)
			rc = ODMRCTL_EXIT_STORE;
	} else if (part != MSG_PART_NONE)
		rc = odmrctl_msg_content(ctl, m, part, NULL);
	else {
		odmrctl_msg_human(ctl, m, &out);
		if (odmrctl_out_buf(&out) < 0)
			rc = ODMRCTL_EXIT_STORE;
	}
	buf_release(&out);
	queue_msg_free(&m);
	return rc;
}

/* odmrctl_msg_worst - combine exit codes: the worst one wins */
static int
odmrctl_msg_worst(int a, int b)
{
	return a > b ? a : b;
}

/*
 * odmrctl_msg_precheck - find out what an operation would do, so that
 * the message says why nothing can be done: the store answers
 * QUEUE_NOTFOUND alike for an unknown message and for one with nothing
 * to change. Returns an exit code.
 */
static int
odmrctl_msg_precheck(struct odmrctl *ctl, enum queue_op op, uint64_t qid,
    const char *idarg, const char *domain)
{
	struct queue_error qerr;
	struct queue_msg *m = NULL;
	enum queue_status st;
	size_t i, live = 0, todo = 0;

	memset(&qerr, 0, sizeof(qerr));
	st = queue_get(ctl->q, qid, &m, &qerr);
	if (st == QUEUE_NOTFOUND) {
		odmrctl_err("no message %s in the queue", idarg);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	if (st != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "cannot read message %s",
		    idarg);
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt *r = &m->rcpt[i];

		if (domain != NULL && strcmp(r->domain, domain) != 0)
			continue;
		if (r->state != QUEUE_RCPT_QUEUED &&
		    r->state != QUEUE_RCPT_HELD)
			continue;
		live++;
		if ((op == QUEUE_OP_HOLD && r->state == QUEUE_RCPT_QUEUED) ||
		    (op == QUEUE_OP_RELEASE && r->state == QUEUE_RCPT_HELD) ||
		    op == QUEUE_OP_DELETE)
			todo++;
	}
	queue_msg_free(&m);
	if (live == 0 && domain != NULL) {
		odmrctl_err("message %s has no recipient in domain %s",
		    idarg, domain);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	if (todo == 0 && op == QUEUE_OP_RELEASE) {
		odmrctl_err("message %s is not held", idarg);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	if (todo == 0 && op == QUEUE_OP_HOLD) {
		odmrctl_err("message %s is already held", idarg);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	return ODMRCTL_EXIT_OK;
}

/* odmrctl_msg_by_id - apply an operation to each id given */
static int
odmrctl_msg_by_id(struct odmrctl *ctl, enum queue_op op, const char **ids,
    const uint64_t *qids, size_t n, const char *domain)
{
	struct queue_error qerr;
	enum queue_status st;
	size_t i;
	int rc = ODMRCTL_EXIT_OK, r;

	for (i = 0; i < n; i++) {
		if ((r = odmrctl_msg_precheck(ctl, op, qids[i], ids[i],
		    domain)) != ODMRCTL_EXIT_OK) {
			rc = odmrctl_msg_worst(rc, r);
			continue;
		}
		memset(&qerr, 0, sizeof(qerr));
		st = queue_msg_op(ctl->q, op, qids[i], domain, &qerr);
		if (st == QUEUE_NOTFOUND) {
			/* changed since the precheck: the store's word wins */
			odmrctl_err("%s", qerr.text[0] ? qerr.text :
			    "no such message, or nothing to do");
			rc = odmrctl_msg_worst(rc, ODMRCTL_EXIT_NOTFOUND);
		} else if (st != QUEUE_OK)
			rc = odmrctl_msg_worst(rc, odmrctl_store_err(st, &qerr,
			    "cannot %s message %s", odmrctl_msg_op_names[op].verb,
			    ids[i]));
		else
			printf("%s %s%s%s\n", ids[i],
			    odmrctl_msg_op_names[op].done,
			    domain ? " in " : "", domain ? domain : "");
	}
	return rc;
}

/* odmrctl_msg_by_domain - apply an operation to all of a domain's mail */
static int
odmrctl_msg_by_domain(struct odmrctl *ctl, enum queue_op op,
    const char *domain)
{
	struct queue_error qerr;
	enum queue_status st;
	uint64_t count = 0;
	int rc;

	if ((rc = odmrctl_domain_known(ctl, domain)) != ODMRCTL_EXIT_OK)
		return rc;
	memset(&qerr, 0, sizeof(qerr));
	st = queue_domain_op(ctl->q, op, domain, &count, &qerr);
	/* the domain exists: NOTFOUND here means no message matched */
	if (st == QUEUE_NOTFOUND)
		count = 0;
	else if (st != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "cannot %s the mail of %s",
		    odmrctl_msg_op_names[op].verb, domain);
	if (count == 0) {
		odmrctl_err("no messages to %s in domain %s",
		    odmrctl_msg_op_names[op].verb, domain);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	printf("%s: %llu message%s %s\n", domain, (unsigned long long)count,
	    count == 1 ? "" : "s", odmrctl_msg_op_names[op].done);
	return ODMRCTL_EXIT_OK;
}

/* odmrctl_msg_op - parse "ID...|--domain D" and run one operation */
static int
odmrctl_msg_op(struct odmrctl *ctl, enum queue_op op, int argc, char **argv)
{
	struct odmrctl_args a;
	char name[DNAME_MAX + 1];
	const char *val, *domain = NULL, **ids;
	uint64_t *qids;
	size_t n = 0;
	int id, rc;

	ids = xcalloc((size_t)argc + 1, sizeof(*ids));
	qids = xcalloc((size_t)argc + 1, sizeof(*qids));
	rc = ODMRCTL_EXIT_OK;
	odmrctl_args_init(&a, ctl, argc, argv);
	while (rc == ODMRCTL_EXIT_OK && (id = odmrctl_args_next(&a,
	    odmrctl_msg_op_opts, &val)) != ODMRCTL_ARG_END) {
		if (id == ODMRCTL_ARG_ERROR)
			rc = ODMRCTL_EXIT_USAGE;
		else if (id == MSG_OPT_DOMAIN) {
			if (domain != NULL)
				rc = odmrctl_usage_err(ctl,
				    "--domain given twice");
			domain = val;
		} else if (odmrctl_msg_id(ctl, val, &qids[n]) < 0)
			rc = ODMRCTL_EXIT_USAGE;
		else
			ids[n++] = val;
	}
	if (rc == ODMRCTL_EXIT_OK && n == 0 && domain == NULL)
		rc = odmrctl_syntax_err(ctl, "missing message ID or "
		    "--domain DOMAIN");
	if (rc == ODMRCTL_EXIT_OK && domain != NULL &&
	    odmrctl_domain_arg(ctl, domain, name) < 0)
		rc = ODMRCTL_EXIT_USAGE;
	if (rc == ODMRCTL_EXIT_OK && odmrctl_store(ctl, &rc) == 0) {
		if (n > 0)
			rc = odmrctl_msg_by_id(ctl, op, ids, qids, n,
			    domain ? name : NULL);
		else
			rc = odmrctl_msg_by_domain(ctl, op, name);
	}
	free(ids);
	free(qids);
	return rc;
}

/* odmrctl_msg_delete - "delete": remove messages */
int
odmrctl_msg_delete(struct odmrctl *ctl, int argc, char **argv)
{
	return odmrctl_msg_op(ctl, QUEUE_OP_DELETE, argc, argv);
}

/* odmrctl_msg_hold - "hold": keep messages from delivery */
int
odmrctl_msg_hold(struct odmrctl *ctl, int argc, char **argv)
{
	return odmrctl_msg_op(ctl, QUEUE_OP_HOLD, argc, argv);
}

/* odmrctl_msg_release - "release": make held messages deliverable */
int
odmrctl_msg_release(struct odmrctl *ctl, int argc, char **argv)
{
	return odmrctl_msg_op(ctl, QUEUE_OP_RELEASE, argc, argv);
}
