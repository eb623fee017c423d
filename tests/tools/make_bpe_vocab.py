#!/usr/bin/env python3
"""Write a small byte-level BPE vocabulary as a vocabulary-only GGUF file.

Merges are learned here, by plain BPE, on text this script makes up: words
in mixed case ("HelloWorld", "iPhone", "ÉCOLE", "McDonald's", "DON'T"),
contractions, digit runs, paths and slashes, CR LF and other white space,
accented letters composed and with combining marks, Greek, Cyrillic, CJK
and emoji.  The text is cut only before white space (each chunk is its
white space and the word after it), so the merges cross the places where
a pre-tokenizer splits words: a pre-tokenizer that splits where another
does not then gives other ids.

The GGUF holds what llama.cpp's converter writes for a byte-level BPE
vocabulary (tokenizer.ggml.model "gpt2", the pre-tokenizer name --pre,
GPT-2's byte-to-character mapping for the 256 byte tokens, the merges as
"left right" lines), two control tokens (<|startoftext|> as BOS,
<|endoftext|> as EOS) and one user-defined token, with no
tokenizer.ggml.add_bos_token key, so that the pre-tokenizer's own default
decides; under a small "llama" header, and no tensors.

Everything is deterministic (a fixed seed, ties between pair counts broken
by the pair's text), so the same gguf package writes the same bytes: the
test that uses it (tests/tok/gpt4o_golden.sh) compares the file's sha256
with the one recorded in tests/golden/tiny-gpt4o-tokenizer.json.

usage: make_bpe_vocab.py OUT.gguf [--pre NAME] [--merges N] [--seed N]
"""
import argparse
import collections
import random
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tiny_model import byte_to_unicode  # noqa: E402  (GPT-2's byte alphabet)

SPECIALS = [("<|startoftext|>", "control"), ("<|endoftext|>", "control"),
            ("<|tool|>", "user")]

WORDS = ("Hello world HelloWorld iPhone iPad McDonald's O'Neil DON'T don't I'M I'm we're "
         "They'LL you've She'D it's IT'S ÉCOLE école Élodie naïve NAÏVE Straße STRASSE Ñandú "
         "getHTTPResponse XMLHttpRequest snake_case CamelCase ALLCAPS lowercase UPPERCASE "
         "ǅemal ǄEMAL ΣΟΦΙΑ σοφία Αθήνα Москва МОСКВА привет the quick brown fox jumps over "
         "lazy dog A I a OK Ok ok USA NASA's JSON HTML5 mp3 x86_64 v2 ID IDs").split()
DECOMPOSED = ["cafe\u0301", "CAFE\u0301", "e\u0301cole", "E\u0301COLE", "nai\u0308ve",
              "A\u030angstro\u0308m", "Zu\u0308rich"]
OTHER = ["日本語", "テキスト", "東京", "한국어", "🙂", "👍🏽", "🇫🇷", "👩\u200d💻", "Hello🙂",
         "1234567", "12345", "2026", "3.14159", "1,000,000", "٣٤٥٦٧", "½", "Ⅻ", "x²",
         "a/b//c", "/usr/local/bin", "http://example.com/x/y", "C:\\Users", "and/or", "1/2",
         "!!", "?!", "...", "--", "(x)", "<tag>", "{}", "[1]", "'quoted'", "\"dq\"", "#!",
         "//", "/*", "*/", "->", "=>", "::", "!/", "./", "'", "'s", "'T"]
SEPARATORS = [" "] * 12 + ["  ", "   ", "\n", "\r\n", "\n\n", "\r\n\r\n", "\t", " \n ", "\n  ",
                           "\u00a0", "\u3000", " \t"]


def make_text(seed, n_lines):
    """Made-up lines, the same for the same seed."""
    rnd = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        out = []
        for k in range(rnd.randint(3, 12)):
            r = rnd.random()
            if r < 0.55:
                w = rnd.choice(WORDS)
            elif r < 0.65:
                w = rnd.choice(DECOMPOSED)
            else:
                w = rnd.choice(OTHER)
            if rnd.random() < 0.15:
                w += rnd.choice([".", ",", "!", "?", ":", "/", "'s", "'", ")", "\n"])
            if k:
                out.append(rnd.choice(SEPARATORS))
            out.append(w)
        lines.append("".join(out))
    return lines


def chunks(lines):
    """Each line cut before every white space run: the run and the word after it."""
    out = collections.Counter()
    for line in lines:
        cur = ""
        for i, ch in enumerate(line):
            if ch.isspace() and cur and not cur[-1].isspace():
                out[cur] += 1
                cur = ""
            cur += ch
        if cur:
            out[cur] += 1
    return out


def train(counts, n_merges):
    """Plain BPE over the chunks' bytes: the merges, most frequent pair first."""
    bc = byte_to_unicode()
    words = {tuple(bc[b] for b in w.encode("utf-8")): c for w, c in counts.items()}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        joined = best[0] + best[1]
        nw = {}
        for w, c in words.items():
            if len(w) < 2:
                nw[w] = nw.get(w, 0) + c
                continue
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            t = tuple(out)
            nw[t] = nw.get(t, 0) + c
        words = nw
    return merges


def vocab(merges):
    bc = byte_to_unicode()
    tokens = [bc[b] for b in range(256)]
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
    return tokens


def write_gguf(path, pre, tokens, merges):
    import gguf
    T = gguf.TokenType
    types = [int(T.NORMAL)] * len(tokens)
    ids = {}
    for text, kind in SPECIALS:
        ids[text] = len(tokens)
        tokens.append(text)
        types.append(int(T.CONTROL if kind == "control" else T.USER_DEFINED))
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(512)
    w.add_embedding_length(32)
    w.add_feed_forward_length(64)
    w.add_block_count(1)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(["%s %s" % m for m in merges])
    w.add_bos_token_id(ids["<|startoftext|>"])
    w.add_eos_token_id(ids["<|endoftext|>"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="the GGUF file to write")
    ap.add_argument("--pre", default="gpt-4o", help="tokenizer.ggml.pre (default gpt-4o)")
    ap.add_argument("--merges", type=int, default=600, help="merges to learn (default 600)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    merges = train(chunks(make_text(a.seed, 1500)), a.merges)
    write_gguf(a.out, a.pre, vocab(merges), merges)
    return 0


if __name__ == "__main__":
    sys.exit(main())
