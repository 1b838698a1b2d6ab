#!/bin/sh
# NAME
#	test-odmr-fetch.sh - odmr-fetch collects from a real odmrd and hands
#	the mail to Postfix, smtp-sink (SMTP and LMTP)
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-odmr-fetch.sh
# DESCRIPTION
#	A real odmrd (odmrd-lib.sh: free ports, its own store, a self-signed
#	certificate for mx.odmr.test, odmrs_listen for implicit TLS) with
#	accounts and domains made by odmrctl; mail is queued over its MX
#	port with python3 smtplib, and each message's stored text
#	("odmrctl --json show ID --raw") is kept so that what arrives can be
#	compared byte for byte. odmr-fetch runs with --hostname fetch.test
#	and -v, its stderr kept per run.
#
#	Cases:
#	- usage errors exit 5;
#	- no mail: exit 1 (ATRN 453), nothing asked of the local MTA;
#	- the local MTA down: exit 4 before ATRN, the queue untouched;
#	- a wrong password: exit 2; a scripted python3 provider: offering
#	  PLAIN and LOGIN only, without TLS, gets no AUTH (exit 2); without
#	  STARTTLS, QUIT after EHLO (exit 3); offering PLAIN, LOGIN,
#	  CRAM-MD5 and SCRAM-SHA-1 without TLS, gets CRAM-MD5;
#	- a bad certificate (another CA; the right CA but a name mismatch):
#	  exit 3, nothing fetched;
#	- STARTTLS + SCRAM-SHA-256 to smtp-sink -d: each dump holds, after
#	  smtp-sink's and odmr-fetch's Received: fields, the stored text
#	  (LF for CRLF, one extra empty line), with the right envelope; the
#	  other domain's mail stays queued;
#	- BDAT (RFC 3030) from odmrd to smtp-sink, which has no CHUNKING:
#	  dot lines, 8-bit text and a 2.5 MiB message (three chunks; 250
#	  "octets received" for the two 1 MiB ones) relayed as DATA text,
#	  each dump byte for byte as stored; odmrd sent BDAT, never DATA;
#	- a scripted provider (bdat.py: CRAM-MD5, ATRN, then the client of
#	  the reversed session), to smtp-sink and again to Postfix: EHLO
#	  offers CHUNKING, not BINARYMIME; BDAT before MAIL 503 (its octets,
#	  QUIT among them, skipped); BODY=BINARYMIME 555; two chunks, the
#	  first not LAST (a CRLF split between them, dot lines, a bare LF,
#	  no final CRLF); DATA inside a BDAT transaction 503; BDAT without
#	  a recipient 554; three transactions in one write; to Postfix a
#	  chunk over the SIZE offered (552); a malformed size: 421 and
#	  close (exit 3); every reply code in order, and each message
#	  arrived once, byte for byte; and RSET after a first chunk that
#	  smtp-sink takes as DATA text: 421, nothing delivered;
#	- --local-connections 1, 2 and 3 to smtp-sink: 24 messages (one of
#	  2.5 MiB) each arrived once, byte for byte; with 1 no second
#	  connection and no held text; with more, a second connection, texts
#	  held for their 354 and a RSET of ours in front of the MAIL queued
#	  behind one; no reply out of step; 0, 9 and "two": exit 5;
#	- a private Postfix on loopback that holds example.org's mail and
#	  rejects one recipient (5xx) and defers another (4xx): exit 0,
#	  DSN parameters (RET, ENVID, NOTIFY, ORCPT) passed through,
#	  every message (one of 2.5 MiB) held byte for byte after
#	  Postfix's and our Received:, relayed BDAT to BDAT (Postfix has
#	  CHUNKING), the 5xx recipient failed at the provider, the 4xx one
#	  still queued there, all the others gone from the queue;
#	- the same Postfix reloaded without CHUNKING, two connections: DATA
#	  refused (554, no valid recipient) for three held texts among
#	  accepted ones: those are the chunks' replies, the 5xx recipients
#	  failed at the provider, the 4xx ones still queued, no nested
#	  MAIL, every other message held byte for byte;
#	- implicit TLS to odmrs_listen, two domains, to a local MTA without
#	  PIPELINING (smtp-sink -p: one command at a time);
#	- a local MTA without 8BITMIME (smtp-sink -8): the provider is not
#	  offered 8BITMIME and sends the 8-bit message as 7-bit MIME;
#	- LMTP to smtp-sink -L on a UNIX socket: one recipient per
#	  transaction (452 4.5.3 for the second), the second recipient
#	  delivered by the next run;
#	- the local MTA vanishing mid-session (smtp-sink -M 2): exit 4, and
#	  every message is either delivered or still queued at the provider;
#	- --daemon 1s: a log line per pickup, SIGTERM ends it with exit 0;
#	- --etrn on the MX port (and after AUTH on the ODMR port): 250/253
#	  exit 0 and the route gets the mail, 251 exit 1, 459 exit 2;
#	- no sanitizer report from odmr-fetch or odmrd, odmrctl check clean,
#	  odmrd exits 0 on SIGTERM.
#	KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"
. "$top_srcdir/tests/integration/postfix-lib.sh"

FETCH="$top_builddir/turn/odmr-fetch"
require_built "$FETCH"
require_cmd smtp-sink postfix
require_cmd postfix postfix
require_cmd postqueue postfix
require_cmd postcat postfix
require_cmd swaks swaks
require_cmd timeout coreutils
require_cmd python3 python3
require_cmd openssl openssl
odmrd_setup
ODMRS_PORT=$(free_port)
odmrd_conf odmrs_listen "127.0.0.1:$ODMRS_PORT"
# DSNs for failed recipients go nowhere: they stay in odmrd's own queue
odmrd_conf bounce_relay "127.0.0.1:$(free_port)"
export T SMTP_PORT ODMR_PORT ODMRS_PORT ODMRCTL
sink_pid=""
odmrd_extra_cleanup='[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; [ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null; [ -n "${PF:-}" ] && postfix_stop "$PF"'
# Postfix's daemons and smtp-sink (-u nobody) must reach their directories
chmod 711 "$T"
printf 'secret\n' >"$T/pw" && chmod 600 "$T/pw"
printf 'wrong\n' >"$T/badpw" && chmod 600 "$T/badpw"
NRUN=0

setup_ok=1
for u in alice:secret bob:bob-pw; do
	printf '%s\n' "${u#*:}" | octl user add "${u%%:*}" >>"$T/setup.out" 2>&1 || setup_ok=0
done
for d in example.org:alice example.net:alice example.com:bob; do
	octl domain add "${d%%:*}" --owner "${d#*:}" >>"$T/setup.out" 2>&1 || setup_ok=0
done
if [ $setup_ok -eq 1 ]; then ok "accounts alice and bob, three domains (odmrctl)"
else not_ok "setup: $(tr '\n' '|' <"$T/setup.out")"; fi
if odmrd_start; then ok "odmrd starts (odmr $ODMR_PORT, odmrs $ODMRS_PORT)"; else not_ok "odmrd starts"; tap_done; fi

cat >"$T/fx.py" <<'PY'
"""Queue mail and compare what the site's MTA got with the stored text
(what test-odmr-fetchmail.sh does too is in tests/tools/site_check.py)."""
import json, os, re, subprocess, sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.environ["top_srcdir"] + "/tests/tools")
from site_check import ok, ctl, send, stored, mid_of, same, empty, queued


def split_received(text, n):
    """The first n Received: fields (continuation lines included), and the rest."""
    lines = text.split(b"\n")
    heads, i = [], 0
    for _ in range(n):
        while i < len(lines) and not lines[i].startswith(b"Received:"):
            heads.append(lines[i])
            i += 1
        if i == len(lines):
            return None, None, None
        field = [lines[i]]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            field.append(lines[i])
            i += 1
        heads.append(b"\n".join(field))
    return heads, heads[-1], b"\n".join(lines[i:])


OURS = re.compile(rb"^Received: from mx\.odmr\.test \(\[127\.0\.0\.1\]\)\n\tby fetch\.test \(odmr-fetch\) "
                  rb"with ESMTPS? id \d+\.\d+;\n\t\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$")


def drop():
    return set(a for a in os.environ.get("DROP", "").split(",") if a)


def sink(label, d, *ids):
    """smtp-sink -d dumps in D against the stored messages IDS (DROP: recipients not expected)."""
    want = stored(ids)
    files = sorted(f for f in os.listdir(d) if not f.startswith(".")) if os.path.isdir(d) else []
    ok(len(files) == len(ids), "%s: smtp-sink dumped %d messages" % (label, len(ids)), files)
    seen = {}
    for f in files:
        raw = open(os.path.join(d, f), "rb").read()
        heads, ours, rest = split_received(raw, 2)
        if rest is None:
            seen.setdefault(None, []).append((raw, None, f))
            continue
        seen.setdefault(mid_of(rest), []).append((heads, ours, rest))
    for mid, meta in want.items():
        got = seen.get(mid, [])
        if not ok(len(got) == 1, "%s: %s arrived once" % (label, meta["id"]), "%d times" % len(got)):
            continue
        heads, ours, rest = got[0]
        ok(OURS.match(ours) is not None, "%s: %s carries odmr-fetch's Received: field" % (label, meta["id"]), ours)
        # smtp-sink writes LF line ends and adds one empty line at the end
        same("%s: %s dumped byte for byte as stored (CRLF as LF)" % (label, meta["id"]),
             rest, meta["data"].replace(b"\r\n", b"\n") + b"\n")
        mail = [ln for ln in heads if ln.startswith(b"X-Mail-Args: ")]
        rcpt = sorted(ln[len(b"X-Rcpt-Args: "):].split(b" ")[0].decode().strip("<>")
                      for ln in heads if ln.startswith(b"X-Rcpt-Args: "))
        wr = sorted(r for r in meta["rcpts"] if r not in drop())
        ok(len(mail) == 1 and mail[0][13:].split(b" ")[0] == ("<%s>" % meta["sender"]).encode() and rcpt == wr,
           "%s: %s envelope %s -> %s" % (label, meta["id"], meta["sender"], ",".join(wr)), heads)


def postfix(label, pf, *ids):
    """Every message held in the private Postfix, stored text after Postfix's and our Received:."""
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
        heads, ours, rest = split_received(c.stdout, 2)
        if rest is not None:
            seen.setdefault(mid_of(rest), []).append((e, ours, rest))
    for mid, meta in want.items():
        got = seen.get(mid, [])
        if not ok(len(got) == 1, "%s: %s arrived once" % (label, meta["id"]), "%d times" % len(got)):
            continue
        e, ours, rest = got[0]
        ok(OURS.match(ours) is not None, "%s: %s carries odmr-fetch's Received: field" % (label, meta["id"]), ours)
        same("%s: %s held byte for byte as stored (postcat -bh, CRLF as LF)" % (label, meta["id"]),
             rest, meta["data"].replace(b"\r\n", b"\n"))
        rc = sorted(r["address"] for r in e.get("recipients", []))
        wr = sorted(r for r in meta["rcpts"] if r not in drop())
        ok(e.get("sender") == meta["sender"] and rc == wr,
           "%s: %s envelope in Postfix: %s -> %s" % (label, meta["id"], meta["sender"], ",".join(wr)), e)


def dsn(pf, qid):
    """The DSN parameters of QID (kind dsn) reached Postfix (postcat -e:
    RET=HDRS is ret_flags 2, NOTIFY=SUCCESS,FAILURE notify_flags 2|4)."""
    meta = stored([qid])
    mid = list(meta)[0]
    tag = meta[mid]["sender"][2:].split("@")[0]
    q = subprocess.run(["postqueue", "-c", pf, "-j"], capture_output=True, timeout=30)
    for ln in q.stdout.decode().splitlines():
        e = json.loads(ln)
        c = subprocess.run(["postcat", "-c", pf, "-e", "-h", "-q", e["queue_id"]], capture_output=True, timeout=30)
        if mid.encode() not in c.stdout:
            continue
        out = c.stdout.decode(errors="replace")
        want = ["fetch-envid-" + tag, "rfc822;orig-%s@example.org" % tag]
        return ok(all(w in out for w in want) and re.search(r"(?m)^named_attribute: ret_flags=2$", out) and
                  re.search(r"(?m)^named_attribute: notify_flags=6$", out),
                  "DSN: ENVID, RET=HDRS, NOTIFY=SUCCESS,FAILURE and ORCPT of %s reached Postfix" % qid,
                  [l for l in out.splitlines() if re.search("dsn|envelope|ret|notify", l)])
    return ok(False, "DSN: %s is in Postfix" % qid)


def left(d, qids, rcpt, why):
    """Only QIDS (one id, or several space-separated) are left in D, each
    for RCPT alone, its last error matching WHY."""
    want = qids.split()
    q = ctl("queue", d)["messages"]
    good = len(q) == len(want)
    for qid in want:
        m = [x for x in q if x["id"] == qid]
        rc = m[0].get("recipients") if m else None
        rc = [r if isinstance(r, str) else r.get("address") for r in rc] if isinstance(rc, list) else rc
        good = good and len(m) == 1 and rc == [rcpt] and re.search(why, json.dumps(m[0])) is not None
    ok(good, "%s holds only %s, for %s (%s)" % (d, " ".join(want), rcpt, why), q)


def nothing_lost(label, d, dom, *ids):
    """Each of IDS either reached the sink dumps in D or is still queued in DOM."""
    want = stored(ids)
    files = sorted(os.listdir(d)) if os.path.isdir(d) else []
    got = set()
    for f in files:
        _, _, rest = split_received(open(os.path.join(d, f), "rb").read(), 2)
        if rest is not None:
            got.add(mid_of(rest))
    q = set(m["id"] for m in ctl("queue", dom)["messages"])
    lost = [m["id"] for mid, m in want.items() if mid not in got and m["id"] not in q]
    ok(not lost and len(got) < len(ids),
       "%s: %d delivered, %d still queued, none lost" % (label, len(got), len(q)), {"lost": lost, "queued": sorted(q)})


# kind "huge": about 2.5 MiB, so that odmrd sends it in several BDAT chunks of 1 MiB
HUGE_LINES = 31500


if __name__ == "__main__":
    f = {"send": lambda: send(sys.argv[2], sys.argv[3].split(","), sys.argv[4], "odmr-fetch") if sys.argv[4] != "huge"
         else send(sys.argv[2], sys.argv[3].split(","), "big", "odmr-fetch", big_lines=HUGE_LINES),
         "sink": lambda: sink(sys.argv[2], sys.argv[3], *sys.argv[4:]),
         "postfix": lambda: postfix(sys.argv[2], sys.argv[3], *sys.argv[4:]),
         "empty": lambda: empty(*sys.argv[2:]),
         "dsn": lambda: dsn(sys.argv[2], sys.argv[3]),
         "queued": lambda: queued(sys.argv[2], int(sys.argv[3])),
         "left": lambda: left(*sys.argv[2:6]),
         "lost": lambda: nothing_lost(sys.argv[2], sys.argv[3], sys.argv[4], *sys.argv[5:])}[sys.argv[1]]
    f()
PY

# a provider that offers PLAIN and LOGIN only, without TLS: AUTH must not come
# a scripted provider: EHLO offers "AUTH $3" (and STARTTLS never); AUTH
# CRAM-MD5 gets a challenge, then 535; every line is logged
cat >"$T/fake.py" <<'PY'
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(5)
log = open(sys.argv[2], "a")
auth = sys.argv[3].encode()


def serve(c):
    f = c.makefile("rwb")
    f.write(b"220 fake.test ESMTP\r\n"); f.flush()
    sasl = False
    for line in f:
        log.write(line.decode(errors="replace")); log.flush()
        words = line.split()
        verb = words[0].upper() if words else b""
        if sasl:
            f.write(b"535 5.7.8 no\r\n"); sasl = False
        elif verb == b"EHLO":
            f.write(b"250-fake.test\r\n250-AUTH " + auth + b"\r\n250-ATRN\r\n250 HELP\r\n")
        elif verb == b"AUTH" and len(words) > 1 and words[1].upper() == b"CRAM-MD5":
            f.write(b"334 PDEyMzQ1LjY3ODlAZmFrZS50ZXN0Pg==\r\n"); sasl = True
        elif verb == b"QUIT":
            f.write(b"221 bye\r\n"); f.flush(); break
        else:
            f.write(b"502 no\r\n")
        f.flush()


while True:
    c, _ = srv.accept()
    try:
        serve(c)
    except OSError:
        pass	# a peer that hung up (wait_port's probe)
    c.close()
PY

# the BDAT provider: CRAM-MD5 (any answer), ATRN, then, as the client of the
# reversed session, a script of BDAT cases, one "ok"/"not ok" line for each
# reply group; "check" compares what the local MTA got with what was sent
cat >"$T/bdat.py" <<'PY'
import json, os, socket, subprocess, sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.environ["T"])
from fx import split_received
from site_check import ok

# two chunks: a CRLF split between them, lines that begin with ".", a lone
# ".", a bare LF, 8-bit octets, and no CRLF at the end
HDR = b"To: c@example.org\r\nDate: Tue, 11 Jun 2024 10:00:00 +0000\r\n"	# nothing for Postfix to add
TWO = (b"From: a@fake.test\r\n" + HDR + b"Subject: two chunks\r\n"
       b"Message-ID: <two.chunks@fake.test>\r\n\r\nfirst line\r\n.starts with a dot\r\nsplit CRLF\r",
       b"\n.\r\n..two dots\r\nbare\nLF, caf\xc3\xa9\r\n.\r\nno final CRLF")
# a chunk, DATA (503), the LAST chunk
INSIDE = (b"From: a@fake.test\r\n" + HDR + b"Message-ID: <data.inside@fake.test>\r\n\r\nbefore DATA\r\n",
          b"after DATA\r\n")


def back(i):
    """One of the back-to-back messages."""
    return b"From: b%d@fake.test\r\n%sMessage-ID: <back.%d@fake.test>\r\n\r\nback to back %d\r\n" % (i, HDR, i, i)


def want(extra):
    """Message-ID -> the text the local MTA should hold (LF line ends; EXTRA after it)."""
    msgs = {"<two.chunks@fake.test>": b"".join(TWO) + b"\r\n", "<data.inside@fake.test>": b"".join(INSIDE)}
    msgs.update(("<back.%d@fake.test>" % i, back(i)) for i in range(3))
    return {k: v.replace(b"\r\n", b"\n") + extra for k, v in msgs.items()}


def bdat(data, last=True):
    """BDAT and its octets."""
    return b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data


def serve(port, ready, over, abandon):
    """Be the provider on PORT (READY: a file made once it listens); OVER: a chunk size over the limit, or 0;
    ABANDON: only RSET after a first chunk that is not LAST."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    srv.settimeout(60)
    open(ready, "w").close()
    c, _ = srv.accept()
    c.settimeout(60)
    f = c.makefile("rwb")

    def put(b):
        """Write B at once."""
        f.write(b)
        f.flush()

    def reply():
        """One whole reply: its code (None at EOF) and lines."""
        lines = []
        while True:
            ln = f.readline()
            if not ln:
                return None, lines
            lines.append(ln.rstrip(b"\r\n").decode(errors="replace"))
            if ln[3:4] != b"-":
                return int(ln[:3]), lines

    put(b"220 fake.test ESMTP\r\n")
    for line in f:
        verb = line.split()[0].upper() if line.split() else b""
        if verb == b"EHLO":
            put(b"250-fake.test\r\n250-AUTH CRAM-MD5\r\n250-ATRN\r\n250 HELP\r\n")
        elif verb == b"AUTH":
            put(b"334 PDEyMzQ1LjY3ODlAZmFrZS50ZXN0Pg==\r\n")
            f.readline()
            put(b"235 2.7.0 ok\r\n")
        elif verb == b"ATRN":
            put(b"250 OK now reversing the connection\r\n")
            break
        else:
            put(b"502 no\r\n")
    code, _ = reply()
    ok(code == 220, "BDAT provider: the reversed session opens with 220", code)
    put(b"EHLO fake.test\r\n")
    code, lines = reply()
    ok(code == 250 and "250-CHUNKING" in lines and not any("BINARYMIME" in l for l in lines),
       "BDAT provider: EHLO offers CHUNKING, not BINARYMIME", lines)
    mail = lambda i: b"MAIL FROM:<a%d@fake.test>\r\nRCPT TO:<c%d@example.org>\r\n" % (i, i)
    if abandon:
        put(mail(30) + bdat(TWO[0], False))
        got = [reply()[0] for _ in range(3)]
        put(b"RSET\r\n")
        code, lines = reply()
        rest = f.read()
        ok(got == [250, 250, 250] and code == 421 and rest == b"",
           "BDAT provider: RSET after a chunk the local MTA takes as DATA text: 421, then the connection is closed",
           (got, lines, rest[:80]))
        return
    steps = [
        ("BDAT before MAIL: 503, its octets (QUIT among them) skipped", bdat(b"QUIT\r\nXXXX\r\n") + b"NOOP\r\n", [503, 250]),
        ("BODY=BINARYMIME is not offered: 555", b"MAIL FROM:<x@fake.test> BODY=BINARYMIME\r\n", [555]),
        ("two chunks, the first not LAST: one message", mail(1) + bdat(TWO[0], False) + bdat(TWO[1]),
         [250, 250, 250, 250]),
        ("DATA inside a BDAT transaction: 503, the transaction goes on",
         mail(2) + bdat(INSIDE[0], False) + b"DATA\r\n" + bdat(INSIDE[1]), [250, 250, 250, 503, 250]),
        ("BDAT without an accepted recipient: 554", b"RSET\r\nMAIL FROM:<a3@fake.test>\r\n" + bdat(b"x\r\nyz") +
         b"NOOP\r\n", [250, 250, 554, 250]),
        ("three pipelined transactions in one write (RSET MAIL RCPT BDAT LAST)",
         b"".join(b"RSET\r\n" + mail(10 + i) + bdat(back(i)) for i in range(3)), [250] * 12),
    ]
    if over:
        # larger than the SIZE we offer: read and dropped, never held
        steps.append(("a chunk over the SIZE limit: 552, the session goes on", b"RSET\r\n" + mail(20) +
                      b"BDAT %d LAST\r\n" % over + b"y" * over + b"NOOP\r\n", [250, 250, 250, 552, 250]))
    for desc, data, codes in steps:
        put(data)
        got = [reply()[0] for _ in codes]
        ok(got == codes, "BDAT provider: " + desc, "got %s, want %s" % (got, codes))
    put(b"BDAT 12x LAST\r\nhello world\r\n")
    code, lines = reply()
    rest = f.read()
    ok(code == 421 and rest == b"", "BDAT provider: a malformed BDAT size: 421, then the connection is closed",
       (lines, rest[:80]))


def check(label, where, d):
    """The dumps of smtp-sink in D, or the messages held by the Postfix of config D."""
    texts = {}
    if where == "sink":
        extra = b"\n"	# smtp-sink adds an empty line
        for name in os.listdir(d):
            _, _, rest = split_received(open(os.path.join(d, name), "rb").read(), 2)
            texts[name] = rest
    else:
        extra = b""
        q = subprocess.run(["postqueue", "-c", d, "-j"], capture_output=True, timeout=30)
        for ln in q.stdout.decode().splitlines():
            e = json.loads(ln)
            c = subprocess.run(["postcat", "-c", d, "-bh", "-q", e["queue_id"]], capture_output=True, timeout=30)
            texts[e["queue_id"]] = split_received(c.stdout, 2)[2]
    for mid, text in want(extra).items():
        got = [t for t in texts.values() if t is not None and mid.encode() in t]
        ok(len(got) == 1 and got[0] == text, "%s: %s arrived once, byte for byte" % (label, mid),
           got[0][-120:] if len(got) == 1 else "%d copies" % len(got))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:] == ["abandon"])
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4])
PY

# bdat_provider OVER [abandon] - start bdat.py on $BDAT_PORT (OVER: the size of a
# chunk over the limit, 0 for none; abandon: RSET after a first chunk instead)
bdat_provider() {
	BDAT_PORT=$(free_port)
	rm -f "$T/bdat.ready"
	python3 "$T/bdat.py" serve "$BDAT_PORT" "$T/bdat.ready" "$@" >"$T/bdat.out" 2>&1 &
	bdat_pid=$!
	_i=0; while [ ! -f "$T/bdat.ready" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
}

# bdat_done - wait for bdat.py, its lines become cases
bdat_done() {
	wait "$bdat_pid"
	_rc=$?
	tap_feed "$T/bdat.out"
	[ $_rc -eq 0 ] || not_ok "bdat.py failed (exit $_rc)"
}

# fake AUTH-LINE - start the scripted provider on $FAKE_PORT, its log $T/fake.log
fake() {
	FAKE_PORT=$(free_port)
	: >"$T/fake.log"
	python3 "$T/fake.py" "$FAKE_PORT" "$T/fake.log" "$1" >/dev/null 2>&1 &
	fake_pid=$!
	wait_port "$FAKE_PORT"
}

# unfake - stop it
unfake() {
	kill "$fake_pid" 2>/dev/null
	wait "$fake_pid" 2>/dev/null
	fake_pid=""
}

# fx ARGS... - run the python side; its ok/not ok lines become cases
fx() {
	python3 "$T/fx.py" "$@" >"$T/fx.out" 2>&1
	_rc=$?
	tap_feed "$T/fx.out"
	[ $_rc -eq 0 ] || not_ok "fx.py $1 failed (exit $_rc)"
	return $_rc
}

# queue_msg TAG RCPTS KIND - queue one message; its id is appended to $ids
queue_msg() {
	if _id=$(python3 "$T/fx.py" send "$1" "$2" "$3" 2>"$T/send.err"); then
		ids="$ids $_id"
	else
		not_ok "queue $1 for $2: $(tail -n 3 "$T/send.err" | tr '\n' '|')"
	fi
}

# ehlo_lacks PORT KEYWORD - the EHLO reply of 127.0.0.1:PORT does not
# offer KEYWORD (a Postfix reload has taken effect)
ehlo_lacks() {
	python3 -c 'import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
s.ehlo("fetch.test")
lacks = not s.has_extn(sys.argv[2])
s.quit()
sys.exit(0 if lacks else 1)' "$1" "$2" 2>/dev/null
}

# fetch NAME ARGS... - odmr-fetch under timeout 60; status in $rc, stderr in $T/NAME.err
fetch() {
	_n=$1; shift
	NRUN=$((NRUN + 1))
	timeout 60 "$FETCH" --hostname fetch.test -v "$@" >"$T/$_n.err" 2>&1
	rc=$?
}

# fetch_is WANT DESC - the last run exited WANT
fetch_is() {
	if [ "$rc" -eq "$1" ]; then ok "$2 (exit $rc)"
	else not_ok "$2: exit $rc, want $1: $(grep -v 'debug\]' "$T/$_n.err" | tail -n 6 | tr '\n' '|')"; fi
}

TLS="--ca-file $T/cert.pem --tls-name mx.odmr.test"
ODMR="--server 127.0.0.1:$ODMR_PORT --user alice --password-file $T/pw"

# ---- usage ------------------------------------------------------------------
expect_exit 5 "no --server: exit 5" "$FETCH" --user alice
expect_exit 5 "--tls bogus: exit 5" "$FETCH" --server 127.0.0.1 --user alice --password-file "$T/pw" --tls bogus
expect_exit 5 "--etrn without --domains: exit 5" "$FETCH" --server 127.0.0.1 --etrn
expect_exit 5 "no password at all: exit 5" env -u ODMR_PASSWORD "$FETCH" --server 127.0.0.1 --user alice
expect_exit 5 "--deliver-to and --lmtp together: exit 5" "$FETCH" $ODMR --deliver-to 127.0.0.1:25 --lmtp /tmp/x.sock
expect_exit 5 "a bad domain in --domains: exit 5" "$FETCH" $ODMR --domains 'exa mple.org'

# ---- no mail -----------------------------------------------------------------
start_sink "$T/sink0"
fetch nomail $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 1 "no mail waiting: ATRN 453"
check "no mail: odmr-fetch logged the 453" grep -q 'event=atrn domains=example.org reply="453' "$T/nomail.err"
odmrd_wait_unclaimed example.org
stop_sink

# ---- the local MTA down: nothing is asked for ----------------------------------
ids=""
queue_msg down1 d1@example.org plain
queue_msg down2 d2@example.org plain
down_ids=$ids
fetch down $ODMR $TLS --deliver-to "127.0.0.1:$(free_port)"
fetch_is 4 "local MTA down: exit 4"
check "local MTA down: ATRN was never sent" sh -c "! grep -q 'line=\"ATRN' '$T/down.err' && ! grep -q 'provider=' '$T/down.err'"
fx queued example.org 2

# ---- AUTH: a wrong password; PLAIN never in clear -------------------------------
start_sink "$T/sinkx"
fetch badpw --server "127.0.0.1:$ODMR_PORT" --user alice --password-file "$T/badpw" $TLS --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 2 "wrong password: exit 2"
check "wrong password: 535 logged" grep -q 'result=failed reply="535' "$T/badpw.err"
fake "PLAIN LOGIN"
fetch plain --server "127.0.0.1:$FAKE_PORT" --user alice --password-file "$T/pw" --tls none --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 2 "a server offering only PLAIN and LOGIN without TLS: exit 2"
check "no AUTH command went to it in clear" sh -c "grep -q '^EHLO' '$T/fake.log' && ! grep -qi '^AUTH' '$T/fake.log'"
fetch nostarttls --server "127.0.0.1:$FAKE_PORT" --user alice --password-file "$T/pw" --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 3 "--tls starttls (the default) and a server without STARTTLS: exit 3"
check "without STARTTLS: QUIT right after EHLO" sh -c "[ \"\$(tail -n 2 '$T/fake.log' | tr -d '\r' | cut -d' ' -f1 | tr '\n' ' ')\" = 'EHLO QUIT ' ]"
unfake
fake "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1"
fetch cram --server "127.0.0.1:$FAKE_PORT" --user alice --password-file "$T/pw" --tls none --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 2 "CRAM-MD5 chosen without TLS, and its 535: exit 2"
check "CRAM-MD5: AUTH CRAM-MD5, then a digest that is not the password" sh -c "grep -q '^AUTH CRAM-MD5' '$T/fake.log' && ! grep -q 'secret' '$T/fake.log' && [ \$(grep -c '^AUTH' '$T/fake.log') -eq 1 ]"
unfake
fx queued example.org 2

# ---- bad certificates: nothing fetched ------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mx.odmr.test" \
    -addext "subjectAltName=DNS:mx.odmr.test" -keyout "$T/other.key" -out "$T/other.pem" >/dev/null 2>&1
fetch wrongca $ODMR --ca-file "$T/other.pem" --tls-name mx.odmr.test --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 3 "STARTTLS, a certificate from another CA: exit 3"
check "wrong CA: the certificate was refused before AUTH" sh -c "grep -qi 'certificate' '$T/wrongca.err' && ! grep -q 'line=\"AUTH' '$T/wrongca.err'"
fetch wrongname $ODMR --ca-file "$T/cert.pem" --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 3 "STARTTLS, the right CA but 127.0.0.1 is not the certificate's name: exit 3"
check "name mismatch: refused before AUTH" sh -c "grep -qi 'certificate' '$T/wrongname.err' && ! grep -q 'line=\"AUTH' '$T/wrongname.err'"
fetch implicitname --server "127.0.0.1:$ODMRS_PORT" --user alice --password-file "$T/pw" --tls implicit --ca-file "$T/other.pem" --tls-name mx.odmr.test --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 3 "implicit TLS, a certificate from another CA: exit 3"
stop_sink
fx queued example.org 2

# ---- STARTTLS + SCRAM-SHA-256 to smtp-sink -------------------------------------
ids="$down_ids"
queue_msg plain1 u1@example.org plain
queue_msg dots u2@example.org dots
queue_msg eight u3@example.org 8bit
queue_msg big u4@example.org,u5@example.org big
sink_ids=$ids
ids=""
queue_msg net1 n1@example.net plain
net_ids=$ids
start_sink "$T/sink1"
fetch sink $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 0 "STARTTLS, SCRAM-SHA-256, smtp-sink: mail delivered"
check "SCRAM-SHA-256 inside TLS (odmr-fetch's log)" grep -q 'event=auth user=alice mechanism=SCRAM-SHA-256 tls=yes result=ok' "$T/sink.err"
check "SCRAM-SHA-256 (odmrd's log)" grep -q 'event=auth user=alice mech=SCRAM-SHA-256' "$(odmrd_log)"
check "the certificate was verified" grep -q 'event=provider-tls .*verified=yes' "$T/sink.err"
check "the pickup line counts 6 messages" grep -q 'event=poll .*exit=0 result=delivered messages=6 ' "$T/sink.err"
odmrd_wait_unclaimed example.org
stop_sink
fx sink "smtp-sink" "$T/sink1" $sink_ids
fx empty example.org
fx queued example.net 1

# ---- BDAT from odmrd to a local MTA without CHUNKING: DATA text ------------------
ids=""
queue_msg bd1 b1@example.org dots
queue_msg bd2 b2@example.org 8bit
queue_msg bd3 b3@example.org huge
queue_msg bd4 b4@example.org,b5@example.org plain
bd_ids=$ids
start_sink "$T/sinkb"
fetch bdat $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 0 "BDAT to smtp-sink (no CHUNKING): mail delivered"
check "BDAT to smtp-sink: the provider sent BDAT LAST, never DATA" sh -c "grep -q 'event=relay-command line=\"BDAT [0-9]* LAST\"' '$T/bdat.err' && ! grep -q 'event=relay-command line=\"DATA\"' '$T/bdat.err'"
check "BDAT to smtp-sink: the 2.5 MiB message came as chunks of 1 MiB, each answered 250" sh -c "[ \$(grep -c 'event=relay-chunk size=1048576 last=no as=data' '$T/bdat.err') -eq 2 ] && [ \$(grep -c 'relay-reply reply=\"250 2.0.0 1048576 octets received\"' '$T/bdat.err') -eq 2 ]"
check "BDAT to smtp-sink: relayed as DATA text, no BDAT to it" sh -c "grep -q 'local-send line=\"DATA\"' '$T/bdat.err' && ! grep -q 'local-send line=\"BDAT' '$T/bdat.err' && [ \$(grep -c 'event=relayed .* as=bdat-to-data reply=\"250' '$T/bdat.err') -eq 4 ]"
odmrd_wait_unclaimed example.org
stop_sink
fx sink "BDAT to smtp-sink" "$T/sinkb" $bd_ids
fx empty example.org

# ---- more connections to a local MTA without CHUNKING (--local-connections) ------
expect_exit 5 "--local-connections 0: exit 5" "$FETCH" $ODMR --local-connections 0
expect_exit 5 "--local-connections 9: exit 5" "$FETCH" $ODMR --local-connections 9
expect_exit 5 "--local-connections two: exit 5" "$FETCH" $ODMR --local-connections two
for n in 1 2 3; do
	ids=""
	i=0
	while [ $i -lt 24 ]; do
		i=$((i + 1))
		case $i in
		5) queue_msg "ln$n.$i" "n$i@example.org" dots ;;
		9) queue_msg "ln$n.$i" "n$i@example.org" 8bit ;;
		13) queue_msg "ln$n.$i" "n$i@example.org" big ;;
		17) queue_msg "ln$n.$i" "n$i@example.org" huge ;;
		*) queue_msg "ln$n.$i" "n$i@example.org,m$i@example.org" plain ;;
		esac
	done
	ln_ids=$ids
	start_sink "$T/sinkl$n"
	fetch lanes$n $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$SINK_PORT" --local-connections $n
	fetch_is 0 "--local-connections $n: 24 messages to smtp-sink"
	check "--local-connections $n: 24 messages relayed as DATA text" sh -c "[ \$(grep -c 'event=relayed .* as=bdat-to-data reply=\"250' '$T/lanes$n.err') -eq 24 ]"
	if [ $n -eq 1 ]; then
		check "--local-connections 1: one connection, texts not held" sh -c "! grep -q 'event=lane-open' '$T/lanes1.err' && ! grep -q 'event=local-hold' '$T/lanes1.err' && grep -q 'event=poll .* local_connections=1 ' '$T/lanes1.err'"
	else
		check "--local-connections $n: the pickup line counts 2 to $n connections" grep -Eq "event=poll .* local_connections=[2-$n] " "$T/lanes$n.err"
		check "--local-connections $n: up to $n connections, texts held for their 354 with a RSET in front of the next MAIL" sh -c "grep -q 'event=lane-ready lane=1 ' '$T/lanes$n.err' && ! grep -q 'event=lane-ready lane=$n ' '$T/lanes$n.err' && grep -q 'event=local-hold line=\"RSET\"' '$T/lanes$n.err'"
	fi
	check "--local-connections $n: no reply out of step" sh -c "! grep -q 'relay-desync' '$T/lanes$n.err'"
	odmrd_wait_unclaimed example.org
	stop_sink
	fx sink "--local-connections $n" "$T/sinkl$n" $ln_ids
	fx empty example.org
done

# ---- a scripted provider's BDAT cases, to smtp-sink (BDAT as DATA text) -----------
start_sink "$T/sinkbp"
bdat_provider 0
fetch bdatfake --server "127.0.0.1:$BDAT_PORT" --user alice --password-file "$T/pw" --tls none --domains example.org --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 3 "BDAT provider to smtp-sink: the malformed BDAT size ends the session"
bdat_done
check "BDAT provider to smtp-sink: the malformed size is logged" grep -q 'error=.*BDAT without a valid size' "$T/bdatfake.err"
stop_sink
python3 "$T/bdat.py" check "BDAT provider to smtp-sink" sink "$T/sinkbp" >"$T/bdatc.out" 2>&1 || not_ok "bdat.py check failed"
tap_feed "$T/bdatc.out"
# RSET after a first chunk: smtp-sink has begun taking the text as DATA,
# and only hanging up keeps the half message from being delivered
start_sink "$T/sinkab"
bdat_provider 0 abandon
fetch bdatab --server "127.0.0.1:$BDAT_PORT" --user alice --password-file "$T/pw" --tls none --domains example.org --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 3 "BDAT provider abandons a message relayed as DATA text: the session ends"
bdat_done
stop_sink
check "BDAT provider abandons a message: logged, and smtp-sink has no message" sh -c "grep -q 'event=bdat-abandoned command=RSET chunks=1' '$T/bdatab.err' && [ -z \"\$(ls '$T/sinkab')\" ]"

# ---- a private Postfix: hold, one 5xx recipient, one 4xx -------------------------
PF=$T/pf
PFPORT=$(free_port)
if postfix_setup "$PF" "$PFPORT" &&
    postfix_conf "$PF" 'myhostname = customer-mta.test' \
	'relay_domains = example.org, example.net' \
	'smtpd_recipient_restrictions = check_recipient_access inline:{ { reject@example.org = REJECT no such user here }, { later@example.org = 450 4.2.0 try later }, example.org=HOLD, example.net=HOLD }' &&
    postfix_start "$PF"; then
	ok "private Postfix starts (config $PF, port $PFPORT)"
	ids=""
	queue_msg pf1 p1@example.org plain
	queue_msg pf2 p2@example.org,p3@example.org dots
	queue_msg pf3 p4@example.org 8bit
	queue_msg pf4 p5@example.org big
	queue_msg pf5 ok1@example.org,reject@example.org plain
	queue_msg pf8 p6@example.org huge
	queue_msg pf7 dsn1@example.org dsn
	dsn_id=${ids##* }
	pf_ids=$ids
	ids=""
	queue_msg pf6 ok2@example.org,later@example.org plain
	later_id=${ids# }
	fetch postfix $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$PFPORT"
	fetch_is 0 "Postfix: mail delivered"
	check "Postfix: the 5xx recipient was refused and logged" grep -q 'event=rcpt-refused to=<reject@example.org> reply="554' "$T/postfix.err"
	check "Postfix: the 4xx recipient was refused for now and logged" grep -q 'event=rcpt-refused to=<later@example.org> reply="450' "$T/postfix.err"
	check "odmrd failed reject@example.org with Postfix's 554" grep -q 'event=failed .*to=<reject@example.org>.*554' "$(odmrd_log)"
	check "Postfix: BDAT relayed as BDAT (the 2.5 MiB message in 1 MiB chunks), never DATA" sh -c "grep -q 'event=relay-command line=\"BDAT 1048576\"' '$T/postfix.err' && grep -q 'local-send line=\"BDAT 1048576\"' '$T/postfix.err' && grep -q 'local-send line=\"BDAT [0-9]* LAST\"' '$T/postfix.err' && ! grep -q 'local-send line=\"DATA\"' '$T/postfix.err' && [ \$(grep -c 'event=relayed .* as=bdat reply=\"250' '$T/postfix.err') -eq 8 ]"
	odmrd_wait_unclaimed example.org
	# until cleanup has filed every message into the hold queue
	postfix_wait_held "$PF" $(echo $pf_ids $later_id | wc -w) ||
	    diag "Postfix holds $(postfix_held "$PF") of $(echo $pf_ids $later_id | wc -w)"
	DROP=reject@example.org,later@example.org fx postfix "Postfix" "$PF/conf" $pf_ids $later_id
	fx dsn "$PF/conf" "$dsn_id"
	fx left example.org "$later_id" later@example.org "450"
	octl delete "$later_id" >/dev/null 2>&1
	fx empty example.org
	# the scripted BDAT cases, to Postfix: BDAT to BDAT, and a chunk over
	# the SIZE we offer (10240000 less 1024)
	pf_before=$(postfix_held "$PF")
	bdat_provider 10300000
	fetch bdatpf --server "127.0.0.1:$BDAT_PORT" --user alice --password-file "$T/pw" --tls none --domains example.org --deliver-to "127.0.0.1:$PFPORT"
	fetch_is 3 "BDAT provider to Postfix: the malformed BDAT size ends the session"
	bdat_done
	check "BDAT provider to Postfix: chunks relayed as BDAT, the first grown by our Received:" sh -c "grep -q 'event=relay-chunk size=[0-9]* last=no as=bdat' '$T/bdatpf.err' && ! grep -q 'local-send line=\"DATA\"' '$T/bdatpf.err' && ! grep -q 'local-send line=\"BDAT 10300000' '$T/bdatpf.err'"
	# the five messages bdat.py sends whole, filed into the hold queue
	postfix_wait_held "$PF" $((pf_before + 5)) ||
	    diag "Postfix holds $(postfix_held "$PF"), want $((pf_before + 5))"
	python3 "$T/bdat.py" check "BDAT provider to Postfix" postfix "$PF/conf" >"$T/bdatc.out" 2>&1 || not_ok "bdat.py check failed"
	tap_feed "$T/bdatc.out"

	# Postfix without CHUNKING, two connections: held texts whose DATA
	# Postfix refuses (no valid recipient) among accepted ones
	postsuper -c "$PF/conf" -d ALL >/dev/null 2>&1
	# the reload is done when smtpd's EHLO stops offering CHUNKING
	if postconf -c "$PF/conf" -e 'smtpd_discard_ehlo_keywords = chunking' &&
	    postfix -c "$PF/conf" reload >/dev/null 2>&1 &&
	    wait_until 20 ehlo_lacks "$PFPORT" chunking; then
		ok "Postfix reloaded without CHUNKING"
	else
		not_ok "Postfix reloaded without CHUNKING"
	fi
	ids=""
	queue_msg nc1 c1@example.org plain
	queue_msg nc2 c2@example.org dots
	queue_msg nc3 c3@example.org,reject@example.org 8bit
	queue_msg nc4 c4@example.org big
	queue_msg nc5 c5@example.org plain
	queue_msg nc6 c6@example.org huge
	queue_msg nc7 c7@example.org plain
	queue_msg nc8 c8@example.org plain
	nc_ids=$ids
	ids=""
	queue_msg ncr1 reject@example.org plain
	ncr1=${ids# }
	ids=""
	queue_msg ncl later@example.org plain
	ncl=${ids# }
	ids=""
	queue_msg ncr2 reject@example.org big
	ncr2=${ids# }
	ids=""
	queue_msg nc9 c9@example.org plain
	queue_msg nc10 c10@example.org,later@example.org plain
	nc_ids="$nc_ids $ids"
	nc10=${ids##* }
	refused_before=$(grep -c 'event=failed .*to=<reject@example.org>.*55' "$(odmrd_log)")
	fetch nochunk $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$PFPORT" --local-connections 2
	fetch_is 0 "Postfix without CHUNKING: mail delivered over two connections"
	check "Postfix without CHUNKING: a second connection, texts held for their 354, no reply out of step" sh -c "grep -q 'event=lane-ready lane=1 ' '$T/nochunk.err' && grep -q 'event=local-hold line=\"RSET\"' '$T/nochunk.err' && ! grep -q 'relay-desync' '$T/nochunk.err' && ! grep -q 'local-send line=\"BDAT' '$T/nochunk.err'"
	check "Postfix without CHUNKING: DATA refused for the three messages without a valid recipient, as their chunks' replies" sh -c "[ \$(grep -c 'event=message-refused .* as=bdat-to-data reply=\"554' '$T/nochunk.err') -eq 3 ]"
	check "Postfix without CHUNKING: no nested MAIL after a refused DATA" sh -c "! grep -qi 'nested' '$T/nochunk.err'"
	odmrd_wait_unclaimed example.org
	check "odmrd failed reject@example.org in the three messages that had it, with Postfix's 5xx" sh -c "[ \$(grep -c 'event=failed .*to=<reject@example.org>.*55' '$(odmrd_log)') -eq $((refused_before + 3)) ]"
	postfix_wait_held "$PF" $(echo $nc_ids | wc -w) ||
	    diag "Postfix holds $(postfix_held "$PF") of $(echo $nc_ids | wc -w)"
	DROP=reject@example.org,later@example.org fx postfix "Postfix without CHUNKING" "$PF/conf" $nc_ids
	fx left example.org "$ncl $nc10" later@example.org "450"
	for q in $ncl $nc10; do octl delete "$q" >/dev/null 2>&1; done
	fx empty example.org
else
	not_ok "private Postfix starts: $(tr '\n' '|' <"$PF/start.log")"
fi

# ---- implicit TLS to odmrs_listen, two domains ------------------------------------
ids=""
queue_msg tls1 t1@example.org plain
queue_msg tls2 t2@example.org 8bit
tls_ids="$ids $net_ids"
start_sink "$T/sink3" -p
fetch implicit --server "127.0.0.1:$ODMRS_PORT" --user alice --password-file "$T/pw" --tls implicit $TLS --domains example.org,example.net --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 0 "implicit TLS (odmrs_listen), example.org and example.net, to a local MTA without PIPELINING (smtp-sink -p)"
odmrd_wait_unclaimed example.org
odmrd_wait_unclaimed example.net
stop_sink
fx sink "implicit TLS" "$T/sink3" $tls_ids
fx empty example.org example.net

# ---- a local MTA without 8BITMIME: the provider downgrades ------------------------
ids=""
queue_msg seven s1@example.org 8bit
seven_id=${ids# }
start_sink "$T/sink8" -8
fetch seven $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 0 "a local MTA without 8BITMIME (smtp-sink -8)"
odmrd_wait_unclaimed example.org
stop_sink
if python3 - "$T/sink8" "$T/stored/$seven_id.json" <<'PY'
import json, os, sys
d = sys.argv[1]
mid = json.load(open(sys.argv[2]))["mid"].encode()
files = [open(os.path.join(d, f), "rb").read() for f in os.listdir(d)]
ok = len(files) == 1 and mid in files[0] and all(b < 128 for b in files[0]) and b"BODY=8BITMIME" not in files[0]
sys.exit(0 if ok else 1)
PY
then ok "without 8BITMIME: 8BITMIME was not offered, the message came 7-bit and without BODY=8BITMIME"
else not_ok "without 8BITMIME: the dump: $(head -c 600 "$T"/sink8/* | tr '\n' '|')"; fi
fx empty example.org

# ---- LMTP over a UNIX socket: one recipient per transaction -----------------------
ids=""
queue_msg lm1 l1@example.org plain
queue_msg lm2 l2@example.org,l3@example.org dots
lm_ids=$ids
lm2_id=${ids##* }
mkdir -p "$T/lmtp" && chown nobody "$T/lmtp"
smtp-sink -u nobody -L -d "$T/lmtp/%M." "unix:$T/lmtp.sock" 100 >>"$T/sink.log" 2>&1 &
sink_pid=$!
_i=0; while [ ! -S "$T/lmtp.sock" ] && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
fetch lmtp1 $ODMR $TLS --domains example.org --lmtp "$T/lmtp.sock"
fetch_is 0 "LMTP: first pickup"
check "LMTP: the second recipient got 452 4.5.3" grep -q 'event=relay-reply reply="452 4.5.3 Too many recipients"' "$T/lmtp1.err"
check "LMTP: smtp-sink saw LHLO" grep -q 'X-Client-Proto: LMTP' -r "$T/lmtp"
odmrd_wait_unclaimed example.org
# RFC 5321 4.5.3.1.10: odmrd sends the 452'd rest in another
# transaction of the same session (turn_session_again)
fx empty example.org
check "LMTP: odmrd sent the 452'd recipient again in the same session" \
    grep -q "event=turn-again id=$lm2_id" "$(odmrd_log)"
stop_sink
fx empty example.org
_n=$(grep -l "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mid"])' "$T/stored/$lm2_id.json")" "$T"/lmtp/* 2>/dev/null | wc -l)
if [ "$_n" -eq 2 ] && [ "$(grep -h '^X-Rcpt-Args' $(grep -l "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mid"])' "$T/stored/$lm2_id.json")" "$T"/lmtp/*) | sort | tr '\n' ' ')" = "X-Rcpt-Args: <l2@example.org> X-Rcpt-Args: <l3@example.org> " ]; then
	ok "LMTP: the two-recipient message arrived as two transactions of one recipient"
else
	not_ok "LMTP: the two-recipient message: $_n dumps: $(cat "$T"/lmtp/* | grep '^X-Rcpt' | tr '\n' ' ')"
fi

# ---- the local MTA goes away mid-session ---------------------------------------------
ids=""
queue_msg gone1 g1@example.org plain
queue_msg gone2 g2@example.org big
queue_msg gone3 g3@example.org plain
queue_msg gone4 g4@example.org dots
gone_ids=$ids
start_sink "$T/sink4" -M 2
fetch gone $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 4 "the local MTA vanished mid-session: exit 4"
check "the provider was told 421" grep -q 'relay-reply reply="421 4.4.0' "$T/gone.err"
odmrd_wait_unclaimed example.org
stop_sink
fx lost "local MTA gone" "$T/sink4" example.org $gone_ids
start_sink "$T/sink5"
fetch gone2 $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$SINK_PORT"
fetch_is 0 "the next pickup delivers the rest"
odmrd_wait_unclaimed example.org
stop_sink
fx empty example.org

# ---- --daemon ----------------------------------------------------------------------
ids=""
queue_msg daemon1 dm1@example.org plain
start_sink "$T/sink6"
"$FETCH" --hostname fetch.test $ODMR $TLS --domains example.org --deliver-to "127.0.0.1:$SINK_PORT" --daemon 1s >"$T/daemon.err" 2>&1 &
dpid=$!
# daemon_polls_ge N - the daemon logged N pickups (its log may not even
# exist yet: the background job opens it on its own time)
daemon_polls_ge() {
	[ "$(cat "$T/daemon.err" 2>/dev/null | grep -c 'event=poll ')" -ge "$1" ]
}
wait_until 30 daemon_polls_ge 3 ||
    diag "--daemon: $(cat "$T/daemon.err" 2>/dev/null | grep -c 'event=poll ') pickups logged in 30 s"
kill -TERM "$dpid"
wait "$dpid"
drc=$?
if [ "$drc" -eq 0 ] && grep -q 'event=poll .*result=delivered messages=1 bytes=[0-9]* .*seconds=' "$T/daemon.err" &&
    grep -q 'event=poll .*result=no-mail messages=0 ' "$T/daemon.err"; then
	ok "--daemon 1s: one line per pickup (delivered, then no mail), SIGTERM exits 0"
else
	not_ok "--daemon: exit $drc: $(grep 'event=poll\|signal' "$T/daemon.err" | tail -n 4 | tr '\n' '|')"
fi
odmrd_wait_unclaimed example.org
stop_sink
fx empty example.org

# ---- ETRN (RFC 1985) ---------------------------------------------------------------
swaks --server "127.0.0.1:$SMTP_PORT" --quit-after EHLO >"$T/ehlo.out" 2>&1
if grep -q '250[- ]ETRN' "$T/ehlo.out"; then ok "odmrd announces ETRN on the MX port"
else not_ok "odmrd does not announce ETRN on the MX port yet: $(grep '^<-' "$T/ehlo.out" | tr '\n' '|')"; fi
start_sink "$T/sink7"
octl domain add etrn.example --owner alice --etrn any --route "127.0.0.1:$SINK_PORT" --tls none >>"$T/setup.out" 2>&1
octl domain add noetrn.example --owner alice --etrn off --route "127.0.0.1:$SINK_PORT" >>"$T/setup.out" 2>&1
ids=""
queue_msg etrn1 e1@etrn.example plain
queue_msg etrn2 e2@etrn.example plain
etrn_ids=$ids
fetch etrn --server "127.0.0.1:$SMTP_PORT" --tls none --etrn --domains etrn.example
fetch_is 0 "ETRN etrn.example on the MX port: 250 or 253"
_i=0
while [ "$(ls "$T/sink7" 2>/dev/null | wc -l)" -lt 2 ] && [ $_i -lt 150 ]; do sleep 0.1; _i=$((_i + 1)); done
odmrd_wait_unclaimed etrn.example
check "ETRN: the route got both messages" sh -c "[ \$(ls '$T/sink7' | wc -l) -eq 2 ]"
fx empty etrn.example
fetch etrn2 --server "127.0.0.1:$SMTP_PORT" $TLS --etrn --domains etrn.example
fetch_is 1 "ETRN again, with STARTTLS: 251, no messages"
fetch etrn3 --server "127.0.0.1:$SMTP_PORT" --tls none --etrn --domains noetrn.example
fetch_is 2 "ETRN for a domain with --etrn off: 459"
ids=""
queue_msg etrn3 e3@etrn.example plain
fetch etrn4 $ODMR $TLS --etrn --domains etrn.example
fetch_is 0 "ETRN after AUTH on the ODMR port"
_i=0
while [ "$(ls "$T/sink7" 2>/dev/null | wc -l)" -lt 3 ] && [ $_i -lt 150 ]; do sleep 0.1; _i=$((_i + 1)); done
odmrd_wait_unclaimed etrn.example
stop_sink
check "ETRN after AUTH: the route got the message" sh -c "[ \$(ls '$T/sink7' | wc -l) -eq 3 ]"

# ---- the end -----------------------------------------------------------------------
if grep -l -E 'AddressSanitizer|runtime error|LeakSanitizer' "$T"/*.err >"$T/san.out" 2>/dev/null; then
	not_ok "sanitizer reports from odmr-fetch in: $(tr '\n' ' ' <"$T/san.out")"
	KEEP_T=1
else
	ok "no sanitizer report in any of the $NRUN odmr-fetch runs (and the daemon)"
fi
if octl check >"$T/check.out" 2>&1; then ok "odmrctl check is clean"
else not_ok "odmrctl check: $(head -n 4 "$T/check.out" | tr '\n' '|')"; fi
[ -n "${PF:-}" ] && postfix_stop "$PF"
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
