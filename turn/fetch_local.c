/*
 * NAME
 *	fetch_local 3 - odmr-fetch's client of the site's own MTA (SMTP
 *	or LMTP)
 * SYNOPSIS
 *	#include "fetch_local.h"
 * DESCRIPTION
 *	See fetch_local.h. The connection is one io (io 3h) with one
 *	callback, fetch_local_io(). Replies are read in every state but
 *	CONNECT and CLOSED, so that a local MTA that hangs up or sends a
 *	421 while nothing is owed is noticed at once, not at the next
 *	command. A read or write timeout counts only while a reply is owed
 *	or output waits: an idle connection (while the provider is still
 *	being asked for mail) is no error.
 *
 *	A failure found inside a call of the owner's (a write that cannot
 *	be queued) is reported from the loop, through a zero-delay timer,
 *	so that ops.lost() never runs inside fetch_local_cmd() or
 *	fetch_local_text().
 * SEE ALSO
 *	RFC 5321 sections 3.1, 4.1.1.1 and 4.5.3.2, RFC 2033 section 4.1
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "xmalloc.h"

#include "fetch.h"
#include "fetch_local.h"

#define FETCH_LOCAL_NAME_MAX	(FETCH_NAME_MAX + 16)

const char *const fetch_local_state_names[FETCH_LOCAL_STATE_COUNT] = {
	[FETCH_LOCAL_STATE_CONNECT] = "connect",
	[FETCH_LOCAL_STATE_GREETING] = "greeting",
	[FETCH_LOCAL_STATE_EHLO] = "ehlo",
	[FETCH_LOCAL_STATE_HELO] = "helo",
	[FETCH_LOCAL_STATE_READY] = "ready",
	[FETCH_LOCAL_STATE_QUIT] = "quit",
	[FETCH_LOCAL_STATE_CLOSED] = "closed",
};

static const char *const fetch_local_state_descriptions[] = {
	[FETCH_LOCAL_STATE_CONNECT] = "connecting",
	[FETCH_LOCAL_STATE_GREETING] = "waiting for the 220 greeting",
	[FETCH_LOCAL_STATE_EHLO] = "sending EHLO/LHLO",
	[FETCH_LOCAL_STATE_HELO] = "sending HELO",
	[FETCH_LOCAL_STATE_READY] = "relaying a transaction",
	[FETCH_LOCAL_STATE_QUIT] = "sending QUIT",
	[FETCH_LOCAL_STATE_CLOSED] = "closed",
};

struct fetch_local {
	char		 name[FETCH_LOCAL_NAME_MAX];	/* for logs */
	char		*host;
	unsigned	 port;
	char		*path;
	char		*helo;
	unsigned	 timeout_ms;
	int		 lmtp;
	const struct fetch_local_ops *ops;
	void		*arg;

	struct io	*io;
	enum fetch_local_state state;
	struct fetch_reply reply;
	struct fetch_ext ext;
	unsigned	 owed;		/* replies owed in READY */
	int		 dead;		/* lost() or closed() reported */
	unsigned	 depth;		/* inside our callbacks */
	int		 zombie;	/* freed there: release on return */
	struct loop_timer *later;	/* a failure to report from the loop */
	char		 later_why[FETCH_ERROR_MAX];
};

static void fetch_local_io(struct io *, enum io_event, void *);
static void fetch_local_destroy(struct fetch_local *);
static void fetch_local_event(struct fetch_local *, struct io *,
    enum io_event);

/* fetch_local_enter_state - change state, log old -> new */
static void
fetch_local_enter_state(struct fetch_local *l, enum fetch_local_state state)
{
	if (l->state != state)
		log_debug("local=%s event=local-state from=%s to=%s", l->name,
		    fetch_local_state_names[l->state],
		    fetch_local_state_names[state]);
	l->state = state;
	if (l->io != NULL)
		io_set_timeout(l->io, l->timeout_ms);
}

/* fetch_local_lost - the connection is gone: close it, tell the owner */
static void
fetch_local_lost(struct fetch_local *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fetch_local_lost - the connection is gone: close it, tell the owner */
static void
fetch_local_lost(struct fetch_local *l, const char *fmt, ...)
{
	char why[FETCH_ERROR_MAX];
	va_list ap;

	if (l->dead)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	l->dead = 1;
	log_debug("local=%s event=local-lost state=%s reason=\"%s\"", l->name,
	    fetch_local_state_names[l->state], why);
	fetch_local_enter_state(l, FETCH_LOCAL_STATE_CLOSED);
	io_free(&l->io);
	l->ops->lost(l->arg, why);	/* may free l */
}

/* fetch_local_later_fire - report a failure found inside a call */
static void
fetch_local_later_fire(void *arg)
{
	struct fetch_local *l = arg;

	l->depth++;
	fetch_local_lost(l, "%s", l->later_why);
	if (--l->depth == 0 && l->zombie)
		fetch_local_destroy(l);
}

/* fetch_local_fail_later - a failure inside a call: report it from the loop */
static void
fetch_local_fail_later(struct fetch_local *l, const char *why)
{
	if (l->dead || loop_timer_pending(l->later))
		return;
	(void)strlcpy(l->later_why, why, sizeof(l->later_why));
	loop_timer_add(l->later, 0);
}

/* fetch_local_closed - after QUIT: close and tell the owner */
static void
fetch_local_closed(struct fetch_local *l)
{
	if (l->dead)
		return;
	l->dead = 1;
	fetch_local_enter_state(l, FETCH_LOCAL_STATE_CLOSED);
	io_free(&l->io);
	l->ops->closed(l->arg);		/* may free l */
}

/* fetch_local_write - queue a line for the local MTA */
static int
fetch_local_write(struct fetch_local *l, const char *line, size_t len)
{
	char why[FETCH_ERROR_MAX];

	if (l->dead || l->io == NULL)
		return -1;
	log_debug("local=%s event=local-send line=\"%.*s\"", l->name,
	    (int)(len >= 2 ? len - 2 : len), line);
	if (io_write(l->io, line, len) == -1) {
		(void)snprintf(why, sizeof(why), "cannot write while %s: %s",
		    fetch_local_state_descriptions[l->state],
		    io_error(l->io));
		fetch_local_fail_later(l, why);
		return -1;
	}
	return 0;
}

/* fetch_local_vcmd - format one command line, CRLF added, and send it */
static int
fetch_local_vcmd(struct fetch_local *l, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* fetch_local_vcmd - format one command line, CRLF added, and send it */
static int
fetch_local_vcmd(struct fetch_local *l, const char *fmt, va_list ap)
{
	char line[FETCH_CMD_MAX + 2];
	int n;

	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		fetch_local_fail_later(l, "internal error: command too long");
		return -1;
	}
	line[n++] = '\r';
	line[n++] = '\n';
	return fetch_local_write(l, line, (size_t)n);
}

/* fetch_local_send - a command of our own (EHLO, HELO, QUIT) */
static int
fetch_local_send(struct fetch_local *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fetch_local_send - a command of our own (EHLO, HELO, QUIT) */
static int
fetch_local_send(struct fetch_local *l, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = fetch_local_vcmd(l, fmt, ap);
	va_end(ap);
	return rc;
}

/* fetch_local_set_ops - another owner's callbacks from now on */
void
fetch_local_set_ops(struct fetch_local *l, const struct fetch_local_ops *ops,
    void *arg)
{
	l->ops = ops;
	l->arg = arg;
}

/* fetch_local_cmd - send one command of the owner's; one reply is owed */
int
fetch_local_cmd(struct fetch_local *l, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (l->state != FETCH_LOCAL_STATE_READY)
		return -1;
	va_start(ap, fmt);
	rc = fetch_local_vcmd(l, fmt, ap);
	va_end(ap);
	if (rc == 0)
		l->owed++;
	return rc;
}

/* fetch_local_text - send message text as it is; no reply is owed */
int
fetch_local_text(struct fetch_local *l, const void *p, size_t n)
{
	char why[FETCH_ERROR_MAX];

	if (l->state != FETCH_LOCAL_STATE_READY || l->io == NULL)
		return -1;
	if (n == 0)
		return 0;
	if (io_write(l->io, p, n) == -1) {
		(void)snprintf(why, sizeof(why), "cannot write the message "
		    "text: %s", io_error(l->io));
		fetch_local_fail_later(l, why);
		return -1;
	}
	return 0;
}

/* fetch_local_expect - n more replies are owed for text already sent */
void
fetch_local_expect(struct fetch_local *l, unsigned n)
{
	l->owed += n;
	if (l->io != NULL)
		io_set_timeout(l->io, l->timeout_ms);
}

/* fetch_local_owed - replies still owed */
unsigned
fetch_local_owed(const struct fetch_local *l)
{
	return l->owed;
}

/* fetch_local_queued - output not yet handed to the kernel */
size_t
fetch_local_queued(const struct fetch_local *l)
{
	return l->io != NULL ? io_queued(l->io) : 0;
}

/* fetch_local_ext - what the local MTA announced */
const struct fetch_ext *
fetch_local_ext(const struct fetch_local *l)
{
	return &l->ext;
}

/* fetch_local_lmtp - whether this is LMTP (a reply per recipient) */
int
fetch_local_lmtp(const struct fetch_local *l)
{
	return l->lmtp;
}

/* fetch_local_name - "127.0.0.1:25" or "unix:/path", for logs */
const char *
fetch_local_name(const struct fetch_local *l)
{
	return l->name;
}

/* fetch_local_quit - send QUIT; closed() follows (0), or it is gone (-1) */
int
fetch_local_quit(struct fetch_local *l)
{
	if (l->dead || l->io == NULL)
		return -1;
	if (l->state == FETCH_LOCAL_STATE_QUIT)
		return 0;
	if (l->state == FETCH_LOCAL_STATE_CONNECT ||
	    l->state == FETCH_LOCAL_STATE_GREETING) {
		/* nothing was said yet (an MTA that has not greeted would
		 * never answer QUIT either): hanging up is enough */
		l->dead = 1;
		fetch_local_enter_state(l, FETCH_LOCAL_STATE_CLOSED);
		io_free(&l->io);
		return -1;
	}
	if (fetch_local_send(l, "QUIT") == -1)
		return 0;	/* lost() follows from the loop */
	fetch_local_enter_state(l, FETCH_LOCAL_STATE_QUIT);
	return 0;
}

/* fetch_local_greeted - the 220: introduce ourselves */
static void
fetch_local_greeted(struct fetch_local *l)
{
	if (l->reply.code != 220) {
		fetch_local_lost(l, "local MTA greeted with %u %s",
		    l->reply.code, l->reply.text);
		return;
	}
	memset(&l->ext, 0, sizeof(l->ext));
	if (fetch_local_send(l, "%s %s", l->lmtp ? "LHLO" : "EHLO",
	    l->helo) == 0)
		fetch_local_enter_state(l, FETCH_LOCAL_STATE_EHLO);
}

/* fetch_local_ready - EHLO, LHLO or HELO accepted */
static void
fetch_local_ready(struct fetch_local *l)
{
	char ext[256];

	fetch_reply_ext_format(&l->ext, ext, sizeof(ext));
	log_debug("local=%s event=local-ready protocol=%s extensions=%s",
	    l->name, l->lmtp ? "lmtp" : "smtp", ext);
	fetch_local_enter_state(l, FETCH_LOCAL_STATE_READY);
	l->ops->ready(l->arg);
}

/* fetch_local_reply - one whole reply, by state */
static void
fetch_local_reply(struct fetch_local *l)
{
	log_debug("local=%s event=local-reply state=%s reply=\"%u %s\"",
	    l->name, fetch_local_state_names[l->state], l->reply.code,
	    l->reply.text);
	switch (l->state) {
	case FETCH_LOCAL_STATE_GREETING:
		fetch_local_greeted(l);
		return;
	case FETCH_LOCAL_STATE_EHLO:
		if (fetch_reply_class(&l->reply) == 2) {
			fetch_local_ready(l);
			return;
		}
		/* RFC 5321 3.2: an old server refuses EHLO; LMTP has no HELO */
		memset(&l->ext, 0, sizeof(l->ext));
		if (l->lmtp || fetch_reply_class(&l->reply) != 5) {
			fetch_local_lost(l, "local MTA refused %s: %u %s",
			    l->lmtp ? "LHLO" : "EHLO", l->reply.code,
			    l->reply.text);
			return;
		}
		if (fetch_local_send(l, "HELO %s", l->helo) == 0)
			fetch_local_enter_state(l, FETCH_LOCAL_STATE_HELO);
		return;
	case FETCH_LOCAL_STATE_HELO:
		if (fetch_reply_class(&l->reply) == 2)
			fetch_local_ready(l);
		else
			fetch_local_lost(l, "local MTA refused HELO: %u %s",
			    l->reply.code, l->reply.text);
		return;
	case FETCH_LOCAL_STATE_READY:
		if (l->reply.code == 421) {
			/* RFC 5321 3.8: it is closing the channel */
			fetch_local_lost(l, "local MTA is closing: 421 %s",
			    l->reply.text);
			return;
		}
		if (l->owed == 0) {
			fetch_local_lost(l, "local MTA sent a reply nobody "
			    "asked for: %u %s", l->reply.code, l->reply.text);
			return;
		}
		l->owed--;
		l->ops->reply(l->arg, &l->reply);
		return;
	case FETCH_LOCAL_STATE_QUIT:
		fetch_local_closed(l);
		return;
	case FETCH_LOCAL_STATE_CONNECT:
	case FETCH_LOCAL_STATE_CLOSED:
	case FETCH_LOCAL_STATE_COUNT:
		break;
	}
}

/* fetch_local_input - take whole replies */
static void
fetch_local_input(struct fetch_local *l)
{
	const char *text, *err;
	size_t len;
	int toolong;
	char *line;

	while (!l->dead && l->io != NULL) {
		line = io_getline(l->io, FETCH_REPLY_LINE_MAX, &len, &toolong);
		if (line == NULL)
			return;
		if (toolong) {
			fetch_local_lost(l, "local MTA sent a reply line over "
			    "%u octets while %s", FETCH_REPLY_LINE_MAX,
			    fetch_local_state_descriptions[l->state]);
			return;
		}
		switch (fetch_reply_line(&l->reply, line, len, &text, &err)) {
		case FETCH_REPLY_BAD:
			fetch_local_lost(l, "local MTA sent a bad reply while "
			    "%s: %s", fetch_local_state_descriptions[l->state],
			    err);
			return;
		case FETCH_REPLY_MORE:
			if (l->state == FETCH_LOCAL_STATE_EHLO &&
			    l->reply.nlines > 1)
				fetch_reply_ext_line(&l->ext, text);
			continue;
		case FETCH_REPLY_DONE:
			if (l->state == FETCH_LOCAL_STATE_EHLO &&
			    l->reply.nlines > 1)
				fetch_reply_ext_line(&l->ext, text);
			break;
		}
		if (l->state == FETCH_LOCAL_STATE_CONNECT ||
		    l->state == FETCH_LOCAL_STATE_CLOSED)
			return;
		fetch_local_reply(l);
		if (l->dead || l->zombie)
			return;
		fetch_reply_reset(&l->reply);
	}
}

/* fetch_local_io - the one callback for everything on the connection */
static void
fetch_local_io(struct io *io, enum io_event ev, void *arg)
{
	struct fetch_local *l = arg;

	l->depth++;
	fetch_local_event(l, io, ev);
	if (--l->depth == 0 && l->zombie)
		fetch_local_destroy(l);	/* freed by the owner meanwhile */
}

/* fetch_local_event - one io event, by kind */
static void
fetch_local_event(struct fetch_local *l, struct io *io, enum io_event ev)
{
	const char *what = fetch_local_state_descriptions[l->state];

	switch (ev) {
	case IO_CONNECTED:
		if (!l->lmtp) {
			/* TCP only: --lmtp is a UNIX-domain socket */
			(void)io_set_nodelay(io, 1);
			/* a local MTA that writes its replies in pieces with
			 * Nagle's algorithm on (smtp-sink does) would
			 * otherwise wait for our delayed ACK whenever we
			 * have nothing to send */
			io_set_quickack(io, 1);
		}
		log_debug("local=%s event=local-connected", l->name);
		fetch_local_enter_state(l, FETCH_LOCAL_STATE_GREETING);
		break;
	case IO_DATAIN:
		fetch_local_input(l);
		break;
	case IO_LOWAT:
		if (l->state == FETCH_LOCAL_STATE_READY && !l->dead)
			l->ops->drained(l->arg);
		break;
	case IO_DISCONNECTED:
		if (l->state == FETCH_LOCAL_STATE_QUIT)
			fetch_local_closed(l);
		else
			fetch_local_lost(l, "local MTA closed the connection "
			    "while %s", what);
		break;
	case IO_TIMEOUT:
		if (l->state == FETCH_LOCAL_STATE_READY && l->owed == 0 &&
		    io_queued(io) == 0)
			break;	/* idle: nothing is awaited */
		if (l->state == FETCH_LOCAL_STATE_QUIT) {
			fetch_local_closed(l);
			break;
		}
		fetch_local_lost(l, "timeout (%u s) while %s",
		    l->timeout_ms / 1000, what);
		break;
	case IO_ERROR:
		if (l->state == FETCH_LOCAL_STATE_CONNECT)
			fetch_local_lost(l, "cannot connect: %s", io_error(io));
		else if (l->state == FETCH_LOCAL_STATE_QUIT)
			fetch_local_closed(l);
		else
			fetch_local_lost(l, "connection error while %s: %s",
			    what, io_error(io));
		break;
	case IO_TLSREADY:
		break;
	}
}

/* fetch_local_start - connect to the local MTA; ready() or lost() follows */
struct fetch_local *
fetch_local_start(const struct fetch_local_params *p,
    const struct fetch_local_ops *ops, void *arg)
{
	struct fetch_local *l = xcalloc(1, sizeof(*l));
	struct sockaddr_un sun;

	l->ops = ops;
	l->arg = arg;
	l->timeout_ms = p->timeout_ms;
	l->helo = xstrdup(p->helo);
	l->later = loop_timer_new(fetch_local_later_fire, l);
	fetch_reply_reset(&l->reply);
	l->state = FETCH_LOCAL_STATE_CONNECT;
	if (p->path != NULL) {
		l->lmtp = 1;
		l->path = xstrdup(p->path);
		(void)snprintf(l->name, sizeof(l->name), "unix:%s", p->path);
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlcpy(sun.sun_path, p->path, sizeof(sun.sun_path)) >=
		    sizeof(sun.sun_path)) {
			fetch_local_fail_later(l, "the LMTP socket path is "
			    "too long");
			return l;
		}
		l->io = io_connect_addr((struct sockaddr *)&sun, sizeof(sun),
		    p->timeout_ms, fetch_local_io, l);
	} else {
		l->host = xstrdup(p->host);
		l->port = p->port;
		(void)snprintf(l->name, sizeof(l->name), "%s%s%s:%u",
		    strchr(p->host, ':') != NULL ? "[" : "", p->host,
		    strchr(p->host, ':') != NULL ? "]" : "", p->port);
		l->io = io_connect(p->host, p->port, p->timeout_ms,
		    fetch_local_io, l);
	}
	io_set_timeout(l->io, l->timeout_ms);
	return l;
}

/* fetch_local_free - close and release; clears the caller's pointer */
void
fetch_local_free(struct fetch_local **lp)
{
	struct fetch_local *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	l->dead = 1;
	if (l->depth > 0) {
		/* inside one of our callbacks: released on the way out */
		l->zombie = 1;
		return;
	}
	fetch_local_destroy(l);
}

/* fetch_local_destroy - release everything */
static void
fetch_local_destroy(struct fetch_local *l)
{
	io_free(&l->io);
	loop_timer_free(&l->later);
	free(l->host);
	free(l->path);
	free(l->helo);
	free(l);
}
