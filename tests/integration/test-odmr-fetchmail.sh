#!/bin/sh
# NAME
#	test-odmr-fetchmail.sh - fetchmail --protocol ODMR collects from odmrd
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-odmr-fetchmail.sh
# DESCRIPTION
#	fetchmail 6.4 is the customer-side client SPEC.md promises to work
#	with. Its ODMR mode sends EHLO, AUTH CRAM-MD5 (the only mechanism it
#	speaks), "ATRN d1,d2" and, after the 250, relays the reversed
#	session line by line to its smtphost. It never uses STARTTLS on the
#	ODMR port: TLS is only the implicit kind ("ssl", odmrs_listen).
#
#	Three pickups, each with its own rcfile (mode 0600, in a private
#	HOME and FETCHMAILHOME):
#	1. plain ODMR, fetchdomains example.org, smtphost smtp-sink -d:
#	   every dump file must hold the stored text of its message (smtp-sink
#	   writes LF line ends and one extra empty line; that is undone before
#	   the comparison) with the right envelope, and example.net's mail
#	   must stay queued;
#	2. plain ODMR to a private Postfix 3.7 instance (loopback, its own
#	   config/queue/data directories) that puts everything for
#	   example.org on hold: "postqueue -p" must list every message as
#	   held, and "postcat -bh" of each must be the stored text after
#	   Postfix's Received: header;
#	3. implicit TLS to odmrs_listen ("ssl", "sslcertck", "sslcertfile"
#	   with the test certificate, "sslcommonname mx.odmr.test"),
#	   fetchdomains example.org,example.net, smtphost smtp-sink.
#	After each pickup the fetched queues are empty. fetchmail runs as
#	"fetchmail -v -N -d0 -f RC" under "timeout 60".
#	KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"
. "$top_srcdir/tests/integration/postfix-lib.sh"

require_cmd fetchmail fetchmail
require_cmd smtp-sink postfix
require_cmd postfix postfix
require_cmd postqueue postfix
require_cmd postcat postfix
require_cmd timeout coreutils
require_cmd python3 python3
odmrd_setup
ODMRS_PORT=$(free_port)
odmrd_conf odmrs_listen "127.0.0.1:$ODMRS_PORT"
odmrd_conf bounce_relay "127.0.0.1:$(free_port)"
export T SMTP_PORT ODMRCTL
FMHOME=$T/fmhome
mkdir -p "$FMHOME" && chmod 700 "$FMHOME"
sink_pid=""
odmrd_extra_cleanup='[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; [ -n "${PF:-}" ] && postfix_stop "$PF"'
# Postfix's daemons and smtp-sink (-u nobody) must reach their directories
chmod 711 "$T"

printf 'secret\n' | octl user add alice >"$T/setup.out" 2>&1 &&
    octl domain add example.org --owner alice >>"$T/setup.out" 2>&1 &&
    octl domain add example.net --owner alice >>"$T/setup.out" 2>&1
if [ $? -eq 0 ]; then ok "account alice with example.org and example.net"
else not_ok "setup: $(tr '\n' '|' <"$T/setup.out")"; fi
if odmrd_start; then ok "odmrd starts"; else not_ok "odmrd starts"; tap_done; fi

cat >"$T/fm.py" <<'PY'
"""Queue mail and compare what the customer's MTA got with the stored text
(what test-odmr-fetch.sh does too is in tests/tools/site_check.py)."""
import json, os, subprocess, sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.environ["top_srcdir"] + "/tests/tools")
from site_check import ok, send, stored, mid_of, same, empty, queued

# fetchmail's own message bodies: no ". " line, a smaller "big"
DOTS = b"first\r\n.one dot\r\n..two dots\r\n.\r\n x\r\nlast\r\n"
BIG_LINES = 2000


def after_received(text):
    """The lines after the first Received: field (with its continuation lines)."""
    lines = text.split(b"\n")
    i = next(i for i, ln in enumerate(lines) if ln.startswith(b"Received:"))
    i += 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    return lines[:i], b"\n".join(lines[i:])


def sink(label, d, *ids):
    """smtp-sink -d dumps in D against the stored messages IDS."""
    want = stored(ids)
    files = sorted(os.listdir(d)) if os.path.isdir(d) else []
    ok(len(files) == len(ids), "%s: smtp-sink dumped %d messages" % (label, len(ids)), files)
    seen = {}
    for f in files:
        raw = open(os.path.join(d, f), "rb").read()
        head, rest = after_received(raw)
        seen.setdefault(mid_of(rest), []).append((head, rest, f))
    for mid, meta in want.items():
        got = seen.get(mid, [])
        if not ok(len(got) == 1, "%s: %s arrived once" % (label, meta["id"]), "%d times" % len(got)):
            continue
        head, rest, f = got[0]
        # smtp-sink writes LF line ends and adds one empty line at the end
        same("%s: %s dumped byte for byte as stored (CRLF as LF)" % (label, meta["id"]),
             rest, meta["data"].replace(b"\r\n", b"\n") + b"\n")
        mail = [ln for ln in head if ln.startswith(b"X-Mail-Args: ")]
        rcpt = sorted(ln[len(b"X-Rcpt-Args: "):].split(b" ")[0].decode().strip("<>")
                      for ln in head if ln.startswith(b"X-Rcpt-Args: "))
        ok(len(mail) == 1 and mail[0][13:].split(b" ")[0] == ("<%s>" % meta["sender"]).encode()
           and rcpt == sorted(meta["rcpts"]), "%s: %s envelope %s -> %s" % (label, meta["id"], meta["sender"], ",".join(meta["rcpts"])),
           head)


def postfix(label, pf, *ids):
    """Every message held in the private Postfix, with the stored text after its Received:."""
    want = stored(ids)
    q = subprocess.run(["postqueue", "-c", pf, "-j"], capture_output=True, timeout=30)
    entries = [json.loads(ln) for ln in q.stdout.decode().splitlines() if ln.strip()]
    held = [e for e in entries if e.get("queue_name") == "hold"]
    ok(len(held) == len(ids) and len(entries) == len(ids),
       "%s: Postfix holds %d messages (postqueue -j)" % (label, len(ids)),
       [(e.get("queue_id"), e.get("queue_name")) for e in entries])
    seen = {}
    for e in held:
        c = subprocess.run(["postcat", "-c", pf, "-bh", "-q", e["queue_id"]], capture_output=True, timeout=30)
        head, rest = after_received(c.stdout)
        seen.setdefault(mid_of(rest), []).append((e, rest))
    for mid, meta in want.items():
        got = seen.get(mid, [])
        if not ok(len(got) == 1, "%s: %s arrived once" % (label, meta["id"]), "%d times" % len(got)):
            continue
        e, rest = got[0]
        same("%s: %s held byte for byte as stored (postcat -bh, CRLF as LF)" % (label, meta["id"]),
             rest, meta["data"].replace(b"\r\n", b"\n"))
        rc = sorted(r["address"] for r in e.get("recipients", []))
        ok(e.get("sender") == meta["sender"] and rc == sorted(meta["rcpts"]),
           "%s: %s envelope in Postfix" % (label, meta["id"]), e)


if __name__ == "__main__":
    f = {"send": lambda: send(sys.argv[2], sys.argv[3].split(","), sys.argv[4], "fetchmail",
                              dots=DOTS, big_lines=BIG_LINES),
         "sink": lambda: sink(sys.argv[2], sys.argv[3], *sys.argv[4:]),
         "postfix": lambda: postfix(sys.argv[2], sys.argv[3], *sys.argv[4:]),
         "empty": lambda: empty(*sys.argv[2:], where="in odmrd"),
         "queued": lambda: queued(sys.argv[2], int(sys.argv[3]), where="")}[sys.argv[1]]
    f()
PY

# fm FILE ARGS... - run the python side; its ok/not ok lines become cases
fm() {
	python3 "$T/fm.py" "$@" >"$T/fm.out" 2>&1
	_rc=$?
	tap_feed "$T/fm.out"
	return $_rc
}

# queue_msg TAG RCPTS KIND - queue one message; its id is appended to $ids
queue_msg() {
	if _id=$(python3 "$T/fm.py" send "$1" "$2" "$3" 2>"$T/send.err"); then
		ids="$ids $_id"
	else
		not_ok "queue $1 for $2: $(tail -n 3 "$T/send.err" | tr '\n' '|')"
	fi
}

# run_fetchmail NAME - fetchmail -v -N -d0 -f $FMHOME/NAME.rc, transcript in $T/NAME.fm
run_fetchmail() {
	chmod 600 "$FMHOME/$1.rc"
	HOME=$FMHOME FETCHMAILHOME=$FMHOME timeout 60 fetchmail -v -N -d0 -f "$FMHOME/$1.rc" >"$T/$1.fm" 2>&1
	fm_rc=$?
}

# fm_ok NAME DESC - fetchmail exited 0 and said "Turnaround now"
fm_ok() {
	if [ "$fm_rc" -eq 0 ] && grep -q 'Turnaround now' "$T/$1.fm"; then
		ok "$2: fetchmail exit 0 after the turnaround"
	else
		not_ok "$2: fetchmail exit $fm_rc: $(grep -v '^fetchmail: ODMR[<>] ' "$T/$1.fm" | tail -n 8 | tr '\n' '|')"
	fi
}

# ---- 1. plain ODMR to smtp-sink ------------------------------------------
ids=""
queue_msg plain1 u1@example.org plain
queue_msg dots u2@example.org dots
queue_msg eight u3@example.org 8bit
queue_msg big u4@example.org,u5@example.org big
sink_ids=$ids
ids=""
queue_msg net1 n1@example.net plain
net_ids=$ids
start_sink "$T/sink1"
cat >"$FMHOME/plain.rc" <<EOF
poll 127.0.0.1 service $ODMR_PORT protocol ODMR
    user alice password secret
    fetchdomains example.org
    smtphost 127.0.0.1/$SINK_PORT
EOF
run_fetchmail plain
fm_ok plain "ODMR to smtp-sink"
check "fetchmail sent 'ATRN example.org' and got 250" \
    grep -q 'ODMR< 250 OK now reversing the connection' "$T/plain.fm"
odmrd_wait_unclaimed example.org
stop_sink
fm sink "fetchmail+smtp-sink" "$T/sink1" $sink_ids
fm empty example.org
fm queued example.net 1

# ---- 2. plain ODMR to a private Postfix (hold) -----------------------------
PF=$T/pf
PFPORT=$(free_port)
if postfix_setup "$PF" "$PFPORT" &&
    postfix_conf "$PF" 'myhostname = customer-mta.test' \
	'relay_domains = example.org, example.net' \
	'smtpd_recipient_restrictions = check_recipient_access inline:{ example.org=HOLD, example.net=HOLD }' &&
    postfix_start "$PF"; then
	ok "private Postfix starts (config $PF, port $PFPORT)"
	ids=""
	queue_msg pf1 p1@example.org plain
	queue_msg pf2 p2@example.org,p3@example.org dots
	queue_msg pf3 p4@example.org 8bit
	queue_msg pf4 p5@example.org big
	pf_ids=$ids
	cat >"$FMHOME/postfix.rc" <<EOF
poll 127.0.0.1 service $ODMR_PORT protocol ODMR
    user alice password secret
    fetchdomains example.org
    smtphost 127.0.0.1/$PFPORT
EOF
	run_fetchmail postfix
	fm_ok postfix "ODMR to Postfix"
	odmrd_wait_unclaimed example.org
	# until cleanup has filed the four into the hold queue, and postlogd
	# (which writes on its own time) has logged their holds
	postfix_wait_held "$PF" 4 || diag "Postfix holds $(postfix_held "$PF") of 4"
	fm postfix "fetchmail+Postfix" "$PF/conf" $pf_ids
	wait_until 20 sh -c "[ \$(grep -c 'hold: RCPT from' '$PF/maillog') -ge 4 ]"
	check "Postfix logged a hold for each message" \
	    sh -c "[ \$(grep -c 'hold: RCPT from' '$PF/maillog') -eq 4 ]"
	fm empty example.org
else
	not_ok "private Postfix starts: $(tr '\n' '|' <"$PF/start.log")"
fi

# ---- 3. implicit TLS (odmrs_listen), two domains ----------------------------
ids=""
queue_msg tls1 t1@example.org plain
queue_msg tls2 t2@example.org 8bit
tls_ids="$ids $net_ids"
# fetchmail 6.4 checks the certificate (sslcertck is its default) and the
# name: it compares the CN with the poll name, 127.0.0.1, unless told
# sslcommonname; without the test CA, or without sslcommonname, it must
# give up before AUTH
cat >"$FMHOME/noca.rc" <<EOF
poll 127.0.0.1 service $ODMRS_PORT protocol ODMR
    user alice password secret
    fetchdomains example.org,example.net
    smtphost 127.0.0.1/$(free_port)
    ssl sslproto tls1.2+ sslcertck sslcommonname mx.odmr.test
EOF
run_fetchmail noca
if [ "$fm_rc" -ne 0 ] && grep -q 'certificate verification error' "$T/noca.fm" && ! grep -q 'ODMR> AUTH' "$T/noca.fm"; then
	ok "fetchmail ssl without the test CA: certificate refused before AUTH (exit $fm_rc)"
else
	not_ok "fetchmail ssl without the test CA: exit $fm_rc: $(tail -n 5 "$T/noca.fm" | tr '\n' '|')"
fi
cat >"$FMHOME/noname.rc" <<EOF
poll 127.0.0.1 service $ODMRS_PORT protocol ODMR
    user alice password secret
    fetchdomains example.org,example.net
    smtphost 127.0.0.1/$(free_port)
    ssl sslproto tls1.2+ sslcertck sslcertfile $T/cert.pem
EOF
run_fetchmail noname
if [ "$fm_rc" -ne 0 ] && grep -q 'CommonName mismatch' "$T/noname.fm" && ! grep -q 'ODMR> AUTH' "$T/noname.fm"; then
	ok "fetchmail ssl without sslcommonname: 'CommonName mismatch: mx.odmr.test != 127.0.0.1' before AUTH"
else
	not_ok "fetchmail ssl without sslcommonname: exit $fm_rc: $(tail -n 5 "$T/noname.fm" | tr '\n' '|')"
fi
fm queued example.org 2
start_sink "$T/sink3"
cat >"$FMHOME/tls.rc" <<EOF
poll 127.0.0.1 service $ODMRS_PORT protocol ODMR
    user alice password secret
    fetchdomains example.org,example.net
    smtphost 127.0.0.1/$SINK_PORT
    ssl sslproto tls1.2+ sslcertck sslcertfile $T/cert.pem sslcommonname mx.odmr.test
EOF
run_fetchmail tls
fm_ok tls "ODMR over implicit TLS to smtp-sink"
if [ "$fm_rc" -eq 124 ]; then
	diag "fetchmail hung in the reversed session over TLS; its last relayed lines:"
	grep 'ODMR[<>]' "$T/tls.fm" | tail -n 3 | sed 's/^/#   /'
	diag "fetchmail's ODMR relay (odmr.c) select()s on the socket and reads TLS one line at a time"
	diag "(socket.c SockRead: SSL_peek, SSL_read up to the newline): lines left in OpenSSL's"
	diag "buffer from a TLS record holding several lines are not relayed until more bytes arrive."
fi
check "fetchmail checked the certificate (no verification error in its transcript)" \
    sh -c "! grep -Eqi 'certificate verification|verify error|not trusted' '$T/tls.fm'"
check "fetchmail sent 'ATRN example.org,example.net' inside TLS and got 250" \
    grep -q 'ODMR< 250 OK now reversing the connection' "$T/tls.fm"
odmrd_wait_unclaimed example.org
odmrd_wait_unclaimed example.net
stop_sink
fm sink "fetchmail+ssl" "$T/sink3" $tls_ids
fm empty example.org example.net

# ---- the end ---------------------------------------------------------------
if octl check >"$T/check.out" 2>&1; then ok "odmrctl check is clean"
else not_ok "odmrctl check: $(head -n 4 "$T/check.out" | tr '\n' '|')"; fi
odmrd_stop
_rc=$?
if [ "$_rc" -eq 0 ]; then ok "odmrd exits 0 on SIGTERM"; else not_ok "odmrd exits 0 on SIGTERM (exit $_rc): $(tail -n 5 "$T/odmrd.log" | tr '\n' '|')"; fi
if grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' "$T/odmrd.log"; then
	not_ok "no sanitizer report in odmrd's log: $(grep -E -m 3 'AddressSanitizer|runtime error|LeakSanitizer' "$T/odmrd.log")"
	KEEP_T=1
else
	ok "no sanitizer report in odmrd's log"
fi
tap_done
