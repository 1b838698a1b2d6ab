/*
 * NAME
 *	io-echo 1 - line echo server and client on loop, io, listen and tls
 * SYNOPSIS
 *	io-echo -l LISTEN [--cert F --key F] [--starttls|--implicit-tls]
 *	    [--require-tls] [--max-line N] [--input-max N] [--timeout MS]
 *	    [--post] [--max-conns N]
 *	io-echo --connect HOST:PORT [--starttls] [--ca F] [--verify]
 *	    [--servername NAME] [--timeout MS] LINE...
 * DESCRIPTION
 *	A test helper for test-io.sh. In its first form it listens on the
 *	listen list LISTEN (listen 3h syntax), prints "listening" on
 *	standard output once it accepts, and answers each input line:
 *
 *	TOOLONG		the line was longer than --max-line (default 1000)
 *	LINE text	a line that ended in CRLF
 *	BARELF text	a line that ended in a bare LF
 *	POSTED text	in --post mode, instead of LINE: the reply was made
 *			by a worker thread and came back through loop_post();
 *			reading is paused meanwhile, so pipelined lines
 *			exercise io_resume_read()
 *	530 TLS first	with --require-tls, any line but STARTTLS before TLS
 *
 *	and these commands: STARTTLS ("220 go", then the TLS handshake;
 *	plaintext pipelined after it is discarded and counted on standard
 *	error), TLSINFO, PEER, DELAY ms text (a one-shot timer), TICK n
 *	(a periodic timer, n lines), QUIT ("221 bye", then close once the
 *	reply is written). --implicit-tls starts TLS on accept. --timeout
 *	closes an idle connection with "421 timeout". --max-conns pauses
 *	the listener while that many connections are open. SIGHUP reloads
 *	the certificate into a fresh context; SIGTERM exits cleanly, freeing
 *	everything (for valgrind).
 *
 *	In its second form it connects (io_connect), optionally upgrades
 *	with STARTTLS (verifying the certificate against --ca and the name
 *	--servername with --verify), prints "TLS version cipher verified=N"
 *	on standard output, sends each LINE, prints each reply, sends QUIT
 *	and exits.
 * DIAGNOSTICS
 *	Exit status 0 on success, 1 on a connection or TLS error, 2 on a
 *	usage error.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "io.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "tls.h"
#include "xmalloc.h"

#define ECHO_MAX_LINE		1000		/* default --max-line */
#define ECHO_OUT_MAX		(256 * 1024)	/* pause reading above */
#define ECHO_TEXT_MAX		512		/* DELAY text kept */

struct conn {
	struct conn		*next, *prev;
	unsigned long		 id;
	struct io		*io;
	int			 closing;
	int			 wait_post;
	int			 wait_out;
	struct loop_timer	*delay;
	struct loop_timer	*tick;
	int			 ticks;
	char			 delay_text[ECHO_TEXT_MAX];
};

struct job {
	struct job		*next;
	unsigned long		 id;
	pthread_t		 loop_thread;
	int			 off_loop;
	char			*text;
};

static struct {
	const char	*cert, *key, *ca, *servername;
	int		 starttls, implicit_tls, require_tls, post, verify;
	size_t		 max_line, input_max;
	unsigned	 timeout_ms;
	unsigned	 max_conns;
} opt = { .max_line = ECHO_MAX_LINE };

static struct tls_ctx	*server_tls;
static struct listen	*listener;
static struct conn	*conns;
static unsigned		 nconns;
static unsigned long	 next_id = 1;
static int		 listener_paused;

static pthread_mutex_t	 work_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 work_cv = PTHREAD_COND_INITIALIZER;
static struct job	*work_head, **work_tail = &work_head;
static int		 work_stop;
static pthread_t	 worker, loop_thread;

static void	echo_io(struct io *, enum io_event, void *);
static void	echo_posted(void *);

/* usage - print the synopsis and exit 2 */
static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: io-echo -l LISTEN [--cert F --key F] "
	    "[--starttls|--implicit-tls] [--require-tls] [--max-line N] "
	    "[--input-max N] [--timeout MS] [--post] [--max-conns N]\n"
	    "       io-echo --connect HOST:PORT [--starttls] [--ca F] "
	    "[--verify] [--servername NAME] LINE...\n");
	exit(2);
}

/* conn_find - the live connection with this id, or NULL */
static struct conn *
conn_find(unsigned long id)
{
	for (struct conn *c = conns; c != NULL; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

/* conn_free - the one teardown path of a connection */
static void
conn_free(struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	loop_timer_free(&c->delay);
	loop_timer_free(&c->tick);
	io_free(&c->io);
	free(c);
	nconns--;
	if (listener_paused && nconns < opt.max_conns) {
		listener_paused = 0;
		listen_resume(listener);
	}
}

/* conn_update_read - read unless waiting for the worker or the peer */
static void
conn_update_read(struct conn *c)
{
	if (c->wait_post || c->wait_out || c->closing)
		io_pause_read(c->io);
	else
		io_resume_read(c->io);
}

/* worker_main - the worker thread: make replies off the loop */
static void *
worker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&work_mtx);
	for (;;) {
		struct job *j;

		while (work_head == NULL && !work_stop)
			pthread_cond_wait(&work_cv, &work_mtx);
		if (work_head == NULL)
			break;
		j = work_head;
		if ((work_head = j->next) == NULL)
			work_tail = &work_head;
		pthread_mutex_unlock(&work_mtx);
		j->off_loop = !pthread_equal(pthread_self(), j->loop_thread);
		for (char *p = j->text; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		if (loop_post(echo_posted, j) != 0) {
			free(j->text);
			free(j);
		}
		pthread_mutex_lock(&work_mtx);
	}
	pthread_mutex_unlock(&work_mtx);
	return NULL;
}

/* echo_posted - on the loop: a worker's reply is back */
static void
echo_posted(void *arg)
{
	struct job *j = arg;
	struct conn *c = conn_find(j->id);

	if (c != NULL) {
		io_printf(c->io, "POSTED %s%s\r\n", j->text,
		    j->off_loop ? "" : " (ran on the loop thread!)");
		c->wait_post = 0;
		conn_update_read(c);
	}
	free(j->text);
	free(j);
}

/* echo_post - hand a line to the worker and wait for its reply */
static void
echo_post(struct conn *c, const char *line)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->id = c->id;
	j->loop_thread = loop_thread;
	j->text = xstrdup(line);
	c->wait_post = 1;
	conn_update_read(c);
	pthread_mutex_lock(&work_mtx);
	*work_tail = j;
	work_tail = &j->next;
	pthread_cond_signal(&work_cv);
	pthread_mutex_unlock(&work_mtx);
}

/* echo_delay_fire - the DELAY timer expired */
static void
echo_delay_fire(void *arg)
{
	struct conn *c = arg;

	io_printf(c->io, "DELAYED %s\r\n", c->delay_text);
}

/* echo_tick_fire - one period of the TICK timer */
static void
echo_tick_fire(void *arg)
{
	struct conn *c = arg;

	io_printf(c->io, "TICK %d\r\n", c->ticks);
	if (--c->ticks <= 0)
		loop_timer_free(&c->tick);	/* from its own callback */
}

/* echo_starttls - STARTTLS: reply, drop pipelined plaintext, upgrade */
static void
echo_starttls(struct conn *c)
{
	size_t dropped;

	if (server_tls == NULL || io_is_tls(c->io)) {
		io_printf(c->io, "454 TLS not available\r\n");
		return;
	}
	/* RFC 3207: anything the client sent after STARTTLS is void */
	if ((dropped = io_discard_input(c->io)) > 0)
		fprintf(stderr, "io-echo: conn=%lu discarded %zu octets of "
		    "plaintext pipelined after STARTTLS\n", c->id, dropped);
	io_printf(c->io, "220 go\r\n");
	if (io_starttls_server(c->io, server_tls) != 0) {
		fprintf(stderr, "io-echo: conn=%lu %s\n", c->id,
		    io_error(c->io));
		conn_free(c);
	}
}

/* echo_command - answer one line; 0 to go on, -1 when c is gone */
static int
echo_command(struct conn *c, char *line, size_t len, int toolong)
{
	struct io_tls_info ti;
	unsigned ms;
	int n;

	if (toolong) {
		io_printf(c->io, "TOOLONG\r\n");
		return 0;
	}
	if (strcmp(line, "STARTTLS") == 0) {
		echo_starttls(c);	/* may free c */
		return 1;	/* stop reading lines: TLS or gone */
	}
	if (opt.require_tls && !io_is_tls(c->io)) {
		io_printf(c->io, "530 TLS first\r\n");
		return 0;
	}
	if (strcmp(line, "QUIT") == 0) {
		io_printf(c->io, "221 bye\r\n");
		c->closing = 1;
		conn_update_read(c);
		return 1;
	}
	if (strcmp(line, "TLSINFO") == 0) {
		if (io_tls_info(c->io, &ti) != 0)
			io_printf(c->io, "NOTLS\r\n");
		else
			io_printf(c->io, "TLS %s %s %d verified=%d subject=%s\r\n",
			    ti.version, ti.cipher, ti.bits, ti.peer_verified,
			    ti.subject);
		return 0;
	}
	if (strcmp(line, "PEER") == 0) {
		io_printf(c->io, "PEER %s\r\n", io_peer_addr(c->io));
		return 0;
	}
	if (sscanf(line, "DELAY %u %n", &ms, &n) == 1) {
		(void)snprintf(c->delay_text, sizeof(c->delay_text), "%s",
		    line + n);
		if (c->delay == NULL)
			c->delay = loop_timer_new(echo_delay_fire, c);
		loop_timer_add(c->delay, ms);
		return 0;
	}
	if (sscanf(line, "TICK %d", &c->ticks) == 1 && c->ticks > 0) {
		if (c->tick == NULL)
			c->tick = loop_timer_new(echo_tick_fire, c);
		loop_timer_every(c->tick, 20);
		return 0;
	}
	if (opt.post) {
		echo_post(c, line);
		return 1;	/* paused until the worker answers */
	}
	io_printf(c->io, "%s ", io_bare_lf(c->io) ? "BARELF" : "LINE");
	io_write(c->io, line, len);
	io_printf(c->io, "\r\n");
	return 0;
}

/* echo_datain - answer every complete line, unless told to wait */
static void
echo_datain(struct conn *c)
{
	size_t len;
	int toolong;
	char *line;

	while (!c->wait_post && !c->wait_out && !c->closing &&
	    (line = io_getline(c->io, opt.max_line, &len, &toolong)) != NULL) {
		unsigned long id = c->id;

		if (echo_command(c, line, len, toolong) != 0) {
			if (conn_find(id) == NULL)
				return;	/* freed */
			break;
		}
		if (io_queued(c->io) > ECHO_OUT_MAX) {
			c->wait_out = 1;	/* the peer does not read */
			conn_update_read(c);
		}
	}
}

/* echo_io - the one I/O callback of a server connection */
static void
echo_io(struct io *io, enum io_event ev, void *arg)
{
	struct conn *c = arg;

	(void)io;
	switch (ev) {
	case IO_DATAIN:
		echo_datain(c);
		break;
	case IO_TLSREADY:
		break;
	case IO_LOWAT:
		if (c->closing) {
			conn_free(c);
			break;
		}
		if (c->wait_out) {
			c->wait_out = 0;
			conn_update_read(c);
		}
		break;
	case IO_TIMEOUT:
		io_printf(c->io, "421 timeout\r\n");
		c->closing = 1;
		conn_update_read(c);
		break;
	case IO_DISCONNECTED:
		if (io_queued(c->io) > 0) {
			c->closing = 1;	/* half-closed: write, then close */
			break;
		}
		conn_free(c);
		break;
	case IO_CONNECTED:
	case IO_ERROR:
		fprintf(stderr, "io-echo: conn=%lu %s: %s\n", c->id,
		    io_event_names[ev], io_error(c->io));
		conn_free(c);
		break;
	}
}

/* echo_accept - a new connection from the listener */
static void
echo_accept(int fd, const char *peer, void *arg)
{
	struct conn *c;

	(void)arg;
	if (fd < 0) {
		fprintf(stderr, "io-echo: %s\n", peer);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->id = next_id++;
	c->io = io_new(fd, echo_io, c);
	if ((c->next = conns) != NULL)
		conns->prev = c;
	conns = c;
	nconns++;
	if (opt.max_conns > 0 && nconns >= opt.max_conns && !listener_paused) {
		listener_paused = 1;
		listen_pause(listener);
	}
	io_set_timeout(c->io, opt.timeout_ms);
	if (opt.input_max > 0)
		io_set_input_max(c->io, opt.input_max);
	if (opt.implicit_tls && io_starttls_server(c->io, server_tls) != 0) {
		fprintf(stderr, "io-echo: conn=%lu %s\n", c->id,
		    io_error(c->io));
		conn_free(c);
	}
}

/* echo_load_tls - a fresh server context from --cert and --key */
static int
echo_load_tls(void)
{
	struct tls_ctx *t;
	char *error;

	if ((t = tls_server_new(opt.cert, opt.key, &error)) == NULL) {
		fprintf(stderr, "io-echo: %s\n", error);
		free(error);
		return -1;
	}
	tls_ctx_free(&server_tls);	/* live connections keep theirs */
	server_tls = t;
	return 0;
}

/* echo_signal - SIGHUP reloads TLS, SIGTERM and SIGINT stop */
static void
echo_signal(int signo, void *arg)
{
	(void)arg;
	if (signo == SIGHUP) {
		if (server_tls != NULL && echo_load_tls() == 0)
			fprintf(stderr, "io-echo: TLS reloaded\n");
		return;
	}
	loop_break();
}

/* server_main - run the echo server until SIGTERM */
static int
server_main(const char *spec)
{
	char *error;

	if ((opt.starttls || opt.implicit_tls || opt.require_tls) &&
	    (opt.cert == NULL || opt.key == NULL)) {
		fprintf(stderr, "io-echo: TLS needs --cert and --key\n");
		return 2;
	}
	if (opt.cert != NULL && echo_load_tls() != 0)
		return 1;
	if (listen_bind(spec, &listener, &error) != 0) {
		fprintf(stderr, "io-echo: %s\n", error);
		free(error);
		tls_ctx_free(&server_tls);
		loop_free();
		return 1;
	}
	if (listen_start(listener, echo_accept, NULL, &error) != 0) {
		fprintf(stderr, "io-echo: %s\n", error);
		free(error);
		return 1;
	}
	loop_signal(SIGTERM, echo_signal, NULL);
	loop_signal(SIGINT, echo_signal, NULL);
	loop_signal(SIGHUP, echo_signal, NULL);
	if (opt.post &&
	    pthread_create(&worker, NULL, worker_main, NULL) != 0) {
		fprintf(stderr, "io-echo: cannot start the worker\n");
		return 1;
	}
	for (size_t i = 0; i < listen_count(listener); i++)
		fprintf(stderr, "io-echo: listening on %s\n",
		    listen_addr(listener, i));
	printf("listening\n");
	fflush(stdout);
	loop_run();

	if (opt.post) {
		pthread_mutex_lock(&work_mtx);
		work_stop = 1;
		pthread_cond_signal(&work_cv);
		pthread_mutex_unlock(&work_mtx);
		pthread_join(worker, NULL);
		while (work_head != NULL) {
			struct job *j = work_head;

			work_head = j->next;
			free(j->text);
			free(j);
		}
	}
	while (conns != NULL)
		conn_free(conns);
	listen_free(&listener);
	tls_ctx_free(&server_tls);
	loop_free();	/* drops posts that never ran: none are left */
	return 0;
}

/* the client side */
static struct {
	struct io	*io;
	struct tls_ctx	*tls;
	char		*host;
	char		**lines;
	int		 nlines, sent, replies;
	int		 in_starttls, quitting;
	int		 status;
} cl;

/* client_finish - stop the loop with an exit status */
static void
client_finish(int status)
{
	cl.status = status;
	loop_break();
}

/* client_send_lines - send every LINE, pipelined, and QUIT */
static void
client_send_lines(void)
{
	io_cork(cl.io);
	for (cl.sent = 0; cl.sent < cl.nlines; cl.sent++)
		io_printf(cl.io, "%s\r\n", cl.lines[cl.sent]);
	io_printf(cl.io, "QUIT\r\n");
	io_uncork(cl.io);
}

/* client_io - the one I/O callback of the client connection */
static void
client_io(struct io *io, enum io_event ev, void *arg)
{
	struct io_tls_info ti;
	size_t len;
	int toolong;
	char *line;

	(void)arg;
	switch (ev) {
	case IO_CONNECTED:
		io_set_nodelay(io, 1);
		io_set_timeout(io, opt.timeout_ms ? opt.timeout_ms : 10000);
		if (opt.starttls) {
			cl.in_starttls = 1;
			io_printf(io, "STARTTLS\r\n");
		} else
			client_send_lines();
		break;
	case IO_TLSREADY:
		io_tls_info(io, &ti);
		printf("TLS %s %s verified=%d subject=%s\n", ti.version,
		    ti.cipher, ti.peer_verified, ti.subject);
		client_send_lines();
		break;
	case IO_DATAIN:
		while ((line = io_getline(io, ECHO_MAX_LINE, &len,
		    &toolong)) != NULL) {
			if (cl.in_starttls) {
				cl.in_starttls = 0;
				if (strcmp(line, "220 go") != 0) {
					fprintf(stderr, "io-echo: STARTTLS "
					    "refused: %s\n", line);
					client_finish(1);
					return;
				}
				io_discard_input(io);
				if (io_starttls_client(io, cl.tls,
				    opt.servername) != 0) {
					fprintf(stderr, "io-echo: %s\n",
					    io_error(io));
					client_finish(1);
				}
				return;
			}
			printf("%s\n", line);
			if (strncmp(line, "221", 3) == 0) {
				client_finish(0);
				return;
			}
		}
		break;
	case IO_LOWAT:
		break;
	case IO_DISCONNECTED:
	case IO_TIMEOUT:
	case IO_ERROR:
		fprintf(stderr, "io-echo: %s: %s\n", io_event_names[ev],
		    io_error(io));
		client_finish(1);
		break;
	}
}

/* client_main - connect, optionally STARTTLS, send LINEs, print replies */
static int
client_main(const char *target, char **lines, int nlines)
{
	const char *colon = strrchr(target, ':');
	char *error, *end;
	unsigned long port;

	if (colon == NULL || colon == target)
		usage();
	port = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || port == 0 || port > 65535)
		usage();
	cl.host = xstrndup(target, (size_t)(colon - target));
	if (cl.host[0] == '[' && cl.host[strlen(cl.host) - 1] == ']') {
		char *h = xstrndup(cl.host + 1, strlen(cl.host) - 2);

		free(cl.host);
		cl.host = h;
	}
	cl.lines = lines;
	cl.nlines = nlines;
	if (opt.starttls) {
		cl.tls = tls_client_new(opt.verify ? TLS_MODE_VERIFY :
		    TLS_MODE_MAY, opt.ca, &error);
		if (cl.tls == NULL) {
			fprintf(stderr, "io-echo: %s\n", error);
			free(error);
			return 1;
		}
	}
	cl.io = io_connect(cl.host, (unsigned)port,
	    opt.timeout_ms ? opt.timeout_ms : 5000, client_io, NULL);
	loop_run();
	io_free(&cl.io);
	tls_ctx_free(&cl.tls);
	free(cl.host);
	loop_free();
	return cl.status;
}

/* main - parse options and run the server or the client */
int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "ca", required_argument, NULL, 'A' },
		{ "servername", required_argument, NULL, 'n' },
		{ "starttls", no_argument, NULL, 's' },
		{ "implicit-tls", no_argument, NULL, 'i' },
		{ "require-tls", no_argument, NULL, 'r' },
		{ "verify", no_argument, NULL, 'v' },
		{ "post", no_argument, NULL, 'p' },
		{ "max-line", required_argument, NULL, 'm' },
		{ "input-max", required_argument, NULL, 'I' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-conns", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_spec = NULL, *target = NULL;
	char *error;
	int ch;

	while ((ch = getopt_long(argc, argv, "l:c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_spec = optarg; break;
		case 'c': target = optarg; break;
		case 'C': opt.cert = optarg; break;
		case 'K': opt.key = optarg; break;
		case 'A': opt.ca = optarg; break;
		case 'n': opt.servername = optarg; break;
		case 's': opt.starttls = 1; break;
		case 'i': opt.implicit_tls = 1; break;
		case 'r': opt.require_tls = 1; break;
		case 'v': opt.verify = 1; break;
		case 'p': opt.post = 1; break;
		case 'm': opt.max_line = strtoul(optarg, NULL, 10); break;
		case 'I': opt.input_max = strtoul(optarg, NULL, 10); break;
		case 't': opt.timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'M': opt.max_conns = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default: usage();
		}
	}
	if ((listen_spec == NULL) == (target == NULL))
		usage();
	log_init("io-echo", 1, LOG_LEVEL_INFO);
	if (loop_init(&error) != 0) {
		fprintf(stderr, "io-echo: %s\n", error);
		free(error);
		return 1;
	}
	loop_thread = pthread_self();
	if (target != NULL)
		return client_main(target, argv + optind, argc - optind);
	if (optind != argc)
		usage();
	return server_main(listen_spec);
}
