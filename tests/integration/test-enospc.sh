#!/bin/sh
# NAME
#	test-enospc - a full disk is an error, never a damaged store
# DESCRIPTION
#	Puts a store on a small tmpfs, fills the file system, and enqueues
#	until the store refuses. The refusal must be a clean error naming
#	the full store (not a crash); every message acknowledged before it
#	must still be there byte for byte; odmrctl check must be clean; and
#	once space is freed, enqueueing works again.
. "$top_srcdir/tests/tap.sh"
require_cmd mount mount
require_cmd fallocate util-linux

ctl="$top_builddir/odmr/odmrctl"
qw="$top_builddir/tests/tools/queue-writer"
T=$(mktemp -d /tmp/test-enospc.XXXXXX)
mnt="$T/mnt"
state="$mnt/state"
conf="$T/odmrd.conf"
mkdir -p "$mnt"

cleanup() {
	umount "$mnt" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

if ! mount -t tmpfs -o size=48m tmpfs "$mnt" 2>"$T/mount.err"; then
	not_ok "cannot mount a tmpfs for the full-disk test (run as root): $(cat "$T/mount.err")"
	tap_done
fi
ok "mounted a 48 MiB tmpfs"

mkdir -p "$state/queue"
# a small cache and small log files so the store fits the small disk
cat >"$state/queue/DB_CONFIG" <<'CFG'
set_cachesize 0 4194304 1
set_lg_bsize 262144
set_lg_max 2097152
CFG
printf 'state_dir = %s\n' "$state" >"$conf"
check "domain add on the small disk" \
    "$ctl" -f "$conf" domain add full.example --owner t

# leave about 6 MiB free
avail=$(df -k --output=avail "$mnt" | tail -n 1)
fill=$(( (avail - 6 * 1024) ))
fallocate -l "${fill}k" "$mnt/filler" 2>/dev/null ||
    dd if=/dev/zero of="$mnt/filler" bs=1k count="$fill" 2>/dev/null
diag "free after filling: $(df -k --output=avail "$mnt" | tail -n 1) KiB"

"$qw" -s "$state" -d full.example -n 200 -z 256k -a "$T/ack" \
    >"$T/qw.out" 2>"$T/qw.err"
rc=$?
acked=$(wc -l <"$T/ack" 2>/dev/null || echo 0)
diag "writer exit $rc after $acked acknowledged messages: $(tail -n 1 "$T/qw.err")"
if [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ]; then
	ok "the store refused a write on the full disk with a clean error (exit $rc)"
else
	not_ok "writer on the full disk: exit $rc (want a refusal, not success or a signal)"
fi
if grep -q 'store full' "$T/qw.err"; then
	ok "the refusal says the store is full"
else
	not_ok "the refusal does not say the store is full: $(cat "$T/qw.err")"
fi
if [ "$acked" -gt 0 ]; then
	ok "some messages were acknowledged before the disk filled ($acked)"
else
	not_ok "no message was acknowledged before the disk filled"
fi

rm -f "$mnt/filler"
check "every acknowledged message survived, byte for byte" \
    "$qw" -s "$state" --verify "$T/ack"
check "odmrctl check is clean after the full disk" \
    "$ctl" -f "$conf" check
check "enqueueing works again once space is free" \
    "$qw" -s "$state" -d full.example -n 3 -z 4k -i 100000
tap_done
