#!/usr/bin/env python3
"""
NAME
	fetch-torture.py - odmr-fetch against a provider and a local MTA
	that end the session every rude way, many times

SYNOPSIS
	fetch-torture.py [--reps N] [--jobs N] [--only WORD,...] [--list]

DESCRIPTION
	The client side of the teardown torture (issue 14, item 2). For each
	case it starts, per run, two scripted peers on 127.0.0.1 at ports of
	their own:
	- an ODMR provider (RFC 2645): 220, EHLO with STARTTLS, AUTH and
	  ATRN, STARTTLS (or TLS from the first octet, or none), AUTH
	  CRAM-MD5 or PLAIN (any answer is taken), ATRN 250, then the
	  reversed session, where it is the SMTP client that delivers one
	  message and QUITs;
	- a local MTA (odmr-fetch's --deliver-to), an SMTP server with
	  PIPELINING;
	and one of them ends the session at a point of its script in one
	way: a close (FIN, no close_notify), a reset (SO_LINGER 0), a
	close_notify (sent without waiting for the peer's, then close(), as
	Exim does), silence (it never answers again), a half-done TLS
	handshake, a 421. Then it runs the real odmr-fetch ($FETCH) and
	asserts, for every run:
	1. it exits, never hangs: a hang-up is noticed before --timeout
	   (quick cases run with --timeout QUICK_T, 10 s), a silence ends
	   --timeout after it began (stall cases run with --timeout STALL_T,
	   2 s: between STALL_T - 0.5 and STALL_T + SLACK s), a signal ends
	   it within SIG_S s (signal cases run with --timeout 30 s, so that
	   only the signal can end it that soon);
	2. its exit status is the one odmr-fetch(1) and SPEC.md give for
	   that failure (each case says why);
	3. its output (stderr, -v) holds no sanitizer report;
	and, where the manual promises it, what the other peer saw (the
	provider is never contacted when the local MTA is not there; the
	provider gets 421 4.4.0 when the local MTA goes away; the local MTA
	never gets the final "." of a message the provider abandoned).
	The peer must have reached its rude ending in every run: a case that
	did not test what it says fails.

	Runs go --jobs at a time (default 16: most of them wait on a peer),
	in rounds that interleave the cases. A case stops after 3 failed
	runs. One "ok - " or "not ok - " line per case (tests/tap.sh
	tap_feed), "# " lines for detail.

ENVIRONMENT
	FETCH		odmr-fetch to run (required)
	T		a directory with cert.pem and key.pem (CN and DNS name
			mx.odmr.test); run logs go to T/fetch-runs
	FETCH_TORTURE_REPS, FETCH_TORTURE_JOBS, FETCH_TORTURE_SLACK
			defaults for --reps (30), --jobs (16) and the slack (3 s)
EXIT STATUS
	0 when every case ran and was reported (its "not ok" lines are the
	failures), 1 when the script itself broke
"""
import argparse
import os
import re
import resource
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

FETCH = os.environ["FETCH"]
T = os.environ["T"]
CERT = os.path.join(T, "cert.pem")
KEY = os.path.join(T, "key.pem")
TLS_NAME = "mx.odmr.test"
HOST = "127.0.0.1"
USER = "torturer"
PASSWORD = "torture-pw"

QUICK_T = 10		# --timeout of the quick cases: a hang-up beats it
STALL_T = 2		# --timeout of the stall cases: it ends them
SIGNAL_T = 30		# --timeout of the signal cases: never reached
SLACK = float(os.environ.get("FETCH_TORTURE_SLACK", "3"))
SIG_S = 5.0		# a signal ends odmr-fetch within this
IO_S = 40.0		# any single wait of a peer (a bound, never reached)
MAX_FAILS = 3		# failed runs after which a case stops

SANITIZER = re.compile(rb"Sanitizer|runtime error:|DEADLYSIGNAL")

SCTX = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
SCTX.load_cert_chain(CERT, KEY)


class Cut(Exception):
    """The script has ended the session (or lost it): stop it."""


# ---- the connection of a peer -----------------------------------------------

class Chan:
    """One accepted connection: plaintext, or TLS over memory BIOs (so that
    a close_notify's octets can be sent twice, and a handshake can be left
    half done)."""

    def __init__(self, run, sock, role):
        self.run = run
        self.role = role
        self.sock = sock
        self.sock.settimeout(IO_S)
        self.tls = None
        self.inc = self.out = None
        self.buf = b""

    def _flush(self):
        """TLS octets made by OpenSSL go out; return them."""
        data = self.out.read()
        if data:
            self.sock.sendall(data)
        return data

    def _feed(self):
        """Ciphertext in; False at EOF."""
        d = self.sock.recv(65536)
        if not d:
            return False
        self.inc.write(d)
        return True

    def handshake(self):
        """Server side of a TLS handshake, on the plaintext socket."""
        if self.buf:
            raise Cut("plaintext before the handshake: %r" % self.buf[:40])
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = SCTX.wrap_bio(self.inc, self.out, server_side=True)
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed():
                    raise Cut("EOF in the handshake")

    def recv(self):
        """Some octets, b"" at EOF (close_notify or not)."""
        if self.tls is None:
            return self.sock.recv(65536)
        while True:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def send(self, data):
        """Write at once."""
        if self.tls is None:
            self.sock.sendall(data)
        else:
            self.tls.write(data)
            self._flush()

    def line(self):
        """One line without its CRLF; Cut at EOF."""
        while b"\r\n" not in self.buf:
            d = self.recv()
            if not d:
                raise Cut("EOF waiting for a line (had %r)" % self.buf[:60])
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def reply(self):
        """One whole reply: (code, its last line as text)."""
        while True:
            ln = self.line()
            if len(ln) < 4 or ln[3:4] != b"-":
                text = ln.decode("latin-1")
                self.run.note("got", text)
                try:
                    return int(ln[:3]), text
                except ValueError:
                    raise Cut("bad reply %r" % text)

    def raw_hello(self):
        """The peer's first TLS octets (its ClientHello), not answered."""
        d = self.sock.recv(65536)
        if not d:
            raise Cut("EOF instead of a ClientHello")
        return d

    # ---- the ways of ending -------------------------------------------------

    def close_notify(self):
        """Send close_notify without waiting for the peer's; its octets."""
        try:
            self.tls.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        return self._flush()

    def end(self, way):
        """End the session WAY; always raises Cut."""
        self.run.hit(way)
        s = self.sock
        if way == "rst":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            s.close()
        elif way == "close":
            # a FIN, whatever is unread (close() would reset), no
            # close_notify; then wait for the peer's end
            s.shutdown(socket.SHUT_WR)
            self.drain()
            s.close()
        elif way in ("notify", "notify2"):
            octets = self.close_notify()
            if way == "notify2":
                # a second close_notify after the first: Exim's parent
                # sends one after its delivery child already did
                s.sendall(octets)
            s.close()	# as Exim does: no waiting, unread data or not
        elif way == "silent":
            # never a word again, but what comes is read (a 421)
            self.run.stall()
            self.listen()
            s.close()
        elif way == "partial":
            # half a ServerHello record, then nothing more
            s.sendall(bytes([0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00,
                             0x00, 0x76, 0x03, 0x03]) + os.urandom(8))
            self.run.stall()
            self.run.done.wait(IO_S)
            s.close()
        else:
            raise ValueError(way)
        raise Cut(way)

    def listen(self):
        """Read and note reply lines until EOF or the run's end."""
        while not self.run.done.is_set():
            try:
                d = self.recv()
            except (OSError, ssl.SSLError) as e:
                self.run.note("%s-end" % self.role, "silent: %s" % e)
                return
            if not d:
                self.run.note("%s-end" % self.role, "silent: EOF")
                return
            self.buf += d
            while b"\r\n" in self.buf:
                ln, self.buf = self.buf.split(b"\r\n", 1)
                self.run.note("got" if self.role == "provider" else "cmd",
                              ln.decode("latin-1"))

    def drain(self):
        """Read (and drop) until the peer closes or the run is over."""
        self.sock.settimeout(0.2)
        while not self.run.done.is_set():
            try:
                if not self.sock.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return


# ---- one run ----------------------------------------------------------------

class Run:
    """One run of odmr-fetch against one provider and one local MTA."""

    def __init__(self, case):
        self.case = case
        self.done = threading.Event()		# odmr-fetch has exited
        self.stalled = threading.Event()	# a peer went silent on purpose
        self.stall_at = None
        self.hits = []				# rude endings performed
        self.lock = threading.Lock()
        self.notes = {}				# what the peers saw
        self.conns = {"provider": 0, "local": 0}
        self.events = {k: threading.Event() for k in
                       ("provider", "local_gone", "text_seen")}
        self.socks = []
        self.threads = []
        self.errors = []

    def hit(self, way):
        with self.lock:
            self.hits.append(way)

    def stall(self):
        with self.lock:
            if self.stall_at is None:
                self.stall_at = time.monotonic()
        self.stalled.set()

    def note(self, key, value):
        with self.lock:
            self.notes.setdefault(key, []).append(value)


class Listener:
    """A listening socket whose connections run a peer script."""

    def __init__(self, run, role, script):
        self.run, self.role, self.script = run, role, script
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        th = threading.Thread(target=self.loop, daemon=True)
        th.start()
        run.threads.append(th)

    def loop(self):
        n = 0
        while not self.run.done.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            n += 1
            with self.run.lock:
                self.run.conns[self.role] += 1
                self.run.socks.append(c)
            if self.role == "provider":
                self.run.events["provider"].set()
            th = threading.Thread(target=self.serve, args=(c, n), daemon=True)
            th.start()
            self.run.threads.append(th)

    def serve(self, c, n):
        ch = Chan(self.run, c, self.role)
        try:
            self.script(self.run, ch, n)
            self.run.note(self.role + "-end", "script done")
        except Cut as e:
            self.run.note(self.role + "-end", "cut: %s" % e)
        except (OSError, ssl.SSLError, ValueError) as e:
            # odmr-fetch hung up: a normal end for a peer
            self.run.note(self.role + "-end", "%s: %s" % (type(e).__name__, e))
        except Exception as e:	# a bug of ours: reported
            self.run.errors.append("%s script: %s: %s" % (self.role,
                                                        type(e).__name__, e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()


# ---- the scripted provider ----------------------------------------------------

TEXT1 = (b"From: src@sender.test\r\nTo: u@atrn.test\r\n"
         b"Subject: torture\r\n\r\n" + b"the first half of the text\r\n" * 40)
TEXT2 = b"..a dot line\r\n" + b"the second half\r\n" * 40 + b".\r\n"


def provider(cut=None, way=None, tls="starttls", mechs=b"CRAM-MD5 PLAIN",
             deliver=1, greeting=b"220 provider.test ESMTP torture\r\n",
             ehlo_reply=None, auth_reply=b"235 2.7.0 ok\r\n",
             atrn_reply=b"250 OK now reversing the connection\r\n",
             wait_local_gone=False, bdat=False):
    """A provider script that ends the session at point CUT in WAY."""

    def script(run, c, n):
        def at(point):
            if cut == point:
                c.end(way)

        if wait_local_gone:
            # the local MTA goes away while the provider is asked
            run.events["local_gone"].wait(10)
        at("accept")
        if tls == "implicit":
            c.raw_hello() if cut == "hello" else None
            at("hello")
            c.handshake()
            at("tls")
        c.send(greeting)
        if not greeting.startswith(b"220"):
            run.hit("greeting")
            c.drain()
            raise Cut("greeting")
        at("greeted")
        ln = c.line()
        if not ln.upper().startswith(b"EHLO"):
            raise Cut("not EHLO: %r" % ln)
        at("ehlo")
        if tls == "starttls":
            c.send(b"250-provider.test\r\n250-PIPELINING\r\n"
                   b"250-STARTTLS\r\n250 8BITMIME\r\n")
            ln = c.line()
            if ln.upper() != b"STARTTLS":
                raise Cut("not STARTTLS: %r" % ln)
            at("starttls")
            c.send(b"220 2.0.0 go ahead\r\n")
            at("starttls-220")
            if cut == "hello":
                c.raw_hello()
                c.end(way)
            c.handshake()
            at("tls")
            ln = c.line()
            if not ln.upper().startswith(b"EHLO"):
                raise Cut("not EHLO in TLS: %r" % ln)
            at("tls-ehlo")
        if ehlo_reply is not None:
            c.send(ehlo_reply)
            run.hit("ehlo-reply")
            c.end(way)
        c.send(b"250-provider.test\r\n250-AUTH " + mechs +
               b"\r\n250-ATRN\r\n250 ENHANCEDSTATUSCODES\r\n")
        ln = c.line()
        words = ln.split()
        if len(words) < 2 or words[0].upper() != b"AUTH":
            raise Cut("not AUTH: %r" % ln)
        run.note("auth", words[1].decode())
        at("auth")
        if len(words) == 2:
            c.send(b"334 PDEyMzQ1LjY3ODlAcHJvdmlkZXIudGVzdD4=\r\n")
            c.line()
            at("auth-334")
        c.send(auth_reply)
        if not auth_reply.startswith(b"235"):
            run.hit("auth-refused")
            ln = c.line()		# QUIT
            c.end(way)
        ln = c.line()
        if not ln.upper().startswith(b"ATRN"):
            raise Cut("not ATRN: %r" % ln)
        at("atrn")
        c.send(atrn_reply)
        if not atrn_reply.startswith(b"250"):
            run.hit("atrn-refused")
            c.line()			# QUIT
            c.end(way)
        at("atrn-250")
        reversed_session(run, c, at, deliver, bdat)

    return script


def reversed_session(run, c, at, deliver, bdat=False):
    """The provider as the SMTP client: DELIVER messages (with DATA, or
    each as one BDAT LAST chunk), then QUIT."""
    code, text = c.reply()
    if code != 220:
        raise Cut("reversed session opened with %r" % text)
    at("rev-220")
    c.send(b"EHLO provider.test\r\n")
    if c.reply()[0] != 250:
        raise Cut("EHLO refused")
    at("rev-ehlo")
    for i in range(deliver):
        c.send(b"MAIL FROM:<src@sender.test>\r\n")
        if c.reply()[0] != 250:
            raise Cut("MAIL refused")
        at("rev-mail")
        c.send(b"RCPT TO:<u@atrn.test>\r\n")
        if c.reply()[0] != 250:
            raise Cut("RCPT refused")
        at("rev-rcpt")
        if bdat:
            # odmrd's way: one LAST chunk; cut in its middle
            body = TEXT1 + TEXT2[:-3]
            c.send(b"BDAT %d LAST\r\n" % len(body) + body[:len(body) // 2])
            at("rev-chunk")
            c.send(body[len(body) // 2:])
            if c.reply()[0] != 250:
                raise Cut("the chunk was refused")
            at("rev-250")
            continue
        c.send(b"DATA\r\n")
        if c.reply()[0] != 354:
            raise Cut("DATA refused")
        c.send(TEXT1)
        # the local MTA has the first half before anything else happens
        run.events["text_seen"].wait(10)
        at("rev-text")
        try:
            c.send(TEXT2)
        except OSError:
            pass	# odmr-fetch hung up (the local MTA went): read why
        at("rev-dot")
        if c.reply()[0] != 250:
            raise Cut("the text was refused")
        at("rev-250")
    c.send(b"QUIT\r\n")
    at("rev-quit")
    c.reply()
    at("rev-221")
    c.close_notify()


# ---- the scripted local MTA ----------------------------------------------------

def local(cut=None, way=None, greeting=b"220 local.test ESMTP\r\n",
          mail_reply=b"250 2.1.0 Ok\r\n"):
    """A local MTA script that ends the session at point CUT in WAY."""

    def script(run, c, n):
        def at(point):
            if cut == point:
                c.end(way)

        at("accept")
        c.send(greeting)
        if not greeting.startswith(b"220"):
            run.hit("greeting")
            c.drain()
            raise Cut("greeting")
        while True:
            ln = c.line()
            verb = ln[:4].upper()
            if verb in (b"EHLO", b"HELO", b"LHLO"):
                at("ehlo")
                c.send(b"250-local.test\r\n250-PIPELINING\r\n"
                       b"250-8BITMIME\r\n250 SIZE 10240000\r\n")
                if cut == "idle":
                    # while the provider is asked
                    run.events["provider"].wait(10)
                    try:
                        c.end(way)
                    finally:
                        run.events["local_gone"].set()
            elif verb == b"MAIL":
                at("mail")
                c.send(mail_reply)
                if not mail_reply.startswith(b"250"):
                    run.hit("mail-refused")
                    c.drain()
                    raise Cut("mail")
            elif verb == b"RCPT":
                c.send(b"250 2.1.5 Ok\r\n")
            elif verb == b"DATA":
                c.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                text = c.buf
                c.buf = b""
                while not text:
                    text = c.recv()
                    if not text:
                        raise Cut("EOF after 354")
                run.events["text_seen"].set()
                at("text")
                while not (b"\r\n.\r\n" in text):
                    d = c.recv()
                    if not d:
                        raise Cut("EOF in the text")
                    text += d
                run.note("local", "dot")
                _, c.buf = text.split(b"\r\n.\r\n", 1)
                at("dot")
                c.send(b"250 2.0.0 Ok: queued as TORTURE\r\n")
            elif verb == b"RSET" or verb == b"NOOP":
                c.send(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                at("quit")
                c.send(b"221 2.0.0 Bye\r\n")
                c.drain()
                return
            else:
                c.send(b"502 5.5.2 Error\r\n")

    return script


# ---- the cases -------------------------------------------------------------------

class Case:
    """One way of ending a pickup, and what odmr-fetch must do then."""

    def __init__(self, name, want, why, kind="quick", prov=None, loc=None,
                 tls="starttls", args=(), check=None, signals=0,
                 trigger="stall", timeout=None, sig_bound=SIG_S):
        self.name, self.want, self.why, self.kind = name, want, why, kind
        self.prov = prov or provider()
        self.loc = loc or local()
        self.tls = tls
        self.args = list(args)
        self.check = check
        self.signals = signals
        self.trigger = trigger
        self.timeout = timeout or {"quick": QUICK_T, "stall": STALL_T,
                                   "signal": SIGNAL_T}[kind]
        self.sig_bound = sig_bound
        self.results = []
        self.fails = 0
        self.lock = threading.Lock()


def no_provider(run):
    if run.conns["provider"]:
        return "the provider was contacted although the local MTA was not there"
    return ""


def provider_got_421(run):
    got = run.notes.get("got", [])
    if not any(g.startswith("421 4.4.0") for g in got):
        return "the provider did not get 421 4.4.0 (got %s)" % got[-3:]
    return ""


def no_dot(run):
    if run.notes.get("local"):
        return "the local MTA got the final '.' of a message the provider abandoned"
    return ""


def provider_got_shutdown(run):
    got = run.notes.get("got", [])
    if not any(g.startswith("421 4.3.2") for g in got):
        return "the provider did not get 421 4.3.2 (got %s)" % got[-3:]
    return ""


def both(*fns):
    def check(run):
        return "; ".join(x for x in (f(run) for f in fns) if x)
    return check


P = provider
L = local
# Exit statuses (odmr-fetch(1) EXIT STATUS, SPEC.md): 0 delivered, 1 no mail,
# 2 auth failed or refused, 3 server or protocol error, 4 local MTA error.
S3 = ("3: a provider that went away before its QUIT, a broken handshake "
      "or a timeout is a server or protocol error")
CASES = [
    # -- the provider, before the turn
    Case("provider resets at once, no greeting", 3, S3, prov=P("accept", "rst")),
    Case("provider closes at once, no greeting", 3, S3, prov=P("accept", "close")),
    Case("provider never greets: --timeout", 3, S3 + " (the timeout)", "stall",
         prov=P("accept", "silent")),
    Case("provider greets with 421 and closes", 3, "3: a 421",
         prov=P(greeting=b"421 4.3.2 provider.test not now\r\n")),
    Case("provider greets, then closes at once", 3, S3, prov=P("greeted", "close")),
    Case("provider resets after EHLO, unanswered", 3, S3, prov=P("ehlo", "rst")),
    Case("provider never answers STARTTLS: --timeout", 3, S3, "stall",
         prov=P("starttls", "silent")),
    Case("provider closes after its 220 to STARTTLS, no handshake", 3, S3,
         prov=P("starttls-220", "close")),
    Case("half handshake: ClientHello read, then close", 3, S3,
         prov=P("hello", "close")),
    Case("half handshake: ClientHello read, then reset", 3, S3,
         prov=P("hello", "rst")),
    Case("half handshake: ClientHello read, then silence: --timeout", 3, S3,
         "stall", prov=P("hello", "silent")),
    Case("half handshake: half a ServerHello, then silence: --timeout", 3, S3,
         "stall", prov=P("hello", "partial")),
    Case("close_notify right after the handshake", 3, S3, prov=P("tls", "notify")),
    Case("reset right after the handshake", 3, S3, prov=P("tls", "rst")),
    Case("EHLO inside TLS unanswered, close_notify", 3, S3,
         prov=P("tls-ehlo", "notify")),
    Case("EHLO inside TLS never answered: --timeout", 3, S3, "stall",
         prov=P("tls-ehlo", "silent")),
    Case("421 to EHLO inside TLS, close_notify at once", 3, "3: a 421",
         prov=P(ehlo_reply=b"421 4.3.2 provider.test going down\r\n", way="notify")),
    Case("AUTH CRAM-MD5 unanswered, close_notify", 3, S3, prov=P("auth", "notify")),
    Case("AUTH CRAM-MD5: reset after the client's response", 3, S3,
         prov=P("auth-334", "rst")),
    Case("AUTH PLAIN (initial response) unanswered, close without close_notify",
         3, S3, prov=P("auth", "close", mechs=b"PLAIN")),
    Case("AUTH never answered: --timeout", 3, S3, "stall", prov=P("auth", "silent")),
    Case("AUTH 535, then close_notify instead of the 221", 2,
         "2: AUTH answered with a 5xx; what the QUIT gets changes nothing",
         prov=P(auth_reply=b"535 5.7.8 bad credentials\r\n", way="notify")),
    Case("ATRN unanswered, close_notify", 3, S3, prov=P("atrn", "notify")),
    Case("ATRN never answered: --timeout", 3, S3, "stall", prov=P("atrn", "silent")),
    Case("ATRN 453, then close_notify instead of the 221", 1,
         "1: no mail was waiting (ATRN 453); a missing 221 after QUIT "
         "changes nothing", prov=P(atrn_reply=b"453 You have no mail\r\n", way="notify")),
    Case("ATRN 450, then a reset instead of the 221", 2,
         "2: ATRN 450, a domain not the account's, is a refusal",
         prov=P(atrn_reply=b"450 4.7.1 not yours\r\n", way="rst")),
    Case("right after the 250 to ATRN: reset", 3, S3, prov=P("atrn-250", "rst")),
    Case("right after the 250 to ATRN: close_notify", 3, S3,
         prov=P("atrn-250", "notify")),
    Case("right after the 250 to ATRN: close without close_notify", 3, S3,
         prov=P("atrn-250", "close")),
    # -- implicit TLS
    Case("implicit TLS: ClientHello read, then reset", 3, S3, tls="implicit",
         prov=P("hello", "rst", tls="implicit")),
    Case("implicit TLS: handshake, close_notify before the greeting", 3, S3,
         tls="implicit", prov=P("tls", "notify", tls="implicit")),
    Case("implicit TLS: no ServerHello ever: --timeout", 3, S3, "stall",
         tls="implicit", prov=P("hello", "silent", tls="implicit")),
    # -- the reversed session: the provider is the SMTP client
    Case("reversed: no command after our 220: --timeout", 3, S3, "stall",
         prov=P("rev-220", "silent")),
    Case("reversed: close_notify after EHLO", 3, S3, prov=P("rev-ehlo", "notify")),
    Case("reversed: reset after MAIL", 3, S3, prov=P("rev-mail", "rst")),
    Case("reversed: silence after MAIL and RCPT: --timeout", 3, S3, "stall",
         prov=P("rev-rcpt", "silent")),
    Case("reversed: reset in the middle of the text", 3, S3,
         prov=P("rev-text", "rst"), check=no_dot),
    Case("reversed: close_notify in the middle of the text", 3, S3,
         prov=P("rev-text", "notify"), check=no_dot),
    Case("reversed: silence in the middle of the text: --timeout", 3, S3,
         "stall", prov=P("rev-text", "silent"), check=no_dot),
    Case("reversed: close_notify in the middle of a BDAT LAST chunk", 3, S3,
         prov=P("rev-chunk", "notify", bdat=True), check=no_dot),
    Case("reversed: reset in the middle of a BDAT LAST chunk", 3, S3,
         prov=P("rev-chunk", "rst", bdat=True), check=no_dot),
    Case("reversed: close without close_notify right after the final dot", 3,
         S3, prov=P("rev-dot", "close")),
    Case("reversed: close_notify right after the final dot, reply unread", 3,
         S3, prov=P("rev-dot", "notify")),
    Case("reversed: a message delivered, then a reset without QUIT", 3,
         "3: the provider went away before its QUIT, delivered or not",
         prov=P("rev-250", "rst")),
    Case("reversed: a message, QUIT, close_notify, 221 unread (Exim)", 0,
         "0: the local MTA took the message and the provider said QUIT",
         prov=P("rev-quit", "notify")),
    Case("reversed: no message, QUIT, close_notify, 221 unread", 1,
         "1: the provider turned round but had nothing to deliver",
         prov=P("rev-quit", "notify", deliver=0)),
    Case("reversed: a message, QUIT, close without close_notify", 0,
         "0: delivered, and QUIT came before the end",
         prov=P("rev-quit", "close")),
    Case("reversed: QUIT, 221, close_notify twice (Exim's child and parent)",
         0, "0: delivered, and QUIT came before the end",
         prov=P("rev-221", "notify2")),
    Case("reversed --tls none: reset in the middle of the text", 3, S3,
         tls="none", prov=P("rev-text", "rst", tls="none", mechs=b"CRAM-MD5"),
         check=no_dot),
    # -- the local MTA
    Case("local MTA resets at once", 4,
         "4: the local MTA is not there; the provider is not asked",
         loc=L("accept", "rst"), check=no_provider),
    Case("local MTA never greets: --timeout", 4,
         "4: the local MTA is not there (the timeout); the provider is not asked",
         "stall", loc=L("accept", "silent"), check=no_provider),
    Case("local MTA greets with 421", 4,
         "4: the local MTA is not there; the provider is not asked",
         loc=L(greeting=b"421 4.3.2 local.test busy\r\n"), check=no_provider),
    Case("local MTA resets after EHLO, unanswered", 4,
         "4: the local MTA is not there; the provider is not asked",
         loc=L("ehlo", "rst"), check=no_provider),
    Case("local MTA resets while the provider is asked", 4,
         "4: the local MTA went away during the pickup",
         loc=L("idle", "rst"), prov=P(wait_local_gone=True)),
    Case("local MTA resets at MAIL", 4,
         "4: the local MTA went away during the pickup (the provider gets 421)",
         loc=L("mail", "rst"), check=provider_got_421),
    Case("local MTA answers MAIL with 421 and closes", 4,
         "4: the local MTA went away during the pickup (the provider gets 421)",
         loc=L(mail_reply=b"421 4.3.2 local.test going down\r\n"),
         check=provider_got_421),
    Case("local MTA never answers MAIL: --timeout", 4,
         "4: the local MTA went away (a timeout; the provider gets 421)",
         "stall", loc=L("mail", "silent"), check=provider_got_421),
    Case("local MTA resets in the middle of the text", 4,
         "4: the local MTA went away during the pickup (the provider gets 421)",
         loc=L("text", "rst"), check=provider_got_421),
    Case("local MTA closes in the middle of the text", 4,
         "4: the local MTA went away during the pickup (the provider gets 421)",
         loc=L("text", "close"), check=provider_got_421),
    Case("local MTA never answers the final dot: --timeout", 4,
         "4: the local MTA went away (a timeout; the provider gets 421)",
         "stall", loc=L("dot", "silent"), check=provider_got_421),
    Case("local MTA resets after the final dot, unanswered", 4,
         "4: the local MTA went away during the pickup (the provider gets 421)",
         loc=L("dot", "rst"), check=provider_got_421),
    Case("local MTA never answers QUIT: --timeout", 0,
         "0: the message was delivered; the wait for the 221 is bounded",
         "stall", loc=L("quit", "silent")),
    # -- signals (--timeout 30 s: only the signal ends these so soon)
    Case("SIGTERM while the provider never greets", 3,
         "3: a pickup stopped by a signal", "signal",
         prov=P("accept", "silent"), signals=1),
    Case("SIGTERM in a half handshake", 3, "3: a pickup stopped by a signal",
         "signal", prov=P("hello", "silent"), signals=1),
    Case("SIGTERM while AUTH is unanswered", 3,
         "3: a pickup stopped by a signal", "signal",
         prov=P("auth", "silent"), signals=1),
    Case("SIGTERM while the local MTA never greets", 3,
         "3: a pickup stopped by a signal", "signal",
         loc=L("accept", "silent"), signals=1, check=no_provider),
    Case("two SIGTERMs while the local MTA never greets", 3,
         "3: a pickup stopped by a signal; the second one at once", "signal",
         loc=L("accept", "silent"), signals=2, check=no_provider),
    Case("SIGTERM in the reversed session, between transactions", 3,
         "3: a pickup stopped by a signal (the provider gets 421 4.3.2)",
         "signal", prov=P("rev-220", "silent"), signals=1,
         check=provider_got_shutdown),
    Case("SIGTERM in the middle of a silent text: the message may end "
         "first, --timeout bounds it", 3,
         "3: a pickup stopped by a signal, or the timeout", "signal",
         prov=P("rev-text", "silent"), signals=1, timeout=STALL_T,
         sig_bound=STALL_T + SLACK, check=no_dot),
    Case("two SIGTERMs in the middle of a silent text", 3,
         "3: a pickup stopped by a signal; the second one at once", "signal",
         prov=P("rev-text", "silent"), signals=2, check=no_dot),
    Case("two SIGTERMs while the local MTA never answers the dot", 3,
         "3: a pickup stopped by a signal; the second one at once", "signal",
         loc=L("dot", "silent"), signals=2),
    Case("--daemon: SIGTERM while the provider never greets", 0,
         "0: with --daemon the exit status is 0 after a signal", "signal",
         prov=P("accept", "silent"), signals=1, args=["--daemon", "1h"]),
    Case("--daemon: SIGTERM in the reversed session, between transactions", 0,
         "0: with --daemon the exit status is 0 after a signal", "signal",
         prov=P("rev-220", "silent"), signals=1, args=["--daemon", "1h"],
         check=provider_got_shutdown),
    Case("--daemon: a provider reset, then SIGTERM between pickups", 0,
         "0: with --daemon the exit status is 0 after a signal", "signal",
         prov=P("accept", "rst"), signals=1, args=["--daemon", "1h"],
         trigger="log:1"),
    Case("--daemon: QUIT, 221, close_notify twice (Exim), then SIGTERM "
         "between pickups", 0,
         "0: with --daemon the exit status is 0 after a signal", "signal",
         prov=P("rev-221", "notify2"), signals=1, args=["--daemon", "1h"],
         trigger="log:1"),
    Case("--daemon 1s: after Exim's double close_notify the next pickup "
         "still runs, then SIGTERM between pickups", 0,
         "0: with --daemon the exit status is 0 after a signal", "signal",
         prov=P("rev-221", "notify2"), signals=1, args=["--daemon", "1s"],
         trigger="log:2", check=lambda run: "" if run.conns["provider"] >= 2
         else "only %d pickups reached the provider" % run.conns["provider"]),
]


def command(case, pport, lport):
    """odmr-fetch's arguments for one run."""
    a = [FETCH, "--server", "%s:%d" % (HOST, pport), "--user", USER,
         "--deliver-to", "%s:%d" % (HOST, lport), "--hostname", "fetch.test",
         "--timeout", "%ds" % case.timeout, "-v"]
    if case.tls == "none":
        a += ["--tls", "none"]
    else:
        a += ["--tls", case.tls, "--ca-file", CERT, "--tls-name", TLS_NAME]
    return a + case.args


def log_count(path, pattern):
    """How many times PATTERN is in the file at PATH."""
    try:
        with open(path, "rb") as f:
            return len(re.findall(pattern, f.read()))
    except OSError:
        return 0


def log_has(path, pattern):
    return log_count(path, pattern) > 0


def wait_for(pred, seconds):
    """Until pred() (every 20 ms), False after SECONDS."""
    end = time.monotonic() + seconds
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def run_once(case, rep, logdir):
    """One run; a list of problems (empty: it went as it must)."""
    with case.lock:
        if case.fails >= MAX_FAILS:
            return None
    run = Run(case)
    prov = Listener(run, "provider", case.prov)
    loc = Listener(run, "local", case.loc)
    errpath = os.path.join(logdir, "%s.%d.err" % (
        re.sub(r"[^a-z0-9]+", "-", case.name.lower())[:60], rep))
    env = dict(os.environ, ODMR_PASSWORD=PASSWORD)
    problems = []
    with open(errpath, "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(command(case, prov.port, loc.port),
                                stdin=subprocess.DEVNULL, stdout=err,
                                stderr=subprocess.STDOUT, env=env)
        last_sig = None
        if case.kind == "signal":
            if case.trigger == "stall":
                reached = run.stalled.wait(15)
            else:	# "log:N": N pickups have ended, between pickups
                n = int(case.trigger.split(":")[1])
                reached = wait_for(lambda: log_count(errpath, rb" event=poll ") >= n,
                                   15)
            if not reached:
                problems.append("never reached the point of the signal")
            elif proc.poll() is None:
                for i in range(case.signals):
                    proc.send_signal(signal.SIGTERM)
                    last_sig = time.monotonic()
                    if i + 1 < case.signals:
                        # one at a time: two pending SIGTERMs are one;
                        # and none to a process that this one ends (a
                        # signal in its exit kills it: status -15)
                        wait_for(lambda: log_has(
                            errpath, rb"event=signal signal=15 count=%d" % (i + 1)) or
                            proc.poll() is not None, 5)
                        if wait_for(lambda: proc.poll() is not None, 1.0):
                            break
            bound = (last_sig or time.monotonic()) + case.sig_bound + SLACK - t0
        elif case.kind == "stall":
            # the silence comes first, then --timeout, and a slack
            if not run.stalled.wait(15):
                problems.append("the peer never went silent within 15 s")
            bound = (run.stall_at or time.monotonic()) + case.timeout + \
                SLACK - t0
        else:
            bound = case.timeout + SLACK
        try:
            rc = proc.wait(timeout=max(0.1, t0 + bound - time.monotonic()))
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
            proc.kill()
            rc = proc.wait()
        t_end = time.monotonic()
    run.done.set()
    prov.close()
    loc.close()
    for s in list(run.socks):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    for th in run.threads:
        th.join(5)
    took = t_end - t0
    out = open(errpath, "rb").read()
    if hung:
        problems.append("HUNG: no exit within %.1f s, killed" % (bound))
    elif rc != case.want:
        problems.append("exit %d, want %d" % (rc, case.want))
    if SANITIZER.search(out):
        m = SANITIZER.search(out)
        problems.append("sanitizer report: %r" % out[max(0, m.start() - 40):m.start() + 160])
    if not run.hits and not run.stalled.is_set():
        problems.append("the peer never reached its ending (%s)" % (run.errors or "no hang-up done"))
    if not hung:
        if case.kind == "quick" and took >= case.timeout:
            problems.append("ended only after %.1f s, by --timeout %d s: the "
                            "hang-up went unnoticed" % (took, case.timeout))
        if case.kind == "stall" and run.stall_at is not None:
            waited = t_end - run.stall_at
            if waited < case.timeout - 0.5 or waited > case.timeout + SLACK:
                problems.append("ended %.2f s after the silence began, want "
                                "--timeout %d s (+%g)" % (waited, case.timeout, SLACK))
        if case.kind == "signal" and last_sig is not None and \
                t_end - last_sig > case.sig_bound:
            problems.append("ended %.1f s after the signal, want < %.1f s"
                            % (t_end - last_sig, case.sig_bound))
    if case.check is not None:
        why = case.check(run)
        if why:
            problems.append(why)
    problems += run.errors
    if problems:
        tail = [ln for ln in out.decode("latin-1").splitlines()
                if "debug]" not in ln and ln.strip()][-4:]
        problems.append("stderr: " + " | ".join(tail))
        problems.append("peers: provider %s, local %s; provider got %s" % (
            run.notes.get("provider-end"), run.notes.get("local-end"),
            run.notes.get("got", [])[-3:]))
        problems.append("log: " + errpath)
        with case.lock:
            case.fails += 1
    else:
        os.unlink(errpath)
    with case.lock:
        case.results.append((rep, rc, took, problems))
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int,
                    default=int(os.environ.get("FETCH_TORTURE_REPS", "30")))
    ap.add_argument("--jobs", type=int,
                    default=int(os.environ.get("FETCH_TORTURE_JOBS", "16")))
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    only = [x.lower() for x in a.only.split(",") if x]
    cases = [c for c in CASES if not only or any(o in c.name.lower() for o in only)]
    if a.list:
        for c in cases:
            print("%-6s exit %d  %s  (%s)" % (c.kind, c.want, c.name, c.why))
        return 0
    logdir = os.path.join(T, "fetch-runs")
    os.makedirs(logdir, exist_ok=True)
    t0 = time.monotonic()
    # the stall and signal cases wait most: they go first in each round
    order = sorted(cases, key=lambda c: c.kind == "quick")
    with ThreadPoolExecutor(max_workers=a.jobs) as ex:
        futs = [ex.submit(run_once, c, rep, logdir)
                for rep in range(a.reps) for c in order]
        for f in futs:
            f.result()
    bad = 0
    for c in cases:
        res = sorted(c.results)
        fails = [r for r in res if r[3]]
        times = [r[2] for r in res]
        codes = sorted(set(r[1] for r in res))
        span = "%.2f-%.2f s" % (min(times), max(times)) if times else "-"
        if fails or len(res) < a.reps and c.fails < MAX_FAILS:
            bad += 1
            print("not ok - %s: %d of %d runs failed%s (exit %s, want %d)" % (
                c.name, len(fails), len(res),
                ", stopped after %d" % MAX_FAILS if len(res) < a.reps else "",
                "/".join(map(str, codes)), c.want))
            for rep, rc, took, problems in fails[:MAX_FAILS]:
                print("# run %d (exit %d, %.2f s): %s" % (rep + 1, rc, took,
                                                        problems[0]))
                for p in problems[1:]:
                    print("#     %s" % p)
        else:
            print("ok - %s: exit %d in all %d runs (%s) [%s]" % (
                c.name, c.want, len(res), span, c.why))
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print("# %d cases (%d failed), %d runs of odmr-fetch in %.1f s (%d at a "
          "time, %.1f s of CPU)" % (len(cases), bad,
                                    sum(len(c.results) for c in cases),
                                    time.monotonic() - t0, a.jobs,
                                    ru.ru_utime + ru.ru_stime))
    return 0


if __name__ == "__main__":
    sys.exit(main())
