/*
 * kernels.hip - every lamina op as a GPU kernel.  One source for three
 * compilers (gpu_port.h): hipcc (rocm.so), nvcc -x cu (cuda.so) and a host
 * C++ compiler with -DGPU_EMULATE (the fake runtimes in tests/rocm).
 *
 * Every kernel takes one kargs (kargs.h): t[0] = dst, t[1..] = src[0..];
 * blocks are KA_BLOCK threads.  The maths of each op is the one written in
 * lamina/plugin.h; the host (ops.c) has checked types, shapes, alignment
 * and bounds before launching, and picks the grid named above each kernel.
 *
 * Quantized weights are dequantized element by element (deq1) in F32 and
 * multiplied with F32 activations: no rounding of X, so the results are
 * closer to the reference than the self-test's tolerances require.
 */
#include "gpu_port.h"

typedef unsigned char u8;

#define T_F32 0
#define T_F16 1
#define T_Q4_0 2
#define T_Q4_1 3
#define T_Q5_0 6
#define T_Q5_1 7
#define T_Q8_0 8
#define T_Q8_1 9
#define T_Q2_K 10
#define T_Q3_K 11
#define T_Q4_K 12
#define T_Q5_K 13
#define T_Q6_K 14
#define T_Q8_K 15
#define T_I32 26
#define T_BF16 30

#define OP_ADD 4
#define OP_MUL 5
#define OP_SCALE 6
#define OP_GLU 10
#define OP_COPY 11

/* ---- scalar helpers ------------------------------------------------------ */

GPU_DEV const u8 *ptr(uint64_t a) { return (const u8 *)(uintptr_t)a; }
GPU_DEV u8 *wptr(uint64_t a) { return (u8 *)(uintptr_t)a; }

GPU_DEV uint32_t ld16(const u8 *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
GPU_DEV uint32_t ld32(const u8 *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

GPU_DEV float bits_f(uint32_t u)
{
    union { uint32_t u; float f; } c;
    c.u = u;
    return c.f;
}

GPU_DEV uint32_t f_bits(float f)
{
    union { uint32_t u; float f; } c;
    c.f = f;
    return c.u;
}

/* IEEE binary16 -> float, exact (subnormals included). */
GPU_DEV float h2f(uint32_t h)
{
    uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        if (m == 0)
            return bits_f(sign);
        e = 127 - 15 + 1;               /* subnormal: normalise */
        while ((m & 0x400u) == 0) {
            m <<= 1;
            e--;
        }
        return bits_f(sign | (e << 23) | ((m & 0x3ffu) << 13));
    }
    if (e == 0x1f)
        return bits_f(sign | 0x7f800000u | (m << 13));
    return bits_f(sign | ((e + 127 - 15) << 23) | (m << 13));
}

/* float -> binary16, round to nearest even (as lamina_fp32_to_fp16). */
GPU_DEV uint32_t f2h(float f)
{
    uint32_t x = f_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u, e8 = (x >> 23) & 0xffu, m = x & 0x7fffffu;
    if (e8 == 0xff)
        return sign | 0x7c00u | (m ? 0x200u : 0);
    int e = (int)e8 - 127 + 15;
    if (e >= 0x1f)
        return sign | 0x7c00u;
    if (e <= 0) {
        if (e < -10)
            return sign;
        m |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = m >> shift, rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return sign | half;
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
        half++;
    return half;
}

GPU_DEV float bf2f(uint32_t h) { return bits_f(h << 16); }

/* Scale and min of sub-block j (0..7) of a q4_K / q5_K super-block. */
GPU_DEV void scale_min_k4(int j, const u8 *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Element k of a row of `type` (block layouts: lamina/quant.h). */
GPU_DEV float deq1(int type, const u8 *row, int64_t k)
{
    switch (type) {
    case T_F32:
        return ((const float *)row)[k];
    case T_F16:
        return h2f(ld16(row + 2 * k));
    case T_BF16:
        return bf2f(ld16(row + 2 * k));
    case T_Q4_0: {          /* d, qs[16]: x = d (q - 8) */
        const u8 *b = row + (k / 32) * 18;
        int l = (int)(k % 32);
        int q = l < 16 ? (b[2 + l] & 0xF) : (b[2 + l - 16] >> 4);
        return h2f(ld16(b)) * (float)(q - 8);
    }
    case T_Q4_1: {          /* d, m, qs[16]: x = d q + m */
        const u8 *b = row + (k / 32) * 20;
        int l = (int)(k % 32);
        int q = l < 16 ? (b[4 + l] & 0xF) : (b[4 + l - 16] >> 4);
        return h2f(ld16(b)) * (float)q + h2f(ld16(b + 2));
    }
    case T_Q5_0: {          /* d, qh[4], qs[16]: x = d (q - 16) */
        const u8 *b = row + (k / 32) * 22;
        int l = (int)(k % 32);
        int q = l < 16 ? (b[6 + l] & 0xF) : (b[6 + l - 16] >> 4);
        q |= (int)((ld32(b + 2) >> l) & 1u) << 4;
        return h2f(ld16(b)) * (float)(q - 16);
    }
    case T_Q5_1: {          /* d, m, qh[4], qs[16]: x = d q + m */
        const u8 *b = row + (k / 32) * 24;
        int l = (int)(k % 32);
        int q = l < 16 ? (b[8 + l] & 0xF) : (b[8 + l - 16] >> 4);
        q |= (int)((ld32(b + 4) >> l) & 1u) << 4;
        return h2f(ld16(b)) * (float)q + h2f(ld16(b + 2));
    }
    case T_Q8_0: {          /* d, qs[32] */
        const u8 *b = row + (k / 32) * 34;
        return h2f(ld16(b)) * (float)(signed char)b[2 + k % 32];
    }
    case T_Q8_1: {          /* d, s, qs[32] */
        const u8 *b = row + (k / 32) * 36;
        return h2f(ld16(b)) * (float)(signed char)b[4 + k % 32];
    }
    case T_Q2_K: {          /* scales[16], qs[64], d, dmin */
        const u8 *b = row + (k / 256) * 84;
        int e = (int)(k % 256), c = e / 128, s = (e % 128) / 32, l = e % 32;
        int sc = b[e / 16];
        int q = (b[16 + 32 * c + l] >> (2 * s)) & 3;
        return h2f(ld16(b + 80)) * (float)(sc & 0xF) * (float)q -
               h2f(ld16(b + 82)) * (float)(sc >> 4);
    }
    case T_Q3_K: {          /* hmask[32], qs[64], scales[12], d */
        const u8 *b = row + (k / 256) * 110;
        int e = (int)(k % 256), c = e / 128, s = (e % 128) / 32, l = e % 32, j = e / 16;
        const u8 *s12 = b + 96;
        int lo = j < 8 ? (s12[j] & 0xF) : (s12[j - 8] >> 4);
        int hi = (s12[8 + j % 4] >> (2 * (j / 4))) & 3;
        int sc = (lo | (hi << 4)) - 32;
        int q = ((b[32 + 32 * c + l] >> (2 * s)) & 3) - (((b[l] >> (e / 32)) & 1) ? 0 : 4);
        return h2f(ld16(b + 108)) * (float)sc * (float)q;
    }
    case T_Q4_K:            /* d, dmin, scales[12], qs[128] */
    case T_Q5_K: {          /* d, dmin, scales[12], qh[32], qs[128] */
        const int q5 = type == T_Q5_K;
        const u8 *b = row + (k / 256) * (q5 ? 176 : 144);
        int e = (int)(k % 256), c = e / 64, w = e % 64, l = w % 32, j = 2 * c + (w >= 32);
        int sc, m;
        scale_min_k4(j, b + 4, &sc, &m);
        const u8 *qs = b + (q5 ? 48 : 16);
        int q = w < 32 ? (qs[32 * c + l] & 0xF) : (qs[32 * c + l] >> 4);
        if (q5)
            q |= ((b[16 + l] >> j) & 1) << 4;
        return h2f(ld16(b)) * (float)sc * (float)q - h2f(ld16(b + 2)) * (float)m;
    }
    case T_Q6_K: {          /* ql[128], qh[64], scales[16] (int8), d */
        const u8 *b = row + (k / 256) * 210;
        int e = (int)(k % 256), c = e / 128, w = e % 128, s = w / 32, l = w % 32;
        int lo = (b[64 * c + w % 64] >> (4 * (w / 64))) & 0xF;
        int hi = (b[128 + 32 * c + l] >> (2 * s)) & 3;
        int q = (lo | (hi << 4)) - 32;
        return h2f(ld16(b + 208)) * (float)(signed char)b[192 + e / 16] * (float)q;
    }
    case T_Q8_K: {          /* float d, qs[256], bsums[16] */
        const u8 *b = row + (k / 256) * 292;
        return bits_f(ld32(b)) * (float)(signed char)b[4 + k % 256];
    }
    default:
        return 0.0f;
    }
}

/* Byte address of row r of t, rows flattened over dims 1..3. */
GPU_DEV uint64_t row_addr(const ka_tensor &t, int64_t r)
{
    int64_t i1 = r % t.ne[1], i2 = (r / t.ne[1]) % t.ne[2], i3 = r / (t.ne[1] * t.ne[2]);
    return t.data + (uint64_t)(i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3]);
}

/* Row (i1, i2, i3) of t where src may be broadcast: dims of extent 1
 * repeat. */
GPU_DEV uint64_t row_addr_bc(const ka_tensor &t, int64_t i1, int64_t i2, int64_t i3)
{
    return t.data + (uint64_t)((i1 % t.ne[1]) * t.nb[1] + (i2 % t.ne[2]) * t.nb[2] +
                               (i3 % t.ne[3]) * t.nb[3]);
}

/* Sum of v over the block; every thread gets it.  red holds KA_BLOCK. */
GPU_DEV float block_sum(float v, float *red)
{
    const int tid = gpu_tid();
    red[tid] = v;
    gpu_sync();
    for (int s = gpu_nth() / 2; s > 0; s >>= 1) {
        if (tid < s)
            red[tid] += red[tid + s];
        gpu_sync();
    }
    float r = red[0];
    gpu_sync();     /* red may be reused right after */
    return r;
}

/* ---- GET_ROWS -------------------------------------------------------------
 * grid.x = N.  dst[:, i] = dequant(table[:, ids[i]]) */
GPU_KERNEL(k_get_rows)
{
    const ka_tensor &d = a.t[0], &tab = a.t[1], &ids = a.t[2];
    const int64_t i = gpu_bid_x();
    if (i >= d.ne[1])
        return;
    const int32_t id = ((const int32_t *)ptr(ids.data))[i];
    if (id < 0 || id >= tab.ne[1])      /* the core guarantees it; never read outside */
        return;
    const u8 *row = ptr(tab.data + (uint64_t)id * (uint64_t)tab.nb[1]);
    float *out = (float *)wptr(d.data + (uint64_t)(i * d.nb[1]));
    for (int64_t k = gpu_tid(); k < tab.ne[0]; k += gpu_nth())
        out[k] = deq1(tab.type, row, k);
}

/* ---- MUL_MAT --------------------------------------------------------------
 * grid.x = N, grid.y = ceil(M / KA_MM_COLS).
 * dst[n, m] = sum_k W[k, n] * X[k, m] for KA_MM_COLS columns m of X:
 * each thread takes every nth-th k, the block sums the partial dots. */
GPU_KERNEL(k_mul_mat)
{
    const ka_tensor &d = a.t[0], &w = a.t[1], &x = a.t[2];
    GPU_SHARED float red[KA_MM_COLS][KA_BLOCK];
    const int tid = gpu_tid(), nth = gpu_nth();
    const int64_t n = gpu_bid_x(), m0 = gpu_bid_y() * KA_MM_COLS, K = w.ne[0];
    const int64_t M = x.ne[1];
    const int mc = M - m0 < KA_MM_COLS ? (int)(M - m0) : KA_MM_COLS;
    const u8 *wr = ptr(w.data + (uint64_t)(n * w.nb[1]));
    float acc[KA_MM_COLS];

    /* 1. partial dots over this thread's k */
    for (int c = 0; c < KA_MM_COLS; c++)
        acc[c] = 0.0f;
    for (int64_t k = tid; k < K; k += nth) {
        const float wv = deq1(w.type, wr, k);
        for (int c = 0; c < mc; c++)
            acc[c] += wv * ((const float *)ptr(x.data + (uint64_t)((m0 + c) * x.nb[1])))[k];
    }
    /* 2. tree sum over the block, all columns at once */
    for (int c = 0; c < KA_MM_COLS; c++)
        red[c][tid] = acc[c];
    gpu_sync();
    for (int s = nth / 2; s > 0; s >>= 1) {
        if (tid < s)
            for (int c = 0; c < mc; c++)
                red[c][tid] += red[c][tid + s];
        gpu_sync();
    }
    /* 3. thread c writes column m0 + c */
    if (tid < mc)
        ((float *)wptr(d.data + (uint64_t)((m0 + tid) * d.nb[1])))[n] = red[tid][0];
}

/* ---- RMS_NORM -------------------------------------------------------------
 * grid.x = rows.  dst[k] = X[k] / sqrt(mean_k(X^2) + eps) * (w ? w[k] : 1) */
GPU_KERNEL(k_rms_norm)
{
    const ka_tensor &d = a.t[0], &x = a.t[1];
    GPU_SHARED float red[KA_BLOCK];
    const int64_t r = gpu_bid_x(), K = x.ne[0];
    const float *xr = (const float *)ptr(row_addr(x, r));
    float *yr = (float *)wptr(row_addr(d, r));
    const float *w = a.n_src > 1 ? (const float *)ptr(a.t[2].data) : 0;

    /* 1. mean of squares */
    float ss = 0.0f;
    for (int64_t k = gpu_tid(); k < K; k += gpu_nth())
        ss += xr[k] * xr[k];
    ss = block_sum(ss, red);
    /* 2. scale (every read of X happened before block_sum returned) */
    const float inv = 1.0f / sqrtf(ss / (float)K + a.fp[0]);
    for (int64_t k = gpu_tid(); k < K; k += gpu_nth())
        yr[k] = w ? xr[k] * inv * w[k] : xr[k] * inv;
}

/* ---- ADD, MUL, SCALE, GLU, COPY -------------------------------------------
 * grid.x = ceil(n / KA_BLOCK), one thread per dst element, n = K * rows.
 * src1 of ADD/MUL may be [K] (repeated for every row). */
GPU_DEV float gelu_tanh(float v)
{
    const float c = 0.7978845608028654f;   /* sqrt(2/pi) */
    return 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
}

GPU_KERNEL(k_eltwise)
{
    const ka_tensor &d = a.t[0], &s0 = a.t[1], &s1 = a.t[2];
    const int64_t g = gpu_bid_x() * gpu_nth() + gpu_tid();
    if (g >= a.n)
        return;
    const int64_t K = d.ne[0], k = g % K, r = g / K;
    const int64_t i1 = r % d.ne[1], i2 = (r / d.ne[1]) % d.ne[2], i3 = r / (d.ne[1] * d.ne[2]);
    const u8 *ar = ptr(row_addr_bc(s0, i1, i2, i3));
    u8 *yr = wptr(row_addr_bc(d, i1, i2, i3));
    float v;

    if (a.op == OP_COPY) {
        /* dst = convert(src0) */
        v = s0.type == T_F32 ? ((const float *)ar)[k]
          : s0.type == T_F16 ? h2f(ld16(ar + 2 * k)) : bf2f(ld16(ar + 2 * k));
        if (d.type == T_F16) {
            uint32_t h = f2h(v);
            yr[2 * k] = (u8)(h & 0xff);
            yr[2 * k + 1] = (u8)(h >> 8);
        } else {
            ((float *)yr)[k] = v;
        }
        return;
    }
    const float x = ((const float *)ar)[k];
    if (a.op == OP_SCALE) {
        v = a.fp[0] * x;                                        /* dst = s A */
    } else {
        const float y = ((const float *)ptr(row_addr_bc(s1, i1, i2, i3)))[k];
        if (a.op == OP_ADD)
            v = x + y;                                          /* dst = A + B */
        else if (a.op == OP_MUL)
            v = x * y;                                          /* dst = A * B */
        else if (a.ip[0] == 0)
            v = x / (1.0f + expf(-x)) * y;                      /* silu(gate) up */
        else
            v = gelu_tanh(x) * y;                               /* gelu(gate) up */
    }
    ((float *)yr)[k] = v;
}

/* ---- ROPE -----------------------------------------------------------------
 * grid.x = ceil(n / KA_BLOCK), n = P * H * N with P = n_rot/2 + (D - n_rot):
 * thread j < n_rot/2 rotates pair j, the others copy one dim >= n_rot.
 * theta = pos * freq_scale * base^(-2j/n_rot) / ff[j]
 * NORM pairs (2j, 2j+1), NEOX pairs (j, j + n_rot/2). */
GPU_KERNEL(k_rope)
{
    const ka_tensor &d = a.t[0], &x = a.t[1], &pos = a.t[2];
    const int64_t g = gpu_bid_x() * gpu_nth() + gpu_tid();
    if (g >= a.n)
        return;
    const int n_rot = a.ip[1], half = n_rot / 2, neox = a.ip[0] == 2;
    const int64_t D = x.ne[0], H = x.ne[1], P = half + (D - n_rot);
    const int64_t j = g % P, h = (g / P) % H, t = g / (P * H);
    const float *xr = (const float *)ptr(x.data + (uint64_t)(h * x.nb[1] + t * x.nb[2]));
    float *yr = (float *)wptr(d.data + (uint64_t)(h * d.nb[1] + t * d.nb[2]));

    if (j >= half) {
        const int64_t e = n_rot + (j - half);
        yr[e] = xr[e];
        return;
    }
    const double fs = a.fp[1] != 0.0f ? (double)a.fp[1] : 1.0;
    double th = (double)((const int32_t *)ptr(pos.data))[t] * fs *
                pow((double)a.fp[0], -2.0 * (double)j / (double)n_rot);
    if (a.n_src > 2)
        th /= (double)((const float *)ptr(a.t[3].data))[j];
    const float co = (float)cos(th), si = (float)sin(th);
    const int64_t i0 = neox ? j : 2 * j, i1 = neox ? j + half : 2 * j + 1;
    const float x0 = xr[i0], x1 = xr[i1];
    yr[i0] = x0 * co - x1 * si;
    yr[i1] = x0 * si + x1 * co;
}

/* ---- SET_ROWS -------------------------------------------------------------
 * grid.x = ceil(n / KA_BLOCK), n = K * N.  dst[:, rows[i]] = convert(X[:, i]) */
GPU_KERNEL(k_set_rows)
{
    const ka_tensor &d = a.t[0], &x = a.t[1], &rows = a.t[2];
    const int64_t g = gpu_bid_x() * gpu_nth() + gpu_tid();
    if (g >= a.n)
        return;
    const int64_t K = x.ne[0], k = g % K, i = g / K;
    const int32_t r = ((const int32_t *)ptr(rows.data))[i];
    if (r < 0 || r >= d.ne[1])
        return;
    const float v = ((const float *)ptr(x.data + (uint64_t)(i * x.nb[1])))[k];
    u8 *yr = wptr(d.data + (uint64_t)r * (uint64_t)d.nb[1]);
    if (d.type == T_F16) {
        uint32_t h = f2h(v);
        yr[2 * k] = (u8)(h & 0xff);
        yr[2 * k + 1] = (u8)(h >> 8);
    } else {
        ((float *)yr)[k] = v;
    }
}

/* ---- ATTENTION ------------------------------------------------------------
 * grid.x = Hq, grid.y = N: one block per (query head h, token i).
 * Keys base_i + j for j in [j0, pos_i] are taken KA_ATTN_CHUNK at a time:
 *   1. the block scores the chunk: s_j = scale * q . k_j, softcapped;
 *   2. every thread takes the chunk's max m', rescales what it has by
 *      e^(m - m'), and adds p_j = e^(s_j - m') times V rows to the output
 *      dims it owns (d = tid + nth * u), keeping l = sum p_j;
 *   3. dst = acc / l.  (Softmax in F32 with the maximum subtracted.) */
GPU_DEV float kv_at(int type, const u8 *row, int64_t k)
{
    return type == T_F16 ? h2f(ld16(row + 2 * k)) : ((const float *)row)[k];
}

GPU_KERNEL(k_attention)
{
    const ka_tensor &d = a.t[0], &q = a.t[1], &kc = a.t[2], &vc = a.t[3], &bp = a.t[4];
    GPU_SHARED float sc[KA_ATTN_CHUNK];
    const int tid = gpu_tid(), nth = gpu_nth();
    const int64_t h = gpu_bid_x(), i = gpu_bid_y();
    const int64_t D = q.ne[0], Hq = q.ne[1], Hkv = kc.ne[0] / D, Dv = vc.ne[0] / Hkv;
    const int64_t g = h / (Hq / Hkv), R = kc.ne[1];
    const int32_t *bpi = (const int32_t *)ptr(bp.data + (uint64_t)(i * bp.nb[1]));
    const int64_t base = bpi[0], pos = bpi[1];
    const int window = a.ip[0];
    const float scale = a.fp[0], cap = a.fp[1];
    const float *qr = (const float *)ptr(q.data + (uint64_t)(h * q.nb[1] + i * q.nb[2]));
    const int esk = kc.type == T_F16 ? 2 : 4, esv = vc.type == T_F16 ? 2 : 4;
    float *out = (float *)wptr(d.data + (uint64_t)(i * d.nb[1])) + h * Dv;
    float acc[KA_ATTN_MAX_DV / KA_BLOCK];
    float m = -INFINITY, l = 0.0f;

    if (base < 0 || pos < 0 || base + pos >= R)     /* checked by the host */
        return;
    const int64_t j0 = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    for (int u = 0; u < KA_ATTN_MAX_DV / KA_BLOCK; u++)
        acc[u] = 0.0f;
    for (int64_t c0 = j0; c0 <= pos; c0 += KA_ATTN_CHUNK) {
        const int n = pos - c0 + 1 < KA_ATTN_CHUNK ? (int)(pos - c0 + 1) : KA_ATTN_CHUNK;
        /* 1. scores of this chunk */
        for (int jj = tid; jj < n; jj += nth) {
            const u8 *kr = ptr(kc.data + (uint64_t)((base + c0 + jj) * kc.nb[1])) + g * D * esk;
            float s = 0.0f;
            for (int64_t e = 0; e < D; e++)
                s += qr[e] * kv_at(kc.type, kr, e);
            s *= scale;
            if (cap > 0.0f)
                s = cap * tanhf(s / cap);
            sc[jj] = s;
        }
        gpu_sync();
        /* 2. new maximum, rescale, accumulate */
        float cm = m;
        for (int jj = 0; jj < n; jj++)
            cm = sc[jj] > cm ? sc[jj] : cm;
        const float corr = expf(m - cm);
        l *= corr;
        for (int u = 0; u * nth + tid < Dv; u++)
            acc[u] *= corr;
        for (int jj = 0; jj < n; jj++) {
            const float p = expf(sc[jj] - cm);
            const u8 *vr = ptr(vc.data + (uint64_t)((base + c0 + jj) * vc.nb[1])) + g * Dv * esv;
            l += p;
            for (int u = 0; u * nth + tid < Dv; u++)
                acc[u] += p * kv_at(vc.type, vr, u * nth + tid);
        }
        m = cm;
        gpu_sync();     /* sc is overwritten by the next chunk */
    }
    /* 3. normalise */
    for (int u = 0; u * nth + tid < Dv; u++)
        out[u * nth + tid] = acc[u] / l;
}
