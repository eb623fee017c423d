#!/bin/sh
# tests/fuzz/fuzz.sh - the libFuzzer harnesses of tests/fuzz/ (see
# tests/fuzz.am) built with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer, each run for FUZZ_CI_SECONDS (default 12)
# from its committed seeds (corpus/NAME/) and regression inputs
# (regress/NAME/), after replaying every regression input once.  One TAP
# line per harness with its executions; a finding fails it and prints the
# sanitizer report and the input.  Without clang's libFuzzer the test is
# skipped, or fails under CI=true.  FUZZ_CI_HARNESSES narrows the set.
# Longer runs: scripts/fuzz.sh.
. "${top_srcdir:-.}/tests/lib.sh"

SECS=${FUZZ_CI_SECONDS:-12}
NAMES=${FUZZ_CI_HARNESSES:-"gguf tokenizer tokload jinja reply grammar ini request manifest"}
SRC=$S/tests/fuzz
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lamina-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
export TMPDIR="$TMP"   # fuzz_manifest's store, removed even after a crash

no_fuzzer() {
    if [ "${CI:-}" = true ]; then not_ok "clang with libFuzzer is needed under CI: $1"
    else skip "clang with libFuzzer unavailable: $1"; fi
    done_testing; exit $?
}

command -v clang >/dev/null 2>&1 || no_fuzzer "no clang (setup.sh installs it)"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$TMP/probe.c"
clang -fsanitize=fuzzer,address,undefined "$TMP/probe.c" -o "$TMP/probe" > "$TMP/probe.log" 2>&1 ||
    no_fuzzer "clang -fsanitize=fuzzer does not link ($(head -1 "$TMP/probe.log"))"

t0=$(date +%s)
if ${MAKE:-make} -C "$B/tests" -j2 fuzz-build > "$TMP/build.log" 2>&1; then
    diag "harnesses built in $(( $(date +%s) - t0 )) s"
else
    not_ok "build the harnesses (make -C tests fuzz-build)"
    tail -30 "$TMP/build.log" | sed 's/^/#   /'
    done_testing; exit 1
fi

# max_len per harness: GGUF inputs need room for a header and a vocabulary
max_len() {
    case $1 in gguf|jinja) echo 8192 ;; tokload) echo 16384 ;; *) echo 4096 ;; esac
}

# show the sanitizer report and the input of a finding
report() {
    grep -E '^(==[0-9]+==ERROR|SUMMARY|    #[0-9] |.*runtime error|fuzz_[a-z]+: )' "$1" | head -25 | sed 's/^/#   /'
    for a in "$TMP/$2"-crash-* "$TMP/$2"-leak-* "$TMP/$2"-timeout-* "$TMP/$2"-oom-*; do
        [ -f "$a" ] || continue
        diag "input $(basename "$a") ($(wc -c < "$a") bytes, base64):"
        base64 "$a" | head -40 | sed 's/^/#   /'
    done
}

for n in $NAMES; do
    bin=$B/tests/fuzz/fuzz_$n
    if [ ! -x "$bin" ]; then not_ok "fuzz_$n: not built"; continue; fi
    reg=$SRC/regress/$n
    nreg=0
    if [ -d "$reg" ]; then nreg=$(find "$reg" -type f | wc -l); fi
    if [ "$nreg" -gt 0 ]; then
        # a plain replay: each regression input once
        if ! find "$reg" -type f -print0 | xargs -0 "$bin" -artifact_prefix="$TMP/$n-" > "$TMP/$n-replay.log" 2>&1; then
            not_ok "fuzz_$n: a regression input fails again"
            report "$TMP/$n-replay.log" "$n"
            continue
        fi
    fi
    mkdir -p "$TMP/corpus-$n"
    dirs="$TMP/corpus-$n $SRC/corpus/$n"
    [ "$nreg" -gt 0 ] && dirs="$dirs $reg"
    # shellcheck disable=SC2086
    if "$bin" -max_total_time="$SECS" -timeout=20 -rss_limit_mb=2048 -max_len="$(max_len "$n")" \
            -print_final_stats=1 -artifact_prefix="$TMP/$n-" $dirs > "$TMP/$n.log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$TMP/$n.log" | tail -1)
        cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$TMP/$n.log" | sed -n 's/.*cov: \([0-9]*\).*/\1/p' | tail -1)
        ok "fuzz_$n: ${execs:-?} execs in ${SECS} s (cov ${cov:-?}, $nreg regression inputs), no findings"
    else
        not_ok "fuzz_$n: a finding"
        report "$TMP/$n.log" "$n"
    fi
done
done_testing
