#!/bin/sh
# Every architecture that runs, against llama.cpp on a generated model:
# tests/tools/make_tiny_model.py --arch ARCH --type mixed --seed 1 (the
# file scripts/record-golden.sh ran llama.cpp on), compared with
# tests/golden/tiny-ARCH-logits.json on the tight path (the core reference
# with an f32 KV cache against llama.cpp's precise configuration) and the
# fast one (the cpu plugin as it runs by default, and with its scalar
# kernels, against llama.cpp's default).  phi3-long: the phi3 model in the
# context of 8192 it was recorded in, past its original 4096, where
# LongRoPE's long factors apply.
. "$top_srcdir/tests/engine/common.sh"
for arch in llama llama3 qwen2 qwen3 qwen3moe qwen2moe gemma2 gemma3 phi3 phi3-long granite olmo2 gpt-oss; do
  G="$S/tests/golden/tiny-$arch-logits.json"
  f="$TMP/tiny-$arch.gguf"
  if ! "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch ${arch%-long} --type mixed --seed 1 --out "$f" >"$TMP/gen.log" 2>&1; then
    not_ok "$arch: generate the model"; sed 's/^/# /' "$TMP/gen.log"; continue
  fi
  want=$(sed -n 's/.*"model_sha256":"\([0-9a-f]*\)".*/\1/p' "$G" | head -1)
  got=$(sha256sum "$f" | cut -d' ' -f1)
  [ "$want" = "$got" ] || diag "$arch: the generated file differs from the one recorded ($got, recorded $want):" \
    "if the generator changed on purpose, record again with scripts/record-golden.sh"
  golden_run "$arch: tight: core reference matches llama.cpp (precise)" --tight "$G" "$f" ref
  golden_run "$arch: fast: cpu plugin matches llama.cpp (default)" "$G" "$f" cpu
  # the portable kernels too (the default is the widest this CPU has)
  LAMINA_CPU_ISA=scalar golden_run "$arch: fast: cpu plugin, scalar kernels, matches llama.cpp (default)" "$G" "$f" cpu
done
done_testing
