#!/bin/sh
# NAME
#	test-odmr.sh - odmrd's ODMR listener (RFC 2645) against a scripted customer
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-odmr.sh
# DESCRIPTION
#	Drives a real odmrd with tests/tools/odmr-customer.py, a customer
#	that authenticates, sends ATRN and then serves SMTP on the same
#	connection with a scripted extension list and scripted replies.
#	Mail is queued over the MX port with python3 smtplib, and each
#	message's stored text ("odmrctl --json show ID --raw") is captured
#	before the pickup, so that every delivered message can be compared
#	byte for byte with what the customer received.
#
#	Cases: the ODMR port's EHLO and its 502s; AUTH failures (535 after
#	1 s and 2 s, 421 at the third, 538 for PLAIN outside TLS, 504, the
#	"*" cancel); ATRN 530, 501, 450 (another account's domain, an
#	unknown one, a list with one of them: nothing delivered, the other
#	queue untouched), 453, 451 (a domain another session holds); ATRN
#	without argument and with "a, b"; PIPELINING, CHUNKING and DSN
#	used when offered and not when not; per-recipient 450/550 (the 450
#	stays queued with attempts 1 and the customer's text); a customer
#	hanging up in DATA and in BDAT; 8BITMIME downgraded to valid 7-bit
#	MIME; SMTPUTF8 mail failed for a customer without SMTPUTF8; SIZE;
#	HELO when EHLO is refused; STARTTLS + AUTH PLAIN; odmrs_listen
#	(implicit TLS); SCRAM-SHA-256; SASL EXTERNAL with TLS client
#	certificates from a test CA (tls_client_ca_file loaded by SIGHUP:
#	STARTTLS, odmrs_listen and the MX port; no certificate, an
#	untrusted one, a CN of no account and another authzid refused;
#	odmr-fetch --cert without a password); kill -9 of odmrd in the middle of a
#	2,000-message pickup by odmr-fetch into smtp-sink (postfix): after a
#	restart and a second pickup every message has arrived, a few twice
#	(outcomes are recorded in batches), none lost. At the end every customer queue is
#	empty, "odmrctl check" is clean, odmrd exits 0 on SIGTERM and its
#	log holds no sanitizer report.
#	KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"

require_cmd python3 python3
require_cmd swaks swaks
odmrd_setup
ODMRS_PORT=$(free_port)
BOUNCE_PORT=$(free_port)
odmrd_conf odmrs_listen "127.0.0.1:$ODMRS_PORT"
# DSNs for the failed recipients go nowhere (connection refused): they
# stay in odmrd's own queue and never reach a customer
odmrd_conf bounce_relay "127.0.0.1:$BOUNCE_PORT"
CUSTOMER="$top_srcdir/tests/tools/odmr-customer.py"
export T SMTP_PORT ODMR_PORT ODMRS_PORT ODMRCTL CUSTOMER

# ---- accounts and domains ------------------------------------------------
setup_ok=1
for u in alice:secret bob:bob-pw carol:secret dave:secret erin:secret frank:secret gina:secret; do
	printf '%s\n' "${u#*:}" | octl user add "${u%%:*}" >>"$T/setup.out" 2>&1 || setup_ok=0
done
for d in example.org:alice example.net:alice example.com:bob c.example:carol \
    d.example:dave e.example:erin f.example:frank g.example:gina; do
	octl domain add "${d%%:*}" --owner "${d#*:}" >>"$T/setup.out" 2>&1 || setup_ok=0
done
if [ $setup_ok -eq 1 ]; then ok "7 accounts and 8 customer domains made with odmrctl"
else not_ok "accounts and domains: $(tr '\n' '|' <"$T/setup.out")"; fi
if odmrd_start; then ok "odmrd starts (odmr $ODMR_PORT, odmrs $ODMRS_PORT)"; else not_ok "odmrd starts"; tap_done; fi

cat >"$T/odmr.py" <<'PY'
"""The cases of test-odmr.sh: queue mail, run the customer, check."""
import base64, email, email.policy, json, os, random, re, smtplib, subprocess, sys, time

T = os.environ["T"]
SMTP_PORT = int(os.environ["SMTP_PORT"])
ODMR_PORT = int(os.environ["ODMR_PORT"])
ODMRS_PORT = int(os.environ["ODMRS_PORT"])
CTL = [os.environ["ODMRCTL"], "-f", T + "/odmrd.conf"]
CUSTOMER = os.environ["CUSTOMER"]
TOKEN = "%08x" % random.SystemRandom().getrandbits(32)
stored = {}          # id -> stored bytes captured before the pickup
mids = {}            # id -> Message-ID


def ok(cond, desc, detail=""):
    if cond:
        print("ok - " + desc, flush=True)
    else:
        d = str(detail).replace("\n", "|")
        print("not ok - %s%s" % (desc, (": " + d[:900]) if d else ""), flush=True)
    return cond


def diag(text):
    print("# " + str(text).replace("\n", "\n# "), flush=True)


def ctl(*args):
    """(exit, parsed JSON or None, stderr) of odmrctl --json ARGS."""
    p = subprocess.run(CTL + ["--json"] + list(args), capture_output=True, timeout=60)
    try:
        doc = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        doc = None
    return p.returncode, doc, p.stderr.decode(errors="replace")


def show(qid):
    """The message object, or None when odmrctl no longer knows the id."""
    rc, doc, err = ctl("show", qid)
    if rc == 1:
        return None
    if rc != 0 or doc is None:
        raise RuntimeError("odmrctl show %s: exit %d %s" % (qid, rc, err))
    return doc["message"]


def raw(qid):
    rc, doc, err = ctl("show", qid, "--raw")
    if rc != 0:
        raise RuntimeError("odmrctl show %s --raw: exit %d %s" % (qid, rc, err))
    return base64.b64decode(doc["content_base64"])


def queue(domain):
    rc, doc, err = ctl("queue", domain)
    if rc != 0:
        raise RuntimeError("odmrctl queue %s: exit %d %s" % (domain, rc, err))
    return doc["messages"]


def domains():
    rc, doc, err = ctl("queue")
    if rc != 0:
        raise RuntimeError("odmrctl queue: exit %d %s" % (rc, err))
    return {d["domain"]: d for d in doc["domains"]}


def wait_unclaimed(domain, limit=30):
    """Wait until no delivery holds DOMAIN; True when free."""
    end = time.time() + limit
    while time.time() < end:
        d = domains().get(domain)
        if d is not None and d["flush"] is None:
            return True
        time.sleep(0.1)
    return False


def rcpt(m, addr):
    for r in m["recipients"]:
        if r["address"].lower() == addr.lower():
            return r
    return None


def mkmsg(tag, body, headers=(), frm="sender@x.test", to="rcpt@example.org"):
    """A message in CRLF form with a unique Message-ID."""
    mid = "<%s.%s@x.test>" % (tag, TOKEN)
    h = ["From: %s" % frm, "To: %s" % to, "Subject: %s %s" % (tag, TOKEN), "Message-ID: " + mid,
         "Date: Tue, 11 Jun 2024 10:00:00 +0000"] + list(headers)
    if isinstance(body, str):
        body = body.encode()
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), mid


def send(tag, rcpts, body, headers=(), sender="sender@x.test", mopts=(), ropts=None):
    """Queue a message over the MX port; its id (stored text captured)."""
    msg, mid = mkmsg(tag, body, headers, frm=sender if sender else "MAILER-DAEMON@x.test", to=", ".join(rcpts))
    s = smtplib.SMTP("127.0.0.1", SMTP_PORT, local_hostname="mx-client.test", timeout=30)
    try:
        s.ehlo()
        if "SMTPUTF8" in mopts:
            s.command_encoding = "utf-8"
        code, resp = s.mail(sender, list(mopts))
        if code != 250:
            raise RuntimeError("MAIL %d %s" % (code, resp))
        for i, r in enumerate(rcpts):
            code, resp = s.rcpt(r, (ropts or {}).get(r, []))
            if code != 250:
                raise RuntimeError("RCPT %s %d %s" % (r, code, resp))
        code, resp = s.data(msg)
        m = re.match(rb"2\.0\.0 Ok: queued as ([0-9A-Fa-f]{14})$", resp)
        if code != 250 or not m:
            raise RuntimeError("DATA %d %s" % (code, resp))
        s.quit()
    finally:
        s.close()
    qid = m.group(1).decode()
    stored[qid] = raw(qid)
    mids[qid] = mid
    return qid


def queued(tag, *args, **kw):
    try:
        qid = send(tag, *args, **kw)
        ok(True, "%s queued as %s" % (tag, qid))
        return qid
    except Exception as e:
        ok(False, "%s queued" % tag, repr(e))
        return None


def customer(name, *args, port=None, wait=True, timeout=120):
    """Run odmr-customer.py; (exit, summary, output) or the Popen."""
    outdir = "%s/in-%s" % (T, name)
    cmd = [sys.executable, CUSTOMER, "127.0.0.1", str(port or ODMR_PORT), "--ca", T + "/cert.pem",
           "--outdir", outdir, "--timeout", "30"] + list(args)
    out = open("%s/cust-%s.out" % (T, name), "w")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    if not wait:
        return p
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    out.close()
    return finish(name, rc)


def finish(name, rc):
    text = open("%s/cust-%s.out" % (T, name)).read()
    summ = {}
    for ln in text.splitlines():
        if ln.startswith("SUMMARY "):
            summ = json.loads(ln[8:])
    return rc, summ, text


def received(name):
    """Message-ID -> (content, envelope) of what customer NAME received."""
    outdir = "%s/in-%s" % (T, name)
    got = {}
    n = 1
    while os.path.exists("%s/msg-%d.json" % (outdir, n)):
        data = open("%s/msg-%d.eml" % (outdir, n), "rb").read()
        env = json.load(open("%s/msg-%d.json" % (outdir, n)))
        m = re.search(rb"(?im)^Message-ID: (<[^>]*>)", data)
        key = m.group(1).decode() if m else "msg-%d" % n
        got.setdefault(key, []).append((data, env))
        n += 1
    return got


def dialogue(text):
    """[(command, [reply lines])] from a customer transcript."""
    out = [(None, [])]
    for ln in text.splitlines():
        if ln.startswith("C: "):
            out.append((ln[3:], []))
        elif ln.startswith("S: "):
            out[-1][1].append(ln[3:])
    return out


def replies_to(text, prefix):
    return [r for c, r in dialogue(text) if c is not None and c.startswith(prefix)]


def tail(text, n=12):
    return "|".join(text.splitlines()[-n:])


def same_bytes(desc, got, want):
    if got == want:
        return ok(True, desc + " (%d octets, byte for byte)" % len(want))
    i = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
    return ok(False, desc + ": byte for byte", "got %d octets, want %d; first difference at %d: got %r want %r" % (
        len(got), len(want), i, got[max(0, i - 20):i + 40], want[max(0, i - 20):i + 40]))


def delivered_once(name, got, qid, rcpts, desc):
    """Message QID arrived once, intact, for exactly RCPTS; its envelope."""
    if qid is None:
        return ok(False, desc + ": not queued")
    lst = got.get(mids[qid], [])
    if not ok(len(lst) == 1, "%s: %s arrived once at %s" % (desc, qid, name), "arrived %d times" % len(lst)):
        return None
    data, env = lst[0]
    same_bytes("%s: %s" % (desc, qid), data, stored[qid])
    ok(sorted(x.lower() for x in env["accepted"]) == sorted(x.lower() for x in rcpts),
       "%s: %s delivered to %s only" % (desc, qid, ",".join(rcpts)), env["rcpts"])
    return env


def gone_or(qid, addr, states):
    """The recipient's state, "gone" when the message is no longer stored."""
    m = show(qid)
    if m is None:
        return "gone", None
    r = rcpt(m, addr)
    return (r["state"] if r else "gone"), r


def failed_with(qid, addr, st, r, code, desc):
    """Recipient ADDR of QID failed with CODE: in the store, or (message gone) in odmrd's log."""
    if st == "failed":
        return ok(code in (r["last_error"] or ""), desc + " (odmrctl show)", r)
    if st != "gone":
        return ok(False, desc, (st, r))
    pat = re.compile(r'event=failed id=%s to=<%s> .*reply="%s ' % (re.escape(qid), re.escape(addr), re.escape(code)))
    lines = [ln for ln in open(T + "/odmrd.log", errors="replace") if "id=" + qid in ln]
    return ok(any(pat.search(ln) for ln in lines), desc + " (message gone; odmrd's log)", lines[-3:])


def run_ok(desc, res, want_rc=0):
    rc, summ, text = res
    return ok(rc == want_rc, "%s: customer exit %d" % (desc, want_rc),
              "exit %d, violations %s, error %s; %s" % (rc, summ.get("violations"), summ.get("error"), tail(text)))


# ============================================================ the ODMR port
rc, s, text = customer("port", "--auth", "none",
                       "--pre", "MAIL FROM:<a@x.test>", "--pre", "RCPT TO:<u1@example.org>",
                       "--pre", "DATA", "--pre", "BDAT 0 LAST", "--pre", "VRFY alice",
                       "--pre", "EXPN staff", "--pre", "ETRN example.org",
                       "--pre", "AUTH PLAIN AGFsaWNlAHNlY3JldA==", "--pre", "AUTH LOGIN",
                       "--pre", "AUTH BOGUS-MECH", "--pre", "AUTH CRAM-MD5", "--pre", "*",
                       "--atrn", "", "--atrn", "example.org")
d = dialogue(text)
ok(s.get("greeting") == "220 mx.odmr.test ESMTP", "ODMR greeting is '220 mx.odmr.test ESMTP'", s.get("greeting"))
ehlo = next((r for c, r in d if c and c.startswith("EHLO")), [])
exts = [x[4:] for x in ehlo[1:]]
diag("ODMR EHLO outside TLS: %s" % ehlo)
auth = [x for x in exts if x.upper().startswith("AUTH ")]
mechs = set(auth[0].upper().split()[1:]) if auth else set()
ok(mechs == {"SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5"},
   "EHLO outside TLS: AUTH SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5, no PLAIN/LOGIN", exts)
ok("ATRN" in [x.upper() for x in exts] and "STARTTLS" in [x.upper() for x in exts],
   "EHLO announces ATRN and STARTTLS", exts)
for verb in ("MAIL", "RCPT", "DATA", "BDAT", "VRFY", "EXPN"):
    r = replies_to(text, verb)
    ok(len(r) == 1 and len(r[0]) == 1 and r[0][0].startswith("502 5.5.1"), "%s on the ODMR port: 502 5.5.1" % verb, r)
# ETRN is served on the ODMR port too, after AUTH (test-etrn.sh)
r = replies_to(text, "ETRN")
ok(len(r) == 1 and len(r[0]) == 1 and r[0][0].startswith("530 5.7.0"), "ETRN on the ODMR port before AUTH: 530 5.7.0", r)
r = replies_to(text, "AUTH PLAIN") + replies_to(text, "AUTH LOGIN")
ok(len(r) == 2 and all(x[-1].startswith("538 5.7.11") for x in r), "AUTH PLAIN and AUTH LOGIN outside TLS: 538 5.7.11", r)
r = replies_to(text, "AUTH BOGUS-MECH")
ok(len(r) == 1 and r[0][-1].startswith("504 5.5.4"), "AUTH BOGUS-MECH: 504 5.5.4", r)
r = replies_to(text, "AUTH CRAM-MD5")
ok(len(r) == 1 and len(r[0]) == 1 and r[0][0].startswith("334 ") and " " not in r[0][0][4:].strip(),
   "AUTH CRAM-MD5: one-line 334 challenge", r)
r = replies_to(text, "*")
ok(len(r) == 1 and r[0][-1].startswith("501 5.7.0"), "'*' cancels AUTH: 501 5.7.0", r)
r = replies_to(text, "ATRN")
ok(len(r) == 2 and all(x == ["530 Authentication required"] for x in r),
   "ATRN and ATRN example.org before AUTH: '530 Authentication required'", r)
ok(not s.get("reversed"), "no reversal without AUTH", s)

# ============================================================ AUTH failures
rc, s, text = customer("badpw", "--user", "alice", "--password", "wrong", "--auth-tries", "3")
codes = [(int(m.group(1)), float(m.group(2))) for m in re.finditer(r"^# reply (\d+) after ([\d.]+)s$", text, re.M)]
finals = [c for c in codes if c[0] in (235, 535, 421, 454)]
ok([c for c, _ in finals] == [535, 535, 421], "wrong password 3 times: 535, 535, then 421", tail(text))
r = [x for c, x in dialogue(text) if c and not c.startswith(("EHLO", "AUTH"))]
lines = [ln for c, rr in dialogue(text) for ln in rr if ln[:3] in ("535", "421")]
ok(len(lines) == 3 and lines[0].startswith("535 5.7.8") and lines[1].startswith("535 5.7.8")
   and lines[2].startswith("421 4.7.0"), "wrong password: '535 5.7.8' twice, '421 4.7.0' the third time", lines)
if len(finals) == 3:
    ok(finals[0][1] >= 0.9 and finals[1][1] >= 1.9,
       "the failures are answered after a growing delay (%.2f s, %.2f s, %.2f s)" % tuple(x for _, x in finals),
       finals)
ok(s.get("eof_after_421") is True, "after the 421 odmrd closes the connection", tail(text))
rc, s, text = customer("nouser", "--user", "nobody", "--password", "secret", "--atrn", "example.org")
r = replies_to(text, "ATRN")
ok(s.get("auth") == 535 and r == [["530 Authentication required"]],
   "unknown account: 535 like a wrong password; ATRN afterwards gets 530", tail(text))

# ============================================================ 453, 501
rc, s, text = customer("nomail", "--user", "carol", "--atrn", "", "--atrn", "c.example")
r = replies_to(text, "ATRN")
ok(s.get("auth") == 235 and r == [["453 You have no mail"], ["453 You have no mail"]],
   "carol, no mail: ATRN and ATRN c.example get '453 You have no mail'", r or tail(text))
rc, s, text = customer("syntax", "--user", "alice", "--atrn", "bad..name", "--atrn", "example.org,,example.net",
                       "--atrn", "example.org,")
r = replies_to(text, "ATRN")
ok(len(r) == 3 and all(len(x) == 1 and x[0].startswith("501 Syntax error") for x in r),
   "ATRN bad..name / a,,b / a, : '501 Syntax error...'", r or tail(text))

# ============================================================ the mail
dots = "first\n.one dot\n..two dots\n.\n x\nlast line\n"
e1 = queued("e1-dots", ["u1@example.org"], dots)
e2 = queued("e2-dsn", ["u2@example.net"], "with DSN parameters\n", mopts=("RET=HDRS", "ENVID=env-e2." + TOKEN),
            ropts={"u2@example.net": ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig@example.net"]})
e3 = queued("e3-mixed", ["u1@example.org", "b1@example.com"], "for alice and bob\n")
e4 = queued("e4-8bit", ["u3@example.org"], "Grüße aus Köln, 10 €\n",
            headers=("MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"),
            mopts=("BODY=8BITMIME",))
big = "".join("line %06d %s\n" % (i, "x" * 60) for i in range(3000))
e5 = queued("e5-big", ["u4@example.org", "u5@example.org"], big)
b1 = queued("b1-bob", ["b2@example.com"], "bob's own\n")


def snapshot(domain):
    try:
        return [(m["id"], m["attempts"], m["last_error"], [(r["address"], r["state"], r["attempts"])
                                                           for r in m["recipients"]]) for m in queue(domain)]
    except Exception as e:
        return repr(e)


bob_before = snapshot("example.com")
org_before = snapshot("example.org")
ok(isinstance(bob_before, list) and len(bob_before) == 2, "example.com holds e3 and b1", bob_before)

# ============================================================ 450
rc, s, text = customer("deny", "--user", "alice", "--atrn", "example.com", "--atrn", "example.org, example.com",
                       "--atrn", "nosuch.example")
r = replies_to(text, "ATRN")
ok(r == [["450 Access denied to domain example.com"], ["450 Access denied to domain example.com"],
         ["450 Access denied to domain nosuch.example"]],
   "alice: ATRN example.com / 'example.org, example.com' / nosuch.example: 450 Access denied to domain D", r or tail(text))
ok(not s.get("reversed") and not s.get("messages"), "after 450 nothing is delivered", s)
ok(snapshot("example.com") == bob_before, "bob's example.com queue is untouched by alice's ATRN", snapshot("example.com"))
ok(snapshot("example.org") == org_before, "example.org is untouched by the refused ATRN list", snapshot("example.org"))

# ============================================================ ATRN without argument
wait_unclaimed("example.org")
res = customer("noarg", "--user", "alice", "--ext", "PIPELINING,CHUNKING,8BITMIME,SMTPUTF8,DSN,ENHANCEDSTATUSCODES,SIZE=50000000")
rc, s, text = res
ok(s.get("atrn") == 250 and s.get("atrn_text") == "250 OK now reversing the connection",
   "alice: ATRN without argument: '250 OK now reversing the connection'", s.get("atrn_text") or tail(text))
run_ok("ATRN without argument", res)
ok(s.get("helo", [""])[0].startswith("EHLO "), "after our 220 odmrd sends EHLO", s.get("helo"))
ok(s.get("quit") is True, "the reversed session ends with QUIT", tail(text))
got = received("noarg")
delivered_once("noarg", got, e1, ["u1@example.org"], "no-arg ATRN")
env = delivered_once("noarg", got, e2, ["u2@example.net"], "no-arg ATRN")
if env:
    mp, rp = env["mail_params"], env["rcpts"][0]["params"]
    ok(mp.get("RET") == "HDRS" and mp.get("ENVID") == "env-e2." + TOKEN, "DSN offered: RET=HDRS and ENVID passed on", mp)
    ok(sorted(rp.get("NOTIFY", "").split(",")) == ["FAILURE", "SUCCESS"]
       and rp.get("ORCPT", "").lower() == "rfc822;orig@example.net", "DSN offered: NOTIFY and ORCPT passed on", rp)
delivered_once("noarg", got, e3, ["u1@example.org"], "no-arg ATRN (message also for bob)")
env = delivered_once("noarg", got, e4, ["u3@example.org"], "no-arg ATRN")
if env:
    ok(env["mail_params"].get("BODY", "").upper() == "8BITMIME", "8BITMIME offered: BODY=8BITMIME passed on", env["mail_params"])
env = delivered_once("noarg", got, e5, ["u4@example.org", "u5@example.org"], "no-arg ATRN, two recipients")
if env:
    diag("SIZE offered: MAIL parameters of e5: %s" % env["mail_params"])
ok(len(got) == 5 and b1 and mids[b1] not in got, "alice received 5 messages and nothing of bob's", list(got))
ok(all(e["method"] == "BDAT" for lst in got.values() for _, e in lst), "CHUNKING offered: every message sent with BDAT",
   [e["method"] for lst in got.values() for _, e in lst])
ok(s.get("pipelined", 0) >= 1, "PIPELINING offered: RCPT sent before MAIL's reply (%d transactions)" % s.get("pipelined", 0), s)
wait_unclaimed("example.org")
ok(queue("example.org") == [] and queue("example.net") == [], "example.org and example.net are empty after the pickup",
   snapshot("example.org"))
st, r = gone_or(e3, "b1@example.com", None)
ok(st == "queued" and r["attempts"] == 0, "e3: bob's recipient is still queued, untouched", r)
st, r = gone_or(e3, "u1@example.org", None)
ok(st in ("delivered", "gone"), "e3: alice's recipient is delivered", (st, r))
ok(snapshot("example.com") == bob_before, "bob's example.com queue is untouched by alice's pickup", snapshot("example.com"))

# ---- "a, b", DATA without CHUNKING and DSN
e6 = queued("e6-dots", ["u6@example.org"], dots + "..\n...\n.x\n")
e7 = queued("e7-dsn", ["u7@example.net"], "DSN parameters, customer without DSN\n", mopts=("RET=FULL", "ENVID=e7"),
            ropts={"u7@example.net": ["NOTIFY=DELAY"]})
res = customer("space", "--user", "alice", "--atrn", "example.org, example.net", "--ext", "PIPELINING,8BITMIME")
rc, s, text = res
ok(s.get("atrn") == 250, "ATRN 'example.org, example.net' (space after the comma): 250", s.get("atrn_text") or tail(text))
run_ok("ATRN 'a, b' to a customer without CHUNKING and DSN", res)
got = received("space")
delivered_once("space", got, e6, ["u6@example.org"], "ATRN a, b (DATA, dot-stuffing)")
env = delivered_once("space", got, e7, ["u7@example.net"], "ATRN a, b")
ok(all(e["method"] == "DATA" for lst in got.values() for _, e in lst), "no CHUNKING: DATA used",
   [e["method"] for lst in got.values() for _, e in lst])
ok(not any("without the DSN extension" in v for v in s.get("violations", [])), "no DSN: no NOTIFY/RET/ENVID sent", s.get("violations"))
wait_unclaimed("example.org")
wait_unclaimed("example.net")
rc, s, text = customer("empty", "--user", "alice")
ok(s.get("atrn_text") == "453 You have no mail", "alice again: '453 You have no mail'", s.get("atrn_text") or tail(text))

# ============================================================ 451
f1 = queued("f1-busy", ["x@c.example"], "busy case\n")
p = customer("stall", "--user", "carol", "--atrn", "c.example", "--stall", "25", wait=False)
end = time.time() + 20
while time.time() < end and "ATRN 250" not in open(T + "/cust-stall.out").read():
    time.sleep(0.1)
ok("ATRN 250" in open(T + "/cust-stall.out").read(), "first carol session: ATRN c.example 250, then it stalls",
   tail(open(T + "/cust-stall.out").read()))
fl = domains().get("c.example", {}).get("flush")
ok(fl is not None, "odmrctl queue shows c.example held by the stalled session", fl)
rc, s, text = customer("busy", "--user", "carol", "--atrn", "c.example")
ok((s.get("atrn_text") or "").startswith("451 Unable to process ATRN request now"),
   "second carol session: '451 Unable to process ATRN request now...'", s.get("atrn_text") or tail(text))
p.kill()
p.wait()
ok(wait_unclaimed("c.example"), "the claim is given back when the stalled customer hangs up", domains().get("c.example"))
st, r = gone_or(f1, "x@c.example", None)
ok(st == "queued", "f1 is still queued after the stalled session", (st, r))
res = customer("unstall", "--user", "carol", "--atrn", "c.example")
run_ok("carol after the stall", res)
delivered_once("unstall", received("unstall"), f1, ["x@c.example"], "after the stall")
wait_unclaimed("c.example")
ok(queue("c.example") == [], "c.example is empty", snapshot("c.example"))

# ============================================================ 450 / 550 per recipient
g1 = queued("g1-codes", ["r250@d.example", "r450@d.example", "r550@d.example"], "three recipients\n")
res = customer("codes", "--user", "dave", "--atrn", "d.example", "--ext", "PIPELINING,8BITMIME,ENHANCEDSTATUSCODES",
               "--rcpt-code", "r450@d.example=450", "--rcpt-code", "r550@d.example=550")
run_ok("customer answering 450 and 550", res)
delivered_once("codes", received("codes"), g1, ["r250@d.example"], "450/550")
wait_unclaimed("d.example")
m = show(g1) if g1 else None
ok(m is not None, "g1 is still stored (one recipient is deferred)")
if m:
    r = rcpt(m, "r450@d.example")
    ok(r and r["state"] == "queued" and r["attempts"] == 1, "the 450 recipient stays queued with attempts 1", r)
    ok(r and r["last_error"] and "450" in r["last_error"] and "Scripted 450 for r450@d.example" in r["last_error"],
       "the 450 recipient keeps the customer's reply text", r)
    r = rcpt(m, "r550@d.example")
    ok(r is None or r["state"] == "failed", "the 550 recipient is failed", r)
    if r:
        ok(r["last_error"] and "550" in r["last_error"], "the 550 recipient keeps the customer's reply text", r)
    r = rcpt(m, "r250@d.example")
    ok(r is None or r["state"] == "delivered", "the 250 recipient is delivered", r)
# RFC 3461 / SPEC.md guarantee 2: the 550 becomes a DSN to the sender,
# queued in the DSN domain (test-dsn.sh checks what the DSNs hold)
dsn_lines = [ln for ln in open(T + "/odmrd.log", errors="replace")
             if "event=dsn-queued id=" + (g1 or "?") + " " in ln and "kind=failure" in ln]
ok(len(dsn_lines) == 1, "the 550 recipient's failure DSN was queued for the sender", dsn_lines)
q = queue("d.example")
ok(len(q) == 1 and [x["address"] for x in q[0]["recipients"]] == ["r450@d.example"],
   "odmrctl queue d.example: g1 with only the 450 recipient", q)
res = customer("codes2", "--user", "dave", "--atrn", "d.example")
run_ok("dave's retry", res)
delivered_once("codes2", received("codes2"), g1, ["r450@d.example"], "retry of the 450 recipient")
wait_unclaimed("d.example")
ok(queue("d.example") == [], "d.example is empty after the retry", snapshot("d.example"))

# ============================================================ hang up in DATA / BDAT
h1 = queued("h1-hang", ["h1@d.example"], "first\n" * 50)
h2 = queued("h2-hang", ["h2@d.example"], "second\n" * 50)
res = customer("hang1", "--user", "dave", "--atrn", "d.example", "--ext", "PIPELINING,8BITMIME", "--hangup-in-data", "1")
run_ok("customer hanging up in DATA of the first message", res, 4)
ok(received("hang1") == {}, "nothing was received completely", list(received("hang1")))
ok(wait_unclaimed("d.example"), "the claim is given back after the hang-up", domains().get("d.example"))
ok([gone_or(h, a, None)[0] for h, a in ((h1, "h1@d.example"), (h2, "h2@d.example"))] == ["queued", "queued"],
   "after the hang-up in DATA both messages are still queued", snapshot("d.example"))
res = customer("hang2", "--user", "dave", "--atrn", "d.example", "--ext", "PIPELINING,8BITMIME,CHUNKING",
               "--hangup-in-data", "2")
run_ok("customer hanging up in the second message's BDAT", res, 4)
got2 = received("hang2")
ok(len(got2) == 1, "one message arrived before the hang-up in BDAT", list(got2))
ok(wait_unclaimed("d.example"), "the claim is given back after the hang-up in BDAT", domains().get("d.example"))
first = h1 if h1 and mids[h1] in got2 else h2
other = h2 if first == h1 else h1
delivered_once("hang2", got2, first, ["h%d@d.example" % (1 if first == h1 else 2)], "before the hang-up in BDAT")
st, r = gone_or(other, "h%d@d.example" % (1 if other == h1 else 2), None)
ok(st == "queued", "the message cut in BDAT is still queued", (st, r))
res = customer("hang3", "--user", "dave", "--atrn", "d.example")
run_ok("the next ATRN after the hang-ups", res)
got3 = received("hang3")
delivered_once("hang3", got3, other, ["h%d@d.example" % (1 if other == h1 else 2)], "the next ATRN")
ok(len(got3) == 1, "the next ATRN delivers only the message still queued", list(got3))
wait_unclaimed("d.example")
ok(queue("d.example") == [], "d.example is empty", snapshot("d.example"))

# ============================================================ 8BITMIME downgrade, SMTPUTF8
text8 = "Grüße aus Köln!\nÄrger über Öl, 10 € — naïve café\n" + "é" * 200 + "\n.leading dot ü\nend\n"
i1 = queued("i1-8bit", ["u@e.example"], text8,
            headers=("MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"),
            mopts=("BODY=8BITMIME",))
blob = bytes(range(256)) * 4
b64 = base64.encodebytes(blob).decode()
part8 = "Zweiter Teil: ½ ¾ ß\n"
mp = ("--BOUND\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + text8 +
      "--BOUND\nContent-Type: text/plain; charset=us-ascii\n\nplain ascii part\n"
      "--BOUND\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" + b64 +
      "--BOUND\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n").encode() + \
    part8.encode("iso-8859-1") + b"--BOUND--\n"
i2 = queued("i2-multipart", ["u@e.example"], mp,
            headers=("MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="BOUND"'), mopts=("BODY=8BITMIME",))
i3 = queued("i3-7bit", ["u@e.example"], "plain 7-bit text\n")
i4 = queued("i4-utf8", ["u@e.example"], "SMTPUTF8 message\n", sender="jörg@x.test", mopts=("SMTPUTF8", "BODY=8BITMIME"))
res = customer("seven", "--user", "erin", "--atrn", "e.example", "--ext", "PIPELINING,ENHANCEDSTATUSCODES,DSN")
run_ok("customer without 8BITMIME and SMTPUTF8 (no violation: no BODY=8BITMIME, no 8-bit octet, no SMTPUTF8)", res)
got = received("seven")
delivered_once("seven", got, i3, ["u@e.example"], "7-bit message to the 7-bit customer")
ok(i4 and mids[i4] not in got, "the SMTPUTF8 message is not sent to a customer without SMTPUTF8", list(got))
if i4:
    st, r = gone_or(i4, "u@e.example", None)
    failed_with(i4, "u@e.example", st, r, "5.6.7", "the SMTPUTF8 message's recipient is failed with 5.6.7")


def walk_defects(msg):
    out = list(msg.defects)
    for part in msg.walk():
        if part is not msg:
            out += list(part.defects)
    return out


def decoded(part):
    """A part's octets after its transfer encoding; text parts with LF line ends."""
    data = part.get_payload(decode=True)
    return data.replace(b"\r\n", b"\n") if part.get_content_maintype() == "text" else data


for qid, tag in ((i1, "i1"), (i2, "i2")):
    lst = got.get(mids.get(qid), []) if qid else []
    if not ok(len(lst) == 1, "%s (8-bit) arrived once at the 7-bit customer" % tag, list(got)):
        continue
    data, env = lst[0]
    ok(all(b < 128 for b in data), "%s: every octet is below 128" % tag,
       [i for i, b in enumerate(data) if b >= 128][:10])
    ok(env["mail_params"].get("BODY", "7BIT").upper() == "7BIT", "%s: no BODY=8BITMIME on MAIL" % tag, env["mail_params"])
    ok(all(len(x) <= 998 for x in data.split(b"\r\n")), "%s: no line over 998 octets" % tag)
    m = email.message_from_bytes(data, policy=email.policy.default)
    orig = email.message_from_bytes(stored[qid], policy=email.policy.default)
    ok(walk_defects(m) == [], "%s: parses without defects" % tag, walk_defects(m))
    ok(m["Subject"] == orig["Subject"] and m["Message-ID"] == orig["Message-ID"] and m["From"] == orig["From"],
       "%s: headers kept" % tag)
    try:
        if tag == "i1":
            ok(m.get_content() == text8.replace("\n", "\r\n") or m.get_content().replace("\r\n", "\n") == text8,
               "i1: the decoded text equals the original 8-bit text", repr(m.get_content()[:200]))
        else:
            parts = [p for p in m.walk() if not p.is_multipart()]
            oparts = [p for p in orig.walk() if not p.is_multipart()]
            ok(len(parts) == 4, "i2: four parts", [p.get_content_type() for p in parts])
            same = len(parts) == len(oparts) and all(
                a.get_content_type() == b.get_content_type() and decoded(a) == decoded(b) for a, b in zip(parts, oparts))
            ok(same, "i2: every part decodes to the original octets (utf-8, ascii, binary, latin-1)",
               [(a.get_content_type(), a.get("Content-Transfer-Encoding")) for a in parts])
            ok(len(parts) == 4 and parts[3].get_content().replace("\r\n", "\n") == part8.rstrip("\n")
               == oparts[3].get_content().replace("\r\n", "\n"),
               "i2: the latin-1 part decodes to the original text", repr(parts[3].get_content()) if len(parts) == 4 else "")
    except Exception as e:
        ok(False, "%s: decoding" % tag, repr(e))
wait_unclaimed("e.example")
ok(queue("e.example") == [], "e.example is empty", snapshot("e.example"))

# ============================================================ SIZE
j1 = queued("j1-small", ["u@e.example"], "small one\n" * 20)
j2 = queued("j2-big", ["u@e.example"], ("too big for the customer " * 3 + "\n") * 300)
j3 = queued("j3-small", ["u@e.example"], "small two\n" * 20)
res = customer("size", "--user", "erin", "--atrn", "e.example", "--ext", "PIPELINING,8BITMIME,ENHANCEDSTATUSCODES,SIZE=10000")
run_ok("customer with SIZE=10000", res)
rc, s, text = res
got = received("size")
delivered_once("size", got, j1, ["u@e.example"], "SIZE: small message")
delivered_once("size", got, j3, ["u@e.example"], "SIZE: small message")
ok(j2 and mids[j2] not in got and len(stored[j2]) > 10000,
   "SIZE: the %d-octet message is not sent" % (len(stored[j2]) if j2 else 0), list(got))
diag("SIZE: MAIL commands the customer refused with 552: %d" % s.get("size_refused", 0))
if j2:
    st, r = gone_or(j2, "u@e.example", None)
    failed_with(j2, "u@e.example", st, r, "5.3.4", "SIZE: the big message is failed with 5.3.4")
wait_unclaimed("e.example")
ok(queue("e.example") == [], "e.example is empty", snapshot("e.example"))

# ============================================================ HELO fallback
k1 = queued("k1-helo", ["u@g.example"], "to a HELO-only customer\n")
k2 = queued("k2-helo8", ["u@g.example"], "8-bit to HELO: ü\n",
            headers=("MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"),
            mopts=("BODY=8BITMIME",))
res = customer("helo", "--user", "gina", "--ehlo-code", "500")
rc, s, text = res
run_ok("customer refusing EHLO (no violation: no pipelining, no 8-bit octet, no parameter)", res)
ok([h.split()[0] for h in s.get("helo", [])] == ["EHLO", "HELO"], "EHLO refused with 500: odmrd falls back to HELO", s.get("helo"))
got = received("helo")
delivered_once("helo", got, k1, ["u@g.example"], "HELO customer")
lst = got.get(mids.get(k2), []) if k2 else []
ok(len(lst) == 1 and all(b < 128 for b in lst[0][0]) and
   email.message_from_bytes(lst[0][0], policy=email.policy.default).get_content().replace("\r\n", "\n") == "8-bit to HELO: ü\n",
   "HELO customer: the 8-bit message arrives as 7-bit MIME with the same text", [x[0][-200:] for x in lst])
wait_unclaimed("g.example")
ok(queue("g.example") == [], "g.example is empty", snapshot("g.example"))

# ============================================================ STARTTLS + PLAIN, odmrs
l1 = queued("l1-starttls", ["u@f.example"], "over STARTTLS\n")
res = customer("starttls", "--user", "frank", "--tls", "starttls", "--auth", "PLAIN")
rc, s, text = res
ok(s.get("tls") in ("TLSv1.2", "TLSv1.3"), "STARTTLS with the test CA: %s" % s.get("tls"), tail(text))
exts = [x.upper() for x in s.get("server_ext", [])]
auth = [x for x in exts if x.startswith("AUTH ")]
ok(auth and {"PLAIN", "LOGIN", "CRAM-MD5"} <= set(auth[0].split()[1:]) and "STARTTLS" not in exts,
   "EHLO inside TLS: AUTH adds PLAIN LOGIN, no STARTTLS", exts)
ok(s.get("auth") == 235, "AUTH PLAIN inside TLS: 235", tail(text))
run_ok("STARTTLS, AUTH PLAIN, ATRN", res)
delivered_once("starttls", received("starttls"), l1, ["u@f.example"], "STARTTLS session")
wait_unclaimed("f.example")
l2 = queued("l2-odmrs", ["u@f.example"], "over implicit TLS\n")
res = customer("odmrs", "--user", "frank", "--tls", "implicit", "--auth", "PLAIN", port=ODMRS_PORT)
rc, s, text = res
ok(s.get("greeting") == "220 mx.odmr.test ESMTP" and s.get("tls") in ("TLSv1.2", "TLSv1.3"),
   "odmrs_listen: implicit TLS (%s), then the greeting" % s.get("tls"), tail(text))
exts = [x.upper() for x in s.get("server_ext", [])]
ok("STARTTLS" not in exts and any("PLAIN" in x for x in exts if x.startswith("AUTH ")),
   "odmrs EHLO: PLAIN offered, no STARTTLS", exts)
run_ok("odmrs: AUTH PLAIN, ATRN", res)
delivered_once("odmrs", received("odmrs"), l2, ["u@f.example"], "odmrs session")
wait_unclaimed("f.example")
ok(queue("f.example") == [], "f.example is empty", snapshot("f.example"))

# ============================================================ SCRAM-SHA-256: bob collects
res = customer("bob", "--user", "bob", "--password", "bob-pw", "--auth", "SCRAM-SHA-256",
               "--ext", "PIPELINING,CHUNKING,8BITMIME,DSN,ENHANCEDSTATUSCODES")
rc, s, text = res
ok(s.get("auth") == 235, "bob: AUTH SCRAM-SHA-256 235 (server signature verified: %s)" % s.get("scram_server_verified"),
   tail(text))
run_ok("bob's pickup", res)
got = received("bob")
delivered_once("bob", got, e3, ["b1@example.com"], "bob's share of the mixed message")
delivered_once("bob", got, b1, ["b2@example.com"], "bob's pickup")
ok(len(got) == 2, "bob received exactly his 2 messages", list(got))
wait_unclaimed("example.com")

# ============================================================ the end
try:
    ds = domains()
    # the DSN domain keeps the DSNs for the 550s: no route in this test
    ds.pop("dsn.odmr.invalid", None)
    ok(all(d["messages"] == 0 for d in ds.values()), "every customer queue is empty",
       {k: d["messages"] for k, d in ds.items() if d["messages"]})
    ok(all(d["flush"] is None for d in ds.values()), "no domain is still claimed",
       {k: d["flush"] for k, d in ds.items() if d["flush"]})
except Exception as e:
    ok(False, "final queue", repr(e))
PY
python3 "$T/odmr.py" >"$T/odmr.out" 2>&1
tap_feed "$T/odmr.out"
if grep -q '^Traceback' "$T/odmr.out"; then
	not_ok "the python cases ran to the end: $(grep -A 30 '^Traceback' "$T/odmr.out" | tail -n 6 | tr '\n' '|')"
fi

# ---- a crashed flusher's claim is broken on restart (kill -9 mid-session)
CUST="$top_srcdir/tests/tools/odmr-customer.py"
printf 'Subject: crash\r\n\r\nclaimed by a process that dies\r\n' >"$T/crash.txt"
if swaks --server "127.0.0.1:$SMTP_PORT" --to z@c.example --from a@x.test \
    --data "$T/crash.txt" >"$T/crash-swaks.out" 2>&1; then
	python3 "$CUST" 127.0.0.1 "$ODMR_PORT" --user carol --atrn c.example \
	    --stall 30 --outdir "$T/in-crash1" >"$T/cust-crash1.out" 2>&1 &
	cpid=$!
	_i=0
	while [ $_i -lt 100 ] && ! grep -q "ATRN 250" "$T/cust-crash1.out"; do
		sleep 0.1; _i=$((_i + 1))
	done
	if octl --json queue 2>/dev/null | grep -q '"holder": *"odmrd'; then
		ok "crash: c.example is claimed by the stalled session"
	else
		not_ok "crash: no claim visible before the kill: $(octl queue | tr '\n' '|')"
	fi
	odmrd_kill9
	kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
	if odmrd_start; then
		python3 "$CUST" 127.0.0.1 "$ODMR_PORT" --user carol --atrn c.example \
		    --outdir "$T/in-crash2" >"$T/cust-crash2.out" 2>&1
		if grep -q "ATRN 250" "$T/cust-crash2.out" &&
		    grep -rq "claimed by a process that dies" "$T/in-crash2"; then
			ok "crash: after kill -9 and a restart the claim is broken: ATRN 250 and the message arrives"
		else
			not_ok "crash: ATRN after the restart: $(tail -n 5 "$T/cust-crash2.out" | tr '\n' '|')"
		fi
	else
		not_ok "crash: odmrd restarts after kill -9"
	fi
else
	not_ok "crash: queueing the message: $(tail -n 3 "$T/crash-swaks.out" | tr '\n' '|')"
fi

# ---- kill -9 in the middle of a pipelined pickup: at least once each ------
# odmrd records outcomes in batches and pipelines transactions: a kill
# after the customer's 250 and before the batch is on disk delivers
# those messages again, at most TURN_RECORDS_MAX + TURN_WINDOW + 1
# (128 + 8 + 1) of them; none may be missing
FETCH=$top_builddir/turn/odmr-fetch
KN=2000
if ! command -v smtp-sink >/dev/null 2>&1; then
	not_ok "kill -9 mid-pickup: smtp-sink is missing (apt-get install postfix)"
elif [ ! -x "$FETCH" ]; then
	not_ok "kill -9 mid-pickup: $FETCH is not built"
else
	printf 'secret\n' | octl user add kate >>"$T/setup.out" 2>&1
	octl domain add k.example --owner kate >>"$T/setup.out" 2>&1
	python3 - "$SMTP_PORT" "$KN" <<'PY' >"$T/kfill.out" 2>&1
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
for i in range(int(sys.argv[2])):
    s.sendmail("a@x.test", ["u@k.example"],
               "Subject: crash-%d\r\n\r\nbody %d\r\n" % (i, i))
s.quit()
PY
	# outside $T (0700): smtp-sink writes as nobody
	KS=$(mktemp -d "${TMPDIR:-/tmp}/odmr-ksink.XXXXXX")
	chmod 777 "$KS"
	KSINK_PORT=$(free_port)
	_u=""; [ "$(id -u)" -eq 0 ] && _u="-u nobody"
	# shellcheck disable=SC2086
	smtp-sink $_u -d "$KS/%M." "127.0.0.1:$KSINK_PORT" 100 \
	    >"$T/ksink.log" 2>&1 &
	ksink_pid=$!
	wait_port "$KSINK_PORT" || diag "smtp-sink does not listen on $KSINK_PORT"
	# kfetch N - one odmr-fetch pickup of k.example; its log in $T/kfetchN.log
	kfetch() {
		ODMR_PASSWORD=secret "$FETCH" --server "127.0.0.1:$ODMR_PORT" \
		    --user kate --tls none --domains k.example \
		    --deliver-to "127.0.0.1:$KSINK_PORT" \
		    --hostname fetch.k.example >"$T/kfetch$1.log" 2>&1
	}
	kfetch 1 &
	kf_pid=$!
	_i=0
	while [ $_i -lt 600 ] && [ "$(find "$KS" -type f | wc -l)" -lt 300 ]; do
		sleep 0.05; _i=$((_i + 1))
	done
	odmrd_kill9
	_at=$(find "$KS" -type f | wc -l)
	wait "$kf_pid"
	_frc=$?
	if [ "$_at" -ge 300 ] && [ "$_at" -lt "$KN" ] && [ "$_frc" -ne 0 ]; then
		ok "kill -9 mid-pickup: odmrd killed after $_at of $KN messages; odmr-fetch exited $_frc"
	else
		not_ok "kill -9 mid-pickup: the kill did not land mid-delivery ($_at of $KN delivered, odmr-fetch exit $_frc)"
	fi
	if odmrd_start && kfetch 2; then
		ok "kill -9 mid-pickup: after a restart the next pickup completes"
	else
		not_ok "kill -9 mid-pickup: the next pickup: $(tail -n 3 "$T/kfetch2.log" | tr '\n' '|')"
	fi
	kill "$ksink_pid" 2>/dev/null; wait "$ksink_pid" 2>/dev/null
	if python3 - "$KS" "$KN" <<'PY' >"$T/kcheck.out" 2>&1; then
import collections, glob, re, sys
n = int(sys.argv[2])
seen = collections.Counter()
for f in glob.glob(sys.argv[1] + "/*"):
    m = re.search(rb"^Subject: crash-(\d+)$", open(f, "rb").read(), re.M)
    assert m, f
    seen[int(m.group(1))] += 1
missing = sorted(set(range(n)) - set(seen))
dups = sum(c - 1 for c in seen.values())
print("delivered %d, distinct %d, twice or more %d, missing %d" %
      (sum(seen.values()), len(seen), dups, len(missing)))
assert not missing, missing[:20]
assert dups <= 137, dups
PY
		ok "kill -9 mid-pickup: every message arrived, none lost ($(cat "$T/kcheck.out"))"
	else
		not_ok "kill -9 mid-pickup: $(tail -n 3 "$T/kcheck.out" | tr '\n' '|')"
	fi
	_kq=$(octl --json queue k.example 2>/dev/null | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["messages"]))' 2>&1)
	if [ "$_kq" = 0 ]; then
		ok "kill -9 mid-pickup: k.example's queue is empty"
	else
		not_ok "kill -9 mid-pickup: k.example still holds $_kq messages"
	fi
	rm -rf "$KS"
fi

# ---- SASL EXTERNAL with a TLS client certificate (RFC 4422 A) -----------
# a test CA issues xena's certificate (CN = the account) and one for an
# account that does not exist; a second CA that odmrd does not trust
# issues another "xena"; tls_client_ca_file comes in with SIGHUP
ext_setup() {
	_d=$T/ext
	mkdir -p "$_d" || return 1
	for _ca in ca evilca; do
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ODMR test $_ca" \
		    -keyout "$_d/$_ca.key" -out "$_d/$_ca.pem" >/dev/null 2>&1 || return 1
	done
	for _c in xena:xena:ca nouser:nosuchaccount:ca evil:xena:evilca; do
		_n=${_c%%:*} _rest=${_c#*:}
		openssl req -newkey rsa:2048 -nodes -subj "/CN=${_rest%%:*}" \
		    -keyout "$_d/$_n.key" -out "$_d/$_n.csr" >/dev/null 2>&1 &&
		openssl x509 -req -in "$_d/$_n.csr" -CA "$_d/${_rest#*:}.pem" \
		    -CAkey "$_d/${_rest#*:}.key" -CAcreateserial -days 2 \
		    -out "$_d/$_n.pem" >/dev/null 2>&1 || return 1
	done
	printf 'xena-pw\n' | octl user add xena >>"$T/setup.out" 2>&1 &&
	octl domain add x.example --owner xena >>"$T/setup.out" 2>&1
}
cat >"$T/ext.py" <<'PY'
"""SASL EXTERNAL cases: python3 ext.py PHASE; prints TAP-ish lines."""
import os, socket, ssl, sys

T = os.environ["T"]
D = T + "/ext"


def ok(cond, desc, detail=""):
    print(("ok - " if cond else "not ok - ") + desc +
          ("" if cond or not detail else ": " + str(detail).replace("\n", "|")[:600]), flush=True)


class Session:
    """One client: STARTTLS (or implicit TLS) with an optional certificate."""

    def __init__(self, port, cert=None, implicit=False):
        ctx = ssl.create_default_context(cafile=T + "/cert.pem")
        ctx.check_hostname = False
        if cert:
            ctx.load_cert_chain(D + "/" + cert + ".pem", D + "/" + cert + ".key")
        s = socket.create_connection(("127.0.0.1", port), timeout=20)
        if implicit:
            s = ctx.wrap_socket(s)
            self.f = s.makefile("rb")
            self.s = s
            self.greeting = self.reply()
        else:
            self.s, self.f = s, s.makefile("rb")
            self.greeting = self.reply()
            self.cmd("EHLO ext.test")
            self.starttls = self.cmd("STARTTLS")
            s = ctx.wrap_socket(s)
            self.s, self.f = s, s.makefile("rb")

    def reply(self):
        lines = []
        while True:
            l = self.f.readline().decode(errors="replace").rstrip("\r\n")
            if not l:
                return (0, lines)
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                return (int(l[:3]), lines)

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        return self.reply()

    def ehlo_mechs(self):
        code, lines = self.cmd("EHLO ext.test")
        for l in lines:
            if l[4:].upper().startswith("AUTH "):
                return code, l[9:].split()
        return code, []

    def close(self):
        try:
            self.cmd("QUIT")
        except OSError:
            pass
        self.s.close()


def case(name, port, cert, steps, implicit=False):
    """steps: (command, expected codes); "EHLO" checks the AUTH list."""
    try:
        c = Session(port, cert, implicit)
    except (OSError, ssl.SSLError) as e:
        ok(False, name + ": TLS session", repr(e))
        return
    for cmd, want in steps:
        if cmd == "EHLO":
            code, mechs = c.ehlo_mechs()
            ok(code == 250 and ("EXTERNAL" in mechs) == want,
               "%s: EHLO %s EXTERNAL" % (name, "lists" if want else "does not list"), mechs)
        else:
            code, lines = c.cmd(cmd)
            ok(code in want, "%s: %s -> %s" % (name, cmd or "(empty line)", "/".join(map(str, want))), lines)
    c.close()


P = int(os.environ["ODMR_PORT"])
PS = int(os.environ["ODMRS_PORT"])
M = int(os.environ["SMTP_PORT"])
if sys.argv[1] == "before":
    case("before tls_client_ca_file, xena's certificate", P, "xena",
         [("EHLO", False), ("AUTH EXTERNAL =", (504,))])
    sys.exit(0)
case("xena's certificate", P, "xena",
     [("EHLO", True), ("AUTH EXTERNAL =", (235,)), ("ATRN x.example", (250, 453)),])
case("xena's certificate, EXTERNAL with a 334 round", P, "xena",
     [("EHLO", True), ("AUTH EXTERNAL", (334,)), ("", (235,))])
case("xena's certificate, authzid xena", P, "xena",
     [("EHLO", True), ("AUTH EXTERNAL eGVuYQ==", (235,))])
case("no certificate", P, None,
     [("EHLO", False), ("AUTH EXTERNAL =", (504,)), ("ATRN x.example", (530,))])
case("untrusted CA's certificate", P, "evil",
     [("EHLO", False), ("AUTH EXTERNAL =", (504,))])
case("CN of no account", P, "nouser",
     [("EHLO", True), ("AUTH EXTERNAL =", (535,)), ("ATRN x.example", (530,))])
case("xena's certificate, authzid alice", P, "xena",
     [("EHLO", True), ("AUTH EXTERNAL YWxpY2U=", (535,)), ("ATRN example.org", (530,))])
case("odmrs_listen (implicit TLS), xena's certificate", PS, "xena",
     [("EHLO", True), ("AUTH EXTERNAL =", (235,)), ("ATRN x.example", (250, 453))], implicit=True)
case("MX port, xena's certificate", M, "xena",
     [("EHLO", True), ("AUTH EXTERNAL =", (235,))])
PY
if ext_setup; then
	ok "EXTERNAL: a test CA, certificates for xena, for no account and from an untrusted CA"
	python3 "$T/ext.py" before >"$T/ext-before.out" 2>&1
	tap_feed "$T/ext-before.out"
	odmrd_conf tls_client_ca_file "$T/ext/ca.pem"
	_from=$(($(wc -l <"$T/odmrd.log") + 1))
	kill -HUP "$odmrd_pid"
	_i=0
	while [ $_i -lt 100 ] && ! tail -n +"$_from" "$T/odmrd.log" |
	    grep -q "event=reloaded .*client_ca=$T/ext/ca.pem"; do
		sleep 0.1; _i=$((_i + 1))
	done
	if tail -n +"$_from" "$T/odmrd.log" | grep -q "event=reloaded .*client_ca=$T/ext/ca.pem"; then
		ok "EXTERNAL: SIGHUP loads tls_client_ca_file"
	else
		not_ok "EXTERNAL: SIGHUP loads tls_client_ca_file: $(tail -n +"$_from" "$T/odmrd.log" | grep reload | tr '\n' '|')"
	fi
	python3 "$T/ext.py" after >"$T/ext.out" 2>&1
	tap_feed "$T/ext.out"
	grep -q '^Traceback' "$T/ext.out" &&
	    not_ok "EXTERNAL: the python cases ran to the end: $(tail -n 4 "$T/ext.out" | tr '\n' '|')"
	_log=$(tail -n +"$_from" "$T/odmrd.log")
	if echo "$_log" | grep -q 'event=starttls .*client_cert=verified cn="xena"' &&
	    echo "$_log" | grep -q 'event=tls .*client_cert=verified cn="xena"' &&
	    echo "$_log" | grep -q 'event=starttls .*client_cert=none'; then
		ok "EXTERNAL: odmrd logs verified certificates with their CN, and sessions without one"
	else
		not_ok "EXTERNAL: the TLS log lines: $(echo "$_log" | grep 'client_cert=' | head -n 4 | tr '\n' '|')"
	fi
	if echo "$_log" | grep -q 'event=starttls .*client_cert=unverified cn="xena" reason="'; then
		ok "EXTERNAL: odmrd logs that the untrusted CA's certificate did not verify"
	else
		not_ok "EXTERNAL: no client_cert=unverified line: $(echo "$_log" | grep 'client_cert=' | tr '\n' '|')"
	fi
	if echo "$_log" | grep -q 'event=auth user=xena mech=EXTERNAL' &&
	    echo "$_log" | grep -q 'event=auth-failed .*mech=EXTERNAL .*reason="no such account"'; then
		ok "EXTERNAL: successes and failures are logged as event=auth / event=auth-failed"
	else
		not_ok "EXTERNAL: auth log lines: $(echo "$_log" | grep 'event=auth' | head -n 4 | tr '\n' '|')"
	fi
	# odmr-fetch with a certificate and no password, end to end
	if ! command -v smtp-sink >/dev/null 2>&1; then
		not_ok "EXTERNAL: odmr-fetch: smtp-sink is missing (apt-get install postfix)"
	elif [ ! -x "$FETCH" ]; then
		not_ok "EXTERNAL: odmr-fetch: $FETCH is not built"
	else
		printf 'Subject: ext-%s\r\n\r\nfetched with a certificate\r\n' "$$" >"$T/ext-msg.txt"
		XS=$(mktemp -d "${TMPDIR:-/tmp}/odmr-xsink.XXXXXX")
		chmod 777 "$XS"
		XSINK_PORT=$(free_port)
		_u=""; [ "$(id -u)" -eq 0 ] && _u="-u nobody"
		# shellcheck disable=SC2086
		smtp-sink $_u -d "$XS/%M." "127.0.0.1:$XSINK_PORT" 10 >"$T/xsink.log" 2>&1 &
		xsink_pid=$!
		wait_port "$XSINK_PORT" || diag "smtp-sink does not listen on $XSINK_PORT"
		if swaks --server "127.0.0.1:$SMTP_PORT" --to u@x.example --from a@x.test \
		    --data "$T/ext-msg.txt" >"$T/ext-swaks.out" 2>&1; then
			env -u ODMR_PASSWORD "$FETCH" --server "127.0.0.1:$ODMR_PORT" \
			    --cert "$T/ext/xena.pem" --key "$T/ext/xena.key" \
			    --ca-file "$T/cert.pem" --tls-name mx.odmr.test \
			    --domains x.example --deliver-to "127.0.0.1:$XSINK_PORT" \
			    --hostname fetch.x.example >"$T/xfetch.log" 2>&1
			_frc=$?
			[ "$_frc" -eq 0 ] && wait_until 20 grep -rqs "^Subject: ext-$$" "$XS"
			if [ "$_frc" -eq 0 ] && grep -rqs "^Subject: ext-$$" "$XS"; then
				ok "EXTERNAL: odmr-fetch --cert --key, no password: the queued message arrives (exit 0)"
			else
				not_ok "EXTERNAL: odmr-fetch --cert: exit $_frc: $(tail -n 3 "$T/xfetch.log" | tr '\n' '|')"
			fi
			check "EXTERNAL: odmr-fetch logs mechanism=EXTERNAL" \
			    grep -q 'event=auth user=(certificate) mechanism=EXTERNAL tls=yes result=ok' "$T/xfetch.log"
			env -u ODMR_PASSWORD "$FETCH" --server "127.0.0.1:$ODMR_PORT" \
			    --cert "$T/ext/evil.pem" --key "$T/ext/evil.key" \
			    --ca-file "$T/cert.pem" --tls-name mx.odmr.test \
			    --domains x.example --deliver-to "127.0.0.1:$XSINK_PORT" \
			    >"$T/xfetch-evil.log" 2>&1
			_frc=$?
			if [ "$_frc" -eq 2 ] && grep -q 'does not offer AUTH EXTERNAL' "$T/xfetch-evil.log"; then
				ok "EXTERNAL: odmr-fetch with an untrusted certificate and no password: exit 2, says why"
			else
				not_ok "EXTERNAL: odmr-fetch, untrusted certificate: exit $_frc: $(tail -n 2 "$T/xfetch-evil.log" | tr '\n' '|')"
			fi
		else
			not_ok "EXTERNAL: queueing for x.example: $(tail -n 3 "$T/ext-swaks.out" | tr '\n' '|')"
		fi
		kill "$xsink_pid" 2>/dev/null; wait "$xsink_pid" 2>/dev/null
		rm -rf "$XS"
	fi
else
	not_ok "EXTERNAL: test certificates and account: $(tail -n 3 "$T/setup.out" | tr '\n' '|')"
fi

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
