#!/usr/bin/env python3
"""Bitwise agreement of runtime/ops/quant.c with the `gguf` Python package.

- dequantization: random blocks (scale fields forced to finite fp16 values)
  of every type gguf.quants can dequantize, ours vs theirs, bit for bit;
- quantization: for the types gguf.quants can quantize (the GGUF reference
  rounding), ours vs theirs byte for byte on several data distributions;
- mxfp4: every one of the 256 exponents dequantized bit for bit, and the
  quantizer byte for byte (gguf.quants has one);
- K-quants and iq4_nl / iq4_xs (gguf.quants has no quantizer for them):
  our blocks decoded by gguf equal our own decoding, and the round-trip
  error is bounded.

Drives tests/ref/quant_tool (built by `make check`) through pipes.  Prints
TAP.  Skips (with the reason) only when numpy or gguf cannot be imported.
"""
import os
import subprocess
import sys
import warnings

# numpy warns when f16 conversion overflows to inf, which the edge data does
warnings.filterwarnings("ignore", category=RuntimeWarning)

try:
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf import quants as gq
except Exception as exc:  # noqa: BLE001 - any import failure means skip
    print(f"1..0 # SKIP cannot import numpy/gguf: {exc}")
    sys.exit(0)

build = os.environ.get("top_builddir") or os.environ.get("LAMINA_TEST_BUILD") or "."
TOOL = os.path.join(build, "tests", "ref", "quant_tool")
if len(sys.argv) > 1:
    TOOL = sys.argv[1]

n_test = 0
n_fail = 0


def ok(cond, desc, diag=None):
    global n_test, n_fail
    n_test += 1
    if cond:
        print(f"ok {n_test} - {desc}")
    else:
        n_fail += 1
        print(f"not ok {n_test} - {desc}")
        if diag:
            for line in str(diag).splitlines():
                print(f"#   {line}")


def tool(cmd, qtype, n, data):
    r = subprocess.run([TOOL, cmd, str(int(qtype)), str(n)], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"quant_tool {cmd} {qtype.name}: {r.stderr.decode().strip()}")
    return r.stdout


rng = np.random.default_rng(20240611)

# Byte offsets of fp16 scale fields per type, and the magnitude to give them.
HALF_FIELDS = {
    QT.Q4_0: [0], QT.Q4_1: [0, 2], QT.Q5_0: [0], QT.Q5_1: [0, 2],
    QT.Q8_0: [0], QT.Q2_K: [80, 82], QT.Q3_K: [108], QT.Q4_K: [0, 2],
    QT.Q5_K: [0, 2], QT.Q6_K: [208], QT.IQ4_NL: [0], QT.IQ4_XS: [0],
}


def random_blocks(qtype, n_blocks):
    """Random bytes with every fp16 scale replaced by a finite value
    (including negative, tiny and subnormal ones)."""
    _, tsize = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, tsize), dtype=np.uint8)
    for off in HALF_FIELDS[qtype]:
        mag = np.exp2(rng.uniform(-20, 4, size=n_blocks)).astype(np.float32)
        sign = np.where(rng.random(n_blocks) < 0.3, -1.0, 1.0).astype(np.float32)
        h = (mag * sign).astype(np.float16)
        h[0] = np.float16(0.0)          # a zero scale
        if n_blocks > 1:
            h[1] = np.float16(6e-8)     # a subnormal scale
        raw[:, off:off + 2] = h.view(np.uint8).reshape(n_blocks, 2)
    return raw


def same_bits(a, b):
    a = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    b = np.ascontiguousarray(b, dtype=np.float32).view(np.uint32)
    return a.shape == b.shape and bool(np.all(a == b))


def first_diff(a, b):
    a = np.asarray(a, dtype=np.float32).ravel()
    b = np.asarray(b, dtype=np.float32).ravel()
    idx = np.nonzero(a.view(np.uint32) != b.view(np.uint32))[0]
    if len(idx) == 0:
        return "shapes differ"
    i = idx[0]
    return f"{len(idx)} differ; first at {i}: ours {a[i]!r} gguf {b[i]!r}"


# ---------------------------------------------------------------- dequantize
for qtype in [QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0,
              QT.Q2_K, QT.Q3_K, QT.Q4_K, QT.Q5_K, QT.Q6_K, QT.IQ4_NL, QT.IQ4_XS]:
    bsize, _ = gguf.GGML_QUANT_SIZES[qtype]
    nblk = 96 if bsize == 256 else 512
    blocks = random_blocks(qtype, nblk)
    n = nblk * bsize
    theirs = gq.dequantize(blocks.reshape(1, -1), qtype).reshape(-1)
    ours = np.frombuffer(tool("dequantize", qtype, n, blocks.tobytes()), dtype=np.float32)
    ok(same_bits(ours, theirs), f"dequantize {qtype.name}: {nblk} random blocks bitwise equal to gguf",
       None if same_bits(ours, theirs) else first_diff(ours, theirs))

# mxfp4: random nibbles under every exponent, 0..255 each twice (e 0 and 1
# give subnormal scales, 255 overflows the values 12 and -12 to inf)
blocks = rng.integers(0, 256, size=(512, 17), dtype=np.uint8)
blocks[:, 0] = rng.permutation(np.tile(np.arange(256, dtype=np.uint8), 2))
theirs = gq.dequantize(blocks.reshape(1, -1), QT.MXFP4).reshape(-1)
ours = np.frombuffer(tool("dequantize", QT.MXFP4, 512 * 32, blocks.tobytes()), dtype=np.float32)
ok(same_bits(ours, theirs), "dequantize MXFP4: 512 random blocks, all 256 exponents, bitwise equal to gguf",
   None if same_bits(ours, theirs) else first_diff(ours, theirs))

# f16 / bf16: every bit pattern except NaNs
allbits = np.arange(65536, dtype=np.uint32).astype(np.uint16)
for qtype, npt in [(QT.F16, np.float16), (QT.BF16, None)]:
    if qtype == QT.F16:
        vals = allbits.view(np.float16).astype(np.float32)
    else:
        vals = (allbits.astype(np.uint32) << 16).view(np.float32)
    keep = ~np.isnan(vals)
    ours = np.frombuffer(tool("dequantize", qtype, 65536, allbits.tobytes()), dtype=np.float32)
    good = same_bits(ours[keep], vals[keep]) and bool(np.all(np.isnan(ours[~keep])))
    ok(good, f"dequantize {qtype.name}: all 65536 bit patterns")


# ---------------------------------------------------------------- quantize
def datasets(n):
    """Named float32 rows of n values (n a multiple of 256)."""
    out = []
    out.append(("uniform", rng.uniform(-1, 1, n)))
    out.append(("normal", rng.normal(0, 1, n)))
    # per-block scales over 12 orders of magnitude
    scales = np.exp2(rng.uniform(-24, 12, n // 32)).repeat(32)
    out.append(("scaled", rng.normal(0, 1, n) * scales))
    # one-sided blocks, constant blocks, zero blocks, exact ties
    x = rng.uniform(0.1, 2.0, n)
    x[32:64] = -x[32:64]
    x[64:96] = 0.5
    x[96:128] = 0.0
    x[128:160] = np.tile([1.0, -1.0], 16)            # ties in |max|
    x[160:192] = np.round(rng.uniform(-8, 8, 32)) / 8  # values on the grid
    out.append(("edge", x))
    # outliers
    x = rng.normal(0, 0.02, n)
    x[rng.integers(0, n, n // 64)] *= 300
    out.append(("outliers", x))
    return [(name, v.astype(np.float32)) for name, v in out]


N = 256 * 24
for qtype in [QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0, QT.BF16, QT.F16, QT.MXFP4]:
    for name, x in datasets(N):
        theirs = gq.quantize(x.reshape(1, -1), qtype).tobytes()
        ours = tool("quantize", qtype, N, x.tobytes())
        same = ours == theirs
        diag = None
        if not same:
            a = np.frombuffer(ours, dtype=np.uint8)
            b = np.frombuffer(theirs, dtype=np.uint8)
            if len(a) == len(b):
                idx = np.nonzero(a != b)[0]
                diag = f"{len(idx)} bytes differ; first at byte {idx[0]}"
            else:
                diag = f"sizes {len(a)} vs {len(b)}"
        ok(same, f"quantize {qtype.name} ({name}): bytes equal to gguf", diag)

# mxfp4's exponent is floor(log2(amax)) in float: a block whose largest
# magnitude is one ulp below a power of two takes the next exponent
p2 = np.exp2(np.arange(-40, 24, dtype=np.float32))
x = (rng.uniform(-0.5, 0.5, (64, 32)) * p2[:, None]).astype(np.float32)
x[:, 3] = np.nextafter(p2, np.float32(0))
x[1::2, 3] *= -1
theirs = gq.quantize(x.reshape(1, -1), QT.MXFP4).tobytes()
ours = tool("quantize", QT.MXFP4, x.size, x.tobytes())
ok(ours == theirs, "quantize MXFP4: amax one ulp below 2^k, bytes equal to gguf")

# NaN handling of bf16 (quiet NaN) and f16
x = np.array([np.nan, -np.nan, np.inf, -np.inf, 1e-45, -3.0e38, 65519.0, 65520.0] * 4,
             dtype=np.float32)
for qtype in [QT.BF16, QT.F16]:
    theirs = gq.quantize(x.reshape(1, -1), qtype).tobytes()
    ours = tool("quantize", qtype, len(x), x.tobytes())
    if qtype == QT.F16:
        # numpy keeps NaN payload bits differently; compare the non-NaN ones
        a = np.frombuffer(ours, dtype=np.uint16)
        b = np.frombuffer(theirs, dtype=np.uint16)
        nanmask = np.isnan(x)
        same = bool(np.all(a[~nanmask] == b[~nanmask])) and \
            bool(np.all((a[nanmask] & 0x7c00) == 0x7c00) and np.all(a[nanmask] & 0x3ff))
    else:
        same = ours == theirs
    ok(same, f"quantize {qtype.name}: inf/nan/overflow/subnormal edge values")

# ---------------------------------------------------------------- K-quants
# Bounds on rms error / rms data for normal data: generous multiples of what
# a plain per-sub-block min/max encoding achieves.  Catches broken packing or
# a bad scale search without pinning our particular search.
KQ_BOUND = {QT.Q2_K: 0.40, QT.Q3_K: 0.22, QT.Q4_K: 0.11, QT.Q5_K: 0.055, QT.Q6_K: 0.028,
            QT.IQ4_XS: 0.11}
# iq4_nl: one fp16 scale per 32 values, so the "scaled" data's tiniest
# blocks (2^-24) fall below fp16's range; it gets the rms bound only.
NL_BOUND = {QT.IQ4_NL: 0.11}
for qtype, bound in list(KQ_BOUND.items()) + list(NL_BOUND.items()):
    for name, x in datasets(N):
        ours_q = tool("quantize", qtype, N, x.tobytes())
        ours_d = np.frombuffer(tool("dequantize", qtype, N, ours_q), dtype=np.float32)
        theirs_d = gq.dequantize(np.frombuffer(ours_q, dtype=np.uint8).reshape(1, -1),
                                 qtype).reshape(-1)
        ok(same_bits(ours_d, theirs_d),
           f"quantize {qtype.name} ({name}): gguf decodes our blocks to our values",
           None if same_bits(ours_d, theirs_d) else first_diff(ours_d, theirs_d))
        if name in ("normal", "uniform"):
            rel = float(np.sqrt(np.mean((ours_d - x) ** 2)) / np.sqrt(np.mean(x ** 2)))
            ok(rel < bound, f"quantize {qtype.name} ({name}): rms error {rel:.4f} < {bound}")
        if name == "scaled" and qtype in KQ_BOUND:
            # every 256-block reconstructs within its own scale
            err = np.abs(ours_d - x).reshape(-1, 256).max(axis=1)
            mag = np.abs(x).reshape(-1, 256).max(axis=1)
            worst = float(np.max(err / mag))
            ok(worst < 4 * bound,
               f"quantize {qtype.name} (scaled): worst block error {worst:.4f} of block max")

# The 32-block types against their own rms bound too (regression guard).
for qtype, bound in {QT.Q4_0: 0.12, QT.Q4_1: 0.11, QT.Q5_0: 0.06, QT.Q5_1: 0.055,
                     QT.Q8_0: 0.007, QT.MXFP4: 0.15}.items():
    x = rng.normal(0, 1, N).astype(np.float32)
    d = np.frombuffer(tool("dequantize", qtype, N, tool("quantize", qtype, N, x.tobytes())),
                      dtype=np.float32)
    rel = float(np.sqrt(np.mean((d - x) ** 2)) / np.sqrt(np.mean(x ** 2)))
    ok(rel < bound, f"round trip {qtype.name} (normal): rms error {rel:.4f} < {bound}")

print(f"1..{n_test}")
sys.exit(1 if n_fail else 0)
