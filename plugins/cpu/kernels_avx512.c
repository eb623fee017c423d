/*
 * kernels_avx512.c - AVX-512 (F, BW, VL) + AVX512-VNNI kernels: the AVX2
 * kernels with vpdpbusd / vpdpwssd for the integer dot products and mask
 * moves for bit expansion.  Chosen at run time only when the CPU has all
 * of avx512f, avx512bw, avx512vl and avx512vnni.
 */
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif

#define SFX(name) name##_avx512
#define CPU_X86_VNNI 1
#define X86_COLS 8
#include "kernels_x86.inc"

/* ---- 512-bit kernels for the 32-value block types, two blocks a vector ----
 * Activations come as cpu_block_q8xp (xu = q + 128 unsigned, scales
 * pre-broadcast), weights as signed bytes w.  Per pair of blocks:
 *   init  = -128 * (lane sums of w)              once per weight pair
 *   s     = vpdpbusd(init, xu, w) = lane sums of q * w
 *   acc  += (dw * dx) * float(s)                 16 lanes, two scales */

/* signed weights of one block, 32 bytes; kind 0 = q8_0, 1 = q4_0, 2 = q5_0 */
AI __m256i wsigned(const void *w, int64_t b, const int kind)
{
    if (kind == 0)
        return _mm256_loadu_si256((const __m256i *)((const lamina_block_q8_0 *)w)[b].qs);
    if (kind == 1)
        return _mm256_sub_epi8(nibbles32(((const lamina_block_q4_0 *)w)[b].qs), _mm256_set1_epi8(8));
    const lamina_block_q5_0 *wb = (const lamina_block_q5_0 *)w + b;
    uint32_t qh;
    memcpy(&qh, wb->qh, 4);
    return _mm256_sub_epi8(_mm256_or_si256(nibbles32(wb->qs), bit4_from_mask(qh)), _mm256_set1_epi8(16));
}

AI float wscale(const void *w, int64_t b, const int kind)
{
    if (kind == 0) return f16s(((const lamina_block_q8_0 *)w)[b].d);
    if (kind == 1) return f16s(((const lamina_block_q4_0 *)w)[b].d);
    return f16s(((const lamina_block_q5_0 *)w)[b].d);
}

AI void pair_n(float *out, int64_t K, const void *w, const void *x, size_t xs, const int nc,
               const int kind)
{
    const int64_t nb = K / 32;
    const __m512i c80 = _mm512_set1_epi8((char)0x80);
    __m512 acc[8];
    UNROLL_COLS
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    int64_t p = 0;
    for (; 2 * p + 1 < nb; p++) {
        /* two weight blocks in one vector, their scales in two halves */
        const __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(wsigned(w, 2 * p, kind)),
                                              wsigned(w, 2 * p + 1, kind), 1);
        const __m512 dw = _mm512_castsi512_ps(_mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_castps_si256(_mm256_set1_ps(wscale(w, 2 * p, kind)))),
            _mm256_castps_si256(_mm256_set1_ps(wscale(w, 2 * p + 1, kind))), 1));
        const __m512i init = _mm512_sub_epi32(_mm512_setzero_si512(),
                                              _mm512_dpbusd_epi32(_mm512_setzero_si512(), c80, wv));
        UNROLL_COLS
        for (int c = 0; c < nc; c++) {
            const cpu_block_q8xp *xp = XCOL(x, c, xs, cpu_block_q8xp) + p;
            const __m512i s = _mm512_dpbusd_epi32(init, _mm512_load_si512((const void *)xp->xu), wv);
            const __m512 sc = _mm512_mul_ps(dw, _mm512_load_ps(xp->d));
            acc[c] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(s), acc[c]);
        }
    }
    float tail[8] = {0};
    if (nb & 1) {
        /* the odd last block: the lower half of the last pair */
        const __m256i wv = wsigned(w, nb - 1, kind);
        const float dw = wscale(w, nb - 1, kind);
        const __m256i init = _mm256_sub_epi32(_mm256_setzero_si256(),
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)0x80), wv));
        UNROLL_COLS
        for (int c = 0; c < nc; c++) {
            const cpu_block_q8xp *xp = XCOL(x, c, xs, cpu_block_q8xp) + p;
            const __m256i s = _mm256_dpbusd_epi32(init, _mm256_load_si256((const __m256i *)xp->xu), wv);
            tail[c] = hsum_ps(_mm256_mul_ps(_mm256_set1_ps(dw * xp->d[0]), _mm256_cvtepi32_ps(s)));
        }
    }
    UNROLL_COLS
    for (int c = 0; c < nc; c++) out[c] = _mm512_reduce_add_ps(acc[c]) + tail[c];
}

AI void p8_0_n(float *o, int64_t K, const void *w, const void *x, size_t xs, const int nc) { pair_n(o, K, w, x, xs, nc, 0); }
AI void p4_0_n(float *o, int64_t K, const void *w, const void *x, size_t xs, const int nc) { pair_n(o, K, w, x, xs, nc, 1); }
AI void p5_0_n(float *o, int64_t K, const void *w, const void *x, size_t xs, const int nc) { pair_n(o, K, w, x, xs, nc, 2); }

/* Up to 8 columns a call (DISPATCH_NC with X86_COLS 8): the weight pair
 * is unpacked once for all of them. */
static void dotp_q8_0(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{ DISPATCH_NC(p8_0_n, out, K, w, x, xs, nc); }
static void dotp_q4_0(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{ DISPATCH_NC(p4_0_n, out, K, w, x, xs, nc); }
static void dotp_q5_0(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{ DISPATCH_NC(p5_0_n, out, K, w, x, xs, nc); }

void cpu_kernels_avx512_init(cpu_kernels *t)
{
    *t = cpu_kernels_scalar;
    t->name = "avx512";
    fill_table_avx512(t);
    t->dot[LAMINA_TYPE_Q8_0] = dotp_q8_0;
    t->dot[LAMINA_TYPE_Q4_0] = dotp_q4_0;
    t->dot[LAMINA_TYPE_Q5_0] = dotp_q5_0;
    t->act[LAMINA_TYPE_Q8_0] = t->act[LAMINA_TYPE_Q4_0] = t->act[LAMINA_TYPE_Q5_0] = CPU_ACT_Q8XP;
    t->cols[LAMINA_TYPE_Q8_0] = t->cols[LAMINA_TYPE_Q4_0] = t->cols[LAMINA_TYPE_Q5_0] = 8;
    /* the shared rows kernels read q8x columns, not these pairs */
    t->gemv[LAMINA_TYPE_Q8_0] = t->gemv[LAMINA_TYPE_Q4_0] = t->gemv[LAMINA_TYPE_Q5_0] = NULL;
    t->conv[LAMINA_TYPE_Q4_0] = t->conv[LAMINA_TYPE_Q5_0] = NULL;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else /* not x86-64 */

void cpu_kernels_avx512_init(cpu_kernels *t)
{
    *t = cpu_kernels_scalar;
}

#endif
