/*
 * NAME
 *	test-rows 3h - one cmocka case per row of a test table
 * SYNOPSIS
 *	#include "test-rows.h"
 *
 *	ADD_ROWS(kind, table, fn);
 * DESCRIPTION
 *	The table-driven unit tests (test-<module>.c) give each row of a
 *	table its own TAP case, named "KIND N: ROW NAME", so a failure
 *	names the row. ADD_ROWS appends one struct CMUnitTest per element
 *	of table (an array whose elements have a name member) to tests[],
 *	with fn as the test and the row as its initial state. It uses the
 *	caller's size_t i and n (the next free slot of tests[], advanced).
 */
#ifndef TESTS_UNIT_TEST_ROWS_H
#define TESTS_UNIT_TEST_ROWS_H

#define ADD_ROWS(kind, table, fn) do {					\
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++, n++) {	\
		tests[n].name = xasprintf("%s %zu: %s", kind, i,	\
		    table[i].name);					\
		tests[n].test_func = fn;				\
		tests[n].initial_state = (void *)&table[i];		\
	}								\
} while (0)

#endif
