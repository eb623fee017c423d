#!/bin/sh
# The default model against llama.cpp's recorded logits, greedy and
# teacher-forced ids (tests/golden/, scripts/record-golden.sh; both
# tolerances in tests/engine/golden_check.c):
#   tight: the core's scalar reference, with an f32 KV cache, against
#          llama.cpp's most precise configuration (F32 weights, f32 KV
#          cache, no flash attention), fixed limits: logits at the last 4
#          positions of every prompt, and free-running greedy decoding over
#          all 40 recorded steps on the first 2 prompts recorded for it
#          (every top-two gap wide).  The reference takes about a second a
#          step under the sanitizers; every position and all 8 such prompts:
#          golden_check --tight GOLDEN MODEL ref (a few minutes, release);
#   fast:  the cpu plugin as it runs by default (f16 KV cache, 8-bit
#          activations) against llama.cpp's default, limits scaled by
#          llama.cpp's own flash/no-flash spread; also on one prompt of
#          ~700 tokens (tests/golden/gemma3-270m-long-logits.json), longer
#          than the model's 512-token sliding window.
. "$top_srcdir/tests/engine/common.sh"
need_model
G="$S/tests/golden/gemma3-270m-logits.json"
golden_run "tight: core reference matches llama.cpp (precise) on the default model" \
  --tight --positions 4 --greedy-prompts 2 --min-greedy-prompts 2 "$G" "$DEFAULT_MODEL" ref
golden_run "fast: cpu plugin matches llama.cpp (default) on the default model" "$G" "$DEFAULT_MODEL" cpu
# one prompt of ~700 tokens, past the 512-token window of the local layers,
# prefilled in batches of 256 (every position, 8 greedy steps)
GL="$S/tests/golden/gemma3-270m-long-logits.json"
golden_run "fast: cpu plugin matches llama.cpp (default) past the sliding window" "$GL" "$DEFAULT_MODEL" cpu
done_testing
