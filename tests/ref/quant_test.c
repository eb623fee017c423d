/*
 * quant_test - runtime/ops/quant.c: type traits, row sizes, return codes,
 * hand-decoded blocks, the q8_1 / q8_K quantizers (which the gguf package
 * lacks), zero/constant/NaN rows for every type, f16/bf16 rounding.
 * Prints TAP.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/quant.h"
#include "tap.h"

static const uint32_t all_types[] = {
    LAMINA_TYPE_F32, LAMINA_TYPE_F16, LAMINA_TYPE_BF16, LAMINA_TYPE_Q4_0, LAMINA_TYPE_Q4_1,
    LAMINA_TYPE_Q5_0, LAMINA_TYPE_Q5_1, LAMINA_TYPE_Q8_0, LAMINA_TYPE_Q8_1, LAMINA_TYPE_Q2_K,
    LAMINA_TYPE_Q3_K, LAMINA_TYPE_Q4_K, LAMINA_TYPE_Q5_K, LAMINA_TYPE_Q6_K, LAMINA_TYPE_Q8_K,
    LAMINA_TYPE_IQ4_NL, LAMINA_TYPE_IQ4_XS, LAMINA_TYPE_MXFP4,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static uint64_t rs = 88172645463325252ull;
static float frand(void)            /* xorshift64, uniform [-1, 1) */
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void test_traits(void)
{
    static const struct { uint32_t t; const char *name; uint32_t bs, ts; int q; } want[] = {
        { LAMINA_TYPE_F32, "f32", 1, 4, 0 },      { LAMINA_TYPE_F16, "f16", 1, 2, 0 },
        { LAMINA_TYPE_BF16, "bf16", 1, 2, 0 },    { LAMINA_TYPE_I32, "i32", 1, 4, 0 },
        { LAMINA_TYPE_Q4_0, "q4_0", 32, 18, 1 },  { LAMINA_TYPE_Q4_1, "q4_1", 32, 20, 1 },
        { LAMINA_TYPE_Q5_0, "q5_0", 32, 22, 1 },  { LAMINA_TYPE_Q5_1, "q5_1", 32, 24, 1 },
        { LAMINA_TYPE_Q8_0, "q8_0", 32, 34, 1 },  { LAMINA_TYPE_Q8_1, "q8_1", 32, 36, 1 },
        { LAMINA_TYPE_Q2_K, "q2_K", 256, 84, 1 }, { LAMINA_TYPE_Q3_K, "q3_K", 256, 110, 1 },
        { LAMINA_TYPE_Q4_K, "q4_K", 256, 144, 1 }, { LAMINA_TYPE_Q5_K, "q5_K", 256, 176, 1 },
        { LAMINA_TYPE_Q6_K, "q6_K", 256, 210, 1 }, { LAMINA_TYPE_Q8_K, "q8_K", 256, 292, 1 },
        { LAMINA_TYPE_IQ4_NL, "iq4_nl", 32, 18, 1 }, { LAMINA_TYPE_IQ4_XS, "iq4_xs", 256, 136, 1 },
        { LAMINA_TYPE_MXFP4, "mxfp4", 32, 17, 1 },
    };
    int good = 1;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const lamina_type_traits *t = lamina_type_get(want[i].t);
        if (!t || strcmp(t->name, want[i].name) || t->block_size != want[i].bs ||
            t->type_size != want[i].ts || t->is_quantized != want[i].q) {
            good = 0;
            printf("# type %u: got %s %u %u %d\n", want[i].t, t ? t->name : "NULL",
                   t ? t->block_size : 0, t ? t->type_size : 0, t ? t->is_quantized : -1);
        }
    }
    ok(good, "traits of all 19 types (name, block size, bytes, quantized)");
    const lamina_type_traits *u4 = lamina_type_get(4), *u99 = lamina_type_get(99);
    ok(u4 && u99 && u4->block_size == 0 && u4->type_size == 0 && u99->block_size == 0,
       "unknown types (4, 99) give block_size 0, type_size 0");

    ok(lamina_row_size(LAMINA_TYPE_Q4_K, 512) == 288, "row size q4_K 512 = 288");
    ok(lamina_row_size(LAMINA_TYPE_Q4_0, 96) == 54, "row size q4_0 96 = 54");
    ok(lamina_row_size(LAMINA_TYPE_F16, 7) == 14, "row size f16 7 = 14");
    ok(lamina_row_size(LAMINA_TYPE_Q4_0, 33) == 0, "row size 0 when n is not a block multiple");
    ok(lamina_row_size(LAMINA_TYPE_F32, -4) == 0, "row size 0 for negative n");
    ok(lamina_row_size(4, 32) == 0, "row size 0 for an unknown type");
    ok(lamina_row_size(LAMINA_TYPE_F32, INT64_MAX) == 0, "row size 0 when bytes overflow");
    ok(lamina_row_size(LAMINA_TYPE_Q8_K, INT64_C(256) << 40) == (UINT64_C(292) << 40),
       "row size of a 2^48-element q8_K row");
}

static void test_codes(void)
{
    float f[256];
    uint8_t b[300] = { 0 };
    ok(lamina_dequantize_row(LAMINA_TYPE_I32, b, f, 4) == LAMINA_ENOTSUP, "dequantize i32: ENOTSUP");
    ok(lamina_dequantize_row(5, b, f, 32) == LAMINA_ENOTSUP, "dequantize unknown type: ENOTSUP");
    ok(lamina_dequantize_row(LAMINA_TYPE_Q4_0, b, f, 48) == LAMINA_EINVAL,
       "dequantize q4_0 48 elements: EINVAL");
    ok(lamina_dequantize_row(LAMINA_TYPE_Q4_K, b, f, -256) == LAMINA_EINVAL,
       "dequantize negative n: EINVAL");
    ok(lamina_quantize_row(LAMINA_TYPE_I32, f, b, 4) == LAMINA_ENOTSUP, "quantize i32: ENOTSUP");
    ok(lamina_quantize_row(LAMINA_TYPE_Q6_K, f, b, 128) == LAMINA_EINVAL,
       "quantize q6_K 128 elements: EINVAL");
    ok(lamina_dequantize_row(LAMINA_TYPE_Q4_0, b, f, 0) == 0, "empty row: 0");
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* Blocks written by hand from the layouts in quant.h. */
static void test_known_blocks(void)
{
    float y[256];
    /* q4_0: d = 0.5; qs[0] = 0x9F -> x0 = 0.5*(15-8), x16 = 0.5*(9-8) */
    uint8_t q40[18] = { 0 };
    put16(q40, 0x3800);
    memset(q40 + 2, 0x88, 16);
    q40[2] = 0x9F;
    lamina_dequantize_row(LAMINA_TYPE_Q4_0, q40, y, 32);
    ok(y[0] == 3.5f && y[16] == 0.5f && y[1] == 0.0f && y[31] == 0.0f, "q4_0 block by hand");

    /* q4_1: d = 0.25, m = -1; qs[3] = 0x4A -> x3 = 0.25*10 - 1, x19 = 0.25*4 - 1 */
    uint8_t q41[20] = { 0 };
    put16(q41, 0x3400);
    put16(q41 + 2, 0xBC00);
    q41[4 + 3] = 0x4A;
    lamina_dequantize_row(LAMINA_TYPE_Q4_1, q41, y, 32);
    ok(y[3] == 1.5f && y[19] == 0.0f && y[0] == -1.0f, "q4_1 block by hand");

    /* q5_0: d = 1; element 17: low nibble 3 (high nibble of qs[1]), bit 17 of qh set
     * -> q = 19, x = 3; element 2: nibble 0, bit clear -> -16 */
    uint8_t q50[22] = { 0 };
    put16(q50, 0x3C00);
    q50[2 + 2] = 0x02;            /* qh byte 2 bit 1 = bit 17 */
    q50[6 + 1] = 0x30;
    lamina_dequantize_row(LAMINA_TYPE_Q5_0, q50, y, 32);
    ok(y[17] == 3.0f && y[2] == -16.0f && y[1] == -16.0f, "q5_0 block by hand (qh bit 17)");

    /* q5_1: d = 2, m = 0.5; element 0: nibble 1, bit 0 set -> q = 17, x = 34.5 */
    uint8_t q51[24] = { 0 };
    put16(q51, 0x4000);
    put16(q51 + 2, 0x3800);
    q51[4] = 0x01;
    q51[8] = 0x01;
    lamina_dequantize_row(LAMINA_TYPE_Q5_1, q51, y, 32);
    ok(y[0] == 34.5f && y[1] == 0.5f, "q5_1 block by hand");

    /* q8_0: d = -0.125; qs[5] = -7 -> 0.875 */
    uint8_t q80[34] = { 0 };
    put16(q80, 0xB000);
    q80[2 + 5] = (uint8_t)(int8_t)-7;
    lamina_dequantize_row(LAMINA_TYPE_Q8_0, q80, y, 32);
    ok(y[5] == 0.875f && y[4] == 0.0f, "q8_0 block by hand");

    /* q4_K: d = 1, dmin = 0.5; sub-block 0: sc 2, m 3; sub-block 5: sc 37, m 50
     * element 0: q = 5 -> 2*5 - 1.5; element 160 (chunk 2, high nibble): q = 7
     * -> 37*7 - 25 */
    lamina_block_q4_K k4;
    memset(&k4, 0, sizeof k4);
    k4.d = 0x3C00;
    k4.dmin = 0x3800;
    k4.scales[0] = 2;
    k4.scales[4] = 3;
    k4.scales[9] = (uint8_t)((37 & 0xF) | ((50 & 0xF) << 4));
    k4.scales[1] |= (uint8_t)((37 >> 4) << 6);
    k4.scales[5] |= (uint8_t)((50 >> 4) << 6);
    k4.qs[0] = 0x05;
    k4.qs[64] = 0x70;
    lamina_dequantize_row(LAMINA_TYPE_Q4_K, &k4, y, 256);
    ok(y[0] == 8.5f && y[160] == 234.0f && y[161] == -25.0f && y[1] == -1.5f,
       "q4_K block by hand (6-bit scales with high bits)");

    /* q5_K: same scales; element 33 (sub-block 1, high nibble of qs[1]) with
     * qh[1] bit 1 set: q = 16 + 2; sub-block 1 scale: sc = q[1]&63 = 37>>4<<6 -> 0 */
    lamina_block_q5_K k5;
    memset(&k5, 0, sizeof k5);
    k5.d = 0x3C00;
    k5.dmin = 0x0000;
    k5.scales[1] = 9;             /* sub-block 1: sc 9 */
    k5.qs[1] = 0x20;
    k5.qh[1] = 0x02;
    lamina_dequantize_row(LAMINA_TYPE_Q5_K, &k5, y, 256);
    ok(y[33] == 9.0f * 18.0f && y[32] == 0.0f, "q5_K block by hand (qh bit of sub-block 1)");

    /* q6_K: d = 1; element 0: ql low 3, qh bits 0-1 = 2 -> q = 35-32 = 3, scale -2;
     * element 64: ql[0] high nibble 15, qh[0] bits 4-5 = 0 -> -17, scale 3 */
    lamina_block_q6_K k6;
    memset(&k6, 0, sizeof k6);
    memset(k6.qh, 0xAA, sizeof k6.qh);   /* every 2-bit group = 2 -> q offset 32 */
    k6.d = 0x3C00;
    k6.scales[0] = -2;
    k6.scales[4] = 3;
    k6.ql[0] = 0xF3;
    k6.qh[0] = 0x8A;                     /* bits 0-1: 2, 2-3: 2, 4-5: 0, 6-7: 2 */
    lamina_dequantize_row(LAMINA_TYPE_Q6_K, &k6, y, 256);
    ok(y[0] == -6.0f && y[64] == -51.0f && y[1] == 0.0f, "q6_K block by hand");

    /* q8_K: d = 0.5 float; qs[255] = -128 */
    lamina_block_q8_K k8;
    memset(&k8, 0, sizeof k8);
    k8.d = 0.5f;
    k8.qs[255] = -128;
    k8.qs[0] = 3;
    lamina_dequantize_row(LAMINA_TYPE_Q8_K, &k8, y, 256);
    ok(y[255] == -64.0f && y[0] == 1.5f, "q8_K block by hand");

    /* q2_K: scales[0] = 0x21 (sc 1, m 2), d = 1, dmin = 0.25; element 32 is bits
     * 2-3 of qs[0] (value 3) -> but element 32 is sub-block 2: scales[2] = 0x13 */
    uint8_t q2[84] = { 0 };
    q2[0] = 0x21;
    q2[2] = 0x13;
    q2[16] = 0x0D;                 /* bits 0-1: 1 (element 0), bits 2-3: 3 (element 32) */
    put16(q2 + 80, 0x3C00);
    put16(q2 + 82, 0x3400);
    lamina_dequantize_row(LAMINA_TYPE_Q2_K, q2, y, 256);
    ok(y[0] == 1.0f - 0.5f && y[32] == 3.0f * 3.0f - 0.25f, "q2_K block by hand");

    /* q3_K: d = 1; scale k=0: low nibble scales[0]&15 = 5, high bits scales[8]&3 = 2
     * -> 37 - 32 = 5; element 0: qs bits 0-1 = 1, hmask[0] bit 0 clear -> 1 - 4 */
    uint8_t q3[110] = { 0 };
    q3[96 + 0] = 0x05;
    q3[96 + 8] = 0x02;
    q3[32] = 0x01;
    q3[1] = 0x01;                  /* element 1: hmask bit set -> q = 0 */
    put16(q3 + 108, 0x3C00);
    lamina_dequantize_row(LAMINA_TYPE_Q3_K, q3, y, 256);
    ok(y[0] == -15.0f && y[1] == 0.0f, "q3_K block by hand");

    /* iq4_nl: d = 0.5; qs[0] = 0xF0: element 0 index 0 (-127), element 16
     * index 15 (113); qs[1] = 0x88: elements 1 and 17 index 8 (1) */
    lamina_block_iq4_nl n4;
    memset(&n4, 0, sizeof n4);
    n4.d = 0x3800;
    n4.qs[0] = 0xF0;
    n4.qs[1] = 0x88;
    lamina_dequantize_row(LAMINA_TYPE_IQ4_NL, &n4, y, 32);
    ok(y[0] == -63.5f && y[16] == 56.5f && y[1] == 0.5f && y[17] == 0.5f && y[2] == -63.5f,
       "iq4_nl block by hand (codebook ends and middle)");

    /* iq4_xs: d = 1; sub-block 3 has ls = 29 (low nibble 0xD in the high
     * nibble of scales_l[1], high bits 1 in bits 6-7 of scales_h) -> -3;
     * every other sub-block ls = 0 -> -32.  Element 96 = low nibble of
     * qs[48] = 14 (89), element 112 = its high nibble 1 (-104). */
    lamina_block_iq4_xs x4;
    memset(&x4, 0, sizeof x4);
    x4.d = 0x3C00;
    x4.scales_l[1] = 0xD0;
    x4.scales_h = 1u << 6;
    x4.qs[48] = 0x1E;
    lamina_dequantize_row(LAMINA_TYPE_IQ4_XS, &x4, y, 256);
    ok(y[96] == -267.0f && y[112] == 312.0f && y[97] == 381.0f && y[0] == 4064.0f &&
       y[255] == 4064.0f, "iq4_xs block by hand (6-bit sub-block scales)");

    /* mxfp4: e = 128 (scale 1); qs[0] = 0x7F: element 0 index 15 (-12),
     * element 16 index 7 (12); qs[1] = 0x98: element 1 index 8 (0, not
     * -0), element 17 index 9 (-1); qs[2] = 0x51: 1 and 6 */
    lamina_block_mxfp4 m4;
    memset(&m4, 0, sizeof m4);
    m4.e = 128;
    m4.qs[0] = 0x7F;
    m4.qs[1] = 0x98;
    m4.qs[2] = 0x51;
    lamina_dequantize_row(LAMINA_TYPE_MXFP4, &m4, y, 32);
    ok(y[0] == -12.0f && y[16] == 12.0f && y[1] == 0.0f && !signbit(y[1]) && y[17] == -1.0f &&
       y[2] == 1.0f && y[18] == 6.0f && y[31] == 0.0f, "mxfp4 block by hand (doubled E2M1 values)");
    /* the exponent's ends: e 0 and 1 are subnormal, 255 overflows 12 */
    m4.e = 0;
    lamina_dequantize_row(LAMINA_TYPE_MXFP4, &m4, y, 32);
    int ends = y[2] == 0x1p-128f && y[18] == 6.0f * 0x1p-128f;
    m4.e = 1;
    lamina_dequantize_row(LAMINA_TYPE_MXFP4, &m4, y, 32);
    ends = ends && y[2] == 0x1p-127f && y[17] == -0x1p-127f;
    m4.e = 255;
    lamina_dequantize_row(LAMINA_TYPE_MXFP4, &m4, y, 32);
    ends = ends && y[2] == 0x1p127f && isinf(y[0]) && y[0] < 0 && isinf(y[16]);
    ok(ends, "mxfp4 exponents 0, 1 (subnormal scales) and 255 (12 overflows)");
    int pow2 = 1;
    for (int e = 0; e < 256; e++)
        if (lamina_e8m0_to_fp32_half((uint8_t)e) != ldexpf(1.0f, e - 128)) {
            printf("# e8m0 %d: %a\n", e, (double)lamina_e8m0_to_fp32_half((uint8_t)e));
            pow2 = 0;
        }
    ok(pow2, "lamina_e8m0_to_fp32_half(e) = 2^(e - 128) for all 256 exponents");
}

static void test_q8_quantizers(void)
{
    float x[512], y[512];
    for (int i = 0; i < 512; i++)
        x[i] = frand() * (1 + i / 64);
    /* q8_1: d = amax/127, s = d * sum(q) */
    lamina_block_q8_1 b1[16];
    lamina_quantize_row(LAMINA_TYPE_Q8_1, x, b1, 512);
    lamina_dequantize_row(LAMINA_TYPE_Q8_1, b1, y, 512);
    int good = 1;
    for (int b = 0; b < 16; b++) {
        float amax = 0;
        int sum = 0;
        for (int l = 0; l < 32; l++) {
            if (fabsf(x[32 * b + l]) > amax) amax = fabsf(x[32 * b + l]);
            sum += b1[b].qs[l];
        }
        float d = amax / 127.0f;
        if (b1[b].d != lamina_fp32_to_fp16(d) || b1[b].s != lamina_fp32_to_fp16(d * (float)sum))
            good = 0;
        for (int l = 0; l < 32; l++)
            if (fabsf(y[32 * b + l] - x[32 * b + l]) > 0.5f * d * 1.01f + amax * 1e-3f)
                good = 0;
    }
    ok(good, "q8_1: d = amax/127, s = d*sum(q), error within half a step");

    /* q8_K: largest magnitude maps to -128, bsums, float d */
    lamina_block_q8_K k[2];
    lamina_quantize_row(LAMINA_TYPE_Q8_K, x, k, 512);
    lamina_dequantize_row(LAMINA_TYPE_Q8_K, k, y, 512);
    good = 1;
    for (int b = 0; b < 2; b++) {
        int imax = 0;
        for (int l = 0; l < 256; l++)
            if (fabsf(x[256 * b + l]) > fabsf(x[256 * b + imax])) imax = l;
        if (k[b].qs[imax] != -128) good = 0;
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += k[b].qs[16 * j + l];
            if (s != k[b].bsums[j]) good = 0;
        }
        for (int l = 0; l < 256; l++)
            if (fabsf(y[256 * b + l] - x[256 * b + l]) > 0.5f * fabsf(k[b].d) * 1.001f)
                good = 0;
    }
    ok(good, "q8_K: max magnitude -> -128, bsums consistent, error within half a step");
}

/* Data that lies on the iq4 grid (scale times codebook values) comes back
 * exactly, and random data within a bounded error. */
static void test_iq4_quantizers(void)
{
    static const int8_t v[16] = LAMINA_IQ4NL_VALUES;
    float x[512], y[512];
    uint8_t buf[512];
    /* iq4_nl: 16 blocks, scale +-2^-k, every block holds index 0 or 15 */
    for (int b = 0; b < 16; b++) {
        const float s = (b % 2 ? -1.0f : 1.0f) * ldexpf(1.0f, -(b % 5));
        for (int l = 0; l < 32; l++) {
            const uint64_t r = (uint64_t)(frand() * 1e6f + 2e6f);
            x[32 * b + l] = s * (float)v[l == 3 ? (b % 3 ? 0 : 15) : (int)(r % 16)];
        }
    }
    lamina_quantize_row(LAMINA_TYPE_IQ4_NL, x, buf, 512);
    lamina_dequantize_row(LAMINA_TYPE_IQ4_NL, buf, y, 512);
    ok(memcmp(x, y, sizeof x) == 0, "iq4_nl: data on the codebook grid round-trips exactly");

    /* iq4_xs: sub-block scales ls_j * 0.5, ls in -32..31, -32 present */
    static const int ls[16] = { -32, 5, 31, -7, 1, 0, 17, -20, 3, -32, -1, 30, 9, -9, 2, 12 };
    for (int j = 0; j < 16; j++)
        for (int l = 0; l < 32; l++) {
            const uint64_t r = (uint64_t)(frand() * 1e6f + 2e6f);
            x[32 * j + l] = 0.5f * (float)ls[j] * (float)v[r % 16];
        }
    lamina_quantize_row(LAMINA_TYPE_IQ4_XS, x, buf, 512);
    lamina_dequantize_row(LAMINA_TYPE_IQ4_XS, buf, y, 512);
    int same = 1;           /* by value: the zero sub-block may come back as +0 for -0 */
    for (int i = 0; i < 512 && same; i++)
        if (x[i] != y[i]) {
            printf("# iq4_xs element %d: %g decoded as %g\n", i, x[i], y[i]);
            same = 0;
        }
    ok(same, "iq4_xs: data on the scale/codebook grid round-trips exactly");

    /* uniform data: rms error well under a 4-bit linear step */
    static const uint32_t ty[2] = { LAMINA_TYPE_IQ4_NL, LAMINA_TYPE_IQ4_XS };
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < 512; i++) x[i] = frand();
        lamina_quantize_row(ty[t], x, buf, 512);
        lamina_dequantize_row(ty[t], buf, y, 512);
        double se = 0, sx = 0;
        for (int i = 0; i < 512; i++) {
            se += (double)(y[i] - x[i]) * (y[i] - x[i]);
            sx += (double)x[i] * x[i];
        }
        ok(sqrt(se / sx) < 0.12, "%s: rms error of uniform data %.4f < 0.12",
           lamina_type_get(ty[t])->name, sqrt(se / sx));
    }
}

/* mxfp4: the exponent from the largest magnitude, nearest values, the
 * first of two on a tie. */
static void test_mxfp4_quantizer(void)
{
    static const int8_t v[16] = LAMINA_MXFP4_VALUES;
    float x[512], y[512];
    lamina_block_mxfp4 b[16];
    /* on the grid: block j's scale d = 2^(j - 8), its largest magnitude 8
     * or 12 steps (amax in [8d, 16d) gives e = floor(log2(amax)) - 2 + 127
     * = the block's own) */
    for (int j = 0; j < 16; j++) {
        const float d = ldexpf(1.0f, j - 8);
        for (int l = 0; l < 32; l++) {
            const uint64_t r = (uint64_t)(frand() * 1e6f + 2e6f);
            x[32 * j + l] = d * (float)v[r % 16];
        }
        x[32 * j + 5] = (j % 2 ? -12.0f : 8.0f) * d;
    }
    lamina_quantize_row(LAMINA_TYPE_MXFP4, x, b, 512);
    lamina_dequantize_row(LAMINA_TYPE_MXFP4, b, y, 512);
    int exps = 1;
    for (int j = 0; j < 16; j++)
        if (b[j].e != 128 + j - 8) exps = 0;
    ok(exps && memcmp(x, y, sizeof x) == 0, "mxfp4: data on the grid round-trips exactly, e as expected");

    /* ties: with amax 7 (e = 127, d = 0.5), 2.5 lies between 2 (index 4)
     * and 3 (index 5), -0.75 between -0.5 (index 9) and -1 (index 10),
     * 0.25 between 0 and 0.5, 5 between 4 and 6: the first index wins;
     * -7 is past the last value, -6 */
    float t[32] = { 0 };
    t[0] = 6.0f; t[1] = 2.5f; t[2] = -0.75f; t[3] = 0.25f; t[4] = 5.0f; t[5] = -7.0f;
    lamina_quantize_row(LAMINA_TYPE_MXFP4, t, b, 32);
    lamina_dequantize_row(LAMINA_TYPE_MXFP4, b, y, 32);
    ok(b[0].e == 127 && y[0] == 6.0f && y[1] == 2.0f && y[2] == -0.5f && y[3] == 0.0f && y[4] == 4.0f &&
       y[5] == -6.0f, "mxfp4: ties go to the first value in index order (e %u; %g %g %g %g %g)",
       b[0].e, y[1], y[2], y[3], y[4], y[5]);

    /* tiny and huge blocks: the exponent clamps at 0, 2^127 holds FLT_MAX */
    for (int i = 0; i < 32; i++) t[i] = i % 3 ? 1e-44f : 0.0f;
    lamina_quantize_row(LAMINA_TYPE_MXFP4, t, b, 32);
    t[7] = 3.0e38f;
    lamina_quantize_row(LAMINA_TYPE_MXFP4, t, b + 1, 32);
    lamina_dequantize_row(LAMINA_TYPE_MXFP4, b + 1, y, 32);
    ok(b[0].e == 0 && b[1].e == 252 && y[7] == 0x1.8p127f, "mxfp4: exponent clamped at 0; 3e38 as 12 * 2^124");

    /* uniform data: rms error bounded */
    for (int i = 0; i < 512; i++) x[i] = frand();
    lamina_quantize_row(LAMINA_TYPE_MXFP4, x, b, 512);
    lamina_dequantize_row(LAMINA_TYPE_MXFP4, b, y, 512);
    double se = 0, sx = 0;
    for (int i = 0; i < 512; i++) {
        se += (double)(y[i] - x[i]) * (y[i] - x[i]);
        sx += (double)x[i] * x[i];
    }
    /* (the exponent puts amax in [8d, 16d): values past 12d are clipped) */
    ok(sqrt(se / sx) < 0.2, "mxfp4: rms error of uniform data %.4f < 0.2", sqrt(se / sx));
}

static void test_special_rows(void)
{
    float z[256] = { 0 }, c[256], one[256] = { 0 }, nanrow[256], y[256];
    uint8_t buf[2048];
    for (int i = 0; i < 256; i++) {
        c[i] = 0.75f;
        nanrow[i] = frand();
    }
    one[77] = -3.0f;
    nanrow[5] = NAN;
    nanrow[6] = INFINITY;
    int zeros = 1, consts = 1, ones = 1, nans = 1;
    for (size_t t = 0; t < N_TYPES; t++) {
        const uint32_t T = all_types[t];
        int r = lamina_quantize_row(T, z, buf, 256) || lamina_dequantize_row(T, buf, y, 256);
        for (int i = 0; i < 256; i++)
            if (r || y[i] != 0.0f) { zeros = 0; printf("# %s zero row: y[%d] = %g\n", lamina_type_get(T)->name, i, y[i]); break; }
        r = lamina_quantize_row(T, c, buf, 256) || lamina_dequantize_row(T, buf, y, 256);
        for (int i = 0; i < 256; i++)
            if (r || fabsf(y[i] - 0.75f) > 0.75f * 0.05f) { consts = 0; printf("# %s const row: y[%d] = %g\n", lamina_type_get(T)->name, i, y[i]); break; }
        r = lamina_quantize_row(T, one, buf, 256) || lamina_dequantize_row(T, buf, y, 256);
        for (int i = 0; i < 256; i++)
            if (r || fabsf(y[i] - one[i]) > 3.0f * 0.05f) { ones = 0; printf("# %s spike row: y[%d] = %g\n", lamina_type_get(T)->name, i, y[i]); break; }
        /* NaN/Inf input: no crash, no UB; values unspecified */
        if (lamina_quantize_row(T, nanrow, buf, 256) != 0 || lamina_dequantize_row(T, buf, y, 256) != 0)
            nans = 0;
    }
    ok(zeros, "every type: a zero row round-trips to exact zeros");
    ok(consts, "every type: a constant row round-trips within 5%%");
    ok(ones, "every type: a single spike round-trips within 5%% of it");
    ok(nans, "every type: NaN/Inf input is accepted without error");
}

static void test_rounding(void)
{
    ok(lamina_fp32_to_fp16(1.0f + 0x1p-11f) == 0x3C00, "f16: tie rounds to even (down)");
    ok(lamina_fp32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3C02, "f16: tie rounds to even (up)");
    ok(lamina_fp32_to_fp16(65520.0f) == 0x7C00, "f16: 65520 overflows to inf");
    ok(lamina_fp32_to_fp16(0x1p-25f) == 0x0000 && lamina_fp32_to_fp16(0x1.8p-25f) == 0x0001,
       "f16: smallest subnormal rounding");
    ok(lamina_fp32_to_bf16(1.0f + 0x1p-8f) == 0x3F80 && lamina_fp32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3F82,
       "bf16: ties to even");
    float x[4] = { 1.0f + 0x1p-11f, -2.5f, 0x1p-20f, 70000.0f };
    uint16_t h[4];
    float y[4];
    lamina_quantize_row(LAMINA_TYPE_F16, x, h, 4);
    lamina_dequantize_row(LAMINA_TYPE_F16, h, y, 4);
    ok(y[0] == 1.0f && y[1] == -2.5f && y[2] == 0x1p-20f && isinf(y[3]),
       "f16 row conversion uses the same rounding");
}

static void test_unaligned(void)
{
    /* rows at odd addresses (quant.c copies blocks before reading them) */
    float x[256], y1[256], y2[256];
    uint8_t a[200], b[201];
    for (int i = 0; i < 256; i++) x[i] = frand();
    lamina_quantize_row(LAMINA_TYPE_Q4_K, x, a, 256);
    lamina_quantize_row(LAMINA_TYPE_Q4_K, x, b + 1, 256);
    lamina_dequantize_row(LAMINA_TYPE_Q4_K, a, y1, 256);
    lamina_dequantize_row(LAMINA_TYPE_Q4_K, b + 1, y2, 256);
    ok(memcmp(a, b + 1, 144) == 0 && memcmp(y1, y2, sizeof y1) == 0,
       "quantize/dequantize at an odd address give the same bytes and values");
}

int main(void)
{
    test_traits();
    test_codes();
    test_known_blocks();
    test_q8_quantizers();
    test_iq4_quantizers();
    test_mxfp4_quantizer();
    test_special_rows();
    test_rounding();
    test_unaligned();
    return done_testing();
}
