#!/bin/sh
# NAME
#	fetch.sh - benchmark collecting a queue: odmr-fetch against
#	fetchmail --protocol ODMR (tracker issue 7)
# SYNOPSIS
#	sh bench/fetch.sh [--reps N] [--messages N] [--size OCTETS]
#	    [--dir DIR] [--keep] [--builddir DIR] [BUILD_DIR]
# DESCRIPTION
#	In one run, against one odmrd (BUILD_DIR/odmr/odmrd -d, a fresh
#	store on a real disk, the customer domain bench.example owned by
#	the account bench), and the same local smtp-sink:
#	  - the queue of bench.example is filled with N (default 2,000)
#	    messages of SIZE (default 4,096) octets by smtp-source, over
#	    odmrd's MX port; "odmrctl --json queue bench.example" must then
#	    list exactly N messages, else the repetition is invalid;
#	  - (a) odmr-fetch --tls none --domains bench.example --deliver-to
#	    the sink collects them, or (b) fetchmail --protocol ODMR
#	    (fetchdomains bench.example, smtphost the sink) does; both
#	    authenticate on the ODMR port without TLS (fetchmail 6.4 speaks
#	    no STARTTLS there), so the two do the same work;
#	  - the time is the client's wall clock, from start to exit; the
#	    client must exit 0 and the queue must be empty afterwards, else
#	    the repetition is invalid. The figure is N / seconds.
#	The queue is refilled before every run, and the two clients
#	alternate (odmr-fetch, fetchmail, odmr-fetch, ...) so that load
#	from elsewhere on the machine falls on both. The table shows each
#	repetition, the median of REPS (default 3) and the ratio
#	odmr-fetch / fetchmail; the target is 30x.
#
#	The state lives in a scratch directory on the source tree's disk,
#	not on tmpfs (bench/lib.sh), and is removed at the end unless
#	--keep. It runs as root (smtp-sink -u nobody).
#
#	The programs come from BUILD_DIR or --builddir (default:
#	$top_builddir, else the current directory): odmr/odmrd,
#	odmr/odmrctl and turn/odmr-fetch. Build them without sanitizers.
# DIAGNOSTICS
#	Per-run lines go to stderr, the markdown table to stdout. Exit
#	status 0 when the run completed (whether or not the target was
#	met: the table says), 2 on a usage error, 3 when a program could
#	not be started.

set -u

reps=${REPS:-3}
messages=2000
size=4096
keep=0
builddir=${top_builddir:-.}
parent=""

while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2; shift ;;
	--messages) messages=$2; shift ;;
	--size) size=$2; shift ;;
	--dir) parent=$2; shift ;;
	--keep) keep=1 ;;
	--builddir) builddir=$2; shift ;;
	-h|--help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0 ;;
	-*)
		echo "fetch.sh: unknown option $1" >&2
		exit 2 ;;
	*) builddir=$1 ;;
	esac
	shift
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "$builddir" && pwd)
ODMRD=$builddir/odmr/odmrd
CTL=$builddir/odmr/odmrctl
FETCH=$builddir/turn/odmr-fetch

if [ "$(id -u)" -ne 0 ]; then
	echo "fetch.sh: run it as root: smtp-sink drops to nobody (sudo sh $0 ...)" >&2
	exit 2
fi
PATH=$PATH:/usr/sbin:/sbin
for p in smtp-source smtp-sink fetchmail python3 ss; do
	if ! command -v "$p" > /dev/null 2>&1; then
		echo "fetch.sh: $p not found (apt-get install postfix fetchmail python3 iproute2)" >&2
		exit 2
	fi
done
. "$srcdir/bench/lib.sh"
bench_need_built "build odmrd and odmr-fetch in $builddir, or give the build directory" "$ODMRD" "$CTL" "$FETCH"
bench_begin odmr-fetch-bench	# $W, $parent, traps (no Postfix here)
mkdir -p "$W/fmhome"
chmod 700 "$W/fmhome"

smtp_port=$(free_port)
odmr_port=$(free_port)
sink_port=$(free_port)
password=bench-$$-pw

# ctl ARGS... - odmrctl on the bench store
ctl() {
	"$CTL" -f "$W/odmrd.conf" "$@"
}

mkdir -p "$W/state"
chmod 700 "$W/state"
cat > "$W/odmrd.conf" <<EOF
hostname = bench.odmrd.test
state_dir = $W/state
smtp_listen = 127.0.0.1:$smtp_port
odmr_listen = 127.0.0.1:$odmr_port
log_level = warn
max_connections_per_ip = 200
bounce_relay = 127.0.0.1:$(free_port)
EOF
if ! printf '%s\n' "$password" | ctl user add bench > "$W/ctl.log" 2>&1 ||
    ! ctl domain add bench.example --owner bench >> "$W/ctl.log" 2>&1; then
	echo "fetch.sh: odmrctl failed: $(tail -3 "$W/ctl.log")" >&2
	exit 3
fi
"$ODMRD" -f "$W/odmrd.conf" -d > "$W/odmrd.log" 2>&1 &
odmrd_pid=$!
if ! wait_listen "$odmr_port" "$odmrd_pid" || ! wait_listen "$smtp_port" "$odmrd_pid"; then
	echo "fetch.sh: odmrd does not listen: $(tail -5 "$W/odmrd.log")" >&2
	exit 3
fi
smtp-sink -u nobody "127.0.0.1:$sink_port" 1000 > /dev/null 2> "$W/sink.log" &
sink_pid=$!
if ! wait_listen "$sink_port" "$sink_pid"; then
	echo "fetch.sh: smtp-sink does not listen: $(tail -3 "$W/sink.log")" >&2
	exit 3
fi

cat > "$W/fmhome/fetchmailrc" <<EOF
poll 127.0.0.1 service $odmr_port protocol ODMR
    user bench password $password
    fetchdomains bench.example
    smtphost 127.0.0.1/$sink_port
EOF
chmod 600 "$W/fmhome/fetchmailrc"

# queued - the messages of bench.example, or "error ..."
queued() {
	ctl --json queue bench.example 2> "$W/ctl.err" |
	    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["messages"]))' 2> /dev/null ||
	    echo "error: $(tail -1 "$W/ctl.err")"
}

# wait_unclaimed - until no delivery holds bench.example (10 s)
wait_unclaimed() {
	_i=0
	while [ "$_i" -lt 100 ]; do
		ctl --json queue 2> /dev/null | python3 -c 'import json, sys
sys.exit(any(d["domain"] == "bench.example" and d["flush"] for d in json.load(sys.stdin)["domains"]))' && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# refill - N messages of SIZE octets for bench.example; sets fill_out
refill() {
	smtp-source -d -s 10 -m "$messages" -l "$size" -f sender@bench.test \
	    -t u@bench.example "127.0.0.1:$smtp_port" > "$W/source.log" 2>&1
	_rc=$?
	_n=$(queued)
	if [ "$_rc" -ne 0 ]; then
		fill_out="invalid smtp-source exited $_rc: $(tail -2 "$W/source.log" | tr '\n' ' ')"
	elif [ "$_n" != "$messages" ]; then
		fill_out="invalid the queue holds $_n messages, not $messages"
	else
		fill_out=ok
	fi
}

# run CLIENT - refill, collect with CLIENT; sets run_out to "RATE SECONDS" or "invalid WHY"
run() {
	refill
	if [ "$fill_out" != ok ]; then
		run_out=$fill_out
		return
	fi
	wait_unclaimed
	_t0=$(now_ns)
	case $1 in
	odmr-fetch)
		ODMR_PASSWORD=$password "$FETCH" --server "127.0.0.1:$odmr_port" \
		    --user bench --tls none --domains bench.example \
		    --deliver-to "127.0.0.1:$sink_port" --hostname fetch.bench.test \
		    > "$W/client.log" 2>&1 ;;
	fetchmail)
		HOME=$W/fmhome FETCHMAILHOME=$W/fmhome fetchmail -N -d0 \
		    -f "$W/fmhome/fetchmailrc" > "$W/client.log" 2>&1 ;;
	esac
	_rc=$?
	_t1=$(now_ns)
	wait_unclaimed
	_n=$(queued)
	if [ "$_rc" -ne 0 ]; then
		run_out="invalid $1 exited $_rc: $(tail -2 "$W/client.log" | tr '\n' ' ')"
	elif [ "$_n" != 0 ]; then
		run_out="invalid $_n messages still queued after $1"
	else
		run_out=$(awk -v n="$messages" -v a="$_t0" -v b="$_t1" \
		    'BEGIN { s = (b - a) / 1e9; printf "%.1f %.2f\n", n / s, s }')
	fi
}

echo "fetch.sh: state in $W ($(fstype "$parent") on $(device "$parent")); $messages messages of $size octets; $reps repetitions" >&2

r=1
while [ "$r" -le "$reps" ]; do
	for c in odmr-fetch fetchmail; do
		run "$c"
		case $run_out in
		invalid*)
			echo "$c rep $r: INVALID: ${run_out#invalid }" >&2
			echo "—" >> "$W/res/$c.rows" ;;
		*)
			# shellcheck disable=SC2086
			set -- $run_out
			echo "$c rep $r: $messages msgs in $2 s = $1 msg/s" >&2
			echo "$1" >> "$W/res/$c"
			echo "$1 ($2 s)" >> "$W/res/$c.rows" ;;
		esac
	done
	r=$((r + 1))
done

# shellcheck disable=SC2046
mo=$(median $(cat "$W/res/odmr-fetch" 2> /dev/null))
# shellcheck disable=SC2046
mf=$(median $(cat "$W/res/fetchmail" 2> /dev/null))
ratio=$(awk -v a="$mo" -v b="$mf" 'BEGIN { if (a == "" || b == "" || b == 0) print "—"; else printf "%.1f", a / b }')
verdict=$(awk -v x="$ratio" 'BEGIN { if (x == "—") print "—"; else if (x >= 30) print "PASS"; else print "FAIL" }')

echo
echo "$messages messages of $size octets, one domain, collected over ODMR without TLS into the same smtp-sink; messages/s:"
echo
printf '| client |'
r=1; while [ "$r" -le "$reps" ]; do printf ' run %s |' "$r"; r=$((r + 1)); done
echo ' median |'
printf '|---|'
r=1; while [ "$r" -le "$reps" ]; do printf -- '---:|'; r=$((r + 1)); done
echo '---:|'
for c in odmr-fetch fetchmail; do
	printf '| %s |' "$c"
	while IFS= read -r row; do printf ' %s |' "$row"; done < "$W/res/$c.rows"
	if [ "$c" = odmr-fetch ]; then m=$mo; else m=$mf; fi
	echo " **${m:-invalid}** |"
done
echo
echo "odmr-fetch / fetchmail: **${ratio}×** (target ≥ 30×): $verdict"
exit 0
