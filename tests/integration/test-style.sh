#!/bin/sh
# NAME
#	test-style - the rules of STYLE.md that a machine can check
# DESCRIPTION
#	Fails when the tree breaks a house rule: an unbounded string call
#	(strcpy, strcat, sprintf, vsprintf, gets), a source file without its
#	NAME header, a function without its one-line purpose comment, or a
#	layer reaching the wrong way (queue/ including odmr/ or turn/, a file
#	outside the Berkeley DB backend including <db.h>, or code outside
#	lib/ including libevent or OpenSSL headers).
. "$top_srcdir/tests/tap.sh"
require_cmd python3 python3

cd "$top_srcdir" || exit 1
SRC=$(ls lib/*.[ch] queue/*.[ch] odmr/*.[ch] turn/*.[ch] bench/*.c \
    tests/unit/*.c tests/tools/*.c tests/fuzz/*.c 2>/dev/null)

hits=$(grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets)[[:space:]]*\(' $SRC)
if [ -z "$hits" ]; then
	ok "no strcpy, strcat, sprintf, vsprintf or gets"
else
	not_ok "unbounded string calls (STYLE.md rule 7):"; echo "$hits" | sed 's/^/#   /'
fi

missing=""
for f in $SRC; do
	head -n 3 "$f" | grep -q 'NAME' || missing="$missing $f"
done
if [ -z "$missing" ]; then
	ok "every source file opens with a NAME header"
else
	not_ok "files without a NAME header:$missing"
fi

out=$(python3 - $SRC <<'PY'
import re, sys
for f in sys.argv[1:]:
    if not f.endswith('.c'):
        continue
    lines = open(f, encoding='utf-8', errors='replace').read().split('\n')
    for i, l in enumerate(lines):
        m = re.match(r'^([A-Za-z_]\w*)\(', l)
        if not m or i < 2 or lines[i-1].startswith(('#', '\t', ' ')) \
           or not lines[i-1].strip():
            continue
        if not lines[i-2].rstrip().endswith('*/'):
            print('%s:%d: %s' % (f, i + 1, m.group(1)))
PY
)
if [ -z "$out" ]; then
	ok "every function has a purpose comment"
else
	not_ok "functions without a purpose comment:"; echo "$out" | sed 's/^/#   /'
fi

bad=$(grep -lE '#include "(odmr|turn|smtp)[^"]*\.h"' queue/*.[ch] 2>/dev/null)
if [ -z "$bad" ]; then ok "queue/ includes nothing from odmr/ or turn/"
else not_ok "queue/ reaches up a layer: $bad"; fi

bad=$(grep -l '#include <db.h>' $SRC | grep -v '^queue/queue_bdb')
if [ -z "$bad" ]; then ok "only the Berkeley DB backend includes <db.h>"
else not_ok "<db.h> outside queue/queue_bdb*: $bad"; fi

bad=$(grep -lE '#include <(event2|openssl)/' $SRC | grep -v '^lib/')
if [ -z "$bad" ]; then ok "libevent and OpenSSL headers stay in lib/"
else not_ok "libevent/OpenSSL headers outside lib/: $bad"; fi

tap_done
