/*
 * NAME
 *	odmrd 8 - the On-Demand Mail Relay node daemon
 * SYNOPSIS
 *	odmrd [-f FILE] [-d] [-t] [-v]
 * DESCRIPTION
 *	The start-up order matters and is the same every time:
 *	1. read odmrd.conf (odmr_conf(3)); -t stops here, after also
 *	   loading the TLS files and looking up the user;
 *	2. bind every smtp_listen, odmr_listen and odmrs_listen address,
 *	   which may need root;
 *	3. load the TLS certificate and key;
 *	4. drop privileges to user (setgroups, setgid, setuid), and check
 *	   that root cannot be regained;
 *	5. detach from the terminal unless -d;
 *	6. open the store in state_dir/queue, running recovery if the last
 *	   run died; set up libsasl2 over state_dir/sasldb2 and check its
 *	   mechanisms; start the commit, lookup and auth threads, the
 *	   domain snapshot (smtp_domains(3)) and the queue id batches;
 *	7. accept connections on every listener, and log event=ready.
 *
 *	SIGHUP re-reads the configuration and the TLS files. A file with an
 *	error changes nothing. Keys that need sockets, privileges or the
 *	store (smtp_listen, odmr_listen, odmrs_listen, state_dir, user,
 *	commit_threads) keep their old values until a restart, and a
 *	warning names them.
 *
 *	SIGTERM and SIGINT close the listeners and let every session end
 *	at its next idle point: idle clients get 421 4.3.2, a message
 *	being received or committed finishes. After shutdown_timeout the
 *	rest are cut off; a commit already running always finishes, so no
 *	message is ever half-written. A second signal cuts off at once.
 *
 *	When the store reports itself wedged (a process died inside
 *	Berkeley DB holding a mutex), odmrd exits with status 75 so that
 *	the service manager starts a new process, whose open runs
 *	recovery.
 * DIAGNOSTICS
 *	Start-up errors go to stderr (and syslog once it is set up) and
 *	exit with status 1. Everything else is logged as key=value lines.
 * SEE ALSO
 *	odmrd(8), odmrd.conf(5), odmrctl(8), smtp_server(3)
 */
#include "config.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "tls.h"
#include "work.h"
#include "xmalloc.h"

#include "odmr_conf.h"
#include "odmr_sasl.h"
#include "odmr_bounce.h"
#include "odmr_flush.h"
#include "odmrd.h"
#include "turn_bounce.h"
#include "queue.h"
#include "smtp_domains.h"
#include "smtp_session.h"

struct odmrd_main {
	struct odmrd	 d;
	const char	*conf_path;
	int		 explicit_path;
	int		 verbose;
	struct loop_timer *drain_timer;
	int		 signals;	/* shutdown signals seen */
};

static size_t odmrd_sessions(struct odmrd *);
static void odmrd_abort(struct odmrd *);

/* odmrd_usage - the synopsis on stderr, exit 1 */
static void __attribute__((noreturn))
odmrd_usage(void)
{
	fprintf(stderr, "usage: odmrd [-f FILE] [-d] [-t] [-v]\n");
	exit(1);
}

/* odmrd_session_id - a new session id: per-process random, then a count */
void
odmrd_session_id(struct odmrd *d, char *out, size_t outsz)
{
	(void)snprintf(out, outsz, "%08x%08x", d->session_prefix,
	    ++d->session_seq);
}

/* odmrd_ids_run - on the lookup pool: reserve the next batch of ids */
static void
odmrd_ids_run(void *arg)
{
	struct odmrd *d = arg;
	struct queue_error err;

	d->ids_status = queue_id_reserve(d->queue, ODMRD_IDS_BATCH,
	    &d->ids_first, &err);
	if (d->ids_status != QUEUE_OK)
		log_warnx("event=store-error op=reserve-ids reason=\"%s\"",
		    err.text);
}

/* odmrd_ids_done - on the loop: the new batch replaces what is left */
static void
odmrd_ids_done(void *arg)
{
	struct odmrd *d = arg;

	d->ids_refilling = 0;
	if (d->ids_status == QUEUE_OK) {
		d->ids_next = d->ids_first;
		d->ids_end = d->ids_first + ODMRD_IDS_BATCH;
	}
	if (d->draining)
		odmrd_server_idle(d);
}

/* odmrd_ids_refill - reserve the next batch of ids, unless under way */
static void
odmrd_ids_refill(struct odmrd *d)
{
	if (d->ids_refilling || d->draining)
		return;
	d->ids_refilling = 1;
	work_submit(d->lookup_pool, odmrd_ids_run, odmrd_ids_done, d);
}

/*
 * odmrd_id_take - a queue id for a message now arriving, from the batch
 * reserved ahead; 0 when the batch is empty (the caller asks the store)
 */
int
odmrd_id_take(struct odmrd *d, uint64_t *qid)
{
	int ok = 0;

	if (d->ids_next < d->ids_end) {
		*qid = queue_id_make((uint64_t)time(NULL), d->ids_next++);
		ok = 1;
	}
	if (d->ids_end - d->ids_next < ODMRD_IDS_BATCH / 4)
		odmrd_ids_refill(d);
	return ok;
}

/* odmrd_tls_load - the server TLS context, or NULL when not configured */
static int
odmrd_tls_load(const struct odmr_conf *c, struct tls_ctx **ctxp,
    char **error_r)
{
	*ctxp = NULL;
	if (c->tls_cert_file[0] == '\0' || c->tls_key_file[0] == '\0')
		return 0;
	if ((*ctxp = tls_server_new(c->tls_cert_file, c->tls_key_file,
	    error_r)) == NULL)
		return -1;
	/* SASL EXTERNAL: ask every TLS client for a certificate */
	if (c->tls_client_ca_file[0] != '\0' && tls_server_client_ca(*ctxp,
	    c->tls_client_ca_file, error_r) == -1) {
		tls_ctx_free(ctxp);
		return -1;
	}
	return 0;
}

/* odmrd_tls_client_load - the outbound contexts: may/encrypt, verify */
static int
odmrd_tls_client_load(const struct odmr_conf *c, struct tls_ctx **clientp,
    struct tls_ctx **verifyp, char **error_r)
{
	*clientp = *verifyp = NULL;
	if ((*clientp = tls_client_new(TLS_MODE_MAY, c->tls_ca_file,
	    error_r)) == NULL)
		return -1;
	if ((*verifyp = tls_client_new(TLS_MODE_VERIFY, c->tls_ca_file,
	    error_r)) == NULL) {
		tls_ctx_free(clientp);
		return -1;
	}
	return 0;
}

/* odmrd_tls_client_swap - SIGHUP's client contexts, once no flush runs */
static void
odmrd_tls_client_swap(struct odmrd *d)
{
	if (d->tls_client_next == NULL || odmr_flush_count(d->flush) > 0)
		return;
	tls_ctx_free(&d->tls_client);
	tls_ctx_free(&d->tls_verify);
	d->tls_client = d->tls_client_next;
	d->tls_verify = d->tls_verify_next;
	d->tls_client_next = d->tls_verify_next = NULL;
	log_info("event=tls-client-reloaded ca=%s", d->conf->tls_ca_file[0] ?
	    d->conf->tls_ca_file : "system");
}

/* odmrd_dsn_domain - the DSN domain exists, routed per bounce_relay */
static void
odmrd_dsn_domain(struct odmrd *d)
{
	struct queue_error err;

	if (turn_bounce_domain(d->queue, d->conf->bounce_relay, &err) !=
	    QUEUE_OK)
		log_warnx("event=store-error op=dsn-domain domain=%s"
		    " reason=\"%s\"", TURN_BOUNCE_DOMAIN, err.text);
}

/* odmrd_flush_idle - the last running flush ended */
void
odmrd_flush_idle(struct odmrd *d)
{
	odmrd_tls_client_swap(d);
	odmrd_server_idle(d);
}

/* odmrd_privdrop - become user (after binding), or stay who we are */
static void
odmrd_privdrop(const char *user)
{
	struct passwd *pw;

	if (user[0] == '\0') {
		if (geteuid() == 0)
			log_warnx("event=warning reason=\"running as root:"
			    " set user in odmrd.conf\"");
		return;
	}
	if ((pw = getpwnam(user)) == NULL)
		fatalx("user %s: no such user", user);
	if (geteuid() != 0) {
		if (geteuid() == pw->pw_uid)
			return;
		fatalx("user %s: cannot switch to it: odmrd is not root",
		    user);
	}
	if (setgroups(1, &pw->pw_gid) == -1)
		fatal("setgroups %u", (unsigned)pw->pw_gid);
	if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1)
		fatal("setresgid %u", (unsigned)pw->pw_gid);
	if (setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("setresuid %u", (unsigned)pw->pw_uid);
	if (pw->pw_uid != 0 && (setuid(0) != -1 || seteuid(0) != -1))
		fatalx("user %s: root privileges could be regained", user);
	log_info("event=privdrop user=%s uid=%u gid=%u", user,
	    (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
}

/* odmrd_check - -t: everything that can be checked without binding */
static int
odmrd_check(const struct odmr_conf *c)
{
	struct tls_ctx *tls, *client, *verify;
	char *err = NULL;

	if (odmrd_tls_load(c, &tls, &err) == -1 ||
	    odmrd_tls_client_load(c, &client, &verify, &err) == -1) {
		fprintf(stderr, "odmrd: %s: %s\n", c->path ? c->path :
		    "defaults", err);
		free(err);
		return 1;
	}
	tls_ctx_free(&tls);
	tls_ctx_free(&client);
	tls_ctx_free(&verify);
	if (c->user[0] != '\0' && getpwnam(c->user) == NULL) {
		fprintf(stderr, "odmrd: %s: user %s: no such user\n",
		    c->path ? c->path : "defaults", c->user);
		return 1;
	}
	printf("odmrd: configuration %s is valid\n", c->path ? c->path :
	    "(built-in defaults)");
	return 0;
}

/* odmrd_wedged - the store stopped making progress: restart (any thread) */
static void
odmrd_wedged(void *arg)
{
	(void)arg;
	log_warnx("event=store-wedged reason=\"a process died inside the"
	    " store; exiting so that the service manager restarts odmrd\""
	    " status=%d", ODMRD_EXIT_WEDGED);
	_exit(ODMRD_EXIT_WEDGED);
}

/* odmrd_stalled - the watchdog thread: the loop has not turned; abort */
static void
odmrd_stalled(unsigned waited_ms, void *arg)
{
	(void)arg;
	log_warnx("event=loop-stalled seconds=%u.%03u reason=\"the event loop"
	    " has not turned for loop_stall_timeout; aborting so that the"
	    " service manager restarts odmrd\"", waited_ms / 1000,
	    waited_ms % 1000);
	abort();
}

/* odmrd_test_stall - test hook (ODMRD_TEST_HOOKS=1): SIGUSR2 blocks the loop */
static void
odmrd_test_stall(int signo, void *arg)
{
	(void)signo;
	(void)arg;
	log_warnx("event=test-stall note=\"the loop blocks on purpose\"");
	for (;;)
		(void)sleep(60);
}

/* odmrd_same - two configuration strings are equal */
static int
odmrd_same(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

/* odmrd_keep - a key that needs a restart keeps its old value on reload */
static void
odmrd_keep(const char *key, char **nv, const char *ov)
{
	if (!odmrd_same(*nv, ov))
		log_warnx("event=reload-warning key=%s reason=\"changes need a"
		    " restart\"", key);
	free(*nv);
	*nv = xstrdup(ov != NULL ? ov : "");
}

/* odmrd_reload - SIGHUP: a new configuration and new TLS files */
static void
odmrd_reload(int signo, void *arg)
{
	struct odmrd_main *m = arg;
	struct odmrd *d = &m->d;
	struct odmr_conf *nc = NULL, *oc = d->conf;
	struct tls_ctx *tls = NULL, *client = NULL, *verify = NULL;
	char *err = NULL;

	(void)signo;
	log_info("event=reload path=%s", m->conf_path ? m->conf_path :
	    odmr_conf_default_path());
	if (odmr_conf_load(m->conf_path ? m->conf_path :
	    odmr_conf_default_path(), m->explicit_path, &nc, &err) == -1) {
		log_warnx("event=reload-failed reason=\"%s\" note=\"the old"
		    " configuration stays in force\"", err);
		free(err);
		return;
	}
	if (odmrd_tls_load(nc, &tls, &err) == -1 ||
	    odmrd_tls_client_load(nc, &client, &verify, &err) == -1) {
		log_warnx("event=reload-failed reason=\"%s\" note=\"the old"
		    " configuration stays in force\"", err);
		free(err);
		tls_ctx_free(&tls);
		odmr_conf_free(&nc);
		return;
	}
	odmrd_keep("smtp_listen", &nc->smtp_listen, oc->smtp_listen);
	odmrd_keep("odmr_listen", &nc->odmr_listen, oc->odmr_listen);
	odmrd_keep("odmrs_listen", &nc->odmrs_listen, oc->odmrs_listen);
	odmrd_keep("state_dir", &nc->state_dir, oc->state_dir);
	odmrd_keep("user", &nc->user, oc->user);
	if (nc->commit_threads != oc->commit_threads) {
		log_warnx("event=reload-warning key=commit_threads"
		    " reason=\"changes need a restart\"");
		nc->commit_threads = oc->commit_threads;
	}
	if (nc->loop_stall_timeout != oc->loop_stall_timeout) {
		log_warnx("event=reload-warning key=loop_stall_timeout"
		    " reason=\"changes need a restart\"");
		nc->loop_stall_timeout = oc->loop_stall_timeout;
	}
	d->conf = nc;
	odmr_conf_free(&oc);
	tls_ctx_free(&d->tls);
	d->tls = tls;
	tls_ctx_free(&d->tls_client_next);
	tls_ctx_free(&d->tls_verify_next);
	d->tls_client_next = client;
	d->tls_verify_next = verify;
	odmrd_tls_client_swap(d);
	odmrd_dsn_domain(d);
	log_set_level(m->verbose ? LOG_LEVEL_DEBUG : nc->log_level);
	log_info("event=reloaded tls=%s client_ca=%s", d->tls != NULL ?
	    "yes" : "no", nc->tls_client_ca_file[0] != '\0' ?
	    nc->tls_client_ca_file : "none");
}

/* odmrd_drain_expired - shutdown_timeout passed: cut the rest off */
static void
odmrd_drain_expired(void *arg)
{
	struct odmrd_main *m = arg;

	log_warnx("event=shutdown-timeout sessions=%zu",
	    odmrd_sessions(&m->d));
	odmrd_abort(&m->d);
}

/* odmrd_terminate - SIGTERM/SIGINT: drain, then leave the loop */
static void
odmrd_terminate(int signo, void *arg)
{
	struct odmrd_main *m = arg;

	if (m->signals++ > 0) {
		log_warnx("event=shutdown-now signal=%d", signo);
		odmrd_abort(&m->d);
		return;
	}
	log_info("event=shutdown signal=%d sessions=%zu timeout=%llu", signo,
	    odmrd_sessions(&m->d),
	    (unsigned long long)m->d.conf->shutdown_timeout);
	m->d.draining = 1;
	smtp_domains_stop(m->d.domains);
	m->drain_timer = loop_timer_new(odmrd_drain_expired, m);
	loop_timer_add(m->drain_timer,
	    (unsigned)(m->d.conf->shutdown_timeout * 1000));
	for (size_t i = 0; i < m->d.nservers; i++)
		smtp_server_shutdown(m->d.servers[i]);
	odmr_flush_shutdown(m->d.flush);
	odmr_bounce_shutdown(m->d.bounce);
	odmrd_server_idle(&m->d);
}

/* odmrd_sessions - sessions of every listener, store jobs included */
static size_t
odmrd_sessions(struct odmrd *d)
{
	size_t i, n = 0;

	for (i = 0; i < d->nservers; i++)
		n += smtp_server_count(d->servers[i]);
	return n;
}

/* odmrd_abort - end every session of every listener now */
static void
odmrd_abort(struct odmrd *d)
{
	size_t i;

	for (i = 0; i < d->nservers; i++)
		smtp_server_abort(d->servers[i]);
	odmr_flush_abort(d->flush);
	odmr_bounce_abort(d->bounce);
}

/* odmrd_server_idle - a listener's last session ended during a shutdown */
void
odmrd_server_idle(struct odmrd *d)
{
	if (d->draining && odmrd_sessions(d) == 0 && !d->ids_refilling &&
	    !smtp_domains_busy(d->domains) && odmr_flush_count(d->flush) == 0 &&
	    !odmr_bounce_busy(d->bounce))
		loop_break();
}

/* odmrd_open_store - the spool directory and the store, as user */
static void
odmrd_open_store(struct odmrd *d)
{
	struct queue_opts o;
	struct queue_error qe;
	enum queue_status st;
	int n;

	n = snprintf(d->spool_dir, sizeof(d->spool_dir), "%s/%s",
	    d->conf->state_dir, ODMRD_SPOOL_SUBDIR);
	if (n < 0 || (size_t)n >= sizeof(d->spool_dir))
		fatalx("state_dir %s: path too long", d->conf->state_dir);
	if (mkdir(d->spool_dir, 0700) == -1 && errno != EEXIST)
		fatal("cannot create the spool directory %s", d->spool_dir);
	memset(&o, 0, sizeof(o));
	o.state_dir = d->conf->state_dir;
	o.flags = QUEUE_OPEN_CREATE;
	o.default_lifetime = d->conf->queue_lifetime;
	o.on_wedged = odmrd_wedged;
	if ((st = queue_open(&o, &d->queue, &qe)) != QUEUE_OK)
		fatalx("cannot open the store in %s: %s", d->conf->state_dir,
		    qe.text);
}

/* odmrd_addrs - a listener's addresses as "a,b", or "-" */
static void
odmrd_addrs(const struct listen *l, char *out, size_t outsz)
{
	size_t i;

	(void)strlcpy(out, l == NULL ? "-" : "", outsz);
	for (i = 0; l != NULL && i < listen_count(l); i++) {
		if (i > 0)
			(void)strlcat(out, ",", outsz);
		(void)strlcat(out, listen_addr(l, i), outsz);
	}
}

/* odmrd_server_add - start accepting on one listener (none: nothing) */
static void
odmrd_server_add(struct odmrd *d, struct listen *l, enum smtp_mode mode,
    int implicit_tls, const char *name)
{
	struct smtp_server *srv;
	char *err = NULL;

	if (l == NULL)
		return;
	srv = smtp_server_new(d, l, mode, implicit_tls, name);
	if (smtp_server_start(srv, &err) == -1)
		fatalx("%s_listen: %s", name, err);
	d->servers[d->nservers++] = srv;
}

/* odmrd_sasl_log - libsasl2's own lines, as key=value events */
static void
odmrd_sasl_log(enum log_level level, const char *msg, void *arg)
{
	(void)arg;
	if (level <= LOG_LEVEL_WARN)
		log_warnx("event=sasl reason=\"%s\"", msg);
	else
		log_debug("event=sasl reason=\"%s\"", msg);
}

/* main - start-up, the loop, and an orderly end */
int
main(int argc, char *argv[])
{
	struct odmrd_main m;
	struct odmrd *d = &m.d;
	struct listen *smtp_l = NULL, *odmr_l = NULL, *odmrs_l = NULL;
	char *err = NULL;
	int ch, foreground = 0, check = 0;

	memset(&m, 0, sizeof(m));
	while ((ch = getopt(argc, argv, "df:tv")) != -1) {
		switch (ch) {
		case 'd':
			foreground = 1;
			break;
		case 'f':
			m.conf_path = optarg;
			m.explicit_path = 1;
			break;
		case 't':
			check = 1;
			break;
		case 'v':
			m.verbose = 1;
			break;
		default:
			odmrd_usage();
		}
	}
	if (optind != argc)
		odmrd_usage();

	if (odmr_conf_load(m.conf_path ? m.conf_path :
	    odmr_conf_default_path(), m.explicit_path, &d->conf, &err) == -1) {
		fprintf(stderr, "odmrd: %s\n", err);
		free(err);
		return 1;
	}
	if (check) {
		ch = odmrd_check(d->conf);
		odmr_conf_free(&d->conf);
		return ch;
	}
	log_init("odmrd", foreground, m.verbose ? LOG_LEVEL_DEBUG :
	    d->conf->log_level);

	if (listen_bind(d->conf->smtp_listen, &smtp_l, &err) == -1)
		fatalx("smtp_listen: %s", err);
	if (d->conf->odmr_listen[0] != '\0' &&
	    listen_bind(d->conf->odmr_listen, &odmr_l, &err) == -1)
		fatalx("odmr_listen: %s", err);
	if (d->conf->odmrs_listen[0] != '\0' &&
	    listen_bind(d->conf->odmrs_listen, &odmrs_l, &err) == -1)
		fatalx("odmrs_listen: %s", err);
	if (odmrd_tls_load(d->conf, &d->tls, &err) == -1)
		fatalx("%s", err);
	if (odmrd_tls_client_load(d->conf, &d->tls_client, &d->tls_verify,
	    &err) == -1)
		fatalx("%s", err);
	if (odmrs_l != NULL && d->tls == NULL)
		fatalx("odmrs_listen is implicit TLS: it needs tls_cert_file"
		    " and tls_key_file");
	odmrd_privdrop(d->conf->user);
	if (!foreground && daemon(0, 0) == -1)
		fatal("daemon");
	if (getrandom(&d->session_prefix, sizeof(d->session_prefix), 0) !=
	    (ssize_t)sizeof(d->session_prefix))
		d->session_prefix = (uint32_t)time(NULL) ^
		    ((uint32_t)getpid() << 16);

	if (loop_init(&err) == -1)
		fatalx("%s", err);
	odmrd_open_store(d);
	odmr_sasl_set_log(odmrd_sasl_log, NULL, LOG_LEVEL_INFO);
	if (odmr_sasl_init(d->conf->state_dir, "odmrd", &err) == -1 ||
	    odmr_sasl_check_mechs(&err) == -1)
		fatalx("SASL: %s", err);
	d->commit_pool = work_pool_new("commit",
	    (unsigned)d->conf->commit_threads);
	d->lookup_pool = work_pool_new("lookup", ODMRD_LOOKUP_THREADS);
	d->auth_pool = work_pool_new("auth", ODMRD_AUTH_THREADS);
	d->deliver_pool = work_pool_new("deliver", ODMRD_DELIVER_THREADS);
	d->dns_pool = work_pool_new("dns", ODMRD_DNS_THREADS);
	d->flush = odmr_flush_new(d);
	odmrd_dsn_domain(d);
	d->bounce = odmr_bounce_new(d);
	d->domains = smtp_domains_new(d);
	odmrd_ids_refill(d);	/* the first batch */
	odmrd_server_add(d, smtp_l, SMTP_MODE_MX, 0, "smtp");
	odmrd_server_add(d, odmr_l, SMTP_MODE_ODMR, 0, "odmr");
	odmrd_server_add(d, odmrs_l, SMTP_MODE_ODMR, 1, "odmrs");
	if (loop_signal(SIGHUP, odmrd_reload, &m) == -1 ||
	    loop_signal(SIGTERM, odmrd_terminate, &m) == -1 ||
	    loop_signal(SIGINT, odmrd_terminate, &m) == -1)
		fatalx("cannot install the signal handlers");
	if (getenv("ODMRD_TEST_HOOKS") != NULL &&
	    loop_signal(SIGUSR2, odmrd_test_stall, NULL) == -1)
		fatalx("cannot install the test hook");
	if (d->conf->loop_stall_timeout > 0 && loop_watchdog_start(
	    (unsigned)(d->conf->loop_stall_timeout * 1000), odmrd_stalled,
	    NULL, &err) == -1)
		fatalx("loop_stall_timeout: %s", err);
	{
		char smtp[256], odmr[256], odmrs[256];

		odmrd_addrs(smtp_l, smtp, sizeof(smtp));
		odmrd_addrs(odmr_l, odmr, sizeof(odmr));
		odmrd_addrs(odmrs_l, odmrs, sizeof(odmrs));
		log_info("event=ready version=%s smtp=%s odmr=%s odmrs=%s"
		    " tls=%s store=%s commit_threads=%llu pid=%ld",
		    PACKAGE_VERSION, smtp, odmr, odmrs,
		    d->tls != NULL ? "yes" : "no", d->conf->state_dir,
		    (unsigned long long)d->conf->commit_threads,
		    (long)getpid());
	}

	if (loop_run() == -1)
		log_warnx("event=loop-error");
	loop_watchdog_stop();

	/* sessions are gone; commits in flight have reported back */
	loop_timer_free(&m.drain_timer);
	for (size_t i = 0; i < d->nservers; i++)
		smtp_server_free(&d->servers[i]);
	smtp_domains_free(&d->domains);
	work_pool_free(&d->commit_pool);
	work_pool_free(&d->lookup_pool);
	work_pool_free(&d->auth_pool);
	work_pool_free(&d->deliver_pool);
	work_pool_free(&d->dns_pool);
	odmr_flush_free(&d->flush);
	odmr_bounce_free(&d->bounce);
	odmr_sasl_done();
	queue_close(&d->queue);
	tls_ctx_free(&d->tls);
	tls_ctx_free(&d->tls_client);
	tls_ctx_free(&d->tls_verify);
	tls_ctx_free(&d->tls_client_next);
	tls_ctx_free(&d->tls_verify_next);
	loop_free();
	log_info("event=stopped");
	odmr_conf_free(&d->conf);
	return 0;
}
