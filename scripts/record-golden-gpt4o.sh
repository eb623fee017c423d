#!/usr/bin/env bash
# record-golden-gpt4o.sh - record llama.cpp's byte-level BPE tokenizer with
# the "gpt-4o" pre-tokenizer (o200k's expression, as gpt-oss and Llama 4
# files declare it) on a vocabulary tests/tools/make_bpe_vocab.py learns:
#   tests/golden/tiny-gpt4o-tokenizer.json
# over ~300 strings: mixed-case words ("HelloWorld", "iPhone", "ÉCOLE",
# "McDonald's"), contractions in either case ("DON'T"), digit runs longer
# than three, CR LF and other white space, slashes after punctuation,
# letters outside ASCII, combining marks, emoji, the special tokens, and
# pseudo-random mixes of such pieces (a fixed seed).  No invalid UTF-8:
# llama.cpp writes U+FFFD in place of an invalid byte before merging, where
# lamina keeps the byte (runtime/text/tokenizer.c), whatever the
# pre-tokenizer.
#
# The vocabulary's merges cross the places where the pre-tokenizer splits
# words, so a split in another place gives other ids.  It is deterministic:
# the test (tests/tok/gpt4o_golden.sh) regenerates it and checks its sha256
# against the one recorded here.
#
# Each case holds llama.cpp's ids, pieces and detokenized text twice, as
# scripts/peer/dump_logits.c tokenize writes them: "plain"
# (add_special=false, parse_special=false) and "special" (add_special=true,
# parse_special=true).
#
# Environment:
#   PYTHON           python with gguf (default: .venv/bin/python)
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

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

MADE_BY="tests/tools/make_bpe_vocab.py --pre gpt-4o"   # as run below
"$PY" "$ROOT/tests/tools/make_bpe_vocab.py" "$WORK/tiny-gpt4o.gguf" --pre gpt-4o

"$PY" - "$WORK/strings.hex" <<'EOF'
import random, sys
strings = [
    "", " ", "  ", "\t", "\n", "\r\n", "\n\n", "\r\n\r\n", " \n ", "  \t \n  ", "x  ", "a  b",
    "Hello world", " Hello world", "HelloWorld", "helloWorld", "iPhone", "iPad Pro",
    "ÉCOLE", "école", "éCOLE", "Éa", "aÉb", "AÉB", "ÀÉÎ's", "ÉCOLE's", "McDonald's",
    "O'Neil", "DON'T", "don't", "Don'T", "I'M", "I'm", "we're", "WE'RE", "They'LL", "you've",
    "YOU'VE", "She'D", "it's'S", "'s", "'S", "'sa", "'Word", "''", "x'", "'", "NASA's",
    "getHTTPResponse", "XMLHttpRequest", "HTTPServer", "snake_case", "CamelCase", "ALLCAPS",
    "ǅemal", "ǄEMAL", "ǆ", "ΣΟΦΙΑ σοφία", "Αθήνα", "Москва МОСКВА мОСКВА", "Straße STRASSE",
    "naïve", "NAÏVE", "cafe\u0301", "CAFE\u0301", "e\u0301cole", "E\u0301COLE",
    "\u0301A", "a\u0308\u0308b", "Zu\u0308rich", "A\u030angstro\u0308m", "ʰa", "aʰ", "Aʰ",
    "日本語テキスト", "東京は日本の首都です。", "한국어", "Hello日本", "日本Hello",
    "🙂", "👍🏽", "🇫🇷", "👩\u200d💻", "Hello🙂world", "🙂Hello", " 👍🏽OK",
    "1", "12", "123", "1234", "12345", "1234567", "1234567890", "3.14159", "1,000,000",
    "2026-12-07", "٣٤٥٦٧", "½", "Ⅻ", "x²", "A1B2", "abc123def", "HTML5", "x86_64",
    "a/b//c", "/usr/local/bin", "http://example.com/x/y", "and/or", "1/2", "!/\n/x",
    "x! //\n", "see:\n/usr/local/bin", "x.\r\n/bin", "ok!\n//c", "(a)\n\n/x/y", "./run", "//", "/*x*/", "?//", "!\n", "!\r\n", "!\r\n\r\nx", ".\n/\nx",
    "...", "?!", "--", "(x)", "<tag>", "{}", "[1]", "'quoted'", "\"dq\"", "#!", "->", "=>",
    "line\r\nnext", "line\r\n\r\n  next", "a\r\nb", "a\rb", "a \r\n b", "end   ", "  \n  x",
    "\tTab", "\u00a0Word", "a\u00a0b", "a\u3000b", "\u3000\u3000a", "a\u2028b", " \u00a0x",
    "<|startoftext|>Hello", "Hello<|endoftext|>", "<|tool|>call", "x<|tool|>Y",
    "<|endoftext|><|endoftext|>", "<|startoftext|", "C:\\Users\\Me",
    "The Quick Brown Fox Jumps Over The Lazy Dog.",
    "THE QUICK BROWN FOX, DON'T YOU KNOW?",
    "def getHTTPResponse(url):\r\n    return fetch(url)  # TODO\n",
    "x" * 100, "Ab" * 40, "É" * 30, "1" * 50,
]
pieces = ["'s", "'S", "'re", "'LL", "'ve", "'x", "'", "a", "Z", "é", "É", "ß", "ǅ", "中",
          "٣", "½", "1", "22", "12345", " ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", "\xa0",
          "\u3000", "!", "?!", "...", "$", "(", "—", "😀", "👍🏽", "\u200b", "\x00", "_", "-",
          "e\u0301", "\u0301", "x", "don", "hello", "World", "Mc", "iPhone", "DON", "'T", "/",
          "//", "ʰ", "Ǆ", "ΣΑ", "σ", "COLE", "<|endoftext|>", "<|tool|>"]
rnd = random.Random(20261207)
for _ in range(150):
    strings.append("".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 10))))
with open(sys.argv[1], "w") as f:
    for s in strings:
        f.write(s.encode("utf-8").hex() + "\n")
EOF

echo "record-golden-gpt4o: tiny-gpt4o" >&2
"$DUMP" tokenize "$WORK/tiny-gpt4o.gguf" "$WORK/strings.hex" > "$WORK/tiny.json"

PYTHONPATH=$ROOT/scripts/peer "$PY" - "$WORK" "$OUT_DIR" "$PEER_DIR" "$MADE_BY" <<'EOF'
import json, os, sys
import gguf
from provenance import model_provenance, peer_versions
work, out_dir, peer_dir, made_by = sys.argv[1:5]
ver = peer_versions(os.path.join(peer_dir, "peer-version.txt"))
path = os.path.join(work, "tiny-gpt4o.gguf")
try:
    from importlib.metadata import version
    gguf_version = version("gguf")
except Exception:
    gguf_version = "unknown"
obj = {"provenance": model_provenance("scripts/record-golden-gpt4o.sh", path, ver, model_made_by=made_by,
                                      gguf_version=gguf_version)}
obj.update(json.load(open(os.path.join(work, "tiny.json"))))

def compact(o):
    return json.dumps(o, ensure_ascii=False, separators=(",", ":"))

# one case per line, so that diffs stay readable
out = os.path.join(out_dir, "tiny-gpt4o-tokenizer.json")
with open(out, "w") as f:
    f.write("{\n")
    for k in [k for k in obj if k != "cases"]:
        f.write(" %s:%s,\n" % (compact(k), json.dumps(obj[k], ensure_ascii=False, indent=1).replace("\n", "\n ")))
    f.write(' "cases":[\n  ' + ",\n  ".join(compact(c) for c in obj["cases"]) + "\n ]\n}\n")
print("wrote %s (%d bytes, %d cases)" % (out, os.path.getsize(out), len(obj["cases"])))
EOF
