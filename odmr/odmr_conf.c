/*
 * NAME
 *	odmr_conf 3 - odmrd.conf: the keys, their defaults and their types
 * SYNOPSIS
 *	#include "odmr_conf.h"
 *
 *	const char *odmr_conf_default_path(void);
 *	int odmr_conf_load(const char *path, int explicit_path,
 *	    struct odmr_conf **confp, char **error_r);
 *	int odmr_conf_parse_text(const char *name, const char *text,
 *	    size_t len, struct odmr_conf **confp, char **error_r);
 *	void odmr_conf_free(struct odmr_conf **confp);
 * DESCRIPTION
 *	The key table below is the whole of odmrd.conf: lib/conf does the
 *	parsing and knows none of these names. Every default is text that
 *	goes through the same conversion as a value read from the file.
 *	Two rules span keys and are checked here: hostname falls back to
 *	gethostname(), tls_cert_file and tls_key_file go together, and
 *	tls_client_ca_file needs them (only a TLS server asks for a client
 *	certificate).
 * DIAGNOSTICS
 *	On error the functions return -1 and one allocated line through
 *	error_r, naming the file and, where there is one, the line.
 * SEE ALSO
 *	conf(3), odmrd.conf(5)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "odmr_conf.h"
#include "xmalloc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR	"/var"
#endif

#define ODMR_HOST_NAME_MAX	255	/* gethostname() buffer, POSIX */

#define F(field)	offsetof(struct odmr_conf, field)

/* Keep this table, odmrd.conf.5 and contrib/odmrd.conf.example in step. */
static const struct conf_key odmr_conf_keys[] = {
	{ "hostname", CONF_HOSTNAME, 0, NULL, F(hostname), 0, 0 },
	{ "state_dir", CONF_PATH, 0, LOCALSTATEDIR "/lib/odmr",
	    F(state_dir), 0, 0 },
	{ "smtp_listen", CONF_LISTEN, 0, "[::]:25", F(smtp_listen), 0, 0 },
	{ "odmr_listen", CONF_LISTEN, 0, "[::]:366", F(odmr_listen), 0, 0 },
	{ "odmrs_listen", CONF_LISTEN, CONF_EMPTY_OK, "", F(odmrs_listen),
	    0, 0 },
	{ "tls_cert_file", CONF_PATH, CONF_EMPTY_OK, "", F(tls_cert_file),
	    0, 0 },
	{ "tls_key_file", CONF_PATH, CONF_EMPTY_OK, "", F(tls_key_file),
	    0, 0 },
	{ "tls_client_ca_file", CONF_PATH, CONF_EMPTY_OK, "",
	    F(tls_client_ca_file), 0, 0 },
	{ "auth_require_tls", CONF_BOOL, 0, "yes", F(auth_require_tls), 0, 0 },
	{ "max_message_size", CONF_SIZE, 0, "50M", F(max_message_size),
	    1024, 0 },
	{ "max_recipients", CONF_UINT, 0, "1000", F(max_recipients),
	    1, 1000000 },
	{ "max_connections", CONF_UINT, 0, "1000", F(max_connections),
	    1, 1000000 },
	{ "max_connections_per_ip", CONF_UINT, 0, "20",
	    F(max_connections_per_ip), 1, 1000000 },
	/* RFC 5321 4.5.3.1.4: 512 octets; MAIL and RCPT get more on top. */
	{ "max_command_line", CONF_SIZE, 0, "512", F(max_command_line),
	    512, ODMR_CONF_COMMAND_LINE_MAX },
	/* RFC 5321 4.5.3.1.6: 1000 octets; more only for broken senders. */
	{ "max_text_line", CONF_SIZE, 0, "1000", F(max_text_line),
	    1000, ODMR_CONF_TEXT_LINE_MAX },
	{ "max_errors", CONF_UINT, 0, "20", F(max_errors), 1, 1000 },
	/* RFC 5321 6.3: counting Received: fields finds mail loops. */
	{ "max_received_headers", CONF_UINT, 0, "50",
	    F(max_received_headers), 1, 1000 },
	/* RFC 5321 4.5.3.2.7 and 4.5.3.2.5: 5 and 3 minutes. */
	{ "command_timeout", CONF_DURATION, 0, "5m", F(command_timeout),
	    1, 3600 },
	{ "data_timeout", CONF_DURATION, 0, "3m", F(data_timeout), 1, 3600 },
	/* Postfix's smtpd_min_data_rate: text must keep coming this fast */
	{ "data_min_rate", CONF_SIZE, 0, "500", F(data_min_rate), 1,
	    1024 * 1024 * 1024 },
	/* replies not yet taken by the client: then we stop reading */
	{ "max_reply_backlog", CONF_SIZE, 0, "64k", F(max_reply_backlog),
	    4096, 16 * 1024 * 1024 },
	{ "loop_stall_timeout", CONF_DURATION, 0, "30s",
	    F(loop_stall_timeout), 0, 3600 },
	{ "shutdown_timeout", CONF_DURATION, 0, "30s", F(shutdown_timeout),
	    0, 3600 },
	{ "commit_threads", CONF_UINT, 0, "8", F(commit_threads),
	    1, ODMR_CONF_COMMIT_THREADS_MAX },
	{ "queue_lifetime", CONF_DURATION, 0, "5d", F(queue_lifetime),
	    1, 0 },
	{ "delay_warning", CONF_DURATION, 0, "1d", F(delay_warning), 0, 0 },
	{ "bounce_relay", CONF_HOSTPORT, CONF_EMPTY_OK, "", F(bounce_relay),
	    0, 0 },
	/* outbound delivery (ETRN, odmrctl flush, DSNs) */
	{ "tls_ca_file", CONF_PATH, CONF_EMPTY_OK, "", F(tls_ca_file), 0, 0 },
	{ "max_deliveries", CONF_UINT, 0, "20", F(max_deliveries),
	    1, ODMR_CONF_DELIVERIES_MAX },
	{ "connect_timeout", CONF_DURATION, 0, "30s", F(connect_timeout),
	    1, 600 },
	{ "dns_servers", CONF_STRING, CONF_EMPTY_OK, "", F(dns_servers),
	    0, 0 },
	/* DSNs: double bounces, and how often they and expiry run */
	{ "postmaster", CONF_STRING, CONF_EMPTY_OK, "", F(postmaster), 0, 0 },
	{ "bounce_interval", CONF_DURATION, 0, "1m", F(bounce_interval),
	    1, 86400 },
	{ "user", CONF_STRING, CONF_EMPTY_OK, "", F(user), 0, 0 },
	{ "log_level", CONF_LOG_LEVEL, 0, "info", F(log_level), 0, 0 },
	{ NULL, CONF_STRING, 0, NULL, 0, 0, 0 },
};

#define ODMR_CONF_NKEYS \
	(sizeof(odmr_conf_keys) / sizeof(odmr_conf_keys[0]) - 1)

/* odmr_conf_default_path - where odmrd looks without -f */
const char *
odmr_conf_default_path(void)
{
	return SYSCONFDIR "/odmr/odmrd.conf";
}

/* odmr_conf_key_line - line that set a key, 0 for a default */
static unsigned
odmr_conf_key_line(const unsigned *lines, const char *key)
{
	const struct conf_key *k = conf_lookup(odmr_conf_keys, key);

	return k ? lines[k - odmr_conf_keys] : 0;
}

/* odmr_conf_where - "FILE:LINE" or "FILE" for a message */
static char *
odmr_conf_where(const char *name, unsigned line)
{
	return line ? xasprintf("%s:%u", name, line) : xstrdup(name);
}

/* odmr_conf_hostname - default hostname from the system host name */
static int
odmr_conf_hostname(struct odmr_conf *conf, const char *name,
    char **error_r)
{
	const struct conf_key *k = conf_lookup(odmr_conf_keys, "hostname");
	char host[ODMR_HOST_NAME_MAX + 1], *err = NULL;

	if (gethostname(host, sizeof(host)) < 0) {
		*error_r = xasprintf("%s: cannot get the system host name "
		    "(%s): set hostname", name, strerror(errno));
		return -1;
	}
	host[sizeof(host) - 1] = '\0';
	if (conf_set(k, conf, host, &err) < 0) {
		*error_r = xasprintf("%s: system host name: %s: set hostname",
		    name, err);
		free(err);
		return -1;
	}
	return 0;
}

/* odmr_conf_check - rules that span keys */
static int
odmr_conf_check(struct odmr_conf *conf, const char *name,
    const unsigned *lines, char **error_r)
{
	int cert = conf->tls_cert_file[0] != '\0';
	int key = conf->tls_key_file[0] != '\0';

	if (cert != key) {
		const char *set = cert ? "tls_cert_file" : "tls_key_file";
		const char *unset = cert ? "tls_key_file" : "tls_cert_file";
		char *where = odmr_conf_where(name,
		    odmr_conf_key_line(lines, set));

		*error_r = xasprintf("%s: %s is set but %s is not: set both "
		    "tls_cert_file and tls_key_file, or neither", where, set,
		    unset);
		free(where);
		return -1;
	}
	if (conf->tls_client_ca_file[0] != '\0' && !cert) {
		char *where = odmr_conf_where(name,
		    odmr_conf_key_line(lines, "tls_client_ca_file"));

		*error_r = xasprintf("%s: tls_client_ca_file is set but TLS is"
		    " not: set tls_cert_file and tls_key_file too", where);
		free(where);
		return -1;
	}
	return 0;
}

/* odmr_conf_parse_text - parse configuration text into a new struct */
int
odmr_conf_parse_text(const char *name, const char *text, size_t len,
    struct odmr_conf **confp, char **error_r)
{
	struct odmr_conf *conf = xcalloc(1, sizeof(*conf));
	unsigned lines[ODMR_CONF_NKEYS + 1];

	*confp = NULL;
	if (name == NULL)
		name = "odmrd.conf";
	conf->path = xstrdup(name);
	if (conf_defaults(odmr_conf_keys, conf, error_r) < 0 ||
	    conf_parse(odmr_conf_keys, conf, name, text, len, lines,
	    error_r) < 0 ||
	    (conf->hostname == NULL &&
	    odmr_conf_hostname(conf, name, error_r) < 0) ||
	    odmr_conf_check(conf, name, lines, error_r) < 0) {
		odmr_conf_free(&conf);
		return -1;
	}
	*confp = conf;
	return 0;
}

/* odmr_conf_load - read a file, or use the defaults if it is optional */
int
odmr_conf_load(const char *path, int explicit_path,
    struct odmr_conf **confp, char **error_r)
{
	char *text = NULL, *err = NULL;
	size_t len = 0;
	int rc;

	*confp = NULL;
	if (path == NULL)
		path = odmr_conf_default_path();
	if (conf_read_file(path, &text, &len, &err) < 0) {
		/* Without -f a missing file means "all defaults". */
		if (errno != ENOENT || explicit_path) {
			*error_r = err;
			return -1;
		}
		free(err);
		rc = odmr_conf_parse_text(path, "", 0, confp, error_r);
		if (rc == 0) {
			free((*confp)->path);
			(*confp)->path = NULL;
		}
		return rc;
	}
	rc = odmr_conf_parse_text(path, text, len, confp, error_r);
	free(text);
	return rc;
}

/* odmr_conf_free - release a configuration and clear the pointer */
void
odmr_conf_free(struct odmr_conf **confp)
{
	struct odmr_conf *conf = *confp;

	if (conf == NULL)
		return;
	conf_release(odmr_conf_keys, conf);
	free(conf->path);
	free(conf);
	*confp = NULL;
}
