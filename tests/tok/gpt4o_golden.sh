#!/bin/sh
# tests/tok/gpt4o_golden.sh - the "gpt-4o" BPE pre-tokenizer (o200k's
# expression as llama.cpp runs it: gpt-oss, Llama 4) against llama.cpp,
# recorded by scripts/record-golden-gpt4o.sh:
#   tiny-gpt4o-tokenizer.json  a byte-level BPE vocabulary that
#                              tests/tools/make_bpe_vocab.py learns, its
#                              merges crossing the pre-tokenizer's splits;
#                              regenerated here and checked against the
#                              recorded sha256 first
# Every case, plain and with special tokens (no BOS: the pre-tokenizer's
# default, the file has no add_bos_token key), must give exactly llama.cpp's
# ids, pieces and decoded text (tok/test_golden).  The other names llama.cpp
# gives the same pre-tokenizer must tokenize the same, and a changed
# expected id must be reported.
. "${top_srcdir:-.}/tests/lib.sh"

GOLDEN="$S/tests/golden/tiny-gpt4o-tokenizer.json"
PY=${PYTHON:-python3}

TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT

. "$S/tests/tok/golden_lib.sh"

if ! "$PY" -c 'import gguf' 2>/dev/null; then
    if [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then not_ok "python with gguf ($PY)"
    else skip "python without gguf ($PY; setup.sh installs it)"; fi
    done_testing; exit $?
fi

setup "generated the tiny gpt-4o vocabulary" \
    "$PY" "$S/tests/tools/make_bpe_vocab.py" "$TMP/tiny-gpt4o.gguf" --pre gpt-4o
want=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["provenance"]["model_sha256"])' \
    "$GOLDEN")
got=$(sha256sum "$TMP/tiny-gpt4o.gguf" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
    not_ok "the regenerated vocabulary is the recorded one"
    diag "sha256 $got, recorded $want; gguf $("$PY" -c 'from importlib.metadata import version; print(version("gguf"))'),"
    diag "recorded with $("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["provenance"]["gguf_version"])' "$GOLDEN")"
    done_testing; exit $?
fi
ok "the regenerated vocabulary is the recorded one ($got)"
golden_run "gpt-4o" "$GOLDEN" "$TMP/tiny-gpt4o.gguf"

# The same file under llama.cpp's other names for this pre-tokenizer.
for name in llama4 kanana2 talkie minimax-m2; do
    "$PY" - "$TMP/tiny-gpt4o.gguf" "$TMP/$name.gguf" "$name" <<'EOF'
import struct, sys
src, dst, name = sys.argv[1:4]
data = open(src, "rb").read()
key = b"tokenizer.ggml.pre"
at = data.index(struct.pack("<Q", len(key)) + key) + 8 + len(key)
vtype, n = struct.unpack_from("<IQ", data, at)
assert vtype == 8, vtype
new = name.encode()
open(dst, "wb").write(data[:at + 4] + struct.pack("<Q", len(new)) + new + data[at + 12 + n:])
EOF
    golden_run "tokenizer.ggml.pre \"$name\"" "$GOLDEN" "$TMP/$name.gguf"
done

# The comparison can fail.
golden_can_fail "$GOLDEN" "$TMP/tiny-gpt4o.gguf"
done_testing
