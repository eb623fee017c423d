#!/bin/sh
# logprobs on both APIs against `lamina serve`, checked against llama.cpp:
# the model of tests/golden/tiny-llama-logits.json is made again, and the
# server's greedy tokens and top alternatives for its prompts must be the
# peer's (ids, and logprob differences within the peer's own spread)
# (tests/server/logprobs_check.py).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
make_golden_model() {
  mkdir -p "$TMP/models" &&
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch llama --type mixed --seed 1 \
    --out "$TMP/models/tiny-golden.gguf" >"$TMP/gen.log" 2>&1
}
setup "the golden tiny llama made again" make_golden_model
write_ini "$TMP/lp.ini" "parallel = 2"
if start_server "$TMP/lp.ini"; then
  run_tap "logprobs" "$PYTHON" "$S/tests/server/logprobs_check.py" "$URL" "$S/tests/golden/tiny-llama-logits.json"
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
done_testing
