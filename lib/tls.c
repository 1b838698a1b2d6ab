/*
 * NAME
 *	tls 3 - TLS contexts for servers and clients
 * SYNOPSIS
 *	#include "tls.h"
 * DESCRIPTION
 *	See tls.h. The only file besides io.c that includes OpenSSL
 *	headers. A context wraps one SSL_CTX; OpenSSL reference-counts it,
 *	so an SSL made from a context stays valid after tls_ctx_free().
 * DIAGNOSTICS
 *	Errors come back as allocated text through error_r, built from the
 *	OpenSSL error queue; nothing is logged.
 * SEE ALSO
 *	io(3), RFC 3207, RFC 6125, RFC 7817
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "tls.h"
#include "tls_private.h"
#include "xmalloc.h"

/*
 * TLS 1.2 suites: forward secrecy first, nothing anonymous, export,
 * RC4, 3DES or MD5. TLS 1.3 suites are OpenSSL's defaults.
 */
#define TLS_CIPHERS	"HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!PSK:!SRP:!DSS"
#define TLS_SESSION_ID	"odmrd"
#define TLS_ERRORS_MAX	4	/* queue entries quoted in one message */

struct tls_ctx {
	SSL_CTX		*ssl;
	int		 server;
	enum tls_mode	 mode;
};

const char *const tls_mode_names[] = {
	[TLS_MODE_NONE] = "none",
	[TLS_MODE_MAY] = "may",
	[TLS_MODE_ENCRYPT] = "encrypt",
	[TLS_MODE_VERIFY] = "verify",
	NULL,
};

/* tls_error_text - the pending OpenSSL errors as one allocated line */
char *
tls_error_text(const char *what)
{
	struct buf b;
	unsigned long e;
	char one[256];
	int n = 0;
	char *s;

	buf_init(&b);
	buf_puts(&b, what);
	while ((e = ERR_get_error()) != 0) {
		const char *reason;

		if (n++ >= TLS_ERRORS_MAX)
			continue;	/* drain the rest */
		reason = ERR_reason_error_string(e);
		if (reason == NULL) {
			ERR_error_string_n(e, one, sizeof(one));
			reason = one;
		}
		buf_puts(&b, n == 1 ? ": " : "; ");
		buf_puts(&b, reason);
	}
	if (n == 0)
		buf_puts(&b, ": unknown TLS error");
	s = xstrdup(buf_str(&b));
	buf_release(&b);
	return s;
}

/* tls_ctx_alloc - a context with the settings servers and clients share */
static struct tls_ctx *
tls_ctx_alloc(int server, char **error_r)
{
	struct tls_ctx *t;
	SSL_CTX *ssl;

	ERR_clear_error();
	ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ssl == NULL) {
		*error_r = tls_error_text("cannot create a TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ssl, TLS_CIPHERS) != 1) {
		*error_r = tls_error_text("cannot set the TLS versions or ciphers");
		SSL_CTX_free(ssl);
		return NULL;
	}
	SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	/* idle connections should not each hold 2 x 16 KiB of TLS buffers */
	SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	t = xcalloc(1, sizeof(*t));
	t->ssl = ssl;
	t->server = server;
	return t;
}

/* tls_server_new - a fresh server context from certificate and key files */
struct tls_ctx *
tls_server_new(const char *cert_file, const char *key_file, char **error_r)
{
	struct tls_ctx *t;
	char *what;

	if (cert_file == NULL || *cert_file == '\0' ||
	    key_file == NULL || *key_file == '\0') {
		*error_r = xstrdup("TLS needs both a certificate and a key file");
		return NULL;
	}
	if ((t = tls_ctx_alloc(1, error_r)) == NULL)
		return NULL;
	SSL_CTX_set_options(t->ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_dh_auto(t->ssl, 1);
	SSL_CTX_set_session_id_context(t->ssl,
	    (const unsigned char *)TLS_SESSION_ID, strlen(TLS_SESSION_ID));
	if (SSL_CTX_use_certificate_chain_file(t->ssl, cert_file) != 1) {
		what = xasprintf("cannot load certificate %s", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ssl, key_file,
	    SSL_FILETYPE_PEM) != 1) {
		what = xasprintf("cannot load private key %s", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(t->ssl) != 1) {
		what = xasprintf("private key %s does not match certificate %s",
		    key_file, cert_file);
		goto fail;
	}
	return t;
fail:
	*error_r = tls_error_text(what);
	free(what);
	tls_ctx_free(&t);
	return NULL;
}

/* tls_accept_any - record the verification result, never fail on it */
static int
tls_accept_any(int preverify_ok, X509_STORE_CTX *x)
{
	(void)preverify_ok;
	(void)x;
	return 1;
}

/* tls_server_client_ca - ask clients for a certificate and check it */
int
tls_server_client_ca(struct tls_ctx *t, const char *ca_file, char **error_r)
{
	STACK_OF(X509_NAME) *names;

	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(t->ssl, ca_file, NULL) != 1) {
		char *what = xasprintf("cannot load CA file %s", ca_file);

		*error_r = tls_error_text(what);
		free(what);
		return -1;
	}
	if ((names = SSL_load_client_CA_file(ca_file)) != NULL)
		SSL_CTX_set_client_CA_list(t->ssl, names);
	/* a mail server must not refuse a client for its certificate */
	SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER, tls_accept_any);
	return 0;
}

/* tls_client_new - a client context for one verification mode */
struct tls_ctx *
tls_client_new(enum tls_mode mode, const char *ca_file, char **error_r)
{
	struct tls_ctx *t;
	int loaded;

	if ((t = tls_ctx_alloc(0, error_r)) == NULL)
		return NULL;
	t->mode = mode;
	if (ca_file != NULL && *ca_file != '\0')
		loaded = SSL_CTX_load_verify_locations(t->ssl, ca_file, NULL);
	else
		loaded = SSL_CTX_set_default_verify_paths(t->ssl);
	if (loaded != 1 && mode == TLS_MODE_VERIFY) {
		char *what = xasprintf("cannot load CA %s",
		    ca_file != NULL && *ca_file != '\0' ? ca_file :
		    "(system store)");

		*error_r = tls_error_text(what);
		free(what);
		tls_ctx_free(&t);
		return NULL;
	}
	ERR_clear_error();
	/*
	 * Unverified modes still build the chain and check the name so
	 * that io_tls_info() can report the result; they only do not fail.
	 */
	SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER,
	    mode == TLS_MODE_VERIFY ? NULL : tls_accept_any);
	return t;
}

/* tls_client_cert - present this certificate chain and key to servers */
int
tls_client_cert(struct tls_ctx *t, const char *cert_file,
    const char *key_file, char **error_r)
{
	char *what;

	if (key_file == NULL || *key_file == '\0')
		key_file = cert_file;
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(t->ssl, cert_file) != 1)
		what = xasprintf("cannot load certificate %s", cert_file);
	else if (SSL_CTX_use_PrivateKey_file(t->ssl, key_file,
	    SSL_FILETYPE_PEM) != 1)
		what = xasprintf("cannot load private key %s", key_file);
	else if (SSL_CTX_check_private_key(t->ssl) != 1)
		what = xasprintf("private key %s does not match certificate "
		    "%s", key_file, cert_file);
	else
		return 0;
	*error_r = tls_error_text(what);
	free(what);
	return -1;
}

/* tls_ctx_free - drop a context; connections using it keep their copy */
void
tls_ctx_free(struct tls_ctx **tp)
{
	if (*tp == NULL)
		return;
	SSL_CTX_free((*tp)->ssl);
	free(*tp);
	*tp = NULL;
}

/* tls_mode_parse - map "none", "may", "encrypt" or "verify" to a mode */
int
tls_mode_parse(const char *name, enum tls_mode *mode)
{
	for (int i = 0; tls_mode_names[i] != NULL; i++)
		if (strcmp(name, tls_mode_names[i]) == 0) {
			*mode = (enum tls_mode)i;
			return 0;
		}
	return -1;
}

/* tls_ctx_ssl - the OpenSSL context, for io.c */
SSL_CTX *
tls_ctx_ssl(const struct tls_ctx *t)
{
	return t->ssl;
}

/* tls_ctx_is_server - whether this context is for the server side */
int
tls_ctx_is_server(const struct tls_ctx *t)
{
	return t->server;
}

/* tls_ctx_mode - the verification mode of a client context */
enum tls_mode
tls_ctx_mode(const struct tls_ctx *t)
{
	return t->mode;
}
