#!/bin/sh
# NAME
#	test-teardown.sh - odmrd survives every way a session can end, and
#	every slow or silent client
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-teardown.sh
# DESCRIPTION
#	Starts a real odmrd (under the sanitizers of the build) with the MX,
#	ODMR and implicit-TLS listeners, and runs:
#	- tests/tools/teardown-torture.py: 32 ways of ending a session
#	  (close_notify with and without QUIT, read or not; resets; half
#	  handshakes; DATA, BDAT, AUTH, ATRN, the reversed session; ETRN
#	  deliveries whose server hangs up), each TORTURE_REPS times (30),
#	  with a check after each that odmrd greets a new client within a
#	  second, and a check that every message acknowledged before a
#	  reset is in the store byte for byte;
#	- openssl s_client </dev/null against the three ports;
#	- clients that pipeline EHLO and never read: odmrd's RSS stays flat
#	  and they are closed at command_timeout;
#	- slowloris clients (one byte a second): closed at command_timeout
#	  although they never stop sending, and message text below
#	  data_min_rate: 421 at the deadline; a TLS handshake left half
#	  done: closed at command_timeout;
#	- the loop watchdog: a loop blocked on purpose (ODMRD_TEST_HOOKS,
#	  SIGUSR2) logs event=loop-stalled and aborts.
#	At the end odmrd exits 0 on SIGTERM, "odmrctl check" is clean and
#	the log holds no sanitizer report. KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"

require_cmd python3 python3
require_cmd openssl openssl
odmrd_setup
ODMRS_PORT=$(free_port)
ROUTE_PORT=$(free_port)
odmrd_conf odmrs_listen "127.0.0.1:$ODMRS_PORT"
odmrd_conf log_level info
# short deadlines, so that the slow clients are cut off in seconds
odmrd_conf command_timeout 4s
odmrd_conf data_timeout 4s
odmrd_conf data_min_rate 1000
ETRN_DOMAIN=etrn.example
ATRN_DOMAIN=atrn.example
ATRN_USER=torturer
ATRN_PASSWORD=torture-pw
export T SMTP_PORT ODMR_PORT ODMRS_PORT ODMRCTL ROUTE_PORT
export ETRN_DOMAIN ATRN_DOMAIN ATRN_USER ATRN_PASSWORD

printf '%s\n' "$ATRN_PASSWORD" | octl user add "$ATRN_USER" >"$T/setup.out" 2>&1 &&
    octl domain add "$ATRN_DOMAIN" --owner "$ATRN_USER" >>"$T/setup.out" 2>&1 &&
    octl domain add "$ETRN_DOMAIN" --owner "$ATRN_USER" --etrn any \
    --route "127.0.0.1:$ROUTE_PORT" --tls may >>"$T/setup.out" 2>&1
check "an account, an ATRN domain and an ETRN domain routed to a scripted server" \
    test $? -eq 0
odmrd_start || { not_ok "odmrd starts"; tap_done; }
ok "odmrd starts (smtp $SMTP_PORT, odmr $ODMR_PORT, odmrs $ODMRS_PORT)"

# mail for the ATRN domain, so that there is a reversed session to cut
python3 - <<'PY' >"$T/queue.out" 2>&1
import os, smtplib
s = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=30)
for i in range(3):
    s.sendmail("src@sender.example", ["rcpt%d@%s" % (i, os.environ["ATRN_DOMAIN"])],
               "Subject: for the reversed session %d\r\n\r\nbody %d\r\n" % (i, i))
s.quit()
PY
check "3 messages queued for $ATRN_DOMAIN" test $? -eq 0

# ---- the torture -----------------------------------------------------------
python3 "$top_srcdir/tests/tools/teardown-torture.py" \
    --reps "${TORTURE_REPS:-30}" >"$T/torture.out" 2>&1
rc=$?
tap_feed "$T/torture.out"
check "teardown-torture.py ran to its end (exit $rc)" test $rc -eq 0
check "odmrd is alive after the torture" kill -0 "$odmrd_pid"

# ---- openssl s_client, the plain handshake that scanners make --------------
sc_fail=0
for port in "$ODMRS_PORT" ; do
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		timeout 10 openssl s_client -connect "127.0.0.1:$port" \
		    </dev/null >/dev/null 2>&1 || true
		kill -0 "$odmrd_pid" 2>/dev/null || { sc_fail=1; break; }
	done
done
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	for port in "$SMTP_PORT" "$ODMR_PORT"; do
		timeout 10 openssl s_client -starttls smtp -connect "127.0.0.1:$port" \
		    </dev/null >/dev/null 2>&1 || true
	done
	kill -0 "$odmrd_pid" 2>/dev/null || { sc_fail=1; break; }
done
check "openssl s_client </dev/null, 20 times against each of the three ports" \
    test $sc_fail -eq 0

# ---- clients that never read, and slowloris ---------------------------------
# ASan keeps freed memory in quarantine (256 MB), so RSS would measure the
# churn, not what is held: this part runs an odmrd without quarantine.
odmrd_stop
rc=$?
check "odmrd exits 0 on SIGTERM after the torture (exit $rc)" test $rc -eq 0
_asan=${ASAN_OPTIONS:-}
ASAN_OPTIONS="${_asan:+$_asan:}quarantine_size_mb=0"
export ASAN_OPTIONS
odmrd_start || { not_ok "odmrd starts again"; tap_done; }
ASAN_OPTIONS=$_asan
cat >"$T/slow.py" <<'PY'
"""Non-reading and slowloris clients against odmrd; prints TAP lines."""
import os, socket, sys, time
port = int(os.environ["SMTP_PORT"])
pid = int(sys.argv[1])
timeout = 4.0			# command_timeout above


def rss_kb():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def closed(s):
    """True once the server has closed s (EOF or reset), reading what came."""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


# 1. ten clients pipeline EHLO without reading
before = rss_kb()
socks = []
for i in range(10):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    socks.append(s)
t0 = time.time()
sent = 0
peak = before
gone_at = {}
while time.time() - t0 < timeout + 20 and len(gone_at) < len(socks):
    for i, s in enumerate(socks):
        if i in gone_at:
            continue
        try:
            sent += s.send(b"EHLO a.example\r\n" * 64)
        except BlockingIOError:
            pass
        except OSError:
            gone_at[i] = time.time() - t0
    peak = max(peak, rss_kb())
    time.sleep(0.02)
grew = (peak - before) / 1024.0
print("# non-readers: sent %d octets, RSS %d kB -> peak %d kB" % (sent, before, peak))
if grew < 10:
    print("ok - 10 clients that pipeline EHLO and never read: RSS grew %.1f MB (< 10)" % grew)
else:
    print("not ok - 10 non-reading clients grew RSS by %.1f MB" % grew)
if len(gone_at) == len(socks):
    print("ok - odmrd closed all 10 non-readers (%.1f-%.1f s after they connected)"
          % (min(gone_at.values()), max(gone_at.values())))
else:
    print("not ok - non-readers closed: %d of 10 in %g s" % (len(gone_at), timeout + 20))
for s in socks:
    s.close()

# 2. slowloris: one byte a second on 40 connections, never a whole line
socks = []
for i in range(40):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.setblocking(False)
    socks.append(s)
t0 = time.time()
gone = {}
while time.time() - t0 < timeout + 6 and len(gone) < len(socks):
    for i, s in enumerate(socks):
        if i in gone:
            continue
        if closed(s):
            gone[i] = time.time() - t0
            continue
        try:
            s.send(b"N")
        except OSError:
            gone[i] = time.time() - t0
    time.sleep(1.0 if len(gone) < len(socks) else 0)
if len(gone) == len(socks) and max(gone.values()) <= timeout + 3:
    print("ok - 40 slowloris clients (a byte a second) closed within command_timeout"
          " (%.1f-%.1f s)" % (min(gone.values()), max(gone.values())))
else:
    print("not ok - slowloris: %d of 40 closed, the last after %s s" %
          (len(gone), max(gone.values()) if gone else None))
for s in socks:
    s.close()

# 2b. a TLS handshake left half done is cut off at command_timeout
def half_open(port, starttls):
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.settimeout(10)
    if starttls:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO half.example\r\n")
        while f.readline()[3:4] == b"-":
            pass
        s.sendall(b"STARTTLS\r\n")
        f.readline()
    s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))	# and no more
    return s
for name, hport, st in (("STARTTLS", port, True),
                        ("implicit TLS", int(os.environ["ODMRS_PORT"]), False)):
    s = half_open(hport, st)
    t0 = time.time()
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    took = time.time() - t0
    if took <= timeout + 2:
        print("ok - %s handshake left half done: closed after %.1f s" % (name, took))
    else:
        print("not ok - %s half handshake: still open after %.1f s" % (name, took))
    s.close()

# 3. message text below data_min_rate gets 421 at the deadline
s = socket.create_connection(("127.0.0.1", port), 10)
f = s.makefile("rb")
greeting = f.readline()
if not greeting.startswith(b"220 "):
    print("not ok - slow text: greeted with %r" % greeting)
    sys.exit(1)
for c in (b"EHLO slow.example", b"MAIL FROM:<a@sender.example>",
          b"RCPT TO:<x@" + os.environ["ETRN_DOMAIN"].encode() + b">", b"DATA"):
    s.sendall(c + b"\r\n")
    while True:
        ln = f.readline()
        if ln[3:4] != b"-":
            break
    if not ln[:1] in (b"2", b"3"):
        print("not ok - slow text: %s got %r" % (c.decode(), ln))
        sys.exit(1)
s.setblocking(False)
t0 = time.time()
got = b""
while time.time() - t0 < 20:
    try:
        s.send(b"x")
    except OSError:
        break
    try:
        d = s.recv(4096)
        if not d:
            break
        got += d
    except BlockingIOError:
        pass
    time.sleep(0.5)
took = time.time() - t0
if got.startswith(b"421 4.4.2") and took < 4 + 3:
    print("ok - text at 2 octets/s (data_min_rate 1000): 421 4.4.2 after %.1f s" % took)
else:
    print("not ok - slow text: %r after %.1f s" % (got[:80], took))
s.close()
PY
python3 "$T/slow.py" "$odmrd_pid" >"$T/slow.out" 2>&1
rc=$?
tap_feed "$T/slow.out"
check "the slow clients' script ran all 6 of its cases (exit $rc)" \
    sh -c "[ $rc -eq 0 ] && [ \$(grep -c '^ok - \|^not ok - ' '$T/slow.out') -eq 6 ]"
# odmrd says how long it waited for each non-reader to read: command_timeout
grep 'reason="client does not read its replies"' "$(odmrd_log)" |
    sed -n 's/.*waited=\([0-9]*\)ms.*/\1/p' >"$T/waited"
check "odmrd closed each non-reader about command_timeout (4 s) after it stopped taking its commands ($(tr '\n' ' ' <"$T/waited")ms)" \
    awk 'BEGIN { n = 0 } { n++; if ($1 < 3000 || $1 > 5500) bad = 1 }
	END { exit !(n == 10 && !bad) }' "$T/waited"
check "odmrd greets a new client after all that" python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)
s.settimeout(2)
sys.exit(0 if s.recv(100).startswith(b"220 ") else 1)' "$SMTP_PORT"

# ---- the end -----------------------------------------------------------------
odmrd_stop
rc=$?
check "odmrd exits 0 on SIGTERM after the slow clients (exit $rc)" test $rc -eq 0
check "odmrctl check: the store is consistent" sh -c "'$ODMRCTL' -f '$T/odmrd.conf' check >'$T/check.out' 2>&1"
if grep -E 'ERROR: AddressSanitizer|runtime error:|ThreadSanitizer' "$(odmrd_log)" >/dev/null; then
	not_ok "sanitizer reports in odmrd's log:"
	grep -E -A5 'ERROR: AddressSanitizer|runtime error:|ThreadSanitizer' "$(odmrd_log)" | head -n 30 | sed 's/^/#   /'
else
	ok "no sanitizer report in odmrd's log"
fi

# ---- the loop watchdog -------------------------------------------------------
odmrd_conf loop_stall_timeout 2s
_from=$(($(wc -l <"$(odmrd_log)") + 1))
ODMRD_TEST_HOOKS=1
export ODMRD_TEST_HOOKS
if odmrd_start; then
	kill -USR2 "$odmrd_pid"
	_i=0
	while kill -0 "$odmrd_pid" 2>/dev/null && [ $_i -lt 300 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if kill -0 "$odmrd_pid" 2>/dev/null; then
		not_ok "a blocked loop is not detected within 30 s"
		odmrd_kill9
	else
		wait "$odmrd_pid"
		rc=$?
		odmrd_pid=""
		check "a blocked loop makes odmrd abort (exit $rc, want 134)" test $rc -eq 134
	fi
	check "the log says event=loop-stalled" sh -c \
	    "tail -n +$_from '$(odmrd_log)' | grep -q 'event=loop-stalled seconds=2'"
else
	not_ok "odmrd starts with ODMRD_TEST_HOOKS"
fi
unset ODMRD_TEST_HOOKS
tap_done
