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
#
#	It also keeps contrib/quickstart.sh honest: every package a test
#	names in "require_cmd TOOL PACKAGE" (under tests/ and bench/) must
#	be one that "quickstart.sh check" installs (BUILD_PKGS, TEST_PKGS)
#	or one that Debian marks Essential, and swaks --tls in a test needs
#	swaks' TLS module (libnet-ssleay-perl) in the list too. A test that
#	calls a tool the quickstart does not install fails here, not on a
#	fresh machine.
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

# qs_list VAR - the words of quickstart.sh's VAR="..." (it spans lines)
qs_list() {
	awk -v v="$1" '
	    !on && index($0, v "=\"") == 1 { on = 1; $0 = substr($0, length(v) + 3) }
	    on { if (sub(/".*/, "")) on = 0; print }' contrib/quickstart.sh |
	    tr -s ' \t' '\n\n' | sed '/^$/d'
}

# Essential: yes in Debian 12 (dpkg-query -W -f='${Essential}' PKG): on
# every Debian machine, so the quickstart need not name them. mount and
# procps are not Essential.
ESSENTIAL="base-files bash bsdutils coreutils dash debianutils diffutils
	findutils grep gzip hostname libc-bin login ncurses-bin perl-base sed
	tar util-linux"
installed=$(qs_list BUILD_PKGS; qs_list TEST_PKGS)
if echo "$installed" | grep -qx swaks; then
	ok "contrib/quickstart.sh's package lists are readable ($(echo "$installed" | wc -l) packages)"
else
	not_ok "cannot read BUILD_PKGS and TEST_PKGS from contrib/quickstart.sh"
fi
known=$(printf '%s\n' $installed $ESSENTIAL)

# every "require_cmd TOOL PACKAGE" that is a command (not a comment or
# a string), as "FILE:LINE TOOL PACKAGE"
uses=$(grep -rnE '(^|[;&|{(]|then|do|else)[[:space:]]*require_cmd[[:space:]]' \
    tests bench 2>/dev/null | grep -vE '^[^:]*:[0-9]+:[[:space:]]*#' |
    sed -nE 's/^([^:]*:[0-9]+):.*require_cmd[[:space:]]+"?([^"[:space:]]+)"?[[:space:]]+"?([^"[:space:];&|)]*)"?.*/\1 \2 \3/p')
bad=""
n=0
while read -r where tool pkg; do
	[ -n "$where" ] || continue
	n=$((n + 1))
	case $pkg in
	*[!a-z0-9.+-]*|"")
		bad="$bad
$where: require_cmd $tool $pkg: the package must be a literal Debian name" ;;
	*)
		echo "$known" | grep -qxF "$pkg" || bad="$bad
$where: require_cmd $tool $pkg: $pkg is neither in quickstart.sh's BUILD_PKGS/TEST_PKGS nor Essential" ;;
	esac
done <<EOF
$uses
EOF
if [ "$n" -eq 0 ]; then
	not_ok "found no require_cmd TOOL PACKAGE under tests/"
elif [ -z "$bad" ]; then
	ok "the package each of the $n require_cmd's names: quickstart.sh check installs it, or it is Essential"
else
	not_ok "packages named in require_cmd's that quickstart.sh check does not install:"
	echo "$bad" | sed '/^$/d; s/^/#   /'
fi

# swaks' TLS support is a Recommends (libnet-ssleay-perl), which
# --no-install-recommends leaves out: swaks --tls then exits 10
tls=$(grep -rlE 'swaks.*--tls|--tls.*swaks' tests bench 2>/dev/null |
    grep -v 'test-style\.sh$' | head -n 3)
if [ -z "$tls" ] || echo "$known" | grep -qx libnet-ssleay-perl; then
	ok "swaks --tls in the tests has its TLS module in quickstart.sh (libnet-ssleay-perl)"
else
	not_ok "swaks --tls is used ($(echo $tls)) but quickstart.sh does not install libnet-ssleay-perl"
fi

tap_done
