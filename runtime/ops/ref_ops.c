/*
 * ref_ops.c - the reference implementation of every lamina_op (ref.h).
 *
 * The oracle: scalar code that follows the op semantics of plugin.h line by
 * line.  Dot products, sums and transcendental functions are evaluated in
 * double and rounded to float once, when stored.  Every node is validated
 * first (op, n_src, types, shapes, strides, parameters, overlaps), and
 * data-dependent preconditions (row ids, attention positions) are checked
 * while running; a bad node gives LAMINA_EINVAL or LAMINA_ENOTSUP with a
 * message naming the operand.
 *
 * Each op computes its whole result into a dense float scratch array before
 * anything is stored, so a dst that aliases a source exactly is safe for
 * every op that allows it.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lamina/quant.h"
#include "ref.h"

/* Largest ne per dimension accepted (keeps every size product in 64 bits). */
#define REF_MAX_NE (INT64_C(1) << 40)

#define SQRT_2_OVER_PI 0.79788456080286535588


/* What each operand is called in messages. */
static const char *const roles[LAMINA_OP_COUNT][LAMINA_MAX_SRC + 1] = {
    [LAMINA_OP_GET_ROWS]  = { "table", "ids" },
    [LAMINA_OP_MUL_MAT]   = { "W", "X" },
    [LAMINA_OP_RMS_NORM]  = { "X", "weight" },
    [LAMINA_OP_ADD]       = { "A", "B" },
    [LAMINA_OP_MUL]       = { "A", "B" },
    [LAMINA_OP_SCALE]     = { "A" },
    [LAMINA_OP_ROPE]      = { "X", "pos", "freq factors" },
    [LAMINA_OP_SET_ROWS]  = { "X", "rows" },
    [LAMINA_OP_ATTENTION] = { "Q", "K cache", "V cache", "positions", "sinks" },
    [LAMINA_OP_GLU]       = { "gate", "up" },
    [LAMINA_OP_COPY]      = { "src" },
    [LAMINA_OP_TOPK]        = { "X" },
    [LAMINA_OP_MOE_WEIGHTS] = { "logits", "ids" },
    [LAMINA_OP_MUL_MAT_ID]  = { "W", "A", "ids" },
    [LAMINA_OP_MOE_SUM]     = { "Y", "weights" },
    [LAMINA_OP_NORM]        = { "X", "weight", "bias" },
    [LAMINA_OP_UNARY]       = { "X" },
};


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

static const char *type_name(uint32_t type)
{
    return lamina_type_get(type)->name;
}

/* ------------------------------------------------------------------------ */
/* Tensor geometry                                                          */

static int64_t n_rows(const lamina_tensor *t)
{
    return t->ne[1] * t->ne[2] * t->ne[3];
}

static int64_t n_elems(const lamina_tensor *t)
{
    return t->ne[0] * n_rows(t);
}

/* Bytes from the tensor's first byte to one past its last: the last row's
 * start plus a row.  Only for tensors that passed check_tensor. */
static uint64_t tensor_extent(const lamina_tensor *t)
{
    uint64_t end = lamina_row_size(t->type, t->ne[0]);
    for (int i = 1; i < 4; i++)
        end += (uint64_t)(t->ne[i] - 1) * t->nb[i];
    return end;
}

static int same_shape(const lamina_tensor *a, const lamina_tensor *b)
{
    return a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1] &&
           a->ne[2] == b->ne[2] && a->ne[3] == b->ne[3];
}

static int shape_is(const lamina_tensor *t, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    return t->ne[0] == n0 && t->ne[1] == n1 && t->ne[2] == n2 && t->ne[3] == n3;
}

/*
 * Type known, ne >= 1, ne[0] a whole number of blocks, rows packed
 * (nb[0] = block bytes), and the extent fits in 64 bits.
 */
static int check_tensor(const lamina_tensor *t, const char *opn, const char *what,
                        char *err, size_t err_size)
{
    const lamina_type_traits *tr = lamina_type_get(t->type);
    if (tr->block_size == 0) {
        set_err(err, err_size, "%s: %s has unknown type %u", opn, what, t->type);
        return LAMINA_ENOTSUP;
    }
    for (int i = 0; i < 4; i++) {
        if (t->ne[i] < 1 || t->ne[i] > REF_MAX_NE) {
            set_err(err, err_size, "%s: %s ne[%d] = %lld out of range", opn, what, i,
                    (long long)t->ne[i]);
            return LAMINA_EINVAL;
        }
    }
    if (t->ne[0] % tr->block_size != 0) {
        set_err(err, err_size, "%s: %s ne[0] = %lld is not a multiple of the %s block size %u",
                opn, what, (long long)t->ne[0], tr->name, tr->block_size);
        return LAMINA_EINVAL;
    }
    if (t->nb[0] != tr->type_size) {
        set_err(err, err_size, "%s: %s nb[0] = %llu, expected %u (one %s block)", opn, what,
                (unsigned long long)t->nb[0], tr->type_size, tr->name);
        return LAMINA_EINVAL;
    }
    /* extent = row + sum (ne[i]-1) nb[i], without overflow */
    uint64_t end = lamina_row_size(t->type, t->ne[0]);
    if (end == 0) {
        set_err(err, err_size, "%s: %s row size overflows", opn, what);
        return LAMINA_EINVAL;
    }
    for (int i = 1; i < 4; i++) {
        uint64_t step;
        if (__builtin_mul_overflow((uint64_t)(t->ne[i] - 1), t->nb[i], &step) ||
            __builtin_add_overflow(end, step, &end)) {
            set_err(err, err_size, "%s: %s strides overflow", opn, what);
            return LAMINA_EINVAL;
        }
    }
    if (__builtin_add_overflow(end, t->offset, &end)) {
        set_err(err, err_size, "%s: %s offset overflows", opn, what);
        return LAMINA_EINVAL;
    }
    return 0;
}

/* A destination's rows must not overlap each other: sorted by stride, each
 * used dimension must step past everything the inner ones cover. */
static int rows_disjoint(const lamina_tensor *t)
{
    int dims[3], nd = 0;
    for (int i = 1; i < 4; i++)
        if (t->ne[i] > 1)
            dims[nd++] = i;
    for (int a = 0; a < nd; a++)           /* insertion sort by nb */
        for (int b = a + 1; b < nd; b++)
            if (t->nb[dims[b]] < t->nb[dims[a]]) {
                int tmp = dims[a]; dims[a] = dims[b]; dims[b] = tmp;
            }
    uint64_t covered = lamina_row_size(t->type, t->ne[0]);
    for (int a = 0; a < nd; a++) {
        const int i = dims[a];
        if (t->nb[i] < covered)
            return 0;
        covered = t->nb[i] * (uint64_t)(t->ne[i] - 1) + covered;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Structural validation                                                    */

#define CHECK(cond, ...)                                       \
    do {                                                       \
        if (!(cond)) {                                         \
            set_err(err, err_size, __VA_ARGS__);               \
            return LAMINA_EINVAL;                             \
        }                                                      \
    } while (0)

#define CHECK_TYPE(cond, ...)                                  \
    do {                                                       \
        if (!(cond)) {                                         \
            set_err(err, err_size, __VA_ARGS__);               \
            return LAMINA_ENOTSUP;                            \
        }                                                      \
    } while (0)

static int is_weight_type(uint32_t type)
{
    const lamina_type_traits *t = lamina_type_get(type);
    return t->block_size != 0 && type != LAMINA_TYPE_I32;
}

static int is_cache_type(uint32_t type)
{
    return type == LAMINA_TYPE_F32 || type == LAMINA_TYPE_F16;
}

/* May dst alias src[0] exactly for this op? */
static int op_allows_alias(uint32_t op)
{
    return op != LAMINA_OP_SET_ROWS;
}

static int validate(const lamina_node *node, char *err, size_t err_size)
{
    if (node == NULL) {
        set_err(err, err_size, "node is NULL");
        return LAMINA_EINVAL;
    }
    const uint32_t op = node->op;
    if (op == LAMINA_OP_NONE || op >= LAMINA_OP_COUNT) {
        set_err(err, err_size, "unknown op %u", op);
        return LAMINA_ENOTSUP;
    }
    const char *opn = lamina_op_name(op);
    const lamina_tensor *d = &node->dst;
    lamina_tensor s[LAMINA_MAX_SRC + 1];   /* src[0..3], src4 */
    memcpy(s, node->src, sizeof node->src);
    s[LAMINA_MAX_SRC] = node->n_src > LAMINA_MAX_SRC ? node->src4 : node->src[0];
    const float *fp = node->fp;
    const int32_t *ip = node->ip;

    /* number of sources */
    uint32_t lo = 1, hi = 1;
    switch (op) {
    case LAMINA_OP_RMS_NORM: lo = 1; hi = 2; break;
    case LAMINA_OP_NORM:     lo = 1; hi = 3; break;
    case LAMINA_OP_ROPE:     lo = 2; hi = 3; break;
    case LAMINA_OP_ATTENTION: lo = 4; hi = 5; break;
    case LAMINA_OP_SCALE:
    case LAMINA_OP_UNARY:
    case LAMINA_OP_TOPK:
    case LAMINA_OP_COPY:     lo = hi = 1; break;
    case LAMINA_OP_MUL_MAT_ID: lo = hi = 3; break;
    default:                 lo = hi = 2; break;
    }
    if (lo == hi)
        CHECK(node->n_src == lo, "%s: n_src = %u, expected %u", opn, node->n_src, lo);
    else
        CHECK(node->n_src >= lo && node->n_src <= hi, "%s: n_src = %u, expected %u or %u",
              opn, node->n_src, lo, hi);

    /* every operand: known type, sane shape and strides */
    int rc = check_tensor(d, opn, "dst", err, err_size);
    if (rc) return rc;
    for (uint32_t i = 0; i < node->n_src; i++) {
        char what[48];
        snprintf(what, sizeof what, "src%u (%s)", i, roles[op][i] ? roles[op][i] : "?");
        rc = check_tensor(&s[i], opn, what, err, err_size);
        if (rc) return rc;
    }
    CHECK(rows_disjoint(d), "%s: dst rows overlap each other (strides %llu %llu %llu)", opn,
          (unsigned long long)d->nb[1], (unsigned long long)d->nb[2],
          (unsigned long long)d->nb[3]);

    /* dst type: F32 everywhere except SET_ROWS (F32/F16) and COPY (F32/F16) */
    if (op == LAMINA_OP_SET_ROWS || op == LAMINA_OP_COPY)
        CHECK_TYPE(is_cache_type(d->type), "%s: dst must be f32 or f16, got %s", opn,
                   type_name(d->type));
    else if (op == LAMINA_OP_TOPK)
        CHECK_TYPE(d->type == LAMINA_TYPE_I32, "%s: dst must be i32, got %s", opn,
                   type_name(d->type));
    else
        CHECK_TYPE(d->type == LAMINA_TYPE_F32, "%s: dst must be f32, got %s", opn,
                   type_name(d->type));

    switch (op) {
    case LAMINA_OP_GET_ROWS:
        CHECK_TYPE(is_weight_type(s[0].type), "get_rows: src0 (table) type %s has no dequantizer",
                   type_name(s[0].type));
        CHECK(s[0].ne[2] == 1 && s[0].ne[3] == 1, "get_rows: src0 (table) must be 2-D [K, R]");
        CHECK_TYPE(s[1].type == LAMINA_TYPE_I32, "get_rows: src1 (ids) must be i32, got %s",
                   type_name(s[1].type));
        CHECK(shape_is(&s[1], s[1].ne[0], 1, 1, 1), "get_rows: src1 (ids) must be 1-D [N]");
        CHECK(shape_is(d, s[0].ne[0], s[1].ne[0], 1, 1),
              "get_rows: dst shape [%lld, %lld, %lld, %lld], expected [K=%lld, N=%lld]",
              (long long)d->ne[0], (long long)d->ne[1], (long long)d->ne[2],
              (long long)d->ne[3], (long long)s[0].ne[0], (long long)s[1].ne[0]);
        break;

    case LAMINA_OP_MUL_MAT:
        CHECK_TYPE(is_weight_type(s[0].type), "mul_mat: src0 (W) type %s has no dequantizer",
                   type_name(s[0].type));
        CHECK(s[0].ne[2] == 1 && s[0].ne[3] == 1, "mul_mat: src0 (W) must be 2-D [K, N]");
        CHECK_TYPE(s[1].type == LAMINA_TYPE_F32, "mul_mat: src1 (X) must be f32, got %s",
                   type_name(s[1].type));
        CHECK(shape_is(&s[1], s[0].ne[0], s[1].ne[1], 1, 1),
              "mul_mat: src1 (X) shape [%lld, %lld, %lld, %lld], expected [K=%lld, M]",
              (long long)s[1].ne[0], (long long)s[1].ne[1], (long long)s[1].ne[2],
              (long long)s[1].ne[3], (long long)s[0].ne[0]);
        CHECK(shape_is(d, s[0].ne[1], s[1].ne[1], 1, 1),
              "mul_mat: dst shape [%lld, %lld, %lld, %lld], expected [N=%lld, M=%lld]",
              (long long)d->ne[0], (long long)d->ne[1], (long long)d->ne[2],
              (long long)d->ne[3], (long long)s[0].ne[1], (long long)s[1].ne[1]);
        break;

    case LAMINA_OP_RMS_NORM:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "rms_norm: src0 (X) must be f32, got %s",
                   type_name(s[0].type));
        if (node->n_src == 2) {
            CHECK_TYPE(s[1].type == LAMINA_TYPE_F32, "rms_norm: src1 (weight) must be f32, got %s",
                       type_name(s[1].type));
            CHECK(shape_is(&s[1], s[0].ne[0], 1, 1, 1), "rms_norm: src1 (weight) must be [K=%lld]",
                  (long long)s[0].ne[0]);
        }
        CHECK(same_shape(d, &s[0]), "rms_norm: dst shape differs from src0 (X)");
        CHECK(isfinite(fp[0]) && fp[0] >= 0.0f, "rms_norm: eps (fp[0]) = %g must be >= 0",
              (double)fp[0]);
        break;

    case LAMINA_OP_NORM:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "norm: src0 (X) must be f32, got %s",
                   type_name(s[0].type));
        for (uint32_t i = 1; i < node->n_src; i++) {
            CHECK_TYPE(s[i].type == LAMINA_TYPE_F32, "norm: src%u (%s) must be f32, got %s", i,
                       roles[op][i], type_name(s[i].type));
            CHECK(shape_is(&s[i], s[0].ne[0], 1, 1, 1), "norm: src%u (%s) must be [K=%lld]", i,
                  roles[op][i], (long long)s[0].ne[0]);
        }
        CHECK(same_shape(d, &s[0]), "norm: dst shape differs from src0 (X)");
        CHECK(isfinite(fp[0]) && fp[0] >= 0.0f, "norm: eps (fp[0]) = %g must be >= 0",
              (double)fp[0]);
        break;

    case LAMINA_OP_UNARY:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "unary: src0 (X) must be f32, got %s",
                   type_name(s[0].type));
        CHECK(same_shape(d, &s[0]), "unary: dst shape differs from src0 (X)");
        CHECK_TYPE(ip[0] == LAMINA_ACT_SILU || ip[0] == LAMINA_ACT_GELU_TANH,
                   "unary: act (ip[0]) = %d is unknown", ip[0]);
        break;

    case LAMINA_OP_ADD:
    case LAMINA_OP_MUL:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "%s: src0 (A) must be f32, got %s", opn,
                   type_name(s[0].type));
        CHECK_TYPE(s[1].type == LAMINA_TYPE_F32, "%s: src1 (B) must be f32, got %s", opn,
                   type_name(s[1].type));
        CHECK(same_shape(&s[1], &s[0]) || shape_is(&s[1], s[0].ne[0], 1, 1, 1),
              "%s: src1 (B) shape [%lld, %lld, %lld, %lld] is neither A's nor [K=%lld]", opn,
              (long long)s[1].ne[0], (long long)s[1].ne[1], (long long)s[1].ne[2],
              (long long)s[1].ne[3], (long long)s[0].ne[0]);
        CHECK(same_shape(d, &s[0]), "%s: dst shape differs from src0 (A)", opn);
        break;

    case LAMINA_OP_SCALE:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "scale: src0 (A) must be f32, got %s",
                   type_name(s[0].type));
        CHECK(same_shape(d, &s[0]), "scale: dst shape differs from src0 (A)");
        CHECK(isfinite(fp[0]), "scale: s (fp[0]) is not finite");
        break;

    case LAMINA_OP_ROPE: {
        const int32_t mode = ip[0], n_rot = ip[1];
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "rope: src0 (X) must be f32, got %s",
                   type_name(s[0].type));
        CHECK(s[0].ne[3] == 1, "rope: src0 (X) must be 3-D [D, H, N]");
        CHECK_TYPE(s[1].type == LAMINA_TYPE_I32, "rope: src1 (pos) must be i32, got %s",
                   type_name(s[1].type));
        CHECK(shape_is(&s[1], s[0].ne[2], 1, 1, 1), "rope: src1 (pos) must be [N=%lld]",
              (long long)s[0].ne[2]);
        CHECK(same_shape(d, &s[0]), "rope: dst shape differs from src0 (X)");
        CHECK_TYPE(mode == LAMINA_ROPE_NORM || mode == LAMINA_ROPE_NEOX,
                   "rope: mode (ip[0]) = %d is neither norm (0) nor neox (2)", mode);
        CHECK(n_rot >= 2 && n_rot % 2 == 0 && n_rot <= s[0].ne[0],
              "rope: n_rot (ip[1]) = %d must be even, >= 2 and <= D = %lld", n_rot,
              (long long)s[0].ne[0]);
        CHECK(isfinite(fp[0]) && fp[0] > 0.0f, "rope: freq_base (fp[0]) = %g must be > 0",
              (double)fp[0]);
        CHECK(isfinite(fp[1]), "rope: freq_scale (fp[1]) is not finite");
        CHECK(isfinite(fp[2]) && isfinite(fp[3]) && fp[3] >= 0.0f,
              "rope: ext_factor (fp[2]) = %g and attn_factor (fp[3]) = %g must be finite, attn_factor >= 0",
              (double)fp[2], (double)fp[3]);
        if (fp[2] != 0.0f)
            CHECK(ip[2] > 0 && fp[1] > 0.0f && isfinite(fp[4]) && isfinite(fp[5]) && fp[4] > 0.0f &&
                  fp[5] > 0.0f,
                  "rope: YaRN needs n_ctx_orig (ip[2]) = %d > 0, freq_scale (fp[1]) = %g > 0 and "
                  "beta_fast, beta_slow (fp[4], fp[5]) = %g, %g > 0",
                  ip[2], (double)fp[1], (double)fp[4], (double)fp[5]);
        if (node->n_src == 3) {
            CHECK_TYPE(s[2].type == LAMINA_TYPE_F32, "rope: src2 (freq factors) must be f32, got %s",
                       type_name(s[2].type));
            CHECK(shape_is(&s[2], n_rot / 2, 1, 1, 1),
                  "rope: src2 (freq factors) must be [n_rot/2 = %d]", n_rot / 2);
        }
        break;
    }

    case LAMINA_OP_SET_ROWS:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "set_rows: src0 (X) must be f32, got %s",
                   type_name(s[0].type));
        CHECK(s[0].ne[2] == 1 && s[0].ne[3] == 1, "set_rows: src0 (X) must be 2-D [K, N]");
        CHECK_TYPE(s[1].type == LAMINA_TYPE_I32, "set_rows: src1 (rows) must be i32, got %s",
                   type_name(s[1].type));
        CHECK(shape_is(&s[1], s[0].ne[1], 1, 1, 1), "set_rows: src1 (rows) must be [N=%lld]",
              (long long)s[0].ne[1]);
        CHECK(d->ne[0] == s[0].ne[0] && d->ne[2] == 1 && d->ne[3] == 1,
              "set_rows: dst must be [K=%lld, R]", (long long)s[0].ne[0]);
        break;

    case LAMINA_OP_ATTENTION: {
        const int64_t D = s[0].ne[0], Hq = s[0].ne[1], N = s[0].ne[2];
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "attention: src0 (Q) must be f32, got %s",
                   type_name(s[0].type));
        CHECK(s[0].ne[3] == 1, "attention: src0 (Q) must be 3-D [D, Hq, N]");
        CHECK_TYPE(is_cache_type(s[1].type), "attention: src1 (K cache) must be f16 or f32, got %s",
                   type_name(s[1].type));
        CHECK_TYPE(is_cache_type(s[2].type), "attention: src2 (V cache) must be f16 or f32, got %s",
                   type_name(s[2].type));
        CHECK(s[1].ne[2] == 1 && s[1].ne[3] == 1 && s[1].ne[0] % D == 0,
              "attention: src1 (K cache) must be [D*Hkv, R] with D = %lld", (long long)D);
        const int64_t Hkv = s[1].ne[0] / D;
        CHECK(Hq % Hkv == 0, "attention: Hq = %lld is not a multiple of Hkv = %lld",
              (long long)Hq, (long long)Hkv);
        CHECK(s[2].ne[2] == 1 && s[2].ne[3] == 1 && s[2].ne[0] % Hkv == 0,
              "attention: src2 (V cache) must be [Dv*Hkv, R] with Hkv = %lld", (long long)Hkv);
        const int64_t Dv = s[2].ne[0] / Hkv;
        CHECK_TYPE(s[3].type == LAMINA_TYPE_I32, "attention: src3 (positions) must be i32, got %s",
                   type_name(s[3].type));
        CHECK(shape_is(&s[3], 2, N, 1, 1), "attention: src3 (positions) must be [2, N=%lld]",
              (long long)N);
        CHECK(shape_is(d, Dv * Hq, N, 1, 1),
              "attention: dst shape [%lld, %lld, %lld, %lld], expected [Dv*Hq=%lld, N=%lld]",
              (long long)d->ne[0], (long long)d->ne[1], (long long)d->ne[2],
              (long long)d->ne[3], (long long)(Dv * Hq), (long long)N);
        CHECK(ip[0] >= 0, "attention: window (ip[0]) = %d must be >= 0", ip[0]);
        CHECK(isfinite(fp[0]), "attention: scale (fp[0]) is not finite");
        CHECK(isfinite(fp[1]) && fp[1] >= 0.0f, "attention: softcap (fp[1]) = %g must be >= 0",
              (double)fp[1]);
        if (node->n_src == 5) {
            CHECK_TYPE(s[4].type == LAMINA_TYPE_F32, "attention: src4 (sinks) must be f32, got %s",
                       type_name(s[4].type));
            CHECK(shape_is(&s[4], Hq, 1, 1, 1), "attention: src4 (sinks) must be [Hq=%lld]",
                  (long long)Hq);
        }
        break;
    }

    case LAMINA_OP_GLU:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "glu: src0 (gate) must be f32, got %s",
                   type_name(s[0].type));
        CHECK_TYPE(s[1].type == LAMINA_TYPE_F32, "glu: src1 (up) must be f32, got %s",
                   type_name(s[1].type));
        CHECK(same_shape(&s[1], &s[0]), "glu: src1 (up) shape differs from src0 (gate)");
        CHECK(same_shape(d, &s[0]), "glu: dst shape differs from src0 (gate)");
        CHECK_TYPE(ip[0] == LAMINA_ACT_SILU || ip[0] == LAMINA_ACT_GELU_TANH ||
                   ip[0] == LAMINA_ACT_SWIGLU_OAI,
                   "glu: act (ip[0]) = %d is unknown", ip[0]);
        if (ip[0] == LAMINA_ACT_SWIGLU_OAI)
            CHECK(isfinite(fp[0]) && isfinite(fp[1]) && fp[1] > 0.0f,
                  "glu: swiglu_oai alpha (fp[0]) = %g and limit (fp[1]) = %g must be finite, limit > 0",
                  (double)fp[0], (double)fp[1]);
        break;

    case LAMINA_OP_COPY:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32 || s[0].type == LAMINA_TYPE_F16 ||
                   s[0].type == LAMINA_TYPE_BF16,
                   "copy: src0 must be f32, f16 or bf16, got %s", type_name(s[0].type));
        CHECK(same_shape(d, &s[0]), "copy: dst shape differs from src0");
        break;

    case LAMINA_OP_TOPK:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "topk: src0 (X) must be f32, got %s",
                   type_name(s[0].type));
        CHECK(s[0].ne[2] == 1 && s[0].ne[3] == 1, "topk: src0 (X) must be 2-D [N, T]");
        CHECK(ip[0] >= 1 && ip[0] <= s[0].ne[0], "topk: k (ip[0]) = %d outside [1, N=%lld]", ip[0],
              (long long)s[0].ne[0]);
        CHECK(shape_is(d, ip[0], s[0].ne[1], 1, 1), "topk: dst must be [k=%d, T=%lld]", ip[0],
              (long long)s[0].ne[1]);
        break;

    case LAMINA_OP_MOE_WEIGHTS:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "moe_weights: src0 (logits) must be f32, got %s",
                   type_name(s[0].type));
        CHECK_TYPE(s[1].type == LAMINA_TYPE_I32, "moe_weights: src1 (ids) must be i32, got %s",
                   type_name(s[1].type));
        CHECK(shape_is(&s[0], s[0].ne[0], s[0].ne[1], 1, 1), "moe_weights: src0 (logits) must be 2-D [N, T]");
        CHECK(shape_is(&s[1], s[1].ne[0], s[0].ne[1], 1, 1) && s[1].ne[0] <= s[0].ne[0],
              "moe_weights: src1 (ids) must be [k <= N, T=%lld]", (long long)s[0].ne[1]);
        CHECK(same_shape(d, &s[1]), "moe_weights: dst shape differs from src1 (ids)");
        CHECK(ip[0] == 0 || ip[0] == 1, "moe_weights: ip[0] = %d is neither 0 nor 1", ip[0]);
        break;

    case LAMINA_OP_MUL_MAT_ID: {
        CHECK_TYPE(is_weight_type(s[0].type), "mul_mat_id: src0 (W) type %s has no dequantizer",
                   type_name(s[0].type));
        CHECK(s[0].ne[3] == 1, "mul_mat_id: src0 (W) must be 3-D [K, N, X]");
        CHECK_TYPE(s[1].type == LAMINA_TYPE_F32, "mul_mat_id: src1 (A) must be f32, got %s",
                   type_name(s[1].type));
        CHECK_TYPE(s[2].type == LAMINA_TYPE_I32, "mul_mat_id: src2 (ids) must be i32, got %s",
                   type_name(s[2].type));
        const int64_t k = s[2].ne[0], T = s[2].ne[1];
        CHECK(shape_is(&s[2], k, T, 1, 1), "mul_mat_id: src2 (ids) must be 2-D [k, T]");
        CHECK(shape_is(&s[1], s[0].ne[0], 1, T, 1) || shape_is(&s[1], s[0].ne[0], k, T, 1),
              "mul_mat_id: src1 (A) shape [%lld, %lld, %lld, %lld], expected [K=%lld, 1 or k=%lld, T=%lld]",
              (long long)s[1].ne[0], (long long)s[1].ne[1], (long long)s[1].ne[2], (long long)s[1].ne[3],
              (long long)s[0].ne[0], (long long)k, (long long)T);
        CHECK(shape_is(d, s[0].ne[1], k, T, 1), "mul_mat_id: dst must be [N=%lld, k=%lld, T=%lld]",
              (long long)s[0].ne[1], (long long)k, (long long)T);
        break;
    }

    case LAMINA_OP_MOE_SUM:
        CHECK_TYPE(s[0].type == LAMINA_TYPE_F32, "moe_sum: src0 (Y) must be f32, got %s",
                   type_name(s[0].type));
        CHECK_TYPE(s[1].type == LAMINA_TYPE_F32, "moe_sum: src1 (weights) must be f32, got %s",
                   type_name(s[1].type));
        CHECK(s[0].ne[3] == 1, "moe_sum: src0 (Y) must be 3-D [E, k, T]");
        CHECK(shape_is(&s[1], s[0].ne[1], s[0].ne[2], 1, 1), "moe_sum: src1 (weights) must be [k=%lld, T=%lld]",
              (long long)s[0].ne[1], (long long)s[0].ne[2]);
        CHECK(shape_is(d, s[0].ne[0], s[0].ne[2], 1, 1), "moe_sum: dst must be [E=%lld, T=%lld]",
              (long long)s[0].ne[0], (long long)s[0].ne[2]);
        break;
    }
    return 0;
}

int lamina_ref_supports(const lamina_node *node)
{
    return validate(node, NULL, 0) == 0;
}

/* ------------------------------------------------------------------------ */
/* Overlap between dst and the sources, on host addresses.                  */

typedef struct span { uintptr_t lo, hi; } span;

static span tensor_span(const lamina_tensor *t, const uint8_t *base)
{
    span r;
    r.lo = (uintptr_t)(base + t->offset);
    r.hi = r.lo + (uintptr_t)tensor_extent(t);
    return r;
}

static void mark_rows(uint8_t *bits, uintptr_t lo, uintptr_t hi, const lamina_tensor *t,
                      const uint8_t *base)
{
    const uint64_t rs = lamina_row_size(t->type, t->ne[0]);
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < t->ne[1]; i1++) {
                uintptr_t a = (uintptr_t)(base + t->offset + i1 * t->nb[1] + i2 * t->nb[2] +
                                          i3 * t->nb[3]);
                for (uint64_t k = 0; k < rs; k++) {
                    uintptr_t p = a + k;
                    if (p >= lo && p < hi)
                        bits[(p - lo) / 8] |= (uint8_t)(1u << ((p - lo) % 8));
                }
            }
}

static int rows_hit(const uint8_t *bits, uintptr_t lo, uintptr_t hi, const lamina_tensor *t,
                    const uint8_t *base)
{
    const uint64_t rs = lamina_row_size(t->type, t->ne[0]);
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < t->ne[1]; i1++) {
                uintptr_t a = (uintptr_t)(base + t->offset + i1 * t->nb[1] + i2 * t->nb[2] +
                                          i3 * t->nb[3]);
                for (uint64_t k = 0; k < rs; k++) {
                    uintptr_t p = a + k;
                    if (p >= lo && p < hi && (bits[(p - lo) / 8] >> ((p - lo) % 8) & 1))
                        return 1;
                }
            }
    return 0;
}

/* 0 when dst and src share no byte, 1 when they share bytes, negative when
 * the check could not allocate its bitmap. */
static int overlaps(const lamina_tensor *d, const uint8_t *dbase, const lamina_tensor *s,
                    const uint8_t *sbase)
{
    span a = tensor_span(d, dbase), b = tensor_span(s, sbase);
    uintptr_t lo = a.lo > b.lo ? a.lo : b.lo;
    uintptr_t hi = a.hi < b.hi ? a.hi : b.hi;
    if (lo >= hi)
        return 0;
    /* ranges intersect: strided views may still interleave without sharing */
    uint8_t *bits = calloc((hi - lo + 7) / 8, 1);
    if (bits == NULL)
        return LAMINA_ENOMEM;
    mark_rows(bits, lo, hi, s, sbase);
    int hit = rows_hit(bits, lo, hi, d, dbase);
    free(bits);
    return hit;
}

static int exact_alias(const lamina_tensor *d, const uint8_t *dbase, const lamina_tensor *s,
                       const uint8_t *sbase)
{
    return dbase + d->offset == sbase + s->offset && d->type == s->type &&
           same_shape(d, s) && d->nb[1] == s->nb[1] && d->nb[2] == s->nb[2] &&
           d->nb[3] == s->nb[3];
}

/* ------------------------------------------------------------------------ */
/* Element access                                                           */

static const uint8_t *row_at(const lamina_tensor *t, const uint8_t *base, int64_t i1,
                             int64_t i2, int64_t i3)
{
    return base + t->offset + (uint64_t)i1 * t->nb[1] + (uint64_t)i2 * t->nb[2] +
           (uint64_t)i3 * t->nb[3];
}

static int32_t i32_at(const lamina_tensor *t, const uint8_t *base, int64_t i0, int64_t i1)
{
    int32_t v;
    memcpy(&v, row_at(t, base, i1, 0, 0) + 4 * i0, sizeof v);
    return v;
}

/* Dequantize row (i1, i2, i3) into y (ne[0] floats). */
static void load_row(float *y, const lamina_tensor *t, const uint8_t *base, int64_t i1,
                     int64_t i2, int64_t i3)
{
    /* validated types always have a dequantizer */
    (void)lamina_dequantize_row(t->type, row_at(t, base, i1, i2, i3), y, t->ne[0]);
}

/* Store n floats as f32 or f16 at p (possibly unaligned). */
static void store_floats(uint8_t *p, uint32_t type, const float *y, int64_t n)
{
    if (type == LAMINA_TYPE_F32) {
        memcpy(p, y, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = lamina_fp32_to_fp16(y[i]);
        memcpy(p + 2 * i, &h, sizeof h);
    }
}

/* ------------------------------------------------------------------------ */
/* Kernels.  Each writes the dense result `out` (dst's shape, row-major in  */
/* ne order) from the sources; the caller stores it.                        */

typedef struct ref_ctx {
    const lamina_node *node;
    const uint8_t *src[LAMINA_MAX_SRC + 1];   /* host address of each source's buffer */
    uint8_t *dst;                         /* host address of dst's buffer */
    char *err;
    size_t err_size;
} ref_ctx;

/* GET_ROWS: out[:, i] = dequant(table[:, ids[i]]); table [K, R], ids [N] */
static int k_get_rows(ref_ctx *c, float *out)
{
    const lamina_tensor *tab = &c->node->src[0], *ids = &c->node->src[1];
    const int64_t K = tab->ne[0], R = tab->ne[1], N = ids->ne[0];
    for (int64_t i = 0; i < N; i++) {
        /* step 1: the id, checked against the table */
        const int32_t id = i32_at(ids, c->src[1], i, 0);
        if (id < 0 || id >= R) {
            set_err(c->err, c->err_size, "get_rows: src1 (ids)[%lld] = %d out of range [0, %lld)",
                    (long long)i, id, (long long)R);
            return LAMINA_EINVAL;
        }
        /* step 2: the row, dequantized */
        load_row(out + i * K, tab, c->src[0], id, 0, 0);
    }
    return 0;
}

/* MUL_MAT: out[n, m] = sum_k W[k, n] X[k, m]; W [K, N], X [K, M], out [N, M] */
static int k_mul_mat(ref_ctx *c, float *out)
{
    const lamina_tensor *W = &c->node->src[0], *X = &c->node->src[1];
    const int64_t K = W->ne[0], N = W->ne[1], M = X->ne[1];
    float *w = malloc((size_t)K * sizeof *w);
    float *x = malloc((size_t)(K * M) * sizeof *x);
    if (w == NULL || x == NULL) {
        free(w);
        free(x);
        set_err(c->err, c->err_size, "mul_mat: out of memory");
        return LAMINA_ENOMEM;
    }
    /* step 1: every column of X as floats */
    for (int64_t m = 0; m < M; m++)
        load_row(x + m * K, X, c->src[1], m, 0, 0);
    for (int64_t n = 0; n < N; n++) {
        /* step 2: row n of W, dequantized */
        load_row(w, W, c->src[0], n, 0, 0);
        /* step 3: dot products in double (four partial sums: independent
         * chains the CPU overlaps; the order changes nothing a float shows) */
        for (int64_t m = 0; m < M; m++) {
            const float *xm = x + m * K;
            double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
            int64_t k = 0;
            for (; k + 4 <= K; k += 4) {
                a0 += (double)w[k] * (double)xm[k];
                a1 += (double)w[k + 1] * (double)xm[k + 1];
                a2 += (double)w[k + 2] * (double)xm[k + 2];
                a3 += (double)w[k + 3] * (double)xm[k + 3];
            }
            for (; k < K; k++)
                a0 += (double)w[k] * (double)xm[k];
            out[m * N + n] = (float)((a0 + a1) + (a2 + a3));
        }
    }
    free(w);
    free(x);
    return 0;
}

/* RMS_NORM: per row out[k] = X[k] / sqrt(mean(X^2) + eps) * w[k] */
static int k_rms_norm(ref_ctx *c, float *out)
{
    const lamina_tensor *X = &c->node->src[0];
    const int64_t K = X->ne[0];
    const double eps = c->node->fp[0];
    float *wv = NULL;
    if (c->node->n_src == 2) {
        wv = malloc((size_t)K * sizeof *wv);
        if (wv == NULL) {
            set_err(c->err, c->err_size, "rms_norm: out of memory");
            return LAMINA_ENOMEM;
        }
        load_row(wv, &c->node->src[1], c->src[1], 0, 0, 0);
    }
    int64_t r = 0;
    for (int64_t i3 = 0; i3 < X->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < X->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < X->ne[1]; i1++, r++) {
                float *y = out + r * K;
                load_row(y, X, c->src[0], i1, i2, i3);
                /* step 1: mean of squares in double */
                double ss = 0.0;
                for (int64_t k = 0; k < K; k++)
                    ss += (double)y[k] * (double)y[k];
                /* step 2: inverse root */
                const double inv = 1.0 / sqrt(ss / (double)K + eps);
                /* step 3: scale (and weight) */
                for (int64_t k = 0; k < K; k++)
                    y[k] = (float)((double)y[k] * inv * (wv ? (double)wv[k] : 1.0));
            }
    free(wv);
    return 0;
}

/* NORM: per row out[k] = (X[k] - mu) / sqrt(var + eps) * w[k] + b[k] */
static int k_norm(ref_ctx *c, float *out)
{
    const lamina_tensor *X = &c->node->src[0];
    const int64_t K = X->ne[0];
    const double eps = c->node->fp[0];
    float *wb = NULL;
    if (c->node->n_src >= 2) {
        wb = malloc(2 * (size_t)K * sizeof *wb);
        if (wb == NULL) {
            set_err(c->err, c->err_size, "norm: out of memory");
            return LAMINA_ENOMEM;
        }
        load_row(wb, &c->node->src[1], c->src[1], 0, 0, 0);
        if (c->node->n_src == 3)
            load_row(wb + K, &c->node->src[2], c->src[2], 0, 0, 0);
        else
            memset(wb + K, 0, (size_t)K * sizeof *wb);
    }
    int64_t r = 0;
    for (int64_t i3 = 0; i3 < X->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < X->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < X->ne[1]; i1++, r++) {
                float *y = out + r * K;
                load_row(y, X, c->src[0], i1, i2, i3);
                /* step 1: mean, then the mean of squared deviations, in double */
                double mu = 0.0, var = 0.0;
                for (int64_t k = 0; k < K; k++)
                    mu += (double)y[k];
                mu /= (double)K;
                for (int64_t k = 0; k < K; k++)
                    var += ((double)y[k] - mu) * ((double)y[k] - mu);
                /* step 2: inverse root */
                const double inv = 1.0 / sqrt(var / (double)K + eps);
                /* step 3: normalize, weight and bias */
                for (int64_t k = 0; k < K; k++) {
                    double z = ((double)y[k] - mu) * inv;
                    if (wb)
                        z = z * (double)wb[k] + (double)wb[K + k];
                    y[k] = (float)z;
                }
            }
    free(wb);
    return 0;
}

/* The activations of UNARY and GLU: silu, or gelu with the tanh formula. */
static double ref_act(int act, double a)
{
    /* (swiglu_oai is GLU only: k_binary) */
    if (act == LAMINA_ACT_SILU)
        return a / (1.0 + exp(-a));
    const double u = SQRT_2_OVER_PI * (a + 0.044715 * a * a * a);
    return 0.5 * a * (1.0 + tanh(u));
}

/* UNARY: out = act(X) */
static int k_act(ref_ctx *c, float *out)
{
    const lamina_tensor *X = &c->node->src[0];
    const int64_t K = X->ne[0];
    const int act = c->node->ip[0];
    int64_t r = 0;
    for (int64_t i3 = 0; i3 < X->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < X->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < X->ne[1]; i1++, r++) {
                float *y = out + r * K;
                load_row(y, X, c->src[0], i1, i2, i3);
                for (int64_t k = 0; k < K; k++) {
                    y[k] = (float)ref_act(act, y[k]);
                }
            }
    return 0;
}

/* ADD / MUL / GLU: out = f(A, B) elementwise; B may be one row [K] (ADD, MUL) */
static int k_binary(ref_ctx *c, float *out)
{
    const lamina_tensor *A = &c->node->src[0], *B = &c->node->src[1];
    const int64_t K = A->ne[0];
    const int bcast = !same_shape(A, B);
    const uint32_t op = c->node->op;
    const int act = c->node->ip[0];
    float *b = malloc((size_t)K * sizeof *b);
    if (b == NULL) {
        set_err(c->err, c->err_size, "%s: out of memory", lamina_op_name(op));
        return LAMINA_ENOMEM;
    }
    if (bcast)
        load_row(b, B, c->src[1], 0, 0, 0);
    int64_t r = 0;
    for (int64_t i3 = 0; i3 < A->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < A->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < A->ne[1]; i1++, r++) {
                float *y = out + r * K;
                load_row(y, A, c->src[0], i1, i2, i3);
                if (!bcast)
                    load_row(b, B, c->src[1], i1, i2, i3);
                for (int64_t k = 0; k < K; k++) {
                    const double a = y[k], v = b[k];
                    double z;
                    if (op == LAMINA_OP_ADD) {
                        z = a + v;
                    } else if (op == LAMINA_OP_MUL) {
                        z = a * v;
                    } else if (act == LAMINA_ACT_SWIGLU_OAI) {
                        const double alpha = c->node->fp[0], lim = c->node->fp[1];
                        const double x = a < lim ? a : lim;
                        const double u = v < -lim ? -lim : v > lim ? lim : v;
                        z = x / (1.0 + exp(-alpha * x)) * (u + 1.0);
                    } else {
                        z = ref_act(act, a) * v;    /* act(gate) * up */
                    }
                    y[k] = (float)z;
                }
            }
    free(b);
    return 0;
}

/* SCALE: out = s * A;  COPY: out = convert(src0) (rounded when stored) */
static int k_unary(ref_ctx *c, float *out)
{
    const lamina_tensor *A = &c->node->src[0];
    const int64_t K = A->ne[0];
    const int scale = c->node->op == LAMINA_OP_SCALE;
    const double s = c->node->fp[0];
    int64_t r = 0;
    for (int64_t i3 = 0; i3 < A->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < A->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < A->ne[1]; i1++, r++) {
                float *y = out + r * K;
                load_row(y, A, c->src[0], i1, i2, i3);
                if (scale)
                    for (int64_t k = 0; k < K; k++)
                        y[k] = (float)(s * (double)y[k]);
            }
    return 0;
}

/* ROPE: X [D, H, N], pos [N], ff [n_rot/2]; rotate pairs by
 * theta_i = pos * freq_scale * base^(-2i/n_rot) / ff[i] */
static int k_rope(ref_ctx *c, float *out)
{
    const lamina_node *nd = c->node;
    const lamina_tensor *X = &nd->src[0];
    const int64_t D = X->ne[0], H = X->ne[1], N = X->ne[2];
    const int neox = nd->ip[0] == LAMINA_ROPE_NEOX;
    const int n_rot = nd->ip[1];
    const double base = nd->fp[0];
    const double fscale = nd->fp[1] == 0.0f ? 1.0 : (double)nd->fp[1];
    /* YaRN (1.3): the ramp between the interpolated and the extrapolated
     * angle over pairs [lo, hi], and the magnitude m */
    const double ext = nd->fp[2];
    double mscale = nd->fp[3] == 0.0f ? 1.0 : (double)nd->fp[3], lo = 0.0, hi = 0.0;
    if (ext != 0.0) {
        const double two_pi = 2.0 * 3.14159265358979323846;
        const double cf = n_rot * log(nd->ip[2] / (two_pi * nd->fp[4])) / (2.0 * log(base));
        const double cs = n_rot * log(nd->ip[2] / (two_pi * nd->fp[5])) / (2.0 * log(base));
        lo = floor(cf) > 0.0 ? floor(cf) : 0.0;
        hi = ceil(cs) < n_rot - 1 ? ceil(cs) : n_rot - 1;
        mscale *= 1.0 + 0.1 * log(1.0 / fscale);
    }
    float *ff = NULL;
    if (nd->n_src == 3) {
        ff = malloc((size_t)(n_rot / 2) * sizeof *ff);
        if (ff == NULL) {
            set_err(c->err, c->err_size, "rope: out of memory");
            return LAMINA_ENOMEM;
        }
        load_row(ff, &nd->src[2], c->src[2], 0, 0, 0);
    }
    for (int64_t n = 0; n < N; n++) {
        const double pos = (double)i32_at(&nd->src[1], c->src[1], n, 0);
        for (int64_t h = 0; h < H; h++) {
            float *y = out + (n * H + h) * D;
            /* step 1: the row as is (dims >= n_rot stay copied) */
            load_row(y, X, c->src[0], h, n, 0);
            for (int i = 0; i < n_rot / 2; i++) {
                /* step 2: the angle of pair i */
                double te = pos * pow(base, -2.0 * i / n_rot);
                if (ff)
                    te /= (double)ff[i];
                double theta = fscale * te;
                if (ext != 0.0) {
                    double y0 = (i - lo) / (hi - lo > 0.001 ? hi - lo : 0.001);
                    y0 = y0 < 0.0 ? 0.0 : y0 > 1.0 ? 1.0 : y0;
                    const double r = (1.0 - y0) * ext;
                    theta = theta * (1.0 - r) + te * r;
                }
                /* step 3: rotate the pair */
                const int64_t i0 = neox ? i : 2 * i;
                const int64_t i1 = neox ? i + n_rot / 2 : 2 * i + 1;
                const double x0 = y[i0], x1 = y[i1];
                const double cs = mscale * cos(theta), sn = mscale * sin(theta);
                y[i0] = (float)(x0 * cs - x1 * sn);
                y[i1] = (float)(x0 * sn + x1 * cs);
            }
        }
    }
    free(ff);
    return 0;
}

/* ATTENTION: see plugin.h.  Q [D, Hq, N]; K [D*Hkv, R]; V [Dv*Hkv, R];
 * pos [2, N] = (base_i, pos_i); out [Dv*Hq, N] */
static int k_attention(ref_ctx *c, float *out)
{
    const lamina_node *nd = c->node;
    const lamina_tensor *Q = &nd->src[0], *Kc = &nd->src[1], *Vc = &nd->src[2], *P = &nd->src[3];
    const int64_t D = Q->ne[0], Hq = Q->ne[1], N = Q->ne[2];
    const int64_t Hkv = Kc->ne[0] / D, Dv = Vc->ne[0] / Hkv;
    const int64_t group = Hq / Hkv;
    const int64_t window = nd->ip[0];
    const double scale = nd->fp[0], softcap = nd->fp[1];
    const int sinks = nd->n_src == 5;
    const uint64_t kesz = lamina_type_get(Kc->type)->type_size;
    const uint64_t vesz = lamina_type_get(Vc->type)->type_size;
    int rc = 0;

    /* step 0: positions checked against both caches */
    int64_t max_len = 1;
    for (int64_t i = 0; i < N; i++) {
        const int32_t b = i32_at(P, c->src[3], 0, i), p = i32_at(P, c->src[3], 1, i);
        if (b < 0 || p < 0 || (int64_t)b + p >= Kc->ne[1] || (int64_t)b + p >= Vc->ne[1]) {
            set_err(c->err, c->err_size,
                    "attention: src3 (positions) token %lld: base %d + pos %d outside the "
                    "caches (K %lld rows, V %lld rows)",
                    (long long)i, b, p, (long long)Kc->ne[1], (long long)Vc->ne[1]);
            return LAMINA_EINVAL;
        }
        if ((int64_t)p + 1 > max_len)
            max_len = (int64_t)p + 1;
    }

    float *q = malloc((size_t)D * sizeof *q);
    float *kv = malloc((size_t)(D > Dv ? D : Dv) * sizeof *kv);
    double *sc = malloc((size_t)max_len * sizeof *sc);
    double *acc = malloc((size_t)Dv * sizeof *acc);
    float *sinkv = sinks ? malloc((size_t)Hq * sizeof *sinkv) : NULL;
    if (!q || !kv || !sc || !acc || (sinks && !sinkv)) {
        set_err(c->err, c->err_size, "attention: out of memory");
        rc = LAMINA_ENOMEM;
        goto out;
    }
    if (sinks)
        load_row(sinkv, &nd->src4, c->src[4], 0, 0, 0);

    for (int64_t i = 0; i < N; i++) {
        const int64_t b = i32_at(P, c->src[3], 0, i), p = i32_at(P, c->src[3], 1, i);
        for (int64_t h = 0; h < Hq; h++) {
            const int64_t g = h / group;
            load_row(q, Q, c->src[0], h, i, 0);
            /* step 1: scores s_j = scale * q.k_j, soft-capped, for visible j */
            double mx = -INFINITY;
            for (int64_t j = 0; j <= p; j++) {
                if (window != 0 && p - j >= window) {
                    sc[j] = -INFINITY;
                    continue;
                }
                (void)lamina_dequantize_row(Kc->type, row_at(Kc, c->src[1], b + j, 0, 0) +
                                            (uint64_t)(g * D) * kesz, kv, D);
                double dot = 0.0;
                for (int64_t k = 0; k < D; k++)
                    dot += (double)q[k] * (double)kv[k];
                double s = scale * dot;
                if (softcap != 0.0)
                    s = softcap * tanh(s / softcap);
                sc[j] = s;
                if (s > mx) mx = s;
            }
            /* step 2: softmax with the maximum subtracted; a sink is one
             *    more logit in the denominator only */
            double sink = -INFINITY;
            if (sinks) {
                sink = sinkv[h];
                if (sink > mx) mx = sink;
            }
            double sum = sinks ? exp(sink - mx) : 0.0;
            for (int64_t j = 0; j <= p; j++) {
                sc[j] = sc[j] == -INFINITY ? 0.0 : exp(sc[j] - mx);
                sum += sc[j];
            }
            /* step 3: weighted sum of V rows */
            for (int64_t k = 0; k < Dv; k++)
                acc[k] = 0.0;
            for (int64_t j = 0; j <= p; j++) {
                if (sc[j] == 0.0)
                    continue;
                (void)lamina_dequantize_row(Vc->type, row_at(Vc, c->src[2], b + j, 0, 0) +
                                            (uint64_t)(g * Dv) * vesz, kv, Dv);
                for (int64_t k = 0; k < Dv; k++)
                    acc[k] += sc[j] * (double)kv[k];
            }
            float *y = out + i * (Dv * Hq) + h * Dv;
            for (int64_t k = 0; k < Dv; k++)
                y[k] = (float)(acc[k] / sum);
        }
    }
out:
    free(q);
    free(kv);
    free(sc);
    free(acc);
    free(sinkv);
    return rc;
}

/* SET_ROWS: dst[:, rows[i]] = convert(X[:, i]); writes dst directly. */
static int k_set_rows(ref_ctx *c)
{
    const lamina_node *nd = c->node;
    const lamina_tensor *X = &nd->src[0], *rows = &nd->src[1], *d = &nd->dst;
    const int64_t K = X->ne[0], N = X->ne[1], R = d->ne[1];
    int rc = 0;
    float *y = malloc((size_t)K * sizeof *y);
    uint8_t *seen = calloc((size_t)(R + 7) / 8, 1);
    if (y == NULL || seen == NULL) {
        set_err(c->err, c->err_size, "set_rows: out of memory");
        rc = LAMINA_ENOMEM;
        goto out;
    }
    /* step 1: every row index in range and distinct */
    for (int64_t i = 0; i < N; i++) {
        const int32_t r = i32_at(rows, c->src[1], i, 0);
        if (r < 0 || r >= R) {
            set_err(c->err, c->err_size, "set_rows: src1 (rows)[%lld] = %d out of range [0, %lld)",
                    (long long)i, r, (long long)R);
            rc = LAMINA_EINVAL;
            goto out;
        }
        if (seen[r / 8] >> (r % 8) & 1) {
            set_err(c->err, c->err_size, "set_rows: src1 (rows)[%lld] = %d repeats an earlier row",
                    (long long)i, r);
            rc = LAMINA_EINVAL;
            goto out;
        }
        seen[r / 8] |= (uint8_t)(1u << (r % 8));
    }
    /* step 2: convert and store */
    for (int64_t i = 0; i < N; i++) {
        const int32_t r = i32_at(rows, c->src[1], i, 0);
        load_row(y, X, c->src[0], i, 0, 0);
        store_floats(c->dst + d->offset + (uint64_t)r * d->nb[1], d->type, y, K);
    }
out:
    free(y);
    free(seen);
    return rc;
}

/* TOPK: dst[j, t] = index of the j-th largest X[:, t] (ties: lower index
 * first); written as i32 straight into dst */
static int k_topk(ref_ctx *c)
{
    const lamina_tensor *X = &c->node->src[0], *d = &c->node->dst;
    const int64_t N = X->ne[0], T = X->ne[1], k = c->node->ip[0];
    float *x = malloc((size_t)N * sizeof *x);
    uint8_t *taken = malloc((size_t)N);
    if (!x || !taken) {
        free(x);
        free(taken);
        set_err(c->err, c->err_size, "topk: out of memory");
        return LAMINA_ENOMEM;
    }
    for (int64_t t = 0; t < T; t++) {
        load_row(x, X, c->src[0], t, 0, 0);
        memset(taken, 0, (size_t)N);
        for (int64_t j = 0; j < k; j++) {
            /* step: the largest not taken yet (NaN never wins) */
            int64_t best = -1;
            for (int64_t i = 0; i < N; i++)
                if (!taken[i] && (best < 0 || x[i] > x[best] || (isnan(x[best]) && !isnan(x[i]))))
                    best = i;
            taken[best] = 1;
            int32_t v = (int32_t)best;
            memcpy(c->dst + d->offset + (uint64_t)t * d->nb[1] + 4 * (uint64_t)j, &v, sizeof v);
        }
    }
    free(x);
    free(taken);
    return 0;
}

/* MOE_WEIGHTS: out[j, t] = exp(X[ids[j,t], t]) / sum over the selected (or
 * all) of exp(X[i, t]), the maximum subtracted */
static int k_moe_weights(ref_ctx *c, float *out)
{
    const lamina_tensor *X = &c->node->src[0], *ids = &c->node->src[1];
    const int64_t N = X->ne[0], T = X->ne[1], k = ids->ne[0];
    const int selected = c->node->ip[0] == 1;
    float *x = malloc((size_t)N * sizeof *x);
    if (!x) {
        set_err(c->err, c->err_size, "moe_weights: out of memory");
        return LAMINA_ENOMEM;
    }
    for (int64_t t = 0; t < T; t++) {
        load_row(x, X, c->src[0], t, 0, 0);
        /* step 1: the ids, checked */
        for (int64_t j = 0; j < k; j++) {
            int32_t id = i32_at(ids, c->src[1], j, t);
            if (id < 0 || id >= N) {
                set_err(c->err, c->err_size, "moe_weights: src1 (ids)[%lld, %lld] = %d out of range [0, %lld)",
                        (long long)j, (long long)t, id, (long long)N);
                free(x);
                return LAMINA_EINVAL;
            }
        }
        /* step 2: maximum and sum over the set */
        double mx = -INFINITY, sum = 0.0;
        for (int64_t i = 0; i < (selected ? k : N); i++) {
            float v = selected ? x[i32_at(ids, c->src[1], i, t)] : x[i];
            if (v > mx) mx = v;
        }
        for (int64_t i = 0; i < (selected ? k : N); i++) {
            float v = selected ? x[i32_at(ids, c->src[1], i, t)] : x[i];
            sum += exp((double)v - mx);
        }
        /* step 3: the selected ones' shares */
        for (int64_t j = 0; j < k; j++)
            out[t * k + j] = (float)(exp((double)x[i32_at(ids, c->src[1], j, t)] - mx) / sum);
    }
    free(x);
    return 0;
}

/* MUL_MAT_ID: out[:, j, t] = W[:, :, ids[j,t]]^T . A[:, j or 0, t] */
static int k_mul_mat_id(ref_ctx *c, float *out)
{
    const lamina_tensor *W = &c->node->src[0], *A = &c->node->src[1], *ids = &c->node->src[2];
    const int64_t K = W->ne[0], N = W->ne[1], X = W->ne[2], k = ids->ne[0], T = ids->ne[1];
    float *w = malloc((size_t)K * sizeof *w);
    float *a = malloc((size_t)K * sizeof *a);
    if (!w || !a) {
        free(w);
        free(a);
        set_err(c->err, c->err_size, "mul_mat_id: out of memory");
        return LAMINA_ENOMEM;
    }
    for (int64_t t = 0; t < T; t++) {
        for (int64_t j = 0; j < k; j++) {
            /* step 1: the expert, checked; the input column */
            int32_t e = i32_at(ids, c->src[2], j, t);
            if (e < 0 || e >= X) {
                set_err(c->err, c->err_size, "mul_mat_id: src2 (ids)[%lld, %lld] = %d out of range [0, %lld)",
                        (long long)j, (long long)t, e, (long long)X);
                free(w);
                free(a);
                return LAMINA_EINVAL;
            }
            load_row(a, A, c->src[1], A->ne[1] == 1 ? 0 : j, t, 0);
            /* step 2: dot products in double with each row of that expert */
            for (int64_t n = 0; n < N; n++) {
                load_row(w, W, c->src[0], n, e, 0);
                double acc = 0.0;
                for (int64_t i = 0; i < K; i++) acc += (double)w[i] * (double)a[i];
                out[(t * k + j) * N + n] = (float)acc;
            }
        }
    }
    free(w);
    free(a);
    return 0;
}

/* MOE_SUM: out[:, t] = sum_j w[j, t] Y[:, j, t] */
static int k_moe_sum(ref_ctx *c, float *out)
{
    const lamina_tensor *Y = &c->node->src[0], *Wt = &c->node->src[1];
    const int64_t E = Y->ne[0], k = Y->ne[1], T = Y->ne[2];
    float *y = malloc((size_t)E * sizeof *y), *w = malloc((size_t)k * sizeof *w);
    double *acc = malloc((size_t)E * sizeof *acc);
    if (!y || !w || !acc) {
        free(y);
        free(w);
        free(acc);
        set_err(c->err, c->err_size, "moe_sum: out of memory");
        return LAMINA_ENOMEM;
    }
    for (int64_t t = 0; t < T; t++) {
        load_row(w, Wt, c->src[1], t, 0, 0);
        for (int64_t e = 0; e < E; e++) acc[e] = 0.0;
        for (int64_t j = 0; j < k; j++) {
            load_row(y, Y, c->src[0], j, t, 0);
            for (int64_t e = 0; e < E; e++) acc[e] += (double)w[j] * (double)y[e];
        }
        for (int64_t e = 0; e < E; e++) out[t * E + e] = (float)acc[e];
    }
    free(y);
    free(w);
    free(acc);
    return 0;
}

/* ------------------------------------------------------------------------ */

int lamina_ref_node(const lamina_node *node, lamina_ref_base_fn base, void *ctx,
                    char *err, size_t err_size)
{
    int rc = validate(node, err, err_size);
    if (rc)
        return rc;
    if (base == NULL) {
        set_err(err, err_size, "%s: no base function", lamina_op_name(node->op));
        return LAMINA_EINVAL;
    }
    if (node->dst.buffer == NULL) {
        set_err(err, err_size, "%s: dst has no buffer", lamina_op_name(node->op));
        return LAMINA_EINVAL;
    }
    for (uint32_t i = 0; i < node->n_src; i++) {
        if (lamina_node_src(node, i)->buffer == NULL) {
            set_err(err, err_size, "%s: src%u (%s) has no buffer", lamina_op_name(node->op), i,
                    roles[node->op][i]);
            return LAMINA_EINVAL;
        }
    }
    const char *opn = lamina_op_name(node->op);
    ref_ctx c;
    memset(&c, 0, sizeof c);
    c.node = node;
    c.err = err;
    c.err_size = err_size;

    /* step 1: host addresses of every operand's buffer */
    c.dst = base(ctx, node->dst.buffer);
    if (c.dst == NULL) {
        set_err(err, err_size, "%s: dst buffer has no host address", opn);
        return LAMINA_EINVAL;
    }
    for (uint32_t i = 0; i < node->n_src; i++) {
        c.src[i] = base(ctx, lamina_node_src(node, i)->buffer);
        if (c.src[i] == NULL) {
            set_err(err, err_size, "%s: src%u (%s) buffer has no host address", opn, i,
                    roles[node->op][i]);
            return LAMINA_EINVAL;
        }
    }

    /* step 2: dst shares no byte with a source, or aliases src0 exactly */
    for (uint32_t i = 0; i < node->n_src; i++) {
        /* exact alias of src0 (or of a source that is src0 itself) */
        if (op_allows_alias(node->op) &&
            exact_alias(&node->dst, c.dst, &node->src[0], c.src[0]) &&
            (i == 0 || exact_alias(lamina_node_src(node, i), c.src[i], &node->src[0], c.src[0])))
            continue;
        int ov = overlaps(&node->dst, c.dst, lamina_node_src(node, i), c.src[i]);
        if (ov < 0) {
            set_err(err, err_size, "%s: out of memory", opn);
            return ov;
        }
        if (ov) {
            set_err(err, err_size, "%s: dst overlaps src%u (%s)%s", opn, i, roles[node->op][i],
                    i == 0 && op_allows_alias(node->op) ? " without aliasing it exactly" : "");
            return LAMINA_EINVAL;
        }
    }

    if (node->op == LAMINA_OP_SET_ROWS)
        return k_set_rows(&c);
    if (node->op == LAMINA_OP_TOPK)
        return k_topk(&c);

    /* step 3: compute the dense result */
    const int64_t ne = n_elems(&node->dst);
    float *out = malloc((size_t)ne * sizeof *out);
    if (out == NULL) {
        set_err(err, err_size, "%s: out of memory for %lld results", opn, (long long)ne);
        return LAMINA_ENOMEM;
    }
    switch (node->op) {
    case LAMINA_OP_GET_ROWS:  rc = k_get_rows(&c, out); break;
    case LAMINA_OP_MUL_MAT:   rc = k_mul_mat(&c, out); break;
    case LAMINA_OP_RMS_NORM:  rc = k_rms_norm(&c, out); break;
    case LAMINA_OP_ADD:
    case LAMINA_OP_MUL:
    case LAMINA_OP_GLU:       rc = k_binary(&c, out); break;
    case LAMINA_OP_SCALE:
    case LAMINA_OP_COPY:      rc = k_unary(&c, out); break;
    case LAMINA_OP_ROPE:      rc = k_rope(&c, out); break;
    case LAMINA_OP_ATTENTION: rc = k_attention(&c, out); break;
    case LAMINA_OP_MOE_WEIGHTS: rc = k_moe_weights(&c, out); break;
    case LAMINA_OP_MUL_MAT_ID:  rc = k_mul_mat_id(&c, out); break;
    case LAMINA_OP_MOE_SUM:     rc = k_moe_sum(&c, out); break;
    case LAMINA_OP_NORM:        rc = k_norm(&c, out); break;
    case LAMINA_OP_UNARY:       rc = k_act(&c, out); break;
    default:                  rc = LAMINA_ENOTSUP; break;
    }

    /* step 4: store row by row in dst's type and strides */
    if (rc == 0) {
        const lamina_tensor *d = &node->dst;
        int64_t r = 0;
        for (int64_t i3 = 0; i3 < d->ne[3]; i3++)
            for (int64_t i2 = 0; i2 < d->ne[2]; i2++)
                for (int64_t i1 = 0; i1 < d->ne[1]; i1++, r++)
                    store_floats(c.dst + d->offset + (uint64_t)i1 * d->nb[1] +
                                 (uint64_t)i2 * d->nb[2] + (uint64_t)i3 * d->nb[3],
                                 d->type, out + r * d->ne[0], d->ne[0]);
    }
    free(out);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The reference backend over host memory.                                  */

struct lamina_buffer {
    struct lamina_buffer *next;
    struct lamina_buffer *prev;
    lamina_backend *owner;
    uint8_t *ptr;
    uint64_t size;
    int wrapped;            /* host memory owned by the caller, read-only */
};

struct lamina_backend {
    lamina_buffer head;     /* sentinel of the list of live buffers */
};

static int rb_open(const lamina_host *host, const lamina_backend_params *params,
                   lamina_backend **out, char *err, size_t err_size)
{
    (void)host;
    if (out == NULL) {
        set_err(err, err_size, "ref: open without an output pointer");
        return LAMINA_EINVAL;
    }
    if (params != NULL && LAMINA_HAS(params, device) && params->device != 0) {
        set_err(err, err_size, "ref: no device %u (only device 0)", params->device);
        return LAMINA_ENODEV;
    }
    lamina_backend *be = calloc(1, sizeof *be);
    if (be == NULL) {
        set_err(err, err_size, "ref: out of memory");
        return LAMINA_ENOMEM;
    }
    be->head.next = be->head.prev = &be->head;
    *out = be;
    return 0;
}

static void unlink_free(lamina_buffer *b)
{
    b->prev->next = b->next;
    b->next->prev = b->prev;
    if (!b->wrapped)
        free(b->ptr);
    free(b);
}

static void rb_close(lamina_backend *be)
{
    if (be == NULL)
        return;
    while (be->head.next != &be->head)
        unlink_free(be->head.next);
    free(be);
}

static int rb_memory(lamina_backend *be, uint64_t *free_bytes, uint64_t *total_bytes)
{
    (void)be;
    long page = sysconf(_SC_PAGESIZE);
    long avail = sysconf(_SC_AVPHYS_PAGES);
    long total = sysconf(_SC_PHYS_PAGES);
    if (free_bytes)
        *free_bytes = page > 0 && avail > 0 ? (uint64_t)avail * (uint64_t)page : 0;
    if (total_bytes)
        *total_bytes = page > 0 && total > 0 ? (uint64_t)total * (uint64_t)page : 0;
    return 0;
}

static int add_buffer(lamina_backend *be, uint8_t *ptr, uint64_t size, int wrapped,
                      lamina_buffer **out, char *err, size_t err_size)
{
    lamina_buffer *b = calloc(1, sizeof *b);
    if (b == NULL) {
        set_err(err, err_size, "ref: out of memory");
        return LAMINA_ENOMEM;
    }
    b->owner = be;
    b->ptr = ptr;
    b->size = size;
    b->wrapped = wrapped;
    b->next = be->head.next;
    b->prev = &be->head;
    be->head.next->prev = b;
    be->head.next = b;
    *out = b;
    return 0;
}

static int rb_buffer_alloc(lamina_backend *be, uint64_t size, uint32_t usage,
                           lamina_buffer **out, char *err, size_t err_size)
{
    (void)usage;
    if (be == NULL || out == NULL) {
        set_err(err, err_size, "ref: buffer_alloc without backend or output pointer");
        return LAMINA_EINVAL;
    }
    if (size > SIZE_MAX - 1) {
        set_err(err, err_size, "ref: cannot allocate %llu bytes", (unsigned long long)size);
        return LAMINA_ENOMEM;
    }
    uint8_t *p = calloc(1, size ? (size_t)size : 1);
    if (p == NULL) {
        set_err(err, err_size, "ref: out of memory allocating %llu bytes",
                (unsigned long long)size);
        return LAMINA_ENOMEM;
    }
    int rc = add_buffer(be, p, size, 0, out, err, err_size);
    if (rc)
        free(p);
    return rc;
}

static int rb_buffer_wrap_host(lamina_backend *be, const void *ptr, uint64_t size,
                               lamina_buffer **out, char *err, size_t err_size)
{
    if (be == NULL || out == NULL || (ptr == NULL && size != 0)) {
        set_err(err, err_size, "ref: buffer_wrap_host with a NULL argument");
        return LAMINA_EINVAL;
    }
    /* the cast drops const: wrapped buffers are never written (checked) */
    return add_buffer(be, (uint8_t *)(uintptr_t)ptr, size, 1, out, err, err_size);
}

static void rb_buffer_free(lamina_backend *be, lamina_buffer *buf)
{
    (void)be;
    if (buf != NULL)
        unlink_free(buf);
}

static int check_range(lamina_buffer *buf, uint64_t offset, uint64_t size, const char *what,
                       char *err, size_t err_size)
{
    uint64_t end;
    if (buf == NULL) {
        set_err(err, err_size, "ref: %s on a NULL buffer", what);
        return LAMINA_EINVAL;
    }
    if (__builtin_add_overflow(offset, size, &end) || end > buf->size) {
        set_err(err, err_size, "ref: %s of %llu bytes at offset %llu exceeds the buffer (%llu bytes)",
                what, (unsigned long long)size, (unsigned long long)offset,
                (unsigned long long)buf->size);
        return LAMINA_ERANGE;
    }
    return 0;
}

static int rb_buffer_upload(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                            const void *src, uint64_t size, char *err, size_t err_size)
{
    (void)be;
    int rc = check_range(buf, offset, size, "upload", err, err_size);
    if (rc)
        return rc;
    if (buf->wrapped) {
        set_err(err, err_size, "ref: upload into a read-only wrapped host buffer");
        return LAMINA_EINVAL;
    }
    if (size)
        memcpy(buf->ptr + offset, src, (size_t)size);
    return 0;
}

static int rb_buffer_download(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                              void *dst, uint64_t size, char *err, size_t err_size)
{
    (void)be;
    int rc = check_range(buf, offset, size, "download", err, err_size);
    if (rc)
        return rc;
    if (size)
        memcpy(dst, buf->ptr + offset, (size_t)size);
    return 0;
}

static int rb_supports_op(lamina_backend *be, const lamina_node *node)
{
    (void)be;
    return lamina_ref_supports(node);
}

static void *rb_base(void *ctx, lamina_buffer *buf)
{
    (void)ctx;
    return buf ? buf->ptr : NULL;
}

/* Every operand lies inside a buffer of this backend; dst is writable. */
static int check_operand(lamina_backend *be, const lamina_tensor *t, const char *opn,
                         const char *what, int is_dst, char *err, size_t err_size)
{
    if (t->buffer == NULL) {
        set_err(err, err_size, "%s: %s has no buffer", opn, what);
        return LAMINA_EINVAL;
    }
    if (t->buffer->owner != be) {
        set_err(err, err_size, "%s: %s buffer belongs to another backend instance", opn, what);
        return LAMINA_EINVAL;
    }
    uint64_t end = t->offset + tensor_extent(t);   /* no overflow: validated */
    if (end > t->buffer->size) {
        set_err(err, err_size, "%s: %s spans bytes %llu..%llu beyond its buffer (%llu bytes)",
                opn, what, (unsigned long long)t->offset, (unsigned long long)end,
                (unsigned long long)t->buffer->size);
        return LAMINA_ERANGE;
    }
    if (is_dst && t->buffer->wrapped) {
        set_err(err, err_size, "%s: %s is in a read-only wrapped host buffer", opn, what);
        return LAMINA_EINVAL;
    }
    return 0;
}

static int rb_graph_compute(lamina_backend *be, const lamina_graph *graph, char *err,
                            size_t err_size)
{
    char msg[256];
    if (be == NULL || graph == NULL || !LAMINA_HAS(graph, nodes)) {
        set_err(err, err_size, "ref: graph_compute without a backend or a valid graph");
        return LAMINA_EINVAL;
    }
    if (graph->n_nodes > 0 && graph->nodes == NULL) {
        set_err(err, err_size, "ref: graph has %u nodes but no node array", graph->n_nodes);
        return LAMINA_EINVAL;
    }
    for (uint32_t n = 0; n < graph->n_nodes; n++) {
        const lamina_node *node = lamina_graph_node(graph, n);
        const char *opn = lamina_op_name(node->op);
        msg[0] = '\0';
        /* structure first, so that every buffer pointer below is set */
        int rc = validate(node, msg, sizeof msg);
        if (rc == 0)
            rc = check_operand(be, &node->dst, opn, "dst", 1, msg, sizeof msg);
        for (uint32_t i = 0; rc == 0 && i < node->n_src; i++) {
            char what[48];
            snprintf(what, sizeof what, "src%u (%s)", i, roles[node->op][i]);
            rc = check_operand(be, lamina_node_src(node, i), opn, what, 0, msg, sizeof msg);
        }
        if (rc == 0)
            rc = lamina_ref_node(node, rb_base, be, msg, sizeof msg);
        if (rc) {
            set_err(err, err_size, "node %u: %s", n, msg);
            return rc;
        }
    }
    return 0;
}

static const lamina_backend_iface ref_iface = {
    .struct_size = sizeof(lamina_backend_iface),
    .reserved = 0,
    .open = rb_open,
    .close = rb_close,
    .memory = rb_memory,
    .buffer_alloc = rb_buffer_alloc,
    .buffer_wrap_host = rb_buffer_wrap_host,
    .buffer_free = rb_buffer_free,
    .buffer_upload = rb_buffer_upload,
    .buffer_download = rb_buffer_download,
    .supports_op = rb_supports_op,
    .graph_compute = rb_graph_compute,
};

const lamina_backend_iface *lamina_ref_backend_iface(void)
{
    return &ref_iface;
}
