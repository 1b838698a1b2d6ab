#!/bin/sh
# NAME
#	etrn.sh - benchmark an ETRN flush: odmrd against Postfix fast flush
#	(tracker issue 5)
# SYNOPSIS
#	sh bench/etrn.sh [--reps N] [--messages N] [--size OCTETS] [--perf]
#	    [--dir DIR] [--keep] [--builddir DIR] [BUILD_DIR]
# DESCRIPTION
#	Times how long a backup MX takes to hand a backlog of one domain to
#	the customer's site after "ETRN etrn.test", in one run, for:
#	  - odmrd (BUILD_DIR/odmr/odmrd -d): a fresh store on a real disk,
#	    the domain etrn.test added with "odmrctl domain add etrn.test
#	    --owner bench --etrn any --route 127.0.0.1:SINKPORT --tls none",
#	    log_level info (the default: event=flush-end is an info line);
#	  - Postfix 3.7 as the backup MX: a private instance
#	    (tests/integration/postfix-lib.sh, the recipe of BENCHMARKS.md)
#	    with relay_domains = etrn.test, fast_flush_domains =
#	    $relay_domains, transport_maps = inline:{
#	    etrn.test=smtp:[127.0.0.1]:SINKPORT } and defer_transports =
#	    smtp (queue_run_delay and the backoff times at an hour, so that
#	    nothing but the ETRN moves the mail); every other setting is
#	    the Postfix default, so its smtp client opens up to 20
#	    connections to the site (smtp_destination_concurrency_limit).
#	The customer's site is Postfix's smtp-sink on 127.0.0.1
#	("smtp-sink -u nobody -c 127.0.0.1:SINKPORT 1000": it accepts and
#	writes nothing), started afresh for every leg.
#
#	Every leg, untimed first: the server starts with an empty queue;
#	smtp-source -d -s 10 -m N -l SIZE -f a@x.test -t u@etrn.test fills
#	it over its MX port with the same N messages (default 10,000 of
#	4,096 octets) for both servers; the fill must be complete (odmrd:
#	"odmrctl --json stats" counts N messages; Postfix: "postqueue -j"
#	shows N messages, all in the deferred queue, and the fast flush
#	log of etrn.test exists); then sync and one second of rest.
#
#	Timed: from just before tests/tools/etrn-client.py connects to send
#	"ETRN etrn.test" until
#	  - odmrd logs "event=flush-end domain=etrn.test" (the reply must
#	    be "253 OK, N pending messages ..."), or
#	  - Postfix's qmgr has logged "removed" for N queue files (the reply
#	    must be "250 Queuing started"). Postfix 3.7's ETRN delivers the
#	    mail that defer_transports held, as the checks below show: no
#	    reload and no "postqueue -s" is needed;
#	both logs are followed by a small python loop that reads what was
#	appended every 5 ms. Afterwards, untimed, the leg is valid only
#	when everything arrived: odmrd's flush-end says status=done and
#	delivered=N, and "odmrctl --json queue etrn.test" lists no message;
#	Postfix logged N status=sent and "postqueue -j" shows an empty
#	queue; and smtp-sink counted N messages (its -c counters) in
#	both cases. The figure is N / seconds.
#
#	The legs alternate (odmrd, Postfix, odmrd, ...), REPS rounds
#	(default 3). The table shows each round, the medians and the ratio
#	odmrd / Postfix of the medians (higher is odmrd faster); the target
#	is 3x. Also shown: the CPU the odmrd process used during its flush
#	(/proc/PID/stat), how busy the whole machine was during each
#	flush (/proc/stat), to tell CPU-bound from waiting, and how many
#	SMTP sessions smtp-sink saw (read once no connection is left:
#	Postfix keeps idle ones cached for 2 s).
#
#	--perf adds one more, unreported odmrd leg at the end under
#	"perf record -g" and writes the top of "perf report" to
#	perf-etrn.txt (call graph) and perf-etrn.txt.flat (symbols) in the
#	current directory.
#
#	The state (odmrd's store, Postfix's queue) lives in a scratch
#	directory on the source tree's disk and not on tmpfs
#	(bench/lib.sh); it is removed at the end unless --keep.
#
#	It must run as root: Postfix and smtp-sink -u nobody need it.
#
#	The programs come from BUILD_DIR or --builddir (default:
#	$top_builddir, else the current directory): odmr/odmrd and
#	odmr/odmrctl. Build them without sanitizers.
# DIAGNOSTICS
#	Per-leg lines go to stderr, the markdown tables to stdout. Exit
#	status 0 when the run completed (whether or not the target was
#	met: the table says), 2 on a usage error, 3 when a server could not
#	be started.

set -u

reps=${REPS:-3}
messages=10000
size=4096
do_perf=0
keep=0
builddir=${top_builddir:-.}
parent=""
domain=etrn.test
target=3

while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2; shift ;;
	--messages) messages=$2; shift ;;
	--size) size=$2; shift ;;
	--perf) do_perf=1 ;;
	--dir) parent=$2; shift ;;
	--keep) keep=1 ;;
	--builddir) builddir=$2; shift ;;
	-h|--help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0 ;;
	-*)
		echo "etrn.sh: unknown option $1" >&2
		exit 2 ;;
	*) builddir=$1 ;;
	esac
	shift
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
if ! builddir=$(cd "$builddir" 2> /dev/null && pwd); then
	echo "etrn.sh: no build directory $builddir" >&2
	exit 2
fi
ODMRD=$builddir/odmr/odmrd
CTL=$builddir/odmr/odmrctl
ETC=$srcdir/tests/tools/etrn-client.py

if [ "$(id -u)" -ne 0 ]; then
	echo "etrn.sh: run it as root: the private Postfix instance needs it (sudo sh $0 ...)" >&2
	exit 2
fi
PATH=$PATH:/usr/sbin:/sbin
for p in smtp-source smtp-sink postfix postconf postqueue python3 ss; do
	if ! command -v "$p" > /dev/null 2>&1; then
		echo "etrn.sh: $p not found (apt-get install postfix python3 iproute2)" >&2
		exit 2
	fi
done
if [ "$do_perf" -eq 1 ] && ! command -v perf > /dev/null 2>&1; then
	echo "etrn.sh: --perf needs perf (apt-get install linux-perf)" >&2
	exit 2
fi
. "$srcdir/bench/lib.sh"
bench_need_built "build odmrd in $builddir, or give the build directory" "$ODMRD" "$CTL"
bench_begin odmr-etrn-bench	# $W, $parent, traps, $hz, $ncpu

sink_port=$(free_port)

## odmrd

smtp_port=$(free_port)
odmr_port=$(free_port)
O=$W/odmrd

# odmrd_start - a fresh store whose domain routes to the sink; odmrd up
odmrd_start() {
	odmrd_conf
	if ! ctl domain add "$domain" --owner bench --etrn any \
	    --route "127.0.0.1:$sink_port" --tls none > "$O/ctl.log" 2>&1; then
		echo "etrn.sh: odmrctl domain add failed: $(tail -3 "$O/ctl.log")" >&2
		exit 3
	fi
	odmrd_run
}

# leg_odmrd PERF - fill, flush, check; sets leg_out to
# "RATE SECONDS FILL CPU BUSY" or "invalid WHY"
leg_odmrd() {
	odmrd_start
	fill "$smtp_port"
	case $fill_out in
	invalid*) leg_out=$fill_out; odmrd_stop; return ;;
	esac
	_fill=$fill_out
	_n=$(odmrd_stored)
	if [ "$_n" != "$messages" ]; then
		leg_out="invalid the store holds $_n messages after the fill, not $messages"
		odmrd_stop
		return
	fi
	sink_start
	sync
	sleep 1
	_perfpid=""
	if [ -n "$1" ]; then
		perf record -g -o "$W/perf.data" -p "$odmrd_pid" > "$W/perf.log" 2>&1 &
		_perfpid=$!
		sleep 0.5
	fi
	_c0=$(proc_cpu "$odmrd_pid")
	_m0=$(machine_cpu)
	_out=$(wait_flush odmrd "$O/odmrd.log" "$smtp_port" "253 OK, $messages pending")
	_m1=$(machine_cpu)
	_c1=$(proc_cpu "$odmrd_pid")
	if [ -n "$_perfpid" ]; then
		kill -INT "$_perfpid" 2> /dev/null
		wait "$_perfpid"
		perf report -i "$W/perf.data" --stdio --no-children 2> /dev/null |
		    grep -v '^$' | head -120 > "$1"
		perf report -i "$W/perf.data" --stdio --no-children --sort sym -g none \
		    2> /dev/null | grep -v '^#' | grep -v '^$' | head -50 > "$1.flat"
	fi
	_q=$(odmrd_queued)
	sink_idle
	_s=$(sink_count)
	_ss=$(sink_count sess)
	sink_stop
	odmrd_stop
	case $_out in
	invalid*) leg_out=$_out; return ;;
	esac
	# shellcheck disable=SC2086
	set -- $_out
	if [ "$2" != "done" ] || [ "$3" != "$messages" ]; then
		leg_out="invalid flush-end status=$2 delivered=$3, not done and $messages"
	elif [ "$_q" != 0 ]; then
		leg_out="invalid odmrctl queue still lists $_q messages"
	elif [ "$_s" != "$messages" ]; then
		leg_out="invalid smtp-sink received $_s messages, not $messages"
	else
		leg_out=$(awk -v n="$messages" -v s="$1" -v f="$_fill" -v c0="$_c0" \
		    -v c1="$_c1" -v hz="$hz" -v m0="$_m0" -v m1="$_m1" -v ss="$_ss" 'BEGIN {
			split(m0, a, " "); split(m1, b, " ");
			busy = (b[2] > a[2]) ? (b[1] - a[1]) / (b[2] - a[2]) * 100 : 0;
			printf "%.1f %.2f %s %.0f %.0f %s\n", n / s, s, f,
			    (c1 - c0) / hz / n * 1e6, busy, ss }')
	fi
}

## Postfix

pf_port=$(free_port)
PF=$W/pf
. "$srcdir/tests/integration/postfix-lib.sh"

## the run

echo "etrn.sh: state in $W ($(fstype "$parent") on $(device "$parent")); $messages messages of $size octets for $domain; $reps rounds; $ncpu CPUs" >&2

r=1
while [ "$r" -le "$reps" ]; do
	for srv in odmrd postfix; do
		case $srv in
		odmrd) leg_odmrd "" ;;
		postfix) leg_postfix ;;
		esac
		case $leg_out in
		invalid*)
			echo "$srv round $r: INVALID: ${leg_out#invalid }" >&2
			echo "invalid" >> "$W/res/$srv.rows" ;;
		*)
			# shellcheck disable=SC2086
			set -- $leg_out
			if [ "$srv" = odmrd ]; then
				echo "$srv round $r: fill $3 s; ETRN to flush-end: $messages msgs in $2 s = $1 msg/s; odmrd CPU $4 µs/msg; machine $5% busy; sink sessions $6" >&2
			else
				echo "$srv round $r: fill $3 s; ETRN to queue empty: $messages msgs in $2 s = $1 msg/s; machine $5% busy; sink sessions $6" >&2
			fi
			echo "$1" >> "$W/res/$srv"
			echo "$2" >> "$W/res/$srv.s"
			echo "$4" >> "$W/res/$srv.cpu"
			echo "$5" >> "$W/res/$srv.busy"
			echo "$6" >> "$W/res/$srv.sess"
			echo "$2 s = $1" >> "$W/res/$srv.rows" ;;
		esac
	done
	r=$((r + 1))
done

if [ "$do_perf" -eq 1 ]; then
	leg_odmrd "$PWD/perf-etrn.txt"
	case $leg_out in
	invalid*) echo "odmrd under perf (not counted): INVALID: ${leg_out#invalid }" >&2 ;;
	*)
		# shellcheck disable=SC2086
		set -- $leg_out
		echo "odmrd under perf (not counted): $messages msgs in $2 s = $1 msg/s; report in $PWD/perf-etrn.txt{,.flat}" >&2 ;;
	esac
fi

# shellcheck disable=SC2046
mo=$(median $(cat "$W/res/odmrd" 2> /dev/null))
# shellcheck disable=SC2046
mp=$(median $(cat "$W/res/postfix" 2> /dev/null))
# shellcheck disable=SC2046
so=$(median $(cat "$W/res/odmrd.s" 2> /dev/null))
# shellcheck disable=SC2046
sp=$(median $(cat "$W/res/postfix.s" 2> /dev/null))
ratio=$(awk -v a="$mo" -v b="$mp" 'BEGIN { if (a == "" || b == "" || b == 0) print "—"; else printf "%.2f", a / b }')
verdict=$(awk -v x="$ratio" -v t="$target" 'BEGIN { if (x == "—") print "—"; else if (x >= t) print "PASS"; else print "FAIL" }')

echo
echo "ETRN $domain: $messages messages of $size octets flushed to smtp-sink on 127.0.0.1; seconds from ETRN to the end of the flush = messages/s:"
echo
printf '| server |'
r=1; while [ "$r" -le "$reps" ]; do printf ' round %s |' "$r"; r=$((r + 1)); done
echo ' median |'
printf '|---|'
r=1; while [ "$r" -le "$reps" ]; do printf -- '---:|'; r=$((r + 1)); done
echo '---:|'
for srv in odmrd postfix; do
	if [ "$srv" = odmrd ]; then
		printf '| odmrd (one connection) |'; m=$mo; s=$so
	else
		printf '| Postfix 3.7 fast flush (defaults) |'; m=$mp; s=$sp
	fi
	while IFS= read -r row; do printf ' %s |' "$row"; done < "$W/res/$srv.rows"
	if [ -n "$m" ]; then echo " **$s s = $m** |"; else echo " invalid |"; fi
done
echo
# shellcheck disable=SC2046
echo "odmrd CPU during the flush: $(median $(cat "$W/res/odmrd.cpu" 2> /dev/null)) µs per message (median); machine busy during the flush (median, $ncpu CPUs): odmrd $(median $(cat "$W/res/odmrd.busy" 2> /dev/null))%, Postfix $(median $(cat "$W/res/postfix.busy" 2> /dev/null))%; SMTP sessions at the sink (median): odmrd $(median $(cat "$W/res/odmrd.sess" 2> /dev/null)), Postfix $(median $(cat "$W/res/postfix.sess" 2> /dev/null))"
echo
echo "odmrd / Postfix: **${ratio}×** (target ≥ ${target}×): $verdict"
exit 0
