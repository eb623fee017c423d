/*
 * batcher_check.c - the continuous-batching scheduler (runtime/engine/batcher.c)
 * on a tiny generated model:
 *   - requests decoded together, with prompts read in small chunks, give
 *     exactly the text and tokens of each generated alone
 *     (lamina_seq_generate) on the reference backend, greedy and seeded;
 *   - more requests than slots wait and then run; a finished slot's cache
 *     is reused by a request with the same prefix;
 *   - the queue bound, cancellation (queued and running), deadlines, stop
 *     strings, token limits, per-request context limits, a text callback
 *     that cancels, bad prompts, and freeing with requests in flight;
 *   - the same batch on the cpu plugin completes, matching alone-decoded
 *     text.
 * usage: batcher_check MODEL.gguf CPU_PLUGIN.so   (prints TAP)
 */
#include "config.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "engine.h"
#include "generate.h"
#include "model.h"
#include "ref.h"
#include "tokenizer.h"
#include "tap.h"
#include "testenv.h"


/* A device lost after a number of graphs: the reference, except that
 * graph_compute answers LAMINA_EDEVLOST once `lossy_left` reaches 0. */
static lamina_backend_iface lossy_iface;
static int lossy_left = -1;
static int lossy_compute(lamina_backend *be, const lamina_graph *g, char *err, size_t err_size)
{
    if (lossy_left == 0) {
        snprintf(err, err_size, "device lost (simulated)");
        return LAMINA_EDEVLOST;
    }
    if (lossy_left > 0) lossy_left--;
    return lamina_ref_backend_iface()->graph_compute(be, g, err, err_size);
}

/* ---- what a request produced ---- */

typedef struct outcome {
    char text[4096];
    size_t len;
    int done;                 /* times done was called */
    int cancel_after;         /* text callback: cancel after this many calls (0: never) */
    int n_text;
    int n_tokcb;
    lamina_batcher_result res;
    lamina_token toks[512];
    int32_t n_toks;
} outcome;

static int on_text(void *ctx, const char *t, size_t n)
{
    outcome *o = ctx;
    if (o->len + n < sizeof o->text) {
        memcpy(o->text + o->len, t, n);
        o->len += n;
        o->text[o->len] = 0;
    }
    o->n_text++;
    return o->cancel_after > 0 && o->n_text >= o->cancel_after;
}

static void on_token(void *ctx, lamina_token t, double dt)
{
    outcome *o = ctx;
    (void)t;
    if (dt >= 0) o->n_tokcb++;
}

static void on_done(void *ctx, const lamina_batcher_result *r)
{
    outcome *o = ctx;
    o->done++;
    o->res = *r;
    o->res.tokens = NULL;
    o->n_toks = r->n_tokens < 512 ? r->n_tokens : 512;
    memcpy(o->toks, r->tokens, (size_t)o->n_toks * sizeof *o->toks);
}

static int emit_ref(void *ctx, const char *t, size_t n)
{
    outcome *o = ctx;
    if (o->len + n < sizeof o->text) {
        memcpy(o->text + o->len, t, n);
        o->len += n;
        o->text[o->len] = 0;
    }
    return 0;
}

#define N_PROMPTS 4
static const char *prompts[N_PROMPTS] = {
    "The quick brown fox",
    "Once upon a time there was a little cat that lived in a house near the river.",
    "What is the capital of France?",
    "Machine learning models predict the next token",
};

static void sampling(lamina_sampler_params *sp, int i)
{
    lamina_sampler_params_default(sp);
    if (i == 2) { sp->temperature = 0.9f; sp->seed = 42; sp->top_k = 20; }   /* seeded draw */
    else sp->temperature = 0.0f;                                             /* greedy */
    sp->repeat_penalty = 1.1f;
}

static void request(lamina_batcher_request *rq, const lamina_token *ids, size_t n, int i, outcome *o)
{
    memset(rq, 0, sizeof *rq);
    rq->prompt = ids;
    rq->n_prompt = n;
    sampling(&rq->sampling, i);
    rq->max_tokens = 24;
    rq->text = on_text;
    rq->token = on_token;
    rq->done = on_done;
    rq->ctx = o;
}

/* Step until every outcome in o[0..n) is done (bounded). */
static int drive(lamina_batcher *b, outcome *o, int n, int *max_batch)
{
    char err[512];
    for (int steps = 0; steps < 20000; steps++) {
        int all = 1;
        for (int i = 0; i < n; i++) all &= o[i].done > 0;
        if (all) return 1;
        int rc = lamina_batcher_step(b, err, sizeof err);
        if (rc < 0) { printf("# step: %s\n", err); return 0; }
        if (max_batch && rc > *max_batch) *max_batch = rc;
    }
    return 0;
}

static int run_suite(const char *label, lamina_model *m, lamina_tokenizer *tok, lamina_be *be, int full)
{
    char err[512] = "";
    lamina_engine_params p;
    lamina_engine_params_default(&p);
    p.n_ctx = 128; p.n_seq = 4; p.n_batch = 32; p.n_outputs = 4; p.kv_f32 = 1; p.verify_layer = 0;
    lamina_engine *e;
    if (lamina_engine_create(m, &be, 1, &p, &e, err, sizeof err) < 0) {
        ok(0, "%s: engine: %s", label, err);
        return 1;
    }
    lamina_token *ids[N_PROMPTS];
    size_t n_ids[N_PROMPTS];
    for (int i = 0; i < N_PROMPTS; i++) {
        if (lamina_tokenizer_encode(tok, prompts[i], strlen(prompts[i]), LAMINA_TOKENIZE_ADD_SPECIAL,
                                    &ids[i], &n_ids[i], err, sizeof err) < 0) {
            ok(0, "encode: %s", err);
            return 1;
        }
    }

    /* 1. each prompt alone through the single-sequence loop */
    outcome ref[N_PROMPTS];
    memset(ref, 0, sizeof ref);
    int ref_ok = 1;
    for (int i = 0; i < N_PROMPTS; i++) {
        lamina_seq seq = { .slot = 0 };
        lamina_gen_params gp;
        memset(&gp, 0, sizeof gp);
        lamina_sampler_params sp;
        sampling(&sp, i);
        gp.temperature = sp.temperature; gp.top_k = sp.top_k; gp.top_p = sp.top_p; gp.min_p = sp.min_p;
        gp.repeat_penalty = sp.repeat_penalty; gp.repeat_last_n = sp.repeat_last_n; gp.seed = sp.seed;
        gp.max_tokens = 24;
        lamina_gen_stats st;
        if (lamina_seq_generate(e, tok, &seq, ids[i], n_ids[i], &gp, emit_ref, &ref[i], &st, err, sizeof err) < 0) {
            printf("# generate: %s\n", err);
            ref_ok = 0;
        }
        ref[i].n_toks = seq.n < 512 ? seq.n : 512;
        memcpy(ref[i].toks, seq.tokens, (size_t)ref[i].n_toks * sizeof(lamina_token));
        ref[i].res.n_gen = st.n_gen;
        ref[i].res.stop_reason = st.stop_reason;
        lamina_seq_free(&seq);
    }
    ok(ref_ok, "%s: %d prompts generated alone", label, N_PROMPTS);
    for (int i = 0; i < N_PROMPTS; i++) printf("#   alone %d: '%s'\n", i, ref[i].text);

    /* 2. six requests at once over four slots, prompts read 5 tokens a step */
    lamina_batcher *b;
    lamina_batcher_params bp = { .n_chunk = 5, .max_queue = 8, .n_threads = 3 };   /* parallel sampling */
    int rc = lamina_batcher_create(e, tok, &bp, &b, err, sizeof err);
    ok(rc == 0, "%s: batcher created", label);
    if (rc < 0) { printf("# %s\n", err); return 1; }
    outcome o[6];
    memset(o, 0, sizeof o);
    int sub = 1;
    for (int i = 0; i < 6; i++) {
        lamina_batcher_request rq;
        request(&rq, ids[i % N_PROMPTS], n_ids[i % N_PROMPTS], i % N_PROMPTS, &o[i]);
        sub &= lamina_batcher_submit(b, &rq, NULL, err, sizeof err) == 0;
    }
    ok(sub, "%s: six requests accepted", label);
    lamina_batcher_stats st;
    lamina_batcher_stats_get(b, &st);
    ok(st.n_queued == 6 && st.n_active == 0, "%s: all six queued before the first step (%d queued)", label, st.n_queued);
    char e2[256];
    lamina_batcher_step(b, e2, sizeof e2);
    lamina_batcher_stats_get(b, &st);
    ok(st.n_active == 4 && st.n_queued == 2, "%s: four run, two wait (%d active, %d queued)", label,
       st.n_active, st.n_queued);
    int max_batch = 0;
    int all_done = drive(b, o, 6, &max_batch);
    ok(all_done, "%s: all six finished", label);
    int same_text = 0, same_toks = 0, once = 0;
    for (int i = 0; i < 6; i++) {
        const outcome *r = &ref[i % N_PROMPTS];
        same_text += o[i].len == r->len && memcmp(o[i].text, r->text, r->len) == 0;
        same_toks += o[i].n_toks == r->n_toks && memcmp(o[i].toks, r->toks, (size_t)r->n_toks * sizeof(lamina_token)) == 0;
        once += o[i].done == 1;
        if (o[i].len != r->len || memcmp(o[i].text, r->text, r->len) != 0)
            printf("# request %d: batched '%s'\n#   alone '%s'\n", i, o[i].text, r->text);
    }
    ok(once == 6, "%s: done called exactly once for each", label);
    if (full) {
        ok(same_text == 6, "%s: batched text = alone text for %d/6", label, same_text);
        ok(same_toks == 6, "%s: batched tokens = alone tokens for %d/6", label, same_toks);
    } else {
        /* the cpu plugin's kernels may sum a batch in another order than a
         * single row; greedy text may then part on a near tie */
        ok(same_text >= 5, "%s: batched text = alone text for %d/6", label, same_text);
    }
    ok(max_batch > 5, "%s: steps decoded several sequences together (largest batch %d tokens)", label, max_batch);
    int reuse = o[4].res.n_cached > 0 && o[5].res.n_cached > 0;
    ok(reuse, "%s: repeated prompts reused a slot's cache (%d, %d tokens cached)", label,
       o[4].res.n_cached, o[5].res.n_cached);
    int counts = 1;
    for (int i = 0; i < 6; i++) {
        const outcome *r = &ref[i % N_PROMPTS];
        int want = r->res.n_gen - (r->res.stop_reason == LAMINA_STOP_EOG);
        counts &= o[i].res.n_gen == want && o[i].res.n_prompt == (int32_t)n_ids[i % N_PROMPTS] &&
                  o[i].n_tokcb >= o[i].res.n_gen && o[i].res.status == 0;
    }
    ok(counts, "%s: token counts and status of every result", label);
    if (!full) {
        lamina_batcher_free(b);
        goto out;
    }

    /* 3. stop string, token limit, context limit, cancelling text callback */
    {
        memset(o, 0, sizeof o);
        lamina_batcher_request rq;
        char stopstr[8] = "";
        const outcome *r = &ref[2];                 /* the seeded draw: varied text */
        /* three bytes from the middle whose first occurrence is there, so
         * that text comes before the stop */
        for (size_t at = r->len / 2; at > 0 && r->len >= 8; at--) {
            memcpy(stopstr, r->text + at, 3);
            stopstr[3] = 0;
            if (strlen(stopstr) == 3 && strstr(r->text, stopstr) == r->text + at) break;
            stopstr[0] = 0;
        }
        request(&rq, ids[2], n_ids[2], 2, &o[0]);
        rq.stop[0] = stopstr;
        rq.n_stop = 1;
        int s1 = lamina_batcher_submit(b, &rq, NULL, err, sizeof err);
        request(&rq, ids[1], n_ids[1], 1, &o[1]);
        rq.max_tokens = 3;
        int s2 = lamina_batcher_submit(b, &rq, NULL, err, sizeof err);
        request(&rq, ids[3], n_ids[3], 3, &o[2]);
        rq.n_ctx = (int32_t)n_ids[3] + 2;
        int s3 = lamina_batcher_submit(b, &rq, NULL, err, sizeof err);
        request(&rq, ids[1], n_ids[1], 1, &o[3]);
        o[3].cancel_after = 2;
        int s4 = lamina_batcher_submit(b, &rq, NULL, err, sizeof err);
        ok(s1 == 0 && s2 == 0 && s3 == 0 && s4 == 0, "limits: four requests accepted");
        ok(drive(b, o, 4, NULL), "limits: all finished");
        const char *hit = stopstr[0] ? strstr(r->text, stopstr) : NULL;
        size_t pre = hit ? (size_t)(hit - r->text) : 0;
        ok(hit && o[0].res.stop_reason == LAMINA_STOP_STRING && o[0].len == pre &&
           memcmp(o[0].text, r->text, pre) == 0,
           "stop string '%s': text ends before it (%zu bytes, reason %d)", stopstr, o[0].len, o[0].res.stop_reason);
        ok(o[1].res.stop_reason == LAMINA_STOP_LENGTH && o[1].res.n_gen == 3,
           "max_tokens 3: three tokens, reason length (%d, %d)", o[1].res.n_gen, o[1].res.stop_reason);
        ok(o[2].res.stop_reason == LAMINA_STOP_CONTEXT && o[2].res.n_gen == 3,
           "n_ctx = prompt + 2: stops for context after 3 tokens (%d, reason %d)", o[2].res.n_gen,
           o[2].res.stop_reason);
        ok(o[3].res.stop_reason == LAMINA_STOP_CANCEL && o[3].n_text == 2 && o[3].res.status == LAMINA_ECANCELED,
           "text callback returning 1 cancels (%d calls, reason %d)", o[3].n_text, o[3].res.stop_reason);
    }
    lamina_batcher_free(b);

    /* 4. queue bound, cancel queued and running, deadline */
    {
        bp.n_chunk = 0;
        bp.max_queue = 1;
        bp.n_threads = 1;                           /* sampling on the driver alone */
        rc = lamina_batcher_create(e, tok, &bp, &b, err, sizeof err);
        ok(rc == 0, "second batcher on the same engine");
        memset(o, 0, sizeof o);
        uint64_t id[6] = {0};
        int acc = 0, full_rc = 0;
        for (int i = 0; i < 6; i++) {
            lamina_batcher_request rq;
            request(&rq, ids[i % N_PROMPTS], n_ids[i % N_PROMPTS], 0, &o[i]);
            rq.max_tokens = 100;
            int s = lamina_batcher_submit(b, &rq, &id[i], err, sizeof err);
            if (s == 0) acc++;
            else full_rc = s;
        }
        ok(acc == 5 && full_rc == LAMINA_EREJECTED && strstr(err, "queue full"),
           "4 slots + queue of 1: five accepted, the sixth refused (%d, '%s')", acc, err);
        lamina_batcher_step(b, e2, sizeof e2);
        lamina_batcher_cancel(b, id[4]);        /* the queued one */
        lamina_batcher_cancel(b, id[0]);        /* a running one */
        lamina_batcher_step(b, e2, sizeof e2);
        ok(o[4].done == 1 && o[4].res.stop_reason == LAMINA_STOP_CANCEL && o[4].res.n_gen == 0,
           "a queued request cancelled finishes at the next step");
        ok(o[0].done == 1 && o[0].res.stop_reason == LAMINA_STOP_CANCEL,
           "a running request cancelled finishes at the next step");
        lamina_batcher_stats_get(b, &st);
        ok(st.n_active == 3 && st.n_queued == 0, "its slot is free (%d active, %d queued)", st.n_active, st.n_queued);

        outcome late;
        memset(&late, 0, sizeof late);
        lamina_batcher_request rq;
        request(&rq, ids[0], n_ids[0], 0, &late);
        rq.deadline = lamina_batcher_now() - 1.0;
        ok(lamina_batcher_submit(b, &rq, NULL, err, sizeof err) == 0, "request with a past deadline accepted");
        lamina_batcher_step(b, e2, sizeof e2);
        ok(late.done == 1 && late.res.stop_reason == LAMINA_STOP_TIMEOUT && late.res.status == LAMINA_ETIMEOUT,
           "past deadline: finished with timeout (reason %d, '%s')", late.res.stop_reason, late.res.msg);

        /* bad prompts */
        lamina_token bad = 1 << 30;
        request(&rq, &bad, 1, 0, &late);
        ok(lamina_batcher_submit(b, &rq, NULL, err, sizeof err) == LAMINA_EINVAL,
           "a token outside the vocabulary is refused: %s", err);
        lamina_token *longp = calloc(200, sizeof *longp);
        request(&rq, longp, 200, 0, &late);
        ok(lamina_batcher_submit(b, &rq, NULL, err, sizeof err) == LAMINA_ERANGE,
           "a prompt longer than the context is refused: %s", err);
        free(longp);
        request(&rq, ids[0], 0, 0, &late);
        ok(lamina_batcher_submit(b, &rq, NULL, err, sizeof err) == LAMINA_EINVAL, "an empty prompt is refused");
        request(&rq, ids[0], n_ids[0], 0, &late);
        rq.sampling.repeat_penalty = -1.0f;
        ok(lamina_batcher_submit(b, &rq, NULL, err, sizeof err) == LAMINA_EINVAL,
           "bad sampling parameters are refused: %s", err);

        /* free with three running: each gets done(cancel) */
        lamina_batcher_free(b);
        int cancelled = 0;
        for (int i = 1; i < 4; i++) cancelled += o[i].done == 1 && o[i].res.stop_reason == LAMINA_STOP_CANCEL;
        ok(cancelled == 3, "freeing the batcher cancels the running requests (%d/3)", cancelled);
    }

    /* 5. a long prompt is read in chunks while another sequence keeps
     *    getting a token every step */
    {
        lamina_batcher_params cp = { .n_chunk = 4, .max_queue = 2 };
        rc = lamina_batcher_create(e, tok, &cp, &b, err, sizeof err);
        memset(o, 0, sizeof o);
        lamina_batcher_request rq;
        request(&rq, ids[0], n_ids[0], 0, &o[0]);
        rq.max_tokens = 60;
        lamina_batcher_submit(b, &rq, NULL, err, sizeof err);
        for (int i = 0; i < 3; i++) lamina_batcher_step(b, e2, sizeof e2);
        lamina_token longp[72];
        for (int i = 0; i < 72; i++) longp[i] = ids[1][i % (int)n_ids[1]];
        request(&rq, longp, 72, 1, &o[1]);
        lamina_batcher_submit(b, &rq, NULL, err, sizeof err);
        int steps = 0, every = 1;
        while (o[1].n_tokcb == 0 && steps < 100 && !o[0].done) {
            int before = o[0].n_tokcb;
            lamina_batcher_step(b, e2, sizeof e2);
            steps++;
            every &= o[0].n_tokcb == before + 1 || o[0].done;
        }
        ok(o[1].n_tokcb > 0 && steps >= 72 / 4 && every,
           "a 72-token prompt read 4 tokens a step (%d steps) while the other sequence got a token every step",
           steps);
        lamina_batcher_free(b);
    }

    /* 6. a device lost mid-generation: the engine moves to the reference,
     *    every request reads its tokens again and ends with the same text */
    {
        lossy_iface = *lamina_ref_backend_iface();
        lossy_iface.graph_compute = lossy_compute;
        lamina_be *lossy = test_be_open(&lossy_iface, "gpu-lossy:0");
        lamina_be *pair[2] = { lossy, be };
        lamina_engine_params lp = p;
        lp.gpu_layers = -2;
        lamina_engine *el = NULL;
        rc = lossy ? lamina_engine_create(m, pair, 2, &lp, &el, err, sizeof err) : -1;
        ok(rc == 0, "engine with a device that will be lost %s", rc ? err : "");
        if (rc == 0) {
            rc = lamina_batcher_create(el, tok, &bp, &b, err, sizeof err);
            memset(o, 0, sizeof o);
            for (int i = 0; i < N_PROMPTS; i++) {
                lamina_batcher_request rq;
                request(&rq, ids[i], n_ids[i], i, &o[i]);
                lamina_batcher_submit(b, &rq, NULL, err, sizeof err);
            }
            lossy_left = 12;                       /* a few steps into generation */
            int done = drive(b, o, N_PROMPTS, NULL);
            lossy_left = -1;
            lamina_batcher_stats_get(b, &st);
            int same = 0;
            for (int i = 0; i < N_PROMPTS; i++)
                same += o[i].res.status == 0 && o[i].len == ref[i].len && memcmp(o[i].text, ref[i].text, ref[i].len) == 0;
            ok(done && st.n_failovers == 1, "the loss was met once and every request finished (%llu failovers)",
               (unsigned long long)st.n_failovers);
            ok(same == N_PROMPTS, "after the failover every text = the text generated alone (%d/%d)", same, N_PROMPTS);
            char plan[1024];
            lamina_engine_describe_plan(el, plan, sizeof plan);
            ok(strstr(plan, "lost") != NULL, "the plan says the device was lost");
            lamina_batcher_free(b);
        }
        lamina_engine_free(el);
        test_be_free(lossy);
    }
out:
    for (int i = 0; i < N_PROMPTS; i++) free(ids[i]);
    lamina_engine_free(e);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: batcher_check MODEL CPU.so\n"); return 2; }
    char err[512] = "";
    lamina_model *m;
    if (lamina_model_load(argv[1], &m, err, sizeof err) < 0) {
        printf("not ok 1 - load %s: %s\n1..1\n", argv[1], err);
        return 1;
    }
    lamina_tokenizer *tok;
    if (lamina_tokenizer_load(m->gguf, &tok, err, sizeof err) < 0) {
        printf("not ok 1 - tokenizer: %s\n1..1\n", err);
        return 1;
    }
    ok(1, "load %s (%s)", argv[1], m->hp.arch_name);
    lamina_be *ref = test_be_open(lamina_ref_backend_iface(), "ref:0");
    ok(ref != NULL, "reference backend");
    if (ref) run_suite("ref", m, tok, ref, 1);
    test_be_free(ref);

    void *dl = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    lamina_plugin_entry_fn entry = dl ? (lamina_plugin_entry_fn)dlsym(dl, LAMINA_PLUGIN_ENTRY_NAME) : NULL;
    const lamina_plugin_desc *d = entry ? entry(&test_host) : NULL;
    ok(d && d->backend, "cpu plugin entry");
    if (d && d->backend) {
        lamina_be *cpu = test_be_open(d->backend, "cpu:0");
        if (cpu) run_suite("cpu", m, tok, cpu, 0);
        test_be_free(cpu);
    }
    lamina_tokenizer_free(tok);
    lamina_model_free(m);
    if (dl) dlclose(dl);
    return done_testing();
}
