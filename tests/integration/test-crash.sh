#!/bin/sh
# NAME
#	test-crash.sh - kill -9 writers and readers; nothing acknowledged is lost
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-crash.sh
# DESCRIPTION
#	SPEC.md guarantee 1: a message the store acknowledged survives
#	kill -9. tests/tools/queue-writer enqueues deterministic messages
#	and appends "ID INDEX SIZE" to an ack file after each QUEUE_OK.
#	This script kills writers at random moments (1 and 8 threads;
#	4 KiB, 256 KiB and 2 MiB bodies; one to three customer domains per
#	message), kills a writer while odmrctl reads, and kills odmrctl
#	during "check" and "queue". Every process that opens the store next
#	must recover on its own (nobody runs db_recover). A writer killed in
#	the middle of a 20 MiB enqueue must not leave a lock that wedges the
#	next one. At the end every acknowledged message must be present byte
#	for byte, "odmrctl check" must be clean, and 20 messages listed by
#	"odmrctl --json queue" must be whole.
#
#	CRASH_ROUNDS (default 24) sets the number of random kills. The
#	random delays are printed, and so is the work directory when a case
#	fails (it is kept then).

. "$top_srcdir/tests/tap.sh"

QW=$top_builddir/tests/tools/queue-writer
CTL=$top_builddir/odmr/odmrctl
ROUNDS=${CRASH_ROUNDS:-24}
SEED=1

require_cmd python3 python3
require_cmd timeout coreutils
require_cmd od coreutils
require_cmd cmp diffutils
require_built "$QW" "$CTL"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-crash.XXXXXX") || exit 1
state=$tmp/state
conf=$tmp/odmrd.conf
acks=$tmp/acks
printf 'state_dir = %s\n' "$state" > "$conf"
mkdir "$state"
: > "$acks"

# cleanup - kill what is left, keep the work directory when a case failed
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

# rand LO HI - a random integer in [LO, HI]
rand() {
	_r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	echo $(($1 + _r % ($2 - $1 + 1)))
}

# sleep_ms MS - sleep MS milliseconds
sleep_ms() {
	sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"
}

# now_ms - wall clock in milliseconds
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# ctl ARGS... - odmrctl on the test store
ctl() {
	"$CTL" -f "$conf" "$@"
}

# acked - number of acknowledged messages so far
acked() {
	wc -l < "$acks" | tr -d ' '
}

# start_writer LOG ARGS... - start a queue-writer in the background
start_writer() {
	_log=$1; shift
	"$QW" -s "$state" -a "$acks" -S "$SEED" "$@" > "$_log" 2>&1 &
	wpid=$!
	echo "$wpid" >> "$tmp/pids"
}

# kill_writer WHAT - kill -9 the writer started last; fail if it had died
kill_writer() {
	if kill -0 "$wpid" 2>/dev/null; then
		kill -9 "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
		return 0
	fi
	wait "$wpid"
	_rc=$?
	not_ok "$1: the writer exited by itself (status $_rc) before the kill: $(tr '\n' ' ' < "$wlog" | cut -c1-300)"
	return 1
}

# ---- the store and its domains -------------------------------------------
for d in a.example b.example c.example; do
	if ! ctl domain add "$d" --owner crash > "$tmp/add.out" 2>&1; then
		not_ok "odmrctl domain add $d: $(cat "$tmp/add.out")"
		tap_done
	fi
done
ok "store created and domains added with odmrctl"

# ---- random kills --------------------------------------------------------
fails=0
noack=0
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	case $((i % 6)) in
	0) args="-t 1 -z 4096 -d a.example" ;;
	1) args="-t 8 -z 4096 -d a.example -d b.example" ;;
	2) args="-t 1 -z 256k -d b.example" ;;
	3) args="-t 8 -z 256k -d a.example -d b.example -d c.example" ;;
	4) args="-t 1 -z 2M -d c.example" ;;
	5) args="-t 8 -z 2M -d c.example -d a.example" ;;
	esac
	ms=$(rand 50 1200)
	before=$(acked)
	wlog=$tmp/writer.$i.log
	# shellcheck disable=SC2086
	start_writer "$wlog" -n 0 -i $((i * 1000000)) $args
	sleep_ms "$ms"
	if ! kill_writer "round $i ($args, ${ms} ms)"; then
		fails=$((fails + 1))
	fi
	after=$(acked)
	[ "$after" -gt "$before" ] || noack=$((noack + 1))
	diag "round $i: $args, killed after $ms ms, $((after - before)) acked"
	i=$((i + 1))
done
if [ "$fails" -eq 0 ]; then
	ok "$ROUNDS writers killed with kill -9 at random moments; each next one opened the store by itself"
else
	not_ok "$fails of $ROUNDS writers could not start or died early"
fi
total=$(acked)
# A kill leaves recovery (about half a second under ASan) to the next
# opener, and group commit acknowledges a whole batch at once, so many
# rounds end before their first ack: those kills land in recovery and in
# big first batches, which is worth testing too. The check is that the
# run as a whole acknowledged plenty to verify, in several rounds.
if [ "$total" -ge 200 ] && [ $((ROUNDS - noack)) -ge 3 ]; then
	ok "writers made progress between kills ($total acked, $noack rounds without an ack)"
else
	not_ok "writers made little progress: $total acked, $noack of $ROUNDS rounds without an ack"
fi

# ---- kill a writer while odmrctl reads -----------------------------------
wlog=$tmp/writer.reader.log
start_writer "$wlog" -n 0 -t 4 -z 64k -i 90000000 -d a.example -d b.example
: > "$tmp/reader.rc"
(
	n=0
	while [ "$n" -lt 12 ]; do
		ctl --json queue a.example > "$tmp/reader.$n.json" 2> "$tmp/reader.$n.err"
		echo "queue $?" >> "$tmp/reader.rc"
		ctl --json queue > "$tmp/reader.all.$n.json" 2>> "$tmp/reader.$n.err"
		echo "queue-all $?" >> "$tmp/reader.rc"
		n=$((n + 1))
	done
) &
rpid=$!
echo "$rpid" >> "$tmp/pids"
sleep_ms "$(rand 200 500)"
kill_writer "writer killed under readers" || fails=$((fails + 1))
wait "$rpid"
bad=$(grep -cv ' 0$' "$tmp/reader.rc")
reads=$(wc -l < "$tmp/reader.rc" | tr -d ' ')
if [ "$bad" -eq 0 ] && [ "$reads" -eq 24 ]; then
	ok "odmrctl readers unaffected by a writer killed under them ($reads calls)"
else
	not_ok "odmrctl readers failed while a writer was killed: $bad of $reads calls: $(cat "$tmp"/reader.*.err | head -5 | tr '\n' ' ')"
fi
if python3 -c '
import json, sys
for f in sys.argv[1:]:
    with open(f) as fp:
        json.load(fp)
' "$tmp"/reader.*.json 2> "$tmp/reader.py.err"; then
	ok "the readers' JSON parses"
else
	not_ok "the readers' JSON does not parse: $(tail -1 "$tmp/reader.py.err")"
fi

# ---- kill odmrctl during check and queue ---------------------------------
kfail=0
for cmd in check queue check "--json queue" check "--json queue a.example"; do
	# shellcheck disable=SC2086
	"$CTL" -f "$conf" $cmd > /dev/null 2>&1 &
	cpid=$!
	echo "$cpid" >> "$tmp/pids"
	ms=$(rand 20 200)
	sleep_ms "$ms"
	kill -9 "$cpid" 2>/dev/null
	wait "$cpid" 2>/dev/null
	# the next opener must recover: a writer that finishes in time
	wlog=$tmp/writer.afterctl.log
	if ! timeout 20 "$QW" -s "$state" -a "$acks" -S "$SEED" -n 3 \
	    -i $((95000000 + kfail * 10 + $(rand 0 9) * 100)) \
	    -d a.example > "$wlog" 2>&1; then
		kfail=$((kfail + 1))
		diag "writer after odmrctl $cmd killed at $ms ms failed: $(cat "$wlog")"
	fi
	if ! timeout 20 "$CTL" -f "$conf" check > "$tmp/check.out" 2>&1; then
		kfail=$((kfail + 1))
		diag "check after odmrctl $cmd killed at $ms ms failed: $(head -5 "$tmp/check.out")"
	fi
done
if [ "$kfail" -eq 0 ]; then
	ok "odmrctl killed during check/queue: the next writer and check work"
else
	not_ok "odmrctl killed during check/queue: $kfail later operations failed"
fi

# ---- a writer killed inside a 20 MiB transaction must not wedge the store -
wedge=0
j=0
while [ "$j" -lt 3 ]; do
	wlog=$tmp/writer.big.$j.log
	start_writer "$wlog" -n 0 -t 1 -z 20M -i $((97000000 + j * 1000)) -d b.example
	ms=$(rand 150 600)
	sleep_ms "$ms"
	kill_writer "20 MiB writer $j" || wedge=$((wedge + 1))
	t0=$(now_ms)
	if ! timeout 30 "$QW" -s "$state" -a "$acks" -S "$SEED" -n 1 \
	    -i $((98000000 + j)) -d b.example > "$tmp/after-big.log" 2>&1; then
		wedge=$((wedge + 1))
		diag "writer after the 20 MiB kill failed: $(cat "$tmp/after-big.log")"
	fi
	t1=$(now_ms)
	diag "20 MiB writer killed after $ms ms; next writer took $((t1 - t0)) ms"
	if [ $((t1 - t0)) -gt 5000 ]; then
		wedge=$((wedge + 1))
		diag "that is over the 5 s budget: a stale lock?"
	fi
	j=$((j + 1))
done
if [ "$wedge" -eq 0 ]; then
	ok "a writer killed inside a 20 MiB enqueue leaves no lock behind (next writer < 5 s)"
else
	not_ok "a writer killed inside a 20 MiB enqueue wedged or slowed the store ($wedge failures)"
fi

# ---- everything acknowledged is there, byte for byte ---------------------
total=$(acked)
if "$QW" -s "$state" --verify "$acks" -S "$SEED" > "$tmp/verify.out" 2>&1; then
	ok "all $total acknowledged messages present byte for byte ($(tail -1 "$tmp/verify.out"))"
else
	not_ok "verify of $total acknowledged messages: $(grep -v '^verify:' "$tmp/verify.out" | head -5 | tr '\n' ' ') $(tail -1 "$tmp/verify.out")"
fi

if ctl check > "$tmp/check.out" 2>&1; then
	ok "odmrctl check is clean"
else
	not_ok "odmrctl check: $(head -5 "$tmp/check.out" | tr '\n' ' ')"
fi

# ---- no visible message is half-written: spot-check 20 -------------------
: > "$tmp/ids"
lerr=0
for d in a.example b.example c.example; do
	if ! ctl --json queue "$d" > "$tmp/queue.$d.json" 2> "$tmp/queue.err"; then
		lerr=$((lerr + 1))
		diag "odmrctl --json queue $d: $(cat "$tmp/queue.err")"
		continue
	fi
	python3 -c '
import json, re, sys
hexid = re.compile(r"^[0-9A-Fa-f]{14}$")
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k in ("id", "queue_id") and isinstance(x, str) and hexid.match(x):
                print(x)
            else:
                walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
with open(sys.argv[1]) as fp:
    walk(json.load(fp))
' "$tmp/queue.$d.json" >> "$tmp/ids" 2> "$tmp/queue.err" || {
		lerr=$((lerr + 1))
		diag "odmrctl --json queue $d does not parse: $(tail -1 "$tmp/queue.err")"
	}
done
sort -u "$tmp/ids" > "$tmp/ids.u"
nids=$(wc -l < "$tmp/ids.u" | tr -d ' ')
if [ "$lerr" -eq 0 ] && [ "$nids" -ge "$total" ]; then
	ok "odmrctl --json queue lists $nids messages (>= $total acknowledged)"
else
	not_ok "odmrctl --json queue: $lerr errors, $nids ids listed for $total acknowledged"
fi

spot=0
sbad=0
for id in $(python3 -c '
import random, sys
ids = open(sys.argv[1]).read().split()
random.shuffle(ids)
print("\n".join(ids[:20]))
' "$tmp/ids.u"); do
	spot=$((spot + 1))
	if ! ctl show "$id" --raw > "$tmp/raw" 2> "$tmp/raw.err"; then
		sbad=$((sbad + 1))
		diag "show $id --raw: $(cat "$tmp/raw.err")"
		continue
	fi
	# the Subject names seed, index and size: regenerate and compare
	set -- $(sed -n 's/^Subject: queue-writer seed \([0-9]*\) index \([0-9]*\) size \([0-9]*\).*/\1 \2 \3/p' "$tmp/raw" | head -1)
	if [ $# -ne 3 ]; then
		sbad=$((sbad + 1))
		diag "show $id --raw: no queue-writer Subject: $(head -c 200 "$tmp/raw" | tr '\r\n' '  ')"
		continue
	fi
	"$QW" --body "$1" "$2" "$3" > "$tmp/want"
	if ! cmp -s "$tmp/want" "$tmp/raw"; then
		sbad=$((sbad + 1))
		diag "show $id --raw differs from queue-writer --body $1 $2 $3: $(cmp "$tmp/want" "$tmp/raw" 2>&1 | head -1) ($(wc -c < "$tmp/raw") octets, want $3)"
	fi
done
if [ "$spot" -ge 20 ] && [ "$sbad" -eq 0 ]; then
	ok "20 listed messages are whole (odmrctl show --raw = queue-writer --body)"
else
	not_ok "spot check: $sbad of $spot listed messages are not whole"
fi

tap_done
