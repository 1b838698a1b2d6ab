/*
 * NAME
 *	fetch_sasl 3h - odmr-fetch's SASL client (libsasl2)
 * SYNOPSIS
 *	#include "fetch_sasl.h"
 *
 *	fetch_sasl_init(&error);
 *	s = fetch_sasl_new(host, user, password, tls_bits, external,
 *	    &error);
 *	st = fetch_sasl_start(s, "SCRAM-SHA-256 CRAM-MD5", &out, &has_out);
 *	st = fetch_sasl_step(s, challenge_b64, len, &out);
 *	fetch_sasl_free(&s);
 *	fetch_sasl_done();
 * DESCRIPTION
 *	One AUTH exchange (RFC 4954) with the libsasl2 client API. The
 *	account name, the (empty) authorization identity and the password
 *	come from callbacks (SASL_CB_AUTHNAME, SASL_CB_USER, SASL_CB_PASS);
 *	nothing is ever prompted for.
 *
 *	fetch_sasl_start() chooses the mechanism from the server's AUTH
 *	list, in this order: EXTERNAL (RFC 4422 appendix A) when external
 *	is set (a client certificate was presented in the TLS handshake)
 *	and tls_bits > 0, with an empty authorization identity, so that
 *	the server uses the identity of the certificate; then, when user
 *	and password are given, SCRAM-SHA-256 (RFC 7677), CRAM-MD5 (RFC 2195;
 *	RFC 2645 makes it mandatory for ODMR servers), and PLAIN (RFC
 *	4616) only when the connection is inside TLS (tls_bits > 0).
 *	LOGIN is never used. A mechanism whose client plugin is not
 *	installed is skipped. Outside TLS libsasl2 is also told
 *	SASL_SEC_NOPLAINTEXT, so a plaintext mechanism cannot slip through.
 *	No SASL security layer is negotiated (TLS does that).
 *
 *	Both fetch_sasl_start() and fetch_sasl_step() may take a while
 *	(SCRAM stretches the password thousands of times): the caller runs
 *	them on a worker thread (work 3h), which is why they return their
 *	output in a struct buf and their error through fetch_sasl_error()
 *	rather than logging. The output is base64 (RFC 4648), ready to
 *	send; *has_out tells apart "no initial response" from an empty one
 *	("=", RFC 4954 section 4).
 * DIAGNOSTICS
 *	FETCH_SASL_FAIL and FETCH_SASL_NOMECH come with a text from
 *	fetch_sasl_error(), libsasl2's own last complaint included.
 *	Nothing is logged.
 */
#ifndef TURN_FETCH_SASL_H
#define TURN_FETCH_SASL_H

#include "buf.h"

enum fetch_sasl_status {
	FETCH_SASL_CONTINUE = 0,	/* send the output, expect a 334 */
	FETCH_SASL_OK,			/* done on our side; expect 235 */
	FETCH_SASL_FAIL,		/* give up */
	FETCH_SASL_NOMECH,		/* no acceptable mechanism offered */
};

struct fetch_sasl;

int	fetch_sasl_init(char **error_r);
void	fetch_sasl_done(void);
struct fetch_sasl *fetch_sasl_new(const char *host, const char *user,
	    const char *password, unsigned tls_bits, int external,
	    char **error_r);
enum fetch_sasl_status fetch_sasl_start(struct fetch_sasl *,
	    const char *offered, struct buf *out, int *has_out);
enum fetch_sasl_status fetch_sasl_step(struct fetch_sasl *,
	    const char *in_b64, size_t len, struct buf *out);
const char *fetch_sasl_mech(const struct fetch_sasl *);
const char *fetch_sasl_error(const struct fetch_sasl *);
void	fetch_sasl_free(struct fetch_sasl **);

#endif
