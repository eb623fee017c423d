#!/bin/sh
# The golden comparisons can catch a bug: with one hyperparameter made
# deliberately wrong after loading (the sliding-window layers' RoPE base
# set to the global one, the window cut to 4 positions, a final soft-cap of
# 10 the model does not have), the comparison with llama.cpp must fail:
#   tight: the core reference on the generated gemma3 model (the same
#          architecture code as the default model, at a cost CI can pay);
#   fast:  the cpu plugin on the default model.
# Two greedy steps are enough: the prompts' logits already differ.
. "$top_srcdir/tests/engine/common.sh"
need_model
TINY="$TMP/tiny-gemma3.gguf"
"$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch gemma3 --type mixed --seed 1 --out "$TINY" >"$TMP/gen.log" 2>&1 \
  || { not_ok "generate the gemma3 model"; sed 's/^/# /' "$TMP/gen.log"; done_testing; exit 1; }
for what in rope-base window softcap; do
  for mode in tight fast; do
    if [ $mode = tight ]; then set -- --tight "$S/tests/golden/tiny-gemma3-logits.json" "$TINY" ref
    else set -- "$S/tests/golden/gemma3-270m-logits.json" "$DEFAULT_MODEL" cpu; fi
    LAMINA_GOLDEN_STEPS=2 "$B/tests/engine/golden_check" --perturb $what "$@" >"$TMP/out" 2>&1; rc=$?
    grep -E '^# (perturbed|all prompts)' "$TMP/out"
    grep -E '^not ok .*(logits|argmax)' "$TMP/out" | head -4 | sed 's/^not ok [0-9]* - /# failed as it should: /'
    n_bad=$(grep -cE '^not ok .*logits (rms|max) difference' "$TMP/out")
    if [ $rc -eq 1 ] && [ "$n_bad" -gt 0 ]; then ok "$mode: a wrong $what fails the logit comparison ($n_bad limits exceeded)"
    else not_ok "$mode: a wrong $what fails the logit comparison (exit $rc, $n_bad limits exceeded)"; tail -20 "$TMP/out" | sed 's/^/# /'; fi
  done
done
done_testing
