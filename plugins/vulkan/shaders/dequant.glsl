/*
 * dequant.glsl - read weights of type W_TYPE from binding 1 (A).
 *
 * A row is a sequence of blocks of QK elements and BSZ bytes.  Elements are
 * read in groups of GS consecutive elements (GS = 4 for quantized types,
 * where a group never straddles a scale, 1 for float types, so rows of any
 * length work); WV is float or vec4 accordingly.
 *   WV w_group(uint blk, uint j): group j (0 .. QK/GS-1) of the block whose
 *   first byte is at address blk (2-aligned; 4-aligned for F32).
 * The layouts are those of lamina/quant.h.
 */

#ifndef W_TYPE
#error "W_TYPE must be defined"
#endif

/* Weight loads.  With USE_S16 (the device has storageBuffer16BitAccess) A
 * is also read as 16-bit words: a 2-aligned 32-bit value is two loads with
 * no branch on its alignment, instead of one or two words and a select. */
#ifndef USE_S16
#define USE_S16 0
#endif
#if USE_S16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
layout(std430, binding = 1) readonly buffer BufA16 { uint16_t A16[]; };
#define WA_U16(a)   uint(A16[(a) >> 1])
#define WA_U32_2(a) (uint(A16[(a) >> 1]) | (uint(A16[((a) >> 1) + 1u]) << 16))
#else
#define WA_U16(a)   LD_U16(A, a)
#define WA_U32_2(a) LD_U32_2(A, a)
#endif
#define WA_F16(a)   unpackHalf2x16(WA_U16(a)).x
#define WA_BF16(a)  uintBitsToFloat(WA_U16(a) << 16)

/* Whole-block reads for the block-per-invocation matrix-vector variant.
 * A block that starts with its f16 scale at the 2-aligned address blk
 * lies in aligned words from blk / 4 on: BLK_WORDS(blk, n) loads the
 * n + 1 words that hold the scale and the n words after it, one load
 * each (rather than a scale and two halves per group of 4 values);
 * BLK_D is the scale and BLK_V(i) the 4 bytes at blk + 2 + 4i,
 * funnel-shifted out of two words when blk is 4-aligned. */
#define BLK_MAXW 9u
#define BLK_WORDS(blk, n)                                   \
    uint bw_[BLK_MAXW];                                     \
    bool bm_ = ((blk) & 2u) != 0u;                          \
    for (uint i_ = 0u; i_ <= (n); i_++)                     \
        bw_[i_] = A[((blk) >> 2) + i_]
#define BLK_D unpackHalf2x16(bm_ ? bw_[0] >> 16 : bw_[0]).x
#define BLK_V(i) (bm_ ? bw_[(i) + 1u] : (bw_[i] >> 16) | (bw_[(i) + 1u] << 16))

/* vec4 of the four unsigned / signed bytes of a word, lowest byte first */
vec4 u8x4(uint u)
{
    return vec4(float(u & 0xffu), float((u >> 8) & 0xffu),
                float((u >> 16) & 0xffu), float(u >> 24));
}
vec4 s8x4(uint u)
{
    return vec4(ivec4(int(u << 24), int(u << 16), int(u << 8), int(u)) >> 24);
}

#if W_TYPE == T_F32
#define QK 1u
#define BSZ 4u
#define GS 1u
#define GS_ONE 1
#define WV float
WV w_group(uint blk, uint j) { return LD_F32(A, blk); }

#elif W_TYPE == T_F16
#define QK 1u
#define BSZ 2u
#define GS 1u
#define GS_ONE 1
#define WV float
WV w_group(uint blk, uint j) { return WA_F16(blk); }

#elif W_TYPE == T_BF16
#define QK 1u
#define BSZ 2u
#define GS 1u
#define GS_ONE 1
#define WV float
WV w_group(uint blk, uint j) { return WA_BF16(blk); }

#elif W_TYPE == T_Q4_0
#define QK 32u
#define BSZ 18u
#define GS 4u
#define GS_ONE 0
#define WV vec4
/* d | qs[16]: x = d * (q - 8); groups 0..3 low nibbles, 4..7 high */
WV w_group(uint blk, uint j)
{
    float d = WA_F16(blk);
    uint q = (WA_U32_2(blk + 2u + 4u * (j & 3u)) >> (4u * (j >> 2))) & 0x0f0f0f0fu;
    return d * (u8x4(q) - 8.0);
}

#elif W_TYPE == T_Q4_1
#define QK 32u
#define BSZ 20u
#define GS 4u
#define GS_ONE 0
#define WV vec4
/* d | m | qs[16]: x = d * q + m */
WV w_group(uint blk, uint j)
{
    float d = WA_F16(blk);
    float m = WA_F16(blk + 2u);
    uint q = (WA_U32_2(blk + 4u + 4u * (j & 3u)) >> (4u * (j >> 2))) & 0x0f0f0f0fu;
    return d * u8x4(q) + m;
}

#elif W_TYPE == T_Q5_0 || W_TYPE == T_Q5_1
#define QK 32u
#define GS 4u
#define GS_ONE 0
#define WV vec4
#if W_TYPE == T_Q5_0
#define BSZ 22u
#define Q5_QH 2u
#else
#define BSZ 24u
#define Q5_QH 4u
#endif
/* bit 4 of element e is bit e of qh: spread 4 bits into bit 4 of 4 bytes */
uint q5_high(uint qh, uint j)
{
    uint hb = (qh >> (4u * j)) & 0xfu;
    return ((hb & 1u) | ((hb & 2u) << 7) | ((hb & 4u) << 14) | ((hb & 8u) << 21)) << 4;
}
/* Q5_0: d | qh | qs: x = d * (q - 16);  Q5_1: d | m | qh | qs: x = d * q + m */
WV w_group(uint blk, uint j)
{
    float d = WA_F16(blk);
    uint qh = WA_U32_2(blk + Q5_QH);
    uint q = (WA_U32_2(blk + Q5_QH + 4u + 4u * (j & 3u)) >> (4u * (j >> 2))) & 0x0f0f0f0fu;
    q |= q5_high(qh, j);
#if W_TYPE == T_Q5_0
    return d * (u8x4(q) - 16.0);
#else
    return d * u8x4(q) + WA_F16(blk + 2u);
#endif
}
#if W_TYPE == T_Q5_0
/* the whole block at blk dotted with x[0..7], its 32 X values (below) */
#define HAVE_BLOCK_DOT 1
float w_block_dot(uint blk, vec4 x[8])
{
    BLK_WORDS(blk, 5u);
    uint qh = BLK_V(0u);
    float s = 0.0;
    for (uint j = 0u; j < 8u; j++) {
        uint q = ((BLK_V(1u + (j & 3u)) >> (4u * (j >> 2))) & 0x0f0f0f0fu) | q5_high(qh, j);
        s += dot(u8x4(q) - 16.0, x[j]);
    }
    return BLK_D * s;
}
#endif

#elif W_TYPE == T_Q8_0
#define QK 32u
#define BSZ 34u
#define GS 4u
#define GS_ONE 0
#define WV vec4
/* d | qs[32] int8: x = d * q */
WV w_group(uint blk, uint j)
{
    return WA_F16(blk) * s8x4(WA_U32_2(blk + 2u + 4u * j));
}
/* the whole block at blk dotted with x[0..7], its 32 X values (below) */
#define HAVE_BLOCK_DOT 1
float w_block_dot(uint blk, vec4 x[8])
{
    BLK_WORDS(blk, 8u);
    float s = 0.0;
    for (uint i = 0u; i < 8u; i++)
        s += dot(s8x4(BLK_V(i)), x[i]);
    return BLK_D * s;
}

#elif W_TYPE == T_Q4_K || W_TYPE == T_Q5_K
#define QK 256u
#define GS 4u
#define GS_ONE 0
#define WV vec4
#if W_TYPE == T_Q4_K
#define BSZ 144u
#define K_QS 16u
#else
#define BSZ 176u
#define K_QH 16u
#define K_QS 48u
#endif
/* 6-bit scale and min of sub-block s from the 12 bytes at blk + 4 */
void k4_scale_min(uint blk, uint s, out float sc, out float mn)
{
    uint p = blk + 4u;
    if (s < 4u) {
        sc = float(LD_U8(A, p + s) & 63u);
        mn = float(LD_U8(A, p + s + 4u) & 63u);
    } else {
        uint b = LD_U8(A, p + s + 4u);
        sc = float((b & 0xfu) | ((LD_U8(A, p + s - 4u) >> 6) << 4));
        mn = float((b >> 4) | ((LD_U8(A, p + s) >> 6) << 4));
    }
}
/* d | dmin | scales[12] | (qh[32]) | qs[128]: x = d*sc*q - dmin*m.
 * Group j covers elements 4j..4j+3: chunk c = j/16 of 64 values, half
 * hi = (j%16)/8 picks low or high nibbles (sub-block 2c+hi), l = 4*(j%8). */
WV w_group(uint blk, uint j)
{
    uint c = j >> 4;
    uint hi = (j >> 3) & 1u;
    uint l = 4u * (j & 7u);
    uint s = 2u * c + hi;
    float d = WA_F16(blk);
    float dmin = WA_F16(blk + 2u);
    float sc, mn;
    k4_scale_min(blk, s, sc, mn);
    uint q = (WA_U32_2(blk + K_QS + 32u * c + l) >> (4u * hi)) & 0x0f0f0f0fu;
#if W_TYPE == T_Q5_K
    /* bit s of qh[l] is the fifth bit of element l of sub-block s */
    q |= ((WA_U32_2(blk + K_QH + l) >> s) & 0x01010101u) << 4;
#endif
    return d * sc * u8x4(q) - dmin * mn;
}

#elif W_TYPE == T_Q6_K
#define QK 256u
#define BSZ 210u
#define GS 4u
#define GS_ONE 0
#define WV vec4
/* ql[128] | qh[64] | scales[16] int8 | d: x = d * sc * (q - 32).
 * Element e: half h = e/128, quarter s = (e%128)/32, l = e%32;
 * low 4 bits: ql[64h + 32(s&1) + l] >> 4(s>>1); high 2 bits:
 * qh[32h + l] >> 2s; scale index 8h + l/16 + 2s. */
WV w_group(uint blk, uint j)
{
    uint h = j >> 5;
    uint s = (j >> 3) & 3u;
    uint l = 4u * (j & 7u);
    uint lo = (WA_U32_2(blk + 64u * h + 32u * (s & 1u) + l) >> (4u * (s >> 1))) & 0x0f0f0f0fu;
    uint hb = (WA_U32_2(blk + 128u + 32u * h + l) >> (2u * s)) & 0x03030303u;
    float sc = float(int(LD_U8(A, blk + 192u + 8u * h + (l >> 4) + 2u * s) << 24) >> 24);
    float d = WA_F16(blk + 208u);
    return d * sc * (u8x4(lo | (hb << 4)) - 32.0);
}

#else
#error "unsupported W_TYPE"
#endif

#define GPB (QK / GS)   /* groups per block */
