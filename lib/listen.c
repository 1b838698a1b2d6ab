/*
 * NAME
 *	listen 3 - bind listening sockets from a listen list, accept on the loop
 * SYNOPSIS
 *	#include "listen.h"
 * DESCRIPTION
 *	See listen.h. Binding and accepting are separate steps because the
 *	daemon binds privileged ports as root and accepts after dropping
 *	privileges. Accepting drains up to LISTEN_ACCEPT_BATCH connections
 *	per wake-up so that one busy listener cannot starve the others, and
 *	backs off for LISTEN_BACKOFF_MS when the process runs out of
 *	descriptors, where a level-triggered listener would otherwise spin.
 * SEE ALSO
 *	conf(3), io(3)
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "io.h"
#include "listen.h"
#include "loop.h"
#include "loop_private.h"
#include "xmalloc.h"

#define LISTEN_ITEMS_MAX	64	/* listen items in one list */
#define LISTEN_ACCEPT_BATCH	64	/* accept() calls per wake-up */
#define LISTEN_BACKOFF_MS	1000	/* pause after EMFILE and the like */
#define LISTEN_TEXT_MAX		(IO_ADDR_MAX + 8)	/* "[addr]:port" */

struct listen_item {
	char		 addr[IO_ADDR_MAX];	/* "" for "*" */
	unsigned	 port;
	int		 af;
	int		 wildcard6;		/* "[::]" or "*" */
};

struct listen_sock {
	struct listen	*l;
	int		 fd;
	struct event	*ev;
	char		 text[LISTEN_TEXT_MAX];
};

struct listen {
	struct listen_sock	*socks;
	size_t			 n;
	listen_cb		 cb;
	void			*arg;
	int			 started;
	int			 paused;
	int			 backoff;
	struct event		*backoff_ev;
};

/* listen_parse - split a listen list into items */
static int
listen_parse(const char *spec, struct listen_item *items, size_t *np,
    char **error_r)
{
	const char *p = spec, *end, *why;
	size_t n = 0, len;
	unsigned char a[sizeof(struct in6_addr)];

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (n == LISTEN_ITEMS_MAX) {
			*error_r = xasprintf("listen list '%s': more than %d "
			    "items", spec, LISTEN_ITEMS_MAX);
			return -1;
		}
		if (conf_listen_item(p, len, items[n].addr,
		    sizeof(items[n].addr), &items[n].port, &why) != 0) {
			*error_r = xasprintf("listen item '%.*s': %s",
			    (int)(len > 64 ? 64 : len), p, why);
			return -1;
		}
		if (items[n].addr[0] == '\0' ||
		    (inet_pton(AF_INET6, items[n].addr, a) == 1 &&
		    IN6_IS_ADDR_UNSPECIFIED((struct in6_addr *)(void *)a))) {
			(void)snprintf(items[n].addr, sizeof(items[n].addr),
			    "::");
			items[n].af = AF_INET6;
			items[n].wildcard6 = 1;
		} else {
			items[n].af = strchr(items[n].addr, ':') != NULL ?
			    AF_INET6 : AF_INET;
			items[n].wildcard6 = 0;
		}
		n++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	*np = n;
	return 0;
}

/* listen_bind_error - a bind() failure, in words an operator can act on */
static char *
listen_bind_error(const char *text, int err)
{
	switch (err) {
	case EADDRINUSE:
		return xasprintf("cannot bind %s: address already in use "
		    "(is another server listening there?)", text);
	case EADDRNOTAVAIL:
		return xasprintf("cannot bind %s: not an address of this "
		    "host", text);
	case EACCES:
		return xasprintf("cannot bind %s: permission denied (ports "
		    "below 1024 need root)", text);
	default:
		return xasprintf("cannot bind %s: %s", text, strerror(err));
	}
}

/* listen_one - bind and listen on one address; 1 when skipped */
static int
listen_one(struct listen *l, const struct listen_item *it, int v6only,
    char **error_r)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct listen_sock *s;
	socklen_t len;
	int af = it->af, fd, on = 1, err, rc;
	char text[LISTEN_TEXT_MAX];

	rc = snprintf(text, sizeof(text), af == AF_INET6 ? "[%s]:%u" :
	    "%s:%u", it->addr, it->port);
	if (rc < 0 || (size_t)rc >= sizeof(text)) {
		*error_r = xasprintf("listen address %s too long", it->addr);
		return -1;
	}
	fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && af == AF_INET6 && it->wildcard6 &&
	    errno == EAFNOSUPPORT) {
		if (v6only)
			return 1;	/* the IPv4 items cover IPv4 */
		af = AF_INET;	/* no IPv6 on this host: all of IPv4 */
		(void)snprintf(text, sizeof(text), "0.0.0.0:%u", it->port);
		fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	}
	if (fd < 0) {
		*error_r = xasprintf("cannot bind %s: socket: %s", text,
		    strerror(errno));
		return -1;
	}
	memset(&ss, 0, sizeof(ss));
	if (af == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)it->port);
		if (af == it->af)
			inet_pton(AF_INET, it->addr, &sin->sin_addr);
		else
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)it->port);
		inet_pton(AF_INET6, it->addr, &sin6->sin6_addr);
		len = sizeof(*sin6);
		on = v6only;
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on)) != 0) {
			err = errno;
			close(fd);
			*error_r = xasprintf("cannot bind %s: IPV6_V6ONLY: %s",
			    text, strerror(err));
			return -1;
		}
		on = 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0 ||
	    listen(fd, LISTEN_BACKLOG) != 0) {
		err = errno;
		close(fd);
		*error_r = listen_bind_error(text, err);
		return -1;
	}
	l->socks = xreallocarray(l->socks, l->n + 1, sizeof(*l->socks));
	s = &l->socks[l->n++];
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	(void)snprintf(s->text, sizeof(s->text), "%s", text);
	return 0;
}

/* listen_bind - parse a listen list and bind every item */
int
listen_bind(const char *spec, struct listen **lp, char **error_r)
{
	struct listen_item items[LISTEN_ITEMS_MAX];
	struct listen *l;
	size_t n, i, j;

	*lp = NULL;
	if (listen_parse(spec, items, &n, error_r) != 0)
		return -1;
	l = xcalloc(1, sizeof(*l));
	for (i = 0; i < n; i++) {
		int v6only = 1;

		if (items[i].wildcard6) {
			/* dual stack unless IPv4 has its own item here */
			v6only = 0;
			for (j = 0; j < n; j++)
				if (items[j].af == AF_INET &&
				    items[j].port == items[i].port)
					v6only = 1;
		}
		if (listen_one(l, &items[i], v6only, error_r) < 0) {
			listen_free(&l);
			return -1;
		}
	}
	*lp = l;
	return 0;
}

/* listen_arm - add or delete every accept event */
static void
listen_arm(struct listen *l)
{
	int on = l->started && !l->paused && !l->backoff;

	for (size_t i = 0; i < l->n; i++) {
		if (l->socks[i].ev == NULL)
			continue;
		if (on)
			event_add(l->socks[i].ev, NULL);
		else
			event_del(l->socks[i].ev);
	}
}

/* listen_backoff_end - resources may be back: accept again */
static void
listen_backoff_end(evutil_socket_t fd, short what, void *arg)
{
	struct listen *l = arg;

	(void)fd;
	(void)what;
	l->backoff = 0;
	listen_arm(l);
}

/* listen_accept - accept waiting connections and hand them over */
static void
listen_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct listen_sock *s = arg;
	struct listen *l = s->l;
	struct sockaddr_storage ss;
	socklen_t len;
	char peer[IO_ADDR_MAX], msg[256];
	unsigned port;
	int fd;

	(void)what;
	for (int i = 0; i < LISTEN_ACCEPT_BATCH; i++) {
		if (l->paused || l->backoff)
			return;
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = errno;

			switch (err) {
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;	/* that peer gave up */
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				l->backoff = 1;
				listen_arm(l);
				{
					struct timeval tv;

					loop_ms_to_tv(LISTEN_BACKOFF_MS, &tv);
					evtimer_add(l->backoff_ev, &tv);
				}
				break;
			default:
				break;
			}
			(void)snprintf(msg, sizeof(msg), "accept on %s: %s%s",
			    s->text, strerror(err), l->backoff ?
			    " (pausing for a second)" : "");
			l->cb(-1, msg, l->arg);
			return;
		}
		if (io_addr_text((struct sockaddr *)&ss, peer, sizeof(peer),
		    &port) != 0)
			(void)snprintf(peer, sizeof(peer), "unknown");
		l->cb(fd, peer, l->arg);
	}
}

/* listen_start - accept on the loop, calling cb for each connection */
int
listen_start(struct listen *l, listen_cb cb, void *arg, char **error_r)
{
	struct event_base *base = loop_event_base();

	if (base == NULL) {
		*error_r = xstrdup("listen_start: no event loop");
		return -1;
	}
	if (l->started) {
		*error_r = xstrdup("listen_start: already accepting");
		return -1;
	}
	l->cb = cb;
	l->arg = arg;
	if ((l->backoff_ev = evtimer_new(base, listen_backoff_end, l)) == NULL) {
		*error_r = xstrdup("listen_start: cannot create a timer");
		return -1;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct listen_sock *s = &l->socks[i];

		s->l = l;
		s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST,
		    listen_accept, s);
		if (s->ev == NULL) {
			*error_r = xasprintf("listen_start: cannot watch %s",
			    s->text);
			return -1;
		}
	}
	l->started = 1;
	listen_arm(l);
	return 0;
}

/* listen_pause - stop accepting; the kernel backlog holds new peers */
void
listen_pause(struct listen *l)
{
	l->paused = 1;
	listen_arm(l);
}

/* listen_resume - accept again */
void
listen_resume(struct listen *l)
{
	l->paused = 0;
	listen_arm(l);
}

/* listen_count - how many sockets are bound */
size_t
listen_count(const struct listen *l)
{
	return l->n;
}

/* listen_addr - one bound socket as text, "[::]:25" */
const char *
listen_addr(const struct listen *l, size_t i)
{
	return i < l->n ? l->socks[i].text : NULL;
}

/* listen_free - close every socket and clear the pointer */
void
listen_free(struct listen **lp)
{
	struct listen *l = *lp;

	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		if (l->socks[i].ev != NULL)
			event_free(l->socks[i].ev);
		close(l->socks[i].fd);
	}
	if (l->backoff_ev != NULL)
		event_free(l->backoff_ev);
	free(l->socks);
	free(l);
	*lp = NULL;
}
