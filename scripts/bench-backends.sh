#!/usr/bin/env bash
# bench-backends.sh - how long `lamina backends` takes cold (every plugin
# probed and self-tested in its helper process: --reprobe) and warm (the
# probe cache answers), as medians with min..max over several runs.
#
#   scripts/bench-backends.sh [-w WARM_RUNS] [-c COLD_RUNS] [-- LAMINA ARGS...]
#
# LAMINA (default ./_install/bin/lamina) is the binary measured; arguments
# after -- go before `backends` (e.g. -- --config my.ini).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAMINA=${LAMINA:-$ROOT/_install/bin/lamina}
W=20; C=3
while [ $# -gt 0 ]; do
  case $1 in
    -w) W=$2; shift 2 ;; -c) C=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench-backends.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$LAMINA" ] || { echo "lamina not found at $LAMINA (run ./setup.sh)" >&2; exit 1; }
exec python3 - "$LAMINA" "$W" "$C" "$@" <<'PY'
import statistics, subprocess, sys, time
lamina, warm, cold, extra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
def run(args):
    t = time.perf_counter()
    r = subprocess.run([lamina] + extra + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = (time.perf_counter() - t) * 1e3
    if r.returncode != 0:
        sys.exit("lamina %s exited %d" % (" ".join(args), r.returncode))
    return dt
def report(name, xs):
    print("%-28s median %8.1f ms  [%.1f .. %.1f] over %d runs" % (name, statistics.median(xs), min(xs), max(xs), len(xs)))
c = [run(["--reprobe", "backends"]) for _ in range(cold)]
run(["backends"])                      # the cache is written by the cold runs; one more to settle
w = [run(["backends"]) for _ in range(warm)]
report("cold (--reprobe)", c)
report("warm (probe cache)", w)
PY
