#!/bin/sh
# tests/tok/ugm_golden.sh - the unigram tokenizer (tokenizer.ggml.model
# "t5") against llama.cpp's, recorded by scripts/record-golden-ugm.sh:
#   tiny-ugm-tokenizer.json  the vocabulary tests/tools/make_ugm_vocab.py
#                            trains; regenerated here and checked against
#                            the recorded sha256 first
#   xlmr-ugm-tokenizer.json  XLM-RoBERTa's vocabulary from llama.cpp's test
#                            data (scripts/fetch-testdata.sh)
# Every case, plain and with special tokens, must give exactly llama.cpp's
# ids, pieces and decoded text (tok/test_golden).  Then: a changed
# expected id is reported, and corrupt charsmaps are refused at load with
# the key and what is wrong.  Last, an XLM-RoBERTa-style encoder (the tiny
# bert with the unigram vocabulary) embeds through `lamina embed` as
# llama.cpp does (tiny-bert-ugm-embed.json: the same token counts, the
# normalized vectors within 1e-3).
. "${top_srcdir:-.}/tests/lib.sh"

TOOL="$B/tests/tok/test_golden"
TINY_GOLDEN="$S/tests/golden/tiny-ugm-tokenizer.json"
XLMR_GOLDEN="$S/tests/golden/xlmr-ugm-tokenizer.json"
PY=${PYTHON:-python3}

TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT

. "$S/tests/tok/golden_lib.sh"

# ---- the generated vocabulary ----------------------------------------------
if ! "$PY" -c 'import sentencepiece, gguf' 2>/dev/null; then
    if [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then not_ok "python with sentencepiece and gguf ($PY)"
    else skip "python without sentencepiece or gguf ($PY; setup.sh installs them)"; fi
else
    setup "generated the tiny unigram vocabulary" \
        "$PY" "$S/tests/tools/make_ugm_vocab.py" "$TMP/tiny-ugm.gguf"
    want=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["provenance"]["model_sha256"])' \
        "$TINY_GOLDEN")
    got=$(sha256sum "$TMP/tiny-ugm.gguf" | cut -d' ' -f1)
    if [ "$got" = "$want" ]; then
        ok "the regenerated vocabulary is the recorded one ($got)"
        golden_run "tiny-ugm" "$TINY_GOLDEN" "$TMP/tiny-ugm.gguf"
    else
        not_ok "the regenerated vocabulary is the recorded one"
        diag "sha256 $got, recorded $want; sentencepiece $("$PY" -c 'import sentencepiece; print(sentencepiece.__version__)'),"
        diag "recorded with $("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["provenance"]["sentencepiece_version"])' "$TINY_GOLDEN")"
    fi

    # The comparison can fail.
    golden_can_fail "$TINY_GOLDEN" "$TMP/tiny-ugm.gguf"

    # Corrupt charsmaps: refused at load, naming the key and the fault.
    "$PY" - "$TMP/tiny-ugm.gguf" "$TMP" <<'EOF'
import struct, sys
src, tmp = sys.argv[1:3]
data = open(src, "rb").read()
key = b"tokenizer.ggml.precompiled_charsmap"
at = data.index(struct.pack("<Q", len(key)) + key) + 8 + len(key)
etype, sub, n = struct.unpack_from("<IIQ", data, at)
assert etype == 9 and sub == 0, (etype, sub)
start = at + 16
blob = struct.unpack_from("<I", data, start)[0]
units = [struct.unpack_from("<I", data, start + 4 + 4 * i)[0] for i in range(blob // 4)]
def put(name, patched):
    open("%s/%s.gguf" % (tmp, name), "wb").write(data[:start] + patched + data[start + n:])
cm = data[start:start + n]
# the trie size past the end of the array
put("size", struct.pack("<I", (n + 3) & ~3) + cm[4:])
# no NUL in the replacement strings
put("unterminated", cm[:4 + blob] + b"A" * (n - 4 - blob))
# a leaf whose value unit lies past the trie: its BASE made huge
leaf = next(i for i, u in enumerate(units)
            if not u & 0x80000000 and u & 0xFF and u & 0x100 and not u & 0x200)
u = (units[leaf] & 0x3FF) | ((len(units) + 0x100000) << 10)
put("leaf", cm[:4 + 4 * leaf] + struct.pack("<I", u & 0xFFFFFFFF) + cm[8 + 4 * leaf:])
EOF
    for c in "size:trie size [0-9]+ leaves no replacement strings" \
             "unterminated:trie unit [0-9]+: replacement string at offset [0-9]+ has no terminating NUL" \
             "leaf:trie unit [0-9]+ points to unit [0-9]+, past the [0-9]+ units"; do
        name=${c%%:*}
        "$TOOL" "$TINY_GOLDEN" "$TMP/$name.gguf" > "$TMP/$name.out" 2>&1
        expect_grep "corrupt charsmap ($name) refused at load" \
            "tokenizer\.ggml\.precompiled_charsmap: ${c#*:}" "$TMP/$name.out"
    done
fi

# ---- an XLM-RoBERTa-style encoder through lamina embed ----------------------
EMBED_GOLDEN="$S/tests/golden/tiny-bert-ugm-embed.json"
if "$PY" -c 'import sentencepiece, gguf, numpy' 2>/dev/null &&
   "$PY" "$S/tests/tools/make_tiny_model.py" --arch bert --type f32 --seed 1 --out "$TMP/tiny-bert.gguf" >/dev/null &&
   "$PY" "$S/tests/tools/make_ugm_vocab.py" "$TMP/tiny-bert-ugm.gguf" --vocab-size 511 --onto "$TMP/tiny-bert.gguf"; then
    want=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["provenance"]["model_sha256"])' \
        "$EMBED_GOLDEN")
    got=$(sha256sum "$TMP/tiny-bert-ugm.gguf" | cut -d' ' -f1)
    check "the regenerated encoder is the recorded one" test "$got" = "$want"
    "$PY" -c 'import json, sys
for c in json.load(open(sys.argv[1]))["cases"]: print(c["input"])' "$EMBED_GOLDEN" > "$TMP/texts"
    (unset LAMINA_CONFIG LAMINA_BACKENDS
     LAMINA_PROBE_HELPER="$B/runtime/lamina-probe" LAMINA_PLUGIN_PATH="$B/plugins/cpu/.libs" \
     XDG_CACHE_HOME="$TMP/cache" "$LAMINA" embed "$TMP/tiny-bert-ugm.gguf" -q \
         < "$TMP/texts" > "$TMP/embed.jsonl" 2> "$TMP/embed.err")
    if "$PY" - "$EMBED_GOLDEN" "$TMP/embed.jsonl" > "$TMP/embed.cmp" 2>&1 <<'EOF'
import json, math, sys
cases = json.load(open(sys.argv[1]))["cases"]
ours = [json.loads(l) for l in open(sys.argv[2])]
assert len(ours) == len(cases), "%d vectors for %d texts" % (len(ours), len(cases))
def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]
bad = 0
for c, o in zip(cases, ours):
    d = max(abs(x - y) for x, y in zip(unit(c["embedding"]), unit(o["embedding"])))
    same = o["tokens"] == len(c["ids"]) and len(o["embedding"]) == len(c["embedding"]) and d < 1e-3
    bad += not same
    print("%s %r: %d tokens (llama.cpp %d), max |diff| %.2e" % ("ok" if same else "DIFFERS", c["input"],
          o["tokens"], len(c["ids"]), d))
sys.exit(1 if bad else 0)
EOF
    then
        ok "lamina embed on the XLM-RoBERTa-style encoder equals llama.cpp's ($(wc -l < "$TMP/texts") texts)"
    else
        not_ok "lamina embed on the XLM-RoBERTa-style encoder equals llama.cpp's"
        diag "$(cat "$TMP/embed.cmp" "$TMP/embed.err")"
    fi
else
    skip "python without sentencepiece, gguf or numpy ($PY), or the encoder could not be made"
fi

# ---- XLM-RoBERTa's vocabulary (llama.cpp's test data) ----------------------
LLAMA_TESTDATA=${LAMINA_LLAMA_TESTDATA:-}
[ -n "$LLAMA_TESTDATA" ] && [ -d "$LLAMA_TESTDATA" ] ||
    LLAMA_TESTDATA=$("$S/scripts/fetch-testdata.sh" 2>/dev/null) || LLAMA_TESTDATA=
xlmr=$LLAMA_TESTDATA/ggml-vocab-nomic-bert-moe.gguf
if [ -n "$LLAMA_TESTDATA" ] && [ -f "$xlmr" ]; then
    want=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["provenance"]["model_sha256"])' \
        "$XLMR_GOLDEN")
    got=$(sha256sum "$xlmr" | cut -d' ' -f1)
    check "XLM-RoBERTa's test vocabulary is the recorded one" test "$got" = "$want"
    golden_run "xlmr" "$XLMR_GOLDEN" "$xlmr"
elif [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then
    not_ok "llama.cpp test data (scripts/fetch-testdata.sh)"
else
    skip "llama.cpp test data unavailable (scripts/fetch-testdata.sh needs PyPI once)"
fi
done_testing
