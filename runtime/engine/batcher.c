/*
 * batcher.c - continuous batching of many sequences over one engine (see
 * batcher.h).
 *
 * Ownership: the queue, the request ids, the cancel flags and the slot ->
 * request links are guarded by b->mu; everything else of a slot (its
 * tokens, sampler, stop holder, timing) belongs to the driver thread, the
 * one calling lamina_batcher_step.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batcher.h"
#include "conf.h"
#include "log.h"
#include "lookup.h"

#define ERR(code, ...) lamina_set_err(err, err_size, (code), __VA_ARGS__)

double lamina_batcher_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A request, queued or in a slot. */
typedef struct breq {
    uint64_t id;
    lamina_token *prompt;
    int32_t  n_prompt;
    lamina_sampler_params sp;
    int32_t  max_tokens;
    int32_t  limit;             /* positions it may use */
    lamina_stop *stop;
    double   deadline, t_submit;
    int32_t  embed;             /* 0 or LAMINA_POOL_LAST / MEAN */
    lamina_grammar *grammar;    /* structured output, or NULL */
    int      render_special;    /* control tokens in the text */
    int32_t  logprobs;          /* alternatives to report, < 0: no logprobs */
    lamina_batcher_logprob_fn logprob;
    lamina_batcher_text_fn text;
    lamina_batcher_token_fn token;
    lamina_batcher_done_fn done;
    void    *ctx;
    int      cancel;            /* under b->mu */
    struct breq *next;
} breq;

enum slot_state {
    SLOT_FREE = 0,
    SLOT_ADMITTED,              /* has a request, not set up yet */
    SLOT_PREFILL,               /* reading the prompt */
    SLOT_GEN                    /* `pending` sampled, to be decoded */
};

typedef struct bslot {
    lamina_token sampled;       /* this step's draw (sampling phase) */
    int      sample_rc;
    int32_t  idx;
    int      state;
    breq    *r;                 /* link under b->mu */
    int      finish;            /* reason to finish at the next step, -1 none (driver only) */
    lamina_token *toks;         /* prompt + generated; [0, n_kv) are in the KV cache */
    int32_t  n_toks, n_kv, cap;
    lamina_token pending;
    lamina_sampler *smp;
    lamina_gmatch *gm;          /* structured output state, or NULL */
    lamina_utf8_stream u;
    int32_t  n_cached, n_gen;
    double   t_admit, t_first, t_last;
    uint64_t order;             /* admission order (prefill goes oldest first) */
    uint64_t used;              /* last use, for picking among free slots */
    int      taken;             /* has a prompt chunk in the batch being built */
    double  *pool;              /* [n_embd] embedding requests: sum (mean) or last row */
    double   lse;               /* logprobs: log-sum-exp of this step's logits */
    float    lp;                /* the draw's log-probability */
    int      n_top;
    lamina_token top[LAMINA_MAX_TOP_LOGPROBS];
    float    top_lp[LAMINA_MAX_TOP_LOGPROBS];
    /* speculation: the step decodes `pending` and n_draft drafts, logits
     * rows row0..row0+n_draft; sampling draws out[0..n_out) in order while
     * each equals the next draft (n_kept of them did) */
    lamina_lookup *lk;          /* the index, kept from request to request */
    int      spec_on;           /* drafts for this request */
    lamina_spec spec;
    lamina_token draft[LAMINA_LOOKUP_DRAFT_MAX];
    int32_t  n_draft, ngram, row0, n_kept, n_out, draft_pos;
    lamina_token out[LAMINA_LOOKUP_DRAFT_MAX + 1];
} bslot;

struct lamina_batcher {
    lamina_engine *e;
    const lamina_tokenizer *tok;
    int32_t  n_vocab, n_ctx, n_seq, n_batch, n_chunk, max_queue;
    int32_t  n_rows_max;        /* the engine's n_outputs: logits rows per step */
    int32_t  spec_draft, spec_ngram;
    uint64_t n_drafted, n_accepted;   /* under mu */
    int64_t  kv_used;           /* KV positions of running requests after the last step (under mu) */
    bslot   *slots;
    /* per-step arrays [n_batch] */
    int32_t *b_tok, *b_pos, *b_seq;
    int8_t  *b_want;
    int8_t  *b_hid;             /* [n_batch] wants its hidden state (embeddings) */
    float   *hidden;            /* [n_batch * n_embd], allocated on first use */
    float   *emb;               /* [n_embd] the pooled vector being reported */
    int32_t  n_embd;
    int      encoder;           /* the model is an encoder: embeddings only, each
                                   input read whole in one decode step */
    int32_t *row_slot;          /* [n_rows_max]: the slots with logits rows this
                                   step, each once (its rows from its row0) */
    float   *logits;            /* [n_rows_max * n_vocab] */
    lamina_gvocab *gv;          /* token bytes for grammars, made on first use (driver) */
    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    breq    *q_head, *q_tail;
    int32_t  n_queued, n_active;
    uint64_t next_id, n_admitted, use_clock;
    int      woken;
    int      inited;            /* mu and cv exist */
    uint64_t n_steps, n_decoded, n_finished, n_shared, n_failovers;
    /* sampling helpers: the driver publishes a step's rows and bumps
     * work_gen; helpers and driver take rows from next_row */
    int      n_helpers;
    pthread_t *helpers;
    pthread_mutex_t hmu;
    pthread_cond_t hcv, hdone;
    uint64_t work_gen;
    int      work_rows, next_row, rows_done, helpers_quit;
    double   busy_s, decode_s;
};

static void *helper_main(void *arg);

/* ------------------------------------------------------------------------ */

static void req_free(breq *r)
{
    if (!r) return;
    free(r->prompt);
    lamina_stop_free(r->stop);
    lamina_grammar_unref(r->grammar);
    free(r);
}

static int slot_reserve(bslot *s, int32_t n)
{
    if (n <= s->cap) return 0;
    int32_t cap = s->cap ? s->cap : 256;
    while (cap < n) cap *= 2;
    lamina_token *v = realloc(s->toks, (size_t)cap * sizeof *v);
    if (!v) return LAMINA_ENOMEM;
    s->toks = v;
    s->cap = cap;
    return 0;
}

int lamina_batcher_create(lamina_engine *e, const lamina_tokenizer *tok,
                          const lamina_batcher_params *p, lamina_batcher **out,
                          char *err, size_t err_size)
{
    const lamina_engine_params *ep = lamina_engine_params_get(e);
    if (!e || !tok || !out) return ERR(LAMINA_EINVAL, "batcher: NULL argument");
    *out = NULL;
    if (ep->n_outputs < ep->n_seq || ep->n_batch < ep->n_seq)
        return ERR(LAMINA_EINVAL, "batcher: the engine needs n_batch and n_outputs >= n_seq (%d, %d, %d)",
                   ep->n_batch, ep->n_outputs, ep->n_seq);
    if (p && (p->n_chunk < 0 || p->max_queue < 0))
        return ERR(LAMINA_EINVAL, "batcher: n_chunk and max_queue must be >= 0");
    lamina_batcher *b = calloc(1, sizeof *b);
    if (!b) return ERR(LAMINA_ENOMEM, "out of memory");
    b->e = e;
    b->tok = tok;
    b->n_vocab = lamina_engine_model(e)->hp.n_vocab;
    b->n_ctx = ep->n_ctx;
    b->n_seq = ep->n_seq;
    b->n_batch = ep->n_batch;
    b->n_chunk = p && p->n_chunk > 0 ? p->n_chunk : ep->n_batch - ep->n_seq;
    if (b->n_chunk < 1) b->n_chunk = 1;
    if (b->n_chunk > ep->n_batch) b->n_chunk = ep->n_batch;
    b->max_queue = p ? p->max_queue : 0;
    b->n_rows_max = ep->n_outputs;
    b->next_id = 1;
    b->slots = calloc((size_t)b->n_seq, sizeof *b->slots);
    b->b_tok = malloc((size_t)b->n_batch * sizeof(int32_t));
    b->b_pos = malloc((size_t)b->n_batch * sizeof(int32_t));
    b->b_seq = malloc((size_t)b->n_batch * sizeof(int32_t));
    b->b_want = malloc((size_t)b->n_batch);
    b->b_hid = calloc((size_t)b->n_batch, 1);
    b->n_embd = lamina_engine_model(e)->hp.n_embd;
    b->encoder = !lamina_engine_model(e)->hp.causal;
    b->spec_draft = p && p->spec_draft > 0 && !b->encoder ? p->spec_draft : 0;
    if (b->spec_draft > LAMINA_LOOKUP_DRAFT_MAX) b->spec_draft = LAMINA_LOOKUP_DRAFT_MAX;
    b->spec_ngram = p && p->spec_ngram > 0 && p->spec_ngram <= LAMINA_LOOKUP_NGRAM_MAX ? p->spec_ngram : 3;
    b->emb = malloc((size_t)b->n_embd * sizeof(float));
    b->row_slot = malloc((size_t)b->n_rows_max * sizeof(int32_t));
    b->logits = malloc((size_t)b->n_rows_max * (size_t)b->n_vocab * sizeof(float));
    if (!b->slots || !b->b_tok || !b->b_pos || !b->b_seq || !b->b_want || !b->row_slot || !b->logits ||
        !b->b_hid || !b->emb) {
        lamina_batcher_free(b);
        return ERR(LAMINA_ENOMEM, "out of memory");
    }
    for (int32_t i = 0; i < b->n_seq; i++) {
        b->slots[i].idx = i;
        b->slots[i].finish = -1;
        b->slots[i].pool = calloc((size_t)b->n_embd, sizeof(double));
        if (!b->slots[i].pool) {
            lamina_batcher_free(b);
            return ERR(LAMINA_ENOMEM, "out of memory");
        }
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->hmu, NULL);
    pthread_cond_init(&b->hcv, NULL);
    pthread_cond_init(&b->hdone, NULL);
    b->inited = 1;
    int nt = p && p->n_threads > 0 ? p->n_threads : lamina_config_core_count();
    if (nt > b->n_seq) nt = b->n_seq;
    if (nt > 1) {
        b->helpers = calloc((size_t)nt - 1, sizeof *b->helpers);
        for (int i = 0; b->helpers && i < nt - 1; i++) {
            if (pthread_create(&b->helpers[i], NULL, helper_main, b) != 0) break;
            b->n_helpers++;
        }
    }
    *out = b;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Finishing                                                                */

/* Report and release a request (no lock held). */
static void deliver(breq *r, lamina_batcher_result *res)
{
    if (r->done) r->done(r->ctx, res);
    req_free(r);
}

/* A queued request that never got a slot. */
static void finish_queued(breq *r, int reason, double now)
{
    lamina_batcher_result res;
    memset(&res, 0, sizeof res);
    res.stop_reason = reason;
    res.n_prompt = r->n_prompt;
    res.queue_s = now - r->t_submit;
    res.tokens = r->prompt;
    res.n_tokens = r->n_prompt;
    if (reason == LAMINA_STOP_CANCEL) {
        res.status = LAMINA_ECANCELED;
        snprintf(res.msg, sizeof res.msg, "cancelled while waiting for a sequence slot");
    } else if (reason == LAMINA_STOP_TIMEOUT) {
        res.status = LAMINA_ETIMEOUT;
        snprintf(res.msg, sizeof res.msg, "the time limit passed while waiting for a sequence slot");
    }
    deliver(r, &res);
}

/* Finish the request in slot s: flush held text (on a normal end), report,
 * free the slot.  `status`/`msg` for failures. */
static void finish_slot(lamina_batcher *b, bslot *s, int reason, int status, const char *msg)
{
    breq *r = s->r;
    double now = lamina_batcher_now();
    if (reason != LAMINA_STOP_CANCEL && reason != LAMINA_STOP_ERROR && reason != LAMINA_STOP_TIMEOUT &&
        r->text && s->state >= SLOT_PREFILL) {
        char buf[8];
        size_t n = lamina_utf8_stream_flush(&s->u, buf);
        const char *out_text;
        size_t out_len;
        int stopped = 0;
        if (n && lamina_stop_feed(r->stop, buf, n, &out_text, &out_len, &stopped) == 0 && out_len)
            r->text(r->ctx, out_text, out_len);
        if (!stopped) {
            lamina_stop_flush(r->stop, &out_text, &out_len);
            if (out_len) r->text(r->ctx, out_text, out_len);
        } else {
            reason = LAMINA_STOP_STRING;
        }
    }
    lamina_batcher_result res;
    memset(&res, 0, sizeof res);
    res.status = status;
    res.stop_reason = reason;
    res.n_prompt = r->n_prompt;
    res.n_cached = s->n_cached;
    res.n_gen = s->n_gen;
    res.queue_s = s->t_admit - r->t_submit;
    if (s->t_first > 0) {
        res.prompt_s = s->t_first - s->t_admit;
        res.gen_s = now - s->t_first;
    } else {
        res.prompt_s = now - s->t_admit;
    }
    res.tokens = s->state >= SLOT_PREFILL ? s->toks : r->prompt;
    res.n_tokens = s->state >= SLOT_PREFILL ? s->n_toks : r->n_prompt;
    if (r->embed && reason == LAMINA_STOP_LENGTH && status == 0) {
        res.embedding = b->emb;
        res.n_embd = b->n_embd;
    }
    if (msg) snprintf(res.msg, sizeof res.msg, "%s", msg);
    else if (reason == LAMINA_STOP_TIMEOUT) snprintf(res.msg, sizeof res.msg, "the time limit passed during generation");
    if (reason == LAMINA_STOP_CANCEL && !status) res.status = LAMINA_ECANCELED;
    if (reason == LAMINA_STOP_TIMEOUT && !status) res.status = LAMINA_ETIMEOUT;

    lamina_sampler_free(s->smp);
    s->smp = NULL;
    lamina_gmatch_free(s->gm);
    s->gm = NULL;
    pthread_mutex_lock(&b->mu);
    s->r = NULL;
    s->state = SLOT_FREE;
    s->finish = -1;
    s->used = ++b->use_clock;
    b->n_active--;
    b->n_finished++;
    pthread_mutex_unlock(&b->mu);
    if (s->n_toks > s->n_kv) s->n_toks = s->n_kv;   /* only what the cache holds is reusable */
    deliver(r, &res);
}

/* ------------------------------------------------------------------------ */
/* Submitting                                                               */

int lamina_batcher_submit(lamina_batcher *b, const lamina_batcher_request *rq, uint64_t *id,
                          char *err, size_t err_size)
{
    if (!b || !rq) return ERR(LAMINA_EINVAL, "batcher: NULL argument");
    if (!rq->prompt || rq->n_prompt == 0) return ERR(LAMINA_EINVAL, "empty prompt");
    int32_t limit = b->n_ctx;
    if (rq->n_ctx > 0 && rq->n_ctx < limit) limit = rq->n_ctx;
    if (rq->n_prompt > (size_t)limit)
        return ERR(LAMINA_ERANGE, "prompt of %zu tokens does not fit the context of %d", rq->n_prompt, limit);
    for (size_t i = 0; i < rq->n_prompt; i++)
        if (rq->prompt[i] < 0 || rq->prompt[i] >= b->n_vocab)
            return ERR(LAMINA_EINVAL, "token %d at prompt index %zu is outside the vocabulary (%d)",
                       rq->prompt[i], i, b->n_vocab);
    if (rq->n_stop < 0 || rq->n_stop > LAMINA_MAX_STOP)
        return ERR(LAMINA_EINVAL, "at most %d stop strings", LAMINA_MAX_STOP);
    if (b->encoder) {
        if (!rq->embed)
            return ERR(LAMINA_EINVAL, "the model is an encoder (%s): it gives embeddings and cannot generate text",
                       lamina_engine_model(b->e)->hp.arch_name);
        if (rq->n_prompt > (size_t)b->n_batch)
            return ERR(LAMINA_ERANGE, "input of %zu tokens exceeds the batch of %d: an encoder reads its whole "
                       "input in one pass", rq->n_prompt, b->n_batch);
    }
    if (rq->embed != 0 && rq->embed != LAMINA_POOL_LAST && rq->embed != LAMINA_POOL_MEAN &&
        !(rq->embed == LAMINA_POOL_CLS && b->encoder))
        return ERR(LAMINA_EINVAL, "embeddings: pooling type %d is not last (3) or mean (1)%s", rq->embed,
                   b->encoder ? " or cls (2)" : "");
    if (rq->embed && rq->grammar) return ERR(LAMINA_EINVAL, "embeddings: no output format applies");
    int rc;
    if (!rq->embed) {
        /* The sampler checks its parameters when created; a one-entry
         * vocabulary checks them without the full-size work arrays. */
        lamina_sampler *probe = NULL;
        rc = lamina_sampler_create(&rq->sampling, 1, &probe, err, err_size);
        if (rc < 0) return rc;
        lamina_sampler_free(probe);
    }

    breq *r = calloc(1, sizeof *r);
    if (!r) return ERR(LAMINA_ENOMEM, "out of memory");
    r->prompt = malloc(rq->n_prompt * sizeof *r->prompt);
    if (!r->prompt) { req_free(r); return ERR(LAMINA_ENOMEM, "out of memory"); }
    memcpy(r->prompt, rq->prompt, rq->n_prompt * sizeof *r->prompt);
    r->n_prompt = (int32_t)rq->n_prompt;
    if ((rc = lamina_stop_create(rq->stop, (size_t)rq->n_stop, &r->stop, err, err_size)) < 0) {
        req_free(r);
        return rc;
    }
    r->sp = rq->sampling;
    r->max_tokens = rq->max_tokens;
    r->limit = limit;
    r->deadline = rq->deadline;
    r->embed = rq->embed;
    r->grammar = lamina_grammar_ref(rq->grammar);
    r->render_special = rq->render_special;
    r->logprob = rq->logprob;
    r->logprobs = !rq->logprob ? -1 : rq->logprobs > LAMINA_MAX_TOP_LOGPROBS ? LAMINA_MAX_TOP_LOGPROBS : rq->logprobs;
    r->t_submit = lamina_batcher_now();
    r->text = rq->text;
    r->token = rq->token;
    r->done = rq->done;
    r->ctx = rq->ctx;

    pthread_mutex_lock(&b->mu);
    int32_t free_slots = b->n_seq - b->n_active;
    if (b->n_queued >= b->max_queue + (free_slots > 0 ? free_slots : 0)) {
        int32_t nq = b->n_queued;
        pthread_mutex_unlock(&b->mu);
        req_free(r);
        return ERR(LAMINA_EREJECTED, "queue full: %d sequences busy and %d requests waiting", b->n_seq, nq);
    }
    r->id = b->next_id++;
    if (b->q_tail) b->q_tail->next = r; else b->q_head = r;
    b->q_tail = r;
    b->n_queued++;
    if (id) *id = r->id;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void lamina_batcher_cancel(lamina_batcher *b, uint64_t id)
{
    if (!b || !id) return;
    pthread_mutex_lock(&b->mu);
    for (breq *r = b->q_head; r; r = r->next)
        if (r->id == id) r->cancel = 1;
    for (int32_t i = 0; i < b->n_seq; i++)
        if (b->slots[i].r && b->slots[i].r->id == id) b->slots[i].r->cancel = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* ------------------------------------------------------------------------ */
/* Stepping                                                                 */

static int32_t common_prefix(const lamina_token *a, int32_t na, const lamina_token *c, int32_t nc)
{
    int32_t k = 0;
    while (k < na && k < nc && a[k] == c[k]) k++;
    return k;
}

/* Under b->mu: move queued requests to free slots; cancelled or expired
 * ones go to *dropped. */
static void admit_locked(lamina_batcher *b, double now, breq **dropped)
{
    breq **pp = &b->q_head, *prev = NULL;
    while (*pp) {
        breq *r = *pp;
        int reason = r->cancel ? LAMINA_STOP_CANCEL
                   : (r->deadline > 0 && now >= r->deadline) ? LAMINA_STOP_TIMEOUT : -1;
        bslot *best = NULL;
        if (reason < 0) {
            int32_t best_k = -1;
            for (int32_t i = 0; i < b->n_seq; i++) {
                bslot *s = &b->slots[i];
                if (s->state != SLOT_FREE) continue;
                int32_t k = common_prefix(s->toks, s->n_kv, r->prompt, r->n_prompt);
                if (k > best_k || (k == best_k && s->used < best->used)) { best = s; best_k = k; }
            }
            if (!best) { prev = r; pp = &r->next; continue; }   /* no slot: wait (the queue stays FIFO for the rest) */
        }
        *pp = r->next;
        if (b->q_tail == r) b->q_tail = prev;
        b->n_queued--;
        r->next = NULL;
        if (reason >= 0) {
            r->id = (uint64_t)reason;        /* the id is no longer needed: carry the reason */
            r->next = *dropped;
            *dropped = r;
            continue;
        }
        best->r = r;
        best->state = SLOT_ADMITTED;
        best->finish = -1;
        best->order = ++b->n_admitted;
        best->used = ++b->use_clock;
        b->n_active++;
    }
}

/* Driver: set up an admitted slot (prefix reuse, sampler). */
static int setup_slot(lamina_batcher *b, bslot *s, char *msg, size_t msg_size)
{
    breq *r = s->r;
    int32_t k = common_prefix(s->toks, s->n_kv, r->prompt, r->n_prompt);
    if (k == r->n_prompt) k--;                  /* recompute the last prompt token for its logits */
    if (r->embed == LAMINA_POOL_MEAN) k = 0;    /* every position's hidden state is summed */
    if (b->encoder) k = 0;                      /* every token sees the whole input: nothing reusable */
    if (slot_reserve(s, r->n_prompt + 1) < 0) { snprintf(msg, msg_size, "out of memory"); return LAMINA_ENOMEM; }
    memcpy(s->toks, r->prompt, (size_t)r->n_prompt * sizeof *s->toks);
    s->n_toks = r->n_prompt;
    s->n_kv = k;
    s->n_cached = k;
    s->n_gen = 0;
    s->t_admit = lamina_batcher_now();
    s->t_first = s->t_last = 0;
    lamina_utf8_stream_init(&s->u);
    if (r->embed) {
        memset(s->pool, 0, (size_t)b->n_embd * sizeof *s->pool);
        s->state = SLOT_PREFILL;
        return 0;
    }
    int rc = lamina_sampler_create(&r->sp, b->n_vocab, &s->smp, msg, msg_size);
    if (rc < 0) return rc;
    /* drafts from the request's own text; not with logprobs (one row's
     * alternatives per step) */
    s->n_draft = 0;
    s->spec_on = 0;
    if (b->spec_draft > 0 && r->logprobs < 0 && b->n_rows_max > b->n_seq) {
        if (!s->lk && lamina_lookup_create(1, b->spec_ngram, &s->lk, NULL, 0) < 0) s->lk = NULL;
        if (s->lk) {
            lamina_lookup_clear(s->lk);
            s->spec_on = lamina_lookup_append(s->lk, s->toks, s->n_toks) == 0;
            lamina_spec_init(&s->spec, b->spec_draft);
        }
    }
    if (r->grammar) {
        if (!b->gv && (rc = lamina_gvocab_create(b->tok, b->n_vocab, &b->gv, msg, msg_size)) < 0) return rc;
        if ((rc = lamina_gmatch_create(r->grammar, b->gv, &s->gm, msg, msg_size)) < 0) return rc;
    }
    for (int32_t i = 0; i < r->n_prompt; i++) lamina_sampler_accept(s->smp, r->prompt[i]);
    s->state = SLOT_PREFILL;
    return 0;
}

/* logprobs: the log-sum-exp of a row and its n most likely tokens. */
static void row_logprobs(bslot *s, const float *lg, int32_t n_vocab, int n)
{
    float mx = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++)
        if (lg[i] > mx) mx = lg[i];
    double sum = 0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)lg[i] - mx);
    s->lse = mx + log(sum > 0 ? sum : 1);
    s->n_top = 0;
    for (int32_t i = 0; i < n_vocab && n > 0; i++) {   /* insertion into the n best */
        float v = lg[i];
        if (isnan(v) || (s->n_top == n && v <= s->top_lp[n - 1])) continue;
        int k = s->n_top < n ? s->n_top++ : n - 1;
        while (k > 0 && s->top_lp[k - 1] < v) {
            s->top_lp[k] = s->top_lp[k - 1];
            s->top[k] = s->top[k - 1];
            k--;
        }
        s->top_lp[k] = v;
        s->top[k] = i;
    }
    for (int k = 0; k < s->n_top; k++) s->top_lp[k] = (float)(s->top_lp[k] - s->lse);
}

/* Sample the rows of unit `unit` (a slot) into it (any thread: each slot
 * has its own sampler, and its rows are its alone): row after row, as
 * plain decoding would, while the token drawn equals the next draft. */
static void sample_row(lamina_batcher *b, int unit)
{
    bslot *s = &b->slots[b->row_slot[unit]];
    s->n_out = s->n_kept = 0;
    s->sample_rc = 0;
    if (s->r->max_tokens == 0) return;
    for (int32_t j = 0; j <= s->n_draft; j++) {
        float *lg = b->logits + (size_t)(s->row0 + j) * (size_t)b->n_vocab;
        if (s->r->logprobs >= 0) row_logprobs(s, lg, b->n_vocab, s->r->logprobs);
        if (s->gm) lamina_gmatch_mask(s->gm, lg);
        s->sample_rc = lamina_sampler_sample(s->smp, lg, &s->sampled);
        if (s->sample_rc == 0 && s->r->logprobs >= 0) s->lp = (float)(lg[s->sampled] - s->lse);
        if (s->sample_rc == 0 && s->gm && lamina_gmatch_accept(s->gm, s->sampled) < 0) s->sample_rc = 1;
        if (s->sample_rc == 0) lamina_sampler_accept(s->smp, s->sampled);
        s->out[s->n_out++] = s->sampled;
        if (s->sample_rc != 0 || j == s->n_draft || s->sampled != s->draft[j]) break;
        s->n_kept++;
        /* the request ends here: no more draws */
        if (lamina_tokenizer_is_eog(b->tok, s->sampled) || (s->gm && lamina_gmatch_done(s->gm))) break;
    }
}

/* Take rows until none are left; returns how many this thread did.
 * Called with hmu held; drops it while sampling. */
static int take_rows_locked(lamina_batcher *b)
{
    int did = 0;
    while (b->next_row < b->work_rows) {
        int row = b->next_row++;
        pthread_mutex_unlock(&b->hmu);
        sample_row(b, row);
        pthread_mutex_lock(&b->hmu);
        did++;
    }
    return did;
}

static void *helper_main(void *arg)
{
    lamina_batcher *b = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&b->hmu);
    for (;;) {
        while (!b->helpers_quit && b->work_gen == seen) pthread_cond_wait(&b->hcv, &b->hmu);
        if (b->helpers_quit) break;
        seen = b->work_gen;
        int did = take_rows_locked(b);
        b->rows_done += did;
        if (did && b->rows_done == b->work_rows) pthread_cond_signal(&b->hdone);
    }
    pthread_mutex_unlock(&b->hmu);
    return NULL;
}

/* Sample every row of the step, in parallel when there are helpers. */
static void sample_rows(lamina_batcher *b, int n_rows)
{
    if (b->n_helpers == 0 || n_rows < 2) {
        for (int row = 0; row < n_rows; row++) sample_row(b, row);
        return;
    }
    pthread_mutex_lock(&b->hmu);
    b->work_rows = n_rows;
    b->next_row = 0;
    b->rows_done = 0;
    b->work_gen++;
    pthread_cond_broadcast(&b->hcv);
    b->rows_done += take_rows_locked(b);
    while (b->rows_done < n_rows) pthread_cond_wait(&b->hdone, &b->hmu);
    b->work_rows = 0;
    pthread_mutex_unlock(&b->hmu);
}

/* Driver: token t of the slot was drawn; stream it.  Returns the stop
 * reason when the request is done, else -1.  `last`: the slot's last draw
 * of the step (the grammar state is the one after it; before, sampling
 * went on, so the value was not complete). */
static int take_one(lamina_batcher *b, bslot *s, lamina_token t, int sample_rc, int last, char *msg, size_t msg_size)
{
    breq *r = s->r;
    if (sample_rc < 0) {
        snprintf(msg, msg_size, s->gm ? "sampling failed: no token allowed by the output format has a finite logit"
                                      : "sampling failed: the logits are all NaN or -inf (a backend computed garbage)");
        return LAMINA_STOP_ERROR;
    }
    if (sample_rc > 0) {
        snprintf(msg, msg_size, "sampling failed: token %d breaks the output format", (int)t);
        return LAMINA_STOP_ERROR;
    }
    double now = lamina_batcher_now();
    if (r->token) r->token(r->ctx, t, now - (s->t_last > 0 ? s->t_last : r->t_submit));
    if (s->t_first == 0) s->t_first = now;
    s->t_last = now;
    if (lamina_tokenizer_is_eog(b->tok, t)) return LAMINA_STOP_EOG;
    if (r->logprobs >= 0) r->logprob(r->ctx, t, s->lp, s->top, s->top_lp, s->n_top);
    s->toks[s->n_toks++] = t;                   /* room: reserved n_kv + 1 + drafts */
    s->n_gen++;
    if (s->spec_on && lamina_lookup_append(s->lk, &t, 1) < 0) s->spec_on = 0;
    size_t plen;
    const char *piece = lamina_tokenizer_piece(b->tok, t, r->render_special, &plen);
    char buf[520];
    while (plen > 0) {                          /* the piece through the UTF-8 holder and the stop holder */
        size_t take = plen < sizeof buf - 8 ? plen : sizeof buf - 8;
        size_t n = lamina_utf8_stream_push(&s->u, piece, take, buf);
        piece += take;
        plen -= take;
        const char *out_text;
        size_t out_len;
        int stopped = 0;
        if (lamina_stop_feed(r->stop, buf, n, &out_text, &out_len, &stopped) < 0) {
            snprintf(msg, msg_size, "out of memory");
            return LAMINA_STOP_ERROR;
        }
        if (out_len && r->text && r->text(r->ctx, out_text, out_len)) return LAMINA_STOP_CANCEL;
        if (stopped) return LAMINA_STOP_STRING;
    }
    if (last && s->gm && lamina_gmatch_done(s->gm)) return LAMINA_STOP_EOG;   /* the value is complete */
    if (r->max_tokens > 0 && s->n_gen >= r->max_tokens) return LAMINA_STOP_LENGTH;
    if (s->n_kv >= r->limit) return LAMINA_STOP_CONTEXT;   /* no position left for it */
    if (slot_reserve(s, s->n_toks + 1 + LAMINA_LOOKUP_DRAFT_MAX) < 0) {
        snprintf(msg, msg_size, "out of memory");
        return LAMINA_STOP_ERROR;
    }
    s->pending = t;
    s->state = SLOT_GEN;
    return -1;
}

/* Driver: the slot's tokens of this step are drawn; stream them in order.
 * Each but the last was a kept draft: its cache entry holds. */
static int take_token(lamina_batcher *b, bslot *s, char *msg, size_t msg_size)
{
    if (s->r->max_tokens == 0) return LAMINA_STOP_LENGTH;
    if (s->n_draft > 0) {
        lamina_spec_result(&s->spec, s->ngram, s->n_draft, s->n_kept);
        pthread_mutex_lock(&b->mu);
        b->n_drafted += (uint64_t)s->n_draft;
        b->n_accepted += (uint64_t)s->n_kept;
        pthread_mutex_unlock(&b->mu);
    }
    for (int32_t i = 0; i < s->n_out; i++) {
        int last = i == s->n_out - 1;
        int reason = take_one(b, s, s->out[i], last ? s->sample_rc : 0, last, msg, msg_size);
        if (reason >= 0) return reason;
        if (i < s->n_kept) s->n_kv++;           /* decoded with the batch as a draft */
    }
    return -1;
}

int lamina_batcher_step(lamina_batcher *b, char *err, size_t err_size)
{
    char msg[256];
    double now = lamina_batcher_now();

    /* 1. cancellations and deadlines of running requests */
    pthread_mutex_lock(&b->mu);
    for (int32_t i = 0; i < b->n_seq; i++) {
        bslot *s = &b->slots[i];
        if (!s->r) continue;
        if (s->r->cancel) s->finish = LAMINA_STOP_CANCEL;
        else if (s->r->deadline > 0 && now >= s->r->deadline) s->finish = LAMINA_STOP_TIMEOUT;
    }
    pthread_mutex_unlock(&b->mu);
    for (int32_t i = 0; i < b->n_seq; i++) {
        bslot *s = &b->slots[i];
        if (s->state != SLOT_FREE && s->finish >= 0) finish_slot(b, s, s->finish, 0, NULL);
    }

    /* 2. the queue into free slots */
    breq *dropped = NULL;
    pthread_mutex_lock(&b->mu);
    admit_locked(b, now, &dropped);
    pthread_mutex_unlock(&b->mu);
    while (dropped) {
        breq *r = dropped;
        dropped = r->next;
        finish_queued(r, (int)r->id, now);
    }
    for (int32_t i = 0; i < b->n_seq; i++) {
        bslot *s = &b->slots[i];
        if (s->state != SLOT_ADMITTED) continue;
        int rc = setup_slot(b, s, msg, sizeof msg);
        if (rc < 0) finish_slot(b, s, LAMINA_STOP_ERROR, rc, msg);
    }

    /* 3. the batch: one token per generating sequence (with its drafts
     * while the rows beyond one per slot last), then prompt chunks */
    int32_t n = 0, n_rows = 0, n_units = 0, spare = b->n_rows_max - b->n_seq;
    if (spare > b->n_batch - b->n_seq) spare = b->n_batch - b->n_seq;
    for (int32_t i = 0; i < b->n_seq; i++) {
        bslot *s = &b->slots[i];
        s->n_draft = 0;
        if (s->state != SLOT_GEN) continue;
        b->b_tok[n] = s->pending;
        b->b_pos[n] = s->n_kv;
        b->b_seq[n] = s->idx;
        b->b_want[n] = 1;
        b->b_hid[n] = 0;
        s->row0 = n_rows++;
        b->row_slot[n_units++] = s->idx;
        n++;
        if (!s->spec_on || spare <= 0) continue;
        int32_t room = s->r->limit - s->n_kv - 1;          /* positions after the pending token */
        if (s->r->max_tokens > 0 && s->r->max_tokens - s->n_gen - 1 < room)
            room = s->r->max_tokens - s->n_gen - 1;        /* drafts past the limit are waste */
        if (room > spare) room = spare;
        if (room <= 0) continue;
        int32_t k = lamina_lookup_draft(s->lk, room < b->spec_draft ? room : b->spec_draft, s->draft, &s->ngram);
        k = lamina_spec_want(&s->spec, s->ngram, k);
        for (int32_t j = 0; j < k; j++) {
            b->b_tok[n] = s->draft[j];
            b->b_pos[n] = s->n_kv + 1 + j;
            b->b_seq[n] = s->idx;
            b->b_want[n] = 1;
            b->b_hid[n] = 0;
            n++;
            n_rows++;
        }
        s->n_draft = k;
        s->draft_pos = s->n_kv;             /* the pending token's position */
        spare -= k;
    }
    int32_t budget = b->n_chunk < b->n_batch - n ? b->n_chunk : b->n_batch - n;
    if (b->encoder) budget = b->n_batch - n;    /* whole inputs, never a chunk */
    for (;;) {                                      /* prefilling slots, oldest first */
        bslot *next = NULL;
        for (int32_t i = 0; i < b->n_seq; i++) {
            bslot *s = &b->slots[i];
            if (s->state == SLOT_PREFILL && s->n_kv < s->n_toks && !s->taken &&
                (!next || s->order < next->order))
                next = s;
        }
        if (!next || budget <= 0) break;
        int32_t m = next->n_toks - next->n_kv;
        if (b->encoder && m > budget) break;    /* the next step reads it whole */
        if (m > budget) m = budget;
        for (int32_t j = 0; j < m; j++) {
            b->b_tok[n] = next->toks[next->n_kv + j];
            b->b_pos[n] = next->n_kv + j;
            b->b_seq[n] = next->idx;
            b->b_want[n] = 0;
            b->b_hid[n] = next->r->embed == LAMINA_POOL_MEAN ||
                          (next->r->embed == LAMINA_POOL_CLS && next->n_kv + j == 0);
            n++;
        }
        if (next->n_kv + m == next->n_toks) {
            if (next->r->embed) {
                if (next->r->embed != LAMINA_POOL_CLS)
                    b->b_hid[n - 1] = 1;        /* the last position: its hidden state, no logits */
            } else {
                b->b_want[n - 1] = 1;
                next->row0 = n_rows++;
                b->row_slot[n_units++] = next->idx;
            }
        }
        budget -= m;
        next->taken = 1;
    }
    for (int32_t i = 0; i < b->n_seq; i++) b->slots[i].taken = 0;
    if (n == 0) return 0;

    /* 4. decode */
    double t0 = lamina_batcher_now();
    lamina_batch batch = { n, b->b_tok, b->b_pos, b->b_seq, b->b_want };
    char derr[512] = "";
    uint32_t epoch = lamina_engine_epoch(b->e);
    int any_hid = 0;
    for (int32_t t = 0; t < n && !any_hid; t++) any_hid = b->b_hid[t];
    if (any_hid && !b->hidden) {
        b->hidden = malloc((size_t)b->n_batch * (size_t)b->n_embd * sizeof(float));
        if (!b->hidden) any_hid = -1;
    }
    int rc;
    if (any_hid < 0) {
        snprintf(derr, sizeof derr, "out of memory");
        rc = LAMINA_ENOMEM;
    } else if (any_hid) {
        rc = lamina_engine_decode_hidden(b->e, &batch, b->b_hid, b->logits, b->hidden, NULL, derr, sizeof derr);
    } else {
        rc = lamina_engine_decode(b->e, &batch, b->logits, derr, sizeof derr);
    }
    double t_dec = lamina_batcher_now() - t0;
    if (rc < 0 && lamina_engine_epoch(b->e) != epoch && lamina_engine_usable(b->e)) {
        /* a device was lost and the engine moved to the backends left:
         * every KV cache is empty.  Each running request reads all its
         * tokens again (a generating one up to and including the token it
         * was about to decode, so its next draw is the one this step would
         * have made); free slots forget what they held. */
        for (int32_t i = 0; i < b->n_seq; i++) {
            bslot *s = &b->slots[i];
            s->n_kv = 0;
            if (s->r && s->r->embed) memset(s->pool, 0, (size_t)b->n_embd * sizeof *s->pool);
            if (s->state == SLOT_GEN) s->state = SLOT_PREFILL;
            else if (s->state == SLOT_FREE) s->n_toks = 0;
        }
        pthread_mutex_lock(&b->mu);
        b->n_steps++;
        b->n_failovers++;
        pthread_mutex_unlock(&b->mu);
        ERR(rc, "%s", derr);
        return 0;
    }
    if (rc < 0) {
        /* every request of this batch fails; their caches are in doubt */
        for (int32_t t = 0; t < n; t++) {
            bslot *s = &b->slots[b->b_seq[t]];
            if (s->state == SLOT_FREE) continue;
            s->n_kv = 0;
            finish_slot(b, s, LAMINA_STOP_ERROR, rc, derr);
        }
        pthread_mutex_lock(&b->mu);
        b->n_steps++;
        pthread_mutex_unlock(&b->mu);
        return ERR(rc, "%s", derr);
    }
    /* 5. the cache now holds the batch's positions (drafts: those kept,
     * counted as they are taken) */
    for (int32_t t = 0; t < n; t++) {
        bslot *s = &b->slots[b->b_seq[t]];
        if (s->n_draft > 0 && b->b_pos[t] > s->draft_pos) continue;
        if (b->b_pos[t] + 1 > s->n_kv) s->n_kv = b->b_pos[t] + 1;
    }
    for (int32_t i = 0; i < b->n_seq; i++) {
        bslot *s = &b->slots[i];
        if (s->state == SLOT_GEN && s->spec_on) lamina_spec_time(&s->spec, n, t_dec);
    }
    /* 5b. embeddings: pool the hidden rows (token order), then finish the
     * requests whose whole prompt is read */
    if (any_hid) {
        int32_t h = 0;
        for (int32_t t = 0; t < n; t++) {
            if (!b->b_hid[t]) continue;
            bslot *s = &b->slots[b->b_seq[t]];
            const float *row = b->hidden + (size_t)h++ * (size_t)b->n_embd;
            if (s->r->embed == LAMINA_POOL_MEAN)
                for (int32_t i = 0; i < b->n_embd; i++) s->pool[i] += row[i];
            else
                for (int32_t i = 0; i < b->n_embd; i++) s->pool[i] = row[i];
        }
        for (int32_t i = 0; i < b->n_seq; i++) {
            bslot *s = &b->slots[i];
            if (s->state != SLOT_PREFILL || !s->r->embed || s->n_kv < s->n_toks) continue;
            double div = s->r->embed == LAMINA_POOL_MEAN ? (double)s->n_toks : 1.0;
            for (int32_t j = 0; j < b->n_embd; j++) b->emb[j] = (float)(s->pool[j] / div);
            s->t_first = lamina_batcher_now();
            finish_slot(b, s, LAMINA_STOP_LENGTH, 0, NULL);
        }
    }
    /* 6. sample every slot's rows (slots in parallel), then stream each */
    sample_rows(b, n_units);
    for (int32_t row = 0; row < n_units; row++) {
        bslot *s = &b->slots[b->row_slot[row]];
        msg[0] = 0;
        int reason = take_token(b, s, msg, sizeof msg);
        if (reason >= 0)
            finish_slot(b, s, reason, reason == LAMINA_STOP_ERROR ? LAMINA_EIO : 0,
                        reason == LAMINA_STOP_ERROR ? msg : NULL);
    }
    double dt = lamina_batcher_now() - t0;
    int shared = 0;                                 /* tokens of two or more sequences? */
    for (int32_t t = 1; t < n && !shared; t++) shared = b->b_seq[t] != b->b_seq[0];
    int64_t kv = 0;                                 /* positions held by running requests */
    for (int32_t i = 0; i < b->n_seq; i++)
        if (b->slots[i].r) kv += b->slots[i].n_kv;
    pthread_mutex_lock(&b->mu);
    b->kv_used = kv;
    b->n_steps++;
    b->n_shared += (uint64_t)shared;
    b->n_decoded += (uint64_t)n;
    b->busy_s += dt;
    b->decode_s += t_dec;
    pthread_mutex_unlock(&b->mu);
    return n;
}

int lamina_batcher_wait(lamina_batcher *b, double timeout_s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double end = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + (timeout_s > 0 ? timeout_s : 0);
    ts.tv_sec = (time_t)end;
    ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&b->mu);
    while (!b->woken && b->n_active == 0 && b->n_queued == 0) {
        if (pthread_cond_timedwait(&b->cv, &b->mu, &ts) == ETIMEDOUT) break;
    }
    int work = b->n_active > 0 || b->n_queued > 0;
    b->woken = 0;
    pthread_mutex_unlock(&b->mu);
    return work;
}

void lamina_batcher_wake(lamina_batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->woken = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void lamina_batcher_stats_get(lamina_batcher *b, lamina_batcher_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&b->mu);
    st->n_slots = b->n_seq;
    st->n_active = b->n_active;
    st->n_queued = b->n_queued;
    st->max_queue = b->max_queue;
    st->n_steps = b->n_steps;
    st->n_decoded = b->n_decoded;
    st->n_finished = b->n_finished;
    st->n_shared = b->n_shared;
    st->n_failovers = b->n_failovers;
    st->busy_s = b->busy_s;
    st->decode_s = b->decode_s;
    st->kv_used = b->n_active ? b->kv_used : 0;
    st->kv_size = (int64_t)b->n_seq * b->n_ctx;
    st->n_drafted = b->n_drafted;
    st->n_accepted = b->n_accepted;
    pthread_mutex_unlock(&b->mu);
}

void lamina_batcher_free(lamina_batcher *b)
{
    if (!b) return;
    if (b->inited) {
        for (int32_t i = 0; i < b->n_seq; i++) {
            bslot *s = &b->slots[i];
            if (s->state != SLOT_FREE) finish_slot(b, s, LAMINA_STOP_CANCEL, LAMINA_ECANCELED, "the server is shutting down");
        }
    }
    double now = lamina_batcher_now();
    breq *r = b->q_head;
    b->q_head = b->q_tail = NULL;
    while (r) {
        breq *next = r->next;
        finish_queued(r, LAMINA_STOP_CANCEL, now);
        r = next;
    }
    if (b->slots)
        for (int32_t i = 0; i < b->n_seq; i++) {
            free(b->slots[i].toks);
            free(b->slots[i].pool);
            lamina_lookup_free(b->slots[i].lk);
        }
    if (b->inited) {
        pthread_mutex_lock(&b->hmu);
        b->helpers_quit = 1;
        pthread_cond_broadcast(&b->hcv);
        pthread_mutex_unlock(&b->hmu);
        for (int i = 0; i < b->n_helpers; i++) pthread_join(b->helpers[i], NULL);
        free(b->helpers);
        pthread_mutex_destroy(&b->hmu);
        pthread_cond_destroy(&b->hcv);
        pthread_cond_destroy(&b->hdone);
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
    }
    free(b->slots);
    free(b->b_tok); free(b->b_pos); free(b->b_seq); free(b->b_want); free(b->b_hid);
    free(b->hidden); free(b->emb);
    free(b->row_slot);
    free(b->logits);
    lamina_gvocab_free(b->gv);
    free(b);
}

void lamina_vec_normalise(float *v, int32_t d)
{
    double ss = 0;
    for (int32_t i = 0; i < d; i++) ss += (double)v[i] * v[i];
    if (ss <= 0) return;
    const double k = 1.0 / sqrt(ss);
    for (int32_t i = 0; i < d; i++) v[i] = (float)(v[i] * k);
}
