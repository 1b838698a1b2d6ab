/*
 * NAME
 *	queue 3h - the per-domain message store
 * SYNOPSIS
 *	#include "queue.h"
 * DESCRIPTION
 *	The store keeps customer domains, their queued messages and the
 *	bookkeeping that delivery needs. It is the only durable state of the
 *	node. The front end (queue.c) validates arguments and dispatches to
 *	a backend through a const vtable; queue_bdb.c, a transactional
 *	Berkeley DB environment under state_dir, is the one backend today.
 *
 *	Every write is one transaction. A write that returns QUEUE_OK is on
 *	stable storage (the log has been flushed); concurrent writers share
 *	log flushes (group commit). Readers see every record whole, at
 *	read-committed isolation, and long reads go in short batches, so
 *	no reader can stall a writer. Several processes may have the store
 *	open at once; a process that dies (even by SIGKILL) is detected and
 *	its locks and transactions are reclaimed.
 *
 *	A message is stored once, whatever the number of customer domains
 *	its recipients fall into. Each recipient carries the customer domain
 *	it was accepted for; a domain's view of a message holds only its own
 *	recipients. A message leaves the store when no recipient of it is
 *	queued or held any more.
 *
 *	A queue id is the arrival time and a sequence number
 *	(queue_id_make()). queue_id_reserve() hands out n sequence numbers
 *	at once, so that a server can name a message (in its Received:
 *	header) before it exists, without a store call per message:
 *	queue_id_make(now, one of them) is then msg->reserved_qid, which
 *	queue_enqueue() uses when it is not 0. A number never used is
 *	simply skipped.
 *
 *	Functions return enum queue_status. On anything but QUEUE_OK the
 *	optional struct queue_error receives one line of text fit for an
 *	administrator. The store never logs; callers do.
 */
#ifndef QUEUE_QUEUE_H
#define QUEUE_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dname.h"

#define QUEUE_ID_LEN		14	/* hex digits in a printed queue id */
#define QUEUE_ERR_MAX		256
#define QUEUE_HOLDER_MAX	128
#define QUEUE_ID_RESERVE_MAX	4096	/* ids in one queue_id_reserve() */
#define QUEUE_ENV_SUBDIR	"queue"	/* environment home below state_dir */

enum queue_status {
	QUEUE_OK = 0,
	QUEUE_NOTFOUND,		/* no such message, domain or claim */
	QUEUE_EXISTS,		/* domain already exists */
	QUEUE_BUSY,		/* claimed by another holder / domain not empty */
	QUEUE_LIMIT,		/* domain --max-messages / --max-bytes reached */
	QUEUE_NOSPACE,		/* disk or store full (ENOSPC) */
	QUEUE_INVALID,		/* bad argument */
	QUEUE_ERROR,		/* store error: see the text */
};

enum queue_body_type {
	QUEUE_BODY_7BIT = 0,
	QUEUE_BODY_8BITMIME,
	QUEUE_BODY_BINARYMIME,
};

enum queue_ret {
	QUEUE_RET_DEFAULT = 0,
	QUEUE_RET_FULL,
	QUEUE_RET_HDRS,
};

/* RFC 3461 NOTIFY bits; 0 means the parameter was absent. */
#define QUEUE_NOTIFY_NEVER	0x01
#define QUEUE_NOTIFY_SUCCESS	0x02
#define QUEUE_NOTIFY_FAILURE	0x04
#define QUEUE_NOTIFY_DELAY	0x08

enum queue_rcpt_state {
	QUEUE_RCPT_QUEUED = 0,
	QUEUE_RCPT_HELD,
	QUEUE_RCPT_DELIVERED,
	QUEUE_RCPT_FAILED,
	QUEUE_RCPT_DELETED,	/* removed by the administrator, no DSN */
};

struct queue_rcpt {
	char		*addr;		/* envelope address as received */
	char		*orcpt;		/* RFC 3461 ORCPT, "type;xtext", or NULL */
	unsigned	 notify;	/* QUEUE_NOTIFY_* */
	char		 domain[DNAME_MAX + 1];	/* customer domain (key form) */
	enum queue_rcpt_state state;
	uint32_t	 attempts;
	uint64_t	 last_attempt;	/* unix time, 0 = never */
	char		*last_error;	/* last reply text, or NULL */
	uint32_t	 index;		/* position in the whole message */
};

struct queue_msg {
	uint64_t	 qid;
	char		 id[QUEUE_ID_LEN + 1];
	uint64_t	 reserved_qid;	/* from queue_id_reserve(), or 0 */
	char		*sender;	/* "" for the null sender */
	char		*envid;		/* RFC 3461 ENVID (xtext), or NULL */
	enum queue_ret	 ret;
	enum queue_body_type body;
	int		 smtputf8;
	uint64_t	 size;		/* body octets, set by the store */
	uint64_t	 arrival;	/* unix time, set by the store */
	uint64_t	 delay_warned;	/* when a delay DSN was queued, 0 */
	char		*client_addr;
	char		*helo;
	char		*auth_id;	/* SASL identity, or NULL */
	size_t		 nrcpt;
	struct queue_rcpt *rcpt;
};

enum queue_etrn {
	QUEUE_ETRN_OFF = 0,
	QUEUE_ETRN_ANY,
	QUEUE_ETRN_OWNER,
};

enum queue_tls {
	QUEUE_TLS_NONE = 0,
	QUEUE_TLS_MAY,
	QUEUE_TLS_ENCRYPT,
	QUEUE_TLS_VERIFY,
};

struct queue_domain {
	char		 name[DNAME_MAX + 1];
	/* settings, changed with queue_domain_add/update */
	char		**owners;
	size_t		 nowners;
	int		 subdomains;
	enum queue_etrn	 etrn;
	char		*route;		/* "mx", "client" or "host[:port],..." */
	enum queue_tls	 tls;
	uint64_t	 max_messages;	/* 0 = unlimited */
	uint64_t	 max_bytes;	/* 0 = unlimited */
	uint64_t	 lifetime;	/* seconds, 0 = the store default */
	uint64_t	 retry;		/* seconds: --retry, 0 = only when
					   triggered (ETRN, odmrctl flush) */
	/* maintained by the store; ignored on add/update */
	uint64_t	 created;
	uint64_t	 messages;	/* messages with a live recipient here */
	uint64_t	 bytes;		/* their total size */
	uint64_t	 last_pickup;	/* end of the last flush, 0 = never */
	char		*claim_holder;	/* NULL when no flush runs */
	uint64_t	 claim_pid;
	uint64_t	 claim_expiry;
	uint64_t	 oldest;	/* arrival of the oldest message, 0 = none */
	uint64_t	 next_expiry;	/* expiry of the oldest message, 0 = none */
};

enum queue_outcome_kind {
	QUEUE_OUTCOME_DELIVERED,	/* next hop said 2xx */
	QUEUE_OUTCOME_DEFERRED,		/* 4xx or no answer: stays queued */
	QUEUE_OUTCOME_FAILED,		/* 5xx: leaves the queue */
	QUEUE_OUTCOME_WARNED,		/* a delay DSN went out for the
					   message: sets delay_warned, no
					   recipient changes */
};

struct queue_outcome {
	uint64_t	 qid;
	uint32_t	 rcpt_index;	/* struct queue_rcpt.index */
	enum queue_outcome_kind kind;
	const char	*text;		/* reply text, may be NULL */
};

enum queue_op {
	QUEUE_OP_HOLD,
	QUEUE_OP_RELEASE,
	QUEUE_OP_DELETE,
};

struct queue_stats {
	uint64_t	 domains;
	uint64_t	 messages;	/* live messages (stored once) */
	uint64_t	 bytes;
	uint64_t	 recipients;	/* live recipients */
	uint64_t	 enqueued;	/* counters since the store was made */
	uint64_t	 delivered;
	uint64_t	 failed;
	uint64_t	 deferred;
	uint64_t	 deleted;
	uint64_t	 created;	/* when the store was made */
	uint64_t	 log_files;	/* backend detail */
	uint64_t	 log_bytes;
	uint64_t	 cache_hit_pct;
	uint64_t	 deadlocks;
	uint64_t	 commits;
	uint64_t	 log_flushes;	/* since the environment was opened */
};

struct queue_error {
	char		 text[QUEUE_ERR_MAX];
};

#define QUEUE_OPEN_CREATE	0x01	/* create state_dir/queue if absent */
#define QUEUE_OPEN_NOSYNC	0x02	/* commits do not wait for the disk:
					   bulk loads in benchmarks only */

/*
 * A process killed inside the backend can die holding one of its
 * internal mutexes. Lock waits time out, but a thread blocked on such a
 * mutex cannot be woken: the only way on is a new process, whose open
 * runs recovery. When the store sees its calls make no progress while a
 * process that had it open is dead, it calls on_wedged (from its own
 * thread); a command-line tool re-executes itself, a daemon restarts.
 */
struct queue_opts {
	const char	*state_dir;
	unsigned	 flags;		/* QUEUE_OPEN_* */
	uint64_t	 default_lifetime; /* seconds; 0 means 5 days */
	uint64_t	 cache_bytes;	/* 0 = backend default */
	void		(*on_wedged)(void *arg);
	void		*wedged_arg;
};

struct queue;

/*
 * A source of body bytes, read like pread(2): up to len bytes from
 * offset off; returns bytes read, 0 at the end, -1 on error. The store
 * may read the same offsets again when it retries a transaction.
 */
typedef ssize_t (*queue_reader_fn)(void *ctx, uint64_t off, void *buf,
	    size_t len);

/* Callbacks; a non-zero return stops the walk and is passed back. */
typedef int (*queue_msg_fn)(const struct queue_msg *, void *arg);
typedef int (*queue_domain_fn)(const struct queue_domain *, void *arg);
typedef int (*queue_chunk_fn)(const void *data, size_t len, void *arg);
typedef int (*queue_expire_fn)(uint64_t qid, const char *domain,
	    uint64_t expiry, void *arg);
typedef int (*queue_problem_fn)(const char *problem, void *arg);

/* queue_check() texts with this prefix are remarks, not counted problems */
#define QUEUE_CHECK_NOTE	"note: "
typedef void (*queue_update_fn)(struct queue_domain *, void *arg);

#define QUEUE_WALK_DELIVERABLE	0x01	/* only queued (not held) recipients */

/* opening */
enum queue_status queue_open(const struct queue_opts *, struct queue **,
	    struct queue_error *);
void	queue_close(struct queue **);
const char *queue_backend_name(const struct queue *);

/* domains */
enum queue_status queue_domain_add(struct queue *, const struct queue_domain *,
	    struct queue_error *);
enum queue_status queue_domain_update(struct queue *, const char *name,
	    queue_update_fn, void *arg, struct queue_error *);
enum queue_status queue_domain_get(struct queue *, const char *name,
	    struct queue_domain *, struct queue_error *);
enum queue_status queue_domain_del(struct queue *, const char *name,
	    int force, struct queue_error *);
enum queue_status queue_domain_list(struct queue *, queue_domain_fn, void *,
	    struct queue_error *);
enum queue_status queue_domain_match(struct queue *, const char *rcpt_domain,
	    char out[DNAME_MAX + 1], struct queue_error *);
void	queue_domain_clear(struct queue_domain *);

/* messages */
enum queue_status queue_enqueue(struct queue *, struct queue_msg *,
	    queue_reader_fn, void *ctx, struct queue_error *);
enum queue_status queue_id_reserve(struct queue *, unsigned n,
	    uint64_t *first, struct queue_error *);
uint64_t queue_id_make(uint64_t arrival, uint64_t seq);
enum queue_status queue_enqueue_mem(struct queue *, struct queue_msg *,
	    const void *body, size_t len, struct queue_error *);
enum queue_status queue_walk(struct queue *, const char *domain,
	    unsigned flags, queue_msg_fn, void *arg, struct queue_error *);
enum queue_status queue_deliverable(struct queue *, const char *domain,
	    int *any, struct queue_error *);
enum queue_status queue_get(struct queue *, uint64_t qid,
	    struct queue_msg **, struct queue_error *);
enum queue_status queue_body_read(struct queue *, uint64_t qid,
	    queue_chunk_fn, void *arg, struct queue_error *);
enum queue_status queue_record(struct queue *, const struct queue_outcome *,
	    size_t n, struct queue_error *);
enum queue_status queue_msg_op(struct queue *, enum queue_op, uint64_t qid,
	    const char *domain, struct queue_error *);
enum queue_status queue_domain_op(struct queue *, enum queue_op,
	    const char *domain, uint64_t *count, struct queue_error *);
void	queue_msg_free(struct queue_msg **);

/* flush claims */
enum queue_status queue_claim(struct queue *, const char *domain,
	    const char *holder, uint64_t ttl, char busy_holder[QUEUE_HOLDER_MAX],
	    struct queue_error *);
enum queue_status queue_unclaim(struct queue *, const char *domain,
	    const char *holder, int picked_up, struct queue_error *);

/* maintenance */
enum queue_status queue_expire_scan(struct queue *, uint64_t now,
	    size_t limit, queue_expire_fn, void *arg, struct queue_error *);
enum queue_status queue_stats(struct queue *, struct queue_stats *,
	    struct queue_error *);
enum queue_status queue_check(struct queue *, queue_problem_fn, void *arg,
	    uint64_t *nproblems, struct queue_error *);
enum queue_status queue_maintain(struct queue *, struct queue_error *);

/* names and ids */
void	queue_id_format(uint64_t qid, char out[QUEUE_ID_LEN + 1]);
int	queue_id_parse(const char *, uint64_t *);
const char *queue_status_name(enum queue_status);
const char *queue_rcpt_state_name(enum queue_rcpt_state);
const char *queue_body_type_name(enum queue_body_type);
const char *queue_ret_name(enum queue_ret);
const char *queue_etrn_name(enum queue_etrn);
const char *queue_tls_name(enum queue_tls);
int	queue_etrn_parse(const char *, enum queue_etrn *);
int	queue_tls_parse(const char *, enum queue_tls *);
int	queue_body_type_parse(const char *, enum queue_body_type *);
int	queue_ret_parse(const char *, enum queue_ret *);
void	queue_notify_format(unsigned notify, char *out, size_t outsz);

#endif
