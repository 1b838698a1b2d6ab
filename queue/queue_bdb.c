/*
 * NAME
 *	queue_bdb 3 - the Berkeley DB backend of the store
 * SYNOPSIS
 *	extern const struct queue_backend queue_bdb_backend;
 * DESCRIPTION
 *	One transactional environment (DB_INIT_TXN, LOG, LOCK, MPOOL,
 *	DB_THREAD) lives in state_dir/queue. It holds six btrees:
 *
 *	messages.db	qid (be64) -> message record (queue_rec.c)
 *	bodies.db	qid (be64) + chunk number (be32) -> body bytes
 *	domainq.db	domain NUL qid (be64) -> expiry (be64) + a copy of the
 *			message record; one entry per (message, domain) with a
 *			live recipient; ordered by arrival because a qid starts
 *			with its arrival time. The copy lets a walk read one
 *			index sequentially instead of one scattered messages.db
 *			page per message, so walking a domain costs the same in
 *			a big store as in a small one.
 *	expiry.db	expiry (be64) qid (be64) domain -> empty
 *	domains.db	domain -> domain record with its counters
 *	meta.db		"stats" -> store-wide counters; "qid" -> sequence
 *
 *	Durability and group commit: a write transaction commits with
 *	DB_TXN_NOSYNC, which releases its locks at once, and then calls
 *	DB_ENV->log_flush(). Concurrent committers wait on the same log
 *	flush, so N writers share one fsync instead of queueing behind each
 *	other's fsync while holding page locks. QUEUE_OK is returned only
 *	after the flush.
 *
 *	Readers use DB_TXN_SNAPSHOT on DB_MULTIVERSION databases, so
 *	odmrctl never blocks the daemon and never sees a torn state.
 *	bodies.db is the exception: bodies are written once and deleted
 *	once, and multiversion copies of a 50 MB body's pages would not fit
 *	in the cache; body reads take ordinary short read locks.
 *
 *	Crash safety: every process opens with DB_REGISTER | DB_RECOVER,
 *	so recovery runs exactly when a process died holding the
 *	environment. Recovery invalidates the environment of processes
 *	still running; they see DB_RUNRECOVERY, reopen, and retry the
 *	operation. Lock waits time out, and failchk() (with an is_alive
 *	callback) releases the locks of dead processes, so a stale lock
 *	cannot wedge the node. Deadlocks are detected and retried.
 *
 *	This is the only file that includes <db.h>.
 * SEE ALSO
 *	queue(3), queue_rec(3)
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "pack.h"
#include "queue.h"
#include "queue_backend.h"
#include "queue_rec.h"
#include "xmalloc.h"

#define BDB_CHUNK		(64 * 1024)	/* body bytes per record */
#define BDB_PAGESIZE		4096
#define BDB_CACHE_DEFAULT	(64ULL * 1024 * 1024)
#define BDB_LOG_BUFFER		(4 * 1024 * 1024)
#define BDB_LOG_FILE_MAX	(32 * 1024 * 1024)
#define BDB_LOCK_TIMEOUT_US	(5 * 1000 * 1000)
#define BDB_MAX_LOCKS		100000
#define BDB_THREAD_COUNT	1024
#define BDB_MAX_RETRIES		50
#define BDB_BATCH		500		/* messages per domain_op txn */
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

static const char *const bdb_db_files[BDB_NDB] = {
	"messages.db", "bodies.db", "domainq.db", "expiry.db", "domains.db",
	"meta.db",
};

/* Application results travel through the same int as DB error codes. */
#define BDB_APP(st)	(-10000 - (int)(st))
#define BDB_IS_APP(rc)	((rc) <= -10000 && (rc) > -10100)
#define BDB_APP_ST(rc)	((enum queue_status)(-10000 - (rc)))

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
	int		 wrote;		/* this handle committed a write */
};

/* Store-wide counters kept in meta.db under "stats". */
struct bdb_stats {
	uint64_t created, messages, bytes, recipients;
	uint64_t enqueued, delivered, failed, deferred, deleted;
};

static __thread char bdb_errmsg[256];
static __thread int bdb_saw_enospc;

/*
 * bdb_errcall - keep Berkeley DB's last message for the error text, and
 * remember a full disk: a failed page write reaches the caller as a
 * generic cache error, but the administrator must hear "store full".
 */
static void
bdb_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	(void)env;
	(void)pfx;
	if (strstr(msg, strerror(ENOSPC)) != NULL ||
	    strstr(msg, strerror(EDQUOT)) != NULL)
		bdb_saw_enospc = 1;
	strlcpy(bdb_errmsg, msg, sizeof(bdb_errmsg));
}

/* bdb_isalive - is_alive callback for failchk: is that process running? */
static int
bdb_isalive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
	(void)env;
	(void)tid;
	(void)flags;
	if (pid == getpid())
		return 1;	/* our threads never leave the env uncleanly */
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* bdb_now - wall clock seconds */
static uint64_t
bdb_now(void)
{
	return (uint64_t)time(NULL);
}

/* bdb_fail - turn a DB error code into a status and an error text */
static enum queue_status
bdb_fail(int rc, const char *what, struct queue_error *err)
{
	if (BDB_IS_APP(rc))
		return BDB_APP_ST(rc);
	if (rc == ENOSPC || rc == EDQUOT || bdb_saw_enospc) {
		queue_error_set(err, "%s: store full: %s", what,
		    strerror(rc == EDQUOT ? EDQUOT : ENOSPC));
		return QUEUE_NOSPACE;
	}
	if (bdb_errmsg[0])
		queue_error_set(err, "%s: %s (%s)", what, db_strerror(rc),
		    bdb_errmsg);
	else
		queue_error_set(err, "%s: %s", what, db_strerror(rc));
	return QUEUE_ERROR;
}

/* bdb_dbt - initialise a DBT over caller memory */
static DBT
bdb_dbt(const void *p, size_t n)
{
	DBT d;

	memset(&d, 0, sizeof(d));
	d.data = (void *)(uintptr_t)p;
	d.size = (u_int32_t)n;
	return d;
}

/* bdb_dbt_malloc - initialise a DBT that Berkeley DB fills with malloc */
static DBT
bdb_dbt_malloc(void)
{
	DBT d;

	memset(&d, 0, sizeof(d));
	d.flags = DB_DBT_MALLOC;
	return d;
}

/* bdb_close_handles - close databases and the environment */
static void
bdb_close_handles(struct bdb *b)
{
	int i;

	if (b->seq) {
		b->seq->close(b->seq, 0);
		b->seq = NULL;
	}
	for (i = BDB_NDB - 1; i >= 0; i--)
		if (b->db[i]) {
			b->db[i]->close(b->db[i], DB_NOSYNC);
			b->db[i] = NULL;
		}
	if (b->env) {
		b->env->close(b->env, 0);
		b->env = NULL;
	}
}

/* bdb_open_db - open (or create) one btree inside the environment */
static int
bdb_open_db(struct bdb *b, enum bdb_db which, int create)
{
	DB *db;
	int rc;

	if ((rc = db_create(&db, b->env, 0)) != 0)
		return rc;
	/*
	 * One database page per file system page: a process killed while
	 * writing a larger page can leave it half old, half new, and
	 * recovery trusts the page LSN in its first half. Checksums make
	 * any torn page that still happens (power loss) detectable.
	 */
	db->set_pagesize(db, BDB_PAGESIZE);
	db->set_flags(db, DB_CHKSUM);
	rc = db->open(db, NULL, bdb_db_files[which], NULL, DB_BTREE,
	    DB_AUTO_COMMIT | DB_THREAD |
	    (which == BDB_BODIES ? 0 : DB_MULTIVERSION) |
	    (create ? DB_CREATE : 0), 0600);
	if (rc != 0) {
		db->close(db, 0);
		return rc;
	}
	b->db[which] = db;
	return 0;
}

/*
 * bdb_region_reserve - give the shared region files real disk blocks.
 * They are mapped into memory and created sparse, and the cache region
 * grows as it is used; a page first written when the disk is full would
 * kill the process with SIGBUS instead of returning ENOSPC. So allocate
 * every region file now, and reserve (beyond its end) the whole size the
 * cache region may grow to. On a full disk this turns into a clean open
 * error.
 */
static int
bdb_region_reserve(DB_ENV *env, const char *home, struct queue_error *err)
{
	char path[PATH_MAX], best[PATH_MAX] = "";
	DB_MPOOL_STAT *ms;
	struct dirent *de;
	struct stat sb;
	off_t regsize = 0, regmax = 0, bestdiff = -1;
	DIR *d;
	int fd, rc = 0;

	if (env->memp_stat(env, &ms, NULL, 0) == 0) {
		regsize = (off_t)ms->st_regsize;
		regmax = (off_t)ms->st_regmax;
		free(ms);
	}
	if ((d = opendir(home)) == NULL)
		return 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "__db.", 5) != 0 ||
		    strcmp(de->d_name, "__db.register") == 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", home,
		    de->d_name) >= sizeof(path))
			continue;
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
			continue;
		if (fstat(fd, &sb) == 0 && sb.st_size > 0) {
			off_t diff = sb.st_size > regsize ? sb.st_size - regsize :
			    regsize - sb.st_size;

			rc = posix_fallocate(fd, 0, sb.st_size);
			if (bestdiff < 0 || diff < bestdiff) {
				bestdiff = diff;
				strlcpy(best, path, sizeof(best));
			}
		}
		close(fd);
	}
	closedir(d);
	if (rc == 0 && best[0] && regmax > 0 &&
	    (fd = open(best, O_RDWR | O_CLOEXEC)) >= 0) {
		if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, regmax) < 0)
			rc = errno;
		close(fd);
	}
	if (rc == EOPNOTSUPP || rc == EINVAL || rc == ENOSYS)
		rc = 0;		/* the file system cannot reserve: carry on */
	if (rc != 0)
		queue_error_set(err, "cannot reserve space for the store's "
		    "shared memory in %s: %s (store full)", home, strerror(rc));
	return rc;
}

static int bdb_stats_get(struct bdb *, DB_TXN *, struct bdb_stats *,
    u_int32_t);
static int bdb_stats_put(struct bdb *, DB_TXN *, const struct bdb_stats *);

/* bdb_stats_init - record when the store was made, once */
static int
bdb_stats_init(struct bdb *b)
{
	DBT key = bdb_dbt("stats", 5), val;
	struct bdb_stats s;
	DB_TXN *t;
	int rc;

	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL | DB_DBT_USERMEM;
	rc = b->db[BDB_META]->get(b->db[BDB_META], NULL, &key, &val, 0);
	if (rc != DB_NOTFOUND)
		return rc;
	if ((rc = b->env->txn_begin(b->env, NULL, &t, 0)) != 0)
		return rc;
	if ((rc = bdb_stats_get(b, t, &s, DB_RMW)) == 0)
		rc = bdb_stats_put(b, t, &s);
	if (rc != 0) {
		(void)t->abort(t);
		return rc;
	}
	return t->commit(t, 0);
}

/* bdb_open_handles - open the environment, run recovery if needed */
static enum queue_status
bdb_open_handles(struct bdb *b, struct queue_error *err)
{
	DB_ENV *env;
	DBT key;
	u_int32_t flags;
	int rc, i, create = (b->flags & QUEUE_OPEN_CREATE) != 0;

	bdb_errmsg[0] = '\0';
	if ((rc = db_env_create(&env, 0)) != 0)
		return bdb_fail(rc, "db_env_create", err);
	b->env = env;
	env->set_errcall(env, bdb_errcall);
	env->set_cachesize(env, (u_int32_t)(b->cache_bytes >> 30),
	    (u_int32_t)(b->cache_bytes & ((1U << 30) - 1)), 1);
	env->set_lg_bsize(env, BDB_LOG_BUFFER);
	env->set_lg_max(env, BDB_LOG_FILE_MAX);
	env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1);
	env->set_lk_detect(env, DB_LOCK_DEFAULT);
	env->set_lk_max_locks(env, BDB_MAX_LOCKS);
	env->set_lk_max_objects(env, BDB_MAX_LOCKS);
	env->set_lk_max_lockers(env, BDB_THREAD_COUNT * 2);
	env->set_tx_max(env, 1000);
	env->set_timeout(env, BDB_LOCK_TIMEOUT_US, DB_SET_LOCK_TIMEOUT);
	env->set_thread_count(env, BDB_THREAD_COUNT);
	env->set_isalive(env, bdb_isalive);
	if (b->flags & QUEUE_OPEN_NOSYNC)
		env->set_flags(env, DB_TXN_WRITE_NOSYNC, 1);

	flags = DB_CREATE | DB_INIT_TXN | DB_INIT_LOG | DB_INIT_LOCK |
	    DB_INIT_MPOOL | DB_THREAD | DB_REGISTER | DB_RECOVER;
	if ((rc = env->open(env, b->home, flags, 0600)) != 0) {
		enum queue_status st = bdb_fail(rc, "cannot open the store", err);

		bdb_close_handles(b);
		return st;
	}
	if (bdb_region_reserve(env, b->home, err) != 0) {
		bdb_close_handles(b);
		return QUEUE_NOSPACE;
	}
	/* A thread of a process that died may still hold locks. */
	(void)env->failchk(env, 0);
	for (i = 0; i < BDB_NDB; i++)
		if ((rc = bdb_open_db(b, (enum bdb_db)i, create)) != 0) {
			enum queue_status st;

			if (rc == ENOENT) {
				queue_error_set(err, "no queue store in %s "
				    "(%s missing; odmrd or 'odmrctl domain add' "
				    "creates it)", b->home, bdb_db_files[i]);
				st = QUEUE_NOTFOUND;
			} else {
				char what[PATH_MAX + 64];

				snprintf(what, sizeof(what), "cannot open %s/%s",
				    b->home, bdb_db_files[i]);
				st = bdb_fail(rc, what, err);
			}
			bdb_close_handles(b);
			return st;
		}
	if ((rc = db_sequence_create(&b->seq, b->db[BDB_META], 0)) != 0) {
		bdb_close_handles(b);
		return bdb_fail(rc, "db_sequence_create", err);
	}
	b->seq->initial_value(b->seq, 1);
	b->seq->set_cachesize(b->seq, BDB_SEQ_CACHE);
	key = bdb_dbt("qid", 3);
	if ((rc = b->seq->open(b->seq, NULL, &key,
	    DB_CREATE | DB_THREAD | DB_AUTO_COMMIT)) != 0) {
		bdb_close_handles(b);
		return bdb_fail(rc, "cannot open the queue id sequence", err);
	}
	b->generation++;
	if (create && (rc = bdb_stats_init(b)) != 0) {
		bdb_close_handles(b);
		return bdb_fail(rc, "cannot initialise the store", err);
	}
	return QUEUE_OK;
}

/* bdb_mkdirs - create state_dir and state_dir/queue, private */
static int
bdb_mkdirs(const char *state_dir, const char *home, struct queue_error *err)
{
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
		queue_error_set(err, "cannot create %s: %s", state_dir,
		    strerror(errno));
		return -1;
	}
	if (mkdir(home, 0700) < 0 && errno != EEXIST) {
		queue_error_set(err, "cannot create %s: %s", home,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* bdb_version_check - library and header must be the same 5.3 */
static int
bdb_version_check(struct queue_error *err)
{
	int maj, min, patch;

	(void)db_version(&maj, &min, &patch);
	if (maj != DB_VERSION_MAJOR || min != DB_VERSION_MINOR) {
		queue_error_set(err, "Berkeley DB library is %d.%d.%d but odmrd "
		    "was built with %d.%d.%d headers: rebuild against the "
		    "installed libdb", maj, min, patch, DB_VERSION_MAJOR,
		    DB_VERSION_MINOR, DB_VERSION_PATCH);
		return -1;
	}
	return 0;
}

/* bdb_open - backend open() */
static enum queue_status
bdb_open(const struct queue_opts *o, void **statep, struct queue_error *err)
{
	struct bdb *b;
	struct stat sb;
	enum queue_status st;

	if (bdb_version_check(err) < 0)
		return QUEUE_ERROR;
	b = xcalloc(1, sizeof(*b));
	if ((size_t)snprintf(b->home, sizeof(b->home), "%s/%s", o->state_dir,
	    QUEUE_ENV_SUBDIR) >= sizeof(b->home)) {
		queue_error_set(err, "state_dir path too long");
		free(b);
		return QUEUE_INVALID;
	}
	b->flags = o->flags;
	b->default_lifetime = o->default_lifetime ? o->default_lifetime :
	    BDB_DEFAULT_LIFETIME;
	b->cache_bytes = o->cache_bytes ? o->cache_bytes : BDB_CACHE_DEFAULT;
	if (b->flags & QUEUE_OPEN_CREATE) {
		if (bdb_mkdirs(o->state_dir, b->home, err) < 0) {
			free(b);
			return QUEUE_ERROR;
		}
	} else if (stat(b->home, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		queue_error_set(err, "no queue store in %s: %s", b->home,
		    errno ? strerror(errno) : "not a directory");
		free(b);
		return QUEUE_NOTFOUND;
	}
	pthread_rwlock_init(&b->lock, NULL);
	if ((st = bdb_open_handles(b, err)) != QUEUE_OK) {
		pthread_rwlock_destroy(&b->lock);
		free(b);
		return st;
	}
	*statep = b;
	return QUEUE_OK;
}

/* bdb_close - backend close(): checkpoint so the next open is quick */
static void
bdb_close(void **statep)
{
	struct bdb *b = *statep;

	if (b == NULL)
		return;
	/*
	 * A handle that wrote checkpoints (when enough log has gone by) so
	 * the next recovery is short; a reader leaves the cache alone.
	 */
	if (b->env && b->wrote)
		(void)b->env->txn_checkpoint(b->env, 1024, 0, 0);
	bdb_close_handles(b);
	pthread_rwlock_destroy(&b->lock);
	free(b);
	*statep = NULL;
}

/* bdb_reopen - after DB_RUNRECOVERY: rebuild the handles once */
static enum queue_status
bdb_reopen(struct bdb *b, uint64_t seen_gen, struct queue_error *err)
{
	enum queue_status st = QUEUE_OK;

	pthread_rwlock_wrlock(&b->lock);
	if (b->generation == seen_gen || b->env == NULL) {
		bdb_close_handles(b);
		st = bdb_open_handles(b, err);
	}
	pthread_rwlock_unlock(&b->lock);
	return st;
}

typedef int (*bdb_txn_fn)(struct bdb *, DB_TXN *, void *);

#define BDB_READ	0x01	/* snapshot: no locks on multiversion data */
#define BDB_WRITE	0x02	/* durable at return */
#define BDB_LOCKED	0x04	/* a read under ordinary locking */

/*
 * bdb_run - run fn inside one transaction: retry on deadlock and lock
 * timeout, reopen after recovery, and make writes durable before
 * returning. fn returns 0, a DB error, or BDB_APP(status).
 */
static enum queue_status
bdb_run(struct bdb *b, unsigned mode, bdb_txn_fn fn, void *arg,
    const char *what, struct queue_error *err)
{
	DB_TXN *t;
	uint64_t gen;
	int rc = 0, attempt;
	enum queue_status st;

	for (attempt = 0; attempt < BDB_MAX_RETRIES; attempt++) {
		bdb_errmsg[0] = '\0';
		bdb_saw_enospc = 0;
		pthread_rwlock_rdlock(&b->lock);
		gen = b->generation;
		if (b->env == NULL) {
			pthread_rwlock_unlock(&b->lock);
			rc = DB_RUNRECOVERY;
			goto recover;
		}
		rc = b->env->txn_begin(b->env, NULL, &t,
		    mode == BDB_READ ? DB_TXN_SNAPSHOT : 0);
		if (rc == 0) {
			rc = fn(b, t, arg);
			if (rc == 0) {
				rc = t->commit(t, mode == BDB_WRITE ?
				    DB_TXN_NOSYNC : 0);
				if (rc == 0 && mode == BDB_WRITE &&
				    !(b->flags & QUEUE_OPEN_NOSYNC))
					rc = b->env->log_flush(b->env, NULL);
				if (rc == 0) {
					if (mode == BDB_WRITE)
						b->wrote = 1;
					pthread_rwlock_unlock(&b->lock);
					return QUEUE_OK;
				}
			} else
				(void)t->abort(t);
		}
		pthread_rwlock_unlock(&b->lock);
		if (BDB_IS_APP(rc)) {
			st = BDB_APP_ST(rc);
			if (st != QUEUE_OK && err && err->text[0] == '\0')
				queue_error_set(err, "%s: %s", what,
				    queue_status_name(st));
			return st;
		}
		if (rc == DB_LOCK_DEADLOCK || rc == DB_LOCK_NOTGRANTED) {
			/* A dead process may hold the lock we wait for. */
			pthread_rwlock_rdlock(&b->lock);
			if (b->env && b->env->failchk(b->env, 0) == DB_RUNRECOVERY) {
				pthread_rwlock_unlock(&b->lock);
				rc = DB_RUNRECOVERY;
				goto recover;
			}
			pthread_rwlock_unlock(&b->lock);
			usleep((useconds_t)(1000 * (attempt < 10 ? attempt : 10) +
			    (unsigned)rand() % 1000));
			continue;
		}
recover:
		if (rc == DB_RUNRECOVERY) {
			if ((st = bdb_reopen(b, gen, err)) != QUEUE_OK)
				return st;
			continue;
		}
		return bdb_fail(rc, what, err);
	}
	return bdb_fail(rc, what, err);
}

/* ---- small record helpers (run inside a transaction) ---- */

/* bdb_dom_get - read and decode a domain record */
static int
bdb_dom_get(struct bdb *b, DB_TXN *t, const char *name,
    struct queue_domain *d, u_int32_t flags)
{
	DBT key = bdb_dbt(name, strlen(name)), val = bdb_dbt_malloc();
	int rc;

	rc = b->db[BDB_DOMAINS]->get(b->db[BDB_DOMAINS], t, &key, &val, flags);
	if (rc == DB_NOTFOUND)
		return BDB_APP(QUEUE_NOTFOUND);
	if (rc != 0)
		return rc;
	rc = queue_rec_dom_decode(val.data, val.size, d);
	free(val.data);
	return rc < 0 ? EINVAL : 0;
}

/* bdb_dom_put - encode and write a domain record */
static int
bdb_dom_put(struct bdb *b, DB_TXN *t, const struct queue_domain *d,
    u_int32_t flags)
{
	struct buf rec;
	DBT key = bdb_dbt(d->name, strlen(d->name)), val;
	int rc;

	buf_init(&rec);
	queue_rec_dom_encode(&rec, d);
	val = bdb_dbt(rec.data, rec.len);
	rc = b->db[BDB_DOMAINS]->put(b->db[BDB_DOMAINS], t, &key, &val, flags);
	buf_release(&rec);
	if (rc == DB_KEYEXIST)
		return BDB_APP(QUEUE_EXISTS);
	return rc;
}

/* bdb_msg_get - read and decode a message record */
static int
bdb_msg_get(struct bdb *b, DB_TXN *t, uint64_t qid, struct queue_msg *m,
    u_int32_t flags)
{
	unsigned char k[8];
	DBT key, val = bdb_dbt_malloc();
	int rc;

	pack_be64(k, qid);
	key = bdb_dbt(k, 8);
	rc = b->db[BDB_MESSAGES]->get(b->db[BDB_MESSAGES], t, &key, &val, flags);
	if (rc == DB_NOTFOUND)
		return BDB_APP(QUEUE_NOTFOUND);
	if (rc != 0)
		return rc;
	rc = queue_rec_msg_decode(val.data, val.size, m);
	free(val.data);
	return rc < 0 ? EINVAL : 0;
}

/* bdb_msg_put - encode and write a message record */
static int
bdb_msg_put(struct bdb *b, DB_TXN *t, const struct queue_msg *m,
    u_int32_t flags)
{
	unsigned char k[8];
	struct buf rec;
	DBT key, val;
	int rc;

	pack_be64(k, m->qid);
	key = bdb_dbt(k, 8);
	buf_init(&rec);
	queue_rec_msg_encode(&rec, m);
	val = bdb_dbt(rec.data, rec.len);
	rc = b->db[BDB_MESSAGES]->put(b->db[BDB_MESSAGES], t, &key, &val, flags);
	buf_release(&rec);
	return rc;
}

/* bdb_dq_key - domainq key: domain NUL qid */
static size_t
bdb_dq_key(unsigned char *out, const char *domain, uint64_t qid)
{
	size_t n = strlen(domain);

	memcpy(out, domain, n + 1);
	pack_be64(out + n + 1, qid);
	return n + 9;
}

/* bdb_exp_key - expiry key: expiry qid domain */
static size_t
bdb_exp_key(unsigned char *out, uint64_t expiry, uint64_t qid,
    const char *domain)
{
	size_t n = strlen(domain);

	pack_be64(out, expiry);
	pack_be64(out + 8, qid);
	memcpy(out + 16, domain, n);
	return n + 16;
}

/* bdb_stats_get - read the store-wide counters (RMW when writing) */
static int
bdb_stats_get(struct bdb *b, DB_TXN *t, struct bdb_stats *s, u_int32_t flags)
{
	DBT key = bdb_dbt("stats", 5), val = bdb_dbt_malloc();
	struct unpack u;
	int rc;

	memset(s, 0, sizeof(*s));
	rc = b->db[BDB_META]->get(b->db[BDB_META], t, &key, &val, flags);
	if (rc == DB_NOTFOUND) {
		s->created = bdb_now();
		return 0;
	}
	if (rc != 0)
		return rc;
	unpack_init(&u, val.data, val.size);
	if (unpack_u8(&u) != BDB_STATS_VERSION)
		u.error = 1;
	s->created = unpack_u64(&u);
	s->messages = unpack_u64(&u);
	s->bytes = unpack_u64(&u);
	s->recipients = unpack_u64(&u);
	s->enqueued = unpack_u64(&u);
	s->delivered = unpack_u64(&u);
	s->failed = unpack_u64(&u);
	s->deferred = unpack_u64(&u);
	s->deleted = unpack_u64(&u);
	free(val.data);
	return u.error ? EINVAL : 0;
}

/* bdb_stats_put - write the store-wide counters */
static int
bdb_stats_put(struct bdb *b, DB_TXN *t, const struct bdb_stats *s)
{
	struct buf rec;
	DBT key = bdb_dbt("stats", 5), val;
	int rc;

	buf_init(&rec);
	pack_u8(&rec, BDB_STATS_VERSION);
	pack_u64(&rec, s->created);
	pack_u64(&rec, s->messages);
	pack_u64(&rec, s->bytes);
	pack_u64(&rec, s->recipients);
	pack_u64(&rec, s->enqueued);
	pack_u64(&rec, s->delivered);
	pack_u64(&rec, s->failed);
	pack_u64(&rec, s->deferred);
	pack_u64(&rec, s->deleted);
	val = bdb_dbt(rec.data, rec.len);
	rc = b->db[BDB_META]->put(b->db[BDB_META], t, &key, &val, 0);
	buf_release(&rec);
	return rc;
}

/* bdb_sub - subtract without wrapping below zero */
static uint64_t
bdb_sub(uint64_t a, uint64_t v)
{
	return a > v ? a - v : 0;
}

/* bdb_dq_put - write a domain queue entry: expiry, then the record copy */
static int
bdb_dq_put(struct bdb *b, DB_TXN *t, const char *domain,
    const struct queue_msg *m, uint64_t expiry)
{
	unsigned char k[DNAME_MAX + 10];
	struct buf v;
	DBT key, val;
	int rc;

	buf_init(&v);
	pack_u64(&v, expiry);
	queue_rec_msg_encode(&v, m);
	key = bdb_dbt(k, bdb_dq_key(k, domain, m->qid));
	val = bdb_dbt(v.data, v.len);
	rc = b->db[BDB_DOMAINQ]->put(b->db[BDB_DOMAINQ], t, &key, &val, 0);
	buf_release(&v);
	return rc;
}

/* bdb_dq_expiry - the expiry of a domain queue entry (DB_NOTFOUND if none) */
static int
bdb_dq_expiry(struct bdb *b, DB_TXN *t, const char *domain, uint64_t qid,
    uint64_t *expiry, u_int32_t flags)
{
	unsigned char k[DNAME_MAX + 10], e[8];
	DBT key, val;
	int rc;

	key = bdb_dbt(k, bdb_dq_key(k, domain, qid));
	memset(&val, 0, sizeof(val));
	val.data = e;
	val.ulen = sizeof(e);
	val.dlen = sizeof(e);
	val.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
	rc = b->db[BDB_DOMAINQ]->get(b->db[BDB_DOMAINQ], t, &key, &val, flags);
	if (rc == 0)
		*expiry = val.size == 8 ? unpack_be64(e) : 0;
	return rc;
}

/* ---- domains ---- */

struct bdb_dom_arg {
	const struct queue_domain *in;
	const char	*name;
	queue_update_fn	 fn;
	void		*fnarg;
	struct queue_domain *out;
	int		 force;
	struct queue_error *err;
};

/* bdb_domain_add_txn - insert a new domain record */
static int
bdb_domain_add_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_dom_arg *a = arg;
	struct queue_domain d = *a->in;

	d.created = bdb_now();
	d.messages = d.bytes = d.last_pickup = 0;
	d.claim_holder = NULL;
	d.claim_pid = d.claim_expiry = 0;
	if (d.route == NULL)
		d.route = "mx";
	return bdb_dom_put(b, t, &d, DB_NOOVERWRITE);
}

/* bdb_domain_add - backend domain_add() */
static enum queue_status
bdb_domain_add(void *state, const struct queue_domain *d,
    struct queue_error *err)
{
	struct bdb_dom_arg a = { .in = d };
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_domain_add_txn, &a, "domain add", err);
	if (st == QUEUE_EXISTS)
		queue_error_set(err, "domain %s already exists", d->name);
	return st;
}

/* bdb_domain_update_txn - read, let the caller change, write back */
static int
bdb_domain_update_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_dom_arg *a = arg;
	struct queue_domain d, keep;
	int rc;

	if ((rc = bdb_dom_get(b, t, a->name, &d, DB_RMW)) != 0)
		return rc;
	keep = d;
	a->fn(&d, a->fnarg);
	/* the store owns the counters and the claim */
	strlcpy(d.name, keep.name, sizeof(d.name));
	d.created = keep.created;
	d.messages = keep.messages;
	d.bytes = keep.bytes;
	d.last_pickup = keep.last_pickup;
	d.claim_holder = keep.claim_holder;
	d.claim_pid = keep.claim_pid;
	d.claim_expiry = keep.claim_expiry;
	if (d.nowners == 0 || (d.route && strcmp(d.route, "client") == 0 &&
	    d.etrn != QUEUE_ETRN_OWNER))
		rc = BDB_APP(QUEUE_INVALID);
	else
		rc = bdb_dom_put(b, t, &d, 0);
	queue_domain_clear(&d);
	return rc;
}

/* bdb_domain_update - backend domain_update() */
static enum queue_status
bdb_domain_update(void *state, const char *name, queue_update_fn fn,
    void *fnarg, struct queue_error *err)
{
	struct bdb_dom_arg a = { .name = name, .fn = fn, .fnarg = fnarg };
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_domain_update_txn, &a,
	    "domain set", err);
	if (st == QUEUE_NOTFOUND)
		queue_error_set(err, "no such domain: %s", name);
	else if (st == QUEUE_INVALID)
		queue_error_set(err, "domain %s: needs an owner, and route "
		    "'client' requires etrn 'owner'", name);
	return st;
}

/* bdb_dom_oldest - fill oldest/next_expiry from the domain's first entry */
static int
bdb_dom_oldest(struct bdb *b, DB_TXN *t, struct queue_domain *d)
{
	unsigned char k[DNAME_MAX + 10];
	DBC *c;
	DBT key, val;
	size_t n = strlen(d->name);
	int rc;

	d->oldest = d->next_expiry = 0;
	if ((rc = b->db[BDB_DOMAINQ]->cursor(b->db[BDB_DOMAINQ], t, &c, 0)) != 0)
		return rc;
	memcpy(k, d->name, n + 1);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = (u_int32_t)(n + 1);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	rc = c->get(c, &key, &val, DB_SET_RANGE);
	if (rc == 0 && key.size == n + 9 && memcmp(k, d->name, n + 1) == 0) {
		d->oldest = unpack_be64(k + n + 1) >> 24;
		if (val.size >= 8)
			d->next_expiry = unpack_be64(val.data);
	} else if (rc == DB_NOTFOUND || rc == 0)
		rc = 0;
	c->close(c);
	return rc == DB_BUFFER_SMALL ? 0 : rc;
}

/* bdb_domain_get_txn - read one domain and its oldest message */
static int
bdb_domain_get_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_dom_arg *a = arg;
	int rc;

	if ((rc = bdb_dom_get(b, t, a->name, a->out, 0)) != 0)
		return rc;
	if ((rc = bdb_dom_oldest(b, t, a->out)) != 0)
		queue_domain_clear(a->out);
	return rc;
}

/* bdb_domain_get - backend domain_get() */
static enum queue_status
bdb_domain_get(void *state, const char *name, struct queue_domain *d,
    struct queue_error *err)
{
	struct bdb_dom_arg a = { .name = name, .out = d };
	enum queue_status st;

	st = bdb_run(state, BDB_READ, bdb_domain_get_txn, &a, "domain get", err);
	if (st == QUEUE_NOTFOUND)
		queue_error_set(err, "no such domain: %s", name);
	return st;
}

/* bdb_domain_exists_txn - existence test without decoding */
static int
bdb_domain_exists_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	const char *name = arg;
	DBT key = bdb_dbt(name, strlen(name)), val;
	int rc;

	/* DB_THREAD wants a memory flag even for a zero-length read */
	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL | DB_DBT_USERMEM;
	rc = b->db[BDB_DOMAINS]->get(b->db[BDB_DOMAINS], t, &key, &val, 0);
	return rc == DB_NOTFOUND ? BDB_APP(QUEUE_NOTFOUND) : rc;
}

/* bdb_domain_exists - backend domain_exists() */
static enum queue_status
bdb_domain_exists(void *state, const char *name, struct queue_error *err)
{
	return bdb_run(state, BDB_READ, bdb_domain_exists_txn,
	    (void *)(uintptr_t)name, "domain lookup", err);
}

struct bdb_list_arg {
	queue_domain_fn	 fn;
	void		*fnarg;
	int		 stopped;
};

/* bdb_domain_list_txn - walk domains.db in name order */
static int
bdb_domain_list_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_list_arg *a = arg;
	struct queue_domain d;
	DBC *c;
	DBT key, val;
	int rc, crc;

	a->stopped = 0;
	if ((rc = b->db[BDB_DOMAINS]->cursor(b->db[BDB_DOMAINS], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		if (queue_rec_dom_decode(val.data, val.size, &d) < 0) {
			rc = EINVAL;
			break;
		}
		if ((rc = bdb_dom_oldest(b, t, &d)) != 0) {
			queue_domain_clear(&d);
			break;
		}
		crc = a->fn(&d, a->fnarg);
		queue_domain_clear(&d);
		if (crc != 0) {
			a->stopped = crc;
			break;
		}
	}
	c->close(c);
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_domain_list - backend domain_list() */
static enum queue_status
bdb_domain_list(void *state, queue_domain_fn fn, void *fnarg,
    struct queue_error *err)
{
	struct bdb_list_arg a = { fn, fnarg, 0 };

	return bdb_run(state, BDB_READ, bdb_domain_list_txn, &a, "domain list",
	    err);
}

/* bdb_domain_del_txn - delete an empty domain record */
static int
bdb_domain_del_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_dom_arg *a = arg;
	struct queue_domain d;
	DBT key;
	int rc;

	if ((rc = bdb_dom_get(b, t, a->name, &d, DB_RMW)) != 0)
		return rc;
	if (d.messages > 0) {
		queue_error_set(a->err, "domain %s still holds %" PRIu64
		    " message(s); use --force to delete them too", a->name,
		    d.messages);
		queue_domain_clear(&d);
		return BDB_APP(QUEUE_BUSY);
	}
	queue_domain_clear(&d);
	key = bdb_dbt(a->name, strlen(a->name));
	return b->db[BDB_DOMAINS]->del(b->db[BDB_DOMAINS], t, &key, 0);
}

static enum queue_status bdb_domain_op(void *, enum queue_op, const char *,
    uint64_t *, struct queue_error *);

/* bdb_domain_del - backend domain_del(); --force deletes the mail first */
static enum queue_status
bdb_domain_del(void *state, const char *name, int force,
    struct queue_error *err)
{
	struct bdb_dom_arg a = { .name = name, .err = err };
	enum queue_status st;
	uint64_t n;
	int round;

	for (round = 0; round < 100; round++) {
		if (force) {
			st = bdb_domain_op(state, QUEUE_OP_DELETE, name, &n, err);
			if (st != QUEUE_OK && st != QUEUE_NOTFOUND)
				return st;
		}
		if (err)
			err->text[0] = '\0';
		st = bdb_run(state, BDB_WRITE, bdb_domain_del_txn, &a,
		    "domain del", err);
		if (st == QUEUE_NOTFOUND)
			queue_error_set(err, "no such domain: %s", name);
		if (st != QUEUE_BUSY || !force)
			return st;
	}
	return st;
}

/* ---- enqueue ---- */

struct bdb_enq_arg {
	struct queue_msg *m;
	queue_reader_fn	 rd;
	void		*ctx;
	unsigned char	*chunk;
	char		(*doms)[DNAME_MAX + 1];
	size_t		 ndoms;
	struct queue_error *err;
	int		 read_failed;
};

/* bdb_domcmp - qsort helper for domain names */
static int
bdb_domcmp(const void *x, const void *y)
{
	return strcmp((const char *)x, (const char *)y);
}

/* bdb_enqueue_txn - write envelope, body, indexes and counters at once */
static int
bdb_enqueue_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_enq_arg *a = arg;
	struct queue_msg *m = a->m;
	struct bdb_stats s;
	unsigned char k[DNAME_MAX + 32], ck[12];
	struct queue_domain *dom;
	uint64_t size = 0, *expiry;
	uint32_t chunkno = 0;
	db_seq_t seq;
	size_t i;
	int rc = 0;
	DBT key, val;

	if ((rc = b->seq->get(b->seq, NULL, 1, &seq, 0)) != 0)
		return rc;
	m->arrival = bdb_now();
	m->qid = (m->arrival << 24) | ((uint64_t)seq & 0xffffff);
	queue_id_format(m->qid, m->id);

	/* the body, chunk by chunk, inside this transaction */
	for (;;) {
		size_t fill = 0;
		ssize_t n;

		while (fill < BDB_CHUNK) {
			n = a->rd(a->ctx, size + fill, a->chunk + fill,
			    BDB_CHUNK - fill);
			if (n < 0) {
				a->read_failed = 1;
				queue_error_set(a->err, "reading the message failed");
				return BDB_APP(QUEUE_ERROR);
			}
			if (n == 0)
				break;
			fill += (size_t)n;
		}
		if (fill == 0 && chunkno > 0)
			break;
		pack_be64(ck, m->qid);
		ck[8] = (unsigned char)(chunkno >> 24);
		ck[9] = (unsigned char)(chunkno >> 16);
		ck[10] = (unsigned char)(chunkno >> 8);
		ck[11] = (unsigned char)chunkno;
		key = bdb_dbt(ck, 12);
		val = bdb_dbt(a->chunk, fill);
		if ((rc = b->db[BDB_BODIES]->put(b->db[BDB_BODIES], t, &key,
		    &val, 0)) != 0)
			return rc;
		size += fill;
		chunkno++;
		if (fill < BDB_CHUNK)
			break;
	}
	m->size = size;

	/* the domains, in name order so that writers lock in one order */
	dom = xcalloc(a->ndoms, sizeof(*dom));
	expiry = xcalloc(a->ndoms, sizeof(*expiry));
	for (i = 0; i < a->ndoms; i++) {
		if ((rc = bdb_dom_get(b, t, a->doms[i], &dom[i], DB_RMW)) != 0) {
			if (rc == BDB_APP(QUEUE_NOTFOUND))
				queue_error_set(a->err, "%s is not a customer "
				    "domain", a->doms[i]);
			goto out;
		}
		if ((dom[i].max_messages && dom[i].messages + 1 >
		    dom[i].max_messages) ||
		    (dom[i].max_bytes && dom[i].bytes + size > dom[i].max_bytes)) {
			queue_error_set(a->err, "domain %s is over its quota "
			    "(%" PRIu64 " messages, %" PRIu64 " bytes queued)",
			    dom[i].name, dom[i].messages, dom[i].bytes);
			rc = BDB_APP(QUEUE_LIMIT);
			goto out;
		}
		dom[i].messages++;
		dom[i].bytes += size;
		expiry[i] = m->arrival + (dom[i].lifetime ? dom[i].lifetime :
		    b->default_lifetime);
		if ((rc = bdb_dom_put(b, t, &dom[i], 0)) != 0)
			goto out;
	}
	if ((rc = bdb_msg_put(b, t, m, DB_NOOVERWRITE)) != 0) {
		if (rc == DB_KEYEXIST)
			rc = DB_LOCK_DEADLOCK;	/* id collision: retry */
		goto out;
	}
	for (i = 0; i < a->ndoms; i++) {
		if ((rc = bdb_dq_put(b, t, a->doms[i], m, expiry[i])) != 0)
			goto out;
		key = bdb_dbt(k, bdb_exp_key(k, expiry[i], m->qid, a->doms[i]));
		val = bdb_dbt("", 0);
		if ((rc = b->db[BDB_EXPIRY]->put(b->db[BDB_EXPIRY], t, &key,
		    &val, 0)) != 0)
			goto out;
	}
	if ((rc = bdb_stats_get(b, t, &s, DB_RMW)) != 0)
		goto out;
	s.messages++;
	s.bytes += size;
	s.recipients += m->nrcpt;
	s.enqueued++;
	rc = bdb_stats_put(b, t, &s);
out:
	for (i = 0; i < a->ndoms; i++)
		queue_domain_clear(&dom[i]);
	free(dom);
	free(expiry);
	return rc;
}

/* bdb_enqueue - backend enqueue() */
static enum queue_status
bdb_enqueue(void *state, struct queue_msg *m, queue_reader_fn rd, void *ctx,
    struct queue_error *err)
{
	struct bdb_enq_arg a = { .m = m, .rd = rd, .ctx = ctx, .err = err };
	enum queue_status st;
	size_t i, j;

	/* the distinct customer domains of this message, sorted */
	a.doms = xcalloc(m->nrcpt, sizeof(*a.doms));
	for (i = 0; i < m->nrcpt; i++)
		strlcpy(a.doms[i], m->rcpt[i].domain, sizeof(a.doms[i]));
	qsort(a.doms, m->nrcpt, sizeof(*a.doms), bdb_domcmp);
	for (i = 0, j = 0; i < m->nrcpt; i++)
		if (j == 0 || strcmp(a.doms[j - 1], a.doms[i]) != 0)
			memmove(a.doms[j++], a.doms[i], sizeof(a.doms[i]));
	a.ndoms = j;
	a.chunk = xmalloc(BDB_CHUNK);
	if (err)
		err->text[0] = '\0';
	/* a retried transaction reads the body again from offset 0 */
	st = bdb_run(state, BDB_WRITE, bdb_enqueue_txn, &a, "enqueue", err);
	free(a.chunk);
	free(a.doms);
	return st;
}

/* ---- reading ---- */

struct bdb_walk_arg {
	const char	*domain;
	unsigned	 flags;
	queue_msg_fn	 fn;
	void		*fnarg;
	uint64_t	 qid;
	struct queue_msg **out;
	queue_chunk_fn	 chunk_fn;
	int		 stopped;
};

/* bdb_msg_filter - keep only one domain's (deliverable) recipients */
static void
bdb_msg_filter(struct queue_msg *m, const char *domain, unsigned flags)
{
	size_t i, j;

	for (i = 0, j = 0; i < m->nrcpt; i++) {
		struct queue_rcpt *r = &m->rcpt[i];
		int keep = strcmp(r->domain, domain) == 0 &&
		    queue_rcpt_live(r->state);

		if (keep && (flags & QUEUE_WALK_DELIVERABLE))
			keep = r->state == QUEUE_RCPT_QUEUED;
		if (keep)
			m->rcpt[j++] = *r;
		else {
			free(r->addr);
			free(r->orcpt);
			free(r->last_error);
		}
	}
	m->nrcpt = j;
}

/* bdb_walk_txn - one domain's messages in arrival order */
static int
bdb_walk_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_walk_arg *a = arg;
	unsigned char k[DNAME_MAX + 10];
	size_t n = strlen(a->domain);
	struct queue_msg m;
	DBC *c;
	DBT key, val;
	int rc, crc;
	u_int32_t op = DB_SET_RANGE;

	a->stopped = 0;
	if ((rc = b->db[BDB_DOMAINQ]->cursor(b->db[BDB_DOMAINQ], t, &c, 0)) != 0)
		return rc;
	memcpy(k, a->domain, n + 1);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = (u_int32_t)(n + 1);
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, op)) == 0) {
		op = DB_NEXT;
		if (key.size != n + 9 || memcmp(k, a->domain, n + 1) != 0)
			break;
		if (val.size < 8 || queue_rec_msg_decode((unsigned char *)val.data
		    + 8, val.size - 8, &m) < 0) {
			rc = EINVAL;	/* corrupt entry: check reports it */
			break;
		}
		bdb_msg_filter(&m, a->domain, a->flags);
		crc = m.nrcpt ? a->fn(&m, a->fnarg) : 0;
		queue_msg_clear(&m);
		if (crc != 0) {
			a->stopped = crc;
			break;
		}
	}
	c->close(c);
	if (rc == DB_BUFFER_SMALL)	/* a longer key: another domain */
		rc = 0;
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_walk - backend walk() */
static enum queue_status
bdb_walk(void *state, const char *domain, unsigned flags, queue_msg_fn fn,
    void *fnarg, struct queue_error *err)
{
	struct bdb_walk_arg a = { .domain = domain, .flags = flags, .fn = fn,
	    .fnarg = fnarg };

	return bdb_run(state, BDB_READ, bdb_walk_txn, &a, "walk", err);
}

/* bdb_get_txn - read one message */
static int
bdb_get_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_walk_arg *a = arg;
	struct queue_msg *m = xcalloc(1, sizeof(*m));
	int rc;

	if ((rc = bdb_msg_get(b, t, a->qid, m, 0)) != 0) {
		free(m);
		return rc;
	}
	*a->out = m;
	return 0;
}

/* bdb_get - backend get() */
static enum queue_status
bdb_get(void *state, uint64_t qid, struct queue_msg **mp,
    struct queue_error *err)
{
	struct bdb_walk_arg a = { .qid = qid, .out = mp };
	char id[QUEUE_ID_LEN + 1];
	enum queue_status st;

	st = bdb_run(state, BDB_READ, bdb_get_txn, &a, "get", err);
	if (st == QUEUE_NOTFOUND) {
		queue_id_format(qid, id);
		queue_error_set(err, "no such message: %s", id);
	}
	return st;
}

/* bdb_body_txn - stream the chunks of one body */
static int
bdb_body_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_walk_arg *a = arg;
	unsigned char k[12];
	DBC *c;
	DBT key, val;
	uint32_t expect = 0;
	int rc, crc;
	u_int32_t op = DB_SET_RANGE;

	a->stopped = 0;
	if ((rc = b->db[BDB_BODIES]->cursor(b->db[BDB_BODIES], t, &c, 0)) != 0)
		return rc;
	pack_be64(k, a->qid);
	memset(k + 8, 0, 4);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = 12;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, op)) == 0) {
		op = DB_NEXT;
		if (key.size != 12 || unpack_be64(k) != a->qid)
			break;
		if ((((uint32_t)k[8] << 24) | ((uint32_t)k[9] << 16) |
		    ((uint32_t)k[10] << 8) | k[11]) != expect++) {
			rc = EINVAL;	/* a gap in the chunks */
			break;
		}
		if (val.size && (crc = a->chunk_fn(val.data, val.size,
		    a->fnarg)) != 0) {
			a->stopped = crc;
			break;
		}
	}
	c->close(c);
	if (rc == DB_NOTFOUND || rc == DB_BUFFER_SMALL)
		rc = 0;
	if (rc == 0 && expect == 0 && !a->stopped)
		rc = BDB_APP(QUEUE_NOTFOUND);
	return rc;
}

/* bdb_body_read - backend body_read() */
static enum queue_status
bdb_body_read(void *state, uint64_t qid, queue_chunk_fn fn, void *fnarg,
    struct queue_error *err)
{
	struct bdb_walk_arg a = { .qid = qid, .chunk_fn = fn, .fnarg = fnarg };
	char id[QUEUE_ID_LEN + 1];
	enum queue_status st;

	st = bdb_run(state, BDB_READ, bdb_body_txn, &a, "body read", err);
	if (st == QUEUE_NOTFOUND) {
		queue_id_format(qid, id);
		queue_error_set(err, "no such message: %s", id);
	}
	return st;
}

/* ---- outcomes, hold, release, delete ---- */

/* bdb_body_del - delete every chunk of a body */
static int
bdb_body_del(struct bdb *b, DB_TXN *t, uint64_t qid)
{
	unsigned char k[12];
	DBC *c;
	DBT key, val;
	int rc;
	u_int32_t op = DB_SET_RANGE;

	if ((rc = b->db[BDB_BODIES]->cursor(b->db[BDB_BODIES], t, &c,
	    0)) != 0)
		return rc;
	pack_be64(k, qid);
	memset(k + 8, 0, 4);
	memset(&key, 0, sizeof(key));
	key.data = k;
	key.size = 12;
	key.ulen = sizeof(k);
	key.flags = DB_DBT_USERMEM;
	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL;	/* no need to read the bytes */
	while ((rc = c->get(c, &key, &val, op | DB_RMW)) == 0) {
		op = DB_NEXT;
		if (key.size != 12 || unpack_be64(k) != qid)
			break;
		if ((rc = c->del(c, 0)) != 0)
			break;
	}
	c->close(c);
	return rc == DB_NOTFOUND || rc == DB_BUFFER_SMALL ? 0 : rc;
}

/* bdb_has_live - does the message still have a live recipient in domain? */
static int
bdb_has_live(const struct queue_msg *m, const char *domain)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (queue_rcpt_live(m->rcpt[i].state) &&
		    (domain == NULL || strcmp(m->rcpt[i].domain, domain) == 0))
			return 1;
	return 0;
}

/*
 * bdb_settle - after recipient states changed: retire the domains that
 * have no live recipient left, and the message when none is left at
 * all; otherwise write the updated record. The domains still live get
 * a fresh copy of the record in their queue entry.
 */
static int
bdb_settle(struct bdb *b, DB_TXN *t, struct queue_msg *m,
    struct bdb_stats *s)
{
	unsigned char k[DNAME_MAX + 32];
	size_t i, j;
	int rc;
	DBT key;

	for (i = 0; i < m->nrcpt; i++) {
		const char *d = m->rcpt[i].domain;
		struct queue_domain dom;
		uint64_t exp;
		int seen = 0;

		for (j = 0; j < i; j++)
			if (strcmp(m->rcpt[j].domain, d) == 0)
				seen = 1;
		if (seen)
			continue;
		rc = bdb_dq_expiry(b, t, d, m->qid, &exp, DB_RMW);
		if (rc == DB_NOTFOUND)
			continue;	/* retired earlier */
		if (rc != 0)
			return rc;
		if (bdb_has_live(m, d)) {
			/* still queued here: refresh the record copy */
			if ((rc = bdb_dq_put(b, t, d, m, exp)) != 0)
				return rc;
			continue;
		}
		/* no live recipient left in d: retire the domain's entries */
		{
			unsigned char ek[DNAME_MAX + 32];
			DBT ekey = bdb_dbt(ek, bdb_exp_key(ek, exp, m->qid, d));

			rc = b->db[BDB_EXPIRY]->del(b->db[BDB_EXPIRY], t, &ekey, 0);
			if (rc != 0 && rc != DB_NOTFOUND)
				return rc;
		}
		key = bdb_dbt(k, bdb_dq_key(k, d, m->qid));
		if ((rc = b->db[BDB_DOMAINQ]->del(b->db[BDB_DOMAINQ], t, &key,
		    0)) != 0)
			return rc;
		rc = bdb_dom_get(b, t, d, &dom, DB_RMW);
		if (rc == BDB_APP(QUEUE_NOTFOUND))
			continue;
		if (rc != 0)
			return rc;
		dom.messages = bdb_sub(dom.messages, 1);
		dom.bytes = bdb_sub(dom.bytes, m->size);
		rc = bdb_dom_put(b, t, &dom, 0);
		queue_domain_clear(&dom);
		if (rc != 0)
			return rc;
	}
	if (bdb_has_live(m, NULL))
		return bdb_msg_put(b, t, m, 0);
	unsigned char mk[8];

	pack_be64(mk, m->qid);
	key = bdb_dbt(mk, 8);
	if ((rc = b->db[BDB_MESSAGES]->del(b->db[BDB_MESSAGES], t, &key, 0)) != 0)
		return rc;
	s->messages = bdb_sub(s->messages, 1);
	s->bytes = bdb_sub(s->bytes, m->size);
	return bdb_body_del(b, t, m->qid);
}

struct bdb_rec_arg {
	const struct queue_outcome *o;
	size_t		 n;
	enum queue_op	 op;
	uint64_t	 qid;
	const char	*domain;
	uint64_t	*qids;
	size_t		 nqids;
	uint64_t	 changed;
};

/* bdb_qidcmp - order outcomes by message */
static int
bdb_outcmp(const void *x, const void *y)
{
	const struct queue_outcome *a = x, *b = y;

	if (a->qid != b->qid)
		return a->qid < b->qid ? -1 : 1;
	return a->rcpt_index < b->rcpt_index ? -1 : a->rcpt_index > b->rcpt_index;
}

/* bdb_record_txn - apply a batch of outcomes, message by message */
static int
bdb_record_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_rec_arg *a = arg;
	struct bdb_stats s;
	struct queue_msg m;
	uint64_t now = bdb_now();
	size_t i = 0, j;
	int rc;

	if ((rc = bdb_stats_get(b, t, &s, DB_RMW)) != 0)
		return rc;
	while (i < a->n) {
		uint64_t qid = a->o[i].qid;

		for (j = i; j < a->n && a->o[j].qid == qid; j++)
			;
		rc = bdb_msg_get(b, t, qid, &m, DB_RMW);
		if (rc == BDB_APP(QUEUE_NOTFOUND)) {
			i = j;		/* already gone: nothing to record */
			continue;
		}
		if (rc != 0)
			return rc;
		for (; i < j; i++) {
			const struct queue_outcome *o = &a->o[i];
			struct queue_rcpt *r;

			if (o->rcpt_index >= m.nrcpt)
				continue;
			r = &m.rcpt[o->rcpt_index];
			if (!queue_rcpt_live(r->state))
				continue;	/* recorded twice: idempotent */
			r->attempts++;
			r->last_attempt = now;
			if (o->text) {
				free(r->last_error);
				r->last_error = xstrndup(o->text, 1000);
			}
			switch (o->kind) {
			case QUEUE_OUTCOME_DELIVERED:
				r->state = QUEUE_RCPT_DELIVERED;
				s.delivered++;
				s.recipients = bdb_sub(s.recipients, 1);
				break;
			case QUEUE_OUTCOME_FAILED:
				r->state = QUEUE_RCPT_FAILED;
				s.failed++;
				s.recipients = bdb_sub(s.recipients, 1);
				break;
			case QUEUE_OUTCOME_DEFERRED:
				s.deferred++;
				break;
			}
			a->changed++;
		}
		rc = bdb_settle(b, t, &m, &s);
		queue_msg_clear(&m);
		if (rc != 0)
			return rc;
	}
	return bdb_stats_put(b, t, &s);
}

/* bdb_record - backend record() */
static enum queue_status
bdb_record(void *state, const struct queue_outcome *o, size_t n,
    struct queue_error *err)
{
	struct queue_outcome *sorted = xcalloc(n, sizeof(*sorted));
	struct bdb_rec_arg a = { .o = sorted, .n = n };
	enum queue_status st;

	memcpy(sorted, o, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), bdb_outcmp);
	st = bdb_run(state, BDB_WRITE, bdb_record_txn, &a, "record", err);
	free(sorted);
	return st;
}

/* bdb_apply_op - hold/release/delete the matching recipients of m */
static uint64_t
bdb_apply_op(struct queue_msg *m, enum queue_op op, const char *domain,
    struct bdb_stats *s)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < m->nrcpt; i++) {
		struct queue_rcpt *r = &m->rcpt[i];

		if (domain && strcmp(r->domain, domain) != 0)
			continue;
		if (op == QUEUE_OP_HOLD && r->state == QUEUE_RCPT_QUEUED)
			r->state = QUEUE_RCPT_HELD;
		else if (op == QUEUE_OP_RELEASE && r->state == QUEUE_RCPT_HELD)
			r->state = QUEUE_RCPT_QUEUED;
		else if (op == QUEUE_OP_DELETE && queue_rcpt_live(r->state)) {
			r->state = QUEUE_RCPT_DELETED;
			s->recipients = bdb_sub(s->recipients, 1);
		} else
			continue;
		n++;
	}
	return n;
}

/* bdb_msg_op_txn - apply an operation to a list of messages */
static int
bdb_msg_op_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_rec_arg *a = arg;
	struct bdb_stats s;
	struct queue_msg m;
	size_t i;
	int rc, touched = 0;

	a->changed = 0;
	if ((rc = bdb_stats_get(b, t, &s, DB_RMW)) != 0)
		return rc;
	for (i = 0; i < a->nqids; i++) {
		uint64_t n;

		rc = bdb_msg_get(b, t, a->qids[i], &m, DB_RMW);
		if (rc == BDB_APP(QUEUE_NOTFOUND))
			continue;
		if (rc != 0)
			return rc;
		n = bdb_apply_op(&m, a->op, a->domain, &s);
		if (n > 0) {
			touched++;
			if (a->op == QUEUE_OP_DELETE)
				s.deleted++;
			rc = bdb_settle(b, t, &m, &s);
		}
		queue_msg_clear(&m);
		if (rc != 0)
			return rc;
		a->changed += n ? 1 : 0;
	}
	if (touched == 0)
		return BDB_APP(QUEUE_NOTFOUND);
	return bdb_stats_put(b, t, &s);
}

/* bdb_msg_op - backend msg_op() */
static enum queue_status
bdb_msg_op(void *state, enum queue_op op, uint64_t qid, const char *domain,
    struct queue_error *err)
{
	struct bdb_rec_arg a = { .op = op, .domain = domain, .qids = &qid,
	    .nqids = 1 };
	char id[QUEUE_ID_LEN + 1];
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_msg_op_txn, &a, "update", err);
	if (st == QUEUE_NOTFOUND) {
		queue_id_format(qid, id);
		queue_error_set(err, "%s: no such message%s%s, or nothing to %s",
		    id, domain ? " in " : "", domain ? domain : "",
		    op == QUEUE_OP_HOLD ? "hold" : op == QUEUE_OP_RELEASE ?
		    "release" : "delete");
	}
	return st;
}

struct bdb_collect {
	uint64_t	*qids;
	size_t		 n, max;
	uint64_t	 after;
};

/* bdb_collect_fn - gather one batch of qids from a walk */
static int
bdb_collect_fn(const struct queue_msg *m, void *arg)
{
	struct bdb_collect *c = arg;

	if (m->qid <= c->after)
		return 0;
	c->qids[c->n++] = m->qid;
	return c->n == c->max ? 1 : 0;
}

/* bdb_domain_op - backend domain_op(): batches of BDB_BATCH messages */
static enum queue_status
bdb_domain_op(void *state, enum queue_op op, const char *domain,
    uint64_t *count, struct queue_error *err)
{
	struct bdb_collect c = { .max = BDB_BATCH };
	struct bdb_walk_arg w = { .domain = domain, .fn = bdb_collect_fn,
	    .fnarg = &c };
	struct bdb_rec_arg a = { .op = op, .domain = domain };
	enum queue_status st;

	*count = 0;
	st = bdb_domain_exists(state, domain, err);
	if (st != QUEUE_OK) {
		if (st == QUEUE_NOTFOUND)
			queue_error_set(err, "no such domain: %s", domain);
		return st;
	}
	c.qids = xcalloc(BDB_BATCH, sizeof(uint64_t));
	for (;;) {
		c.n = 0;
		st = bdb_run(state, BDB_READ, bdb_walk_txn, &w, "walk", err);
		if (st != QUEUE_OK || c.n == 0)
			break;
		a.qids = c.qids;
		a.nqids = c.n;
		st = bdb_run(state, BDB_WRITE, bdb_msg_op_txn, &a, "update", err);
		if (st == QUEUE_OK)
			*count += a.changed;
		else if (st != QUEUE_NOTFOUND)
			break;
		c.after = c.qids[c.n - 1];
		if (c.n < c.max)
			break;
	}
	free(c.qids);
	if (st == QUEUE_OK || st == QUEUE_NOTFOUND) {
		if (*count == 0) {
			queue_error_set(err, "%s: no message to %s", domain,
			    op == QUEUE_OP_HOLD ? "hold" : op == QUEUE_OP_RELEASE ?
			    "release" : "delete");
			return QUEUE_NOTFOUND;
		}
		return QUEUE_OK;
	}
	return st;
}

/* ---- claims ---- */

struct bdb_claim_arg {
	const char	*domain;
	const char	*holder;
	uint64_t	 ttl;
	char		*busy;
	int		 picked_up;
};

/* bdb_claim_dead - may an existing claim be broken? */
static int
bdb_claim_dead(const struct queue_domain *d, uint64_t now)
{
	if (d->claim_holder == NULL)
		return 1;
	if (d->claim_expiry <= now)
		return 1;
	if (d->claim_pid != 0 && kill((pid_t)d->claim_pid, 0) < 0 &&
	    errno == ESRCH)
		return 1;
	return 0;
}

/* bdb_claim_txn - take the claim if it is free, expired or orphaned */
static int
bdb_claim_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_claim_arg *a = arg;
	struct queue_domain d;
	uint64_t now = bdb_now();
	int rc;

	if ((rc = bdb_dom_get(b, t, a->domain, &d, DB_RMW)) != 0)
		return rc;
	if (!bdb_claim_dead(&d, now) && strcmp(d.claim_holder, a->holder) != 0) {
		if (a->busy)
			strlcpy(a->busy, d.claim_holder, QUEUE_HOLDER_MAX);
		queue_domain_clear(&d);
		return BDB_APP(QUEUE_BUSY);
	}
	free(d.claim_holder);
	d.claim_holder = xstrdup(a->holder);
	d.claim_pid = (uint64_t)getpid();
	d.claim_expiry = now + a->ttl;
	rc = bdb_dom_put(b, t, &d, 0);
	queue_domain_clear(&d);
	return rc;
}

/* bdb_claim - backend claim() */
static enum queue_status
bdb_claim(void *state, const char *domain, const char *holder, uint64_t ttl,
    char *busy, struct queue_error *err)
{
	struct bdb_claim_arg a = { domain, holder, ttl, busy, 0 };
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_claim_txn, &a, "claim", err);
	if (st == QUEUE_BUSY)
		queue_error_set(err, "domain %s is being flushed by %s", domain,
		    busy ? busy : "another process");
	else if (st == QUEUE_NOTFOUND)
		queue_error_set(err, "no such domain: %s", domain);
	return st;
}

/* bdb_unclaim_txn - release our claim; record the pickup time */
static int
bdb_unclaim_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_claim_arg *a = arg;
	struct queue_domain d;
	int rc;

	if ((rc = bdb_dom_get(b, t, a->domain, &d, DB_RMW)) != 0)
		return rc;
	if (d.claim_holder == NULL || strcmp(d.claim_holder, a->holder) != 0) {
		queue_domain_clear(&d);
		return BDB_APP(QUEUE_NOTFOUND);
	}
	free(d.claim_holder);
	d.claim_holder = NULL;
	d.claim_pid = d.claim_expiry = 0;
	if (a->picked_up)
		d.last_pickup = bdb_now();
	rc = bdb_dom_put(b, t, &d, 0);
	queue_domain_clear(&d);
	return rc;
}

/* bdb_unclaim - backend unclaim() */
static enum queue_status
bdb_unclaim(void *state, const char *domain, const char *holder,
    int picked_up, struct queue_error *err)
{
	struct bdb_claim_arg a = { domain, holder, 0, NULL, picked_up };
	enum queue_status st;

	st = bdb_run(state, BDB_WRITE, bdb_unclaim_txn, &a, "unclaim", err);
	if (st == QUEUE_NOTFOUND)
		queue_error_set(err, "%s holds no claim on %s", holder, domain);
	return st;
}

/* ---- maintenance ---- */

struct bdb_exp_arg {
	uint64_t	 now;
	size_t		 limit;
	queue_expire_fn	 fn;
	void		*fnarg;
};

/* bdb_expire_txn - walk expiry.db from the start up to now */
static int
bdb_expire_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_exp_arg *a = arg;
	char dom[DNAME_MAX + 1];
	size_t seen = 0;
	DBC *c;
	DBT key, val;
	int rc;

	if ((rc = b->db[BDB_EXPIRY]->cursor(b->db[BDB_EXPIRY], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		const unsigned char *k = key.data;
		uint64_t exp;
		size_t dl;

		if (key.size < 17 || key.size > 16 + DNAME_MAX) {
			rc = EINVAL;
			break;
		}
		exp = unpack_be64(k);
		if (exp > a->now || (a->limit && seen >= a->limit))
			break;
		dl = key.size - 16;
		memcpy(dom, k + 16, dl);
		dom[dl] = '\0';
		seen++;
		if (a->fn(unpack_be64(k + 8), dom, exp, a->fnarg) != 0)
			break;
	}
	c->close(c);
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_expire_scan - backend expire_scan(): cost follows what expired */
static enum queue_status
bdb_expire_scan(void *state, uint64_t now, size_t limit, queue_expire_fn fn,
    void *fnarg, struct queue_error *err)
{
	struct bdb_exp_arg a = { now, limit, fn, fnarg };

	return bdb_run(state, BDB_READ, bdb_expire_txn, &a, "expiry scan", err);
}

struct bdb_stats_arg {
	struct queue_stats *out;
};

/* bdb_stats_txn - store counters plus the domain count */
static int
bdb_stats_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_stats_arg *a = arg;
	struct bdb_stats s;
	DBC *c;
	DBT key, val;
	int rc;

	if ((rc = bdb_stats_get(b, t, &s, 0)) != 0)
		return rc;
	a->out->created = s.created;
	a->out->messages = s.messages;
	a->out->bytes = s.bytes;
	a->out->recipients = s.recipients;
	a->out->enqueued = s.enqueued;
	a->out->delivered = s.delivered;
	a->out->failed = s.failed;
	a->out->deferred = s.deferred;
	a->out->deleted = s.deleted;
	a->out->domains = 0;
	if ((rc = b->db[BDB_DOMAINS]->cursor(b->db[BDB_DOMAINS], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	val.flags = DB_DBT_PARTIAL;
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0)
		a->out->domains++;
	c->close(c);
	return rc == DB_NOTFOUND ? 0 : rc;
}

/* bdb_stats - backend stats(): counters and environment figures */
static enum queue_status
bdb_stats(void *state, struct queue_stats *out, struct queue_error *err)
{
	struct bdb *b = state;
	struct bdb_stats_arg a = { out };
	enum queue_status st;
	DB_LOCK_STAT *ls;
	DB_TXN_STAT *ts;
	DB_MPOOL_STAT *ms;
	char **list;

	if ((st = bdb_run(b, BDB_READ, bdb_stats_txn, &a, "stats", err)) != 0)
		return st;
	pthread_rwlock_rdlock(&b->lock);
	if (b->env->lock_stat(b->env, &ls, 0) == 0) {
		out->deadlocks = ls->st_ndeadlocks;
		free(ls);
	}
	if (b->env->txn_stat(b->env, &ts, 0) == 0) {
		out->commits = ts->st_ncommits;
		free(ts);
	}
	if (b->env->memp_stat(b->env, &ms, NULL, 0) == 0) {
		uint64_t h = ms->st_cache_hit, m = ms->st_cache_miss;

		out->cache_hit_pct = h + m ? h * 100 / (h + m) : 100;
		free(ms);
	}
	if (b->env->log_archive(b->env, &list, DB_ARCH_LOG | DB_ARCH_ABS) == 0) {
		struct stat sb;

		if (list)
			for (char **p = list; *p; p++) {
				out->log_files++;
				if (stat(*p, &sb) == 0)
					out->log_bytes += (uint64_t)sb.st_size;
			}
		free(list);
	}
	pthread_rwlock_unlock(&b->lock);
	return QUEUE_OK;
}

struct bdb_check_arg {
	queue_problem_fn fn;
	void		*fnarg;
	uint64_t	 problems;
	/* recomputed per-domain counters, in domain-name order */
	char		(*names)[DNAME_MAX + 1];
	uint64_t	*msgs, *bytes;
	size_t		 ndom, maxdom;
	/* bodies to look at again after the snapshot */
	uint64_t	*suspect;
	size_t		 nsuspect, maxsuspect;
};

/* bdb_problem - report one inconsistency */
static void
bdb_problem(struct bdb_check_arg *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* bdb_problem - report one inconsistency */
static void
bdb_problem(struct bdb_check_arg *a, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	a->problems++;
	if (a->fn)
		a->fn(text, a->fnarg);
}

/* bdb_check_dom_index - position of a domain in the recomputed table */
static ssize_t
bdb_check_dom_index(struct bdb_check_arg *a, const char *name)
{
	size_t lo = 0, hi = a->ndom;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(a->names[mid], name);

		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* bdb_check_exists - does key exist in db? */
static int
bdb_check_exists(DB *db, DB_TXN *t, const void *k, size_t n, uint64_t *val8)
{
	DBT key = bdb_dbt(k, n), val;
	unsigned char v[8];
	int rc;

	memset(&val, 0, sizeof(val));
	val.data = v;
	val.ulen = sizeof(v);
	val.flags = DB_DBT_USERMEM;
	rc = db->get(db, t, &key, &val, 0);
	if (rc == 0 && val8 && val.size == 8)
		*val8 = unpack_be64(v);
	if (rc == DB_BUFFER_SMALL)
		rc = 0;
	return rc;
}

/* bdb_suspect - remember a body to recheck after the snapshot */
static void
bdb_suspect(struct bdb_check_arg *a, uint64_t qid)
{
	if (a->nsuspect == a->maxsuspect) {
		a->maxsuspect = a->maxsuspect ? a->maxsuspect * 2 : 16;
		a->suspect = xreallocarray(a->suspect, a->maxsuspect, 8);
	}
	a->suspect[a->nsuspect++] = qid;
}

/*
 * bdb_check_body - the chunks of qid must be numbered from 0 without a
 * gap and add up to size; with size UINT64_MAX there must be none.
 * Returns 0, BDB_APP(QUEUE_INVALID) with why filled in, or a DB error.
 */
static int
bdb_check_body(struct bdb *b, DB_TXN *t, uint64_t qid, uint64_t size,
    u_int32_t cflags, char *why, size_t whylen)
{
	unsigned char bk[12];
	DBC *bc;
	DBT bkey, bval;
	uint64_t got = 0;
	uint32_t expect = 0;
	int rc, gap = 0;
	u_int32_t op = DB_SET_RANGE;

	if ((rc = b->db[BDB_BODIES]->cursor(b->db[BDB_BODIES], t, &bc,
	    cflags)) != 0)
		return rc;
	pack_be64(bk, qid);
	memset(bk + 8, 0, 4);
	memset(&bkey, 0, sizeof(bkey));
	bkey.data = bk;
	bkey.size = 12;
	bkey.ulen = sizeof(bk);
	bkey.flags = DB_DBT_USERMEM;
	memset(&bval, 0, sizeof(bval));
	bval.flags = DB_DBT_PARTIAL;	/* sizes only */
	while ((rc = bc->get(bc, &bkey, &bval, op)) == 0) {
		DBT full;

		op = DB_NEXT;
		if (bkey.size != 12 || unpack_be64(bk) != qid)
			break;
		if ((((uint32_t)bk[8] << 24) | ((uint32_t)bk[9] << 16) |
		    ((uint32_t)bk[10] << 8) | bk[11]) != expect++)
			gap = 1;
		/* a partial read of zero bytes does not report the size */
		memset(&full, 0, sizeof(full));
		if ((rc = bc->get(bc, &bkey, &full, DB_CURRENT)) != 0)
			break;
		got += full.size;
	}
	bc->close(bc);
	if (rc != 0 && rc != DB_NOTFOUND && rc != DB_BUFFER_SMALL)
		return rc;
	if (size == UINT64_MAX) {
		if (expect == 0)
			return 0;
		if (why)
			snprintf(why, whylen, "orphan body");
		return BDB_APP(QUEUE_INVALID);
	}
	if (expect == 0 || gap || got != size) {
		if (why)
			snprintf(why, whylen, expect == 0 ? "body missing" :
			    gap ? "body chunk missing" : "body is %" PRIu64
			    " bytes, record says %" PRIu64, got, size);
		return BDB_APP(QUEUE_INVALID);
	}
	return 0;
}

struct bdb_recheck_arg {
	uint64_t	 qid;
	char		 why[128];
};

/* bdb_recheck_txn - one suspect body, under ordinary locking */
static int
bdb_recheck_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_recheck_arg *r = arg;
	struct queue_msg m;
	uint64_t size = UINT64_MAX;
	int rc;

	r->why[0] = '\0';
	rc = bdb_msg_get(b, t, r->qid, &m, 0);
	if (rc == 0) {
		size = m.size;
		queue_msg_clear(&m);
	} else if (rc != BDB_APP(QUEUE_NOTFOUND))
		return rc;
	rc = bdb_check_body(b, t, r->qid, size, 0, r->why, sizeof(r->why));
	return rc == BDB_APP(QUEUE_INVALID) ? 0 : rc;
}

/* bdb_check_txn - cross-check every table against the others */
static int
bdb_check_txn(struct bdb *b, DB_TXN *t, void *arg)
{
	struct bdb_check_arg *a = arg;
	struct bdb_stats s;
	uint64_t live_msgs = 0, live_bytes = 0, live_rcpts = 0;
	unsigned char k[DNAME_MAX + 32];
	struct queue_domain d;
	struct queue_msg m;
	DBC *c;
	DBT key, val;
	size_t i, j;
	int rc;

	a->problems = 0;
	a->ndom = 0;
	/* domains: load names, check records */
	if ((rc = b->db[BDB_DOMAINS]->cursor(b->db[BDB_DOMAINS], t, &c, 0)) != 0)
		return rc;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		if (queue_rec_dom_decode(val.data, val.size, &d) < 0) {
			bdb_problem(a, "domain record '%.*s' is corrupt",
			    (int)(key.size > 64 ? 64 : key.size),
			    (char *)key.data);
			continue;
		}
		if (a->ndom == a->maxdom) {
			a->maxdom = a->maxdom ? a->maxdom * 2 : 64;
			a->names = xreallocarray(a->names, a->maxdom,
			    sizeof(*a->names));
			a->msgs = xreallocarray(a->msgs, a->maxdom, 8);
			a->bytes = xreallocarray(a->bytes, a->maxdom, 8);
		}
		strlcpy(a->names[a->ndom], d.name, sizeof(a->names[0]));
		a->msgs[a->ndom] = a->bytes[a->ndom] = 0;
		a->ndom++;
		queue_domain_clear(&d);
	}
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* messages: decode, body, index entries */
	if ((rc = b->db[BDB_MESSAGES]->cursor(b->db[BDB_MESSAGES], t, &c, 0)) != 0)
		return rc;
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		uint64_t qid;

		if (key.size != 8) {
			bdb_problem(a, "message key of %u bytes", key.size);
			continue;
		}
		qid = unpack_be64(key.data);
		if (queue_rec_msg_decode(val.data, val.size, &m) < 0 ||
		    m.qid != qid) {
			char id[QUEUE_ID_LEN + 1];

			queue_id_format(qid, id);
			bdb_problem(a, "message %s: record is corrupt", id);
			continue;
		}
		if (!bdb_has_live(&m, NULL))
			bdb_problem(a, "message %s has no live recipient", m.id);
		live_msgs++;
		live_bytes += m.size;
		for (i = 0; i < m.nrcpt; i++)
			if (queue_rcpt_live(m.rcpt[i].state))
				live_rcpts++;
		for (i = 0; i < m.nrcpt; i++) {
			const char *dn = m.rcpt[i].domain;
			int dup = 0;
			uint64_t exp = 0;
			ssize_t di;

			for (j = 0; j < i; j++)
				if (strcmp(m.rcpt[j].domain, dn) == 0)
					dup = 1;
			if (dup || !bdb_has_live(&m, dn))
				continue;
			if ((di = bdb_check_dom_index(a, dn)) < 0)
				bdb_problem(a, "message %s: domain %s does not "
				    "exist", m.id, dn);
			else {
				a->msgs[di]++;
				a->bytes[di] += m.size;
			}
			rc = bdb_dq_expiry(b, t, dn, qid, &exp, 0);
			if (rc == DB_NOTFOUND) {
				bdb_problem(a, "message %s: missing from the "
				    "queue of %s", m.id, dn);
				continue;
			} else if (rc != 0)
				goto fail;
			rc = bdb_check_exists(b->db[BDB_EXPIRY], t, k,
			    bdb_exp_key(k, exp, qid, dn), NULL);
			if (rc == DB_NOTFOUND)
				bdb_problem(a, "message %s: missing from the "
				    "expiry index for %s", m.id, dn);
			else if (rc != 0)
				goto fail;
		}
		/*
		 * The body must add up to the recorded size. bodies.db is
		 * not multiversion: read it committed (no long read locks)
		 * and recheck a mismatch once the snapshot is over, since a
		 * delivery may have removed the message meanwhile.
		 */
		rc = bdb_check_body(b, t, qid, m.size, DB_READ_COMMITTED, NULL, 0);
		if (rc == BDB_APP(QUEUE_INVALID))
			bdb_suspect(a, qid);
		else if (rc != 0)
			goto fail;
		queue_msg_clear(&m);
	}
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* domainq: every entry points to a live message of that domain */
	if ((rc = b->db[BDB_DOMAINQ]->cursor(b->db[BDB_DOMAINQ], t, &c, 0)) != 0)
		return rc;
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		const unsigned char *kp = key.data;
		const unsigned char *nul = memchr(kp, '\0', key.size);
		char dn[DNAME_MAX + 1];
		uint64_t qid;

		if (nul == NULL || (size_t)(nul - kp) + 9 != key.size ||
		    (size_t)(nul - kp) > DNAME_MAX) {
			bdb_problem(a, "malformed domain queue entry");
			continue;
		}
		memcpy(dn, kp, (size_t)(nul - kp) + 1);
		qid = unpack_be64(nul + 1);
		rc = bdb_msg_get(b, t, qid, &m, 0);
		if (rc == BDB_APP(QUEUE_NOTFOUND)) {
			char id[QUEUE_ID_LEN + 1];

			queue_id_format(qid, id);
			bdb_problem(a, "queue of %s lists %s, which does not "
			    "exist", dn, id);
			continue;
		}
		if (rc == EINVAL)
			continue;	/* reported above */
		if (rc != 0)
			break;
		if (!bdb_has_live(&m, dn))
			bdb_problem(a, "queue of %s lists %s, which has no "
			    "live recipient there", dn, m.id);
		else {
			struct buf enc;

			buf_init(&enc);
			queue_rec_msg_encode(&enc, &m);
			if (val.size != enc.len + 8 || memcmp((unsigned char *)
			    val.data + 8, enc.data, enc.len) != 0)
				bdb_problem(a, "queue of %s holds a stale copy "
				    "of %s", dn, m.id);
			buf_release(&enc);
		}
		queue_msg_clear(&m);
	}
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* expiry: every entry has its domain queue entry */
	if ((rc = b->db[BDB_EXPIRY]->cursor(b->db[BDB_EXPIRY], t, &c, 0)) != 0)
		return rc;
	while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
		const unsigned char *kp = key.data;
		char dn[DNAME_MAX + 1];
		uint64_t exp = 0;
		int r2;

		if (key.size < 17 || key.size > 16 + DNAME_MAX) {
			bdb_problem(a, "malformed expiry entry");
			continue;
		}
		memcpy(dn, kp + 16, key.size - 16);
		dn[key.size - 16] = '\0';
		r2 = bdb_dq_expiry(b, t, dn, unpack_be64(kp + 8), &exp, 0);
		if (r2 == DB_NOTFOUND)
			bdb_problem(a, "expiry entry for %s without a queue "
			    "entry", dn);
		else if (r2 == 0 && exp != unpack_be64(kp))
			bdb_problem(a, "expiry entry for %s disagrees with its "
			    "queue entry", dn);
		else if (r2 != 0) {
			rc = r2;
			break;
		}
	}
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* bodies without a message */
	if ((rc = b->db[BDB_BODIES]->cursor(b->db[BDB_BODIES], t, &c,
	    DB_READ_COMMITTED)) != 0)
		return rc;
	val.flags = DB_DBT_PARTIAL;
	{
		uint64_t last = 0;

		while ((rc = c->get(c, &key, &val, DB_NEXT)) == 0) {
			uint64_t qid;
			int r2;

			if (key.size != 12) {
				bdb_problem(a, "malformed body key");
				continue;
			}
			qid = unpack_be64(key.data);
			if (qid == last)
				continue;
			last = qid;
			pack_be64(k, qid);
			r2 = bdb_check_exists(b->db[BDB_MESSAGES], t, k, 8, NULL);
			if (r2 == DB_NOTFOUND)
				bdb_suspect(a, qid);	/* or enqueued since */
			else if (r2 != 0) {
				rc = r2;
				break;
			}
		}
	}
	val.flags = 0;
	c->close(c);
	if (rc != DB_NOTFOUND)
		return rc;

	/* counters */
	for (i = 0; i < a->ndom; i++) {
		if ((rc = bdb_dom_get(b, t, a->names[i], &d, 0)) != 0)
			return rc == BDB_APP(QUEUE_NOTFOUND) ? 0 : rc;
		if (d.messages != a->msgs[i] || d.bytes != a->bytes[i])
			bdb_problem(a, "domain %s counts %" PRIu64 " messages / %"
			    PRIu64 " bytes, found %" PRIu64 " / %" PRIu64,
			    d.name, d.messages, d.bytes, a->msgs[i], a->bytes[i]);
		queue_domain_clear(&d);
	}
	if ((rc = bdb_stats_get(b, t, &s, 0)) != 0)
		return rc;
	if (s.messages != live_msgs || s.bytes != live_bytes ||
	    s.recipients != live_rcpts)
		bdb_problem(a, "store counts %" PRIu64 " messages / %" PRIu64
		    " bytes / %" PRIu64 " recipients, found %" PRIu64 " / %"
		    PRIu64 " / %" PRIu64, s.messages, s.bytes, s.recipients,
		    live_msgs, live_bytes, live_rcpts);
	return 0;
fail:
	queue_msg_clear(&m);
	c->close(c);
	return rc;
}

/* bdb_check - backend check() */
static enum queue_status
bdb_check(void *state, queue_problem_fn fn, void *fnarg, uint64_t *nproblems,
    struct queue_error *err)
{
	struct bdb_check_arg a = { .fn = fn, .fnarg = fnarg };
	enum queue_status st;
	size_t i;

	st = bdb_run(state, BDB_READ, bdb_check_txn, &a, "check", err);
	for (i = 0; st == QUEUE_OK && i < a.nsuspect; i++) {
		struct bdb_recheck_arg r = { .qid = a.suspect[i] };
		char id[QUEUE_ID_LEN + 1];

		st = bdb_run(state, BDB_LOCKED, bdb_recheck_txn, &r, "check", err);
		if (st == QUEUE_OK && r.why[0]) {
			queue_id_format(r.qid, id);
			bdb_problem(&a, "message %s: %s", id, r.why);
		}
	}
	*nproblems = a.problems;
	free(a.suspect);
	free(a.names);
	free(a.msgs);
	free(a.bytes);
	return st;
}

/* bdb_maintain - failchk, checkpoint; old logs go by DB_LOG_AUTO_REMOVE */
static enum queue_status
bdb_maintain(void *state, struct queue_error *err)
{
	struct bdb *b = state;
	uint64_t gen;
	int rc;

	pthread_rwlock_rdlock(&b->lock);
	gen = b->generation;
	rc = b->env ? b->env->failchk(b->env, 0) : DB_RUNRECOVERY;
	if (rc == 0)
		rc = b->env->txn_checkpoint(b->env, 1024, 1, 0);
	pthread_rwlock_unlock(&b->lock);
	if (rc == DB_RUNRECOVERY)
		return bdb_reopen(b, gen, err);
	if (rc != 0)
		return bdb_fail(rc, "maintenance", err);
	return QUEUE_OK;
}

const struct queue_backend queue_bdb_backend = {
	.name = "bdb",
	.open = bdb_open,
	.close = bdb_close,
	.domain_add = bdb_domain_add,
	.domain_update = bdb_domain_update,
	.domain_get = bdb_domain_get,
	.domain_del = bdb_domain_del,
	.domain_list = bdb_domain_list,
	.domain_exists = bdb_domain_exists,
	.enqueue = bdb_enqueue,
	.walk = bdb_walk,
	.get = bdb_get,
	.body_read = bdb_body_read,
	.record = bdb_record,
	.msg_op = bdb_msg_op,
	.domain_op = bdb_domain_op,
	.claim = bdb_claim,
	.unclaim = bdb_unclaim,
	.expire_scan = bdb_expire_scan,
	.stats = bdb_stats,
	.check = bdb_check,
	.maintain = bdb_maintain,
};
