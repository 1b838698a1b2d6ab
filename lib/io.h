/*
 * NAME
 *	io 3h - buffered, optionally TLS, connection with one event callback
 * SYNOPSIS
 *	#include "io.h"
 * DESCRIPTION
 *	A struct io wraps one connected, non-blocking stream socket on the
 *	process loop (loop 3h). Everything that happens to it is reported
 *	through one callback, cb(io, event, arg), with an enum io_event,
 *	as in OpenSMTPD's io.c. The callback may free the io.
 *
 *	io_new() takes over fd (it is closed by io_free()). io_connect()
 *	connects to host:port: a host name is resolved in a worker thread,
 *	never on the loop, and each address is tried in turn, each attempt
 *	limited to timeout_ms. io_connect_addr() connects to one address.
 *	Either reports IO_CONNECTED, or IO_ERROR with io_error() naming
 *	the address and the reason (a connect timeout included). The
 *	callback is never called from inside io_new() or io_connect*().
 *	io_free() during a lookup is safe: the lookup thread finishes and
 *	its answer is dropped (but loop_free() must wait for it, or the
 *	request leaks).
 *
 *	Events:
 *	IO_CONNECTED	an outbound connection is up.
 *	IO_TLSREADY	the TLS handshake finished; see io_tls_info().
 *	IO_DATAIN	input arrived: call io_getline() until it returns
 *			NULL, or use io_data()/io_datalen()/io_drop().
 *	IO_LOWAT	output queued since the last IO_LOWAT drained to the
 *			low-water mark (io_set_lowat, default 0: all
 *			handed to the kernel, TLS records included), so
 *			"reply, then close on IO_LOWAT" loses nothing.
 *	IO_DISCONNECTED	the peer closed the connection (for TLS: without
 *			close_notify too; SMTP has its own end marker).
 *	IO_TIMEOUT	no input for the timeout while reading was on, or
 *			output stuck that long. Reading and writing stay on:
 *			the callback decides whether to close.
 *	IO_ERROR	a socket or TLS error; io_error() gives the text.
 *
 *	Input is bounded: the io stops reading while io_input_max (default
 *	IO_INPUT_MAX) octets are buffered. io_getline() returns the next
 *	line without its line ending, NUL-terminated (it may contain NULs:
 *	use *len), stored in the io until the next call. Lines end in CRLF;
 *	a bare LF is accepted too and io_bare_lf() then returns 1 for that
 *	line, so a server can refuse it (RFC 5321 section 2.3.8). A line
 *	longer than max octets is reported once, as soon as it is seen,
 *	with *toolong set and an empty string, and the rest of it up to and
 *	including its LF is then discarded as it arrives, so a peer cannot
 *	grow our memory. io_data() returns the buffered input as one block
 *	of io_datalen() octets, io_drop() consumes some of it.
 *
 *	Output can be bounded too: after io_set_output_max(io, n), the io
 *	stops reading while more than n octets of output wait to be sent
 *	(a peer that sends without reading cannot make us queue without
 *	end), io_output_full() returns 1, and once half of them have gone
 *	it reads again and reports IO_DATAIN for input already buffered.
 *	A caller that takes several commands from buffered input checks
 *	io_output_full() before each. 0, the default, is no bound.
 *
 *	io_pause_read() stops reading (for instance while the queue commits
 *	a message); io_resume_read() restarts it and, when complete input
 *	is already buffered, reports IO_DATAIN again from the loop.
 *
 *	io_discard_input() throws away buffered input and returns how much.
 *	RFC 3207 forbids acting on plaintext pipelined after STARTTLS, so
 *	io_starttls_server() and io_starttls_client() fail while any input
 *	is buffered: the caller must call io_discard_input() first (and may
 *	log what it threw away). Output already queued (the "220 Ready to
 *	start TLS" reply) is still sent in plaintext before the handshake.
 *	IO_TLSREADY or IO_ERROR follows. io_starttls_client() checks the
 *	server's name against servername (RFC 6125/7817) and sends it as
 *	SNI; with a NULL servername neither is done.
 *
 *	io_tls_shutdown() sends TLS close_notify (RFC 8446 section 6.1) and
 *	reports IO_LOWAT once it has been handed to the kernel, so that
 *	"QUIT, 221, close_notify, close" ends a session cleanly; it returns
 *	-1 on a connection without TLS.
 *
 *	io_set_line_records() makes a TLS connection send every line of
 *	output in a TLS record of its own. fetchmail relays an ODMR session
 *	by reading one line per record: lines after the first in a record
 *	wait in its TLS buffer for ever. It costs a record per line.
 *
 *	io_cork() holds back partial segments (TCP_CORK) while the SMTP
 *	client queues a pipelined group of commands; io_uncork() sends them.
 *	io_set_nodelay() turns Nagle's algorithm off.
 *	io_set_quickack() makes the io acknowledge every read at once
 *	(Linux TCP_QUICKACK, which the kernel drops again after a while, so
 *	the io sets it anew after each read): for a peer that writes its
 *	replies in pieces with Nagle's algorithm on, whose next piece
 *	would otherwise wait for our delayed ACK (up to 40 ms) whenever we
 *	have nothing to send. Elsewhere it does nothing.
 *
 *	io_peer_addr() is the peer's address as text ("192.0.2.1",
 *	"2001:db8::1"; an IPv4-mapped IPv6 address is shown as IPv4) and
 *	io_peer_port() its port. io_addr_text() formats any socket address
 *	the same way.
 * DIAGNOSTICS
 *	Functions returning int return 0 or -1; after -1 io_error() says
 *	why. Nothing is logged.
 * SEE ALSO
 *	loop(3), tls(3), listen(3), RFC 3207
 */
#ifndef LIB_IO_H
#define LIB_IO_H

#include <sys/socket.h>

#include <stdarg.h>
#include <stddef.h>

#include "tls.h"

#define IO_INPUT_MAX		(64 * 1024)	/* default input bound, octets */
#define IO_TLS_SUBJECT_MAX	256		/* peer subject, with NUL */
#define IO_TLS_CN_MAX		65		/* peer subject CN, with NUL */
#define IO_ADDR_MAX		46		/* INET6_ADDRSTRLEN */

enum io_event {
	IO_CONNECTED = 0,
	IO_TLSREADY,
	IO_DATAIN,
	IO_LOWAT,
	IO_DISCONNECTED,
	IO_TIMEOUT,
	IO_ERROR,
};
extern const char *const io_event_names[];

struct io;
typedef void (*io_cb)(struct io *, enum io_event, void *arg);

struct io_tls_info {
	const char	*version;	/* "TLSv1.3" */
	const char	*cipher;	/* "TLS_AES_256_GCM_SHA384" */
	int		 bits;		/* secret bits of the cipher */
	int		 peer_cert;	/* the peer sent a certificate */
	int		 peer_verified;	/* ... and it verified (and matched
					   the name, for a client) */
	const char	*verify_error;	/* why not, or "ok" */
	char		 subject[IO_TLS_SUBJECT_MAX];	/* "" without one */
	char		 cn[IO_TLS_CN_MAX];	/* the subject's one commonName,
					   UTF-8; "" without exactly one, or
					   with a NUL or a longer one */
};

struct io	*io_new(int fd, io_cb cb, void *arg);
struct io	*io_connect(const char *host, unsigned port,
		    unsigned timeout_ms, io_cb cb, void *arg);
struct io	*io_connect_addr(const struct sockaddr *, socklen_t,
		    unsigned timeout_ms, io_cb cb, void *arg);
void		 io_free(struct io **);
void		 io_set_callback(struct io *, io_cb cb, void *arg);
const char	*io_error(const struct io *);

void		 io_set_timeout(struct io *, unsigned ms);
void		 io_set_lowat(struct io *, size_t);
void		 io_set_input_max(struct io *, size_t);
void		 io_set_output_max(struct io *, size_t);
int		 io_output_full(const struct io *);

int		 io_write(struct io *, const void *, size_t);
int		 io_printf(struct io *, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
int		 io_vprintf(struct io *, const char *fmt, va_list)
		    __attribute__((format(printf, 2, 0)));
size_t		 io_queued(const struct io *);

char		*io_getline(struct io *, size_t max, size_t *len,
		    int *toolong);
int		 io_bare_lf(const struct io *);
const void	*io_data(struct io *);
size_t		 io_datalen(const struct io *);
void		 io_drop(struct io *, size_t);
size_t		 io_discard_input(struct io *);

void		 io_pause_read(struct io *);
void		 io_resume_read(struct io *);
int		 io_set_nodelay(struct io *, int on);
void		 io_set_quickack(struct io *, int on);
int		 io_cork(struct io *);
int		 io_uncork(struct io *);

const char	*io_peer_addr(const struct io *);
int		 io_addr_text(const struct sockaddr *, char *, size_t,
		    unsigned *port);
unsigned	 io_peer_port(const struct io *);

int		 io_starttls_server(struct io *, struct tls_ctx *);
int		 io_starttls_client(struct io *, struct tls_ctx *,
		    const char *servername);
int		 io_is_tls(const struct io *);
int		 io_tls_shutdown(struct io *);
void		 io_set_line_records(struct io *, int on);
int		 io_tls_info(const struct io *, struct io_tls_info *);

#endif
