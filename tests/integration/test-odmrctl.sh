#!/bin/sh
# NAME
#	test-odmrctl.sh - odmrctl against a real store, case by case
# SYNOPSIS
#	top_srcdir=... top_builddir=... sh tests/integration/test-odmrctl.sh
# DESCRIPTION
#	Drives the real odmrctl binary against a real Berkeley DB store in
#	a temporary state directory; messages are put there by
#	tests/tools/queue-writer, whose bodies are deterministic, so the
#	content odmrctl shows is compared byte for byte. Every case checks
#	the exit code of odmrctl(8) and the text of the message: errors
#	must be exactly one stderr line starting with "odmrctl: ".
#	Output is TAP (tests/tap.sh).

: "${top_srcdir:?set top_srcdir}" "${top_builddir:?set top_builddir}"
# shellcheck source=tests/tap.sh
. "$top_srcdir/tests/tap.sh"

CTL=$top_builddir/odmr/odmrctl
QW=$top_builddir/tests/tools/queue-writer

require_cmd python3 python3
for _p in "$CTL" "$QW"; do
	if [ ! -x "$_p" ]; then
		not_ok "$_p is not built (make odmr/odmrctl tests/tools/queue-writer)"
		tap_done
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/test-odmrctl.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
S=$T/state
mkdir "$S"
printf 'state_dir = %s\n' "$S" >"$T/odmrd.conf"

# ctl ARGS... - odmrctl on the test store
ctl() {
	"$CTL" -f "$T/odmrd.conf" "$@"
}

. "$top_srcdir/tests/integration/odmrctl-lib.sh"

# ack_field ACKFILE INDEX - the queue id queue-writer acknowledged for INDEX
ack_field() {
	awk -v i="$2" '$2 == i { print $1 }' "$1"
}

diag "odmrctl=$CTL state=$S"

# ---- usage errors ----
expect 2 "no command" "missing command" ctl
expect 2 "unknown command" "unknown command 'frobnicate'" ctl frobnicate
expect 2 "unknown user subcommand" "unknown command 'user frob'" ctl user frob
expect 2 "flush without a domain" "which domain" ctl flush
expect 2 "bounce without an id" "which message" ctl bounce
expect 2 "unknown domain subcommand" "unknown command 'domain frob'" ctl domain frob
expect 2 "missing domain subcommand" "missing domain subcommand" ctl domain
expect 2 "unknown global option" "unknown option '--frob'" ctl --frob queue
expect 2 "unknown command option" "unknown option '--frob'" ctl domain list --frob
expect 2 "unknown option of domain add" "unknown option '--no-subdomains'" \
	ctl domain add example.org --owner a --no-subdomains
expect 2 "-f without a file" "option -f needs a file name" "$CTL" -f
expect 2 "domain add without arguments" "missing DOMAIN" ctl domain add
expect 2 "domain add without --owner" "missing --owner" ctl domain add example.org
expect 2 "--owner without a value" "missing argument to --owner" \
	ctl domain add example.org --owner
expect 2 "domain show without a domain" "missing DOMAIN" ctl domain show
expect 2 "domain del without a domain" "missing DOMAIN" ctl domain del
expect 2 "show without an id" "missing message ID" ctl show
expect 2 "delete without an id" "missing message ID" ctl delete
expect 2 "hold without an id" "missing message ID" ctl hold
expect 2 "show with a bad id" "bad queue id 'xyz'" ctl show xyz
expect 2 "delete with a bad id" "bad queue id '12345'" ctl delete 12345
expect 2 "two content options" "only one of" ctl show 00000000000001 --raw --body
expect 2 "--json on a write command" "--json is only for read commands" \
	ctl --json domain del example.org
expect 0 "help" "domain add" ctl --help
expect 0 "help of one command" "usage: odmrctl domain add DOMAIN --owner" \
	ctl domain add --help

# ---- bad domain names ----
expect 2 "domain with a trailing dot" "bad domain name 'example.org\.'.*dot" \
	ctl domain add example.org. --owner a
expect 2 "domain with an empty first label" "bad domain name.*empty label" \
	ctl domain add .example.org --owner a
expect 2 "domain a..b" "bad domain name 'a\.\.b'.*empty label" \
	ctl domain add a..b --owner a
long=$(printf '%064d' 0 | tr 0 a)
expect 2 "domain with a 64-octet label" "bad domain name.*longer than 63" \
	ctl domain add "$long.org" --owner a
expect 2 "IP literal as a domain" "bad domain name '\[192\.0\.2\.1\]'.*literal" \
	ctl domain add '[192.0.2.1]' --owner a
expect 2 "bare IP address as a domain" "bad domain name '192\.0\.2\.1'" \
	ctl domain add 192.0.2.1 --owner a
expect 2 "single-label domain" "bad domain name 'localhost'" \
	ctl domain add localhost --owner a
expect 2 "bad domain in queue DOMAIN" "bad domain name" ctl queue 'a..b'
expect 2 "bad domain in delete --domain" "bad domain name" ctl delete --domain 'x_y.org'

# ---- bad option values ----
expect 2 "bad size" "bad size '10X' for --max-bytes" \
	ctl domain add example.org --owner a --max-bytes 10X
expect 2 "negative size" "bad size '-1' for --max-bytes" \
	ctl domain add example.org --owner a --max-bytes=-1
expect 2 "bad duration" "bad duration '5y' for --lifetime" \
	ctl domain add example.org --owner a --lifetime 5y
expect 2 "duration with junk" "bad duration '1d2' for --lifetime" \
	ctl domain add example.org --owner a --lifetime 1d2
expect 2 "bad message count" "bad --max-messages 'many'" \
	ctl domain add example.org --owner a --max-messages many
expect 2 "bad --etrn" "bad --etrn 'sometimes'" \
	ctl domain add example.org --owner a --etrn sometimes
expect 2 "bad --tls" "bad --tls 'maybe'" \
	ctl domain add example.org --owner a --tls maybe
expect 2 "owner with a space" "bad owner name 'a b'" \
	ctl domain add example.org --owner 'a b'
expect 2 "empty owner in a list" "bad owner name ''" \
	ctl domain add example.org --owner 'a,,b'
expect 2 "65-character owner" "bad owner name" \
	ctl domain add example.org --owner "$(printf '%065d' 0)"
expect 2 "--route client without --etrn owner" \
	"--route client requires --etrn owner" \
	ctl domain add example.org --owner a --route client
expect 2 "route with port 0" "bad port" \
	ctl domain add example.org --owner a --route mail.example.org:0
expect 2 "route with port 70000" "bad port" \
	ctl domain add example.org --owner a --route mail.example.org:70000
expect 2 "route with a bad host" "bad host 'bad_host.example.org'" \
	ctl domain add example.org --owner a --route bad_host.example.org
expect 2 "route with a bad address literal" "bad address literal" \
	ctl domain add example.org --owner a --route '[300.1.1.1]'
expect 2 "route with an empty host" "empty host" \
	ctl domain add example.org --owner a --route 'a.example.org,'

# ---- configuration and state directory ----
expect 2 "missing -f file" "$T/nonexistent.conf" \
	"$CTL" -f "$T/nonexistent.conf" queue
printf 'state_dir = %s\nbogus_key = 1\n' "$S" >"$T/badkey.conf"
expect 2 "configuration with an unknown key" "badkey\.conf:2: .*bogus_key" \
	"$CTL" -f "$T/badkey.conf" queue
printf 'state_dir = %s\n' "$T/no-such-dir" >"$T/nodir.conf"
expect 3 "missing state dir" "state directory $T/no-such-dir does not exist" \
	"$CTL" -f "$T/nodir.conf" queue
expect 3 "missing state dir on domain add" "does not exist" \
	"$CTL" -f "$T/nodir.conf" domain add example.org --owner a
expect 3 "no store yet" "no queue store in $S" ctl queue
expect 3 "no store yet: domain list" "no queue store" ctl --json domain list
if [ -e "$S/queue" ]; then
	not_ok "a read command created the store"
else
	ok "read commands do not create a store"
fi

# ---- domain round trips ----
expect 0 "domain add" "domain example.org added" \
	ctl domain add example.org --owner alice,bob
expect 1 "duplicate domain add" "domain example.org already exists" \
	ctl domain add example.org --owner alice
expect 1 "duplicate add in another spelling" "already exists" \
	ctl domain add EXAMPLE.ORG --owner alice
expect 0 "domain add, upper case" "domain example.com added" \
	ctl domain add Example.COM --owner carol --subdomains \
	--route '[192.0.2.7]:2525,relay.example.net' --tls encrypt \
	--max-messages 100 --max-bytes 10M --lifetime 2d
expect 0 "domain add with --route client --etrn owner" "added" \
	ctl domain add client.example --owner dave --route client --etrn owner
expect 0 "domain show" "^owners: +alice,bob" ctl domain show example.org
if grep -Eq '^route: +mx$' "$T/out" && grep -Eq '^etrn: +any$' "$T/out" &&
    grep -Eq '^tls: +may$' "$T/out" && grep -Eq '^max messages: +unlimited$' "$T/out" &&
    grep -Eq '^lifetime: +5d00h \(queue_lifetime\)$' "$T/out"; then
	ok "domain show: the defaults"
else
	not_ok "domain show: the defaults"; show_file "$T/out"
fi
expect 0 "domain show --json" "" ctl domain show example.org --json
json "domain show --json: schema and defaults" '
assert d["schema"] == "odmrctl.domain.show/1"
x = d["domain"]
assert x["name"] == "example.org"
assert x["owners"] == ["alice", "bob"]
assert x["subdomains"] is False
assert (x["etrn"], x["route"], x["tls"]) == ("any", "mx", "may")
assert (x["max_messages"], x["max_bytes"], x["lifetime"]) == (0, 0, 0)
assert x["effective_lifetime"] == 5 * 86400
assert x["messages"] == 0 and x["bytes"] == 0
assert x["oldest"] is None and x["last_pickup"] is None and x["flush"] is None
assert isinstance(x["created"], int) and isinstance(d["now"], int)'
expect 0 "domain show of a normalised name" "" ctl --json domain show EXAMPLE.com
json "domain show --json: all settings of domain add" '
x = d["domain"]
assert x["name"] == "example.com"
assert x["owners"] == ["carol"] and x["subdomains"] is True
assert x["route"] == "[192.0.2.7]:2525,relay.example.net"
assert x["tls"] == "encrypt"
assert x["max_messages"] == 100 and x["max_bytes"] == 10 * 1024 * 1024
assert x["lifetime"] == 2 * 86400 and x["effective_lifetime"] == 2 * 86400'
expect 1 "domain show of an unknown domain" "unknown domain nowhere.example" \
	ctl domain show nowhere.example
expect 0 "domain list" "^example\.org +alice,bob +no +any +mx +may" ctl domain list
if head -1 "$T/out" | grep -Eq '^DOMAIN +OWNERS' && [ "$(wc -l <"$T/out")" -eq 4 ]; then
	ok "domain list: a header and three domains"
else
	not_ok "domain list: a header and three domains"; show_file "$T/out"
fi
expect 0 "domain list --json" "" ctl --json domain list
json "domain list --json" '
assert d["schema"] == "odmrctl.domain.list/1"
names = [x["name"] for x in d["domains"]]
assert sorted(names) == ["client.example", "example.com", "example.org"], names
c = [x for x in d["domains"] if x["name"] == "client.example"][0]
assert c["route"] == "client" and c["etrn"] == "owner"'
expect 0 "domain add of an IDN" "domain xn--bcher-kva\.example added" \
	ctl domain add 'bücher.example' --owner a
expect 0 "domain show of an IDN in U-label form" "^domain: +xn--bcher-kva\.example$" \
	ctl domain show 'BÜCHER.example'
expect 0 "domain del of an IDN" "deleted" ctl domain del xn--bcher-kva.example
expect 0 "domain set" "domain example.org changed" \
	ctl domain set example.org --owner carol,dave --subdomains --etrn owner \
	--route client --tls verify --max-messages 10 --max-bytes 1M --lifetime 36h
expect 0 "domain show after set" "" ctl domain show example.org --json
json "domain set changed every setting" '
x = d["domain"]
assert x["owners"] == ["carol", "dave"] and x["subdomains"] is True
assert (x["etrn"], x["route"], x["tls"]) == ("owner", "client", "verify")
assert (x["max_messages"], x["max_bytes"], x["lifetime"]) == (10, 1048576, 36 * 3600)'
expect 2 "domain set --etrn any on a client route" \
	"--route client requires --etrn owner.*nothing changed" \
	ctl domain set example.org --etrn any --tls none
expect 0 "domain show after the refused set" "" ctl --json domain show example.org
json "a refused set changes nothing" '
x = d["domain"]
assert x["etrn"] == "owner" and x["tls"] == "verify"'
expect 0 "domain set back to the defaults" "changed" \
	ctl domain set example.org --route mx --etrn any --tls may --no-subdomains \
	--max-messages 0 --max-bytes 0 --lifetime 0 --owner alice,bob
expect 0 "domain show after the reset" "" ctl --json domain show example.org
json "domain set --no-subdomains and zero limits" '
x = d["domain"]
assert x["subdomains"] is False and x["route"] == "mx" and x["etrn"] == "any"
assert (x["max_messages"], x["max_bytes"], x["lifetime"]) == (0, 0, 0)
assert x["owners"] == ["alice", "bob"]'
expect 2 "domain set without options" "nothing to change" ctl domain set example.org
expect 1 "domain set of an unknown domain" "unknown domain nowhere.example" \
	ctl domain set nowhere.example --tls none
expect 2 "domain set with a bad size" "bad size" \
	ctl domain set example.org --max-bytes 1T
expect 0 "domain del of an empty domain" "domain client.example deleted" \
	ctl domain del client.example
expect 1 "domain show after del" "unknown domain client.example" \
	ctl domain show client.example
expect 1 "domain del of an unknown domain" "unknown domain client.example" \
	ctl domain del client.example

# ---- the queue without mail ----
expect 0 "queue lists an empty domain" "^example\.org +0 +0 +- +- +never +-$" ctl queue
if head -1 "$T/out" | grep -Eq '^DOMAIN +MSGS +SIZE +OLDEST +NEXT-EXPIRY +LAST-PICKUP +FLUSH$'; then
	ok "queue header line"
else
	not_ok "queue header line"; show_file "$T/out"
fi
expect 0 "queue --json of empty domains" "" ctl queue --json
json "queue --json lists empty domains" '
assert d["schema"] == "odmrctl.queue/1"
q = {x["domain"]: x for x in d["domains"]}
assert set(q) == {"example.org", "example.com"}
assert q["example.org"]["messages"] == 0 and q["example.org"]["oldest"] is None
assert q["example.org"]["flush"] is None'
expect 0 "queue DOMAIN without mail" "^ID +ARRIVAL +SIZE +SENDER +RCPTS +ATTEMPTS +LAST-ERROR$" \
	ctl queue example.org
expect 1 "queue of an unknown domain" "unknown domain nowhere.example" \
	ctl queue nowhere.example
expect 1 "show of an unknown id" "no message 00000000000BAD" ctl show 00000000000BAD
expect 1 "delete --domain without mail" "no messages to delete in domain example.org" \
	ctl delete --domain example.org
expect 1 "hold --domain of an unknown domain" "unknown domain nowhere.example" \
	ctl hold --domain nowhere.example

# ---- messages from queue-writer ----
# seed 7: three messages for example.org; seed 9: two for both domains
if "$QW" -s "$S" -d example.org -n 3 -z 3000 -S 7 -a "$T/ack1" 2>"$T/err" &&
    "$QW" -s "$S" -d example.org -d example.com -n 2 -z 1500 -S 9 \
    -a "$T/ack2" 2>>"$T/err"; then
	ok "queue-writer enqueued 5 messages"
else
	not_ok "queue-writer enqueued 5 messages"; show_file "$T/err"
	tap_done
fi
A0=$(ack_field "$T/ack1" 0); A1=$(ack_field "$T/ack1" 1); A2=$(ack_field "$T/ack1" 2)
B0=$(ack_field "$T/ack2" 0); B1=$(ack_field "$T/ack2" 1)
diag "ids: $A0 $A1 $A2 / $B0 $B1"

expect 0 "queue counts" "^example\.org +5 +12K +[0-9]+s ago +in (5d00h|4d23h) +never +-$" ctl queue
if grep -Eq '^example\.com +2 +2\.9K .* in (2d00h|1d23h) +never +-$' "$T/out"; then
	ok "queue: the second domain and its own lifetime"
else
	not_ok "queue: the second domain and its own lifetime"; show_file "$T/out"
fi
expect 0 "queue --json with mail" "" ctl --json queue
json "queue --json counts" '
q = {x["domain"]: x for x in d["domains"]}
assert q["example.org"]["messages"] == 5
assert q["example.org"]["bytes"] == 3 * 3000 + 2 * 1500
assert q["example.com"]["messages"] == 2 and q["example.com"]["bytes"] == 3000
o = q["example.org"]
assert o["oldest"] <= d["now"] and o["next_expiry"] == o["oldest"] + 5 * 86400
assert q["example.com"]["next_expiry"] - q["example.com"]["oldest"] == 2 * 86400'
expect 0 "queue DOMAIN" "^$A0 +[0-9]+s ago +2\.9K +sender@example\.net +user0@example\.org +0 +-$" \
	ctl queue example.org
if [ "$(grep -c '@example\.org' "$T/out")" -eq 5 ] && ! grep -q 'example\.com' "$T/out"; then
	ok "queue DOMAIN shows only that domain's recipients"
else
	not_ok "queue DOMAIN shows only that domain's recipients"; show_file "$T/out"
fi
expect 0 "queue of the second domain" "^$B0 .* user0@example\.com " ctl queue example.com
if [ "$(wc -l <"$T/out")" -eq 3 ] && ! grep -q 'example\.org' "$T/out"; then
	ok "queue example.com: two messages, its recipients only"
else
	not_ok "queue example.com: two messages, its recipients only"; show_file "$T/out"
fi
expect 0 "queue DOMAIN --json" "" ctl queue example.com --json
json "queue DOMAIN --json" "
assert d['schema'] == 'odmrctl.queue.domain/1' and d['domain'] == 'example.com'
m = d['messages']
assert [x['id'] for x in m] == ['$B0', '$B1'], m
for x in m:
    assert x['sender'] == 'sender@example.net' and x['size'] == 1500
    assert [r['address'] for r in x['recipients']] == ['user%d@example.com' % m.index(x)]
    assert x['recipients'][0]['state'] == 'queued' and x['held'] is False
    assert x['attempts'] == 0 and x['last_error'] is None"

expect 0 "show ID" "^sender: +sender@example\.net$" ctl show "$A1"
if grep -Eq "^id: +$A1$" "$T/out" && grep -Eq '^size: +2\.9K \(3000 bytes\)$' "$T/out" &&
    grep -Eq '^recipient: +user1@example\.org$' "$T/out" &&
    grep -Eq '^  state: +queued$' "$T/out" && grep -Eq '^body: +7BIT$' "$T/out"; then
	ok "show ID: envelope and recipient"
else
	not_ok "show ID: envelope and recipient"; show_file "$T/out"
fi
"$QW" --body 7 1 3000 >"$T/body-a1"
"$CTL" -f "$T/odmrd.conf" show "$A1" --raw >"$T/raw-a1"
check "show --raw is the stored message byte for byte" cmp -s "$T/raw-a1" "$T/body-a1"
"$CTL" -f "$T/odmrd.conf" show "$A1" --headers >"$T/hdr-a1"
"$CTL" -f "$T/odmrd.conf" show "$A1" --body >"$T/bdy-a1"
{ cat "$T/hdr-a1"; printf '\r\n'; cat "$T/bdy-a1"; } >"$T/join-a1"
check "show --headers, empty line, show --body make the raw message" \
	cmp -s "$T/join-a1" "$T/body-a1"
if grep -q '^Message-ID:' "$T/hdr-a1" && ! grep -q '^Message-ID:' "$T/bdy-a1" &&
    [ -s "$T/bdy-a1" ]; then
	ok "show --headers and --body split at the first empty line"
else
	not_ok "show --headers and --body split at the first empty line"
fi
expect 0 "show --json --raw" "" ctl --json show "$B1" --raw
"$QW" --body 9 1 1500 >"$T/body-b1"
json "show --json --raw: envelope and content_base64" "
import base64
assert d['schema'] == 'odmrctl.show/1' and d['content'] == 'raw'
m = d['message']
assert m['id'] == '$B1' and m['size'] == 1500 and m['sender'] == 'sender@example.net'
assert m['ret'] == 'default' and m['body'] == '7BIT' and m['smtputf8'] is False
r = m['recipients']
assert [(x['address'], x['domain']) for x in r] == [
    ('user1@example.org', 'example.org'), ('user1@example.com', 'example.com')], r
assert r[0]['state'] == 'queued' and r[0]['last_attempt'] is None and r[0]['notify'] is None
assert base64.b64decode(d['content_base64']) == open('$T/body-b1', 'rb').read()"
expect 0 "show --json --body" "" ctl show "$B1" --body --json
json "show --json --body is the body" "
import base64
raw = open('$T/body-b1', 'rb').read()
assert d['content'] == 'body'
assert base64.b64decode(d['content_base64']) == raw[raw.index(b'\r\n\r\n') + 4:]"
expect 0 "show --json without content" "" ctl show "$B1" --json
json "show --json without content has no content_base64" "
assert d['content'] == 'none' and 'content_base64' not in d"

# ---- hold, release, delete by id ----
expect 0 "hold ID" "$A0 held" ctl hold "$A0"
expect 0 "queue DOMAIN marks held mail" "^$A0 .*user0@example\.org \(held\)" ctl queue example.org
expect 0 "show --json after hold" "" ctl --json show "$A0"
json "hold sets the recipient state" "
assert d['message']['recipients'][0]['state'] == 'held'"
expect 1 "hold of a held message" "message $A0 is already held" ctl hold "$A0"
expect 0 "release ID" "$A0 released" ctl release "$A0"
expect 1 "release of a message that is not held" "message $A0 is not held" \
	ctl release "$A0"
expect 1 "release of an unknown id" "no message 00000000000BAD" \
	ctl release 00000000000BAD
expect 1 "delete of several ids, one unknown" "no message 00000000000BAD" \
	ctl delete "$A1" 00000000000BAD "$A2"
if grep -q "^$A1 deleted" "$T/out" && grep -q "^$A2 deleted" "$T/out"; then
	ok "the known ids were deleted all the same"
else
	not_ok "the known ids were deleted all the same"; show_file "$T/out"
fi
expect 1 "show of a deleted message" "no message $A1" ctl show "$A1"
expect 0 "queue after delete" "^example\.org +3 " ctl queue

# ---- a two-domain message, one domain at a time ----
expect 0 "delete ID --domain" "$B0 deleted in example\.org" \
	ctl delete "$B0" --domain example.org
expect 0 "queue example.org after delete in it" "" ctl queue example.org
if ! grep -q "^$B0 " "$T/out"; then
	ok "the message left example.org"
else
	not_ok "the message left example.org"; show_file "$T/out"
fi
expect 0 "the message still shows in example.com" "^$B0 .*user0@example\.com " \
	ctl queue example.com
expect 0 "show of the half-deleted message" "" ctl --json show "$B0"
json "only the example.com recipient is live" "
live = [r['domain'] for r in d['message']['recipients'] if r['state'] in ('queued', 'held')]
assert live == ['example.com'], d['message']['recipients']"
expect 1 "hold ID --domain where it has no recipient" \
	"message $B0 has no recipient in domain example\.org" \
	ctl hold "$B0" --domain example.org

# ---- hold, release, delete by domain ----
expect 0 "hold --domain" "example\.com: 2 messages held" ctl hold --domain example.com
expect 0 "queue example.com: all held" "" ctl --json queue example.com
json "hold --domain held every message" "
assert all(x['held'] for x in d['messages']) and len(d['messages']) == 2"
expect 0 "example.org mail of a two-domain message is not held" "" \
	ctl --json show "$B1"
json "hold --domain acts on that domain's recipients only" "
s = {r['domain']: r['state'] for r in d['message']['recipients']}
assert s == {'example.org': 'queued', 'example.com': 'held'}, s"
expect 0 "release --domain" "example\.com: 2 messages released" \
	ctl release --domain example.com
expect 1 "release --domain with nothing held" \
	"no messages to release in domain example\.com" ctl release --domain example.com
expect 0 "delete --domain" "example\.com: 2 messages deleted" \
	ctl delete --domain example.com
expect 0 "queue after delete --domain" "^example\.com +0 +0 " ctl queue
expect 0 "the other domain keeps its part of B1" "^$B1 " ctl queue example.org

# ---- domain del with mail ----
expect 2 "domain del of a domain with mail" \
	"domain example\.org still holds 2 messages; use --force" \
	ctl domain del example.org
expect 0 "the domain is still there" "^messages: +2$" ctl domain show example.org
expect 0 "domain del --force" "domain example\.org deleted" \
	ctl domain del example.org --force
expect 1 "domain show after del --force" "unknown domain example\.org" \
	ctl domain show example.org
expect 1 "its mail went with it" "no message $A0" ctl show "$A0"

# ---- stats and check ----
expect 0 "stats" "^domains: +1$" ctl stats
expect 0 "stats --json" "" ctl stats --json
json "stats --json" '
assert d["schema"] == "odmrctl.stats/1"
assert d["domains"] == 1 and d["messages"] == 0
assert d["counters"]["enqueued"] == 5
assert d["backend"]["name"] == "bdb"
for k in ("delivered", "failed", "deferred", "deleted"):
    assert isinstance(d["counters"][k], int)'
expect 0 "check" "store is consistent" ctl check
expect 0 "check --json" "" ctl --json check
json "check --json" '
assert d["schema"] == "odmrctl.check/1"
assert d["ok"] is True and d["count"] == 0 and d["problems"] == []'

# ---- reads while another process writes ----
"$QW" -s "$S" -d example.com -n 90 -z 1000 -S 11 -a "$T/ack3" 2>"$T/qw-err" &
qw_pid=$!
fails=0; rounds=0
while kill -0 "$qw_pid" 2>/dev/null && [ "$rounds" -lt 200 ]; do
	"$CTL" -f "$T/odmrd.conf" --json queue example.com >"$T/out" 2>>"$T/err-conc" ||
	    fails=$((fails + 1))
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/out" 2>/dev/null ||
	    fails=$((fails + 1))
	rounds=$((rounds + 1))
done
wait "$qw_pid"
qw_rc=$?
if [ "$fails" -eq 0 ] && [ "$qw_rc" -eq 0 ]; then
	ok "queue DOMAIN while queue-writer writes ($rounds reads)"
else
	not_ok "queue DOMAIN while queue-writer writes ($fails failures, writer exit $qw_rc)"
	[ -f "$T/err-conc" ] && show_file "$T/err-conc"
fi
expect 0 "queue after the concurrent writer" "^example\.com +90 " ctl queue

# ---- a corrupt store ----
C=$T/corrupt
mkdir "$C"
printf 'state_dir = %s\n' "$C" >"$T/corrupt.conf"
if "$CTL" -f "$T/corrupt.conf" domain add corrupt.example --owner a >/dev/null 2>&1 &&
    "$QW" -s "$C" -d corrupt.example -n 2 -z 1000 2>/dev/null; then
	for f in "$C"/queue/*.db; do
		n=$(wc -c <"$f")
		head -c "$n" /dev/urandom >"$f"
	done
	ok "made a store and wrote garbage over its databases"
else
	not_ok "made a store and wrote garbage over its databases"
fi
for cmd in "queue" "queue corrupt.example" "domain list" "domain show corrupt.example" \
    "stats" "check" "--json queue"; do
	# shellcheck disable=SC2086
	expect 3 "corrupt store: $cmd" "^odmrctl: " "$CTL" -f "$T/corrupt.conf" $cmd
	if grep -q 'Sanitizer' "$T/err"; then
		not_ok "corrupt store: $cmd crashed"
	fi
done

tap_done
