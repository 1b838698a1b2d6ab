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
 *	Readers run at read-committed isolation and in short batches: a
 *	read lock lasts while one record is copied out, and no transaction
 *	stays open while the caller works. A record is always read whole,
 *	so odmrctl never sees a half-written message, and a reader stalled
 *	on a slow pipe holds up nothing. (Multiversion snapshots were tried
 *	and dropped: under a steady write load every open snapshot makes
 *	writers keep old page versions, and a slow reader filled the cache
 *	until writes failed.)
 *
 *	Crash safety: every process opens with DB_REGISTER | DB_RECOVER,
 *	so recovery runs exactly when a process died holding the
 *	environment. Recovery invalidates the environment of processes
 *	still running; they see DB_RUNRECOVERY, reopen, and retry the
 *	operation. Lock waits time out, and failchk() (with an is_alive
 *	callback) releases the locks of dead processes, so a stale lock
 *	cannot wedge the node. Deadlocks are detected and retried.
 *
 *	This file keeps the environment, the transaction runner and the
 *	record helpers; queue_bdb_domain.c, queue_bdb_msg.c and
 *	queue_bdb_check.c hold the operations. Only these backend files
 *	include <db.h>, through queue_bdb_int.h.
 * SEE ALSO
 *	queue(3), queue_rec(3)
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

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
#include "queue_bdb_int.h"
#include "queue_rec.h"
#include "xmalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define BDB_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BDB_LSAN 1
#endif
#endif
#ifdef BDB_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static const char *const bdb_db_files[BDB_NDB] = {
	"messages.db", "bodies.db", "domainq.db", "expiry.db", "domains.db",
	"meta.db",
};

static __thread char bdb_errmsg[256];
static __thread int bdb_saw_enospc;
__thread uint64_t bdb_commit_gen;	/* generation of this thread's last commit */

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

static int bdb_region_id(const char *, dev_t *, ino_t *);

/* bdb_now - wall clock seconds */
uint64_t
bdb_now(void)
{
	return (uint64_t)time(NULL);
}

/* bdb_fail - turn a DB error code into a status and an error text */
enum queue_status
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
DBT
bdb_dbt(const void *p, size_t n)
{
	DBT d;

	memset(&d, 0, sizeof(d));
	d.data = (void *)(uintptr_t)p;
	d.size = (u_int32_t)n;
	return d;
}

/* bdb_dbt_malloc - initialise a DBT that Berkeley DB fills with malloc */
DBT
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

	pthread_mutex_lock(&b->env_mu);
	b->env_ready = 0;
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
	pthread_mutex_unlock(&b->env_mu);
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
	    DB_AUTO_COMMIT | DB_THREAD | (create ? DB_CREATE : 0), 0600);
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

/*
 * bdb_open_again - a lock stood in the way of opening: 1 when the
 * caller should start the open again (the handles are closed then).
 * A process that died holds a lock we need, or the deadlock detector
 * chose our locker: DB_REGISTER sees a dead holder and recovery
 * releases what it held; a live one will have moved on.
 */
static int
bdb_open_again(struct bdb *b, int rc)
{
	if ((rc != DB_LOCK_NOTGRANTED && rc != DB_LOCK_DEADLOCK &&
	    rc != DB_RUNRECOVERY) || b->open_tries++ >= BDB_OPEN_TRIES)
		return 0;
	if (b->env != NULL)
		(void)b->env->failchk(b->env, 0);
	bdb_close_handles(b);
	return 1;
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
	pthread_mutex_lock(&b->env_mu);
	b->env_ready = 1;	/* the watchdog may expire lock waits now */
	(void)bdb_region_id(b->home, &b->region_dev, &b->region_ino);
	pthread_mutex_unlock(&b->env_mu);
	if (bdb_region_reserve(env, b->home, err) != 0) {
		bdb_close_handles(b);
		return QUEUE_NOSPACE;
	}
	/* A thread of a process that died may still hold locks. */
	(void)env->failchk(env, 0);
	for (i = 0; i < BDB_NDB; i++)
		if ((rc = bdb_open_db(b, (enum bdb_db)i, create)) != 0) {
			enum queue_status st;

			if (bdb_open_again(b, rc))
				return bdb_open_handles(b, err);
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
		/* the sequence's record is locked like any other: a killed
		 * writer, or the deadlock detector, may get in the way */
		if (bdb_open_again(b, rc))
			return bdb_open_handles(b, err);
		bdb_close_handles(b);
		return bdb_fail(rc, "cannot open the queue id sequence", err);
	}
	b->generation++;
	b->open_tries = 0;
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

/*
 * bdb_dead_registered - did a process that had the environment open die
 * without closing it? Reads DB_REGISTER's file directly (one "%24lu\n"
 * pid per slot, "X" for a free one): no Berkeley DB call, so it works
 * while the region's mutexes are held by the dead.
 */
static int
bdb_dead_registered(const char *home)
{
	char path[PATH_MAX], line[64];
	FILE *f;
	int dead = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/__db.register", home) >=
	    sizeof(path) || (f = fopen(path, "re")) == NULL)
		return 0;
	while (!dead && fgets(line, sizeof(line), f) != NULL) {
		char *end;
		unsigned long pid;

		if (line[0] == 'X')
			continue;
		pid = strtoul(line, &end, 10);
		if (pid > 1 && pid != (unsigned long)getpid() &&
		    kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			dead = 1;
	}
	fclose(f);
	return dead;
}

/* bdb_region_id - the identity of the environment's first region file */
static int
bdb_region_id(const char *home, dev_t *dev, ino_t *ino)
{
	char path[PATH_MAX];
	struct stat sb;

	*dev = 0;
	*ino = 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/__db.001", home) >=
	    sizeof(path) || stat(path, &sb) == -1)
		return -1;
	*dev = sb.st_dev;
	*ino = sb.st_ino;
	return 0;
}

/*
 * bdb_env_replaced - another process ran recovery and made a new
 * environment while we were stuck in the old one: its mutexes will
 * never be released, and __db.register no longer names the dead
 */
static int
bdb_env_replaced(struct bdb *b)
{
	dev_t dev;
	ino_t ino;

	if (b->region_ino == 0)
		return 0;
	if (bdb_region_id(b->home, &dev, &ino) == -1)
		return 1;
	return dev != b->region_dev || ino != b->region_ino;
}

/*
 * bdb_tick - wait one BDB_WATCHDOG_MS tick (wd_mu held); 0 once *stop
 * is set, for the watchdog and the sentinel alike
 */
static int
bdb_tick(struct bdb *b, const int *stop)
{
	struct timespec ts;

	if (*stop)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += BDB_WATCHDOG_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&b->wd_cv, &b->wd_mu, &ts);
	return !*stop;
}

/*
 * bdb_watchdog - a thread that expires lock waits. Berkeley DB checks
 * lock timeouts only when someone runs deadlock detection; a thread
 * blocked on a lock held by a process that died would otherwise wait
 * for ever. Every BDB_WATCHDOG_MS this asks for expired requests to be
 * refused; the refused thread then runs failchk(), which releases the
 * dead process's locks, and retries (bdb_run). In a process that writes
 * it also trickles dirty pages to disk, so that writers rarely have to
 * evict a dirty page themselves, and takes the periodic checkpoints.
 * Its own Berkeley DB calls count as calls in flight, so bdb_sentinel
 * notices if it gets stuck too.
 */
static void *
bdb_watchdog(void *arg)
{
	struct bdb *b = arg;
	unsigned ticks = 0;

	pthread_mutex_lock(&b->wd_mu);
	while (bdb_tick(b, &b->wd_stop)) {
		pthread_mutex_unlock(&b->wd_mu);
		__atomic_add_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&b->env_mu);
		if (b->env_ready) {
			int nwrote;

			(void)b->env->lock_detect(b->env, 0, DB_LOCK_EXPIRE,
			    NULL);
			/*
			 * A writer keeps clean pages at hand, off the write
			 * path, and checkpoints once a megabyte of log or a
			 * minute has gone by, so recovery stays short and old
			 * log files can go (DB_LOG_AUTO_REMOVE).
			 */
			if (__atomic_load_n(&b->wrote, __ATOMIC_RELAXED)) {
				/* a trickle walks the whole pool: the accept
				 * benchmark saw 5% of the daemon's CPU here
				 * when it ran every tick */
				if (++ticks % BDB_TRICKLE_TICKS == 0)
					(void)b->env->memp_trickle(b->env,
					    BDB_TRICKLE_PCT, &nwrote);
				if (ticks % BDB_CKP_TICKS == 0)
					(void)b->env->txn_checkpoint(b->env,
					    1024, 1, 0);
			}
		}
		pthread_mutex_unlock(&b->env_mu);
		/* no progress counted: its calls must not mask a stuck one */
		__atomic_sub_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&b->wd_mu);
	}
	pthread_mutex_unlock(&b->wd_mu);
	return NULL;
}

/*
 * bdb_sentinel - a thread that makes no Berkeley DB call, so it cannot
 * be caught by what it watches for: calls in flight (the watchdog's
 * included), none finishing for BDB_WEDGE_TICKS, and a process that had
 * the environment open now dead, or the environment recreated under us
 * by another process's recovery (test-concurrency left an odmrctl
 * blocked for ever on a log mutex of such a replaced environment). A thread blocked on a mutex the dead
 * process held can never wake, so the owner is told (on_wedged), once.
 */
static void *
bdb_sentinel(void *arg)
{
	struct bdb *b = arg;
	unsigned stalled = 0;
	uint64_t seen = 0;
	int told = 0;

	pthread_mutex_lock(&b->wd_mu);
	while (bdb_tick(b, &b->sn_stop)) {
		if (__atomic_load_n(&b->inflight, __ATOMIC_SEQ_CST) > 0 &&
		    __atomic_load_n(&b->progress, __ATOMIC_SEQ_CST) == seen)
			stalled++;
		else
			stalled = 0;
		seen = __atomic_load_n(&b->progress, __ATOMIC_SEQ_CST);
		if (stalled >= BDB_WEDGE_TICKS && !told && b->on_wedged &&
		    (bdb_dead_registered(b->home) || bdb_env_replaced(b))) {
			told = 1;
			pthread_mutex_unlock(&b->wd_mu);
			b->on_wedged(b->wedged_arg);
			pthread_mutex_lock(&b->wd_mu);
		}
	}
	pthread_mutex_unlock(&b->wd_mu);
	return NULL;
}

static void bdb_watchdog_stop(struct bdb *);
static void bdb_sentinel_stop(struct bdb *);
static void *bdb_sentinel(void *);
static void bdb_free(struct bdb *);

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
	b->on_wedged = o->on_wedged;
	b->wedged_arg = o->wedged_arg;
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
	pthread_mutex_init(&b->env_mu, NULL);
	pthread_mutex_init(&b->gc_mu, NULL);
	pthread_cond_init(&b->gc_cv, NULL);
	b->gc_tail = &b->gc_head;
	pthread_mutex_init(&b->wd_mu, NULL);
	pthread_cond_init(&b->wd_cv, NULL);
	/* the watchdog runs during the open too: it can block on a lock */
	if (pthread_create(&b->watchdog, NULL, bdb_watchdog, b) != 0) {
		queue_error_set(err, "cannot start the lock watchdog thread");
		bdb_free(b);
		return QUEUE_ERROR;
	}
	b->sentinel_started = 1;
	if (pthread_create(&b->sentinel, NULL, bdb_sentinel, b) != 0) {
		b->sentinel_started = 0;
		queue_error_set(err, "cannot start the sentinel thread");
		bdb_watchdog_stop(b);
		bdb_free(b);
		return QUEUE_ERROR;
	}
	__atomic_add_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
	st = bdb_open_handles(b, err);
	__atomic_sub_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&b->progress, 1, __ATOMIC_SEQ_CST);
	if (st != QUEUE_OK) {
		bdb_watchdog_stop(b);
		bdb_sentinel_stop(b);
		bdb_free(b);
		return st;
	}
	*statep = b;
	return QUEUE_OK;
}

/*
 * bdb_watchdog_stop - end the watchdog thread and wait for it. The
 * sentinel keeps watching meanwhile: the watchdog may be the one stuck.
 */
static void
bdb_watchdog_stop(struct bdb *b)
{
	pthread_mutex_lock(&b->wd_mu);
	b->wd_stop = 1;
	pthread_cond_broadcast(&b->wd_cv);
	pthread_mutex_unlock(&b->wd_mu);
	pthread_join(b->watchdog, NULL);
}

/* bdb_sentinel_stop - end the sentinel thread, last */
static void
bdb_sentinel_stop(struct bdb *b)
{
	if (!b->sentinel_started)
		return;
	pthread_mutex_lock(&b->wd_mu);
	b->sn_stop = 1;
	pthread_cond_broadcast(&b->wd_cv);
	pthread_mutex_unlock(&b->wd_mu);
	pthread_join(b->sentinel, NULL);
	b->sentinel_started = 0;
}

/* bdb_free - release the synchronisation objects and the handle */
static void
bdb_free(struct bdb *b)
{
	pthread_cond_destroy(&b->wd_cv);
	pthread_mutex_destroy(&b->wd_mu);
	pthread_cond_destroy(&b->gc_cv);
	pthread_mutex_destroy(&b->gc_mu);
	pthread_mutex_destroy(&b->env_mu);
	pthread_rwlock_destroy(&b->lock);
	free(b);
}

/* bdb_close - backend close(): checkpoint so the next open is quick */
static void
bdb_close(void **statep)
{
	struct bdb *b = *statep;

	if (b == NULL)
		return;
	bdb_watchdog_stop(b);
	/*
	 * A handle that wrote checkpoints (when enough log has gone by) so
	 * the next recovery is short; a reader leaves the cache alone.
	 */
	__atomic_add_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
	if (b->env && __atomic_load_n(&b->wrote, __ATOMIC_RELAXED))
		(void)b->env->txn_checkpoint(b->env, 1024, 0, 0);
	/* closing can block too: still under the sentinel's eye */
	bdb_close_handles(b);
	__atomic_sub_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
	bdb_sentinel_stop(b);
	bdb_free(b);
	*statep = NULL;
}

/*
 * bdb_flush - make every transaction committed so far durable; for a
 * BDB_WRITE | BDB_NOFLUSH transaction, which must not be reported
 * done before this returns. gen is the generation it committed under
 * (bdb_commit_gen right after bdb_run).
 */
enum queue_status
bdb_flush(struct bdb *b, uint64_t gen, struct queue_error *err)
{
	int rc = 0;

	if (b->flags & QUEUE_OPEN_NOSYNC)
		return QUEUE_OK;
	pthread_rwlock_rdlock(&b->lock);
	if (b->env == NULL || b->generation != gen) {
		/*
		 * The environment was recovered and reopened since the
		 * commit: its log buffer, and maybe the commit, are gone.
		 * Flushing the new one would prove nothing.
		 */
		pthread_rwlock_unlock(&b->lock);
		queue_error_set(err, "the store was recovered before the "
		    "write reached the disk; try again");
		return QUEUE_ERROR;
	}
	bdb_saw_enospc = 0;
	rc = b->env->log_flush(b->env, NULL);
	pthread_rwlock_unlock(&b->lock);
	return rc == 0 ? QUEUE_OK : bdb_fail(rc, "log flush", err);
}

/*
 * bdb_lsan_forget - a panicked environment cannot free its handles:
 * Berkeley DB's close functions return early once the region is marked
 * for recovery. Tell LeakSanitizer that this memory is given up on
 * purpose, so that sanitizer builds still report every other leak.
 */
static void
bdb_lsan_forget(struct bdb *b)
{
#ifdef BDB_LSAN
	int i;

	if (b->env)
		__lsan_ignore_object(b->env);
	if (b->seq)
		__lsan_ignore_object(b->seq);
	for (i = 0; i < BDB_NDB; i++)
		if (b->db[i])
			__lsan_ignore_object(b->db[i]);
#else
	(void)b;
#endif
}

/* bdb_reopen - after DB_RUNRECOVERY: rebuild the handles once */
static enum queue_status
bdb_reopen(struct bdb *b, uint64_t seen_gen, struct queue_error *err)
{
	enum queue_status st = QUEUE_OK;

	pthread_rwlock_wrlock(&b->lock);
	if (b->generation == seen_gen || b->env == NULL) {
		bdb_lsan_forget(b);
		bdb_close_handles(b);
		st = bdb_open_handles(b, err);
	}
	pthread_rwlock_unlock(&b->lock);
	return st;
}

static enum queue_status bdb_run_txn(struct bdb *, unsigned, bdb_txn_fn,
    void *, const char *, struct queue_error *);

/*
 * bdb_run - run fn inside one transaction (bdb_run_txn), counting the
 * calls in flight and finished so the watchdog can tell a wedge.
 */
enum queue_status
bdb_run(struct bdb *b, unsigned mode, bdb_txn_fn fn, void *arg,
    const char *what, struct queue_error *err)
{
	enum queue_status st;

	__atomic_add_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
	st = bdb_run_txn(b, mode, fn, arg, what, err);
	__atomic_sub_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&b->progress, 1, __ATOMIC_SEQ_CST);
	return st;
}

/*
 * bdb_run_txn - run fn inside one transaction: retry on deadlock and
 * lock timeout, reopen after recovery, and make writes durable before
 * returning. fn returns 0, a DB error, or BDB_APP(status).
 */
static enum queue_status
bdb_run_txn(struct bdb *b, unsigned mode, bdb_txn_fn fn, void *arg,
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
		    mode == BDB_READ ? DB_READ_COMMITTED : 0);
		if (rc == 0) {
			rc = fn(b, t, arg);
			if (rc == 0) {
				rc = t->commit(t, (mode & BDB_WRITE) ?
				    DB_TXN_NOSYNC : 0);
				if (rc == 0 && (mode & BDB_WRITE)) {
					__atomic_store_n(&b->wrote, 1,
					    __ATOMIC_RELAXED);
					bdb_commit_gen = gen;
				}
				if (rc == 0 && (mode & BDB_WRITE) &&
				    !(mode & BDB_NOFLUSH) &&
				    !(b->flags & QUEUE_OPEN_NOSYNC) &&
				    (rc = b->env->log_flush(b->env, NULL)) != 0) {
					/*
					 * Committed but maybe not on disk: never
					 * run fn again (it may have been applied);
					 * the caller reports a temporary failure.
					 */
					pthread_rwlock_unlock(&b->lock);
					return bdb_fail(rc, what, err);
				}
				if (rc == 0) {
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
int
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
int
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
int
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
int
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
size_t
bdb_dq_key(unsigned char *out, const char *domain, uint64_t qid)
{
	size_t n = strlen(domain);

	memcpy(out, domain, n + 1);
	pack_be64(out + n + 1, qid);
	return n + 9;
}

/* bdb_exp_key - expiry key: expiry qid domain */
size_t
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
int
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
int
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
uint64_t
bdb_sub(uint64_t a, uint64_t v)
{
	return a > v ? a - v : 0;
}

/* bdb_dq_put - write a domain queue entry: expiry, then the record copy */
int
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
int
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

/* bdb_has_live - does the message still have a live recipient in domain? */
int
bdb_has_live(const struct queue_msg *m, const char *domain)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++)
		if (queue_rcpt_live(m->rcpt[i].state) &&
		    (domain == NULL || strcmp(m->rcpt[i].domain, domain) == 0))
			return 1;
	return 0;
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
	.id_reserve = bdb_id_reserve,
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
