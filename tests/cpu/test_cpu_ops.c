/*
 * test_cpu_ops.c - the CPU plugin (cpu.so) against the core's reference.
 *
 * dlopens $top_builddir/plugins/cpu/.libs/cpu.so, checks the descriptor and
 * probe, then for every kernel ISA this CPU has (LAMINA_CPU_ISA = scalar,
 * avx2, avx512) opens the backend with 1 thread and with several, and runs
 * every op on seeded random inputs (odd and aligned sizes, every weight
 * type) on each, comparing each result with lamina_ref_node.  Prints TAP:
 * one line per case and ISA, ok when the case passes at every thread
 * count (a failure names the thread count).
 */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "lamina/quant.h"
#include "ref.h"
#include "selftest.h"

static int n_test, n_fail;

static void tap(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tap(int ok, const char *fmt, ...)
{
    va_list ap;
    n_test++;
    if (!ok) n_fail++;
    printf("%s %d - ", ok ? "ok" : "not ok", n_test);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* ---------------- deterministic random numbers ---------------- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd64(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}
static float rndf(void) { return (float)((rnd64() >> 40) / (double)(1 << 24)) * 2.0f - 1.0f; }

/* ---------------- host tensors ---------------- */

/* A host tensor: `t` describes it for the reference (buffer = the host
 * block itself), `mem` holds its bytes. */
typedef struct {
    lamina_tensor t;
    uint8_t *mem;
    size_t bytes;
} htensor;

static uint32_t tsize(uint32_t type) { return lamina_type_get(type)->type_size; }
static uint32_t tblock(uint32_t type) { return lamina_type_get(type)->block_size; }

/* Contiguous tensor, optionally with `pad` extra bytes after every row. */
static htensor ht_new(uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3, size_t pad)
{
    htensor h;
    memset(&h, 0, sizeof h);
    h.t.type = type;
    h.t.ne[0] = ne0; h.t.ne[1] = ne1; h.t.ne[2] = ne2; h.t.ne[3] = ne3;
    h.t.nb[0] = tsize(type);
    h.t.nb[1] = (uint64_t)(ne0 / tblock(type)) * tsize(type) + pad;
    h.t.nb[2] = h.t.nb[1] * (uint64_t)ne1;
    h.t.nb[3] = h.t.nb[2] * (uint64_t)ne2;
    h.bytes = (size_t)(h.t.nb[3] * (uint64_t)ne3);
    h.mem = calloc(1, h.bytes + 64);
    h.t.buffer = (lamina_buffer *)h.mem;
    return h;
}

static void ht_free(htensor *h) { free(h->mem); h->mem = NULL; }

/* Random floats in [-amp, amp], rounded into the type row by row. */
static void ht_fill(htensor *h, float amp)
{
    const int64_t K = h->t.ne[0];
    float *row = malloc((size_t)K * sizeof(float));
    for (int64_t r = 0; r < h->t.ne[1] * h->t.ne[2] * h->t.ne[3]; r++) {
        for (int64_t k = 0; k < K; k++) row[k] = amp * rndf();
        const int64_t i1 = r % h->t.ne[1], i2 = (r / h->t.ne[1]) % h->t.ne[2],
                      i3 = r / (h->t.ne[1] * h->t.ne[2]);
        uint8_t *dst = h->mem + i1 * h->t.nb[1] + i2 * h->t.nb[2] + i3 * h->t.nb[3];
        if (lamina_quantize_row(h->t.type, row, dst, K) != 0) {
            fprintf(stderr, "quantize_row failed for type %u\n", h->t.type);
            exit(99);
        }
    }
    free(row);
}

static void ht_fill_i32(htensor *h, int32_t lo, int32_t hi)
{
    int32_t *p = (int32_t *)h->mem;
    for (size_t i = 0; i < h->bytes / 4; i++) p[i] = lo + (int32_t)(rnd64() % (uint64_t)(hi - lo + 1));
}

/* ---------------- the plugin ---------------- */

static const lamina_plugin_desc *desc;
static const lamina_backend_iface *ifc;

static void *ref_base(void *ctx, lamina_buffer *buf)
{
    (void)ctx;
    return buf;
}

/* Compare a and r: error = max|a - r| / max(max|r|, floor). */
static double rel_err(const float *a, const float *r, size_t n, double floor_)
{
    double mx = floor_, e = 0.0;
    for (size_t i = 0; i < n; i++) if (fabs(r[i]) > mx) mx = fabs(r[i]);
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)r[i]);
        if (!(d <= e)) e = d;  /* catches NaN */
    }
    return e / mx;
}

/* Run one node on the backend and on the reference.  srcs[] are host
 * tensors (their `t` used for the reference); `dst` is a host tensor with
 * the initial contents of dst.  When dst_is_src >= 0 the node runs in place
 * on that source.  Returns the relative error, or -1 on a backend error. */
static double run_case(lamina_backend *be, lamina_node *node, htensor *srcs, int n_src,
                       htensor *dst, int dst_is_src, char *msg, size_t msg_size)
{
    lamina_buffer *bufs[LAMINA_MAX_SRC + 1] = {0};
    double result = -1.0;
    char err[256] = "";
    lamina_node pn = *node;      /* the plugin's copy */
    lamina_node rn = *node;      /* the reference's copy */
    htensor rdst;                /* reference output */
    memset(&rdst, 0, sizeof rdst);

    /* backend copies of every source and of dst */
    for (int i = 0; i < n_src; i++) {
        if (ifc->buffer_alloc(be, srcs[i].bytes, LAMINA_BUFFER_ACTIVATIONS, &bufs[i], err, sizeof err) ||
            ifc->buffer_upload(be, bufs[i], 0, srcs[i].mem, srcs[i].bytes, err, sizeof err))
            goto out;
        pn.src[i] = srcs[i].t;
        pn.src[i].buffer = bufs[i];
        rn.src[i] = srcs[i].t;
    }
    if (dst_is_src >= 0) {
        pn.dst = pn.src[dst_is_src];
        rdst = srcs[dst_is_src];
        rdst.mem = malloc(rdst.bytes + 64);
        memcpy(rdst.mem, srcs[dst_is_src].mem, rdst.bytes);
        rdst.t.buffer = (lamina_buffer *)rdst.mem;
        rn.src[dst_is_src].buffer = rdst.t.buffer;
    } else {
        if (ifc->buffer_alloc(be, dst->bytes, LAMINA_BUFFER_ACTIVATIONS, &bufs[n_src], err, sizeof err) ||
            ifc->buffer_upload(be, bufs[n_src], 0, dst->mem, dst->bytes, err, sizeof err))
            goto out;
        pn.dst = dst->t;
        pn.dst.buffer = bufs[n_src];
        rdst = *dst;
        rdst.mem = malloc(rdst.bytes + 64);
        memcpy(rdst.mem, dst->mem, rdst.bytes);
        rdst.t.buffer = (lamina_buffer *)rdst.mem;
    }
    rn.dst = rdst.t;

    if (!ifc->supports_op(be, &pn)) { snprintf(msg, msg_size, "supports_op declined"); goto out; }
    lamina_graph g = { sizeof g, 1, &pn, sizeof pn, 0 };
    if (ifc->graph_compute(be, &g, err, sizeof err) != 0) { snprintf(msg, msg_size, "backend: %s", err); goto out; }
    if (lamina_ref_node(&rn, ref_base, NULL, err, sizeof err) != 0) { snprintf(msg, msg_size, "ref: %s", err); goto out; }

    /* download and compare as floats */
    uint8_t *got = malloc(rdst.bytes + 64);
    lamina_buffer *db = dst_is_src >= 0 ? bufs[dst_is_src] : bufs[n_src];
    if (ifc->buffer_download(be, db, 0, got, rdst.bytes, err, sizeof err) != 0) {
        snprintf(msg, msg_size, "download: %s", err);
        free(got);
        goto out;
    }
    const size_t nel = rdst.bytes / tsize(rdst.t.type);
    float *a = malloc(nel * sizeof(float)), *r = malloc(nel * sizeof(float));
    lamina_dequantize_row(rdst.t.type, got, a, (int64_t)nel);
    lamina_dequantize_row(rdst.t.type, rdst.mem, r, (int64_t)nel);
    result = rel_err(a, r, nel, 1e-3);
    free(a); free(r); free(got);
out:
    if (result < 0 && !msg[0]) snprintf(msg, msg_size, "%s", err);
    for (int i = 0; i <= n_src; i++) if (bufs[i]) ifc->buffer_free(be, bufs[i]);
    free(rdst.mem);
    return result;
}

/* The backends one ISA is checked on: the same kernels at each thread count. */
#define MAX_BES 2
typedef struct {
    int n;
    lamina_backend *be[MAX_BES];
    int threads[MAX_BES];
} beset;

/* One case on every backend of the set, on the same inputs: one TAP line,
 * ok when it passes at every thread count; a failure names the count. */
static void check_case(const beset *bs, const char *tag, const char *name, lamina_node *node,
                       htensor *srcs, int n_src, htensor *dst, int dst_is_src, double tol)
{
    char fails[600] = "", msg[300];
    double worst = 0.0;
    size_t fl = 0;
    for (int i = 0; i < bs->n; i++) {
        msg[0] = '\0';
        const double e = run_case(bs->be[i], node, srcs, n_src, dst, dst_is_src, msg, sizeof msg);
        if (e >= 0 && e <= tol) {
            if (e > worst) worst = e;
            continue;
        }
        if (e < 0)
            fl += (size_t)snprintf(fails + fl, fl < sizeof fails ? sizeof fails - fl : 0,
                                   "%s%d threads: %s", fl ? "; " : "", bs->threads[i], msg);
        else
            fl += (size_t)snprintf(fails + fl, fl < sizeof fails ? sizeof fails - fl : 0,
                                   "%s%d threads: rel err %.2e", fl ? "; " : "", bs->threads[i], e);
    }
    if (fails[0]) tap(0, "%s %s: FAILS with %s (tol %.0e)", tag, name, fails, tol);
    else tap(1, "%s %s: rel err %.2e (tol %.0e) with 1 and %d threads", tag, name, worst, tol,
             bs->threads[bs->n - 1]);
}

static const uint32_t weight_types[] = {
    LAMINA_TYPE_F32, LAMINA_TYPE_F16, LAMINA_TYPE_BF16, LAMINA_TYPE_Q4_0, LAMINA_TYPE_Q4_1,
    LAMINA_TYPE_Q5_0, LAMINA_TYPE_Q5_1, LAMINA_TYPE_Q8_0, LAMINA_TYPE_Q2_K, LAMINA_TYPE_Q3_K,
    LAMINA_TYPE_Q4_K, LAMINA_TYPE_Q5_K, LAMINA_TYPE_Q6_K, LAMINA_TYPE_IQ4_NL, LAMINA_TYPE_IQ4_XS,
    LAMINA_TYPE_MXFP4
};
#define N_WTYPES (sizeof weight_types / sizeof weight_types[0])

/* ---------------- per-op cases ---------------- */

static void cases_get_rows(const beset *be, const char *tag)
{
    for (size_t i = 0; i < N_WTYPES; i++) {
        const uint32_t ty = weight_types[i];
        const int64_t K = tblock(ty) == 256 ? 512 : tblock(ty) == 32 ? 96 : 37, R = 29, N = 9;
        htensor s[2] = { ht_new(ty, K, R, 1, 1, 0), ht_new(LAMINA_TYPE_I32, N, 1, 1, 1, 0) };
        htensor d = ht_new(LAMINA_TYPE_F32, K, N, 1, 1, 0);
        ht_fill(&s[0], 1.0f);
        ht_fill_i32(&s[1], 0, (int32_t)R - 1);
        lamina_node n = { .op = LAMINA_OP_GET_ROWS, .n_src = 2 };
        char name[64];
        snprintf(name, sizeof name, "get_rows %s K=%lld", lamina_type_get(ty)->name, (long long)K);
        check_case(be, tag, name, &n, s, 2, &d, -1, 1e-6);
        ht_free(&s[0]); ht_free(&s[1]); ht_free(&d);
    }
}

static void cases_mul_mat(const beset *be, const char *tag)
{
    struct { int64_t k, n, m, m2; size_t pad; } shapes[] = {
        { 256, 33, 1, 1, 0 }, { 512, 17, 7, 1, 0 }, { 768, 5, 13, 1, 16 }, { 256, 9, 66, 1, 0 },
    };
    for (size_t i = 0; i < N_WTYPES; i++) {
        const uint32_t ty = weight_types[i];
        const int q = lamina_type_get(ty)->is_quantized;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] + 1; s++) {
            int64_t K, N, M, M2;
            size_t pad = 0;
            if (s < sizeof shapes / sizeof shapes[0]) {
                K = shapes[s].k; N = shapes[s].n; M = shapes[s].m; M2 = shapes[s].m2; pad = shapes[s].pad;
            } else {
                /* odd sizes: 3 blocks of 32, or 37 for float weights */
                if (tblock(ty) == 256) continue;
                K = tblock(ty) == 32 ? 96 : 37; N = 11; M = 6; M2 = 1;
            }
            htensor src[2] = { ht_new(ty, K, N, 1, 1, 0), ht_new(LAMINA_TYPE_F32, K, M, M2, 1, pad) };
            htensor d = ht_new(LAMINA_TYPE_F32, N, M, M2, 1, 0);
            ht_fill(&src[0], 1.0f);
            ht_fill(&src[1], 1.0f);
            lamina_node n = { .op = LAMINA_OP_MUL_MAT, .n_src = 2 };
            char name[96];
            snprintf(name, sizeof name, "mul_mat %s K=%lld N=%lld M=%lldx%lld%s", lamina_type_get(ty)->name,
                     (long long)K, (long long)N, (long long)M, (long long)M2, pad ? " padded X" : "");
            /* quantized weights meet 8-bit activations: the self-test's allowance */
            check_case(be, tag, name, &n, src, 2, &d, -1, q ? 2e-2 : ty == LAMINA_TYPE_F32 ? 1e-5 : 1e-4);
            ht_free(&src[0]); ht_free(&src[1]); ht_free(&d);
        }
    }
}

/* W's product with one column (generation's matrix-vector kernels), with
 * two equal columns (the dot kernels' column groups) and with nine (more
 * than a call takes: rows converted to a cheaper type once per block,
 * where the table has a conversion) gives the same floats in every
 * column: each path's arithmetic per row is the same, so a batch decodes
 * exactly as its tokens one by one would.  N = 37 leaves rows over after
 * groups of 4. */
static int mm_backend(lamina_backend *be, htensor *w, htensor *x, htensor *d, float *out)
{
    lamina_buffer *b[3] = { NULL, NULL, NULL };
    char err[256];
    int rc = -1;
    htensor *h[3] = { w, x, d };
    for (int i = 0; i < 3; i++)
        if (ifc->buffer_alloc(be, h[i]->bytes, LAMINA_BUFFER_ACTIVATIONS, &b[i], err, sizeof err) ||
            ifc->buffer_upload(be, b[i], 0, h[i]->mem, h[i]->bytes, err, sizeof err))
            goto out;
    lamina_node n = { .op = LAMINA_OP_MUL_MAT, .n_src = 2 };
    n.src[0] = w->t; n.src[0].buffer = b[0];
    n.src[1] = x->t; n.src[1].buffer = b[1];
    n.dst = d->t; n.dst.buffer = b[2];
    lamina_graph g = { sizeof g, 1, &n, sizeof n, 0 };
    if (ifc->graph_compute(be, &g, err, sizeof err) == 0 &&
        ifc->buffer_download(be, b[2], 0, out, d->bytes, err, sizeof err) == 0)
        rc = 0;
out:
    for (int i = 0; i < 3; i++) if (b[i]) ifc->buffer_free(be, b[i]);
    return rc;
}

static void cases_gemv_exact(const beset *bs, const char *tag)
{
    enum { N = 37 };
    static const int64_t ms[] = { 2, 9 };
    /* 17 blocks of 32: an odd count, whose last block the AVX-512 pair
     * kernels take apart from the pairs */
    static const int Ks[] = { 512, 544 };
    for (size_t i = 0; i < N_WTYPES * 2; i++) {
        const uint32_t ty = weight_types[i % N_WTYPES];
        const int K = Ks[i / N_WTYPES];
        if (!lamina_type_get(ty)->is_quantized || K % lamina_type_get(ty)->block_size) continue;
        htensor w = ht_new(ty, K, N, 1, 1, 0), x1 = ht_new(LAMINA_TYPE_F32, K, 1, 1, 1, 0),
                d1 = ht_new(LAMINA_TYPE_F32, N, 1, 1, 1, 0);
        ht_fill(&w, 1.0f);
        ht_fill(&x1, 1.0f);
        float o1[N], om[9 * N];
        char what[64] = "";
        for (int b = 0; b < bs->n && !what[0]; b++) {
            if (mm_backend(bs->be[b], &w, &x1, &d1, o1) != 0) snprintf(what, sizeof what, "1 column fails");
            for (size_t k = 0; k < sizeof ms / sizeof ms[0] && !what[0]; k++) {
                const int64_t M = ms[k];
                htensor xm = ht_new(LAMINA_TYPE_F32, K, M, 1, 1, 0), dm = ht_new(LAMINA_TYPE_F32, N, M, 1, 1, 0);
                for (int64_t m = 0; m < M; m++) memcpy(xm.mem + (size_t)m * x1.bytes, x1.mem, x1.bytes);
                if (mm_backend(bs->be[b], &w, &xm, &dm, om) != 0)
                    snprintf(what, sizeof what, "%lld columns fail", (long long)M);
                for (int64_t m = 0; m < M && !what[0]; m++)
                    if (memcmp(o1, om + m * N, sizeof o1))
                        snprintf(what, sizeof what, "column %lld of %lld differs (%d threads)", (long long)m,
                                 (long long)M, bs->threads[b]);
                ht_free(&xm); ht_free(&dm);
            }
        }
        tap(!what[0], "%s mul_mat %s K=%d N=%d: 1, 2 and 9 equal columns give the same floats, bit for bit%s%s",
            tag, lamina_type_get(ty)->name, K, N, what[0] ? ": " : "", what);
        ht_free(&w); ht_free(&x1); ht_free(&d1);
    }
}

/* MUL_MAT_ID: experts W [K, N, X] (gpt-oss's mxfp4 experts among the
 * types), k = 2 of X = 4 per token, one input column per token or one per
 * slot; the weight rows padded. */
static void cases_mul_mat_id(const beset *be, const char *tag)
{
    const int64_t K = 256, N = 19, X = 4, k = 2, T = 5;
    for (size_t i = 0; i < N_WTYPES; i++) {
        const uint32_t ty = weight_types[i];
        const int q = lamina_type_get(ty)->is_quantized;
        for (int per_slot = 0; per_slot <= 1; per_slot++) {
            htensor src[3] = { ht_new(ty, K, N, X, 1, 8), ht_new(LAMINA_TYPE_F32, K, per_slot ? k : 1, T, 1, 0),
                               ht_new(LAMINA_TYPE_I32, k, T, 1, 1, 0) };
            htensor d = ht_new(LAMINA_TYPE_F32, N, k, T, 1, 0);
            ht_fill(&src[0], 1.0f);
            ht_fill(&src[1], 1.0f);
            ht_fill_i32(&src[2], 0, (int32_t)X - 1);
            lamina_node n = { .op = LAMINA_OP_MUL_MAT_ID, .n_src = 3 };
            char name[96];
            snprintf(name, sizeof name, "mul_mat_id %s K=%lld N=%lld experts=%lld k=%lld T=%lld%s",
                     lamina_type_get(ty)->name, (long long)K, (long long)N, (long long)X, (long long)k,
                     (long long)T, per_slot ? " per-slot input" : "");
            check_case(be, tag, name, &n, src, 3, &d, -1, q ? 2e-2 : ty == LAMINA_TYPE_F32 ? 1e-5 : 1e-4);
            ht_free(&src[0]); ht_free(&src[1]); ht_free(&src[2]); ht_free(&d);
        }
    }
}

static void cases_simple(const beset *be, const char *tag)
{
    char name[96];
    /* RMS_NORM with and without weights, odd and aligned K */
    for (int wk = 0; wk < 2; wk++) {
        for (int64_t K = 37; K <= 640; K += 603) {
            htensor s[2] = { ht_new(LAMINA_TYPE_F32, K, 5, 2, 1, 0), ht_new(LAMINA_TYPE_F32, K, 1, 1, 1, 0) };
            htensor d = ht_new(LAMINA_TYPE_F32, K, 5, 2, 1, 0);
            ht_fill(&s[0], 3.0f); ht_fill(&s[1], 1.0f);
            lamina_node n = { .op = LAMINA_OP_RMS_NORM, .n_src = (uint32_t)(wk ? 2 : 1) };
            n.fp[0] = 1e-6f;
            snprintf(name, sizeof name, "rms_norm K=%lld%s", (long long)K, wk ? " w" : "");
            check_case(be, tag, name, &n, s, wk ? 2 : 1, &d, -1, 1e-5);
            ht_free(&s[0]); ht_free(&s[1]); ht_free(&d);
        }
    }
    /* ADD / MUL: same shape, broadcast row, in place */
    for (int op = LAMINA_OP_ADD; op <= LAMINA_OP_MUL; op++) {
        for (int mode = 0; mode < 3; mode++) {
            const int64_t K = 67;
            htensor s[2] = { ht_new(LAMINA_TYPE_F32, K, 4, 3, 1, 0),
                             mode == 1 ? ht_new(LAMINA_TYPE_F32, K, 1, 1, 1, 0) : ht_new(LAMINA_TYPE_F32, K, 4, 3, 1, 0) };
            htensor d = ht_new(LAMINA_TYPE_F32, K, 4, 3, 1, 0);
            ht_fill(&s[0], 2.0f); ht_fill(&s[1], 2.0f);
            lamina_node n = { .op = (uint32_t)op, .n_src = 2 };
            snprintf(name, sizeof name, "%s %s", op == LAMINA_OP_ADD ? "add" : "mul",
                     mode == 0 ? "same shape" : mode == 1 ? "broadcast" : "in place");
            check_case(be, tag, name, &n, s, 2, &d, mode == 2 ? 0 : -1, 1e-6);
            ht_free(&s[0]); ht_free(&s[1]); ht_free(&d);
        }
    }
    /* SCALE, a big one (threads) */
    {
        htensor s = ht_new(LAMINA_TYPE_F32, 1000, 70, 1, 1, 0), d = ht_new(LAMINA_TYPE_F32, 1000, 70, 1, 1, 0);
        ht_fill(&s, 1.0f);
        lamina_node n = { .op = LAMINA_OP_SCALE, .n_src = 1 };
        n.fp[0] = 0.37f;
        check_case(be, tag, "scale", &n, &s, 1, &d, -1, 1e-6);
        ht_free(&s); ht_free(&d);
    }
    /* GLU silu and gelu-tanh */
    for (int act = 0; act < 2; act++) {
        htensor s[2] = { ht_new(LAMINA_TYPE_F32, 2048, 3, 1, 1, 0), ht_new(LAMINA_TYPE_F32, 2048, 3, 1, 1, 0) };
        htensor d = ht_new(LAMINA_TYPE_F32, 2048, 3, 1, 1, 0);
        ht_fill(&s[0], 5.0f); ht_fill(&s[1], 2.0f);
        lamina_node n = { .op = LAMINA_OP_GLU, .n_src = 2 };
        n.ip[0] = act;
        check_case(be, tag, act ? "glu gelu_tanh" : "glu silu", &n, s, 2, &d, -1, 1e-5);
        ht_free(&s[0]); ht_free(&s[1]); ht_free(&d);
    }
    /* COPY between F32, F16, BF16, with a padded source */
    static const uint32_t cp[][2] = {
        { LAMINA_TYPE_F32, LAMINA_TYPE_F16 }, { LAMINA_TYPE_F16, LAMINA_TYPE_F32 },
        { LAMINA_TYPE_BF16, LAMINA_TYPE_F32 }, { LAMINA_TYPE_F32, LAMINA_TYPE_F32 },
        { LAMINA_TYPE_F16, LAMINA_TYPE_F16 }, { LAMINA_TYPE_BF16, LAMINA_TYPE_F16 },
    };
    for (size_t i = 0; i < sizeof cp / sizeof cp[0]; i++) {
        htensor s = ht_new(cp[i][0], 45, 6, 2, 1, 8), d = ht_new(cp[i][1], 45, 6, 2, 1, 0);
        ht_fill(&s, 4.0f);
        lamina_node n = { .op = LAMINA_OP_COPY, .n_src = 1 };
        snprintf(name, sizeof name, "copy %s -> %s", lamina_type_get(cp[i][0])->name, lamina_type_get(cp[i][1])->name);
        check_case(be, tag, name, &n, &s, 1, &d, -1, 1e-6);
        ht_free(&s); ht_free(&d);
    }
    /* SET_ROWS into F32 and F16 */
    for (int f16 = 0; f16 < 2; f16++) {
        const int64_t K = 96, N = 7, R = 20;
        htensor s[2] = { ht_new(LAMINA_TYPE_F32, K, N, 1, 1, 0), ht_new(LAMINA_TYPE_I32, N, 1, 1, 1, 0) };
        htensor d = ht_new(f16 ? LAMINA_TYPE_F16 : LAMINA_TYPE_F32, K, R, 1, 1, 0);
        ht_fill(&s[0], 1.0f);
        ht_fill(&d, 1.0f);
        /* distinct rows */
        int32_t *rows = (int32_t *)s[1].mem;
        for (int64_t i = 0; i < N; i++) rows[i] = (int32_t)((3 * i + 5) % R);
        lamina_node n = { .op = LAMINA_OP_SET_ROWS, .n_src = 2 };
        check_case(be, tag, f16 ? "set_rows f16" : "set_rows f32", &n, s, 2, &d, -1, 1e-6);
        ht_free(&s[0]); ht_free(&s[1]); ht_free(&d);
    }
}

static void cases_rope(const beset *be, const char *tag)
{
    for (int mode = 0; mode < 2; mode++) {
        for (int v = 0; v < 3; v++) {
            const int64_t D = 64, H = 3, N = 5;
            const int n_rot = v == 1 ? 32 : 64;
            htensor s[3] = { ht_new(LAMINA_TYPE_F32, D, H, N, 1, 0), ht_new(LAMINA_TYPE_I32, N, 1, 1, 1, 0),
                             ht_new(LAMINA_TYPE_F32, n_rot / 2, 1, 1, 1, 0) };
            htensor d = ht_new(LAMINA_TYPE_F32, D, H, N, 1, 0);
            ht_fill(&s[0], 1.0f);
            ht_fill_i32(&s[1], 0, 4000);
            float *ff = (float *)s[2].mem;
            for (int i = 0; i < n_rot / 2; i++) ff[i] = 1.0f + (float)i / 7.0f;
            lamina_node n = { .op = LAMINA_OP_ROPE, .n_src = (uint32_t)(v == 2 ? 3 : 2) };
            n.ip[0] = mode ? LAMINA_ROPE_NEOX : LAMINA_ROPE_NORM;
            n.ip[1] = n_rot;
            n.fp[0] = 10000.0f;
            n.fp[1] = v == 1 ? 0.5f : 0.0f;
            char name[96];
            snprintf(name, sizeof name, "rope %s n_rot=%d%s%s", mode ? "neox" : "norm", n_rot,
                     v == 2 ? " freq factors" : "", v == 0 ? " in place" : "");
            check_case(be, tag, name, &n, s, v == 2 ? 3 : 2, &d, v == 0 ? 0 : -1, 2e-5);
            ht_free(&s[0]); ht_free(&s[1]); ht_free(&s[2]); ht_free(&d);
        }
    }
}

static void cases_attention(const beset *be, const char *tag)
{
    struct { uint32_t kv; int64_t d, hq, hkv, n, r; int window; float cap; } cs[] = {
        { LAMINA_TYPE_F16, 64, 4, 1, 3, 40, 0, 0.0f },
        { LAMINA_TYPE_F32, 64, 4, 2, 3, 40, 5, 0.0f },
        { LAMINA_TYPE_F16, 256, 4, 1, 1, 300, 0, 30.0f },
        { LAMINA_TYPE_F32, 40, 6, 3, 7, 64, 3, 20.0f },
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        const int64_t D = cs[c].d, Hq = cs[c].hq, Hkv = cs[c].hkv, N = cs[c].n, R = cs[c].r;
        htensor s[4] = { ht_new(LAMINA_TYPE_F32, D, Hq, N, 1, 0), ht_new(cs[c].kv, D * Hkv, R, 1, 1, 0),
                         ht_new(cs[c].kv, D * Hkv, R, 1, 1, 0), ht_new(LAMINA_TYPE_I32, 2, N, 1, 1, 0) };
        htensor d = ht_new(LAMINA_TYPE_F32, D * Hq, N, 1, 1, 0);
        ht_fill(&s[0], 1.0f); ht_fill(&s[1], 1.0f); ht_fill(&s[2], 1.0f);
        int32_t *bp = (int32_t *)s[3].mem;
        for (int64_t i = 0; i < N; i++) {
            /* tokens of two sequences at different bases */
            bp[2 * i] = i % 2 ? 3 : 0;
            bp[2 * i + 1] = (int32_t)(R - 4 - (int64_t)(rnd64() % (uint64_t)(R / 2)));
        }
        lamina_node n = { .op = LAMINA_OP_ATTENTION, .n_src = 4 };
        n.ip[0] = cs[c].window;
        n.fp[0] = 1.0f / sqrtf((float)D) * 4.0f;
        n.fp[1] = cs[c].cap;
        char name[128];
        snprintf(name, sizeof name, "attention %s D=%lld Hq=%lld Hkv=%lld N=%lld window=%d softcap=%g",
                 lamina_type_get(cs[c].kv)->name, (long long)D, (long long)Hq, (long long)Hkv,
                 (long long)N, cs[c].window, (double)cs[c].cap);
        check_case(be, tag, name, &n, s, 4, &d, -1, 1e-4);
        for (int i = 0; i < 4; i++) ht_free(&s[i]);
        ht_free(&d);
    }
}

/* ---------------- interface checks ---------------- */

static void check_interface(void)
{
    char err[256];
    lamina_backend *be = NULL;
    lamina_backend_params p = { sizeof p, 0, 2, 0 };
    if (ifc->open(NULL, &p, &be, err, sizeof err) != 0) { tap(0, "open for interface checks: %s", err); return; }

    /* a node reading outside its buffer is refused, not run */
    lamina_buffer *b = NULL;
    ifc->buffer_alloc(be, 64, LAMINA_BUFFER_ACTIVATIONS, &b, err, sizeof err);
    lamina_node n = { .op = LAMINA_OP_SCALE, .n_src = 1 };
    n.dst.type = LAMINA_TYPE_F32;
    n.dst.ne[0] = 32; n.dst.ne[1] = 1; n.dst.ne[2] = 1; n.dst.ne[3] = 1;
    n.dst.nb[0] = 4; n.dst.nb[1] = 128; n.dst.nb[2] = 128; n.dst.nb[3] = 128;
    n.dst.buffer = b;
    n.src[0] = n.dst;
    lamina_graph g = { sizeof g, 1, &n, sizeof n, 0 };
    tap(ifc->graph_compute(be, &g, err, sizeof err) == LAMINA_EINVAL, "out-of-bounds tensor refused (%s)", err);
    n.dst.ne[0] = 16; n.src[0].ne[0] = 16;
    tap(ifc->graph_compute(be, &g, err, sizeof err) == 0, "in-bounds scale runs");
    tap(ifc->buffer_upload(be, b, 60, err, 8, err, sizeof err) == LAMINA_ERANGE, "upload past the end refused");

    /* supports_op is honest about types it lacks (q8_K: an activation
     * format, never a weight; 16: iq2_xxs, unknown to lamina) */
    lamina_node mm = { .op = LAMINA_OP_MUL_MAT, .n_src = 2 };
    mm.src[0].type = LAMINA_TYPE_Q8_K;
    mm.src[0].ne[0] = 256; mm.src[0].ne[1] = 4; mm.src[0].ne[2] = 1; mm.src[0].ne[3] = 1;
    mm.src[0].nb[0] = tsize(LAMINA_TYPE_Q8_K);
    mm.src[1].type = LAMINA_TYPE_F32;
    mm.src[1].ne[0] = 256; mm.src[1].ne[1] = 1; mm.src[1].ne[2] = 1; mm.src[1].ne[3] = 1;
    mm.src[1].nb[0] = 4;
    mm.dst.type = LAMINA_TYPE_F32;
    mm.dst.ne[0] = 4; mm.dst.ne[1] = 1; mm.dst.ne[2] = 1; mm.dst.ne[3] = 1;
    mm.dst.nb[0] = 4;
    tap(ifc->supports_op(be, &mm) == 0, "supports_op declines mul_mat q8_K");
    mm.src[0].type = 16;
    mm.src[0].nb[0] = 66;
    tap(ifc->supports_op(be, &mm) == 0, "supports_op declines mul_mat of unknown type 16 (iq2_xxs)");
    static const uint32_t yes[] = { LAMINA_TYPE_Q4_K, LAMINA_TYPE_Q2_K, LAMINA_TYPE_Q3_K,
                                    LAMINA_TYPE_IQ4_XS, LAMINA_TYPE_IQ4_NL, LAMINA_TYPE_MXFP4 };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        mm.src[0].type = yes[i];
        mm.src[0].nb[0] = tsize(yes[i]);
        tap(ifc->supports_op(be, &mm) == 1, "supports_op accepts mul_mat %s", lamina_type_get(yes[i])->name);
    }
    mm.src[1].ne[0] = 255;
    tap(ifc->supports_op(be, &mm) == 0, "supports_op declines mismatched K");

    /* wrapped host memory is used in place: change it, the result follows */
    float table[2 * 32];
    for (int i = 0; i < 64; i++) table[i] = (float)i;
    lamina_buffer *w = NULL, *o = NULL, *ids = NULL;
    int32_t one = 1;
    int rc = ifc->buffer_wrap_host(be, table, sizeof table, &w, err, sizeof err);
    rc |= ifc->buffer_alloc(be, 128, LAMINA_BUFFER_ACTIVATIONS, &o, err, sizeof err);
    rc |= ifc->buffer_alloc(be, 4, LAMINA_BUFFER_ACTIVATIONS, &ids, err, sizeof err);
    rc |= ifc->buffer_upload(be, ids, 0, &one, 4, err, sizeof err);
    lamina_node gr = { .op = LAMINA_OP_GET_ROWS, .n_src = 2 };
    gr.src[0] = (lamina_tensor){ LAMINA_TYPE_F32, 0, { 32, 2, 1, 1 }, { 4, 128, 256, 256 }, w, 0 };
    gr.src[1] = (lamina_tensor){ LAMINA_TYPE_I32, 0, { 1, 1, 1, 1 }, { 4, 4, 4, 4 }, ids, 0 };
    gr.dst = (lamina_tensor){ LAMINA_TYPE_F32, 0, { 32, 1, 1, 1 }, { 4, 128, 128, 128 }, o, 0 };
    lamina_graph g2 = { sizeof g2, 1, &gr, sizeof gr, 0 };
    float out[32] = {0};
    rc |= ifc->graph_compute(be, &g2, err, sizeof err);
    table[33] = 1234.0f;
    rc |= ifc->graph_compute(be, &g2, err, sizeof err);
    rc |= ifc->buffer_download(be, o, 0, out, sizeof out, err, sizeof err);
    tap(rc == 0 && out[0] == 32.0f && out[1] == 1234.0f, "buffer_wrap_host reads the caller's memory in place");
    one = 7;
    ifc->buffer_upload(be, ids, 0, &one, 4, err, sizeof err);
    tap(ifc->graph_compute(be, &g2, err, sizeof err) == LAMINA_EINVAL, "get_rows id out of range refused");
    uint64_t fr = 0, tot = 0;
    tap(ifc->memory(be, &fr, &tot) == 0 && tot > 0 && fr <= tot, "memory reports %llu of %llu bytes free",
        (unsigned long long)fr, (unsigned long long)tot);
    /* close releases the buffers still allocated (checked under ASan) */
    ifc->close(be);
}

/* ---------------- probe ---------------- */

static int probe_devices;
static char probe_name[256], probe_features[512], probe_type[32];
static void sink_device(void *ctx, const lamina_device_info *d)
{
    (void)ctx;
    probe_devices++;
    snprintf(probe_name, sizeof probe_name, "%s", d->name ? d->name : "");
    snprintf(probe_features, sizeof probe_features, "%s", d->features ? d->features : "");
    snprintf(probe_type, sizeof probe_type, "%s", d->type ? d->type : "");
}
static void sink_component(void *ctx, const char *name, const char *found, const char *built,
                           uint32_t rule, const char *path)
{
    (void)ctx; (void)name; (void)found; (void)built; (void)rule; (void)path;
}
static void sink_file(void *ctx, const char *path) { (void)ctx; (void)path; }
static void sink_note(void *ctx, const char *t) { (void)ctx; (void)t; }

/* The core's known-answer self-test against this backend. */
static void st_cb(void *ctx, const lamina_selftest_result *r)
{
    (void)ctx;
    if (r->status == LAMINA_SELFTEST_FAIL || r->status == LAMINA_SELFTEST_ERROR)
        printf("# selftest %s: %s\n", r->name, r->msg);
    else if (r->status == LAMINA_SELFTEST_UNSUPPORTED && getenv("LAMINA_TEST_VERBOSE"))
        printf("# selftest unsupported: %s\n", r->name);
}

static void run_selftest(const char *isa)
{
    char err[256] = "";
    lamina_backend *be = NULL;
    lamina_backend_params p = { sizeof p, 0, 2, 0 };
    setenv("LAMINA_CPU_ISA", isa, 1);
    if (ifc->open(NULL, &p, &be, err, sizeof err) != 0) { tap(0, "[%s] selftest open: %s", isa, err); return; }
    lamina_selftest_summary sum;
    memset(&sum, 0, sizeof sum);
    const int rc = lamina_selftest_run(ifc, be, st_cb, NULL, &sum, err, sizeof err);
    tap(rc == 0 && sum.failed == 0 && sum.errors == 0 && sum.passed > 0,
        "[%s] core selftest: %d cases, %d passed, %d unsupported, %d failed, %d errors%s%s", isa,
        sum.cases, sum.passed, sum.unsupported, sum.failed, sum.errors, rc ? ": " : "", rc ? err : "");
    ifc->close(be);
}

/* Every case with ISA's kernels, each at 1 and at `threads` threads. */
static void run_all(const char *isa, int threads)
{
    char err[256], tag[32];
    beset bs = { 0, { NULL }, { 1, threads } };
    setenv("LAMINA_CPU_ISA", isa, 1);
    snprintf(tag, sizeof tag, "[%s]", isa);
    for (int i = 0; i < MAX_BES; i++) {
        lamina_backend_params p = { sizeof p, 0, (uint32_t)bs.threads[i], 0 };
        if (ifc->open(NULL, &p, &bs.be[i], err, sizeof err) != 0) {
            tap(0, "%s open with %d threads: %s", tag, bs.threads[i], err);
            for (int k = 0; k < i; k++) ifc->close(bs.be[k]);
            return;
        }
        bs.n++;
    }
    printf("# %s backends open with 1 and %d threads\n", tag, threads);
    rng_state = 0x1234567ULL;
    cases_get_rows(&bs, tag);
    cases_mul_mat(&bs, tag);
    cases_gemv_exact(&bs, tag);
    cases_simple(&bs, tag);
    cases_rope(&bs, tag);
    cases_attention(&bs, tag);
    cases_mul_mat_id(&bs, tag);
    for (int i = 0; i < bs.n; i++) ifc->close(bs.be[i]);
}

int main(void)
{
    const char *top = getenv("top_builddir");
    char path[4096];
    snprintf(path, sizeof path, "%s/plugins/cpu/.libs/cpu.so", top ? top : "..");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("1..1\nnot ok 1 - dlopen %s: %s\n", path, dlerror());
        return 1;
    }
    lamina_plugin_entry_fn entry = (lamina_plugin_entry_fn)(uintptr_t)dlsym(h, LAMINA_PLUGIN_ENTRY_NAME);
    tap(entry != NULL, "exports %s", LAMINA_PLUGIN_ENTRY_NAME);
    tap(dlsym(h, "cpu_node_run") == NULL && dlsym(h, "lamina_dequantize_row") == NULL,
        "internal symbols are hidden");
    if (!entry) goto done;
    lamina_host host = { sizeof host, LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR,
                         LAMINA_PLUGIN_ABI_MIN_MINOR, "test", NULL, NULL };
    desc = entry(&host);
    tap(desc && desc->abi_major == LAMINA_PLUGIN_ABI_MAJOR && desc->struct_size >= LAMINA_PLUGIN_DESC_MIN_SIZE &&
        strcmp(desc->name, "cpu") == 0 && desc->backend, "descriptor names cpu, ABI %d", LAMINA_PLUGIN_ABI_MAJOR);
    if (!desc || !desc->backend) goto done;
    ifc = desc->backend;

    lamina_probe_sink sink = { sizeof sink, NULL, sink_component, sink_file, sink_device, sink_note };
    char err[256];
    tap(desc->probe(&host, &sink, err, sizeof err) == 0 && probe_devices == 1 &&
        strcmp(probe_type, "cpu") == 0 && probe_name[0],
        "probe: one device '%s' [%s]", probe_name, probe_features);

    check_interface();

    /* scalar always; SIMD tables where the CPU has them */
    run_all("scalar", 3);
    run_selftest("scalar");
    lamina_backend *be = NULL;
    lamina_backend_params p = { sizeof p, 0, 1, 0 };
    static const char *const simd[] = { "avx2", "avx512" };
    for (int i = 0; i < 2; i++) {
        setenv("LAMINA_CPU_ISA", simd[i], 1);
        if (ifc->open(NULL, &p, &be, err, sizeof err) != 0) {
            printf("ok %d - # SKIP %s kernels: %s\n", ++n_test, simd[i], err);
            continue;
        }
        ifc->close(be);
        run_all(simd[i], 2);
        run_selftest(simd[i]);
    }
    setenv("LAMINA_CPU_ISA", "bogus", 1);
    tap(ifc->open(NULL, &p, &be, err, sizeof err) == LAMINA_EINVAL, "LAMINA_CPU_ISA=bogus refused: %s", err);
    unsetenv("LAMINA_CPU_ISA");
done:
    printf("1..%d\n", n_test);
    dlclose(h);
    return n_fail ? 1 : 0;
}
