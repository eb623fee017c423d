#!/usr/bin/env python3
"""embed_clients.py URL: the real ollama and openai Python clients'
embedding calls against `lamina serve` on the tiny models (TAP)."""
import base64
import math
import struct
import sys

import ollama
import openai

url = sys.argv[1]
n = 0
fails = 0


def ok(cond, desc):
    global n, fails
    n += 1
    if not cond:
        fails += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, desc))


def unit(v):
    return abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5


def close(a, b, tol=1e-5):
    return len(a) == len(b) and all(abs(x - y) < tol for x, y in zip(a, b))


oc = ollama.Client(host=url)
r = oc.embed(model="tiny-gemma3", input="Hello world")
ok(len(r.embeddings) == 1 and unit(r.embeddings[0]) and r.prompt_eval_count > 0,
   "ollama: embed(input=str): one unit vector, prompt_eval_count")
one = list(r.embeddings[0])
r = oc.embed(model="tiny-gemma3", input=["Hello world", "second text"], truncate=True)
ok(len(r.embeddings) == 2 and close(list(r.embeddings[0]), one), "ollama: embed(input=[2 strings]): the first is the single one")
r = oc.embed(model="tiny-gemma3", input="Hello world", dimensions=6)
ok(len(r.embeddings[0]) == 6 and unit(r.embeddings[0]), "ollama: embed(dimensions=6)")
r = oc.embeddings(model="tiny-gemma3", prompt="Hello world")
v = list(r.embedding)
nv = math.sqrt(sum(x * x for x in v))
ok(abs(nv - 1) > 1e-3 and close([x / nv for x in v], one), "ollama: embeddings(prompt=...) (legacy): not normalised, same direction")
try:
    oc.embed(model="no-such-model", input="a")
    ok(False, "ollama: embed on a missing model raises ResponseError 404")
except ollama.ResponseError as e:
    ok(e.status_code == 404, "ollama: embed on a missing model raises ResponseError 404")

ai = openai.OpenAI(base_url=url + "/v1", api_key="unused")
r = ai.embeddings.create(model="tiny-gemma3", input="Hello world")
ok(r.object == "list" and len(r.data) == 1 and close(r.data[0].embedding, one) and r.usage.prompt_tokens > 0,
   "openai: embeddings.create(input=str): the same vector, usage")
r = ai.embeddings.create(model="tiny-gemma3", input=["a", "Hello world", "c"])
ok([d.index for d in r.data] == [0, 1, 2] and close(r.data[1].embedding, one), "openai: embeddings.create(input=[3 strings])")
r = ai.embeddings.create(model="tiny-gemma3", input="Hello world", dimensions=5)
ok(len(r.data[0].embedding) == 5 and unit(r.data[0].embedding), "openai: embeddings.create(dimensions=5)")
# encoding_format base64 (the client decodes it into floats by itself when it asked for none; ask explicitly)
raw = ai.embeddings.with_raw_response.create(model="tiny-gemma3", input="Hello world", encoding_format="base64")
b64 = raw.http_response.json()["data"][0]["embedding"]
dec = list(struct.unpack("<%df" % (len(base64.b64decode(b64)) // 4), base64.b64decode(b64)))
ok(close(dec, one), "openai: encoding_format=base64 decodes to the vector")
try:
    ai.embeddings.create(model="tiny-gemma3", input=[])
    ok(False, "openai: input=[] raises BadRequestError naming input")
except openai.BadRequestError as e:
    ok("input" in str(e), "openai: input=[] raises BadRequestError naming input")
try:
    ai.embeddings.create(model="no-such-model", input="a")
    ok(False, "openai: a missing model raises NotFoundError")
except openai.NotFoundError:
    ok(True, "openai: a missing model raises NotFoundError")
print("1..%d" % n)
sys.exit(1 if fails else 0)
