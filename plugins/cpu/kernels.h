/*
 * kernels.h - the CPU plugin's inner kernels, one table per instruction set.
 *
 * Three tables exist: scalar (always), AVX2 (avx2+fma+f16c) and AVX-512
 * (avx512f/bw/vl + avx512vnni).  Each SIMD file is compiled with
 * __attribute__((target(...))) on its functions, never with -march, and the
 * table is chosen at open() from the CPU's features (cpu_kernels_select).
 * A table entry a SIMD file does not provide is copied from the scalar
 * table, so every table is complete.
 *
 * Quantized MUL_MAT never dequantizes a weight matrix: the activations X
 * are rounded once per node to 8-bit blocks (cpu_block_q8x for the types
 * with 32-element blocks, iq4_nl and mxfp4 included; lamina_block_q8_K for the
 * K-quants q2_K..q6_K and iq4_xs) and each weight block is multiplied with
 * them in integers.
 */
#ifndef LAMINA_CPU_KERNELS_H
#define LAMINA_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "lamina/quant.h"

/* Activation block of 32 values: x[i] ~= d * qs[i];  s = d * sum(qs). */
typedef struct {
    float  d;
    float  s;
    int8_t qs[32];
} cpu_block_q8x;

/* A pair of activation blocks for the AVX-512 kernels: xu = q + 128
 * (unsigned, so vpdpbusd can take it as its unsigned operand), and each
 * block's scale repeated over 8 lanes, ready for a 16-lane multiply.
 * An odd trailing block is paired with q = 0, d = 0. */
typedef struct {
    uint8_t xu[64];
    float   d[16];
} cpu_block_q8xp;

/* Interleaved rows (cpu_kernels.pack / tile): one 32-value block of
 * CPU_TILE_ROWS consecutive weight rows, laid out for vpdpbusd.  Dword r
 * of vector j holds bytes 4j..4j+3 of row r's block as signed bytes, so
 * one instruction multiplies 4 values of 16 rows with 4 broadcast values
 * of a column, and lane r ends the block holding row r's integer sum:
 * no horizontal sums, and the scale arithmetic is paid once per 16 rows. */
#define CPU_TILE_ROWS 16
typedef struct {
    int8_t  w[8][CPU_TILE_ROWS][4];
    float   d[CPU_TILE_ROWS];        /* row scales; 0 for a padding row */
    int32_t init[CPU_TILE_ROWS];     /* -128 * sum of the row's 32 bytes */
} cpu_tile_block;

enum cpu_isa { CPU_ISA_SCALAR = 0, CPU_ISA_AVX2 = 1, CPU_ISA_AVX512 = 2 };

/* The format the activations of a MUL_MAT take for a given weight type. */
enum cpu_act_format {
    CPU_ACT_NONE = 0,  /* weight type not supported by MUL_MAT */
    CPU_ACT_F32  = 1,  /* contiguous floats */
    CPU_ACT_Q8X  = 2,  /* cpu_block_q8x per 32 values */
    CPU_ACT_Q8K  = 3,  /* lamina_block_q8_K per 256 values */
    CPU_ACT_Q8XP = 4,  /* cpu_block_q8xp per 64 values */
    CPU_ACT_COUNT = 5
};

/* Max activation columns any dot kernel handles in one call; a table's
 * cols[t] says how many its dot[t] takes (0 means CPU_DOT_COLS). */
#define CPU_DOT_MAX_COLS 8
#define CPU_DOT_COLS 4

/*
 * One weight row times nc (1..cols[type]) activation columns.
 * out[c] = sum_k W[k] * X_c[k], k < K.
 *   w  : one row of K weights in the weight type's blocks
 *   x  : column 0 of the activations in the type's activation format;
 *        column c starts at (const char *)x + c * x_stride
 */
typedef void (*cpu_dot_fn)(float *out, int64_t K, const void *w,
                           const void *x, size_t x_stride, int nc);

/* One activation column (format act[t]) against nr consecutive weight
 * rows wnb bytes apart: out[r] = what dot[t] gives that row with nc = 1,
 * bit for bit.  Generation's matrix-vector products take it where a type
 * has one: no call, no column dispatch and no stride per row. */
typedef void (*cpu_gemv_fn)(float *out, int64_t K, const void *w, size_t wnb,
                            const void *x, int64_t nr);

/* The same for q4_K: one 256-value super-block of 16 rows, the nibbles of
 * sub-block j as unsigned bytes (vector v: values 4v..4v+3), its scales as
 * 32-bit lanes and its mins as 16-bit pairs (m, m) that meet the column's
 * bsums in pairs. */
typedef struct {
    uint8_t w[8][8][CPU_TILE_ROWS][4];
    int32_t sc[8][CPU_TILE_ROWS];
    int16_t mn[8][CPU_TILE_ROWS][2];
    float   d[CPU_TILE_ROWS];
    float   dmin[CPU_TILE_ROWS];
} cpu_tile_q4_K;

/* And for q6_K: sixteen sub-blocks of 16 values, q as unsigned 6-bit
 * bytes, the scales as 32-bit lanes and as 16-bit pairs (sc_2i, sc_2i+1)
 * that meet the column's bsums in pairs. */
typedef struct {
    uint8_t w[16][4][CPU_TILE_ROWS][4];
    int32_t sc[16][CPU_TILE_ROWS];
    int16_t scp[8][CPU_TILE_ROWS][2];
    float   d[CPU_TILE_ROWS];
} cpu_tile_q6_K;

/* Pack nr (1..CPU_TILE_ROWS) consecutive weight rows wnb bytes apart, K
 * values each, as K / block tiles of tile_bytes[t] each (rows past nr:
 * zero). */
typedef void (*cpu_pack_fn)(void *dst, const void *w, size_t wnb, int nr, int64_t K);

/* The packed rows times nc (1..CPU_DOT_MAX_COLS) activation columns (format
 * act[t]): out[c * CPU_TILE_ROWS + r].  Row r's result is
 *   acc = 0; for each block b: acc = fma(d_r,b * dx_c,b, float(isum), acc)
 * whatever nc, the row's place in the tile and the other rows, so every
 * column count gives the same floats, bit for bit. */
typedef void (*cpu_tile_fn)(float *out, int64_t K, const void *w, const void *x,
                            size_t x_stride, int nc);

typedef struct cpu_kernels {
    const char *name;                     /* "scalar", "avx2", "avx512" */
    cpu_dot_fn dot[LAMINA_TYPE_COUNT];    /* NULL where MUL_MAT lacks the type */
    uint8_t act[LAMINA_TYPE_COUNT];       /* activation format dot[t] expects */
    uint8_t cols[LAMINA_TYPE_COUNT];      /* columns dot[t] takes per call; 0: CPU_DOT_COLS */
    cpu_gemv_fn gemv[LAMINA_TYPE_COUNT];  /* NULL: dot[t] row by row */
    /* conv[t] rewrites n_blocks blocks of a row of type t as a row of
     * conv_type[t] holding the same values, on which dot[conv_type[t]]
     * gives dot[t]'s floats bit for bit (same activation format).  MUL_MAT
     * with more columns than one dot call takes converts each block of
     * weight rows once for all of them, where the cheaper type's kernel
     * pays: the unpacking is no longer repeated per column group.  NULL:
     * none. */
    void (*conv[LAMINA_TYPE_COUNT])(void *dst, const void *src, int64_t n_blocks);
    uint8_t conv_type[LAMINA_TYPE_COUNT];
    /* Where a type has both, MUL_MAT takes every column count through
     * them (one arithmetic for generation, batches and prompts), not conv:
     * each thread packs 16 rows at a time into a buffer and runs all the
     * columns over them.  One column still takes gemv[t] where the table
     * has one, which must then give the tile's nc = 1 floats bit for bit
     * (not dot's).  NULL: none. */
    cpu_pack_fn pack[LAMINA_TYPE_COUNT];
    cpu_tile_fn tile[LAMINA_TYPE_COUNT];
    uint16_t tile_bytes[LAMINA_TYPE_COUNT]; /* packed bytes of 16 rows per weight block */
    /* Attention helpers over one cache row of n values (F32 or F16). */
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    float (*dot_f16)(const uint16_t *a, const float *b, int64_t n);
    /* y[i] = y[i] * s + p * v[i] */
    void  (*scale_axpy_f32)(float *y, float s, float p, const float *v, int64_t n);
    void  (*scale_axpy_f16)(float *y, float s, float p, const uint16_t *v, int64_t n);
    /* One V row into nq accumulators: acc[h*acc_stride + i] += p[h] * v[i],
     * h < nq <= CPU_DOT_MAX_COLS, i < n; v is F16 when v_f16, else F32. */
    void  (*vmad)(float *acc, size_t acc_stride, const float *p, const void *v, int v_f16, int nq, int64_t n);
    /* sum of x[i]^2 (RMS_NORM) */
    float (*sumsq)(const float *x, int64_t n);
    /* d[i] = f16(x[i]), round to nearest even */
    void  (*to_f16)(uint16_t *d, const float *x, int64_t n);
    /* Round one column of K floats into activation format f (index: enum
     * cpu_act_format); every table's results are bit-identical. */
    void  (*quant[CPU_ACT_COUNT])(void *dst, const float *x, int64_t K);
    /* GLU row: y[i] = act(g[i]) * u[i], act a lamina_act; y may alias g. */
    void  (*glu)(float *y, const float *g, const float *u, int64_t n, int act);
} cpu_kernels;

extern const cpu_kernels cpu_kernels_scalar;
/* Filled from the scalar table plus the file's own functions. */
void cpu_kernels_avx2_init(cpu_kernels *t);
void cpu_kernels_avx512_init(cpu_kernels *t);

/* Activation format of a weight type for MUL_MAT in the scalar and AVX2
 * tables (a table's act[] may differ). */
int cpu_act_format_of(uint32_t wtype);

/* Bytes of one activation column of K values in a format; 0 when K is not
 * a multiple of the format's block. */
size_t cpu_act_row_size(int fmt, int64_t K);

/* Round one column of K floats into the activation format `fmt` with the
 * scalar table's functions.  dst must hold cpu_act_row_size(fmt, K) bytes.
 * Rounding: d = max|x| / 127 per block, q = round-half-even(x / d). */
void cpu_quantize_act(int fmt, void *dst, const float *x, int64_t K);

/* Dequantize one row of K values of `type` into floats.  Returns 0, or -1
 * when the type has no dequantizer here. */
int cpu_dequant_row(uint32_t type, float *dst, const void *src, int64_t K);

/* 1 when cpu_dequant_row handles the type. */
int cpu_dequant_supported(uint32_t type);

/* Feature detection. */
int cpu_has_avx2(void);
int cpu_has_avx512(void);

#endif
