/*
 * NAME
 *	tls 3h - TLS contexts for servers and clients
 * SYNOPSIS
 *	#include "tls.h"
 * DESCRIPTION
 *	A struct tls_ctx holds the settings shared by many connections:
 *	the certificate and key of a server, or the trust store and the
 *	verification mode of a client. io_starttls_server() and
 *	io_starttls_client() (io 3h) turn one connection into a TLS one
 *	with it. Callers never see an OpenSSL type.
 *
 *	tls_server_new() loads a certificate chain file and its private key
 *	and returns a fresh context, TLS 1.2 at least, without compression
 *	or renegotiation, with the server's cipher preference. Because each
 *	call builds a new context, SIGHUP can build one, swap it in for new
 *	connections and free the old one: connections already using the old
 *	context keep a reference of their own. tls_server_client_ca() makes
 *	the server ask for (never require) a client certificate, checked
 *	against a CA file, so that io_tls_info() can tell whether one was
 *	verified, and io_tls_info() reports the verification result and
 *	the subject's commonName (the caller maps it to an identity).
 *
 *	tls_client_new() makes a client context for one of the modes of
 *	enum tls_mode ("none", "may", "encrypt", "verify", as in
 *	odmrctl domain --tls). Only TLS_MODE_VERIFY makes the handshake
 *	fail when the server's certificate does not chain to the CA file
 *	(or, without one, to the system store) or does not match the host
 *	name (RFC 6125, RFC 7817: the name given to io_starttls_client()).
 *	The other modes verify too, but only report the result through
 *	io_tls_info(). Whether TLS is used at all (none, may) is the
 *	caller's decision. tls_client_cert() gives a client context a
 *	certificate chain and its key (from the same file when key_file
 *	is NULL) to present when a server asks for one (SASL EXTERNAL).
 *
 *	tls_error_text() returns the pending OpenSSL errors of this thread,
 *	prefixed with what, as one allocated line, and empties the queue.
 * DIAGNOSTICS
 *	Functions that can fail return NULL or -1 and an allocated message
 *	through error_r, which the caller frees. Nothing is logged.
 */
#ifndef LIB_TLS_H
#define LIB_TLS_H

enum tls_mode {
	TLS_MODE_NONE = 0,
	TLS_MODE_MAY,
	TLS_MODE_ENCRYPT,
	TLS_MODE_VERIFY,
};
extern const char *const tls_mode_names[];

struct tls_ctx;

struct tls_ctx	*tls_server_new(const char *cert_file, const char *key_file,
		    char **error_r);
int		 tls_server_client_ca(struct tls_ctx *, const char *ca_file,
		    char **error_r);
struct tls_ctx	*tls_client_new(enum tls_mode, const char *ca_file,
		    char **error_r);
int		 tls_client_cert(struct tls_ctx *, const char *cert_file,
		    const char *key_file, char **error_r);
void		 tls_ctx_free(struct tls_ctx **);
int		 tls_mode_parse(const char *name, enum tls_mode *);
char		*tls_error_text(const char *what);

#endif
