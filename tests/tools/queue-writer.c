/*
 * NAME
 *	queue-writer 1 - enqueue deterministic messages, and check them later
 * SYNOPSIS
 *	queue-writer -s STATE_DIR -d DOMAIN [-d DOMAIN ...] [-n COUNT]
 *	    [-z SIZE] [-t THREADS] [-a ACKFILE] [-S SEED] [-i FIRST]
 *	queue-writer -s STATE_DIR --add-domains -d DOMAIN [-d DOMAIN ...]
 *	queue-writer --body SEED INDEX SIZE
 *	queue-writer -s STATE_DIR --verify ACKFILE [-S SEED]
 * DESCRIPTION
 *	A test helper linked with the store (queue 3h). The crash and
 *	concurrency tests kill it at random moments and then prove that
 *	every message it was told is durable is still there, byte for byte.
 *
 *	In its first form it opens the store under STATE_DIR (creating the
 *	environment when absent; the domains must already exist) and
 *	enqueues COUNT messages (default 1; 0 means until killed) of SIZE
 *	octets (default 4096; k/M/G suffixes accepted). Each message has the
 *	sender sender@example.net and one recipient userINDEX@DOMAIN for
 *	each -d, whose customer domain is that DOMAIN. Message indexes start
 *	at FIRST (default 0) and are distinct across the THREADS (default 1)
 *	threads, which share one store handle. After each enqueue returns
 *	QUEUE_OK the line "ID INDEX SIZE" is appended to ACKFILE and
 *	flushed, so a line in ACKFILE is a message the store has promised
 *	to keep.
 *
 *	The body for (SEED, INDEX, SIZE) is deterministic: Date, From, To,
 *	Subject and Message-ID header fields naming SEED, INDEX and SIZE,
 *	an empty line, then lines of at most 76 printable characters, every
 *	line ending in CRLF, exactly SIZE octets in all. SIZE must be at
 *	least the size of the header block (about 220 octets).
 *	--body prints that body on standard output.
 *
 *	--add-domains adds each -d domain (owner "queue-writer") unless it
 *	exists already, and exits.
 *
 *	--verify reopens the store and checks every line of ACKFILE: the
 *	message exists, its size and sender are right and its body is the
 *	deterministic one for SEED (default 1). Lines naming the same id
 *	twice are an error too (the store reused an id it had acknowledged).
 * DIAGNOSTICS
 *	Exit status 0 on success, 1 when --verify found a problem or an
 *	enqueue was refused, 2 on a usage error and 3 on a store error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "dname.h"
#include "log.h"
#include "queue.h"
#include "units.h"
#include "xmalloc.h"

#define QW_LINE_MAX	76		/* body characters per line */
#define QW_HDR_MAX	1024
#define QW_MAX_DOMAINS	64
#define QW_MAX_THREADS	256
#define QW_SENDER	"sender@example.net"
#define QW_OWNER	"queue-writer"
#define QW_ACKLINE_MAX	256

#define QW_EXIT_OK	0
#define QW_EXIT_FAIL	1
#define QW_EXIT_USAGE	2
#define QW_EXIT_STORE	3

/* The deterministic body, produced as a stream. */
struct qw_gen {
	uint64_t	 seed, index;	/* to start again (qw_gen_pread) */
	uint64_t	 size;		/* total octets */
	uint64_t	 pos;		/* octets handed out so far */
	uint64_t	 rng;
	char		 hdr[QW_HDR_MAX];
	size_t		 hdrlen;
	char		 line[QW_LINE_MAX + 2];
	const char	*cur;		/* current piece: hdr or line */
	size_t		 curlen, curoff;
};

struct qw_opts {
	const char	*state_dir;
	char		 domains[QW_MAX_DOMAINS][DNAME_MAX + 1];
	size_t		 ndomains;
	uint64_t	 count;
	uint64_t	 size;
	uint64_t	 threads;
	uint64_t	 seed;
	uint64_t	 first;
	const char	*ackfile;
};

struct qw_run {
	const struct qw_opts *o;
	struct queue	*q;
	pthread_mutex_t	 mu;
	uint64_t	 next;		/* next index to hand out */
	int		 stop;
	int		 status;	/* exit status of the first failure */
	FILE		*ack;
};

struct qw_cmp {
	struct qw_gen	 gen;
	uint64_t	 seen;
	int		 mismatch;
	uint64_t	 mismatch_at;
	unsigned char	 tmp[65536];
};

static const char qw_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,";

/* qw_usage - print the synopsis and exit */
static void __attribute__((noreturn))
qw_usage(void)
{
	fprintf(stderr,
	    "usage: queue-writer -s STATE_DIR -d DOMAIN [-d DOMAIN ...] [-n COUNT]\n"
	    "           [-z SIZE] [-t THREADS] [-a ACKFILE] [-S SEED] [-i FIRST]\n"
	    "       queue-writer -s STATE_DIR --add-domains -d DOMAIN ...\n"
	    "       queue-writer --body SEED INDEX SIZE\n"
	    "       queue-writer -s STATE_DIR --verify ACKFILE [-S SEED]\n");
	exit(QW_EXIT_USAGE);
}

/* qw_splitmix - one step of splitmix64 */
static uint64_t
qw_splitmix(uint64_t *s)
{
	uint64_t z;

	*s += 0x9e3779b97f4a7c15ULL;
	z = *s;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* qw_gen_header - format the header block, with PAD extra subject chars */
static int
qw_gen_header(struct qw_gen *g, uint64_t seed, uint64_t index, int pad)
{
	int n;

	n = snprintf(g->hdr, sizeof(g->hdr),
	    "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"
	    "From: Queue Writer <" QW_SENDER ">\r\n"
	    "To: <user%" PRIu64 "@queue-writer.invalid>\r\n"
	    "Subject: queue-writer seed %" PRIu64 " index %" PRIu64
	    " size %" PRIu64 "%s\r\n"
	    "Message-ID: <%" PRIu64 ".%" PRIu64 ".%" PRIu64
	    "@queue-writer.example.net>\r\n"
	    "\r\n",
	    index, seed, index, g->size, pad ? "." : "",
	    index, seed, g->size);
	if (n < 0 || (size_t)n >= sizeof(g->hdr))
		return -1;
	g->hdrlen = (size_t)n;
	return 0;
}

/* qw_gen_init - start the body for (seed, index, size); -1 if too small */
static int
qw_gen_init(struct qw_gen *g, uint64_t seed, uint64_t index, uint64_t size)
{
	uint64_t mix;

	memset(g, 0, sizeof(*g));
	g->seed = seed;
	g->index = index;
	g->size = size;
	if (qw_gen_header(g, seed, index, 0) == -1)
		return -1;
	/*
	 * A remainder of one octet cannot hold a CRLF-terminated line: grow
	 * the Subject by that octet (".") to leave none instead. Every
	 * other remainder splits into whole lines.
	 */
	if (size >= g->hdrlen && size - g->hdrlen == 1 &&
	    qw_gen_header(g, seed, index, 1) == -1)
		return -1;
	if (size < g->hdrlen)
		return -1;
	g->rng = seed ^ 0x51ed270b27a1c6f5ULL;
	mix = qw_splitmix(&g->rng);
	g->rng ^= mix + index;
	mix = qw_splitmix(&g->rng);
	g->rng ^= mix + size;
	g->cur = g->hdr;
	g->curlen = g->hdrlen;
	g->curoff = 0;
	return 0;
}

/* qw_gen_min - smallest valid size for (seed, index) */
static uint64_t
qw_gen_min(uint64_t seed, uint64_t index, uint64_t size)
{
	struct qw_gen g;

	memset(&g, 0, sizeof(g));
	g.size = size;
	if (qw_gen_header(&g, seed, index, 0) == -1)
		return UINT64_MAX;
	return g.hdrlen;
}

/* qw_gen_line - make the next body line at a line boundary */
static void
qw_gen_line(struct qw_gen *g)
{
	uint64_t left = g->size - g->pos, r = 0;
	size_t len, i;
	unsigned bits = 0;
	char c;

	/* left >= 2 here: qw_gen_init and this function never leave 1 */
	len = left - 2 < QW_LINE_MAX ? (size_t)(left - 2) : QW_LINE_MAX;
	if (left - (len + 2) == 1)
		len--;
	for (i = 0; i < len; i++) {
		if (bits < 6) {
			r = qw_splitmix(&g->rng);
			bits = 60;
		}
		c = qw_alphabet[r & 63];
		r >>= 6;
		bits -= 6;
		/* no leading or trailing blank, no leading dot or comma */
		if ((i == 0 || i == len - 1) && (c == ' ' || c == ','))
			c = 'x';
		g->line[i] = c;
	}
	g->line[len] = '\r';
	g->line[len + 1] = '\n';
	g->cur = g->line;
	g->curlen = len + 2;
	g->curoff = 0;
}

/* qw_gen_read - copy out the next octets of the body */
static ssize_t
qw_gen_read(struct qw_gen *g, void *buf, size_t len)
{
	unsigned char *out = buf;
	size_t done = 0, n;

	while (done < len && g->pos < g->size) {
		if (g->curoff == g->curlen)
			qw_gen_line(g);
		n = g->curlen - g->curoff;
		if (n > len - done)
			n = len - done;
		memcpy(out + done, g->cur + g->curoff, n);
		g->curoff += n;
		g->pos += n;
		done += n;
	}
	return (ssize_t)done;
}

/* qw_gen_pread - queue_reader_fn: the body octets at offset off */
static ssize_t
qw_gen_pread(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct qw_gen *g = ctx;
	char skip[4096];
	uint64_t n;

	/* the store reads forward, and again from the start on a retry */
	if (off < g->pos &&
	    qw_gen_init(g, g->seed, g->index, g->size) == -1)
		return -1;
	if (off > g->size)
		off = g->size;
	while (g->pos < off) {
		n = off - g->pos < sizeof(skip) ? off - g->pos : sizeof(skip);
		if (qw_gen_read(g, skip, (size_t)n) <= 0)
			return -1;
	}
	return qw_gen_read(g, buf, len);
}

/* qw_parse_u64 - parse a plain number option or exit with usage */
static uint64_t
qw_parse_u64(const char *what, const char *s)
{
	uint64_t v;
	const char *err;

	if (units_parse_uint(s, &v, &err) == -1) {
		fprintf(stderr, "queue-writer: bad %s '%s': %s\n", what, s, err);
		exit(QW_EXIT_USAGE);
	}
	return v;
}

/* qw_parse_size - parse a size option (k/M/G) or exit with usage */
static uint64_t
qw_parse_size(const char *s)
{
	uint64_t v;
	const char *err;

	if (units_parse_size(s, &v, &err) == -1) {
		fprintf(stderr, "queue-writer: bad size '%s': %s\n", s, err);
		exit(QW_EXIT_USAGE);
	}
	return v;
}

/* qw_body - the --body mode: print one deterministic body */
static int
qw_body(uint64_t seed, uint64_t index, uint64_t size)
{
	struct qw_gen g;
	char buf[65536];
	ssize_t n;

	if (qw_gen_init(&g, seed, index, size) == -1) {
		fprintf(stderr, "queue-writer: size %" PRIu64 " is below the "
		    "minimum %" PRIu64 " for a valid message\n", size,
		    qw_gen_min(seed, index, size));
		return QW_EXIT_USAGE;
	}
	while ((n = qw_gen_read(&g, buf, sizeof(buf))) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
			fprintf(stderr, "queue-writer: stdout: %s\n",
			    strerror(errno));
			return QW_EXIT_FAIL;
		}
	}
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "queue-writer: stdout: %s\n", strerror(errno));
		return QW_EXIT_FAIL;
	}
	return QW_EXIT_OK;
}

/* qw_wedged - the store is stuck behind a dead process: say so and stop */
static void
qw_wedged(void *arg)
{
	static const char msg[] = "queue-writer: store wedged by a process "
	    "that died holding its mutex; exiting so the next open recovers\n";

	(void)arg;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(QW_EXIT_STORE);
}

/* qw_open - open the store under state_dir or exit */
static struct queue *
qw_open(const char *state_dir)
{
	struct queue_opts qo;
	struct queue_error err;
	struct queue *q = NULL;
	enum queue_status st;

	memset(&qo, 0, sizeof(qo));
	memset(&err, 0, sizeof(err));
	qo.state_dir = state_dir;
	qo.flags = QUEUE_OPEN_CREATE;
	qo.on_wedged = qw_wedged;
	st = queue_open(&qo, &q, &err);
	if (st != QUEUE_OK) {
		fprintf(stderr, "queue-writer: open %s: %s: %s\n", state_dir,
		    queue_status_name(st), err.text);
		exit(QW_EXIT_STORE);
	}
	return q;
}

/* qw_add_domains - the --add-domains mode */
static int
qw_add_domains(const struct qw_opts *o)
{
	struct queue *q;
	struct queue_domain d;
	struct queue_error err;
	enum queue_status st;
	char *owners[1];
	size_t i;
	int rc = QW_EXIT_OK;

	q = qw_open(o->state_dir);
	for (i = 0; i < o->ndomains; i++) {
		memset(&d, 0, sizeof(d));
		memset(&err, 0, sizeof(err));
		if (strlcpy(d.name, o->domains[i], sizeof(d.name)) >=
		    sizeof(d.name))
			fatalx("domain name too long");
		owners[0] = (char *)QW_OWNER;
		d.owners = owners;
		d.nowners = 1;
		d.etrn = QUEUE_ETRN_OWNER;
		d.route = (char *)"client";
		d.tls = QUEUE_TLS_NONE;
		st = queue_domain_add(q, &d, &err);
		if (st != QUEUE_OK && st != QUEUE_EXISTS) {
			fprintf(stderr, "queue-writer: add %s: %s: %s\n",
			    d.name, queue_status_name(st), err.text);
			rc = QW_EXIT_STORE;
		}
	}
	queue_close(&q);
	return rc;
}

/* qw_enqueue_one - build and enqueue message INDEX; returns the status */
static enum queue_status
qw_enqueue_one(struct qw_run *run, uint64_t index, char id[QUEUE_ID_LEN + 1],
    struct queue_error *err)
{
	const struct qw_opts *o = run->o;
	struct queue_msg msg;
	struct queue_rcpt *rcpt;
	struct qw_gen *g;
	enum queue_status st;
	size_t i;

	g = xmalloc(sizeof(*g));
	if (qw_gen_init(g, o->seed, index, o->size) == -1)
		fatalx("size %" PRIu64 " is below the minimum %" PRIu64
		    " for a valid message", o->size,
		    qw_gen_min(o->seed, index, o->size));
	rcpt = xcalloc(o->ndomains, sizeof(*rcpt));
	for (i = 0; i < o->ndomains; i++) {
		rcpt[i].addr = xasprintf("user%" PRIu64 "@%s", index,
		    o->domains[i]);
		if (strlcpy(rcpt[i].domain, o->domains[i],
		    sizeof(rcpt[i].domain)) >= sizeof(rcpt[i].domain))
			fatalx("domain name too long");
		rcpt[i].state = QUEUE_RCPT_QUEUED;
		rcpt[i].index = (uint32_t)i;
	}
	memset(&msg, 0, sizeof(msg));
	msg.sender = (char *)QW_SENDER;
	msg.ret = QUEUE_RET_DEFAULT;
	msg.body = QUEUE_BODY_7BIT;
	msg.client_addr = (char *)"127.0.0.1";
	msg.helo = (char *)"queue-writer.example.net";
	msg.nrcpt = o->ndomains;
	msg.rcpt = rcpt;
	st = queue_enqueue(run->q, &msg, qw_gen_pread, g, err);
	if (st == QUEUE_OK)
		queue_id_format(msg.qid, id);
	for (i = 0; i < o->ndomains; i++)
		free(rcpt[i].addr);
	free(rcpt);
	free(g);
	return st;
}

/* qw_thread - one writer thread: take indexes until the count is reached */
static void *
qw_thread(void *arg)
{
	struct qw_run *run = arg;
	const struct qw_opts *o = run->o;
	struct queue_error err;
	enum queue_status st;
	char id[QUEUE_ID_LEN + 1];
	uint64_t index;

	for (;;) {
		pthread_mutex_lock(&run->mu);
		if (run->stop || (o->count != 0 &&
		    run->next - o->first >= o->count)) {
			pthread_mutex_unlock(&run->mu);
			break;
		}
		index = run->next++;
		pthread_mutex_unlock(&run->mu);

		memset(&err, 0, sizeof(err));
		st = qw_enqueue_one(run, index, id, &err);

		pthread_mutex_lock(&run->mu);
		if (st != QUEUE_OK) {
			fprintf(stderr, "queue-writer: enqueue index %" PRIu64
			    ": %s: %s\n", index, queue_status_name(st),
			    err.text);
			if (run->status == QW_EXIT_OK)
				run->status = st == QUEUE_ERROR ||
				    st == QUEUE_NOSPACE ?
				    QW_EXIT_STORE : QW_EXIT_FAIL;
			run->stop = 1;
			pthread_mutex_unlock(&run->mu);
			break;
		}
		if (run->ack != NULL) {
			/* one short write per line: a kill cannot tear it */
			if (fprintf(run->ack, "%s %" PRIu64 " %" PRIu64 "\n",
			    id, index, o->size) < 0 ||
			    fflush(run->ack) == EOF)
				fatal("write %s", o->ackfile);
		}
		pthread_mutex_unlock(&run->mu);
	}
	return NULL;
}

/* qw_write - the default mode: enqueue COUNT messages */
static int
qw_write(const struct qw_opts *o)
{
	struct qw_run run;
	pthread_t *tids;
	uint64_t i;
	int e;

	if (o->ndomains == 0) {
		fprintf(stderr, "queue-writer: at least one -d DOMAIN\n");
		return QW_EXIT_USAGE;
	}
	if (o->size < qw_gen_min(o->seed, o->first, o->size)) {
		fprintf(stderr, "queue-writer: size %" PRIu64 " is below the "
		    "minimum %" PRIu64 " for a valid message\n", o->size,
		    qw_gen_min(o->seed, o->first, o->size));
		return QW_EXIT_USAGE;
	}
	memset(&run, 0, sizeof(run));
	run.o = o;
	run.next = o->first;
	pthread_mutex_init(&run.mu, NULL);
	if (o->ackfile != NULL && (run.ack = fopen(o->ackfile, "a")) == NULL) {
		fprintf(stderr, "queue-writer: %s: %s\n", o->ackfile,
		    strerror(errno));
		return QW_EXIT_FAIL;
	}
	run.q = qw_open(o->state_dir);
	tids = xcalloc(o->threads, sizeof(*tids));
	for (i = 0; i < o->threads; i++)
		if ((e = pthread_create(&tids[i], NULL, qw_thread, &run)) != 0)
			fatalx("pthread_create: %s", strerror(e));
	for (i = 0; i < o->threads; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	queue_close(&run.q);
	if (run.ack != NULL && fclose(run.ack) == EOF) {
		fprintf(stderr, "queue-writer: %s: %s\n", o->ackfile,
		    strerror(errno));
		return QW_EXIT_FAIL;
	}
	pthread_mutex_destroy(&run.mu);
	return run.status;
}

/* qw_cmp_chunk - queue_chunk_fn: compare stored octets with the stream */
static int
qw_cmp_chunk(const void *data, size_t len, void *arg)
{
	struct qw_cmp *c = arg;
	const unsigned char *p = data;
	size_t n, got, k;

	while (len > 0 && !c->mismatch) {
		n = len < sizeof(c->tmp) ? len : sizeof(c->tmp);
		got = (size_t)qw_gen_read(&c->gen, c->tmp, n);
		for (k = 0; k < got; k++)
			if (p[k] != c->tmp[k])
				break;
		if (k < n) {
			c->mismatch = 1;
			c->mismatch_at = c->seen + k;
			return 0;
		}
		c->seen += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* qw_cmp_u64 - qsort order for ids */
static int
qw_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* qw_verify_one - check one acknowledged message; 0 when it matches */
static int
qw_verify_one(struct queue *q, const struct qw_opts *o, uint64_t qid,
    const char *id, uint64_t index, uint64_t size, uint64_t *missing)
{
	struct queue_msg *msg = NULL;
	struct queue_error err;
	struct qw_cmp *c;
	enum queue_status st;
	int rc = 0;

	memset(&err, 0, sizeof(err));
	st = queue_get(q, qid, &msg, &err);
	if (st == QUEUE_NOTFOUND) {
		printf("MISSING %s index %" PRIu64 " size %" PRIu64 "\n",
		    id, index, size);
		(*missing)++;
		return -1;
	}
	if (st != QUEUE_OK) {
		printf("ERROR %s: queue_get: %s: %s\n", id,
		    queue_status_name(st), err.text);
		return -1;
	}
	if (msg->size != size) {
		printf("SIZE %s index %" PRIu64 ": stored %" PRIu64
		    ", acknowledged %" PRIu64 "\n", id, index, msg->size, size);
		rc = -1;
	}
	if (msg->sender == NULL || strcmp(msg->sender, QW_SENDER) != 0) {
		printf("SENDER %s index %" PRIu64 ": '%s'\n", id, index,
		    msg->sender ? msg->sender : "(null)");
		rc = -1;
	}
	queue_msg_free(&msg);

	c = xmalloc(sizeof(*c));
	memset(c, 0, sizeof(*c));
	if (qw_gen_init(&c->gen, o->seed, index, size) == -1) {
		printf("BAD %s: size %" PRIu64 " cannot be a queue-writer body\n",
		    id, size);
		free(c);
		return -1;
	}
	memset(&err, 0, sizeof(err));
	st = queue_body_read(q, qid, qw_cmp_chunk, c, &err);
	if (st != QUEUE_OK) {
		printf("ERROR %s: queue_body_read: %s: %s\n", id,
		    queue_status_name(st), err.text);
		rc = -1;
	} else if (c->mismatch) {
		printf("BODY %s index %" PRIu64 ": differs at octet %" PRIu64
		    "\n", id, index, c->mismatch_at);
		rc = -1;
	} else if (c->seen != size) {
		printf("BODY %s index %" PRIu64 ": %" PRIu64 " octets stored, "
		    "%" PRIu64 " expected\n", id, index, c->seen, size);
		rc = -1;
	}
	free(c);
	return rc;
}

/* qw_verify - the --verify mode */
static int
qw_verify(const struct qw_opts *o, const char *ackfile)
{
	FILE *fp;
	struct queue *q;
	char line[QW_ACKLINE_MAX], id[QW_ACKLINE_MAX];
	uint64_t qid, index, size, lines = 0, good = 0, bad = 0, malformed = 0;
	uint64_t missing = 0, dups = 0, nids = 0, capids = 0, i;
	uint64_t *ids = NULL;
	int n;

	if ((fp = fopen(ackfile, "r")) == NULL) {
		fprintf(stderr, "queue-writer: %s: %s\n", ackfile,
		    strerror(errno));
		return QW_EXIT_FAIL;
	}
	q = qw_open(o->state_dir);
	while (fgets(line, sizeof(line), fp) != NULL) {
		lines++;
		n = sscanf(line, "%255s %" SCNu64 " %" SCNu64, id, &index,
		    &size);
		if (n != 3 || strchr(line, '\n') == NULL ||
		    queue_id_parse(id, &qid) == -1) {
			printf("MALFORMED line %" PRIu64 ": %s", lines, line);
			if (strchr(line, '\n') == NULL)
				printf("\n");
			malformed++;
			continue;
		}
		if (nids == capids) {
			capids = capids ? capids * 2 : 1024;
			ids = xreallocarray(ids, capids, sizeof(*ids));
		}
		ids[nids++] = qid;
		if (qw_verify_one(q, o, qid, id, index, size, &missing) == 0)
			good++;
		else
			bad++;
	}
	if (ferror(fp)) {
		fprintf(stderr, "queue-writer: read %s: %s\n", ackfile,
		    strerror(errno));
		malformed++;
	}
	fclose(fp);
	queue_close(&q);

	if (nids > 1) {
		qsort(ids, nids, sizeof(*ids), qw_cmp_u64);
		for (i = 1; i < nids; i++)
			if (ids[i] == ids[i - 1]) {
				char dupid[QUEUE_ID_LEN + 1];

				queue_id_format(ids[i], dupid);
				printf("DUPLICATE id %s acknowledged twice\n",
				    dupid);
				dups++;
			}
	}
	free(ids);
	printf("verify: %" PRIu64 " acknowledged, %" PRIu64 " ok, %" PRIu64
	    " bad (%" PRIu64 " missing), %" PRIu64 " duplicate ids, %" PRIu64
	    " malformed lines\n", lines, good, bad, missing, dups, malformed);
	return bad == 0 && dups == 0 && malformed == 0 ?
	    QW_EXIT_OK : QW_EXIT_FAIL;
}

/* qw_add_domain_opt - normalise and remember one -d DOMAIN */
static void
qw_add_domain_opt(struct qw_opts *o, const char *arg)
{
	const char *err;

	if (o->ndomains == QW_MAX_DOMAINS) {
		fprintf(stderr, "queue-writer: at most %d -d options\n",
		    QW_MAX_DOMAINS);
		exit(QW_EXIT_USAGE);
	}
	if (dname_normalize(arg, o->domains[o->ndomains], &err) == -1) {
		fprintf(stderr, "queue-writer: bad domain '%s': %s\n", arg,
		    err);
		exit(QW_EXIT_USAGE);
	}
	o->ndomains++;
}

/* main - parse the options and run one mode */
int
main(int argc, char *argv[])
{
	enum { OPT_BODY = 256, OPT_VERIFY, OPT_ADD };
	static const struct option longopts[] = {
		{ "body", no_argument, NULL, OPT_BODY },
		{ "verify", required_argument, NULL, OPT_VERIFY },
		{ "add-domains", no_argument, NULL, OPT_ADD },
		{ NULL, 0, NULL, 0 },
	};
	struct qw_opts o;
	const char *verify = NULL;
	int ch, body = 0, add = 0;

	log_init("queue-writer", 1, LOG_LEVEL_WARN);
	memset(&o, 0, sizeof(o));
	o.count = 1;
	o.size = 4096;
	o.threads = 1;
	o.seed = 1;
	while ((ch = getopt_long(argc, argv, "s:d:n:z:t:a:S:i:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			o.state_dir = optarg;
			break;
		case 'd':
			qw_add_domain_opt(&o, optarg);
			break;
		case 'n':
			o.count = qw_parse_u64("count", optarg);
			break;
		case 'z':
			o.size = qw_parse_size(optarg);
			break;
		case 't':
			o.threads = qw_parse_u64("thread count", optarg);
			if (o.threads < 1 || o.threads > QW_MAX_THREADS) {
				fprintf(stderr, "queue-writer: threads must be "
				    "1 to %d\n", QW_MAX_THREADS);
				return QW_EXIT_USAGE;
			}
			break;
		case 'a':
			o.ackfile = optarg;
			break;
		case 'S':
			o.seed = qw_parse_u64("seed", optarg);
			break;
		case 'i':
			o.first = qw_parse_u64("first index", optarg);
			break;
		case OPT_BODY:
			body = 1;
			break;
		case OPT_VERIFY:
			verify = optarg;
			break;
		case OPT_ADD:
			add = 1;
			break;
		default:
			qw_usage();
		}
	}
	argc -= optind;
	argv += optind;

	if (body) {
		if (argc != 3 || verify != NULL || add)
			qw_usage();
		return qw_body(qw_parse_u64("seed", argv[0]),
		    qw_parse_u64("index", argv[1]), qw_parse_size(argv[2]));
	}
	if (argc != 0 || o.state_dir == NULL || (verify != NULL && add))
		qw_usage();
	if (verify != NULL)
		return qw_verify(&o, verify);
	if (add) {
		if (o.ndomains == 0)
			qw_usage();
		return qw_add_domains(&o);
	}
	return qw_write(&o);
}
