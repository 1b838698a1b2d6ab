#!/bin/sh
# NAME
#	test-odmrctl-user.sh - customer accounts: odmrctl user and libsasl2
# SYNOPSIS
#	top_srcdir=... top_builddir=... sh tests/integration/test-odmrctl-user.sh
# DESCRIPTION
#	Drives the real odmrctl binary (user add, passwd, del, list) on a
#	temporary state directory, then proves with tests/tools/sasl-check
#	that the secrets it stored serve every mechanism odmrd offers:
#	sasl-check runs a libsasl2 server, set up by odmr_sasl exactly as
#	odmrd sets it up, and a libsasl2 client in one process, and runs a
#	whole exchange of each of SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5,
#	PLAIN and LOGIN: the right password must be accepted as the right
#	account, a wrong one refused with SASL_BADAUTH. A password typed
#	on a terminal is driven through a pty (python3). No password may
#	ever appear in what odmrctl prints. Output is TAP (tests/tap.sh).

: "${top_srcdir:?set top_srcdir}" "${top_builddir:?set top_builddir}"
# shellcheck source=tests/tap.sh
. "$top_srcdir/tests/tap.sh"

CTL=$top_builddir/odmr/odmrctl
CHECK=$top_builddir/tests/tools/sasl-check
MECHS="SCRAM-SHA-256 SCRAM-SHA-1 CRAM-MD5 PLAIN LOGIN"

require_cmd python3 python3
for _p in "$CTL" "$CHECK"; do
	if [ ! -x "$_p" ]; then
		not_ok "$_p is not built (make odmr/odmrctl tests/tools/sasl-check)"
		tap_done
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/test-odmrctl-user.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
S=$T/state
mkdir "$S"
printf 'state_dir = %s\n' "$S" >"$T/odmrd.conf"
: >"$T/all-output"

# ctl ARGS... - odmrctl on the test state directory
ctl() {
	"$CTL" -f "$T/odmrd.conf" "$@"
}

. "$top_srcdir/tests/integration/odmrctl-lib.sh"

# with_pass PASSWORD CODE DESCRIPTION PATTERN ARGS... - expect with the
# password as one line on stdin
with_pass() {
	_pw=$1; shift
	printf '%s\n' "$_pw" >"$T/pw"
	expect "$@" <"$T/pw"
}

# auth CODE DESCRIPTION USER MECH PASSWORD PATTERN - sasl-check one
# exchange; pass when it exits CODE and prints PATTERN
auth() {
	_want=$1; _d=$2; _u=$3; _m=$4; _pw=$5; _pat=$6
	printf '%s\n' "$_pw" | "$CHECK" "$S" "$_u" "$_m" >"$T/aout" 2>"$T/aerr"
	_got=$?
	if [ "$_got" -eq "$_want" ] && grep -Eq -e "$_pat" "$T/aout"; then
		ok "$_d"
	else
		not_ok "$_d (exit $_got, want $_want; want /$_pat/)"
		show_file "$T/aout"
		show_file "$T/aerr"
	fi
}

# mode FILE - the permission bits of FILE in octal
mode() {
	stat -c %a "$1"
}

# on_tty ANSWERS ARGS... - odmrctl ARGS on a pseudo-terminal; each answer
# of the comma-separated list is typed after a prompt ending in ": ".
# Prints the terminal's transcript; exits with odmrctl's status.
on_tty() {
	_answers=$1; shift
	python3 - "$_answers" "$CTL" -f "$T/odmrd.conf" "$@" <<'EOF'
import os, pty, select, signal, sys, time
answers = sys.argv[1].split(',') if sys.argv[1] else ['']
argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b''
deadline = time.time() + 30
def more():
    global out
    r, _, _ = select.select([fd], [], [], max(0, deadline - time.time()))
    if not r:
        return False
    try:
        d = os.read(fd, 1024)
    except OSError:
        return False
    out += d
    return bool(d)
seen = 0
for a in answers:
    # a prompt printed after the last answer was typed
    while not (len(out) > seen and out.endswith(b': ')):
        if not more():
            break
    os.write(fd, a.encode() + b'\r')
    seen = len(out)
while more():
    pass
if time.time() >= deadline:
    os.kill(pid, signal.SIGKILL)
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors='replace'))
sys.exit(os.waitstatus_to_exitcode(st))
EOF
}

diag "odmrctl=$CTL sasl-check=$CHECK state=$S"

# ---- usage errors: nothing is read, nothing is created ----
expect 2 "missing user subcommand" "missing user subcommand" ctl user </dev/null
expect 2 "unknown user subcommand" "unknown command 'user frob'" ctl user frob </dev/null
expect 2 "user add without USER" "missing USER" ctl user add </dev/null
expect 2 "user add with two users" "unexpected argument 'b'" ctl user add a b </dev/null
expect 2 "user passwd without USER" "missing USER" ctl user passwd </dev/null
expect 2 "user del without USER" "missing USER" ctl user del </dev/null
expect 2 "user add --force" "unknown option '--force'" ctl user add a --force </dev/null
expect 2 "user list with an argument" "unexpected argument 'x'" ctl user list x
expect 2 "--json user add" "only for read commands" ctl --json user add a </dev/null
long=$(printf 'u%064d' 0)
for bad in "" ".dot" "a b" "x/y" "x:y" "é" "$long" "@lead" "trail@" \
    "bob@odmr"; do
	expect 2 "bad user name '$bad' (add)" "bad user name" \
		ctl user add "$bad" </dev/null
done
expect 2 "bad user name (passwd)" "bad user name" ctl user passwd 'a b' </dev/null
expect 2 "bad user name (del)" "bad user name" ctl user del 'a;b' </dev/null
check "usage errors created no file" test -z "$(ls "$S")"

printf 'state_dir = %s\n' "$T/nonexistent" >"$T/missing.conf"
expect 3 "missing state directory" "does not exist" \
	"$CTL" -f "$T/missing.conf" user list
printf 'pw\n' >"$T/pw"
expect 3 "missing state directory (add)" "does not exist" \
	"$CTL" -f "$T/missing.conf" user add alice <"$T/pw"

# ---- an empty state directory ----
expect 0 "user list with no account" "^USER +ACCOUNT +DOMAINS$" ctl user list
ctl --json user list >"$T/out" 2>"$T/err"
json "user list --json with no account" '
assert d["schema"] == "odmrctl.user.list/1", d
assert isinstance(d["now"], int)
assert d["users"] == [], d'
# sasl-check prints "ok mechanisms=...": keep it out of the TAP stream
if "$CHECK" -m "$S" >"$T/mechs" 2>&1; then
	ok "sasl-check: every mechanism is installed ($(sed 's/^ok //' "$T/mechs"))"
else
	not_ok "sasl-check: a mechanism is missing: $(cat "$T/mechs")"
fi

# ---- add ----
PW_ALICE='Alice-s3cret pass'
with_pass "$PW_ALICE" 0 "user add alice" "^user alice added$" ctl user add alice
check "sasldb2 is mode 0600" test "$(mode "$S/sasldb2")" = 600
check "the account index is mode 0600" test "$(mode "$S/users")" = 600
check "the lock file is mode 0600" test "$(mode "$S/users.lock")" = 600
check "the index lists alice" test "$(cat "$S/users")" = alice
with_pass other 1 "user add of an existing user" "user alice already exists" \
	ctl user add alice
auth 0 "the duplicate add left the password alone" alice PLAIN "$PW_ALICE" "^ok user=alice$"

expect 2 "user add with no input" "no password" ctl user add bob </dev/null
printf '\n' >"$T/pw"
expect 2 "user add with an empty line" "password is empty" ctl user add bob <"$T/pw"
printf '\r\n' >"$T/pw"
expect 2 "user add with a bare CR LF" "password is empty" ctl user add bob <"$T/pw"
printf 'a\000b\n' >"$T/pw"
expect 2 "user add with a NUL in the password" "NUL" ctl user add bob <"$T/pw"
python3 -c 'print("x" * 1025)' >"$T/pw"
expect 2 "user add with 1025 octets" "longer than 1024" ctl user add bob <"$T/pw"
check "the refused adds created no account" test "$(cat "$S/users")" = alice
auth 1 "and no secret" bob PLAIN x "^fail result=NOUSER$"

PW_LONG=$(python3 -c 'print("L" * 1024)')
with_pass "$PW_LONG" 0 "user add with 1024 octets" "^user long added$" ctl user add long
auth 0 "the 1024-octet password works (CRAM-MD5)" long CRAM-MD5 "$PW_LONG" "^ok user=long$"
printf 'crlf-pass\r\n' >"$T/pw"
expect 0 "user add with a CR LF line" "^user carol added$" ctl user add carol <"$T/pw"
auth 0 "the CR is not part of the password" carol PLAIN crlf-pass "^ok user=carol$"
printf 'first-line\nsecond-line\n' >"$T/pw"
expect 0 "user add reads one line only" "^user dan added$" ctl user add dan <"$T/pw"
auth 0 "the password is the first line" dan LOGIN first-line "^ok user=dan$"
PW_BOB='b0b@example'
with_pass "$PW_BOB" 0 "user add bob@example.org" "^user bob@example\.org added$" \
	ctl user add bob@example.org

# ---- every mechanism against the stored secrets ----
for m in $MECHS; do
	auth 0 "$m: alice, right password" alice "$m" "$PW_ALICE" "^ok user=alice$"
	auth 1 "$m: alice, wrong password" alice "$m" "wrong-$PW_ALICE" \
		"^fail result=BADAUTH$"
	auth 1 "$m: alice, bob's password" alice "$m" "$PW_BOB" "^fail result=BADAUTH$"
	auth 0 "$m: bob@example.org, right password" bob@example.org "$m" \
		"$PW_BOB" "^ok user=bob@example\.org$"
	auth 1 "$m: bob@example.org, wrong password" bob@example.org "$m" \
		"$PW_ALICE" "^fail result=BADAUTH$"
	auth 1 "$m: an unknown user" nobody "$m" "$PW_ALICE" "^fail result=NOUSER$"
done
auth 0 "alice@odmr is alice" alice@odmr CRAM-MD5 "$PW_ALICE" "^ok user=alice$"

# ---- passwd ----
PW_ALICE2='second Alice password'
with_pass "$PW_ALICE2" 0 "user passwd alice" "^password of user alice changed$" \
	ctl user passwd alice
for m in $MECHS; do
	auth 0 "$m: alice, new password" alice "$m" "$PW_ALICE2" "^ok user=alice$"
	auth 1 "$m: alice, old password" alice "$m" "$PW_ALICE" "^fail result=BADAUTH$"
done
with_pass x 1 "user passwd of an unknown user" "unknown user nobody" \
	ctl user passwd nobody
check "passwd of an unknown user created nothing" \
	test "$(grep -c nobody "$S/users")" -eq 0
printf '\n' >"$T/pw"
expect 2 "user passwd with an empty password" "password is empty" \
	ctl user passwd alice <"$T/pw"
auth 0 "the refused passwd changed nothing" alice SCRAM-SHA-256 "$PW_ALICE2" \
	"^ok user=alice$"
chmod 0644 "$S/sasldb2"
with_pass "$PW_ALICE2" 0 "user passwd again" "changed" ctl user passwd alice
check "a passwd puts sasldb2 back to 0600" test "$(mode "$S/sasldb2")" = 600

# ---- list ----
expect 0 "user list" "^alice +ok +-$" ctl user list
check "user list: one line per account, in order" \
	test "$(awk 'NR > 1 { print $1 }' "$T/out" | tr '\n' ' ')" = \
	"alice bob@example.org carol dan long "
expect 0 "domain add example.org --owner alice,erin" "added" \
	ctl domain add example.org --owner alice,erin
expect 0 "domain add example.net --owner alice" "added" \
	ctl domain add example.net --owner alice
expect 0 "user list shows the domains" \
	"^alice +ok +example\.net,example\.org$" ctl user list
check "user list shows an owner without an account" \
	grep -Eq '^erin +none +example\.org$' "$T/out"
expect 0 "user list --json" "" ctl --json user list
json "user list --json: the document" '
assert d["schema"] == "odmrctl.user.list/1", d
u = {x["user"]: x for x in d["users"]}
assert [x["user"] for x in d["users"]] == sorted(u), d
assert u["alice"] == {"user": "alice", "account": True, "secret": True,
    "domains": ["example.net", "example.org"]}, u["alice"]
assert u["erin"] == {"user": "erin", "account": False, "secret": False,
    "domains": ["example.org"]}, u["erin"]
assert u["carol"]["domains"] == [] and u["carol"]["secret"] is True
assert set(u) == {"alice", "bob@example.org", "carol", "dan", "erin", "long"}'

# ---- del ----
expect 2 "user del of a domain owner" "user alice still owns example\.net,example\.org" \
	ctl user del alice
auth 0 "the refused del left alice alone" alice PLAIN "$PW_ALICE2" "^ok user=alice$"
expect 0 "user del --force of a domain owner" \
	"^user alice deleted; it is still named as owner of example\.net,example\.org" \
	ctl user del alice --force
for m in $MECHS; do
	auth 1 "$m: alice after del" alice "$m" "$PW_ALICE2" "^fail result=NOUSER$"
done
expect 0 "user list after del" "^alice +none +example\.net,example\.org$" ctl user list
expect 1 "user del of an unknown user" "unknown user alice" ctl user del alice
expect 0 "user del carol" "^user carol deleted$" ctl user del carol
auth 1 "carol after del" carol PLAIN crlf-pass "^fail result=NOUSER$"
check "the index after the dels" \
	test "$(tr '\n' ' ' <"$S/users")" = "bob@example.org dan long "
with_pass "new-alice" 0 "user add alice again" "added" ctl user add alice
auth 0 "the new alice has the new password" alice SCRAM-SHA-1 new-alice "^ok user=alice$"
auth 1 "and not the old one" alice SCRAM-SHA-1 "$PW_ALICE2" "^fail result=BADAUTH$"

# ---- an index entry without a secret (a crash between the two writes) ----
printf 'ghost\n' >>"$S/users"
expect 0 "user list shows an account without a secret" "^ghost +no secret +-$" \
	ctl user list
with_pass x 1 "user add of that account" "already exists" ctl user add ghost
with_pass ghost-pw 0 "user passwd repairs it" "changed" ctl user passwd ghost
auth 0 "ghost can authenticate" ghost CRAM-MD5 ghost-pw "^ok user=ghost$"
expect 0 "user del ghost" "deleted" ctl user del ghost

# ---- a terminal: a prompt on stderr, echo off, asked twice ----
PW_TTY='Typed-On-A-Tty'
if on_tty "$PW_TTY,$PW_TTY" user add ttyuser >"$T/tty-out" 2>&1; then
	ok "user add on a terminal"
else
	not_ok "user add on a terminal"
	show_file "$T/tty-out"
fi
cat "$T/tty-out" >>"$T/all-output"
check "the terminal showed the prompts" grep -q 'Retype the password for ttyuser: ' "$T/tty-out"
check "the terminal did not echo the password" \
	test "$(grep -c "$PW_TTY" "$T/tty-out")" -eq 0
auth 0 "the typed password works" ttyuser SCRAM-SHA-256 "$PW_TTY" "^ok user=ttyuser$"
on_tty "one-typed,other-typed" user passwd ttyuser >"$T/tty-out" 2>&1
_rc=$?
cat "$T/tty-out" >>"$T/all-output"
if [ "$_rc" -eq 2 ] && grep -q 'passwords differ' "$T/tty-out"; then
	ok "two different passwords on a terminal are refused"
else
	not_ok "two different passwords on a terminal are refused (exit $_rc)"
	show_file "$T/tty-out"
fi
auth 0 "and the password stayed" ttyuser PLAIN "$PW_TTY" "^ok user=ttyuser$"

# ---- concurrent writers keep the index whole ----
i=0
while [ "$i" -lt 12 ]; do
	printf 'pw-%s\n' "$i" | ctl user add "par$i" >/dev/null 2>>"$T/par-err" &
	i=$((i + 1))
done
wait
if [ "$(grep -c '^par' "$S/users")" -eq 12 ] && [ ! -s "$T/par-err" ]; then
	ok "12 concurrent adds: all 12 in the index"
else
	not_ok "12 concurrent adds: $(grep -c '^par' "$S/users") in the index"
	show_file "$T/par-err"
fi
auth 0 "a concurrently added account works" par7 CRAM-MD5 pw-7 "^ok user=par7$"

# ---- no secret was ever printed ----
leaked=""
for pw in "$PW_ALICE" "$PW_ALICE2" "$PW_BOB" "$PW_TTY" crlf-pass first-line \
    ghost-pw new-alice one-typed other-typed "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL"; do
	if grep -qF -e "$pw" "$T/all-output"; then
		leaked="$leaked '$pw'"
	fi
done
if [ -z "$leaked" ]; then
	ok "no password appears in anything odmrctl printed"
else
	not_ok "passwords in odmrctl's output:$leaked"
fi
check "sasldb2 is still mode 0600" test "$(mode "$S/sasldb2")" = 600
check "no sanitizer report" test "$(grep -c Sanitizer "$T/all-output")" -eq 0

tap_done
