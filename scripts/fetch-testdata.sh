#!/usr/bin/env bash
# fetch-testdata.sh - llama.cpp's own test data, for the tests that use it as
# a specification: the tokenizer suite (models/ggml-vocab-*.gguf with their
# .inp/.out cases) and the real chat templates (models/templates/*.jinja).
#
# They come from the same PyPI sdist of llama-cpp-python that
# scripts/peer-build.sh builds the peer from (no llama.cpp build is needed
# here).  Only vendor/llama.cpp/models/ is unpacked; nothing is committed.
# Prints the models directory on stdout.  Idempotent and offline once done.
#
# Environment:
#   LAMINA_TESTDATA_DIR  where it goes (default: <repo>/.testdata)
#   LAMINA_PEER_DIR      a peer build dir whose sdist is reused when present
#                        (default: <repo>/.peer)
set -euo pipefail
LCP_VERSION=0.3.36          # the version scripts/peer-build.sh pins
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${LAMINA_TESTDATA_DIR:-$ROOT/.testdata}
PEER=${LAMINA_PEER_DIR:-$ROOT/.peer}
SDIST=llama_cpp_python-$LCP_VERSION.tar.gz
OUT=$DIR/llama.cpp-$LCP_VERSION-models
log() { printf '[fetch-testdata] %s\n' "$*" >&2; }

if [ ! -f "$OUT/.complete" ]; then
    mkdir -p "$DIR"
    src=
    if [ -f "$PEER/$SDIST" ]; then src=$PEER/$SDIST
    elif [ -f "$DIR/$SDIST" ]; then src=$DIR/$SDIST
    else
        log "downloading llama-cpp-python==$LCP_VERSION sdist (its vendor/llama.cpp/models)"
        py=python3
        [ -x "$ROOT/.venv/bin/python" ] && py=$ROOT/.venv/bin/python
        "$py" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$LCP_VERSION" -d "$DIR" >&2
        src=$DIR/$SDIST
    fi
    rm -rf "$OUT.tmp"; mkdir -p "$OUT.tmp"
    tar -xzf "$src" -C "$OUT.tmp" --strip-components=4 \
        "llama_cpp_python-$LCP_VERSION/vendor/llama.cpp/models"
    [ -d "$OUT.tmp/templates" ] && ls "$OUT.tmp"/ggml-vocab-*.gguf >/dev/null \
        || { log "$src: no vendor/llama.cpp/models with vocabularies and templates"; exit 1; }
    rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
    touch "$OUT/.complete"
fi
printf '%s\n' "$OUT"
