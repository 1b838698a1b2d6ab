#!/usr/bin/env python3
"""smtp-acker - send distinct messages concurrently, record every 250, verify later.

SYNOPSIS
    smtp-acker.py send --port PORT --acks FILE [--clients N] [--seconds S]
                       [--rcpt ADDR] [--seed N]
    smtp-acker.py verify --acks FILE --ctl ODMRCTL --conf FILE [--jobs N]

DESCRIPTION
    "send" runs N client threads against 127.0.0.1:PORT for S seconds.
    Each sends message after message, each with its own random token; the
    body carries the token and, on its last line, the SHA-256 of the body
    text before that line. A third of the clients use BDAT (RFC 3030)
    in several chunks, the others DATA; some reuse their connection and
    some open a new one for each message; sizes go from 1 KiB to 256 KiB
    so that a kill finds transfers in flight. Every
    "250 2.0.0 Ok: queued as ID" is appended at once to the ack file as
    "ID TOKEN SHA256 SIZE". A refused or dropped connection is counted and
    retried until the time is up, so the daemon may be killed and
    restarted underneath. The last line on standard output sums up:
    "acked=N unanswered=N errors=N".

    "verify" checks every acknowledged id with "odmrctl --json show ID
    --raw": the message must exist, contain its token, and its body must
    hash to the SHA-256 it carries. It prints one line per problem and a
    summary "verified=N missing=N corrupt=N", and exits 1 when any
    acknowledged message is missing or damaged (SPEC.md guarantee 1).

    Only the python3 standard library is used.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

QUEUED = re.compile(rb"^250 2\.0\.0 Ok: queued as ([0-9A-Fa-f]{14})$")
SHA_LINE = re.compile(rb"\r\nsha256: ([0-9a-f]{64})\r\n")


class Client:
    """One SMTP connection with whole-reply reads."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        code, _ = self.reply()
        if code != 220:
            raise ConnectionError("greeting %d" % code)
        code, _ = self.cmd(b"EHLO acker.test")
        if code != 250:
            raise ConnectionError("EHLO %d" % code)

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed")
                self.buf += chunk
            ln, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(ln)
            if len(ln) < 4 or ln[3:4] != b"-":
                return int(ln[:3]), lines

    def cmd(self, line):
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def make_message(rnd):
    """(token, sha256 hex, message bytes) for one random message."""
    token = "%032x" % rnd.getrandbits(128)
    size = rnd.choice([1024, 2048, 4096, 8192, 16384, 65536, 262144])
    lines = [b"token: " + token.encode()]
    n = 0
    while n < size:
        ln = ("%s %06d " % (token[:8], rnd.randrange(1000000))).encode() + bytes(
            rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(60))
        lines.append(ln)
        n += len(ln) + 2
    text = b"\r\n".join(lines) + b"\r\n"
    sha = hashlib.sha256(text).hexdigest()
    head = ("From: acker@x.test\r\nSubject: acker %s\r\nMessage-ID: <%s@acker.test>\r\n\r\n" % (
        token, token)).encode()
    return token, sha, head + text + b"sha256: " + sha.encode() + b"\r\n"


def dotstuff(msg):
    out = msg.replace(b"\r\n.", b"\r\n..")
    if out.startswith(b"."):
        out = b"." + out
    return out + b".\r\n"


class Stats:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.acked = self.unanswered = self.errors = self.refused = 0

    def ack(self, qid, token, sha, size):
        line = ("%s %s %s %d\n" % (qid, token, sha, size)).encode()
        with self.lock:
            os.write(self.fd, line)
            self.acked += 1

    def count(self, what):
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)


def client_loop(idx, args, stats, deadline):
    rnd = random.Random("%d-%d-%d" % (args.seed, idx, os.getpid()))
    use_bdat = idx % 3 == 2
    reuse = idx % 2 == 0
    c = None
    while time.time() < deadline:
        try:
            if c is None:
                try:
                    c = Client(args.port)
                except (ConnectionRefusedError, ConnectionResetError):
                    stats.count("refused")
                    time.sleep(0.05)
                    continue
            token, sha, msg = make_message(rnd)
            if use_bdat:
                if c.cmd(b"MAIL FROM:<acker@x.test>")[0] != 250:
                    raise ConnectionError("MAIL refused")
                if c.cmd(b"RCPT TO:<" + args.rcpt.encode() + b">")[0] != 250:
                    raise ConnectionError("RCPT refused")
                cuts = sorted(rnd.sample(range(1, len(msg)), 3))
                parts = [msg[a:b] for a, b in zip([0] + cuts, cuts + [len(msg)])]
                for i, p in enumerate(parts):
                    last = i == len(parts) - 1
                    c.sock.sendall(b"BDAT %d%s\r\n" % (len(p), b" LAST" if last else b""))
                    # send the chunk in two writes, a little apart, to be
                    # caught mid-transfer more often
                    c.sock.sendall(p[:len(p) // 2])
                    c.sock.sendall(p[len(p) // 2:])
                    if not last:
                        if c.reply()[0] != 250:
                            raise ConnectionError("BDAT chunk refused")
            else:
                c.sock.sendall(b"MAIL FROM:<acker@x.test>\r\nRCPT TO:<" + args.rcpt.encode() + b">\r\nDATA\r\n")
                codes = [c.reply()[0] for _ in range(3)]
                if codes != [250, 250, 354]:
                    raise ConnectionError("transaction refused %s" % codes)
                c.sock.sendall(dotstuff(msg))
            try:
                code, lines = c.reply()
            except (OSError, EOFError):
                stats.count("unanswered")
                raise
            m = QUEUED.match(lines[-1])
            if m:
                stats.ack(m.group(1).decode(), token, sha, len(msg))
            else:
                stats.count("errors")
            if not reuse:
                try:
                    c.cmd(b"QUIT")
                except (OSError, EOFError):
                    pass
                c.close()
                c = None
        except (OSError, EOFError, ConnectionError, ValueError):
            stats.count("errors")
            if c is not None:
                c.close()
            c = None
            time.sleep(0.02)
    if c is not None:
        try:
            c.cmd(b"QUIT")
        except (OSError, EOFError):
            pass
        c.close()


def send(args):
    stats = Stats(args.acks)
    deadline = time.time() + args.seconds
    threads = [threading.Thread(target=client_loop, args=(i, args, stats, deadline), daemon=True)
               for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + 60)
    print("acked=%d unanswered=%d errors=%d refused=%d" % (
        stats.acked, stats.unanswered, stats.errors, stats.refused), flush=True)
    return 0


def check_one(args, qid, token, sha):
    """None when message qid is whole, else the problem."""
    out = subprocess.run([args.ctl, "-f", args.conf, "--json", "show", qid, "--raw"], capture_output=True)
    if out.returncode == 1:
        return "missing", "odmrctl show %s: not found: %s" % (qid, out.stderr.decode(errors="replace").strip())
    if out.returncode != 0:
        return "missing", "odmrctl show %s: exit %d: %s" % (qid, out.returncode, out.stderr.decode(errors="replace").strip())
    try:
        data = base64.b64decode(json.loads(out.stdout)["content_base64"])
    except (ValueError, KeyError) as e:
        return "corrupt", "odmrctl show %s: bad JSON: %r" % (qid, e)
    if ("\r\ntoken: %s\r\n" % token).encode() not in data:
        return "corrupt", "%s: token %s not in the stored text" % (qid, token)
    start = data.index(b"\r\n\r\n") + 4
    m = SHA_LINE.search(data, start - 2)
    if not m:
        return "corrupt", "%s: no sha256 line" % qid
    if not data.endswith(m.group(0)):
        return "corrupt", "%s: text after the sha256 line" % qid
    got = hashlib.sha256(data[start:m.start() + 2]).hexdigest()
    if got != m.group(1).decode() or got != sha:
        return "corrupt", "%s: body SHA-256 %s, carried %s, acked %s" % (qid, got, m.group(1).decode(), sha)
    return None


def verify(args):
    acks = []
    with open(args.acks) as f:
        for ln in f:
            parts = ln.split()
            if len(parts) == 4:
                acks.append(parts)
            elif ln.strip():
                print("# malformed ack line %r" % ln)
    seen = {}
    dup = 0
    for qid, token, sha, size in acks:
        if qid.upper() in seen:
            dup += 1
            print("# id %s acknowledged twice (tokens %s and %s)" % (qid, seen[qid.upper()], token))
        seen[qid.upper()] = token
    counts = {"missing": 0, "corrupt": 0}
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        results = ex.map(lambda a: check_one(args, a[0], a[1], a[2]), acks)
        for r in results:
            if r:
                counts[r[0]] += 1
                if counts[r[0]] <= 10:
                    print("# " + r[1])
    print("verified=%d missing=%d corrupt=%d duplicate_ids=%d" % (
        len(acks), counts["missing"], counts["corrupt"], dup), flush=True)
    return 1 if counts["missing"] or counts["corrupt"] or dup else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--acks", required=True)
    s.add_argument("--clients", type=int, default=10)
    s.add_argument("--seconds", type=float, default=5)
    s.add_argument("--rcpt", default="k@example.net")
    s.add_argument("--seed", type=int, default=1)
    v = sub.add_parser("verify")
    v.add_argument("--acks", required=True)
    v.add_argument("--ctl", required=True)
    v.add_argument("--conf", required=True)
    v.add_argument("--jobs", type=int, default=4)
    args = p.parse_args()
    return send(args) if args.cmd == "send" else verify(args)


if __name__ == "__main__":
    sys.exit(main())
