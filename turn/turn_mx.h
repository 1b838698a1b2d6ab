/*
 * NAME
 *	turn_mx 3h - the SMTP servers of a domain (MX, RFC 5321 section
 *	5.1, RFC 7505) or of an explicit route, resolved with c-ares
 * SYNOPSIS
 *	#include "turn_mx.h"
 *
 *	int turn_mx_resolve(const struct turn_mx_opts *opts,
 *	    const char *domain, unsigned port, struct turn_mx_result *res);
 *	int turn_mx_hosts(const struct turn_mx_opts *opts,
 *	    const char *hostlist, unsigned default_port,
 *	    struct turn_mx_result *res);
 *	const char *turn_mx_status_name(enum turn_mx_status);
 * DESCRIPTION
 *	Both functions BLOCK for up to opts->timeout_ms (the whole call,
 *	every query included): run them on a worker thread (work 3h),
 *	never on the event loop. They are thread-safe: each call has its
 *	own c-ares channel, destroyed before it returns.
 *
 *	turn_mx_resolve() finds where mail for domain goes, for outbound
 *	delivery (ETRN flushes, DSNs). domain must pass dname_normalize()
 *	(IDNA is applied); it is looked up as a fully qualified name, with
 *	no search list and no /etc/hosts. Then:
 *	- MX records are sorted by preference, lowest first; hosts of equal
 *	  preference are shuffled (RFC 5321 section 5.1 asks that load be
 *	  spread over them). At most TURN_MX_HOST_MAX hosts are looked up.
 *	- A domain that exists without MX records (NODATA) is its own
 *	  implicit MX, preference 0 (RFC 5321 section 5.1).
 *	- MX records whose target is "." are not hosts. When they are all
 *	  there is, the domain has a null MX (RFC 7505) and accepts no
 *	  mail: PERMFAIL 5.1.10.
 *	- When opts->myhostname is one of the MX hosts, that record and
 *	  every record of equal or higher preference are dropped (RFC 5321
 *	  section 5.1); when nothing is left, mail would loop back to this
 *	  node: PERMFAIL 5.4.6.
 *	- MX targets that are address literals are skipped (an MX target
 *	  must be a host name).
 *	- Every host's AAAA and A records are looked up in parallel. Each
 *	  host's addresses are listed together, IPv6 first then IPv4 (IPv4
 *	  first with opts->inet_first), in the order the server gave them;
 *	  a host's records are never reordered against another host's. An
 *	  address seen before (another host, another record) is listed
 *	  once. At most TURN_MX_ADDR_MAX addresses are returned.
 *
 *	turn_mx_hosts() resolves an explicit route instead: hostlist is a
 *	comma-separated list of "host", "host:port", "1.2.3.4",
 *	"1.2.3.4:port", "[v6]", "[v6]:port" or "[host]:port" entries,
 *	spaces allowed around the commas; no MX lookup is made. Address
 *	literals are used as they are; host names (which must pass
 *	dname_normalize()) are looked up like MX hosts. Entries keep their
 *	order, and an entry's position (0, 1, ...) is its pref in the
 *	result. A route is the operator's configuration, so a route with
 *	no usable address is always a temporary failure (4.4.4 or 4.4.3):
 *	the mail stays queued until the route or its DNS is fixed, it is
 *	never bounced.
 *
 *	opts may be NULL for the defaults. opts->servers, when not NULL or
 *	empty, replaces /etc/resolv.conf's servers: "127.0.0.1:5353,
 *	[::1]:53" (ares_set_servers_ports_csv(3) syntax). opts->families
 *	is TURN_MX_INET, TURN_MX_INET6 or both (0 means both): only those
 *	record types are asked for and only those literals kept.
 *	opts->timeout_ms bounds the whole call (TURN_MX_TIMEOUT_DEFAULT
 *	when 0). port, or default_port, of 0 means TURN_MX_PORT_SMTP.
 *
 *	Lookups still running when the time is up count as temporary
 *	failures; if other hosts have addresses by then, the result is OK
 *	with those.
 *
 *	turn_mx_status_name() gives "OK", "TEMPFAIL" or "PERMFAIL".
 * DIAGNOSTICS
 *	Both functions return 0 when res->status is TURN_MX_OK, with
 *	res->naddr >= 1. Otherwise they return -1 with res->naddr 0,
 *	res->status TURN_MX_TEMPFAIL (retry later) or TURN_MX_PERMFAIL
 *	(bounce), res->status_code the RFC 3463 enhanced status code for
 *	the DSN and res->error a printable one-line reason. Codes:
 *	    5.1.2  NXDOMAIN: the domain does not exist
 *	    5.1.3  domain is not a valid domain name
 *	    5.1.10 null MX (RFC 7505)
 *	    5.4.4  no MX records, and no A/AAAA records either
 *	    5.4.6  this node is the best MX (mail would loop)
 *	    4.4.3  DNS failure: SERVFAIL, REFUSED, no answer in time
 *	    4.4.4  no MX (or route) host has an address (RFC 5321 section
 *	           5.1: the sender should try again later)
 *	    4.3.5  bad opts->servers, port or route syntax
 *	    4.3.0  c-ares could not start
 *	Nothing is logged.
 * SEE ALSO
 *	work(3), ares_query(3), ares_getaddrinfo(3), RFC 5321 section 5.1,
 *	RFC 7505, RFC 3463
 */
#ifndef TURN_TURN_MX_H
#define TURN_TURN_MX_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>

#define TURN_MX_ADDR_MAX	32	/* addresses returned, all hosts */
#define TURN_MX_HOST_MAX	16	/* MX or route hosts looked up */
#define TURN_MX_HOST_LEN	256	/* a host name and its NUL */
#define TURN_MX_ERROR_LEN	256	/* res->error, with its NUL */
#define TURN_MX_CODE_LEN	8	/* "5.1.10" and its NUL */
#define TURN_MX_TIMEOUT_DEFAULT	10000	/* ms, for timeout_ms 0 */
#define TURN_MX_PORT_SMTP	25

#define TURN_MX_INET		0x01	/* opts->families: A */
#define TURN_MX_INET6		0x02	/* opts->families: AAAA */

enum turn_mx_status {
	TURN_MX_OK,
	TURN_MX_TEMPFAIL,	/* SERVFAIL, timeout, no address yet */
	TURN_MX_PERMFAIL,	/* NXDOMAIN, null MX, no MX and no A/AAAA */
};

struct turn_mx_opts {
	const char	*servers;	/* "127.0.0.1:5353,[::1]:53"; NULL or
					   "" for /etc/resolv.conf */
	unsigned	 timeout_ms;	/* the whole call; 0: the default */
	int		 families;	/* TURN_MX_INET | TURN_MX_INET6; 0:
					   both */
	int		 inet_first;	/* per host, IPv4 before IPv6 */
	const char	*myhostname;	/* this node, for RFC 5321 5.1
					   loop detection; NULL: none */
};

struct turn_mx_addr {
	struct sockaddr_storage ss;	/* address and port, ready for
					   connect() */
	socklen_t	 len;
	char		 host[TURN_MX_HOST_LEN]; /* MX or route host */
	unsigned	 pref;		/* MX preference; route index */
};

struct turn_mx_result {
	enum turn_mx_status status;
	char		 error[TURN_MX_ERROR_LEN];	  /* "" when OK */
	char		 status_code[TURN_MX_CODE_LEN]; /* "" when OK */
	size_t		 naddr;
	struct turn_mx_addr addr[TURN_MX_ADDR_MAX];
};

int	turn_mx_resolve(const struct turn_mx_opts *, const char *domain,
	    unsigned port, struct turn_mx_result *);
int	turn_mx_hosts(const struct turn_mx_opts *, const char *hostlist,
	    unsigned default_port, struct turn_mx_result *);
const char *turn_mx_status_name(enum turn_mx_status);

#endif
