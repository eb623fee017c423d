#!/usr/bin/env python3
"""Render every chat template of llama.cpp's corpus (models/templates/*.jinja,
from scripts/fetch-testdata.sh) with Python's jinja2, set up as Hugging Face
transformers sets it up for apply_chat_template, and with lamina's own Jinja
interpreter (tests/tok/jinja_tool), for a few conversations, and compare the
bytes.  When jinja2 raises, lamina must fail too.  A template lamina refuses
at load time (a construct outside its subset) is reported, not failed, and
listed at the end.

Environment: LAMINA_LLAMA_TESTDATA (the models directory; else
scripts/fetch-testdata.sh is asked), LAMINA_REQUIRE_CLIENTS=1 (fail instead of
skipping when jinja2 or the corpus is missing), LAMINA_TEST_BUILD (build dir).
Run by hand: tests/tok/jinja_corpus.py [-v] [TEMPLATE-SUBSTRING...]
"""
import copy
import datetime
import glob
import json
import os
import subprocess
import sys
import tempfile

REQUIRE = os.environ.get("LAMINA_REQUIRE_CLIENTS", "0") == "1"


def skip_or_fail(why):
    if REQUIRE:
        print("not ok 1 - %s" % why)
        print("1..1")
        sys.exit(1)
    print("1..0 # SKIP %s" % why)
    sys.exit(0)


try:
    import jinja2
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    skip_or_fail("python module 'jinja2' not installed")

# The fixed moment strftime_now() reports, on both sides.
NOW = datetime.datetime(2024, 7, 26, 14, 5, 9)


class Generation(jinja2.ext.Extension):
    """transformers' {% generation %} tag (its AssistantTracker), which only
    renders its body when no tracking is asked for."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation"), [], [], body).set_lineno(lineno)

    def _generation(self, caller):
        return caller()


def make_env():
    """The environment transformers' _compile_jinja_template builds."""
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City name, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                         "description": "Temperature unit"},
                "days": {"type": "integer", "description": "Forecast days"},
            },
            "required": ["location"],
        },
    },
}]

CONVERSATIONS = {
    "system": {"messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello! Can you say \"héllo\" in 日本語? <b>&</b>"},
    ]},
    "multi": {"messages": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "2 + 2 = 4."},
        {"role": "user", "content": "  And 3*3?\n"},
    ]},
    "tools": {"tools": TOOLS, "messages": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "call12345", "type": "function",
            "function": {"name": "get_weather",
                         "arguments": {"location": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_weather",
         "content": "{\"temperature\": 22, \"condition\": \"sunny\"}"},
        {"role": "assistant", "content": "It is 22 °C and sunny in Paris."},
        {"role": "user", "content": "Thanks!"},
    ]},
    # OpenAI's shape: arguments as a JSON string, no content
    "tools_str": {"tools": TOOLS, "messages": [
        {"role": "user", "content": "Weather in Oslo and Rome, in fahrenheit?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "abcDEF123", "type": "function",
             "function": {"name": "get_weather",
                          "arguments": "{\"location\": \"Oslo\", \"unit\": \"fahrenheit\"}"}},
            {"id": "xyz987XYZ", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"location\": \"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "abcDEF123", "content": "41"},
        {"role": "tool", "tool_call_id": "xyz987XYZ", "content": "{\"temperature\": 68.5}"},
    ]},
    "reasoning": {"messages": [
        {"role": "system", "content": "Think first.\n"},
        {"role": "user", "content": "Is 17 prime?"},
        {"role": "assistant", "reasoning_content": "17 has no divisors but 1 and 17.",
         "content": "<think>\nCheck divisors.\n</think>\n\nYes, 17 is prime."},
        {"role": "user", "content": "And 21?\t"},
    ]},
}


def contexts():
    for name, conv in CONVERSATIONS.items():
        for agp in (True, False):
            ctx = {"bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": agp,
                   "tools": None}
            ctx.update(conv)
            yield "%s/%s" % (name, "gen" if agp else "nogen"), ctx


def reference(env, source, ctx):
    """(True, text) or (False, error); source is text or a compiled template."""
    try:
        t = env.from_string(source) if isinstance(source, str) else source
        return True, t.render(**copy.deepcopy(ctx))
    except Exception as e:  # jinja2 and Python errors alike
        return False, "%s: %s" % (type(e).__name__, e)


def parse_batch(out, count):
    """jinja_tool --batch records: [(status, bytes)], or None if malformed."""
    res, i = [], 0
    for _ in range(count):
        j = out.find(b"\n", i)
        if j < 0:
            return None
        try:
            status, length = (int(x) for x in out[i:j].split())
        except ValueError:
            return None
        res.append((status, out[j + 1:j + 1 + length]))
        i = j + 1 + length
    return res if i == len(out) else None


def testdata():
    d = os.environ.get("LAMINA_LLAMA_TESTDATA", "")
    if d and os.path.isdir(d):
        return d
    srcdir = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(__file__), "..", "..")
    try:
        return subprocess.run([os.path.join(srcdir, "scripts", "fetch-testdata.sh")],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main():
    verbose = "-v" in sys.argv[1:]
    only = [a for a in sys.argv[1:] if a != "-v"]
    models = testdata()
    tdir = os.path.join(models, "templates") if models else ""
    files = sorted(glob.glob(os.path.join(tdir, "*.jinja"))) if tdir else []
    if not files:
        skip_or_fail("llama.cpp chat templates unavailable (scripts/fetch-testdata.sh)")
    if only:
        files = [f for f in files if any(o in os.path.basename(f) for o in only)]
    builddir = os.environ.get("LAMINA_TEST_BUILD", os.environ.get("top_builddir", "."))
    tool = os.path.join(builddir, "tests", "tok", "jinja_tool")
    if not os.access(tool, os.X_OK):
        print("not ok 1 - %s not built (set LAMINA_TEST_BUILD to the build directory)" % tool)
        print("1..1")
        return 1
    env = make_env()
    n = same = total = 0
    refused = []
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        ctxs = list(contexts())
        paths = []
        for k, (label, ctx) in enumerate(ctxs):
            paths.append(os.path.join(tmp, "ctx%d.json" % k))
            with open(paths[-1], "w", encoding="utf-8") as f:
                json.dump(ctx, f, ensure_ascii=False)
        for path in files:
            name = os.path.basename(path)[:-len(".jinja")]
            with open(path, encoding="utf-8") as f:
                source = f.read()
            try:
                source = env.from_string(source)   # compiled once for all conversations
            except Exception:  # noqa: BLE001 - reference() reports it per conversation
                pass
            p = subprocess.run([tool, "--now", NOW.strftime("%Y-%m-%dT%H:%M:%S"), "--batch", path]
                               + paths, capture_output=True)
            results = parse_batch(p.stdout, len(ctxs))
            if p.returncode != 0 or results is None:
                n += 1
                failed = True
                print("not ok %d - %s" % (n, name))
                print("#   jinja_tool failed (rc %d): %s" % (
                    p.returncode, p.stderr.decode("utf-8", "replace")[:2000]))
                continue
            bad = []
            refused_why = None
            for (label, ctx), (rc, data) in zip(ctxs, results):
                total += 1
                want_ok, want = reference(env, source, ctx)
                got = data.decode("utf-8", "replace")
                clean = rc == 0 or (got.startswith("template line ") and "Sanitizer" not in got)
                if want_ok and rc == 0 and data == want.encode("utf-8"):
                    same += 1
                elif not want_ok and rc in (1, 2) and clean:
                    same += 1
                    if verbose:
                        print("# %s %s: both fail: jinja2 %s | lamina %s" % (name, label, want, got))
                elif want_ok and rc == 2 and clean:
                    refused_why = got
                else:
                    bad.append((label, want_ok, want, rc, got))
            n += 1
            if refused_why is not None and not bad:
                refused.append((name, refused_why))
                print("ok %d - %s # SKIP refused: %s" % (n, name, refused_why))
                continue
            print("%sok %d - %s" % ("not " if bad else "", n, name))
            for label, want_ok, want, rc, got in bad[:3]:
                failed = True
                print("#   %s: jinja2 %s, lamina rc %d" % (
                    label, "renders" if want_ok else "fails (%s)" % want, rc))
                if want_ok and rc == 0:
                    i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                             min(len(got), len(want)))
                    print("#     first difference at %d: got %r want %r" % (
                        i, got[max(0, i - 40):i + 40], want[max(0, i - 40):i + 40]))
                else:
                    print("#     lamina: %s" % got[:300])
    print("# %d of %d template/conversation renders identical or failing alike" % (same, total))
    for name, why in refused:
        print("# refused: %s: %s" % (name, why))
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
