#!/bin/sh
# Health, readiness, router metrics and the Host check of `lamina serve`:
# /health, /healthz, /readyz (200 with backends and models; no API key
# needed; 503 with a reason when no backend is usable); the gauges
# Kubernetes inference routers read (vllm:num_requests_waiting, _running,
# kv_cache_usage_perc) and lamina's own, non-zero while a request runs;
# a loopback server refusing a foreign Host (DNS rebinding) and taking
# loopback names and [server] allowed_hosts.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
setup "tiny models generated" make_models
write_ini "$TMP/h.ini" "parallel = 2" "allowed_hosts = lamina.internal" "api_key = k-0123456789"
if start_server "$TMP/h.ini" --preload tiny-gemma3; then
  port=${URL##*:}
  # healthy once the preload is done (503 "loading the preload model" before)
  for i in $(seq 600); do [ "$(code "$TMP/h.json" GET /health)" = 200 ] && break; sleep 0.1; done
  for p in /health /healthz /readyz; do
    check "$p without the API key: 200" [ "$(code "$TMP/h.json" GET $p)" = 200 ]
  done
  check_py() { "$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$TMP/h.json"; }
  check "  status ok, the cpu backend, the preloaded model ready" \
    check_py 'd["status"] == "ok" and any(b["plugin"] == "cpu" for b in d["backends"]) and {"name": "tiny-gemma3", "state": "ready"} in d["models"]'
  check "Host evil.example.com: 403" [ "$(code "$TMP/o" GET /api/tags -H 'Host: evil.example.com' -H 'Authorization: Bearer k-0123456789')" = 403 ]
  expect_grep "  naming the host" "host 'evil.example.com' is not allowed" "$TMP/o"
  check "Host evil.example.com on /health: 403 too" [ "$(code "$TMP/o" GET /health -H "Host: evil.example.com:$port")" = 403 ]
  for h in "localhost:$port" "127.0.0.1:$port" "[::1]:$port" "lamina.internal:$port" "LocalHost"; do
    check "Host $h: 200" [ "$(code "$TMP/o" GET /api/tags -H "Host: $h" -H 'Authorization: Bearer k-0123456789')" = 200 ]
  done
  # router metrics while a request runs on tiny-long (cancelled after the check)
  run_tap "metrics" "$PYTHON" - "$URL" <<'PY'
import json, sys, threading, time, urllib.request
url = sys.argv[1]
H = {"Authorization": "Bearer k-0123456789", "Content-Type": "application/json"}
n = 0; bad = 0
def ok(c, d):
    global n, bad
    n += 1; bad += not c
    print(("ok" if c else "not ok") + f" {n} - {d}", flush=True)
def metrics():
    t = urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers=H), timeout=60).read().decode()
    return {l.split(" ")[0]: float(l.split(" ")[-1]) for l in t.splitlines() if l and not l.startswith("#")}
m = metrics()
names = ["vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]
ok(all(k in m for k in names) and m["vllm:num_requests_running"] == 0, "router gauges, idle: 0 running")
req = urllib.request.Request(url + "/api/generate", headers=H, data=json.dumps(
    {"model": "tiny-long", "prompt": "Once upon a time", "options": {"num_predict": 100000, "temperature": 0}}).encode())
r = urllib.request.urlopen(req, timeout=120)
for _ in range(20):
    r.readline()
m = metrics()
ok(m.get("vllm:num_requests_running", 0) >= 1, f"running >= 1 while generating ({m.get('vllm:num_requests_running')})")
kv = m.get("vllm:kv_cache_usage_perc", -1)
ok(0 < kv <= 1 and kv == m.get("vllm:gpu_cache_usage_perc"), f"kv_cache_usage_perc in (0, 1] ({kv})")
ok(0 < m.get('lamina_kv_cache_usage_ratio{model="tiny-long"}', 0) <= 1, "lamina_kv_cache_usage_ratio of the model")
r.close()
print(f"1..{n}")
sys.exit(1 if bad else 0)
PY
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
# drain: SIGTERM while a generation streams; new requests get 503 and
# /readyz says shutting down while it finishes; then the server exits 0
write_ini "$TMP/d.ini" "parallel = 2" "drain_timeout = 60" "n_ctx = 8192"
if start_server "$TMP/d.ini"; then
  run_tap "drain" "$PYTHON" - "$URL" "$SERVER_PID" <<'PY'
import json, os, signal, sys, time, urllib.error, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
n = 0; bad = 0
def ok(c, d):
    global n, bad
    n += 1; bad += not c
    print(("ok" if c else "not ok") + f" {n} - {d}", flush=True)
def get(path, body=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return -1, str(e)
# tiny-long generates for as long as asked. The request in flight must
# outlive the two checks below on any machine, so it asks for many tokens
# (the faster the kernels, the sooner a short one would end the drain and
# the server with it), and the checks poll for the signal being handled
# instead of sleeping a fixed time.
N = 6000
req = urllib.request.Request(url + "/api/generate", headers={"Content-Type": "application/json"}, data=json.dumps(
    {"model": "tiny-long", "prompt": "Once", "options": {"num_predict": N, "temperature": 0}}).encode())
r = urllib.request.urlopen(req, timeout=300)
first = json.loads(r.readline())
os.kill(pid, signal.SIGTERM)
for _ in range(100):
    st, body = get("/readyz")
    if st != 200:
        break
    time.sleep(0.05)
ok(st == 503 and "shutting down" in body, f"/readyz while draining: 503 ({st})")
st, body = get("/api/generate", {"model": "tiny-gemma3", "prompt": "x", "stream": False})
ok(st == 503 and "shutting down" in body, f"a new request while draining: 503 ({st})")
last = first
for line in r:
    last = json.loads(line)
ok(last.get("done") and last.get("done_reason") == "length" and last.get("eval_count") == N,
   f"the request in flight finished whole ({N} tokens, done_reason length):"
   f" {last.get('eval_count')} tokens, done_reason {last.get('done_reason')}")
for _ in range(1200):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        break
    time.sleep(0.1)
print(f"1..{n}")
sys.exit(1 if bad else 0)
PY
  wait "$SERVER_PID"; rc=$?
  SERVER_PID=
  check "after draining the server exits 0" [ $rc -eq 0 ]
  expect_grep "  the log says it drained" 'draining: 1 requests in flight|drained' "$TMP/server.log"
  check "  and no sanitizer report" sh -c "! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' '$TMP/server.log'"
else
  not_ok "server starts"
fi
# drain: a request whose headers came before SIGTERM but whose body was
# still on its way (no model in use yet) is served whole, not cut
if start_server "$TMP/d.ini"; then
  run_tap "drain, body in flight" "$PYTHON" - "$URL" "$SERVER_PID" <<'PY'
import json, os, signal, socket, sys, time, urllib.parse
url, pid = sys.argv[1], int(sys.argv[2])
u = urllib.parse.urlparse(url)
body = json.dumps({"model": "tiny-gemma3", "prompt": "Hello", "stream": False,
                   "options": {"num_predict": 4, "temperature": 0}}).encode()
s = socket.create_connection((u.hostname, u.port), timeout=60)
s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
time.sleep(0.5)
os.kill(pid, signal.SIGTERM)
time.sleep(0.5)
s.sendall(body[10:])
data = b""
while True:
    try:
        chunk = s.recv(65536)
    except OSError:
        break
    if not chunk:
        break
    data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if b"\r\n\r\n" in data and b'"done":true' in rest.replace(b" ", b""):
        break
status = data.split(b" ", 2)[1] if data.startswith(b"HTTP/") else b"none"
ok = status == b"200" and b'"done":true' in data.replace(b" ", b"")
print(("ok" if ok else "not ok") + " 1 - the request let in before SIGTERM is answered whole (%s)" % status.decode())
print("1..1")
sys.exit(0 if ok else 1)
PY
  wait "$SERVER_PID"; rc=$?
  SERVER_PID=
  check "  then the server exits 0" [ $rc -eq 0 ]
else
  not_ok "server starts"
fi
# no usable backend: /health says so
write_ini "$TMP/n.ini"
mkdir -p "$TMP/noplugins"
if LAMINA_PLUGIN_PATH="$TMP/noplugins" start_server "$TMP/n.ini"; then
  check "no backend: /health 503" [ "$(code "$TMP/h.json" GET /health)" = 503 ]
  expect_grep "  saying no backend passed its self-test" 'no backend passed' "$TMP/h.json"
  check "server stops cleanly" stop_server
else
  not_ok "server starts without plugins"
fi
done_testing
