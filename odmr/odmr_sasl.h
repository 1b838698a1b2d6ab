/*
 * NAME
 *	odmr_sasl 3h - customer accounts: libsasl2 and its sasldb store
 * SYNOPSIS
 *	#include "odmr_sasl.h"
 * DESCRIPTION
 *	The customer accounts that authenticate on the ODMR port (RFC 2645
 *	AUTH) live in state_dir, in three files, all mode 0600:
 *
 *	sasldb2		the secrets: the sasldb auxprop store of libsasl2
 *			(Berkeley DB), as Cyrus and Postfix deployments
 *			keep it. It is the authority: odmrd authenticates
 *			against it and nothing else.
 *	users		the account index: one name a line, sorted. libsasl2
 *			has no API that lists a sasldb, and only the queue
 *			backend may include <db.h>, so odmrctl keeps the
 *			names here; it is replaced atomically (temporary
 *			file, fsync, rename, fsync of the directory).
 *	users.lock	flock()ed by every writer, so that two odmrctl runs
 *			never interleave their index and sasldb updates
 *			(sasldb itself has no locking).
 *
 *	odmrd holds users.lock shared (odmr_sasl_read_lock()) around each
 *	SASL step, so it never reads sasldb2 halfway through a write.
 *
 *	Writers keep one rule: a name enters the index before its secret
 *	enters sasldb, and leaves it after its secret has gone. A crash in
 *	between leaves an index entry without a secret, which "user list"
 *	shows and "user passwd" or "user del" repairs; it never leaves a
 *	secret that can authenticate but is not listed.
 *
 *	The realm is fixed: ODMR_SASL_REALM ("odmr"), given to every
 *	sasl_server_new(). Without one, libsasl2 files a bare name under
 *	the server's host name, and renaming the host would lock every
 *	customer out. sasldb splits a name at its first '@': "alice" is
 *	stored as alice in realm odmr, "bob@example.org" as bob in realm
 *	example.org. So that no two account names share an entry, a name
 *	whose part after the first '@' is "odmr" is refused. After a
 *	successful authentication libsasl2 reports "alice@odmr" for a bare
 *	name; odmr_sasl_account() turns that back into the account name.
 *
 *	The secret kept is the password itself (userPassword): CRAM-MD5
 *	needs it, and PLAIN, LOGIN and both SCRAMs are checked against it
 *	(no separate SCRAM secret is generated). That is why the files
 *	are 0600, created under umask 077 and, when odmrctl runs as root,
 *	given to the owner of state_dir so that an odmrd that dropped its
 *	privileges can read them.
 *
 *	odmr_sasl_init() runs sasl_server_init() once per process with
 *	every option supplied by a callback: sasldb_path, auxprop_plugin
 *	sasldb, pwcheck_method auxprop and mech_list ODMR_SASL_MECHS plus
 *	EXTERNAL (RFC 4422 appendix A). libsasl2 makes EXTERNAL available
 *	on a connection only once SASL_AUTH_EXTERNAL is set on it, which
 *	odmrd does only for a TLS client with a verified certificate;
 *	odmr_sasl_check_mechs() checks ODMR_SASL_MECHS only.
 *
 *	odmr_sasl_usable() is what an identity that did not prove a
 *	password (EXTERNAL) must pass: the name is in the index and
 *	sasldb holds its secret, so "odmrctl user del" (which removes the
 *	secret first) shuts it out as it shuts out its password.
 *	The configuration files of /etc/sasl2 and the plugin directory are
 *	skipped (SASL_CB_VERIFYFILE), so a site's Cyrus setup cannot
 *	change how odmrd authenticates. libsasl2's mutexes are pthread
 *	mutexes, so sessions may authenticate on several threads.
 *
 *	Log lines of libsasl2 go to the function set with
 *	odmr_sasl_set_log(); those that might carry a password
 *	(SASL_LOG_PASS) are dropped. The last error line is kept per
 *	thread and added to the error strings of this module.
 * DIAGNOSTICS
 *	Functions return -1 or ODMR_SASL_ERROR with a malloc()ed error
 *	string in *error_r, which the caller frees; they never log.
 *	Berkeley DB itself may print a line on stderr when sasldb2 is
 *	damaged: libsasl2 gives it no error callback.
 */
#ifndef ODMR_ODMR_SASL_H
#define ODMR_ODMR_SASL_H

#include <stddef.h>

#include "log.h"

#define ODMR_SASL_REALM		"odmr"
#define ODMR_SASL_MECHS		"SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN"
/* built into libsasl2; offered only with SASL_AUTH_EXTERNAL set */
#define ODMR_SASL_MECH_EXTERNAL	"EXTERNAL"
#define ODMR_SASL_DB_FILE	"sasldb2"
#define ODMR_SASL_INDEX_FILE	"users"
#define ODMR_SASL_LOCK_FILE	"users.lock"
#define ODMR_SASL_USER_MAX	64	/* octets in an account name */
#define ODMR_SASL_PASS_MAX	1024	/* octets in a password */
#define ODMR_SASL_LOCK_WAIT_MS	5000	/* odmr_sasl_read_lock() at most */

enum odmr_sasl_status {
	ODMR_SASL_OK = 0,
	ODMR_SASL_EXISTS,		/* create: the account exists */
	ODMR_SASL_NOTFOUND,		/* no such account */
	ODMR_SASL_INVALID,		/* bad name or password */
	ODMR_SASL_ERROR,		/* libsasl2, sasldb or file error */
};

/* odmr_sasl_setpass() flags */
#define ODMR_SASL_CREATE	0x01	/* the account must not exist */
#define ODMR_SASL_UPDATE	0x02	/* the account must exist */

/* one account of odmr_sasl_list() */
struct odmr_sasl_user {
	char	*name;
	int	 secret;		/* sasldb holds its password */
};

struct odmr_sasl_userlist {
	struct odmr_sasl_user	*v;	/* in name order */
	size_t			 n;
};

typedef void odmr_sasl_log_fn(enum log_level, const char *msg, void *arg);

struct sasl_conn;

void	odmr_sasl_set_log(odmr_sasl_log_fn *, void *arg, enum log_level max);
int	odmr_sasl_init(const char *state_dir, const char *appname,
	    char **error_r);
void	odmr_sasl_done(void);
int	odmr_sasl_check_mechs(char **error_r);

int	odmr_sasl_user_valid(const char *name, const char **why_r);
int	odmr_sasl_pass_valid(const char *pass, size_t len, const char **why_r);
int	odmr_sasl_account(const char *sasl_user, char *out, size_t outsz);
int	odmr_sasl_conn_new(const char *service, const char *server_fqdn,
	    const char *iplocalport, const char *ipremoteport,
	    struct sasl_conn **connp, char **error_r);

int	odmr_sasl_read_lock(void);
void	odmr_sasl_read_unlock(int fd);
int	odmr_sasl_exists(const char *name, char **error_r);
int	odmr_sasl_usable(const char *name, char **error_r);
enum odmr_sasl_status odmr_sasl_setpass(const char *name, const char *pass,
	    size_t len, unsigned flags, char **error_r);
enum odmr_sasl_status odmr_sasl_delete(const char *name, char **error_r);
enum odmr_sasl_status odmr_sasl_list(struct odmr_sasl_userlist **listp,
	    char **error_r);
void	odmr_sasl_userlist_free(struct odmr_sasl_userlist **);

#endif
