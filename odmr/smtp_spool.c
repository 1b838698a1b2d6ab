/*
 * NAME
 *	smtp_spool 3 - where a message's text waits until it is committed
 * SYNOPSIS
 *	#include "smtp_spool.h"
 *
 *	struct smtp_spool *
 *	smtp_spool_new(dir, mem_max)
 *
 *	int
 *	smtp_spool_write(spool, data, len)
 *
 *	ssize_t
 *	smtp_spool_read(spool, off, buf, len)
 *
 *	void
 *	smtp_spool_reset(spool)
 *
 *	void
 *	smtp_spool_free(&spool)
 * DESCRIPTION
 *	The first mem_max octets of a message live in a struct buf. The
 *	write that would take the text past mem_max creates an unlinked
 *	file in dir, copies the memory part there, frees it and appends
 *	from then on to the file. Reads come from the buffer or through
 *	pread(2), which leaves the file offset alone, so a worker thread
 *	may read while the event loop does not write.
 *
 *	The file is created with O_TMPFILE, mode 0600; where the kernel or
 *	the file system refuses that flag (EOPNOTSUPP, EISDIR, EINVAL) it
 *	falls back to mkstemp(3) and unlink(2) at once. Either way the
 *	text disappears with the descriptor, also after a crash.
 * DIAGNOSTICS
 *	A failure to create or write the file marks the spool failed with
 *	the errno and a text naming dir ("cannot write the spool file in
 *	/var/tmp: No space left on device"); every later write returns -1
 *	at once with errno set to it. smtp_spool_reset() clears the state.
 * SEE ALSO
 *	smtp_spool.h, buf(3), queue(3)
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "smtp_spool.h"
#include "xmalloc.h"

/* Memory the reset keeps for the next message; more is given back. */
#define SMTP_SPOOL_KEEP		(16 * 1024)

/* The first allocation of the memory part. */
#define SMTP_SPOOL_MEM_MIN	4096

/* The mkstemp() template appended to dir. */
#define SMTP_SPOOL_TEMPLATE	"/odmrd-spool.XXXXXX"

/* The spool of one message. */
struct smtp_spool {
	char		*dir;		/* where the file goes */
	size_t		 mem_max;	/* octets kept in memory */
	struct buf	 mem;		/* the text while fd == -1 */
	int		 fd;		/* the unlinked file, or -1 */
	uint64_t	 size;		/* octets stored */
	int		 error;		/* errno of the failure, or 0 */
	char		*error_text;	/* its text, or NULL */
};

/* smtp_spool_new - an empty spool that spills to dir past mem_max */
struct smtp_spool *
smtp_spool_new(const char *dir, size_t mem_max)
{
	struct smtp_spool *sp = xcalloc(1, sizeof(*sp));

	sp->dir = xstrdup(dir != NULL ? dir : "/tmp");
	sp->mem_max = mem_max;
	buf_init(&sp->mem);
	sp->fd = -1;
	return sp;
}

/* smtp_spool_close - drop the file and the failed state */
static void
smtp_spool_close(struct smtp_spool *sp)
{
	if (sp->fd != -1) {
		/* unlinked and never fsynced: nothing to lose on close */
		(void)close(sp->fd);
		sp->fd = -1;
	}
	free(sp->error_text);
	sp->error_text = NULL;
	sp->error = 0;
	sp->size = 0;
}

/* smtp_spool_free - close the file, free the spool, clear the pointer */
void
smtp_spool_free(struct smtp_spool **spp)
{
	struct smtp_spool *sp = *spp;

	if (sp == NULL)
		return;
	smtp_spool_close(sp);
	buf_release(&sp->mem);
	free(sp->dir);
	free(sp);
	*spp = NULL;
}

/* smtp_spool_reset - empty the spool for the next message */
void
smtp_spool_reset(struct smtp_spool *sp)
{
	smtp_spool_close(sp);
	/* keep a small buffer; an idle session should not hold mem_max */
	if (sp->mem.cap > SMTP_SPOOL_KEEP)
		buf_release(&sp->mem);
	else
		buf_reset(&sp->mem);
}

/* smtp_spool_fail - enter the failed state with errno err */
static int
smtp_spool_fail(struct smtp_spool *sp, const char *what, int err)
{
	sp->error = err;
	free(sp->error_text);
	sp->error_text = xasprintf("cannot %s in %s: %s", what, sp->dir,
	    strerror(err));
	if (sp->fd != -1) {
		(void)close(sp->fd);
		sp->fd = -1;
	}
	buf_release(&sp->mem);
	errno = err;
	return -1;
}

/* smtp_spool_write_fd - write all of data, over short writes and EINTR */
static int
smtp_spool_write_fd(struct smtp_spool *sp, const void *data, size_t len)
{
	const unsigned char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(sp->fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			/* not for a regular file; do not spin on it */
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		sp->size += (uint64_t)n;
	}
	return 0;
}

/* smtp_spool_mkstemp - the fallback: a named file, unlinked at once */
static int
smtp_spool_mkstemp(const struct smtp_spool *sp)
{
	char path[PATH_MAX];
	int fd, n, err;

	n = snprintf(path, sizeof(path), "%s%s", sp->dir,
	    SMTP_SPOOL_TEMPLATE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(path)) == -1)		/* mode 0600 */
		return -1;
	if (unlink(path) == -1 || fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
		err = errno;
		(void)unlink(path);
		(void)close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* smtp_spool_open - create the unlinked file in dir */
static int
smtp_spool_open(const struct smtp_spool *sp)
{
#ifdef O_TMPFILE
	int fd;

	do
		fd = open(sp->dir, O_TMPFILE | O_RDWR | O_CLOEXEC,
		    S_IRUSR | S_IWUSR);
	while (fd == -1 && errno == EINTR);
	if (fd != -1)
		return fd;
	/*
	 * open(2): EISDIR or EINVAL from a kernel without O_TMPFILE,
	 * EOPNOTSUPP from a file system without it. ENOENT, EACCES and
	 * the like are real answers about dir, and mkstemp() would give
	 * them again.
	 */
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -1;
#endif
	return smtp_spool_mkstemp(sp);
}

/* smtp_spool_spill - move the memory part to a new file */
static int
smtp_spool_spill(struct smtp_spool *sp)
{
	if ((sp->fd = smtp_spool_open(sp)) == -1)
		return smtp_spool_fail(sp, "create a spool file", errno);
	sp->size = 0;
	if (smtp_spool_write_fd(sp, sp->mem.data, sp->mem.len) == -1)
		return smtp_spool_fail(sp, "write the spool file", errno);
	buf_release(&sp->mem);
	return 0;
}

/* smtp_spool_mem_grow - room for len more octets, never past mem_max */
static void
smtp_spool_mem_grow(struct smtp_spool *sp, size_t len)
{
	size_t need = sp->mem.len + len + 1, limit, ncap;

	/* the caller checked len <= mem_max - mem.len */
	if (need <= sp->mem.cap)
		return;
	limit = sp->mem_max < SIZE_MAX ? sp->mem_max + 1 : SIZE_MAX;
	ncap = sp->mem.cap > 0 ? sp->mem.cap : SMTP_SPOOL_MEM_MIN;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	/* buf would double past mem_max: 256 KiB must not cost 512 */
	if (ncap > limit)
		ncap = limit;
	sp->mem.data = xreallocarray(sp->mem.data, ncap, 1);
	sp->mem.cap = ncap;
}

/* smtp_spool_write - append len octets; 0, or -1 once failed */
int
smtp_spool_write(struct smtp_spool *sp, const void *data, size_t len)
{
	if (sp->error != 0) {
		errno = sp->error;
		return -1;
	}
	if (len == 0)
		return 0;
	if (sp->fd == -1) {
		if (len <= sp->mem_max - sp->mem.len) {
			smtp_spool_mem_grow(sp, len);
			buf_append(&sp->mem, data, len);
			sp->size = sp->mem.len;
			return 0;
		}
		if (smtp_spool_spill(sp) == -1)
			return -1;
	}
	if (smtp_spool_write_fd(sp, data, len) == -1)
		return smtp_spool_fail(sp, "write the spool file", errno);
	return 0;
}

/* smtp_spool_size - octets stored so far */
uint64_t
smtp_spool_size(const struct smtp_spool *sp)
{
	return sp->size;
}

/* smtp_spool_on_disk - whether the text went to the file */
int
smtp_spool_on_disk(const struct smtp_spool *sp)
{
	return sp->fd != -1;
}

/* smtp_spool_failed - the errno of the failure, or 0 */
int
smtp_spool_failed(const struct smtp_spool *sp)
{
	return sp->error;
}

/* smtp_spool_error - the text of the failure, or NULL */
const char *
smtp_spool_error(const struct smtp_spool *sp)
{
	return sp->error_text;
}

/* smtp_spool_read - queue_reader_fn: up to len octets at off, 0 at end */
ssize_t
smtp_spool_read(void *spool, uint64_t off, void *buf, size_t len)
{
	const struct smtp_spool *sp = spool;
	unsigned char *p = buf;
	size_t done = 0;
	ssize_t n;

	if (sp->error != 0) {
		errno = sp->error;
		return -1;
	}
	if (off >= sp->size || len == 0)
		return 0;
	if (len > sp->size - off)
		len = (size_t)(sp->size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (sp->fd == -1) {
		memcpy(p, sp->mem.data + off, len);
		return (ssize_t)len;
	}
	/* off + len <= size, which a write(2) has made fit in off_t */
	while (done < len) {
		n = pread(sp->fd, p + done, len - done,
		    (off_t)(off + done));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return done > 0 ? (ssize_t)done : -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}
