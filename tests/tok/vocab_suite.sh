#!/bin/sh
# tests/tok/vocab_suite.sh - lamina's tokenizers on every vocabulary of
# llama.cpp's own tokenizer test suite (ggml-vocab-*.gguf with .inp/.out,
# see scripts/fetch-testdata.sh): one TAP line per vocabulary, ok only
# when every case gives exactly the recorded ids (no BOS, special tokens
# as plain text, as llama.cpp's test-tokenizer-0).  On a mismatch the
# first mismatching case is shown.  A last check proves the comparison
# can fail: a copy of one vocabulary with one expected id changed.
. "${top_srcdir:-.}/tests/lib.sh"

TOOL="$B/tests/tok/vocab_suite"
llama_testdata

TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT

n=0
for inp in "$LLAMA_TESTDATA"/ggml-vocab-*.gguf.inp; do
    [ -e "$inp" ] || continue
    gguf=${inp%.inp}
    name=$(basename "$gguf" .gguf)
    n=$((n + 1))
    "$TOOL" "$gguf" > "$TMP/out" 2>&1
    rc=$?
    summary=$(head -n 1 "$TMP/out")
    if [ $rc -eq 0 ]; then
        set -- $summary
        ok "$name: $1/$2 cases exact"
    elif [ $rc -eq 1 ]; then
        set -- $summary
        not_ok "$name: $1/$2 cases exact"
        diag "$(sed 1d "$TMP/out")"
    else
        not_ok "$name: not run"
        diag "$(cat "$TMP/out")"
    fi
done
check "found the suite's vocabularies ($n)" test "$n" -ge 15

# The comparison can fail: gpt-2 with the first id of a non-empty case changed.
src="$LLAMA_TESTDATA/ggml-vocab-gpt-2.gguf"
if [ -e "$src.inp" ]; then
    ln -s "$src" "$TMP/bad.gguf"
    cp "$src.inp" "$TMP/bad.gguf.inp"
    awk '!done && NF { $1 = $1 + 1; done = 1 } { print }' "$src.out" > "$TMP/bad.gguf.out"
    "$TOOL" "$TMP/bad.gguf" > "$TMP/bad" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -q '^first mismatch: case' "$TMP/bad"; then
        ok "a changed expected id is reported as a mismatch"
    else
        not_ok "a changed expected id is reported as a mismatch (rc=$rc)"
        diag "$(cat "$TMP/bad")"
    fi
else
    skip "no ggml-vocab-gpt-2.gguf to alter"
fi

# An unknown tokenizer.ggml.pre is refused by name, with the known ones listed.
if [ -e "$src.inp" ] && [ -n "${PYTHON:-}" ]; then
    "$PYTHON" - "$src" "$TMP/pre.gguf" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
def kv(value):  # key, then type 8 (string), then the length-prefixed string
    return b"tokenizer.ggml.pre" + struct.pack("<IQ", 8, len(value)) + value
assert data.count(kv(b"gpt-2")) == 1
open(sys.argv[2], "wb").write(data.replace(kv(b"gpt-2"), kv(b"gpt-9")))
EOF
    ln -s "$src.inp" "$TMP/pre.gguf.inp"
    ln -s "$src.out" "$TMP/pre.gguf.out"
    "$TOOL" "$TMP/pre.gguf" > "$TMP/pre" 2>&1
    rc=$?
    if [ $rc -eq 2 ] && grep -q "pre-tokenizer 'gpt-9' not supported (known: .*llama-bpe.*deepseek-coder" "$TMP/pre"; then
        ok "unknown pre-tokenizer refused by name, known ones listed"
    else
        not_ok "unknown pre-tokenizer refused by name, known ones listed (rc=$rc)"
        diag "$(cat "$TMP/pre")"
    fi
else
    skip "no ggml-vocab-gpt-2.gguf or no python to alter it"
fi

# An unknown tokenizer.ggml.model is refused by name, with the known ones listed.
if [ -e "$src.inp" ] && [ -n "${PYTHON:-}" ]; then
    "$PYTHON" - "$src" "$TMP/model.gguf" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
def kv(value):  # key, then type 8 (string), then the length-prefixed string
    return b"tokenizer.ggml.model" + struct.pack("<IQ", 8, len(value)) + value
assert data.count(kv(b"gpt2")) == 1
open(sys.argv[2], "wb").write(data.replace(kv(b"gpt2"), kv(b"rwkv")))
EOF
    ln -s "$src.inp" "$TMP/model.gguf.inp"
    ln -s "$src.out" "$TMP/model.gguf.out"
    "$TOOL" "$TMP/model.gguf" > "$TMP/model" 2>&1
    rc=$?
    if [ $rc -eq 2 ] && grep -q "tokenizer model 'rwkv' not supported (known: llama, gpt2, gemma4, bert, t5)" "$TMP/model"; then
        ok "unknown tokenizer model refused by name, known ones listed"
    else
        not_ok "unknown tokenizer model refused by name, known ones listed (rc=$rc)"
        diag "$(cat "$TMP/model")"
    fi
else
    skip "no ggml-vocab-gpt-2.gguf or no python to alter it"
fi
done_testing
