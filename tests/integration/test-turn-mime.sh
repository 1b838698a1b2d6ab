#!/bin/sh
# NAME
#	test-turn-mime - 8BITMIME to 7-bit downgrade of sample messages
# DESCRIPTION
#	Runs every tests/integration/mime/*.eml through
#	tests/tools/mime-downgrade (turn_mime_downgrade()). A sample with
#	a .err file next to it must be refused, with that text in the
#	error; any other must convert, and tests/tools/mime-check.py then
#	checks the result against the original with Python's email
#	package: 7-bit, CRLF, lines <= 998, no defects, the same parts,
#	payloads and decoded header fields. Each result is converted
#	again and must come out the same (a 7-bit message is a fixed
#	point), and turn_mime_is_7bit() must say 7bit of it.
#
#	MIME_DOWNGRADE_WRAPPER, when set, prefixes every mime-downgrade
#	run, for example "valgrind -q --error-exitcode=99".
. "$top_srcdir/tests/tap.sh"
require_cmd python3 python3

bin="$top_builddir/tests/tools/mime-downgrade"
check="$top_srcdir/tests/tools/mime-check.py"
T=$(mktemp -d /tmp/test-turn-mime.XXXXXX)
trap 'rm -rf "$T"' EXIT

for m in "$top_srcdir"/tests/integration/mime/*.eml; do
	n=$(basename "$m" .eml)
	err="${m%.eml}.err"
	if [ -f "$err" ]; then
		want=$(cat "$err")
		$MIME_DOWNGRADE_WRAPPER "$bin" "$m" "$T/$n.out" 2>"$T/$n.log"
		rc=$?
		if [ "$rc" -eq 1 ] && grep -qF "$want" "$T/$n.log"; then
			ok "$n: refused: $want"
		else
			not_ok "$n: exit $rc, want 1 and \"$want\""
			sed 's/^/#   /' "$T/$n.log"
		fi
		continue
	fi
	if ! $MIME_DOWNGRADE_WRAPPER "$bin" "$m" "$T/$n.out" 2>"$T/$n.log"
	then
		not_ok "$n: downgrade failed"
		sed 's/^/#   /' "$T/$n.log"
		continue
	fi
	if python3 "$check" "$T/$n.out" "$m" >"$T/$n.check" 2>&1; then
		ok "$n: mime-check"
	else
		not_ok "$n: mime-check"
		sed 's/^/#   /' "$T/$n.check"
	fi
	if $MIME_DOWNGRADE_WRAPPER "$bin" "$T/$n.out" "$T/$n.again" &&
	    cmp -s "$T/$n.out" "$T/$n.again" &&
	    [ "$("$bin" -c "$T/$n.out")" = 7bit ]; then
		ok "$n: 7-bit, and a fixed point"
	else
		not_ok "$n: converting the result again changes it"
	fi
done

tap_done
