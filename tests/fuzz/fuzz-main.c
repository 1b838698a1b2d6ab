/*
 * NAME
 *	fuzz-main - replay a fuzz corpus without libFuzzer
 * SYNOPSIS
 *	tests/fuzz/fuzz-TARGET FILE|DIRECTORY...
 * DESCRIPTION
 *	Linked into each fuzz target when configure runs without
 *	--enable-fuzzer, so that make check replays every corpus under the
 *	sanitizers with any compiler. Each argument is a file, or a
 *	directory whose regular files are run in name order; each file is
 *	passed whole to LLVMFuzzerTestOneInput(). LLVMFuzzerInitialize()
 *	is called first when the target defines it.
 * DIAGNOSTICS
 *	Prints how many inputs ran. Exits 0 when every argument could be
 *	read, 1 when one could not, 2 on a usage error. A crash in the
 *	target is left to the sanitizers.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***) __attribute__((weak));

/* fuzz_run_file - read one file whole and run it; -1 if unreadable */
static int
fuzz_run_file(const char *path)
{
	unsigned char *data = NULL;
	size_t len = 0, cap = 0;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "fuzz-main: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			unsigned char *p;

			cap = cap ? cap * 2 : 4096;
			if ((p = realloc(data, cap)) == NULL) {
				fprintf(stderr, "fuzz-main: out of memory\n");
				exit(1);
			}
			data = p;
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "fuzz-main: %s: read error\n", path);
		fclose(f);
		free(data);
		return -1;
	}
	fclose(f);
	/* Copy to an exact-size block so ASan catches any overread. */
	{
		unsigned char *exact = malloc(len ? len : 1);

		if (exact == NULL) {
			fprintf(stderr, "fuzz-main: out of memory\n");
			exit(1);
		}
		if (len)
			memcpy(exact, data, len);
		free(data);
		(void)LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	return 0;
}

/* fuzz_cmp - name order for scandir */
static int
fuzz_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* fuzz_run_dir - run every regular file of a directory */
static int
fuzz_run_dir(const char *dir, unsigned long *count)
{
	struct dirent **ents;
	int n, i, rc = 0;

	if ((n = scandir(dir, &ents, NULL, fuzz_cmp)) < 0) {
		fprintf(stderr, "fuzz-main: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct stat st;
		char path[4096];
		int len;

		len = snprintf(path, sizeof(path), "%s/%s", dir,
		    ents[i]->d_name);
		if (len < 0 || (size_t)len >= sizeof(path)) {
			fprintf(stderr, "fuzz-main: %s/%s: path too long\n",
			    dir, ents[i]->d_name);
			rc = -1;
		} else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (fuzz_run_file(path) < 0)
				rc = -1;
			else
				(*count)++;
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

/* main - replay every file and directory named on the command line */
int
main(int argc, char **argv)
{
	unsigned long count = 0;
	int i, status = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIRECTORY...\n", argv[0]);
		return 2;
	}
	if (LLVMFuzzerInitialize != NULL)
		(void)LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "fuzz-main: %s: %s\n", argv[i],
			    strerror(errno));
			status = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (fuzz_run_dir(argv[i], &count) < 0)
				status = 1;
		} else if (fuzz_run_file(argv[i]) < 0)
			status = 1;
		else
			count++;
	}
	printf("fuzz-main: ran %lu inputs\n", count);
	return status;
}
