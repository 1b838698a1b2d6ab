/*
 * NAME
 *	fetch 3h - what the modules of odmr-fetch share: exit statuses,
 *	TLS modes and limits
 * SYNOPSIS
 *	#include "fetch.h"
 * DESCRIPTION
 *	odmr-fetch (odmr_fetch.c, odmr-fetch(1)) is the customer-side
 *	client. It is built from one module per state machine:
 *
 *	fetch_provider	the client of the provider's ODMR (or MX) port:
 *			greeting, EHLO, STARTTLS, AUTH, then ATRN or ETRN;
 *	fetch_local	the client of the site's own MTA (SMTP or LMTP);
 *	fetch_relay	the SMTP server odmr-fetch becomes after the
 *			provider's 250 to ATRN (RFC 2645 section 4), which
 *			relays each transaction to fetch_local;
 *	fetch_poll	one pickup, which runs the three above in order
 *			and decides the exit status;
 *
 *	with two protocol helpers beside them: fetch_reply (SMTP replies
 *	and EHLO keywords, no I/O) and fetch_sasl (the libsasl2 client).
 *	None of them uses the store (queue/) or the daemon (odmr/).
 *
 *	enum fetch_exit is SPEC.md's table of exit statuses, and
 *	enum fetch_tls the three values of --tls.
 * SEE ALSO
 *	odmr-fetch(1), SPEC.md section odmr-fetch
 */
#ifndef TURN_FETCH_H
#define TURN_FETCH_H

enum fetch_exit {
	FETCH_EXIT_DELIVERED = 0,	/* mail was delivered */
	FETCH_EXIT_NO_MAIL = 1,		/* no mail waiting */
	FETCH_EXIT_AUTH = 2,		/* authentication failed or refused */
	FETCH_EXIT_SERVER = 3,		/* server or protocol error */
	FETCH_EXIT_LOCAL = 4,		/* local MTA error */
	FETCH_EXIT_USAGE = 5,		/* usage or configuration error */
};

enum fetch_tls {
	FETCH_TLS_STARTTLS = 0,		/* RFC 3207 on the plain port */
	FETCH_TLS_IMPLICIT,		/* TLS from the first octet */
	FETCH_TLS_NONE,
};

#define FETCH_PORT_DEFAULT	366	/* RFC 2645 section 5 */
#define FETCH_NAME_MAX		255	/* a host name (RFC 1035) */
#define FETCH_ERROR_MAX		512	/* an error text kept for the log */
#define FETCH_LANES_MAX		8	/* --local-connections, at most */
#define FETCH_CMD_MAX		2048	/* a command line we send or take;
					   RFC 5321 4.5.3.1.4 allows 512
					   plus the extensions' parameters */

#endif
