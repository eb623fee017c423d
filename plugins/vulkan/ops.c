/*
 * ops.c - which nodes the Vulkan backend runs, and running them.
 *
 * Every node becomes one or more compute dispatches recorded into a single
 * command buffer.  Each tensor is bound as a storage buffer at an offset
 * aligned to minStorageBufferOffsetAlignment; the remainder and all shapes
 * and strides travel as push constants.  A weight tensor larger than
 * maxStorageBufferRange is bound in windows of rows, one dispatch each.
 * Barriers are inserted only where a dispatch touches a range an earlier,
 * not yet barriered dispatch wrote (or writes a range it read).
 */
#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkb.h"

/* ---- types --------------------------------------------------------------- */

typedef struct {
    uint32_t block;     /* elements per block */
    uint32_t bytes;     /* bytes per block */
    uint32_t align;     /* required alignment of rows and offsets */
    int gr, mmv, mmv_sg, mmv_s16, mm; /* shader variants, -1 = none */
    int mmv_id, mmv_sg_id;             /* MUL_MAT_ID's (as mmv, mmv_sg) */
    int mmv_blk;                       /* whole blocks per invocation (CPU
                                          devices), -1 = none */
} type_info;

static int type_get(uint32_t t, type_info *ti)
{
#define T(ID, BL, BY, AL, NAME, S16, BLK)                                   \
    case ID:                                                                \
        *ti = (type_info){ BL, BY, AL, VKS_get_rows_##NAME, VKS_mmv_##NAME, \
                           VKS_mmv_sg_##NAME, S16, VKS_mm_##NAME,           \
                           VKS_mmv_id_##NAME, VKS_mmv_sg_id_##NAME, BLK };  \
        return 1;
    /* S16: the 16-bit-load matrix-vector variant, for the types whose
     * blocks are 2- but not 4-aligned (on lavapipe: q8_0 16%, q5_0 13%
     * faster; the 4-aligned K-quant blocks are faster with word loads);
     * BLK: the whole-block variant for CPU devices (be->use_blk) */
    switch (t) {
    T(LAMINA_TYPE_F32, 1, 4, 4, f32, -1, -1)
    T(LAMINA_TYPE_F16, 1, 2, 2, f16, VKS_mmv_s16_f16, -1)
    T(LAMINA_TYPE_BF16, 1, 2, 2, bf16, VKS_mmv_s16_bf16, -1)
    T(LAMINA_TYPE_Q4_0, 32, 18, 2, q4_0, VKS_mmv_s16_q4_0, -1)
    T(LAMINA_TYPE_Q4_1, 32, 20, 2, q4_1, VKS_mmv_s16_q4_1, -1)
    T(LAMINA_TYPE_Q5_0, 32, 22, 2, q5_0, VKS_mmv_s16_q5_0, VKS_mmv_blk_q5_0)
    T(LAMINA_TYPE_Q5_1, 32, 24, 2, q5_1, VKS_mmv_s16_q5_1, -1)
    T(LAMINA_TYPE_Q8_0, 32, 34, 2, q8_0, VKS_mmv_s16_q8_0, VKS_mmv_blk_q8_0)
    T(LAMINA_TYPE_Q4_K, 256, 144, 2, q4_K, -1, -1)
    T(LAMINA_TYPE_Q5_K, 256, 176, 2, q5_K, -1, -1)
    T(LAMINA_TYPE_Q6_K, 256, 210, 2, q6_K, -1, -1)
    case LAMINA_TYPE_I32:
        *ti = (type_info){ 1, 4, 4, -1, -1, -1, -1, -1, -1, -1, -1 };
        return 1;
    default:
        memset(ti, 0, sizeof *ti);
        return 0;
    }
#undef T
}

/* ---- tensor checks -------------------------------------------------------- */

/* Bytes from t->offset to one past the last byte of the tensor; 0 on a bad
 * shape (the checks below treat 0 as invalid). */
static uint64_t tensor_span(const lamina_tensor *t, const type_info *ti)
{
    uint64_t span, step;

    for (int i = 0; i < 4; i++)
        if (t->ne[i] < 1 || t->ne[i] > (int64_t)UINT32_MAX)
            return 0;
    if ((uint64_t)t->ne[0] % ti->block != 0)
        return 0;
    span = (uint64_t)t->ne[0] / ti->block * ti->bytes;
    for (int i = 1; i < 4; i++) {
        if (__builtin_mul_overflow((uint64_t)(t->ne[i] - 1), t->nb[i], &step) ||
            __builtin_add_overflow(span, step, &span))
            return 0;
    }
    return span;
}

typedef struct {
    char *msg;
    size_t n;
} why;

static int no(why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int no(why *w, const char *fmt, ...)
{
    va_list ap;

    if (w != NULL && w->msg != NULL && w->n > 0) {
        va_start(ap, fmt);
        vsnprintf(w->msg, w->n, fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* Type, shape, alignment and buffer bounds of one operand.  `windowed`:
 * only a single row (not the whole tensor) must fit one binding.  Without
 * `strict` a tensor may have no buffer yet (the core asks supports_op
 * while planning, before anything is allocated). */
static int check_tensor(const lamina_backend *be, const lamina_tensor *t, const char *name,
                        int windowed, int strict, why *w)
{
    type_info ti;
    uint64_t span, end, need;

    if (t->buffer == NULL && strict)
        return no(w, "%s: no buffer", name);
    if (!type_get(t->type, &ti))
        return no(w, "%s: type %u not supported", name, t->type);
    span = tensor_span(t, &ti);
    if (span == 0)
        return no(w, "%s: bad shape", name);
    if (t->nb[0] != ti.bytes)
        return no(w, "%s: elements of a row must be packed (nb[0] %llu)", name,
                  (unsigned long long)t->nb[0]);
    if (t->offset % ti.align != 0 || t->nb[1] % ti.align != 0 || t->nb[2] % ti.align != 0 ||
        t->nb[3] % ti.align != 0)
        return no(w, "%s: offset/strides not %u-byte aligned", name, ti.align);
    if (__builtin_add_overflow(t->offset, span, &end) ||
        (t->buffer != NULL && end > t->buffer->size))
        return no(w, "%s: extends past its buffer", name);
    need = windowed ? (uint64_t)t->ne[0] / ti.block * ti.bytes : span;
    if (need + be->min_align + 4 > be->max_range)
        return no(w, "%s: %llu bytes exceed maxStorageBufferRange %llu", name,
                  (unsigned long long)need, (unsigned long long)be->max_range);
    if (windowed && t->ne[1] > 1 && t->nb[1] < need)
        return no(w, "%s: rows overlap", name);
    return 1;
}

static int same_shape(const lamina_tensor *a, const lamina_tensor *b)
{
    return a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1] && a->ne[2] == b->ne[2] &&
           a->ne[3] == b->ne[3];
}

static int is_vec(const lamina_tensor *t)
{
    return t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1;
}

static int is_w_type(uint32_t t)
{
    type_info ti;
    return type_get(t, &ti) && ti.gr >= 0;
}

static uint64_t nrows(const lamina_tensor *t)
{
    return (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
}

/* Workgroups of a 2-D grid for n groups; 0 when the device cannot. */
static int grid_for(const lamina_backend *be, uint64_t n, uint32_t *gx, uint32_t *gy)
{
    uint64_t x = n < be->max_groups[0] ? n : be->max_groups[0];
    if (x == 0)
        x = 1;
    uint64_t y = (n + x - 1) / x;
    if (y == 0)
        y = 1;
    if (y > be->max_groups[1])
        return 0;
    *gx = (uint32_t)x;
    *gy = (uint32_t)y;
    return 1;
}

static int grid_ok(const lamina_backend *be, uint64_t n)
{
    uint32_t x, y;
    return grid_for(be, n, &x, &y);
}

/* Everything supports_op promises, with the reason on refusal; `strict`
 * also requires every operand to have a buffer (graph_compute). */
static int check_node(const lamina_backend *be, const lamina_node *nd, int strict, why *w)
{
    const lamina_tensor *d = &nd->dst;
    const lamina_tensor *s = nd->src;
    uint32_t need_src;

    switch (nd->op) {
    case LAMINA_OP_GET_ROWS: case LAMINA_OP_MUL_MAT: case LAMINA_OP_ADD:
    case LAMINA_OP_MUL: case LAMINA_OP_GLU: case LAMINA_OP_SET_ROWS:
        need_src = 2;
        break;
    case LAMINA_OP_RMS_NORM: case LAMINA_OP_SCALE: case LAMINA_OP_COPY:
    case LAMINA_OP_NORM: case LAMINA_OP_UNARY: case LAMINA_OP_TOPK:
        need_src = 1;
        break;
    case LAMINA_OP_MOE_WEIGHTS: case LAMINA_OP_MOE_SUM:
        need_src = 2;
        break;
    case LAMINA_OP_MUL_MAT_ID:
        need_src = 3;
        break;
    case LAMINA_OP_ROPE:
        need_src = 2;
        break;
    case LAMINA_OP_ATTENTION:
        need_src = 4;
        break;
    default:
        return no(w, "op %u not supported", nd->op);
    }
    if (nd->n_src < need_src || nd->n_src > LAMINA_MAX_SRC)
        return no(w, "op %u: %u sources", nd->op, nd->n_src);
    if (nd->op == LAMINA_OP_NORM && nd->n_src > 3)
        return no(w, "norm: %u sources", nd->n_src);
    int windowed = nd->op == LAMINA_OP_GET_ROWS || nd->op == LAMINA_OP_MUL_MAT;
    if (!check_tensor(be, d, "dst", 0, strict, w))
        return 0;
    for (uint32_t i = 0; i < nd->n_src; i++) {
        char name[8];
        snprintf(name, sizeof name, "src%u", i);
        if (!check_tensor(be, &s[i], name, windowed && i == 0, strict, w))
            return 0;
    }

    switch (nd->op) {
    case LAMINA_OP_GET_ROWS:
        if (!is_w_type(s[0].type))
            return no(w, "get_rows: table type %u", s[0].type);
        if (s[0].ne[2] != 1 || s[0].ne[3] != 1 || s[1].type != LAMINA_TYPE_I32 || !is_vec(&s[1]))
            return no(w, "get_rows: table must be 2-D and ids I32 [N]");
        if (d->type != LAMINA_TYPE_F32 || d->ne[0] != s[0].ne[0] || d->ne[1] != s[1].ne[0] ||
            d->ne[2] != 1 || d->ne[3] != 1)
            return no(w, "get_rows: dst must be F32 [K, N]");
        if (!grid_ok(be, ((uint64_t)d->ne[0] * (uint64_t)d->ne[1] + 255) / 256))
            return no(w, "get_rows: too large a dispatch");
        return 1;
    case LAMINA_OP_MUL_MAT: {
        if (!is_w_type(s[0].type))
            return no(w, "mul_mat: weight type %u", s[0].type);
        if (s[0].ne[2] != 1 || s[0].ne[3] != 1)
            return no(w, "mul_mat: weights must be 2-D");
        if (s[1].type != LAMINA_TYPE_F32 || s[1].ne[0] != s[0].ne[0])
            return no(w, "mul_mat: X must be F32 with ne0 = K");
        if (d->type != LAMINA_TYPE_F32 || d->ne[0] != s[0].ne[1] || d->ne[1] != s[1].ne[1] ||
            d->ne[2] != s[1].ne[2] || d->ne[3] != s[1].ne[3])
            return no(w, "mul_mat: dst must be F32 [N, M]");
        uint64_t n = (uint64_t)s[0].ne[1], m = nrows(&s[1]);
        if (!grid_ok(be, n * m) || !grid_ok(be, ((n + 31) / 32) * ((m + 31) / 32)))
            return no(w, "mul_mat: too large a dispatch");
        return 1;
    }
    case LAMINA_OP_RMS_NORM:
        if (s[0].type != LAMINA_TYPE_F32 || d->type != LAMINA_TYPE_F32 || !same_shape(d, &s[0]))
            return no(w, "rms_norm: F32 X and dst of the same shape");
        if (nd->n_src > 1 && (s[1].type != LAMINA_TYPE_F32 || s[1].ne[0] != s[0].ne[0]))
            return no(w, "rms_norm: weight must be F32 [K]");
        if (!grid_ok(be, nrows(&s[0])))
            return no(w, "rms_norm: too many rows");
        return 1;
    case LAMINA_OP_ADD: case LAMINA_OP_MUL: case LAMINA_OP_GLU:
        if (s[0].type != LAMINA_TYPE_F32 || s[1].type != LAMINA_TYPE_F32 ||
            d->type != LAMINA_TYPE_F32 || !same_shape(d, &s[0]))
            return no(w, "op %u: F32 operands, dst of src0's shape", nd->op);
        if (!same_shape(&s[1], &s[0]) &&
            (nd->op == LAMINA_OP_GLU || s[1].ne[0] != s[0].ne[0] || !is_vec(&s[1])))
            return no(w, "op %u: src1 must match src0 (or be [K] for add/mul)", nd->op);
        if (nd->op == LAMINA_OP_GLU && nd->ip[0] != LAMINA_ACT_SILU &&
            nd->ip[0] != LAMINA_ACT_GELU_TANH)
            return no(w, "glu: activation %d", nd->ip[0]);
        break;
    case LAMINA_OP_SCALE:
        if (s[0].type != LAMINA_TYPE_F32 || d->type != LAMINA_TYPE_F32 || !same_shape(d, &s[0]))
            return no(w, "scale: F32 A and dst of the same shape");
        break;
    case LAMINA_OP_UNARY:
        if (s[0].type != LAMINA_TYPE_F32 || d->type != LAMINA_TYPE_F32 || !same_shape(d, &s[0]))
            return no(w, "unary: F32 X and dst of the same shape");
        if (nd->ip[0] != LAMINA_ACT_SILU && nd->ip[0] != LAMINA_ACT_GELU_TANH)
            return no(w, "unary: activation %d", nd->ip[0]);
        break;
    case LAMINA_OP_NORM:
        if (s[0].type != LAMINA_TYPE_F32 || d->type != LAMINA_TYPE_F32 || !same_shape(d, &s[0]))
            return no(w, "norm: F32 X and dst of the same shape");
        for (uint32_t i = 1; i < nd->n_src; i++)
            if (s[i].type != LAMINA_TYPE_F32 || s[i].ne[0] != s[0].ne[0] || !is_vec(&s[i]))
                return no(w, "norm: %s must be F32 [K]", i == 1 ? "weight" : "bias");
        if (!grid_ok(be, nrows(&s[0])))
            return no(w, "norm: too many rows");
        return 1;
    case LAMINA_OP_TOPK:
        if (s[0].type != LAMINA_TYPE_F32 || s[0].ne[2] != 1 || s[0].ne[3] != 1)
            return no(w, "topk: X must be F32 [N, T]");
        if (nd->ip[0] < 1 || nd->ip[0] > s[0].ne[0])
            return no(w, "topk: k %d outside [1, N=%lld]", nd->ip[0], (long long)s[0].ne[0]);
        if (d->type != LAMINA_TYPE_I32 || d->ne[0] != nd->ip[0] || d->ne[1] != s[0].ne[1] ||
            d->ne[2] != 1 || d->ne[3] != 1)
            return no(w, "topk: dst must be I32 [k, T]");
        if (!grid_ok(be, ((uint64_t)s[0].ne[1] + 63) / 64))
            return no(w, "topk: too many columns");
        return 1;
    case LAMINA_OP_MOE_WEIGHTS:
        if (s[0].type != LAMINA_TYPE_F32 || s[0].ne[2] != 1 || s[0].ne[3] != 1)
            return no(w, "moe_weights: logits must be F32 [N, T]");
        if (s[1].type != LAMINA_TYPE_I32 || s[1].ne[0] > s[0].ne[0] || s[1].ne[1] != s[0].ne[1] ||
            s[1].ne[2] != 1 || s[1].ne[3] != 1)
            return no(w, "moe_weights: ids must be I32 [k <= N, T]");
        if (d->type != LAMINA_TYPE_F32 || !same_shape(d, &s[1]))
            return no(w, "moe_weights: dst must be F32 [k, T]");
        if (nd->ip[0] != 0 && nd->ip[0] != 1)
            return no(w, "moe_weights: ip[0] %d", nd->ip[0]);
        if (!grid_ok(be, ((uint64_t)s[0].ne[1] + 63) / 64))
            return no(w, "moe_weights: too many columns");
        return 1;
    case LAMINA_OP_MUL_MAT_ID: {
        type_info ti;
        if (!is_w_type(s[0].type) || !type_get(s[0].type, &ti) || ti.mmv_id < 0)
            return no(w, "mul_mat_id: weight type %u", s[0].type);
        if (s[0].ne[3] != 1)
            return no(w, "mul_mat_id: W must be 3-D [K, N, X]");
        const int64_t k = s[2].ne[0], T = s[2].ne[1];
        if (s[2].type != LAMINA_TYPE_I32 || s[2].ne[2] != 1 || s[2].ne[3] != 1)
            return no(w, "mul_mat_id: ids must be I32 [k, T]");
        if (s[1].type != LAMINA_TYPE_F32 || s[1].ne[0] != s[0].ne[0] ||
            (s[1].ne[1] != 1 && s[1].ne[1] != k) || s[1].ne[2] != T || s[1].ne[3] != 1)
            return no(w, "mul_mat_id: A must be F32 [K, 1 or k, T]");
        if (d->type != LAMINA_TYPE_F32 || d->ne[0] != s[0].ne[1] || d->ne[1] != k ||
            d->ne[2] != T || d->ne[3] != 1)
            return no(w, "mul_mat_id: dst must be F32 [N, k, T]");
        const uint64_t nr = be->use_subgroup ? be->mmv_rows : 4;
        if ((uint64_t)k * (uint64_t)T > UINT32_MAX ||
            !grid_ok(be, ((uint64_t)s[0].ne[1] + nr - 1) / nr * (uint64_t)k * (uint64_t)T))
            return no(w, "mul_mat_id: too large a dispatch");
        return 1;
    }
    case LAMINA_OP_MOE_SUM:
        if (s[0].type != LAMINA_TYPE_F32 || s[0].ne[3] != 1)
            return no(w, "moe_sum: Y must be F32 [E, k, T]");
        if (s[1].type != LAMINA_TYPE_F32 || s[1].ne[0] != s[0].ne[1] || s[1].ne[1] != s[0].ne[2] ||
            s[1].ne[2] != 1 || s[1].ne[3] != 1)
            return no(w, "moe_sum: weights must be F32 [k, T]");
        if (d->type != LAMINA_TYPE_F32 || d->ne[0] != s[0].ne[0] || d->ne[1] != s[0].ne[2] ||
            d->ne[2] != 1 || d->ne[3] != 1)
            return no(w, "moe_sum: dst must be F32 [E, T]");
        if ((uint64_t)s[0].ne[0] * (uint64_t)s[0].ne[2] > UINT32_MAX ||
            !grid_ok(be, ((uint64_t)s[0].ne[0] * (uint64_t)s[0].ne[2] + 255) / 256))
            return no(w, "moe_sum: too many elements");
        return 1;
    case LAMINA_OP_COPY:
        if ((s[0].type != LAMINA_TYPE_F32 && s[0].type != LAMINA_TYPE_F16 &&
             s[0].type != LAMINA_TYPE_BF16) ||
            (d->type != LAMINA_TYPE_F32 && d->type != LAMINA_TYPE_F16) || !same_shape(d, &s[0]))
            return no(w, "copy: F32/F16/BF16 to F32/F16 of the same shape");
        break;
    case LAMINA_OP_ROPE: {
        int32_t mode = nd->ip[0], n_rot = nd->ip[1];
        if (s[0].type != LAMINA_TYPE_F32 || d->type != LAMINA_TYPE_F32 || !same_shape(d, &s[0]) ||
            s[0].ne[3] != 1)
            return no(w, "rope: F32 X [D, H, N] and dst of its shape");
        if (s[1].type != LAMINA_TYPE_I32 || s[1].ne[0] != s[0].ne[2] || !is_vec(&s[1]))
            return no(w, "rope: positions must be I32 [N]");
        if (mode != LAMINA_ROPE_NORM && mode != LAMINA_ROPE_NEOX)
            return no(w, "rope: mode %d", mode);
        if (n_rot <= 0 || n_rot % 2 != 0 || n_rot > s[0].ne[0] || s[0].ne[0] % 2 != 0)
            return no(w, "rope: n_rot %d with D %lld", n_rot, (long long)s[0].ne[0]);
        if (!(nd->fp[0] > 0.0f))
            return no(w, "rope: freq_base must be > 0");
        if (nd->n_src > 2 && (s[2].type != LAMINA_TYPE_F32 || s[2].ne[0] < n_rot / 2))
            return no(w, "rope: freq factors must be F32 [n_rot/2]");
        if (nd->fp[2] != 0.0f || (nd->fp[3] != 0.0f && nd->fp[3] != 1.0f))
            return no(w, "rope: YaRN (no shader yet)");
        if (!grid_ok(be, ((uint64_t)s[0].ne[0] / 2 * s[0].ne[1] * s[0].ne[2] + 255) / 256))
            return no(w, "rope: too large a dispatch");
        return 1;
    }
    case LAMINA_OP_SET_ROWS:
        if (s[0].type != LAMINA_TYPE_F32 || s[0].ne[2] != 1 || s[0].ne[3] != 1)
            return no(w, "set_rows: X must be F32 [K, N]");
        if (s[1].type != LAMINA_TYPE_I32 || s[1].ne[0] != s[0].ne[1] || !is_vec(&s[1]))
            return no(w, "set_rows: rows must be I32 [N]");
        if ((d->type != LAMINA_TYPE_F32 && d->type != LAMINA_TYPE_F16) ||
            d->ne[0] != s[0].ne[0] || d->ne[2] != 1 || d->ne[3] != 1)
            return no(w, "set_rows: dst must be F32/F16 [K, R]");
        if (d->buffer != NULL && d->buffer == s[0].buffer)
            return no(w, "set_rows: dst must not share src0's buffer");
        if (!grid_ok(be, ((uint64_t)s[0].ne[0] * s[0].ne[1] + 255) / 256))
            return no(w, "set_rows: too large a dispatch");
        return 1;
    case LAMINA_OP_ATTENTION: {
        int64_t D = s[0].ne[0], Hq = s[0].ne[1], N = s[0].ne[2];
        if (s[0].type != LAMINA_TYPE_F32 || s[0].ne[3] != 1)
            return no(w, "attention: Q must be F32 [D, Hq, N]");
        if ((s[1].type != LAMINA_TYPE_F16 && s[1].type != LAMINA_TYPE_F32) ||
            (s[2].type != LAMINA_TYPE_F16 && s[2].type != LAMINA_TYPE_F32))
            return no(w, "attention: K/V cache must be F16 or F32");
        if (s[1].ne[0] % D != 0 || s[1].ne[2] != 1 || s[1].ne[3] != 1 ||
            s[2].ne[2] != 1 || s[2].ne[3] != 1 || s[2].ne[1] != s[1].ne[1])
            return no(w, "attention: K [D*Hkv, R] and V [Dv*Hkv, R]");
        int64_t Hkv = s[1].ne[0] / D;
        if (Hkv < 1 || Hq % Hkv != 0 || s[2].ne[0] % Hkv != 0)
            return no(w, "attention: Hq %lld not a multiple of Hkv %lld", (long long)Hq,
                      (long long)Hkv);
        int64_t Dv = s[2].ne[0] / Hkv;
        if (D > 1024 || Dv > 1024)
            return no(w, "attention: head size above 1024");
        if (s[3].type != LAMINA_TYPE_I32 || s[3].ne[0] != 2 || s[3].ne[1] != N ||
            s[3].ne[2] != 1 || s[3].ne[3] != 1)
            return no(w, "attention: src3 must be I32 [2, N]");
        if (d->type != LAMINA_TYPE_F32 || d->ne[0] != Dv * Hq || d->ne[1] != N ||
            d->ne[2] != 1 || d->ne[3] != 1)
            return no(w, "attention: dst must be F32 [Dv*Hq, N]");
        if (nd->ip[0] < 0)
            return no(w, "attention: negative window");
        if (!grid_ok(be, (uint64_t)Hq * (uint64_t)N))
            return no(w, "attention: too large a dispatch");
        return 1;
    }
    }
    /* element-wise ops */
    if (!grid_ok(be, ((uint64_t)d->ne[0] * nrows(d) + 255) / 256) ||
        (uint64_t)d->ne[0] * nrows(d) > UINT32_MAX)
        return no(w, "op %u: too many elements", nd->op);
    return 1;
}

int vkb_supports_op(lamina_backend *be, const lamina_node *node)
{
    if (be == NULL || node == NULL)
        return 0;
    return check_node(be, node, 0, NULL);
}

/* ---- pipelines ------------------------------------------------------------ */

void vkb_pipelines_destroy(lamina_backend *be)
{
    for (int i = 0; i < VKS_COUNT; i++) {
        if (be->pipes[i] != VK_NULL_HANDLE)
            vkDestroyPipeline(be->dev, be->pipes[i], NULL);
        be->pipes[i] = VK_NULL_HANDLE;
    }
}

static int pipeline(lamina_backend *be, int id, VkPipeline *out, char *err, size_t err_size)
{
    VkShaderModule mod;
    VkResult r;
    char what[96];

    if (be->pipes[id] != VK_NULL_HANDLE) {
        *out = be->pipes[id];
        return 0;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    VkShaderModuleCreateInfo smi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = vks_blobs[id].size,
        .pCode = (const uint32_t *)(const void *)vks_blobs[id].code,
    };
    snprintf(what, sizeof what, "vkCreateShaderModule(%s)", vks_blobs[id].name);
    r = vkCreateShaderModule(be->dev, &smi, NULL, &mod);
    if (r != VK_SUCCESS)
        return vkb_fail(be, r, what, err, err_size);
    /* the subgroup matrix-vector variants take their workgroup size and
     * rows per workgroup as specialization constants 0 and 1 */
    const int is_blk = strncmp(vks_blobs[id].name, "mmv_blk_", 8) == 0;
    const uint32_t spec_data[2] = { is_blk ? be->blk_ls : be->mmv_ls,
                                    is_blk ? be->blk_rows : be->mmv_rows };
    const VkSpecializationMapEntry spec_map[2] = { { 0, 0, 4 }, { 1, 4, 4 } };
    const VkSpecializationInfo spec = { 2, spec_map, sizeof spec_data, spec_data };
    const int is_mmv_sg = strncmp(vks_blobs[id].name, "mmv_sg_", 7) == 0 ||
                          strncmp(vks_blobs[id].name, "mmv_s16_", 8) == 0 || is_blk;
    VkComputePipelineCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = mod,
            .pName = "main",
            .pSpecializationInfo = is_mmv_sg ? &spec : NULL,
        },
        .layout = be->layout,
    };
    r = vkCreateComputePipelines(be->dev, be->pcache, 1, &cpi, NULL, &be->pipes[id]);
    vkDestroyShaderModule(be->dev, mod, NULL);
    if (r != VK_SUCCESS) {
        be->pipes[id] = VK_NULL_HANDLE;
        snprintf(what, sizeof what, "vkCreateComputePipelines(%s)", vks_blobs[id].name);
        return vkb_fail(be, r, what, err, err_size);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    vkb_log(be->host, LAMINA_LOG_DEBUG, "pipeline %s created in %.1f ms", vks_blobs[id].name,
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    *out = be->pipes[id];
    return 0;
}

/* ---- recording ------------------------------------------------------------ */

/* One binding: a buffer range and where the tensor starts inside it. */
typedef struct {
    lamina_buffer *buf;
    uint64_t base, range;
    uint32_t rel;
} binding;

/* Bind `len` bytes starting at byte `start` of `buf`. */
static binding bind_bytes(const lamina_backend *be, lamina_buffer *buf, uint64_t start, uint64_t len)
{
    binding b;

    b.buf = buf;
    b.base = start & ~(be->min_align - 1);
    b.rel = (uint32_t)(start - b.base);
    b.range = (b.rel + len + 3) & ~(uint64_t)3;
    if (b.base + b.range > buf->alloc_size)
        b.range = buf->alloc_size - b.base;
    return b;
}

static binding bind_tensor(const lamina_backend *be, const lamina_tensor *t)
{
    type_info ti;
    type_get(t->type, &ti);
    return bind_bytes(be, t->buffer, t->offset, tensor_span(t, &ti));
}

/* Rows [r0, r0 + *count) of a 2-D tensor that fit one binding. */
static binding bind_window(const lamina_backend *be, const lamina_tensor *t, uint64_t r0,
                           uint64_t *count)
{
    type_info ti;
    type_get(t->type, &ti);
    uint64_t row = (uint64_t)t->ne[0] / ti.block * ti.bytes;
    uint64_t rows = (uint64_t)t->ne[1] - r0;
    uint64_t start = t->offset + r0 * t->nb[1];
    uint64_t slack = start & (be->min_align - 1);
    uint64_t limit = (be->max_range & ~(uint64_t)3) - slack - 4;
    if (t->nb[1] > 0 && (rows - 1) * t->nb[1] + row > limit)
        rows = (limit - row) / t->nb[1] + 1;
    *count = rows;
    return bind_bytes(be, t->buffer, start, (rows - 1) * t->nb[1] + row);
}

typedef struct {
    VkBuffer buf;
    uint64_t lo, hi;
    int write;
} access;

typedef struct {
    lamina_backend *be;
    access *pend;           /* accesses since the last barrier */
    size_t n_pend, cap_pend;
    int failed;
    uint32_t dispatches, barriers;
} recorder;

/* Barrier when this dispatch's accesses conflict with pending ones. */
static void hazard(recorder *rc, const binding *b, const int *write, int n)
{
    int conflict = 0;

    for (int i = 0; i < n && !conflict; i++) {
        if (b[i].buf == NULL)
            continue;
        for (size_t j = 0; j < rc->n_pend; j++) {
            const access *p = &rc->pend[j];
            if (p->buf == b[i].buf->buf && p->lo < b[i].base + b[i].range &&
                b[i].base < p->hi && (p->write || write[i])) {
                conflict = 1;
                break;
            }
        }
    }
    if (conflict) {
        VkMemoryBarrier mb = {
            .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
            .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
            .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
        };
        vkCmdPipelineBarrier(rc->be->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
        rc->n_pend = 0;
        rc->barriers++;
    }
    for (int i = 0; i < n; i++) {
        if (b[i].buf == NULL)
            continue;
        if (rc->n_pend == rc->cap_pend) {
            size_t cap = rc->cap_pend ? rc->cap_pend * 2 : 32;
            access *p = realloc(rc->pend, cap * sizeof *p);
            if (p == NULL) {        /* fall back to a full barrier next time */
                rc->failed = 1;
                return;
            }
            rc->pend = p;
            rc->cap_pend = cap;
        }
        rc->pend[rc->n_pend++] = (access){ b[i].buf->buf, b[i].base, b[i].base + b[i].range,
                                           write[i] };
    }
}

/* Record one dispatch: shader `id`, bindings (dst first), push constants,
 * `groups` workgroups laid out on a 2-D grid. */
static int dispatch(recorder *rc, int id, const binding *b, int n_b, const void *pc,
                    size_t pc_size, uint64_t groups, char *err, size_t err_size)
{
    lamina_backend *be = rc->be;
    VkPipeline pipe = VK_NULL_HANDLE;
    VkDescriptorSet set;
    VkDescriptorBufferInfo bi[VKB_BINDINGS];
    VkWriteDescriptorSet wr[VKB_BINDINGS];
    int write[VKB_BINDINGS] = { 1, 0, 0, 0, 0 };
    uint32_t gx = 1, gy = 1;
    VkResult r;
    int ret;

    ret = pipeline(be, id, &pipe, err, err_size);
    if (ret < 0)
        return ret;
    VkDescriptorSetAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
        .descriptorPool = be->dpool,
        .descriptorSetCount = 1,
        .pSetLayouts = &be->dsl,
    };
    r = vkAllocateDescriptorSets(be->dev, &ai, &set);
    if (r != VK_SUCCESS)
        return vkb_fail(be, r, "vkAllocateDescriptorSets", err, err_size);
    for (uint32_t i = 0; i < VKB_BINDINGS; i++) {
        if ((int)i < n_b && b[i].buf != NULL)
            bi[i] = (VkDescriptorBufferInfo){ b[i].buf->buf, b[i].base, b[i].range };
        else
            bi[i] = (VkDescriptorBufferInfo){ be->dummy->buf, 0, VK_WHOLE_SIZE };
        wr[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    }
    vkUpdateDescriptorSets(be->dev, VKB_BINDINGS, wr, 0, NULL);

    if (rc->failed) {
        /* bookkeeping failed (host memory): be conservative */
        rc->n_pend = 0;
        VkMemoryBarrier mb = {
            .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
            .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
            .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
        };
        vkCmdPipelineBarrier(be->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    } else {
        hazard(rc, b, write, n_b);
    }
    vkCmdBindPipeline(be->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(be->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, be->layout, 0, 1, &set,
                            0, NULL);
    vkCmdPushConstants(be->cmd, be->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)pc_size, pc);
    if (!grid_for(be, groups, &gx, &gy)) {    /* checked by check_node */
        vkb_err(err, err_size, "%s: %llu workgroups exceed the device grid", vks_blobs[id].name,
                (unsigned long long)groups);
        return LAMINA_ENOTSUP;
    }
    const int prof = be->qpool != VK_NULL_HANDLE && be->n_q + 2 <= be->q_cap;
    if (prof)
        vkCmdWriteTimestamp(be->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, be->qpool, be->n_q);
    vkCmdDispatch(be->cmd, gx, gy, 1);
    if (prof) {
        vkCmdWriteTimestamp(be->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, be->qpool, be->n_q + 1);
        be->q_shader[be->n_q / 2] = id;
        be->n_q += 2;
    }
    rc->dispatches++;
    return 0;
}

static uint32_t u32(uint64_t v) { return (uint32_t)v; }
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* Dispatches a node needs (windows of a large weight tensor). */
static uint32_t node_dispatches(const lamina_backend *be, const lamina_node *nd)
{
    if (nd->op != LAMINA_OP_GET_ROWS && nd->op != LAMINA_OP_MUL_MAT)
        return 1;
    uint32_t n = 0;
    for (uint64_t r0 = 0; r0 < (uint64_t)nd->src[0].ne[1]; n++) {
        uint64_t cnt;
        bind_window(be, &nd->src[0], r0, &cnt);
        r0 += cnt;
    }
    return n;
}

static int record_node(recorder *rc, const lamina_node *nd, char *err, size_t err_size)
{
    lamina_backend *be = rc->be;
    const lamina_tensor *d = &nd->dst, *s = nd->src;
    binding b[VKB_BINDINGS];
    uint32_t pc[32];
    type_info ti;
    int ret = 0;

    memset(b, 0, sizeof b);
    memset(pc, 0, sizeof pc);
    b[0] = bind_tensor(be, d);

    switch (nd->op) {
    case LAMINA_OP_GET_ROWS: {
        type_get(s[0].type, &ti);
        b[2] = bind_tensor(be, &s[1]);
        uint64_t K = (uint64_t)s[0].ne[0], N = (uint64_t)s[1].ne[0];
        uint64_t groups_per_row = ti.block == 1 ? K : K / 4;
        for (uint64_t r0 = 0; r0 < (uint64_t)s[0].ne[1] && ret == 0;) {
            uint64_t cnt;
            b[1] = bind_window(be, &s[0], r0, &cnt);
            uint32_t p[] = { u32(K), u32(N), b[1].rel, u32(s[0].nb[1]), u32(r0), u32(cnt),
                             b[2].rel, b[0].rel, u32(d->nb[1]) };
            ret = dispatch(rc, ti.gr, b, 3, p, sizeof p, (groups_per_row * N + 255) / 256,
                           err, err_size);
            r0 += cnt;
        }
        return ret;
    }
    case LAMINA_OP_MUL_MAT: {
        type_get(s[0].type, &ti);
        b[2] = bind_tensor(be, &s[1]);
        uint64_t M = nrows(&s[1]);
        int vec = M <= 2;
        int id = !vec ? ti.mm : !be->use_subgroup ? ti.mmv : be->use_s16 && ti.mmv_s16 >= 0 ? ti.mmv_s16 : ti.mmv_sg;
        const int blk = vec && be->use_blk && ti.mmv_blk >= 0;
        if (blk)
            id = ti.mmv_blk;
        for (uint64_t r0 = 0; r0 < (uint64_t)s[0].ne[1] && ret == 0;) {
            uint64_t cnt;
            b[1] = bind_window(be, &s[0], r0, &cnt);
            uint32_t p[] = { u32(s[0].ne[0]), u32(M), u32(r0), u32(cnt), b[1].rel,
                             u32(s[0].nb[1]), b[2].rel, u32(s[1].nb[1]), u32(s[1].nb[2]),
                             u32(s[1].nb[3]), u32(s[1].ne[1]), u32(s[1].ne[2]), b[0].rel,
                             u32(d->nb[1]), u32(d->nb[2]), u32(d->nb[3]) };
            /* mul_mat_vec: 4 rows per workgroup (mmv_rows with subgroups,
             * blk_rows whole-block); mul_mat: 32 x 32 tiles */
            const uint64_t nr = blk ? be->blk_rows : be->use_subgroup ? be->mmv_rows : 4;
            uint64_t groups = vec ? ((cnt + nr - 1) / nr) * M : ((cnt + 31) / 32) * ((M + 31) / 32);
            ret = dispatch(rc, id, b, 3, p, sizeof p, groups, err, err_size);
            r0 += cnt;
        }
        return ret;
    }
    case LAMINA_OP_RMS_NORM: {
        b[1] = bind_tensor(be, &s[0]);
        int has_w = nd->n_src > 1 && s[1].buffer != NULL;
        if (has_w)
            b[2] = bind_tensor(be, &s[1]);
        uint32_t p[] = { u32(s[0].ne[0]), u32(nrows(&s[0])), u32(s[0].ne[1]), u32(s[0].ne[2]),
                         b[1].rel, u32(s[0].nb[1]), u32(s[0].nb[2]), u32(s[0].nb[3]),
                         b[0].rel, u32(d->nb[1]), u32(d->nb[2]), u32(d->nb[3]),
                         has_w ? b[2].rel : 0, u32(has_w), f2u(nd->fp[0]) };
        return dispatch(rc, VKS_rms_norm, b, 3, p, sizeof p, nrows(&s[0]), err, err_size);
    }
    case LAMINA_OP_NORM: {
        b[1] = bind_tensor(be, &s[0]);
        int has_w = nd->n_src > 1, has_b = nd->n_src > 2;
        if (has_w)
            b[2] = bind_tensor(be, &s[1]);
        if (has_b)
            b[3] = bind_tensor(be, &s[2]);
        uint32_t p[] = { u32(s[0].ne[0]), u32(nrows(&s[0])), u32(s[0].ne[1]), u32(s[0].ne[2]),
                         b[1].rel, u32(s[0].nb[1]), u32(s[0].nb[2]), u32(s[0].nb[3]),
                         b[0].rel, u32(d->nb[1]), u32(d->nb[2]), u32(d->nb[3]),
                         has_w ? b[2].rel : 0, u32(has_w), has_b ? b[3].rel : 0, u32(has_b),
                         f2u(nd->fp[0]) };
        return dispatch(rc, VKS_norm, b, 4, p, sizeof p, nrows(&s[0]), err, err_size);
    }
    case LAMINA_OP_TOPK: {
        b[1] = bind_tensor(be, &s[0]);
        uint32_t p[] = { u32(s[0].ne[0]), u32(s[0].ne[1]), u32(nd->ip[0]), b[1].rel,
                         u32(s[0].nb[1]), b[0].rel, u32(d->nb[1]) };
        return dispatch(rc, VKS_topk, b, 2, p, sizeof p, ((uint64_t)s[0].ne[1] + 63) / 64, err,
                        err_size);
    }
    case LAMINA_OP_MOE_WEIGHTS: {
        b[1] = bind_tensor(be, &s[0]);
        b[2] = bind_tensor(be, &s[1]);
        uint32_t p[] = { u32(s[0].ne[0]), u32(s[0].ne[1]), u32(s[1].ne[0]), u32(nd->ip[0]),
                         b[1].rel, u32(s[0].nb[1]), b[2].rel, u32(s[1].nb[1]), b[0].rel,
                         u32(d->nb[1]) };
        return dispatch(rc, VKS_moe_weights, b, 3, p, sizeof p, ((uint64_t)s[0].ne[1] + 63) / 64,
                        err, err_size);
    }
    case LAMINA_OP_MUL_MAT_ID: {
        type_get(s[0].type, &ti);
        for (int i = 0; i < 3; i++)
            b[i + 1] = bind_tensor(be, &s[i]);
        const uint64_t N = (uint64_t)s[0].ne[1], cols = (uint64_t)s[2].ne[0] * s[2].ne[1];
        /* the matrix-vector shader for every column (token, slot): 4 rows
         * per workgroup, mmv_rows with subgroups */
        const int id = be->use_subgroup ? ti.mmv_sg_id : ti.mmv_id;
        const uint64_t nr = be->use_subgroup ? be->mmv_rows : 4;
        uint32_t p[] = { u32(s[0].ne[0]), u32(cols), 0, u32(N), b[1].rel, u32(s[0].nb[1]),
                         b[2].rel, u32(s[1].nb[1]), u32(s[1].nb[2]), 0, u32(s[1].ne[1]), 0,
                         b[0].rel, u32(d->nb[1]), u32(d->nb[2]), 0,
                         u32(s[0].nb[2]), u32(s[0].ne[2]), u32(s[2].ne[0]), b[3].rel,
                         u32(s[2].nb[1]) };
        return dispatch(rc, id, b, 4, p, sizeof p, (N + nr - 1) / nr * cols, err, err_size);
    }
    case LAMINA_OP_MOE_SUM: {
        b[1] = bind_tensor(be, &s[0]);
        b[2] = bind_tensor(be, &s[1]);
        const uint64_t total = (uint64_t)s[0].ne[0] * s[0].ne[2];
        uint32_t p[] = { u32(s[0].ne[0]), u32(s[0].ne[1]), u32(s[0].ne[2]), b[1].rel,
                         u32(s[0].nb[1]), u32(s[0].nb[2]), b[2].rel, u32(s[1].nb[1]), b[0].rel,
                         u32(d->nb[1]) };
        return dispatch(rc, VKS_moe_sum, b, 3, p, sizeof p, (total + 255) / 256, err, err_size);
    }
    case LAMINA_OP_ADD: case LAMINA_OP_MUL: case LAMINA_OP_SCALE:
    case LAMINA_OP_GLU: case LAMINA_OP_COPY: case LAMINA_OP_UNARY: {
        uint32_t op;
        b[1] = bind_tensor(be, &s[0]);
        int two = nd->op != LAMINA_OP_SCALE && nd->op != LAMINA_OP_COPY && nd->op != LAMINA_OP_UNARY;
        if (two)
            b[2] = bind_tensor(be, &s[1]);
        switch (nd->op) {
        case LAMINA_OP_ADD: op = 0; break;
        case LAMINA_OP_MUL: op = 1; break;
        case LAMINA_OP_SCALE: op = 2; break;
        case LAMINA_OP_GLU: op = nd->ip[0] == LAMINA_ACT_SILU ? 3 : 4; break;
        case LAMINA_OP_UNARY: op = nd->ip[0] == LAMINA_ACT_SILU ? 6 : 7; break;
        default: op = 5; break;
        }
        /* a broadcast B ([K]) has row strides 0 */
        int bcast = two && !same_shape(&s[1], &s[0]);
        uint64_t total = (uint64_t)d->ne[0] * nrows(d);
        uint32_t p[] = { op, u32(d->ne[0]), u32(d->ne[1]), u32(d->ne[2]), u32(total),
                         b[0].rel, u32(d->nb[1]), u32(d->nb[2]), u32(d->nb[3]),
                         b[1].rel, u32(s[0].nb[1]), u32(s[0].nb[2]), u32(s[0].nb[3]),
                         two ? b[2].rel : 0, two && !bcast ? u32(s[1].nb[1]) : 0,
                         two && !bcast ? u32(s[1].nb[2]) : 0, two && !bcast ? u32(s[1].nb[3]) : 0,
                         s[0].type, d->type, f2u(nd->fp[0]) };
        return dispatch(rc, VKS_eltwise, b, 3, p, sizeof p, (total + 255) / 256, err, err_size);
    }
    case LAMINA_OP_ROPE: {
        b[1] = bind_tensor(be, &s[0]);
        b[2] = bind_tensor(be, &s[1]);
        int has_ff = nd->n_src > 2 && s[2].buffer != NULL;
        if (has_ff)
            b[3] = bind_tensor(be, &s[2]);
        float fs = nd->fp[1] == 0.0f ? 1.0f : nd->fp[1];
        uint32_t p[] = { u32(s[0].ne[0]), u32(s[0].ne[1]), u32(s[0].ne[2]), u32(nd->ip[1]),
                         u32(nd->ip[0]), u32(has_ff), b[1].rel, u32(s[0].nb[1]), u32(s[0].nb[2]),
                         b[0].rel, u32(d->nb[1]), u32(d->nb[2]), b[2].rel, has_ff ? b[3].rel : 0,
                         f2u(nd->fp[0]), f2u(fs) };
        uint64_t pairs = (uint64_t)s[0].ne[0] / 2 * s[0].ne[1] * s[0].ne[2];
        return dispatch(rc, VKS_rope, b, 4, p, sizeof p, (pairs + 255) / 256, err, err_size);
    }
    case LAMINA_OP_SET_ROWS: {
        b[1] = bind_tensor(be, &s[0]);
        b[2] = bind_tensor(be, &s[1]);
        uint32_t p[] = { u32(s[0].ne[0]), u32(s[0].ne[1]), b[1].rel, u32(s[0].nb[1]), b[2].rel,
                         b[0].rel, u32(d->nb[1]), d->type, u32(d->ne[1]) };
        uint64_t total = (uint64_t)s[0].ne[0] * s[0].ne[1];
        return dispatch(rc, VKS_set_rows, b, 3, p, sizeof p, (total + 255) / 256, err, err_size);
    }
    case LAMINA_OP_ATTENTION: {
        for (int i = 0; i < 4; i++)
            b[i + 1] = bind_tensor(be, &s[i]);
        uint64_t D = s[0].ne[0], Hq = s[0].ne[1], N = s[0].ne[2];
        uint64_t Hkv = s[1].ne[0] / D, Dv = s[2].ne[0] / Hkv;
        uint32_t p[] = { u32(D), u32(Dv), u32(Hq), u32(Hkv), u32(N), u32(nd->ip[0]),
                         u32(s[1].ne[1]), b[1].rel, u32(s[0].nb[1]), u32(s[0].nb[2]), b[2].rel,
                         u32(s[1].nb[1]), s[1].type, b[3].rel, u32(s[2].nb[1]), s[2].type,
                         b[4].rel, b[0].rel, u32(d->nb[1]), f2u(nd->fp[0]), f2u(nd->fp[1]) };
        return dispatch(rc, VKS_attention, b, 5, p, sizeof p, Hq * N, err, err_size);
    }
    default:
        vkb_err(err, err_size, "op %u not supported", nd->op);
        return LAMINA_ENOTSUP;
    }
}

/* A descriptor pool with room for `sets` sets, reset for reuse. */
static int pool_ready(lamina_backend *be, uint32_t sets, char *err, size_t err_size)
{
    VkResult r;

    if (be->dpool != VK_NULL_HANDLE && be->dpool_sets >= sets) {
        r = vkResetDescriptorPool(be->dev, be->dpool, 0);
        if (r != VK_SUCCESS)
            return vkb_fail(be, r, "vkResetDescriptorPool", err, err_size);
        return 0;
    }
    if (be->dpool != VK_NULL_HANDLE)
        vkDestroyDescriptorPool(be->dev, be->dpool, NULL);
    be->dpool = VK_NULL_HANDLE;
    uint32_t cap = be->dpool_sets ? be->dpool_sets : 64;
    while (cap < sets)
        cap *= 2;
    VkDescriptorPoolSize ps = {
        .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
        .descriptorCount = cap * VKB_BINDINGS,
    };
    VkDescriptorPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = cap,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
    };
    r = vkCreateDescriptorPool(be->dev, &pci, NULL, &be->dpool);
    if (r != VK_SUCCESS) {
        be->dpool = VK_NULL_HANDLE;
        be->dpool_sets = 0;
        return vkb_fail(be, r, "vkCreateDescriptorPool", err, err_size);
    }
    be->dpool_sets = cap;
    return 0;
}

int vkb_graph_compute(lamina_backend *be, const lamina_graph *graph, char *err, size_t err_size)
{
    recorder rc;
    uint32_t sets = 0;
    char reason[200];
    why w = { reason, sizeof reason };
    int ret;
    VkResult r;

    if (be == NULL || graph == NULL || (graph->n_nodes > 0 && graph->nodes == NULL)) {
        vkb_err(err, err_size, "graph_compute: NULL argument");
        return LAMINA_EINVAL;
    }
    if (be->lost) {
        vkb_err(err, err_size, "the Vulkan device was lost; close this instance");
        return LAMINA_EDEVLOST;
    }
    /* 1. every node valid before anything is recorded */
    for (uint32_t i = 0; i < graph->n_nodes; i++) {
        const lamina_node *nd = lamina_graph_node(graph, i);
        if (nd->op == LAMINA_OP_NONE)
            continue;
        if (!check_node(be, nd, 1, &w)) {
            vkb_err(err, err_size, "node %u: %s", i, reason);
            return LAMINA_ENOTSUP;
        }
        sets += node_dispatches(be, nd);
    }
    if (sets == 0)
        return 0;
    if (be->lose_after == 0)
        return vkb_fail(be, VK_ERROR_DEVICE_LOST, "vkQueueSubmit (simulated: LAMINA_VULKAN_LOSE_AFTER)", err,
                        err_size);
    if (be->lose_after > 0)
        be->lose_after--;
    ret = pool_ready(be, sets, err, err_size);
    if (ret < 0)
        return ret;

    /* 2. record all nodes into one command buffer */
    memset(&rc, 0, sizeof rc);
    rc.be = be;
    ret = vkb_begin_cmd(be, err, err_size);
    if (ret < 0)
        return ret;
    be->n_q = 0;
    if (be->qpool != VK_NULL_HANDLE)
        vkCmdResetQueryPool(be->cmd, be->qpool, 0, be->q_cap);
    for (uint32_t i = 0; i < graph->n_nodes && ret == 0; i++) {
        if (lamina_graph_node(graph, i)->op != LAMINA_OP_NONE)
            ret = record_node(&rc, lamina_graph_node(graph, i), err, err_size);
    }
    free(rc.pend);
    r = vkEndCommandBuffer(be->cmd);
    if (ret < 0)
        return ret;
    if (r != VK_SUCCESS)
        return vkb_fail(be, r, "vkEndCommandBuffer", err, err_size);

    /* 3. submit and wait */
    ret = vkb_submit_wait(be, "graph", err, err_size);
    if (ret < 0)
        return ret;
    if (be->qpool != VK_NULL_HANDLE && be->n_q > 0) {
        uint64_t *ts = malloc(sizeof *ts * be->n_q);
        if (ts != NULL && vkGetQueryPoolResults(be->dev, be->qpool, 0, be->n_q, sizeof *ts * be->n_q, ts,
                                                sizeof *ts, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) ==
                              VK_SUCCESS) {
            for (uint32_t q = 0; q + 1 < be->n_q; q += 2) {
                be->prof_ns[be->q_shader[q / 2]] += (double)(ts[q + 1] - ts[q]) * be->q_period;
                be->prof_n[be->q_shader[q / 2]]++;
            }
        }
        free(ts);
    }
    vkb_log(be->host, LAMINA_LOG_DEBUG, "graph: %u nodes, %u dispatches, %u barriers",
            graph->n_nodes, rc.dispatches, rc.barriers);
    return 0;
}
