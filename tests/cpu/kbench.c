/*
 * kbench.c - micro-benchmark of the CPU plugin's MUL_MAT kernels at the
 * default model's (Gemma 3 270M Q4_K_M) shapes.  Not a test.
 *
 *   top_builddir=BUILD kbench [threads] [reps] [shape-index]
 *
 * Honours LAMINA_CPU_ISA like the plugin.  For each shape prints the median
 * time of `reps` runs, GFLOP/s (2*K*N*M / t) and, for M = 1, the weight
 * bytes streamed per second.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lamina/plugin.h"
#include "lamina/quant.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process (all threads): on a shared machine this
 * is closer to the work done than wall time. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rs = 88172645463325252ULL;
static float rndf(void)
{
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (float)((rs >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

int main(int argc, char **argv)
{
    const int threads = argc > 1 ? atoi(argv[1]) : 0;
    const int reps = argc > 2 ? atoi(argv[2]) : 9;
    const int only = argc > 3 ? atoi(argv[3]) : -1;
    const char *top = getenv("top_builddir");
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/plugins/cpu/.libs/cpu.so", top ? top : "..");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "dlopen %s: %s\n", path, dlerror()); return 1; }
    lamina_plugin_entry_fn entry = (lamina_plugin_entry_fn)(uintptr_t)dlsym(h, LAMINA_PLUGIN_ENTRY_NAME);
    const lamina_plugin_desc *d = entry ? entry(NULL) : NULL;
    if (!d) { fprintf(stderr, "no descriptor\n"); return 1; }
    const lamina_backend_iface *ifc = d->backend;
    lamina_backend *be;
    lamina_backend_params p = { sizeof p, 0, (uint32_t)threads, 0 };
    if (ifc->open(NULL, &p, &be, err, sizeof err) != 0) { fprintf(stderr, "open: %s\n", err); return 1; }

    static const struct { uint32_t type; int64_t K, N; const char *what; } shapes[] = {
        { LAMINA_TYPE_Q8_0, 640, 262144, "output (tied token_embd)" },
        { LAMINA_TYPE_Q5_0, 640, 2048,   "ffn_gate/up" },
        { LAMINA_TYPE_Q4_K, 1024, 640,   "attn_output" },
        { LAMINA_TYPE_Q6_K, 2048, 640,   "ffn_down" },
        { LAMINA_TYPE_Q5_0, 640, 1024,   "attn_q (q5_0: K=640 is not a multiple of 256)" },
        { LAMINA_TYPE_Q8_0, 640, 2048,   "q8_0 small" },
    };
    static const int64_t Ms[] = { 1, 64 };
    printf("# isa=%s threads=%d reps=%d (median)\n", getenv("LAMINA_CPU_ISA") ? getenv("LAMINA_CPU_ISA") : "auto",
           threads, reps);
    printf("%-6s %6s %7s %3s  %9s %9s %8s %10s  %s\n", "type", "K", "N", "M", "ms", "GFLOP/s", "GB/s",
           "GF/cpu-s", "tensor");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        if (only >= 0 && (size_t)only != s) continue;
        const uint32_t ty = shapes[s].type;
        const int64_t K = shapes[s].K, N = shapes[s].N;
        const uint64_t rowb = lamina_row_size(ty, K);
        /* weights: 64 distinct random rows, repeated */
        uint8_t *w = malloc(rowb * (uint64_t)N);
        float *tmp = malloc((size_t)K * sizeof(float));
        for (int64_t r = 0; r < 64 && r < N; r++) {
            for (int64_t k = 0; k < K; k++) tmp[k] = rndf();
            lamina_quantize_row(ty, tmp, w + rowb * (uint64_t)r, K);
        }
        for (int64_t r = 64; r < N; r++) memcpy(w + rowb * (uint64_t)r, w + rowb * (uint64_t)(r % 64), rowb);
        lamina_buffer *wb, *xb, *db;
        ifc->buffer_wrap_host(be, w, rowb * (uint64_t)N, &wb, err, sizeof err);
        for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
            const int64_t M = Ms[mi];
            float *x = malloc((size_t)(K * M) * sizeof(float));
            for (int64_t i = 0; i < K * M; i++) x[i] = rndf();
            if (ifc->buffer_alloc(be, (uint64_t)(K * M) * 4, LAMINA_BUFFER_ACTIVATIONS, &xb, err, sizeof err) ||
                ifc->buffer_alloc(be, (uint64_t)(N * M) * 4, LAMINA_BUFFER_ACTIVATIONS, &db, err, sizeof err)) {
                fprintf(stderr, "alloc: %s\n", err);
                return 1;
            }
            ifc->buffer_upload(be, xb, 0, x, (uint64_t)(K * M) * 4, err, sizeof err);
            lamina_node n;
            memset(&n, 0, sizeof n);
            n.op = LAMINA_OP_MUL_MAT;
            n.n_src = 2;
            n.src[0] = (lamina_tensor){ ty, 0, { K, N, 1, 1 },
                { lamina_type_get(ty)->type_size, rowb, rowb * (uint64_t)N, rowb * (uint64_t)N }, wb, 0 };
            n.src[1] = (lamina_tensor){ LAMINA_TYPE_F32, 0, { K, M, 1, 1 },
                { 4, (uint64_t)K * 4, (uint64_t)(K * M) * 4, (uint64_t)(K * M) * 4 }, xb, 0 };
            n.dst = (lamina_tensor){ LAMINA_TYPE_F32, 0, { N, M, 1, 1 },
                { 4, (uint64_t)N * 4, (uint64_t)(N * M) * 4, (uint64_t)(N * M) * 4 }, db, 0 };
            lamina_graph g = { sizeof g, 1, &n };
            double t[64], tc[64];
            const int nr = reps < 64 ? reps : 64;
            if (ifc->graph_compute(be, &g, err, sizeof err) != 0) { fprintf(stderr, "compute: %s\n", err); return 1; }
            for (int r = 0; r < nr; r++) {
                const double t0 = now_s(), c0 = cpu_s();
                ifc->graph_compute(be, &g, err, sizeof err);
                t[r] = now_s() - t0;
                tc[r] = cpu_s() - c0;
            }
            qsort(t, (size_t)nr, sizeof t[0], cmp_d);
            qsort(tc, (size_t)nr, sizeof tc[0], cmp_d);
            const double med = t[nr / 2], cmed = tc[nr / 2];
            const double gf = 2.0 * (double)K * (double)N * (double)M / med * 1e-9;
            /* GFLOP/s per core-second of CPU time */
            const double gfc = 2.0 * (double)K * (double)N * (double)M / cmed * 1e-9;
            printf("%-6s %6lld %7lld %3lld  %9.3f %9.2f %8.2f %10.2f  %s\n", lamina_type_get(ty)->name,
                   (long long)K, (long long)N, (long long)M, med * 1e3, gf,
                   (double)rowb * (double)N / med * 1e-9, gfc, shapes[s].what);
            fflush(stdout);
            ifc->buffer_free(be, xb);
            ifc->buffer_free(be, db);
            free(x);
        }
        ifc->buffer_free(be, wb);
        free(w);
        free(tmp);
    }
    ifc->close(be);
    dlclose(h);
    return 0;
}
