#!/bin/sh
# NAME
#	test-smtp-load.sh - odmrd under concurrent load, and kill -9 under load
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-smtp-load.sh
# DESCRIPTION
#	smtp-source sends 500 messages of 4 KiB from 50 concurrent clients;
#	afterwards the store must hold exactly 500 messages, and odmrd must
#	have logged exactly 500 "event=queued" lines.
#
#	Then SPEC.md guarantee 1 under load: tests/tools/smtp-acker.py runs
#	concurrent clients that send distinct messages (DATA and BDAT,
#	1 KiB to 256 KiB) and records the queue id of every 250. odmrd is
#	killed with SIGKILL while transfers are in flight, three times at
#	different moments, and restarted each time (Berkeley DB recovery
#	must bring it up). Every acknowledged id must then be in the store,
#	with its token and a body that hashes to the SHA-256 it carries;
#	"odmrctl check" must be clean.
#	LOAD_MESSAGES (default 500) and LOAD_CLIENTS (default 50) change
#	the first part; KILL_CLIENTS (default 12) the second.
#	KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"

require_cmd smtp-source postfix
require_cmd python3 python3
require_cmd timeout coreutils
odmrd_setup
ACKER=$top_srcdir/tests/tools/smtp-acker.py
NMSG=${LOAD_MESSAGES:-500}
NCLI=${LOAD_CLIENTS:-50}
KCLI=${KILL_CLIENTS:-12}

# store_check DESC - "octl check" must find nothing
store_check() {
	if octl check >"$T/check.out" 2>&1; then ok "$1"
	else not_ok "$1: $(head -n 4 "$T/check.out" | tr '\n' '|')"; fi
}

# now_ms - wall clock in milliseconds
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# jget EXPR ARGS... - evaluate the python EXPR over the JSON document (d) of "octl --json ARGS"
jget() {
	_e=$1; shift
	octl --json "$@" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$_e"
}

# sanitizer_check LOG WHAT - fail when LOG holds a sanitizer report
sanitizer_check() {
	if grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' "$1"; then
		not_ok "no sanitizer report in odmrd's log ($2): $(grep -E -m 3 'AddressSanitizer|runtime error|LeakSanitizer' "$1")"
		KEEP_T=1
	else
		ok "no sanitizer report in odmrd's log ($2)"
	fi
}

for d in example.org example.net; do
	octl domain add "$d" --owner demo >"$T/add.out" 2>&1 || {
		not_ok "octl domain add $d: $(cat "$T/add.out")"
		tap_done
	}
done
# all the clients come from 127.0.0.1
odmrd_conf max_connections_per_ip 200
if odmrd_start; then ok "odmrd starts"; else not_ok "odmrd starts"; tap_done; fi

# ---- smtp-source: NCLI clients, NMSG messages ------------------------------
t0=$(now_ms)
timeout 60 smtp-source -s "$NCLI" -m "$NMSG" -l 4096 -f a@x.test -t u@example.org \
    "127.0.0.1:$SMTP_PORT" >"$T/source.out" 2>&1
_rc=$?
t1=$(now_ms)
diag "smtp-source -s $NCLI -m $NMSG -l 4096: $((t1 - t0)) ms, $((NMSG * 1000 / (t1 - t0 + 1))) messages/s"
if [ "$_rc" -eq 0 ] && ! grep -qE 'warning|fatal|error' "$T/source.out"; then
	ok "smtp-source with $NCLI clients sent $NMSG messages without an error"
else
	not_ok "smtp-source: exit $_rc: $(head -n 5 "$T/source.out" | tr '\n' '|')"
fi
nstore=$(jget 'd["messages"]' stats)
nqueue=$(jget '[x["messages"] for x in d["domains"] if x["domain"] == "example.org"][0]' queue)
nlog=$(grep -c 'event=queued ' "$T/odmrd.log")
nlist=$(jget 'len(d["messages"])' queue example.org)
diag "store: stats messages=$nstore, queue example.org=$nqueue, listed=$nlist; log event=queued=$nlog"
check "the store holds $NMSG messages (octl --json stats: $nstore)" [ "$nstore" = "$NMSG" ]
check "example.org's queue holds $NMSG messages (octl --json queue: $nqueue, listed $nlist)" \
    [ "$nqueue" = "$NMSG" -a "$nlist" = "$NMSG" ]
check "odmrd logged $NMSG event=queued lines ($nlog)" [ "$nlog" = "$NMSG" ]
_bad=$(grep 'event=queued ' "$T/odmrd.log" | grep -vc 'from=<a@x.test> nrcpt=1 size=[0-9]* client=127.0.0.1')
check "every event=queued line says from=<a@x.test> nrcpt=1 client=127.0.0.1 ($_bad do not)" [ "$_bad" -eq 0 ]
store_check "odmrctl check is clean after the load"
jget 'd["counters"]' stats | sed 's/^/# counters: /'

# ---- kill -9 under load, three times --------------------------------------
cp "$T/odmrd.log" "$T/odmrd.log.load"
: >"$T/acks.all"
round=0
for kill_ms in 3000 1700 2600; do
	round=$((round + 1))
	kill_ms=$((kill_ms + $(od -An -N1 -tu1 /dev/urandom | tr -d ' ') * 2))
	acks=$T/acks.$round
	: >"$acks"
	python3 "$ACKER" send --port "$SMTP_PORT" --acks "$acks" --clients "$KCLI" \
	    --seconds $(( (kill_ms + 1500) / 1000 + 1 )) --seed "$round" --rcpt "k$round@example.net" \
	    >"$T/acker.$round.out" 2>&1 &
	acker_pid=$!
	sleep "$((kill_ms / 1000)).$(printf '%03d' $((kill_ms % 1000)))"
	_before=$(wc -l <"$acks")
	odmrd_kill9
	cp "$T/odmrd.log" "$T/odmrd.log.kill$round"
	wait "$acker_pid"
	diag "round $round: SIGKILL after $kill_ms ms with $_before acks; acker: $(tail -n 1 "$T/acker.$round.out")"
	nacks=$(wc -l <"$acks")
	check "round $round: the clients got 250s before the kill ($nacks)" [ "$nacks" -gt 0 ]
	cat "$acks" >>"$T/acks.all"
	t0=$(now_ms)
	if odmrd_start; then
		ok "round $round: odmrd restarts after kill -9 ($(($(now_ms) - t0)) ms, recovery)"
	else
		not_ok "round $round: odmrd restarts after kill -9"
		break
	fi
	if python3 "$ACKER" verify --acks "$acks" --ctl "$ODMRCTL" --conf "$T/odmrd.conf" >"$T/verify.$round" 2>&1; then
		ok "round $round: every acknowledged message is in the store and intact ($(tail -n 1 "$T/verify.$round"))"
	else
		not_ok "round $round: acknowledged messages lost or damaged: $(tail -n 1 "$T/verify.$round")"
		sed 's/^/# /; s/^# # /# /' "$T/verify.$round" | head -n 10
	fi
	store_check "round $round: odmrctl check is clean after recovery"
done

# acknowledged messages of earlier rounds survived the later kills too
ids_file=$T/ids.net
jget '"\n".join(x["id"].upper() for x in d["messages"])' queue example.net | sort >"$ids_file"
_lost=$(cut -d' ' -f1 "$T/acks.all" | tr 'a-f' 'A-F' | sort -u | comm -23 - "$ids_file" | wc -l)
check "all $(wc -l <"$T/acks.all") acknowledged messages of the three rounds are still queued ($_lost missing)" [ "$_lost" -eq 0 ]
check "the smtp-source messages are all still queued" [ "$(jget '[x["messages"] for x in d["domains"] if x["domain"] == "example.org"][0]' queue)" = "$NMSG" ]

# ---- shut down -----------------------------------------------------------
odmrd_stop
_rc=$?
if [ "$_rc" -eq 0 ]; then ok "odmrd exits 0 on SIGTERM"; else not_ok "odmrd exits 0 on SIGTERM (exit $_rc): $(tail -n 5 "$T/odmrd.log" | tr '\n' '|')"; fi
cat "$T/odmrd.log.load" "$T"/odmrd.log.kill* "$T/odmrd.log" >"$T/odmrd.log.all" 2>/dev/null
sanitizer_check "$T/odmrd.log.all" "all runs"
[ "$tap_failed" -eq 0 ] || KEEP_T=1
tap_done
