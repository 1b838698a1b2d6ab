# bench/local.mk - benchmark helpers (not run by make check)
noinst_PROGRAMS += bench/store-bench
bench_store_bench_SOURCES = bench/store-bench.c
bench_store_bench_LDADD = $(QUEUE_LIBS)
EXTRA_DIST += bench/store.sh bench/accept.sh bench/idle-conns.py bench/lib.sh
EXTRA_DIST += bench/etrn.sh bench/atrn.sh bench/fetch.sh
