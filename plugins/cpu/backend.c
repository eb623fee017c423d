/*
 * backend.c - the CPU backend instance: open/close, host-memory buffers,
 * supports_op and graph_compute (node checks, bounds checks, dispatch).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backend.h"

static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    if (!err || !err_size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static void log_line(const lamina_host *host, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_line(const lamina_host *host, int level, const char *fmt, ...)
{
    if (!LAMINA_HAS_FN(host, log)) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    host->log(host->log_ctx, level, CPU_PLUGIN_NAME, msg);
}

/* Cores this process may run on. */
static int online_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Pick the kernel table: LAMINA_CPU_ISA=scalar|avx2|avx512|auto, else the
 * best the CPU has. */
static int pick_isa(lamina_backend *be, char *err, size_t err_size)
{
    const char *want = getenv("LAMINA_CPU_ISA");
    const int has2 = cpu_has_avx2(), has512 = cpu_has_avx512();
    int isa;
    if (!want || !*want || strcasecmp(want, "auto") == 0) {
        isa = has512 ? CPU_ISA_AVX512 : has2 ? CPU_ISA_AVX2 : CPU_ISA_SCALAR;
    } else if (strcasecmp(want, "scalar") == 0) {
        isa = CPU_ISA_SCALAR;
    } else if (strcasecmp(want, "avx2") == 0) {
        if (!has2) {
            set_err(err, err_size, "cpu: LAMINA_CPU_ISA=avx2 but the CPU lacks avx2/fma/f16c");
            return LAMINA_ENOTSUP;
        }
        isa = CPU_ISA_AVX2;
    } else if (strcasecmp(want, "avx512") == 0) {
        if (!has512) {
            set_err(err, err_size,
                    "cpu: LAMINA_CPU_ISA=avx512 but the CPU lacks avx512f/bw/vl/vnni");
            return LAMINA_ENOTSUP;
        }
        isa = CPU_ISA_AVX512;
    } else {
        set_err(err, err_size, "cpu: LAMINA_CPU_ISA=%s: expected scalar, avx2, avx512 or auto", want);
        return LAMINA_EINVAL;
    }
    be->isa = isa;
    if (isa == CPU_ISA_AVX512) cpu_kernels_avx512_init(&be->k);
    else if (isa == CPU_ISA_AVX2) cpu_kernels_avx2_init(&be->k);
    else be->k = cpu_kernels_scalar;
    return 0;
}

static int be_open(const lamina_host *host, const lamina_backend_params *params,
                   lamina_backend **out, char *err, size_t err_size)
{
    int rc;
    if (!out || !params || !LAMINA_HAS(params, n_threads)) {
        set_err(err, err_size, "cpu: open: missing or short parameters");
        return LAMINA_EINVAL;
    }
    if (params->device != 0) {
        set_err(err, err_size, "cpu: no device %u (only 0)", params->device);
        return LAMINA_ENODEV;
    }
    lamina_backend *be = calloc(1, sizeof *be);
    if (!be) {
        set_err(err, err_size, "cpu: out of memory");
        return LAMINA_ENOMEM;
    }
    be->host = host;
    rc = pick_isa(be, err, err_size);
    if (rc != 0) goto fail_be;
    be->n_threads = params->n_threads ? (int)params->n_threads : online_cores();
    if (be->n_threads > 256) be->n_threads = 256;
    rc = cpu_pool_create(be->n_threads, &be->pool, err, err_size);
    if (rc != 0) goto fail_be;
    log_line(host, LAMINA_LOG_INFO, "cpu backend: %d threads, %s kernels", be->n_threads, be->k.name);
    *out = be;
    return 0;

fail_be:
    free(be);
    return rc;
}

static void be_buffer_free(lamina_backend *be, lamina_buffer *buf)
{
    if (!be || !buf) return;
    if (buf->prev) buf->prev->next = buf->next;
    else be->buffers = buf->next;
    if (buf->next) buf->next->prev = buf->prev;
    if (buf->owned) free(buf->base);
    free(buf);
}

static void be_close(lamina_backend *be)
{
    if (!be) return;
    while (be->buffers) be_buffer_free(be, be->buffers);
    cpu_pool_destroy(be->pool);
    free(be->scratch);
    free(be);
}

/* MemTotal and MemAvailable from /proc/meminfo, in bytes. */
static void meminfo(uint64_t *avail, uint64_t *total)
{
    *avail = *total = 0;
    FILE *f = fopen("/proc/meminfo", "re");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) *total = (uint64_t)kb * 1024;
            else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) *avail = (uint64_t)kb * 1024;
        }
        fclose(f);
    }
    if (*total == 0) {
        const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psz > 0) *total = (uint64_t)pages * (uint64_t)psz;
    }
    if (*avail == 0) {
        const long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psz > 0) *avail = (uint64_t)pages * (uint64_t)psz;
    }
}

void cpu_meminfo(uint64_t *avail, uint64_t *total)
{
    meminfo(avail, total);
}

static int be_memory(lamina_backend *be, uint64_t *free_bytes, uint64_t *total_bytes)
{
    uint64_t a, t;
    (void)be;
    meminfo(&a, &t);
    if (free_bytes) *free_bytes = a;
    if (total_bytes) *total_bytes = t;
    return 0;
}

static lamina_buffer *link_buffer(lamina_backend *be, uint8_t *base, uint64_t size, int owned)
{
    lamina_buffer *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->owner = be;
    b->base = base;
    b->size = size;
    b->owned = owned;
    b->next = be->buffers;
    if (be->buffers) be->buffers->prev = b;
    be->buffers = b;
    return b;
}

static int be_buffer_alloc(lamina_backend *be, uint64_t size, uint32_t usage,
                           lamina_buffer **out, char *err, size_t err_size)
{
    (void)usage;
    if (!be || !out) {
        set_err(err, err_size, "cpu: buffer_alloc: NULL argument");
        return LAMINA_EINVAL;
    }
    if (size > SIZE_MAX - CPU_ALIGN) {
        set_err(err, err_size, "cpu: buffer of %" PRIu64 " bytes is too large", size);
        return LAMINA_ENOMEM;
    }
    /* round up so vector tails never leave the allocation */
    const size_t bytes = ((size_t)size + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN + CPU_ALIGN;
    void *p = NULL;
    if (posix_memalign(&p, CPU_ALIGN, bytes) != 0) {
        set_err(err, err_size, "cpu: out of memory allocating %" PRIu64 " bytes", size);
        return LAMINA_ENOMEM;
    }
    lamina_buffer *b = link_buffer(be, p, size, 1);
    if (!b) {
        free(p);
        set_err(err, err_size, "cpu: out of memory");
        return LAMINA_ENOMEM;
    }
    *out = b;
    return 0;
}

static int be_buffer_wrap_host(lamina_backend *be, const void *ptr, uint64_t size,
                               lamina_buffer **out, char *err, size_t err_size)
{
    if (!be || !out || (!ptr && size)) {
        set_err(err, err_size, "cpu: buffer_wrap_host: NULL argument");
        return LAMINA_EINVAL;
    }
    /* used in place: the kernels only read weight buffers */
    lamina_buffer *b = link_buffer(be, (uint8_t *)(uintptr_t)ptr, size, 0);
    if (!b) {
        set_err(err, err_size, "cpu: out of memory");
        return LAMINA_ENOMEM;
    }
    *out = b;
    return 0;
}

static int range_ok(const lamina_buffer *b, uint64_t offset, uint64_t size)
{
    return offset <= b->size && size <= b->size - offset;
}

static int be_buffer_upload(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                            const void *src, uint64_t size, char *err, size_t err_size)
{
    if (!buf || buf->owner != be || (!src && size)) {
        set_err(err, err_size, "cpu: upload: bad buffer or source");
        return LAMINA_EINVAL;
    }
    if (!range_ok(buf, offset, size)) {
        set_err(err, err_size, "cpu: upload of %" PRIu64 " bytes at %" PRIu64 " exceeds buffer of %" PRIu64,
                size, offset, buf->size);
        return LAMINA_ERANGE;
    }
    if (!buf->owned) {
        set_err(err, err_size, "cpu: upload into a read-only wrapped host buffer");
        return LAMINA_EINVAL;
    }
    if (size) memcpy(buf->base + offset, src, (size_t)size);
    return 0;
}

static int be_buffer_download(lamina_backend *be, lamina_buffer *buf, uint64_t offset,
                              void *dst, uint64_t size, char *err, size_t err_size)
{
    if (!buf || buf->owner != be || (!dst && size)) {
        set_err(err, err_size, "cpu: download: bad buffer or destination");
        return LAMINA_EINVAL;
    }
    if (!range_ok(buf, offset, size)) {
        set_err(err, err_size, "cpu: download of %" PRIu64 " bytes at %" PRIu64 " exceeds buffer of %" PRIu64,
                size, offset, buf->size);
        return LAMINA_ERANGE;
    }
    if (size) memcpy(dst, buf->base + offset, (size_t)size);
    return 0;
}

static int be_supports_op(lamina_backend *be, const lamina_node *node)
{
    (void)be;
    return node && cpu_node_check(node, NULL, 0);
}

/* The tensor lies inside its buffer, which belongs to this backend. */
static int tensor_in_bounds(const lamina_backend *be, const lamina_tensor *t, int writable)
{
    const lamina_buffer *b = t->buffer;
    if (!b || b->owner != be) return 0;
    if (writable && !b->owned) return 0;
    uint64_t end = (uint64_t)(t->ne[0] / cpu_type_block(t->type)) * cpu_type_size(t->type), s;
    for (int i = 1; i < 4; i++) {
        if (__builtin_mul_overflow((uint64_t)(t->ne[i] - 1), t->nb[i], &s)) return 0;
        if (__builtin_add_overflow(end, s, &end)) return 0;
    }
    if (__builtin_add_overflow(end, t->offset, &end)) return 0;
    return end <= b->size;
}

static int be_graph_compute(lamina_backend *be, const lamina_graph *graph,
                            char *err, size_t err_size)
{
    if (!be || !graph || !LAMINA_HAS(graph, nodes) || (graph->n_nodes && !graph->nodes)) {
        set_err(err, err_size, "cpu: graph_compute: bad graph");
        return LAMINA_EINVAL;
    }
    for (uint32_t i = 0; i < graph->n_nodes; i++) {
        const lamina_node *n = lamina_graph_node(graph, i);
        char why[160];
        if (!cpu_node_check(n, why, sizeof why)) {
            set_err(err, err_size, "cpu: node %u: %s", i, why);
            return LAMINA_ENOTSUP;
        }
        if (!tensor_in_bounds(be, &n->dst, 1)) {
            set_err(err, err_size, "cpu: node %u: dst outside its buffer (or not this backend's)", i);
            return LAMINA_EINVAL;
        }
        for (uint32_t s = 0; s < n->n_src; s++)
            if (!tensor_in_bounds(be, lamina_node_src(n, s), 0)) {
                set_err(err, err_size, "cpu: node %u: src%u outside its buffer (or not this backend's)", i, s);
                return LAMINA_EINVAL;
            }
        char msg[200];
        msg[0] = 0;
        const int rc = cpu_node_run(be, n, msg, sizeof msg);
        if (rc != 0) {
            set_err(err, err_size, "cpu: node %u: %s", i, msg);
            return rc;
        }
    }
    return 0;
}

const lamina_backend_iface cpu_backend_iface = {
    .struct_size = sizeof(lamina_backend_iface),
    .open = be_open,
    .close = be_close,
    .memory = be_memory,
    .buffer_alloc = be_buffer_alloc,
    .buffer_wrap_host = be_buffer_wrap_host,
    .buffer_free = be_buffer_free,
    .buffer_upload = be_buffer_upload,
    .buffer_download = be_buffer_download,
    .supports_op = be_supports_op,
    .graph_compute = be_graph_compute,
};
