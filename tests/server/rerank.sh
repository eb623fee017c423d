#!/bin/sh
# Reranking (POST /v1/rerank and its aliases) against llama.cpp: the tiny
# Qwen3 reranker of tests/golden/tiny-rerank.json (a classifier head over
# "yes"/"no", the file's rerank prompt) is made again, and lamina's
# relevance scores and prompt tokens must be llama.cpp's
# (tests/server/rerank_check.py; scripts/record-golden-rerank.sh records;
# rerank_bert.sh does the same for a BERT cross-encoder).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
make_rerank_models() {
  make_models &&
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch qwen3 --type mixed --seed 1 --rerank \
    --out "$TMP/models/tiny-rerank.gguf" >>"$TMP/gen.log" 2>&1
}
setup "the golden tiny reranker made again" make_rerank_models
write_ini "$TMP/r.ini" "parallel = 4"
if start_server "$TMP/r.ini"; then
  run_tap "rerank" "$PYTHON" "$S/tests/server/rerank_check.py" "$URL" "$S/tests/golden/tiny-rerank.json" \
    tiny-rerank 0.002
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
done_testing
