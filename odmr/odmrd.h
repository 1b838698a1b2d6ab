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
 *	read never waits behind a commit's flush.
 */
#ifndef ODMR_ODMRD_H
#define ODMR_ODMRD_H

#include <limits.h>
#include <stdint.h>

#include "odmr_conf.h"

#define ODMRD_EXIT_WEDGED	75	/* EX_TEMPFAIL: restart me */
#define ODMRD_SPOOL_SUBDIR	"spool"	/* below state_dir */
#define ODMRD_LOOKUP_THREADS	2

struct queue;
struct tls_ctx;
struct work_pool;
struct smtp_server;

struct odmrd {
	struct odmr_conf	*conf;
	struct queue		*queue;
	struct tls_ctx		*tls;		/* NULL: no STARTTLS */
	struct work_pool	*commit_pool;
	struct work_pool	*lookup_pool;
	struct smtp_server	*smtp;
	char			 spool_dir[PATH_MAX];
	int			 draining;	/* SIGTERM received */
	uint32_t		 session_prefix; /* random, per process */
	uint32_t		 session_seq;
};

void	odmrd_session_id(struct odmrd *, char *out, size_t outsz);
void	odmrd_server_idle(struct odmrd *);

#endif
