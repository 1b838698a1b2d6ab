/*
 * NAME
 *	odmrctl 3h - private interfaces of the odmrctl admin tool
 * SYNOPSIS
 *	#include "odmrctl.h"
 * DESCRIPTION
 *	odmrctl.c parses the global options, finds the command in its
 *	table and calls the handler with the arguments that follow the
 *	verb. Each handler parses its own arguments, opens the store with
 *	odmrctl_store() only once they are valid, and returns an exit code;
 *	every error is one line on stderr printed with odmrctl_err().
 *	odmrctl_out.c holds the output helpers shared by all commands:
 *	aligned tables, human sizes and ages, and the JSON envelope.
 */
#ifndef ODMR_ODMRCTL_H
#define ODMR_ODMRCTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "json.h"
#include "queue.h"

struct odmr_conf;

/* exit codes of SPEC.md */
#define ODMRCTL_EXIT_OK		0
#define ODMRCTL_EXIT_NOTFOUND	1	/* not found / nothing to do */
#define ODMRCTL_EXIT_USAGE	2	/* usage or configuration error */
#define ODMRCTL_EXIT_STORE	3	/* store, daemon or I/O error */

/* command flags */
#define ODMRCTL_F_JSON		0x01	/* has a --json form */
#define ODMRCTL_F_CREATE	0x02	/* may create the store */

#define ODMRCTL_FIELD_MAX	512	/* longest formatted table cell */

struct odmrctl;

typedef int (*odmrctl_run_fn)(struct odmrctl *, int argc, char **argv);

struct odmrctl_cmd {
	const char	*verb;		/* "domain", "queue", ... */
	const char	*sub;		/* "add", ..., or NULL */
	odmrctl_run_fn	 run;
	const char	*usage;		/* arguments after the verbs */
	const char	*summary;
	unsigned	 flags;		/* ODMRCTL_F_* */
};

struct odmrctl {
	const struct odmrctl_cmd *cmd;
	const char	*name;		/* "domain add": for messages */
	struct odmr_conf *conf;
	int		 json;
	uint64_t	 now;		/* unix time at start */
	struct queue	*q;		/* opened by odmrctl_store() */
};

/* option parsing for handlers */
struct odmrctl_opt {
	const char	*name;		/* "--owner" */
	int		 has_arg;
	int		 id;		/* > 0 */
};

struct odmrctl_args {
	struct odmrctl	*ctl;
	int		 argc;
	char		**argv;
	int		 i;
	int		 no_more_opts;	/* after "--" */
};

#define ODMRCTL_ARG_END		(-1)
#define ODMRCTL_ARG_ERROR	(-2)
#define ODMRCTL_ARG_OPERAND	0

/* odmrctl.c */
void	odmrctl_err(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
int	odmrctl_usage_err(struct odmrctl *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	odmrctl_syntax_err(struct odmrctl *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	odmrctl_store(struct odmrctl *, int *exit_r);
int	odmrctl_status_exit(enum queue_status);
int	odmrctl_store_err(enum queue_status, const struct queue_error *,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void	odmrctl_args_init(struct odmrctl_args *, struct odmrctl *,
	    int argc, char **argv);
int	odmrctl_args_next(struct odmrctl_args *, const struct odmrctl_opt *,
	    const char **val);
int	odmrctl_domain_arg(struct odmrctl *, const char *in,
	    char out[DNAME_MAX + 1]);
uint64_t odmrctl_default_lifetime(const struct odmrctl *);

/* odmrctl_domain.c */
int	odmrctl_domain_known(struct odmrctl *, const char *name);
int	odmrctl_domain_add(struct odmrctl *, int, char **);
int	odmrctl_domain_set(struct odmrctl *, int, char **);
int	odmrctl_domain_del(struct odmrctl *, int, char **);
int	odmrctl_domain_list(struct odmrctl *, int, char **);
int	odmrctl_domain_show(struct odmrctl *, int, char **);

/* odmrctl_user.c */
int	odmrctl_user_add(struct odmrctl *, int, char **);
int	odmrctl_user_passwd(struct odmrctl *, int, char **);
int	odmrctl_user_del(struct odmrctl *, int, char **);
int	odmrctl_user_list(struct odmrctl *, int, char **);

/* odmrctl_queue.c */
int	odmrctl_queue(struct odmrctl *, int, char **);

/* odmrctl_msg.c */
int	odmrctl_msg_show(struct odmrctl *, int, char **);
int	odmrctl_msg_delete(struct odmrctl *, int, char **);
int	odmrctl_msg_hold(struct odmrctl *, int, char **);
int	odmrctl_msg_release(struct odmrctl *, int, char **);

/* odmrctl_bounce.c */
int	odmrctl_bounce(struct odmrctl *, int, char **);

/* odmrctl_flush.c */
int	odmrctl_flush(struct odmrctl *, int, char **);

/* odmrctl_stats.c */
int	odmrctl_stats(struct odmrctl *, int, char **);
int	odmrctl_stats_check(struct odmrctl *, int, char **);

/* odmrctl_out.c: aligned tables */
struct odmrctl_table;

struct odmrctl_table *odmrctl_out_table_new(const char *const *headers,
	    size_t ncols);
void	odmrctl_out_table_right(struct odmrctl_table *, size_t col);
void	odmrctl_out_table_row(struct odmrctl_table *, const char *const *cells);
void	odmrctl_out_table_print(const struct odmrctl_table *, struct buf *);
void	odmrctl_out_table_free(struct odmrctl_table **);

/* odmrctl_out.c: human values */
void	odmrctl_out_size(uint64_t bytes, char *out, size_t outsz);
void	odmrctl_out_ago(uint64_t now, uint64_t t, const char *none,
	    char *out, size_t outsz);
void	odmrctl_out_until(uint64_t now, uint64_t t, const char *none,
	    char *out, size_t outsz);
void	odmrctl_out_time(uint64_t now, uint64_t t, const char *none,
	    char *out, size_t outsz);
void	odmrctl_out_limit(uint64_t v, int is_size, char *out, size_t outsz);
const char *odmrctl_out_sender(const char *sender);
void	odmrctl_out_claim(uint64_t now, const struct queue_domain *,
	    int verbose, char *out, size_t outsz);
void	odmrctl_out_kv(struct buf *, const char *key, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* odmrctl_out.c: JSON and writing */
void	odmrctl_out_json_begin(struct odmrctl *, struct json *, struct buf *,
	    const char *schema);
void	odmrctl_out_json_end(struct json *);
void	odmrctl_out_json_time(struct json *, const char *key, uint64_t t);
void	odmrctl_out_json_flush(struct odmrctl *, struct json *,
	    const struct queue_domain *);
void	odmrctl_out_json_domain(struct odmrctl *, struct json *,
	    const struct queue_domain *);
int	odmrctl_out_write(const void *, size_t);
int	odmrctl_out_buf(const struct buf *);

/*
 * A listing is one JSON document with an array of rows, or an aligned
 * table: begin, optionally add document fields, open the array, let the
 * row callbacks fill l.json or l.table, then finish and release.
 */
struct odmrctl_list {
	struct buf		 out;
	struct json		 j;
	struct json		*json;		/* set with --json */
	struct odmrctl_table	*table;		/* set otherwise */
};

void	odmrctl_out_list_begin(struct odmrctl_list *, struct odmrctl *,
	    const char *schema, const char *const *headers, size_t ncols);
void	odmrctl_out_list_array(struct odmrctl_list *, const char *key);
int	odmrctl_out_list_finish(struct odmrctl_list *);
void	odmrctl_out_list_release(struct odmrctl_list *);
int	odmrctl_out_flush(void);

#endif
