/*
 * NAME
 *	fetch_provider 3 - odmr-fetch's client of the provider: up to ATRN
 *	or ETRN
 * SYNOPSIS
 *	#include "fetch_provider.h"
 * DESCRIPTION
 *	See fetch_provider.h. The state is an enum with a names table and
 *	a description table ("sending AUTH") for error texts; every change
 *	goes through fetch_provider_enter_state(), which logs old -> new,
 *	sets the io timeout and reads from the server only in the states
 *	that wait for a reply. Replies are dispatched by state through
 *	fetch_provider_replies[].
 *
 *	The SASL steps run as jobs on the caller's work pool (STYLE.md
 *	rule 10): while one runs the session is in FETCH_PROVIDER_STATE_SASL
 *	and reads nothing, and only the job touches the SASL state.
 *
 *	The end always goes through fetch_provider_finish(): it waits for
 *	a SASL job still running, then posts the report to the loop, so
 *	that done() never runs inside the io callback or a job.
 * SEE ALSO
 *	RFC 2645 section 4, RFC 1985 section 5, RFC 3207 section 4.2,
 *	RFC 4954 section 4
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "work.h"
#include "xmalloc.h"

#include "fetch.h"
#include "fetch_provider.h"
#include "fetch_reply.h"
#include "fetch_sasl.h"

#define FETCH_PROVIDER_ETRN_MAX	64	/* domains per run */

const char *const fetch_provider_state_names[FETCH_PROVIDER_STATE_COUNT] = {
	[FETCH_PROVIDER_STATE_CONNECT] = "connect",
	[FETCH_PROVIDER_STATE_HANDSHAKE] = "handshake",
	[FETCH_PROVIDER_STATE_GREETING] = "greeting",
	[FETCH_PROVIDER_STATE_EHLO] = "ehlo",
	[FETCH_PROVIDER_STATE_STARTTLS] = "starttls",
	[FETCH_PROVIDER_STATE_SASL] = "sasl",
	[FETCH_PROVIDER_STATE_AUTH] = "auth",
	[FETCH_PROVIDER_STATE_ATRN] = "atrn",
	[FETCH_PROVIDER_STATE_ETRN] = "etrn",
	[FETCH_PROVIDER_STATE_QUIT] = "quit",
	[FETCH_PROVIDER_STATE_END] = "end",
};

static const char *const fetch_provider_descriptions[] = {
	[FETCH_PROVIDER_STATE_CONNECT] = "connecting",
	[FETCH_PROVIDER_STATE_HANDSHAKE] = "in the TLS handshake",
	[FETCH_PROVIDER_STATE_GREETING] = "waiting for the 220 greeting",
	[FETCH_PROVIDER_STATE_EHLO] = "sending EHLO",
	[FETCH_PROVIDER_STATE_STARTTLS] = "sending STARTTLS",
	[FETCH_PROVIDER_STATE_SASL] = "computing the SASL response",
	[FETCH_PROVIDER_STATE_AUTH] = "sending AUTH",
	[FETCH_PROVIDER_STATE_ATRN] = "sending ATRN",
	[FETCH_PROVIDER_STATE_ETRN] = "sending ETRN",
	[FETCH_PROVIDER_STATE_QUIT] = "sending QUIT",
	[FETCH_PROVIDER_STATE_END] = "finishing",
};

/* the states that wait for a reply from the server */
static const int fetch_provider_reads[FETCH_PROVIDER_STATE_COUNT] = {
	/* the handshake too: with reading off, libevent's SSL filter has
	 * no read timeout, and a server that stalls it held us for ever */
	[FETCH_PROVIDER_STATE_HANDSHAKE] = 1,
	[FETCH_PROVIDER_STATE_GREETING] = 1,
	[FETCH_PROVIDER_STATE_EHLO] = 1,
	[FETCH_PROVIDER_STATE_STARTTLS] = 1,
	[FETCH_PROVIDER_STATE_AUTH] = 1,
	[FETCH_PROVIDER_STATE_ATRN] = 1,
	[FETCH_PROVIDER_STATE_ETRN] = 1,
	[FETCH_PROVIDER_STATE_QUIT] = 1,
};

struct fetch_provider {
	char		 name[FETCH_NAME_MAX + 16];	/* host:port, logs */
	char		*host;
	unsigned	 port;
	enum fetch_tls	 tls_mode;
	struct tls_ctx	*tls_ctx;
	char		*tls_name;
	char		*user;
	char		*password;
	int		 client_cert;	/* tls_ctx presents one: EXTERNAL */
	char		*domains;
	int		 etrn;
	char		*helo;
	unsigned	 timeout_ms;
	struct work_pool *pool;
	fetch_provider_done_fn done;
	void		*arg;

	struct io	*io;
	enum fetch_provider_state state;
	struct fetch_reply reply;
	struct fetch_ext ext;
	int		 tls_on;
	unsigned	 tls_bits;

	/* SASL: touched by the job only while in FETCH_PROVIDER_STATE_SASL */
	struct fetch_sasl *sasl;
	int		 sasl_first;
	enum fetch_sasl_status sasl_status;
	struct buf	 sasl_out;
	int		 sasl_has_out;
	struct buf	 challenge;
	unsigned	 jobs;

	/* ETRN */
	char		*etrn_list[FETCH_PROVIDER_ETRN_MAX];
	size_t		 etrn_n, etrn_next;
	int		 etrn_any;

	int		 ending;
	int		 posted;
	struct fetch_provider_result result;
};

typedef void (*fetch_provider_reply_fn)(struct fetch_provider *);

static void fetch_provider_io(struct io *, enum io_event, void *);
static void fetch_provider_fail(struct fetch_provider *, enum fetch_exit,
    const char *, ...) __attribute__((format(printf, 3, 4)));

/* fetch_provider_atrn_exit - RFC 2645's ATRN replies as exit statuses */
enum fetch_exit
fetch_provider_atrn_exit(unsigned code)
{
	switch (code) {
	case 250:
		return FETCH_EXIT_DELIVERED;	/* reversing */
	case 453:
		return FETCH_EXIT_NO_MAIL;	/* "You have no mail" */
	case 450:				/* not this account's domain */
	case 530:				/* not authenticated */
		return FETCH_EXIT_AUTH;
	case 451:				/* busy: try again later */
	default:
		return FETCH_EXIT_SERVER;
	}
}

/* fetch_provider_etrn_exit - RFC 1985's ETRN replies as exit statuses */
enum fetch_exit
fetch_provider_etrn_exit(unsigned code)
{
	switch (code) {
	case 250:				/* queuing started */
	case 253:				/* n messages started */
		return FETCH_EXIT_DELIVERED;
	case 251:				/* no messages waiting */
		return FETCH_EXIT_NO_MAIL;
	case 459:				/* node not allowed */
		return FETCH_EXIT_AUTH;
	case 458:				/* unable to queue */
	default:				/* 500, 501, ... */
		return FETCH_EXIT_SERVER;
	}
}

/* fetch_provider_etrn_worse - the outcome of two domains: 2, 3, 0, 1 */
enum fetch_exit
fetch_provider_etrn_worse(enum fetch_exit a, enum fetch_exit b)
{
	static const int rank[] = {
		[FETCH_EXIT_DELIVERED] = 2,
		[FETCH_EXIT_NO_MAIL] = 1,
		[FETCH_EXIT_AUTH] = 5,
		[FETCH_EXIT_SERVER] = 4,
		[FETCH_EXIT_LOCAL] = 3,
		[FETCH_EXIT_USAGE] = 6,
	};

	return rank[a] >= rank[b] ? a : b;
}

/* fetch_provider_enter_state - change state: log, timeout, reading */
static void
fetch_provider_enter_state(struct fetch_provider *p,
    enum fetch_provider_state state)
{
	if (p->state != state)
		log_debug("provider=%s event=provider-state from=%s to=%s",
		    p->name, fetch_provider_state_names[p->state],
		    fetch_provider_state_names[state]);
	p->state = state;
	if (p->io == NULL)
		return;
	io_set_timeout(p->io, p->timeout_ms);
	if (fetch_provider_reads[state])
		io_resume_read(p->io);
	else
		io_pause_read(p->io);
}

/* fetch_provider_error - keep the first reason the session went wrong */
static void
fetch_provider_error(struct fetch_provider *p, enum fetch_exit exit,
    const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* fetch_provider_error - keep the first reason the session went wrong */
static void
fetch_provider_error(struct fetch_provider *p, enum fetch_exit exit,
    const char *fmt, va_list ap)
{
	if (p->result.error[0] != '\0')
		return;
	p->result.exit = exit;
	(void)vsnprintf(p->result.error, sizeof(p->result.error), fmt, ap);
}

/* fetch_provider_posted - on the loop: hand the result to the owner */
static void
fetch_provider_posted(void *arg)
{
	struct fetch_provider *p = arg;

	p->done(p->arg, &p->result);	/* may free p */
}

/* fetch_provider_finish - once no job runs, post the report */
static void
fetch_provider_finish(struct fetch_provider *p)
{
	p->ending = 1;
	if (p->jobs > 0 || p->posted)
		return;
	p->posted = 1;
	fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_END);
	if (loop_post(fetch_provider_posted, p) == -1)
		fetch_provider_posted(p);
}

/* fetch_provider_close - hang up now and finish */
static void
fetch_provider_close(struct fetch_provider *p)
{
	io_free(&p->io);
	fetch_provider_finish(p);
}

/* fetch_provider_write - queue output; a failure ends the session */
static int
fetch_provider_write(struct fetch_provider *p, const char *line,
    int secret)
{
	if (p->io == NULL)
		return -1;
	if (secret)
		log_debug("provider=%s event=provider-send line=\"%.*s "
		    "(SASL data not logged)\"", p->name,
		    (int)strcspn(line, " \r"), line);
	else
		log_debug("provider=%s event=provider-send line=\"%.*s\"",
		    p->name, (int)strcspn(line, "\r"), line);
	if (io_write(p->io, line, strlen(line)) == -1) {
		if (p->result.error[0] == '\0') {
			p->result.exit = FETCH_EXIT_SERVER;
			(void)snprintf(p->result.error,
			    sizeof(p->result.error), "cannot write while %s:"
			    " %s", fetch_provider_descriptions[p->state],
			    io_error(p->io));
		}
		fetch_provider_close(p);
		return -1;
	}
	return 0;
}

/* fetch_provider_cmd - send one command line (CRLF added) */
static int
fetch_provider_cmd(struct fetch_provider *p, int secret, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* fetch_provider_cmd - send one command line (CRLF added) */
static int
fetch_provider_cmd(struct fetch_provider *p, int secret, const char *fmt,
    ...)
{
	struct buf b;
	va_list ap;
	int rc;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_puts(&b, "\r\n");
	rc = fetch_provider_write(p, buf_str(&b), secret);
	explicit_bzero(b.data, b.len);
	buf_release(&b);
	return rc;
}

/* fetch_provider_quit - the last command; the end follows its reply */
static void
fetch_provider_quit(struct fetch_provider *p)
{
	if (fetch_provider_cmd(p, 0, "QUIT") == 0)
		fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_QUIT);
}

/* fetch_provider_fail - record why, then QUIT if we may still talk */
static void
fetch_provider_fail(struct fetch_provider *p, enum fetch_exit exit,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fetch_provider_error(p, exit, fmt, ap);
	va_end(ap);
	if (p->io == NULL || p->ending) {
		fetch_provider_finish(p);
		return;
	}
	switch (p->state) {
	case FETCH_PROVIDER_STATE_GREETING:
	case FETCH_PROVIDER_STATE_EHLO:
	case FETCH_PROVIDER_STATE_STARTTLS:
	case FETCH_PROVIDER_STATE_SASL:
	case FETCH_PROVIDER_STATE_AUTH:
	case FETCH_PROVIDER_STATE_ATRN:
	case FETCH_PROVIDER_STATE_ETRN:
		fetch_provider_quit(p);
		return;
	default:
		fetch_provider_close(p);
		return;
	}
}

/* fetch_provider_lost - the connection broke: no QUIT, just close */
static void
fetch_provider_lost(struct fetch_provider *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fetch_provider_lost - the connection broke: no QUIT, just close */
static void
fetch_provider_lost(struct fetch_provider *p, const char *fmt, ...)
{
	va_list ap;

	if (p->state == FETCH_PROVIDER_STATE_QUIT) {
		/* QUIT went out: a missing 221 changes nothing */
		fetch_provider_close(p);
		return;
	}
	va_start(ap, fmt);
	fetch_provider_error(p, FETCH_EXIT_SERVER, fmt, ap);
	va_end(ap);
	fetch_provider_close(p);
}

/* ---- SASL, on the pool ---- */

/* fetch_provider_sasl_run - on a worker: the first or the next step */
static void
fetch_provider_sasl_run(void *arg)
{
	struct fetch_provider *p = arg;

	if (p->sasl_first)
		p->sasl_status = fetch_sasl_start(p->sasl, p->ext.auth,
		    &p->sasl_out, &p->sasl_has_out);
	else
		p->sasl_status = fetch_sasl_step(p->sasl,
		    (const char *)p->challenge.data, p->challenge.len,
		    &p->sasl_out);
}

/* fetch_provider_sasl_done - on the loop: send what SASL made */
static void
fetch_provider_sasl_done(void *arg)
{
	struct fetch_provider *p = arg;
	const char *mech = fetch_sasl_mech(p->sasl);
	int first = p->sasl_first;

	p->jobs--;
	p->sasl_first = 0;
	if (p->ending) {
		fetch_provider_finish(p);
		return;
	}
	if (mech != NULL)
		(void)strlcpy(p->result.mech, mech, sizeof(p->result.mech));
	switch (p->sasl_status) {
	case FETCH_SASL_NOMECH:
		fetch_provider_fail(p, FETCH_EXIT_AUTH, "%s",
		    fetch_sasl_error(p->sasl));
		return;
	case FETCH_SASL_FAIL:
		if (!first) {
			/* RFC 4954 section 4: "*" cancels the exchange */
			(void)fetch_provider_cmd(p, 0, "*");
		}
		fetch_provider_fail(p, FETCH_EXIT_AUTH, "SASL %s failed: %s",
		    mech != NULL ? mech : "", fetch_sasl_error(p->sasl));
		return;
	case FETCH_SASL_CONTINUE:
	case FETCH_SASL_OK:
		break;
	}
	if (first) {
		log_debug("provider=%s event=auth-start mechanism=%s", p->name,
		    mech);
		if (!p->sasl_has_out)
			(void)fetch_provider_cmd(p, 0, "AUTH %s", mech);
		else if (p->sasl_out.len == 0)
			(void)fetch_provider_cmd(p, 0, "AUTH %s =", mech);
		else
			(void)fetch_provider_cmd(p, 1, "AUTH %s %s", mech,
			    buf_str(&p->sasl_out));
	} else
		(void)fetch_provider_cmd(p, 1, "%s", buf_str(&p->sasl_out));
	if (p->sasl_out.data != NULL)
		explicit_bzero(p->sasl_out.data, p->sasl_out.len);
	if (p->io != NULL && !p->ending)
		fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_AUTH);
}

/* fetch_provider_sasl_submit - run the next SASL step off the loop */
static void
fetch_provider_sasl_submit(struct fetch_provider *p)
{
	p->jobs++;
	fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_SASL);
	work_submit(p->pool, fetch_provider_sasl_run, fetch_provider_sasl_done,
	    p);
}

/* fetch_provider_auth - start AUTH (RFC 4954) */
static void
fetch_provider_auth(struct fetch_provider *p)
{
	char *err = NULL;

	if (!(p->ext.flags & FETCH_EXT_AUTH) || p->ext.auth[0] == '\0') {
		fetch_provider_fail(p, FETCH_EXIT_SERVER, "the server does not"
		    " offer AUTH%s", p->tls_on ? "" : " outside TLS");
		return;
	}
	fetch_sasl_free(&p->sasl);
	p->sasl = fetch_sasl_new(p->host, p->user, p->password, p->tls_bits,
	    p->client_cert && p->tls_on, &err);
	if (p->sasl == NULL) {
		fetch_provider_fail(p, FETCH_EXIT_AUTH, "%s", err);
		free(err);
		return;
	}
	p->sasl_first = 1;
	fetch_provider_sasl_submit(p);
}

/* ---- after AUTH: the request ---- */

/* fetch_provider_etrn_next - ETRN for the next domain, or QUIT */
static void
fetch_provider_etrn_next(struct fetch_provider *p)
{
	if (p->etrn_next == p->etrn_n) {
		fetch_provider_quit(p);
		return;
	}
	if (fetch_provider_cmd(p, 0, "ETRN %s",
	    p->etrn_list[p->etrn_next]) == 0)
		fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_ETRN);
}

/* fetch_provider_request - ATRN, or the first ETRN */
static void
fetch_provider_request(struct fetch_provider *p)
{
	if (p->etrn) {
		/* RFC 1985 5: a server announces ETRN; one that lists it only
		 * to authenticated clients gets its chance all the same, and
		 * a 500 or 502 from one without it is exit 3 anyway */
		if (!(p->ext.flags & FETCH_EXT_ETRN))
			log_debug("provider=%s event=etrn-unannounced",
			    p->name);
		fetch_provider_etrn_next(p);
		return;
	}
	if (!(p->ext.flags & FETCH_EXT_ATRN))
		log_debug("provider=%s event=atrn-unannounced note=\"no ATRN "
		    "in the EHLO reply; trying it anyway\"", p->name);
	if (p->domains != NULL)
		(void)fetch_provider_cmd(p, 0, "ATRN %s", p->domains);
	else
		(void)fetch_provider_cmd(p, 0, "ATRN");
	if (p->io != NULL)
		fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_ATRN);
}

/* ---- replies, by state ---- */

/* fetch_provider_reply_greeting - 220: EHLO */
static void
fetch_provider_reply_greeting(struct fetch_provider *p)
{
	size_t i, n;

	if (p->reply.code != 220) {
		fetch_provider_fail(p, FETCH_EXIT_SERVER, "the server greeted "
		    "with %u %s", p->reply.code, p->reply.text);
		return;
	}
	/* its name, for our Received: field: a host name's octets only */
	n = strcspn(p->reply.text, " ");
	for (i = 0; i < n && i < sizeof(p->result.server) - 1; i++) {
		unsigned char c = (unsigned char)p->reply.text[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '[' &&
		    c != ']' && c != ':')
			break;
		p->result.server[i] = (char)c;
	}
	p->result.server[i] = '\0';
	if (fetch_provider_cmd(p, 0, "EHLO %s", p->helo) == 0)
		fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_EHLO);
}

/* fetch_provider_reply_ehlo - extensions: STARTTLS, AUTH, or the request */
static void
fetch_provider_reply_ehlo(struct fetch_provider *p)
{
	char ext[256];

	if (fetch_reply_class(&p->reply) != 2) {
		/* AUTH and ATRN need ESMTP: there is no HELO fallback */
		fetch_provider_fail(p, FETCH_EXIT_SERVER, "the server refused "
		    "EHLO: %u %s", p->reply.code, p->reply.text);
		return;
	}
	fetch_reply_ext_format(&p->ext, ext, sizeof(ext));
	log_debug("provider=%s event=provider-ehlo tls=%s extensions=%s "
	    "auth=\"%s\"", p->name, p->tls_on ? "yes" : "no", ext,
	    p->ext.auth);
	if (!p->tls_on && p->tls_mode == FETCH_TLS_STARTTLS) {
		if (!(p->ext.flags & FETCH_EXT_STARTTLS)) {
			fetch_provider_fail(p, FETCH_EXIT_SERVER, "the server "
			    "does not offer STARTTLS (use --tls none to do "
			    "without)");
			return;
		}
		if (fetch_provider_cmd(p, 0, "STARTTLS") == 0)
			fetch_provider_enter_state(p,
			    FETCH_PROVIDER_STATE_STARTTLS);
		return;
	}
	if (p->user != NULL || p->client_cert) {
		fetch_provider_auth(p);
		return;
	}
	fetch_provider_request(p);
}

/* fetch_provider_reply_starttls - 220: the handshake (RFC 3207) */
static void
fetch_provider_reply_starttls(struct fetch_provider *p)
{
	size_t n;

	if (p->reply.code != 220) {
		fetch_provider_fail(p, FETCH_EXIT_SERVER, "the server refused "
		    "STARTTLS: %u %s", p->reply.code, p->reply.text);
		return;
	}
	/* RFC 3207 4.2: nothing sent before the handshake may be used */
	if ((n = io_discard_input(p->io)) > 0)
		log_warnx("provider=%s event=starttls-discarded octets=%zu",
		    p->name, n);
	if (io_starttls_client(p->io, p->tls_ctx, p->tls_name) == -1) {
		fetch_provider_fail(p, FETCH_EXIT_SERVER, "%s",
		    io_error(p->io));
		return;
	}
	fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_HANDSHAKE);
}

/* fetch_provider_who - the account for logs: EXTERNAL names none */
static const char *
fetch_provider_who(const struct fetch_provider *p)
{
	const char *mech = fetch_sasl_mech(p->sasl);

	if (mech != NULL && strcmp(mech, "EXTERNAL") == 0)
		return "(certificate)";
	return p->user != NULL ? p->user : "(none)";
}

/* fetch_provider_reply_auth - 334: next step; 235: in; else refused */
static void
fetch_provider_reply_auth(struct fetch_provider *p)
{
	const char *mech = fetch_sasl_mech(p->sasl);

	if (p->reply.code == 334) {
		buf_reset(&p->challenge);
		buf_append(&p->challenge, p->reply.text, p->reply.len);
		fetch_provider_sasl_submit(p);
		return;
	}
	if (p->reply.code == 235) {
		if (p->sasl_status != FETCH_SASL_OK) {
			/* SCRAM: the server never proved it knows the secret */
			fetch_provider_fail(p, FETCH_EXIT_AUTH, "the server "
			    "said 235 before the %s exchange was complete",
			    mech);
			return;
		}
		log_info("provider=%s event=auth user=%s mechanism=%s tls=%s "
		    "result=ok", p->name, fetch_provider_who(p), mech,
		    p->tls_on ? "yes" : "no");
		fetch_provider_request(p);
		return;
	}
	log_info("provider=%s event=auth user=%s mechanism=%s result=failed "
	    "reply=\"%u %s\"", p->name, fetch_provider_who(p), mech,
	    p->reply.code, p->reply.text);
	fetch_provider_fail(p, fetch_reply_class(&p->reply) == 4 ?
	    FETCH_EXIT_SERVER : FETCH_EXIT_AUTH, "authentication failed: %u %s",
	    p->reply.code, p->reply.text);
}

/* fetch_provider_orphan - the io's callback until the relay takes it */
static void
fetch_provider_orphan(struct io *io, enum io_event ev, void *arg)
{
	(void)io;
	(void)ev;
	(void)arg;
}

/* fetch_provider_reply_atrn - RFC 2645's answer: reverse, or why not */
static void
fetch_provider_reply_atrn(struct fetch_provider *p)
{
	enum fetch_exit exit = fetch_provider_atrn_exit(p->reply.code);

	log_info("provider=%s event=atrn domains=%s reply=\"%u %s\"",
	    p->name, p->domains != NULL ? p->domains : "(all)",
	    p->reply.code, p->reply.text);
	if (p->reply.code == 250) {
		/* RFC 2645 section 4: we are the server now */
		p->result.exit = FETCH_EXIT_DELIVERED;
		p->result.reversed = 1;
		p->result.io = p->io;
		p->io = NULL;
		/* the relay takes it from done(); nothing is read till then */
		io_pause_read(p->result.io);
		io_set_callback(p->result.io, fetch_provider_orphan, NULL);
		fetch_provider_finish(p);
		return;
	}
	if (exit == FETCH_EXIT_NO_MAIL) {
		p->result.exit = FETCH_EXIT_NO_MAIL;
		fetch_provider_quit(p);
		return;
	}
	fetch_provider_fail(p, exit, "ATRN %s: %u %s",
	    p->reply.code == 451 ? "busy" : exit == FETCH_EXIT_AUTH ?
	    "refused" : "failed", p->reply.code, p->reply.text);
}

/* fetch_provider_reply_etrn - one domain's answer; then the next */
static void
fetch_provider_reply_etrn(struct fetch_provider *p)
{
	enum fetch_exit exit = fetch_provider_etrn_exit(p->reply.code);
	const char *d = p->etrn_list[p->etrn_next++];
	unsigned long n;

	log_info("provider=%s event=etrn domain=%s reply=\"%u %s\"", p->name,
	    d, p->reply.code, p->reply.text);
	if (exit == FETCH_EXIT_DELIVERED) {
		p->result.etrn_started++;
		if (p->reply.code == 253) {
			n = strtoul(p->reply.text, NULL, 10);
			p->result.etrn_pending += n;
		}
	}
	if (!p->etrn_any)
		p->result.exit = exit;
	else
		p->result.exit = fetch_provider_etrn_worse(p->result.exit,
		    exit);
	p->etrn_any = 1;
	if ((exit == FETCH_EXIT_AUTH || exit == FETCH_EXIT_SERVER) &&
	    p->result.error[0] == '\0')
		(void)snprintf(p->result.error, sizeof(p->result.error),
		    "ETRN %s: %u %.300s", d, p->reply.code, p->reply.text);
	fetch_provider_etrn_next(p);
}

/* fetch_provider_reply_quit - 221, or anything: close */
static void
fetch_provider_reply_quit(struct fetch_provider *p)
{
	fetch_provider_close(p);
}

static const fetch_provider_reply_fn
fetch_provider_replies[FETCH_PROVIDER_STATE_COUNT] = {
	[FETCH_PROVIDER_STATE_GREETING] = fetch_provider_reply_greeting,
	[FETCH_PROVIDER_STATE_EHLO] = fetch_provider_reply_ehlo,
	[FETCH_PROVIDER_STATE_STARTTLS] = fetch_provider_reply_starttls,
	[FETCH_PROVIDER_STATE_AUTH] = fetch_provider_reply_auth,
	[FETCH_PROVIDER_STATE_ATRN] = fetch_provider_reply_atrn,
	[FETCH_PROVIDER_STATE_ETRN] = fetch_provider_reply_etrn,
	[FETCH_PROVIDER_STATE_QUIT] = fetch_provider_reply_quit,
};

/* fetch_provider_reply - one whole reply: 421 ends it, else by state */
static void
fetch_provider_reply(struct fetch_provider *p)
{
	log_debug("provider=%s event=provider-reply state=%s reply=\"%u %s\"",
	    p->name, fetch_provider_state_names[p->state], p->reply.code,
	    p->state == FETCH_PROVIDER_STATE_AUTH && p->reply.code == 334 ?
	    "(SASL data not logged)" : p->reply.text);
	if (p->reply.code == 421 && p->state != FETCH_PROVIDER_STATE_QUIT) {
		/* RFC 5321 3.8: the server is closing the channel */
		fetch_provider_lost(p, "the server closed the session while "
		    "%s: 421 %s", fetch_provider_descriptions[p->state],
		    p->reply.text);
		return;
	}
	fetch_provider_replies[p->state](p);
}

/* fetch_provider_input - take whole replies while a state waits for one */
static void
fetch_provider_input(struct fetch_provider *p)
{
	const char *text, *err;
	size_t len;
	int toolong;
	char *line;

	while (!p->ending && p->io != NULL &&
	    fetch_provider_reads[p->state]) {
		line = io_getline(p->io, FETCH_REPLY_LINE_MAX, &len, &toolong);
		if (line == NULL)
			return;
		if (toolong) {
			fetch_provider_lost(p, "the server sent a reply line "
			    "over %u octets while %s", FETCH_REPLY_LINE_MAX,
			    fetch_provider_descriptions[p->state]);
			return;
		}
		switch (fetch_reply_line(&p->reply, line, len, &text, &err)) {
		case FETCH_REPLY_BAD:
			fetch_provider_lost(p, "the server sent a bad reply "
			    "while %s: %s",
			    fetch_provider_descriptions[p->state], err);
			return;
		case FETCH_REPLY_MORE:
			if (p->state == FETCH_PROVIDER_STATE_EHLO &&
			    p->reply.nlines > 1)
				fetch_reply_ext_line(&p->ext, text);
			continue;
		case FETCH_REPLY_DONE:
			if (p->state == FETCH_PROVIDER_STATE_EHLO &&
			    p->reply.nlines > 1)
				fetch_reply_ext_line(&p->ext, text);
			break;
		}
		fetch_provider_reply(p);
		fetch_reply_reset(&p->reply);
	}
}

/* fetch_provider_tls_ready - the handshake is done: log it, go on */
static void
fetch_provider_tls_ready(struct fetch_provider *p)
{
	struct io_tls_info ti;
	int implicit = p->tls_mode == FETCH_TLS_IMPLICIT;

	p->tls_on = 1;
	p->result.tls = 1;
	if (io_tls_info(p->io, &ti) == 0) {
		p->tls_bits = ti.bits > 0 ? (unsigned)ti.bits : 1;
		(void)strlcpy(p->result.tls_version, ti.version,
		    sizeof(p->result.tls_version));
		log_info("provider=%s event=provider-tls version=%s cipher=%s "
		    "bits=%d verified=%s%s%s%s", p->name, ti.version,
		    ti.cipher, ti.bits, ti.peer_verified ? "yes" : "no",
		    ti.peer_verified ? "" : " reason=\"",
		    ti.peer_verified ? "" : ti.verify_error,
		    ti.peer_verified ? "" : "\"");
	} else
		p->tls_bits = 1;
	if (implicit) {
		fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_GREETING);
		return;
	}
	/* RFC 3207 4.2: forget what EHLO said, ask again */
	memset(&p->ext, 0, sizeof(p->ext));
	if (fetch_provider_cmd(p, 0, "EHLO %s", p->helo) == 0)
		fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_EHLO);
}

/* fetch_provider_connected - TCP is up: TLS first, or wait for 220 */
static void
fetch_provider_connected(struct fetch_provider *p)
{
	(void)strlcpy(p->result.addr, io_peer_addr(p->io),
	    sizeof(p->result.addr));
	(void)io_set_nodelay(p->io, 1);
	log_debug("provider=%s event=provider-connected addr=%s", p->name,
	    p->result.addr);
	if (p->tls_mode != FETCH_TLS_IMPLICIT) {
		fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_GREETING);
		return;
	}
	if (io_starttls_client(p->io, p->tls_ctx, p->tls_name) == -1) {
		fetch_provider_lost(p, "%s", io_error(p->io));
		return;
	}
	fetch_provider_enter_state(p, FETCH_PROVIDER_STATE_HANDSHAKE);
}

/* fetch_provider_io - the one callback for everything on the connection */
static void
fetch_provider_io(struct io *io, enum io_event ev, void *arg)
{
	struct fetch_provider *p = arg;
	const char *what = fetch_provider_descriptions[p->state];

	if (p->ending)
		return;
	switch (ev) {
	case IO_CONNECTED:
		fetch_provider_connected(p);
		break;
	case IO_TLSREADY:
		fetch_provider_tls_ready(p);
		break;
	case IO_DATAIN:
		fetch_provider_input(p);
		break;
	case IO_LOWAT:
		break;
	case IO_DISCONNECTED:
		fetch_provider_lost(p, "the server closed the connection while"
		    " %s", what);
		break;
	case IO_TIMEOUT:
		if (p->state == FETCH_PROVIDER_STATE_SASL)
			break;	/* our own work: the server is not waited for */
		fetch_provider_lost(p, "timeout (%u s) while %s",
		    p->timeout_ms / 1000, what);
		break;
	case IO_ERROR:
		if (p->state == FETCH_PROVIDER_STATE_CONNECT)
			fetch_provider_lost(p, "cannot connect: %s",
			    io_error(io));
		else if (p->state == FETCH_PROVIDER_STATE_HANDSHAKE)
			fetch_provider_lost(p, "the server's certificate or the"
			    " TLS handshake was refused: %s", io_error(io));
		else
			fetch_provider_lost(p, "connection error while %s: %s",
			    what, io_error(io));
		break;
	}
}

/* fetch_provider_split - the ETRN domains of "d1,d2" */
static int
fetch_provider_split(struct fetch_provider *p)
{
	const char *s = p->domains, *comma;
	size_t n;

	while (s != NULL && *s != '\0') {
		while (*s == ' ' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		comma = strchr(s, ',');
		n = comma != NULL ? (size_t)(comma - s) : strlen(s);
		while (n > 0 && s[n - 1] == ' ')
			n--;
		if (p->etrn_n == FETCH_PROVIDER_ETRN_MAX)
			return -1;
		p->etrn_list[p->etrn_n++] = xstrndup(s, n);
		s += n;
	}
	return p->etrn_n > 0 ? 0 : -1;
}

/* fetch_provider_start - connect; done() follows from the loop */
struct fetch_provider *
fetch_provider_start(const struct fetch_provider_params *prm,
    fetch_provider_done_fn done, void *arg)
{
	struct fetch_provider *p = xcalloc(1, sizeof(*p));
	int v6 = strchr(prm->host, ':') != NULL;

	(void)snprintf(p->name, sizeof(p->name), "%s%s%s:%u", v6 ? "[" : "",
	    prm->host, v6 ? "]" : "", prm->port);
	p->host = xstrdup(prm->host);
	p->port = prm->port;
	p->tls_mode = prm->tls;
	p->tls_ctx = prm->tls_ctx;
	p->tls_name = xstrdup(prm->tls_name != NULL ? prm->tls_name :
	    prm->host);
	p->user = prm->user != NULL ? xstrdup(prm->user) : NULL;
	p->password = prm->password != NULL ? xstrdup(prm->password) : NULL;
	p->client_cert = prm->client_cert;
	p->domains = prm->domains != NULL ? xstrdup(prm->domains) : NULL;
	p->etrn = prm->etrn;
	p->helo = xstrdup(prm->helo);
	p->timeout_ms = prm->timeout_ms;
	p->pool = prm->pool;
	p->done = done;
	p->arg = arg;
	buf_init(&p->sasl_out);
	buf_init(&p->challenge);
	fetch_reply_reset(&p->reply);
	p->result.exit = FETCH_EXIT_SERVER;
	p->state = FETCH_PROVIDER_STATE_CONNECT;
	if ((p->etrn && fetch_provider_split(p) == -1) ||
	    (p->user != NULL && p->password == NULL && !p->client_cert) ||
	    (p->client_cert && p->tls_mode == FETCH_TLS_NONE) ||
	    (p->tls_mode != FETCH_TLS_NONE && p->tls_ctx == NULL)) {
		p->result.exit = FETCH_EXIT_USAGE;
		(void)strlcpy(p->result.error, "bad parameters for the "
		    "provider session", sizeof(p->result.error));
		fetch_provider_finish(p);
		return p;
	}
	p->io = io_connect(p->host, p->port, p->timeout_ms, fetch_provider_io,
	    p);
	io_set_timeout(p->io, p->timeout_ms);
	return p;
}

/* fetch_provider_abort - close now (a signal); done() follows */
void
fetch_provider_abort(struct fetch_provider *p)
{
	if (p == NULL || p->ending)
		return;
	if (p->result.error[0] == '\0') {
		p->result.exit = FETCH_EXIT_SERVER;
		(void)snprintf(p->result.error, sizeof(p->result.error),
		    "interrupted while %s",
		    fetch_provider_descriptions[p->state]);
	}
	fetch_provider_close(p);
}

/* fetch_provider_free - release; the caller's pointer is cleared */
void
fetch_provider_free(struct fetch_provider **pp)
{
	struct fetch_provider *p = *pp;
	size_t i;

	if (p == NULL)
		return;
	*pp = NULL;
	io_free(&p->io);
	fetch_sasl_free(&p->sasl);
	buf_release(&p->sasl_out);
	buf_release(&p->challenge);
	for (i = 0; i < p->etrn_n; i++)
		free(p->etrn_list[i]);
	if (p->password != NULL) {
		explicit_bzero(p->password, strlen(p->password));
		free(p->password);
	}
	free(p->host);
	free(p->tls_name);
	free(p->user);
	free(p->domains);
	free(p->helo);
	free(p);
}
