/*
 * NAME
 *	tls_private 3h - what io.c needs from a struct tls_ctx
 * DESCRIPTION
 *	Private to lib/: this header exposes OpenSSL types and must not be
 *	included outside lib/ (STYLE.md rule 5).
 */
#ifndef LIB_TLS_PRIVATE_H
#define LIB_TLS_PRIVATE_H

#include <openssl/ssl.h>

#include "tls.h"

SSL_CTX		*tls_ctx_ssl(const struct tls_ctx *);
int		 tls_ctx_is_server(const struct tls_ctx *);
enum tls_mode	 tls_ctx_mode(const struct tls_ctx *);

#endif
