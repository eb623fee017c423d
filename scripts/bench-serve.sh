#!/usr/bin/env bash
# bench-serve.sh - `lamina serve` and llama.cpp's llama-server side by side:
# aggregate generated tokens/s and requests/min at 1, 4 and 8 concurrent
# clients sending short prompts, on the same model, threads, slot count and
# machine, in one run.  Not a test: it prints figures.
#
#   scripts/bench-serve.sh [MODEL.gguf] [-c "1 4 8"] [-n TOKENS] [-k REQS] [-r ROUNDS]
#                          [-t THREADS] [--ctx N] [--no-peer]
#
#   -c LIST    client counts (default "1 4 8"); both servers get as many
#              slots as the largest count
#   -n TOKENS  max_tokens per request (default 64)
#   -k REQS    requests per client per measurement (default 3)
#   -r ROUNDS  alternating rounds (default 3); medians over rounds are shown
#   -t THREADS compute threads for both (default: nproc)
#   --ctx N    positions per slot for both (default 512)
#   --no-peer  lamina only
#
# Each client sends POST /v1/completions (a short prompt, max_tokens,
# temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, a per-request seed)
# one request after the other; a measurement is the wall time from the first
# request to the last reply, tokens are the replies' usage.completion_tokens.
# Rounds alternate lamina / llama-server per client count, because the
# machine is shared and noisy.  The report gives medians, the range, the
# ratio lamina / llama-server (> 1: lamina ahead) and each server's scaling
# (aggregate tokens/s at N clients over 1 client).
#
# lamina: $LAMINA (default: the installed _install/bin/lamina; a build-tree
# runtime/lamina works too, its plugins and probe helper are found beside
# it).  llama-server: $LAMINA_PEER_DIR/build/bin/llama-server, built by
# scripts/peer-build.sh.  Both listen on 127.0.0.1 only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODEL=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models/gemma-3-270m-q4_k_m.gguf
CLIENTS="1 4 8"; NTOK=64; K=3; R=3; T=$(nproc); CTX=512; PEER_ON=1
while [ $# -gt 0 ]; do
  case $1 in
    -c) CLIENTS=$2; shift 2 ;; -n) NTOK=$2; shift 2 ;; -k) K=$2; shift 2 ;;
    -r) R=$2; shift 2 ;; -t) T=$2; shift 2 ;; --ctx) CTX=$2; shift 2 ;;
    --no-peer) PEER_ON=0; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "bench-serve.sh: unknown option $1" >&2; exit 2 ;;
    *) MODEL=$1; shift ;;
  esac
done
[ -s "$MODEL" ] || { echo "model not found: $MODEL (run ./setup.sh)" >&2; exit 1; }
LAMINA=${LAMINA:-$ROOT/_install/bin/lamina}
[ -x "$LAMINA" ] || { echo "lamina not found at $LAMINA (run ./setup.sh, or set LAMINA)" >&2; exit 1; }
# a build-tree binary: use its plugins and probe helper
LDIR=$(cd "$(dirname "$LAMINA")" && pwd)
if [ -x "$LDIR/lamina-probe" ] && [ -d "$LDIR/../plugins/cpu/.libs" ]; then
  export LAMINA_PROBE_HELPER=$LDIR/lamina-probe LAMINA_PLUGIN_PATH=$LDIR/../plugins/cpu/.libs
fi
PY=$ROOT/.venv/bin/python; [ -x "$PY" ] || PY=python3
PEER=${LAMINA_PEER_DIR:-$ROOT/.peer}
LS=$PEER/build/bin/llama-server
if [ $PEER_ON = 1 ] && [ ! -x "$LS" ]; then "$ROOT/scripts/peer-build.sh" >&2; fi
export LD_LIBRARY_PATH="$PEER/build/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

SLOTS=0; for c in $CLIENTS; do [ "$c" -gt $SLOTS ] && SLOTS=$c; done
W=$(mktemp -d); LPID=; PPID2=
cleanup() { [ -n "$LPID" ] && kill "$LPID" 2>/dev/null; [ -n "$PPID2" ] && kill "$PPID2" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

# lamina serve: the model's directory as model dir, the file's stem as its name
NAME=$(basename "$MODEL" .gguf)
cat > "$W/lamina.ini" <<EOF
[scheduler]
backends = cpu
[model]
dirs = $(cd "$(dirname "$MODEL")" && pwd)
[server]
listen = 127.0.0.1:0
parallel = $SLOTS
n_ctx = $CTX
queue = 256
keep_alive = -1
[backend.cpu]
threads = $T
EOF
XDG_CACHE_HOME=$W/cache "$LAMINA" --config "$W/lamina.ini" serve -q --preload "$NAME" >"$W/lamina.log" 2>&1 &
LPID=$!
for _ in $(seq 600); do grep -q "listening on" "$W/lamina.log" && grep -q "loaded " "$W/lamina.log" && break
  kill -0 $LPID 2>/dev/null || break; sleep 0.1; done
LURL=http://$(grep -o 'listening on http://[^ ]*' "$W/lamina.log" | sed 's|.*http://||')
grep -q "loaded " "$W/lamina.log" || { echo "lamina serve did not start:" >&2; cat "$W/lamina.log" >&2; exit 1; }

PURL=
if [ $PEER_ON = 1 ]; then
  PPORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$LS" -m "$MODEL" -t "$T" -tb "$T" -np "$SLOTS" -c $((SLOTS * CTX)) -ngl 0 --host 127.0.0.1 --port "$PPORT" \
    >"$W/peer.log" 2>&1 &
  PPID2=$!
  PURL=http://127.0.0.1:$PPORT
  for _ in $(seq 600); do curl -sf "$PURL/health" >/dev/null 2>&1 && break
    kill -0 $PPID2 2>/dev/null || { echo "llama-server did not start:" >&2; tail -20 "$W/peer.log" >&2; exit 1; }; sleep 0.1; done
fi

echo "model    $MODEL"
echo "machine  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $T"
echo "servers  lamina serve ($("$LAMINA" version)) $LURL${PURL:+; llama-server $PURL}; $SLOTS slots x $CTX positions each"
echo "load     clients: $CLIENTS; $K requests per client; max_tokens $NTOK; $R alternating rounds"
"$PY" - "$LURL" "$NAME" "$PURL" "$CLIENTS" "$NTOK" "$K" "$R" <<'PY'
import http.client, json, statistics, sys, threading, time, urllib.parse
lurl, name, purl, clients, ntok, K, R = sys.argv[1], sys.argv[2], sys.argv[3], [int(x) for x in sys.argv[4].split()], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
PROMPTS = ["The capital of France is", "Once upon a time,", "The best way to learn to cook is",
           "Here is a short poem about the sea:", "Three facts about the moon:", "My favourite animal is",
           "The history of the bicycle begins", "To make a cup of tea, first", "A good morning routine includes",
           "The weather today is", "In the year 2050, cities will", "The main ingredients of bread are",
           "A letter to a friend: Dear Sam,", "The rules of chess are simple:", "Why do cats purr? Because",
           "Ten minutes into the film,"]
def one(url, model, i):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({"model": model, "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": ntok,
                       "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "seed": i, "stream": False})
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"{url}: HTTP {r.status}: {data[:200]!r}")
    return json.loads(data)["usage"]["completion_tokens"]
def measure(url, model, n, seed0):
    toks = [0] * n
    errs = []
    def client(k):
        try:
            for j in range(K):
                toks[k] += one(url, model, seed0 + k * K + j)
        except Exception as e:
            errs.append(str(e))
    th = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    t0 = time.monotonic()
    for t in th: t.start()
    for t in th: t.join()
    dt = time.monotonic() - t0
    if errs: raise RuntimeError(errs[0])
    return sum(toks) / dt, n * K * 60.0 / dt
servers = [("lamina", lurl, name)] + ([("llama-server", purl, "x")] if purl else [])
for _, url, model in servers:                       # warm-up: first requests, caches
    measure(url, model, max(clients), 10000)
res = {(s[0], c): [] for s in servers for c in clients}
for r in range(R):
    for c in clients:
        for s, url, model in servers:
            res[(s, c)].append(measure(url, model, c, 1000 * r + 100 * c))
    print(f"# round {r + 1}/{R} done", file=sys.stderr, flush=True)
def med(v, i): return statistics.median(x[i] for x in v)
def rng(v, i): return f"[{min(x[i] for x in v):.1f}..{max(x[i] for x in v):.1f}]"
print()
hdr = f"{'clients':>7} | {'lamina tok/s':>12} {'range':>15} {'req/min':>8} {'x1':>5}"
if purl: hdr += f" | {'llama-server tok/s':>18} {'range':>15} {'req/min':>8} {'x1':>5} | {'lamina/peer':>11}"
print(hdr); print("-" * len(hdr))
for c in clients:
    L = res[("lamina", c)]
    line = f"{c:>7} | {med(L,0):>12.1f} {rng(L,0):>15} {med(L,1):>8.1f} {med(L,0)/med(res[('lamina', clients[0])],0):>5.2f}"
    if purl:
        P = res[("llama-server", c)]
        line += (f" | {med(P,0):>18.1f} {rng(P,0):>15} {med(P,1):>8.1f} {med(P,0)/med(res[('llama-server', clients[0])],0):>5.2f}"
                 f" | {med(L,0)/med(P,0):>10.2f}x")
    print(line)
print()
print("tok/s: generated tokens per second summed over clients (median of rounds); req/min: requests")
print(f"completed per minute; x1: tok/s over {clients[0]} client(s); lamina/peer: ratio of the tok/s medians")
PY
