/*
 * NAME
 *	turn-enqueue 1 - put one message with a chosen envelope in the store
 * SYNOPSIS
 *	turn-enqueue -s STATE_DIR -f SENDER [-b 7bit|8bitmime|binarymime]
 *	    [-u] [-R full|hdrs] [-e ENVID] -r RCPT [-N NOTIFY] [-O ORCPT]
 *	    [-r RCPT [-N NOTIFY] [-O ORCPT] ...] < MESSAGE
 * DESCRIPTION
 *	A test helper for the delivery engine's integration test: it
 *	enqueues the octets of standard input, exactly as they are, with
 *	the envelope the options give, and prints the queue id. Each
 *	recipient is filed under the customer domain that
 *	queue_domain_match() finds for it (the domain must exist).
 *
 *	-f sets the sender ("" for the null sender), -b the body type
 *	(RFC 6152, RFC 3030), -u SMTPUTF8 (RFC 6531), -R and -e the
 *	RFC 3461 RET and ENVID (xtext). -N and -O set NOTIFY (NEVER, or
 *	a comma list of SUCCESS, FAILURE, DELAY) and ORCPT ("rfc822;x")
 *	of the recipient named just before them.
 * DIAGNOSTICS
 *	Exit status 0 on success, 1 when the store refused the message,
 *	2 on a usage error, 3 on a store error.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "dname.h"
#include "log.h"
#include "xmalloc.h"

#include "queue.h"

#define TE_MAX_RCPT	1000

/* te_usage - print the synopsis and exit */
static void
te_usage(void)
{
	fprintf(stderr, "usage: turn-enqueue -s STATE_DIR -f SENDER"
	    " [-b 7bit|8bitmime|binarymime] [-u] [-R full|hdrs] [-e ENVID]\n"
	    "\t-r RCPT [-N NOTIFY] [-O ORCPT] ... < MESSAGE\n");
	exit(2);
}

/* te_notify - parse NOTIFY=NEVER or SUCCESS,FAILURE,DELAY */
static unsigned
te_notify(const char *arg)
{
	char *copy = xstrdup(arg), *p = copy, *tok;
	unsigned v = 0;

	while ((tok = strsep(&p, ",")) != NULL) {
		if (strcasecmp(tok, "NEVER") == 0)
			v |= QUEUE_NOTIFY_NEVER;
		else if (strcasecmp(tok, "SUCCESS") == 0)
			v |= QUEUE_NOTIFY_SUCCESS;
		else if (strcasecmp(tok, "FAILURE") == 0)
			v |= QUEUE_NOTIFY_FAILURE;
		else if (strcasecmp(tok, "DELAY") == 0)
			v |= QUEUE_NOTIFY_DELAY;
		else
			te_usage();
	}
	free(copy);
	return v;
}

/* main - read the message, build the envelope, enqueue, print the id */
int
main(int argc, char **argv)
{
	static struct queue_rcpt rcpt[TE_MAX_RCPT];
	struct queue_msg m;
	struct queue_opts qo;
	struct queue_error qe;
	struct queue *q;
	struct buf body;
	const char *state_dir = NULL, *at;
	char chunk[65536], id[QUEUE_ID_LEN + 1];
	enum queue_status st;
	size_t n, nrcpt = 0, i;
	int ch;

	memset(&m, 0, sizeof(m));
	while ((ch = getopt(argc, argv, "s:f:b:uR:e:r:N:O:")) != -1) {
		switch (ch) {
		case 's':
			state_dir = optarg;
			break;
		case 'f':
			m.sender = optarg;
			break;
		case 'b':
			if (queue_body_type_parse(optarg, &m.body) == -1)
				te_usage();
			break;
		case 'u':
			m.smtputf8 = 1;
			break;
		case 'R':
			if (queue_ret_parse(optarg, &m.ret) == -1)
				te_usage();
			break;
		case 'e':
			m.envid = optarg;
			break;
		case 'r':
			if (nrcpt == TE_MAX_RCPT)
				te_usage();
			rcpt[nrcpt].addr = optarg;
			rcpt[nrcpt].state = QUEUE_RCPT_QUEUED;
			nrcpt++;
			break;
		case 'N':
			if (nrcpt == 0)
				te_usage();
			rcpt[nrcpt - 1].notify = te_notify(optarg);
			break;
		case 'O':
			if (nrcpt == 0)
				te_usage();
			rcpt[nrcpt - 1].orcpt = optarg;
			break;
		default:
			te_usage();
		}
	}
	if (optind != argc || state_dir == NULL || m.sender == NULL ||
	    nrcpt == 0)
		te_usage();
	log_init("turn-enqueue", 1, LOG_LEVEL_WARN);

	memset(&qo, 0, sizeof(qo));
	qo.state_dir = state_dir;
	if (queue_open(&qo, &q, &qe) != QUEUE_OK) {
		fprintf(stderr, "turn-enqueue: %s\n", qe.text);
		return 3;
	}
	for (i = 0; i < nrcpt; i++) {
		if ((at = strrchr(rcpt[i].addr, '@')) == NULL ||
		    queue_domain_match(q, at + 1, rcpt[i].domain, &qe) !=
		    QUEUE_OK) {
			fprintf(stderr, "turn-enqueue: %s: no customer domain\n",
			    rcpt[i].addr);
			queue_close(&q);
			return 1;
		}
	}
	buf_init(&body);
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		buf_append(&body, chunk, n);
	m.nrcpt = nrcpt;
	m.rcpt = rcpt;
	m.client_addr = (char *)"127.0.0.1";
	m.helo = (char *)"turn-enqueue.test";
	st = queue_enqueue_mem(q, &m, body.data, body.len, &qe);
	buf_release(&body);
	if (st != QUEUE_OK) {
		fprintf(stderr, "turn-enqueue: %s: %s\n",
		    queue_status_name(st), qe.text);
		queue_close(&q);
		return st == QUEUE_LIMIT || st == QUEUE_INVALID ? 1 : 3;
	}
	queue_id_format(m.qid, id);
	printf("%s\n", id);
	queue_close(&q);
	return 0;
}
