#!/usr/bin/env bash
# bench-spec.sh - what speculative decoding from the text so far (prompt
# lookup, [generate] speculative) gains and costs: `lamina run` generation
# speed with --spec and with --no-spec on the same model, prompts, threads
# and machine, in one run.  Not a test: it prints figures.
#
#   scripts/bench-spec.sh [MODEL.gguf] [-n TOKENS] [-r ROUNDS] [-t THREADS]
#
#   -n TOKENS   tokens to generate per run (default 128)
#   -r ROUNDS   alternating rounds (default 5); medians over rounds
#   -t THREADS  [model] threads (default: the number of cores)
#
# Three prompts, greedy: "copy" (a paragraph, then the start of its exact
# copy: the answer copies text from the prompt), "code" (a function, then
# the start of the same function with a variable renamed: an edit that
# copies most lines), "free" (a question answered in new words: drafts are
# rarely kept, the adaptive policy should turn itself off).  Each round runs
# every prompt once without and once with speculation (order alternating);
# the figure is generation tokens/s as `lamina run` reports it (prompt
# processing excluded), with the share of drafted tokens kept.  Both
# outputs of a round must be byte-identical: the script says so when not.
# lamina: $LAMINA (default: the installed _install/bin/lamina; a build
# tree's runtime/lamina works too).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODEL=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models/gemma-3-270m-q4_k_m.gguf
NTOK=128; R=5; THREADS=0
while [ $# -gt 0 ]; do
  case $1 in
    -n) NTOK=$2; shift 2 ;; -r) R=$2; shift 2 ;; -t) THREADS=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "bench-spec: unknown option $1" >&2; exit 2 ;;
    *) MODEL=$1; shift ;;
  esac
done
. "$ROOT/scripts/bench-lib.sh"
bench_use_lamina bench-spec
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
printf '[model]\nthreads = %s\n' "$THREADS" > "$WORK/lamina.ini"

TEXT="Lighthouses were once tended by keepers who trimmed the wicks, wound the clockwork that turned the lens, and logged every passing ship in a leather-bound book. Today most of them run on their own, watched from afar by engineers who rarely visit, and the old logbooks sit in museums where visitors read the names of ships that sank long ago."
printf 'Original text:\n%s\n\nExact copy of the original text:\nLighthouses were once' "$TEXT" > "$WORK/copy"
cat > "$WORK/code" <<'C'
def total_price(items, tax_rate):
    subtotal = 0
    for item in items:
        subtotal += item.price * item.quantity
    discount = 0
    if subtotal > 100:
        discount = subtotal * 0.05
    taxed = (subtotal - discount) * (1 + tax_rate)
    return round(taxed, 2)

# The same function with `subtotal` renamed to `net`:
def total_price(items, tax_rate):
    net = 0
C
printf 'Question: Why do cats purr, and what does it tell us about how they feel?\nAnswer:' > "$WORK/free"

# one run: prints "tok/s drafted accepted" of the generation; the text into $2
run() {
  "$LAMINA" --config "$WORK/lamina.ini" run "$MODEL" --raw --temp 0 -n "$NTOK" "$3" < "$WORK/$1" \
    > "$2" 2>"$WORK/err" || { sed 's/^/  /' "$WORK/err" >&2; exit 1; }
  sed -n 's/.*generated [0-9]* tokens [0-9.]* s, \([0-9.]*\) tok\/s\(; drafted \([0-9]*\) accepted \([0-9]*\)\)\{0,1\}.*/\1 \3 \4/p' \
    "$WORK/err" | tail -n 1
}
echo "model $(basename "$MODEL"), $NTOK tokens, $R rounds, threads ${THREADS/#0/all} of $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cpu: $(bench_cpu)"
for p in copy code free; do
  : > "$WORK/$p.off"; : > "$WORK/$p.on"
  for i in $(seq 1 "$R"); do
    if [ $((i % 2)) = 1 ]; then
      run $p "$WORK/out.off" --no-spec >> "$WORK/$p.off"; run $p "$WORK/out.on" --spec >> "$WORK/$p.on"
    else
      run $p "$WORK/out.on" --spec >> "$WORK/$p.on"; run $p "$WORK/out.off" --no-spec >> "$WORK/$p.off"
    fi
    cmp -s "$WORK/out.off" "$WORK/out.on" || echo "$p: round $i: the outputs differ!"
  done
  python3 - "$p" "$WORK/$p.off" "$WORK/$p.on" <<'PY'
import statistics, sys
def load(p):
    rows = [l.split() for l in open(p) if l.strip()]
    return [float(r[0]) for r in rows], sum(int(r[1]) for r in rows if len(r) > 2), \
           sum(int(r[2]) for r in rows if len(r) > 2)
name = sys.argv[1]
off, _, _ = load(sys.argv[2]); on, d, a = load(sys.argv[3])
mo, mn = statistics.median(off), statistics.median(on)
acc = f"{a}/{d} drafts kept ({100 * a / d:.0f}%)" if d else "no drafts"
print(f"{name}: plain median {mo:.1f} tok/s ({min(off):.1f}-{max(off):.1f}); "
      f"speculative {mn:.1f} tok/s ({min(on):.1f}-{max(on):.1f}), {acc}; ratio {mn / mo:.3f}")
PY
done
