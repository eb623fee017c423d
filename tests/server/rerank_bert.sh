#!/bin/sh
# Reranking with a BERT cross-encoder against llama.cpp: the tiny bert
# reranker of tests/golden/tiny-bert-rerank.json (bert.pooling_type 4, the
# pooler cls.weight/cls.bias and the head cls.output.weight/bias, no
# rerank template) is made again, and lamina's /v1/rerank scores, order and
# pair tokens ([CLS] query [SEP] document [SEP]) must be llama.cpp's
# (tests/server/rerank_check.py; scripts/record-golden-rerank.sh with
# LAMINA_GOLDEN_TINY=bert records).  Files whose classifier is half there
# (a bias without its matrix, a pooler without a head) are refused naming
# the tensor; a bert file without a classifier is not a reranker.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
make_rerank_models() {
  make_models &&
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch bert --type f32 --seed 1 --rerank \
    --out "$TMP/models/tiny-bert-rerank.gguf" >>"$TMP/gen.log" 2>&1 &&
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch bert --type f32 --seed 1 \
    --out "$TMP/models/tiny-bert.gguf" >>"$TMP/gen.log" 2>&1 &&
  # broken copies: classifier tensors renamed (same length): the pooler
  # without the head, the pooler's bias without its matrix
  "$PYTHON" - "$TMP/models" >>"$TMP/gen.log" 2>&1 <<'PY'
import struct, sys
d = sys.argv[1]
src = open(d + "/tiny-bert-rerank.gguf", "rb").read()
for out, names in (("tiny-bert-nohead", (b"cls.output.weight", b"cls.output.bias")),
                   ("tiny-bert-nopool", (b"cls.weight",))):
    data = src
    for name in names:
        key = struct.pack("<Q", len(name)) + name
        assert data.count(key) == 1, name
        data = data.replace(key, key[:-4] + b"xxxx")
    open(f"{d}/{out}.gguf", "wb").write(data)
PY
}
setup "the golden tiny bert reranker made again" make_rerank_models
G="$S/tests/golden/tiny-bert-rerank.json"
want=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["provenance"]["model_sha256"])' "$G")
got=$(sha256sum "$TMP/models/tiny-bert-rerank.gguf" | cut -d' ' -f1)
[ "$want" = "$got" ] || diag "the generated reranker differs from the one recorded ($got, recorded $want): if the" \
  "generator changed on purpose, record again (LAMINA_GOLDEN_TINY=bert scripts/record-golden-rerank.sh)"
# the default prompt_chunk (128): an encoder's batch still holds a whole
# context, so a query and document of more than 128 tokens are scored
write_ini "$TMP/r.ini" "parallel = 4"
if start_server "$TMP/r.ini"; then
  run_tap "rerank bert" "$PYTHON" "$S/tests/server/rerank_check.py" "$URL" \
    "$G" tiny-bert-rerank 0.0002
  st=$(code "$TMP/o.json" POST /v1/rerank -d '{"model":"tiny-bert","query":"q","documents":["a"]}')
  [ "$st" = 400 ] && grep -q "not a reranker" "$TMP/o.json"
  check_rc "a bert file without a classifier: 400, not a reranker" $?
  long=$("$PYTHON" -c 'print(" ".join(["cat"] * 300))')
  st=$(code "$TMP/o.json" POST /v1/rerank -d "{\"model\":\"tiny-bert-rerank\",\"query\":\"q\",\"documents\":[\"$long\"]}")
  [ "$st" = 200 ] && grep -q relevance_score "$TMP/o.json"
  check_rc "a document of 300 tokens, more than parallel + prompt_chunk (132), within the context: scored ($st)" $?
  st=$(code "$TMP/o.json" POST /v1/rerank -d '{"model":"tiny-bert-nohead","query":"q","documents":["a"]}')
  [ "$st" -ge 400 ] && grep -q "tensor 'cls.weight' without 'cls.output.weight'" "$TMP/o.json"
  check_rc "a pooler without a head: refused naming both tensors ($st)" $?
  st=$(code "$TMP/o.json" POST /v1/rerank -d '{"model":"tiny-bert-nopool","query":"q","documents":["a"]}')
  [ "$st" -ge 400 ] && grep -q "tensor 'cls.bias' without 'cls.weight'" "$TMP/o.json"
  check_rc "a pooler bias without its matrix: refused naming it ($st)" $?
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
done_testing
