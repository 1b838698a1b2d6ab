/*
 * NAME
 *	odmr_bounce 3h - the daemon's DSN delivery and expiry scan
 * SYNOPSIS
 *	#include "odmr_bounce.h"
 * DESCRIPTION
 *	See odmr_bounce.c.
 */
#ifndef ODMR_ODMR_BOUNCE_H
#define ODMR_ODMR_BOUNCE_H

#define ODMR_BOUNCE_ID_MAX	17	/* as a session id */

struct odmrd;
struct odmr_bounce;

struct odmr_bounce *odmr_bounce_new(struct odmrd *);
void	odmr_bounce_kick(struct odmr_bounce *);
void	odmr_bounce_shutdown(struct odmr_bounce *);
void	odmr_bounce_abort(struct odmr_bounce *);
int	odmr_bounce_busy(const struct odmr_bounce *);
void	odmr_bounce_free(struct odmr_bounce **);

#endif
