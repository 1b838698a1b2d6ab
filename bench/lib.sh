# bench/lib.sh - shell functions shared by the benchmarks (sourced by
# bench/*.sh). Sourcing it only defines functions: it runs nothing and
# sets no variable. A script that defines a function of the same name
# after sourcing this file keeps its own (accept.sh, etrn.sh and
# fetch.sh carry their own copies of several of the helpers below).
#
# Where a benchmark may keep its files (every script):
#
#	bench_workdir NAME	make and print a scratch directory NAME.XXXXXX
#				under $parent (--dir), or else on the source
#				tree's disk outside tmpfs: fsync on tmpfs
#				measures nothing. Exits 2 when there is none.
#	device DIR, fstype DIR	the filesystem device and type of DIR
# Needs $srcdir and $builddir; $parent may be empty.
#
# Helpers of the flush benchmarks (bench/atrn.sh; bench/etrn.sh has the
# same code inline). Messages go to stderr prefixed by the script's name.
#
#	free_port		a TCP port nobody listens on at 127.0.0.1
#	listening PORT		true when something listens on PORT
#	wait_listen PORT [PID]	wait up to 20 s for PORT (PID alive)
#	wait_free PORT		wait up to 20 s for PORT to be free
#	median VALUES...	the median (lower middle)
#	now_ns			wall clock in nanoseconds
#	proc_cpu PID		user + system CPU of PID, in clock ticks
#	machine_cpu		"BUSY TOTAL" clock ticks of all CPUs
#	sink_start, sink_stop	a fresh "smtp-sink -u nobody -c
#				127.0.0.1:$sink_port 1000" (sets $sink_pid;
#				its counters go to $W/sink.out)
#	sink_count [sess]	messages (or SMTP sessions) the sink counted
#	sink_idle		wait until nobody is connected to the sink
#	fill PORT [N]		smtp-source -d -s 10 -m N (default $messages)
#				-l $size -f a@x.test -t u@$domain to PORT;
#				sets fill_out to SECONDS or "invalid WHY"
#	wait_flush MODE LOG PORT EXPECT
#				send "ETRN $domain" (tests/tools/etrn-client.py,
#				$ETC) to PORT, follow LOG until the flush is
#				over: MODE odmrd until event=flush-end, MODE
#				postfix until qmgr removed $messages files
#	ctl ARGS...		odmrctl ($CTL) on $O/odmrd.conf
#	odmrd_conf		write $O/odmrd.conf for a fresh store in
#				$O/state ($smtp_port, $odmr_port)
#	odmrd_run		start "$ODMRD -d" on it (sets $odmrd_pid)
#	odmrd_stop		SIGTERM, wait (30 s), report logged errors
#	odmrd_stored		messages in the store (odmrctl --json stats)
#	odmrd_queued		messages queued for $domain
#	bench_postfix_lib	source tests/integration/postfix-lib.sh
#	pf_start, pf_stop	a fresh private Postfix 3.7 in $PF on
#				$pf_port, relaying $domain to the sink with
#				fast flush and defer_transports = smtp (sets
#				$pf_running)
#	pf_queue		"TOTAL DEFERRED" (postqueue -j)
#	pf_wait_deferred	until $messages are deferred (300 s)
#	leg_postfix		Postfix's timed ETRN fast flush of $messages
#				to the sink (bench/etrn.sh's Postfix leg);
#				sets leg_out to "RATE SECONDS FILL - BUSY
#				SESSIONS" or "invalid WHY"
# They use $W (the scratch directory), $messages, $size, $domain,
# $sink_port and, for odmrd and Postfix, $O, $ODMRD, $CTL, $ETC, $PF,
# $pf_port.

# The variables are the caller's, and so are the results:
# shellcheck disable=SC2154,SC2034

# device DIR - the filesystem device DIR lives on
device() {
	df -P "$1" | awk 'NR == 2 { print $1 }'
}

# fstype DIR - the filesystem type of DIR
fstype() {
	stat -f -c %T "$1"
}

# pick_parent - a directory on the source tree's disk that is not tmpfs
pick_parent() {
	_want=$(device "$srcdir")
	for _d in "${TMPDIR:-/tmp}" /var/tmp "$builddir"; do
		[ -d "$_d" ] && [ -w "$_d" ] || continue
		[ "$(fstype "$_d")" = tmpfs ] && continue
		[ "$(device "$_d")" = "$_want" ] || continue
		(cd "$_d" && pwd)
		return 0
	done
	return 1
}

# bench_need_built HINT PROG... - exit 2 naming the first PROG not built
bench_need_built() {
	_hint=$1
	shift
	for _p in "$@"; do
		if [ ! -x "$_p" ]; then
			echo "$(basename "$0"): $_p not built: $_hint" >&2
			exit 2
		fi
	done
}

# bench_begin NAME - the scratch directory $W (and $parent) on a real disk,
# open to Postfix's daemons, with $W/res; no server started yet; stop all
# and clean up on exit (bench_cleanup); $hz and $ncpu
bench_begin() {
	W=$(bench_workdir "$1") || exit $?
	parent=$(dirname "$W")
	# Postfix's daemons run as postfix and must get through to the queue.
	chmod 755 "$W"
	mkdir -p "$W/res"
	odmrd_pid=""
	sink_pid=""
	pf_running=0
	trap bench_cleanup EXIT
	trap 'exit 3' INT TERM
	hz=$(getconf CLK_TCK 2> /dev/null || echo 100)
	ncpu=$(getconf _NPROCESSORS_ONLN 2> /dev/null || echo 1)
}

# bench_workdir NAME - the scratch directory, on a real disk
bench_workdir() {
	if [ -z "$parent" ]; then
		if ! parent=$(pick_parent); then
			echo "$(basename "$0"): no writable directory on $(device "$srcdir") outside tmpfs: use --dir" >&2
			exit 2
		fi
	fi
	if [ "$(fstype "$parent")" = tmpfs ]; then
		echo "$(basename "$0"): $parent is tmpfs: fsync there measures nothing; use --dir" >&2
		exit 2
	fi
	mktemp -d "$parent/$1.XXXXXX" || exit 3
}

## general helpers

# free_port - a TCP port nobody listens on at 127.0.0.1
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# listening PORT - true when something listens on 127.0.0.1:PORT
listening() {
	ss -Hltn "sport = :$1" | grep -q .
}

# wait_listen PORT [PID] - wait up to 20 s for PORT to listen (PID alive)
wait_listen() {
	_i=0
	while [ "$_i" -lt 200 ]; do
		listening "$1" && return 0
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2> /dev/null; then
			return 1
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# wait_free PORT - wait up to 20 s for PORT to stop listening
wait_free() {
	_i=0
	while [ "$_i" -lt 200 ]; do
		listening "$1" || return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# median VALUES... - the median (lower middle) of numbers
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# now_ns - wall clock in nanoseconds
now_ns() {
	date +%s%N
}

# proc_cpu PID - user + system CPU of PID so far, in clock ticks
proc_cpu() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2> /dev/null || echo 0
}

# machine_cpu - "BUSY TOTAL" clock ticks of all CPUs so far
machine_cpu() {
	awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i;
		print t - $5 - $6, t }' /proc/stat
}

## the customer's site: smtp-sink

# sink_start - a fresh smtp-sink with zeroed counters
sink_start() {
	smtp-sink -u nobody -c "127.0.0.1:$sink_port" 1000 > "$W/sink.out" 2> "$W/sink.log" &
	sink_pid=$!
	if ! wait_listen "$sink_port" "$sink_pid"; then
		echo "$(basename "$0"): smtp-sink does not listen: $(tail -3 "$W/sink.log")" >&2
		exit 3
	fi
}

# sink_count [sess] - messages smtp-sink received, or with "sess" the
# SMTP sessions it saw (its last -c counter line)
sink_count() {
	tr '\r' '\n' < "$W/sink.out" | sed -n "s/.*${1:-mesg}=\\([0-9]*\\).*/\\1/p" |
	    tail -1 | grep . || echo 0
}

# sink_idle - wait up to 10 s until nobody is connected to smtp-sink
# (Postfix keeps idle connections cached for 2 s), so that its session
# counter, printed when a session ends, is final
sink_idle() {
	_i=0
	while [ "$_i" -lt 100 ]; do
		ss -Htn state established "( sport = :$sink_port )" | grep -q . || return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

sink_stop() {
	kill -TERM "$sink_pid" 2> /dev/null
	wait "$sink_pid" 2> /dev/null
	sink_pid=""
	wait_free "$sink_port"
}

# fill PORT [N] - N (default $messages) messages for the domain into a
# server; sets fill_out to "SECONDS" or "invalid WHY"
fill() {
	_t0=$(now_ns)
	smtp-source -d -s 10 -m "${2:-$messages}" -l "$size" -f a@x.test \
	    -t "u@$domain" "127.0.0.1:$1" > "$W/source.log" 2>&1
	_rc=$?
	_t1=$(now_ns)
	if [ "$_rc" -ne 0 ]; then
		fill_out="invalid smtp-source exited $_rc: $(tail -2 "$W/source.log" | tr '\n' ' ')"
	else
		fill_out=$(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	fi
}

# wait_flush MODE LOG PORT EXPECT - send ETRN, follow LOG until the
# flush is over; prints "SECONDS STATUS DELIVERED" or "invalid WHY".
# MODE odmrd: until event=flush-end for the domain (STATUS and
# DELIVERED from it); MODE postfix: until qmgr logged "removed" for
# $messages queue files (DELIVERED counts status=sent).
wait_flush() {
	python3 - "$1" "$2" "$3" "$4" "$ETC" "$domain" "$messages" <<'EOF'
import os, re, subprocess, sys, time
mode, log, port, expect, etc, domain, n = sys.argv[1:]
n = int(n)
off = os.path.getsize(log)
t0 = time.monotonic()
r = subprocess.run([sys.executable, etc, "127.0.0.1", port, "ETRN " + domain],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
reply = (r.stdout.strip().splitlines() or ["(no reply)"])[-1]
if not reply.startswith(expect):
    print("invalid ETRN reply: " + reply)
    sys.exit(0)
end_re = re.compile(rb"event=flush-end domain=" + re.escape(domain.encode()) +
                    rb" status=(\S+) .* delivered=(\d+)")
deadline = t0 + 900
removed = sent = 0
buf = b""
with open(log, "rb") as f:
    f.seek(off)
    while True:
        chunk = f.read()
        if not chunk:
            if time.monotonic() > deadline:
                print("invalid no end after 900 s (removed %d, sent %d)" %
                      (removed, sent))
                sys.exit(0)
            time.sleep(0.005)
            continue
        buf += chunk
        lines = buf.split(b"\n")
        buf = lines.pop()
        for l in lines:
            if mode == "odmrd":
                m = end_re.search(l)
                if m:
                    t1 = time.monotonic()
                    print("%.3f %s %s" % (t1 - t0, m.group(1).decode(),
                                          m.group(2).decode()))
                    sys.exit(0)
            else:
                if b" status=sent " in l:
                    sent += 1
                elif l.endswith(b": removed") and b"/qmgr[" in l:
                    removed += 1
                    if removed >= n:
                        t1 = time.monotonic()
                        print("%.3f done %d" % (t1 - t0, sent))
                        sys.exit(0)
EOF
}

## odmrd

# ctl ARGS... - odmrctl on the bench store
ctl() {
	"$CTL" -f "$O/odmrd.conf" "$@"
}

# odmrd_conf - a fresh store and its configuration in $O
odmrd_conf() {
	rm -rf "$O"
	mkdir -p "$O/state"
	chmod 700 "$O/state"
	cat > "$O/odmrd.conf" <<EOF
hostname = bench.odmrd.test
state_dir = $O/state
smtp_listen = 127.0.0.1:$smtp_port
odmr_listen = 127.0.0.1:$odmr_port
log_level = info
max_connections_per_ip = 200
bounce_relay = 127.0.0.1:$(free_port)
EOF
}

# odmrd_run - start odmrd in the foreground (-d), log in $O/odmrd.log
odmrd_run() {
	: > "$O/odmrd.log"
	"$ODMRD" -f "$O/odmrd.conf" -d > "$O/odmrd.log" 2>&1 &
	odmrd_pid=$!
	if ! wait_listen "$smtp_port" "$odmrd_pid" ||
	    ! wait_listen "$odmr_port" "$odmrd_pid"; then
		echo "$(basename "$0"): odmrd does not listen: $(tail -5 "$O/odmrd.log")" >&2
		odmrd_pid=""
		exit 3
	fi
}

odmrd_stop() {
	kill -TERM "$odmrd_pid" 2> /dev/null
	_i=0
	while kill -0 "$odmrd_pid" 2> /dev/null && [ "$_i" -lt 300 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if kill -0 "$odmrd_pid" 2> /dev/null; then
		echo "$(basename "$0"): odmrd did not stop in 30 s after SIGTERM; killing it" >&2
		kill -KILL "$odmrd_pid" 2> /dev/null
	fi
	wait "$odmrd_pid" 2> /dev/null
	odmrd_pid=""
	if grep -qE 'odmrd\[(err|crit|alert|emerg)|panic|assert' "$O/odmrd.log"; then
		echo "$(basename "$0"): odmrd logged errors:" >&2
		grep -E 'odmrd\[(err|crit|alert|emerg)|panic|assert' "$O/odmrd.log" | head -5 >&2
	fi
}

# odmrd_stored - the messages in the store, or "error ..."
odmrd_stored() {
	ctl --json stats 2> "$O/ctl.err" |
	    python3 -c 'import json, sys; print(json.load(sys.stdin)["messages"])' 2> /dev/null ||
	    echo "error: $(tail -1 "$O/ctl.err")"
}

# odmrd_queued - the messages odmrctl lists for the domain
odmrd_queued() {
	ctl --json queue "$domain" 2> "$O/ctl.err" |
	    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["messages"]))' 2> /dev/null ||
	    echo "error: $(tail -1 "$O/ctl.err")"
}

## Postfix 3.7 fast flush (BENCHMARKS.md's private instance)

# require_cmd CMD PACKAGE - what tests/integration/postfix-lib.sh
# expects from tests/tap.sh
require_cmd() {
	command -v "$1" > /dev/null 2>&1 && return 0
	echo "$(basename "$0"): $1 is missing: install the Debian package $2" >&2
	exit 3
}

# bench_postfix_lib - the private instance's functions
bench_postfix_lib() {
	. "$srcdir/tests/integration/postfix-lib.sh"
}

# pf_start - a fresh instance with an empty queue
pf_start() {
	rm -rf "$PF"
	mkdir -p "$PF"
	# shellcheck disable=SC2016
	if ! postfix_setup "$PF" "$pf_port" || ! postfix_conf "$PF" \
	    "relay_domains = $domain" 'fast_flush_domains = $relay_domains' \
	    "transport_maps = inline:{ $domain=smtp:[127.0.0.1]:$sink_port }" \
	    "defer_transports = smtp" \
	    "queue_run_delay = 3600s" "minimal_backoff_time = 3600s" \
	    "maximal_backoff_time = 4000s"; then
		echo "$(basename "$0"): postfix setup failed: $(tail -5 "$PF/start.log")" >&2
		exit 3
	fi
	# A host name without a dot makes Postfix refuse to start.
	case $(postconf -c "$PF/conf" -h myhostname 2> /dev/null) in
	*.*) ;;
	*) postfix_conf "$PF" "myhostname = bench.postfix.test" ;;
	esac
	: > "$PF/maillog"
	if ! postfix_start "$PF"; then
		echo "$(basename "$0"): postfix start failed: $(tail -5 "$PF/start.log")" >&2
		postfix_stop "$PF"
		exit 3
	fi
	pf_running=1
}

pf_stop() {
	postfix_stop "$PF"
	pf_running=0
	if ! wait_free "$pf_port"; then
		echo "$(basename "$0"): Postfix still listens on $pf_port after stop" >&2
		exit 3
	fi
}

# pf_queue - "TOTAL DEFERRED" messages in the queue (postqueue -j)
pf_queue() {
	postqueue -c "$PF/conf" -j 2> /dev/null | python3 -c 'import json, sys
t = d = 0
for l in sys.stdin:
    t += 1
    d += json.loads(l)["queue_name"] == "deferred"
print(t, d)'
}

# pf_wait_deferred - until all N messages are deferred (300 s)
pf_wait_deferred() {
	_i=0
	while [ "$_i" -lt 600 ]; do
		# shellcheck disable=SC2046
		set -- $(pf_queue)
		[ "$1" = "$messages" ] && [ "$2" = "$messages" ] && return 0
		sleep 0.5
		_i=$((_i + 1))
	done
	return 1
}

# leg_postfix - fill, flush, check; sets leg_out to "RATE SECONDS FILL
# - BUSY SESSIONS" or "invalid WHY"
leg_postfix() {
	pf_start
	fill "$pf_port"
	case $fill_out in
	invalid*) leg_out=$fill_out; pf_stop; return ;;
	esac
	_fill=$fill_out
	if ! pf_wait_deferred; then
		leg_out="invalid postqueue shows $(pf_queue) (total, deferred) messages, not $messages deferred"
		pf_stop
		return
	fi
	if [ ! -s "$PF/queue/flush/$(echo "$domain" | tr . _)" ]; then
		leg_out="invalid no fast flush log for $domain in $PF/queue/flush"
		pf_stop
		return
	fi
	sink_start
	sync
	sleep 1
	_m0=$(machine_cpu)
	_out=$(wait_flush postfix "$PF/maillog" "$pf_port" "250 ")
	_m1=$(machine_cpu)
	# the last status=sent lines may reach the log after qmgr's removed
	sleep 0.5
	_sent=$(grep -c 'status=sent ' "$PF/maillog")
	# shellcheck disable=SC2046
	set -- $(pf_queue)
	_q=$1
	sink_idle
	_s=$(sink_count)
	_ss=$(sink_count sess)
	sink_stop
	pf_stop
	case $_out in
	invalid*) leg_out=$_out; return ;;
	esac
	# shellcheck disable=SC2086
	set -- $_out
	if [ "$_sent" != "$messages" ]; then
		leg_out="invalid Postfix logged $_sent status=sent, not $messages"
	elif [ "$_q" != 0 ]; then
		leg_out="invalid postqueue still shows $_q messages"
	elif [ "$_s" != "$messages" ]; then
		leg_out="invalid smtp-sink received $_s messages, not $messages"
	else
		leg_out=$(awk -v n="$messages" -v s="$1" -v f="$_fill" \
		    -v m0="$_m0" -v m1="$_m1" -v ss="$_ss" 'BEGIN {
			split(m0, a, " "); split(m1, b, " ");
			busy = (b[2] > a[2]) ? (b[1] - a[1]) / (b[2] - a[2]) * 100 : 0;
			printf "%.1f %.2f %s - %.0f %s\n", n / s, s, f, busy, ss }')
	fi
}

# stop_all - stop the odmrd, smtp-sink and private Postfix a script started
# ($odmrd_pid, $sink_pid, $pf_running with its instance in $W/pf)
stop_all() {
	for _p in $odmrd_pid $sink_pid; do
		kill -TERM "$_p" 2> /dev/null
		wait "$_p" 2> /dev/null
	done
	odmrd_pid=""
	sink_pid=""
	if [ "$pf_running" -eq 1 ]; then
		postfix -c "$W/pf/conf" stop > /dev/null 2>&1
		pf_running=0
	fi
}

# bench_cleanup - the EXIT trap: stop everything, remove $W unless --keep
bench_cleanup() {
	stop_all
	if [ "$keep" -eq 1 ]; then
		echo "$(basename "$0"): state kept in $W" >&2
	else
		rm -rf "$W"
	fi
}
