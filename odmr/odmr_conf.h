/*
 * NAME
 *	odmr_conf 3h - odmrd.conf: the keys, their defaults and their types
 * SYNOPSIS
 *	#include "odmr_conf.h"
 * DESCRIPTION
 *	odmr_conf_load() reads a configuration file with lib/conf and fills
 *	struct odmr_conf with every key of SPEC.md, defaults included. An
 *	unknown key or a bad value is an error that names the file and the
 *	line. When the file is not explicit (no -f) and does not exist, the
 *	built-in defaults are used.
 *
 *	The ODMR_CONF_*_MAX constants are the upper bounds of the keys that
 *	size a buffer or a thread pool, so that callers can size theirs
 *	without repeating the numbers of the key table.
 */
#ifndef ODMR_ODMR_CONF_H
#define ODMR_ODMR_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define ODMR_CONF_COMMAND_LINE_MAX	65536		/* max_command_line */
#define ODMR_CONF_TEXT_LINE_MAX		(1024 * 1024)	/* max_text_line */
#define ODMR_CONF_COMMIT_THREADS_MAX	64		/* commit_threads */
#define ODMR_CONF_DELIVERIES_MAX	1000		/* max_deliveries */

struct odmr_conf {
	char		*path;		/* file read, or NULL for defaults */
	char		*hostname;
	char		*state_dir;
	char		*smtp_listen;	/* comma-separated address:port */
	char		*odmr_listen;
	char		*odmrs_listen;	/* "" when unset */
	char		*tls_cert_file;	/* "" when unset */
	char		*tls_key_file;
	char		*tls_client_ca_file;	/* "" = no client certificates */
	int		 auth_require_tls;
	uint64_t	 max_message_size;
	uint64_t	 max_recipients;
	uint64_t	 max_connections;
	uint64_t	 max_connections_per_ip;
	uint64_t	 max_command_line;	/* octets with CRLF, RFC 5321 */
	uint64_t	 max_text_line;		/* octets with CRLF, in DATA */
	uint64_t	 max_errors;		/* bad commands, then 421 */
	uint64_t	 max_received_headers;	/* more: 554 5.4.6 loop */
	uint64_t	 command_timeout;	/* seconds */
	uint64_t	 data_timeout;		/* seconds */
	uint64_t	 data_min_rate;		/* octets per second in text */
	uint64_t	 max_reply_backlog;	/* unsent reply octets */
	uint64_t	 loop_stall_timeout;	/* seconds, 0 = no watchdog */
	uint64_t	 shutdown_timeout;	/* seconds, 0 = do not wait */
	uint64_t	 commit_threads;	/* store commit pool */
	uint64_t	 queue_lifetime;	/* seconds */
	uint64_t	 delay_warning;		/* seconds, 0 = off */
	char		*bounce_relay;		/* "" = MX lookup */
	char		*tls_ca_file;		/* "" = the system store */
	uint64_t	 max_deliveries;	/* outbound sessions at once */
	uint64_t	 connect_timeout;	/* seconds */
	char		*dns_servers;		/* "" = /etc/resolv.conf */
	char		*postmaster;		/* double bounces, "" = none */
	uint64_t	 bounce_interval;	/* seconds: DSN retries, expiry */
	char		*user;			/* "" = no change */
	enum log_level	 log_level;
};

const char	*odmr_conf_default_path(void);
int	odmr_conf_load(const char *path, int explicit_path,
	    struct odmr_conf **confp, char **error_r);
int	odmr_conf_parse_text(const char *name, const char *text, size_t len,
	    struct odmr_conf **confp, char **error_r);
void	odmr_conf_free(struct odmr_conf **);

#endif
