#!/bin/sh
# tests/fuzz/run-fuzz.sh - run every fuzz target over its corpus (TAP).
#
# For each target, "$top_builddir/tests/fuzz/<target>" is run over
# "$top_srcdir/tests/fuzz/corpus/<target>/". A libFuzzer build (configure
# --enable-fuzzer) fuzzes for a bounded time on a scratch copy of the
# corpus, so new inputs never land in the source tree; any other build is
# the fuzz-main.c replayer, which runs each seed once under the sanitizers.
# A missing binary or corpus is a failure that says what is missing.

: "${top_srcdir:?top_srcdir is not set}"
: "${top_builddir:?top_builddir is not set}"
. "$top_srcdir/tests/tap.sh"

FUZZ_TARGETS=${FUZZ_TARGETS:-"fuzz-conf fuzz-rec
    fuzz-smtp-cmd fuzz-smtp-addr fuzz-smtp-param fuzz-turn-mime
    fuzz-turn-dsn fuzz-smtp-session"}
FUZZ_TIME=${FUZZ_TIME:-20}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/run-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
trap 'exit 1' INT TERM

# is_libfuzzer BINARY - true when BINARY was linked with libFuzzer
is_libfuzzer() {
	grep -q LLVMFuzzerRunDriver "$1" 2>/dev/null
}

# show_tail FILE - the end of a log as TAP comments
show_tail() {
	tail -n 30 "$1" | sed 's/^/# /'
}

for t in $FUZZ_TARGETS; do
	bin="$top_builddir/tests/fuzz/$t"
	corpus="$top_srcdir/tests/fuzz/corpus/$t"
	log="$scratch/$t.log"
	if [ ! -x "$bin" ]; then
		not_ok "$t: fuzz target binary $bin is missing"
		continue
	fi
	if [ ! -d "$corpus" ]; then
		not_ok "$t: corpus directory $corpus is missing"
		continue
	fi
	if is_libfuzzer "$bin"; then
		work="$scratch/$t.corpus"
		mkdir -p "$work" && cp "$corpus"/* "$work"/ 2>/dev/null
		# A crashing input is kept next to the binary, not in $scratch.
		if (cd "$scratch" && "$bin" -max_total_time="$FUZZ_TIME" \
		    -timeout=5 -print_final_stats=1 \
		    -artifact_prefix="$top_builddir/tests/fuzz/$t-" \
		    "$work") >"$log" 2>&1; then
			runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
			    "$log")
			ok "$t: libFuzzer ran ${runs:-?} inputs in ${FUZZ_TIME}s"
		else
			show_tail "$log"
			not_ok "$t: libFuzzer found a failure (input saved as $top_builddir/tests/fuzz/$t-*)"
		fi
	else
		if "$bin" "$corpus" >"$log" 2>&1; then
			ok "$t: $(tail -n 1 "$log") from $corpus"
		else
			show_tail "$log"
			not_ok "$t: replay of $corpus failed"
		fi
	fi
done
tap_done
