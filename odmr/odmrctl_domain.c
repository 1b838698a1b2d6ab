/*
 * NAME
 *	odmrctl_domain 3 - odmrctl domain add, set, del, list and show
 * SYNOPSIS
 *	odmrctl domain add DOMAIN --owner USER[,USER...] [OPTIONS]
 *	odmrctl domain set DOMAIN OPTIONS...
 *	odmrctl domain del DOMAIN [--force]
 *	odmrctl [--json] domain list
 *	odmrctl [--json] domain show DOMAIN
 * DESCRIPTION
 *	Every argument is checked before the store is opened: the domain
 *	goes through dname_normalize(), owners are 1 to 64 characters from
 *	[A-Za-z0-9._@+-], a route is "mx", "client" or a comma-separated
 *	list of HOST[:PORT] where HOST is a domain name or an [address
 *	literal] and PORT is 1..65535. "--route client" means the mail
 *	waits for the owner to connect, so it needs "--etrn owner".
 *
 *	domain set changes only the settings given, in one store
 *	transaction (queue_domain_update). The route/etrn rule is checked
 *	again inside that transaction against the record as it is then;
 *	when it would be broken the record is left as it was.
 * DIAGNOSTICS
 *	2 for bad arguments, 1 for an unknown domain or one that already
 *	exists, 2 for deleting a domain that still holds mail without
 *	--force, 3 for store errors.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "compat.h"
#include "dname.h"
#include "json.h"
#include "log.h"
#include "odmrctl.h"
#include "queue.h"
#include "turn_bounce.h"
#include "units.h"
#include "xmalloc.h"

#define ODMRCTL_OWNER_MAX	64	/* longest owner (account) name */
#define ODMRCTL_PORT_MAX	65535
#define ODMRCTL_ROUTE_MAX	4096	/* longest route list */

enum {
	DOMAIN_OPT_OWNER = 1,
	DOMAIN_OPT_SUBDOMAINS,
	DOMAIN_OPT_NO_SUBDOMAINS,
	DOMAIN_OPT_ETRN,
	DOMAIN_OPT_ROUTE,
	DOMAIN_OPT_TLS,
	DOMAIN_OPT_MAX_MESSAGES,
	DOMAIN_OPT_MAX_BYTES,
	DOMAIN_OPT_LIFETIME,
	DOMAIN_OPT_RETRY,
	DOMAIN_OPT_FORCE,
};

/* settings given on the command line */
#define DOMAIN_SET_OWNERS	0x001
#define DOMAIN_SET_SUBDOMAINS	0x002
#define DOMAIN_SET_ETRN		0x004
#define DOMAIN_SET_ROUTE	0x008
#define DOMAIN_SET_TLS		0x010
#define DOMAIN_SET_MAX_MESSAGES	0x020
#define DOMAIN_SET_MAX_BYTES	0x040
#define DOMAIN_SET_LIFETIME	0x080
#define DOMAIN_SET_RETRY	0x100

static const struct odmrctl_opt odmrctl_domain_add_opts[] = {
	{ "--owner", 1, DOMAIN_OPT_OWNER },
	{ "--subdomains", 0, DOMAIN_OPT_SUBDOMAINS },
	{ "--etrn", 1, DOMAIN_OPT_ETRN },
	{ "--route", 1, DOMAIN_OPT_ROUTE },
	{ "--tls", 1, DOMAIN_OPT_TLS },
	{ "--max-messages", 1, DOMAIN_OPT_MAX_MESSAGES },
	{ "--max-bytes", 1, DOMAIN_OPT_MAX_BYTES },
	{ "--lifetime", 1, DOMAIN_OPT_LIFETIME },
	{ "--retry", 1, DOMAIN_OPT_RETRY },
	{ NULL, 0, 0 },
};

static const struct odmrctl_opt odmrctl_domain_set_opts[] = {
	{ "--owner", 1, DOMAIN_OPT_OWNER },
	{ "--subdomains", 0, DOMAIN_OPT_SUBDOMAINS },
	{ "--no-subdomains", 0, DOMAIN_OPT_NO_SUBDOMAINS },
	{ "--etrn", 1, DOMAIN_OPT_ETRN },
	{ "--route", 1, DOMAIN_OPT_ROUTE },
	{ "--tls", 1, DOMAIN_OPT_TLS },
	{ "--max-messages", 1, DOMAIN_OPT_MAX_MESSAGES },
	{ "--max-bytes", 1, DOMAIN_OPT_MAX_BYTES },
	{ "--lifetime", 1, DOMAIN_OPT_LIFETIME },
	{ "--retry", 1, DOMAIN_OPT_RETRY },
	{ NULL, 0, 0 },
};

static const struct odmrctl_opt odmrctl_domain_del_opts[] = {
	{ "--force", 0, DOMAIN_OPT_FORCE },
	{ NULL, 0, 0 },
};

static const struct odmrctl_opt odmrctl_domain_no_opts[] = {
	{ NULL, 0, 0 },
};

struct odmrctl_domain_edit {
	unsigned	 set;		/* DOMAIN_SET_* */
	char		**owners;
	size_t		 nowners;
	int		 subdomains;
	enum queue_etrn	 etrn;
	char		*route;
	enum queue_tls	 tls;
	uint64_t	 max_messages;
	uint64_t	 max_bytes;
	uint64_t	 lifetime;
	uint64_t	 retry;
	int		 conflict;	/* set: route client without etrn owner */
	enum queue_etrn	 conflict_etrn;
};

/* odmrctl_domain_edit_clear - free what an edit owns */
static void
odmrctl_domain_edit_clear(struct odmrctl_domain_edit *e)
{
	size_t i;

	for (i = 0; i < e->nowners; i++)
		free(e->owners[i]);
	free(e->owners);
	free(e->route);
	memset(e, 0, sizeof(*e));
}

/* odmrctl_domain_owner_ok - 1..64 characters of [A-Za-z0-9._@+-] */
static int
odmrctl_domain_owner_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > ODMRCTL_OWNER_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '@' || c == '+' || c == '-'))
			return 0;
	}
	return 1;
}

/* odmrctl_domain_owners - add a comma-separated owner list to an edit */
static int
odmrctl_domain_owners(struct odmrctl *ctl, const char *list,
    struct odmrctl_domain_edit *e)
{
	const char *p = list, *comma;
	size_t len, i;

	for (;;) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (!odmrctl_domain_owner_ok(p, len))
			return odmrctl_usage_err(ctl, "bad owner name '%.*s' "
			    "in '%s': use 1 to %d characters from "
			    "A-Z a-z 0-9 . _ @ + -", (int)len, p, list,
			    ODMRCTL_OWNER_MAX);
		for (i = 0; i < e->nowners; i++)
			if (strlen(e->owners[i]) == len &&
			    strncmp(e->owners[i], p, len) == 0)
				break;
		if (i == e->nowners) {
			e->owners = xreallocarray(e->owners, e->nowners + 1,
			    sizeof(*e->owners));
			e->owners[e->nowners++] = xstrndup(p, len);
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	e->set |= DOMAIN_SET_OWNERS;
	return 0;
}

/* odmrctl_domain_literal - check an [address literal] of a route */
static int
odmrctl_domain_literal(const char *s, size_t len)
{
	char addr[64];
	unsigned char bin[16];
	const char *a = s;

	/* RFC 5321 section 4.1.3: [1.2.3.4] or [IPv6:...]; bare v6 too */
	if (len >= 5 && strncasecmp(a, "IPv6:", 5) == 0) {
		a += 5;
		len -= 5;
		if (len == 0 || len >= sizeof(addr))
			return 0;
		memcpy(addr, a, len);
		addr[len] = '\0';
		return inet_pton(AF_INET6, addr, bin) == 1;
	}
	if (len == 0 || len >= sizeof(addr))
		return 0;
	memcpy(addr, a, len);
	addr[len] = '\0';
	return inet_pton(AF_INET, addr, bin) == 1 ||
	    inet_pton(AF_INET6, addr, bin) == 1;
}

/* odmrctl_domain_label - a one-label host name (RFC 1123 2.1) */
static int
odmrctl_domain_label(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 63 || h[0] == '-' || h[n - 1] == '-' ||
	    strspn(h, "0123456789") == n)
		return 0;
	return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-") == n;
}

/* odmrctl_domain_hop - check one HOST[:PORT] and append its key form */
static int
odmrctl_domain_hop(struct odmrctl *ctl, const char *hop, size_t len,
    struct buf *out)
{
	char host[DNAME_MAX + 2], key[DNAME_MAX + 1], port[8];
	const char *why, *colon, *close, *hend;
	uint64_t pnum = 0;
	size_t hlen;

	if (len == 0)
		return odmrctl_usage_err(ctl, "empty host in --route");
	if (hop[0] == '[') {
		close = memchr(hop, ']', len);
		if (close == NULL || !odmrctl_domain_literal(hop + 1,
		    (size_t)(close - hop - 1)))
			return odmrctl_usage_err(ctl, "bad address literal "
			    "'%.*s' in --route", (int)len, hop);
		hend = close + 1;
		if (hend < hop + len && *hend != ':')
			return odmrctl_usage_err(ctl, "junk after address "
			    "literal in --route: '%.*s'", (int)len, hop);
	} else {
		colon = memchr(hop, ':', len);
		hend = colon ? colon : hop + len;
	}
	hlen = (size_t)(hend - hop);
	if (hend < hop + len) {		/* ":PORT" */
		const char *ps = hend + 1, *why2 = "bad port";
		size_t plen = len - hlen - 1;

		if (plen == 0 || plen >= sizeof(port))
			return odmrctl_usage_err(ctl, "bad port in --route "
			    "'%.*s': use 1 to %d", (int)len, hop,
			    ODMRCTL_PORT_MAX);
		memcpy(port, ps, plen);
		port[plen] = '\0';
		if (units_parse_uint(port, &pnum, &why2) < 0 || pnum == 0 ||
		    pnum > ODMRCTL_PORT_MAX)
			return odmrctl_usage_err(ctl, "bad port in --route "
			    "'%.*s': use 1 to %d", (int)len, hop,
			    ODMRCTL_PORT_MAX);
	}
	if (hop[0] == '[')
		buf_append(out, hop, hlen);
	else {
		if (hlen >= sizeof(host))
			return odmrctl_usage_err(ctl, "bad host in --route "
			    "'%.*s': name too long", (int)len, hop);
		memcpy(host, hop, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET, host, key) == 1) {
			/* a bare IPv4 address: kept as a literal */
			buf_printf(out, "[%s]", host);
			if (pnum != 0)
				buf_printf(out, ":%llu",
				    (unsigned long long)pnum);
			return 0;
		}
		if (odmrctl_domain_label(host)) {
			/* "localhost", "mailgw": a host of the local net */
			for (char *c = host; *c != '\0'; c++)
				*c = (char)tolower((unsigned char)*c);
			buf_puts(out, host);
		} else if (dname_normalize(host, key, &why) < 0)
			return odmrctl_usage_err(ctl, "bad host '%s' in "
			    "--route: %s", host, why);
		else
			buf_puts(out, key);
	}
	if (pnum != 0)
		buf_printf(out, ":%llu", (unsigned long long)pnum);
	return 0;
}

/* odmrctl_domain_route - parse --route into its stored form */
static int
odmrctl_domain_route(struct odmrctl *ctl, const char *val,
    struct odmrctl_domain_edit *e)
{
	struct buf out;
	const char *p = val, *comma;
	size_t len;
	int rc = 0;

	free(e->route);
	e->route = NULL;
	e->set |= DOMAIN_SET_ROUTE;
	if (strcasecmp(val, "mx") == 0 || strcasecmp(val, "client") == 0) {
		e->route = xstrdup(strcasecmp(val, "mx") == 0 ? "mx" : "client");
		return 0;
	}
	if (strlen(val) > ODMRCTL_ROUTE_MAX)
		return odmrctl_usage_err(ctl, "--route list too long");
	buf_init(&out);
	for (;;) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (out.len > 0)
			buf_putc(&out, ',');
		if ((rc = odmrctl_domain_hop(ctl, p, len, &out)) != 0)
			break;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if (rc == 0)
		e->route = xstrdup(buf_str(&out));
	buf_release(&out);
	return rc;
}

/* odmrctl_domain_number - parse a count, size or duration option */
static int
odmrctl_domain_number(struct odmrctl *ctl, int id, const char *val,
    struct odmrctl_domain_edit *e)
{
	const char *why = "bad value";

	switch (id) {
	case DOMAIN_OPT_MAX_MESSAGES:
		if (units_parse_uint(val, &e->max_messages, &why) < 0)
			return odmrctl_usage_err(ctl, "bad --max-messages "
			    "'%s': %s", val, why);
		e->set |= DOMAIN_SET_MAX_MESSAGES;
		break;
	case DOMAIN_OPT_MAX_BYTES:
		if (units_parse_size(val, &e->max_bytes, &why) < 0)
			return odmrctl_usage_err(ctl, "bad size '%s' for "
			    "--max-bytes: %s", val, why);
		e->set |= DOMAIN_SET_MAX_BYTES;
		break;
	case DOMAIN_OPT_LIFETIME:
		if (units_parse_duration(val, &e->lifetime, &why) < 0)
			return odmrctl_usage_err(ctl, "bad duration '%s' for "
			    "--lifetime: %s", val, why);
		e->set |= DOMAIN_SET_LIFETIME;
		break;
	case DOMAIN_OPT_RETRY:
		if (strcmp(val, "off") == 0)
			e->retry = 0;
		else if (units_parse_duration(val, &e->retry, &why) < 0)
			return odmrctl_usage_err(ctl, "bad duration '%s' for "
			    "--retry: %s (or \"off\")", val, why);
		e->set |= DOMAIN_SET_RETRY;
		break;
	}
	return 0;
}

/*
 * odmrctl_domain_parse - the DOMAIN operand and the settings of add or
 * set; returns 0 or an exit code after printing the error.
 */
static int
odmrctl_domain_parse(struct odmrctl *ctl, int argc, char **argv,
    const struct odmrctl_opt *opts, char name[DNAME_MAX + 1],
    struct odmrctl_domain_edit *e)
{
	struct odmrctl_args a;
	const char *val, *domain = NULL;
	int id, rc;

	odmrctl_args_init(&a, ctl, argc, argv);
	while ((id = odmrctl_args_next(&a, opts, &val)) != ODMRCTL_ARG_END) {
		rc = 0;
		switch (id) {
		case ODMRCTL_ARG_ERROR:
			return ODMRCTL_EXIT_USAGE;
		case ODMRCTL_ARG_OPERAND:
			if (domain != NULL)
				return odmrctl_syntax_err(ctl,
				    "unexpected argument '%s'", val);
			domain = val;
			break;
		case DOMAIN_OPT_OWNER:
			rc = odmrctl_domain_owners(ctl, val, e);
			break;
		case DOMAIN_OPT_SUBDOMAINS:
		case DOMAIN_OPT_NO_SUBDOMAINS:
			e->subdomains = id == DOMAIN_OPT_SUBDOMAINS;
			e->set |= DOMAIN_SET_SUBDOMAINS;
			break;
		case DOMAIN_OPT_ETRN:
			if (queue_etrn_parse(val, &e->etrn) < 0)
				return odmrctl_usage_err(ctl, "bad --etrn "
				    "'%s': use off, any or owner", val);
			e->set |= DOMAIN_SET_ETRN;
			break;
		case DOMAIN_OPT_ROUTE:
			rc = odmrctl_domain_route(ctl, val, e);
			break;
		case DOMAIN_OPT_TLS:
			if (queue_tls_parse(val, &e->tls) < 0)
				return odmrctl_usage_err(ctl, "bad --tls '%s': "
				    "use none, may, encrypt or verify", val);
			e->set |= DOMAIN_SET_TLS;
			break;
		default:
			rc = odmrctl_domain_number(ctl, id, val, e);
			break;
		}
		if (rc != 0)
			return rc;
	}
	if (domain == NULL)
		return odmrctl_syntax_err(ctl, "missing DOMAIN");
	if (odmrctl_domain_arg(ctl, domain, name) < 0)
		return ODMRCTL_EXIT_USAGE;
	if ((e->set & DOMAIN_SET_ROUTE) && strcmp(e->route, "client") == 0 &&
	    (e->set & DOMAIN_SET_ETRN) && e->etrn != QUEUE_ETRN_OWNER)
		return odmrctl_usage_err(ctl, "--route client requires "
		    "--etrn owner");
	return 0;
}

/* odmrctl_domain_one - parse "DOMAIN" alone, for show */
static int
odmrctl_domain_one(struct odmrctl *ctl, int argc, char **argv,
    const struct odmrctl_opt *opts, char name[DNAME_MAX + 1], int *force)
{
	struct odmrctl_args a;
	const char *val, *domain = NULL;
	int id;

	odmrctl_args_init(&a, ctl, argc, argv);
	while ((id = odmrctl_args_next(&a, opts, &val)) != ODMRCTL_ARG_END) {
		if (id == ODMRCTL_ARG_ERROR)
			return ODMRCTL_EXIT_USAGE;
		if (id == DOMAIN_OPT_FORCE) {
			*force = 1;
			continue;
		}
		if (domain != NULL)
			return odmrctl_syntax_err(ctl,
			    "unexpected argument '%s'", val);
		domain = val;
	}
	if (domain == NULL)
		return odmrctl_syntax_err(ctl, "missing DOMAIN");
	if (odmrctl_domain_arg(ctl, domain, name) < 0)
		return ODMRCTL_EXIT_USAGE;
	return 0;
}

/* odmrctl_domain_add - "domain add": create a customer domain */
int
odmrctl_domain_add(struct odmrctl *ctl, int argc, char **argv)
{
	struct odmrctl_domain_edit e;
	struct queue_domain d;
	struct queue_error qerr;
	enum queue_status st;
	char name[DNAME_MAX + 1], mx[] = "mx";
	int rc;

	memset(&e, 0, sizeof(e));
	e.etrn = QUEUE_ETRN_ANY;
	e.tls = QUEUE_TLS_MAY;
	rc = odmrctl_domain_parse(ctl, argc, argv, odmrctl_domain_add_opts,
	    name, &e);
	if (rc == 0 && !(e.set & DOMAIN_SET_OWNERS))
		rc = odmrctl_syntax_err(ctl, "missing --owner USER[,USER...]");
	if (rc == 0 && turn_bounce_is_dsn_domain(name))
		rc = odmrctl_usage_err(ctl, "%s is odmrd's own DSN domain",
		    name);
	if (rc == 0 && e.route != NULL && strcmp(e.route, "client") == 0 &&
	    e.etrn != QUEUE_ETRN_OWNER)
		rc = odmrctl_usage_err(ctl, "--route client requires "
		    "--etrn owner");
	if (rc != 0 || odmrctl_store(ctl, &rc) < 0) {
		odmrctl_domain_edit_clear(&e);
		return rc;
	}
	memset(&d, 0, sizeof(d));
	memset(&qerr, 0, sizeof(qerr));
	if (strlcpy(d.name, name, sizeof(d.name)) >= sizeof(d.name))
		fatalx("domain name longer than DNAME_MAX");
	d.owners = e.owners;
	d.nowners = e.nowners;
	d.subdomains = e.subdomains;
	d.etrn = e.etrn;
	d.route = e.route != NULL ? e.route : mx;
	d.tls = e.tls;
	d.max_messages = e.max_messages;
	d.max_bytes = e.max_bytes;
	d.lifetime = e.lifetime;
	d.retry = e.retry;
	st = queue_domain_add(ctl->q, &d, &qerr);
	odmrctl_domain_edit_clear(&e);
	if (st == QUEUE_EXISTS) {
		odmrctl_err("domain %s already exists (change it with "
		    "'odmrctl domain set')", name);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	if (st != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "cannot add domain %s",
		    name);
	printf("domain %s added\n", name);
	return ODMRCTL_EXIT_OK;
}

/* odmrctl_domain_apply - queue_domain_update callback of domain set */
static void
odmrctl_domain_apply(struct queue_domain *d, void *arg)
{
	struct odmrctl_domain_edit *e = arg;
	enum queue_etrn etrn = (e->set & DOMAIN_SET_ETRN) ? e->etrn : d->etrn;
	const char *route = (e->set & DOMAIN_SET_ROUTE) ? e->route :
	    d->route;
	size_t i;

	/*
	 * The callback cannot fail the transaction, so a change that would
	 * break the route/etrn rule leaves the record exactly as it was.
	 */
	if (route != NULL && strcmp(route, "client") == 0 &&
	    etrn != QUEUE_ETRN_OWNER) {
		e->conflict = 1;
		e->conflict_etrn = etrn;
		return;
	}
	if (e->set & DOMAIN_SET_OWNERS) {
		for (i = 0; i < d->nowners; i++)
			free(d->owners[i]);
		free(d->owners);
		d->owners = xcalloc(e->nowners, sizeof(*d->owners));
		for (i = 0; i < e->nowners; i++)
			d->owners[i] = xstrdup(e->owners[i]);
		d->nowners = e->nowners;
	}
	if (e->set & DOMAIN_SET_SUBDOMAINS)
		d->subdomains = e->subdomains;
	if (e->set & DOMAIN_SET_ETRN)
		d->etrn = e->etrn;
	if (e->set & DOMAIN_SET_ROUTE) {
		free(d->route);
		d->route = xstrdup(e->route);
	}
	if (e->set & DOMAIN_SET_TLS)
		d->tls = e->tls;
	if (e->set & DOMAIN_SET_MAX_MESSAGES)
		d->max_messages = e->max_messages;
	if (e->set & DOMAIN_SET_MAX_BYTES)
		d->max_bytes = e->max_bytes;
	if (e->set & DOMAIN_SET_LIFETIME)
		d->lifetime = e->lifetime;
	if (e->set & DOMAIN_SET_RETRY)
		d->retry = e->retry;
}

/* odmrctl_domain_set - "domain set": change some settings of a domain */
int
odmrctl_domain_set(struct odmrctl *ctl, int argc, char **argv)
{
	struct odmrctl_domain_edit e;
	struct queue_error qerr;
	enum queue_status st;
	char name[DNAME_MAX + 1];
	int rc;

	memset(&e, 0, sizeof(e));
	rc = odmrctl_domain_parse(ctl, argc, argv, odmrctl_domain_set_opts,
	    name, &e);
	if (rc == 0 && e.set == 0)
		rc = odmrctl_usage_err(ctl, "nothing to change: give at "
		    "least one option");
	if (rc == 0 && turn_bounce_is_dsn_domain(name))
		rc = odmrctl_usage_err(ctl, "%s is odmrd's own DSN domain:"
		    " its route is bounce_relay in odmrd.conf", name);
	if (rc != 0 || odmrctl_store(ctl, &rc) < 0) {
		odmrctl_domain_edit_clear(&e);
		return rc;
	}
	memset(&qerr, 0, sizeof(qerr));
	st = queue_domain_update(ctl->q, name, odmrctl_domain_apply, &e, &qerr);
	if (st == QUEUE_OK && e.conflict) {
		odmrctl_err("domain %s: --route client requires --etrn owner "
		    "(etrn would be %s); nothing changed", name,
		    queue_etrn_name(e.conflict_etrn));
		rc = ODMRCTL_EXIT_USAGE;
	} else if (st == QUEUE_NOTFOUND) {
		odmrctl_err("unknown domain %s", name);
		rc = ODMRCTL_EXIT_NOTFOUND;
	} else if (st != QUEUE_OK)
		rc = odmrctl_store_err(st, &qerr, "cannot change domain %s",
		    name);
	else
		printf("domain %s changed\n", name);
	odmrctl_domain_edit_clear(&e);
	return rc;
}

/* odmrctl_domain_del - "domain del": remove a domain */
int
odmrctl_domain_del(struct odmrctl *ctl, int argc, char **argv)
{
	struct queue_domain d;
	struct queue_error qerr;
	enum queue_status st;
	char name[DNAME_MAX + 1];
	int rc, force = 0;

	rc = odmrctl_domain_one(ctl, argc, argv, odmrctl_domain_del_opts,
	    name, &force);
	if (rc == 0 && turn_bounce_is_dsn_domain(name))
		rc = odmrctl_usage_err(ctl, "%s is odmrd's own DSN domain:"
		    " delete or bounce its messages instead", name);
	if (rc != 0 || odmrctl_store(ctl, &rc) < 0)
		return rc;
	memset(&qerr, 0, sizeof(qerr));
	st = queue_domain_del(ctl->q, name, force, &qerr);
	if (st == QUEUE_NOTFOUND) {
		odmrctl_err("unknown domain %s", name);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	if (st == QUEUE_BUSY && !force) {
		/* the count is for the message only; the refusal was atomic */
		if (queue_domain_get(ctl->q, name, &d, NULL) == QUEUE_OK &&
		    d.messages > 0) {
			odmrctl_err("domain %s still holds %llu message%s; "
			    "use --force to delete it with its mail", name,
			    (unsigned long long)d.messages,
			    d.messages == 1 ? "" : "s");
			queue_domain_clear(&d);
			return ODMRCTL_EXIT_USAGE;
		}
		queue_domain_clear(&d);
		odmrctl_err("domain %s is busy: %s; use --force to delete it "
		    "anyway", name, qerr.text[0] ? qerr.text : "not empty");
		return ODMRCTL_EXIT_USAGE;
	}
	if (st != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "cannot delete domain %s",
		    name);
	printf("domain %s deleted\n", name);
	return ODMRCTL_EXIT_OK;
}

struct odmrctl_domain_listing {
	struct odmrctl		*ctl;
	struct odmrctl_table	*table;
	struct json		*json;
};

/* odmrctl_domain_owner_list - owners joined with commas */
static void
odmrctl_domain_owner_list(const struct queue_domain *d, char *out,
    size_t outsz)
{
	size_t i;

	out[0] = '\0';
	for (i = 0; i < d->nowners; i++) {
		if (i > 0)
			strlcat(out, ",", outsz);
		if (strlcat(out, d->owners[i], outsz) >= outsz) {
			/* mark the cut */
			if (outsz > 4)
				memcpy(out + outsz - 4, "...", 4);
			break;
		}
	}
}

/* odmrctl_domain_list_one - queue_domain_list callback: one row */
static int
odmrctl_domain_list_one(const struct queue_domain *d, void *arg)
{
	struct odmrctl_domain_listing *l = arg;
	char owners[ODMRCTL_FIELD_MAX], msgs[24], size[24];
	const char *cells[8];

	if (l->json != NULL) {
		odmrctl_out_json_domain(l->ctl, l->json, d);
		return 0;
	}
	odmrctl_domain_owner_list(d, owners, sizeof(owners));
	snprintf(msgs, sizeof(msgs), "%llu", (unsigned long long)d->messages);
	odmrctl_out_size(d->bytes, size, sizeof(size));
	cells[0] = d->name;
	cells[1] = owners;
	cells[2] = d->subdomains ? "yes" : "no";
	cells[3] = queue_etrn_name(d->etrn);
	cells[4] = d->route ? d->route : "mx";
	cells[5] = queue_tls_name(d->tls);
	cells[6] = msgs;
	cells[7] = size;
	odmrctl_out_table_row(l->table, cells);
	return 0;
}

/* odmrctl_domain_list - "domain list": every customer domain */
int
odmrctl_domain_list(struct odmrctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = { "DOMAIN", "OWNERS",
	    "SUBDOMAINS", "ETRN", "ROUTE", "TLS", "MSGS", "SIZE" };
	struct odmrctl_domain_listing l;
	struct odmrctl_args a;
	struct queue_error qerr;
	struct odmrctl_list list;
	enum queue_status st;
	const char *val;
	int id, rc;

	odmrctl_args_init(&a, ctl, argc, argv);
	if ((id = odmrctl_args_next(&a, odmrctl_domain_no_opts, &val)) !=
	    ODMRCTL_ARG_END)
		return id == ODMRCTL_ARG_ERROR ? ODMRCTL_EXIT_USAGE :
		    odmrctl_syntax_err(ctl, "unexpected argument '%s'", val);
	if (odmrctl_store(ctl, &rc) < 0)
		return rc;
	memset(&l, 0, sizeof(l));
	memset(&qerr, 0, sizeof(qerr));
	l.ctl = ctl;
	odmrctl_out_list_begin(&list, ctl, "odmrctl.domain.list/1", headers, 8);
	odmrctl_out_list_array(&list, "domains");
	l.json = list.json;
	if ((l.table = list.table) != NULL) {
		odmrctl_out_table_right(l.table, 6);
		odmrctl_out_table_right(l.table, 7);
	}
	st = queue_domain_list(ctl->q, odmrctl_domain_list_one, &l, &qerr);
	if (st == QUEUE_OK)
		rc = odmrctl_out_list_finish(&list);
	else
		rc = odmrctl_store_err(st, &qerr, "cannot list domains");
	odmrctl_out_list_release(&list);
	return rc;
}

/* odmrctl_domain_show_human - the key-value form of one domain */
static void
odmrctl_domain_show_human(struct odmrctl *ctl, const struct queue_domain *d,
    struct buf *out)
{
	char v[ODMRCTL_FIELD_MAX], w[ODMRCTL_FIELD_MAX];
	uint64_t life = d->lifetime ? d->lifetime :
	    odmrctl_default_lifetime(ctl);

	odmrctl_out_kv(out, "domain", "%s", d->name);
	odmrctl_domain_owner_list(d, v, sizeof(v));
	odmrctl_out_kv(out, "owners", "%s", v);
	odmrctl_out_kv(out, "subdomains", "%s", d->subdomains ? "yes" : "no");
	odmrctl_out_kv(out, "etrn", "%s", queue_etrn_name(d->etrn));
	odmrctl_out_kv(out, "route", "%s", d->route ? d->route : "mx");
	odmrctl_out_kv(out, "tls", "%s", queue_tls_name(d->tls));
	odmrctl_out_limit(d->max_messages, 0, v, sizeof(v));
	odmrctl_out_kv(out, "max messages", "%s", v);
	odmrctl_out_limit(d->max_bytes, 1, v, sizeof(v));
	odmrctl_out_kv(out, "max bytes", "%s", v);
	units_fmt_duration(life, v, sizeof(v));
	odmrctl_out_kv(out, "lifetime", "%s%s", v,
	    d->lifetime ? "" : " (queue_lifetime)");
	if (d->retry != 0)
		units_fmt_duration(d->retry, v, sizeof(v));
	odmrctl_out_kv(out, "retry", "%s", d->retry != 0 ? v :
	    "off (only ETRN or odmrctl flush)");
	odmrctl_out_time(ctl->now, d->created, "-", v, sizeof(v));
	odmrctl_out_kv(out, "created", "%s", v);
	odmrctl_out_kv(out, "messages", "%llu",
	    (unsigned long long)d->messages);
	odmrctl_out_size(d->bytes, v, sizeof(v));
	odmrctl_out_kv(out, "size", "%s (%llu bytes)", v,
	    (unsigned long long)d->bytes);
	odmrctl_out_ago(ctl->now, d->oldest, "-", v, sizeof(v));
	odmrctl_out_kv(out, "oldest", "%s", v);
	odmrctl_out_until(ctl->now, d->next_expiry, "-", v, sizeof(v));
	odmrctl_out_kv(out, "next expiry", "%s", v);
	odmrctl_out_ago(ctl->now, d->last_pickup, "never", w, sizeof(w));
	odmrctl_out_kv(out, "last pickup", "%s", w);
	odmrctl_out_claim(ctl->now, d, 1, v, sizeof(v));
	odmrctl_out_kv(out, "flush", "%s", v);
}

/*
 * odmrctl_domain_known - is name a customer domain? ODMRCTL_EXIT_OK, or
 * the exit code after saying why not
 */
int
odmrctl_domain_known(struct odmrctl *ctl, const char *name)
{
	struct queue_domain d;
	struct queue_error qerr;
	enum queue_status st;

	memset(&qerr, 0, sizeof(qerr));
	st = queue_domain_get(ctl->q, name, &d, &qerr);
	if (st == QUEUE_NOTFOUND) {
		odmrctl_err("unknown domain %s", name);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	if (st != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "cannot read domain %s",
		    name);
	queue_domain_clear(&d);
	return ODMRCTL_EXIT_OK;
}

/* odmrctl_domain_show - "domain show": one domain in full */
int
odmrctl_domain_show(struct odmrctl *ctl, int argc, char **argv)
{
	struct queue_domain d;
	struct queue_error qerr;
	struct json j;
	struct buf out;
	enum queue_status st;
	char name[DNAME_MAX + 1];
	int rc, force = 0;

	rc = odmrctl_domain_one(ctl, argc, argv, odmrctl_domain_no_opts,
	    name, &force);
	if (rc != 0 || odmrctl_store(ctl, &rc) < 0)
		return rc;
	memset(&qerr, 0, sizeof(qerr));
	st = queue_domain_get(ctl->q, name, &d, &qerr);
	if (st == QUEUE_NOTFOUND) {
		odmrctl_err("unknown domain %s", name);
		return ODMRCTL_EXIT_NOTFOUND;
	}
	if (st != QUEUE_OK)
		return odmrctl_store_err(st, &qerr, "cannot read domain %s",
		    name);
	buf_init(&out);
	if (ctl->json) {
		odmrctl_out_json_begin(ctl, &j, &out, "odmrctl.domain.show/1");
		json_key(&j, "domain");
		odmrctl_out_json_domain(ctl, &j, &d);
		odmrctl_out_json_end(&j);
	} else
		odmrctl_domain_show_human(ctl, &d, &out);
	queue_domain_clear(&d);
	rc = odmrctl_out_buf(&out) < 0 ? ODMRCTL_EXIT_STORE : ODMRCTL_EXIT_OK;
	buf_release(&out);
	return rc;
}
