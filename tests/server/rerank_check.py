#!/usr/bin/env python3
"""Reranking against `lamina serve` (tests/server/rerank.sh), with
llama.cpp's scores of the same model (tests/golden/tiny-rerank.json) as the
reference: every document's relevance_score within the peer's own spread
(default vs precise configuration) plus a margin, prompt tokens identical,
results ordered by score, top_n, return_documents, the aliases and the
errors.  Prints TAP."""
import json
import sys
from taplib import done, ok, poster  # noqa: E402

URL, GOLDEN = sys.argv[1], sys.argv[2]
post = poster(URL)
MODEL = "tiny-rerank"


gold = json.load(open(GOLDEN))
precise = {(c["query"], c["document"]): c for c in gold["precise"]["cases"]}
spread = max(abs(c["scores"][0] - precise[(c["query"], c["document"])]["scores"][0]) for c in gold["cases"])
tol = 0.002 + 2 * spread

# the prompt tokens: /tokenize of the recorded prompt, as llama-server tokenizes it
bad = []
for c in gold["cases"]:
    st, r = post("/tokenize", {"model": MODEL, "content": c["prompt"], "add_special": False})
    if st != 200 or r["tokens"] != c["ids"]:
        bad.append((c["document"][:30], st, str(r)[:200]))
ok(not bad, f"{len(gold['cases'])} rerank prompts tokenize to llama.cpp's ids", bad)

queries = []
for c in gold["cases"]:
    if c["query"] not in queries:
        queries.append(c["query"])
for q in queries:
    cases = [c for c in gold["cases"] if c["query"] == q]
    docs = [c["document"] for c in cases]
    st, r = post("/v1/rerank", {"model": MODEL, "query": q, "documents": docs})
    if not ok(st == 200 and len(r.get("results", [])) == len(docs), f"{q!r}: {len(docs)} documents scored", r):
        continue
    got = {e["index"]: e["relevance_score"] for e in r["results"]}
    diffs = [abs(got[i] - c["scores"][0]) for i, c in enumerate(cases)]
    ok(max(diffs) <= tol, f"{q!r}: scores within {tol:.4f} of llama.cpp's (max diff {max(diffs):.5f})",
       [(got[i], c["scores"][0]) for i, c in enumerate(cases)])
    scores = [e["relevance_score"] for e in r["results"]]
    ok(scores == sorted(scores, reverse=True), f"{q!r}: results by descending score")
    ok(r["usage"]["prompt_tokens"] == sum(c["n_tokens"] for c in cases) and r["object"] == "list"
       and r["model"] == MODEL, f"{q!r}: usage counts the prompts' tokens", r.get("usage"))
    # top_n and return_documents, with Jina's {"text": ...} documents, on the aliases
    for path in ("/rerank", "/v1/reranking", "/reranking"):
        st, r2 = post(path, {"model": MODEL, "query": q, "documents": [{"text": d} for d in docs], "top_n": 2,
                             "return_documents": True})
        ok(st == 200 and [e["index"] for e in r2["results"]] == [e["index"] for e in r["results"][:2]]
           and all(e["document"]["text"] == docs[e["index"]] for e in r2["results"]),
           f"{q!r} {path}: top_n 2 with the documents", r2)

# bad input: 400 naming the field or the reason
for label, body, needle in [
    ("no query", {"model": MODEL, "documents": ["a"]}, "query"),
    ("no documents", {"model": MODEL, "query": "q", "documents": []}, "documents"),
    ("a document that is a number", {"model": MODEL, "query": "q", "documents": ["a", 3]}, "documents[1]"),
    ("top_n 0", {"model": MODEL, "query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
    ("a model that is not a reranker", {"model": "tiny-gemma3", "query": "q", "documents": ["a"]}, "not a reranker"),
    ("a document longer than the context", {"model": MODEL, "query": "q", "documents": ["word " * 3000]},
     "documents[0]"),
]:
    st, r = post("/v1/rerank", body)
    ok(st == 400 and needle in str(r), f"{label}: 400 naming it", (st, r))
st, r = post("/api/embed", {"model": MODEL, "input": "x"})
ok(st == 400 and "reranker" in str(r), "/api/embed on a reranker: 400, says it is a reranker", r)
st, r = post("/v1/rerank", {"model": "nope", "query": "q", "documents": ["a"]})
ok(st == 404, "an unknown model: 404", r)

done()
