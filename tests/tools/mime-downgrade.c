/*
 * NAME
 *	mime-downgrade - run turn_mime_downgrade() over one message file
 * SYNOPSIS
 *	mime-downgrade [-c] IN [OUT]
 * DESCRIPTION
 *	Reads the message IN (any octets, no NUL terminator assumed) into
 *	an allocation of exactly its size, so that the sanitizers see any
 *	read past its end, and writes the 7-bit version to OUT (standard
 *	output when absent). With -c it only prints "7bit" or "8bit", as
 *	turn_mime_is_7bit() says.
 * DIAGNOSTICS
 *	Exit 0 on success, 1 with "mime-downgrade: ERROR" on standard error
 *	when the message cannot be converted, 2 on usage or I/O errors.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "xmalloc.h"
#include "turn_mime.h"

/* read_file - the whole file in an allocation of its exact size */
static unsigned char *
read_file(const char *path, size_t *lenp)
{
	struct buf b;
	unsigned char chunk[65536], *p;
	size_t n;
	FILE *fp;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "mime-downgrade: %s: %s\n", path,
		    strerror(errno));
		exit(2);
	}
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(fp)) {
		fprintf(stderr, "mime-downgrade: %s: read error\n", path);
		exit(2);
	}
	fclose(fp);
	*lenp = b.len;
	p = xmalloc(b.len > 0 ? b.len : 1);
	if (b.len > 0)
		memcpy(p, b.data, b.len);
	buf_release(&b);
	return p;
}

/* main - downgrade IN to OUT */
int
main(int argc, char **argv)
{
	const char *error;
	struct buf out;
	unsigned char *in;
	size_t len;
	FILE *fp = stdout;
	int check = 0;

	if (argc > 1 && strcmp(argv[1], "-c") == 0) {
		check = 1;
		argc--;
		argv++;
	}
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: mime-downgrade [-c] IN [OUT]\n");
		return 2;
	}
	in = read_file(argv[1], &len);
	if (check) {
		puts(turn_mime_is_7bit(in, len) ? "7bit" : "8bit");
		free(in);
		return 0;
	}
	buf_init(&out);
	if (turn_mime_downgrade(in, len, &out, &error) == -1) {
		fprintf(stderr, "mime-downgrade: %s\n", error);
		buf_release(&out);
		free(in);
		return 1;
	}
	free(in);
	if (argc == 3 && (fp = fopen(argv[2], "wb")) == NULL) {
		fprintf(stderr, "mime-downgrade: %s: %s\n", argv[2],
		    strerror(errno));
		return 2;
	}
	if (fwrite(out.data, 1, out.len, fp) != out.len || fflush(fp) != 0) {
		fprintf(stderr, "mime-downgrade: write error\n");
		return 2;
	}
	if (fp != stdout)
		fclose(fp);
	buf_release(&out);
	return 0;
}
