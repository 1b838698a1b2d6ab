# turn/local.mk - the SMTP client engine that delivers a domain's queue
# (ATRN role reversal, ETRN); uses the queue API, never a backend
noinst_LIBRARIES += turn/libturn.a
turn_libturn_a_SOURCES = \
	turn/turn_session.c turn/turn_session.h \
	turn/turn_session_store.c turn/turn_session_int.h \
	turn/turn_msg.c turn/turn_msg.h \
	turn/turn_proto.c turn/turn_proto.h \
	turn/turn_mime.c turn/turn_mime.h \
	turn/turn_mime_hdr.c turn/turn_mime_private.h \
	turn/turn_flush.c turn/turn_flush.h \
	turn/turn_bounce.c turn/turn_bounce.h
TURN_LIBS = turn/libturn.a $(QUEUE_LIBS) $(CARES_LIBS)

# turn-deliver: one delivery run from the command line (the ETRN shape)
noinst_PROGRAMS += tests/tools/turn-deliver
tests_tools_turn_deliver_SOURCES = tests/tools/turn-deliver.c
tests_tools_turn_deliver_LDADD = $(TURN_LIBS) $(PTHREAD_LIBS)

# turn-enqueue: one message with a chosen envelope (8BITMIME, DSN, ...)
noinst_PROGRAMS += tests/tools/turn-enqueue
tests_tools_turn_enqueue_SOURCES = tests/tools/turn-enqueue.c
tests_tools_turn_enqueue_LDADD = $(QUEUE_LIBS)

# unit test of the protocol pieces; TESTS += in tests/local.mk
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-turn
endif
tests_unit_test_turn_SOURCES = tests/unit/test-turn.c
tests_unit_test_turn_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_turn_LDADD = $(TURN_LIBS) $(CMOCKA_LIBS)

# the scripted customer server of tests/integration/test-turn.sh
EXTRA_DIST += tests/tools/turn-customer.py
