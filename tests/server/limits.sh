#!/bin/sh
# Connection limits of `lamina serve`: a connection over [server]
# max_connections reads a whole 503 (Retry-After, JSON, Connection: close)
# while those within the limit keep working; a client that sends its
# request slowly (a header byte a second) is closed after header_timeout;
# an idle kept-alive connection after idle_timeout; a streamed generation
# longer than both runs to its end; [server] rate_limit answers 429 per
# key (or address) and leaves health checks alone; malformed values of the
# new keys are refused naming the key.  Time bounds are generous: a check
# only says that a connection was closed no earlier than its limit and
# within the limit plus a margin.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
setup "tiny models generated" make_models
# the Python checks: TAP lines from ok(), the plan from done()
TAPPY='
import http.client, json, socket, sys, time, threading, urllib.error, urllib.request
n = 0; bad = 0
def ok(c, d, detail=None):
    global n, bad
    n += 1; bad += not c
    print(("ok" if c else "not ok") + f" {n} - {d}", flush=True)
    if not c and detail is not None:
        for l in str(detail)[:1500].splitlines()[:10]: print("#   " + l, flush=True)
    return c
def done():
    print(f"1..{n}"); sys.exit(1 if bad else 0)
url = sys.argv[1]
host, port = url[len("http://"):].rsplit(":", 1); port = int(port)
def get(path, headers={}):
    req = urllib.request.Request(url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()
def raw(req=b"", timeout=60):
    s = socket.create_connection((host, port), timeout=timeout)
    if req: s.sendall(req)
    return s
def read_all(s):
    """everything until the server closes (b"" on a reset after nothing)"""
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            out += b
    except ConnectionResetError:
        pass
    return out
def closed_at(s, since, limit):
    """(seconds from since until the server closed s, or None after limit s;
    what it sent meanwhile)"""
    data = b""; s.settimeout(0.2)
    while time.monotonic() - since < limit:
        try:
            b = s.recv(65536)
            if not b: return time.monotonic() - since, data
            data += b
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - since, data
    return None, data
GET = b"GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
'

# ---- malformed values are refused, naming the key ----
for kv in "header_timeout = -1" "rate_limit = abc" "idle_timeout = 1.5" "rate_burst = -3"; do
  key=${kv%% *}
  write_ini "$TMP/bad.ini" "$kv"
  "$LAMINA" --config "$TMP/bad.ini" serve >"$TMP/bad.out" 2>&1 </dev/null; rc=$?
  check "$kv: lamina serve exits non-zero" [ $rc -ne 0 ]
  expect_grep "  naming [server] $key" "\[server\] $key: expected" "$TMP/bad.out"
done

# ---- connections over max_connections: 503, not a reset ----
write_ini "$TMP/c.ini" "max_connections = 4" "header_timeout = 120" "idle_timeout = 120"
if start_server "$TMP/c.ini"; then
  run_tap "overflow" "$PYTHON" -c "$TAPPY
# four connections held open, idle: each sent one whole request and was answered
held = []
for i in range(4):
    s = raw(GET); s.settimeout(60)
    buf = b''
    while b'\r\n\r\n' not in buf: buf += s.recv(4096)
    held.append(s)
# the fifth reads a whole 503 (retry: a closed probe may not be counted out yet)
for _ in range(100):
    s = raw(GET)
    reply = read_all(s); s.close()
    if reply.startswith(b'HTTP/1.1 503'): break
    time.sleep(0.1)
head, _, body = reply.partition(b'\r\n\r\n')
hl = head.decode('latin-1').lower()
ok(reply.startswith(b'HTTP/1.1 503'), 'the connection over max_connections reads HTTP/1.1 503', reply[:300])
ok('\r\nretry-after: ' in hl, '  with Retry-After', head)
ok('\r\nconnection: close' in hl, '  and Connection: close (then the server closed it)', head)
try:
    err = json.loads(body)['error']
except Exception as e:
    err = repr(e)
ok('max_connections' in err, '  a JSON error naming max_connections', body)
# the connections within the limit keep working
held[0].sendall(GET)
buf = b''
while b'\r\n\r\n' not in buf: buf += held[0].recv(4096)
ok(buf.startswith(b'HTTP/1.1 200'), 'a connection within the limit is still served', buf[:200])
# a slot frees: a new connection is served again
held.pop().close()
st = None
for _ in range(100):
    s = raw(GET); s.settimeout(60); buf = b''
    try:
        while b'\r\n\r\n' not in buf:
            b = s.recv(4096)
            if not b: break
            buf += b
    except OSError:
        pass
    s.close()
    if buf.startswith(b'HTTP/1.1 200'): st = 200; break
    time.sleep(0.1)
ok(st == 200, 'once a connection closed, a new one is served', buf[:200])
for s in held: s.close()
time.sleep(0.5)
m = get('/metrics')[2]
ok(any(l.startswith('lamina_events_total{event=\"connection_overflow\"}') and float(l.split()[-1]) >= 1
       for l in m.splitlines()), 'lamina_events_total{event=\"connection_overflow\"} counted')
ok(any(l.startswith('lamina_http_connections ') for l in m.splitlines()), 'lamina_http_connections exported')
done()
" "$URL"
  check "server stops cleanly" stop_server
else
  not_ok "server starts (max_connections = 4)"
fi

# ---- slow clients, idle connections, long streams ----
write_ini "$TMP/t.ini" "header_timeout = 2" "idle_timeout = 3" "parallel = 2" "n_ctx = 16384"
if start_server "$TMP/t.ini"; then
  run_tap "timeouts" "$PYTHON" -c "$TAPPY
# slowloris: the request line, then a header byte a second, never the end
t_conn = time.monotonic()
s = raw(b'GET /api/version HTTP/1.1\r\nHost: 127.0.0.1\r\n')
got = []
def dribble():
    t0 = time.monotonic()
    try:
        for ch in b'X-Slow: ' + b'a' * 40:
            s.sendall(bytes([ch]))
            time.sleep(1)
    except OSError:
        pass
    got.append(time.monotonic() - t0)
th = threading.Thread(target=dribble); th.start()
time.sleep(0.5)
st = get('/api/version')[0]
ok(st == 200, 'a normal request while a client sends its headers slowly: 200', st)
t, data = closed_at(s, t_conn, 30)
ok(t is not None and 2 <= t <= 2 + 10, f'the slow client is closed after header_timeout (2 s; {t})')
ok(data.startswith(b'HTTP/1.1 408'), '  after a 408 reply', data[:300])
th.join()
ok(got and got[0] < 20, 'its writes fail soon after (not 40 s of dribbling)', got)
s.close()
# a connection that sends nothing at all is closed by the same deadline
t0 = time.monotonic()
s = raw()
t, _ = closed_at(s, t0, 30)
ok(t is not None and 2 <= t <= 2 + 10, f'a connection that sends nothing is closed after header_timeout ({t})')
s.close()
# an idle kept-alive connection, after its reply: closed after idle_timeout
s = raw(GET); s.settimeout(60); buf = b''
while b'\r\n\r\n' not in buf: buf += s.recv(4096)
t, _ = closed_at(s, time.monotonic(), 30)
ok(buf.startswith(b'HTTP/1.1 200') and t is not None and 2.5 <= t <= 3 + 2 + 10,
   f'an idle kept-alive connection is closed after idle_timeout (3 s; {t})', buf[:200])
s.close()
m = get('/metrics')[2]
ok(any(l.startswith('lamina_events_total{event=\"request_timeout\"}') and float(l.split()[-1]) >= 2
       for l in m.splitlines()), 'lamina_events_total{event=\"request_timeout\"} counts both')
# a stream longer than both timeouts runs to its end: tokens for about
# 20 s at the speed measured now (more than 5 s unless the machine gets 4x faster)
def gen(n, stream):
    return urllib.request.Request(url + '/api/generate', headers={'Content-Type': 'application/json'}, data=json.dumps(
        {'model': 'tiny-long', 'prompt': 'Once', 'stream': stream, 'options': {'num_predict': n, 'temperature': 0}}).encode())
k = 64; el = 0; last = {}
try:
    # the speed: 256 streamed tokens over the time from the first line to the last
    t = []
    for line in urllib.request.urlopen(gen(256, True), timeout=300):
        t.append(time.monotonic()); d = json.loads(line)
    rate = d['eval_count'] / max(t[-1] - t[0], 1e-3)
    k = int(min(16000, max(64, rate * 20)))
    t0 = time.monotonic()
    for line in urllib.request.urlopen(gen(k, True), timeout=300):
        last = json.loads(line)
    el = time.monotonic() - t0
except urllib.error.HTTPError as e:
    last = {'error': f'{e.code}: {e.read().decode()}'}
except OSError as e:
    last = {'error': repr(e)}
ok(last.get('done') and last.get('eval_count') == k, f'a streamed generation of {k} tokens ends whole ({el:.1f} s)',
   {a: b for a, b in last.items() if a != 'context'})
ok(el > 5, f'  and it ran longer than header_timeout + idle_timeout ({el:.1f} s > 5 s)')
done()
" "$URL"
  check "server stops cleanly" stop_server
else
  not_ok "server starts (header_timeout = 2)"
fi

# ---- rate limits ----
write_ini "$TMP/r.ini" "rate_limit = 1" "rate_burst = 3"
if start_server "$TMP/r.ini"; then
  run_tap "rate" "$PYTHON" -c "$TAPPY
A = {'Authorization': 'Bearer key-alpha'}
B = {'Authorization': 'Bearer key-beta'}
sts = [get('/api/tags', A)[0] for _ in range(3)]
ok(sts == [200, 200, 200], 'key alpha: the burst of 3 requests passes', sts)
st, h, body = get('/api/tags', A)
h = {k.lower(): v for k, v in h.items()}
ok(st == 429, 'key alpha: the 4th request within the minute gets 429', st)
ra = h.get('retry-after', '')
ok(ra.isdigit() and 1 <= int(ra) <= 60, f'  with Retry-After in seconds ({ra!r})')
ok('rate_limit' in json.loads(body).get('error', ''), '  and a JSON error naming rate_limit', body)
st, h, body = get('/v1/models', A)
ok(st == 429 and json.loads(body)['error']['type'] == 'rate_limit_error', '  OpenAI routes: error type rate_limit_error', body)
ok(get('/api/tags', B)[0] == 200, 'key beta is not affected')
sts = [get('/api/version')[0] for _ in range(4)]
ok(sts == [200, 200, 200, 429], 'without a key: per client address (3 pass, the 4th 429)', sts)
# with both buckets empty, what is exempt still answers (/health says 503
# where no backend passed its self-test: that is its answer, not a limit)
sts = [get(p)[0] for p in ['/health', '/healthz', '/readyz', '/', '/health', '/health']]
ok(429 not in sts and sts[3] == 200, '/health, /healthz, /readyz and / are exempt', sts)
sts = [get('/metrics', A)[0], get('/metrics')[0]]
ok(sts == [200, 200], '/metrics is exempt', sts)
m = get('/metrics')[2]
ok(any(l.startswith('lamina_events_total{event=\"rate_limited\"}') and float(l.split()[-1]) >= 3
       for l in m.splitlines()), 'lamina_events_total{event=\"rate_limited\"} counted')
done()
" "$URL"
  check "server stops cleanly" stop_server
else
  not_ok "server starts (rate_limit = 1)"
fi
done_testing
