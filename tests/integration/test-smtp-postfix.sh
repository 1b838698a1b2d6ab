#!/bin/sh
# NAME
#	test-smtp-postfix.sh - a real Postfix relays 20 messages into odmrd
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-smtp-postfix.sh
# DESCRIPTION
#	Runs a private Postfix 3.7 instance on loopback (its own config,
#	queue and data directories under $T; /etc/postfix is not touched)
#	with relay_domains = example.org and a transport map that sends
#	example.org to odmrd. Postfix is the upstream MTA: it talks ESMTP
#	with PIPELINING, STARTTLS (smtp_tls_security_level = may), DSN and
#	8BITMIME to odmrd as it would on the Internet.
#
#	20 messages are submitted to Postfix: 16 with swaks (one of them
#	300 KiB, one with an 8-bit body) and 4 with python3 smtplib, which
#	unlike swaks can give the DSN parameters (NOTIFY, ORCPT, RET,
#	ENVID). Once Postfix's queue is empty (at most 60 s), every message
#	must be in odmrd's store intact (Subject, Message-ID, a SHA-256 of
#	the body), with its envelope and DSN parameters as Postfix passed
#	them on, and Postfix must have logged status=sent with odmrd's
#	"queued as ID" for all 20, over TLS.
#	KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"
. "$top_srcdir/tests/integration/postfix-lib.sh"

require_cmd postfix postfix
require_cmd postconf postfix
require_cmd postqueue postfix
require_cmd swaks swaks
require_cmd python3 python3
odmrd_setup
export SMTP_PORT T ODMRCTL

# store_check DESC - "octl check" must find nothing
store_check() {
	if octl check >"$T/check.out" 2>&1; then ok "$1"
	else not_ok "$1: $(head -n 4 "$T/check.out" | tr '\n' '|')"; fi
}

octl domain add example.org --owner demo >"$T/add.out" 2>&1 || {
	not_ok "octl domain add example.org: $(cat "$T/add.out")"
	tap_done
}
if odmrd_start; then ok "odmrd starts"; else not_ok "odmrd starts"; tap_done; fi

# ---- the private Postfix instance ----------------------------------------
PF=$T/pf
PFPORT=$(free_port)
PFLOG=$PF/maillog
mkdir -p "$T/msgs"
# Postfix's daemons run as the postfix user and must reach their queue
chmod 711 "$T"
odmrd_extra_cleanup='postfix_stop "$PF"'
# debug_peer_*: log the SMTP dialogue of Postfix's smtp client with
# odmrd, to see the pipelined commands ("> host: MAIL ...", "> host:
# RCPT ..." before the first "< host: 250")
if postfix_setup "$PF" "$PFPORT" &&
    postfix_conf "$PF" 'myhostname = pf.odmr.test' \
	'relay_domains = example.org' \
	"transport_maps = inline:{ example.org=smtp:[127.0.0.1]:$SMTP_PORT }" \
	'smtp_tls_security_level = may' \
	'smtp_tls_loglevel = 1' \
	'debug_peer_list = 127.0.0.1' \
	'debug_peer_level = 1' &&
    postfix_start "$PF"; then
	ok "private Postfix starts (config $PF, port $PFPORT)"
else
	not_ok "private Postfix starts: $(tr '\n' '|' <"$PF/start.log")"
	tap_done
fi

# ---- the 20 messages -----------------------------------------------------
cat >"$T/pf.py" <<'PY'
"""Make, send and verify the 20 messages of test-smtp-postfix.sh."""
import base64, hashlib, json, os, random, re, smtplib, subprocess, sys

T = os.environ["T"]
CTL = [os.environ["ODMRCTL"], "-f", T + "/odmrd.conf"]
MSGS = T + "/msgs"


def norm(body):
    """A body as a mail system may carry it: CRLF or LF, trailing line ends."""
    return body.replace(b"\r\n", b"\n").rstrip(b"\n")


def gen():
    rnd = random.Random(20240611)
    token = "%08x" % random.SystemRandom().getrandbits(32)
    manifest = []
    for n in range(1, 21):
        words = ["w%05d" % rnd.randrange(100000) for _ in range(200)]
        lines = [" ".join(words[i:i + 10]) for i in range(0, 200, 10)]
        m = {"n": n, "kind": "swaks", "sender": "s%d@x.test" % n, "rcpts": ["u%d@example.org" % n],
             "subject": "pf-%d %s" % (n, token), "msgid": "<pf-%d.%s@x.test>" % (n, token),
             "eight": False, "envid": None, "ret": "default", "notify": [None], "orcpt": [None]}
        if n == 15:   # 300 KiB
            blob = base64.b64encode(rnd.randbytes(300 * 1024 * 3 // 4)).decode()
            lines = [blob[i:i + 76] for i in range(0, len(blob), 76)]
        if n == 16:   # 8-bit
            m["eight"] = True
            lines = ["Grüße, ½ €, naïve café — %d" % i for i in range(20)] + ["\u00ff\u00fe"]
        if n == 17:
            m.update(kind="dsn", envid="pf-env-17", ret="HDRS", notify=[["FAILURE", "SUCCESS"]],
                     orcpt=["rfc822;orig17@example.org"])
        if n == 18:
            m.update(kind="dsn", envid="QQ+2Bpf18", ret="FULL", notify=[["NEVER"]], orcpt=[None])
        if n == 19:
            m.update(kind="dsn", rcpts=["u19a@example.org", "u19b@example.org"],
                     notify=[["DELAY", "FAILURE"], ["SUCCESS"]],
                     orcpt=["rfc822;first19@example.org", None])
        if n == 20:
            m.update(kind="dsn", sender="", envid="pf-env-20", notify=[["FAILURE"]], orcpt=[None])
        body = ("\n".join(lines) + "\n").encode()
        open("%s/%d.body" % (MSGS, n), "wb").write(body)
        m["sha256"] = hashlib.sha256(norm(body)).hexdigest()
        manifest.append(m)
        print("%d %s %s %s %d" % (n, m["kind"], m["sender"] or "<>", ",".join(m["rcpts"]), m["eight"]))
    json.dump(manifest, open(MSGS + "/manifest.json", "w"))


def send(port, n):
    m = json.load(open(MSGS + "/manifest.json"))[n - 1]
    body = open("%s/%d.body" % (MSGS, n), "rb").read()
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n\r\n" % (
        m["sender"] or "MAILER-DAEMON@x.test", ", ".join(m["rcpts"]), m["subject"], m["msgid"])).encode()
    msg += body.replace(b"\n", b"\r\n")
    mopts = []
    if m["envid"]:
        mopts.append("ENVID=" + m["envid"])
    if m["ret"] != "default":
        mopts.append("RET=" + m["ret"])
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="py.client.test", timeout=30)
    s.ehlo()
    code, resp = s.mail(m["sender"], mopts)
    assert code == 250, (code, resp)
    for addr, notify, orcpt in zip(m["rcpts"], m["notify"], m["orcpt"]):
        ropts = []
        if notify:
            ropts.append("NOTIFY=" + ",".join(notify))
        if orcpt:
            ropts.append("ORCPT=" + orcpt)
        code, resp = s.rcpt(addr, ropts)
        assert code == 250, (addr, code, resp)
    code, resp = s.data(msg)
    assert code == 250, (code, resp)
    s.quit()


def ok(cond, desc, detail=""):
    print(("ok - %s" % desc) if cond else ("not ok - %s: %s" % (desc, str(detail)[:700])), flush=True)
    return cond


def ctl(*args):
    out = subprocess.run(CTL + ["--json"] + list(args), capture_output=True)
    if out.returncode != 0:
        raise RuntimeError("odmrctl %s: exit %d: %s" % (" ".join(args), out.returncode, out.stderr.decode(errors="replace")))
    return json.loads(out.stdout)


def orcpt_eq(got, want):
    if got is None or want is None:
        return got == want
    gt, _, gv = got.partition(";")
    wt, _, wv = want.partition(";")
    return gt.lower() == wt.lower() and gv == wv


def verify(pf_ids):
    manifest = json.load(open(MSGS + "/manifest.json"))
    pf_ids = set(pf_ids.split())
    q = ctl("queue", "example.org")
    ids = [x["id"] for x in q["messages"]]
    ok(len(ids) == 20, "odmrd's queue for example.org holds 20 messages", len(ids))
    ok(set(i.upper() for i in ids) == set(i.upper() for i in pf_ids),
       "the ids in the store are the ids Postfix logged as 'queued as'", sorted(set(ids) ^ pf_ids))
    found = {}
    for qid in ids:
        data = base64.b64decode(ctl("show", qid, "--raw")["content_base64"])
        head, _, body = data.partition(b"\r\n\r\n")
        head = re.sub(rb"\r\n[ \t]+", b" ", head)
        hl = head.split(b"\r\n")
        mid = [h[11:].strip().decode(errors="replace") for h in hl if h.lower().startswith(b"message-id:")]
        mm = [x for x in manifest if mid and x["msgid"] == mid[0]]
        if not ok(len(mm) == 1, "message %s has a known Message-ID" % qid, mid):
            continue
        x = mm[0]
        n = x["n"]
        found[n] = qid
        subj = [h[8:].strip().decode(errors="replace") for h in hl if h.lower().startswith(b"subject:")]
        ok(subj == [x["subject"]], "pf-%d (%s): Subject intact" % (n, qid), subj)
        ok(hashlib.sha256(norm(body)).hexdigest() == x["sha256"],
           "pf-%d (%s): body SHA-256 matches (%d octets stored)" % (n, qid, len(body)), body[:200])
        ok(hl[0].startswith(b"Received: from pf.odmr.test ") and b"[127.0.0.1]" in hl[0]
           and b"by mx.odmr.test (odmrd) with ESMTPS" in hl[0],
           "pf-%d: the first header is odmrd's Received: from pf.odmr.test ... with ESMTPS" % n, hl[0])
        ok(len(hl) > 1 and hl[1].startswith(b"Received: ") and b"by pf.odmr.test (Postfix)" in hl[1],
           "pf-%d: Postfix's Received: follows" % n, hl[1:2])
        m = ctl("show", qid)["message"]
        r = m["recipients"]
        ok(m["sender"] == x["sender"], "pf-%d: sender %r" % (n, x["sender"]), m["sender"])
        ok([y["address"] for y in r] == x["rcpts"] and all(y["domain"] == "example.org" for y in r),
           "pf-%d: recipients %s" % (n, ",".join(x["rcpts"])), r)
        ok(m["helo"] == "pf.odmr.test" and m["client_addr"] == "127.0.0.1",
           "pf-%d: helo pf.odmr.test, client 127.0.0.1" % n, (m["helo"], m["client_addr"]))
        ok(m["body"] == ("8BITMIME" if x["eight"] else "7BIT"),
           "pf-%d: body type %s" % (n, "8BITMIME" if x["eight"] else "7BIT"), m["body"])
        ok(m["envid"] == x["envid"] and m["ret"] == x["ret"],
           "pf-%d: ENVID %r and RET %s kept" % (n, x["envid"], x["ret"]), (m["envid"], m["ret"]))
        nots = [sorted(y["notify"]) if y["notify"] is not None else None for y in r]
        ok(nots == [sorted(v) if v else None for v in x["notify"]],
           "pf-%d: NOTIFY kept %s" % (n, x["notify"]), nots)
        # Postfix sends ORCPT=rfc822;<the recipient> when none was given
        want = [o if o else "rfc822;" + a for o, a in zip(x["orcpt"], x["rcpts"])]
        ok(len(r) == len(want) and all(orcpt_eq(y["orcpt"], w) for y, w in zip(r, want)),
           "pf-%d: ORCPT kept %s" % (n, want), [y["orcpt"] for y in r])
    missing = sorted(set(range(1, 21)) - set(found))
    ok(not missing, "all 20 messages found in the store", missing)


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen()
    elif sys.argv[1] == "send":
        send(int(sys.argv[2]), int(sys.argv[3]))
    else:
        verify(sys.argv[2])
PY
python3 "$T/pf.py" gen >"$T/msgs/list" || { not_ok "generate the messages"; tap_done; }

sent=0
while read -r n kind from to eight; do
	if [ "$kind" = swaks ]; then
		_mid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[int(sys.argv[2]) - 1]["msgid"])' "$T/msgs/manifest.json" "$n")
		_subj=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[int(sys.argv[2]) - 1]["subject"])' "$T/msgs/manifest.json" "$n")
		# (swaks's own template says Message-Id; --header replaces it)
		set -- --header "Subject: $_subj" --header "Message-Id: $_mid"
		[ "$eight" = 1 ] && set -- "$@" --add-header "MIME-Version: 1.0" \
		    --add-header "Content-Type: text/plain; charset=utf-8" \
		    --add-header "Content-Transfer-Encoding: 8bit"
		swaks --server 127.0.0.1 --port "$PFPORT" --helo client.test --from "$from" --to "$to" \
		    --timeout 30 --suppress-data "$@" --body "@$T/msgs/$n.body" >"$T/msgs/$n.swaks" 2>&1
		_rc=$?
	else
		python3 "$T/pf.py" send "$PFPORT" "$n" >"$T/msgs/$n.swaks" 2>&1
		_rc=$?
	fi
	if [ $_rc -eq 0 ]; then
		sent=$((sent + 1))
	else
		diag "submission $n ($kind) failed: $(tail -n 4 "$T/msgs/$n.swaks" | tr '\n' '|')"
	fi
done <"$T/msgs/list"
check "Postfix accepted all 20 submissions ($sent)" [ "$sent" -eq 20 ]

# ---- wait until Postfix has handed everything to odmrd --------------------
_t0=$(date +%s)
empty=no
while [ $(($(date +%s) - _t0)) -lt 60 ]; do
	if postqueue -c "$PF/conf" -p 2>/dev/null | grep -q 'Mail queue is empty'; then
		empty=yes
		break
	fi
	sleep 1
	[ $(( ($(date +%s) - _t0) % 5 )) -eq 4 ] && postqueue -c "$PF/conf" -f 2>/dev/null
done
if [ "$empty" = yes ]; then
	ok "Postfix's queue is empty after $(($(date +%s) - _t0)) s"
else
	not_ok "Postfix's queue is not empty after 60 s: $(postqueue -c "$PF/conf" -p 2>&1 | grep -E '^ *\(' | sort | uniq -c | head -n 5 | tr '\n' '|')"
fi
# sent_logged - how many deliveries to odmrd Postfix's log shows
sent_logged() {
	grep -c 'postfix/smtp\[.*status=sent (250 2\.0\.0 Ok: queued as [0-9A-Fa-f]\{14\})' "$PFLOG"
}
# sent_logged_ge N - at least N of them
sent_logged_ge() {
	[ "$(sent_logged)" -ge "$1" ]
}
nrcpt_total=21	# pf-19 has two recipients
# postlogd writes on its own time: wait for the lines, not half a second
wait_until 20 sent_logged_ge "$nrcpt_total"
nsent=$(sent_logged)
if [ "$nsent" -eq "$nrcpt_total" ]; then
	ok "Postfix logged status=sent (250 2.0.0 Ok: queued as ID) for all $nrcpt_total recipients"
else
	not_ok "Postfix logged status=sent with odmrd's queue id $nsent times, want $nrcpt_total: $(grep -E 'status=(deferred|bounced)' "$PFLOG" | head -n 3 | sed 's/.*: to=/to=/' | tr '\n' '|')"
fi
pf_ids=$(sed -n 's/.*status=sent (250 2\.0\.0 Ok: queued as \([0-9A-Fa-f]\{14\}\)).*/\1/p' "$PFLOG" | sort -u | tr '\n' ' ')
ntls=$(grep -c 'TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:'"$SMTP_PORT"': TLSv1\.[23]' "$PFLOG")
if [ "$ntls" -ge 1 ]; then
	ok "Postfix used STARTTLS to odmrd ($ntls TLS connections)"
	grep -m 1 'TLS connection established' "$PFLOG" | sed 's/.*postfix/# postfix/'
else
	not_ok "Postfix used STARTTLS to odmrd: $(grep -iE 'tls' "$PFLOG" | head -n 3 | tr '\n' '|')"
fi
# PIPELINING (RFC 2920): Postfix's smtp client sends RCPT right after MAIL
# without waiting for MAIL's reply; its dialogue log (debug_peer_list)
# shows that for each transaction
awk -v port="$SMTP_PORT" '
	$5 ~ /^postfix\/smtp\[/ && index($0, ": > 127.0.0.1[127.0.0.1]:" port ": ") {
		pid = $5
		if (after_mail[pid]) { if ($0 ~ /: RCPT TO:/) piped++; else lock++ }
		after_mail[pid] = ($0 ~ /: MAIL FROM:/)
		next
	}
	$5 ~ /^postfix\/smtp\[/ && index($0, ": < 127.0.0.1[127.0.0.1]:" port ": ") { after_mail[$5] = 0 }
	END { printf "%d %d\n", piped, lock }' "$PFLOG" >"$T/piped"
read -r piped lockstep <"$T/piped"
if [ "$piped" -ge 20 ] && [ "$lockstep" -eq 0 ]; then
	ok "Postfix pipelined MAIL and RCPT to odmrd in all $piped transactions"
else
	not_ok "Postfix pipelined MAIL and RCPT in $piped transactions and waited in $lockstep (want 20+ and 0)"
fi
# Postfix's smtp client is the side that talks to odmrd
if grep 'postfix/smtp\[' "$PFLOG" | grep -q 'lost connection\|timed out\|protocol error\|status=deferred\|status=bounced'; then
	not_ok "no lost connection, timeout, protocol error or deferral in Postfix's smtp client log: $(grep 'postfix/smtp\[' "$PFLOG" | grep -m 3 'lost connection\|timed out\|protocol error\|status=deferred\|status=bounced' | tr '\n' '|')"
else
	ok "no lost connection, timeout, protocol error or deferral in Postfix's smtp client log"
fi

# ---- the store -----------------------------------------------------------
python3 "$T/pf.py" verify "$pf_ids" >"$T/verify.out" 2>&1
tap_feed "$T/verify.out"
nq=$(grep -c 'event=queued .*client=127\.0\.0\.1' "$T/odmrd.log")
check "odmrd logged event=queued for each of the 20 messages ($nq)" [ "$nq" -eq 20 ]
_tls=$(grep 'event=queued ' "$T/odmrd.log" | sed -n 's/.* tls=\([^ ]*\).*/\1/p' | sort | uniq -c | tr '\n' ' ')
diag "odmrd's tls= values for Postfix's sessions: $_tls"
if grep -qi 'pipelin' "$T/odmrd.log"; then
	diag "odmrd's log on pipelining: $(grep -i -m 2 'pipelin' "$T/odmrd.log" | tr '\n' '|')"
fi
store_check "odmrctl check is clean"

# ---- shut down -----------------------------------------------------------
postfix_stop "$PF"
odmrd_stop
_rc=$?
if [ "$_rc" -eq 0 ]; then ok "odmrd exits 0 on SIGTERM"; else not_ok "odmrd exits 0 on SIGTERM (exit $_rc): $(tail -n 5 "$T/odmrd.log" | tr '\n' '|')"; fi
if grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' "$T/odmrd.log"; then
	not_ok "no sanitizer report in odmrd's log: $(grep -E -m 3 'AddressSanitizer|runtime error|LeakSanitizer' "$T/odmrd.log")"
	KEEP_T=1
else
	ok "no sanitizer report in odmrd's log"
fi
[ "$tap_failed" -eq 0 ] || KEEP_T=1
tap_done
