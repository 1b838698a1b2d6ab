/*
 * NAME
 *	smtp_deadline 3 - the one deadline of a server session
 * SYNOPSIS
 *	#include "smtp_session.h"
 * DESCRIPTION
 *	Every wait of a session has a deadline that the client cannot
 *	push back by trickling bytes (slowloris): a timer of its own, not
 *	the io's inactivity timeout, which starts again on every read.
 *
 *	- Waiting for a command (or an AUTH response): the line must be
 *	  complete within command_timeout of the moment the session
 *	  started waiting (smtp_deadline_wait()); taking a line stops the
 *	  clock (smtp_deadline_stop()).
 *	- Replies unread: while more than max_reply_backlog octets of
 *	  replies wait (io_output_full()), the session reads no commands
 *	  and waits, under the same command_timeout, for the client to
 *	  read; then the connection is closed at once (no reply could
 *	  reach it).
 *	- Message text (DATA, a BDAT chunk): the deadline starts at
 *	  data_timeout and each octet received moves it on by
 *	  1/data_min_rate seconds, never to more than data_timeout from
 *	  now (smtp_deadline_progress(); Postfix's smtpd_min_data_rate).
 *	- A TLS handshake: command_timeout.
 *	- Closing (state quit): the last reply, and close_notify, have
 *	  SMTP_DEADLINE_QUIT_MS (at most command_timeout) to leave.
 *
 *	smtp_enter_state() calls smtp_deadline_state() on every change of
 *	state; a reversed ATRN session (state turn) runs no deadline here:
 *	the delivery engine has its own timeouts.
 * DIAGNOSTICS
 *	event=timeout, with the state and a reason, before 421 4.4.2.
 * SEE ALSO
 *	smtp_session(3), RFC 5321 section 4.5.3.2, Postfix
 *	smtpd_per_request_deadline
 */
#include "config.h"

#include <stdint.h>

#include "log.h"
#include "loop.h"
#include "io.h"

#include "odmrd.h"
#include "smtp_session.h"

#define SMTP_DEADLINE_QUIT_MS	10000	/* the last reply's time to leave */

/* smtp_deadline_at - arm the timer for an absolute time */
static void
smtp_deadline_at(struct smtp_session *s, uint64_t at)
{
	uint64_t now = loop_now_ms();

	s->deadline_at = at;
	loop_timer_add(s->deadline, at > now ? (unsigned)(at - now) : 0);
}

/* smtp_deadline_fire - the timer: the deadline passed */
static void
smtp_deadline_fire(void *arg)
{
	smtp_deadline_expired(arg);
}

/* smtp_deadline_expired - a wait ran out: close, with 421 if it can go */
void
smtp_deadline_expired(struct smtp_session *s)
{
	const char *state = smtp_state_names[s->state];

	if (s->io == NULL || s->dead)
		return;
	if (s->state == SMTP_STATE_QUIT) {
		smtp_session_lost(s, "timeout while sending the last reply");
		return;
	}
	if (io_output_full(s->io)) {
		uint64_t since = s->deadline_at - s->d->conf->command_timeout *
		    1000, now = loop_now_ms();

		log_info("session=%s event=timeout state=%s reason=\"client"
		    " does not read its replies\" unsent=%zu waited=%llums",
		    s->id, state, io_queued(s->io), (unsigned long long)
		    (now > since ? now - since : 0));
		smtp_session_lost(s, "client does not read its replies");
		return;
	}
	if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
		log_info("session=%s event=timeout state=%s reason=\"message"
		    " text slower than data_min_rate\" octets=%llu", s->id,
		    state, (unsigned long long)s->txn.octets);
	else if (s->state == SMTP_STATE_TLS)
		log_info("session=%s event=timeout state=%s reason=\"TLS"
		    " handshake not finished\"", s->id, state);
	else
		log_info("session=%s event=timeout state=%s reason=\"no"
		    " complete command\"", s->id, state);
	if (s->state == SMTP_STATE_TLS) {
		smtp_session_lost(s, "TLS handshake timeout");
		return;
	}
	smtp_reply(s, 421, "4.4.2 %s Error: timeout exceeded",
	    s->d->conf->hostname);
	smtp_session_close_after(s);
}

/* smtp_deadline_init - the session's timer, disarmed */
void
smtp_deadline_init(struct smtp_session *s)
{
	if ((s->deadline = loop_timer_new(smtp_deadline_fire, s)) == NULL)
		fatalx("smtp: cannot create a session timer");
}

/* smtp_deadline_free - the timer goes with the session */
void
smtp_deadline_free(struct smtp_session *s)
{
	loop_timer_free(&s->deadline);
}

/* smtp_deadline_running - whether a deadline is armed */
int
smtp_deadline_running(const struct smtp_session *s)
{
	return s->deadline != NULL && loop_timer_pending(s->deadline);
}

/* smtp_deadline_stop - nothing is awaited now (a line was taken) */
void
smtp_deadline_stop(struct smtp_session *s)
{
	if (s->deadline != NULL)
		loop_timer_del(s->deadline);
	s->deadline_command = 0;
}

/* smtp_deadline_wait - waiting for a command: start the clock once */
void
smtp_deadline_wait(struct smtp_session *s)
{
	if (s->deadline == NULL || loop_timer_pending(s->deadline))
		return;
	s->deadline_command = 1;
	smtp_deadline_at(s, loop_now_ms() +
	    s->d->conf->command_timeout * 1000);
}

/* smtp_deadline_progress - n octets of text arrived: a little more time */
void
smtp_deadline_progress(struct smtp_session *s, size_t n)
{
	uint64_t now, at, cap;

	if (n == 0 || s->deadline == NULL ||
	    (s->state != SMTP_STATE_DATA && s->state != SMTP_STATE_BDAT))
		return;
	now = loop_now_ms();
	cap = now + s->d->conf->data_timeout * 1000;
	at = s->deadline_at + (uint64_t)n * 1000 / s->d->conf->data_min_rate;
	if (at > cap)
		at = cap;
	if (at != s->deadline_at)
		smtp_deadline_at(s, at);
}

/* smtp_deadline_state - the session entered a state: its deadline */
void
smtp_deadline_state(struct smtp_session *s)
{
	uint64_t now = loop_now_ms(), ms;

	if (s->deadline == NULL)
		return;
	switch (s->state) {
	case SMTP_STATE_DATA:
	case SMTP_STATE_BDAT:
	case SMTP_STATE_TLS:
	case SMTP_STATE_QUIT:
		break;
	default:
		/* from one command state to another (greeting -> helo on the
		 * first byte): the wait for the command goes on */
		if (s->deadline_command)
			return;
		break;
	}
	loop_timer_del(s->deadline);
	s->deadline_command = 0;
	switch (s->state) {
	case SMTP_STATE_DATA:
	case SMTP_STATE_BDAT:
		smtp_deadline_at(s, now + s->d->conf->data_timeout * 1000);
		break;
	case SMTP_STATE_TLS:
		smtp_deadline_at(s, now + s->d->conf->command_timeout * 1000);
		break;
	case SMTP_STATE_QUIT:
		ms = s->d->conf->command_timeout * 1000;
		smtp_deadline_at(s, now + (ms < SMTP_DEADLINE_QUIT_MS ? ms :
		    SMTP_DEADLINE_QUIT_MS));
		break;
	default:
		/* commands: armed when the session waits for one */
		break;
	}
}
