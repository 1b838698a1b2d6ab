/*
 * NAME
 *	odmrd 3h - the daemon's context, passed to every server explicitly
 * SYNOPSIS
 *	#include "odmrd.h"
 * DESCRIPTION
 *	One struct odmrd holds what the servers share: the configuration in
 *	force (replaced whole on SIGHUP), the store, the TLS context, the
 *	worker pools and the shutdown state. There is no global copy of it
 *	(STYLE.md: no global mutable env); odmrd.c owns it and hands a
 *	pointer to each server.
 *
 *	commit_pool runs queue_enqueue() for finished messages: its
 *	threads wait on the disk together, so one log flush covers many
 *	messages. lookup_pool runs the short store reads a session needs
 *	before it answers (the customer domain of a recipient), so that a
 *	read never waits behind a commit's flush. auth_pool runs the
 *	libsasl2 steps of AUTH (sasldb reads, SCRAM's key stretching).
 *
 *	servers are the listeners: the MX side on smtp_listen, and the
 *	ODMR side on odmr_listen and, with implicit TLS, odmrs_listen.
 */
#ifndef ODMR_ODMRD_H
#define ODMR_ODMRD_H

#include <limits.h>
#include <stdint.h>

#include "odmr_conf.h"
#include "queue.h"

#define ODMRD_EXIT_WEDGED	75	/* EX_TEMPFAIL: restart me */
#define ODMRD_SPOOL_SUBDIR	"spool"	/* below state_dir */
#define ODMRD_LOOKUP_THREADS	2
#define ODMRD_AUTH_THREADS	2	/* SCRAM stretching is CPU work */
#define ODMRD_DELIVER_THREADS	4	/* flushes: store reads and records */
#define ODMRD_DNS_THREADS	4	/* MX lookups: mostly waiting */
#define ODMRD_SERVERS_MAX	3	/* smtp, odmr, odmrs */
#define ODMRD_IDS_BATCH		512	/* queue ids reserved at a time */

struct queue;
struct tls_ctx;
struct work_pool;
struct smtp_server;
struct odmr_flush;
struct odmr_bounce;

struct odmrd {
	struct odmr_conf	*conf;
	struct queue		*queue;
	struct tls_ctx		*tls;		/* NULL: no STARTTLS */
	/* outbound (ETRN): client contexts for --tls may/encrypt and
	 * for verify (tls_ca_file); replaced on SIGHUP only while no
	 * flush runs, since a flush keeps a pointer to them */
	struct tls_ctx		*tls_client;
	struct tls_ctx		*tls_verify;
	struct tls_ctx		*tls_client_next;	/* SIGHUP's, waiting */
	struct tls_ctx		*tls_verify_next;
	struct odmr_flush	*flush;		/* ETRN's deliveries */
	struct odmr_bounce	*bounce;	/* DSN delivery, expiry */
	struct work_pool	*deliver_pool;	/* their store work */
	struct work_pool	*dns_pool;	/* their MX lookups */
	struct work_pool	*commit_pool;
	struct work_pool	*lookup_pool;
	struct work_pool	*auth_pool;
	struct smtp_server	*servers[ODMRD_SERVERS_MAX];
	size_t			 nservers;
	char			 spool_dir[PATH_MAX];
	struct smtp_domains	*domains;	/* RCPT's snapshot */
	/* queue id sequence numbers reserved ahead (queue_id_reserve()) */
	uint64_t		 ids_next;
	uint64_t		 ids_end;
	int			 ids_refilling;
	uint64_t		 ids_first;	/* the refill job's answer */
	enum queue_status	 ids_status;
	int			 draining;	/* SIGTERM received */
	uint32_t		 session_prefix; /* random, per process */
	uint32_t		 session_seq;
};

void	odmrd_session_id(struct odmrd *, char *out, size_t outsz);
int	odmrd_id_take(struct odmrd *, uint64_t *qid);
void	odmrd_server_idle(struct odmrd *);
void	odmrd_flush_idle(struct odmrd *);

#endif
