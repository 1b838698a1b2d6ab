#!/bin/sh
# NAME
#	test-turn-mx.sh - the MX resolver of outbound delivery (turn_mx)
#	against a private DNS server
# SYNOPSIS
#	top_srcdir=... top_builddir=... sh tests/integration/test-turn-mx.sh
# DESCRIPTION
#	Starts tests/tools/dns-stub.py on 127.0.0.1 (and ::1 when the host
#	has IPv6 loopback) at a free port, with the zone below, and runs
#	tests/tools/mx-lookup (turn_mx_resolve() and turn_mx_hosts()) with
#	-s pointing there. Cases: MX preference order; equal preferences
#	shuffled (over many runs, on several threads, both orders occur);
#	no MX: A/AAAA fallback, or PERMFAIL 5.4.4 without them; null MX
#	(5.1.10); NXDOMAIN (5.1.2); SERVFAIL and REFUSED (4.4.3); a server
#	that never answers (4.4.3 within the measured bound); one MX host
#	silent, the other used within the bound; MX hosts without an
#	address (4.4.4); an MX host whose lookup fails (4.4.3); IPv6-only
#	host, address family order and -4/-6; duplicate addresses listed
#	once; the 32-address cap (its answer truncated over UDP and
#	fetched over TCP); this node among the MX hosts (RFC 5321 5.1);
#	the explicit route form (literal IPv4, [v6]:port, names, a name
#	without address, syntax errors, literals without any DNS); bad
#	server list and bad domain; an IPv6 DNS server address.
#	Every mx-lookup runs under the sanitizers of the build: a leak or
#	a runtime error changes its exit status, and the last case checks
#	that no report was written at all.
#	Output is TAP (tests/tap.sh).

: "${top_srcdir:?set top_srcdir}" "${top_builddir:?set top_builddir}"
# shellcheck source=tests/tap.sh
. "$top_srcdir/tests/tap.sh"
# shellcheck source=tests/integration/odmrd-lib.sh
. "$top_srcdir/tests/integration/odmrd-lib.sh"

ML=$top_builddir/tests/tools/mx-lookup
STUB=$top_srcdir/tests/tools/dns-stub.py
BOUND_MS=2000		# -t of the timeout cases; c-ares alone would
			# take 2800 ms (tries of 400, 800, 1600 ms)
SLACK_MS=600		# what a loaded CI host may add to it

require_cmd python3 python3
require_built "$ML"

T=$(mktemp -d "${TMPDIR:-/tmp}/test-turn-mx.XXXXXX") || exit 1
stub_pid=""
cleanup() {
	[ -n "$stub_pid" ] && kill "$stub_pid" 2>/dev/null
	if [ -n "${KEEP_T:-}" ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

cat >"$T/zone" <<'ZONE'
# MX preference order: listed out of order on purpose
pref.test MX 30 c.pref.test
pref.test MX 10 a.pref.test
pref.test MX 20 b.pref.test
a.pref.test A 127.0.1.1
b.pref.test A 127.0.1.2
c.pref.test A 127.0.1.3
# two hosts of equal preference, after a more preferred one
eq.test MX 10 x.eq.test
eq.test MX 10 y.eq.test
eq.test MX 5 first.eq.test
first.eq.test A 127.0.2.1
x.eq.test A 127.0.2.10
y.eq.test A 127.0.2.20
# no MX: the domain is its own MX; or has no address either
implicit.test A 127.0.3.1
implicit.test AAAA 2001:db8::31
txtonly.test TXT no-mail-here
# RFC 7505
null.test MX 0 .
# failures
servfail.test SERVFAIL
refused.test REFUSED
silent.test DROP
# MX hosts without an address: NXDOMAIN and NODATA
noaddr.test MX 10 gone.noaddr.test
noaddr.test MX 20 empty.noaddr.test
empty.noaddr.test TXT nothing
# the only MX host's lookup fails
badhost.test MX 10 broken.badhost.test
broken.badhost.test SERVFAIL
# the best MX host never answers, the second does
halfsilent.test MX 10 quiet.halfsilent.test
halfsilent.test MX 20 ok.halfsilent.test
quiet.halfsilent.test DROP
ok.halfsilent.test A 127.0.4.2
# IPv6-only host; dual-stack host
v6.test MX 10 mx.v6.test
mx.v6.test AAAA 2001:db8::61
mx.v6.test AAAA 2001:db8::62
dual.test MX 10 mx.dual.test
mx.dual.test A 127.0.5.1
mx.dual.test AAAA 2001:db8::51
# two MX hosts on one address
dup.test MX 10 a.dup.test
dup.test MX 20 b.dup.test
a.dup.test A 127.0.9.1
b.dup.test A 127.0.9.1
# this node (mx.odmr.test) among the MX hosts
loop.test MX 10 primary.loop.test
loop.test MX 20 mx.odmr.test
loop.test MX 30 tertiary.loop.test
primary.loop.test A 127.0.10.1
tertiary.loop.test A 127.0.10.3
mx.odmr.test A 127.0.10.2
selfbest.test MX 10 mx.odmr.test
selfbest.test MX 20 backup.selfbest.test
backup.selfbest.test A 127.0.10.4
# the explicit route form
r1.route.test A 127.0.8.1
r1.route.test AAAA 2001:db8::81
ZONE
# the address cap: 40 addresses on the best host, one more host
echo "many.test MX 10 mx.many.test" >>"$T/zone"
echo "many.test MX 20 mx2.many.test" >>"$T/zone"
i=1
while [ $i -le 40 ]; do
	echo "mx.many.test A 127.0.6.$i" >>"$T/zone"
	i=$((i + 1))
done
echo "mx2.many.test A 127.0.7.1" >>"$T/zone"

# has_ipv6 - whether ::1 can be bound here
has_ipv6() {
	python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null
}

# stub_ready - the stub wrote its port, or died
stub_ready() {
	[ -s "$T/ready" ] || ! kill -0 "$stub_pid" 2>/dev/null
}

# stub_start - dns-stub.py on a port it picks itself (-p 0: free for UDP
# and TCP, no race with another run); sets DNS_PORT, stub_pid
stub_start() {
	_addrs="-a 127.0.0.1"
	has_ipv6 && _addrs="$_addrs -a ::1"
	rm -f "$T/ready"
	# shellcheck disable=SC2086
	python3 "$STUB" -p 0 $_addrs -z "$T/zone" \
	    -l "$T/dns.log" -r "$T/ready" 2>"$T/dns.err" &
	stub_pid=$!
	wait_until 20 stub_ready
	DNS_PORT=$(cat "$T/ready" 2>/dev/null)
	[ -n "$DNS_PORT" ] && return 0
	kill "$stub_pid" 2>/dev/null
	wait "$stub_pid" 2>/dev/null
	stub_pid=""
	return 1
}

if ! stub_start; then
	not_ok "dns-stub.py did not start: $(cat "$T/dns.err")"
	tap_done
fi
SERVER=127.0.0.1:$DNS_PORT

# ml NAME ARGS... - mx-lookup against the stub; $T/NAME.out, RC, MS
ml() {
	_n=$1; shift
	_t0=$(date +%s%N)
	"$ML" -s "$SERVER" -t 5000 "$@" >"$T/$_n.out" 2>"$T/$_n.err"
	RC=$?
	_t1=$(date +%s%N)
	MS=$(( (_t1 - _t0) / 1000000 ))
	cat "$T/$_n.err" >>"$T/stderr.all"
}

# field NAME KEY - the value of "status", "code" or "error"
field() {
	sed -n "s/^$2 //p" "$T/$1.out"
}

# addrs NAME - the address lines, "PREF HOST ADDRESS PORT"
addrs() {
	grep -E '^[0-9]+ ' "$T/$1.out"
}

# expect NAME RC STATUS CODE DESCRIPTION - one result, whole
expect() {
	_n=$1; _rc=$2; _st=$3; _code=$4; shift 4
	if [ "$RC" -eq "$_rc" ] && [ "$(field "$_n" status)" = "$_st" ] &&
	    [ "$(field "$_n" code)" = "$_code" ]; then
		ok "$*"
	else
		not_ok "$* (exit $RC, want $_rc $_st $_code)"
		sed 's/^/#   /' "$T/$_n.out"
	fi
}

# expect_addrs NAME DESCRIPTION - the address lines are stdin exactly
expect_addrs() {
	_n=$1; shift
	cat >"$T/$_n.want"
	if [ "$RC" -eq 0 ] && addrs "$_n" | cmp -s - "$T/$_n.want"; then
		ok "$*"
	else
		not_ok "$* (exit $RC)"
		sed 's/^/#   got: /' "$T/$_n.out"
		sed 's/^/#   want: /' "$T/$_n.want"
	fi
}

# --- the MX records ---------------------------------------------------

ml pref pref.test
expect_addrs pref "MX hosts in preference order, not the zone's order" <<'EOF'
10 a.pref.test 127.0.1.1 25
20 b.pref.test 127.0.1.2 25
30 c.pref.test 127.0.1.3 25
EOF

ml port -p 2525 pref.test
expect_addrs port "the port asked for is in every address" <<'EOF'
10 a.pref.test 127.0.1.1 2525
20 b.pref.test 127.0.1.2 2525
30 c.pref.test 127.0.1.3 2525
EOF

ml eq -r 60 -j 4 eq.test
orders=$(sort -u "$T/eq.out")
n_runs=$(grep -c '^run OK 127\.0\.2\.1,127\.0\.2\.\(10,127\.0\.2\.20\|20,127\.0\.2\.10\)$' "$T/eq.out")
if [ "$RC" -eq 0 ] && [ "$n_runs" -eq 60 ]; then
	ok "equal preferences: both hosts, after the preferred one, in 60 runs on 4 threads"
else
	not_ok "equal preferences: $n_runs of 60 runs as expected (exit $RC)"
	echo "$orders" | sed 's/^/#   /'
fi
if [ "$(echo "$orders" | wc -l)" -eq 2 ]; then
	ok "equal preferences are shuffled: both orders occur"
else
	not_ok "equal preferences are not shuffled:"
	echo "$orders" | sed 's/^/#   /'
fi

ml implicit implicit.test
expect_addrs implicit "no MX: the domain is its own MX, preference 0, IPv6 then IPv4" <<'EOF'
0 implicit.test 2001:db8::31 25
0 implicit.test 127.0.3.1 25
EOF

ml txtonly txtonly.test
expect txtonly 69 PERMFAIL 5.4.4 "no MX and no A/AAAA: PERMFAIL 5.4.4"

ml null null.test
expect null 69 PERMFAIL 5.1.10 "null MX (RFC 7505): PERMFAIL 5.1.10"

ml nx nosuch.test
expect nx 69 PERMFAIL 5.1.2 "NXDOMAIN: PERMFAIL 5.1.2"

ml servfail servfail.test
expect servfail 75 TEMPFAIL 4.4.3 "SERVFAIL: TEMPFAIL 4.4.3"

ml refused refused.test
expect refused 75 TEMPFAIL 4.4.3 "REFUSED: TEMPFAIL 4.4.3"

# The bound is a wall-clock promise, and a loaded machine can add more
# than SLACK_MS to one run by itself: a run over the bound is measured
# again, up to three runs, and one inside it passes. A resolver that
# ignores the bound is over it every time. Giving up early is never load.
ml silent -t "$BOUND_MS" silent.test
expect silent 75 TEMPFAIL 4.4.3 "server that never answers: TEMPFAIL 4.4.3"
runs="$MS"
early=no
[ "$MS" -ge $((BOUND_MS - 100)) ] || early=yes
while [ "$MS" -gt $((BOUND_MS + SLACK_MS)) ] && [ "$(echo $runs | wc -w)" -lt 3 ]; do
	ml silent -t "$BOUND_MS" silent.test
	runs="$runs $MS"
	[ "$MS" -ge $((BOUND_MS - 100)) ] || early=yes
done
if [ "$early" = no ] && [ "$MS" -le $((BOUND_MS + SLACK_MS)) ]; then
	ok "... and it gave up at the bound (${runs} ms for -t $BOUND_MS)"
else
	not_ok "... it gave up after ${runs} ms for -t $BOUND_MS"
fi

ml halfsilent -t "$BOUND_MS" halfsilent.test
expect_addrs halfsilent "best MX host silent: the other one's address" <<'EOF'
20 ok.halfsilent.test 127.0.4.2 25
EOF
runs="$MS"
while [ "$MS" -gt $((BOUND_MS + SLACK_MS)) ] && [ "$(echo $runs | wc -w)" -lt 3 ]; do
	ml halfsilent -t "$BOUND_MS" halfsilent.test
	runs="$runs $MS"
done
if [ "$MS" -le $((BOUND_MS + SLACK_MS)) ]; then
	ok "... within the bound (${runs} ms for -t $BOUND_MS)"
else
	not_ok "... after ${runs} ms for -t $BOUND_MS"
fi

ml noaddr noaddr.test
expect noaddr 75 TEMPFAIL 4.4.4 "MX hosts without any address: TEMPFAIL 4.4.4"

ml badhost badhost.test
expect badhost 75 TEMPFAIL 4.4.3 "MX host whose lookup fails: TEMPFAIL 4.4.3"

# --- address families ---------------------------------------------------

ml v6 v6.test
expect_addrs v6 "IPv6-only MX host: its AAAA addresses in order" <<'EOF'
10 mx.v6.test 2001:db8::61 25
10 mx.v6.test 2001:db8::62 25
EOF

ml v6only4 -4 v6.test
expect v6only4 75 TEMPFAIL 4.4.4 "IPv6-only MX host, IPv4 asked: TEMPFAIL 4.4.4"

ml dual dual.test
expect_addrs dual "dual-stack host: IPv6 first by default" <<'EOF'
10 mx.dual.test 2001:db8::51 25
10 mx.dual.test 127.0.5.1 25
EOF

ml dualI -I dual.test
expect_addrs dualI "dual-stack host: IPv4 first with inet_first" <<'EOF'
10 mx.dual.test 127.0.5.1 25
10 mx.dual.test 2001:db8::51 25
EOF

ml dual4 -4 dual.test
expect_addrs dual4 "-4: IPv4 only" <<'EOF'
10 mx.dual.test 127.0.5.1 25
EOF

ml dual6 -6 dual.test
expect_addrs dual6 "-6: IPv6 only" <<'EOF'
10 mx.dual.test 2001:db8::51 25
EOF

ml dup dup.test
expect_addrs dup "an address of two MX hosts is listed once, under the better" <<'EOF'
10 a.dup.test 127.0.9.1 25
EOF

# --- the cap -------------------------------------------------------------

: >"$T/dns.log"
ml many many.test
i=1
while [ $i -le 32 ]; do
	echo "10 mx.many.test 127.0.6.$i 25"
	i=$((i + 1))
done >"$T/many.expect"
expect_addrs many "40 addresses on the best host: capped at 32, in order" \
    <"$T/many.expect"
if grep -q '^udp mx.many.test A NOERROR TC$' "$T/dns.log" &&
    grep -q '^tcp mx.many.test A NOERROR$' "$T/dns.log"; then
	ok "... the truncated UDP answer was fetched again over TCP"
else
	not_ok "... no UDP truncation and TCP retry in the DNS log"
	sed 's/^/#   /' "$T/dns.log"
fi

# --- this node among the MX hosts (RFC 5321 section 5.1) ------------------

ml loop -m mx.odmr.test loop.test
expect_addrs loop "this node is MX 20: only the more preferred host is used" <<'EOF'
10 primary.loop.test 127.0.10.1 25
EOF

ml loopoff loop.test
expect_addrs loopoff "... and without -m every host is used" <<'EOF'
10 primary.loop.test 127.0.10.1 25
20 mx.odmr.test 127.0.10.2 25
30 tertiary.loop.test 127.0.10.3 25
EOF

ml selfbest -m MX.ODMR.TEST. selfbest.test
expect selfbest 69 PERMFAIL 5.4.6 "this node is the best MX: PERMFAIL 5.4.6"

# --- the explicit route form -------------------------------------------

ml route -H "127.0.0.9, [::1]:2525,r1.route.test:2626 ,[2001:db8::7],nosuch.route.test,[r1.route.test]"
expect_addrs route "route: literals as they are, names resolved, in order, ports kept" <<'EOF'
0 127.0.0.9 127.0.0.9 25
1 ::1 ::1 2525
2 r1.route.test 2001:db8::81 2626
2 r1.route.test 127.0.8.1 2626
3 2001:db8::7 2001:db8::7 25
EOF

ml routep -p 587 -4 -H "r1.route.test,[::1]:26,127.0.0.2"
expect_addrs routep "route: default port and -4 (the IPv6 literal dropped)" <<'EOF'
0 r1.route.test 127.0.8.1 587
2 127.0.0.2 127.0.0.2 587
EOF

ml routenx -H "nosuch.route.test, gone.noaddr.test:25"
expect routenx 75 TEMPFAIL 4.4.4 "route of names without address: TEMPFAIL 4.4.4 (never a bounce)"

ml routefail -H "broken.badhost.test"
expect routefail 75 TEMPFAIL 4.4.3 "route name whose lookup fails: TEMPFAIL 4.4.3"

ml routebad -H "[::1:25"
expect routebad 75 TEMPFAIL 4.3.5 "route syntax error: TEMPFAIL 4.3.5"

ml routeport -H "r1.route.test:99999"
expect routeport 75 TEMPFAIL 4.3.5 "route with a bad port: TEMPFAIL 4.3.5"

ml routeempty -H "127.0.0.1,,127.0.0.2"
expect routeempty 75 TEMPFAIL 4.3.5 "route with an empty entry: TEMPFAIL 4.3.5"

# asked of the stub, whose log shows every query (written before the
# answer goes out): not a timing, the absence of a query proves it
_q0=$(wc -l <"$T/dns.log")
"$ML" -s "$SERVER" -t 3000 -H "192.0.2.1:25,[2001:db8::1]" \
    >"$T/literal.out" 2>>"$T/stderr.all"
RC=$?
_q1=$(wc -l <"$T/dns.log")
if [ "$_q1" -eq "$_q0" ]; then
	expect_addrs literal "route of literals only: no DNS needed (no query)" <<'EOF'
0 192.0.2.1 192.0.2.1 25
1 2001:db8::1 2001:db8::1 25
EOF
else
	not_ok "route of literals only asked the DNS: $(tail -n +$((_q0 + 1)) "$T/dns.log" | tr '\n' '|')"
fi

# --- bad input and server lists ------------------------------------------

ml badsrv -s "not a server list" pref.test
expect badsrv 75 TEMPFAIL 4.3.5 "bad DNS server list: TEMPFAIL 4.3.5"

ml baddom "bad..domain.test"
expect baddom 69 PERMFAIL 5.1.3 "invalid domain name: PERMFAIL 5.1.3"

ml norm "IMPLICIT.Test"
expect_addrs norm "the domain is normalised (lower case) before use" <<'EOF'
0 implicit.test 2001:db8::31 25
0 implicit.test 127.0.3.1 25
EOF

if has_ipv6; then
	ml v6srv -s "[::1]:$DNS_PORT" pref.test
	expect_addrs v6srv "DNS server given as [::1]:port" <<'EOF'
10 a.pref.test 127.0.1.1 25
20 b.pref.test 127.0.1.2 25
30 c.pref.test 127.0.1.3 25
EOF
else
	ok "DNS server given as [::1]:port # SKIP no IPv6 loopback on this host"
fi

ml second -s "127.0.0.1:$(free_port),$SERVER" pref.test
expect_addrs second "first DNS server dead: the second one answers" <<'EOF'
10 a.pref.test 127.0.1.1 25
20 b.pref.test 127.0.1.2 25
30 c.pref.test 127.0.1.3 25
EOF

ml threads -r 40 -j 8 pref.test
n_ok=$(grep -c '^run OK 127\.0\.1\.1,127\.0\.1\.2,127\.0\.1\.3$' "$T/threads.out")
if [ "$RC" -eq 0 ] && [ "$n_ok" -eq 40 ]; then
	ok "40 lookups on 8 threads at once: the same answer each time"
else
	not_ok "lookups on threads: $n_ok of 40 right (exit $RC)"
	sort "$T/threads.out" | uniq -c | sed 's/^/#   /'
fi

if grep -qE 'Sanitizer|runtime error|leak' "$T/stderr.all"; then
	not_ok "sanitizer reports from mx-lookup:"
	head -n 30 "$T/stderr.all" | sed 's/^/#   /'
else
	ok "no sanitizer report (leaks included) from any mx-lookup run"
fi

tap_done
