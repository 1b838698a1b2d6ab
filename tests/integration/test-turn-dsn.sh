#!/bin/sh
# NAME
#	test-turn-dsn - DSNs built by turn_dsn, checked by Python's email
# DESCRIPTION
#	Builds a matrix of DSNs with tests/tools/dsn-make (turn_dsn(3))
#	and checks each with tests/tools/dsn-check.py: failures with one
#	and three recipients and mixed outcomes, ORCPT present and absent,
#	ENVID, RET=FULL, RET=HDRS and no RET, an original over return_max,
#	one with a line over 998 octets, one with LF line ends, one with
#	8-bit octets, a header line too long to return as is, a delay
#	warning with Will-Retry-Until, a success report with a relayed
#	recipient, SMTPUTF8 with and without UTF-8 addresses, an original
#	that holds the boundary the DSN would have used, very long
#	diagnostics, and no original at all. The null sender is refused,
#	and feeding the original an octet at a time changes nothing.
#
#	DSN_MAKE_WRAPPER, when set, prefixes every dsn-make run, for
#	example "valgrind -q --error-exitcode=99".
. "$top_srcdir/tests/tap.sh"
require_cmd python3 python3

bin="$top_builddir/tests/tools/dsn-make"
check="$top_srcdir/tests/tools/dsn-check.py"
require_built "$bin"
T=$(mktemp -d /tmp/test-turn-dsn.XXXXXX)
trap 'rm -rf "$T"' EXIT

# make_dsn NAME ORIGINAL ARGS... - dsn-make into $T/NAME.dsn; "-": none
make_dsn() {
	_n=$1; _o=$2; shift 2
	if [ "$_o" = - ]; then
		$DSN_MAKE_WRAPPER "$bin" -I -o "$@" >"$T/$_n.dsn" \
		    2>"$T/$_n.err"
	else
		$DSN_MAKE_WRAPPER "$bin" -I "$@" <"$_o" >"$T/$_n.dsn" \
		    2>"$T/$_n.err"
	fi
}

# check_dsn NAME DESCRIPTION ARGS... - dsn-check.py on $T/NAME.dsn
check_dsn() {
	_n=$1; _d=$2; shift 2
	if [ -s "$T/$_n.dsn" ] &&
	    python3 "$check" "$T/$_n.dsn" "$@" >"$T/$_n.check" 2>&1; then
		ok "$_n: $_d"
	else
		not_ok "$_n: $_d"
		cat "$T/$_n.err" "$T/$_n.check" 2>/dev/null | sed 's/^/#   /'
	fi
}

# crlf - LF to CRLF on standard input
crlf() {
	sed 's/$/\r/'
}

# the originals
crlf >"$T/plain.eml" <<'EOF'
From: Alice <alice@example.com>
To: Bob <bob@example.org>
Subject: lunch
Message-ID: <1@example.com>
Date: Tue, 14 Nov 2023 22:00:00 +0000

Shall we meet at noon?
-- 
Alice
EOF
{ cat "$T/plain.eml"; i=0; while [ $i -lt 200 ]; do
	echo "filler line $i of a message that is too large to return" | crlf
	i=$((i + 1)); done; } >"$T/big.eml"
crlf >"$T/8bit.eml" <<'EOF'
From: alice@example.com
Subject: menu
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Café crème, smörgåsbord.
EOF
crlf >"$T/utf8hdr.eml" <<'EOF'
From: Jörg <jörg@example.com>
Subject: Grüße

Hallo.
EOF
printf 'From: alice@example.com\nSubject: lf\n\nline one\nline two\n' \
    >"$T/lf.eml"
{ cat "$T/plain.eml"; python3 -c 'print("x" * 1200)' | crlf; } \
    >"$T/longline.eml"
{ printf 'Subject: long\r\nX-Long: '; python3 -c 'print("y" * 2500)' | crlf
	printf 'From: alice@example.com\r\n\r\nbody\r\n'; } >"$T/longhdr.eml"
printf 'From: alice@example.com\r\nSubject: only headers\r\n' \
    >"$T/noblank.eml"
long_words=$(python3 -c 'print("550 5.7.1 " + "blocked by policy " * 150)')
long_token=$(python3 -c 'print("554 5.7.0 " + "z" * 3000)')

make_dsn fail1 "$T/plain.eml" -R bob@example.org \
    -D '550 5.1.1 <bob@example.org>: no such user' -H mx.example.org \
    -L 1700000100
check_dsn fail1 "failure, one recipient, no RET: the whole message" \
    --original "$T/plain.eml" --rcpts 1 --sender sender@example.com \
    --field '0:Final-Recipient=rfc822; bob@example.org' \
    --field 0:Action=failed --field 0:Status=5.1.1 \
    --field '0:Remote-MTA=dns; mx.example.org' \
    --field '0:Diagnostic-Code=smtp; 550 5.1.1 <bob@example.org>: no such user' \
    --field '0:Last-Attempt-Date=Tue, 14 Nov 2023 22:15:00 +0000' \
    --field 'msg:Reporting-MTA=dns; mx.example.net' \
    --field 'msg:Arrival-Date=Tue, 14 Nov 2023 22:13:20 +0000' \
    --no-field 0:Original-Recipient --no-field 0:Will-Retry-Until \
    --text '<bob@example.org>: delivery failed (5.1.1)' \
    --text 'The server mx.example.org replied: 550 5.1.1' \
    --text 'Your message is attached below.'

make_dsn fail3 "$T/plain.eml" -e 'QQ+2B314159' \
    -R bob@example.org -O 'rfc822;Bob+2Bx@example.org' \
    -D '550 5.1.1 no such user' -H mx.example.org \
    -R carol@example.org -E '552 mailbox full' -H mx.example.org \
    -R dave@example.org -A delivered -D '250 2.0.0 Ok' -H mx.example.org
check_dsn fail3 "failure, three recipients, mixed outcomes, ORCPT, ENVID" \
    --original "$T/plain.eml" --rcpts 3 --envid 'QQ+314159' \
    --field '0:Original-Recipient=rfc822; Bob+x@example.org' \
    --field 0:Status=5.1.1 --field 1:Status=5.0.0 \
    --field '1:Diagnostic-Code=smtp; 552 mailbox full' \
    --field 2:Action=delivered --field 2:Status=2.0.0 \
    --no-field 1:Original-Recipient --no-field 2:Original-Recipient \
    --text '<carol@example.org>: delivery failed (5.0.0)' \
    --text '<dave@example.org>: delivered (2.0.0)'

make_dsn fail3c1 "$T/plain.eml" -c 1 -e 'QQ+2B314159' \
    -R bob@example.org -O 'rfc822;Bob+2Bx@example.org' \
    -D '550 5.1.1 no such user' -H mx.example.org \
    -R carol@example.org -E '552 mailbox full' -H mx.example.org \
    -R dave@example.org -A delivered -D '250 2.0.0 Ok' -H mx.example.org
check "fail3: fed an octet at a time, the same DSN" \
    cmp -s "$T/fail3.dsn" "$T/fail3c1.dsn"

make_dsn retfull "$T/plain.eml" -r full -R bob@example.org
check_dsn retfull "RET=FULL: the whole message" \
    --original "$T/plain.eml" --rcpts 1 --field 0:Status=5.0.0 \
    --no-field 0:Diagnostic-Code --no-field 0:Remote-MTA \
    --no-field msg:Original-Envelope-Id

make_dsn rethdrs "$T/plain.eml" -r hdrs -R bob@example.org \
    -D '550 5.1.1 gone'
check_dsn rethdrs "RET=HDRS: the header section only" \
    --original "$T/plain.eml" --rcpts 1 --return headers \
    --text 'As you asked (RET=HDRS), only the header'

make_dsn big "$T/big.eml" -M 1000 -R bob@example.org -D '550 5.1.1 gone'
check_dsn big "larger than return_max: the header section only" \
    --original "$T/big.eml" --return headers \
    --text 'Your message was larger than 1000 octets'

make_dsn longline "$T/longline.eml" -R bob@example.org
check_dsn longline "a line over 998 octets: the header section only" \
    --original "$T/longline.eml" --return headers \
    --text 'could not be enclosed as it is'

make_dsn lf "$T/lf.eml" -R bob@example.org
check_dsn lf "LF line ends come back as CRLF" --original "$T/lf.eml"

make_dsn noblank "$T/noblank.eml" -r hdrs -R bob@example.org
check_dsn noblank "a message of header fields only" \
    --original "$T/noblank.eml" --return headers

make_dsn longhdr "$T/longhdr.eml" -r hdrs -R bob@example.org
check_dsn longhdr "a 2500-octet header line is folded" \
    --original "$T/longhdr.eml" --return headers --repaired

make_dsn delay "$T/plain.eml" -k delay -x 1700400000 -R bob@example.org \
    -D '451 4.4.1 no answer from host' -H mx.example.org \
    -L 1700003000
check_dsn delay "delay warning with Will-Retry-Until" \
    --original "$T/plain.eml" --kind delay --return headers \
    --field 0:Action=delayed --field 0:Status=4.4.1 \
    --field '0:Will-Retry-Until=Sun, 19 Nov 2023 13:20:00 +0000' \
    --text 'tried again until Sun, 19 Nov 2023 13:20:00 +0000' \
    --text 'You do not need to send it again.'

make_dsn delay0 "$T/plain.eml" -k delay -R bob@example.org
check_dsn delay0 "delay warning without an expiry" \
    --original "$T/plain.eml" --kind delay --return headers \
    --field 0:Status=4.0.0 --no-field 0:Will-Retry-Until

make_dsn success "$T/plain.eml" -k success -r full \
    -R bob@example.org -D '250 2.0.0 Ok: queued as 1234' -H mx.example.org \
    -R carol@example.org -A relayed -H mx.example.org
check_dsn success "success report, delivered and relayed" \
    --original "$T/plain.eml" --kind success --return headers --rcpts 2 \
    --field 0:Action=delivered --field 0:Status=2.0.0 \
    --field 1:Action=relayed --field 1:Status=2.0.0 \
    --text 'relayed to a system that sends no delivery reports'

make_dsn eightbit "$T/8bit.eml" -b 8bitmime -R bob@example.org
check_dsn eightbit "8-bit original: returned whole, 8bit" \
    --original "$T/8bit.eml" --eightbit
check "eightbit: dsn-make says 8bit=1 smtputf8=0" \
    grep -q '^8bit=1 smtputf8=0 returned=full ' "$T/eightbit.err"

make_dsn utf8 "$T/utf8hdr.eml" -u -s 'jörg@example.com' \
    -R 'björn@example.org' -D '550 5.1.1 unknown' -R bob@example.org
check_dsn utf8 "SMTPUTF8 with UTF-8 addresses: RFC 6533 global types" \
    --original "$T/utf8hdr.eml" --global --eightbit --rcpts 2 \
    --sender 'jörg@example.com' \
    --field '0:Final-Recipient=utf-8; björn@example.org' \
    --field '1:Final-Recipient=rfc822; bob@example.org'
check "utf8: dsn-make says smtputf8=1" \
    grep -q '^8bit=1 smtputf8=1 returned=full ' "$T/utf8.err"

make_dsn utf8ascii "$T/plain.eml" -u -R bob@example.org
check_dsn utf8ascii "SMTPUTF8 all in ASCII: the plain types" \
    --original "$T/plain.eml"

make_dsn utf8hdr "$T/utf8hdr.eml" -u -k delay -R bob@example.org
check_dsn utf8hdr "SMTPUTF8, UTF-8 header: message/global-headers" \
    --original "$T/utf8hdr.eml" --kind delay --return headers --global \
    --eightbit

make_dsn xtext "$T/plain.eml" -R 'björn@example.org' -r hdrs
check_dsn xtext "UTF-8 recipient without SMTPUTF8: utf-8-addr-xtext" \
    --original "$T/plain.eml" --return headers \
    --field '0:Final-Recipient=utf-8; bj\x{F6}rn@example.org' \
    --text '<bj\x{F6}rn@example.org>: delivery failed'

make_dsn longdiag "$T/plain.eml" -R bob@example.org -D "$long_words" \
    -R carol@example.org -D "$long_token"
check_dsn longdiag "very long diagnostics are folded and cut" \
    --original "$T/plain.eml" --rcpts 2 --field 0:Status=5.7.1 \
    --field 1:Status=5.7.0

make_dsn none - -R bob@example.org -D '550 5.1.1 gone'
check_dsn none "no original: two parts" --return none \
    --text 'could not be attached'

# The boundary: learn the one a DSN would use, then put it in the
# original as a MIME delimiter line; the DSN must choose another.
make_dsn probe "$T/plain.eml" -R bob@example.org
b0=$(sed -n 's/.* boundary=//p' "$T/probe.err")
{ printf 'From: alice@example.com\r\nSubject: trap\r\nMIME-Version: 1.0\r\n'
	printf 'Content-Type: multipart/mixed; boundary="%s"\r\n\r\n' "$b0"
	printf -- '--%s\r\nContent-Type: text/plain\r\n\r\nhi\r\n' "$b0"
	printf -- '--%s--\r\n' "$b0"; } >"$T/collide.eml"
make_dsn collide "$T/collide.eml" -R bob@example.org
b1=$(sed -n 's/.* boundary=//p' "$T/collide.err")
if [ -n "$b0" ] && [ -n "$b1" ] && [ "$b0" != "$b1" ]; then
	ok "collide: the boundary found in the original is not used"
else
	not_ok "collide: boundary '$b0' then '$b1'"
fi
check_dsn collide "the original holding the boundary comes back whole" \
    --original "$T/collide.eml"

expect_exit 1 "the null sender gets no DSN" \
    "$bin" -o -s '' -R bob@example.org
if "$bin" -o -s '' -R bob@example.org 2>&1 >/dev/null |
    grep -q 'null sender'; then
	ok "the refusal names the null sender"
else
	not_ok "the refusal names the null sender"
fi
expect_exit 1 "a CRLF in an address is refused" \
    "$bin" -o -R "$(printf 'bob@example.org\r\nBcc: x@y')"

tap_done
