/*
 * NAME
 *	queue_backend 3h - the store backend vtable (private to queue/)
 * DESCRIPTION
 *	queue.c validates arguments and calls through a const struct
 *	queue_backend. A backend keeps its own state behind the opaque
 *	pointer it returns from open(). Arguments reaching a backend are
 *	already validated: domains are in key form, pointers non-NULL.
 */
#ifndef QUEUE_QUEUE_BACKEND_H
#define QUEUE_QUEUE_BACKEND_H

#include "queue.h"

struct queue_backend {
	const char *name;
	enum queue_status (*open)(const struct queue_opts *, void **,
	    struct queue_error *);
	void	(*close)(void **);
	enum queue_status (*domain_add)(void *, const struct queue_domain *,
	    struct queue_error *);
	enum queue_status (*domain_update)(void *, const char *,
	    queue_update_fn, void *, struct queue_error *);
	enum queue_status (*domain_get)(void *, const char *,
	    struct queue_domain *, struct queue_error *);
	enum queue_status (*domain_del)(void *, const char *, int,
	    struct queue_error *);
	enum queue_status (*domain_list)(void *, queue_domain_fn, void *,
	    struct queue_error *);
	enum queue_status (*domain_exists)(void *, const char *,
	    struct queue_error *);
	enum queue_status (*enqueue)(void *, struct queue_msg *,
	    queue_reader_fn, void *, struct queue_error *);
	enum queue_status (*id_reserve)(void *, unsigned, uint64_t *,
	    struct queue_error *);
	enum queue_status (*walk)(void *, const char *, unsigned,
	    queue_msg_fn, void *, struct queue_error *);
	enum queue_status (*get)(void *, uint64_t, struct queue_msg **,
	    struct queue_error *);
	enum queue_status (*body_read)(void *, uint64_t, queue_chunk_fn,
	    void *, struct queue_error *);
	enum queue_status (*record)(void *, const struct queue_outcome *,
	    size_t, struct queue_error *);
	enum queue_status (*msg_op)(void *, enum queue_op, uint64_t,
	    const char *, struct queue_error *);
	enum queue_status (*domain_op)(void *, enum queue_op, const char *,
	    uint64_t *, struct queue_error *);
	enum queue_status (*claim)(void *, const char *, const char *,
	    uint64_t, char *, struct queue_error *);
	enum queue_status (*unclaim)(void *, const char *, const char *, int,
	    struct queue_error *);
	enum queue_status (*expire_scan)(void *, uint64_t, size_t,
	    queue_expire_fn, void *, struct queue_error *);
	enum queue_status (*stats)(void *, struct queue_stats *,
	    struct queue_error *);
	enum queue_status (*check)(void *, queue_problem_fn, void *,
	    uint64_t *, struct queue_error *);
	enum queue_status (*maintain)(void *, struct queue_error *);
};

extern const struct queue_backend queue_bdb_backend;

void	queue_error_set(struct queue_error *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
int	queue_rcpt_live(enum queue_rcpt_state);

#endif
