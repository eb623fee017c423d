#!/usr/bin/env python3
"""replicas_check.py LAMINA INI WORKDIR: a rolling restart behind haproxy, as TAP.

Three `lamina serve` replicas on loopback ports, haproxy in front of them
(health checks on GET /health; a refused connection, an empty response or
a 503 is retried on another replica), and a bounded mixed load through
haproxy: Ollama /api/generate and /api/chat and OpenAI
/v1/chat/completions, streamed and not, each request carrying its own id
(X-Request-Id and the prompt).  Mid-load one replica gets SIGTERM while it
has requests in flight (at least a long stream sent to it directly, which
must end whole); it drains and exits 0, is started again on the same port,
haproxy marks it up and it takes part of the rest of the load.

Why a retry cannot run a request twice: a draining replica answers 503
before any work is started (the check comes before the request body is
even read), a stopped one refuses the connection, and lamina's other 503s
(queue full, no room to load a model) are also answered before work
starts.  The test does not take that on trust: it counts completed
generations in every replica instance's log and compares them with what
haproxy logged per request id and per replica.

Every wait is bounded; nothing here measures time.
"""
import collections
import http.client
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taplib import ok, done  # noqa: E402

LAMINA, INI, WORK = sys.argv[1:4]
HAPROXY = os.environ.get("HAPROXY", "haproxy")
MODEL = "tiny-gemma3"
N_REPLICAS = 3
N_BEFORE = 36          # requests queued before and during the restart
N_AFTER = 54           # requests queued once the restarted replica is up
THREADS = 4
VICTIM = 1             # the replica that is restarted (r1)
PINNED = 150           # tokens of the stream the victim is busy with at SIGTERM
GEN_ENDPOINTS = ("/api/generate", "/api/chat", "/v1/chat/completions")
SANITIZER = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


def free_ports(n):
    """n ports that nothing listens on, below the ephemeral range, so that
    no outgoing connection's port can take one while a replica restarts."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rnd = random.Random(os.getpid())
    ports = []
    while len(ports) < n:
        p = rnd.randrange(10000, max(low, 10001))
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            if p not in ports:
                ports.append(p)
        except OSError:
            pass
        finally:
            s.close()
    return ports


def wait_for(cond, tries=600, pause=0.1):
    for _ in range(tries):
        if cond():
            return True
        time.sleep(pause)
    return False


class Replica:
    def __init__(self, name, port):
        self.name, self.port = name, port
        self.proc = None
        self.logs = []          # one log file per instance started

    def start(self):
        log = os.path.join(WORK, f"{self.name}.{len(self.logs)}.log")
        self.logs.append(log)
        self.fh = open(log, "w")
        self.proc = subprocess.Popen([LAMINA, "--config", INI, "serve", "--listen", f"127.0.0.1:{self.port}",
                                      "--preload", MODEL], stdout=self.fh, stderr=subprocess.STDOUT)
        return wait_for(lambda: self.proc.poll() is not None or "listening on http://" in self.text()) \
            and self.proc.poll() is None

    def text(self, i=-1):
        with open(self.logs[i], errors="replace") as f:
            return f.read()

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def running(self):
        try:
            st, body = self.get("/metrics")
        except OSError:
            return 0
        for line in body.splitlines():
            if line.startswith("vllm:num_requests_running "):
                return float(line.split()[-1])
        return 0

    def stop(self, sig=signal.SIGTERM, tries=900):
        """Signal it (sig None: it was already); its exit status (None when
        it did not exit within the bound)."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        if not wait_for(lambda: self.proc.poll() is not None, tries):
            self.proc.kill()
            self.proc.wait()
            self.fh.close()
            return None
        self.fh.close()
        return self.proc.returncode


def haproxy_cfg(front, replicas, sock):
    servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check" for r in replicas)
    return f"""# written by tests/server/replicas_check.py
global
    log stdout format raw local0
    stats socket {sock} mode 600 level admin
    maxconn 256
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout check 5s
    # a request is retried on another replica (redispatch on every retry)
    # when the connection is refused, when the replica closes it without an
    # answer, or when it answers 503 (draining); l7 retries need the whole
    # request in haproxy's buffer first
    option http-buffer-request
    retry-on conn-failure empty-response 503
    retries 6
    option redispatch 1
frontend lamina_front
    bind 127.0.0.1:{front}
    capture request header X-Request-Id len 32
    log-format "rid=%[capture.req.hdr(0)] srv=%s status=%ST retries=%rc"
    default_backend lamina_replicas
backend lamina_replicas
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 200ms fall 1 rise 2
{servers}
"""


def stat(sock):
    """{server name: status} from haproxy's stats socket."""
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(sock)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
    except OSError:
        return {}
    rows = data.decode().splitlines()
    if not rows or not rows[0].startswith("# "):
        return {}
    head = rows[0][2:].split(",")
    out = {}
    for row in rows[1:]:
        f = dict(zip(head, row.split(",")))
        if f.get("pxname") == "lamina_replicas" and f.get("svname") not in ("BACKEND", None):
            out[f["svname"]] = f.get("status", "")
    return out


# ---------------------------------------------------------------- the load
KINDS = [("/api/generate", False), ("/api/generate", True), ("/api/chat", False),
         ("/api/chat", True), ("/v1/chat/completions", False), ("/v1/chat/completions", True)]


def body_for(path, stream, rid):
    text = f"request {rid}: tell a story"
    if path == "/api/generate":
        return {"model": MODEL, "prompt": text, "stream": stream, "options": {"num_predict": 8, "temperature": 0}}
    if path == "/api/chat":
        return {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream,
                "options": {"num_predict": 8, "temperature": 0}}
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": stream,
            "max_tokens": 8, "temperature": 0}


def complete(path, stream, data):
    """Whether the body is one whole answer."""
    try:
        if path.startswith("/api/"):
            lines = [json.loads(l) for l in data.splitlines() if l.strip()]
            if not lines or (not stream and len(lines) != 1):
                return False
            return lines[-1].get("done") is True and "error" not in lines[-1] and \
                all(not l.get("done") for l in lines[:-1])
        if not stream:
            j = json.loads(data)
            return bool(j["choices"]) and j["choices"][0]["finish_reason"] is not None
        events = [l[6:] for l in data.decode().splitlines() if l.startswith("data: ")]
        return bool(events) and events[-1] == "[DONE]" and events.count("[DONE]") == 1 and any(
            json.loads(e)["choices"] and json.loads(e)["choices"][0]["finish_reason"] for e in events[:-1])
    except (ValueError, KeyError, IndexError, TypeError):
        return False


results = {}
results_mu = threading.Lock()


def one(front, rid, path, stream):
    c = http.client.HTTPConnection("127.0.0.1", front, timeout=300)
    try:
        c.request("POST", path, json.dumps(body_for(path, stream, rid)),
                  {"Content-Type": "application/json", "X-Request-Id": rid})
        r = c.getresponse()
        data = r.read()
        res = (r.status, complete(path, stream, data) if r.status == 200 else False, data[:300])
    except (OSError, http.client.HTTPException) as e:
        res = (-1, False, str(e))
    finally:
        c.close()
    with results_mu:
        results.setdefault(rid, []).append((path, stream) + res)


def worker(front, q):
    while True:
        item = q.get()
        if item is None:
            return
        one(front, *item)


def n_done():
    with results_mu:
        return len(results)


def main():
    ports = free_ports(N_REPLICAS + 1)
    front = ports[-1]
    replicas = [Replica(f"r{i}", p) for i, p in enumerate(ports[:N_REPLICAS])]
    sock = os.path.join(WORK, "haproxy.sock")
    cfg = os.path.join(WORK, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(haproxy_cfg(front, replicas, sock))
    hlog = os.path.join(WORK, "haproxy.log")
    hfh = open(hlog, "w")
    hap = None
    try:
        started = all([r.start() for r in replicas])
        ok(started, f"{N_REPLICAS} replicas listen on 127.0.0.1:{ports[0]}, {ports[1]}, {ports[2]}",
           "\n".join(r.text()[-600:] for r in replicas))
        if not started:
            return
        chk = subprocess.run([HAPROXY, "-c", "-f", cfg], capture_output=True, text=True)
        ok(chk.returncode == 0, "haproxy accepts the configuration (haproxy -c)", chk.stdout + chk.stderr)
        hap = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=hfh, stderr=subprocess.STDOUT)
        up = wait_for(lambda: stat(sock) and all(v.startswith("UP") for v in stat(sock).values())
                      and len(stat(sock)) == N_REPLICAS, 900)
        ok(up, "haproxy marks all replicas up (GET /health)", f"{stat(sock)}\n{open(hlog).read()[-600:]}")
        if not up:
            return

        q = queue.Queue()
        threads = [threading.Thread(target=worker, args=(front, q)) for _ in range(THREADS)]
        for t in threads:
            t.start()
        plan = [(f"rq{i:03d}",) + KINDS[i % len(KINDS)] for i in range(N_BEFORE + N_AFTER)]
        for item in plan[:N_BEFORE]:
            q.put(item)
        victim = replicas[VICTIM]
        # SIGTERM mid-load, while the victim surely has a request in flight:
        # a long stream of its own (straight to its port, not through
        # haproxy) that must still end whole
        wait_for(lambda: n_done() >= 6, 1200)
        pin = http.client.HTTPConnection("127.0.0.1", victim.port, timeout=300)
        pin.request("POST", "/api/generate", json.dumps(
            {"model": "tiny-long", "prompt": "Once", "options": {"num_predict": PINNED, "temperature": 0}}),
            {"Content-Type": "application/json"})
        pr = pin.getresponse()
        first = pr.readline()
        at = n_done()
        victim.proc.send_signal(signal.SIGTERM)
        last = {}
        try:
            for line in [first] + pr.read().splitlines():
                if line.strip():
                    last = json.loads(line)
        except (OSError, ValueError, http.client.HTTPException) as e:
            last = {"error": str(e)}
        pin.close()
        ok(pr.status == 200 and last.get("done") is True and last.get("eval_count") == PINNED,
           f"{victim.name}: a stream running when SIGTERM came ended whole ({PINNED} tokens)", str(last)[:300])
        rc = victim.stop(None)          # a second signal would cut the drain short
        diag_log = victim.text(0)
        ok(rc == 0, f"{victim.name} got SIGTERM after {at} of {N_BEFORE} answers and exited 0 (status {rc})",
           diag_log[-800:])
        m = re.search(r"draining: (\d+) requests in flight", diag_log)
        ok(m and int(m.group(1)) >= 1,
           f"  it drained with {m.group(1) if m else 'no'} requests in flight", diag_log[-800:])
        ok(re.search(r"lamina serve: drained$", diag_log, re.M) and "drain timeout" not in diag_log
           and "second signal: stopping" not in diag_log,
           "  and finished them within drain_timeout (its log says 'drained')", diag_log[-800:])
        # a rolling update: the same replica again, on the same port
        restarted = victim.start()
        ok(restarted, f"{victim.name} starts again on port {victim.port}", victim.text()[-800:])
        back = restarted and wait_for(lambda: stat(sock).get(victim.name, "").startswith("UP"), 900)
        ok(back, f"  haproxy marks {victim.name} up again", str(stat(sock)))
        for item in plan[N_BEFORE:]:
            q.put(item)
        for _ in threads:
            q.put(None)
        for t in threads:
            t.join(600)
        ok(not any(t.is_alive() for t in threads), "all client threads finished")

        # ------------------------------------------------------------ checks
        rids = [p[0] for p in plan]
        got = {rid: results.get(rid, []) for rid in rids}
        lost = [rid for rid in rids if not got[rid]]
        bad = {rid: v for rid, v in got.items() if v and not (len(v) == 1 and v[0][2] == 200 and v[0][3])}
        kinds = collections.Counter((p, s) for rid, v in got.items() for p, s, st, whole, _ in v
                                    if st == 200 and whole)
        ok(not lost and not bad, f"each of the {len(rids)} requests got one whole answer (200; "
           "streams end with done:true or [DONE])",
           f"lost: {lost}\nbad: " + "\n".join(f"{k}: {v}" for k, v in list(bad.items())[:8]))
        ok(len(kinds) == len(KINDS), f"  over all {len(KINDS)} kinds of request "
           f"({', '.join(f'{p} stream={s}: {n}' for (p, s), n in sorted(kinds.items()))})")
    finally:
        if hap is not None:
            hap.send_signal(signal.SIGUSR1)        # soft stop: logs are flushed
            try:
                hap.wait(30)
            except subprocess.TimeoutExpired:
                hap.kill()
                hap.wait()
        hfh.close()
        codes = {}
        for r in replicas:
            if r.proc is not None and r.proc.poll() is None:
                codes[r.name] = r.stop()
    if hap is None:
        return
    ok(all(c == 0 for c in codes.values()), f"the replicas stop cleanly on SIGTERM ({codes})")

    # haproxy's log: one line per request id, status and replica
    hl = collections.defaultdict(list)
    retried = 0
    with open(hlog, errors="replace") as f:
        for line in f:
            m = re.search(r"rid=\{?(rq\d+)\}? srv=(\S+) status=(-?\d+) retries=(\+?)(\d+)", line)
            if m:
                hl[m.group(1)].append((m.group(2), int(m.group(3))))
                retried += int(m.group(5)) > 0
    rids = [f"rq{i:03d}" for i in range(N_BEFORE + N_AFTER)]
    once = [rid for rid in rids if len(hl.get(rid, [])) == 1 and hl[rid][0][1] == 200]
    ok(len(once) == len(rids), f"haproxy logged each request id once, answered 200 ({retried} after a retry)",
       "\n".join(f"{rid}: {hl.get(rid)}" for rid in rids if rid not in once)[:1500])
    # the replicas' logs: generations that completed, per instance
    per_srv = collections.Counter(hl[rid][0][0] for rid in once)
    done_lines = {}
    cut = []
    refused = 0
    for r in replicas:
        n = 0
        for i, log in enumerate(r.logs):
            text = r.text(i)
            k = 0
            for line in text.splitlines():
                m = re.search(r"(/api/generate|/api/chat|/v1/chat/completions) (\d+) [0-9.]+ s(.*)", line)
                if not m:
                    continue
                if m.group(2) == "200" and not m.group(3).startswith(" ("):
                    k += 1
                elif m.group(2) == "503":
                    refused += 1
                else:
                    cut.append(f"{r.name}.{i}: {line.strip()}")
            done_lines[f"{r.name}.{i}"] = k
            n += k
            if SANITIZER.search(text):
                cut.append(f"{r.name}.{i}: a sanitizer report")
        want = per_srv.get(r.name, 0) + (1 if r is replicas[VICTIM] else 0)    # + the pinned stream
        ok(n == want,
           f"{r.name} ran exactly the generations haproxy says it answered ({n}), no duplicate"
           + (" (and the pinned stream)" if r is replicas[VICTIM] else ""),
           f"replica log: {n}, expected: {want}")
    ok(not cut, "no generation was cut off or failed in a replica (and no sanitizer report)", "\n".join(cut[:10]))
    ok(sum(done_lines.values()) == len(rids) + 1,
       f"the replicas completed {sum(done_lines.values())} generations for {len(rids)} requests and the pinned one "
       f"({', '.join(f'{k}: {v}' for k, v in done_lines.items())}; {refused} refused with 503 while draining)")
    ok(done_lines.get(f"r{VICTIM}.1", 0) > 0,
       f"the restarted r{VICTIM} served {done_lines.get(f'r{VICTIM}.1', 0)} requests after the restart")


main()
done()
