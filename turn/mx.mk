# turn/mx.mk - (filled in by the mx work)
