# queue/local.mk - the message store; queue_bdb.c is the only file with <db.h>
noinst_LIBRARIES += queue/libqueue.a
queue_libqueue_a_SOURCES = \
	queue/queue.c queue/queue.h queue/queue_backend.h \
	queue/queue_rec.c queue/queue_rec.h \
	queue/queue_bdb.c
QUEUE_LIBS = queue/libqueue.a $(UTIL_LIBS) $(DB_LIBS) $(PTHREAD_LIBS)
