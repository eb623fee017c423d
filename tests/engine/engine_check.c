/*
 * engine_check.c - the engine on tiny generated models, op by op against
 * the core's reference backend:
 *   - the cpu plugin's logits match the reference's at every position;
 *   - a split plan (first layers on the cpu plugin, the rest on a second
 *     backend) matches the single-backend result;
 *   - incremental decoding through the KV cache matches a full prefill;
 *   - two sequences decoded in one batch match each decoded alone;
 *   - out-of-range positions, slots and tokens are refused.
 * usage: engine_check MODEL.gguf CPU_PLUGIN.so   (prints TAP)
 */
#include "config.h"

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engine_impl.h"
#include "generate.h"
#include "tokenizer.h"
#include "model.h"
#include "ref.h"
#include "tap.h"
#include "testenv.h"


/* A backend that passes small tests but is wrong on real shapes: the
 * reference, except that RMS norms over rows of 64 or more elements use a
 * huge epsilon. */
static lamina_backend_iface liar_iface;
static int liar_compute(lamina_backend *be, const lamina_graph *g, char *err, size_t err_size)
{
    lamina_node *copy = malloc(g->n_nodes * sizeof *copy);
    memcpy(copy, g->nodes, g->n_nodes * sizeof *copy);
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (copy[i].op == LAMINA_OP_RMS_NORM && copy[i].src[0].ne[0] >= 64) copy[i].fp[0] = 10.0f;
    lamina_graph g2 = *g;
    g2.nodes = copy;
    int rc = lamina_ref_backend_iface()->graph_compute(be, &g2, err, err_size);
    free(copy);
    return rc;
}

/* A device with little memory: the reference with memory() reporting
 * small_free bytes. */
static lamina_backend_iface small_iface;
static uint64_t small_free;
static int small_memory(lamina_backend *be, uint64_t *free_b, uint64_t *total_b)
{
    (void)be;
    *free_b = small_free;
    *total_b = small_free;
    return 0;
}

/* A device that is lost after a number of graphs: the cpu plugin (so the
 * numbers are the same as on the cpu plugin it fails over to), except that
 * graph_compute answers LAMINA_EDEVLOST once `lossy_left` reaches 0, and
 * from then on. */
static lamina_backend_iface lossy_iface;
static const lamina_backend_iface *lossy_real;
static int lossy_left = -1;            /* < 0: never lost */
static int lossy_compute(lamina_backend *be, const lamina_graph *g, char *err, size_t err_size)
{
    if (lossy_left == 0) {
        snprintf(err, err_size, "device lost (simulated)");
        return LAMINA_EDEVLOST;
    }
    if (lossy_left > 0) lossy_left--;
    return lossy_real->graph_compute(be, g, err, err_size);
}

/* Greedy ids of n tokens after `prompt` on the given backends. */
static int greedy_ids(lamina_model *m, const lamina_tokenizer *tok, lamina_be **bes, int n_bes, int lose_after,
                      lamina_token *out, int n, char *plan, size_t plan_size, char *err, size_t err_size)
{
    lamina_engine_params p;
    lamina_engine_params_default(&p);
    p.n_ctx = 64; p.n_batch = 4;
    p.gpu_layers = n_bes > 1 ? 1 : -2;          /* layer 0 on the device, or all */
    lamina_engine *e = NULL;
    lossy_left = -1;
    int rc = lamina_engine_create(m, bes, n_bes, &p, &e, err, err_size);
    if (rc < 0) return rc;
    lossy_left = lose_after;
    lamina_token prompt[6] = { 5, 17, 42, 9, 100, 3 };
    lamina_seq s = { .slot = 0 };
    lamina_gen_params gp;
    memset(&gp, 0, sizeof gp);
    gp.temperature = 0.0f; gp.top_p = 1.0f; gp.max_tokens = n;
    gp.repeat_penalty = 3.0f; gp.repeat_last_n = 64;     /* keeps the greedy ids of a random model varied */
    lamina_gen_stats st;
    rc = lamina_seq_generate(e, tok, &s, prompt, 6, &gp, NULL, NULL, &st, err, err_size);
    int got = 0;
    for (int i = 6; i < s.n && got < n; i++) out[got++] = s.tokens[i];
    if (rc == 0 && st.stop_reason == LAMINA_STOP_EOG && got < n) out[got++] = -1;   /* the EOG itself */
    for (; got < n; got++) out[got] = -2;
    if (plan) lamina_engine_describe_plan(e, plan, plan_size);
    lamina_seq_free(&s);
    lamina_engine_free(e);
    lossy_left = -1;
    return rc;
}

/* Logits for every position of toks in slot 0 (n * V floats). */
static float *run_all(lamina_model *m, lamina_be **bes, int n_bes, int gpu_layers,
                      const int32_t *toks, int n, int *n_parts)
{
    lamina_engine_params p;
    lamina_engine_params_default(&p);
    p.n_ctx = 64; p.n_seq = 2; p.n_batch = 32; p.n_outputs = 32;
    p.gpu_layers = gpu_layers;
    p.kv_f32 = 1;
    lamina_engine *e;
    char err[512] = "";
    if (lamina_engine_create(m, bes, n_bes, &p, &e, err, sizeof err) < 0) {
        printf("# engine: %s\n", err);
        return NULL;
    }
    if (n_parts) *n_parts = lamina_engine_plan(e, NULL);
    char plan[1024];
    lamina_engine_describe_plan(e, plan, sizeof plan);
    for (char *l = strtok(plan, "\n"); l; l = strtok(NULL, "\n")) printf("#   %s\n", l);
    const int V = m->hp.n_vocab;
    float *out = malloc((size_t)n * V * sizeof(float));
    int32_t pos[64], seq[64];
    int8_t want[64];
    for (int i = 0; i < n; i++) { pos[i] = i; seq[i] = 0; want[i] = 1; }
    lamina_batch b = { n, toks, pos, seq, want };
    int rc = lamina_engine_decode(e, &b, out, err, sizeof err);
    if (rc != n) { printf("# decode: %s\n", err); free(out); out = NULL; }
    lamina_engine_free(e);
    return out;
}

/* max |a-b| / max |a| over n values */
static double rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, ma = 1e-12;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;                 /* NaN propagates as failure */
        if (fabs(a[i]) > ma) ma = fabs(a[i]);
    }
    return md / ma;
}

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[b]) b = i;
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: engine_check MODEL CPU.so\n"); return 2; }
    char err[512] = "";
    lamina_model *m;
    if (lamina_model_load(argv[1], &m, err, sizeof err) < 0) {
        printf("not ok 1 - load %s: %s\n1..1\n", argv[1], err);
        return 1;
    }
    ok(1, "load %s (%s, %d layers)", argv[1], m->hp.arch_name, m->hp.n_layer);
    void *dl = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (!dl) { printf("not ok 2 - dlopen: %s\n1..2\n", dlerror()); return 1; }
    lamina_plugin_entry_fn entry = (lamina_plugin_entry_fn)dlsym(dl, LAMINA_PLUGIN_ENTRY_NAME);
    const lamina_plugin_desc *d = entry ? entry(&test_host) : NULL;
    ok(d && d->backend, "cpu plugin entry");
    if (!d) return 1;

    lamina_be *ref = test_be_open(lamina_ref_backend_iface(), "ref:0");
    lamina_be *ref_gpu = test_be_open(lamina_ref_backend_iface(), "gpu-ref:0");   /* not a host label */
    lamina_be *cpu = test_be_open(d->backend, "cpu:0");
    ok(ref && cpu && ref_gpu, "backends open");
    if (!ref || !cpu || !ref_gpu) return 1;

    const int V = m->hp.n_vocab, n = 12;
    int32_t toks[12];
    for (int i = 0; i < n; i++) toks[i] = (int32_t)((i * 37 + 5) % V);

    /* 1. reference vs cpu plugin, every position */
    float *lr = run_all(m, &ref, 1, -1, toks, n, NULL);
    float *lc = run_all(m, &cpu, 1, -1, toks, n, NULL);
    ok(lr && lc, "forward on reference and on cpu");
    if (!lr || !lc) return 1;
    double e1 = rel_err(lr, lc, (size_t)n * V);
    int same = 0;
    for (int i = 0; i < n; i++) same += argmax(lr + (size_t)i * V, V) == argmax(lc + (size_t)i * V, V);
    /* the cpu plugin rounds activations to 8-bit blocks for quantized
     * weights; 3% of the largest logit bounds that over a few layers */
    ok(e1 < 3e-2, "cpu logits vs reference: max rel error %.2e < 3e-2", e1);
    ok(same >= n - 1, "argmax agrees at %d/%d positions", same, n);

    /* 2. split: layer 0.. on "refgpu" (gpu_layers = 1), the rest on cpu */
    lamina_be *two[2] = { ref_gpu, cpu };
    int parts = 0;
    float *ls = run_all(m, two, 2, 1, toks, n, &parts);
    ok(ls && parts == 2, "split plan uses both backends (%d parts)", parts);
    if (ls) {
        double e2 = rel_err(lr, ls, (size_t)n * V);
        ok(e2 < 3e-2, "split logits vs reference: max rel error %.2e", e2);
    }

    /* 2b. a backend that is wrong on the model's real shapes is demoted
     *     by the model-layer check, and the layers go to the next one */
    {
        liar_iface = *lamina_ref_backend_iface();
        liar_iface.graph_compute = liar_compute;
        lamina_be *liar = test_be_open(&liar_iface, "gpu-liar:0");
        lamina_be *pair[2] = { liar, cpu };
        lamina_engine_params p;
        lamina_engine_params_default(&p);
        p.n_ctx = 32; p.n_batch = 8;
        lamina_engine *e = NULL;
        int rc = lamina_engine_create(m, pair, 2, &p, &e, err, sizeof err);
        char plan[2048] = "";
        if (rc == 0) lamina_engine_describe_plan(e, plan, sizeof plan);
        for (char *l = strtok(plan, "\n"); l; l = strtok(NULL, "\n")) printf("#   %s\n", l);
        lamina_engine_describe_plan(e, plan, sizeof plan);
        ok(rc == 0 && lamina_engine_plan(e, NULL) == 1 && strstr(plan, "gpu-liar:0: demoted") &&
           strstr(plan, "cpu:0"), "wrong-on-real-shapes backend demoted, layers on cpu");
        lamina_engine_free(e);
        test_be_free(liar);
    }

    /* 2c. memory: fits, partly fits, does not fit; gpu_layers = 0 */
    {
        small_iface = *lamina_ref_backend_iface();
        small_iface.memory = small_memory;
        small_iface.buffer_wrap_host = NULL;            /* weights must be uploaded */
        lamina_be *small = test_be_open(&small_iface, "gpu-small:0");
        lamina_engine_params p;
        lamina_engine_params_default(&p);
        p.n_ctx = 32; p.n_batch = 8; p.verify_layer = 0;
        p.reserve_bytes = 1 << 20;
        uint64_t layer = lamina_model_layer_bytes(m, 0), embd = lamina_model_layer_bytes(m, -1);
        stage_mem sm;
        uint64_t scratch = lamina_stage_layout(&sm, m, &p, 0), kv = lamina_kv_layer_bytes(m, &p);
        const lamina_plan_part *pp;
        lamina_be *pair[2] = { small, cpu };
        struct { uint64_t mem; int gpu_layers, want_parts, want_gpu_layers; const char *what; } cs[] = {
            { 1ull << 40, -1, 1, -1, "fits: every layer on the device" },
            { (1u << 20) + scratch + embd + 2 * (layer + kv) + (layer + kv) / 2, -1, 2, 2, "partly fits: 2 layers on the device, the rest on cpu" },
            { 1u << 20, -1, 1, 0, "does not fit: all on cpu" },
            { 1ull << 40, 0, 1, 0, "gpu_layers = 0: all on cpu" },
            { 1ull << 40, 1, 2, 1, "gpu_layers = 1: one layer on the device" },
        };
        for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
            small_free = cs[c].mem;
            p.gpu_layers = cs[c].gpu_layers;
            lamina_engine *e = NULL;
            int rc = lamina_engine_create(m, pair, 2, &p, &e, err, sizeof err);
            int np = rc == 0 ? lamina_engine_plan(e, &pp) : 0;
            int on_gpu = 0;
            for (int i = 0; i < np; i++)
                if (strcmp(lamina_engine_part_label(e, i), "gpu-small:0") == 0) on_gpu = pp[i].last - pp[i].first + 1;
            char plan[2048] = "";
            if (e) lamina_engine_describe_plan(e, plan, sizeof plan);
            for (char *l = strtok(plan, "\n"); l; l = strtok(NULL, "\n")) printf("#   %s\n", l);
            int want = cs[c].want_gpu_layers < 0 ? m->hp.n_layer : cs[c].want_gpu_layers;
            ok(rc == 0 && np == cs[c].want_parts && on_gpu == want, "%s (%d parts, %d on device) %s",
               cs[c].what, np, on_gpu, rc ? err : "");
            lamina_engine_free(e);
        }
        small_free = 1u << 20;
        lamina_engine *e = NULL;
        int rc = lamina_engine_create(m, &small, 1, &p, &e, err, sizeof err);
        ok(rc == LAMINA_ENODEV && strstr(err, "no backend can run layer 0"),
           "nowhere to go: a clear error (%s)", err);
        lamina_engine_free(e);
        test_be_free(small);
    }

    /* 3. incremental decode through the KV cache, and batched slots */
    {
        lamina_engine_params p;
        lamina_engine_params_default(&p);
        p.n_ctx = 64; p.n_seq = 2; p.n_batch = 32; p.n_outputs = 32; p.kv_f32 = 1;
        lamina_engine *e;
        int rc = lamina_engine_create(m, &ref, 1, &p, &e, err, sizeof err);
        ok(rc == 0, "engine for incremental checks %s", err);
        float *l1 = malloc((size_t)2 * V * sizeof(float));
        int32_t pos[32], seq[32];
        int8_t want[32];
        for (int i = 0; i < n - 1; i++) { pos[i] = i; seq[i] = 0; want[i] = 0; }
        lamina_batch b = { n - 1, toks, pos, seq, want };
        rc = lamina_engine_decode(e, &b, l1, err, sizeof err);
        ok(rc == 0, "prefill %d tokens, no logits", n - 1);
        /* slot 0 continues at n-1; slot 1 starts fresh with the same first token */
        int32_t t2[2] = { toks[n - 1], toks[0] }, p2[2] = { n - 1, 0 }, s2[2] = { 0, 1 };
        int8_t w2[2] = { 1, 1 };
        lamina_batch b2 = { 2, t2, p2, s2, w2 };
        rc = lamina_engine_decode(e, &b2, l1, err, sizeof err);
        ok(rc == 2, "one batch, two slots at different positions");
        double e3 = rel_err(lr + (size_t)(n - 1) * V, l1, (size_t)V);
        ok(e3 < 1e-4, "incremental decode = full prefill at the last position (%.2e)", e3);
        double e4 = rel_err(lr, l1 + V, (size_t)V);
        ok(e4 < 1e-4, "fresh slot in the same batch = first position alone (%.2e)", e4);
        /* refusals */
        int32_t bad_pos = p.n_ctx, zero = 0, bad_seq = 2, bad_tok = V;
        int8_t one = 1;
        lamina_batch bp = { 1, toks, &bad_pos, &zero, &one };
        ok(lamina_engine_decode(e, &bp, l1, err, sizeof err) == LAMINA_ERANGE, "position past the context: %s", err);
        lamina_batch bs = { 1, toks, &zero, &bad_seq, &one };
        ok(lamina_engine_decode(e, &bs, l1, err, sizeof err) == LAMINA_EINVAL, "bad slot: %s", err);
        lamina_batch bt = { 1, &bad_tok, &zero, &zero, &one };
        ok(lamina_engine_decode(e, &bt, l1, err, sizeof err) == LAMINA_EINVAL, "bad token: %s", err);
        free(l1);
        lamina_engine_free(e);
    }
    /* 4. a device lost in the middle: the engine moves its layers to the
     *    next backend and the generation carries on from the tokens it has */
    {
        lossy_real = d->backend;
        lossy_iface = *d->backend;
        lossy_iface.graph_compute = lossy_compute;
        lamina_be *lossy = test_be_open(&lossy_iface, "gpu-lossy:0");
        lamina_tokenizer *tok = NULL;
        int rc = lamina_tokenizer_load(m->gguf, &tok, err, sizeof err);
        ok(lossy && rc == 0, "lossy device and tokenizer %s", err);
        if (lossy && tok) {
            /* engine level: the batch that meets the loss fails with
             * LAMINA_EDEVLOST, the plan no longer names the device, the next
             * decode runs (from an empty cache) and equals the cpu plugin */
            lamina_be *pair[2] = { lossy, cpu };
            lamina_engine_params p;
            lamina_engine_params_default(&p);
            p.n_ctx = 32; p.n_batch = 16; p.n_outputs = 16; p.gpu_layers = 1;
            p.kv_f32 = 1;                       /* as run_all, for lc */
            lamina_engine *e = NULL;
            rc = lamina_engine_create(m, pair, 2, &p, &e, err, sizeof err);
            ok(rc == 0 && lamina_engine_plan(e, NULL) == 2, "split plan with the lossy device %s", err);
            if (rc == 0) {
                float *l1 = malloc((size_t)n * V * sizeof(float));
                int32_t pos[16], seq[16];
                int8_t want[16];
                for (int i = 0; i < n; i++) { pos[i] = i; seq[i] = 0; want[i] = 1; }
                lamina_batch b = { n, toks, pos, seq, want };
                uint32_t ep = lamina_engine_epoch(e);
                lossy_left = 0;
                rc = lamina_engine_decode(e, &b, l1, err, sizeof err);
                char plan[2048] = "";
                lamina_engine_describe_plan(e, plan, sizeof plan);
                for (char *l = strtok(plan, "\n"); l; l = strtok(NULL, "\n")) printf("#   %s\n", l);
                lamina_engine_describe_plan(e, plan, sizeof plan);
                ok(rc == LAMINA_EDEVLOST && strstr(err, "gpu-lossy:0: lost during generation") &&
                   strstr(err, "moved on to cpu:0"), "loss reported: %s", err);
                ok(lamina_engine_epoch(e) == ep + 1 && lamina_engine_usable(e) &&
                   lamina_engine_plan(e, NULL) == 1 && strncmp(plan, "cpu:0", 5) == 0 &&
                   strstr(plan, "gpu-lossy:0: lost during generation"),
                   "caches reset, every layer on cpu:0 now, the plan says why");
                rc = lamina_engine_decode(e, &b, l1, err, sizeof err);
                double el = rc == n ? rel_err(lc, l1, (size_t)n * V) : 1.0;
                ok(rc == n && el < 1e-6, "the same batch again runs on cpu:0 = cpu-only logits (%.2e)", el);
                free(l1);
            }
            lamina_engine_free(e);

            /* generation level: the same greedy ids whether the device is
             * lost after 0 (prefill), 2 or 5 graphs, or never used */
            lamina_token want_ids[8], got_ids[8];
            char plan[2048];
            rc = greedy_ids(m, tok, &cpu, 1, -1, want_ids, 8, NULL, 0, err, sizeof err);
            ok(rc == 0 && want_ids[0] >= 0, "greedy on cpu only: %d %d %d %d %d %d %d %d %s", want_ids[0], want_ids[1],
               want_ids[2], want_ids[3], want_ids[4], want_ids[5], want_ids[6], want_ids[7], rc ? err : "");
            for (int lose = 0; lose <= 5; lose += (lose == 0 ? 2 : 3)) {
                rc = greedy_ids(m, tok, pair, 2, lose, got_ids, 8, plan, sizeof plan, err, sizeof err);
                ok(rc == 0 && memcmp(want_ids, got_ids, sizeof want_ids) == 0 && strstr(plan, "lost during generation"),
                   "device lost after %d graphs: generation finishes with the cpu-only ids %s", lose, rc ? err : "");
            }
            /* the last backend lost: a clear error, not a crash */
            lamina_be *alone[1] = { lossy };
            rc = greedy_ids(m, tok, alone, 1, 1, got_ids, 8, NULL, 0, err, sizeof err);
            ok(rc == LAMINA_EDEVLOST && strstr(err, "no backend is left"), "only backend lost: %s", err);
        }
        lamina_tokenizer_free(tok);
        test_be_free(lossy);
    }

    free(lr); free(lc); free(ls);
    test_be_free(cpu); test_be_free(ref); test_be_free(ref_gpu);
    lamina_model_free(m);
    dlclose(dl);
    return done_testing();
}
