/*
 * NAME
 *	turn-deliver 1 - deliver customer domains' queues to one SMTP server
 * SYNOPSIS
 *	turn-deliver -s STATE_DIR -d DOMAIN[,DOMAIN...] [-d ...] [-H HELO]
 *	    [-T MS] [-w THREADS] [-v] HOST:PORT
 * DESCRIPTION
 *	A test driver for the delivery engine (turn_session 3) in the
 *	shape of an ETRN flush: it opens the store under STATE_DIR, claims
 *	each domain (queue_claim()), connects to HOST:PORT (io_connect(),
 *	"[v6]:port" for IPv6), and lets turn_session_start() deliver; the
 *	ATRN shape is the same engine on an accepted connection. At the
 *	end it releases the claims (picked up when the run completed) and
 *	prints one line of key=value: completed, messages and recipients
 *	delivered, deferred and failed, store_errors, seconds, rate
 *	(messages handled per second) and error.
 *
 *	-H names us in EHLO (default turn-deliver.test). -T sets every
 *	customer timeout to MS milliseconds (default: RFC 5321's).
 *	-w is the number of store threads (default 2). -v logs at debug
 *	level. The log goes to standard error.
 *
 *	SIGTERM asks the engine to QUIT after the message in progress
 *	(turn_session_stop()); SIGINT aborts at once (turn_session_abort()).
 * DIAGNOSTICS
 *	Exit status 0 when the run completed and nothing stays queued, 1
 *	when it completed but something was deferred (or could not be
 *	read from the store), 2 when it did not complete (connection,
 *	protocol or store error, a claim held by someone else) or on a
 *	usage error. Failed (5xx) recipients leave the queue: they do not
 *	change the status.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "dname.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "work.h"
#include "xmalloc.h"

#include "queue.h"
#include "turn_session.h"

#define TD_MAX_DOMAINS	64
#define TD_CLAIM_TTL	3600		/* seconds */
#define TD_CONNECT_MS	30000
#define TD_EXIT_OK	0
#define TD_EXIT_DEFERRED 1
#define TD_EXIT_ERROR	2

struct td {
	struct queue	*queue;
	struct work_pool *pool;
	struct io	*io;
	struct turn_session *session;
	struct turn_params params;
	struct turn_result result;
	int		 have_result;
	char		 error[TURN_SESSION_ERROR_MAX];
};

/* td_usage - print the synopsis and exit */
static void
td_usage(void)
{
	fprintf(stderr, "usage: turn-deliver -s STATE_DIR -d DOMAIN[,DOMAIN...]"
	    " [-H HELO] [-T MS] [-w THREADS] [-v] HOST:PORT\n");
	exit(TD_EXIT_ERROR);
}

/* td_done - the engine finished: keep the result, close, stop the loop */
static void
td_done(void *arg, const struct turn_result *r)
{
	struct td *td = arg;

	td->result = *r;
	td->have_result = 1;
	td->session = NULL;
	if (r->io_gone)
		td->io = NULL;
	else
		io_free(&td->io);
	loop_break();
}

/* td_io - the connection: start the engine once it is up */
static void
td_io(struct io *io, enum io_event ev, void *arg)
{
	struct td *td = arg;
	const char *err;

	switch (ev) {
	case IO_CONNECTED:
		td->session = turn_session_start(io, &td->params, &err);
		if (td->session == NULL) {
			(void)snprintf(td->error, sizeof(td->error), "%s", err);
			io_free(&td->io);
			loop_break();
		}
		break;
	case IO_ERROR:
	case IO_DISCONNECTED:
	case IO_TIMEOUT:
		(void)snprintf(td->error, sizeof(td->error), "connect: %s",
		    io_error(io));
		io_free(&td->io);
		loop_break();
		break;
	default:
		break;
	}
}

/* td_signal - SIGTERM: finish the message, then QUIT; SIGINT: abort */
static void
td_signal(int signo, void *arg)
{
	struct td *td = arg;

	if (td->session == NULL)
		return;
	if (signo == SIGTERM)
		turn_session_stop(td->session);
	else
		turn_session_abort(&td->session);
}

/* td_split_hostport - "host:port" or "[v6]:port" */
static int
td_split_hostport(const char *arg, char *host, size_t hostsz,
    unsigned *port)
{
	const char *colon = strrchr(arg, ':');
	const char *h = arg;
	size_t n;
	char *end;
	long v;

	if (colon == NULL)
		return -1;
	n = (size_t)(colon - arg);
	if (n >= 2 && arg[0] == '[' && arg[n - 1] == ']') {
		h = arg + 1;
		n -= 2;
	}
	if (n == 0 || n >= hostsz)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	errno = 0;
	v = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* td_add_domains - split a -d argument on commas, normalise each */
static void
td_add_domains(char **domains, size_t *n, const char *arg)
{
	char *copy = xstrdup(arg), *p = copy, *tok;
	char key[DNAME_MAX + 1];
	const char *err;

	while ((tok = strsep(&p, ",")) != NULL) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		if (dname_normalize(tok, key, &err) == -1) {
			fprintf(stderr, "turn-deliver: %s: %s\n", tok, err);
			exit(TD_EXIT_ERROR);
		}
		if (*n == TD_MAX_DOMAINS) {
			fprintf(stderr, "turn-deliver: too many domains\n");
			exit(TD_EXIT_ERROR);
		}
		domains[(*n)++] = xstrdup(key);
	}
	free(copy);
}

/* td_claim - claim every domain; exit 2 when one is busy */
static void
td_claim(struct td *td, const char *holder)
{
	struct queue_error qe;
	char busy[QUEUE_HOLDER_MAX];
	enum queue_status st;
	size_t i;

	for (i = 0; i < td->params.ndomains; i++) {
		st = queue_claim(td->queue, td->params.domains[i], holder,
		    TD_CLAIM_TTL, busy, &qe);
		if (st == QUEUE_OK)
			continue;
		if (st == QUEUE_BUSY)
			fprintf(stderr, "turn-deliver: %s is being flushed by"
			    " %s\n", td->params.domains[i], busy);
		else
			fprintf(stderr, "turn-deliver: claim %s: %s\n",
			    td->params.domains[i], qe.text);
		while (i-- > 0)
			(void)queue_unclaim(td->queue, td->params.domains[i],
			    holder, 0, &qe);
		exit(TD_EXIT_ERROR);
	}
}

/* main - claim, connect, deliver, release, report */
int
main(int argc, char **argv)
{
	static char *domains[TD_MAX_DOMAINS];
	struct td td;
	struct queue_opts qo;
	struct queue_error qe;
	struct timespec t0, t1;
	const char *state_dir = NULL, *helo = "turn-deliver.test";
	char host[256], holder[QUEUE_HOLDER_MAX];
	char *lerr = NULL;
	unsigned port, timeout = 0, threads = 2, handled;
	size_t i, ndomains = 0;
	double secs;
	int ch, verbose = 0, rc;

	while ((ch = getopt(argc, argv, "s:d:H:T:w:v")) != -1) {
		switch (ch) {
		case 's':
			state_dir = optarg;
			break;
		case 'd':
			td_add_domains(domains, &ndomains, optarg);
			break;
		case 'H':
			helo = optarg;
			break;
		case 'T':
			timeout = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			threads = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			td_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1 || state_dir == NULL || ndomains == 0 ||
	    td_split_hostport(argv[0], host, sizeof(host), &port) == -1)
		td_usage();

	log_init("turn-deliver", 1, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (loop_init(&lerr) == -1) {
		fprintf(stderr, "turn-deliver: %s\n", lerr);
		return TD_EXIT_ERROR;
	}
	memset(&td, 0, sizeof(td));
	memset(&qo, 0, sizeof(qo));
	qo.state_dir = state_dir;
	if (queue_open(&qo, &td.queue, &qe) != QUEUE_OK) {
		fprintf(stderr, "turn-deliver: %s\n", qe.text);
		return TD_EXIT_ERROR;
	}
	td.params.queue = td.queue;
	td.params.session_id = "turn-deliver";
	td.params.helo_name = helo;
	td.params.domains = domains;
	td.params.ndomains = ndomains;
	for (i = 0; i < TURN_STATE_COUNT; i++)
		td.params.timeout_ms[i] = timeout;
	td.params.done = td_done;
	td.params.arg = &td;
	(void)snprintf(holder, sizeof(holder), "turn-deliver/%ld",
	    (long)getpid());
	td_claim(&td, holder);

	td.pool = td.params.pool = work_pool_new("turn", threads);
	(void)loop_signal(SIGTERM, td_signal, &td);
	(void)loop_signal(SIGINT, td_signal, &td);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	td.io = io_connect(host, port, TD_CONNECT_MS, td_io, &td);
	if (td.io == NULL)
		(void)snprintf(td.error, sizeof(td.error), "cannot connect");
	else
		(void)loop_run();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	work_pool_free(&td.pool);

	for (i = 0; i < ndomains; i++)
		if (queue_unclaim(td.queue, domains[i], holder,
		    td.have_result && td.result.completed, &qe) != QUEUE_OK)
			fprintf(stderr, "turn-deliver: unclaim %s: %s\n",
			    domains[i], qe.text);
	queue_close(&td.queue);
	loop_free();

	if (!td.have_result)
		(void)strlcpy(td.result.error, td.error,
		    sizeof(td.result.error));
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	handled = td.result.messages_delivered + td.result.messages_deferred +
	    td.result.messages_failed;
	printf("completed=%d delivered=%u deferred=%u failed=%u"
	    " rcpt_delivered=%u rcpt_deferred=%u rcpt_failed=%u"
	    " store_errors=%u seconds=%.3f rate=%.1f error=\"%s\"\n",
	    td.result.completed, td.result.messages_delivered,
	    td.result.messages_deferred, td.result.messages_failed,
	    td.result.rcpt_delivered, td.result.rcpt_deferred,
	    td.result.rcpt_failed, td.result.store_errors, secs,
	    secs > 0 ? handled / secs : 0.0, td.result.error);
	if (!td.have_result || !td.result.completed)
		rc = TD_EXIT_ERROR;
	else if (td.result.rcpt_deferred > 0 || td.result.store_errors > 0)
		rc = TD_EXIT_DEFERRED;
	else
		rc = TD_EXIT_OK;
	for (i = 0; i < ndomains; i++)
		free(domains[i]);
	return rc;
}
