/*
 * NAME
 *	queue_bdb_int 3h - private declarations of the Berkeley DB backend
 * DESCRIPTION
 *	Shared by queue_bdb.c (environment, transactions, record helpers),
 *	queue_bdb_domain.c (domains and flush claims), queue_bdb_msg.c
 *	(messages, delivery outcomes, expiry) and queue_bdb_check.c (stats
 *	and the consistency check). These backend files are the only ones
 *	that include <db.h>; nothing outside queue/ sees this header.
 */
#ifndef QUEUE_QUEUE_BDB_INT_H
#define QUEUE_QUEUE_BDB_INT_H

#include <db.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "queue.h"

#define BDB_CHUNK		(64 * 1024)	/* body bytes per record */
#define BDB_PAGESIZE		4096
#define BDB_CACHE_DEFAULT	(64ULL * 1024 * 1024)
#define BDB_LOG_BUFFER		(4 * 1024 * 1024)
#define BDB_LOG_FILE_MAX	(32 * 1024 * 1024)
#define BDB_LOCK_TIMEOUT_US	(5 * 1000 * 1000)
#define BDB_WATCHDOG_MS		500
#define BDB_TRICKLE_PCT		20		/* clean pages kept in the cache */
#define BDB_CHECK_RECOUNTS	3		/* tries at an exact store-wide recount */
#define BDB_WEDGE_TICKS		20		/* ticks without progress: suspect */
#define BDB_TRICKLE_TICKS	4		/* trickle every 2 s */
#define BDB_OPEN_TRIES		5		/* reopens when a dead process blocks */
#define BDB_CKP_TICKS		20		/* watchdog ticks between checkpoints */
#define BDB_GC_BATCH		64		/* enqueues per group commit */
#define BDB_MAX_LOCKS		100000
#define BDB_THREAD_COUNT	1024
#define BDB_MAX_RETRIES		200
#define BDB_BATCH		256		/* entries per short read or write txn */
#define BDB_DEFAULT_LIFETIME	(5 * 86400)
#define BDB_SEQ_CACHE		32
#define BDB_STATS_VERSION	1

enum bdb_db {
	BDB_MESSAGES,
	BDB_BODIES,
	BDB_DOMAINQ,
	BDB_EXPIRY,
	BDB_DOMAINS,
	BDB_META,
	BDB_NDB
};

/* Application results travel through the same int as DB error codes. */
#define BDB_APP(st)	(-10000 - (int)(st))
#define BDB_IS_APP(rc)	((rc) <= -10000 && (rc) > -10100)
#define BDB_APP_ST(rc)	((enum queue_status)(-10000 - (rc)))

struct bdb_enq_arg;

struct bdb {
	pthread_rwlock_t lock;		/* writers: reopen after recovery */
	uint64_t	 generation;
	DB_ENV		*env;
	DB		*db[BDB_NDB];
	DB_SEQUENCE	*seq;
	char		 home[PATH_MAX];
	unsigned	 flags;
	uint64_t	 default_lifetime;
	uint64_t	 cache_bytes;
	int		 wrote;		/* this handle committed a write (atomic:
					   the watchdog thread reads it) */
	/* group commit of enqueues (queue_bdb_msg.c) */
	pthread_mutex_t	 gc_mu;
	pthread_cond_t	 gc_cv;
	struct bdb_enq_arg *gc_head, **gc_tail;	/* waiting requests */
	int		 gc_leader;	/* a batch is being written */
	pthread_t	 watchdog;	/* expires lock waits: bdb_watchdog() */
	pthread_t	 sentinel;	/* notices wedges: bdb_sentinel() */
	int		 sentinel_started;
	pthread_mutex_t	 env_mu;	/* env_ready, for the watchdog */
	int		 env_ready;	/* env is open and usable */
	dev_t		 region_dev;	/* __db.001 of the env we are in */
	ino_t		 region_ino;
	int		 open_tries;
	int		 inflight;	/* threads inside bdb_run (atomic) */
	uint64_t	 progress;	/* bdb_run calls finished (atomic) */
	void		(*on_wedged)(void *);
	void		*wedged_arg;
	pthread_mutex_t	 wd_mu;
	pthread_cond_t	 wd_cv;
	int		 wd_stop;
	int		 sn_stop;
};

/* Store-wide counters kept in meta.db under "stats". */
struct bdb_stats {
	uint64_t created, messages, bytes, recipients;
	uint64_t enqueued, delivered, failed, deferred, deleted;
};

typedef int (*bdb_txn_fn)(struct bdb *, DB_TXN *, void *);

#define BDB_READ	0x01	/* read committed: no lock kept between records */
#define BDB_WRITE	0x02	/* durable at return */
#define BDB_LOCKED	0x04	/* a read under ordinary locking */
#define BDB_NOFLUSH	0x08	/* with BDB_WRITE: caller runs bdb_flush() */

/* queue_bdb.c: environment, transactions, records */
enum queue_status bdb_run(struct bdb *, unsigned mode, bdb_txn_fn, void *,
	    const char *what, struct queue_error *);
enum queue_status bdb_fail(int rc, const char *what, struct queue_error *);
enum queue_status bdb_flush(struct bdb *, uint64_t gen, struct queue_error *);
extern __thread uint64_t bdb_commit_gen;
uint64_t bdb_now(void);
uint64_t bdb_sub(uint64_t, uint64_t);
DBT	bdb_dbt(const void *, size_t);
DBT	bdb_dbt_malloc(void);
size_t	bdb_dq_key(unsigned char *, const char *domain, uint64_t qid);
size_t	bdb_exp_key(unsigned char *, uint64_t expiry, uint64_t qid,
	    const char *domain);
int	bdb_dom_get(struct bdb *, DB_TXN *, const char *, struct queue_domain *,
	    u_int32_t flags);
int	bdb_dom_put(struct bdb *, DB_TXN *, const struct queue_domain *,
	    u_int32_t flags);
int	bdb_msg_get(struct bdb *, DB_TXN *, uint64_t, struct queue_msg *,
	    u_int32_t flags);
int	bdb_msg_put(struct bdb *, DB_TXN *, const struct queue_msg *,
	    u_int32_t flags);
int	bdb_dq_put(struct bdb *, DB_TXN *, const char *domain,
	    const struct queue_msg *, uint64_t expiry);
int	bdb_dq_expiry(struct bdb *, DB_TXN *, const char *domain, uint64_t qid,
	    uint64_t *expiry, u_int32_t flags);
int	bdb_stats_get(struct bdb *, DB_TXN *, struct bdb_stats *, u_int32_t);
int	bdb_stats_put(struct bdb *, DB_TXN *, const struct bdb_stats *);
int	bdb_has_live(const struct queue_msg *, const char *domain);

/* queue_bdb_domain.c */
enum queue_status bdb_domain_add(void *, const struct queue_domain *,
	    struct queue_error *);
enum queue_status bdb_domain_update(void *, const char *, queue_update_fn,
	    void *, struct queue_error *);
enum queue_status bdb_domain_get(void *, const char *, struct queue_domain *,
	    struct queue_error *);
enum queue_status bdb_domain_del(void *, const char *, int,
	    struct queue_error *);
enum queue_status bdb_domain_list(void *, queue_domain_fn, void *,
	    struct queue_error *);
enum queue_status bdb_domain_exists(void *, const char *,
	    struct queue_error *);
enum queue_status bdb_claim(void *, const char *, const char *, uint64_t,
	    char *, struct queue_error *);
enum queue_status bdb_unclaim(void *, const char *, const char *, int,
	    struct queue_error *);
int	bdb_dom_oldest(struct bdb *, DB_TXN *, struct queue_domain *);

/* queue_bdb_msg.c */
enum queue_status bdb_id_reserve(void *, unsigned, uint64_t *,
	    struct queue_error *);
enum queue_status bdb_enqueue(void *, struct queue_msg *, queue_reader_fn,
	    void *, struct queue_error *);
enum queue_status bdb_walk(void *, const char *, unsigned, queue_msg_fn,
	    void *, struct queue_error *);
enum queue_status bdb_get(void *, uint64_t, struct queue_msg **,
	    struct queue_error *);
enum queue_status bdb_body_read(void *, uint64_t, queue_chunk_fn, void *,
	    struct queue_error *);
enum queue_status bdb_record(void *, const struct queue_outcome *, size_t,
	    struct queue_error *);
enum queue_status bdb_msg_op(void *, enum queue_op, uint64_t, const char *,
	    struct queue_error *);
enum queue_status bdb_domain_op(void *, enum queue_op, const char *,
	    uint64_t *, struct queue_error *);
enum queue_status bdb_expire_scan(void *, uint64_t, size_t, queue_expire_fn,
	    void *, struct queue_error *);

/* queue_bdb_check.c */
enum queue_status bdb_stats(void *, struct queue_stats *,
	    struct queue_error *);
enum queue_status bdb_check(void *, queue_problem_fn, void *, uint64_t *,
	    struct queue_error *);

#endif
