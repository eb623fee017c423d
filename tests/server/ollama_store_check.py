#!/usr/bin/env python3
"""An Ollama model store for tests/server/ollama_store.sh.

  ollama_store_check.py make LLAMA.gguf GEMMA.gguf STORE STORE2
      lay out STORE as Ollama writes one (blobs/sha256-HEX, manifests/
      registry.ollama.ai/NAMESPACE/MODEL/TAG with the docker v2 manifest
      media type and Ollama's layer media types): tiny:latest, tiny:q8,
      someuser/tool:v1, and broken ones (a missing blob, a manifest that is
      not JSON, a vision projector layer, a blob of the wrong size, a bad
      digest); STORE2 holds other:latest.
  ollama_store_check.py check URL
      the checks against `lamina serve` (TAP)."""
import hashlib
import json
import os
import sys
import urllib.request

MT = "application/vnd.ollama.image."


def blob(store, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(store, "blobs"), exist_ok=True)
    with open(os.path.join(store, "blobs", "sha256-" + d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}


def manifest(store, name, layers, raw=None, host="registry.ollama.ai"):
    ns, _, rest = name.rpartition("/")
    model, _, tag = rest.partition(":")
    d = os.path.join(store, "manifests", host, ns or "library", model)
    os.makedirs(d, exist_ok=True)
    cfg = blob(store, json.dumps({"model_format": "gguf", "model_family": "llama", "file_type": "Q8_0"}).encode())
    body = raw if raw is not None else json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **cfg},
        "layers": layers})
    with open(os.path.join(d, tag or "latest"), "w") as f:
        f.write(body)


def make(llama, gemma, store, store2):
    lm = open(llama, "rb").read()
    gm = open(gemma, "rb").read()
    tmpl = blob(store, b"{{ .Prompt }}")
    params = blob(store, json.dumps({"stop": ["<|eot_id|>"], "num_predict": 5, "temperature": 0}).encode())
    lic = blob(store, b"a license")
    model_l = {"mediaType": MT + "model", **blob(store, lm)}
    model_g = {"mediaType": MT + "model", **blob(store, gm)}
    manifest(store, "tiny:latest", [model_l, {"mediaType": MT + "template", **tmpl},
                                    {"mediaType": MT + "params", **params}, {"mediaType": MT + "license", **lic}])
    manifest(store, "tiny:q8", [model_l])
    manifest(store, "someuser/tool:v1", [model_g, {"mediaType": MT + "system", **blob(store, b"Be brief.")}])
    missing = {"mediaType": MT + "model", "digest": "sha256:" + "0" * 64, "size": 10}
    manifest(store, "broken:latest", [missing])
    manifest(store, "bad:latest", None, raw="{not json")
    manifest(store, "vision:latest", [model_l, {"mediaType": MT + "projector", **blob(store, b"proj")}])
    manifest(store, "sizes:latest", [{**model_l, "size": model_l["size"] + 1}])
    manifest(store, "digest:latest", [{**model_l, "digest": "sha256:../../../etc/passwd"}])
    manifest(store2, "other:latest", [{"mediaType": MT + "model", **blob(store2, lm)}])
    print("store made")


def check(url, store):
    import ollama
    from taplib import done, ok, poster
    post = poster(url)
    cl = ollama.Client(host=url, timeout=300)
    names = {m.model for m in cl.list().models}
    ok({"tiny:latest", "tiny:q8", "someuser/tool:v1", "other:latest"} <= names,
       "list: the stores' models by their Ollama names", sorted(names))
    ok(not names & {"broken:latest", "bad:latest", "vision:latest", "sizes:latest", "digest:latest"},
       "list: broken models left out", sorted(names))
    tags = json.load(urllib.request.urlopen(url + "/api/tags", timeout=60))
    broken = {b["name"]: b["error"] for b in tags.get("broken", [])}
    for name, needle in [("broken:latest", "missing"), ("bad:latest", "not a manifest"),
                         ("vision:latest", "vision projector"), ("sizes:latest", "bytes"),
                         ("digest:latest", "64 hex")]:
        ok(needle in broken.get(name, ""), f"tags: {name} listed as broken, naming why", broken.get(name))
    ok(not set(broken) & names, "tags: no model both usable and broken", sorted(broken))
    digests = {m.model: m.digest for m in cl.list().models}
    layer = json.load(open(os.path.join(store, "manifests/registry.ollama.ai/library/tiny/q8")))["layers"][0]
    ok(digests.get("tiny:q8") in (layer["digest"], layer["digest"][7:]), "list: the model layer's digest",
       (digests.get("tiny:q8"), layer["digest"]))
    for name in ["tiny", "tiny:latest", "library/tiny", "registry.ollama.ai/library/tiny:latest", "tiny:q8",
                 "someuser/tool:v1", "other"]:
        r = cl.generate(model=name, prompt="Hello", raw=True, options={"num_predict": 3, "temperature": 0})
        ok(r.done, f"generate with '{name}'")
    # the params layer: options where the request sets none
    r = cl.generate(model="tiny", prompt="Hello", raw=True)
    ok(r.eval_count == 5 and r.done_reason == "length", f"tiny: num_predict 5 from its params layer ({r.eval_count})")
    r = cl.generate(model="tiny", prompt="Hello", raw=True, options={"num_predict": 2})
    ok(r.eval_count == 2, f"tiny: the request's num_predict wins ({r.eval_count})")
    # the system layer: the system prompt when the request has none
    a = cl.chat(model="someuser/tool:v1", messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 1})
    b = cl.chat(model="someuser/tool:v1", messages=[{"role": "system", "content": "Be brief."},
                                                    {"role": "user", "content": "Hi"}], options={"num_predict": 1})
    d = cl.chat(model="someuser/tool:v1", messages=[{"role": "system", "content": "You answer at great length."},
                                                    {"role": "user", "content": "Hi"}], options={"num_predict": 1})
    ok(a.prompt_eval_count == b.prompt_eval_count != d.prompt_eval_count,
       f"someuser/tool:v1: its system layer when the request has none ({a.prompt_eval_count}, "
       f"{b.prompt_eval_count}, {d.prompt_eval_count})")
    s = cl.show("someuser/tool:v1")
    ok(s.details and s.details.family, "show someuser/tool:v1", s.details)
    for name, status, needle in [
        ("broken", 500, "missing"), ("bad", 500, "not a manifest"), ("vision", 400, "vision projector"),
        ("sizes", 500, "bytes"), ("digest", 500, "64 hex"), ("nothere:latest", 404, "not found"),
        ("../../etc/passwd", 400, "invalid model name"), ("a/../../b", 400, "invalid model name"),
        ("/etc/passwd", 400, "invalid model name"), ("tiny:../x", 400, "invalid model name"),
        ("a/b/c/d", 400, "invalid model name"), ("x" * 130, 400, "invalid model name")]:
        st, r = post("/api/generate", {"model": name, "prompt": "x", "stream": False})
        ok(st == status and needle in str(r), f"'{name[:40]}': {status} naming why", (st, r))
    done()


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(*sys.argv[2:6])
    else:
        check(sys.argv[2], sys.argv[3])
