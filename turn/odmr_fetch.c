/*
 * NAME
 *	odmr-fetch 1 - collect a site's mail from its provider (ATRN or
 *	ETRN) and hand it to the local MTA
 * SYNOPSIS
 *	odmr-fetch --server HOST[:PORT] --user USER [--password-file F]
 *	    [--cert FILE [--key FILE]]
 *	    [--domains D1,D2] [--deliver-to HOST:PORT | --lmtp PATH]
 *	    [--tls starttls|implicit|none] [--ca-file F] [--insecure]
 *	    [--tls-name NAME] [--etrn] [--daemon INTERVAL]
 *	    [--local-connections N] [--timeout DURATION]
 *	    [--hostname NAME] [--syslog] [-v]
 * DESCRIPTION
 *	This file holds main(): the options (SPEC.md, section odmr-fetch),
 *	the password, the TLS context, the SASL library, the signals and,
 *	with --daemon, the schedule of pickups. One pickup is fetch_poll(3);
 *	its exit status is this program's. odmr-fetch(1) is the manual.
 *
 *	--daemon: after each pickup the next one is INTERVAL later, give or
 *	take 10% (so that many sites do not poll in step); after k failed
 *	pickups in a row (exit 2, 3 or 4) the wait is INTERVAL * 2^k, at
 *	most 16 * INTERVAL. Each pickup logs one line: domains, messages,
 *	bytes, seconds and the outcome. SIGTERM or SIGINT stop the daemon
 *	after the pickup in progress (the message in progress is finished);
 *	a second signal stops at once.
 * DIAGNOSTICS
 *	Exit status (SPEC.md): 0 mail was delivered, 1 no mail waiting,
 *	2 authentication failed or was refused, 3 server or protocol
 *	error, 4 local MTA error, 5 usage or configuration error. With
 *	--daemon: 0 after a signal, 5 for a bad configuration.
 *
 *	Log lines go to standard error (or syslog, facility mail, with
 *	--syslog), one key=value line per event.
 * SEE ALSO
 *	odmr-fetch(1), fetch_poll(3), odmrd(8), RFC 2645, RFC 1985
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "dname.h"
#include "log.h"
#include "loop.h"
#include "tls.h"
#include "units.h"
#include "work.h"
#include "xmalloc.h"

#include "fetch.h"
#include "fetch_poll.h"
#include "fetch_sasl.h"

#define ODMR_FETCH_PASS_MAX	1024	/* octets in a password */
#define ODMR_FETCH_DOMAINS_MAX	64
#define ODMR_FETCH_LOCAL_DEFAULT "127.0.0.1"
#define ODMR_FETCH_LOCAL_PORT	25
#define ODMR_FETCH_TIMEOUT	300	/* seconds; RFC 5321 4.5.3.2 */
#define ODMR_FETCH_LANES	2	/* --local-connections */
#define ODMR_FETCH_BACKOFF_MAX	4	/* at most 2^4 = 16 intervals */
#define ODMR_FETCH_JITTER	10	/* percent either way */

struct odmr_fetch {
	/* options */
	char		*server_host;
	unsigned	 server_port;
	char		*user;
	char		*password;
	char		*domains;
	char		*local_host;
	unsigned	 local_port;
	char		*lmtp;
	enum fetch_tls	 tls;
	char		*ca_file;
	char		*cert_file;	/* --cert: SASL EXTERNAL */
	char		*key_file;
	int		 insecure;
	char		*tls_name;
	int		 etrn;
	uint64_t	 interval;	/* --daemon, seconds; 0: once */
	uint64_t	 timeout;	/* seconds */
	unsigned	 lanes;		/* --local-connections */
	char		 hostname[FETCH_NAME_MAX + 1];
	int		 use_syslog;
	int		 verbose;

	/* running */
	struct tls_ctx	*tls_ctx;
	struct work_pool *pool;
	struct fetch_poll *poll;
	struct loop_timer *next;
	unsigned	 failures;
	unsigned	 signals;
	int		 stopping;
	enum fetch_exit	 exit;
};

static const struct option odmr_fetch_options[] = {
	{ "server", required_argument, NULL, 's' },
	{ "user", required_argument, NULL, 'u' },
	{ "password-file", required_argument, NULL, 'p' },
	{ "domains", required_argument, NULL, 'd' },
	{ "deliver-to", required_argument, NULL, 'D' },
	{ "lmtp", required_argument, NULL, 'L' },
	{ "tls", required_argument, NULL, 'T' },
	{ "ca-file", required_argument, NULL, 'C' },
	{ "cert", required_argument, NULL, 'c' },
	{ "key", required_argument, NULL, 'K' },
	{ "insecure", no_argument, NULL, 'k' },
	{ "tls-name", required_argument, NULL, 'N' },
	{ "etrn", no_argument, NULL, 'E' },
	{ "daemon", required_argument, NULL, 'i' },
	{ "timeout", required_argument, NULL, 't' },
	{ "local-connections", required_argument, NULL, 'l' },
	{ "hostname", required_argument, NULL, 'H' },
	{ "syslog", no_argument, NULL, 'S' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* odmr_fetch_usage - the synopsis: on stderr with exit 5, or for --help */
static void __attribute__((noreturn))
odmr_fetch_usage(const char *why, int help)
{
	FILE *fp = help ? stdout : stderr;

	if (why != NULL)
		fprintf(fp, "odmr-fetch: %s\n", why);
	fprintf(fp, "usage: odmr-fetch --server HOST[:PORT] --user USER "
	    "[--password-file F]\n"
	    "\t[--cert FILE [--key FILE]] (--cert may replace --user)\n"
	    "\t[--domains D1,D2] [--deliver-to HOST:PORT | --lmtp PATH]\n"
	    "\t[--tls starttls|implicit|none] [--ca-file F] [--insecure] "
	    "[--tls-name NAME]\n"
	    "\t[--etrn] [--daemon INTERVAL] [--timeout DURATION] "
	    "[--hostname NAME]\n"
	    "\t[--local-connections N] [--syslog] [-v]\n"
	    "The password comes from --password-file or $ODMR_PASSWORD.\n"
	    "See odmr-fetch(1).\n");
	exit(help ? 0 : FETCH_EXIT_USAGE);
}

/* odmr_fetch_die - a configuration error: say it, exit 5 */
static void __attribute__((noreturn, format(printf, 1, 2)))
odmr_fetch_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "odmr-fetch: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(FETCH_EXIT_USAGE);
}

/* odmr_fetch_hostport - "host", "host:port", "[v6]:port" or a bare v6 */
static int
odmr_fetch_hostport(const char *arg, char **host, unsigned *port,
    unsigned dflt)
{
	const char *colon, *h = arg;
	size_t n;
	char *end;
	unsigned long v;

	*port = dflt;
	if (arg[0] == '[') {
		const char *rb = strchr(arg, ']');

		if (rb == NULL || rb == arg + 1)
			return -1;
		h = arg + 1;
		n = (size_t)(rb - h);
		colon = rb[1] == ':' ? rb + 1 : NULL;
		if (rb[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strchr(arg, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			colon = NULL;	/* a bare IPv6 address */
		n = colon != NULL ? (size_t)(colon - arg) : strlen(arg);
	}
	if (n == 0 || n > FETCH_NAME_MAX)
		return -1;
	if (colon != NULL) {
		errno = 0;
		v = strtoul(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || errno != 0 || v == 0 ||
		    v > 65535)
			return -1;
		*port = (unsigned)v;
	}
	*host = xstrndup(h, n);
	return 0;
}

/* odmr_fetch_domains - check "d1,d2" and normalise it (IDNA, lower case) */
static char *
odmr_fetch_domains(const char *arg, int etrn)
{
	char key[DNAME_MAX + 1], one[DNAME_MAX + 2];
	const char *p = arg, *comma, *err;
	struct buf out;
	size_t n, count = 0;
	int at;

	buf_init(&out);
	for (;;) {
		while (*p == ' ')
			p++;
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		/* RFC 1985 section 5.3: "@domain" asks for subdomains too */
		at = etrn && n > 0 && p[0] == '@';
		if (n - (size_t)at == 0 || n - (size_t)at >= sizeof(one))
			odmr_fetch_die("--domains: an empty or too long name "
			    "in \"%s\"", arg);
		memcpy(one, p + at, n - (size_t)at);
		one[n - (size_t)at] = '\0';
		if (dname_normalize(one, key, &err) == -1)
			odmr_fetch_die("--domains: \"%s\": %s", one, err);
		if (++count > ODMR_FETCH_DOMAINS_MAX)
			odmr_fetch_die("--domains: more than %d domains",
			    ODMR_FETCH_DOMAINS_MAX);
		if (out.len > 0)
			buf_putc(&out, ',');
		if (at)
			buf_putc(&out, '@');
		buf_puts(&out, key);
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	{
		char *list = xstrdup(buf_str(&out));

		buf_release(&out);
		return list;
	}
}

/* odmr_fetch_password - the first line of F, or $ODMR_PASSWORD */
static char *
odmr_fetch_password(const char *file)
{
	char buf[ODMR_FETCH_PASS_MAX + 2];
	const char *env;
	struct stat st;
	FILE *fp;
	size_t n;

	if (file == NULL) {
		if ((env = getenv("ODMR_PASSWORD")) == NULL || *env == '\0')
			return NULL;
		if (strlen(env) > ODMR_FETCH_PASS_MAX)
			odmr_fetch_die("ODMR_PASSWORD is longer than %d octets",
			    ODMR_FETCH_PASS_MAX);
		return xstrdup(env);
	}
	if ((fp = fopen(file, "r")) == NULL)
		odmr_fetch_die("cannot read the password file %s: %s", file,
		    strerror(errno));
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 077) != 0)
		fprintf(stderr, "odmr-fetch: warning: %s can be read by "
		    "others (chmod 600 it)\n", file);
	if (fgets(buf, sizeof(buf), fp) == NULL) {
		fclose(fp);
		odmr_fetch_die("the password file %s is empty", file);
	}
	fclose(fp);
	n = strcspn(buf, "\r\n");
	if (n > ODMR_FETCH_PASS_MAX)
		odmr_fetch_die("the password in %s is longer than %d octets",
		    file, ODMR_FETCH_PASS_MAX);
	buf[n] = '\0';
	if (n == 0)
		odmr_fetch_die("the first line of %s is empty", file);
	{
		char *pw = xstrdup(buf);

		explicit_bzero(buf, sizeof(buf));
		return pw;
	}
}

/* odmr_fetch_hostname - our name in EHLO, the 220 and Received: */
static void
odmr_fetch_hostname(struct odmr_fetch *m, const char *given)
{
	char name[FETCH_NAME_MAX + 1];
	size_t i;

	if (given != NULL) {
		if (strlcpy(name, given, sizeof(name)) >= sizeof(name))
			odmr_fetch_die("--hostname: too long");
	} else if (gethostname(name, sizeof(name)) != 0)
		name[0] = '\0';
	name[sizeof(name) - 1] = '\0';
	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
		    name[i] == '-'))
			break;
	if (name[0] == '\0' || name[i] != '\0') {
		if (given != NULL)
			odmr_fetch_die("--hostname: \"%s\" is not a host name",
			    given);
		(void)strlcpy(name, "localhost", sizeof(name));
	}
	(void)strlcpy(m->hostname, name, sizeof(m->hostname));
}

/* odmr_fetch_parse - the options into m; exit 5 on any mistake */
static void
odmr_fetch_parse(struct odmr_fetch *m, int argc, char **argv)
{
	const char *pwfile = NULL, *hostname = NULL, *err, *domains = NULL;
	const char *deliver = NULL;
	unsigned long lanes;
	char *end;
	int ch;

	m->tls = FETCH_TLS_STARTTLS;
	m->timeout = ODMR_FETCH_TIMEOUT;
	m->lanes = ODMR_FETCH_LANES;
	while ((ch = getopt_long(argc, argv, "vh", odmr_fetch_options,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			free(m->server_host);
			if (odmr_fetch_hostport(optarg, &m->server_host,
			    &m->server_port, 0) == -1)
				odmr_fetch_die("--server: \"%s\" is not "
				    "HOST[:PORT]", optarg);
			break;
		case 'u':
			if (*optarg == '\0' || strpbrk(optarg, " \t\r\n") !=
			    NULL)
				odmr_fetch_die("--user: a bad account name");
			m->user = optarg;
			break;
		case 'p':
			pwfile = optarg;
			break;
		case 'd':
			domains = optarg;
			break;
		case 'D':
			deliver = optarg;
			break;
		case 'L':
			m->lmtp = optarg;
			break;
		case 'T':
			if (strcmp(optarg, "starttls") == 0)
				m->tls = FETCH_TLS_STARTTLS;
			else if (strcmp(optarg, "implicit") == 0)
				m->tls = FETCH_TLS_IMPLICIT;
			else if (strcmp(optarg, "none") == 0)
				m->tls = FETCH_TLS_NONE;
			else
				odmr_fetch_die("--tls: starttls, implicit or "
				    "none, not \"%s\"", optarg);
			break;
		case 'C':
			m->ca_file = optarg;
			break;
		case 'c':
			m->cert_file = optarg;
			break;
		case 'K':
			m->key_file = optarg;
			break;
		case 'k':
			m->insecure = 1;
			break;
		case 'N':
			m->tls_name = optarg;
			break;
		case 'E':
			m->etrn = 1;
			break;
		case 'i':
			if (units_parse_duration(optarg, &m->interval,
			    &err) == -1 || m->interval == 0)
				odmr_fetch_die("--daemon: \"%s\": %s", optarg,
				    m->interval == 0 ? "must be positive" :
				    err);
			break;
		case 't':
			if (units_parse_duration(optarg, &m->timeout,
			    &err) == -1 || m->timeout == 0 ||
			    m->timeout > 24 * 3600)
				odmr_fetch_die("--timeout: \"%s\": %s", optarg,
				    "a duration from 1s to 1d");
			break;
		case 'l':
			if (!isdigit((unsigned char)optarg[0]) ||
			    (lanes = strtoul(optarg, &end, 10)) < 1 ||
			    lanes > FETCH_LANES_MAX || *end != '\0')
				odmr_fetch_die("--local-connections: \"%s\": a "
				    "number from 1 to %d", optarg,
				    FETCH_LANES_MAX);
			m->lanes = (unsigned)lanes;
			break;
		case 'H':
			hostname = optarg;
			break;
		case 'S':
			m->use_syslog = 1;
			break;
		case 'v':
			m->verbose = 1;
			break;
		case 'h':
			odmr_fetch_usage(NULL, 1);
		default:
			odmr_fetch_usage(NULL, 0);
		}
	}
	if (optind != argc)
		odmr_fetch_usage("unexpected arguments", 0);
	if (m->server_host == NULL)
		odmr_fetch_usage("--server is required", 0);
	if (m->server_port == 0)
		m->server_port = FETCH_PORT_DEFAULT;
	if (m->etrn && domains == NULL)
		odmr_fetch_usage("--etrn needs --domains", 0);
	if (!m->etrn && m->user == NULL && m->cert_file == NULL)
		odmr_fetch_usage("--user or --cert is required (ATRN needs "
		    "AUTH)", 0);
	if (m->key_file != NULL && m->cert_file == NULL)
		odmr_fetch_usage("--key needs --cert", 0);
	if (m->cert_file != NULL && m->tls == FETCH_TLS_NONE)
		odmr_fetch_usage("--cert needs TLS: not with --tls none", 0);
	if (m->etrn && (deliver != NULL || m->lmtp != NULL))
		odmr_fetch_usage("--etrn makes the provider deliver to the "
		    "domain's route: --deliver-to and --lmtp do not apply", 0);
	if (deliver != NULL && m->lmtp != NULL)
		odmr_fetch_usage("--deliver-to and --lmtp exclude each other",
		    0);
	if (m->lmtp != NULL && m->lmtp[0] != '/')
		odmr_fetch_die("--lmtp: \"%s\" is not an absolute path",
		    m->lmtp);
	if (deliver != NULL) {
		if (odmr_fetch_hostport(deliver, &m->local_host,
		    &m->local_port, 0) == -1 || m->local_port == 0)
			odmr_fetch_die("--deliver-to: \"%s\" is not HOST:PORT",
			    deliver);
	} else if (m->lmtp == NULL) {
		m->local_host = xstrdup(ODMR_FETCH_LOCAL_DEFAULT);
		m->local_port = ODMR_FETCH_LOCAL_PORT;
	}
	if (domains != NULL)
		m->domains = odmr_fetch_domains(domains, m->etrn);
	if (m->user != NULL) {
		/* with --cert the password is only the fallback */
		m->password = odmr_fetch_password(pwfile);
		if (m->password == NULL && m->cert_file == NULL)
			odmr_fetch_die("no password: give --password-file or "
			    "set ODMR_PASSWORD");
	}
	odmr_fetch_hostname(m, hostname);
}

/* odmr_fetch_poll_done - one pickup is over: log it, then again or stop */
static void odmr_fetch_schedule(struct odmr_fetch *);

/* odmr_fetch_poll_done - one pickup is over: log it, then again or stop */
static void
odmr_fetch_poll_done(void *arg, const struct fetch_poll_result *r)
{
	struct odmr_fetch *m = arg;
	int bad = r->exit != FETCH_EXIT_DELIVERED &&
	    r->exit != FETCH_EXIT_NO_MAIL;
	void (*logf)(const char *, ...) __attribute__((format(printf, 1, 2))) =
	    bad ? log_warnx : log_info;

	if (m->etrn)
		logf("event=poll server=%s:%u mode=etrn domains=%s exit=%d "
		    "result=%s started=%u pending=%lu seconds=%.3f%s%s%s",
		    m->server_host, m->server_port, m->domains, (int)r->exit,
		    fetch_poll_exit_names[r->exit], r->etrn_started,
		    r->etrn_pending, r->seconds,
		    r->error[0] != '\0' ? " error=\"" : "", r->error,
		    r->error[0] != '\0' ? "\"" : "");
	else
		logf("event=poll server=%s:%u mode=atrn domains=%s exit=%d "
		    "result=%s messages=%u bytes=%llu refused_messages=%u "
		    "refused_rcpts=%u deferred_rcpts=%u local_connections=%u "
		    "seconds=%.3f%s%s%s",
		    m->server_host, m->server_port,
		    m->domains != NULL ? m->domains : "(all)", (int)r->exit,
		    fetch_poll_exit_names[r->exit], r->messages, r->bytes,
		    r->messages_refused, r->rcpt_refused, r->rcpt_deferred,
		    r->local_connections, r->seconds, r->error[0] != '\0' ? " error=\"" : "",
		    r->error, r->error[0] != '\0' ? "\"" : "");
	m->exit = r->exit;
	fetch_poll_free(&m->poll);
	if (bad)
		m->failures++;
	else
		m->failures = 0;
	if (m->interval == 0 || m->stopping) {
		if (m->interval != 0)
			m->exit = FETCH_EXIT_DELIVERED;	/* a daemon stopped */
		loop_break();
		return;
	}
	odmr_fetch_schedule(m);
}

/* odmr_fetch_poll - start one pickup */
static void
odmr_fetch_poll(void *arg)
{
	struct odmr_fetch *m = arg;
	struct fetch_poll_params pp;

	memset(&pp, 0, sizeof(pp));
	pp.hostname = m->hostname;
	pp.provider.host = m->server_host;
	pp.provider.port = m->server_port;
	pp.provider.tls = m->tls;
	pp.provider.tls_ctx = m->tls_ctx;
	pp.provider.tls_name = m->tls_name;
	pp.provider.user = m->user;
	pp.provider.password = m->password;
	pp.provider.client_cert = m->cert_file != NULL;
	pp.provider.domains = m->domains;
	pp.provider.etrn = m->etrn;
	pp.provider.timeout_ms = (unsigned)m->timeout * 1000;
	pp.provider.pool = m->pool;
	pp.local.host = m->local_host;
	pp.local.port = m->local_port;
	pp.local.path = m->lmtp;
	pp.local.timeout_ms = (unsigned)m->timeout * 1000;
	pp.local_connections = m->lanes;
	m->poll = fetch_poll_start(&pp, odmr_fetch_poll_done, m);
}

/* odmr_fetch_schedule - the next pickup: interval, jitter, backoff */
static void
odmr_fetch_schedule(struct odmr_fetch *m)
{
	unsigned k = m->failures < ODMR_FETCH_BACKOFF_MAX ? m->failures :
	    ODMR_FETCH_BACKOFF_MAX;
	double secs = (double)m->interval * (double)(1U << k);
	double jitter = 1.0 + ((double)(random() % (2 * ODMR_FETCH_JITTER *
	    100 + 1)) / 10000.0) - ODMR_FETCH_JITTER / 100.0;
	double ms = secs * jitter * 1000.0;

	if (ms > 4e9)
		ms = 4e9;	/* the timer takes an unsigned ms */
	log_debug("event=poll-next seconds=%.1f failures=%u", ms / 1000.0,
	    m->failures);
	loop_timer_add(m->next, (unsigned)ms);
}

/* odmr_fetch_signal - SIGTERM or SIGINT: stop gently, then at once */
static void
odmr_fetch_signal(int signo, void *arg)
{
	struct odmr_fetch *m = arg;

	m->signals++;
	m->stopping = 1;
	log_info("event=signal signal=%d count=%u", signo, m->signals);
	if (m->poll == NULL) {
		/* between pickups */
		loop_timer_del(m->next);
		m->exit = m->interval != 0 ? FETCH_EXIT_DELIVERED :
		    FETCH_EXIT_SERVER;
		loop_break();
		return;
	}
	if (m->signals == 1)
		fetch_poll_stop(m->poll);
	else
		fetch_poll_abort(m->poll);
}

/* main - odmr-fetch */
int
main(int argc, char **argv)
{
	struct odmr_fetch m;
	char *err = NULL;

	memset(&m, 0, sizeof(m));
	odmr_fetch_parse(&m, argc, argv);
	log_init("odmr-fetch", !m.use_syslog, m.verbose ? LOG_LEVEL_DEBUG :
	    LOG_LEVEL_INFO);
	if (m.tls != FETCH_TLS_NONE) {
		m.tls_ctx = tls_client_new(m.insecure ? TLS_MODE_ENCRYPT :
		    TLS_MODE_VERIFY, m.ca_file, &err);
		if (m.tls_ctx == NULL)
			odmr_fetch_die("TLS: %s", err);
		if (m.cert_file != NULL && tls_client_cert(m.tls_ctx,
		    m.cert_file, m.key_file, &err) == -1)
			odmr_fetch_die("--cert: %s", err);
	}
	if ((m.user != NULL || m.cert_file != NULL) &&
	    fetch_sasl_init(&err) == -1)
		odmr_fetch_die("%s", err);
	if (loop_init(&err) == -1)
		odmr_fetch_die("%s", err);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	m.pool = work_pool_new("sasl", 1);
	m.next = loop_timer_new(odmr_fetch_poll, &m);
	if (loop_signal(SIGTERM, odmr_fetch_signal, &m) == -1 ||
	    loop_signal(SIGINT, odmr_fetch_signal, &m) == -1)
		odmr_fetch_die("cannot catch signals");
	m.exit = FETCH_EXIT_SERVER;
	odmr_fetch_poll(&m);
	if (loop_run() == -1)
		log_warnx("event=loop-error");
	fetch_poll_free(&m.poll);
	loop_timer_free(&m.next);
	work_pool_free(&m.pool);
	loop_free();
	fetch_sasl_done();
	tls_ctx_free(&m.tls_ctx);
	if (m.password != NULL) {
		explicit_bzero(m.password, strlen(m.password));
		free(m.password);
	}
	free(m.server_host);
	free(m.local_host);
	free(m.domains);
	return (int)m.exit;
}
