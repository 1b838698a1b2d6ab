/*
 * NAME
 *	fuzz-conf - libFuzzer target for the odmrd.conf parser
 * SYNOPSIS
 *	tests/fuzz/fuzz-conf [libFuzzer options] CORPUS...
 * DESCRIPTION
 *	Feeds arbitrary bytes to odmr_conf_parse_text() and frees whatever
 *	comes back. The parser must never crash, overrun, leak or return
 *	both a configuration and an error, and an error must be one line.
 *	Built with --enable-fuzzer this is a libFuzzer binary; otherwise
 *	fuzz-main.c replays the corpus.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "odmr_conf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* LLVMFuzzerTestOneInput - parse one input, check the contract, free */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct odmr_conf *conf = NULL;
	char *error = NULL;
	int rc;

	rc = odmr_conf_parse_text("fuzz.conf", (const char *)data, size,
	    &conf, &error);
	if (rc == 0) {
		if (conf == NULL || error != NULL)
			abort();
	} else {
		if (conf != NULL || error == NULL ||
		    strchr(error, '\n') != NULL)
			abort();
	}
	odmr_conf_free(&conf);
	free(error);
	return 0;
}
