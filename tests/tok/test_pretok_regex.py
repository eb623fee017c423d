#!/usr/bin/env python3
"""Compare lamina's hand-written BPE pre-tokenizers with the original
regular expressions (run by the third-party `regex` module, which knows
\\p{L} and \\p{N}) on tricky and pseudo-random strings.  Skipped when the
module is not installed.  Code points whose category differs between the
Python Unicode version and the generated table are avoided by construction:
the table comes from this same Python (tests/tok/gen_unicode.py).

Pre-tokenizers of several passes apply their expressions one after the
other, each to the pieces left by the one before, matches and the text
between them both becoming pieces (as llama.cpp does).  Where llama.cpp
matches a class listing code points explicitly, white space outside ASCII
never belongs to it (it only counts as \\s); the classes below say so."""
import os
import random
import subprocess
import sys

try:
    import regex
except ImportError:
    print("1..0 # SKIP python module 'regex' not installed")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_unicode  # noqa: E402  (DeepSeek LLM's letter list)

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
# o200k's expression as llama.cpp rewrites it for its own engine: upper
# [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] becomes "a letter other than a-z", lower
# [\p{Ll}\p{Lm}\p{Lo}\p{M}] "a letter other than A-Z", the case-insensitive
# contractions are spelt out; this, not the original, is what it runs.
GPT4O = (r"""[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+"""
         r"""(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|"""
         r"""[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*"""
         r"""(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|"""
         r"""\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
CJK = r"(?V1)[[\u0800-\u9fa5\uac00-\ud7ff]--\s]+"
DSLLM_LETTERS = "[" + "".join("%s-%s" % (regex.escape(chr(a)), regex.escape(chr(b)))
                              for a, b in gen_unicode.dsllm_letters()) + "]"

# kind (enum lamina_pretok) -> its expressions, applied in turn
PATTERNS = {
    1: [GPT2],
    2: [LLAMA3],
    3: [r"""(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""],
    4: [r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""],
    5: [LLAMA3],
    6: [r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    7: [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
    8: [r"\p{N}", GPT2],
    9: [r"[\r\n]", r"\s?" + DSLLM_LETTERS + "+",
        r"\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3001-\u3002]+", r"\s+\Z", CJK,
        r"\p{N}+"],
    10: [r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, r"\p{N}"],
    11: [r"[^\n]+|[\n]+"],
    12: [GPT4O],
}
NAMES = {1: "gpt2", 2: "llama3", 3: "qwen2", 4: "qwen35", 5: "dbrx", 6: "default", 7: "falcon",
         8: "starcoder", 9: "deepseek-llm", 10: "deepseek-coder", 11: "gemma4",
         12: "gpt-4o"}

# \s in the patterns must mean Unicode White_Space, as in the library.
WHITE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + \
    "\u2028\u2029\u202f\u205f\u3000"

PIECES = ["'s", "'S", "'re", "'LL", "'ve", "'x", "'", "a", "Z", "é", "ß", "ǅ", "中", "日本",
          "٣", "½", "Ⅻ", "1", "22", "12345", " ", "  ", "\t", "\n", "\r\n", "\n\n", "\xa0",
          "\u3000", "!", "?!", "...", "$", "(", ")", "—", "😀", "👍🏽", "\u200b", "\x00",
          "\x1f", "_", "-", "é", "x", "don", "hello", "World",
          "+", "<=>", "^", "~", "|", "`", "µ", "ª", "Ω", "e\u0301", "\u0301", "\u200d",
          "가", "ก", "क्षि", "！", "：", "‘", "、", "。", "「", "1234567", "٣٤٥٦",
          "É", "COLE", "Mc", "iPhone", "DON", "'T", "'Re", "/", "//", "ʰ", "Ǆ", "ǆ", "ΣΑ", "σ",
          "a\u0308", "A\u030a", "\r", "🇫🇷", "👩\u200d💻", "x/", "'d", "'M", "'lL"]


def split(patterns, s):
    pieces = [s]
    for pat in patterns:
        out = []
        for p in pieces:
            pos = 0
            for m in regex.finditer(pat, p):
                if m.start() > pos:
                    out.append(p[pos:m.start()])
                out.append(m.group())
                pos = m.end()
            if pos < len(p):
                out.append(p[pos:])
        pieces = out
    return pieces


def boundaries(patterns, s):
    b, n = [], 0
    for p in split(patterns, s):
        n += len(p.encode("utf-8"))
        b.append(n)
    return b


def main():
    builddir = os.environ.get("LAMINA_TEST_BUILD", os.environ.get("top_builddir", "."))
    tool = os.path.join(builddir, "tests", "tok", "pretok_tool")
    rnd = random.Random(1234)
    cases = ["Hello world", "I'm here", "x = 1;\n", "  \n  x", "end   ", "12345678", "a  b",
             "..\n\nx", "\t\tx", " \u00a0x", "'hello", "\u3000\u3000a", "3.3 3..3 3...3",
             "------======= ''''''```````\"\"\"\"......!!!!!!??????", "x  \n", " \u3000a",
             "HelloWorld", "iPhone", "ÉCOLE", "éCOLE", "AÉB", "McDonald's", "DON'T", "I'M",
             "We'Re here", "it's'S", "1234567890", "٣٤٥٦٧", "a\r\nb", "line\r\n\r\n  next",
             "a/b//c", "!/\n/x", "x! //\n", "naïve", "Éa", "aÉb", "ÀÉÎ's", "e\u0301COLE",
             "Cafe\u0301", "\u0301A", "ǅemal", "ǄEMAL", "🙂Hello", "Hello🙂world", " 👍🏽OK",
             "ΣΑΣ σας", "Straße STRASSE", "日本語テキスト", "\u00a0Word", "'Word", "\tTab",
             "HTTPServer", "getHTTPResponse", "A1B2"]
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
        print("%sok %d - %s pre-tokenizer matches its expressions on %d strings" %
              ("not " if f else "", n, NAMES[kind], len(cases)))
        for s, got, want in f[:5]:
            print("#   %r: got %s want %s" % (s, got, want))
    print("1..%d" % n)
    return 1 if any(fails.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
