/*
 * stage_check.c - the load-time model check covers every stage a backend
 * holds, and a stage that fails it moves alone:
 *   - the "fakerows" test plugin (fake_rows_plugin.c: the cpu plugin, wrong
 *     on MUL_MAT weights of more than 512 rows) passes the core self-test;
 *     on a tiny model whose vocabulary (1024) is larger than that, its
 *     output head is refused with the stage named, the head moves to the
 *     cpu plugin while the layers and the embedding stay, and the logits
 *     and the greedy tokens are exactly those of the cpu plugin alone;
 *     with the check off (verify_layer = 0) the logits are wrong;
 *   - a backend wrong only on global-attention layers (window 0: layer 5
 *     of the tiny Gemma 3, layers 0-4 are sliding-window) is demoted, the
 *     reason naming layer 5;
 *   - a backend wrong only on embedding rows past 512 loses the embedding
 *     alone (it moves to the cpu plugin) and the logits equal the
 *     reference's.
 * usage: stage_check MODEL.gguf CPU_PLUGIN.so FAKE_ROWS_PLUGIN.so
 * (MODEL: make_tiny_model.py's gemma3 with a vocabulary over 512).
 * $STAGE_CHECK_NO_VERIFY=1 turns the check off everywhere: the assertions
 * must then fail (how the test was shown to be able to fail).
 */
#include "config.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engine_impl.h"
#include "generate.h"
#include "model.h"
#include "ref.h"
#include "selftest.h"
#include "tap.h"
#include "testenv.h"
#include "tokenizer.h"

static int verify_on = 1;

/* ---- in-process liars over the reference backend ---------------------- */

/* wrong only on global layers: attention with window 0 scales q.k by 3x */
static lamina_backend_iface global_liar;
static int global_compute(lamina_backend *be, const lamina_graph *g, char *err, size_t err_size)
{
    lamina_node *copy = malloc(g->n_nodes * sizeof *copy);
    if (!copy) return LAMINA_ENOMEM;
    memcpy(copy, g->nodes, g->n_nodes * sizeof *copy);
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (copy[i].op == LAMINA_OP_ATTENTION && copy[i].ip[0] == 0) copy[i].fp[0] *= 3.0f;
    lamina_graph g2 = *g;
    g2.nodes = copy;
    int rc = lamina_ref_backend_iface()->graph_compute(be, &g2, err, err_size);
    free(copy);
    return rc;
}

/* wrong only on embedding rows past 512: GET_ROWS from a table of more
 * than 512 rows adds 0.5 to the rows of ids >= 512 */
static lamina_backend_iface embd_liar;
static int embd_compute(lamina_backend *be, const lamina_graph *g, char *err, size_t err_size)
{
    const lamina_backend_iface *ri = lamina_ref_backend_iface();
    uint32_t start = 0;
    int rc;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const lamina_node *n = &g->nodes[i];
        if (n->op != LAMINA_OP_GET_ROWS || n->src[0].ne[1] <= 512) continue;
        lamina_graph part = *g;
        part.n_nodes = i + 1 - start;
        part.nodes = g->nodes + start;
        if ((rc = ri->graph_compute(be, &part, err, err_size)) < 0) return rc;
        start = i + 1;
        const int64_t T = n->src[1].ne[0], K = n->dst.ne[0];
        int32_t ids[64];
        float row[4096];
        if (T > 64 || K > 4096) continue;
        if ((rc = ri->buffer_download(be, n->src[1].buffer, n->src[1].offset, ids, (uint64_t)T * 4, err, err_size)) < 0)
            return rc;
        for (int64_t t = 0; t < T; t++) {
            if (ids[t] < 512) continue;
            uint64_t off = n->dst.offset + (uint64_t)t * n->dst.nb[1];
            if ((rc = ri->buffer_download(be, n->dst.buffer, off, row, (uint64_t)K * 4, err, err_size)) < 0) return rc;
            for (int64_t k = 0; k < K; k++) row[k] += 0.5f;
            if ((rc = ri->buffer_upload(be, n->dst.buffer, off, row, (uint64_t)K * 4, err, err_size)) < 0) return rc;
        }
    }
    if (start == g->n_nodes) return 0;
    lamina_graph rest = *g;
    rest.n_nodes = g->n_nodes - start;
    rest.nodes = g->nodes + start;
    return ri->graph_compute(be, &rest, err, err_size);
}

/* ---- helpers ------------------------------------------------------------ */

static void params(lamina_engine_params *p)
{
    lamina_engine_params_default(p);
    p->n_ctx = 64; p->n_batch = 8; p->n_outputs = 8;
    p->verify_layer = verify_on;
}

static void print_plan(const lamina_engine *e, char *plan, size_t size)
{
    char copy[4096];
    lamina_engine_describe_plan(e, plan, size);
    snprintf(copy, sizeof copy, "%s", plan);
    for (char *l = strtok(copy, "\n"); l; l = strtok(NULL, "\n")) printf("#   %s\n", l);
}

/* Logits of every position of toks (n <= 8), or NULL. */
static float *logits_on(lamina_model *m, lamina_be **bes, int n_bes, const int32_t *toks, int n,
                        char *plan, size_t plan_size)
{
    lamina_engine_params p;
    params(&p);
    lamina_engine *e = NULL;
    char err[512] = "";
    if (lamina_engine_create(m, bes, n_bes, &p, &e, err, sizeof err) < 0) {
        printf("# engine: %s\n", err);
        return NULL;
    }
    if (plan) print_plan(e, plan, plan_size);
    const int V = m->hp.n_vocab;
    float *out = malloc((size_t)n * V * sizeof(float));
    int32_t pos[8], seq[8];
    int8_t want[8];
    for (int i = 0; i < n; i++) { pos[i] = i; seq[i] = 0; want[i] = 1; }
    lamina_batch b = { n, toks, pos, seq, want };
    if (!out || lamina_engine_decode(e, &b, out, err, sizeof err) != n) {
        printf("# decode: %s\n", err);
        free(out);
        out = NULL;
    }
    lamina_engine_free(e);
    return out;
}

/* Greedy ids of n tokens after a fixed prompt; -1 marks end of generation. */
static int greedy(lamina_model *m, const lamina_tokenizer *tok, lamina_be **bes, int n_bes,
                  lamina_token *out, int n, char *err, size_t err_size)
{
    lamina_engine_params p;
    params(&p);
    p.n_batch = 4; p.n_outputs = 1;
    lamina_engine *e = NULL;
    int rc = lamina_engine_create(m, bes, n_bes, &p, &e, err, err_size);
    if (rc < 0) return rc;
    lamina_token prompt[6] = { 5, 17, 42, 9, 100, 3 };
    lamina_seq s = { .slot = 0 };
    lamina_gen_params gp;
    memset(&gp, 0, sizeof gp);
    gp.temperature = 0.0f; gp.top_p = 1.0f; gp.max_tokens = n;
    gp.repeat_penalty = 3.0f; gp.repeat_last_n = 64;     /* keeps a random model's ids varied */
    lamina_gen_stats st;
    rc = lamina_seq_generate(e, tok, &s, prompt, 6, &gp, NULL, NULL, &st, err, err_size);
    int got = 0;
    for (int i = 6; i < s.n && got < n; i++) out[got++] = s.tokens[i];
    for (; got < n; got++) out[got] = -1;
    lamina_seq_free(&s);
    lamina_engine_free(e);
    return rc;
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, ma = 1e-12;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d;
        if (fabs(a[i]) > ma) ma = fabs(a[i]);
    }
    return md / ma;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: stage_check MODEL CPU.so FAKE_ROWS.so\n"); return 2; }
    const char *nv = getenv("STAGE_CHECK_NO_VERIFY");
    verify_on = !(nv && nv[0] == '1');
    char err[512] = "", plan[4096] = "";
    lamina_model *m = NULL;
    if (lamina_model_load(argv[1], &m, err, sizeof err) < 0) {
        printf("not ok 1 - load %s: %s\n1..1\n", argv[1], err);
        return 1;
    }
    const int V = m->hp.n_vocab, L = m->hp.n_layer;
    ok(V > 512 && L == 6 && m->hp.layer[0].window > 0 && m->hp.layer[L - 1].window == 0,
       "tiny gemma3: vocabulary %d > 512, layers 0-%d sliding-window, layer %d global", V, L - 2, L - 1);
    void *dl_cpu = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    lamina_plugin_entry_fn entry = dl_cpu ? (lamina_plugin_entry_fn)dlsym(dl_cpu, LAMINA_PLUGIN_ENTRY_NAME) : NULL;
    const lamina_plugin_desc *dc = entry ? entry(&test_host) : NULL;
    setenv("FAKE_ROWS_WRAP", argv[2], 1);
    void *dl_fake = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
    entry = dl_fake ? (lamina_plugin_entry_fn)dlsym(dl_fake, LAMINA_PLUGIN_ENTRY_NAME) : NULL;
    const lamina_plugin_desc *df = entry ? entry(&test_host) : NULL;
    ok(dc && df && strcmp(df->name, "fakerows") == 0, "cpu and fakerows plugins load %s", dl_fake ? "" : dlerror());
    if (!dc || !df) { lamina_model_free(m); return done_testing(); }
    lamina_be *cpu = test_be_open(dc->backend, "cpu:0");
    lamina_be *fake = test_be_open(df->backend, "fakerows:0");
    lamina_be *ref = test_be_open(lamina_ref_backend_iface(), "ref:0");
    ok(cpu && fake && ref, "backends open");
    if (!cpu || !fake || !ref) { lamina_model_free(m); return done_testing(); }

    /* 1. the plugin passes the core's self-test (no shape there has more
     *    than 512 rows) */
    lamina_selftest_summary sum;
    memset(&sum, 0, sizeof sum);
    int rc = lamina_selftest_run(fake->iface, fake->inst, NULL, NULL, &sum, err, sizeof err);
    ok(rc == 0 && sum.failed == 0 && sum.errors == 0 && sum.passed > 0,
       "fakerows passes the self-test: %d/%d cases %s", sum.passed, sum.cases, rc ? err : "");

    /* 2. on the model: the head moves to cpu:0, the layers and the
     *    embedding stay, the reason names the stage */
    const int n = 8;
    int32_t toks[8];
    for (int i = 0; i < n; i++) toks[i] = (int32_t)((i * 131 + 5) % V);
    float *lc = logits_on(m, &cpu, 1, toks, n, NULL, 0);
    lamina_be *pair[2] = { fake, cpu };
    lamina_engine_params p;
    params(&p);
    lamina_engine *e = NULL;
    rc = lamina_engine_create(m, pair, 2, &p, &e, err, sizeof err);
    const lamina_plan_part *pp = NULL;
    int np = rc == 0 ? lamina_engine_plan(e, &pp) : 0;
    if (e) print_plan(e, plan, sizeof plan);
    ok(np == 2 && strcmp(lamina_engine_part_label(e, 0), "fakerows:0") == 0 && pp[0].first == 0 &&
       pp[0].last == L - 1 && pp[0].input && !pp[0].output &&
       strcmp(lamina_engine_part_label(e, 1), "cpu:0") == 0 && pp[1].first > pp[1].last && !pp[1].input &&
       pp[1].output, "plan: fakerows:0 keeps layers 0-%d + embedding, cpu:0 takes the output head alone %s",
       L - 1, rc ? err : "");
    char want[128];
    snprintf(want, sizeof want, "fakerows:0: output head (%d rows, q8_0) differs from the reference at row ", V);
    ok(strstr(plan, want) && strstr(plan, "; the head moves to cpu:0") &&
       strstr(plan, "cpu:0 \xe2\x80\x94 output head only"), "the plan names the stage, the row and where it went");
    {
        /* the row named is one the plugin gets wrong */
        const char *at = strstr(plan, want);
        int row = at ? atoi(at + strlen(want)) : -1;
        ok(row >= 512 && row < V, "the row named (%d) is past 512", row);
    }
    lamina_engine_free(e);
    float *lf = logits_on(m, pair, 2, toks, n, NULL, 0);
    double ef = lc && lf ? rel_err(lc, lf, (size_t)n * V) : 1.0;
    ok(lc && lf && ef == 0.0, "logits with the head moved = cpu only, every position (max rel error %.2e)", ef);

    /* 2b. the same without the check: the plugin is selected for all and
     *     its logits are wrong (what the check prevents) */
    verify_on = 0;
    float *lw = logits_on(m, pair, 2, toks, n, plan, sizeof plan);
    verify_on = !(nv && nv[0] == '1');
    double ew = lc && lw ? rel_err(lc, lw, (size_t)n * V) : 0.0;
    ok(lw && ew > 0.1, "with verify_layer = 0 fakerows keeps the head and the logits are wrong (%.2e)", ew);

    /* 2c. generation: the same tokens as on the cpu plugin alone */
    lamina_tokenizer *tok = NULL;
    rc = lamina_tokenizer_load(m->gguf, &tok, err, sizeof err);
    ok(rc == 0, "tokenizer %s", err);
    if (tok) {
        lamina_token ids_cpu[12], ids_pair[12];
        int r1 = greedy(m, tok, &cpu, 1, ids_cpu, 12, err, sizeof err);
        int r2 = greedy(m, tok, pair, 2, ids_pair, 12, err, sizeof err);
        printf("# cpu:     ");
        for (int i = 0; i < 12; i++) printf(" %d", ids_cpu[i]);
        printf("\n# fakerows+cpu:");
        for (int i = 0; i < 12; i++) printf(" %d", ids_pair[i]);
        printf("\n");
        ok(r1 == 0 && r2 == 0 && ids_cpu[0] >= 0 && ids_eq(ids_pair, 12, ids_cpu, 12, "greedy ids"),
           "greedy tokens with the head moved = cpu only %s", r1 || r2 ? err : "");
    }
    lamina_tokenizer_free(tok);

    /* 3. wrong only on global layers: layer 0's check passes, layer 5's
     *    (the first of the other kind) does not */
    {
        global_liar = *lamina_ref_backend_iface();
        global_liar.graph_compute = global_compute;
        lamina_be *liar = test_be_open(&global_liar, "gpu-global-liar:0");
        lamina_be *two[2] = { liar, cpu };
        params(&p);
        e = NULL;
        rc = lamina_engine_create(m, two, 2, &p, &e, err, sizeof err);
        plan[0] = 0;
        if (e) print_plan(e, plan, sizeof plan);
        snprintf(want, sizeof want, "gpu-global-liar:0: demoted for this model: layer %d (global attention", L - 1);
        ok(rc == 0 && lamina_engine_plan(e, NULL) == 1 && strncmp(plan, "cpu:0", 5) == 0 && strstr(plan, want),
           "wrong only on global layers: demoted, layer %d named %s", L - 1, rc ? err : "");
        lamina_engine_free(e);
        test_be_free(liar);
    }

    /* 4. wrong only on embedding rows past 512: the embedding alone moves */
    {
        embd_liar = *lamina_ref_backend_iface();
        embd_liar.graph_compute = embd_compute;
        lamina_be *liar = test_be_open(&embd_liar, "gpu-embd-liar:0");
        lamina_be *two[2] = { liar, cpu };
        float *lr = logits_on(m, &ref, 1, toks, n, NULL, 0);
        params(&p);
        e = NULL;
        rc = lamina_engine_create(m, two, 2, &p, &e, err, sizeof err);
        np = rc == 0 ? lamina_engine_plan(e, &pp) : 0;
        plan[0] = 0;
        if (e) print_plan(e, plan, sizeof plan);
        snprintf(want, sizeof want, "gpu-embd-liar:0: embedding (%d rows, q8_0) differs from the reference at token %d", V, V - 1);
        ok(np == 2 && strcmp(lamina_engine_part_label(e, 0), "cpu:0") == 0 && pp[0].input && pp[0].first > pp[0].last &&
           strcmp(lamina_engine_part_label(e, 1), "gpu-embd-liar:0") == 0 && !pp[1].input && pp[1].first == 0 &&
           pp[1].last == L - 1 && pp[1].output && strstr(plan, want) && strstr(plan, "the embedding moves to cpu:0"),
           "wrong on embedding rows past 512: the embedding alone moves to cpu:0 %s", rc ? err : "");
        lamina_engine_free(e);
        float *ll = logits_on(m, two, 2, toks, n, NULL, 0);
        double el = lr && ll ? rel_err(lr, ll, (size_t)n * V) : 1.0;
        ok(lr && ll && el < 1e-6, "logits = the reference's (%.2e)", el);
        free(lr); free(ll);
        test_be_free(liar);
    }

    free(lc); free(lf); free(lw);
    test_be_free(cpu); test_be_free(fake); test_be_free(ref);
    lamina_model_free(m);
    dlclose(dl_fake);
    dlclose(dl_cpu);
    return done_testing();
}
