# tests/tap.sh - tiny TAP emitter shared by the integration scripts.
#
# Source it, call ok/not_ok/check for each case, and finish with tap_done,
# which prints the plan and exits non-zero when anything failed. A peer
# program that is missing is a failure that names its Debian package:
# use require_cmd CMD PACKAGE. Nothing is ever skipped silently.

tap_n=0
tap_failed=0

# ok DESCRIPTION - record a passing case
ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

# not_ok DESCRIPTION - record a failing case
not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

# check DESCRIPTION COMMAND... - run COMMAND, pass when it exits 0
check() {
	_d=$1; shift
	if "$@"; then ok "$_d"; else not_ok "$_d"; fi
}

# expect_exit CODE DESCRIPTION COMMAND... - pass when COMMAND exits CODE
expect_exit() {
	_want=$1; _d=$2; shift 2
	"$@" >/dev/null 2>&1
	_got=$?
	if [ "$_got" -eq "$_want" ]; then ok "$_d"
	else not_ok "$_d (exit $_got, want $_want)"; fi
}

# diag TEXT - a TAP comment
diag() {
	echo "# $*"
}

# require_cmd CMD PACKAGE - fail loudly when a peer tool is missing
require_cmd() {
	if ! command -v "$1" >/dev/null 2>&1; then
		not_ok "required tool '$1' is missing: install the Debian package $2"
		tap_done
	fi
}

# require_built PROGRAM... - fail loudly when a program of ours is not built
require_built() {
	for _p in "$@"; do
		if [ ! -x "$_p" ]; then
			not_ok "$_p is not built (run make first)"
			tap_done
		fi
	done
}

# tap_feed FILE - FILE's "ok - " and "not ok - " lines become cases, the
# others comments (a helper written in another language reports so)
tap_feed() {
	while IFS= read -r _tf; do
		case $_tf in
		"ok - "*) ok "${_tf#ok - }" ;;
		"not ok - "*) not_ok "${_tf#not ok - }" ;;
		"#"*) echo "$_tf" ;;
		*) echo "# $_tf" ;;
		esac
	done <"$1"
}

# wait_until SECONDS COMMAND... - poll COMMAND (every 0.1 s) until it
# succeeds; 1 when SECONDS of wall clock pass first. This is how a test
# waits for an event (a log line, a port, a file, a pid): it ends as soon
# as the event is there, and the bound only matters when it never comes.
# Never a fixed sleep before an assertion: a loaded machine outlasts it.
wait_until() {
	_wu_end=$(($(date +%s) + $1)); shift
	until "$@"; do
		[ "$(date +%s)" -le "$_wu_end" ] || return 1
		sleep 0.1
	done
}

# tap_done - print the plan and exit with the right status
tap_done() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ] && [ "$tap_n" -gt 0 ]
	exit $?
}
