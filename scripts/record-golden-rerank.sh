#!/usr/bin/env bash
# record-golden-rerank.sh - record llama.cpp's rerank scores for a tiny
# generated Qwen3-Reranker into tests/golden/tiny-rerank.json (reference
# data for lamina's POST /v1/rerank).  Two recordings of the same cases:
# "cases" (llama.cpp's default configuration) and "precise.cases" (f32 KV
# cache, no flash attention), as record-golden-embed.sh does.
#
# The model: tests/tools/make_tiny_model.py --arch qwen3 --type mixed
# --seed 1 --rerank (qwen3.pooling_type 4 = RANK, classifier labels
# [yes, no], tokenizer.chat_template.rerank, cls.output.weight).
#
# What llama-server does for a rerank request on such a file, reproduced
# here: the prompt is the model's "rerank" template with every "{query}"
# and "{document}" replaced by the texts (format_prompt_rerank; the
# template is read back from the GGUF, so the golden follows the file),
# tokenized with add_special=false, parse_special=true; context params
# embeddings=true, pooling_type RANK; one llama_decode per prompt;
# llama_get_embeddings_seq gives llama_model_n_cls_out floats: for Qwen3
# the softmax over cls.output.weight x (last hidden state after
# output_norm), i.e. [p(yes), p(no)].  llama-server reports the first
# (p(yes)) as the relevance score.
#
# LAMINA_GOLDEN_TINY=bert records a BERT cross-encoder instead, into
# tests/golden/tiny-bert-rerank.json: make_tiny_model.py --arch bert --type
# f32 --seed 1 --rerank (bert.pooling_type 4, one label, the pooler
# cls.weight/cls.bias and the head cls.output.weight/bias, no rerank
# template).  llama-server frames such a pair itself (format_prompt_rerank
# without a template): [BOS] query [EOS] [SEP] document [EOS] as the
# vocabulary adds them (here [CLS] query [SEP] document [SEP]), each text
# tokenized with add_special=false, parse_special=false (dump_logits
# --pairs); rank pooling on an encoder scores the first ([CLS]) token's
# final state: cls.output x tanh(cls x h + cls.bias) + cls.output.bias,
# no softmax; the relevance score is that single raw logit.  Token types
# are all 0 (llama.cpp adds token_types row 0 to every token).  A BERT
# context has no KV cache: "precise" is the same without flash attention.
#
# The dump tool (scripts/peer/dump_logits.c, mode embed --pooling rank) is
# compiled into a temporary directory against the peer's libllama
# (scripts/peer-build.sh must have built it: .peer/build/bin/libllama.so);
# .peer/bin is left alone.
#
# Environment:
#   PYTHON           python with numpy and gguf (default: .venv/bin/python, else python3)
#   LAMINA_PEER_DIR  the peer directory (default .peer)
#   LAMINA_GOLDEN_THREADS  threads for the dump (default 2)
#   LAMINA_GOLDEN_TINY     bert: the cross-encoder mode above
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER_DIR=${LAMINA_PEER_DIR:-$ROOT/.peer}
case $PEER_DIR in /*) ;; *) PEER_DIR=$ROOT/$PEER_DIR ;; esac
THREADS=${LAMINA_GOLDEN_THREADS:-2}
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
TINY=${LAMINA_GOLDEN_TINY:-}
case $TINY in
  "")   OUT=$ROOT/tests/golden/tiny-rerank.json; GEN_ARGS="--arch qwen3 --type mixed --seed 1 --rerank"
        MODEL_NAME=tiny-rerank.gguf; PAIRS= ;;
  bert) OUT=$ROOT/tests/golden/tiny-bert-rerank.json; GEN_ARGS="--arch bert --type f32 --seed 1 --rerank"
        MODEL_NAME=tiny-bert-rerank.gguf; PAIRS=--pairs ;;
  *)    echo "record-golden-rerank: LAMINA_GOLDEN_TINY=$TINY: only bert is known" >&2; exit 1 ;;
esac
MADE_BY="tests/tools/make_tiny_model.py $GEN_ARGS"   # as run below

SDIST=$(ls "$PEER_DIR"/llama_cpp_python-*.tar.gz 2>/dev/null | head -n1 || true)
[ -n "$SDIST" ] || { echo "record-golden-rerank: no llama-cpp-python sdist in $PEER_DIR (run scripts/peer-build.sh)" >&2; exit 1; }
LCP_VERSION=$(basename "$SDIST" .tar.gz); LCP_VERSION=${LCP_VERSION#llama_cpp_python-}
LLAMA_SRC=$PEER_DIR/llama_cpp_python-$LCP_VERSION/vendor/llama.cpp
LIBDIR=$PEER_DIR/build/bin
[ -e "$LIBDIR/libllama.so" ] || { echo "record-golden-rerank: $LIBDIR/libllama.so missing (run scripts/peer-build.sh)" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
gcc -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
    -I"$LLAMA_SRC/include" -I"$LLAMA_SRC/ggml/include" \
    "$ROOT/scripts/peer/dump_logits.c" -o "$WORK/dump_logits" \
    -L"$LIBDIR" -lllama -lggml -lggml-base -lm -Wl,-rpath,"$LIBDIR"

# ---- the model -------------------------------------------------------------
MODEL=$WORK/$MODEL_NAME
# shellcheck disable=SC2086
"$PY" "$ROOT/tests/tools/make_tiny_model.py" $GEN_ARGS --out "$MODEL"

# ---- the cases: query x document, prompts from the file's template, or
# (no template) the query and document lines for dump_logits --pairs ------
"$PY" - "$MODEL" "$WORK/cases.json" "$WORK/prompts.hex" <<'EOF'
import sys, json
import gguf
model, cases_out, hex_out = sys.argv[1:4]
QUERIES = [
    "What is the capital of France?",
    "How does the cat spend its mornings?",
]
DOCUMENTS = [
    # per query: plain English, then non-ASCII / very short / long (a few
    # hundred characters: the longest prompt is about 410 tokens of the
    # model's 512 context positions)
    [
        "The capital of France is Paris.",
        "Le chat dort sur le canapé pendant que la pluie tombe. 東京は日本の首都です。",
        "ok",
        ("The history of the printing press is a story of slow change followed by sudden revolution. "
         "For centuries, books in Europe were copied by hand, and a single volume could take months. "
         "Around 1440 Johannes Gutenberg combined movable metal type with a screw press."),
    ],
    [
        "Every morning the cat would walk to the water and look at the fish.",
        "Machine learning models predict the next token from the previous tokens.",
        "Die Katze schläft gern — naïve Fische, café au lait, 猫は朝に魚を見る。",
        ("Once upon a time there was a little cat that lived in a house near the river. Every morning the "
         "cat would walk to the water and look at the fish, which were happy because the sun was warm. "
         "In the evening it came home for dinner with the family."),
    ],
]
r = gguf.GGUFReader(model)
field = r.fields.get("tokenizer.chat_template.rerank")
template = field.contents() if field else None
cases = []
for q, docs in zip(QUERIES, DOCUMENTS):
    for d in docs:
        # llama-server: string_replace_all(prompt, "{query}", query), then "{document}"
        prompt = template.replace("{query}", q).replace("{document}", d) if template else None
        cases.append({"query": q, "document": d, "prompt": prompt})
with open(cases_out, "w") as f:
    json.dump({"template": template, "cases": cases}, f, ensure_ascii=False)
with open(hex_out, "w") as f:
    for c in cases:
        for text in ([c["prompt"]] if template else [c["query"], c["document"]]):
            f.write(text.encode("utf-8").hex() + "\n")
EOF

"$WORK/dump_logits" embed "$MODEL" "$WORK/prompts.hex" --threads "$THREADS" --pooling rank $PAIRS > "$WORK/rank.json"
# llama.cpp's most precise configuration (f32 KV cache, no flash attention)
"$WORK/dump_logits" embed "$MODEL" "$WORK/prompts.hex" --threads "$THREADS" --pooling rank $PAIRS \
    --flash-attn off --kv-type f32 > "$WORK/precise.json"

# ---- provenance, checks, write --------------------------------------------
PYTHONPATH="$ROOT/scripts/peer" "$PY" - "$WORK/cases.json" "$WORK/rank.json" "$WORK/precise.json" "$OUT" "$MODEL" "$SDIST" "$LCP_VERSION" \
    "$PEER_DIR/peer-version.txt" "$ROOT/tests/golden/tiny-qwen3-logits.json" "$MADE_BY" "$TINY" <<'EOF'
import sys, os, json, datetime, platform
from provenance import sha256, peer_versions, peer_commit
cases_in, raw, precise, out, model, sdist, lcp, verfile, logits_golden, made_by, tiny = sys.argv[1:12]

ver = peer_versions(verfile)
sdist_sha = sha256(sdist)
commit, commit_date = peer_commit(ver, sdist_sha, logits_golden)
prov = {
    "generator": "scripts/record-golden-rerank.sh" + (" (LAMINA_GOLDEN_TINY=%s)" % tiny if tiny else ""),
    "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "model_file": os.path.basename(model),
    "model_sha256": sha256(model),
    "model_size_bytes": os.path.getsize(model),
    "peer": "llama.cpp (vendor/llama.cpp of PyPI sdist llama-cpp-python==%s)" % lcp,
    "llama_cpp_commit": commit,
    "llama_cpp_commit_date": commit_date,
    "sdist_sha256": sdist_sha,
    "build": ("scripts/peer/dump_logits (lamina) mode embed --pooling rank, linked to libllama built by "
              "scripts/peer-build.sh: CMAKE_BUILD_TYPE=Release BUILD_SHARED_LIBS=ON GGML_NATIVE=ON LLAMA_CURL=OFF, "
              "CPU backend only"),
    "host": "%s %s" % (platform.system(), platform.machine()),
    "model_made_by": made_by,
}
src = json.load(open(cases_in))

def cases(dump_path):
    d = json.load(open(dump_path))
    if len(d["cases"]) != len(src["cases"]):
        sys.exit("record-golden-rerank: %s has %d cases, want %d" % (dump_path, len(d["cases"]), len(src["cases"])))
    res = []
    for c, r in zip(src["cases"], d["cases"]):
        if (r["input"], r.get("document")) != ((c["prompt"], None) if src["template"] else (c["query"], c["document"])):
            sys.exit("record-golden-rerank: prompt mismatch in %s" % dump_path)
        scores = r["embedding"]
        if src["template"]:
            # Qwen3 rank pooling ends in a softmax over [yes, no]
            if len(scores) != 2 or abs(sum(scores) - 1.0) > 1e-5:
                sys.exit("record-golden-rerank: scores %r are not a softmax pair" % (scores,))
        elif len(scores) != 1:      # a cross-encoder's one raw logit
            sys.exit("record-golden-rerank: scores %r are not one logit" % (scores,))
        e = {"query": c["query"], "document": c["document"]}
        if src["template"]:
            e["prompt"] = c["prompt"]
        e.update({"n_tokens": len(r["ids"]), "ids": r["ids"], "scores": scores})
        res.append(e)
    return d, res

d, default_cases = cases(raw)
pd, precise_cases = cases(precise)
res = {
    "provenance": prov,
    "tool": d["tool"],
    "settings": d["settings"],
    "labels": d["tool"].get("cls_labels"),
    "template": src["template"],
    "prompt_rule": ("the template with every \"{query}\" replaced by the query, then every \"{document}\" by the "
                    "document (llama-server format_prompt_rerank); tokenized with add_special=false, "
                    "parse_special=true; scores = llama_get_embeddings_seq with pooling RANK: [p(yes), p(no)], "
                    "llama-server's relevance_score is scores[0]") if src["template"] else
                   ("no rerank template: llama-server format_prompt_rerank frames the pair as [BOS] query [EOS] "
                    "[SEP] document [EOS] as the vocabulary adds them (this file: [CLS] query [SEP] document "
                    "[SEP]), each text tokenized with add_special=false, parse_special=false; token types all 0; "
                    "scores = llama_get_embeddings_seq with pooling RANK: cls.output x tanh(cls x h[CLS] + "
                    "cls.bias) + cls.output.bias, one raw logit, llama-server's relevance_score is scores[0]"),
    "cases": default_cases,
    "precise": {"settings": pd["settings"], "cases": precise_cases},
}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(res, f, indent=1, ensure_ascii=False)
    f.write("\n")
os.replace(tmp, out)
worst = 0.0
for a, b in zip(default_cases, precise_cases):
    diff = max(abs(x - y) for x, y in zip(a["scores"], b["scores"]))
    worst = max(worst, diff)
    print("%3d tokens  scores %s  | precise %s  |  %s / %s" % (
        a["n_tokens"], " ".join("%.7f" % x for x in a["scores"]), " ".join("%.7f" % x for x in b["scores"]),
        a["query"][:24], a["document"][:24]))
print("max |default - precise| = %.3g" % worst)
print("wrote %s: %d cases" % (out, len(default_cases)))
EOF
