/*
 * NAME
 *	odmrctl_user 3 - odmrctl user add, passwd, del and list
 * SYNOPSIS
 *	odmrctl user add USER
 *	odmrctl user passwd USER
 *	odmrctl user del USER [--force]
 *	odmrctl [--json] user list
 * DESCRIPTION
 *	The customer accounts that authenticate on the ODMR port. The
 *	secrets and the account index live in state_dir and are kept by
 *	odmr_sasl.c (see odmr_sasl.h); this file parses the commands,
 *	reads the password and joins the accounts with the customer
 *	domains that name them as owners.
 *
 *	A password is one line on standard input, 1 to 1024 octets, no
 *	NUL; its LF or CR LF is not part of it. When standard input is a
 *	terminal, odmrctl prompts on stderr, turns echo off while the line
 *	is typed (restoring it on SIGINT, SIGTERM, SIGHUP and SIGQUIT too)
 *	and asks twice. From a pipe it reads exactly one line, without a
 *	prompt. No password is ever printed, logged or kept after use.
 *
 *	user add and user passwd look the account up before reading the
 *	password, so that a typo is reported before anything is typed;
 *	odmr_sasl_setpass() checks again under its lock.
 *
 *	The domains come from the queue store when there is one; with no
 *	store yet (no domain was ever added) no user owns anything.
 * DIAGNOSTICS
 *	2 for a bad user name or password and for deleting a domain owner
 *	without --force, 1 for adding an existing or changing or deleting
 *	an unknown account, 3 for store, sasldb and I/O errors.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "json.h"
#include "odmr_conf.h"
#include "odmr_sasl.h"
#include "odmrctl.h"
#include "queue.h"
#include "xmalloc.h"

#define ODMRCTL_USER_LINE_MAX	(ODMR_SASL_PASS_MAX + 1)	/* + CR */

enum {
	USER_OPT_FORCE = 1,
};

static const struct odmrctl_opt odmrctl_user_no_opts[] = {
	{ NULL, 0, 0 },
};

static const struct odmrctl_opt odmrctl_user_del_opts[] = {
	{ "--force", 0, USER_OPT_FORCE },
	{ NULL, 0, 0 },
};

/* the terminal while echo is off, for the signal handler */
static struct termios odmrctl_user_tty;
static volatile sig_atomic_t odmrctl_user_echo_off;

static const int odmrctl_user_sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define ODMRCTL_USER_NSIGS	(sizeof(odmrctl_user_sigs) / sizeof(int))

/* one line of user list */
struct odmrctl_user_row {
	char		*name;
	int		 account;	/* in the account index */
	int		 secret;	/* sasldb holds its password */
	struct buf	 domains;	/* "a,b" for the table */
	char		**dv;		/* the same, for JSON */
	size_t		 dn;
};

struct odmrctl_user_rows {
	struct odmrctl_user_row	*v;	/* in name order */
	size_t			 n;
	const char		*only;	/* collect for this user only */
};

/* odmrctl_user_status_exit - the exit code of an odmr_sasl status */
static int
odmrctl_user_status_exit(enum odmr_sasl_status st)
{
	switch (st) {
	case ODMR_SASL_OK:
		return ODMRCTL_EXIT_OK;
	case ODMR_SASL_EXISTS:
	case ODMR_SASL_NOTFOUND:
		return ODMRCTL_EXIT_NOTFOUND;
	case ODMR_SASL_INVALID:
		return ODMRCTL_EXIT_USAGE;
	case ODMR_SASL_ERROR:
		break;
	}
	return ODMRCTL_EXIT_STORE;
}

/* odmrctl_user_sasl - start libsasl2 on the state directory; 0 or -1 */
static int
odmrctl_user_sasl(struct odmrctl *ctl, int *exit_r)
{
	char *error = NULL;

	if (odmr_sasl_init(ctl->conf->state_dir, "odmrctl", &error) < 0) {
		odmrctl_err("%s", error ? error : "cannot start libsasl2");
		free(error);
		*exit_r = ODMRCTL_EXIT_STORE;
		return -1;
	}
	return 0;
}

/*
 * odmrctl_user_args - the USER operand (checked) and the options of a
 * command; 0 or an exit code after printing the error
 */
static int
odmrctl_user_args(struct odmrctl *ctl, int argc, char **argv,
    const struct odmrctl_opt *opts, const char **user, int *force)
{
	struct odmrctl_args a;
	const char *val, *why;
	int id;

	*user = NULL;
	odmrctl_args_init(&a, ctl, argc, argv);
	while ((id = odmrctl_args_next(&a, opts, &val)) != ODMRCTL_ARG_END) {
		if (id == ODMRCTL_ARG_ERROR)
			return ODMRCTL_EXIT_USAGE;
		if (id == USER_OPT_FORCE) {
			*force = 1;
			continue;
		}
		if (*user != NULL)
			return odmrctl_syntax_err(ctl,
			    "unexpected argument '%s'", val);
		*user = val;
	}
	if (*user == NULL)
		return odmrctl_syntax_err(ctl, "missing USER");
	if (odmr_sasl_user_valid(*user, &why) < 0)
		return odmrctl_usage_err(ctl, "bad user name '%s': %s",
		    *user, why);
	return 0;
}

/* odmrctl_user_sig - restore the terminal's echo, then die of sig */
static void
odmrctl_user_sig(int sig)
{
	if (odmrctl_user_echo_off)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &odmrctl_user_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * odmrctl_user_getline - one line of standard input, read byte by
 * byte so that nothing after it is consumed, without its LF or CR LF.
 * The length, -1 on a read error (errno), -2 when longer than bufsz.
 */
static ssize_t
odmrctl_user_getline(char *buf, size_t bufsz, int *eof)
{
	size_t len = 0;
	ssize_t n;
	char c;

	*eof = 0;
	for (;;) {
		n = read(STDIN_FILENO, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			*eof = len == 0;
			break;
		}
		if (c == '\n')
			break;
		if (len == bufsz)
			return -2;
		buf[len++] = c;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	return (ssize_t)len;
}

/* odmrctl_user_prompt - prompt on stderr and read a line with echo off */
static ssize_t
odmrctl_user_prompt(const char *prompt, char *buf, size_t bufsz, int *eof)
{
	struct sigaction sa, old[ODMRCTL_USER_NSIGS];
	struct termios quiet;
	ssize_t len;
	size_t i;
	int saved_errno;

	if (tcgetattr(STDIN_FILENO, &odmrctl_user_tty) < 0)
		return -1;
	quiet = odmrctl_user_tty;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;	/* the Enter still moves on */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = odmrctl_user_sig;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ODMRCTL_USER_NSIGS; i++)
		sigaction(odmrctl_user_sigs[i], &sa, &old[i]);
	odmrctl_user_echo_off = 1;
	/*
	 * TCSAFLUSH: typeahead was echoed, so it is thrown away. The
	 * prompt comes after, so nothing typed after it is lost.
	 */
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
		len = -1;
	else {
		fputs(prompt, stderr);
		fflush(stderr);
		len = odmrctl_user_getline(buf, bufsz, eof);
	}
	saved_errno = errno;
	if (len == -2)
		(void)tcflush(STDIN_FILENO, TCIFLUSH);	/* the long rest */
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &odmrctl_user_tty);
	odmrctl_user_echo_off = 0;
	for (i = 0; i < ODMRCTL_USER_NSIGS; i++)
		sigaction(odmrctl_user_sigs[i], &old[i], NULL);
	errno = saved_errno;
	return len;
}

/* odmrctl_user_line_err - report a line that cannot be a password */
static int
odmrctl_user_line_err(struct odmrctl *ctl, ssize_t len, int eof)
{
	if (len == -1) {
		odmrctl_err("%s: cannot read the password: %s", ctl->name,
		    strerror(errno));
		return ODMRCTL_EXIT_STORE;
	}
	if (len == -2)
		return odmrctl_usage_err(ctl, "the password is longer than "
		    "%d octets", ODMR_SASL_PASS_MAX);
	return odmrctl_usage_err(ctl, eof ? "no password: give it as one "
	    "line on standard input" : "the password is empty");
}

/*
 * odmrctl_user_read_pass - the new password of user into pass (of
 * ODMRCTL_USER_LINE_MAX octets); 0, or an exit code after the error
 */
static int
odmrctl_user_read_pass(struct odmrctl *ctl, const char *user, char *pass,
    size_t *lenp)
{
	char again[ODMRCTL_USER_LINE_MAX], prompt[128];
	const char *why;
	ssize_t len, len2;
	int eof, rc = 0;

	if (isatty(STDIN_FILENO)) {
		snprintf(prompt, sizeof(prompt), "New password for %s: ",
		    user);
		len = odmrctl_user_prompt(prompt, pass,
		    ODMRCTL_USER_LINE_MAX, &eof);
		if (len <= 0)
			return odmrctl_user_line_err(ctl, len, eof);
		snprintf(prompt, sizeof(prompt), "Retype the password for "
		    "%s: ", user);
		len2 = odmrctl_user_prompt(prompt, again, sizeof(again), &eof);
		if (len2 != len || memcmp(pass, again, (size_t)len) != 0)
			rc = odmrctl_usage_err(ctl, "the passwords differ; "
			    "nothing changed");
		explicit_bzero(again, sizeof(again));
	} else {
		len = odmrctl_user_getline(pass, ODMRCTL_USER_LINE_MAX, &eof);
		if (len <= 0)
			return odmrctl_user_line_err(ctl, len, eof);
	}
	if (rc == 0 && odmr_sasl_pass_valid(pass, (size_t)len, &why) < 0)
		rc = odmrctl_usage_err(ctl, "%s", why);
	*lenp = (size_t)len;
	return rc;
}

/*
 * odmrctl_user_setpass - add or passwd: look the account up, read the
 * password, store it
 */
static int
odmrctl_user_setpass(struct odmrctl *ctl, int argc, char **argv,
    unsigned flags)
{
	char pass[ODMRCTL_USER_LINE_MAX];
	char *error = NULL;
	const char *user;
	enum odmr_sasl_status st;
	size_t len = 0;
	int rc, force = 0, exists;

	rc = odmrctl_user_args(ctl, argc, argv, odmrctl_user_no_opts, &user,
	    &force);
	if (rc != 0 || odmrctl_user_sasl(ctl, &rc) < 0)
		return rc;
	if ((exists = odmr_sasl_exists(user, &error)) < 0) {
		odmrctl_err("%s: %s", ctl->name, error);
		rc = ODMRCTL_EXIT_STORE;
	} else if (exists && (flags & ODMR_SASL_CREATE)) {
		odmrctl_err("user %s already exists (change its password "
		    "with 'odmrctl user passwd')", user);
		rc = ODMRCTL_EXIT_NOTFOUND;
	} else if (!exists && (flags & ODMR_SASL_UPDATE)) {
		odmrctl_err("unknown user %s", user);
		rc = ODMRCTL_EXIT_NOTFOUND;
	} else if ((rc = odmrctl_user_read_pass(ctl, user, pass, &len)) ==
	    0) {
		st = odmr_sasl_setpass(user, pass, len, flags, &error);
		if (st != ODMR_SASL_OK)
			odmrctl_err("%s: %s", ctl->name, error ? error :
			    "failed");
		else if (flags & ODMR_SASL_CREATE)
			printf("user %s added\n", user);
		else
			printf("password of user %s changed\n", user);
		rc = odmrctl_user_status_exit(st);
	}
	explicit_bzero(pass, sizeof(pass));
	free(error);
	odmr_sasl_done();
	return rc;
}

/* odmrctl_user_add - "user add": a new account */
int
odmrctl_user_add(struct odmrctl *ctl, int argc, char **argv)
{
	return odmrctl_user_setpass(ctl, argc, argv, ODMR_SASL_CREATE);
}

/* odmrctl_user_passwd - "user passwd": a new password */
int
odmrctl_user_passwd(struct odmrctl *ctl, int argc, char **argv)
{
	return odmrctl_user_setpass(ctl, argc, argv, ODMR_SASL_UPDATE);
}

/* odmrctl_user_rows_find - the row of name, or NULL */
static struct odmrctl_user_row *
odmrctl_user_rows_find(struct odmrctl_user_rows *r, const char *name)
{
	size_t lo = 0, hi = r->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(name, r->v[mid].name)) == 0)
			return &r->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* odmrctl_user_rows_add - a new row for name, in order */
static struct odmrctl_user_row *
odmrctl_user_rows_add(struct odmrctl_user_rows *r, const char *name)
{
	size_t i = r->n;

	while (i > 0 && strcmp(r->v[i - 1].name, name) > 0)
		i--;
	r->v = xreallocarray(r->v, r->n + 1, sizeof(*r->v));
	memmove(r->v + i + 1, r->v + i, (r->n - i) * sizeof(*r->v));
	memset(&r->v[i], 0, sizeof(r->v[i]));
	r->v[i].name = xstrdup(name);
	buf_init(&r->v[i].domains);
	r->n++;
	return &r->v[i];
}

/* odmrctl_user_rows_clear - free every row */
static void
odmrctl_user_rows_clear(struct odmrctl_user_rows *r)
{
	size_t i, j;

	for (i = 0; i < r->n; i++) {
		free(r->v[i].name);
		buf_release(&r->v[i].domains);
		for (j = 0; j < r->v[i].dn; j++)
			free(r->v[i].dv[j]);
		free(r->v[i].dv);
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

/*
 * odmrctl_user_owned_one - queue_domain_list callback: note the domain
 * with each of its owners (domains come in name order)
 */
static int
odmrctl_user_owned_one(const struct queue_domain *d, void *arg)
{
	struct odmrctl_user_rows *r = arg;
	struct odmrctl_user_row *row;
	size_t i;

	for (i = 0; i < d->nowners; i++) {
		if (r->only != NULL && strcmp(r->only, d->owners[i]) != 0)
			continue;
		if ((row = odmrctl_user_rows_find(r, d->owners[i])) == NULL)
			row = odmrctl_user_rows_add(r, d->owners[i]);
		if (row->dn > 0 && strcmp(row->dv[row->dn - 1], d->name) == 0)
			continue;	/* an owner named twice */
		if (row->domains.len > 0)
			buf_putc(&row->domains, ',');
		buf_puts(&row->domains, d->name);
		row->dv = xreallocarray(row->dv, row->dn + 1,
		    sizeof(*row->dv));
		row->dv[row->dn++] = xstrdup(d->name);
	}
	return 0;
}

/*
 * odmrctl_user_domains - add the customer domains to the rows, from
 * the store when there is one; 0 or an exit code after the error
 */
static int
odmrctl_user_domains(struct odmrctl *ctl, struct odmrctl_user_rows *r)
{
	char path[PATH_MAX];
	struct queue_error qerr;
	struct stat st;
	enum queue_status qs;
	int n, rc;

	n = snprintf(path, sizeof(path), "%s/%s", ctl->conf->state_dir,
	    QUEUE_ENV_SUBDIR);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		odmrctl_err("state directory path too long: %s",
		    ctl->conf->state_dir);
		return ODMRCTL_EXIT_STORE;
	}
	if (stat(path, &st) < 0 && errno == ENOENT)
		return 0;		/* no store: no domain, no owner */
	if (odmrctl_store(ctl, &rc) < 0)
		return rc;
	memset(&qerr, 0, sizeof(qerr));
	qs = queue_domain_list(ctl->q, odmrctl_user_owned_one, r, &qerr);
	if (qs != QUEUE_OK)
		return odmrctl_store_err(qs, &qerr, "cannot list domains");
	return 0;
}

/* odmrctl_user_del - "user del": remove an account */
int
odmrctl_user_del(struct odmrctl *ctl, int argc, char **argv)
{
	struct odmrctl_user_rows owned;
	struct odmrctl_user_row *row;
	enum odmr_sasl_status st;
	char *error = NULL;
	const char *user;
	int rc, force = 0, exists;

	rc = odmrctl_user_args(ctl, argc, argv, odmrctl_user_del_opts, &user,
	    &force);
	if (rc != 0 || odmrctl_user_sasl(ctl, &rc) < 0)
		return rc;
	memset(&owned, 0, sizeof(owned));
	owned.only = user;
	if ((exists = odmr_sasl_exists(user, &error)) < 0) {
		odmrctl_err("%s: %s", ctl->name, error);
		rc = ODMRCTL_EXIT_STORE;
		goto out;
	}
	if (!exists) {
		odmrctl_err("unknown user %s", user);
		rc = ODMRCTL_EXIT_NOTFOUND;
		goto out;
	}
	if ((rc = odmrctl_user_domains(ctl, &owned)) != 0)
		goto out;
	row = odmrctl_user_rows_find(&owned, user);
	if (row != NULL && !force) {
		odmrctl_err("user %s still owns %s; take it out of the "
		    "--owner list with 'odmrctl domain set', or use --force",
		    user, buf_str(&row->domains));
		rc = ODMRCTL_EXIT_USAGE;
		goto out;
	}
	st = odmr_sasl_delete(user, &error);
	if (st != ODMR_SASL_OK) {
		odmrctl_err("%s: %s", ctl->name, error ? error : "failed");
		rc = odmrctl_user_status_exit(st);
		goto out;
	}
	if (row != NULL)
		printf("user %s deleted; it is still named as owner of %s "
		    "(change that with 'odmrctl domain set')\n", user,
		    buf_str(&row->domains));
	else
		printf("user %s deleted\n", user);
	rc = ODMRCTL_EXIT_OK;
out:
	odmrctl_user_rows_clear(&owned);
	free(error);
	odmr_sasl_done();
	return rc;
}

/* odmrctl_user_account - the ACCOUNT column of user list */
static const char *
odmrctl_user_account(const struct odmrctl_user_row *row)
{
	if (!row->account)
		return "none";
	return row->secret ? "ok" : "no secret";
}

/* odmrctl_user_list - "user list": every account and the domains it owns */
int
odmrctl_user_list(struct odmrctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = { "USER", "ACCOUNT", "DOMAINS" };
	struct odmr_sasl_userlist *users = NULL;
	struct odmrctl_user_rows rows;
	struct odmrctl_user_row *row;
	struct odmrctl_list list;
	struct odmrctl_args a;
	enum odmr_sasl_status st;
	const char *val, *cells[3];
	char *error = NULL;
	size_t i, j;
	int id, rc;

	odmrctl_args_init(&a, ctl, argc, argv);
	if ((id = odmrctl_args_next(&a, odmrctl_user_no_opts, &val)) !=
	    ODMRCTL_ARG_END)
		return id == ODMRCTL_ARG_ERROR ? ODMRCTL_EXIT_USAGE :
		    odmrctl_syntax_err(ctl, "unexpected argument '%s'", val);
	if (odmrctl_user_sasl(ctl, &rc) < 0)
		return rc;
	memset(&rows, 0, sizeof(rows));
	if ((st = odmr_sasl_list(&users, &error)) != ODMR_SASL_OK) {
		odmrctl_err("%s: %s", ctl->name, error ? error : "failed");
		rc = odmrctl_user_status_exit(st);
		goto out;
	}
	for (i = 0; i < users->n; i++) {
		row = odmrctl_user_rows_add(&rows, users->v[i].name);
		row->account = 1;
		row->secret = users->v[i].secret;
	}
	if ((rc = odmrctl_user_domains(ctl, &rows)) != 0)
		goto out;
	odmrctl_out_list_begin(&list, ctl, "odmrctl.user.list/1", headers, 3);
	odmrctl_out_list_array(&list, "users");
	for (i = 0; i < rows.n; i++) {
		row = &rows.v[i];
		if (list.json != NULL) {
			json_begin_object(list.json);
			json_kv_string(list.json, "user", row->name);
			json_kv_bool(list.json, "account", row->account);
			json_kv_bool(list.json, "secret", row->secret);
			json_key(list.json, "domains");
			json_begin_array(list.json);
			for (j = 0; j < row->dn; j++)
				json_string(list.json, row->dv[j]);
			json_end_array(list.json);
			json_end_object(list.json);
			continue;
		}
		cells[0] = row->name;
		cells[1] = odmrctl_user_account(row);
		cells[2] = buf_str(&row->domains);
		odmrctl_out_table_row(list.table, cells);
	}
	rc = odmrctl_out_list_finish(&list);
	odmrctl_out_list_release(&list);
out:
	odmrctl_user_rows_clear(&rows);
	odmr_sasl_userlist_free(&users);
	free(error);
	odmr_sasl_done();
	return rc;
}
