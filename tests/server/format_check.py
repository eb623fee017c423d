#!/usr/bin/env python3
"""Structured output against `lamina serve` on random-weight tiny models
(tests/server/format.sh): many schemas x seeds at temperature 1 through
/api/generate, /api/chat, /v1/chat/completions and /v1/completions, every
output validated with jsonschema; the ollama and openai clients with
pydantic schemas; refused schemas answer 400 naming the keyword.
Prints TAP."""
import concurrent.futures as cf
import json
import sys
import urllib.error
import urllib.request
from typing import Annotated, List, Literal, Optional

import jsonschema
import ollama
import openai
from pydantic import BaseModel, Field

URL = sys.argv[1]
MODELS = sys.argv[2:] or ["tiny-gemma3", "tiny-llama"]
SEEDS = 4
n_test = n_fail = 0


def ok(cond, desc):
    global n_test, n_fail
    n_test += 1
    if not cond:
        n_fail += 1
    print(("ok" if cond else "not ok") + f" {n_test} - {desc}", flush=True)
    return cond


def post(path, body):
    req = urllib.request.Request(URL + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


S = lambda n=8, **k: dict(type="string", maxLength=n, **k)
SCHEMAS = {
    "object": {"type": "object", "properties": {"name": S(), "age": {"type": "integer"}, "ok": {"type": "boolean"}},
               "required": ["name", "age", "ok"]},
    "optional": {"type": "object", "properties": {"a": {"type": "number"}, "b": S(4), "c": {"type": "null"}},
                 "required": ["b"], "additionalProperties": False},
    "array": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
    "enum": {"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]}, "n": {"const": 3}},
             "required": ["color", "n"]},
    "anyof": {"anyOf": [{"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                        {"type": "array", "items": S(3), "maxItems": 2}, {"type": "null"}]},
    "typelist": {"type": "object", "properties": {"v": {"type": ["string", "integer", "null"], "maxLength": 5}},
                 "required": ["v"]},
    "nested": {"$defs": {"pt": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                                "required": ["x", "y"]}},
               "type": "object", "properties": {"pts": {"type": "array", "items": {"$ref": "#/$defs/pt"},
                                                        "maxItems": 3}, "label": S(6, minLength=2)},
               "required": ["pts", "label"]},
    "recursive": {"$defs": {"t": {"type": "object", "properties": {"v": {"type": "integer"},
                                                                  "kids": {"type": "array", "items": {"$ref": "#/$defs/t"},
                                                                           "maxItems": 2}}, "required": ["v"]}},
                  "$ref": "#/$defs/t"},
    "prefix": {"type": "array", "prefixItems": [S(4), {"type": "boolean"}], "items": False, "minItems": 2},
    "addl": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"],
             "additionalProperties": {"type": "boolean"}},
    "nullable": {"type": "object", "properties": {"q": {"type": "integer", "nullable": True}}, "required": ["q"]},
    "unicode": {"type": "object", "properties": {"ключ": S(3), "\u00e9\"": {"enum": ["\u00e9", "a\nb"]}},
                "required": ["ключ", "\u00e9\""]},
}
# what jsonschema checks instead ("nullable" is OpenAPI's keyword, not JSON Schema's)
VALIDATE = {"nullable": {"type": "object", "properties": {"q": {"type": ["integer", "null"]}}, "required": ["q"]}}
# additional property names have no length bound: a random model may write
# one until the token limit (then nothing is checked; most complete)
UNBOUNDED = {"addl"}


def gen_one(model, name, seed):
    body = {"model": model, "prompt": "Answer in JSON.", "format": SCHEMAS[name], "stream": False,
            "options": {"temperature": 1, "seed": seed, "num_predict": 300}}
    st, txt = post("/api/generate", body)
    if st != 200:
        return f"HTTP {st}: {txt[:200]}"
    r = json.loads(txt)
    if r.get("done_reason") == "length" and name in UNBOUNDED:
        return "cut"
    if r.get("done_reason") != "stop":
        return f"done_reason {r.get('done_reason')}: {r['response'][:200]!r}"
    try:
        v = json.loads(r["response"])
    except ValueError as e:
        return f"not JSON ({e}): {r['response'][:300]!r}"
    try:
        jsonschema.validate(v, VALIDATE.get(name, SCHEMAS[name]))
    except jsonschema.ValidationError as e:
        return f"invalid ({e.message}): {r['response'][:300]!r}"
    return None


def sweep():
    jobs = [(m, n, seed) for m in MODELS for n in SCHEMAS for seed in range(SEEDS)]
    with cf.ThreadPoolExecutor(8) as ex:
        res = list(ex.map(lambda j: gen_one(*j), jobs))
    for m in MODELS:
        for n in SCHEMAS:
            mine = [(seed, r) for (mm, nn, seed), r in zip(jobs, res) if mm == m and nn == n]
            bad = [(seed, r) for seed, r in mine if r and r != "cut"]
            cut = sum(r == "cut" for _, r in mine)
            ok(not bad and cut < len(mine), f"{m}: schema '{n}', {SEEDS} seeds at temperature 1, every output valid" +
               (f" ({cut} cut off by num_predict)" if cut else ""))
            for seed, r in bad:
                print(f"# seed {seed}: {r}")


def json_mode():
    for m in MODELS:
        done = 0
        bad = []
        for seed in range(4):
            st, txt = post("/api/generate", {"model": m, "prompt": "JSON please", "format": "json", "stream": False,
                                             "options": {"temperature": 1, "seed": seed, "num_predict": 300}})
            if st != 200:
                bad.append(f"HTTP {st} {txt[:200]}")
                continue
            r = json.loads(txt)
            if r["done_reason"] == "stop":
                done += 1
                try:
                    json.loads(r["response"])
                except ValueError as e:
                    bad.append(f"{e}: {r['response'][:200]!r}")
        ok(not bad and done > 0, f"{m}: format \"json\": complete outputs parse ({done} of 4 complete)")
        for b in bad:
            print("# " + b)


def streamed_chat():
    sch = SCHEMAS["object"]
    body = {"model": MODELS[0], "messages": [{"role": "user", "content": "hi"}], "format": sch, "stream": True,
            "options": {"temperature": 1, "seed": 7, "num_predict": 300}}
    req = urllib.request.Request(URL + "/api/chat", data=json.dumps(body).encode())
    text = ""
    with urllib.request.urlopen(req, timeout=300) as r:
        for line in r:
            o = json.loads(line)
            text += o.get("message", {}).get("content", "")
    try:
        jsonschema.validate(json.loads(text), sch)
        good = True
    except Exception as e:  # noqa: BLE001
        good = False
        print(f"# {e}: {text!r}")
    ok(good, "/api/chat streamed with a schema: the pieces form a valid value")


def openai_raw():
    sch = SCHEMAS["nested"]
    for path, extra in (("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
                        ("/v1/completions", {"prompt": "hi"})):
        bad = []
        for seed in range(3):
            body = dict(model=MODELS[1 % len(MODELS)], temperature=1, seed=seed, max_tokens=400,
                        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": sch,
                                                                                  "strict": True}}, **extra)
            st, txt = post(path, body)
            if st != 200:
                bad.append(f"HTTP {st} {txt[:200]}")
                continue
            ch = json.loads(txt)["choices"][0]
            out = ch["message"]["content"] if "message" in ch else ch["text"]
            try:
                jsonschema.validate(json.loads(out), sch)
            except Exception as e:  # noqa: BLE001
                bad.append(f"{e}: {out[:200]!r}")
        ok(not bad, f"{path} response_format json_schema: 3 seeds valid")
        for b in bad:
            print("# " + b)
    st, txt = post("/v1/chat/completions", {"model": MODELS[0], "messages": [{"role": "user", "content": "x"}],
                                            "temperature": 1, "seed": 3, "max_tokens": 400,
                                            "response_format": {"type": "json_object"}})
    r = json.loads(txt) if st == 200 else None
    good = False
    if r and r["choices"][0]["finish_reason"] == "stop":
        good = isinstance(json.loads(r["choices"][0]["message"]["content"]), dict)
    elif r:
        good = True     # cut off by max_tokens: nothing to parse
        print("# json_object output cut off by max_tokens")
    ok(good, "response_format json_object: a JSON object")


class Pet(BaseModel):
    kind: Literal["cat", "dog", "fish"]
    name: str = Field(max_length=8)


class Person(BaseModel):
    name: str = Field(max_length=10)
    age: Optional[int] = None
    tags: List[Annotated[str, Field(max_length=6)]] = Field(default_factory=list, max_length=3)
    pets: List[Pet] = Field(max_length=2)
    score: float


def clients():
    oc = ollama.Client(host=URL)
    for seed in range(3):
        r = oc.chat(model=MODELS[0], messages=[{"role": "user", "content": "A person?"}],
                    format=Person.model_json_schema(), options={"temperature": 1, "seed": seed, "num_predict": 400})
        try:
            Person.model_validate_json(r.message.content)
            good = True
        except Exception as e:  # noqa: BLE001
            good = False
            print(f"# {e}: {r.message.content!r}")
        ok(good, f"ollama client chat(format=Person.model_json_schema()), seed {seed}: pydantic validates")
    r = oc.generate(model=MODELS[1 % len(MODELS)], prompt="x", format="json",
                    options={"temperature": 0, "num_predict": 300})
    ok(r.done_reason == "length" or json.loads(r.response) is not None, "ollama client generate(format='json')")
    try:
        oc.generate(model=MODELS[0], prompt="x", format={"type": "string", "pattern": "^a+$"})
        ok(False, "ollama client: pattern refused")
    except ollama.ResponseError as e:
        ok(e.status_code == 400 and "keyword 'pattern' at $" in str(e), f"ollama client: pattern refused: {e}")

    cl = openai.OpenAI(base_url=URL + "/v1", api_key="x")
    for seed in range(3):
        c = cl.beta.chat.completions.parse(model=MODELS[1 % len(MODELS)],
                                           messages=[{"role": "user", "content": "A person?"}],
                                           response_format=Person, temperature=1, seed=seed, max_tokens=400)
        ok(isinstance(c.choices[0].message.parsed, Person),
           f"openai client beta.chat.completions.parse(response_format=Person), seed {seed}")
    try:
        cl.chat.completions.create(model=MODELS[0], messages=[{"role": "user", "content": "x"}],
                                   response_format={"type": "json_schema", "json_schema": {
                                       "name": "n", "schema": {"type": "object", "properties": {
                                           "x": {"type": "object", "patternProperties": {"^a": {}}}}}}})
        ok(False, "openai client: patternProperties refused")
    except openai.BadRequestError as e:
        ok("keyword 'patternProperties' at $.properties.x is not supported" in str(e),
           f"openai client: patternProperties refused with 400: {e.message}")


def refusals():
    cases = [({"type": "integer", "minimum": 3}, "keyword 'minimum' at $ is not supported"),
             ({"type": "object", "properties": {"a": {"type": "array", "items": {"not": {}}}}},
              "keyword 'not' at $.properties.a.items is not supported"),
             ({"$ref": "#/$defs/x", "$defs": {"x": {"$ref": "#/$defs/x"}}}, "no instance"),
             ("yaml", "format: expected")]
    for sch, want in cases:
        st, txt = post("/api/generate", {"model": MODELS[0], "prompt": "x", "format": sch, "stream": False})
        ok(st == 400 and want in txt, f"/api/generate format {json.dumps(sch)[:60]}: 400 naming it ({txt[:120]})")
    st, txt = post("/v1/chat/completions", {"model": MODELS[0], "messages": [{"role": "user", "content": "x"}],
                                            "response_format": {"type": "xml"}})
    ok(st == 400 and "response_format" in txt, "response_format type xml: 400")


sweep()
json_mode()
streamed_chat()
openai_raw()
clients()
refusals()
print(f"1..{n_test}")
sys.exit(1 if n_fail else 0)
