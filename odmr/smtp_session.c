/*
 * NAME
 *	smtp_session 3 - the MX side's ESMTP server session
 * SYNOPSIS
 *	#include "smtp_session.h"
 * DESCRIPTION
 *	One session per client connection. Its state is an enum plus a
 *	names table, and every change of state goes through
 *	smtp_enter_state(), which logs old -> new at debug level. One io
 *	callback (smtp_session_io) receives every event of the connection.
 *
 *	Commands come from the command table smtp_cmds[]: the verb, a
 *	check function that refuses it in the wrong state with 503 5.5.1
 *	(RFC 5321 section 4.1.4), and a proceed function. Lines are read
 *	with io_getline(), bounded by the longest line any announced
 *	extension allows (RFC 5321 section 4.5.3.1.4), and parsed by
 *	smtp_parse (no policy there).
 *
 *	PIPELINING (RFC 2920) needs no special code: commands are taken
 *	from the input buffer one at a time and replies are queued in
 *	order. Replies go out when the loop regains control, so a whole
 *	pipelined group is answered in one write. A command that needs the
 *	store (RCPT, the end of the text) stops reading until its job ends
 *	(smtp_job_start/smtp_job_end); the job's reply is queued before
 *	the next command is read, so the order holds.
 *
 *	Every error reply counts towards max_errors; the error that
 *	reaches it is answered with 421 4.7.0 and the connection closes.
 *	A session that waits longer than command_timeout (data_timeout in
 *	the text) gets 421 4.4.2 (RFC 5321 section 4.5.3.2).
 *
 *	STARTTLS (RFC 3207) throws away whatever the client pipelined
 *	after the command in plaintext, and afterwards the session is back
 *	to its state before EHLO.
 *
 *	There is one teardown path, smtp_session_free(). If a store job is
 *	running, the connection is closed at once and the session freed
 *	when the job reports back.
 * DIAGNOSTICS
 *	One key=value log line per event, each with session=ID.
 * SEE ALSO
 *	smtp_txn(3), smtp_data(3), smtp_server(3), RFC 5321, RFC 2920,
 *	RFC 3207, RFC 2034
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compat.h"
#include "io.h"
#include "log.h"
#include "xmalloc.h"

#include "odmrd.h"
#include "smtp_parse.h"
#include "smtp_session.h"
#include "smtp_spool.h"

#define SMTP_REPLY_MAX		512	/* one reply line, with CRLF */
#define SMTP_EXTRA_MAIL		(SMTP_PARSE_MAIL_LINE_MAX - SMTP_PARSE_LINE_MAX)

const char *const smtp_state_names[SMTP_STATE_COUNT] = {
	[SMTP_STATE_GREETING] = "greeting",
	[SMTP_STATE_HELO] = "helo",
	[SMTP_STATE_READY] = "ready",
	[SMTP_STATE_MAIL] = "mail",
	[SMTP_STATE_RCPT] = "rcpt",
	[SMTP_STATE_DATA] = "data",
	[SMTP_STATE_BDAT] = "bdat",
	[SMTP_STATE_COMMIT] = "commit",
	[SMTP_STATE_TLS] = "tls",
	[SMTP_STATE_AUTH] = "auth",
	[SMTP_STATE_ATRN] = "atrn",
	[SMTP_STATE_ETRN] = "etrn",
	[SMTP_STATE_TURN] = "turn",
	[SMTP_STATE_QUIT] = "quit",
};

struct smtp_cmd {
	enum smtp_parse_verb verb;
	/* NULL when the verb may go on, else the 503 text */
	const char	*(*check)(const struct smtp_session *);
	void		(*proceed)(struct smtp_session *,
			    const struct smtp_parse_cmd *);
};

static void smtp_session_io(struct io *, enum io_event, void *);
static void smtp_session_free(struct smtp_session *);
static void smtp_session_input(struct smtp_session *);

/* smtp_enter_state - change state, and say so at debug level */
void
smtp_enter_state(struct smtp_session *s, enum smtp_state state)
{
	if (s->state == state)
		return;
	log_debug("session=%s event=state from=%s to=%s", s->id,
	    smtp_state_names[s->state], smtp_state_names[state]);
	s->state = state;
	if (s->io != NULL) {
		io_set_timeout(s->io, (unsigned)((state == SMTP_STATE_DATA ||
		    state == SMTP_STATE_BDAT ? s->d->conf->data_timeout :
		    s->d->conf->command_timeout) * 1000));
		smtp_deadline_state(s);
	}
}

/* smtp_vreply - queue one reply line */
static void
smtp_vreply(struct smtp_session *s, unsigned code, const char *fmt,
    va_list ap)
{
	char text[SMTP_REPLY_MAX];
	int n;

	n = vsnprintf(text, sizeof(text) - 6, fmt, ap);
	if (n < 0)
		(void)strlcpy(text, "Internal error", sizeof(text));
	/* a reply is one line: never let client text break it */
	for (char *p = text; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	(void)io_printf(s->io, "%03u %s\r\n", code, text);
}

/* smtp_reply - queue a reply: code, then the text with its enhanced code */
void
smtp_reply(struct smtp_session *s, unsigned code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtp_vreply(s, code, fmt, ap);
	va_end(ap);
}

/* smtp_session_close_after - close once the reply queued last is sent */
void
smtp_session_close_after(struct smtp_session *s)
{
	io_pause_read(s->io);
	smtp_enter_state(s, SMTP_STATE_QUIT);
}

/* smtp_reject - an error reply that counts towards max_errors */
void
smtp_reject(struct smtp_session *s, const char *cmd, unsigned code,
    const char *fmt, ...)
{
	char text[SMTP_REPLY_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	s->errors++;
	log_info("session=%s event=reject cmd=%s code=%u reason=\"%s\""
	    " errors=%u", s->id, cmd, code, text, s->errors);
	if (s->errors >= s->d->conf->max_errors) {
		log_info("session=%s event=too-many-errors errors=%u",
		    s->id, s->errors);
		smtp_reply(s, 421, "4.7.0 %s Error: too many errors",
		    s->d->conf->hostname);
		smtp_session_close_after(s);
		return;
	}
	smtp_reply(s, code, "%s", text);
}

/* smtp_job_start - a store job runs for this session: stop reading */
void
smtp_job_start(struct smtp_session *s)
{
	s->job = 1;
	io_pause_read(s->io);
}

/* smtp_job_end - the job reported back; -1 when the session is gone */
int
smtp_job_end(struct smtp_session *s)
{
	s->job = 0;
	if (s->dead) {
		smtp_session_free(s);
		return -1;
	}
	return 0;
}

/* smtp_session_resume - read commands again after a job's reply */
void
smtp_session_resume(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_QUIT)
		return;
	if (s->shutdown && (s->state == SMTP_STATE_HELO ||
	    s->state == SMTP_STATE_READY)) {
		smtp_session_shutdown(s);
		return;
	}
	smtp_deadline_wait(s);
	io_resume_read(s->io);
}

/* smtp_check_none - verbs allowed in every state */
static const char *
smtp_check_none(const struct smtp_session *s)
{
	(void)s;
	return NULL;
}

/* smtp_check_mail - MAIL needs EHLO/HELO and no transaction */
static const char *
smtp_check_mail(const struct smtp_session *s)
{
	if (s->state == SMTP_STATE_HELO || s->state == SMTP_STATE_GREETING)
		return "5.5.1 Error: send HELO/EHLO first";
	if (s->state != SMTP_STATE_READY)
		return "5.5.1 Error: nested MAIL command";
	return NULL;
}

/* smtp_check_rcpt - RCPT needs MAIL */
static const char *
smtp_check_rcpt(const struct smtp_session *s)
{
	if (s->state == SMTP_STATE_HELO || s->state == SMTP_STATE_GREETING)
		return "5.5.1 Error: send HELO/EHLO first";
	if (s->state != SMTP_STATE_MAIL && s->state != SMTP_STATE_RCPT)
		return "5.5.1 Error: need MAIL command";
	/* RFC 3030: the recipients are fixed once the text has begun */
	if (s->txn.bdat)
		return "5.5.1 Error: RCPT after BDAT";
	return NULL;
}

/* smtp_check_starttls - RFC 3207: not twice, not in a transaction */
static const char *
smtp_check_starttls(const struct smtp_session *s)
{
	if (s->tls)
		return "5.5.1 Error: TLS already active";
	if (s->state == SMTP_STATE_MAIL || s->state == SMTP_STATE_RCPT)
		return "5.5.1 Error: STARTTLS not allowed in a mail transaction";
	return NULL;
}

/* smtp_helo_common - EHLO and HELO: check the name, reset, remember it */
static int
smtp_helo_common(struct smtp_session *s, const struct smtp_parse_cmd *cmd,
    int esmtp)
{
	struct smtp_parse_helo helo;
	const char *err;
	enum smtp_parse_status st;
	char flags[256];
	unsigned bit;

	st = smtp_parse_helo(cmd->arg, cmd->arglen, &helo, &err);
	if (st != SMTP_PARSE_OK) {
		smtp_reject(s, esmtp ? "EHLO" : "HELO",
		    smtp_parse_status_code(st), "%s %s",
		    smtp_parse_status_enhanced(st), err);
		return -1;
	}
	flags[0] = '\0';
	for (bit = 1; bit < (1u << SMTP_PARSE_HELO_FLAG_COUNT); bit <<= 1)
		if (helo.flags & bit) {
			if (flags[0] != '\0')
				(void)strlcat(flags, ",", sizeof(flags));
			(void)strlcat(flags, smtp_parse_helo_flag_name(bit),
			    sizeof(flags));
		}
	log_debug("session=%s event=%s name=\"%s\"%s%s", s->id,
	    esmtp ? "ehlo" : "helo", helo.name, flags[0] ? " odd=" : "",
	    flags);
	smtp_txn_reset(s);
	free(s->helo);
	s->helo = xstrdup(helo.name);
	s->esmtp = esmtp;
	smtp_enter_state(s, SMTP_STATE_READY);
	return 0;
}

/* smtp_cmd_ehlo - EHLO: the extensions we offer (RFC 5321 4.1.1.1) */
static void
smtp_cmd_ehlo(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	const struct odmr_conf *c = s->d->conf;

	char mechs[128];

	if (smtp_helo_common(s, cmd, 1) == -1)
		return;
	(void)io_printf(s->io, "250-%s\r\n", c->hostname);
	if (s->mode == SMTP_MODE_ODMR) {
		/* RFC 2645 section 5; fetchmail wants no line under 4 octets */
		smtp_auth_mechs(s, mechs, sizeof(mechs));
		(void)io_printf(s->io, "250-AUTH %s\r\n250-ATRN\r\n"
		    "250-ETRN\r\n", mechs);
		if (s->d->tls != NULL && !s->tls)
			(void)io_printf(s->io, "250-STARTTLS\r\n");
		(void)io_printf(s->io, "250 HELP\r\n");
		return;
	}
	(void)io_printf(s->io, "250-SIZE %llu\r\n",
	    (unsigned long long)c->max_message_size);
	(void)io_printf(s->io, "250-PIPELINING\r\n250-8BITMIME\r\n"
	    "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n"
	    "250-CHUNKING\r\n250-BINARYMIME\r\n250-ETRN\r\n");
	if (s->d->tls != NULL && !s->tls)
		(void)io_printf(s->io, "250-STARTTLS\r\n");
	smtp_auth_mechs(s, mechs, sizeof(mechs));
	(void)io_printf(s->io, "250-AUTH %s\r\n", mechs);
	(void)io_printf(s->io, "250 HELP\r\n");
}

/* smtp_cmd_helo - HELO: plain SMTP */
static void
smtp_cmd_helo(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	if (smtp_helo_common(s, cmd, 0) == -1)
		return;
	smtp_reply(s, 250, "%s", s->d->conf->hostname);
}

/* smtp_cmd_mail - MAIL: see smtp_txn.c */
static void
smtp_cmd_mail(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	smtp_txn_mail(s, cmd->arg, cmd->arglen);
}

/* smtp_cmd_rcpt - RCPT: see smtp_txn.c */
static void
smtp_cmd_rcpt(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	smtp_txn_rcpt(s, cmd->arg, cmd->arglen);
}

/* smtp_cmd_data - DATA: see smtp_data.c */
static void
smtp_cmd_data(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	(void)cmd;
	smtp_data_start(s);
}

/* smtp_cmd_bdat - BDAT: see smtp_data.c */
static void
smtp_cmd_bdat(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	smtp_data_bdat(s, cmd->arg, cmd->arglen);
}

/* smtp_cmd_rset - RSET: drop the transaction (RFC 5321 4.1.1.5) */
static void
smtp_cmd_rset(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	(void)cmd;
	smtp_txn_reset(s);
	smtp_enter_state(s, s->helo != NULL ? SMTP_STATE_READY :
	    SMTP_STATE_HELO);
	smtp_reply(s, 250, "2.0.0 Ok");
}

/* smtp_cmd_noop - NOOP, whatever its argument (RFC 5321 4.1.1.9) */
static void
smtp_cmd_noop(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, 250, "2.0.0 Ok");
}

/* smtp_cmd_quit - QUIT: 221, then close once it is sent */
static void
smtp_cmd_quit(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, 221, "2.0.0 %s closing connection",
	    s->d->conf->hostname);
	smtp_session_close_after(s);
}

/* smtp_cmd_help - HELP */
static void
smtp_cmd_help(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	(void)cmd;
	(void)io_printf(s->io, "214-2.0.0 This is odmrd, the mail relay for"
	    " customer domains at %s.\r\n", s->d->conf->hostname);
	if (s->mode == SMTP_MODE_ODMR)
		(void)io_printf(s->io, "214-2.0.0 Commands: EHLO HELO AUTH ATRN"
		    " ETRN RSET NOOP QUIT HELP%s\r\n",
		    s->d->tls != NULL ? " STARTTLS" : "");
	else
		(void)io_printf(s->io, "214-2.0.0 Commands: EHLO HELO MAIL RCPT"
		    " DATA BDAT RSET NOOP QUIT HELP VRFY AUTH ETRN%s\r\n",
		    s->d->tls != NULL ? " STARTTLS" : "");
	smtp_reply(s, 214, "2.0.0 See RFC 5321");
}

/* smtp_cmd_vrfy - VRFY: RFC 5321 3.5.3 allows 252, never a disclosure */
static void
smtp_cmd_vrfy(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, 252, "2.5.0 Cannot VRFY user, but will accept message"
	    " and attempt delivery");
}

/* smtp_cmd_expn - EXPN: this node has no lists to expand */
static void
smtp_cmd_expn(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	(void)cmd;
	smtp_reject(s, "EXPN", 502, "5.5.1 EXPN is not supported");
}

/* smtp_cmd_starttls - STARTTLS: 220, discard pipelined input, handshake */
static void
smtp_cmd_starttls(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	size_t thrown;

	(void)cmd;
	if (s->d->tls == NULL) {
		smtp_reject(s, "STARTTLS", 502,
		    "5.5.1 Error: STARTTLS is not offered here");
		return;
	}
	smtp_reply(s, 220, "2.0.0 Ready to start TLS");
	/* RFC 3207 section 6: nothing sent before the handshake counts */
	if ((thrown = io_discard_input(s->io)) > 0)
		log_info("session=%s event=starttls-injection discarded=%zu"
		    " reason=\"plaintext pipelined after STARTTLS\"", s->id,
		    thrown);
	if (io_starttls_server(s->io, s->d->tls) == -1) {
		log_warnx("session=%s event=tls-error reason=\"%s\"", s->id,
		    io_error(s->io));
		smtp_session_close_after(s);
		return;
	}
	smtp_enter_state(s, SMTP_STATE_TLS);
}

/*
 * smtp_cmd_auth - AUTH (see smtp_auth.c): on the ODMR port for ATRN, and
 * on the MX port too, where it names the customer for ETRN's owner
 * mode; it never lets anyone relay
 */
static void
smtp_cmd_auth(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	smtp_auth_cmd(s, cmd->arg, cmd->arglen);
}

/* smtp_cmd_atrn - ATRN: on the ODMR port (see smtp_atrn.c) */
static void
smtp_cmd_atrn(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	if (s->mode != SMTP_MODE_ODMR) {
		smtp_reject(s, "ATRN", 502, "5.5.1 Error: ATRN is offered only"
		    " on the ODMR port (RFC 2645)");
		return;
	}
	smtp_atrn_cmd(s, cmd->arg, cmd->arglen);
}

/* smtp_cmd_etrn - ETRN: see smtp_etrn.c */
static void
smtp_cmd_etrn(struct smtp_session *s, const struct smtp_parse_cmd *cmd)
{
	smtp_etrn_cmd(s, cmd->arg, cmd->arglen);
}

static const struct smtp_cmd smtp_cmds[SMTP_PARSE_VERB_COUNT] = {
	[SMTP_PARSE_VERB_EHLO] = { SMTP_PARSE_VERB_EHLO, smtp_check_none,
	    smtp_cmd_ehlo },
	[SMTP_PARSE_VERB_HELO] = { SMTP_PARSE_VERB_HELO, smtp_check_none,
	    smtp_cmd_helo },
	[SMTP_PARSE_VERB_MAIL] = { SMTP_PARSE_VERB_MAIL, smtp_check_mail,
	    smtp_cmd_mail },
	[SMTP_PARSE_VERB_RCPT] = { SMTP_PARSE_VERB_RCPT, smtp_check_rcpt,
	    smtp_cmd_rcpt },
	/* DATA and BDAT check their own state: BDAT must eat its chunk */
	[SMTP_PARSE_VERB_DATA] = { SMTP_PARSE_VERB_DATA, smtp_check_none,
	    smtp_cmd_data },
	[SMTP_PARSE_VERB_BDAT] = { SMTP_PARSE_VERB_BDAT, smtp_check_none,
	    smtp_cmd_bdat },
	[SMTP_PARSE_VERB_RSET] = { SMTP_PARSE_VERB_RSET, smtp_check_none,
	    smtp_cmd_rset },
	[SMTP_PARSE_VERB_NOOP] = { SMTP_PARSE_VERB_NOOP, smtp_check_none,
	    smtp_cmd_noop },
	[SMTP_PARSE_VERB_QUIT] = { SMTP_PARSE_VERB_QUIT, smtp_check_none,
	    smtp_cmd_quit },
	[SMTP_PARSE_VERB_HELP] = { SMTP_PARSE_VERB_HELP, smtp_check_none,
	    smtp_cmd_help },
	[SMTP_PARSE_VERB_VRFY] = { SMTP_PARSE_VERB_VRFY, smtp_check_none,
	    smtp_cmd_vrfy },
	[SMTP_PARSE_VERB_EXPN] = { SMTP_PARSE_VERB_EXPN, smtp_check_none,
	    smtp_cmd_expn },
	[SMTP_PARSE_VERB_STARTTLS] = { SMTP_PARSE_VERB_STARTTLS,
	    smtp_check_starttls, smtp_cmd_starttls },
	[SMTP_PARSE_VERB_AUTH] = { SMTP_PARSE_VERB_AUTH, smtp_check_none,
	    smtp_cmd_auth },
	[SMTP_PARSE_VERB_ETRN] = { SMTP_PARSE_VERB_ETRN, smtp_check_none,
	    smtp_cmd_etrn },
	[SMTP_PARSE_VERB_ATRN] = { SMTP_PARSE_VERB_ATRN, smtp_check_none,
	    smtp_cmd_atrn },
};

/* smtp_odmr_refused - verbs the ODMR port answers with 502 */
static int
smtp_odmr_refused(enum smtp_parse_verb v)
{
	switch (v) {
	case SMTP_PARSE_VERB_MAIL:
	case SMTP_PARSE_VERB_RCPT:
	case SMTP_PARSE_VERB_DATA:
	case SMTP_PARSE_VERB_BDAT:
	case SMTP_PARSE_VERB_VRFY:
	case SMTP_PARSE_VERB_EXPN:
		return 1;
	default:
		return 0;
	}
}

/* smtp_session_command - parse one command line and run its verb */
static void
smtp_session_command(struct smtp_session *s, const char *line, size_t len)
{
	const struct odmr_conf *c = s->d->conf;
	struct smtp_parse_cmd cmd;
	const struct smtp_cmd *def;
	const char *err, *why;
	enum smtp_parse_status st;

	s->commands++;
	st = smtp_parse_command_ex(line, len,
	    (size_t)c->max_command_line - SMTP_PARSE_LINE_MAX, &cmd, &err);
	if (st != SMTP_PARSE_OK) {
		/* BDAT with a bad size cannot be skipped: RFC 3030 says
		 * the session is then out of step, so say so and go on */
		smtp_reject(s, st == SMTP_PARSE_UNKNOWN_COMMAND ? "unknown" :
		    smtp_parse_verb_name(cmd.verb),
		    smtp_parse_status_code(st), "%s Error: %s",
		    smtp_parse_status_enhanced(st), err);
		return;
	}
	def = &smtp_cmds[cmd.verb];
	if (s->mode == SMTP_MODE_ODMR && smtp_odmr_refused(cmd.verb)) {
		/* SPEC.md: the ODMR port takes no mail (RFC 2645 4) */
		smtp_reject(s, smtp_parse_verb_name(cmd.verb), 502, "5.5.1 Error:"
		    " %s is not accepted on the ODMR port",
		    smtp_parse_verb_name(cmd.verb));
		return;
	}
	if ((why = def->check(s)) != NULL) {
		smtp_reject(s, smtp_parse_verb_name(cmd.verb), 503, "%s", why);
		return;
	}
	def->proceed(s, &cmd);
}

/* smtp_session_input - take complete command lines while we may */
static void
smtp_session_input(struct smtp_session *s)
{
	const struct odmr_conf *c = s->d->conf;
	size_t len, max, avail;
	int toolong;
	char *line;

	max = (size_t)c->max_command_line + SMTP_EXTRA_MAIL - 2;
	for (;;) {
		if (s->job || s->dead)
			return;
		switch (s->state) {
		case SMTP_STATE_DATA:
		case SMTP_STATE_BDAT:
			avail = io_datalen(s->io);
			smtp_data_input(s);
			if (s->state == SMTP_STATE_DATA ||
			    s->state == SMTP_STATE_BDAT) {
				if (!s->dead && s->io != NULL)
					smtp_deadline_progress(s, avail -
					    io_datalen(s->io));
				return;
			}
			if (s->job || s->dead)
				return;
			continue;
		case SMTP_STATE_AUTH:
			avail = io_datalen(s->io);
			smtp_auth_input(s);
			/* a response line was taken: its wait is over */
			if (!s->dead && s->io != NULL &&
			    io_datalen(s->io) != avail)
				smtp_deadline_stop(s);
			if (s->state == SMTP_STATE_AUTH && !s->job && !s->dead)
				smtp_deadline_wait(s);
			if (s->state == SMTP_STATE_AUTH || s->job || s->dead)
				return;
			continue;
		case SMTP_STATE_COMMIT:
		case SMTP_STATE_TLS:
		case SMTP_STATE_ATRN:
		case SMTP_STATE_ETRN:
		case SMTP_STATE_TURN:
		case SMTP_STATE_QUIT:
			return;
		case SMTP_STATE_GREETING:
			smtp_enter_state(s, SMTP_STATE_HELO);
			break;
		default:
			break;
		}
		/* replies the client has not read: take no more commands */
		if (io_output_full(s->io)) {
			smtp_deadline_wait(s);
			return;
		}
		if ((line = io_getline(s->io, max, &len, &toolong)) == NULL) {
			smtp_deadline_wait(s);
			return;
		}
		smtp_deadline_stop(s);
		if (toolong) {
			s->commands++;
			smtp_reject(s, "unknown", 500,
			    "5.5.2 Error: line too long");
			continue;
		}
		smtp_session_command(s, line, len);
	}
}

/* smtp_session_log_text - a certificate's text, safe in a quoted value */
static void
smtp_session_log_text(char *out, size_t outsz, const char *in)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < outsz; i++)
		out[i] = in[i] < 0x20 || in[i] > 0x7e || in[i] == '"' ||
		    in[i] == '\\' ? '?' : in[i];
	out[i] = '\0';
}

/* smtp_session_tls_ready - the handshake is done: back to the start */
static void
smtp_session_tls_ready(struct smtp_session *s)
{
	struct io_tls_info info;
	char cn[IO_TLS_CN_MAX];
	const char *cert = "none", *why;

	s->tls = 1;
	cn[0] = '\0';
	if (io_tls_info(s->io, &info) == 0) {
		(void)strlcpy(s->tls_version, info.version,
		    sizeof(s->tls_version));
		(void)strlcpy(s->tls_cipher, info.cipher,
		    sizeof(s->tls_cipher));
		s->tls_bits = info.bits;
		smtp_session_log_text(cn, sizeof(cn), info.cn);
		if (info.peer_cert)
			cert = info.peer_verified ? "verified" : "unverified";
		/* RFC 4422 A: the identity TLS established, for EXTERNAL */
		if (info.peer_verified && odmr_sasl_user_valid(info.cn,
		    &why) == 0)
			(void)strlcpy(s->tls_external, info.cn,
			    sizeof(s->tls_external));
	}
	log_info("session=%s event=%s version=%s cipher=%s bits=%d"
	    " client_cert=%s%s%s%s%s%s%s", s->id, s->implicit_tls ? "tls" :
	    "starttls", s->tls_version, s->tls_cipher, s->tls_bits, cert,
	    cn[0] != '\0' ? " cn=\"" : "", cn, cn[0] != '\0' ? "\"" : "",
	    strcmp(cert, "unverified") == 0 ? " reason=\"" : "",
	    strcmp(cert, "unverified") == 0 ? info.verify_error : "",
	    strcmp(cert, "unverified") == 0 ? "\"" : "");
	if (s->implicit_tls && s->helo == NULL &&
	    s->state == SMTP_STATE_TLS && !s->greeted) {
		/* odmrs_listen: the greeting comes inside TLS */
		s->greeted = 1;
		(void)io_printf(s->io, "220 %s ESMTP\r\n",
		    s->d->conf->hostname);
		smtp_enter_state(s, SMTP_STATE_GREETING);
		smtp_session_input(s);
		return;
	}
	/* RFC 3207 section 4.2: forget everything learnt before TLS */
	smtp_txn_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	smtp_enter_state(s, SMTP_STATE_HELO);
	smtp_session_input(s);
}

/* smtp_session_lost - the connection ended without QUIT */
void
smtp_session_lost(struct smtp_session *s, const char *what)
{
	if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT ||
	    s->state == SMTP_STATE_MAIL || s->state == SMTP_STATE_RCPT)
		log_info("session=%s event=lost reason=\"%s\" state=%s"
		    " octets=%llu note=\"message not queued\"", s->id, what,
		    smtp_state_names[s->state],
		    (unsigned long long)s->txn.octets);
	else if (s->state != SMTP_STATE_QUIT)
		log_info("session=%s event=lost reason=\"%s\" state=%s",
		    s->id, what, smtp_state_names[s->state]);
	smtp_session_free(s);
}

/* smtp_session_io - the one callback for everything on the connection */
static void
smtp_session_io(struct io *io, enum io_event ev, void *arg)
{
	struct smtp_session *s = arg;

	(void)io;
	switch (ev) {
	case IO_DATAIN:
		smtp_session_input(s);
		break;
	case IO_LOWAT:
		if (s->state != SMTP_STATE_QUIT || s->job)
			break;
		/* the last reply is out: TLS says goodbye first */
		if (s->tls && !s->tls_closing) {
			s->tls_closing = 1;
			if (io_tls_shutdown(s->io) == 0)
				break;
		}
		smtp_session_free(s);
		break;
	case IO_TLSREADY:
		smtp_session_tls_ready(s);
		break;
	case IO_DISCONNECTED:
		smtp_session_lost(s, "client closed the connection");
		break;
	case IO_TIMEOUT:
		/* the io's inactivity timeout is a backstop: a deadline
		 * that is running decides itself (both may expire at once,
		 * and the second must not cut off the first one's 421) */
		if (s->job)
			smtp_session_lost(s, "timeout while sending");
		else if (!smtp_deadline_running(s))
			smtp_deadline_expired(s);
		break;
	case IO_ERROR:
		smtp_session_lost(s, io_error(s->io));
		break;
	case IO_CONNECTED:
		break;
	}
}

/* smtp_session_new - a session for an accepted connection; greets it */
struct smtp_session *
smtp_session_new(struct odmrd *d, struct smtp_server *server, int fd,
    const char *addr, enum smtp_mode mode, int implicit_tls)
{
	struct smtp_session *s;

	s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->server = server;
	s->mode = mode;
	s->implicit_tls = implicit_tls;
	odmrd_session_id(d, s->id, sizeof(s->id));
	(void)strlcpy(s->addr, addr, sizeof(s->addr));
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	if ((s->io = io_new(fd, smtp_session_io, s)) == NULL) {
		log_warnx("session=%s event=error reason=\"cannot set up the"
		    " connection\"", s->id);
		free(s);
		return NULL;
	}
	s->port = io_peer_port(s->io);
	io_set_input_max(s->io, 2 * ((size_t)d->conf->max_command_line +
	    SMTP_EXTRA_MAIL) + 2 * (size_t)d->conf->max_text_line + 4096);
	io_set_timeout(s->io, (unsigned)(d->conf->command_timeout * 1000));
	io_set_output_max(s->io, (size_t)d->conf->max_reply_backlog);
	smtp_deadline_init(s);
	log_info("session=%s event=connect client=%s port=%u service=%s",
	    s->id, s->addr, s->port, smtp_server_name(server));
	if (implicit_tls) {
		s->state = SMTP_STATE_TLS;
		if (d->tls == NULL || io_starttls_server(s->io, d->tls) == -1) {
			log_warnx("session=%s event=tls-error reason=\"%s\"",
			    s->id, d->tls == NULL ? "no TLS certificate" :
			    io_error(s->io));
			io_free(&s->io);
			smtp_deadline_free(s);
			free(s);
			return NULL;
		}
		smtp_deadline_state(s);		/* the handshake's */
		return s;
	}
	s->greeted = 1;
	s->state = SMTP_STATE_GREETING;
	(void)io_printf(s->io, "220 %s ESMTP\r\n", d->conf->hostname);
	smtp_deadline_wait(s);
	return s;
}

/* smtp_session_shutdown - end at the next idle point (SIGTERM) */
void
smtp_session_shutdown(struct smtp_session *s)
{
	s->shutdown = 1;
	if (s->state == SMTP_STATE_TURN) {
		smtp_atrn_stop(s);
		return;
	}
	if (s->job || s->state == SMTP_STATE_QUIT)
		return;
	switch (s->state) {
	case SMTP_STATE_DATA:
	case SMTP_STATE_BDAT:
	case SMTP_STATE_COMMIT:
	case SMTP_STATE_MAIL:
	case SMTP_STATE_RCPT:
	case SMTP_STATE_AUTH:
	case SMTP_STATE_ATRN:
	case SMTP_STATE_TURN:
		/* a transaction or a reversed session in progress may
		 * finish; then the session comes to an idle point */
		return;
	default:
		break;
	}
	log_info("session=%s event=shutdown", s->id);
	smtp_reply(s, 421, "4.3.2 %s Service shutting down",
	    s->d->conf->hostname);
	smtp_session_close_after(s);
}

/* smtp_session_end - end the session now (after a reversed session) */
void
smtp_session_end(struct smtp_session *s)
{
	smtp_session_free(s);
}

/* smtp_session_abort - close now, whatever the session was doing */
void
smtp_session_abort(struct smtp_session *s)
{
	if (s->dead)
		return;
	log_info("session=%s event=abort state=%s reason=\"shutdown timeout\"",
	    s->id, smtp_state_names[s->state]);
	smtp_session_free(s);
}

/* smtp_session_free - the one teardown path */
static void
smtp_session_free(struct smtp_session *s)
{
	struct timespec now;
	double secs;

	/* a reversed session owns the connection: stop it first */
	smtp_atrn_abort(s);
	if (s->io != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		secs = (double)(now.tv_sec - s->started.tv_sec) +
		    (double)(now.tv_nsec - s->started.tv_nsec) / 1e9;
		log_info("session=%s event=disconnect commands=%u messages=%u"
		    " errors=%u duration=%.3f", s->id, s->commands,
		    s->messages, s->errors, secs);
		io_free(&s->io);
	}
	smtp_deadline_stop(s);
	if (s->job) {
		/* the job's done callback frees us (smtp_job_end) */
		s->dead = 1;
		return;
	}
	smtp_server_session_gone(s->server, s);
	smtp_deadline_free(s);
	smtp_txn_reset(s);
	smtp_spool_free(&s->spool);
	smtp_auth_free(&s->auth);
	smtp_atrn_free(&s->atrn);
	smtp_etrn_free(&s->etrn);
	free(s->helo);
	free(s);
}
