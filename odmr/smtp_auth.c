/*
 * NAME
 *	smtp_auth 3 - AUTH (RFC 4954) with libsasl2, for the ODMR port
 * SYNOPSIS
 *	#include "smtp_session.h"
 * DESCRIPTION
 *	smtp_auth_cmd() starts a SASL exchange; smtp_auth_input() takes
 *	each client response line while the session is in SMTP_STATE_AUTH.
 *	The secrets are the customer accounts of odmrctl user (odmr_sasl
 *	3). Every sasl_server_start() and sasl_server_step() runs on the
 *	auth pool: they read sasldb (Berkeley DB) and SCRAM stretches the
 *	password thousands of times, and the event loop must not wait for
 *	either (STYLE.md rule 10).
 *
 *	Mechanisms: SCRAM-SHA-256, SCRAM-SHA-1 and CRAM-MD5 (RFC 2645
 *	makes it mandatory, and it is all fetchmail speaks) everywhere;
 *	PLAIN and LOGIN only inside TLS unless auth_require_tls = no. A
 *	plaintext mechanism asked for outside TLS gets 538 5.7.11 (RFC
 *	4954 section 6), and libsasl2 is told the same (NOPLAINTEXT), so
 *	the rule holds even if a name slips through.
 *
 *	EXTERNAL (RFC 4422 appendix A) is announced, and libsasl2 is
 *	given the identity (SASL_AUTH_EXTERNAL), only inside TLS and
 *	only when the client presented a certificate that verified
 *	against tls_client_ca_file and whose subject CN is an account
 *	name (s->tls_external). The CN must still be an account with a
 *	secret in sasldb (odmr_sasl_usable(), checked on the auth pool),
 *	and the authorization identity must be empty or that same name
 *	(libsasl2 refuses any other); else 535 5.7.8 and a failure is
 *	counted as for a wrong password. Elsewhere EXTERNAL is an
 *	unknown mechanism: 504 5.5.4.
 *
 *	Each 334 challenge is one line (fetchmail reads one). A failed
 *	attempt is answered only after a delay that grows with each
 *	failure (1 s, 2 s, ...), and the SMTP_AUTH_MAX_FAILURES-th failure
 *	gets 421 4.7.0 and the connection closes. An unknown account and a
 *	wrong password get the same 535 5.7.8, so the reply tells a
 *	guesser nothing. Each attempt is logged with the client address,
 *	the mechanism and the account name libsasl2 saw; never a secret.
 * SEE ALSO
 *	smtp_session(3), odmr_sasl(3), RFC 4954, RFC 2645, RFC 5802
 */
#include "config.h"

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "work.h"
#include "xmalloc.h"

#include "odmr_sasl.h"
#include "odmrd.h"
#include "smtp_session.h"

#define SMTP_AUTH_LINE_MAX	12288	/* RFC 4954 section 4: 12288 octets */
#define SMTP_AUTH_MAX_FAILURES	3
#define SMTP_AUTH_DELAY_MS	1000	/* per failure so far */

struct smtp_auth {
	sasl_conn_t	*conn;
	char		 mech[SMTP_AUTH_MECH_MAX + 1];
	int		 first;		/* the next job is sasl_server_start */
	char		*in;		/* decoded client response */
	unsigned	 inlen;
	int		 has_in;	/* a response was given (even empty) */
	int		 login_user;	/* LOGIN: the user name was checked */
	const char	*out;		/* server challenge, owned by conn */
	unsigned	 outlen;
	int		 rc;
	char		 user[ODMR_SASL_USER_MAX * 2 + 2];	/* as sasl saw it */
	char		 error[256];
	unsigned	 failures;
	struct loop_timer *delay;
};

/* smtp_auth_plaintext - PLAIN and LOGIN send the password itself */
static int
smtp_auth_plaintext(const char *mech)
{
	return strcmp(mech, "PLAIN") == 0 || strcmp(mech, "LOGIN") == 0;
}

/* smtp_auth_plain_ok - may this session use a plaintext mechanism? */
static int
smtp_auth_plain_ok(const struct smtp_session *s)
{
	return s->tls || !s->d->conf->auth_require_tls;
}

/* smtp_auth_external_ok - did TLS establish an identity (EXTERNAL)? */
static int
smtp_auth_external_ok(const struct smtp_session *s)
{
	return s->tls && s->tls_external[0] != '\0';
}

/* smtp_auth_mechs - the mechanisms to announce in EHLO, into out */
void
smtp_auth_mechs(const struct smtp_session *s, char *out, size_t outsz)
{
	(void)snprintf(out, outsz, "SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5%s%s",
	    smtp_auth_plain_ok(s) ? " PLAIN LOGIN" : "",
	    smtp_auth_external_ok(s) ? " " ODMR_SASL_MECH_EXTERNAL : "");
}

/* smtp_auth_offered - mech is one we announce to this session */
static int
smtp_auth_offered(const struct smtp_session *s, const char *mech)
{
	char list[128];
	const char *p;
	size_t n = strlen(mech);

	smtp_auth_mechs(s, list, sizeof(list));
	for (p = list; (p = strstr(p, mech)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' ||
		    p[n] == '\0'))
			return 1;
	return 0;
}

/* smtp_auth_reset - forget the exchange in progress (not the failures) */
static void
smtp_auth_reset(struct smtp_auth *a)
{
	if (a->conn != NULL)
		sasl_dispose(&a->conn);
	a->conn = NULL;
	free(a->in);
	a->in = NULL;
	a->inlen = 0;
	a->has_in = 0;
	a->login_user = 0;
	a->out = NULL;
	a->outlen = 0;
	a->user[0] = '\0';
	a->error[0] = '\0';
}

/* smtp_auth_free - release the session's AUTH state */
void
smtp_auth_free(struct smtp_auth **ap)
{
	struct smtp_auth *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	smtp_auth_reset(a);
	loop_timer_free(&a->delay);
	free(a);
}

/* smtp_auth_conn - a fresh libsasl2 server connection for one attempt */
static int
smtp_auth_conn(struct smtp_session *s)
{
	struct smtp_auth *a = s->auth;
	sasl_security_properties_t props;
	sasl_ssf_t ssf;
	char remote[96], *err = NULL;

	(void)snprintf(remote, sizeof(remote), "%s;%u", s->addr, s->port);
	if (odmr_sasl_conn_new("smtp", s->d->conf->hostname, NULL, remote,
	    &a->conn, &err) == -1) {
		log_warnx("session=%s event=auth-error reason=\"%s\"", s->id,
		    err);
		free(err);
		return -1;
	}
	memset(&props, 0, sizeof(props));
	props.max_ssf = 0;	/* no SASL security layer: TLS does that */
	props.maxbufsize = 0;
	props.security_flags = SASL_SEC_NOANONYMOUS |
	    (smtp_auth_plain_ok(s) ? 0 : SASL_SEC_NOPLAINTEXT);
	(void)sasl_setprop(a->conn, SASL_SEC_PROPS, &props);
	if (s->tls) {
		ssf = (sasl_ssf_t)s->tls_bits;
		(void)sasl_setprop(a->conn, SASL_SSF_EXTERNAL, &ssf);
	}
	/* without this libsasl2 does not offer its EXTERNAL mechanism */
	if (smtp_auth_external_ok(s) && sasl_setprop(a->conn,
	    SASL_AUTH_EXTERNAL, s->tls_external) != SASL_OK) {
		log_warnx("session=%s event=auth-error reason=\"cannot set"
		    " the external identity\"", s->id);
		smtp_auth_reset(a);
		return -1;
	}
	return 0;
}

/* smtp_auth_run - on the auth pool: one SASL step */
static void
smtp_auth_run(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_auth *a = s->auth;
	const void *u = NULL;
	/* "=" is an empty response (RFC 4954 4); only EXTERNAL tells it
	 * from none at the start, the others ask with a 334 as before */
	const char *in = a->in != NULL ? a->in : "";
	int empty_is_none = strcmp(a->mech, ODMR_SASL_MECH_EXTERNAL) != 0;
	char account[ODMR_SASL_USER_MAX + 1], *err = NULL;
	int lock, usable;

	/*
	 * LOGIN's first response is the user name. Cyrus SASL 2.1.28's
	 * LOGIN plugin leaks its copy of the password when the name does
	 * not canonicalize (an empty one does not): anyone could grow our
	 * memory three attempts a connection. Such a name is refused here,
	 * as an unknown account, before the plugin sees a password.
	 */
	if (strcmp(a->mech, "LOGIN") == 0 && !a->login_user &&
	    (!a->first || a->has_in)) {
		a->login_user = 1;
		if (a->inlen == 0 || a->inlen >= sizeof(a->user) ||
		    memchr(in, '\0', a->inlen) != NULL) {
			a->first = 0;
			a->rc = SASL_NOUSER;
			(void)strlcpy(a->error, "no such account",
			    sizeof(a->error));
			return;
		}
	}
	/* odmrctl user may be rewriting sasldb2: wait for it */
	lock = odmr_sasl_read_lock();
	if (a->first)
		a->rc = sasl_server_start(a->conn, a->mech,
		    a->has_in && (a->in != NULL || !empty_is_none) ? in : NULL,
		    a->inlen, &a->out, &a->outlen);
	else
		a->rc = sasl_server_step(a->conn, in, a->inlen, &a->out,
		    &a->outlen);
	a->first = 0;
	if (sasl_getprop(a->conn, SASL_USERNAME, &u) == SASL_OK && u != NULL)
		(void)strlcpy(a->user, u, sizeof(a->user));
	if (a->rc != SASL_OK && a->rc != SASL_CONTINUE)
		(void)strlcpy(a->error, sasl_errstring(a->rc, NULL, NULL),
		    sizeof(a->error));
	if (a->rc == SASL_OK &&
	    strcmp(a->mech, ODMR_SASL_MECH_EXTERNAL) == 0) {
		/* no password proved it: the account must be whole */
		usable = odmr_sasl_account(a->user, account,
		    sizeof(account)) == 0 ? odmr_sasl_usable(account, &err) :
		    0;
		if (usable != 1) {
			a->rc = SASL_NOUSER;
			(void)strlcpy(a->error, usable == 0 ? "no such account"
			    : err != NULL ? err : "the account check failed",
			    sizeof(a->error));
		}
		free(err);
	}
	odmr_sasl_read_unlock(lock);
}

/* smtp_auth_delay_done - the failure delay is over: answer */
static void
smtp_auth_delay_done(void *arg)
{
	struct smtp_session *s = arg;

	if (smtp_job_end(s) == -1)
		return;
	if (s->auth->failures >= SMTP_AUTH_MAX_FAILURES) {
		log_info("session=%s event=auth-too-many failures=%u", s->id,
		    s->auth->failures);
		smtp_reply(s, 421, "4.7.0 %s Error: too many authentication"
		    " failures", s->d->conf->hostname);
		smtp_session_close_after(s);
		return;
	}
	smtp_reply(s, 535, "5.7.8 Error: authentication credentials"
	    " invalid");
	smtp_session_resume(s);
}

/* smtp_auth_failed - log, count, and answer after a delay */
static void
smtp_auth_failed(struct smtp_session *s)
{
	struct smtp_auth *a = s->auth;

	a->failures++;
	s->errors++;
	log_info("session=%s event=auth-failed client=%s mech=%s user=\"%s\""
	    " reason=\"%s\" failures=%u", s->id, s->addr, a->mech,
	    a->user[0] != '\0' ? a->user : "unknown", a->error, a->failures);
	smtp_auth_reset(a);
	smtp_enter_state(s, SMTP_STATE_READY);
	if (a->delay == NULL)
		a->delay = loop_timer_new(smtp_auth_delay_done, s);
	/* the delay counts as a job: input waits, teardown frees the timer */
	s->job = 1;
	io_pause_read(s->io);
	loop_timer_add(a->delay, SMTP_AUTH_DELAY_MS * a->failures);
}

/* smtp_auth_done - on the loop: challenge, success or failure */
static void
smtp_auth_done(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_auth *a;
	char b64[SMTP_AUTH_LINE_MAX], account[ODMR_SASL_USER_MAX + 1];
	unsigned b64len;

	if (smtp_job_end(s) == -1)
		return;
	a = s->auth;
	switch (a->rc) {
	case SASL_CONTINUE:
		if (sasl_encode64(a->out, a->outlen, b64, sizeof(b64),
		    &b64len) != SASL_OK) {
			(void)strlcpy(a->error, "challenge too long",
			    sizeof(a->error));
			smtp_auth_failed(s);
			return;
		}
		smtp_enter_state(s, SMTP_STATE_AUTH);
		/* RFC 4954 4: "334 " and the challenge, on one line */
		(void)io_printf(s->io, "334 %.*s\r\n", (int)b64len, b64);
		break;
	case SASL_OK:
		if (odmr_sasl_account(a->user, account, sizeof(account)) == -1) {
			(void)strlcpy(a->error, "not an odmrd account name",
			    sizeof(a->error));
			smtp_auth_failed(s);
			return;
		}
		(void)strlcpy(s->auth_user, account, sizeof(s->auth_user));
		log_info("session=%s event=auth user=%s mech=%s client=%s"
		    " tls=%s", s->id, s->auth_user, a->mech, s->addr,
		    s->tls ? s->tls_version : "none");
		smtp_auth_reset(a);
		smtp_enter_state(s, SMTP_STATE_READY);
		smtp_reply(s, 235, "2.7.0 Authentication successful");
		break;
	default:
		smtp_auth_failed(s);
		return;
	}
	smtp_session_resume(s);
}

/* smtp_auth_step - decode a response (or none) and run one step */
static void
smtp_auth_step(struct smtp_session *s, const char *b64, size_t len,
    int has)
{
	struct smtp_auth *a = s->auth;
	unsigned outlen;

	free(a->in);
	a->in = NULL;
	a->inlen = 0;
	a->has_in = has;
	if (has && !(len == 1 && b64[0] == '=')) {
		/* RFC 4954 4: "=" is an empty initial response */
		a->in = xmalloc(len + 1);
		if (sasl_decode64(b64, (unsigned)len, a->in, (unsigned)len + 1,
		    &outlen) != SASL_OK) {
			smtp_auth_reset(a);
			smtp_enter_state(s, SMTP_STATE_READY);
			smtp_reject(s, "AUTH", 501, "5.5.2 Error: invalid base64"
			    " data");
			return;
		}
		a->inlen = outlen;
	}
	smtp_job_start(s);
	work_submit(s->d->auth_pool, smtp_auth_run, smtp_auth_done, s);
}

/* smtp_auth_cmd - AUTH mechanism [initial-response] */
void
smtp_auth_cmd(struct smtp_session *s, const char *arg, size_t len)
{
	struct smtp_auth *a;
	char mech[SMTP_AUTH_MECH_MAX + 1];
	size_t i, n;

	if (s->auth_user[0] != '\0') {
		smtp_reject(s, "AUTH", 503, "5.5.1 Error: already"
		    " authenticated");
		return;
	}
	if (s->state != SMTP_STATE_READY || !s->esmtp) {
		smtp_reject(s, "AUTH", 503, s->state == SMTP_STATE_HELO ||
		    s->state == SMTP_STATE_GREETING || !s->esmtp ?
		    "5.5.1 Error: send EHLO first" :
		    "5.5.1 Error: AUTH not allowed in a mail transaction");
		return;
	}
	for (n = 0; n < len && arg[n] != ' '; n++)
		;
	if (n == 0 || n > SMTP_AUTH_MECH_MAX) {
		smtp_reject(s, "AUTH", 501, "5.5.4 Syntax: AUTH mechanism"
		    " [initial-response]");
		return;
	}
	for (i = 0; i < n; i++)
		mech[i] = (char)toupper((unsigned char)arg[i]);
	mech[n] = '\0';
	if (smtp_auth_plaintext(mech) && !smtp_auth_plain_ok(s)) {
		smtp_reject(s, "AUTH", 538, "5.7.11 Error: encryption required"
		    " for the %s mechanism: use STARTTLS first", mech);
		return;
	}
	if (!smtp_auth_offered(s, mech)) {
		smtp_reject(s, "AUTH", 504, "5.5.4 Error: unrecognized"
		    " authentication type %s", mech);
		return;
	}
	if (s->auth == NULL)
		s->auth = xcalloc(1, sizeof(*s->auth));
	a = s->auth;
	smtp_auth_reset(a);
	(void)strlcpy(a->mech, mech, sizeof(a->mech));
	if (smtp_auth_conn(s) == -1) {
		smtp_reply(s, 454, "4.7.0 Error: temporary authentication"
		    " failure");
		return;
	}
	a->first = 1;
	while (n < len && arg[n] == ' ')
		n++;
	smtp_auth_step(s, arg + n, len - n, n < len);
}

/* smtp_auth_input - one client response line in SMTP_STATE_AUTH */
void
smtp_auth_input(struct smtp_session *s)
{
	struct smtp_auth *a = s->auth;
	size_t len;
	int toolong;
	char *line;

	if ((line = io_getline(s->io, SMTP_AUTH_LINE_MAX - 2, &len,
	    &toolong)) == NULL)
		return;
	if (toolong) {
		smtp_auth_reset(a);
		smtp_enter_state(s, SMTP_STATE_READY);
		smtp_reject(s, "AUTH", 500, "5.5.6 Error: authentication"
		    " exchange line is too long");
		return;
	}
	if (len == 1 && line[0] == '*') {
		/* RFC 4954 4: the client cancels */
		log_info("session=%s event=auth-cancelled mech=%s", s->id,
		    a->mech);
		smtp_auth_reset(a);
		smtp_enter_state(s, SMTP_STATE_READY);
		smtp_reject(s, "AUTH", 501, "5.7.0 Error: authentication"
		    " cancelled");
		return;
	}
	smtp_auth_step(s, line, len, 1);
}
