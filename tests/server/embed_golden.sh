#!/bin/sh
# Embeddings of the default model against llama.cpp's
# (tests/golden/gemma3-270m-embed.json, scripts/record-golden-embed.sh):
# the engine's hidden state after the output norm at the last token, every
# text in one decode call (tests/server/embed_check.c prints each cosine):
#   tight: the cpu plugin with an f32 KV cache against llama.cpp's
#          precise configuration (`embed_check --tight ... ref` runs the
#          core reference the same way: 2.5 minutes, not in the suite);
#   exact: the core reference against llama.cpp on an F32 copy of the
#          model (exact.cases): both without 8-bit activations;
#   fast:  the cpu plugin as it runs by default against llama.cpp's default.
# Then the same vectors through `lamina serve`'s /api/embed: each cosine
# with llama.cpp's, and unit length.
. "$top_srcdir/tests/server/common.sh"
G="$S/tests/golden/gemma3-270m-embed.json"
if [ ! -s "$DEFAULT_MODEL" ]; then
  if [ "${LAMINA_REQUIRE_MODEL:-0}" = 1 ]; then not_ok "default model present at $DEFAULT_MODEL"
  else skip "default model not installed (run ./setup.sh): $DEFAULT_MODEL"; fi
  done_testing; exit $?
fi
# exact: the core reference (f32 throughout) against llama.cpp on an F32
# copy of the model (no 8-bit activations on either side): cosine >= 0.9999
run_tap "exact ref" "$B/tests/server/embed_check" --exact "$G" "$DEFAULT_MODEL" ref
run_tap "tight cpu" "$B/tests/server/embed_check" --tight "$G" "$DEFAULT_MODEL" cpu
run_tap "fast cpu" "$B/tests/server/embed_check" "$G" "$DEFAULT_MODEL" cpu

# through the server: /api/embed with every text in one request
if have_serve; then
  mkdir -p "$TMP/models"
  ln -s "$DEFAULT_MODEL" "$TMP/models/gemma3-270m-test.gguf"
  write_ini "$TMP/d.ini" "parallel = 4"
  if start_server "$TMP/d.ini"; then
    "$PYTHON" - "$G" > "$TMP/req.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
print(json.dumps({"model": "gemma3-270m-test", "input": [c["input"] for c in g["cases"]]}))
PY
    check "/api/embed of the recorded texts answers 200" \
      [ "$(code "$TMP/out" POST /api/embed -d @"$TMP/req.json")" = 200 ]
    run_tap "server" "$PYTHON" - "$G" "$TMP/out" <<'PY'
import json, math, sys
g = json.load(open(sys.argv[1])); d = json.load(open(sys.argv[2]))
cases = g["cases"]
n = 0
def out(ok, msg):
    global n
    n += 1
    print("%sok %d - %s" % ("" if ok else "not ", n, msg))
out(len(d["embeddings"]) == len(cases), "%d vectors for %d texts" % (len(d["embeddings"]), len(cases)))
out(d["prompt_eval_count"] == sum(len(c["ids"]) for c in cases), "prompt_eval_count is the tokens of all texts")
cos = []
for i, (v, c) in enumerate(zip(d["embeddings"], cases)):
    r = c["embedding"]
    nv = math.sqrt(sum(x * x for x in v)); nr = math.sqrt(sum(x * x for x in r))
    cs = sum(a * b for a, b in zip(v, r)) / (nv * nr)
    cos.append(cs)
    out(cs >= 0.995 and abs(nv - 1) < 1e-5, "text %d: cosine %.6f with llama.cpp, length %.7f" % (i, cs, nv))
cos.sort()
print("# server vs llama.cpp (default): min %.6f median %.6f" % (cos[0], (cos[len(cos)//2 - 1] + cos[len(cos)//2]) / 2))
print("1..%d" % n)
PY
    check "server stops cleanly" stop_server
  else
    not_ok "server with the default model starts"
  fi
fi
done_testing
