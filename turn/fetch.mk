# turn/fetch.mk - (filled in by the fetch work)
