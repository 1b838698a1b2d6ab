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
 */
#ifndef ODMR_ODMR_CONF_H
#define ODMR_ODMR_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct odmr_conf {
	char		*path;		/* file read, or NULL for defaults */
	char		*hostname;
	char		*state_dir;
	char		*smtp_listen;	/* comma-separated address:port */
	char		*odmr_listen;
	char		*odmrs_listen;	/* "" when unset */
	char		*tls_cert_file;	/* "" when unset */
	char		*tls_key_file;
	int		 auth_require_tls;
	uint64_t	 max_message_size;
	uint64_t	 max_recipients;
	uint64_t	 max_connections;
	uint64_t	 max_connections_per_ip;
	uint64_t	 queue_lifetime;	/* seconds */
	uint64_t	 delay_warning;		/* seconds, 0 = off */
	char		*bounce_relay;		/* "" = MX lookup */
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
