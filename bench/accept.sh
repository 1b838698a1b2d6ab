#!/bin/sh
# NAME
#	accept.sh - benchmark accepting mail over SMTP: odmrd, Postfix, smtp-sink
# SYNOPSIS
#	sh bench/accept.sh [--reps N] [--conc "1 10 50"] [--mode conn|session|both]
#	    [--servers odmrd,postfix,sink] [--messages N] [--duration S]
#	    [--conns K] [--perf] [--dir DIR] [--keep] [--builddir DIR] [BUILD_DIR]
# DESCRIPTION
#	Sends 4 KiB messages with smtp-source at client concurrency 1, 10
#	and 50, in one run, to three servers, each on 127.0.0.1 at a free
#	port:
#	  - odmrd (BUILD_DIR/odmr/odmrd -d), in a fresh state directory for
#	    every repetition, with the customer domain example.net created
#	    first (odmrctl domain add); after each repetition "odmrctl --json
#	    stats" must show exactly the messages sent, else the repetition
#	    is invalid;
#	  - Postfix 3.7 "accept and hold" (a private instance: own config,
#	    queue and data directories, every message put on hold by
#	    check_recipient_access, normal durability), as BENCHMARKS.md
#	    describes; stopped and emptied between repetitions, and the hold
#	    queue must hold exactly the messages sent;
#	  - smtp-sink, which writes nothing to disk: the ceiling.
#	Every repetition times one smtp-source run (wall clock) of N
#	messages: the figure is N / seconds. The repetitions of the three
#	servers alternate, so that load from elsewhere is shared out. The table shows the median of
#	REPS repetitions (default 3) per server, mode and concurrency, the
#	ratios odmrd/Postfix and odmrd/smtp-sink, and the targets: odmrd
#	reaches at least 2x Postfix at concurrency 1, 4x at 10 and 50, and
#	at least 50% of smtp-sink at 50.
#
#	Modes: "conn" opens one connection per message (smtp-source without
#	-d: HELO, MAIL, RCPT, DATA, QUIT every time, as most MTAs that send
#	to an MX do); "session" keeps one connection per client and sends
#	its messages one after another on it (smtp-source -d). Default both.
#
#	N is calibrated per server, mode and concurrency so that each
#	repetition lasts about DURATION seconds (default 5): a short
#	unreported run measures the rate first. --messages N fixes N for
#	every leg instead (so do the environment variables N_ODMRD,
#	N_POSTFIX, N_SINK for one server).
#
#	At the end, odmrd is started once more and bench/idle-conns.py opens
#	K (default 1000, --conns; 0 skips it) idle SMTP connections to it
#	and reports odmrd's resident memory per connection (target: under
#	64 KiB).
#
#	--perf records odmrd with "perf record -g" during the first
#	concurrency-50 repetition of each mode and writes the top of
#	"perf report" to perf-MODE.txt in the current directory.
#
#	The state (odmrd's store, Postfix's queue) lives in a scratch
#	directory on the source tree's disk and not on tmpfs, whose fsync
#	costs nothing; it is removed at the end unless --keep.
#
#	It must run as root: Postfix needs it.
#
#	The programs come from BUILD_DIR or --builddir (default:
#	$top_builddir, else the current directory): odmr/odmrd and
#	odmr/odmrctl. Build them without sanitizers.
# DIAGNOSTICS
#	Per-repetition lines go to stderr, the markdown tables to stdout.
#	Exit status 0 when the run completed (whether or not the targets
#	were met: the table says), 2 on a usage error, 3 when a server could
#	not be started or stopped.

set -u

reps=${REPS:-3}
concs="1 10 50"
modes="conn session"
servers="odmrd postfix sink"
messages=""
duration=5
conns=1000
do_perf=0
keep=0
builddir=${top_builddir:-.}
parent=""
size=4096

while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2; shift ;;
	--conc) concs=$2; shift ;;
	--mode)
		case $2 in
		conn|session) modes=$2 ;;
		both) modes="conn session" ;;
		*) echo "accept.sh: --mode conn, session or both" >&2; exit 2 ;;
		esac
		shift ;;
	--servers) servers=$(echo "$2" | tr ',' ' '); shift ;;
	--messages) messages=$2; shift ;;
	--duration) duration=$2; shift ;;
	--conns) conns=$2; shift ;;
	--perf) do_perf=1 ;;
	--dir) parent=$2; shift ;;
	--keep) keep=1 ;;
	--builddir) builddir=$2; shift ;;
	-h|--help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0 ;;
	-*)
		echo "accept.sh: unknown option $1" >&2
		exit 2 ;;
	*) builddir=$1 ;;
	esac
	shift
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
ODMRD=$builddir/odmr/odmrd
CTL=$builddir/odmr/odmrctl
IDLE=$srcdir/bench/idle-conns.py

has() {
	case " $servers " in *" $1 "*) return 0 ;; esac
	return 1
}

for s in $servers; do
	case $s in
	odmrd|postfix|sink) ;;
	*) echo "accept.sh: unknown server $s (odmrd, postfix, sink)" >&2; exit 2 ;;
	esac
done

if [ "$(id -u)" -ne 0 ]; then
	echo "accept.sh: run it as root: the private Postfix instance needs it (sudo sh $0 ...)" >&2
	exit 2
fi
for p in smtp-source smtp-sink postfix postconf postsuper python3 ss; do
	if ! command -v "$p" > /dev/null 2>&1 && [ ! -x "/usr/sbin/$p" ]; then
		echo "accept.sh: $p not found (apt-get install postfix iproute2 python3)" >&2
		exit 2
	fi
done
PATH=$PATH:/usr/sbin:/sbin
. "$srcdir/bench/lib.sh"
if has odmrd; then
	bench_need_built "build odmrd in $builddir, give the build directory, or use --servers postfix,sink" "$ODMRD" "$CTL"
fi
bench_begin odmr-accept-bench	# $W, $parent, stop_all and cleanup on exit

# ratio A B - A / B with two decimals, "—" when either is missing
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "" || b == "" || b == 0) print "—"; else printf "%.2f", a / b }'
}

## odmrd

odmrd_port=$(free_port)
odmrd_port2=$(free_port)

# odmrd_start - a fresh store with example.net, odmrd in the foreground
odmrd_start() {
	rm -rf "$W/odmrd"
	mkdir -p "$W/odmrd/state"
	chmod 700 "$W/odmrd/state"
	cat > "$W/odmrd/odmrd.conf" <<EOF
hostname = bench.odmrd.test
state_dir = $W/odmrd/state
smtp_listen = 127.0.0.1:$odmrd_port
odmr_listen = 127.0.0.1:$odmrd_port2
log_level = warn
max_connections = 2000
max_connections_per_ip = 2000
EOF
	if ! "$CTL" -f "$W/odmrd/odmrd.conf" domain add example.net --owner bench \
	    > "$W/odmrd/ctl.log" 2>&1; then
		echo "accept.sh: odmrctl domain add failed: $(tail -3 "$W/odmrd/ctl.log")" >&2
		exit 3
	fi
	# Enough descriptors for the idle-connection test.
	# shellcheck disable=SC3045
	ulimit -n 8192 2> /dev/null || ulimit -n 4096 2> /dev/null
	: > "$W/odmrd/odmrd.log"
	"$ODMRD" -f "$W/odmrd/odmrd.conf" -d > "$W/odmrd/odmrd.log" 2>&1 &
	odmrd_pid=$!
	_i=0
	while [ "$_i" -lt 200 ]; do
		grep -q 'event=ready' "$W/odmrd/odmrd.log" && break
		listening "$odmrd_port" && break
		if ! kill -0 "$odmrd_pid" 2> /dev/null; then
			echo "accept.sh: odmrd exited at start: $(tail -5 "$W/odmrd/odmrd.log")" >&2
			odmrd_pid=""
			exit 3
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	if ! wait_listen "$odmrd_port" "$odmrd_pid"; then
		echo "accept.sh: odmrd does not listen on $odmrd_port: $(tail -5 "$W/odmrd/odmrd.log")" >&2
		exit 3
	fi
}

# odmrd_count - the messages in odmrd's store
odmrd_count() {
	"$CTL" -f "$W/odmrd/odmrd.conf" --json stats 2> "$W/odmrd/ctl.err" |
	    python3 -c 'import json, sys; print(json.load(sys.stdin)["messages"])' 2> /dev/null ||
	    echo "error: $(tail -1 "$W/odmrd/ctl.err")"
}

odmrd_stop() {
	kill -TERM "$odmrd_pid" 2> /dev/null
	_i=0
	while kill -0 "$odmrd_pid" 2> /dev/null && [ "$_i" -lt 300 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if kill -0 "$odmrd_pid" 2> /dev/null; then
		echo "accept.sh: odmrd did not stop in 30 s after SIGTERM; killing it" >&2
		kill -KILL "$odmrd_pid" 2> /dev/null
	fi
	wait "$odmrd_pid" 2> /dev/null
	odmrd_pid=""
	if grep -qiE 'level=(error|crit|fatal)|panic|assert' "$W/odmrd/odmrd.log"; then
		echo "accept.sh: odmrd logged errors:" >&2
		grep -iE 'level=(error|crit|fatal)|panic|assert' "$W/odmrd/odmrd.log" | head -5 >&2
	fi
}

## Postfix, accept and hold

pf_port=$(free_port)
pf_sinkport=$(free_port)
# the private instance comes from the tests' postfix-lib.sh, which
# needs tap.sh's require_cmd: the bench's own says what is missing
require_cmd() {
	command -v "$1" > /dev/null 2>&1 && return 0
	echo "accept.sh: $1 is missing: install the Debian package $2" >&2
	exit 3
}
. "$srcdir/tests/integration/postfix-lib.sh"
PF=$W/pf/conf
PQ=$W/pf/queue

# pf_setup - the private Postfix instance of BENCHMARKS.md, hold variant
pf_setup() {
	mkdir -p "$W/pf"
	if ! postfix_setup "$W/pf" "$pf_port" || ! postfix_conf "$W/pf" \
	    "relay_domains = example.net" "fast_flush_domains = example.net" \
	    "transport_maps = inline:{ example.net=smtp:[127.0.0.1]:$pf_sinkport }" \
	    "queue_run_delay = 3600s" "minimal_backoff_time = 3600s" \
	    "maximal_backoff_time = 4000s" \
	    "smtpd_recipient_restrictions = check_recipient_access inline:{ example.net=HOLD }"; then
		echo "accept.sh: postfix setup failed: $(tail -5 "$W/pf/start.log")" >&2
		exit 3
	fi
	# A host name without a dot makes Postfix refuse to start.
	case $(postconf -c "$PF" -h myhostname 2> /dev/null) in
	*.*) ;;
	*) postfix_conf "$W/pf" "myhostname = bench.postfix.test" ;;
	esac
}

pf_start() {
	if ! postfix_start "$W/pf"; then
		echo "accept.sh: postfix start failed: $(tail -5 "$W/pf/start.log")" >&2
		exit 3
	fi
	pf_running=1
}

# pf_count - the messages in the hold queue
pf_count() {
	find "$PQ/hold" -type f | wc -l
}

# pf_stop - stop Postfix and empty its queue
pf_stop() {
	postfix -c "$PF" stop > /dev/null 2>&1
	pf_running=0
	if ! wait_free "$pf_port"; then
		echo "accept.sh: Postfix still listens on $pf_port after stop" >&2
		exit 3
	fi
	postsuper -c "$PF" -d ALL > /dev/null 2>&1
}

## smtp-sink

sink_port=$(free_port)

sink_start() {
	smtp-sink -u nobody -c "127.0.0.1:$sink_port" 1000 > /dev/null 2> "$W/sink.log" &
	sink_pid=$!
	if ! wait_listen "$sink_port" "$sink_pid"; then
		echo "accept.sh: smtp-sink does not listen: $(tail -3 "$W/sink.log")" >&2
		exit 3
	fi
}

## one repetition

# leg SERVER MODE C N PERF - start SERVER fresh, send N messages at
# concurrency C, stop it; sets leg_out to "RATE SECONDS STORED" or to
# "invalid WHY". (Not run in a subshell, so that an interrupt stops the
# servers.)
leg() {
	_srv=$1 _mode=$2 _c=$3 _n=$4 _perf=$5
	_d=""
	[ "$_mode" = session ] && _d=-d
	case $_srv in
	odmrd) odmrd_start; _port=$odmrd_port ;;
	postfix) pf_start; _port=$pf_port ;;
	sink) sink_start; _port=$sink_port ;;
	esac
	_perfpid=""
	if [ -n "$_perf" ]; then
		perf record -g -o "$W/perf.data" -p "$odmrd_pid" -- sleep "$duration" \
		    > "$W/perf.log" 2>&1 &
		_perfpid=$!
		sleep 0.2
	fi
	_t0=$(now_ns)
	# shellcheck disable=SC2086
	smtp-source $_d -s "$_c" -m "$_n" -l "$size" -f a@x.test \
	    -t u@example.net "127.0.0.1:$_port" > "$W/source.log" 2>&1
	_rc=$?
	_t1=$(now_ns)
	_stored="-"
	case $_srv in
	odmrd) _stored=$(odmrd_count) ;;
	postfix) _stored=$(pf_count) ;;
	esac
	if [ -n "$_perfpid" ]; then
		wait "$_perfpid"
		perf report -i "$W/perf.data" --stdio --no-children 2> /dev/null |
		    grep -v '^$' | head -80 > "$_perf"
		perf report -i "$W/perf.data" --stdio --no-children --sort sym -g none \
		    2> /dev/null | grep -v '^#' | grep -v '^$' | head -40 > "$_perf.flat"
	fi
	case $_srv in
	odmrd) odmrd_stop ;;
	postfix) pf_stop ;;
	sink) sink_stop ;;
	esac
	if [ "$_rc" -ne 0 ]; then
		leg_out="invalid smtp-source exited $_rc: $(tail -2 "$W/source.log" | tr '\n' ' ')"
	elif [ "$_stored" != "-" ] && [ "$_stored" != "$_n" ]; then
		leg_out="invalid the server holds $_stored messages, not $_n"
	else
		leg_out=$(awk -v n="$_n" -v a="$_t0" -v b="$_t1" -v st="$_stored" \
		    'BEGIN { s = (b - a) / 1e9; printf "%.1f %.2f %s\n", n / s, s, st }')
	fi
}

# calibrate SERVER MODE C - sets cal_n to N for a repetition of about
# DURATION seconds, from an unreported run
calibrate() {
	cal_n=$((20 * $3))
	[ "$1" = postfix ] || cal_n=$((100 * $3))
	[ "$cal_n" -lt 200 ] && cal_n=200
	while :; do
		leg "$1" "$2" "$3" "$cal_n" ""
		case $leg_out in
		invalid*)
			echo "accept.sh: calibration of $1 $2 c=$3 failed: $leg_out" >&2
			return ;;
		esac
		# shellcheck disable=SC2086
		set -- "$1" "$2" "$3" $leg_out
		echo "$1 $2 c=$3 calibration: $cal_n msgs in $5 s = $4 msg/s" >&2
		# Too short to trust: again, long enough for a second and a half.
		if awk -v s="$5" 'BEGIN { exit !(s < 1) }' && [ "$cal_n" -lt 200000 ]; then
			cal_n=$(awk -v n="$cal_n" -v s="$5" 'BEGIN {
				f = (s > 0) ? 1.5 / s : 10; if (f > 10) f = 10;
				if (f < 2) f = 2; print int(n * f / 100 + 1) * 100 }')
			continue
		fi
		cal_n=$(awk -v r="$4" -v d="$duration" 'BEGIN {
			n = r * d * 1.2; n = int((n + 99) / 100) * 100;
			if (n < 200) n = 200; print n }')
		return
	done
}

## the run

has postfix && pf_setup

echo "accept.sh: state in $W ($(fstype "$parent") on $(device "$parent")); servers: $servers; modes: $modes; concurrency: $concs; $reps repetitions of ${duration} s" >&2

# The repetitions of the three servers alternate (odmrd, Postfix, sink,
# odmrd, ...), so that a burst of load from elsewhere on the machine
# does not fall on one server only.
for mode in $modes; do
	for c in $concs; do
		for srv in $servers; do
			case $srv in
			odmrd) n=${N_ODMRD:-$messages} ;;
			postfix) n=${N_POSTFIX:-$messages} ;;
			sink) n=${N_SINK:-$messages} ;;
			esac
			if [ -z "$n" ]; then
				calibrate "$srv" "$mode" "$c"
				n=$cal_n
			fi
			echo "$n" > "$W/res/$srv.$mode.$c.n"
			: > "$W/res/$srv.$mode.$c"
			: > "$W/res/$srv.$mode.$c.bad"
		done
		r=1
		while [ "$r" -le "$reps" ]; do
			for srv in $servers; do
				n=$(cat "$W/res/$srv.$mode.$c.n")
				pf=""
				if [ "$do_perf" -eq 1 ] && [ "$srv" = odmrd ] &&
				    [ "$c" = 50 ] && [ "$r" -eq 1 ]; then
					pf=$PWD/perf-$mode.txt
				fi
				leg "$srv" "$mode" "$c" "$n" "$pf"
				out=$leg_out
				case $out in
				invalid*)
					echo "$srv $mode c=$c rep $r: N=$n: INVALID: ${out#invalid }" >&2
					echo "$out" >> "$W/res/$srv.$mode.$c.bad" ;;
				*)
					# shellcheck disable=SC2086
					set -- $out
					echo "$srv $mode c=$c rep $r: $n msgs in $2 s = $1 msg/s (stored: $3)" >&2
					echo "$1" >> "$W/res/$srv.$mode.$c" ;;
				esac
			done
			r=$((r + 1))
		done
	done
done

# cell SRV MODE C - the median rate, or "" when no repetition was valid
cell() {
	# shellcheck disable=SC2046
	median $(cat "$W/res/$1.$2.$3" 2> /dev/null)
}

# show SRV MODE C - the median for the table, flagged when reps failed
show() {
	has "$1" || { echo "—"; return; }
	_v=$(cell "$1" "$2" "$3")
	_bad=$(wc -l < "$W/res/$1.$2.$3.bad")
	if [ -z "$_v" ]; then
		echo "invalid"
	elif [ "$_bad" -gt 0 ]; then
		echo "$_v ($_bad invalid)"
	else
		echo "$_v"
	fi
}

verdict() {
	if [ "$1" = "—" ] || [ -z "$1" ]; then echo "—"; return; fi
	if awk -v x="$1" -v g="$2" 'BEGIN { exit !(x >= g) }'; then echo PASS; else echo FAIL; fi
}

for mode in $modes; do
	echo
	if [ "$mode" = conn ]; then
		echo "One connection per message (smtp-source without -d), $size-byte messages, messages/s, median of $reps:"
	else
		echo "One connection per client session (smtp-source -d), $size-byte messages, messages/s, median of $reps:"
	fi
	echo
	echo "| concurrency | N odmrd / postfix / sink | odmrd | postfix | sink | odmrd/postfix | odmrd/sink | target | verdict |"
	echo "|---:|---|---:|---:|---:|---:|---:|---|---|"
	for c in $concs; do
		ns=""
		for srv in odmrd postfix sink; do
			if has "$srv"; then ns="$ns / $(cat "$W/res/$srv.$mode.$c.n")"; else ns="$ns / —"; fi
		done
		ns=${ns# / }
		o=$(cell odmrd "$mode" "$c"); p=$(cell postfix "$mode" "$c"); s=$(cell sink "$mode" "$c")
		rp=$(ratio "$o" "$p"); rs=$(ratio "$o" "$s")
		case $c in
		1) tgt="≥ 2× Postfix"; v=$(verdict "$rp" 2) ;;
		50) tgt="≥ 4× Postfix, ≥ 0.5× sink"
			v1=$(verdict "$rp" 4); v2=$(verdict "$rs" 0.5)
			if [ "$v1" = "—" ] || [ "$v2" = "—" ]; then v="—"
			elif [ "$v1" = PASS ] && [ "$v2" = PASS ]; then v=PASS
			else v=FAIL; fi ;;
		*) tgt="≥ 4× Postfix"; v=$(verdict "$rp" 4) ;;
		esac
		echo "| $c | $ns | $(show odmrd "$mode" "$c") | $(show postfix "$mode" "$c") | $(show sink "$mode" "$c") | ${rp}× | ${rs}× | $tgt | $v |"
	done
done

if has odmrd && [ "$conns" -gt 0 ]; then
	echo
	odmrd_start
	python3 "$IDLE" --host 127.0.0.1 --port "$odmrd_port" --pid "$odmrd_pid" \
	    --conf "$W/odmrd/odmrd.conf" -k "$conns" --ehlo > "$W/idle.out" 2> "$W/idle.err"
	rc=$?
	cat "$W/idle.err" >&2
	if [ "$rc" -eq 0 ]; then
		cat "$W/idle.out"
	else
		echo "memory: idle-conns.py failed (exit $rc)"
	fi
	odmrd_stop
fi
exit 0
