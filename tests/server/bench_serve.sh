#!/bin/sh
# scripts/bench-serve.sh runs: lamina only (--no-peer), 1 and 2 clients,
# one request each, one round, on a tiny generated model served by the
# build tree's lamina.  Checked (bench_serve_check.py): the report's
# tokens/s, time-to-first-token (median, 90th percentile, request count)
# and peak RSS lines are there with plausible numbers (positive, ordered,
# counts within the requests sent, the model file's size right).  A
# benchmark, not a speed test: no figure is compared with a bound.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
setup "tiny models generated" make_models
CLIENTS="1 2"
# the script's server reads its own config; the tests' environment is not its
unset LAMINA_MODELS LAMINA_CATALOGUE
if LAMINA="$LAMINA" "$S/scripts/bench-serve.sh" "$TMP/models/tiny-gemma3.gguf" --no-peer \
     -c "$CLIENTS" -n 4 -k 1 -r 1 -t 1 >"$TMP/report" 2>"$TMP/err"; then
  ok "bench-serve.sh --no-peer runs"
else
  not_ok "bench-serve.sh --no-peer runs"; sed 's/^/#   /' "$TMP/err" | tail -20
fi
sed 's/^/#   /' "$TMP/report"
run_tap "report" "$PYTHON" "$S/tests/server/bench_serve_check.py" "$TMP/report" "$TMP/models/tiny-gemma3.gguf" \
  "$CLIENTS" 1 1
done_testing
