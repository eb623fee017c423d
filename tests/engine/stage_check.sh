#!/bin/sh
# The model check covers every stage a backend holds (issue 9): on a tiny
# Gemma 3 whose vocabulary (1024) is larger than any self-test shape or
# layer weight (512 rows), the "fakerows" test plugin (fake_rows_plugin.c:
# the cpu plugin, wrong on MUL_MAT weights of more than 512 rows) passes
# its self-test, keeps the layers and loses the output head to the cpu
# plugin, and generates what the cpu plugin alone generates:
#   - engine level (stage_check.c, also liars wrong only on global layers
#     or on embedding rows past 512);
#   - `lamina backends` and `lamina run` with fakerows installed next to
#     the cpu plugin and preferred to it.
. "${top_srcdir:-.}/tests/engine/common.sh"
if ! have_python_gguf; then
  skip "python gguf package missing: cannot generate test models"; done_testing; exit $?
fi
CPU="$B/plugins/cpu/.libs/cpu.so"
FAKE="$B/tests/engine/.libs/fake_rows.so"
W="$TMP/wide.gguf"
# make_tiny_model.py's gemma3 with a 1024-token vocabulary (N_VOCAB is
# the module's one vocabulary size: the extra pieces are <unusedN>)
if ! "$PYTHON" - "$S/tests/tools" "$W" >"$TMP/gen.log" 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import make_tiny_model as mtm
mtm.N_VOCAB = 1024
mtm.main(["--arch", "gemma3", "--type", "mixed", "--seed", "7", "--out", sys.argv[2]])
PY
then
  not_ok "generate the wide-vocabulary model"; sed 's/^/# /' "$TMP/gen.log"; done_testing; exit $?
fi

# 1. engine level
"$B/tests/engine/stage_check" "$W" "$CPU" "$FAKE" >"$TMP/out" 2>&1; rc=$?
sed 's/^\(not \)\{0,1\}ok [0-9]* - /# /' "$TMP/out" | grep -v '^1\.\.'
if [ $rc -eq 0 ]; then ok "engine: every stage checked, the head moves alone"
else not_ok "engine: every stage checked, the head moves alone"; grep '^not ok' "$TMP/out" | sed 's/^/# /'; fi

# 2. the CLI: fakerows installed next to cpu, preferred to it
P="$TMP/plugins"; mkdir -p "$P"
cp "$CPU" "$FAKE" "$P/"
export FAKE_ROWS_WRAP="$CPU"
LAMINA_PLUGIN_PATH="$P" LAMINA_BACKENDS=fakerows,cpu "$LAMINA" backends >"$TMP/be.out" 2>&1
expect_grep "fakerows passes its probe and self-test" '^fakerows .*\[accepted\]' "$TMP/be.out"
LAMINA_PLUGIN_PATH="$P" LAMINA_BACKENDS=fakerows,cpu "$LAMINA" run "$W" "The quick brown fox" \
  -n 16 --temp 0 --raw >"$TMP/two.txt" 2>"$TMP/two.err"; rc2=$?
LAMINA_PLUGIN_PATH="$P" LAMINA_BACKENDS=cpu "$LAMINA" run "$W" "The quick brown fox" \
  -n 16 --temp 0 --raw >"$TMP/cpu.txt" 2>"$TMP/cpu.err"; rc1=$?
check "lamina run on fakerows+cpu and on cpu alone" [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]
expect_grep "plan: fakerows keeps layers 0-5 and the embedding" '^fakerows:0 .* layers 0-5 \(6/6\) \+ embedding, ' "$TMP/two.err"
expect_grep "plan: the output head alone on cpu:0" '^cpu:0 .* output head only, ' "$TMP/two.err"
expect_grep "plan: the stage, the row and the move named" \
  '^fakerows:0 [^:]*: output head \(1024 rows, q8_0\) differs from the reference at row [0-9]+: max error [0-9.e+-]+ > tolerance 3\.0e-02; the head moves to cpu:0( .*)?$' \
  "$TMP/two.err"
if [ -s "$TMP/cpu.txt" ] && cmp -s "$TMP/two.txt" "$TMP/cpu.txt"; then
  ok "the text generated is the cpu plugin's, byte for byte"
else
  not_ok "the text generated is the cpu plugin's, byte for byte"
  diag "fakerows+cpu:" "$(cat "$TMP/two.txt")" "cpu:" "$(cat "$TMP/cpu.txt")"
fi
diag "$(cat "$TMP/two.err")"
done_testing
