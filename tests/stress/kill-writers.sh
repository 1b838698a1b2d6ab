#!/bin/sh
# NAME
#	kill-writers.sh - stress: SIGKILL writers while odmrctl readers run
# SYNOPSIS
#	top_builddir=BUILD sh tests/stress/kill-writers.sh [ROUNDS]
# DESCRIPTION
#	Not part of make check (it takes about 8 s a round). Each round
#	starts an 8-thread queue-writer, runs three odmrctl readers one
#	after the other, and kills the writer with SIGKILL at a varying
#	moment. A writer killed inside Berkeley DB can die holding a region
#	mutex; the readers must still finish (the store's sentinel notices
#	the wedge and odmrctl starts again). Exits 1 and names the state
#	directory if a reader is still running 30 s after its writer died.
B=${top_builddir:-.}
rounds=${1:-40}
S=$(mktemp -d /tmp/kill-writers.XXXXXX)
printf 'state_dir = %s\n' "$S" > "$S.conf"
"$B/odmr/odmrctl" -f "$S.conf" domain add a.example --owner t >/dev/null || exit 2
i=1
while [ "$i" -le "$rounds" ]; do
	"$B/tests/tools/queue-writer" -s "$S" -d a.example -n 0 -t 8 -z 64k \
	    -i $((i * 100000)) >/dev/null 2>&1 &
	w=$!
	sleep 0.3
	( for k in 1 2 3; do "$B/odmr/odmrctl" -f "$S.conf" --json queue a.example \
	    >/dev/null 2>>"$S.err"; done ) &
	r=$!
	sleep 0.$(( (i % 5) + 1 ))
	kill -9 "$w"
	t=0
	while kill -0 "$r" 2>/dev/null && [ "$t" -lt 60 ]; do sleep 0.5; t=$((t + 1)); done
	if kill -0 "$r" 2>/dev/null; then
		echo "round $i: a reader is stuck; state kept in $S"
		exit 1
	fi
	i=$((i + 1))
done
echo "$rounds rounds, no reader stuck; restarts: $(grep -c 'starting again' "$S.err" 2>/dev/null || echo 0)"
"$B/odmr/odmrctl" -f "$S.conf" check || exit 1
rm -rf "$S" "$S.conf" "$S.err"
