#!/usr/bin/env python3
"""Compare lamina's hand-written BPE pre-tokenizers with the original
regular expressions (run by the third-party `regex` module, which knows
\\p{L} and \\p{N}) on tricky and pseudo-random strings.  Skipped when the
module is not installed.  Code points whose category differs between the
Python Unicode version and the generated table are avoided by construction:
the table comes from this same Python (tests/tok/gen_unicode.py)."""
import os
import random
import subprocess
import sys

try:
    import regex
except ImportError:
    print("1..0 # SKIP python module 'regex' not installed")
    sys.exit(0)

PATTERNS = {
    1: r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    2: r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    3: r"""(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
NAMES = {1: "gpt2", 2: "llama3", 3: "qwen2"}

# \s in the patterns must mean Unicode White_Space, as in the library.
WHITE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + \
    "\u2028\u2029\u202f\u205f\u3000"

PIECES = ["'s", "'S", "'re", "'LL", "'ve", "'x", "'", "a", "Z", "é", "ß", "ǅ", "中", "日本",
          "٣", "½", "Ⅻ", "1", "22", "12345", " ", "  ", "\t", "\n", "\r\n", "\n\n", "\xa0",
          "\u3000", "!", "?!", "...", "$", "(", ")", "—", "😀", "👍🏽", "\u200b", "\x00",
          "\x1f", "_", "-", "é", "x", "don", "hello", "World"]


def boundaries(pattern, s):
    b = []
    for m in regex.finditer(pattern, s):
        b.append(len(s[:m.end()].encode("utf-8")))
    return b


def main():
    builddir = os.environ.get("LAMINA_TEST_BUILD", os.environ.get("top_builddir", "."))
    tool = os.path.join(builddir, "tests", "tok", "pretok_tool")
    rnd = random.Random(1234)
    cases = ["Hello world", "I'm here", "x = 1;\n", "  \n  x", "end   ", "12345678", "a  b",
             "..\n\nx", "\t\tx", " \u00a0x", "'hello", "\u3000\u3000a"]
    for _ in range(1500):
        cases.append("".join(rnd.choice(PIECES + list(WHITE)) for _ in range(rnd.randint(1, 12))))
    lines = []
    for kind in PATTERNS:
        for s in cases:
            lines.append("%d %s" % (kind, s.encode("utf-8").hex()))
    out = subprocess.run([tool], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=True).stdout.splitlines()
    n = 0
    fails = {k: [] for k in PATTERNS}
    i = 0
    for kind in PATTERNS:
        for s in cases:
            got = [int(x) for x in out[i].split()] if out[i] else []
            want = boundaries(PATTERNS[kind], s)
            if got != want:
                fails[kind].append((s, got, want))
            i += 1
    for kind in PATTERNS:
        n += 1
        f = fails[kind]
        print("%sok %d - %s pre-tokenizer matches its regex on %d strings" %
              ("not " if f else "", n, NAMES[kind], len(cases)))
        for s, got, want in f[:5]:
            print("#   %r: got %s want %s" % (s, got, want))
    print("1..%d" % n)
    return 1 if any(fails.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
