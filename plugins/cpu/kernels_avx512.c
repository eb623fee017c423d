/*
 * kernels_avx512.c - AVX-512 (F, BW, VL) + AVX512-VNNI kernels: the AVX2
 * kernels with vpdpbusd / vpdpwssd for the integer dot products and mask
 * moves for bit expansion.  Chosen at run time only when the CPU has all
 * of avx512f, avx512bw, avx512vl and avx512vnni.
 */
#include <stddef.h>
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

/* ---- interleaved rows (cpu_tile_block): 16 rows of one block per step ---- */

/* rows[r] (r < 16) of 8 dwords each -> out[j], whose lane r is dword j of
 * rows[r]: rows r and r + 8 side by side, 4 x 4 transposes in each 128-bit
 * lane, then the lanes regrouped. */
AI void transpose16x8(const __m256i *rows, __m512i *out)
{
    __m512i z[8], u[8];
    for (int r = 0; r < 8; r++) z[r] = _mm512_inserti64x4(_mm512_castsi256_si512(rows[r]), rows[r + 8], 1);
    for (int h = 0; h < 2; h++) {
        const __m512i t0 = _mm512_unpacklo_epi32(z[4 * h], z[4 * h + 1]);
        const __m512i t1 = _mm512_unpackhi_epi32(z[4 * h], z[4 * h + 1]);
        const __m512i t2 = _mm512_unpacklo_epi32(z[4 * h + 2], z[4 * h + 3]);
        const __m512i t3 = _mm512_unpackhi_epi32(z[4 * h + 2], z[4 * h + 3]);
        u[4 * h + 0] = _mm512_unpacklo_epi64(t0, t2);
        u[4 * h + 1] = _mm512_unpackhi_epi64(t0, t2);
        u[4 * h + 2] = _mm512_unpacklo_epi64(t1, t3);
        u[4 * h + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
    /* u[e] lanes: rows 0-3 dword e, rows 0-3 dword 4+e, rows 8-11 dword e,
     * rows 8-11 dword 4+e; u[4+e] the same for rows 4-7 / 12-15 */
    const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    for (int e = 0; e < 4; e++) {
        out[e] = _mm512_permutex2var_epi64(u[e], lo, u[4 + e]);
        out[4 + e] = _mm512_permutex2var_epi64(u[e], hi, u[4 + e]);
    }
}

/* byte offsets of 16 rows wnb apart */
AI __m512i row_offsets(size_t wnb)
{
    return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                              _mm512_set1_epi32((int)wnb));
}

/* the dword at p + roff[r] of each live row r; 0 in the others */
AI __m512i gather_rows(__mmask16 live, __m512i roff, const uint8_t *p)
{
    return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, roff, p, 1);
}

/* bytes of a block of kind 0 (q8_0), 1 (q4_0), 2 (q5_0) */
AI size_t s8_block_bytes(const int kind)
{
    return kind == 0 ? sizeof(lamina_block_q8_0) : kind == 1 ? sizeof(lamina_block_q4_0) : sizeof(lamina_block_q5_0);
}

/* pack: each row's block as 32 signed bytes (wsigned), transposed so that
 * vector j holds dword j of every row; init = -128 * the row sums, for the
 * unsigned columns xu = q + 128. */
AI void pack_rows(cpu_tile_block *dst, const void *w, size_t wnb, const int nr, int64_t K, const int kind)
{
    const int64_t nb = K / 32;
    const size_t bsz = s8_block_bytes(kind);
    const __m512i c80 = _mm512_set1_epi8((char)0x80);
    /* every block type here starts with its f16 scale: one gather a block */
    const __m512i roff = row_offsets(wnb);
    const __mmask16 live = (__mmask16)((1u << nr) - 1);
    const uint8_t *w8 = w;
    for (int64_t b = 0; b < nb; b++) {
        /* 16 rows read side by side are 16 short streams: ask for this
         * block's share of the next 16 rows ahead */
        prefetch_share(w8 + CPU_TILE_ROWS * wnb, CPU_TILE_ROWS * wnb, b, nb);
        cpu_tile_block *t = dst + b;
        const __m512i g = gather_rows(live, roff, w8 + (size_t)b * bsz);
        _mm512_storeu_ps(t->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)));
        __m256i rows[CPU_TILE_ROWS];
        for (int r = 0; r < CPU_TILE_ROWS; r++)
            rows[r] = r < nr ? wsigned(w8 + (size_t)r * wnb, b, kind) : _mm256_setzero_si256();
        __m512i wj[8];
        transpose16x8(rows, wj);
        __m512i sum = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            _mm512_storeu_si512((void *)t->w[j], wj[j]);
            sum = _mm512_dpbusd_epi32(sum, c80, wj[j]);
        }
        _mm512_storeu_si512((void *)t->init, _mm512_sub_epi32(_mm512_setzero_si512(), sum));
    }
}

AI void pack_k(void *d, const void *w, size_t wnb, int nr, int64_t K, const int kind)
{
    /* whole tiles with the row count constant: no padding tests */
    if (nr == CPU_TILE_ROWS) pack_rows(d, w, wnb, CPU_TILE_ROWS, K, kind);
    else pack_rows(d, w, wnb, nr, K, kind);
}

AI void tile_n(float *out, int64_t K, const void *wt, const void *x, size_t xs, const int nc)
{
    __m512 acc[8];
    UNROLL_COLS
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / 32; b++) {
        const cpu_tile_block *t = (const cpu_tile_block *)wt + b;
        __m512i wj[8];
        for (int j = 0; j < 8; j++) wj[j] = _mm512_loadu_si512((const void *)t->w[j]);
        const __m512 dw = _mm512_loadu_ps(t->d);
        const __m512i init = _mm512_loadu_si512((const void *)t->init);
        const int64_t p = b >> 1, half = b & 1;
        UNROLL_COLS
        for (int c = 0; c < nc; c++) {
            const cpu_block_q8xp *xp = XCOL(x, c, xs, cpu_block_q8xp) + p;
            const uint8_t *xu = xp->xu + half * 32;
            int32_t q[8];
            memcpy(q, xu, 32);
            /* two chains: integer sums, so the order cannot matter */
            __m512i s0 = init, s1 = _mm512_setzero_si512();
            for (int j = 0; j < 8; j += 2) {
                s0 = _mm512_dpbusd_epi32(s0, _mm512_set1_epi32(q[j]), wj[j]);
                s1 = _mm512_dpbusd_epi32(s1, _mm512_set1_epi32(q[j + 1]), wj[j + 1]);
            }
            const __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(xp->d[half * 8]));
            acc[c] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc[c]);
        }
    }
    UNROLL_COLS
    for (int c = 0; c < nc; c++) _mm512_storeu_ps(out + c * CPU_TILE_ROWS, acc[c]);
}

static void pack_q8_0(void *d, const void *w, size_t wnb, int nr, int64_t K) { pack_k(d, w, wnb, nr, K, 0); }
static void pack_q4_0(void *d, const void *w, size_t wnb, int nr, int64_t K) { pack_k(d, w, wnb, nr, K, 1); }
static void pack_q5_0(void *d, const void *w, size_t wnb, int nr, int64_t K) { pack_k(d, w, wnb, nr, K, 2); }

static void tile_s8(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{ DISPATCH_NC(tile_n, out, K, w, x, xs, nc); }

/* One column (generation): tile_n's nc = 1 arithmetic without storing the
 * tile.  The weights are taken unsigned (q8_0: w + 128, q4_0: the nibbles
 * = w + 8, q5_0: w + 16) and the column signed, so the row sums need no
 * per-row correction, only off * sum(column block) once per block; the
 * integer sums are the tile's exactly, and the floats follow its steps. */
AI __m256i wunsigned(const void *w, int64_t b, const int kind)
{
    if (kind == 0) return _mm256_loadu_si256((const __m256i *)((const lamina_block_q8_0 *)w)[b].qs);
    if (kind == 1) return nibbles32(((const lamina_block_q4_0 *)w)[b].qs);
    const lamina_block_q5_0 *wb = (const lamina_block_q5_0 *)w + b;
    uint32_t qh;
    memcpy(&qh, wb->qh, 4);
    return _mm256_or_si256(nibbles32(wb->qs), bit4_from_mask(qh));
}

AI void gemv_s8_rows(float *out, int64_t K, const uint8_t *w, size_t wnb, const cpu_block_q8xp *x, const int nr,
                     const int kind)
{
    const int64_t nb = K / 32;
    const size_t bsz = s8_block_bytes(kind);
    const int off = kind == 0 ? 128 : kind == 1 ? 8 : 16;
    const __m512i roff = row_offsets(wnb);
    const __mmask16 live = (__mmask16)((1u << nr) - 1);
    const __m512i c80 = _mm512_set1_epi8((char)0x80);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        prefetch_share(w + CPU_TILE_ROWS * wnb, CPU_TILE_ROWS * wnb, b, nb);
        const cpu_block_q8xp *xp = x + (b >> 1);
        const uint8_t *xu = xp->xu + (b & 1) * 32;
        const __m512i g = gather_rows(live, roff, w + (size_t)b * bsz);
        const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
        __m256i rows[CPU_TILE_ROWS];
        for (int r = 0; r < CPU_TILE_ROWS; r++)
            rows[r] = r < nr ? wunsigned(w + (size_t)r * wnb, b, kind) : _mm256_setzero_si256();
        __m512i wj[8];
        transpose16x8(rows, wj);
        /* sum of the signed column block: sum(xu) - 32 * 128 */
        const __m256i sad = _mm256_sad_epu8(_mm256_loadu_si256((const __m256i *)xu), _mm256_setzero_si256());
        const int xsum = hsum_i32(sad) - 32 * 128;
        int32_t q[8];
        memcpy(q, xu, 32);
        __m512i s0 = _mm512_set1_epi32(-off * xsum), s1 = _mm512_setzero_si512();
        for (int j = 0; j < 8; j += 2) {
            const __m512i a0 = kind == 0 ? _mm512_xor_si512(wj[j], c80) : wj[j];
            const __m512i a1 = kind == 0 ? _mm512_xor_si512(wj[j + 1], c80) : wj[j + 1];
            s0 = _mm512_dpbusd_epi32(s0, a0, _mm512_set1_epi32((int32_t)((uint32_t)q[j] ^ 0x80808080u)));
            s1 = _mm512_dpbusd_epi32(s1, a1, _mm512_set1_epi32((int32_t)((uint32_t)q[j + 1] ^ 0x80808080u)));
        }
        const __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(xp->d[(b & 1) * 8]));
        acc = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc);
    }
    if (nr == CPU_TILE_ROWS) _mm512_storeu_ps(out, acc);
    else _mm512_mask_storeu_ps(out, live, acc);
}

AI void gemv_s8(float *out, int64_t K, const void *w, size_t wnb, const void *x, int64_t nr, const int kind)
{
    const uint8_t *w8 = w;
    int64_t r = 0;
    for (; r + CPU_TILE_ROWS <= nr; r += CPU_TILE_ROWS)
        gemv_s8_rows(out + r, K, w8 + (size_t)r * wnb, wnb, x, CPU_TILE_ROWS, kind);
    if (r < nr) gemv_s8_rows(out + r, K, w8 + (size_t)r * wnb, wnb, x, (int)(nr - r), kind);
}
static void gemv_t8_0(float *o, int64_t K, const void *w, size_t wnb, const void *x, int64_t nr) { gemv_s8(o, K, w, wnb, x, nr, 0); }
static void gemv_t4_0(float *o, int64_t K, const void *w, size_t wnb, const void *x, int64_t nr) { gemv_s8(o, K, w, wnb, x, nr, 1); }
static void gemv_t5_0(float *o, int64_t K, const void *w, size_t wnb, const void *x, int64_t nr) { gemv_s8(o, K, w, wnb, x, nr, 2); }

/* ---- q4_K tiles (cpu_tile_q4_K) against q8_K columns ----
 * per row and super-block, in integers: isum = sum_j sc_j * sum(q * xq)
 * over the eight sub-blocks, msum = sum_j m_j * bsum_j; then
 *   acc  = fma(d * dx, isum, acc),  macc = fma(dmin * dx, msum, macc)
 * and the row's result acc - macc. */
AI void pack_q4k_rows(cpu_tile_q4_K *dst, const void *w, size_t wnb, const int nr, int64_t K)
{
    const int64_t nb = K / 256;
    const __m512i roff = row_offsets(wnb);
    const __mmask16 live = (__mmask16)((1u << nr) - 1);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const uint8_t *w8 = w;
    for (int64_t b = 0; b < nb; b++) {
        prefetch_share(w8 + CPU_TILE_ROWS * wnb, CPU_TILE_ROWS * wnb, b, nb);
        cpu_tile_q4_K *t = dst + b;
        const uint8_t *blk0 = w8 + (size_t)b * sizeof(lamina_block_q4_K);
        /* d and dmin: one dword per row */
        const __m512i g = gather_rows(live, roff, blk0);
        _mm512_storeu_ps(t->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)));
        _mm512_storeu_ps(t->dmin, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16))));
        /* the 6-bit scales and mins of 16 rows at once, one row a lane:
         * lamina_get_scales_mins_k4's word operations on the three dwords
         * of each row's scales (scales 0-3, 4-7, mins 0-3, 4-7) */
        const uint8_t *sc12 = blk0 + offsetof(lamina_block_q4_K, scales);
        const __m512i u0 = gather_rows(live, roff, sc12);
        const __m512i u1 = gather_rows(live, roff, sc12 + 4);
        const __m512i u2 = gather_rows(live, roff, sc12 + 8);
        const __m512i k3f = _mm512_set1_epi32(0x3f3f3f3f), k0f = _mm512_set1_epi32(0x0f0f0f0f),
                      k30 = _mm512_set1_epi32(0x30303030), ff = _mm512_set1_epi32(0xff);
        const __m512i sw[4] = {
            _mm512_and_si512(u0, k3f),
            _mm512_or_si512(_mm512_and_si512(u2, k0f), _mm512_and_si512(_mm512_srli_epi32(u0, 2), k30)),
            _mm512_and_si512(u1, k3f),
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), k0f), _mm512_and_si512(_mm512_srli_epi32(u1, 2), k30)),
        };
        for (int j = 0; j < 8; j++) {
            const __m512i sc = _mm512_and_si512(_mm512_srli_epi32(sw[j / 4], 8 * (j % 4)), ff);
            const __m512i mn = _mm512_and_si512(_mm512_srli_epi32(sw[2 + j / 4], 8 * (j % 4)), ff);
            _mm512_storeu_si512((void *)t->sc[j], sc);
            _mm512_storeu_si512((void *)t->mn[j], _mm512_or_si512(mn, _mm512_slli_epi32(mn, 16)));
        }
        /* each 32-byte chunk k of qs: low nibbles sub-block 2k, high 2k+1 */
        for (int k = 0; k < 4; k++) {
            __m256i rows[CPU_TILE_ROWS];
            for (int r = 0; r < CPU_TILE_ROWS; r++)
                rows[r] = r < nr ? _mm256_loadu_si256((const __m256i *)(((const lamina_block_q4_K *)(blk0 + (size_t)r * wnb))->qs + 32 * k))
                                 : _mm256_setzero_si256();
            __m512i v[8];
            transpose16x8(rows, v);
            for (int j = 0; j < 8; j++) {
                _mm512_storeu_si512((void *)t->w[2 * k][j], _mm512_and_si512(v[j], m4));
                _mm512_storeu_si512((void *)t->w[2 * k + 1][j], _mm512_and_si512(_mm512_srli_epi16(v[j], 4), m4));
            }
        }
    }
}

static void pack_q4_K(void *d, const void *w, size_t wnb, int nr, int64_t K)
{
    if (nr == CPU_TILE_ROWS) pack_q4k_rows(d, w, wnb, CPU_TILE_ROWS, K);
    else pack_q4k_rows(d, w, wnb, nr, K);
}

AI void tile_q4k_n(float *out, int64_t K, const void *wt, const void *x, size_t xs, const int nc)
{
    __m512 acc[8], macc[8];
    UNROLL_COLS
    for (int c = 0; c < nc; c++) { acc[c] = _mm512_setzero_ps(); macc[c] = _mm512_setzero_ps(); }
    for (int64_t b = 0; b < K / 256; b++) {
        const cpu_tile_q4_K *t = (const cpu_tile_q4_K *)wt + b;
        __m512i isum[8], msum[8];
        UNROLL_COLS
        for (int c = 0; c < nc; c++) { isum[c] = _mm512_setzero_si512(); msum[c] = _mm512_setzero_si512(); }
        for (int j = 0; j < 8; j++) {
            __m512i wj[8];
            for (int v = 0; v < 8; v++) wj[v] = _mm512_loadu_si512((const void *)t->w[j][v]);
            const __m512i sc = _mm512_loadu_si512((const void *)t->sc[j]);
            const __m512i mn = _mm512_loadu_si512((const void *)t->mn[j]);
            UNROLL_COLS
            for (int c = 0; c < nc; c++) {
                const lamina_block_q8_K *xb = XCOL(x, c, xs, lamina_block_q8_K) + b;
                int32_t q[8], bs;
                memcpy(q, xb->qs + 32 * j, 32);
                memcpy(&bs, xb->bsums + 2 * j, 4);
                __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
                for (int v = 0; v < 8; v += 2) {
                    s0 = _mm512_dpbusd_epi32(s0, wj[v], _mm512_set1_epi32(q[v]));
                    s1 = _mm512_dpbusd_epi32(s1, wj[v + 1], _mm512_set1_epi32(q[v + 1]));
                }
                isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
                msum[c] = _mm512_dpwssd_epi32(msum[c], mn, _mm512_set1_epi32(bs));
            }
        }
        const __m512 d = _mm512_loadu_ps(t->d), dmin = _mm512_loadu_ps(t->dmin);
        UNROLL_COLS
        for (int c = 0; c < nc; c++) {
            const __m512 dx = _mm512_set1_ps((XCOL(x, c, xs, lamina_block_q8_K) + b)->d);
            acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(isum[c]), acc[c]);
            macc[c] = _mm512_fmadd_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(msum[c]), macc[c]);
        }
    }
    UNROLL_COLS
    for (int c = 0; c < nc; c++) _mm512_storeu_ps(out + c * CPU_TILE_ROWS, _mm512_sub_ps(acc[c], macc[c]));
}

static void tile_q4_K(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{ DISPATCH_NC(tile_q4k_n, out, K, w, x, xs, nc); }

/* ---- q6_K tiles (cpu_tile_q6_K) against q8_K columns ----
 * per row and super-block, in integers: isum = sum_j sc_j * sum(q * xq)
 * - 32 * sum_j sc_j * bsum_j (q unsigned 0..63); acc = fma(d * dx, isum, acc). */
AI void pack_q6k_rows(cpu_tile_q6_K *dst, const void *w, size_t wnb, const int nr, int64_t K)
{
    const int64_t nb = K / 256;
    const __m512i roff = row_offsets(wnb);
    const __mmask16 live = (__mmask16)((1u << nr) - 1);
    const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(0x30);
    const uint8_t *w8 = w;
    for (int64_t b = 0; b < nb; b++) {
        prefetch_share(w8 + CPU_TILE_ROWS * wnb, CPU_TILE_ROWS * wnb, b, nb);
        cpu_tile_q6_K *t = dst + b;
        const uint8_t *blk0 = w8 + (size_t)b * sizeof(lamina_block_q6_K);
        /* d: the f16 at the block's end, gathered as the dword before it + 2 */
        const __m512i g = gather_rows(live, roff, blk0 + offsetof(lamina_block_q6_K, d) - 2);
        _mm512_storeu_ps(t->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16))));
        /* scales: dword k of each row holds sc_4k .. sc_4k+3 */
        for (int k = 0; k < 4; k++) {
            const __m512i sk = gather_rows(live, roff, blk0 + offsetof(lamina_block_q6_K, scales) + 4 * k);
            for (int i = 0; i < 4; i++)
                _mm512_storeu_si512((void *)t->sc[4 * k + i],
                                    _mm512_srai_epi32(_mm512_slli_epi32(sk, 24 - 8 * i), 24));
            /* i16 lanes: a = (sext b0, sext b2), bh = (sext b1, sext b3) */
            const __m512i a = _mm512_srai_epi16(_mm512_slli_epi16(sk, 8), 8);
            const __m512i bh = _mm512_srai_epi16(sk, 8);
            const __m512i lo16 = _mm512_set1_epi32(0xffff);
            _mm512_storeu_si512((void *)t->scp[2 * k],
                                _mm512_or_si512(_mm512_and_si512(a, lo16), _mm512_slli_epi32(bh, 16)));
            _mm512_storeu_si512((void *)t->scp[2 * k + 1],
                                _mm512_or_si512(_mm512_srli_epi32(a, 16), _mm512_andnot_si512(lo16, bh)));
        }
        for (int h = 0; h < 2; h++) {
            __m256i ra[CPU_TILE_ROWS], rb[CPU_TILE_ROWS], rh[CPU_TILE_ROWS];
            for (int r = 0; r < CPU_TILE_ROWS; r++) {
                const lamina_block_q6_K *wb = (const lamina_block_q6_K *)(blk0 + (size_t)r * wnb);
                ra[r] = r < nr ? _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h)) : _mm256_setzero_si256();
                rb[r] = r < nr ? _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h + 32)) : _mm256_setzero_si256();
                rh[r] = r < nr ? _mm256_loadu_si256((const __m256i *)(wb->qh + 32 * h)) : _mm256_setzero_si256();
            }
            __m512i va[8], vb[8], vh[8];
            transpose16x8(ra, va);
            transpose16x8(rb, vb);
            transpose16x8(rh, vh);
            for (int v = 0; v < 8; v++) {
                /* quarter s of the half: values 32s + 4v .. +3, sub-block
                 * 8h + 2s + v / 4, vector v % 4 */
                const __m512i q[4] = {
                    _mm512_or_si512(_mm512_and_si512(va[v], m4), _mm512_and_si512(_mm512_slli_epi16(vh[v], 4), m2)),
                    _mm512_or_si512(_mm512_and_si512(vb[v], m4), _mm512_and_si512(_mm512_slli_epi16(vh[v], 2), m2)),
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(va[v], 4), m4), _mm512_and_si512(vh[v], m2)),
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(vb[v], 4), m4),
                                    _mm512_and_si512(_mm512_srli_epi16(vh[v], 2), m2)),
                };
                for (int sq = 0; sq < 4; sq++)
                    _mm512_storeu_si512((void *)t->w[8 * h + 2 * sq + v / 4][v % 4], q[sq]);
            }
        }
    }
}

static void pack_q6_K(void *d, const void *w, size_t wnb, int nr, int64_t K)
{
    if (nr == CPU_TILE_ROWS) pack_q6k_rows(d, w, wnb, CPU_TILE_ROWS, K);
    else pack_q6k_rows(d, w, wnb, nr, K);
}

AI void tile_q6k_n(float *out, int64_t K, const void *wt, const void *x, size_t xs, const int nc)
{
    __m512 acc[8];
    UNROLL_COLS
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / 256; b++) {
        const cpu_tile_q6_K *t = (const cpu_tile_q6_K *)wt + b;
        __m512i isum[8], off[8];
        UNROLL_COLS
        for (int c = 0; c < nc; c++) { isum[c] = _mm512_setzero_si512(); off[c] = _mm512_setzero_si512(); }
        for (int j = 0; j < 16; j++) {
            __m512i wj[4];
            for (int v = 0; v < 4; v++) wj[v] = _mm512_loadu_si512((const void *)t->w[j][v]);
            const __m512i sc = _mm512_loadu_si512((const void *)t->sc[j]);
            UNROLL_COLS
            for (int c = 0; c < nc; c++) {
                int32_t q[4];
                memcpy(q, (XCOL(x, c, xs, lamina_block_q8_K) + b)->qs + 16 * j, 16);
                __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wj[0], _mm512_set1_epi32(q[0]));
                __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wj[1], _mm512_set1_epi32(q[1]));
                s0 = _mm512_dpbusd_epi32(s0, wj[2], _mm512_set1_epi32(q[2]));
                s1 = _mm512_dpbusd_epi32(s1, wj[3], _mm512_set1_epi32(q[3]));
                isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
            }
        }
        for (int i = 0; i < 8; i++) {
            const __m512i scp = _mm512_loadu_si512((const void *)t->scp[i]);
            UNROLL_COLS
            for (int c = 0; c < nc; c++) {
                int32_t bs;
                memcpy(&bs, (XCOL(x, c, xs, lamina_block_q8_K) + b)->bsums + 2 * i, 4);
                off[c] = _mm512_dpwssd_epi32(off[c], scp, _mm512_set1_epi32(bs));
            }
        }
        const __m512 d = _mm512_loadu_ps(t->d);
        UNROLL_COLS
        for (int c = 0; c < nc; c++) {
            const __m512 dx = _mm512_set1_ps((XCOL(x, c, xs, lamina_block_q8_K) + b)->d);
            const __m512i tot = _mm512_sub_epi32(isum[c], _mm512_slli_epi32(off[c], 5));
            acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(tot), acc[c]);
        }
    }
    UNROLL_COLS
    for (int c = 0; c < nc; c++) _mm512_storeu_ps(out + c * CPU_TILE_ROWS, acc[c]);
}

static void tile_q6_K(float *out, int64_t K, const void *w, const void *x, size_t xs, int nc)
{ DISPATCH_NC(tile_q6k_n, out, K, w, x, xs, nc); }

/* tile_q6k_n's nc = 1 arithmetic row by row, exact like gemv_q4_K */
static void gemv_q6_K(float *out, int64_t K, const void *w, size_t wnb, const void *x, int64_t nr)
{
    const lamina_block_q8_K *xb = x;
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * wnb;
        for (size_t o = 0; o < wnb; o += 64) _mm_prefetch((const char *)wr + 2 * wnb + o, _MM_HINT_T0);
        float acc = 0.0f;
        for (int64_t b = 0; b < K / 256; b++) {
            const lamina_block_q6_K *wb = (const lamina_block_q6_K *)wr + b;
            __m256i isum;
            q6k_sums(&isum, wb, xb, 0, b, 1);
            acc = fmaf(f16s(wb->d) * xb[b].d, (float)hsum_i32(isum), acc);
        }
        out[r] = acc;
    }
}

/* One column (generation) needs no packing: tile_q4k_n's arithmetic row by
 * row.  Its integer sums are exact whatever the order they are added in,
 * and the floats follow the same steps, so this is bit for bit the tile's
 * result with nc = 1 (cpu_kernels.gemv where a type has a tile). */
static void gemv_q4_K(float *out, int64_t K, const void *w, size_t wnb, const void *x, int64_t nr)
{
    const lamina_block_q8_K *xb = x;
    for (int64_t r = 0; r < nr; r++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)r * wnb;
        for (size_t o = 0; o < wnb; o += 64) _mm_prefetch((const char *)wr + 2 * wnb + o, _MM_HINT_T0);
        float acc = 0.0f, macc = 0.0f;
        for (int64_t b = 0; b < K / 256; b++) {
            __m256i isum, msum;
            float d, dmin;
            q45k_sums(&isum, &msum, &d, &dmin, wr, b, xb, 0, 1, 0);
            acc = fmaf(d * xb[b].d, (float)hsum_i32(isum), acc);
            macc = fmaf(dmin * xb[b].d, (float)hsum_i32(msum), macc);
        }
        out[r] = acc - macc;
    }
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
    /* MUL_MAT takes these types through packed tiles for every column
     * count and through gemv_s8 (the tile's arithmetic) for one */
    t->gemv[LAMINA_TYPE_Q8_0] = gemv_t8_0;
    t->gemv[LAMINA_TYPE_Q4_0] = gemv_t4_0;
    t->gemv[LAMINA_TYPE_Q5_0] = gemv_t5_0;
    t->conv[LAMINA_TYPE_Q4_0] = t->conv[LAMINA_TYPE_Q5_0] = NULL;
    t->pack[LAMINA_TYPE_Q8_0] = pack_q8_0;
    t->pack[LAMINA_TYPE_Q4_0] = pack_q4_0;
    t->pack[LAMINA_TYPE_Q5_0] = pack_q5_0;
    t->tile[LAMINA_TYPE_Q8_0] = t->tile[LAMINA_TYPE_Q4_0] = t->tile[LAMINA_TYPE_Q5_0] = tile_s8;
    t->tile_bytes[LAMINA_TYPE_Q8_0] = t->tile_bytes[LAMINA_TYPE_Q4_0] = t->tile_bytes[LAMINA_TYPE_Q5_0] =
        sizeof(cpu_tile_block);
    t->pack[LAMINA_TYPE_Q4_K] = pack_q4_K;
    t->tile[LAMINA_TYPE_Q4_K] = tile_q4_K;
    t->tile_bytes[LAMINA_TYPE_Q4_K] = sizeof(cpu_tile_q4_K);
    t->gemv[LAMINA_TYPE_Q4_K] = gemv_q4_K;
    t->pack[LAMINA_TYPE_Q6_K] = pack_q6_K;
    t->tile[LAMINA_TYPE_Q6_K] = tile_q6_K;
    t->tile_bytes[LAMINA_TYPE_Q6_K] = sizeof(cpu_tile_q6_K);
    t->gemv[LAMINA_TYPE_Q6_K] = gemv_q6_K;
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
