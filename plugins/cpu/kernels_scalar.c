/*
 * kernels_scalar.c - portable kernels: dequantization, activation rounding,
 * integer dot products for every MUL_MAT weight type, attention helpers and
 * CPU feature detection.  The scalar table is the fallback for every ISA.
 */
#include <math.h>
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#define QK 32
#define QKK LAMINA_QK_K

static inline float h2f(uint16_t h) { return lamina_fp16_to_fp32(h); }

static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------------ */
/* Dequantization (GET_ROWS)                                           */

/* dst [K] = dequant(src [K]) for each type; K a multiple of the block. */
static void deq_q4_0(float *y, const lamina_block_q4_0 *x, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = h2f(x[b].d);
        for (int i = 0; i < QK / 2; i++) {
            /* low nibble: element i, high nibble: element i + 16 */
            y[i]          = d * (float)((x[b].qs[i] & 15) - 8);
            y[i + QK / 2] = d * (float)((x[b].qs[i] >> 4) - 8);
        }
        y += QK;
    }
}

static void deq_q4_1(float *y, const lamina_block_q4_1 *x, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = h2f(x[b].d), m = h2f(x[b].m);
        for (int i = 0; i < QK / 2; i++) {
            y[i]          = d * (float)(x[b].qs[i] & 15) + m;
            y[i + QK / 2] = d * (float)(x[b].qs[i] >> 4) + m;
        }
        y += QK;
    }
}

static void deq_q5_0(float *y, const lamina_block_q5_0 *x, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = h2f(x[b].d);
        const uint32_t qh = le32(x[b].qh);
        for (int i = 0; i < QK / 2; i++) {
            /* bit 4 of element i is bit i of qh */
            const int q0 = (x[b].qs[i] & 15) | (int)(((qh >> i) & 1) << 4);
            const int q1 = (x[b].qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
            y[i]          = d * (float)(q0 - 16);
            y[i + QK / 2] = d * (float)(q1 - 16);
        }
        y += QK;
    }
}

static void deq_q5_1(float *y, const lamina_block_q5_1 *x, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = h2f(x[b].d), m = h2f(x[b].m);
        const uint32_t qh = le32(x[b].qh);
        for (int i = 0; i < QK / 2; i++) {
            const int q0 = (x[b].qs[i] & 15) | (int)(((qh >> i) & 1) << 4);
            const int q1 = (x[b].qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
            y[i]          = d * (float)q0 + m;
            y[i + QK / 2] = d * (float)q1 + m;
        }
        y += QK;
    }
}

static void deq_q8_0(float *y, const lamina_block_q8_0 *x, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = h2f(x[b].d);
        for (int i = 0; i < QK; i++) y[i] = d * (float)x[b].qs[i];
        y += QK;
    }
}

static void deq_q4_K(float *y, const lamina_block_q4_K *x, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            lamina_get_scale_min_k4(2 * c, x[b].scales, &sc0, &m0);
            lamina_get_scale_min_k4(2 * c + 1, x[b].scales, &sc1, &m1);
            const uint8_t *q = x[b].qs + 32 * c;
            /* low nibbles: sub-block 2c, high nibbles: sub-block 2c+1 */
            for (int l = 0; l < 32; l++) {
                y[64 * c + l]      = d * sc0 * (float)(q[l] & 15) - dmin * m0;
                y[64 * c + 32 + l] = d * sc1 * (float)(q[l] >> 4) - dmin * m1;
            }
        }
        y += QKK;
    }
}

static void deq_q5_K(float *y, const lamina_block_q5_K *x, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++) {
        const float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            lamina_get_scale_min_k4(2 * c, x[b].scales, &sc0, &m0);
            lamina_get_scale_min_k4(2 * c + 1, x[b].scales, &sc1, &m1);
            const uint8_t *q = x[b].qs + 32 * c;
            for (int l = 0; l < 32; l++) {
                /* fifth bits: bit 2c (low sub-block) and 2c+1 of qh[l] */
                const int h0 = (x[b].qh[l] >> (2 * c)) & 1;
                const int h1 = (x[b].qh[l] >> (2 * c + 1)) & 1;
                y[64 * c + l]      = d * sc0 * (float)((q[l] & 15) | h0 << 4) - dmin * m0;
                y[64 * c + 32 + l] = d * sc1 * (float)((q[l] >> 4) | h1 << 4) - dmin * m1;
            }
        }
        y += QKK;
    }
}

/* Unpack the 256 6-bit values of a q6_K super-block into q[] (0..63). */
static void q6k_unpack(int8_t *q, const lamina_block_q6_K *x)
{
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = x->ql + 64 * h;
        const uint8_t *qh = x->qh + 32 * h;
        int8_t *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            /* four 32-value quarters share ql[l], ql[l+32] and qh[l] */
            o[l]      = (int8_t)((ql[l] & 15)      | ((qh[l] >> 0) & 3) << 4);
            o[l + 32] = (int8_t)((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4);
            o[l + 64] = (int8_t)((ql[l] >> 4)      | ((qh[l] >> 4) & 3) << 4);
            o[l + 96] = (int8_t)((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4);
        }
    }
}

static void deq_q6_K(float *y, const lamina_block_q6_K *x, int64_t nb)
{
    int8_t q[QKK];
    for (int64_t b = 0; b < nb; b++) {
        const float d = h2f(x[b].d);
        q6k_unpack(q, &x[b]);
        /* x = d * scale(sub-block of 16) * (q - 32) */
        for (int i = 0; i < QKK; i++)
            y[i] = d * (float)x[b].scales[i / 16] * (float)(q[i] - 32);
        y += QKK;
    }
}

int cpu_dequant_supported(uint32_t type)
{
    switch (type) {
    case LAMINA_TYPE_F32: case LAMINA_TYPE_F16: case LAMINA_TYPE_BF16:
    case LAMINA_TYPE_Q4_0: case LAMINA_TYPE_Q4_1: case LAMINA_TYPE_Q5_0:
    case LAMINA_TYPE_Q5_1: case LAMINA_TYPE_Q8_0: case LAMINA_TYPE_Q4_K:
    case LAMINA_TYPE_Q5_K: case LAMINA_TYPE_Q6_K:
    case LAMINA_TYPE_Q2_K: case LAMINA_TYPE_Q3_K:   /* through runtime/ops/quant.c */
    case LAMINA_TYPE_IQ4_NL: case LAMINA_TYPE_IQ4_XS: case LAMINA_TYPE_MXFP4:
    case LAMINA_TYPE_Q8_1: case LAMINA_TYPE_Q8_K:
        return 1;
    default:
        return 0;
    }
}

int cpu_dequant_row(uint32_t type, float *dst, const void *src, int64_t K)
{
    switch (type) {
    case LAMINA_TYPE_F32:
        memcpy(dst, src, (size_t)K * sizeof(float));
        return 0;
    case LAMINA_TYPE_F16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < K; i++) dst[i] = h2f(s[i]);
        return 0;
    }
    case LAMINA_TYPE_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < K; i++) dst[i] = lamina_bf16_to_fp32(s[i]);
        return 0;
    }
    case LAMINA_TYPE_Q4_0: deq_q4_0(dst, src, K / QK); return 0;
    case LAMINA_TYPE_Q4_1: deq_q4_1(dst, src, K / QK); return 0;
    case LAMINA_TYPE_Q5_0: deq_q5_0(dst, src, K / QK); return 0;
    case LAMINA_TYPE_Q5_1: deq_q5_1(dst, src, K / QK); return 0;
    case LAMINA_TYPE_Q8_0: deq_q8_0(dst, src, K / QK); return 0;
    case LAMINA_TYPE_Q4_K: deq_q4_K(dst, src, K / QKK); return 0;
    case LAMINA_TYPE_Q5_K: deq_q5_K(dst, src, K / QKK); return 0;
    case LAMINA_TYPE_Q6_K: deq_q6_K(dst, src, K / QKK); return 0;
    case LAMINA_TYPE_Q2_K:
    case LAMINA_TYPE_Q3_K:
    case LAMINA_TYPE_IQ4_NL:
    case LAMINA_TYPE_IQ4_XS:
    case LAMINA_TYPE_MXFP4:
    case LAMINA_TYPE_Q8_1:
    case LAMINA_TYPE_Q8_K:
        /* GET_ROWS only (a few rows a token; MUL_MAT of these types has its
         * own kernels below): the reference dequantizer compiled into the
         * plugin */
        return lamina_dequantize_row(type, src, dst, K) == 0 ? 0 : -1;
    default: return -1;
    }
}

/* ------------------------------------------------------------------ */
/* Activation rounding                                                 */

int cpu_act_format_of(uint32_t wtype)
{
    switch (wtype) {
    case LAMINA_TYPE_F32: case LAMINA_TYPE_F16: case LAMINA_TYPE_BF16:
        return CPU_ACT_F32;
    case LAMINA_TYPE_Q4_0: case LAMINA_TYPE_Q4_1: case LAMINA_TYPE_Q5_0:
    case LAMINA_TYPE_Q5_1: case LAMINA_TYPE_Q8_0: case LAMINA_TYPE_IQ4_NL:
    case LAMINA_TYPE_MXFP4:
        return CPU_ACT_Q8X;
    case LAMINA_TYPE_Q2_K: case LAMINA_TYPE_Q3_K: case LAMINA_TYPE_Q4_K:
    case LAMINA_TYPE_Q5_K: case LAMINA_TYPE_Q6_K: case LAMINA_TYPE_IQ4_XS:
        return CPU_ACT_Q8K;
    default:
        return CPU_ACT_NONE;
    }
}

size_t cpu_act_row_size(int fmt, int64_t K)
{
    switch (fmt) {
    case CPU_ACT_F32: return (size_t)K * sizeof(float);
    case CPU_ACT_Q8X: return K % QK ? 0 : (size_t)(K / QK) * sizeof(cpu_block_q8x);
    case CPU_ACT_Q8K: return K % QKK ? 0 : (size_t)(K / QKK) * sizeof(lamina_block_q8_K);
    case CPU_ACT_Q8XP: return K % QK ? 0 : (size_t)((K / QK + 1) / 2) * sizeof(cpu_block_q8xp);
    default: return 0;
    }
}

/* Round to nearest, ties to even (the same rule as cvtps2dq). */
static inline int rne(float v) { return (int)nearbyintf(v); }

static void quant_q8x(cpu_block_q8x *y, const float *x, int64_t K)
{
    for (int64_t b = 0; b < K / QK; b++, x += QK) {
        /* d = max|x| / 127 so every q fits in [-127, 127] */
        float amax = 0.0f;
        for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int i = 0; i < QK; i++) {
            const int q = rne(x[i] * id);
            y[b].qs[i] = (int8_t)q;
            sum += q;
        }
        y[b].d = d;
        /* s = d * sum(q): the block's sum, used for offsets and minimums */
        y[b].s = d * (float)sum;
    }
}

static void quant_q8k(lamina_block_q8_K *y, const float *x, int64_t K)
{
    for (int64_t b = 0; b < K / QKK; b++, x += QKK) {
        float amax = 0.0f;
        for (int i = 0; i < QKK; i++) amax = fmaxf(amax, fabsf(x[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int i = 0; i < QKK; i++) y[b].qs[i] = (int8_t)rne(x[i] * id);
        /* bsums[j] = sum of the 16 values of group j */
        for (int j = 0; j < QKK / 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += y[b].qs[16 * j + i];
            y[b].bsums[j] = (int16_t)s;
        }
        y[b].d = d;
    }
}

/* Pairs of blocks for the AVX-512 kernels: same rounding as quant_q8x. */
static void quant_q8xp(cpu_block_q8xp *y, const float *x, int64_t K)
{
    cpu_block_q8x b;
    const int64_t nb = K / QK;
    for (int64_t i = 0; i < nb; i++) {
        cpu_block_q8xp *p = &y[i / 2];
        const int h = (int)(i & 1);
        quant_q8x(&b, x + i * QK, QK);
        /* xu = q + 128; the scale over the block's 8 lanes */
        for (int k = 0; k < QK; k++) p->xu[32 * h + k] = (uint8_t)(b.qs[k] + 128);
        for (int k = 0; k < 8; k++) p->d[8 * h + k] = b.d;
    }
    if (nb & 1) {
        /* the odd block's partner: q = 0, d = 0 */
        cpu_block_q8xp *p = &y[nb / 2];
        memset(p->xu + 32, 128, 32);
        for (int k = 8; k < 16; k++) p->d[k] = 0.0f;
    }
}

static void quant_f32(void *dst, const float *x, int64_t K) { memcpy(dst, x, (size_t)K * sizeof(float)); }
static void quant_q8x_t(void *dst, const float *x, int64_t K) { quant_q8x(dst, x, K); }
static void quant_q8k_t(void *dst, const float *x, int64_t K) { quant_q8k(dst, x, K); }
static void quant_q8xp_t(void *dst, const float *x, int64_t K) { quant_q8xp(dst, x, K); }

/* GLU:  SiLU(g) = g / (1 + e^-g);
 *       GELU(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) */
static void glu_scalar(float *y, const float *g, const float *u, int64_t n, int act)
{
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    if (act == LAMINA_ACT_SILU)
        for (int64_t k = 0; k < n; k++) y[k] = g[k] / (1.0f + expf(-g[k])) * u[k];
    else
        for (int64_t k = 0; k < n; k++)
            y[k] = 0.5f * g[k] * (1.0f + tanhf(c * (g[k] + 0.044715f * g[k] * g[k] * g[k]))) * u[k];
}

void cpu_quantize_act(int fmt, void *dst, const float *x, int64_t K)
{
    switch (fmt) {
    case CPU_ACT_F32: memcpy(dst, x, (size_t)K * sizeof(float)); break;
    case CPU_ACT_Q8X: quant_q8x(dst, x, K); break;
    case CPU_ACT_Q8K: quant_q8k(dst, x, K); break;
    case CPU_ACT_Q8XP: quant_q8xp(dst, x, K); break;
    default: break;
    }
}

/* ------------------------------------------------------------------ */
/* Scalar dot products: out[c] = sum_k W[k] * X_c[k]                   */

#define COL(x, c, stride, T) ((const T *)((const char *)(x) + (size_t)(c) * (stride)))

static void dot_f32(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const float *wr = w;
    for (int c = 0; c < nc; c++) {
        const float *xr = COL(x, c, xs, float);
        float acc = 0.0f;
        for (int64_t k = 0; k < K; k++) acc += wr[k] * xr[k];
        out[c] = acc;
    }
}

static void dot_f16(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const uint16_t *wr = w;
    for (int c = 0; c < nc; c++) {
        const float *xr = COL(x, c, xs, float);
        float acc = 0.0f;
        for (int64_t k = 0; k < K; k++) acc += h2f(wr[k]) * xr[k];
        out[c] = acc;
    }
}

static void dot_bf16(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const uint16_t *wr = w;
    for (int c = 0; c < nc; c++) {
        const float *xr = COL(x, c, xs, float);
        float acc = 0.0f;
        for (int64_t k = 0; k < K; k++) acc += lamina_bf16_to_fp32(wr[k]) * xr[k];
        out[c] = acc;
    }
}

/* Blocks of 32 with 4/5-bit q and an offset or minimum:
 *   sum = dw * dx * sum(q * xq) + corr * s_x,
 * corr = -8 dw (q4_0), -16 dw (q5_0), mw (q4_1, q5_1). */
static void dot_q4_0(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q4_0 *wb = w;
    for (int c = 0; c < nc; c++) {
        const cpu_block_q8x *xb = COL(x, c, xs, cpu_block_q8x);
        float acc = 0.0f;
        for (int64_t b = 0; b < K / QK; b++) {
            int isum = 0;
            for (int i = 0; i < QK / 2; i++)
                isum += (wb[b].qs[i] & 15) * xb[b].qs[i] + (wb[b].qs[i] >> 4) * xb[b].qs[i + 16];
            const float dw = h2f(wb[b].d);
            acc += dw * (xb[b].d * (float)isum - 8.0f * xb[b].s);
        }
        out[c] = acc;
    }
}

static void dot_q4_1(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q4_1 *wb = w;
    for (int c = 0; c < nc; c++) {
        const cpu_block_q8x *xb = COL(x, c, xs, cpu_block_q8x);
        float acc = 0.0f;
        for (int64_t b = 0; b < K / QK; b++) {
            int isum = 0;
            for (int i = 0; i < QK / 2; i++)
                isum += (wb[b].qs[i] & 15) * xb[b].qs[i] + (wb[b].qs[i] >> 4) * xb[b].qs[i + 16];
            acc += h2f(wb[b].d) * xb[b].d * (float)isum + h2f(wb[b].m) * xb[b].s;
        }
        out[c] = acc;
    }
}

static inline int q5_sum(const uint8_t *qs, uint32_t qh, const int8_t *xq)
{
    int isum = 0;
    for (int i = 0; i < QK / 2; i++) {
        const int q0 = (qs[i] & 15) | (int)(((qh >> i) & 1) << 4);
        const int q1 = (qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
        isum += q0 * xq[i] + q1 * xq[i + 16];
    }
    return isum;
}

static void dot_q5_0(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q5_0 *wb = w;
    for (int c = 0; c < nc; c++) {
        const cpu_block_q8x *xb = COL(x, c, xs, cpu_block_q8x);
        float acc = 0.0f;
        for (int64_t b = 0; b < K / QK; b++) {
            const int isum = q5_sum(wb[b].qs, le32(wb[b].qh), xb[b].qs);
            acc += h2f(wb[b].d) * (xb[b].d * (float)isum - 16.0f * xb[b].s);
        }
        out[c] = acc;
    }
}

static void dot_q5_1(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q5_1 *wb = w;
    for (int c = 0; c < nc; c++) {
        const cpu_block_q8x *xb = COL(x, c, xs, cpu_block_q8x);
        float acc = 0.0f;
        for (int64_t b = 0; b < K / QK; b++) {
            const int isum = q5_sum(wb[b].qs, le32(wb[b].qh), xb[b].qs);
            acc += h2f(wb[b].d) * xb[b].d * (float)isum + h2f(wb[b].m) * xb[b].s;
        }
        out[c] = acc;
    }
}

static void dot_q8_0(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q8_0 *wb = w;
    for (int c = 0; c < nc; c++) {
        const cpu_block_q8x *xb = COL(x, c, xs, cpu_block_q8x);
        float acc = 0.0f;
        for (int64_t b = 0; b < K / QK; b++) {
            int isum = 0;
            for (int i = 0; i < QK; i++) isum += wb[b].qs[i] * xb[b].qs[i];
            acc += h2f(wb[b].d) * xb[b].d * (float)isum;
        }
        out[c] = acc;
    }
}

/* K-quants against q8_K: per super-block
 *   q4_K/q5_K: dx * (d * sum_j sc_j * sum(q*xq) - dmin * sum_j m_j * sum_j(xq))
 *   q6_K:      dx * d * sum_j sc_j * (sum(q*xq) - 32 * sum_j(xq)) */
static void dot_q4_K(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q4_K *wb = w;
    for (int c = 0; c < nc; c++) {
        const lamina_block_q8_K *xb = COL(x, c, xs, lamina_block_q8_K);
        float acc = 0.0f;
        for (int64_t b = 0; b < K / QKK; b++) {
            int sumi = 0, summ = 0;
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                lamina_get_scale_min_k4(j, wb[b].scales, &sc, &m);
                const uint8_t *q = wb[b].qs + 32 * (j / 2);
                const int shift = (j & 1) * 4;
                int s = 0;
                for (int l = 0; l < 32; l++) s += ((q[l] >> shift) & 15) * xb[b].qs[32 * j + l];
                sumi += sc * s;
                summ += m * (xb[b].bsums[2 * j] + xb[b].bsums[2 * j + 1]);
            }
            acc += xb[b].d * (h2f(wb[b].d) * (float)sumi - h2f(wb[b].dmin) * (float)summ);
        }
        out[c] = acc;
    }
}

static void dot_q5_K(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q5_K *wb = w;
    for (int c = 0; c < nc; c++) {
        const lamina_block_q8_K *xb = COL(x, c, xs, lamina_block_q8_K);
        float acc = 0.0f;
        for (int64_t b = 0; b < K / QKK; b++) {
            int sumi = 0, summ = 0;
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                lamina_get_scale_min_k4(j, wb[b].scales, &sc, &m);
                const uint8_t *q = wb[b].qs + 32 * (j / 2);
                const int shift = (j & 1) * 4;
                int s = 0;
                for (int l = 0; l < 32; l++) {
                    const int qv = ((q[l] >> shift) & 15) | ((wb[b].qh[l] >> j) & 1) << 4;
                    s += qv * xb[b].qs[32 * j + l];
                }
                sumi += sc * s;
                summ += m * (xb[b].bsums[2 * j] + xb[b].bsums[2 * j + 1]);
            }
            acc += xb[b].d * (h2f(wb[b].d) * (float)sumi - h2f(wb[b].dmin) * (float)summ);
        }
        out[c] = acc;
    }
}

static void dot_q6_K(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q6_K *wb = w;
    int8_t q[QKK];
    float acc[CPU_DOT_MAX_COLS] = {0};
    for (int64_t b = 0; b < K / QKK; b++) {
        q6k_unpack(q, &wb[b]);
        const float d = h2f(wb[b].d);
        for (int c = 0; c < nc; c++) {
            const lamina_block_q8_K *xb = COL(x, c, xs, lamina_block_q8_K) + b;
            int sumi = 0;
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += q[16 * j + l] * xb->qs[16 * j + l];
                sumi += wb[b].scales[j] * (s - 32 * xb->bsums[j]);
            }
            acc[c] += xb->d * d * (float)sumi;
        }
    }
    for (int c = 0; c < nc; c++) out[c] = acc[c];
}

/* q2_K / q3_K against q8_K, sub-blocks of 16 (one bsum each):
 *   q2_K: dx * (d * sum_j sc_j * sum(q*xq) - dmin * sum_j m_j * bsum_j)
 *   q3_K: dx * d * sum_j sc_j * sum(q*xq), q = u - 4 with u in 0..7, so
 *         sum(q*xq) = sum(u*xq) - 4 * bsum_j
 * Each weight super-block is unpacked once (u[e] for element e) for all
 * columns. */
static void q2k_unpack(uint8_t *q, const lamina_block_q2_K *x)
{
    for (int e = 0; e < QKK; e++)
        q[e] = (uint8_t)((x->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3);
}

static void dot_q2_K(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q2_K *wb = w;
    uint8_t q[QKK];
    float acc[CPU_DOT_MAX_COLS] = {0};
    for (int64_t b = 0; b < K / QKK; b++) {
        q2k_unpack(q, &wb[b]);
        const float d = h2f(wb[b].d), dmin = h2f(wb[b].dmin);
        for (int c = 0; c < nc; c++) {
            const lamina_block_q8_K *xb = COL(x, c, xs, lamina_block_q8_K) + b;
            int sumi = 0, summ = 0;
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += q[16 * j + l] * xb->qs[16 * j + l];
                sumi += (wb[b].scales[j] & 15) * s;
                summ += (wb[b].scales[j] >> 4) * xb->bsums[j];
            }
            acc[c] += xb->d * (d * (float)sumi - dmin * (float)summ);
        }
    }
    for (int c = 0; c < nc; c++) out[c] = acc[c];
}

static void q3k_unpack(uint8_t *u, const lamina_block_q3_K *x)
{
    for (int e = 0; e < QKK; e++) {
        const int lo = (x->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        const int hi = (x->hmask[e % 32] >> (e / 32)) & 1;
        u[e] = (uint8_t)(lo | hi << 2);
    }
}

static void dot_q3_K(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_q3_K *wb = w;
    uint8_t u[QKK];
    int8_t sc[16];
    float acc[CPU_DOT_MAX_COLS] = {0};
    for (int64_t b = 0; b < K / QKK; b++) {
        q3k_unpack(u, &wb[b]);
        lamina_get_scales_q3k(wb[b].scales, sc);
        const float d = h2f(wb[b].d);
        for (int c = 0; c < nc; c++) {
            const lamina_block_q8_K *xb = COL(x, c, xs, lamina_block_q8_K) + b;
            int sumi = 0;
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += u[16 * j + l] * xb->qs[16 * j + l];
                sumi += sc[j] * (s - 4 * xb->bsums[j]);
            }
            acc[c] += xb->d * d * (float)sumi;
        }
    }
    for (int c = 0; c < nc; c++) out[c] = acc[c];
}

/* iq4_nl / iq4_xs / mxfp4: codebook values v[q] (int8) times 8-bit
 * activations.
 *   iq4_nl, mxfp4 against q8x: sum over blocks dw * dx * sum(v[q] * xq),
 *   dw the fp16 scale (iq4_nl) or 2^(e - 128) (mxfp4, v the doubled E2M1
 *   values, so that is the exact factor)
 *   iq4_xs against q8_K: dx * d * sum_j ls_j * sum(v[q] * xq) over the
 *   eight sub-blocks of 32 (ls_j the signed 6-bit scales) */
static const int8_t iq4_values[16] = LAMINA_IQ4NL_VALUES;
static const int8_t mxfp4_values[16] = LAMINA_MXFP4_VALUES;

/* 32 values of codebook tab of one block or sub-block, in element order. */
static inline void cb_unpack32(int8_t *v, const uint8_t *qs, const int8_t *tab)
{
    for (int l = 0; l < 16; l++) {
        v[l]      = tab[qs[l] & 15];
        v[l + 16] = tab[qs[l] >> 4];
    }
}

static inline void iq4_unpack32(int8_t *v, const uint8_t *qs)
{
    cb_unpack32(v, qs, iq4_values);
}

/* The 32-blocks of a codebook: mx 0 iq4_nl, 1 mxfp4. */
static inline void dot_cb32(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc,
                            const int mx)
{
    int8_t v[QK];
    float acc[CPU_DOT_MAX_COLS] = {0};
    for (int64_t b = 0; b < K / QK; b++) {
        float dw;
        if (mx) {
            const lamina_block_mxfp4 *wb = (const lamina_block_mxfp4 *)w + b;
            cb_unpack32(v, wb->qs, mxfp4_values);
            dw = lamina_e8m0_to_fp32_half(wb->e);
        } else {
            const lamina_block_iq4_nl *wb = (const lamina_block_iq4_nl *)w + b;
            iq4_unpack32(v, wb->qs);
            dw = h2f(wb->d);
        }
        for (int c = 0; c < nc; c++) {
            const cpu_block_q8x *xb = COL(x, c, xs, cpu_block_q8x) + b;
            int isum = 0;
            for (int i = 0; i < QK; i++) isum += v[i] * xb->qs[i];
            acc[c] += dw * xb->d * (float)isum;
        }
    }
    for (int c = 0; c < nc; c++) out[c] = acc[c];
}

static void dot_iq4_nl(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    dot_cb32(out, K, w, x, xs, nc, 0);
}

static void dot_mxfp4(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    dot_cb32(out, K, w, x, xs, nc, 1);
}

static void dot_iq4_xs(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{
    const lamina_block_iq4_xs *wb = w;
    int8_t v[QKK];
    int ls[8];
    float acc[CPU_DOT_MAX_COLS] = {0};
    for (int64_t b = 0; b < K / QKK; b++) {
        for (int j = 0; j < 8; j++) {
            iq4_unpack32(v + 32 * j, wb[b].qs + 16 * j);
            ls[j] = lamina_get_scale_iq4xs(&wb[b], j);
        }
        const float d = h2f(wb[b].d);
        for (int c = 0; c < nc; c++) {
            const lamina_block_q8_K *xb = COL(x, c, xs, lamina_block_q8_K) + b;
            int sumi = 0;
            for (int j = 0; j < 8; j++) {
                int s = 0;
                for (int l = 0; l < 32; l++) s += v[32 * j + l] * xb->qs[32 * j + l];
                sumi += ls[j] * s;
            }
            acc[c] += xb->d * d * (float)sumi;
        }
    }
    for (int c = 0; c < nc; c++) out[c] = acc[c];
}

/* ------------------------------------------------------------------ */
/* Attention helpers                                                    */

static float sdot_f32(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static float sdot_f16(const uint16_t *a, const float *b, int64_t n)
{
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += h2f(a[i]) * b[i];
    return s;
}

static void saxpy_f32(float *y, float s, float p, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = y[i] * s + p * v[i];
}

static void saxpy_f16(float *y, float s, float p, const uint16_t *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) y[i] = y[i] * s + p * h2f(v[i]);
}

static void svmad(float *acc, size_t as, const float *p, const void *v, int v_f16, int nq, int64_t n)
{
    for (int h = 0; h < nq; h++) {
        float *y = acc + (size_t)h * as;
        if (v_f16) for (int64_t i = 0; i < n; i++) y[i] += p[h] * h2f(((const uint16_t *)v)[i]);
        else       for (int64_t i = 0; i < n; i++) y[i] += p[h] * ((const float *)v)[i];
    }
}

static float ssumsq(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return (float)s;
}

static void sto_f16(uint16_t *d, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) d[i] = lamina_fp32_to_fp16(x[i]);
}

const cpu_kernels cpu_kernels_scalar = {
    .name = "scalar",
    .dot = {
        [LAMINA_TYPE_F32]  = dot_f32,
        [LAMINA_TYPE_F16]  = dot_f16,
        [LAMINA_TYPE_BF16] = dot_bf16,
        [LAMINA_TYPE_Q4_0] = dot_q4_0,
        [LAMINA_TYPE_Q4_1] = dot_q4_1,
        [LAMINA_TYPE_Q5_0] = dot_q5_0,
        [LAMINA_TYPE_Q5_1] = dot_q5_1,
        [LAMINA_TYPE_Q8_0] = dot_q8_0,
        [LAMINA_TYPE_Q4_K] = dot_q4_K,
        [LAMINA_TYPE_Q5_K] = dot_q5_K,
        [LAMINA_TYPE_Q6_K] = dot_q6_K,
        [LAMINA_TYPE_Q2_K] = dot_q2_K,
        [LAMINA_TYPE_Q3_K] = dot_q3_K,
        [LAMINA_TYPE_IQ4_NL] = dot_iq4_nl,
        [LAMINA_TYPE_IQ4_XS] = dot_iq4_xs,
        [LAMINA_TYPE_MXFP4] = dot_mxfp4,
    },
    .act = {
        [LAMINA_TYPE_F32]  = CPU_ACT_F32, [LAMINA_TYPE_F16]  = CPU_ACT_F32,
        [LAMINA_TYPE_BF16] = CPU_ACT_F32, [LAMINA_TYPE_Q4_0] = CPU_ACT_Q8X,
        [LAMINA_TYPE_Q4_1] = CPU_ACT_Q8X, [LAMINA_TYPE_Q5_0] = CPU_ACT_Q8X,
        [LAMINA_TYPE_Q5_1] = CPU_ACT_Q8X, [LAMINA_TYPE_Q8_0] = CPU_ACT_Q8X,
        [LAMINA_TYPE_Q4_K] = CPU_ACT_Q8K, [LAMINA_TYPE_Q5_K] = CPU_ACT_Q8K,
        [LAMINA_TYPE_Q6_K] = CPU_ACT_Q8K, [LAMINA_TYPE_Q2_K] = CPU_ACT_Q8K,
        [LAMINA_TYPE_Q3_K] = CPU_ACT_Q8K, [LAMINA_TYPE_IQ4_NL] = CPU_ACT_Q8X,
        [LAMINA_TYPE_IQ4_XS] = CPU_ACT_Q8K, [LAMINA_TYPE_MXFP4] = CPU_ACT_Q8X,
    },
    .dot_f32 = sdot_f32,
    .dot_f16 = sdot_f16,
    .scale_axpy_f32 = saxpy_f32,
    .scale_axpy_f16 = saxpy_f16,
    .quant = {
        [CPU_ACT_F32] = quant_f32, [CPU_ACT_Q8X] = quant_q8x_t,
        [CPU_ACT_Q8K] = quant_q8k_t, [CPU_ACT_Q8XP] = quant_q8xp_t,
    },
    .glu = glu_scalar,
    .vmad = svmad,
    .sumsq = ssumsq,
    .to_f16 = sto_f16,
};

/* ------------------------------------------------------------------ */
/* Feature detection                                                    */

int cpu_has_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    __builtin_cpu_init();
    /* f16c is CPUID.1:ECX bit 29 (not every compiler's builtin knows it) */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 29))) return 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int cpu_has_avx512(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}
