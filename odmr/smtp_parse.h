/*
 * NAME
 *	smtp_parse 3h - pure parsers for the ESMTP server's command lines
 * SYNOPSIS
 *	#include "smtp_parse.h"
 * DESCRIPTION
 *	Syntax only: no sockets, no I/O, no logging, no policy, and no heap
 *	allocation (every output lives in a caller-provided structure sized
 *	by the RFC limits). Each parser returns SMTP_PARSE_OK, or a status
 *	that smtp_parse_status_code() and smtp_parse_status_enhanced() turn
 *	into the suggested reply, with the reply text in *error_r (a static
 *	string, one line, no CRLF).
 *
 *	smtp_parse_command() splits a line (without its CRLF) into a verb
 *	and its argument; for MAIL and RCPT it also eats "FROM:" / "TO:".
 *	smtp_parse_command_ex() does the same with every line limit raised
 *	by extra octets (odmrd.conf max_command_line above 512).
 *	smtp_parse_path() reads one <reverse-path> or <forward-path> and
 *	reports every relay trick as a flag; it does not decide relaying.
 *	smtp_parse_mail_params() and smtp_parse_rcpt_params() read the
 *	esmtp-params after the path. smtp_parse_mail_args() and
 *	smtp_parse_rcpt_args() do path and parameters in one call, in the
 *	order SMTPUTF8 needs. smtp_parse_bdat() and smtp_parse_helo() read
 *	the BDAT and EHLO/HELO arguments.
 *
 *	Input is a pointer and a length; it need not be NUL-terminated and
 *	may contain any octet. Outputs that point into the input (the
 *	command argument) are valid as long as the input is.
 * SEE ALSO
 *	RFC 5321 (SMTP), RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 3030
 *	(CHUNKING, BINARYMIME), RFC 3461 (DSN), RFC 4954 (AUTH), RFC 6531
 *	(SMTPUTF8), RFC 3463 (enhanced status codes).
 */
#ifndef ODMR_SMTP_PARSE_H
#define ODMR_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "dname.h"
#include "queue.h"

struct buf;

/* RFC 5321 4.5.3.1.4: a command line is 512 octets including the CRLF. */
#define SMTP_PARSE_LINE_MAX		512
/*
 * RFC 5321 4.5.3.1.4 lets extensions raise that limit, and the ones we
 * announce do: MAIL by 26 (RFC 1870 SIZE), 16 (RFC 6152 BODY), 100
 * (RFC 3461 RET and ENVID), 500 (RFC 4954 AUTH) and 10 (RFC 6531
 * " SMTPUTF8"); RCPT by 500 (RFC 3461 NOTIFY and ORCPT).
 */
#define SMTP_PARSE_MAIL_LINE_MAX	(SMTP_PARSE_LINE_MAX + 26 + 16 + \
					    100 + 500 + 10)
#define SMTP_PARSE_RCPT_LINE_MAX	(SMTP_PARSE_LINE_MAX + 500)
/* The longest line any verb may send: size the server's read buffer. */
#define SMTP_PARSE_READ_MAX		SMTP_PARSE_MAIL_LINE_MAX

#define SMTP_PARSE_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define SMTP_PARSE_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define SMTP_PARSE_PATH_MAX	256	/* RFC 5321 4.5.3.1.3, with <> */
#define SMTP_PARSE_LABEL_MAX	63	/* RFC 1035 2.3.4 */
#define SMTP_PARSE_ENVID_MAX	100	/* RFC 3461 4.4 */
#define SMTP_PARSE_ORCPT_MAX	500	/* RFC 3461 4.2 */
#define SMTP_PARSE_AUTH_MAX	500	/* RFC 4954 5 */
#define SMTP_PARSE_SIZE_DIGITS	20	/* RFC 1870 6: 1*20DIGIT */

/* Results; smtp_parse_status_code/_enhanced give the suggested reply. */
enum smtp_parse_status {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_LINE_TOO_LONG,	/* 500 5.5.2 */
	SMTP_PARSE_BAD_LINE,		/* 500 5.5.2: NUL, bare CR/LF, CTL */
	SMTP_PARSE_UNKNOWN_COMMAND,	/* 500 5.5.2 */
	SMTP_PARSE_BAD_ARGS,		/* 501 5.5.4 */
	SMTP_PARSE_BAD_SENDER,		/* 501 5.1.7 */
	SMTP_PARSE_BAD_RCPT,		/* 501 5.1.3 */
	SMTP_PARSE_UTF8_ADDRESS,	/* 553 5.6.7: UTF-8 without SMTPUTF8 */
	SMTP_PARSE_BAD_PARAM,		/* 501 5.5.4 */
	SMTP_PARSE_UNKNOWN_PARAM,	/* 555 5.5.4 */
};

enum smtp_parse_verb {
	SMTP_PARSE_VERB_EHLO = 0,
	SMTP_PARSE_VERB_HELO,
	SMTP_PARSE_VERB_MAIL,
	SMTP_PARSE_VERB_RCPT,
	SMTP_PARSE_VERB_DATA,
	SMTP_PARSE_VERB_BDAT,
	SMTP_PARSE_VERB_RSET,
	SMTP_PARSE_VERB_NOOP,
	SMTP_PARSE_VERB_QUIT,
	SMTP_PARSE_VERB_HELP,
	SMTP_PARSE_VERB_VRFY,
	SMTP_PARSE_VERB_EXPN,
	SMTP_PARSE_VERB_STARTTLS,
	SMTP_PARSE_VERB_AUTH,
	SMTP_PARSE_VERB_ETRN,
	SMTP_PARSE_VERB_ATRN,
};
#define SMTP_PARSE_VERB_COUNT	(SMTP_PARSE_VERB_ATRN + 1)

/* struct smtp_parse_cmd flags: tolerated deviations, for the server */
#define SMTP_PARSE_CMD_SPACE_AFTER_COLON 0x01	/* "FROM: <a@b>" */
#define SMTP_PARSE_CMD_LAX_SPACE	0x02	/* not exactly one SP after the verb */
#define SMTP_PARSE_CMD_TRAILING_SPACE	0x04	/* SP/HTAB stripped at the end */
#define SMTP_PARSE_CMD_LOWER_VERB	0x08	/* verb not in upper case */

struct smtp_parse_cmd {
	enum smtp_parse_verb	 verb;
	const char		*arg;	/* into the line, not NUL-terminated */
	size_t			 arglen;	/* 0 when there is none */
	unsigned		 flags;		/* SMTP_PARSE_CMD_* */
};

/* smtp_parse_path() input flags */
#define SMTP_PARSE_PATH_IN_MAIL		0x01	/* reverse-path: <> allowed */
#define SMTP_PARSE_PATH_IN_SMTPUTF8	0x02	/* RFC 6531: UTF-8 allowed */

/* struct smtp_parse_path flags: the facts a relay decision needs */
#define SMTP_PARSE_PATH_NULL		0x0001	/* <> */
#define SMTP_PARSE_PATH_SOURCE_ROUTE	0x0002	/* <@a,@b:u@d> */
#define SMTP_PARSE_PATH_PERCENT		0x0004	/* '%' in the local part */
#define SMTP_PARSE_PATH_BANG		0x0008	/* '!' in the local part */
#define SMTP_PARSE_PATH_QUOTED_LOCAL	0x0010	/* "..."@d */
#define SMTP_PARSE_PATH_QUOTED_AT	0x0020	/* '@' inside the quotes */
#define SMTP_PARSE_PATH_DOMAIN_LITERAL	0x0040	/* u@[1.2.3.4] or [IPv6:] */
#define SMTP_PARSE_PATH_IPV6		0x0080	/* u@[IPv6:...] */
#define SMTP_PARSE_PATH_TRAILING_DOT	0x0100	/* u@example.org. */
#define SMTP_PARSE_PATH_UTF8		0x0200	/* non-ASCII somewhere */
#define SMTP_PARSE_PATH_POSTMASTER	0x0400	/* <Postmaster>, no domain */
#define SMTP_PARSE_PATH_NO_KEY		0x0800	/* domain_key is empty */
#define SMTP_PARSE_PATH_QUOTED_PAIR	0x1000	/* backslash in the quotes */
#define SMTP_PARSE_PATH_FLAG_COUNT	13

struct smtp_parse_path {
	unsigned	 flags;		/* SMTP_PARSE_PATH_* */
	size_t		 len;		/* octets consumed, '<' to '>' */
	/* the mailbox as received: local "@" domain, or "" for <> */
	char		 mailbox[SMTP_PARSE_PATH_MAX + 1];
	char		 route[SMTP_PARSE_PATH_MAX + 1];  /* "@a,@b" or "" */
	char		 local[SMTP_PARSE_LOCAL_MAX + 1]; /* quotes kept */
	char		 domain[SMTP_PARSE_DOMAIN_MAX + 1]; /* as received */
	/*
	 * dname_normalize() of domain; "" (and SMTP_PARSE_PATH_NO_KEY)
	 * for a literal, a trailing dot, <>, <Postmaster> or a name that
	 * lib/dname refuses (dname_error says why).
	 */
	char		 domain_key[DNAME_MAX + 1];
	const char	*dname_error;
};

/* struct smtp_parse_mail_params seen bits */
#define SMTP_PARSE_MAIL_SIZE		0x01
#define SMTP_PARSE_MAIL_BODY		0x02
#define SMTP_PARSE_MAIL_SMTPUTF8	0x04
#define SMTP_PARSE_MAIL_RET		0x08
#define SMTP_PARSE_MAIL_ENVID		0x10
#define SMTP_PARSE_MAIL_AUTH		0x20

struct smtp_parse_mail_params {
	unsigned	 seen;		/* SMTP_PARSE_MAIL_* given */
	uint64_t	 size;		/* RFC 1870; UINT64_MAX if it overflowed */
	int		 size_overflow;	/* the caller answers 552 5.3.4 */
	enum queue_body_type body;	/* QUEUE_BODY_7BIT when absent */
	int		 smtputf8;
	enum queue_ret	 ret;		/* QUEUE_RET_DEFAULT when absent */
	char		 envid[SMTP_PARSE_ENVID_MAX + 1];	/* xtext */
	char		 auth[SMTP_PARSE_AUTH_MAX + 1];	/* xtext or "<>" */
};

/* struct smtp_parse_rcpt_params seen bits */
#define SMTP_PARSE_RCPT_NOTIFY		0x01
#define SMTP_PARSE_RCPT_ORCPT		0x02

struct smtp_parse_rcpt_params {
	unsigned	 seen;		/* SMTP_PARSE_RCPT_* given */
	unsigned	 notify;	/* QUEUE_NOTIFY_*, 0 when absent */
	char		 orcpt[SMTP_PARSE_ORCPT_MAX + 1];	/* "type;xtext" */
	size_t		 orcpt_type_len;	/* octets before the ';' */
};

struct smtp_parse_bdat {
	uint64_t	 size;
	int		 last;
};

/* struct smtp_parse_helo flags: oddities that are reported, not refused */
#define SMTP_PARSE_HELO_LITERAL		0x001	/* [1.2.3.4] or [IPv6:...] */
#define SMTP_PARSE_HELO_IPV6		0x002
#define SMTP_PARSE_HELO_BAD_LITERAL	0x004	/* [...] that is no address */
#define SMTP_PARSE_HELO_TRAILING_DOT	0x008
#define SMTP_PARSE_HELO_NOT_DNAME	0x010	/* lib/dname refuses it */
#define SMTP_PARSE_HELO_EXTRA_ARGS	0x020	/* words after the name */
#define SMTP_PARSE_HELO_UTF8		0x040
#define SMTP_PARSE_HELO_BARE_ADDRESS	0x080	/* 1.2.3.4 without brackets */
#define SMTP_PARSE_HELO_FLAG_COUNT	8

struct smtp_parse_helo {
	unsigned	 flags;		/* SMTP_PARSE_HELO_* */
	char		 name[SMTP_PARSE_DOMAIN_MAX + 1];	/* as received */
	char		 key[DNAME_MAX + 1];	/* normalised, or "" */
};

const char	*smtp_parse_status_name(enum smtp_parse_status);
unsigned	 smtp_parse_status_code(enum smtp_parse_status);
const char	*smtp_parse_status_enhanced(enum smtp_parse_status);
const char	*smtp_parse_verb_name(enum smtp_parse_verb);
const char	*smtp_parse_path_flag_name(unsigned bit);
const char	*smtp_parse_helo_flag_name(unsigned bit);

enum smtp_parse_status smtp_parse_command(const char *line, size_t len,
	    struct smtp_parse_cmd *out, const char **error_r);
enum smtp_parse_status smtp_parse_command_ex(const char *line, size_t len,
	    size_t extra, struct smtp_parse_cmd *out, const char **error_r);
enum smtp_parse_status smtp_parse_path(const char *s, size_t len,
	    unsigned in_flags, struct smtp_parse_path *out,
	    const char **error_r);
enum smtp_parse_status smtp_parse_mail_params(const char *s, size_t len,
	    struct smtp_parse_mail_params *out, const char **error_r);
enum smtp_parse_status smtp_parse_rcpt_params(const char *s, size_t len,
	    struct smtp_parse_rcpt_params *out, const char **error_r);
enum smtp_parse_status smtp_parse_mail_args(const char *s, size_t len,
	    struct smtp_parse_path *path, struct smtp_parse_mail_params *params,
	    const char **error_r);
enum smtp_parse_status smtp_parse_rcpt_args(const char *s, size_t len,
	    int smtputf8, struct smtp_parse_path *path,
	    struct smtp_parse_rcpt_params *params, const char **error_r);
enum smtp_parse_status smtp_parse_bdat(const char *s, size_t len,
	    struct smtp_parse_bdat *out, const char **error_r);
enum smtp_parse_status smtp_parse_helo(const char *s, size_t len,
	    struct smtp_parse_helo *out, const char **error_r);
int	smtp_parse_path_format(const struct smtp_parse_path *, char *out,
	    size_t outsz);
int	smtp_parse_utf8_valid(const char *s, size_t len);

int	smtp_xtext_decode(const char *in, size_t len, char *out, size_t outsz,
	    size_t *outlen_r, const char **error_r);
int	smtp_xtext_decode_buf(const char *in, size_t len, struct buf *out,
	    const char **error_r);
int	smtp_xtext_encode(const void *in, size_t len, char *out, size_t outsz);
void	smtp_xtext_encode_buf(const void *in, size_t len, struct buf *out);
int	smtp_xtext_valid(const char *in, size_t len);

#endif
