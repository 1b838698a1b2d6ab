# tests/integration/postfix-lib.sh - a private Postfix instance for one
# test script.
#
# Source it after tests/tap.sh; it needs root. One instance lives in one
# directory DIR of the test's own, never /etc/postfix: DIR/conf holds
# main.cf and master.cf, DIR/queue and DIR/data are its queue and data
# directories, DIR/maillog is its log. It listens on 127.0.0.1:PORT
# only, relays for 127.0.0.0/8 and delivers nothing locally. This is the
# benchmark's recipe (BENCHMARKS.md, "a private instance on loopback").
# Postfix's daemons run as the postfix user: the directories above DIR
# must let them through (chmod 711 "$T").
#
#	postfix_setup DIR PORT	make DIR/{conf,queue,data}, main.cf with the
#				settings every instance shares and master.cf
#				in full, with smtpd on 127.0.0.1:PORT; a
#				missing Postfix fails (Debian package postfix)
#	postfix_conf DIR 'KEY = VALUE'...
#				add or replace main.cf settings (postconf -e)
#	postfix_start DIR	postfix check and start, then wait until PORT
#				listens (15 s); returns 1 on any failure
#	postfix_stop DIR	postfix stop, quietly
#	postfix_held DIR	how many messages DIR's hold queue has
#	postfix_wait_held DIR N [S]
#				until the hold queue has N messages (20 s):
#				wait for cleanup to file what smtpd took,
#				never sleep a second and hope
#
# What setup, conf and start say goes to DIR/start.log: quote it when
# postfix_start fails.

# postfix_setup DIR PORT - directories, main.cf and master.cf
postfix_setup() {
	require_cmd postfix postfix
	require_cmd postconf postfix
	require_cmd python3 python3
	mkdir -p "$1/conf" "$1/queue" "$1/data" || return 1
	: >"$1/start.log"
	chown postfix:postfix "$1/data" >>"$1/start.log" 2>&1 || return 1
	cat >"$1/conf/main.cf" <<EOF
# written by tests/integration/postfix-lib.sh; postfix_conf adds the rest
compatibility_level = 3.6
config_directory = $1/conf
queue_directory = $1/queue
data_directory = $1/data
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = $1/maillog
maillog_file_prefixes = /var, /dev/stdout, /tmp, $1
EOF
	# in full: a service line deleted from Debian's master.cf leaves its
	# continuation lines to the service before it, and Postfix hangs.
	# tlsmgr is there for the instances whose smtp client uses STARTTLS.
	cat >"$1/conf/master.cf" <<EOF
# written by tests/integration/postfix-lib.sh
127.0.0.1:$2 inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# postfix_conf DIR 'KEY = VALUE'... - add or replace main.cf settings
postfix_conf() {
	_pf=$1; shift
	postconf -c "$_pf/conf" -e "$@" >>"$_pf/start.log" 2>&1
}

# postfix_start DIR - check, start, and wait until smtpd listens
postfix_start() {
	_pf_port=$(sed -n 's/^127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$1/conf/master.cf")
	postfix -c "$1/conf" check >>"$1/start.log" 2>&1 &&
	    postfix -c "$1/conf" start >>"$1/start.log" 2>&1 || return 1
	_pf_end=$(($(date +%s) + 15))
	until python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$_pf_port" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$_pf_end" ]; then
			echo "nothing listens on 127.0.0.1:$_pf_port 15 s after postfix start" >>"$1/start.log"
			return 1
		fi
		sleep 0.1
	done
}

# postfix_stop DIR - stop the instance; quiet when it is not running
postfix_stop() {
	postfix -c "$1/conf" stop >/dev/null 2>&1
}

# postfix_held DIR - the number of messages in the instance's hold queue
postfix_held() {
	postqueue -c "$1/conf" -j 2>/dev/null | grep -c '"queue_name": *"hold"'
}

# postfix_held_ge DIR N - the hold queue has at least N messages
postfix_held_ge() {
	[ "$(postfix_held "$1")" -ge "$2" ]
}

# postfix_wait_held DIR N [SECONDS] - until the instance holds at least N
# messages; 1 after SECONDS (20)
postfix_wait_held() {
	wait_until "${3:-20}" postfix_held_ge "$1" "$2"
}
