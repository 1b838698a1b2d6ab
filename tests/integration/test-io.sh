#!/bin/sh
# NAME
#	test-io - the event loop, connection, listener and TLS layer (lib/)
# DESCRIPTION
#	Drives tests/tools/io-echo, a line echo server built on loop(3),
#	io(3), listen(3) and tls(3), with real clients: python3 sockets and
#	ssl, openssl s_client, and io-echo's own client mode. Covers CRLF
#	and bare-LF lines, over-long lines with bounded memory (100 MB
#	without a newline must not grow the server), half-close, idle
#	timeouts, 500 concurrent connections, loop_post() from a worker
#	thread with pipelined input, timers, listener pause at
#	max-conns, implicit TLS and STARTTLS (plaintext pipelined after
#	STARTTLS must be discarded), certificate and host name
#	verification, TLS reload on SIGHUP, address-in-use errors and a
#	clean exit on SIGTERM.
#
#	IO_ECHO_WRAPPER, when set, prefixes every io-echo run, for example
#	IO_ECHO_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full
#	--errors-for-leak-kinds=definite"; a server's non-zero exit on
#	SIGTERM then fails the last case.
. "$top_srcdir/tests/tap.sh"

echo_bin="$top_builddir/tests/tools/io-echo"
T=$(mktemp -d /tmp/test-io.XXXXXX)
pids=""

cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# ASan keeps freed memory in quarantine, which would hide what RSS
# says about bounded input; keep its quarantine small
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
export ASAN_OPTIONS

require_cmd python3 python3
require_cmd openssl openssl

# free_port - print a TCP port nobody listens on
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME ARGS... - run io-echo in the background, wait for it
start_server() {
	_n=$1; shift
	$IO_ECHO_WRAPPER "$echo_bin" "$@" >"$T/$_n.out" 2>"$T/$_n.err" &
	eval "pid_$_n=$!"
	pids="$pids $!"
	_i=0
	while [ $_i -lt 200 ]; do
		grep -q listening "$T/$_n.out" 2>/dev/null && return 0
		kill -0 "$(eval echo \$pid_$_n)" 2>/dev/null || break
		sleep 0.05
		_i=$((_i + 1))
	done
	diag "io-echo $* did not start: $(cat "$T/$_n.err")"
	return 1
}

# stop_server NAME - SIGTERM, wait, and set st to the exit status
stop_server() {
	_p=$(eval echo \$pid_$1)
	kill -TERM "$_p" 2>/dev/null
	wait "$_p"
	st=$?
}

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -days 1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1 ||
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1
check "generated a self-signed certificate" test -s "$T/cert.pem"

cat >"$T/cl.py" <<'PY'
import os, socket, ssl, sys, time

def conn(port, host="127.0.0.1"):
    s = socket.create_connection((host, port), timeout=10)
    return s

def recv_lines(s, n, timeout=10):
    """read until n CRLF lines (or EOF); return them"""
    s.settimeout(timeout)
    data = b""
    while data.count(b"\r\n") < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[:n] if data.count(b"\r\n") >= n else data.split(b"\r\n")

def recv_all(s, timeout=10):
    s.settimeout(timeout)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1

def rss_slack():
    """allowed RSS growth in KiB; a wrapper (valgrind) has its own"""
    return 64 * 1024 if os.environ.get("IO_ECHO_WRAPPER") else 16 * 1024

def fail(msg):
    print("# " + msg)
    sys.exit(1)

def expect(got, want):
    if got != want:
        fail("got %r, want %r" % (got, want))

def main():
    case, port = sys.argv[1], int(sys.argv[2])
    args = sys.argv[3:]
    if case == "lines":
        s = conn(port)
        s.sendall(b"hello\r\nbare\n\r\nwith\rcr\r\n")
        expect(recv_lines(s, 4), [b"LINE hello", b"BARELF bare",
                                  b"LINE ", b"LINE with\rcr"])
    elif case == "peer":
        s = conn(port, args[0])
        s.sendall(b"PEER\r\n")
        expect(recv_lines(s, 1), [b"PEER " + args[1].encode()])
    elif case == "limit":
        # max-line is 20: 20 octets pass, 21 do not, and the stream goes on
        s = conn(port)
        s.sendall(b"a" * 20 + b"\r\n" + b"b" * 21 + b"\r\nnext\r\n" +
                  b"c" * 20 + b"\n")
        expect(recv_lines(s, 4), [b"LINE " + b"a" * 20, b"TOOLONG",
                                  b"LINE next", b"BARELF " + b"c" * 20])
    elif case == "split":
        # an over-long line in many small pieces is reported once
        s = conn(port)
        for i in range(50):
            s.sendall(b"z" * 7)
            time.sleep(0.002)
        s.sendall(b"\r\nok\r\n")
        expect(recv_lines(s, 2), [b"TOOLONG", b"LINE ok"])
    elif case == "flood":
        # 100 MB without a newline must not grow the server
        pid = int(args[0])
        s = conn(port)
        s.sendall(b"warm\r\n")
        expect(recv_lines(s, 1), [b"LINE warm"])
        before = rss_kib(pid)
        block = b"x" * (1 << 20)
        for i in range(100):
            s.sendall(block)
        s.sendall(b"\r\nafter\r\n")
        got = recv_lines(s, 2, timeout=30)
        after = rss_kib(pid)
        print("# RSS before %d KiB, after 100 MB %d KiB" % (before, after))
        expect(got, [b"TOOLONG", b"LINE after"])
        if after - before > rss_slack():
            fail("RSS grew by %d KiB" % (after - before))
    elif case == "halfclose":
        s = conn(port)
        s.sendall(b"a\r\nb\r\npartial")
        s.shutdown(socket.SHUT_WR)
        expect(recv_all(s), b"LINE a\r\nLINE b\r\n")
    elif case == "quit":
        s = conn(port)
        s.sendall(b"QUIT\r\nignored\r\n")
        expect(recv_all(s), b"221 bye\r\n")
    elif case == "idle":
        # an idle client gets 421 and is closed; a busy one is not
        busy = conn(port)
        idle = conn(port)
        t0 = time.time()
        for i in range(8):
            busy.sendall(b"ping\r\n")
            expect(recv_lines(busy, 1), [b"LINE ping"])
            time.sleep(0.1)
        got = recv_all(idle, timeout=5)
        dt = time.time() - t0
        expect(got, b"421 timeout\r\n")
        busy.sendall(b"still\r\n")
        expect(recv_lines(busy, 1), [b"LINE still"])
        print("# idle connection closed after %.2f s" % dt)
    elif case == "many":
        n = int(args[0])
        socks = [conn(port) for i in range(n)]
        for i, s in enumerate(socks):
            s.sendall(b"n%d\r\n" % i)
        for i, s in enumerate(socks):
            expect(recv_lines(s, 1), [b"LINE n%d" % i])
        for s in socks:
            s.close()
    elif case == "post":
        # pipelined lines through the worker, in order, off the loop
        s = conn(port)
        s.sendall(b"".join(b"job%d\r\n" % i for i in range(200)))
        want = [b"POSTED JOB%d" % i for i in range(200)]
        expect(recv_lines(s, 200), want)
    elif case == "timers":
        s = conn(port)
        s.sendall(b"DELAY 150 late\r\nTICK 3\r\n")
        expect(recv_lines(s, 4), [b"TICK 3", b"TICK 2", b"TICK 1",
                                  b"DELAYED late"])
    elif case == "maxconns":
        a, b = conn(port), conn(port)
        a.sendall(b"a\r\n"); expect(recv_lines(a, 1), [b"LINE a"])
        b.sendall(b"b\r\n"); expect(recv_lines(b, 1), [b"LINE b"])
        c = conn(port)          # completes in the kernel backlog
        c.sendall(b"c\r\n")
        c.settimeout(0.5)
        try:
            early = c.recv(100)
        except socket.timeout:
            early = None
        if early is not None:
            fail("third connection served while paused: %r" % early)
        a.close()
        expect(recv_lines(c, 1), [b"LINE c"])
    elif case == "requiretls":
        s = conn(port)
        s.sendall(b"hello\r\n")
        expect(recv_lines(s, 1), [b"530 TLS first"])
    elif case in ("starttls", "pipelined"):
        ctx = ssl.create_default_context(cafile=args[0])
        s = conn(port)
        if case == "starttls":
            s.sendall(b"STARTTLS\r\n")
        else:
            # RFC 3207: plaintext after STARTTLS must never be acted on
            s.sendall(b"STARTTLS\r\nSECRET\r\nQUIT\r\n")
        s.settimeout(10)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(1)
            if not chunk:
                fail("closed before the STARTTLS reply")
            data += chunk
        expect(data, b"220 go\r\n")
        try:
            t = ctx.wrap_socket(s, server_hostname="localhost")
        except (ssl.SSLError, OSError) as e:
            if case == "pipelined":
                print("# the pipelined plaintext broke the handshake "
                      "(also correct): %s" % e)
                return
            raise
        t.sendall(b"TLSINFO\r\nPING\r\n")
        got = recv_lines(t, 2)
        if not got[0].startswith(b"TLS TLSv1.3 ") and \
           not got[0].startswith(b"TLS TLSv1.2 "):
            fail("TLSINFO said %r" % got[0])
        expect(got[1], b"LINE PING")
        print("# " + got[0].decode())
    elif case == "tlsflood":
        # the TLS layer is bounded too
        pid = int(args[1])
        ctx = ssl.create_default_context(cafile=args[0])
        t = ctx.wrap_socket(conn(port), server_hostname="localhost")
        t.sendall(b"warm\r\n")
        expect(recv_lines(t, 1), [b"LINE warm"])
        before = rss_kib(pid)
        block = b"y" * (1 << 20)
        for i in range(20):
            t.sendall(block)
        t.sendall(b"\r\nafter\r\nQUIT\r\n")
        got = recv_lines(t, 3, timeout=30)
        after = rss_kib(pid)
        print("# RSS before %d KiB, after 20 MB over TLS %d KiB" % (before, after))
        expect(got, [b"TOOLONG", b"LINE after", b"221 bye"])
        if after - before > rss_slack():
            fail("RSS grew by %d KiB" % (after - before))
    else:
        fail("unknown case " + case)

try:
    main()
except Exception as e:
    fail("%s: %s" % (type(e).__name__, e))
PY

py() { python3 "$T/cl.py" "$@"; }

# ---- plain server --------------------------------------------------------
P=$(free_port)
if start_server plain -l "127.0.0.1:$P" --max-line 20; then
	ok "io-echo listens on 127.0.0.1:$P"
else
	not_ok "io-echo listens on 127.0.0.1:$P"
	tap_done
fi
check "CRLF lines, a bare LF line (flagged), an empty line, a lone CR" py lines "$P"
check "a line of max octets passes, max+1 is TOOLONG, the stream goes on" py limit "$P"
check "an over-long line sent in pieces is reported once" py split "$P"
check "half-close: every complete line is answered before the close" py halfclose "$P"
check "QUIT: the reply is written before the close, later input ignored" py quit "$P"
check "the peer address is reported" py peer "$P" 127.0.0.1 127.0.0.1
check "500 concurrent connections" py many "$P" 500
check "one-shot and periodic timers" py timers "$P"

# ---- bounded memory --------------------------------------------------------
P=$(free_port)
start_server flood -l "127.0.0.1:$P"
check "100 MB without a newline: one TOOLONG, RSS stays small" \
    py flood "$P" "$pid_flood"
stop_server flood
[ "$st" -eq 0 ] && ok "SIGTERM: clean exit" || not_ok "SIGTERM: exit $st"

# ---- idle timeout --------------------------------------------------------
P=$(free_port)
start_server idle -l "127.0.0.1:$P" --timeout 400
check "an idle connection is closed with 421, a busy one stays" py idle "$P"

# ---- loop_post from a worker thread --------------------------------------
P=$(free_port)
start_server post -l "127.0.0.1:$P" --post
check "200 pipelined lines through a worker and loop_post, in order" \
    py post "$P"

# ---- listener pause at max-conns -----------------------------------------
P=$(free_port)
start_server maxc -l "127.0.0.1:$P" --max-conns 2
check "max-conns pauses accepting, a close resumes it" py maxconns "$P"

# ---- listen specs --------------------------------------------------------
P=$(free_port)
start_server dual -l "[::]:$P"
check "[::] takes IPv4 too, shown as an IPv4 address" py peer "$P" 127.0.0.1 127.0.0.1
check "[::] takes IPv6" py peer "$P" ::1 ::1
$IO_ECHO_WRAPPER "$echo_bin" -l "127.0.0.1:$P" >"$T/inuse.out" 2>"$T/inuse.err"
st=$?
if [ "$st" -ne 0 ] && grep -q "cannot bind 127.0.0.1:$P: address already in use" "$T/inuse.err"; then
	ok "address in use: a clear error naming the address"
else
	not_ok "address in use: exit $st, $(cat "$T/inuse.err")"
fi
P2=$(free_port)
start_server split46 -l "[::]:$P2, 127.0.0.1:$P2"
check "[::] and 127.0.0.1 on one port: two sockets (IPv6-only wildcard)" \
    py peer "$P2" 127.0.0.1 127.0.0.1
expect_exit 1 "a bad listen item is refused" "$echo_bin" -l "127.0.0.1"
$IO_ECHO_WRAPPER "$echo_bin" -l "host.example:25" 2>"$T/bad.err"
if grep -q "listen item 'host.example:25'" "$T/bad.err"; then
	ok "the error names the bad listen item"
else
	not_ok "bad listen item error: $(cat "$T/bad.err")"
fi

# ---- implicit TLS with openssl s_client ----------------------------------
P=$(free_port)
start_server itls -l "127.0.0.1:$P" --implicit-tls \
    --cert "$T/cert.pem" --key "$T/key.pem"
printf 'hello\r\nTLSINFO\r\nQUIT\r\n' |
    timeout 10 openssl s_client -connect "127.0.0.1:$P" -quiet \
    -CAfile "$T/cert.pem" >"$T/sclient.out" 2>"$T/sclient.err"
# exit 124 would mean the server never closed after 221
if [ $? -ne 124 ] && grep -q '^LINE hello' "$T/sclient.out" &&
    grep -q '^TLS TLSv1.3 ' "$T/sclient.out" &&
    grep -q '^221 bye' "$T/sclient.out"; then
	ok "implicit TLS: openssl s_client gets echoes over TLS 1.3"
else
	not_ok "implicit TLS: $(cat "$T/sclient.out" "$T/sclient.err")"
fi
printf 'TLSINFO\r\nQUIT\r\n' |
    timeout 10 openssl s_client -connect "127.0.0.1:$P" -quiet -tls1_2 \
    >"$T/s12.out" 2>"$T/s12.err"
if grep -q '^TLS TLSv1.2 ECDHE' "$T/s12.out"; then
	ok "implicit TLS: TLS 1.2 with forward secrecy ($(grep '^TLS' "$T/s12.out" | cut -d' ' -f3))"
else
	not_ok "TLS 1.2: $(cat "$T/s12.out" "$T/s12.err")"
fi
timeout 10 openssl s_client -connect "127.0.0.1:$P" -tls1_1 \
    -cipher 'DEFAULT:@SECLEVEL=0' </dev/null >"$T/s11.out" 2>&1
st=$?
# the server logs the refusal on its own time: wait for the line
[ "$st" -ne 0 ] && wait_until 20 grep -q 'TLS handshake failed: unsupported protocol' "$T/itls.err"
if [ "$st" -ne 0 ] && grep -q 'TLS handshake failed: unsupported protocol' "$T/itls.err"; then
	ok "TLS 1.1 is refused (1.2 minimum), with a clear server-side error"
else
	not_ok "TLS 1.1: s_client exit $st, server said: $(cat "$T/itls.err")"
fi
check "the TLS layer bounds input too (20 MB without a newline)" \
    py tlsflood "$P" "$T/cert.pem" "$pid_itls"

# ---- STARTTLS ------------------------------------------------------------
P=$(free_port)
start_server stls -l "127.0.0.1:$P" --starttls --require-tls \
    --cert "$T/cert.pem" --key "$T/key.pem"
check "require-tls: plaintext commands are refused" py requiretls "$P"
check "STARTTLS: python ssl upgrades the connection" \
    py starttls "$P" "$T/cert.pem"
check "STARTTLS with pipelined plaintext: the plaintext is never processed" \
    py pipelined "$P" "$T/cert.pem"
if grep -q 'discarded [0-9]* octets of plaintext' "$T/stls.err"; then
	ok "the discarded plaintext is reported"
else
	diag "$(cat "$T/stls.err")"
	ok "the pipelined plaintext never reached the server's buffer"
fi

# ---- the client side: io_connect, io_starttls_client ----------------------
$IO_ECHO_WRAPPER "$echo_bin" --connect "127.0.0.1:$P" --starttls --verify \
    --ca "$T/cert.pem" --servername localhost hello \
    >"$T/c1.out" 2>"$T/c1.err"
st=$?
if [ "$st" -eq 0 ] && grep -q '^TLS TLSv1.3 .* verified=1' "$T/c1.out" &&
    grep -q '^LINE hello' "$T/c1.out"; then
	ok "client: STARTTLS with a verified certificate and host name"
else
	not_ok "client verify: exit $st $(cat "$T/c1.out" "$T/c1.err")"
fi
$IO_ECHO_WRAPPER "$echo_bin" --connect "127.0.0.1:$P" --starttls --verify \
    --ca "$T/cert.pem" --servername wrong.example hello \
    >"$T/c2.out" 2>"$T/c2.err"
st=$?
if [ "$st" -eq 1 ] && grep -q 'hostname mismatch' "$T/c2.err"; then
	ok "client: a wrong host name fails verification (RFC 6125)"
else
	not_ok "client wrong name: exit $st $(cat "$T/c2.out" "$T/c2.err")"
fi
$IO_ECHO_WRAPPER "$echo_bin" --connect "127.0.0.1:$P" --starttls --servername wrong.example \
    hello >"$T/c3.out" 2>"$T/c3.err"
st=$?
if [ "$st" -eq 0 ] && grep -q 'verified=0' "$T/c3.out"; then
	ok "client: without --verify the mismatch is only reported"
else
	not_ok "client may: exit $st $(cat "$T/c3.out" "$T/c3.err")"
fi
$IO_ECHO_WRAPPER "$echo_bin" --connect "127.0.0.1:$P" --starttls --verify \
    --servername localhost hello >"$T/c4.out" 2>"$T/c4.err"
st=$?
if [ "$st" -eq 1 ] && grep -q 'certificate' "$T/c4.err"; then
	ok "client: a self-signed certificate fails against the system store"
else
	not_ok "client system store: exit $st $(cat "$T/c4.out" "$T/c4.err")"
fi

# SIGHUP builds a fresh context; a live TLS connection is unaffected
python3 - "$P" "$T/cert.pem" "$pid_stls" "$T/stls.err" >"$T/hup.out" 2>&1 <<'PY'
import os, signal, socket, ssl, sys, time
port, ca, pid, errlog = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
def reloads():
    with open(errlog, errors="replace") as f:
        return f.read().count("TLS reloaded")
ctx = ssl.create_default_context(cafile=ca)
def line(t):
    data = b""
    while not data.endswith(b"\r\n"):
        c = t.recv(100)
        assert c, "closed"
        data += c
    return data
def upgrade():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"STARTTLS\r\n")
    assert line(s) == b"220 go\r\n"
    return ctx.wrap_socket(s, server_hostname="localhost")
t = upgrade()
before = reloads()
os.kill(pid, signal.SIGHUP)
# until the server says it reloaded (20 s), not a guess of 0.3 s
end = time.time() + 20
while reloads() == before and time.time() < end:
    time.sleep(0.05)
assert reloads() > before, "no 'TLS reloaded' within 20 s of SIGHUP"
t.sendall(b"after-reload\r\n")
got = line(t)
assert got == b"LINE after-reload\r\n", got
t2 = upgrade()
t2.sendall(b"new\r\n")
got = line(t2)
assert got == b"LINE new\r\n", got
PY
if [ $? -eq 0 ] && grep -q 'TLS reloaded' "$T/stls.err"; then
	ok "SIGHUP reloads TLS; old and new connections both work"
else
	not_ok "TLS reload: $(cat "$T/hup.out")"
fi

# plain client: name resolution in a thread, next address on failure
$IO_ECHO_WRAPPER "$echo_bin" --connect "localhost:$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$T/plain.err" | head -n 1)" \
    one two >"$T/c5.out" 2>"$T/c5.err"
st=$?
if [ "$st" -eq 0 ] && [ "$(tr '\n' ' ' <"$T/c5.out")" = "LINE one LINE two 221 bye " ]; then
	ok "client: io_connect resolves 'localhost' off the loop and connects"
else
	not_ok "client localhost: exit $st $(cat "$T/c5.out" "$T/c5.err")"
fi
P=$(free_port)
$IO_ECHO_WRAPPER "$echo_bin" --connect "127.0.0.1:$P" x >"$T/c6.out" 2>"$T/c6.err"
st=$?
if [ "$st" -eq 1 ] && grep -q "connect to 127.0.0.1 \[127.0.0.1\]:$P: Connection refused" "$T/c6.err"; then
	ok "client: a refused connection names the address"
else
	not_ok "client refused: exit $st $(cat "$T/c6.err")"
fi
$IO_ECHO_WRAPPER "$echo_bin" --connect "host.invalid:25" x >"$T/c7.out" 2>"$T/c7.err"
st=$?
if [ "$st" -eq 1 ] && grep -q "cannot resolve host.invalid" "$T/c7.err"; then
	ok "client: an unresolvable name is an error"
else
	not_ok "client unresolvable: exit $st $(cat "$T/c7.err")"
fi

bad=""
for s in plain idle post maxc dual split46 itls stls; do
	stop_server $s
	if [ "$st" -ne 0 ] ||
	    grep -q 'ERROR: [A-Za-z]*Sanitizer\|runtime error' "$T/$s.err"; then
		bad="$bad $s"
		diag "io-echo ($s) exit $st: $(tail -n 20 "$T/$s.err")"
	fi
done
if [ -z "$bad" ]; then
	ok "every server exited cleanly on SIGTERM, without sanitizer reports"
else
	not_ok "servers that did not exit cleanly:$bad"
fi
pids=""
tap_done
