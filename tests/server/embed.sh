#!/bin/sh
# Embeddings through `lamina serve` on tiny models: /api/embed, the legacy
# /api/embeddings and /v1/embeddings with curl (shapes, unit length,
# dimensions, truncate, token-id input, base64 = the float list, the
# batched vectors = each input alone, errors naming the field, a missing
# model), the ollama and openai Python clients, an abandoned request
# freeing its slots while the server keeps serving, and `lamina embed`.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
setup "tiny models generated" make_models
write_ini "$TMP/l.ini" "parallel = 2" "queue = 2"
start_server "$TMP/l.ini" || { not_ok "server starts"; done_testing; exit 1; }
diag "server listening on $URL"
J="$PYTHON $S/tests/server/jq.py"
O=$TMP/out
unit='all(abs(sum(x * x for x in v) - 1) < 1e-5 for v in'

# ---- /api/embed ----
check "/api/embed, one string" [ "$(code $O POST /api/embed -d '{"model":"tiny-gemma3","input":"Hello world"}')" = 200 ]
check "  one vector, unit length, counts and timings" $J $O \
  "d['model'] == 'tiny-gemma3' and len(d['embeddings']) == 1 and len(d['embeddings'][0]) > 8 and $unit d['embeddings']) and d['prompt_eval_count'] > 0 and d['total_duration'] > 0 and 'load_duration' in d"
cp $O $TMP/one
check "/api/embed, five strings (more than the 2 slots and the queue of 2)" \
  [ "$(code $O POST /api/embed -d '{"model":"tiny-gemma3","input":["Hello world","a","b c d","Hello world","another text, longer than the others"]}')" = 200 ]
check "  five vectors, in order, unit length" $J $O "len(d['embeddings']) == 5 and $unit d['embeddings'])"
check "  batched = alone (input 0 and 3 equal the single request's)" $PYTHON -c '
import json, sys
a = json.load(open(sys.argv[1]))["embeddings"]; b = json.load(open(sys.argv[2]))["embeddings"][0]
ok = all(abs(x - y) < 1e-5 for v in (a[0], a[3]) for x, y in zip(v, b)) and a[1] != a[2]
sys.exit(0 if ok else 1)' $O $TMP/one
check "  prompt_eval_count sums the inputs" $J $O 'd["prompt_eval_count"] >= 5 + 2'
check "/api/embed, dimensions 8" [ "$(code $O POST /api/embed -d '{"model":"tiny-gemma3","input":"Hello world","dimensions":8}')" = 200 ]
check "  8 values: the first 8 of the full vector, normalised again" $PYTHON -c '
import json, math, sys
v = json.load(open(sys.argv[1]))["embeddings"][0]; f = json.load(open(sys.argv[2]))["embeddings"][0][:8]
n = math.sqrt(sum(x * x for x in f))
sys.exit(0 if len(v) == 8 and all(abs(x - y / n) < 1e-5 for x, y in zip(v, f)) else 1)' $O $TMP/one
LONG=$($PYTHON -c 'print(" ".join(["word"] * 3000))')
check "/api/embed, an input longer than the context, truncate default (true): 200" \
  [ "$(code $O POST /api/embed -d "{\"model\":\"tiny-gemma3\",\"input\":\"$LONG\",\"options\":{\"num_ctx\":64}}")" = 200 ]
check "  cut to the context: 64 tokens" $J $O 'd["prompt_eval_count"] == 64 and len(d["embeddings"]) == 1'
check "/api/embed, truncate false: 400" \
  [ "$(code $O POST /api/embed -d "{\"model\":\"tiny-gemma3\",\"input\":[\"a\",\"$LONG\"],\"truncate\":false,\"options\":{\"num_ctx\":64}}")" = 400 ]
expect_grep "  naming the input and the context" 'input\[1\]: the input has [0-9]+ tokens, more than the context length of 64' $O
check "/api/embed, empty list: 200 with no vectors (as Ollama: loads the model)" \
  [ "$(code $O POST /api/embed -d '{"model":"tiny-gemma3","input":[]}')" = 200 ]
check "  embeddings is []" $J $O 'd["embeddings"] == []'
check "/api/embed, a number as input: 400" [ "$(code $O POST /api/embed -d '{"model":"tiny-gemma3","input":5}')" = 400 ]
expect_grep "  naming the field" '"error": *"input: expected a string or an array of strings' $O
check "/api/embed, a number in the list: 400" [ "$(code $O POST /api/embed -d '{"model":"tiny-gemma3","input":["a",5]}')" = 400 ]
expect_grep "  naming the element" 'input\[1\]: expected a string' $O
check "/api/embed, truncate not a boolean: 400" [ "$(code $O POST /api/embed -d '{"model":"tiny-gemma3","input":"a","truncate":"yes"}')" = 400 ]
expect_grep "  naming the field" 'truncate' $O
check "/api/embed, dimensions -1: 400" [ "$(code $O POST /api/embed -d '{"model":"tiny-gemma3","input":"a","dimensions":-1}')" = 400 ]
expect_grep "  naming the field" 'dimensions' $O
check "/api/embed, options.num_ctx a string: 400" [ "$(code $O POST /api/embed -d '{"model":"tiny-gemma3","input":"a","options":{"num_ctx":"x"}}')" = 400 ]
check "/api/embed, a missing model: 404" [ "$(code $O POST /api/embed -d '{"model":"nope","input":"a"}')" = 404 ]
check "/api/embed, no model: 400" [ "$(code $O POST /api/embed -d '{"input":"a"}')" = 400 ]
check "/api/embed on the BPE model (tiny-llama)" [ "$(code $O POST /api/embed -d '{"model":"tiny-llama","input":["Hello","world"]}')" = 200 ]
check "  two unit vectors" $J $O "len(d['embeddings']) == 2 and $unit d['embeddings'])"

# ---- legacy /api/embeddings: not normalised (as Ollama's legacy handler) ----
check "/api/embeddings (legacy)" [ "$(code $O POST /api/embeddings -d '{"model":"tiny-gemma3","prompt":"Hello world"}')" = 200 ]
check "  one list, not normalised, same direction as /api/embed" $PYTHON -c '
import json, math, sys
v = json.load(open(sys.argv[1]))["embedding"]; u = json.load(open(sys.argv[2]))["embeddings"][0]
n = math.sqrt(sum(x * x for x in v))
sys.exit(0 if abs(n - 1) > 1e-3 and all(abs(x / n - y) < 1e-5 for x, y in zip(v, u)) else 1)' $O $TMP/one
check "/api/embeddings, empty prompt: 200 with []" [ "$(code $O POST /api/embeddings -d '{"model":"tiny-gemma3","prompt":""}')" = 200 ]
check "  embedding is []" $J $O 'd["embedding"] == []'
check "/api/embeddings, prompt a list: 400" [ "$(code $O POST /api/embeddings -d '{"model":"tiny-gemma3","prompt":["a"]}')" = 400 ]
expect_grep "  naming the field" 'prompt' $O

# ---- /v1/embeddings ----
check "/v1/embeddings, one string" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3","input":"Hello world"}')" = 200 ]
check "  OpenAI shape: list, data[0] embedding, usage" $J $O \
  "d['object'] == 'list' and d['model'] == 'tiny-gemma3' and d['data'][0]['object'] == 'embedding' and d['data'][0]['index'] == 0 and $unit [d['data'][0]['embedding']]) and d['usage']['prompt_tokens'] == d['usage']['total_tokens'] > 0"
check "  the same vector as /api/embed" $PYTHON -c '
import json, sys
a = json.load(open(sys.argv[1]))["data"][0]["embedding"]; b = json.load(open(sys.argv[2]))["embeddings"][0]
sys.exit(0 if all(abs(x - y) < 1e-6 for x, y in zip(a, b)) else 1)' $O $TMP/one
cp $O $TMP/oai
check "/v1/embeddings, base64" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3","input":"Hello world","encoding_format":"base64"}')" = 200 ]
check "  base64 decodes (little-endian float32) to the float list" $PYTHON -c '
import json, sys, base64, struct
s = json.load(open(sys.argv[1]))["data"][0]["embedding"]; f = json.load(open(sys.argv[2]))["data"][0]["embedding"]
raw = base64.b64decode(s, validate=True)
v = struct.unpack("<%df" % (len(raw) // 4), raw)
sys.exit(0 if len(v) == len(f) and all(abs(x - y) < 1e-6 for x, y in zip(v, f)) else 1)' $O $TMP/oai
check "/v1/embeddings, list of strings, dimensions 4" \
  [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3","input":["a","b","c"],"dimensions":4}')" = 200 ]
check "  three 4-value unit vectors, indexes 0..2" $J $O "[x['index'] for x in d['data']] == [0, 1, 2] and all(len(x['embedding']) == 4 for x in d['data']) and $unit [x['embedding'] for x in d['data']])"
# token ids: the ids of "Hello world" (with BOS) as /api/generate's context reports them
IDS=$(curl -s "$URL/api/generate" -d '{"model":"tiny-gemma3","prompt":"Hello world","raw":true,"stream":false,"options":{"num_predict":0}}' | $PYTHON -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["context"]))')
diag "token ids of 'Hello world': $IDS"
check "/v1/embeddings, a list of token ids" [ "$(code $O POST /v1/embeddings -d "{\"model\":\"tiny-gemma3\",\"input\":$IDS}")" = 200 ]
check "  the same vector as the text" $PYTHON -c '
import json, sys
a = json.load(open(sys.argv[1]))["data"][0]["embedding"]; b = json.load(open(sys.argv[2]))["data"][0]["embedding"]
sys.exit(0 if all(abs(x - y) < 1e-5 for x, y in zip(a, b)) else 1)' $O $TMP/oai
check "/v1/embeddings, a list of lists of token ids" [ "$(code $O POST /v1/embeddings -d "{\"model\":\"tiny-gemma3\",\"input\":[$IDS,[1,2,3]]}")" = 200 ]
check "  two vectors, the first the text's" $PYTHON -c '
import json, sys
d = json.load(open(sys.argv[1]))["data"]; b = json.load(open(sys.argv[2]))["data"][0]["embedding"]
sys.exit(0 if len(d) == 2 and all(abs(x - y) < 1e-5 for x, y in zip(d[0]["embedding"], b)) else 1)' $O $TMP/oai
check "/v1/embeddings, empty list: 400" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3","input":[]}')" = 400 ]
check "  OpenAI error shape naming input" $J $O 'd["error"]["message"].startswith("input: the list is empty") and d["error"]["type"] == "invalid_request_error"'
check "/v1/embeddings, mixed list: 400" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3","input":["a",[1]]}')" = 400 ]
expect_grep "  naming the element" 'input\[1\]: expected a string' $O
check "/v1/embeddings, a token id outside the vocabulary: 400" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3","input":[1,99999999]}')" = 400 ]
expect_grep "  naming it" 'input\[1\]: token 99999999 is outside the vocabulary' $O
check "/v1/embeddings, encoding_format xml: 400" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3","input":"a","encoding_format":"xml"}')" = 400 ]
expect_grep "  naming the field" 'encoding_format' $O
check "/v1/embeddings, input an object: 400" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3","input":{}}')" = 400 ]
check "/v1/embeddings, no input: 400" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3"}')" = 400 ]
expect_grep "  naming the field" 'input: required' $O
check "/v1/embeddings, dimensions above the model's: 400" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-gemma3","input":"a","dimensions":100000}')" = 400 ]
check "/v1/embeddings, an input longer than the context: 400" \
  [ "$(code $O POST /v1/embeddings -d "{\"model\":\"tiny-gemma3\",\"input\":\"$LONG\"}")" = 400 ]
expect_grep "  naming the input" 'input: the input has [0-9]+ tokens, more than the context length' $O
check "/v1/embeddings, a missing model: 404" [ "$(code $O POST /v1/embeddings -d '{"model":"nope","input":"a"}')" = 404 ]
check "  OpenAI error shape" $J $O '"message" in d["error"]'

# ---- an abandoned request frees its slots; the server keeps serving ----
MANY=$($PYTHON -c 'import json; print(json.dumps({"model": "tiny-long", "input": [" ".join(["w%d" % i] * 4000) for i in range(12)]}))')
printf '%s' "$MANY" > "$TMP/many.json"
curl -s -m 1 -o /dev/null "$URL/api/embed" -d @"$TMP/many.json"
check "after a client gave up on a 12-input request: the slots are free again" wait_metric 'lamina_active_sequences{model="tiny-long"}' 0
check "  and the queue is empty" wait_metric 'lamina_queue_depth{model="tiny-long"}' 0
check "the server still answers /api/embed" [ "$(code $O POST /api/embed -d '{"model":"tiny-long","input":["still","here"]}')" = 200 ]
check "  with two vectors" $J $O 'len(d["embeddings"]) == 2'
check "generation and embeddings at once (one batch)" $PYTHON - "$URL" <<'PY'
import json, sys, threading, urllib.request
url = sys.argv[1]
res = {}
def post(path, body, key):
    r = urllib.request.urlopen(urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}), timeout=120)
    res[key] = json.load(r)
ts = [threading.Thread(target=post, args=("/api/generate", {"model": "tiny-gemma3", "prompt": "Hi", "stream": False, "options": {"num_predict": 16}}, "g")),
      threading.Thread(target=post, args=("/api/embed", {"model": "tiny-gemma3", "input": ["x y", "z"]}, "e"))]
for t in ts: t.start()
for t in ts: t.join()
sys.exit(0 if res.get("g", {}).get("done") and len(res.get("e", {}).get("embeddings", [])) == 2 else 1)
PY

# ---- the Python clients ----
if "$PYTHON" -c 'import ollama, openai' 2>/dev/null; then
  run_tap "clients" "$PYTHON" "$S/tests/server/embed_clients.py" "$URL"
elif [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then not_ok "python packages ollama and openai installed"
else skip "python packages ollama and openai missing"; fi
check "server stops cleanly" stop_server

# ---- pooling from the file's metadata: mean (1), none (0), rank (4) ----
pooled_model() {   # pooled_model TYPE NAME: tiny-gemma3 with gemma3.pooling_type = TYPE
  "$PYTHON" - "$TMP/models/tiny-gemma3.gguf" "$TMP/models/$2.gguf" "$1" <<'PY'
import sys, gguf
from gguf.scripts.gguf_new_metadata import copy_with_new_metadata, MetadataDetails
r = gguf.GGUFReader(sys.argv[1], "r")
w = gguf.GGUFWriter(sys.argv[2], arch="gemma3", endianess=r.endianess)
copy_with_new_metadata(r, w, {"gemma3.pooling_type": MetadataDetails(gguf.GGUFValueType.UINT32, int(sys.argv[3]))}, [])
PY
}
if pooled_model 1 tiny-mean >"$TMP/pm.log" 2>&1 && pooled_model 0 tiny-nopool >>"$TMP/pm.log" 2>&1 &&
   pooled_model 4 tiny-rank >>"$TMP/pm.log" 2>&1 && start_server "$TMP/l.ini"; then
  check "mean pooling (pooling_type 1): 200" \
    [ "$(code $O POST /api/embed -d '{"model":"tiny-mean","input":["Hello world","Hello world again"]}')" = 200 ]
  cp $O $TMP/mean
  code $TMP/last POST /api/embed -d '{"model":"tiny-gemma3","input":["Hello world"]}' >/dev/null
  check "  unit vectors, not the last-token vectors of the same weights" $PYTHON -c '
import json, sys
m = json.load(open(sys.argv[1]))["embeddings"]; l = json.load(open(sys.argv[2]))["embeddings"][0]
ok = len(m) == 2 and all(abs(sum(x * x for x in v) - 1) < 1e-5 for v in m)
ok = ok and sum(a * b for a, b in zip(m[0], l)) < 0.9999 and m[0] != m[1]
sys.exit(0 if ok else 1)' $TMP/mean $TMP/last
  code $TMP/mean1 POST /api/embed -d '{"model":"tiny-mean","input":"Hello world again"}' >/dev/null
  check "  batched = alone (mean pooling reads every position)" $PYTHON -c '
import json, sys
v = json.load(open(sys.argv[1]))["embeddings"][1]; w = json.load(open(sys.argv[2]))["embeddings"][0]
sys.exit(0 if all(abs(a - b) < 1e-5 for a, b in zip(v, w)) else 1)' $TMP/mean $TMP/mean1
  check "pooling none (0): 400" [ "$(code $O POST /api/embed -d '{"model":"tiny-nopool","input":"a"}')" = 400 ]
  expect_grep "  saying why" "pooling type 'none'.*one vector per" $O
  check "pooling rank (4) on /v1/embeddings: 400" [ "$(code $O POST /v1/embeddings -d '{"model":"tiny-rank","input":"a"}')" = 400 ]
  expect_grep "  saying why" 'reranker' $O
  check "server stops cleanly (pooling)" stop_server
else
  not_ok "models with pooling_type made, server started"; sed 's/^/# /' "$TMP/pm.log" | tail -5
fi

# ---- lamina embed ----
M="$TMP/models/tiny-gemma3.gguf"
check "lamina embed MODEL TEXT TEXT: one JSON line per text" sh -c "\"$LAMINA\" embed \"$M\" 'Hello world' 'b c d' -q > $TMP/cli.out"
check "  two lines, unit vectors, the server's vector for 'Hello world'" $PYTHON -c '
import json, sys
l = [json.loads(x) for x in open(sys.argv[1])]; b = json.load(open(sys.argv[2]))["embeddings"][0]
ok = len(l) == 2 and [x["index"] for x in l] == [0, 1] and all(abs(sum(v * v for v in x["embedding"]) - 1) < 1e-5 for x in l)
ok = ok and all(abs(x - y) < 1e-5 for x, y in zip(l[0]["embedding"], b))
sys.exit(0 if ok else 1)' $TMP/cli.out $TMP/one
check "lamina embed --format tsv --dimensions 4, texts from stdin" sh -c "printf 'one\ntwo\nthree\n' | \"$LAMINA\" embed \"$M\" --format tsv --dimensions 4 -q > $TMP/cli.tsv"
check "  three lines of four values" $PYTHON -c '
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
sys.exit(0 if len(rows) == 3 and all(len(r) == 4 for r in rows) else 1)' $TMP/cli.tsv
check "lamina embed --format json" sh -c "\"$LAMINA\" embed \"$M\" a b --format json -q > $TMP/cli.json"
check "  one object with two vectors" $J $TMP/cli.json 'len(d["embeddings"]) == 2'
check "lamina embed --no-truncate on a long text fails" sh -c "! \"$LAMINA\" embed \"$M\" \"$LONG\" -c 32 --no-truncate -q >/dev/null 2>$TMP/cli.err"
expect_grep "  saying why" 'more than the context length 32' $TMP/cli.err
check "lamina embed --format xml: usage error (2)" sh -c "\"$LAMINA\" embed \"$M\" a --format xml -q >/dev/null 2>&1; [ \$? -eq 2 ]"
done_testing
