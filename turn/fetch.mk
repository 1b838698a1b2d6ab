# turn/fetch.mk - odmr-fetch, the customer-side client (tracker issue 7):
# ATRN or ETRN to the provider, then the mail to the local MTA. It uses
# lib/ only: no store (queue/), no daemon (odmr/).
bin_PROGRAMS += turn/odmr-fetch
turn_odmr_fetch_SOURCES = \
	turn/odmr_fetch.c turn/fetch.h \
	turn/fetch_poll.c turn/fetch_poll.h \
	turn/fetch_provider.c turn/fetch_provider.h \
	turn/fetch_local.c turn/fetch_local.h \
	turn/fetch_relay.c turn/fetch_relay.h \
	turn/fetch_relay_bdat.c turn/fetch_relay_int.h \
	turn/fetch_relay_lane.c \
	turn/fetch_reply.c turn/fetch_reply.h \
	turn/fetch_sasl.c turn/fetch_sasl.h
turn_odmr_fetch_CFLAGS = $(AM_CFLAGS) $(SASL_CFLAGS)
turn_odmr_fetch_LDADD = $(UTIL_LIBS) $(SASL_LIBS) $(PTHREAD_LIBS)
dist_man1_MANS += turn/odmr-fetch.1

# against a real odmrd, a private Postfix and smtp-sink (SMTP and LMTP);
# bench/fetch.sh races it against fetchmail --protocol ODMR
TESTS += tests/integration/test-odmr-fetch.sh
EXTRA_DIST += bench/fetch.sh
# what it shares with test-odmr-fetchmail.sh: queue mail, keep the stored text
EXTRA_DIST += tests/tools/site_check.py
