#!/usr/bin/env bash
# bench-vs-llamacpp.sh - lamina and llama.cpp side by side on the same model,
# threads and machine, in one run, reporting ratios of medians.
#
#   scripts/bench-vs-llamacpp.sh [MODEL.gguf] [-p N] [-n N] [-r ROUNDS] [-t THREADS] [-b BACKEND]
#
# Both tools measure a prompt of N tokens processed as one batch (ppN) and
# N tokens generated one at a time (tgN).  The machine is shared and noisy,
# so the two tools alternate, ROUNDS times each (default 5), every round
# with llama-bench -r 1 and lamina bench -r 1 after their warm-ups, and the
# script reports medians and the ratio lamina/llama.cpp (> 1: lamina is
# faster), plus peak RSS of a short `lamina run`.
# llama.cpp is built by scripts/peer-build.sh into .peer/ (never committed).
# BACKEND: cpu (default) or vulkan; for vulkan the peer is built with its
# Vulkan backend (LAMINA_PEER_VULKAN=1 scripts/peer-build.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODEL=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models/gemma-3-270m-q4_k_m.gguf
P=64; N=32; R=5; T=$(nproc); BE=cpu
while [ $# -gt 0 ]; do
  case $1 in
    -p) P=$2; shift 2 ;; -n) N=$2; shift 2 ;; -r) R=$2; shift 2 ;;
    -t) T=$2; shift 2 ;; -b) BE=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) MODEL=$1; shift ;;
  esac
done
[ -s "$MODEL" ] || { echo "model not found: $MODEL (run ./setup.sh)" >&2; exit 1; }
LAMINA=${LAMINA:-$ROOT/_install/bin/lamina}
[ -x "$LAMINA" ] || { echo "lamina not installed at $LAMINA (run ./setup.sh)" >&2; exit 1; }
PEER=${LAMINA_PEER_DIR:-$ROOT/.peer}
PB=$PEER/build; [ "$BE" = cpu ] || PB=$PEER/build-vulkan
LB=$PB/bin/llama-bench
if [ ! -x "$LB" ]; then
  if [ "$BE" = cpu ]; then "$ROOT/scripts/peer-build.sh" >&2; else LAMINA_PEER_VULKAN=1 "$ROOT/scripts/peer-build.sh" >&2; fi
fi
export LD_LIBRARY_PATH="$PB/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# llama.cpp skips CPU-type Vulkan devices (lavapipe) unless they are named
[ "$BE" = cpu ] || export GGML_VK_VISIBLE_DEVICES=${GGML_VK_VISIBLE_DEVICES:-0}

CFG=$(mktemp); trap 'rm -f "$CFG" "$CFG".*' EXIT
printf '[backend.cpu]\nthreads = %s\n' "$T" > "$CFG"
ngl=0; [ "$BE" = cpu ] || ngl=99

echo "model   $MODEL"
echo "machine $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $T; backend $BE"
echo "tests   pp$P tg$N, $R alternating rounds"
for r in $(seq 1 "$R"); do
  "$LB" -m "$MODEL" -t "$T" -p "$P" -n 0 -r 1 -ngl $ngl -o json 2>/dev/null >> "$CFG.lpp" || true
  "$LB" -m "$MODEL" -t "$T" -p 0 -n "$N" -r 1 -ngl $ngl -o json 2>/dev/null >> "$CFG.ltg" || true
  "$LAMINA" --config "$CFG" bench "$MODEL" -b "$BE" -p "$P" -n "$N" -r 1 --json 2>/dev/null >> "$CFG.mine" || true
done
/usr/bin/env python3 - "$CFG" "$P" "$N" <<'PY'
import json, re, statistics, sys
cfg, P, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def peer(path):
    # llama-bench -o json prints one JSON array per run, concatenated
    out, txt, dec, i = [], open(path).read(), json.JSONDecoder(), 0
    while True:
        while i < len(txt) and txt[i].isspace(): i += 1
        if i >= len(txt): break
        try:
            recs, i = dec.raw_decode(txt, i)
        except ValueError:
            break
        out += [r.get("avg_ts") for r in recs]
    return [x for x in out if x]
lpp, ltg = peer(cfg + ".lpp"), peer(cfg + ".ltg")
mpp, mtg = [], []
for line in open(cfg + ".mine"):
    line = line.strip()
    if not line.startswith("{"): continue
    rec = json.loads(line)
    (mpp if rec["test"].startswith("pp") else mtg).append(rec["tps_median"])
def row(name, a, b):
    if not a or not b:
        print(f"{name:6} missing data (lamina {len(a)} rounds, llama.cpp {len(b)})"); return
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{name:6} lamina {ma:9.2f} t/s [{min(a):.2f}..{max(a):.2f}]   "
          f"llama.cpp {mb:9.2f} t/s [{min(b):.2f}..{max(b):.2f}]   ratio {ma/mb:5.2f}x")
row(f"pp{P}", mpp, lpp)
row(f"tg{N}", mtg, ltg)
PY
# peak RSS of a short generation (weights are mmapped, not copied)
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f 'peak RSS of `lamina run -n 16`: %M KiB' "$LAMINA" --config "$CFG" run -q "$MODEL" "Hello" -n 16 --temp 0 >/dev/null 2>"$CFG.rss" || true
  tail -1 "$CFG.rss"
  echo "model file: $(( $(stat -c %s "$MODEL") / 1024 )) KiB"
fi
