#!/bin/sh
# The continuous-batching scheduler on tiny generated models (one of each
# architecture): batched = alone, queue, cancel, deadlines, limits.
. "$top_srcdir/tests/lib.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
CPU="$B/plugins/cpu/.libs/cpu.so"
if ! "$PYTHON" -c 'import gguf' 2>/dev/null; then
  skip "python gguf package missing: cannot generate test models"; done_testing; exit 0
fi
for spec in gemma3:mixed llama:q8_0; do
  arch=${spec%%:*}; type=${spec#*:}
  f="$T/$arch-$type.gguf"
  if ! "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch "$arch" --type "$type" --seed 11 --out "$f" >"$T/gen.log" 2>&1; then
    not_ok "generate $spec"; sed 's/^/# /' "$T/gen.log"; continue
  fi
  "$B/tests/server/batcher_check" "$f" "$CPU" >"$T/out" 2>&1; rc=$?
  sed 's/^\(not \)\{0,1\}ok [0-9]* - /# /' "$T/out" | grep -v '^1\.\.' | head -60
  if [ $rc -eq 0 ]; then ok "batcher on $spec"; else not_ok "batcher on $spec"; grep '^not ok' "$T/out" | sed 's/^/# /'; fi
done
done_testing
