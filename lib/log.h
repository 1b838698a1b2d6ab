/*
 * NAME
 *	log 3h - logging to syslog or stderr
 * SYNOPSIS
 *	#include "log.h"
 * DESCRIPTION
 *	log_init() selects the destination: syslog (facility mail) or, when
 *	to_stderr is set, standard error. Every message is one line; callers
 *	write key=value pairs so that a line can be grepped by session or
 *	queue id. log_warn() and fatal() append strerror(errno); log_warnx()
 *	and fatalx() do not. fatal() and fatalx() exit with status 1.
 */
#ifndef LIB_LOG_H
#define LIB_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void	log_init(const char *progname, int to_stderr, enum log_level level);
void	log_set_level(enum log_level level);
int	log_level_parse(const char *name, enum log_level *level);
enum log_level log_get_level(void);

void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
