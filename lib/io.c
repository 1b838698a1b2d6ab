/*
 * NAME
 *	io 3 - buffered, optionally TLS, connection with one event callback
 * SYNOPSIS
 *	#include "io.h"
 * DESCRIPTION
 *	See io.h. Built on libevent bufferevents: a socket bufferevent for
 *	plaintext and, after STARTTLS, an OpenSSL filter bufferevent on top
 *	of it, so that the plaintext reply already queued on the socket is
 *	sent before the first TLS record. All bufferevent callbacks are
 *	deferred to the loop, so io_write() and friends never call the
 *	user's callback from inside themselves. Events the io raises on its
 *	own (a connect failure found inside io_connect(), input left over
 *	at io_resume_read(), a TLS flush) go through one internal event,
 *	one user event per loop turn, so the callback may always free the
 *	io.
 *
 *	Output on a plaintext socket is written by the io itself: io_write()
 *	queues it and activates the io's flush event, which runs once the
 *	current callback has returned, so a command group queued in pieces
 *	still leaves in one write(2), and writes it at once. Only what the
 *	socket does not take turns the bufferevent's EV_WRITE on, until it
 *	has drained. libevent would instead arm EPOLLOUT for every burst,
 *	wait for the next loop turn and disarm it: two epoll_ctl(2) and an
 *	epoll_wait(2) per reply or message, and a turn of latency. Under
 *	TLS the OpenSSL filter writes, as before.
 *
 *	Input is bounded by the bufferevent read high-water mark: libevent
 *	reads no more once io_input_max octets are buffered, and
 *	io_getline() clamps its line limit below that so that a line can
 *	always be either completed or declared too long. libevent 2.1
 *	reads at most 4096 octets per read event; when such a read comes
 *	back full, a plaintext io reads up to 64 KiB more itself before
 *	the callback (io_read_more()), so a pipelined stream of messages
 *	is not taken 4 KiB per loop turn.
 *
 *	Host names are resolved with getaddrinfo() in a detached thread,
 *	which reports back through loop_post(); io_free() during the lookup
 *	only detaches the request, and the posted function frees it.
 OWNERSHIP
 *	The rules for a connection's lifetime, whatever order close_notify,
 *	an end of file, a reset, a write error, a timeout or a worker's
 *	answer arrive in:
 *
 *	1. An io, its bufferevents, its SSL and its events belong to the
 *	   loop thread. No other thread touches them: a worker thread
 *	   (work 3h) gets copies of what it needs and posts its answer with
 *	   loop_post(); the owner of the io (the session) outlives the job
 *	   and decides there whether the io is still there. A session torn
 *	   down while its job runs frees the io at once and itself when the
 *	   job reports back (smtp_session.c, turn_session.c).
 *	2. io_free() is the only way an io ends, and it may be called from
 *	   inside any callback of the io. It frees the io's own events
 *	   (deferred, flush, connect), which cancels them, and calls
 *	   bufferevent_free() once on the top bufferevent. libevent then
 *	   finalizes it after the callback running now, and the filter
 *	   drops the socket bufferevent under it (BEV_OPT_CLOSE_ON_FREE):
 *	   nothing of ours is called again, since io_free() leaves no
 *	   callback of ours behind: the evbuffer callbacks on the socket
 *	   bufferevent's input and output are removed first, because
 *	   under TLS that bufferevent lives on until the filter's
 *	   finalizer lets go of it.
 *	3. A bufferevent's own evbuffers never get deferred callbacks
 *	   (evbuffer_defer_callbacks()). libevent 2.1 attaches the
 *	   bufferevent's finalizer to whichever of its callbacks is
 *	   running when the last reference goes, and that of a deferred
 *	   evbuffer callback has the evbuffer, not the bufferevent, as its
 *	   argument: freeing the filter while such a callback was queued
 *	   made libevent "finalize" the evbuffer as a bufferevent, a crash
 *	   (SIGSEGV in bufferevent_get_underlying) or a lock taken on
 *	   garbage (a loop hung for ever). That was the TLS teardown crash:
 *	   output under TLS now waits in io->stage, a plain evbuffer of
 *	   ours, and io_flush_fire() hands it to the filter.
 *	4. The SSL belongs to the filter bufferevent, which frees it; io.c
 *	   only calls SSL_shutdown() and reads from it.
 *	5. Every event the io raises on its own goes through io->deferred,
 *	   one user event per loop turn, so the callback may always free
 *	   the io; events libevent raises are deferred to the loop too
 *	   (BEV_OPT_DEFER_CALLBACKS), so no callback of ours ever runs from
 *	   inside io_write(), io_free() or another libevent call of ours.
 * SEE ALSO
 *	loop(3), tls(3), OpenSMTPD io.c, RFC 3207, RFC 5321 section 2.3.8
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "loop_private.h"
#include "tls_private.h"
#include "xmalloc.h"

#define IO_CONNECT_ADDRS	16	/* addresses tried per io_connect() */
#define IO_LINE_MIN		2	/* smallest input bound: CR LF */
#define IO_LIBEVENT_READ	4096	/* libevent 2.1 reads no more at once */
#define IO_READ_MORE		(64 * 1024)	/* io_read_more() at once */

const char *const io_event_names[] = {
	[IO_CONNECTED] = "connected",
	[IO_TLSREADY] = "tls-ready",
	[IO_DATAIN] = "data-in",
	[IO_LOWAT] = "low-water",
	[IO_DISCONNECTED] = "disconnected",
	[IO_TIMEOUT] = "timeout",
	[IO_ERROR] = "error",
	NULL,
};

enum io_tls_state {
	IO_TLS_OFF = 0,
	IO_TLS_HANDSHAKE,
	IO_TLS_ON,
};

struct io_resolve {
	struct io		*io;	/* NULL once the io is gone */
	char			*host;
	char			 port[8];
	int			 gai_error;
	size_t			 naddrs;
	struct sockaddr_storage	 addrs[IO_CONNECT_ADDRS];
	socklen_t		 lens[IO_CONNECT_ADDRS];
};

struct io {
	struct bufferevent	*bev;		/* NULL while connecting */
	struct bufferevent	*under;		/* socket bev under TLS */
	struct evbuffer_cb_entry *under_cb;
	struct evbuffer_cb_entry *input_cb;	/* io_input_added(), on the
						   socket bufferevent */
	int			 fd;
	io_cb			 cb;
	void			*arg;
	char			*error;

	struct buf		 line;
	size_t			 input_max;
	size_t			 output_max;	/* 0: no bound */
	int			 throttled;	/* reading off: output_max */
	size_t			 lowat;
	unsigned		 timeout_ms;
	int			 paused;
	int			 skipping;	/* in an over-long line */
	int			 bare_lf;
	int			 lowat_wait;	/* LOWAT once TLS output is out */
	int			 wrote;		/* output queued since LOWAT */
	int			 line_records;	/* TLS: one record per line */

	enum io_tls_state	 tls;
	SSL			*ssl;		/* owned by bev */

	struct event		*deferred;
	unsigned		 pending;	/* 1 << enum io_event */
	struct event		*flush;		/* io_flush_fire() */
	struct evbuffer		*stage;		/* TLS: output until io_flush_fire() */
	int			 direct;	/* plaintext: we write, not libevent */
	int			 more;		/* libevent's last read was full */
	int			 quickack;	/* TCP_QUICKACK after each read */

	char			 peer[IO_ADDR_MAX];
	unsigned		 peer_port;

	/* outbound connection */
	struct io_resolve	*resolve;
	struct event		*cev;
	int			 cfd;
	char			*host;
	unsigned		 connect_ms;
	size_t			 naddrs, nexta;
	struct sockaddr_storage	 addrs[IO_CONNECT_ADDRS];
	socklen_t		 lens[IO_CONNECT_ADDRS];
};

static void	io_deferred_fire(evutil_socket_t, short, void *);
static void	io_flush_fire(evutil_socket_t, short, void *);
static void	io_stage_flush(struct io *);
static void	io_throttle(struct io *);
static void	io_connect_next(struct io *);
static void	io_read_more(struct io *);
static void	io_quickack(struct io *);

/* io_set_error - replace the error text */
static void __attribute__((format(printf, 2, 3)))
io_set_error(struct io *io, const char *fmt, ...)
{
	va_list ap, ap2;
	int n;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	free(io->error);
	if (n < 0)
		io->error = xstrdup("unformattable error");
	else {
		io->error = xmalloc((size_t)n + 1);
		vsnprintf(io->error, (size_t)n + 1, fmt, ap2);
	}
	va_end(ap2);
}

/* io_addr_text - a socket address as text and port, IPv4-mapped unmapped */
int
io_addr_text(const struct sockaddr *sa, char *buf, size_t size,
    unsigned *port)
{
	const void *a;
	int af = sa->sa_family;
	struct in_addr v4;

	*port = 0;
	if (af == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		a = &sin->sin_addr;
		*port = ntohs(sin->sin_port);
	} else if (af == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(&v4, sin6->sin6_addr.s6_addr + 12, 4);
			a = &v4;
			af = AF_INET;
		} else
			a = &sin6->sin6_addr;
	} else if (af == AF_UNIX) {
		if (size < sizeof("unix"))
			return -1;
		memcpy(buf, "unix", sizeof("unix"));
		return 0;
	} else
		return -1;
	return inet_ntop(af, a, buf, (socklen_t)size) == NULL ? -1 : 0;
}

/* io_alloc - an io without a connection yet */
static struct io *
io_alloc(io_cb cb, void *arg)
{
	struct event_base *base = loop_event_base();
	struct io *io;

	if (base == NULL)
		fatalx("io: used before loop_init()");
	io = xcalloc(1, sizeof(*io));
	io->fd = -1;
	io->cfd = -1;
	io->cb = cb;
	io->arg = arg;
	io->input_max = IO_INPUT_MAX;
	buf_init(&io->line);
	io->deferred = event_new(base, -1, 0, io_deferred_fire, io);
	io->flush = event_new(base, -1, 0, io_flush_fire, io);
	if (io->deferred == NULL || io->flush == NULL)
		fatalx("io: out of memory for an event");
	return io;
}

/* io_defer - raise an event from the loop rather than from here */
static void
io_defer(struct io *io, enum io_event ev)
{
	io->pending |= 1U << ev;
	event_active(io->deferred, EV_TIMEOUT, 1);
}

/* io_deferred_fire - deliver one deferred event; rearm for the others */
static void
io_deferred_fire(evutil_socket_t fd, short what, void *arg)
{
	static const enum io_event order[] = {
		IO_CONNECTED, IO_ERROR, IO_LOWAT, IO_DATAIN,
	};
	struct io *io = arg;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		enum io_event ev = order[i];

		if ((io->pending & (1U << ev)) == 0)
			continue;
		io->pending &= ~(1U << ev);
		if (io->pending != 0)
			event_active(io->deferred, EV_TIMEOUT, 1);
		if (ev == IO_DATAIN && (io->bev == NULL || io->paused ||
		    io->throttled ||
		    io_datalen(io) == 0))
			return;
		if (ev == IO_DATAIN)
			io_read_more(io);
		if (ev == IO_LOWAT) {
			if (!io->wrote || io_queued(io) > io->lowat)
				return;
			io->wrote = 0;
		}
		io->cb(io, ev, io->arg);
		return;	/* io may be gone */
	}
}

/* io_quickack - TCP_QUICKACK again, if asked: the kernel drops it */
static void
io_quickack(struct io *io)
{
#ifdef TCP_QUICKACK
	int on = 1;

	if (io->quickack && io->fd != -1)
		(void)setsockopt(io->fd, IPPROTO_TCP, TCP_QUICKACK, &on,
		    sizeof(on));
#else
	(void)io;
#endif
}

/* io_input_added - libevent read a full IO_LIBEVENT_READ: maybe more */
static void
io_input_added(struct evbuffer *b, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct io *io = arg;

	(void)b;
	if (info->n_added >= IO_LIBEVENT_READ)
		io->more = 1;
}

/*
 * io_read_more - plaintext: read what libevent left on the socket. It
 * reads at most IO_LIBEVENT_READ octets per loop turn (2.1's
 * EVBUFFER_MAX_READ), so a stream of 4 KiB messages took a turn each.
 * Tried only after libevent's read came back full (io_input_added()):
 * a command's worth costs no extra read(2). An end of file or an error
 * is left for libevent to find on its next read.
 */
static void
io_read_more(struct io *io)
{
	struct evbuffer *in;
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	size_t len, want, left;
	ssize_t got;
	int i, n;

	if (!io->more || !io->direct || io->under != NULL)
		return;
	in = bufferevent_get_input(io->bev);
	len = evbuffer_get_length(in);
	if (len >= io->input_max)
		return;		/* io->more stays: read once it drains */
	io->more = 0;
	want = io->input_max - len;
	if (want > IO_READ_MORE)
		want = IO_READ_MORE;
	/* a bufferevent's input takes data only from libevent's own read,
	 * which thaws it the same way */
	(void)evbuffer_unfreeze(in, 0);
	if ((n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2)) <= 0) {
		(void)evbuffer_freeze(in, 0);
		return;
	}
	for (i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	if ((got = readv(io->fd, iov, n)) <= 0)
		got = 0;
	left = (size_t)got;
	for (i = 0; i < n && left > 0; i++) {
		v[i].iov_len = left < v[i].iov_len ? left : v[i].iov_len;
		left -= v[i].iov_len;
	}
	(void)evbuffer_commit_space(in, v, i);
	(void)evbuffer_freeze(in, 0);
	/* only a full read says more may wait (not our own commit) */
	io->more = (size_t)got == want;
}

/* io_bev_read - input arrived */
static void
io_bev_read(struct bufferevent *bev, void *arg)
{
	struct io *io = arg;

	(void)bev;
	io_quickack(io);
	io_read_more(io);
	if (io->paused)
		return;		/* io_resume_read() redelivers */
	io->cb(io, IO_DATAIN, io->arg);
}

/* io_bev_write - output drained to the low-water mark */
static void
io_bev_write(struct bufferevent *bev, void *arg)
{
	struct io *io = arg;

	(void)bev;
	io_throttle(io);
	/* drained after a short write: back to writing ourselves */
	if (io->direct &&
	    evbuffer_get_length(bufferevent_get_output(io->bev)) == 0)
		bufferevent_disable(io->bev, EV_WRITE);
	/*
	 * libevent also calls this when an idle socket first turns
	 * writable, and a deferred call may arrive after new output was
	 * queued: report only output of ours that has really drained.
	 */
	if (!io->wrote ||
	    evbuffer_get_length(bufferevent_get_output(io->bev)) > io->lowat ||
	    (io->stage != NULL && evbuffer_get_length(io->stage) > 0))
		return;
	/* under TLS the records may still sit in the socket buffer */
	if (io->under != NULL &&
	    evbuffer_get_length(bufferevent_get_output(io->under)) > 0) {
		io->lowat_wait = 1;
		return;
	}
	io->wrote = 0;
	io->cb(io, IO_LOWAT, io->arg);
}

/* io_under_drained - TLS records written: the delayed IO_LOWAT is due */
static void
io_under_drained(struct evbuffer *b, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct io *io = arg;

	/* from inside libevent's write: look again from our flush event */
	if (io->throttled && info->n_deleted > 0)
		event_active(io->flush, EV_WRITE, 1);
	if (io->lowat_wait && info->n_deleted > 0 &&
	    evbuffer_get_length(b) == 0) {
		io->lowat_wait = 0;
		io_defer(io, IO_LOWAT);
	}
}

/* io_tls_error_text - why a TLS connection failed, from every source */
static void
io_tls_error_text(struct io *io, const char *what, int err)
{
	struct buf b;
	unsigned long e;
	int n = 0;
	long v;

	buf_init(&b);
	buf_puts(&b, what);
	while ((e = bufferevent_get_openssl_error(io->bev)) != 0) {
		const char *reason = ERR_reason_error_string(e);
		char one[256];

		/* libevent files SSL_get_error() codes here too: skip them */
		if (ERR_GET_LIB(e) == 0)
			continue;
		if (reason == NULL) {
			ERR_error_string_n(e, one, sizeof(one));
			reason = one;
		}
		buf_puts(&b, n++ == 0 ? ": " : "; ");
		buf_puts(&b, reason);
	}
	v = SSL_get_verify_result(io->ssl);
	if (io->tls == IO_TLS_HANDSHAKE && v != X509_V_OK) {
		buf_puts(&b, n++ == 0 ? ": " : "; ");
		buf_printf(&b, "certificate: %s", X509_verify_cert_error_string(v));
	}
	if (n == 0) {
		buf_puts(&b, ": ");
		buf_puts(&b, err != 0 ? strerror(err) :
		    "connection closed by peer");
	}
	io_set_error(io, "%s", buf_str(&b));
	buf_release(&b);
}

/* io_bev_event - connection, TLS, end-of-file, timeout and error events */
static void
io_bev_event(struct bufferevent *bev, short what, void *arg)
{
	struct io *io = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (io->tls == IO_TLS_HANDSHAKE) {
			io->tls = IO_TLS_ON;
			io->cb(io, IO_TLSREADY, io->arg);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		/* libevent turned the direction off; the caller decides */
		if ((what & BEV_EVENT_READING) && !io->paused &&
		    !io->throttled)
			bufferevent_enable(io->bev, EV_READ);
		if (what & BEV_EVENT_WRITING)
			bufferevent_enable(io->bev, EV_WRITE);
		io_set_error(io, "timeout while %s",
		    what & BEV_EVENT_WRITING ? "writing" : "reading");
		io->cb(io, IO_TIMEOUT, io->arg);
		return;
	}
	if (io->tls == IO_TLS_HANDSHAKE) {
		io_tls_error_text(io, "TLS handshake failed", err);
		io->cb(io, IO_ERROR, io->arg);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		io_set_error(io, "connection closed by peer");
		io->cb(io, IO_DISCONNECTED, io->arg);
		return;
	}
	if (io->tls == IO_TLS_ON)
		io_tls_error_text(io, "TLS error", err);
	else
		io_set_error(io, "%s", err != 0 ? strerror(err) :
		    "connection error");
	io->cb(io, IO_ERROR, io->arg);
}

/* io_apply_settings - timeouts and water marks on the current bev */
static void
io_apply_settings(struct io *io)
{
	struct timeval tv;

	if (io->timeout_ms == 0)
		bufferevent_set_timeouts(io->bev, NULL, NULL);
	else {
		loop_ms_to_tv(io->timeout_ms, &tv);
		bufferevent_set_timeouts(io->bev, &tv, &tv);
	}
	bufferevent_setwatermark(io->bev, EV_READ, 0, io->input_max);
	bufferevent_setwatermark(io->bev, EV_WRITE, io->lowat, 0);
}

/* io_attach - put a connected socket under a bufferevent */
static void
io_attach(struct io *io, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	io->fd = fd;
	io->bev = bufferevent_socket_new(loop_event_base(), fd,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (io->bev == NULL)
		fatalx("io: out of memory for a bufferevent");
	bufferevent_setcb(io->bev, io_bev_read, io_bev_write, io_bev_event,
	    io);
	io->input_cb = evbuffer_add_cb(bufferevent_get_input(io->bev),
	    io_input_added, io);
	io_apply_settings(io);
	/* plaintext output is ours to write (io_flush_fire) */
	io->direct = 1;
	if (!io->paused && !io->throttled)
		bufferevent_enable(io->bev, EV_READ);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    io_addr_text((struct sockaddr *)&ss, io->peer, sizeof(io->peer),
	    &io->peer_port) != 0)
		(void)snprintf(io->peer, sizeof(io->peer), "unknown");
}

/* io_new - a buffered connection over a connected socket */
struct io *
io_new(int fd, io_cb cb, void *arg)
{
	struct io *io = io_alloc(cb, arg);

	io_attach(io, fd);
	return io;
}

/* io_set_callback - hand the connection to another owner */
void
io_set_callback(struct io *io, io_cb cb, void *arg)
{
	io->cb = cb;
	io->arg = arg;
}

/* io_connect_done - a connect attempt finished or timed out */
static void
io_connect_done(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;
	int err = 0;
	socklen_t len = sizeof(err);
	size_t i = io->nexta - 1;
	char addr[IO_ADDR_MAX];
	unsigned port;

	(void)fd;
	event_free(io->cev);
	io->cev = NULL;
	if (what & EV_TIMEOUT)
		err = ETIMEDOUT;
	else if (getsockopt(io->cfd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0) {
		int cfd = io->cfd;

		io->cfd = -1;
		io_attach(io, cfd);
		io->cb(io, IO_CONNECTED, io->arg);
		return;
	}
	close(io->cfd);
	io->cfd = -1;
	if (io_addr_text((struct sockaddr *)&io->addrs[i], addr, sizeof(addr),
	    &port) != 0)
		(void)snprintf(addr, sizeof(addr), "?");
	io_set_error(io, "connect to %s%s%s%s:%u: %s",
	    io->host != NULL ? io->host : "", io->host != NULL ? " [" : "",
	    addr, io->host != NULL ? "]" : "", port,
	    err == ETIMEDOUT ? "connection timed out" : strerror(err));
	io_connect_next(io);	/* reports a failure through io_defer() */
}

/* io_connect_next - try the next address, or report the last failure */
static void
io_connect_next(struct io *io)
{
	struct timeval tv;

	while (io->nexta < io->naddrs) {
		size_t i = io->nexta++;
		const struct sockaddr *sa = (struct sockaddr *)&io->addrs[i];
		char addr[IO_ADDR_MAX];
		unsigned port;
		int fd, rc;

		fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			rc = connect(fd, sa, io->lens[i]);
			if (rc == 0 || errno == EINPROGRESS) {
				io->cfd = fd;
				io->cev = event_new(loop_event_base(), fd,
				    EV_WRITE, io_connect_done, io);
				if (io->cev == NULL)
					fatalx("io: out of memory for an event");
				loop_ms_to_tv(io->connect_ms, &tv);
				event_add(io->cev, io->connect_ms ? &tv : NULL);
				if (rc == 0)
					event_active(io->cev, EV_WRITE, 1);
				return;
			}
		}
		if (io_addr_text(sa, addr, sizeof(addr), &port) != 0)
			(void)snprintf(addr, sizeof(addr), "?");
		io_set_error(io, "connect to %s%s%s%s:%u: %s",
		    io->host != NULL ? io->host : "",
		    io->host != NULL ? " [" : "", addr,
		    io->host != NULL ? "]" : "", port, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (io->error == NULL)
		io_set_error(io, "connect to %s: no address",
		    io->host != NULL ? io->host : "?");
	io_defer(io, IO_ERROR);
}

/* io_resolved - on the loop: the lookup finished, start connecting */
static void
io_resolved(void *arg)
{
	struct io_resolve *r = arg;
	struct io *io = r->io;

	if (io != NULL) {
		io->resolve = NULL;
		if (r->gai_error != 0) {
			io_set_error(io, "cannot resolve %s: %s", r->host,
			    gai_strerror(r->gai_error));
			io_defer(io, IO_ERROR);
		} else {
			memcpy(io->addrs, r->addrs, sizeof(r->addrs));
			memcpy(io->lens, r->lens, sizeof(r->lens));
			io->naddrs = r->naddrs;
			io->nexta = 0;
			io_connect_next(io);
		}
	}
	free(r->host);
	free(r);
}

/* io_resolve_copy - keep up to IO_CONNECT_ADDRS addresses of a lookup */
static void
io_resolve_copy(struct io_resolve *r, struct addrinfo *res)
{
	r->naddrs = 0;
	for (struct addrinfo *ai = res; ai != NULL &&
	    r->naddrs < IO_CONNECT_ADDRS; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(r->addrs[0]))
			continue;
		memcpy(&r->addrs[r->naddrs], ai->ai_addr, ai->ai_addrlen);
		r->lens[r->naddrs++] = ai->ai_addrlen;
	}
	if (r->naddrs == 0 && r->gai_error == 0)
		r->gai_error = EAI_NONAME;
}

/* io_resolve_thread - getaddrinfo() off the loop, then post the answer */
static void *
io_resolve_thread(void *arg)
{
	struct io_resolve *r = arg;
	struct addrinfo hints, *res = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
	r->gai_error = getaddrinfo(r->host, r->port, &hints, &res);
	if (r->gai_error == 0) {
		io_resolve_copy(r, res);
		freeaddrinfo(res);
	}
	if (loop_post(io_resolved, r) != 0) {
		free(r->host);	/* the loop is gone */
		free(r);
	}
	return NULL;
}

/* io_connect - connect to host (a name or an address) and port */
struct io *
io_connect(const char *host, unsigned port, unsigned timeout_ms, io_cb cb,
    void *arg)
{
	struct io *io = io_alloc(cb, arg);
	struct io_resolve *r = xcalloc(1, sizeof(*r));
	struct addrinfo hints, *res = NULL;
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t all, old;
	int rc;

	io->host = xstrdup(host);
	io->connect_ms = timeout_ms;
	r->host = xstrdup(host);
	(void)snprintf(r->port, sizeof(r->port), "%u", port & 0xffff);

	/* an address literal needs no lookup */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, r->port, &hints, &res) == 0) {
		io_resolve_copy(r, res);
		freeaddrinfo(res);
		r->io = io;
		io_resolved(r);
		return io;
	}

	r->io = io;
	io->resolve = r;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);	/* signals stay ours */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&tid, &attr, io_resolve_thread, r);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		io->resolve = NULL;
		free(r->host);
		free(r);
		io_set_error(io, "cannot start a lookup for %s: %s", host,
		    strerror(rc));
		io_defer(io, IO_ERROR);
	}
	return io;
}

/* io_connect_addr - connect to one socket address */
struct io *
io_connect_addr(const struct sockaddr *sa, socklen_t len,
    unsigned timeout_ms, io_cb cb, void *arg)
{
	struct io *io = io_alloc(cb, arg);

	io->connect_ms = timeout_ms;
	if (len > sizeof(io->addrs[0])) {
		io_set_error(io, "socket address too long");
		io_defer(io, IO_ERROR);
		return io;
	}
	memcpy(&io->addrs[0], sa, len);
	io->lens[0] = len;
	io->naddrs = 1;
	io_connect_next(io);
	return io;
}

/* io_free - close the connection, drop unsent output, clear the pointer */
void
io_free(struct io **iop)
{
	struct io *io = *iop;

	if (io == NULL)
		return;
	if (io->resolve != NULL)
		io->resolve->io = NULL;		/* io_resolved() frees it */
	if (io->cev != NULL)
		event_free(io->cev);
	if (io->cfd >= 0)
		close(io->cfd);
	event_free(io->deferred);
	event_free(io->flush);
	if (io->under_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(io->under),
		    io->under_cb);
	/* the socket bufferevent outlives us by a loop turn under TLS (the
	 * filter lets go of it when it is finalized), and a read in that
	 * turn must not call back into a freed io */
	if (io->input_cb != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(io->under !=
		    NULL ? io->under : io->bev), io->input_cb);
	if (io->bev != NULL)
		bufferevent_free(io->bev);	/* closes fd, frees SSL */
	if (io->stage != NULL)
		evbuffer_free(io->stage);
	buf_release(&io->line);
	free(io->error);
	free(io->host);
	free(io);
	*iop = NULL;
}

/* io_error - the text of the last error */
const char *
io_error(const struct io *io)
{
	return io->error != NULL ? io->error : "no error";
}

/* io_set_timeout - read and write timeout in ms, 0 for none */
void
io_set_timeout(struct io *io, unsigned ms)
{
	io->timeout_ms = ms;
	if (io->bev != NULL)
		io_apply_settings(io);
}

/* io_set_lowat - IO_LOWAT once no more than this much output is queued */
void
io_set_lowat(struct io *io, size_t lowat)
{
	io->lowat = lowat;
	if (io->bev != NULL)
		io_apply_settings(io);
}

/* io_set_input_max - the most input octets ever buffered */
void
io_set_input_max(struct io *io, size_t max)
{
	io->input_max = max < IO_LINE_MIN ? IO_LINE_MIN : max;
	if (io->bev != NULL)
		io_apply_settings(io);
}

/* io_out_buffer - where output goes now: the stage under TLS, else the bev */
static struct evbuffer *
io_out_buffer(struct io *io)
{
	if (io->stage != NULL)
		return io->stage;
	/* EV_WRITE left on by a short write whose output has drained:
	 * keep libevent from arming EPOLLOUT for what we write ourselves */
	if (io->direct &&
	    (bufferevent_get_enabled(io->bev) & EV_WRITE) != 0 &&
	    evbuffer_get_length(bufferevent_get_output(io->bev)) == 0)
		bufferevent_disable(io->bev, EV_WRITE);
	return bufferevent_get_output(io->bev);
}

/* io_out_end - after queueing: write it once this callback returns */
static void
io_out_end(struct io *io)
{
	io->wrote = 1;
	io_throttle(io);
	if (io->stage != NULL || (io->direct &&
	    (bufferevent_get_enabled(io->bev) & EV_WRITE) == 0))
		event_active(io->flush, EV_WRITE, 1);
}

/* io_line_free - evbuffer cleanup of a line queued as its own chain */
static void
io_line_free(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	free(arg);
}

/* io_write_lines - queue output one line per chain: one TLS record each */
static int
io_write_lines(struct io *io, const unsigned char *p, size_t len)
{
	struct evbuffer *out = io_out_buffer(io);
	const unsigned char *lf;
	unsigned char *copy;
	size_t n;

	/*
	 * bufferevent_openssl calls SSL_write() once per evbuffer chain,
	 * evbuffer_add_reference() makes a chain of its own, and
	 * evbuffer_add_buffer() moves chains whole: so each line goes
	 * out in a record of its own.
	 */
	while (len > 0) {
		lf = memchr(p, '\n', len);
		n = lf != NULL ? (size_t)(lf - p) + 1 : len;
		copy = xmalloc(n);
		memcpy(copy, p, n);
		if (evbuffer_add_reference(out, copy, n, io_line_free,
		    copy) != 0) {
			free(copy);
			io_set_error(io, "write: cannot queue output");
			return -1;
		}
		p += n;
		len -= n;
	}
	io_out_end(io);
	return 0;
}

/* io_set_line_records - under TLS, send each line in a record of its own */
void
io_set_line_records(struct io *io, int on)
{
	io->line_records = on;
}

/* io_stage_flush - TLS: hand the staged output to the filter (encrypts it) */
static void
io_stage_flush(struct io *io)
{
	if (io->stage != NULL && io->bev != NULL &&
	    evbuffer_get_length(io->stage) > 0)
		(void)evbuffer_add_buffer(bufferevent_get_output(io->bev),
		    io->stage);
}

/*
 * io_flush_fire - once the callback that queued output has returned:
 * under TLS hand the stage to the filter; on plaintext write it
 * ourselves and leave libevent only what the socket does not take
 */
static void
io_flush_fire(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;
	struct evbuffer *out;
	int n, err;

	(void)fd;
	(void)what;
	if (io->bev == NULL)
		return;
	io_throttle(io);
	if (io->stage != NULL) {
		io_stage_flush(io);
		return;
	}
	if (!io->direct || (bufferevent_get_enabled(io->bev) & EV_WRITE) != 0)
		return;
	out = bufferevent_get_output(io->bev);
	if (evbuffer_get_length(out) == 0)
		return;
	/* a bufferevent keeps the start of its output frozen (only it
	 * drains it) and thaws it around its own writes, as here */
	(void)evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(io->bev));
	err = errno;
	(void)evbuffer_freeze(out, 1);
	if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
		/* as libevent would report it */
		errno = err;
		io_bev_event(io->bev, BEV_EVENT_WRITING | BEV_EVENT_ERROR, io);
		return;
	}
	if (evbuffer_get_length(out) > 0) {
		/* the socket is full: libevent writes the rest when it can */
		bufferevent_enable(io->bev, EV_WRITE);
		return;
	}
	io_bev_write(io->bev, io);	/* IO_LOWAT, if due */
}

/* io_write - queue output */
int
io_write(struct io *io, const void *data, size_t len)
{
	if (io->bev == NULL) {
		io_set_error(io, "write: not connected");
		return -1;
	}
	if (io->line_records && io->tls == IO_TLS_ON)
		return io_write_lines(io, data, len);
	if (evbuffer_add(io_out_buffer(io), data, len) != 0) {
		io_set_error(io, "write: cannot queue output");
		return -1;
	}
	io_out_end(io);
	return 0;
}

/* io_vprintf - queue formatted output */
int
io_vprintf(struct io *io, const char *fmt, va_list ap)
{
	if (io->bev == NULL) {
		io_set_error(io, "write: not connected");
		return -1;
	}
	if (io->line_records && io->tls == IO_TLS_ON) {
		struct buf b;
		int rc;

		buf_init(&b);
		buf_vprintf(&b, fmt, ap);
		rc = io_write_lines(io, b.data, b.len);
		buf_release(&b);
		return rc;
	}
	if (evbuffer_add_vprintf(io_out_buffer(io), fmt, ap) < 0) {
		io_set_error(io, "write: cannot queue output");
		return -1;
	}
	io_out_end(io);
	return 0;
}

/* io_printf - queue formatted output */
int
io_printf(struct io *io, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = io_vprintf(io, fmt, ap);
	va_end(ap);
	return rc;
}

/* io_queued - output octets not yet handed to the kernel */
size_t
io_queued(const struct io *io)
{
	size_t n = 0;

	if (io->stage != NULL)
		n += evbuffer_get_length(io->stage);
	if (io->bev != NULL)
		n += evbuffer_get_length(bufferevent_get_output(io->bev));
	if (io->under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(io->under));
	return n;
}

/* io_set_output_max - stop reading while more output than this waits */
void
io_set_output_max(struct io *io, size_t max)
{
	io->output_max = max;
	io_throttle(io);
}

/* io_output_full - more output waits than io_set_output_max() allows */
int
io_output_full(const struct io *io)
{
	return io->throttled;
}

/*
 * io_throttle - output backpressure: reading stops while more than
 * output_max octets wait to be sent, and starts again once half of
 * them have gone; input already buffered is then reported again
 */
static void
io_throttle(struct io *io)
{
	size_t q;

	if (io->bev == NULL)
		return;
	q = io->output_max == 0 ? 0 : io_queued(io);
	if (!io->throttled && io->output_max > 0 && q > io->output_max) {
		io->throttled = 1;
		bufferevent_disable(io->bev, EV_READ);
	} else if (io->throttled && q <= io->output_max / 2) {
		io->throttled = 0;
		if (io->paused)
			return;
		bufferevent_enable(io->bev, EV_READ);
		if (io_datalen(io) > 0)
			io_defer(io, IO_DATAIN);
	}
}

/* io_line_last_octet - the octet at offset n - 1 of the input */
static int
io_line_last_octet(struct evbuffer *in, size_t n)
{
	struct evbuffer_ptr p;
	unsigned char c;

	if (n == 0 || evbuffer_ptr_set(in, &p, n - 1, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(in, &p, &c, 1) != 1)
		return -1;
	return c;
}

/*
 * io_getline - the next complete input line, without CRLF or LF
 *
 * A line longer than max (clamped so that max plus CR LF fit in the
 * input bound) is reported once with *toolong and "" and then skipped
 * to its LF, a piece at a time, however long it is.
 */
char *
io_getline(struct io *io, size_t max, size_t *lenp, int *toolong)
{
	struct evbuffer *in;
	struct evbuffer_ptr lf;
	size_t avail, n;

	*toolong = 0;
	*lenp = 0;
	io->bare_lf = 0;
	if (io->bev == NULL)
		return NULL;
	in = bufferevent_get_input(io->bev);
	if (max > io->input_max - IO_LINE_MIN)
		max = io->input_max - IO_LINE_MIN;
	for (;;) {
		if ((avail = evbuffer_get_length(in)) == 0)
			return NULL;
		lf = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (io->skipping) {
			if (lf.pos < 0) {
				evbuffer_drain(in, avail);
				return NULL;
			}
			evbuffer_drain(in, (size_t)lf.pos + 1);
			io->skipping = 0;
			continue;
		}
		if (lf.pos < 0) {
			/* room for max octets and a CR still waiting for LF */
			if (avail <= max + 1)
				return NULL;
			evbuffer_drain(in, avail);
			io->skipping = 1;
			break;
		}
		n = (size_t)lf.pos;	/* octets before the LF */
		if (n > max + 1 || (n == max + 1 &&
		    io_line_last_octet(in, n) != '\r')) {
			evbuffer_drain(in, n + 1);
			break;
		}
		buf_reset(&io->line);
		buf_reserve(&io->line, n + 1);
		evbuffer_remove(in, io->line.data, n + 1);
		if (n > 0 && io->line.data[n - 1] == '\r')
			n--;
		else
			io->bare_lf = 1;
		io->line.len = n;
		io->line.data[n] = '\0';
		*lenp = n;
		return (char *)io->line.data;
	}
	/* too long */
	buf_reset(&io->line);
	buf_reserve(&io->line, 1);
	io->line.data[0] = '\0';
	*toolong = 1;
	return (char *)io->line.data;
}

/* io_bare_lf - whether the last line from io_getline() ended in a bare LF */
int
io_bare_lf(const struct io *io)
{
	return io->bare_lf;
}

/* io_datalen - buffered input octets */
size_t
io_datalen(const struct io *io)
{
	if (io->bev == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_input(io->bev));
}

/* io_data - buffered input as one contiguous block */
const void *
io_data(struct io *io)
{
	if (io->bev == NULL)
		return NULL;
	return evbuffer_pullup(bufferevent_get_input(io->bev), -1);
}

/* io_drop - consume n octets of buffered input */
void
io_drop(struct io *io, size_t n)
{
	if (io->bev != NULL)
		evbuffer_drain(bufferevent_get_input(io->bev), n);
}

/* io_discard_input - throw buffered input away (RFC 3207), say how much */
size_t
io_discard_input(struct io *io)
{
	size_t n = io_datalen(io);

	io_drop(io, n);
	io->skipping = 0;
	return n;
}

/* io_pause_read - stop reading until io_resume_read() */
void
io_pause_read(struct io *io)
{
	io->paused = 1;
	if (io->bev != NULL)
		bufferevent_disable(io->bev, EV_READ);
}

/* io_resume_read - read again, and report input already buffered */
void
io_resume_read(struct io *io)
{
	if (!io->paused)
		return;
	io->paused = 0;
	if (io->bev == NULL || io->throttled)
		return;		/* io_throttle() reads again */
	bufferevent_enable(io->bev, EV_READ);
	if (io_datalen(io) > 0)
		io_defer(io, IO_DATAIN);
}

/* io_sockopt - set an integer TCP option on the socket */
static int
io_sockopt(struct io *io, int level, int opt, int on, const char *name)
{
	int fd = io->bev != NULL ? bufferevent_getfd(io->bev) : -1;

	if (fd < 0) {
		io_set_error(io, "%s: not connected", name);
		return -1;
	}
	if (setsockopt(fd, level, opt, &on, sizeof(on)) != 0) {
		io_set_error(io, "%s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

/* io_set_nodelay - turn Nagle's algorithm off (on) or back on (off) */
int
io_set_nodelay(struct io *io, int on)
{
	return io_sockopt(io, IPPROTO_TCP, TCP_NODELAY, on != 0, "TCP_NODELAY");
}

/* io_set_quickack - acknowledge each read at once (see io.h) */
void
io_set_quickack(struct io *io, int on)
{
	io->quickack = on != 0;
	io_quickack(io);
}

/* io_cork - hold partial segments back while queueing a command group */
int
io_cork(struct io *io)
{
#ifdef TCP_CORK
	return io_sockopt(io, IPPROTO_TCP, TCP_CORK, 1, "TCP_CORK");
#else
	(void)io;
	return 0;
#endif
}

/* io_uncork - send what io_cork() held back */
int
io_uncork(struct io *io)
{
#ifdef TCP_CORK
	return io_sockopt(io, IPPROTO_TCP, TCP_CORK, 0, "TCP_CORK");
#else
	(void)io;
	return 0;
#endif
}

/* io_peer_addr - the peer address as text */
const char *
io_peer_addr(const struct io *io)
{
	return io->peer[0] != '\0' ? io->peer : "unknown";
}

/* io_peer_port - the peer port, 0 when unknown */
unsigned
io_peer_port(const struct io *io)
{
	return io->peer_port;
}

/* io_tls_name - the server name check and SNI for a client (RFC 6125) */
static int
io_tls_name(struct io *io, SSL *ssl, const char *name)
{
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	unsigned char a[sizeof(struct in6_addr)];

	/* RFC 7817 section 3: no partial wildcards such as "f*.example" */
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (inet_pton(AF_INET, name, a) == 1 ||
	    inet_pton(AF_INET6, name, a) == 1) {
		/* an address literal: match iPAddress, send no SNI */
		if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1)
			goto fail;
		return 0;
	}
	if (X509_VERIFY_PARAM_set1_host(param, name, 0) != 1 ||
	    SSL_set_tlsext_host_name(ssl, name) != 1)
		goto fail;
	return 0;
fail:
	{
		char *e = tls_error_text("TLS server name");

		io_set_error(io, "%s: %s", name, e);
		free(e);
	}
	return -1;
}

/* io_starttls - put TLS over the connection, as server or client */
static int
io_starttls(struct io *io, struct tls_ctx *ctx, int server,
    const char *servername)
{
	struct bufferevent *filter;
	SSL *ssl;

	if (io->bev == NULL) {
		io_set_error(io, "STARTTLS: not connected");
		return -1;
	}
	if (io->tls != IO_TLS_OFF) {
		io_set_error(io, "STARTTLS: TLS is already on");
		return -1;
	}
	if (tls_ctx_is_server(ctx) != server) {
		io_set_error(io, "STARTTLS: a %s context used for a %s",
		    server ? "client" : "server", server ? "server" : "client");
		return -1;
	}
	/* RFC 3207 section 4.2: never act on plaintext sent before TLS */
	if (io_datalen(io) > 0) {
		io_set_error(io, "STARTTLS: %zu octets of plaintext input "
		    "buffered; call io_discard_input() first", io_datalen(io));
		return -1;
	}
	ERR_clear_error();
	if ((ssl = SSL_new(tls_ctx_ssl(ctx))) == NULL) {
		char *e = tls_error_text("STARTTLS");

		io_set_error(io, "%s", e);
		free(e);
		return -1;
	}
	if (!server && servername != NULL && io_tls_name(io, ssl,
	    servername) != 0) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_set_timeouts(io->bev, NULL, NULL);
	if (io->direct) {
		/* the socket layer below the filter is libevent's to write;
		 * a plaintext reply still queued goes first */
		io->direct = 0;
		bufferevent_enable(io->bev, EV_WRITE);
	}
	filter = bufferevent_openssl_filter_new(loop_event_base(), io->bev,
	    ssl, server ? BUFFEREVENT_SSL_ACCEPTING :
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (filter == NULL) {
		SSL_free(ssl);
		io_set_error(io, "STARTTLS: cannot create the TLS layer");
		return -1;
	}
	/* the peer may close without close_notify: SMTP has QUIT for that */
	bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
	io->under = io->bev;
	io->bev = filter;
	io->ssl = ssl;
	io->tls = IO_TLS_HANDSHAKE;
	io->skipping = 0;
	/* the socket layer below holds ciphertext: bound it as well */
	bufferevent_setwatermark(io->under, EV_READ, 0, io->input_max);
	io->under_cb = evbuffer_add_cb(bufferevent_get_output(io->under),
	    io_under_drained, io);
	/*
	 * The filter encrypts on every append to its output, so output
	 * waits in io->stage until io_flush_fire() hands it over once the
	 * current callback has returned: the replies of one callback make
	 * one TLS record rather than one per io_printf(). (Not with
	 * evbuffer_defer_callbacks(): see the ownership rules above.)
	 */
	if (io->stage == NULL && (io->stage = evbuffer_new()) == NULL)
		fatalx("io: out of memory for an evbuffer");
	bufferevent_setcb(filter, io_bev_read, io_bev_write, io_bev_event, io);
	io_apply_settings(io);
	bufferevent_enable(filter, io->paused || io->throttled ? EV_WRITE :
	    EV_READ | EV_WRITE);
	return 0;
}

/* io_starttls_server - start TLS as the server on this connection */
int
io_starttls_server(struct io *io, struct tls_ctx *ctx)
{
	return io_starttls(io, ctx, 1, NULL);
}

/* io_starttls_client - start TLS as the client; check servername */
int
io_starttls_client(struct io *io, struct tls_ctx *ctx, const char *servername)
{
	return io_starttls(io, ctx, 0, servername);
}

/* io_is_tls - whether the TLS handshake has finished */
int
io_is_tls(const struct io *io)
{
	return io->tls == IO_TLS_ON;
}

/* io_tls_shutdown - send close_notify; IO_LOWAT once it is out */
int
io_tls_shutdown(struct io *io)
{
	if (io->tls != IO_TLS_ON || io->ssl == NULL || io->under == NULL)
		return -1;
	/*
	 * RFC 8446 6.1: a TLS peer ends with close_notify, or the other
	 * side cannot tell our end from a truncation. The alert goes
	 * through the filter's BIO into the socket bufferevent's output;
	 * we do not wait for the peer's own alert (bidirectional shutdown
	 * buys SMTP nothing: it has its own end marker).
	 */
	io_stage_flush(io);	/* what we said goes before the alert */
	ERR_clear_error();
	(void)SSL_shutdown(io->ssl);
	ERR_clear_error();
	io->wrote = 1;
	if (evbuffer_get_length(bufferevent_get_output(io->under)) > 0)
		io->lowat_wait = 1;
	else
		io_defer(io, IO_LOWAT);
	return 0;
}

/*
 * io_tls_cn - the subject's commonName into out, or "": a name with two
 * CNs, an embedded NUL or more than outsz - 1 octets is no identity
 */
static void
io_tls_cn(X509 *peer, char *out, size_t outsz)
{
	X509_NAME *name = X509_get_subject_name(peer);
	X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	int i, len;

	out[0] = '\0';
	if (name == NULL ||
	    (i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0 ||
	    (e = X509_NAME_get_entry(name, i)) == NULL)
		return;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
	if (len > 0 && (size_t)len < outsz &&
	    memchr(utf8, '\0', (size_t)len) == NULL) {
		memcpy(out, utf8, (size_t)len);
		out[len] = '\0';
	}
	OPENSSL_free(utf8);
}

/* io_tls_info - protocol, cipher and peer certificate, for logs */
int
io_tls_info(const struct io *io, struct io_tls_info *info)
{
	const SSL_CIPHER *c;
	X509 *peer;
	long v;

	memset(info, 0, sizeof(*info));
	if (io->tls != IO_TLS_ON)
		return -1;
	info->version = SSL_get_version(io->ssl);
	c = SSL_get_current_cipher(io->ssl);
	info->cipher = c != NULL ? SSL_CIPHER_get_name(c) : "unknown";
	info->bits = c != NULL ? SSL_CIPHER_get_bits(c, NULL) : 0;
	v = SSL_get_verify_result(io->ssl);
	peer = SSL_get0_peer_certificate(io->ssl);
	if (peer != NULL) {
		info->peer_cert = 1;
		info->peer_verified = v == X509_V_OK;
		info->verify_error = X509_verify_cert_error_string(v);
		if (X509_NAME_oneline(X509_get_subject_name(peer),
		    info->subject, sizeof(info->subject)) == NULL)
			info->subject[0] = '\0';
		io_tls_cn(peer, info->cn, sizeof(info->cn));
	} else
		info->verify_error = "no certificate";
	return 0;
}
