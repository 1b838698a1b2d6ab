/*
 * NAME
 *	fuzz-smtp-session - libFuzzer target for a whole SMTP server session
 * SYNOPSIS
 *	tests/fuzz/fuzz-smtp-session [libFuzzer options] CORPUS...
 * DESCRIPTION
 *	Feeds a byte stream to a real smtp_session (odmr/smtp_session.c and
 *	every verb file behind it) over a socketpair, in one process, in
 *	plaintext and after STARTTLS or implicit TLS, and ends it in one of
 *	the rude ways of issue 14. A crash, a sanitizer report, a leak, or
 *	a session that is not freed within FZ_GONE_MS of being aborted is
 *	a finding.
 *
 *	Set up once: a temporary state directory holding a real store
 *	(queue_open(), never a mock; QUEUE_OPEN_NOSYNC, since a commit
 *	that waits for the disk would make an input last milliseconds),
 *	the customer domains of tests/integration/dialogues (example.org,
 *	sub.example.net with subdomains, plain.example.com; owner demo),
 *	the SASL account demo (password demo), a self-signed P-256
 *	certificate made with openssl req, the worker pools, the flush and
 *	bounce engines and the domain snapshot, as odmrd's main() sets them
 *	up. Every outbound route (ETRN flushes, DSNs) points at a local
 *	port that refuses, so nothing leaves the machine. The target plays
 *	odmrd.c's part through the four hooks of odmrd.h, and
 *	smtp_server.c's part through the two calls a session makes to its
 *	server (smtp_server_name(), smtp_server_session_gone()): the real
 *	smtp_server.c can only accept from a listening socket.
 *
 *	An input is two control octets, then the stream the client sends:
 *
 *	octet 0	bits 0-1  listener: 0 and 3 smtp_listen (MX), 1
 *			  odmr_listen, 2 odmrs_listen (implicit TLS)
 *		bit 2	  STARTTLS: after sending a line "STARTTLS" the
 *			  client waits for "220 2.0.0" and does the TLS
 *			  handshake; without this bit it carries on in
 *			  plaintext, into the server's handshake. On
 *			  odmrs_listen the client does its handshake first,
 *			  and this bit makes it one that speaks no TLS
 *		bits 3-5  the end, enum fz_end
 *		bit 6	  the second configuration: max_message_size 10k,
 *			  max_recipients 3 (dialogues/limits),
 *			  auth_require_tls no, max_reply_backlog 4k
 *		bit 7	  the client does not read (except to see the 220
 *			  to STARTTLS and for handshakes), and the server's
 *			  socket buffer is small: output backpressure
 *	octet 1	bits 0-3  the chunking, fz_chunks[]: all at once, n
 *			  octets, one line, or random sizes
 *		bit 4	  wait for the server to be quiet before each chunk
 *			  (a client that reads each reply)
 *		bits 5-7  the seed of the random sizes
 *
 *	The client side runs on the same loop from a timer that fires
 *	every loop turn; it is a lib/io connection itself, since nothing
 *	outside lib/ may use OpenSSL (STYLE.md rule 5), and reaches under
 *	it to the socket for the half-close and the SO_LINGER close. The
 *	server is "quiet" when no worker job is pending and nothing has
 *	moved for FZ_QUIET_TURNS loop turns; the server-side endings
 *	(abort, shutdown) and a lingering session wait for that. An input
 *	takes at most FZ_BOUND_MS before it is cut off and the session
 *	aborted. Afterwards every object of the input is gone (the
 *	session, both ends of the socketpair, the client's TLS, any ETRN
 *	flush it started) and no worker job is out. The one exception is
 *	a session torn down while a timer holds it as a job (AUTH's delay
 *	after a failure, one to three seconds): it is kept on a list and
 *	must be gone FZ_GONE_MS later. At exit everything is drained and
 *	freed as odmrd's main() does, so the replayer's leak check counts.
 *
 *	tests/fuzz/make-session-seeds.py writes the corpus from the
 *	dialogues. FZ_SESSION_LOG=debug (or info, warning) in the
 *	environment shows the daemon's log on stderr.
 * DIAGNOSTICS
 *	Set-up failures exit 1 with a message (openssl must be on PATH).
 *	A session still there FZ_GONE_MS after smtp_session_abort(), or
 *	torn down and not freed by then, aborts the process with a line
 *	that names it, as does an ETRN flush that outlives
 *	odmr_flush_abort(). The seed sasl-login-empty-user is the input that
 *	found Cyrus SASL's LOGIN leak (smtp_auth.c now refuses its trigger).
 * SEE ALSO
 *	smtp_session(3), odmrd(8), fuzz-main.c, issue 14 item 4
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "tls.h"
#include "work.h"
#include "xmalloc.h"

#include "odmr_bounce.h"
#include "odmr_conf.h"
#include "odmr_flush.h"
#include "odmr_sasl.h"
#include "odmrd.h"
#include "queue.h"
#include "smtp_domains.h"
#include "smtp_session.h"
#include "turn_bounce.h"

#define FZ_CTRL_LEN		2	/* control octets before the stream */
#define FZ_DIR_MAX		256	/* the state directory's path */
#define FZ_BOUND_MS		400	/* one input at most, then cut off */
#define FZ_GONE_MS		4000	/* aborted and still there: a bug
					   (under libFuzzer's -timeout=5) */
#define FZ_SETTLE_MS		2000	/* an ETRN flush may take this long */
#define FZ_QUIET_TURNS		8	/* loop turns without progress */
#define FZ_LINGER_TURNS		64	/* client done, session on: abort */
#define FZ_STUCK_TURNS		256	/* client output stuck: end anyway */
#define FZ_AFTER_TURNS		4	/* libevent finalizes frees later */
#define FZ_CLIENT_QUEUE_MAX	(64 * 1024)	/* client output in flight */
#define FZ_SNDBUF_SMALL		4096	/* server socket, bit 7 */
#define FZ_CUTS_MAX		8	/* STARTTLS lines looked for */
#define FZ_RANDOM_CHUNK_MAX	600	/* random chunk sizes: 1..this */
#define FZ_PURGE_MESSAGES	64	/* messages queued, then emptied */
#define FZ_PURGE_INPUTS		512	/* and at least this often */
#define FZ_CACHE_BYTES		(16 * 1024 * 1024)	/* the store's cache */
#define FZ_GO			"220 2.0.0"	/* the 220 to STARTTLS */
#define FZ_GO_LEN		(sizeof(FZ_GO) - 1)
#define FZ_PASSWORD		"demo"
#define FZ_ACCOUNT		"demo"
#define FZ_DRAIN_MS		20000	/* the final drain, at most */
#define FZ_PENDING_MAX		256	/* torn-down sessions awaiting a job */
#define FZ_CHUNK_ALL		SIZE_MAX	/* markers in fz_chunks[] */
#define FZ_CHUNK_RANDOM		(SIZE_MAX - 1)
#define FZ_CHUNK_LINE		0

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* how the client's part ends (octet 0, bits 3-5) */
enum fz_end {
	FZ_END_HALFCLOSE = 0,	/* output drained, shutdown(SHUT_WR), read */
	FZ_END_CLOSE,		/* output drained, close */
	FZ_END_RST,		/* stop reading, quiet, SO_LINGER 0, close */
	FZ_END_NOTIFY_READ,	/* close_notify (plain: half-close), read */
	FZ_END_NOTIFY_CLOSE,	/* close_notify, close at once (Exim) */
	FZ_END_ABORT,		/* stop; quiet: smtp_session_abort() */
	FZ_END_SHUTDOWN,	/* stop; quiet: smtp_session_shutdown() */
	FZ_END_CUT,		/* close at once, output still queued */
};

enum fz_listener {
	FZ_SMTP = 0,
	FZ_ODMR,
	FZ_ODMRS,
};

enum fz_phase {
	FZ_PHASE_SEND = 0,	/* writing the stream */
	FZ_PHASE_END,		/* the stream is out: the way it ends */
	FZ_PHASE_WAIT,		/* the client is done: the session goes */
	FZ_PHASE_SETTLE,	/* the session is gone: background work */
	FZ_PHASE_DONE,
};

/* octet 1, bits 0-3: the whole stream, n octets, a line, random */
static const size_t fz_chunks[16] = {
	FZ_CHUNK_ALL, 1, 2, 3, 5, 8, 13, 21, 64, 100, 512, 1000, 1500, 4096,
	FZ_CHUNK_LINE, FZ_CHUNK_RANDOM,
};

/* one input: the stream, the client's state, the session */
struct fz_run {
	const uint8_t	*data;
	size_t		 len;
	size_t		 off;
	enum fz_listener listener;
	int		 starttls;
	int		 plain;		/* odmrs: a client without TLS */
	enum fz_end	 end;
	int		 lax;
	int		 noread;
	size_t		 chunk;
	int		 lockstep;
	uint32_t	 rnd;
	size_t		 cuts[FZ_CUTS_MAX];	/* ends of STARTTLS lines */
	size_t		 ncuts;
	size_t		 nextcut;

	struct io	*cio;		/* the client; NULL once closed */
	int		 cfd;
	int		 tls_wait;	/* STARTTLS sent: waiting for 220 */
	int		 handshaking;
	int		 in_tls;
	int		 notify_sent;
	int		 notify_out;	/* close_notify handed to the kernel */
	int		 bol;		/* the next octet read starts a line */
	char		 pfx[FZ_GO_LEN];
	size_t		 npfx;
	int		 saw_go;

	struct smtp_session *s;		/* NULL once gone */
	int		 aborted;
	int		 shut;
	enum fz_phase	 phase;
	int		 activity;	/* something moved this turn */
	unsigned	 quiet;		/* turns without activity */
	unsigned	 turns;		/* in this phase */
	uint64_t	 start_ms;
	uint64_t	 abort_ms;
	uint64_t	 settle_ms;
	struct loop_timer *tick;
};

/*
 * A session torn down while a job of its runs (s->dead) is freed when
 * the job reports back; an AUTH failure's delay is such a job and lasts
 * up to three seconds. The input does not wait for it: the session is
 * kept here and must be gone within FZ_GONE_MS.
 */
struct fz_pending {
	struct smtp_session *s;
	uint64_t	 since;
};

/* smtp_server's part: what a session asks of the listener it came from */
struct smtp_server {
	const char	*name;
};

/*
 * Everything set up once. libFuzzer gives LLVMFuzzerTestOneInput() no
 * context argument, so this one harness context is file-global; the
 * daemon's code still gets it explicitly, as struct odmrd.
 */
static struct fz_main {
	int		 ready;
	int		 in_loop;	/* inside loop_run() */
	pthread_t	 main_thread;
	char		 dir[FZ_DIR_MAX];	/* the temporary state directory */
	struct odmrd	 d;
	struct odmr_conf *conf_a;	/* the defaults, short timeouts */
	struct odmr_conf *conf_b;	/* octet 0 bit 6 */
	struct tls_ctx	*client_tls;	/* the fuzz client's */
	struct smtp_server servers[3];
	int		 refuse_fd;	/* bound, not listening: refuses */
	unsigned	 refuse_port;
	struct fz_run	*run;		/* the input being run */
	unsigned long	 messages;	/* queued since the last purge */
	unsigned long	 inputs;
	int		 drained;
	struct fz_pending pending[FZ_PENDING_MAX];
	size_t		 npending;
} fz;

static void	fz_teardown(void);

/* fz_now_ms - the monotonic clock in milliseconds */
static uint64_t
fz_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* fz_busy - a worker job of the daemon is still out */
static int
fz_busy(void)
{
	struct odmrd *d = &fz.d;

	return work_pool_pending(d->commit_pool) > 0 ||
	    work_pool_pending(d->lookup_pool) > 0 ||
	    work_pool_pending(d->auth_pool) > 0 ||
	    work_pool_pending(d->deliver_pool) > 0 ||
	    work_pool_pending(d->dns_pool) > 0 || d->ids_refilling;
}

/* fz_idle - nothing of the daemon runs: the final drain may end */
static int
fz_idle(struct odmrd *d)
{
	return !fz_busy() && fz.npending == 0 &&
	    !smtp_domains_busy(d->domains) &&
	    odmr_flush_count(d->flush) == 0 && !odmr_bounce_busy(d->bounce);
}

/* odmrd_session_id - a new session id: a fixed prefix, then a count */
void
odmrd_session_id(struct odmrd *d, char *out, size_t outsz)
{
	(void)snprintf(out, outsz, "%08x%08x", d->session_prefix,
	    ++d->session_seq);
}

/* fz_ids_run - on the lookup pool: reserve the next batch of ids */
static void
fz_ids_run(void *arg)
{
	struct odmrd *d = arg;
	struct queue_error err;

	d->ids_status = queue_id_reserve(d->queue, ODMRD_IDS_BATCH,
	    &d->ids_first, &err);
}

/* fz_ids_done - on the loop: the new batch replaces what is left */
static void
fz_ids_done(void *arg)
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

/* odmrd_id_take - a reserved queue id, as odmrd.c hands them out */
int
odmrd_id_take(struct odmrd *d, uint64_t *qid)
{
	int ok = 0;

	if (d->ids_next < d->ids_end) {
		*qid = queue_id_make((uint64_t)time(NULL), d->ids_next++);
		ok = 1;
	}
	if (d->ids_end - d->ids_next < ODMRD_IDS_BATCH / 4 &&
	    !d->ids_refilling && !d->draining) {
		d->ids_refilling = 1;
		work_submit(d->lookup_pool, fz_ids_run, fz_ids_done, d);
	}
	return ok;
}

/* odmrd_server_idle - during the final drain: stop once all is idle */
void
odmrd_server_idle(struct odmrd *d)
{
	if (d->draining && fz_idle(d)) {
		fz.drained = 1;
		loop_break();
	}
}

/* odmrd_flush_idle - the last flush ended (no SIGHUP contexts here) */
void
odmrd_flush_idle(struct odmrd *d)
{
	odmrd_server_idle(d);
}

/* smtp_server_name - the listener's name, for the session's logs */
const char *
smtp_server_name(const struct smtp_server *srv)
{
	return srv->name;
}

/* smtp_server_session_gone - the session was freed: the input may end */
void
smtp_server_session_gone(struct smtp_server *srv, struct smtp_session *s)
{
	size_t i;

	(void)srv;
	fz.messages += s->messages;
	for (i = 0; i < fz.npending; i++)
		if (fz.pending[i].s == s) {
			fz.pending[i] = fz.pending[--fz.npending];
			break;
		}
	if (fz.run != NULL && fz.run->s == s) {
		fz.run->s = NULL;
		fz.run->activity = 1;
	}
}

/* fz_fail - a set-up step failed: say which, exit 1 */
static void __attribute__((noreturn, format(printf, 1, 2)))
fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz-smtp-session: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

/* fz_path - dir/name into out; fatal if it does not fit */
static void
fz_path(char *out, size_t outsz, const char *name)
{
	int n = snprintf(out, outsz, "%s/%s", fz.dir, name);

	if (n < 0 || (size_t)n >= outsz)
		fz_fail("path %s/%s too long", fz.dir, name);
}

/* fz_make_cert - a self-signed P-256 certificate with openssl req */
static void
fz_make_cert(const char *cert, const char *key)
{
	char *argv[] = {
		"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
		"-subj", "/CN=fuzz.odmr.test", "-keyout", (char *)key,
		"-out", (char *)cert, NULL,
	};
	posix_spawn_file_actions_t fa;
	extern char **environ;
	pid_t pid;
	int st;

	if (posix_spawn_file_actions_init(&fa) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY,
	    0) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY,
	    0) != 0 ||
	    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY,
	    0) != 0)
		fz_fail("posix_spawn_file_actions: %s", strerror(errno));
	if ((st = posix_spawnp(&pid, "openssl", &fa, NULL, argv, environ)) !=
	    0)
		fz_fail("cannot run openssl req for the test certificate:"
		    " %s (install openssl)", strerror(st));
	posix_spawn_file_actions_destroy(&fa);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR)
			fz_fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fz_fail("openssl req failed to make %s", cert);
}

/* fz_refuser - a bound, never listening TCP port: connects are refused */
static void
fz_refuser(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fz.refuse_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC,
	    0)) == -1 ||
	    bind(fz.refuse_fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fz.refuse_fd, (struct sockaddr *)&sin, &len) == -1)
		fz_fail("cannot bind a local port: %s", strerror(errno));
	fz.refuse_port = ntohs(sin.sin_port);
}

/* fz_conf - one configuration from text, over the common keys */
static struct odmr_conf *
fz_conf(const char *extra)
{
	struct odmr_conf *c;
	char cert[PATH_MAX], key[PATH_MAX], *text, *err = NULL;

	fz_path(cert, sizeof(cert), "cert.pem");
	fz_path(key, sizeof(key), "key.pem");
	text = xasprintf(
	    "hostname = fuzz.odmr.test\n"
	    "state_dir = %s\n"
	    "smtp_listen = 127.0.0.1:25\n"
	    "odmr_listen = 127.0.0.1:366\n"
	    "tls_cert_file = %s\n"
	    "tls_key_file = %s\n"
	    "command_timeout = 1s\n"
	    "data_timeout = 1s\n"
	    "commit_threads = 2\n"
	    "loop_stall_timeout = 0\n"
	    "delay_warning = 0\n"
	    "bounce_relay = 127.0.0.1:%u\n"
	    "dns_servers = 127.0.0.1:%u\n"
	    "connect_timeout = 1s\n"
	    "log_level = err\n"
	    "%s", fz.dir, cert, key, fz.refuse_port, fz.refuse_port, extra);
	if (odmr_conf_parse_text("fuzz-smtp-session.conf", text, strlen(text),
	    &c, &err) == -1)
		fz_fail("configuration: %s", err);
	free(text);
	return c;
}

/* fz_domain - add one customer domain, as odmrctl domain add does */
static void
fz_domain(const char *name, int subdomains, enum queue_etrn etrn)
{
	struct queue_domain dom;
	struct queue_error err;
	char route[64], *owners[] = { (char *)FZ_ACCOUNT };

	(void)snprintf(route, sizeof(route), "127.0.0.1:%u", fz.refuse_port);
	memset(&dom, 0, sizeof(dom));
	(void)strlcpy(dom.name, name, sizeof(dom.name));
	dom.owners = owners;
	dom.nowners = 1;
	dom.subdomains = subdomains;
	dom.etrn = etrn;
	dom.route = route;
	dom.tls = QUEUE_TLS_MAY;
	if (queue_domain_add(fz.d.queue, &dom, &err) != QUEUE_OK)
		fz_fail("domain %s: %s", name, err.text);
}

/* fz_sasl_log - libsasl2's lines into the log, like odmrd's */
static void
fz_sasl_log(enum log_level level, const char *msg, void *arg)
{
	(void)arg;
	if (level <= LOG_LEVEL_WARN)
		log_warnx("event=sasl reason=\"%s\"", msg);
	else
		log_debug("event=sasl reason=\"%s\"", msg);
}

/* fz_break - a timer's callback: leave loop_run() */
static void
fz_break(void *arg)
{
	(void)arg;
	loop_break();
}

/* fz_run_loop - turn the loop until cond() holds or ms pass */
static void
fz_run_loop(int (*cond)(void), unsigned ms)
{
	uint64_t until = fz_now_ms() + ms;

	while (!cond() && fz_now_ms() < until) {
		struct loop_timer *t = loop_timer_new(fz_break, NULL);

		loop_timer_add(t, 1);
		fz.in_loop = 1;
		(void)loop_run();
		fz.in_loop = 0;
		loop_timer_free(&t);
	}
}

/* fz_first_snapshot - the domain snapshot is loaded */
static int
fz_first_snapshot(void)
{
	return !smtp_domains_busy(fz.d.domains) && !fz_busy();
}

/* fz_setup - everything odmrd's main() sets up, once */
static void
fz_setup(void)
{
	struct odmrd *d = &fz.d;
	struct queue_opts o;
	struct queue_error qe;
	char cert[PATH_MAX], key[PATH_MAX], *err = NULL;
	const char *lvl = getenv("FZ_SESSION_LOG");
	enum log_level level = LOG_LEVEL_ERR;
	const char *tmp = getenv("TMPDIR");
	int n;

	if (lvl != NULL && log_level_parse(lvl, &level) == -1)
		fz_fail("FZ_SESSION_LOG=%s: use err, warning, info or debug",
		    lvl);
	log_init("fuzz-smtp-session", 1, level);
	fz.main_thread = pthread_self();
	n = snprintf(fz.dir, sizeof(fz.dir), "%s/fuzz-session.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(fz.dir) || mkdtemp(fz.dir) == NULL)
		fz_fail("cannot make a temporary directory: %s",
		    strerror(errno));
	fz_path(cert, sizeof(cert), "cert.pem");
	fz_path(key, sizeof(key), "key.pem");
	fz_make_cert(cert, key);
	fz_refuser();
	fz.conf_a = fz_conf("");
	fz.conf_b = fz_conf("max_message_size = 10k\nmax_recipients = 3\n"
	    "auth_require_tls = no\nmax_reply_backlog = 4k\n");
	d->conf = fz.conf_a;
	d->session_prefix = 0xf0220000u;

	if (loop_init(&err) == -1)
		fz_fail("%s", err);
	fz_path(d->spool_dir, sizeof(d->spool_dir), ODMRD_SPOOL_SUBDIR);
	if (mkdir(d->spool_dir, 0700) == -1)
		fz_fail("mkdir %s: %s", d->spool_dir, strerror(errno));
	memset(&o, 0, sizeof(o));
	o.state_dir = fz.dir;
	o.flags = QUEUE_OPEN_CREATE | QUEUE_OPEN_NOSYNC;
	o.cache_bytes = FZ_CACHE_BYTES;
	o.default_lifetime = d->conf->queue_lifetime;
	if (queue_open(&o, &d->queue, &qe) != QUEUE_OK)
		fz_fail("cannot open the store in %s: %s", fz.dir, qe.text);
	fz_domain("example.org", 0, QUEUE_ETRN_ANY);
	fz_domain("sub.example.net", 1, QUEUE_ETRN_OWNER);
	fz_domain("plain.example.com", 0, QUEUE_ETRN_OFF);
	if (turn_bounce_domain(d->queue, d->conf->bounce_relay, &qe) !=
	    QUEUE_OK)
		fz_fail("DSN domain: %s", qe.text);

	odmr_sasl_set_log(fz_sasl_log, NULL, LOG_LEVEL_INFO);
	if (odmr_sasl_init(fz.dir, "odmrd", &err) == -1 ||
	    odmr_sasl_check_mechs(&err) == -1)
		fz_fail("SASL: %s", err);
	if (odmr_sasl_setpass(FZ_ACCOUNT, FZ_PASSWORD, strlen(FZ_PASSWORD),
	    ODMR_SASL_CREATE, &err) != ODMR_SASL_OK)
		fz_fail("SASL account %s: %s", FZ_ACCOUNT, err);

	/* the certificate is its own CA: no walk of the system store */
	if ((d->tls = tls_server_new(cert, key, &err)) == NULL ||
	    (d->tls_client = tls_client_new(TLS_MODE_MAY, cert, &err)) ==
	    NULL ||
	    (d->tls_verify = tls_client_new(TLS_MODE_VERIFY, cert, &err)) ==
	    NULL ||
	    (fz.client_tls = tls_client_new(TLS_MODE_MAY, cert, &err)) ==
	    NULL)
		fz_fail("TLS: %s", err);

	d->commit_pool = work_pool_new("commit",
	    (unsigned)d->conf->commit_threads);
	d->lookup_pool = work_pool_new("lookup", ODMRD_LOOKUP_THREADS);
	d->auth_pool = work_pool_new("auth", ODMRD_AUTH_THREADS);
	d->deliver_pool = work_pool_new("deliver", ODMRD_DELIVER_THREADS);
	d->dns_pool = work_pool_new("dns", ODMRD_DNS_THREADS);
	d->flush = odmr_flush_new(d);
	d->bounce = odmr_bounce_new(d);
	d->domains = smtp_domains_new(d);
	fz.servers[FZ_SMTP].name = "smtp";
	fz.servers[FZ_ODMR].name = "odmr";
	fz.servers[FZ_ODMRS].name = "odmrs";
	fz.ready = 1;
	if (atexit(fz_teardown) != 0)
		fz_fail("atexit");
	/* the first id batch and the first domain snapshot */
	{
		uint64_t qid;

		(void)odmrd_id_take(d, &qid);
	}
	fz_run_loop(fz_first_snapshot, 10000);
}

/* fz_rm - nftw: remove one entry of the state directory */
static int
fz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == -1 ? -1 : 0;
}

/* fz_drained - the final drain is over */
static int
fz_drained(void)
{
	return fz.drained || fz_idle(&fz.d);
}

/*
 * fz_teardown - at exit: drain and free everything as odmrd's main()
 * does, so that the leak check sees only real leaks; remove the state
 * directory. Not from inside the loop or another thread (a fatal()).
 */
static void
fz_teardown(void)
{
	struct odmrd *d = &fz.d;

	if (!fz.ready || fz.in_loop ||
	    !pthread_equal(pthread_self(), fz.main_thread))
		return;
	fz.ready = 0;
	d->draining = 1;
	smtp_domains_stop(d->domains);
	odmr_flush_shutdown(d->flush);
	odmr_bounce_shutdown(d->bounce);
	fz_run_loop(fz_drained, FZ_DRAIN_MS / 4);
	if (!fz_drained()) {
		odmr_flush_abort(d->flush);
		odmr_bounce_abort(d->bounce);
		fz_run_loop(fz_drained, FZ_DRAIN_MS);
	}
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
	tls_ctx_free(&fz.client_tls);
	loop_free();
	odmr_conf_free(&fz.conf_a);
	odmr_conf_free(&fz.conf_b);
	d->conf = NULL;
	close(fz.refuse_fd);
	(void)nftw(fz.dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* fz_stock - example.org has a message, so that ATRN reverses */
static void
fz_stock(void)
{
	static const char body[] = "From: s@sender.test\r\n"
	    "To: u@example.org\r\nSubject: waiting\r\n\r\nfor ATRN\r\n";
	struct queue_domain dom;
	struct queue_rcpt rcpt;
	struct queue_msg m;
	struct queue_error err;
	enum queue_status st;

	memset(&dom, 0, sizeof(dom));
	st = queue_domain_get(fz.d.queue, "example.org", &dom, &err);
	if (st == QUEUE_OK && dom.messages == 0) {
		memset(&rcpt, 0, sizeof(rcpt));
		memset(&m, 0, sizeof(m));
		rcpt.addr = (char *)"u@example.org";
		rcpt.notify = QUEUE_NOTIFY_FAILURE;
		(void)strlcpy(rcpt.domain, "example.org", sizeof(rcpt.domain));
		m.sender = (char *)"s@sender.test";
		m.client_addr = (char *)"192.0.2.1";
		m.helo = (char *)"stock.test";
		m.nrcpt = 1;
		m.rcpt = &rcpt;
		(void)queue_enqueue_mem(fz.d.queue, &m, body, sizeof(body) - 1,
		    &err);
	}
	queue_domain_clear(&dom);
}

/*
 * fz_purge - empty the queues now and then, and checkpoint, so that the
 * store and its log files stay small however long the fuzzing runs
 */
static void
fz_purge(void)
{
	static const char *const doms[] = {
		"example.org", "sub.example.net", "plain.example.com",
		TURN_BOUNCE_DOMAIN,
	};
	struct queue_error err;
	uint64_t count;
	size_t i;

	if (fz.messages < FZ_PURGE_MESSAGES &&
	    fz.inputs % FZ_PURGE_INPUTS != 0)
		return;
	for (i = 0; i < sizeof(doms) / sizeof(doms[0]); i++)
		(void)queue_domain_op(fz.d.queue, QUEUE_OP_DELETE, doms[i],
		    &count, &err);
	(void)queue_maintain(fz.d.queue, &err);
	fz.messages = 0;
}

/* fz_starttls_line - data[p..] is a line "STARTTLS"; its end, or 0 */
static size_t
fz_starttls_line(const uint8_t *data, size_t len, size_t p)
{
	static const char verb[] = "starttls";
	size_t i = 0;

	while (p < len && i < sizeof(verb) - 1 &&
	    (data[p] | 0x20) == verb[i]) {
		p++;
		i++;
	}
	if (i < sizeof(verb) - 1)
		return 0;
	while (p < len && (data[p] == ' ' || data[p] == '\t'))
		p++;
	if (p < len && data[p] == '\r')
		p++;
	return p < len && data[p] == '\n' ? p + 1 : 0;
}

/* fz_decode - the control octets and the STARTTLS lines of the stream */
static void
fz_decode(struct fz_run *r, const uint8_t *data, size_t size)
{
	size_t p, e;

	r->listener = (enum fz_listener)(data[0] & 3);
	if (r->listener > FZ_ODMRS)
		r->listener = FZ_SMTP;
	r->starttls = (data[0] >> 2) & 1;
	if (r->listener == FZ_ODMRS) {
		r->plain = r->starttls;		/* no TLS on the TLS port */
		r->starttls = 0;
	}
	r->end = (enum fz_end)((data[0] >> 3) & 7);
	r->lax = (data[0] >> 6) & 1;
	r->noread = (data[0] >> 7) & 1;
	r->chunk = fz_chunks[data[1] & 15];
	r->lockstep = (data[1] >> 4) & 1;
	r->rnd = 0x9e3779b9u ^ ((uint32_t)(data[1] >> 5) * 0x85ebca6bu);
	r->data = data + FZ_CTRL_LEN;
	r->len = size - FZ_CTRL_LEN;
	r->bol = 1;
	for (p = 0; r->starttls && p < r->len && r->ncuts < FZ_CUTS_MAX;
	    p++) {
		if ((p == 0 || r->data[p - 1] == '\n') &&
		    (e = fz_starttls_line(r->data, r->len, p)) != 0)
			r->cuts[r->ncuts++] = e;
	}
}

/* fz_client_close - the client's socket goes (it may be gone already) */
static void
fz_client_close(struct fz_run *r, int rst)
{
	struct linger lg;

	if (r->cio == NULL)
		return;
	if (rst) {
		/* with unread input the peer gets ECONNRESET (a RST on TCP) */
		lg.l_onoff = 1;
		lg.l_linger = 0;
		(void)setsockopt(r->cfd, SOL_SOCKET, SO_LINGER, &lg,
		    sizeof(lg));
	}
	io_free(&r->cio);
	r->activity = 1;
}

/* fz_client_scan - watch what the server sent for "220 2.0.0" lines */
static void
fz_client_scan(struct fz_run *r, const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (r->bol) {
			r->npfx = 0;
			r->bol = 0;
		}
		if (r->npfx < FZ_GO_LEN) {
			r->pfx[r->npfx++] = (char)p[i];
			if (r->npfx == FZ_GO_LEN &&
			    memcmp(r->pfx, FZ_GO, FZ_GO_LEN) == 0 &&
			    r->tls_wait)
				r->saw_go = 1;
		}
		if (p[i] == '\n')
			r->bol = 1;
	}
}

/* fz_client_read - discard the server's output; STARTTLS's go-ahead */
static void
fz_client_read(struct fz_run *r)
{
	size_t n = io_datalen(r->cio);

	if (n > 0) {
		fz_client_scan(r, io_data(r->cio), n);
		io_drop(r->cio, n);
		r->activity = 1;
	}
	if (r->tls_wait && r->saw_go) {
		/* RFC 3207: the handshake starts right after the 220 */
		r->tls_wait = 0;
		(void)io_discard_input(r->cio);
		if (io_starttls_client(r->cio, fz.client_tls, NULL) == -1) {
			fz_client_close(r, 0);
			return;
		}
		r->handshaking = 1;
		return;
	}
	if (r->noread && !r->tls_wait && !r->handshaking)
		io_pause_read(r->cio);
}

/* fz_client_io - the client connection's one callback */
static void
fz_client_io(struct io *io, enum io_event ev, void *arg)
{
	struct fz_run *r = arg;

	(void)io;
	switch (ev) {
	case IO_DATAIN:
		fz_client_read(r);
		break;
	case IO_TLSREADY:
		r->handshaking = 0;
		r->in_tls = 1;
		r->activity = 1;
		if (r->noread)
			io_pause_read(r->cio);
		break;
	case IO_LOWAT:
		if (r->notify_sent)
			r->notify_out = 1;
		r->activity = 1;
		break;
	case IO_DISCONNECTED:
	case IO_ERROR:
		/* the server hung up, or the handshake failed */
		fz_client_close(r, 0);
		break;
	case IO_TIMEOUT:
	case IO_CONNECTED:
		break;
	}
}

/* fz_chunk_len - how much of the stream to write next */
static size_t
fz_chunk_len(struct fz_run *r)
{
	size_t left = r->len - r->off, n;
	const uint8_t *nl;

	if (r->chunk == FZ_CHUNK_LINE) {
		nl = memchr(r->data + r->off, '\n', left);
		n = nl != NULL ? (size_t)(nl - (r->data + r->off)) + 1 : left;
	} else if (r->chunk == FZ_CHUNK_RANDOM) {
		r->rnd ^= r->rnd << 13;
		r->rnd ^= r->rnd >> 17;
		r->rnd ^= r->rnd << 5;
		n = 1 + r->rnd % FZ_RANDOM_CHUNK_MAX;
	} else if (r->chunk == FZ_CHUNK_ALL)
		n = left;
	else
		n = r->chunk;
	if (n > left)
		n = left;
	/* stop right after a STARTTLS line, to wait for the 220 */
	while (r->nextcut < r->ncuts && r->cuts[r->nextcut] <= r->off)
		r->nextcut++;
	if (!r->in_tls && r->nextcut < r->ncuts &&
	    r->cuts[r->nextcut] <= r->off + n)
		n = r->cuts[r->nextcut] - r->off;
	return n;
}

/* fz_send - write the next chunk of the stream, when the client may */
static void
fz_send(struct fz_run *r)
{
	size_t n;

	if (r->cio == NULL) {
		r->phase = FZ_PHASE_WAIT;	/* the server hung up */
		return;
	}
	if (r->handshaking)
		return;
	if (r->tls_wait) {
		if (r->quiet < FZ_QUIET_TURNS)
			return;
		/* no 220: STARTTLS was refused, or was message text */
		r->tls_wait = 0;
		if (r->noread)
			io_pause_read(r->cio);
	}
	if (r->lockstep && r->quiet < FZ_QUIET_TURNS)
		return;
	if (io_queued(r->cio) > FZ_CLIENT_QUEUE_MAX) {
		if (r->quiet >= FZ_STUCK_TURNS)
			r->phase = FZ_PHASE_END;	/* nobody reads */
		return;
	}
	if (r->off < r->len) {
		n = fz_chunk_len(r);
		(void)io_write(r->cio, r->data + r->off, n);
		r->off += n;
		r->activity = 1;
		if (!r->in_tls && r->nextcut < r->ncuts &&
		    r->cuts[r->nextcut] == r->off) {
			r->tls_wait = 1;
			r->saw_go = 0;
			io_resume_read(r->cio);
		}
	}
	if (r->off == r->len && !r->tls_wait)
		r->phase = FZ_PHASE_END;
}

/* fz_drained_out - the client's output is with the kernel, or stuck */
static int
fz_drained_out(struct fz_run *r)
{
	return io_queued(r->cio) == 0 || r->quiet >= FZ_STUCK_TURNS;
}

/* fz_end - the stream is out: end the client's part as octet 0 says */
static void
fz_end(struct fz_run *r)
{
	int done = 0;

	if (r->cio == NULL) {
		r->phase = FZ_PHASE_WAIT;
		return;
	}
	if (r->handshaking && r->quiet < FZ_STUCK_TURNS)
		return;
	switch (r->end) {
	case FZ_END_NOTIFY_READ:
	case FZ_END_NOTIFY_CLOSE:
		if (r->in_tls) {
			if (!r->notify_sent) {
				r->notify_sent = 1;
				if (io_tls_shutdown(r->cio) == -1)
					r->notify_out = 1;
			}
			if (!r->notify_out && r->quiet < FZ_STUCK_TURNS)
				break;
			if (r->end == FZ_END_NOTIFY_CLOSE)
				fz_client_close(r, 0);
			done = 1;
			break;
		}
		/* plaintext: the same as without TLS */
		if (r->end == FZ_END_NOTIFY_CLOSE) {
			if (fz_drained_out(r)) {
				fz_client_close(r, 0);
				done = 1;
			}
			break;
		}
		/* FALLTHROUGH */
	case FZ_END_HALFCLOSE:
		if (fz_drained_out(r)) {
			(void)shutdown(r->cfd, SHUT_WR);
			done = 1;
		}
		break;
	case FZ_END_CLOSE:
		if (fz_drained_out(r)) {
			fz_client_close(r, 0);
			done = 1;
		}
		break;
	case FZ_END_RST:
		io_pause_read(r->cio);
		if (r->quiet >= FZ_QUIET_TURNS) {
			fz_client_close(r, 1);
			done = 1;
		}
		break;
	case FZ_END_ABORT:
		if (r->quiet >= FZ_QUIET_TURNS) {
			if (r->s != NULL) {
				r->aborted = 1;
				r->abort_ms = fz_now_ms();
				smtp_session_abort(r->s);	/* may free it */
			}
			done = 1;
		}
		break;
	case FZ_END_SHUTDOWN:
		if (r->quiet >= FZ_QUIET_TURNS) {
			if (r->s != NULL) {
				r->shut = 1;
				smtp_session_shutdown(r->s);
			}
			done = 1;
		}
		break;
	case FZ_END_CUT:
		fz_client_close(r, 0);
		done = 1;
		break;
	}
	if (done) {
		r->activity = 1;
		r->phase = FZ_PHASE_WAIT;
	}
}

/* fz_abort - end the session from the server side, once */
static void
fz_abort(struct fz_run *r)
{
	if (r->aborted || r->s == NULL)
		return;
	r->aborted = 1;
	r->abort_ms = fz_now_ms();
	smtp_session_abort(r->s);	/* may free it at once */
}

/* fz_wait - the client is done: wait for the session to go */
static void
fz_wait(struct fz_run *r, uint64_t now)
{
	if (r->s != NULL && r->s->dead && !fz_busy() &&
	    fz.npending < FZ_PENDING_MAX) {
		/* torn down, its connection closed, and no worker thread
		 * runs for it: only a timer (AUTH's delay) keeps it */
		fz.pending[fz.npending].s = r->s;
		fz.pending[fz.npending++].since = now;
		r->s = NULL;
	}
	if (r->s == NULL) {
		/* nothing more will come: the client closes too */
		fz_client_close(r, 0);
		r->phase = FZ_PHASE_SETTLE;
		r->settle_ms = now;
		r->turns = 0;
		return;
	}
	/* as shutdown_timeout would, sooner */
	if (r->quiet >= FZ_LINGER_TURNS || now - r->start_ms > FZ_BOUND_MS)
		fz_abort(r);
	/* fz_abort() may have freed it; abort_ms may be after now */
	if (r->s != NULL && r->aborted && now > r->abort_ms + FZ_GONE_MS) {
		fprintf(stderr, "fuzz-smtp-session: session %s (state %s)"
		    " still there %u ms after smtp_session_abort()\n",
		    r->s->id, smtp_state_names[r->s->state], FZ_GONE_MS);
		abort();
	}
}

/*
 * fz_settle - the session is gone: let ETRN's flushes and every worker
 * job end, then stop. libFuzzer's leak check runs between inputs while
 * other threads keep running; a Berkeley DB call in flight on one of
 * them holds heap blocks it reaches through offsets, which LeakSanitizer
 * cannot follow, so no input ends with a job out.
 */
static void
fz_settle(struct fz_run *r, uint64_t now)
{
	if (odmr_flush_count(fz.d.flush) > 0) {
		if (now - r->settle_ms > FZ_SETTLE_MS + FZ_GONE_MS) {
			fprintf(stderr, "fuzz-smtp-session: %zu ETRN flushes"
			    " still running %u ms after odmr_flush_abort()\n",
			    odmr_flush_count(fz.d.flush), FZ_GONE_MS);
			abort();
		}
		if (now - r->settle_ms > FZ_SETTLE_MS)
			odmr_flush_abort(fz.d.flush);
		r->turns = 0;
		return;
	}
	if (fz_busy() && now - r->settle_ms < FZ_SETTLE_MS) {
		r->turns = 0;
		return;
	}
	/* io_free()'s bufferevents are finalized a turn or two later */
	if (++r->turns >= FZ_AFTER_TURNS) {
		r->phase = FZ_PHASE_DONE;
		loop_break();
	}
}

/* fz_tick - every loop turn: the client's next step */
static void
fz_tick(void *arg)
{
	struct fz_run *r = arg;
	uint64_t now = fz_now_ms();

	if (fz_busy())
		r->activity = 1;
	r->quiet = r->activity ? 0 : r->quiet + 1;
	r->activity = 0;
	if (r->phase < FZ_PHASE_WAIT && now - r->start_ms > FZ_BOUND_MS) {
		/* too slow: cut the client off and end the session */
		fz_client_close(r, 0);
		fz_abort(r);
		r->phase = FZ_PHASE_WAIT;
	}
	switch (r->phase) {
	case FZ_PHASE_SEND:
		fz_send(r);
		break;
	case FZ_PHASE_END:
		fz_end(r);
		break;
	case FZ_PHASE_WAIT:
		fz_wait(r, now);
		break;
	case FZ_PHASE_SETTLE:
		fz_settle(r, now);
		break;
	case FZ_PHASE_DONE:
		break;
	}
	if (r->phase != FZ_PHASE_DONE)
		loop_timer_add(r->tick, 0);
}

/* fz_pending_room - a torn-down session may be kept once more */
static int
fz_pending_room(void)
{
	return fz.npending < FZ_PENDING_MAX;
}

/* fz_pending_check - every torn-down session went in time */
static void
fz_pending_check(void)
{
	uint64_t now = fz_now_ms();
	size_t i;

	if (fz.npending == FZ_PENDING_MAX)
		fz_run_loop(fz_pending_room, FZ_GONE_MS);
	for (i = 0; i < fz.npending; i++)
		if (now > fz.pending[i].since + FZ_GONE_MS) {
			fprintf(stderr, "fuzz-smtp-session: session %s (state"
			    " %s) torn down but not freed after %u ms\n",
			    fz.pending[i].s->id,
			    smtp_state_names[fz.pending[i].s->state],
			    FZ_GONE_MS);
			abort();
		}
}

/* LLVMFuzzerTestOneInput - one session, from the first octet to the end */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_run r;
	int sv[2], sndbuf = FZ_SNDBUF_SMALL;

	if (size < FZ_CTRL_LEN)
		return 0;
	if (!fz.ready)
		fz_setup();
	fz.inputs++;
	fz_pending_check();
	memset(&r, 0, sizeof(r));
	fz_decode(&r, data, size);
	fz.d.conf = r.lax ? fz.conf_b : fz.conf_a;
	if (r.listener != FZ_SMTP)
		fz_stock();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fz_fail("socketpair: %s", strerror(errno));
	if (r.noread)
		(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf,
		    sizeof(sndbuf));
	r.cfd = sv[0];
	r.cio = io_new(sv[0], fz_client_io, &r);
	fz.run = &r;
	r.start_ms = fz_now_ms();
	r.s = smtp_session_new(&fz.d, &fz.servers[r.listener], sv[1],
	    "192.0.2.1", r.listener == FZ_SMTP ? SMTP_MODE_MX :
	    SMTP_MODE_ODMR, r.listener == FZ_ODMRS);
	if (r.s == NULL)
		fz_client_close(&r, 0);	/* the session closed its end */
	else if (r.listener == FZ_ODMRS && !r.plain) {
		if (io_starttls_client(r.cio, fz.client_tls, NULL) == -1)
			fz_client_close(&r, 0);
		else
			r.handshaking = 1;
	} else if (r.noread)
		io_pause_read(r.cio);
	if (r.s == NULL) {
		r.phase = FZ_PHASE_SETTLE;
		r.settle_ms = r.start_ms;
	}
	r.tick = loop_timer_new(fz_tick, &r);
	loop_timer_add(r.tick, 0);
	while (r.phase != FZ_PHASE_DONE) {
		fz.in_loop = 1;
		(void)loop_run();
		fz.in_loop = 0;
	}
	loop_timer_free(&r.tick);
	fz.run = NULL;
	fz_purge();
	return 0;
}
