# tests/integration/odmrd-lib.sh - run a real odmrd for one test script.
#
# Source it after tests/tap.sh. It makes a private directory $T with a
# state directory, a configuration file and a self-signed certificate,
# starts odmrd on 127.0.0.1 at free ports, and stops it again on exit.
#
#	odmrd_setup		make $T, $T/odmrd.conf, $T/state, $T/cert.pem
#				and pick $SMTP_PORT and $ODMR_PORT
#	odmrd_conf KEY VALUE	set a key in $T/odmrd.conf (before start)
#	octl ARGS...		odmrctl -f $T/odmrd.conf ARGS...
#	odmrd_start		start odmrd -d in the background; wait until
#				it logs event=ready (30 s), else fail
#	odmrd_stop		SIGTERM, wait for the exit (20 s); returns
#				odmrd's exit status
#	odmrd_wait_exit [S]	wait (S seconds, 20) for an odmrd that was
#				already told to stop (a SIGTERM sent by a
#				test's client) to exit by itself; returns
#				its exit status. Never a second SIGTERM.
#	odmrd_hup		SIGHUP; wait until odmrd has read the file
#				(event=reloaded or reload-failed, 20 s)
#	odmrd_kill9		SIGKILL, no questions asked
#	odmrd_log		the path of odmrd's log ($T/odmrd.log)
#	log_mark		the number of the log's next line
#	wait_log PATTERN [FROM] [S]
#				until the log from line FROM (1) on matches
#				the extended regex PATTERN (S seconds, 20)
#	log_count PATTERN [FROM]
#				how many lines from FROM on match PATTERN
#	wait_log_count PATTERN N [FROM] [S]
#				until at least N lines from FROM match
#	free_port		a TCP port nobody listens on
#	free_addr [PORT] [N]	N (1) distinct addresses of 127.0.0.0/8 of
#				this run's own, nothing listening at PORT (25)
#	wait_port PORT [ADDR] [S]
#				until ADDR:PORT listens (127.0.0.1, 20 s)
#	wait_file FILE [S]	until FILE exists and is not empty (20 s)
#	odmrd_sessions_over	every session in the log that connected has
#				logged its disconnect
#	start_sink DIR [OPTS]	smtp-sink -d DIR as nobody on $SINK_PORT
#	stop_sink		stop it
#	odmrd_wait_unclaimed D	until no delivery holds domain D (20 s)
#
# ODMRD_WRAPPER, when set, prefixes the odmrd command (valgrind, strace).

: "${top_srcdir:?top_srcdir is not set}"
: "${top_builddir:?top_builddir is not set}"

ODMRD="$top_builddir/odmr/odmrd"
ODMRCTL="$top_builddir/odmr/odmrctl"
odmrd_pid=""

# free_port - print a TCP port nobody listens on
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# free_addr [PORT] [N] - print N (1) distinct addresses of 127.0.0.0/8,
# one a line, that are this run's own, with nothing listening on PORT
# (25): a site that must be at a fixed port (an MX host, the address of
# route client) gets one, so that two copies of the suite running at
# once never share one. They are drawn at random (seeded with the pid,
# too) from 127.1.0.1 to 127.254.255.254, away from 127.0.0.0/16 where
# the machine's own names live (127.0.0.1, 127.0.1.1, 127.0.0.53), and
# each is bound once to be sure.
free_addr() {
	python3 - "${1:-25}" "${2:-1}" "$$" <<'PY'
import os, random, socket, sys
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(int.from_bytes(os.urandom(8), "big") ^ (pid << 20) ^ os.getpid())
got = []
for _ in range(200 * n):
    a = "127.%d.%d.%d" % (rnd.randint(1, 254), rnd.randint(0, 255), rnd.randint(1, 254))
    if a in got:
        continue
    s = socket.socket()
    try:
        # SO_REUSEADDR as servers set it: only a listener makes it fail
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, port))
    except OSError:
        continue
    finally:
        s.close()
    got.append(a)
    if len(got) == n:
        print("\n".join(got))
        sys.exit(0)
sys.exit("free_addr: no %d free addresses on port %d" % (n, port))
PY
}

# re_quote TEXT - TEXT as an extended regex that matches it literally
# (an address's dots, a route's brackets)
re_quote() {
	printf '%s\n' "$1" | sed 's/[][\.*^$+?(){}|/]/\\&/g'
}

# log_mark - the number of the next line odmrd's log will have
log_mark() {
	touch "$T/odmrd.log"
	echo $(($(wc -l <"$T/odmrd.log") + 1))
}

# log_from_has PATTERN FROM - the log from line FROM on matches PATTERN
log_from_has() {
	tail -n +"$2" "$T/odmrd.log" 2>/dev/null | grep -Eq -e "$1"
}

# wait_log PATTERN [FROM] [SECONDS] - until odmrd's log, from line FROM
# (1: the whole log) on, matches the extended regex PATTERN; 1 after
# SECONDS (20). Take FROM from log_mark before the cause of the event,
# so that an older line cannot answer for it.
wait_log() {
	wait_until "${3:-20}" log_from_has "$1" "${2:-1}"
}

# log_count PATTERN [FROM] - how many lines of odmrd's log, from line
# FROM (1) on, match the extended regex PATTERN
log_count() {
	tail -n +"${2:-1}" "$T/odmrd.log" 2>/dev/null | grep -Ec -e "$1"
}

# log_count_ge PATTERN N FROM - at least N lines from FROM match
log_count_ge() {
	[ "$(log_count "$1" "$3")" -ge "$2" ]
}

# wait_log_count PATTERN N [FROM] [SECONDS] - until at least N lines of
# the log from FROM (1) on match PATTERN; 1 after SECONDS (20)
wait_log_count() {
	wait_until "${4:-20}" log_count_ge "$1" "$2" "${3:-1}"
}

# odmrd_sessions_over - every session odmrd's log shows connected has
# logged event=disconnect (odmrd stopped with SIGTERM ends them all; a
# kill -9 leaves some open for ever)
odmrd_sessions_over() {
	[ "$(log_count ' event=connect ')" -le "$(log_count ' event=disconnect ')" ]
}

# wait_file FILE [SECONDS] - until FILE exists and is not empty (20 s)
wait_file() {
	wait_until "${2:-20}" test -s "$1"
}

# odmrd_cleanup - the EXIT trap: stop odmrd and remove $T
odmrd_cleanup() {
	if [ -n "$odmrd_pid" ]; then
		kill -9 "$odmrd_pid" 2>/dev/null
		wait "$odmrd_pid" 2>/dev/null
	fi
	[ -n "${odmrd_extra_cleanup:-}" ] && eval "$odmrd_extra_cleanup"
	if [ -n "${KEEP_T:-}" ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}

# odmrd_setup - private directory, configuration and certificate
odmrd_setup() {
	require_cmd python3 python3
	require_cmd openssl openssl
	if [ ! -x "$ODMRD" ]; then
		not_ok "odmrd is not built at $ODMRD"
		tap_done
	fi
	T=$(mktemp -d /tmp/odmrd-test.XXXXXX) || exit 1
	trap odmrd_cleanup EXIT
	trap 'exit 1' INT TERM
	mkdir -p "$T/state" && chmod 700 "$T/state"
	SMTP_PORT=$(free_port)
	ODMR_PORT=$(free_port)
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
	    -subj "/CN=mx.odmr.test" -addext "subjectAltName=DNS:mx.odmr.test" \
	    -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1 || {
		not_ok "openssl could not make a test certificate"
		tap_done
	}
	cat >"$T/odmrd.conf" <<CONF
# written by tests/integration/odmrd-lib.sh
hostname = mx.odmr.test
state_dir = $T/state
smtp_listen = 127.0.0.1:$SMTP_PORT
odmr_listen = 127.0.0.1:$ODMR_PORT
tls_cert_file = $T/cert.pem
tls_key_file = $T/key.pem
log_level = debug
# loopback clients all share one address: lift the per-IP limit
max_connections_per_ip = 500
CONF
	"$ODMRCTL" -f "$T/odmrd.conf" stats >/dev/null 2>&1 || true
}

# odmrd_conf KEY VALUE - set KEY in the configuration file
odmrd_conf() {
	grep -v "^$1 *=" "$T/odmrd.conf" >"$T/odmrd.conf.new"
	echo "$1 = $2" >>"$T/odmrd.conf.new"
	mv "$T/odmrd.conf.new" "$T/odmrd.conf"
}

# octl ARGS... - odmrctl on this test's store
octl() {
	"$ODMRCTL" -f "$T/odmrd.conf" "$@"
}

# odmrd_log - the log file of the running (or last) odmrd
odmrd_log() {
	echo "$T/odmrd.log"
}

# odmrd_start - start odmrd in the foreground mode, in the background
odmrd_start() {
	# the log keeps every run; only this run's lines count
	touch "$T/odmrd.log"
	_from=$(($(wc -l <"$T/odmrd.log") + 1))
	$ODMRD_WRAPPER "$ODMRD" -f "$T/odmrd.conf" -d >>"$T/odmrd.log" 2>&1 &
	odmrd_pid=$!
	_end=$(($(date +%s) + 30))
	while [ "$(date +%s)" -le $_end ]; do
		tail -n +"$_from" "$T/odmrd.log" 2>/dev/null |
		    grep -q 'event=ready' && return 0
		if ! kill -0 "$odmrd_pid" 2>/dev/null; then
			wait "$odmrd_pid" 2>/dev/null
			odmrd_pid=""
			break
		fi
		sleep 0.05
	done
	diag "odmrd did not start; its log:"
	tail -n 20 "$T/odmrd.log" | sed 's/^/#   /'
	return 1
}

# odmrd_stop - SIGTERM and wait; the exit status is odmrd's
odmrd_stop() {
	[ -n "$odmrd_pid" ] || return 1
	kill -TERM "$odmrd_pid" 2>/dev/null
	odmrd_wait_exit 20
}

# odmrd_gone - odmrd's process has exited (the shell reaps it while it
# waits for its other commands, so an exited odmrd is gone by the next
# poll)
odmrd_gone() {
	! kill -0 "$odmrd_pid" 2>/dev/null
}

# odmrd_wait_exit [SECONDS] - until odmrd exits (20 s), sending nothing:
# for a daemon that a test's client already sent SIGTERM. A second
# SIGTERM would race with its exit: after event=stopped the handlers are
# gone, and the signal kills it (status 143) while the sanitizers still
# check for leaks. Returns odmrd's exit status; after SECONDS, SIGKILL.
odmrd_wait_exit() {
	[ -n "$odmrd_pid" ] || return 1
	if ! wait_until "${1:-20}" odmrd_gone; then
		diag "odmrd did not exit within ${1:-20} s of SIGTERM"
		kill -9 "$odmrd_pid"
	fi
	wait "$odmrd_pid"
	_rc=$?
	odmrd_pid=""
	return $_rc
}

# odmrd_hup - SIGHUP, then wait until odmrd has read its configuration:
# event=reloaded, or event=reload-failed, after the signal (20 s). The
# reload's warnings (event=reload-warning) come before either line.
odmrd_hup() {
	[ -n "$odmrd_pid" ] || return 1
	_hup_from=$(log_mark)
	kill -HUP "$odmrd_pid"
	wait_log 'event=(reloaded|reload-failed) ' "$_hup_from" 20 && return 0
	diag "odmrd did not finish a reload within 20 s of SIGHUP"
	return 1
}

# odmrd_kill9 - SIGKILL odmrd
odmrd_kill9() {
	[ -n "$odmrd_pid" ] || return 1
	kill -9 "$odmrd_pid" 2>/dev/null
	wait "$odmrd_pid" 2>/dev/null
	odmrd_pid=""
}

# port_listens PORT [ADDR] - something accepts connections on ADDR:PORT
port_listens() {
	python3 -c 'import socket, sys; socket.create_connection((sys.argv[2], int(sys.argv[1])), 1).close()' "$1" "${2:-127.0.0.1}" 2>/dev/null
}

# wait_port PORT [ADDR] [SECONDS] - until something listens on ADDR:PORT
# (127.0.0.1, 20 s)
wait_port() {
	wait_until "${3:-20}" port_listens "$1" "${2:-127.0.0.1}"
}

# start_sink DIR [OPTIONS...] - smtp-sink -d DIR (as nobody) on a new
# $SINK_PORT, its pid in $sink_pid, its log appended to $T/sink.log
start_sink() {
	_d=$1; shift
	mkdir -p "$_d" && chown nobody "$_d"
	SINK_PORT=$(free_port)
	smtp-sink -u nobody "$@" -d "$_d/%M." "127.0.0.1:$SINK_PORT" 100 >>"$T/sink.log" 2>&1 &
	sink_pid=$!
	wait_port "$SINK_PORT" || diag "smtp-sink does not listen on $SINK_PORT"
}

# stop_sink - stop the smtp-sink start_sink started
stop_sink() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
	wait "$sink_pid" 2>/dev/null
	sink_pid=""
}

# odmrd_unclaimed D - no delivery holds domain D now
odmrd_unclaimed() {
	octl --json queue | python3 -c 'import json, sys
sys.exit(any(d["domain"] == sys.argv[1] and d["flush"] for d in json.load(sys.stdin)["domains"]))' "$1"
}

# odmrd_wait_unclaimed D - until no delivery holds domain D (odmrd gives
# claims back asynchronously), 20 s at most
odmrd_wait_unclaimed() {
	wait_until 20 odmrd_unclaimed "$1"
}
