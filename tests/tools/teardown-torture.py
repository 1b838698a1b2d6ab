#!/usr/bin/env python3
"""
NAME
	teardown-torture.py - end odmrd sessions every rude way, many times

SYNOPSIS
	teardown-torture.py [--reps N] [--only NAME,...]

DESCRIPTION
	Drives a running odmrd (tests/integration/test-teardown.sh starts
	it) through each way a client or a customer's server can end a
	session: close_notify with or without QUIT, with or without
	reading; a reset (SO_LINGER 0); a half-done handshake; the middle
	of DATA, of a BDAT chunk, right after the end of DATA; during
	AUTH; on the MX, ODMR and implicit-TLS listeners; right after the
	250 to ATRN and during the reversed session; and, with odmrd as
	the client of an ETRN delivery, a server that hangs up the same
	ways. After every session it checks that odmrd greets a new client
	within GREET_S seconds. Each way runs --reps times (default 30).

	Every message that got its 250 before a hang-up is checked at the
	end: it is in the store, byte for byte (odmrctl --json show ID
	--raw ends with the text sent).

	The environment gives T, SMTP_PORT, ODMR_PORT, ODMRS_PORT, ODMRCTL,
	ETRN_DOMAIN, ATRN_DOMAIN, ATRN_USER, ATRN_PASSWORD, ROUTE_PORT and
	ROUTE_ADDR (where odmrd delivers ETRN_DOMAIN). Output: one
	"ok - " or "not ok - " line per way (tests/tap.sh tap_feed), with
	"# " lines for detail.
"""
import argparse
import base64
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

GREET_S = 1.0		# a new client is greeted within this
IO_S = 10.0		# any single read of ours
T = os.environ["T"]
SMTP = int(os.environ["SMTP_PORT"])
ODMR = int(os.environ["ODMR_PORT"])
ODMRS = int(os.environ["ODMRS_PORT"])
CTL = [os.environ["ODMRCTL"], "-f", T + "/odmrd.conf"]
ETRN_DOMAIN = os.environ["ETRN_DOMAIN"]
ATRN_DOMAIN = os.environ["ATRN_DOMAIN"]
USER = os.environ["ATRN_USER"]
PASSWORD = os.environ["ATRN_PASSWORD"]
ROUTE_PORT = int(os.environ["ROUTE_PORT"])
ROUTE_ADDR = os.environ.get("ROUTE_ADDR", "127.0.0.1")
HOST = "127.0.0.1"

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
SCTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
SCTX.load_cert_chain(T + "/cert.pem", T + "/key.pem")

acked = {}		# queue id -> the text we sent (to find in the store)


class Fail(Exception):
    """A way that did not go as it must."""


def connect(port):
    """A TCP connection to odmrd, with our read timeout."""
    s = socket.create_connection((HOST, port), IO_S)
    s.settimeout(IO_S)
    return s


def reply(s):
    """One whole SMTP reply (all its lines) as text."""
    data = b""
    while True:
        lines = data.split(b"\r\n")
        for ln in lines[:-1]:
            if len(ln) >= 4 and ln[3:4] == b" ":
                return data.decode("latin-1")
        chunk = s.recv(65536)
        if not chunk:
            raise Fail("connection closed while waiting for a reply "
                       "(had %r)" % data[-200:])
        data += chunk


def cmd(s, text, want):
    """Send a command, read its reply, check the code's first digit(s)."""
    s.sendall(text.encode("latin-1") + b"\r\n")
    r = reply(s)
    if not r.startswith(want):
        raise Fail("%s: got %r, want %s" % (text.split()[0], r[:120], want))
    return r


def rst(s):
    """Close with a reset: SO_LINGER 0."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def close_notify(t):
    """Send close_notify without waiting for the peer's, then close."""
    try:
        t.setblocking(False)
        t.unwrap()
    except (ssl.SSLError, OSError, ValueError):
        pass
    try:
        t.close()
    except OSError:
        pass


def starttls(s, port=SMTP):
    """EHLO, STARTTLS, handshake, EHLO again: a TLS socket."""
    reply(s)
    cmd(s, "EHLO torture.example", "250")
    cmd(s, "STARTTLS", "220")
    t = CTX.wrap_socket(s)
    t.settimeout(IO_S)
    cmd(t, "EHLO torture.example", "250")
    return t


def implicit(port=ODMRS):
    """A TLS session on the implicit-TLS port, greeted."""
    t = CTX.wrap_socket(connect(port))
    t.settimeout(IO_S)
    reply(t)
    return t


def plain(port=SMTP):
    """A plaintext session after EHLO."""
    s = connect(port)
    reply(s)
    cmd(s, "EHLO torture.example", "250")
    return s


def txn(s, body=None):
    """MAIL and RCPT to the ETRN domain, then DATA's 354."""
    cmd(s, "MAIL FROM:<torture@sender.example>", "250")
    cmd(s, "RCPT TO:<user@%s>" % ETRN_DOMAIN, "250")
    cmd(s, "DATA", "354")


def half_hello(s):
    """The first bytes of a TLS ClientHello: a handshake left half done."""
    s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01,
                     0xfc, 0x03, 0x03]) + os.urandom(20))


def auth_plain_tls(port=ODMR):
    """ODMR port, STARTTLS and AUTH PLAIN: an authenticated TLS socket."""
    t = starttls(connect(port), port)
    tok = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode()).decode()
    cmd(t, "AUTH PLAIN " + tok, "235")
    return t


def atrn(t):
    """ATRN for the customer's domain, retried while a claim is released."""
    end = time.time() + 10
    while True:
        t.sendall(("ATRN %s\r\n" % ATRN_DOMAIN).encode())
        r = reply(t)
        if r.startswith("250"):
            return
        if not r.startswith("451") or time.time() > end:
            raise Fail("ATRN: %r" % r[:120])
        time.sleep(0.05)


# ---- the ways: each ends one session --------------------------------------

def w_quit_noread():
    s = plain()
    s.sendall(b"QUIT\r\n")
    s.close()


def w_rst_after_ehlo():
    rst(plain())


def w_rst_mid_data():
    s = plain()
    txn(s)
    s.sendall(b"Subject: half\r\n\r\nhalf a message\r\n")
    rst(s)


def w_fin_mid_data():
    s = plain()
    txn(s)
    s.sendall(b"Subject: half\r\n\r\nhalf a message\r\n")
    s.close()


def w_fin_mid_bdat():
    s = plain()
    cmd(s, "MAIL FROM:<torture@sender.example>", "250")
    cmd(s, "RCPT TO:<user@%s>" % ETRN_DOMAIN, "250")
    s.sendall(b"BDAT 100000 LAST\r\n" + b"x" * 30000)
    s.close()


def w_after_data_end_noread():
    s = plain()
    txn(s)
    s.sendall(b"Subject: unread\r\n\r\nits 250 is never read\r\n.\r\nQUIT\r\n")
    s.close()


def w_rst_after_250():
    s = plain()
    txn(s)
    text = ("Subject: acked %s\r\n\r\nacknowledged, then a reset\r\n"
            % os.urandom(6).hex())
    s.sendall(text.encode() + b".\r\n")
    r = reply(s)
    if not r.startswith("250"):
        raise Fail("end of DATA: %r" % r[:120])
    qid = r.split()[-1].strip()
    acked[qid] = text.encode()
    rst(s)


def w_tls_quit_notify_noread():
    t = starttls(connect(SMTP))
    t.sendall(b"QUIT\r\n")
    close_notify(t)


def w_tls_notify_noquit():
    close_notify(starttls(connect(SMTP)))


def w_tls_quit_read_notify():
    t = starttls(connect(SMTP))
    cmd(t, "QUIT", "221")
    close_notify(t)


def w_tls_noops_notify():
    t = starttls(connect(SMTP))
    t.sendall(b"NOOP\r\n" * 200)
    close_notify(t)


def w_tls_notify_mid_bdat():
    t = starttls(connect(SMTP))
    cmd(t, "MAIL FROM:<torture@sender.example>", "250")
    cmd(t, "RCPT TO:<user@%s>" % ETRN_DOMAIN, "250")
    t.sendall(b"BDAT 100000\r\n" + b"y" * 40000)
    close_notify(t)


def w_tls_rst():
    t = starttls(connect(SMTP))
    rst(t)


def w_half_handshake():
    s = connect(SMTP)
    reply(s)
    cmd(s, "EHLO torture.example", "250")
    cmd(s, "STARTTLS", "220")
    half_hello(s)
    s.close()


def w_half_handshake_rst():
    s = connect(SMTP)
    reply(s)
    cmd(s, "EHLO torture.example", "250")
    cmd(s, "STARTTLS", "220")
    half_hello(s)
    rst(s)


def w_auth_hangup():
    t = starttls(connect(ODMR), ODMR)
    t.sendall(b"AUTH PLAIN\r\n")
    r = reply(t)
    if not r.startswith("334"):
        raise Fail("AUTH PLAIN: %r" % r[:120])
    close_notify(t)


def w_auth_rst():
    t = starttls(connect(ODMR), ODMR)
    t.sendall(b"AUTH PLAIN\r\n")
    reply(t)
    rst(t)


def w_odmr_quit_notify():
    t = starttls(connect(ODMR), ODMR)
    t.sendall(b"QUIT\r\n")
    close_notify(t)


def w_odmrs_handshake_notify():
    # openssl s_client </dev/null: the handshake, then close_notify
    t = CTX.wrap_socket(connect(ODMRS))
    close_notify(t)


def w_odmrs_quit_notify():
    t = implicit()
    cmd(t, "EHLO torture.example", "250")
    t.sendall(b"QUIT\r\n")
    close_notify(t)


def w_odmrs_half_handshake():
    s = connect(ODMRS)
    half_hello(s)
    rst(s)


def w_atrn_rst_after_250():
    t = auth_plain_tls()
    atrn(t)
    rst(t)


def w_atrn_notify_after_250():
    t = auth_plain_tls()
    atrn(t)
    close_notify(t)


def w_atrn_mid_session():
    # the node is the client now: greet it, take its EHLO, then hang up
    t = auth_plain_tls()
    atrn(t)
    t.sendall(b"220 customer.example ESMTP\r\n")
    line = b""
    while b"\r\n" not in line:
        c = t.recv(4096)
        if not c:
            raise Fail("no EHLO from the node")
        line += c
    if not line.upper().startswith(b"EHLO"):
        raise Fail("the node said %r, not EHLO" % line[:80])
    t.sendall(b"250-customer.example\r\n250 PIPELINING\r\n")
    # take its MAIL, then go
    t.recv(4096)
    close_notify(t)


def w_atrn_mid_data():
    # answer the node's commands one by one; reset once its text flows
    t = auth_plain_tls()
    atrn(t)
    t.sendall(b"220 customer.example ESMTP\r\n")
    buf = b""
    in_text = False
    end = time.time() + IO_S
    while time.time() < end:
        c = t.recv(65536)
        if not c:
            raise Fail("the node hung up first")
        if in_text:
            rst(t)
            return
        buf += c
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if line.upper().startswith(b"DATA"):
                t.sendall(b"354 go\r\n")
                in_text = True
            elif line.upper().startswith(b"QUIT"):
                raise Fail("the node sent QUIT before any text")
            else:
                t.sendall(b"250 ok\r\n")
        if in_text and buf:
            rst(t)
            return
    raise Fail("the reversed session did not reach the text")


class Route:
    """The customer's server for ETRN deliveries: hangs up as told."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ROUTE_ADDR, ROUTE_PORT))
        self.sock.listen(16)
        self.sock.settimeout(IO_S)

    def serve(self, how):
        """Accept odmrd's connection and end it the way named."""
        c, _ = self.sock.accept()
        c.settimeout(IO_S)
        try:
            if how == "close-at-once":
                c.close()
                return
            if how == "rst-at-once":
                rst(c)
                return
            c.sendall(b"220 route.example ESMTP\r\n")
            c.recv(4096)			# EHLO
            if how == "rst-after-ehlo":
                rst(c)
                return
            if how.startswith("tls"):
                c.sendall(b"250-route.example\r\n250 STARTTLS\r\n")
                c.recv(4096)		# STARTTLS
                c.sendall(b"220 go ahead\r\n")
                t = SCTX.wrap_socket(c, server_side=True)
                c = t
                if how == "tls-notify":
                    close_notify(t)
                    return
                c.recv(4096)		# EHLO again
                c.sendall(b"250 route.example\r\n")
                c.recv(4096)		# MAIL
                rst(t)
                return
            c.sendall(b"250-route.example\r\n250 PIPELINING\r\n")
            got = b""
            while b"DATA\r\n" not in got:
                d = c.recv(65536)
                if not d:
                    return
                got += d
            n = got.count(b"\r\n")
            c.sendall(b"250 ok\r\n" * (n - 1) + b"354 go\r\n")
            c.recv(65536)		# some text
            if how == "rst-mid-data":
                rst(c)
            else:
                c.close()
        except (OSError, ssl.SSLError):
            try:
                c.close()
            except OSError:
                pass


ROUTE = None


def unclaimed(domain):
    """Wait (10 s at most) until no delivery holds the domain."""
    end = time.time() + 10
    while time.time() < end:
        out = subprocess.run(CTL + ["--json", "queue"], capture_output=True,
                             timeout=60)
        doms = json.loads(out.stdout)["domains"] if out.returncode == 0 else []
        if not any(d["domain"] == domain and d["flush"] for d in doms):
            return
        time.sleep(0.05)
    raise Fail("a delivery still holds %s after 10 s" % domain)


def etrn_way(how):
    """ETRN: odmrd delivers to the route, which hangs up as told."""
    def way():
        end = time.time() + 10
        result = {}

        def run():
            try:
                ROUTE.serve(how)
            except Exception as e:		# reported below
                result["error"] = e
        unclaimed(ETRN_DOMAIN)		# the last delivery has ended
        th = threading.Thread(target=run)
        th.start()
        try:
            while True:
                s = plain()
                s.sendall(("ETRN %s\r\n" % ETRN_DOMAIN).encode())
                r = reply(s)
                s.sendall(b"QUIT\r\n")
                s.close()
                if r.startswith("25") and not r.startswith("251"):
                    break
                if time.time() > end:
                    raise Fail("ETRN: %r" % r[:120])
                time.sleep(0.05)
        finally:
            th.join(IO_S + 5)
        if "error" in result:
            raise Fail("the route saw no delivery: %s" % result["error"])
    way.__name__ = "w_etrn_" + how.replace("-", "_")
    return way


WAYS = [
    ("MX: QUIT, close without reading", w_quit_noread),
    ("MX: reset after EHLO", w_rst_after_ehlo),
    ("MX: reset in the middle of DATA", w_rst_mid_data),
    ("MX: close in the middle of DATA", w_fin_mid_data),
    ("MX: close in the middle of a BDAT 100000 chunk", w_fin_mid_bdat),
    ("MX: close right after the end of DATA, 250 unread", w_after_data_end_noread),
    ("MX: reset right after the 250 to DATA", w_rst_after_250),
    ("MX STARTTLS: QUIT, close_notify, close, nothing read", w_tls_quit_notify_noread),
    ("MX STARTTLS: close_notify without QUIT", w_tls_notify_noquit),
    ("MX STARTTLS: QUIT, 221 read, close_notify", w_tls_quit_read_notify),
    ("MX STARTTLS: 200 pipelined NOOPs, close_notify", w_tls_noops_notify),
    ("MX STARTTLS: close_notify in the middle of BDAT 100000", w_tls_notify_mid_bdat),
    ("MX STARTTLS: reset inside TLS", w_tls_rst),
    ("MX STARTTLS: half a handshake, close", w_half_handshake),
    ("MX STARTTLS: half a handshake, reset", w_half_handshake_rst),
    ("ODMR: close_notify during AUTH", w_auth_hangup),
    ("ODMR: reset during AUTH", w_auth_rst),
    ("ODMR STARTTLS: QUIT, close_notify, close, nothing read", w_odmr_quit_notify),
    ("ODMRS: handshake, close_notify at once (s_client </dev/null)", w_odmrs_handshake_notify),
    ("ODMRS: QUIT, close_notify, close, nothing read", w_odmrs_quit_notify),
    ("ODMRS: half a handshake, reset", w_odmrs_half_handshake),
    ("ATRN: reset right after the 250", w_atrn_rst_after_250),
    ("ATRN: close_notify right after the 250", w_atrn_notify_after_250),
    ("ATRN: close_notify during the reversed session", w_atrn_mid_session),
    ("ATRN: reset in the reversed session's DATA", w_atrn_mid_data),
    ("ETRN delivery: the server closes at once", etrn_way("close-at-once")),
    ("ETRN delivery: the server resets at once", etrn_way("rst-at-once")),
    ("ETRN delivery: the server resets after EHLO", etrn_way("rst-after-ehlo")),
    ("ETRN delivery: the server resets in DATA", etrn_way("rst-mid-data")),
    ("ETRN delivery: the server closes in DATA", etrn_way("close-mid-data")),
    ("ETRN delivery: the server sends close_notify after STARTTLS", etrn_way("tls-notify")),
    ("ETRN delivery: the server resets inside TLS", etrn_way("tls-rst")),
]


def greets():
    """odmrd answers a new client with 220 within GREET_S: '' or why not."""
    t0 = time.time()
    try:
        s = socket.create_connection((HOST, SMTP), GREET_S)
        s.settimeout(max(0.05, GREET_S - (time.time() - t0)))
        data = s.recv(512)
        s.close()
    except OSError as e:
        return "no greeting within %.1f s: %s" % (GREET_S, e)
    if not data.startswith(b"220 "):
        return "greeted with %r" % data[:80]
    return ""


def stored_raw(qid):
    """The stored text of a message, through odmrctl."""
    out = subprocess.run(CTL + ["--json", "show", qid, "--raw"],
                         capture_output=True, timeout=60)
    if out.returncode != 0:
        return None
    return base64.b64decode(json.loads(out.stdout)["content_base64"])


def main():
    global ROUTE
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    ROUTE = Route()
    only = [x for x in a.only.split(",") if x]
    total = 0
    for name, way in WAYS:
        if only and not any(o in way.__name__ for o in only):
            continue
        errors = []
        t0 = time.time()
        for i in range(a.reps):
            try:
                way()
            except Fail as e:
                errors.append("rep %d: %s" % (i + 1, e))
            except (OSError, ssl.SSLError) as e:
                errors.append("rep %d: %s: %s" % (i + 1, type(e).__name__, e))
            why = greets()
            if why:
                errors.append("rep %d: after it, %s" % (i + 1, why))
                break
            total += 1
        took = time.time() - t0
        if errors:
            print("not ok - %s (%d times): %d problems" % (name, a.reps,
                                                        len(errors)))
            for e in errors[:5]:
                print("# " + e)
        else:
            print("ok - %s: %d times, greeted after each (%.1f s)" %
                  (name, a.reps, took))
    # nothing acknowledged is lost
    bad = []
    for qid, text in acked.items():
        raw = stored_raw(qid)
        if raw is None or not raw.endswith(text):
            bad.append(qid)
    if acked and not bad:
        print("ok - all %d messages acknowledged before a reset are in the"
              " store, byte for byte" % len(acked))
    elif bad:
        print("not ok - acknowledged messages missing or changed: %s" %
              " ".join(bad[:10]))
    elif not only:
        print("not ok - no message was acknowledged: the check ran on nothing")
    print("# %d sessions ended rudely" % total)


if __name__ == "__main__":
    main()
