#!/usr/bin/env python3
"""odmr-customer - a scripted ODMR customer: AUTH, ATRN, then an SMTP server.

SYNOPSIS
    odmr-customer.py HOST PORT [--tls none|starttls|implicit] [--ca FILE]
        [--user U --password P] [--auth MECH] [--auth-tries N]
        [--pre CMD]... [--cmd CMD]... [--atrn ARG]... [--no-atrn]
        [--stall S] [--ext LIST] [--ehlo-code N] [--rcpt-code ADDR=CODE]...
        [--mail-code CODE] [--data-code CODE] [--hangup-in-data N]
        [--outdir DIR] [--timeout S]

DESCRIPTION
    The client half speaks to an ODMR server (RFC 2645): it reads the
    greeting, sends EHLO, optionally STARTTLS (or starts with implicit
    TLS) checking the certificate against --ca, runs the --pre commands,
    authenticates with CRAM-MD5 (default), PLAIN, LOGIN or SCRAM-SHA-256
    (--auth-tries times, e.g. with a wrong --password), runs the --cmd
    commands, and sends ATRN: once per --atrn (an empty ARG means "ATRN"
    without argument; without --atrn, one bare ATRN) until one gets 250.

    After "250" the roles reverse on the same socket: it sends
    "220 customer.test ESMTP" (or, with --stall S, says nothing for S
    seconds and hangs up), answers EHLO with the --ext list (comma
    separated: PIPELINING, CHUNKING, 8BITMIME, BINARYMIME, SMTPUTF8, DSN,
    SIZE=N, ENHANCEDSTATUSCODES; "none" for no extension) or with
    --ehlo-code, and serves MAIL, RCPT, DATA, BDAT, RSET, NOOP and QUIT.
    RCPT replies come from --rcpt-code ADDR=CODE[:TEXT] (default 250),
    the end of a message gets --data-code (default 250). With
    --hangup-in-data N it closes the socket in the middle of the Nth
    message's content.

    The server half is strict and records every protocol violation:
    a parameter whose extension was not offered (SIZE, BODY=8BITMIME,
    BODY=BINARYMIME, SMTPUTF8, RET, ENVID, NOTIFY, ORCPT) gets 555; BDAT
    without CHUNKING gets 502; 8-bit content without BODY=8BITMIME or
    BINARYMIME, a message larger than the announced SIZE, a non-ASCII
    address without SMTPUTF8, and pipelined commands without PIPELINING
    are violations. After MAIL it waits up to 0.2 s for the next command
    before answering, so that a pipelining client shows itself
    ("pipelined" in the summary counts those transactions).

    With --outdir every message whose content was received completely is
    written as DIR/msg-N.eml (the content: dot-unstuffed DATA, or the BDAT
    chunks joined) and DIR/msg-N.json (envelope, replies, method); N
    continues after the files already there.

OUTPUT
    "C: " lines it sent, "S: " lines it received as a client, "# reply
    CODE after SECONDS" after each reply, "R: " commands it received as
    the server and "W: " its replies; the last line is "SUMMARY {json}".

EXIT STATUS
    0 reversed session ended with QUIT and no violation; 1 no ATRN got
    250; 2 authentication failed; 3 protocol error, timeout or the peer
    hung up; 4 stalled or hung up as asked; 5 violations seen.

    Only the python3 standard library is used.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import select
import socket
import ssl
import sys
import time

LINE_MAX = 4096            # longest command or reply line accepted
REPLY_LINES_MAX = 100      # longest multi-line reply accepted


class Hangup(Exception):
    """The peer closed the connection."""


class Fatal(Exception):
    """A protocol error or a timeout: give up."""


def pr(text):
    print(text, flush=True)


def show(b):
    return b.decode("utf-8", errors="backslashreplace")


class Conn:
    """A socket with a bounded read buffer and a timeout on every wait."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.sock.settimeout(timeout)

    def fill(self, timeout=None):
        """Read more into buf; Hangup on EOF, Fatal on timeout."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise Fatal("timeout after %ss waiting for the peer" % (self.timeout if timeout is None else timeout))
        except (ConnectionResetError, ssl.SSLError, OSError) as e:
            raise Hangup("connection broken: %s" % e)
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            raise Hangup("connection closed by the peer")
        self.buf += chunk

    def pending(self, wait=0.0):
        """True when input is buffered, or arrives within WAIT seconds."""
        if self.buf:
            return True
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        if wait <= 0:
            r, _, _ = select.select([self.sock], [], [], 0)
        else:
            r, _, _ = select.select([self.sock], [], [], wait)
        return bool(r)

    def line(self, limit=LINE_MAX):
        """One CRLF-terminated line without its CRLF."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                ln, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                if len(ln) > limit + 2:
                    raise Fatal("line of %d octets" % len(ln))
                return ln[:-2] if ln.endswith(b"\r\n") else ln[:-1]
            if len(self.buf) > limit + 2:
                raise Fatal("line longer than %d octets: %r..." % (limit, self.buf[:80]))
            self.fill()

    def exact(self, n):
        """Exactly N octets."""
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Hangup("send failed: %s" % e)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- client half

class Client:
    def __init__(self, conn, summary):
        self.c = conn
        self.s = summary

    def reply(self):
        """(code, [text lines]) of one reply; each line printed."""
        t0 = time.monotonic()
        lines = []
        while True:
            ln = self.c.line()
            pr("S: " + show(ln))
            if len(ln) < 3 or not ln[:3].isdigit() or (len(ln) > 3 and ln[3:4] not in (b" ", b"-")):
                raise Fatal("malformed reply line %r" % ln)
            lines.append(ln)
            if len(lines) > REPLY_LINES_MAX:
                raise Fatal("reply of more than %d lines" % REPLY_LINES_MAX)
            if ln[3:4] != b"-":
                code = int(ln[:3])
                pr("# reply %d after %.2fs" % (code, time.monotonic() - t0))
                for x in lines:
                    if x[:3] != ln[:3]:
                        raise Fatal("reply lines with different codes: %r" % lines)
                return code, lines

    def cmd(self, text, shown=None):
        pr("C: " + (shown if shown is not None else text))
        self.c.send(text.encode() + b"\r\n")
        return self.reply()

    def ehlo(self, name):
        code, lines = self.cmd("EHLO " + name)
        exts = [show(x[4:]).upper() for x in lines[1:]] if code == 250 else []
        self.s["server_ext"] = exts
        return code, exts


def cram_md5(user, password, challenge_b64):
    chal = base64.b64decode(challenge_b64, validate=True)
    digest = hmac.new(password.encode(), chal, hashlib.md5).hexdigest()
    return base64.b64encode(("%s %s" % (user, digest)).encode()).decode()


def scram_parse(msg):
    out = {}
    for part in msg.split(","):
        if len(part) >= 2 and part[1] == "=":
            out[part[0]] = part[2:]
    return out


def auth_once(cl, mech, user, password):
    """One AUTH exchange; the final reply code (or 334-less failures)."""
    mech = mech.upper()
    if mech == "PLAIN":
        ir = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return cl.cmd("AUTH PLAIN " + ir, "AUTH PLAIN <credentials>")[0]
    if mech == "LOGIN":
        code, lines = cl.cmd("AUTH LOGIN")
        if code != 334:
            return code
        code, lines = cl.cmd(base64.b64encode(user.encode()).decode())
        if code != 334:
            return code
        return cl.cmd(base64.b64encode(password.encode()).decode(), "<password>")[0]
    if mech == "CRAM-MD5":
        code, lines = cl.cmd("AUTH CRAM-MD5")
        if code != 334:
            return code
        return cl.cmd(cram_md5(user, password, lines[0][4:].strip()))[0]
    if mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
        h = hashlib.sha256 if mech == "SCRAM-SHA-256" else hashlib.sha1
        cnonce = base64.b64encode(os.urandom(18)).decode()
        bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
        first = "n,," + bare
        code, lines = cl.cmd("AUTH %s %s" % (mech, base64.b64encode(first.encode()).decode()))
        if code != 334:
            return code
        sfirst = base64.b64decode(lines[0][4:].strip()).decode()
        a = scram_parse(sfirst)
        if not a.get("r", "").startswith(cnonce):
            cl.cmd("*")
            raise Fatal("SCRAM: server nonce does not extend ours: %r" % sfirst)
        salted = hashlib.pbkdf2_hmac(h().name, password.encode(), base64.b64decode(a["s"]), int(a["i"]))
        ckey = hmac.new(salted, b"Client Key", h).digest()
        skey = hmac.new(salted, b"Server Key", h).digest()
        final_bare = "c=biws,r=" + a["r"]
        authmsg = (bare + "," + sfirst + "," + final_bare).encode()
        csig = hmac.new(h(ckey).digest(), authmsg, h).digest()
        proof = bytes(x ^ y for x, y in zip(ckey, csig))
        final = final_bare + ",p=" + base64.b64encode(proof).decode()
        code, lines = cl.cmd(base64.b64encode(final.encode()).decode())
        want_v = base64.b64encode(hmac.new(skey, authmsg, h).digest()).decode()
        if code == 334:
            sfinal = scram_parse(base64.b64decode(lines[0][4:].strip()).decode())
            cl.s["scram_server_verified"] = sfinal.get("v") == want_v
            if sfinal.get("v") != want_v:
                cl.cmd("*")
                raise Fatal("SCRAM: server signature wrong: %r" % sfinal)
            code, lines = cl.cmd("")
        else:
            cl.s["scram_server_verified"] = False
        return code
    return cl.cmd("AUTH " + mech)[0]


# ---------------------------------------------------------------- server half

class Server:
    def __init__(self, conn, a, summary):
        self.c = conn
        self.a = a
        self.s = summary
        self.ext = {}
        for e in (a.ext or "").split(","):
            e = e.strip()
            if not e or e.lower() == "none":
                continue
            k, _, v = e.partition("=")
            self.ext[k.upper()] = v
        self.size = int(self.ext["SIZE"]) if self.ext.get("SIZE") else 0
        self.rcpt_codes = {}
        for rc in a.rcpt_code:
            addr, _, rest = rc.rpartition("=")
            code, _, text = rest.partition(":")
            self.rcpt_codes[addr.lower()] = (int(code), text)
        self.nmsg = 0          # transactions that reached content
        self.reset()

    def reset(self):
        self.mail = None
        self.mail_params = {}
        self.rcpts = []
        self.bdat = None

    def violation(self, text):
        pr("# VIOLATION: " + text)
        self.s["violations"].append(text)

    def w(self, code, text):
        ln = "%d %s" % (code, text)
        pr("W: " + ln)
        self.c.send(ln.encode() + b"\r\n")

    def esc(self, enh):
        return (enh + " ") if "ENHANCEDSTATUSCODES" in self.ext else ""

    def params(self, words, verb):
        """KEY[=VALUE] parameters; None (after a 555) when one is not allowed."""
        out = {}
        for wd in words:
            k, _, v = wd.partition("=")
            out[k.upper()] = v
        need = {"SIZE": "SIZE", "BODY": None, "SMTPUTF8": "SMTPUTF8", "RET": "DSN", "ENVID": "DSN",
                "NOTIFY": "DSN", "ORCPT": "DSN", "AUTH": "AUTH"}
        for k, v in out.items():
            if k not in need:
                self.violation("%s parameter %s unknown" % (verb, k))
                self.w(555, self.esc("5.5.4") + "Unsupported parameter " + k)
                return None
            ext = need[k]
            if k == "BODY":
                ext = {"7BIT": None, "8BITMIME": "8BITMIME", "BINARYMIME": "BINARYMIME"}.get(v.upper(), "?")
            if ext == "?":
                self.violation("%s BODY=%s unknown" % (verb, v))
                self.w(555, self.esc("5.5.4") + "Bad BODY")
                return None
            if ext is not None and ext not in self.ext:
                self.violation("%s %s%s without the %s extension" % (verb, k, ("=" + v) if v else "", ext))
                self.w(555, self.esc("5.5.4") + "%s not offered" % ext)
                return None
        return out

    def addr(self, arg, prefix):
        m = re.match(rb"(?i)^" + prefix + rb":\s*<([^>]*)>(.*)$", arg)
        if not m:
            return None, None
        return m.group(1), m.group(2).split()

    def content_checks(self, data):
        body = self.mail_params.get("BODY", "7BIT").upper()
        if body not in ("8BITMIME", "BINARYMIME") and any(b >= 128 for b in data):
            self.violation("message %d: 8-bit content with BODY=%s" % (self.nmsg, body))
        if self.size and len(data) > self.size:
            self.violation("message %d: %d octets sent to a customer with SIZE=%d" % (self.nmsg, len(data), self.size))
            return False
        return True

    def save(self, data, method, code):
        ok_rcpts = [r for r in self.rcpts if 200 <= r["code"] < 300]
        rec = {"mail_from": show(self.mail), "mail_params": self.mail_params, "rcpts": self.rcpts,
               "accepted": [r["address"] for r in ok_rcpts], "method": method, "final_code": code,
               "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
               "eight_bit": any(b >= 128 for b in data)}
        self.s["messages"].append({k: rec[k] for k in ("mail_from", "accepted", "final_code", "size", "method")})
        if self.a.outdir:
            os.makedirs(self.a.outdir, exist_ok=True)
            n = 1
            while os.path.exists(os.path.join(self.a.outdir, "msg-%d.json" % n)):
                n += 1
            with open(os.path.join(self.a.outdir, "msg-%d.eml" % n), "wb") as f:
                f.write(data)
            with open(os.path.join(self.a.outdir, "msg-%d.json" % n), "w") as f:
                json.dump(rec, f, ensure_ascii=False, indent=1)
            pr("# saved msg-%d (%d octets, %s, final %d)" % (n, len(data), method, code))

    def final(self, data, method):
        if self.content_checks(data):
            code = self.a.data_code
            text = (self.esc("2.0.0") + "Ok: queued as customer-%d" % self.nmsg) if code < 400 else \
                (self.esc("4.3.0" if code < 500 else "5.3.0") + "Scripted failure")
        else:
            code, text = 552, self.esc("5.3.4") + "Message too big for system"
        self.save(data, method, code)
        self.w(code, text)
        self.reset()

    def hangup_now(self, where):
        pr("# hanging up in the content of message %d (%s)" % (self.nmsg, where))
        self.s["hangup"] = True
        try:
            self.c.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.c.close()

    def data(self):
        lines = []
        total = 0
        limit = self.a.max_message
        while True:
            ln = self.c.line(limit=1000000)
            if ln == b".":
                break
            if ln.startswith(b"."):
                ln = ln[1:]
            total += len(ln) + 2
            if total > limit:
                raise Fatal("message content over %d octets" % limit)
            lines.append(ln)
            if self.a.hangup_in_data == self.nmsg and len(lines) >= 1:
                self.hangup_now("DATA, after %d lines" % len(lines))
                return False
        data = b"".join(x + b"\r\n" for x in lines)
        self.final(data, "DATA")
        return True

    def run(self):
        a = self.a
        if a.stall:
            pr("# stalling %ss without a greeting" % a.stall)
            self.s["stalled"] = True
            end = time.monotonic() + a.stall
            while time.monotonic() < end:
                try:
                    if self.c.pending(min(0.5, end - time.monotonic())):
                        self.c.fill(1)
                        pr("# received during the stall: %r" % self.c.buf[:200])
                        self.c.buf = b""
                except (Hangup, Fatal) as e:
                    pr("# during the stall: %s" % e)
                    break
            return 4
        self.w(220, "customer.test ESMTP")
        greeted = False
        while True:
            ln = self.c.line()
            pr("R: " + show(ln))
            verb, _, arg = ln.partition(b" ")
            verb = verb.upper()
            if self.c.pending() and "PIPELINING" not in self.ext and verb not in (b"BDAT",):
                self.violation("command pipelined after %s without PIPELINING" % show(verb))
            if verb in (b"EHLO", b"HELO"):
                self.s["helo"].append(show(ln))
                self.reset()
                if verb == b"EHLO" and a.ehlo_code:
                    self.w(a.ehlo_code, "5.5.1 EHLO refused by script")
                    continue
                greeted = True
                if verb == b"HELO":
                    self.ext = {}
                    self.size = 0
                    self.w(250, "customer.test")
                    continue
                keys = [k + ((" " + v) if v else "") for k, v in self.ext.items()]
                lines = ["customer.test"] + keys
                for i, x in enumerate(lines):
                    sep = " " if i == len(lines) - 1 else "-"
                    pr("W: 250" + sep + x)
                    self.c.send("250%s%s\r\n" % (sep, x))
            elif verb == b"MAIL":
                if not greeted or self.mail is not None:
                    self.w(503, self.esc("5.5.1") + "Bad sequence")
                    continue
                addr, words = self.addr(ln[5:], rb"FROM")
                if addr is None:
                    self.w(501, self.esc("5.5.2") + "Syntax")
                    continue
                p = self.params([show(x) for x in words], "MAIL")
                if p is None:
                    continue
                if any(b >= 128 for b in addr) and "SMTPUTF8" not in p:
                    self.violation("MAIL FROM:<%s> without SMTPUTF8" % show(addr))
                    self.w(553, self.esc("5.6.7") + "SMTPUTF8 required")
                    continue
                if self.size and p.get("SIZE") and int(p["SIZE"]) > self.size:
                    self.s["size_refused"] += 1
                    self.w(552, self.esc("5.3.4") + "Message size exceeds fixed limit")
                    continue
                if a.mail_code != 250:
                    self.w(a.mail_code, self.esc("4.3.0" if a.mail_code < 500 else "5.7.1") + "Scripted MAIL reply")
                    continue
                self.mail, self.mail_params = addr, p
                # a pipelining client sends RCPT before it sees this reply
                if "PIPELINING" in self.ext and self.c.pending(0.2):
                    self.s["pipelined"] += 1
                self.w(250, self.esc("2.1.0") + "Ok")
            elif verb == b"RCPT":
                if self.mail is None:
                    self.w(503, self.esc("5.5.1") + "Need MAIL")
                    continue
                addr, words = self.addr(ln[5:], rb"TO")
                if addr is None:
                    self.w(501, self.esc("5.5.2") + "Syntax")
                    continue
                p = self.params([show(x) for x in words], "RCPT")
                if p is None:
                    continue
                if any(b >= 128 for b in addr) and "SMTPUTF8" not in self.mail_params:
                    self.violation("RCPT TO:<%s> without SMTPUTF8" % show(addr))
                    self.w(553, self.esc("5.6.7") + "SMTPUTF8 required")
                    continue
                code, text = self.rcpt_codes.get(show(addr).lower(), (250, ""))
                if not text:
                    text = self.esc({2: "2.1.5", 4: "4.2.1", 5: "5.1.1"}[code // 100]) + \
                        ("Ok" if code < 400 else "Scripted %d for %s" % (code, show(addr)))
                self.rcpts.append({"address": show(addr), "params": p, "code": code})
                self.w(code, text)
            elif verb == b"DATA":
                if self.mail is None:
                    self.w(503, self.esc("5.5.1") + "Need MAIL")
                    continue
                if self.bdat is not None:
                    self.violation("DATA after BDAT")
                    self.w(503, self.esc("5.5.1") + "DATA after BDAT")
                    continue
                if not any(200 <= r["code"] < 300 for r in self.rcpts):
                    self.w(554, self.esc("5.5.1") + "No valid recipients")
                    self.reset()
                    continue
                if self.mail_params.get("BODY", "").upper() == "BINARYMIME":
                    self.violation("DATA with BODY=BINARYMIME")
                self.nmsg += 1
                self.w(354, "End data with <CR><LF>.<CR><LF>")
                if not self.data():
                    return 4
            elif verb == b"BDAT":
                parts = arg.split()
                if not parts or not parts[0].isdigit() or len(parts) > 2 or \
                        (len(parts) == 2 and parts[1].upper() != b"LAST"):
                    raise Fatal("bad BDAT command %r" % ln)
                n, last = int(parts[0]), len(parts) == 2
                if n > a.max_message:
                    raise Fatal("BDAT %d over the limit" % n)
                if "CHUNKING" not in self.ext:
                    self.violation("BDAT without CHUNKING")
                if self.mail is None or not any(200 <= r["code"] < 300 for r in self.rcpts):
                    self.c.exact(n)
                    self.w(503 if self.mail is None else 554, self.esc("5.5.1") + "No transaction")
                    self.reset()
                    continue
                if self.bdat is None:
                    self.nmsg += 1
                    self.bdat = b""
                if a.hangup_in_data == self.nmsg:
                    self.c.exact(min(n, 1))
                    self.hangup_now("BDAT")
                    return 4
                self.bdat += self.c.exact(n)
                if len(self.bdat) > a.max_message:
                    raise Fatal("message content over %d octets" % a.max_message)
                if last:
                    self.final(self.bdat, "BDAT")
                else:
                    self.w(250, self.esc("2.0.0") + "%d octets received" % n)
            elif verb == b"RSET":
                self.reset()
                self.w(250, self.esc("2.0.0") + "Ok")
            elif verb == b"NOOP":
                self.w(250, self.esc("2.0.0") + "Ok")
            elif verb == b"QUIT":
                self.w(221, self.esc("2.0.0") + "Bye")
                self.s["quit"] = True
                self.c.close()
                return 5 if self.s["violations"] else 0
            else:
                self.w(502, self.esc("5.5.1") + "Command not implemented")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="scripted ODMR customer")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--tls", choices=("none", "starttls", "implicit"), default="none")
    ap.add_argument("--ca", default=os.path.join(os.environ.get("T", "."), "cert.pem"))
    ap.add_argument("--servername", default="mx.odmr.test")
    ap.add_argument("--ehlo-name", default="customer.test")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--auth", default="CRAM-MD5", help="CRAM-MD5, PLAIN, LOGIN, SCRAM-SHA-256, SCRAM-SHA-1, none")
    ap.add_argument("--auth-tries", type=int, default=1)
    ap.add_argument("--pre", action="append", default=[], help="raw command before AUTH")
    ap.add_argument("--cmd", action="append", default=[], help="raw command after AUTH, before ATRN")
    ap.add_argument("--atrn", action="append", default=None, help="ATRN argument ('' = none); repeatable")
    ap.add_argument("--no-atrn", action="store_true")
    ap.add_argument("--stall", type=float, default=0)
    ap.add_argument("--ext", default="PIPELINING,8BITMIME,ENHANCEDSTATUSCODES")
    ap.add_argument("--ehlo-code", type=int, default=0)
    ap.add_argument("--rcpt-code", action="append", default=[])
    ap.add_argument("--mail-code", type=int, default=250)
    ap.add_argument("--data-code", type=int, default=250)
    ap.add_argument("--hangup-in-data", type=int, default=0)
    ap.add_argument("--outdir")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--max-message", type=int, default=64 * 1024 * 1024)
    a = ap.parse_args()

    summary = {"greeting": None, "auth": None, "atrn": None, "atrn_text": None, "reversed": False,
               "helo": [], "messages": [], "pipelined": 0, "size_refused": 0, "quit": False,
               "hangup": False, "stalled": False, "violations": [], "error": None, "tls": None}
    conn = [None]
    rc = 3
    try:
        rc = session(a, summary, conn)
    except Hangup as e:
        summary["error"] = str(e)
        pr("# hangup: %s" % e)
    except Fatal as e:
        summary["error"] = str(e)
        pr("# error: %s" % e)
    except (ssl.SSLError, ssl.CertificateError) as e:
        summary["error"] = "TLS: %s" % e
        pr("# TLS error: %s" % e)
    finally:
        if conn[0] is not None:
            conn[0].close()
    summary["exit"] = rc
    pr("SUMMARY " + json.dumps(summary, ensure_ascii=False))
    return rc


def session(a, summary, connp):
    """The whole dialogue; the exit status."""
    try:
        sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
    except OSError as e:
        raise Fatal("connect %s:%d: %s" % (a.host, a.port, e))
    ctx = None
    if a.tls != "none":
        ctx = ssl.create_default_context(cafile=a.ca)
    if a.tls == "implicit":
        sock = ctx.wrap_socket(sock, server_hostname=a.servername)
        summary["tls"] = sock.version()
    conn = Conn(sock, a.timeout)
    connp[0] = conn
    cl = Client(conn, summary)
    code, lines = cl.reply()
    summary["greeting"] = show(lines[-1])
    if code != 220:
        raise Fatal("greeting %d" % code)
    code, exts = cl.ehlo(a.ehlo_name)
    if code != 250:
        raise Fatal("EHLO %d" % code)
    if a.tls == "starttls":
        code, _ = cl.cmd("STARTTLS")
        if code != 220:
            raise Fatal("STARTTLS %d" % code)
        if conn.buf:
            raise Fatal("data after the STARTTLS reply (injection)")
        conn.sock = ctx.wrap_socket(conn.sock, server_hostname=a.servername)
        summary["tls"] = conn.sock.version()
        pr("# TLS %s %s" % (conn.sock.version(), conn.sock.cipher()[0]))
        code, exts = cl.ehlo(a.ehlo_name)
        if code != 250:
            raise Fatal("EHLO after STARTTLS %d" % code)
    for c in a.pre:
        cl.cmd(c)
    authed = True
    if a.auth.lower() != "none":
        for _ in range(a.auth_tries):
            code = auth_once(cl, a.auth, a.user, a.password)
            summary["auth"] = code
            if code in (235, 421):
                break
        authed = summary["auth"] == 235
        if summary["auth"] == 421:
            try:
                conn.fill(5)
                pr("# after 421 the connection is still open: %r" % conn.buf[:100])
                summary["eof_after_421"] = False
            except Hangup:
                pr("# EOF after 421")
                summary["eof_after_421"] = True
            return 2
    for c in a.cmd:
        cl.cmd(c)
    if a.no_atrn:
        cl.cmd("QUIT")
        return 0 if authed else 2
    code = None
    for arg in (a.atrn if a.atrn is not None else [""]):
        code, lines = cl.cmd("ATRN" + ((" " + arg) if arg else ""))
        summary["atrn"] = code
        summary["atrn_text"] = show(lines[-1])
        pr("ATRN %d" % code)
        if code == 250:
            break
    if code != 250:
        try:
            cl.cmd("QUIT")
        except (Hangup, Fatal) as e:
            pr("# QUIT: %s" % e)
        return 1 if authed else 2
    summary["reversed"] = True
    if conn.buf:
        summary["violations"].append("server sent %r before our 220" % conn.buf[:100])
    return Server(conn, a, summary).run()


if __name__ == "__main__":
    rc = main()
    sys.exit(rc)
