#!/usr/bin/env python3
"""GBNF grammars against `lamina serve` on random-weight tiny models
(tests/server/gbnf.sh): each grammar generated through /v1/completions,
/v1/chat/completions, /api/generate and /api/chat (the grammar field is
llama-server's; on the Ollama endpoints an extension), streamed and not,
at temperature 0 and 1.  Every grammar here has a bounded language, so a
generation ends because the grammar is complete (finish_reason "stop");
the whole output must then parse with lark (Earley) under an equivalent
grammar written by hand in lark's syntax -- a parser that shares nothing
with lamina's.  Bad grammars, and a grammar next to a schema, answer 400.
Prints TAP."""
import concurrent.futures as cf
import json
import os
import sys
import urllib.error
import urllib.request

import lark

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taplib import done, ok, poster  # noqa: E402

URL = sys.argv[1]
MODELS = sys.argv[2:] or ["tiny-gemma3", "tiny-llama"]
post = poster(URL)


# name: (GBNF, the same language in lark's syntax)
GRAMMARS = {
    "arithmetic": (r'''
# two levels of expressions
root  ::= expr
expr  ::= term ([-+*/] term){0,3}
term  ::= num | "(" inner ")"
inner ::= num ([-+*/] num){0,3}
num   ::= "-"? [0-9]{1,4}
''', r'''
start: expr
expr: term (OP term)~0..3
term: num | "(" inner ")"
inner: num (OP num)~0..3
num: "-"? DIGIT~1..4
OP: /[-+*\/]/
DIGIT: /[0-9]/
'''),
    "json-ish": (r'''
root   ::= object
object ::= "{" ( pair ("," " "? pair){0,2} )? "}"
pair   ::= string ":" " "? value
value  ::= string | number | "true" | "false" | "null" | array
array  ::= "[" ( scalar ("," scalar){0,3} )? "]"
scalar ::= string | number | "true" | "false" | "null"
string ::= "\"" ( [^"\\\x00-\x1f] | "\\" ["\\/nt] ){0,8} "\""
number ::= "-"? ("0" | [1-9] [0-9]{0,5}) ("." [0-9]{1,3})?
''', r'''
start: object
object: "{" (pair ("," " "? pair)~0..2)? "}"
pair: string ":" " "? value
value: string | number | "true" | "false" | "null" | array
array: "[" (scalar ("," scalar)~0..3)? "]"
scalar: string | number | "true" | "false" | "null"
string: "\"" (CH | "\\" ESC)~0..8 "\""
number: "-"? ("0" | NZ DIGIT~0..5) ("." DIGIT~1..3)?
CH: /[^"\\\x00-\x1f]/
ESC: /["\\\/nt]/
NZ: /[1-9]/
DIGIT: /[0-9]/
'''),
    "list": (r'''
root ::= item{1,4}
item ::= "- " [^\r\n\x0b\x0c\x85\u2028\u2029]{1,24} "\n"
''', r'''
start: item~1..4
item: "- " CH~1..24 "\n"
CH: /[^\r\n\x0b\x0c\x85\u2028\u2029]/
'''),
    "chess": (r'''
root   ::= "1. " move " " move "\n" ([2-9] ". " move " " move "\n"){0,2}
move   ::= (pawn | piece | castle) [+#]?
pawn   ::= ([a-h] "x")? [a-h] [1-8] ("=" [NBRQ])?
piece  ::= [NBKQR] [a-h]? [1-8]? "x"? [a-h] [1-8]
castle ::= "O-O" "-O"?
''', r'''
start: "1. " move " " move "\n" (N ". " move " " move "\n")~0..2
move: (pawn | piece | castle) CHECK?
pawn: (FILE "x")? FILE RANK ("=" PROMO)?
piece: PIECE FILE? RANK? "x"? FILE RANK
castle: "O-O" "-O"?
N: /[2-9]/
CHECK: /[+#]/
FILE: /[a-h]/
RANK: /[1-8]/
PROMO: /[NBRQ]/
PIECE: /[NBKQR]/
'''),
    "nesting": (r'''
root ::= "(" root ")" | [a-z]{1,3}
''', r'''
start: "(" start ")" | LOW~1..3
LOW: /[a-z]/
'''),
    "unicode": (r'''
root ::= word ("," " "? word){0,2}
word ::= [α-ωА-я]{2,6}
''', r'''
start: word ("," " "? word)~0..2
word: L~2..6
L: /[α-ωА-я]/
'''),
}
PARSERS = {name: lark.Lark(lk, start="start", parser="earley", lexer="dynamic") for name, (_, lk) in GRAMMARS.items()}


def run(model, name, endpoint, temp, seed, stream):
    """(finish reason, text) or (None, error)."""
    g = GRAMMARS[name][0]
    if endpoint.startswith("/v1/"):
        body = {"model": model, "grammar": g, "max_tokens": 1000, "temperature": temp, "seed": seed, "stream": stream}
        if endpoint == "/v1/completions":
            body["prompt"] = "Write:"
        else:
            body["messages"] = [{"role": "user", "content": "Write:"}]
    else:
        body = {"model": model, "grammar": g, "stream": stream,
                "options": {"temperature": temp, "seed": seed, "num_predict": 1000}}
        if endpoint == "/api/generate":
            body["prompt"] = "Write:"
        else:
            body["messages"] = [{"role": "user", "content": "Write:"}]
    if not stream:
        st, r = post(endpoint, body)
        if st != 200:
            return None, f"HTTP {st}: {str(r)[:200]}"
        if endpoint == "/v1/completions":
            return r["choices"][0]["finish_reason"], r["choices"][0]["text"]
        if endpoint == "/v1/chat/completions":
            return r["choices"][0]["finish_reason"], r["choices"][0]["message"]["content"]
        if endpoint == "/api/generate":
            return r.get("done_reason"), r["response"]
        return r.get("done_reason"), r["message"]["content"]
    req = urllib.request.Request(URL + endpoint, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    text, reason = "", None
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            for line in r:
                line = line.decode().strip()
                if endpoint.startswith("/v1/"):
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    ch = json.loads(line[6:])["choices"][0]
                    text += ch.get("text") or (ch.get("delta") or {}).get("content") or ""
                    reason = ch.get("finish_reason") or reason
                elif line:
                    o = json.loads(line)
                    text += o.get("response", "") if endpoint == "/api/generate" else o.get("message", {}).get("content", "")
                    if o.get("done"):
                        reason = o.get("done_reason")
    except urllib.error.HTTPError as e:
        return None, f"HTTP {e.code}: {e.read().decode()[:200]}"
    return reason, text


def check_one(model, name, endpoint, temp, seed, stream):
    reason, text = run(model, name, endpoint, temp, seed, stream)
    if reason is None:
        return text
    if reason != "stop":
        return f"finish {reason}: {text[:200]!r}"
    try:
        PARSERS[name].parse(text)
    except lark.exceptions.LarkError as e:
        return f"lark refuses {text[:300]!r}: {str(e)[:200]}"
    if name == "json-ish":
        try:
            json.loads(text)
        except ValueError as e:
            return f"not JSON ({e}): {text[:200]!r}"
    return None


RUNS = [("/v1/completions", 0, 0, False), ("/v1/completions", 1, 1, True), ("/v1/completions", 1, 2, False),
        ("/v1/chat/completions", 1, 3, False), ("/v1/chat/completions", 0, 0, True),
        ("/api/generate", 1, 4, True), ("/api/generate", 0, 0, False), ("/api/chat", 1, 5, False)]

with cf.ThreadPoolExecutor(4) as ex:
    jobs = {}
    for m in MODELS:
        for name in GRAMMARS:
            for r in RUNS:
                jobs[(m, name) + r] = ex.submit(check_one, m, name, *r)
    for m in MODELS:
        for name in GRAMMARS:
            bad = [(r, jobs[(m, name) + r].result()) for r in RUNS]
            bad = [(r, e) for r, e in bad if e]
            ok(not bad, f"{m} {name}: {len(RUNS)} generations end complete and parse with lark"
               + (f" -- {bad[0][0]}: {bad[0][1]}" if bad else ""))

# 400s: bad grammars name line and column; one of grammar or schema
m = MODELS[0]
BAD = [
    ("/v1/completions", {"prompt": "x", "grammar": "root ::= a\na ::= b"}, "line 2, column 7: rule 'b' is not defined"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= x\nx ::= x \"a\" | \"a\""},
     "left recursion in rule 'x'"),
    ("/v1/completions", {"prompt": "x", "grammar": "item ::= \"a\""}, "no 'root' rule"),
    ("/v1/completions", {"prompt": "x", "grammar": "root ::= \"a\"{4,2}"}, "bad repetition bounds"),
    ("/v1/completions", {"prompt": "x", "grammar": "root ::= \"abc"}, "unterminated string"),
    ("/v1/completions", {"prompt": "x", "grammar": 5}, "grammar: expected a GBNF grammar as a string"),
    ("/v1/completions", {"prompt": "x", "grammar": "root ::= \"a\"", "response_format": {"type": "json_object"}},
     "cannot both be given"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= \"a\"",
                              "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}}},
     "cannot both be given"),
    ("/api/generate", {"prompt": "x", "grammar": "root ::= \"a\"", "format": "json", "stream": False}, "cannot both be given"),
    ("/api/chat", {"messages": [{"role": "user", "content": "x"}], "grammar": "root ::= [", "stream": False},
     "line 1, column 10: unterminated character class"),
]
for path, body, want in BAD:
    body = dict(body, model=m)
    st, r = post(path, body)
    txt = json.dumps(r) if not isinstance(r, str) else r
    ok(st == 400 and want in txt, f"{path} {json.dumps(body.get('grammar'))[:50]}: 400 naming it ({txt[:160]})")

# what stays allowed: response_format text next to a grammar, an empty grammar
st, txt = post("/v1/completions", {"model": m, "prompt": "x", "max_tokens": 20, "grammar": "root ::= \"yes\" | \"no\"",
                                   "response_format": {"type": "text"}})
ok(st == 200 and txt["choices"][0]["text"] in ("yes", "no"),
   f"response_format text with a grammar: the grammar applies ({json.dumps(txt)[:120]})")
st, txt = post("/v1/completions", {"model": m, "prompt": "x", "max_tokens": 5, "grammar": ""})
ok(st == 200, f"an empty grammar is no grammar ({json.dumps(txt)[:80]})")

done()
