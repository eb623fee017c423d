/*
 * vnni_emu.c - the AVX-512 table's shared kernels (kernels_x86.inc with
 * CPU_X86_VNNI 1 and X86_COLS 8, as kernels_avx512.c compiles them) run on
 * an AVX2 machine: the three AVX-512 instructions the .inc uses
 * (vpdpbusd, vpdpwssd on 256-bit vectors, and the masked byte move) are
 * replaced by scalar emulations, and every MUL_MAT kernel of that table
 * is compared with the scalar table on the same 8-bit activations, for 1
 * to 8 columns, on ordinary data and on extreme data (activations +-127,
 * weights at the ends of their ranges) where a saturating instruction
 * would differ.  The 512-bit pair kernels of kernels_avx512.c itself
 * (q8_0, q4_0, q5_0) are not covered.  Prints TAP; skips without AVX2.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

static inline __m256i emu_dpbusd(__m256i acc, __m256i u, __m256i s)
{
    uint8_t a[32];
    int8_t b[32];
    int32_t r[8];
    _mm256_storeu_si256((__m256i *)a, u);
    _mm256_storeu_si256((__m256i *)b, s);
    _mm256_storeu_si256((__m256i *)r, acc);
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 4; k++) r[i] += (int32_t)a[4 * i + k] * b[4 * i + k];
    return _mm256_loadu_si256((const __m256i *)r);
}

static inline __m256i emu_dpwssd(__m256i acc, __m256i x, __m256i y)
{
    int16_t a[16], b[16];
    int32_t r[8];
    _mm256_storeu_si256((__m256i *)a, x);
    _mm256_storeu_si256((__m256i *)b, y);
    _mm256_storeu_si256((__m256i *)r, acc);
    for (int i = 0; i < 8; i++) r[i] += (int32_t)a[2 * i] * b[2 * i] + (int32_t)a[2 * i + 1] * b[2 * i + 1];
    return _mm256_loadu_si256((const __m256i *)r);
}

static inline __m256i emu_maskz_mov_epi8(uint32_t m, __m256i v)
{
    uint8_t a[32];
    _mm256_storeu_si256((__m256i *)a, v);
    for (int i = 0; i < 32; i++)
        if (!((m >> i) & 1)) a[i] = 0;
    return _mm256_loadu_si256((const __m256i *)a);
}

#undef _mm256_dpbusd_epi32
#undef _mm256_dpwssd_epi32
#undef _mm256_maskz_mov_epi8
#define _mm256_dpbusd_epi32 emu_dpbusd
#define _mm256_dpwssd_epi32 emu_dpwssd
#define _mm256_maskz_mov_epi8(m, v) emu_maskz_mov_epi8((uint32_t)(m), (v))

#define SFX(name) name##_emu
#define CPU_X86_VNNI 1
#define X86_COLS 8
#include "kernels_x86.inc"

static void emu_init(cpu_kernels *t)
{
    *t = cpu_kernels_scalar;
    t->name = "avx512-emulated";
    fill_table_emu(t);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

static int n_test, n_fail;

static void tap(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tap(int ok, const char *fmt, ...)
{
    va_list ap;
    n_test++;
    if (!ok) n_fail++;
    printf("%s %d - ", ok ? "ok" : "not ok", n_test);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static uint64_t rs = 0x243f6a8885a308d3ULL;
static uint32_t rnd(void)
{
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rs >> 33);
}
static float rndf(void) { return (float)rnd() / 2147483648.0f - 1.0f; }

#define K 1024
#define COLS 8

/* One type: scalar and emulated tables on the same weights and
 * activations; the largest difference relative to sum |w x|. */
static double compare(const cpu_kernels *e, uint32_t type, int extreme)
{
    const int fmt = e->act[type];
    const size_t ar = cpu_act_row_size(fmt, K);
    const uint64_t wb = lamina_row_size(type, K);
    uint8_t *w = malloc(wb);
    uint8_t *act = aligned_alloc(64, (ar * COLS + 63) / 64 * 64);
    uint8_t *act_s = aligned_alloc(64, (ar * COLS + 63) / 64 * 64);
    static float x[COLS][K], wf[K], row[K];
    double worst = 0.0;
    for (int trial = 0; trial < 20; trial++) {
        for (int k = 0; k < K; k++)
            row[k] = extreme ? (k % 17 == 0 ? -1.0f : (rnd() & 1) ? 1.0f : 0.9f) : rndf();
        lamina_quantize_row(type, row, w, K);
        lamina_dequantize_row(type, w, wf, K);
        for (int c = 0; c < COLS; c++)
            for (int k = 0; k < K; k++) x[c][k] = extreme ? ((rnd() & 1) ? 1.0f : -1.0f) : rndf();
        for (int c = 0; c < COLS; c++) {
            e->quant[fmt](act + (size_t)c * ar, x[c], K);
            cpu_kernels_scalar.quant[fmt](act_s + (size_t)c * ar, x[c], K);
        }
        if (memcmp(act, act_s, ar * COLS) != 0) { worst = INFINITY; break; }
        for (int nc = 1; nc <= COLS; nc++) {
            float o1[COLS], o2[COLS];
            cpu_kernels_scalar.dot[type](o1, K, w, act, ar, nc);
            e->dot[type](o2, K, w, act, ar, nc);
            for (int c = 0; c < nc; c++) {
                double m = 1e-30;
                for (int k = 0; k < K; k++) m += fabs((double)wf[k] * x[c][k]);
                const double d = fabs((double)o1[c] - o2[c]) / m;
                if (!(d <= worst)) worst = d;
            }
        }
    }
    free(w);
    free(act);
    free(act_s);
    return worst;
}

int main(void)
{
    if (!cpu_has_avx2()) {
        printf("1..0 # SKIP the CPU lacks avx2/fma/f16c\n");
        return 0;
    }
    cpu_kernels e;
    emu_init(&e);
    for (uint32_t t = 0; t < LAMINA_TYPE_COUNT; t++) {
        if (!e.dot[t] || e.dot[t] == cpu_kernels_scalar.dot[t] || e.act[t] == CPU_ACT_F32) continue;
        for (int extreme = 0; extreme < 2; extreme++) {
            const double err = compare(&e, t, extreme);
            /* only the float summation order differs */
            tap(err <= 2e-6, "%s %s data: emulated avx512 kernel vs scalar, 1..%d columns: %.1e",
                lamina_type_get(t)->name, extreme ? "extreme" : "random", COLS, err);
        }
    }
    printf("1..%d\n", n_test);
    return n_fail ? 1 : 0;
}

#else

int main(void)
{
    printf("1..0 # SKIP not x86-64\n");
    return 0;
}

#endif
