/*
 * NAME
 *	odmr_sasl 3 - customer accounts: libsasl2 and its sasldb store
 * SYNOPSIS
 *	#include "odmr_sasl.h"
 *
 *	odmr_sasl_set_log(fn, arg, LOG_LEVEL_INFO);
 *	if (odmr_sasl_init(conf->state_dir, "odmrd", &error) < 0) ...
 *	odmr_sasl_conn_new("smtp", conf->hostname, local, remote, &conn,
 *	    &error);
 *	odmr_sasl_setpass("alice", pw, len, ODMR_SASL_CREATE, &error);
 *	odmr_sasl_done();
 * DESCRIPTION
 *	See odmr_sasl.h for the files, the realm and the order of writes.
 *	Here, every option libsasl2 asks for that matters is answered by
 *	odmr_sasl_getopt(); the configuration files are refused by
 *	odmr_sasl_verifyfile(), so an unanswered option falls back to
 *	libsasl2's built-in default and never to /etc/sasl2.
 *
 *	Administration (setpass, delete, exists, list) uses a server
 *	connection of its own, service "odmr", host "localhost" (a fixed
 *	name: a NULL host makes libsasl2 look the host name up in the
 *	DNS), realm ODMR_SASL_REALM. The realm, not the host, keys sasldb.
 *
 *	sasl_setpass() stores userPassword through the sasldb auxprop
 *	plugin, then lets each mechanism of mech_list store a secret of
 *	its own; with scram_secret_generate unset the SCRAM plugins store
 *	none and check against userPassword. SASL_SET_DISABLE with a NULL
 *	password deletes every property of the user ("*"). libsasl2
 *	reports success when no plugin could store anything (no sasldb
 *	plugin installed), so every change is read back.
 * DIAGNOSTICS
 *	Errors are returned as strings; nothing here logs except through
 *	the function the caller set for libsasl2's own lines.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sasl/sasl.h>

#include "buf.h"
#include "compat.h"
#include "log.h"
#include "odmr_sasl.h"
#include "xmalloc.h"

#define ODMR_SASL_SERVICE	"odmr"		/* of admin connections */
#define ODMR_SASL_ADMIN_FQDN	"localhost"
#define ODMR_SASL_LASTERR_MAX	256
#define ODMR_SASL_INDEX_MAX	(64 * 1024 * 1024)	/* sanity bound */
#define ODMR_SASL_FILE_MODE	0600

/* libsasl2 declares callbacks as int (*)(void); go through void (*)(void) */
#define ODMR_SASL_CB(fn)	((int (*)(void))(void (*)(void))(fn))

struct odmr_sasl_names {
	char	**v;
	size_t	  n;
};

static int odmr_sasl_active;
static char odmr_sasl_dir[PATH_MAX];
static char odmr_sasl_db[PATH_MAX];
static char odmr_sasl_index[PATH_MAX];
static char odmr_sasl_index_tmp[PATH_MAX];
static char odmr_sasl_lockpath[PATH_MAX];

static odmr_sasl_log_fn *odmr_sasl_logfn;
static void *odmr_sasl_logarg;
static enum log_level odmr_sasl_logmax = LOG_LEVEL_WARN;
static __thread char odmr_sasl_lasterr[ODMR_SASL_LASTERR_MAX];

static int odmr_sasl_getopt(void *, const char *, const char *,
    const char **, unsigned *);
static int odmr_sasl_log(void *, int, const char *);
static int odmr_sasl_verifyfile(void *, const char *, sasl_verify_type_t);

/* libsasl2 keeps a pointer to this list for the life of the process */
static const sasl_callback_t odmr_sasl_callbacks[] = {
	{ SASL_CB_GETOPT, ODMR_SASL_CB(odmr_sasl_getopt), NULL },
	{ SASL_CB_LOG, ODMR_SASL_CB(odmr_sasl_log), NULL },
	{ SASL_CB_VERIFYFILE, ODMR_SASL_CB(odmr_sasl_verifyfile), NULL },
	{ SASL_CB_LIST_END, NULL, NULL },
};

/* odmr_sasl_level - the SASL "log_level" option for our maximum */
static const char *
odmr_sasl_level(void)
{
	switch (odmr_sasl_logmax) {
	case LOG_LEVEL_ERR:
		return "1";		/* SASL_LOG_ERR */
	case LOG_LEVEL_WARN:
		return "3";		/* SASL_LOG_WARN */
	case LOG_LEVEL_INFO:
		return "4";		/* SASL_LOG_NOTE */
	case LOG_LEVEL_DEBUG:
		break;
	}
	return "5";			/* SASL_LOG_DEBUG, never PASS */
}

/* odmr_sasl_getopt - SASL_CB_GETOPT: the options odmrd decides */
static int
odmr_sasl_getopt(void *context, const char *plugin, const char *option,
    const char **result, unsigned *len)
{
	const char *v;

	(void)context;
	(void)plugin;
	if (option == NULL || result == NULL)
		return SASL_BADPARAM;
	if (strcmp(option, "sasldb_path") == 0)
		v = odmr_sasl_db;
	else if (strcmp(option, "auxprop_plugin") == 0)
		v = "sasldb";
	else if (strcmp(option, "pwcheck_method") == 0)
		v = "auxprop";
	else if (strcmp(option, "mech_list") == 0)
		v = ODMR_SASL_MECHS " " ODMR_SASL_MECH_EXTERNAL;
	else if (strcmp(option, "log_level") == 0)
		v = odmr_sasl_level();
	else
		return SASL_FAIL;	/* libsasl2's built-in default */
	*result = v;
	if (len != NULL)
		*len = (unsigned)strlen(v);
	return SASL_OK;
}

/*
 * odmr_sasl_log - SASL_CB_LOG: hand libsasl2's lines to the caller.
 * SASL_LOG_PASS lines may hold a password and are always dropped.
 */
static int
odmr_sasl_log(void *context, int level, const char *msg)
{
	enum log_level l;

	(void)context;
	if (msg == NULL)
		return SASL_OK;
	switch (level) {
	case SASL_LOG_ERR:
		l = LOG_LEVEL_ERR;
		break;
	case SASL_LOG_WARN:
		l = LOG_LEVEL_WARN;
		break;
	case SASL_LOG_FAIL:		/* an authentication failed */
	case SASL_LOG_NOTE:
		l = LOG_LEVEL_INFO;
		break;
	case SASL_LOG_DEBUG:
	case SASL_LOG_TRACE:
		l = LOG_LEVEL_DEBUG;
		break;
	default:			/* NONE, PASS, unknown */
		return SASL_OK;
	}
	if (l <= LOG_LEVEL_WARN)
		strlcpy(odmr_sasl_lasterr, msg, sizeof(odmr_sasl_lasterr));
	if (odmr_sasl_logfn != NULL && l <= odmr_sasl_logmax)
		odmr_sasl_logfn(l, msg, odmr_sasl_logarg);
	return SASL_OK;
}

/*
 * odmr_sasl_verifyfile - SASL_CB_VERIFYFILE: skip every configuration
 * file (SASL_CONTINUE), accept plugins and the password file.
 */
static int
odmr_sasl_verifyfile(void *context, const char *file, sasl_verify_type_t type)
{
	(void)context;
	(void)file;
	return type == SASL_VRFY_CONF ? SASL_CONTINUE : SASL_OK;
}

/* odmr_sasl_mutex_alloc - libsasl2 mutexes are pthread mutexes */
static void *
odmr_sasl_mutex_alloc(void)
{
	pthread_mutex_t *m = xmalloc(sizeof(*m));

	if (pthread_mutex_init(m, NULL) != 0) {
		free(m);
		return NULL;
	}
	return m;
}

/* odmr_sasl_mutex_lock - lock a libsasl2 mutex */
static int
odmr_sasl_mutex_lock(void *m)
{
	return pthread_mutex_lock(m) == 0 ? SASL_OK : SASL_FAIL;
}

/* odmr_sasl_mutex_unlock - unlock a libsasl2 mutex */
static int
odmr_sasl_mutex_unlock(void *m)
{
	return pthread_mutex_unlock(m) == 0 ? SASL_OK : SASL_FAIL;
}

/* odmr_sasl_mutex_free - free a libsasl2 mutex */
static void
odmr_sasl_mutex_free(void *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(m);
	free(m);
}

/* odmr_sasl_set_log - where libsasl2's lines go, and down to which level */
void
odmr_sasl_set_log(odmr_sasl_log_fn *fn, void *arg, enum log_level max)
{
	odmr_sasl_logfn = fn;
	odmr_sasl_logarg = arg;
	odmr_sasl_logmax = max;
}

/* odmr_sasl_fail - an error string for a libsasl2 result */
static char *
odmr_sasl_fail(int r, const char *what)
{
	const char *detail = odmr_sasl_lasterr;

	return xasprintf("%s: %s%s%s%s", what, sasl_errstring(r, NULL, NULL),
	    detail[0] ? " (" : "", detail, detail[0] ? ")" : "");
}

/* odmr_sasl_path - state_dir/name into out; -1 when too long */
static int
odmr_sasl_path(char *out, size_t outsz, const char *dir, const char *name)
{
	int n = snprintf(out, outsz, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/*
 * odmr_sasl_init - start libsasl2 for this process: options, paths and
 * plugins. appname names the process in libsasl2's own messages.
 */
int
odmr_sasl_init(const char *state_dir, const char *appname, char **error_r)
{
	struct stat st;
	int r;

	*error_r = NULL;
	if (odmr_sasl_active) {
		*error_r = xstrdup("libsasl2 is initialised already");
		return -1;
	}
	if (state_dir == NULL || state_dir[0] == '\0') {
		*error_r = xstrdup("no state_dir configured");
		return -1;
	}
	if (stat(state_dir, &st) < 0) {
		*error_r = errno == ENOENT ?
		    xasprintf("state directory %s does not exist", state_dir) :
		    xasprintf("cannot access state directory %s: %s",
		    state_dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		*error_r = xasprintf("state directory %s is not a directory",
		    state_dir);
		return -1;
	}
	if (strlcpy(odmr_sasl_dir, state_dir, sizeof(odmr_sasl_dir)) >=
	    sizeof(odmr_sasl_dir) ||
	    odmr_sasl_path(odmr_sasl_db, sizeof(odmr_sasl_db), state_dir,
	    ODMR_SASL_DB_FILE) < 0 ||
	    odmr_sasl_path(odmr_sasl_index, sizeof(odmr_sasl_index),
	    state_dir, ODMR_SASL_INDEX_FILE) < 0 ||
	    odmr_sasl_path(odmr_sasl_index_tmp, sizeof(odmr_sasl_index_tmp),
	    state_dir, ODMR_SASL_INDEX_FILE ".new") < 0 ||
	    odmr_sasl_path(odmr_sasl_lockpath, sizeof(odmr_sasl_lockpath),
	    state_dir, ODMR_SASL_LOCK_FILE) < 0) {
		*error_r = xasprintf("state directory path too long: %s",
		    state_dir);
		return -1;
	}
	odmr_sasl_lasterr[0] = '\0';
	sasl_set_mutex(odmr_sasl_mutex_alloc, odmr_sasl_mutex_lock,
	    odmr_sasl_mutex_unlock, odmr_sasl_mutex_free);
	if ((r = sasl_server_init(odmr_sasl_callbacks, appname)) != SASL_OK) {
		*error_r = odmr_sasl_fail(r, "cannot initialise libsasl2");
		return -1;
	}
	odmr_sasl_active = 1;
	/* without a store-capable auxprop plugin setpass "succeeds" */
	if (sasl_auxprop_store(NULL, NULL, NULL) != SASL_OK) {
		*error_r = xstrdup("libsasl2 has no sasldb plugin to keep "
		    "secrets in: install libsasl2-modules-db");
		odmr_sasl_done();
		return -1;
	}
	return 0;
}

/* odmr_sasl_done - shut libsasl2 down; odmr_sasl_init() may follow */
void
odmr_sasl_done(void)
{
	if (!odmr_sasl_active)
		return;
	sasl_server_done();
	odmr_sasl_active = 0;
}

/*
 * odmr_sasl_user_valid - 1 to 64 octets of [A-Za-z0-9._@+-], not
 * starting with '.' or '@', not ending with '@', and no "@odmr" realm
 * part (see odmr_sasl.h). 0 when valid, else -1 and the reason.
 */
int
odmr_sasl_user_valid(const char *name, const char **why_r)
{
	const char *at;
	size_t i, len = name ? strlen(name) : 0;

	if (len == 0 || len > ODMR_SASL_USER_MAX) {
		*why_r = "use 1 to 64 characters";
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '@' || c == '+' || c == '-')) {
			*why_r = "use only the characters A-Z a-z 0-9 . _ @ + -";
			return -1;
		}
	}
	if (name[0] == '.' || name[0] == '@' || name[len - 1] == '@') {
		*why_r = "a name may not start with '.' or '@' nor end "
		    "with '@'";
		return -1;
	}
	if ((at = strchr(name, '@')) != NULL &&
	    strcmp(at + 1, ODMR_SASL_REALM) == 0) {
		*why_r = "'@" ODMR_SASL_REALM "' is the realm of bare names "
		    "and cannot end one";
		return -1;
	}
	return 0;
}

/* odmr_sasl_pass_valid - 1 to 1024 octets without NUL; 0 or -1 */
int
odmr_sasl_pass_valid(const char *pass, size_t len, const char **why_r)
{
	if (len == 0) {
		*why_r = "the password is empty";
		return -1;
	}
	if (len > ODMR_SASL_PASS_MAX) {
		*why_r = "the password is longer than 1024 octets";
		return -1;
	}
	if (memchr(pass, '\0', len) != NULL) {
		*why_r = "the password contains a NUL octet";
		return -1;
	}
	return 0;
}

/*
 * odmr_sasl_account - the account name of an authenticated SASL user
 * name (SASL_USERNAME): a bare name comes back as "name@odmr". 0, or
 * -1 when it is no valid account name or does not fit.
 */
int
odmr_sasl_account(const char *sasl_user, char *out, size_t outsz)
{
	const char *at = strchr(sasl_user, '@');
	const char *why;
	size_t len = strlen(sasl_user);

	if (at != NULL && strcmp(at + 1, ODMR_SASL_REALM) == 0)
		len = (size_t)(at - sasl_user);
	if (len >= outsz || len > ODMR_SASL_USER_MAX)
		return -1;
	memcpy(out, sasl_user, len);
	out[len] = '\0';
	return odmr_sasl_user_valid(out, &why);
}

/*
 * odmr_sasl_conn_new - a server connection for one session, in the
 * fixed realm. local and remote are "addr;port" or NULL.
 */
int
odmr_sasl_conn_new(const char *service, const char *server_fqdn,
    const char *iplocalport, const char *ipremoteport,
    struct sasl_conn **connp, char **error_r)
{
	int r;

	*connp = NULL;
	*error_r = NULL;
	if (!odmr_sasl_active) {
		*error_r = xstrdup("libsasl2 is not initialised");
		return -1;
	}
	odmr_sasl_lasterr[0] = '\0';
	r = sasl_server_new(service, server_fqdn, ODMR_SASL_REALM,
	    iplocalport, ipremoteport, NULL, 0, connp);
	if (r != SASL_OK) {
		*error_r = odmr_sasl_fail(r, "cannot start a SASL session");
		*connp = NULL;
		return -1;
	}
	return 0;
}

/* odmr_sasl_admin - the connection administration works through */
static int
odmr_sasl_admin(sasl_conn_t **conn, char **error_r)
{
	return odmr_sasl_conn_new(ODMR_SASL_SERVICE, ODMR_SASL_ADMIN_FQDN,
	    NULL, NULL, conn, error_r);
}

/*
 * odmr_sasl_check_mechs - 0 when every mechanism of ODMR_SASL_MECHS is
 * offered (its plugin is installed), else -1 naming the missing ones
 */
int
odmr_sasl_check_mechs(char **error_r)
{
	sasl_conn_t *conn;
	struct buf missing;
	const char *list, *p, *q, *hit;
	unsigned len;
	size_t n;
	int count, r, rc = 0;

	if (odmr_sasl_admin(&conn, error_r) < 0)
		return -1;
	r = sasl_listmech(conn, NULL, " ", " ", " ", &list, &len, &count);
	if (r != SASL_OK) {
		*error_r = odmr_sasl_fail(r, "cannot list SASL mechanisms");
		sasl_dispose(&conn);
		return -1;
	}
	buf_init(&missing);
	for (p = ODMR_SASL_MECHS; *p != '\0'; p = *q ? q + 1 : q) {
		q = strchr(p, ' ');
		if (q == NULL)
			q = p + strlen(p);
		n = (size_t)(q - p);
		/* list is " A B C ": look for " name " */
		for (hit = list; (hit = strstr(hit, " ")) != NULL; hit++)
			if (strncmp(hit + 1, p, n) == 0 && hit[1 + n] == ' ')
				break;
		if (hit == NULL) {
			if (missing.len > 0)
				buf_putc(&missing, ' ');
			buf_append(&missing, p, n);
		}
	}
	if (missing.len > 0) {
		*error_r = xasprintf("libsasl2 lacks the mechanism(s) %s: "
		    "install libsasl2-modules", buf_str(&missing));
		rc = -1;
	}
	buf_release(&missing);
	sasl_dispose(&conn);
	return rc;
}

/* odmr_sasl_secret - does sasldb hold a password for name? 1, 0 or -1 */
static int
odmr_sasl_secret(sasl_conn_t *conn, const char *name, char **error_r)
{
	int r;

	odmr_sasl_lasterr[0] = '\0';
	r = sasl_user_exists(conn, ODMR_SASL_SERVICE, ODMR_SASL_REALM, name);
	if (r == SASL_OK)
		return 1;
	if (r == SASL_NOUSER)
		return 0;
	*error_r = odmr_sasl_fail(r, "cannot read " ODMR_SASL_DB_FILE);
	return -1;
}

/* odmr_sasl_names_clear - free a name list */
static void
odmr_sasl_names_clear(struct odmr_sasl_names *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* odmr_sasl_names_cmp - qsort/bsearch order of names: strcmp */
static int
odmr_sasl_names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* odmr_sasl_names_find - the index of name, or -1 */
static ssize_t
odmr_sasl_names_find(const struct odmr_sasl_names *l, const char *name)
{
	char **p;

	if (l->n == 0)
		return -1;
	p = bsearch(&name, l->v, l->n, sizeof(*l->v), odmr_sasl_names_cmp);
	return p == NULL ? -1 : p - l->v;
}

/* odmr_sasl_names_add - insert name, keeping the order */
static void
odmr_sasl_names_add(struct odmr_sasl_names *l, const char *name)
{
	size_t i = 0;

	while (i < l->n && strcmp(l->v[i], name) < 0)
		i++;
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof(*l->v));
	l->v[i] = xstrdup(name);
	l->n++;
}

/* odmr_sasl_names_del - remove the name at index i */
static void
odmr_sasl_names_del(struct odmr_sasl_names *l, size_t i)
{
	free(l->v[i]);
	memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

/* odmr_sasl_own - give a new file to the owner of state_dir (as root) */
static void
odmr_sasl_own(int fd, const char *path)
{
	struct stat st;

	if (geteuid() != 0 || stat(odmr_sasl_dir, &st) < 0 || st.st_uid == 0)
		return;
	/* best effort: a failure leaves a root-owned 0600 file */
	if (fd >= 0)
		(void)!fchown(fd, st.st_uid, st.st_gid);
	else
		(void)!chown(path, st.st_uid, st.st_gid);
}

/* odmr_sasl_read_all - the whole of a small file into b; -1 and errno */
static int
odmr_sasl_read_all(int fd, struct buf *b)
{
	char chunk[4096];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (b->len + (size_t)n > ODMR_SASL_INDEX_MAX) {
			errno = EFBIG;
			return -1;
		}
		buf_append(b, chunk, (size_t)n);
	}
}

/* odmr_sasl_index_read - the account index; a missing file is empty */
static int
odmr_sasl_index_read(struct odmr_sasl_names *l, char **error_r)
{
	struct buf b;
	const char *p, *end, *nl, *why;
	char name[ODMR_SASL_USER_MAX + 1];
	size_t lineno = 0, len;
	int fd, rc = 0;

	memset(l, 0, sizeof(*l));
	if ((fd = open(odmr_sasl_index, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("cannot open %s: %s", odmr_sasl_index,
		    strerror(errno));
		return -1;
	}
	buf_init(&b);
	if (odmr_sasl_read_all(fd, &b) < 0) {
		*error_r = xasprintf("cannot read %s: %s", odmr_sasl_index,
		    strerror(errno));
		rc = -1;
	}
	close(fd);
	p = (const char *)b.data;
	end = p + b.len;
	while (rc == 0 && p < end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (len >= sizeof(name) || memchr(p, '\0', len) != NULL) {
			why = "bad account name";
			goto bad;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		if (odmr_sasl_user_valid(name, &why) < 0)
			goto bad;
		if (odmr_sasl_names_find(l, name) < 0)
			odmr_sasl_names_add(l, name);
		p += len + (nl != NULL);
		continue;
bad:
		*error_r = xasprintf("%s:%zu: %s: the account index is "
		    "damaged", odmr_sasl_index, lineno, why);
		rc = -1;
	}
	buf_release(&b);
	if (rc < 0)
		odmr_sasl_names_clear(l);
	return rc;
}

/* odmr_sasl_write_all - write a whole buffer; -1 and errno */
static int
odmr_sasl_write_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * odmr_sasl_index_write - replace the account index: a temporary file,
 * fsync, rename over the old one, fsync of the directory
 */
static int
odmr_sasl_index_write(const struct odmr_sasl_names *l, char **error_r)
{
	struct buf b;
	size_t i;
	int fd, dfd, rc = -1;

	buf_init(&b);
	for (i = 0; i < l->n; i++) {
		buf_puts(&b, l->v[i]);
		buf_putc(&b, '\n');
	}
	fd = open(odmr_sasl_index_tmp, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, ODMR_SASL_FILE_MODE);
	if (fd < 0) {
		*error_r = xasprintf("cannot create %s: %s",
		    odmr_sasl_index_tmp, strerror(errno));
		buf_release(&b);
		return -1;
	}
	odmr_sasl_own(fd, NULL);
	if (fchmod(fd, ODMR_SASL_FILE_MODE) < 0 ||
	    odmr_sasl_write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0) {
		*error_r = xasprintf("cannot write %s: %s",
		    odmr_sasl_index_tmp, strerror(errno));
		close(fd);
		goto out;
	}
	if (close(fd) < 0) {
		*error_r = xasprintf("cannot write %s: %s",
		    odmr_sasl_index_tmp, strerror(errno));
		goto out;
	}
	if (rename(odmr_sasl_index_tmp, odmr_sasl_index) < 0) {
		*error_r = xasprintf("cannot rename %s to %s: %s",
		    odmr_sasl_index_tmp, odmr_sasl_index, strerror(errno));
		goto out;
	}
	if ((dfd = open(odmr_sasl_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0 || fsync(dfd) < 0) {
		*error_r = xasprintf("cannot sync %s: %s", odmr_sasl_dir,
		    strerror(errno));
		if (dfd >= 0)
			close(dfd);
		goto out;
	}
	close(dfd);
	rc = 0;
out:
	if (rc < 0)
		(void)unlink(odmr_sasl_index_tmp);
	buf_release(&b);
	return rc;
}

/* odmr_sasl_lock - take the writers' lock; the fd, or -1 */
static int
odmr_sasl_lock(char **error_r)
{
	int fd;

	fd = open(odmr_sasl_lockpath, O_RDWR | O_CREAT | O_CLOEXEC,
	    ODMR_SASL_FILE_MODE);
	if (fd < 0) {
		*error_r = xasprintf("cannot open %s: %s", odmr_sasl_lockpath,
		    strerror(errno));
		return -1;
	}
	odmr_sasl_own(fd, NULL);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		*error_r = xasprintf("cannot lock %s: %s", odmr_sasl_lockpath,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * odmr_sasl_read_lock - a shared hold on the writers' lock, so that an
 * authentication never reads sasldb2 while odmrctl rewrites it (sasldb
 * has no locking of its own); the fd to give to odmr_sasl_read_unlock(),
 * or -1 when there is no lock file yet (no writer has ever run) or a
 * writer held it for ODMR_SASL_LOCK_WAIT_MS (a stuck odmrctl must not
 * stop every login: the step then goes ahead unlocked). Each call opens
 * the file anew: flock() belongs to the open file, so two threads
 * sharing one descriptor would release each other's hold. It may sleep:
 * call it from a worker thread, never from the event loop.
 */
int
odmr_sasl_read_lock(void)
{
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	unsigned waited = 0;
	int fd;

	if ((fd = open(odmr_sasl_lockpath, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    waited >= ODMR_SASL_LOCK_WAIT_MS) {
			close(fd);
			return -1;
		}
		(void)nanosleep(&nap, NULL);
		waited += 10;
	}
	return fd;
}

/* odmr_sasl_read_unlock - release odmr_sasl_read_lock()'s hold */
void
odmr_sasl_read_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* releases the flock */
}

/* odmr_sasl_begin - lock, admin connection, index: ready to change */
static enum odmr_sasl_status
odmr_sasl_begin(const char *name, int *lockfd, sasl_conn_t **conn,
    struct odmr_sasl_names *idx, char **error_r)
{
	const char *why;

	*lockfd = -1;
	*conn = NULL;
	memset(idx, 0, sizeof(*idx));
	if (odmr_sasl_user_valid(name, &why) < 0) {
		*error_r = xasprintf("bad user name '%s': %s", name, why);
		return ODMR_SASL_INVALID;
	}
	if ((*lockfd = odmr_sasl_lock(error_r)) < 0)
		return ODMR_SASL_ERROR;
	if (odmr_sasl_admin(conn, error_r) < 0 ||
	    odmr_sasl_index_read(idx, error_r) < 0) {
		if (*conn != NULL)
			sasl_dispose(conn);
		close(*lockfd);
		*lockfd = -1;
		return ODMR_SASL_ERROR;
	}
	return ODMR_SASL_OK;
}

/* odmr_sasl_end - undo odmr_sasl_begin() */
static void
odmr_sasl_end(int lockfd, sasl_conn_t **conn, struct odmr_sasl_names *idx)
{
	odmr_sasl_names_clear(idx);
	if (*conn != NULL)
		sasl_dispose(conn);
	if (lockfd >= 0)
		close(lockfd);		/* releases the flock */
}

/*
 * odmr_sasl_probe - whether name is an account: listed in the index
 * decides alone unless "both" asks for the secret in sasldb as well;
 * unlisted, the secret decides unless "both" (then it is not). -1 on
 * error
 */
static int
odmr_sasl_probe(const char *name, int both, char **error_r)
{
	struct odmr_sasl_names idx;
	sasl_conn_t *conn = NULL;
	int rc, listed;

	if (odmr_sasl_index_read(&idx, error_r) < 0)
		return -1;
	listed = odmr_sasl_names_find(&idx, name) >= 0;
	if (listed != both)
		rc = listed;
	else if (odmr_sasl_admin(&conn, error_r) < 0)
		rc = -1;
	else
		rc = odmr_sasl_secret(conn, name, error_r);
	if (conn != NULL)
		sasl_dispose(&conn);
	odmr_sasl_names_clear(&idx);
	return rc;
}

/*
 * odmr_sasl_exists - 1 when name is an account (in the index, or with
 * a secret in sasldb), 0 when not, -1 on error
 */
int
odmr_sasl_exists(const char *name, char **error_r)
{
	const char *why;

	*error_r = NULL;
	if (odmr_sasl_user_valid(name, &why) < 0) {
		*error_r = xasprintf("bad user name '%s': %s", name, why);
		return -1;
	}
	return odmr_sasl_probe(name, 0, error_r);
}

/*
 * odmr_sasl_usable - 1 when name is a whole account (in the index and
 * with a secret in sasldb), 0 when not (no such account, or one being
 * added or deleted), -1 on error. Reads files: not on the event loop.
 */
int
odmr_sasl_usable(const char *name, char **error_r)
{
	const char *why;

	*error_r = NULL;
	if (odmr_sasl_user_valid(name, &why) < 0)
		return 0;
	return odmr_sasl_probe(name, 1, error_r);
}

/* odmr_sasl_store - sasl_setpass() under umask 077, then read it back */
static int
odmr_sasl_store(sasl_conn_t *conn, const char *name, const char *pass,
    size_t len, unsigned flags, char **error_r)
{
	mode_t old;
	int r, has;

	odmr_sasl_lasterr[0] = '\0';
	old = umask(077);	/* sasldb creates its file 0660 & ~umask */
	r = sasl_setpass(conn, name, pass, (unsigned)len, NULL, 0, flags);
	umask(old);
	if (r != SASL_OK) {
		*error_r = odmr_sasl_fail(r, "cannot store the secret");
		return -1;
	}
	if (access(odmr_sasl_db, F_OK) == 0) {
		odmr_sasl_own(-1, odmr_sasl_db);
		if (chmod(odmr_sasl_db, ODMR_SASL_FILE_MODE) < 0) {
			*error_r = xasprintf("cannot chmod %s: %s",
			    odmr_sasl_db, strerror(errno));
			return -1;
		}
	}
	if ((has = odmr_sasl_secret(conn, name, error_r)) < 0)
		return -1;
	if (has != (pass != NULL)) {
		*error_r = xasprintf("libsasl2 reported success but %s %s: "
		    "is the sasldb plugin (libsasl2-modules-db) installed?",
		    odmr_sasl_db, pass ? "holds no secret" :
		    "still holds the secret");
		return -1;
	}
	return 0;
}

/*
 * odmr_sasl_setpass - set the password of an account. ODMR_SASL_CREATE
 * wants a new account (else EXISTS), ODMR_SASL_UPDATE an existing one
 * (else NOTFOUND). A name in the index without a secret, or the other
 * way round, is an existing account, and is made whole.
 */
enum odmr_sasl_status
odmr_sasl_setpass(const char *name, const char *pass, size_t len,
    unsigned flags, char **error_r)
{
	struct odmr_sasl_names idx;
	sasl_conn_t *conn;
	const char *why;
	enum odmr_sasl_status st;
	ssize_t at;
	int lockfd, has;

	*error_r = NULL;
	if (pass == NULL || odmr_sasl_pass_valid(pass, len, &why) < 0) {
		*error_r = xstrdup(pass ? why : "no password");
		return ODMR_SASL_INVALID;
	}
	st = odmr_sasl_begin(name, &lockfd, &conn, &idx, error_r);
	if (st != ODMR_SASL_OK)
		return st;
	at = odmr_sasl_names_find(&idx, name);
	if ((has = odmr_sasl_secret(conn, name, error_r)) < 0)
		st = ODMR_SASL_ERROR;
	else if ((flags & ODMR_SASL_CREATE) && (at >= 0 || has)) {
		*error_r = xasprintf("user %s already exists", name);
		st = ODMR_SASL_EXISTS;
	} else if ((flags & ODMR_SASL_UPDATE) && at < 0 && !has) {
		*error_r = xasprintf("unknown user %s", name);
		st = ODMR_SASL_NOTFOUND;
	}
	if (st != ODMR_SASL_OK)
		goto out;
	if (at < 0) {		/* listed first: no unlisted secret ever */
		odmr_sasl_names_add(&idx, name);
		if (odmr_sasl_index_write(&idx, error_r) < 0) {
			st = ODMR_SASL_ERROR;
			goto out;
		}
	}
	if (odmr_sasl_store(conn, name, pass, len,
	    (flags & ODMR_SASL_CREATE) ? SASL_SET_CREATE : 0, error_r) < 0) {
		st = ODMR_SASL_ERROR;
		if (at < 0 && !has && (at = odmr_sasl_names_find(&idx,
		    name)) >= 0) {
			/* best effort: take back the entry just made */
			char *ignored = NULL;

			odmr_sasl_names_del(&idx, (size_t)at);
			(void)odmr_sasl_index_write(&idx, &ignored);
			free(ignored);
		}
	}
out:
	odmr_sasl_end(lockfd, &conn, &idx);
	return st;
}

/*
 * odmr_sasl_delete - remove an account: its secrets first, then its
 * index entry. NOTFOUND when it has neither.
 */
enum odmr_sasl_status
odmr_sasl_delete(const char *name, char **error_r)
{
	struct odmr_sasl_names idx;
	sasl_conn_t *conn;
	enum odmr_sasl_status st;
	ssize_t at;
	int lockfd, has;

	*error_r = NULL;
	st = odmr_sasl_begin(name, &lockfd, &conn, &idx, error_r);
	if (st != ODMR_SASL_OK)
		return st;
	at = odmr_sasl_names_find(&idx, name);
	if ((has = odmr_sasl_secret(conn, name, error_r)) < 0)
		st = ODMR_SASL_ERROR;
	else if (at < 0 && !has) {
		*error_r = xasprintf("unknown user %s", name);
		st = ODMR_SASL_NOTFOUND;
	} else if (has && odmr_sasl_store(conn, name, NULL, 0,
	    SASL_SET_DISABLE, error_r) < 0)
		st = ODMR_SASL_ERROR;
	else if (at >= 0) {
		odmr_sasl_names_del(&idx, (size_t)at);
		if (odmr_sasl_index_write(&idx, error_r) < 0)
			st = ODMR_SASL_ERROR;
	}
	odmr_sasl_end(lockfd, &conn, &idx);
	return st;
}

/*
 * odmr_sasl_list - every account of the index, in name order, each
 * with whether sasldb holds its secret. The index is replaced by
 * rename(), so it is read without the lock.
 */
enum odmr_sasl_status
odmr_sasl_list(struct odmr_sasl_userlist **listp, char **error_r)
{
	struct odmr_sasl_userlist *list;
	struct odmr_sasl_names idx;
	sasl_conn_t *conn = NULL;
	size_t i;
	int has = 0;

	*listp = NULL;
	*error_r = NULL;
	if (odmr_sasl_index_read(&idx, error_r) < 0)
		return ODMR_SASL_ERROR;
	if (idx.n > 0 && odmr_sasl_admin(&conn, error_r) < 0) {
		odmr_sasl_names_clear(&idx);
		return ODMR_SASL_ERROR;
	}
	list = xcalloc(1, sizeof(*list));
	list->v = xcalloc(idx.n ? idx.n : 1, sizeof(*list->v));
	for (i = 0; i < idx.n; i++) {
		if ((has = odmr_sasl_secret(conn, idx.v[i], error_r)) < 0)
			break;
		list->v[list->n].name = idx.v[i];
		list->v[list->n].secret = has;
		idx.v[i] = NULL;
		list->n++;
	}
	if (conn != NULL)
		sasl_dispose(&conn);
	odmr_sasl_names_clear(&idx);
	if (has < 0) {
		odmr_sasl_userlist_free(&list);
		return ODMR_SASL_ERROR;
	}
	*listp = list;
	return ODMR_SASL_OK;
}

/* odmr_sasl_userlist_free - free a list of odmr_sasl_list() */
void
odmr_sasl_userlist_free(struct odmr_sasl_userlist **listp)
{
	struct odmr_sasl_userlist *list = *listp;
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < list->n; i++)
		free(list->v[i].name);
	free(list->v);
	free(list);
	*listp = NULL;
}
