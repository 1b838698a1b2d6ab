/*
 * NAME
 *	fetch_provider 3h - odmr-fetch's client of the provider: up to ATRN
 *	or ETRN
 * SYNOPSIS
 *	#include "fetch_provider.h"
 *
 *	p = fetch_provider_start(&params, done, arg);
 *	... done(arg, &result): result.exit, result.io when reversed
 *	fetch_provider_free(&p);
 * DESCRIPTION
 *	The client side of RFC 2645 section 4 up to the turn, and of an
 *	RFC 1985 ETRN request. It connects to params.host:params.port,
 *	secures the connection as params.tls says (implicit TLS from the
 *	first octet, or STARTTLS after EHLO, RFC 3207; the server's
 *	certificate is checked against params.tls_name, or the host, by
 *	the tls_ctx of the caller), sends EHLO (again after STARTTLS),
 *	authenticates with SASL (fetch_sasl 3; the SASL work runs on
 *	params.pool, off the loop) and then either
 *	- sends "ATRN" or "ATRN d1,d2" once, or
 *	- sends "ETRN domain" for each domain of params.domains, one after
 *	  the other.
 *
 *	With params.client_cert (the tls_ctx presents a certificate) AUTH
 *	is always sent, EXTERNAL first when the server offers it inside
 *	TLS (it does only when the certificate verified); the password
 *	mechanisms are the fallback when there is a password.
 *
 *	With STARTTLS a server that does not offer it is refused: a
 *	stripped STARTTLS must not turn into a password sent in clear. A
 *	server that does not offer AUTH (when an account is given) is
 *	refused too. ATRN and ETRN are sent even when the EHLO reply does
 *	not list them (some servers list them after AUTH only); a server
 *	without them answers 500 or 502, which is exit 3.
 *
 *	done() is called once, from the loop, never from inside a call of
 *	the caller's. result.exit is SPEC.md's exit status for what
 *	happened; fetch_provider_atrn_exit() and fetch_provider_etrn_exit()
 *	are the one place each of RFC 2645's and RFC 1985's replies gets
 *	one:
 *
 *	ATRN reply			exit
 *	250 (reversing)			0, and result.reversed
 *	453 (no mail)			1
 *	450 (refused), 530 (no AUTH)	2
 *	451 (busy) and anything else	3
 *
 *	ETRN reply			exit
 *	250, 253 n (started)		0
 *	251 (no messages)		1
 *	459 (not allowed)		2
 *	458 (unable), 500, 501, else	3
 *
 *	For several ETRN domains the worst outcome wins, in the order
 *	2, 3, 0, 1: a refusal or an error is never hidden by another
 *	domain's success, and "no mail" only stands when no domain had
 *	any. A failed AUTH (535, 538, or any 5xx) is 2, a 4xx to AUTH 3.
 *
 *	After 250 to ATRN the connection is handed over in result.io (its
 *	callback must be set by the new owner before the loop runs again)
 *	and no QUIT is sent; otherwise the session ends with QUIT and the
 *	connection is closed before done() is called.
 *
 *	fetch_provider_abort() closes the connection at once (a signal):
 *	done() follows with exit 3.
 * DIAGNOSTICS
 *	Info log lines: event=provider-tls, event=auth, event=atrn,
 *	event=etrn (one per domain); debug: every state change and every
 *	line exchanged, the SASL messages left out.
 * SEE ALSO
 *	fetch_sasl(3), fetch_poll(3), RFC 2645, RFC 1985, RFC 3207,
 *	RFC 4954
 */
#ifndef TURN_FETCH_PROVIDER_H
#define TURN_FETCH_PROVIDER_H

#include "fetch.h"
#include "io.h"
#include "tls.h"
#include "work.h"

enum fetch_provider_state {
	FETCH_PROVIDER_STATE_CONNECT = 0,
	FETCH_PROVIDER_STATE_HANDSHAKE,
	FETCH_PROVIDER_STATE_GREETING,
	FETCH_PROVIDER_STATE_EHLO,
	FETCH_PROVIDER_STATE_STARTTLS,
	FETCH_PROVIDER_STATE_SASL,
	FETCH_PROVIDER_STATE_AUTH,
	FETCH_PROVIDER_STATE_ATRN,
	FETCH_PROVIDER_STATE_ETRN,
	FETCH_PROVIDER_STATE_QUIT,
	FETCH_PROVIDER_STATE_END,
	FETCH_PROVIDER_STATE_COUNT,
};
extern const char *const fetch_provider_state_names[FETCH_PROVIDER_STATE_COUNT];

struct fetch_provider_params {
	const char	*host;
	unsigned	 port;
	enum fetch_tls	 tls;
	struct tls_ctx	*tls_ctx;	/* for STARTTLS and implicit TLS */
	const char	*tls_name;	/* checked in the certificate; NULL:
					   host */
	const char	*user;		/* NULL: no AUTH (ETRN only), or
					   EXTERNAL only */
	const char	*password;	/* NULL with client_cert only */
	int		 client_cert;	/* tls_ctx has a client certificate:
					   AUTH EXTERNAL when offered */
	const char	*domains;	/* "d1,d2"; NULL: ATRN for all */
	int		 etrn;
	const char	*helo;
	unsigned	 timeout_ms;
	struct work_pool *pool;		/* runs the SASL steps */
};

struct fetch_provider_result {
	enum fetch_exit	 exit;
	int		 reversed;	/* 250 to ATRN */
	struct io	*io;		/* the connection, when reversed */
	char		 server[FETCH_NAME_MAX + 1];	/* greeting's name */
	char		 addr[IO_ADDR_MAX];
	int		 tls;
	char		 tls_version[32];
	char		 mech[32];	/* the SASL mechanism, "" without */
	unsigned	 etrn_started;	/* domains with 250 or 253 */
	unsigned long	 etrn_pending;	/* the sum of 253's counts */
	char		 error[FETCH_ERROR_MAX];	/* unless exit 0/1 */
};

typedef void (*fetch_provider_done_fn)(void *arg,
    const struct fetch_provider_result *);

struct fetch_provider;

struct fetch_provider *fetch_provider_start(
	    const struct fetch_provider_params *, fetch_provider_done_fn,
	    void *arg);
void	fetch_provider_abort(struct fetch_provider *);
void	fetch_provider_free(struct fetch_provider **);
enum fetch_exit fetch_provider_atrn_exit(unsigned code);
enum fetch_exit fetch_provider_etrn_exit(unsigned code);
enum fetch_exit fetch_provider_etrn_worse(enum fetch_exit, enum fetch_exit);

#endif
