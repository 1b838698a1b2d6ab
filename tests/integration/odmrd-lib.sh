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
#				it logs event=ready (10 s), else fail
#	odmrd_stop		SIGTERM, wait for the exit (20 s); returns
#				odmrd's exit status
#	odmrd_kill9		SIGKILL, no questions asked
#	odmrd_log		the path of odmrd's log ($T/odmrd.log)
#	free_port		a TCP port nobody listens on
#	wait_port PORT		until 127.0.0.1:PORT listens (10 s)
#	start_sink DIR [OPTS]	smtp-sink -d DIR as nobody on $SINK_PORT
#	stop_sink		stop it
#	odmrd_wait_unclaimed D	until no delivery holds domain D (10 s)
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
	_i=0
	while [ $_i -lt 200 ]; do
		tail -n +"$_from" "$T/odmrd.log" 2>/dev/null |
		    grep -q 'event=ready' && return 0
		if ! kill -0 "$odmrd_pid" 2>/dev/null; then
			wait "$odmrd_pid" 2>/dev/null
			odmrd_pid=""
			break
		fi
		sleep 0.05
		_i=$((_i + 1))
	done
	diag "odmrd did not start; its log:"
	tail -n 20 "$T/odmrd.log" | sed 's/^/#   /'
	return 1
}

# odmrd_stop - SIGTERM and wait; the exit status is odmrd's
odmrd_stop() {
	[ -n "$odmrd_pid" ] || return 1
	kill -TERM "$odmrd_pid" 2>/dev/null
	_i=0
	while kill -0 "$odmrd_pid" 2>/dev/null && [ $_i -lt 400 ]; do
		sleep 0.05
		_i=$((_i + 1))
	done
	if kill -0 "$odmrd_pid" 2>/dev/null; then
		diag "odmrd ignored SIGTERM for 20 s"
		kill -9 "$odmrd_pid"
	fi
	wait "$odmrd_pid"
	_rc=$?
	odmrd_pid=""
	return $_rc
}

# odmrd_kill9 - SIGKILL odmrd
odmrd_kill9() {
	[ -n "$odmrd_pid" ] || return 1
	kill -9 "$odmrd_pid" 2>/dev/null
	wait "$odmrd_pid" 2>/dev/null
	odmrd_pid=""
}

# wait_port PORT - until something listens on 127.0.0.1:PORT (10 s)
wait_port() {
	_i=0
	until python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null; do
		_i=$((_i + 1))
		[ $_i -lt 100 ] || return 1
		sleep 0.1
	done
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

# odmrd_wait_unclaimed D - until no delivery holds domain D (odmrd gives
# claims back asynchronously), 10 s at most
odmrd_wait_unclaimed() {
	_i=0
	while [ $_i -lt 100 ]; do
		octl --json queue | python3 -c 'import json, sys
sys.exit(any(d["domain"] == sys.argv[1] and d["flush"] for d in json.load(sys.stdin)["domains"]))' "$1" && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}
