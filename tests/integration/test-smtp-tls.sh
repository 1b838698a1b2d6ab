#!/bin/sh
# NAME
#	test-smtp-tls.sh - STARTTLS on odmrd's MX listener (RFC 3207)
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-smtp-tls.sh
# DESCRIPTION
#	openssl s_client checks the handshake and the certificate (verified
#	against the test CA and the name mx.odmr.test), that TLS 1.2 and 1.3
#	work and that TLS 1.0 and 1.1 are refused even to a client willing
#	to use them, and that EHLO inside TLS no longer offers STARTTLS.
#	A python3 ssl client sends a whole message over TLS and checks the
#	store, then the attacks and mistakes:
#	- plaintext injected after STARTTLS in the same write (CVE-2011-0411:
#	  "STARTTLS\r\nRSET\r\n", "STARTTLS\r\nMAIL FROM:<evil@x.test>\r\n")
#	  must not be answered inside TLS nor change the session's state;
#	- a transaction begun before STARTTLS is forgotten after it;
#	- STARTTLS twice gets 503 5.5.1, STARTTLS with an argument 501;
#	- garbage, an early close or a truncated ClientHello instead of a
#	  handshake: odmrd logs it, closes, and keeps serving.
#	KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"

require_cmd openssl openssl
require_cmd python3 python3
odmrd_setup
export SMTP_PORT T ODMRCTL

# sclient NAME INPUT ARGS... - openssl s_client -starttls smtp to odmrd; output in $T/NAME.out
sclient() {
	_n=$1 _in=$2; shift 2
	printf "$_in" | timeout 20 openssl s_client -starttls smtp -connect "127.0.0.1:$SMTP_PORT" \
	    -servername mx.odmr.test -CAfile "$T/cert.pem" -verify_hostname mx.odmr.test \
	    -nocommands -ign_eof -crlf "$@" >"$T/$_n.out" 2>&1
	rc=$?
}

octl domain add example.org --owner demo >"$T/add.out" 2>&1 || {
	not_ok "octl domain add example.org: $(cat "$T/add.out")"
	tap_done
}
if odmrd_start; then ok "odmrd starts"; else not_ok "odmrd starts"; tap_done; fi

# ---- openssl s_client ----------------------------------------------------
sclient default 'EHLO sclient.test\nQUIT\n'
check "s_client: the handshake succeeds" grep -q '^New, TLSv1\.[23], Cipher is ' "$T/default.out"
# RFC 8446 6.1: each party MUST send close_notify before closing its
# write side; OpenSSL 3 reports its absence as an error (s_client exit 1)
if [ "$rc" -eq 0 ] && ! grep -q 'unexpected eof while reading' "$T/default.out"; then
	ok "s_client: after QUIT odmrd ends TLS with close_notify (s_client exit 0)"
else
	not_ok "s_client: after QUIT odmrd ends TLS with close_notify: exit $rc: $(grep -m 1 -i 'error' "$T/default.out")"
fi
if grep -q 'Verify return code: 0 (ok)' "$T/default.out"; then
	ok "s_client: certificate verifies against the CA and mx.odmr.test (Verify return code: 0)"
else
	not_ok "s_client: $(grep -E 'Verify return code|verify error' "$T/default.out" | head -3 | tr '\n' '|')"
fi
_proto=$(sed -n 's/^ *Protocol *: *//p' "$T/default.out" | head -n 1)
[ -n "$_proto" ] || _proto=$(sed -n 's/^New, \(TLSv[0-9.]*\), .*/\1/p' "$T/default.out" | head -n 1)
case $_proto in
TLSv1.2|TLSv1.3) ok "s_client: default protocol is $_proto" ;;
*) not_ok "s_client: default protocol '$_proto'" ;;
esac
# the EHLO reply inside TLS: lines after the handshake summary
# (s_client prints the last line of its own plaintext EHLO reply too)
awk '/^250[- ]mx\.odmr\.test/ { p = 1 } p && /^250/ { print } p && /^250 / { exit }' \
    "$T/default.out" >"$T/default.ehlo"
if grep -q '^250[- ]mx\.odmr\.test' "$T/default.ehlo"; then
	ok "s_client: EHLO inside TLS gets 250"
	if grep -qi '^250[- ]STARTTLS' "$T/default.ehlo"; then
		not_ok "s_client: EHLO inside TLS still offers STARTTLS: $(tr '\n' '|' <"$T/default.ehlo")"
	else
		ok "s_client: EHLO inside TLS does not offer STARTTLS"
	fi
else
	not_ok "s_client: no EHLO reply inside TLS: $(tail -n 8 "$T/default.out" | tr '\n' '|')"
fi
check "s_client: QUIT inside TLS gets 221" grep -q '^221' "$T/default.out"

sclient v12 'QUIT\n' -tls1_2
if grep -q '^New, TLSv1\.2, Cipher is ' "$T/v12.out" && grep -q '^221' "$T/v12.out"; then
	ok "s_client -tls1_2 works"
else
	not_ok "s_client -tls1_2: exit $rc: $(grep -E 'Protocol|New,|alert|error' "$T/v12.out" | head -3 | tr '\n' '|')"
fi
sclient v13 'QUIT\n' -tls1_3
if grep -q '^New, TLSv1\.3, Cipher is ' "$T/v13.out" && grep -q '^221' "$T/v13.out"; then
	ok "s_client -tls1_3 works"
else
	not_ok "s_client -tls1_3: exit $rc: $(grep -E 'Protocol|New,|alert|error' "$T/v13.out" | head -3 | tr '\n' '|')"
fi
# the client is made willing (SECLEVEL=0), so only the server can refuse
for v in tls1_1 tls1; do
	sclient "$v" 'QUIT\n' "-$v" -cipher 'DEFAULT:@SECLEVEL=0'
	if [ "$rc" -ne 0 ] && ! grep -q '^221' "$T/$v.out" && grep -q '^New, (NONE)' "$T/$v.out"; then
		ok "s_client -$v (client at SECLEVEL=0) is refused"
	else
		not_ok "s_client -$v was accepted: exit $rc: $(grep -E 'New,|^221' "$T/$v.out" | head -3 | tr '\n' '|')"
	fi
done

# ---- python3 ssl: a message, injection, misuse ----------------------------
cat >"$T/tls.py" <<'PY'
import base64, json, os, re, socket, ssl, subprocess, sys, time

PORT = int(os.environ["SMTP_PORT"])
T = os.environ["T"]
CTL = [os.environ["ODMRCTL"], "-f", T + "/odmrd.conf"]


def ok(cond, desc, detail=""):
    print(("ok - %s" % desc) if cond else ("not ok - %s: %s" % (desc, str(detail)[:600])), flush=True)
    return cond


class Smtp:
    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=15)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("closed; got %r" % (lines + [self.buf]))
                self.buf += chunk
            ln, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(ln)
            if len(ln) < 4 or ln[3:4] != b"-":
                return int(ln[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def tls(self):
        ctx = ssl.create_default_context(cafile=T + "/cert.pem")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.pending_plain = self.buf
        self.buf = b""
        self.sock = ctx.wrap_socket(self.sock, server_hostname="mx.odmr.test")


def starttls_keywords(lines):
    return [l for l in lines[1:] if l[4:].upper().startswith(b"STARTTLS")]


# a whole message over TLS
c = Smtp()
code, lines = c.cmd("EHLO py.client.test")
ok(code == 250 and starttls_keywords(lines), "plaintext EHLO offers STARTTLS", lines)
code, lines = c.cmd("STARTTLS")
ok(code == 220, "STARTTLS gets 220", lines)
c.tls()
ok(c.sock.version() in ("TLSv1.2", "TLSv1.3"), "python ssl handshake, verified, " + str(c.sock.version()))
code, lines = c.cmd("EHLO py.client.test")
ok(code == 250 and not starttls_keywords(lines), "EHLO inside TLS: 250 without STARTTLS", lines)
code, lines = c.cmd("STARTTLS")
ok(code == 503 and lines[-1][4:9] == b"5.5.1", "STARTTLS inside TLS gets 503 5.5.1", lines)
ok(c.cmd("MAIL FROM:<tls@x.test>")[0] == 250, "TLS: MAIL 250")
ok(c.cmd("RCPT TO:<u1@example.org>")[0] == 250, "TLS: RCPT 250")
ok(c.cmd("DATA")[0] == 354, "TLS: DATA 354")
msg = b"From: tls@x.test\r\nSubject: over tls\r\n\r\n" + b"secret line\r\n" * 1000
c.send(msg + b".\r\n")
code, lines = c.reply()
m = re.match(rb"^250 2\.0\.0 Ok: queued as ([0-9A-Fa-f]{14})$", lines[-1])
if ok(m is not None, "TLS: end of data gets 250 2.0.0 Ok: queued as ID", lines):
    qid = m.group(1).decode()
    out = subprocess.run(CTL + ["--json", "show", qid, "--raw"], capture_output=True)
    try:
        data = base64.b64decode(json.loads(out.stdout)["content_base64"])
    except Exception as e:
        data = b""
        print("# odmrctl: %r %r" % (e, out.stderr))
    hdr = re.sub(rb"\r\n[ \t]+", b" ", data.split(b"\r\n\r\n", 1)[0])
    rcvd = hdr.split(b"\r\n")[0]
    ok(rcvd.startswith(b"Received: from py.client.test ") and b"with ESMTPS" in rcvd and re.search(rb"TLSv1\.[23]", rcvd),
       "TLS: stored with Received: ... with ESMTPS and the TLS version", rcvd)
    ok(data.endswith(msg), "TLS: message stored byte for byte", len(data))
ok(c.cmd("QUIT")[0] == 221, "TLS: QUIT 221")

# CVE-2011-0411: plaintext pipelined after STARTTLS must be discarded
for inj, name in ((b"RSET\r\n", "RSET"), (b"MAIL FROM:<evil@x.test>\r\n", "MAIL FROM"),
                  (b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<u1@example.org>\r\n", "MAIL+RCPT")):
    c = Smtp()
    c.cmd("EHLO py.client.test")
    c.send(b"STARTTLS\r\n" + inj)
    code, lines = c.reply()
    ok(code == 220, "injection (%s): STARTTLS gets 220" % name, lines)
    if code != 220:
        continue
    extra = c.buf
    try:
        c.tls()
    except (ssl.SSLError, OSError) as e:
        ok(False, "injection (%s): handshake after the injected plaintext" % name,
           "%r (plaintext answered before TLS: %r)" % (e, extra))
        continue
    ok(not extra, "injection (%s): nothing answered in plaintext after the 220" % name, extra)
    ok(True, "injection (%s): handshake succeeds" % name)
    c.send("EHLO py.client.test\r\n")
    code, lines = c.reply()
    ok(code == 250 and re.match(rb"^250[- ]mx\.odmr\.test", lines[0]) is not None,
       "injection (%s): the first reply inside TLS is the EHLO reply" % name, lines)
    code, lines = c.cmd("RCPT TO:<u1@example.org>")
    ok(code == 503 and lines[-1][4:9] == b"5.5.1",
       "injection (%s): no transaction inside TLS (RCPT gets 503 5.5.1)" % name, lines)
    code, lines = c.cmd("NOOP")
    ok(code == 250, "injection (%s): the session goes on (NOOP 250)" % name, lines)
    c.cmd("QUIT")

# a transaction started before STARTTLS is forgotten (RFC 3207 4.2)
c = Smtp()
c.cmd("EHLO py.client.test")
ok(c.cmd("MAIL FROM:<early@x.test>")[0] == 250, "MAIL before STARTTLS: 250")
code, lines = c.cmd("STARTTLS")
if code == 220:
    c.tls()
    c.cmd("EHLO py.client.test")
    code, lines = c.cmd("RCPT TO:<u1@example.org>")
    ok(code == 503 and lines[-1][4:9] == b"5.5.1", "STARTTLS inside a transaction: the MAIL is forgotten (RCPT 503 5.5.1)", lines)
else:
    ok(code == 503, "STARTTLS inside a transaction refused with 503", lines)
c.sock.close()

# STARTTLS with an argument; STARTTLS before EHLO
c = Smtp()
c.cmd("EHLO py.client.test")
code, lines = c.cmd("STARTTLS now")
ok(code == 501, "STARTTLS with an argument gets 501 (RFC 3207)", lines)
code, lines = c.cmd("STARTTLS")
ok(code == 220, "STARTTLS after a 501 still works: 220", lines)
c.tls()
ok(c.cmd("EHLO py.client.test")[0] == 250, "... and its handshake and EHLO")
c.sock.close()


def closes(sock, desc, limit=15):
    """The server closes the connection within limit seconds."""
    sock.settimeout(limit)
    t0 = time.time()
    try:
        while sock.recv(4096):
            pass
        ok(True, desc + " (closed after %.1f s)" % (time.time() - t0))
    except socket.timeout:
        ok(False, desc, "still open after %d s" % limit)
    except OSError as e:
        ok(True, desc + " (%s)" % e.__class__.__name__)


# garbage instead of a ClientHello
c = Smtp()
c.cmd("EHLO py.client.test")
ok(c.cmd("STARTTLS")[0] == 220, "garbage: STARTTLS 220")
c.send(b"GET / HTTP/1.1\r\nHost: mx.odmr.test\r\n\r\n" + bytes(range(256)) * 4)
closes(c.sock, "garbage instead of a ClientHello: odmrd closes the connection")

# a truncated ClientHello, then close
c = Smtp()
c.cmd("EHLO py.client.test")
c.cmd("STARTTLS")
c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20)
c.sock.shutdown(socket.SHUT_WR)
closes(c.sock, "truncated ClientHello then half-close: odmrd closes")

def sessions_open():
    """connects minus disconnects in odmrd's log: sessions not yet over"""
    text = open(T + "/odmrd.log", errors="replace").read()
    return len(re.findall(r" event=connect ", text)) - len(re.findall(r" event=disconnect ", text))


# STARTTLS and then close at once
c = Smtp()
c.cmd("EHLO py.client.test")
c.send(b"STARTTLS\r\n")
c.sock.close()
# until odmrd has ended that session (and every other): 20 s at most
end = time.time() + 20
while sessions_open() > 0 and time.time() < end:
    time.sleep(0.05)
ok(sessions_open() == 0, "STARTTLS then a close at once: odmrd ends the session", sessions_open())

# still serving
c = Smtp()
ok(c.greeting[0] == 220, "odmrd still answers after the bad handshakes", c.greeting)
code, lines = c.cmd("EHLO py.client.test")
ok(code == 250 and starttls_keywords(lines), "... and offers STARTTLS", lines)
ok(c.cmd("STARTTLS")[0] == 220, "... and STARTTLS works again")
c.tls()
ok(c.cmd("EHLO py.client.test")[0] == 250, "... handshake and EHLO inside TLS")
c.cmd("QUIT")
PY
_before=$(wc -l <"$T/odmrd.log")
python3 "$T/tls.py" >"$T/tls.out" 2>&1
tap_feed "$T/tls.out"
tail -n +"$((_before + 1))" "$T/odmrd.log" >"$T/tls.log"
grep -iE 'handshake' "$T/tls.log" | grep -iE 'fail|error|abort' >"$T/tls.hs"
if [ "$(wc -l <"$T/tls.hs")" -ge 2 ]; then
	ok "odmrd logs the failed handshakes (garbage, truncated ClientHello)"
	sed 's/^/# /' "$T/tls.hs"
else
	not_ok "odmrd logs the failed handshakes: $(wc -l <"$T/tls.hs") lines about a failed handshake"
fi
check "odmrd is still running after the TLS cases" kill -0 "$odmrd_pid"

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
