/*
 * NAME
 *	store-bench 1 - measure the message store against the disk
 * SYNOPSIS
 *	store-bench raw-fsync -p DIR [-n N] [-z SIZE]
 *	store-bench enqueue -s STATE [-t THREADS] [-n N] [-z SIZE] [-d DOMAIN]
 *	store-bench populate -s STATE [--domains D] [--messages M]
 *	    [--big-domain NAME] [--big K] [-z SIZE]
 *	store-bench walk -s STATE -d DOMAIN [-r REPEAT]
 * DESCRIPTION
 *	Each subcommand prints one line of key=value pairs that bench/store.sh
 *	reads; see bench/README.md for what the figures mean.
 *
 *	raw-fsync appends SIZE octets (default 4 KiB) to a fresh file in DIR
 *	and calls fdatasync() after each append, N times (default 1000): the
 *	rate at which this disk makes one small write durable. The file is
 *	removed afterwards.
 *
 *	enqueue opens (creating it if needed) the store under STATE and has
 *	THREADS threads (default 1) share one store handle and make N
 *	(default 1000) durable enqueues of SIZE octets (default 4 KiB) to
 *	DOMAIN (default bench.example, added when absent). It reports
 *	messages per second and the median and 99th percentile latency.
 *
 *	populate bulk-loads a store, opened with QUEUE_OPEN_NOSYNC as that
 *	flag is meant for: D domains (default 2000; the big one plus
 *	d0001.example ...), M messages (default 200000) of SIZE octets
 *	(default 1 KiB), K of them (default 10000) for the big domain
 *	(default big.example). The big domain's messages are spread evenly
 *	through the arrival order, so they are interleaved with the others
 *	on disk; the rest go round-robin to the other domains. With D = 1
 *	every message is for the big domain and M must equal K. A
 *	checkpoint (queue_maintain) ends the load.
 *
 *	walk times queue_walk() of DOMAIN REPEAT times (default 5) in one
 *	process and reports the median, the fastest and the slowest pass.
 * DIAGNOSTICS
 *	Exit status 0 on success, 2 on a usage error, 3 on a store or
 *	system error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "dname.h"
#include "log.h"
#include "queue.h"
#include "units.h"
#include "xmalloc.h"

#define SB_EXIT_OK	0
#define SB_EXIT_USAGE	2
#define SB_EXIT_ERR	3

#define SB_MAX_THREADS	256
#define SB_DEF_DOMAIN	"bench.example"
#define SB_OWNER	"bench"
#define SB_PATH_MAX	4096
#define SB_PROGRESS	20000		/* populate progress every N messages */

struct sb_args {
	const char	*path;		/* -p */
	const char	*state;		/* -s */
	const char	*domain;	/* -d */
	const char	*big_domain;
	uint64_t	 n;
	uint64_t	 size;
	uint64_t	 threads;
	uint64_t	 repeat;
	uint64_t	 domains;
	uint64_t	 messages;
	uint64_t	 big;
};

struct sb_enq {
	struct queue	*q;
	const struct sb_args *a;
	char		 domain[DNAME_MAX + 1];
	const unsigned char *body;
	pthread_mutex_t	 mu;
	uint64_t	 next;
	uint64_t	 done;
	double		*lat;		/* one latency per message, ms */
	int		 failed;
};

/* sb_now - monotonic time in seconds */
static double
sb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* sb_cmp_double - qsort order for doubles */
static int
sb_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* sb_usage - print the synopsis and exit */
static void __attribute__((noreturn))
sb_usage(void)
{
	fprintf(stderr,
	    "usage: store-bench raw-fsync -p DIR [-n N] [-z SIZE]\n"
	    "       store-bench enqueue -s STATE [-t THREADS] [-n N] [-z SIZE]"
	    " [-d DOMAIN]\n"
	    "       store-bench populate -s STATE [--domains D] [--messages M]\n"
	    "           [--big-domain NAME] [--big K] [-z SIZE]\n"
	    "       store-bench walk -s STATE -d DOMAIN [-r REPEAT]\n");
	exit(SB_EXIT_USAGE);
}

/* sb_num - parse a number option or exit with usage */
static uint64_t
sb_num(const char *what, const char *s, int size)
{
	uint64_t v;
	const char *err;
	int rc;

	rc = size ? units_parse_size(s, &v, &err) :
	    units_parse_uint(s, &v, &err);
	if (rc == -1) {
		fprintf(stderr, "store-bench: bad %s '%s': %s\n", what, s, err);
		exit(SB_EXIT_USAGE);
	}
	return v;
}

/* sb_key - normalise a domain or exit with usage */
static void
sb_key(const char *in, char out[DNAME_MAX + 1])
{
	const char *err;

	if (dname_normalize(in, out, &err) == -1) {
		fprintf(stderr, "store-bench: bad domain '%s': %s\n", in, err);
		exit(SB_EXIT_USAGE);
	}
}

/* sb_open - open the store or exit */
static struct queue *
sb_open(const char *state, unsigned flags)
{
	struct queue_opts qo;
	struct queue_error err;
	struct queue *q = NULL;
	enum queue_status st;

	memset(&qo, 0, sizeof(qo));
	memset(&err, 0, sizeof(err));
	qo.state_dir = state;
	qo.flags = flags;
	if ((st = queue_open(&qo, &q, &err)) != QUEUE_OK) {
		fprintf(stderr, "store-bench: open %s: %s: %s\n", state,
		    queue_status_name(st), err.text);
		exit(SB_EXIT_ERR);
	}
	return q;
}

/* sb_domain_add - add a customer domain unless it exists */
static void
sb_domain_add(struct queue *q, const char *name)
{
	struct queue_domain d;
	struct queue_error err;
	enum queue_status st;
	char *owners[1];

	memset(&d, 0, sizeof(d));
	memset(&err, 0, sizeof(err));
	if (strlcpy(d.name, name, sizeof(d.name)) >= sizeof(d.name))
		fatalx("domain name too long: %s", name);
	owners[0] = (char *)SB_OWNER;
	d.owners = owners;
	d.nowners = 1;
	d.etrn = QUEUE_ETRN_OWNER;
	d.route = (char *)"client";
	st = queue_domain_add(q, &d, &err);
	if (st != QUEUE_OK && st != QUEUE_EXISTS) {
		fprintf(stderr, "store-bench: add %s: %s: %s\n", name,
		    queue_status_name(st), err.text);
		exit(SB_EXIT_ERR);
	}
}

/* sb_body - a valid message of exactly size octets (at least 128) */
static unsigned char *
sb_body(uint64_t size)
{
	static const char hdr[] =
	    "From: <bench@example.net>\r\n"
	    "To: <user@bench.example>\r\n"
	    "Subject: store-bench\r\n"
	    "\r\n";
	unsigned char *b;
	size_t i, col = 0;

	if (size < 128 || size > ((uint64_t)1 << 30)) {
		fprintf(stderr, "store-bench: size must be 128 octets to 1G\n");
		exit(SB_EXIT_USAGE);
	}
	b = xmalloc((size_t)size);
	memcpy(b, hdr, sizeof(hdr) - 1);
	for (i = sizeof(hdr) - 1; i < size; i++) {
		if (i == size - 2 || (col >= 76 && i + 2 <= size - 2)) {
			b[i] = '\r';
			if (i + 1 < size)
				b[++i] = '\n';
			col = 0;
			continue;
		}
		b[i] = (unsigned char)('a' + (i % 26));
		col++;
	}
	return b;
}

/* sb_msg_init - the envelope of one benchmark message to domain */
static void
sb_msg_init(struct queue_msg *m, struct queue_rcpt *r, const char *domain,
    char *addr, size_t addrsz, uint64_t i)
{
	int n;

	n = snprintf(addr, addrsz, "user%" PRIu64 "@%s", i, domain);
	if (n < 0 || (size_t)n >= addrsz)
		fatalx("recipient address too long");
	memset(m, 0, sizeof(*m));
	memset(r, 0, sizeof(*r));
	r->addr = addr;
	if (strlcpy(r->domain, domain, sizeof(r->domain)) >= sizeof(r->domain))
		fatalx("domain name too long");
	m->sender = (char *)"bench@example.net";
	m->client_addr = (char *)"127.0.0.1";
	m->helo = (char *)"bench.example.net";
	m->nrcpt = 1;
	m->rcpt = r;
}

/* sb_raw_fsync - append + fdatasync N times: the disk's durable-write rate */
static int
sb_raw_fsync(const struct sb_args *a)
{
	char path[SB_PATH_MAX];
	unsigned char *buf;
	double t0, t1;
	uint64_t i;
	int fd, n;

	if (a->path == NULL || a->n == 0)
		sb_usage();
	n = snprintf(path, sizeof(path), "%s/store-bench-fsync.%ld", a->path,
	    (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "store-bench: path too long\n");
		return SB_EXIT_USAGE;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600))
	    == -1) {
		fprintf(stderr, "store-bench: %s: %s\n", path, strerror(errno));
		return SB_EXIT_ERR;
	}
	buf = xmalloc((size_t)a->size);
	memset(buf, 'x', (size_t)a->size);
	t0 = sb_now();
	for (i = 0; i < a->n; i++) {
		if (write(fd, buf, (size_t)a->size) != (ssize_t)a->size ||
		    fdatasync(fd) == -1) {
			fprintf(stderr, "store-bench: %s: %s\n", path,
			    strerror(errno));
			close(fd);
			unlink(path);
			free(buf);
			return SB_EXIT_ERR;
		}
	}
	t1 = sb_now();
	close(fd);
	unlink(path);
	free(buf);
	printf("raw-fsync n=%" PRIu64 " size=%" PRIu64 " seconds=%.3f "
	    "ops_per_sec=%.1f ms_per_op=%.3f\n", a->n, a->size, t1 - t0,
	    (double)a->n / (t1 - t0), (t1 - t0) * 1000.0 / (double)a->n);
	return SB_EXIT_OK;
}

/* sb_enq_thread - one writer: enqueue until the shared count is reached */
static void *
sb_enq_thread(void *arg)
{
	struct sb_enq *e = arg;
	struct queue_msg m;
	struct queue_rcpt r;
	struct queue_error err;
	enum queue_status st;
	char addr[DNAME_MAX + 64];
	uint64_t i;
	double t0;

	for (;;) {
		pthread_mutex_lock(&e->mu);
		if (e->failed || e->next >= e->a->n) {
			pthread_mutex_unlock(&e->mu);
			break;
		}
		i = e->next++;
		pthread_mutex_unlock(&e->mu);

		sb_msg_init(&m, &r, e->domain, addr, sizeof(addr), i);
		memset(&err, 0, sizeof(err));
		t0 = sb_now();
		st = queue_enqueue_mem(e->q, &m, e->body, (size_t)e->a->size,
		    &err);
		e->lat[i] = (sb_now() - t0) * 1000.0;
		if (st != QUEUE_OK) {
			fprintf(stderr, "store-bench: enqueue: %s: %s\n",
			    queue_status_name(st), err.text);
			pthread_mutex_lock(&e->mu);
			e->failed = 1;
			pthread_mutex_unlock(&e->mu);
			break;
		}
		pthread_mutex_lock(&e->mu);
		e->done++;
		pthread_mutex_unlock(&e->mu);
	}
	return NULL;
}

/* sb_enqueue - durable enqueues per second with THREADS writers */
static int
sb_enqueue(const struct sb_args *a)
{
	struct sb_enq e;
	struct queue_stats qs;
	struct queue_error err;
	pthread_t *tids;
	double t0, t1;
	uint64_t i;
	int rc;

	if (a->state == NULL || a->n == 0 || a->threads < 1 ||
	    a->threads > SB_MAX_THREADS)
		sb_usage();
	memset(&e, 0, sizeof(e));
	e.a = a;
	sb_key(a->domain ? a->domain : SB_DEF_DOMAIN, e.domain);
	e.body = sb_body(a->size);
	e.lat = xcalloc((size_t)a->n, sizeof(*e.lat));
	pthread_mutex_init(&e.mu, NULL);
	e.q = sb_open(a->state, QUEUE_OPEN_CREATE);
	sb_domain_add(e.q, e.domain);

	tids = xcalloc((size_t)a->threads, sizeof(*tids));
	t0 = sb_now();
	for (i = 0; i < a->threads; i++)
		if ((rc = pthread_create(&tids[i], NULL, sb_enq_thread, &e))
		    != 0)
			fatalx("pthread_create: %s", strerror(rc));
	for (i = 0; i < a->threads; i++)
		pthread_join(tids[i], NULL);
	t1 = sb_now();
	/* a fresh store: the flush count is this run's */
	if (queue_stats(e.q, &qs, &err) != QUEUE_OK)
		fatalx("stats: %s", err.text);
	queue_close(&e.q);
	free(tids);
	free((void *)e.body);
	pthread_mutex_destroy(&e.mu);
	if (e.failed) {
		free(e.lat);
		return SB_EXIT_ERR;
	}
	qsort(e.lat, (size_t)e.done, sizeof(*e.lat), sb_cmp_double);
	printf("enqueue threads=%" PRIu64 " n=%" PRIu64 " size=%" PRIu64
	    " seconds=%.3f msgs_per_sec=%.1f p50_ms=%.3f p99_ms=%.3f"
	    " log_flushes=%" PRIu64 " msgs_per_flush=%.1f\n",
	    a->threads, e.done, a->size, t1 - t0,
	    (double)e.done / (t1 - t0), e.lat[e.done / 2],
	    e.lat[(e.done * 99) / 100], qs.log_flushes,
	    qs.log_flushes ? (double)e.done / (double)qs.log_flushes : 0.0);
	free(e.lat);
	return SB_EXIT_OK;
}

/* sb_populate - bulk-load the many-domain store */
static int
sb_populate(const struct sb_args *a)
{
	struct queue *q;
	struct queue_msg m;
	struct queue_rcpt r;
	struct queue_error err;
	enum queue_status st;
	char big[DNAME_MAX + 1], name[DNAME_MAX + 1];
	char addr[DNAME_MAX + 64];
	const char *dom;
	unsigned char *body;
	uint64_t i, other = 0, nbig = 0, nother;
	double t0, t1;
	int n;

	if (a->state == NULL || a->domains < 1 || a->messages < 1 ||
	    a->big > a->messages)
		sb_usage();
	if (a->domains == 1 && a->big != a->messages) {
		fprintf(stderr, "store-bench: with one domain --big must "
		    "equal --messages\n");
		return SB_EXIT_USAGE;
	}
	nother = a->domains - 1;
	sb_key(a->big_domain, big);
	body = sb_body(a->size);
	q = sb_open(a->state, QUEUE_OPEN_CREATE | QUEUE_OPEN_NOSYNC);
	t0 = sb_now();
	sb_domain_add(q, big);
	for (i = 1; i <= nother; i++) {
		n = snprintf(name, sizeof(name), "d%04" PRIu64 ".example", i);
		if (n < 0 || (size_t)n >= sizeof(name))
			fatalx("domain name too long");
		sb_domain_add(q, name);
	}
	for (i = 0; i < a->messages; i++) {
		/* message i is the big domain's when i * K / M steps */
		if (((i + 1) * a->big) / a->messages != (i * a->big) /
		    a->messages) {
			dom = big;
			nbig++;
		} else {
			n = snprintf(name, sizeof(name), "d%04" PRIu64
			    ".example", other++ % nother + 1);
			if (n < 0 || (size_t)n >= sizeof(name))
				fatalx("domain name too long");
			dom = name;
		}
		sb_msg_init(&m, &r, dom, addr, sizeof(addr), i);
		memset(&err, 0, sizeof(err));
		st = queue_enqueue_mem(q, &m, body, (size_t)a->size, &err);
		if (st != QUEUE_OK) {
			fprintf(stderr, "store-bench: enqueue %" PRIu64 ": %s:"
			    " %s\n", i, queue_status_name(st), err.text);
			queue_close(&q);
			free(body);
			return SB_EXIT_ERR;
		}
		if ((i + 1) % SB_PROGRESS == 0)
			fprintf(stderr, "store-bench: populate %" PRIu64
			    "/%" PRIu64 "\n", i + 1, a->messages);
	}
	memset(&err, 0, sizeof(err));
	if ((st = queue_maintain(q, &err)) != QUEUE_OK)
		fprintf(stderr, "store-bench: maintain: %s: %s\n",
		    queue_status_name(st), err.text);
	queue_close(&q);
	t1 = sb_now();
	free(body);
	printf("populate domains=%" PRIu64 " messages=%" PRIu64 " big=%s "
	    "big_messages=%" PRIu64 " size=%" PRIu64 " seconds=%.3f "
	    "msgs_per_sec=%.1f\n", a->domains, a->messages, big, nbig,
	    a->size, t1 - t0, (double)a->messages / (t1 - t0));
	return SB_EXIT_OK;
}

/* sb_walk_count - queue_msg_fn: count the messages visited */
static int
sb_walk_count(const struct queue_msg *m, void *arg)
{
	uint64_t *count = arg;

	(void)m;
	(*count)++;
	return 0;
}

/* sb_walk - time queue_walk of one domain, median of REPEAT passes */
static int
sb_walk(const struct sb_args *a)
{
	struct queue *q;
	struct queue_error err;
	enum queue_status st;
	char dom[DNAME_MAX + 1];
	double *ms, t0;
	uint64_t i, count = 0, first = 0;

	if (a->state == NULL || a->domain == NULL || a->repeat < 1)
		sb_usage();
	sb_key(a->domain, dom);
	ms = xcalloc((size_t)a->repeat, sizeof(*ms));
	q = sb_open(a->state, 0);
	for (i = 0; i < a->repeat; i++) {
		count = 0;
		memset(&err, 0, sizeof(err));
		t0 = sb_now();
		st = queue_walk(q, dom, 0, sb_walk_count, &count, &err);
		ms[i] = (sb_now() - t0) * 1000.0;
		if (st != QUEUE_OK) {
			fprintf(stderr, "store-bench: walk %s: %s: %s\n", dom,
			    queue_status_name(st), err.text);
			queue_close(&q);
			free(ms);
			return SB_EXIT_ERR;
		}
		if (i == 0)
			first = count;
		else if (count != first)
			fprintf(stderr, "store-bench: walk %s: pass %" PRIu64
			    " saw %" PRIu64 " messages, pass 1 saw %" PRIu64
			    "\n", dom, i + 1, count, first);
	}
	queue_close(&q);
	qsort(ms, (size_t)a->repeat, sizeof(*ms), sb_cmp_double);
	printf("walk domain=%s messages=%" PRIu64 " repeat=%" PRIu64
	    " median_ms=%.3f min_ms=%.3f max_ms=%.3f\n", dom, count,
	    a->repeat, ms[a->repeat / 2], ms[0], ms[a->repeat - 1]);
	free(ms);
	return SB_EXIT_OK;
}

/* main - dispatch the subcommand */
int
main(int argc, char *argv[])
{
	enum { OPT_DOMAINS = 256, OPT_MESSAGES, OPT_BIG_DOMAIN, OPT_BIG };
	static const struct option longopts[] = {
		{ "domains", required_argument, NULL, OPT_DOMAINS },
		{ "messages", required_argument, NULL, OPT_MESSAGES },
		{ "big-domain", required_argument, NULL, OPT_BIG_DOMAIN },
		{ "big", required_argument, NULL, OPT_BIG },
		{ NULL, 0, NULL, 0 },
	};
	struct sb_args a;
	const char *cmd;
	int ch;

	log_init("store-bench", 1, LOG_LEVEL_WARN);
	if (argc < 2)
		sb_usage();
	cmd = argv[1];
	memset(&a, 0, sizeof(a));
	a.n = 1000;
	a.size = 4096;
	a.threads = 1;
	a.repeat = 5;
	a.domains = 2000;
	a.messages = 200000;
	a.big = 10000;
	a.big_domain = "big.example";
	if (strcmp(cmd, "populate") == 0)
		a.size = 1024;
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "p:s:d:n:z:t:r:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'p':
			a.path = optarg;
			break;
		case 's':
			a.state = optarg;
			break;
		case 'd':
			a.domain = optarg;
			break;
		case 'n':
			a.n = sb_num("count", optarg, 0);
			break;
		case 'z':
			a.size = sb_num("size", optarg, 1);
			break;
		case 't':
			a.threads = sb_num("threads", optarg, 0);
			break;
		case 'r':
			a.repeat = sb_num("repeat", optarg, 0);
			break;
		case OPT_DOMAINS:
			a.domains = sb_num("domains", optarg, 0);
			break;
		case OPT_MESSAGES:
			a.messages = sb_num("messages", optarg, 0);
			break;
		case OPT_BIG_DOMAIN:
			a.big_domain = optarg;
			break;
		case OPT_BIG:
			a.big = sb_num("big", optarg, 0);
			break;
		default:
			sb_usage();
		}
	}
	if (optind != argc)
		sb_usage();
	if (a.size == 0 || a.size > ((uint64_t)1 << 30))
		sb_usage();
	if (strcmp(cmd, "raw-fsync") == 0)
		return sb_raw_fsync(&a);
	if (strcmp(cmd, "enqueue") == 0)
		return sb_enqueue(&a);
	if (strcmp(cmd, "populate") == 0)
		return sb_populate(&a);
	if (strcmp(cmd, "walk") == 0)
		return sb_walk(&a);
	sb_usage();
}
