/*
 * generate.c - the single-sequence generation loop (see generate.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "generate.h"
#include "lookup.h"
#include "sampler.h"

#define ERR(...) do { if (err) snprintf(err, err_size, __VA_ARGS__); } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void lamina_gen_params_from_config(lamina_gen_params *gp, const lamina_config *cfg)
{
    memset(gp, 0, sizeof *gp);
    gp->temperature = cfg->temperature;
    gp->top_k = cfg->top_k;
    gp->top_p = cfg->top_p;
    gp->min_p = cfg->min_p;
    gp->repeat_penalty = cfg->repeat_penalty;
    gp->repeat_last_n = cfg->repeat_last_n;
    gp->seed = cfg->seed >= 0 ? (uint64_t)cfg->seed : (uint64_t)time(NULL) ^ (uint64_t)clock();
    gp->max_tokens = cfg->max_tokens;
    gp->spec_draft = cfg->speculative ? cfg->speculative_draft : 0;
    gp->spec_ngram = cfg->speculative_ngram;
}

void lamina_seq_free(lamina_seq *s)
{
    free(s->tokens);
    s->tokens = NULL;
    s->n = s->cap = 0;
}

static int seq_push(lamina_seq *s, lamina_token t)
{
    if (s->n == s->cap) {
        int32_t cap = s->cap ? s->cap * 2 : 256;
        lamina_token *v = realloc(s->tokens, (size_t)cap * sizeof *v);
        if (!v) return LAMINA_ENOMEM;
        s->tokens = v;
        s->cap = cap;
    }
    s->tokens[s->n++] = t;
    return 0;
}

/* Decode tokens[0..n) at positions from..from+n of the slot in batches;
 * logits of the last one into `logits` when not NULL. */
static int feed(lamina_engine *e, int32_t slot, const lamina_token *toks, int32_t n, int32_t from,
                float *logits, char *err, size_t err_size)
{
    const lamina_engine_params *p = lamina_engine_params_get(e);
    int32_t B = p->n_batch;
    int32_t *pos = malloc((size_t)B * sizeof *pos), *seq = malloc((size_t)B * sizeof *seq);
    int8_t *want = calloc((size_t)B, 1);
    int rc = 0;
    if (!pos || !seq || !want) { ERR("out of memory"); rc = LAMINA_ENOMEM; goto out; }
    for (int32_t at = 0; at < n; at += B) {
        int32_t m = n - at < B ? n - at : B;
        for (int32_t i = 0; i < m; i++) {
            pos[i] = from + at + i;
            seq[i] = slot;
            want[i] = (at + i == n - 1) && logits;
        }
        lamina_batch b = { m, toks + at, pos, seq, want };
        rc = lamina_engine_decode(e, &b, logits, err, err_size);
        if (rc < 0) goto out;
    }
    rc = 0;
out:
    free(pos); free(seq); free(want);
    return rc;
}

int lamina_seq_prefill(lamina_engine *e, lamina_seq *s, const lamina_token *prompt,
                       size_t n_prompt, float *logits, int32_t *n_cached,
                       char *err, size_t err_size)
{
    const lamina_engine_params *p = lamina_engine_params_get(e);
    if (n_prompt == 0) { ERR("empty prompt"); return LAMINA_EINVAL; }
    if (n_prompt > (size_t)p->n_ctx) {
        ERR("prompt of %zu tokens does not fit the context of %d", n_prompt, p->n_ctx);
        return LAMINA_ERANGE;
    }
    /* keep the common prefix already in the cache; always recompute the
     * last prompt token so that its logits exist */
    int32_t k = 0;
    while (k < s->n && (size_t)k < n_prompt && s->tokens[k] == prompt[k]) k++;
    if ((size_t)k == n_prompt) k--;
    s->n = k;
    if (n_cached) *n_cached = k;
    int rc = feed(e, s->slot, prompt + k, (int32_t)n_prompt - k, k, logits, err, err_size);
    /* a device was lost and its layers moved: every cache is empty now, so
     * the whole prompt goes again (once per backend that can still fail) */
    for (int tries = 0; rc == LAMINA_EDEVLOST && lamina_engine_usable(e) && tries < LAMINA_MAX_BACKENDS; tries++) {
        k = 0;
        s->n = 0;
        if (n_cached) *n_cached = 0;
        rc = feed(e, s->slot, prompt, (int32_t)n_prompt, 0, logits, err, err_size);
    }
    if (rc < 0) { s->n = 0; return rc; }   /* cache contents unknown: start over next time */
    for (size_t i = (size_t)k; i < n_prompt; i++)
        if ((rc = seq_push(s, prompt[i])) < 0) { ERR("out of memory"); return rc; }
    return 0;
}

/* Decode batch[0..n) at positions from.. of the slot, logits for every
 * token (n rows) into `rows`; the policy learns the time it took. */
static int verify(lamina_engine *e, int32_t slot, const lamina_token *batch, int32_t n, int32_t from,
                  float *rows, lamina_spec *sp, char *err, size_t err_size)
{
    int32_t pos[LAMINA_LOOKUP_DRAFT_MAX + 1], seq[LAMINA_LOOKUP_DRAFT_MAX + 1];
    int8_t want[LAMINA_LOOKUP_DRAFT_MAX + 1];
    for (int32_t i = 0; i < n; i++) { pos[i] = from + i; seq[i] = slot; want[i] = 1; }
    lamina_batch b = { n, batch, pos, seq, want };
    double t0 = now_s();
    int rc = lamina_engine_decode(e, &b, rows, err, err_size);
    if (rc >= 0) lamina_spec_time(sp, n, now_s() - t0);
    return rc < 0 ? rc : 0;
}

int lamina_seq_generate(lamina_engine *e, const lamina_tokenizer *tok, lamina_seq *s,
                        const lamina_token *prompt, size_t n_prompt,
                        const lamina_gen_params *gp, lamina_emit_fn emit, void *ctx,
                        lamina_gen_stats *stats, char *err, size_t err_size)
{
    const lamina_model *m = lamina_engine_model(e);
    const lamina_engine_params *p = lamina_engine_params_get(e);
    const int32_t V = m->hp.n_vocab;
    lamina_gen_stats st;
    memset(&st, 0, sizeof st);
    st.n_prompt = (int32_t)n_prompt;
    /* speculation: at most as many drafts as the engine returns rows for */
    int32_t k_max = gp->spec_draft;
    if (k_max > LAMINA_LOOKUP_DRAFT_MAX) k_max = LAMINA_LOOKUP_DRAFT_MAX;
    if (k_max > p->n_outputs - 1) k_max = p->n_outputs - 1;
    if (k_max > p->n_batch - 1) k_max = p->n_batch - 1;
    if (k_max < 0) k_max = 0;
    float *logits = malloc((size_t)V * (size_t)(k_max + 1) * sizeof *logits);
    lamina_sampler *smp = NULL;
    lamina_stop *stop = NULL;
    lamina_gvocab *gv = NULL;
    lamina_gmatch *gm = NULL;
    lamina_lookup *lk = NULL;
    lamina_spec spec;
    lamina_spec_init(&spec, k_max);
    int rc;
    if (!logits) { ERR("out of memory"); return LAMINA_ENOMEM; }

    lamina_sampler_params sp;
    lamina_sampler_params_default(&sp);
    sp.temperature = gp->temperature;
    sp.top_k = gp->top_k;
    sp.top_p = gp->top_p;
    sp.min_p = gp->min_p;
    sp.repeat_penalty = gp->repeat_penalty;
    sp.repeat_last_n = gp->repeat_last_n;
    sp.seed = gp->seed;
    if ((rc = lamina_sampler_create(&sp, V, &smp, err, err_size)) < 0) goto out;
    if ((rc = lamina_stop_create(gp->stop, (size_t)gp->n_stop, &stop, err, err_size)) < 0) goto out;
    if (gp->grammar && ((rc = lamina_gvocab_create(tok, V, &gv, err, err_size)) < 0 ||
                        (rc = lamina_gmatch_create(gp->grammar, gv, &gm, err, err_size)) < 0))
        goto out;
    if (k_max > 0) {
        int32_t ng = gp->spec_ngram < 1 ? 1 : gp->spec_ngram;
        if ((rc = lamina_lookup_create(1, ng, &lk, err, err_size)) < 0) goto out;
    }

    /* 1. prompt */
    double t0 = now_s();
    if ((rc = lamina_seq_prefill(e, s, prompt, n_prompt, logits, &st.n_cached, err, err_size)) < 0)
        goto out;
    st.prompt_s = now_s() - t0;
    for (size_t i = 0; i < n_prompt; i++) lamina_sampler_accept(smp, prompt[i]);
    if (lk && lamina_lookup_append(lk, s->tokens, s->n) < 0) { lamina_lookup_free(lk); lk = NULL; }

    /* 2. sample, stream, decode the sampled token, repeat.  With drafts,
     * `batch` holds the last decode's tokens (the one sampled, then the
     * drafts) and logits row j is what follows batch[j]: each row is
     * sampled in order as plain decoding would, and while the token drawn
     * equals the next draft, that draft is already in the cache. */
    lamina_token batch[LAMINA_LOOKUP_DRAFT_MAX + 1];
    int32_t n_rows = 1, row = 0, ngram = 0;
    lamina_utf8_stream u;
    lamina_utf8_stream_init(&u);
    char buf[512];
    t0 = now_s();
    st.stop_reason = LAMINA_STOP_LENGTH;
    for (;;) {
        if (gp->max_tokens >= 0 && st.n_gen >= gp->max_tokens) { st.stop_reason = LAMINA_STOP_LENGTH; break; }
        lamina_token t;
        float *lrow = logits + (size_t)row * (size_t)V;
        if (gm) lamina_gmatch_mask(gm, lrow);
        if ((rc = lamina_sampler_sample(smp, lrow, &t)) < 0) {
            ERR("sampling failed: the logits are all NaN or -inf (a backend computed garbage)");
            goto out;
        }
        if (gm && (rc = lamina_gmatch_accept(gm, t)) < 0) {
            ERR("sampling failed: token %d breaks the output format", (int)t);
            goto out;
        }
        lamina_sampler_accept(smp, t);
        st.n_gen++;
        const int kept = row + 1 < n_rows && t == batch[row + 1];
        if (kept) row++;
        else if (n_rows > 1) lamina_spec_result(&spec, ngram, n_rows - 1, row);   /* row drafts kept */
        if (lamina_tokenizer_is_eog(tok, t)) { st.stop_reason = LAMINA_STOP_EOG; break; }
        size_t plen;
        const char *piece = lamina_tokenizer_piece(tok, t, 0, &plen);
        while (plen > 0) {                      /* piece through the UTF-8 holder */
            size_t take = plen < sizeof buf - 8 ? plen : sizeof buf - 8;
            size_t n = lamina_utf8_stream_push(&u, piece, take, buf);
            piece += take; plen -= take;
            const char *out_text; size_t out_len; int stopped = 0;
            if ((rc = lamina_stop_feed(stop, buf, n, &out_text, &out_len, &stopped)) < 0) {
                ERR("out of memory");
                goto out;
            }
            if (out_len && emit && emit(ctx, out_text, out_len)) { st.stop_reason = LAMINA_STOP_CANCEL; goto done; }
            if (stopped) { st.stop_reason = LAMINA_STOP_STRING; goto done; }
        }
        if (gm && lamina_gmatch_done(gm)) { st.stop_reason = LAMINA_STOP_EOG; break; }
        if (kept) {
            /* the draft was decoded with the batch: its cache entry holds */
            if (seq_push(s, t) < 0 || (lk && lamina_lookup_append(lk, &t, 1) < 0)) {
                ERR("out of memory"); rc = LAMINA_ENOMEM; goto out;
            }
            continue;
        }
        if (s->n >= p->n_ctx) { st.stop_reason = LAMINA_STOP_CONTEXT; break; }
        /* decode t, with the drafts that follow it when they pay */
        int32_t k = 0;
        batch[0] = t;
        if (lk && lamina_lookup_append(lk, &t, 1) < 0) { ERR("out of memory"); rc = LAMINA_ENOMEM; goto out; }
        if (lk) {
            int32_t room = p->n_ctx - s->n - 1;                 /* positions left after t */
            if (gp->max_tokens >= 0 && gp->max_tokens - st.n_gen - 1 < room)
                room = gp->max_tokens - st.n_gen - 1;           /* drafts past the limit are waste */
            if (room > k_max) room = k_max;
            if (room > 0) {
                k = lamina_lookup_draft(lk, room, batch + 1, &ngram);
                k = lamina_spec_want(&spec, ngram, k);
            }
        }
        st.n_steps++;
        row = 0;
        n_rows = 1;
        if (k > 0) {
            rc = verify(e, s->slot, batch, k + 1, s->n, logits, &spec, err, err_size);
            if (rc == 0) n_rows = k + 1;
        } else {
            double t1 = now_s();
            rc = feed(e, s->slot, &t, 1, s->n, logits, err, err_size);
            if (rc == 0 && lk) lamina_spec_time(&spec, 1, now_s() - t1);
        }
        if ((rc == 0 || rc == LAMINA_EDEVLOST) && seq_push(s, t) < 0) { ERR("out of memory"); rc = LAMINA_ENOMEM; goto out; }
        /* device lost, layers moved, caches empty: feed everything so far
         * again and carry on where we were */
        for (int tries = 0; rc == LAMINA_EDEVLOST && lamina_engine_usable(e) && tries < LAMINA_MAX_BACKENDS; tries++)
            rc = feed(e, s->slot, s->tokens, s->n, 0, logits, err, err_size);
        if (rc < 0) { s->n = 0; goto out; }
    }
    {
        size_t n = lamina_utf8_stream_flush(&u, buf);
        const char *out_text; size_t out_len; int stopped = 0;
        if (n && lamina_stop_feed(stop, buf, n, &out_text, &out_len, &stopped) == 0 && out_len && emit)
            emit(ctx, out_text, out_len);
        if (!stopped) {
            lamina_stop_flush(stop, &out_text, &out_len);
            if (out_len && emit) emit(ctx, out_text, out_len);
        } else {
            st.stop_reason = LAMINA_STOP_STRING;
        }
    }
done:
    st.gen_s = now_s() - t0;
    rc = 0;
out:
    st.n_drafted = (int32_t)spec.n_drafted;
    st.n_accepted = (int32_t)spec.n_accepted;
    if (stats) *stats = st;
    lamina_lookup_free(lk);
    lamina_stop_free(stop);
    lamina_sampler_free(smp);
    lamina_gmatch_free(gm);
    lamina_gvocab_free(gv);
    free(logits);
    return rc;
}
