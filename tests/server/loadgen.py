#!/usr/bin/env python3
"""loadgen.py URL ROUNDS: many requests at once against `lamina serve`, as TAP.

Each round starts 40 requests together from threads: generate and chat
(Ollama), chat completions and completions (OpenAI), streamed and not,
through the ollama and openai clients and raw HTTP, plus bad ones
(malformed JSON, wrong types, unknown models) and clients that hang up
mid-stream.  Every request must end in a complete answer (a done object,
a finish_reason, [DONE]) or a clear error: a status from
{400, 404, 503} with a JSON error body (503 with Retry-After).  A hang-up
counts as expected.  After each round the server must still answer.
"""
import http.client
import json
import socket
import sys
import threading
import urllib.parse

import ollama
import openai

URL = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
U = urllib.parse.urlparse(URL)
n = 0
failed = 0


def ok(cond, desc, extra=None):
    global n, failed
    n += 1
    failed += not cond
    print(("ok" if cond else "not ok") + f" {n} - {desc}", flush=True)
    if not cond and extra:
        for line in str(extra).splitlines()[:20]:
            print(f"#   {line}", flush=True)


def raw(method, path, body, stream_lines=None):
    """(status, headers, body bytes); stream_lines: hang up after that many bytes-lines."""
    c = http.client.HTTPConnection(U.hostname, U.port, timeout=300)
    c.request(method, path, body, {"Content-Type": "application/json"})
    r = c.getresponse()
    if stream_lines is not None and r.status == 200:
        for _ in range(stream_lines):
            if not r.readline():
                break
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        return "hung up", None, b""
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def clear_error(status, headers, data):
    if status not in (400, 404, 503):
        return False
    try:
        j = json.loads(data)
    except ValueError:
        return False
    if "error" not in j:
        return False
    return status != 503 or int(headers.get("Retry-After", "0")) >= 1


def ndjson_complete(data):
    lines = [json.loads(l) for l in data.splitlines() if l.strip()]
    return bool(lines) and lines[-1].get("done") is True and "error" not in lines[-1]


def sse_complete(data):
    events = [l[6:] for l in data.decode().splitlines() if l.startswith("data: ")]
    return bool(events) and events[-1] == "[DONE]" and any(
        json.loads(e)["choices"] and json.loads(e)["choices"][0]["finish_reason"] for e in events[:-1])


def job(i):
    """One request; returns (kind, outcome) where outcome is "answer",
    "error", "hung up" or a description of what went wrong."""
    k = i % 12
    model = "tiny-gemma3" if i % 2 else "tiny-llama"
    opts = {"num_predict": 6 + i % 5, "seed": i}
    try:
        if k == 0:
            r = ollama.Client(host=URL).generate(model=model, prompt=f"Story {i}", options=opts)
            return "ollama generate", "answer" if r.done and r.done_reason in ("stop", "length") else repr(r)
        if k == 1:
            parts = list(ollama.Client(host=URL).chat(model="tiny-gemma3", messages=[{"role": "user", "content": f"Hi {i}"}],
                                                     stream=True, options=opts))
            return "ollama chat stream", "answer" if parts and parts[-1].done else repr(parts[-1:])
        if k == 2:
            c = openai.OpenAI(base_url=URL + "/v1", api_key="x", max_retries=0)
            r = c.chat.completions.create(model="tiny-gemma3", messages=[{"role": "user", "content": f"Hi {i}"}], max_tokens=7)
            return "openai chat", "answer" if r.choices[0].finish_reason in ("stop", "length") else repr(r)
        if k == 3:
            c = openai.OpenAI(base_url=URL + "/v1", api_key="x", max_retries=0)
            ch = list(c.completions.create(model=model, prompt=f"Once {i}", max_tokens=7, stream=True))
            return "openai completion stream", "answer" if ch and ch[-1].choices[0].finish_reason else repr(ch[-1:])
        if k == 4:
            st, h, d = raw("POST", "/api/generate", json.dumps({"model": model, "prompt": f"x{i}", "options": opts}))
            return "raw ndjson", "answer" if st == 200 and ndjson_complete(d) else ("error" if clear_error(st, h, d) else f"{st} {d[:200]!r}")
        if k == 5:
            st, h, d = raw("POST", "/v1/chat/completions", json.dumps({"model": "tiny-gemma3", "stream": True, "max_tokens": 6,
                                                                       "messages": [{"role": "user", "content": "x"}]}))
            return "raw sse", "answer" if st == 200 and sse_complete(d) else ("error" if clear_error(st, h, d) else f"{st} {d[:200]!r}")
        if k == 6:
            st, h, d = raw("POST", "/api/generate", '{"model": "tiny-gemma3", "prompt": ')
            return "malformed json", "error" if st == 400 and clear_error(st, h, d) else f"{st} {d[:200]!r}"
        if k == 7:
            st, h, d = raw("POST", "/api/chat", json.dumps({"model": "tiny-gemma3", "messages": [{"role": 1}]}))
            return "wrong type", "error" if st == 400 and clear_error(st, h, d) else f"{st} {d[:200]!r}"
        if k == 8:
            st, h, d = raw("POST", "/v1/completions", json.dumps({"model": f"missing-{i}", "prompt": "x"}))
            return "unknown model", "error" if st == 404 and clear_error(st, h, d) else f"{st} {d[:200]!r}"
        if k == 9:
            st, h, d = raw("POST", "/api/generate", json.dumps({"model": model, "prompt": "x", "options": {"num_predict": 400}}), 2)
            return "hang up", "hung up" if st == "hung up" else ("error" if clear_error(st, h, d) else f"{st} {d[:200]!r}")
        if k == 10:
            st, h, d = raw("POST", "/v1/chat/completions", json.dumps({"model": "tiny-gemma3", "stream": True, "max_tokens": 400,
                                                                       "messages": [{"role": "user", "content": "x"}]}), 3)
            return "sse hang up", "hung up" if st == "hung up" else ("error" if clear_error(st, h, d) else f"{st} {d[:200]!r}")
        st, h, d = raw("POST", "/api/generate", json.dumps({"model": model, "prompt": f"y{i}", "stream": False, "options": opts}))
        ok_ans = st == 200 and json.loads(d).get("done") is True
        return "raw whole", "answer" if ok_ans else ("error" if clear_error(st, h, d) else f"{st} {d[:200]!r}")
    except ollama.ResponseError as e:
        return "client", "error" if e.status_code in (400, 404, 503) and e.error else f"ResponseError {e.status_code} {e.error!r}"
    except openai.APIStatusError as e:
        return "client", "error" if e.status_code in (400, 404, 503) else f"APIStatusError {e.status_code} {e}"
    except Exception as e:
        return "client", f"{type(e).__name__}: {e}"


for rnd in range(ROUNDS):
    results = [None] * 40

    def run(i):
        results[i] = job(rnd * 1000 + i)
    th = [threading.Thread(target=run, args=(i,)) for i in range(40)]
    for t in th:
        t.start()
    for t in th:
        t.join(600)
    bad = [(i, r) for i, r in enumerate(results) if r is None or r[1] not in ("answer", "error", "hung up")]
    answers = sum(1 for r in results if r and r[1] == "answer")
    errors = sum(1 for r in results if r and r[1] == "error")
    ok(not bad, f"round {rnd + 1}: every request ended in an answer, a clear error or a hang-up "
                f"({answers} answers, {errors} errors)", "\n".join(f"{i}: {r}" for i, r in bad))
    ok(answers >= 1, f"round {rnd + 1}: requests were answered ({answers})")
    st, _, d = raw("GET", "/", None)
    ok(st == 200, f"round {rnd + 1}: the server still answers")
print(f"1..{n}")
sys.exit(1 if failed else 0)
