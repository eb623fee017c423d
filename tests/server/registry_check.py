#!/usr/bin/env python3
"""A model registry on loopback for tests/server/pull.sh, and the checks of
POST /api/pull through the ollama Python client.

  registry_check.py serve LLAMA.gguf GEMMA.gguf OTHER.gguf PORTFILE LOG
      serve, on 127.0.0.1 (a port the kernel picks, written to PORTFILE),
      the OCI distribution protocol as Ollama's registry speaks it:
      GET /v2/NS/MODEL/manifests/TAG and /v2/NS/MODEL/blobs/DIGEST, both
      behind a bearer token challenge (401 + WWW-Authenticate, the token
      from GET /token), with range requests (206).  Every request is one
      JSON line of LOG.  Models (library/...):
        tiny:latest   tiny-llama with template, params and license layers
        tiny:drop     tiny-gemma3: the first full GET of its blob breaks off
                      halfway (the connection is closed)
        tiny:resume   OTHER.gguf (for a partial file made beforehand)
        slow:latest   a 2 MiB blob sent slowly (concurrent pulls)
        slow2:latest  another (a client that goes away mid-pull)
        tiny:badsum   a layer whose bytes do not match its digest
        tiny:over     a layer larger than the manifest says
        tiny:big      a layer of 2^43 bytes (no disk has room)
        tiny:escape   a layer digest "sha256:../../etc"
        tiny:bigmanifest  a manifest over 1 MiB
      anything else: 404.
  registry_check.py check URL KEY LOG STORE
      the checks against `lamina serve` (TAP)."""
import hashlib
import json
import os
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MT = "application/vnd.ollama.image."
TOKEN = "tok-" + "%016x" % random.getrandbits(64)


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(llama, gemma, other):
    blobs = {}         # digest -> bytes served

    def layer(mt, data, served=None):
        d = digest(data)
        blobs[d] = served if served is not None else data
        return {"mediaType": MT + mt if "/" not in mt else mt, "digest": d, "size": len(data)}

    def man(layers, config=None):
        cfg = config or layer("application/vnd.docker.container.image.v1+json",
                              json.dumps({"model_format": "gguf", "model_family": "llama"}).encode())
        return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": cfg, "layers": layers}).encode()

    lm, gm, om = (open(p, "rb").read() for p in (llama, gemma, other))
    rnd = random.Random(7)
    slow = rnd.randbytes(2 << 20)
    slow2 = rnd.randbytes(2 << 20)
    bad = rnd.randbytes(100000)
    over = rnd.randbytes(50000)
    manifests = {
        "library/tiny/latest": man([layer("model", lm), layer("template", b"{{ .Prompt }}"),
                                    layer("params", json.dumps({"num_predict": 5, "temperature": 0}).encode()),
                                    layer("license", b"a license")]),
        "library/tiny/drop": man([layer("model", gm)]),
        "library/tiny/resume": man([layer("model", om)]),
        "library/slow/latest": man([layer("model", slow)]),
        "library/slow2/latest": man([layer("model", slow2)]),
        "library/tiny/badsum": man([layer("model", bad, served=bad[:-1] + bytes([bad[-1] ^ 1]))]),
        "library/tiny/over": man([layer("model", over[:40000], served=over)]),
        "library/tiny/big": man([{"mediaType": MT + "model", "digest": "sha256:" + "ab" * 32, "size": 1 << 43}]),
        "library/tiny/escape": man([{"mediaType": MT + "model", "digest": "sha256:../../etc", "size": 10}]),
        "library/tiny/bigmanifest": b'{"pad": "' + b"x" * (1 << 20) + b'"}',
    }
    return manifests, blobs, {"drop": digest(gm), "slow": (digest(slow), digest(slow2))}


def serve(llama, gemma, other, portfile, log):
    manifests, blobs, special = build(llama, gemma, other)
    lock = threading.Lock()
    dropped = set()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def note(self, status, **kw):
            with lock, open(log, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path, "status": status,
                                    "range": self.headers.get("Range"),
                                    "auth": self.headers.get("Authorization"), **kw}) + "\n")

        def send(self, status, body=b"", ctype="application/json", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            if self.path.startswith("/token"):
                self.note(200)
                return self.send(200, json.dumps({"token": TOKEN}).encode())
            m = re.fullmatch(r"/v2/([^/]+/[^/]+)/(manifests|blobs)/([^/?]+)", self.path)
            if not m:
                self.note(404)
                return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
            repo, kind, ref = m.groups()
            if self.headers.get("Authorization") != "Bearer " + TOKEN:
                self.note(401)
                host = self.headers.get("Host")
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', headers=[
                    ("WWW-Authenticate",
                     f'Bearer realm="http://{host}/token",service="test-registry",scope="repository:{repo}:pull"')])
            if kind == "manifests":
                body = manifests.get(f"{repo}/{ref}")
                if body is None:
                    self.note(404)
                    return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                self.note(200)
                return self.send(200, body, "application/vnd.docker.distribution.manifest.v2+json")
            data = blobs.get(ref)
            if data is None:
                self.note(404)
                return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            start = 0
            rng = self.headers.get("Range")
            if rng:
                rm = re.fullmatch(r"bytes=(\d+)-", rng)
                if not rm or int(rm.group(1)) >= len(data):
                    self.note(416)
                    return self.send(416, headers=[("Content-Range", f"bytes */{len(data)}")])
                start = int(rm.group(1))
            part = data[start:]
            self.note(206 if rng else 200)
            self.send_response(206 if rng else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(part)))
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if ref == special["drop"] and ref not in dropped and not rng:
                dropped.add(ref)          # half of it, then the connection goes
                self.wfile.write(part[:len(part) // 2])
                self.wfile.flush()
                self.close_connection = True
                import socket
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if ref in special["slow"]:
                for i in range(0, len(part), 64 << 10):
                    self.wfile.write(part[i:i + (64 << 10)])
                    self.wfile.flush()
                    time.sleep(0.05)
                return
            self.wfile.write(part)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


def entries(log):
    with open(log) as f:
        return [json.loads(line) for line in f]


def check(url, key, log, store):
    import ollama
    from taplib import done, ok, poster
    post = poster(url)
    st, r = post("/api/pull", {"model": "tiny"})
    ok(st == 401, "POST /api/pull without the API key: 401", (st, r))
    cl = ollama.Client(host=url, timeout=300, headers={"Authorization": "Bearer " + key})
    before = len(entries(log))
    lines = list(cl.pull("tiny", stream=True))
    statuses = [p.status for p in lines]
    ok(statuses[:1] == ["pulling manifest"] and statuses[-3:] == ["verifying sha256 digest", "writing manifest",
                                                                   "success"],
       "pull(stream=True): pulling manifest ... verifying sha256 digest, writing manifest, success", statuses)
    layers = {}
    for p in lines:
        if p.digest:
            ok_line = p.status == "pulling " + p.digest[7:19] and p.total is not None
            layers.setdefault(p.digest, []).append((p.completed or 0, p.total, ok_line))
    ok(len(layers) == 5, f"pull: progress for the config and the 4 layers ({len(layers)})", list(layers))
    ok(all(v[-1][0] == v[-1][1] and all(x[2] for x in v) for v in layers.values()),
       "pull: each layer's lines name it (pulling HEX12, digest, total) and end completed == total", layers)
    new = entries(log)[before:]
    ok(any(e["path"].startswith("/token") for e in new) and any(e["status"] == 401 for e in new),
       "pull: the registry's token challenge was answered", new[:4])
    names = {m.model for m in cl.list().models}
    ok("tiny:latest" in names, "the pulled model is listed by /api/tags", sorted(names))
    g = cl.generate(model="tiny", prompt="Hello", raw=True)
    ok(g.done and g.eval_count == 5, f"the pulled model answers /api/generate (its params layer: {g.eval_count})")
    r = cl.pull("tiny", stream=False)
    ok(r.status == "success", "pull(stream=False) of a model already there: success", r)
    try:
        list(cl.pull("tiny:missing", stream=True))
        ok(False, "pull of a tag the registry lacks: an error")
    except ollama.ResponseError as e:
        ok("not found" in str(e), "pull of a tag the registry lacks: an error naming it", e)
    try:
        cl.pull("tiny:missing", stream=False)
        ok(False, "pull(stream=False) of a missing tag: 404")
    except ollama.ResponseError as e:
        ok(e.status_code == 404, f"pull(stream=False) of a missing tag: 404 ({e.status_code})", e)
    for bad in ["../x", "a/../../b", "/etc/passwd", "tiny:../x"]:
        try:
            cl.pull(bad, stream=False)
            ok(False, f"pull '{bad}': refused")
        except ollama.ResponseError as e:
            ok(e.status_code == 400 and "invalid model name" in str(e), f"pull '{bad}': 400 invalid model name", e)
    try:
        list(cl.pull("tiny:escape", stream=True))
        ok(False, "pull tiny:escape (digest sha256:../../etc): refused")
    except ollama.ResponseError as e:
        ok("64 hex" in str(e), "pull tiny:escape (digest sha256:../../etc): refused naming why", e)
    # two pulls of one model at once share one download
    before = len(entries(log))
    res = [None, None]

    def one(i):
        try:
            res[i] = [p.status for p in cl.pull("slow", stream=True)][-1]
        except Exception as e:        # noqa: BLE001 - reported below
            res[i] = repr(e)
    th = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in th:
        t.start()
        time.sleep(0.3)
    for t in th:
        t.join()
    ok(res == ["success", "success"], "two concurrent pulls of slow:latest both succeed", res)
    gets = [e["path"] for e in entries(log)[before:] if "/slow/blobs/" in e["path"] and e["status"] in (200, 206)]
    ok(len(gets) >= 1 and len(gets) == len(set(gets)), "... with one download of each blob they share", gets)
    # a client that goes away mid-pull: nobody else waits, so the download
    # stops with its partial file kept, and the next pull resumes it
    import http.client
    from urllib.parse import urlparse
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("POST", "/api/pull", body=json.dumps({"model": "slow2"}),
                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    resp = conn.getresponse()
    seen = []
    while True:
        line = resp.readline()
        if not line:
            break
        if not line.strip():
            continue
        p = json.loads(line)
        seen.append(p)
        if p.get("completed"):
            break
    conn.sock.shutdown(2)
    conn.close()
    ok(seen and seen[-1].get("completed", 0) > 0, "slow2: streamed progress until the client went away", seen[-3:])
    time.sleep(3)          # the whole blob takes 1.6 s to send: had the download gone on, it would be done
    blobs = os.path.join(store, "blobs")
    partial = [f for f in os.listdir(blobs) if f.endswith("-partial")]
    size = os.path.getsize(os.path.join(blobs, partial[0])) if len(partial) == 1 else -1
    ok(0 < size < 2 << 20, f"slow2: the download stopped with the client, its partial file kept ({size} bytes)",
       partial)
    before = len(entries(log))
    statuses = [p.status for p in cl.pull("slow2", stream=True)]
    ok(statuses[-1:] == ["success"], "slow2: pulled again: success", statuses[-3:])
    resumed = [e for e in entries(log)[before:] if "/slow2/blobs/" in e["path"] and e["range"]]
    ok(resumed and resumed[0]["range"] == f"bytes={size}-", "slow2: resumed from the partial file (range request)",
       resumed)
    done()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:7])
    else:
        check(*sys.argv[2:6])
