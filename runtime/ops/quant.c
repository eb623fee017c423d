/*
 * quant.c - reference conversions between floats and the GGUF block types.
 *
 * Scalar and unoptimised on purpose: this file is the oracle the self-test
 * and the plugins are measured against.  It depends only on lamina/quant.h
 * (and so plugin.h) and libc/libm, because in-tree plugins compile it into
 * themselves.
 *
 * Dequantization follows the GGUF block layouts exactly.  Every product in
 * the formulas (fp16 scale x small integer x small integer) is exact in
 * float, so the only rounding is the final add/subtract and the result is
 * the same bit pattern however the products are grouped (with or without
 * fused multiply-add).
 *
 * Quantization:
 *   - F16, BF16: round to nearest even (quant.h helpers).
 *   - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: the GGUF reference rounding, bit for bit
 *     (tests/ref/quant_gguf.py checks it against the `gguf` Python package):
 *       q4_0/q5_0: d = (signed value of largest magnitude) / -8 (-16),
 *                  q = trunc(x/d + 8.5 (16.5)) clamped to 15 (31);
 *       q4_1/q5_1: d = (max - min) / 15 (31), m = min,
 *                  q = trunc((x - min)/d + 0.5) clamped;
 *       q8_0:      d = max|x| / 127, q = round-half-away(x/d).
 *     In each case x/d is computed as x * (1/d) in float, and d is rounded
 *     to fp16 only when stored.
 *   - Q8_1: as q8_0, plus s = fp16(d * sum(q)).
 *   - Q8_K: d = -(signed value of largest magnitude) / 128 stored as float,
 *     q = min(127, round(x * (1/d))), bsums the sums of 16 q.
 *   - K-quants (Q2_K..Q6_K): a simple scale search, documented at
 *     fit_affine() and fit_symmetric() below: each sub-block gets the
 *     best (least squared error) of a small set of candidate scales, each
 *     refined by a least-squares fit; the sub-block scales (and mins) are
 *     then quantized against the super-block scale, and the final integer
 *     of every element is chosen by rounding against the scales exactly as
 *     they are stored.  Not the GGUF tools' search (their files dequantize
 *     identically; only the choice of integers differs), but always a valid
 *     encoding whose error is within half a stored step for every element
 *     inside the representable range.
 *   - IQ4_NL, IQ4_XS (codebook v of 16 values, LAMINA_IQ4NL_VALUES): a
 *     search like the K-quants' (fit_iq4() below): each 32-value block
 *     (iq4_xs: sub-block) gets the best of a few candidate scales, those
 *     mapping its value of largest magnitude near either end of the
 *     codebook or onto one of its values, each refined by least squares;
 *     iq4_xs then rounds the sub-block scales to 6-bit integers against
 *     one fp16 scale (trying the neighbours of each rounded integer).
 *     Every element finally takes the codebook entry nearest to it under
 *     its scale as stored.  Not the GGUF tools' search; any encoding
 *     decodes the same.
 *   - MXFP4: the GGUF reference rounding, bit for bit: e = floor(log2(amax))
 *     - 2 + 127 (log2f, as the gguf package and llama.cpp compute it; 0 for
 *     a block of zeros or NaNs, clamped to 0..255 where amax is below
 *     2^-125 or infinite), then each element the first of the 16 values
 *     nearest to it under the scale 2^(e - 128) (the error |d v - x|
 *     computed in float).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lamina/quant.h"

/* Byte layouts of q2_K and q3_K (lamina_block_q2_K / _q3_K in quant.h). */
#define Q2K_SIZE 84     /* scales[16] qs[64] d dmin */
#define Q2K_OFF_QS 16
#define Q2K_OFF_D 80
#define Q2K_OFF_DMIN 82
#define Q3K_SIZE 110    /* hmask[32] qs[64] scales[12] d */
#define Q3K_OFF_QS 32
#define Q3K_OFF_SCALES 96
#define Q3K_OFF_D 108
_Static_assert(sizeof(lamina_block_q2_K) == Q2K_SIZE &&
               offsetof(lamina_block_q2_K, qs) == Q2K_OFF_QS &&
               offsetof(lamina_block_q2_K, d) == Q2K_OFF_D &&
               offsetof(lamina_block_q2_K, dmin) == Q2K_OFF_DMIN, "q2_K offsets");
_Static_assert(sizeof(lamina_block_q3_K) == Q3K_SIZE &&
               offsetof(lamina_block_q3_K, qs) == Q3K_OFF_QS &&
               offsetof(lamina_block_q3_K, scales) == Q3K_OFF_SCALES &&
               offsetof(lamina_block_q3_K, d) == Q3K_OFF_D, "q3_K offsets");

static const int8_t iq4nl_values[16] = LAMINA_IQ4NL_VALUES;
static const int8_t mxfp4_values[16] = LAMINA_MXFP4_VALUES;

/* Largest sub-block the K-quant scale search works on. */
#define QK_MAX_SUB 32

static const lamina_type_traits type_unknown = { "unknown", 0, 0, 0 };

static const lamina_type_traits type_table[LAMINA_TYPE_COUNT] = {
    [LAMINA_TYPE_F32]  = { "f32",  1, 4, 0 },
    [LAMINA_TYPE_F16]  = { "f16",  1, 2, 0 },
    [LAMINA_TYPE_Q4_0] = { "q4_0", LAMINA_QK4_0, sizeof(lamina_block_q4_0), 1 },
    [LAMINA_TYPE_Q4_1] = { "q4_1", LAMINA_QK4_1, sizeof(lamina_block_q4_1), 1 },
    [LAMINA_TYPE_Q5_0] = { "q5_0", LAMINA_QK5_0, sizeof(lamina_block_q5_0), 1 },
    [LAMINA_TYPE_Q5_1] = { "q5_1", LAMINA_QK5_1, sizeof(lamina_block_q5_1), 1 },
    [LAMINA_TYPE_Q8_0] = { "q8_0", LAMINA_QK8_0, sizeof(lamina_block_q8_0), 1 },
    [LAMINA_TYPE_Q8_1] = { "q8_1", LAMINA_QK8_0, sizeof(lamina_block_q8_1), 1 },
    [LAMINA_TYPE_Q2_K] = { "q2_K", LAMINA_QK_K, Q2K_SIZE, 1 },
    [LAMINA_TYPE_Q3_K] = { "q3_K", LAMINA_QK_K, Q3K_SIZE, 1 },
    [LAMINA_TYPE_Q4_K] = { "q4_K", LAMINA_QK_K, sizeof(lamina_block_q4_K), 1 },
    [LAMINA_TYPE_Q5_K] = { "q5_K", LAMINA_QK_K, sizeof(lamina_block_q5_K), 1 },
    [LAMINA_TYPE_Q6_K] = { "q6_K", LAMINA_QK_K, sizeof(lamina_block_q6_K), 1 },
    [LAMINA_TYPE_Q8_K] = { "q8_K", LAMINA_QK_K, sizeof(lamina_block_q8_K), 1 },
    [LAMINA_TYPE_IQ4_NL] = { "iq4_nl", LAMINA_QK4_NL, sizeof(lamina_block_iq4_nl), 1 },
    [LAMINA_TYPE_IQ4_XS] = { "iq4_xs", LAMINA_QK_K, sizeof(lamina_block_iq4_xs), 1 },
    [LAMINA_TYPE_MXFP4] = { "mxfp4", LAMINA_QK_MXFP4, sizeof(lamina_block_mxfp4), 1 },
    [LAMINA_TYPE_I32]  = { "i32",  1, 4, 0 },
    [LAMINA_TYPE_BF16] = { "bf16", 1, 2, 0 },
};

const lamina_type_traits *lamina_type_get(uint32_t type)
{
    if (type >= LAMINA_TYPE_COUNT || type_table[type].block_size == 0)
        return &type_unknown;
    return &type_table[type];
}

uint64_t lamina_row_size(uint32_t type, int64_t n)
{
    const lamina_type_traits *t = lamina_type_get(type);
    if (t->block_size == 0 || n < 0 || n % t->block_size != 0)
        return 0;
    uint64_t blocks = (uint64_t)n / t->block_size;
    if (blocks > UINT64_MAX / t->type_size)
        return 0;
    return blocks * t->type_size;
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */

static float half_at(const uint8_t *p)
{
    uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
    return lamina_fp16_to_fp32(h);
}

static void put_u16(uint8_t *p, uint16_t h)
{
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

/* Clamp in float first (NaN goes to lo), then convert: never UB. */
static int clamp_to_int(float v, int lo, int hi)
{
    if (!(v >= (float)lo)) return lo;
    if (v > (float)hi) return hi;
    return (int)v;
}

/* Round half away from zero, then clamp. */
static int round_clamp(float v, int lo, int hi)
{
    if (!(v >= (float)lo)) return lo;
    if (v > (float)hi) return hi;
    return (int)roundf(v);
}

/* ------------------------------------------------------------------------ */
/* Dequantization, one block each.  y receives block_size floats.          */

static void deq_q4_0(float *y, const lamina_block_q4_0 *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    /* low nibbles: elements 0..15, high nibbles: 16..31 */
    for (int l = 0; l < LAMINA_QK4_0 / 2; l++) {
        y[l]      = d * (float)((b->qs[l] & 0xF) - 8);
        y[l + 16] = d * (float)((b->qs[l] >> 4) - 8);
    }
}

static void deq_q4_1(float *y, const lamina_block_q4_1 *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    const float m = lamina_fp16_to_fp32(b->m);
    for (int l = 0; l < LAMINA_QK4_1 / 2; l++) {
        y[l]      = d * (float)(b->qs[l] & 0xF) + m;
        y[l + 16] = d * (float)(b->qs[l] >> 4) + m;
    }
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void deq_q5_0(float *y, const lamina_block_q5_0 *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    const uint32_t qh = le32(b->qh);
    /* bit i of qh is bit 4 of element i */
    for (int l = 0; l < 16; l++) {
        int q0 = (b->qs[l] & 0xF) | (int)(((qh >> l) & 1u) << 4);
        int q1 = (b->qs[l] >> 4)  | (int)(((qh >> (l + 16)) & 1u) << 4);
        y[l]      = d * (float)(q0 - 16);
        y[l + 16] = d * (float)(q1 - 16);
    }
}

static void deq_q5_1(float *y, const lamina_block_q5_1 *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    const float m = lamina_fp16_to_fp32(b->m);
    const uint32_t qh = le32(b->qh);
    for (int l = 0; l < 16; l++) {
        int q0 = (b->qs[l] & 0xF) | (int)(((qh >> l) & 1u) << 4);
        int q1 = (b->qs[l] >> 4)  | (int)(((qh >> (l + 16)) & 1u) << 4);
        y[l]      = d * (float)q0 + m;
        y[l + 16] = d * (float)q1 + m;
    }
}

static void deq_q8_0(float *y, const lamina_block_q8_0 *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    for (int l = 0; l < LAMINA_QK8_0; l++)
        y[l] = d * (float)b->qs[l];
}

static void deq_q8_1(float *y, const lamina_block_q8_1 *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    for (int l = 0; l < LAMINA_QK8_0; l++)
        y[l] = d * (float)b->qs[l];
}

static void deq_q2_K(float *y, const uint8_t *b)
{
    const uint8_t *scales = b;
    const uint8_t *qs = b + Q2K_OFF_QS;
    const float d = half_at(b + Q2K_OFF_D);
    const float dmin = half_at(b + Q2K_OFF_DMIN);
    /* element 128c + 32s + l holds bits 2s..2s+1 of qs[32c + l];
     * sub-block j = element / 16 has scale (scales[j] & 15), min (scales[j] >> 4) */
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < 4; s++)
            for (int l = 0; l < 32; l++) {
                int e = 128 * c + 32 * s + l;
                int j = e / 16;
                float dl = d * (float)(scales[j] & 0xF);
                float ml = dmin * (float)(scales[j] >> 4);
                int q = (qs[32 * c + l] >> (2 * s)) & 3;
                y[e] = dl * (float)q - ml;
            }
}

static void deq_q3_K(float *y, const uint8_t *b)
{
    const uint8_t *hmask = b;
    const uint8_t *qs = b + Q3K_OFF_QS;
    const float d = half_at(b + Q3K_OFF_D);
    int8_t sc[16];
    lamina_get_scales_q3k(b + Q3K_OFF_SCALES, sc);
    /* low two bits: element 128c + 32s + l from bits 2s of qs[32c + l];
     * high bit: element 32h + l from bit h of hmask[l]; a clear high bit
     * subtracts 4 */
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < 4; s++)
            for (int l = 0; l < 32; l++) {
                int e = 128 * c + 32 * s + l;
                int lo = (qs[32 * c + l] >> (2 * s)) & 3;
                int h = (hmask[l] >> (e / 32)) & 1;
                int q = lo - (h ? 0 : 4);
                y[e] = d * (float)sc[e / 16] * (float)q;
            }
}

static void deq_q4_K(float *y, const lamina_block_q4_K *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    const float dmin = lamina_fp16_to_fp32(b->dmin);
    /* chunk c of 64: low nibbles of qs[32c..] sub-block 2c, high 2c+1 */
    for (int c = 0; c < 4; c++) {
        uint8_t sc, m;
        lamina_get_scale_min_k4(2 * c, b->scales, &sc, &m);
        const float d0 = d * (float)sc, m0 = dmin * (float)m;
        lamina_get_scale_min_k4(2 * c + 1, b->scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        for (int l = 0; l < 32; l++) {
            y[64 * c + l]      = d0 * (float)(b->qs[32 * c + l] & 0xF) - m0;
            y[64 * c + 32 + l] = d1 * (float)(b->qs[32 * c + l] >> 4) - m1;
        }
    }
}

static void deq_q5_K(float *y, const lamina_block_q5_K *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    const float dmin = lamina_fp16_to_fp32(b->dmin);
    /* as q4_K; bit (sub-block index) of qh[l] is bit 4 of element l */
    for (int c = 0; c < 4; c++) {
        uint8_t sc, m;
        lamina_get_scale_min_k4(2 * c, b->scales, &sc, &m);
        const float d0 = d * (float)sc, m0 = dmin * (float)m;
        lamina_get_scale_min_k4(2 * c + 1, b->scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        for (int l = 0; l < 32; l++) {
            int q0 = (b->qs[32 * c + l] & 0xF) | (((b->qh[l] >> (2 * c)) & 1) << 4);
            int q1 = (b->qs[32 * c + l] >> 4)  | (((b->qh[l] >> (2 * c + 1)) & 1) << 4);
            y[64 * c + l]      = d0 * (float)q0 - m0;
            y[64 * c + 32 + l] = d1 * (float)q1 - m1;
        }
    }
}

static void deq_q6_K(float *y, const lamina_block_q6_K *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    /* half c (128 values): element 128c + 64h + l (l < 64) takes low bits
     * from nibble h of ql[64c + l]; element 128c + 32s + l (l < 32) takes
     * high bits from bits 2s of qh[32c + l]; scale index = element / 16 */
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < 4; s++)
            for (int l = 0; l < 32; l++) {
                int e = 128 * c + 32 * s + l;
                int within = 32 * s + l;               /* 0..127 */
                int lo = (b->ql[64 * c + (within % 64)] >> (4 * (within / 64))) & 0xF;
                int hi = (b->qh[32 * c + l] >> (2 * s)) & 3;
                int q = (lo | (hi << 4)) - 32;
                y[e] = d * (float)b->scales[e / 16] * (float)q;
            }
}

static void deq_q8_K(float *y, const lamina_block_q8_K *b)
{
    for (int l = 0; l < LAMINA_QK_K; l++)
        y[l] = b->d * (float)b->qs[l];
}

/* 32 values of codebook v (iq4 or mxfp4) of one block (or sub-block)
 * times ds: index of element l in the low nibble of qs[l], of element
 * l + 16 in the high. */
static void deq_cb32(float *y, const uint8_t *qs, float ds, const int8_t *v)
{
    for (int l = 0; l < 16; l++) {
        y[l]      = ds * (float)v[qs[l] & 0xF];
        y[l + 16] = ds * (float)v[qs[l] >> 4];
    }
}

static void deq_iq4_32(float *y, const uint8_t *qs, float ds)
{
    deq_cb32(y, qs, ds, iq4nl_values);
}

static void deq_iq4_nl(float *y, const lamina_block_iq4_nl *b)
{
    deq_iq4_32(y, b->qs, lamina_fp16_to_fp32(b->d));
}

static void deq_mxfp4(float *y, const lamina_block_mxfp4 *b)
{
    deq_cb32(y, b->qs, lamina_e8m0_to_fp32_half(b->e), mxfp4_values);
}

static void deq_iq4_xs(float *y, const lamina_block_iq4_xs *b)
{
    const float d = lamina_fp16_to_fp32(b->d);
    for (int j = 0; j < 8; j++)
        deq_iq4_32(y + 32 * j, b->qs + 16 * j, d * (float)lamina_get_scale_iq4xs(b, j));
}

int lamina_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    const lamina_type_traits *t = lamina_type_get(type);
    if (t->block_size == 0 || type == LAMINA_TYPE_I32)
        return LAMINA_ENOTSUP;
    if (n < 0 || n % t->block_size != 0)
        return LAMINA_EINVAL;
    const uint8_t *p = src;
    const int64_t nb = n / t->block_size;

    switch (type) {
    case LAMINA_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return 0;
    case LAMINA_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = lamina_fp16_to_fp32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return 0;
    case LAMINA_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = lamina_bf16_to_fp32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        return 0;
    default:
        break;
    }

    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *blk = p + (size_t)i * t->type_size;
        float *y = dst + (size_t)i * t->block_size;
        /* copy the block so that unaligned rows are read safely */
        union {
            lamina_block_q4_0 q4_0; lamina_block_q4_1 q4_1;
            lamina_block_q5_0 q5_0; lamina_block_q5_1 q5_1;
            lamina_block_q8_0 q8_0; lamina_block_q8_1 q8_1;
            lamina_block_q4_K q4_K; lamina_block_q5_K q5_K;
            lamina_block_q6_K q6_K; lamina_block_q8_K q8_K;
            lamina_block_iq4_nl iq4_nl; lamina_block_iq4_xs iq4_xs;
            lamina_block_mxfp4 mxfp4;
            uint8_t bytes[sizeof(lamina_block_q8_K)];
        } u;
        memcpy(u.bytes, blk, t->type_size);
        switch (type) {
        case LAMINA_TYPE_Q4_0: deq_q4_0(y, &u.q4_0); break;
        case LAMINA_TYPE_Q4_1: deq_q4_1(y, &u.q4_1); break;
        case LAMINA_TYPE_Q5_0: deq_q5_0(y, &u.q5_0); break;
        case LAMINA_TYPE_Q5_1: deq_q5_1(y, &u.q5_1); break;
        case LAMINA_TYPE_Q8_0: deq_q8_0(y, &u.q8_0); break;
        case LAMINA_TYPE_Q8_1: deq_q8_1(y, &u.q8_1); break;
        case LAMINA_TYPE_Q2_K: deq_q2_K(y, u.bytes); break;
        case LAMINA_TYPE_Q3_K: deq_q3_K(y, u.bytes); break;
        case LAMINA_TYPE_Q4_K: deq_q4_K(y, &u.q4_K); break;
        case LAMINA_TYPE_Q5_K: deq_q5_K(y, &u.q5_K); break;
        case LAMINA_TYPE_Q6_K: deq_q6_K(y, &u.q6_K); break;
        case LAMINA_TYPE_Q8_K: deq_q8_K(y, &u.q8_K); break;
        case LAMINA_TYPE_IQ4_NL: deq_iq4_nl(y, &u.iq4_nl); break;
        case LAMINA_TYPE_IQ4_XS: deq_iq4_xs(y, &u.iq4_xs); break;
        case LAMINA_TYPE_MXFP4: deq_mxfp4(y, &u.mxfp4); break;
        default: return LAMINA_ENOTSUP;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Quantization of the 32-blocks (GGUF reference rounding).                 */

/* The signed value of largest magnitude (the first one on ties). */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx)
{
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

static void q_q4_0(lamina_block_q4_0 *b, const float *x)
{
    /* d maps the value of largest magnitude to -8 */
    const float d = signed_absmax(x, 32) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = lamina_fp32_to_fp16(d);
    for (int l = 0; l < 16; l++) {
        int q0 = clamp_to_int(x[l] * id + 8.5f, 0, 15);
        int q1 = clamp_to_int(x[l + 16] * id + 8.5f, 0, 15);
        b->qs[l] = (uint8_t)(q0 | (q1 << 4));
    }
}

static void q_q4_1(lamina_block_q4_1 *b, const float *x)
{
    float mn, mx;
    min_max(x, 32, &mn, &mx);
    /* q = 0 at the minimum, 15 at the maximum */
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = lamina_fp32_to_fp16(d);
    b->m = lamina_fp32_to_fp16(mn);
    for (int l = 0; l < 16; l++) {
        int q0 = clamp_to_int((x[l] - mn) * id + 0.5f, 0, 15);
        int q1 = clamp_to_int((x[l + 16] - mn) * id + 0.5f, 0, 15);
        b->qs[l] = (uint8_t)(q0 | (q1 << 4));
    }
}

static void q_q5_0(lamina_block_q5_0 *b, const float *x)
{
    const float d = signed_absmax(x, 32) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    b->d = lamina_fp32_to_fp16(d);
    for (int l = 0; l < 16; l++) {
        int q0 = clamp_to_int(x[l] * id + 16.5f, 0, 31);
        int q1 = clamp_to_int(x[l + 16] * id + 16.5f, 0, 31);
        b->qs[l] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
        qh |= (uint32_t)(q0 >> 4) << l;
        qh |= (uint32_t)(q1 >> 4) << (l + 16);
    }
    for (int k = 0; k < 4; k++)
        b->qh[k] = (uint8_t)(qh >> (8 * k));
}

static void q_q5_1(lamina_block_q5_1 *b, const float *x)
{
    float mn, mx;
    min_max(x, 32, &mn, &mx);
    const float d = (mx - mn) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    b->d = lamina_fp32_to_fp16(d);
    b->m = lamina_fp32_to_fp16(mn);
    for (int l = 0; l < 16; l++) {
        int q0 = clamp_to_int((x[l] - mn) * id + 0.5f, 0, 31);
        int q1 = clamp_to_int((x[l + 16] - mn) * id + 0.5f, 0, 31);
        b->qs[l] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
        qh |= (uint32_t)(q0 >> 4) << l;
        qh |= (uint32_t)(q1 >> 4) << (l + 16);
    }
    for (int k = 0; k < 4; k++)
        b->qh[k] = (uint8_t)(qh >> (8 * k));
}

/* Shared by q8_0 and q8_1: returns the float d and the sum of the q. */
static float q8_block(int8_t *qs, const float *x, int *sum)
{
    float amax = 0.0f;
    for (int l = 0; l < 32; l++)
        if (fabsf(x[l]) > amax) amax = fabsf(x[l]);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int s = 0;
    for (int l = 0; l < 32; l++) {
        int q = round_clamp(x[l] * id, -127, 127);
        qs[l] = (int8_t)q;
        s += q;
    }
    *sum = s;
    return d;
}

static void q_q8_0(lamina_block_q8_0 *b, const float *x)
{
    int sum;
    b->d = lamina_fp32_to_fp16(q8_block(b->qs, x, &sum));
}

static void q_q8_1(lamina_block_q8_1 *b, const float *x)
{
    int sum;
    const float d = q8_block(b->qs, x, &sum);
    b->d = lamina_fp32_to_fp16(d);
    b->s = lamina_fp32_to_fp16(d * (float)sum);
}

static void q_q8_K(lamina_block_q8_K *b, const float *x)
{
    const float max = signed_absmax(x, LAMINA_QK_K);
    memset(b, 0, sizeof *b);
    if (max == 0.0f || !isfinite(max))
        return;
    /* the value of largest magnitude maps to -128 */
    const float iscale = -128.0f / max;
    for (int l = 0; l < LAMINA_QK_K; l++)
        b->qs[l] = (int8_t)round_clamp(iscale * x[l], -128, 127);
    for (int j = 0; j < LAMINA_QK_K / 16; j++) {
        int s = 0;
        for (int l = 0; l < 16; l++)
            s += b->qs[16 * j + l];
        b->bsums[j] = (int16_t)s;
    }
    b->d = 1.0f / iscale;
}

/* ------------------------------------------------------------------------ */
/* K-quant scale search.                                                    */

/*
 * fit_affine: x[0..n) ~ a * q - m with q integer in [0, nq], a >= 0, m >= 0.
 * Candidates: the range [min(0, min x), max x] mapped onto nq + t/10 steps
 * for t = -10..10.  Each candidate's integers are refitted by least squares
 * (a, b = -m) with b clamped to <= 0; the fit with the least squared error
 * wins.  Returns a and *m.
 */
static float fit_affine(const float *x, int n, int nq, float *m_out)
{
    float lo, hi;
    min_max(x, n, &lo, &hi);
    if (lo > 0.0f) lo = 0.0f;
    if (!(hi > lo) || !isfinite(hi - lo)) {
        *m_out = isfinite(lo) ? -lo : 0.0f;
        return 0.0f;
    }
    /* the plain min/max encoding is the first candidate */
    double best_a = (double)(hi - lo) / nq, best_b = lo, best_err = INFINITY;
    for (int t = -10; t <= 10; t++) {
        const double iscale = (nq + 0.1 * t) / ((double)hi - lo);
        double sq = 0, sx = 0, sqq = 0, sqx = 0;
        int q[QK_MAX_SUB];
        for (int j = 0; j < n; j++) {
            double v = ((double)x[j] - lo) * iscale;
            q[j] = v < 0 ? 0 : v > nq ? nq : (int)lround(v);
            sq += q[j];
            sx += x[j];
            sqq += (double)q[j] * q[j];
            sqx += (double)q[j] * x[j];
        }
        /* least squares x ~ a q + b */
        double den = n * sqq - sq * sq;
        if (den <= 0) continue;
        double a = (n * sqx - sq * sx) / den;
        double b = (sx - a * sq) / n;
        if (b > 0) {                     /* offset must be <= 0 */
            b = 0;
            a = sqx / sqq;
        }
        if (a <= 0) continue;
        double err = 0;
        for (int j = 0; j < n; j++) {
            double e = a * q[j] + b - x[j];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_a = a;
            best_b = b;
        }
    }
    *m_out = (float)-best_b;
    return (float)best_a;
}

/*
 * fit_symmetric: x[0..n) ~ s * q with q integer in [-nq-1, nq] (the value
 * of largest magnitude maps to about -(nq+1)).  Candidates s = v / -(nq + 1
 * + t/4) for t = -8..8 (v the signed value of largest magnitude), each
 * refined by least squares s = sum(qx)/sum(qq); least squared error wins.
 */
static float fit_symmetric(const float *x, int n, int nq)
{
    const float v = signed_absmax(x, n);
    if (v == 0.0f || !isfinite(v))
        return 0.0f;
    double best_s = v / -(double)(nq + 1), best_err = INFINITY;
    for (int t = -8; t <= 8; t++) {
        const double iscale = -(nq + 1 + 0.25 * t) / (double)v;
        double sqq = 0, sqx = 0;
        int q[QK_MAX_SUB];
        for (int j = 0; j < n; j++) {
            double w = x[j] * iscale;
            q[j] = w < -nq - 1 ? -nq - 1 : w > nq ? nq : (int)lround(w);
            sqq += (double)q[j] * q[j];
            sqx += (double)q[j] * x[j];
        }
        if (sqq <= 0) continue;
        double s = sqx / sqq;
        double err = 0;
        for (int j = 0; j < n; j++) {
            double e = s * q[j] - x[j];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_s = s;
        }
    }
    return (float)best_s;
}

/* Quantize non-negative sub-block scales against one super-block scale of
 * `levels` steps: writes the stored fp16 scale and the integer scales. */
static void super_scale(const float *s, int n, int levels, uint16_t *d_out, int *iq)
{
    float mx = 0.0f;
    for (int j = 0; j < n; j++)
        if (s[j] > mx) mx = s[j];
    *d_out = lamina_fp32_to_fp16(mx / (float)levels);
    const float d = lamina_fp16_to_fp32(*d_out);
    for (int j = 0; j < n; j++)
        iq[j] = d > 0.0f ? round_clamp(s[j] / d, 0, levels) : 0;
}

/*
 * Affine K-quant of one super-block with `nsub` sub-blocks of `len` values:
 * x ~ d*sc_j*q - dmin*m_j, q in [0, nq], sc_j and m_j in [0, levels].
 * Writes d, dmin, the integer scales/mins and every q.
 */
static void kq_affine(const float *x, int nsub, int len, int nq, int levels,
                      uint16_t *d, uint16_t *dmin, int *sc, int *mn, uint8_t *q)
{
    float a[16], m[16];
    /* step 1: best (scale, min) per sub-block */
    for (int j = 0; j < nsub; j++)
        a[j] = fit_affine(x + j * len, len, nq, &m[j]);
    /* step 2: quantize scales and mins against the super-block scales */
    super_scale(a, nsub, levels, d, sc);
    super_scale(m, nsub, levels, dmin, mn);
    const float df = lamina_fp16_to_fp32(*d), mf = lamina_fp16_to_fp32(*dmin);
    /* step 3: integers against the scales as stored */
    for (int j = 0; j < nsub; j++) {
        const float ds = df * (float)sc[j], ms = mf * (float)mn[j];
        for (int l = 0; l < len; l++) {
            const float v = x[j * len + l];
            q[j * len + l] = (uint8_t)(ds > 0.0f ? round_clamp((v + ms) / ds, 0, nq) : 0);
        }
    }
}

/*
 * Symmetric K-quant of one super-block with 16 sub-blocks of 16 values:
 * x ~ d*sc_j*q, q in [-nq-1, nq], sc_j in [smin, smax] (signed).
 * `big` is the integer the largest-magnitude sub-block scale maps to.
 */
static void kq_symmetric(const float *x, int nq, int big, int smin, int smax,
                         uint16_t *d, int *sc, int *q)
{
    float s[16];
    /* step 1: best scale per sub-block */
    for (int j = 0; j < 16; j++)
        s[j] = fit_symmetric(x + 16 * j, 16, nq);
    /* step 2: sub-block scales against the super-block scale */
    const float sbig = signed_absmax(s, 16);
    *d = lamina_fp32_to_fp16(sbig / (float)big);
    const float df = lamina_fp16_to_fp32(*d);
    for (int j = 0; j < 16; j++)
        sc[j] = df != 0.0f ? round_clamp(s[j] / df, smin, smax) : 0;
    /* step 3: integers against the scales as stored */
    for (int j = 0; j < 16; j++) {
        const float ds = df * (float)sc[j];
        for (int l = 0; l < 16; l++)
            q[16 * j + l] = ds != 0.0f ? round_clamp(x[16 * j + l] / ds, -nq - 1, nq) : 0;
    }
}

/* Pack eight 6-bit scales and mins (inverse of lamina_get_scale_min_k4). */
static void pack_scale_min_k4(uint8_t *out, const int *sc, const int *mn)
{
    for (int j = 0; j < 4; j++) {
        out[j]     = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
}

static void q_q2_K(uint8_t *b, const float *x)
{
    uint16_t d, dmin;
    int sc[16], mn[16];
    uint8_t q[LAMINA_QK_K];
    kq_affine(x, 16, 16, 3, 15, &d, &dmin, sc, mn, q);
    memset(b, 0, Q2K_SIZE);
    for (int j = 0; j < 16; j++)
        b[j] = (uint8_t)(sc[j] | (mn[j] << 4));
    /* element 128c + 32s + l into bits 2s of qs[32c + l] */
    for (int e = 0; e < LAMINA_QK_K; e++)
        b[Q2K_OFF_QS + 32 * (e / 128) + e % 32] |= (uint8_t)(q[e] << (2 * ((e % 128) / 32)));
    put_u16(b + Q2K_OFF_D, d);
    put_u16(b + Q2K_OFF_DMIN, dmin);
}

static void q_q3_K(uint8_t *b, const float *x)
{
    uint16_t d;
    int sc[16], q[LAMINA_QK_K];
    kq_symmetric(x, 3, -32, -32, 31, &d, sc, q);
    memset(b, 0, Q3K_SIZE);
    /* u = q + 4 in 0..7: two low bits into qs, the third into hmask */
    for (int e = 0; e < LAMINA_QK_K; e++) {
        int u = q[e] + 4;
        b[Q3K_OFF_QS + 32 * (e / 128) + e % 32] |= (uint8_t)((u & 3) << (2 * ((e % 128) / 32)));
        b[e % 32] |= (uint8_t)((u >> 2) << (e / 32));
    }
    /* 6-bit biased scales: low nibbles in bytes 0..7, high pairs in 8..11 */
    uint8_t *s12 = b + Q3K_OFF_SCALES;
    for (int k = 0; k < 16; k++) {
        int s6 = sc[k] + 32;
        if (k < 8) s12[k] |= (uint8_t)(s6 & 0xF);
        else       s12[k - 8] |= (uint8_t)((s6 & 0xF) << 4);
        s12[8 + k % 4] |= (uint8_t)((s6 >> 4) << (2 * (k / 4)));
    }
    put_u16(b + Q3K_OFF_D, d);
}

static void q_q4_K(lamina_block_q4_K *b, const float *x)
{
    int sc[8], mn[8];
    uint8_t q[LAMINA_QK_K];
    kq_affine(x, 8, 32, 15, 63, &b->d, &b->dmin, sc, mn, q);
    pack_scale_min_k4(b->scales, sc, mn);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            b->qs[32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
}

static void q_q5_K(lamina_block_q5_K *b, const float *x)
{
    int sc[8], mn[8];
    uint8_t q[LAMINA_QK_K];
    kq_affine(x, 8, 32, 31, 63, &b->d, &b->dmin, sc, mn, q);
    pack_scale_min_k4(b->scales, sc, mn);
    memset(b->qh, 0, sizeof b->qh);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int q0 = q[64 * c + l], q1 = q[64 * c + 32 + l];
            b->qs[32 * c + l] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            b->qh[l] |= (uint8_t)(((q0 >> 4) << (2 * c)) | ((q1 >> 4) << (2 * c + 1)));
        }
}

static void q_q6_K(lamina_block_q6_K *b, const float *x)
{
    int sc[16], q[LAMINA_QK_K];
    kq_symmetric(x, 31, 127, -128, 127, &b->d, sc, q);
    /* the largest scale maps to +127 (int8 scales) */
    for (int j = 0; j < 16; j++)
        b->scales[j] = (int8_t)sc[j];
    memset(b->ql, 0, sizeof b->ql);
    memset(b->qh, 0, sizeof b->qh);
    for (int e = 0; e < LAMINA_QK_K; e++) {
        int u = q[e] + 32;                     /* 0..63 */
        int c = e / 128, within = e % 128;
        b->ql[64 * c + within % 64] |= (uint8_t)((u & 0xF) << (4 * (within / 64)));
        b->qh[32 * c + within % 32] |= (uint8_t)((u >> 4) << (2 * (within / 32)));
    }
}

/* ------------------------------------------------------------------------ */
/* IQ4_NL / IQ4_XS: codebook quantization.                                  */

/* Index of the codebook value nearest to v (the lower one on a tie; NaN
 * gives 0). */
static int iq4_index(float v)
{
    if (!(v > (float)iq4nl_values[0])) return 0;
    if (v >= (float)iq4nl_values[15]) return 15;
    int lo = 0, hi = 15;            /* values[lo] <= v < values[hi] */
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < (float)iq4nl_values[mid]) hi = mid;
        else lo = mid;
    }
    return v - (float)iq4nl_values[lo] <= (float)iq4nl_values[hi] - v ? lo : hi;
}

/* Indices of x[0..n) under scale s (every index 8, the value nearest 0,
 * when s is 0); returns the squared error. */
static double iq4_assign(const float *x, int n, float s, uint8_t *idx)
{
    double err = 0;
    for (int j = 0; j < n; j++) {
        idx[j] = (uint8_t)(s != 0.0f ? iq4_index(x[j] / s) : 8);
        const double e = (double)s * iq4nl_values[idx[j]] - x[j];
        err += e * e;
    }
    return err;
}

/*
 * fit_iq4: x[0..n) ~ s * v[q].  Candidates map v0 (the signed value of
 * largest magnitude) to -127 + t/2 or to 113 + t/2, t = -12..12, i.e.
 * near either end of the codebook, and onto each of the 16 codebook values
 * (so data on a scaled codebook grid is found exactly); each candidate's
 * indices are refitted by least squares s = sum(v x) / sum(v v); least
 * squared error wins.
 */
static float fit_iq4(const float *x, int n)
{
    const float v0 = signed_absmax(x, n);
    if (v0 == 0.0f || !isfinite(v0))
        return 0.0f;
    float best_s = v0 / (float)iq4nl_values[0];
    double best_err = INFINITY;
    for (int end = 0; end < 3; end++)
        for (int t = end < 2 ? -12 : 0; t <= (end < 2 ? 12 : 15); t++) {
            const double target = end == 2 ? (double)iq4nl_values[t]
                                           : (end ? iq4nl_values[15] : iq4nl_values[0]) + 0.5 * t;
            const float s0 = (float)(v0 / target);
            uint8_t idx[QK_MAX_SUB];
            (void)iq4_assign(x, n, s0, idx);
            double svx = 0, svv = 0;
            for (int j = 0; j < n; j++) {
                svx += (double)iq4nl_values[idx[j]] * x[j];
                svv += (double)iq4nl_values[idx[j]] * iq4nl_values[idx[j]];
            }
            const float s = (float)(svx / svv);
            double err = 0;
            for (int j = 0; j < n; j++) {
                const double e = (double)s * iq4nl_values[idx[j]] - x[j];
                err += e * e;
            }
            if (err < best_err) {
                best_err = err;
                best_s = s;
            }
        }
    return best_s;
}

/* Pack 32 indices: element l in the low nibble of qs[l], l + 16 high. */
static void iq4_pack(uint8_t *qs, const uint8_t *idx)
{
    for (int l = 0; l < 16; l++)
        qs[l] = (uint8_t)(idx[l] | (idx[l + 16] << 4));
}

static void q_iq4_nl(lamina_block_iq4_nl *b, const float *x)
{
    uint8_t idx[32];
    b->d = lamina_fp32_to_fp16(fit_iq4(x, 32));
    (void)iq4_assign(x, 32, lamina_fp16_to_fp32(b->d), idx);
    iq4_pack(b->qs, idx);
}

static void q_iq4_xs(lamina_block_iq4_xs *b, const float *x)
{
    float s[8];
    for (int j = 0; j < 8; j++)
        s[j] = fit_iq4(x + 32 * j, 32);
    /* the sub-block scale of largest magnitude maps to -32 */
    const float smax = signed_absmax(s, 8);
    b->d = lamina_fp32_to_fp16(smax / -32.0f);
    const float df = lamina_fp16_to_fp32(b->d);
    b->scales_h = 0;
    memset(b->scales_l, 0, sizeof b->scales_l);
    for (int j = 0; j < 8; j++) {
        /* the rounded integer scale or a neighbour, whichever fits best */
        int ls = 0;
        uint8_t idx[32], tmp[32];
        double best = iq4_assign(x + 32 * j, 32, 0.0f, idx);
        if (df != 0.0f && isfinite(df)) {
            const int r = round_clamp(s[j] / df, -32, 31);
            for (int c = r - 1; c <= r + 1; c++) {
                if (c < -32 || c > 31 || c == 0) continue;
                const double e = iq4_assign(x + 32 * j, 32, df * (float)c, tmp);
                if (e < best) {
                    best = e;
                    ls = c;
                    memcpy(idx, tmp, sizeof idx);
                }
            }
        }
        const int u = ls + 32;      /* stored biased, 0..63 */
        b->scales_l[j / 2] |= (uint8_t)((u & 0xF) << (4 * (j % 2)));
        b->scales_h |= (uint16_t)((u >> 4) << (2 * j));
        iq4_pack(b->qs + 16 * j, idx);
    }
}

/* ------------------------------------------------------------------------ */
/* MXFP4: E2M1 values under a shared power of two.                          */

static void q_mxfp4(lamina_block_mxfp4 *b, const float *x)
{
    /* the exponent from the largest magnitude; a NaN makes the block's e 0,
     * as the gguf package's max does */
    float amax = 0.0f;
    int has_nan = 0;
    for (int j = 0; j < LAMINA_QK_MXFP4; j++) {
        if (isnan(x[j])) has_nan = 1;
        else if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
    }
    int e = 0;
    if (!has_nan && amax > 0.0f) {
        const float f = floorf(log2f(amax)) - 2.0f + 127.0f;
        e = f < 0.0f ? 0 : f > 255.0f ? 255 : (int)f;
    }
    b->e = (uint8_t)e;
    const float d = lamina_e8m0_to_fp32_half(b->e);
    /* each element: the first value of least |d v - x| */
    uint8_t idx[LAMINA_QK_MXFP4];
    for (int j = 0; j < LAMINA_QK_MXFP4; j++) {
        int best = 0;
        float best_err = fabsf(d * (float)mxfp4_values[0] - x[j]);
        for (int k = 1; k < 16; k++) {
            const float err = fabsf(d * (float)mxfp4_values[k] - x[j]);
            if (err < best_err) {
                best_err = err;
                best = k;
            }
        }
        idx[j] = (uint8_t)best;
    }
    iq4_pack(b->qs, idx);
}

int lamina_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    const lamina_type_traits *t = lamina_type_get(type);
    if (t->block_size == 0 || type == LAMINA_TYPE_I32)
        return LAMINA_ENOTSUP;
    if (n < 0 || n % t->block_size != 0)
        return LAMINA_EINVAL;
    uint8_t *p = dst;

    switch (type) {
    case LAMINA_TYPE_F32:
        memmove(dst, src, (size_t)n * sizeof(float));
        return 0;
    case LAMINA_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            put_u16(p + 2 * i, lamina_fp32_to_fp16(src[i]));
        return 0;
    case LAMINA_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            put_u16(p + 2 * i, lamina_fp32_to_bf16(src[i]));
        return 0;
    default:
        break;
    }

    const int64_t nb = n / t->block_size;
    for (int64_t i = 0; i < nb; i++) {
        const float *x = src + (size_t)i * t->block_size;
        /* build the block in aligned memory, then copy it out */
        union {
            lamina_block_q4_0 q4_0; lamina_block_q4_1 q4_1;
            lamina_block_q5_0 q5_0; lamina_block_q5_1 q5_1;
            lamina_block_q8_0 q8_0; lamina_block_q8_1 q8_1;
            lamina_block_q4_K q4_K; lamina_block_q5_K q5_K;
            lamina_block_q6_K q6_K; lamina_block_q8_K q8_K;
            lamina_block_iq4_nl iq4_nl; lamina_block_iq4_xs iq4_xs;
            lamina_block_mxfp4 mxfp4;
            uint8_t bytes[sizeof(lamina_block_q8_K)];
        } u;
        switch (type) {
        case LAMINA_TYPE_Q4_0: q_q4_0(&u.q4_0, x); break;
        case LAMINA_TYPE_Q4_1: q_q4_1(&u.q4_1, x); break;
        case LAMINA_TYPE_Q5_0: q_q5_0(&u.q5_0, x); break;
        case LAMINA_TYPE_Q5_1: q_q5_1(&u.q5_1, x); break;
        case LAMINA_TYPE_Q8_0: q_q8_0(&u.q8_0, x); break;
        case LAMINA_TYPE_Q8_1: q_q8_1(&u.q8_1, x); break;
        case LAMINA_TYPE_Q2_K: q_q2_K(u.bytes, x); break;
        case LAMINA_TYPE_Q3_K: q_q3_K(u.bytes, x); break;
        case LAMINA_TYPE_Q4_K: q_q4_K(&u.q4_K, x); break;
        case LAMINA_TYPE_Q5_K: q_q5_K(&u.q5_K, x); break;
        case LAMINA_TYPE_Q6_K: q_q6_K(&u.q6_K, x); break;
        case LAMINA_TYPE_Q8_K: q_q8_K(&u.q8_K, x); break;
        case LAMINA_TYPE_IQ4_NL: q_iq4_nl(&u.iq4_nl, x); break;
        case LAMINA_TYPE_IQ4_XS: q_iq4_xs(&u.iq4_xs, x); break;
        case LAMINA_TYPE_MXFP4: q_mxfp4(&u.mxfp4, x); break;
        default: return LAMINA_ENOTSUP;
        }
        memcpy(p + (size_t)i * t->type_size, u.bytes, t->type_size);
    }
    return 0;
}
