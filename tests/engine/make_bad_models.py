#!/usr/bin/env python3
"""Write broken variants of a valid GGUF model, one per kind of bad input
the engine must refuse with a clear one-line error.

usage: make_bad_models.py GOOD.gguf OUTDIR [MOE.gguf [GPTOSS.gguf [BERT.gguf]]]
writes OUTDIR/<case>.gguf for each case below (with MOE.gguf, a qwen2moe
model, also its shared-expert cases; with GPTOSS.gguf, a gpt-oss model,
its sinks and YaRN cases; with BERT.gguf its token types) and prints "<case> <what>
<where>" lines (tab-separated) for the test to check: the error must be the
one line "lamina: OUTDIR/<case>.gguf: ..." containing <what> (what was
wrong, naming the key, tensor or value), and when <where> is "offset" it
must end with the file offset, "(offset N)".
"""
import sys
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGUFReader, GGUFWriter, GGUFValueType, GGMLQuantizationType


def field_value(f):
    t = f.types[0]
    if t == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8"), t, None
    if t == GGUFValueType.ARRAY:
        st = f.types[1]
        if st == GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8", "surrogateescape") for i in f.data], t, st
        return [f.parts[i].tolist()[0] for i in f.data], t, st
    return f.parts[f.data[0]].tolist()[0], t, None


def rewrite(src, dst, drop_keys=(), set_keys=None, retype=None, drop_tensors=()):
    r = GGUFReader(src)
    arch = field_value(r.fields["general.architecture"])[0]
    if set_keys and "general.architecture" in set_keys:
        arch = set_keys["general.architecture"][0]
    w = GGUFWriter(dst, arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name in drop_keys or name == "general.architecture":
            continue
        if set_keys and name in set_keys:
            continue
        val, t, st = field_value(f)
        if t == GGUFValueType.STRING and isinstance(val, str):
            w.add_key_value(name, val, t)
        elif t == GGUFValueType.ARRAY:
            w.add_key_value(name, val, t, st)
        else:
            w.add_key_value(name, val, t)
    for name, (val, t, st) in (set_keys or {}).items():
        if name == "general.architecture":
            continue
        w.add_key_value(name, val, t, st)
    for t in r.tensors:
        if t.name in drop_tensors:
            continue
        ttype = t.tensor_type
        if retype and t.name in retype:
            ttype = retype[t.name]
        data = np.asarray(t.data)
        if ttype in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
            w.add_tensor(t.name, data, raw_dtype=ttype)
        else:   # quantized: the reader gives bytes shaped [rows, row bytes]
            data = data.view(np.uint8)
            if ttype != t.tensor_type:
                # the same elements per row in the new type's row bytes, so
                # the file stays well-formed
                blk, size = GGML_QUANT_SIZES[ttype]
                rb = int(t.shape[0]) // blk * size
                row = np.zeros((data.shape[0], rb), np.uint8)
                row[:, :min(rb, data.shape[1])] = data[:, :rb]
                data = row
            w.add_tensor(t.name, data, raw_dtype=ttype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    good, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    r = GGUFReader(good)
    arch = field_value(r.fields["general.architecture"])[0]
    q40 = next((t.name for t in r.tensors if t.tensor_type == GGMLQuantizationType.Q4_0), None)
    cases = []

    rewrite(good, out / "unknown_arch.gguf", set_keys={"general.architecture": ("mamba9", GGUFValueType.STRING, None)})
    cases.append(("unknown_arch", "unknown architecture 'mamba9'", ""))

    rewrite(good, out / "missing_key.gguf", drop_keys={f"{arch}.block_count"})
    cases.append(("missing_key", f"missing metadata key '{arch}.block_count'", ""))

    rewrite(good, out / "missing_tensor.gguf", drop_tensors={"blk.0.ffn_down.weight"})
    cases.append(("missing_tensor", "missing tensor 'blk.0.ffn_down.weight'", ""))

    rewrite(good, out / "no_vocab.gguf", drop_keys={"tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                                                     "tokenizer.ggml.token_type", "tokenizer.ggml.merges"})
    cases.append(("no_vocab", "no vocabulary: 'tokenizer.ggml.tokens' is missing or empty", ""))

    if q40:
        # the same bytes as I8, a GGML type lamina does not read: the reader
        # refuses it by number, with the tensor's name and offset
        rewrite(good, out / "unsupported_type.gguf", retype={q40: GGMLQuantizationType.I8})
        cases.append(("unsupported_type",
                      f"'{q40}': unsupported tensor type {int(GGMLQuantizationType.I8)}", "offset"))

    data = Path(good).read_bytes()
    (out / "truncated.gguf").write_bytes(data[: len(data) * 2 // 3])
    cases.append(("truncated", f"ends past end of file ({len(data) * 2 // 3} bytes)", "offset"))
    (out / "bad_magic.gguf").write_bytes(b"GGML" + data[4:])
    cases.append(("bad_magic", "bad magic 47 47 4d 4c (expected 'GGUF')", "offset"))

    if len(sys.argv) > 3:
        # a mixture of experts with a shared expert: a tensor of it missing,
        # and a width key that does not match its tensors
        moe = sys.argv[3]
        rewrite(moe, out / "moe_missing_shexp.gguf", drop_tensors={"blk.2.ffn_down_shexp.weight"})
        cases.append(("moe_missing_shexp", "missing tensor 'blk.2.ffn_down_shexp.weight'", ""))
        width = field_value(GGUFReader(moe).fields["qwen2moe.expert_shared_feed_forward_length"])[0]
        rewrite(moe, out / "moe_shexp_width.gguf",
                set_keys={"qwen2moe.expert_shared_feed_forward_length": (width // 2, GGUFValueType.UINT32, None)})
        cases.append(("moe_shexp_width", "ffn_gate_shexp.weight", ""))

    if len(sys.argv) > 5:
        # bert: token type rows that the tokenizer's count contradicts
        bert = sys.argv[5]
        rewrite(bert, out / "bert_token_types.gguf",
                set_keys={"tokenizer.ggml.token_type_count": (1, GGUFValueType.UINT32, None)})
        cases.append(("bert_token_types", "token_types.weight has 2 rows but tokenizer.ggml.token_type_count is 1",
                      ""))

    if len(sys.argv) > 4:
        # gpt-oss: a layer without its sinks; sinks of the wrong length; a
        # YaRN log multiplier (DeepSeek's), which lamina does not do
        oss = sys.argv[4]
        rewrite(oss, out / "oss_missing_sinks.gguf", drop_tensors={"blk.1.attn_sinks.weight"})
        cases.append(("oss_missing_sinks", "missing tensor 'blk.1.attn_sinks.weight'", ""))
        heads = field_value(GGUFReader(oss).fields["gpt-oss.attention.head_count"])[0]
        rewrite(oss, out / "oss_sinks_heads.gguf",
                set_keys={"gpt-oss.attention.head_count": (heads // 2, GGUFValueType.UINT32, None)})
        cases.append(("oss_sinks_heads", "attn_", ""))
        rewrite(oss, out / "oss_yarn_log.gguf",
                set_keys={"gpt-oss.rope.scaling.yarn_log_multiplier": (0.1, GGUFValueType.FLOAT32, None)})
        cases.append(("oss_yarn_log", "yarn_log_multiplier = 0.1: YaRN with a log multiplier", ""))

    for name, what, where in cases:
        print(f"{name}\t{what}\t{where}")


if __name__ == "__main__":
    main()
