#!/bin/sh
# NAME
#	test-fetch-teardown.sh - odmr-fetch survives every way its provider
#	or its local MTA can end a pickup
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-fetch-teardown.sh
# DESCRIPTION
#	The client side of the teardown torture (issue 14, item 2; the
#	server side is test-teardown.sh). tests/tools/fetch-torture.py plays
#	a scripted ODMR provider (STARTTLS, implicit TLS or none; AUTH
#	CRAM-MD5 or PLAIN; ATRN; then the client of the reversed session)
#	and a scripted local MTA (--deliver-to), and one of them ends the
#	pickup rudely: before or after the greeting, a reset (SO_LINGER 0),
#	a close with or without close_notify (with or without QUIT), a
#	half-done handshake, during AUTH, right after the 250 to ATRN, after
#	EHLO, after MAIL, in the middle of the text or of a BDAT chunk,
#	right after the final dot, or silence. Each case runs the real
#	odmr-fetch (the build's, so under its sanitizers) FETCH_TORTURE_REPS
#	times (30) and asserts that it always exits, that --timeout bounds
#	every silence and a hang-up is noticed before it, that SIGTERM ends
#	a stalled pickup, that the exit status is the one SPEC.md and
#	odmr-fetch(1) give for that failure, and that its stderr holds no
#	sanitizer report. The certificate is a self-signed one for
#	mx.odmr.test, checked with --ca-file and --tls-name. KEEP_T=1 keeps
#	the work directory (the log of every failed run is in
#	$T/fetch-runs).

. "$top_srcdir/tests/tap.sh"

require_cmd python3 python3
require_cmd openssl openssl
FETCH="$top_builddir/turn/odmr-fetch"
require_built "$FETCH"

T=$(mktemp -d /tmp/fetch-teardown.XXXXXX) || exit 1
cleanup() {
	if [ -n "${KEEP_T:-}" ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
    -subj "/CN=mx.odmr.test" -addext "subjectAltName=DNS:mx.odmr.test" \
    -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1
check "openssl made a test certificate for mx.odmr.test" test -s "$T/cert.pem"
export T FETCH

python3 "$top_srcdir/tests/tools/fetch-torture.py" --list >"$T/cases" 2>&1
ncases=$(wc -l <"$T/cases")
python3 "$top_srcdir/tests/tools/fetch-torture.py" >"$T/torture.out" 2>&1
rc=$?
tap_feed "$T/torture.out"
check "fetch-torture.py ran to its end (exit $rc)" test $rc -eq 0
nlines=$(grep -Ec '^(not )?ok - ' "$T/torture.out")
check "every one of the $ncases cases reported ($nlines)" \
    test "$nlines" -eq "$ncases" -a "$ncases" -gt 60
tap_done
