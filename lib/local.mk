# lib/local.mk - mail-agnostic utilities (logging, buffers, config, JSON,
# event loop, connections, TLS, listeners)
noinst_LIBRARIES += lib/libodmrutil.a
lib_libodmrutil_a_SOURCES = \
	lib/log.c lib/log.h \
	lib/xmalloc.c lib/xmalloc.h \
	lib/buf.c lib/buf.h \
	lib/pack.c lib/pack.h \
	lib/compat.c lib/compat.h \
	lib/units.c lib/units.h \
	lib/dname.c lib/dname.h \
	lib/conf.c lib/conf.h \
	lib/json.c lib/json.h \
	lib/loop.c lib/loop.h lib/loop_private.h \
	lib/tls.c lib/tls.h lib/tls_private.h \
	lib/io.c lib/io.h \
	lib/listen.c lib/listen.h \
	lib/work.c lib/work.h
lib_libodmrutil_a_CFLAGS = $(AM_CFLAGS) $(IDN2_CFLAGS) $(EVENT_CFLAGS) \
	$(OPENSSL_CFLAGS)
UTIL_LIBS = lib/libodmrutil.a $(IDN2_LIBS) $(EVENT_LIBS) $(OPENSSL_LIBS)
