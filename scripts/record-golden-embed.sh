#!/usr/bin/env bash
# record-golden-embed.sh - record llama.cpp's embeddings of a few varied
# texts into tests/golden/gemma3-270m-embed.json (compared with lamina's by
# tests/server/embed_golden.sh: cosine similarity per vector).  Three
# recordings of the same texts: "cases" (llama.cpp's default configuration),
# "precise.cases" (f32 KV cache, no flash attention) and "exact.cases" (the
# same on an F32 copy of the model: no 8-bit activations).
#
# llama.cpp's embeddings API: context params embeddings=true, pooling_type
# LAST (what llama.cpp and Ollama use for a decoder model whose file has no
# <arch>.pooling_type, like Gemma 3 270M), one llama_decode per text,
# llama_get_embeddings_seq: the final hidden state after output_norm at the
# last position, not normalised.  Default configuration otherwise (f16 KV
# cache, flash attention auto, CPU).
#
# The dump tool (scripts/peer/dump_logits.c, mode embed) is compiled into a
# temporary directory against the peer's libllama (scripts/peer-build.sh
# must have built it: .peer/build/bin/libllama.so); .peer/bin is left
# alone.
#
# LAMINA_GOLDEN_TINY=bert (or nomic-bert) records an encoder instead, into
# tests/golden/tiny-ARCH-embed.json (checked by tests/server/embed_golden.sh
# through tests/server/embed_check.c --encoder and lamina serve): the model
# tests/tools/make_tiny_model.py --arch ARCH --type f32 --seed 1 writes, once
# with --pooling mean and once with --pooling cls (the same weights), and
# llama.cpp's embeddings of a set of texts with that pooling ("mean" and
# "cls": model, settings and cases; a BERT context has no KV cache, so there
# is no second configuration to record).  LAMINA_GOLDEN_TYPE=q8_0 (any
# --type of the generator) records the same with quantized matrices into
# tests/golden/tiny-ARCH-TYPE-embed.json (llama.cpp then rounds the
# activations to 8 bits for its dot products, as lamina's cpu plugin does).
#
# Environment:
#   LAMINA_GOLDEN_TINY  bert or nomic-bert: the tiny encoder mode above
#   LAMINA_GOLDEN_TYPE  the tiny encoder's weight type (default f32)
#   LAMINA_MODEL     GGUF to use (default: Gemma 3 270M Q4_K_M where setup.sh puts it)
#   LAMINA_PEER_DIR  the peer directory (default .peer)
#   LAMINA_GOLDEN_THREADS  threads for the dump (default 2)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER_DIR=${LAMINA_PEER_DIR:-$ROOT/.peer}
case $PEER_DIR in /*) ;; *) PEER_DIR=$ROOT/$PEER_DIR ;; esac
OUT=$ROOT/tests/golden/gemma3-270m-embed.json
THREADS=${LAMINA_GOLDEN_THREADS:-2}
TINY=${LAMINA_GOLDEN_TINY:-}
TYPE=${LAMINA_GOLDEN_TYPE:-f32}
case $TYPE in *[!a-z0-9_]*|"") echo "record-golden-embed: LAMINA_GOLDEN_TYPE=$TYPE is not a type name" >&2; exit 1 ;; esac
[ "$TYPE" = f32 ] || [ -n "$TINY" ] || { echo "record-golden-embed: LAMINA_GOLDEN_TYPE needs LAMINA_GOLDEN_TINY" >&2; exit 1; }
case $TINY in
  "") MODEL=${LAMINA_MODEL:-${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models/gemma-3-270m-q4_k_m.gguf}
      [ -f "$MODEL" ] || { echo "record-golden-embed: model not found: $MODEL (run ./setup.sh)" >&2; exit 1; } ;;
  bert|nomic-bert) if [ "$TYPE" = f32 ]; then OUT=$ROOT/tests/golden/tiny-$TINY-embed.json
                   else OUT=$ROOT/tests/golden/tiny-$TINY-$TYPE-embed.json; fi ;;
  *) echo "record-golden-embed: LAMINA_GOLDEN_TINY=$TINY: only bert and nomic-bert are known" >&2; exit 1 ;;
esac

SDIST=$(ls "$PEER_DIR"/llama_cpp_python-*.tar.gz 2>/dev/null | head -n1 || true)
[ -n "$SDIST" ] || { echo "record-golden-embed: no llama-cpp-python sdist in $PEER_DIR (run scripts/peer-build.sh)" >&2; exit 1; }
LCP_VERSION=$(basename "$SDIST" .tar.gz); LCP_VERSION=${LCP_VERSION#llama_cpp_python-}
LLAMA_SRC=$PEER_DIR/llama_cpp_python-$LCP_VERSION/vendor/llama.cpp
LIBDIR=$PEER_DIR/build/bin
[ -e "$LIBDIR/libllama.so" ] || { echo "record-golden-embed: $LIBDIR/libllama.so missing (run scripts/peer-build.sh)" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
gcc -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
    -I"$LLAMA_SRC/include" -I"$LLAMA_SRC/ggml/include" \
    "$ROOT/scripts/peer/dump_logits.c" -o "$WORK/dump_logits" \
    -L"$LIBDIR" -lllama -lggml -lggml-base -lm -Wl,-rpath,"$LIBDIR"

if [ -n "$TINY" ]; then
  PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
  GEN="tests/tools/make_tiny_model.py --arch $TINY --type $TYPE --seed 1"
  python3 - "$WORK/texts.hex" <<'EOF'
import sys
TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Once upon a time there was a little cat that lived in a house near the river.",
    "MACHINE learning models predict the next token; layers of attention transform the hidden state!",
    "We write the numbers 0 1 2 3 4 5 6 7 8 9 and 10, 42, 100.",
    "A zebra in Tokyo (東京) is not in this vocabulary.",
    ("Every morning the cat would walk to the water and look at the fish. The fish were happy and the sun "
     "was warm. She said: \"It is time to go home.\" They went home and had dinner together. In the beginning "
     "the universe was created. This has made a lot of people very angry and been widely regarded as a bad "
     "move. Good night, and good luck."),
]
with open(sys.argv[1], "w") as f:
    for t in TEXTS:
        f.write(t.encode("utf-8").hex() + "\n")
EOF
  for pool in mean cls; do
    (cd "$ROOT" && "$PYTHON" $GEN --pooling $pool --out "$WORK/tiny-$pool.gguf") >/dev/null
    "$WORK/dump_logits" embed "$WORK/tiny-$pool.gguf" "$WORK/texts.hex" --threads "$THREADS" \
        --pooling $pool > "$WORK/$pool.json"
  done
  PYTHONPATH="$ROOT/scripts/peer" python3 - "$WORK" "$OUT" "$SDIST" "$LCP_VERSION" "$PEER_DIR/peer-version.txt" \
      "$ROOT/tests/golden/tiny-llama-logits.json" "$GEN" "$TINY" "$TYPE" <<'EOF'
import sys, os, json, datetime, platform
from provenance import sha256, peer_versions, peer_commit
work, out, sdist, lcp, verfile, other_golden, gen, arch, wtype = sys.argv[1:10]

ver = peer_versions(verfile)
sdist_sha = sha256(sdist)
commit, commit_date = peer_commit(ver, sdist_sha, other_golden)
res = {"provenance": {
    "generator": "scripts/record-golden-embed.sh (LAMINA_GOLDEN_TINY=%s%s)" % (
        arch, "" if wtype == "f32" else " LAMINA_GOLDEN_TYPE=%s" % wtype),
    "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "peer": "llama.cpp (vendor/llama.cpp of PyPI sdist llama-cpp-python==%s)" % lcp,
    "llama_cpp_commit": commit,
    "llama_cpp_commit_date": commit_date,
    "sdist_sha256": sdist_sha,
    "build": ("scripts/peer/dump_logits (lamina) mode embed, linked to libllama built by scripts/peer-build.sh: "
              "CMAKE_BUILD_TYPE=Release BUILD_SHARED_LIBS=ON GGML_NATIVE=ON LLAMA_CURL=OFF, CPU backend only"),
    "host": "%s %s" % (platform.system(), platform.machine()),
}}
for pool in ("mean", "cls"):
    path = os.path.join(work, "tiny-%s.gguf" % pool)
    d = json.load(open(os.path.join(work, "%s.json" % pool)))
    res[pool] = {"model_made_by": "%s --pooling %s" % (gen, pool), "model_sha256": sha256(path),
                 "model_size_bytes": os.path.getsize(path), "tool": d["tool"], "settings": d["settings"],
                 "cases": d["cases"]}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(res, f, indent=1, ensure_ascii=False)
    f.write("\n")
os.replace(tmp, out)
print("wrote %s: %d texts, pooling mean and cls" % (out, len(res["mean"]["cases"])))
EOF
  exit 0
fi

# ---- the texts (hex, one per line) ---------------------------------------
python3 - "$WORK/texts.hex" <<'EOF'
import sys
TEXTS = [
    "Hello world",
    "The capital of France is Paris.",
    "Why is the sky blue? Rayleigh scattering of sunlight by the molecules of the air.",
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n",
    "Le chat dort sur le canapé pendant que la pluie tombe.",
    "東京は日本の首都です。",
    "1 2 3 4 5 6 7 8 9 10",
    ("The history of the printing press is a story of slow change followed by sudden revolution. "
     "For centuries, books in Europe were copied by hand, usually by monks working in quiet rooms, "
     "and a single volume could take months to finish. When Johannes Gutenberg combined movable metal "
     "type with an oil-based ink and a screw press around 1440, the cost of making books fell sharply."),
]
with open(sys.argv[1], "w") as f:
    for t in TEXTS:
        f.write(t.encode("utf-8").hex() + "\n")
EOF

"$WORK/dump_logits" embed "$MODEL" "$WORK/texts.hex" --threads "$THREADS" --pooling last > "$WORK/embed.json"
# the same in llama.cpp's most precise configuration (f32 KV cache, no
# flash attention): llama.cpp's own default and precise vectors differ by
# cosines of 0.997 to 0.9996 on these texts, so the tight comparison
# (lamina with an f32 KV cache) is against this one
"$WORK/dump_logits" embed "$MODEL" "$WORK/texts.hex" --threads "$THREADS" --pooling last \
    --flash-attn off --kv-type f32 > "$WORK/precise.json"

# the exact reference: the same on a copy of the model with every weight
# dequantized to F32 (scripts/peer/dequantize_gguf.py), so llama.cpp rounds
# no activation to 8 bits either; lamina's core reference (f32 throughout)
# is compared with this one (tests/engine/embed_exact.sh)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
"$PYTHON" "$ROOT/scripts/peer/dequantize_gguf.py" "$MODEL" "$WORK/f32.gguf" >/dev/null
"$WORK/dump_logits" embed "$WORK/f32.gguf" "$WORK/texts.hex" --threads "$THREADS" --pooling last \
    --flash-attn off --kv-type f32 > "$WORK/exact.json"

# ---- provenance ------------------------------------------------------------
PYTHONPATH="$ROOT/scripts/peer" python3 - "$WORK/embed.json" "$WORK/precise.json" "$OUT" "$MODEL" "$SDIST" "$LCP_VERSION" "$PEER_DIR/peer-version.txt" \
    "$ROOT/tests/golden/gemma3-270m-logits.json" "$WORK/exact.json" <<'EOF'
import sys, os, json, datetime, platform
from provenance import sha256, peer_versions, peer_commit
raw, precise, out, model, sdist, lcp, verfile, logits_golden, exact = sys.argv[1:10]

ver = peer_versions(verfile)
sdist_sha = sha256(sdist)
commit, commit_date = peer_commit(ver, sdist_sha, logits_golden)
d = json.load(open(raw))
prov = {
    "generator": "scripts/record-golden-embed.sh",
    "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "model_file": os.path.basename(model),
    "model_sha256": sha256(model),
    "model_size_bytes": os.path.getsize(model),
    "peer": "llama.cpp (vendor/llama.cpp of PyPI sdist llama-cpp-python==%s)" % lcp,
    "llama_cpp_commit": commit,
    "llama_cpp_commit_date": commit_date,
    "sdist_sha256": sdist_sha,
    "build": ("scripts/peer/dump_logits (lamina) mode embed, linked to libllama built by scripts/peer-build.sh: "
              "CMAKE_BUILD_TYPE=Release BUILD_SHARED_LIBS=ON GGML_NATIVE=ON LLAMA_CURL=OFF, CPU backend only"),
    "host": "%s %s" % (platform.system(), platform.machine()),
}
res = {"provenance": prov}
res.update(d)
pd = json.load(open(precise))
res["precise"] = {"settings": pd["settings"], "cases": pd["cases"]}
ed = json.load(open(exact))
res["exact"] = {"model": "every weight dequantized to F32 (scripts/peer/dequantize_gguf.py)",
                "settings": ed["settings"], "cases": ed["cases"]}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(res, f, indent=1, ensure_ascii=False)
    f.write("\n")
os.replace(tmp, out)
print("wrote %s: %d texts, n_embd %d" % (out, len(d["cases"]), d["tool"]["n_embd"]))
EOF
