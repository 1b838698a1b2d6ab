/*
 * NAME
 *	turn_mx 3 - the SMTP servers of a domain (MX, RFC 5321 section
 *	5.1, RFC 7505) or of an explicit route, resolved with c-ares
 * SYNOPSIS
 *	#include "turn_mx.h"
 * DESCRIPTION
 *	See turn_mx.h for the interface and its semantics.
 *
 *	Each call makes its own c-ares channel (so calls on different
 *	worker threads share nothing but ares_library_init(), done once),
 *	drives it with ares_getsock(), poll() and ares_timeout() until no
 *	query is pending or the call's deadline has passed, and destroys
 *	it. The MX query comes first; then the AAAA and A lookups of every
 *	host go out together, one ares_getaddrinfo() per host and family,
 *	so that a slow host costs no more than the remaining time, and
 *	each family's outcome (found, NXDOMAIN, NODATA, failure) is known
 *	on its own. Names are queried with a trailing dot, so that neither
 *	the search list nor HOSTALIASES applies, and with lookups "b", so
 *	that /etc/hosts does not either: a mail route comes from the DNS.
 *
 *	c-ares retries within the deadline: the first try of a query gets
 *	a fifth of the whole time (clamped), and each later try twice the
 *	one before, as c-ares does.
 * DIAGNOSTICS
 *	Nothing is logged: every outcome is in the caller's result.
 * SEE ALSO
 *	turn_mx(3h), ares_query(3), ares_getaddrinfo(3),
 *	ares_parse_mx_reply(3), ares_set_servers_ports_csv(3),
 *	RFC 5321 section 5.1, RFC 7505, RFC 3463
 */
#include "config.h"

#include <sys/types.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <ares.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compat.h"
#include "dname.h"
#include "loop.h"
#include "xmalloc.h"

#include "turn_mx.h"

#define TURN_MX_TRIES		3	/* c-ares tries of each query */
#define TURN_MX_TRY_SHARE	5	/* first try: timeout_ms / this ... */
#define TURN_MX_TRY_MIN_MS	100	/* ... but at least this */
#define TURN_MX_TRY_MAX_MS	2000	/* ... and at most this */
#define TURN_MX_NFAMILY		2	/* lookups a host: AAAA, A */
#define TURN_MX_PORT_MAX	65535
/* the longest route entry: "[name]:port" */
#define TURN_MX_ENTRY_LEN	(TURN_MX_HOST_LEN + 16)

/* What one DNS answer means for a delivery. */
enum turn_mx_dns {
	TURN_MX_DNS_FOUND,
	TURN_MX_DNS_NXDOMAIN,	/* the name does not exist */
	TURN_MX_DNS_NODATA,	/* the name exists, without that type */
	TURN_MX_DNS_TEMP,	/* SERVFAIL, REFUSED, timeout, ... */
};

/* Where the hosts came from: how a failure is reported. */
enum turn_mx_mode {
	TURN_MX_MODE_MX,	/* MX records of the domain */
	TURN_MX_MODE_IMPLICIT,	/* no MX: the domain is its own MX */
	TURN_MX_MODE_ROUTE,	/* an explicit route */
};

static const char *const turn_mx_status_names[] = {
	[TURN_MX_OK] = "OK",
	[TURN_MX_TEMPFAIL] = "TEMPFAIL",
	[TURN_MX_PERMFAIL] = "PERMFAIL",
};

struct turn_mx_ctx;

/* One ares_getaddrinfo() of one host, for one family. */
struct turn_mx_lookup {
	struct turn_mx_ctx *ctx;
	int		 family;	/* AF_INET, AF_INET6; 0: not asked */
	int		 done;		/* the callback has run */
	int		 status;	/* ARES_*, once done */
	struct ares_addrinfo *ai;	/* on ARES_SUCCESS; ours to free */
};

struct turn_mx_host {
	char		 name[TURN_MX_HOST_LEN];
	unsigned	 pref;
	unsigned	 port;
	int		 literal;	/* a route's address: no lookup */
	int		 unwanted;	/* literal of a family not asked */
	struct sockaddr_storage ss;	/* the literal */
	socklen_t	 sslen;
	struct turn_mx_lookup look[TURN_MX_NFAMILY];
};

struct turn_mx_ctx {
	ares_channel	 ch;
	int		 have_ch;
	uint64_t	 deadline;	/* CLOCK_MONOTONIC, ms */
	unsigned	 timeout_ms;
	int		 families;
	int		 inet_first;
	int		 pending;	/* callbacks still to come */
	uint64_t	 rng;		/* splitmix64 state */

	int		 mx_done;
	int		 mx_status;	/* query, then parse status */
	struct ares_mx_reply *mx;	/* ours to free */

	size_t		 nhost;
	struct turn_mx_host host[TURN_MX_HOST_MAX];
};

/* An MX record while it is sorted. */
struct turn_mx_rec {
	unsigned	 pref;
	const char	*host;
};

static pthread_once_t turn_mx_once = PTHREAD_ONCE_INIT;
static int turn_mx_lib_status = ARES_ENOTINITIALIZED;

/* turn_mx_status_name - "OK", "TEMPFAIL" or "PERMFAIL" */
const char *
turn_mx_status_name(enum turn_mx_status st)
{
	if ((unsigned)st >= sizeof(turn_mx_status_names) /
	    sizeof(turn_mx_status_names[0]))
		return "UNKNOWN";
	return turn_mx_status_names[st];
}

/* turn_mx_library_init - ares_library_init(), once per process */
static void
turn_mx_library_init(void)
{
	turn_mx_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* turn_mx_rand - the next number of the call's shuffling generator */
static uint64_t
turn_mx_rand(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* turn_mx_result_init - an empty result, status TEMPFAIL until decided */
static void
turn_mx_result_init(struct turn_mx_result *res)
{
	res->status = TURN_MX_TEMPFAIL;
	res->error[0] = '\0';
	res->status_code[0] = '\0';
	res->naddr = 0;
}

/* turn_mx_fail - a failed result: status, enhanced code, reason; -1 */
static int __attribute__((format(printf, 4, 5)))
turn_mx_fail(struct turn_mx_result *res, enum turn_mx_status st,
    const char *code, const char *fmt, ...)
{
	va_list ap;

	res->status = st;
	res->naddr = 0;
	(void)strlcpy(res->status_code, code, sizeof(res->status_code));
	va_start(ap, fmt);
	/* truncation only shortens the human-readable reason */
	(void)vsnprintf(res->error, sizeof(res->error), fmt, ap);
	va_end(ap);
	for (char *p = res->error; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return -1;
}

/* turn_mx_classify - what a c-ares status means for a delivery */
static enum turn_mx_dns
turn_mx_classify(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return TURN_MX_DNS_FOUND;
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:
		return TURN_MX_DNS_NXDOMAIN;
	case ARES_ENODATA:
		return TURN_MX_DNS_NODATA;
	default:
		return TURN_MX_DNS_TEMP;
	}
}

/* turn_mx_name_eq - host names equal, ignoring case and a final dot */
static int
turn_mx_name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* turn_mx_is_root - an MX target of "." (RFC 7505 null MX) */
static int
turn_mx_is_root(const char *host)
{
	return host == NULL || host[0] == '\0' || strcmp(host, ".") == 0;
}

/* turn_mx_is_literal - a name that is an IPv4 or IPv6 address */
static int
turn_mx_is_literal(const char *name)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, name, &a4) == 1 ||
	    inet_pton(AF_INET6, name, &a6) == 1;
}

/* turn_mx_ctx_new - a context for one call: clock, options, generator */
static struct turn_mx_ctx *
turn_mx_ctx_new(const struct turn_mx_opts *opts)
{
	struct turn_mx_ctx *c = xcalloc(1, sizeof(*c));

	c->timeout_ms = opts != NULL && opts->timeout_ms > 0 ?
	    opts->timeout_ms : TURN_MX_TIMEOUT_DEFAULT;
	c->deadline = loop_now_ms() + c->timeout_ms;
	c->families = opts != NULL ?
	    opts->families & (TURN_MX_INET | TURN_MX_INET6) : 0;
	if (c->families == 0)
		c->families = TURN_MX_INET | TURN_MX_INET6;
	c->inet_first = opts != NULL && opts->inet_first;
	if (getrandom(&c->rng, sizeof(c->rng), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(c->rng))
		c->rng = loop_now_ms() ^ (uint64_t)(uintptr_t)c;
	return c;
}

/* turn_mx_channel - the call's c-ares channel, on the chosen servers */
static int
turn_mx_channel(struct turn_mx_ctx *c, const struct turn_mx_opts *opts,
    struct turn_mx_result *res)
{
	struct ares_options ao;
	char lookups[] = "b";	/* DNS only, never /etc/hosts */
	unsigned try_ms;
	int rc;

	(void)pthread_once(&turn_mx_once, turn_mx_library_init);
	if (turn_mx_lib_status != ARES_SUCCESS)
		return turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.3.0",
		    "c-ares initialisation failed: %s",
		    ares_strerror(turn_mx_lib_status));

	try_ms = c->timeout_ms / TURN_MX_TRY_SHARE;
	if (try_ms < TURN_MX_TRY_MIN_MS)
		try_ms = TURN_MX_TRY_MIN_MS;
	if (try_ms > TURN_MX_TRY_MAX_MS)
		try_ms = TURN_MX_TRY_MAX_MS;
	memset(&ao, 0, sizeof(ao));
	ao.timeout = (int)try_ms;
	ao.tries = TURN_MX_TRIES;
	ao.lookups = lookups;
	rc = ares_init_options(&c->ch, &ao,
	    ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS);
	if (rc != ARES_SUCCESS)
		return turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.3.0",
		    "c-ares channel: %s", ares_strerror(rc));
	c->have_ch = 1;
	if (opts != NULL && opts->servers != NULL && opts->servers[0] != '\0' &&
	    (rc = ares_set_servers_ports_csv(c->ch, opts->servers)) !=
	    ARES_SUCCESS)
		return turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.3.5",
		    "bad DNS server list: %s", ares_strerror(rc));
	return 0;
}

/* turn_mx_ctx_free - destroy the channel, free every answer */
static void
turn_mx_ctx_free(struct turn_mx_ctx **cp)
{
	struct turn_mx_ctx *c = *cp;

	if (c == NULL)
		return;
	/* callbacks of queries still pending run now, with
	   ARES_EDESTRUCTION, while c is still alive */
	if (c->have_ch)
		ares_destroy(c->ch);
	if (c->mx != NULL)
		ares_free_data(c->mx);
	for (size_t i = 0; i < c->nhost; i++)
		for (size_t j = 0; j < TURN_MX_NFAMILY; j++)
			if (c->host[i].look[j].ai != NULL)
				ares_freeaddrinfo(c->host[i].look[j].ai);
	free(c);
	*cp = NULL;
}

/* turn_mx_run - drive the channel until nothing is pending or time is up */
static int
turn_mx_run(struct turn_mx_ctx *c)
{
	while (c->pending > 0) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval maxtv, tv, *tvp;
		uint64_t now = loop_now_ms(), left;
		nfds_t n = 0;
		unsigned bits;
		int ms, r;

		if (now >= c->deadline)
			return -1;
		left = c->deadline - now;
		bits = (unsigned)ares_getsock(c->ch, socks,
		    ARES_GETSOCK_MAXNUM);
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;

			/* the bit tests of ares.h shift a signed 1 by up
			   to 31: the same tests, unsigned */
			if (bits & (1u << i))
				ev |= POLLIN;
			if (bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (ev == 0)
				continue;
			pfd[n].fd = socks[i];
			pfd[n].events = ev;
			pfd[n].revents = 0;
			n++;
		}
		maxtv.tv_sec = (time_t)(left / 1000);
		maxtv.tv_usec = (suseconds_t)(left % 1000) * 1000;
		tvp = ares_timeout(c->ch, &maxtv, &tv);
		ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
		r = poll(pfd, n, ms);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			/* nothing to read: let c-ares retry or expire */
			ares_process_fd(c->ch, ARES_SOCKET_BAD,
			    ARES_SOCKET_BAD);
			continue;
		}
		for (nfds_t i = 0; i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			ares_process_fd(c->ch,
			    pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ?
			    pfd[i].fd : ARES_SOCKET_BAD,
			    pfd[i].revents & (POLLOUT | POLLERR) ?
			    pfd[i].fd : ARES_SOCKET_BAD);
		}
	}
	return 0;
}

/* turn_mx_on_mx - the MX answer: keep its parsed records */
static void
turn_mx_on_mx(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct turn_mx_ctx *c = arg;

	(void)timeouts;
	c->pending--;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED)
		return;
	c->mx_done = 1;
	if (status == ARES_SUCCESS) {
		/* ARES_ENODATA when the answer holds no MX (a CNAME only) */
		status = ares_parse_mx_reply(abuf, alen, &c->mx);
		if (status == ARES_SUCCESS && c->mx == NULL)
			status = ARES_ENODATA;
	}
	c->mx_status = status;
}

/* turn_mx_on_addr - one host's addresses of one family */
static void
turn_mx_on_addr(void *arg, int status, int timeouts,
    struct ares_addrinfo *ai)
{
	struct turn_mx_lookup *l = arg;

	(void)timeouts;
	l->ctx->pending--;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		if (ai != NULL)
			ares_freeaddrinfo(ai);
		return;
	}
	l->done = 1;
	l->status = status;
	if (status == ARES_SUCCESS)
		l->ai = ai;
	else if (ai != NULL)
		ares_freeaddrinfo(ai);
}

/* turn_mx_host_add - a host to look up; 0, or -1 when the list is full */
static int
turn_mx_host_add(struct turn_mx_ctx *c, const char *name, unsigned pref,
    unsigned port)
{
	struct turn_mx_host *h;

	if (c->nhost >= TURN_MX_HOST_MAX)
		return -1;
	h = &c->host[c->nhost];
	memset(h, 0, sizeof(*h));
	if (strlcpy(h->name, name, sizeof(h->name)) >= sizeof(h->name))
		return 0;	/* longer than any DNS name: not a host */
	h->pref = pref;
	h->port = port;
	c->nhost++;
	return 0;
}

/* turn_mx_lookup_all - send the AAAA and A lookups of every named host */
static void
turn_mx_lookup_all(struct turn_mx_ctx *c)
{
	int order[TURN_MX_NFAMILY];

	order[0] = c->inet_first ? AF_INET : AF_INET6;
	order[1] = c->inet_first ? AF_INET6 : AF_INET;
	for (size_t i = 0; i < c->nhost; i++) {
		struct turn_mx_host *h = &c->host[i];
		char fqdn[TURN_MX_HOST_LEN + 1];
		size_t len = strlen(h->name);

		if (h->literal)
			continue;
		/* a final dot: no search list, no HOSTALIASES */
		if (snprintf(fqdn, sizeof(fqdn), "%s%s", h->name,
		    len > 0 && h->name[len - 1] == '.' ? "" : ".") >=
		    (int)sizeof(fqdn))
			continue;
		for (size_t j = 0; j < TURN_MX_NFAMILY; j++) {
			struct turn_mx_lookup *l = &h->look[j];
			struct ares_addrinfo_hints hints;
			int want = order[j] == AF_INET ?
			    TURN_MX_INET : TURN_MX_INET6;

			if (!(c->families & want))
				continue;
			l->ctx = c;
			l->family = order[j];
			memset(&hints, 0, sizeof(hints));
			hints.ai_family = order[j];
			hints.ai_socktype = SOCK_STREAM;
			/* keep the server's order, no RFC 6724 probing */
			hints.ai_flags = ARES_AI_NOSORT;
			c->pending++;
			ares_getaddrinfo(c->ch, fqdn, NULL, &hints,
			    turn_mx_on_addr, l);
		}
	}
}

/* turn_mx_same - the same address (port aside) */
static int
turn_mx_same(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		    &((const struct sockaddr_in *)b)->sin_addr,
		    sizeof(struct in_addr)) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr,
	    sizeof(struct in6_addr)) == 0 &&
	    ((const struct sockaddr_in6 *)a)->sin6_scope_id ==
	    ((const struct sockaddr_in6 *)b)->sin6_scope_id;
}

/* turn_mx_add - append one address of a host, unless full or seen */
static void
turn_mx_add(struct turn_mx_result *res, const struct turn_mx_host *h,
    const struct sockaddr *sa, size_t salen)
{
	struct turn_mx_addr *a;
	struct sockaddr_storage ss;
	socklen_t len;

	if (res->naddr >= TURN_MX_ADDR_MAX)
		return;
	memset(&ss, 0, sizeof(ss));
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		len = sizeof(struct sockaddr_in);
		memcpy(&ss, sa, len);
		((struct sockaddr_in *)&ss)->sin_port =
		    htons((uint16_t)h->port);
	} else if (sa->sa_family == AF_INET6 &&
	    salen >= sizeof(struct sockaddr_in6)) {
		len = sizeof(struct sockaddr_in6);
		memcpy(&ss, sa, len);
		((struct sockaddr_in6 *)&ss)->sin6_port =
		    htons((uint16_t)h->port);
	} else
		return;
	for (size_t i = 0; i < res->naddr; i++)
		if (turn_mx_same(&res->addr[i].ss, &ss))
			return;
	a = &res->addr[res->naddr++];
	a->ss = ss;
	a->len = len;
	a->pref = h->pref;
	(void)strlcpy(a->host, h->name, sizeof(a->host));	/* same size */
}

/* turn_mx_lookup_why - a failed lookup, for the reason text */
static void
turn_mx_lookup_why(const struct turn_mx_ctx *c,
    const struct turn_mx_host *h,
    const struct turn_mx_lookup *l, char *buf, size_t size)
{
	const char *rr = l->family == AF_INET ? "A" : "AAAA";

	if (!l->done)
		(void)snprintf(buf, size, "%s %s: no answer within %u ms",
		    h->name, rr, c->timeout_ms);
	else
		(void)snprintf(buf, size, "%s %s: %s", h->name, rr,
		    ares_strerror(l->status));
}

/* turn_mx_finish - the addresses in order, or the failure they add up to */
static int
turn_mx_finish(struct turn_mx_ctx *c, enum turn_mx_mode mode,
    const char *domain, struct turn_mx_result *res)
{
	char temp[TURN_MX_ERROR_LEN] = "";
	size_t nx = 0, nodata = 0;

	res->naddr = 0;
	for (size_t i = 0; i < c->nhost; i++) {
		const struct turn_mx_host *h = &c->host[i];

		if (h->literal) {
			if (!h->unwanted)
				turn_mx_add(res, h,
				    (const struct sockaddr *)&h->ss, h->sslen);
			continue;
		}
		for (size_t j = 0; j < TURN_MX_NFAMILY; j++) {
			const struct turn_mx_lookup *l = &h->look[j];
			const struct ares_addrinfo_node *n;

			if (l->family == 0)
				continue;
			switch (l->done ? turn_mx_classify(l->status) :
			    TURN_MX_DNS_TEMP) {
			case TURN_MX_DNS_FOUND:
				for (n = l->ai != NULL ? l->ai->nodes : NULL;
				    n != NULL; n = n->ai_next)
					if (n->ai_family == l->family &&
					    n->ai_addr != NULL)
						turn_mx_add(res, h, n->ai_addr,
						    (size_t)n->ai_addrlen);
				break;
			case TURN_MX_DNS_NXDOMAIN:
				nx++;
				break;
			case TURN_MX_DNS_NODATA:
				nodata++;
				break;
			case TURN_MX_DNS_TEMP:
				if (temp[0] == '\0')
					turn_mx_lookup_why(c, h, l, temp,
					    sizeof(temp));
				break;
			}
		}
	}
	if (res->naddr > 0) {
		res->status = TURN_MX_OK;
		res->error[0] = '\0';
		res->status_code[0] = '\0';
		return 0;
	}
	if (temp[0] != '\0')
		return turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.4.3",
		    "DNS lookup failed: %s", temp);
	switch (mode) {
	case TURN_MX_MODE_IMPLICIT:
		if (nodata == 0 && nx > 0)
			return turn_mx_fail(res, TURN_MX_PERMFAIL, "5.1.2",
			    "%s: domain not found (NXDOMAIN)", domain);
		return turn_mx_fail(res, TURN_MX_PERMFAIL, "5.4.4",
		    "%s has no MX and no %s record", domain,
		    c->families == TURN_MX_INET ? "A" :
		    c->families == TURN_MX_INET6 ? "AAAA" : "A or AAAA");
	case TURN_MX_MODE_MX:
		return turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.4.4",
		    "no MX host of %s has an address (%zu host%s)", domain,
		    c->nhost, c->nhost == 1 ? "" : "s");
	case TURN_MX_MODE_ROUTE:
	default:
		return turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.4.4",
		    "no host of the route has a usable address (%zu host%s)",
		    c->nhost, c->nhost == 1 ? "" : "s");
	}
}

/* turn_mx_rec_cmp - order MX records by preference, lowest first */
static int
turn_mx_rec_cmp(const void *a, const void *b)
{
	const struct turn_mx_rec *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* turn_mx_shuffle - randomise the order of records of equal preference */
static void
turn_mx_shuffle(struct turn_mx_ctx *c, struct turn_mx_rec *rec, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i + 1;

		while (j < n && rec[j].pref == rec[i].pref)
			j++;
		/* Fisher-Yates over [i, j); the modulo bias of a 64-bit
		   draw over at most 64K records is negligible */
		for (size_t k = j - 1; k > i; k--) {
			size_t m = i + (size_t)(turn_mx_rand(&c->rng) %
			    (uint64_t)(k - i + 1));
			struct turn_mx_rec t = rec[k];

			rec[k] = rec[m];
			rec[m] = t;
		}
		i = j;
	}
}

/* turn_mx_from_mx - the hosts of an MX answer; -1 on null MX or a loop */
static int
turn_mx_from_mx(struct turn_mx_ctx *c, const char *domain,
    const char *myhostname, unsigned port, struct turn_mx_result *res)
{
	const struct ares_mx_reply *r;
	struct turn_mx_rec *rec;
	size_t n = 0, nrec = 0, kept = 0;
	unsigned cutoff = UINT_MAX;

	for (r = c->mx; r != NULL; r = r->next)
		n++;
	rec = xcalloc(n, sizeof(*rec));
	for (r = c->mx; r != NULL; r = r->next) {
		if (turn_mx_is_root(r->host))
			continue;
		/* RFC 5321 5.1: when this node is an MX of the domain, drop
		   its record and every one that is not more preferred */
		if (myhostname != NULL && myhostname[0] != '\0' &&
		    turn_mx_name_eq(r->host, myhostname) &&
		    r->priority < cutoff)
			cutoff = r->priority;
		rec[nrec].pref = r->priority;
		rec[nrec].host = r->host;
		nrec++;
	}
	if (nrec == 0) {
		free(rec);
		return turn_mx_fail(res, TURN_MX_PERMFAIL, "5.1.10",
		    "%s accepts no mail (null MX, RFC 7505)", domain);
	}
	qsort(rec, nrec, sizeof(*rec), turn_mx_rec_cmp);
	turn_mx_shuffle(c, rec, nrec);
	for (size_t i = 0; i < nrec; i++) {
		int dup = 0;

		if (rec[i].pref >= cutoff)
			break;
		kept++;
		/* an MX target is a host name, never an address */
		if (turn_mx_is_literal(rec[i].host))
			continue;
		for (size_t k = 0; k < c->nhost && !dup; k++)
			dup = turn_mx_name_eq(c->host[k].name, rec[i].host);
		if (!dup && turn_mx_host_add(c, rec[i].host, rec[i].pref,
		    port) == -1)
			break;
	}
	free(rec);
	if (kept == 0)
		return turn_mx_fail(res, TURN_MX_PERMFAIL, "5.4.6",
		    "mail for %s loops back to myself (%s is its best MX)",
		    domain, myhostname);
	if (c->nhost == 0)
		return turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.4.4",
		    "no MX host of %s has a usable name", domain);
	return 0;
}

/* turn_mx_resolve - the addresses to deliver mail for domain to */
int
turn_mx_resolve(const struct turn_mx_opts *opts, const char *domain,
    unsigned port, struct turn_mx_result *res)
{
	char name[DNAME_MAX + 1], fqdn[DNAME_MAX + 2];
	const char *err;
	struct turn_mx_ctx *c;
	enum turn_mx_mode mode = TURN_MX_MODE_MX;
	int rc = -1;

	turn_mx_result_init(res);
	if (port == 0)
		port = TURN_MX_PORT_SMTP;
	if (port > TURN_MX_PORT_MAX)
		return turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.3.5",
		    "bad port %u", port);
	if (dname_normalize(domain, name, &err) == -1)
		return turn_mx_fail(res, TURN_MX_PERMFAIL, "5.1.3",
		    "invalid domain name: %s", err);
	(void)snprintf(fqdn, sizeof(fqdn), "%s.", name);  /* fits: +2 */

	c = turn_mx_ctx_new(opts);
	if (turn_mx_channel(c, opts, res) == -1)
		goto out;
	c->pending++;
	ares_query(c->ch, fqdn, ns_c_in, ns_t_mx, turn_mx_on_mx, c);
	if (turn_mx_run(c) == -1 || !c->mx_done) {
		turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.4.3",
		    "MX lookup for %s: no answer within %u ms", name,
		    c->timeout_ms);
		goto out;
	}
	switch (turn_mx_classify(c->mx_status)) {
	case TURN_MX_DNS_FOUND:
		if (turn_mx_from_mx(c, name, opts != NULL ?
		    opts->myhostname : NULL, port, res) == -1)
			goto out;
		break;
	case TURN_MX_DNS_NODATA:
		/* RFC 5321 5.1: no MX, the domain is its own MX */
		mode = TURN_MX_MODE_IMPLICIT;
		(void)turn_mx_host_add(c, name, 0, port);
		break;
	case TURN_MX_DNS_NXDOMAIN:
		turn_mx_fail(res, TURN_MX_PERMFAIL, "5.1.2",
		    "%s: domain not found (NXDOMAIN)", name);
		goto out;
	case TURN_MX_DNS_TEMP:
		turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.4.3",
		    "MX lookup for %s failed: %s", name,
		    ares_strerror(c->mx_status));
		goto out;
	}
	turn_mx_lookup_all(c);
	/* at the deadline, what has not answered counts as a failure */
	(void)turn_mx_run(c);
	rc = turn_mx_finish(c, mode, name, res);
out:
	turn_mx_ctx_free(&c);
	return rc;
}

/* turn_mx_port - a port number of 1 to 65535, in decimal */
static int
turn_mx_port(const char *s, unsigned *port)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > TURN_MX_PORT_MAX)
			return -1;
	}
	if (v == 0)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* turn_mx_route_entry - one route entry: a literal or a name, a port */
static int
turn_mx_route_entry(struct turn_mx_ctx *c, const char *s, size_t len,
    unsigned default_port, const char **error_r)
{
	char e[TURN_MX_ENTRY_LEN], name[DNAME_MAX + 1];
	char *host, *portp = NULL, *p;
	struct turn_mx_host *h;
	struct sockaddr_in6 *s6;
	struct sockaddr_in *s4;
	unsigned port = default_port;
	const char *err;

	if (len == 0) {
		*error_r = "empty entry";
		return -1;
	}
	if (len >= sizeof(e)) {
		*error_r = "entry too long";
		return -1;
	}
	memcpy(e, s, len);
	e[len] = '\0';
	if (e[0] == '[') {
		if ((p = strchr(e, ']')) == NULL) {
			*error_r = "'[' without ']'";
			return -1;
		}
		*p = '\0';
		host = e + 1;
		if (p[1] == ':')
			portp = p + 2;
		else if (p[1] != '\0') {
			*error_r = "text after ']'";
			return -1;
		}
	} else {
		host = e;
		/* one colon: host:port; more: a bare IPv6 address */
		if ((p = strchr(e, ':')) != NULL &&
		    strchr(p + 1, ':') == NULL) {
			*p = '\0';
			portp = p + 1;
		}
	}
	if (portp != NULL && turn_mx_port(portp, &port) == -1) {
		*error_r = "bad port";
		return -1;
	}
	if (c->nhost >= TURN_MX_HOST_MAX) {
		*error_r = "too many hosts";
		return -1;
	}
	h = &c->host[c->nhost];
	memset(h, 0, sizeof(*h));
	h->pref = (unsigned)c->nhost;
	h->port = port;
	s4 = (struct sockaddr_in *)&h->ss;
	s6 = (struct sockaddr_in6 *)&h->ss;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		h->sslen = sizeof(*s4);
		h->literal = 1;
		h->unwanted = !(c->families & TURN_MX_INET);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		h->sslen = sizeof(*s6);
		h->literal = 1;
		h->unwanted = !(c->families & TURN_MX_INET6);
	} else if (dname_normalize(host, name, &err) == -1) {
		*error_r = err;
		return -1;
	} else
		host = name;
	/* host is at most DNAME_MAX or INET6_ADDRSTRLEN long: it fits */
	(void)strlcpy(h->name, host, sizeof(h->name));
	c->nhost++;
	return 0;
}

/* turn_mx_hosts - the addresses of an explicit route, in its order */
int
turn_mx_hosts(const struct turn_mx_opts *opts, const char *hostlist,
    unsigned default_port, struct turn_mx_result *res)
{
	struct turn_mx_ctx *c;
	const char *p, *err;
	int names = 0, rc = -1;

	turn_mx_result_init(res);
	if (default_port == 0)
		default_port = TURN_MX_PORT_SMTP;
	if (default_port > TURN_MX_PORT_MAX)
		return turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.3.5",
		    "bad port %u", default_port);
	if (hostlist == NULL)
		hostlist = "";
	c = turn_mx_ctx_new(opts);
	p = hostlist;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (turn_mx_route_entry(c, p, len, default_port, &err) == -1) {
			turn_mx_fail(res, TURN_MX_TEMPFAIL, "4.3.5",
			    "bad route entry %zu: %s", c->nhost + 1, err);
			goto out;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	for (size_t i = 0; i < c->nhost; i++)
		if (!c->host[i].literal)
			names++;
	/* address literals alone need no DNS at all */
	if (names > 0) {
		if (turn_mx_channel(c, opts, res) == -1)
			goto out;
		turn_mx_lookup_all(c);
		(void)turn_mx_run(c);
	}
	rc = turn_mx_finish(c, TURN_MX_MODE_ROUTE, NULL, res);
out:
	turn_mx_ctx_free(&c);
	return rc;
}
