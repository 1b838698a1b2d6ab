# queue/local.mk - the message store; only queue_bdb*.c include <db.h>
noinst_LIBRARIES += queue/libqueue.a
queue_libqueue_a_SOURCES = \
	queue/queue.c queue/queue.h queue/queue_backend.h \
	queue/queue_rec.c queue/queue_rec.h \
	queue/queue_bdb.c queue/queue_bdb_int.h \
	queue/queue_bdb_domain.c queue/queue_bdb_msg.c queue/queue_bdb_check.c
QUEUE_LIBS = queue/libqueue.a $(UTIL_LIBS) $(DB_LIBS) $(PTHREAD_LIBS)
