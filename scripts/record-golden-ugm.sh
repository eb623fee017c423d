#!/usr/bin/env bash
# record-golden-ugm.sh - record llama.cpp's unigram (UGM, tokenizer.ggml.model
# "t5") tokenizer on two vocabularies:
#   tests/golden/tiny-ugm-tokenizer.json   the vocabulary that
#       tests/tools/make_ugm_vocab.py trains and writes (deterministic: the
#       test regenerates it and checks its sha256 against this recording)
#   tests/golden/xlmr-ugm-tokenizer.json   XLM-RoBERTa's 250k vocabulary as
#       llama.cpp's own test data has it (ggml-vocab-nomic-bert-moe.gguf,
#       scripts/fetch-testdata.sh): the vocabulary and charsmap of bge-m3,
#       bge-reranker-v2-m3 and multilingual-e5
# over the same ~100 strings (spaces, newlines, tabs, accents composed and
# decomposed, full-width and compatibility forms, CJK, emoji, characters
# the tiny vocabulary lacks, invalid UTF-8, long words); and
#   tests/golden/tiny-bert-ugm-embed.json  llama.cpp's mean-pooled
#       embeddings of a few texts from an XLM-RoBERTa-style encoder: the
#       tiny bert of tests/tools/make_tiny_model.py --arch bert --type f32
#       --seed 1 with that unigram vocabulary (make_ugm_vocab.py
#       --vocab-size 511 --onto) in place of its WordPiece one
#
# Each case holds llama.cpp's ids, pieces and detokenized text twice, as
# scripts/peer/dump_logits.c tokenize writes them: "plain"
# (add_special=false, parse_special=false, as llama.cpp's tokenizer test)
# and "special" (add_special=true, parse_special=true).  The provenance
# also says how often SentencePiece itself (the Python package, on the
# tiny vocabulary's model) gives llama.cpp's plain ids; the golden is
# llama.cpp's.
#
# Environment:
#   PYTHON           python with gguf and sentencepiece (default: .venv/bin/python)
#   LAMINA_PEER_DIR  see peer-build.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER_DIR=${LAMINA_PEER_DIR:-$ROOT/.peer}
case $PEER_DIR in /*) ;; *) PEER_DIR=$ROOT/$PEER_DIR ;; esac
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT_DIR=$ROOT/tests/golden

LAMINA_PEER_DIR=$PEER_DIR "$ROOT/scripts/peer-build.sh" >&2
DUMP=$PEER_DIR/bin/dump_logits
TESTDATA=$("$ROOT/scripts/fetch-testdata.sh")
XLMR=$TESTDATA/ggml-vocab-nomic-bert-moe.gguf
[ -f "$XLMR" ] || { echo "record-golden-ugm: $XLMR missing" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

MADE_BY="tests/tools/make_ugm_vocab.py"   # as run below
"$PY" "$ROOT/tests/tools/make_ugm_vocab.py" "$WORK/tiny-ugm.gguf" --model-out "$WORK/tiny-ugm.model"

"$PY" - "$WORK/strings.hex" <<'EOF'
import sys
strings = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "  \t \n  ", "\r\n",
    "a", "ab", "Hello world", " Hello world", "Hello world ", "  Hello   world  ",
    "Hello\tworld", "Hello\nworld", "line one\nline two\n", "tab\there", "multiple     spaces",
    " leading", "trailing ", "a b c d e f g", "UPPER lower MiXeD",
    "The quick brown fox jumps over the lazy dog.",
    "café", "cafe\u0301", "naïve", "nai\u0308ve", "Zürich", "Zu\u0308rich", "straße",
    "Ångström", "\u212bngstr\u00f6m", "\u2126 ohm", "Dvořák's Symphony No. 9",
    "C'est l'été, n'est-ce pas? ¿Qué tal? ¡Hola!",
    "\ufb01ne \ufb02ow", "Ｆｕｌｌ\u3000ｗｉｄｔｈ", "１２３ ＡＢＣ", "①②③", "½ ¼ ¾", "x² y³",
    "™ © ®", "Ⅻ Ⅳ", "ｶﾀｶﾅ ﾊﾟ", "a\u00a0b", "a\u200bb", "a\u3000b", "a\u2028b",
    "東京は日本の首都です。", "北京欢迎你", "こんにちは世界", "世界 世界  世界",
    "한국어", "Москва — столица России.", "Привет, мир!", "Αθήνα καλημέρα", "مرحبا بالعالم",
    "नमस्ते", "🙂", "👍🏽", "emoji 🎉 party 🎉", "a🙂b",
    "12345", "3.14159", "2026-12-07", "1,000,000", "№42", "100%", "(parenthesized)",
    "«quotes»", "\"double\" 'single'", "—dash—", "…", "hello...world",
    "<url>", "go to <url> now", "<br><br>", "<ur", "<uｒl>", "＜url＞", "<url",
    "<s>", "</s>", "<s>Hello</s>", "<mask>", "text <mask> text", "<unk>", "<pad>",
    "\u2581", "\u2581\u2581hello", "control\x07char", "\x1b[31mred\x1b[0m",
    "mixed Latin кириллица 漢字 123",
    "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 3,
    "x" * 300, "日本語" * 50, "аааааааааааааааааааааааааааааа", "的的的的的的的的的的的的",
]
raw_bytes = [
    b"nul\x00byte", b"invalid utf8: \xff\xfe end", b"truncated \xe4\xbd", b"\xc3\x28 overlong \xc0\xaf",
    b"abc\xe2\x82", b"\xf8\x88\x80\x80\x80 five-byte lead",
]
with open(sys.argv[1], "w") as f:
    for s in strings + raw_bytes:
        b = s if isinstance(s, bytes) else s.encode("utf-8")
        f.write(b.hex() + "\n")
EOF

"$PY" "$ROOT/tests/tools/make_tiny_model.py" --arch bert --type f32 --seed 1 --out "$WORK/tiny-bert.gguf" >/dev/null
"$PY" "$ROOT/tests/tools/make_ugm_vocab.py" "$WORK/tiny-bert-ugm.gguf" --vocab-size 511 --onto "$WORK/tiny-bert.gguf"
"$PY" - "$WORK/embed.hex" <<'EOF'
import sys
texts = ["Hello world", "  Café  naïve \ufb01ne", "Москва — столица России.", "東京は日本の首都です。",
         "emoji \U0001F389 <url> ok", "The quick brown fox jumps over the lazy dog."]
with open(sys.argv[1], "w") as f:
    for t in texts:
        f.write(t.encode().hex() + "\n")
EOF

echo "record-golden-ugm: tiny-bert-ugm embeddings" >&2
"$DUMP" embed "$WORK/tiny-bert-ugm.gguf" "$WORK/embed.hex" --pooling mean > "$WORK/embed.json"
echo "record-golden-ugm: tiny-ugm" >&2
"$DUMP" tokenize "$WORK/tiny-ugm.gguf" "$WORK/strings.hex" > "$WORK/tiny.json"
echo "record-golden-ugm: xlmr" >&2
"$DUMP" tokenize "$XLMR" "$WORK/strings.hex" > "$WORK/xlmr.json"

PYTHONPATH=$ROOT/scripts/peer "$PY" - "$WORK" "$OUT_DIR" "$PEER_DIR" "$MADE_BY" "$XLMR" <<'EOF'
import json, os, sys
import sentencepiece
from provenance import model_provenance, peer_versions
work, out_dir, peer_dir, made_by, xlmr = sys.argv[1:6]
ver = peer_versions(os.path.join(peer_dir, "peer-version.txt"))

def provenance(path, extra):
    return model_provenance("scripts/record-golden-ugm.sh", path, ver, **extra)

def compact(o):
    return json.dumps(o, ensure_ascii=False, separators=(",", ":"))

def write(name, obj):
    # one case per line, so that diffs stay readable
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        f.write("{\n")
        keys = [k for k in obj if k != "cases"]
        for k in keys:
            f.write(" %s:%s,\n" % (compact(k), json.dumps(obj[k], ensure_ascii=False, indent=1).replace("\n", "\n ")))
        f.write(' "cases":[\n  ' + ",\n  ".join(compact(c) for c in obj["cases"]) + "\n ]\n}\n")
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))

# SentencePiece on the tiny vocabulary's model: does it give llama.cpp's ids?
sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(work, "tiny-ugm.model"))
tiny = json.load(open(os.path.join(work, "tiny.json")))
differ = []
for i, c in enumerate(tiny["cases"]):
    text = bytes.fromhex(c["input_hex"]).decode("utf-8", errors="replace")
    if sp.encode(text) != c["plain"]["ids"]:
        differ.append(i)
n = len(tiny["cases"])
extra = {
    "model_made_by": made_by,
    "sentencepiece_version": sentencepiece.__version__,
    "sentencepiece_agrees": "%d of %d cases: SentencePiece %s's encode() on the same model gives "
                            "llama.cpp's plain ids (inputs with invalid UTF-8 decoded with U+FFFD first)"
                            % (n - len(differ), n, sentencepiece.__version__),
    "sentencepiece_differs": differ,
}
obj = {"provenance": provenance(os.path.join(work, "tiny-ugm.gguf"), extra)}
obj.update(tiny)
write("tiny-ugm-tokenizer.json", obj)

x = json.load(open(os.path.join(work, "xlmr.json")))
obj = {"provenance": provenance(xlmr, {"model_from": "scripts/fetch-testdata.sh (llama.cpp's test vocabulary, "
                                      "XLM-RoBERTa's SentencePiece model as nomic-embed-text-v2-moe converts it)"})}
obj.update(x)
write("xlmr-ugm-tokenizer.json", obj)

e = json.load(open(os.path.join(work, "embed.json")))
obj = {"provenance": provenance(os.path.join(work, "tiny-bert-ugm.gguf"), {
    "model_made_by": "tests/tools/make_tiny_model.py --arch bert --type f32 --seed 1, then "
                     "tests/tools/make_ugm_vocab.py --vocab-size 511 --onto"})}
obj.update(e)
write("tiny-bert-ugm-embed.json", obj)
print("sentencepiece agrees on %d of %d cases; differs on %s" % (n - len(differ), n, differ))
EOF
