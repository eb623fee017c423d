#!/usr/bin/env python3
"""Structured output against `lamina serve` on random-weight tiny models
(tests/server/format.sh): a corpus of schemas covering every supported
keyword, each generated streamed and not, at temperature 0 and 1, on both
models through /api/generate, every output validated with jsonschema (with
a format checker for the formats lamina enforces); /api/chat,
/v1/chat/completions and /v1/completions; the ollama and openai clients with
pydantic schemas; refused schemas answer 400 naming the keyword.
Prints TAP."""
import concurrent.futures as cf
import datetime
import decimal
import json
import re
import sys
import time
import urllib.error
import urllib.request
from typing import Annotated, List, Literal, Optional

import jsonschema
import ollama
import openai
from pydantic import BaseModel, Field

URL = sys.argv[1]
MODELS = sys.argv[2:] or ["tiny-gemma3", "tiny-llama"]
SEEDS = 2
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
I = lambda lo=None, hi=None, **k: dict(type="integer", **({"minimum": lo} if lo is not None else {}),
                                        **({"maximum": hi} if hi is not None else {}), **k)
N = lambda lo=None, hi=None, **k: dict(type="number", **({"minimum": lo} if lo is not None else {}),
                                       **({"maximum": hi} if hi is not None else {}), **k)
F = lambda f, **k: dict(type="string", format=f, **k)
P = lambda p, **k: dict(type="string", pattern=p, **k)
OBJ = lambda req=None, **props: {"type": "object", "properties": props,
                                 "required": list(props) if req is None else req, "additionalProperties": False}
SCHEMAS.update({
    # numeric bounds
    "int_range": I(10, 250),
    "int_negative": I(-50, -3),
    "int_exclusive": I(exclusiveMinimum=0, exclusiveMaximum=5),
    "int_min_only": I(1000),
    "int_max_only": I(None, -100),
    "int_draft4": I(0, 9, exclusiveMinimum=True),
    "num_range": N(-1.5, 2.25),
    "num_exclusive": N(exclusiveMinimum=0, exclusiveMaximum=1),
    "num_min_only": N(1000),
    "num_implied": {"minimum": 0.5, "maximum": 0.75},
    "obj_ranges": OBJ(age=I(0, 120), score=N(0, 1), temp=N(-50, 50), level=I(1, 3)),
    "array_ranges": {"type": "array", "items": I(1, 6), "minItems": 2, "maxItems": 5},
    "enum_range": {"enum": [1, 2, 5, 8, 13], "minimum": 4},
    # multipleOf (exact), alone and with bounds
    "int_multiple": I(multipleOf=7),
    "int_multiple_range": I(-100, 1000, multipleOf=25),
    "num_multiple": N(0, 50, multipleOf=0.25),
    "num_cents": N(0, 100, multipleOf=0.01),
    "obj_multiples": OBJ(qty=I(1, 99, multipleOf=3), price=N(0, 20, multipleOf=0.5)),
    # formats
    "date": F("date"),
    "time": F("time"),
    "date_time": F("date-time"),
    "uuid": F("uuid"),
    "email": F("email"),
    "ipv4": F("ipv4"),
    "uri_annotation": F("uri", maxLength=8),
    "obj_formats": OBJ(id=F("uuid"), created=F("date-time"), day=F("date"), at=F("time")),
    "array_dates": {"type": "array", "items": F("date"), "minItems": 1, "maxItems": 3},
    "nullable_date": F("date", nullable=True),
    # a format and a pattern on one string: both hold
    "fmt_pattern_date": F("date", pattern=r"^20[0-2][0-9]-(0[1-9]|1[0-2])-.*$"),
    "fmt_pattern_email": F("email", pattern=r"^[a-z]{1,8}@example\.(com|org)$"),
    "fmt_pattern_uuid": F("uuid", pattern=r"^[0-9]{8}-.*$"),
    # patterns
    "pat_phone": P(r"^\d{3}-\d{4}$"),
    "pat_code": P(r"^[A-Z]{2}[0-9]{2,4}$"),
    "pat_alt": P(r"^(red|green|blue)-[0-9]$"),
    "pat_unanchored": P(r"ab+c", maxLength=8),
    "pat_negclass": P(r"^[^aeiou\s]{1,5}$"),
    "pat_dot": P(r"^x.{0,3}y$"),
    "pat_escapes": P(r'^a\.b\\c"/$'),
    "pat_phone_us": P(r"^(?:\+1 )?\(\d{3}\) \d{3}-\d{4}$"),
    "pat_word": P(r"^\w{2,6}@\w{2,6}\.(com|org)$"),
    "pat_unicode": P(r"^[а-я]{1,4}é?$"),
    "pat_lengths": P(r"^[a-z]+$", minLength=2, maxLength=6),
    "pat_hex_colors": {"type": "array", "items": P(r"^#[0-9a-f]{6}$"), "maxItems": 3},
    "obj_patterns": OBJ(sku=P(r"^SKU-[0-9]{3}$"), zip=P(r"^[0-9]{5}(-[0-9]{4})?$"), note=S(5)),
    # structure
    "deep_nested": OBJ(a=OBJ(b=OBJ(c={"type": "array", "items": OBJ(d=I(0, 9)), "maxItems": 2}))),
    "optional_many": OBJ([], a=I(0, 5), b=S(3), c={"type": "boolean"}, d={"type": "null"}, e=F("date")),
    "tuple": {"type": "array", "prefixItems": [I(1, 9), F("date"), {"enum": ["x", "y"]}], "items": False,
              "minItems": 3},
    "array_enum": {"type": "array", "items": {"enum": ["lo", "mid", "hi"]}, "minItems": 1, "maxItems": 3},
    "anyof_scalars": {"anyOf": [I(0, 99), P(r"^[a-f]{2}$"), {"type": "null"}]},
    "oneof_kinds": {"oneOf": [OBJ(kind={"const": "circle"}, r=N(0, 10)),
                              OBJ(kind={"const": "rect"}, w=I(1, 9), h=I(1, 9))]},
    "ref_defs": {"$defs": {"addr": OBJ(city=S(6), zip=P(r"^[0-9]{5}$")),
                           "person": OBJ(name=S(6), home={"$ref": "#/$defs/addr"})},
                 "type": "object", "properties": {"owner": {"$ref": "#/$defs/person"},
                                                  "office": {"$ref": "#/$defs/addr"}},
                 "required": ["owner", "office"]},
    "list_recursive": {"$defs": {"node": OBJ(v=I(0, 9), next={"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]})},
                       "$ref": "#/$defs/node"},
    "allof_single": {"allOf": [OBJ(x=I(-3, 3))], "description": "one subschema"},
    "const_object": {"const": {"a": [1, 2], "b": None}},
    "enum_mixed": {"enum": ["a", 1, None, True, {"x": 1}, [2.5]]},
    "typelist_bounds": {"type": ["number", "string"], "minimum": 0, "maximum": 10, "maxLength": 3},
    "addl_true": {"type": "object", "properties": {"a": I(0, 3)}, "required": ["a"], "additionalProperties": True},
    "num_array_exclusive": {"type": "array", "items": N(exclusiveMinimum=-1, exclusiveMaximum=1), "maxItems": 3},
    "empty_object": {"type": "object", "properties": {}, "additionalProperties": False},
    "prefix_then_items": {"type": "array", "prefixItems": [F("uuid")], "items": I(0, 3), "minItems": 2, "maxItems": 4},
    "items_true": {"type": "array", "items": True, "maxItems": 2},
    "empty_schema": {},
})
# what jsonschema checks instead ("nullable" is OpenAPI's keyword, not JSON Schema's)
# (multipleOf 0.01 is checked exactly below: jsonschema divides floats)
VALIDATE = {"nullable": {"type": "object", "properties": {"q": {"type": ["integer", "null"]}}, "required": ["q"]},
            "num_cents": N(0, 100),
            "nullable_date": {"type": ["string", "null"], "format": "date"},
            "int_draft4": I(None, 9, exclusiveMinimum=0)}
# additional property names and any-value schemas have no length bound, a
# recursive list may go 32 deep, and an array of 16-digit numbers with
# 21-byte whitespace runs is long: a random model may write until the token
# limit (then nothing is checked; at least one output must complete)
UNBOUNDED = {"addl", "addl_true", "items_true", "empty_schema", "list_recursive", "recursive",
             "nested"}

# Formats lamina enforces are checked; others are annotations (JSON Schema
# 2020-12's default).  RFC 3339 date-time and time are checked here (the
# jsonschema package needs an optional module for them).
FORMATS = jsonschema.FormatChecker(formats=["date", "uuid", "email", "ipv4"])
RFC3339_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))")


@FORMATS.checks("time")
def is_time(s):
    m = RFC3339_TIME.fullmatch(s) if isinstance(s, str) else None
    return m is not None and int(m[1]) < 24 and int(m[2]) < 60 and int(m[3]) < 60 and \
        (m[6] is None or (int(m[6]) < 24 and int(m[7]) < 60))


@FORMATS.checks("date-time", raises=ValueError)
def is_date_time(s):
    if not isinstance(s, str) or len(s) < 11 or s[10] not in "Tt" or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s[:10]):
        return False
    datetime.date.fromisoformat(s[:10])
    return is_time(s[11:])


def validate(name, value):
    sch = VALIDATE.get(name, SCHEMAS[name])
    jsonschema.Draft202012Validator(sch, format_checker=FORMATS).validate(value)


def generate(model, name, seed, temp, stream):
    """(done_reason, text) of one /api/generate, or (None, error)."""
    body = {"model": model, "prompt": "Answer in JSON.", "format": SCHEMAS[name], "stream": stream,
            "options": {"temperature": temp, "seed": seed, "num_predict": 300}}
    if not stream:
        st, txt = post("/api/generate", body)
        if st != 200:
            return None, f"HTTP {st}: {txt[:200]}"
        r = json.loads(txt)
        return r.get("done_reason"), r["response"]
    req = urllib.request.Request(URL + "/api/generate", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    text, reason = "", None
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            for line in r:
                o = json.loads(line)
                text += o.get("response", "")
                if o.get("done"):
                    reason = o.get("done_reason")
    except urllib.error.HTTPError as e:
        return None, f"HTTP {e.code}: {e.read().decode()[:200]}"
    return reason, text


def gen_one(model, name, seed, temp, stream):
    reason, text = generate(model, name, seed, temp, stream)
    if reason is None:
        return text
    if reason == "length" and name in UNBOUNDED:
        return "cut"
    if reason != "stop":
        return f"done_reason {reason}: {text[:200]!r}"
    try:
        v = json.loads(text)
    except ValueError as e:
        return f"not JSON ({e}): {text[:300]!r}"
    try:
        validate(name, v)
    except jsonschema.ValidationError as e:
        return f"invalid ({e.message}): {text[:300]!r}"
    if name == "num_cents" and decimal.Decimal(text.strip()) % decimal.Decimal("0.01") != 0:
        return f"not a multiple of 0.01 (read exactly): {text[:100]!r}"
    return None


# per model and schema: temperature 1 (SEEDS seeds, one of them streamed)
# and temperature 0 (streamed and not)
RUNS = [(seed, 1, seed == 0) for seed in range(SEEDS)] + [(0, 0, False), (0, 0, True)]


def sweep():
    t0 = time.time()
    jobs = [(m, n, seed, temp, stream) for m in MODELS for n in SCHEMAS for seed, temp, stream in RUNS]
    with cf.ThreadPoolExecutor(8) as ex:
        res = list(ex.map(lambda j: gen_one(*j), jobs))
    passed = 0
    for m in MODELS:
        for n in SCHEMAS:
            mine = [(j, r) for j, r in zip(jobs, res) if j[0] == m and j[1] == n]
            bad = [(j, r) for j, r in mine if r and r != "cut"]
            cut = sum(r == "cut" for _, r in mine)
            good = ok(not bad and cut < len(mine),
                      f"{m}: schema '{n}', {len(mine)} outputs (temperature 0 and 1, streamed and not) valid" +
                      (f" ({cut} cut off by num_predict)" if cut else ""))
            passed += good
            for (_, _, seed, temp, stream), r in bad:
                print(f"# seed {seed} temperature {temp}{' streamed' if stream else ''}: {r}")
    n_out = sum(r is None for r in res)
    ok(len(SCHEMAS) >= 50, f"corpus: {len(SCHEMAS)} schemas, {passed} of {len(SCHEMAS) * len(MODELS)} "
       f"schema x model checks pass, {n_out} of {len(res)} outputs complete and valid, "
       f"{time.time() - t0:.0f} s")


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
        oc.generate(model=MODELS[0], prompt="x", format={"type": "string", "pattern": "^(a)\\1$"})
        ok(False, "ollama client: a pattern with a backreference refused")
    except ollama.ResponseError as e:
        ok(e.status_code == 400 and "keyword 'pattern' at $: backreference '\\1' at position 4" in str(e),
           f"ollama client: a pattern with a backreference refused: {e}")

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
    cases = [({"type": "number", "multipleOf": 1e-20}, "keyword 'multipleOf' at $: more than 16 decimal places"),
             ({"type": "string", "format": "date", "pattern": "^x$"},
              "keywords 'format' ('date') and 'pattern' at $: no string meets both"),
             ({"type": "string", "pattern": "(?=x)"}, "keyword 'pattern' at $: group '(?=' at position 0"),
             ({"type": "string", "pattern": "[a-"}, "keyword 'pattern' at $: missing ']'"),
             ({"type": "integer", "minimum": 5, "maximum": 4}, "no integer fits"),
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
