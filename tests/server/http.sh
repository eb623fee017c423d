#!/bin/sh
# `lamina serve` driven with curl: every endpoint, streaming and not, and
# every kind of bad request (malformed JSON, wrong types, unknown model,
# path traversal, oversized and deep bodies, unsupported features, wrong
# methods and paths, browser origins); the server answers each with a
# complete reply or a clear error, and stays up.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
setup "tiny models generated" make_models
write_ini "$TMP/l.ini" "parallel = 2" "queue = 4" "cors_origins = http://app.example:3000" \
  "max_body_kib = 64"
start_server "$TMP/l.ini" || { not_ok "server starts"; done_testing; exit 1; }
diag "server listening on $URL"
J="$PYTHON $S/tests/server/jq.py"
O=$TMP/out

# ---- liveness, version, listing ----
check "GET / answers 200" [ "$(code $O GET /)" = 200 ]
expect_grep "GET / says it is running" 'lamina is running' $O
check "HEAD / answers 200" [ "$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/")" = 200 ]
check "GET /api/version" [ "$(code $O GET /api/version)" = 200 ]
check "version field" $J $O 'd["version"] != ""'
check "GET /api/tags" [ "$(code $O GET /api/tags)" = 200 ]
check "tags list the tiny models with details" $J $O \
  'set(m["name"] for m in d["models"]) >= {"tiny-gemma3", "tiny-llama", "tiny-long"} and all(m["details"]["format"] == "gguf" and m["digest"].startswith("sha256:") and m["size"] > 0 for m in d["models"])'
check "GET /v1/models" [ "$(code $O GET /v1/models)" = 200 ]
check "models in OpenAI form" $J $O 'd["object"] == "list" and "tiny-llama" in [m["id"] for m in d["data"]]'
check "GET /v1/models/tiny-llama" [ "$(code $O GET /v1/models/tiny-llama)" = 200 ]
check "GET /v1/models/nope is 404" [ "$(code $O GET /v1/models/nope)" = 404 ]
check "POST /api/show" [ "$(code $O POST /api/show -d '{"model":"tiny-gemma3"}')" = 200 ]
check "show: details and model_info" $J $O 'd["details"]["family"] == "gemma3" and d["model_info"]["general.architecture"] == "gemma3" and d["model_info"]["general.parameter_count"] > 0'
check "show of an unknown model is 404" [ "$(code $O POST /api/show -d '{"model":"nope"}')" = 404 ]

# ---- /api/generate ----
check "generate, not streamed" [ "$(code $O POST /api/generate -d '{"model":"tiny-gemma3","prompt":"Hello","stream":false,"options":{"num_predict":8,"temperature":0}}')" = 200 ]
check "generate: one object with timings and counts" $J $O \
  'd["done"] and limited(d["eval_count"], 8, d["done_reason"]) and d["prompt_eval_count"] > 0 and d["total_duration"] > 0 and d["eval_duration"] > 0 and d["prompt_eval_duration"] > 0 and "load_duration" in d and isinstance(d["response"], str) and len(d["context"]) >= d["prompt_eval_count"] + d["eval_count"]'
cp $O $TMP/gen1
check "generate, streamed (the default)" [ "$(code $O POST /api/generate -d '{"model":"tiny-gemma3","prompt":"Hello","options":{"num_predict":8,"temperature":0}}')" = 200 ]
check "stream: NDJSON lines, one final with done" $J --lines $O \
  'len(d) >= 2 and all(not x["done"] for x in d[:-1]) and d[-1]["done"] and limited(d[-1]["eval_count"], 8, d[-1]["done_reason"])'
check "stream: same greedy text as not streamed" $PYTHON -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
whole = json.load(open(sys.argv[2]))
sys.exit(0 if "".join(x.get("response", "") for x in lines) == whole["response"] else 1)' $O $TMP/gen1
check "context continues a generation" [ "$(code $O POST /api/generate -d "{\"model\":\"tiny-gemma3\",\"prompt\":\" more\",\"stream\":false,\"context\":$($J $TMP/gen1 'print(json.dumps(d["context"]))' --print),\"options\":{\"num_predict\":3}}")" = 200 ]
check "continuation counts the context as prompt" $J $O "d['prompt_eval_count'] > $($J $TMP/gen1 'print(len(d["context"]))' --print)"
# a stop string taken from the middle of a seeded answer: the same request
# with it ends just before it (when the same request gives the same answer
# twice, as it does when batch and cache reuse change no bit of the logits;
# else only that the stop string is absent)
code $TMP/full POST /api/generate -d '{"model":"tiny-long","prompt":"Hello","stream":false,"options":{"num_predict":40,"temperature":0.7,"seed":3}}' >/dev/null
code $TMP/full2 POST /api/generate -d '{"model":"tiny-long","prompt":"Hello","stream":false,"options":{"num_predict":40,"temperature":0.7,"seed":3}}' >/dev/null
SAME=$($PYTHON -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["response"] == json.load(open(sys.argv[2]))["response"]))' $TMP/full $TMP/full2)
STOP=$($J $TMP/full '
r = d["response"]
for at in range(len(r) // 2, 0, -1):
    if r[at:at + 2].strip() and len(r[at:at + 2]) == 2 and r.find(r[at:at + 2]) == at:
        print(json.dumps({"stop": r[at:at + 2], "before": r[:at]})); break' --print)
check "a stop string from the answer" [ -n "$STOP" ]
echo "$STOP" > $TMP/stop.json
check "stop string ends the text before it" [ "$(code $O POST /api/generate -d "{\"model\":\"tiny-long\",\"prompt\":\"Hello\",\"stream\":false,\"options\":{\"num_predict\":40,\"temperature\":0.7,\"seed\":3,\"stop\":[$($J $TMP/stop.json 'print(json.dumps(d["stop"]))' --print)]}}")" = 200 ]
check "stop: reason stop, the text up to the stop string (same answer twice: $SAME)" "$PYTHON" -c '
import json, sys
d, want, same = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3] == "1"
if same:
    sys.exit(0 if d["done_reason"] == "stop" and d["response"] == want["before"] else 1)
sys.exit(0 if want["stop"] not in d["response"] else 1)' $O $TMP/stop.json "$SAME"
check "num_ctx limits the positions" [ "$(code $O POST /api/generate -d '{"model":"tiny-gemma3","prompt":"Hello","stream":false,"options":{"num_predict":100,"num_ctx":12,"temperature":0}}')" = 200 ]
check "num_ctx: stops within it" $J $O 'd["done_reason"] in ("length", "stop") and d["prompt_eval_count"] + d["eval_count"] <= 13'
check "load-only request (empty prompt)" [ "$(code $O POST /api/generate -d '{"model":"tiny-llama"}')" = 200 ]
check "load-only: done_reason load" $J $O 'd["done"] and d["done_reason"] == "load"'
check "raw prompt on the BPE model" [ "$(code $O POST /api/generate -d '{"model":"tiny-llama","prompt":"Once upon","raw":true,"stream":false,"options":{"num_predict":5}}')" = 200 ]
check "raw: text" $J $O 'd["eval_count"] >= 1 and isinstance(d["response"], str)'

# ---- /api/chat ----
check "chat, not streamed" [ "$(code $O POST /api/chat -d '{"model":"tiny-gemma3","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"stream":false,"options":{"num_predict":6}}')" = 200 ]
check "chat: assistant message and counts" $J $O 'd["message"]["role"] == "assistant" and isinstance(d["message"]["content"], str) and d["eval_count"] >= 1 and d["done"]'
check "chat, streamed" [ "$(code $O POST /api/chat -d '{"model":"tiny-gemma3","messages":[{"role":"user","content":"Hi"}],"options":{"num_predict":6}}')" = 200 ]
check "chat stream: message pieces, final done" $J --lines $O 'all(x["message"]["role"] == "assistant" for x in d) and d[-1]["done"]'
check "chat with roles out of order is 400" [ "$(code $O POST /api/chat -d '{"model":"tiny-gemma3","messages":[{"role":"assistant","content":"x"}]}')" = 400 ]
expect_grep "  and says why" 'alternate|user' $O

# ---- /api/ps and /metrics ----
check "GET /api/ps" [ "$(code $O GET /api/ps)" = 200 ]
check "ps: loaded models with size, expiry and 100% of the layers on the cpu backend" $J $O \
  'any(m["name"] == "tiny-gemma3" and m["size"] > 0 and m["size_vram"] == 0 and m["expires_at"] and sum(b["share"] for b in m["backends"]) == 1.0 and m["backends"][0]["plugin"] == "cpu" for m in d["models"])'
check "GET /metrics" [ "$(code $O GET /metrics)" = 200 ]
for m in lamina_http_requests_total lamina_prompt_tokens_total lamina_generated_tokens_total \
         lamina_time_to_first_token_seconds_bucket lamina_token_latency_seconds_bucket lamina_queue_depth \
         lamina_active_sequences lamina_model_layers lamina_plugin_status lamina_plugin_selftest_passed lamina_heap_bytes; do
  expect_grep "metrics: $m" "^$m[{ ]" $O
done
expect_grep "metrics: generate requests counted by status" '^lamina_http_requests_total\{endpoint="/api/generate",code="200"\} [1-9]' $O
expect_grep "metrics: layers of tiny-gemma3 on cpu" '^lamina_model_layers\{model="tiny-gemma3",backend="cpu[^"]*"\} 6$' $O
expect_grep "metrics: the cpu plugin passed its self-test" '^lamina_plugin_selftest_passed\{plugin="cpu",device="[^"]*"\} 1$' $O

# ---- OpenAI ----
check "chat completion" [ "$(code $O POST /v1/chat/completions -d '{"model":"tiny-gemma3","messages":[{"role":"user","content":"Hi"}],"max_tokens":5}')" = 200 ]
check "chat completion: choices, finish_reason, usage" $J $O \
  'd["object"] == "chat.completion" and d["id"].startswith("chatcmpl-") and d["choices"][0]["message"]["role"] == "assistant" and limited(d["usage"]["completion_tokens"], 5, d["choices"][0]["finish_reason"]) and d["usage"]["total_tokens"] == d["usage"]["prompt_tokens"] + d["usage"]["completion_tokens"]'
check "chat completion streamed (SSE)" [ "$(code $O POST /v1/chat/completions -d '{"model":"tiny-gemma3","messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}')" = 200 ]
check "SSE: data lines, a finish_reason, usage, [DONE]" $J --sse $O \
  'd[-1] == "[DONE]" and d[-2]["choices"] == [] and limited(d[-2]["usage"]["completion_tokens"], 5, d[-3]["choices"][0]["finish_reason"]) and d[0]["choices"][0]["delta"]["role"] == "assistant"'
check "completion" [ "$(code $O POST /v1/completions -d '{"model":"tiny-llama","prompt":"Once upon","max_tokens":4}')" = 200 ]
check "completion: text and usage" $J $O 'd["object"] == "text_completion" and isinstance(d["choices"][0]["text"], str) and d["usage"]["completion_tokens"] <= 4'
check "completion streamed" [ "$(code $O POST /v1/completions -d '{"model":"tiny-llama","prompt":"Once upon","max_tokens":4,"stream":true}')" = 200 ]
check "completion SSE ends with [DONE]" $J --sse $O 'd[-1] == "[DONE]" and d[-2]["choices"][0]["finish_reason"] in ("length", "stop")'

# ---- bad requests: each a clear error, in the API's own shape ----
bad() {  # bad DESC STATUS PATH BODY PATTERN
  local st
  st=$(code $O POST "$3" -d "$4")
  if [ "$st" = "$2" ] && grep -qE -- "$5" $O && $J $O '"error" in d' ; then ok "$1: $2"
  else not_ok "$1: expected $2 /$5/, got $st"; sed 's/^/#   /' $O | head -3; fi
}
bad "malformed JSON" 400 /api/generate '{"model":' 'invalid JSON'
bad "not an object" 400 /api/generate '[1,2]' 'must be a JSON object'
bad "empty body" 400 /api/chat '' 'empty request body'
bad "model of the wrong type" 400 /api/generate '{"model":7,"prompt":"x"}' 'model: expected a string'
bad "prompt of the wrong type" 400 /api/generate '{"model":"tiny-gemma3","prompt":["x"]}' 'prompt: expected a string'
bad "stream of the wrong type" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","stream":"yes"}' 'stream: expected true or false'
bad "options of the wrong type" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","options":[]}' 'options: expected an object'
bad "temperature of the wrong type" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","options":{"temperature":"hot"}}' 'temperature: expected a number'
bad "temperature out of range" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","options":{"temperature":-1}}' 'temperature: must be from'
bad "num_predict not an integer" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","options":{"num_predict":1.5}}' 'num_predict: expected an integer'
bad "too many stop strings" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","options":{"stop":["a","b","c","d","e","f","g","h","i"]}}' 'at most 8'
bad "messages not an array" 400 /api/chat '{"model":"tiny-gemma3","messages":"hi"}' 'messages: expected an array'
bad "message without a role" 400 /api/chat '{"model":"tiny-gemma3","messages":[{"content":"hi"}]}' 'role is required'
bad "unknown role" 400 /api/chat '{"model":"tiny-gemma3","messages":[{"role":"wizard","content":"hi"}]}' 'role: expected'
bad "missing model" 400 /api/generate '{"prompt":"x"}' 'model is required'
bad "unknown model" 404 /api/generate '{"model":"no-such-model","prompt":"x"}' "model 'no-such-model' not found"
bad "unknown model (chat)" 404 /api/chat '{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}' 'not found'
bad "path traversal in the name" 400 /api/generate '{"model":"../../etc/passwd","prompt":"x"}' 'invalid model name'
bad "absolute path as the name" 400 /api/generate '{"model":"/etc/passwd","prompt":"x"}' 'invalid model name'
bad "a .gguf file name" 404 /api/generate '{"model":"tiny-gemma3.gguf","prompt":"x"}' 'not found'
bad "structured output: unsupported keyword" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","format":{"type":"object","patternProperties":{"a":{}}}}' "keyword 'patternProperties' at \\$ is not supported"
bad "images" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","images":["aGk="]}' 'images'
bad "custom template" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","template":"{{ .Prompt }}"}' 'template'
bad "context with a bad token" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","context":[1,99999999]}' 'outside the vocabulary'
bad "prompt longer than the context" 400 /api/generate '{"model":"tiny-gemma3","prompt":"x","context":'"$($PYTHON -c 'print(list(range(3,400))*2)')"'}' 'does not fit the context'
bad "OpenAI: malformed JSON" 400 /v1/chat/completions '{' '"message":"invalid JSON'
bad "OpenAI: messages missing" 400 /v1/chat/completions '{"model":"tiny-gemma3"}' 'messages: expected a non-empty array'
bad "OpenAI: a GBNF grammar with an undefined rule" 400 /v1/completions '{"model":"tiny-gemma3","prompt":"x","grammar":"root ::= item"}' 'grammar: line 1, column 10: rule .item. is not defined'
bad "OpenAI: n > 16" 400 /v1/chat/completions '{"model":"tiny-gemma3","messages":[{"role":"user","content":"x"}],"n":17}' 'n: from 1 to 16'
bad "OpenAI: max_tokens of the wrong type" 400 /v1/completions '{"model":"tiny-llama","prompt":"x","max_tokens":"many"}' 'max_tokens: expected an integer'
bad "OpenAI: image parts" 400 /v1/chat/completions '{"model":"tiny-gemma3","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}' 'only \{'
bad "OpenAI: unknown model" 404 /v1/completions '{"model":"nope","prompt":"x"}' '"type":"not_found_error"'
bad "OpenAI: roles out of order" 400 /v1/chat/completions '{"model":"tiny-long","messages":[{"role":"assistant","content":"x"}]}' 'alternate|user'
deep=$($PYTHON -c 'print("{\"model\":\"x\",\"a\":" + "[" * 40 + "]" * 40 + "}")')
bad "JSON nested too deep" 400 /api/generate "$deep" 'nested 41 levels deep'
$PYTHON -c 'print("{\"model\":\"tiny-gemma3\",\"prompt\":\"" + "a" * 70000 + "\"}")' > $TMP/big.json
st=$(code $O POST /api/generate --data-binary @$TMP/big.json)
check "oversized body (Content-Length) is 413" [ "$st" = 413 ]
expect_grep "  and names the limit" 'max_body_kib' $O
st=$(code $O POST /api/generate -H 'Transfer-Encoding: chunked' --data-binary @$TMP/big.json)
check "oversized chunked body is 413" [ "$st" = 413 ]
check "unknown path is 404" [ "$(code $O GET /api/nothing)" = 404 ]
check "wrong method is 405" [ "$(code $O GET /api/generate)" = 405 ]

# ---- browser origins ----
st=$(curl -s -o $O -D $TMP/h -w '%{http_code}' -H 'Origin: http://app.example:3000' "$URL/api/tags")
check "allowed origin: 200" [ "$st" = 200 ]
expect_grep "  with Access-Control-Allow-Origin" '^Access-Control-Allow-Origin: http://app.example:3000' $TMP/h
st=$(curl -s -o $O -D $TMP/h -w '%{http_code}' -X OPTIONS -H 'Origin: http://app.example:3000' \
     -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type' "$URL/api/chat")
check "preflight from an allowed origin: 204" [ "$st" = 204 ]
expect_grep "  allows POST" '^Access-Control-Allow-Methods: .*POST' $TMP/h
st=$(curl -s -o $O -w '%{http_code}' -H 'Origin: http://evil.example' "$URL/api/tags")
check "other origin: 403" [ "$st" = 403 ]
st=$(curl -s -o $O -w '%{http_code}' -X OPTIONS -H 'Origin: http://evil.example' "$URL/api/chat")
check "preflight from another origin: 403" [ "$st" = 403 ]

# ---- keep_alive 0 unloads ----
check "keep_alive 0" [ "$(code $O POST /api/generate -d '{"model":"tiny-llama","prompt":"x","keep_alive":0,"stream":false,"options":{"num_predict":1}}')" = 200 ]
code $O GET /api/ps >/dev/null
check "the model is unloaded after its request" $J $O '"tiny-llama" not in [m["name"] for m in d["models"]]'
check "still up after all of it" [ "$(code $O GET /)" = 200 ]
check "server stops cleanly on SIGTERM (no leaks, no sanitizer reports)" stop_server

# ---- time limit: a long generation ends with a clear error ----
write_ini "$TMP/t.ini" "request_timeout = 1"
start_server "$TMP/t.ini" || { not_ok "server with a 1 s time limit starts"; done_testing; exit 1; }
st=$(code $O POST /api/generate -d '{"model":"tiny-long","prompt":"Hi","stream":false,"options":{"num_predict":30000,"temperature":0}}')
check "past [server] request_timeout (not streamed): 504" [ "$st" = 504 ]
expect_grep "  naming the limit" 'request_timeout' $O
st=$(code $O POST /api/generate -d '{"model":"tiny-long","prompt":"Hi","options":{"num_predict":30000,"temperature":0}}')
check "past the time limit (streamed): the stream ends with an error line" $J --lines $O '"error" in d[-1] and "request_timeout" in d[-1]["error"]'
check "metrics count the timeouts" [ "$(metric 'lamina_events_total{event="timeout"}')" = 2 ]
check "server stops cleanly" stop_server

# ---- loading and unloading within limits ----
write_ini "$TMP/m.ini" "max_models = 1" "parallel = 1" "n_ctx = 32768"
start_server "$TMP/m.ini" || { not_ok "server with max_models = 1 starts"; done_testing; exit 1; }
code $O POST /api/generate -d '{"model":"tiny-gemma3","prompt":"x","stream":false,"options":{"num_predict":2}}' >/dev/null
code $O POST /api/generate -d '{"model":"tiny-llama","prompt":"x","stream":false,"options":{"num_predict":2}}' >/dev/null
code $O GET /api/ps >/dev/null
check "max_models 1: loading a second model unloads the idle first" $J $O '[m["name"] for m in d["models"]] == ["tiny-llama"]'
expect_grep "  and the log says why" 'unloading tiny-gemma3 \(room for another model\)' "$SERVER_LOG"
check "  metrics count the unload" [ "$(metric lamina_model_unloads_total)" = 1 ]
curl -sN "$URL/api/generate" -d '{"model":"tiny-long","prompt":"Hi","options":{"num_predict":30000,"temperature":0}}' > "$TMP/busy" 2>/dev/null &
BUSY=$!
check "a long request holds tiny-long" wait_metric 'lamina_active_sequences{model="tiny-long"}' 1
st=$(curl -s -D "$TMP/h" -o $O -w '%{http_code}' "$URL/api/generate" -d '{"model":"tiny-gemma3","prompt":"x","stream":false}')
check "another model while the only one loaded is busy: 503" [ "$st" = 503 ]
expect_grep "  saying busy models hold the room" 'busy models hold' $O
expect_grep "  with Retry-After" '^Retry-After: [1-9]' "$TMP/h"
kill $BUSY; wait $BUSY 2>/dev/null
check "  the busy model is free again" wait_metric 'lamina_active_sequences{model="tiny-long"}' 0
check "  and the other model loads now" [ "$(code $O POST /api/generate -d '{"model":"tiny-gemma3","prompt":"x","stream":false,"options":{"num_predict":2}}')" = 200 ]
check "server stops cleanly" stop_server
write_ini "$TMP/b.ini" "memory_mib = 1"
start_server "$TMP/b.ini" || { not_ok "server with a 1 MiB budget starts"; done_testing; exit 1; }
st=$(code $O POST /api/generate -d '{"model":"tiny-gemma3","prompt":"x","stream":false}')
check "a model larger than the memory budget: 500" [ "$st" = 500 ]
expect_grep "  naming the budget" 'more than the memory budget of 1 MiB \(\[server\] memory_mib\)' $O
check "server stops cleanly" stop_server
done_testing
