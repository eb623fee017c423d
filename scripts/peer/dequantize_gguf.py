#!/usr/bin/env python3
"""Write a copy of a GGUF model with every tensor dequantized to F32.

The metadata is copied key by key; each tensor becomes the F32 values
gguf.quants.dequantize gives for it (what lamina's reference computes
with, since dequantization is exact in single precision).  llama.cpp run
on the copy multiplies F32 weights with F32 activations: no rounding of
activations to 8 bits before dot products, which its CPU backend always
does for quantized weights.  That run, with an F32 KV cache and without
flash attention, is the tight reference of tests/engine/golden_check.c.

usage: dequantize_gguf.py IN.gguf OUT.gguf
"""
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as VT


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    r = gguf.GGUFReader(argv[1])
    arch = r.get_field("general.architecture").contents()
    w = gguf.GGUFWriter(argv[2], arch)
    for name, field in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vt = VT(field.types[0])
        sub = VT(field.types[1]) if vt == VT.ARRAY and len(field.types) > 1 else None
        val = field.contents()
        if name == "general.file_type":
            val = 0                                  # all F32
        w.add_key_value(name, val, vt, sub_type=sub)
    for t in r.tensors:
        x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        # numpy shape: rows last-dimension-first, as GGUF stores them
        x = x.reshape([int(d) for d in reversed(t.shape)])
        w.add_tensor(t.name, np.ascontiguousarray(x))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
