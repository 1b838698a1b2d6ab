/*
 * NAME
 *	log 3 - logging to syslog or stderr
 * DESCRIPTION
 *	See log.h. The destination and level are process-wide: logging is
 *	the one piece of state every layer shares, as in OpenSMTPD's log.c.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static int log_stderr = 1;
static enum log_level log_cur = LOG_LEVEL_INFO;
static const char *log_prog = "odmr";

static const char *const log_level_names[] = {
	[LOG_LEVEL_ERR] = "err",
	[LOG_LEVEL_WARN] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

/* log_init - choose destination and verbosity */
void
log_init(const char *progname, int to_stderr, enum log_level level)
{
	log_prog = progname;
	log_stderr = to_stderr;
	log_cur = level;
	if (!to_stderr)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* log_set_level - change verbosity at run time (SIGHUP, -v) */
void
log_set_level(enum log_level level)
{
	log_cur = level;
}

/* log_get_level - current verbosity */
enum log_level
log_get_level(void)
{
	return log_cur;
}

/* log_level_parse - map "err|warning|info|debug" to a level */
int
log_level_parse(const char *name, enum log_level *level)
{
	size_t i;

	for (i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++)
		if (strcmp(name, log_level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	if (strcmp(name, "warn") == 0) {
		*level = LOG_LEVEL_WARN;
		return 0;
	}
	return -1;
}

static void log_vemit(enum log_level, int, int, const char *, va_list)
    __attribute__((format(printf, 4, 0)));

/* log_vemit - format one line and send it to the destination */
static void
log_vemit(enum log_level lvl, int with_errno, int saved_errno,
    const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[2048];
	int n;

	if (lvl > log_cur)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if (with_errno && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s",
		    strerror(saved_errno));
	if (log_stderr) {
		char ts[32];
		struct tm tm;
		time_t now = time(NULL);

		localtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s %s[%s]: %s\n", ts, log_prog,
		    log_level_names[lvl], msg);
		fflush(stderr);
	} else
		syslog(prio[lvl], "%s", msg);
}

/* log_warn - warning with strerror(errno) appended */
void
log_warn(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_WARN, 1, e, fmt, ap);
	va_end(ap);
	errno = e;
}

/* log_warnx - warning without errno */
void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_WARN, 0, 0, fmt, ap);
	va_end(ap);
}

/* log_info - informational event */
void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_INFO, 0, 0, fmt, ap);
	va_end(ap);
}

/* log_debug - debugging detail, shown with -v or log_level = debug */
void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_DEBUG, 0, 0, fmt, ap);
	va_end(ap);
}

/* fatal - log with errno and exit */
void
fatal(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERR, 1, e, fmt, ap);
	va_end(ap);
	exit(1);
}

/* fatalx - log without errno and exit */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERR, 0, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
