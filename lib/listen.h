/*
 * NAME
 *	listen 3h - bind listening sockets from a listen list, accept on the loop
 * SYNOPSIS
 *	#include "listen.h"
 * DESCRIPTION
 *	listen_bind() parses a comma-separated listen list ("[::]:25",
 *	"127.0.0.1:2525", "*:366", "[::]:25, 0.0.0.0:25"; each item split by
 *	conf_listen_item()) and binds and listens on one non-blocking,
 *	close-on-exec socket per item, with SO_REUSEADDR. It needs no event
 *	loop, so a daemon binds before it drops privileges and starts
 *	accepting later.
 *
 *	"[::]" and "*" are the IPv6 wildcard with IPV6_V6ONLY off, so one
 *	socket takes IPv4 too, unless the list also has an IPv4 item on the
 *	same port: then the wildcard is IPv6 only and the IPv4 item gets its
 *	own socket. Where the host has no IPv6, a wildcard falls back to
 *	0.0.0.0. Any other IPv6 address is IPv6 only.
 *
 *	listen_start() accepts connections on the loop: cb(fd, peer, arg)
 *	gets each new non-blocking, close-on-exec socket, which it owns,
 *	and the peer address as text (io_addr_text() form). When accept()
 *	fails for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM), cb
 *	is called with fd -1 and the error text in peer, and accepting
 *	stops for a second rather than spinning. cb may pause or resume
 *	the listener but must not free it.
 *
 *	listen_pause() stops accepting (max_connections reached) and
 *	listen_resume() starts again; connections wait in the kernel
 *	backlog meanwhile. listen_count() and listen_addr() describe the
 *	bound sockets ("[::]:25") for logs. listen_free() closes them all.
 * DIAGNOSTICS
 *	listen_bind() and listen_start() return -1 and an allocated message
 *	through error_r, naming the listen item and the address: "cannot
 *	bind 127.0.0.1:25: address already in use (another server is
 *	listening there)". Nothing is logged.
 * SEE ALSO
 *	conf(3), io(3)
 */
#ifndef LIB_LISTEN_H
#define LIB_LISTEN_H

#include <stddef.h>

#define LISTEN_BACKLOG	128

struct listen;
typedef void (*listen_cb)(int fd, const char *peer, void *arg);

int		 listen_bind(const char *spec, struct listen **lp,
		    char **error_r);
int		 listen_start(struct listen *, listen_cb cb, void *arg,
		    char **error_r);
void		 listen_pause(struct listen *);
void		 listen_resume(struct listen *);
size_t		 listen_count(const struct listen *);
const char	*listen_addr(const struct listen *, size_t i);
void		 listen_free(struct listen **);

#endif
