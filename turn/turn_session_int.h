/*
 * NAME
 *	turn_session_int 3h - what turn_session.c shares with
 *	turn_session_store.c
 * SYNOPSIS
 *	#include "turn_session_int.h"
 * DESCRIPTION
 *	Not for other modules, whose API is turn_session.h: the session
 *	(struct turn_session), one store job (struct turn_job), the limits
 *	both files use, the store entry points of turn_session_store.c
 *	that the state machine calls (the list walk, the loads, the
 *	records and the record timer), and the state machine's functions
 *	of turn_session.c that the jobs' completions call on the loop.
 * SEE ALSO
 *	turn_session(3), turn_session_store(3)
 */
#ifndef TURN_TURN_SESSION_INT_H
#define TURN_TURN_SESSION_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "io.h"
#include "loop.h"
#include "tls.h"
#include "work.h"

#include "queue.h"
#include "turn_bounce.h"
#include "turn_dsn.h"
#include "turn_msg.h"
#include "turn_proto.h"
#include "turn_session.h"

#define TURN_WINDOW		8	/* transactions written ahead of the
					   one being answered */
#define TURN_LOAD_BATCH		8	/* messages read per load job */

struct turn_session {
	char		 id[TURN_SESSION_ID_MAX];
	char		*helo;
	struct queue	*queue;
	struct work_pool *pool;
	char		**domains;
	size_t		 ndomains;
	unsigned	 timeout_ms[TURN_STATE_COUNT];
	void		(*done)(void *, const struct turn_result *);
	void		*arg;
	enum tls_mode	 tls_policy;
	struct tls_ctx	*tls_ctx;
	char		*tls_name;	/* SNI and the verified name, or NULL */
	int		 dsn;		/* queue DSNs for failures */
	char		*rcpt_domain;	/* only mail to this domain, or NULL */
	char		*postmaster;	/* double bounces, or NULL */

	struct io	*io;
	char		 relay[IO_ADDR_MAX + 16];
	char		 relay_host[IO_ADDR_MAX];	/* Remote-MTA */
	enum turn_state	 state;
	struct turn_proto_reply reply;
	struct turn_proto_ext ext;
	int		 ready;		/* EHLO or HELO accepted */

	/* which messages: ids from the walks, in arrival order */
	uint64_t	*qids;
	size_t		 nqids, nextq;
	uint64_t	*seen;		/* every id listed so far, sorted */
	size_t		 nseen;
	unsigned	 rounds;
	unsigned	 again;		/* messages sent again for a 452 */
	unsigned	 records;	/* messages not yet recorded */
	struct turn_job	**pending;	/* waiting for the record job */
	size_t		 npending;
	int		 recording;	/* a record job runs */
	struct loop_timer *record_timer;	/* a small batch goes */
	size_t		 round_new;	/* ids the last walk found */
	int		 listing;	/* a list job runs */
	int		 all_handled;
	int		 quit_sent;

	/*
	 * cur is the transaction whose replies are awaited; sent[] are the
	 * pipelined ones written behind it (each opened with RSET), oldest
	 * first; loaded[] are read from the store, not yet written
	 */
	struct turn_msg	*cur;
	struct turn_msg	*sent[TURN_WINDOW];
	size_t		 nsent;
	size_t		 sent_octets;
	struct turn_msg	*loaded[TURN_LOAD_BATCH];
	size_t		 nloaded;
	size_t		 loaded_octets;
	int		 loading;	/* a load job runs */
	int		 in_txn;
	int		 text_done;	/* cur's text, "." or RSET is written */
	int		 mail_replied;
	int		 mail_ok;
	size_t		 rcpt_sent, rcpt_replies;
	unsigned	 accepted;
	int		 dummy_dot;	/* 354 with no recipient: "." alone */
	size_t		 text_off;
	unsigned	 chunks_sent, chunks_replied;
	int		 chunk_error, last_sent;

	/* life */
	unsigned	 jobs;		/* store jobs running, and the finish */
	int		 stop;
	int		 ending;
	int		 finish_posted;
	struct turn_result result;
	struct timespec	 started;
};

/* One store job; run on a pool thread, done on the loop. */
struct turn_job {
	struct turn_session *s;
	struct turn_proto_ext ext;	/* load */
	struct turn_msg	*msgs[TURN_LOAD_BATCH];	/* load: out, in order */
	size_t		 nmsgs;
	struct turn_msg	*msg;		/* record: in */
	struct turn_job	**batch;	/* record: one job per message */
	size_t		 nbatch;
	uint64_t	*ids;		/* list: out; load: in */
	size_t		 nids, cap;
	enum queue_status status;
	struct queue_error err;
	/* record: the DSN the outcomes called for */
	enum turn_bounce_status dsn_status;
	enum turn_dsn_kind dsn_kind;
	uint64_t	 dsn_qid;
	int		 dsn_double;
	char		 dsn_why[TURN_SESSION_ERROR_MAX];
};

/* turn_session.c: the state machine, called when a job is done */
void	turn_enter_state(struct turn_session *, enum turn_state);
void	turn_session_error(struct turn_session *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	turn_session_next(struct turn_session *);
void	turn_session_ahead(struct turn_session *);
void	turn_session_quit(struct turn_session *);
void	turn_session_maybe_finish(struct turn_session *);

/* turn_session_store.c: the store jobs */
void	turn_session_store_list(struct turn_session *);
void	turn_session_store_prefetch(struct turn_session *);
void	turn_session_store_record(struct turn_session *);
void	turn_session_store_record_flush(struct turn_session *);
void	turn_session_store_record_timer(void *);

#endif
