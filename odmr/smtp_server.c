/*
 * NAME
 *	smtp_server 3 - the MX listener: accepts clients, counts them
 * SYNOPSIS
 *	#include "smtp_session.h"
 * DESCRIPTION
 *	smtp_server_new() takes the sockets that odmrd bound on
 *	smtp_listen before it dropped privileges; smtp_server_start()
 *	accepts on them. Each client gets a session (smtp_session_new()).
 *
 *	Connections are counted in total and per client address. A client
 *	over max_connections or max_connections_per_ip is told so with
 *	421 4.7.0 (RFC 5321 section 3.8) and disconnected at once, before
 *	any session exists for it; the reply is one small write to a fresh
 *	socket, which the kernel takes whole. Far beyond the limit (twice
 *	it) the listener pauses instead, so a flood cannot take every file
 *	descriptor; it resumes as sessions end.
 *
 *	smtp_server_shutdown() closes the listeners and asks every session
 *	to end at its next idle point; smtp_server_abort() ends them all
 *	now. When the last session is gone during a shutdown, the server
 *	calls odmrd_server_idle().
 * SEE ALSO
 *	smtp_session(3), listen(3), odmrd(8)
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "listen.h"
#include "log.h"
#include "xmalloc.h"

#include "odmrd.h"
#include "smtp_session.h"

#define SMTP_SERVER_IP_BUCKETS	1024

struct smtp_server_ip {
	char		 addr[64];
	size_t		 count;
	struct smtp_server_ip *next;
};

struct smtp_server {
	struct odmrd	*d;
	struct listen	*listen;
	enum smtp_mode	 mode;
	int		 implicit_tls;
	char		 name[16];	/* "smtp", "odmr", "odmrs": for logs */
	int		 paused;
	int		 draining;
	struct smtp_session *sessions;
	size_t		 nsessions;
	struct smtp_server_ip *ip[SMTP_SERVER_IP_BUCKETS];
};

/* smtp_server_ip_slot - the bucket of a client address (FNV-1a) */
static struct smtp_server_ip **
smtp_server_ip_slot(struct smtp_server *srv, const char *addr)
{
	uint32_t h = 2166136261u;
	const unsigned char *p;

	for (p = (const unsigned char *)addr; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return &srv->ip[h % SMTP_SERVER_IP_BUCKETS];
}

/* smtp_server_ip_find - the count of an address, or NULL */
static struct smtp_server_ip *
smtp_server_ip_find(struct smtp_server *srv, const char *addr)
{
	struct smtp_server_ip *e;

	for (e = *smtp_server_ip_slot(srv, addr); e != NULL; e = e->next)
		if (strcmp(e->addr, addr) == 0)
			return e;
	return NULL;
}

/* smtp_server_ip_add - count one more connection from addr */
static void
smtp_server_ip_add(struct smtp_server *srv, const char *addr)
{
	struct smtp_server_ip **slot, *e;

	if ((e = smtp_server_ip_find(srv, addr)) == NULL) {
		slot = smtp_server_ip_slot(srv, addr);
		e = xcalloc(1, sizeof(*e));
		(void)strlcpy(e->addr, addr, sizeof(e->addr));
		e->next = *slot;
		*slot = e;
	}
	e->count++;
}

/* smtp_server_ip_del - count one connection from addr less */
static void
smtp_server_ip_del(struct smtp_server *srv, const char *addr)
{
	struct smtp_server_ip **pp, *e;

	for (pp = smtp_server_ip_slot(srv, addr); (e = *pp) != NULL;
	    pp = &e->next)
		if (strcmp(e->addr, addr) == 0) {
			if (--e->count == 0) {
				*pp = e->next;
				free(e);
			}
			return;
		}
}

/* smtp_server_refuse - 421 to a client we will not serve, and close */
static void
smtp_server_refuse(struct smtp_server *srv, int fd, const char *peer,
    const char *why)
{
	char reply[512];
	int n;

	log_info("event=reject service=%s client=%s code=421 reason=\"%s\"",
	    srv->name, peer, why);
	n = snprintf(reply, sizeof(reply), "421 4.7.0 %s Error: %s, try again"
	    " later\r\n", srv->d->conf->hostname, why);
	if (n > 0 && (size_t)n < sizeof(reply))
		(void)write(fd, reply, (size_t)n);
	close(fd);
}

/* smtp_server_accept - a new client: check the limits, start a session */
static void
smtp_server_accept(int fd, const char *peer, void *arg)
{
	struct smtp_server *srv = arg;
	const struct odmr_conf *c = srv->d->conf;
	struct smtp_server_ip *e;
	struct smtp_session *s;
	char why[128];

	if (fd == -1) {
		log_warnx("event=accept-error reason=\"%s\"", peer);
		return;
	}
	if (srv->draining) {
		smtp_server_refuse(srv, fd, peer, "service shutting down");
		return;
	}
	if (srv->nsessions >= c->max_connections) {
		smtp_server_refuse(srv, fd, peer, "too many connections");
		if (srv->nsessions >= 2 * c->max_connections && !srv->paused) {
			log_warnx("event=listener-paused sessions=%zu",
			    srv->nsessions);
			listen_pause(srv->listen);
			srv->paused = 1;
		}
		return;
	}
	e = smtp_server_ip_find(srv, peer);
	if (e != NULL && e->count >= c->max_connections_per_ip) {
		(void)snprintf(why, sizeof(why), "too many connections from"
		    " %s", peer);
		smtp_server_refuse(srv, fd, peer, why);
		return;
	}
	if ((s = smtp_session_new(srv->d, srv, fd, peer, srv->mode,
	    srv->implicit_tls)) == NULL)
		return;		/* the session closed fd */
	smtp_server_ip_add(srv, s->addr);
	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;
}

/* smtp_server_new - a server over sockets bound by odmrd */
struct smtp_server *
smtp_server_new(struct odmrd *d, struct listen *l, enum smtp_mode mode,
    int implicit_tls, const char *name)
{
	struct smtp_server *srv;

	srv = xcalloc(1, sizeof(*srv));
	srv->d = d;
	srv->listen = l;
	srv->mode = mode;
	srv->implicit_tls = implicit_tls;
	(void)strlcpy(srv->name, name, sizeof(srv->name));
	return srv;
}

/* smtp_server_name - "smtp", "odmr" or "odmrs", for logs */
const char *
smtp_server_name(const struct smtp_server *srv)
{
	return srv->name;
}

/* smtp_server_start - accept connections on the loop */
int
smtp_server_start(struct smtp_server *srv, char **error_r)
{
	return listen_start(srv->listen, smtp_server_accept, srv, error_r);
}

/* smtp_server_session_gone - a session ended: uncount it */
void
smtp_server_session_gone(struct smtp_server *srv, struct smtp_session *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	srv->nsessions--;
	smtp_server_ip_del(srv, s->addr);
	if (srv->paused && srv->listen != NULL &&
	    srv->nsessions < srv->d->conf->max_connections) {
		listen_resume(srv->listen);
		srv->paused = 0;
	}
	if (srv->draining && srv->nsessions == 0)
		odmrd_server_idle(srv->d);
}

/* smtp_server_shutdown - stop accepting; sessions end when idle */
void
smtp_server_shutdown(struct smtp_server *srv)
{
	struct smtp_session *s, *next;

	srv->draining = 1;
	listen_free(&srv->listen);
	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;	/* the session may end right here */
		smtp_session_shutdown(s);
	}
	if (srv->nsessions == 0)
		odmrd_server_idle(srv->d);
}

/* smtp_server_abort - end every session now */
void
smtp_server_abort(struct smtp_server *srv)
{
	struct smtp_session *s, *next;

	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		smtp_session_abort(s);
	}
}

/* smtp_server_count - sessions that exist, store jobs included */
size_t
smtp_server_count(const struct smtp_server *srv)
{
	return srv->nsessions;
}

/* smtp_server_free - release the server; its sessions must be gone */
void
smtp_server_free(struct smtp_server **srvp)
{
	struct smtp_server *srv = *srvp;
	struct smtp_server_ip *e, *next;
	size_t i;

	if (srv == NULL)
		return;
	*srvp = NULL;
	listen_free(&srv->listen);
	for (i = 0; i < SMTP_SERVER_IP_BUCKETS; i++)
		for (e = srv->ip[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(srv);
}
