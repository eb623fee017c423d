/*
 * vk_test.c - the Vulkan plugin (vulkan.so) on this host's Vulkan driver.
 *
 * Loads $top_builddir/plugins/vulkan/.libs/vulkan.so with dlopen, probes,
 * opens device 0 and compares every op, on seeded inputs with odd sizes,
 * with straightforward C written here (double accumulation).  Prints TAP.
 *
 *   vk_test            probe + ops + out-of-memory (needs a Vulkan device;
 *                      prints a TAP skip when the loader finds none)
 * Built a second time as vk_ref_test with VK_WITH_REF (linked with the
 * core): every case is then also compared with lamina_ref_node, and the
 * core's known-answer self-test (lamina_selftest_run) must pass.  It
 * reports only those checks: vk_test's own (ok()) run there too but are
 * counted by vk_test, so in vk_ref_test a passing one prints nothing and a
 * failing one is still a "not ok".  Self-test cases the plugin declines
 * (supports_op) are TAP skips naming the case.
 *
 *   vk_test --no-icd   run with VK_DRIVER_FILES/VK_ICD_FILENAMES naming no
 *                      usable driver: probe must report zero devices and a
 *                      reason, open must fail cleanly
 */
#include <config.h>

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vulkan/vulkan_core.h>

#include "lamina/plugin.h"
#include "lamina/quant.h"
#ifdef VK_WITH_REF
#include "ref.h"
#include "selftest.h"
#endif

/* ---- TAP ---------------------------------------------------------------- */

static int n_test, n_fail;

static void tap_line(int cond, const char *fmt, va_list ap)
{
    n_test++;
    if (!cond)
        n_fail++;
    printf("%s %d - ", cond ? "ok" : "not ok", n_test);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
}

/* ok(): vk_test's checks.  In vk_ref_test they are vk_test's to count: only
 * a failure is reported there. */
static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(int cond, const char *fmt, ...)
{
    va_list ap;
#ifdef VK_WITH_REF
    if (cond)
        return;
#endif
    va_start(ap, fmt);
    tap_line(cond, fmt, ap);
    va_end(ap);
}

#ifdef VK_WITH_REF
/* ok_ref(): what only vk_ref_test checks (the reference, the self-test). */
static void ok_ref(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok_ref(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_line(cond, fmt, ap);
    va_end(ap);
}
#endif

/* ---- host and probe sink -------------------------------------------------- */

static char log_text[16384];

static void host_log(void *ctx, int level, const char *plugin, const char *msg)
{
    size_t n = strlen(log_text);
    (void)ctx;
    if (getenv("VK_TEST_LOG") != NULL)
        printf("# log: %s\n", msg);
    snprintf(log_text + n, sizeof log_text - n, "[%d %s] %s\n", level, plugin, msg);
}

static const lamina_host host = {
    .struct_size = sizeof(lamina_host),
    .abi_major = LAMINA_PLUGIN_ABI_MAJOR,
    .abi_minor = LAMINA_PLUGIN_ABI_MINOR,
    .abi_min_minor = LAMINA_PLUGIN_ABI_MIN_MINOR,
    .host_version = "test",
    .log = host_log,
};

typedef struct {
    int n_dev, n_usable, n_files, lavapipe;
    char loader_found[64], loader_built[64], loader_path[512];
    uint32_t loader_rule;
    char notes[4096];
    char files[4096];
    char dev0[1024];
} probe_result;

static void sink_component(void *ctx, const char *name, const char *found, const char *built,
                           uint32_t rule, const char *path)
{
    probe_result *p = ctx;
    if (strcmp(name, "vulkan-loader") == 0) {
        snprintf(p->loader_found, sizeof p->loader_found, "%s", found ? found : "");
        snprintf(p->loader_built, sizeof p->loader_built, "%s", built ? built : "");
        snprintf(p->loader_path, sizeof p->loader_path, "%s", path ? path : "");
        p->loader_rule = rule;
    }
}

static void sink_file(void *ctx, const char *path)
{
    probe_result *p = ctx;
    size_t n = strlen(p->files);
    p->n_files++;
    snprintf(p->files + n, sizeof p->files - n, "%s\n", path);
}

static void sink_device(void *ctx, const lamina_device_info *d)
{
    probe_result *p = ctx;
    if (d->unusable == NULL)
        p->n_usable++;
    if (d->name != NULL && strstr(d->name, "llvmpipe") != NULL)
        p->lavapipe = 1;
    if (p->n_dev == 0)
        snprintf(p->dev0, sizeof p->dev0,
                 "name=%s type=%s driver=%s driver_version=%s api=%s runtime=%s mem_total=%llu "
                 "mem_free=%llu features=%s unusable=%s",
                 d->name, d->type, d->driver_name ? d->driver_name : "?",
                 d->driver_version ? d->driver_version : "?", d->api_version ? d->api_version : "?",
                 d->runtime_version ? d->runtime_version : "?", (unsigned long long)d->mem_total,
                 (unsigned long long)d->mem_free, d->features ? d->features : "",
                 d->unusable ? d->unusable : "-");
    p->n_dev++;
}

static void sink_note(void *ctx, const char *text)
{
    probe_result *p = ctx;
    size_t n = strlen(p->notes);
    snprintf(p->notes + n, sizeof p->notes - n, "%s\n", text);
}

static int run_probe(const lamina_plugin_desc *desc, probe_result *p, char *err, size_t n)
{
    lamina_probe_sink sink = {
        .struct_size = sizeof sink, .ctx = p, .component = sink_component,
        .file = sink_file, .device = sink_device, .note = sink_note,
    };
    memset(p, 0, sizeof *p);
    return desc->probe(&host, &sink, err, n);
}

/* ---- deterministic data ------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static float rndf(void)          /* uniform in [-1, 1) */
{
    return (float)(rnd32() % 2000001) / 1000000.0f - 1.0f;
}

/* ---- types and a reference dequantizer written for this test ------------------ */

static uint32_t blk_elems(uint32_t t)
{
    switch (t) {
    case LAMINA_TYPE_Q4_0: case LAMINA_TYPE_Q4_1: case LAMINA_TYPE_Q5_0:
    case LAMINA_TYPE_Q5_1: case LAMINA_TYPE_Q8_0: return 32;
    case LAMINA_TYPE_Q4_K: case LAMINA_TYPE_Q5_K: case LAMINA_TYPE_Q6_K: return 256;
    default: return 1;
    }
}

static uint32_t blk_bytes(uint32_t t)
{
    switch (t) {
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
    default: return 0;
    }
}

static const char *tname(uint32_t t)
{
    switch (t) {
    case LAMINA_TYPE_F32: return "f32";
    case LAMINA_TYPE_F16: return "f16";
    case LAMINA_TYPE_BF16: return "bf16";
    case LAMINA_TYPE_Q4_0: return "q4_0";
    case LAMINA_TYPE_Q4_1: return "q4_1";
    case LAMINA_TYPE_Q5_0: return "q5_0";
    case LAMINA_TYPE_Q5_1: return "q5_1";
    case LAMINA_TYPE_Q8_0: return "q8_0";
    case LAMINA_TYPE_Q4_K: return "q4_K";
    case LAMINA_TYPE_Q5_K: return "q5_K";
    case LAMINA_TYPE_Q6_K: return "q6_K";
    default: return "?";
    }
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* One row of n elements of type t at p (byte-wise, no alignment assumed). */
static void deq_row(uint32_t t, const uint8_t *p, float *y, int64_t n)
{
    uint32_t be = blk_elems(t), bb = blk_bytes(t);
    for (int64_t b = 0; b < n / be; b++, p += bb, y += be) {
        switch (t) {
        case LAMINA_TYPE_F32: memcpy(y, p, 4); break;
        case LAMINA_TYPE_F16: y[0] = lamina_fp16_to_fp32(rd16(p)); break;
        case LAMINA_TYPE_BF16: y[0] = lamina_bf16_to_fp32(rd16(p)); break;
        case LAMINA_TYPE_Q4_0: case LAMINA_TYPE_Q4_1: {
            int has_m = t == LAMINA_TYPE_Q4_1;
            float d = lamina_fp16_to_fp32(rd16(p));
            float m = has_m ? lamina_fp16_to_fp32(rd16(p + 2)) : 0.0f;
            const uint8_t *qs = p + (has_m ? 4 : 2);
            for (int i = 0; i < 16; i++) {
                int lo = qs[i] & 0xf, hi = qs[i] >> 4;
                y[i] = has_m ? d * lo + m : d * (lo - 8);
                y[i + 16] = has_m ? d * hi + m : d * (hi - 8);
            }
            break;
        }
        case LAMINA_TYPE_Q5_0: case LAMINA_TYPE_Q5_1: {
            int has_m = t == LAMINA_TYPE_Q5_1;
            float d = lamina_fp16_to_fp32(rd16(p));
            float m = has_m ? lamina_fp16_to_fp32(rd16(p + 2)) : 0.0f;
            const uint8_t *qhp = p + (has_m ? 4 : 2);
            uint32_t qh = (uint32_t)qhp[0] | (uint32_t)qhp[1] << 8 | (uint32_t)qhp[2] << 16 |
                          (uint32_t)qhp[3] << 24;
            const uint8_t *qs = qhp + 4;
            for (int i = 0; i < 16; i++) {
                int lo = (qs[i] & 0xf) | (int)(((qh >> i) & 1) << 4);
                int hi = (qs[i] >> 4) | (int)(((qh >> (i + 16)) & 1) << 4);
                y[i] = has_m ? d * lo + m : d * (lo - 16);
                y[i + 16] = has_m ? d * hi + m : d * (hi - 16);
            }
            break;
        }
        case LAMINA_TYPE_Q8_0: {
            float d = lamina_fp16_to_fp32(rd16(p));
            for (int i = 0; i < 32; i++)
                y[i] = d * (int8_t)p[2 + i];
            break;
        }
        case LAMINA_TYPE_Q4_K: case LAMINA_TYPE_Q5_K: {
            int five = t == LAMINA_TYPE_Q5_K;
            float d = lamina_fp16_to_fp32(rd16(p));
            float dmin = lamina_fp16_to_fp32(rd16(p + 2));
            const uint8_t *sc = p + 4;
            const uint8_t *qh = p + 16;
            const uint8_t *qs = p + (five ? 48 : 16);
            for (int c = 0; c < 4; c++) {
                uint8_t s0, m0, s1, m1;
                lamina_get_scale_min_k4(2 * c, sc, &s0, &m0);
                lamina_get_scale_min_k4(2 * c + 1, sc, &s1, &m1);
                for (int l = 0; l < 32; l++) {
                    int q0 = qs[32 * c + l] & 0xf, q1 = qs[32 * c + l] >> 4;
                    if (five) {
                        q0 |= ((qh[l] >> (2 * c)) & 1) << 4;
                        q1 |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                    }
                    y[64 * c + l] = d * s0 * q0 - dmin * m0;
                    y[64 * c + 32 + l] = d * s1 * q1 - dmin * m1;
                }
            }
            break;
        }
        case LAMINA_TYPE_Q6_K: {
            const uint8_t *ql = p, *qh = p + 128;
            const int8_t *sc = (const int8_t *)(p + 192);
            float d = lamina_fp16_to_fp32(rd16(p + 208));
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    const uint8_t *a = ql + 64 * h, *hh = qh + 32 * h;
                    const int8_t *s = sc + 8 * h;
                    int q1 = ((a[l] & 0xf) | ((hh[l] >> 0) & 3) << 4) - 32;
                    int q2 = ((a[l + 32] & 0xf) | ((hh[l] >> 2) & 3) << 4) - 32;
                    int q3 = ((a[l] >> 4) | ((hh[l] >> 4) & 3) << 4) - 32;
                    int q4 = ((a[l + 32] >> 4) | ((hh[l] >> 6) & 3) << 4) - 32;
                    y[128 * h + l] = d * s[is] * q1;
                    y[128 * h + l + 32] = d * s[is + 2] * q2;
                    y[128 * h + l + 64] = d * s[is + 4] * q3;
                    y[128 * h + l + 96] = d * s[is + 6] * q4;
                }
            }
            break;
        }
        default:
            break;
        }
    }
}

/* Random valid blocks: random quants, sane half-precision scales. */
static void fill_row(uint32_t t, uint8_t *p, int64_t n)
{
    uint32_t be = blk_elems(t), bb = blk_bytes(t);
    for (int64_t b = 0; b < n / be; b++, p += bb) {
        if (t == LAMINA_TYPE_F32) {
            float f = rndf();
            memcpy(p, &f, 4);
            continue;
        }
        if (t == LAMINA_TYPE_F16) {
            wr16(p, lamina_fp32_to_fp16(rndf()));
            continue;
        }
        if (t == LAMINA_TYPE_BF16) {
            wr16(p, lamina_fp32_to_bf16(rndf()));
            continue;
        }
        for (uint32_t i = 0; i < bb; i++)
            p[i] = (uint8_t)rnd32();
        float d = 0.002f + 0.02f * (float)(rnd32() % 100) / 100.0f;
        switch (t) {
        case LAMINA_TYPE_Q4_1: case LAMINA_TYPE_Q5_1:
            wr16(p + 2, lamina_fp32_to_fp16(-0.1f * (float)(rnd32() % 10)));
            /* fall through */
        case LAMINA_TYPE_Q4_0: case LAMINA_TYPE_Q5_0: case LAMINA_TYPE_Q8_0:
            wr16(p, lamina_fp32_to_fp16(t == LAMINA_TYPE_Q8_0 ? d / 10 : d));
            break;
        case LAMINA_TYPE_Q4_K: case LAMINA_TYPE_Q5_K:
            wr16(p, lamina_fp32_to_fp16(d / 20));
            wr16(p + 2, lamina_fp32_to_fp16(d / 10));
            break;
        case LAMINA_TYPE_Q6_K:
            wr16(p + 208, lamina_fp32_to_fp16(d / 50));
            break;
        }
    }
}

/* ---- tensors: host copy + device buffer ------------------------------------- */

static const lamina_plugin_desc *desc;
static const lamina_backend_iface *bi;
static lamina_backend *be;

typedef struct {
    lamina_tensor t;
    uint8_t *host;      /* the whole buffer, offset included */
    uint64_t bytes;
} tens;

/* buffer -> host image, for the reference run */
#define MAX_LIVE 32
static struct { lamina_buffer *buf; uint8_t *host; } live[MAX_LIVE];

static void live_set(lamina_buffer *buf, uint8_t *img)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i].buf == (img ? NULL : buf)) {
            live[i].buf = img ? buf : NULL;
            live[i].host = img;
            return;
        }
}

/* A tensor [ne0..ne3] of type ty with `pad` spare bytes per row and the
 * data starting `off` bytes into its own buffer. */
static int tens_new(tens *x, uint32_t ty, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3,
                    uint64_t pad, uint64_t off)
{
    char err[256];
    uint64_t al = blk_bytes(ty) == 4 ? 4 : 2;     /* rows and offsets aligned */
    pad = (pad + al - 1) / al * al;
    off = (off + al - 1) / al * al;
    memset(x, 0, sizeof *x);
    x->t.type = ty;
    x->t.ne[0] = ne0; x->t.ne[1] = ne1; x->t.ne[2] = ne2; x->t.ne[3] = ne3;
    x->t.nb[0] = blk_bytes(ty);
    x->t.nb[1] = (uint64_t)ne0 / blk_elems(ty) * blk_bytes(ty) + pad;
    x->t.nb[2] = x->t.nb[1] * (uint64_t)ne1;
    x->t.nb[3] = x->t.nb[2] * (uint64_t)ne2;
    x->t.offset = off;
    x->bytes = off + x->t.nb[3] * (uint64_t)ne3;
    x->host = calloc(1, x->bytes);
    if (x->host == NULL)
        return -1;
    for (uint64_t i = 0; i < x->bytes; i++)       /* garbage in the gaps */
        x->host[i] = (uint8_t)rnd32();
    if (bi->buffer_alloc(be, x->bytes, LAMINA_BUFFER_ACTIVATIONS, &x->t.buffer, err, sizeof err) != 0) {
        printf("# buffer_alloc: %s\n", err);
        free(x->host);
        x->host = NULL;
        return -1;
    }
    live_set(x->t.buffer, x->host);
    return 0;
}

static void tens_free(tens *x)
{
    if (x->t.buffer != NULL) {
        live_set(x->t.buffer, NULL);
        bi->buffer_free(be, x->t.buffer);
    }
    free(x->host);
    memset(x, 0, sizeof *x);
}

static uint8_t *row_ptr(tens *x, int64_t i1, int64_t i2, int64_t i3)
{
    return x->host + x->t.offset + (uint64_t)i1 * x->t.nb[1] + (uint64_t)i2 * x->t.nb[2] +
           (uint64_t)i3 * x->t.nb[3];
}

static void tens_fill(tens *x)
{
    for (int64_t i3 = 0; i3 < x->t.ne[3]; i3++)
        for (int64_t i2 = 0; i2 < x->t.ne[2]; i2++)
            for (int64_t i1 = 0; i1 < x->t.ne[1]; i1++)
                fill_row(x->t.type, row_ptr(x, i1, i2, i3), x->t.ne[0]);
}

static float *f32_at(tens *x, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return (float *)(void *)(row_ptr(x, i1, i2, i3) + 4 * (uint64_t)i0);
}

static int32_t *i32_at(tens *x, int64_t i0, int64_t i1)
{
    return (int32_t *)(void *)(row_ptr(x, i1, 0, 0) + 4 * (uint64_t)i0);
}

static int upload(tens *x)
{
    char err[256];
    int rc = bi->buffer_upload(be, x->t.buffer, 0, x->host, x->bytes, err, sizeof err);
    if (rc != 0)
        printf("# upload: %s\n", err);
    return rc;
}

/* Run a graph and download dst of the last node into `out` (a copy of
 * dst's host image, so the gaps can be checked too). */
static int run_nodes(const lamina_node *nodes, uint32_t n, tens *dst, uint8_t *out)
{
    char err[256];
    lamina_graph g = { .struct_size = sizeof g, .n_nodes = n, .nodes = nodes };
    for (uint32_t i = 0; i < n; i++) {
        if (!bi->supports_op(be, &nodes[i])) {
            printf("# supports_op refused node %u (op %u)\n", i, nodes[i].op);
            return -1;
        }
    }
    int rc = bi->graph_compute(be, &g, err, sizeof err);
    if (rc != 0) {
        printf("# graph_compute: %s\n", err);
        return rc;
    }
    rc = bi->buffer_download(be, dst->t.buffer, 0, out, dst->bytes, err, sizeof err);
    if (rc != 0)
        printf("# download: %s\n", err);
    return rc;
}

/* max |got - want| / max(1e-3, max |want|) over dst's elements (F32 or F16) */
static double compare(tens *dst, const uint8_t *got_img, const float *want)
{
    double maxd = 0, maxw = 1e-3;
    tens got = *dst;
    got.host = (uint8_t *)got_img;
    int64_t i = 0;
    for (int64_t i3 = 0; i3 < dst->t.ne[3]; i3++)
        for (int64_t i2 = 0; i2 < dst->t.ne[2]; i2++)
            for (int64_t i1 = 0; i1 < dst->t.ne[1]; i1++) {
                const uint8_t *r = row_ptr(&got, i1, i2, i3);
                for (int64_t i0 = 0; i0 < dst->t.ne[0]; i0++, i++) {
                    float g;
                    if (dst->t.type == LAMINA_TYPE_F16)
                        g = lamina_fp16_to_fp32(rd16(r + 2 * i0));
                    else
                        memcpy(&g, r + 4 * i0, 4);
                    double dd = fabs((double)g - want[i]);
                    if (!(dd <= maxd))          /* catches NaN */
                        maxd = isnan(dd) ? INFINITY : dd;
                    if (fabs(want[i]) > maxw)
                        maxw = fabs(want[i]);
                }
            }
    return maxd / maxw;
}

/* bytes of dst's buffer outside its rows must be untouched */
static int gaps_intact(tens *dst, const uint8_t *got)
{
    uint64_t row = (uint64_t)dst->t.ne[0] / blk_elems(dst->t.type) * blk_bytes(dst->t.type);
    uint8_t *mask = calloc(1, dst->bytes);
    int okay = 1;
    if (mask == NULL)
        return 0;
    for (int64_t i3 = 0; i3 < dst->t.ne[3]; i3++)
        for (int64_t i2 = 0; i2 < dst->t.ne[2]; i2++)
            for (int64_t i1 = 0; i1 < dst->t.ne[1]; i1++)
                memset(row_ptr(dst, i1, i2, i3) - dst->host + mask, 1, row);
    for (uint64_t i = 0; i < dst->bytes; i++)
        if (!mask[i] && got[i] != dst->host[i])
            okay = 0;
    free(mask);
    return okay;
}

static lamina_node node_new(uint32_t op, tens *dst, tens *s0, tens *s1, tens *s2, tens *s3)
{
    lamina_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.dst = dst->t;
    tens *s[4] = { s0, s1, s2, s3 };
    for (int i = 0; i < 4; i++)
        if (s[i] != NULL) {
            n.src[i] = s[i]->t;
            n.n_src = (uint32_t)i + 1;
        }
    return n;
}

#ifdef VK_WITH_REF
typedef struct {
    lamina_buffer *dst_buf;
    uint8_t *dst_img;
} ref_ctx;

static void *ref_base(void *ctx, lamina_buffer *buf)
{
    ref_ctx *rc = ctx;
    if (buf == rc->dst_buf)
        return rc->dst_img;
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i].buf == buf)
            return live[i].host;
    return NULL;
}

/* The same node through the core's reference on copies of the inputs;
 * dst rows compared with what the device wrote. */
static void check_against_ref(const char *name, const lamina_node *n, tens *dst,
                              const uint8_t *got, double tol)
{
    char err[256] = "";
    ref_ctx rc = { dst->t.buffer, malloc(dst->bytes) };
    int64_t rows = dst->t.ne[1] * dst->t.ne[2] * dst->t.ne[3], K = dst->t.ne[0];
    float *want = malloc(sizeof(float) * (size_t)(rows * K));
    if (!lamina_ref_supports(n)) {      /* e.g. batched X: beyond the contract */
        n_test++;
        printf("ok %d - %s: vs lamina_ref_node # SKIP the reference does not define this case\n",
               n_test, name);
    } else if (rc.dst_img == NULL || want == NULL) {
        ok_ref(0, "%s: lamina_ref_node: out of memory", name);
    } else {
        memcpy(rc.dst_img, dst->host, dst->bytes);
        int r = lamina_ref_node(n, ref_base, &rc, err, sizeof err);
        if (r != 0) {
            ok_ref(0, "%s: lamina_ref_node: %s", name, err);
        } else {
            tens img = *dst;
            img.host = rc.dst_img;
            int64_t i = 0;
            for (int64_t i3 = 0; i3 < dst->t.ne[3]; i3++)
                for (int64_t i2 = 0; i2 < dst->t.ne[2]; i2++)
                    for (int64_t i1 = 0; i1 < dst->t.ne[1]; i1++, i++)
                        deq_row(dst->t.type, row_ptr(&img, i1, i2, i3), want + i * K, K);
            double e = compare(dst, got, want);
            double t = tol < 1e-6 ? 1e-6 : tol;
            ok_ref(e <= t, "%s: vs lamina_ref_node: max rel error %.2e (tol %.0e)", name, e, t);
        }
    }
    free(rc.dst_img);
    free(want);
}
#endif

/* Run one node (inputs already uploaded, dst uploaded with its garbage),
 * compare with `want`, report. */
static void check_node_result(const char *name, lamina_node *n, tens *dst, const float *want,
                              double tol)
{
    uint8_t *got = malloc(dst->bytes);
    if (got == NULL || upload(dst) != 0 || run_nodes(n, 1, dst, got) != 0) {
        ok(0, "%s: ran", name);
        free(got);
        return;
    }
    double e = compare(dst, got, want);
    ok(e <= tol && gaps_intact(dst, got), "%s: max rel error %.2e (tol %.0e)%s", name, e, tol,
       gaps_intact(dst, got) ? "" : ", wrote outside its rows");
#ifdef VK_WITH_REF
    check_against_ref(name, n, dst, got, tol);
#endif
    free(got);
}

/* ---- op cases ------------------------------------------------------------------ */

static const uint32_t wtypes[] = {
    LAMINA_TYPE_F32, LAMINA_TYPE_F16, LAMINA_TYPE_BF16, LAMINA_TYPE_Q4_0, LAMINA_TYPE_Q4_1,
    LAMINA_TYPE_Q5_0, LAMINA_TYPE_Q5_1, LAMINA_TYPE_Q8_0, LAMINA_TYPE_Q4_K, LAMINA_TYPE_Q5_K,
    LAMINA_TYPE_Q6_K,
};
#define N_WTYPES (sizeof wtypes / sizeof wtypes[0])

/* K for a weight type: several blocks, odd for float types */
static int64_t k_blocks = 3;     /* K of the 32-element block types, in blocks */

static int64_t k_for(uint32_t t)
{
    uint32_t b = blk_elems(t);
    return b == 1 ? 45 : b == 32 ? 32 * k_blocks : 512;
}

static void test_get_rows(uint32_t ty, int64_t R, const char *tag)
{
    tens w, ids, d;
    char name[96];
    int64_t K = k_for(ty), N = 5;
    snprintf(name, sizeof name, "get_rows %s K=%lld R=%lld N=%lld%s", tname(ty), (long long)K,
             (long long)R, (long long)N, tag);
    if (tens_new(&w, ty, K, R, 1, 1, blk_elems(ty) == 1 ? 6 : 2, 6) ||
        tens_new(&ids, LAMINA_TYPE_I32, N, 1, 1, 1, 0, 4) ||
        tens_new(&d, LAMINA_TYPE_F32, K, N, 1, 1, 8, 20)) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&w);
    const int32_t sel[5] = { (int32_t)(R / 2), 0, (int32_t)(R - 1), (int32_t)(R / 2),
                             (int32_t)(R - 2) };
    for (int i = 0; i < N; i++)
        *i32_at(&ids, i, 0) = sel[i];
    float *want = malloc(sizeof(float) * (size_t)(K * N));
    for (int i = 0; i < N; i++)
        deq_row(ty, row_ptr(&w, sel[i], 0, 0), want + i * K, K);
    upload(&w);
    upload(&ids);
    lamina_node n = node_new(LAMINA_OP_GET_ROWS, &d, &w, &ids, NULL, NULL);
    check_node_result(name, &n, &d, want, 1e-6);
    free(want);
    tens_free(&w);
    tens_free(&ids);
    tens_free(&d);
}

/* MUL_MAT with X [K, m1, m2] (batched when m2 > 1) */
static void test_mul_mat(uint32_t ty, int64_t N, int64_t m1, int64_t m2, const char *tag)
{
    tens w, x, d;
    char name[96];
    int64_t K = k_for(ty), M = m1 * m2;
    snprintf(name, sizeof name, "mul_mat %s K=%lld N=%lld M=%lldx%lld%s", tname(ty), (long long)K,
             (long long)N, (long long)m1, (long long)m2, tag);
    if (tens_new(&w, ty, K, N, 1, 1, blk_elems(ty) == 1 ? 2 : 0, 2) ||
        tens_new(&x, LAMINA_TYPE_F32, K, m1, m2, 1, 4, 12) ||
        tens_new(&d, LAMINA_TYPE_F32, N, m1, m2, 1, 12, 4)) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&w);
    tens_fill(&x);
    float *wf = malloc(sizeof(float) * (size_t)(K * N));
    float *want = malloc(sizeof(float) * (size_t)(N * M));
    for (int64_t n = 0; n < N; n++)
        deq_row(ty, row_ptr(&w, n, 0, 0), wf + n * K, K);
    /* dst[n, m] = sum_k W[k, n] X[k, m], in double */
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)wf[n * K + k] * *f32_at(&x, k, m % m1, m / m1, 0);
            want[m * N + n] = (float)s;
        }
    upload(&w);
    upload(&x);
    lamina_node nd = node_new(LAMINA_OP_MUL_MAT, &d, &w, &x, NULL, NULL);
    check_node_result(name, &nd, &d, want, 2e-5);
    free(wf);
    free(want);
    tens_free(&w);
    tens_free(&x);
    tens_free(&d);
}

static void test_rms_norm(int with_w, int in_place)
{
    tens x, w, d;
    char name[64];
    int64_t K = 100, r1 = 3, r2 = 2;
    float eps = 1e-5f;
    snprintf(name, sizeof name, "rms_norm K=%lld rows=%lldx%lld%s%s", (long long)K, (long long)r1,
             (long long)r2, with_w ? " weighted" : "", in_place ? " in place" : "");
    if (tens_new(&x, LAMINA_TYPE_F32, K, r1, r2, 1, 8, 4) ||
        tens_new(&w, LAMINA_TYPE_F32, K, 1, 1, 1, 0, 0) ||
        (!in_place && tens_new(&d, LAMINA_TYPE_F32, K, r1, r2, 1, 0, 16))) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&x);
    tens_fill(&w);
    float *want = malloc(sizeof(float) * (size_t)(K * r1 * r2));
    for (int64_t r = 0; r < r1 * r2; r++) {
        double ss = 0;
        for (int64_t k = 0; k < K; k++)
            ss += (double)*f32_at(&x, k, r % r1, r / r1, 0) * *f32_at(&x, k, r % r1, r / r1, 0);
        double f = 1.0 / sqrt(ss / (double)K + eps);
        for (int64_t k = 0; k < K; k++)
            want[r * K + k] = (float)(*f32_at(&x, k, r % r1, r / r1, 0) * f *
                                      (with_w ? *f32_at(&w, k, 0, 0, 0) : 1.0f));
    }
    upload(&w);
    upload(&x);
    tens *dst = in_place ? &x : &d;
    lamina_node n = node_new(LAMINA_OP_RMS_NORM, dst, &x, with_w ? &w : NULL, NULL, NULL);
    n.fp[0] = eps;
    check_node_result(name, &n, dst, want, 1e-5);
    free(want);
    tens_free(&x);
    tens_free(&w);
    if (!in_place)
        tens_free(&d);
}

/* ADD / MUL / GLU (full or broadcast B) and SCALE */
static void test_binary(uint32_t op, int bcast, int act)
{
    tens a, b, d;
    char name[64];
    int64_t K = 67, r1 = 3, r2 = 2;
    static const char *names[] = { "", "", "", "", "add", "mul", "scale", "", "", "", "glu" };
    snprintf(name, sizeof name, "%s%s%s K=%lld rows=%lldx%lld", names[op],
             bcast ? " broadcast" : "", op == LAMINA_OP_GLU ? (act ? " gelu" : " silu") : "",
             (long long)K, (long long)r1, (long long)r2);
    if (tens_new(&a, LAMINA_TYPE_F32, K, r1, r2, 1, 4, 8) ||
        tens_new(&b, LAMINA_TYPE_F32, K, bcast ? 1 : r1, bcast ? 1 : r2, 1, 0, 4) ||
        tens_new(&d, LAMINA_TYPE_F32, K, r1, r2, 1, 12, 0)) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&a);
    tens_fill(&b);
    float s = 0.37f;
    if (op == LAMINA_OP_GLU)        /* a wider range for the activations */
        for (int64_t r = 0; r < r1 * r2; r++)
            for (int64_t k = 0; k < K; k++)
                *f32_at(&a, k, r % r1, r / r1, 0) *= 4.0f;
    float *want = malloc(sizeof(float) * (size_t)(K * r1 * r2));
    for (int64_t r = 0; r < r1 * r2; r++)
        for (int64_t k = 0; k < K; k++) {
            double x = *f32_at(&a, k, r % r1, r / r1, 0);
            double y = bcast ? *f32_at(&b, k, 0, 0, 0) : *f32_at(&b, k, r % r1, r / r1, 0);
            double v;
            switch (op) {
            case LAMINA_OP_ADD: v = x + y; break;
            case LAMINA_OP_MUL: v = x * y; break;
            case LAMINA_OP_SCALE: v = s * x; break;
            default:
                v = act ? 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * y
                        : x / (1 + exp(-x)) * y;
            }
            want[r * K + k] = (float)v;
        }
    upload(&a);
    upload(&b);
    lamina_node n = node_new(op, &d, &a, op == LAMINA_OP_SCALE ? NULL : &b, NULL, NULL);
    n.fp[0] = s;
    n.ip[0] = act;
    check_node_result(name, &n, &d, want, 1e-5);
    free(want);
    tens_free(&a);
    tens_free(&b);
    tens_free(&d);
}

static void test_copy(uint32_t st, uint32_t dt)
{
    tens a, d;
    char name[64];
    int64_t K = 33, r1 = 3, r2 = 2;
    snprintf(name, sizeof name, "copy %s -> %s K=%lld rows=%lldx%lld", tname(st), tname(dt),
             (long long)K, (long long)r1, (long long)r2);
    if (tens_new(&a, st, K, r1, r2, 1, 2, 2 * (st != LAMINA_TYPE_F32) + 4) ||
        tens_new(&d, dt, K, r1, r2, 1, dt == LAMINA_TYPE_F16 ? 6 : 4, 2 * (dt != LAMINA_TYPE_F32))) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&a);
    float *want = malloc(sizeof(float) * (size_t)(K * r1 * r2));
    for (int64_t r = 0; r < r1 * r2; r++) {
        deq_row(st, row_ptr(&a, r % r1, r / r1, 0), want + r * K, K);
        if (dt == LAMINA_TYPE_F16)
            for (int64_t k = 0; k < K; k++)
                want[r * K + k] = lamina_fp16_to_fp32(lamina_fp32_to_fp16(want[r * K + k]));
    }
    upload(&a);
    lamina_node n = node_new(LAMINA_OP_COPY, &d, &a, NULL, NULL, NULL);
    check_node_result(name, &n, &d, want, 0.0);
    free(want);
    tens_free(&a);
    tens_free(&d);
}

static void test_rope(int mode, int with_ff)
{
    tens x, pos, ff, d;
    char name[64];
    int64_t D = 12, H = 3, N = 4;
    int n_rot = 8;
    float base = 10000.0f, fscale = 0.5f;
    snprintf(name, sizeof name, "rope %s%s D=%lld H=%lld N=%lld n_rot=%d",
             mode == LAMINA_ROPE_NEOX ? "neox" : "norm", with_ff ? " freq-factors" : "",
             (long long)D, (long long)H, (long long)N, n_rot);
    if (tens_new(&x, LAMINA_TYPE_F32, D, H, N, 1, 4, 4) ||
        tens_new(&pos, LAMINA_TYPE_I32, N, 1, 1, 1, 0, 0) ||
        tens_new(&ff, LAMINA_TYPE_F32, n_rot / 2, 1, 1, 1, 0, 8) ||
        tens_new(&d, LAMINA_TYPE_F32, D, H, N, 1, 0, 0)) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&x);
    const int32_t p[4] = { 0, 5, 17, 100 };
    for (int i = 0; i < N; i++)
        *i32_at(&pos, i, 0) = p[i];
    for (int i = 0; i < n_rot / 2; i++)
        *f32_at(&ff, i, 0, 0, 0) = 1.0f + 0.5f * (float)i;
    float *want = malloc(sizeof(float) * (size_t)(D * H * N));
    for (int64_t n = 0; n < N; n++)
        for (int64_t h = 0; h < H; h++) {
            float *o = want + (n * H + h) * D;
            for (int64_t e = 0; e < D; e++)
                o[e] = *f32_at(&x, e, h, n, 0);
            for (int i = 0; i < n_rot / 2; i++) {
                double theta = p[n] * (double)fscale * pow(base, -2.0 * i / n_rot);
                if (with_ff)
                    theta /= *f32_at(&ff, i, 0, 0, 0);
                int e0 = mode == LAMINA_ROPE_NEOX ? i : 2 * i;
                int e1 = mode == LAMINA_ROPE_NEOX ? i + n_rot / 2 : 2 * i + 1;
                double x0 = *f32_at(&x, e0, h, n, 0), x1 = *f32_at(&x, e1, h, n, 0);
                o[e0] = (float)(x0 * cos(theta) - x1 * sin(theta));
                o[e1] = (float)(x0 * sin(theta) + x1 * cos(theta));
            }
        }
    upload(&x);
    upload(&pos);
    upload(&ff);
    lamina_node n = node_new(LAMINA_OP_ROPE, &d, &x, &pos, with_ff ? &ff : NULL, NULL);
    n.ip[0] = mode;
    n.ip[1] = n_rot;
    n.fp[0] = base;
    n.fp[1] = fscale;
    check_node_result(name, &n, &d, want, 2e-5);
    free(want);
    tens_free(&x);
    tens_free(&pos);
    tens_free(&ff);
    tens_free(&d);
}

static void test_set_rows(uint32_t dt)
{
    tens x, rows, d;
    char name[64];
    int64_t K = 13, N = 3, R = 8;
    snprintf(name, sizeof name, "set_rows -> %s K=%lld N=%lld R=%lld", tname(dt), (long long)K,
             (long long)N, (long long)R);
    if (tens_new(&x, LAMINA_TYPE_F32, K, N, 1, 1, 0, 4) ||
        tens_new(&rows, LAMINA_TYPE_I32, N, 1, 1, 1, 0, 0) ||
        tens_new(&d, dt, K, R, 1, 1, 0, 2)) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&x);
    tens_fill(&d);          /* rows not written keep their old values */
    const int32_t sel[3] = { 6, 1, 2 };
    for (int i = 0; i < N; i++)
        *i32_at(&rows, i, 0) = sel[i];
    float *want = malloc(sizeof(float) * (size_t)(K * R));
    for (int64_t r = 0; r < R; r++)
        deq_row(dt, row_ptr(&d, r, 0, 0), want + r * K, K);
    for (int i = 0; i < N; i++)
        for (int64_t k = 0; k < K; k++) {
            float v = *f32_at(&x, k, i, 0, 0);
            want[sel[i] * K + k] = dt == LAMINA_TYPE_F16 ? lamina_fp16_to_fp32(lamina_fp32_to_fp16(v)) : v;
        }
    upload(&x);
    upload(&rows);
    lamina_node n = node_new(LAMINA_OP_SET_ROWS, &d, &x, &rows, NULL, NULL);
    check_node_result(name, &n, &d, want, 0.0);
    free(want);
    tens_free(&x);
    tens_free(&rows);
    tens_free(&d);
}

static void test_attention(uint32_t kv_type, int window, float softcap)
{
    tens q, k, v, bp, d;
    char name[96];
    int64_t D = 32, Dv = 24, Hq = 4, Hkv = 2, R = 300, N = 3;
    float scale = 0.17f;
    snprintf(name, sizeof name, "attention %s D=%lld Dv=%lld Hq=%lld Hkv=%lld R=%lld window=%d softcap=%g",
             tname(kv_type), (long long)D, (long long)Dv, (long long)Hq, (long long)Hkv,
             (long long)R, window, softcap);
    if (tens_new(&q, LAMINA_TYPE_F32, D, Hq, N, 1, 0, 4) ||
        tens_new(&k, kv_type, D * Hkv, R, 1, 1, 0, 2) ||
        tens_new(&v, kv_type, Dv * Hkv, R, 1, 1, 4, 2) ||
        tens_new(&bp, LAMINA_TYPE_I32, 2, N, 1, 1, 0, 0) ||
        tens_new(&d, LAMINA_TYPE_F32, Dv * Hq, N, 1, 1, 0, 8)) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&q);
    tens_fill(&k);
    tens_fill(&v);
    const int32_t base[3] = { 0, 0, 10 }, pos[3] = { 5, 200, 257 };
    for (int i = 0; i < N; i++) {
        *i32_at(&bp, 0, i) = base[i];
        *i32_at(&bp, 1, i) = pos[i];
    }
    float *kr = malloc(sizeof(float) * (size_t)(D * Hkv));
    float *vr = malloc(sizeof(float) * (size_t)(Dv * Hkv));
    double *s = malloc(sizeof(double) * (size_t)R);
    float *want = calloc((size_t)(Dv * Hq * N), sizeof(float));
    for (int64_t i = 0; i < N; i++)
        for (int64_t h = 0; h < Hq; h++) {
            int64_t g = h / (Hq / Hkv);
            double mx = -INFINITY, sum = 0;
            /* scores, capped, over the visible keys */
            for (int64_t j = 0; j <= pos[i]; j++) {
                s[j] = -INFINITY;
                if (window != 0 && pos[i] - j >= window)
                    continue;
                deq_row(kv_type, row_ptr(&k, base[i] + j, 0, 0), kr, D * Hkv);
                double dp = 0;
                for (int64_t e = 0; e < D; e++)
                    dp += (double)*f32_at(&q, e, h, i, 0) * kr[g * D + e];
                s[j] = scale * dp;
                if (softcap != 0)
                    s[j] = softcap * tanh(s[j] / softcap);
                if (s[j] > mx)
                    mx = s[j];
            }
            /* softmax-weighted sum of values */
            double acc[64] = { 0 };
            for (int64_t j = 0; j <= pos[i]; j++) {
                if (s[j] == -INFINITY)
                    continue;
                double p = exp(s[j] - mx);
                sum += p;
                deq_row(kv_type, row_ptr(&v, base[i] + j, 0, 0), vr, Dv * Hkv);
                for (int64_t e = 0; e < Dv; e++)
                    acc[e] += p * vr[g * Dv + e];
            }
            for (int64_t e = 0; e < Dv; e++)
                want[i * Dv * Hq + h * Dv + e] = (float)(acc[e] / sum);
        }
    upload(&q);
    upload(&k);
    upload(&v);
    upload(&bp);
    lamina_node n = node_new(LAMINA_OP_ATTENTION, &d, &q, &k, &v, &bp);
    n.ip[0] = window;
    n.fp[0] = scale;
    n.fp[1] = softcap;
    check_node_result(name, &n, &d, want, 1e-5);
    free(kr);
    free(vr);
    free(s);
    free(want);
    tens_free(&q);
    tens_free(&k);
    tens_free(&v);
    tens_free(&bp);
    tens_free(&d);
}

/* A small layer-like chain: y = rms_norm(x) * w; z1 = W1 y; z2 = W2 y (no
 * dependency between the two); z1 += b (in place); out = glu(z1, z2).
 * Checks the ordering the plugin derives between dependent dispatches. */
static void test_chain(void)
{
    tens x, w, y, W1, W2, z1, z2, b, o;
    int64_t K = 64, N = 40, M = 3;
    const char *name = "graph rms_norm -> 2x mul_mat q8_0 -> add in place -> glu";
    if (tens_new(&x, LAMINA_TYPE_F32, K, M, 1, 1, 0, 0) ||
        tens_new(&w, LAMINA_TYPE_F32, K, 1, 1, 1, 0, 0) ||
        tens_new(&y, LAMINA_TYPE_F32, K, M, 1, 1, 0, 0) ||
        tens_new(&W1, LAMINA_TYPE_Q8_0, K, N, 1, 1, 0, 0) ||
        tens_new(&W2, LAMINA_TYPE_Q8_0, K, N, 1, 1, 0, 0) ||
        tens_new(&z1, LAMINA_TYPE_F32, N, M, 1, 1, 0, 0) ||
        tens_new(&z2, LAMINA_TYPE_F32, N, M, 1, 1, 0, 0) ||
        tens_new(&b, LAMINA_TYPE_F32, N, 1, 1, 1, 0, 0) ||
        tens_new(&o, LAMINA_TYPE_F32, N, M, 1, 1, 0, 0)) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&x); tens_fill(&w); tens_fill(&W1); tens_fill(&W2); tens_fill(&b);
    float *yr = malloc(sizeof(float) * (size_t)(K * M));
    float *w1 = malloc(sizeof(float) * (size_t)(K * N)), *w2 = malloc(sizeof(float) * (size_t)(K * N));
    float *want = malloc(sizeof(float) * (size_t)(N * M));
    for (int64_t n = 0; n < N; n++) {
        deq_row(LAMINA_TYPE_Q8_0, row_ptr(&W1, n, 0, 0), w1 + n * K, K);
        deq_row(LAMINA_TYPE_Q8_0, row_ptr(&W2, n, 0, 0), w2 + n * K, K);
    }
    for (int64_t m = 0; m < M; m++) {
        double ss = 0;
        for (int64_t k = 0; k < K; k++)
            ss += (double)*f32_at(&x, k, m, 0, 0) * *f32_at(&x, k, m, 0, 0);
        double f = 1.0 / sqrt(ss / (double)K + 1e-6);
        for (int64_t k = 0; k < K; k++)
            yr[m * K + k] = (float)(*f32_at(&x, k, m, 0, 0) * f * *f32_at(&w, k, 0, 0, 0));
        for (int64_t n = 0; n < N; n++) {
            double a1 = 0, a2 = 0;
            for (int64_t k = 0; k < K; k++) {
                a1 += (double)w1[n * K + k] * yr[m * K + k];
                a2 += (double)w2[n * K + k] * yr[m * K + k];
            }
            a1 += *f32_at(&b, n, 0, 0, 0);
            want[m * N + n] = (float)(a1 / (1 + exp(-a1)) * a2);
        }
    }
    upload(&x); upload(&w); upload(&W1); upload(&W2); upload(&b); upload(&o);
    lamina_node nodes[5];
    nodes[0] = node_new(LAMINA_OP_RMS_NORM, &y, &x, &w, NULL, NULL);
    nodes[0].fp[0] = 1e-6f;
    nodes[1] = node_new(LAMINA_OP_MUL_MAT, &z1, &W1, &y, NULL, NULL);
    nodes[2] = node_new(LAMINA_OP_MUL_MAT, &z2, &W2, &y, NULL, NULL);
    nodes[3] = node_new(LAMINA_OP_ADD, &z1, &z1, &b, NULL, NULL);
    nodes[4] = node_new(LAMINA_OP_GLU, &o, &z1, &z2, NULL, NULL);
    nodes[4].ip[0] = LAMINA_ACT_SILU;
    uint8_t *got = malloc(o.bytes);
    int ran = run_nodes(nodes, 5, &o, got) == 0;
    double e = ran ? compare(&o, got, want) : INFINITY;
    ok(ran && e <= 2e-5, "%s: max rel error %.2e", name, e);
    free(got); free(yr); free(w1); free(w2); free(want);
    tens_free(&x); tens_free(&w); tens_free(&y); tens_free(&W1); tens_free(&W2);
    tens_free(&z1); tens_free(&z2); tens_free(&b); tens_free(&o);
}

/* A mixture-of-experts step whose expert ids come from the device:
 * topk -> moe_weights -> mul_mat_id q8_0 -> moe_sum, against C here; then
 * an expert id out of range gives NaN in its column only. */
static void test_moe_chain(const char *how)
{
    tens L, ids, wts, W, A, Y, out;
    const int64_t X = 4, k = 2, T = 3, K = 64, N = 40;
    char name[160];
    snprintf(name, sizeof name, "graph topk -> moe_weights -> mul_mat_id q8_0 -> moe_sum%s", how);
    if (tens_new(&L, LAMINA_TYPE_F32, X, T, 1, 1, 0, 0) ||
        tens_new(&ids, LAMINA_TYPE_I32, k, T, 1, 1, 0, 0) ||
        tens_new(&wts, LAMINA_TYPE_F32, k, T, 1, 1, 0, 0) ||
        tens_new(&W, LAMINA_TYPE_Q8_0, K, N, X, 1, 0, 0) ||
        tens_new(&A, LAMINA_TYPE_F32, K, 1, T, 1, 0, 0) ||
        tens_new(&Y, LAMINA_TYPE_F32, N, k, T, 1, 0, 0) ||
        tens_new(&out, LAMINA_TYPE_F32, N, T, 1, 1, 0, 0)) {
        ok(0, "%s: allocate", name);
        return;
    }
    tens_fill(&L); tens_fill(&W); tens_fill(&A);
    float *w = malloc(sizeof(float) * (size_t)(K * N * X));
    float *want = malloc(sizeof(float) * (size_t)(N * T));
    for (int64_t e = 0; e < X; e++)
        for (int64_t n = 0; n < N; n++)
            deq_row(LAMINA_TYPE_Q8_0, row_ptr(&W, n, e, 0), w + (e * N + n) * K, K);
    for (int64_t t = 0; t < T; t++) {
        /* 1. the k largest logits (distinct random values), softmax over them */
        int64_t sel[2] = { 0, 0 };
        double p[2], mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < k; j++) {
            int64_t best = -1;
            for (int64_t i = 0; i < X; i++)
                if ((j == 0 || i != sel[0]) && (best < 0 || *f32_at(&L, i, t, 0, 0) > *f32_at(&L, best, t, 0, 0)))
                    best = i;
            sel[j] = best;
            p[j] = *f32_at(&L, best, t, 0, 0);
            mx = p[j] > mx ? p[j] : mx;
        }
        for (int64_t j = 0; j < k; j++)
            sum += exp(p[j] - mx);
        /* 2. the chosen experts' outputs, weighted */
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t j = 0; j < k; j++) {
                double d = 0;
                for (int64_t i = 0; i < K; i++)
                    d += (double)w[(sel[j] * N + n) * K + i] * *f32_at(&A, i, 0, t, 0);
                acc += exp(p[j] - mx) / sum * d;
            }
            want[t * N + n] = (float)acc;
        }
    }
    upload(&L); upload(&W); upload(&A); upload(&out);
    lamina_node nodes[4];
    nodes[0] = node_new(LAMINA_OP_TOPK, &ids, &L, NULL, NULL, NULL);
    nodes[0].ip[0] = (int32_t)k;
    nodes[1] = node_new(LAMINA_OP_MOE_WEIGHTS, &wts, &L, &ids, NULL, NULL);
    nodes[1].ip[0] = 1;
    nodes[2] = node_new(LAMINA_OP_MUL_MAT_ID, &Y, &W, &A, &ids, NULL);
    nodes[3] = node_new(LAMINA_OP_MOE_SUM, &out, &Y, &wts, NULL, NULL);
    uint8_t *got = malloc(out.bytes > Y.bytes ? out.bytes : Y.bytes);
    int ran = run_nodes(nodes, 4, &out, got) == 0;
    double e = ran ? compare(&out, got, want) : INFINITY;
    ok(ran && e <= 2e-5, "%s: max rel error %.2e", name, e);
    /* 3. ids from the host, one out of range: that column NaN, the rest not */
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++)
            *i32_at(&ids, j, t) = (int32_t)((t + j) % X);
    *i32_at(&ids, 1, 1) = (int32_t)X + 5;
    upload(&ids);
    ran = run_nodes(&nodes[2], 1, &Y, got) == 0;
    int nan_ok = ran;
    for (int64_t t = 0; t < T && ran; t++)
        for (int64_t j = 0; j < k; j++)
            for (int64_t n = 0; n < N; n++) {
                float v;
                memcpy(&v, got + (row_ptr(&Y, j, t, 0) - Y.host) + 4 * n, 4);
                if (isnan(v) != (t == 1 && j == 1))
                    nan_ok = 0;
            }
    ok(nan_ok, "mul_mat_id: an expert id out of range gives NaN in its column only%s", how);
    free(got); free(w); free(want);
    tens_free(&L); tens_free(&ids); tens_free(&wts); tens_free(&W); tens_free(&A);
    tens_free(&Y); tens_free(&out);
}

static void test_errors(void)
{
    char err[256] = "";
    lamina_buffer *buf = NULL;
    uint64_t fr = 0, tot = 0;

    /* out of device memory at allocation */
    int rc = bi->buffer_alloc(be, 1ull << 50, LAMINA_BUFFER_WEIGHTS, &buf, err, sizeof err);
    ok(rc == LAMINA_ENOMEM && buf == NULL && err[0] != '\0',
       "buffer_alloc(1 PiB) -> LAMINA_ENOMEM (%d): %s", rc, err);
    err[0] = '\0';
    rc = bi->buffer_alloc(be, UINT64_MAX, LAMINA_BUFFER_WEIGHTS, &buf, err, sizeof err);
    ok(rc == LAMINA_ENOMEM && err[0] != '\0', "buffer_alloc(UINT64_MAX) -> LAMINA_ENOMEM: %s", err);

    rc = bi->memory(be, &fr, &tot);
    ok(rc == 0 && tot > 0, "memory: total %llu, free %llu",
       (unsigned long long)tot, (unsigned long long)fr);

    /* transfers outside a buffer, host wrapping */
    rc = bi->buffer_alloc(be, 100, LAMINA_BUFFER_ACTIVATIONS, &buf, err, sizeof err);
    ok(rc == 0, "buffer_alloc(100)");
    if (rc == 0) {
        uint8_t tmp[128], back[128];
        for (int i = 0; i < 128; i++)
            tmp[i] = (uint8_t)(i * 7 + 1);
        ok(bi->buffer_upload(be, buf, 90, tmp, 11, err, sizeof err) == LAMINA_ERANGE,
           "upload past the end -> LAMINA_ERANGE: %s", err);
        ok(bi->buffer_download(be, buf, UINT64_MAX, back, 2, err, sizeof err) == LAMINA_ERANGE,
           "download at offset 2^64-1 -> LAMINA_ERANGE");
        /* odd offset and size round trip */
        int r1 = bi->buffer_upload(be, buf, 3, tmp, 97, err, sizeof err);
        memset(back, 0, sizeof back);
        int r2 = bi->buffer_download(be, buf, 3, back, 97, err, sizeof err);
        ok(r1 == 0 && r2 == 0 && memcmp(tmp, back, 97) == 0, "upload/download at offset 3, 97 bytes");
        bi->buffer_free(be, buf);
    }
    rc = bi->buffer_wrap_host(be, err, 16, &buf, err, sizeof err);
    ok(rc == LAMINA_ENOTSUP, "buffer_wrap_host -> LAMINA_ENOTSUP");

    /* supports_op declines what it cannot do, and graph_compute says why */
    tens a, d;
    if (tens_new(&a, LAMINA_TYPE_F32, 8, 2, 1, 1, 0, 0) == 0 &&
        tens_new(&d, LAMINA_TYPE_F32, 8, 2, 1, 1, 0, 0) == 0) {
        lamina_node n = node_new(LAMINA_OP_SCALE, &d, &a, NULL, NULL, NULL);
        ok(bi->supports_op(be, &n) == 1, "supports_op scale f32");
        n.op = LAMINA_OP_COUNT;
        ok(bi->supports_op(be, &n) == 0, "supports_op declines an unknown op");
        n = node_new(LAMINA_OP_SCALE, &d, &a, NULL, NULL, NULL);
        n.src[0].offset = 2;
        ok(bi->supports_op(be, &n) == 0, "supports_op declines a misaligned f32 tensor");
        n = node_new(LAMINA_OP_SCALE, &d, &a, NULL, NULL, NULL);
        n.src[0].ne[1] = 1000;
        ok(bi->supports_op(be, &n) == 0, "supports_op declines a tensor past its buffer");
        lamina_graph g = { .struct_size = sizeof g, .n_nodes = 1, .nodes = &n };
        err[0] = '\0';
        rc = bi->graph_compute(be, &g, err, sizeof err);
        ok(rc == LAMINA_ENOTSUP && strstr(err, "past its buffer") != NULL,
           "graph_compute refuses it: %s", err);
        n = node_new(LAMINA_OP_MUL_MAT, &d, &a, &a, NULL, NULL);
        n.src[0].type = LAMINA_TYPE_Q8_K;
        ok(bi->supports_op(be, &n) == 0, "supports_op declines mul_mat q8_K");
        /* the 1.1 and 1.2 ops are the plugin's: a weight type it lacks
         * is declined for mul_mat_id as for mul_mat */
        n = node_new(LAMINA_OP_UNARY, &d, &a, NULL, NULL, NULL);
        ok(bi->supports_op(be, &n) == 1, "supports_op unary f32");
        n = node_new(LAMINA_OP_NORM, &d, &a, NULL, NULL, NULL);
        ok(bi->supports_op(be, &n) == 1, "supports_op norm f32");
        tens w3, ids, y;
        memset(&w3, 0, sizeof w3);
        memset(&ids, 0, sizeof ids);
        memset(&y, 0, sizeof y);
        if (tens_new(&w3, LAMINA_TYPE_F32, 8, 4, 3, 1, 0, 0) == 0 &&
            tens_new(&ids, LAMINA_TYPE_I32, 1, 2, 1, 1, 0, 0) == 0 &&
            tens_new(&y, LAMINA_TYPE_F32, 4, 1, 2, 1, 0, 0) == 0) {
            n = node_new(LAMINA_OP_MUL_MAT_ID, &y, &w3, &d, &ids, NULL);
            n.src[1].ne[1] = 1;
            n.src[1].ne[2] = 2;
            n.src[1].nb[2] = n.src[1].nb[1];
            ok(bi->supports_op(be, &n) == 1, "supports_op mul_mat_id f32");
            n.src[0].type = LAMINA_TYPE_Q8_K;
            ok(bi->supports_op(be, &n) == 0, "supports_op declines mul_mat_id q8_K");
        }
        tens_free(&w3);
        tens_free(&ids);
        tens_free(&y);
        tens_free(&a);
        tens_free(&d);
    }
}

static int open_device(uint32_t dev)
{
    char err[256] = "";
    lamina_backend_params p = { .struct_size = sizeof p, .device = dev };
    int rc = bi->open(&host, &p, &be, err, sizeof err);
    if (rc != 0)
        printf("# open: %s\n", err);
    return rc;
}

static void run_op_cases(void)
{
    for (size_t i = 0; i < N_WTYPES; i++)
        test_get_rows(wtypes[i], 7, "");
    for (size_t i = 0; i < N_WTYPES; i++) {
        test_mul_mat(wtypes[i], 37, 1, 1, "");
        test_mul_mat(wtypes[i], 37, 19, 1, "");
    }
    test_mul_mat(LAMINA_TYPE_F32, 33, 5, 3, " batched");
    test_mul_mat(LAMINA_TYPE_Q4_K, 9, 2, 1, "");
    test_rms_norm(1, 0);
    test_rms_norm(0, 0);
    test_rms_norm(1, 1);
    test_binary(LAMINA_OP_ADD, 0, 0);
    test_binary(LAMINA_OP_ADD, 1, 0);
    test_binary(LAMINA_OP_MUL, 0, 0);
    test_binary(LAMINA_OP_MUL, 1, 0);
    test_binary(LAMINA_OP_SCALE, 0, 0);
    test_binary(LAMINA_OP_GLU, 0, LAMINA_ACT_SILU);
    test_binary(LAMINA_OP_GLU, 0, LAMINA_ACT_GELU_TANH);
    test_copy(LAMINA_TYPE_F32, LAMINA_TYPE_F32);
    test_copy(LAMINA_TYPE_F32, LAMINA_TYPE_F16);
    test_copy(LAMINA_TYPE_F16, LAMINA_TYPE_F32);
    test_copy(LAMINA_TYPE_BF16, LAMINA_TYPE_F32);
    test_copy(LAMINA_TYPE_BF16, LAMINA_TYPE_F16);
    test_rope(LAMINA_ROPE_NORM, 0);
    test_rope(LAMINA_ROPE_NEOX, 0);
    test_rope(LAMINA_ROPE_NEOX, 1);
    test_rope(LAMINA_ROPE_NORM, 1);
    test_set_rows(LAMINA_TYPE_F32);
    test_set_rows(LAMINA_TYPE_F16);
    test_attention(LAMINA_TYPE_F16, 0, 0.0f);
    test_attention(LAMINA_TYPE_F32, 0, 0.0f);
    test_attention(LAMINA_TYPE_F16, 50, 30.0f);
    test_chain();
    test_moe_chain("");
}

#ifdef VK_WITH_REF
static void selftest_case(void *ctx, const lamina_selftest_result *r)
{
    (void)ctx;
    if (r->status == LAMINA_SELFTEST_PASS)
        ok_ref(1, "selftest %s: pass, error %.1e (tol %.0e), %.1f ms", r->name, r->max_err, r->tol, r->ms);
    else if (r->status == LAMINA_SELFTEST_UNSUPPORTED)  /* nothing was checked */
        printf("ok %d - selftest %s # SKIP declined by the plugin's supports_op\n", ++n_test,
               r->name);
    else
        ok_ref(0, "selftest %s: %s, error %.1e (tol %.0e): %s", r->name,
           r->status == LAMINA_SELFTEST_FAIL ? "FAIL" : "ERROR", r->max_err, r->tol, r->msg);
}

static void run_selftest(void)
{
    char err[512] = "";
    lamina_selftest_summary sum;
    memset(&sum, 0, sizeof sum);
    int rc = lamina_selftest_run(bi, be, selftest_case, NULL, &sum, err, sizeof err);
    ok_ref(rc == 0 && sum.failed == 0 && sum.errors == 0 && sum.passed > 0,
       "lamina_selftest_run: %d cases, %d passed, %d failed, %d errors, %d unsupported, "
       "%.1f GFLOP/s %s", sum.cases, sum.passed, sum.failed, sum.errors, sum.unsupported,
       sum.score_gflops, err);
}
#endif

/* ---- modes ------------------------------------------------------------------- */

static int mode_no_icd(int expect_missing_lib)
{
    probe_result p;
    char err[256] = "";
    int rc = run_probe(desc, &p, err, sizeof err);
    for (char *c = p.notes; *c; c++)       /* one TAP line */
        if (*c == '\n')
            *c = c[1] ? '|' : '\0';
    ok(rc == 0, "probe without a usable driver returns 0 (%d %s)", rc, err);
    ok(p.n_dev == 0, "probe reports zero devices (%d)", p.n_dev);
    ok(p.notes[0] != '\0', "probe says why: %.200s", p.notes);
    ok(p.loader_found[0] != '\0', "loader still reported: %s", p.loader_found);
    if (expect_missing_lib) {
        ok(strstr(p.notes, "does not exist") != NULL, "note names the missing driver library");
        ok(p.n_files >= 1, "the bad manifest is reported as a file (%d)", p.n_files);
    }
    /* faults.sh: the words the reason must contain */
    const char *want = getenv("VK_TEST_EXPECT_NOTE");
    if (want != NULL && *want != '\0')
        ok(strstr(p.notes, want) != NULL, "the reason names it: '%s'", want);
    err[0] = '\0';
    lamina_backend_params par = { .struct_size = sizeof par, .device = 0 };
    lamina_backend *b = NULL;
    rc = bi->open(&host, &par, &b, err, sizeof err);
    ok(rc < 0 && b == NULL && err[0] != '\0', "open(0) fails cleanly (%d): %s", rc, err);
    printf("1..%d\n", n_test);
    return n_fail ? 1 : 0;
}

int main(int argc, char **argv)
{
    char path[4096], err[256] = "";
    const char *top = getenv("top_builddir");
    int no_icd = argc > 1 && strcmp(argv[1], "--no-icd") == 0;
    int bad_icd = argc > 1 && strcmp(argv[1], "--bad-icd") == 0;

    snprintf(path, sizeof path, "%s/plugins/vulkan/.libs/vulkan.so", top ? top : "..");
    /* as the core does: a loaded plugin stays mapped until exit (with the
     * process-wide VkInstance it keeps, and so the driver) */
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (dl == NULL) {
        printf("not ok 1 - dlopen %s: %s\n1..1\n", path, dlerror());
        return 1;
    }
    lamina_plugin_entry_fn entry = (lamina_plugin_entry_fn)dlsym(dl, LAMINA_PLUGIN_ENTRY_NAME);
    desc = entry ? entry(&host) : NULL;
    ok(desc != NULL && desc->abi_major == LAMINA_PLUGIN_ABI_MAJOR &&
       strcmp(desc->name, "vulkan") == 0 && desc->backend != NULL,
       "entry returns the vulkan descriptor");
    if (desc == NULL) {
        printf("1..%d\n", n_test);
        return 1;
    }
    bi = desc->backend;
    if (no_icd || bad_icd) {
        int r = mode_no_icd(bad_icd);
        dlclose(dl);
        return r;
    }

    /* probe: the loader, the manifests, the devices */
    char want_hdr[32];
    snprintf(want_hdr, sizeof want_hdr, "%u.%u.%u", VK_API_VERSION_MAJOR(VK_HEADER_VERSION_COMPLETE),
             VK_API_VERSION_MINOR(VK_HEADER_VERSION_COMPLETE), VK_HEADER_VERSION);
    probe_result p;
    int rc = run_probe(desc, &p, err, sizeof err);
    ok(rc == 0, "probe returns 0 (%s)", err);
    if (p.n_dev == 0) {
        printf("# notes: %s\n", p.notes);
        printf("1..%d # SKIP no Vulkan device on this host: %.200s\n", n_test, p.notes);
        dlclose(dl);
        return 0;
    }
    ok(desc->built_against != NULL && strcmp(desc->built_against[0].name, "vulkan-headers") == 0 &&
       strcmp(desc->built_against[0].version, want_hdr) == 0,
       "built against vulkan-headers %s", want_hdr);
    ok(p.loader_found[0] != '\0' && strcmp(p.loader_built, "1.1.0") == 0 &&
       p.loader_rule == LAMINA_RULE_AT_LEAST && strstr(p.loader_path, "libvulkan") != NULL,
       "vulkan-loader %s (needs >= %s) at %s", p.loader_found, p.loader_built, p.loader_path);
    ok(p.n_files >= 1, "ICD manifests reported as files (%d)", p.n_files);
    printf("# device 0: %s\n", p.dev0);
    if (p.lavapipe)
        ok(strstr(p.files, "lvp_icd") != NULL, "lavapipe's manifest is among the files");
    ok(p.n_usable >= 1, "at least one usable device (%d of %d)", p.n_usable, p.n_dev);
    if (p.lavapipe)
        ok(strstr(p.dev0, "driver_version=") != NULL && strstr(p.dev0, "api=1.") != NULL &&
           strstr(p.dev0, "type=cpu") != NULL, "lavapipe reports versions and type cpu");

    /* ops on device 0 */
    if (open_device(0) != 0) {
        ok(0, "open device 0");
    } else {
        run_op_cases();
        test_errors();
#ifdef VK_WITH_REF
        run_selftest();
#endif
        bi->close(be);
        be = NULL;
    }

    /* the shared-memory reduction variant and windowed weights */
    setenv("LAMINA_VULKAN_NO_SUBGROUP", "1", 1);
    setenv("LAMINA_VULKAN_MAX_RANGE", "4096", 1);
    if (open_device(0) != 0) {
        ok(0, "open device 0 (no subgroup ops, 4 KiB bindings)");
    } else {
        log_text[0] = '\0';
        test_mul_mat(LAMINA_TYPE_Q4_0, 300, 1, 1, " shared-reduce, windows");
        /* 300 rows of 54 bytes in bindings of at most 4 KiB: 4+ windows */
        const char *g = strstr(log_text, "graph: 1 nodes, ");
        ok(g != NULL && atoi(g + 16) >= 4, "weights split into windows: %.60s", g ? g : log_text);
        test_mul_mat(LAMINA_TYPE_Q6_K, 21, 1, 1, " shared-reduce, windows");
        test_mul_mat(LAMINA_TYPE_F16, 100, 7, 1, " windows");
        test_get_rows(LAMINA_TYPE_Q5_0, 300, " windows");
        /* experts are not windowed: one larger than a binding is declined */
        tens w3, a, ids, y;
        if (tens_new(&w3, LAMINA_TYPE_F32, 64, 16, 2, 1, 0, 0) == 0 &&
            tens_new(&a, LAMINA_TYPE_F32, 64, 1, 1, 1, 0, 0) == 0 &&
            tens_new(&ids, LAMINA_TYPE_I32, 1, 1, 1, 1, 0, 0) == 0 &&
            tens_new(&y, LAMINA_TYPE_F32, 16, 1, 1, 1, 0, 0) == 0) {
            lamina_node n = node_new(LAMINA_OP_MUL_MAT_ID, &y, &w3, &a, &ids, NULL);
            ok(bi->supports_op(be, &n) == 0, "supports_op declines mul_mat_id with 8 KiB of experts "
               "in 4 KiB bindings");
            tens_free(&w3); tens_free(&a); tens_free(&ids); tens_free(&y);
        }
        bi->close(be);
        be = NULL;
    }
    unsetenv("LAMINA_VULKAN_MAX_RANGE");
    /* mul_mat_id's shared-memory reduction variant */
    if (open_device(0) != 0) {
        ok(0, "open device 0 (no subgroup ops)");
    } else {
        test_moe_chain(" (shared-reduce)");
        bi->close(be);
        be = NULL;
    }
    unsetenv("LAMINA_VULKAN_NO_SUBGROUP");

    /* the GPU shape of the matrix-vector shader: a workgroup of one
     * subgroup (8 lanes here), 3 rows each so the last group is partial */
    setenv("LAMINA_VULKAN_MMV_LS", "8", 1);
    setenv("LAMINA_VULKAN_MMV_ROWS", "3", 1);
    setenv("LAMINA_VULKAN_NO_16BIT", "1", 1);      /* the 32-bit-load variants */
    setenv("LAMINA_VULKAN_MMV_BLK", "0", 1);       /* not the whole-block ones */
    if (open_device(0) != 0) {
        ok(0, "open device 0 (one-subgroup matrix-vector workgroups)");
    } else {
        test_mul_mat(LAMINA_TYPE_Q4_K, 37, 1, 1, " one subgroup, 3 rows");
        test_mul_mat(LAMINA_TYPE_Q8_0, 101, 2, 1, " one subgroup, 3 rows, 32-bit loads");
        test_mul_mat(LAMINA_TYPE_Q5_0, 33, 1, 1, " one subgroup, 3 rows, 32-bit loads");
        test_mul_mat(LAMINA_TYPE_F16, 50, 1, 1, " one subgroup, 3 rows, 32-bit loads");
        test_moe_chain(" (one subgroup, 3 rows)");
        bi->close(be);
        be = NULL;
    }
    unsetenv("LAMINA_VULKAN_MMV_LS");
    unsetenv("LAMINA_VULKAN_MMV_ROWS");
    unsetenv("LAMINA_VULKAN_NO_16BIT");

    /* the whole-block matrix-vector variants (the default on CPU devices),
     * 3 rows a workgroup, rows of 33 blocks so that a lane takes several
     * and the last round is partial */
    setenv("LAMINA_VULKAN_MMV_BLK_ROWS", "3", 1);
    setenv("LAMINA_VULKAN_MMV_BLK", "1", 1);
    log_text[0] = '\0';
    if (open_device(0) != 0) {
        ok(0, "open device 0 (whole-block matrix-vector)");
    } else {
        ok(strstr(log_text, "whole-block matrix-vector") != NULL, "whole-block matrix-vector variants in use");
        k_blocks = 33;
        test_mul_mat(LAMINA_TYPE_Q8_0, 41, 2, 1, " whole blocks, 3 rows");
        test_mul_mat(LAMINA_TYPE_Q5_0, 40, 1, 1, " whole blocks, 3 rows");
        k_blocks = 3;
        test_mul_mat(LAMINA_TYPE_Q4_K, 10, 1, 1, " (no whole-block variant)");
        bi->close(be);
        be = NULL;
    }
    unsetenv("LAMINA_VULKAN_MMV_BLK_ROWS");
    unsetenv("LAMINA_VULKAN_MMV_BLK");

    dlclose(dl);
    printf("1..%d\n", n_test);
    return n_fail ? 1 : 0;
}
