/*
 * NAME
 *	test-smtp-text - unit tests for odmr/smtp_spool and odmr/smtp_text
 * SYNOPSIS
 *	CMOCKA_MESSAGE_OUTPUT=TAP tests/unit/test-smtp-text
 * DESCRIPTION
 *	Table-driven; each row is its own TAP case.
 *
 *	spool rows write a pseudo-random text in pseudo-random chunks to a
 *	spool with a given mem_max, check whether it went to disk, and
 *	read it back at random offsets and lengths (also past the end),
 *	through a queue_reader_fn, twice, and again after a reset. The
 *	spool files go to a private directory that must be empty at the
 *	end: a spool file never has a name. Write failures come from
 *	RLIMIT_FSIZE (EFBIG) in a forked child, so the limit stays there.
 *
 *	scan rows give a message text and its facts; each row is fed
 *	whole, in chunks of every size from 1 octet to the whole, split
 *	at every point into two and, for short texts, into three. Each
 *	chunk is a heap copy of its own size, so the sanitizers see any
 *	read past a chunk.
 *
 *	received rows give the input of smtp_text_received() and the exact
 *	field, with TZ=UTC0 and a fixed time; every field is also checked
 *	for its line structure (CRLF only, HTAB continuation, lines of at
 *	most 77 octets unless a single word is longer).
 *
 *	LINES(n, "s") inside an input or an expected field stands for n
 *	copies of s.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "queue.h"
#include "smtp_spool.h"
#include "smtp_text.h"
#include "xmalloc.h"
#include "test-rows.h"

/* An input literal with its length, NULs included. */
#define IN(s)		.in = (s), .len = sizeof(s) - 1
/* n copies of s, expanded by expand(); s holds no \x01..\x03 */
#define LINES(n, s)	"\x01" #n "\x02" s "\x03"

/* Sat, 28 Nov 2026 16:04:44 +0000 */
#define WHEN		((time_t)1795881884)

/* the directory the spools of this run write to */
static char spool_dir[PATH_MAX];

/* expand - a NUL-terminated copy of in[0..len) with LINES() expanded */
static char *
expand(const char *in, size_t len, size_t *outlen)
{
	struct buf b;
	size_t i = 0;

	buf_init(&b);
	while (i < len) {
		if (in[i] == '\x01') {
			size_t n = 0, start;

			for (i++; i < len && in[i] >= '0' && in[i] <= '9'; i++)
				n = n * 10 + (size_t)(in[i] - '0');
			start = ++i;		/* past \x02 */
			while (i < len && in[i] != '\x03')
				i++;
			while (n-- > 0)
				buf_append(&b, in + start, i - start);
			i++;			/* past \x03 */
		} else
			buf_putc(&b, in[i++]);
	}
	buf_putc(&b, '\0');		/* so an empty input is not NULL */
	*outlen = b.len - 1;
	return (char *)b.data;
}

/* rnd - xorshift64: the same pseudo-random run every time */
static uint64_t
rnd(uint64_t *seed)
{
	uint64_t x = *seed;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*seed = x;
	return x;
}

/* rnd_below - a pseudo-random number in [0, n) */
static size_t
rnd_below(uint64_t *seed, size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd(seed) % n);
}

/* dir_entries - files in spool_dir, which must stay 0 */
static int
dir_entries(void)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(spool_dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* spools */

struct spool_case {
	const char	*name;
	size_t		 mem_max;
	size_t		 total;		/* octets written */
	size_t		 max_chunk;	/* largest single write */
	int		 on_disk;
};

static const struct spool_case spool_cases[] = {
	{ "empty", 1024, 0, 1, 0 },
	{ "in memory", 4096, 4000, 100, 0 },
	{ "exactly mem_max", 4096, 4096, 333, 0 },
	{ "one octet past mem_max", 4096, 4097, 333, 1 },
	{ "one write across mem_max", 4096, 4097, 4097, 1 },
	{ "mem_max 0, one octet", 0, 1, 1, 1 },
	{ "mem_max 0, many writes", 0, 10000, 77, 1 },
	{ "one large write", 100, 100000, 100000, 1 },
	{ "octet by octet", 64, 3000, 1, 1 },
	{ "default mem_max, 1 MiB", SMTP_SPOOL_MEM_MAX, 1 << 20, 65536, 1 },
	{ "default mem_max, in memory", SMTP_SPOOL_MEM_MAX,
	    SMTP_SPOOL_MEM_MAX, 65536, 0 },
	{ "unbounded memory", SIZE_MAX, 100000, 9000, 0 },
};

/* spool_fill - write total pseudo-random octets; keep a copy in ref */
static void
spool_fill(struct smtp_spool *sp, const struct spool_case *t,
    unsigned char *ref, uint64_t seed)
{
	size_t done = 0, i, n;

	for (i = 0; i < t->total; i++)
		ref[i] = (unsigned char)rnd(&seed);
	while (done < t->total) {
		n = 1 + rnd_below(&seed, t->max_chunk);
		if (n > t->total - done)
			n = t->total - done;
		assert_int_equal(smtp_spool_write(sp, ref + done, n), 0);
		done += n;
		assert_true(smtp_spool_size(sp) == done);
		assert_int_equal(smtp_spool_on_disk(sp),
		    done > t->mem_max);
	}
	assert_int_equal(smtp_spool_write(sp, "", 0), 0);
	assert_true(smtp_spool_size(sp) == t->total);
}

/* spool_check_read - one read at off for len, against ref */
static void
spool_check_read(queue_reader_fn reader, struct smtp_spool *sp,
    const unsigned char *ref, size_t total, uint64_t off, size_t len)
{
	unsigned char *got = xmalloc(len + 16);
	size_t want, i;
	ssize_t n;

	want = off >= total ? 0 : total - (size_t)off < len ?
	    total - (size_t)off : len;
	memset(got, 0xa5, len + 16);
	n = reader(sp, off, got, len);
	if (n < 0 || (size_t)n != want)
		fail_msg("read at %llu for %zu: %zd, want %zu",
		    (unsigned long long)off, len, n, want);
	if (want > 0)
		assert_memory_equal(got, ref + off, want);
	for (i = want; i < len + 16; i++)
		if (got[i] != 0xa5)
			fail_msg("read at %llu for %zu wrote past %zu",
			    (unsigned long long)off, len, want);
	free(got);
}

/* spool_check - the whole text back, in order and at random */
static void
spool_check(struct smtp_spool *sp, const unsigned char *ref, size_t total,
    uint64_t seed)
{
	queue_reader_fn reader = smtp_spool_read;
	size_t off, k;

	for (off = 0; off < total; off += 4096)
		spool_check_read(reader, sp, ref, total, off, 4096);
	spool_check_read(reader, sp, ref, total, total, 1);
	spool_check_read(reader, sp, ref, total, total + 1, 100);
	spool_check_read(reader, sp, ref, total, UINT64_MAX, 100);
	spool_check_read(reader, sp, ref, total, 0, 0);
	spool_check_read(reader, sp, ref, total, 0, total + 100);
	for (k = 0; k < 300; k++) {
		uint64_t o = rnd_below(&seed, total + 50);
		size_t len = rnd_below(&seed, total + 50);

		spool_check_read(reader, sp, ref, total, o, len);
		/* the store retries: the same read gives the same */
		spool_check_read(reader, sp, ref, total, o, len);
	}
}

/* test_spool - one row of spool_cases */
static void
test_spool(void **state)
{
	const struct spool_case *t = *state;
	unsigned char *ref = xmalloc(t->total + 1);
	struct smtp_spool *sp;

	sp = smtp_spool_new(spool_dir, t->mem_max);
	assert_non_null(sp);
	assert_true(smtp_spool_size(sp) == 0);
	assert_int_equal(smtp_spool_on_disk(sp), 0);
	assert_int_equal(smtp_spool_failed(sp), 0);
	assert_null(smtp_spool_error(sp));
	spool_fill(sp, t, ref, 0x9e3779b97f4a7c15ULL + t->total);
	assert_int_equal(smtp_spool_on_disk(sp), t->on_disk);
	assert_int_equal(smtp_spool_failed(sp), 0);
	assert_int_equal(dir_entries(), 0);	/* unlinked, or none */
	spool_check(sp, ref, t->total, 42);

	/* reset: empty, in memory, ready for the next message */
	smtp_spool_reset(sp);
	assert_true(smtp_spool_size(sp) == 0);
	assert_int_equal(smtp_spool_on_disk(sp), 0);
	spool_check_read(smtp_spool_read, sp, ref, 0, 0, 10);
	spool_fill(sp, t, ref, 7 + t->total);
	assert_int_equal(smtp_spool_on_disk(sp), t->on_disk);
	spool_check(sp, ref, t->total, 43);
	smtp_spool_reset(sp);
	smtp_spool_reset(sp);
	assert_int_equal(smtp_spool_write(sp, "hello", 5), 0);
	spool_check_read(smtp_spool_read, sp, (const unsigned char *)"hello",
	    5, 0, 10);

	smtp_spool_free(&sp);
	assert_null(sp);
	smtp_spool_free(&sp);			/* a second free is harmless */
	free(ref);
}

/*
 * The failure checks run in a forked child, whose RLIMIT_FSIZE cannot
 * leak into the other tests; it exits with the number of the first
 * check that failed (cmocka's assertions would longjmp in the child).
 */
#define CHILD_CHECK(n, cond) do {					\
	if (!(cond))							\
		_exit(n);						\
} while (0)

/* efbig_child - a write past RLIMIT_FSIZE makes the spool failed */
static void
efbig_child(size_t mem_max, size_t first)
{
	static unsigned char data[20000];
	struct rlimit rl = { 8192, 8192 };
	struct smtp_spool *sp;
	unsigned char got[16];
	char want[PATH_MAX + 64];
	uint64_t size;

	/* SIGXFSZ ignored: write(2) fails with EFBIG instead */
	CHILD_CHECK(2, signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
	CHILD_CHECK(3, setrlimit(RLIMIT_FSIZE, &rl) == 0);
	memset(data, 'x', sizeof(data));
	sp = smtp_spool_new(spool_dir, mem_max);
	CHILD_CHECK(4, smtp_spool_write(sp, data, first) == 0);
	errno = 0;
	CHILD_CHECK(5, smtp_spool_write(sp, data, sizeof(data)) == -1);
	CHILD_CHECK(6, errno == EFBIG);
	CHILD_CHECK(7, smtp_spool_failed(sp) == EFBIG);
	snprintf(want, sizeof(want),
	    "cannot write the spool file in %s: %s", spool_dir,
	    strerror(EFBIG));
	CHILD_CHECK(8, smtp_spool_error(sp) != NULL &&
	    strcmp(smtp_spool_error(sp), want) == 0);
	/* later writes are dropped at once */
	size = smtp_spool_size(sp);
	errno = 0;
	CHILD_CHECK(9, smtp_spool_write(sp, "y", 1) == -1);
	CHILD_CHECK(10, errno == EFBIG);
	CHILD_CHECK(11, smtp_spool_size(sp) == size);
	CHILD_CHECK(12, smtp_spool_write(sp, "", 0) == -1);
	CHILD_CHECK(13, smtp_spool_read(sp, 0, got, sizeof(got)) == -1);
	CHILD_CHECK(14, smtp_spool_on_disk(sp) == 0);
	/* a reset starts over */
	smtp_spool_reset(sp);
	CHILD_CHECK(15, smtp_spool_failed(sp) == 0);
	CHILD_CHECK(16, smtp_spool_error(sp) == NULL);
	CHILD_CHECK(17, smtp_spool_write(sp, "abc", 3) == 0);
	CHILD_CHECK(18, smtp_spool_read(sp, 0, got, sizeof(got)) == 3);
	CHILD_CHECK(19, memcmp(got, "abc", 3) == 0);
	smtp_spool_free(&sp);
	_exit(0);
}

/* run_child - run fn(mem_max, first) in a child; it must exit 0 */
static void
run_child(void (*fn)(size_t, size_t), size_t mem_max, size_t first)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0)
		fn(mem_max, first);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		fail_msg("child died with signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("check %d failed in the child", WEXITSTATUS(status));
}

/* test_spool_efbig_write - EFBIG while appending to the file */
static void
test_spool_efbig_write(void **state)
{
	(void)state;
	run_child(efbig_child, 1000, 1000);
	assert_int_equal(dir_entries(), 0);
}

/* test_spool_efbig_spill - EFBIG while moving memory to the file */
static void
test_spool_efbig_spill(void **state)
{
	(void)state;
	/* 10000 in memory, the limit 8192: the spill itself fails */
	run_child(efbig_child, 10000, 10000);
	assert_int_equal(dir_entries(), 0);
}

/* test_spool_bad_dir - an unusable dir fails only past mem_max */
static void
test_spool_bad_dir(void **state)
{
	static const struct {
		const char	*dir;
		int		 err;
	} t[] = {
		{ "/nonexistent/odmrd-test", ENOENT },
		{ "/dev/null", ENOTDIR },
	};
	struct smtp_spool *sp;
	char want[256];
	unsigned char got[8];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		sp = smtp_spool_new(t[i].dir, 4);
		assert_int_equal(smtp_spool_write(sp, "abcd", 4), 0);
		assert_int_equal(smtp_spool_read(sp, 1, got, sizeof(got)), 3);
		assert_memory_equal(got, "bcd", 3);
		errno = 0;
		assert_int_equal(smtp_spool_write(sp, "e", 1), -1);
		assert_int_equal(errno, t[i].err);
		assert_int_equal(smtp_spool_failed(sp), t[i].err);
		snprintf(want, sizeof(want),
		    "cannot create a spool file in %s: %s", t[i].dir,
		    strerror(t[i].err));
		assert_string_equal(smtp_spool_error(sp), want);
		assert_int_equal(smtp_spool_write(sp, "f", 1), -1);
		assert_int_equal(smtp_spool_read(sp, 0, got, sizeof(got)),
		    -1);
		smtp_spool_reset(sp);
		assert_int_equal(smtp_spool_failed(sp), 0);
		assert_int_equal(smtp_spool_write(sp, "ab", 2), 0);
		smtp_spool_free(&sp);
	}
	/* NULL is /tmp */
	sp = smtp_spool_new(NULL, 0);
	assert_int_equal(smtp_spool_write(sp, "abc", 3), 0);
	assert_int_equal(smtp_spool_on_disk(sp), 1);
	smtp_spool_free(&sp);
}

/* the scanner */

struct scan_case {
	const char	*name;
	const char	*in;
	size_t		 len;
	unsigned	 received;
	int		 in_header;
	int		 eightbit;
	int		 nul;
};

#define RCVD	"Received: from a.example by b.example; " \
		"Sat, 28 Nov 2026 16:04:44 +0000\r\n"

static const struct scan_case scan_cases[] = {
	{ "empty text", IN(""), 0, 1, 0, 0 },
	{ "no end of header", IN("Subject: x\r\n"), 0, 1, 0, 0 },
	{ "header and body", IN("Subject: x\r\n\r\nbody\r\n"), 0, 0, 0, 0 },
	{ "one Received", IN("Received: from a by b; date\r\n"
	    "Subject: x\r\n\r\nbody\r\n"), 1, 0, 0, 0 },
	{ "0 Received, 50 in the body", IN("Subject: x\r\n\r\n"
	    LINES(50, RCVD)), 0, 0, 0, 0 },
	{ "50 Received", IN(LINES(50, RCVD) "Subject: x\r\n\r\nbody\r\n"),
	    50, 0, 0, 0 },
	{ "51 Received", IN(LINES(51, RCVD) "\r\n" LINES(3, RCVD)),
	    51, 0, 0, 0 },
	{ "51 Received, lower case",
	    IN(LINES(51, "received: x\r\n") "\r\n"), 51, 0, 0, 0 },
	{ "folded Received", IN("Received: from a\r\n\tby b\r\n for <c>;"
	    "\r\n Sat, 28 Nov 2026\r\nReceived:\r\n x\r\n\r\n"),
	    2, 0, 0, 0 },
	{ "any case", IN("received: a\r\nRECEIVED: b\r\nReCeIvEd:c\r\n"
	    "\r\n"), 3, 0, 0, 0 },
	{ "WSP before the colon", IN("Received : a\r\nReceived\t:b\r\n"
	    "Received \t \t:c\r\n\r\n"), 3, 0, 0, 0 },
	{ "long WSP run", IN("Received" LINES(40, " ") "\t:" " x\r\n\r\n"),
	    1, 0, 0, 0 },
	{ "long WSP run, no colon", IN("Received" LINES(40, " ") "x: y\r\n"
	    "\r\n"), 0, 0, 0, 0 },
	{ "not Received", IN("X-Received: a\r\nReceived-SPF: pass\r\n"
	    "Receivedx: a\r\nReceive: a\r\nReceived\r\nReceived x: y\r\n"
	    "Re ceived: a\r\n:Received: a\r\nResent-Received: a\r\n"
	    "Received;\r\n\r\n"), 0, 0, 0, 0 },
	{ "name then end of line", IN("Received\r\n: x\r\nReceived \r\n"
	    ":\r\n\r\n"), 0, 0, 0, 0 },
	{ "continuation lines", IN("Subject: a\r\n Received: b\r\n"
	    "\tReceived: c\r\n\r\n"), 0, 0, 0, 0 },
	{ "after the empty line", IN("Received: a\r\n\r\nReceived: b\r\n"
	    "Received: c\r\n"), 1, 0, 0, 0 },
	{ "empty line first", IN("\r\nReceived: a\r\n"), 0, 0, 0, 0 },
	{ "bare LF", IN("Received: a\nReceived: b\n\nReceived: c\n"),
	    2, 0, 0, 0 },
	{ "LF then CRLF", IN("Received: a\nReceived: b\r\n\r\n"
	    "Received: c\r\n"), 2, 0, 0, 0 },
	{ "WSP-only line is not the end", IN("Subject: a\r\n \r\n"
	    "Received: b\r\n\r\n"), 1, 0, 0, 0 },
	{ "CR CR LF is not the end", IN("Subject: a\r\n\r\r\n"
	    "Received: b\r\n"), 1, 1, 0, 0 },
	{ "bare CR in a line", IN("Subject: a\rReceived: b\r\n"
	    "Received: c\r\n"), 1, 1, 0, 0 },
	{ "colon is the last octet", IN("Subject: a\r\nReceived:"),
	    1, 1, 0, 0 },
	{ "name cut by the end", IN("Subject: a\r\nReceived"), 0, 1, 0, 0 },
	{ "CR is the last octet", IN("Subject: a\r\n\r"), 0, 1, 0, 0 },
	{ "8-bit in the body", IN("Subject: a\r\n\r\ncaf\xc3\xa9\r\n"),
	    0, 0, 1, 0 },
	{ "8-bit in the header", IN("Subject: caf\xc3\xa9\r\n\r\n"),
	    0, 0, 1, 0 },
	{ "8-bit, last of 17", IN("Subject: abcdefg\xff"), 0, 1, 1, 0 },
	{ "8-bit, first", IN("\x80Received: a\r\n"), 0, 1, 1, 0 },
	{ "8-bit field name", IN("R\xc3\xa9" "ceived: a\r\n"), 0, 1, 1, 0 },
	{ "NUL in the header", IN("Subject: a\0b\r\n\r\n"), 0, 0, 0, 1 },
	{ "NUL last", IN("Subject: a\r\n\r\nb\0"), 0, 0, 0, 1 },
	{ "NUL first", IN("\0Received: a\r\n\r\n"), 0, 0, 0, 1 },
	{ "NUL in the name", IN("Rece\0ived: a\r\nReceived: b\r\n"),
	    1, 1, 0, 1 },
	{ "7-bit controls", IN("Subject: \x04\x7f\t\x1b\r\n\r\n\x7f\x10"),
	    0, 0, 0, 0 },
	{ "8-bit and NUL", IN("\xff\0"), 0, 1, 1, 1 },
};

/* scan_feed - feed text in the pieces cut at cuts[0..ncuts) */
static void
scan_feed(struct smtp_text_scan *s, const char *text, size_t len,
    const size_t *cuts, size_t ncuts)
{
	size_t i, from = 0, to;
	char *copy;

	smtp_text_scan_init(s);
	for (i = 0; i <= ncuts; i++) {
		to = i < ncuts ? cuts[i] : len;
		if (to > from) {
			/* exactly the chunk: ASan sees a read past it */
			copy = xmalloc(to - from);
			memcpy(copy, text + from, to - from);
			smtp_text_scan_feed(s, copy, to - from);
			free(copy);
		}
		smtp_text_scan_feed(s, NULL, 0);
		from = to;
	}
}

/* scan_check - the facts after one way of feeding */
static void
scan_check(const struct scan_case *t, const struct smtp_text_scan *s,
    const char *how, size_t a, size_t b)
{
	if (s->received != t->received || s->in_header != t->in_header ||
	    s->eightbit != t->eightbit || s->nul != t->nul)
		fail_msg("%s (%zu, %zu): received %u in_header %d "
		    "eightbit %d nul %d, want %u %d %d %d", how, a, b,
		    s->received, s->in_header, s->eightbit, s->nul,
		    t->received, t->in_header, t->eightbit, t->nul);
}

/* test_scan - one row of scan_cases, split every way */
static void
test_scan(void **state)
{
	const struct scan_case *t = *state;
	struct smtp_text_scan s;
	size_t len, k, i, j, ncuts, *cuts;
	char *text = expand(t->in, t->len, &len);

	scan_feed(&s, text, len, NULL, 0);
	scan_check(t, &s, "whole", len, 0);

	/* chunks of k octets, for every k */
	cuts = xcalloc(len + 2, sizeof(*cuts));
	for (k = 1; k <= len; k++) {
		for (ncuts = 0, i = k; i < len; i += k)
			cuts[ncuts++] = i;
		scan_feed(&s, text, len, cuts, ncuts);
		scan_check(t, &s, "chunks of", k, 0);
	}
	/* two pieces, cut anywhere; three for short texts */
	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		scan_feed(&s, text, len, cuts, 1);
		scan_check(t, &s, "cut at", i, 0);
		if (len > 200)
			continue;
		for (j = i; j <= len; j++) {
			cuts[1] = j;
			scan_feed(&s, text, len, cuts, 2);
			scan_check(t, &s, "cut at", i, j);
		}
	}
	free(cuts);
	free(text);
}

/* Received: */

struct rcvd_case {
	const char	*name;
	struct smtp_text_received r;
	const char	*want;		/* LINES() expanded */
};

#define FROM	"Received: from mail.example.org (unknown " \
		"[192.0.2.1])\r\n"
#define BY(p)	"\tby mx.example.net (odmrd) with " p " id 1A2B3C\r\n"
#define FOR	"\tfor <user@example.org>; Sat, 28 Nov 2026 16:04:44 +0000\r\n"
#define TLS13	"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 " \
		"(256 bits))\r\n"

/* the usual client: EHLO, IPv4, one recipient, no TLS */
#define BASE	.helo = "mail.example.org", .client_addr = "192.0.2.1", \
		.hostname = "mx.example.net", .id = "1A2B3C", \
		.rcpt = "user@example.org", .esmtp = 1, .when = WHEN
#define TLS	.tls_version = "TLSv1.3", \
		.tls_cipher = "TLS_AES_256_GCM_SHA384", .tls_bits = 256

/* each row states how it differs from BASE by overriding its fields */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
static const struct rcvd_case rcvd_cases[] = {
	{ "EHLO, one recipient", { BASE }, FROM BY("ESMTP") FOR },
	{ "HELO", { BASE, .esmtp = 0 }, FROM BY("SMTP") FOR },
	{ "TLS", { BASE, TLS }, FROM TLS13 BY("ESMTPS") FOR },
	{ "authenticated", { BASE, .authenticated = 1 },
	    FROM BY("ESMTPA") FOR },
	{ "TLS and authenticated", { BASE, TLS, .authenticated = 1 },
	    FROM TLS13 BY("ESMTPSA") FOR },
	{ "SMTPUTF8", { BASE, .smtputf8 = 1 }, FROM BY("UTF8SMTP") FOR },
	{ "SMTPUTF8, TLS", { BASE, TLS, .smtputf8 = 1 },
	    FROM TLS13 BY("UTF8SMTPS") FOR },
	{ "SMTPUTF8, authenticated", { BASE, .smtputf8 = 1,
	    .authenticated = 1 }, FROM BY("UTF8SMTPA") FOR },
	{ "SMTPUTF8, TLS, authenticated", { BASE, TLS, .smtputf8 = 1,
	    .authenticated = 1 }, FROM TLS13 BY("UTF8SMTPSA") FOR },
	{ "SMTPUTF8 recipient", { BASE, .smtputf8 = 1,
	    .rcpt = "j\xc3\xb6rg@example.org" }, FROM BY("UTF8SMTP")
	    "\tfor <j\xc3\xb6rg@example.org>; Sat, 28 Nov 2026 16:04:44 "
	    "+0000\r\n" },
	{ "TLS, no bits", { BASE, .tls_version = "TLSv1.2",
	    .tls_cipher = "ECDHE-RSA-AES128-GCM-SHA256" },
	    FROM "\t(using TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256)"
	    "\r\n" BY("ESMTPS") FOR },
	{ "TLS, no cipher", { BASE, .tls_version = "TLSv1.2" },
	    FROM "\t(using TLSv1.2)\r\n" BY("ESMTPS") FOR },
	{ "IPv6 client", { BASE, .client_addr = "2001:db8::1" },
	    "Received: from mail.example.org (unknown "
	    "[IPv6:2001:db8::1])\r\n" BY("ESMTP") FOR },
	{ "two recipients", { BASE, .rcpt = NULL }, FROM
	    "\tby mx.example.net (odmrd) with ESMTP id 1A2B3C;\r\n"
	    "\tSat, 28 Nov 2026 16:04:44 +0000\r\n" },
	{ "no id", { BASE, .id = NULL }, FROM
	    "\tby mx.example.net (odmrd) with ESMTP\r\n" FOR },
	{ "no id, two recipients", { BASE, .id = NULL, .rcpt = NULL }, FROM
	    "\tby mx.example.net (odmrd) with ESMTP;\r\n"
	    "\tSat, 28 Nov 2026 16:04:44 +0000\r\n" },
	{ "no HELO", { BASE, .helo = NULL },
	    "Received: from unknown (unknown [192.0.2.1])\r\n"
	    BY("ESMTP") FOR },
	{ "empty HELO", { BASE, .helo = "" },
	    "Received: from unknown (unknown [192.0.2.1])\r\n"
	    BY("ESMTP") FOR },
	{ "no client address", { BASE, .client_addr = NULL },
	    "Received: from mail.example.org\r\n" BY("ESMTP") FOR },
	{ "HELO with CRLF", { BASE, .helo = "a\r\nX: y" },
	    "Received: from a??X:?y (unknown [192.0.2.1])\r\n"
	    BY("ESMTP") FOR },
	{ "HELO with parentheses", { BASE, .helo = "(x)" },
	    "Received: from ?x? (unknown [192.0.2.1])\r\n" BY("ESMTP") FOR },
	{ "HELO literal", { BASE, .helo = "[192.0.2.9]" },
	    "Received: from [192.0.2.9] (unknown [192.0.2.1])\r\n"
	    BY("ESMTP") FOR },
	{ "HELO backslash, DEL, 8-bit", { BASE,
	    .helo = "a\\b\x7f" "c\xc3\xa9\t" },
	    "Received: from a?b?c??? (unknown [192.0.2.1])\r\n"
	    BY("ESMTP") FOR },
	{ "HELO of 300 octets", { BASE, .helo = LINES(300, "h") },
	    "Received: from\r\n\t" LINES(255, "h")
	    "\r\n\t(unknown [192.0.2.1])\r\n" BY("ESMTP") FOR },
	{ "HELO of 62 octets", { BASE, .helo = LINES(62, "h") },
	    "Received: from " LINES(62, "h")
	    "\r\n\t(unknown [192.0.2.1])\r\n" BY("ESMTP") FOR },
	{ "HELO of 63 octets", { BASE, .helo = LINES(63, "h") },
	    "Received: from\r\n\t" LINES(63, "h")
	    " (unknown\r\n\t[192.0.2.1])\r\n" BY("ESMTP") FOR },
	/* 4 + 60 + 8 + 5: "with" ends the line at octet 77 */
	{ "hostname of 60 octets", { BASE,
	    .hostname = LINES(56, "n") ".net" }, FROM
	    "\tby " LINES(56, "n") ".net (odmrd) with\r\n"
	    "\tESMTP id 1A2B3C\r\n" FOR },
	{ "hostname of 61 octets", { BASE,
	    .hostname = LINES(57, "n") ".net" }, FROM
	    "\tby " LINES(57, "n") ".net (odmrd)\r\n"
	    "\twith ESMTP id 1A2B3C\r\n" FOR },
	/* "\tfor <" + 37 + ">;" is 45, and " " + the date 31 makes 77 */
	{ "recipient of 37 octets", { BASE,
	    .rcpt = LINES(25, "r") "@example.org" }, FROM BY("ESMTP")
	    "\tfor <" LINES(25, "r") "@example.org>; "
	    "Sat, 28 Nov 2026 16:04:44 +0000\r\n" },
	{ "recipient of 38 octets", { BASE,
	    .rcpt = LINES(26, "r") "@example.org" }, FROM BY("ESMTP")
	    "\tfor <" LINES(26, "r") "@example.org>;\r\n"
	    "\tSat, 28 Nov 2026 16:04:44 +0000\r\n" },
	{ "recipient of 76 octets", { BASE,
	    .rcpt = LINES(64, "r") "@example.org" }, FROM BY("ESMTP")
	    "\tfor\r\n\t<" LINES(64, "r") "@example.org>;\r\n"
	    "\tSat, 28 Nov 2026 16:04:44 +0000\r\n" },
	{ "recipient with a control octet", { BASE,
	    .rcpt = "\"a\tb\"@example.org" }, FROM BY("ESMTP")
	    "\tfor <\"a?b\"@example.org>; Sat, 28 Nov 2026 16:04:44 +0000"
	    "\r\n" },
	{ "day of one digit", { BASE, .when = 1767571200 }, FROM
	    BY("ESMTP") "\tfor <user@example.org>; "
	    "Mon, 05 Jan 2026 00:00:00 +0000\r\n" },
	{ "the epoch", { BASE, .when = 0 }, FROM BY("ESMTP")
	    "\tfor <user@example.org>; Thu, 01 Jan 1970 00:00:00 +0000\r\n" },
};
#pragma GCC diagnostic pop

/* rcvd_check_lines - CRLF only, HTAB continuations, short lines */
static void
rcvd_check_lines(const char *f, size_t len)
{
	size_t i, start = 0, n;

	assert_true(len >= 2);
	assert_memory_equal(f + len - 2, "\r\n", 2);
	assert_memory_equal(f, "Received: from", 14);
	for (i = 0; i < len; i++) {
		if (f[i] == '\r')
			assert_true(i + 1 < len && f[i + 1] == '\n');
		if (f[i] != '\n')
			continue;
		assert_true(i > 0 && f[i - 1] == '\r');
		n = i - 1 - start;		/* octets before the CRLF */
		assert_true(n > 1);
		if (n > 77 && memchr(f + start + 1, ' ', n - 1) != NULL)
			fail_msg("line of %zu octets could fold: %.*s", n,
			    (int)n, f + start);
		start = i + 1;
		if (start < len)
			assert_int_equal(f[start], '\t');
	}
}

/* test_received - one row of rcvd_cases */
static void
test_received(void **state)
{
	const struct rcvd_case *t = *state;
	struct smtp_text_received r = t->r;
	char *helo = NULL, *host = NULL, *rcpt = NULL, *want;
	size_t n, wlen;
	struct buf b;

	/* the inputs may use LINES() too */
	if (r.helo != NULL)
		r.helo = helo = expand(r.helo, strlen(r.helo), &n);
	if (r.hostname != NULL)
		r.hostname = host = expand(r.hostname, strlen(r.hostname), &n);
	if (r.rcpt != NULL)
		r.rcpt = rcpt = expand(r.rcpt, strlen(r.rcpt), &n);
	want = expand(t->want, strlen(t->want), &wlen);
	buf_init(&b);
	buf_puts(&b, "X: y\r\n");
	smtp_text_received(&b, &r);
	assert_memory_equal(b.data, "X: y\r\n", 6);	/* appended */
	if (b.len - 6 != wlen || memcmp(b.data + 6, want, wlen) != 0)
		fail_msg("got\n%s\nwant\n%s", (char *)b.data + 6, want);
	rcvd_check_lines((const char *)b.data + 6, b.len - 6);
	buf_release(&b);
	free(want);
	free(rcpt);
	free(host);
	free(helo);
}

/* test_received_tz - the zone offset, and the zone restored after */
static void
test_received_tz(void **state)
{
	static const struct {
		const char	*tz;
		const char	*date;
	} t[] = {
		{ "IST-5:30", "Sat, 28 Nov 2026 21:34:44 +0530" },
		{ "<-03>3", "Sat, 28 Nov 2026 13:04:44 -0300" },
		{ "<+14>-14", "Sun, 29 Nov 2026 06:04:44 +1400" },
		{ "UTC0", "Sat, 28 Nov 2026 16:04:44 +0000" },
	};
	struct smtp_text_received r = { BASE };
	struct buf b;
	size_t i;

	(void)state;
	r.rcpt = NULL;
	buf_init(&b);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *line;

		assert_int_equal(setenv("TZ", t[i].tz, 1), 0);
		tzset();
		buf_reset(&b);
		smtp_text_received(&b, &r);
		line = strrchr(buf_str(&b), '\t');
		assert_non_null(line);
		if (strncmp(line + 1, t[i].date, strlen(t[i].date)) != 0)
			fail_msg("TZ=%s: %s", t[i].tz, line + 1);
	}
	buf_release(&b);
}

/* group_setup - the private spool directory, and TZ=UTC0 */
static int
group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	(void)state;
	if (setenv("TZ", "UTC0", 1) != 0)
		return -1;
	tzset();
	n = snprintf(spool_dir, sizeof(spool_dir), "%s/test-smtp-text.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(spool_dir))
		return -1;
	return mkdtemp(spool_dir) != NULL ? 0 : -1;
}

/* group_teardown - the directory must be empty: rmdir() says so */
static int
group_teardown(void **state)
{
	(void)state;
	return rmdir(spool_dir);
}

/* main - one TAP case per table row, then the other tests */
int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_spool_efbig_write),
		cmocka_unit_test(test_spool_efbig_spill),
		cmocka_unit_test(test_spool_bad_dir),
		cmocka_unit_test(test_received_tz),
	};
	size_t nrows = sizeof(spool_cases) / sizeof(spool_cases[0]) +
	    sizeof(scan_cases) / sizeof(scan_cases[0]) +
	    sizeof(rcvd_cases) / sizeof(rcvd_cases[0]);
	size_t nf = sizeof(fixed) / sizeof(fixed[0]);
	size_t n = 0, i;
	struct CMUnitTest *tests;
	int rc;

	tests = xcalloc(nrows + nf, sizeof(*tests));
	ADD_ROWS("spool", spool_cases, test_spool);
	ADD_ROWS("scan", scan_cases, test_scan);
	ADD_ROWS("received", rcvd_cases, test_received);
	for (i = 0; i < nf; i++, n++)
		tests[n] = fixed[i];
	rc = _cmocka_run_group_tests("test-smtp-text", tests, n, group_setup,
	    group_teardown);
	for (i = 0; i < nrows; i++)
		free((char *)tests[i].name);
	free(tests);
	return rc;
}
