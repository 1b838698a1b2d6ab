/*
 * NAME
 *	fuzz-smtp-cmd - libFuzzer target for the SMTP command line parser
 * SYNOPSIS
 *	tests/fuzz/fuzz-smtp-cmd [libFuzzer options] CORPUS...
 * DESCRIPTION
 *	Feeds arbitrary bytes, as one command line without its CRLF, to
 *	smtp_parse_command(), then hands the argument to the parser its
 *	verb needs (MAIL, RCPT, BDAT, EHLO/HELO), as the server will.
 *	Checks, beyond not crashing: an error is one line with a reply
 *	code from the table; an argument lies inside the line, has no
 *	surrounding blanks, and the line rebuilt from verb and argument
 *	parses to the same command; every output string fits its limit.
 *	Built with --enable-fuzzer this is a libFuzzer binary; otherwise
 *	fuzz-main.c replays the corpus.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check_error - a failed parse: a one-line text and a 5xx reply */
static void
check_error(enum smtp_parse_status st, const char *error)
{
	unsigned code = smtp_parse_status_code(st);
	const char *enh = smtp_parse_status_enhanced(st);

	if (error == NULL || *error == '\0' || strchr(error, '\n') != NULL ||
	    strchr(error, '\r') != NULL)
		abort();
	if (code < 500 || code > 555 || enh[0] != '5')
		abort();
}

/* check_path - the facts of an accepted path fit their buffers */
static void
check_path(const struct smtp_parse_path *p)
{
	if (p->len < 2 || p->len > SMTP_PARSE_PATH_MAX)
		abort();
	if (strlen(p->local) > SMTP_PARSE_LOCAL_MAX ||
	    strlen(p->mailbox) + 2 > SMTP_PARSE_PATH_MAX ||
	    strlen(p->domain_key) > DNAME_MAX)
		abort();
	if ((p->domain_key[0] == '\0') !=
	    ((p->flags & SMTP_PARSE_PATH_NO_KEY) != 0))
		abort();
}

/* run_args - the verb-specific parser on an accepted argument */
static void
run_args(const struct smtp_parse_cmd *cmd)
{
	struct smtp_parse_path path;
	struct smtp_parse_mail_params mp;
	struct smtp_parse_rcpt_params rp;
	struct smtp_parse_bdat bdat;
	struct smtp_parse_helo helo;
	const char *error = NULL;
	enum smtp_parse_status st;

	switch (cmd->verb) {
	case SMTP_PARSE_VERB_MAIL:
		st = smtp_parse_mail_args(cmd->arg, cmd->arglen, &path, &mp,
		    &error);
		if (st != SMTP_PARSE_OK)
			check_error(st, error);
		else {
			check_path(&path);
			if ((path.flags & SMTP_PARSE_PATH_UTF8) &&
			    !mp.smtputf8)
				abort();
		}
		break;
	case SMTP_PARSE_VERB_RCPT:
		st = smtp_parse_rcpt_args(cmd->arg, cmd->arglen, 0, &path,
		    &rp, &error);
		if (st != SMTP_PARSE_OK)
			check_error(st, error);
		else {
			check_path(&path);
			if (path.flags & (SMTP_PARSE_PATH_UTF8 |
			    SMTP_PARSE_PATH_NULL))
				abort();
		}
		break;
	case SMTP_PARSE_VERB_BDAT:
		st = smtp_parse_bdat(cmd->arg, cmd->arglen, &bdat, &error);
		if (st != SMTP_PARSE_OK)
			check_error(st, error);
		break;
	case SMTP_PARSE_VERB_EHLO:
	case SMTP_PARSE_VERB_HELO:
		st = smtp_parse_helo(cmd->arg, cmd->arglen, &helo, &error);
		if (st != SMTP_PARSE_OK)
			check_error(st, error);
		else if (helo.name[0] == '\0' ||
		    strlen(helo.name) > SMTP_PARSE_DOMAIN_MAX)
			abort();
		break;
	default:
		break;
	}
}

/* LLVMFuzzerTestOneInput - parse one line, check the contract */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data, *error = NULL;
	struct smtp_parse_cmd cmd, again;
	enum smtp_parse_status st;
	char rebuilt[SMTP_PARSE_READ_MAX + 16];
	int n;

	st = smtp_parse_command(line, size, &cmd, &error);
	if (st != SMTP_PARSE_OK) {
		check_error(st, error);
		return 0;
	}
	if ((unsigned)cmd.verb >= SMTP_PARSE_VERB_COUNT)
		abort();
	if (cmd.arglen > 0) {
		if (cmd.arg < line || cmd.arg + cmd.arglen > line + size)
			abort();
		if (cmd.arg[0] == ' ' || cmd.arg[0] == '\t' ||
		    cmd.arg[cmd.arglen - 1] == ' ' ||
		    cmd.arg[cmd.arglen - 1] == '\t')
			abort();
		if (memchr(cmd.arg, '\0', cmd.arglen) != NULL)
			abort();
	}
	/* the canonical spelling of the same command parses the same */
	n = snprintf(rebuilt, sizeof(rebuilt), "%s%s%s%.*s",
	    smtp_parse_verb_name(cmd.verb), cmd.arglen > 0 ? " " : "",
	    cmd.verb == SMTP_PARSE_VERB_MAIL ? "FROM:" :
	    cmd.verb == SMTP_PARSE_VERB_RCPT ? "TO:" : "",
	    (int)cmd.arglen, cmd.arg);
	if (n < 0 || (size_t)n >= sizeof(rebuilt))
		abort();
	if (smtp_parse_command(rebuilt, (size_t)n, &again, &error) !=
	    SMTP_PARSE_OK)
		abort();
	if (again.verb != cmd.verb || again.arglen != cmd.arglen ||
	    memcmp(again.arg, cmd.arg, cmd.arglen) != 0 || again.flags != 0)
		abort();
	run_args(&cmd);
	return 0;
}
