#!/bin/sh
# One sequence slot and a queue of one: a long generation holds the slot,
# the next request waits, the one after is refused with 503 and
# Retry-After; a client that disconnects (streamed or not, curl or the
# ollama client) cancels its sequence and the slot goes to the queue.
# Progress is followed through /metrics; every wait is bounded.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
setup "tiny models generated" make_models
write_ini "$TMP/q.ini" "parallel = 1" "queue = 1" "n_ctx = 32768"
start_server "$TMP/q.ini" || { not_ok "server starts"; done_testing; exit 1; }
diag "server listening on $URL"
ACT='lamina_active_sequences{model="tiny-long"}'
QD='lamina_queue_depth{model="tiny-long"}'
LONG='{"model":"tiny-long","prompt":"Hi","options":{"num_predict":30000,"temperature":0}}'
# wait_lines FILE N: until FILE has N lines (bounded)
wait_lines() { local i; for i in $(seq 600); do [ "$(wc -l < "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }

# A holds the only slot (greedy: it does not stop by itself before 30000 tokens)
curl -sN "$URL/api/generate" -d "$LONG" > "$TMP/a" 2>/dev/null &
A=$!
check "A streams" wait_lines "$TMP/a" 3
check "A holds the slot" wait_metric "$ACT" 1
# B waits in the queue
curl -s -o "$TMP/b" -w '%{http_code}' "$URL/api/generate" \
  -d '{"model":"tiny-long","prompt":"Hello","stream":false,"options":{"num_predict":3,"temperature":0}}' > "$TMP/b.code" 2>/dev/null &
Bp=$!
check "B is queued" wait_metric "$QD" 1
# C finds the queue full
st=$(curl -s -D "$TMP/c.h" -o "$TMP/c" -w '%{http_code}' "$URL/api/generate" -d "$LONG")
check "C: 503 while the slot and the queue are taken" [ "$st" = 503 ]
expect_grep "  with Retry-After" '^Retry-After: [1-9][0-9]*' "$TMP/c.h"
expect_grep "  and a clear error" '"error":"queue full' "$TMP/c"
st=$(curl -s -D "$TMP/c.h" -o "$TMP/c" -w '%{http_code}' "$URL/v1/completions" -d '{"model":"tiny-long","prompt":"x"}')
check "the OpenAI API too: 503" [ "$st" = 503 ]
expect_grep "  with an OpenAI error object" '"error":\{"message":"queue full[^"]*","type":"overloaded_error"' "$TMP/c"
check "A is still streaming" kill -0 $A
# A's client goes away: its sequence is cancelled, B gets the slot
kill $A; wait $A 2>/dev/null
for i in $(seq 600); do kill -0 $Bp 2>/dev/null || break; sleep 0.1; done
wait $Bp
check "B completes after A's client disconnected" [ "$(cat "$TMP/b.code")" = 200 ]
check "  with a whole answer" "$PYTHON" "$S/tests/server/jq.py" "$TMP/b" 'd["done"] and limited(d["eval_count"], 3, d["done_reason"])'
check "the slot is free again" wait_metric "$ACT" 0
check "the queue is empty" wait_metric "$QD" 0
check "metrics: a cancelled request" [ "$(metric 'lamina_events_total{event="cancelled"}')" -ge 1 ]
check "metrics: queue-full refusals" [ "$(metric 'lamina_events_total{event="queue_full"}')" = 2 ]

# a non-streamed request whose client goes away is cancelled too
curl -s -o /dev/null "$URL/api/generate" \
  -d '{"model":"tiny-long","prompt":"Hi","stream":false,"options":{"num_predict":30000,"temperature":0}}' &
D=$!
check "a long non-streamed request holds the slot" wait_metric "$ACT" 1
kill $D; wait $D 2>/dev/null
check "its disconnect frees the slot" wait_metric "$ACT" 0

# the OpenAI stream, and the ollama client stopping mid-stream
curl -sN "$URL/v1/chat/completions" -d '{"model":"tiny-long","messages":[{"role":"user","content":"Hi"}],"max_tokens":30000,"temperature":0,"stream":true}' > "$TMP/e" 2>/dev/null &
E=$!
check "an SSE stream runs" wait_lines "$TMP/e" 4
kill $E; wait $E 2>/dev/null
check "its disconnect frees the slot" wait_metric "$ACT" 0
if "$PYTHON" -c 'import ollama' 2>/dev/null; then
  "$PYTHON" - "$URL" > "$TMP/py" 2>&1 <<'PY'
import os, sys, ollama
c = ollama.Client(host=sys.argv[1])
n = 0
for part in c.generate(model="tiny-long", prompt="Hi", stream=True, options={"num_predict": 30000, "temperature": 0}):
    n += 1
    if n == 5:
        print("read", n, flush=True)
        os._exit(0)          # the client process ends with the stream open
PY
  expect_grep "the ollama client read part of a stream" '^read 5' "$TMP/py"
  check "the client ending frees the slot" wait_metric "$ACT" 0
else
  skip "python package ollama missing"
fi
check "a request after all that completes" [ "$(code "$TMP/f" POST /api/generate -d '{"model":"tiny-long","prompt":"x","stream":false,"options":{"num_predict":2}}')" = 200 ]
check "server stops cleanly (no leaks, no sanitizer reports)" stop_server
done_testing
