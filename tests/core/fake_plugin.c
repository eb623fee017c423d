/*
 * fake_plugin.c - plugins built only for the core tests.
 *
 * Compiled once per behaviour with -DFAKE_<FAULT> (see tests/core.am).
 * Without a fault macro it is GOOD: a small, correct backend over host
 * memory implementing ADD, MUL, SCALE, RMS_NORM, GLU and MUL_MAT for F32,
 * with an honest supports_op.  The faults:
 *   FAKE_CRASH_PROBE     SIGSEGV inside probe
 *   FAKE_CRASH_COMPUTE   abort() inside graph_compute (during the self-test)
 *   FAKE_HANG            probe never returns
 *   FAKE_EXIT            probe calls _exit(0)
 *   FAKE_GARBAGE         probe writes garbage on the report fd
 *   FAKE_ABI_MAJOR       descriptor says ABI 2.0
 *   FAKE_TRUNCATED       descriptor struct_size too small
 *   FAKE_NO_ENTRY        exports no lamina_plugin_entry
 *   FAKE_NEEDDEP         needs a library that is absent at run time
 *   FAKE_RULE            declares a component rule this host violates
 *   FAKE_WRONG           ADD computes a + b + 1
 *   FAKE_NEWER_MINOR     descriptor of ABI 1.7 with extra trailing fields
 * FAKE_NAME gives the descriptor's name.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lamina/plugin.h"

#ifndef FAKE_NAME
#define FAKE_NAME "fakegood"
#endif

#ifdef FAKE_NEEDDEP
int fakedep_answer(void);
#endif

struct lamina_buffer {
    uint64_t size;
    unsigned char *data;
    int wrapped;
    struct lamina_buffer *next;
};

struct lamina_backend {
    struct lamina_buffer *buffers;
};

static int fail(char *err, size_t n, int code, const char *msg)
{
    if (err != NULL && n > 0)
        snprintf(err, n, "%s", msg);
    return code;
}

static int be_open(const lamina_host *host, const lamina_backend_params *params,
                   lamina_backend **out, char *err, size_t err_size)
{
    (void)host;
    if (params == NULL || params->device != 0)
        return fail(err, err_size, LAMINA_ENODEV, "fake: only device 0");
    lamina_backend *be = calloc(1, sizeof(*be));
    if (be == NULL)
        return fail(err, err_size, LAMINA_ENOMEM, "fake: out of memory");
    *out = be;
    return 0;
}

static void be_close(lamina_backend *be)
{
    while (be->buffers != NULL) {
        struct lamina_buffer *b = be->buffers;
        be->buffers = b->next;
        if (!b->wrapped)
            free(b->data);
        free(b);
    }
    free(be);
}

static int be_memory(lamina_backend *be, uint64_t *free_bytes, uint64_t *total_bytes)
{
    (void)be;
    *free_bytes = 0;
    *total_bytes = 0;
    return 0;
}

static int be_alloc(lamina_backend *be, uint64_t size, uint32_t usage, lamina_buffer **out,
                    char *err, size_t err_size)
{
    (void)usage;
    if (size > ((uint64_t)1 << 34))
        return fail(err, err_size, LAMINA_ENOMEM, "fake: too large");
    lamina_buffer *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return fail(err, err_size, LAMINA_ENOMEM, "fake: out of memory");
    b->data = malloc(size ? (size_t)size : 1);
    if (b->data == NULL) {
        free(b);
        return fail(err, err_size, LAMINA_ENOMEM, "fake: out of memory");
    }
    b->size = size;
    b->next = be->buffers;
    be->buffers = b;
    *out = b;
    return 0;
}

static int be_wrap(lamina_backend *be, const void *ptr, uint64_t size, lamina_buffer **out,
                   char *err, size_t err_size)
{
    lamina_buffer *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return fail(err, err_size, LAMINA_ENOMEM, "fake: out of memory");
    b->data = (unsigned char *)(uintptr_t)ptr;
    b->size = size;
    b->wrapped = 1;
    b->next = be->buffers;
    be->buffers = b;
    *out = b;
    return 0;
}

static void be_free(lamina_backend *be, lamina_buffer *buf)
{
    for (lamina_buffer **pp = &be->buffers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == buf) {
            *pp = buf->next;
            if (!buf->wrapped)
                free(buf->data);
            free(buf);
            return;
        }
    }
}

static int be_upload(lamina_backend *be, lamina_buffer *buf, uint64_t offset, const void *src,
                     uint64_t size, char *err, size_t err_size)
{
    (void)be;
    if (buf->wrapped || offset > buf->size || size > buf->size - offset)
        return fail(err, err_size, LAMINA_EINVAL, "fake: upload out of range");
    memcpy(buf->data + offset, src, (size_t)size);
    return 0;
}

static int be_download(lamina_backend *be, lamina_buffer *buf, uint64_t offset, void *dst,
                       uint64_t size, char *err, size_t err_size)
{
    (void)be;
    if (offset > buf->size || size > buf->size - offset)
        return fail(err, err_size, LAMINA_EINVAL, "fake: download out of range");
    memcpy(dst, buf->data + offset, (size_t)size);
    return 0;
}

/* ---- tensor helpers ---------------------------------------------------- */

static int is_f32(const lamina_tensor *t)
{
    return t->type == LAMINA_TYPE_F32 && t->buffer != NULL && t->nb[0] == sizeof(float);
}

static int same_shape(const lamina_tensor *a, const lamina_tensor *b)
{
    for (int i = 0; i < 4; i++)
        if (a->ne[i] != b->ne[i])
            return 0;
    return 1;
}

/* Whole tensor inside its buffer. */
static int in_bounds(const lamina_tensor *t)
{
    uint64_t last = t->offset;
    for (int i = 0; i < 4; i++) {
        if (t->ne[i] < 1)
            return 0;
        last += (uint64_t)(t->ne[i] - 1) * (i == 0 ? sizeof(float) : t->nb[i]);
    }
    return last + sizeof(float) <= t->buffer->size;
}

static float *row(const lamina_tensor *t, int64_t i1, int64_t i2, int64_t i3)
{
    return (float *)(void *)(t->buffer->data + t->offset + (uint64_t)i1 * t->nb[1] +
                             (uint64_t)i2 * t->nb[2] + (uint64_t)i3 * t->nb[3]);
}

static int be_supports(lamina_backend *be, const lamina_node *n)
{
    (void)be;
    const lamina_tensor *d = &n->dst, *a = &n->src[0], *b = &n->src[1];
    if (!is_f32(d) || n->n_src < 1 || !is_f32(a) || !in_bounds(d) || !in_bounds(a))
        return 0;
    switch (n->op) {
    case LAMINA_OP_ADD:
    case LAMINA_OP_MUL:
        if (n->n_src != 2 || !is_f32(b) || !in_bounds(b) || !same_shape(d, a))
            return 0;
        return same_shape(a, b) ||
               (b->ne[0] == a->ne[0] && b->ne[1] == 1 && b->ne[2] == 1 && b->ne[3] == 1);
    case LAMINA_OP_SCALE:
        return n->n_src == 1 && same_shape(d, a);
    case LAMINA_OP_RMS_NORM:
        if (!same_shape(d, a))
            return 0;
        if (n->n_src == 1)
            return 1;
        return n->n_src == 2 && is_f32(b) && in_bounds(b) && b->ne[0] == a->ne[0];
    case LAMINA_OP_GLU:
        return n->n_src == 2 && is_f32(b) && in_bounds(b) && same_shape(a, b) &&
               same_shape(d, a) &&
               (n->ip[0] == LAMINA_ACT_SILU || n->ip[0] == LAMINA_ACT_GELU_TANH);
    case LAMINA_OP_MUL_MAT:
        /* W [K, N] (2-D), X [K, M, B2, B3], dst [N, M, B2, B3] */
        return n->n_src == 2 && is_f32(b) && in_bounds(b) && a->ne[2] == 1 && a->ne[3] == 1 &&
               a->ne[0] == b->ne[0] && d->ne[0] == a->ne[1] && d->ne[1] == b->ne[1] &&
               d->ne[2] == b->ne[2] && d->ne[3] == b->ne[3];
    default:
        return 0;
    }
}

static int compute_node(const lamina_node *n, char *err, size_t err_size)
{
    const lamina_tensor *d = &n->dst, *a = &n->src[0], *b = &n->src[1];
    int64_t K = a->ne[0];
    for (int64_t i3 = 0; i3 < d->ne[3]; i3++)
    for (int64_t i2 = 0; i2 < d->ne[2]; i2++)
    for (int64_t i1 = 0; i1 < d->ne[1]; i1++) {
        float *y = row(d, i1, i2, i3);
        switch (n->op) {
        case LAMINA_OP_ADD:
        case LAMINA_OP_MUL: {
            /* y = a op b, b broadcast over rows when it is one row */
            const float *x = row(a, i1, i2, i3);
            int bc = !same_shape(a, b);
            const float *z = bc ? row(b, 0, 0, 0) : row(b, i1, i2, i3);
            for (int64_t k = 0; k < K; k++) {
#ifdef FAKE_WRONG
                y[k] = n->op == LAMINA_OP_ADD ? x[k] + z[k] + 1.0f : x[k] * z[k];
#else
                y[k] = n->op == LAMINA_OP_ADD ? x[k] + z[k] : x[k] * z[k];
#endif
            }
            break;
        }
        case LAMINA_OP_SCALE: {
            /* y = s * x */
            const float *x = row(a, i1, i2, i3);
            for (int64_t k = 0; k < K; k++)
                y[k] = n->fp[0] * x[k];
            break;
        }
        case LAMINA_OP_RMS_NORM: {
            /* y = x / sqrt(mean(x^2) + eps) * w */
            const float *x = row(a, i1, i2, i3);
            const float *w = n->n_src == 2 ? row(b, 0, 0, 0) : NULL;
            double ss = 0;
            for (int64_t k = 0; k < K; k++)
                ss += (double)x[k] * x[k];
            float inv = (float)(1.0 / sqrt(ss / (double)K + n->fp[0]));
            for (int64_t k = 0; k < K; k++)
                y[k] = x[k] * inv * (w ? w[k] : 1.0f);
            break;
        }
        case LAMINA_OP_GLU: {
            /* y = act(gate) * up */
            const float *g = row(a, i1, i2, i3), *u = row(b, i1, i2, i3);
            for (int64_t k = 0; k < K; k++) {
                double x = g[k], act;
                if (n->ip[0] == LAMINA_ACT_SILU)
                    act = x / (1.0 + exp(-x));
                else
                    act = 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
                y[k] = (float)(act * u[k]);
            }
            break;
        }
        case LAMINA_OP_MUL_MAT: {
            /* y[nn] = sum_k W[k, nn] * X[k, m] with m = i1 */
            const float *x = row(b, i1, i2, i3);
            for (int64_t nn = 0; nn < d->ne[0]; nn++) {
                const float *w = row(a, nn, 0, 0);
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)w[k] * x[k];
                y[nn] = (float)s;
            }
            break;
        }
        default:
            return fail(err, err_size, LAMINA_ENOTSUP, "fake: op not supported");
        }
    }
    return 0;
}

static int be_compute(lamina_backend *be, const lamina_graph *g, char *err, size_t err_size)
{
#ifdef FAKE_CRASH_COMPUTE
    if (g->n_nodes > 0)
        abort();
#endif
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        if (!be_supports(be, &g->nodes[i]))
            return fail(err, err_size, LAMINA_ENOTSUP, "fake: node not supported");
        int rc = compute_node(&g->nodes[i], err, err_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const lamina_backend_iface iface = {
    .struct_size = sizeof(lamina_backend_iface),
    .open = be_open,
    .close = be_close,
    .memory = be_memory,
    .buffer_alloc = be_alloc,
    .buffer_wrap_host = be_wrap,
    .buffer_free = be_free,
    .buffer_upload = be_upload,
    .buffer_download = be_download,
    .supports_op = be_supports,
    .graph_compute = be_compute,
};

/* ---- probe -------------------------------------------------------------- */

static int probe(const lamina_host *host, const lamina_probe_sink *sink, char *err,
                 size_t err_size)
{
    (void)host; (void)err; (void)err_size;
#if defined(FAKE_CRASH_PROBE)
    raise(SIGSEGV);
#elif defined(FAKE_HANG)
    for (;;)
        pause();
#elif defined(FAKE_EXIT)
    _exit(0);
#elif defined(FAKE_GARBAGE)
    static const char junk[] = "\x01\x02garbage, not json\n";
    if (write(3, junk, sizeof(junk) - 1) < 0)
        return LAMINA_EIO;
#endif
#ifdef FAKE_NEEDDEP
    if (fakedep_answer() != 42)
        return LAMINA_EIO;
#endif
#ifdef FAKE_RULE
    sink->component(sink->ctx, "fake-runtime", "1.2.0", "2.0.0", LAMINA_RULE_SAME_MAJOR, NULL);
#else
    sink->component(sink->ctx, "fake-runtime", "1.4.2", "1.0.0", LAMINA_RULE_SAME_MAJOR, NULL);
#endif
    /* A file whose change must invalidate the cached probe (cache tests). */
    const char *dep = getenv("FAKE_DEP_FILE");
    if (dep != NULL && dep[0] != '\0')
        sink->file(sink->ctx, dep);
    const char *note = getenv("FAKE_NOTE");
    if (note != NULL)
        sink->note(sink->ctx, note);
    lamina_device_info info;
    memset(&info, 0, sizeof(info));
    info.struct_size = sizeof(info);
    info.index = 0;
    info.name = "fake host device";
    info.type = "cpu";
    info.driver_name = "fakedrv";
    info.driver_version = "3.1.4";
    info.runtime_version = "1.4.2";
    info.api_version = "1.0";
    info.arch = "fakearch:feat+";
    info.features = "f32";
    info.mem_total = (uint64_t)1 << 30;
    info.mem_free = (uint64_t)1 << 29;
    sink->device(sink->ctx, &info);
    return 0;
}

#ifdef FAKE_NEWER_MINOR
/* A descriptor from a newer minor: the 1.0 fields, then more. */
static const struct {
    lamina_plugin_desc base;
    void *added_in_1_7[4];
} desc_storage = {
    .base = {
        .abi_major = LAMINA_PLUGIN_ABI_MAJOR,
        .abi_minor = 7,
        .struct_size = sizeof(lamina_plugin_desc) + 4 * sizeof(void *),
        .name = FAKE_NAME,
        .version = "0.0.1",
        .description = "fake plugin for the core tests (newer minor)",
        .probe = probe,
        .backend = &iface,
    },
};
#define DESC (&desc_storage.base)
#else
static const char *const targets[] = { "fakearch", "otherarch", NULL };
static const lamina_component built[] = { { "fake-runtime", "1.0.0" }, { NULL, NULL } };
static const lamina_plugin_desc desc = {
#ifdef FAKE_ABI_MAJOR
    .abi_major = 2,
#else
    .abi_major = LAMINA_PLUGIN_ABI_MAJOR,
#endif
    .abi_minor = LAMINA_PLUGIN_ABI_MINOR,
#ifdef FAKE_TRUNCATED
    .struct_size = 24,
#else
    .struct_size = sizeof(lamina_plugin_desc),
#endif
    .name = FAKE_NAME,
    .version = "0.0.1",
    .description = "fake plugin for the core tests",
    .built_against = built,
    .code_targets = targets,
    .probe = probe,
    .selftest = NULL,
    .backend = &iface,
};
#define DESC (&desc)
#endif

#ifdef FAKE_NO_ENTRY
LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *lamina_plugin_entry_misspelt(const lamina_host *host);
LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *lamina_plugin_entry_misspelt(const lamina_host *host)
#else
LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host);
LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host)
#endif
{
    (void)host;
    return DESC;
}
