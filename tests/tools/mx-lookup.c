/*
 * NAME
 *	mx-lookup 1 - resolve a domain's MX hosts, or a route, to addresses
 * SYNOPSIS
 *	mx-lookup [-s SERVERS] [-t MS] [-4|-6] [-I] [-m MYHOSTNAME]
 *	    [-p PORT] [-r RUNS [-j THREADS]] DOMAIN
 *	mx-lookup [-s SERVERS] [-t MS] [-4|-6] [-I] [-p PORT]
 *	    [-r RUNS [-j THREADS]] -H HOSTLIST
 * DESCRIPTION
 *	A test driver for turn_mx 3: turn_mx_resolve() on DOMAIN, or
 *	turn_mx_hosts() on HOSTLIST ("h1[:port],[v6]:port,1.2.3.4").
 *	It prints
 *		status OK|TEMPFAIL|PERMFAIL
 *		code CODE	(the enhanced status code, "-" when OK)
 *		error TEXT	("-" when OK)
 *	then one line per address, in delivery order:
 *		PREF HOST ADDRESS PORT
 *
 *	-s replaces /etc/resolv.conf's servers ("127.0.0.1:5353,[::1]:53").
 *	-t bounds the whole lookup (milliseconds). -4 and -6 ask for one
 *	address family only; -I lists each host's IPv4 addresses before
 *	its IPv6 ones. -m names this node (RFC 5321 5.1 loop detection).
 *	-p is the SMTP port (default 25).
 *
 *	-r repeats the lookup RUNS times (spread over THREADS threads with
 *	-j, each with its own call) and prints, instead of the above, one
 *	line per run: "run STATUS ADDR,ADDR,..." (the addresses in order).
 * DIAGNOSTICS
 *	Exit status 0 when the (every) lookup is OK, 75 for TEMPFAIL, 69
 *	for PERMFAIL, 64 on a usage error.
 */
#include "config.h"

#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "xmalloc.h"

#include "turn_mx.h"

#define ML_EXIT_OK		0
#define ML_EXIT_USAGE		64
#define ML_EXIT_PERMFAIL	69
#define ML_EXIT_TEMPFAIL	75
#define ML_THREADS_MAX		64
#define ML_LINE_MAX	(TURN_MX_ADDR_MAX * (INET6_ADDRSTRLEN + 1) + 64)

struct ml_job {
	const struct turn_mx_opts *opts;
	const char	*target;	/* domain or host list */
	int		 route;		/* target is a host list */
	unsigned	 port;
	unsigned	 runs;
	int		 exit_status;
};

static pthread_mutex_t ml_out_lock = PTHREAD_MUTEX_INITIALIZER;

/* ml_usage - print the synopsis and exit */
static void
ml_usage(void)
{
	fprintf(stderr, "usage: mx-lookup [-s SERVERS] [-t MS] [-4|-6] [-I]"
	    " [-m MYHOSTNAME] [-p PORT] [-r RUNS [-j THREADS]]"
	    " DOMAIN | -H HOSTLIST\n");
	exit(ML_EXIT_USAGE);
}

/* ml_number - a decimal option argument within [min, max], or usage */
static unsigned
ml_number(const char *s, unsigned min, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min || v > max)
		ml_usage();
	return (unsigned)v;
}

/* ml_addr - the printable address and port of a result entry */
static void
ml_addr(const struct turn_mx_addr *a, char *buf, size_t size,
    unsigned *port)
{
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 =
		    (const struct sockaddr_in6 *)&a->ss;

		if (inet_ntop(AF_INET6, &s6->sin6_addr, buf,
		    (socklen_t)size) == NULL)
			(void)strlcpy(buf, "?", size);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 =
		    (const struct sockaddr_in *)&a->ss;

		if (inet_ntop(AF_INET, &s4->sin_addr, buf,
		    (socklen_t)size) == NULL)
			(void)strlcpy(buf, "?", size);
		*port = ntohs(s4->sin_port);
	}
}

/* ml_exit_status - the exit status of one result */
static int
ml_exit_status(const struct turn_mx_result *res)
{
	switch (res->status) {
	case TURN_MX_OK:
		return ML_EXIT_OK;
	case TURN_MX_PERMFAIL:
		return ML_EXIT_PERMFAIL;
	case TURN_MX_TEMPFAIL:
	default:
		return ML_EXIT_TEMPFAIL;
	}
}

/* ml_once - one lookup into res */
static void
ml_once(const struct ml_job *j, struct turn_mx_result *res)
{
	if (j->route)
		(void)turn_mx_hosts(j->opts, j->target, j->port, res);
	else
		(void)turn_mx_resolve(j->opts, j->target, j->port, res);
}

/* ml_print - the full report of one result */
static void
ml_print(const struct turn_mx_result *res)
{
	char buf[INET6_ADDRSTRLEN];
	unsigned port;

	printf("status %s\n", turn_mx_status_name(res->status));
	printf("code %s\n", res->status_code[0] ? res->status_code : "-");
	printf("error %s\n", res->error[0] ? res->error : "-");
	for (size_t i = 0; i < res->naddr; i++) {
		ml_addr(&res->addr[i], buf, sizeof(buf), &port);
		printf("%u %s %s %u\n", res->addr[i].pref, res->addr[i].host,
		    buf, port);
	}
}

/* ml_runs - the -r loop of one thread: one summary line per run */
static void *
ml_runs(void *arg)
{
	struct ml_job *j = arg;
	struct turn_mx_result *res = xmalloc(sizeof(*res));

	for (unsigned r = 0; r < j->runs; r++) {
		char line[ML_LINE_MAX], buf[INET6_ADDRSTRLEN];
		unsigned port;
		int st;

		ml_once(j, res);
		if ((st = ml_exit_status(res)) != ML_EXIT_OK)
			j->exit_status = st;
		line[0] = '\0';
		for (size_t i = 0; i < res->naddr; i++) {
			ml_addr(&res->addr[i], buf, sizeof(buf), &port);
			if ((i > 0 && strlcat(line, ",", sizeof(line)) >=
			    sizeof(line)) ||
			    strlcat(line, buf, sizeof(line)) >= sizeof(line))
				break;	/* sized for the cap: never */
		}
		pthread_mutex_lock(&ml_out_lock);
		printf("run %s %s\n", turn_mx_status_name(res->status),
		    line[0] ? line : "-");
		pthread_mutex_unlock(&ml_out_lock);
	}
	free(res);
	return NULL;
}

/* main - parse the options, look up, print */
int
main(int argc, char **argv)
{
	struct turn_mx_opts opts;
	struct ml_job job[ML_THREADS_MAX];
	pthread_t tid[ML_THREADS_MAX];
	const char *hostlist = NULL;
	unsigned port = TURN_MX_PORT_SMTP, runs = 0, threads = 1;
	int ch, status = ML_EXIT_OK;

	memset(&opts, 0, sizeof(opts));
	while ((ch = getopt(argc, argv, "s:t:46Im:p:r:j:H:")) != -1) {
		switch (ch) {
		case 's':
			opts.servers = optarg;
			break;
		case 't':
			opts.timeout_ms = ml_number(optarg, 1, 3600000);
			break;
		case '4':
			opts.families = TURN_MX_INET;
			break;
		case '6':
			opts.families = TURN_MX_INET6;
			break;
		case 'I':
			opts.inet_first = 1;
			break;
		case 'm':
			opts.myhostname = optarg;
			break;
		case 'p':
			port = ml_number(optarg, 1, 65535);
			break;
		case 'r':
			runs = ml_number(optarg, 1, 100000);
			break;
		case 'j':
			threads = ml_number(optarg, 1, ML_THREADS_MAX);
			break;
		case 'H':
			hostlist = optarg;
			break;
		default:
			ml_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if ((hostlist == NULL) == (argc != 1) || argc > 1)
		ml_usage();

	if (runs == 0) {
		struct turn_mx_result *res = xmalloc(sizeof(*res));

		job[0].opts = &opts;
		job[0].target = hostlist != NULL ? hostlist : argv[0];
		job[0].route = hostlist != NULL;
		job[0].port = port;
		ml_once(&job[0], res);
		ml_print(res);
		status = ml_exit_status(res);
		free(res);
		return status;
	}
	if (threads > runs)
		threads = runs;
	for (unsigned t = 0; t < threads; t++) {
		job[t].opts = &opts;
		job[t].target = hostlist != NULL ? hostlist : argv[0];
		job[t].route = hostlist != NULL;
		job[t].port = port;
		job[t].runs = runs / threads + (t < runs % threads);
		job[t].exit_status = ML_EXIT_OK;
		if (pthread_create(&tid[t], NULL, ml_runs, &job[t]) != 0) {
			fprintf(stderr, "mx-lookup: cannot create a thread\n");
			return ML_EXIT_TEMPFAIL;
		}
	}
	for (unsigned t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		if (job[t].exit_status != ML_EXIT_OK)
			status = job[t].exit_status;
	}
	return status;
}
