/*
 * NAME
 *	odmrctl 8 - administer the odmrd queue and customer domains
 * SYNOPSIS
 *	odmrctl [-f FILE] [--json] COMMAND [ARGUMENTS]
 * DESCRIPTION
 *	This file holds main(): global option parsing, the configuration,
 *	the command table and its dispatch, and the pieces every command
 *	shares (error lines, option parsing, opening the store, mapping
 *	store status to exit codes). The commands live in odmrctl_domain.c,
 *	odmrctl_user.c, odmrctl_queue.c, odmrctl_msg.c and odmrctl_stats.c;
 *	the output helpers in odmrctl_out.c.
 *
 *	odmrctl reads and writes the store directly, through the queue API,
 *	so it works whether odmrd runs or not. The store reads every record
 *	whole, in short batches, and odmrctl never caches anything across
 *	calls.
 * DIAGNOSTICS
 *	Every error is one line on stderr that starts with "odmrctl: ".
 *	Exit status: 0 success, 1 not found or nothing to do, 2 usage or
 *	configuration error, 3 store, daemon or I/O error.
 * SEE ALSO
 *	odmrctl(8), odmrd(8), odmrd.conf(5)
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "dname.h"
#include "log.h"
#include "odmr_conf.h"
#include "odmrctl.h"
#include "queue.h"
#include "xmalloc.h"

#define ODMRCTL_MAX_RESTARTS	3

static char **odmrctl_argv;		/* for odmrctl_wedged() */
static int odmrctl_closing;		/* the command has finished */
static int odmrctl_closing_rc;

static void odmrctl_wedged(void *);

static const struct odmrctl_cmd odmrctl_cmds[] = {
	{ "domain", "add", odmrctl_domain_add,
	    "DOMAIN --owner USER[,USER...] [--subdomains] "
	    "[--etrn off|any|owner] [--route HOST[:PORT][,...]|mx|client] "
	    "[--tls none|may|encrypt|verify] [--max-messages N] "
	    "[--max-bytes SIZE] [--lifetime DURATION] [--retry DURATION]",
	    "create a customer domain", ODMRCTL_F_CREATE },
	{ "domain", "set", odmrctl_domain_set,
	    "DOMAIN [--owner USER[,USER...]] [--subdomains|--no-subdomains] "
	    "[--etrn ...] [--route ...] [--tls ...] [--max-messages N] "
	    "[--max-bytes SIZE] [--lifetime DURATION] [--retry DURATION|off]",
	    "change a customer domain's settings", 0 },
	{ "domain", "del", odmrctl_domain_del, "DOMAIN [--force]",
	    "remove a customer domain (--force: with its mail)", 0 },
	{ "domain", "list", odmrctl_domain_list, "",
	    "list the customer domains", ODMRCTL_F_JSON },
	{ "domain", "show", odmrctl_domain_show, "DOMAIN",
	    "show one customer domain", ODMRCTL_F_JSON },
	{ "user", "add", odmrctl_user_add, "USER",
	    "create a customer account; the password is read from stdin", 0 },
	{ "user", "passwd", odmrctl_user_passwd, "USER",
	    "change an account's password (read from stdin)", 0 },
	{ "user", "del", odmrctl_user_del, "USER [--force]",
	    "remove an account (--force: even if it owns domains)", 0 },
	{ "user", "list", odmrctl_user_list, "",
	    "list the accounts and the domains they own", ODMRCTL_F_JSON },
	{ "queue", NULL, odmrctl_queue, "[DOMAIN]",
	    "queue summary per domain, or one domain's messages",
	    ODMRCTL_F_JSON },
	{ "show", NULL, odmrctl_msg_show, "ID [--headers|--body|--raw]",
	    "show a message's envelope, or its content", ODMRCTL_F_JSON },
	{ "delete", NULL, odmrctl_msg_delete, "ID...|--domain DOMAIN",
	    "delete messages", 0 },
	{ "hold", NULL, odmrctl_msg_hold, "ID...|--domain DOMAIN",
	    "keep messages from delivery", 0 },
	{ "release", NULL, odmrctl_msg_release, "ID...|--domain DOMAIN",
	    "make held messages deliverable again", 0 },
	{ "bounce", NULL, odmrctl_bounce, "ID...",
	    "fail messages now and send their senders a DSN", 0 },
	{ "flush", NULL, odmrctl_flush, "DOMAIN [-v]",
	    "deliver a domain now over its route, as ETRN would", 0 },
	{ "stats", NULL, odmrctl_stats, "",
	    "store-wide counters", ODMRCTL_F_JSON },
	{ "check", NULL, odmrctl_stats_check, "",
	    "consistency check of the store", ODMRCTL_F_JSON },
};

#define ODMRCTL_NCMDS	(sizeof(odmrctl_cmds) / sizeof(odmrctl_cmds[0]))

/* odmrctl_err - print one "odmrctl: ..." line on stderr */
void
odmrctl_err(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("odmrctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void odmrctl_usage_vmsg(struct odmrctl *, int, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

/* odmrctl_usage_vmsg - format a usage error of the current command */
static void
odmrctl_usage_vmsg(struct odmrctl *ctl, int with_usage, const char *fmt,
    va_list ap)
{
	char msg[1024];
	int n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		msg[0] = '\0';
	/* a truncated message still reads well: keep it */
	if (ctl == NULL || ctl->name == NULL)
		odmrctl_err("%s", msg);
	else if (with_usage)
		odmrctl_err("%s: %s (usage: odmrctl %s %s)", ctl->name, msg,
		    ctl->name, ctl->cmd->usage);
	else
		odmrctl_err("%s: %s", ctl->name, msg);
}

/* odmrctl_usage_err - a bad argument of the current command; returns 2 */
int
odmrctl_usage_err(struct odmrctl *ctl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	odmrctl_usage_vmsg(ctl, 0, fmt, ap);
	va_end(ap);
	return ODMRCTL_EXIT_USAGE;
}

/* odmrctl_syntax_err - missing or extra arguments: add the usage; 2 */
int
odmrctl_syntax_err(struct odmrctl *ctl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	odmrctl_usage_vmsg(ctl, 1, fmt, ap);
	va_end(ap);
	return ODMRCTL_EXIT_USAGE;
}

/*
 * odmrctl_status_exit - the one place that turns a store status into an
 * exit code. QUEUE_BUSY is a flush in progress in odmrd, so it counts
 * as a daemon condition; callers with a better reading (domain del of
 * a domain that holds mail) handle it before coming here.
 */
int
odmrctl_status_exit(enum queue_status st)
{
	switch (st) {
	case QUEUE_OK:
		return ODMRCTL_EXIT_OK;
	case QUEUE_NOTFOUND:
	case QUEUE_EXISTS:
		return ODMRCTL_EXIT_NOTFOUND;
	case QUEUE_INVALID:
		return ODMRCTL_EXIT_USAGE;
	case QUEUE_BUSY:
	case QUEUE_LIMIT:
	case QUEUE_NOSPACE:
	case QUEUE_ERROR:
		break;
	}
	return ODMRCTL_EXIT_STORE;
}

/* odmrctl_store_err - print a store failure with its text; return the code */
int
odmrctl_store_err(enum queue_status st, const struct queue_error *qerr,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	if (qerr != NULL && qerr->text[0] != '\0')
		odmrctl_err("%s: %s", msg, qerr->text);
	else
		odmrctl_err("%s: %s", msg, queue_status_name(st));
	return odmrctl_status_exit(st);
}

/* odmrctl_default_lifetime - queue_lifetime of the configuration */
uint64_t
odmrctl_default_lifetime(const struct odmrctl *ctl)
{
	return ctl->conf->queue_lifetime;
}

/*
 * odmrctl_store - open the store of the configured state directory.
 * Only commands flagged ODMRCTL_F_CREATE (domain add) may create it;
 * the others explain that there is none, so that a typo in state_dir
 * never leaves a fresh empty store behind.
 */
int
odmrctl_store(struct odmrctl *ctl, int *exit_r)
{
	const char *dir = ctl->conf->state_dir;
	char path[PATH_MAX];
	struct queue_opts opts;
	struct queue_error qerr;
	struct stat st;
	enum queue_status qs;
	int n;

	if (ctl->q != NULL)
		return 0;
	*exit_r = ODMRCTL_EXIT_STORE;
	if (dir == NULL || dir[0] == '\0') {
		odmrctl_err("no state_dir configured");
		return -1;
	}
	if (stat(dir, &st) < 0) {
		if (errno == ENOENT)
			odmrctl_err("state directory %s does not exist", dir);
		else
			odmrctl_err("cannot access state directory %s: %s",
			    dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		odmrctl_err("state directory %s is not a directory", dir);
		return -1;
	}
	n = snprintf(path, sizeof(path), "%s/%s", dir, QUEUE_ENV_SUBDIR);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		odmrctl_err("state directory path too long: %s", dir);
		return -1;
	}
	if (!(ctl->cmd->flags & ODMRCTL_F_CREATE) && stat(path, &st) < 0) {
		if (errno == ENOENT)
			odmrctl_err("no queue store in %s (%s is missing; "
			    "'odmrctl domain add' or odmrd creates it)",
			    dir, path);
		else
			odmrctl_err("cannot access %s: %s", path,
			    strerror(errno));
		return -1;
	}
	memset(&opts, 0, sizeof(opts));
	memset(&qerr, 0, sizeof(qerr));
	opts.state_dir = dir;
	opts.flags = (ctl->cmd->flags & ODMRCTL_F_CREATE) ? QUEUE_OPEN_CREATE : 0;
	opts.default_lifetime = odmrctl_default_lifetime(ctl);
	opts.on_wedged = odmrctl_wedged;
	if ((qs = queue_open(&opts, &ctl->q, &qerr)) != QUEUE_OK) {
		odmrctl_err("cannot open the queue store in %s: %s", dir,
		    qerr.text[0] ? qerr.text : queue_status_name(qs));
		ctl->q = NULL;
		return -1;
	}
	*exit_r = ODMRCTL_EXIT_OK;
	return 0;
}

/* odmrctl_say - one "odmrctl: " line on stderr, safe from any thread */
static void
odmrctl_say(const char *text)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "odmrctl: %s\n", text);

	if (n > 0)
		(void)!write(STDERR_FILENO, line,
		    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/*
 * odmrctl_wedged - queue_opts.on_wedged: the store is stuck behind a
 * process that died holding one of its mutexes, and this process can
 * never get past it. Start the command again: the new process's open
 * runs recovery. Nothing has been printed yet (output is buffered until
 * the command ends), and ODMRCTL_RESTARTS bounds the retries.
 */
static void
odmrctl_wedged(void *arg)
{
	const char *s = getenv("ODMRCTL_RESTARTS");
	int restarts = s ? atoi(s) : 0;
	char v[16];

	(void)arg;
	if (__atomic_load_n(&odmrctl_closing, __ATOMIC_SEQ_CST))
		_exit(odmrctl_closing_rc);	/* output is out: just leave */
	if (restarts >= ODMRCTL_MAX_RESTARTS) {
		odmrctl_say("the store stays locked by a process that died; "
		    "giving up");
		_exit(ODMRCTL_EXIT_STORE);
	}
	odmrctl_say("the store was left locked by a process that died; "
	    "starting again so that recovery runs");
	snprintf(v, sizeof(v), "%d", restarts + 1);
	setenv("ODMRCTL_RESTARTS", v, 1);
	execv("/proc/self/exe", odmrctl_argv);
	odmrctl_say("cannot start again");
	_exit(ODMRCTL_EXIT_STORE);
}

/* odmrctl_args_init - start parsing a command's arguments */
void
odmrctl_args_init(struct odmrctl_args *a, struct odmrctl *ctl, int argc,
    char **argv)
{
	memset(a, 0, sizeof(*a));
	a->ctl = ctl;
	a->argc = argc;
	a->argv = argv;
}

/*
 * odmrctl_args_next - the next option (its id, value in *val) or operand
 * (ODMRCTL_ARG_OPERAND, text in *val). Options may come anywhere, as
 * "--name VALUE" or "--name=VALUE"; "--" ends them. Returns
 * ODMRCTL_ARG_END when done and ODMRCTL_ARG_ERROR after printing a
 * usage error.
 */
int
odmrctl_args_next(struct odmrctl_args *a, const struct odmrctl_opt *opts,
    const char **val)
{
	const struct odmrctl_opt *o;
	const char *arg, *eq;
	size_t namelen;

	*val = NULL;
	while (a->i < a->argc) {
		arg = a->argv[a->i++];
		if (!a->no_more_opts && strcmp(arg, "--") == 0) {
			a->no_more_opts = 1;
			continue;
		}
		if (a->no_more_opts || arg[0] != '-' || arg[1] == '\0') {
			*val = arg;
			return ODMRCTL_ARG_OPERAND;
		}
		eq = strchr(arg, '=');
		namelen = eq ? (size_t)(eq - arg) : strlen(arg);
		for (o = opts; o != NULL && o->name != NULL; o++)
			if (strlen(o->name) == namelen &&
			    strncmp(o->name, arg, namelen) == 0)
				break;
		if (o == NULL || o->name == NULL) {
			odmrctl_usage_err(a->ctl, "unknown option '%.*s'",
			    (int)namelen, arg);
			return ODMRCTL_ARG_ERROR;
		}
		if (!o->has_arg) {
			if (eq != NULL) {
				odmrctl_usage_err(a->ctl,
				    "option %s takes no value", o->name);
				return ODMRCTL_ARG_ERROR;
			}
			return o->id;
		}
		if (eq != NULL)
			*val = eq + 1;
		else if (a->i < a->argc)
			*val = a->argv[a->i++];
		else {
			odmrctl_usage_err(a->ctl, "missing argument to %s",
			    o->name);
			return ODMRCTL_ARG_ERROR;
		}
		return o->id;
	}
	return ODMRCTL_ARG_END;
}

/* odmrctl_domain_arg - validate and normalise a domain argument */
int
odmrctl_domain_arg(struct odmrctl *ctl, const char *in,
    char out[DNAME_MAX + 1])
{
	const char *why = "invalid";

	if (dname_normalize(in, out, &why) < 0) {
		odmrctl_err("%s: bad domain name '%s': %s",
		    ctl->name ? ctl->name : "odmrctl", in, why);
		return -1;
	}
	return 0;
}

/* odmrctl_usage - the synopsis and the command list */
static void
odmrctl_usage(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: odmrctl [-f FILE] [--json] COMMAND [ARGUMENTS]\n"
	    "\n"
	    "options:\n"
	    "  -f FILE      configuration file (default %s)\n"
	    "  --json       machine-readable output (read commands)\n"
	    "  -h, --help   this text; COMMAND --help shows one command\n"
	    "  -V, --version\n"
	    "\n"
	    "commands:\n", odmr_conf_default_path());
	for (i = 0; i < ODMRCTL_NCMDS; i++) {
		const struct odmrctl_cmd *c = &odmrctl_cmds[i];
		char verb[64];
		int n;

		n = snprintf(verb, sizeof(verb), "%s%s%s", c->verb,
		    c->sub ? " " : "", c->sub ? c->sub : "");
		if (n < 0 || (size_t)n >= sizeof(verb))
			continue;
		fprintf(fp, "  %-12s %s\n", verb, c->summary);
	}
	fprintf(fp, "\nexit status: 0 ok, 1 not found or nothing to do, "
	    "2 usage or configuration error, 3 store or daemon error\n");
}

/* odmrctl_cmd_usage - the usage line of one command */
static void
odmrctl_cmd_usage(const struct odmrctl_cmd *c, FILE *fp)
{
	fprintf(fp, "usage: odmrctl%s %s%s%s %s\n  %s\n",
	    (c->flags & ODMRCTL_F_JSON) ? " [--json]" : "", c->verb,
	    c->sub ? " " : "", c->sub ? c->sub : "", c->usage, c->summary);
}

/* odmrctl_find - look up "verb [sub]"; *used is the words consumed */
static const struct odmrctl_cmd *
odmrctl_find(int argc, char **argv, int *used)
{
	const char *verb = argv[0];
	char subs[128];
	size_t i;
	int known_verb = 0;

	subs[0] = '\0';
	for (i = 0; i < ODMRCTL_NCMDS; i++) {
		const struct odmrctl_cmd *c = &odmrctl_cmds[i];

		if (strcmp(c->verb, verb) != 0)
			continue;
		known_verb = 1;
		if (c->sub == NULL) {
			*used = 1;
			return c;
		}
		if (subs[0] != '\0')
			strlcat(subs, ", ", sizeof(subs));
		strlcat(subs, c->sub, sizeof(subs));
		if (argc > 1 && strcmp(c->sub, argv[1]) == 0) {
			*used = 2;
			return c;
		}
	}
	if (!known_verb)
		odmrctl_err("unknown command '%s' (see odmrctl -h)", verb);
	else if (argc < 2)
		odmrctl_err("missing %s subcommand (one of: %s)", verb, subs);
	else
		odmrctl_err("unknown command '%s %s' (%s takes: %s)", verb,
		    argv[1], verb, subs);
	return NULL;
}

/*
 * odmrctl_strip - take --json and --help out of a command's arguments,
 * so that both may follow the command. Stops at "--".
 */
static void
odmrctl_strip(int *argcp, char **argv, int *json, int *help)
{
	int i, j, argc = *argcp, done = 0;

	for (i = j = 0; i < argc; i++) {
		if (!done && strcmp(argv[i], "--") == 0)
			done = 1;
		if (!done && strcmp(argv[i], "--json") == 0) {
			*json = 1;
			continue;
		}
		if (!done && (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)) {
			*help = 1;
			continue;
		}
		argv[j++] = argv[i];
	}
	argv[j] = NULL;
	*argcp = j;
}

/* main - parse global options, load the configuration, run one command */
int
main(int argc, char **argv)
{
	struct odmrctl ctl;
	const struct odmrctl_cmd *cmd;
	const char *conf_path = NULL;
	char *error = NULL, name[64];
	int i, used, help = 0, rc, n;

	odmrctl_argv = xcalloc((size_t)argc + 1, sizeof(char *));
	for (i = 0; i < argc; i++)
		odmrctl_argv[i] = argv[i];	/* before options are removed */
	log_init("odmrctl", 1, LOG_LEVEL_WARN);
	memset(&ctl, 0, sizeof(ctl));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "-f") == 0) {
			if (i + 1 >= argc) {
				odmrctl_err("option -f needs a file name");
				return ODMRCTL_EXIT_USAGE;
			}
			conf_path = argv[++i];
		} else if (strncmp(a, "-f", 2) == 0)
			conf_path = a + 2;
		else if (strcmp(a, "--json") == 0)
			ctl.json = 1;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			odmrctl_usage(stdout);
			return odmrctl_out_flush() < 0 ? ODMRCTL_EXIT_STORE :
			    ODMRCTL_EXIT_OK;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("odmrctl %s\n", PACKAGE_VERSION);
			return odmrctl_out_flush() < 0 ? ODMRCTL_EXIT_STORE :
			    ODMRCTL_EXIT_OK;
		} else {
			odmrctl_err("unknown option '%s' (see odmrctl -h)", a);
			return ODMRCTL_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		odmrctl_err("missing command (see odmrctl -h)");
		return ODMRCTL_EXIT_USAGE;
	}
	if ((cmd = odmrctl_find(argc - i, argv + i, &used)) == NULL)
		return ODMRCTL_EXIT_USAGE;
	i += used;
	ctl.cmd = cmd;
	n = snprintf(name, sizeof(name), "%s%s%s", cmd->verb,
	    cmd->sub ? " " : "", cmd->sub ? cmd->sub : "");
	if (n < 0 || (size_t)n >= sizeof(name))
		fatalx("command name too long");
	ctl.name = name;
	argc -= i;
	argv += i;
	odmrctl_strip(&argc, argv, &ctl.json, &help);
	if (help) {
		odmrctl_cmd_usage(cmd, stdout);
		return odmrctl_out_flush() < 0 ? ODMRCTL_EXIT_STORE :
		    ODMRCTL_EXIT_OK;
	}
	if (ctl.json && !(cmd->flags & ODMRCTL_F_JSON)) {
		odmrctl_err("%s: --json is only for read commands", name);
		return ODMRCTL_EXIT_USAGE;
	}
	if (odmr_conf_load(conf_path ? conf_path : odmr_conf_default_path(),
	    conf_path != NULL, &ctl.conf, &error) < 0) {
		odmrctl_err("%s", error ? error : "cannot load the configuration");
		free(error);
		return ODMRCTL_EXIT_USAGE;
	}
	ctl.now = (uint64_t)time(NULL);
	rc = cmd->run(&ctl, argc, argv);
	/* the command is done: a wedge while closing must not rerun it */
	if (odmrctl_out_flush() < 0 && rc == ODMRCTL_EXIT_OK)
		rc = ODMRCTL_EXIT_STORE;
	fflush(stdout);
	odmrctl_closing_rc = rc;
	__atomic_store_n(&odmrctl_closing, 1, __ATOMIC_SEQ_CST);
	queue_close(&ctl.q);
	odmr_conf_free(&ctl.conf);
	if (odmrctl_out_flush() < 0 && rc == ODMRCTL_EXIT_OK)
		rc = ODMRCTL_EXIT_STORE;
	return rc;
}
