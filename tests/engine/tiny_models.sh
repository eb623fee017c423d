#!/bin/sh
# Tiny random models of each architecture and tensor type through the
# engine: cpu plugin vs reference, split plans, KV cache, batching.
. "$top_srcdir/tests/lib.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
CPU="$B/plugins/cpu/.libs/cpu.so"
if ! "$PYTHON" -c 'import gguf' 2>/dev/null; then
  skip "python gguf package missing: cannot generate test models"; done_testing; exit 0
fi
for spec in gemma3:mixed gemma3:q8_0 gemma3:q4_0 gemma3:q5_0 gemma3:q4_k gemma3:q6_k gemma3:f16 \
            llama:mixed llama:q5_k llama:f32 llama:bf16 \
            llama:q2_k gemma3:q3_k gemma3:iq4_nl llama:iq4_xs qwen2moe:mixed \
            llama:mxfp4 qwen3moe:mxfp4; do
  arch=${spec%%:*}; type=${spec#*:}
  f="$T/$arch-$type.gguf"
  if ! "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch "$arch" --type "$type" --seed 7 --out "$f" >"$T/gen.log" 2>&1; then
    not_ok "generate $spec"; sed 's/^/# /' "$T/gen.log"; continue
  fi
  "$B/tests/engine/engine_check" "$f" "$CPU" >"$T/out" 2>&1; rc=$?
  sed 's/^\(not \)\{0,1\}ok [0-9]* - /# /' "$T/out" | grep -v '^1\.\.' | head -40
  if [ $rc -eq 0 ]; then ok "engine on $spec"; else not_ok "engine on $spec"; grep '^not ok' "$T/out" | sed 's/^/# /'; fi
done
done_testing
