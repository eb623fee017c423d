/*
 * lamina/quant.h - tensor element types: block layouts and conversions.
 *
 * The block layouts are those of the GGUF format (byte-exact, little
 * endian).  Every quantized type stores a row of ne[0] values as
 * ne[0] / block_size consecutive blocks.  Half-precision scales are IEEE
 * binary16 stored as uint16_t.
 *
 * The functions declared at the end are implemented in runtime/ops/quant.c.
 * They are the reference (scalar, unoptimised) conversions: the core uses
 * them as the oracle, and in-tree plugins may compile quant.c into
 * themselves.
 */
#ifndef LAMINA_QUANT_H
#define LAMINA_QUANT_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAMINA_QK4_0 32
#define LAMINA_QK4_1 32
#define LAMINA_QK5_0 32
#define LAMINA_QK5_1 32
#define LAMINA_QK8_0 32
#define LAMINA_QK_K  256
#define LAMINA_K_SCALE_SIZE 12
#define LAMINA_QK4_NL 32

/* The 16 values of the iq4_nl / iq4_xs codebook, index order (an
 * initializer: `static const int8_t v[16] = LAMINA_IQ4NL_VALUES;`). */
#define LAMINA_IQ4NL_VALUES \
    { -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113 }

#define LAMINA_QK_MXFP4 32

/* The 16 E2M1 (4-bit float) values of mxfp4, doubled so that they are
 * integers, index order: bit 3 the sign, then 0, 0.5, 1, 1.5, 2, 3, 4, 6
 * times two (an initializer, as LAMINA_IQ4NL_VALUES). */
#define LAMINA_MXFP4_VALUES \
    { 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12 }

/* x[i] = d * (q[i] - 8), q a 4-bit value: low nibbles of qs hold elements
 * 0..15, high nibbles 16..31. */
typedef struct { uint16_t d; uint8_t qs[LAMINA_QK4_0 / 2]; } lamina_block_q4_0;
/* x[i] = d * q[i] + m */
typedef struct { uint16_t d; uint16_t m; uint8_t qs[LAMINA_QK4_1 / 2]; } lamina_block_q4_1;
/* x[i] = d * (q[i] - 16), q 5-bit: low 4 bits as in q4_0, bit 4 of element
 * i is bit i of the little-endian uint32 qh. */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[LAMINA_QK5_0 / 2]; } lamina_block_q5_0;
/* x[i] = d * q[i] + m, q 5-bit as in q5_0 */
typedef struct { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[LAMINA_QK5_1 / 2]; } lamina_block_q5_1;
/* x[i] = d * qs[i] */
typedef struct { uint16_t d; int8_t qs[LAMINA_QK8_0]; } lamina_block_q8_0;
/* x[i] = d * qs[i]; s = d * sum(qs) (used by kernels) */
typedef struct { uint16_t d; uint16_t s; int8_t qs[LAMINA_QK8_0]; } lamina_block_q8_1;

/* Super-block of 256 values in 8 sub-blocks of 32; each sub-block j has a
 * 6-bit scale sc_j and 6-bit min m_j packed into `scales` (see
 * lamina_get_scale_min_k4).  x = d * sc_j * q - dmin * m_j, q 4-bit:
 * for each 64-value chunk c, qs[32c .. 32c+31] low nibbles are sub-block 2c,
 * high nibbles sub-block 2c+1. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t  scales[LAMINA_K_SCALE_SIZE];
    uint8_t  qs[LAMINA_QK_K / 2];
} lamina_block_q4_K;

/* As q4_K with a fifth bit: bit (2c) of qh[l] is the high bit of element l
 * of sub-block 2c, bit (2c+1) that of element l of sub-block 2c+1. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t  scales[LAMINA_K_SCALE_SIZE];
    uint8_t  qh[LAMINA_QK_K / 8];
    uint8_t  qs[LAMINA_QK_K / 2];
} lamina_block_q5_K;

/* 16 sub-blocks of 16 with int8 scales; x = d * scales[j] * (q - 32),
 * q 6-bit from 4 low bits in ql and 2 high bits in qh. */
typedef struct {
    uint8_t  ql[LAMINA_QK_K / 2];
    uint8_t  qh[LAMINA_QK_K / 4];
    int8_t   scales[LAMINA_QK_K / 16];
    uint16_t d;
} lamina_block_q6_K;

/* 16 sub-blocks of 16; scales[j]: low nibble the 4-bit scale sc_j, high
 * nibble the 4-bit min m_j.  x = d * sc_j * q - dmin * m_j, q 2-bit:
 * element 128c + 32s + l (c < 2, s < 4, l < 32) is bits 2s..2s+1 of
 * qs[32c + l]; its sub-block is element / 16. */
typedef struct {
    uint8_t  scales[LAMINA_QK_K / 16];
    uint8_t  qs[LAMINA_QK_K / 4];
    uint16_t d;
    uint16_t dmin;
} lamina_block_q2_K;

/* 16 sub-blocks of 16 with signed 6-bit scales (lamina_get_scales_q3k);
 * x = d * sc_j * q, q in -4..3: the two low bits of element 128c + 32s + l
 * are bits 2s..2s+1 of qs[32c + l], and bit (element / 32) of hmask[l]
 * clear means q = low bits - 4, set means q = low bits. */
typedef struct {
    uint8_t  hmask[LAMINA_QK_K / 8];
    uint8_t  qs[LAMINA_QK_K / 4];
    uint8_t  scales[LAMINA_K_SCALE_SIZE];
    uint16_t d;
} lamina_block_q3_K;

/* Non-linear 4-bit: x[i] = d * v[q[i]], v the LAMINA_IQ4NL_VALUES codebook,
 * q a 4-bit index laid out as in q4_0 (low nibbles of qs: elements 0..15,
 * high nibbles: 16..31). */
typedef struct { uint16_t d; uint8_t qs[LAMINA_QK4_NL / 2]; } lamina_block_iq4_nl;

/* Super-block of 256 in 8 sub-blocks of 32 with 6-bit scales ls_j
 * (lamina_get_scale_iq4xs): x = d * (ls_j - 32) * v[q], the indices of
 * sub-block j in qs[16j .. 16j+15] laid out as in iq4_nl. */
typedef struct {
    uint16_t d;
    uint16_t scales_h;      /* bits 2j..2j+1: high two bits of ls_j */
    uint8_t  scales_l[LAMINA_QK_K / 64];  /* nibble j%2 of byte j/2: low four bits */
    uint8_t  qs[LAMINA_QK_K / 2];
} lamina_block_iq4_xs;

/* OCP microscaling MXFP4 (gpt-oss's expert weights): x[i] =
 * v[q[i]] * 2^(e - 128), v the doubled LAMINA_MXFP4_VALUES (hence 128, not
 * the E8M0 bias 127; lamina_e8m0_to_fp32_half), e the shared E8M0 exponent,
 * q a 4-bit index laid out as in q4_0. */
typedef struct { uint8_t e; uint8_t qs[LAMINA_QK_MXFP4 / 2]; } lamina_block_mxfp4;

/* Intermediate type for K-quant dot products: x = d * qs; bsums[j] is the
 * sum of qs[16j .. 16j+15]. */
typedef struct {
    float    d;
    int8_t   qs[LAMINA_QK_K];
    int16_t  bsums[LAMINA_QK_K / 16];
} lamina_block_q8_K;

_Static_assert(sizeof(lamina_block_q4_0) == 18,  "q4_0 layout");
_Static_assert(sizeof(lamina_block_q4_1) == 20,  "q4_1 layout");
_Static_assert(sizeof(lamina_block_q5_0) == 22,  "q5_0 layout");
_Static_assert(sizeof(lamina_block_q5_1) == 24,  "q5_1 layout");
_Static_assert(sizeof(lamina_block_q8_0) == 34,  "q8_0 layout");
_Static_assert(sizeof(lamina_block_q8_1) == 36,  "q8_1 layout");
_Static_assert(sizeof(lamina_block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(lamina_block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(lamina_block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(lamina_block_q8_K) == 292, "q8_K layout");
_Static_assert(sizeof(lamina_block_q2_K) == 84,  "q2_K layout");
_Static_assert(sizeof(lamina_block_q3_K) == 110, "q3_K layout");
_Static_assert(sizeof(lamina_block_iq4_nl) == 18,  "iq4_nl layout");
_Static_assert(sizeof(lamina_block_iq4_xs) == 136, "iq4_xs layout");
_Static_assert(sizeof(lamina_block_mxfp4) == 17,   "mxfp4 layout");

/* Elements per block and bytes per block of a type; {0, 0} when the type
 * is unknown to this build (callers must check). */
typedef struct lamina_type_traits {
    const char *name;       /* "q4_K" */
    uint32_t block_size;    /* elements per block */
    uint32_t type_size;     /* bytes per block */
    int      is_quantized;
} lamina_type_traits;

const lamina_type_traits *lamina_type_get(uint32_t type);

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size
 * or the type is unknown. */
uint64_t lamina_row_size(uint32_t type, int64_t n);

/* ---- scalar half-precision helpers ---- */

static inline float lamina_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp  = (h >> 10) & 0x1fu;
    uint32_t man  = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {                           /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while ((man & 0x400u) == 0) { man <<= 1; exp--; }
            man &= 0x3ffu;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);   /* inf / nan */
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Round to nearest even. */
static inline uint16_t lamina_fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp  = (x >> 23) & 0xffu;
    uint32_t man  = x & 0x7fffffu;
    if (exp == 0xff)                                   /* inf / nan */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);  /* overflow -> inf */
    if (e <= 0) {                                      /* subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem  = man & ((1u << shift) - 1);
        uint32_t mid  = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) half++;
    return (uint16_t)half;
}

static inline float lamina_bf16_to_fp32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t lamina_fp32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64); /* quiet nan */
    return (uint16_t)((x + (0x7fffu + ((x >> 16) & 1))) >> 16);
}

/* Half the value of an E8M0 exponent, 2^(e - 128), exactly (e 0 and 1 give
 * the subnormals 2^-128, 2^-127): the scale of an mxfp4 block, whose
 * values are doubled. */
static inline float lamina_e8m0_to_fp32_half(uint8_t e)
{
    const uint32_t bits = e < 2 ? UINT32_C(0x00200000) << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Unpack the 6-bit scale and min of sub-block j (0..7) of a q4_K / q5_K
 * super-block. */
static inline void lamina_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m  = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m  = (uint8_t)((q[j + 4] >> 4)  | ((q[j - 0] >> 6) << 4));
    }
}

/* All eight scales and mins of a q4_K / q5_K super-block at once, the
 * same values as lamina_get_scale_min_k4 j = 0..7 gives: out bytes 0..7
 * are sc[0..7], bytes 8..15 are m[0..7].  Every shift stays inside a
 * byte, so this holds on either byte order. */
static inline void lamina_get_scales_mins_k4(const uint8_t *q, uint8_t out[16])
{
    uint32_t u0, u1, u2, w[4];
    memcpy(&u0, q, 4);
    memcpy(&u1, q + 4, 4);
    memcpy(&u2, q + 8, 4);
    w[0] = u0 & 0x3f3f3f3fu;
    w[1] = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
    w[2] = u1 & 0x3f3f3f3fu;
    w[3] = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
    memcpy(out, w, 16);
}

/* The sixteen signed scales (-32..31) of a q3_K super-block from its 12
 * scale bytes: the low four bits of scale k are nibble k/8 of byte k%8,
 * the high two bits are bits 2(k/4)..2(k/4)+1 of byte 8 + k%4; stored
 * biased by 32. */
static inline void lamina_get_scales_q3k(const uint8_t *sc12, int8_t out[16])
{
    for (int k = 0; k < 16; k++) {
        const int lo = (sc12[k % 8] >> (4 * (k / 8))) & 0xF;
        const int hi = (sc12[8 + k % 4] >> (2 * (k / 4))) & 3;
        out[k] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* The signed scale ls_j - 32 (-32..31) of sub-block j (0..7) of an iq4_xs
 * super-block. */
static inline int lamina_get_scale_iq4xs(const lamina_block_iq4_xs *b, int j)
{
    const int lo = (b->scales_l[j / 2] >> (4 * (j % 2))) & 0xF;
    const int hi = (b->scales_h >> (2 * j)) & 3;
    return (lo | (hi << 4)) - 32;
}

/* ---- reference conversions (runtime/ops/quant.c) ---- */

/* Convert one row of n elements of `type` at `src` to floats in `dst`.
 * Returns 0, or LAMINA_ENOTSUP for a type without a dequantizer, or
 * LAMINA_EINVAL when n is not a multiple of the block size. */
int lamina_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Quantize one row of n floats into `type` (reference rounding, used to
 * make test data and the KV cache).  Same return codes. */
int lamina_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

#ifdef __cplusplus
}
#endif
#endif /* LAMINA_QUANT_H */
