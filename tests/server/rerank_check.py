#!/usr/bin/env python3
"""Reranking against `lamina serve` (tests/server/rerank.sh and
rerank_bert.sh), with llama.cpp's scores of the same model as the
reference: every document's relevance_score within the peer's own spread
(default vs precise configuration) plus a margin, prompt tokens identical,
results ordered by score (as llama.cpp's scores order them), top_n,
return_documents, the aliases and the errors.  Prints TAP.

  rerank_check.py URL GOLDEN MODEL MARGIN

GOLDEN: tests/golden/tiny-rerank.json (Qwen3: the file's rerank prompt,
recorded per case as "prompt") or tiny-bert-rerank.json (a BERT
cross-encoder: no template, llama-server frames query and document
itself).  MARGIN: the absolute part of the tolerance (the scores' scale
differs: probabilities for Qwen3, raw logits for BERT)."""
import json
import sys
from taplib import done, ok, poster  # noqa: E402

URL, GOLDEN, MODEL, MARGIN = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
post = poster(URL)

gold = json.load(open(GOLDEN))
precise = {(c["query"], c["document"]): c for c in gold["precise"]["cases"]}
spread = max(abs(c["scores"][0] - precise[(c["query"], c["document"])]["scores"][0]) for c in gold["cases"])
tol = MARGIN + 2 * spread
templated = gold.get("template") is not None


def tokens(text, special):
    st, r = post("/tokenize", {"model": MODEL, "content": text, "add_special": special})
    return r["tokens"] if st == 200 else None


# the prompt tokens: /tokenize of the recorded prompt, as llama-server
# tokenizes it; without a template the two texts, each without specials,
# framed by the recorded special tokens ([CLS] q [SEP] d [SEP] for BERT)
bad = []
for c in gold["cases"]:
    if templated:
        got = tokens(c["prompt"], False)
    else:
        q, d = tokens(c["query"], False), tokens(c["document"], False)
        ids = c["ids"]
        got = None if q is None or d is None else ids[:1] + q + ids[len(q) + 1:len(ids) - len(d) - 1] + d + ids[-1:]
    if got != c["ids"]:
        bad.append((c["document"][:30], str(got)[:200]))
ok(not bad, f"{len(gold['cases'])} rerank inputs tokenize to llama.cpp's ids", bad)

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
    ok(max(diffs) <= tol, f"{q!r}: scores within {tol:.5f} of llama.cpp's (max diff {max(diffs):.6f})",
       [(got[i], c["scores"][0]) for i, c in enumerate(cases)])
    scores = [e["relevance_score"] for e in r["results"]]
    ok(scores == sorted(scores, reverse=True), f"{q!r}: results by descending score")
    # the order llama.cpp's scores give, where they are further apart than the tolerance
    ref = {i: c["scores"][0] for i, c in enumerate(cases)}
    order = [e["index"] for e in r["results"]]
    wrong = [(a, b) for k, a in enumerate(order) for b in order[k + 1:] if ref[b] - ref[a] > 2 * tol]
    ok(not wrong, f"{q!r}: the documents in llama.cpp's order", (order, ref))
    ok(r["usage"]["prompt_tokens"] == sum(c["n_tokens"] for c in cases) and r["object"] == "list"
       and r["model"] == MODEL, f"{q!r}: usage counts the prompts' tokens", r.get("usage"))
    # one document alone: its own token count (the framing of one pair)
    st, r1 = post("/v1/rerank", {"model": MODEL, "query": q, "documents": [docs[0]]})
    ok(st == 200 and r1["usage"]["prompt_tokens"] == cases[0]["n_tokens"]
       and abs(r1["results"][0]["relevance_score"] - cases[0]["scores"][0]) <= tol,
       f"{q!r}: one document alone: llama.cpp's token count and score", r1)
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
    ("a document longer than the context", {"model": MODEL, "query": "q", "documents": ["ok", "word " * 3000]},
     "documents[1]"),
]:
    st, r = post("/v1/rerank", body)
    ok(st == 400 and needle in str(r), f"{label}: 400 naming it", (st, r))
st, r = post("/api/embed", {"model": MODEL, "input": "x"})
ok(st == 400 and "reranker" in str(r), "/api/embed on a reranker: 400, says it is a reranker", r)
st, r = post("/v1/rerank", {"model": "nope", "query": "q", "documents": ["a"]})
ok(st == 404, "an unknown model: 404", r)

done()
