#!/usr/bin/env python3
"""logprobs against `lamina serve` (tests/server/logprobs.sh), with
llama.cpp's logits of the same model (a golden file) as the reference:
greedy tokens are the peer's, the top alternatives after each prompt are
the peer's most likely tokens, and logprob differences equal the peer's
logit differences within its spread.  Both APIs, streamed and not.
Prints TAP."""
import json
import math
import sys

import ollama
import openai
from taplib import done, ok, poster  # noqa: E402

URL, GOLDEN = sys.argv[1], sys.argv[2]
post = poster(URL)
MODEL = "tiny-golden"


gold = json.load(open(GOLDEN))
N_GEN, TOP = 4, 8
for p in gold["prompts"]:
    tol = 0.002 + 2 * p["peer_spread"]["max"]
    # up to where the peer's own two configurations agree (a near tie after that)
    div = p["peer_spread"]["greedy_diverges_at"]
    want_ids = p["greedy_ids"][:N_GEN if div < 0 else min(N_GEN, div)]
    st, r = post("/api/generate", {"model": MODEL, "prompt": p["text"], "raw": True, "stream": False,
                                   "logprobs": True, "top_logprobs": TOP,
                                   "options": {"temperature": 0, "repeat_penalty": 1, "num_predict": N_GEN}})
    if not ok(st == 200 and len(r.get("logprobs", [])) == r.get("eval_count"),
              f"{p['text'][:24]!r}: one logprob entry per generated token", r):
        continue
    lps = r["logprobs"]
    n = min(len(lps), len(want_ids))
    ok([e["id"] for e in lps[:n]] == want_ids[:n] and n > 0,
       f"{p['text'][:24]!r}: greedy tokens are llama.cpp's", ([e["id"] for e in lps], want_ids))
    bad = [e for e in lps if not e["top_logprobs"] or e["id"] != e["top_logprobs"][0]["id"]
           or abs(e["logprob"] - e["top_logprobs"][0]["logprob"]) > 1e-6 or e["logprob"] > 0
           or sum(math.exp(a["logprob"]) for a in e["top_logprobs"]) > 1 + 1e-5
           or len(e["top_logprobs"]) != TOP]
    ok(not bad, f"{p['text'][:24]!r}: the draw is the first alternative, logprobs <= 0, sum p <= 1", bad[:1])
    # the alternatives after the prompt: the peer's top, same differences
    full = dict(p["positions"][-1]["top"])
    ref = p["positions"][-1]["top"][:TOP]
    got = lps[0]["top_logprobs"]
    # the same tokens in the same order, except neighbours the peer's own spread cannot tell apart
    rank_ok = all(g["id"] == r_[0] or abs(r_[1] - full.get(g["id"], -1e9)) <= tol for g, r_ in zip(got, ref))
    diffs = [abs((g["logprob"] - got[0]["logprob"]) - (full[g["id"]] - ref[0][1])) for g in got if g["id"] in full]
    ok(rank_ok and len(diffs) >= TOP - 1 and max(diffs) <= tol,
       f"{p['text'][:24]!r}: top {TOP} after the prompt are llama.cpp's, differences within {tol:.3f}",
       (got, ref, diffs))

# the same through the clients, streamed and not
P = gold["prompts"][0]["text"]
cl = ollama.Client(host=URL, timeout=300)
whole = cl.generate(model=MODEL, prompt=P, raw=True, logprobs=True, top_logprobs=3,
                    options={"temperature": 0, "repeat_penalty": 1, "num_predict": 6})
parts = list(cl.generate(model=MODEL, prompt=P, raw=True, logprobs=True, top_logprobs=3, stream=True,
                         options={"temperature": 0, "repeat_penalty": 1, "num_predict": 6}))
streamed = [e for x in parts for e in (x.logprobs or [])]
ok(whole.logprobs and [e.token for e in streamed] == [e.token for e in whole.logprobs]
   and "".join(e.token for e in whole.logprobs) == whole.response,
   "ollama client: streamed entries are the whole reply's, and their tokens spell the response",
   (whole.logprobs, streamed))
oc = openai.OpenAI(base_url=URL + "/v1", api_key="none", max_retries=0, timeout=300)
c = oc.completions.create(model=MODEL, prompt=P, max_tokens=5, temperature=0, logprobs=3)
lp = c.choices[0].logprobs
ok(lp and len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == c.usage.completion_tokens
   and "".join(lp.tokens) == c.choices[0].text and all(len(t) <= 3 for t in lp.top_logprobs),
   "openai completions logprobs=3: tokens, token_logprobs, top_logprobs, text_offset", lp)
st, _ = post("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                      "top_logprobs": 2})
ok(st == 400, "top_logprobs without logprobs: 400")
st, _ = post("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                      "logprobs": True, "top_logprobs": 21})
ok(st == 400, "top_logprobs 21: 400")

done()
