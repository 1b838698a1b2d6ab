#!/bin/sh
# NAME
#	test-smtp-swaks.sh - odmrd's MX listener against swaks and raw clients
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-smtp-swaks.sh
# DESCRIPTION
#	Sends mail to a real odmrd with swaks (plain, STARTTLS, PIPELINING,
#	8-bit body, dot-stuffing, two customer domains, relay refusal) and
#	with a python3 raw-socket client for what swaks cannot say: BDAT
#	(RFC 3030) with and without BINARYMIME, BODY=8BITMIME (RFC 6152),
#	SMTPUTF8 (RFC 6531), the DSN parameters NOTIFY, ORCPT, RET and
#	ENVID (RFC 3461), SIZE (RFC 1870) and pipelined commands in one
#	write (RFC 2920). Every message that gets "250 2.0.0 Ok: queued as
#	ID" is checked in the store with "odmrctl --json show ID" (the
#	envelope) and "odmrctl --json show ID --raw" (the bytes, after the
#	Received: header odmrd prepends), and against odmrd's
#	"event=queued" log line.
#
#	KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"

require_cmd swaks swaks
require_cmd python3 python3
odmrd_setup

# ---- the python side: a raw SMTP client and the store checks --------------
cat >"$T/odt.py" <<'PY'
"""odt - raw SMTP client and odmrctl checks for the odmrd integration tests."""
import base64, json, os, re, socket, ssl, subprocess, sys

PORT = int(os.environ["SMTP_PORT"])
CTL = [os.environ["ODMRCTL"], "-f", os.environ["T"] + "/odmrd.conf"]
ID_RE = re.compile(rb"^250 2\.0\.0 Ok: queued as ([0-9A-Fa-f]{14})$")


class Smtp:
    """A line-level SMTP client: send bytes, read whole replies."""

    def __init__(self, port=PORT, timeout=20):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def reply(self):
        """One reply: (code, [lines]) with the lines as bytes."""
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3:4] != b"-":
                return int(ln[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n" if isinstance(text, str) else text + b"\r\n")
        return self.reply()

    def starttls(self, name="mx.odmr.test"):
        ctx = ssl.create_default_context(cafile=os.environ["T"] + "/cert.pem")
        self.sock = ctx.wrap_socket(self.sock, server_hostname=name)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def queued_id(lines):
    """The queue id of a final "250 2.0.0 Ok: queued as ID" reply, or None."""
    m = ID_RE.match(lines[-1])
    return m.group(1).decode() if m else None


def show(qid):
    """The "message" object of odmrctl --json show ID."""
    out = subprocess.run(CTL + ["--json", "show", qid], capture_output=True)
    if out.returncode != 0:
        raise RuntimeError("odmrctl show %s: exit %d: %s" % (qid, out.returncode, out.stderr.decode(errors="replace")))
    return json.loads(out.stdout)["message"]


def raw(qid):
    """The stored bytes of message ID."""
    out = subprocess.run(CTL + ["--json", "show", qid, "--raw"], capture_output=True)
    if out.returncode != 0:
        raise RuntimeError("odmrctl show %s --raw: exit %d: %s" % (qid, out.returncode, out.stderr.decode(errors="replace")))
    return base64.b64decode(json.loads(out.stdout)["content_base64"])


def split_received(data):
    """(the first header field unfolded, the rest): odmrd's Received: and the message as sent."""
    end = data.find(b"\r\n")
    while end >= 0 and data[end + 2:end + 3] in (b" ", b"\t"):
        end = data.find(b"\r\n", end + 2)
    if end < 0:
        return data, b""
    first = data[:end]
    return re.sub(rb"\r\n[ \t]+", b" ", first), data[end + 2:]


class Tap:
    """Cases as "ok - ..." / "not ok - ..." lines for the shell to count."""

    def __init__(self):
        self.out = sys.stdout

    def ok(self, cond, desc, detail=""):
        if cond:
            print("ok - " + desc, flush=True)
        else:
            print("not ok - %s%s" % (desc, (": " + str(detail)[:800]) if detail else ""), flush=True)
        return cond

    def diag(self, text):
        print("# " + text, flush=True)


def check_cmd():
    """python3 odt.py check DESC ID EXPR: EXPR over m (show) and r (recipients)."""
    tap = Tap()
    desc, qid, expr = sys.argv[2:5]
    try:
        m = show(qid)
        r = m["recipients"]
        tap.ok(eval(expr), desc, json.dumps(m, ensure_ascii=False))
    except Exception as e:
        tap.ok(False, desc, repr(e))


def raw_cmd():
    """python3 odt.py raw ID FILE: the stored bytes into FILE, the Received: line into FILE.rcvd."""
    data = raw(sys.argv[2])
    rcvd, rest = split_received(data)
    open(sys.argv[3], "wb").write(rest)
    open(sys.argv[3] + ".rcvd", "wb").write(rcvd + b"\n")


if __name__ == "__main__":
    {"check": check_cmd, "raw": raw_cmd}[sys.argv[1]]()
PY

export SMTP_PORT T
ODMRCTL=$ODMRCTL
export ODMRCTL
ids=""

# store_check DESC - "octl check" must find nothing
store_check() {
	if octl check >"$T/check.out" 2>&1; then ok "$1"
	else not_ok "$1: $(head -n 4 "$T/check.out" | tr '\n' '|')"; fi
}

# tap_feed_ids FILE - tap_feed, and each "id ID" line appends to $ids
tap_feed_ids() {
	while IFS= read -r _tf; do
		case $_tf in
		"ok - "*) ok "${_tf#ok - }" ;;
		"not ok - "*) not_ok "${_tf#not ok - }" ;;
		"id "*) ids="$ids ${_tf#id }" ;;
		*) echo "$_tf" ;;
		esac
	done <"$1"
}

# jcheck DESC ID EXPR - pass when the python EXPR holds for "octl --json show ID"
# (m is the message object, r its recipients)
jcheck() {
	python3 "$T/odt.py" check "$1" "$2" "$3" >"$T/jcheck.out" 2>&1
	tap_feed_ids "$T/jcheck.out"
}

# swaks_send NAME ARGS... - swaks to odmrd; transcript in $T/NAME.out, rc in $rc
swaks_send() {
	_n=$1; shift
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --helo client.test \
	    --timeout 20 "$@" >"$T/$_n.out" 2>&1
	rc=$?
}

# queued_id FILE - the queue id of the "250 2.0.0 Ok: queued as ID" in a swaks transcript
queued_id() {
	sed -n 's/^ *<[-~]  250 2\.0\.0 Ok: queued as \([0-9A-Fa-f]*\)\r*$/\1/p' "$1" | tail -n 1
}

# got_id DESC NAME - check the swaks run NAME was queued; sets $id
got_id() {
	id=$(queued_id "$T/$2.out")
	if [ "$rc" -eq 0 ] && printf '%s\n' "$id" | grep -Eq '^[0-9A-Fa-f]{14}$'; then
		ok "$1: 250 2.0.0 Ok: queued as $id"
		ids="$ids $id"
		return 0
	fi
	not_ok "$1: swaks exit $rc, no '250 2.0.0 Ok: queued as <14 hex>': $(grep -E '^ *<[-~*]' "$T/$2.out" | tail -n 3 | tr '\n' '|')"
	id=""
	return 1
}

# stored ID - the message as sent into $T/$ID.msg, the Received: line into $T/$ID.msg.rcvd
stored() {
	python3 "$T/odt.py" raw "$1" "$T/$1.msg" 2>"$T/raw.err" || {
		diag "odmrctl show $1 --raw failed: $(cat "$T/raw.err")"
		: >"$T/$1.msg"; : >"$T/$1.msg.rcvd"
	}
}

# logline ID - odmrd's event=queued line for ID
logline() {
	grep "event=queued id=$1 " "$T/odmrd.log"
}

# ---- domains and the daemon ----------------------------------------------
for d in example.org example.net; do
	if ! octl domain add "$d" --owner demo >"$T/add.out" 2>&1; then
		not_ok "octl domain add $d: $(cat "$T/add.out")"
		tap_done
	fi
done
if odmrd_start; then ok "odmrd starts"; else not_ok "odmrd starts"; tap_done; fi

# ---- greeting and EHLO ---------------------------------------------------
cat >"$T/ehlo.py" <<'PY'
import sys; sys.path.insert(0, sys.argv[1])
from odt import *
tap = Tap()
c = Smtp()
tap.ok(c.greeting[0] == 220 and c.greeting[1][-1].startswith(b"220 mx.odmr.test ESMTP"),
       "greeting is '220 mx.odmr.test ESMTP'", c.greeting[1])
code, lines = c.cmd("EHLO raw.client.test")
kw = set(l[4:].split(b" ")[0].decode().upper() for l in lines[1:])
tap.ok(code == 250 and lines[0].startswith(b"250-mx.odmr.test"), "EHLO reply 250 names mx.odmr.test", lines[0])
for k in ("SIZE", "PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN",
          "CHUNKING", "BINARYMIME", "HELP", "STARTTLS", "ETRN"):
    tap.ok(k in kw, "EHLO announces " + k, sorted(kw))
size = [l for l in lines if l[4:].upper().startswith(b"SIZE")]
tap.ok(size and size[0][4:].split(b" ")[1:2] == [b"52428800"], "EHLO SIZE is max_message_size (50M)", size)
tap.ok(c.cmd("HELP")[0] in (211, 214), "HELP gets 214")
tap.ok(c.cmd("QUIT")[0] == 221, "QUIT gets 221")
PY
python3 "$T/ehlo.py" "$T" >"$T/ehlo.out" 2>&1
tap_feed_ids "$T/ehlo.out"

# ---- swaks: plain --------------------------------------------------------
swaks_send plain --from alice@x.test --to u1@example.org \
    --header "Subject: swaks plain" --body "hello from swaks"
if got_id "swaks plain" plain; then
	plain_id=$id
	jcheck "plain: envelope stored (sender, one recipient in example.org, 7BIT, no DSN, client, helo)" "$id" \
	    'm["id"].upper() == "'"$id"'".upper() and m["sender"] == "alice@x.test" and len(r) == 1 and r[0]["address"] == "u1@example.org" and r[0]["domain"] == "example.org" and r[0]["state"] == "queued" and r[0]["notify"] is None and r[0]["orcpt"] is None and m["envid"] is None and m["ret"] == "default" and m["body"] == "7BIT" and m["smtputf8"] is False and m["client_addr"] == "127.0.0.1" and m["helo"] == "client.test"'
	stored "$id"
	check "plain: stored text starts with odmrd's Received: from client.test (... [127.0.0.1])" \
	    grep -Eq '^Received: from client\.test \([^)]*\[127\.0\.0\.1\]\)' "$T/$id.msg.rcvd"
	check "plain: Received: says 'by mx.odmr.test (odmrd) with ESMTP id'" \
	    grep -Eq 'by mx\.odmr\.test \(odmrd\) with ESMTP id ' "$T/$id.msg.rcvd"
	check "plain: the Received: id is the queue id $id (as odmrctl shows it)" \
	    grep -Eq " id $id( |;|$)" "$T/$id.msg.rcvd"
	check "plain: header and body stored (Subject, body text, CRLF)" \
	    python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(not (b"\r\nSubject: swaks plain\r\n" in d and b"\r\n\r\nhello from swaks\r\n" in d))' "$T/$id.msg"
	_l=$(logline "$id")
	if printf '%s\n' "$_l" | grep -q "from=<alice@x.test> nrcpt=1 size=[0-9]* client=127.0.0.1 tls="; then
		ok "plain: log has event=queued id=$id from=<alice@x.test> nrcpt=1 client=127.0.0.1"
	else
		not_ok "plain: log line for $id: '$_l'"
	fi
	_size=$(printf '%s\n' "$_l" | sed -n 's/.* size=\([0-9]*\).*/\1/p')
	jcheck "plain: the logged size ($_size) is the stored size" "$id" 'm["size"] == int("0'"$_size"'")'
	plain_tls=$(printf '%s\n' "$_l" | sed -n 's/.* tls=\([^ ]*\).*/\1/p')
fi

# ---- swaks: STARTTLS -----------------------------------------------------
swaks_send tls --tls --from bob@x.test --to u2@example.org --header "Subject: swaks tls" --body "over tls"
if got_id "swaks --tls (STARTTLS)" tls; then
	grep -q '^ *<~  250' "$T/tls.out" && ok "swaks used TLS for the transaction" || not_ok "swaks used TLS: $(grep -i tls "$T/tls.out" | head -3 | tr '\n' '|')"
	stored "$id"
	check "tls: Received: says 'with ESMTPS'" grep -q 'with ESMTPS id ' "$T/$id.msg.rcvd"
	check "tls: Received: names the TLS version (TLSv1.)" grep -q 'TLSv1\.[23]' "$T/$id.msg.rcvd"
	diag "tls Received: $(cat "$T/$id.msg.rcvd")"
	_tls=$(logline "$id" | sed -n 's/.* tls=\([^ ]*\).*/\1/p')
	if [ -n "$_tls" ] && [ "$_tls" != "$plain_tls" ]; then
		ok "tls: the log's tls= differs from the plaintext session's ($_tls vs $plain_tls)"
	else
		not_ok "tls: log line for $id: '$(logline "$id")' (plain had tls=$plain_tls)"
	fi
	jcheck "tls: envelope stored" "$id" 'm["sender"] == "bob@x.test" and [x["address"] for x in r] == ["u2@example.org"]'
fi

# ---- swaks: PIPELINING ---------------------------------------------------
swaks_send pipe --pipeline --from carol@x.test --to u1@example.org,u2@example.org,u3@example.org \
    --header "Subject: swaks pipelined" --body "three recipients, pipelined"
if got_id "swaks --pipeline, three recipients" pipe; then
	check "pipeline: swaks sent MAIL, RCPT x3 and DATA before reading a reply" \
	    sh -c "grep -A4 '^ -> MAIL FROM' '$T/pipe.out' | tail -n 4 | grep -c '^ -> \(RCPT TO\|DATA\)' | grep -qx 4"
	jcheck "pipeline: three recipients stored in order" "$id" \
	    '[x["address"] for x in r] == ["u1@example.org", "u2@example.org", "u3@example.org"] and [x["index"] for x in r] == sorted(x["index"] for x in r)'
	check "pipeline: log says nrcpt=3" sh -c "grep 'event=queued id=$id ' '$T/odmrd.log' | grep -q 'nrcpt=3 '"
fi

# ---- swaks: 8-bit body without BODY= ---------------------------------------
body8=$(printf 'caf\303\251 \303\274ber \342\202\254 \377\376 end')
swaks_send eight --from dave@x.test --to u1@example.org --header "Subject: eight bit" \
    --add-header "MIME-Version: 1.0" --add-header "Content-Type: text/plain; charset=utf-8" \
    --add-header "Content-Transfer-Encoding: 8bit" --body "$body8"
if got_id "swaks 8-bit body" eight; then
	stored "$id"
	printf '\r\n%s\r\n' "$body8" >"$T/eight.want"
	check "8-bit body: the octets are stored unchanged" \
	    python3 -c 'import sys; sys.exit(open(sys.argv[2], "rb").read() not in open(sys.argv[1], "rb").read())' "$T/$id.msg" "$T/eight.want"
fi

# ---- swaks: dot-stuffing -------------------------------------------------
swaks_send dots --from erin@x.test --to u1@example.org --header "Subject: dots" \
    --body "$(printf 'line one\n.one dot\n..two dots\n.\n x\nlast')"
if got_id "swaks body with leading dots" dots; then
	stored "$id"
	check "dots: a line sent as '..one dot' is stored as '.one dot', '...two dots' as '..two dots', '..' as '.'" \
	    python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(b"\r\n\r\nline one\r\n.one dot\r\n..two dots\r\n.\r\n x\r\nlast\r\n" not in d)' "$T/$id.msg"
fi

# ---- swaks: two customer domains -----------------------------------------
swaks_send two --from frank@x.test --to u1@example.org,u9@example.net --header "Subject: two domains" --body "both"
if got_id "swaks to two customer domains" two; then
	jcheck "two domains: one message, each recipient with its own domain" "$id" \
	    'sorted((x["address"], x["domain"]) for x in r) == [("u1@example.org", "example.org"), ("u9@example.net", "example.net")]'
	for d in example.org example.net; do
		check "two domains: 'octl --json queue $d' lists it with only its own recipient" \
		    sh -c "'$ODMRCTL' -f '$T/odmrd.conf' --json queue $d | python3 -c '
import json, sys
q = json.load(sys.stdin)
m = [x for x in q[\"messages\"] if x[\"id\"].upper() == \"$id\".upper()]
sys.exit(not (len(m) == 1 and all(x[\"address\"].endswith(\"@$d\") for x in m[0][\"recipients\"]) and len(m[0][\"recipients\"]) == 1))'"
	done
fi

# ---- swaks: relay refusal ------------------------------------------------
swaks_send relay --from mallory@x.test --to victim@other.test --body "relay?"
if [ "$rc" -ne 0 ] && grep -Eq '^ *<\*\* +550 5\.7\.1' "$T/relay.out"; then
	ok "relay to other.test refused with 550 5.7.1"
else
	not_ok "relay to other.test: swaks exit $rc: $(grep -E '^ *<' "$T/relay.out" | tail -n 3 | tr '\n' '|')"
fi
swaks_send mixed --from mallory@x.test --to victim@other.test,u1@example.org --body "half relay"
check "mixed recipients: victim@other.test refused with 550 5.7.1" grep -Eq '^ *<\*\* +550 5\.7\.1' "$T/mixed.out"
if got_id "mixed recipients: the message for u1@example.org is accepted" mixed; then
	jcheck "mixed: only the customer recipient is stored" "$id" '[x["address"] for x in r] == ["u1@example.org"]'
fi

# ---- raw client: BDAT, BINARYMIME, 8BITMIME, SMTPUTF8, DSN, SIZE, pipelining
cat >"$T/raw.py" <<'PY'
import hashlib, os, sys; sys.path.insert(0, sys.argv[1])
from odt import *
tap = Tap()


def ehlo(c):
    code, lines = c.cmd("EHLO raw.client.test")
    assert code == 250, lines


def stored_ok(qid, sent, desc, proto=b"ESMTP"):
    """The stored text after odmrd's Received: is byte for byte what was sent."""
    try:
        rcvd, rest = split_received(raw(qid))
    except Exception as e:
        return tap.ok(False, desc, repr(e))
    tap.ok(rcvd.startswith(b"Received: from raw.client.test ") and b"by mx.odmr.test (odmrd) with " + proto + b" id " in rcvd,
           desc + ": Received: prepended, with " + proto.decode(), rcvd)
    return tap.ok(rest == sent, desc + ": stored byte for byte (%d octets)" % len(sent),
                  "stored %d octets, sha256 %s, want %s; first difference at %s" % (
                      len(rest), hashlib.sha256(rest).hexdigest()[:16], hashlib.sha256(sent).hexdigest()[:16],
                      next((i for i in range(min(len(rest), len(sent))) if rest[i] != sent[i]), min(len(rest), len(sent)))))


def envelope(qid, desc, pred):
    try:
        m = show(qid)
    except Exception as e:
        return tap.ok(False, desc, repr(e))
    try:
        res = pred(m, m["recipients"])
    except Exception as e:
        res = False
    return tap.ok(res, desc, json.dumps(m, ensure_ascii=False))


def got(lines, desc):
    qid = queued_id(lines)
    if tap.ok(qid is not None, desc + ": 250 2.0.0 Ok: queued as <14 hex>", lines):
        print("id " + qid, flush=True)
    return qid


# BDAT in three chunks, one of them empty-free binary-safe 7bit text
msg = (b"From: raw@x.test\r\nTo: u1@example.org\r\nSubject: bdat chunks\r\n\r\n"
       b"first line\r\n.leading dot is not stuffed in BDAT\r\n" + b"x" * 70000 + b"\r\nlast\r\n")
c = Smtp(); ehlo(c)
tap.ok(c.cmd("MAIL FROM:<raw@x.test>")[0] == 250, "BDAT: MAIL 250")
tap.ok(c.cmd("RCPT TO:<u1@example.org>")[0] == 250, "BDAT: RCPT 250")
parts = [msg[:1000], msg[1000:50000], msg[50000:]]
c.send(b"BDAT %d\r\n" % len(parts[0]) + parts[0])
code, lines = c.reply()
tap.ok(code == 250, "BDAT: first chunk 250", lines)
c.send(b"BDAT %d\r\n" % len(parts[1]) + parts[1])
code, lines = c.reply()
tap.ok(code == 250, "BDAT: second chunk 250", lines)
c.send(b"BDAT %d LAST\r\n" % len(parts[2]) + parts[2])
code, lines = c.reply()
qid = got(lines, "BDAT LAST")
if qid:
    stored_ok(qid, msg, "BDAT")
    envelope(qid, "BDAT: envelope stored, body 7BIT", lambda m, r: m["sender"] == "raw@x.test" and m["body"] == "7BIT" and [x["address"] for x in r] == ["u1@example.org"])

# BDAT with BINARYMIME: every octet value, bare CR and LF, a lone dot line
binary = bytes(range(256)) * 40 + b"\r\n.\r\n" + b"\n.\r" + bytes(range(255, -1, -1))
msg = (b"From: raw@x.test\r\nSubject: binary\r\nMIME-Version: 1.0\r\n"
       b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n") + binary
tap.ok(c.cmd("MAIL FROM:<> BODY=BINARYMIME")[0] == 250, "BINARYMIME: MAIL FROM:<> BODY=BINARYMIME 250 (same session)")
tap.ok(c.cmd("RCPT TO:<u2@example.org>")[0] == 250, "BINARYMIME: RCPT 250")
# the whole transaction in one write: BDAT, BDAT 0 LAST
c.send(b"BDAT %d\r\n" % len(msg) + msg + b"BDAT 0 LAST\r\n")
code, lines = c.reply()
tap.ok(code == 250, "BINARYMIME: BDAT chunk 250", lines)
code, lines = c.reply()
qid = got(lines, "BINARYMIME: BDAT 0 LAST")
if qid:
    stored_ok(qid, msg, "BINARYMIME")
    envelope(qid, "BINARYMIME: body BINARYMIME, null sender", lambda m, r: m["body"] == "BINARYMIME" and m["sender"] == "")
# RFC 3030: DATA after BODY=BINARYMIME must get 503
tap.ok(c.cmd("MAIL FROM:<raw@x.test> BODY=BINARYMIME")[0] == 250, "BINARYMIME then DATA: MAIL 250")
tap.ok(c.cmd("RCPT TO:<u1@example.org>")[0] == 250, "BINARYMIME then DATA: RCPT 250")
code, lines = c.cmd("DATA")
tap.ok(code == 503, "BINARYMIME then DATA: 503 (RFC 3030)", lines)
if code == 354:
    c.send(b"x\r\n.\r\n"); c.reply()
c.cmd("RSET")
# BDAT without a transaction
c.send(b"BDAT 3\r\nabc")
code, lines = c.reply()
tap.ok(code == 503, "BDAT without MAIL gets 503", lines)
tap.ok(c.cmd("QUIT")[0] == 221, "BDAT session: QUIT 221")
c.close()

# BODY=8BITMIME over DATA
c = Smtp(); ehlo(c)
body = "Grüße aus Köln, 10 €\r\n".encode() + bytes(range(128, 256)) + b"\r\n"
msg = b"From: raw@x.test\r\nSubject: 8bitmime\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
tap.ok(c.cmd("MAIL FROM:<raw@x.test> BODY=8BITMIME")[0] == 250, "8BITMIME: MAIL BODY=8BITMIME 250")
tap.ok(c.cmd("RCPT TO:<u1@example.org>")[0] == 250, "8BITMIME: RCPT 250")
tap.ok(c.cmd("DATA")[0] == 354, "8BITMIME: DATA 354")
c.send(msg + b".\r\n")
qid = got(c.reply()[1], "8BITMIME: end of data")
if qid:
    stored_ok(qid, msg, "8BITMIME")
    envelope(qid, "8BITMIME: body 8BITMIME", lambda m, r: m["body"] == "8BITMIME" and m["smtputf8"] is False)

# SMTPUTF8: without the parameter a UTF-8 local part is refused
tap.ok(c.cmd("MAIL FROM:<raw@x.test>")[0] == 250, "no SMTPUTF8: MAIL 250")
code, lines = c.cmd("RCPT TO:<jörg@example.org>")
tap.ok(code == 553 and lines[-1][4:9] == b"5.6.7", "no SMTPUTF8: RCPT TO:<jörg@example.org> gets 553 5.6.7", lines)
c.cmd("RSET")
code, lines = c.cmd("MAIL FROM:<jörg@x.test>")
tap.ok(code == 553 and lines[-1][4:9] == b"5.6.7", "no SMTPUTF8: MAIL FROM:<jörg@x.test> gets 553 5.6.7", lines)
c.cmd("RSET")
msg = "From: jörg@x.test\r\nTo: 宛先@example.org\r\nSubject: ünïcödé\r\n\r\nUTF-8 everywhere: 日本語\r\n".encode()
tap.ok(c.cmd("MAIL FROM:<jörg@x.test> SMTPUTF8 BODY=8BITMIME")[0] == 250, "SMTPUTF8: MAIL FROM:<jörg@x.test> SMTPUTF8 250")
code, lines = c.cmd("RCPT TO:<宛先@example.org>")
tap.ok(code == 250, "SMTPUTF8: RCPT TO:<宛先@example.org> 250", lines)
code, lines = c.cmd("RCPT TO:<Jörg.Müller@example.org>")
tap.ok(code == 250, "SMTPUTF8: RCPT TO:<Jörg.Müller@example.org> 250", lines)
tap.ok(c.cmd("DATA")[0] == 354, "SMTPUTF8: DATA 354")
c.send(msg + b".\r\n")
qid = got(c.reply()[1], "SMTPUTF8: end of data")
if qid:
    # RFC 6531 3.7.3: the protocol type is UTF8SMTP
    stored_ok(qid, msg, "SMTPUTF8", b"UTF8SMTP")
    envelope(qid, "SMTPUTF8: smtputf8 true, UTF-8 sender and recipients stored exactly",
             lambda m, r: m["smtputf8"] is True and m["sender"] == "jörg@x.test"
             and [x["address"] for x in r] == ["宛先@example.org", "Jörg.Müller@example.org"]
             and all(x["domain"] == "example.org" for x in r))

# DSN (RFC 3461): RET, ENVID, NOTIFY, ORCPT
tap.ok(c.cmd("MAIL FROM:<dsn@x.test> RET=HDRS ENVID=QQ+2Bid.314159")[0] == 250, "DSN: MAIL RET=HDRS ENVID=QQ+2Bid.314159 250")
code, lines = c.cmd("RCPT TO:<d1@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;d1+2Borig@example.org")
tap.ok(code == 250, "DSN: RCPT NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;... 250", lines)
code, lines = c.cmd("RCPT TO:<d2@example.org> NOTIFY=NEVER")
tap.ok(code == 250, "DSN: RCPT NOTIFY=NEVER 250", lines)
code, lines = c.cmd("RCPT TO:<d3@example.org> ORCPT=rfc822;D3@Example.ORG NOTIFY=DELAY")
tap.ok(code == 250, "DSN: RCPT ORCPT before NOTIFY=DELAY 250", lines)
code, lines = c.cmd("RCPT TO:<d4@example.org>")
tap.ok(code == 250, "DSN: RCPT without parameters 250", lines)
code, lines = c.cmd("RCPT TO:<d5@example.org> NOTIFY=NEVER,SUCCESS")
tap.ok(code == 501, "DSN: NOTIFY=NEVER,SUCCESS gets 501", lines)
tap.ok(c.cmd("DATA")[0] == 354, "DSN: DATA 354")
msg = b"From: dsn@x.test\r\nSubject: dsn\r\n\r\nwith DSN parameters\r\n"
c.send(msg + b".\r\n")
qid = got(c.reply()[1], "DSN: end of data")


def orcpt_is(x, want):
    t, _, v = (x["orcpt"] or "").partition(";")
    wt, _, wv = want.partition(";")
    return t.lower() == wt.lower() and v == wv


if qid:
    envelope(qid, "DSN: RET=HDRS and ENVID stored exactly",
             lambda m, r: m["ret"] == "HDRS" and m["envid"] == "QQ+2Bid.314159")
    envelope(qid, "DSN: NOTIFY stored per recipient",
             lambda m, r: sorted(r[0]["notify"]) == ["FAILURE", "SUCCESS"] and r[1]["notify"] == ["NEVER"]
             and r[2]["notify"] == ["DELAY"] and r[3]["notify"] is None and len(r) == 4)
    envelope(qid, "DSN: ORCPT stored per recipient",
             lambda m, r: orcpt_is(r[0], "rfc822;d1+2Borig@example.org") and r[1]["orcpt"] is None
             and orcpt_is(r[2], "rfc822;D3@Example.ORG") and r[3]["orcpt"] is None)
tap.ok(c.cmd("MAIL FROM:<dsn@x.test> RET=BOGUS")[0] == 501, "DSN: RET=BOGUS gets 501")
c.cmd("RSET")

# SIZE (RFC 1870)
code, lines = c.cmd("MAIL FROM:<big@x.test> SIZE=99999999999")
tap.ok(code == 552 and lines[-1][4:9] == b"5.3.4", "SIZE=99999999999 gets 552 5.3.4", lines)
c.cmd("RSET")
tap.ok(c.cmd("MAIL FROM:<small@x.test> SIZE=1000")[0] == 250, "SIZE=1000 gets 250")
c.cmd("RSET")

# dot-stuffing on the wire, by hand
tap.ok(c.cmd("MAIL FROM:<dots@x.test>")[0] == 250, "raw dots: MAIL 250")
tap.ok(c.cmd("RCPT TO:<u1@example.org>")[0] == 250, "raw dots: RCPT 250")
tap.ok(c.cmd("DATA")[0] == 354, "raw dots: DATA 354")
c.send(b"Subject: dots\r\n\r\n..\r\n...\r\n..x\r\n.y\r\nz.\r\n.\r\n")
qid = got(c.reply()[1], "raw dots: end of data")
if qid:
    stored_ok(qid, b"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\ny\r\nz.\r\n", "raw dots (RFC 5321 4.5.2: one leading dot removed)")
c.close()

# PIPELINING: the whole transaction in one write, replies in order
c = Smtp()
c.send(b"EHLO raw.client.test\r\nMAIL FROM:<pipe@x.test>\r\nRCPT TO:<p1@example.org>\r\n"
       b"RCPT TO:<nobody@other.test>\r\nRCPT TO:<p2@example.net>\r\nDATA\r\n")
codes = [c.reply()[0] for _ in range(6)]
tap.ok(codes == [250, 250, 250, 550, 250, 354], "pipelined EHLO/MAIL/RCPT x3/DATA: replies 250 250 250 550 250 354 in order", codes)
c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<pipe2@x.test>\r\nRCPT TO:<p3@example.org>\r\nDATA\r\n")
code, lines = c.reply()
qid1 = got(lines, "pipelined: first message")
codes = [c.reply()[0] for _ in range(3)]
tap.ok(codes == [250, 250, 354], "pipelined: second transaction after the dot in the same write 250 250 354", codes)
c.send(b"Subject: second\r\n\r\nbody 2\r\n.\r\nQUIT\r\n")
qid2 = got(c.reply()[1], "pipelined: second message")
tap.ok(c.reply()[0] == 221, "pipelined: QUIT 221")
if qid1:
    envelope(qid1, "pipelined: first message's recipients", lambda m, r: [x["address"] for x in r] == ["p1@example.org", "p2@example.net"] and m["sender"] == "pipe@x.test")
if qid2:
    envelope(qid2, "pipelined: second message's recipients", lambda m, r: [x["address"] for x in r] == ["p3@example.org"] and m["sender"] == "pipe2@x.test")
    stored_ok(qid2, b"Subject: second\r\n\r\nbody 2\r\n", "pipelined second message")
PY
python3 "$T/raw.py" "$T" >"$T/raw.out" 2>&1
tap_feed_ids "$T/raw.out"

# ---- the log agrees with the store ---------------------------------------
nids=0; missing=""
for i in $ids; do
	nids=$((nids + 1))
	logline "$i" >/dev/null || missing="$missing $i"
done
nlog=$(grep -c 'event=queued ' "$T/odmrd.log")
if [ -z "$missing" ] && [ "$nlog" -eq "$nids" ]; then
	ok "one event=queued log line per queued message ($nids)"
else
	not_ok "event=queued lines: $nlog for $nids messages; missing for:$missing"
fi
store_check "odmrctl check is clean"

# ---- shut down -----------------------------------------------------------
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
