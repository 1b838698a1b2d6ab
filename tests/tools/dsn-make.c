/*
 * NAME
 *	dsn-make - build one DSN with turn_dsn(3) from the command line
 * SYNOPSIS
 *	dsn-make [-k failure|delay|success] [-m reporting-mta] [-s sender]
 *	    [-e envid] [-r full|hdrs] [-u] [-b 7bit|8bitmime|binarymime]
 *	    [-i queue-id] [-a arrival] [-n now] [-x expires] [-M return-max]
 *	    [-N nonce] [-c chunk] [-o] [-I]
 *	    -R addr [-O orcpt] [-A action] [-S status]
 *	    [-D diagnostic] [-E last-error] [-H remote-mta] [-L last-attempt]
 *	    [-R addr ...] < message > dsn
 * DESCRIPTION
 *	Each -R starts a recipient; the -O, -A, -S, -D, -E, -H and -L
 *	after it describe that recipient (-E is its stored last_error, -D
 *	the diagnostic given to turn_dsn). The message is read from
 *	standard input and fed to turn_dsn_original() in pieces of chunk
 *	octets (default 4096), each in an allocation of exactly its size
 *	so the sanitizers see any read past it; -o feeds nothing. Times are unix times; the defaults are
 *	fixed, so that the output only depends on the arguments (the nonce
 *	defaults to 1). -I prints "8bit=N smtputf8=N returned=WHAT
 *	boundary=B" on standard error.
 * DIAGNOSTICS
 *	Exit 0 with the DSN on standard output; 1 with "dsn-make: ERROR" on
 *	standard error when turn_dsn refuses; 2 on usage or I/O errors.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "xmalloc.h"

#include "queue.h"
#include "turn_dsn.h"

#define DSN_MAKE_RCPT_MAX	64
#define DSN_MAKE_CHUNK		4096

/* usage - the synopsis, and exit 2 */
static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: dsn-make [-k kind] [-m mta] [-s sender] "
	    "[-e envid] [-r full|hdrs] [-u] [-b body] [-i id] [-a arrival] "
	    "[-n now] [-x expires] [-M max] [-N nonce] [-c chunk] [-o] [-I] "
	    "-R addr [-O orcpt] [-A action] [-S status] "
	    "[-D diag] [-E error] [-H mta] [-L last] ... < msg\n");
	exit(2);
}

/* number - a decimal unsigned argument, or usage() */
static uint64_t
number(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || *s == '-')
		usage();
	return (uint64_t)v;
}

/* read_all - standard input, whole */
static void
read_all(struct buf *b)
{
	unsigned char chunk[65536];
	size_t n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		buf_append(b, chunk, n);
	if (ferror(stdin)) {
		fprintf(stderr, "dsn-make: read error on standard input\n");
		exit(2);
	}
}

/* feed - the message to turn_dsn_original(), chunk octets at a time */
static int
feed(struct turn_dsn *d, const struct buf *in, size_t chunk,
    const char **error_r)
{
	size_t off = 0, n;
	unsigned char *p;
	int rc = 0;

	do {
		n = in->len - off < chunk ? in->len - off : chunk;
		p = xmalloc(n > 0 ? n : 1);
		if (n > 0)
			memcpy(p, in->data + off, n);
		rc = turn_dsn_original(d, p, n, error_r);
		free(p);
		off += n;
	} while (rc == 0 && off < in->len);
	return rc;
}

/* main - parse the options, build the DSN, write it */
int
main(int argc, char **argv)
{
	static struct queue_rcpt qr[DSN_MAKE_RCPT_MAX];
	static struct turn_dsn_rcpt dr[DSN_MAKE_RCPT_MAX];
	struct turn_dsn_params p;
	struct queue_msg m;
	struct turn_dsn *d;
	struct buf in, out;
	const char *error = NULL;
	size_t n = 0, chunk = DSN_MAKE_CHUNK;
	int c, no_orig = 0, info = 0, i;

	memset(&p, 0, sizeof(p));
	memset(&m, 0, sizeof(m));
	m.sender = "sender@example.com";
	(void)snprintf(m.id, sizeof(m.id), "%s", "018F2A3B4C5D6E");
	m.arrival = 1700000000;
	p.reporting_mta = "mx.example.net";
	p.msg = &m;
	p.kind = TURN_DSN_FAILURE;
	p.now = 1700003600;
	p.nonce = 1;

#define CUR()	(n > 0 ? n - 1 : (usage(), 0))
	while ((c = getopt(argc, argv,
	    "k:m:s:e:r:ub:i:a:n:x:M:N:c:oIR:O:A:S:D:E:H:L:")) != -1) {
		switch (c) {
		case 'k':
			if (strcmp(optarg, "failure") == 0)
				p.kind = TURN_DSN_FAILURE;
			else if (strcmp(optarg, "delay") == 0)
				p.kind = TURN_DSN_DELAY;
			else if (strcmp(optarg, "success") == 0)
				p.kind = TURN_DSN_SUCCESS;
			else
				usage();
			break;
		case 'm': p.reporting_mta = optarg; break;
		case 's': m.sender = optarg; break;
		case 'e': m.envid = optarg; break;
		case 'r':
			if (queue_ret_parse(optarg, &m.ret) == -1)
				usage();
			break;
		case 'u': m.smtputf8 = 1; break;
		case 'b':
			if (queue_body_type_parse(optarg, &m.body) == -1)
				usage();
			break;
		case 'i':
			if (snprintf(m.id, sizeof(m.id), "%s", optarg) >=
			    (int)sizeof(m.id))
				usage();
			break;
		case 'a': m.arrival = number(optarg); break;
		case 'n': p.now = number(optarg); break;
		case 'x': p.expires = number(optarg); break;
		case 'M': p.return_max = (size_t)number(optarg); break;
		case 'N': p.nonce = number(optarg); break;
		case 'c':
			if ((chunk = (size_t)number(optarg)) == 0)
				usage();
			break;
		case 'o': no_orig = 1; break;
		case 'I': info = 1; break;
		case 'R':
			if (n == DSN_MAKE_RCPT_MAX)
				usage();
			qr[n].addr = optarg;
			qr[n].index = (uint32_t)n;
			dr[n].rcpt = &qr[n];
			n++;
			break;
		case 'O': qr[CUR()].orcpt = optarg; break;
		case 'A': dr[CUR()].action = optarg; break;
		case 'S': dr[CUR()].status = optarg; break;
		case 'D': dr[CUR()].diagnostic = optarg; break;
		case 'E': qr[CUR()].last_error = optarg; break;
		case 'H': dr[CUR()].remote_mta = optarg; break;
		case 'L': dr[CUR()].last_attempt = number(optarg); break;
		default:
			usage();
		}
	}
#undef CUR
	if (optind != argc)
		usage();
	p.rcpts = dr;
	p.nrcpt = n;

	buf_init(&in);
	buf_init(&out);
	if (!no_orig)
		read_all(&in);
	if ((d = turn_dsn_new(&p, &error)) == NULL ||
	    (!no_orig && feed(d, &in, chunk, &error) == -1) ||
	    turn_dsn_finish(d, &out, &error) == -1) {
		fprintf(stderr, "dsn-make: %s\n", error);
		turn_dsn_free(&d);
		buf_release(&in);
		return 1;
	}
	if (info)
		fprintf(stderr, "8bit=%d smtputf8=%d returned=%s boundary=%s\n",
		    turn_dsn_8bit(d), turn_dsn_smtputf8(d),
		    turn_dsn_return_name(turn_dsn_returned(d)),
		    turn_dsn_boundary(d));
	i = fwrite(out.data, 1, out.len, stdout) == out.len &&
	    fflush(stdout) == 0;
	turn_dsn_free(&d);
	buf_release(&in);
	buf_release(&out);
	if (!i) {
		fprintf(stderr, "dsn-make: write error\n");
		return 2;
	}
	return 0;
}
