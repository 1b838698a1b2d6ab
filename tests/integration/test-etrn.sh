#!/bin/sh
# NAME
#	test-etrn.sh - ETRN (RFC 1985) and outbound delivery, end to end
# SYNOPSIS
#	top_srcdir=SRC top_builddir=BUILD sh tests/integration/test-etrn.sh
# DESCRIPTION
#	A real odmrd with a real store; mail is queued with swaks, ETRN is
#	sent by tests/tools/etrn-client.py (swaks has no ETRN) and by
#	fetchmail --protocol ETRN; the customer sites are Postfix's
#	smtp-sink (volume), a private Postfix 3.7 instance (which puts the
#	mail on hold, so that postqueue shows what arrived), a second
#	private Postfix with STARTTLS and a certificate from a test CA, and
#	tests/tools/turn-customer.py for a customer that hangs up.
#
#	Cases: EHLO announces ETRN; 251 on an empty queue; 253 with the
#	right count and every message delivered byte for byte; "@domain"
#	covers the customer domains below; "#name" naming a domain, and
#	not; 459 for --etrn off, for unknown nodes and for non-owners
#	(anonymous and authenticated as someone else); --etrn owner after
#	AUTH on the MX port, and on the ODMR port; 530 on the ODMR port
#	before AUTH; 501 and 503; --route client delivers to the address
#	that sent ETRN (port 25 of an address of the run's own); a repeated
#	ETRN during a flush
#	starts no second flush; the Postfix site holds every message;
#	--tls verify against the test CA succeeds, and a host name the
#	certificate does not carry defers with the reason in odmrctl queue;
#	--tls encrypt with a site that offers no STARTTLS defers, never
#	plaintext; an unreachable route leaves every message queued with
#	its error; a site that hangs up mid-DATA loses nothing and gets the
#	message on the next flush; odmrctl flush does what ETRN does; and
#	no sanitizer report in odmrd's log.
#
#	Whatever must listen on port 25 (the site of --route client, the MX
#	hosts) does so on addresses from free_addr, drawn for this run from
#	127.0.0.0/8, so that two copies of the suite can run at once. Every
#	wait is for its event (a log line after a mark, a port, a file, a
#	queue count), bounded; none is a fixed sleep.
#	KEEP_T=1 keeps the work directory.

. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"
. "$top_srcdir/tests/integration/postfix-lib.sh"

require_cmd swaks swaks
require_cmd smtp-sink postfix
require_cmd postqueue postfix
require_cmd fetchmail fetchmail
require_cmd timeout coreutils
require_built tests/tools/turn-enqueue
if [ "$(id -u)" -ne 0 ]; then
	not_ok "test-etrn.sh needs root: the site of --route client listens on port 25, and Postfix instances run"
	tap_done
fi

odmrd_setup
chmod 711 "$T"
# the sites at port 25, each at an address of this run's own: route
# client's (the ETRN client binds it too), mx1.mx.test (sender.test's MX
# as well), dead.mx.test (nothing listens there) and the Postfix that
# answers for localhost and mx.wrong.test
set -- $(free_addr 25 4)
if [ $# -ne 4 ]; then
	not_ok "free_addr found no 4 free addresses in 127.0.0.0/8 for port 25"
	tap_done
fi
CLIENT_ADDR=$1 MX1_ADDR=$2 DEADMX_ADDR=$3 PT_ADDR=$4
diag "port 25 sites: client $CLIENT_ADDR, mx1 $MX1_ADDR, dead MX $DEADMX_ADDR, Postfix $PT_ADDR"
ETC="$top_srcdir/tests/tools/etrn-client.py"
SINK_PORT=$(free_port)
DEAD_PORT=$(free_port)
odmrd_conf connect_timeout 3s
sink_pid=""; sink2_pid=""; cust_pid=""; PF=""; PT=""
odmrd_extra_cleanup='for p in $sink_pid $sink2_pid $cust_pid; do kill $p 2>/dev/null; done; [ -n "$PF" ] && postfix_stop "$PF"; [ -n "$PT" ] && postfix_stop "$PT"'

# the test CA and a certificate for "localhost" that it signs
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ODMR Test CA" \
    -keyout "$T/ca.key" -out "$T/ca.pem" >/dev/null 2>&1 &&
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$T/site.key" -out "$T/site.csr" >/dev/null 2>&1 &&
printf 'subjectAltName=DNS:localhost\n' >"$T/site.ext" &&
openssl x509 -req -in "$T/site.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
    -CAcreateserial -days 2 -extfile "$T/site.ext" -out "$T/site.pem" \
    >/dev/null 2>&1 || { not_ok "openssl could not make the test CA"; tap_done; }
chmod 644 "$T/site.key"
odmrd_conf tls_ca_file "$T/ca.pem"

printf 'alicepw\n' | octl user add alice >/dev/null
printf 'bobpw\n' | octl user add bob >/dev/null

# sink_start DIR - smtp-sink on 127.0.0.1:$SINK_PORT dumping into DIR
sink_start() {
	mkdir -p "$1" && chmod 777 "$1"
	smtp-sink -u nobody -d "$1/%M." "127.0.0.1:$SINK_PORT" 50 \
	    >"$T/sink.log" 2>&1 &
	sink_pid=$!
	wait_port "$SINK_PORT" || diag "smtp-sink does not listen on $SINK_PORT"
}

# start_customer NAME ARGS... - turn-customer.py dumping into $T/NAME,
# its port in $T/NAME.port; waits for that file (20 s); sets cust_pid
# and CPORT
start_customer() {
	_n=$1; shift
	rm -f "$T/$_n.port"
	python3 "$top_srcdir/tests/tools/turn-customer.py" \
	    --port-file "$T/$_n.port" --dump "$T/$_n" "$@" >"$T/$_n.log" 2>&1 &
	cust_pid=$!
	wait_file "$T/$_n.port" || diag "turn-customer.py $_n wrote no port file"
	CPORT=$(cat "$T/$_n.port" 2>/dev/null)
}

# send DOMAIN N - queue N messages for DOMAIN with swaks
send() {
	_i=1
	while [ $_i -le "$2" ]; do
		swaks -s 127.0.0.1 -p "$SMTP_PORT" -f "sender@remote.test" \
		    -t "user$_i@$1" --header "Subject: $1 $_i" \
		    --body "message $_i for $1" --silent 2 ||
		    diag "swaks could not queue message $_i for $1"
		_i=$((_i + 1))
	done
}

# queued DOMAIN - messages odmrctl shows queued for DOMAIN
queued() {
	octl --json queue "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["messages"]))'
}

# wait_empty DOMAIN SECONDS - until DOMAIN's queue is empty and free
wait_empty() {
	_end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -le $_end ]; do
		if [ "$(queued "$1")" = 0 ] &&
		    ! octl domain show "$1" | grep -q "^flush: *running"; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# etrn ARGS... - the final reply of each command, one per line
etrn() {
	python3 "$ETC" "$@" 2>&1
}

odmrd_start || { not_ok "odmrd starts"; tap_done; }

octl domain add example.org --owner alice --etrn any \
    --route "127.0.0.1:$SINK_PORT" --tls may >/dev/null
octl domain add sub.example.org --owner alice --etrn any \
    --route "127.0.0.1:$SINK_PORT" --tls none >/dev/null
octl domain add off.test --owner alice --etrn off \
    --route "127.0.0.1:$SINK_PORT" >/dev/null
octl domain add owned.test --owner alice --etrn owner \
    --route "127.0.0.1:$SINK_PORT" --tls none >/dev/null
octl domain add client.test --owner alice --etrn owner --route client \
    --tls none >/dev/null
octl domain add dead.test --owner alice --etrn any \
    --route "127.0.0.1:$DEAD_PORT" --tls none >/dev/null

# ---- 1. announcement and syntax -------------------------------------------
out=$(swaks -s 127.0.0.1 -p "$SMTP_PORT" --quit-after EHLO 2>&1)
check "swaks: EHLO on the MX port announces ETRN" \
    sh -c "printf '%s\n' \"\$1\" | grep -q '^<- *250[- ]ETRN\$'" _ "$out"
out=$(etrn --no-ehlo 127.0.0.1 "$SMTP_PORT" "ETRN example.org")
check "ETRN before EHLO gets 503 ($out)" sh -c "echo '$out' | grep -q '^503 '"
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN" "ETRN bad..name" "ETRN two words")
check "ETRN without a node, with a bad name, with two gets 501 each" \
    sh -c "[ \$(echo '$out' | grep -c '^501 ') -eq 3 ]"
out=$(etrn 127.0.0.1 "$SMTP_PORT" "MAIL FROM:<a@remote.test>" "ETRN example.org")
check "ETRN inside a mail transaction gets 503 ($(echo "$out" | tail -1))" \
    sh -c "echo '$out' | tail -1 | grep -q '^503 '"

# ---- 2. reply cases --------------------------------------------------------
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN example.org")
check "251 on an empty queue ($out)" \
    sh -c "echo '$out' | grep -q '^251 OK, no messages waiting for node example.org'"
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN off.test")
check "459 for --etrn off ($out)" \
    sh -c "echo '$out' | grep -q '^459 4.7.1 Node off.test not allowed: ETRN is turned off'"
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN unknown.test")
check "459 for a node that is no customer domain ($out)" \
    sh -c "echo '$out' | grep -q '^459 .*not a customer domain'"
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN #somequeue")
check "459 for #name that names no domain ($out)" \
    sh -c "echo '$out' | grep -q '^459 .*no queue of that name'"
send owned.test 2
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN owned.test")
check "459 for --etrn owner without AUTH ($out)" \
    sh -c "echo '$out' | grep -q '^459 .*needs AUTH as one of its owners'"
out=$(etrn --user bob --password bobpw 127.0.0.1 "$SMTP_PORT" "ETRN owned.test")
check "459 for --etrn owner with AUTH as a non-owner ($out)" \
    sh -c "echo '$out' | grep -q '^459 .*needs AUTH as one of its owners'"
check "the refused ETRNs left owned.test's mail queued" \
    test "$(queued owned.test)" = 2

sink_start "$T/sink1"
send example.org 5
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN example.org")
check "253 with the right count ($out)" \
    sh -c "echo '$out' | grep -q '^253 OK, 5 pending messages for node example.org started'"
check "example.org is delivered and its queue empty" wait_empty example.org 20
check "smtp-sink received the 5 messages" \
    sh -c "[ \$(ls '$T/sink1' | wc -l) -eq 5 ]"
check "each delivered message carries its body" \
    sh -c "for i in 1 2 3 4 5; do grep -l \"message \$i for example.org\" '$T/sink1'/* >/dev/null || exit 1; done"
check "odmrd logged one flush-end with delivered=5" \
    grep -q 'event=flush-end domain=example.org status=done .*delivered=5' "$(odmrd_log)"

out=$(etrn --user alice --password alicepw 127.0.0.1 "$SMTP_PORT" "ETRN owned.test")
check "--etrn owner after AUTH on the MX port: 253 2 ($out)" \
    sh -c "echo '$out' | grep -q '^253 OK, 2 pending messages for node owned.test'"
check "owned.test is delivered" wait_empty owned.test 20

send example.org 2
send sub.example.org 3
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN @example.org")
check "@example.org covers sub.example.org: 253 5 ($out)" \
    sh -c "echo '$out' | grep -q '^253 OK, 5 pending messages for node @example.org'"
check "example.org delivered after @" wait_empty example.org 20
check "sub.example.org delivered after @" wait_empty sub.example.org 20

send example.org 1
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN #example.org")
check "#name naming a customer domain works like the domain ($out)" \
    sh -c "echo '$out' | grep -q '^253 OK, 1 pending messages'"
check "example.org delivered after #" wait_empty example.org 20

# ---- 3. the ODMR port: ETRN after AUTH only --------------------------------
send owned.test 1
out=$(etrn 127.0.0.1 "$ODMR_PORT" "ETRN owned.test")
check "ODMR port: ETRN before AUTH gets 530 ($out)" \
    sh -c "echo '$out' | grep -q '^530 '"
out=$(etrn --user alice --password alicepw 127.0.0.1 "$ODMR_PORT" "ETRN owned.test")
check "ODMR port: ETRN after AUTH as the owner: 253 ($out)" \
    sh -c "echo '$out' | grep -q '^253 OK, 1 pending'"
check "owned.test delivered via the ODMR port's ETRN" wait_empty owned.test 20

# ---- 4. a repeated ETRN during a flush starts no second flush ---------------
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null
start_customer slow --stall-dot
octl domain set example.org --route "127.0.0.1:$CPORT" >/dev/null
send example.org 3
from=$(log_mark)
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN example.org" "ETRN example.org" "ETRN example.org")
check "three ETRNs in a row are all answered 25x" \
    sh -c "[ \$(echo '$out' | grep -c '^25[03] ') -eq 3 ]"
# odmrd logs event=etrn, and event=flush-run for a flush it starts,
# before it replies: once the three are logged, every flush they could
# start is too (no time to wait out)
wait_log_count 'event=etrn node=example.org ' 3 "$from" ||
    diag "odmrd logged $(log_count 'event=etrn node=example.org ' "$from") of the 3 ETRNs"
runs=$(log_count 'event=flush-run domain=example.org ' "$from")
check "only one flush started for them ($runs)" test "$runs" -eq 1
check "the other two found it running (already=yes)" \
    test "$(log_count 'event=etrn node=example.org .*already=yes' "$from")" -eq 2
out=$(octl flush example.org 2>&1); rc=$?
check "odmrctl flush during a running flush: exit 1, says who delivers ($out)" \
    sh -c "[ $rc -eq 1 ] && echo '$out' | grep -q 'being delivered by odmrd'"
kill "$cust_pid"; wait "$cust_pid" 2>/dev/null; cust_pid=""
check "the stalled flush ends when the site goes away" \
    wait_log 'event=flush-end domain=example.org status=failed' "$from"
check "the stalled message is still queued (3 messages)" \
    test "$(queued example.org)" = 3

# ---- 5. a site that hangs up mid-DATA loses nothing -------------------------
start_customer hang --hangup-text 20
octl domain set example.org --route "127.0.0.1:$CPORT" >/dev/null
from=$(log_mark)
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN example.org")
check "ETRN to a site that hangs up mid-DATA starts ($out)" \
    sh -c "echo '$out' | grep -q '^253 '"
check "that flush ends, not completed" \
    wait_log "event=flush-end domain=example.org status=failed.*closed the connection" "$from"
check "all 3 messages are still queued after the hang-up" \
    test "$(queued example.org)" = 3
out=$(octl flush example.org 2>&1); rc=$?
check "odmrctl flush, next time: exit 0 ($out)" test $rc -eq 0
check "odmrctl flush said what it delivered" \
    sh -c "echo '$out' | grep -q 'example.org: delivered 3, deferred 0, failed 0 recipients'"
check "the site now has every message, the hung-up one included" \
    sh -c "[ \$(ls '$T/hang'/*.eml | wc -l) -eq 3 ]"
check "example.org is empty after odmrctl flush" test "$(queued example.org)" = 0
out=$(octl flush example.org 2>&1); rc=$?
check "odmrctl flush with nothing queued: exit 1 ($out)" test $rc -eq 1
kill "$cust_pid"; wait "$cust_pid" 2>/dev/null; cust_pid=""

# ---- 6. an unreachable route leaves every message queued with its error ----
send dead.test 3
from=$(log_mark)
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN dead.test")
check "ETRN to an unreachable route still starts ($out)" \
    sh -c "echo '$out' | grep -q '^253 OK, 3 pending'"
check "the flush to the dead route ends failed" \
    wait_log 'event=flush-end domain=dead.test status=failed' "$from"
check "dead.test keeps its 3 messages" test "$(queued dead.test)" = 3
n=$(octl queue dead.test | grep -c "cannot connect to 127.0.0.1:$DEAD_PORT")
check "odmrctl queue dead.test shows the connection error on each message ($n)" \
    test "$n" -eq 3
octl --json queue dead.test >"$T/dead.json"
check "each message's attempt was counted" python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["messages"]; sys.exit(0 if len(m) == 3 and all(x["attempts"] >= 1 for x in m) else 1)' "$T/dead.json"
out=$(octl flush dead.test 2>&1); rc=$?
check "odmrctl flush to the dead route: exit 3 with the reason" \
    sh -c "[ $rc -eq 3 ] && echo '$out' | grep -q 'cannot connect'"

# ---- 7. --route client: delivery to the address that sent ETRN ---------------
mkdir -p "$T/csink" && chmod 777 "$T/csink"
smtp-sink -u nobody -d "$T/csink/%M." "$CLIENT_ADDR:25" 10 >"$T/csink.log" 2>&1 &
sink2_pid=$!
wait_port 25 "$CLIENT_ADDR" || diag "smtp-sink does not listen on $CLIENT_ADDR:25"
send client.test 2
out=$(etrn --source "$CLIENT_ADDR" --user alice --password alicepw 127.0.0.1 "$SMTP_PORT" "ETRN client.test")
check "route client: ETRN from $CLIENT_ADDR as the owner ($out)" \
    sh -c "echo '$out' | grep -q '^253 OK, 2 pending'"
check "route client: client.test delivered" wait_empty client.test 20
check "route client: the site at $CLIENT_ADDR:25 got both messages" \
    sh -c "[ \$(ls '$T/csink' | wc -l) -eq 2 ]"
check "route client: odmrd connected to $CLIENT_ADDR" \
    log_from_has "event=flush-end domain=client.test status=done relay=$(re_quote "$CLIENT_ADDR[$CLIENT_ADDR]:25")" 1
out=$(octl flush client.test 2>&1); rc=$?
check "odmrctl flush refuses route client (exit 1)" test $rc -eq 1
kill "$sink2_pid"; wait "$sink2_pid" 2>/dev/null; sink2_pid=""

# ---- 7b. --route mx: preference order, a dead best MX, DNS from dns-stub --
# the stub picks its port itself (-p 0) and writes it to dns.ready
python3 "$top_srcdir/tests/tools/dns-stub.py" -p 0 -r "$T/dns.ready" \
    -l "$T/dns.log" \
    "mx.test MX 5 dead.mx.test" "mx.test MX 10 mx1.mx.test" \
    "dead.mx.test A $DEADMX_ADDR" "mx1.mx.test A $MX1_ADDR" \
    "nullmx.test MX 0 ." \
    "mxok.test MX 10 localhost" "localhost A $PT_ADDR" \
    "mxbad.test MX 10 mx.wrong.test" "mx.wrong.test A $PT_ADDR" \
    "sender.test MX 10 mx1.mx.test" \
    >"$T/dns.out" 2>&1 &
dns_pid=$!
odmrd_extra_cleanup="$odmrd_extra_cleanup; kill $dns_pid 2>/dev/null"
wait_file "$T/dns.ready" || diag "dns-stub.py did not start: $(cat "$T/dns.out")"
DNS_PORT=$(cat "$T/dns.ready" 2>/dev/null)
odmrd_stop
odmrd_conf dns_servers "127.0.0.1:$DNS_PORT"
odmrd_start || not_ok "odmrd restarts with dns_servers"
mkdir -p "$T/mxsink" && chmod 777 "$T/mxsink"
smtp-sink -u nobody -d "$T/mxsink/%M." "$MX1_ADDR:25" 10 >"$T/mxsink.log" 2>&1 &
sink2_pid=$!
wait_port 25 "$MX1_ADDR" || diag "smtp-sink does not listen on $MX1_ADDR:25"
octl domain add mx.test --owner alice --etrn any --route mx --tls may >/dev/null
octl domain add nullmx.test --owner alice --etrn any --route mx >/dev/null
send mx.test 2
send nullmx.test 1
from=$(log_mark)
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN mx.test" "ETRN nullmx.test")
check "--route mx: mx.test delivered" wait_empty mx.test 30
check "--route mx: the dead best MX (pref 5) was tried first" \
    log_from_has 'event=flush-connect-error domain=mx.test relay=dead.mx.test:25' "$from"
check "--route mx: delivered by the pref 10 MX, $MX1_ADDR" \
    log_from_has "event=flush-end domain=mx.test status=done relay=mx1.mx.test\\[$(re_quote "$MX1_ADDR")\\]:25" "$from"
check "--route mx: the site got both messages" \
    sh -c "[ \$(ls '$T/mxsink' | wc -l) -eq 2 ]"
check "--route mx: a null MX (RFC 7505) fails the flush" \
    wait_log 'event=flush-end domain=nullmx.test status=failed' "$from"
n=$(octl queue nullmx.test | grep -c 'MX lookup for nullmx.test failed')
check "--route mx: the null MX reason is on the queued message ($n)" test "$n" -eq 1
# a DSN goes to the MX of its recipient's domain when bounce_relay is unset
start_customer rej --reject bad@rej.test
octl domain add rej.test --owner alice --etrn any \
    --route "127.0.0.1:$CPORT" --tls none >/dev/null
swaks -s 127.0.0.1 -p "$SMTP_PORT" -f someone@sender.test -t bad@rej.test \
    --header "Subject: will bounce" --silent 2
nmx=$(ls "$T/mxsink" | wc -l)
from=$(log_mark)
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN rej.test")
check "the 550 from rej.test's site queues a DSN" \
    wait_log 'event=dsn-queued .*kind=failure to=<someone@sender.test>' "$from"
check "the DSN is delivered to sender.test's MX ($MX1_ADDR)" \
    wait_log "event=flush-end domain=dsn.odmr.invalid status=done relay=mx1.mx.test\\[$(re_quote "$MX1_ADDR")\\]:25" "$from"
check "sender.test's MX received the DSN" \
    sh -c "[ \$(ls '$T/mxsink' | wc -l) -eq $((nmx + 1)) ] && grep -l 'Undelivered Mail Returned to Sender' '$T/mxsink'/* >/dev/null"
# a DSN to a domain that does not exist fails at once (no 5-day retry)
swaks -s 127.0.0.1 -p "$SMTP_PORT" -f someone@nowhere.test -t bad@rej.test \
    --header "Subject: will bounce into nothing" --silent 2
from=$(log_mark)
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN rej.test")
check "a DSN for a sender domain with no DNS (NXDOMAIN) fails at once" \
    wait_log 'event=dsn-undeliverable domain=dsn.odmr.invalid destination=nowhere.test failed=1 to_postmaster=0 lost=1' "$from"
check "and leaves the DSN domain empty" test "$(queued dsn.odmr.invalid)" = 0
kill "$cust_pid"; wait "$cust_pid" 2>/dev/null; cust_pid=""
kill "$sink2_pid"; wait "$sink2_pid" 2>/dev/null; sink2_pid=""

# ---- 8. a real Postfix as the customer site, and fetchmail --protocol ETRN --
PF="$T/pf"; PFPORT=$(free_port)
if postfix_setup "$PF" "$PFPORT" &&
    postfix_conf "$PF" 'myhostname = customer-site.test' \
	'smtpd_recipient_restrictions = check_recipient_access inline:{ postfix.test=HOLD }' &&
    postfix_start "$PF"; then
	ok "a private Postfix runs on 127.0.0.1:$PFPORT"
	octl domain add postfix.test --owner alice --etrn any \
	    --route "127.0.0.1:$PFPORT" --tls none >/dev/null
	send postfix.test 4
	mkdir -p "$T/fm" && chmod 700 "$T/fm"
	HOME="$T/fm" FETCHMAILHOME="$T/fm" timeout 60 fetchmail -v -N -d0 \
	    --nosyslog --pidfile "$T/fm/fetchmail.pid" -p ETRN -P "$SMTP_PORT" \
	    --fetchdomains postfix.test \
	    127.0.0.1 >"$T/fm.log" 2>&1
	rc=$?
	check "fetchmail --protocol ETRN exits 0 (rc=$rc)" test $rc -eq 0
	check "fetchmail saw the 253 reply" grep -q '253 OK, 4 pending' "$T/fm.log"
	check "postfix.test is delivered to Postfix" wait_empty postfix.test 30
	# until cleanup has filed all four into the hold queue
	postfix_wait_held "$PF" 4 || diag "Postfix's hold queue has $(postfix_held "$PF") of 4"
	held=$(postfix_held "$PF")
	check "Postfix holds the 4 messages ($held)" test "$held" -eq 4
	HOME="$T/fm" FETCHMAILHOME="$T/fm" timeout 60 fetchmail -v -N -d0 \
	    --nosyslog --pidfile "$T/fm/fetchmail.pid" -p ETRN -P "$SMTP_PORT" \
	    --fetchdomains postfix.test \
	    127.0.0.1 >"$T/fm2.log" 2>&1
	rc=$?
	check "fetchmail --protocol ETRN on an empty queue reports 251" \
	    grep -q 'No messages waiting for postfix.test' "$T/fm2.log"
else
	not_ok "a private Postfix runs on 127.0.0.1:$PFPORT"
	sed 's/^/#   /' "$PF/start.log"
fi

# ---- 9. TLS: verify against the test CA, wrong name, encrypt without TLS ---
PT="$T/pt"; PTPORT=$(free_port)
if postfix_setup "$PT" "$PTPORT" &&
    postfix_conf "$PT" 'myhostname = localhost' \
	"smtpd_tls_cert_file = $T/site.pem" "smtpd_tls_key_file = $T/site.key" \
	'smtpd_tls_security_level = may' \
	'smtpd_recipient_restrictions = check_recipient_access inline:{ tls.test=HOLD, tlsname.test=HOLD, mxok.test=HOLD, mxbad.test=HOLD }' &&
    echo "$PT_ADDR:25 inet n - n - - smtpd" >>"$PT/conf/master.cf" &&
    postfix_start "$PT" && wait_port 25 "$PT_ADDR"; then
	ok "a private Postfix with STARTTLS runs on 127.0.0.1:$PTPORT"
	octl domain add tls.test --owner alice --etrn any \
	    --route "localhost:$PTPORT" --tls verify >/dev/null
	octl domain add tlsname.test --owner alice --etrn any \
	    --route "127.0.0.1:$PTPORT" --tls verify >/dev/null
	send tls.test 2
	send tlsname.test 2
	from=$(log_mark)
	out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN tls.test" "ETRN tlsname.test")
	check "ETRN for both TLS domains starts" \
	    sh -c "[ \$(echo '$out' | grep -c '^253 ') -eq 2 ]"
	check "--tls verify, name localhost, test CA: delivered" wait_empty tls.test 30
	check "--tls verify: the session ran inside TLS and verified" \
	    grep -q 'event=turn-tls relay=.* verified=yes name=localhost' "$(odmrd_log)"
	check "--tls verify, a name the certificate lacks: flush fails" \
	    wait_log 'event=flush-end domain=tlsname.test status=failed' "$from"
	check "--tls verify, wrong name: both messages stay queued" \
	    test "$(queued tlsname.test)" = 2
	n=$(octl queue tlsname.test | grep -c 'TLS handshake with 127.0.0.1 failed')
	check "--tls verify, wrong name: odmrctl queue shows the TLS reason ($n)" \
	    test "$n" -eq 2
	# MX hosts: the name checked is the MX host's (DNS from dns-stub)
	octl domain add mxok.test --owner alice --etrn any --route mx \
	    --tls verify >/dev/null
	octl domain add mxbad.test --owner alice --etrn any --route mx \
	    --tls verify >/dev/null
	send mxok.test 1
	send mxbad.test 1
	from=$(log_mark)
	out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN mxok.test" "ETRN mxbad.test")
	check "--route mx --tls verify, MX host localhost: delivered" \
	    wait_empty mxok.test 30
	check "--route mx --tls verify, MX host mx.wrong.test: flush fails" \
	    wait_log 'event=flush-end domain=mxbad.test status=failed' "$from"
	n=$(octl queue mxbad.test | grep -c 'TLS handshake with mx.wrong.test failed.*mismatch')
	check "--route mx, a host name the certificate lacks: deferred with the reason ($n)" \
	    test "$n" -eq 1
else
	not_ok "a private Postfix with STARTTLS runs on 127.0.0.1:$PTPORT"
	sed 's/^/#   /' "$PT/start.log"
fi
sink_start "$T/sink3"
octl domain add enc.test --owner alice --etrn any \
    --route "127.0.0.1:$SINK_PORT" --tls encrypt >/dev/null
send enc.test 2
from=$(log_mark)
out=$(etrn 127.0.0.1 "$SMTP_PORT" "ETRN enc.test")
check "--tls encrypt with a site without STARTTLS: flush fails" \
    wait_log 'event=flush-end domain=enc.test status=failed.*does not offer STARTTLS' "$from"
check "--tls encrypt: nothing sent in plaintext" \
    sh -c "[ \$(ls '$T/sink3' | wc -l) -eq 0 ]"
n=$(octl queue enc.test | grep -c 'TLS is required')
check "--tls encrypt: the reason is on each queued message ($n)" test "$n" -eq 2

# ---- 9b. --retry: the node tries on its own, and backs off ----------------
octl domain add retry.test --owner alice --etrn off \
    --route "127.0.0.1:$SINK_PORT" --tls none --retry 2s >/dev/null
octl domain add retrydead.test --owner alice --etrn off \
    --route "127.0.0.1:$DEAD_PORT" --tls none --retry 1s >/dev/null
out=$(octl domain show retry.test | grep '^retry')
check "domain show says retry 2s ($out)" sh -c "echo '$out' | grep -q '2s'"
send retry.test 2
send retrydead.test 1
check "--retry: retry.test is delivered without any ETRN" wait_empty retry.test 30
check "--retry: the flush was started by the retry scan" \
    grep -q 'event=flush-run domain=retry.test trigger=retry' "$(odmrd_log)"
check "--retry: a dead route backs off" \
    wait_log 'event=retry-backoff domain=retrydead.test next_in=2s' 1 30
check "--retry: the dead route's message stays queued" \
    test "$(queued retrydead.test)" = 1
octl domain set retrydead.test --retry off >/dev/null
out=$(octl domain show retrydead.test | grep '^retry')
check "domain set --retry off ($out)" sh -c "echo '$out' | grep -q 'off'"

# ---- 10. the end -----------------------------------------------------------
odmrd_stop; rc=$?
check "odmrd stops cleanly (exit $rc)" test $rc -eq 0
check "no sanitizer report in odmrd's log" \
    sh -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer' '$(odmrd_log)'"
tap_done
