#!/bin/sh
# Connection limits of `lamina serve`: a connection over [server]
# max_connections reads a whole 503 (Retry-After, JSON, Connection: close)
# while those within the limit keep working; beyond the hard cap
# (max_connections plus a quarter, at least 16) new connections are closed
# unanswered, the others keep being served and new ones are taken again
# once some close; a client that sends its request slowly (a header byte a
# second) is closed after header_timeout; an idle kept-alive connection
# after idle_timeout; a streamed generation longer than both runs to its
# end; a client that stops reading its reply (streamed or whole) is reset
# after write_timeout, its generation cancelled and its model released,
# while one that reads slowly but steadily gets all of it; [server]
# rate_limit answers 429 per key (or address) and leaves health checks
# alone; malformed values of the new keys are refused naming the key.
# Time bounds are generous: a check only says that a connection was closed
# no earlier than its limit and within the limit plus a margin.
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
for kv in "header_timeout = -1" "rate_limit = abc" "idle_timeout = 1.5" "rate_burst = -3" "write_timeout = 2s"; do
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
  run_tap "hard cap" "$PYTHON" -c "$TAPPY
import select
cap = 4 + 16                  # max_connections + OVERFLOW_MARGIN (a quarter, at least 16)
# start from no other connection open (the /metrics one counts itself)
for _ in range(100):
    if any(l == 'lamina_http_connections 1' for l in get('/metrics')[2].splitlines()): break
    time.sleep(0.1)
socks = [raw() for _ in range(cap + 8)]
# the server closes the 8 beyond the cap at once, unanswered; the others
# stay open (header_timeout is 120 s): wait until 8 read EOF, or 60 s
closed = set(); t0 = time.monotonic()
while len(closed) < 8 and time.monotonic() - t0 < 60:
    r, _, _ = select.select([s for i, s in enumerate(socks) if i not in closed], [], [], 0.5)
    for s in r:
        try:
            b = s.recv(4096)
        except OSError:
            b = b''
        i = socks.index(s)
        if not b: closed.add(i)
        else: print(f'# connection {i} sent {b[:80]!r}')
time.sleep(0.5)
r, _, _ = select.select([s for i, s in enumerate(socks) if i not in closed], [], [], 0)
ok(len(closed) == 8 and not r, f'{cap + 8} connections: 8 closed at once without a byte, {cap} held ({len(closed)} closed, {len(r)} more readable)',
   sorted(closed))
openl = [s for i, s in enumerate(socks) if i not in closed]
# those within max_connections are served, those above it read a 503
def ask(s):
    s.sendall(GET); s.settimeout(60); buf = b''
    try:
        while b'\r\n\r\n' not in buf:
            b = s.recv(4096)
            if not b: break
            buf += b
    except OSError:
        pass
    return buf
buf = ask(openl[0])
ok(buf.startswith(b'HTTP/1.1 200'), 'at the cap, a connection within max_connections is still served', buf[:200])
buf = ask(openl[-1])
ok(buf.startswith(b'HTTP/1.1 503'), '  and one over max_connections reads its 503', buf[:200])
# the connections over max_connections go: new ones are taken again (503
# while max_connections are held), and served once one of those goes too
for s in openl[4:]: s.close()
st = None
for _ in range(100):
    s = raw(); buf = ask(s); s.close()
    if buf.startswith(b'HTTP/1.1 503'): st = 503; break
    time.sleep(0.1)
ok(st == 503, 'after they closed, a new connection is taken (503 while 4 are held)', buf[:200])
openl[3].close()
st = None
for _ in range(100):
    s = raw(); buf = ask(s); s.close()
    if buf.startswith(b'HTTP/1.1 200'): st = 200; break
    time.sleep(0.1)
ok(st == 200, '  and served once one of those 4 closed', buf[:200])
buf = ask(openl[0])
ok(buf.startswith(b'HTTP/1.1 200'), 'the first connection was served all along', buf[:200])
for s in openl[:3]: s.close()
time.sleep(0.5)
m = get('/metrics')[2]
ok(any(l.startswith('lamina_events_total{event=\"connection_cap\"}') and float(l.split()[-1]) >= 8
       for l in m.splitlines()), 'lamina_events_total{event=\"connection_cap\"} counts the 8', [l for l in m.splitlines() if 'events_total{' in l])
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

# ---- clients that stop reading their reply: write_timeout ----
write_ini "$TMP/w.ini" "write_timeout = 3" "parallel = 2" "n_ctx = 16384"
if start_server "$TMP/w.ini"; then
  run_tap "write" "$PYTHON" -c "$TAPPY
def metric(name):
    '''the value of a /metrics line; None when there is none'''
    for l in get('/metrics')[2].splitlines():
        if l.startswith(name + ' '): return float(l.split()[-1])
    return None
def wait_metric(name, want, limit=120):
    '''(seconds until name reached want (0: until it is 0), None after limit s; the value)'''
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        v = metric(name)
        if v is not None and (v >= want if want > 0 else v == 0): return time.monotonic() - t0, v
        time.sleep(0.2)
    return None, metric(name)
def request(path, body):
    b = json.dumps(body).encode()
    return (f'POST {path} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Type: application/json\\r\\n'
            f'Content-Length: {len(b)}\\r\\n\\r\\n').encode() + b
def stopped_reader(req):
    '''a client with a small receive buffer that sends req and reads nothing'''
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port)); s.sendall(req)
    return s
def drain(s):
    '''what the server sent before it went (everything, then EOF or a reset)'''
    s.settimeout(30); data = b''; how = 'timeout'
    try:
        while True:
            b = s.recv(65536)
            if not b: how = 'eof'; break
            data += b
    except ConnectionResetError:
        how = 'reset'
    except OSError as e:
        how = repr(e)
    return data, how
EV = 'lamina_events_total{event=\"write_timeout\"}'
USERS = 'lamina_model_users{model=\"tiny-long\"}'
# a stream of a few thousand tokens with 20 alternatives each (megabytes),
# to a client that reads nothing: more than the socket buffers hold
big = {'model': 'tiny-long', 'prompt': 'Once', 'stream': True, 'logprobs': True, 'top_logprobs': 20,
       'options': {'num_predict': 4000, 'temperature': 0}}
ev0 = metric(EV) or 0
t0 = time.monotonic()
s = stopped_reader(request('/api/generate', big))
st = get('/api/version')[0]
ok(st == 200, 'while a client stops reading its stream, others are served', st)
t, v = wait_metric(EV, ev0 + 1)
el = time.monotonic() - t0
ok(t is not None, f'the stalled stream is closed (write_timeout event after {el:.1f} s)', v)
ok(el >= 3, f'  not before write_timeout (3 s) from its request ({el:.1f} s)')
data, how = drain(s); s.close()
ok(how in ('reset', 'eof') and b'\"done\":true' not in data,
   f'  the client reads what was sent, then the end of the connection ({how}, {len(data)} bytes, no done)', data[-200:])
t, v = wait_metric(USERS, 0)
ok(t is not None, 'its generation stops and the model is released (lamina_model_users 0)', v)
ok(metric('lamina_active_sequences{model=\"tiny-long\"}') == 0, '  no sequence left generating')
# a whole reply, megabytes of token pieces, to a client that reads nothing
tok = {'model': 'tiny-gemma3', 'content': 'hello world, ' * 20000, 'with_pieces': True}
t0 = time.monotonic()
s = stopped_reader(request('/tokenize', tok))
t, v = wait_metric(EV, ev0 + 2)
el = time.monotonic() - t0
ok(t is not None and el >= 3, f'a whole reply the client does not read: closed after write_timeout ({el:.1f} s)', v)
data, how = drain(s); s.close()
ok(how in ('reset', 'eof'), f'  then the end of the connection ({how}, {len(data)} bytes)')
for _ in range(100):
    v = metric('lamina_http_connections')
    if v == 1: break
    time.sleep(0.2)
ok(v == 1, 'no connection is left but the one asking (lamina_http_connections 1)', v)
# a reader that takes a bit at a time, all along: it is never cut
c = http.client.HTTPConnection(host, port, timeout=600)
small = dict(big, options={'num_predict': 1000, 'temperature': 0})
c.request('POST', '/api/generate', json.dumps(small), {'Content-Type': 'application/json'})
r = c.getresponse(); last = {}; err = None
try:
    buf = b''
    while True:
        b = r.read1(16384)
        if not b: break
        buf += b
        time.sleep(0.05)
    last = json.loads(buf.strip().split(b'\\n')[-1])
except Exception as e:
    err = repr(e)
c.close()
ok(last.get('done') and last.get('eval_count') == 1000, 'a slow but steady reader gets the whole stream', err or str(last)[:300])
ok(metric(EV) == ev0 + 2, '  and write_timeout counted only the two stalled clients', metric(EV))
done()
" "$URL"
  check "server stops cleanly" stop_server
  expect_grep "the log names write_timeout" 'closed 1 connection that took none of the reply for 3 s \(\[server\] write_timeout\)' "$SERVER_LOG"
else
  not_ok "server starts (write_timeout = 3)"
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
