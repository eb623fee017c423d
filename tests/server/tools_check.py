#!/usr/bin/env python3
"""Tool calling and thinking against `lamina serve` (tests/server/tools.sh).

Models (random weights, real templates): tiny-qwen25 and tiny-qwen3
(<tool_call>), tiny-llama31 (JSON calls), tiny-mistral ([TOOL_CALLS]),
tiny-r1 (thinks; its template takes no tools) and tiny-gemma (no template:
lamina's generic format).  A random model calls a tool only when made to,
so calls are checked with tool_choice "required" or a named function (the
grammar makes them certain) and, for the generic format, with the reply
constrained to a call or an answer.  Prompts with tools are compared with
Python's jinja2 rendering the same template.  Prints TAP.
"""
import json
import os
import re
import sys

import jsonschema
import ollama
import openai

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tok"))
from jinja_corpus import make_env  # noqa: E402  (the transformers environment)
from taplib import done, ok, poster  # noqa: E402

URL, TDIR = sys.argv[1], sys.argv[2]
post = poster(URL)


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 12},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"]}}}
ADD = {"type": "function", "function": {
    "name": "add", "description": "Add two integers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                   "required": ["a", "b"], "additionalProperties": False}}}
MUL = {"type": "function", "function": {
    "name": "mul", "description": "Multiply two integers.",
    "parameters": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                   "required": ["x", "y"]}}}
TOOLS = [WEATHER, ADD]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS + [MUL]}

TEMPLATES = {"tiny-qwen25": "Qwen-Qwen2.5-7B-Instruct", "tiny-qwen3": "Qwen-Qwen3-0.6B",
             "tiny-llama31": "meta-llama-Llama-3.1-8B-Instruct",
             "tiny-mistral": "mistralai-Mistral-Nemo-Instruct-2407"}
ALL = ["tiny-gemma", "tiny-qwen25", "tiny-qwen3", "tiny-llama31", "tiny-mistral", "tiny-r1"]
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"          # the tiny BPE vocabulary's
ADDS_BOS = {"tiny-llama31", "tiny-mistral"}                 # llama files add BOS: the text one is cut


def valid_call(name, args):
    """'' when a call is one of TOOLS with arguments its schema accepts."""
    if name not in SCHEMAS:
        return f"unknown tool {name!r}"
    try:
        jsonschema.validate(args, SCHEMAS[name])
    except jsonschema.ValidationError as e:
        return f"{name} arguments {args!r}: {e.message}"
    return ""


def check_openai_calls(calls, desc, only=None, at_most=None):
    bad = []
    if not calls:
        bad.append("no tool calls")
    ids = set()
    for c in calls or []:
        args = json.loads(c["function"]["arguments"])
        err = valid_call(c["function"]["name"], args)
        if err:
            bad.append(err)
        if only and c["function"]["name"] != only:
            bad.append(f"called {c['function']['name']}, not {only}")
        if not c["id"] or c["id"] in ids or c["type"] != "function":
            bad.append(f"id/type {c['id']!r} {c['type']!r}")
        ids.add(c["id"])
    if at_most is not None and len(calls or []) > at_most:
        bad.append(f"{len(calls)} calls, at most {at_most} allowed")
    ok(not bad, desc, "; ".join(bad))


# ---------------------------------------------------------------------------
# 1. prompts with tools, tool calls and results: lamina's interpreter vs jinja2

HISTORY = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris, and 2+3?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "abc123xyz", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]},
    {"role": "tool", "tool_call_id": "abc123xyz", "name": "get_weather", "content": "21 C, sunny"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "def456uvw", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}}]},
    {"role": "tool", "tool_call_id": "def456uvw", "name": "add", "content": "5"},
]


def template_messages(msgs):
    """The messages as lamina gives them to a template (arguments as objects)."""
    out = []
    for m in msgs:
        n = {"role": m["role"], "content": m.get("content")}
        if m.get("tool_calls"):
            n["tool_calls"] = [{"type": "function", "function": {
                "name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])},
                "id": c["id"]} for c in m["tool_calls"]]
        if m["role"] == "tool":
            n["tool_call_id"] = m["tool_call_id"]
            n["name"] = m["name"]
        if n["content"] is None:
            n["content"] = ""
        out.append(n)
    return out


env = make_env()
for model, tname in TEMPLATES.items():
    with open(os.path.join(TDIR, tname + ".jinja"), encoding="utf-8") as f:
        tmpl = env.from_string(f.read())
    for label, msgs, extra in [("tools and results", HISTORY, {}),
                               ("tools, first turn", HISTORY[:2], {}),
                               ("thinking off", HISTORY[:2], {"enable_thinking": False})]:
        body = {"model": model, "messages": msgs, "tools": TOOLS}
        if extra:
            body["chat_template_kwargs"] = extra
        st, got = post("/apply-template", body)
        ctx = {"messages": template_messages(msgs), "tools": TOOLS, "add_generation_prompt": True,
               "bos_token": BOS, "eos_token": EOS, **extra}
        try:
            want = tmpl.render(**ctx)
        except Exception as e:  # a template refusing the conversation: lamina must refuse too
            want = e
        if isinstance(want, Exception):   # lamina falls back to a built-in format, or refuses
            ok(st in (200, 400), f"{model}: {label}: jinja2 refuses ({want}); lamina answers", got)
            continue
        if model in ADDS_BOS and want.startswith(BOS):
            want = want[len(BOS):]
        ok(st == 200 and got.get("prompt") == want, f"{model}: {label}: prompt identical to jinja2's",
           f"status {st}\nlamina: {got!r:.600}\njinja2: {want!r:.600}")
    if model == "tiny-qwen3":
        st, got = post("/apply-template", {"model": model, "messages": HISTORY[:2],
                                           "chat_template_kwargs": {"enable_thinking": False}})
        ok(st == 200 and got["prompt"].endswith("<think>\n\n</think>\n\n"),
           "tiny-qwen3: enable_thinking false closes the think block in the prompt", got)

# the generic format: tools described in the system message, calls and results as JSON
st, got = post("/apply-template", {"model": "tiny-gemma", "messages": HISTORY, "tools": TOOLS})
p = got.get("prompt", "") if st == 200 else ""
ok(st == 200 and "get_weather" in p and '"tool_calls"' in p and '"tool_response"' in p
   and '"21 C, sunny"' in p and p.endswith("<start_of_turn>model\n"),
   "tiny-gemma (generic): tools, calls and results in the prompt, turns still alternate", got)
st, got = post("/apply-template", {"model": "tiny-r1", "messages": HISTORY[:2], "tools": TOOLS,
                                   "chat_template_kwargs": {"enable_thinking": True}})
ok(st == 200 and "get_weather" in got["prompt"] and got["prompt"].endswith("<think>\n"),
   "tiny-r1 (generic, thinks): tools in the prompt, which opens <think>", got)

# ---------------------------------------------------------------------------
# 2. required and named calls: every format, openai client, streamed and not

oc = openai.OpenAI(base_url=URL + "/v1", api_key="none", max_retries=0, timeout=300)
ASK = [{"role": "user", "content": "What is the weather in Paris? Also add 2 and 3."}]
for model in ALL:
    # a random model writes long numbers and much whitespace: room for it
    for seed, par in ((1, False), (2, False), (3, True)):
        r = oc.chat.completions.create(model=model, messages=ASK, tools=TOOLS, tool_choice="required",
                                       parallel_tool_calls=par, temperature=1, seed=seed, max_tokens=1500)
        ch = r.choices[0]
        calls = [c.model_dump() for c in ch.message.tool_calls or []]
        ok(ch.finish_reason == "tool_calls" and ch.message.content is None,
           f"{model}: required, seed {seed}: finish_reason tool_calls, no content",
           f"{ch.finish_reason} {ch.message.content!r}")
        check_openai_calls(calls, f"{model}: required, seed {seed}: valid calls", at_most=None if par else 1)
    # streamed: deltas with index, id, name, arguments
    acc, finish, content = {}, None, ""
    for chunk in oc.chat.completions.create(model=model, messages=ASK, tools=TOOLS, tool_choice="required",
                                            parallel_tool_calls=False, temperature=1, seed=4, max_tokens=1500,
                                            stream=True):
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        content += d.content or ""
        for tc in d.tool_calls or []:
            a = acc.setdefault(tc.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
            a["id"] += tc.id or ""
            a["function"]["name"] += tc.function.name or ""
            a["function"]["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    ok(finish == "tool_calls" and content == "", f"{model}: required, streamed: finish_reason tool_calls",
       f"{finish} {content!r}")
    check_openai_calls([acc[k] for k in sorted(acc)], f"{model}: required, streamed: valid calls")
    # a named function
    r = oc.chat.completions.create(model=model, messages=ASK, tools=TOOLS, temperature=1, seed=5, max_tokens=1500,
                                   tool_choice={"type": "function", "function": {"name": "add"}})
    check_openai_calls([c.model_dump() for c in r.choices[0].message.tool_calls or []],
                       f"{model}: tool_choice add: only add is called", only="add")
    # the conversation goes on after the results
    r = oc.chat.completions.create(model=model, messages=HISTORY, tools=TOOLS, temperature=0, max_tokens=8)
    ok(r.choices[0].finish_reason in ("stop", "length", "tool_calls"),
       f"{model}: a conversation with tool results is answered")

r = oc.chat.completions.create(model="tiny-gemma", messages=ASK, tools=TOOLS, tool_choice="required",
                               parallel_tool_calls=False, temperature=1, seed=6, max_tokens=1500)
check_openai_calls([c.model_dump() for c in r.choices[0].message.tool_calls or []],
                   "tiny-gemma: parallel_tool_calls false: one call", at_most=1)
r = oc.chat.completions.create(model="tiny-qwen25", messages=ASK, tools=TOOLS, tool_choice="none",
                               temperature=0, max_tokens=8)
ok(not r.choices[0].message.tool_calls and r.choices[0].finish_reason != "tool_calls",
   "tiny-qwen25: tool_choice none: no call")

# ---------------------------------------------------------------------------
# 3. the ollama client: tools on a model whose template takes none (generic,
#    auto: a call or an answer, both valid), streamed and not, results fed back

def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
      a: the first
      b: the second
    """
    return a + b


cl = ollama.Client(host=URL, timeout=300)
n_calls = n_answers = n_cut = 0
bad = []
for seed in range(1, 11):
    # a Python function and a dict (the client keeps only type, description and enum of a
    # property: an unbounded string would let a random model write until num_predict)
    r = cl.chat(model="tiny-gemma", messages=ASK, tools=[add, MUL],
                options={"temperature": 1, "seed": seed, "num_predict": 2000})
    if r.message.tool_calls:
        n_calls += 1
        for tc in r.message.tool_calls:
            err = valid_call(tc.function.name, dict(tc.function.arguments))
            if err:
                bad.append(f"seed {seed}: {err}")
    elif isinstance(r.message.content, str) and r.done_reason == "stop":
        n_answers += 1
    elif (isinstance(r.message.content, str) and r.done_reason == "length"
          and re.match(r'\s*\{\s*"response"\s*:\s*"', r.message.content)):
        # an answer's free text (the generic format's "response" string) that
        # the random model wrote until num_predict: cut, as asked, in the
        # answer's form (which seeds do this depends on the CPU's kernels)
        n_cut += 1
    else:
        bad.append(f"seed {seed}: neither a call nor an answer: {r.message!r:.200}")
ok(not bad and n_calls + n_answers + n_cut == 10 and n_calls + n_answers > 0,
   f"ollama chat(tools=...) generic, 10 seeds: {n_calls} calls, {n_answers} answers, "
   f"{n_cut} answers cut at num_predict, all valid", "; ".join(bad))
ok(n_calls > 0, "  at least one seed called a tool")
calls = []
for part in cl.chat(model="tiny-gemma", messages=ASK, tools=[ADD], stream=True,
                    options={"temperature": 1, "seed": 2, "num_predict": 2000}):
    calls += part.message.tool_calls or []
ok(all(not valid_call(c.function.name, dict(c.function.arguments)) for c in calls),
   f"ollama chat(tools=..., stream=True): {len(calls)} valid calls")
for model in ("tiny-gemma", "tiny-qwen25"):
    msgs = [ASK[0], {"role": "assistant", "content": "",
                     "tool_calls": [{"function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]},
            {"role": "tool", "content": "5", "tool_name": "add"}]
    r = cl.chat(model=model, messages=msgs, tools=[ADD], options={"temperature": 0, "num_predict": 8})
    ok(r.done, f"{model}: ollama chat with a tool result fed back is answered")

# ---------------------------------------------------------------------------
# 4. thinking: a template that opens <think> (DeepSeek-R1): all thinking, never content

r = cl.chat(model="tiny-r1", messages=ASK, think=True, options={"temperature": 0, "num_predict": 16})
ok(r.message.thinking and r.message.content == "", "tiny-r1: ollama think=True: message.thinking, content empty",
   repr(r.message))
th = co = ""
for part in cl.chat(model="tiny-r1", messages=ASK, stream=True, think=True,
                   options={"temperature": 0, "num_predict": 16}):
    th += part.message.thinking or ""
    co += part.message.content or ""
ok(th and co == "", "tiny-r1: streamed: thinking apart from content", f"{th!r} {co!r}")
r = oc.chat.completions.create(model="tiny-r1", messages=ASK, temperature=0, max_tokens=16, reasoning_effort="high")
m = r.choices[0].message
ok((m.model_extra or {}).get("reasoning_content") and not m.content,
   "tiny-r1: openai: reasoning_content, content empty", repr(m))
rc = ""
for chunk in oc.chat.completions.create(model="tiny-r1", messages=ASK, temperature=0, max_tokens=16, stream=True,
                                        reasoning_effort="high"):
    if chunk.choices:
        rc += (chunk.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
ok(rc == m.model_extra["reasoning_content"], "tiny-r1: openai streamed: the same reasoning_content in deltas",
   f"{rc!r} vs {m.model_extra['reasoning_content']!r}")
r = cl.generate(model="tiny-r1", prompt="Hi", think=True, options={"temperature": 0, "num_predict": 8})
ok(r.thinking and r.response == "", "tiny-r1: ollama generate think=True: thinking apart", repr(r))
try:
    cl.chat(model="tiny-gemma", messages=ASK, think=True)
    ok(False, "tiny-gemma: think=True refused")
except ollama.ResponseError as e:
    ok(e.status_code == 400 and "does not support thinking" in str(e), "tiny-gemma: think=True: 400, named", e)
r = cl.chat(model="tiny-qwen3", messages=ASK, think=False, options={"temperature": 0, "num_predict": 4})
ok(r.done, "tiny-qwen3: think=False answered")

# ---------------------------------------------------------------------------
# 5. bad input: 400 naming the field

BAD = [
    ("a tool name with a space", {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
     "tools[0].function.name"),
    ("two tools of one name", {"tools": [ADD, ADD]}, "tools[1].function.name"),
    ("parameters not an object", {"tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]},
     "tools[0].function.parameters"),
    ("tool_choice naming a missing function", {"tools": TOOLS, "tool_choice": {"type": "function",
                                                                               "function": {"name": "nope"}}},
     "not in tools"),
    ("tool_choice required without tools", {"tool_choice": "required"}, "no tools"),
    ("tools with a response format (generic)", {"tools": TOOLS, "tool_choice": "required",
                                                "response_format": {"type": "json_object"}}, "cannot be combined"),
    ("a malformed tool call in the history",
     {"messages": [ASK[0], {"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]},
     "messages[1].tool_calls[0]"),
]
for label, extra, needle in BAD:
    body = {"model": "tiny-gemma", "messages": ASK, "max_tokens": 4, **extra}
    st, got = post("/v1/chat/completions", body)
    msg = got["error"]["message"] if isinstance(got, dict) and isinstance(got.get("error"), dict) else str(got)
    ok(st == 400 and needle in msg, f"{label}: 400 naming it", f"{st} {msg}")
st, got = post("/api/chat", {"model": "tiny-gemma", "messages": ASK, "stream": False,
                             "tools": [{"type": "function", "function": {"name": ""}}]})
ok(st == 400 and "tools[0].function.name" in str(got), "ollama: an empty tool name: 400 naming it", got)

# ---------------------------------------------------------------------------
# 6. /tokenize and /detokenize (llama-server's helpers)

st, got = post("/tokenize", {"model": "tiny-llama", "content": "Hello world, 123"})
toks = got.get("tokens") if st == 200 else None
ok(isinstance(toks, list) and toks and all(isinstance(t, int) for t in toks), "/tokenize: ids", got)
st, got = post("/detokenize", {"model": "tiny-llama", "tokens": toks or []})
ok(st == 200 and got.get("content") == "Hello world, 123", "/detokenize: the text back", got)
st, got = post("/tokenize", {"model": "tiny-llama", "content": "Hi", "with_pieces": True, "add_special": True})
ok(st == 200 and got["tokens"][0]["piece"] == BOS and "".join(t["piece"] for t in got["tokens"][1:]) == "Hi",
   "/tokenize with_pieces, add_special: BOS then the pieces", got)
st, got = post("/detokenize", {"model": "tiny-llama", "tokens": [1 << 30]})
ok(st == 400 and "tokens[0]" in str(got), "/detokenize: an id outside the vocabulary: 400", got)
st, got = post("/tokenize", {"model": "../etc/passwd", "content": "x"})
ok(st in (400, 404), "/tokenize: a model name escaping the store: refused", got)

# ---------------------------------------------------------------------------
# 7. fill in the middle: [BOS] FIM_PRE prefix FIM_SUF suffix FIM_MID

def ids(text, special=False):
    st, r = post("/tokenize", {"model": "tiny-fim", "content": text, "parse_special": special})
    return r["tokens"]


PRE, SUF, MID = (ids(chr(i))[0] for i in (1, 2, 3))   # make_tiny_model.py --fim
st, r = post("/api/generate", {"model": "tiny-fim", "prompt": "def add(a, b):\n    ", "suffix": "\n    return c",
                               "stream": False, "options": {"temperature": 0, "num_predict": 3}})
want = [BOS_ID := ids(BOS, True)[0], PRE] + ids("def add(a, b):\n    ") + [SUF] + ids("\n    return c") + [MID]
ok(st == 200 and r["context"][:len(want)] == want, "ollama generate suffix: the prompt is [BOS] PRE prefix SUF suffix MID",
   (r.get("context") if isinstance(r, dict) else r, want))
oc2 = openai.OpenAI(base_url=URL + "/v1", api_key="none", max_retries=0, timeout=300)
c = oc2.completions.create(model="tiny-fim", prompt="x = ", suffix="\nprint(x)", max_tokens=3, temperature=0)
ok(c.usage.prompt_tokens == len(ids("x = ")) + len(ids("\nprint(x)")) + 4,
   "openai completions suffix: the FIM prompt's tokens", c.usage)
st, r = post("/api/generate", {"model": "tiny-gemma", "prompt": "a", "suffix": "b", "stream": False})
ok(st == 400 and "suffix" in str(r) and "fill-in-the-middle" in str(r),
   "suffix on a model without FIM tokens: 400 naming why", r)

# ---------------------------------------------------------------------------
# 8. OpenAI n: several choices of one request, streamed and not

r = oc.chat.completions.create(model="tiny-qwen25", messages=ASK, n=3, temperature=1, seed=11, max_tokens=6)
ok([c.index for c in r.choices] == [0, 1, 2] and len({c.message.content for c in r.choices}) > 1
   and r.usage.completion_tokens <= 18, "chat n=3: three choices, not all the same; usage counts them",
   ([c.message.content for c in r.choices], r.usage))
one = [oc.chat.completions.create(model="tiny-qwen25", messages=ASK, temperature=1, seed=11 + i, max_tokens=6)
       .choices[0].message.content for i in range(3)]
ok([c.message.content for c in r.choices] == one, "  choice i is the generation with seed + i", (one,))
texts, finish = {}, {}
for chunk in oc.chat.completions.create(model="tiny-qwen25", messages=ASK, n=3, temperature=1, seed=11,
                                        max_tokens=6, stream=True, stream_options={"include_usage": True}):
    for c in chunk.choices:
        texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
        finish[c.index] = c.finish_reason or finish.get(c.index)
ok([texts.get(i) for i in range(3)] == one and all(finish.get(i) for i in range(3)),
   "chat n=3 streamed: the same three texts, each with its finish_reason", (texts, finish))
r = oc.chat.completions.create(model="tiny-qwen25", messages=ASK, n=2, tools=TOOLS, tool_choice="required",
                               parallel_tool_calls=False, temperature=1, seed=3, max_tokens=1500)
ok(len(r.choices) == 2 and all(c.finish_reason == "tool_calls" and c.message.tool_calls for c in r.choices),
   "chat n=2 with a required tool: a call in each choice")
c = oc.completions.create(model="tiny-fim", prompt="Once", n=2, temperature=1, seed=5, max_tokens=4)
ok([x.index for x in c.choices] == [0, 1] and c.usage.completion_tokens >= 2, "completions n=2: two choices")

# ---------------------------------------------------------------------------
# 9. /api/show capabilities, as Ollama clients read them

for model, has, lacks in [("tiny-qwen3", {"completion", "tools", "thinking"}, {"insert", "embedding"}),
                          ("tiny-r1", {"tools", "thinking"}, set()),
                          ("tiny-gemma", {"completion", "tools"}, {"thinking", "insert"}),
                          ("tiny-fim", {"completion", "insert"}, {"thinking"})]:
    caps = set(cl.show(model).capabilities or [])
    ok(has <= caps and not (lacks & caps), f"{model}: capabilities {sorted(caps)}", (has, lacks))

done()
