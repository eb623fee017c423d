/*
 * core_open.c - drive lamina_runtime_* for the shell tests.
 *
 *   core_open [--reprobe] [--no-selftest] [--run] [--paths] CONFIG.ini
 *
 * With --paths, first what the configuration resolved to:
 *   config SOURCE|-           the INI file read ("-": built-in defaults)
 *   order auto|NAME,... [env] [env]: from $LAMINA_BACKENDS
 *   dir PATH STATUS [env]     each plugin directory ([env]: from
 *                             $LAMINA_PLUGIN_PATH)
 *   cache DIR|-               the probe cache directory
 *   helper PATH               the probe helper
 * Then one line per plugin and per device:
 *   plugin NAME STATUS failure=KIND cache=0|1 reason=...
 *   device NAME:INDEX STATUS selftest=run/passed cases=N reason=...
 *   slot N LABEL
 * and with --run opens slot 0 in this process and runs a graph of ADD,
 * MUL, SCALE, RMS_NORM, GLU and MUL_MAT, comparing with values computed
 * here:  "graph ok on LABEL" or "graph FAIL ...".  Exit 0 unless something
 * failed to run.  Standard output is line-buffered, so what was printed
 * survives a sanitizer that dies at exit (LeakSanitizer in a set-user-ID
 * process, tests/core/privileged.sh).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/lamina.h"
#include "registry.h"     /* plugin directories, cache, helper (--paths) */

static void log_cb(void *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "log[%d]: %s\n", level, msg);
    printf("log: %s\n", msg);
}

static const char *st(int s)
{
    return s == LAMINA_STATUS_ACCEPTED ? "accepted" : s == LAMINA_STATUS_REJECTED ? "rejected"
                                                                                   : "disabled";
}

static lamina_tensor f32(lamina_buffer *b, uint64_t off, int64_t ne0, int64_t ne1)
{
    lamina_tensor t;
    memset(&t, 0, sizeof(t));
    t.type = LAMINA_TYPE_F32;
    t.ne[0] = ne0;
    t.ne[1] = ne1;
    t.ne[2] = t.ne[3] = 1;
    t.nb[0] = sizeof(float);
    t.nb[1] = (uint64_t)ne0 * sizeof(float);
    t.nb[2] = t.nb[3] = t.nb[1] * (uint64_t)ne1;
    t.buffer = b;
    t.offset = off;
    return t;
}

/* x [K=8, M=3], w [8], W [8, N=5]:
 *   h = rms_norm(x) * w; a = h + x; m = a * x; s = 0.5 * m;
 *   g = glu_silu(s, x); y = W^T g  -> [5, 3] */
static int run_graph(lamina_be *be)
{
    enum { K = 8, M = 3, N = 5 };
    float x[K * M], w[K], W[K * N], out[N * M];
    for (int i = 0; i < K * M; i++) x[i] = 0.1f * (float)((i * 7) % 11) - 0.4f;
    for (int i = 0; i < K; i++) w[i] = 1.0f + 0.05f * (float)i;
    for (int i = 0; i < K * N; i++) W[i] = 0.03f * (float)((i * 5) % 13) - 0.2f;

    /* Layout in one buffer, in floats. */
    const uint64_t o_x = 0, o_w = o_x + K * M, o_W = o_w + K, o_h = o_W + K * N, o_a = o_h + K * M,
                   o_m = o_a + K * M, o_s = o_m + K * M, o_g = o_s + K * M, o_y = o_g + K * M,
                   total = o_y + N * M;
    lamina_buffer *buf = NULL;
    char err[512] = "";
    const lamina_backend_iface *f = be->iface;
    if (f->buffer_alloc(be->inst, total * 4, LAMINA_BUFFER_ACTIVATIONS, &buf, err, sizeof(err)) != 0) {
        printf("graph FAIL alloc: %s\n", err);
        return 1;
    }
    f->buffer_upload(be->inst, buf, o_x * 4, x, sizeof(x), err, sizeof(err));
    f->buffer_upload(be->inst, buf, o_w * 4, w, sizeof(w), err, sizeof(err));
    f->buffer_upload(be->inst, buf, o_W * 4, W, sizeof(W), err, sizeof(err));

    lamina_node nodes[6];
    memset(nodes, 0, sizeof(nodes));
    nodes[0].op = LAMINA_OP_RMS_NORM; nodes[0].n_src = 2;
    nodes[0].dst = f32(buf, o_h * 4, K, M); nodes[0].src[0] = f32(buf, o_x * 4, K, M);
    nodes[0].src[1] = f32(buf, o_w * 4, K, 1); nodes[0].fp[0] = 1e-6f;
    nodes[1].op = LAMINA_OP_ADD; nodes[1].n_src = 2;
    nodes[1].dst = f32(buf, o_a * 4, K, M); nodes[1].src[0] = f32(buf, o_h * 4, K, M);
    nodes[1].src[1] = f32(buf, o_x * 4, K, M);
    nodes[2].op = LAMINA_OP_MUL; nodes[2].n_src = 2;
    nodes[2].dst = f32(buf, o_m * 4, K, M); nodes[2].src[0] = f32(buf, o_a * 4, K, M);
    nodes[2].src[1] = f32(buf, o_x * 4, K, M);
    nodes[3].op = LAMINA_OP_SCALE; nodes[3].n_src = 1;
    nodes[3].dst = f32(buf, o_s * 4, K, M); nodes[3].src[0] = f32(buf, o_m * 4, K, M);
    nodes[3].fp[0] = 0.5f;
    nodes[4].op = LAMINA_OP_GLU; nodes[4].n_src = 2; nodes[4].ip[0] = LAMINA_ACT_SILU;
    nodes[4].dst = f32(buf, o_g * 4, K, M); nodes[4].src[0] = f32(buf, o_s * 4, K, M);
    nodes[4].src[1] = f32(buf, o_x * 4, K, M);
    nodes[5].op = LAMINA_OP_MUL_MAT; nodes[5].n_src = 2;
    nodes[5].dst = f32(buf, o_y * 4, N, M); nodes[5].src[0] = f32(buf, o_W * 4, K, N);
    nodes[5].src[1] = f32(buf, o_g * 4, K, M);
    for (int i = 0; i < 6; i++) {
        if (!f->supports_op(be->inst, &nodes[i])) {
            printf("graph FAIL: node %d (op %u) not supported\n", i, nodes[i].op);
            f->buffer_free(be->inst, buf);
            return 1;
        }
    }
    lamina_graph g = { sizeof(lamina_graph), 6, nodes, sizeof nodes[0], 0 };
    int rc = f->graph_compute(be->inst, &g, err, sizeof(err));
    if (rc == 0)
        rc = f->buffer_download(be->inst, buf, o_y * 4, out, sizeof(out), err, sizeof(err));
    f->buffer_free(be->inst, buf);
    if (rc != 0) {
        printf("graph FAIL compute: %s\n", err);
        return 1;
    }

    /* The same maths here. */
    double worst = 0;
    for (int m = 0; m < M; m++) {
        double ss = 0, gv[K];
        for (int k = 0; k < K; k++) ss += (double)x[m * K + k] * x[m * K + k];
        double inv = 1.0 / sqrt(ss / K + 1e-6);
        for (int k = 0; k < K; k++) {
            double xv = x[m * K + k];
            double h = xv * inv * w[k];
            double s = 0.5 * ((h + xv) * xv);
            gv[k] = s / (1.0 + exp(-s)) * xv;
        }
        for (int n = 0; n < N; n++) {
            double y = 0;
            for (int k = 0; k < K; k++) y += (double)W[n * K + k] * gv[k];
            double e = fabs(y - out[m * N + n]);
            if (e > worst) worst = e;
        }
    }
    if (worst > 1e-4) {
        printf("graph FAIL: max error %g\n", worst);
        return 1;
    }
    printf("graph ok on %s\n", be->label);
    return 0;
}

int main(int argc, char **argv)
{
    lamina_runtime_options o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    o.log = log_cb;
    int run = 0, paths = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reprobe") == 0) o.reprobe = 1;
        else if (strcmp(argv[i], "--paths") == 0) paths = 1;
        else if (strcmp(argv[i], "--no-selftest") == 0) o.no_selftest = 1;
        else if (strcmp(argv[i], "--run") == 0) run = 1;
        else o.config_path = argv[i];
    }
    lamina_runtime *rt = NULL;
    char err[1024];
    if (lamina_runtime_open(&o, &rt, err, sizeof(err)) < 0) {
        printf("open failed: %s\n", err);
        return 1;
    }
    if (paths) {
        const lamina_config *cfg = lamina_runtime_config(rt);
        printf("config %s\n", cfg->source[0] ? cfg->source : "-");
        printf("order ");
        if (cfg->backends_auto)
            printf("auto");
        for (int i = 0; !cfg->backends_auto && i < cfg->n_backends; i++)
            printf("%s%s", i ? "," : "", cfg->backends[i]);
        printf("%s\n", cfg->backends_from_env ? " [env]" : "");
        for (int i = 0; i < lamina_runtime_dir_count(rt); i++) {
            const lamina_plugin_dir *d = lamina_runtime_dir(rt, i);
            printf("dir %s %s%s\n", d->path, d->status, i < cfg->n_plugin_path_env ? " [env]" : "");
        }
        const char *cd = lamina_runtime_cache_dir(rt);
        printf("cache %s\n", cd[0] ? cd : "-");
        printf("helper %s\n", lamina_runtime_helper(rt));
    }
    for (int i = 0; i < lamina_runtime_plugin_count(rt); i++) {
        const lamina_plugin_report *p = lamina_runtime_plugin(rt, i);
        printf("plugin %s %s failure=%s cache=%d reason=%s\n", p->name, st(p->status),
               p->failure[0] ? p->failure : "-", p->from_cache, p->reason);
        for (int k = 0; k < p->n_devices; k++) {
            const lamina_device_report *d = &p->devices[k];
            printf("device %s:%u %s selftest=%d/%d cases=%d reason=%s\n", p->name, d->info.index,
                   st(d->status), d->selftest_run, d->selftest_passed, d->selftest_cases, d->reason);
        }
    }
    int rc = 0;
    for (int i = 0; i < lamina_runtime_device_count(rt); i++)
        printf("slot %d %s\n", i, lamina_runtime_device(rt, i)->device->label);
    if (run) {
        lamina_be *be = NULL;
        if (lamina_runtime_open_backend(rt, 0, &be, err, sizeof(err)) < 0) {
            printf("graph FAIL open_backend: %s\n", err);
            rc = 1;
        } else {
            rc = run_graph(be);
            lamina_be_close(be);
        }
    }
    lamina_runtime_close(rt);
    return rc;
}
