# tests/local.mk - make check: cmocka unit tests and integration scripts.
# Everything speaks TAP so that each case is counted on its own.
LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
AM_TESTS_ENVIRONMENT = \
	CMOCKA_MESSAGE_OUTPUT=TAP; export CMOCKA_MESSAGE_OUTPUT; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	ASAN_OPTIONS=abort_on_error=0:detect_leaks=1; export ASAN_OPTIONS; \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; export UBSAN_OPTIONS; \
	TSAN_OPTIONS=suppressions='$(abs_top_srcdir)/tests/tsan.supp':exitcode=66:second_deadlock_stack=1; export TSAN_OPTIONS;

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-lib tests/unit/test-conf tests/unit/test-queue
TESTS += tests/unit/test-lib tests/unit/test-conf tests/unit/test-queue
check_PROGRAMS += tests/unit/test-smtp-parse
TESTS += tests/unit/test-smtp-parse
check_PROGRAMS += tests/unit/test-smtp-text
TESTS += tests/unit/test-smtp-text
endif
tests_unit_test_lib_SOURCES = tests/unit/test-lib.c
tests_unit_test_lib_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_lib_LDADD = $(UTIL_LIBS) $(CMOCKA_LIBS)
tests_unit_test_conf_SOURCES = tests/unit/test-conf.c
tests_unit_test_conf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_conf_LDADD = odmr/libodmr.a $(UTIL_LIBS) $(CMOCKA_LIBS)
tests_unit_test_queue_SOURCES = tests/unit/test-queue.c
tests_unit_test_queue_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_queue_LDADD = $(QUEUE_LIBS) $(CMOCKA_LIBS)
tests_unit_test_smtp_parse_SOURCES = tests/unit/test-smtp-parse.c
tests_unit_test_smtp_parse_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_smtp_parse_LDADD = odmr/libodmr.a $(UTIL_LIBS) $(CMOCKA_LIBS)
tests_unit_test_smtp_text_SOURCES = tests/unit/test-smtp-text.c
tests_unit_test_smtp_text_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_smtp_text_LDADD = odmr/libodmr.a $(UTIL_LIBS) $(CMOCKA_LIBS)

# helper programs the integration tests drive
noinst_PROGRAMS += tests/tools/queue-writer
tests_tools_queue_writer_SOURCES = tests/tools/queue-writer.c
tests_tools_queue_writer_LDADD = $(QUEUE_LIBS)

TESTS += \
	tests/integration/test-odmrctl.sh \
	tests/integration/test-crash.sh \
	tests/integration/test-concurrency.sh \
	tests/integration/test-enospc.sh \
	tests/integration/test-style.sh \
	tests/integration/test-etrn.sh \
	tests/integration/test-dsn.sh
EXTRA_DIST += tests/tap.sh tests/tsan.supp tests/integration tests/stress \
	tests/tools/smtp-dialogue.py tests/tools/smtp-acker.py \
	tests/tools/etrn-client.py tests/unit/test-rows.h

# Fuzz targets: built as libFuzzer binaries with --enable-fuzzer, and
# always built as corpus replayers so make check runs every corpus.
FUZZ_TARGETS = tests/fuzz/fuzz-conf tests/fuzz/fuzz-rec \
	tests/fuzz/fuzz-smtp-cmd tests/fuzz/fuzz-smtp-addr \
	tests/fuzz/fuzz-smtp-param tests/fuzz/fuzz-turn-mime \
	tests/fuzz/fuzz-turn-dsn tests/fuzz/fuzz-smtp-session
EXTRA_DIST += tests/fuzz/corpus tests/fuzz/run-fuzz.sh \
	tests/fuzz/make-session-seeds.py
if FUZZER
FUZZ_CFLAGS = -fsanitize=fuzzer
FUZZ_MAIN =
else
FUZZ_CFLAGS =
FUZZ_MAIN = tests/fuzz/fuzz-main.c
endif
check_PROGRAMS += $(FUZZ_TARGETS)
tests_fuzz_fuzz_conf_SOURCES = tests/fuzz/fuzz-conf.c $(FUZZ_MAIN)
tests_fuzz_fuzz_conf_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_conf_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_conf_LDADD = odmr/libodmr.a $(UTIL_LIBS)
tests_fuzz_fuzz_rec_SOURCES = tests/fuzz/fuzz-rec.c $(FUZZ_MAIN)
tests_fuzz_fuzz_rec_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_rec_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_rec_LDADD = $(QUEUE_LIBS)
tests_fuzz_fuzz_smtp_cmd_SOURCES = tests/fuzz/fuzz-smtp-cmd.c $(FUZZ_MAIN)
tests_fuzz_fuzz_smtp_cmd_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_smtp_cmd_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_smtp_cmd_LDADD = odmr/libodmr.a $(UTIL_LIBS)
tests_fuzz_fuzz_smtp_addr_SOURCES = tests/fuzz/fuzz-smtp-addr.c $(FUZZ_MAIN)
tests_fuzz_fuzz_smtp_addr_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_smtp_addr_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_smtp_addr_LDADD = odmr/libodmr.a $(UTIL_LIBS)
tests_fuzz_fuzz_smtp_param_SOURCES = tests/fuzz/fuzz-smtp-param.c $(FUZZ_MAIN)
tests_fuzz_fuzz_smtp_param_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_smtp_param_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_smtp_param_LDADD = odmr/libodmr.a $(UTIL_LIBS)
# a whole session: odmrd's session files without odmrd.c and
# smtp_server.c, whose hooks the target provides
tests_fuzz_fuzz_smtp_session_SOURCES = tests/fuzz/fuzz-smtp-session.c \
	odmr/smtp_session.c odmr/smtp_deadline.c odmr/smtp_txn.c \
	odmr/smtp_domains.c odmr/smtp_data.c odmr/smtp_auth.c \
	odmr/smtp_atrn.c odmr/smtp_etrn.c odmr/odmr_flush.c \
	odmr/odmr_bounce.c $(FUZZ_MAIN)
tests_fuzz_fuzz_smtp_session_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS) \
	$(SASL_CFLAGS)
tests_fuzz_fuzz_smtp_session_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_smtp_session_LDADD = odmr/libodmr.a $(TURN_LIBS) \
	$(SASL_LIBS) $(PTHREAD_LIBS)
TESTS += tests/fuzz/run-fuzz.sh

# loop, io, listen and tls (lib/): an echo server driven by real clients
noinst_PROGRAMS += tests/tools/io-echo
tests_tools_io_echo_SOURCES = tests/tools/io-echo.c
tests_tools_io_echo_LDADD = $(UTIL_LIBS) $(PTHREAD_LIBS)
TESTS += tests/integration/test-io.sh
TESTS += tests/integration/test-smtp-dialogues.sh
TESTS += tests/integration/test-smtp-swaks.sh
TESTS += tests/integration/test-smtp-postfix.sh
TESTS += tests/integration/test-smtp-tls.sh
TESTS += tests/integration/test-smtp-load.sh
TESTS += tests/integration/test-odmrd.sh
TESTS += tests/integration/test-teardown.sh
TESTS += tests/integration/test-fetch-teardown.sh

# customer accounts: odmrctl user, and every SASL mechanism against them
noinst_PROGRAMS += tests/tools/sasl-check
tests_tools_sasl_check_SOURCES = tests/tools/sasl-check.c
tests_tools_sasl_check_CFLAGS = $(AM_CFLAGS) $(SASL_CFLAGS)
tests_tools_sasl_check_LDADD = odmr/libodmr.a $(UTIL_LIBS) $(SASL_LIBS)
TESTS += tests/integration/test-odmrctl-user.sh

# turn/: the delivery engine, against smtp-sink, a scripted customer and Postfix
# (test-turn's build lines are in turn/local.mk)
if HAVE_CMOCKA
TESTS += tests/unit/test-turn
endif
TESTS += tests/integration/test-turn.sh

# the ODMR side: a scripted customer, and fetchmail --protocol ODMR
TESTS += tests/integration/test-odmr.sh tests/integration/test-odmr-fetchmail.sh
EXTRA_DIST += tests/tools/odmr-customer.py
EXTRA_DIST += tests/tools/teardown-torture.py tests/tools/fetch-torture.py

# turn_mime: the 8BITMIME to 7-bit downgrade, checked by Python's email package
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-turn-mime
TESTS += tests/unit/test-turn-mime
endif
tests_unit_test_turn_mime_SOURCES = tests/unit/test-turn-mime.c
tests_unit_test_turn_mime_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_turn_mime_LDADD = turn/libturn.a $(UTIL_LIBS) $(CMOCKA_LIBS)
noinst_PROGRAMS += tests/tools/mime-downgrade
tests_tools_mime_downgrade_SOURCES = tests/tools/mime-downgrade.c
tests_tools_mime_downgrade_LDADD = turn/libturn.a $(UTIL_LIBS)
TESTS += tests/integration/test-turn-mime.sh
EXTRA_DIST += tests/tools/mime-check.py
tests_fuzz_fuzz_turn_mime_SOURCES = tests/fuzz/fuzz-turn-mime.c $(FUZZ_MAIN)
tests_fuzz_fuzz_turn_mime_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_turn_mime_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_turn_mime_LDADD = turn/libturn.a $(UTIL_LIBS)
tests_fuzz_fuzz_turn_dsn_SOURCES = tests/fuzz/fuzz-turn-dsn.c $(FUZZ_MAIN)
tests_fuzz_fuzz_turn_dsn_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_turn_dsn_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_fuzz_turn_dsn_LDADD = turn/libturn.a $(UTIL_LIBS)
