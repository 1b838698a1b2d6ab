/*
 * NAME
 *	loop_private 3h - the libevent base behind loop 3h, for lib/ only
 * DESCRIPTION
 *	io.c and listen.c attach their events to the process loop through
 *	loop_event_base(), which is NULL before loop_init(). Private to
 *	lib/: it names a libevent type (STYLE.md rule 5).
 */
#ifndef LIB_LOOP_PRIVATE_H
#define LIB_LOOP_PRIVATE_H

#include <sys/time.h>

#include <event2/event.h>

struct event_base	*loop_event_base(void);
void			 loop_ms_to_tv(unsigned ms, struct timeval *);

#endif
