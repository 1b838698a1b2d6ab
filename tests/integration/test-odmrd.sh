#!/bin/sh
# NAME
#	test-odmrd - the daemon itself: options, reload, drain, privileges,
#	connection limits, quotas, timeouts and a full store
# DESCRIPTION
#	Runs the real odmrd (tests/integration/odmrd-lib.sh) and talks to it
#	with python3 sockets (tests/tools/smtp-dialogue.py for the replies).
#	Covers: -t on a good and a bad file (file:line in the error), an
#	unknown option; SIGHUP that changes the greeting and the limits, a
#	bad reload that changes nothing, a reload that touches a
#	restart-only key; SIGTERM while a client is inside DATA (the message
#	is still queued, idle clients get 421 4.3.2, exit 0); the privilege
#	drop to user nobody (when run as root); max_connections and
#	max_connections_per_ip (421 4.7.0); the domain quotas (452 4.2.2 at
#	RCPT); command_timeout (421 4.4.2); and a store on a full file system
#	(452 4.3.1, the daemon stays up and accepts again once space is
#	back), which needs root for a small tmpfs.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"

odmrd_setup
DLG="$top_srcdir/tests/tools/smtp-dialogue.py"

# smtp SCRIPT - run an inline dialogue (smtp-dialogue.py syntax) against
# the MX port; prints the reply codes, one per line
smtp() {
	printf '%s\n' "$1" >"$T/dlg.in"
	python3 "$DLG" 127.0.0.1 "$SMTP_PORT" "$T/dlg.in" 2>"$T/dlg.err"
}

# expect_codes DESC WANT SCRIPT - the dialogue's codes equal WANT
expect_codes() {
	_got=$(smtp "$3" | tr '\n' ' ' | sed 's/ *$//')
	if [ "$_got" = "$2" ]; then ok "$1"
	else not_ok "$1 (got '$_got', want '$2')"; sed 's/^/#   /' "$T/dlg.err" | tail -n 12; fi
}

# log_has DESC PATTERN [FROM] - odmrd's log (from line FROM on, 1)
# matches the extended regex PATTERN
log_has() {
	if log_from_has "$2" "${3:-1}"; then ok "$1"
	else not_ok "$1 (no /$2/ in the log from line ${3:-1})"; fi
}

octl domain add example.org --owner demo >/dev/null
octl domain add small.example --owner demo --max-messages 2 >/dev/null
octl domain add tiny.example --owner demo --max-bytes 1k >/dev/null

# ---- -t ------------------------------------------------------------------
out=$("$ODMRD" -f "$T/odmrd.conf" -t 2>&1)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "is valid"; then
	ok "odmrd -t accepts the test configuration"
else
	not_ok "odmrd -t on a good file: exit $rc, '$out'"
fi
cp "$T/odmrd.conf" "$T/bad.conf"
printf 'max_errors = lots\n' >>"$T/bad.conf"
bad_line=$(wc -l <"$T/bad.conf" | tr -d ' ')
out=$("$ODMRD" -f "$T/bad.conf" -t 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "bad.conf:$bad_line"; then
	ok "odmrd -t names file and line of a bad value"
else
	not_ok "odmrd -t on a bad file: exit $rc, '$out'"
fi
# tls_client_ca_file: loaded by -t, and meaningless without TLS
cp "$T/odmrd.conf" "$T/ca.conf"
printf 'tls_client_ca_file = %s\n' "$T/cert.pem" >>"$T/ca.conf"
out=$("$ODMRD" -f "$T/ca.conf" -t 2>&1)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "is valid"; then
	ok "odmrd -t accepts tls_client_ca_file"
else
	not_ok "odmrd -t with tls_client_ca_file: exit $rc, '$out'"
fi
cp "$T/odmrd.conf" "$T/ca.conf"
printf 'tls_client_ca_file = %s\n' "$T/no-such-ca.pem" >>"$T/ca.conf"
out=$("$ODMRD" -f "$T/ca.conf" -t 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "cannot load CA file $T/no-such-ca.pem"; then
	ok "odmrd -t refuses a tls_client_ca_file it cannot load"
else
	not_ok "odmrd -t with a missing tls_client_ca_file: exit $rc, '$out'"
fi
grep -v '^tls_\(cert\|key\)_file' "$T/odmrd.conf" >"$T/ca.conf"
printf 'tls_client_ca_file = %s\n' "$T/cert.pem" >>"$T/ca.conf"
out=$("$ODMRD" -f "$T/ca.conf" -t 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q "tls_client_ca_file is set but TLS is not"; then
	ok "odmrd -t refuses tls_client_ca_file without tls_cert_file and tls_key_file"
else
	not_ok "odmrd -t with tls_client_ca_file and no TLS: exit $rc, '$out'"
fi
out=$("$ODMRD" -x 2>&1)
rc=$?
if [ $rc -ne 0 ] && echo "$out" | grep -q usage; then
	ok "an unknown option prints the usage and fails"
else
	not_ok "odmrd -x: exit $rc, '$out'"
fi

# ---- privileges, start-up --------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
	chown -R nobody "$T/state"
	# the key is read again on SIGHUP, after the drop (odmrd(8))
	chown nobody "$T/key.pem"
	chmod 711 "$T"
	odmrd_conf user nobody
fi
odmrd_start || { not_ok "odmrd starts"; tap_done; }
ok "odmrd starts and logs event=ready"
if [ "$(id -u)" -eq 0 ]; then
	uid=$(awk '/^Uid:/ { print $2 " " $3 " " $4 " " $5 }' \
	    "/proc/$odmrd_pid/status")
	want=$(id -u nobody)
	if [ "$uid" = "$want $want $want $want" ]; then
		ok "odmrd dropped to user nobody (real, effective, saved, fs uid)"
	else
		not_ok "odmrd uids after the drop: $uid, want $want"
	fi
	log_has "the privilege drop is logged" "event=privdrop user=nobody"
else
	not_ok "the privilege drop needs root to be tested (run make check as root)"
fi
expect_codes "greeting and a message" "220 250 250 2.1.0 250 2.1.5 354 250 2.0.0 221 2.0.0 [closed]" \
'EHLO t.test
MAIL FROM:<a@x.test>
RCPT TO:<u@example.org>
DATA
!data
Subject: one

hello
.
!enddata
QUIT'
log_has "one log line per accepted message, with its facts" \
    "event=queued id=[0-9A-F]{14} from=<a@x.test> nrcpt=1 size=[0-9]+ client=127.0.0.1 tls=none"

# ---- AUTH on the MX port (for ETRN's owner mode; it grants no relaying) -------
require_cmd swaks swaks
printf 'sekrit\n' | octl user add alice >/dev/null
octl domain set example.org --owner demo,alice >/dev/null
# (the user was added after start: odmrd reads sasldb at each AUTH)
# swaks_case DESC OK|FAIL PATTERN ARGS... - swaks on the MX port must
# succeed (OK) or fail (FAIL) and print PATTERN (grep -E)
swaks_case() {
	_d=$1 _want=$2 _pat=$3; shift 3
	swaks --server "127.0.0.1:$SMTP_PORT" --from a@x.test "$@" \
	    >"$T/swaks.out" 2>&1
	_rc=$?
	if { [ "$_want" = OK ] && [ $_rc -eq 0 ]; } ||
	    { [ "$_want" = FAIL ] && [ $_rc -ne 0 ]; }; then
		if grep -Eq -e "$_pat" "$T/swaks.out"; then ok "$_d"; return; fi
	fi
	not_ok "$_d (swaks exit $_rc, want $_want and /$_pat/)"
	tail -n 8 "$T/swaks.out" | sed 's/^/#   /'
}
swaks_case "MX port: AUTH CRAM-MD5 with the right password gets 235" OK \
    "235 2.7.0" --auth CRAM-MD5 --auth-user alice --auth-password sekrit \
    --to u@example.org
swaks_case "MX port: a wrong password gets 535 5.7.8" FAIL "535 5.7.8" \
    --auth CRAM-MD5 --auth-user alice --auth-password wrong --to u@example.org
swaks_case "MX port: PLAIN is not offered outside TLS (and 538 5.7.11 if asked: dialogue auth-on-mx)" \
    FAIL "250-AUTH SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5$" --auth PLAIN \
    --auth-user alice --auth-password sekrit --to u@example.org
swaks_case "MX port: AUTH PLAIN inside TLS gets 235" OK "235 2.7.0" --tls \
    --auth PLAIN --auth-user alice --auth-password sekrit --to u@example.org
swaks_case "MX port: an authenticated client still cannot relay (550 5.7.1)" \
    FAIL "550 5.7.1" --auth CRAM-MD5 --auth-user alice \
    --auth-password sekrit --to u@other.test

# ---- quotas ------------------------------------------------------------------
expect_codes "max-messages: two fit, the third recipient gets 452 4.2.2" \
    "220 250 250 2.1.0 250 2.1.5 354 250 2.0.0 250 2.1.0 250 2.1.5 354 250 2.0.0 250 2.1.0 452 4.2.2 221 2.0.0 [closed]" \
'EHLO t.test
MAIL FROM:<a@x.test>
RCPT TO:<u@small.example>
DATA
!data
one
.
!enddata
MAIL FROM:<a@x.test>
RCPT TO:<u@small.example>
DATA
!data
two
.
!enddata
MAIL FROM:<a@x.test>
RCPT TO:<u@small.example>
QUIT'
expect_codes "max-bytes: a message over the domain's bytes gets 452 4.2.2 at the end" \
    "220 250 250 2.1.0 250 2.1.5 354 452 4.2.2 221 2.0.0 [closed]" \
"EHLO t.test
MAIL FROM:<a@x.test>
RCPT TO:<u@tiny.example>
DATA
!data
$(python3 -c 'print("x" * 900); print("y" * 900)')
.
!enddata
QUIT"
expect_codes "max-bytes: SIZE over the domain's room gets 452 4.2.2 at RCPT" \
    "220 250 250 2.1.0 452 4.2.2 221 2.0.0 [closed]" \
'EHLO t.test
MAIL FROM:<a@x.test> SIZE=5000
RCPT TO:<u@tiny.example>
QUIT'

# ---- SIGHUP -----------------------------------------------------------------
# each SIGHUP waits for the reload's own log line (odmrd_hup), never a
# fixed time: a loaded machine takes longer than any guess
odmrd_conf hostname reloaded.odmr.test
odmrd_conf max_recipients 1
odmrd_hup
printf 'QUIT\n' >"$T/q.in"
if python3 "$DLG" 127.0.0.1 "$SMTP_PORT" "$T/q.in" 2>&1 >/dev/null |
    grep -q "220 reloaded.odmr.test ESMTP"; then
	ok "SIGHUP: the new hostname is in the greeting"
else
	not_ok "SIGHUP: greeting did not change"
fi
expect_codes "SIGHUP: the new max_recipients applies" \
    "220 250 250 2.1.0 250 2.1.5 452 4.5.3 221 2.0.0 [closed]" \
'EHLO t.test
MAIL FROM:<a@x.test>
RCPT TO:<u1@example.org>
RCPT TO:<u2@example.org>
QUIT'
printf 'max_errors = lots\n' >>"$T/odmrd.conf"
from=$(log_mark)
odmrd_hup
log_has "a bad reload is refused and logged" "event=reload-failed.*max_errors" "$from"
if kill -0 "$odmrd_pid" 2>/dev/null; then ok "odmrd survives a bad reload"
else not_ok "odmrd died on a bad reload"; fi
sed -i '/^max_errors = lots$/d' "$T/odmrd.conf"
odmrd_conf smtp_listen "127.0.0.1:$(free_port)"
from=$(log_mark)
odmrd_hup
log_has "a restart-only key is named on reload" "event=reload-warning key=smtp_listen" "$from"
expect_codes "the old listener still serves after that reload" "220 221 2.0.0 [closed]" 'QUIT'
odmrd_conf smtp_listen "127.0.0.1:$SMTP_PORT"
odmrd_conf max_recipients 1000
odmrd_hup

# ---- connection limits -------------------------------------------------------
cat >"$T/conns.py" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
socks, greet = [], []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    socks.append(s)
    greet.append(s.recv(200).decode(errors="replace").split("\r\n")[0][:9])
print(" ".join(g.split(" ")[0] + ("/" + g.split(" ")[1] if g.startswith("421") else "") for g in greet))
PY
odmrd_conf max_connections_per_ip 3
odmrd_hup
got=$(python3 "$T/conns.py" "$SMTP_PORT" 4 2>&1)
if [ "$got" = "220 220 220 421/4.7.0" ]; then
	ok "max_connections_per_ip: the 4th connection from one address gets 421 4.7.0"
else
	not_ok "max_connections_per_ip: got '$got'"
fi
odmrd_conf max_connections_per_ip 500
odmrd_conf max_connections 2
odmrd_hup
got=$(python3 "$T/conns.py" "$SMTP_PORT" 3 2>&1)
if [ "$got" = "220 220 421/4.7.0" ]; then
	ok "max_connections: the 3rd connection gets 421 4.7.0"
else
	not_ok "max_connections: got '$got'"
fi
log_has "refused connections are logged with the reason" \
    "event=reject service=smtp client=127.0.0.1 code=421 reason=\"too many connections\""
odmrd_conf max_connections 1000

# ---- timeouts ----------------------------------------------------------------
odmrd_conf command_timeout 1s
odmrd_hup
# the client waits for the 421 itself (10 s at most), not a fixed 2 s
expect_codes "command_timeout: an idle client gets 421 4.4.2 and is closed" \
    "220 250 421 4.4.2 [closed]" \
'EHLO t.test
!expect
!close'
odmrd_conf command_timeout 5m
odmrd_hup

# ---- SIGTERM drains -------------------------------------------------------------
# every step waits for the reply it needs (20 s at most), never a fixed
# time: the idle client's 421 is the sign that the SIGTERM was handled
cat >"$T/drain.py" <<'PY'
import os, signal, socket, sys
port, pid = int(sys.argv[1]), int(sys.argv[2])
def conn():
    """a connection past its greeting: (socket, its reader)"""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")
    f.readline()
    return s, f
def replies(f, n):
    """the codes of the next N whole replies (multi-line ones count once)"""
    codes = []
    while len(codes) < n:
        ln = f.readline()
        if not ln:
            break
        if ln[3:4] != b"-":
            codes.append(ln[:3].decode())
    return codes
def rest(f):
    """the codes of every reply until odmrd closes the connection"""
    return [ln[:3].decode() for ln in f if ln[3:4] != b"-"]
(busy, bf), (idle, idf) = conn(), conn()
busy.sendall(b"EHLO t\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<u@example.org>\r\nDATA\r\n")
got = replies(bf, 4)
assert got == ["250", "250", "250", "354"], got
idle.sendall(b"EHLO t\r\n")
got = replies(idf, 1)
assert got == ["250"], got
busy.sendall(b"Subject: draining\r\n\r\nfirst half\r\n")
os.kill(pid, signal.SIGTERM)
idle_got = replies(idf, 1)
busy.sendall(b"second half\r\n.\r\n")
busy_got = rest(bf)
print("idle:" + " ".join(idle_got) + " busy:" + " ".join(busy_got))
PY
got=$(python3 "$T/drain.py" "$SMTP_PORT" "$odmrd_pid" 2>&1)
if [ "$got" = "idle:421 busy:250 421" ]; then
	ok "SIGTERM: idle client gets 421, the message in DATA is finished (250), then 421"
else
	not_ok "SIGTERM drain: got '$got'"
fi
# drain.py sent the SIGTERM: wait for the exit, and send no second one
# (odmrd_wait_exit says why)
odmrd_wait_exit 30
rc=$?
if [ $rc -eq 0 ]; then ok "odmrd exits 0 after draining"
else not_ok "odmrd exit status after SIGTERM is not 0 (exit $rc)"; fi
if octl --json show "$(grep 'event=queued' "$T/odmrd.log" | tail -n 1 | sed 's/.* id=\([0-9A-F]*\).*/\1/')" 2>/dev/null |
    grep -q "draining"; then
	ok "the message finished during the drain is in the store"
else
	# the subject is in the text, not the envelope: look at the text
	id=$(grep 'event=queued' "$T/odmrd.log" | tail -n 1 | sed 's/.* id=\([0-9A-F]*\).*/\1/')
	if octl show "$id" --body 2>/dev/null | grep -q "second half"; then
		ok "the message finished during the drain is in the store"
	else
		not_ok "the drained message $id is not in the store"
	fi
fi

# ---- a full store ----------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
	not_ok "the full-disk case needs root for a tmpfs mount (run make check as root)"
else
	mkdir -p "$T/small"
	if mount -t tmpfs -o size=64m tmpfs "$T/small" 2>"$T/mount.err"; then
		odmrd_extra_cleanup="umount '$T/small' 2>/dev/null"
		mkdir -p "$T/small/state/queue"
		chmod 700 "$T/small/state"
		# a small cache and log, as test-enospc does: the region
		# must fit the small file system
		printf 'set_cachesize 0 4194304 1\nset_lg_bsize 262144\nset_lg_max 2097152\n' \
		    >"$T/small/state/queue/DB_CONFIG"
		odmrd_conf state_dir "$T/small/state"
		odmrd_conf user ""
		octl domain add example.org --owner demo >/dev/null 2>&1
		odmrd_start || not_ok "odmrd starts on the small file system"
		# fill the file system but for 4 MiB: MAIL still passes
		# (a twentieth, 3.2 MiB, is held back), a 6 MiB text cannot
		avail=$(df -k --output=avail "$T/small" | tail -n 1 | tr -d ' ')
		dd if=/dev/zero of="$T/small/filler" bs=1k \
		    count=$((avail - 4096)) 2>/dev/null
		big=$(python3 -c 'print(("z" * 998 + "\n") * 6300, end="")')
		expect_codes "a full disk gets 452 4.3.1, never a crash" \
		    "220 250 250 2.1.0 250 2.1.5 354 452 4.3.1 221 2.0.0 [closed]" \
"EHLO t.test
MAIL FROM:<a@x.test>
RCPT TO:<u@example.org>
DATA
!data
$big
.
!enddata
QUIT"
		expect_codes "MAIL with a SIZE that cannot fit gets 452 4.3.1" \
		    "220 250 452 4.3.1 221 2.0.0 [closed]" \
'EHLO t.test
MAIL FROM:<a@x.test> SIZE=1000000
QUIT'
		if kill -0 "$odmrd_pid" 2>/dev/null; then
			ok "odmrd is still up on a full disk"
		else
			not_ok "odmrd died on a full disk"
		fi
		rm -f "$T/small/filler"
		expect_codes "with space back, mail is accepted again" \
		    "220 250 250 2.1.0 250 2.1.5 354 250 2.0.0 221 2.0.0 [closed]" \
'EHLO t.test
MAIL FROM:<a@x.test>
RCPT TO:<u@example.org>
DATA
!data
back again
.
!enddata
QUIT'
		odmrd_stop || not_ok "odmrd exit status after the full-disk case"
		umount "$T/small"
		odmrd_extra_cleanup=""
	else
		not_ok "cannot mount a tmpfs for the full-disk case: $(cat "$T/mount.err")"
	fi
fi

if grep -Eq "AddressSanitizer|runtime error|LeakSanitizer" "$T/odmrd.log"; then
	not_ok "the sanitizers reported something (see $T/odmrd.log)"
	grep -E -A20 "AddressSanitizer|runtime error|LeakSanitizer" "$T/odmrd.log" | head -40 | sed 's/^/#   /'
else
	ok "no sanitizer reports in odmrd's log"
fi
tap_done
