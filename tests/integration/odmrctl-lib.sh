# tests/integration/odmrctl-lib.sh - run odmrctl and judge what it says.
#
# Source it after tests/tap.sh, once $T exists and ctl() is defined.
#
#	show_file FILE		a file into the TAP stream as comments
#	expect CODE DESC PATTERN COMMAND...
#				pass when COMMAND exits CODE and PATTERN is in
#				its stdout (CODE 0) or stderr; a failure must be
#				one "odmrctl: " line, a success prints no stderr
#	json DESC PYTHON	check the JSON in $T/out (seen as d)
#
# Everything expect sees is also appended to $T/all-output, so a test can
# check that no secret was ever printed.

# show_file FILE - copy a file into the TAP stream as comments
show_file() {
	sed 's/^/#   /' "$1" | head -20
}

# expect CODE DESCRIPTION PATTERN COMMAND... - run COMMAND (stdin is
# inherited); pass when it exits CODE and PATTERN (grep -E, may be
# empty) is in its stdout (CODE 0) or stderr (otherwise). A failure must
# be one "odmrctl: " line on stderr; a success must print no stderr.
# Everything printed is kept in all-output for the no-secret check.
expect() {
	_want=$1; _d=$2; _pat=$3; shift 3
	"$@" >"$T/out" 2>"$T/err"
	_got=$?
	cat "$T/out" "$T/err" >>"$T/all-output"
	if [ "$_got" -ne "$_want" ]; then
		not_ok "$_d (exit $_got, want $_want)"
		show_file "$T/err"
		return 1
	fi
	if [ "$_want" -eq 0 ]; then _f=$T/out; else _f=$T/err; fi
	if [ -n "$_pat" ] && ! grep -Eq -e "$_pat" "$_f"; then
		not_ok "$_d (no /$_pat/ in the output)"
		show_file "$_f"
		return 1
	fi
	if [ "$_want" -ne 0 ] && { [ "$(wc -l <"$T/err")" -ne 1 ] ||
	    ! grep -q '^odmrctl: ' "$T/err"; }; then
		not_ok "$_d (stderr is not one 'odmrctl: ' line)"
		show_file "$T/err"
		return 1
	fi
	if [ "$_want" -eq 0 ] && [ -s "$T/err" ]; then
		not_ok "$_d (unexpected stderr)"
		show_file "$T/err"
		return 1
	fi
	ok "$_d"
}

# json DESCRIPTION PYTHON - check the JSON in $T/out with Python
# statements that see it as d (assert ...)
json() {
	_d=$1
	if python3 -c "import json, sys
d = json.load(open(sys.argv[1]))
$2" "$T/out" 2>"$T/pyerr"; then
		ok "$_d"
	else
		not_ok "$_d"
		show_file "$T/pyerr"
	fi
}
