#!/bin/sh
# NAME
#	test-concurrency.sh - odmrctl reads while a writer and a deleter run
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-concurrency.sh
# DESCRIPTION
#	The store promises (queue 3h) that readers see every record whole
#	and never stall writers. A multi-threaded queue-writer
#	enqueues without end while, for CONC_SECONDS (default 15) seconds,
#	odmrctl runs "--json queue", "--json queue DOMAIN", "--json show
#	ID", "stats" and "check" in a loop, and a second loop deletes some
#	acknowledged messages with "odmrctl delete" to make real contention.
#
#	Every odmrctl call must exit 0; "show" may exit 1 only for an id the
#	deleter had already chosen. Every JSON output must parse, "check"
#	must be clean each time, and the writer must acknowledge something
#	in every whole second while the readers run. The number of odmrctl
#	calls is reported.

. "$top_srcdir/tests/tap.sh"

QW=$top_builddir/tests/tools/queue-writer
CTL=$top_builddir/odmr/odmrctl
SECONDS_RUN=${CONC_SECONDS:-15}

require_cmd python3 python3
require_cmd shuf coreutils
require_built "$QW" "$CTL"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-concurrency.XXXXXX") || exit 1
state=$tmp/state
conf=$tmp/odmrd.conf
acks=$tmp/acks
printf 'state_dir = %s\n' "$state" > "$conf"
mkdir "$state"
: > "$acks"
: > "$tmp/deleted"
: > "$tmp/calls"
: > "$tmp/failures"
mkdir "$tmp/json"

# cleanup - stop what is left, keep the work directory when a case failed
cleanup() {
	for _pid in $(cat "$tmp/pids" 2>/dev/null); do
		kill -9 "$_pid" 2>/dev/null
	done
	if [ "$tap_failed" -eq 0 ]; then
		rm -rf "$tmp"
	else
		echo "# work directory kept: $tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ctl ARGS... - odmrctl on the test store
ctl() {
	"$CTL" -f "$conf" "$@"
}

# now_ns - wall clock in nanoseconds
now_ns() {
	date +%s%N
}

# call KIND ALLOWED ARGS... - run odmrctl, record the call, status and ms
call() {
	_kind=$1; _allowed=$2; shift 2
	_t0=$(now_ns)
	ctl "$@" > "$tmp/out" 2> "$tmp/err"
	_rc=$?
	echo "$_kind $_rc $((($(now_ns) - _t0) / 1000000))" >> "$tmp/calls"
	case " $_allowed " in
	*" $_rc "*) ;;
	*) echo "$_kind exit $_rc: $* : $(head -3 "$tmp/err" | tr '\n' ' ')" >> "$tmp/failures" ;;
	esac
	return $_rc
}

# keep_json NAME - keep the last output for parsing at the end
keep_json() {
	cp "$tmp/out" "$tmp/json/$1"
}

for d in a.example b.example; do
	if ! ctl domain add "$d" --owner conc > "$tmp/add.out" 2>&1; then
		not_ok "odmrctl domain add $d: $(cat "$tmp/add.out")"
		tap_done
	fi
done

# the writer: 4 threads, forever; every third message in both domains
"$QW" -s "$state" -a "$acks" -n 0 -t 4 -z 4096 -d a.example \
    > "$tmp/writer-a.log" 2>&1 &
wpid=$!
echo "$wpid" >> "$tmp/pids"
"$QW" -s "$state" -a "$acks" -n 0 -t 2 -z 8k -i 50000000 -S 1 \
    -d b.example -d a.example > "$tmp/writer-ab.log" 2>&1 &
wpid2=$!
echo "$wpid2" >> "$tmp/pids"

# wait until the writers have acknowledged something
t=0
while [ "$(wc -l < "$acks")" -lt 20 ] && [ "$t" -lt 100 ]; do
	sleep 0.1
	t=$((t + 1))
done
if [ "$(wc -l < "$acks")" -lt 20 ]; then
	not_ok "the writers acknowledge nothing: $(cat "$tmp"/writer-*.log | head -5 | tr '\n' ' ')"
	tap_done
fi

# the ack sampler: "ns count" five times a second
(
	while :; do
		echo "$(now_ns) $(wc -l < "$acks")" >> "$tmp/samples"
		sleep 0.2
	done
) &
spid=$!
echo "$spid" >> "$tmp/pids"

# the deleter: deletes every 10th acknowledged message, records it first
(
	k=10
	while :; do
		id=$(sed -n "${k}{s/ .*//;p;q}" "$acks")
		if [ -n "$id" ]; then
			echo "$id" >> "$tmp/deleted"
			"$CTL" -f "$conf" delete "$id" > "$tmp/del.out" 2>&1
			rc=$?
			echo "delete $rc" >> "$tmp/delcalls"
			[ "$rc" -eq 0 ] || echo "delete $id exit $rc: $(head -2 "$tmp/del.out" | tr '\n' ' ')" >> "$tmp/delfail"
			k=$((k + 10))
		fi
		sleep 0.1
	done
) &
dpid=$!
echo "$dpid" >> "$tmp/pids"

start=$(now_ns)
end=$((start + SECONDS_RUN * 1000000000))
iter=0
checks_bad=0
shows=0
while [ "$(now_ns)" -lt "$end" ]; do
	iter=$((iter + 1))
	call queue 0 --json queue && keep_json "queue.$iter"
	call queue-domain 0 --json queue a.example && keep_json "queue-a.$iter"
	id=$(tail -n 200 "$acks" | shuf -n 1 | cut -d' ' -f1)
	if [ -n "$id" ]; then
		shows=$((shows + 1))
		call show "0 1" --json show "$id"
		case $? in
		0)	keep_json "show.$iter" ;;
		1)	grep -qx "$id" "$tmp/deleted" ||
			    echo "show $id exit 1 but it was never deleted: $(head -2 "$tmp/err" | tr '\n' ' ')" >> "$tmp/failures" ;;
		esac
	fi
	call stats 0 stats
	call check 0 check || checks_bad=$((checks_bad + 1))
done
stop=$(now_ns)

kill "$dpid" 2>/dev/null
wait "$dpid" 2>/dev/null
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null
alive=0
kill -0 "$wpid" 2>/dev/null && alive=$((alive + 1))
kill -0 "$wpid2" 2>/dev/null && alive=$((alive + 1))
kill -9 "$wpid" "$wpid2" 2>/dev/null
wait "$wpid" "$wpid2" 2>/dev/null

calls=$(wc -l < "$tmp/calls" | tr -d ' ')
dels=$(wc -l < "$tmp/delcalls" 2>/dev/null | tr -d ' ')
dels=${dels:-0}
nfail=$(wc -l < "$tmp/failures" | tr -d ' ')
diag "$calls odmrctl reader calls in $iter loops over $(((stop - start) / 1000000)) ms, $dels deletes, $(wc -l < "$acks" | tr -d ' ') acks"

if [ "$alive" -eq 2 ]; then
	ok "the writers ran until the end"
else
	not_ok "a writer died during the run: $(cat "$tmp"/writer-*.log | head -5 | tr '\n' ' ')"
fi
if [ "$nfail" -eq 0 ] && [ "$calls" -gt 0 ]; then
	ok "all $calls odmrctl reader calls exited as expected"
else
	not_ok "$nfail of $calls odmrctl calls failed: $(head -5 "$tmp/failures" | tr '\n' ' ')"
fi
if [ "$dels" -gt 0 ] && [ ! -s "$tmp/delfail" ]; then
	ok "$dels concurrent odmrctl delete calls succeeded"
else
	not_ok "concurrent deletes: $dels calls, failures: $(head -3 "$tmp/delfail" 2>/dev/null | tr '\n' ' ')"
fi
# reader latency under load: not in the contract, but a reader that takes
# longer than READER_MAX_MS (default 10 s) is as good as wedged
slow=$(awk -v max="${READER_MAX_MS:-10000}" '
	{ n[$1]++; if ($3 > m[$1]) m[$1] = $3; s[$1] += $3; if ($3 > max) slow++ }
	END {
		for (k in n) printf "# %s: %d calls, mean %d ms, max %d ms\n", k, n[k], s[k] / n[k], m[k]
		printf "%d\n", slow
	}' "$tmp/calls" | tee "$tmp/latency" | tail -1)
grep '^#' "$tmp/latency"
if [ "$slow" -eq 0 ]; then
	ok "no odmrctl reader call took over ${READER_MAX_MS:-10000} ms under write load"
else
	not_ok "$slow odmrctl reader calls took over ${READER_MAX_MS:-10000} ms under write load"
fi
if [ "$checks_bad" -eq 0 ] && [ "$iter" -gt 0 ]; then
	ok "odmrctl check was clean all $iter times"
else
	not_ok "odmrctl check found problems $checks_bad of $iter times"
fi
if python3 -c '
import json, os, sys
bad = 0
names = sorted(os.listdir(sys.argv[1]))
for n in names:
    try:
        with open(os.path.join(sys.argv[1], n)) as fp:
            json.load(fp)
    except ValueError as e:
        bad += 1
        print("%s: %s" % (n, e))
print("%d JSON outputs, %d bad" % (len(names), bad))
sys.exit(1 if bad or not names else 0)
' "$tmp/json" > "$tmp/json.out" 2>&1; then
	ok "every JSON output parses ($(tail -1 "$tmp/json.out"))"
else
	not_ok "JSON outputs do not parse: $(head -3 "$tmp/json.out" | tr '\n' ' ')"
fi
if [ "$shows" -gt 0 ]; then
	ok "odmrctl --json show ran $shows times on live ids"
else
	not_ok "odmrctl show never ran"
fi

# throughput: every whole second between start and stop saw an ack
if python3 -c '
import sys
start, stop = int(sys.argv[2]), int(sys.argv[3])
s = []
for line in open(sys.argv[1]):
    t, n = line.split()
    s.append((int(t), int(n)))
def count_at(t):
    # acks known at the first sample taken at or after t
    for ts, n in s:
        if ts >= t:
            return n
    return None
stalls, secs, rates = [], 0, []
sec = (start // 10**9 + 1) * 10**9
while sec + 10**9 <= stop:
    a, b = count_at(sec), count_at(sec + 10**9)
    if a is None or b is None:
        break
    secs += 1
    rates.append(b - a)
    if b == a:
        stalls.append(sec // 10**9)
    sec += 10**9
print("%d whole seconds, acks per second min %s median %s max %s, %d without an ack"
      % (secs, min(rates) if rates else "-",
         sorted(rates)[len(rates) // 2] if rates else "-",
         max(rates) if rates else "-", len(stalls)))
sys.exit(1 if stalls or secs < 3 else 0)
' "$tmp/samples" "$start" "$stop" > "$tmp/rate.out" 2>&1; then
	ok "the writers never stalled while odmrctl read: $(cat "$tmp/rate.out")"
else
	not_ok "writer throughput stalled under readers: $(cat "$tmp/rate.out" | tr '\n' ' ')"
fi

tap_done
