#!/usr/bin/env python3
"""Write a small unigram (UGM) vocabulary as a vocabulary-only GGUF file.

A SentencePiece unigram model is trained here, on text this script makes
up (Latin words with accents, Cyrillic, Greek, CJK, digits, punctuation,
runs of spaces), with SentencePiece's nmt_nfkc normalization, no byte
fallback, XLM-RoBERTa's special ids (<s> 0, <pad> 1, </s> 2, <unk> 3), two
user-defined symbols and a <mask> control token appended at the end.
The GGUF holds what llama.cpp's converter writes for T5 and XLM-RoBERTa
vocabularies (tokenizer.ggml.model "t5"; tokens, scores, token types from
the SentencePiece model; add_space_prefix and remove_extra_whitespaces from
its normalizer spec; the precompiled charsmap as a uint8 array; the
special ids and add_bos/add_eos as an XLM-RoBERTa file has them), under a
small "bert" header, and no tensors.

Training is deterministic (fixed seeds, one thread, no sampling of the
input), so the same SentencePiece version writes the same bytes: the test
that uses it (tests/tok/ugm_golden.sh) compares the file's sha256 with the
one recorded in tests/golden/tiny-ugm-tokenizer.json.

With --onto MODEL.gguf the vocabulary replaces MODEL's tokenizer instead
(every tokenizer.* key but token_type_count; metadata and tensors copied):
an XLM-RoBERTa-style encoder from make_tiny_model.py --arch bert, whose
512-row embedding takes --vocab-size 511 (the pieces, then <mask>).

usage: make_ugm_vocab.py OUT.gguf [--vocab-size N] [--model-out FILE.model]
                         [--onto MODEL.gguf]
"""
import argparse
import io
import os
import random
import struct
import sys

SPECIAL = {"bos": 0, "pad": 1, "eos": 2, "unk": 3}
USER_SYMBOLS = ["<url>", "<br>"]

LATIN = ["ka", "re", "lo", "mi", "tan", "ber", "sol", "vi", "ne", "da", "gor", "pe", "ul",
         "é", "è", "ê", "à", "ç", "ñ", "ö", "ü", "ä", "ß", "ø", "å", "ł", "ś", "ž", "č", "ă",
         "the", "and", "ing", "tion", "er", "st", "qu", "ch", "sch", "ei", "ou", "ie"]
CYRILLIC = ["ка", "ро", "ми", "ст", "ль", "жи", "щу", "ый", "на", "по", "ве", "ск", "ов",
            "ени", "при", "то", "да", "ть", "ся", "юр", "эт", "ё"]
GREEK = ["κα", "λο", "μη", "τι", "σο", "ερ", "ου", "ος", "πα", "ρι", "ή", "ώ"]
CJK = ("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着"
       "去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行"
       "方又如前所本见经头面公同三已老从动两长日本語東京大阪水火木金土山川田中村")
KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
WORDS = ("the quick brown fox jumps over lazy dog hello world what which who why how sphinx of "
         "black quartz judge my vow pack box with five dozen liquor jugs waltz nymph for quick "
         "jigs vex café naïve über straße niño façade déjà vu crème brûlée Zürich São Paulo "
         "Ångström Øresund Kraków Dvořák Bjørk señor garçon coöperate résumé fiancée piñata "
         "Москва привет мир Αθήνα καλημέρα 東京 北京 こんにちは 世界").split()
PUNCT = [",", ".", ";", ":", "!", "?", "(", ")", "\"", "'", "-", "«", "»", "—", "…", "%", "/"]


def make_text(seed, n_lines):
    """Made-up multilingual lines, the same for the same seed."""
    rnd = random.Random(seed)

    def word(parts, lo, hi):
        return "".join(rnd.choice(parts) for _ in range(rnd.randint(lo, hi)))

    lines = []
    for i in range(n_lines):
        kind = i % 6
        words = []
        for _ in range(rnd.randint(3, 14)):
            r = rnd.random()
            if kind == 0 and r < 0.5:
                w = rnd.choice(WORDS)
                if rnd.random() < 0.2:
                    w = w.capitalize()
            elif kind == 0 or (kind == 5 and r < 0.3):
                w = word(LATIN, 1, 4)
                if rnd.random() < 0.2:
                    w = w.capitalize()
            elif kind == 1 or (kind == 5 and r < 0.5):
                w = word(CYRILLIC, 1, 4)
            elif kind == 2:
                w = word(GREEK, 1, 3)
            elif kind == 3 or (kind == 5 and r < 0.7):
                w = "".join(rnd.choice(CJK) for _ in range(rnd.randint(1, 6)))
                if rnd.random() < 0.3:
                    w += "".join(rnd.choice(KANA) for _ in range(rnd.randint(1, 3)))
            elif kind == 4 or (kind == 5 and r < 0.9):
                n = rnd.randint(0, 99999)
                w = rnd.choice([str(n), "%d.%02d" % (n, rnd.randint(0, 99)), "%d-%02d-%02d" %
                                (1900 + n % 200, 1 + n % 12, 1 + n % 28), "№%d" % n])
            else:
                w = rnd.choice(USER_SYMBOLS)
            if rnd.random() < 0.15:
                w += rnd.choice(PUNCT)
            words.append(w)
        sep = "  " if rnd.random() < 0.1 else " "
        lines.append(sep.join(words))
    return lines


def train(vocab_size, seed):
    """A SentencePiece unigram model (serialized ModelProto bytes)."""
    import sentencepiece as spm
    spm.set_random_generator_seed(seed)
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(make_text(seed, 4000)), model_writer=out,
        model_type="unigram", vocab_size=vocab_size, normalization_rule_name="nmt_nfkc",
        byte_fallback=False, character_coverage=0.9995, num_threads=1,
        input_sentence_size=0, shuffle_input_sentence=False,
        bos_id=SPECIAL["bos"], pad_id=SPECIAL["pad"], eos_id=SPECIAL["eos"],
        unk_id=SPECIAL["unk"], user_defined_symbols=USER_SYMBOLS,
        add_dummy_prefix=True, remove_extra_whitespaces=True, hard_vocab_limit=False,
        minloglevel=2)
    return out.getvalue()


def proto_fields(buf):
    """(field number, wire type, value) of one protobuf message: varints as
    ints, length-delimited fields as bytes, fixed32 as 4 bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        else:
            raise ValueError("protobuf wire type %d" % wt)
        yield num, wt, v


def varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def vocab_of(model_bytes):
    """tokens, scores, token types and the normalizer's settings, read from
    the ModelProto as llama.cpp's converter reads them (pieces: field 1,
    each piece 1, score 2, type 3; normalizer_spec: field 3, with
    precompiled_charsmap 2, add_dummy_prefix 3, remove_extra_whitespaces 4).
    SentencePiece's piece types map to GGUF's (USER_DEFINED kept, as a
    tokenizer.json's added tokens are)."""
    import gguf
    T = gguf.TokenType
    by_sp_type = {1: T.NORMAL, 2: T.UNKNOWN, 3: T.CONTROL, 4: T.USER_DEFINED, 5: T.UNUSED,
                  6: T.BYTE}
    tokens, scores, types = [], [], []
    charsmap, add_prefix, remove_ws = b"", True, True
    for num, _, v in proto_fields(model_bytes):
        if num == 1:
            piece, score, ty = b"", 0.0, 1
            for n2, _, v2 in proto_fields(v):
                if n2 == 1:
                    piece = bytes(v2)
                elif n2 == 2:
                    score = struct.unpack("<f", v2)[0]
                elif n2 == 3:
                    ty = v2
            tokens.append(piece)
            scores.append(score)
            types.append(int(by_sp_type[ty]))
        elif num == 3:
            for n2, _, v2 in proto_fields(v):
                if n2 == 2:
                    charsmap = bytes(v2)
                elif n2 == 3:
                    add_prefix = bool(v2)
                elif n2 == 4:
                    remove_ws = bool(v2)
    # XLM-RoBERTa's <mask> comes after the SentencePiece pieces
    tokens.append(b"<mask>")
    scores.append(0.0)
    types.append(int(T.CONTROL))
    return tokens, scores, types, charsmap, add_prefix, remove_ws


def write_gguf(path, tokens, scores, types, charsmap, add_prefix, remove_ws):
    import gguf
    w = gguf.GGUFWriter(path, "bert")
    w.add_context_length(512)
    w.add_embedding_length(32)
    w.add_feed_forward_length(64)
    w.add_block_count(1)
    w.add_head_count(2)
    w.add_layer_norm_eps(1e-5)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.CLS)
    w.add_tokenizer_model("t5")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_add_space_prefix(add_prefix)
    w.add_token_type_count(1)
    w.add_remove_extra_whitespaces(remove_ws)
    w.add_precompiled_charsmap(charsmap)
    w.add_bos_token_id(SPECIAL["bos"])
    w.add_eos_token_id(SPECIAL["eos"])
    w.add_unk_token_id(SPECIAL["unk"])
    w.add_sep_token_id(SPECIAL["eos"])
    w.add_pad_token_id(SPECIAL["pad"])
    w.add_mask_token_id(len(tokens) - 1)
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_onto(path, model, vocab):
    """MODEL's metadata and tensors, with the unigram vocabulary's
    tokenizer keys in place of its own."""
    import gguf
    import numpy as np
    tokens = vocab[0]
    src = gguf.GGUFReader(model)
    arch = src.fields["general.architecture"].contents()
    n_model = len(src.fields["tokenizer.ggml.tokens"].data)
    if n_model != len(tokens):
        raise SystemExit("make_ugm_vocab: %s has %d tokens, the vocabulary %d (--vocab-size %d)"
                         % (model, n_model, len(tokens), n_model - 1))
    tmp = path + ".vocab.tmp"
    write_gguf(tmp, *vocab)
    voc = gguf.GGUFReader(tmp)
    w = gguf.GGUFWriter(path, arch)

    def copy(r, keep):
        for k, f in r.fields.items():
            if k.startswith("GGUF.") or k == "general.architecture" or not keep(k):
                continue
            vt = f.types[0]
            if vt == gguf.GGUFValueType.ARRAY:
                sub = f.types[-1]
                if sub == gguf.GGUFValueType.STRING:
                    val = [bytes(f.parts[i]) for i in f.data]
                elif sub == gguf.GGUFValueType.UINT8:
                    val = np.concatenate([f.parts[i] for i in f.data]).tobytes()
                else:
                    val = [f.parts[i][0].item() for i in f.data]
                w.add_key_value(k, val, vt, sub_type=sub)
            else:
                w.add_key_value(k, f.contents(), vt)

    def own(k):
        return k.startswith("tokenizer.") and k != "tokenizer.ggml.token_type_count"
    copy(src, lambda k: not own(k))
    copy(voc, own)
    for t in src.tensors:
        w.add_tensor(t.name, np.array(t.data), raw_shape=[int(x) for x in reversed(t.shape)],
                     raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.unlink(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="the GGUF file to write")
    ap.add_argument("--vocab-size", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model-out", help="also write the SentencePiece model here")
    ap.add_argument("--onto", metavar="MODEL", help="put the vocabulary into this model's copy")
    a = ap.parse_args()
    model = train(a.vocab_size, a.seed)
    if a.model_out:
        with open(a.model_out, "wb") as f:
            f.write(model)
    if a.onto:
        write_onto(a.out, a.onto, vocab_of(model))
    else:
        write_gguf(a.out, *vocab_of(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
