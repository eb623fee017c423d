/* spec_check.c - generation with speculative decoding (lookup.h) equals
 * generation without it: the same token ids, text and stop reason, for
 * greedy, sampled (same seed), repetition-penalised and grammar-
 * constrained generation, over several n_batch values (which bound the
 * drafts per step); and in the cases that copy, drafts were kept.
 *
 *   spec_check MODEL CPU.so [-n TOKENS] [--text TEXT] [--expect-accept]
 *              [--batches N,N,...] [--cases greedy,sampled,penalty,schema]
 *              [--batcher]
 *
 * Without --text the prompt is a copy-heavy id sequence (a random span
 * repeated).  --expect-accept: the greedy runs must keep drafts.
 * --batches (default 1,2,4,9,64) and --cases (default all) choose a
 * subset, for the slower default model.  --batcher: also three requests
 * at once through the batcher (server), with and without drafts. */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "engine.h"
#include "generate.h"
#include "grammar.h"
#include "lookup.h"
#include "model.h"
#include "tap.h"
#include "testenv.h"

typedef struct textbuf { char s[65536]; size_t n; } textbuf;

static int collect(void *ctx, const char *text, size_t len)
{
    textbuf *b = ctx;
    if (b->n + len < sizeof b->s) { memcpy(b->s + b->n, text, len); b->n += len; }
    return 0;
}

typedef struct result {
    lamina_token ids[4096];
    int32_t n;
    textbuf text;
    lamina_gen_stats st;
    int rc;
} result;

static lamina_model *m;
static lamina_tokenizer *tok;
static lamina_be *cpu;

/* Generate from `prompt` on a fresh engine of n_batch (n_outputs as many). */
static void gen(const lamina_token *prompt, size_t n_prompt, int32_t n_batch, const lamina_gen_params *gp,
                result *r)
{
    char err[512] = "";
    lamina_engine_params p;
    lamina_engine_params_default(&p);
    p.n_ctx = (int32_t)n_prompt + gp->max_tokens + 8;
    p.n_batch = n_batch;
    p.n_outputs = n_batch;
    lamina_engine *e = NULL;
    memset(r, 0, sizeof *r);
    r->rc = lamina_engine_create(m, &cpu, 1, &p, &e, err, sizeof err);
    if (r->rc < 0) { diag("engine: %s", err); return; }
    lamina_seq s = { .slot = 0 };
    r->rc = lamina_seq_generate(e, tok, &s, prompt, n_prompt, gp, collect, &r->text, &r->st, err, sizeof err);
    if (r->rc < 0) diag("generate: %s", err);
    for (int32_t i = (int32_t)n_prompt; i < s.n && r->n < 4096; i++) r->ids[r->n++] = s.tokens[i];
    lamina_seq_free(&s);
    lamina_engine_free(e);
}

/* ---- the batcher: three requests at once, each slot with its drafts ---- */

typedef struct bout {
    textbuf text;
    lamina_token ids[4096];
    int32_t n;
    int stop, status, done;
} bout;

static int b_text(void *ctx, const char *t, size_t n) { return collect(&((bout *)ctx)->text, t, n); }

static void b_done(void *ctx, const lamina_batcher_result *r)
{
    bout *o = ctx;
    o->done = 1;
    o->stop = r->stop_reason;
    o->status = r->status;
    o->n = r->n_tokens < 4096 ? r->n_tokens : 4096;
    memcpy(o->ids, r->tokens, (size_t)o->n * sizeof *o->ids);
}

/* The three requests (prompt rotated by i, case settings) through a batcher
 * with spec_draft drafts per slot; the draft counts from its statistics. */
static int batcher_run(const lamina_token *prompt, size_t n_prompt, int n_tok, int32_t spec_draft,
                       const lamina_grammar *g, float temp, bout *o, uint64_t *drafted, uint64_t *kept)
{
    char err[512] = "";
    lamina_engine_params p;
    lamina_engine_params_default(&p);
    p.n_seq = 3;
    p.n_ctx = (int32_t)n_prompt + n_tok + 8;
    p.n_batch = 64;
    p.n_outputs = spec_draft > 0 ? 3 * (1 + spec_draft) : 3;
    lamina_engine *e = NULL;
    lamina_batcher *b = NULL;
    if (lamina_engine_create(m, &cpu, 1, &p, &e, err, sizeof err) < 0) { diag("engine: %s", err); return -1; }
    lamina_batcher_params bp = { .n_chunk = 16, .n_threads = 2, .spec_draft = spec_draft, .spec_ngram = 3 };
    if (lamina_batcher_create(e, tok, &bp, &b, err, sizeof err) < 0) {
        diag("batcher: %s", err);
        lamina_engine_free(e);
        return -1;
    }
    lamina_token rot[3][512];
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        for (size_t j = 0; j < n_prompt && j < 512; j++) rot[i][j] = prompt[(j + (size_t)i * 3) % n_prompt];
        memset(&o[i], 0, sizeof o[i]);
        lamina_batcher_request rq;
        memset(&rq, 0, sizeof rq);
        rq.prompt = rot[i];
        rq.n_prompt = n_prompt < 512 ? n_prompt : 512;
        lamina_sampler_params_default(&rq.sampling);
        rq.sampling.temperature = temp;
        rq.sampling.seed = 11 + (uint64_t)i;
        rq.sampling.repeat_penalty = i == 1 ? 1.2f : 1.0f;
        rq.max_tokens = n_tok;
        rq.grammar = (lamina_grammar *)g;
        rq.logprobs = -1;
        rq.text = b_text;
        rq.done = b_done;
        rq.ctx = &o[i];
        rc = lamina_batcher_submit(b, &rq, NULL, err, sizeof err);
    }
    for (int steps = 0; rc == 0 && steps < 20000 && !(o[0].done && o[1].done && o[2].done); steps++)
        if (lamina_batcher_step(b, err, sizeof err) < 0) { diag("step: %s", err); rc = -1; }
    lamina_batcher_stats st;
    lamina_batcher_stats_get(b, &st);
    *drafted = st.n_drafted;
    *kept = st.n_accepted;
    lamina_batcher_free(b);
    lamina_engine_free(e);
    return rc;
}

static int same(const result *a, const result *b)
{
    return a->rc == 0 && b->rc == 0 && a->n == b->n && !memcmp(a->ids, b->ids, (size_t)a->n * sizeof a->ids[0]) &&
           a->text.n == b->text.n && !memcmp(a->text.s, b->text.s, a->text.n) &&
           a->st.stop_reason == b->st.stop_reason && a->st.n_gen == b->st.n_gen;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: spec_check MODEL CPU.so [-n N] [--text T] [--expect-accept]\n"); return 2; }
    const char *text = NULL, *case_list = "greedy,sampled,penalty,schema";
    int n_tok = 48, expect_accept = 0, batcher = 0;
    int32_t batches[8] = { 1, 2, 4, 9, 64 };
    size_t n_batches = 5;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) n_tok = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--text") && i + 1 < argc) text = argv[++i];
        else if (!strcmp(argv[i], "--expect-accept")) expect_accept = 1;
        else if (!strcmp(argv[i], "--batcher")) batcher = 1;
        else if (!strcmp(argv[i], "--cases") && i + 1 < argc) case_list = argv[++i];
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc) {
            n_batches = 0;
            for (char *s = argv[++i], *e; *s && n_batches < 8; s = *e ? e + 1 : e) {
                long x = strtol(s, &e, 10);
                if (e == s || x < 1 || x > 512 || (*e && *e != ',')) { fprintf(stderr, "spec_check: bad --batches\n"); return 2; }
                batches[n_batches++] = (int32_t)x;
            }
        }
        else { fprintf(stderr, "spec_check: unknown argument %s\n", argv[i]); return 2; }
    }
    char err[512] = "";
    if (lamina_model_load(argv[1], &m, err, sizeof err) < 0) { printf("not ok 1 - load: %s\n1..1\n", err); return 1; }
    if (lamina_tokenizer_load(m->gguf, &tok, err, sizeof err) < 0) { printf("not ok 1 - tokenizer: %s\n1..1\n", err); return 1; }
    void *dl = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    lamina_plugin_entry_fn entry = dl ? (lamina_plugin_entry_fn)dlsym(dl, LAMINA_PLUGIN_ENTRY_NAME) : NULL;
    const lamina_plugin_desc *d = entry ? entry(&test_host) : NULL;
    cpu = d ? test_be_open(d->backend, "cpu:0") : NULL;
    if (!ok(cpu != NULL, "cpu plugin open")) return done_testing();

    lamina_token *prompt = NULL;
    size_t n_prompt = 0;
    if (text) {
        if (lamina_tokenizer_encode(tok, text, strlen(text), LAMINA_TOKENIZE_ADD_SPECIAL, &prompt, &n_prompt,
                                    err, sizeof err) < 0) {
            ok(0, "tokenize: %s", err);
            return done_testing();
        }
    } else {
        /* a span of 20 ids three times, then its first 4 again */
        const int32_t V = m->hp.n_vocab;
        lamina_token span[20];
        uint64_t r = 99;
        for (int i = 0; i < 20; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            span[i] = (lamina_token)(4 + (r >> 33) % (uint64_t)(V - 4));
        }
        prompt = malloc(64 * sizeof *prompt);
        for (int k = 0; k < 3; k++) for (int i = 0; i < 20; i++) prompt[n_prompt++] = span[i];
        for (int i = 0; i < 4; i++) prompt[n_prompt++] = span[i];
    }
    diag("prompt of %zu tokens, %d to generate", n_prompt, n_tok);

    /* a schema whose values repeat, so drafts come under the grammar too */
    static const char schema[] = "{\"type\": \"array\", \"minItems\": 6, \"maxItems\": 12, "
                                 "\"items\": {\"enum\": [\"copy that\", \"copy this\", 12345]}}";
    lamina_grammar *g = NULL;
    if (lamina_grammar_compile_text(schema, strlen(schema), &g, err, sizeof err) < 0) {
        ok(0, "grammar: %s", err);
        return done_testing();
    }

    static const struct { const char *key, *name; float temp, rep; int grammar; } cases[] = {
        { "greedy", "greedy", 0.0f, 1.0f, 0 },
        { "sampled", "sampled (temperature 0.9, seed 7)", 0.9f, 1.0f, 0 },
        { "penalty", "greedy, repeat penalty 1.3", 0.0f, 1.3f, 0 },
        { "schema", "greedy, JSON schema", 0.0f, 1.0f, 1 },
    };
    static result plain, spec;
    int64_t kept_greedy = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (!strstr(case_list, cases[c].key)) continue;
        for (size_t b = 0; b < n_batches; b++) {
            lamina_gen_params gp;
            memset(&gp, 0, sizeof gp);
            gp.temperature = cases[c].temp;
            gp.top_k = 40;
            gp.top_p = 0.95f;
            gp.repeat_penalty = cases[c].rep;
            gp.repeat_last_n = 64;
            gp.seed = 7;
            gp.max_tokens = n_tok;
            gp.grammar = cases[c].grammar ? g : NULL;
            gen(prompt, n_prompt, batches[b], &gp, &plain);
            gp.spec_draft = 8;
            gp.spec_ngram = 3;
            gen(prompt, n_prompt, batches[b], &gp, &spec);
            int eq = same(&plain, &spec);
            ok(eq, "%s, n_batch %d: the same %d tokens with speculation (drafted %d, kept %d, %d steps)",
               cases[c].name, batches[b], spec.n, spec.st.n_drafted, spec.st.n_accepted, spec.st.n_steps);
            if (!eq) {
                diag("plain: %d tokens, stop %d: %.*s", plain.n, plain.st.stop_reason, (int)plain.text.n, plain.text.s);
                diag("spec:  %d tokens, stop %d: %.*s", spec.n, spec.st.stop_reason, (int)spec.text.n, spec.text.s);
            }
            if (batches[b] == 1) ok(spec.st.n_drafted == 0, "n_batch 1: no room for drafts");
            if (c == 0) kept_greedy += spec.st.n_accepted;
            if (c == 0 && b == n_batches - 1)
                ok(plain.st.n_drafted == 0 && plain.st.n_steps == plain.st.n_gen - (plain.st.stop_reason != LAMINA_STOP_LENGTH),
                   "without speculation: no drafts, one decode per token (%d steps)", plain.st.n_steps);
        }
    }
    if (expect_accept)
        ok(kept_greedy > 0, "greedy copying: drafts kept (%lld over the n_batch values)", (long long)kept_greedy);
    if (batcher) {
        static const struct { const char *name; float temp; int grammar; } bc[] = {
            { "greedy", 0.0f, 0 }, { "sampled", 0.9f, 0 }, { "schema", 0.0f, 1 } };
        uint64_t kept_all = 0;
        for (size_t c = 0; c < sizeof bc / sizeof bc[0]; c++) {
            if (!strstr(case_list, bc[c].name)) continue;
            static bout off[3], on[3];
            uint64_t d0, k0, d1, k1;
            int r0 = batcher_run(prompt, n_prompt, n_tok, 0, bc[c].grammar ? g : NULL, bc[c].temp, off, &d0, &k0);
            int r1 = batcher_run(prompt, n_prompt, n_tok, 8, bc[c].grammar ? g : NULL, bc[c].temp, on, &d1, &k1);
            int eq = r0 == 0 && r1 == 0;
            for (int i = 0; i < 3 && eq; i++)
                eq = off[i].done && on[i].done && off[i].status == 0 && on[i].status == 0 && off[i].stop == on[i].stop &&
                     off[i].n == on[i].n && !memcmp(off[i].ids, on[i].ids, (size_t)off[i].n * sizeof off[i].ids[0]) &&
                     off[i].text.n == on[i].text.n && !memcmp(off[i].text.s, on[i].text.s, off[i].text.n);
            ok(eq, "batcher, 3 slots, %s: every request the same with drafts (drafted %llu, kept %llu; without: %llu)",
               bc[c].name, (unsigned long long)d1, (unsigned long long)k1, (unsigned long long)d0);
            for (int i = 0; i < 3 && !eq; i++)
                diag("request %d: %d/%d tokens, stop %d/%d, status %d/%d", i, off[i].n, on[i].n, off[i].stop, on[i].stop,
                     off[i].status, on[i].status);
            if (!strcmp(bc[c].name, "greedy")) kept_all += k1;
        }
        if (expect_accept && strstr(case_list, "greedy"))
            ok(kept_all > 0, "batcher, greedy copying: drafts kept (%llu)", (unsigned long long)kept_all);
    }
    lamina_grammar_unref(g);
    free(prompt);
    test_be_free(cpu);
    lamina_tokenizer_free(tok);
    lamina_model_free(m);
    return done_testing();
}
