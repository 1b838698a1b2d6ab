"""site_check - what the customer-side tests share: queue mail at odmrd,
keep its stored text, and report checks as TAP lines.

SYNOPSIS
    import os, sys
    sys.path.insert(0, os.environ["top_srcdir"] + "/tests/tools")
    from site_check import ok, ctl, send, stored, mid_of, same, empty, queued

DESCRIPTION
    Imported by the Python helpers that test-odmr-fetch.sh (odmr-fetch)
    and test-odmr-fetchmail.sh (fetchmail --protocol ODMR) write into
    their work directory; each keeps only its own checks of what the
    customer's MTA (smtp-sink, a private Postfix) received.

    send() queues a message over odmrd's MX port with smtplib and keeps
    the text odmrd stored ("odmrctl --json show ID --raw") in
    T/stored/ID, with T/stored/ID.json holding its queue id, Message-ID,
    sender and recipients; stored() reads both back, so that what
    arrives can be compared byte for byte with same().

    ok() prints one "ok - DESC" or "not ok - DESC: DETAIL" line; the
    calling shell turns each into a TAP case.

ENVIRONMENT
    T          the test's work directory (odmrd.conf, stored/)
    ODMRCTL    the odmrctl program
    SMTP_PORT  odmrd's MX port on 127.0.0.1 (send() only)

    Standard library only.
"""
import base64
import json
import os
import random
import re
import smtplib
import subprocess

T = os.environ["T"]
CTL = [os.environ["ODMRCTL"], "-f", T + "/odmrd.conf"]

# the body of a message of kind "dots": lines that need dot-stuffing
# (RFC 5321 4.5.2), a lone "." among them, and ". "
DOTS = b"first\r\n.one dot\r\n..two dots\r\n.\r\n x\r\n. \r\nlast\r\n"
# the lines of a message of kind "big"
BIG_LINES = 4000


def ok(cond, desc, detail=""):
    """Print a TAP-like "ok - DESC" or "not ok - DESC: DETAIL" line
    (DETAIL on one line, cut at 900 characters); return COND."""
    d = str(detail).replace("\n", "|")
    print(("ok - " + desc) if cond else ("not ok - %s%s" % (desc, (": " + d[:900]) if d else "")), flush=True)
    return cond


def ctl(*args):
    """Run "odmrctl --json ARGS" on the test's odmrd.conf; its parsed
    output, or RuntimeError when it fails."""
    p = subprocess.run(CTL + ["--json"] + list(args), capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("odmrctl %s: exit %d %s" % (" ".join(args), p.returncode, p.stderr.decode(errors="replace")))
    return json.loads(p.stdout)


def send(tag, rcpts, kind, subject, dots=DOTS, big_lines=BIG_LINES):
    """Queue one message from s-TAG@x.test to RCPTS, "Subject: SUBJECT TAG";
    write T/stored/ID (the stored bytes) and T/stored/ID.json, print ID.

    KIND is the body: "plain" (one line), "dots" (DOTS), "8bit" (UTF-8
    text, BODY=8BITMIME), "big" (BIG_LINES lines of 84 octets) or "dsn"
    (plain, with RET=HDRS ENVID=fetch-envid-TAG on MAIL and
    NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig-TAG@example.org on each
    RCPT). A test may pass its own DOTS body and BIG_LINES count."""
    token = "%08x" % random.SystemRandom().getrandbits(32)
    mid = "<%s.%s@x.test>" % (tag, token)
    body = b"plain body\r\n"
    hdr = ["From: s-%s@x.test" % tag, "To: " + ", ".join(rcpts), "Subject: %s %s" % (subject, tag),
           "Message-ID: " + mid, "Date: Tue, 11 Jun 2024 10:00:00 +0000"]
    mopts, ropts = [], []
    if kind == "dsn":
        mopts = ["RET=HDRS", "ENVID=fetch-envid-%s" % tag]
        ropts = ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig-%s@example.org" % tag]
    elif kind == "dots":
        body = dots
    elif kind == "8bit":
        hdr += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        body = "Grüße aus Köln, 10 € — naïve café\r\n".encode() * 5
        mopts = ["BODY=8BITMIME"]
    elif kind == "big":
        body = b"".join(b"line %06d %s\r\n" % (i, b"y" * 70) for i in range(big_lines))
    msg = ("\r\n".join(hdr) + "\r\n\r\n").encode() + body
    s = smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), local_hostname="mx-client.test", timeout=30)
    s.ehlo()
    s.mail("s-%s@x.test" % tag, mopts)
    for r in rcpts:
        code, resp = s.rcpt(r, ropts)
        if code != 250:
            raise RuntimeError("RCPT %s: %d %s" % (r, code, resp))
    code, resp = s.data(msg)
    s.quit()
    m = re.match(rb"2\.0\.0 Ok: queued as ([0-9A-Fa-f]{14})$", resp)
    if code != 250 or not m:
        raise RuntimeError("DATA: %d %s" % (code, resp))
    qid = m.group(1).decode()
    data = base64.b64decode(ctl("show", qid, "--raw")["content_base64"])
    os.makedirs(T + "/stored", exist_ok=True)
    open("%s/stored/%s" % (T, qid), "wb").write(data)
    json.dump({"id": qid, "mid": mid, "sender": "s-%s@x.test" % tag, "rcpts": rcpts},
              open("%s/stored/%s.json" % (T, qid), "w"))
    print(qid)


def stored(ids):
    """The messages IDS kept by send(), by Message-ID: each its .json
    fields and "data", the stored bytes."""
    out = {}
    for qid in ids:
        meta = json.load(open("%s/stored/%s.json" % (T, qid)))
        meta["data"] = open("%s/stored/%s" % (T, qid), "rb").read()
        out[meta["mid"]] = meta
    return out


def mid_of(data):
    """The Message-ID in the octets DATA, or None."""
    m = re.search(rb"(?im)^Message-ID: (<[^>]*>)", data)
    return m.group(1).decode() if m else None


def same(desc, got, want):
    """One check: the octets GOT are WANT; else show where they part."""
    if got == want:
        return ok(True, desc + " (%d octets)" % len(want))
    i = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
    return ok(False, desc, "got %d octets, want %d; first difference at %d: got %r want %r" % (
        len(got), len(want), i, got[max(0, i - 20):i + 40], want[max(0, i - 20):i + 40]))


def empty(*domains, where="at the provider"):
    """One check per domain in DOMAINS: odmrd queues nothing for it
    ("D is empty WHERE")."""
    for d in domains:
        q = ctl("queue", d)["messages"]
        ok(q == [], "%s is empty %s" % (d, where), [m["id"] for m in q])


def queued(d, n, where="at the provider"):
    """One check: odmrd queues N messages for domain D
    ("D still holds N message(s) WHERE"; WHERE may be empty)."""
    q = ctl("queue", d)["messages"]
    ok(len(q) == n, "%s still holds %d message(s)%s" % (d, n, " " + where if where else ""), [m["id"] for m in q])
