#!/bin/sh
# `lamina bench`'s roofline (runtime/cli/cmd_bench.c): the tgN row of a
# plan on host memory carries the machine's measured streaming-read
# bandwidth, the bytes a generated token reads and the fraction of the
# resulting limit the run reached.  The weight bytes are checked against
# the GGUF file itself (bench_roofline_check.py: every layer tensor, the
# experts' share n_expert_used / n_expert, the output head, one row of an
# untied token embedding) on tiny models: tied (gemma3), untied (llama), a
# mixture of experts (qwen3moe); the text form shows the line; a pp-only
# run has none.
. "$top_srcdir/tests/engine/common.sh"
LAMINA="$B/runtime/lamina"
if ! have_python_gguf; then
  if [ "${CI:-}" = true ]; then not_ok "python with gguf (needed in CI)"; else skip "python without gguf"; fi
  done_testing; exit $?
fi
for arch in gemma3 llama qwen3moe; do
  f="$TMP/tiny-$arch.gguf"
  if ! "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch "$arch" --type q8_0 --seed 3 --out "$f" >"$TMP/gen.log" 2>&1; then
    not_ok "generate tiny $arch"; sed 's/^/# /' "$TMP/gen.log"; continue
  fi
  "$LAMINA" bench "$f" -b cpu -p 0 -n 6 -r 1 --json >"$TMP/b.json" 2>"$TMP/b.err"; rc=$?
  sed 's/^/# /' "$TMP/b.json"
  check "tiny $arch: lamina bench -n 6 --json (exit $rc)" [ $rc -eq 0 ]
  "$PYTHON" "$S/tests/engine/bench_roofline_check.py" "$f" "$TMP/b.json" >"$TMP/chk.out" 2>&1; rc=$?
  sed 's/^/# /' "$TMP/chk.out"
  check "tiny $arch: the roofline's token bytes are the file's, its limit and fraction agree" [ $rc -eq 0 ]
done
f="$TMP/tiny-gemma3.gguf"
"$LAMINA" bench "$f" -b cpu -p 4 -n 3 -r 1 >"$TMP/t.out" 2>&1
sed 's/^/# /' "$TMP/t.out"
expect_grep "the text form: a roofline line under tg3" \
  '^  roofline: a token reads [0-9.]+ MB; memory streams [0-9.]+ GB/s on [0-9]+ threads? \(a 256 MiB read\), so at most [0-9.]+ t/s; tg3 is [0-9]+% of that$' "$TMP/t.out"
"$LAMINA" bench "$f" -b cpu -p 4 -n 0 -r 1 --json >"$TMP/p.json" 2>&1
check "a pp-only run has no roofline" sh -c "grep -q '\"test\":\"pp4\"' '$TMP/p.json' && ! grep -q read_gbps '$TMP/p.json'"
done_testing
