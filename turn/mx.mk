# turn/mx.mk - the MX resolver of outbound delivery (turn_mx, c-ares),
# its command-line driver and its integration test
turn_libturn_a_SOURCES += turn/turn_mx.c turn/turn_mx.h

# mx-lookup: one MX or route lookup from the command line
noinst_PROGRAMS += tests/tools/mx-lookup
tests_tools_mx_lookup_SOURCES = tests/tools/mx-lookup.c
tests_tools_mx_lookup_LDADD = $(TURN_LIBS) $(PTHREAD_LIBS)

# the private DNS server of tests/integration/test-turn-mx.sh
EXTRA_DIST += tests/tools/dns-stub.py
TESTS += tests/integration/test-turn-mx.sh
