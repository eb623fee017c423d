#!/usr/bin/env python3
"""make_seeds.py - write the committed seed corpora of tests/fuzz/ that are
not taken from a test program: tokenizer, tokload, grammar, ini, request,
manifest.  (gguf, jinja and reply were seeded from `test_gguf`,
`test_jinja` and `test_reply --write-seeds DIR`, then reduced with
libFuzzer's -merge=1.)  Deterministic: rerunning rewrites the same files.

    tests/fuzz/make_seeds.py [CORPUS_DIR]     (default: next to this file)

Needs the gguf Python package (setup.sh installs it into .venv) for the
tokload seeds.
"""
import json
import os
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")


def put(name, n, data):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-%02d" % n), "wb") as f:
        f.write(data)


# ---- tokenizer: option byte (vocabulary in bits 0-4, flags in 5-6), text --
TEXTS = [
    "hello world", "Hello, World! 123 4567", "the  theory\n\nin  two", "<start_of_turn>user\nhi<end_of_turn>",
    "<|begin_of_text|><|start_header_id|>x<|eot_id|>", "caf\u00e9 na\u00efve \u4e2d\u6587 \U0001F600",
    "it's we'll they'RE", "\t\r\n  \n", "\xff\xfe invalid \x80", "[CLS] hello [SEP] ##llo",
    "a\u2581b \u2581\u2581", "<think>x</think>", "1234567890 3.14159", "\u0301\u0300e\u0301",
]


def tokenizer_seeds():
    n = 0
    for i, t in enumerate(TEXTS):
        for v in (0, 1, 2, 3, 4, 5, 6, 10, 13):
            if (i + v) % 4:
                continue
            flags = (i % 4) << 5
            raw = t.encode("latin-1") if "\xff" in t else t.encode()
            put("tokenizer", n, bytes([v | flags]) + raw)
            n += 1
    # the unigram vocabularies (14: with a charsmap, 15: without)
    for i, t in enumerate(TEXTS):
        raw = t.encode("latin-1") if "\xff" in t else t.encode()
        put("tokenizer", n, bytes([(14 + i % 2) | (i % 4) << 5]) + raw)
        n += 1


# ---- tokload: GGUF bytes, text, u16 text length ---------------------------
def gpt2_bytes():
    cps, extra = [], 0
    for x in range(256):
        printable = ord("!") <= x <= ord("~") or 0xA1 <= x <= 0xAC or x >= 0xAE
        cps.append(chr(x) if printable else chr(256 + extra))
        if not printable:
            extra += 1
    return cps


def charsmap(rules):
    """A SentencePiece precompiled charsmap for {from: to} byte strings: the
    trie size, a double array giving every trie state a 256-unit block of
    its own (a child of state s by byte c at unit s ^ c: label c, bit 8 when
    a rule ends there, BASE in bits 10..30 leading to the child's state,
    whose unit 0 holds the string's offset with bit 31 set), then the
    NUL-terminated replacement strings."""
    states = {b"": 1}          # prefix -> block (block 0 holds the root's pointer)
    for k in sorted(rules):
        for i in range(1, len(k) + 1):
            states.setdefault(k[:i], len(states) + 1)
    units = [0] * (256 * (len(states) + 1))
    units[0] = (256 * states[b""]) << 10
    strings = b""
    for prefix, block in states.items():
        if not prefix:
            continue
        parent, c = 256 * states[prefix[:-1]], prefix[-1]
        p, child = parent ^ c, 256 * block
        leaf = prefix in rules
        units[p] = ((p ^ child) << 10) | (0x100 if leaf else 0) | c
        if leaf:
            units[child] = 0x80000000 | len(strings)
            strings += rules[prefix] + b"\0"
    return struct.pack("<I", 4 * len(units)) + struct.pack("<%dI" % len(units), *units) + strings


def gguf_tokenizer(model, pre=None):
    import gguf
    fd, path = tempfile.mkstemp(suffix=".gguf")
    os.close(fd)
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model(model)
    if pre:
        w.add_tokenizer_pre(pre)
    merges = []
    if model == "llama":
        toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + \
               ["\u2581", "\u2581a", "ab", "a", "b", "c", "\u2581the", "\n\n"]
        types = [2, 3, 3] + [6] * 256 + [1] * 7 + [4]
        w.add_token_scores([0.0] * 259 + [-1.0, -0.5, -1.5, -2.0, -2.0, -2.0, -0.1, 0.0])
        w.add_add_space_prefix(True)
    elif model == "t5":
        toks = ["<pad>", "</s>", "<unk>", "\u2581", "\u2581a", "a", "b", "ab", "f", "i", "fi",
                "\u2581the", "<url>", "\u00e9"]
        types = [3, 3, 2] + [1] * 9 + [4, 1]
        w.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -3.0, -2.5, -4.0, -4.0, -3.5, -1.0, 0.0,
                            -5.0])
        w.add_add_space_prefix(True)
        w.add_remove_extra_whitespaces(True)
        w.add_precompiled_charsmap(charsmap({"\uff21".encode(): b"a", "\ufb01".encode(): b"fi",
                                             b"\t": b" ", b"Ab": b"ab", "e\u0301".encode(): "\u00e9".encode()}))
    elif model == "bert":
        toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + \
               ["##" + chr(c) for c in range(ord("a"), ord("e"))] + ["hello", "."]
        types = [3, 2, 3, 3] + [1] * (len(toks) - 4)
        w.add_sep_token_id(3)
    else:
        byte = gpt2_bytes()
        if model == "gemma4":
            toks = ["<0x%02X>" % b for b in range(256)] + ["\u2581", "h", "e", "he", "\n"]
            types = [6] * 256 + [1] * 5
            merges = ["h e"]
        else:
            toks = byte[:] + ["he", "ll", "hell", "\u0120w"]
            types = [1] * len(toks)
            merges = ["h e", "l l", "he ll", "\u0120 w"]
        toks += ["<|begin_of_text|>", "<|eot_id|>"]
        types += [3, 3]
        w.add_token_merges(merges)
        w.add_eot_token_id(len(toks) - 1)
    w.add_token_list(toks)
    w.add_token_types(types)
    if model == "t5":
        w.add_unk_token_id(2)
    w.add_bos_token_id(1 if model != "gpt2" and model != "gemma4" else len(toks) - 2)
    w.add_eos_token_id(2 if model in ("llama", "bert") else 1 if model == "t5" else len(toks) - 1)
    w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def tokload_seeds():
    n = 0
    for model, pre in (("llama", None), ("bert", None), ("gpt2", "llama-bpe"), ("gpt2", "qwen2"),
                       ("gpt2", "gpt-2"), ("gpt2", "deepseek-llm"), ("gemma4", None), ("gpt2", "default"),
                       ("t5", None)):
        g = gguf_tokenizer(model, pre)
        text = TEXTS[n % len(TEXTS)].encode("latin-1" if n % len(TEXTS) == 8 else "utf-8")
        if model == "t5":   # the charsmap's rules, a user-defined token, runs of spaces
            text = "\uff21b \ufb01ne\tcafe\u0301  <url> Abba <ur \xff".encode()
        put("tokload", n, g + text + struct.pack("<H", len(text)))
        n += 1


# ---- grammar: schema, NUL, mode, output -----------------------------------
SCHEMAS = [
    ("", '{"a": [1, 2.5e3, true, null, "x\\u00e9"]}'),
    ('{"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, '
     '"age": {"type": "integer"}}, "required": ["name"]}', '{"name": "bob", "age": 42}'),
    ('{"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3}', "[1, -2.5, 3e+2]"),
    ('{"enum": ["red", "green", 3, null]}', '"green"'),
    ('{"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/$defs/n"}}], '
     '"$defs": {"n": {"type": "integer"}}}', "[1,2,3]"),
    ('{"type": "object", "additionalProperties": {"type": "boolean"}}', '{"x": true,\n  "y": false}'),
    ('{"const": {"k": [1, {"z": null}]}}', '{"k": [1, {"z": null}]}'),
    ('{"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}', '["a", 1]'),
    ('{"type": ["string", "null"], "format": "date"}', "null"),
    ('{"$ref": "#", "type": "object"}', "{}"),
    ('{"allOf": [{"type": "object", "properties": {"a": {"type": "object", "properties": '
     '{"b": {"type": "array"}}}}}]}', '{"a": {"b": [[], {}]}}'),
    ('{"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 2}], "nullable": true}', '"ab"'),
    ('{"type": "object", "patternProperties": {}}', "{}"),
]


# GBNF grammars (mode bit 1), with an output each
GBNFS = [
    ('root ::= expr\nexpr ::= term ([-+*/] term)*\nterm ::= [0-9]+ | "(" expr ")"\n', "12*(3+4)-5"),
    ('root ::= item{1,3}\nitem ::= "- " [^\\n\\x0b\\u2028]{1,10} "\\n"  # a list\n', "- a\n- \u00e9t\u00e9\n"),
    ('root ::= "1. " m " " m "\\n"\nm ::= ([a-h] "x")? [a-h] [1-8] | [NBKQR] [a-h] [1-8] | "O-O" "-O"?\n',
     "1. e4 O-O-O\n"),
    ('root ::= "{" (s ":" v ("," s ":" v)*)? "}"\nv ::= s | [0-9]+ | root\ns ::= "\\"" [a-z\\u00e0-\\u00ff]* "\\""\n',
     '{"a":1,"b":{"c":"\u00e0"}}'),
    ('root ::= "(" root ")" | . .?\n', "((x\u65e5))"),
    ('root ::= x\nx ::= x "a" | "a"\n', "aa"),
]


def grammar_seeds():
    n = 0
    for schema, output in SCHEMAS:
        for mode in (0, 1):
            put("grammar", n, schema.encode() + b"\0" + bytes([mode]) + output.encode())
            n += 1
    for gbnf, output in GBNFS:
        for mode in (2, 3):
            put("grammar", n, gbnf.encode() + b"\0" + bytes([mode]) + output.encode())
            n += 1


# ---- ini ------------------------------------------------------------------
INIS = [
    "[plugins]\npath = /usr/lib/lamina/plugins, /opt/lamina\nprobe_timeout_ms = 1500\ncache = no\n",
    "[scheduler]\nbackends = rocm, vulkan, cpu\ngpu_layers = all\nreserve_mib = 512\n",
    "[model]\ndefault = gemma3-270m\ndirs = /srv/models\nn_ctx = 2048\nthreads = 4\n"
    "ollama_stores = /var/lib/ollama/models\n",
    "[generate]\ntemperature = 0.7\ntop_k = 40\ntop_p = 0.9\nmin_p = 0.05\nrepeat_penalty = 1.1\n"
    "repeat_last_n = 64\nseed = -1\nmax_tokens = 256\n",
    "[backend.vulkan]\nenabled = true\nthreads = 2\ndevice = 0\nmin_version = 1.3\nmax_version = 2.0\n"
    "deny_versions = 1.3.250, 1.3.251\nallow_arch = gfx1030\nenv.RADV_DEBUG = nocompute\n",
    "[server]\nlisten = 0.0.0.0:11434\nparallel = 2\nqueue = 8\nn_ctx = 4096\nprompt_chunk = 64\n"
    "request_timeout = 30\nkeep_alive = -1\nmemory_mib = 2048\nmax_models = 2\napi_key = secret\n"
    "allow_unauthenticated = false\ncors_origins = *\nmax_body_kib = 64\nmax_json_depth = 8\n"
    "max_connections = 4\nallowed_hosts = example.com\ndrain_timeout = 5\n",
    "; comment\n# other\n\n[unknown]\nkey = value\n",
    "[scheduler]\nbackends = auto\n[backend.cpu]\nenabled = off\n[backend.cpu]\nthreads = 9\n",
    "key-before-section = 1\n",
    "[model]\nn_ctx = 99999999999999999999\n",
    "[server]\nlisten = [::1]:8080\n  continued line\n",
]


def ini_seeds():
    for n, s in enumerate(INIS):
        put("ini", n, s)
    with open(os.path.join(HERE, "..", "..", "conf", "rocm-vulkan-amd.ini"), "rb") as f:
        put("ini", len(INIS), f.read())


# ---- request: endpoint byte, body -----------------------------------------
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "w",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
REQUESTS = [
    (0, {"model": "m", "prompt": "hi", "system": "s", "suffix": "", "raw": False, "stream": False,
         "options": {"temperature": 0.5, "top_k": 10, "num_predict": 5, "stop": ["\n", "x"], "seed": 3},
         "format": "json", "keep_alive": "5m", "context": [1, 2, 3], "think": "low"}),
    (0, {"model": "m", "prompt": "p", "format": {"type": "object", "properties": {"a": {"type": "integer"}}},
         "logprobs": True, "top_logprobs": 3, "images": []}),
    (1, {"model": "m", "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
         {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather",
          "arguments": {"city": "Paris"}}}]}, {"role": "tool", "content": "20C", "tool_name": "get_weather"}],
         "tools": TOOLS, "think": True, "options": {"num_ctx": 512, "repeat_last_n": -1}}),
    (2, {"model": "m", "verbose": True}),
    (3, {"model": "m", "input": ["a", "b"], "truncate": True, "dimensions": 4, "keep_alive": 0}),
    (4, {"model": "m", "prompt": "text"}),
    (5, {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
         {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
         {"role": "tool", "tool_call_id": "c1", "content": "cold"}], "tools": TOOLS, "tool_choice": "auto",
         "parallel_tool_calls": False, "max_tokens": 16, "temperature": 1.0, "top_p": 0.9, "n": 2,
         "stream": True, "stream_options": {"include_usage": True}, "stop": "END", "seed": 7,
         "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string"}}},
         "logprobs": True, "top_logprobs": 2, "reasoning_effort": "high", "chat_template_kwargs": {"a": 1}}),
    (5, {"model": "m", "messages": [{"role": "user", "content": "x"}],
         "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "tools": TOOLS,
         "response_format": {"type": "json_object"}, "presence_penalty": 0.5, "frequency_penalty": 0.2}),
    (6, {"model": "m", "prompt": ["a", "b"], "suffix": "s", "echo": True, "max_tokens": 4, "logprobs": 2,
         "best_of": 1, "stop": ["x"]}),
    (7, {"model": "m", "input": [[1, 2, 3], [4]], "encoding_format": "base64", "dimensions": 2}),
    (7, {"model": "m", "input": "one", "encoding_format": "float", "user": "u"}),
    (8, {"model": "m", "query": "q", "documents": ["a", {"text": "b"}], "top_n": 1, "return_documents": True}),
    (9, {"model": "m", "messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": True}),
    (10, {"model": "m", "content": "hello", "add_special": True, "with_pieces": True}),
    (11, {"model": "m", "tokens": [1, 2, 3]}),
    (1, {"model": "m", "messages": [{"role": "bad"}], "tools": [{"type": "function"}]}),
]


def request_seeds():
    for n, (ep, body) in enumerate(REQUESTS):
        put("request", n, bytes([ep]) + json.dumps(body).encode())
    put("request", len(REQUESTS), bytes([1]) + b'{"model": "m", "messages": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]'
        b']]]]]]]]]]]]]]]]]]]]]]]]]}')


# ---- manifest: name, newline, manifest ------------------------------------
def layer(kind, digit, size):
    return {"mediaType": "application/vnd.ollama.image." + kind, "digest": "sha256:" + digit * 64, "size": size}


MANIFESTS = [
    ("m", {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                      "digest": "sha256:" + "3" * 64, "size": 0},
           "layers": [layer("model", "1", 4), layer("template", "2", 10), layer("params", "3", 0)]}),
    ("m:latest", {"layers": [layer("model", "1", 4), layer("system", "3", 0), layer("license", "2", 10)]}),
    ("registry.ollama.ai/library/m:latest", {"layers": [layer("model", "1", 5)]}),
    ("user/model:7b-q4_K_M", {"layers": [layer("model", "1", 4), layer("projector", "2", 10)]}),
    ("../etc/passwd", {"layers": [layer("adapter", "1", 4)]}),
    ("qwen2.5:0.5b", {"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "md5:00", "size": 4}]}),
    ("host.example:5000/ns/m:tag", {"layers": []}),
    ("m", {"layers": [layer("model", "4", 4)]}),
    # a digest named twice (once with another size), a size beyond any blob
    ("m", {"layers": [layer("model", "1", 4), layer("license", "1", 4), layer("params", "1", 5)]}),
    ("m", {"config": layer("config", "2", 10), "layers": [layer("model", "1", 17592186044417)]}),
]


def manifest_seeds():
    for n, (name, m) in enumerate(MANIFESTS):
        put("manifest", n, name.encode() + b"\n" + json.dumps(m).encode())
    put("manifest", len(MANIFESTS), b"m\n{\"layers\": [{\"mediaType\": 1, \"digest\": null, \"size\": -1}]")


if __name__ == "__main__":
    tokenizer_seeds()
    grammar_seeds()
    ini_seeds()
    request_seeds()
    manifest_seeds()
    tokload_seeds()
