#!/usr/bin/env python3
"""idle-conns.py - odmrd's memory per idle SMTP connection

SYNOPSIS
    python3 bench/idle-conns.py --port PORT --pid PID [-k K] [--ehlo]
        [--host HOST] [--conf FILE] [--warmup N] [--settle S] [--hold S]

DESCRIPTION
    Opens K (default 1000) plaintext SMTP connections to odmrd's MX
    listener, one after another. Each reads the 220 greeting and, with
    --ehlo, sends EHLO and reads the reply; then all of them stay open
    and idle. odmrd's resident memory (VmRSS in /proc/PID/status) is read
    before the first connection and once all K are open (after --settle
    seconds, default 1); the figure is the growth divided by K, in KiB
    per connection. The target is under 64 KiB.

    Before the baseline, --warmup (default 20) connections are opened
    and closed, so that memory odmrd allocates once (on its first
    connection) is not charged to the K connections.

    It raises its own RLIMIT_NOFILE as far as it needs (up to the hard
    limit; as root, beyond it). It checks odmrd's limit in
    /proc/PID/limits and, with --conf, odmrd's max_connections and
    max_connections_per_ip (defaults 1000 and 20), and says which one is
    too low for K.

    The result line goes to stdout, details to stderr.

EXIT STATUS
    0 when all K connections were greeted and held, 2 on a usage error
    (including limits that are too low), 3 when connections failed.
"""

import argparse
import os
import resource
import socket
import sys
import time


def log(msg):
    print("idle-conns: " + msg, file=sys.stderr)


def proc_status(pid):
    """VmRSS and VmHWM in KiB, and the thread count, of PID."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def proc_nofile(pid):
    """odmrd's soft limit on open files, or None."""
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    v = line.split()[3]
                    return None if v == "unlimited" else int(v)
    except OSError:
        pass
    return None


def conf_limits(path):
    """max_connections and max_connections_per_ip from odmrd.conf."""
    vals = {"max_connections": 1000, "max_connections_per_ip": 20}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            k, eq, v = line.partition("=")
            k = k.strip()
            if eq and k in vals:
                v = v.strip()
                mult = {"k": 1000, "K": 1000, "M": 1000000}.get(v[-1:], 1)
                if mult != 1:
                    v = v[:-1]
                vals[k] = int(v) * mult
    return vals


def read_reply(sock, buf):
    """Read one SMTP reply; return (code, text, rest of buffer)."""
    while True:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                return line[:3].decode("ascii", "replace"), line, buf
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("connection closed by the server")
        buf += data


def open_one(host, port, ehlo, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        code, line, buf = read_reply(s, b"")
        if code != "220":
            raise ConnectionError("greeting: %s" % line.decode("ascii", "replace"))
        if ehlo:
            s.sendall(b"EHLO idle.bench.test\r\n")
            code, line, buf = read_reply(s, buf)
            if code != "250":
                raise ConnectionError("EHLO: %s" % line.decode("ascii", "replace"))
    except BaseException:
        s.close()
        raise
    return s


def main():
    ap = argparse.ArgumentParser(
        description="odmrd's resident memory per idle SMTP connection")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="odmrd's PID")
    ap.add_argument("-k", "--conns", type=int, default=1000)
    ap.add_argument("--ehlo", action="store_true",
                    help="send EHLO on each connection after the greeting")
    ap.add_argument("--conf", help="odmrd.conf, to check its connection limits")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--hold", type=float, default=0.0,
                    help="keep the connections open this many seconds more")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--target", type=float, default=64.0,
                    help="KiB per connection (default 64)")
    a = ap.parse_args()
    k = a.conns
    if k < 1:
        ap.error("-k must be at least 1")
    if not os.path.exists("/proc/%d/status" % a.pid):
        log("no process %d" % a.pid)
        return 2

    # Our own descriptors: K sockets and a few more.
    need = k + a.warmup + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        new_hard = hard if hard == resource.RLIM_INFINITY or hard >= need else need
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, new_hard))
        except (ValueError, OSError) as e:
            log("cannot raise my open-file limit from %d to %d (hard limit %d): %s; "
                "run as root or raise it with ulimit -n" % (soft, need, hard, e))
            return 2

    bad = False
    theirs = proc_nofile(a.pid)
    if theirs is not None and theirs < k + 64:
        log("odmrd's open-file limit is %d, too low for %d connections: "
            "start it after 'ulimit -n %d'" % (theirs, k, k + 1024))
        bad = True
    if a.conf:
        lim = conf_limits(a.conf)
        for key in ("max_connections", "max_connections_per_ip"):
            if lim[key] < k:
                log("%s = %d in %s, below %d: raise it (all connections come "
                    "from one address)" % (key, lim[key], a.conf, k))
                bad = True
    if bad:
        return 2

    for _ in range(a.warmup):
        open_one(a.host, a.port, a.ehlo, a.timeout).close()
    time.sleep(a.settle)

    before = proc_status(a.pid)
    fds_before = proc_fds(a.pid)
    socks = []
    failed = 0
    first_error = None
    t0 = time.monotonic()
    for _ in range(k):
        try:
            socks.append(open_one(a.host, a.port, a.ehlo, a.timeout))
        except (OSError, ConnectionError) as e:
            failed += 1
            if first_error is None:
                first_error = str(e)
    t1 = time.monotonic()
    time.sleep(a.settle)
    # The server must still have them all: none closed under us.
    alive = 0
    for s in socks:
        s.setblocking(False)
        try:
            alive += 1 if s.recv(1, socket.MSG_PEEK) else 0
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
        s.setblocking(True)
    try:
        after = proc_status(a.pid)
    except OSError:
        log("odmrd (PID %d) is gone" % a.pid)
        print("memory: odmrd exited during the test")
        return 3
    fds_after = proc_fds(a.pid)
    if a.hold > 0:
        log("holding %d connections for %.0f s" % (len(socks), a.hold))
        time.sleep(a.hold)
    for s in socks:
        s.close()
    time.sleep(a.settle)
    try:
        closed = proc_status(a.pid)
    except OSError:
        log("odmrd (PID %d) exited when the connections closed" % a.pid)
        closed = {"VmRSS": -1}

    n = alive
    what = "greeting + EHLO" if a.ehlo else "greeting only"
    log("opened %d of %d connections in %.2f s (%s), %d still open after %.1f s"
        % (len(socks), k, t1 - t0, what, alive, a.settle))
    if failed:
        log("%d connections failed; first: %s" % (failed, first_error))
    log("odmrd: VmRSS %d -> %d KiB (%d KiB after closing them), VmHWM %d KiB, "
        "threads %d -> %d, descriptors %d -> %d"
        % (before["VmRSS"], after["VmRSS"], closed["VmRSS"], after["VmHWM"],
           before["Threads"], after["Threads"], fds_before, fds_after))
    if n == 0:
        print("memory: no idle connection could be held open")
        return 3
    per = (after["VmRSS"] - before["VmRSS"]) / n
    verdict = "PASS" if per < a.target and n == k else "FAIL"
    print("memory: %d idle SMTP connections (%s): odmrd RSS %d -> %d KiB, "
          "%.1f KiB per connection (target < %g KiB): %s"
          % (n, what, before["VmRSS"], after["VmRSS"], per, a.target, verdict))
    return 0 if n == k else 3


if __name__ == "__main__":
    sys.exit(main())
