/*
 * ops.c - which nodes the GPU backend runs, and running them: every node
 * is checked (types, shapes, alignment, grid limits and, when computing,
 * that each tensor lies inside a buffer of this instance), then becomes
 * one kernel launch on the default stream, in node order; graph_compute
 * waits once at the end.  Kernels and their grids: kernels.hip.
 */
#include <config.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gpu.h"

const char *const gpu_kernel_names[GK_COUNT] = {
    [GK_GET_ROWS] = "k_get_rows",
    [GK_MUL_MAT] = "k_mul_mat",
    [GK_RMS_NORM] = "k_rms_norm",
    [GK_ELTWISE] = "k_eltwise",
    [GK_ROPE] = "k_rope",
    [GK_SET_ROWS] = "k_set_rows",
    [GK_ATTENTION] = "k_attention",
};


/* Elements and bytes per block of the types the kernels read (deq1). */
static int type_info(uint32_t t, uint32_t *block, uint32_t *bytes)
{
    static const struct { uint32_t type, block, bytes; } tab[] = {
        { LAMINA_TYPE_F32, 1, 4 },      { LAMINA_TYPE_F16, 1, 2 },
        { LAMINA_TYPE_BF16, 1, 2 },     { LAMINA_TYPE_I32, 1, 4 },
        { LAMINA_TYPE_Q4_0, 32, 18 },   { LAMINA_TYPE_Q4_1, 32, 20 },
        { LAMINA_TYPE_Q5_0, 32, 22 },   { LAMINA_TYPE_Q5_1, 32, 24 },
        { LAMINA_TYPE_Q8_0, 32, 34 },   { LAMINA_TYPE_Q8_1, 32, 36 },
        { LAMINA_TYPE_Q2_K, 256, 84 },  { LAMINA_TYPE_Q3_K, 256, 110 },
        { LAMINA_TYPE_Q4_K, 256, 144 }, { LAMINA_TYPE_Q5_K, 256, 176 },
        { LAMINA_TYPE_Q6_K, 256, 210 }, { LAMINA_TYPE_Q8_K, 256, 292 },
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (tab[i].type == t) {
            *block = tab[i].block;
            *bytes = tab[i].bytes;
            return 1;
        }
    return 0;
}

static int is_weight_type(uint32_t t)
{
    uint32_t b, s;
    return t != LAMINA_TYPE_I32 && type_info(t, &b, &s);
}

typedef struct why {
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

/* Largest extent in one dimension (keeps every product in int64). */
#define MAX_NE ((int64_t)1 << 31)

/* Known type, sane extents, packed rows, aligned for its loads. */
static int tensor_ok(const lamina_tensor *t)
{
    uint32_t block, bytes;
    if (!type_info(t->type, &block, &bytes))
        return 0;
    for (int i = 0; i < 4; i++)
        if (t->ne[i] < 1 || t->ne[i] > MAX_NE)
            return 0;
    if (t->ne[0] % block != 0 || t->nb[0] != bytes)
        return 0;
    /* f32 and i32 are read as 4-byte words; the others byte by byte */
    if (bytes == 4 && block == 1 &&
        (t->offset % 4 != 0 || t->nb[1] % 4 != 0 || t->nb[2] % 4 != 0 || t->nb[3] % 4 != 0))
        return 0;
    return 1;
}

static int same_shape(const lamina_tensor *a, const lamina_tensor *b)
{
    return a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1] && a->ne[2] == b->ne[2] &&
           a->ne[3] == b->ne[3];
}

static int is_vec(const lamina_tensor *t, int64_t n)
{
    return t->ne[0] == n && t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1;
}

static int64_t nrows(const lamina_tensor *t)
{
    return t->ne[1] * t->ne[2] * t->ne[3];
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

/* The kernel and grid of a checked node; 0 when the grid is too large. */
static int plan(const lamina_backend *be, const lamina_node *n, int *kid, unsigned grid[3],
                int64_t *count)
{
    const lamina_tensor *d = &n->dst, *s0 = &n->src[0];
    uint64_t gx = 1, gy = 1;

    *count = 0;
    switch (n->op) {
    case LAMINA_OP_GET_ROWS:
        *kid = GK_GET_ROWS;
        gx = (uint64_t)d->ne[1];
        break;
    case LAMINA_OP_MUL_MAT:
        *kid = GK_MUL_MAT;
        gx = (uint64_t)s0->ne[1];
        gy = ceil_div((uint64_t)n->src[1].ne[1], KA_MM_COLS);
        break;
    case LAMINA_OP_RMS_NORM:
        *kid = GK_RMS_NORM;
        gx = (uint64_t)nrows(s0);
        break;
    case LAMINA_OP_ADD: case LAMINA_OP_MUL: case LAMINA_OP_SCALE:
    case LAMINA_OP_GLU: case LAMINA_OP_COPY:
        *kid = GK_ELTWISE;
        *count = d->ne[0] * nrows(d);
        gx = ceil_div((uint64_t)*count, KA_BLOCK);
        break;
    case LAMINA_OP_ROPE: {
        const int64_t half = n->ip[1] / 2, P = half + (s0->ne[0] - n->ip[1]);
        *kid = GK_ROPE;
        *count = P * s0->ne[1] * s0->ne[2];
        gx = ceil_div((uint64_t)*count, KA_BLOCK);
        break;
    }
    case LAMINA_OP_SET_ROWS:
        *kid = GK_SET_ROWS;
        *count = s0->ne[0] * s0->ne[1];
        gx = ceil_div((uint64_t)*count, KA_BLOCK);
        break;
    case LAMINA_OP_ATTENTION:
        *kid = GK_ATTENTION;
        gx = (uint64_t)s0->ne[1];
        gy = (uint64_t)s0->ne[2];
        break;
    default:
        return 0;
    }
    if (gx == 0 || gy == 0 || gx > be->max_grid_x || gy > be->max_grid_y)
        return 0;
    grid[0] = (unsigned)gx;
    grid[1] = (unsigned)gy;
    grid[2] = 1;
    return 1;
}

/* Everything supports_op promises, with the reason on refusal. */
static int check_node(const lamina_backend *be, const lamina_node *n, why *w)
{
    if (n->op == LAMINA_OP_NONE || n->op >= LAMINA_OP_COUNT)
        return no(w, "op %u not supported", n->op);
    const char *on = lamina_op_name(n->op);
    if (n->n_src > LAMINA_MAX_SRC)
        return no(w, "%s: n_src %u", on, n->n_src);
    if (!tensor_ok(&n->dst))
        return no(w, "%s: dst has a bad type, shape or alignment", on);
    for (uint32_t i = 0; i < n->n_src; i++) {
        uint32_t block, bytes;
        if (!type_info(n->src[i].type, &block, &bytes))   /* e.g. iq4_nl, mxfp4 */
            return no(w, "%s: src%u type %u not supported", on, i, n->src[i].type);
        if (!tensor_ok(&n->src[i]))
            return no(w, "%s: src%u has a bad type, shape or alignment", on, i);
    }
    const lamina_tensor *d = &n->dst, *s0 = &n->src[0], *s1 = &n->src[1], *s2 = &n->src[2];
    const int f32dst = d->type == LAMINA_TYPE_F32;

    switch (n->op) {
    case LAMINA_OP_GET_ROWS:
        if (n->n_src != 2 || !is_weight_type(s0->type) || s0->ne[2] != 1 || s0->ne[3] != 1)
            return no(w, "get_rows: table must be a 2-D weight tensor");
        if (s1->type != LAMINA_TYPE_I32 || !is_vec(s1, d->ne[1]))
            return no(w, "get_rows: ids must be I32 [N]");
        if (!f32dst || d->ne[0] != s0->ne[0] || d->ne[2] != 1 || d->ne[3] != 1)
            return no(w, "get_rows: dst must be F32 [K, N]");
        break;
    case LAMINA_OP_MUL_MAT:
        if (n->n_src != 2 || !is_weight_type(s0->type) || s0->ne[2] != 1 || s0->ne[3] != 1)
            return no(w, "mul_mat: W must be a 2-D weight tensor");
        if (s1->type != LAMINA_TYPE_F32 || s1->ne[0] != s0->ne[0] || s1->ne[2] != 1 ||
            s1->ne[3] != 1)
            return no(w, "mul_mat: X must be F32 [K, M]");
        if (!f32dst || d->ne[0] != s0->ne[1] || d->ne[1] != s1->ne[1] || d->ne[2] != 1 ||
            d->ne[3] != 1)
            return no(w, "mul_mat: dst must be F32 [N, M]");
        break;
    case LAMINA_OP_RMS_NORM:
        if (n->n_src != 1 && n->n_src != 2)
            return no(w, "rms_norm: 1 or 2 sources");
        if (s0->type != LAMINA_TYPE_F32 || !f32dst || !same_shape(s0, d))
            return no(w, "rms_norm: F32 X and dst of its shape");
        if (n->n_src == 2 && (s1->type != LAMINA_TYPE_F32 || !is_vec(s1, s0->ne[0])))
            return no(w, "rms_norm: w must be F32 [K]");
        if (!(n->fp[0] >= 0.0f))
            return no(w, "rms_norm: eps");
        break;
    case LAMINA_OP_ADD: case LAMINA_OP_MUL:
        if (n->n_src != 2 || s0->type != LAMINA_TYPE_F32 || s1->type != LAMINA_TYPE_F32 ||
            !f32dst || !same_shape(s0, d))
            return no(w, "%s: F32 operands, dst of src0's shape", on);
        if (!same_shape(s0, s1) && !is_vec(s1, s0->ne[0]))
            return no(w, "%s: B must match A or be [K]", on);
        break;
    case LAMINA_OP_SCALE:
        if (n->n_src != 1 || s0->type != LAMINA_TYPE_F32 || !f32dst || !same_shape(s0, d))
            return no(w, "scale: F32 A and dst of its shape");
        break;
    case LAMINA_OP_GLU:
        if (n->n_src != 2 || s0->type != LAMINA_TYPE_F32 || s1->type != LAMINA_TYPE_F32 ||
            !f32dst || !same_shape(s0, s1) || !same_shape(s0, d))
            return no(w, "glu: F32 gate, up and dst of one shape");
        if (n->ip[0] != LAMINA_ACT_SILU && n->ip[0] != LAMINA_ACT_GELU_TANH)
            return no(w, "glu: activation %d", n->ip[0]);
        break;
    case LAMINA_OP_COPY:
        if (n->n_src != 1 || (s0->type != LAMINA_TYPE_F32 && s0->type != LAMINA_TYPE_F16 &&
                              s0->type != LAMINA_TYPE_BF16))
            return no(w, "copy: src must be F32, F16 or BF16");
        if ((d->type != LAMINA_TYPE_F32 && d->type != LAMINA_TYPE_F16) || !same_shape(s0, d))
            return no(w, "copy: dst must be F32 or F16 of src's shape");
        break;
    case LAMINA_OP_ROPE: {
        const int32_t mode = n->ip[0], n_rot = n->ip[1];
        if (n->n_src != 2 && n->n_src != 3)
            return no(w, "rope: 2 or 3 sources");
        if (s0->type != LAMINA_TYPE_F32 || !f32dst || !same_shape(s0, d) || s0->ne[3] != 1)
            return no(w, "rope: X must be F32 [D, H, N]");
        if (s1->type != LAMINA_TYPE_I32 || !is_vec(s1, s0->ne[2]))
            return no(w, "rope: pos must be I32 [N]");
        if (mode != LAMINA_ROPE_NORM && mode != LAMINA_ROPE_NEOX)
            return no(w, "rope: mode %d", mode);
        if (n_rot <= 0 || (n_rot & 1) || n_rot > s0->ne[0])
            return no(w, "rope: n_rot %d", n_rot);
        if (n->n_src == 3 && (s2->type != LAMINA_TYPE_F32 || !is_vec(s2, n_rot / 2)))
            return no(w, "rope: freq factors must be F32 [n_rot/2]");
        if (n->fp[2] != 0.0f || (n->fp[3] != 0.0f && n->fp[3] != 1.0f))
            return no(w, "rope: YaRN (no kernel yet)");
        break;
    }
    case LAMINA_OP_SET_ROWS:
        if (n->n_src != 2 || s0->type != LAMINA_TYPE_F32 || s0->ne[2] != 1 || s0->ne[3] != 1)
            return no(w, "set_rows: X must be F32 [K, N]");
        if (s1->type != LAMINA_TYPE_I32 || !is_vec(s1, s0->ne[1]))
            return no(w, "set_rows: rows must be I32 [N]");
        if ((d->type != LAMINA_TYPE_F32 && d->type != LAMINA_TYPE_F16) ||
            d->ne[0] != s0->ne[0] || d->ne[2] != 1 || d->ne[3] != 1)
            return no(w, "set_rows: dst must be F32/F16 [K, R]");
        break;
    case LAMINA_OP_ATTENTION: {
        const lamina_tensor *s3 = &n->src[3];
        if (n->n_src != 4 || s0->type != LAMINA_TYPE_F32 || s0->ne[3] != 1)
            return no(w, "attention: Q must be F32 [D, Hq, N]");
        const int64_t D = s0->ne[0], Hq = s0->ne[1], N = s0->ne[2];
        if ((s1->type != LAMINA_TYPE_F32 && s1->type != LAMINA_TYPE_F16) ||
            (s2->type != LAMINA_TYPE_F32 && s2->type != LAMINA_TYPE_F16))
            return no(w, "attention: K/V cache must be F16 or F32");
        if (s1->ne[2] != 1 || s1->ne[3] != 1 || s2->ne[2] != 1 || s2->ne[3] != 1 ||
            s1->ne[1] != s2->ne[1] || s1->ne[0] % D != 0)
            return no(w, "attention: K [D*Hkv, R] and V [Dv*Hkv, R]");
        const int64_t Hkv = s1->ne[0] / D;
        if (Hq % Hkv != 0 || s2->ne[0] % Hkv != 0)
            return no(w, "attention: Hq %lld not a multiple of Hkv %lld", (long long)Hq,
                      (long long)Hkv);
        const int64_t Dv = s2->ne[0] / Hkv;
        if (Dv > KA_ATTN_MAX_DV)
            return no(w, "attention: Dv %lld above %d", (long long)Dv, KA_ATTN_MAX_DV);
        if (s3->type != LAMINA_TYPE_I32 || s3->ne[0] != 2 || s3->ne[1] != N || s3->ne[2] != 1 ||
            s3->ne[3] != 1)
            return no(w, "attention: src3 must be I32 [2, N]");
        if (!f32dst || d->ne[0] != Dv * Hq || d->ne[1] != N || d->ne[2] != 1 || d->ne[3] != 1)
            return no(w, "attention: dst must be F32 [Dv*Hq, N]");
        if (n->ip[0] < 0 || !isfinite(n->fp[0]) || !isfinite(n->fp[1]) || n->fp[1] < 0.0f)
            return no(w, "attention: window/scale/softcap");
        break;
    }
    default:
        return no(w, "op %u not supported", n->op);
    }
    int kid;
    unsigned grid[3];
    int64_t count;
    if (!plan(be, n, &kid, grid, &count))
        return no(w, "%s: too large a grid for this device", on);
    return 1;
}

int gpu_supports_op(lamina_backend *be, const lamina_node *node)
{
    if (be == NULL || node == NULL)
        return 0;
    return check_node(be, node, NULL);
}

/* The tensor lies inside its buffer, which belongs to this instance. */
static int in_bounds(const lamina_backend *be, const lamina_tensor *t)
{
    const lamina_buffer *b = t->buffer;
    uint32_t block, bytes;
    uint64_t end, s;

    if (b == NULL || b->owner != be || !type_info(t->type, &block, &bytes))
        return 0;
    end = (uint64_t)(t->ne[0] / block) * bytes;
    for (int i = 1; i < 4; i++) {
        if (__builtin_mul_overflow((uint64_t)(t->ne[i] - 1), t->nb[i], &s) ||
            __builtin_add_overflow(end, s, &end))
            return 0;
    }
    if (__builtin_add_overflow(end, t->offset, &end))
        return 0;
    return end <= b->size;
}

static void fill_tensor(ka_tensor *k, const lamina_tensor *t)
{
    k->data = t->buffer->dptr + t->offset;
    for (int i = 0; i < 4; i++) {
        k->ne[i] = t->ne[i];
        k->nb[i] = (int64_t)t->nb[i];
    }
    k->type = (int32_t)t->type;
    k->pad = 0;
}

int gpu_graph_compute(lamina_backend *be, const lamina_graph *graph, char *err,
                      size_t err_size)
{
    char reason[200];
    why w = { reason, sizeof reason };
    int rc, launched = 0;

    if (be == NULL || graph == NULL || !LAMINA_HAS(graph, nodes) ||
        (graph->n_nodes > 0 && graph->nodes == NULL)) {
        gpu_err(err, err_size, "graph_compute: bad graph");
        return LAMINA_EINVAL;
    }
    if (be->lost)
        return gpu_lost_err(be, err, err_size);
    /* 1. every node valid before anything is launched */
    for (uint32_t i = 0; i < graph->n_nodes; i++) {
        const lamina_node *n = lamina_graph_node(graph, i);
        if (n->op == LAMINA_OP_NONE)
            continue;
        if (!check_node(be, n, &w)) {
            gpu_err(err, err_size, "node %u: %s", i, reason);
            return LAMINA_ENOTSUP;
        }
        if (!in_bounds(be, &n->dst)) {
            gpu_err(err, err_size, "node %u: dst outside its buffer (or not this backend's)", i);
            return LAMINA_EINVAL;
        }
        for (uint32_t s = 0; s < n->n_src; s++)
            if (!in_bounds(be, &n->src[s])) {
                gpu_err(err, err_size, "node %u: src%u outside its buffer (or not this "
                        "backend's)", i, s);
                return LAMINA_EINVAL;
            }
    }
    rc = gpu_rt_select(be->rt, be->device, err, err_size);
    if (rc < 0)
        return rc;
    /* 2. one launch per node, in order on the default stream */
    for (uint32_t i = 0; i < graph->n_nodes; i++) {
        const lamina_node *n = lamina_graph_node(graph, i);
        kargs a;
        unsigned grid[3];
        int kid;

        if (n->op == LAMINA_OP_NONE)
            continue;
        memset(&a, 0, sizeof a);
        plan(be, n, &kid, grid, &a.n);
        fill_tensor(&a.t[0], &n->dst);
        for (uint32_t s = 0; s < n->n_src; s++)
            fill_tensor(&a.t[1 + s], &n->src[s]);
        a.n_src = (int32_t)n->n_src;
        a.op = (int32_t)n->op;
        memcpy(a.ip, n->ip, sizeof a.ip);
        memcpy(a.fp, n->fp, sizeof a.fp);
        rc = gpu_rt_launch(be->rt, be->fn[kid], grid, &a, err, err_size);
        if (rc < 0)
            goto failed;
        launched++;
    }
    /* 3. wait */
    if (launched > 0) {
        rc = gpu_rt_sync(be->rt, err, err_size);
        if (rc < 0)
            goto failed;
    }
    return 0;

failed:
    if (rc == LAMINA_EDEVLOST)
        gpu_mark_lost(be, err);
    return rc;
}
