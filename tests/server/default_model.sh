#!/bin/sh
# The real default model (Gemma 3 270M, installed by ./setup.sh) behind
# `lamina serve`: the ollama and openai clients get whole and streamed
# answers, /api/ps shows every layer on the cpu backend, a greedy answer
# is exactly the one `lamina run --temp 0` prints for the same prompt (and
# starts "The French capital city is Paris."), and four
# concurrent requests are decoded in shared batches (steps that ran
# several sequences at once).  Skipped when the model is absent,
# unless LAMINA_REQUIRE_MODEL=1.
. "$top_srcdir/tests/server/common.sh"
need_serve
if [ ! -s "$DEFAULT_MODEL" ]; then
  if [ "${LAMINA_REQUIRE_MODEL:-0}" = 1 ]; then not_ok "default model present at $DEFAULT_MODEL"
  else skip "default model not installed (run ./setup.sh): $DEFAULT_MODEL"; fi
  done_testing; exit $?
fi
need_clients
export LAMINA_MODELS=$(dirname "$DEFAULT_MODEL")
printf '[scheduler]\nbackends = cpu\n[server]\nlisten = 127.0.0.1:0\nparallel = 4\nn_ctx = 512\n' > "$TMP/d.ini"
# the CLI's greedy answer, to compare the served one with (the CLI ends it
# with a newline)
Q="What is the capital of France?"
"$LAMINA" --config "$TMP/d.ini" run -q gemma3-270m "$Q" --temp 0 -n 12 >"$TMP/cli.out" 2>"$TMP/cli.err" ||
  { not_ok "lamina run --temp 0 -n 12 (the answer to compare with)"; sed 's/^/#   /' "$TMP/cli.err"; done_testing; exit 1; }
start_server "$TMP/d.ini" --preload gemma3-270m || { not_ok "server starts with the default model"; done_testing; exit 1; }
for i in $(seq 1200); do grep -q 'loaded gemma3-270m' "$SERVER_LOG" && break; sleep 0.1; done
expect_grep "server starts and loads gemma3-270m" 'loaded gemma3-270m \(gemma3, 18 layers, 4 sequences' "$SERVER_LOG"
run_tap "gemma3-270m" "$PYTHON" "$S/tests/server/pyclients.py" "$URL" --model gemma3-270m --quick
O=$TMP/o
check "/api/ps" [ "$(code $O GET /api/ps)" = 200 ]
check "  all 18 layers on the cpu backend" "$PYTHON" "$S/tests/server/jq.py" $O \
  'd["models"][0]["name"] == "gemma3-270m" and d["models"][0]["backends"][0]["layers"] == 18 and d["models"][0]["backends"][0]["share"] == 1.0'
# the greedy answer: the CLI's, token for token, and the model's own knowledge
check "greedy completion" [ "$(code $O POST /api/generate -d "{\"model\":\"gemma3-270m\",\"prompt\":\"$Q\",\"stream\":false,\"options\":{\"num_predict\":12,\"temperature\":0}}")" = 200 ]
"$PYTHON" - "$O" "$TMP/cli.out" > "$TMP/cmp.out" 2>&1 <<'PY'
import json, sys
served = json.load(open(sys.argv[1]))
cli = open(sys.argv[2], encoding="utf-8").read()
assert cli.endswith("\n"), "CLI output %r" % cli
cli = cli[:-1]
r = served["response"]
print("served %r (%d tokens)" % (r, served["eval_count"]))
print("cli    %r" % cli)
assert served["eval_count"] == 12, "eval_count %r" % served["eval_count"]
assert r == cli, "served and CLI answers differ"
print("same")
assert r.lstrip("\n").startswith("The French capital city is Paris."), "unexpected answer"
print("expected")
PY
sed 's/^/# /' "$TMP/cmp.out"
expect_grep "  the served answer equals lamina run --temp 0's, token for token" '^same$' "$TMP/cmp.out"
expect_grep "  and starts 'The French capital city is Paris.'" '^expected$' "$TMP/cmp.out"
shared0=$(metric 'lamina_decode_steps_shared_total{model="gemma3-270m"}')
pids=
for i in 1 2 3 4; do
  curl -s -o "$TMP/c$i" "$URL/v1/completions" -d "{\"model\":\"gemma3-270m\",\"prompt\":\"Story number $i:\",\"max_tokens\":24,\"temperature\":0}" &
  pids="$pids $!"
done
for p in $pids; do wait $p; done
n_ok=0
for i in 1 2 3 4; do
  "$PYTHON" "$S/tests/server/jq.py" "$TMP/c$i" 'd["usage"]["completion_tokens"] >= 1' 2>/dev/null && n_ok=$((n_ok+1))
done
check "four concurrent completions all answered ($n_ok)" [ $n_ok = 4 ]
shared=$(( $(metric 'lamina_decode_steps_shared_total{model="gemma3-270m"}') - shared0 ))
diag "decode steps running two or more of the four requests together: $shared"
check "  decoded together: steps shared by several sequences" [ "$shared" -ge 1 ]
check "server stops cleanly" stop_server
done_testing
