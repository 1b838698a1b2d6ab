/*
 * NAME
 *	smtp_domains 3h - the customer domains, in memory, for RCPT
 * SYNOPSIS
 *	#include "smtp_domains.h"
 * DESCRIPTION
 *	A snapshot of the store's domain table, refreshed on the lookup
 *	pool every two seconds; see smtp_domains.c. smtp_domains_match()
 *	answers from it, or returns 0 when it does not know the domain.
 *	smtp_domains_stop() ends the refreshing (shutdown);
 *	smtp_domains_busy() says a refresh is still on a worker thread.
 */
#ifndef ODMR_SMTP_DOMAINS_H
#define ODMR_SMTP_DOMAINS_H

#include <stdint.h>

#include "dname.h"

struct odmrd;

struct smtp_domains_entry {
	char		 name[DNAME_MAX + 1];	/* "" marks a free slot */
	int		 subdomains;
	uint64_t	 max_messages;
	uint64_t	 messages;
	uint64_t	 max_bytes;
	uint64_t	 bytes;
};

struct smtp_domains;

struct smtp_domains *smtp_domains_new(struct odmrd *);
void	smtp_domains_stop(struct smtp_domains *);
int	smtp_domains_busy(const struct smtp_domains *);
void	smtp_domains_free(struct smtp_domains **);
int	smtp_domains_match(const struct smtp_domains *, const char *key,
	    struct smtp_domains_entry *out);

#endif
