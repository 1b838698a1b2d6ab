# bench/lib.sh - where a benchmark may keep its files (sourced by bench/*.sh)
#
#	bench_workdir NAME	make and print a scratch directory NAME.XXXXXX
#				under $parent (--dir), or else on the source
#				tree's disk outside tmpfs: fsync on tmpfs
#				measures nothing. Exits 2 when there is none.
# Needs $srcdir and $builddir; $parent may be empty.

# device DIR - the filesystem device DIR lives on
device() {
	df -P "$1" | awk 'NR == 2 { print $1 }'
}

# fstype DIR - the filesystem type of DIR
fstype() {
	stat -f -c %T "$1"
}

# pick_parent - a directory on the source tree's disk that is not tmpfs
pick_parent() {
	_want=$(device "$srcdir")
	for _d in "${TMPDIR:-/tmp}" /var/tmp "$builddir"; do
		[ -d "$_d" ] && [ -w "$_d" ] || continue
		[ "$(fstype "$_d")" = tmpfs ] && continue
		[ "$(device "$_d")" = "$_want" ] || continue
		(cd "$_d" && pwd)
		return 0
	done
	return 1
}

# bench_workdir NAME - the scratch directory, on a real disk
bench_workdir() {
	if [ -z "$parent" ]; then
		if ! parent=$(pick_parent); then
			echo "$(basename "$0"): no writable directory on $(device "$srcdir") outside tmpfs: use --dir" >&2
			exit 2
		fi
	fi
	if [ "$(fstype "$parent")" = tmpfs ]; then
		echo "$(basename "$0"): $parent is tmpfs: fsync there measures nothing; use --dir" >&2
		exit 2
	fi
	mktemp -d "$parent/$1.XXXXXX" || exit 3
}
