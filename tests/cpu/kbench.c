/*
 * kbench.c - micro-benchmark of the CPU plugin's MUL_MAT kernels at the
 * default model's (Gemma 3 270M Q4_K_M) shapes.  Not a test.
 *
 *   top_builddir=BUILD kbench [threads] [reps] [shape-index]
 *   top_builddir=BUILD kbench [threads] [reps] deq
 *
 * Honours LAMINA_CPU_ISA like the plugin.  For each shape prints the median
 * time of `reps` runs, GFLOP/s (2*K*N*M / t) and, for M = 1, the weight
 * bytes streamed per second.
 *
 * "deq" instead compares, for q2_K, q3_K, iq4_nl, iq4_xs, mxfp4 (and q4_K
 * as a yardstick) at K = N = 2048, the plugin's MUL_MAT on the quantized
 * weights with dequantize-then-multiply in the same plugin: a two-node
 * graph GET_ROWS (every weight row to f32) then MUL_MAT on f32 weights.
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

/* Median wall time of `reps` runs of g (after one warm-up run); *cpu gets
 * the median process CPU time (all threads), steadier on a shared host. */
static double time_graph(const lamina_backend_iface *ifc, lamina_backend *be, const lamina_graph *g,
                         int reps, double *cpu)
{
    char err[256];
    double t[64], tc[64];
    const int nr = reps < 1 ? 1 : reps < 64 ? reps : 64;
    if (ifc->graph_compute(be, g, err, sizeof err) != 0) {
        fprintf(stderr, "compute: %s\n", err);
        exit(1);
    }
    for (int r = 0; r < nr; r++) {
        const double t0 = now_s(), c0 = cpu_s();
        ifc->graph_compute(be, g, err, sizeof err);
        t[r] = now_s() - t0;
        tc[r] = cpu_s() - c0;
    }
    qsort(t, (size_t)nr, sizeof t[0], cmp_d);
    qsort(tc, (size_t)nr, sizeof tc[0], cmp_d);
    *cpu = tc[nr / 2];
    return t[nr / 2];
}

static lamina_buffer *alloc_or_die(const lamina_backend_iface *ifc, lamina_backend *be, uint64_t n)
{
    char err[256];
    lamina_buffer *b = NULL;
    if (ifc->buffer_alloc(be, n, LAMINA_BUFFER_ACTIVATIONS, &b, err, sizeof err) != 0) {
        fprintf(stderr, "alloc: %s\n", err);
        exit(1);
    }
    return b;
}

static lamina_tensor mat(uint32_t ty, int64_t ne0, int64_t ne1, lamina_buffer *b)
{
    const uint64_t rowb = lamina_row_size(ty, ne0);
    return (lamina_tensor){ ty, 0, { ne0, ne1, 1, 1 },
        { lamina_type_get(ty)->type_size, rowb, rowb * (uint64_t)ne1, rowb * (uint64_t)ne1 }, b, 0 };
}

/* In-place quantized MUL_MAT against GET_ROWS + f32 MUL_MAT. */
static void bench_deq(const lamina_backend_iface *ifc, lamina_backend *be, int reps)
{
    static const uint32_t types[] = { LAMINA_TYPE_Q2_K, LAMINA_TYPE_Q3_K, LAMINA_TYPE_IQ4_NL,
                                      LAMINA_TYPE_IQ4_XS, LAMINA_TYPE_Q4_K, LAMINA_TYPE_MXFP4 };
    const int64_t K = 2048, N = 2048;
    static const int64_t Ms[] = { 1, 16 };
    char err[256];
    printf("%-7s %5s %5s %3s  %9s %9s %9s  %11s %11s %9s  %7s\n", "type", "K", "N", "M", "quant ms",
           "cpu ms", "GF/cpu-s", "deq+f32 ms", "cpu ms", "GF/cpu-s", "speedup");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t ty = types[ti];
        const uint64_t rowb = lamina_row_size(ty, K);
        uint8_t *w = malloc(rowb * (uint64_t)N);
        float *tmp = malloc((size_t)K * sizeof(float));
        for (int64_t r = 0; r < N; r++) {
            if (r < 64) {
                for (int64_t k = 0; k < K; k++) tmp[k] = rndf();
                lamina_quantize_row(ty, tmp, w + rowb * (uint64_t)r, K);
            } else {
                memcpy(w + rowb * (uint64_t)r, w + rowb * (uint64_t)(r % 64), rowb);
            }
        }
        lamina_buffer *wb, *ib, *fb;
        if (ifc->buffer_wrap_host(be, w, rowb * (uint64_t)N, &wb, err, sizeof err) != 0) {
            fprintf(stderr, "wrap: %s\n", err);
            exit(1);
        }
        int32_t *ids = malloc((size_t)N * sizeof *ids);
        for (int64_t i = 0; i < N; i++) ids[i] = (int32_t)i;
        ib = alloc_or_die(ifc, be, (uint64_t)N * 4);
        ifc->buffer_upload(be, ib, 0, ids, (uint64_t)N * 4, err, sizeof err);
        fb = alloc_or_die(ifc, be, (uint64_t)(K * N) * 4);
        for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++) {
            const int64_t M = Ms[mi];
            float *x = malloc((size_t)(K * M) * sizeof(float));
            for (int64_t i = 0; i < K * M; i++) x[i] = rndf();
            lamina_buffer *xb = alloc_or_die(ifc, be, (uint64_t)(K * M) * 4);
            lamina_buffer *db = alloc_or_die(ifc, be, (uint64_t)(N * M) * 4);
            ifc->buffer_upload(be, xb, 0, x, (uint64_t)(K * M) * 4, err, sizeof err);
            lamina_node q;
            memset(&q, 0, sizeof q);
            q.op = LAMINA_OP_MUL_MAT;
            q.n_src = 2;
            q.src[0] = mat(ty, K, N, wb);
            q.src[1] = mat(LAMINA_TYPE_F32, K, M, xb);
            q.dst = mat(LAMINA_TYPE_F32, N, M, db);
            lamina_node dq[2];
            memset(dq, 0, sizeof dq);
            dq[0].op = LAMINA_OP_GET_ROWS;
            dq[0].n_src = 2;
            dq[0].src[0] = q.src[0];
            dq[0].src[1] = mat(LAMINA_TYPE_I32, N, 1, ib);
            dq[0].dst = mat(LAMINA_TYPE_F32, K, N, fb);
            dq[1] = q;
            dq[1].src[0] = dq[0].dst;
            if (!ifc->supports_op(be, &q) || !ifc->supports_op(be, &dq[0]) || !ifc->supports_op(be, &dq[1])) {
                printf("%-7s declined by supports_op\n", lamina_type_get(ty)->name);
            } else {
                lamina_graph g1 = { sizeof g1, 1, &q, sizeof q, 0 }, g2 = { sizeof g2, 2, dq, sizeof dq[0], 0 };
                double c1, c2;
                const double t1 = time_graph(ifc, be, &g1, reps, &c1);
                const double t2 = time_graph(ifc, be, &g2, reps, &c2);
                const double fl = 2.0 * (double)K * (double)N * (double)M;
                /* speedup in CPU time: what the work costs, whatever else runs */
                printf("%-7s %5lld %5lld %3lld  %9.3f %9.3f %9.2f  %11.3f %11.3f %9.2f  %6.2fx\n",
                       lamina_type_get(ty)->name, (long long)K, (long long)N, (long long)M, t1 * 1e3,
                       c1 * 1e3, fl / c1 * 1e-9, t2 * 1e3, c2 * 1e3, fl / c2 * 1e-9, c2 / c1);
                fflush(stdout);
            }
            ifc->buffer_free(be, xb);
            ifc->buffer_free(be, db);
            free(x);
        }
        ifc->buffer_free(be, wb);
        ifc->buffer_free(be, ib);
        ifc->buffer_free(be, fb);
        free(ids);
        free(w);
        free(tmp);
    }
}

int main(int argc, char **argv)
{
    const int threads = argc > 1 ? atoi(argv[1]) : 0;
    const int reps = argc > 2 ? atoi(argv[2]) : 9;
    const int deq = argc > 3 && strcmp(argv[3], "deq") == 0;
    const int only = argc > 3 && !deq ? atoi(argv[3]) : -1;
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

    if (deq) {
        printf("# isa=%s threads=%d reps=%d (median)\n",
               getenv("LAMINA_CPU_ISA") ? getenv("LAMINA_CPU_ISA") : "auto", threads, reps);
        bench_deq(ifc, be, reps);
        ifc->close(be);
        dlclose(h);
        return 0;
    }

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
            lamina_graph g = { sizeof g, 1, &n, sizeof n, 0 };
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
