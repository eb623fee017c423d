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
# First, without the default model: the encoders (bert, nomic-bert) on tiny
# generated models against tests/golden/tiny-ARCH-embed.json (mean and cls,
# the core reference and the cpu plugin, then through the server).
. "$top_srcdir/tests/server/common.sh"
G="$S/tests/golden/gemma3-270m-embed.json"

# ---- the encoders (tests/golden/tiny-ARCH-embed.json, recorded by
# LAMINA_GOLDEN_TINY=ARCH scripts/record-golden-embed.sh) on generated tiny
# models, bert and nomic-bert: both poolings (mean, cls) on the core
# reference and the cpu plugin (embed_check --encoder: ids, cosine >= 0.999,
# lengths, batching, refusals), then through lamina serve; bert also with
# q8_0 matrices (tests/golden/tiny-bert-q8_0-embed.json, LAMINA_GOLDEN_TYPE=q8_0)
if "$PYTHON" -c 'import gguf' 2>/dev/null; then
  mkdir -p "$TMP/bert"
  for at in bert:f32 nomic-bert:f32 bert:q8_0; do
  arch=${at%:*} ty=${at#*:}
  if [ $ty = f32 ]; then BG="$S/tests/golden/tiny-$arch-embed.json" name=$arch
  else BG="$S/tests/golden/tiny-$arch-$ty-embed.json" name=$arch-$ty; fi
  for pool in mean cls; do
    f="$TMP/bert/tiny-$name-$pool.gguf"
    if ! "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch $arch --type $ty --seed 1 --pooling $pool \
         --out "$f" >"$TMP/gen.log" 2>&1; then
      not_ok "$name $pool: generate the model"; sed 's/^/# /' "$TMP/gen.log"; continue
    fi
    want=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["model_sha256"])' "$BG" $pool)
    got=$(sha256sum "$f" | cut -d' ' -f1)
    [ "$want" = "$got" ] || diag "$name $pool: the generated file differs from the one recorded ($got, recorded" \
      "$want): if the generator changed on purpose, record again (LAMINA_GOLDEN_TINY=$arch" \
      "LAMINA_GOLDEN_TYPE=$ty scripts/record-golden-embed.sh)"
    run_tap "$name $pool ref" "$B/tests/server/embed_check" --encoder "$BG" "$f" ref $pool
    run_tap "$name $pool cpu" "$B/tests/server/embed_check" --encoder "$BG" "$f" cpu $pool
  done
  done
  # lamina embed on a CLS-pooled encoder: llama.cpp's vectors for the
  # recorded texts, as unit vectors
  if [ -s "$TMP/bert/tiny-bert-cls.gguf" ]; then
    BG="$S/tests/golden/tiny-bert-embed.json"
    "$PYTHON" -c 'import json, sys; print("\n".join(c["input"] for c in json.load(open(sys.argv[1]))["cls"]["cases"] if "\n" not in c["input"] and c["input"].strip()))' \
      "$BG" > "$TMP/bcli.txt"
    check "lamina embed on a CLS-pooled bert" sh -c '"$1" embed "$2" -q < "$3" > "$4" 2>"$4.err"' \
      _ "$LAMINA" "$TMP/bert/tiny-bert-cls.gguf" "$TMP/bcli.txt" "$TMP/bcli.out"
    check "  llama.cpp's vectors (cosine >= 0.999), unit length" "$PYTHON" -c '
import json, math, sys
g = {c["input"]: c["embedding"] for c in json.load(open(sys.argv[1]))["cls"]["cases"]}
texts = open(sys.argv[2]).read().split("\n")[:-1]
got = [json.loads(x)["embedding"] for x in open(sys.argv[3])]
assert len(got) == len(texts) > 0, (len(got), len(texts))
for t, v in zip(texts, got):
    w = g[t]
    cos = sum(a * b for a, b in zip(v, w)) / math.sqrt(sum(a * a for a in v) * sum(b * b for b in w))
    assert cos >= 0.999 and abs(math.sqrt(sum(a * a for a in v)) - 1) < 1e-4, (t, cos)' "$BG" "$TMP/bcli.txt" "$TMP/bcli.out"
  fi
  # through the server: /api/embed and /v1/embeddings (unit vectors), the
  # legacy /api/embeddings (as computed), /api/show's capabilities, and
  # generation refused with the reason
  if have_serve && command -v curl >/dev/null && [ -s "$TMP/bert/tiny-bert-cls.gguf" ] &&
     [ -s "$TMP/bert/tiny-nomic-bert-mean.gguf" ]; then
    mkdir -p "$TMP/models"
    for f in "$TMP"/bert/*.gguf; do ln -sf "$f" "$TMP/models/"; done
    write_ini "$TMP/b.ini" "parallel = 3"
    if start_server "$TMP/b.ini"; then
      for am in bert:mean bert:cls nomic-bert:mean; do
        arch=${am%:*} pool=${am#*:}
        BG="$S/tests/golden/tiny-$arch-embed.json"
        "$PYTHON" - "$BG" $pool $arch > "$TMP/breq.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))[sys.argv[2]]
print(json.dumps({"model": "tiny-%s-%s" % (sys.argv[3], sys.argv[2]), "input": [c["input"] for c in g["cases"]]}))
PY
        check "$arch $pool: /api/embed answers 200" [ "$(code "$TMP/bo" POST /api/embed -d @"$TMP/breq.json")" = 200 ]
        check "$arch $pool: /v1/embeddings answers 200" \
          [ "$(code "$TMP/bv" POST /v1/embeddings -d @"$TMP/breq.json")" = 200 ]
        "$PYTHON" - "$BG" $pool $arch > "$TMP/breq1.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))[sys.argv[2]]
print(json.dumps({"model": "tiny-%s-%s" % (sys.argv[3], sys.argv[2]), "prompt": g["cases"][-1]["input"]}))
PY
        check "$arch $pool: /api/embeddings answers 200" \
          [ "$(code "$TMP/bl" POST /api/embeddings -d @"$TMP/breq1.json")" = 200 ]
        run_tap "$arch $pool server" "$PYTHON" - "$BG" $pool "$TMP/bo" "$TMP/bv" "$TMP/bl" <<'PY'
import json, math, sys
g = json.load(open(sys.argv[1]))[sys.argv[2]]
d, v, l = (json.load(open(p)) for p in sys.argv[3:6])
cases = g["cases"]
n = 0
def out(ok, msg):
    global n
    n += 1
    print("%sok %d - %s" % ("" if ok else "not ", n, msg))
def cos(a, b):
    na = math.sqrt(sum(x * x for x in a)); nb = math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b)) / (na * nb), na, nb
out(len(d["embeddings"]) == len(cases), "/api/embed: %d vectors for %d texts" % (len(d["embeddings"]), len(cases)))
out(d["prompt_eval_count"] == sum(len(c["ids"]) for c in cases), "prompt_eval_count is the tokens of all texts")
worst = 1.0
for i, (e, o, c) in enumerate(zip(d["embeddings"], v["data"], cases)):
    cs, ne, _ = cos(e, c["embedding"])
    co, no, _ = cos(o["embedding"], c["embedding"])
    worst = min(worst, cs, co)
    out(cs >= 0.999 and co >= 0.999 and abs(ne - 1) < 1e-5 and abs(no - 1) < 1e-5,
        "text %d: /api/embed cosine %.7f, /v1/embeddings %.7f with llama.cpp, unit length" % (i, cs, co))
cs, nl, nr = cos(l["embedding"], cases[-1]["embedding"])
out(cs >= 0.999 and abs(nl / nr - 1) < 0.005, "/api/embeddings: cosine %.7f, length %.4f as llama.cpp's %.4f" % (cs, nl, nr))
print("# server vs llama.cpp: min cosine %.7f" % worst)
print("1..%d" % n)
PY
      done
      check "bert: /api/show lists only the embedding capability" sh -c '
        [ "$(curl -s -o "$1" -w "%{http_code}" -X POST "$2/api/show" -d "{\"model\": \"tiny-bert-cls\"}")" = 200 ] &&
        "$3" -c "import json, sys; c = json.load(open(sys.argv[1]))[\"capabilities\"]; assert c == [\"embedding\"], c" "$1"' \
        _ "$TMP/bshow" "$URL" "$PYTHON"
      check "bert: /api/generate is a 400" \
        [ "$(code "$TMP/bgen" POST /api/generate -d '{"model": "tiny-bert-mean", "prompt": "Hello", "stream": false}')" = 400 ]
      expect_grep "bert: the reason names the encoder" "is an encoder \\(bert\\).*cannot generate text" "$TMP/bgen"
      check "bert: /api/chat is a 400" \
        [ "$(code "$TMP/bchat" POST /api/chat -d '{"model": "tiny-bert-cls", "messages": [{"role": "user", "content": "Hi"}], "stream": false}')" = 400 ]
      expect_grep "bert: the chat reason names the encoder" "is an encoder \\(bert\\)" "$TMP/bchat"
      check "bert: /v1/chat/completions is a 400" \
        [ "$(code "$TMP/bochat" POST /v1/chat/completions -d '{"model": "tiny-bert-mean", "messages": [{"role": "user", "content": "Hi"}]}')" = 400 ]
      expect_grep "bert: the OpenAI chat reason names the encoder" "is an encoder \\(bert\\)" "$TMP/bochat"
      check "server with the bert models stops cleanly" stop_server
    else
      not_ok "server with the tiny bert models starts"; sed 's/^/# /' "$TMP/server.log" | tail -20
    fi
  fi
else
  skip "python gguf package missing: cannot generate the tiny bert model"
fi

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
