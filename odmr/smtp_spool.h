/*
 * NAME
 *	smtp_spool 3h - where a message's text waits until it is committed
 * SYNOPSIS
 *	#include "smtp_spool.h"
 * DESCRIPTION
 *	While a client sends DATA or BDAT chunks, the session appends the
 *	message text to a struct smtp_spool. The first mem_max octets stay
 *	in memory; beyond that the whole text moves to an unlinked
 *	temporary file in dir (created with O_TMPFILE where the file
 *	system has it, else mkstemp() and unlink()), so a 50 MB message
 *	costs no 50 MB of memory. Nothing here fsyncs: the spool is a
 *	scratch copy and the store makes the message durable.
 *
 *	smtp_spool_read() has the queue_reader_fn signature (queue 3h), so
 *	the spool is handed straight to queue_enqueue() on a worker thread.
 *	It reads like pread(2) and may be called for the same offsets more
 *	than once (the store retries transactions). No write may happen
 *	while a reader runs.
 *
 *	A write error (ENOSPC, EDQUOT, EIO) makes the spool failed: later
 *	writes are dropped, smtp_spool_failed() returns the errno and
 *	smtp_spool_error() the text, so the session can keep reading the
 *	client's text to its end and then answer 452 4.3.1 rather than
 *	drop the connection.
 *
 *	smtp_spool_new() copies dir (NULL means /tmp) and touches no disk;
 *	with mem_max large enough nothing ever does. smtp_spool_size() is
 *	the number of octets stored, smtp_spool_on_disk() whether they
 *	went to the file. smtp_spool_reset() closes the file, clears the
 *	failed state and keeps the struct for the session's next message.
 * DIAGNOSTICS
 *	smtp_spool_new() cannot fail (allocation failure is fatal): a dir
 *	that is unusable shows at the first write past mem_max, which
 *	makes the spool failed ("cannot create a spool file in DIR: ...").
 *	smtp_spool_write() returns 0 or -1 with errno set; once failed,
 *	every write returns -1 at once and so does smtp_spool_read().
 *	smtp_spool_error() is NULL while the spool is not failed.
 */
#ifndef ODMR_SMTP_SPOOL_H
#define ODMR_SMTP_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SMTP_SPOOL_MEM_MAX	(256 * 1024)	/* default in-memory part */

struct smtp_spool;

struct smtp_spool *smtp_spool_new(const char *dir, size_t mem_max);
void	 smtp_spool_free(struct smtp_spool **);
void	 smtp_spool_reset(struct smtp_spool *);
int	 smtp_spool_write(struct smtp_spool *, const void *, size_t);
uint64_t smtp_spool_size(const struct smtp_spool *);
int	 smtp_spool_on_disk(const struct smtp_spool *);
int	 smtp_spool_failed(const struct smtp_spool *);
const char *smtp_spool_error(const struct smtp_spool *);
ssize_t	 smtp_spool_read(void *spool, uint64_t off, void *buf, size_t len);

#endif
