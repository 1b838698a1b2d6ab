/*
 * NAME
 *	smtp_session 3h - the MX side's ESMTP server session
 * SYNOPSIS
 *	#include "smtp_session.h"
 * DESCRIPTION
 *	smtp_server.c accepts connections and creates one struct
 *	smtp_session per client with smtp_session_new(). The session is a
 *	state machine (enum smtp_state, smtp_state_names,
 *	smtp_enter_state()) driven by one io callback. Its verbs live in
 *	three files, which share this header:
 *	- smtp_session.c: the state machine, the command table, replies,
 *	  limits and teardown, and the verbs without a transaction (EHLO,
 *	  HELO, RSET, NOOP, QUIT, HELP, VRFY, EXPN, STARTTLS);
 *	- smtp_txn.c: MAIL and RCPT, with relay control and the store
 *	  lookups on the lookup pool;
 *	- smtp_data.c: DATA and BDAT, the message text, and the commit on
 *	  the commit pool;
 *	- smtp_auth.c, smtp_atrn.c, smtp_etrn.c: AUTH, ATRN (RFC 2645)
 *	  and ETRN (RFC 1985).
 *	smtp_session_shutdown() asks a session to end at its next idle
 *	point (SIGTERM), smtp_session_abort() ends it now.
 */
#ifndef ODMR_SMTP_SESSION_H
#define ODMR_SMTP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "odmr_sasl.h"
#include "queue.h"
#include "smtp_parse.h"
#include "smtp_text.h"

struct io;
struct odmrd;
struct smtp_server;
struct smtp_spool;

enum smtp_state {
	SMTP_STATE_GREETING = 0,	/* greeting queued, nothing read yet */
	SMTP_STATE_HELO,		/* waiting for EHLO/HELO */
	SMTP_STATE_READY,		/* no transaction */
	SMTP_STATE_MAIL,		/* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,		/* at least one recipient */
	SMTP_STATE_DATA,		/* reading DATA text */
	SMTP_STATE_BDAT,		/* reading a BDAT chunk */
	SMTP_STATE_COMMIT,		/* the store is committing */
	SMTP_STATE_TLS,			/* TLS handshake */
	SMTP_STATE_AUTH,		/* reading SASL responses */
	SMTP_STATE_ATRN,		/* ATRN checks and claims running */
	SMTP_STATE_ETRN,		/* ETRN checks running */
	SMTP_STATE_TURN,		/* reversed: turn/ is the client */
	SMTP_STATE_QUIT,		/* final reply queued, closing */
};
#define SMTP_STATE_COUNT	(SMTP_STATE_QUIT + 1)
extern const char *const smtp_state_names[];

#define SMTP_SESSION_ID_MAX	17	/* 16 hex digits and NUL */
#define SMTP_AUTH_MECH_MAX	20	/* RFC 4422 3.1: SASL names */
#define SMTP_ATRN_DOMAINS_MAX	64	/* domains in one ATRN */

/* which listener a session came from */
enum smtp_mode {
	SMTP_MODE_MX = 0,		/* smtp_listen: mail from anyone */
	SMTP_MODE_ODMR,			/* odmr_listen, odmrs_listen: AUTH, ATRN */
};

struct smtp_auth;
struct smtp_atrn;
struct smtp_etrn;

/* One accepted recipient of the transaction in progress. */
struct smtp_rcpt {
	char		*addr;		/* as received, without <> */
	char		*orcpt;		/* "type;xtext" or NULL */
	unsigned	 notify;
	char		 domain[DNAME_MAX + 1];	/* customer domain key */
};

struct smtp_txn {
	char		*sender;	/* "" for <> */
	struct smtp_parse_mail_params params;
	struct smtp_rcpt *rcpt;
	size_t		 nrcpt;
	size_t		 rcpt_cap;
	size_t		 rcpt_refused;	/* over max_recipients */
	/* the message text */
	int		 bdat;		/* BDAT used in this transaction */
	int		 failed;	/* a BDAT chunk failed: consume */
	uint64_t	 octets;	/* client octets of text */
	int		 too_big;
	int		 line_too_long;
	int		 bare_lf;
	int		 after_lf;	/* the last text line ended in a bare
					   LF: a dot line is no end then */
	struct smtp_text_scan scan;
	uint64_t	 qid;		/* reserved at DATA / first BDAT */
	char		 id[QUEUE_ID_LEN + 1];
	enum queue_status reserve_status;
	struct queue_error reserve_err;
	/* the commit */
	struct queue_msg msg;
	enum queue_status commit_status;
	struct queue_error commit_err;
};

struct smtp_session {
	struct odmrd	*d;
	struct smtp_server *server;
	struct io	*io;
	enum smtp_mode	 mode;
	int		 implicit_tls;	/* odmrs_listen: TLS before greeting */
	int		 greeted;	/* the 220 greeting was sent */
	char		 id[SMTP_SESSION_ID_MAX];
	char		 addr[64];	/* client address as text */
	unsigned	 port;
	enum smtp_state	 state;
	char		*helo;		/* EHLO/HELO argument, or NULL */
	int		 esmtp;		/* EHLO rather than HELO */
	int		 tls;		/* STARTTLS done */
	int		 tls_closing;	/* close_notify sent */
	char		 tls_version[32];
	char		 tls_cipher[96];
	int		 tls_bits;
	/* the account a verified client certificate names (SASL
	 * EXTERNAL, smtp_auth.c); "" without one */
	char		 tls_external[ODMR_SASL_USER_MAX + 1];
	unsigned	 errors;	/* bad commands so far */
	unsigned	 commands;
	unsigned	 messages;	/* queued in this session */
	struct timespec	 started;
	/* a store job (lookup or commit) is running: input waits */
	int		 job;
	int		 dead;		/* torn down while a job ran */
	int		 shutdown;	/* close at the next idle point */
	/* the deadline of what the session waits for (smtp_deadline.c) */
	struct loop_timer *deadline;
	uint64_t	 deadline_at;	/* monotonic ms */
	int		 deadline_command;	/* it is a command's */
	/* BDAT chunk being read */
	uint64_t	 bdat_left;
	int		 bdat_last;
	enum smtp_state	 bdat_prev;	/* state to go back to on a 503 */
	unsigned	 bdat_reply;	/* reply code decided for the chunk */
	const char	*bdat_text;	/* "5.5.1 ..." when bdat_reply != 0 */
	struct smtp_spool *spool;
	struct smtp_txn	 txn;
	/* AUTH and ATRN (smtp_auth.c, smtp_atrn.c) */
	struct smtp_auth *auth;
	char		 auth_user[ODMR_SASL_USER_MAX + 1];
	struct smtp_atrn *atrn;
	struct smtp_etrn *etrn;
	/* the RCPT being looked up */
	struct smtp_parse_path lookup_path;
	struct smtp_parse_rcpt_params lookup_params;
	char		 lookup_domain[DNAME_MAX + 1];
	enum queue_status lookup_status;
	struct queue_domain lookup_dom;
	struct queue_error lookup_err;
	/* list links, for smtp_server.c */
	struct smtp_session *prev, *next;
};

/* smtp_session.c */
struct smtp_session *smtp_session_new(struct odmrd *, struct smtp_server *,
	    int fd, const char *addr, enum smtp_mode, int implicit_tls);
void	smtp_session_close_after(struct smtp_session *);
void	smtp_session_end(struct smtp_session *);
void	smtp_session_shutdown(struct smtp_session *);
void	smtp_session_abort(struct smtp_session *);
void	smtp_enter_state(struct smtp_session *, enum smtp_state);
void	smtp_reply(struct smtp_session *, unsigned code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	smtp_reject(struct smtp_session *, const char *cmd, unsigned code,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	smtp_session_lost(struct smtp_session *, const char *what);
void	smtp_job_start(struct smtp_session *);
int	smtp_job_end(struct smtp_session *);
void	smtp_session_resume(struct smtp_session *);

/* smtp_txn.c */
void	smtp_txn_reset(struct smtp_session *);
void	smtp_txn_mail(struct smtp_session *, const char *arg, size_t len);
void	smtp_txn_rcpt(struct smtp_session *, const char *arg, size_t len);

/* smtp_auth.c */
void	smtp_auth_cmd(struct smtp_session *, const char *arg, size_t len);
void	smtp_auth_input(struct smtp_session *);
void	smtp_auth_mechs(const struct smtp_session *, char *out, size_t outsz);
void	smtp_auth_free(struct smtp_auth **);

/* smtp_atrn.c */
void	smtp_atrn_cmd(struct smtp_session *, const char *arg, size_t len);
void	smtp_atrn_free(struct smtp_atrn **);
void	smtp_atrn_abort(struct smtp_session *);
void	smtp_atrn_stop(struct smtp_session *);

/* smtp_etrn.c */
void	smtp_etrn_cmd(struct smtp_session *, const char *arg, size_t len);
void	smtp_etrn_free(struct smtp_etrn **);

/* smtp_data.c */
void	smtp_data_start(struct smtp_session *);
void	smtp_data_bdat(struct smtp_session *, const char *arg, size_t len);
void	smtp_data_input(struct smtp_session *);

/* smtp_server.c */
struct listen;
struct smtp_server *smtp_server_new(struct odmrd *, struct listen *,
	    enum smtp_mode, int implicit_tls, const char *name);
int	smtp_server_start(struct smtp_server *, char **error_r);
void	smtp_server_shutdown(struct smtp_server *);
void	smtp_server_abort(struct smtp_server *);
size_t	smtp_server_count(const struct smtp_server *);
const char *smtp_server_name(const struct smtp_server *);
void	smtp_server_free(struct smtp_server **);
void	smtp_server_session_gone(struct smtp_server *, struct smtp_session *);

/* smtp_deadline.c */
void	smtp_deadline_init(struct smtp_session *);
void	smtp_deadline_free(struct smtp_session *);
void	smtp_deadline_stop(struct smtp_session *);
void	smtp_deadline_wait(struct smtp_session *);
void	smtp_deadline_progress(struct smtp_session *, size_t);
void	smtp_deadline_state(struct smtp_session *);
void	smtp_deadline_expired(struct smtp_session *);
int	smtp_deadline_running(const struct smtp_session *);

#endif
