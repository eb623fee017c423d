#!/usr/bin/env python3
"""pyclients.py URL [--key KEY] [--model NAME] [--chat-model NAME] [--quick]:
`lamina serve` through the real `ollama` and `openai` Python clients, as
TAP.  Without --key the server must be open; with --key it must require
that key (missing and wrong keys are refused with 401, the right one
works).  --quick: only the main calls (used with the real model).
"""
import argparse
import sys
import threading

import ollama
import openai

n = 0
failed = 0


def ok(cond, desc, extra=None):
    global n, failed
    n += 1
    if not cond:
        failed += 1
    print(("ok" if cond else "not ok") + f" {n} - {desc}", flush=True)
    if not cond and extra is not None:
        for line in str(extra).splitlines()[:8]:
            print(f"#   {line}", flush=True)


def attempt(desc, fn):
    """Run fn; ok when it returns a true value without raising."""
    try:
        r = fn()
        ok(bool(r), desc, None if r else f"returned {r!r}")
        return r
    except Exception as e:  # the failure is the test result
        ok(False, desc, f"{type(e).__name__}: {e}")
        return None


def raises(desc, fn, exc, check=lambda e: True):
    try:
        fn()
    except exc as e:
        ok(check(e), desc, f"{type(e).__name__}: {e}")
        return
    except Exception as e:
        ok(False, desc, f"raised {type(e).__name__}: {e} instead of {exc.__name__}")
        return
    ok(False, desc, "no exception")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--key")
    ap.add_argument("--model", default="tiny-gemma3")
    ap.add_argument("--chat-model", default=None)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    model = a.model
    chat_model = a.chat_model or model
    headers = {"Authorization": f"Bearer {a.key}"} if a.key else None
    oc = ollama.Client(host=a.url, headers=headers, timeout=600)
    ai = openai.OpenAI(base_url=a.url + "/v1", api_key=a.key or "unused", timeout=600, max_retries=0)

    if a.key:
        raises("ollama without the key: 401", lambda: ollama.Client(host=a.url).list(), ollama.ResponseError,
               lambda e: e.status_code == 401)
        raises("ollama with a wrong key: 401",
               lambda: ollama.Client(host=a.url, headers={"Authorization": "Bearer wrong"}).generate(model=model, prompt="x"),
               ollama.ResponseError, lambda e: e.status_code == 401)
        raises("openai with a wrong key: AuthenticationError",
               lambda: openai.OpenAI(base_url=a.url + "/v1", api_key="wrong", max_retries=0).models.list(),
               openai.AuthenticationError, lambda e: e.status_code == 401)

    # ---- ollama ----
    tags = attempt("ollama: list", lambda: oc.list())
    if tags is not None:
        ok(any(m.model == model for m in tags.models), f"ollama: list names {model}", [m.model for m in tags.models])
    r = attempt("ollama: generate", lambda: oc.generate(model=model, prompt="Why is the sky blue?",
                                                        options={"num_predict": 12, "temperature": 0}))
    if r is not None:
        ok(r.done and r.done_reason in ("stop", "length") and isinstance(r.response, str), "ollama: generate answer complete", r)
        ok(r.eval_count and r.eval_count <= 12 and r.prompt_eval_count > 0 and r.total_duration > 0 and
           r.eval_duration > 0 and r.load_duration is not None, "ollama: generate counts and durations", r)
    parts = attempt("ollama: generate, streamed", lambda: list(oc.generate(
        model=model, prompt="Why is the sky blue?", stream=True, options={"num_predict": 12, "temperature": 0})))
    if parts:
        ok(parts[-1].done and not any(p.done for p in parts[:-1]), "ollama: stream ends with one done part", parts[-1])
        if r is not None:
            ok("".join(p.response for p in parts) == r.response, "ollama: streamed text = whole text (greedy)",
               f"{''.join(p.response for p in parts)!r} vs {r.response!r}")
    c = attempt("ollama: chat", lambda: oc.chat(model=chat_model, messages=[
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}],
        options={"num_predict": 10, "temperature": 0}))
    if c is not None:
        ok(c.message.role == "assistant" and isinstance(c.message.content, str) and c.done, "ollama: chat message", c)
    cs = attempt("ollama: chat, streamed", lambda: list(oc.chat(model=chat_model, messages=[
        {"role": "user", "content": "Say hello."}], stream=True, options={"num_predict": 10, "temperature": 0})))
    if cs:
        ok(cs[-1].done and cs[-1].eval_count is not None and cs[-1].prompt_eval_count > 0,
           "ollama: chat stream done with counts", cs[-1])
    ps = attempt("ollama: ps", lambda: oc.ps())
    if ps is not None:
        m = [x for x in ps.models if x.model == model]
        ok(m and m[0].size > 0 and m[0].size_vram is not None and m[0].expires_at is not None,
           "ollama: ps shows the loaded model with its size", ps)
    if not a.quick:
        sh = attempt("ollama: show", lambda: oc.show(model))
        if sh is not None:
            ok(sh.details.format == "gguf" and sh.modelinfo.get("general.architecture"), "ollama: show details", sh.details)
        attempt("ollama: ':latest' names the same model",
                lambda: oc.generate(model=model + ":latest", prompt="Hi", options={"num_predict": 2}).done)
        raises("ollama: unknown model is ResponseError 404", lambda: oc.generate(model="no-such-model", prompt="x"),
               ollama.ResponseError, lambda e: e.status_code == 404 and "not found" in e.error)
        raises("ollama: bad option is ResponseError 400",
               lambda: oc.generate(model=model, prompt="x", options={"temperature": "hot"}),
               ollama.ResponseError, lambda e: e.status_code == 400 and "temperature" in e.error)
        raises("ollama: unknown model while streaming raises too",
               lambda: list(oc.chat(model="no-such-model", messages=[{"role": "user", "content": "x"}], stream=True)),
               ollama.ResponseError, lambda e: e.status_code == 404)
        # several clients at once
        results = []

        def worker(i):
            try:
                results.append(oc.generate(model=model, prompt=f"Count to {i}", options={"num_predict": 8, "seed": i}))
            except Exception as e:
                results.append(e)
        th = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in th:
            t.start()
        for t in th:
            t.join()
        ok(len(results) == 4 and all(isinstance(x, ollama.GenerateResponse) and x.done for x in results),
           "ollama: four concurrent generations all complete", results)

    # ---- openai ----
    ml = attempt("openai: models.list", lambda: ai.models.list())
    if ml is not None:
        ok(model in [m.id for m in ml.data], f"openai: models lists {model}")
    cc = attempt("openai: chat.completions", lambda: ai.chat.completions.create(
        model=chat_model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=10, temperature=0))
    if cc is not None:
        ch = cc.choices[0]
        ok(ch.message.role == "assistant" and ch.finish_reason in ("stop", "length") and
           cc.usage.completion_tokens <= 10 and cc.usage.total_tokens == cc.usage.prompt_tokens + cc.usage.completion_tokens,
           "openai: chat answer, finish_reason and usage", cc)
    st = attempt("openai: chat.completions, streamed", lambda: list(ai.chat.completions.create(
        model=chat_model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=10, temperature=0,
        stream=True, stream_options={"include_usage": True})))
    if st:
        fin = [x for x in st if x.choices and x.choices[0].finish_reason]
        ok(len(fin) == 1 and st[-1].usage is not None and st[-1].usage.prompt_tokens >= 1,
           "openai: stream has one finish_reason and a usage chunk", st[-3:])
        if cc is not None:
            text = "".join(x.choices[0].delta.content or "" for x in st if x.choices)
            ok(text == cc.choices[0].message.content, "openai: streamed text = whole text (greedy)",
               f"{text!r} vs {cc.choices[0].message.content!r}")
    co = attempt("openai: completions", lambda: ai.completions.create(model=model, prompt="Once upon a time", max_tokens=6))
    if co is not None:
        ok(isinstance(co.choices[0].text, str) and co.usage.completion_tokens <= 6, "openai: completion text and usage", co)
    cst = attempt("openai: completions, streamed", lambda: list(ai.completions.create(
        model=model, prompt="Once upon a time", max_tokens=6, stream=True)))
    if cst:
        ok(cst[-1].choices[0].finish_reason in ("stop", "length"), "openai: completion stream finishes", cst[-1])
    if not a.quick:
        raises("openai: unknown model is NotFoundError", lambda: ai.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]), openai.NotFoundError)
        raises("openai: bad request is BadRequestError", lambda: ai.chat.completions.create(
            model=chat_model, messages=[{"role": "user", "content": "x"}], n=17), openai.BadRequestError,
            lambda e: "from 1 to 16" in str(e))
        # embeddings are served (tests/server/embed.sh checks them in depth)
        attempt("openai: embeddings.create",
                lambda: len(ai.embeddings.create(model=model, input="x").data[0].embedding) > 0)
        attempt("openai: models.retrieve", lambda: ai.models.retrieve(model).id == model)

    print(f"1..{n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
