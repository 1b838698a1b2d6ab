# turn/dsn.mk - (filled in by the dsn work)
