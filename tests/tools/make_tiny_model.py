#!/usr/bin/env python3
"""Write a small random-weight GGUF model that lamina can load and run.

The file uses the tensor names, metadata keys and tokenizer layout of real
GGUF files for the chosen architecture, with tiny dimensions:

  gemma3  n_embd 256, 4 heads, 1 KV head, head_dim 64 (key_length /
          value_length), n_ff 512, 6 layers (sliding window 8; with the
          Gemma 3 rule "every 6th layer is global" layers 0-4 are local and
          layer 5 global), tied output, SentencePiece vocab of 512
          (tokenizer.ggml.model "llama").
  llama   n_embd 256, 4 heads, 2 KV heads, head_dim 64, n_ff 512, 4 layers,
          untied output, byte-level BPE vocab of 512 with merges
          (tokenizer.ggml.model "gpt2", pre "llama-bpe").
  qwen2   the llama shapes plus Q/K/V biases (attn_q.bias ...), NEOX RoPE
          base 1e6, output tied to the embedding, the same BPE vocab with
          pre "qwen2" and no BOS added (as Qwen2.5 files have).
  qwen2moe  qwen2's attention and vocabulary, untied output, and a mixture
          of 8 experts (2 used, width 256) as the FFN beside a shared
          expert of width 768 (ffn_gate_inp_shexp [n_embd], ffn_{gate,up,
          down}_shexp; qwen2moe.expert_shared_feed_forward_length), as
          Qwen1.5-MoE files have.
  granite the llama layer, tied, with granite.embedding_scale,
          residual_scale, logit_scale and attention.scale.
  gpt-oss  as llama.cpp's converter (conversion GptOssModel) writes
          gpt-oss-20b, shrunk: 8 heads of 64 over n_embd 256 (heads x head
          size != n_embd, as there), 2 KV heads, q/k/v/output biases,
          attn_sinks [heads], post_attention_norm as the FFN's norm, 8
          experts (2 used, width 256) with a router bias and per-expert
          biases, experts in MXFP4 (--type mixed), every other layer
          windowed (sliding_window 8), YaRN rope (factor 32 over 4096,
          base 150000), untied output, pre "gpt-4o".
  olmo2   no input norms: q and k RMS-normed over the whole row
          (attn_q_norm [n_embd]), attention and FFN outputs normed
          (post_attention_norm, post_ffw_norm) before the residual add,
          NEOX RoPE, untied output.

  bert    an encoder as llama.cpp's converter (conversion/bert.py,
          BertModel) writes one: n_embd 256, 4 heads (no GQA), n_ff 512,
          absolute position_embd [n_embd, context_length], token_types
          (token_type_count 2), token_embd_norm and per layer
          attn_output_norm / layer_output_norm with biases, q/k/v, output
          and FFN biases, no output norm or head; bert.attention.causal
          false, bert.attention.layer_norm_epsilon 1e-12, bert.pooling_type
          (--pooling: mean 1 by default, cls 2); a WordPiece vocabulary of
          512 (tokenizer.ggml.model "bert"): [PAD] [UNK] [CLS] [SEP] [MASK],
          then pieces in the converter's "phantom space" form (a word's
          first piece '\u2581' + text, a continuation the bare text).
  nomic-bert  the bert shapes as NomicBertModel converts nomic-embed-text:
          fused attn_qkv, rotary positions (nomic-bert.rope.freq_base 1000)
          instead of position_embd, a gated FFN (ffn_up, ffn_gate,
          ffn_down), no biases but the LayerNorms'.

--type picks the type of every matrix (norm vectors are always f32):
  f32 f16 bf16 q8_0 q4_0 q5_0 q2_k q3_k q4_k q5_k q6_k iq4_nl iq4_xs, or
  mixed   per-tensor types like a real Q4_K_M (gemma3: the types of the
          Gemma 3 270M Q4_K_M file; llama: q4_k / q5_k / q6_k / q8_0 mix).
f16/bf16/q8_0/q4_0/q5_0 are quantized with gguf.quants; the k-quants and
iq4_nl/iq4_xs with the quantizers below (gguf.quants only dequantizes
those), each checked against gguf.quants.dequantize before writing.

Weights are normal random numbers (matrices std 0.5/sqrt(fan_in),
embeddings std 0.05, norm weights 1 + N(0, 0.05)), so activations stay
finite.  The output is a function of the arguments only (same seed, same
bytes).

--rerank with --arch qwen3 makes the file a Qwen3-Reranker as llama.cpp's
converter (conversion/qwen.py, Qwen3Model) writes one: qwen3.pooling_type
4 (RANK), qwen3.classifier.output_labels ["yes", "no"], the named chat
template tokenizer.chat_template.rerank (plus tokenizer.chat_templates
["rerank"], as gguf-py's add_chat_template writes a named list) holding
the Qwen3 reranker prompt with {query} and {document} placeholders, and
the tensor cls.output.weight (F32, ne [n_embd, 2]): the "yes" row first,
then the "no" row, copied from token_embd as stored in the file
(dequantized).  The tiny vocabulary has no "yes" / "no" tokens, so the
rows of the single-byte tokens "y" (id 121) and "n" (id 110) stand in.
Everything else (all other keys and tensors, the random draws) is the
same as without --rerank, so the rank scores equal the softmax of the
plain model's logits of those two tokens at the last position.

--rerank with --arch bert makes a BERT cross-encoder (ms-marco MiniLM,
bge-reranker) as llama.cpp's converter writes one from a
*ForSequenceClassification checkpoint: bert.pooling_type 4 (RANK), one
label (bert.classifier.output_labels ["LABEL_0"]), the classifier's
dense layer as cls.weight [n_embd, n_embd] (the matrix type) and cls.bias,
its out_proj as cls.output.weight (F32, ne [n_embd, 1]) and
cls.output.bias, after the encoder's tensors (drawn from the generator
after them, so the encoder's weights are those without --rerank); the
WordPiece tokenizer as converted from a BERT tokenizer.json (the pair
template "[CLS] $A [SEP] $B [SEP]"): eos_token_id [SEP], add_eos_token
true, add_sep_token false, so llama-server frames a query and a document
as [CLS] query [SEP] document [SEP].

--manifest FILE writes a JSON description of what was written: version,
alignment, every key in file order with its GGUF type and value (arrays:
element type and all values), and every tensor with type, ne, absolute
offset, byte size and zlib CRC-32 of its bytes.  Tests compare a reader
against it.

Examples:
  make_tiny_model.py --arch gemma3 --type mixed --out g.gguf
  make_tiny_model.py --arch llama --type q4_k --seed 7 --out l.gguf --manifest l.json
"""

import argparse
import json
import re
import sys
import zlib

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf import GGUFValueType as VT
except ImportError as exc:  # the tests turn this into a TAP skip
    sys.stderr.write(f"make_tiny_model.py: python package 'gguf' not available: {exc}\n")
    sys.exit(77)

TYPES = {
    "f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16, "q8_0": QT.Q8_0,
    "q4_0": QT.Q4_0, "q5_0": QT.Q5_0, "q4_k": QT.Q4_K, "q5_k": QT.Q5_K,
    "q6_k": QT.Q6_K, "q2_k": QT.Q2_K, "q3_k": QT.Q3_K, "iq4_nl": QT.IQ4_NL,
    "iq4_xs": QT.IQ4_XS, "mxfp4": QT.MXFP4,
}
# general.file_type (llama_ftype numbering)
FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "q5_0": 8, "q4_k": 14,
             "q5_k": 16, "q6_k": 18, "bf16": 32, "mixed": 15,
             "q2_k": 10, "q3_k": 12, "iq4_nl": 25, "iq4_xs": 30, "mxfp4": 38}

N_VOCAB = 512

CORPUS = """
The quick brown fox jumps over the lazy dog. A small model is a model with few
weights; it runs fast and it is easy to test. Once upon a time there was a
little cat that lived in a house near the river. Every morning the cat would
walk to the water and look at the fish. The fish were happy and the sun was
warm. What is the capital of France? The capital of France is Paris. How are
you today? I am fine, thank you. Hello world! This is a test of the tokenizer
and the engine. We write the numbers 0 1 2 3 4 5 6 7 8 9 and 10, 42, 100.
She said: "It is time to go home." They went home and had dinner together.
In the beginning the universe was created. This has made a lot of people very
angry and been widely regarded as a bad move. Machine learning models predict
the next token from the previous tokens. Layers of attention and feed forward
networks transform the hidden state. Good night, and good luck.
User: write a short story about a robot. Model: The robot woke up and saw the
stars for the first time. It wanted to learn everything about the world.
"""


# ---------------------------------------------------------------- tokenizers

def train_bpe(words, n_merges):
    """Greedy BPE over {word(tuple of symbols): count}.  Ties are broken by
    the pair's text so the result is deterministic.  Returns the merges."""
    words = {tuple(w): c for w, c in words.items()}
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], [-ord(ch) for ch in kv[0][0] + " " + kv[0][1]]))[0]
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return merges


def spm_vocab():
    """SentencePiece-style vocab like Gemma 3: control tokens, byte
    tokens <0xXX>, user-defined newline pieces, characters and BPE pieces
    where '\u2581' stands for a space."""
    tokens, scores, types = [], [], []

    def add(t, s, ty):
        tokens.append(t)
        scores.append(s)
        types.append(ty)

    for t in ["<pad>", "<eos>", "<bos>"]:
        add(t, -1000.0, 3)
    add("<unk>", -1000.0, 2)
    add("<mask>", -1000.0, 3)
    add("[multimodal]", -1000.0, 4)
    add("<start_of_turn>", -1000.0, 3)
    add("<end_of_turn>", -1000.0, 3)
    add("\n", -1000.0, 4)
    add("\n\n", -1000.0, 4)
    for b in range(256):
        add(f"<0x{b:02X}>", 0.0, 6)
    words = {}
    for w in CORPUS.split():
        w = "\u2581" + w
        words[w] = words.get(w, 0) + 1
    chars = sorted({ch for w in words for ch in w})
    budget = N_VOCAB - len(tokens) - len(chars)
    merges = train_bpe({tuple(w): c for w, c in words.items()}, budget)
    # pieces first by merge rank (score -rank), characters after them
    for r, (a, b) in enumerate(merges):
        add(a + b, -float(r), 1)
    for i, ch in enumerate(chars):
        add(ch, -float(len(merges) + i), 1)
    n = 0
    while len(tokens) < N_VOCAB:
        add(f"<unused{n}>", -1000.0, 3)
        n += 1
    assert len(set(tokens)) == len(tokens), "duplicate SPM piece"
    return tokens, scores, types


def wpm_vocab():
    """WordPiece vocabulary as llama.cpp's converter writes a BERT one:
    the five special tokens (control) first, then whole words and single
    characters, each as a word start ('\u2581' + text) and characters and
    a few suffixes as continuations (bare text), padded with [unusedN]
    control tokens to N_VOCAB."""
    tokens, types = [], []
    for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        tokens.append(t)
        types.append(3)
    words = {}
    for w in re.findall(r"\w+|[^\w\s]", CORPUS.lower()):
        words[w] = words.get(w, 0) + 1
    chars = sorted({ch for w in words for ch in w})
    pieces = []
    for ch in chars:
        pieces += ["\u2581" + ch, ch]
    for suf in ("s", "ed", "ing", "ly", "er", "est", "tion"):
        if suf not in pieces:
            pieces.append(suf)
    budget = N_VOCAB - len(tokens) - len(pieces) - 16
    ranked = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))[:budget]
    for w in ranked:
        if "\u2581" + w not in pieces:
            pieces.append("\u2581" + w)
    for p in pieces:
        tokens.append(p)
        types.append(1)
    n = 0
    while len(tokens) < N_VOCAB:
        tokens.append(f"[unused{n}]")
        types.append(3)
        n += 1
    assert len(set(tokens)) == len(tokens), "duplicate WordPiece token"
    return tokens, types


def byte_to_unicode():
    """The GPT-2 byte-level alphabet: printable bytes stand for themselves,
    the rest are shifted to code points from 256 up."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def bpe_vocab():
    """Byte-level BPE vocab like Llama 3: 256 byte symbols, merged pieces
    in merge order, then the special tokens."""
    b2u = byte_to_unicode()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>"]
    # pre-tokenize: words with their leading space, digits, punctuation runs
    pieces = re.findall(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+", CORPUS)
    words = {}
    for p in pieces:
        enc = tuple(b2u[b] for b in p.encode("utf-8"))
        words[enc] = words.get(enc, 0) + 1
    merges = train_bpe(words, N_VOCAB - 256 - len(specials))
    tokens = [b2u[b] for b in range(256)] + [a + b for a, b in merges]
    n = 0
    while len(tokens) + len(specials) < N_VOCAB:
        tokens.append(f"<|reserved_special_token_{n}|>")
        n += 1
    types = [1] * len(tokens)
    for i, t in enumerate(tokens):
        if t.startswith("<|reserved"):
            types[i] = 3
    tokens += specials
    types += [3] * len(specials)
    assert len(set(tokens)) == len(tokens), "duplicate BPE token"
    return tokens, types, [f"{a} {b}" for a, b in merges]


# ---------------------------------------------------------- k-quantizers

def _f16(x):
    return x.astype(np.float16)


def _check(qbytes, qtype, want, x, bound=0.25):
    """The bytes must decode (gguf.quants) to our reconstruction."""
    got = gguf.quants.dequantize(qbytes, qtype).reshape(want.shape)
    tol = 1e-5 * max(1.0, float(np.abs(want).max()))
    if not np.allclose(got, want, atol=tol, rtol=1e-5):
        raise AssertionError(f"{qtype.name} packing disagrees with gguf.quants.dequantize")
    err = float(np.abs(got - x).max())
    if err > bound * float(np.abs(x).max()) + 1e-6:
        raise AssertionError(f"{qtype.name} quantization error {err} too large")


def _scale_min_k(x, qmax):
    """Shared by q4_K / q5_K.  x: (nb, 8, 32).  Returns fp16 d and dmin,
    6-bit sc and m per sub-block, and q in 0..qmax."""
    lo = np.minimum(x.min(-1), 0.0)              # (nb, 8), <= 0
    hi = x.max(-1)
    step = (hi - lo) / qmax                      # sub-block scale
    off = -lo                                    # sub-block min (subtracted)
    d = _f16(step.max(-1) / 63)
    dmin = _f16(off.max(-1) / 63)
    df = d.astype(np.float32)[:, None]
    dmf = dmin.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.clip(np.rint(step / df), 0, 63), 0).astype(np.uint8)
        m = np.where(dmf > 0, np.clip(np.rint(off / dmf), 0, 63), 0).astype(np.uint8)
        es = (df * sc)[..., None]
        eo = (dmf * m)[..., None]
        q = np.where(es > 0, np.clip(np.rint((x + eo) / es), 0, qmax), 0).astype(np.uint8)
    recon = es * q - eo
    return d, dmin, sc, m, q, recon


def _pack_scales_k(sc, m):
    """12-byte packing of 8 six-bit scales and mins."""
    s = np.zeros((sc.shape[0], 12), np.uint8)
    s[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    s[:, 4:8] = m[:, 0:4] | ((m[:, 4:8] >> 4) << 6)
    s[:, 8:12] = (sc[:, 4:8] & 0xF) | ((m[:, 4:8] & 0xF) << 4)
    return s


def quant_q4_k(x):
    nb = x.size // 256
    d, dmin, sc, m, q, recon = _scale_min_k(x.reshape(nb, 8, 32), 15)
    q4 = q.reshape(nb, 4, 2, 32)                 # chunk c, half h, element l
    qs = (q4[:, :, 0, :] | (q4[:, :, 1, :] << 4)).reshape(nb, 128)
    out = np.concatenate([d.view(np.uint8).reshape(nb, 2), dmin.view(np.uint8).reshape(nb, 2),
                          _pack_scales_k(sc, m), qs], axis=1)
    out = out.reshape(x.shape[0], -1)
    _check(out, QT.Q4_K, recon.reshape(x.shape), x)
    return out


def quant_q5_k(x):
    nb = x.size // 256
    d, dmin, sc, m, q, recon = _scale_min_k(x.reshape(nb, 8, 32), 31)
    q5 = q.reshape(nb, 4, 2, 32)
    lo = q5 & 0xF
    qs = (lo[:, :, 0, :] | (lo[:, :, 1, :] << 4)).reshape(nb, 128)
    qh = np.zeros((nb, 32), np.uint8)
    for c in range(4):
        for h in range(2):
            qh |= ((q5[:, c, h, :] >> 4) & 1) << (2 * c + h)
    out = np.concatenate([d.view(np.uint8).reshape(nb, 2), dmin.view(np.uint8).reshape(nb, 2),
                          _pack_scales_k(sc, m), qh, qs], axis=1)
    out = out.reshape(x.shape[0], -1)
    _check(out, QT.Q5_K, recon.reshape(x.shape), x)
    return out


def quant_q6_k(x):
    nb = x.size // 256
    xs = x.reshape(nb, 16, 16)
    step = np.abs(xs).max(-1) / 31               # (nb, 16)
    d = _f16(step.max(-1) / 127)
    df = d.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.clip(np.rint(step / df), -128, 127), 0).astype(np.int8)
        es = (df * sc)[..., None]
        q = np.where(es > 0, np.clip(np.rint(xs / es) + 32, 0, 63), 32).astype(np.uint8)
    recon = es * (q.astype(np.float32) - 32)
    q6 = q.reshape(nb, 2, 4, 32)                 # half n, quarter k, element l
    ql = np.concatenate([(q6[:, :, 0, :] & 0xF) | ((q6[:, :, 2, :] & 0xF) << 4),
                         (q6[:, :, 1, :] & 0xF) | ((q6[:, :, 3, :] & 0xF) << 4)], axis=2).reshape(nb, 128)
    qh = ((q6[:, :, 0, :] >> 4) | ((q6[:, :, 1, :] >> 4) << 2) |
          ((q6[:, :, 2, :] >> 4) << 4) | ((q6[:, :, 3, :] >> 4) << 6)).reshape(nb, 64)
    out = np.concatenate([ql, qh, sc.view(np.uint8), d.view(np.uint8).reshape(nb, 2)], axis=1)
    out = out.reshape(x.shape[0], -1)
    _check(out, QT.Q6_K, recon.reshape(x.shape), x)
    return out


def _signed_absmax(x):
    """Per row of x (..., n): the value of largest magnitude, with its sign."""
    i = np.abs(x).argmax(-1)
    return np.take_along_axis(x, i[..., None], -1)[..., 0]


def _q_bits(q, nbits):
    """Pack 256 values per block (..., 256) of nbits (2) the q2_K/q3_K way:
    element 128c + 32s + l into bits nbits*s of byte 32c + l."""
    q4 = q.reshape(q.shape[0], 2, 4, 32).astype(np.uint8)   # c, s, l
    out = np.zeros((q.shape[0], 2, 32), np.uint8)
    for k in range(4):
        out |= q4[:, :, k, :] << (nbits * k)
    return out.reshape(q.shape[0], 64)


def quant_q2_k(x):
    """x ~ d*sc_j*q - dmin*m_j over 16 sub-blocks of 16, q 0..3, sc/m 0..15
    (plain min/max per sub-block)."""
    nb = x.size // 256
    xs = x.reshape(nb, 16, 16)
    lo = np.minimum(xs.min(-1), 0.0)
    step = (xs.max(-1) - lo) / 3
    off = -lo
    d = _f16(step.max(-1) / 15)
    dmin = _f16(off.max(-1) / 15)
    df = d.astype(np.float32)[:, None]
    dmf = dmin.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.clip(np.rint(step / df), 0, 15), 0).astype(np.uint8)
        m = np.where(dmf > 0, np.clip(np.rint(off / dmf), 0, 15), 0).astype(np.uint8)
        es = (df * sc)[..., None]
        eo = (dmf * m)[..., None]
        q = np.where(es > 0, np.clip(np.rint((xs + eo) / es), 0, 3), 0).astype(np.uint8)
    recon = es * q - eo
    out = np.concatenate([sc | (m << 4), _q_bits(q.reshape(nb, 256), 2),
                          d.view(np.uint8).reshape(nb, 2), dmin.view(np.uint8).reshape(nb, 2)], axis=1)
    out = out.reshape(x.shape[0], -1)
    _check(out, QT.Q2_K, recon.reshape(x.shape), x, bound=0.5)
    return out


def quant_q3_k(x):
    """x ~ d*sc_j*q over 16 sub-blocks of 16, q -4..3, sc -32..31: each
    sub-block's value of largest magnitude maps to q = -4, the largest
    sub-block scale to sc = -32."""
    nb = x.size // 256
    xs = x.reshape(nb, 16, 16)
    step = _signed_absmax(xs) / -4                 # (nb, 16)
    d = _f16(_signed_absmax(step) / -32)
    df = d.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df != 0, np.clip(np.rint(step / df), -32, 31), 0).astype(np.int8)
        es = (df * sc)[..., None]
        q = np.where(es != 0, np.clip(np.rint(xs / es), -4, 3), 0).astype(np.int8)
    recon = es * q
    u = (q + 4).astype(np.uint8).reshape(nb, 256)
    qs = _q_bits(u & 3, 2)
    hm = np.zeros((nb, 32), np.uint8)
    for e32 in range(8):                           # bit e/32 of hmask[e % 32]
        hm |= (u[:, 32 * e32:32 * e32 + 32] >> 2) << e32
    s6 = (sc.astype(np.int16) + 32).astype(np.uint8)   # 0..63
    sc12 = np.zeros((nb, 12), np.uint8)
    sc12[:, 0:8] = (s6[:, 0:8] & 0xF) | ((s6[:, 8:16] & 0xF) << 4)
    for k in range(16):
        sc12[:, 8 + k % 4] |= (s6[:, k] >> 4) << (2 * (k // 4))
    out = np.concatenate([hm, qs, sc12, d.view(np.uint8).reshape(nb, 2)], axis=1)
    out = out.reshape(x.shape[0], -1)
    _check(out, QT.Q3_K, recon.reshape(x.shape), x, bound=0.35)
    return out


IQ4_VALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                      np.float32)
_IQ4_MID = (IQ4_VALUES[1:] + IQ4_VALUES[:-1]) / 2


def _iq4_index(v):
    """Nearest codebook index (the lower one on a tie)."""
    return np.searchsorted(_IQ4_MID, np.nan_to_num(v), side="left").astype(np.uint8)


def _iq4_fit(xs):
    """xs (..., 32) ~ s * v[q]: candidate scales map each row's value of
    largest magnitude near either end of the codebook or onto one of its
    values, each refined by least squares; the least squared error wins
    (as runtime/ops/quant.c)."""
    v0 = _signed_absmax(xs)
    best_s = np.zeros(v0.shape, np.float32)
    best_e = np.full(v0.shape, np.inf)
    targets = [end + 0.5 * t for end in (-127.0, 113.0) for t in range(-12, 13)]
    targets += [float(v) for v in IQ4_VALUES]
    with np.errstate(divide="ignore", invalid="ignore"):
        for target in targets:
            s0 = v0 / target
            w = IQ4_VALUES[_iq4_index(xs / s0[..., None])]
            s = (w * xs).sum(-1) / (w * w).sum(-1)
            e = ((s[..., None] * w - xs) ** 2).sum(-1)
            better = (e < best_e) & (v0 != 0)
            best_s = np.where(better, s, best_s)
            best_e = np.where(better, e, best_e)
    return best_s


def _iq4_pack(idx):
    """(..., 32) indices -> (..., 16) bytes: element l low nibble, l+16 high."""
    return idx[..., :16] | (idx[..., 16:] << 4)


def quant_iq4_nl(x):
    nb = x.size // 32
    xs = x.reshape(nb, 32)
    d = _f16(_iq4_fit(xs))
    df = d.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        idx = np.where(df != 0, _iq4_index(xs / df), 8).astype(np.uint8)
    recon = df * IQ4_VALUES[idx]
    out = np.concatenate([d.view(np.uint8).reshape(nb, 2), _iq4_pack(idx)], axis=1)
    out = out.reshape(x.shape[0], -1)
    _check(out, QT.IQ4_NL, recon.reshape(x.shape), x)
    return out


def quant_iq4_xs(x):
    nb = x.size // 256
    xs = x.reshape(nb, 8, 32)
    s = _iq4_fit(xs)                               # (nb, 8)
    d = _f16(_signed_absmax(s) / -32)
    df = d.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ls = np.where(df != 0, np.clip(np.rint(s / df), -32, 31), 0).astype(np.int16)
        dl = (df * ls)[..., None]
        idx = np.where(dl != 0, _iq4_index(xs / dl), 8).astype(np.uint8)
    recon = dl * IQ4_VALUES[idx]
    u = (ls + 32).astype(np.uint16)                # 0..63
    scales_h = np.zeros(nb, np.uint16)
    for j in range(8):
        scales_h |= (u[:, j] >> 4) << (2 * j)
    scales_l = ((u[:, 0::2] & 0xF) | ((u[:, 1::2] & 0xF) << 4)).astype(np.uint8)
    out = np.concatenate([d.view(np.uint8).reshape(nb, 2), scales_h.view(np.uint8).reshape(nb, 2),
                          scales_l, _iq4_pack(idx).reshape(nb, 128)], axis=1)
    out = out.reshape(x.shape[0], -1)
    _check(out, QT.IQ4_XS, recon.reshape(x.shape), x)
    return out


QUANTIZERS = {QT.Q2_K: quant_q2_k, QT.Q3_K: quant_q3_k, QT.IQ4_NL: quant_iq4_nl,
              QT.IQ4_XS: quant_iq4_xs}


def encode(x, qt):
    """x: float32 (rows, ne0).  Returns the array handed to the writer and
    its raw dtype (None when numpy's dtype says it)."""
    if qt == QT.F32:
        return x.astype(np.float32), None
    if qt == QT.F16:
        return x.astype(np.float16), None
    if qt == QT.Q4_K:
        return quant_q4_k(x), qt
    if qt == QT.Q5_K:
        return quant_q5_k(x), qt
    if qt == QT.Q6_K:
        return quant_q6_k(x), qt
    if qt in QUANTIZERS:
        return QUANTIZERS[qt](x), qt
    return gguf.quants.quantize(x, qt), qt


# ------------------------------------------------------------------- model

# Shapes per architecture (GGUF ne order: [input, output]).  Besides the
# three originals: qwen3 and gemma2 have heads x head size != n_embd, as
# their real files do; phi3 fuses q/k/v and gate/up and rotates 3/4 of each
# head (Phi-4-mini); llama3 is a "llama" file with Llama 3's rope_freqs.
SHAPES = {
    #          E    F   H  HKV   D
    "llama":  (256, 512, 4, 2,  64),
    "llama3": (256, 512, 4, 2,  64),
    "qwen2":  (256, 512, 4, 2,  64),
    "qwen3":  (256, 512, 4, 2, 128),
    "gemma3": (256, 512, 4, 1,  64),
    "gemma2": (256, 512, 4, 2, 128),
    "phi3":   (256, 512, 4, 2,  64),
    "qwen3moe": (256, 512, 4, 2, 128),
    "qwen2moe": (256, 512, 4, 2,  64),
    "granite": (256, 512, 4, 2,  64),
    "olmo2":   (256, 512, 4, 2,  64),
    "gpt-oss": (256, 512, 8, 2,  64),
    "bert":    (256, 512, 4, 4,  64),
    "nomic-bert": (256, 512, 4, 4, 64),
}
ENCODER = ("bert", "nomic-bert")                   # embeddings only: no output norm or head
POOLING = {"mean": 1, "cls": 2}       # <arch>.pooling_type values
# mixture of experts: experts, used per token, expert FFN width
MOE = {"qwen3moe": (8, 2, 256), "qwen2moe": (8, 2, 256), "gpt-oss": (8, 2, 256)}
# a shared expert every token uses, beside the routed ones: its FFN width
# (wider than the routed experts' together and than feed_forward_length)
SHEXP = {"qwen2moe": 768}
QWEN = ("qwen2", "qwen3", "qwen3moe", "qwen2moe")   # Qwen's rope base, eps, tokenizer
PRE = {"gpt-oss": "gpt-4o"}           # tokenizer.ggml.pre other than llama-bpe / qwen2
GGUF_ARCH = {"llama3": "llama"}       # the general.architecture written
GEMMA = ("gemma2", "gemma3")
SPM = ("gemma3", "gemma2")            # SentencePiece vocabularies; the rest BPE
TIED = ("gemma3", "gemma2", "qwen2", "qwen3", "qwen3moe", "granite")
# Granite's scales (granite-3.x-2b's embedding/residual/logit, and q.k by
# 1/head size as its attention_multiplier does)
GRANITE = {"embedding_scale": 12.0, "residual_scale": 0.22, "logit_scale": 8.0, "attention.scale": 1 / 64}
PHI3_ROT = 48                         # rotated dims per head (of 64)


def llama3_rope_freqs(D, base):
    """Llama 3.1's frequency divisors (factor 8, low 1, high 4, original
    context 8192) for head size D."""
    factor, low, high, orig = 8.0, 1.0, 4.0, 8192
    out = []
    for i in range(0, D, 2):
        freq = 1.0 / base ** (i / D)
        wavelen = 2 * np.pi / freq
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def bert_tensor_plan(arch, n_layer, base, n_ctx):
    """The tensors of a BertModel in the converter's order (the Hugging
    Face state dict's: embeddings, then each layer's attention, its output
    LayerNorm, the FFN and the layer's output LayerNorm).  nomic-bert
    (NomicBertModel): no position rows (RoPE), fused q/k/v (Wqkv), a gated
    FFN (fc11, fc12), no biases but the norms'."""
    E, F, H, _, D = SHAPES[arch]
    nomic = arch == "nomic-bert"
    mat = base if base is not None else QT.Q8_0
    plan = [("token_embd.weight", [E, N_VOCAB], "embd", mat)]
    if not nomic:
        plan.append(("position_embd.weight", [E, n_ctx], "embd", mat))
    plan += [("token_types.weight", [E, 2], "embd", QT.F32),
             ("token_embd_norm.weight", [E], "norm", QT.F32),
             ("token_embd_norm.bias", [E], "bias", QT.F32)]
    for i in range(n_layer):
        p = f"blk.{i}."
        if nomic:
            plan.append((p + "attn_qkv.weight", [E, 3 * H * D], "mat", mat))
        else:
            for t in ("q", "k", "v"):
                plan.append((p + f"attn_{t}.weight", [E, H * D], "mat", mat))
                plan.append((p + f"attn_{t}.bias", [H * D], "bias", QT.F32))
        plan.append((p + "attn_output.weight", [H * D, E], "mat", mat))
        if not nomic:
            plan.append((p + "attn_output.bias", [E], "bias", QT.F32))
        plan += [(p + "attn_output_norm.weight", [E], "norm", QT.F32),
                 (p + "attn_output_norm.bias", [E], "bias", QT.F32)]
        if nomic:
            plan += [(p + "ffn_up.weight", [E, F], "mat", mat),
                     (p + "ffn_gate.weight", [E, F], "mat", mat),
                     (p + "ffn_down.weight", [F, E], "mat", mat)]
        else:
            plan += [(p + "ffn_up.weight", [E, F], "mat", mat),
                     (p + "ffn_up.bias", [F], "bias", QT.F32),
                     (p + "ffn_down.weight", [F, E], "mat", mat),
                     (p + "ffn_down.bias", [E], "bias", QT.F32)]
        plan += [(p + "layer_output_norm.weight", [E], "norm", QT.F32),
                 (p + "layer_output_norm.bias", [E], "bias", QT.F32)]
    return plan


def tensor_plan(arch, n_layer, tname, n_ctx=512):
    """[(name, ne (GGUF order), kind, type)] in file order."""
    E, F, H, HKV, D = SHAPES[arch]
    V = N_VOCAB
    mixed = tname == "mixed"
    base = None if mixed else TYPES[tname]
    gemma = arch in GEMMA
    if arch in ENCODER:
        return bert_tensor_plan(arch, n_layer, base, n_ctx)

    def pick(g, l):
        return base if base is not None else (g if gemma else l)

    plan = [("token_embd.weight", [E, V], "embd", pick(QT.Q8_0, QT.Q4_K))]
    if arch == "phi3":
        plan.append(("rope_factors_long.weight", [PHI3_ROT // 2], "rope_long", QT.F32))
        plan.append(("rope_factors_short.weight", [PHI3_ROT // 2], "rope_short", QT.F32))
    if arch == "llama3":
        plan.append(("rope_freqs.weight", [D // 2], "rope_llama3", QT.F32))
    for i in range(n_layer):
        p = f"blk.{i}."
        even = i % 2 == 0
        if arch != "olmo2":                   # OLMo 2 normalizes outputs, not inputs
            plan.append((p + "attn_norm.weight", [E], "norm", QT.F32))
        if arch == "phi3":
            plan.append((p + "attn_qkv.weight", [E, (H + 2 * HKV) * D], "mat", pick(None, QT.Q5_K)))
        else:
            plan.append((p + "attn_q.weight", [E, H * D], "mat", pick(QT.Q5_0, QT.Q4_K)))
            plan.append((p + "attn_k.weight", [E, HKV * D], "mat", pick(QT.Q5_0, QT.Q4_K)))
            plan.append((p + "attn_v.weight", [E, HKV * D], "mat", pick(QT.Q8_0, QT.Q6_K if even else QT.Q8_0)))
        if arch in ("qwen2", "qwen2moe", "gpt-oss"):
            plan.append((p + "attn_q.bias", [H * D], "bias", QT.F32))
            plan.append((p + "attn_k.bias", [HKV * D], "bias", QT.F32))
            plan.append((p + "attn_v.bias", [HKV * D], "bias", QT.F32))
        plan.append((p + "attn_output.weight", [H * D, E], "mat", pick(QT.Q4_K, QT.Q4_K)))
        if arch == "gpt-oss":
            plan.append((p + "attn_output.bias", [E], "bias", QT.F32))
            plan.append((p + "attn_sinks.weight", [H], "sinks", QT.F32))
            plan.append((p + "post_attention_norm.weight", [E], "norm", QT.F32))
            X, _, FE = MOE[arch]
            mx = pick(None, QT.MXFP4)
            plan += [(p + "ffn_gate_inp.weight", [E, X], "router", QT.F32),
                     (p + "ffn_gate_inp.bias", [X], "bias", QT.F32),
                     (p + "ffn_gate_exps.weight", [E, FE, X], "mat", mx),
                     (p + "ffn_gate_exps.bias", [FE, X], "bias", QT.F32),
                     (p + "ffn_up_exps.weight", [E, FE, X], "mat", mx),
                     (p + "ffn_up_exps.bias", [FE, X], "bias", QT.F32),
                     (p + "ffn_down_exps.weight", [FE, E, X], "mat", mx),
                     (p + "ffn_down_exps.bias", [E, X], "bias", QT.F32)]
            continue
        if arch in ("gemma3", "qwen3", "qwen3moe"):
            plan.append((p + "attn_q_norm.weight", [D], "norm", QT.F32))
            plan.append((p + "attn_k_norm.weight", [D], "norm", QT.F32))
        if arch == "olmo2":                   # q and k normed over the whole row
            plan.append((p + "attn_q_norm.weight", [H * D], "norm", QT.F32))
            plan.append((p + "attn_k_norm.weight", [HKV * D], "norm", QT.F32))
        if gemma or arch == "olmo2":
            plan.append((p + "post_attention_norm.weight", [E], "norm", QT.F32))
        if arch != "olmo2":
            plan.append((p + "ffn_norm.weight", [E], "norm", QT.F32))
        if arch in MOE:
            X, _, FE = MOE[arch]
            plan.append((p + "ffn_gate_inp.weight", [E, X], "mat", QT.F32))
            plan.append((p + "ffn_gate_exps.weight", [E, FE, X], "mat", pick(None, QT.Q4_K)))
            plan.append((p + "ffn_up_exps.weight", [E, FE, X], "mat", pick(None, QT.Q4_K)))
            plan.append((p + "ffn_down_exps.weight", [FE, E, X], "mat", pick(None, QT.Q6_K)))
            if arch in SHEXP:
                FS = SHEXP[arch]
                plan.append((p + "ffn_gate_inp_shexp.weight", [E], "mat", QT.F32))
                plan.append((p + "ffn_gate_shexp.weight", [E, FS], "mat", pick(None, QT.Q4_K)))
                plan.append((p + "ffn_up_shexp.weight", [E, FS], "mat", pick(None, QT.Q4_K)))
                plan.append((p + "ffn_down_shexp.weight", [FS, E], "mat", pick(None, QT.Q8_0)))
            continue
        if arch == "phi3":
            plan.append((p + "ffn_up.weight", [E, 2 * F], "mat", pick(None, QT.Q4_K)))
        else:
            plan.append((p + "ffn_gate.weight", [E, F], "mat", pick(QT.Q5_0, QT.Q4_K)))
            plan.append((p + "ffn_up.weight", [E, F], "mat", pick(QT.Q5_0, QT.Q4_K)))
        plan.append((p + "ffn_down.weight", [F, E], "mat", pick(QT.Q6_K, QT.Q6_K if even else QT.Q5_K)))
        if gemma or arch == "olmo2":
            plan.append((p + "post_ffw_norm.weight", [E], "norm", QT.F32))
    plan.append(("output_norm.weight", [E], "norm", QT.F32))
    if arch not in TIED:
        plan.append(("output.weight", [E, V], "mat", pick(None, QT.Q6_K)))
    return plan


def bert_metadata(arch, tname, n_layer, pooling):
    """The keys of a BertModel conversion: TextModel's hyperparameters,
    causal attention off, the pooling type, then the WordPiece vocabulary
    and its special tokens (gguf.SpecialVocab's keys).  nomic-bert adds its
    RoPE base (nomic-embed-text: 1000)."""
    E, F, H, _, _ = SHAPES[arch]
    tokens, types = wpm_vocab()
    a = arch
    rope = [(f"{a}.rope.freq_base", VT.FLOAT32, 1000.0, None)] if arch == "nomic-bert" else []
    return [
        ("general.type", VT.STRING, "model", None),
        ("general.name", VT.STRING, f"lamina tiny {arch} {tname}", None),
        (f"{a}.block_count", VT.UINT32, n_layer, None),
        (f"{a}.context_length", VT.UINT32, 512, None),
        (f"{a}.embedding_length", VT.UINT32, E, None),
        (f"{a}.feed_forward_length", VT.UINT32, F, None),
        (f"{a}.attention.head_count", VT.UINT32, H, None),
        (f"{a}.attention.layer_norm_epsilon", VT.FLOAT32, 1e-12, None),
        ("general.file_type", VT.UINT32, FILE_TYPE[tname], None),
    ] + rope + [
        (f"{a}.attention.causal", VT.BOOL, False, None),
        (f"{a}.pooling_type", VT.UINT32, POOLING[pooling], None),
        ("tokenizer.ggml.token_type_count", VT.UINT32, 2, None),
        ("tokenizer.ggml.model", VT.STRING, "bert", None),
        ("tokenizer.ggml.pre", VT.STRING, "default", None),
        ("tokenizer.ggml.tokens", VT.ARRAY, tokens, VT.STRING),
        ("tokenizer.ggml.token_type", VT.ARRAY, types, VT.INT32),
        ("tokenizer.ggml.bos_token_id", VT.UINT32, tokens.index("[CLS]"), None),
        ("tokenizer.ggml.unknown_token_id", VT.UINT32, tokens.index("[UNK]"), None),
        ("tokenizer.ggml.seperator_token_id", VT.UINT32, tokens.index("[SEP]"), None),
        ("tokenizer.ggml.padding_token_id", VT.UINT32, tokens.index("[PAD]"), None),
        ("tokenizer.ggml.cls_token_id", VT.UINT32, tokens.index("[CLS]"), None),
        ("tokenizer.ggml.mask_token_id", VT.UINT32, tokens.index("[MASK]"), None),
        ("tokenizer.ggml.add_bos_token", VT.BOOL, True, None),
        ("tokenizer.ggml.add_eos_token", VT.BOOL, True, None),
    ]


def metadata(arch, tname, n_layer, pooling="mean"):
    """[(key, GGUFValueType, value, array element type or None)] after
    general.architecture (which the writer adds first)."""
    if arch in ENCODER:
        return bert_metadata(arch, tname, n_layer, pooling)
    E, F, H, HKV, D = SHAPES[arch]
    kv = [
        ("general.type", VT.STRING, "model", None),
        # (llama.cpp sets token attributes by the model name: a name with
        # "phi3" in it must have Phi-3's "</s>", which this vocabulary has not)
        ("general.name", VT.STRING, f"lamina tiny {arch.replace('phi3', 'phi-iii')} {tname}", None),
        ("general.file_type", VT.UINT32, FILE_TYPE[tname], None),
        ("general.quantization_version", VT.UINT32, 2, None),
    ]
    a = GGUF_ARCH.get(arch, arch)
    kv += [
        (f"{a}.context_length", VT.UINT32, 131072 if arch == "phi3" else 512, None),
        (f"{a}.embedding_length", VT.UINT32, E, None),
        (f"{a}.block_count", VT.UINT32, n_layer, None),
        (f"{a}.feed_forward_length", VT.UINT32, F, None),
        (f"{a}.attention.head_count", VT.UINT32, H, None),
    ]
    if arch in GEMMA:
        kv += [
            (f"{a}.attention.head_count_kv", VT.UINT32, HKV, None),
            (f"{a}.attention.key_length", VT.UINT32, D, None),
            (f"{a}.attention.value_length", VT.UINT32, D, None),
            (f"{a}.attention.layer_norm_rms_epsilon", VT.FLOAT32, 1e-6, None),
            (f"{a}.rope.freq_base", VT.FLOAT32, 1000000.0 if arch == "gemma3" else 10000.0, None),
            (f"{a}.attention.sliding_window", VT.UINT32, 8, None),
        ]
        if arch == "gemma2":
            kv += [
                (f"{a}.attn_logit_softcapping", VT.FLOAT32, 50.0, None),
                (f"{a}.final_logit_softcapping", VT.FLOAT32, 30.0, None),
            ]
    else:
        kv += [(f"{a}.attention.head_count_kv", VT.UINT32, HKV, None)]
        if arch in ("qwen3", "qwen3moe", "gpt-oss"):
            kv += [(f"{a}.attention.key_length", VT.UINT32, D, None),
                   (f"{a}.attention.value_length", VT.UINT32, D, None)]
        if arch in MOE:
            X, K, FE = MOE[arch]
            kv += [(f"{a}.expert_count", VT.UINT32, X, None),
                   (f"{a}.expert_used_count", VT.UINT32, K, None),
                   (f"{a}.expert_feed_forward_length", VT.UINT32, FE, None)]
        if arch in SHEXP:
            kv += [(f"{a}.expert_shared_feed_forward_length", VT.UINT32, SHEXP[arch], None)]
        kv += [
            (f"{a}.rope.dimension_count", VT.UINT32, PHI3_ROT if arch == "phi3" else D, None),
            (f"{a}.rope.freq_base", VT.FLOAT32,
             1000000.0 if arch in QWEN else 10000.0 if arch == "phi3" else
             150000.0 if arch == "gpt-oss" else 500000.0, None),
            (f"{a}.attention.layer_norm_rms_epsilon", VT.FLOAT32,
             1e-6 if arch in QWEN else 1e-5, None),
        ]
        if arch == "phi3":
            # LongRoPE as the 128k models have it: short and long factors,
            # the original context, and the attention factor
            kv += [(f"{a}.rope.scaling.original_context_length", VT.UINT32, 4096, None),
                   (f"{a}.rope.scaling.attn_factor", VT.FLOAT32, 1.1902380714238083, None)]
        if arch in ("llama", "llama3"):
            kv += [(f"{a}.vocab_size", VT.UINT32, N_VOCAB, None)]
        if arch == "granite":
            kv += [(f"{a}.{k}", VT.FLOAT32, v, None) for k, v in GRANITE.items()]
        if arch == "gpt-oss":
            kv += [(f"{a}.attention.sliding_window", VT.UINT32, 8, None),
                   (f"{a}.rope.scaling.type", VT.STRING, "yarn", None),
                   (f"{a}.rope.scaling.factor", VT.FLOAT32, 32.0, None),
                   (f"{a}.rope.scaling.original_context_length", VT.UINT32, 4096, None)]
    if arch in SPM:
        tokens, scores, types = spm_vocab()
        kv += [
            ("tokenizer.ggml.model", VT.STRING, "llama", None),
            ("tokenizer.ggml.pre", VT.STRING, "default", None),
            ("tokenizer.ggml.tokens", VT.ARRAY, tokens, VT.STRING),
            ("tokenizer.ggml.scores", VT.ARRAY, scores, VT.FLOAT32),
            ("tokenizer.ggml.token_type", VT.ARRAY, types, VT.INT32),
            ("tokenizer.ggml.bos_token_id", VT.UINT32, tokens.index("<bos>"), None),
            ("tokenizer.ggml.eos_token_id", VT.UINT32, tokens.index("<eos>"), None),
            ("tokenizer.ggml.unknown_token_id", VT.UINT32, tokens.index("<unk>"), None),
            ("tokenizer.ggml.padding_token_id", VT.UINT32, tokens.index("<pad>"), None),
            ("tokenizer.ggml.add_bos_token", VT.BOOL, True, None),
            ("tokenizer.ggml.add_eos_token", VT.BOOL, False, None),
            ("tokenizer.ggml.add_space_prefix", VT.BOOL, False, None),
        ]
    else:
        no_bos = arch in QWEN or arch == "gpt-oss"
        tokens, types, merges = bpe_vocab()
        kv += [
            ("tokenizer.ggml.model", VT.STRING, "gpt2", None),
            ("tokenizer.ggml.pre", VT.STRING, PRE.get(arch, "qwen2" if no_bos else "llama-bpe"), None),
            ("tokenizer.ggml.tokens", VT.ARRAY, tokens, VT.STRING),
            ("tokenizer.ggml.token_type", VT.ARRAY, types, VT.INT32),
            ("tokenizer.ggml.merges", VT.ARRAY, merges, VT.STRING),
            ("tokenizer.ggml.bos_token_id", VT.UINT32, tokens.index("<|begin_of_text|>"), None),
            ("tokenizer.ggml.eos_token_id", VT.UINT32, tokens.index("<|end_of_text|>"), None),
            ("tokenizer.ggml.add_bos_token", VT.BOOL, not no_bos, None),
        ]
    return kv


# --rerank: the Qwen3-Reranker additions (conversion/qwen.py, Qwen3Model)
RERANK_TEMPLATE = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
    "<|im_start|>user\n<Instruct>: Given a web search query, retrieve relevant passages that answer the query\n"
    "<Query>: {query}\n<Document>: {document}<|im_end|>\n"
    "<|im_start|>assistant\n<think>\n\n</think>\n\n")
RERANK_LABELS = ["yes", "no"]         # cls.output.weight rows, in this order
BERT_RERANK_LABELS = ["LABEL_0"]      # a cross-encoder's single relevance logit


def rerank_metadata(arch):
    """The keys llama.cpp's converter adds for a Qwen3 reranker, in its
    order: gguf_writer add_pooling_type(RANK), add_classifier_output_labels,
    add_chat_template([{"name": "rerank", ...}]) (which writes
    tokenizer.chat_template.<name> and the list tokenizer.chat_templates)."""
    if arch in ENCODER:               # set_gguf_parameters: pooling, then the labels
        return [(f"{arch}.classifier.output_labels", VT.ARRAY, BERT_RERANK_LABELS, VT.STRING)]
    return [
        (f"{arch}.pooling_type", VT.UINT32, int(gguf.PoolingType.RANK), None),
        (f"{arch}.classifier.output_labels", VT.ARRAY, RERANK_LABELS, VT.STRING),
        ("tokenizer.chat_template.rerank", VT.STRING, RERANK_TEMPLATE, None),
        ("tokenizer.chat_templates", VT.ARRAY, ["rerank"], VT.STRING),
    ]


def rerank_label_ids(tokens):
    """Token ids whose embedding rows make the classifier head: the tokens
    "yes" / "no" when the vocabulary has them (it has not: the tiny BPE
    vocab never merged them), else the single-byte tokens "y" / "n"."""
    if all(t in tokens for t in RERANK_LABELS):
        return [tokens.index(t) for t in RERANK_LABELS]
    return [tokens.index(t[0]) for t in RERANK_LABELS]


def weights(rng, ne, kind):
    shape = tuple(reversed(ne))                   # numpy (rows, ne0)
    if kind == "norm":
        return (1.0 + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    if kind == "rope_llama3":
        return llama3_rope_freqs(2 * ne[0], 500000.0)
    if kind == "rope_short":                      # LongRoPE divisors, rising
        return np.linspace(1.0, 2.5, ne[0]).astype(np.float32) + 0.05 * rng.random(ne[0]).astype(np.float32)
    if kind == "rope_long":
        return np.linspace(1.0, 40.0, ne[0]).astype(np.float32)
    if kind == "bias":
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    if kind == "router":                          # decisive: gaps between the top experts
        return ((3.0 / np.sqrt(ne[0])) * rng.standard_normal(shape)).astype(np.float32)  # well above rounding
    if kind == "sinks":                           # logits near the scores' own range
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "embd":
        return (0.05 * rng.standard_normal(shape)).astype(np.float32)
    return ((0.5 / np.sqrt(ne[0])) * rng.standard_normal(shape)).astype(np.float32)


def metadata_tokens(meta):
    """tokenizer.ggml.tokens out of a metadata() list."""
    return next(v for k, _, v, _ in meta if k == "tokenizer.ggml.tokens")


def manifest_value(vt, v, sub):
    if vt == VT.FLOAT32:
        return float(np.float32(v))
    if vt == VT.BOOL:
        return bool(v)
    if vt == VT.ARRAY:
        return [manifest_value(sub, e, None) for e in v]
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=list(SHAPES), default="gemma3")
    ap.add_argument("--type", dest="tname", choices=list(TYPES) + ["mixed"], default="mixed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layers", type=int, default=None,
                    help="number of blocks (default: gemma3 6, the others 4)")
    ap.add_argument("--out", required=True, help="GGUF file to write")
    ap.add_argument("--manifest", help="also write a JSON manifest here")
    ap.add_argument("--context", type=int, default=None,
                    help="context_length to store (default 512; phi3 131072)")
    ap.add_argument("--chat-template", metavar="FILE",
                    help="store this Jinja chat template as tokenizer.chat_template")
    ap.add_argument("--rerank", action="store_true",
                    help="make a reranker: qwen3 a Qwen3-Reranker, bert a cross-encoder (rank pooling, "
                         "classifier head)")
    ap.add_argument("--pooling", choices=list(POOLING), default="mean",
                    help="bert: the pooling type the file names (default mean)")
    ap.add_argument("--fim", action="store_true",
                    help="name fill-in-the-middle tokens (tokenizer.ggml.fim_{pre,suf,mid}_token_id): "
                         "the tokens of the bytes 0x01, 0x02, 0x03 (byte-level BPE vocabularies only)")
    args = ap.parse_args(argv)
    if args.fim and args.arch in ("gemma3", "gemma2") + ENCODER:
        ap.error("--fim needs a byte-level BPE vocabulary (not gemma)")
    if args.rerank and args.arch not in ("qwen3", "bert"):
        ap.error("--rerank needs --arch qwen3 or bert")
    n_layer = args.layers if args.layers is not None else (6 if args.arch == "gemma3" else 4)
    if n_layer < 1 or n_layer > 64:
        ap.error("--layers must be in 1..64")

    rng = np.random.default_rng(args.seed)
    w = gguf.GGUFWriter(args.out, GGUF_ARCH.get(args.arch, args.arch))
    kvs = [("general.architecture", VT.STRING, GGUF_ARCH.get(args.arch, args.arch), None)]
    meta = metadata(args.arch, args.tname, n_layer, args.pooling)
    if args.context:
        meta = [(k, vt, args.context if k.endswith(".context_length") and "scaling" not in k else v, sub)
                for k, vt, v, sub in meta]
    if args.chat_template:
        with open(args.chat_template, encoding="utf-8") as f:
            meta.append(("tokenizer.chat_template", VT.STRING, f.read(), None))
    if args.fim:
        # the full vocabulary has no spare token: three control-byte tokens stand in
        toks, b2u = metadata_tokens(meta), byte_to_unicode()
        for i, k in enumerate(("pre", "suf", "mid")):
            meta.append((f"tokenizer.ggml.fim_{k}_token_id", VT.UINT32, toks.index(b2u[i + 1]), None))
    if args.rerank and args.arch == "bert":
        # pooling RANK; a BERT tokenizer.json's pair template as gguf-py's
        # SpecialVocab reads it: EOS is [SEP], added; no separate SEP
        sep = metadata_tokens(meta).index("[SEP]")
        meta = [(k, vt, int(gguf.PoolingType.RANK) if k.endswith(".pooling_type") else v, sub)
                for k, vt, v, sub in meta]
        at = next(i for i, kv in enumerate(meta) if kv[0] == "tokenizer.ggml.unknown_token_id")
        meta[at:at] = [("tokenizer.ggml.eos_token_id", VT.UINT32, sep, None)]
        meta.append(("tokenizer.ggml.add_sep_token", VT.BOOL, False, None))
    if args.rerank:
        # after the architecture keys, before the tokenizer (converter order)
        at = next(i for i, kv in enumerate(meta) if kv[0].startswith("tokenizer."))
        meta[at:at] = rerank_metadata(args.arch)
    for key, vt, val, sub in meta:
        w.add_key_value(key, val, vt, sub_type=sub)
        kvs.append((key, vt, val, sub))

    tensors = []
    n_ctx = args.context if args.context else 512
    plan = tensor_plan(args.arch, n_layer, args.tname, n_ctx)
    if args.rerank and args.arch == "bert":
        # the classifier (classifier.dense, classifier.out_proj), last
        E = SHAPES[args.arch][0]
        mat = QT.Q8_0 if args.tname == "mixed" else TYPES[args.tname]
        plan += [("cls.weight", [E, E], "mat", mat), ("cls.bias", [E], "bias", QT.F32),
                 ("cls.output.weight", [E, len(BERT_RERANK_LABELS)], "mat", QT.F32),
                 ("cls.output.bias", [len(BERT_RERANK_LABELS)], "bias", QT.F32)]
    for name, ne, kind, qt in plan:
        x = weights(rng, ne, kind)
        if x.ndim == 3:                     # one matrix per expert: rows of all
            arr, raw = encode(x.reshape(-1, x.shape[-1]), qt)
            arr = arr.reshape(x.shape[0], x.shape[1], -1)
        else:
            arr, raw = encode(x, qt)
        arr = np.ascontiguousarray(arr)
        w.add_tensor(name, arr, raw_dtype=raw)
        tensors.append({"name": name, "type": int(qt), "ne": ne, "size": int(arr.nbytes),
                        "crc32": zlib.crc32(arr.tobytes())})
        if args.rerank and args.arch == "qwen3" and name == "token_embd.weight":
            # the classifier head: the label tokens' embedding rows as the
            # file stores them (dequantized), F32, ne [n_embd, 2]; no draw
            # from rng, so the other tensors stay as without --rerank
            ids = rerank_label_ids(metadata_tokens(meta))
            embd = gguf.quants.dequantize(arr, qt).reshape(x.shape)
            cls = np.ascontiguousarray(embd[ids].astype(np.float32))
            w.add_tensor("cls.output.weight", cls)
            tensors.append({"name": "cls.output.weight", "type": int(QT.F32), "ne": [ne[0], len(ids)],
                            "size": int(cls.nbytes), "crc32": zlib.crc32(cls.tobytes())})

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    if args.manifest:
        # absolute offsets: read back the layout the writer chose
        r = gguf.GGUFReader(args.out)
        by_name = {t.name: t for t in r.tensors}
        for t in tensors:
            rt = by_name[t["name"]]
            if int(rt.tensor_type) != t["type"] or [int(v) for v in rt.shape] != t["ne"] or int(rt.n_bytes) != t["size"]:
                raise AssertionError(f"read-back mismatch for {t['name']}")
            t["offset"] = int(rt.data_offset)
        man = {
            "version": 3,
            "alignment": 32,
            "data_offset": int(r.data_offset),
            "kv": [{"key": k, "type": int(vt), "elem_type": (int(sub) if sub is not None else None),
                    "value": manifest_value(vt, v, sub)} for k, vt, v, sub in kvs],
            "tensors": tensors,
        }
        with open(args.manifest, "w", encoding="utf-8") as f:
            json.dump(man, f, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
