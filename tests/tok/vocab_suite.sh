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

# refused_when KEY FROM TO PATTERN DESC: gpt-2's string KEY changed from
# FROM to TO (the same .inp/.out) is refused with exit 2 and a line
# matching PATTERN (grep) that names TO and lists the known values.
refused_when() {
    if [ ! -e "$src.inp" ] || [ -z "${PYTHON:-}" ]; then
        skip "no ggml-vocab-gpt-2.gguf or no python to alter it"; return
    fi
    "$PYTHON" - "$src" "$TMP/$1.gguf" "$1" "$2" "$3" <<'EOF'
import struct, sys
src, dst, key, old, new = sys.argv[1:6]
data = open(src, "rb").read()
def kv(value):  # key, then type 8 (string), then the length-prefixed string
    return key.encode() + struct.pack("<IQ", 8, len(value)) + value.encode()
assert data.count(kv(old)) == 1
open(dst, "wb").write(data.replace(kv(old), kv(new)))
EOF
    ln -s "$src.inp" "$TMP/$1.gguf.inp"
    ln -s "$src.out" "$TMP/$1.gguf.out"
    "$TOOL" "$TMP/$1.gguf" > "$TMP/$1.out" 2>&1
    rc=$?
    if [ $rc -eq 2 ] && grep -q "$4" "$TMP/$1.out"; then
        ok "$5"
    else
        not_ok "$5 (rc=$rc)"
        diag "$(cat "$TMP/$1.out")"
    fi
}
refused_when tokenizer.ggml.pre gpt-2 gpt-9 "pre-tokenizer 'gpt-9' not supported (known: .*llama-bpe.*deepseek-coder" \
    "unknown pre-tokenizer refused by name, known ones listed"
refused_when tokenizer.ggml.model gpt2 rwkv "tokenizer model 'rwkv' not supported (known: llama, gpt2, gemma4, bert, t5)" \
    "unknown tokenizer model refused by name, known ones listed"
done_testing
