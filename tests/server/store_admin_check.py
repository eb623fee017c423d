#!/usr/bin/env python3
"""The store's endpoints for tests/server/store_admin.sh (TAP).

  store_admin_check.py slow URL OWN KEY HEADER_TIMEOUT
      an upload slower than header_timeout that keeps sending succeeds;
      one that stops is cut, its temporary file removed.
  store_admin_check.py URL OWN RO GGUF CAP
      against `lamina serve` whose own store ([model] store) is OWN, with a
      read-only Ollama store RO (made by ollama_store_check.py make: tiny,
      tiny:q8, ...), the tiny models in its model directory (tiny-gemma3),
      a GGUF file to upload that no store has and a request body limit of
      CAP bytes: blobs uploaded with the ollama client (larger than CAP,
      streamed), HEAD, create (files, from, template, system, parameters,
      license; streamed and not), list, show, generate, copy and delete
      with its garbage collection, and the bad requests: wrong digests,
      traversal, corrupt GGUF files, refused fields, a read-only model."""
import hashlib
import http.client
import json
import os
import sys
import threading
import urllib.parse
import urllib.request

import ollama
from taplib import done, ok, poster


def main(url, own, ro, llama, cap):
    cap = int(cap)
    cl = ollama.Client(host=url, timeout=300)
    post = poster(url)
    host = urllib.parse.urlparse(url)

    def raw(method, path, body=b"", headers=None):
        c = http.client.HTTPConnection(host.hostname, host.port, timeout=300)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        text = r.read().decode(errors="replace")
        c.close()
        return r.status, text

    def blob_file(digest):
        return os.path.join(own, "blobs", "sha256-" + digest[7:])

    def leftovers():
        d = os.path.join(own, "blobs")
        return [f for f in os.listdir(d) if not (f.startswith("sha256-") and len(f) == 71)] if os.path.isdir(d) else []

    def status_of(fn):
        try:
            fn()
            return 200, ""
        except ollama.ResponseError as e:
            return e.status_code, e.error

    data = open(llama, "rb").read()
    want = "sha256:" + hashlib.sha256(data).hexdigest()
    ok(len(data) > cap, f"the model file ({len(data)} bytes) is larger than the body limit ({cap})")

    # ---- blobs ----
    st, _ = raw("HEAD", "/api/blobs/" + want)
    ok(st == 404, f"HEAD of a blob not uploaded: 404 ({st})")
    digest = cl.create_blob(llama)
    ok(digest == want and os.path.isfile(blob_file(want)), "create_blob: streamed into the own store", digest)
    got = hashlib.sha256(open(blob_file(want), "rb").read()).hexdigest() if os.path.isfile(blob_file(want)) else ""
    ok(got == want[7:], "the stored blob has the uploaded bytes")
    st, _ = raw("HEAD", "/api/blobs/" + want)
    ok(st == 200, f"HEAD of the uploaded blob: 200 ({st})")
    ro_blob = sorted(f for f in os.listdir(os.path.join(ro, "blobs")) if f.startswith("sha256-"))[0]
    st, _ = raw("HEAD", "/api/blobs/sha256:" + ro_blob[7:])
    ok(st == 200, f"HEAD of a blob of the read-only store: 200 ({st})")
    st, _ = raw("GET", "/api/blobs/" + "sha256:" + "0" * 64)
    ok(st == 404, f"GET of an absent blob: 404 ({st})")
    # a body that is not the digest: 400 naming both, nothing left behind
    wrong = "sha256:" + "1" * 64
    st, text = raw("POST", "/api/blobs/" + wrong, body=b"some other bytes")
    ok(st == 400 and wrong in text and "sha256:" + hashlib.sha256(b"some other bytes").hexdigest() in text,
       f"upload with the wrong digest: 400 naming expected and got ({st})", text)
    ok(not os.path.exists(blob_file(wrong)) and not leftovers(), "  and neither the blob nor a temporary file stays",
       leftovers())
    for bad in ["sha256:../../x", "sha256:" + "A" * 64, "sha256:" + "0" * 63, "md5:" + "0" * 64,
                "sha256:" + "0" * 64 + "/../x", "sha256%3A..%2F..%2Fetc"]:
        st, text = raw("POST", "/api/blobs/" + bad, body=b"x")
        ok(st in (400, 404) and (st == 404 or "invalid digest" in text), f"upload to '{bad[:30]}': refused ({st})", text)
        st2, _ = raw("HEAD", "/api/blobs/" + bad)
        ok(st2 in (400, 404), f"HEAD of '{bad[:30]}': refused ({st2})")
    ok(not leftovers() and not os.path.exists(os.path.join(own, "x")), "  nothing written outside blobs/", leftovers())
    # chunked transfer (no Content-Length), larger than the limit
    small = data[: cap * 2]
    sd = "sha256:" + hashlib.sha256(small).hexdigest()
    c = http.client.HTTPConnection(host.hostname, host.port, timeout=300)
    c.putrequest("POST", "/api/blobs/" + sd)
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for i in range(0, len(small), 10000):
        piece = small[i:i + 10000]
        c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    r.read()
    c.close()
    ok(r.status == 201 and os.path.isfile(blob_file(sd)), f"chunked upload of {len(small)} bytes: 201 ({r.status})")
    # a client that goes away mid-upload: its temporary file is removed
    import socket
    import time
    sk = socket.create_connection((host.hostname, host.port), timeout=300)
    sk.sendall(("POST /api/blobs/sha256:%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n"
                % ("3" * 64, host.netloc, 10 ** 9)).encode() + data[:cap * 2])
    for _ in range(600):
        if leftovers():
            break
        time.sleep(0.1)
    partial = leftovers()
    sk.close()
    for _ in range(600):
        if not leftovers():
            break
        time.sleep(0.1)
    ok(partial and not leftovers() and not os.path.exists(blob_file("sha256:" + "3" * 64)),
       "an upload broken off: its temporary file is removed", (partial, leftovers()))
    # two uploads of one blob at once
    res = []

    def up():
        res.append(raw("POST", "/api/blobs/" + want, body=data, headers={"Content-Length": str(len(data))})[0])
    th = [threading.Thread(target=up) for _ in range(3)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    got = hashlib.sha256(open(blob_file(want), "rb").read()).hexdigest()
    ok(res == [201] * 3 and got == want[7:] and not leftovers(), f"three uploads of one blob at once ({res})",
       leftovers())

    # ---- create ----
    r = cl.create(model="mine", files={"tiny-llama.gguf": digest}, template="{{ .Prompt }}", system="Be brief.",
                  parameters={"num_predict": 4, "temperature": 0, "stop": ["<|x|>", "<|y|>"]}, license="MIT")
    ok(r.status == "success", "create mine from an uploaded GGUF", r)
    lines = list(cl.create(model="mine2", files={"m.gguf": digest}, stream=True))
    sts = [x.status for x in lines]
    ok("parsing GGUF" in sts and f"using existing layer {digest}" in sts and sts[-2:] == ["writing manifest", "success"],
       "create, streamed: Ollama's status lines", sts)
    names = {m.model for m in cl.list().models}
    ok({"mine:latest", "mine2:latest"} <= names, "list: the created models", sorted(names))
    s = cl.show("mine")
    ok(s.template == "{{ .Prompt }}", "show: the template", s.template)
    ok(post("/api/show", {"model": "mine"})[1].get("system") == "Be brief.", "show: the system prompt")
    ok(s.parameters and "num_predict" in s.parameters and '"<|y|>"' in s.parameters, "show: the parameters",
       s.parameters)
    ok(s.license == "MIT", "show: the license", s.license)
    ok(s.details and s.details.family == "llama", "show: the details of the GGUF", s.details)
    r = cl.generate(model="mine", prompt="Hello", raw=True)
    ok(r.done and r.eval_count == 4, f"generate with mine: its parameters apply (eval_count {r.eval_count})")
    man = json.load(open(os.path.join(own, "manifests/registry.ollama.ai/library/mine/latest")))
    cfg = json.load(open(blob_file(man["config"]["digest"])))
    ok(cfg.get("model_format") == "gguf" and cfg.get("model_family") == "llama" and cfg.get("file_type") == "Q8_0",
       "the config blob: format, family, file type", cfg)
    mts = [x["mediaType"].rsplit(".", 1)[-1] for x in man["layers"]]
    ok(sorted(mts) == ["license", "model", "params", "system", "template"], "the manifest's layers", mts)
    # three creates of one name at once: each succeeds, one whole manifest stays
    res = []

    def mk(i):
        try:
            res.append(cl.create(model="race", files={"m.gguf": digest}, system=f"S{i}").status)
        except ollama.ResponseError as e:
            res.append(e.error)
    th = [threading.Thread(target=mk, args=(i,)) for i in range(3)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    rdir = os.path.join(own, "manifests/registry.ollama.ai/library/race")
    sysl = post("/api/show", {"model": "race"})[1].get("system")
    ok(res == ["success"] * 3 and os.listdir(rdir) == ["latest"] and sysl in ("S0", "S1", "S2"),
       "three creates of one name at once", (res, os.listdir(rdir), sysl))
    ok(cl.delete("race").status == "success" and os.path.isfile(blob_file(digest)), "  delete race: mine keeps the blob")
    # from: a created model, with a new system prompt; parameters kept
    r = cl.create(model="derived:v1", from_="mine", system="Answer in French.", parameters={"top_k": 3})
    s = cl.show("derived:v1")
    system = post("/api/show", {"model": "derived:v1"})[1].get("system")
    ok(r.status == "success" and system == "Answer in French." and "num_predict" in (s.parameters or "")
       and "top_k" in (s.parameters or ""), "create from mine: system replaced, parameters merged",
       (system, s.parameters))
    # from a model of the read-only store: its blobs come into the own store
    r = cl.create(model="fromro", from_="tiny:q8")
    g = cl.generate(model="fromro", prompt="Hi", raw=True, options={"num_predict": 2})
    ok(r.status == "success" and g.done, "create from a read-only store's model, then generate")
    # from a model file lamina serves
    r = cl.create(model="fromfile", from_="tiny-gemma3")
    g = cl.generate(model="fromfile", prompt="Hi", raw=True, options={"num_predict": 2})
    ok(r.status == "success" and g.done and cl.show("fromfile").details.family == "gemma3",
       "create from a model file (tiny-gemma3), then generate")
    # refused
    junk = b"this is not a model at all"
    jd = cl.create_blob(_write(own, "junk.bin", junk))
    broken = data[:4096]
    bd = cl.create_blob(_write(own, "broken.gguf", broken))
    for desc, body, status, needle in [
        ("quantize", {"model": "q", "files": {"a.gguf": digest}, "quantize": "q4_K_M"}, 400, "quantize"),
        ("adapters", {"model": "q", "files": {"a.gguf": digest}, "adapters": {"l.gguf": digest}}, 400, "adapters"),
        ("messages", {"model": "q", "files": {"a.gguf": digest},
                      "messages": [{"role": "user", "content": "hi"}]}, 400, "messages"),
        ("a file not GGUF", {"model": "q", "files": {"a.gguf": jd}}, 400, "not a GGUF file"),
        ("a truncated GGUF", {"model": "q", "files": {"a.gguf": bd}}, 400, "lamina can read"),
        ("safetensors", {"model": "q", "files": {"model.safetensors": digest}}, 400, "only a GGUF"),
        ("a blob not uploaded", {"model": "q", "files": {"a.gguf": "sha256:" + "2" * 64}}, 400, "upload it first"),
        ("a bad digest", {"model": "q", "files": {"a.gguf": "sha256:../../etc/passwd"}}, 400, "invalid digest"),
        ("nothing to make it from", {"model": "q"}, 400, "neither"),
        ("from a model that is not there", {"model": "q", "from": "nothere"}, 404, "not found"),
        ("a bad name", {"model": "../../x", "files": {"a.gguf": digest}}, 400, "invalid model name"),
        ("a bad parameter", {"model": "q", "files": {"a.gguf": digest}, "parameters": {"temperature": "hot"}},
         400, "temperature"),
        ("a Modelfile", {"model": "q", "modelfile": "FROM x"}, 400, "modelfile")]:
        st, r = post("/api/create", {**body, "stream": False})
        ok(st == status and needle in str(r), f"create with {desc}: {status} naming it ({st})", r)
    # streamed: a request refused before any work keeps its status; a failure
    # of the work itself (the blob is not a GGUF file) ends the stream with
    # an error line, which the client raises
    st, r = post("/api/create", {"model": "q", "files": {"a.gguf": digest}, "quantize": "q4_K_M"})
    ok(st == 400 and "quantize" in str(r), "create, streamed, refused before the work: 400", (st, r))
    req = urllib.request.Request(url + "/api/create", data=json.dumps({"model": "q", "files": {"a.gguf": jd}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        nd = [json.loads(x) for x in resp.read().decode().splitlines() if x.strip()]
    ok(resp.status == 200 and nd and "not a GGUF file" in nd[-1].get("error", "") and
       all("status" in x for x in nd[:-1]), "create, streamed, failing in the work: its last line the error", nd)
    try:
        list(cl.create(model="q", files={"a.gguf": jd}, stream=True))
        ok(False, "  the ollama client raises it")
    except ollama.ResponseError as e:
        ok("not a GGUF file" in str(e), "  the ollama client raises it", str(e))
    sts = [x.status for x in cl.create(model="fromfile2", from_="tiny-gemma3", stream=True)]
    ok(sts and sts[0].startswith("reading model file ") and sts.index("parsing GGUF") > 0 and sts[-1] == "success",
       "create from a model file, streamed: 'reading model file' first (the hashing step)", sts)
    ok("q:latest" not in {m.model for m in cl.list().models} and
       not os.path.exists(os.path.join(own, "manifests/registry.ollama.ai/library/q")), "  and no model q was made")

    # ---- copy ----
    ok(cl.copy("mine", "user/mine-copy:v2").status == "success", "copy mine to user/mine-copy:v2")
    a = open(os.path.join(own, "manifests/registry.ollama.ai/library/mine/latest"), "rb").read()
    b = open(os.path.join(own, "manifests/registry.ollama.ai/user/mine-copy/v2"), "rb").read()
    ok(a == b, "  the manifest copied, the blobs shared")
    g = cl.generate(model="user/mine-copy:v2", prompt="Hello", raw=True)
    ok(g.done and g.eval_count == 4, "  the copy generates with the same parameters")
    st, r = post("/api/copy", {"source": "nothere", "destination": "x"})
    ok(st == 404, f"copy of a model that is not there: 404 ({st})", r)
    st, r = post("/api/copy", {"source": "mine", "destination": "../../etc/x"})
    ok(st == 400 and "invalid model name" in str(r), f"copy to a bad name: 400 ({st})", r)
    ok(cl.copy("tiny:q8", "ro-copy").status == "success" and
       cl.generate(model="ro-copy", prompt="Hi", raw=True, options={"num_predict": 1}).done,
       "copy of a read-only store's model into the own store")

    # ---- delete ----
    model_blob = blob_file(digest)
    for name in ["mine2", "derived:v1", "user/mine-copy:v2"]:
        ok(cl.delete(name).status == "success", f"delete {name}")
    ok(os.path.isfile(model_blob), "  the model blob stays: mine still uses it")
    cfg_blob = blob_file(man["config"]["digest"])
    ok(cl.delete("mine").status == "success", "delete mine")
    ok(not os.path.exists(model_blob) and not os.path.exists(cfg_blob),
       "  its model and config blobs are removed: no manifest uses them")
    ok(os.path.isfile(blob_file(sd)), "  a blob no deleted manifest named stays (uploaded, not used yet)")
    names = {m.model for m in cl.list().models}
    ok(not names & {"mine:latest", "mine2:latest", "derived:v1", "user/mine-copy:v2"}, "  list: gone",
       sorted(names))
    st, r = post("/api/generate", {"model": "mine", "prompt": "x", "stream": False})
    ok(st == 404, f"  generate with mine: 404 ({st})", r)
    ok(not os.path.exists(os.path.join(own, "manifests/registry.ollama.ai/user")), "  empty folders removed")
    st, r = status_of(lambda: cl.delete("mine"))
    ok(st == 404, f"delete again: 404 ({st})", r)
    st, text = raw("DELETE", "/api/delete", body=json.dumps({"model": "tiny:q8"}).encode(),
                   headers={"Content-Type": "application/json"})
    ok(st == 403 and "does not write" in text, f"delete of a read-only store's model: 403 with the reason ({st})", text)
    st, text = raw("DELETE", "/api/delete", body=json.dumps({"model": "../../x"}).encode())
    ok(st == 400 and "invalid model name" in text, f"delete with a bad name: 400 ({st})", text)
    ok(cl.delete("fromro").status == "success" and cl.generate(model="tiny:q8", prompt="Hi", raw=True,
                                                                  options={"num_predict": 1}).done,
       "delete fromro: the read-only store's model still runs")
    done()


def _write(own, name, data):
    p = os.path.join(os.path.dirname(own), name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def slow(url, own, key, timeout):
    """An upload that takes longer than header_timeout but keeps sending
    is whole; one that stops sending is cut (408 or a closed connection),
    its temporary file removed."""
    import socket
    import time
    timeout = float(timeout)
    host = urllib.parse.urlparse(url)
    data = os.urandom(64 * 1024)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()

    def start(n):
        sk = socket.create_connection((host.hostname, host.port), timeout=300)
        sk.sendall(("POST /api/blobs/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                    "Content-Length: %d\r\nConnection: close\r\n\r\n" % (digest, host.netloc, key, n)).encode())
        return sk

    def answer(sk):
        got = b""
        try:
            while True:
                b = sk.recv(4096)
                if not b:
                    break
                got += b
        except OSError:
            pass
        sk.close()
        return got.decode(errors="replace").split("\r\n", 1)[0]

    sk = start(len(data))
    pieces = 16
    step = len(data) // pieces
    t0 = time.monotonic()
    sent = 0
    try:
        for i in range(pieces):
            sk.sendall(data[i * step:(i + 1) * step])
            sent += step
            time.sleep(timeout * 3 / pieces)     # the whole upload takes 3 header_timeouts
    except OSError as e:
        print(f"# the server closed the upload after {sent} bytes: {e}")
    line = answer(sk)
    took = time.monotonic() - t0
    ok(" 201 " in line + " " and os.path.isfile(os.path.join(own, "blobs", "sha256-" + digest[7:])),
       "an upload slower than header_timeout that keeps sending: 201", (line, took))
    other = os.urandom(1000)
    sk = start(len(other) * 2)
    sk.sendall(other)                       # then nothing more
    line = answer(sk)
    left = [f for f in os.listdir(os.path.join(own, "blobs")) if f.startswith(".")]
    ok(line == "" or " 408 " in line + " ", "an upload that stops sending is cut", line)
    for _ in range(600):
        left = [f for f in os.listdir(os.path.join(own, "blobs")) if f.startswith(".upload")]
        if not left:
            break
        time.sleep(0.1)
    ok(not left, "  its temporary file removed", left)
    done()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if sys.argv[1] == "slow":
        slow(*sys.argv[2:6])
    else:
        main(*sys.argv[1:6])
