/*
 * ops.c - every lamina_op on the CPU: checking a node, splitting it over
 * the thread pool, and the row loops around the kernels of kernels.h.
 * The maths of each op is the one written in lamina/plugin.h.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

/* ------------------------------------------------------------------ */
/* Types                                                               */

uint32_t cpu_type_block(uint32_t type)
{
    switch (type) {
    case LAMINA_TYPE_F32: case LAMINA_TYPE_F16: case LAMINA_TYPE_BF16: case LAMINA_TYPE_I32:
        return 1;
    case LAMINA_TYPE_Q4_0: case LAMINA_TYPE_Q4_1: case LAMINA_TYPE_Q5_0:
    case LAMINA_TYPE_Q5_1: case LAMINA_TYPE_Q8_0:
        return 32;
    case LAMINA_TYPE_Q4_K: case LAMINA_TYPE_Q5_K: case LAMINA_TYPE_Q6_K:
        return 256;
    case LAMINA_TYPE_Q2_K: case LAMINA_TYPE_Q3_K: case LAMINA_TYPE_Q8_1: case LAMINA_TYPE_Q8_K:
    case LAMINA_TYPE_IQ4_NL: case LAMINA_TYPE_IQ4_XS: case LAMINA_TYPE_MXFP4: {
        const lamina_type_traits *tr = lamina_type_get(type);
        return tr ? tr->block_size : 0;
    }
    default:
        return 0;
    }
}

uint32_t cpu_type_size(uint32_t type)
{
    switch (type) {
    case LAMINA_TYPE_F32: case LAMINA_TYPE_I32: return 4;
    case LAMINA_TYPE_F16: case LAMINA_TYPE_BF16: return 2;
    case LAMINA_TYPE_Q4_0: return sizeof(lamina_block_q4_0);
    case LAMINA_TYPE_Q4_1: return sizeof(lamina_block_q4_1);
    case LAMINA_TYPE_Q5_0: return sizeof(lamina_block_q5_0);
    case LAMINA_TYPE_Q5_1: return sizeof(lamina_block_q5_1);
    case LAMINA_TYPE_Q8_0: return sizeof(lamina_block_q8_0);
    case LAMINA_TYPE_Q4_K: return sizeof(lamina_block_q4_K);
    case LAMINA_TYPE_Q5_K: return sizeof(lamina_block_q5_K);
    case LAMINA_TYPE_Q6_K: return sizeof(lamina_block_q6_K);
    case LAMINA_TYPE_Q2_K: case LAMINA_TYPE_Q3_K: case LAMINA_TYPE_Q8_1: case LAMINA_TYPE_Q8_K:
    case LAMINA_TYPE_IQ4_NL: case LAMINA_TYPE_IQ4_XS: case LAMINA_TYPE_MXFP4: {
        const lamina_type_traits *tr = lamina_type_get(type);
        return tr ? tr->type_size : 0;
    }
    default: return 0;
    }
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */

#define WHY(...) do { if (why && why_size) snprintf(why, why_size, __VA_ARGS__); return 0; } while (0)


/* Largest extent accepted in one dimension (keeps products in int64). */
#define CPU_MAX_NE ((int64_t)1 << 40)

/* A tensor of a known type with sane ne and nb[0]. */
static int tensor_ok(const lamina_tensor *t)
{
    const uint32_t bs = cpu_type_block(t->type);
    if (bs == 0) return 0;
    for (int i = 0; i < 4; i++)
        if (t->ne[i] < 1 || t->ne[i] > CPU_MAX_NE) return 0;
    if (t->ne[0] % bs) return 0;
    if (t->nb[0] != cpu_type_size(t->type)) return 0;
    return 1;
}

static int same_shape(const lamina_tensor *a, const lamina_tensor *b)
{
    for (int i = 0; i < 4; i++)
        if (a->ne[i] != b->ne[i]) return 0;
    return 1;
}

static int is_vec(const lamina_tensor *t, int64_t n)
{
    return t->ne[0] == n && t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1;
}

static int64_t nrows(const lamina_tensor *t)
{
    return t->ne[1] * t->ne[2] * t->ne[3];
}

/* Address of row r (flattened over dims 1..3). */
static inline uint8_t *row_ptr(const lamina_tensor *t, int64_t r)
{
    const int64_t i1 = r % t->ne[1];
    const int64_t i2 = (r / t->ne[1]) % t->ne[2];
    const int64_t i3 = r / (t->ne[1] * t->ne[2]);
    return cpu_tensor_data(t) + (uint64_t)i1 * t->nb[1] + (uint64_t)i2 * t->nb[2] +
           (uint64_t)i3 * t->nb[3];
}

int cpu_node_check(const lamina_node *n, char *why, size_t why_size)
{
    if (n->op == LAMINA_OP_NONE || n->op >= LAMINA_OP_COUNT) WHY("unknown op %u", n->op);
    const char *on = lamina_op_name(n->op);
    if (n->n_src > LAMINA_MAX_SRC && !(n->op == LAMINA_OP_ATTENTION && n->n_src == LAMINA_MAX_SRC + 1))
        WHY("%s: n_src %u", on, n->n_src);
    if (!tensor_ok(&n->dst)) WHY("%s: dst has a bad type or shape", on);
    for (uint32_t i = 0; i < n->n_src; i++)
        if (!tensor_ok(lamina_node_src(n, i))) WHY("%s: src%u has a bad type or shape", on, i);
    const lamina_tensor *d = &n->dst, *s0 = &n->src[0], *s1 = &n->src[1], *s2 = &n->src[2];
    const int f32dst = d->type == LAMINA_TYPE_F32;

    switch (n->op) {
    case LAMINA_OP_GET_ROWS:
        if (n->n_src != 2) WHY("get_rows: needs 2 sources");
        if (!cpu_dequant_supported(s0->type)) WHY("get_rows: table type %u", s0->type);
        if (s0->ne[2] != 1 || s0->ne[3] != 1) WHY("get_rows: table must be 2-D");
        if (s1->type != LAMINA_TYPE_I32 || s1->ne[1] != 1 || s1->ne[2] != 1 || s1->ne[3] != 1)
            WHY("get_rows: ids must be I32 [N]");
        if (!f32dst || d->ne[0] != s0->ne[0] || !is_vec(s1, d->ne[1]) || d->ne[2] != 1 || d->ne[3] != 1)
            WHY("get_rows: dst must be F32 [K, N]");
        return 1;
    case LAMINA_OP_MUL_MAT:
        if (n->n_src != 2) WHY("mul_mat: needs 2 sources");
        if (!cpu_kernels_scalar.dot[s0->type]) WHY("mul_mat: weight type %u", s0->type);
        if (s0->ne[2] != 1 || s0->ne[3] != 1) WHY("mul_mat: W must be 2-D");
        if (s1->type != LAMINA_TYPE_F32 || s1->ne[0] != s0->ne[0] || s1->ne[2] != 1 || s1->ne[3] != 1)
            WHY("mul_mat: X must be F32 [K, M]");
        if (cpu_act_row_size(cpu_act_format_of(s0->type), s0->ne[0]) == 0) WHY("mul_mat: K");
        if (!f32dst || d->ne[0] != s0->ne[1] || d->ne[1] != s1->ne[1] || d->ne[2] != s1->ne[2] ||
            d->ne[3] != s1->ne[3])
            WHY("mul_mat: dst must be F32 [N, M]");
        return 1;
    case LAMINA_OP_RMS_NORM:
        if (n->n_src != 1 && n->n_src != 2) WHY("rms_norm: 1 or 2 sources");
        if (s0->type != LAMINA_TYPE_F32 || !f32dst || !same_shape(s0, d)) WHY("rms_norm: types/shape");
        if (n->n_src == 2 && (s1->type != LAMINA_TYPE_F32 || !is_vec(s1, s0->ne[0])))
            WHY("rms_norm: w must be F32 [K]");
        if (!(n->fp[0] >= 0.0f)) WHY("rms_norm: eps");
        return 1;
    case LAMINA_OP_NORM:
        if (n->n_src < 1 || n->n_src > 3) WHY("norm: 1 to 3 sources");
        if (s0->type != LAMINA_TYPE_F32 || !f32dst || !same_shape(s0, d)) WHY("norm: types/shape");
        if (n->n_src >= 2 && (s1->type != LAMINA_TYPE_F32 || !is_vec(s1, s0->ne[0])))
            WHY("norm: w must be F32 [K]");
        if (n->n_src == 3 && (s2->type != LAMINA_TYPE_F32 || !is_vec(s2, s0->ne[0])))
            WHY("norm: b must be F32 [K]");
        if (!(n->fp[0] >= 0.0f)) WHY("norm: eps");
        return 1;
    case LAMINA_OP_UNARY:
        if (n->n_src != 1) WHY("unary: needs 1 source");
        if (s0->type != LAMINA_TYPE_F32 || !f32dst || !same_shape(s0, d)) WHY("unary: types/shape");
        if (n->ip[0] != LAMINA_ACT_SILU && n->ip[0] != LAMINA_ACT_GELU_TANH) WHY("unary: act %d", n->ip[0]);
        return 1;
    case LAMINA_OP_ADD:
    case LAMINA_OP_MUL:
        if (n->n_src != 2) WHY("%s: needs 2 sources", on);
        if (s0->type != LAMINA_TYPE_F32 || s1->type != LAMINA_TYPE_F32 || !f32dst) WHY("%s: types", on);
        if (!same_shape(s0, d)) WHY("%s: dst shape", on);
        if (!same_shape(s0, s1) && !is_vec(s1, s0->ne[0])) WHY("%s: B shape", on);
        return 1;
    case LAMINA_OP_SCALE:
        if (n->n_src != 1) WHY("scale: needs 1 source");
        if (s0->type != LAMINA_TYPE_F32 || !f32dst || !same_shape(s0, d)) WHY("scale: types/shape");
        return 1;
    case LAMINA_OP_ROPE: {
        if (n->n_src != 2 && n->n_src != 3) WHY("rope: 2 or 3 sources");
        if (s0->type != LAMINA_TYPE_F32 || !f32dst || !same_shape(s0, d) || s0->ne[3] != 1)
            WHY("rope: X must be F32 [D, H, N]");
        if (s1->type != LAMINA_TYPE_I32 || !is_vec(s1, s0->ne[2])) WHY("rope: pos must be I32 [N]");
        const int32_t mode = n->ip[0], n_rot = n->ip[1];
        if (mode != LAMINA_ROPE_NORM && mode != LAMINA_ROPE_NEOX) WHY("rope: mode %d", mode);
        if (n_rot <= 0 || (n_rot & 1) || n_rot > s0->ne[0]) WHY("rope: n_rot %d", n_rot);
        if (n->n_src == 3 && (s2->type != LAMINA_TYPE_F32 || !is_vec(s2, n_rot / 2)))
            WHY("rope: freq factors must be F32 [n_rot/2]");
        if (!isfinite(n->fp[2]) || !isfinite(n->fp[3]) || n->fp[3] < 0.0f) WHY("rope: YaRN factors");
        if (n->fp[2] != 0.0f && (n->ip[2] <= 0 || !(n->fp[1] > 0.0f) || !(n->fp[4] > 0.0f) ||
                                 !(n->fp[5] > 0.0f) || !isfinite(n->fp[4]) || !isfinite(n->fp[5])))
            WHY("rope: YaRN n_ctx_orig/betas");
        return 1;
    }
    case LAMINA_OP_SET_ROWS:
        if (n->n_src != 2) WHY("set_rows: needs 2 sources");
        if (s0->type != LAMINA_TYPE_F32 || s0->ne[2] != 1 || s0->ne[3] != 1)
            WHY("set_rows: X must be F32 [K, N]");
        if (s1->type != LAMINA_TYPE_I32 || !is_vec(s1, s0->ne[1])) WHY("set_rows: rows must be I32 [N]");
        if ((d->type != LAMINA_TYPE_F32 && d->type != LAMINA_TYPE_F16) || d->ne[0] != s0->ne[0] ||
            d->ne[2] != 1 || d->ne[3] != 1)
            WHY("set_rows: dst must be F32/F16 [K, R]");
        return 1;
    case LAMINA_OP_ATTENTION: {
        if (n->n_src != 4 && n->n_src != 5) WHY("attention: needs 4 or 5 sources");
        const lamina_tensor *s3 = &n->src[3];
        if (s0->type != LAMINA_TYPE_F32 || s0->ne[3] != 1) WHY("attention: Q must be F32 [D, Hq, N]");
        const int64_t D = s0->ne[0], Hq = s0->ne[1], N = s0->ne[2];
        if ((s1->type != LAMINA_TYPE_F32 && s1->type != LAMINA_TYPE_F16) ||
            (s2->type != LAMINA_TYPE_F32 && s2->type != LAMINA_TYPE_F16))
            WHY("attention: K/V cache must be F16 or F32");
        if (s1->ne[2] != 1 || s1->ne[3] != 1 || s2->ne[2] != 1 || s2->ne[3] != 1 || s1->ne[1] != s2->ne[1])
            WHY("attention: K/V must be 2-D with the same rows");
        if (s1->ne[0] % D) WHY("attention: K width not a multiple of D");
        const int64_t Hkv = s1->ne[0] / D;
        if (Hq % Hkv) WHY("attention: Hq %% Hkv != 0");
        if (s2->ne[0] % Hkv) WHY("attention: V width");
        const int64_t Dv = s2->ne[0] / Hkv;
        if (s3->type != LAMINA_TYPE_I32 || s3->ne[0] != 2 || s3->ne[1] != N || s3->ne[2] != 1 || s3->ne[3] != 1)
            WHY("attention: src3 must be I32 [2, N]");
        if (!f32dst || d->ne[0] != Dv * Hq || d->ne[1] != N || d->ne[2] != 1 || d->ne[3] != 1)
            WHY("attention: dst must be F32 [Dv*Hq, N]");
        if (n->ip[0] < 0) WHY("attention: window %d", n->ip[0]);
        if (!isfinite(n->fp[0]) || !isfinite(n->fp[1]) || n->fp[1] < 0.0f) WHY("attention: scale/softcap");
        if (n->n_src == 5 && (n->src4.type != LAMINA_TYPE_F32 || !is_vec(&n->src4, Hq)))
            WHY("attention: sinks must be F32 [Hq]");
        return 1;
    }
    case LAMINA_OP_GLU:
        if (n->n_src != 2) WHY("glu: needs 2 sources");
        if (s0->type != LAMINA_TYPE_F32 || s1->type != LAMINA_TYPE_F32 || !f32dst ||
            !same_shape(s0, s1) || !same_shape(s0, d))
            WHY("glu: types/shape");
        if (n->ip[0] != LAMINA_ACT_SILU && n->ip[0] != LAMINA_ACT_GELU_TANH && n->ip[0] != LAMINA_ACT_SWIGLU_OAI)
            WHY("glu: act %d", n->ip[0]);
        if (n->ip[0] == LAMINA_ACT_SWIGLU_OAI && (!isfinite(n->fp[0]) || !(n->fp[1] > 0.0f) || !isfinite(n->fp[1])))
            WHY("glu: swiglu_oai alpha/limit");
        return 1;
    case LAMINA_OP_COPY:
        if (n->n_src != 1) WHY("copy: needs 1 source");
        if (s0->type != LAMINA_TYPE_F32 && s0->type != LAMINA_TYPE_F16 && s0->type != LAMINA_TYPE_BF16)
            WHY("copy: src type %u", s0->type);
        if ((d->type != LAMINA_TYPE_F32 && d->type != LAMINA_TYPE_F16) || !same_shape(s0, d))
            WHY("copy: dst type/shape");
        return 1;
    case LAMINA_OP_TOPK:
        if (n->n_src != 1) WHY("topk: needs 1 source");
        if (s0->type != LAMINA_TYPE_F32 || s0->ne[2] != 1 || s0->ne[3] != 1) WHY("topk: X must be F32 [N, T]");
        if (n->ip[0] < 1 || n->ip[0] > s0->ne[0]) WHY("topk: k %d", n->ip[0]);
        if (d->type != LAMINA_TYPE_I32 || d->ne[0] != n->ip[0] || d->ne[1] != s0->ne[1] || d->ne[2] != 1 ||
            d->ne[3] != 1)
            WHY("topk: dst must be I32 [k, T]");
        return 1;
    case LAMINA_OP_MOE_WEIGHTS:
        if (n->n_src != 2) WHY("moe_weights: needs 2 sources");
        if (s0->type != LAMINA_TYPE_F32 || s0->ne[2] != 1 || s0->ne[3] != 1) WHY("moe_weights: logits");
        if (s1->type != LAMINA_TYPE_I32 || s1->ne[1] != s0->ne[1] || s1->ne[0] > s0->ne[0] || s1->ne[2] != 1 ||
            s1->ne[3] != 1)
            WHY("moe_weights: ids must be I32 [k, T]");
        if (!f32dst || !same_shape(d, s1)) WHY("moe_weights: dst must be F32 [k, T]");
        if (n->ip[0] != 0 && n->ip[0] != 1) WHY("moe_weights: ip[0] %d", n->ip[0]);
        return 1;
    case LAMINA_OP_MUL_MAT_ID: {
        if (n->n_src != 3) WHY("mul_mat_id: needs 3 sources");
        if (!cpu_kernels_scalar.dot[s0->type]) WHY("mul_mat_id: weight type %u", s0->type);
        if (s0->ne[3] != 1) WHY("mul_mat_id: W must be 3-D");
        const int64_t k = s2->ne[0], T = s2->ne[1];
        if (s2->type != LAMINA_TYPE_I32 || s2->ne[2] != 1 || s2->ne[3] != 1) WHY("mul_mat_id: ids must be I32 [k, T]");
        if (s1->type != LAMINA_TYPE_F32 || s1->ne[0] != s0->ne[0] || (s1->ne[1] != 1 && s1->ne[1] != k) ||
            s1->ne[2] != T || s1->ne[3] != 1)
            WHY("mul_mat_id: A must be F32 [K, 1 or k, T]");
        if (cpu_act_row_size(cpu_act_format_of(s0->type), s0->ne[0]) == 0) WHY("mul_mat_id: K");
        if (!f32dst || d->ne[0] != s0->ne[1] || d->ne[1] != k || d->ne[2] != T || d->ne[3] != 1)
            WHY("mul_mat_id: dst must be F32 [N, k, T]");
        return 1;
    }
    case LAMINA_OP_MOE_SUM:
        if (n->n_src != 2) WHY("moe_sum: needs 2 sources");
        if (s0->type != LAMINA_TYPE_F32 || s0->ne[3] != 1) WHY("moe_sum: Y must be F32 [E, k, T]");
        if (s1->type != LAMINA_TYPE_F32 || s1->ne[0] != s0->ne[1] || s1->ne[1] != s0->ne[2] || s1->ne[2] != 1 ||
            s1->ne[3] != 1)
            WHY("moe_sum: weights must be F32 [k, T]");
        if (!f32dst || d->ne[0] != s0->ne[0] || d->ne[1] != s0->ne[2] || d->ne[2] != 1 || d->ne[3] != 1)
            WHY("moe_sum: dst must be F32 [E, T]");
        return 1;
    default:
        WHY("unknown op %u", n->op);
    }
}

/* ------------------------------------------------------------------ */
/* Splitting work                                                      */

/* Threads worth using for `work` elements of simple per-element work. */
static int nth_for(const lamina_backend *be, int64_t work)
{
    if (work < 32768) return 1;
    return be->n_threads;
}

/* Rows [r0, r1) of `total` for thread ith of nth. */
static inline void split(int64_t total, int ith, int nth, int64_t *r0, int64_t *r1)
{
    const int64_t per = (total + nth - 1) / nth;
    *r0 = per * ith < total ? per * ith : total;
    *r1 = *r0 + per < total ? *r0 + per : total;
}

int cpu_scratch_reserve(lamina_backend *be, size_t size)
{
    if (size <= be->scratch_size) return 0;
    size = (size + 4095) & ~(size_t)4095;
    void *p = NULL;
    if (posix_memalign(&p, CPU_ALIGN, size) != 0) return LAMINA_ENOMEM;
    free(be->scratch);
    be->scratch = p;
    be->scratch_size = size;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Element-wise ops                                                    */

typedef struct {
    lamina_backend *be;
    const lamina_node *n;
} op_ctx;

/* RMS_NORM: per row  dst[k] = X[k] / sqrt(mean(X^2) + eps) * (w ? w[k] : 1) */
static void task_rms_norm(void *arg, int ith, int nth)
{
    const op_ctx *c = arg;
    const lamina_node *n = c->n;
    const int64_t K = n->src[0].ne[0];
    const float *w = n->n_src == 2 ? (const float *)cpu_tensor_data(&n->src[1]) : NULL;
    int64_t r0, r1;
    split(nrows(&n->src[0]), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = (const float *)row_ptr(&n->src[0], r);
        float *y = (float *)row_ptr(&n->dst, r);
        const double ss = c->be->k.sumsq(x, K);
        const float inv = (float)(1.0 / sqrt(ss / (double)K + (double)n->fp[0]));
        if (w)
            for (int64_t k = 0; k < K; k++) y[k] = x[k] * inv * w[k];
        else
            for (int64_t k = 0; k < K; k++) y[k] = x[k] * inv;
    }
}

/* NORM: per row  dst[k] = (X[k] - mean) / sqrt(var + eps) * (w ? w[k] : 1) + (b ? b[k] : 0),
 * mean and variance summed in double */
static void task_norm(void *arg, int ith, int nth)
{
    const op_ctx *c = arg;
    const lamina_node *n = c->n;
    const int64_t K = n->src[0].ne[0];
    const float *w = n->n_src >= 2 ? (const float *)cpu_tensor_data(&n->src[1]) : NULL;
    const float *b = n->n_src == 3 ? (const float *)cpu_tensor_data(&n->src[2]) : NULL;
    int64_t r0, r1;
    split(nrows(&n->src[0]), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = (const float *)row_ptr(&n->src[0], r);
        float *y = (float *)row_ptr(&n->dst, r);
        double mu = 0, var = 0;
        for (int64_t k = 0; k < K; k++) mu += x[k];
        mu /= (double)K;
        for (int64_t k = 0; k < K; k++) var += ((double)x[k] - mu) * ((double)x[k] - mu);
        const float inv = (float)(1.0 / sqrt(var / (double)K + (double)n->fp[0]));
        const float m = (float)mu;
        for (int64_t k = 0; k < K; k++) {
            float z = (x[k] - m) * inv;
            if (w) z *= w[k];
            if (b) z += b[k];
            y[k] = z;
        }
    }
}

/* UNARY: dst = act(X) */
static void task_act(void *arg, int ith, int nth)
{
    const op_ctx *c = arg;
    const lamina_node *n = c->n;
    const int64_t K = n->src[0].ne[0];
    const int act = n->ip[0];
    int64_t r0, r1;
    split(nrows(&n->src[0]), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = (const float *)row_ptr(&n->src[0], r);
        float *y = (float *)row_ptr(&n->dst, r);
        if (act == LAMINA_ACT_SILU)
            for (int64_t k = 0; k < K; k++) y[k] = x[k] / (1.0f + expf(-x[k]));
        else
            for (int64_t k = 0; k < K; k++) {
                const float v = x[k];
                y[k] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
            }
    }
}

/* ADD / MUL / SCALE / GLU rows */
static void task_eltwise(void *arg, int ith, int nth)
{
    const op_ctx *c = arg;
    const lamina_node *n = c->n;
    const int64_t K = n->src[0].ne[0];
    const int bcast = n->n_src >= 2 && !same_shape(&n->src[0], &n->src[1]);
    int64_t r0, r1;
    split(nrows(&n->src[0]), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float *a = (const float *)row_ptr(&n->src[0], r);
        float *y = (float *)row_ptr(&n->dst, r);
        const float *b = NULL;
        if (n->n_src >= 2) b = bcast ? (const float *)cpu_tensor_data(&n->src[1])
                                     : (const float *)row_ptr(&n->src[1], r);
        switch (n->op) {
        case LAMINA_OP_ADD: for (int64_t k = 0; k < K; k++) y[k] = a[k] + b[k]; break;
        case LAMINA_OP_MUL: for (int64_t k = 0; k < K; k++) y[k] = a[k] * b[k]; break;
        case LAMINA_OP_SCALE: {
            const float s = n->fp[0];
            for (int64_t k = 0; k < K; k++) y[k] = s * a[k];
            break;
        }
        case LAMINA_OP_GLU:
            if (n->ip[0] == LAMINA_ACT_SWIGLU_OAI) {
                /* gpt-oss: x = min(gate, limit), u = clamp(up, +-limit),
                 * dst = x sigmoid(alpha x) (u + 1) */
                const float alpha = n->fp[0], lim = n->fp[1];
                for (int64_t k = 0; k < K; k++) {
                    const float x = fminf(a[k], lim), u = fminf(fmaxf(b[k], -lim), lim);
                    y[k] = x / (1.0f + expf(-alpha * x)) * (u + 1.0f);
                }
                break;
            }
            /* dst = act(gate) * up */
            c->be->k.glu(y, a, b, K, n->ip[0]);
            break;
        default: break;
        }
    }
}

/* COPY: dst = convert(src0) row by row */
static void task_copy(void *arg, int ith, int nth)
{
    const op_ctx *c = arg;
    const lamina_node *n = c->n;
    const int64_t K = n->src[0].ne[0];
    const uint32_t st = n->src[0].type, dt = n->dst.type;
    int64_t r0, r1;
    split(nrows(&n->src[0]), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *s = row_ptr(&n->src[0], r);
        uint8_t *d = row_ptr(&n->dst, r);
        if (st == dt) { memmove(d, s, (size_t)K * cpu_type_size(st)); continue; }
        for (int64_t k = 0; k < K; k++) {
            float v;
            if (st == LAMINA_TYPE_F32) memcpy(&v, s + 4 * k, 4);
            else {
                uint16_t h;
                memcpy(&h, s + 2 * k, 2);
                v = st == LAMINA_TYPE_F16 ? lamina_fp16_to_fp32(h) : lamina_bf16_to_fp32(h);
            }
            if (dt == LAMINA_TYPE_F32) memcpy(d + 4 * k, &v, 4);
            else { const uint16_t h = lamina_fp32_to_fp16(v); memcpy(d + 2 * k, &h, 2); }
        }
    }
}

/* GET_ROWS: dst[:, i] = dequant(table[:, ids[i]]) */
static void task_get_rows(void *arg, int ith, int nth)
{
    const op_ctx *c = arg;
    const lamina_node *n = c->n;
    const int32_t *ids = (const int32_t *)cpu_tensor_data(&n->src[1]);
    int64_t r0, r1;
    split(n->dst.ne[1], ith, nth, &r0, &r1);
    for (int64_t i = r0; i < r1; i++) {
        const uint8_t *src = cpu_tensor_data(&n->src[0]) + (uint64_t)ids[i] * n->src[0].nb[1];
        cpu_dequant_row(n->src[0].type, (float *)row_ptr(&n->dst, i), src, n->src[0].ne[0]);
    }
}

/* SET_ROWS: dst[:, rows[i]] = convert(X[:, i]) */
static void task_set_rows(void *arg, int ith, int nth)
{
    const op_ctx *c = arg;
    const lamina_node *n = c->n;
    const int32_t *rows = (const int32_t *)cpu_tensor_data(&n->src[1]);
    const int64_t K = n->src[0].ne[0];
    int64_t r0, r1;
    split(n->src[0].ne[1], ith, nth, &r0, &r1);
    for (int64_t i = r0; i < r1; i++) {
        const float *x = (const float *)row_ptr(&n->src[0], i);
        uint8_t *d = cpu_tensor_data(&n->dst) + (uint64_t)rows[i] * n->dst.nb[1];
        if (n->dst.type == LAMINA_TYPE_F32) {
            memcpy(d, x, (size_t)K * 4);
        } else {
            c->be->k.to_f16((uint16_t *)d, x, K);
        }
    }
}

/* ------------------------------------------------------------------ */
/* ROPE                                                                 */

typedef struct {
    const lamina_node *n;
    double *fr;         /* per thread: n_rot/2 frequencies (double: pos times
                           a float frequency would be off by 1e-7 * pos), */
    float *cs;          /* then n_rot floats (cos, sin pairs) */
} rope_ctx;

/* For token t and pair i < n_rot/2:
 *   theta = pos * freq_scale * base^(-2i/n_rot) / ff[i]
 *   (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos)
 * NORM pairs (2i, 2i+1), NEOX pairs (i, i + n_rot/2); dims >= n_rot copied.
 * YaRN (plugin.h): pair i's frequency mixes the scaled and the unscaled
 * one by its ramp r_i, still linear in pos; cos and sin times m. */
static void task_rope(void *arg, int ith, int nth)
{
    const rope_ctx *c = arg;
    const lamina_node *n = c->n;
    const lamina_tensor *x = &n->src[0], *d = &n->dst;
    const int32_t *pos = (const int32_t *)cpu_tensor_data(&n->src[1]);
    const float *ff = n->n_src == 3 ? (const float *)cpu_tensor_data(&n->src[2]) : NULL;
    const int64_t D = x->ne[0], H = x->ne[1];
    const int n_rot = n->ip[1], half = n_rot / 2, neox = n->ip[0] == LAMINA_ROPE_NEOX;
    const double base = n->fp[0], fs = n->fp[1] != 0.0f ? n->fp[1] : 1.0, ext = n->fp[2];
    double ms = n->fp[3] != 0.0f ? n->fp[3] : 1.0, lo = 0.0, hi = 0.0;
    if (ext != 0.0) {
        const double two_pi = 6.283185307179586476925;
        lo = fmax(0.0, floor(n_rot * log(n->ip[2] / (two_pi * n->fp[4])) / (2.0 * log(base))));
        hi = fmin(n_rot - 1, ceil(n_rot * log(n->ip[2] / (two_pi * n->fp[5])) / (2.0 * log(base))));
        ms *= 1.0 + 0.1 * log(1.0 / fs);
    }
    double *fr = c->fr + (size_t)ith * (size_t)(half + (n_rot + 1) / 2);
    float *cs = (float *)(fr + half);
    int64_t t0, t1;
    split(x->ne[2], ith, nth, &t0, &t1);
    /* fr[i] = freq_scale * base^(-2i/n_rot) / ff[i], the same for every token */
    for (int i = 0; i < half && t0 < t1; i++) {
        const double te = pow(base, -2.0 * i / n_rot) / (ff ? ff[i] : 1.0);
        double r = 0.0;
        if (ext != 0.0)
            r = (1.0 - fmin(1.0, fmax(0.0, (i - lo) / fmax(0.001, hi - lo)))) * ext;
        fr[i] = fs * te * (1.0 - r) + te * r;
    }
    for (int64_t t = t0; t < t1; t++) {
        /* angles of this token, shared by all heads */
        for (int i = 0; i < half; i++) {
            const double th = (double)pos[t] * fr[i];
            cs[2 * i] = (float)(ms * cos(th));
            cs[2 * i + 1] = (float)(ms * sin(th));
        }
        for (int64_t h = 0; h < H; h++) {
            const float *xr = (const float *)(cpu_tensor_data(x) + (uint64_t)h * x->nb[1] + (uint64_t)t * x->nb[2]);
            float *yr = (float *)(cpu_tensor_data(d) + (uint64_t)h * d->nb[1] + (uint64_t)t * d->nb[2]);
            for (int i = 0; i < half; i++) {
                const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
                const float x0 = xr[i0], x1 = xr[i1], co = cs[2 * i], si = cs[2 * i + 1];
                yr[i0] = x0 * co - x1 * si;
                yr[i1] = x0 * si + x1 * co;
            }
            if (yr != xr)
                for (int64_t k = n_rot; k < D; k++) yr[k] = xr[k];
        }
    }
}

/* ------------------------------------------------------------------ */
/* ATTENTION                                                            */

/* Keys per block of the attention loop. */
#define ATT_BLOCK 64

typedef struct {
    lamina_backend *be;
    const lamina_node *n;
    float *scratch;     /* per thread: att_scratch_floats() */
    int64_t D, Dv, Hq, Hkv, N;
    int hc;             /* query heads per work item (of one KV head) */
    int64_t n_items;
} attn_ctx;

static size_t att_scratch_floats(const attn_ctx *c)
{
    /* acc [hc][Dv], scores [ATT_BLOCK][hc], m [hc], l [hc] */
    return (size_t)c->hc * ((size_t)c->Dv + ATT_BLOCK + 2);
}

/* A work item is query token i and hc heads h0.. that share KV head g
 * (g = h / (Hq/Hkv)); every K and V row is read once for all hc heads.
 * Over cache rows base_i + j, j in [j0, pos_i], blocks of ATT_BLOCK keys,
 * online softmax per head:
 *   s_hj = scale * q_h.k_j, softcapped;
 *   m_h = running max; on a new max, l_h and acc_h are scaled by e^(m_old - m_new);
 *   p_hj = e^(s_hj - m_h);  l_h += p_hj;  acc_h += p_hj v_j;
 *   dst_h = acc_h / l_h. */
static void task_attention(void *arg, int ith, int nth)
{
    const attn_ctx *c = arg;
    const lamina_node *n = c->n;
    const cpu_kernels *kk = &c->be->k;
    const lamina_tensor *Q = &n->src[0], *Kc = &n->src[1], *Vc = &n->src[2];
    const int64_t D = c->D, Dv = c->Dv, grp = c->Hq / c->Hkv;
    const int hc = c->hc;
    const int64_t per_g = (grp + hc - 1) / hc;      /* items per (token, KV head) */
    const int32_t window = n->ip[0];
    const float scale = n->fp[0], cap = n->fp[1];
    const int kf16 = Kc->type == LAMINA_TYPE_F16, vf16 = Vc->type == LAMINA_TYPE_F16;
    const size_t kes = kf16 ? 2 : 4, ves = vf16 ? 2 : 4;
    const cpu_dot_fn kdot = kk->dot[Kc->type];
    const int kcols = kk->cols[Kc->type] ? kk->cols[Kc->type] : CPU_DOT_COLS;
    const float *sinks = n->n_src == 5 ? (const float *)cpu_tensor_data(&n->src4) : NULL;
    float *acc = c->scratch + (size_t)ith * att_scratch_floats(c);
    float *sc = acc + (size_t)hc * Dv, *m = sc + (size_t)ATT_BLOCK * hc, *l = m + hc;

    for (int64_t item = ith; item < c->n_items; item += nth) {
        const int64_t i = item / (c->Hkv * per_g), rem = item % (c->Hkv * per_g);
        const int64_t g = rem / per_g, h0 = g * grp + (rem % per_g) * hc;
        const int nh = (int)(g * grp + grp - h0 < hc ? g * grp + grp - h0 : hc);
        const uint8_t *q0 = cpu_tensor_data(Q) + (uint64_t)h0 * Q->nb[1] + (uint64_t)i * Q->nb[2];
        /* (base_i, pos_i) of this token */
        const int32_t *bpi = (const int32_t *)(cpu_tensor_data(&n->src[3]) + (uint64_t)i * n->src[3].nb[1]);
        const int64_t base = bpi[0], pos = bpi[1];
        const int64_t j0 = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
        const uint8_t *kb = cpu_tensor_data(Kc) + (uint64_t)g * (uint64_t)D * kes;
        const uint8_t *vb = cpu_tensor_data(Vc) + (uint64_t)g * (uint64_t)Dv * ves;
        memset(acc, 0, (size_t)nh * (size_t)Dv * sizeof(float));
        for (int h = 0; h < nh; h++) { m[h] = -INFINITY; l[h] = 0.0f; }
        for (int64_t jb = j0; jb <= pos; jb += ATT_BLOCK) {
            const int nb = (int)(pos - jb + 1 < ATT_BLOCK ? pos - jb + 1 : ATT_BLOCK);
            /* 1. scores s[jj][h] of the block, each K row once for all heads */
            for (int jj = 0; jj < nb; jj++) {
                const void *kr = kb + (uint64_t)(base + jb + jj) * Kc->nb[1];
                for (int h = 0; h < nh; h += kcols) {
                    const int k = nh - h < kcols ? nh - h : kcols;
                    kdot(sc + (size_t)jj * hc + h, D, kr, q0 + (uint64_t)h * Q->nb[1], Q->nb[1], k);
                }
                for (int h = 0; h < nh; h++) {
                    float s = sc[(size_t)jj * hc + h] * scale;
                    if (cap > 0.0f) s = cap * tanhf(s / cap);
                    sc[(size_t)jj * hc + h] = s;
                }
            }
            /* 2. new maxima rescale what is there; scores become weights */
            for (int h = 0; h < nh; h++) {
                float bm = -INFINITY;
                for (int jj = 0; jj < nb; jj++) bm = fmaxf(bm, sc[(size_t)jj * hc + h]);
                if (bm > m[h]) {
                    const float corr = expf(m[h] - bm);     /* 0 on the first block */
                    l[h] *= corr;
                    float *a = acc + (size_t)h * Dv;
                    for (int64_t k = 0; k < Dv; k++) a[k] *= corr;
                    m[h] = bm;
                }
                for (int jj = 0; jj < nb; jj++) {
                    const float p = expf(sc[(size_t)jj * hc + h] - m[h]);
                    sc[(size_t)jj * hc + h] = p;
                    l[h] += p;
                }
            }
            /* 3. acc_h += p_hj v_j, each V row once for all heads */
            for (int jj = 0; jj < nb; jj++)
                kk->vmad(acc, (size_t)Dv, sc + (size_t)jj * hc,
                         vb + (uint64_t)(base + jb + jj) * Vc->nb[1], vf16, nh, Dv);
        }
        float *y = (float *)(cpu_tensor_data(&n->dst) + (uint64_t)i * n->dst.nb[1]) + h0 * Dv;
        for (int h = 0; h < nh; h++) {
            float il = 1.0f / l[h];
            if (sinks) {
                /* the sink's e^(sink - max) joins the denominator only */
                const float sk = sinks[h0 + h], mx = fmaxf(m[h], sk), a = expf(m[h] - mx);
                il = a / (l[h] * a + expf(sk - mx));
            }
            for (int64_t k = 0; k < Dv; k++) y[(size_t)h * Dv + k] = acc[(size_t)h * Dv + k] * il;
        }
    }
}

/* ------------------------------------------------------------------ */
/* MUL_MAT                                                              */

typedef struct {
    lamina_backend *be;
    const lamina_node *n;
    cpu_dot_fn dot;
    cpu_gemv_fn gemv;       /* one column (M = 1) over a run of rows, or NULL */
    /* rows converted per block for many columns (cpu_kernels.conv), or NULL */
    void (*conv)(void *dst, const void *src, int64_t n_blocks);
    cpu_dot_fn cdot;        /* the dot kernel of the converted rows */
    /* or rows packed 16 at a time for every column count (cpu_kernels.tile) */
    cpu_pack_fn pack;
    cpu_tile_fn tile;
    size_t crow;            /* a converted row's bytes */
    uint8_t *cbuf;          /* per thread: one block of converted rows */
    size_t cbuf_bytes;
    int cols;               /* columns per dot call */
    int fmt;
    int64_t K, N, M;
    uint8_t *act;           /* M columns of arow bytes */
    size_t arow;
    float **dcol;           /* dst column pointers */
    const float **xcol;     /* X column pointers */
    int64_t chunk;          /* rows per chunk */
    int64_t n_chunks;
    atomic_llong next;      /* next chunk to take */
} mm_ctx;

/* Phase 1: round the X columns into the activation format. */
static void task_mm_quant(void *arg, int ith, int nth)
{
    mm_ctx *c = arg;
    int64_t m0, m1;
    split(c->M, ith, nth, &m0, &m1);
    for (int64_t m = m0; m < m1; m++)
        c->be->k.quant[c->fmt](c->act + (size_t)m * c->arow, c->xcol[m], c->K);
}

/* Rows of W a block holds while every column group passes over it: about
 * 32 KiB of weights, read from memory once and then from cache, not once
 * per group from memory (with 8 columns and 4 per group, a 262144-row
 * output head was streamed twice a step). */
#define MM_BLOCK_BYTES (32u << 10)

/* Phase 2: dst[n, m] = W[:, n] . X[:, m], chunks of rows taken in turn;
 * inside a chunk, blocks of rows, and over each block the columns in
 * groups of c->cols (each call loads a weight row once for its group). */
static void task_mm(void *arg, int ith, int nth)
{
    mm_ctx *c = arg;
    const lamina_tensor *W = &c->n->src[0];
    const uint8_t *wbase = cpu_tensor_data(W);
    const uint64_t wnb = W->nb[1];
    const int64_t rb = c->M <= c->cols ? c->chunk : (int64_t)(MM_BLOCK_BYTES / wnb) + 1;
    uint8_t *cbuf = c->conv || c->tile ? c->cbuf + (size_t)ith * c->cbuf_bytes : NULL;
    const int64_t wblocks = c->K / cpu_type_block(W->type);
    (void)nth;
    for (;;) {
        const int64_t ch = atomic_fetch_add(&c->next, 1);
        if (ch >= c->n_chunks) break;
        const int64_t n0 = ch * c->chunk;
        const int64_t n1 = n0 + c->chunk < c->N ? n0 + c->chunk : c->N;
        if (c->gemv) {
            c->gemv(c->dcol[0] + n0, c->K, wbase + (uint64_t)n0 * wnb, wnb, c->act, n1 - n0);
            continue;
        }
        if (c->tile) {
            void *tb = cbuf;
            for (int64_t t0 = n0; t0 < n1; t0 += CPU_TILE_ROWS) {
                const int nr = n1 - t0 < CPU_TILE_ROWS ? (int)(n1 - t0) : CPU_TILE_ROWS;
                c->pack(tb, wbase + (uint64_t)t0 * wnb, wnb, nr, c->K);
                for (int64_t m = 0; m < c->M; m += CPU_DOT_MAX_COLS) {
                    const int nc = c->M - m < CPU_DOT_MAX_COLS ? (int)(c->M - m) : CPU_DOT_MAX_COLS;
                    float out[CPU_DOT_MAX_COLS * CPU_TILE_ROWS];
                    c->tile(out, c->K, tb, c->act + (size_t)m * c->arow, c->arow, nc);
                    for (int j = 0; j < nc; j++)
                        memcpy(c->dcol[m + j] + t0, out + j * CPU_TILE_ROWS, (size_t)nr * sizeof(float));
                }
            }
            continue;
        }
        for (int64_t b0 = n0; b0 < n1; b0 += rb) {
            const int64_t b1 = b0 + rb < n1 ? b0 + rb : n1;
            const uint8_t *rows = wbase + (uint64_t)b0 * wnb;
            uint64_t rnb = wnb;
            cpu_dot_fn dot = c->dot;
            if (cbuf) {
                for (int64_t r = b0; r < b1; r++)
                    c->conv(cbuf + (size_t)(r - b0) * c->crow, rows + (uint64_t)(r - b0) * wnb, wblocks);
                rows = cbuf;
                rnb = c->crow;
                dot = c->cdot;
            }
            for (int64_t m = 0; m < c->M; m += c->cols) {
                const int nc = c->M - m < c->cols ? (int)(c->M - m) : c->cols;
                const uint8_t *xa = c->act + (size_t)m * c->arow;
                for (int64_t r = b0; r < b1; r++) {
                    float out[CPU_DOT_MAX_COLS];
                    dot(out, c->K, rows + (uint64_t)(r - b0) * rnb, xa, c->arow, nc);
                    for (int j = 0; j < nc; j++) c->dcol[m + j][r] = out[j];
                }
            }
        }
    }
}

static int run_mul_mat(lamina_backend *be, const lamina_node *n, char *err, size_t err_size)
{
    const lamina_tensor *W = &n->src[0], *X = &n->src[1], *d = &n->dst;
    mm_ctx c;
    memset(&c, 0, sizeof c);
    c.be = be;
    c.n = n;
    c.dot = be->k.dot[W->type];
    c.gemv = nrows(X) == 1 ? be->k.gemv[W->type] : NULL;
    c.cols = be->k.cols[W->type] ? be->k.cols[W->type] : CPU_DOT_COLS;
    c.fmt = be->k.act[W->type];
    c.K = W->ne[0];
    c.N = W->ne[1];
    c.M = nrows(X);
    c.arow = (cpu_act_row_size(c.fmt, c.K) + 63) & ~(size_t)63;
    const int nth = be->n_threads;
    /* more columns than one call takes: the rows converted once per block
     * (cpu_kernels.conv), both types' blocks whole in a row */
    const uint32_t ct = be->k.conv_type[W->type];
    if (be->k.pack[W->type] && be->k.tile[W->type] && c.K % cpu_type_block(W->type) == 0) {
        c.pack = be->k.pack[W->type];
        c.tile = be->k.tile[W->type];   /* a gemv stays: it is the tile's nc = 1 */
        c.cbuf_bytes = ((size_t)(c.K / cpu_type_block(W->type)) * be->k.tile_bytes[W->type] + 63) & ~(size_t)63;
    } else if (c.M > c.cols && be->k.conv[W->type] && be->k.dot[ct] && be->k.act[ct] == c.fmt &&
        c.K % cpu_type_block(W->type) == 0 && c.K % cpu_type_block(ct) == 0) {
        c.conv = be->k.conv[W->type];
        c.cdot = be->k.dot[ct];
        c.crow = (size_t)(c.K / cpu_type_block(ct)) * cpu_type_size(ct);
        c.cbuf_bytes = (((size_t)(MM_BLOCK_BYTES / W->nb[1]) + 1) * c.crow + 63) & ~(size_t)63;
    }
    /* scratch: activations, the two column-pointer arrays, then each
     * thread's converted rows */
    const size_t act_bytes = (size_t)c.M * c.arow;
    const size_t ptr_bytes = (size_t)c.M * sizeof(void *);
    const size_t head = (act_bytes + 2 * ptr_bytes + 63) & ~(size_t)63;
    if (cpu_scratch_reserve(be, head + (size_t)nth * c.cbuf_bytes) != 0) {
        if (err && err_size) snprintf(err, err_size, "mul_mat: out of memory for activations");
        return LAMINA_ENOMEM;
    }
    c.act = be->scratch;
    c.dcol = (float **)(c.act + act_bytes);
    c.xcol = (const float **)(c.act + act_bytes + ptr_bytes);
    c.cbuf = c.act + head;
    for (int64_t m = 0; m < c.M; m++) {
        c.xcol[m] = (const float *)row_ptr(X, m);
        c.dcol[m] = (float *)row_ptr(d, m);
    }
    cpu_pool_run(be->pool, task_mm_quant, &c, c.M * c.K >= 65536 ? nth : 1);

    /* chunks: several per thread so a busy core does not hold the rest up */
    const int64_t target = (int64_t)nth * (c.M == 1 ? 16 : 4);
    int64_t chunk = (c.N + target - 1) / target;
    if (chunk < 4) chunk = 4;
    if (c.tile) chunk = (chunk + CPU_TILE_ROWS - 1) / CPU_TILE_ROWS * CPU_TILE_ROWS;
    c.chunk = chunk;
    c.n_chunks = (c.N + chunk - 1) / chunk;
    atomic_init(&c.next, 0);
    const double work = (double)c.N * (double)c.M * (double)c.K;
    cpu_pool_run(be->pool, task_mm, &c, work >= 262144.0 ? nth : 1);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Mixture of experts                                                   */

static inline const uint8_t *at2(const lamina_tensor *t, int64_t i1, int64_t i2)
{
    return cpu_tensor_data(t) + (uint64_t)i1 * t->nb[1] + (uint64_t)i2 * t->nb[2];
}

/* TOPK: dst[j, t] = the j-th largest of column t (ties: lower index) */
static void run_topk(const lamina_node *n)
{
    const lamina_tensor *X = &n->src[0], *d = &n->dst;
    const int64_t N = X->ne[0], T = X->ne[1], k = n->ip[0];
    for (int64_t t = 0; t < T; t++) {
        const float *x = (const float *)at2(X, t, 0);
        int32_t *out = (int32_t *)at2(d, t, 0);
        /* insertion into the k best so far, kept sorted */
        int64_t have = 0;
        for (int64_t i = 0; i < N; i++) {
            const float v = x[i];
            if (isnan(v)) continue;
            int64_t p = have < k ? have : k;
            while (p > 0 && v > x[out[p - 1]]) p--;
            if (p >= k) continue;
            for (int64_t q = (have < k ? have : k - 1); q > p; q--) out[q] = out[q - 1];
            out[p] = (int32_t)i;
            if (have < k) have++;
        }
        /* NaNs last, lowest index first */
        for (int64_t i = 0; i < N && have < k; i++)
            if (isnan(x[i])) out[have++] = (int32_t)i;
    }
}

static int run_moe_weights(const lamina_node *n, char *err, size_t err_size)
{
    const lamina_tensor *X = &n->src[0], *ids = &n->src[1], *d = &n->dst;
    const int64_t N = X->ne[0], T = X->ne[1], k = ids->ne[0];
    for (int64_t t = 0; t < T; t++) {
        const float *x = (const float *)at2(X, t, 0);
        const int32_t *id = (const int32_t *)at2(ids, t, 0);
        float *out = (float *)at2(d, t, 0);
        for (int64_t j = 0; j < k; j++)
            if (id[j] < 0 || id[j] >= N) {
                if (err && err_size) snprintf(err, err_size, "moe_weights: id %d out of range [0, %lld)", id[j], (long long)N);
                return LAMINA_EINVAL;
            }
        /* softmax over the selected or over all, the maximum subtracted */
        float mx = -INFINITY;
        double sum = 0.0;
        if (n->ip[0]) {
            for (int64_t j = 0; j < k; j++) mx = fmaxf(mx, x[id[j]]);
            for (int64_t j = 0; j < k; j++) sum += exp((double)x[id[j]] - mx);
        } else {
            for (int64_t i = 0; i < N; i++) mx = fmaxf(mx, x[i]);
            for (int64_t i = 0; i < N; i++) sum += exp((double)x[i] - mx);
        }
        for (int64_t j = 0; j < k; j++) out[j] = (float)(exp((double)x[id[j]] - mx) / sum);
    }
    return 0;
}

static void run_moe_sum(const lamina_node *n)
{
    const lamina_tensor *Y = &n->src[0], *W = &n->src[1], *d = &n->dst;
    const int64_t E = Y->ne[0], k = Y->ne[1], T = Y->ne[2];
    for (int64_t t = 0; t < T; t++) {
        const float *w = (const float *)at2(W, t, 0);
        float *out = (float *)at2(d, t, 0);
        for (int64_t e = 0; e < E; e++) out[e] = 0.0f;
        for (int64_t j = 0; j < k; j++) {
            const float *y = (const float *)at2(Y, j, t);
            for (int64_t e = 0; e < E; e++) out[e] += w[j] * y[e];
        }
    }
}

/* MUL_MAT_ID: for each expert, one matmul over the (token, slot) columns
 * that chose it, through the MUL_MAT kernels */
static int run_mul_mat_id(lamina_backend *be, const lamina_node *n, char *err, size_t err_size)
{
    const lamina_tensor *W = &n->src[0], *A = &n->src[1], *ids = &n->src[2], *d = &n->dst;
    const int64_t X = W->ne[2], k = ids->ne[0], T = ids->ne[1], cols = k * T;
    const float **xcol = malloc((size_t)cols * sizeof *xcol);
    float **dcol = malloc((size_t)cols * sizeof *dcol);
    if (!xcol || !dcol) {
        free(xcol);
        free(dcol);
        if (err && err_size) snprintf(err, err_size, "mul_mat_id: out of memory");
        return LAMINA_ENOMEM;
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++) {
            const int32_t e = ((const int32_t *)at2(ids, t, 0))[j];
            if (e < 0 || e >= X) {
                free(xcol);
                free(dcol);
                if (err && err_size) snprintf(err, err_size, "mul_mat_id: expert %d out of range [0, %lld)", e, (long long)X);
                return LAMINA_EINVAL;
            }
        }
    int rc = 0;
    for (int64_t e = 0; e < X && rc == 0; e++) {
        /* 1. the columns that chose expert e */
        int64_t M = 0;
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < k; j++)
                if (((const int32_t *)at2(ids, t, 0))[j] == e) {
                    xcol[M] = (const float *)at2(A, A->ne[1] == 1 ? 0 : j, t);
                    dcol[M] = (float *)at2(d, j, t);
                    M++;
                }
        if (M == 0) continue;
        /* 2. dst columns = W_e . X columns */
        lamina_node sub;
        lamina_node_copy(&sub, n);
        sub.src[0].offset += (uint64_t)e * W->nb[2];
        sub.src[0].ne[2] = 1;
        mm_ctx c;
        memset(&c, 0, sizeof c);
        c.be = be;
        c.n = &sub;
        c.dot = be->k.dot[W->type];
        c.cols = be->k.cols[W->type] ? be->k.cols[W->type] : CPU_DOT_COLS;
        c.fmt = be->k.act[W->type];
        c.K = W->ne[0];
        c.N = W->ne[1];
        c.M = M;
        c.arow = (cpu_act_row_size(c.fmt, c.K) + 63) & ~(size_t)63;
        if (cpu_scratch_reserve(be, (size_t)M * c.arow) != 0) {
            if (err && err_size) snprintf(err, err_size, "mul_mat_id: out of memory for activations");
            rc = LAMINA_ENOMEM;
            break;
        }
        c.act = be->scratch;
        c.xcol = xcol;
        c.dcol = dcol;
        const int nth = be->n_threads;
        cpu_pool_run(be->pool, task_mm_quant, &c, M * c.K >= 65536 ? nth : 1);
        const int64_t target = (int64_t)nth * (M == 1 ? 16 : 4);
        int64_t chunk = (c.N + target - 1) / target;
        if (chunk < 4) chunk = 4;
        c.chunk = chunk;
        c.n_chunks = (c.N + chunk - 1) / chunk;
        atomic_init(&c.next, 0);
        cpu_pool_run(be->pool, task_mm, &c, (double)c.N * (double)M * (double)c.K >= 262144.0 ? nth : 1);
    }
    free(xcol);
    free(dcol);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                             */

#define FAIL(code, ...) do { if (err && err_size) snprintf(err, err_size, __VA_ARGS__); return (code); } while (0)

int cpu_node_run(lamina_backend *be, const lamina_node *n, char *err, size_t err_size)
{
    op_ctx oc = { be, n };
    const lamina_tensor *s0 = &n->src[0];
    switch (n->op) {
    case LAMINA_OP_GET_ROWS: {
        const int32_t *ids = (const int32_t *)cpu_tensor_data(&n->src[1]);
        for (int64_t i = 0; i < n->src[1].ne[0]; i++)
            if (ids[i] < 0 || ids[i] >= s0->ne[1])
                FAIL(LAMINA_EINVAL, "get_rows: id %d out of range [0, %lld)", ids[i], (long long)s0->ne[1]);
        cpu_pool_run(be->pool, task_get_rows, &oc, nth_for(be, n->dst.ne[0] * n->dst.ne[1]));
        return 0;
    }
    case LAMINA_OP_MUL_MAT:
        return run_mul_mat(be, n, err, err_size);
    case LAMINA_OP_RMS_NORM:
        cpu_pool_run(be->pool, task_rms_norm, &oc, nth_for(be, s0->ne[0] * nrows(s0)));
        return 0;
    case LAMINA_OP_NORM:
        cpu_pool_run(be->pool, task_norm, &oc, nth_for(be, 2 * s0->ne[0] * nrows(s0)));
        return 0;
    case LAMINA_OP_UNARY:
        cpu_pool_run(be->pool, task_act, &oc, nth_for(be, 8 * s0->ne[0] * nrows(s0)));
        return 0;
    case LAMINA_OP_ADD:
    case LAMINA_OP_MUL:
    case LAMINA_OP_SCALE:
        cpu_pool_run(be->pool, task_eltwise, &oc, nth_for(be, s0->ne[0] * nrows(s0)));
        return 0;
    case LAMINA_OP_GLU:
        cpu_pool_run(be->pool, task_eltwise, &oc, nth_for(be, 8 * s0->ne[0] * nrows(s0)));
        return 0;
    case LAMINA_OP_COPY:
        cpu_pool_run(be->pool, task_copy, &oc, nth_for(be, s0->ne[0] * nrows(s0)));
        return 0;
    case LAMINA_OP_SET_ROWS: {
        const int32_t *rows = (const int32_t *)cpu_tensor_data(&n->src[1]);
        for (int64_t i = 0; i < n->src[1].ne[0]; i++)
            if (rows[i] < 0 || rows[i] >= n->dst.ne[1])
                FAIL(LAMINA_EINVAL, "set_rows: row %d out of range [0, %lld)", rows[i], (long long)n->dst.ne[1]);
        cpu_pool_run(be->pool, task_set_rows, &oc, nth_for(be, s0->ne[0] * s0->ne[1]));
        return 0;
    }
    case LAMINA_OP_ROPE: {
        rope_ctx rc = { n, NULL, NULL };
        const int nth = s0->ne[2] > 1 ? nth_for(be, 4 * s0->ne[0] * nrows(s0)) : 1;
        if (cpu_scratch_reserve(be, (size_t)nth * (size_t)(n->ip[1] / 2 + (n->ip[1] + 1) / 2) * sizeof(double)) != 0)
            FAIL(LAMINA_ENOMEM, "rope: out of memory");
        rc.fr = be->scratch;
        cpu_pool_run(be->pool, task_rope, &rc, nth);
        return 0;
    }
    case LAMINA_OP_ATTENTION: {
        attn_ctx ac;
        memset(&ac, 0, sizeof ac);
        ac.be = be;
        ac.n = n;
        ac.D = s0->ne[0];
        ac.Hq = s0->ne[1];
        ac.N = s0->ne[2];
        ac.Hkv = n->src[1].ne[0] / ac.D;
        ac.Dv = n->src[2].ne[0] / ac.Hkv;
        const int64_t R = n->src[1].ne[1];
        for (int64_t i = 0; i < ac.N; i++) {
            const int32_t *bp = (const int32_t *)(cpu_tensor_data(&n->src[3]) + (uint64_t)i * n->src[3].nb[1]);
            if (bp[0] < 0 || bp[1] < 0 || (int64_t)bp[0] + bp[1] >= R)
                FAIL(LAMINA_EINVAL, "attention: token %lld reads rows %d..%d of %lld",
                     (long long)i, bp[0], bp[0] + bp[1], (long long)R);
        }
        /* heads of one KV group per item, fewer when that leaves threads idle */
        const int64_t grp = ac.Hq / ac.Hkv;
        ac.hc = (int)(grp < CPU_DOT_MAX_COLS ? grp : CPU_DOT_MAX_COLS);
        while (ac.hc > 1 && ac.N * ac.Hkv * ((grp + ac.hc - 1) / ac.hc) < be->n_threads) ac.hc = (ac.hc + 1) / 2;
        ac.n_items = ac.N * ac.Hkv * ((grp + ac.hc - 1) / ac.hc);
        const int nth = ac.n_items > 1 ? be->n_threads : 1;
        if (cpu_scratch_reserve(be, (size_t)nth * att_scratch_floats(&ac) * sizeof(float)) != 0)
            FAIL(LAMINA_ENOMEM, "attention: out of memory");
        ac.scratch = be->scratch;
        cpu_pool_run(be->pool, task_attention, &ac, nth);
        return 0;
    }
    case LAMINA_OP_TOPK:
        run_topk(n);
        return 0;
    case LAMINA_OP_MOE_WEIGHTS:
        return run_moe_weights(n, err, err_size);
    case LAMINA_OP_MUL_MAT_ID:
        return run_mul_mat_id(be, n, err, err_size);
    case LAMINA_OP_MOE_SUM:
        run_moe_sum(n);
        return 0;
    default:
        FAIL(LAMINA_ENOTSUP, "op %u not supported", n->op);
    }
}
