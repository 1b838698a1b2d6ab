#!/usr/bin/env python3
"""etrn-client - send SMTP commands (ETRN among them) and print the replies.

SYNOPSIS
    etrn-client.py [--source ADDR] [--user U --password P] [--no-ehlo]
                   [--data TEXT] HOST PORT COMMAND...

DESCRIPTION
    Connects to HOST:PORT (from ADDR when --source is given), reads the
    greeting, sends EHLO etrn-client.test (unless --no-ehlo), optionally
    authenticates with AUTH CRAM-MD5 (RFC 2195, computed here with hmac),
    then sends each COMMAND in turn and prints its final reply line, one
    per command, as "CODE TEXT". With --data, when the last command got
    354 the TEXT follows (LF made CRLF, a final line "." added) and its
    reply is printed too: a message with exactly the MAIL and RCPT
    parameters a test needs. Ends with QUIT. A reply that never
    comes within 20 s, or a closed connection, prints "timeout" or
    "closed" for that command and stops.

    swaks cannot send ETRN, and the reply cases need exact control of the
    session, so the ETRN tests use this besides fetchmail --protocol ETRN.
    Only the python3 standard library is used.
"""

import argparse
import base64
import hashlib
import hmac
import socket
import sys


def read_reply(f):
    """The lines of one reply; the last one is the final line."""
    lines = []
    while True:
        raw = f.readline()
        if not raw:
            raise EOFError
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--no-ehlo", action="store_true")
    ap.add_argument("--data")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("commands", nargs="*")
    a = ap.parse_args()
    src = (a.source, 0) if a.source else None
    s = socket.create_connection((a.host, a.port), timeout=20,
                                 source_address=src)
    f = s.makefile("rb")

    def cmd(text):
        s.sendall(text.encode() + b"\r\n")
        return read_reply(f)

    try:
        read_reply(f)
        if not a.no_ehlo:
            cmd("EHLO etrn-client.test")
        if a.user:
            r = cmd("AUTH CRAM-MD5")
            if not r[-1].startswith("334 "):
                print("auth " + r[-1])
                return 1
            challenge = base64.b64decode(r[-1][4:])
            digest = hmac.new(a.password.encode(), challenge,
                              hashlib.md5).hexdigest()
            r = cmd(base64.b64encode(("%s %s" % (a.user, digest))
                                     .encode()).decode())
            if not r[-1].startswith("235 "):
                print("auth " + r[-1])
                return 1
        last = ""
        for c in a.commands:
            last = cmd(c)[-1]
            print(last, flush=True)
        if a.data is not None and last.startswith("354"):
            text = a.data.replace("\r\n", "\n").replace("\n", "\r\n")
            s.sendall(text.encode() + b"\r\n.\r\n")
            print(read_reply(f)[-1], flush=True)
        cmd("QUIT")
    except socket.timeout:
        print("timeout")
        return 1
    except (EOFError, ConnectionError):
        print("closed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
