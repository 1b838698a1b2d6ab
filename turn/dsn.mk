# turn/dsn.mk - the DSN builder (RFC 3461, 3464, 6522, 6533) and its tests
turn_libturn_a_SOURCES += turn/turn_dsn.c turn/turn_dsn.h

# unit test: status codes, the NOTIFY table, refusals, the boundary
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-turn-dsn
TESTS += tests/unit/test-turn-dsn
endif
tests_unit_test_turn_dsn_SOURCES = tests/unit/test-turn-dsn.c
tests_unit_test_turn_dsn_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_turn_dsn_LDADD = turn/libturn.a $(UTIL_LIBS) $(CMOCKA_LIBS)

# dsn-make: one DSN from command-line options and a message on stdin;
# tests/integration/test-turn-dsn.sh checks its output with dsn-check.py
noinst_PROGRAMS += tests/tools/dsn-make
tests_tools_dsn_make_SOURCES = tests/tools/dsn-make.c
tests_tools_dsn_make_LDADD = $(TURN_LIBS)
TESTS += tests/integration/test-turn-dsn.sh
EXTRA_DIST += tests/tools/dsn-check.py
# its fuzz target (tests/fuzz/fuzz-turn-dsn) is in FUZZ_TARGETS, tests/local.mk
