#!/bin/sh
# The default model end to end through the CLI: the catalogue name
# resolves and verifies, the plan line names the cpu plugin for all 18
# layers, greedy generation answers, chat template applied, stdin prompts.
. "$top_srcdir/tests/engine/common.sh"
need_model
"$LAMINA" run gemma3-270m "What is the capital of France?" --temp 0 -n 24 >"$TMP/out" 2>"$TMP/err"; rc=$?
check "run the default model by name (exit $rc)" [ $rc -eq 0 ]
sed 's/^/# stdout: /' "$TMP/out"; sed 's/^/# stderr: /' "$TMP/err"
expect_grep "plan line: every layer on the cpu plugin" 'cpu:0 .* layers 0-17 \(18/18\)' "$TMP/err"
expect_grep "timings printed" 'generated [0-9]+ tokens' "$TMP/err"
expect_grep "the answer names Paris" 'Paris' "$TMP/out"
echo "Name one colour of the rainbow." | "$LAMINA" run -q --temp 0 -n 16 >"$TMP/out2" 2>"$TMP/err2"; rc=$?
check "prompt from stdin with the default model (exit $rc)" [ $rc -eq 0 -a -s "$TMP/out2" ]
# the SHA-256 check ran once and was remembered
check "verification remembered in the cache" grep -q a5fd3b6 "$XDG_CACHE_HOME/lamina/verified"
done_testing
