#!/bin/sh
# Speculative decoding from the sequence's own tokens (runtime/engine/
# lookup.c): generation with it equals generation without it, token for
# token, on tiny generated models (a copy-heavy id prompt; greedy, sampled,
# repetition penalty, a JSON schema; n_batch 1 to 64) and on the default
# model (a text to copy: drafts must be kept; free text), through
# spec_check.c, alone and three at once in the batcher (the server); and
# `lamina run --spec` against `--no-spec` (the same text, the drafts
# reported), `lamina bench --prompt` (the acceptance rate shown) and -s (several
# sequences decoded together), the
# [generate] speculative key and bad flag values.
. "$top_srcdir/tests/engine/common.sh"
CPU="$B/plugins/cpu/.libs/cpu.so"
LAMINA="$B/runtime/lamina"
run_tap() {   # run_tap DESC CMD...: a spec_check run as one test, its lines as comments
  _d=$1; shift
  "$@" >"$TMP/tap.out" 2>&1; _rc=$?
  sed 's/^\(not \)\{0,1\}ok [0-9]* - /# /' "$TMP/tap.out" | grep -v '^1\.\.'
  if [ $_rc -eq 0 ]; then ok "$_d"
  else not_ok "$_d (exit $_rc)"; grep '^not ok' "$TMP/tap.out" | sed 's/^/# /'; fi
}
if have_python_gguf; then
  for arch in gemma3 llama; do
    f="$TMP/tiny-$arch.gguf"
    if ! "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch "$arch" --type q8_0 --seed 7 --out "$f" >"$TMP/gen.log" 2>&1; then
      not_ok "generate tiny $arch"; sed 's/^/# /' "$TMP/gen.log"; continue
    fi
    run_tap "tiny $arch: speculation changes no token (alone and in the batcher), drafts kept" \
      "$B/tests/engine/spec_check" "$f" "$CPU" --expect-accept --batcher
  done
  # the CLI: the same text with and without, the counts on stderr
  f="$TMP/tiny-gemma3.gguf"
  P="one two three four five six seven eight one two three four five six seven eight one two three"
  "$LAMINA" run "$f" "$P" --raw --temp 0 -n 40 --no-spec >"$TMP/off.out" 2>"$TMP/off.err"; rc1=$?
  "$LAMINA" run "$f" "$P" --raw --temp 0 -n 40 --spec >"$TMP/on.out" 2>"$TMP/on.err"; rc2=$?
  check "lamina run --spec and --no-spec succeed ($rc1, $rc2)" [ $rc1 -eq 0 -a $rc2 -eq 0 ]
  check "lamina run: the same text with and without speculation" cmp -s "$TMP/off.out" "$TMP/on.out"
  expect_grep "lamina run --spec reports drafts kept" 'drafted [0-9]+ accepted [1-9][0-9]* \([0-9]+%\) in [0-9]+ steps' "$TMP/on.err"
  check "lamina run --no-spec drafts nothing" sh -c "! grep -q drafted '$TMP/off.err'"
  printf '[generate]\nspeculative = off\n' >"$TMP/off.ini"
  "$LAMINA" --config "$TMP/off.ini" run "$f" "$P" --raw --temp 0 -n 40 >"$TMP/cfg.out" 2>"$TMP/cfg.err"
  check "[generate] speculative = off: no drafts, the same text" \
    sh -c "! grep -q drafted '$TMP/cfg.err' && cmp -s '$TMP/off.out' '$TMP/cfg.out'"
  "$LAMINA" --config "$TMP/off.ini" run "$f" "$P" --raw --temp 0 -n 40 --spec >"$TMP/cfg2.out" 2>"$TMP/cfg2.err"
  check "--spec over speculative = off: drafts, the same text" \
    sh -c "grep -q drafted '$TMP/cfg2.err' && cmp -s '$TMP/off.out' '$TMP/cfg2.out'"
  printf '[generate]\nspeculative = sometimes\n' >"$TMP/bad.ini"
  "$LAMINA" --config "$TMP/bad.ini" run "$f" "$P" >"$TMP/bad.out" 2>&1
  expect_grep "a bad speculative value is refused naming the key" 'speculative: expected auto or off' "$TMP/bad.out"
  "$LAMINA" run "$f" "$P" --spec-draft 99 >"$TMP/bad.out" 2>&1; rc=$?
  check "run --spec-draft 99 refused (exit $rc)" [ $rc -eq 2 ]
  "$LAMINA" bench "$f" -b cpu -n 32 -r 1 --prompt "$P" --json >"$TMP/bench.out" 2>"$TMP/bench.err"; rc=$?
  sed 's/^/# /' "$TMP/bench.out"
  check "lamina bench --prompt (exit $rc)" [ $rc -eq 0 ]
  expect_grep "bench: the plain generation row" '"test":"gt32",' "$TMP/bench.out"
  expect_grep "bench: the speculative row with its acceptance rate" '"test":"gt32-spec",.*"accepted":[1-9][0-9]*,"accept_rate":' "$TMP/bench.out"
  # batched decoding, as a server's busy slots: -s adds the tgNxS row
  "$LAMINA" bench "$f" -b cpu -p 8 -n 4 -s 3 -r 1 --json >"$TMP/bs.out" 2>"$TMP/bs.err"; rc=$?
  check "lamina bench -s 3 (exit $rc)" [ $rc -eq 0 ]
  expect_grep "bench -s 3: the tg4x3 row after pp8 and tg4" '"test":"tg4x3",' "$TMP/bs.out"
  "$LAMINA" bench "$f" -s 65 >"$TMP/bs.out" 2>&1; rc=$?
  check "bench -s 65 refused (exit $rc)" [ $rc -eq 2 ]
else
  skip "python gguf package missing: cannot generate test models"
fi
if have_model; then
  COPY="Original text:
Lighthouses were once tended by keepers who trimmed the wicks, wound the clockwork that turned the lens, and logged every passing ship in a leather-bound book. Today most of them run on their own.

Exact copy of the original text:
Lighthouses were once"
  run_tap "default model, a text to copy: the same tokens, drafts kept" \
    "$B/tests/engine/spec_check" "$DEFAULT_MODEL" "$CPU" -n 32 --text "$COPY" --expect-accept \
      --batches 4,64 --cases greedy,schema
  run_tap "default model, free text: the same tokens" \
    "$B/tests/engine/spec_check" "$DEFAULT_MODEL" "$CPU" -n 24 \
      --text "Question: Why do cats purr? Answer:" --batches 64 --cases greedy
else
  need_model
fi
done_testing
