#!/usr/bin/env python3
"""turn-customer - a scriptable customer SMTP server for the delivery engine's tests.

SYNOPSIS
    turn-customer.py --port-file FILE --dump DIR [options]

DESCRIPTION
    Listens on 127.0.0.1 (an ephemeral port, written to FILE once it
    listens) and plays the customer's mail server to turn_session(3):
    one connection at a time, until killed. Each accepted message is
    written to DIR as NNNN.eml (the message text exactly as received:
    DATA text with the dot-stuffing undone, or the BDAT chunks joined)
    and NNNN.json (the MAIL and RCPT lines, whether DATA or BDAT
    carried it, the number of chunks, and how many commands had
    already arrived, pipelined, when MAIL was read). Both are whole
    when they appear, the .json last, before the 250 is sent.

    It is strict where the engine must be careful: a MAIL while a
    transaction is still open (after a refused BDAT, say; RFC 3030
    leaves the state open, so the client must RSET) gets 503 5.5.1 and
    is counted (nested), a MAIL or RCPT
    parameter whose extension was not announced gets 555 5.5.4, 8-bit
    text without BODY=8BITMIME or BINARYMIME is noted (eightbit), a
    command that arrives before the reply it depends on when
    PIPELINING is off is noted (unsolicited), and any protocol error
    ends the connection with 500.

    Extensions: PIPELINING, CHUNKING, BINARYMIME, 8BITMIME, SMTPUTF8,
    DSN, ENHANCEDSTATUSCODES, and SIZE when --size is given; each can
    be turned off. --no-ehlo answers EHLO with 502 (the engine must
    fall back to HELO).

    --reject ADDR answers RCPT TO:<ADDR> with 550 5.1.1, --defer ADDR
    with 450 4.2.0, --reject-sender ADDR answers MAIL FROM:<ADDR> with
    550 5.7.1, --reject-text ADDR the end of the text of a transaction
    for ADDR with 554 5.7.1. --hangup-text N closes the connection,
    once, after N octets of the first message text; --hangup-after N
    closes it, once, when the Nth message has been taken, before its
    reply. --stall-dot never answers the end of the text (for
    timeouts). --mail-reply "CODE TEXT" answers every MAIL with that,
    --data-reply "CODE TEXT" every end of text, --rset-reply "CODE
    TEXT" every RSET.

    Each NNNN.json also says how many next transactions (MAIL commands)
    had already arrived when the end of the text was answered (ahead):
    the client pipelining across transactions.

    Only the python3 standard library is used.
"""

import argparse
import json
import os
import socket
import sys
import time

EXTS = ["PIPELINING", "CHUNKING", "BINARYMIME", "8BITMIME", "SMTPUTF8",
        "DSN", "ENHANCEDSTATUSCODES"]


class Closed(Exception):
    """The connection ended or must end."""


class Conn:
    """One SMTP server connection over a socket, with a read buffer."""

    def __init__(self, sock, args, state):
        self.sock = sock
        self.args = args
        self.state = state
        self.buf = b""
        self.ext = set(e for e in EXTS
                       if not getattr(args, "no_" + e.lower(), False))
        if args.size is not None:
            self.ext.add("SIZE")
        self.reset()

    def reset(self):
        self.mail = None
        self.rcpts = []
        self.accepted = 0
        self.text = b""
        self.chunks = 0
        self.bdat_failed = False
        self.pipelined = 0
        self.unsolicited = False
        self.text_reject = False

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        self.buf += data

    def line(self):
        while b"\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\n", 1)
        if not line.endswith(b"\r"):
            raise Closed("bare LF")
        return line[:-1]

    def octets(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def check_quiet(self):
        """Without PIPELINING nothing may come before our reply."""
        if "PIPELINING" not in self.ext and self.buf:
            self.unsolicited = True
            self.state["unsolicited"] += 1

    def params(self, words, allowed):
        for w in words:
            key = w.split(b"=", 1)[0].upper().decode("ascii", "replace")
            need = allowed.get(key)
            if key == "BODY":
                val = w.split(b"=", 1)[-1].upper()
                need = {b"7BIT": None,
                        b"8BITMIME": "8BITMIME",
                        b"BINARYMIME": "BINARYMIME"}.get(val, "?")
                if need is None:
                    continue
            if need is None or need not in self.ext:
                return "%s not offered" % key
        return None

    def run(self):
        self.send("220 customer.test ESMTP turn-customer")
        while True:
            line = self.line()
            verb = line.split(b" ", 1)[0].upper()
            handler = getattr(self, "cmd_" + verb.decode("ascii", "replace").lower(), None)
            if handler is None:
                self.send("500 5.5.2 unknown command")
                continue
            handler(line)

    def cmd_ehlo(self, line):
        if self.args.no_ehlo:
            self.send("502 5.5.1 EHLO not implemented")
            return
        self.check_quiet()
        out = ["customer.test"]
        for e in EXTS:
            if e in self.ext:
                out.append(e)
        if "SIZE" in self.ext:
            out.append("SIZE %d" % self.args.size)
        for i, o in enumerate(out):
            self.send(("250 " if i == len(out) - 1 else "250-") + o)
        self.state["ehlo"] += 1

    def cmd_helo(self, line):
        self.ext = set()
        self.state["helo"] += 1
        self.send("250 customer.test")

    def cmd_mail(self, line):
        if self.mail is not None:
            self.state["nested"] += 1
            self.send("503 5.5.1 nested MAIL command")
            return
        self.reset()
        # how many complete commands came along with MAIL (RFC 2920)
        self.pipelined = self.buf.count(b"\r\n")
        self.check_quiet()
        words = line.split(b" ")
        addr = words[1][5:] if len(words) > 1 else b""
        err = self.params(words[2:], {"SIZE": "SIZE", "BODY": "8BITMIME",
                                      "SMTPUTF8": "SMTPUTF8", "RET": "DSN",
                                      "ENVID": "DSN"})
        if err:
            self.send("555 5.5.4 " + err)
            return
        for w in words[2:]:
            if w.upper().startswith(b"SIZE=") and self.args.size and \
                    int(w[5:]) > self.args.size:
                self.send("552 5.3.4 message too big")
                return
        if addr.strip(b"<>").decode("utf-8", "replace") in \
                self.args.reject_sender:
            self.send("550 5.7.1 sender refused")
            return
        if self.args.mail_reply:
            self.send(self.args.mail_reply)
            if not self.args.mail_reply.startswith("2"):
                return
        else:
            self.send("250 2.1.0 Ok")
        self.mail = line.decode("utf-8", "replace")

    def cmd_rcpt(self, line):
        self.check_quiet()
        if self.mail is None:
            self.send("503 5.5.1 need MAIL")
            return
        words = line.split(b" ")
        err = self.params(words[2:], {"NOTIFY": "DSN", "ORCPT": "DSN"})
        if err:
            self.send("555 5.5.4 " + err)
            return
        addr = words[1][3:].strip(b"<>").decode("utf-8", "replace")
        if addr in self.args.reject:
            self.send("550 5.1.1 <%s>: mailbox unavailable" % addr)
            return
        if addr in self.args.defer:
            self.send("450 4.2.0 <%s>: try again later" % addr)
            return
        self.rcpts.append(line.decode("utf-8", "replace"))
        self.accepted += 1
        if addr in self.args.reject_text:
            self.text_reject = True
        self.send("250 2.1.5 Ok")

    def cmd_data(self, line):
        self.check_quiet()
        if self.mail is None or self.accepted == 0:
            self.send("554 5.5.1 no valid recipients")
            return
        self.send("354 go ahead")
        text = []
        got = 0
        while True:
            if self.args.hangup_text is not None and \
                    not self.state["hung_up"] and got >= self.args.hangup_text:
                self.state["hung_up"] = True
                raise Closed("hangup")
            l = self.line()
            got += len(l) + 2
            if l == b".":
                break
            if l.startswith(b"."):
                l = l[1:]
            text.append(l + b"\r\n")
        self.text = b"".join(text)
        self.finish("DATA")

    def cmd_bdat(self, line):
        if "CHUNKING" not in self.ext:
            self.send("500 5.5.2 BDAT not offered")
            return
        words = line.split(b" ")
        n = int(words[1])
        last = len(words) > 2 and words[2].upper() == b"LAST"
        if self.args.hangup_text is not None and not self.state["hung_up"]:
            self.octets(min(n, self.args.hangup_text))
            self.state["hung_up"] = True
            raise Closed("hangup")
        data = self.octets(n)
        if self.mail is None or self.accepted == 0 or self.bdat_failed:
            self.bdat_failed = True
            self.send("554 5.5.1 no valid recipients")
            return
        self.text += data
        self.chunks += 1
        if last:
            self.finish("BDAT")
        else:
            self.check_quiet()
            self.send("250 2.0.0 %d octets" % n)

    def finish(self, via):
        if self.args.stall_dot:
            time.sleep(3600)
        # the next transactions that came before this reply
        ahead = self.buf.upper().count(b"MAIL FROM:")
        self.state["ahead_max"] = max(self.state["ahead_max"], ahead)
        if self.args.data_reply:
            self.send(self.args.data_reply)
            self.reset()
            return
        if self.text_reject:
            self.send("554 5.7.1 content refused")
            self.reset()
            return
        self.state["n"] += 1
        n = self.state["n"]
        base = os.path.join(self.args.dump, "%04d" % n)
        mail_upper = self.mail.upper()
        eightbit = any(b > 127 for b in self.text) and \
            "BODY=8BITMIME" not in mail_upper and \
            "BODY=BINARYMIME" not in mail_upper
        # each file appears whole (written aside as a dot file, then
        # renamed), the .json last: a test that sees NNNN.json can read
        # both, and waits for that, not for a time
        tmp = os.path.join(self.args.dump, ".%04d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(self.text)
        os.rename(tmp, base + ".eml")
        with open(tmp, "w") as f:
            json.dump({"mail": self.mail, "rcpts": self.rcpts, "via": via,
                       "chunks": self.chunks, "pipelined": self.pipelined,
                       "ahead": ahead,
                       "eightbit": eightbit,
                       "unsolicited": self.unsolicited}, f)
        os.rename(tmp, base + ".json")
        if self.args.hangup_after == n and not self.state["hung_up"]:
            self.state["hung_up"] = True
            raise Closed("hangup")
        self.send("250 2.0.0 Ok: queued as %04d" % n)
        self.reset()

    def cmd_rset(self, line):
        self.state["rset"] += 1
        if self.args.rset_reply:
            self.send(self.args.rset_reply)
            return
        self.reset()
        self.send("250 2.0.0 Ok")

    def cmd_noop(self, line):
        self.send("250 2.0.0 Ok")

    def cmd_quit(self, line):
        self.state["quit"] += 1
        self.send("221 2.0.0 bye")
        raise Closed()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port-file", required=True)
    p.add_argument("--dump", required=True)
    p.add_argument("--state-file", help="counters as JSON after each session")
    p.add_argument("--size", type=int)
    for e in EXTS:
        p.add_argument("--no-" + e.lower(), action="store_true")
    p.add_argument("--no-ehlo", action="store_true")
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--defer", action="append", default=[])
    p.add_argument("--reject-sender", action="append", default=[])
    p.add_argument("--reject-text", action="append", default=[])
    p.add_argument("--hangup-text", type=int)
    p.add_argument("--hangup-after", type=int)
    p.add_argument("--stall-dot", action="store_true")
    p.add_argument("--mail-reply")
    p.add_argument("--data-reply")
    p.add_argument("--rset-reply")
    args = p.parse_args()
    os.makedirs(args.dump, exist_ok=True)
    state = {"n": 0, "hung_up": False, "ehlo": 0, "helo": 0, "rset": 0,
             "quit": 0, "unsolicited": 0, "sessions": 0, "nested": 0,
             "ahead_max": 0}
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(5)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, args.port_file)
    while True:
        sock, _ = ls.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state["sessions"] += 1
        try:
            Conn(sock, args, state).run()
        except (Closed, ConnectionError, ValueError, IndexError):
            pass
        finally:
            sock.close()
            if args.state_file:
                with open(args.state_file + ".tmp", "w") as f:
                    json.dump(state, f)
                os.rename(args.state_file + ".tmp", args.state_file)


if __name__ == "__main__":
    sys.exit(main())
