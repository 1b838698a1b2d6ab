#!/bin/sh
# NAME
#	atrn.sh - benchmark an ATRN pickup: odmrd and its customer client
#	against Postfix fast flush, the smtp-sink ceiling and fetchmail
#	(tracker issue 4)
# SYNOPSIS
#	sh bench/atrn.sh [--reps N] [--messages N] [--size OCTETS]
#	    [--fetchmail-messages N] [--legs LIST] [--local-connections N]
#	    [--perf] [--dir DIR] [--keep] [--builddir DIR] [BUILD_DIR]
# DESCRIPTION
#	Times how fast one domain's backlog (default 10,000 messages of
#	4,096 octets, for atrn.test) reaches the customer's site, in one
#	run, for these legs:
#	  atrn       odmrd (BUILD_DIR/odmr/odmrd -d, a fresh store on a
#	             real disk, log_level info) holds the backlog for
#	             atrn.test, owned by the account bench ("printf 'pw\n' |
#	             odmrctl user add bench", "odmrctl domain add atrn.test
#	             --owner bench"). Timed: one ATRN session of the real
#	             customer client, from starting
#	               ODMR_PASSWORD=pw turn/odmr-fetch --server
#	               127.0.0.1:ODMRPORT --tls none --user bench --domains
#	               atrn.test --deliver-to 127.0.0.1:SINKPORT
#	             until it exits (status 0 required). odmr-fetch relays
#	             the reversed session to smtp-sink, so this is the whole
#	             customer path: odmrd -> odmr-fetch -> the site's MTA.
#	             With --local-connections N, odmr-fetch gets that
#	             option (otherwise its default, 2).
#	  customer   the same, with tests/tools/odmr-customer.py (--tls
#	             none, CRAM-MD5, ATRN atrn.test, PIPELINING) as the
#	             customer and its own sink (it answers 250 and keeps
#	             nothing); valid when it exits 0 and accepted N
#	             messages with 250. A Python sink: it may be the
#	             bottleneck (its CPU per message is shown).
#	  postfix    Postfix 3.7's ETRN fast flush of the same backlog to
#	             smtp-sink: bench/etrn.sh's Postfix leg unchanged
#	             (leg_postfix in bench/lib.sh): a fresh private
#	             instance, defaults but for defer_transports = smtp
#	             until the ETRN, so up to 20 connections to the site;
#	             timed from ETRN until qmgr removed N queue files.
#	  ceiling    smtp-source -d -s 1 -m N -l SIZE straight into
#	             smtp-sink: one connection, no store, no relay.
#	  fetchmail  fetchmail --protocol ODMR (6.4, without TLS, fetchdomains
#	             atrn.test, smtphost the sink) against odmrd, on a
#	             smaller backlog (--fetchmail-messages, default 500):
#	             it relays about 11 messages/s. Its own FETCHMAILHOME, a
#	             0600 rcfile and --pidfile in the scratch directory, so
#	             it never meets another fetchmail on the machine.
#	The site is "smtp-sink -u nobody -c 127.0.0.1:SINKPORT 1000"
#	(accepts, writes nothing), fresh for every leg.
#
#	Untimed before each odmrd or Postfix leg: a fresh server, filled by
#	smtp-source -d -s 10 -m N -l SIZE -f a@x.test -t u@atrn.test over
#	its MX port (the same messages for every leg); the fill must be
#	complete (odmrctl --json stats; Postfix: postqueue -j, all
#	deferred); then sync and one second of rest. Untimed after it: the
#	leg is valid only when the client exited 0, smtp-sink counted N
#	messages (odmr-customer.py: N accepted) and "odmrctl --json queue
#	atrn.test" lists no message (Postfix: as bench/etrn.sh checks).
#	The figure is N / seconds.
#
#	The legs take turns (atrn, customer, postfix, ceiling, fetchmail,
#	atrn, ...), REPS rounds (default 3). The table shows each round and
#	the medians, and the targets are checked on the medians: atrn /
#	postfix >= 5x and atrn / ceiling >= 0.5. The customer leg is shown
#	as a figure of its own only when its median is not below atrn's
#	(otherwise the Python sink is what it measures, and a line says
#	so). Also shown: odmrd's CPU per message (/proc/PID/stat), the
#	client's (the shell's "times"), how busy the machine was, and the
#	SMTP sessions the sink saw.
#
#	--legs takes a comma-separated subset (default all five). --perf
#	adds one more, unreported atrn leg at the end under "perf record
#	-a -g" (the whole machine) and writes perf-atrn.comm (CPU by
#	command), perf-atrn.flat (symbols) and perf-atrn.txt (call
#	graphs of odmrd's threads) in the current directory.
#
#	The state lives in a scratch directory on the source tree's disk,
#	not on tmpfs (bench/lib.sh); it is removed at the end unless
#	--keep. It must run as root: Postfix and smtp-sink -u nobody need
#	it.
#
#	The programs come from BUILD_DIR or --builddir (default:
#	$top_builddir, else the current directory): odmr/odmrd,
#	odmr/odmrctl and turn/odmr-fetch. Build them without sanitizers.
# DIAGNOSTICS
#	Per-leg lines go to stderr, the markdown tables to stdout. Exit
#	status 0 when the run completed (whether or not the targets were
#	met: the table says), 2 on a usage error, 3 when a server could not
#	be started.

set -u

reps=${REPS:-3}
messages=10000
size=4096
fm_messages=500
legs=atrn,customer,postfix,ceiling,fetchmail
lanes=""
do_perf=0
keep=0
builddir=${top_builddir:-.}
parent=""
domain=atrn.test
user=bench
password=pw
target_postfix=5
target_ceiling=0.5

while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2; shift ;;
	--messages) messages=$2; shift ;;
	--size) size=$2; shift ;;
	--fetchmail-messages) fm_messages=$2; shift ;;
	--legs) legs=$2; shift ;;
	--local-connections) lanes=$2; shift ;;
	--perf) do_perf=1 ;;
	--dir) parent=$2; shift ;;
	--keep) keep=1 ;;
	--builddir) builddir=$2; shift ;;
	-h|--help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0 ;;
	-*)
		echo "atrn.sh: unknown option $1" >&2
		exit 2 ;;
	*) builddir=$1 ;;
	esac
	shift
done

for l in $(echo "$legs" | tr , ' '); do
	case $l in
	atrn|customer|postfix|ceiling|fetchmail) ;;
	*) echo "atrn.sh: unknown leg $l (atrn, customer, postfix, ceiling, fetchmail)" >&2; exit 2 ;;
	esac
done
has_leg() {
	case ",$legs," in *",$1,"*) return 0 ;; esac
	return 1
}

srcdir=$(cd "$(dirname "$0")/.." && pwd)
if ! builddir=$(cd "$builddir" 2> /dev/null && pwd); then
	echo "atrn.sh: no build directory $builddir" >&2
	exit 2
fi
ODMRD=$builddir/odmr/odmrd
CTL=$builddir/odmr/odmrctl
FETCH=$builddir/turn/odmr-fetch
# shellcheck disable=SC2034 # used by wait_flush in bench/lib.sh
ETC=$srcdir/tests/tools/etrn-client.py
CUSTOMER=$srcdir/tests/tools/odmr-customer.py

if [ "$(id -u)" -ne 0 ]; then
	echo "atrn.sh: run it as root: the private Postfix instance needs it (sudo sh $0 ...)" >&2
	exit 2
fi
PATH=$PATH:/usr/sbin:/sbin
need="smtp-source smtp-sink python3 ss"
has_leg postfix && need="$need postfix postconf postqueue"
has_leg fetchmail && need="$need fetchmail"
for p in $need; do
	if ! command -v "$p" > /dev/null 2>&1; then
		echo "atrn.sh: $p not found (apt-get install postfix fetchmail python3 iproute2)" >&2
		exit 2
	fi
done
if [ "$do_perf" -eq 1 ] && ! command -v perf > /dev/null 2>&1; then
	echo "atrn.sh: --perf needs perf (apt-get install linux-perf)" >&2
	exit 2
fi
. "$srcdir/bench/lib.sh"
bench_need_built "build odmrd and odmr-fetch in $builddir, or give the build directory" "$ODMRD" "$CTL" "$FETCH"
bench_begin odmr-atrn-bench	# $W, $parent, traps, $hz, $ncpu
mkdir -p "$W/fmhome"
chmod 700 "$W/fmhome"

sink_port=$(free_port)
smtp_port=$(free_port)
odmr_port=$(free_port)
# shellcheck disable=SC2034 # the Postfix leg's, in bench/lib.sh
pf_port=$(free_port)
O=$W/odmrd
# shellcheck disable=SC2034
PF=$W/pf
has_leg postfix && bench_postfix_lib

# children_cpu - sets kcpu to the seconds of CPU (user + system) of the
# shell's waited-for children so far: the second line of "times", which
# must run in this shell (a $(...) or a pipeline would fork, and a new
# process starts with zero)
children_cpu() {
	times > "$W/times"
	kcpu=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m");
		sub(/s$/, "", a[2]); t += a[1] * 60 + a[2] } printf "%.3f", t }' "$W/times")
}

# odmrd_fresh N - a fresh odmrd holding N messages for the domain;
# sets fill_out to SECONDS or "invalid WHY"
odmrd_fresh() {
	odmrd_conf
	if ! printf '%s\n' "$password" | ctl user add "$user" > "$O/ctl.log" 2>&1 ||
	    ! ctl domain add "$domain" --owner "$user" >> "$O/ctl.log" 2>&1; then
		echo "atrn.sh: odmrctl failed: $(tail -3 "$O/ctl.log")" >&2
		exit 3
	fi
	odmrd_run
	fill "$smtp_port" "$1"
	case $fill_out in
	invalid*) return ;;
	esac
	_n=$(odmrd_stored)
	if [ "$_n" != "$1" ]; then
		fill_out="invalid the store holds $_n messages after the fill, not $1"
	fi
}

# fetchmail_rc - the rcfile of the fetchmail leg
fetchmail_rc() {
	cat > "$W/fmhome/fetchmailrc" <<EOF
poll 127.0.0.1 service $odmr_port protocol ODMR
    user $user password $password
    fetchdomains $domain
    smtphost 127.0.0.1/$sink_port
EOF
	chmod 600 "$W/fmhome/fetchmailrc"
}

# run_client CLIENT - one ATRN pickup by CLIENT; its exit status
run_client() {
	case $1 in
	atrn)
		ODMR_PASSWORD=$password "$FETCH" --server "127.0.0.1:$odmr_port" \
		    --user "$user" --tls none --domains "$domain" \
		    --deliver-to "127.0.0.1:$sink_port" --hostname fetch.bench.test \
		    ${lanes:+--local-connections "$lanes"} \
		    > "$W/client.log" 2>&1 ;;
	customer)
		# the tool as it is, but with TCP_NODELAY on its socket: it
		# writes each reply on its own, so without it Nagle holds the
		# RCPT reply until odmrd's delayed ACK of the MAIL reply
		# (about 40 ms per message)
		python3 -c 'import runpy, socket, sys
create = socket.create_connection
def nodelay(*a, **k):
    s = create(*a, **k)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
socket.create_connection = nodelay
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")' \
		    "$CUSTOMER" 127.0.0.1 "$odmr_port" --tls none \
		    --user "$user" --password "$password" --auth CRAM-MD5 \
		    --atrn "$domain" --ext PIPELINING,8BITMIME,ENHANCEDSTATUSCODES \
		    --timeout 120 > "$W/client.log" 2>&1 ;;
	fetchmail)
		HOME=$W/fmhome FETCHMAILHOME=$W/fmhome fetchmail -N -d0 \
		    --pidfile "$W/fmhome/fetchmail.pid" \
		    -f "$W/fmhome/fetchmailrc" > "$W/client.log" 2>&1 ;;
	esac
}

# customer_accepted - messages odmr-customer.py answered 250 at the end
customer_accepted() {
	sed -n 's/^SUMMARY //p' "$W/client.log" | python3 -c 'import json, sys
s = json.load(sys.stdin)
print(sum(1 for m in s["messages"] if m["final_code"] == 250))' 2> /dev/null || echo 0
}

# leg_atrn CLIENT [PERFPREFIX] - fill odmrd, one pickup by CLIENT (atrn:
# odmr-fetch, customer: odmr-customer.py, fetchmail), check; sets
# leg_out to "RATE SECONDS FILL ODMRD_CPU CLIENT_CPU BUSY SESSIONS"
# (CPU in µs per message) or "invalid WHY"
leg_atrn() {
	_n=$messages
	[ "$1" = fetchmail ] && _n=$fm_messages
	odmrd_fresh "$_n"
	case $fill_out in
	invalid*) leg_out=$fill_out; odmrd_stop; return ;;
	esac
	_fill=$fill_out
	[ "$1" = customer ] || sink_start
	[ "$1" = fetchmail ] && fetchmail_rc
	sync
	sleep 1
	_perfpid=""
	if [ -n "${2:-}" ]; then
		perf record -a -g -o "$W/perf.data" > "$W/perf.log" 2>&1 &
		_perfpid=$!
		sleep 1
	fi
	_c0=$(proc_cpu "$odmrd_pid")
	_m0=$(machine_cpu)
	children_cpu; _k0=$kcpu
	_t0=$(now_ns)
	run_client "$1"
	_rc=$?
	_t1=$(now_ns)
	children_cpu; _k1=$kcpu
	_m1=$(machine_cpu)
	_c1=$(proc_cpu "$odmrd_pid")
	if [ -n "$_perfpid" ]; then
		kill -INT "$_perfpid" 2> /dev/null
		wait "$_perfpid"
		perf report -i "$W/perf.data" --stdio --no-children --sort comm \
		    -g none 2> /dev/null | grep -v '^#' | grep -v '^$' | head -30 > "$2.comm"
		perf report -i "$W/perf.data" --stdio --no-children \
		    --sort comm,dso,sym -g none 2> /dev/null | grep -v '^#' |
		    grep -v '^$' | head -80 > "$2.flat"
		perf report -i "$W/perf.data" --stdio --no-children \
		    --pid "$odmrd_pid" 2> /dev/null | grep -v '^$' | head -200 > "$2.txt"
	fi
	_q=$(odmrd_queued)
	if [ "$1" = customer ]; then
		_s=$(customer_accepted)
		_ss=1
	else
		sink_idle
		_s=$(sink_count)
		_ss=$(sink_count sess)
		sink_stop
	fi
	odmrd_stop
	if [ "$_rc" -ne 0 ]; then
		leg_out="invalid $1 exited $_rc: $(tail -2 "$W/client.log" | cut -c1-300 | tr '\n' ' ')"
	elif [ "$_q" != 0 ]; then
		leg_out="invalid odmrctl queue still lists $_q messages after $1"
	elif [ "$_s" != "$_n" ]; then
		leg_out="invalid the sink received $_s messages, not $_n"
	else
		leg_out=$(awk -v n="$_n" -v a="$_t0" -v b="$_t1" -v f="$_fill" \
		    -v c0="$_c0" -v c1="$_c1" -v hz="$hz" -v k0="$_k0" -v k1="$_k1" \
		    -v m0="$_m0" -v m1="$_m1" -v ss="$_ss" 'BEGIN {
			s = (b - a) / 1e9;
			split(m0, x, " "); split(m1, y, " ");
			busy = (y[2] > x[2]) ? (y[1] - x[1]) / (y[2] - x[2]) * 100 : 0;
			printf "%.1f %.2f %s %.0f %.0f %.0f %s\n", n / s, s, f,
			    (c1 - c0) / hz / n * 1e6, (k1 - k0) / n * 1e6, busy, ss }')
	fi
}

# leg_ceiling - smtp-source -d -s 1 straight into smtp-sink; sets
# leg_out to "RATE SECONDS - - CLIENT_CPU BUSY SESSIONS" or "invalid WHY"
leg_ceiling() {
	sink_start
	sync
	sleep 1
	_m0=$(machine_cpu)
	children_cpu; _k0=$kcpu
	_t0=$(now_ns)
	smtp-source -d -s 1 -m "$messages" -l "$size" -f a@x.test \
	    -t "u@$domain" "127.0.0.1:$sink_port" > "$W/source.log" 2>&1
	_rc=$?
	_t1=$(now_ns)
	children_cpu; _k1=$kcpu
	_m1=$(machine_cpu)
	sink_idle
	_s=$(sink_count)
	_ss=$(sink_count sess)
	sink_stop
	if [ "$_rc" -ne 0 ]; then
		leg_out="invalid smtp-source exited $_rc: $(tail -2 "$W/source.log" | tr '\n' ' ')"
	elif [ "$_s" != "$messages" ]; then
		leg_out="invalid smtp-sink received $_s messages, not $messages"
	else
		leg_out=$(awk -v n="$messages" -v a="$_t0" -v b="$_t1" \
		    -v k0="$_k0" -v k1="$_k1" -v m0="$_m0" -v m1="$_m1" -v ss="$_ss" 'BEGIN {
			s = (b - a) / 1e9;
			split(m0, x, " "); split(m1, y, " ");
			busy = (y[2] > x[2]) ? (y[1] - x[1]) / (y[2] - x[2]) * 100 : 0;
			printf "%.1f %.2f - - %.0f %.0f %s\n", n / s, s,
			    (k1 - k0) / n * 1e6, busy, ss }')
	fi
}

## the run

echo "atrn.sh: state in $W ($(fstype "$parent") on $(device "$parent")); $messages messages of $size octets for $domain (fetchmail: $fm_messages); legs $legs; $reps rounds; $ncpu CPUs" >&2

r=1
while [ "$r" -le "$reps" ]; do
	for leg in atrn customer postfix ceiling fetchmail; do
		has_leg "$leg" || continue
		case $leg in
		postfix)
			leg_postfix
			# "RATE SECONDS FILL - BUSY SESSIONS": no client CPU
			case $leg_out in
			invalid*) ;;
			*)
				# shellcheck disable=SC2086
				set -- $leg_out
				leg_out="$1 $2 $3 - - $5 $6" ;;
			esac ;;
		ceiling) leg_ceiling ;;
		*) leg_atrn "$leg" ;;
		esac
		_n=$messages
		[ "$leg" = fetchmail ] && _n=$fm_messages
		case $leg_out in
		invalid*)
			echo "$leg round $r: INVALID: ${leg_out#invalid }" >&2
			echo "invalid" >> "$W/res/$leg.rows" ;;
		*)
			# shellcheck disable=SC2086
			set -- $leg_out
			echo "$leg round $r: fill $3 s; $_n msgs in $2 s = $1 msg/s; odmrd CPU $4 µs/msg; client CPU $5 µs/msg; machine $6% busy; sink sessions $7" >&2
			echo "$1" >> "$W/res/$leg"
			echo "$2" >> "$W/res/$leg.s"
			echo "$4" >> "$W/res/$leg.cpu"
			echo "$5" >> "$W/res/$leg.ccpu"
			echo "$6" >> "$W/res/$leg.busy"
			echo "$7" >> "$W/res/$leg.sess"
			echo "$2 s = $1" >> "$W/res/$leg.rows" ;;
		esac
	done
	r=$((r + 1))
done

if [ "$do_perf" -eq 1 ]; then
	leg_atrn atrn "$PWD/perf-atrn"
	case $leg_out in
	invalid*) echo "atrn under perf (not counted): INVALID: ${leg_out#invalid }" >&2 ;;
	*)
		# shellcheck disable=SC2086
		set -- $leg_out
		echo "atrn under perf -a (not counted): $messages msgs in $2 s = $1 msg/s; reports in $PWD/perf-atrn.{comm,flat,txt}" >&2 ;;
	esac
fi

# med LEG [SUFFIX] - the median of a leg's figures, or nothing
med() {
	# shellcheck disable=SC2046
	median $(cat "$W/res/$1${2:-}" 2> /dev/null)
}

ma=$(med atrn); mc=$(med customer); mp=$(med postfix); ms=$(med ceiling); mf=$(med fetchmail)
# ratio A B - A / B with two decimals, or "—"
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "—"; else printf "%.2f", a / b }'
}
verdict() {
	awk -v x="$1" -v t="$2" 'BEGIN { if (x == "—") print "—"; else if (x >= t) print "PASS"; else print "FAIL" }'
}
rp=$(ratio "$ma" "$mp"); rs=$(ratio "$ma" "$ms"); rf=$(ratio "$ma" "$mf")
show_customer=0
if [ -n "$mc" ] && [ -n "$ma" ] &&
    awk -v c="$mc" -v a="$ma" 'BEGIN { exit !(c >= a) }'; then
	show_customer=1
fi

echo
echo "One domain's backlog, $messages messages of $size octets ($fm_messages for fetchmail), to smtp-sink on 127.0.0.1; seconds = messages/s:"
echo
printf '| leg |'
r=1; while [ "$r" -le "$reps" ]; do printf ' round %s |' "$r"; r=$((r + 1)); done
echo ' median |'
printf '|---|'
r=1; while [ "$r" -le "$reps" ]; do printf -- '---:|'; r=$((r + 1)); done
echo '---:|'
for leg in atrn customer postfix ceiling fetchmail; do
	has_leg "$leg" || continue
	case $leg in
	atrn) label="(a) odmrd ATRN → odmr-fetch → smtp-sink" ;;
	customer)
		[ "$show_customer" -eq 1 ] || continue
		label="(a′) odmrd ATRN → odmr-customer.py (its own sink)" ;;
	postfix) label="(b) Postfix 3.7 ETRN fast flush → smtp-sink (defaults)" ;;
	ceiling) label="(c) ceiling: smtp-source -d -s 1 → smtp-sink" ;;
	fetchmail) label="(d) odmrd ATRN → fetchmail --protocol ODMR → smtp-sink, $fm_messages msgs" ;;
	esac
	printf '| %s |' "$label"
	while IFS= read -r row; do printf ' %s |' "$row"; done < "$W/res/$leg.rows"
	m=$(med "$leg"); s=$(med "$leg" .s)
	if [ -n "$m" ]; then echo " **$s s = $m** |"; else echo " invalid |"; fi
done
echo
if has_leg customer && [ "$show_customer" -eq 0 ]; then
	echo "odmr-customer.py as the customer: median ${mc:-invalid} msg/s, below odmr-fetch's ${ma:-—}: not an ATRN figure; the Python sink is the bottleneck there (its CPU: $(med customer .ccpu) µs per message, median)."
	echo
fi
printf 'CPU per message (median, µs): odmrd'
for leg in atrn customer fetchmail; do
	has_leg "$leg" && printf ' %s %s' "$leg" "$(med "$leg" .cpu)"
done
printf '; client'
for leg in atrn customer ceiling fetchmail; do
	has_leg "$leg" && printf ' %s %s' "$leg" "$(med "$leg" .ccpu)"
done
printf '. Machine busy (median, %s CPUs):' "$ncpu"
for leg in atrn customer postfix ceiling fetchmail; do
	has_leg "$leg" && printf ' %s %s%%' "$leg" "$(med "$leg" .busy)"
done
printf '. Sink sessions (median):'
for leg in atrn postfix ceiling fetchmail; do
	has_leg "$leg" && printf ' %s %s' "$leg" "$(med "$leg" .sess)"
done
echo .
echo
echo "| ratio (medians) | measured | target | verdict |"
echo "|---|---:|---:|---|"
# times_sign X - X followed by ×, or — alone
times_sign() {
	if [ "$1" = "—" ]; then echo "—"; else echo "$1×"; fi
}
echo "| ATRN / Postfix fast flush | $(times_sign "$rp") | ≥ ${target_postfix}× | $(verdict "$rp" "$target_postfix") |"
echo "| ATRN / ceiling | $(times_sign "$rs") | ≥ ${target_ceiling}× | $(verdict "$rs" "$target_ceiling") |"
echo "| ATRN (odmr-fetch) / fetchmail | $(times_sign "$rf") | — | — |"
exit 0
