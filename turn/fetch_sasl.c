/*
 * NAME
 *	fetch_sasl 3 - odmr-fetch's SASL client (libsasl2)
 * SYNOPSIS
 *	#include "fetch_sasl.h"
 * DESCRIPTION
 *	See fetch_sasl.h. This is the one file of odmr-fetch that includes
 *	<sasl/sasl.h>. Each exchange has a libsasl2 client connection of
 *	its own, created for each mechanism tried (a connection whose
 *	sasl_client_start() failed is not reused).
 *
 *	The password is copied once into a sasl_secret_t owned by the
 *	exchange and wiped when it is freed.
 *
 *	EXTERNAL goes through libsasl2's built-in client mechanism too:
 *	SASL_AUTH_EXTERNAL is set on the connection (its value is only a
 *	local label, the server takes the identity from the certificate),
 *	and the empty authorization identity of SASL_CB_USER makes the
 *	initial response empty: "AUTH EXTERNAL =".
 * SEE ALSO
 *	RFC 4422, RFC 4954, RFC 7677, RFC 2195, RFC 4616, RFC 2645
 */
#include "config.h"

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "xmalloc.h"

#include "fetch_sasl.h"

#define FETCH_SASL_SERVICE	"smtp"	/* RFC 4954 section 1 */
#define FETCH_SASL_ERR_MAX	256
#define FETCH_SASL_IN_MAX	12288	/* RFC 4954 section 4 */

/* libsasl2 declares callbacks as int (*)(void); go through void (*)(void) */
#define FETCH_SASL_CB(fn)	((int (*)(void))(void (*)(void))(fn))

/*
 * the mechanisms we use, best first: EXTERNAL with a certificate in
 * TLS, then with a password SCRAM, CRAM-MD5, and PLAIN only inside TLS
 */
static const struct {
	const char	*name;
	int		 needs_tls;
	int		 external;	/* needs the certificate, no password */
} fetch_sasl_mechs[] = {
	{ "EXTERNAL", 1, 1 },
	{ "SCRAM-SHA-256", 0, 0 },
	{ "CRAM-MD5", 0, 0 },
	{ "PLAIN", 1, 0 },
};
#define FETCH_SASL_NMECHS \
	(sizeof(fetch_sasl_mechs) / sizeof(fetch_sasl_mechs[0]))

struct fetch_sasl {
	sasl_conn_t	*conn;
	char		*host;
	char		*user;		/* NULL with a certificate only */
	int		 external;	/* TLS presented our certificate */
	sasl_secret_t	*secret;
	size_t		 secret_size;
	unsigned	 tls_bits;
	sasl_callback_t	 cbs[5];
	const char	*mech;		/* a static name, once chosen */
	char		 lastlog[FETCH_SASL_ERR_MAX];
	char		 error[FETCH_SASL_ERR_MAX + 128];
};

static int fetch_sasl_inited;

static int fetch_sasl_cb_log(void *, int, const char *);

/* process-wide: plugin loading complaints are dropped, not syslogged */
static const sasl_callback_t fetch_sasl_global_cbs[] = {
	{ SASL_CB_LOG, FETCH_SASL_CB(fetch_sasl_cb_log), NULL },
	{ SASL_CB_LIST_END, NULL, NULL },
};

/* fetch_sasl_set_error - the error text, with libsasl2's last log line */
static void
fetch_sasl_set_error(struct fetch_sasl *s, const char *what, int rc)
{
	const char *detail = s->conn != NULL ? sasl_errdetail(s->conn) :
	    sasl_errstring(rc, NULL, NULL);

	(void)snprintf(s->error, sizeof(s->error), "%s: %s%s%s", what,
	    detail != NULL ? detail : sasl_errstring(rc, NULL, NULL),
	    s->lastlog[0] != '\0' ? "; " : "", s->lastlog);
}

/* fetch_sasl_cb_log - SASL_CB_LOG: keep the last complaint, never a secret */
static int
fetch_sasl_cb_log(void *context, int level, const char *message)
{
	struct fetch_sasl *s = context;

	if (s != NULL && message != NULL && level <= SASL_LOG_WARN &&
	    level != SASL_LOG_PASS)
		(void)strlcpy(s->lastlog, message, sizeof(s->lastlog));
	return SASL_OK;
}

/* fetch_sasl_cb_name - SASL_CB_AUTHNAME and SASL_CB_USER */
static int
fetch_sasl_cb_name(void *context, int id, const char **result,
    unsigned *len)
{
	struct fetch_sasl *s = context;

	if (id == SASL_CB_AUTHNAME && s->user != NULL)
		*result = s->user;
	else if (id == SASL_CB_USER)
		*result = "";	/* no authorization id: ourselves */
	else
		return SASL_BADPARAM;
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

/* fetch_sasl_cb_pass - SASL_CB_PASS: the secret this exchange owns */
static int
fetch_sasl_cb_pass(sasl_conn_t *conn, void *context, int id,
    sasl_secret_t **psecret)
{
	struct fetch_sasl *s = context;

	(void)conn;
	if (id != SASL_CB_PASS || s->secret == NULL)
		return SASL_BADPARAM;
	*psecret = s->secret;
	return SASL_OK;
}

/* fetch_sasl_init - load the client plugins, once per process */
int
fetch_sasl_init(char **error_r)
{
	int rc;

	if (fetch_sasl_inited)
		return 0;
	if ((rc = sasl_client_init(fetch_sasl_global_cbs)) != SASL_OK) {
		*error_r = xasprintf("sasl_client_init: %s",
		    sasl_errstring(rc, NULL, NULL));
		return -1;
	}
	fetch_sasl_inited = 1;
	return 0;
}

/* fetch_sasl_done - unload the plugins at exit */
void
fetch_sasl_done(void)
{
	if (!fetch_sasl_inited)
		return;
	(void)sasl_client_done();
	fetch_sasl_inited = 0;
}

/* fetch_sasl_new - an exchange for one account on one connection */
struct fetch_sasl *
fetch_sasl_new(const char *host, const char *user, const char *password,
    unsigned tls_bits, int external, char **error_r)
{
	struct fetch_sasl *s;
	size_t n = password != NULL ? strlen(password) : 0;

	if (!fetch_sasl_inited) {
		*error_r = xstrdup("SASL is not initialised");
		return NULL;
	}
	if ((user == NULL || password == NULL) && !external) {
		*error_r = xstrdup("no account and password, and no client "
		    "certificate inside TLS");
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->host = xstrdup(host);
	s->user = user != NULL && password != NULL ? xstrdup(user) : NULL;
	if (s->user != NULL) {
		s->secret_size = sizeof(sasl_secret_t) + n + 1;
		s->secret = xcalloc(1, s->secret_size);
		s->secret->len = n;
		memcpy(s->secret->data, password, n);
	}
	s->external = external && tls_bits > 0;
	s->tls_bits = tls_bits;
	s->cbs[0] = (sasl_callback_t){ SASL_CB_LOG,
	    FETCH_SASL_CB(fetch_sasl_cb_log), s };
	s->cbs[1] = (sasl_callback_t){ SASL_CB_AUTHNAME,
	    FETCH_SASL_CB(fetch_sasl_cb_name), s };
	s->cbs[2] = (sasl_callback_t){ SASL_CB_USER,
	    FETCH_SASL_CB(fetch_sasl_cb_name), s };
	s->cbs[3] = (sasl_callback_t){ SASL_CB_PASS,
	    FETCH_SASL_CB(fetch_sasl_cb_pass), s };
	s->cbs[4] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	return s;
}

/* fetch_sasl_conn - a fresh libsasl2 client connection */
static int
fetch_sasl_conn(struct fetch_sasl *s, int external)
{
	sasl_security_properties_t props;
	sasl_ssf_t ssf;
	int rc;

	if (s->conn != NULL)
		sasl_dispose(&s->conn);
	rc = sasl_client_new(FETCH_SASL_SERVICE, s->host, NULL, NULL, s->cbs,
	    0, &s->conn);
	if (rc != SASL_OK) {
		s->conn = NULL;
		fetch_sasl_set_error(s, "sasl_client_new", rc);
		return -1;
	}
	memset(&props, 0, sizeof(props));
	props.min_ssf = 0;
	props.max_ssf = 0;	/* no SASL security layer: TLS does that */
	props.maxbufsize = 0;
	props.security_flags = SASL_SEC_NOANONYMOUS |
	    (s->tls_bits > 0 ? 0 : SASL_SEC_NOPLAINTEXT);
	(void)sasl_setprop(s->conn, SASL_SEC_PROPS, &props);
	if (s->tls_bits > 0) {
		ssf = (sasl_ssf_t)s->tls_bits;
		(void)sasl_setprop(s->conn, SASL_SSF_EXTERNAL, &ssf);
	}
	/* libsasl2 offers its EXTERNAL client only with this set */
	if (external && (rc = sasl_setprop(s->conn, SASL_AUTH_EXTERNAL,
	    s->user != NULL ? s->user : "certificate")) != SASL_OK) {
		fetch_sasl_set_error(s, "SASL_AUTH_EXTERNAL", rc);
		return -1;
	}
	return 0;
}

/* fetch_sasl_encode - base64 of a client message into out */
static int
fetch_sasl_encode(struct fetch_sasl *s, const char *p, unsigned n,
    struct buf *out)
{
	unsigned olen = 0, max = (n + 2) / 3 * 4 + 1;
	int rc;

	buf_reset(out);
	if (n == 0)
		return 0;
	buf_reserve(out, max + 1);
	rc = sasl_encode64(p, n, (char *)out->data, max, &olen);
	if (rc != SASL_OK) {
		fetch_sasl_set_error(s, "base64 encoding", rc);
		return -1;
	}
	out->len = olen;
	out->data[olen] = '\0';
	return 0;
}

/* fetch_sasl_start - choose a mechanism and make its first message */
enum fetch_sasl_status
fetch_sasl_start(struct fetch_sasl *s, const char *offered, struct buf *out,
    int *has_out)
{
	const char *clientout = NULL, *chosen = NULL;
	unsigned outlen = 0;
	size_t i, tried = 0;
	int rc;
	char what[64];

	*has_out = 0;
	buf_reset(out);
	for (i = 0; i < FETCH_SASL_NMECHS; i++) {
		const char *m = fetch_sasl_mechs[i].name;
		size_t n = strlen(m);
		const char *p;
		int found = 0;

		/* the server's list: words separated by spaces */
		for (p = offered; (p = strstr(p, m)) != NULL; p += n)
			if ((p == offered || p[-1] == ' ') &&
			    (p[n] == ' ' || p[n] == '\0'))
				found = 1;
		if (!found)
			continue;
		/* never PLAIN (or LOGIN) outside TLS */
		if (fetch_sasl_mechs[i].needs_tls && s->tls_bits == 0)
			continue;
		if (fetch_sasl_mechs[i].external ? !s->external :
		    s->user == NULL)
			continue;
		tried++;
		if (fetch_sasl_conn(s, fetch_sasl_mechs[i].external) == -1)
			return FETCH_SASL_FAIL;
		rc = sasl_client_start(s->conn, m, NULL, &clientout, &outlen,
		    &chosen);
		if (rc == SASL_NOMECH)
			continue;	/* its plugin is not installed */
		s->mech = fetch_sasl_mechs[i].name;
		if (rc != SASL_OK && rc != SASL_CONTINUE) {
			(void)snprintf(what, sizeof(what), "%s start", m);
			fetch_sasl_set_error(s, what, rc);
			return FETCH_SASL_FAIL;
		}
		if (clientout != NULL) {
			*has_out = 1;
			if (fetch_sasl_encode(s, clientout, outlen, out) == -1)
				return FETCH_SASL_FAIL;
		}
		return rc == SASL_OK ? FETCH_SASL_OK : FETCH_SASL_CONTINUE;
	}
	if (s->user == NULL)
		(void)snprintf(s->error, sizeof(s->error), "the server does "
		    "not offer AUTH EXTERNAL (it offers \"%s\"), so it did "
		    "not accept the client certificate, and there is no "
		    "password to fall back on (give --user and a password)",
		    offered);
	else
		(void)snprintf(s->error, sizeof(s->error), "no acceptable "
		    "SASL mechanism: the server offers \"%s\"; odmr-fetch "
		    "uses %sSCRAM-SHA-256, CRAM-MD5, and PLAIN only inside "
		    "TLS%s", offered, s->external ? "EXTERNAL, " : "",
		    tried > 0 ? " (their libsasl2 plugins are missing: "
		    "install libsasl2-modules)" : "");
	return FETCH_SASL_NOMECH;
}

/* fetch_sasl_step - answer one base64 challenge */
enum fetch_sasl_status
fetch_sasl_step(struct fetch_sasl *s, const char *in_b64, size_t len,
    struct buf *out)
{
	const char *clientout = NULL;
	unsigned inlen = 0, outlen = 0;
	char *in;
	int rc;

	buf_reset(out);
	if (s->conn == NULL) {
		(void)strlcpy(s->error, "SASL step before start",
		    sizeof(s->error));
		return FETCH_SASL_FAIL;
	}
	if (len > FETCH_SASL_IN_MAX) {
		(void)strlcpy(s->error, "SASL challenge too long",
		    sizeof(s->error));
		return FETCH_SASL_FAIL;
	}
	in = xmalloc(len / 4 * 3 + 4);
	rc = sasl_decode64(in_b64, (unsigned)len, in, (unsigned)(len / 4 * 3 +
	    3), &inlen);
	if (rc != SASL_OK) {
		free(in);
		fetch_sasl_set_error(s, "the server's challenge is not base64",
		    rc);
		return FETCH_SASL_FAIL;
	}
	rc = sasl_client_step(s->conn, in, inlen, NULL, &clientout, &outlen);
	free(in);
	if (rc != SASL_OK && rc != SASL_CONTINUE) {
		fetch_sasl_set_error(s, s->mech != NULL ? s->mech : "SASL",
		    rc);
		return FETCH_SASL_FAIL;
	}
	if (clientout != NULL && fetch_sasl_encode(s, clientout, outlen,
	    out) == -1)
		return FETCH_SASL_FAIL;
	return rc == SASL_OK ? FETCH_SASL_OK : FETCH_SASL_CONTINUE;
}

/* fetch_sasl_mech - the mechanism chosen, or NULL */
const char *
fetch_sasl_mech(const struct fetch_sasl *s)
{
	return s->mech;
}

/* fetch_sasl_error - why the last call failed */
const char *
fetch_sasl_error(const struct fetch_sasl *s)
{
	return s->error[0] != '\0' ? s->error : "no error";
}

/* fetch_sasl_free - end the exchange, wipe the secret, clear the pointer */
void
fetch_sasl_free(struct fetch_sasl **sp)
{
	struct fetch_sasl *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	if (s->conn != NULL)
		sasl_dispose(&s->conn);
	if (s->secret != NULL) {
		explicit_bzero(s->secret, s->secret_size);
		free(s->secret);
	}
	free(s->host);
	free(s->user);
	free(s);
}
