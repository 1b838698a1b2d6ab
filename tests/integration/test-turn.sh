#!/bin/sh
# NAME
#	test-turn.sh - the delivery engine (turn_session) against real and
#	scripted customer servers
# SYNOPSIS
#	top_srcdir=... top_builddir=... sh tests/integration/test-turn.sh
# DESCRIPTION
#	Puts messages in a private store (tests/tools/queue-writer, whose
#	bodies are deterministic, and tests/tools/turn-enqueue for chosen
#	envelopes), then delivers them with tests/tools/turn-deliver, the
#	engine in its ETRN shape, to:
#	- smtp-sink, with and without PIPELINING: every message arrives
#	  byte for byte, nothing added;
#	- tests/tools/turn-customer.py, a strict scripted server: CHUNKING
#	  on and off, PIPELINING on and off, multi-chunk BDAT and long DATA,
#	  dot-stuffing, DSN parameters, a 550 and a 450 recipient, a refused
#	  MAIL, a hang-up in the text (the message stays queued and a second
#	  run delivers it), a stall (timeout), SIZE below a message, no
#	  SMTPUTF8, no 8BITMIME (downgrade), BINARYMIME, HELO only;
#	- a private Postfix instance on loopback (when run as root), which
#	  relays to smtp-sink.
#	The store is checked with odmrctl --json after each case.
#	Output is TAP (tests/tap.sh).

: "${top_srcdir:?set top_srcdir}" "${top_builddir:?set top_builddir}"
# shellcheck source=tests/tap.sh
. "$top_srcdir/tests/tap.sh"
# shellcheck source=tests/integration/postfix-lib.sh
. "$top_srcdir/tests/integration/postfix-lib.sh"

TD=$top_builddir/tests/tools/turn-deliver
TE=$top_builddir/tests/tools/turn-enqueue
QW=$top_builddir/tests/tools/queue-writer
CTL=$top_builddir/odmr/odmrctl
CUST=$top_srcdir/tests/tools/turn-customer.py

require_cmd python3 python3
require_cmd smtp-sink postfix
for _p in "$TD" "$TE" "$QW" "$CTL"; do
	if [ ! -x "$_p" ]; then
		not_ok "$_p is not built"
		tap_done
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/test-turn.XXXXXX") || exit 1
chmod 755 "$T"
pids=""
pf_dir=""
cleanup() {
	for _p in $pids; do kill "$_p" 2>/dev/null; done
	[ -n "$pf_dir" ] && postfix_stop "$pf_dir"
	if [ -n "${KEEP_T:-}" ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
S=$T/state
mkdir "$S"
printf 'state_dir = %s\n' "$S" >"$T/odmrd.conf"

# ctl ARGS... - odmrctl on the test store
ctl() {
	"$CTL" -f "$T/odmrd.conf" "$@"
}

# free_port - a TCP port nobody listens on
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# port_listens PORT - something accepts connections on 127.0.0.1:PORT
port_listens() {
	python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null
}

# wait_port PORT - until something listens on 127.0.0.1:PORT (20 s)
wait_port() {
	wait_until 20 port_listens "$1"
}

# customer NAME ARGS... - start turn-customer.py; sets CPORT and CPID
customer() {
	_n=$1; shift
	rm -f "$T/$_n.port"
	python3 "$CUST" --port-file "$T/$_n.port" --dump "$T/$_n" \
	    --state-file "$T/$_n.state" "$@" 2>"$T/$_n.err" &
	CPID=$!
	pids="$pids $CPID"
	wait_until 20 test -s "$T/$_n.port"
	CPORT=$(cat "$T/$_n.port")
}

# stop PID - stop a server started here
stop() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# sink NAME ARGS... - start smtp-sink dumping to $T/NAME; sets SPORT, SPID
sink() {
	_n=$1; shift
	mkdir -p "$T/$_n"
	chmod 777 "$T/$_n"
	SPORT=$(free_port)
	# smtp-sink refuses to run as root without -u
	_u=""
	[ "$(id -u)" -eq 0 ] && _u="-u nobody"
	# shellcheck disable=SC2086
	smtp-sink $_u "$@" -d "$T/$_n/%M." "127.0.0.1:$SPORT" 50 \
	    2>"$T/$_n.err" &
	SPID=$!
	pids="$pids $SPID"
	wait_port "$SPORT"
}

# deliver PORT [ARGS...] - turn-deliver for example.org; sets RC, output
# in $T/out (the key=value line) and $T/log (the log)
deliver() {
	_port=$1; shift
	"$TD" -s "$S" -d example.org "$@" "127.0.0.1:$_port" >"$T/out" \
	    2>"$T/log"
	RC=$?
	grep -E 'Sanitizer|runtime error' "$T/log" >>"$T/sanitizer"
}

# show_tail FILE - the end of a file as TAP comments
show_tail() {
	tail -n 15 "$1" | sed 's/^/#   /'
}

# expect_rc WANT DESCRIPTION - RC of the last deliver was WANT
expect_rc() {
	if [ "$RC" -eq "$1" ]; then ok "$2"
	else
		not_ok "$2 (exit $RC, want $1)"
		show_tail "$T/out"; show_tail "$T/log"
	fi
}

# pycheck DESCRIPTION PYTHON [ARGS...] - pass when PYTHON exits 0;
# it sees the test directory as T and the store id list as needed
pycheck() {
	_d=$1; _code=$2; shift 2
	if T="$T" CTL="$CTL" QW="$QW" python3 -c "$_code" "$@" \
	    >"$T/py.out" 2>&1; then
		ok "$_d"
	else
		not_ok "$_d"; show_tail "$T/py.out"
	fi
}

# queue_msgs DOMAIN - number of queued messages of DOMAIN
queue_msgs() {
	ctl --json queue | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(x["messages"] for x in d["domains"] if x["domain"] == sys.argv[1]))' "$1"
}

# expect_queue DOMAIN N DESCRIPTION - the domain holds N messages
expect_queue() {
	_got=$(queue_msgs "$1")
	if [ "$_got" = "$2" ]; then ok "$3"
	else not_ok "$3 ($_got messages queued, want $2)"; fi
}

# expect_log DESCRIPTION PATTERN - grep -E PATTERN in the last run's log
expect_log() {
	if grep -Eq -e "$2" "$T/log"; then ok "$1"
	else not_ok "$1 (no /$2/ in the log)"; show_tail "$T/log"; fi
}

# enqueue ARGS... < MESSAGE - turn-enqueue; prints the id
enqueue() {
	"$TE" -s "$S" "$@"
}

PY_COMMON='
import glob, json, os, subprocess, sys
T = os.environ["T"]
def qw_body(seed, index, size):
    return subprocess.run([os.environ["QW"], "--body", str(seed), str(index),
                           str(size)], check=True, capture_output=True).stdout
def show(qid):
    out = subprocess.run([os.environ["CTL"], "-f", T + "/odmrd.conf", "--json",
                          "show", qid], check=True, capture_output=True).stdout
    return json.loads(out)["message"]
def sink_messages(name):
    """smtp-sink dumps: (envelope lines, text with LF ends)"""
    out = []
    for f in sorted(glob.glob(T + "/" + name + "/*")):
        data = open(f, "rb").read()
        lines = data.split(b"\n")
        i = 0
        while not lines[i].startswith(b"Received: "):
            i += 1
        env = lines[:i]
        text = b"\n".join(lines[i + 3:])
        assert text.endswith(b"\n\n"), f
        out.append((env, text[:-1]))
    return out
def customer_messages(name):
    out = []
    for f in sorted(glob.glob(T + "/" + name + "/*.json")):
        out.append((json.load(open(f)), open(f[:-5] + ".eml", "rb").read()))
    return out
'

ctl domain add example.org --owner demo >/dev/null
ctl domain add example.net --owner other >/dev/null

# ---- smtp-sink, PIPELINING on and off ----

"$QW" -s "$S" -d example.org -n 20 -z 4096 -S 1 -a "$T/acks1" >/dev/null
"$QW" -s "$S" -d example.org -d example.net -n 1 -z 5000 -S 1 -i 100 \
    >/dev/null
sink sink1
deliver "$SPORT"
expect_rc 0 "smtp-sink with PIPELINING: every message delivered"
grep -q 'delivered=21 ' "$T/out" && ok "21 messages counted delivered" ||
    { not_ok "21 messages counted delivered"; show_tail "$T/out"; }
expect_queue example.org 0 "example.org's queue is empty afterwards"
expect_queue example.net 1 "example.net (not claimed) keeps its recipient"
pycheck "smtp-sink got every message byte for byte, nothing added" "$PY_COMMON"'
msgs = sink_messages("sink1")
assert len(msgs) == 21, len(msgs)
for env, text in msgs:
    rcpt = [l for l in env if l.startswith(b"X-Rcpt-Args: ")]
    assert len(rcpt) == 1 and rcpt[0].endswith(b"@example.org>"), env
    idx = int(rcpt[0].split(b"<user")[1].split(b"@")[0])
    size = 5000 if idx == 100 else 4096
    want = qw_body(1, idx, size).replace(b"\r\n", b"\n")
    assert text == want, ("differs", idx)
'
grep -q 'event=delivered id=[0-9A-F]* to=<user0@example.org> relay=\[127.0.0.1\]' \
    "$T/log" && ok "one event=delivered log line per message" ||
    { not_ok "one event=delivered log line per message"; show_tail "$T/log"; }
grep -q 'event=turn-end .*completed=yes delivered=21' "$T/log" &&
    ok "a summary line at the end" || not_ok "a summary line at the end"
pycheck "the flush claim is released and the pickup recorded" '
import json, os, subprocess
d = json.loads(subprocess.run([os.environ["CTL"], "-f", os.environ["T"] +
    "/odmrd.conf", "--json", "queue"], capture_output=True).stdout)
org = [x for x in d["domains"] if x["domain"] == "example.org"][0]
assert org["flush"] is None and org["last_pickup"], org
'
stop "$SPID"

"$QW" -s "$S" -d example.org -n 5 -z 4096 -S 1 -i 200 >/dev/null
sink sink2 -p
deliver "$SPORT"
expect_rc 0 "smtp-sink without PIPELINING: delivered"
pycheck "without PIPELINING too, byte for byte" "$PY_COMMON"'
msgs = sink_messages("sink2")
assert len(msgs) == 5, len(msgs)
for env, text in msgs:
    rcpt = [l for l in env if l.startswith(b"X-Rcpt-Args: ")][0]
    idx = int(rcpt.split(b"<user")[1].split(b"@")[0])
    assert text == qw_body(1, idx, 4096).replace(b"\r\n", b"\n"), idx
'
expect_queue example.org 0 "queue empty after the run without PIPELINING"
stop "$SPID"

# ---- a strict scripted customer: CHUNKING and PIPELINING on and off ----

# messages for each mode: a 3 MiB one (3 BDAT chunks, 12 DATA writes),
# one with leading dots and DSN parameters
mkmsgs() {
	"$QW" -s "$S" -d example.org -n 1 -z 3M -S 2 -i "$1" >/dev/null
	printf 'Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n' |
	    enqueue -f sender@example.net -R hdrs -e ENV+2B1 \
	    -r dot@example.org -N SUCCESS,FAILURE -O 'rfc822;dot@example.org' \
	    >/dev/null
}

mode=0
for opts in "" "--no-chunking" "--no-pipelining" \
    "--no-pipelining --no-chunking"; do
	mode=$((mode + 1))
	name=cust$mode
	mkmsgs $((300 + mode))
	# shellcheck disable=SC2086
	customer "$name" $opts
	deliver "$CPORT"
	expect_rc 0 "customer ${opts:-with everything}: delivered"
	want_via=BDAT
	case "$opts" in *--no-chunking*) want_via=DATA ;; esac
	want_pipe=1
	case "$opts" in *--no-pipelining*) want_pipe=0 ;; esac
	pycheck "customer ${opts:-with everything}: $want_via, pipelined=$want_pipe, byte for byte, DSN" \
	    "$PY_COMMON"'
via, pipe, idx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
msgs = customer_messages(sys.argv[4])
assert len(msgs) == 2, len(msgs)
big = [m for m in msgs if m[0]["rcpts"][0].startswith("RCPT TO:<user")][0]
dot = [m for m in msgs if m[0]["rcpts"][0].startswith("RCPT TO:<dot@")][0]
for env, text in msgs:
    assert env["via"] == via, env
    assert not env["unsolicited"], env
    assert (env["pipelined"] > 0) == bool(pipe), env
    assert env["mail"].startswith("MAIL FROM:<sender@example.net>"), env
assert big[1] == qw_body(2, idx, 3 * 1024 * 1024), "3 MiB text differs"
if via == "BDAT":
    assert big[0]["chunks"] == 3, big[0]
assert dot[1] == b"Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\nend\r\n", dot[1]
assert dot[0]["mail"] == "MAIL FROM:<sender@example.net> RET=HDRS ENVID=ENV+2B1", dot[0]
assert dot[0]["rcpts"] == ["RCPT TO:<dot@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;dot@example.org"], dot[0]
' "$want_via" "$want_pipe" $((300 + mode)) "$name"
	expect_queue example.org 0 "customer ${opts:-with everything}: queue empty"
	stop "$CPID"
done

# ---- recipients refused (550) and deferred (450) ----

id=$(printf 'Subject: three\r\n\r\nhello\r\n' | enqueue -f s@example.net \
    -r ok@example.org -r bad@example.org -r later@example.org)
customer rcpt --reject bad@example.org --defer later@example.org
deliver "$CPORT"
expect_rc 1 "550 and 450 recipients: exit 1 (something deferred)"
grep -q 'rcpt_delivered=1 rcpt_deferred=1 rcpt_failed=1' "$T/out" &&
    ok "one recipient each delivered, deferred, failed" ||
    { not_ok "one recipient each delivered, deferred, failed"; show_tail "$T/out"; }
pycheck "the store: delivered, failed with the 550 text, queued with the 450" \
    "$PY_COMMON"'
m = show(sys.argv[1])
st = {r["address"]: r for r in m["recipients"]}
assert st["ok@example.org"]["state"] == "delivered", st
assert st["bad@example.org"]["state"] == "failed", st
assert st["bad@example.org"]["last_error"].startswith("550 5.1.1"), st
assert st["later@example.org"]["state"] == "queued", st
assert st["later@example.org"]["attempts"] == 1, st
assert st["later@example.org"]["last_error"].startswith("450 4.2.0"), st
' "$id"
grep -q "event=failed id=$id to=<bad@example.org> .*reply=\"550 5.1.1" "$T/log" &&
    grep -q "event=deferred id=$id to=<later@example.org>" "$T/log" &&
    ok "event=failed and event=deferred log lines" ||
    { not_ok "event=failed and event=deferred log lines"; show_tail "$T/log"; }
stop "$CPID"
customer rcpt2
deliver "$CPORT"
expect_rc 0 "a second run delivers the deferred recipient"
expect_queue example.org 0 "queue empty after the retry"
stop "$CPID"

# ---- MAIL refused: every recipient has the reply, then RSET ----

id=$(printf 'Subject: x\r\n\r\nx\r\n' | enqueue -f s@example.net \
    -r a@example.org -r b@example.org)
customer mailno --mail-reply "550 5.7.1 sender refused"
deliver "$CPORT"
expect_rc 0 "refused MAIL: completed, nothing deferred"
expect_log "refused MAIL: both recipients failed with its reply" \
    "event=failed id=$id to=<a@example.org>,<b@example.org> .*reply=\"550 5.7.1 sender refused\""
pycheck "refused MAIL: RSET sent, nothing delivered" "$PY_COMMON"'
st = json.load(open(T + "/mailno.state"))
assert st["rset"] == 1 and st["n"] == 0, st
'
expect_queue example.org 0 "refused MAIL: failed recipients leave the queue"
stop "$CPID"

# ---- transactions pipelined back to back (RSET in front of each) ----

# win_msgs - eight messages in arrival order: delivered, every recipient
# refused (the BDAT or DATA then fails and the customer's transaction
# stays open: without the RSET the next MAIL would be "nested"), sender
# refused, text refused, one recipient deferred, three delivered; prints
# the ids
win_msgs() {
	for _r in ok1 bad ok3 tx ok5 ok6 ok7 ok8; do
		_f=s@example.net
		_x=""
		case $_r in
		ok3) _f=rs@example.net ;;
		ok5) _x="-r later@example.org" ;;
		esac
		# shellcheck disable=SC2086
		printf 'Subject: %s\r\n\r\nbody of %s\r\n' "$_r" "$_r" |
		    enqueue -f "$_f" -r "$_r@example.org" $_x
	done | tr '\n' ' '
}

for opts in "" "--no-chunking"; do
	ids=$(win_msgs)
	name=win${opts:+-data}
	# shellcheck disable=SC2086
	customer "$name" $opts --reject bad@example.org --defer later@example.org \
	    --reject-sender rs@example.net --reject-text tx@example.org
	deliver "$CPORT"
	expect_rc 1 "pipelined ${opts:-(BDAT)}: exit 1 (one recipient deferred)"
	grep -q 'rcpt_delivered=5 rcpt_deferred=1 rcpt_failed=3' "$T/out" &&
	    ok "pipelined ${opts:-(BDAT)}: 5 delivered, 1 deferred, 3 failed" ||
	    { not_ok "pipelined ${opts:-(BDAT)}: 5 delivered, 1 deferred, 3 failed"; show_tail "$T/out"; }
	# shellcheck disable=SC2086
	pycheck "pipelined ${opts:-(BDAT)}: each outcome where it belongs, none nested, sent ahead" \
	    "$PY_COMMON"'
ids = sys.argv[2:]
st = json.load(open(T + "/" + sys.argv[1] + ".state"))
assert st["nested"] == 0, st
assert st["n"] == 5, st
# a window: the next MAIL was there before an end-of-text reply
assert st["ahead_max"] >= 1, st
assert st["ahead_max"] <= 8, st
got = [m[1].split(b"\r\n")[0] for m in customer_messages(sys.argv[1])]
assert got == [b"Subject: ok1", b"Subject: ok5", b"Subject: ok6",
               b"Subject: ok7", b"Subject: ok8"], got
# failed recipients leave the store: their log lines say why
log = open(T + "/log").read()
for i, to, reply in ((1, "bad", "550 5.1.1"), (2, "ok3", "550 5.7.1 sender"),
                     (3, "tx", "554 5.7.1 content")):
    want = "event=failed id=%s to=<%s@example.org> " % (ids[i], to)
    line = [l for l in log.splitlines() if want in l]
    assert len(line) == 1 and ("reply=\"" + reply) in line[0], (want, line)
r5 = {r["address"]: r for r in show(ids[4])["recipients"]}
assert r5["ok5@example.org"]["state"] == "delivered", r5
assert r5["later@example.org"]["state"] == "queued", r5
assert r5["later@example.org"]["last_error"].startswith("450 4.2.0"), r5
' "$name" $ids
	stop "$CPID"
	# the deferred one, and the DSN domain's bounces, are not for here
	customer "$name-2"
	deliver "$CPORT"
	expect_rc 0 "pipelined ${opts:-(BDAT)}: a second run delivers the deferred recipient"
	expect_queue example.org 0 "pipelined ${opts:-(BDAT)}: queue empty"
	stop "$CPID"
done

# a customer refusing the RSET: the session ends, nothing is lost
for _i in 1 2 3; do
	printf 'Subject: r%s\r\n\r\nx\r\n' "$_i" | enqueue -f s@example.net \
	    -r "r$_i@example.org" >/dev/null
done
customer norset --rset-reply "502 5.5.1 RSET not here"
deliver "$CPORT"
expect_rc 2 "RSET refused: exit 2"
grep -q 'error="customer refused RSET: 502 5.5.1 RSET not here"' "$T/out" &&
    ok "RSET refused: said so" ||
    { not_ok "RSET refused: said so"; show_tail "$T/out"; }
expect_queue example.org 2 "RSET refused: the first delivered, two still queued"
stop "$CPID"
customer norset-2
deliver "$CPORT"
expect_rc 0 "RSET refused: the next run delivers the rest"
expect_queue example.org 0 "RSET refused: queue empty"
stop "$CPID"

# a customer vanishing with a window on the wire: at least once each
for _i in 1 2 3 4 5 6; do
	printf 'Subject: h%s\r\n\r\nx\r\n' "$_i" | enqueue -f s@example.net \
	    -r "h$_i@example.org" >/dev/null
done
customer hangwin --hangup-after 3
deliver "$CPORT"
expect_rc 2 "hang-up with transactions in flight: exit 2"
pycheck "hang-up with transactions in flight: 2 delivered, 4 still queued" \
    "$PY_COMMON"'
out = subprocess.run([os.environ["CTL"], "-f", T + "/odmrd.conf", "--json",
                      "queue", "example.org"], check=True,
                     capture_output=True).stdout
q = json.loads(out)
msgs = q["messages"] if "messages" in q else q["domains"][0]["messages"]
n = len(msgs) if isinstance(msgs, list) else msgs
assert n == 4, q
'
stop "$CPID"
customer hangwin-2
deliver "$CPORT"
expect_rc 0 "hang-up with transactions in flight: the next run delivers"
pycheck "hang-up with transactions in flight: every message arrived, the one unanswered twice" \
    "$PY_COMMON"'
got = sorted(m[1].split(b"\r\n")[0] for m in customer_messages("hangwin") +
             customer_messages("hangwin-2"))
want = sorted([b"Subject: h%d" % i for i in range(1, 7)] + [b"Subject: h3"])
assert got == want, got
'
expect_queue example.org 0 "hang-up with transactions in flight: queue empty"
stop "$CPID"

# ---- hang-up in the text: stays queued, a second run delivers ----

for opts in "--no-chunking" ""; do
	id=$("$QW" -s "$S" -d example.org -n 1 -z 1M -S 3 -i 400 -a "$T/a" \
	    >/dev/null; cut -d' ' -f1 "$T/a"; rm -f "$T/a")
	# shellcheck disable=SC2086
	customer hang $opts --hangup-text 100000
	deliver "$CPORT"
	expect_rc 2 "hang-up in the text ${opts:-(BDAT)}: exit 2"
	# a close with our text unread is a reset (ECONNRESET) on Linux
	if grep -Eq 'error="(customer closed the connection|connection error) while (sending|waiting for)' "$T/out"; then
		ok "hang-up: a clear error ($(sed 's/.*error=//' "$T/out"))"
	else
		not_ok "hang-up: a clear error"; show_tail "$T/out"
	fi
	pycheck "hang-up: the message stays queued, one attempt" "$PY_COMMON"'
m = show(sys.argv[1])
r = m["recipients"][0]
assert r["state"] == "queued" and r["attempts"] == 1, r
assert " while " in r["last_error"], r
' "$id"
	deliver "$CPORT"
	expect_rc 0 "hang-up ${opts:-(BDAT)}: the second run delivers it"
	expect_queue example.org 0 "hang-up: queue empty after the second run"
	stop "$CPID"
done

# ---- a customer that stops answering: timeout ----

"$QW" -s "$S" -d example.org -n 1 -z 4096 -S 3 -i 500 >/dev/null
customer stall --stall-dot --no-chunking
deliver "$CPORT" -T 1500
expect_rc 2 "a stalled customer: exit 2"
grep -q 'error="timeout (1500 ms) while waiting for the DATA reply"' "$T/out" &&
    ok "stall: timeout while waiting for the DATA reply" ||
    { not_ok "stall: timeout while waiting for the DATA reply"; show_tail "$T/out"; }
expect_queue example.org 1 "stall: the message stays queued"
stop "$CPID"
customer unstall
deliver "$CPORT"
expect_rc 0 "after the stall a new run delivers"
stop "$CPID"

# ---- SIZE, SMTPUTF8, 8BITMIME, BINARYMIME, HELO ----

"$QW" -s "$S" -d example.org -n 1 -z 4096 -S 4 -i 600 >/dev/null
"$QW" -s "$S" -d example.org -n 1 -z 20000 -S 4 -i 601 -a "$T/big" \
    >/dev/null
big=$(cut -d' ' -f1 "$T/big")
customer size --size 10000
deliver "$CPORT"
expect_rc 0 "SIZE 10000: completed"
pycheck "SIZE: only the 4 KiB message went, with SIZE=4096" "$PY_COMMON"'
msgs = customer_messages("size")
assert len(msgs) == 1 and "SIZE=4096" in msgs[0][0]["mail"], msgs
'
expect_log "SIZE: the 20000-octet message failed with 5.3.4, not sent" \
    "event=failed id=$big .*reply=\"5.3.4 message too big for the customer's SIZE limit"
expect_queue example.org 0 "SIZE: queue empty"
stop "$CPID"

u8=$(printf 'Subject: utf8\r\n\r\nhello\r\n' | enqueue -u -f 's@example.net' \
    -r 'u@example.org')
customer noutf8 --no-smtputf8
deliver "$CPORT"
pycheck "no SMTPUTF8 at the customer: nothing sent" "$PY_COMMON"'
assert customer_messages("noutf8") == []
'
expect_log "no SMTPUTF8: failed with 5.6.7" "event=failed id=$u8 .*reply=\"5.6.7 "
stop "$CPID"
printf 'Subject: utf8\r\n\r\nhello\r\n' | enqueue -u -f 's@example.net' \
    -r 'u@example.org' >/dev/null
customer utf8
deliver "$CPORT"
pycheck "SMTPUTF8 at the customer: MAIL carries SMTPUTF8" "$PY_COMMON"'
(env, text), = customer_messages("utf8")
assert env["mail"].endswith(" SMTPUTF8"), env
'
stop "$CPID"

EIGHT='Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nSubject: 8bit\r\n\r\nh\303\251llo w\303\266rld\r\n'
printf "$EIGHT" | enqueue -b 8bitmime -f s@example.net -r e@example.org \
    >/dev/null
customer eight
deliver "$CPORT"
pycheck "8BITMIME customer: BODY=8BITMIME, octets as stored" "$PY_COMMON"'
(env, text), = customer_messages("eight")
assert "BODY=8BITMIME" in env["mail"], env
assert text == b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nSubject: 8bit\r\n\r\nh\xc3\xa9llo w\xc3\xb6rld\r\n", text
'
stop "$CPID"
printf "$EIGHT" | enqueue -b 8bitmime -f s@example.net -r e@example.org \
    >/dev/null
customer seven --no-8bitmime --no-binarymime
deliver "$CPORT"
expect_rc 0 "no 8BITMIME at the customer: delivered"
pycheck "no 8BITMIME: converted to 7 bits, no BODY parameter" "$PY_COMMON"'
(env, text), = customer_messages("seven")
assert "BODY=" not in env["mail"], env
assert not env["eightbit"] and all(b < 128 for b in text), text
assert b"Content-Transfer-Encoding: 8bit" not in text, text
'
grep -q 'conversion=8bit-to-7bit' "$T/log" && ok "the conversion is logged" ||
    not_ok "the conversion is logged"
stop "$CPID"

bin=$(printf 'Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\000\001\nbare\rlf\n\377' |
    enqueue -b binarymime -f s@example.net -r b@example.org)
customer nobin --no-chunking
deliver "$CPORT"
pycheck "BINARYMIME without CHUNKING at the customer: nothing sent" \
    "$PY_COMMON"'
assert customer_messages("nobin") == []
'
expect_log "BINARYMIME without CHUNKING: failed with 5.6.3" \
    "event=failed id=$bin .*reply=\"5.6.3 "
stop "$CPID"
printf 'Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\000\001\nbare\rlf\n\377' |
    enqueue -b binarymime -f s@example.net -r b@example.org >/dev/null
customer bin
deliver "$CPORT"
pycheck "BINARYMIME with CHUNKING: BDAT, BODY=BINARYMIME, octets as stored" \
    "$PY_COMMON"'
(env, text), = customer_messages("bin")
assert env["via"] == "BDAT" and "BODY=BINARYMIME" in env["mail"], env
assert text == b"Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\nbare\rlf\n\xff", text
'
stop "$CPID"

"$QW" -s "$S" -d example.org -n 2 -z 4096 -S 5 >/dev/null
customer helo --no-ehlo
deliver "$CPORT"
expect_rc 0 "EHLO refused: HELO, delivered"
pycheck "HELO customer: plain MAIL and RCPT, DATA, no extension used" \
    "$PY_COMMON"'
msgs = customer_messages("helo")
assert len(msgs) == 2, msgs
for env, text in msgs:
    assert env["via"] == "DATA" and env["mail"] == "MAIL FROM:<sender@example.net>", env
    assert not env["unsolicited"], env
st = json.load(open(T + "/helo.state"))
assert st["helo"] == 1 and st["quit"] == 1, st
'
stop "$CPID"
expect_queue example.org 0 "every case leaves example.org's queue empty"

# ---- a real Postfix as the customer ----

if [ "$(id -u)" -ne 0 ]; then
	not_ok "Postfix as the customer needs root (run make check as root)"
else
	sink pfsink
	PF=$T/pf
	pf_port=$(free_port)
	pf_dir=$PF
	if postfix_setup "$PF" "$pf_port" &&
	    postfix_conf "$PF" 'myhostname = customer.test' \
		'relay_domains = example.org' \
		"transport_maps = inline:{ example.org=smtp:[127.0.0.1]:$SPORT }" &&
	    postfix_start "$PF"; then
		"$QW" -s "$S" -d example.org -n 10 -z 4096 -S 6 >/dev/null
		"$QW" -s "$S" -d example.org -n 1 -z 2M -S 6 -i 50 >/dev/null
		deliver "$pf_port"
		expect_rc 0 "Postfix as the customer: delivered"
		grep -q 'extensions=PIPELINING.*CHUNKING' "$T/log" &&
		    ok "Postfix offered PIPELINING and CHUNKING" ||
		    { not_ok "Postfix offered PIPELINING and CHUNKING"; show_tail "$T/log"; }
		expect_queue example.org 0 "Postfix: queue empty"
		_i=0
		while [ "$(ls "$T/pfsink" | wc -l)" -lt 11 ] && [ $_i -lt 200 ]; do
			sleep 0.1; _i=$((_i + 1))
		done
		pycheck "Postfix relayed all 11 texts unchanged below its Received:" \
		    "$PY_COMMON"'
msgs = sink_messages("pfsink")
assert len(msgs) == 11, len(msgs)
for env, text in msgs:
    # Postfix adds its own Received: field; ours must add nothing
    lines = text.split(b"\n")
    assert lines[0].startswith(b"Received: from turn-deliver.test"), lines[:3]
    i = 1
    while lines[i].startswith((b"\t", b" ")):
        i += 1
    rest = b"\n".join(lines[i:])
    subj = [l for l in lines if l.startswith(b"Subject: queue-writer")][0]
    idx, size = int(subj.split()[5]), int(subj.split()[7])
    assert rest == qw_body(6, idx, size).replace(b"\r\n", b"\n"), idx
'
	else
		not_ok "Postfix could not start"; show_tail "$PF/start.log"
	fi
fi

if [ -s "$T/sanitizer" ]; then
	not_ok "a sanitizer spoke in some run"; show_tail "$T/sanitizer"
else
	ok "no sanitizer report in any turn-deliver run"
fi

tap_done
