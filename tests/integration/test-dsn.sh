#!/bin/sh
# NAME
#	test-dsn.sh - DSNs end to end: failures, expiry, odmrctl bounce,
#	NOTIFY, the null sender, double bounces
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-dsn.sh
# DESCRIPTION
#	A real odmrd and store. Mail is queued with swaks and delivered by
#	ETRN to tests/tools/turn-customer.py, which answers 550 for some
#	recipients. bounce_relay points to a second turn-customer.py, which
#	captures every DSN odmrd sends; tests/tools/dsn-check.py (Python's
#	email package) checks each one: multipart/report structure, the
#	per-recipient fields, the returned content for RET=FULL and
#	RET=HDRS. Cases: a customer's 550 (the 250'd recipient is not
#	reported); RET=HDRS; NOTIFY=NEVER (no DSN); NOTIFY=SUCCESS to a
#	customer without DSN ("relayed"); expiry after the domain's
#	--lifetime (4.4.7, the message leaves the queue); odmrctl bounce;
#	the null sender is never bounced, and without a postmaster the loss
#	is logged; with postmaster set, a double bounce reaches it; DSNs
#	wait in the DSN domain (odmrctl queue) while bounce_relay is down,
#	and mail to the DSN domain is refused.
#
#	"Nothing more arrives" is never a fixed sleep: it is checked once
#	odmrd has finished the work that would have sent it (the DSN domain
#	empty, or whole bounce rounds that began after the cause, as its
#	debug log shows: event=bounce-state from=deliver to=idle).
#	KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"

require_cmd swaks swaks
require_cmd timeout coreutils
odmrd_setup
TC="$top_srcdir/tests/tools/turn-customer.py"
CHECK="$top_srcdir/tests/tools/dsn-check.py"
ETC="$top_srcdir/tests/tools/etrn-client.py"
cust_pid=""; relay_pid=""
odmrd_extra_cleanup='for p in $cust_pid $relay_pid; do kill $p 2>/dev/null; done'

# start_tc NAME ARGS... - a turn-customer.py; sets TC_PORT and TC_PID
start_tc() {
	_n=$1; shift
	rm -f "$T/$_n.port"
	python3 "$TC" --port-file "$T/$_n.port" --dump "$T/$_n" "$@" \
	    >"$T/$_n.log" 2>&1 &
	TC_PID=$!
	wait_file "$T/$_n.port" || diag "turn-customer.py $_n wrote no port file"
	TC_PORT=$(cat "$T/$_n.port" 2>/dev/null)
}

# has_files DIR N - DIR holds N captured messages (NNNN.json, which
# turn-customer.py writes after NNNN.eml, each whole)
has_files() {
	[ "$(ls "$1"/*.json 2>/dev/null | wc -l)" -ge "$2" ]
}

# wait_files DIR N SECONDS - until DIR holds N captured messages
wait_files() {
	wait_until "$3" has_files "$1" "$2"
}

# wait_rounds N - until N bounce rounds have ended after this call: with
# N >= 2 at least one began after it, so whatever was queued before has
# had a whole round to be delivered (bounce_interval is 1 s)
wait_rounds() {
	wait_log_count 'event=bounce-state from=deliver to=idle' "$1" "$(log_mark)" 30 ||
	    diag "fewer than $1 bounce rounds ended in 30 s"
}

# dsn_empty - the DSN domain holds nothing
dsn_empty() {
	[ "$(queued dsn.odmr.invalid)" = 0 ]
}

# dsncheck ARGS... - dsn-check.py; its "ok:" line must not reach TAP
dsncheck() {
	python3 "$CHECK" "$@" >"$T/dsncheck.out" 2>&1 && return 0
	sed 's/^/# /' "$T/dsncheck.out"
	return 1
}

# queued DOMAIN - how many messages odmrctl lists for DOMAIN
queued() {
	octl --json queue "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["messages"]))'
}

# send ARGS... - swaks to odmrd; prints the queue id
send() {
	swaks -s 127.0.0.1 -p "$SMTP_PORT" "$@" 2>&1 |
	    sed -n 's/.*250 2.0.0 Ok: queued as \([0-9A-F]*\).*/\1/p'
}

# smtp_send TEXT COMMAND... - one message with exact MAIL/RCPT parameters
# (swaks cannot give RET, ENVID or NOTIFY); prints its queue id
smtp_send() {
	_text=$1; shift
	python3 "$ETC" --data "$_text" 127.0.0.1 "$SMTP_PORT" "$@" DATA |
	    sed -n 's/.*queued as \([0-9A-F]*\).*/\1/p'
}

# rcpt_of FILE - the RCPT addresses a captured message came with
rcpt_of() {
	python3 -c 'import json,sys; print(" ".join(r.split(":",1)[1].split()[0].strip("<>") for r in json.load(open(sys.argv[1]))["rcpts"]))' "$1"
}

# the DSN catcher first: bounce_relay needs its port
start_tc relay
relay_pid=$TC_PID; RELAY_PORT=$TC_PORT
odmrd_conf bounce_relay "127.0.0.1:$RELAY_PORT"
odmrd_conf bounce_interval 1s
odmrd_start || { not_ok "odmrd starts"; tap_done; }
printf 'alicepw\n' | octl user add alice >/dev/null

start_tc cust --reject bad@example.org --no-dsn
cust_pid=$TC_PID
octl domain add example.org --owner alice --etrn any \
    --route "127.0.0.1:$TC_PORT" --tls none >/dev/null
octl domain add exp.test --owner alice --etrn off --lifetime 2s >/dev/null

# ---- 1. a customer's 550: a failure DSN for that recipient only -----------
id1=$(send -f sender@remote.test -t good@example.org,bad@example.org \
    --header "Subject: dsn one" --body "first message")
check "queued the first message ($id1)" test -n "$id1"
octl show "$id1" --raw >"$T/orig1.eml"
# swaks cannot add RET=HDRS: a raw session does
id2=$(smtp_send "Subject: hdrs

headers only, please" "MAIL FROM:<hdrs@remote.test> RET=HDRS ENVID=env-42" \
    "RCPT TO:<bad@example.org> NOTIFY=FAILURE")

check "queued the RET=HDRS message ($id2)" test -n "$id2"
octl show "$id2" --raw >"$T/orig2.eml"
id3=$(smtp_send "Subject: never

no DSN for the failure" "MAIL FROM:<never@remote.test>" \
    "RCPT TO:<bad@example.org> NOTIFY=NEVER" \
    "RCPT TO:<good@example.org> NOTIFY=SUCCESS")
check "queued the NOTIFY=NEVER/SUCCESS message ($id3)" test -n "$id3"
from=$(log_mark)
out=$(python3 "$ETC" 127.0.0.1 "$SMTP_PORT" "ETRN example.org")
check "ETRN example.org starts ($out)" sh -c "echo '$out' | grep -q '^253 '"
check "the flush ends" wait_log 'event=flush-end domain=example.org' "$from"
check "three DSNs reach bounce_relay (two failures, one relayed)" \
    wait_files "$T/relay" 3 20
# every DSN of that flush was queued before its flush-end: once the DSN
# domain is empty, all of them reached bounce_relay, a fourth one too
wait_until 20 dsn_empty || diag "the DSN domain still holds $(queued dsn.odmr.invalid)"
n=$(ls "$T/relay"/*.eml 2>/dev/null | wc -l)
check "exactly three DSNs, not one for NOTIFY=NEVER ($n)" test "$n" -eq 3
for j in "$T/relay"/*.json; do
	e=${j%.json}.eml
	case "$(rcpt_of "$j")" in
	sender@remote.test) D1=$e ;;
	hdrs@remote.test) D2=$e ;;
	never@remote.test) D3=$e ;;
	esac
done
check "each DSN is sent from the null sender" \
    sh -c "! grep -h '\"mail\"' '$T/relay'/*.json | grep -v 'FROM:<>'"
check "failure DSN: structure, fields, full return (dsn-check.py)" \
    dsncheck "$D1" --original "$T/orig1.eml" --kind failure \
    --sender sender@remote.test --rcpts 1 --return full \
    --field 0:Final-Recipient="rfc822; bad@example.org" \
    --field 0:Action=failed --field 0:Status=5.1.1 \
    --field msg:Reporting-MTA="dns; mx.odmr.test"
check "failure DSN: the Diagnostic-Code is the customer's 550" \
    grep -q '^Diagnostic-Code: smtp; 550 5.1.1' "$D1"
check "failure DSN: the delivered recipient is not reported" \
    sh -c "! grep -q 'good@example.org' '$D1' || ! grep -q 'Final-Recipient: rfc822; good@' '$D1'"
check "RET=HDRS: headers only, ENVID kept (dsn-check.py)" \
    dsncheck "$D2" --original "$T/orig2.eml" --kind failure \
    --sender hdrs@remote.test --rcpts 1 --return headers --envid env-42
check "NOTIFY=SUCCESS to a customer without DSN: a 'relayed' DSN" \
    dsncheck "$D3" --kind success --sender never@remote.test \
    --rcpts 1 --return headers --field 0:Action=relayed
check "odmrd logged event=dsn-queued for the failures" \
    sh -c "[ \$(grep -c 'event=dsn-queued id=.* kind=failure' '$(odmrd_log)') -eq 2 ]"
check "the DSN domain is empty once the DSNs are delivered" \
    test "$(queued dsn.odmr.invalid)" = 0

# ---- 2. the null sender is never bounced ----------------------------------
id4=$(send -f '<>' -t bad@example.org --header "Subject: from nobody")
check "queued a message from <> ($id4)" test -n "$id4"
before=$(ls "$T/relay"/*.eml | wc -l)
python3 "$ETC" 127.0.0.1 "$SMTP_PORT" "ETRN example.org" >/dev/null
check "the failure of a message from <> is logged as a lost DSN" \
    wait_log "event=dsn-lost id=$id4"
# a DSN for it would have been queued by now: a whole round delivers it
wait_rounds 2
after=$(ls "$T/relay"/*.eml | wc -l)
check "no DSN was sent for the message from <> ($before -> $after)" \
    test "$after" -eq "$before"

# ---- 3. expiry after --lifetime -------------------------------------------
id5=$(send -f late@remote.test -t user@exp.test --header "Subject: too late")
check "queued a message for exp.test (--lifetime 2s) ($id5)" test -n "$id5"
check "the bounce round expires it" wait_log "event=expired id=$id5 domain=exp.test" 1 15
check "exp.test's queue is empty after expiry" test "$(queued exp.test)" = 0
check "the expiry DSN reaches bounce_relay" wait_files "$T/relay" $((after + 1)) 15
D5=$(grep -l 'late@remote.test' "$T/relay"/*.json | sed 's/json$/eml/')
check "expiry DSN: status 4.4.7, full return (dsn-check.py)" \
    dsncheck "$D5" --kind failure --sender late@remote.test \
    --rcpts 1 --return full --field 0:Status=4.4.7 --field 0:Action=failed

# ---- 4. DSNs wait while bounce_relay is down; odmrctl bounce --------------
kill "$relay_pid"; wait "$relay_pid" 2>/dev/null; relay_pid=""
octl domain set example.org --route "127.0.0.1:1" >/dev/null
id6=$(send -f admin@remote.test -t good@example.org --header "Subject: returned")
check "queued a message to bounce by hand ($id6)" test -n "$id6"
out=$(octl bounce "$id6"); rc=$?
check "odmrctl bounce: exit 0, DSN queued ($out)" \
    sh -c "[ $rc -eq 0 ] && echo '$out' | grep -q 'DSN .* queued to <admin@remote.test>'"
octl queue example.org >"$T/q6.out" 2>&1
check "the bounced message left example.org's queue" \
    sh -c "! grep -q '$id6' '$T/q6.out'"
out=$(octl bounce "$id6" 2>&1); rc=$?
check "odmrctl bounce of a message already gone: exit 1" test $rc -eq 1
# a whole round has tried bounce_relay, which is down
wait_rounds 2
n=$(queued dsn.odmr.invalid)
check "the DSN waits in the DSN domain while bounce_relay is down ($n)" \
    test "$n" -ge 1
octl queue >"$T/queue.out"
check "odmrctl queue lists the DSN domain" grep -q '^dsn.odmr.invalid' "$T/queue.out"
out=$(swaks -s 127.0.0.1 -p "$SMTP_PORT" -f a@remote.test \
    -t x@dsn.odmr.invalid 2>&1)
check "mail to the DSN domain is refused with 550 5.7.1" \
    sh -c "printf '%s' \"\$1\" | grep -q '550 5.7.1'" _ "$out"
start_tc relay2
relay_pid=$TC_PID
odmrd_stop
odmrd_conf bounce_relay "127.0.0.1:$TC_PORT"
odmrd_conf postmaster "postmaster@isp.test"
odmrd_conf delay_warning 3s
odmrd_start || not_ok "odmrd restarts"
check "after the restart the waiting DSN is delivered" wait_files "$T/relay2" 1 20
D6=$(grep -l 'admin@remote.test' "$T/relay2"/*.json | sed 's/json$/eml/')
check "odmrctl bounce's DSN: 5.0.0, returned by the administrator" \
    dsncheck "$D6" --kind failure --sender admin@remote.test \
    --rcpts 1 --return full --field 0:Status=5.0.0 \
    --text "returned by the administrator"

# ---- 5. a double bounce reaches the postmaster ----------------------------
octl domain set example.org --route "127.0.0.1:$(cat "$T/cust.port")" >/dev/null
id7=$(send -f '<>' -t bad@example.org --header "Subject: bounce of a bounce")
python3 "$ETC" 127.0.0.1 "$SMTP_PORT" "ETRN example.org" >/dev/null
check "the failed message from <> makes a double bounce" \
    wait_log "event=dsn-queued id=$id7 .*to=<postmaster@isp.test> double_bounce=yes"
check "the double bounce reaches bounce_relay" wait_files "$T/relay2" 2 20
check "the double bounce goes to the postmaster" \
    sh -c "grep -l 'postmaster@isp.test' '$T/relay2'/*.json | grep -q ."

# ---- 6. delay DSNs after delay_warning, once, as NOTIFY allows ------------
octl domain add slow.test --owner alice --etrn off >/dev/null
before=$(ls "$T/relay2"/*.eml | wc -l)
id8=$(send -f waiting@remote.test -t user@slow.test --header "Subject: slow")
id9=$(smtp_send "Subject: no delay report

failures only" "MAIL FROM:<quiet@remote.test>" \
    "RCPT TO:<user@slow.test> NOTIFY=FAILURE")
check "queued two messages for slow.test ($id8 $id9)" \
    sh -c "[ -n '$id8' ] && [ -n '$id9' ]"
check "a delay DSN is reported for the waiting message" \
    wait_log "event=delayed id=$id8 domain=slow.test rcpts=1 dsn=queued"
check "the NOTIFY=FAILURE message is marked, with no DSN" \
    wait_log "event=delayed id=$id9 domain=slow.test rcpts=1 dsn=none"
check "the delay DSN reaches bounce_relay" wait_files "$T/relay2" $((before + 1)) 20
# more rounds, each with the delay scan (every delay_warning/10): none
# may report the messages again
wait_rounds 4
after=$(ls "$T/relay2"/*.eml | wc -l)
check "one delay DSN only, however many rounds ($before -> $after)" \
    test "$after" -eq $((before + 1))
D8=$(grep -l 'waiting@remote.test' "$T/relay2"/*.json | sed 's/json$/eml/')
check "delay DSN: 'delayed', Will-Retry-Until, headers only (dsn-check.py)" \
    dsncheck "$D8" --kind delay --sender waiting@remote.test --rcpts 1 \
    --return headers --field 0:Action=delayed
check "the delayed messages are still queued" test "$(queued slow.test)" = 2

odmrd_stop; rc=$?
check "odmrd stops cleanly (exit $rc)" test $rc -eq 0
check "no sanitizer report in odmrd's log" \
    sh -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' '$(odmrd_log)'"
tap_done
