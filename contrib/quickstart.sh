#!/bin/sh
# NAME
#	quickstart.sh - build, test or try odmrd on a fresh Debian machine
# SYNOPSIS
#	sh contrib/quickstart.sh check
#	sh contrib/quickstart.sh demo
# DESCRIPTION
#	check	installs every build and test dependency that is missing
#		(apt-get update runs only when something is missing), runs
#		autoreconf, configure --enable-sanitizers and make in _build/,
#		then make check; then runs the TLS, load and teardown
#		integration tests again in a ThreadSanitizer build in
#		_build-tsan/; then fuzzes each parser for FUZZ_TIME
#		(15) seconds in a clang --enable-fuzzer build in
#		_build-fuzz/; it ends with one line "N passed, N failed".
#		It exits non-zero on any failure. CI runs exactly this,
#		in a fresh Debian root (.ci/fresh-root). Each stage's wall
#		time goes to stderr as "quickstart: stage NAME took Ns"
#		(installs, build, tests, tsan, fuzz). It stops first, with the
#		reason, when this machine's own name does not resolve:
#		fetchmail refuses to run then.
#	demo	builds without sanitizers in _build-demo/, makes a private
#		state directory ./demo-state with a self-signed certificate
#		and the customer domain example.org (owner "demo"), prints
#		commands to try, and runs odmrd in the foreground on
#		127.0.0.1:2525 (SMTP, STARTTLS). It installs what the
#		printed commands need: swaks with its TLS module, Postfix
#		(for smtp-sink) and fetchmail.
#
#	Packages are installed with a temporary /usr/sbin/policy-rc.d
#	that forbids starting services, and Postfix is installed as "No
#	configuration": no system-wide mail server appears on port 25,
#	now or at the next boot. The tests run private instances.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/_build"		# check: sanitizers; demo uses _build-demo
JOBS=$(nproc 2>/dev/null || echo 2)

# Debian packages the build needs, and the ones the tests drive: every
# "require_cmd TOOL PACKAGE" under tests/ names one of these or an
# Essential package (test-style.sh checks that). swaks needs
# libnet-ssleay-perl for --tls (its TLS module is only a Recommends);
# libio-socket-ssl-perl is the other half of Perl's TLS.
BUILD_PKGS="gcc make autoconf automake pkg-config libdb5.3-dev libssl-dev
	libsasl2-dev libsasl2-modules libsasl2-modules-db libevent-dev libidn2-dev
	libc-ares-dev"
TEST_PKGS="libcmocka-dev python3 procps openssl util-linux mount swaks
	libnet-ssleay-perl libio-socket-ssl-perl postfix fetchmail
	clang libclang-rt-14-dev"
# what the demo's printed commands run: swaks (with TLS), smtp-sink, fetchmail
DEMO_PKGS="openssl swaks libnet-ssleay-perl libio-socket-ssl-perl postfix
	fetchmail"

say() { printf '%s\n' "quickstart: $*" >&2; }

# stage_begin - remember when a stage started
stage_begin() {
	stage_t0=$(date +%s)
}

# stage_end NAME - say how long the stage took, and keep it for the summary
stage_end() {
	_s=$(( $(date +%s) - stage_t0 ))
	say "stage $1 took ${_s}s"
	stages="${stages:+$stages, }$1 ${_s}s"
}

# own_name_resolves - fetchmail looks this machine's own name up and
# stops with "Cannot find my own host in hosts database" when it cannot
own_name_resolves() {
	me=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)
	getent hosts "$me" >/dev/null 2>&1
}

# own_name_problem - what is wrong, and what to do about it
own_name_problem() {
	say "this machine's name '$me' does not resolve (getent hosts $me fails):"
	say "fetchmail then stops with \"Cannot find my own host in hosts database\"."
	say "Add the name to /etc/hosts (for example the line '127.0.1.1 $me') or to DNS."
}

# need_pkgs PKG... - install the packages that are not installed yet
need_pkgs() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || missing="$missing $p"
	done
	# python3 may come from elsewhere (pyenv); only install it if absent
	case " $missing " in
	*" python3 "*) command -v python3 >/dev/null 2>&1 &&
	    missing=$(echo "$missing" | sed 's/ python3//') ;;
	esac
	[ -z "$missing" ] && return 0
	say "installing:$missing"
	if [ "$(id -u)" -ne 0 ]; then
		say "need root to install packages:$missing"
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null || { say "apt-get update failed"; exit 1; }
	# Postfix's tools are wanted, not a mail server for the whole machine
	case " $missing " in
	*" postfix "*)
		echo 'postfix postfix/main_mailer_type select No configuration' |
		    debconf-set-selections 2>/dev/null || true ;;
	esac
	policy_block
	say "a temporary /usr/sbin/policy-rc.d keeps these packages' services (Postfix on port 25) from starting"
	# its chatter (debconf's notes) only when it fails
	alog=$(mktemp)
	# shellcheck disable=SC2086
	if ! apt-get install -y -q --no-install-recommends $missing \
	    >"$alog" 2>&1; then
		tail -n 30 "$alog" >&2
		rm -f "$alog"
		say "apt-get install failed for:$missing"
		exit 1
	fi
	rm -f "$alog"
	policy_restore
}

# policy_block - a policy-rc.d that lets no service start (exit 101);
# one already there is kept aside, and put back by policy_restore,
# also when apt-get fails or a signal comes
policy_block() {
	policy=/usr/sbin/policy-rc.d
	policy_saved=""
	if [ -e "$policy" ] || [ -L "$policy" ]; then
		policy_saved=$(mktemp /usr/sbin/policy-rc.d.quickstart.XXXXXX)
		mv -f "$policy" "$policy_saved"
	fi
	trap policy_restore EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	printf '#!/bin/sh\n# contrib/quickstart.sh: no service starts while it installs\nexit 101\n' >"$policy"
	chmod 755 "$policy"
}

# policy_restore - undo policy_block
policy_restore() {
	trap - EXIT HUP INT TERM
	rm -f "$policy"
	if [ -n "$policy_saved" ]; then
		mv -f "$policy_saved" "$policy"
		policy_saved=""
	fi
}

# build SANITIZE - autoreconf, configure and make in $build
build() {
	cd "$top"
	autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }
	mkdir -p "$build"
	cd "$build"
	if [ "$1" = yes ]; then
		"$top/configure" --enable-sanitizers >configure.out 2>&1 ||
		    { cat configure.out; say "configure failed"; exit 1; }
	else
		"$top/configure" >configure.out 2>&1 ||
		    { cat configure.out; say "configure failed"; exit 1; }
	fi
	make -j"$JOBS" >make.out 2>&1 || { cat make.out; say "make failed"; exit 1; }
}

# check - the whole test suite, with a one-line summary at the end
check() {
	if ! own_name_resolves; then
		own_name_problem
		say "stopping before the tests: every fetchmail case would fail"
		exit 1
	fi
	stages=""
	stage_begin
	# shellcheck disable=SC2086
	need_pkgs $BUILD_PKGS $TEST_PKGS
	stage_end installs
	stage_begin
	build yes
	stage_end build
	cd "$build"
	rc=0
	stage_begin
	make -j"$JOBS" check >check.out 2>&1 || rc=$?
	stage_end tests
	grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP|XFAIL):' check.out || true
	if [ ! -f test-suite.log ]; then
		cat check.out
		say "make check produced no test-suite.log"
		echo "0 passed, 1 failed"
		exit 1
	fi
	stage_begin
	tsan_stage
	stage_end tsan
	stage_begin
	fuzz_stage
	stage_end fuzz
	cd "$build"
	pass=$(sed -n 's/^# PASS: *//p' test-suite.log)
	fail=$(sed -n 's/^# FAIL: *//p' test-suite.log)
	err=$(sed -n 's/^# ERROR: *//p' test-suite.log)
	xpass=$(sed -n 's/^# XPASS: *//p' test-suite.log)
	skip=$(sed -n 's/^# SKIP: *//p' test-suite.log)
	failed=$(( ${fail:-0} + ${err:-0} + ${xpass:-0} + ${skip:-0} ))
	if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
		say "failures follow (test-suite.log):"
		cat test-suite.log
		[ "$failed" -eq 0 ] && failed=1
		rc=1
	fi
	pass=$(( ${pass:-0} + fuzz_pass + tsan_pass ))
	if [ "$tsan_fail" -ne 0 ]; then
		say "the ThreadSanitizer run failed (_build-tsan/test-suite.log):"
		cat "$top/_build-tsan/test-suite.log" 2>/dev/null
		failed=$(( failed + tsan_fail ))
		rc=1
	fi
	if [ "$fuzz_fail" -ne 0 ]; then
		say "fuzzing failed (_build-fuzz/tests/fuzz/run-fuzz.sh.log):"
		cat "$top/_build-fuzz/tests/fuzz/run-fuzz.sh.log" 2>/dev/null
		failed=$(( failed + fuzz_fail ))
		rc=1
	fi
	say "stages: $stages"
	echo "$pass passed, $failed failed"
	exit "$rc"
}

# tsan_stage - a ThreadSanitizer build (--enable-tsan, in _build-tsan/)
# runs the integration tests where threads meet connections: TLS, the
# load test, and the teardown torture (which also has ATRN, the reversed
# session and ETRN deliveries over TLS); sets tsan_pass and tsan_fail to
# its counts (a report fails its test: exit code 66). test-odmr.sh's
# 2,000-message pickup takes over 10 minutes under TSan, so it is not here.
TSAN_TESTS="tests/integration/test-io.sh tests/integration/test-smtp-tls.sh
	tests/integration/test-smtp-load.sh tests/integration/test-teardown.sh"
tsan_stage() {
	tsan_pass=0
	tsan_fail=1
	tb="$top/_build-tsan"
	mkdir -p "$tb"
	cd "$tb"
	"$top/configure" --enable-tsan >configure.out 2>&1 || { cat configure.out;
		say "configure --enable-tsan failed"; return 0; }
	make -j"$JOBS" >make.out 2>&1 || { cat make.out;
		say "make (ThreadSanitizer build) failed"; return 0; }
	# shellcheck disable=SC2086
	make -j"$JOBS" check TESTS="$(echo $TSAN_TESTS)" >check.out 2>&1 || true
	grep -E '^(PASS|FAIL|ERROR):' check.out | sed 's/^/tsan /' || true
	[ -f test-suite.log ] || { cat check.out; say "no tsan test-suite.log"; return 0; }
	tsan_pass=$(sed -n 's/^# PASS: *//p' test-suite.log)
	tsan_fail=$(( $(sed -n 's/^# FAIL: *//p' test-suite.log) +
	    $(sed -n 's/^# ERROR: *//p' test-suite.log) ))
	[ "${tsan_pass:-0}" -gt 0 ] || tsan_fail=$(( tsan_fail + 1 ))
}

# fuzz_stage - libFuzzer builds of the parsers, each fuzzed for FUZZ_TIME
# seconds from its corpus (clang, --enable-fuzzer, in _build-fuzz/);
# sets fuzz_pass and fuzz_fail to its TAP counts
fuzz_stage() {
	fuzz_pass=0
	fuzz_fail=1
	fb="$top/_build-fuzz"
	mkdir -p "$fb"
	cd "$fb"
	"$top/configure" CC=clang --enable-fuzzer --enable-sanitizers \
	    >configure.out 2>&1 || { cat configure.out;
		say "configure --enable-fuzzer failed"; return 0; }
	make -j"$JOBS" >make.out 2>&1 || { cat make.out;
		say "make (fuzzer build) failed"; return 0; }
	make -j"$JOBS" check TESTS=tests/fuzz/run-fuzz.sh \
	    FUZZ_TIME="${FUZZ_TIME:-15}" >check.out 2>&1 || true
	grep -E '^(PASS|FAIL|ERROR):' check.out || true
	log=tests/fuzz/run-fuzz.sh.log
	[ -f "$log" ] || { cat check.out; say "no fuzz log"; return 0; }
	fuzz_pass=$(grep -c '^ok ' "$log" || true)
	fuzz_fail=$(grep -c '^not ok ' "$log" || true)
	[ "$fuzz_pass" -gt 0 ] || fuzz_fail=$(( fuzz_fail + 1 ))
}

# demo - odmrd in the foreground with a private state directory
demo() {
	# shellcheck disable=SC2086
	need_pkgs $BUILD_PKGS $DEMO_PKGS
	build="$top/_build-demo"	# no sanitizers: a separate tree
	build no
	own_name_resolves || { own_name_problem;
		say "(only the fetchmail command below needs it)"; }
	state="$top/demo-state"
	conf="$state/odmrd.conf"
	mkdir -p "$state"
	chmod 700 "$state"
	if [ ! -f "$state/cert.pem" ]; then
		say "making a self-signed certificate for localhost"
		openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
		    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
		    -keyout "$state/key.pem" -out "$state/cert.pem" \
		    >/dev/null 2>&1 || { say "openssl req failed"; exit 1; }
		chmod 600 "$state/key.pem"
	fi
	cat >"$conf" <<CONF
# demo configuration written by contrib/quickstart.sh
hostname = localhost
state_dir = $state
smtp_listen = 127.0.0.1:2525
odmr_listen = 127.0.0.1:3366
tls_cert_file = $state/cert.pem
tls_key_file = $state/key.pem
CONF
	ctl="$build/odmr/odmrctl -f $conf"
	$ctl domain show example.org >/dev/null 2>&1 ||
	    $ctl domain add example.org --owner demo >/dev/null
	# the customer account demo, password demo (SASL secret)
	$ctl user list 2>/dev/null | awk '$1 == "demo" && $2 != "none" { f = 1 }
	    END { exit !f }' || printf 'demo\n' | $ctl user add demo >/dev/null
	cat <<MSG

odmrd is starting in the foreground (Ctrl-C stops it); state: $state

Send it a message (another terminal):
  swaks --server 127.0.0.1:2525 --to someone@example.org --from you@example.com
  swaks --server 127.0.0.1:2525 --tls --to someone@example.org --from you@example.com
See what is queued:
  $ctl queue
  $ctl queue example.org
  $ctl show ID --headers
Mail for any other domain is refused (550 5.7.1): odmrd is no open relay.

Collect it as the customer demo (password demo) over ODMR (RFC 2645)
on 127.0.0.1:3366; here Postfix's smtp-sink on port 2526 stands in for
the site's MTA:
  mkdir -p -m 1777 /tmp/demo-in
  smtp-sink -u \$(id -u | grep -qx 0 && echo nobody || id -un) -d /tmp/demo-in/%M. 127.0.0.1:2526 10 &
with odmr-fetch (STARTTLS, SCRAM-SHA-256, ATRN):
  ODMR_PASSWORD=demo $build/turn/odmr-fetch --server localhost:3366 --user demo --ca-file $state/cert.pem --deliver-to 127.0.0.1:2526 -v; ls /tmp/demo-in
or with fetchmail (CRAM-MD5, no TLS in its ODMR mode):
  echo 'poll 127.0.0.1 service 3366 protocol ODMR user demo password demo fetchdomains example.org smtphost 127.0.0.1/2526' >/tmp/demo-fetchmailrc
  chmod 600 /tmp/demo-fetchmailrc && fetchmail -v -f /tmp/demo-fetchmailrc && ls /tmp/demo-in

Or the ETRN way (RFC 1985): give the domain a route, then ask for a flush
  $ctl domain set example.org --route 127.0.0.1:2526 --tls none
  ODMR_PASSWORD=demo $build/turn/odmr-fetch --server localhost:3366 --user demo --ca-file $state/cert.pem --etrn --domains example.org
  $ctl flush example.org     # the same, from the node's side

MSG
	exec "$build/odmr/odmrd" -f "$conf" -d
}

case "${1:-}" in
check) check ;;
demo) demo ;;
*) echo "usage: sh contrib/quickstart.sh check|demo" >&2; exit 2 ;;
esac
