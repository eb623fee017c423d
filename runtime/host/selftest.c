/*
 * selftest.c - known-answer tests of a backend against the reference.
 *
 * Every case builds a one- to three-node graph on fixed, seeded inputs
 * (splitmix64; never rand()), runs it on the backend under test through its
 * lamina_backend_iface and on the reference (ref.h, on host copies of the
 * same bytes), and compares.  Besides the numbers it checks that the
 * backend wrote nothing outside dst's rows (strided views leave gaps filled
 * with a byte pattern, and every buffer has a tail) and left every input
 * untouched.
 *
 * Error metric (per dst tensor): max_i |got_i - ref_i| / max(max_i |ref_i|, floor)
 * where floor is 0 except for MUL_MAT, whose floor is the expected size of
 * an output, sqrt(mean_{n,m} sum_k (W[k,n] X[k,m])^2), so that a case whose
 * few outputs happen to cancel is not judged on noise.  NaN/Inf where the
 * reference is finite, or a byte changed outside dst rows, is error = inf.
 *
 * Tolerances:
 *
 *   op         types                   tol    why
 *   ---------  ---------------------   -----  ---------------------------------
 *   get_rows   every weight type       1e-6   dequantization is exact (every
 *                                             product in the formulas is exact
 *                                             in f32)
 *   mul_mat    f32 W                   1e-4   f32 accumulation of K <= 1024
 *                                             terms, any order
 *   mul_mat    f16 W                   1e-3   X may be rounded to f16 (2^-11
 *                                             relative per term, random signs)
 *   mul_mat    bf16 W                  5e-3   X may be rounded to bf16 (2^-8);
 *                                             seen ~1.5e-3
 *   mul_mat    quantized W, random X   2e-2   X may be rounded to 8-bit blocks:
 *                                             per-term error <= amax/254,
 *                                             expected worst ~4e-3; catches
 *                                             layout/scale bugs (errors ~0.1-1)
 *   mul_mat    quantized W, grid X     3e-3   X is ternary {-a, 0, a} per
 *                                             256-block, which 8-bit blocks
 *                                             (q8_0, q8_1, q8_K) hold within
 *                                             an fp16 scale rounding (2^-11);
 *                                             so a 1% error is caught
 *   rms_norm   f32                     1e-5   f32 sum of squares, rsqrt
 *   add, mul,  f32                     1e-6   one rounding, same as reference
 *   scale
 *   glu        f32 (silu, gelu_tanh)   2e-5   exp/tanh approximations
 *   rope       f32, |pos| <= 300       2e-4   theta in f32: pos * base^(-2i/n)
 *                                             carries ~pos * 2^-23 * n/2 rad
 *   set_rows   dst f32 / f16           1e-6 / 1e-3  exact copy / one f16 ulp
 *   copy       dst f32 / f16           1e-6 / 1e-3  (any f16 rounding mode)
 *   attention  K/V cache f32           1e-4   f32 dot, softmax, weighted sum
 *   attention  K/V cache f16           2e-3   Q and P may be rounded to f16
 *
 * The wall time stays well under a second on a scalar backend: the largest
 * case has ~1M multiply-adds; the throughput measurement (score_gflops)
 * runs q4_K (else q8_0, else f32) W [1024 x 1024] x M=16 for about 60 ms.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lamina/quant.h"
#include "ref.h"
#include "selftest.h"

#define TOL_EXACT      1e-6
#define TOL_F16_STORE  1e-3
#define TOL_MM_F32     1e-4
#define TOL_MM_F16     1e-3
#define TOL_MM_BF16    5e-3
#define TOL_MM_Q       2e-2
#define TOL_MM_Q_GRID  3e-3
#define TOL_RMS_NORM   1e-5
#define TOL_GLU        2e-5
#define TOL_ROPE       2e-4
#define TOL_ATTN_F32   1e-4
#define TOL_ATTN_F16   2e-3

#define SCORE_BUDGET_MS 60.0
#define SCORE_MAX_RUNS  32

#define ST_MAX_T 10
#define ST_MAX_N 3
#define TAIL_BYTES 32


static const char *tname(uint32_t type)
{
    return lamina_type_get(type)->name;
}

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (err == NULL || err_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------ */
/* Deterministic random numbers: splitmix64.                                */

typedef struct prng { uint64_t s; } prng;

static uint64_t rnd_u64(prng *r)
{
    uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* uniform in [lo, hi) */
static float rnd_f(prng *r, float lo, float hi)
{
    double u = (double)(rnd_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

static int rnd_int(prng *r, int n)
{
    return (int)(rnd_u64(r) % (uint64_t)n);
}

/* ------------------------------------------------------------------------ */
/* Cases                                                                    */

typedef struct st_tensor {
    lamina_tensor t;        /* geometry; t.buffer is set while running */
    uint32_t usage;
    int alias;              /* index of the tensor whose buffer this shares, or -1 */
    int is_dst;             /* written by a node */
    int wrap;               /* try buffer_wrap_host (read-only weights) */
    uint64_t buf_size;      /* bytes of its buffer */
    uint8_t *init;          /* initial buffer contents (owned; NULL for aliases) */
} st_tensor;

typedef struct st_case {
    char name[128];
    uint32_t op, type;
    double tol;
    double floor;           /* error denominator floor (MUL_MAT) */
    int oom;                /* building ran out of memory */
    int nt, nn;
    st_tensor ts[ST_MAX_T];
    lamina_node nodes[ST_MAX_N];
    int nd_dst[ST_MAX_N];
    int nd_src[ST_MAX_N][LAMINA_MAX_SRC + 1];   /* src[0..3], src4 */
    prng rng;
} st_case;

static void case_init(st_case *c, uint64_t seed, uint32_t op, uint32_t type, double tol,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void case_init(st_case *c, uint64_t seed, uint32_t op, uint32_t type, double tol,
                      const char *fmt, ...)
{
    memset(c, 0, sizeof *c);
    c->op = op;
    c->type = type;
    c->tol = tol;
    c->rng.s = seed * UINT64_C(0x2545f4914f6cdd1d) + 12345;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->name, sizeof c->name, fmt, ap);
    va_end(ap);
}

static void case_free(st_case *c)
{
    for (int i = 0; i < c->nt; i++) {
        free(c->ts[i].init);
        c->ts[i].init = NULL;
    }
}

/*
 * Add a tensor with rows padded by row_pad bytes (nb[1] = row + row_pad),
 * planes by plane_pad (nb[2] = nb[1]*ne1 + plane_pad), dimension 3 packed,
 * starting at byte `offset` of its own buffer.  Offsets and pads are kept
 * multiples of 4 bytes by the callers (f32 rows stay 4-byte aligned;
 * quantized rows are as aligned as their blocks make them).  The whole buffer starts as a byte pattern; fill_* write the
 * rows.  Returns the index (or 0 with c->oom set).
 */
static int ct_add_ex(st_case *c, uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2,
                     int64_t ne3, uint64_t row_pad, uint64_t plane_pad, uint64_t offset,
                     uint32_t usage)
{
    if (c->nt >= ST_MAX_T) {
        c->oom = 1;
        return 0;
    }
    st_tensor *s = &c->ts[c->nt];
    memset(s, 0, sizeof *s);
    s->t.type = type;
    s->t.ne[0] = ne0; s->t.ne[1] = ne1; s->t.ne[2] = ne2; s->t.ne[3] = ne3;
    s->t.nb[0] = lamina_type_get(type)->type_size;
    s->t.nb[1] = lamina_row_size(type, ne0) + row_pad;
    s->t.nb[2] = s->t.nb[1] * (uint64_t)ne1 + plane_pad;
    s->t.nb[3] = s->t.nb[2] * (uint64_t)ne2;
    s->t.offset = offset;
    s->usage = usage;
    s->alias = -1;
    s->buf_size = offset + s->t.nb[3] * (uint64_t)ne3 + TAIL_BYTES;
    s->init = malloc((size_t)s->buf_size);
    if (s->init == NULL) {
        c->oom = 1;
        return 0;
    }
    /* a pattern that is never a small float: gaps and tail are checked */
    for (uint64_t i = 0; i < s->buf_size; i++)
        s->init[i] = (uint8_t)(0xA5 ^ (i * 29));
    return c->nt++;
}

static int ct_add(st_case *c, uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2,
                  int64_t ne3, uint64_t row_pad, uint64_t offset, uint32_t usage)
{
    return ct_add_ex(c, type, ne0, ne1, ne2, ne3, row_pad, 0, offset, usage);
}

/* A second tensor on the same buffer with the same geometry (in place). */
static int ct_alias(st_case *c, int of)
{
    if (c->nt >= ST_MAX_T) {
        c->oom = 1;
        return 0;
    }
    st_tensor *s = &c->ts[c->nt];
    *s = c->ts[of];
    s->alias = of;
    s->init = NULL;
    return c->nt++;
}

static uint8_t *row_host(st_tensor *s, uint8_t *buf, int64_t i1, int64_t i2, int64_t i3)
{
    return buf + s->t.offset + (uint64_t)i1 * s->t.nb[1] + (uint64_t)i2 * s->t.nb[2] +
           (uint64_t)i3 * s->t.nb[3];
}

/* Rows of an f32/f16/bf16 tensor from uniform [lo, hi). */
static void fill_uniform(st_case *c, int idx, float lo, float hi)
{
    st_tensor *s = &c->ts[idx];
    float *tmp = malloc((size_t)s->t.ne[0] * sizeof *tmp);
    if (tmp == NULL || c->oom) {
        free(tmp);
        c->oom = 1;
        return;
    }
    for (int64_t i3 = 0; i3 < s->t.ne[3]; i3++)
        for (int64_t i2 = 0; i2 < s->t.ne[2]; i2++)
            for (int64_t i1 = 0; i1 < s->t.ne[1]; i1++) {
                for (int64_t k = 0; k < s->t.ne[0]; k++)
                    tmp[k] = rnd_f(&c->rng, lo, hi);
                (void)lamina_quantize_row(s->t.type, tmp, row_host(s, s->init, i1, i2, i3),
                                          s->t.ne[0]);
            }
    free(tmp);
}

/* Ternary X for the "grid" MUL_MAT cases: every 256-chunk (or the row, if
 * shorter) of every column holds values in {-a, 0, a}, a from [0.5, 2). */
static void fill_grid(st_case *c, int idx)
{
    st_tensor *s = &c->ts[idx];
    if (c->oom)
        return;
    for (int64_t i1 = 0; i1 < s->t.ne[1]; i1++) {
        float *row = (float *)(void *)row_host(s, s->init, i1, 0, 0);
        for (int64_t k0 = 0; k0 < s->t.ne[0]; k0 += 256) {
            const float a = rnd_f(&c->rng, 0.5f, 2.0f);
            for (int64_t k = k0; k < k0 + 256 && k < s->t.ne[0]; k++) {
                const float v = (float)(rnd_int(&c->rng, 3) - 1) * a;
                memcpy(&row[k], &v, sizeof v);
            }
            /* make sure a itself occurs in the first block of the chunk */
            memcpy(&row[k0], &a, sizeof a);
        }
    }
}

static void put_half(uint8_t *p, float v)
{
    uint16_t h = lamina_fp32_to_fp16(v);
    memcpy(p, &h, sizeof h);
}

/*
 * One block of a quantized weight type: random bits, then every scale field
 * set to a finite value that keeps elements around [-1, 1] (and the q8_1
 * sum / q8_K bsums consistent with the random integers).
 */
static void weight_block(prng *r, uint32_t type, uint8_t *b)
{
    const lamina_type_traits *t = lamina_type_get(type);
    for (uint32_t i = 0; i < t->type_size; i++)
        b[i] = (uint8_t)rnd_u64(r);
    const float u = rnd_f(r, 0.5f, 1.0f), u2 = rnd_f(r, 0.5f, 1.0f);
    const float sg = rnd_int(r, 2) ? 1.0f : -1.0f;
    switch (type) {
    case LAMINA_TYPE_Q4_0: put_half(b, sg * u / 8.0f); break;
    case LAMINA_TYPE_Q5_0: put_half(b, sg * u / 16.0f); break;
    case LAMINA_TYPE_Q4_1: put_half(b, u / 15.0f); put_half(b + 2, -u2); break;
    case LAMINA_TYPE_Q5_1: put_half(b, u / 31.0f); put_half(b + 2, -u2); break;
    case LAMINA_TYPE_Q8_0: put_half(b, sg * u / 127.0f); break;
    case LAMINA_TYPE_Q8_1: {
        const float d = sg * u / 127.0f;
        int sum = 0;
        for (int l = 0; l < 32; l++)
            sum += (int8_t)b[4 + l];
        put_half(b, d);
        put_half(b + 2, lamina_fp16_to_fp32(lamina_fp32_to_fp16(d)) * (float)sum);
        break;
    }
    case LAMINA_TYPE_Q2_K: put_half(b + 80, u / 45.0f); put_half(b + 82, u2 / 30.0f); break;
    case LAMINA_TYPE_Q3_K: put_half(b + 108, u / 128.0f); break;
    case LAMINA_TYPE_Q4_K: put_half(b, u / 945.0f); put_half(b + 2, u2 / 126.0f); break;
    case LAMINA_TYPE_Q5_K: put_half(b, u / 1953.0f); put_half(b + 2, u2 / 126.0f); break;
    case LAMINA_TYPE_Q6_K: put_half(b + 208, u / 4096.0f); break;
    /* codebook values up to 127; iq4_xs sub-block scales up to 32 */
    case LAMINA_TYPE_IQ4_NL: put_half(b, sg * u / 127.0f); break;
    case LAMINA_TYPE_IQ4_XS: put_half(b, sg * u / 4064.0f); break;
    /* values up to 12 * 2^(e - 128): e 121..124, at most 0.75 */
    case LAMINA_TYPE_MXFP4: b[0] = (uint8_t)(121 + rnd_int(r, 4)); break;
    case LAMINA_TYPE_Q8_K: {
        lamina_block_q8_K q;
        memcpy(&q, b, sizeof q);
        q.d = u / 128.0f;
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += q.qs[16 * j + l];
            q.bsums[j] = (int16_t)sum;
        }
        memcpy(b, &q, sizeof q);
        break;
    }
    default: break;
    }
}

/* Rows of a weight tensor of any type with a dequantizer. */
static void fill_weights(st_case *c, int idx)
{
    st_tensor *s = &c->ts[idx];
    const lamina_type_traits *t = lamina_type_get(s->t.type);
    if (c->oom)
        return;
    if (!t->is_quantized) {
        fill_uniform(c, idx, -1.0f, 1.0f);
        return;
    }
    for (int64_t i2 = 0; i2 < s->t.ne[2]; i2++)
        for (int64_t i1 = 0; i1 < s->t.ne[1]; i1++) {
            uint8_t *row = row_host(s, s->init, i1, i2, 0);
            for (int64_t b = 0; b < s->t.ne[0] / t->block_size; b++)
                weight_block(&c->rng, s->t.type, row + b * t->type_size);
        }
}

/* An i32 tensor [ne0, ne1] from vals in ne order. */
static void fill_i32(st_case *c, int idx, const int32_t *vals)
{
    st_tensor *s = &c->ts[idx];
    if (c->oom)
        return;
    for (int64_t i1 = 0; i1 < s->t.ne[1]; i1++)
        memcpy(row_host(s, s->init, i1, 0, 0), vals + i1 * s->t.ne[0],
               (size_t)s->t.ne[0] * 4);
}

/* Append a node dst = op(srcs...); srcs ended by -1.  Returns the node. */
static lamina_node *add_node(st_case *c, uint32_t op, int dst, int s0, int s1, int s2, int s3)
{
    if (c->nn >= ST_MAX_N) {
        c->oom = 1;
        return &c->nodes[0];
    }
    lamina_node *n = &c->nodes[c->nn];
    memset(n, 0, sizeof *n);
    n->op = op;
    c->nd_dst[c->nn] = dst;
    c->ts[dst].is_dst = 1;
    const int srcs[4] = { s0, s1, s2, s3 };
    for (int i = 0; i < 4; i++) {
        c->nd_src[c->nn][i] = srcs[i];
        if (srcs[i] >= 0)
            n->n_src = (uint32_t)i + 1;
    }
    c->nd_src[c->nn][4] = -1;
    c->nn++;
    return n;
}

/* Node n of a case with its operands' geometry, over bufs (the case's
 * tensors' buffers; NULL: none yet). */
static void case_node(const st_case *c, int n, lamina_buffer *const *bufs, lamina_node *out)
{
    *out = c->nodes[n];
    out->dst = c->ts[c->nd_dst[n]].t;
    out->dst.buffer = bufs ? bufs[c->nd_dst[n]] : NULL;
    for (uint32_t k = 0; k < out->n_src; k++) {
        lamina_tensor *t = k < LAMINA_MAX_SRC ? &out->src[k] : &out->src4;
        *t = c->ts[c->nd_src[n][k]].t;
        t->buffer = bufs ? bufs[c->nd_src[n][k]] : NULL;
    }
}

/* Give the last node added a fifth operand (1.3). */
static void add_src4(st_case *c, lamina_node *n, int s4)
{
    if (c->nn > 0 && n == &c->nodes[c->nn - 1]) {
        c->nd_src[c->nn - 1][4] = s4;
        n->n_src = LAMINA_MAX_SRC + 1;
    }
}

/* Expected output size of MUL_MAT: sqrt(mean_{n,m} sum_k (W X)^2). */
static void mm_floor(st_case *c, int w, int x)
{
    st_tensor *W = &c->ts[w], *X = &c->ts[x];
    const int64_t K = W->t.ne[0], N = W->t.ne[1], M = X->t.ne[1];
    float *wr = malloc((size_t)K * sizeof *wr), *xr = malloc((size_t)(K * M) * sizeof *xr);
    if (!wr || !xr || c->oom) {
        c->oom = 1;
        goto out;
    }
    for (int64_t m = 0; m < M; m++)
        (void)lamina_dequantize_row(X->t.type, row_host(X, X->init, m, 0, 0), xr + m * K, K);
    double sum = 0.0;
    for (int64_t n = 0; n < N; n++) {
        (void)lamina_dequantize_row(W->t.type, row_host(W, W->init, n, 0, 0), wr, K);
        for (int64_t m = 0; m < M; m++)
            for (int64_t k = 0; k < K; k++) {
                double p = (double)wr[k] * xr[m * K + k];
                sum += p * p;
            }
    }
    c->floor = sqrt(sum / (double)(N * M));
out:
    free(wr);
    free(xr);
}

/* ------------------------------------------------------------------------ */
/* Running one case                                                         */

typedef struct st_run {
    const lamina_backend_iface *iface;
    lamina_backend *be;
    uint32_t abi_minor;     /* the plugin's (lamina_graph_run) */
    lamina_selftest_cb cb;
    void *cb_ctx;
    lamina_selftest_summary sum;
    int first_rc;           /* first failure's code */
    int stop;               /* device lost: run no more cases */
    char *err;
    size_t err_size;
} st_run;

typedef struct ref_map {
    lamina_buffer *key[ST_MAX_T];
    uint8_t *mem[ST_MAX_T];
    int n;
} ref_map;

static void *ref_base(void *ctx, lamina_buffer *buf)
{
    ref_map *m = ctx;
    for (int i = 0; i < m->n; i++)
        if (m->key[i] == buf)
            return m->mem[i];
    return NULL;
}

static void report(st_run *R, const st_case *c, lamina_selftest_result *res)
{
    switch (res->status) {
    case LAMINA_SELFTEST_PASS: R->sum.passed++; break;
    case LAMINA_SELFTEST_FAIL: R->sum.failed++; break;
    case LAMINA_SELFTEST_UNSUPPORTED: R->sum.unsupported++; break;
    default: R->sum.errors++; break;
    }
    R->sum.cases++;
    /* the first failure names the run's result; a lost device overrides it */
    if ((res->status == LAMINA_SELFTEST_FAIL || res->status == LAMINA_SELFTEST_ERROR) &&
        (R->first_rc == 0 || R->stop)) {
        R->first_rc = R->stop ? LAMINA_EDEVLOST : LAMINA_EREJECTED;
        if (res->status == LAMINA_SELFTEST_FAIL && res->msg[0] == '\0')
            set_err(R->err, R->err_size, "op %s type %s: max error %.1e > tolerance %.1e (case %s)",
                    lamina_op_name(c->op), tname(c->type), res->max_err, res->tol, c->name);
        else
            set_err(R->err, R->err_size, "op %s type %s: %s (case %s)", lamina_op_name(c->op),
                    tname(c->type), res->msg, c->name);
    }
    if (R->cb)
        R->cb(R->cb_ctx, res);
}

static double load_value(uint32_t type, const uint8_t *p)
{
    if (type == LAMINA_TYPE_I32) {
        int32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    if (type == LAMINA_TYPE_F16) {
        uint16_t h;
        memcpy(&h, p, sizeof h);
        return lamina_fp16_to_fp32(h);
    }
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

/* Mark the bytes of every row of tensor s in mask. */
static void mark_tensor(uint8_t *mask, const st_tensor *s)
{
    const uint64_t rs = lamina_row_size(s->t.type, s->t.ne[0]);
    for (int64_t i3 = 0; i3 < s->t.ne[3]; i3++)
        for (int64_t i2 = 0; i2 < s->t.ne[2]; i2++)
            for (int64_t i1 = 0; i1 < s->t.ne[1]; i1++)
                memset(mask + s->t.offset + (uint64_t)i1 * s->t.nb[1] +
                       (uint64_t)i2 * s->t.nb[2] + (uint64_t)i3 * s->t.nb[3], 1, (size_t)rs);
}

/* Error of one dst tensor in the case's metric. */
static double tensor_error(const st_case *c, const st_tensor *s, const uint8_t *got,
                           const uint8_t *want)
{
    const uint64_t esz = s->t.nb[0];
    double maxref = 0.0, maxdiff = 0.0;
    for (int64_t i3 = 0; i3 < s->t.ne[3]; i3++)
        for (int64_t i2 = 0; i2 < s->t.ne[2]; i2++)
            for (int64_t i1 = 0; i1 < s->t.ne[1]; i1++) {
                const uint64_t off = s->t.offset + (uint64_t)i1 * s->t.nb[1] +
                                     (uint64_t)i2 * s->t.nb[2] + (uint64_t)i3 * s->t.nb[3];
                for (int64_t k = 0; k < s->t.ne[0]; k++) {
                    const double g = load_value(s->t.type, got + off + (uint64_t)k * esz);
                    const double w = load_value(s->t.type, want + off + (uint64_t)k * esz);
                    if (!isfinite(g) && isfinite(w))
                        return INFINITY;
                    if (!isfinite(w))
                        continue;
                    if (fabs(w) > maxref) maxref = fabs(w);
                    if (fabs(g - w) > maxdiff) maxdiff = fabs(g - w);
                }
            }
    double den = maxref > c->floor ? maxref : c->floor;
    if (den <= 0.0)
        return maxdiff > 0.0 ? INFINITY : 0.0;
    return maxdiff / den;
}

static int run_case(st_run *R, st_case *c)
{
    const lamina_backend_iface *I = R->iface;
    lamina_buffer *bufs[ST_MAX_T] = { 0 };
    uint8_t *got[ST_MAX_T] = { 0 };
    uint8_t *want[ST_MAX_T] = { 0 };
    uint8_t *mask = NULL;
    lamina_node nodes[ST_MAX_N];
    lamina_selftest_result res;
    char msg[224];          /* leaves room for "backend error: " in res.msg */
    int rc = 0;

    memset(&res, 0, sizeof res);
    res.op = c->op;
    res.type = c->type;
    res.tol = c->tol;
    snprintf(res.name, sizeof res.name, "%s", c->name);

    if (c->oom) {
        set_err(R->err, R->err_size, "selftest: out of memory building case %s", c->name);
        rc = LAMINA_ENOMEM;
        goto out;
    }

    /* step 1: one backend buffer per tensor (aliases share) */
    for (int i = 0; i < c->nt; i++) {
        st_tensor *s = &c->ts[i];
        if (s->alias >= 0)
            continue;
        msg[0] = '\0';
        int r = LAMINA_ENOTSUP;
        if (s->wrap && LAMINA_HAS_FN(I, buffer_wrap_host))
            r = I->buffer_wrap_host(R->be, s->init, s->buf_size, &bufs[i], msg, sizeof msg);
        if (r == LAMINA_ENOTSUP) {
            msg[0] = '\0';
            bufs[i] = NULL;
            r = I->buffer_alloc(R->be, s->buf_size, s->usage, &bufs[i], msg, sizeof msg);
            if (r == 0)
                r = I->buffer_upload(R->be, bufs[i], 0, s->init, s->buf_size, msg, sizeof msg);
        }
        if (r != 0) {
            res.status = LAMINA_SELFTEST_ERROR;
            snprintf(res.msg, sizeof res.msg, "backend error: %s", msg[0] ? msg : "(no message)");
            if (r == LAMINA_EDEVLOST) R->stop = 1;
            goto report;
        }
    }
    for (int i = 0; i < c->nt; i++)
        if (c->ts[i].alias >= 0)
            bufs[i] = bufs[c->ts[i].alias];

    /* step 2: the nodes over those buffers */
    for (int n = 0; n < c->nn; n++)
        case_node(c, n, bufs, &nodes[n]);

    /* step 3: declined anywhere -> unsupported */
    for (int n = 0; n < c->nn; n++) {
        if (!I->supports_op(R->be, &nodes[n])) {
            res.status = LAMINA_SELFTEST_UNSUPPORTED;
            snprintf(res.msg, sizeof res.msg, "declined by supports_op (node %d, %s)", n,
                     lamina_op_name(nodes[n].op));
            goto report;
        }
    }

    /* step 4: run on the backend */
    msg[0] = '\0';
    double t0 = now_ms();
    int r = lamina_graph_run(I, R->be, R->abi_minor, nodes, (uint32_t)c->nn, msg, sizeof msg);
    res.ms = now_ms() - t0;
    if (r != 0) {
        res.status = LAMINA_SELFTEST_ERROR;
        snprintf(res.msg, sizeof res.msg, "backend error: %s", msg[0] ? msg : "(no message)");
        if (r == LAMINA_EDEVLOST) R->stop = 1;
        goto report;
    }

    /* step 5: download every buffer; run the reference on host copies */
    ref_map map = { .n = 0 };
    for (int i = 0; i < c->nt; i++) {
        st_tensor *s = &c->ts[i];
        if (s->alias >= 0)
            continue;
        got[i] = malloc((size_t)s->buf_size);
        want[i] = malloc((size_t)s->buf_size);
        if (!got[i] || !want[i]) {
            set_err(R->err, R->err_size, "selftest: out of memory in case %s", c->name);
            rc = LAMINA_ENOMEM;
            goto out;
        }
        memcpy(want[i], s->init, (size_t)s->buf_size);
        map.key[map.n] = bufs[i];
        map.mem[map.n++] = want[i];
        msg[0] = '\0';
        r = I->buffer_download(R->be, bufs[i], 0, got[i], s->buf_size, msg, sizeof msg);
        if (r != 0) {
            res.status = LAMINA_SELFTEST_ERROR;
            snprintf(res.msg, sizeof res.msg, "backend error: %s", msg[0] ? msg : "(no message)");
            if (r == LAMINA_EDEVLOST) R->stop = 1;
            goto report;
        }
    }
    for (int n = 0; n < c->nn; n++) {
        msg[0] = '\0';
        r = lamina_ref_node(&nodes[n], ref_base, &map, msg, sizeof msg);
        if (r != 0) {
            /* the harness built a node the reference rejects: our bug */
            set_err(R->err, R->err_size, "selftest: reference rejected case %s: %s", c->name, msg);
            rc = r;
            goto out;
        }
    }

    /* step 6: compare values of every dst; bytes elsewhere must not change */
    res.status = LAMINA_SELFTEST_PASS;
    for (int i = 0; i < c->nt && res.status == LAMINA_SELFTEST_PASS; i++) {
        st_tensor *s = &c->ts[i];
        if (s->alias >= 0)
            continue;
        free(mask);
        mask = calloc((size_t)s->buf_size, 1);
        if (mask == NULL) {
            set_err(R->err, R->err_size, "selftest: out of memory in case %s", c->name);
            rc = LAMINA_ENOMEM;
            goto out;
        }
        int has_dst = 0;
        for (int j = 0; j < c->nt; j++) {
            const st_tensor *v = &c->ts[j];
            if ((j == i || v->alias == i) && v->is_dst) {
                mark_tensor(mask, v);
                has_dst = 1;
            }
        }
        for (uint64_t b = 0; b < s->buf_size; b++) {
            if (!mask[b] && got[i][b] != want[i][b]) {
                res.status = LAMINA_SELFTEST_FAIL;
                res.max_err = INFINITY;
                snprintf(res.msg, sizeof res.msg,
                         "%s at byte %llu of a %s buffer",
                         has_dst ? "wrote outside the rows of dst" : "modified an input",
                         (unsigned long long)b, has_dst ? "dst" : "source");
                break;
            }
        }
    }
    for (int i = 0; i < c->nt && res.status == LAMINA_SELFTEST_PASS; i++) {
        st_tensor *s = &c->ts[i];
        if (!s->is_dst)
            continue;
        const int b = s->alias >= 0 ? s->alias : i;
        double e = tensor_error(c, s, got[b], want[b]);
        if (e > res.max_err || isnan(e))
            res.max_err = e;
    }
    if (res.status == LAMINA_SELFTEST_PASS && !(res.max_err <= c->tol))
        res.status = LAMINA_SELFTEST_FAIL;

report:
    report(R, c, &res);
out:
    for (int i = 0; i < c->nt; i++) {
        if (c->ts[i].alias < 0 && bufs[i] != NULL)
            I->buffer_free(R->be, bufs[i]);
        free(got[i]);
        free(want[i]);
    }
    free(mask);
    case_free(c);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The catalogue of cases                                                   */

static const uint32_t weight_types[] = {
    LAMINA_TYPE_F32, LAMINA_TYPE_F16, LAMINA_TYPE_BF16,
    LAMINA_TYPE_Q4_0, LAMINA_TYPE_Q4_1, LAMINA_TYPE_Q5_0, LAMINA_TYPE_Q5_1,
    LAMINA_TYPE_Q8_0, LAMINA_TYPE_Q8_1,
    LAMINA_TYPE_Q2_K, LAMINA_TYPE_Q3_K, LAMINA_TYPE_Q4_K, LAMINA_TYPE_Q5_K,
    LAMINA_TYPE_Q6_K, LAMINA_TYPE_Q8_K, LAMINA_TYPE_IQ4_NL, LAMINA_TYPE_IQ4_XS,
    LAMINA_TYPE_MXFP4,
};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

#define W_USE (LAMINA_BUFFER_WEIGHTS)
#define A_USE (LAMINA_BUFFER_ACTIVATIONS)
#define KV_USE (LAMINA_BUFFER_KV)

/* Each builder appends cases through this callback-less pattern: build into
 * *c, then run_case.  `seed` makes every case's data independent. */
typedef struct st_iter {
    st_run *R;
    uint64_t seed;
    int rc;
} st_iter;

static int go(st_iter *it, st_case *c)
{
    if (it->rc != 0 || it->R->stop) {
        case_free(c);
        return it->rc;
    }
    /* a plugin built for an older minor is never given what a newer one
     * added (an MXFP4 weight, say): nor does its self-test give it */
    for (int n = 0; n < c->nn; n++) {
        lamina_node nd;
        case_node(c, n, NULL, &nd);
        if (lamina_node_min_minor(&nd) > it->R->abi_minor) {
            case_free(c);
            return 0;
        }
    }
    it->rc = run_case(it->R, c);
    return it->rc;
}

static void cases_get_rows(st_iter *it)
{
    st_case c;
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const uint32_t T = weight_types[ti];
        const uint32_t bs = lamina_type_get(T)->block_size;
        const int64_t K = bs == 256 ? 512 : bs == 32 ? 96 : 67;
        /* plain: R = 17 rows, ids with repeats; the table wrapped if possible */
        case_init(&c, it->seed++, LAMINA_OP_GET_ROWS, T, TOL_EXACT,
                  "get_rows %s K=%lld R=17 N=5", tname(T), (long long)K);
        int tab = ct_add(&c, T, K, 17, 1, 1, 0, 0, W_USE);
        int ids = ct_add(&c, LAMINA_TYPE_I32, 5, 1, 1, 1, 0, 0, A_USE);
        int dst = ct_add(&c, LAMINA_TYPE_F32, K, 5, 1, 1, 0, 0, A_USE);
        fill_weights(&c, tab);
        c.ts[tab].wrap = 1;
        fill_i32(&c, ids, (const int32_t[]){ 16, 0, 7, 7, 3 });
        fill_uniform(&c, dst, -1, 1);
        add_node(&c, LAMINA_OP_GET_ROWS, dst, tab, ids, -1, -1);
        if (go(it, &c)) return;
        /* strided table and dst, offsets, one id */
        case_init(&c, it->seed++, LAMINA_OP_GET_ROWS, T, TOL_EXACT,
                  "get_rows %s K=%lld R=9 N=1 strided", tname(T), (long long)K);
        tab = ct_add(&c, T, K, 9, 1, 1, 2 * lamina_type_get(T)->type_size + 8, 16, W_USE);
        ids = ct_add(&c, LAMINA_TYPE_I32, 1, 1, 1, 1, 0, 4, A_USE);
        dst = ct_add(&c, LAMINA_TYPE_F32, K, 1, 1, 1, 24, 8, A_USE);
        fill_weights(&c, tab);
        fill_i32(&c, ids, (const int32_t[]){ 8 });
        add_node(&c, LAMINA_OP_GET_ROWS, dst, tab, ids, -1, -1);
        if (go(it, &c)) return;
    }
}

static double mm_tol(uint32_t T, int grid)
{
    switch (T) {
    case LAMINA_TYPE_F32: return TOL_MM_F32;
    case LAMINA_TYPE_F16: return TOL_MM_F16;
    case LAMINA_TYPE_BF16: return TOL_MM_BF16;
    default: return grid ? TOL_MM_Q_GRID : TOL_MM_Q;
    }
}

static int mm_case(st_iter *it, uint32_t T, int64_t K, int64_t N, int64_t M, int strided,
                   int grid)
{
    st_case c;
    case_init(&c, it->seed++, LAMINA_OP_MUL_MAT, T, mm_tol(T, grid),
              "mul_mat %s K=%lld N=%lld M=%lld%s%s", tname(T), (long long)K, (long long)N,
              (long long)M, strided ? " strided" : "", grid ? " x=grid" : "");
    const uint64_t wpad = strided ? 2 * lamina_type_get(T)->type_size + 4 : 0;
    int w = ct_add(&c, T, K, N, 1, 1, wpad, strided ? 8 : 0, W_USE);
    int x = ct_add(&c, LAMINA_TYPE_F32, K, M, 1, 1, strided ? 20 : 0, strided ? 4 : 0, A_USE);
    int d = ct_add(&c, LAMINA_TYPE_F32, N, M, 1, 1, strided ? 12 : 0, 0, A_USE);
    fill_weights(&c, w);
    if (grid)
        fill_grid(&c, x);
    else
        fill_uniform(&c, x, -1, 1);
    mm_floor(&c, w, x);
    add_node(&c, LAMINA_OP_MUL_MAT, d, w, x, -1, -1);
    return go(it, &c);
}

static void cases_mul_mat(st_iter *it)
{
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const uint32_t T = weight_types[ti];
        const lamina_type_traits *tr = lamina_type_get(T);
        if (tr->block_size == 256) {
            if (mm_case(it, T, 256, 33, 7, 0, 0)) return;
            if (mm_case(it, T, 512, 7, 1, 0, 0)) return;
            if (mm_case(it, T, 512, 130, 16, 0, 0)) return;
            if (mm_case(it, T, 512, 33, 7, 0, 1)) return;
            if (mm_case(it, T, 256, 5, 3, 1, 0)) return;
        } else if (tr->block_size == 32) {
            if (mm_case(it, T, 32 * 7, 33, 7, 0, 0)) return;
            if (mm_case(it, T, 32, 1, 1, 0, 0)) return;
            if (mm_case(it, T, 256, 130, 16, 0, 0)) return;
            if (mm_case(it, T, 512, 33, 7, 0, 1)) return;
            if (mm_case(it, T, 96, 7, 3, 1, 0)) return;
        } else {
            if (mm_case(it, T, 37, 33, 7, 0, 0)) return;
            if (mm_case(it, T, 256, 1, 1, 0, 0)) return;
            if (mm_case(it, T, 64, 130, 16, 0, 0)) return;
            if (mm_case(it, T, 96, 7, 3, 1, 0)) return;
        }
    }
}

/* Elementwise ops on f32: shapes, broadcast, in place, strided. */
static void cases_rms_norm(st_iter *it)
{
    st_case c;
    static const struct { int64_t ne[4]; int weight, inplace, strided; } v[] = {
        { { 640, 3, 1, 1 }, 1, 0, 0 },
        { { 37, 4, 2, 1 }, 0, 0, 0 },
        { { 256, 5, 1, 1 }, 1, 1, 0 },
        { { 96, 3, 2, 2 }, 1, 0, 1 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        case_init(&c, it->seed++, LAMINA_OP_RMS_NORM, LAMINA_TYPE_F32, TOL_RMS_NORM,
                  "rms_norm f32 K=%lld rows=%lld%s%s%s", (long long)v[i].ne[0],
                  (long long)(v[i].ne[1] * v[i].ne[2] * v[i].ne[3]),
                  v[i].weight ? " weight" : "", v[i].inplace ? " in-place" : "",
                  v[i].strided ? " strided" : "");
        const uint64_t pad = v[i].strided ? 40 : 0;
        int x = ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], v[i].ne[1], v[i].ne[2], v[i].ne[3],
                       pad, v[i].strided ? 12 : 0, A_USE);
        fill_uniform(&c, x, -2, 3);
        int w = -1;
        if (v[i].weight) {
            w = ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], 1, 1, 1, 0, 0, W_USE);
            fill_uniform(&c, w, -1.5f, 1.5f);
        }
        int d;
        if (v[i].inplace) {
            d = ct_alias(&c, x);
        } else {
            d = ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], v[i].ne[1], v[i].ne[2], v[i].ne[3],
                       v[i].strided ? 8 : 0, 0, A_USE);
        }
        lamina_node *n = add_node(&c, LAMINA_OP_RMS_NORM, d, x, w, -1, -1);
        n->fp[0] = 1e-6f;
        if (go(it, &c)) return;
    }
}

static void cases_binary(st_iter *it, uint32_t op)
{
    st_case c;
    static const struct { int64_t ne[4]; int bcast, inplace, strided; } v[] = {
        { { 100, 3, 2, 1 }, 0, 0, 0 },
        { { 64, 5, 1, 1 }, 1, 0, 0 },
        { { 33, 4, 1, 1 }, 0, 1, 0 },
        { { 640, 2, 1, 1 }, 1, 1, 0 },
        { { 48, 3, 2, 2 }, 0, 0, 1 },
    };
    const double tol = op == LAMINA_OP_GLU ? TOL_GLU : TOL_EXACT;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        for (int act = 0; act < (op == LAMINA_OP_GLU ? 2 : 1); act++) {
            if (op == LAMINA_OP_GLU && v[i].bcast)
                continue;
            case_init(&c, it->seed++, op, LAMINA_TYPE_F32, tol, "%s%s f32 [%lld,%lld,%lld,%lld]%s%s%s",
                      lamina_op_name(op), op == LAMINA_OP_GLU ? (act ? " gelu_tanh" : " silu") : "",
                      (long long)v[i].ne[0], (long long)v[i].ne[1], (long long)v[i].ne[2],
                      (long long)v[i].ne[3], v[i].bcast ? " broadcast" : "",
                      v[i].inplace ? " in-place" : "", v[i].strided ? " strided" : "");
            const uint64_t pad = v[i].strided ? 16 : 0;
            int a = ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], v[i].ne[1], v[i].ne[2], v[i].ne[3],
                           pad, v[i].strided ? 4 : 0, A_USE);
            int b = v[i].bcast
                        ? ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], 1, 1, 1, 0, 0, W_USE)
                        : ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], v[i].ne[1], v[i].ne[2],
                                 v[i].ne[3], pad * 2, 0, A_USE);
            fill_uniform(&c, a, op == LAMINA_OP_GLU ? -6.0f : -2.0f, op == LAMINA_OP_GLU ? 6.0f : 2.0f);
            fill_uniform(&c, b, -2, 2);
            int d = v[i].inplace
                        ? ct_alias(&c, a)
                        : ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], v[i].ne[1], v[i].ne[2],
                                 v[i].ne[3], v[i].strided ? 8 : 0, 0, A_USE);
            lamina_node *n = add_node(&c, op, d, a, b, -1, -1);
            n->ip[0] = act;
            if (go(it, &c)) return;
        }
    }
}

static void cases_scale(st_iter *it)
{
    st_case c;
    for (int inplace = 0; inplace < 2; inplace++) {
        case_init(&c, it->seed++, LAMINA_OP_SCALE, LAMINA_TYPE_F32, TOL_EXACT,
                  "scale f32 [33,3,2,2]%s", inplace ? " in-place" : " strided");
        int a = ct_add(&c, LAMINA_TYPE_F32, 33, 3, 2, 2, inplace ? 0 : 12, 0, A_USE);
        fill_uniform(&c, a, -3, 3);
        int d = inplace ? ct_alias(&c, a) : ct_add(&c, LAMINA_TYPE_F32, 33, 3, 2, 2, 0, 0, A_USE);
        lamina_node *n = add_node(&c, LAMINA_OP_SCALE, d, a, -1, -1, -1);
        n->fp[0] = inplace ? 0.125f : -1.7f;
        if (go(it, &c)) return;
    }
}

static void cases_rope(st_iter *it)
{
    st_case c;
    static const struct {
        int64_t D, H, N;
        int n_rot, ff, inplace, strided;
        float base, fscale;
    } v[] = {
        { 64, 4, 5, 64, 0, 0, 0, 10000.0f, 0.0f },
        { 128, 3, 3, 64, 0, 0, 0, 10000.0f, 0.0f },     /* n_rot < D */
        { 64, 2, 4, 64, 1, 0, 0, 500000.0f, 0.0f },     /* freq factors */
        { 256, 2, 3, 256, 0, 1, 0, 1000000.0f, 0.25f }, /* in place, freq_scale */
        { 96, 3, 2, 32, 1, 0, 1, 10000.0f, 1.0f },      /* strided, ff, n_rot < D */
    };
    static const int32_t pos[5] = { 0, 1, 300, 17, 2 };
    for (int mode = 0; mode <= 2; mode += 2) {
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            case_init(&c, it->seed++, LAMINA_OP_ROPE, LAMINA_TYPE_F32, TOL_ROPE,
                      "rope %s D=%lld H=%lld N=%lld n_rot=%d%s%s%s",
                      mode ? "neox" : "norm", (long long)v[i].D, (long long)v[i].H,
                      (long long)v[i].N, v[i].n_rot, v[i].ff ? " freq_factors" : "",
                      v[i].inplace ? " in-place" : "", v[i].strided ? " strided" : "");
            /* strided: gaps between heads and between tokens */
            int x = v[i].strided
                        ? ct_add_ex(&c, LAMINA_TYPE_F32, v[i].D, v[i].H, v[i].N, 1, 36, 20, 8, A_USE)
                        : ct_add(&c, LAMINA_TYPE_F32, v[i].D, v[i].H, v[i].N, 1, 0, 0, A_USE);
            fill_uniform(&c, x, -1, 1);
            int p = ct_add(&c, LAMINA_TYPE_I32, v[i].N, 1, 1, 1, 0, 0, A_USE);
            fill_i32(&c, p, pos);
            int f = -1;
            if (v[i].ff) {
                f = ct_add(&c, LAMINA_TYPE_F32, v[i].n_rot / 2, 1, 1, 1, 0, 0, W_USE);
                fill_uniform(&c, f, 1.0f, 8.0f);
            }
            int d = v[i].inplace ? ct_alias(&c, x)
                                 : ct_add(&c, LAMINA_TYPE_F32, v[i].D, v[i].H, v[i].N, 1,
                                          v[i].strided ? 4 : 0, 0, A_USE);
            lamina_node *n = add_node(&c, LAMINA_OP_ROPE, d, x, p, f, -1);
            n->ip[0] = mode;
            n->ip[1] = v[i].n_rot;
            n->fp[0] = v[i].base;
            n->fp[1] = v[i].fscale;
            if (go(it, &c)) return;
        }
    }
}

static void cases_set_rows(st_iter *it)
{
    st_case c;
    static const uint32_t dts[2] = { LAMINA_TYPE_F32, LAMINA_TYPE_F16 };
    for (int ti = 0; ti < 2; ti++) {
        const uint32_t T = dts[ti];
        const double tol = T == LAMINA_TYPE_F16 ? TOL_F16_STORE : TOL_EXACT;
        case_init(&c, it->seed++, LAMINA_OP_SET_ROWS, T, tol, "set_rows %s K=64 N=5 R=19", tname(T));
        int x = ct_add(&c, LAMINA_TYPE_F32, 64, 5, 1, 1, 0, 0, A_USE);
        int r = ct_add(&c, LAMINA_TYPE_I32, 5, 1, 1, 1, 0, 0, A_USE);
        int d = ct_add(&c, T, 64, 19, 1, 1, 0, 0, KV_USE);
        fill_uniform(&c, x, -3, 3);
        fill_i32(&c, r, (const int32_t[]){ 18, 0, 5, 4, 11 });
        fill_uniform(&c, d, -1, 1);
        add_node(&c, LAMINA_OP_SET_ROWS, d, x, r, -1, -1);
        if (go(it, &c)) return;

        case_init(&c, it->seed++, LAMINA_OP_SET_ROWS, T, tol, "set_rows %s K=256 N=1 R=7 strided",
                  tname(T));
        x = ct_add(&c, LAMINA_TYPE_F32, 256, 1, 1, 1, 0, 12, A_USE);
        r = ct_add(&c, LAMINA_TYPE_I32, 1, 1, 1, 1, 0, 0, A_USE);
        d = ct_add(&c, T, 256, 7, 1, 1, 36, 8, KV_USE);
        fill_uniform(&c, x, -40, 40);
        fill_i32(&c, r, (const int32_t[]){ 3 });
        fill_uniform(&c, d, -1, 1);
        add_node(&c, LAMINA_OP_SET_ROWS, d, x, r, -1, -1);
        if (go(it, &c)) return;
    }
}

static void cases_copy(st_iter *it)
{
    st_case c;
    static const uint32_t sts[3] = { LAMINA_TYPE_F32, LAMINA_TYPE_F16, LAMINA_TYPE_BF16 };
    static const uint32_t dts[2] = { LAMINA_TYPE_F32, LAMINA_TYPE_F16 };
    for (int si = 0; si < 3; si++)
        for (int di = 0; di < 2; di++) {
            const double tol = dts[di] == LAMINA_TYPE_F16 ? TOL_F16_STORE : TOL_EXACT;
            case_init(&c, it->seed++, LAMINA_OP_COPY, sts[si], tol,
                      "copy %s->%s [67,3,2] strided", tname(sts[si]), tname(dts[di]));
            int s = ct_add(&c, sts[si], 67, 3, 2, 1, 12, 4, A_USE);
            int d = ct_add(&c, dts[di], 67, 3, 2, 1, di ? 8 : 0, 0, A_USE);
            fill_uniform(&c, s, -5, 5);
            add_node(&c, LAMINA_OP_COPY, d, s, -1, -1, -1);
            if (go(it, &c)) return;
        }
}

typedef struct attn_cfg {
    int64_t D, Dv, Hq, Hkv, N, R;
    int window;
    float softcap;
    uint32_t kt, vt;
    int strided;
    const int32_t *bp;     /* [2, N]: (base, pos) per token */
    int sinks;             /* 1.3: per-head sinks as src4 */
} attn_cfg;

static int attn_case(st_iter *it, const attn_cfg *a, const char *what)
{
    st_case c;
    const double tol = (a->kt == LAMINA_TYPE_F16 || a->vt == LAMINA_TYPE_F16) ? TOL_ATTN_F16
                                                                               : TOL_ATTN_F32;
    case_init(&c, it->seed++, LAMINA_OP_ATTENTION, a->kt, tol,
              "attention k=%s v=%s D=%lld Dv=%lld Hq=%lld Hkv=%lld N=%lld window=%d softcap=%g%s%s",
              tname(a->kt), tname(a->vt), (long long)a->D, (long long)a->Dv, (long long)a->Hq,
              (long long)a->Hkv, (long long)a->N, a->window, (double)a->softcap,
              a->sinks ? " sinks" : "", what);
    const uint64_t pad = a->strided ? 24 : 0;
    int q = ct_add(&c, LAMINA_TYPE_F32, a->D, a->Hq, a->N, 1, pad, a->strided ? 8 : 0, A_USE);
    int k = ct_add(&c, a->kt, a->D * a->Hkv, a->R, 1, 1, pad, 0, KV_USE);
    int v = ct_add(&c, a->vt, a->Dv * a->Hkv, a->R, 1, 1, pad * 2, a->strided ? 4 : 0, KV_USE);
    int p = ct_add(&c, LAMINA_TYPE_I32, 2, a->N, 1, 1, 0, 0, A_USE);
    int d = ct_add(&c, LAMINA_TYPE_F32, a->Dv * a->Hq, a->N, 1, 1, a->strided ? 4 : 0, 0, A_USE);
    fill_uniform(&c, q, -1, 1);
    fill_uniform(&c, k, -1, 1);
    fill_uniform(&c, v, -1, 1);
    fill_i32(&c, p, a->bp);
    lamina_node *n = add_node(&c, LAMINA_OP_ATTENTION, d, q, k, v, p);
    if (a->sinks) {
        /* around the scores' own range, so that they matter */
        int sk = ct_add(&c, LAMINA_TYPE_F32, a->Hq, 1, 1, 1, 0, 0, W_USE);
        fill_uniform(&c, sk, -2, 3);
        add_src4(&c, n, sk);
    }
    n->ip[0] = a->window;
    n->fp[0] = (float)(1.0 / sqrt((double)a->D)) * 2.0f;   /* sharper than usual */
    n->fp[1] = a->softcap;
    return go(it, &c);
}

static void cases_attention(st_iter *it)
{
    /* prefill of 5 tokens after 3 cached ones */
    static const int32_t bp5[10] = { 0, 3, 0, 4, 0, 5, 0, 6, 0, 7 };
    /* two sequences: base 0 at pos 9, base 12 at pos 0 and 1 */
    static const int32_t bp3[6] = { 0, 9, 12, 0, 12, 1 };
    /* decode one token at pos 11 */
    static const int32_t bp1[2] = { 2, 11 };
    static const uint32_t ct[2] = { LAMINA_TYPE_F32, LAMINA_TYPE_F16 };
    for (int ti = 0; ti < 2; ti++) {
        const uint32_t T = ct[ti];
        attn_cfg a = { 64, 64, 8, 2, 5, 16, 0, 0.0f, T, T, 0, bp5, 0 };
        if (attn_case(it, &a, " gqa prefill")) return;
        a.window = 3;
        a.softcap = 2.0f;
        if (attn_case(it, &a, " gqa prefill")) return;
        attn_cfg b = { 256, 256, 4, 1, 3, 16, 4, 0.0f, T, T, 0, bp3, 0 };
        if (attn_case(it, &b, " two sequences")) return;
        attn_cfg d = { 32, 48, 4, 4, 1, 16, 0, 0.0f, T, T, 1, bp1, 0 };
        if (attn_case(it, &d, " decode strided")) return;
    }
    attn_cfg m = { 64, 64, 4, 2, 5, 16, 0, 0.0f, LAMINA_TYPE_F16, LAMINA_TYPE_F32, 0, bp5, 0 };
    if (attn_case(it, &m, " mixed")) return;
}

/* 1.3 (gpt-oss): attention sinks, GLU swiglu_oai, YaRN rope. */
static void cases_1_3(st_iter *it)
{
    static const int32_t bp5[10] = { 0, 3, 0, 4, 0, 5, 0, 6, 0, 7 };
    static const int32_t bp1[2] = { 2, 11 };
    static const uint32_t ct[2] = { LAMINA_TYPE_F32, LAMINA_TYPE_F16 };
    for (int ti = 0; ti < 2; ti++) {
        attn_cfg a = { 64, 64, 8, 2, 5, 16, 0, 0.0f, ct[ti], ct[ti], 0, bp5, 1 };
        if (attn_case(it, &a, " gqa prefill")) return;
        a.window = 3;
        if (attn_case(it, &a, " gqa prefill")) return;
        attn_cfg d = { 32, 48, 4, 4, 1, 16, 0, 0.0f, ct[ti], ct[ti], 1, bp1, 1 };
        if (attn_case(it, &d, " decode strided")) return;
    }
    st_case c;
    /* swiglu_oai: limits inside and across the inputs' range */
    static const float lim[2] = { 7.0f, 1.5f };
    for (int i = 0; i < 2; i++) {
        case_init(&c, it->seed++, LAMINA_OP_GLU, LAMINA_TYPE_F32, TOL_GLU,
                  "glu swiglu_oai alpha=1.702 limit=%g f32 [96,3,2,1]%s", (double)lim[i],
                  i ? " in-place" : "");
        int a = ct_add(&c, LAMINA_TYPE_F32, 96, 3, 2, 1, 0, 0, A_USE);
        int b = ct_add(&c, LAMINA_TYPE_F32, 96, 3, 2, 1, 0, 0, A_USE);
        fill_uniform(&c, a, -9, 9);
        fill_uniform(&c, b, -3, 3);
        int d = i ? ct_alias(&c, a) : ct_add(&c, LAMINA_TYPE_F32, 96, 3, 2, 1, 0, 0, A_USE);
        lamina_node *n = add_node(&c, LAMINA_OP_GLU, d, a, b, -1, -1);
        n->ip[0] = LAMINA_ACT_SWIGLU_OAI;
        n->fp[0] = 1.702f;
        n->fp[1] = lim[i];
        if (go(it, &c)) return;
    }
    /* YaRN: gpt-oss's (factor 32 over 4096, base 150000, betas 32 and 1),
     * and a second with freq factors, attn_factor and n_rot < D */
    static const int32_t pos[5] = { 0, 1, 3000, 17, 9000 };
    for (int i = 0; i < 2; i++) {
        const int64_t D = i ? 96 : 64, n_rot = i ? 64 : 64;
        case_init(&c, it->seed++, LAMINA_OP_ROPE, LAMINA_TYPE_F32, TOL_ROPE,
                  "rope %s yarn D=%lld H=3 N=5 n_rot=%lld%s", i ? "norm" : "neox", (long long)D,
                  (long long)n_rot, i ? " freq_factors attn_factor" : "");
        int x = ct_add(&c, LAMINA_TYPE_F32, D, 3, 5, 1, 0, 0, A_USE);
        fill_uniform(&c, x, -1, 1);
        int p = ct_add(&c, LAMINA_TYPE_I32, 5, 1, 1, 1, 0, 0, A_USE);
        fill_i32(&c, p, pos);
        int f = -1;
        if (i) {
            f = ct_add(&c, LAMINA_TYPE_F32, n_rot / 2, 1, 1, 1, 0, 0, W_USE);
            fill_uniform(&c, f, 1.0f, 4.0f);
        }
        int d = ct_add(&c, LAMINA_TYPE_F32, D, 3, 5, 1, 0, 0, A_USE);
        lamina_node *n = add_node(&c, LAMINA_OP_ROPE, d, x, p, f, -1);
        n->ip[0] = i ? LAMINA_ROPE_NORM : LAMINA_ROPE_NEOX;
        n->ip[1] = (int32_t)n_rot;
        n->ip[2] = i ? 2048 : 4096;
        n->fp[0] = i ? 10000.0f : 150000.0f;
        n->fp[1] = i ? 0.25f : 1.0f / 32.0f;
        n->fp[2] = 1.0f;
        n->fp[3] = i ? 0.9f : 1.0f;
        n->fp[4] = 32.0f;
        n->fp[5] = 1.0f;
        if (go(it, &c)) return;
    }
}

/* Few-node graphs: a node reading what an earlier node wrote. */
/* Mixture of experts (ABI 1.1): routing and the expert matmul. */
static void cases_moe(st_iter *it)
{
    st_case c;
    /* TOPK: k of 8 and a full sort of 8, a column with ties */
    static const int ks[] = { 2, 8 };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        case_init(&c, it->seed++, LAMINA_OP_TOPK, LAMINA_TYPE_F32, TOL_EXACT, "topk f32 N=8 T=5 k=%d", ks[i]);
        int x = ct_add(&c, LAMINA_TYPE_F32, 8, 5, 1, 1, i ? 12 : 0, 0, A_USE);
        int d = ct_add(&c, LAMINA_TYPE_I32, ks[i], 5, 1, 1, 0, 4, A_USE);
        fill_uniform(&c, x, -3, 3);
        if (!c.oom) {               /* column 4: 1, 2, 2, 0, 2, ... (ties: lower index first) */
            static const float tie[8] = { 1, 2, 2, 0, 2, -1, -2, 0.5f };
            memcpy(row_host(&c.ts[x], c.ts[x].init, 4, 0, 0), tie, sizeof tie);
        }
        lamina_node *n = add_node(&c, LAMINA_OP_TOPK, d, x, -1, -1, -1);
        n->ip[0] = ks[i];
        if (go(it, &c)) return;
    }
    /* MOE_WEIGHTS: over the selected and over all */
    for (int norm = 0; norm <= 1; norm++) {
        case_init(&c, it->seed++, LAMINA_OP_MOE_WEIGHTS, LAMINA_TYPE_F32, TOL_RMS_NORM,
                  "moe_weights f32 N=8 k=3 T=4 %s", norm ? "selected" : "all");
        int x = ct_add(&c, LAMINA_TYPE_F32, 8, 4, 1, 1, 0, 0, A_USE);
        int ids = ct_add(&c, LAMINA_TYPE_I32, 3, 4, 1, 1, 8, 0, A_USE);
        int d = ct_add(&c, LAMINA_TYPE_F32, 3, 4, 1, 1, 0, 0, A_USE);
        fill_uniform(&c, x, -4, 4);
        fill_i32(&c, ids, (const int32_t[]){ 0, 7, 3, 5, 1, 2, 6, 4, 0, 2, 3, 1 });
        lamina_node *n = add_node(&c, LAMINA_OP_MOE_WEIGHTS, d, x, ids, -1, -1);
        n->ip[0] = norm;
        if (go(it, &c)) return;
    }
    /* MUL_MAT_ID: 4 experts, 2 per token, one input column per token or one
     * per slot, on a float, an 8-bit and a k-quant weight type, and mxfp4
     * (gpt-oss's experts) */
    static const uint32_t types[] = { LAMINA_TYPE_F32, LAMINA_TYPE_Q8_0, LAMINA_TYPE_Q4_K,
                                      LAMINA_TYPE_MXFP4 };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        for (int per_slot = 0; per_slot <= 1; per_slot++) {
            const uint32_t T = types[ti];
            const int64_t K = 256, N = 33, X = 4, k = 2, Tn = 3;
            case_init(&c, it->seed++, LAMINA_OP_MUL_MAT_ID, T, mm_tol(T, 0),
                      "mul_mat_id %s K=%lld N=%lld experts=%lld k=%lld T=%lld%s", tname(T), (long long)K,
                      (long long)N, (long long)X, (long long)k, (long long)Tn, per_slot ? " per-slot input" : "");
            int w = ct_add_ex(&c, T, K, N, X, 1, 0, 64, 0, W_USE);
            int a = ct_add(&c, LAMINA_TYPE_F32, K, per_slot ? k : 1, Tn, 1, per_slot ? 0 : 16, 0, A_USE);
            int ids = ct_add(&c, LAMINA_TYPE_I32, k, Tn, 1, 1, 0, 0, A_USE);
            int d = ct_add(&c, LAMINA_TYPE_F32, N, k, Tn, 1, 0, 0, A_USE);
            fill_weights(&c, w);
            fill_uniform(&c, a, -1, 1);
            fill_i32(&c, ids, (const int32_t[]){ 3, 0, 1, 3, 2, 1 });
            mm_floor(&c, w, a);
            add_node(&c, LAMINA_OP_MUL_MAT_ID, d, w, a, ids, -1);
            if (go(it, &c)) return;
        }
    }
    /* MOE_SUM */
    case_init(&c, it->seed++, LAMINA_OP_MOE_SUM, LAMINA_TYPE_F32, TOL_RMS_NORM, "moe_sum f32 E=37 k=3 T=4");
    int y = ct_add(&c, LAMINA_TYPE_F32, 37, 3, 4, 1, 4, 8, A_USE);
    int w = ct_add(&c, LAMINA_TYPE_F32, 3, 4, 1, 1, 0, 0, A_USE);
    int d = ct_add(&c, LAMINA_TYPE_F32, 37, 4, 1, 1, 0, 0, A_USE);
    fill_uniform(&c, y, -1, 1);
    fill_uniform(&c, w, 0, 1);
    add_node(&c, LAMINA_OP_MOE_SUM, d, y, w, -1, -1);
    go(it, &c);
}

/* Encoder ops (ABI 1.2): layer norm with weight and bias, an activation
 * alone. */
static void cases_encoder(st_iter *it)
{
    st_case c;
    /* NORM: no weight, weight only, weight and bias (in place, strided);
     * rows offset from zero, so a norm that skips the mean is far off */
    static const struct { int64_t ne[4]; int n_src, inplace, strided; } v[] = {
        { { 384, 3, 1, 1 }, 3, 0, 0 },
        { { 37, 4, 2, 1 }, 1, 0, 0 },
        { { 256, 5, 1, 1 }, 2, 1, 0 },
        { { 96, 3, 2, 2 }, 3, 1, 1 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        case_init(&c, it->seed++, LAMINA_OP_NORM, LAMINA_TYPE_F32, TOL_RMS_NORM,
                  "norm f32 K=%lld rows=%lld%s%s%s%s", (long long)v[i].ne[0],
                  (long long)(v[i].ne[1] * v[i].ne[2] * v[i].ne[3]), v[i].n_src >= 2 ? " weight" : "",
                  v[i].n_src == 3 ? " bias" : "", v[i].inplace ? " in-place" : "",
                  v[i].strided ? " strided" : "");
        const uint64_t pad = v[i].strided ? 40 : 0;
        int x = ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], v[i].ne[1], v[i].ne[2], v[i].ne[3],
                       pad, v[i].strided ? 12 : 0, A_USE);
        fill_uniform(&c, x, 1, 6);
        int w = -1, b = -1;
        if (v[i].n_src >= 2) {
            w = ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], 1, 1, 1, 0, 0, W_USE);
            fill_uniform(&c, w, -1.5f, 1.5f);
        }
        if (v[i].n_src == 3) {
            b = ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], 1, 1, 1, 0, 0, W_USE);
            fill_uniform(&c, b, -0.5f, 0.5f);
        }
        int d = v[i].inplace ? ct_alias(&c, x)
                             : ct_add(&c, LAMINA_TYPE_F32, v[i].ne[0], v[i].ne[1], v[i].ne[2], v[i].ne[3],
                                      v[i].strided ? 8 : 0, 0, A_USE);
        lamina_node *n = add_node(&c, LAMINA_OP_NORM, d, x, w, b, -1);
        n->fp[0] = 1e-12f;
        if (go(it, &c)) return;
    }
    /* UNARY: gelu (tanh) and silu, out of place and in place (strided) */
    for (int act = 0; act < 2; act++) {
        for (int inplace = 0; inplace < 2; inplace++) {
            case_init(&c, it->seed++, LAMINA_OP_UNARY, LAMINA_TYPE_F32, TOL_GLU, "unary %s f32 [%d,3,2,1]%s",
                      act == LAMINA_ACT_GELU_TANH ? "gelu_tanh" : "silu", inplace ? 48 : 100,
                      inplace ? " in-place strided" : "");
            int x = ct_add(&c, LAMINA_TYPE_F32, inplace ? 48 : 100, 3, 2, 1, inplace ? 16 : 0,
                           inplace ? 4 : 0, A_USE);
            fill_uniform(&c, x, -6, 6);
            int d = inplace ? ct_alias(&c, x) : ct_add(&c, LAMINA_TYPE_F32, 100, 3, 2, 1, 8, 0, A_USE);
            lamina_node *n = add_node(&c, LAMINA_OP_UNARY, d, x, -1, -1, -1);
            n->ip[0] = act;
            if (go(it, &c)) return;
        }
    }
}

static void cases_graphs(st_iter *it)
{
    st_case c;
    /* write 2 new K/V rows (f16) then attend over the cache */
    {
        static const int32_t rows[2] = { 6, 7 };
        static const int32_t bp[4] = { 0, 6, 0, 7 };
        case_init(&c, it->seed++, LAMINA_OP_ATTENTION, LAMINA_TYPE_F16, TOL_ATTN_F16,
                  "graph set_rows+attention f16 D=64 Hq=4 Hkv=1 N=2");
        int kn = ct_add(&c, LAMINA_TYPE_F32, 64, 2, 1, 1, 0, 0, A_USE);
        int vn = ct_add(&c, LAMINA_TYPE_F32, 64, 2, 1, 1, 0, 0, A_USE);
        int r = ct_add(&c, LAMINA_TYPE_I32, 2, 1, 1, 1, 0, 0, A_USE);
        int kc = ct_add(&c, LAMINA_TYPE_F16, 64, 12, 1, 1, 0, 0, KV_USE);
        int vc = ct_add(&c, LAMINA_TYPE_F16, 64, 12, 1, 1, 0, 0, KV_USE);
        int q = ct_add(&c, LAMINA_TYPE_F32, 64, 4, 2, 1, 0, 0, A_USE);
        int p = ct_add(&c, LAMINA_TYPE_I32, 2, 2, 1, 1, 0, 0, A_USE);
        int d = ct_add(&c, LAMINA_TYPE_F32, 64 * 4, 2, 1, 1, 0, 0, A_USE);
        fill_uniform(&c, kn, -1, 1);
        fill_uniform(&c, vn, -1, 1);
        fill_i32(&c, r, rows);
        fill_uniform(&c, kc, -1, 1);
        fill_uniform(&c, vc, -1, 1);
        fill_uniform(&c, q, -1, 1);
        fill_i32(&c, p, bp);
        add_node(&c, LAMINA_OP_SET_ROWS, kc, kn, r, -1, -1);
        add_node(&c, LAMINA_OP_SET_ROWS, vc, vn, r, -1, -1);
        lamina_node *n = add_node(&c, LAMINA_OP_ATTENTION, d, q, kc, vc, p);
        n->fp[0] = 0.25f;
        if (go(it, &c)) return;
    }
    /* rms_norm -> mul_mat (q8_0) -> scale, in place */
    {
        case_init(&c, it->seed++, LAMINA_OP_MUL_MAT, LAMINA_TYPE_Q8_0, TOL_MM_Q,
                  "graph rms_norm+mul_mat+scale q8_0 K=256 N=33 M=3");
        int x = ct_add(&c, LAMINA_TYPE_F32, 256, 3, 1, 1, 0, 0, A_USE);
        int h = ct_add(&c, LAMINA_TYPE_F32, 256, 3, 1, 1, 0, 0, A_USE);
        int w = ct_add(&c, LAMINA_TYPE_Q8_0, 256, 33, 1, 1, 0, 0, W_USE);
        int y = ct_add(&c, LAMINA_TYPE_F32, 33, 3, 1, 1, 0, 0, A_USE);
        fill_uniform(&c, x, -4, 4);
        fill_weights(&c, w);
        c.floor = 0.0;
        lamina_node *n = add_node(&c, LAMINA_OP_RMS_NORM, h, x, -1, -1, -1);
        n->fp[0] = 1e-5f;
        add_node(&c, LAMINA_OP_MUL_MAT, y, w, h, -1, -1);
        int y2 = ct_alias(&c, y);
        n = add_node(&c, LAMINA_OP_SCALE, y2, y, -1, -1, -1);
        n->fp[0] = 0.5f;
        if (go(it, &c)) return;
    }
}

/* ------------------------------------------------------------------------ */
/* Throughput                                                               */

static double measure_gflops(st_run *R)
{
    static const uint32_t types[3] = { LAMINA_TYPE_Q4_K, LAMINA_TYPE_Q8_0, LAMINA_TYPE_F32 };
    const lamina_backend_iface *I = R->iface;
    const int64_t K = 1024, N = 1024, M = 16;
    double gflops = 0.0;
    for (int ti = 0; ti < 3 && gflops == 0.0; ti++) {
        st_case c;
        lamina_buffer *bufs[3] = { 0 };
        char msg[256];
        case_init(&c, 777 + (uint64_t)ti, LAMINA_OP_MUL_MAT, types[ti], 0, "score");
        int w = ct_add(&c, types[ti], K, N, 1, 1, 0, 0, W_USE);
        int x = ct_add(&c, LAMINA_TYPE_F32, K, M, 1, 1, 0, 0, A_USE);
        int d = ct_add(&c, LAMINA_TYPE_F32, N, M, 1, 1, 0, 0, A_USE);
        fill_weights(&c, w);
        fill_uniform(&c, x, -1, 1);
        if (c.oom)
            goto next;
        for (int i = 0; i < 3; i++) {
            if (I->buffer_alloc(R->be, c.ts[i].buf_size, c.ts[i].usage, &bufs[i], msg,
                                sizeof msg) != 0 ||
                I->buffer_upload(R->be, bufs[i], 0, c.ts[i].init, c.ts[i].buf_size, msg,
                                 sizeof msg) != 0)
                goto next;
        }
        lamina_node n;
        memset(&n, 0, sizeof n);
        n.op = LAMINA_OP_MUL_MAT;
        n.n_src = 2;
        n.dst = c.ts[d].t;
        n.dst.buffer = bufs[d];
        n.src[0] = c.ts[w].t;
        n.src[0].buffer = bufs[w];
        n.src[1] = c.ts[x].t;
        n.src[1].buffer = bufs[x];
        if (!I->supports_op(R->be, &n))
            goto next;
        lamina_graph g = { sizeof(lamina_graph), 1, &n, sizeof(lamina_node), 0 };
        /* the first run warms up; when it alone spends the budget it counts */
        double t0 = now_ms();
        if (I->graph_compute(R->be, &g, msg, sizeof msg) != 0)
            goto next;
        double first = now_ms() - t0;
        int runs = 1;
        double spent = first;
        if (first < SCORE_BUDGET_MS / 2) {
            runs = 0;
            spent = 0.0;
            t0 = now_ms();
            while (runs < SCORE_MAX_RUNS && spent < SCORE_BUDGET_MS) {
                if (I->graph_compute(R->be, &g, msg, sizeof msg) != 0)
                    goto next;
                runs++;
                spent = now_ms() - t0;
            }
        }
        if (spent > 0.0)
            gflops = 2.0 * (double)K * (double)N * (double)M * runs / (spent * 1e6);
    next:
        for (int i = 0; i < 3; i++)
            if (bufs[i] != NULL)
                I->buffer_free(R->be, bufs[i]);
        case_free(&c);
    }
    return gflops;
}

/* ------------------------------------------------------------------------ */

int lamina_graph_run(const lamina_backend_iface *iface, lamina_backend *be, uint32_t abi_minor,
                     const lamina_node *nodes, uint32_t n, char *err, size_t err_size)
{
    if (abi_minor >= 3) {
        lamina_graph g = { sizeof g, n, nodes, sizeof(lamina_node), 0 };
        return iface->graph_compute(be, &g, err, err_size);
    }
    const size_t step = LAMINA_NODE_SIZE_1_0;
    char *packed = malloc(n ? (size_t)n * step : 1);
    if (packed == NULL) {
        set_err(err, err_size, "out of memory packing a graph of %u nodes", n);
        return LAMINA_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        memcpy(packed + (size_t)i * step, &nodes[i], step);
    lamina_graph g = { sizeof g, n, (const lamina_node *)(const void *)packed, (uint32_t)step, 0 };
    int rc = iface->graph_compute(be, &g, err, err_size);
    free(packed);
    return rc;
}

int lamina_selftest_run(const lamina_backend_iface *iface, lamina_backend *be,
                        lamina_selftest_cb cb, void *cb_ctx,
                        lamina_selftest_summary *summary,
                        char *err, size_t err_size)
{
    return lamina_selftest_run_minor(iface, be, LAMINA_PLUGIN_ABI_MINOR, cb, cb_ctx, summary, err, err_size);
}

int lamina_selftest_run_minor(const lamina_backend_iface *iface, lamina_backend *be, uint32_t abi_minor,
                              lamina_selftest_cb cb, void *cb_ctx,
                              lamina_selftest_summary *summary,
                              char *err, size_t err_size)
{
    if (summary)
        memset(summary, 0, sizeof *summary);
    if (iface == NULL || be == NULL) {
        set_err(err, err_size, "selftest: no backend interface or instance");
        return LAMINA_EINVAL;
    }
    static const struct { const char *name; size_t off; } need[] = {
        { "buffer_alloc", offsetof(lamina_backend_iface, buffer_alloc) },
        { "buffer_free", offsetof(lamina_backend_iface, buffer_free) },
        { "buffer_upload", offsetof(lamina_backend_iface, buffer_upload) },
        { "buffer_download", offsetof(lamina_backend_iface, buffer_download) },
        { "supports_op", offsetof(lamina_backend_iface, supports_op) },
        { "graph_compute", offsetof(lamina_backend_iface, graph_compute) },
    };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        void *fn = NULL;
        if (iface->struct_size >= need[i].off + sizeof(void (*)(void)))
            memcpy(&fn, (const char *)iface + need[i].off, sizeof fn);
        if (fn == NULL) {
            set_err(err, err_size, "selftest: backend interface lacks %s", need[i].name);
            return LAMINA_EINVAL;
        }
    }

    st_run R;
    memset(&R, 0, sizeof R);
    R.iface = iface;
    R.be = be;
    R.abi_minor = abi_minor;
    R.cb = cb;
    R.cb_ctx = cb_ctx;
    R.err = err;
    R.err_size = err_size;
    if (err && err_size)
        err[0] = '\0';
    const double t0 = now_ms();

    st_iter it = { &R, 1, 0 };
    cases_get_rows(&it);
    cases_mul_mat(&it);
    cases_rms_norm(&it);
    cases_binary(&it, LAMINA_OP_ADD);
    cases_binary(&it, LAMINA_OP_MUL);
    cases_scale(&it);
    cases_rope(&it);
    cases_set_rows(&it);
    cases_attention(&it);
    cases_binary(&it, LAMINA_OP_GLU);
    cases_copy(&it);
    if (abi_minor >= 1)             /* a 1.0 plugin is never given 1.1 ops */
        cases_moe(&it);
    if (abi_minor >= 2)             /* nor a 1.0 or 1.1 plugin 1.2 ops */
        cases_encoder(&it);
    if (abi_minor >= 3)             /* nor an older one what 1.3 added */
        cases_1_3(&it);
    cases_graphs(&it);

    if (it.rc == 0 && !R.stop)
        R.sum.score_gflops = measure_gflops(&R);
    R.sum.total_ms = now_ms() - t0;
    if (summary)
        *summary = R.sum;
    if (it.rc != 0)
        return it.rc;
    return R.first_rc;
}
