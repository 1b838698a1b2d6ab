/*
 * NAME
 *	test-conf - unit tests for lib/conf and odmr/odmr_conf
 * SYNOPSIS
 *	CMOCKA_MESSAGE_OUTPUT=TAP tests/unit/test-conf
 * DESCRIPTION
 *	Table-driven: good files with the value each key must end up with,
 *	bad files with the exact one-line error, the built-in defaults,
 *	units, duplicates, line limits, listen lists and file loading. A
 *	small private key table exercises lib/conf without odmrd's keys.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "conf.h"
#include "odmr_conf.h"
#include "xmalloc.h"

/* field_str - any odmr_conf field as text, for table comparisons */
static void
field_str(const struct odmr_conf *c, const char *f, char *out, size_t sz)
{
	static const char *const lv[] = { "err", "warning", "info", "debug" };

#define S(name) if (strcmp(f, #name) == 0) { \
		snprintf(out, sz, "%s", c->name); return; }
#define N(name) if (strcmp(f, #name) == 0) { \
		snprintf(out, sz, "%llu", (unsigned long long)c->name); \
		return; }
	S(hostname) S(state_dir) S(smtp_listen) S(odmr_listen)
	S(odmrs_listen) S(tls_cert_file) S(tls_key_file) S(bounce_relay)
	S(user)
	N(max_message_size) N(max_recipients) N(max_connections)
	N(max_connections_per_ip) N(queue_lifetime) N(delay_warning)
	N(max_command_line) N(max_text_line) N(max_errors)
	N(max_received_headers) N(command_timeout) N(data_timeout)
	N(shutdown_timeout) N(commit_threads) N(data_min_rate)
	N(max_reply_backlog) N(loop_stall_timeout)
#undef S
#undef N
	if (strcmp(f, "auth_require_tls") == 0) {
		snprintf(out, sz, "%s", c->auth_require_tls ? "yes" : "no");
		return;
	}
	if (strcmp(f, "log_level") == 0) {
		snprintf(out, sz, "%s", lv[c->log_level]);
		return;
	}
	fail_msg("no field %s", f);
}

/* parse - odmr_conf_parse_text on a C string named t.conf */
static int
parse(const char *text, struct odmr_conf **c, char **err)
{
	*c = NULL;
	*err = NULL;
	return odmr_conf_parse_text("t.conf", text, strlen(text), c, err);
}

struct good_case {
	const char	*text;
	const char	*field;
	const char	*want;
};

static const struct good_case good_cases[] = {
	/* every default */
	{ "", "state_dir", LOCALSTATEDIR "/lib/odmr" },
	{ "", "smtp_listen", "[::]:25" },
	{ "", "odmr_listen", "[::]:366" },
	{ "", "odmrs_listen", "" },
	{ "", "tls_cert_file", "" },
	{ "", "tls_key_file", "" },
	{ "", "auth_require_tls", "yes" },
	{ "", "max_message_size", "52428800" },
	{ "", "max_recipients", "1000" },
	{ "", "max_connections", "1000" },
	{ "", "max_connections_per_ip", "20" },
	{ "", "queue_lifetime", "432000" },
	{ "", "delay_warning", "86400" },
	{ "", "bounce_relay", "" },
	{ "", "user", "" },
	{ "", "log_level", "info" },
	{ "", "max_command_line", "512" },
	{ "", "max_text_line", "1000" },
	{ "", "max_errors", "20" },
	{ "", "max_received_headers", "50" },
	{ "", "command_timeout", "300" },
	{ "", "data_timeout", "180" },
	{ "", "shutdown_timeout", "30" },
	{ "", "commit_threads", "8" },
	{ "", "data_min_rate", "500" },
	{ "", "max_reply_backlog", "65536" },
	{ "", "loop_stall_timeout", "30" },
	{ "loop_stall_timeout = 0\n", "loop_stall_timeout", "0" },
	{ "max_reply_backlog = 1M\n", "max_reply_backlog", "1048576" },
	{ "data_min_rate = 2k\n", "data_min_rate", "2048" },
	/* syntax: spaces, tabs, comments, CRLF, BOM, no final newline */
	{ "hostname = mx.example.net\n", "hostname", "mx.example.net" },
	{ "hostname=mx.example.net", "hostname", "mx.example.net" },
	{ "  \thostname\t=\t mx.example.net \t\n", "hostname",
	    "mx.example.net" },
	{ "hostname = mx.example.net\r\n", "hostname", "mx.example.net" },
	{ "\xef\xbb\xbfhostname = mx.example.net\n", "hostname",
	    "mx.example.net" },
	{ "# comment\n\n   # indented comment\nuser = odmr\n", "user",
	    "odmr" },
	{ "user = odmr # trailing comment\n", "user", "odmr" },
	{ "user = od#mr\n", "user", "od#mr" },
	{ "user = odmr\t# tab comment\n", "user", "odmr" },
	{ "user =\n", "user", "" },
	{ "user = #nothing\n", "user", "" },
	{ "hostname = MX.Example.NET\n", "hostname", "mx.example.net" },
	{ "hostname = localhost\n", "hostname", "localhost" },
	{ "hostname = a-b.c0\n", "hostname", "a-b.c0" },
	{ "state_dir = /srv/odmr\n", "state_dir", "/srv/odmr" },
	/* listen lists */
	{ "smtp_listen = 127.0.0.1:2525\n", "smtp_listen", "127.0.0.1:2525" },
	{ "smtp_listen = *:25\n", "smtp_listen", "*:25" },
	{ "smtp_listen = [::1]:25, 192.0.2.1:25,  *:2525\n", "smtp_listen",
	    "[::1]:25,192.0.2.1:25,*:2525" },
	{ "smtp_listen = [2001:db8::1]:65535\n", "smtp_listen",
	    "[2001:db8::1]:65535" },
	{ "smtp_listen = 0.0.0.0:1\n", "smtp_listen", "0.0.0.0:1" },
	{ "odmrs_listen = [::]:3366\n", "odmrs_listen", "[::]:3366" },
	{ "odmrs_listen =\n", "odmrs_listen", "" },
	/* booleans */
	{ "auth_require_tls = no\n", "auth_require_tls", "no" },
	{ "auth_require_tls = No\n", "auth_require_tls", "no" },
	{ "auth_require_tls = false\n", "auth_require_tls", "no" },
	{ "auth_require_tls = off\n", "auth_require_tls", "no" },
	{ "auth_require_tls = 0\n", "auth_require_tls", "no" },
	{ "auth_require_tls = yes\n", "auth_require_tls", "yes" },
	{ "auth_require_tls = TRUE\n", "auth_require_tls", "yes" },
	{ "auth_require_tls = on\n", "auth_require_tls", "yes" },
	{ "auth_require_tls = 1\n", "auth_require_tls", "yes" },
	/* sizes and numbers */
	{ "max_message_size = 1024\n", "max_message_size", "1024" },
	{ "max_message_size = 10k\n", "max_message_size", "10240" },
	{ "max_message_size = 10K\n", "max_message_size", "10240" },
	{ "max_message_size = 2M\n", "max_message_size", "2097152" },
	{ "max_message_size = 1G\n", "max_message_size", "1073741824" },
	{ "max_message_size = 1MB\n", "max_message_size", "1048576" },
	{ "max_recipients = 1\n", "max_recipients", "1" },
	{ "max_recipients = 1000000\n", "max_recipients", "1000000" },
	{ "max_connections = 5\n", "max_connections", "5" },
	{ "max_connections_per_ip = 3\n", "max_connections_per_ip", "3" },
	/* durations */
	{ "queue_lifetime = 30\n", "queue_lifetime", "30" },
	{ "queue_lifetime = 30s\n", "queue_lifetime", "30" },
	{ "queue_lifetime = 10m\n", "queue_lifetime", "600" },
	{ "queue_lifetime = 2h\n", "queue_lifetime", "7200" },
	{ "queue_lifetime = 7d\n", "queue_lifetime", "604800" },
	{ "queue_lifetime = 1w\n", "queue_lifetime", "604800" },
	{ "delay_warning = 0\n", "delay_warning", "0" },
	{ "delay_warning = 4h\n", "delay_warning", "14400" },
	/* SMTP line limits: sizes with units, both ends of the range */
	{ "max_command_line = 512\n", "max_command_line", "512" },
	{ "max_command_line = 1k\n", "max_command_line", "1024" },
	{ "max_command_line = 4K\n", "max_command_line", "4096" },
	{ "max_command_line = 2048B\n", "max_command_line", "2048" },
	{ "max_command_line = 64k\n", "max_command_line", "65536" },
	{ "max_command_line = 65536\n", "max_command_line", "65536" },
	{ "max_text_line = 1000\n", "max_text_line", "1000" },
	{ "max_text_line = 1k\n", "max_text_line", "1024" },
	{ "max_text_line = 998k\n", "max_text_line", "1021952" },
	{ "max_text_line = 1M\n", "max_text_line", "1048576" },
	{ "max_text_line = 1mb\n", "max_text_line", "1048576" },
	{ "max_text_line = 1048576\n", "max_text_line", "1048576" },
	/* SMTP counters */
	{ "max_errors = 1\n", "max_errors", "1" },
	{ "max_errors = 5\n", "max_errors", "5" },
	{ "max_errors = 1000\n", "max_errors", "1000" },
	{ "max_errors = 007\n", "max_errors", "7" },
	{ "max_received_headers = 1\n", "max_received_headers", "1" },
	{ "max_received_headers = 100\n", "max_received_headers", "100" },
	{ "max_received_headers = 1000\n", "max_received_headers", "1000" },
	{ "commit_threads = 1\n", "commit_threads", "1" },
	{ "commit_threads = 16\n", "commit_threads", "16" },
	{ "commit_threads = 64\n", "commit_threads", "64" },
	/* SMTP timeouts: seconds by default, 1s..1h, shutdown from 0 */
	{ "command_timeout = 1\n", "command_timeout", "1" },
	{ "command_timeout = 1s\n", "command_timeout", "1" },
	{ "command_timeout = 10m\n", "command_timeout", "600" },
	{ "command_timeout = 1h\n", "command_timeout", "3600" },
	{ "command_timeout = 3600\n", "command_timeout", "3600" },
	{ "data_timeout = 1s\n", "data_timeout", "1" },
	{ "data_timeout = 90\n", "data_timeout", "90" },
	{ "data_timeout = 5m\n", "data_timeout", "300" },
	{ "data_timeout = 60m\n", "data_timeout", "3600" },
	{ "shutdown_timeout = 0\n", "shutdown_timeout", "0" },
	{ "shutdown_timeout = 0s\n", "shutdown_timeout", "0" },
	{ "shutdown_timeout = 2m\n", "shutdown_timeout", "120" },
	{ "shutdown_timeout = 1h\n", "shutdown_timeout", "3600" },
	{ "shutdown_timeout = 3600s\n", "shutdown_timeout", "3600" },
	/* bounce relay */
	{ "bounce_relay = smtp.example.net\n", "bounce_relay",
	    "smtp.example.net" },
	{ "bounce_relay = Smtp.Example.net:587\n", "bounce_relay",
	    "smtp.example.net:587" },
	{ "bounce_relay = 192.0.2.7:25\n", "bounce_relay", "192.0.2.7:25" },
	{ "bounce_relay = [2001:db8::7]:25\n", "bounce_relay",
	    "[2001:db8::7]:25" },
	{ "bounce_relay = [192.0.2.7]\n", "bounce_relay", "[192.0.2.7]" },
	/* log levels */
	{ "log_level = err\n", "log_level", "err" },
	{ "log_level = warning\n", "log_level", "warning" },
	{ "log_level = warn\n", "log_level", "warning" },
	{ "log_level = DEBUG\n", "log_level", "debug" },
	/* TLS pair */
	{ "tls_cert_file = /etc/odmr/c.pem\ntls_key_file = /etc/odmr/k.pem\n",
	    "tls_key_file", "/etc/odmr/k.pem" },
	/* a full file: the last key wins nothing, each key set once */
	{ "hostname = mx.example.net\nstate_dir = /var/lib/odmr\n"
	  "smtp_listen = [::]:25\nodmr_listen = [::]:366\n"
	  "odmrs_listen = [::]:3366\ntls_cert_file = /c\ntls_key_file = /k\n"
	  "auth_require_tls = yes\nmax_message_size = 20M\n"
	  "max_recipients = 500\nmax_connections = 200\n"
	  "max_connections_per_ip = 10\nqueue_lifetime = 4d\n"
	  "delay_warning = 6h\nbounce_relay = relay.example.net:25\n"
	  "user = odmr\nlog_level = debug\n", "max_message_size",
	  "20971520" },
	/* the SMTP keys together, after others, with comments */
	{ "hostname = mx.example.net\n# SMTP limits\n"
	  "max_command_line = 1k\nmax_text_line = 2k   # lenient\n"
	  "max_errors = 10\nmax_received_headers = 30\n"
	  "command_timeout = 10m\ndata_timeout = 5m\n"
	  "shutdown_timeout = 1m\ncommit_threads = 4\n", "data_timeout",
	  "300" },
	{ "max_command_line = 1k\nmax_text_line = 2k   # lenient\n"
	  "commit_threads = 4\n", "max_text_line", "2048" },
};

/* test_good - a good text parses and sets its field */
static void
test_good(void **state)
{
	const struct good_case *t = *state;
	struct odmr_conf *c;
	char *err, got[512];

	if (parse(t->text, &c, &err) < 0)
		fail_msg("%s", err);
	assert_non_null(c);
	assert_null(err);
	field_str(c, t->field, got, sizeof(got));
	assert_string_equal(got, t->want);
	assert_string_equal(c->path, "t.conf");
	odmr_conf_free(&c);
	assert_null(c);
}

struct bad_case {
	const char	*text;
	const char	*want;
};

static const struct bad_case bad_cases[] = {
	{ "foo = bar\n", "t.conf:1: unknown key 'foo'" },
	{ "\n\n# c\nHostname = x.example\n",
	    "t.conf:4: unknown key 'Hostname'" },
	{ "max message size = 1\n", "t.conf:1: unknown key 'max message size'" },
	{ "hostname\n", "t.conf:1: missing '=' after 'hostname'" },
	{ "foo bar baz\n", "t.conf:1: missing '=' after 'foo'" },
	{ "user = a\nhostname mx.example.net\n",
	    "t.conf:2: missing '=' after 'hostname'" },
	{ "= value\n", "t.conf:1: missing key before '='" },
	{ "user = a\n\n\nuser = b\n", "t.conf:4: 'user' already set at line 1" },
	{ "hostname = a.example\nuser = u\nhostname = b.example\n",
	    "t.conf:3: 'hostname' already set at line 1" },
	{ "max_message_size = abc\n",
	    "t.conf:1: bad value for max_message_size 'abc': expected a number" },
	{ "max_message_size = -5\n",
	    "t.conf:1: bad value for max_message_size '-5': expected a number" },
	{ "max_message_size = +5M\n",
	    "t.conf:1: bad value for max_message_size '+5M': expected a number" },
	{ "max_message_size = 5T\n",
	    "t.conf:1: bad value for max_message_size '5T': unknown size unit "
	    "(use k, M or G)" },
	{ "max_message_size = 5Mx\n",
	    "t.conf:1: bad value for max_message_size '5Mx': trailing "
	    "characters after size" },
	{ "max_message_size = 5 M\n",
	    "t.conf:1: bad value for max_message_size '5 M': unknown size unit "
	    "(use k, M or G)" },
	{ "max_message_size = 99999999999999999999\n",
	    "t.conf:1: bad value for max_message_size '99999999999999999999': "
	    "number too large" },
	{ "max_message_size = 17179869184G\n",
	    "t.conf:1: bad value for max_message_size '17179869184G': "
	    "number too large" },
	{ "max_message_size = 100\n",
	    "t.conf:1: bad value for max_message_size '100': must be at least "
	    "1024 octets" },
	{ "max_message_size =\n",
	    "t.conf:1: bad value for max_message_size '': empty value" },
	{ "max_recipients = 0\n",
	    "t.conf:1: bad value for max_recipients '0': must be at least 1" },
	{ "max_recipients = 1000001\n",
	    "t.conf:1: bad value for max_recipients '1000001': must be at most "
	    "1000000" },
	{ "max_recipients = 10k\n",
	    "t.conf:1: bad value for max_recipients '10k': trailing characters "
	    "after number" },
	{ "max_connections = 1.5\n",
	    "t.conf:1: bad value for max_connections '1.5': trailing characters "
	    "after number" },
	{ "queue_lifetime = 0\n",
	    "t.conf:1: bad value for queue_lifetime '0': must be at least 1 "
	    "seconds" },
	{ "queue_lifetime = 5y\n",
	    "t.conf:1: bad value for queue_lifetime '5y': unknown duration unit "
	    "(use s, m, h, d or w)" },
	{ "queue_lifetime = 5dd\n",
	    "t.conf:1: bad value for queue_lifetime '5dd': trailing characters "
	    "after duration" },
	{ "delay_warning = -1\n",
	    "t.conf:1: bad value for delay_warning '-1': expected a number" },
	{ "auth_require_tls = maybe\n",
	    "t.conf:1: bad value for auth_require_tls 'maybe': expected yes "
	    "or no" },
	{ "auth_require_tls =\n",
	    "t.conf:1: bad value for auth_require_tls '': empty value" },
	{ "log_level = verbose\n",
	    "t.conf:1: bad value for log_level 'verbose': expected err, "
	    "warning, info or debug" },
	{ "state_dir = var/lib/odmr\n",
	    "t.conf:1: bad value for state_dir 'var/lib/odmr': expected an "
	    "absolute path" },
	{ "state_dir =\n", "t.conf:1: bad value for state_dir '': empty value" },
	{ "tls_cert_file = cert.pem\n",
	    "t.conf:1: bad value for tls_cert_file 'cert.pem': expected an "
	    "absolute path" },
	{ "hostname =\n", "t.conf:1: bad value for hostname '': empty value" },
	{ "hostname = mx.example.net.\n",
	    "t.conf:1: bad value for hostname 'mx.example.net.': host name "
	    "ends with a dot" },
	{ "hostname = mx..example\n",
	    "t.conf:1: bad value for hostname 'mx..example': empty label in "
	    "host name" },
	{ "hostname = -mx.example\n",
	    "t.conf:1: bad value for hostname '-mx.example': label starts "
	    "with a hyphen" },
	{ "hostname = mx-.example\n",
	    "t.conf:1: bad value for hostname 'mx-.example': label ends with "
	    "a hyphen" },
	{ "hostname = mx_1.example\n",
	    "t.conf:1: bad value for hostname 'mx_1.example': invalid "
	    "character in host name" },
	{ "hostname = 192.0.2.1\n",
	    "t.conf:1: bad value for hostname '192.0.2.1': numeric last label "
	    "(an address is not a host name)" },
	{ "hostname = b\xc3\xbc" "cher.example\n",
	    "t.conf:1: bad value for hostname 'b\\xc3\\xbccher.example': "
	    "non-ASCII host name (write the xn-- form)" },
	{ "smtp_listen = 127.0.0.1\n",
	    "t.conf:1: bad value for smtp_listen '127.0.0.1': '127.0.0.1': "
	    "missing ':port' after the address" },
	{ "smtp_listen = 127.0.0.1:0\n",
	    "t.conf:1: bad value for smtp_listen '127.0.0.1:0': '127.0.0.1:0': "
	    "expected a port number from 1 to 65535" },
	{ "smtp_listen = 127.0.0.1:65536\n",
	    "t.conf:1: bad value for smtp_listen '127.0.0.1:65536': "
	    "'127.0.0.1:65536': expected a port number from 1 to 65535" },
	{ "smtp_listen = 127.0.0.1:smtp\n",
	    "t.conf:1: bad value for smtp_listen '127.0.0.1:smtp': "
	    "'127.0.0.1:smtp': expected a port number from 1 to 65535" },
	{ "smtp_listen = 127.0.0.1:\n",
	    "t.conf:1: bad value for smtp_listen '127.0.0.1:': '127.0.0.1:': "
	    "expected a port number from 1 to 65535" },
	{ "smtp_listen = 256.0.0.1:25\n",
	    "t.conf:1: bad value for smtp_listen '256.0.0.1:25': "
	    "'256.0.0.1:25': expected an IPv4 address, [IPv6 address] or '*' "
	    "before ':port'" },
	{ "smtp_listen = localhost:25\n",
	    "t.conf:1: bad value for smtp_listen 'localhost:25': "
	    "'localhost:25': expected an IPv4 address, [IPv6 address] or '*' "
	    "before ':port'" },
	{ "smtp_listen = ::1:25\n",
	    "t.conf:1: bad value for smtp_listen '::1:25': '::1:25': an IPv6 "
	    "address must be written in brackets: [address]:port" },
	{ "smtp_listen = [::1]25\n",
	    "t.conf:1: bad value for smtp_listen '[::1]25': '[::1]25': "
	    "missing ':port' after the address" },
	{ "smtp_listen = [::1\n",
	    "t.conf:1: bad value for smtp_listen '[::1': '[::1': expected "
	    "[IPv6 address]:port" },
	{ "smtp_listen = [127.0.0.1]:25\n",
	    "t.conf:1: bad value for smtp_listen '[127.0.0.1]:25': "
	    "'[127.0.0.1]:25': expected [IPv6 address]:port" },
	{ "smtp_listen = *:25,,*:26\n",
	    "t.conf:1: bad value for smtp_listen '*:25,,*:26': empty element "
	    "in listen list" },
	{ "smtp_listen = *:25,\n",
	    "t.conf:1: bad value for smtp_listen '*:25,': empty element in "
	    "listen list" },
	{ "smtp_listen = *:25, *:25\n",
	    "t.conf:1: bad value for smtp_listen '*:25, *:25': '*:25' listed "
	    "twice" },
	{ "smtp_listen =\n",
	    "t.conf:1: bad value for smtp_listen '': empty value" },
	{ "odmr_listen = 10.0.0.1:366, [fe80::1%eth0]:366\n",
	    "t.conf:1: bad value for odmr_listen '10.0.0.1:366, "
	    "[fe80::1%eth0]:366': '[fe80::1%eth0]:366': expected "
	    "[IPv6 address]:port" },
	{ "bounce_relay = ::1\n",
	    "t.conf:1: bad value for bounce_relay '::1': an IPv6 address must "
	    "be written in brackets: [address]:port" },
	{ "bounce_relay = relay.example.net:0\n",
	    "t.conf:1: bad value for bounce_relay 'relay.example.net:0': "
	    "expected a port number from 1 to 65535" },
	{ "bounce_relay = relay..example\n",
	    "t.conf:1: bad value for bounce_relay 'relay..example': empty "
	    "label in host name" },
	{ "bounce_relay = [relay.example]:25\n",
	    "t.conf:1: bad value for bounce_relay '[relay.example]:25': "
	    "expected [IP address][:port]" },
	{ "bounce_relay = [::1]:x\n",
	    "t.conf:1: bad value for bounce_relay '[::1]:x': expected a port "
	    "number from 1 to 65535 after ']:'" },
	/* max_command_line: size 512..64k */
	{ "max_command_line = 511\n",
	    "t.conf:1: bad value for max_command_line '511': must be at least "
	    "512 octets" },
	{ "max_command_line = 0\n",
	    "t.conf:1: bad value for max_command_line '0': must be at least "
	    "512 octets" },
	{ "max_command_line = 65537\n",
	    "t.conf:1: bad value for max_command_line '65537': must be at most "
	    "65536 octets" },
	{ "max_command_line = 65k\n",
	    "t.conf:1: bad value for max_command_line '65k': must be at most "
	    "65536 octets" },
	{ "max_command_line = 1G\n",
	    "t.conf:1: bad value for max_command_line '1G': must be at most "
	    "65536 octets" },
	{ "max_command_line = 512x\n",
	    "t.conf:1: bad value for max_command_line '512x': unknown size "
	    "unit (use k, M or G)" },
	{ "max_command_line = 1kx\n",
	    "t.conf:1: bad value for max_command_line '1kx': trailing "
	    "characters after size" },
	{ "max_command_line = 1.5k\n",
	    "t.conf:1: bad value for max_command_line '1.5k': unknown size "
	    "unit (use k, M or G)" },
	{ "max_command_line = -512\n",
	    "t.conf:1: bad value for max_command_line '-512': expected a "
	    "number" },
	{ "max_command_line =\n",
	    "t.conf:1: bad value for max_command_line '': empty value" },
	/* max_text_line: size 1000..1M */
	{ "max_text_line = 999\n",
	    "t.conf:1: bad value for max_text_line '999': must be at least "
	    "1000 octets" },
	{ "max_text_line = 1048577\n",
	    "t.conf:1: bad value for max_text_line '1048577': must be at most "
	    "1048576 octets" },
	{ "max_text_line = 2M\n",
	    "t.conf:1: bad value for max_text_line '2M': must be at most "
	    "1048576 octets" },
	{ "max_text_line = 1000 lines\n",
	    "t.conf:1: bad value for max_text_line '1000 lines': unknown size "
	    "unit (use k, M or G)" },
	{ "max_text_line = large\n",
	    "t.conf:1: bad value for max_text_line 'large': expected a "
	    "number" },
	/* max_errors and max_received_headers: numbers 1..1000 */
	{ "max_errors = 0\n",
	    "t.conf:1: bad value for max_errors '0': must be at least 1" },
	{ "max_errors = 1001\n",
	    "t.conf:1: bad value for max_errors '1001': must be at most 1000" },
	{ "max_errors = 20k\n",
	    "t.conf:1: bad value for max_errors '20k': trailing characters "
	    "after number" },
	{ "max_errors = twenty\n",
	    "t.conf:1: bad value for max_errors 'twenty': expected a number" },
	{ "max_received_headers = 0\n",
	    "t.conf:1: bad value for max_received_headers '0': must be at "
	    "least 1" },
	{ "max_received_headers = 1001\n",
	    "t.conf:1: bad value for max_received_headers '1001': must be at "
	    "most 1000" },
	{ "max_received_headers = 50.0\n",
	    "t.conf:1: bad value for max_received_headers '50.0': trailing "
	    "characters after number" },
	{ "max_received_headers =\n",
	    "t.conf:1: bad value for max_received_headers '': empty value" },
	/* command_timeout and data_timeout: durations 1s..1h */
	{ "command_timeout = 0\n",
	    "t.conf:1: bad value for command_timeout '0': must be at least 1 "
	    "seconds" },
	{ "command_timeout = 3601\n",
	    "t.conf:1: bad value for command_timeout '3601': must be at most "
	    "3600 seconds" },
	{ "command_timeout = 2h\n",
	    "t.conf:1: bad value for command_timeout '2h': must be at most "
	    "3600 seconds" },
	{ "command_timeout = 5M\n",
	    "t.conf:1: bad value for command_timeout '5M': unknown duration "
	    "unit (use s, m, h, d or w)" },
	{ "command_timeout = 1h30m\n",
	    "t.conf:1: bad value for command_timeout '1h30m': trailing "
	    "characters after duration" },
	{ "command_timeout = 99999999999999999999w\n",
	    "t.conf:1: bad value for command_timeout '99999999999999999999w': "
	    "number too large" },
	{ "data_timeout = 0s\n",
	    "t.conf:1: bad value for data_timeout '0s': must be at least 1 "
	    "seconds" },
	{ "data_timeout = 1d\n",
	    "t.conf:1: bad value for data_timeout '1d': must be at most 3600 "
	    "seconds" },
	{ "data_timeout = 3 m\n",
	    "t.conf:1: bad value for data_timeout '3 m': unknown duration unit "
	    "(use s, m, h, d or w)" },
	/* shutdown_timeout: duration 0..1h */
	{ "shutdown_timeout = 3601s\n",
	    "t.conf:1: bad value for shutdown_timeout '3601s': must be at most "
	    "3600 seconds" },
	{ "shutdown_timeout = 1w\n",
	    "t.conf:1: bad value for shutdown_timeout '1w': must be at most "
	    "3600 seconds" },
	{ "shutdown_timeout = -1\n",
	    "t.conf:1: bad value for shutdown_timeout '-1': expected a number" },
	{ "shutdown_timeout = 30ss\n",
	    "t.conf:1: bad value for shutdown_timeout '30ss': trailing "
	    "characters after duration" },
	{ "shutdown_timeout =\n",
	    "t.conf:1: bad value for shutdown_timeout '': empty value" },
	/* commit_threads: number 1..64 */
	{ "commit_threads = 0\n",
	    "t.conf:1: bad value for commit_threads '0': must be at least 1" },
	{ "commit_threads = 65\n",
	    "t.conf:1: bad value for commit_threads '65': must be at most 64" },
	{ "commit_threads = 8 threads\n",
	    "t.conf:1: bad value for commit_threads '8 threads': trailing "
	    "characters after number" },
	{ "commit_threads = 0x10\n",
	    "t.conf:1: bad value for commit_threads '0x10': trailing "
	    "characters after number" },
	/* the new keys: line numbers, duplicates, near-miss names */
	{ "hostname = mx.example.net\n\n# limits\nmax_errors = 0\n",
	    "t.conf:4: bad value for max_errors '0': must be at least 1" },
	{ "commit_threads = 4\n# again\ncommit_threads = 8\n",
	    "t.conf:3: 'commit_threads' already set at line 1" },
	{ "command_timeout = 5m\ndata_timeout = 3m\ncommand_timeout = 5m\n",
	    "t.conf:3: 'command_timeout' already set at line 1" },
	{ "max_text_line = 1k\nmax_text_line = 1k\n",
	    "t.conf:2: 'max_text_line' already set at line 1" },
	{ "max_command_lines = 512\n",
	    "t.conf:1: unknown key 'max_command_lines'" },
	{ "commit-threads = 8\n", "t.conf:1: unknown key 'commit-threads'" },
	{ "Max_Errors = 5\n", "t.conf:1: unknown key 'Max_Errors'" },
	{ "data_timeout 3m\n", "t.conf:1: missing '=' after 'data_timeout'" },
	{ "user = a\x01" "b\n", "t.conf:1: control character 0x01 in line" },
	{ "user = a\rb\n", "t.conf:1: control character 0x0d in line" },
	{ "tls_cert_file = /etc/c.pem\n",
	    "t.conf:1: tls_cert_file is set but tls_key_file is not: set both "
	    "tls_cert_file and tls_key_file, or neither" },
	{ "user = x\ntls_key_file = /etc/k.pem\n",
	    "t.conf:2: tls_key_file is set but tls_cert_file is not: set both "
	    "tls_cert_file and tls_key_file, or neither" },
	/* untrusted text in a message is shortened and escaped */
	{ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  " = 1\n", "t.conf:1: unknown key 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'" },
	{ "k\xff = 1\n", "t.conf:1: unknown key 'k\\xff'" },
};

/* test_bad - a bad text fails with exactly the expected line */
static void
test_bad(void **state)
{
	const struct bad_case *t = *state;
	struct odmr_conf *c;
	char *err;

	if (parse(t->text, &c, &err) == 0)
		fail_msg("parsed: %s", t->text);
	assert_null(c);
	assert_non_null(err);
	assert_string_equal(err, t->want);
	assert_null(strchr(err, '\n'));
	free(err);
}

/* test_default_hostname - hostname falls back to gethostname() */
static void
test_default_hostname(void **state)
{
	struct odmr_conf *c;
	char host[256], *err;

	(void)state;
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (parse("", &c, &err) < 0) {
		/* Only an unusable system name may fail, and must say so. */
		assert_non_null(strstr(err, "system host name"));
		assert_non_null(strstr(err, "set hostname"));
		free(err);
		return;
	}
	assert_string_equal(c->hostname, host);
	odmr_conf_free(&c);
}

/* test_line_limits - 4096 octets is fine, 4097 is not; NUL rejected */
static void
test_line_limits(void **state)
{
	char *text = xmalloc(CONF_LINE_MAX + 64), *err;
	struct odmr_conf *c;
	size_t n;

	(void)state;
	/* a comment line of exactly CONF_LINE_MAX octets */
	memset(text, 'x', CONF_LINE_MAX);
	text[0] = '#';
	text[CONF_LINE_MAX] = '\n';
	assert_int_equal(odmr_conf_parse_text("t.conf", text,
	    CONF_LINE_MAX + 1, &c, &err), 0);
	odmr_conf_free(&c);

	/* a user value that makes the line CONF_LINE_MAX octets */
	n = (size_t)snprintf(text, CONF_LINE_MAX + 64, "user = ");
	memset(text + n, 'u', CONF_LINE_MAX - n);
	assert_int_equal(odmr_conf_parse_text("t.conf", text, CONF_LINE_MAX,
	    &c, &err), 0);
	assert_int_equal(strlen(c->user), CONF_LINE_MAX - n);
	odmr_conf_free(&c);

	/* one more octet, on line 2, with or without a final newline */
	memmove(text + 2, text, CONF_LINE_MAX);
	text[0] = '#';
	text[1] = '\n';
	text[CONF_LINE_MAX + 2] = 'u';
	assert_int_equal(odmr_conf_parse_text("t.conf", text,
	    CONF_LINE_MAX + 3, &c, &err), -1);
	assert_null(c);
	assert_string_equal(err, "t.conf:2: line longer than 4096 octets");
	free(err);
	text[CONF_LINE_MAX + 3] = '\n';
	assert_int_equal(odmr_conf_parse_text("t.conf", text,
	    CONF_LINE_MAX + 4, &c, &err), -1);
	assert_string_equal(err, "t.conf:2: line longer than 4096 octets");
	free(err);
	free(text);

	/* NUL bytes, in a value and in a comment */
	assert_int_equal(odmr_conf_parse_text("t.conf", "user = a\0b\n", 11,
	    &c, &err), -1);
	assert_string_equal(err, "t.conf:1: NUL byte in line");
	free(err);
	assert_int_equal(odmr_conf_parse_text("t.conf", "\n\n# \0\n", 6,
	    &c, &err), -1);
	assert_string_equal(err, "t.conf:3: NUL byte in line");
	free(err);

	/* the length is honoured: nothing past len is read */
	assert_int_equal(odmr_conf_parse_text("t.conf", "user = abcdef", 9,
	    &c, &err), 0);
	assert_string_equal(c->user, "ab");
	odmr_conf_free(&c);
}

/* write_file - create a file with the given contents */
static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* test_load - files, missing files with and without -f, directories */
static void
test_load(void **state)
{
	char dir[] = "/tmp/test-conf.XXXXXX", path[256], *err = NULL;
	struct odmr_conf *c;
	int n;

	(void)state;
	assert_string_equal(odmr_conf_default_path(),
	    SYSCONFDIR "/odmr/odmrd.conf");
	assert_non_null(mkdtemp(dir));

	/* missing, not explicit: built-in defaults, no path */
	n = snprintf(path, sizeof(path), "%s/missing.conf", dir);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	assert_int_equal(odmr_conf_load(path, 0, &c, &err), 0);
	assert_null(c->path);
	assert_string_equal(c->smtp_listen, "[::]:25");
	odmr_conf_free(&c);

	/* missing, explicit: an error naming the file */
	assert_int_equal(odmr_conf_load(path, 1, &c, &err), -1);
	assert_null(c);
	{
		char want[512];

		snprintf(want, sizeof(want),
		    "cannot open %s: No such file or directory", path);
		assert_string_equal(err, want);
	}
	free(err);

	/* a real file */
	write_file(path, "# test\nsmtp_listen = 127.0.0.1:2525\n"
	    "hostname = mx.example.org\n");
	assert_int_equal(odmr_conf_load(path, 1, &c, &err), 0);
	assert_string_equal(c->path, path);
	assert_string_equal(c->smtp_listen, "127.0.0.1:2525");
	assert_string_equal(c->hostname, "mx.example.org");
	odmr_conf_free(&c);

	/* an existing bad file is an error even without -f */
	write_file(path, "hostname = mx.example.org\nbogus = 1\n");
	assert_int_equal(odmr_conf_load(path, 0, &c, &err), -1);
	{
		char want[512];

		snprintf(want, sizeof(want), "%s:2: unknown key 'bogus'", path);
		assert_string_equal(err, want);
	}
	free(err);
	assert_int_equal(unlink(path), 0);

	/* a directory is not a configuration file */
	assert_int_equal(odmr_conf_load(dir, 1, &c, &err), -1);
	{
		char want[512];

		snprintf(want, sizeof(want), "%s: not a regular file", dir);
		assert_string_equal(err, want);
	}
	free(err);
	assert_int_equal(rmdir(dir), 0);
}

/* bound_case - a key set to its bound plus delta: 0 accepted, -1 not */
static void
bound_case(const char *key, uint64_t value, int want_rc)
{
	char *text = xasprintf("%s = %llu\n", key, (unsigned long long)value);
	struct odmr_conf *c;
	char *err;
	int rc = parse(text, &c, &err);

	if (rc != want_rc)
		fail_msg("%s: rc %d, want %d (%s)", text, rc, want_rc,
		    err ? err : "");
	if (rc < 0) {
		assert_non_null(strstr(err, "t.conf:1: bad value for "));
		assert_non_null(strstr(err, "must be at most"));
		free(err);
	}
	odmr_conf_free(&c);
	free(text);
}

/* test_bounds - the header's ODMR_CONF_*_MAX match the key table */
static void
test_bounds(void **state)
{
	char dir[] = "/tmp/test-conf.XXXXXX", path[256], want[512], *err;
	struct odmr_conf *c;
	int n;

	(void)state;
	bound_case("max_command_line", ODMR_CONF_COMMAND_LINE_MAX, 0);
	bound_case("max_command_line", ODMR_CONF_COMMAND_LINE_MAX + 1, -1);
	bound_case("max_text_line", ODMR_CONF_TEXT_LINE_MAX, 0);
	bound_case("max_text_line", ODMR_CONF_TEXT_LINE_MAX + 1, -1);
	bound_case("commit_threads", ODMR_CONF_COMMIT_THREADS_MAX, 0);
	bound_case("commit_threads", ODMR_CONF_COMMIT_THREADS_MAX + 1, -1);

	/* an error in a real file names that file and the line */
	assert_non_null(mkdtemp(dir));
	n = snprintf(path, sizeof(path), "%s/odmrd.conf", dir);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	write_file(path, "# odmrd\ncommand_timeout = 5m\n"
	    "data_timeout = 2h\n");
	assert_int_equal(odmr_conf_load(path, 1, &c, &err), -1);
	assert_null(c);
	snprintf(want, sizeof(want), "%s:3: bad value for data_timeout "
	    "'2h': must be at most 3600 seconds", path);
	assert_string_equal(err, want);
	free(err);
	write_file(path, "commit_threads = 2\nshutdown_timeout = 0\n");
	assert_int_equal(odmr_conf_load(path, 1, &c, &err), 0);
	assert_int_equal(c->commit_threads, 2);
	assert_int_equal(c->shutdown_timeout, 0);
	assert_int_equal(c->command_timeout, 300);
	odmr_conf_free(&c);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static const char *const all_keys[] = {
	"hostname", "state_dir", "smtp_listen", "odmr_listen", "odmrs_listen",
	"tls_cert_file", "tls_key_file", "auth_require_tls", "max_message_size",
	"max_recipients", "max_connections", "max_connections_per_ip",
	"queue_lifetime", "delay_warning", "bounce_relay", "user", "log_level",
	"max_command_line", "max_text_line", "max_errors",
	"max_received_headers", "command_timeout", "data_timeout",
	"shutdown_timeout", "commit_threads",
};

/* srcdir_file - a path under the source tree, from $top_srcdir or __FILE__ */
static char *
srcdir_file(const char *rel)
{
	const char *top = getenv("top_srcdir");
	const char *me = __FILE__, *cut = strstr(me, "tests/unit/test-conf.c");

	if (top != NULL && *top != '\0')
		return xasprintf("%s/%s", top, rel);
	if (cut == NULL || cut == me)
		return xstrdup(rel);
	return xasprintf("%.*s%s", (int)(cut - me), me, rel);
}

/* slurp - a whole file as a string */
static char *
slurp(const char *path, size_t *lenp)
{
	char *text = NULL, *err = NULL;

	if (conf_read_file(path, &text, lenp, &err) < 0)
		fail_msg("%s", err);
	return text;
}

/* test_example - contrib/odmrd.conf.example parses, commented or not */
static void
test_example(void **state)
{
	char *path = srcdir_file("contrib/odmrd.conf.example"), *text, *err;
	struct odmr_conf *c;
	struct buf all;
	size_t len, i;

	(void)state;
	text = slurp(path, &len);
	if (odmr_conf_parse_text(path, text, len, &c, &err) < 0)
		fail_msg("%s", err);
	odmr_conf_free(&c);

	/* uncomment every "#key = value" line: all keys, all valid */
	buf_init(&all);
	for (char *line = text; *line; ) {
		char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);

		if (line[0] == '#' && islower((unsigned char)line[1]))
			buf_append(&all, line + 1, n - 1);
		else
			buf_append(&all, line, n);
		line += n;
	}
	for (i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
		char *want = xasprintf("\n%s = ", all_keys[i]);

		if (strstr(buf_str(&all), want) == NULL)
			fail_msg("example lacks key %s", all_keys[i]);
		free(want);
	}
	if (odmr_conf_parse_text(path, buf_str(&all), all.len, &c, &err) < 0)
		fail_msg("%s", err);
	assert_string_equal(c->smtp_listen, "[::]:25,0.0.0.0:25");
	assert_string_equal(c->odmrs_listen, "[::]:3366");
	odmr_conf_free(&c);
	buf_release(&all);
	free(text);
	free(path);
}

/* man_has_tag - a ".TP" tag line of the manual names the key */
static int
man_has_tag(const char *text, const char *key)
{
	static const char tag[] = "\n.TP\n.BR ";
	size_t klen = strlen(key);

	for (const char *p = strstr(text, tag); p; p = strstr(p + 1, tag)) {
		const char *line = p + sizeof(tag) - 2;	/* at the space */
		size_t n = strcspn(line, "\n");

		for (const char *q = line; q + klen + 1 < line + n; q++)
			if (q[0] == ' ' && memcmp(q + 1, key, klen) == 0 &&
			    q[klen + 1] == ' ')
				return 1;
	}
	return 0;
}

/* test_manual - odmrd.conf.5 has a tagged entry for every key */
static void
test_manual(void **state)
{
	char *path = srcdir_file("odmr/odmrd.conf.5"), *text;
	size_t len, i;

	(void)state;
	text = slurp(path, &len);
	for (i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++)
		if (!man_has_tag(text, all_keys[i]))
			fail_msg("odmrd.conf.5 has no .TP entry for %s",
			    all_keys[i]);
	assert_false(man_has_tag(text, "no_such_key"));
	free(text);
	free(path);
}

/* test_manual_examples - the example files of odmrd.conf.5 are valid */
static void
test_manual_examples(void **state)
{
	char *path = srcdir_file("odmr/odmrd.conf.5"), *text, *sec, *end;
	const char *p;
	size_t len;
	int n = 0;

	(void)state;
	text = slurp(path, &len);
	assert_non_null(sec = strstr(text, "\n.SH EXAMPLES\n"));
	if ((end = strstr(sec + 1, "\n.SH ")) != NULL)
		end[1] = '\0';
	/* every .EX block but a shell transcript ("$ odmrd -t") */
	for (p = strstr(sec, "\n.EX\n"); p; p = strstr(p, "\n.EX\n")) {
		const char *body = p + 5, *ee = strstr(body, "\n.EE\n");
		struct odmr_conf *c;
		char *err;

		assert_non_null(ee);
		p = ee;
		if (body[0] == '$')
			continue;
		if (odmr_conf_parse_text("odmrd.conf.5 example", body,
		    (size_t)(ee - body) + 1, &c, &err) < 0)
			fail_msg("%s", err);
		odmr_conf_free(&c);
		n++;
	}
	assert_true(n >= 2);
	free(text);
	free(path);
}

/* test_all_keys_known - every documented key is in the table */
static void
test_all_keys_known(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
		/* "key = " with an empty value: known keys never say unknown */
		char *text = xasprintf("%s = \n", all_keys[i]), *err = NULL;
		struct odmr_conf *c;

		if (parse(text, &c, &err) < 0) {
			assert_null(strstr(err, "unknown key"));
			free(err);
		} else
			odmr_conf_free(&c);
		free(text);
	}
}

/* lib/conf on its own: a private table the library cannot know about */
struct demo {
	char		*name;
	char		*listen;
	uint64_t	 count;
	uint64_t	 wait;
	int		 flag;
	char		*later;
};

static const struct conf_key demo_keys[] = {
	{ "name", CONF_STRING, 0, "anon", offsetof(struct demo, name), 0, 0 },
	{ "listen", CONF_LISTEN, CONF_EMPTY_OK, "", offsetof(struct demo,
	    listen), 0, 0 },
	{ "count", CONF_UINT, 0, "5", offsetof(struct demo, count), 2, 9 },
	{ "wait", CONF_DURATION, 0, "1m", offsetof(struct demo, wait), 0, 0 },
	{ "flag", CONF_BOOL, 0, "off", offsetof(struct demo, flag), 0, 0 },
	{ "later", CONF_HOSTNAME, 0, NULL, offsetof(struct demo, later), 0, 0 },
	{ NULL, CONF_STRING, 0, NULL, 0, 0, 0 },
};

/* test_lib_table - defaults, lines[], conf_set and conf_release */
static void
test_lib_table(void **state)
{
	static const char text[] = "# x\ncount = 7\n\nflag = yes\n";
	struct demo d;
	unsigned lines[7];
	char *err = NULL;

	(void)state;
	memset(&d, 0, sizeof(d));
	assert_int_equal(conf_defaults(demo_keys, &d, &err), 0);
	assert_string_equal(d.name, "anon");
	assert_string_equal(d.listen, "");
	assert_int_equal(d.count, 5);
	assert_int_equal(d.wait, 60);
	assert_int_equal(d.flag, 0);
	assert_null(d.later);
	assert_int_equal(conf_parse(demo_keys, &d, "d", text, strlen(text),
	    lines, &err), 0);
	assert_int_equal(lines[0], 0);
	assert_int_equal(lines[2], 2);
	assert_int_equal(lines[4], 4);
	assert_int_equal(d.count, 7);
	assert_int_equal(d.flag, 1);

	assert_int_equal(conf_set(conf_lookup(demo_keys, "later"), &d,
	    "Host.Example", &err), 0);
	assert_string_equal(d.later, "host.example");
	assert_int_equal(conf_set(conf_lookup(demo_keys, "count"), &d, "10",
	    &err), -1);
	assert_string_equal(err, "bad value for count '10': must be at most 9");
	free(err);
	assert_int_equal(conf_set(conf_lookup(demo_keys, "name"), &d,
	    "tab\there", &err), -1);
	assert_string_equal(err, "bad value for name 'tab\\x09here': control "
	    "character in value");
	free(err);
	assert_null(conf_lookup(demo_keys, "nope"));

	/* the parser works without a lines array and without a name */
	assert_int_equal(conf_parse(demo_keys, &d, NULL, "count=1", 7, NULL,
	    &err), -1);
	assert_string_equal(err, "(configuration):1: bad value for count '1': "
	    "must be at least 2");
	free(err);

	conf_release(demo_keys, &d);
	assert_null(d.name);
	assert_null(d.listen);
	assert_null(d.later);
}

/* test_lib_bad_default - a broken default is reported, not used */
static void
test_lib_bad_default(void **state)
{
	static const struct conf_key bad[] = {
		{ "size", CONF_SIZE, 0, "12X", 0, 0, 0 },
		{ NULL, CONF_STRING, 0, NULL, 0, 0, 0 },
	};
	uint64_t v = 0;
	char *err = NULL;

	(void)state;
	assert_int_equal(conf_defaults(bad, &v, &err), -1);
	assert_string_equal(err, "built-in default: bad value for size '12X': "
	    "unknown size unit (use k, M or G)");
	free(err);
}

struct listen_case {
	const char	*item;
	int		 rc;
	const char	*addr;
	unsigned	 port;
};

static const struct listen_case listen_cases[] = {
	{ "*:25", 0, "", 25 },
	{ "[::]:366", 0, "::", 366 },
	{ "[::ffff:192.0.2.1]:25", 0, "::ffff:192.0.2.1", 25 },
	{ "127.0.0.1:2525", 0, "127.0.0.1", 2525 },
	{ "127.0.0.1:000025", -1, NULL, 0 },	/* more than 5 digits */
	{ "127.0.0.1:025", 0, "127.0.0.1", 25 },
	{ "127.0.0.1:+25", -1, NULL, 0 },
	{ "127.0.0.1:-1", -1, NULL, 0 },
	{ "1.2.3:25", -1, NULL, 0 },
	{ "**:25", -1, NULL, 0 },
	{ ":25", -1, NULL, 0 },
	{ "[]:25", -1, NULL, 0 },
	{ "[::1]", -1, NULL, 0 },
	{ "[::1]:", -1, NULL, 0 },
	{ "", -1, NULL, 0 },
};

/* test_listen_item - the splitter the daemon uses to bind */
static void
test_listen_item(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(listen_cases) / sizeof(listen_cases[0]); i++) {
		const struct listen_case *t = &listen_cases[i];
		char addr[CONF_LISTEN_ADDR_MAX + 1];
		const char *why = NULL;
		unsigned port = 0;
		int rc;

		rc = conf_listen_item(t->item, strlen(t->item), addr,
		    sizeof(addr), &port, &why);
		if (rc != t->rc)
			fail_msg("case %zu '%s': rc %d (%s)", i, t->item, rc,
			    why ? why : "");
		if (rc == 0) {
			assert_string_equal(addr, t->addr);
			assert_int_equal(port, t->port);
		} else
			assert_non_null(why);
	}
	/* a too-small address buffer fails instead of overrunning */
	{
		char small[4];
		const char *why;
		unsigned port;

		assert_int_equal(conf_listen_item("127.0.0.1:25", 12, small,
		    sizeof(small), &port, &why), -1);
	}
}

/* test_name - a TAP-safe test name (a '#' would start a directive) */
static char *
test_name(const char *kind, size_t i, const char *what)
{
	char *name = xasprintf("%s %zu: %s", kind, i, what);

	for (char *p = name; *p; p++)
		if (*p == '#' || (unsigned char)*p < 0x20)
			*p = '_';
	return name;
}

/* main - one TAP case per table row, then the other groups */
int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_default_hostname),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_lib_table),
		cmocka_unit_test(test_lib_bad_default),
		cmocka_unit_test(test_listen_item),
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_manual),
		cmocka_unit_test(test_manual_examples),
		cmocka_unit_test(test_all_keys_known),
	};
	size_t ngood = sizeof(good_cases) / sizeof(good_cases[0]);
	size_t nbad = sizeof(bad_cases) / sizeof(bad_cases[0]);
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	size_t n = 0, i;
	struct CMUnitTest *tests;
	int rc;

	tests = xcalloc(ngood + nbad + nfixed, sizeof(*tests));
	for (i = 0; i < ngood; i++, n++) {
		char *what = xasprintf("%s = '%s'", good_cases[i].field,
		    good_cases[i].want);

		tests[n].name = test_name("good", i, what);
		tests[n].test_func = test_good;
		tests[n].initial_state = (void *)&good_cases[i];
		free(what);
	}
	for (i = 0; i < nbad; i++, n++) {
		tests[n].name = test_name("bad", i, bad_cases[i].want);
		tests[n].test_func = test_bad;
		tests[n].initial_state = (void *)&bad_cases[i];
	}
	for (i = 0; i < nfixed; i++, n++)
		tests[n] = fixed[i];
	rc = _cmocka_run_group_tests("test-conf", tests, n, NULL, NULL);
	for (i = 0; i < ngood + nbad; i++)
		free((char *)tests[i].name);
	free(tests);
	return rc;
}
