#!/usr/bin/env bash
# bench-format.sh - what structured output costs: `lamina run` generation
# speed with a JSON schema (grammar-constrained sampling, every step masked
# against the whole vocabulary) over the same generation without one, on
# the same model, prompt, threads and machine, in one run.  Not a test: it
# prints figures.
#
#   scripts/bench-format.sh [MODEL.gguf] [-n TOKENS] [-r ROUNDS] [--schema FILE]
#
#   -n TOKENS  tokens to generate per run (default 200; a schema run ends
#              earlier when its value is complete)
#   -r ROUNDS  alternating rounds (default 7); medians over rounds
#   --schema   the JSON schema (default: an object of a string, an integer,
#              an enum, a boolean and an array of at most 8 short strings)
#
# Each round runs the model once without and once with --format (order
# alternating), temperature 1 with a per-round seed so that both produce
# text for the whole budget; the figure is generation tokens/s as `lamina
# run` reports it (prompt processing excluded).  The ratio is with / without
# (1: no cost).  lamina: $LAMINA (default: the installed _install/bin/lamina;
# a build tree's runtime/lamina works too).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODEL=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models/gemma-3-270m-q4_k_m.gguf
NTOK=200; R=7; SCHEMA=
while [ $# -gt 0 ]; do
  case $1 in
    -n) NTOK=$2; shift 2 ;; -r) R=$2; shift 2 ;; --schema) SCHEMA=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "bench-format: unknown option $1" >&2; exit 2 ;;
    *) MODEL=$1; shift ;;
  esac
done
. "$ROOT/scripts/bench-lib.sh"
bench_use_lamina bench-format
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -z "$SCHEMA" ]; then
  SCHEMA=$WORK/schema.json
  cat > "$SCHEMA" <<'J'
{"type": "object", "properties": {
  "name": {"type": "string", "maxLength": 40}, "age": {"type": "integer"},
  "role": {"enum": ["engineer", "artist", "farmer", "doctor"]}, "active": {"type": "boolean"},
  "tags": {"type": "array", "items": {"type": "string", "maxLength": 16}, "maxItems": 8}},
  "required": ["name", "age", "role", "active", "tags"]}
J
fi
PROMPT="Describe a fictional person as a JSON object with a name, age, role, whether they are active, and some tags."

# one run: prints "tokens tok/s" of the generation
run() {
  "$LAMINA" run "$MODEL" "$PROMPT" -n "$NTOK" --temp 1 --seed "$1" "${@:2}" >/dev/null 2>"$WORK/err" || {
    sed 's/^/  /' "$WORK/err" >&2; exit 1; }
  sed -n 's/.*generated \([0-9]*\) tokens [0-9.]* s, \([0-9.]*\) tok\/s.*/\1 \2/p' "$WORK/err" | tail -n 1
}
echo "model $(basename "$MODEL"), $NTOK tokens, $R rounds, $(nproc) threads"
echo "cpu: $(bench_cpu)"
: > "$WORK/free"; : > "$WORK/json"
for i in $(seq 1 "$R"); do
  if [ $((i % 2)) = 1 ]; then
    run "$i" >> "$WORK/free"; run "$i" --format "@$SCHEMA" >> "$WORK/json"
  else
    run "$i" --format "@$SCHEMA" >> "$WORK/json"; run "$i" >> "$WORK/free"
  fi
done
python3 - "$WORK/free" "$WORK/json" <<'PY'
import statistics, sys
def load(p):
    rows = [tuple(map(float, l.split())) for l in open(p) if l.strip()]
    return [r[1] for r in rows], [int(r[0]) for r in rows]
free, nf = load(sys.argv[1]); js, nj = load(sys.argv[2])
mf, mj = statistics.median(free), statistics.median(js)
print(f"without schema: median {mf:.1f} tok/s (range {min(free):.1f}-{max(free):.1f}; tokens {min(nf)}-{max(nf)})")
print(f"with schema:    median {mj:.1f} tok/s (range {min(js):.1f}-{max(js):.1f}; tokens {min(nj)}-{max(nj)})")
print(f"ratio with/without: {mj / mf:.3f}")
PY
