#!/usr/bin/env python3
"""soak_check.py: a steady mixed load on a running `lamina serve`, a device
lost partway through, and what the server did meanwhile.

Used by scripts/soak.sh (the soak benchmark: a report) and by
tests/server/soak_short.sh (the same for a minute or so: TAP checks).

  soak_check.py --url URL --pid PID --duration S --lose-at S --lose-file F
                --log SERVER_LOG --out DIR [--clients N] [--model M]
                [--embed-model M] [--tap]

Clients (threads) send, one after another until the duration is over, a
mix of requests (between them, their first requests are one of each kind;
then each is drawn with a fixed seed):
  generate, generate_stream   Ollama /api/generate, whole or NDJSON
  chat, chat_stream           Ollama /api/chat
  oai_chat_stream             OpenAI /v1/chat/completions, SSE
  embed, oai_embed            /api/embed, /v1/embeddings
  abandon                     a stream the client closes after 3 lines
  slow_reader                 a stream read a line at a time with a pause
Each request ends "ok" (a complete answer: done, [DONE], finish_reason,
vectors), "abandoned" (as meant) or "failed" (with what came: status,
error text or exception).

A sampler reads every few seconds the server's resident memory and open
descriptors (/proc/PID) and /metrics (device failovers, events).  At
--lose-at seconds it creates --lose-file: the "lossy" test plugin then
answers LAMINA_EDEVLOST and the engine moves its layers to the cpu plugin.

Output in --out: requests.jsonl (one line per request), samples.jsonl,
report.json and report.txt (requests by kind, p50/p99 latency per minute,
RSS and descriptors over time, the failover and the stall it caused).
With --tap it also prints TAP checks that hold on any machine, however
loaded: no failed request, exactly one failover and requests answered
after it, memory (the allocator's heap count) and descriptors back where
they were once the load is over.  Nothing here asserts a duration.
"""
import argparse
import http.client
import json
import os
import random
import socket
import statistics
import sys
import threading
import time
import urllib.parse

KINDS = [  # (kind, weight)
    ("generate", 3), ("generate_stream", 3), ("chat", 2), ("chat_stream", 2), ("oai_chat_stream", 2),
    ("embed", 2), ("oai_embed", 1), ("abandon", 1), ("slow_reader", 1),
]
PROMPTS = ["Once upon a time", "The quick brown fox", "Tell me about the sea", "1, 2, 3,", "Why is the sky blue?",
           "A list of fruits:", "Hello", "In the beginning"]

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--pid", type=int, required=True)
ap.add_argument("--duration", type=float, required=True)
ap.add_argument("--lose-at", type=float, default=-1)
ap.add_argument("--lose-file", default="")
ap.add_argument("--log", default="")
ap.add_argument("--out", required=True)
ap.add_argument("--clients", type=int, default=6)
ap.add_argument("--model", default="tiny-gemma3")
ap.add_argument("--embed-model", default="")
ap.add_argument("--num-predict", type=int, default=24)
ap.add_argument("--sample-every", type=float, default=5.0)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--tap", action="store_true")
A = ap.parse_args()
U = urllib.parse.urlparse(A.url)
EMB = A.embed_model or A.model
os.makedirs(A.out, exist_ok=True)

T0 = time.monotonic()
WALL0 = time.time()
stop = threading.Event()
lock = threading.Lock()
records = []
samples = []
events = {}                     # what happened when, seconds from T0
req_log = open(os.path.join(A.out, "requests.jsonl"), "w")


def now():
    return time.monotonic() - T0


def conn():
    return http.client.HTTPConnection(U.hostname, U.port, timeout=600)


def post(c, path, body):
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return c.getresponse()


def gen_body(kind, rng):
    opts = {"num_predict": A.num_predict, "temperature": 0.7, "seed": rng.randrange(1 << 30)}
    p = rng.choice(PROMPTS)
    if kind in ("chat", "chat_stream"):
        return "/api/chat", {"model": A.model, "messages": [{"role": "user", "content": p}],
                             "stream": kind == "chat_stream", "options": opts}
    if kind == "oai_chat_stream":
        return "/v1/chat/completions", {"model": A.model, "messages": [{"role": "user", "content": p}],
                                        "stream": True, "max_tokens": A.num_predict, "seed": opts["seed"]}
    return "/api/generate", {"model": A.model, "prompt": p, "stream": kind != "generate", "options": opts}


def one(kind, rng):
    """(outcome, detail, gaps): gaps are (t, seconds since the previous line) of a stream"""
    c = conn()
    gaps = []
    try:
        if kind in ("embed", "oai_embed"):
            n = rng.randrange(1, 5)
            inputs = [rng.choice(PROMPTS) + f" #{i}" for i in range(n)]
            if kind == "embed":
                r = post(c, "/api/embed", {"model": EMB, "input": inputs})
            else:
                r = post(c, "/v1/embeddings", {"model": EMB, "input": inputs})
            data = r.read()
            if r.status != 200:
                return "failed", f"{r.status} {data[:200]!r}", gaps
            j = json.loads(data)
            vecs = j["embeddings"] if kind == "embed" else [d["embedding"] for d in j["data"]]
            if len(vecs) != n or not all(len(v) > 0 for v in vecs):
                return "failed", f"{len(vecs)} vectors for {n} inputs", gaps
            return "ok", "", gaps
        path, body = gen_body("generate_stream" if kind in ("abandon", "slow_reader") else kind, rng)
        r = post(c, path, body)
        if r.status != 200:
            return "failed", f"{r.status} {r.read()[:200]!r}", gaps
        if not body["stream"]:
            j = json.loads(r.read())
            return ("ok", "", gaps) if j.get("done") else ("failed", f"not done: {str(j)[:200]}", gaps)
        last = time.monotonic()
        lines = 0
        end = False
        while True:
            line = r.readline()
            if not line:
                break
            t = time.monotonic()
            gaps.append((t - T0, t - last))
            last = t
            line = line.strip()
            if not line:
                continue
            lines += 1
            if kind == "abandon" and lines >= 3:
                c.sock.shutdown(socket.SHUT_RDWR)
                return "abandoned", "", gaps
            if kind == "slow_reader":
                time.sleep(0.25)
            if line.startswith(b"data: "):
                line = line[6:]
                if line == b"[DONE]":
                    end = True
                    continue
                j = json.loads(line)
                if "error" in j:
                    return "failed", f"stream error: {str(j)[:200]}", gaps
                continue
            j = json.loads(line)
            if "error" in j:
                return "failed", f"stream error: {str(j)[:200]}", gaps
            if j.get("done"):
                end = True
        return ("ok", "", gaps) if end else ("failed", f"stream ended without its end after {lines} lines", gaps)
    except Exception as e:  # noqa: BLE001 - every failure is recorded
        return "failed", repr(e)[:200], gaps
    finally:
        c.close()


def client(i):
    rng = random.Random(A.seed * 1000 + i)
    kinds, weights = zip(*KINDS)
    j = 0
    while not stop.is_set() and now() < A.duration:
        # the clients' first requests take every kind in turn, then the draw
        first = i + j * A.clients
        kind = kinds[first] if first < len(kinds) else rng.choices(kinds, weights)[0]
        j += 1
        t = now()
        outcome, detail, gaps = one(kind, rng)
        rec = {"kind": kind, "t": round(t, 3), "lat": round(now() - t, 4), "outcome": outcome, "detail": detail,
               "max_gap": round(max((g for _, g in gaps), default=0.0), 4),
               "p50_gap": round(statistics.median(g for _, g in gaps[1:]), 4) if len(gaps) > 1 else None}
        # the gap that holds the loss, for streams in flight then
        lt = events.get("lost")
        if lt is not None:
            for tg, g in gaps:
                if tg >= lt and tg - g <= lt:
                    rec["loss_gap"] = round(g, 4)
        with lock:
            records.append(rec)
            req_log.write(json.dumps(rec) + "\n")


def metrics():
    try:
        c = conn()
        c.request("GET", "/metrics")
        r = c.getresponse()
        text = r.read().decode()
        c.close()
    except Exception:  # noqa: BLE001
        return {}
    m = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                m[k] = float(v)
            except ValueError:
                pass
    return m


def proc():
    rss = fds = None
    try:
        with open(f"/proc/{A.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        fds = len(os.listdir(f"/proc/{A.pid}/fd"))
    except OSError:
        pass
    return rss, fds


def failovers(m):
    return sum(v for k, v in m.items() if k.startswith("lamina_device_failovers_total"))


def sample():
    rss, fds = proc()
    m = metrics()
    s = {"t": round(now(), 2), "rss": rss, "fds": fds, "heap": m.get("lamina_heap_bytes"),
         "conns": m.get("lamina_http_connections"), "failovers": failovers(m),
         "events": {k[len('lamina_events_total{event="'):-2]: v for k, v in m.items()
                    if k.startswith("lamina_events_total{")}}
    with lock:
        samples.append(s)
    return s


def sampler():
    nxt = 0.0
    while not stop.is_set():
        t = now()
        if A.lose_at >= 0 and "lost" not in events and t >= A.lose_at and A.lose_file:
            open(A.lose_file, "w").close()
            events["lost"] = now()
        if t >= nxt:
            sample()
            nxt = t + A.sample_every
        if "lost" in events and "failover_seen" not in events and failovers(metrics()) >= 1:
            events["failover_seen"] = now()
        time.sleep(0.05 if "lost" in events and "failover_seen" not in events else 0.25)


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def wait_idle(limit=120):
    """until no connection but ours and no model user, bounded"""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        m = metrics()
        users = sum(v for k, v in m.items() if k.startswith("lamina_model_users"))
        if m and m.get("lamina_http_connections", 99) <= 1 and users == 0:
            return True
        time.sleep(0.5)
    return False


def idle_fds(floor, limit=10):
    """the server's descriptors once idle: the fewest seen within limit s,
    stopping when at floor (a connection just closed by a client may take
    the server a moment to close as well)"""
    best = None
    end = time.monotonic() + limit
    while time.monotonic() < end:
        fds = proc()[1]
        if fds is not None and (best is None or fds < best):
            best = fds
        if best is not None and floor is not None and best <= floor:
            break
        time.sleep(0.2)
    return best


# ---- run ----
# warm-up, not counted: each kind once, so that the models are loaded and
# every path has run before the first sample
for i, k in enumerate(kinds_all := [k for k, _ in KINDS]):
    one(k, random.Random(i))
wait_idle()
T0 = time.monotonic()           # the load's clock starts after the warm-up
WALL0 = time.time()
base = sample()
base["fds"] = idle_fds(None, 2)
th = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(A.clients)]
smp = threading.Thread(target=sampler, daemon=True)
smp.start()
for t in th:
    t.start()
for t in th:
    t.join()
stop.set()
smp.join()
idle = wait_idle()
end = sample()
end["fds"] = idle_fds(base["fds"])
req_log.close()

# ---- report ----
kinds = [k for k, _ in KINDS]
by_kind = {k: {"ok": 0, "failed": 0, "abandoned": 0} for k in kinds}
for r in records:
    by_kind[r["kind"]][r["outcome"]] += 1
failed = [r for r in records if r["outcome"] == "failed"]
minutes = {}
for r in records:
    if r["outcome"] == "ok":
        minutes.setdefault(int(r["t"] // 60), []).append(r["lat"])
per_minute = [{"minute": k, "n": len(v), "p50": pct(v, 50), "p99": pct(v, 99)} for k, v in sorted(minutes.items())]
rs = [s for s in samples if s["rss"]]
rss = {"start": rs[0]["rss"] if rs else None, "peak": max(s["rss"] for s in rs) if rs else None,
       "end": rs[-1]["rss"] if rs else None}
# growth per hour: least squares over the samples after the first fifth (warm-up)
tail = [s for s in rs if s["t"] >= A.duration / 5]
if len(tail) >= 3:
    mt = statistics.fmean(s["t"] for s in tail)
    mr = statistics.fmean(s["rss"] for s in tail)
    den = sum((s["t"] - mt) ** 2 for s in tail)
    rss["growth_per_hour"] = sum((s["t"] - mt) * (s["rss"] - mr) for s in tail) / den * 3600 if den else 0
fd = [s["fds"] for s in samples if s["fds"] is not None]
fds = {"start": fd[0] if fd else None, "peak": max(fd) if fd else None, "end": fd[-1] if fd else None}
fo = {"lost_at": events.get("lost"), "failover_seen_at": events.get("failover_seen"),
      "failovers": end["failovers"]}
lg = [r["loss_gap"] for r in records if "loss_gap" in r]
fo["streams_in_flight"] = len(lg)
fo["stall_max"] = max(lg) if lg else None
fo["stall_median"] = statistics.median(lg) if lg else None
if events.get("lost") is not None:
    lt = events["lost"]
    fo["failed_around"] = sum(1 for r in failed if r["t"] <= lt + 60 and r["t"] + r["lat"] >= lt)
    fo["ok_after"] = sum(1 for r in records if r["outcome"] == "ok" and r["t"] > lt)
    before = [r["lat"] for r in records if r["outcome"] == "ok" and lt - 60 <= r["t"] < lt and r["t"] + r["lat"] < lt]
    across = [r["lat"] for r in records if r["outcome"] == "ok" and r["t"] < lt <= r["t"] + r["lat"]]
    fo["latency_p50_minute_before"] = pct(before, 50)
    fo["gap_p50_minute_before"] = pct([r["p50_gap"] for r in records if r.get("p50_gap") is not None and
                                       r["kind"] != "slow_reader" and lt - 60 <= r["t"] < lt], 50)
    fo["latency_max_across_loss"] = max(across) if across else None
    plan = []
    if A.log and os.path.exists(A.log):
        with open(A.log, errors="replace") as f:
            plan = [l.rstrip() for l in f if "lost" in l or " now: " in l][:8]
    fo["server_log"] = plan
report = {"duration": A.duration, "clients": A.clients, "model": A.model, "embed_model": EMB,
          "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(WALL0)),
          "requests": len(records), "by_kind": by_kind, "failed": len(failed),
          "failed_examples": [f"{r['kind']} at {r['t']:.1f} s: {r['detail']}" for r in failed[:10]],
          "per_minute": per_minute, "rss": rss, "fds": fds, "failover": fo,
          "heap": {"start": base.get("heap"), "end": end.get("heap")},
          "idle_at_end": idle, "events": end["events"]}
with open(os.path.join(A.out, "report.json"), "w") as f:
    json.dump(report, f, indent=1)
with open(os.path.join(A.out, "samples.jsonl"), "w") as f:
    for s in samples:
        f.write(json.dumps(s) + "\n")


def mib(b):
    return "?" if b is None else f"{b / 1048576:.1f} MiB"


def sec(x):
    return "?" if x is None else f"{x:.3f} s"


L = []
L.append(f"soak: {A.duration:.0f} s, {A.clients} clients, model {A.model} (embeddings: {EMB}), from {report['started']}")
L.append(f"requests: {len(records)}, failed {len(failed)}")
L.append("  kind               ok  failed  abandoned")
for k in kinds:
    b = by_kind[k]
    L.append(f"  {k:<17}{b['ok']:>5}{b['failed']:>8}{b['abandoned']:>11}")
for e in report["failed_examples"]:
    L.append(f"  failed: {e}")
L.append("latency of answered requests per minute (s): minute n p50 p99")
for p in per_minute:
    L.append(f"  {p['minute']:>3} {p['n']:>5} {p['p50']:.3f} {p['p99']:.3f}")
L.append(f"RSS: start {mib(rss['start'])}, peak {mib(rss['peak'])}, end {mib(rss['end'])}, "
         f"growth {mib(rss.get('growth_per_hour'))} per hour (fit after the first fifth)")
L.append(f"open fds: start {fds['start']}, peak {fds['peak']}, end {fds['end']} (start and end: idle)")
L.append(f"heap (allocator count): start {mib(report['heap']['start'])}, end {mib(report['heap']['end'])}")
if fo["lost_at"] is not None:
    L.append(f"device loss: file created at {fo['lost_at']:.1f} s, failover counted in /metrics by "
             f"{sec(fo['failover_seen_at'])} (polled every 0.05 s), failovers {fo['failovers']:.0f}")
    L.append(f"  streams in flight across the loss: {fo['streams_in_flight']}, their stall (gap between lines "
             f"holding the loss): max {sec(fo['stall_max'])}, median {sec(fo['stall_median'])} "
             f"(usual gap between lines the minute before: {sec(fo['gap_p50_minute_before'])})")
    L.append(f"  answered requests across the loss: longest {sec(fo['latency_max_across_loss'])} "
             f"(p50 the minute before: {sec(fo['latency_p50_minute_before'])}); failed around it: "
             f"{fo['failed_around']}; answered after it: {fo['ok_after']}")
    for line in fo["server_log"]:
        L.append(f"  log: {line}")
L.append(f"events: {json.dumps(end['events'])}")
L.append(f"server idle at the end (no connection but the sampler's, no model user): {idle}")
with open(os.path.join(A.out, "report.txt"), "w") as f:
    f.write("\n".join(L) + "\n")
print("\n".join("# " + l for l in L), flush=True)

if A.tap:
    n = bad = 0

    def ok(c, d):
        global n, bad
        n += 1
        bad += not c
        print(("ok" if c else "not ok") + f" {n} - {d}", flush=True)

    ok(len(records) > 0 and all(by_kind[k]["ok"] > 0 for k in kinds if k != "abandon"),
       f"every kind of request was answered at least once ({len(records)} requests)")
    ok(by_kind["abandon"]["abandoned"] > 0, "clients abandoned streams")
    ok(not failed, f"no request failed ({len(failed)})")
    if A.lose_at >= 0:
        ok(fo["failovers"] == 1, f"the device loss was one failover ({fo['failovers']})")
        ok(fo.get("ok_after", 0) > 0, f"requests answered after the loss ({fo.get('ok_after')})")
        ok(any("lost" in l for l in fo["server_log"]), "the server log names the loss")
    ok(idle, "afterwards no connection is left open and no request holds the model")
    hs, he = report["heap"]["start"], report["heap"]["end"]
    ok(hs is not None and he is not None and he <= hs + 8 * 1048576,
       f"heap in use back near its level before the load ({mib(hs)} -> {mib(he)}, 8 MiB allowed)")
    ok(fds["start"] is not None and fds["end"] is not None and fds["end"] <= fds["start"],
       f"open descriptors back to their count before the load ({fds['start']} -> {fds['end']})")
    print(f"1..{n}")
    sys.exit(1 if bad else 0)
