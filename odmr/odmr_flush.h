/*
 * NAME
 *	odmr_flush 3h - the daemon's outbound flushes (ETRN): one per
 *	domain, at most max_deliveries at once, the rest wait in order
 * SYNOPSIS
 *	#include "odmr_flush.h"
 *
 *	struct odmr_flush *odmr_flush_new(struct odmrd *d);
 *	enum odmr_flush_status odmr_flush_request(struct odmr_flush *fl,
 *	    const struct odmr_flush_req *req);
 *	void odmr_flush_shutdown(struct odmr_flush *fl);
 *	void odmr_flush_abort(struct odmr_flush *fl);
 *	size_t odmr_flush_count(const struct odmr_flush *fl);
 *	void odmr_flush_free(struct odmr_flush **flp);
 * DESCRIPTION
 *	odmr_flush_request() asks for one domain to be delivered over its
 *	route (turn_flush(3)). A domain already being flushed, or already
 *	waiting, is not flushed twice (RFC 1985 leaves repeated ETRNs to
 *	the server; a second run would only find the claim taken). When
 *	max_deliveries flushes run, the request waits in arrival order;
 *	ODMR_FLUSH_FULL means even the waiting list is full. The route
 *	"client" is replaced by req->client_addr, the address that sent
 *	ETRN, port 25.
 *
 *	odmr_flush_shutdown() drops the waiting requests and asks the
 *	running flushes to QUIT after their message in progress;
 *	odmr_flush_abort() closes them now (the message in progress stays
 *	queued). odmr_flush_count() is how many run.
 * SEE ALSO
 *	turn_flush(3), smtp_etrn(3), RFC 1985
 */
#ifndef ODMR_ODMR_FLUSH_H
#define ODMR_ODMR_FLUSH_H

#include <stddef.h>
#include <stdint.h>

#include "dname.h"
#include "tls.h"

#define ODMR_FLUSH_WAIT_MAX	10000	/* requests waiting for a slot */
#define ODMR_FLUSH_ID_MAX	17	/* as a session id */

struct odmrd;
struct odmr_flush;

enum odmr_flush_status {
	ODMR_FLUSH_STARTED = 0,		/* running now */
	ODMR_FLUSH_WAITING,		/* will run when a slot frees */
	ODMR_FLUSH_ALREADY,		/* running or waiting already */
	ODMR_FLUSH_FULL,		/* too many waiting */
	ODMR_FLUSH_BAD,			/* the route cannot be used */
};

struct odmr_flush_req {
	const char	*domain;	/* key form */
	const char	*route;		/* the domain's --route */
	enum tls_mode	 tls;		/* the domain's --tls */
	const char	*client_addr;	/* for route "client" */
	const char	*trigger;	/* "etrn", "retry", for logs */
	uint64_t	 retry;		/* --retry: backoff after failures */
	const char	*session_id;	/* the session that asked */
};

struct odmr_flush *odmr_flush_new(struct odmrd *);
enum odmr_flush_status odmr_flush_request(struct odmr_flush *,
	    const struct odmr_flush_req *);
void	odmr_flush_shutdown(struct odmr_flush *);
void	odmr_flush_abort(struct odmr_flush *);
size_t	odmr_flush_count(const struct odmr_flush *);
void	odmr_flush_free(struct odmr_flush **);

#endif
