#!/bin/sh
# The default model against llama.cpp's recorded logits, greedy and
# teacher-forced ids (tests/golden/, scripts/record-golden.sh; tolerance
# in tests/engine/golden_check.c), on the cpu plugin.
. "$top_srcdir/tests/engine/common.sh"
need_model
"$B/tests/engine/golden_check" "$S/tests/golden/gemma3-270m-logits.json" "$DEFAULT_MODEL" cpu >"$TMP/out" 2>&1; rc=$?
sed 's/^\(not \)\{0,1\}ok [0-9]* - /# /' "$TMP/out" | grep -v '^1\.\.'
if [ $rc -eq 0 ]; then ok "cpu plugin matches llama.cpp on the default model"
else not_ok "cpu plugin matches llama.cpp on the default model"; grep '^not ok' "$TMP/out" | sed 's/^/# /'; fi
done_testing
