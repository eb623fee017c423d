#!/usr/bin/env bash
# bench-serve.sh - `lamina serve` and llama.cpp's llama-server side by side:
# aggregate generated tokens/s, requests/min and time to first token at 1, 4
# and 8 concurrent clients sending short prompts, and each server's peak
# RSS, on the same model, threads, slot count and machine, in one run.
# Not a test: it prints figures.
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
# temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, a per-request seed,
# streamed: "stream": true with stream_options.include_usage) one request
# after the other; a measurement is the wall time from the first request to
# the last reply's end, tokens are the streams' usage.completion_tokens
# (llama-server puts usage in its last chunk, lamina in a chunk of its own
# after it).  Time to first token (TTFT) is, per request, the time from
# sending it to the first SSE chunk carrying generated text, so it counts
# the wait for a slot, the prompt and the first step under the load of the
# other clients.  The tokens/s are those of streamed requests: compare them
# with other runs of this script, not with figures of its earlier,
# non-streamed form (a single request takes the same time either way, but
# on a loaded 2-core machine lamina's tokens/s at 4 clients came out higher
# streamed than whole).  Rounds alternate lamina / llama-server per client
# count, because the machine is shared and noisy.
#
# The report: per client count, tokens/s (median of rounds, the range),
# requests/min, each server's scaling (tokens/s at N clients over the
# first count) and the ratio lamina / llama-server (> 1: lamina ahead);
# then the median and 90th percentile TTFT in ms over every request of all
# rounds (the warm-up left out) and the ratio of the medians lamina /
# llama-server (< 1: lamina ahead); then each server's peak RSS (VmHWM of
# the server process, read just before it is stopped; both map the model
# file, so its resident pages count) beside the model file's size, in MiB.
#
# lamina: $LAMINA (default: the installed _install/bin/lamina; a build-tree
# runtime/lamina works too, its plugins and probe helper are found beside
# it, scripts/bench-lib.sh).  llama-server: $LAMINA_PEER_DIR/build/bin/llama-server,
# built by scripts/peer-build.sh.  Both listen on 127.0.0.1 only.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODEL=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models/gemma-3-270m-q4_k_m.gguf
CLIENTS="1 4 8"; NTOK=64; K=3; R=3; T=$(nproc); CTX=512; PEER_ON=1
while [ $# -gt 0 ]; do
  case $1 in
    -c) CLIENTS=$2; shift 2 ;; -n) NTOK=$2; shift 2 ;; -k) K=$2; shift 2 ;;
    -r) R=$2; shift 2 ;; -t) T=$2; shift 2 ;; --ctx) CTX=$2; shift 2 ;;
    --no-peer) PEER_ON=0; shift ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    -*) echo "bench-serve.sh: unknown option $1" >&2; exit 2 ;;
    *) MODEL=$1; shift ;;
  esac
done
[ -s "$MODEL" ] || { echo "model not found: $MODEL (run ./setup.sh)" >&2; exit 1; }
. "$ROOT/scripts/bench-lib.sh"
bench_use_lamina bench-serve
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
echo "machine  $(bench_cpu), $(nproc) cores; threads $T"
echo "servers  lamina serve ($("$LAMINA" version)) $LURL${PURL:+; llama-server $PURL}; $SLOTS slots x $CTX positions each"
echo "load     clients: $CLIENTS; $K requests per client; max_tokens $NTOK; $R alternating rounds"
"$PY" - "$LURL" "$NAME" "$PURL" "$CLIENTS" "$NTOK" "$K" "$R" "$MODEL" "$LPID" "${PPID2:-0}" <<'PY'
import http.client, json, os, statistics, sys, threading, time, urllib.parse
lurl, name, purl, clients, ntok, K, R = sys.argv[1], sys.argv[2], sys.argv[3], [int(x) for x in sys.argv[4].split()], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
model_file, lpid, ppid = sys.argv[8], int(sys.argv[9]), int(sys.argv[10])
PROMPTS = ["The capital of France is", "Once upon a time,", "The best way to learn to cook is",
           "Here is a short poem about the sea:", "Three facts about the moon:", "My favourite animal is",
           "The history of the bicycle begins", "To make a cup of tea, first", "A good morning routine includes",
           "The weather today is", "In the year 2050, cities will", "The main ingredients of bread are",
           "A letter to a friend: Dear Sam,", "The rules of chess are simple:", "Why do cats purr? Because",
           "Ten minutes into the film,"]
def one(url, model, i):
    """one streamed request: (completion tokens, seconds to the first text chunk or None)"""
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    body = json.dumps({"model": model, "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": ntok,
                       "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "seed": i,
                       "stream": True, "stream_options": {"include_usage": True}})
    t0 = time.monotonic()
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        data = r.read(); c.close()
        raise RuntimeError(f"{url}: HTTP {r.status}: {data[:200]!r}")
    ttft = None; ntoks = None
    while True:
        line = r.readline()
        if not line: break
        line = line.strip()
        if not line.startswith(b"data:"): continue
        data = line[5:].strip()
        if data == b"[DONE]": break
        ev = json.loads(data)
        if "error" in ev: raise RuntimeError(f"{url}: error in the stream: {data[:200]!r}")
        if ttft is None and any(ch.get("text") for ch in ev.get("choices") or []):
            ttft = time.monotonic() - t0
        if ev.get("usage"): ntoks = ev["usage"]["completion_tokens"]
    c.close()
    if ntoks is None: raise RuntimeError(f"{url}: the stream ended without usage")
    return ntoks, ttft
def measure(url, model, n, seed0):
    """n clients, K requests each: (tokens/s, requests/min, [TTFT s of each request with text])"""
    toks = [0] * n
    ttfts = []
    errs = []
    def client(k):
        try:
            for j in range(K):
                nt, tf = one(url, model, seed0 + k * K + j)
                toks[k] += nt
                if tf is not None: ttfts.append(tf)
        except Exception as e:
            errs.append(str(e))
    th = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    t0 = time.monotonic()
    for t in th: t.start()
    for t in th: t.join()
    dt = time.monotonic() - t0
    if errs: raise RuntimeError(errs[0])
    return sum(toks) / dt, n * K * 60.0 / dt, ttfts
def peak_rss_mib(pid, names):
    """VmHWM of the server process; names: what its /proc comm may be"""
    with open(f"/proc/{pid}/comm") as f: comm = f.read().strip()
    if comm not in names: raise RuntimeError(f"process {pid} is '{comm}', not the server ({' or '.join(names)})")
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith("VmHWM:"): return int(l.split()[1]) / 1024.0
    raise RuntimeError(f"/proc/{pid}/status: no VmHWM line")
servers = [("lamina", lurl, name)] + ([("llama-server", purl, "x")] if purl else [])
for _, url, model in servers:                       # warm-up: first requests, caches
    measure(url, model, max(clients), 10000)
res = {(s[0], c): [] for s in servers for c in clients}
ttft = {(s[0], c): [] for s in servers for c in clients}
for r in range(R):
    for c in clients:
        for s, url, model in servers:
            tps, rpm, tf = measure(url, model, c, 1000 * r + 100 * c)
            res[(s, c)].append((tps, rpm))
            ttft[(s, c)] += tf
    print(f"# round {r + 1}/{R} done", file=sys.stderr, flush=True)
rss = {"lamina": peak_rss_mib(lpid, ("lamina", "lt-lamina"))}
if purl: rss["llama-server"] = peak_rss_mib(ppid, ("llama-server",))
def med(v, i): return statistics.median(x[i] for x in v)
def rng(v, i): return f"[{min(x[i] for x in v):.1f}..{max(x[i] for x in v):.1f}]"
def pct(v, q):
    """the q-quantile of v in ms (linear between order statistics); nan when empty"""
    if not v: return float("nan")
    v = sorted(v); x = q * (len(v) - 1); i = int(x)
    return 1000.0 * (v[i] + (v[min(i + 1, len(v) - 1)] - v[i]) * (x - i))
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
hdr = f"{'clients':>7} | {'lamina TTFT p50 ms':>18} {'p90 ms':>8} {'n':>4}"
if purl: hdr += f" | {'llama-server TTFT p50 ms':>24} {'p90 ms':>8} {'n':>4} | {'lamina/peer':>11}"
print(hdr); print("-" * len(hdr))
for c in clients:
    L = ttft[("lamina", c)]
    line = f"{c:>7} | {pct(L,.5):>18.1f} {pct(L,.9):>8.1f} {len(L):>4}"
    if purl:
        P = ttft[("llama-server", c)]
        line += f" | {pct(P,.5):>24.1f} {pct(P,.9):>8.1f} {len(P):>4} | {pct(L,.5)/pct(P,.5):>10.2f}x"
    print(line)
print()
msz = os.path.getsize(model_file) / 1048576.0
for s in rss: print(f"peak RSS {s:<12} {rss[s]:>9.1f} MiB   (model file {msz:.1f} MiB)")
print()
print("tok/s: generated tokens per second summed over clients (median of rounds); req/min: requests")
print(f"completed per minute; x1: tok/s over {clients[0]} client(s); lamina/peer: ratio of the tok/s medians")
print("(> 1: lamina ahead).  TTFT: time from sending a streamed request to its first text chunk, median")
print("(p50) and 90th percentile over the n requests of all rounds; lamina/peer: ratio of the TTFT medians")
print("(< 1: lamina ahead).  Peak RSS: the server process's VmHWM at the end of the run.")
PY
