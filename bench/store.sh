#!/bin/sh
# NAME
#	store.sh - benchmark the message store against the disk and its targets
# SYNOPSIS
#	sh bench/store.sh [--quick] [--rounds N] [--builddir DIR] [--dir DIR]
#	    [--keep]
# DESCRIPTION
#	Runs, in one go and on one disk, ROUNDS (default 3) rounds of:
#	  - the raw rate of 4 KiB append + fdatasync (store-bench raw-fsync);
#	  - durable 4 KiB enqueues per second with 1 and with 16 writer
#	    threads sharing one store handle (store-bench enqueue), each
#	    round in a fresh store;
#	  - queue_walk of a 10,000-message domain inside a store of 200,000
#	    messages over 2,000 domains, against a walk of the same 10,000
#	    messages in a store holding only that domain (store-bench walk,
#	    median of 11 passes per round);
#	  - the wall time of "odmrctl queue" on the big store.
#	It then prints a markdown table of the figures and their medians,
#	and the ratios against the targets:
#	  - 16 writers reach at least 5 times the raw fdatasync rate;
#	  - the walk in the big store is within 2 times the lone walk;
#	  - "odmrctl queue" on the big store takes under 200 ms.
#
#	The state lives in a temporary directory on the same filesystem as
#	the source tree (never tmpfs, whose fsync costs nothing) and is
#	removed at the end unless --keep is given. --dir picks the parent
#	directory instead. --quick shrinks every figure about tenfold, for a
#	smoke test; its numbers are not the ones to report.
#
#	The programs come from --builddir (default: $top_builddir, else the
#	current directory): bench/store-bench and odmr/odmrctl. Build them
#	without sanitizers for figures worth reporting.
# DIAGNOSTICS
#	Exit status 0 when every step ran (whether or not the targets were
#	met: the table says), 2 on a usage error, 3 when a step failed.

set -u

rounds=3
quick=0
keep=0
builddir=${top_builddir:-.}
parent=""

while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--keep) keep=1 ;;
	--rounds) rounds=$2; shift ;;
	--builddir) builddir=$2; shift ;;
	--dir) parent=$2; shift ;;
	-h|--help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0 ;;
	*)
		echo "store.sh: unknown option $1" >&2
		exit 2 ;;
	esac
	shift
done

SB=$builddir/bench/store-bench
CTL=$builddir/odmr/odmrctl
srcdir=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -x "$SB" ]; then
	echo "store.sh: $SB not built: make bench/store-bench in the build tree" >&2
	exit 2
fi
if [ ! -x "$CTL" ]; then
	echo "store.sh: $CTL not built: make odmr/odmrctl in the build tree" >&2
	exit 2
fi

if [ "$quick" -eq 1 ]; then
	n_fsync=200; n_enq1=200; n_enq16=800
	domains=200; messages=20000; big=1000
else
	n_fsync=1000; n_enq1=1000; n_enq16=4000
	domains=2000; messages=200000; big=10000
fi
walk_repeat=11

. "$srcdir/bench/lib.sh"
work=$(bench_workdir odmr-store-bench) || exit $?
parent=$(dirname "$work")

# cleanup - remove the state unless --keep
cleanup() {
	if [ "$keep" -eq 1 ]; then
		echo "store.sh: state kept in $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 3' INT TERM

# field LINE KEY - the value of KEY=... in a key=value line
field() {
	echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# median VALUES... - the median (lower middle) of numbers
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# ratio A B - A / B with two decimals
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.2f", a / b }'
}

# run STEP CMD... - run a benchmark step, print its line, fail loudly
run() {
	_step=$1; shift
	if ! _out=$("$@" 2> "$work/err"); then
		echo "store.sh: $_step failed: $* : $(tail -3 "$work/err")" >&2
		exit 3
	fi
	echo "$_out" | tail -1
}

# now_ns - wall clock in nanoseconds
now_ns() {
	date +%s%N
}

echo "store.sh: state in $work ($(fstype "$parent") on $(device "$parent")), $rounds rounds$( [ "$quick" -eq 1 ] && echo ', quick')" >&2

fs=""; e1=""; e16=""; e1p99=""; e16p99=""; e16pf=""
r=1
while [ "$r" -le "$rounds" ]; do
	l=$(run raw-fsync "$SB" raw-fsync -p "$work" -n "$n_fsync") || exit 3
	echo "round $r: $l" >&2
	fs="$fs $(field "$l" ops_per_sec)"

	rm -rf "$work/enq"
	l=$(run enqueue-1 "$SB" enqueue -s "$work/enq" -t 1 -n "$n_enq1" -z 4096 -d bench.example) || exit 3
	echo "round $r: $l" >&2
	e1="$e1 $(field "$l" msgs_per_sec)"
	e1p99="$e1p99 $(field "$l" p99_ms)"

	rm -rf "$work/enq"
	l=$(run enqueue-16 "$SB" enqueue -s "$work/enq" -t 16 -n "$n_enq16" -z 4096 -d bench.example) || exit 3
	echo "round $r: $l" >&2
	e16="$e16 $(field "$l" msgs_per_sec)"
	e16p99="$e16p99 $(field "$l" p99_ms)"
	e16pf="$e16pf $(field "$l" msgs_per_flush)"
	rm -rf "$work/enq"
	r=$((r + 1))
done

l=$(run populate-big "$SB" populate -s "$work/big" --domains "$domains" \
    --messages "$messages" --big-domain big.example --big "$big") || exit 3
echo "$l" >&2
pop_big=$(field "$l" seconds)
l=$(run populate-lone "$SB" populate -s "$work/lone" --domains 1 \
    --messages "$big" --big-domain big.example --big "$big") || exit 3
echo "$l" >&2
printf 'state_dir = %s\n' "$work/big" > "$work/big.conf"

wb=""; wl=""; cq=""
r=1
while [ "$r" -le "$rounds" ]; do
	l=$(run walk-big "$SB" walk -s "$work/big" -d big.example -r "$walk_repeat") || exit 3
	echo "round $r: big store: $l" >&2
	wb="$wb $(field "$l" median_ms)"
	nb=$(field "$l" messages)
	l=$(run walk-lone "$SB" walk -s "$work/lone" -d big.example -r "$walk_repeat") || exit 3
	echo "round $r: lone store: $l" >&2
	wl="$wl $(field "$l" median_ms)"
	nl=$(field "$l" messages)

	t0=$(now_ns)
	if ! "$CTL" -f "$work/big.conf" queue > "$work/queue.out" 2> "$work/err"; then
		echo "store.sh: odmrctl queue failed: $(tail -3 "$work/err")" >&2
		exit 3
	fi
	t1=$(now_ns)
	ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
	echo "round $r: odmrctl queue: $ms ms, $(wc -l < "$work/queue.out") lines" >&2
	cq="$cq $ms"
	r=$((r + 1))
done
if [ "$nb" != "$big" ] || [ "$nl" != "$big" ]; then
	echo "store.sh: the walks saw $nb and $nl messages, not $big" >&2
	exit 3
fi

m_fs=$(median $fs); m_e1=$(median $e1); m_e16=$(median $e16)
m_wb=$(median $wb); m_wl=$(median $wl); m_cq=$(median $cq)

# row NAME VALUES... - one markdown row: the rounds, then the median
row() {
	_name=$1; shift
	printf '| %s |' "$_name"
	for _v in "$@"; do printf ' %s |' "$_v"; done
	printf ' **%s** |\n' "$(median "$@")"
}

# verdict OK - PASS or FAIL
verdict() {
	if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi
}

hdr="| figure |"
sep="|---|"
r=1
while [ "$r" -le "$rounds" ]; do
	hdr="$hdr run $r |"; sep="$sep---:|"; r=$((r + 1))
done
echo
echo "$hdr median |"
echo "$sep---:|"
# shellcheck disable=SC2086
{
row "4 KiB append + fdatasync (ops/s)" $fs
row "enqueue 4 KiB, 1 writer (msgs/s)" $e1
row "enqueue 4 KiB, 16 writers (msgs/s)" $e16
row "enqueue p99 latency, 1 writer (ms)" $e1p99
row "enqueue p99 latency, 16 writers (ms)" $e16p99
row "messages per log flush, 16 writers" $e16pf
row "walk of $big msgs in $messages msgs / $domains domains (ms)" $wb
row "walk of $big msgs, lone domain (ms)" $wl
row "odmrctl queue, $messages msgs / $domains domains (ms)" $cq
}
echo
echo "Bulk load (QUEUE_OPEN_NOSYNC) of the big store: $pop_big s."
echo
r16=$(ratio "$m_e16" "$m_fs")
r1=$(ratio "$m_e1" "$m_fs")
rw=$(ratio "$m_wb" "$m_wl")
echo "| target | measured (medians) | goal | verdict |"
echo "|---|---:|---:|---|"
echo "| 16 writers / raw fdatasync rate | ${r16}× | ≥ 5× | $(verdict "$(awk -v x="$r16" 'BEGIN { print (x >= 5) }')") |"
echo "| 1 writer / raw fdatasync rate (for reference) | ${r1}× | — | — |"
echo "| big-store walk / lone-domain walk | ${rw}× | ≤ 2× | $(verdict "$(awk -v x="$rw" 'BEGIN { print (x <= 2) }')") |"
echo "| odmrctl queue on the big store | ${m_cq} ms | < 200 ms | $(verdict "$(awk -v x="$m_cq" 'BEGIN { print (x < 200) }')") |"
exit 0
