# odmr/local.mk - the daemon, its servers and odmrctl
noinst_LIBRARIES += odmr/libodmr.a
odmr_libodmr_a_SOURCES = \
	odmr/odmr_conf.c odmr/odmr_conf.h \
	odmr/odmr_sasl.c odmr/odmr_sasl.h \
	odmr/smtp_parse.c odmr/smtp_parse.h \
	odmr/smtp_spool.c odmr/smtp_spool.h \
	odmr/smtp_text.c odmr/smtp_text.h
odmr_libodmr_a_CFLAGS = $(AM_CFLAGS) $(SASL_CFLAGS)

sbin_PROGRAMS += odmr/odmrctl
odmr_odmrctl_SOURCES = \
	odmr/odmrctl.c odmr/odmrctl.h \
	odmr/odmrctl_domain.c \
	odmr/odmrctl_user.c \
	odmr/odmrctl_queue.c \
	odmr/odmrctl_msg.c \
	odmr/odmrctl_stats.c \
	odmr/odmrctl_flush.c \
	odmr/odmrctl_bounce.c \
	odmr/odmrctl_out.c
# odmr_sasl.c (libodmr.a) needs $(SASL_LIBS) in every program that uses it
odmr_odmrctl_LDADD = odmr/libodmr.a $(TURN_LIBS) $(SASL_LIBS) \
	$(PTHREAD_LIBS)

sbin_PROGRAMS += odmr/odmrd
odmr_odmrd_SOURCES = \
	odmr/odmrd.c odmr/odmrd.h \
	odmr/smtp_server.c \
	odmr/smtp_session.c odmr/smtp_session.h \
	odmr/smtp_deadline.c \
	odmr/smtp_txn.c \
	odmr/smtp_domains.c odmr/smtp_domains.h \
	odmr/smtp_data.c \
	odmr/smtp_auth.c \
	odmr/smtp_atrn.c \
	odmr/smtp_etrn.c \
	odmr/odmr_flush.c odmr/odmr_flush.h \
	odmr/odmr_bounce.c odmr/odmr_bounce.h
odmr_odmrd_CFLAGS = $(AM_CFLAGS) $(SASL_CFLAGS)
odmr_odmrd_LDADD = odmr/libodmr.a $(TURN_LIBS) $(SASL_LIBS) $(PTHREAD_LIBS)

dist_man5_MANS += odmr/odmrd.conf.5
dist_man8_MANS += odmr/odmrctl.8 odmr/odmrd.8
