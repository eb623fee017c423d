#!/bin/sh
# scripts/fuzz.sh - run lamina's libFuzzer harnesses (tests/fuzz/) for longer
# than the CI test does, one after the other.
#
#   scripts/fuzz.sh [SECONDS] [NAME...]
#
# SECONDS per harness (default 300); NAMEs from: gguf tokenizer tokload
# jinja reply grammar ini request manifest (default: all).  The harnesses
# are built first in the build directory $FUZZ_BUILD (default ./build;
# configure it once), or taken as they are from $FUZZ_BIN when set.  New
# interesting inputs go to a scratch corpus, $FUZZ_WORK/NAME (default
# work/ beside the harnesses, e.g. build/tests/fuzz/work), never to the
# committed seeds (tests/fuzz/corpus);
# crashing inputs to $FUZZ_WORK/NAME-crash-* and friends.  A crash
# found is fixed, then its input is kept in tests/fuzz/regress/NAME/.
# Extra libFuzzer flags: FUZZ_FLAGS (e.g. "-jobs=2 -workers=2").
# To add to the committed seeds what a long run found (keeping them few):
#   build/tests/fuzz/fuzz_NAME -merge=1 tests/fuzz/corpus/NAME build/tests/fuzz/work/NAME
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-300}
[ $# -gt 0 ] && shift
NAMES=${*:-"gguf tokenizer tokload jinja reply grammar ini request manifest"}
if [ -z "${FUZZ_BIN:-}" ]; then
    BUILD=${FUZZ_BUILD:-$ROOT/build}
    [ -f "$BUILD/tests/Makefile" ] || { echo "fuzz.sh: configure $BUILD first (or set FUZZ_BUILD/FUZZ_BIN)" >&2; exit 2; }
    make -C "$BUILD/tests" -j"$(nproc 2>/dev/null || echo 2)" fuzz-build >/dev/null
    FUZZ_BIN=$BUILD/tests/fuzz
fi
WORK=${FUZZ_WORK:-$FUZZ_BIN/work}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
for n in $NAMES; do
    bin=$FUZZ_BIN/fuzz_$n
    [ -x "$bin" ] || { echo "fuzz.sh: no harness $bin" >&2; exit 2; }
    case $n in gguf|jinja) len=8192 ;; tokload) len=16384 ;; *) len=4096 ;; esac
    mkdir -p "$WORK/$n"
    dirs="$WORK/$n $ROOT/tests/fuzz/corpus/$n"
    [ -d "$ROOT/tests/fuzz/regress/$n" ] && dirs="$dirs $ROOT/tests/fuzz/regress/$n"
    echo "==> fuzz_$n for $SECS s (scratch corpus $WORK/$n)"
    # shellcheck disable=SC2086
    if "$bin" -max_total_time="$SECS" -timeout=20 -rss_limit_mb=4096 -max_len="$len" -print_final_stats=1 \
            -artifact_prefix="$WORK/$n-" ${FUZZ_FLAGS:-} $dirs > "$WORK/$n.log" 2>&1; then
        echo "    $(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$n.log" | tail -1) execs, no findings"
    else
        status=1
        echo "    FINDING (log: $WORK/$n.log):"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$WORK/$n.log" | head -5 | sed 's/^/    /'
        ls "$WORK/$n"-crash-* "$WORK/$n"-leak-* "$WORK/$n"-timeout-* "$WORK/$n"-oom-* 2>/dev/null | sed 's/^/    input: /'
    fi
done
exit $status
