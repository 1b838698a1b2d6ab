#!/bin/sh
# NAME
#	test-smtp-dialogues - malformed, edge-case and out-of-order SMTP
#	dialogues and relay tricks against the real odmrd MX listener
# DESCRIPTION
#	Plays every tests/integration/dialogues/NAME.in with
#	tests/tools/smtp-dialogue.py and compares the reply codes with
#	NAME.ref: one TAP line per dialogue, named after the file. The
#	customer domains are example.org, sub.example.net (with its
#	subdomains) and plain.example.com (without).
#
#	Then every line of dialogues/relay-tricks.txt becomes its own
#	EHLO / MAIL / RCPT / QUIT dialogue, one TAP line each: no relay
#	trick may get a 2xx, and the controls must.
#
#	Dialogues named hangup-* and halfclose-* leave a transaction
#	unfinished; the store's message count must not move. After
#	data-dot-stuffing the stored body must be unstuffed.
#
#	odmrd must still be alive at the end, answer a fresh EHLO, exit 0
#	on SIGTERM and log no sanitizer report. It is then restarted with
#	max_message_size = 10k and max_recipients = 3 for the dialogues in
#	dialogues/limits/, with the same checks.
#
#	DIALOGUE=GLOB runs only the dialogues whose name matches GLOB.
#	On a mismatch the diff and the end of the conversation are shown
#	as TAP comments, and a "# MISMATCH name: want ...; got ..." line.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/integration/odmrd-lib.sh"

DLG="$top_srcdir/tests/tools/smtp-dialogue.py"
DIR="$top_srcdir/tests/integration/dialogues"
: "${DIALOGUE:=*}"

odmrd_setup
for _d in "example.org" "sub.example.net --subdomains" "plain.example.com"; do
	# shellcheck disable=SC2086
	if ! octl domain add $_d --owner demo >"$T/octl.out" 2>&1; then
		not_ok "odmrctl domain add $_d"
		sed 's/^/#   /' "$T/octl.out"
		tap_done
	fi
done

# dialogue FILE.in [NAME] - play FILE.in into $T/out, the transcript in $T/err
dialogue() {
	python3 "$DLG" 127.0.0.1 "$SMTP_PORT" "$1" >"$T/out" 2>"$T/err"
}

# show_mismatch NAME REF - explain a transcript that differs from REF
show_mismatch() {
	diag "MISMATCH $1: want $(tr '\n' ',' <"$2"); got $(tr '\n' ',' <"$T/out")"
	diff -u "$2" "$T/out" | sed 's/^/#   /'
	tail -n 25 "$T/err" | cut -c1-200 | sed 's/^/#   /'
}

# msg_count - the number of messages in the store, or "?"
msg_count() {
	octl --json stats 2>/dev/null | python3 -c '
import json, sys
try:
	print(json.load(sys.stdin)["messages"])
except Exception:
	print("?")'
}

# run_dir DIR - play every DIR/*.in against its .ref
run_dir() {
	for _in in "$1"/*.in; do
		_name=$(basename "$_in" .in)
		# shellcheck disable=SC2254
		case $_name in $DIALOGUE) ;; *) continue ;; esac
		_ref="${_in%.in}.ref"
		case $_name in
		hangup-*|halfclose-*) _before=$(msg_count) ;;
		esac
		dialogue "$_in"
		_rc=$?
		if [ $_rc -ne 0 ]; then
			not_ok "$_name (smtp-dialogue.py exit $_rc)"
			tail -n 5 "$T/err" | sed 's/^/#   /'
		elif cmp -s "$_ref" "$T/out"; then
			ok "$_name"
		else
			not_ok "$_name"
			show_mismatch "$_name" "$_ref"
		fi
		case $_name in
		hangup-*|halfclose-*)
			# until odmrd has ended the session the client left
			wait_until 20 odmrd_sessions_over ||
			    diag "$_name: odmrd has not ended the session in 20 s"
			_after=$(msg_count)
			if [ "$_before" != "?" ] && [ "$_before" = "$_after" ]; then
				ok "$_name: nothing queued ($_after messages)"
			else
				not_ok "$_name: nothing queued (messages $_before -> $_after)"
			fi ;;
		data-dot-stuffing)
			check_unstuffed ;;
		esac
	done
}

# check_unstuffed - the body of the data-dot-stuffing message, as stored
check_unstuffed() {
	_id=$(sed -n 's/.*queued as \([A-Za-z0-9._-]*\).*/\1/p' "$T/err" | head -n 1)
	printf '.leading dot\n..two dots\n.\nend\n' >"$T/want"
	if [ -n "$_id" ] && octl show "$_id" --body >"$T/body" 2>"$T/body.err" &&
	    tr -d '\r' <"$T/body" | cmp -s "$T/want" -; then
		ok "data-dot-stuffing: the stored body is unstuffed"
	else
		not_ok "data-dot-stuffing: the stored body is unstuffed (id '$_id')"
		sed 's/^/#   /' "$T/body" "$T/body.err" 2>/dev/null | head -n 10
	fi
}

# run_relay_tricks FILE - one MAIL/RCPT dialogue per line of FILE
run_relay_tricks() {
	_n=0
	while IFS= read -r _line; do
		case $_line in ''|'#'*) continue ;; esac
		_n=$((_n + 1))
		_want=${_line%% *}
		_arg=${_line#* }
		# tap.sh prints with echo, which may read backslash escapes
		_label=$(printf '%s' "$_arg" | sed 's/\\/(backslash)/g')
		{
			echo "EHLO client.test"
			echo "MAIL FROM:<s@sender.test>"
			printf 'RCPT TO:%s\n' "$_arg"
			echo "QUIT"
		} >"$T/relay.in"
		dialogue "$T/relay.in"
		_got=$(sed -n 4p "$T/out")
		_tail=$(sed -n '1,3p;5,$p' "$T/out" | tr '\n' ',')
		_ok=no
		_oldifs=$IFS
		IFS='|'
		for _alt in $_want; do
			[ "$_got" = "$(echo "$_alt" | tr / ' ')" ] && _ok=yes
		done
		IFS=$_oldifs
		# the 20-error limit and a line refused before parsing may
		# end the session differently; the RCPT reply is what counts,
		# but the session must be the normal one around it
		[ "$_tail" = "220,250,250 2.1.0,221 2.0.0,[closed]," ] || _ok=no
		if [ $_ok = yes ]; then
			ok "relay: RCPT TO:$_label -> $_got"
		else
			not_ok "relay: RCPT TO:$_label -> want $_want"
			diag "MISMATCH relay RCPT TO:$_label: want $_want; got $(tr '\n' ',' <"$T/out")"
			grep -a '^S: 5[0-9][0-9] \|^S: 2[0-9][0-9] ' "$T/err" | sed -n 4p | sed 's/^/#   /'
		fi
	done <"$1"
	[ $_n -ge 25 ] || not_ok "relay-tricks.txt has only $_n cases"
}

# alive_check WHAT - odmrd runs and answers a fresh EHLO
alive_check() {
	printf 'EHLO fresh.client.test\nQUIT\n' >"$T/alive.in"
	if [ -n "$odmrd_pid" ] && kill -0 "$odmrd_pid" 2>/dev/null &&
	    dialogue "$T/alive.in" &&
	    [ "$(tr '\n' ,<"$T/out")" = "220,250,221 2.0.0,[closed]," ]; then
		ok "$1: odmrd is alive and answers a fresh EHLO"
	else
		not_ok "$1: odmrd is alive and answers a fresh EHLO"
		tail -n 20 "$(odmrd_log)" | sed 's/^/#   /'
	fi
}

# stop_check WHAT - SIGTERM exits 0 and the log has no sanitizer report
stop_check() {
	if odmrd_stop; then
		ok "$1: odmrd exits 0 on SIGTERM"
	else
		not_ok "$1: odmrd exits 0 on SIGTERM (exit $?)"
	fi
	if grep -E 'AddressSanitizer|LeakSanitizer|runtime error' "$(odmrd_log)" \
	    >"$T/san" 2>&1; then
		not_ok "$1: no sanitizer report in the log"
		head -n 20 "$T/san" | sed 's/^/#   /'
		grep -A 30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error' \
		    "$(odmrd_log)" | head -n 60 | sed 's/^/#   /'
	else
		ok "$1: no sanitizer report in the log"
	fi
}

# ---- the default configuration ----
if ! odmrd_start; then
	not_ok "odmrd starts"
	tap_done
fi
run_dir "$DIR"
[ "$DIALOGUE" = "*" ] && run_relay_tricks "$DIR/relay-tricks.txt"
alive_check "default limits"
stop_check "default limits"

# ---- max_message_size = 10k, max_recipients = 3 ----
odmrd_conf max_message_size 10k
odmrd_conf max_recipients 3
if ! odmrd_start; then
	not_ok "odmrd starts with max_message_size = 10k, max_recipients = 3"
	tap_done
fi
run_dir "$DIR/limits"
alive_check "small limits"
stop_check "small limits"

tap_done
