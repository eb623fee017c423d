#!/usr/bin/env python3
"""LangChain's langchain-ollama against `lamina serve` (tests/server/langchain.sh):
a small RAG index (OllamaEmbeddings + InMemoryVectorStore), structured
output (with_structured_output and a pydantic model) and tool binding
(bind_tools), on random-weight tiny models.  Prints TAP."""
import sys
from typing import List, Literal

from langchain_core.vectorstores import InMemoryVectorStore
from langchain_ollama import ChatOllama, OllamaEmbeddings
from pydantic import BaseModel, Field
from taplib import done, ok  # noqa: E402

URL = sys.argv[1]


DOCS = ["The cat sat on the mat.", "Paris is the capital of France.", "Water boils at 100 degrees.",
        "The robot wrote a poem about the sea.", "Seven is a prime number.", "Bread is made from flour."]

# 1. index and query: the same text embeds to the same vector, so each
#    document is its own nearest neighbour
emb = OllamaEmbeddings(model="tiny-gemma3", base_url=URL)
vecs = emb.embed_documents(DOCS)
ok(len(vecs) == len(DOCS) and len({len(v) for v in vecs}) == 1 and len(vecs[0]) > 0,
   f"OllamaEmbeddings.embed_documents: {len(vecs)} vectors of {len(vecs[0]) if vecs else 0}")
store = InMemoryVectorStore.from_texts(DOCS, emb)
hits = [store.similarity_search(d, k=2) for d in DOCS]
ok(all(h and h[0].page_content == d for h, d in zip(hits, DOCS)),
   "InMemoryVectorStore: every document is its own top hit", [[x.page_content for x in h] for h in hits])
scored = store.similarity_search_with_score("Paris is the capital of France.", k=3)
ok(len(scored) == 3 and abs(scored[0][1] - 1.0) < 1e-3 and scored[0][1] >= scored[1][1] >= scored[2][1],
   "similarity scores: 1 for the same text, then descending", scored)


# 2. structured output through format=<schema>
class City(BaseModel):
    name: str = Field(max_length=16)
    country: Literal["France", "Japan", "Peru"]
    population_millions: float
    districts: List[str] = Field(max_length=3)


for seed in (1, 2, 3):
    llm = ChatOllama(model="tiny-gemma3", base_url=URL, temperature=1, seed=seed, num_predict=1500)
    try:
        out = llm.with_structured_output(City).invoke("Describe Paris.")
        ok(isinstance(out, City), f"with_structured_output(City), seed {seed}: a City", out)
    except Exception as e:  # a parse or validation error in LangChain
        ok(False, f"with_structured_output(City), seed {seed}: a City", repr(e))


# 3. tools: the model either calls one (valid arguments) or answers
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: first
        b: second
    """
    return a + b


n_calls = 0
for seed in range(1, 7):   # tiny-long: tiny-gemma3 with room for the tools' description
    llm = ChatOllama(model="tiny-long", base_url=URL, temperature=1, seed=seed, num_predict=1500)
    msg = llm.bind_tools([add]).invoke("What is 2 + 3?")
    calls = msg.tool_calls
    good = all(c["name"] == "add" and set(c["args"]) == {"a", "b"} and
               all(isinstance(v, int) for v in c["args"].values()) for c in calls)
    n_calls += bool(calls)
    ok(good and (calls or isinstance(msg.content, str)),
       f"bind_tools([add]), seed {seed}: {'a valid call' if calls else 'an answer'}", msg)
ok(n_calls > 0, f"bind_tools: {n_calls} of 6 seeds called the tool")

done()
