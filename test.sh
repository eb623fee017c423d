#!/usr/bin/env bash
# test.sh - build from scratch with AddressSanitizer + UndefinedBehaviorSanitizer
# and warnings as errors, run the whole test suite, and print
# "N passed, N failed, N skipped".
#
# What the comparisons need is fetched first (system packages, the Python
# clients and the default model, through setup.sh --no-build), and required:
# a test that finds the model or the clients missing fails instead of
# skipping.  Skips are left for absent hardware or optional toolchains, and
# each says which.  LAMINA_REQUIRE_MODEL=0 / LAMINA_REQUIRE_CLIENTS=0 turn
# the requirement off (offline development).
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
export LAMINA_REQUIRE_MODEL=${LAMINA_REQUIRE_MODEL:-1} LAMINA_REQUIRE_CLIENTS=${LAMINA_REQUIRE_CLIENTS:-1}
if [ "$LAMINA_REQUIRE_MODEL" = 1 ]; then ./setup.sh --no-build || { echo "0 passed, 1 failed"; exit 1; }
else ./setup.sh --deps-only || { echo "0 passed, 1 failed"; exit 1; }; fi
export PATH="$ROOT/.venv/bin:$PATH"
# llama.cpp's tokenizer suite and chat templates, the specification of the
# tokenizer and template tests (fetched, never committed)
if LAMINA_LLAMA_TESTDATA=$(scripts/fetch-testdata.sh); then export LAMINA_LLAMA_TESTDATA
elif [ "$LAMINA_REQUIRE_CLIENTS" = 1 ]; then echo "0 passed, 1 failed"; exit 1; fi
[ -x configure ] || autoreconf -fi >/dev/null || exit 1
B=$ROOT/build-check
rm -rf "$B"; mkdir -p "$B"; cd "$B"
../configure --enable-sanitizers --enable-werror PYTHON="$ROOT/.venv/bin/python" >configure.out 2>&1 \
  || { tail -30 configure.out; exit 1; }
grep -A30 '^lamina .* configured' configure.out
make -j"$(nproc)" >make.out 2>&1 || { grep -E 'error|Error' make.out | head -40; exit 1; }
make -j"$(nproc)" check >check.out 2>&1; rc=$?
grep -E '^(PASS|FAIL|XFAIL|XPASS|ERROR|SKIP):' check.out | sed -n '1,400p'
for f in $(find tests -name '*.log' -newer make.out); do
  if grep -qE '^(not ok|ERROR:)' "$f"; then echo "---- $f"; tail -40 "$f"; fi
done
sum=$(find tests -name test-suite.log -newer make.out | head -1)
pass=$(sed -n 's/^# PASS: *//p' "$sum" | head -1); fail=$(sed -n 's/^# FAIL: *//p' "$sum" | head -1)
err=$(sed -n 's/^# ERROR: *//p' "$sum" | head -1); skip=$(sed -n 's/^# SKIP: *//p' "$sum" | head -1)
xpass=$(sed -n 's/^# XPASS: *//p' "$sum" | head -1)
fail=$(( ${fail:-0} + ${err:-0} + ${xpass:-0} ))
[ $rc -ne 0 ] && [ $fail -eq 0 ] && fail=1
echo "${pass:-0} passed, ${fail} failed, ${skip:-0} skipped"
exit $rc
