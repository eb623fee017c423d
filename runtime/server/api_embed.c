/*
 * api_embed.c - embeddings: Ollama's POST /api/embed and legacy
 * POST /api/embeddings, OpenAI's POST /v1/embeddings; and reranking,
 * POST /v1/rerank (/rerank, /v1/reranking, /reranking) as llama-server,
 * Jina and Cohere clients send it: each document's prompt (the file's
 * tokenizer.chat_template.rerank with {query} and {document}; without
 * one the pair as llama-server frames it, e.g. [CLS] query [SEP]
 * document [SEP] for BERT: lamina_tokenizer_encode_pair; token types all
 * 0, as llama.cpp) is read like an embedding input, and the classifier
 * head scores the hidden state of the last token (decoders) or of the
 * first, [CLS] (encoders) (lamina_model_classify: for Qwen3 rerankers the
 * softmax of yes/no, for BERT cross-encoders the raw logit after the
 * tanh pooler, as llama.cpp); a document whose prompt does not fit the
 * context is a 400 naming it (llama-server refuses it too); results by
 * score, top_n of them, with the document when return_documents.
 *
 * Every input of a request becomes one embedding request of the model's
 * batcher (lamina_batcher_request.embed): the inputs are read in the same
 * decode steps as each other and as every other request of the model
 * (generations included), one sequence slot each, as many at once as
 * there are free slots; the rest wait in the batcher's queue (when it is
 * full, the request waits for its own inputs to finish before submitting
 * more).  The vector is the final hidden state after the output norm (the
 * input of the vocabulary projection, which is skipped), pooled as the
 * file's <arch>.pooling_type says: mean (1) or last token (3), and for
 * encoders (bert: no output norm, the last layer's LayerNorm is the end)
 * also cls (2, the first token, [CLS]); decoder models without the key
 * use the last token, as llama.cpp and Ollama do for them.  Pooling "none"
 * (0), "rank" (4), "cls" on a decoder and an encoder without the key give
 * no single vector per input here: 400.  An encoder reads each input
 * whole in one decode step: an input longer than the batch is a 400.
 *
 * Normalisation, as Ollama and OpenAI do: /api/embed and /v1/embeddings
 * return unit-length (L2) vectors; with "dimensions" N the vector is cut
 * to its first N values and normalised again.  The legacy /api/embeddings
 * returns the pooled vector as it is, not normalised (Ollama's legacy
 * handler passes the runner's vector through unchanged).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server.h"

#define NS(s) ((json_int_t)((s) * 1e9))

/* ------------------------------------------------------------------ */
/* Running the inputs through the batcher                             */

typedef struct emb_run {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    size_t   n, n_done;
    int32_t  n_embd;
    float   *out;                 /* [n * n_embd] */
    int      stop_reason;         /* of the first input that failed, -1 none */
    int      status;
    char     msg[256];
    srv     *s;
} emb_run;

typedef struct emb_item {
    emb_run *run;
    size_t   i;
    uint64_t id;
    int      submitted, finished;
} emb_item;

static void on_emb_done(void *ctx, const lamina_batcher_result *res)
{
    emb_item *it = ctx;
    emb_run *run = it->run;
    pthread_mutex_lock(&run->mu);
    if (res->embedding && res->n_embd == run->n_embd) {
        memcpy(run->out + it->i * (size_t)run->n_embd, res->embedding, (size_t)run->n_embd * sizeof(float));
    } else if (run->stop_reason < 0) {
        run->stop_reason = res->stop_reason == LAMINA_STOP_LENGTH ? LAMINA_STOP_ERROR : res->stop_reason;
        run->status = res->status ? res->status : LAMINA_EIO;
        snprintf(run->msg, sizeof run->msg, "%s", res->msg[0] ? res->msg : "no embedding came back");
    }
    it->finished = 1;
    run->n_done++;
    pthread_cond_broadcast(&run->cv);
    pthread_mutex_unlock(&run->mu);
}

static void cancel_all(srv *s, srv_model *m, emb_item *items, size_t n)
{
    pthread_mutex_lock(&s->pool_mu);
    for (size_t i = 0; i < n; i++)
        if (items[i].submitted && !items[i].finished && m->b) lamina_batcher_cancel(m->b, items[i].id);
    pthread_mutex_unlock(&s->pool_mu);
}

static void tick(emb_run *run)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_cond_timedwait(&run->cv, &run->mu, &ts);
}

/* Embed n token lists with model m; out gets n rows of n_embd raw pooled
 * floats.  Returns 0, or < 0 with *http and the message. */
static int embed_run(srv_call *c, srv_model *m, lamina_token *const *toks, const int32_t *ntok, size_t n,
                     int pool, float *out, int *http, char *err, size_t es)
{
    srv *s = c->s;
    emb_run run;
    memset(&run, 0, sizeof run);
    pthread_mutex_init(&run.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&run.cv, &ca);
    pthread_condattr_destroy(&ca);
    run.n = n;
    run.n_embd = m->model->hp.n_embd;
    run.out = out;
    run.stop_reason = -1;
    run.s = s;
    emb_item *items = calloc(n, sizeof *items);
    if (!items) {
        pthread_mutex_destroy(&run.mu);
        pthread_cond_destroy(&run.cv);
        *http = 500;
        snprintf(err, es, "out of memory");
        return LAMINA_ENOMEM;
    }
    double deadline = s->set.request_timeout > 0 ? c->t_recv + s->set.request_timeout : 0;
    size_t next = 0;
    int fail = 0, cancelled = 0;
    char serr[512] = "";
    for (;;) {
        /* submit what the queue takes */
        while (next < n && !fail && !cancelled) {
            lamina_batcher_request rq;
            memset(&rq, 0, sizeof rq);
            lamina_sampler_params_default(&rq.sampling);
            rq.prompt = toks[next];
            rq.n_prompt = (size_t)ntok[next];
            rq.max_tokens = 0;
            rq.deadline = deadline;
            rq.embed = pool;
            rq.done = on_emb_done;
            items[next].run = &run;
            items[next].i = next;
            rq.ctx = &items[next];
            pthread_mutex_lock(&s->pool_mu);
            int rc = m->b ? lamina_batcher_submit(m->b, &rq, &items[next].id, serr, sizeof serr) : LAMINA_ECANCELED;
            if (rc == 0) items[next].submitted = 1;
            pthread_mutex_unlock(&s->pool_mu);
            if (rc == 0) { next++; continue; }
            pthread_mutex_lock(&run.mu);
            size_t mine = next - run.n_done;          /* of ours still in the batcher */
            pthread_mutex_unlock(&run.mu);
            if (rc == LAMINA_EREJECTED && mine > 0) break;   /* room comes when ours finish */
            fail = rc;
            if (rc == LAMINA_ECANCELED) snprintf(serr, sizeof serr, "the server is shutting down");
            if (rc == LAMINA_EREJECTED) srv_metrics_event(s->metrics, "queue_full");
            cancel_all(s, m, items, n);
        }
        pthread_mutex_lock(&run.mu);
        size_t submitted = next;
        if (run.n_done == submitted && (next == n || fail || cancelled)) {
            pthread_mutex_unlock(&run.mu);
            break;
        }
        tick(&run);
        int closed = !cancelled && run.n_done < submitted && srv_peer_closed(c->fd);
        int failed = run.stop_reason >= 0 && !cancelled && !fail;
        pthread_mutex_unlock(&run.mu);
        if (closed || failed) {               /* the client left, or an input failed: drop the rest */
            cancelled = 1;
            cancel_all(s, m, items, n);
        }
    }
    free(items);
    pthread_mutex_destroy(&run.mu);
    pthread_cond_destroy(&run.cv);
    if (fail) {
        *http = fail == LAMINA_EREJECTED || fail == LAMINA_ECANCELED ? 503 : fail == LAMINA_ENOMEM ? 500 : 400;
        snprintf(err, es, "%s", serr);
        return fail;
    }
    if (run.stop_reason >= 0) {
        switch (run.stop_reason) {
        case LAMINA_STOP_TIMEOUT:
            *http = 504;
            snprintf(err, es, "%s (the limit is %g s: [server] request_timeout)", run.msg, s->set.request_timeout);
            srv_metrics_event(s->metrics, "timeout");
            break;
        case LAMINA_STOP_CANCEL:
            *http = 503;
            snprintf(err, es, "%s", run.msg);
            srv_metrics_event(s->metrics, "cancelled");
            break;
        default:
            *http = 500;
            snprintf(err, es, "embedding failed: %s", run.msg);
            break;
        }
        return run.status < 0 ? run.status : LAMINA_EIO;
    }
    if (cancelled) {
        *http = 503;
        snprintf(err, es, "the client closed the connection");
        srv_metrics_event(s->metrics, "cancelled");
        return LAMINA_ECANCELED;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Shared pieces                                                      */

static json_t *float_list(const float *v, int32_t d)
{
    json_t *a = json_array();
    for (int32_t i = 0; a && i < d; i++) json_array_append_new(a, json_real((double)v[i]));
    return a;
}

/* base64 (RFC 4648, padded) of the little-endian float32 bytes: OpenAI's
 * encoding_format "base64".  Nothing lamina links exports an encoder. */
static json_t *float_b64(const float *v, int32_t d)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t nb = (size_t)d * 4;
    unsigned char *bytes = malloc(nb + 1);
    char *outs = malloc((nb + 2) / 3 * 4 + 1);
    json_t *j = NULL;
    if (bytes && outs) {
        for (int32_t i = 0; i < d; i++) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            bytes[4 * i] = (unsigned char)u;
            bytes[4 * i + 1] = (unsigned char)(u >> 8);
            bytes[4 * i + 2] = (unsigned char)(u >> 16);
            bytes[4 * i + 3] = (unsigned char)(u >> 24);
        }
        size_t o = 0;
        for (size_t i = 0; i < nb; i += 3) {
            uint32_t w = (uint32_t)bytes[i] << 16;
            if (i + 1 < nb) w |= (uint32_t)bytes[i + 1] << 8;
            if (i + 2 < nb) w |= bytes[i + 2];
            outs[o++] = tab[(w >> 18) & 63];
            outs[o++] = tab[(w >> 12) & 63];
            outs[o++] = i + 1 < nb ? tab[(w >> 6) & 63] : '=';
            outs[o++] = i + 2 < nb ? tab[w & 63] : '=';
        }
        outs[o] = 0;
        j = json_string(outs);
    }
    free(bytes);
    free(outs);
    return j;
}

typedef struct emb_inputs {
    lamina_token **toks;
    int32_t *n;
    size_t   count;
    int64_t  total;               /* tokens over all inputs */
} emb_inputs;

static void inputs_free(emb_inputs *in)
{
    for (size_t i = 0; i < in->count; i++) free(in->toks[i]);
    free(in->toks);
    free(in->n);
    memset(in, 0, sizeof *in);
}

static int inputs_alloc(emb_inputs *in, size_t n)
{
    in->toks = calloc(n + 1, sizeof *in->toks);
    in->n = calloc(n + 1, sizeof *in->n);
    in->count = n;
    return in->toks && in->n ? 0 : -1;
}

/* Tokenize input i's text. */
static int input_text(emb_inputs *in, size_t i, const srv_model *m, const char *text, char *err, size_t es)
{
    size_t nt = 0;
    int rc = lamina_tokenizer_encode(m->tok, text, strlen(text),
                                     LAMINA_TOKENIZE_ADD_SPECIAL | LAMINA_TOKENIZE_PARSE_SPECIAL,
                                     &in->toks[i], &nt, err, es);
    if (rc < 0) return rc;
    in->n[i] = nt > INT32_MAX ? INT32_MAX : (int32_t)nt;
    return 0;
}

/* Fit each input to `limit` positions of model m: cut (truncate) or
 * refuse naming the field; refuse inputs with no tokens.  Sums the tokens.
 * (An encoder's batch holds a whole context: pool.c's batch_tokens.) */
static int inputs_fit(emb_inputs *in, int32_t limit, int truncate, const char *field, int many,
                      char *err, size_t es)
{
    in->total = 0;
    for (size_t i = 0; i < in->count; i++) {
        char name[64];
        if (many) snprintf(name, sizeof name, "%s[%zu]", field, i);
        else snprintf(name, sizeof name, "%s", field);
        if (in->n[i] == 0) { snprintf(err, es, "%s: the input is empty", name); return -1; }
        if (in->n[i] > limit) {
            if (!truncate) {
                snprintf(err, es, "%s: the input has %d tokens, more than the context length of %d%s", name,
                         in->n[i], limit, strcmp(field, "input") ? "" : " (set \"truncate\": true to cut it)");
                return -1;
            }
            in->n[i] = limit;
        }
        in->total += in->n[i];
    }
    return 0;
}

/* The context an input may fill: the slot's, or options.num_ctx when smaller. */
static int32_t ctx_limit(const srv_model *m, int32_t num_ctx)
{
    const lamina_engine_params *ep = lamina_engine_params_get(m->eng);
    int32_t n = lamina_model_embed_ctx(m->model, ep->n_ctx, ep->n_batch);
    return num_ctx > 0 && num_ctx < n ? num_ctx : n;
}

/* ------------------------------------------------------------------ */
/* POST /api/embed and POST /api/embeddings                           */

static int ollama_model(srv_call *c, const char **name, char *err, size_t es)
{
    *name = NULL;
    int r = srv_json_str(c->body, "model", name, err, es);
    if (r == 0) r = srv_json_str(c->body, "name", name, err, es);
    if (r < 0) return -1;
    if (r == 0 || !**name) { snprintf(err, es, "model is required"); return -1; }
    return 0;
}

static int ollama_embed(srv_call *c, int legacy)
{
    char err[512];
    srv_gen_opts o;
    srv_gen_opts_defaults(&o, c->s);
    json_t *b = c->body;
    const char *model;
    int truncate = 1;
    int64_t dims = 0;
    int r;
    if (ollama_model(c, &model, err, sizeof err) < 0 ||
        srv_json_duration(b, "keep_alive", &o.keep_alive, err, sizeof err) < 0 ||
        srv_parse_options(json_object_get(b, "options"), &o, err, sizeof err) < 0)
        goto bad;
    if (!legacy) {
        if (srv_json_bool(b, "truncate", &truncate, err, sizeof err) < 0) goto bad;
        if ((r = srv_json_int(b, "dimensions", 0, INT32_MAX, &dims, err, sizeof err)) < 0) goto bad;
    }
    /* the inputs: /api/embed "input" (a string or a list of strings),
     * /api/embeddings "prompt" (a string) */
    const char *one = NULL;
    json_t *list = NULL;
    if (legacy) {
        if (srv_json_str(b, "prompt", &one, err, sizeof err) < 0) goto bad;
        if (one && !*one) one = NULL;
    } else {
        json_t *in = json_object_get(b, "input");
        if (in && json_is_string(in)) {
            one = *json_string_value(in) ? json_string_value(in) : NULL;
        } else if (in && json_is_array(in)) {
            list = in;
            for (size_t i = 0; i < json_array_size(in); i++)
                if (!json_is_string(json_array_get(in, i))) {
                    snprintf(err, sizeof err, "input[%zu]: expected a string", i);
                    goto bad;
                }
        } else if (in && !json_is_null(in)) {
            snprintf(err, sizeof err, "input: expected a string or an array of strings");
            goto bad;
        }
    }
    size_t n = list ? json_array_size(list) : one ? 1 : 0;

    srv_model *m;
    double load_s;
    int http;
    if (srv_pool_acquire(c->s, model, &m, &load_s, &http, err, sizeof err) < 0) {
        srv_gen_opts_clear(&o);
        return srv_model_error(c, http, err);
    }
    if (n == 0) {
        /* as Ollama: no input loads the model and answers no vectors */
        json_t *j = legacy ? json_pack("{s:[]}", "embedding")
                           : json_pack("{s:s, s:[]}", "model", m->name, "embeddings");
        if (!legacy) {
            json_object_set_new(j, "total_duration", json_integer(NS(srv_now() - c->t_recv)));
            json_object_set_new(j, "load_duration", json_integer(NS(load_s)));
            json_object_set_new(j, "prompt_eval_count", json_integer(0));
        }
        srv_pool_release(c->s, m, o.keep_alive);
        srv_gen_opts_clear(&o);
        return srv_reply_json(c, 200, j);
    }
    int pool = lamina_model_embed_pooling(m->model, m->name, err, sizeof err);
    emb_inputs in;
    memset(&in, 0, sizeof in);
    float *vec = NULL;
    if (pool < 0) goto bad_model;
    if (inputs_alloc(&in, n) < 0) { snprintf(err, sizeof err, "out of memory"); http = 500; goto fail_model; }
    for (size_t i = 0; i < n; i++) {
        const char *t = list ? json_string_value(json_array_get(list, i)) : one;
        if (input_text(&in, i, m, t, err, sizeof err) < 0) { http = 500; goto fail_model; }
    }
    if (inputs_fit(&in, ctx_limit(m, o.num_ctx), truncate, legacy ? "prompt" : "input", list != NULL,
                   err, sizeof err) < 0)
        goto bad_model;
    const int32_t E = m->model->hp.n_embd;
    vec = malloc(n * (size_t)E * sizeof *vec);
    if (!vec) { snprintf(err, sizeof err, "out of memory"); http = 500; goto fail_model; }
    if (embed_run(c, m, in.toks, in.n, n, pool, vec, &http, err, sizeof err) < 0) {
        if (http == 503) c->retry_after = 1;
        goto fail_model;
    }
    srv_metrics_tokens(c->s->metrics, m->name, in.total, 0);
    json_t *j;
    if (legacy) {
        j = json_pack("{s:o}", "embedding", float_list(vec, E));
    } else {
        json_t *all = json_array();
        int32_t d = dims > 0 && dims < E ? (int32_t)dims : E;
        for (size_t i = 0; i < n; i++) {
            float *v = vec + i * (size_t)E;
            lamina_vec_normalise(v, E);
            if (d < E) lamina_vec_normalise(v, d);
            json_array_append_new(all, float_list(v, d));
        }
        j = json_pack("{s:s, s:o}", "model", m->name, "embeddings", all);
        json_object_set_new(j, "total_duration", json_integer(NS(srv_now() - c->t_recv)));
        json_object_set_new(j, "load_duration", json_integer(NS(load_s)));
        json_object_set_new(j, "prompt_eval_count", json_integer(in.total));
    }
    snprintf(c->log, sizeof c->log, "%s %zu inputs %lld tokens", m->name, n, (long long)in.total);
    free(vec);
    inputs_free(&in);
    srv_pool_release(c->s, m, o.keep_alive);
    srv_gen_opts_clear(&o);
    return srv_reply_json(c, 200, j);
bad_model:
    http = 400;
fail_model:
    free(vec);
    inputs_free(&in);
    srv_pool_release(c->s, m, o.keep_alive);
    srv_gen_opts_clear(&o);
    return srv_reply_error(c, http, "%s", err);
bad:
    srv_gen_opts_clear(&o);
    return srv_reply_error(c, 400, "%s", err);
}

int srv_api_embed(srv_call *c) { return ollama_embed(c, 0); }
int srv_api_embeddings(srv_call *c) { return ollama_embed(c, 1); }

/* ------------------------------------------------------------------ */
/* POST /v1/embeddings                                                */

/* A list of token ids into input i; -1 with the message naming `name`. */
static int input_ids(emb_inputs *in, size_t i, json_t *a, const char *name, int32_t n_vocab,
                     char *err, size_t es)
{
    size_t k = json_array_size(a);
    in->toks[i] = malloc((k + 1) * sizeof *in->toks[i]);
    if (!in->toks[i]) { snprintf(err, es, "out of memory"); return -1; }
    for (size_t t = 0; t < k; t++) {
        json_t *e = json_array_get(a, t);
        if (!json_is_integer(e)) { snprintf(err, es, "%s[%zu]: expected a token id (an integer)", name, t); return -1; }
        json_int_t v = json_integer_value(e);
        if (v < 0 || v >= n_vocab) {
            snprintf(err, es, "%s[%zu]: token %lld is outside the vocabulary (%d)", name, t, (long long)v, n_vocab);
            return -1;
        }
        in->toks[i][t] = (lamina_token)v;
    }
    in->n[i] = (int32_t)k;
    return 0;
}

int srv_oai_embeddings(srv_call *c)
{
    char err[512];
    json_t *b = c->body;
    const char *model = NULL, *fmt = NULL;
    int64_t dims = 0;
    int r;
    if ((r = srv_json_str(b, "model", &model, err, sizeof err)) < 0) goto bad;
    if (r == 0 || !*model) { snprintf(err, sizeof err, "model: required"); goto bad; }
    if (srv_json_str(b, "encoding_format", &fmt, err, sizeof err) < 0) goto bad;
    int b64 = 0;
    if (fmt && !strcmp(fmt, "base64")) b64 = 1;
    else if (fmt && strcmp(fmt, "float")) {
        snprintf(err, sizeof err, "encoding_format: expected 'float' or 'base64', got '%.40s'", fmt);
        goto bad;
    }
    if ((r = srv_json_int(b, "dimensions", 1, INT32_MAX, &dims, err, sizeof err)) < 0) goto bad;
    const char *user = NULL;
    if (srv_json_str(b, "user", &user, err, sizeof err) < 0) goto bad;
    /* input: a string, strings, token ids, or lists of token ids */
    json_t *in = json_object_get(b, "input");
    enum { ONE_TEXT, TEXTS, ONE_IDS, IDS } kind;
    if (!in || json_is_null(in)) { snprintf(err, sizeof err, "input: required"); goto bad; }
    if (json_is_string(in)) {
        kind = ONE_TEXT;
        if (!*json_string_value(in)) { snprintf(err, sizeof err, "input: the string is empty"); goto bad; }
    } else if (json_is_array(in)) {
        size_t k = json_array_size(in);
        if (k == 0) { snprintf(err, sizeof err, "input: the list is empty"); goto bad; }
        if (k > 2048) { snprintf(err, sizeof err, "input: at most 2048 inputs, got %zu", k); goto bad; }
        json_t *e0 = json_array_get(in, 0);
        kind = json_is_string(e0) ? TEXTS : json_is_integer(e0) ? ONE_IDS : json_is_array(e0) ? IDS : ONE_TEXT;
        if (kind == ONE_TEXT) {
            snprintf(err, sizeof err, "input[0]: expected a string, a token id or an array of token ids");
            goto bad;
        }
        for (size_t i = 0; i < k; i++) {
            json_t *e = json_array_get(in, i);
            if (kind == TEXTS && !json_is_string(e)) { snprintf(err, sizeof err, "input[%zu]: expected a string (input is a list of strings)", i); goto bad; }
            if (kind == TEXTS && !*json_string_value(e)) { snprintf(err, sizeof err, "input[%zu]: the string is empty", i); goto bad; }
            if (kind == ONE_IDS && !json_is_integer(e)) { snprintf(err, sizeof err, "input[%zu]: expected a token id (input is a list of token ids)", i); goto bad; }
            if (kind == IDS && !json_is_array(e)) { snprintf(err, sizeof err, "input[%zu]: expected an array of token ids (input is a list of lists)", i); goto bad; }
            if (kind == IDS && json_array_size(e) == 0) { snprintf(err, sizeof err, "input[%zu]: the list of token ids is empty", i); goto bad; }
        }
    } else {
        snprintf(err, sizeof err, "input: expected a string, an array of strings, an array of token ids or an array of arrays of token ids");
        goto bad;
    }
    size_t n = kind == TEXTS || kind == IDS ? json_array_size(in) : 1;

    srv_model *m;
    double load_s;
    int http;
    if (srv_pool_acquire(c->s, model, &m, &load_s, &http, err, sizeof err) < 0)
        return srv_model_error(c, http, err);
    double keep = c->s->set.keep_alive;
    emb_inputs inp;
    memset(&inp, 0, sizeof inp);
    float *vec = NULL;
    json_t *j = NULL;
    const int32_t E = m->model->hp.n_embd;
    int pool = lamina_model_embed_pooling(m->model, m->name, err, sizeof err);
    if (pool < 0) goto bad_model;
    if (dims > E) {
        snprintf(err, sizeof err, "dimensions: model '%s' has %d dimensions, got %lld", m->name, E, (long long)dims);
        goto bad_model;
    }
    if (inputs_alloc(&inp, n) < 0) { snprintf(err, sizeof err, "out of memory"); http = 500; goto fail_model; }
    for (size_t i = 0; i < n; i++) {
        char name[48];
        snprintf(name, sizeof name, "input[%zu]", i);
        if (kind == ONE_TEXT) r = input_text(&inp, i, m, json_string_value(in), err, sizeof err);
        else if (kind == TEXTS) r = input_text(&inp, i, m, json_string_value(json_array_get(in, i)), err, sizeof err);
        else if (kind == ONE_IDS) r = input_ids(&inp, i, in, "input", lamina_tokenizer_n_vocab(m->tok), err, sizeof err);
        else r = input_ids(&inp, i, json_array_get(in, i), name, lamina_tokenizer_n_vocab(m->tok), err, sizeof err);
        if (r < 0) goto bad_model;
    }
    if (inputs_fit(&inp, ctx_limit(m, 0), 0, "input", kind == TEXTS || kind == IDS, err, sizeof err) < 0)
        goto bad_model;
    vec = malloc(n * (size_t)E * sizeof *vec);
    if (!vec) { snprintf(err, sizeof err, "out of memory"); http = 500; goto fail_model; }
    if (embed_run(c, m, inp.toks, inp.n, n, pool, vec, &http, err, sizeof err) < 0) {
        if (http == 503) c->retry_after = 1;
        goto fail_model;
    }
    srv_metrics_tokens(c->s->metrics, m->name, inp.total, 0);
    int32_t d = dims > 0 ? (int32_t)dims : E;
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
        float *v = vec + i * (size_t)E;
        lamina_vec_normalise(v, E);
        if (d < E) lamina_vec_normalise(v, d);
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index", (json_int_t)i,
                                              "embedding", b64 ? float_b64(v, d) : float_list(v, d)));
    }
    j = json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data, "model", m->name,
                  "usage", "prompt_tokens", (json_int_t)inp.total, "total_tokens", (json_int_t)inp.total);
    snprintf(c->log, sizeof c->log, "%s %zu inputs %lld tokens", m->name, n, (long long)inp.total);
    goto done;
bad_model:
    http = 400;
fail_model:
done:
    free(vec);
    inputs_free(&inp);
    srv_pool_release(c->s, m, keep);
    return j ? srv_reply_json(c, 200, j) : srv_reply_error(c, http, "%s", err);
bad:
    return srv_reply_error(c, 400, "%s", err);
}

/* ------------------------------------------------------------------ */
/* POST /v1/rerank, /rerank (llama-server, Jina and Cohere shape)     */

/* A document: a string or {"text": string}. */
static const char *doc_text(json_t *d)
{
    if (json_is_string(d)) return json_string_value(d);
    json_t *t = json_is_object(d) ? json_object_get(d, "text") : NULL;
    return json_is_string(t) ? json_string_value(t) : NULL;
}

/* The rerank prompt: the file's template with {query} and {document}
 * replaced (every occurrence), malloc'd. */
static char *rerank_prompt(const char *tmpl, size_t tl, const char *query, const char *doc)
{
    size_t ql = strlen(query), dl = strlen(doc), cap = tl + 1, n = 0;
    for (size_t i = 0; i < tl; i++) {
        if (!strncmp(tmpl + i, "{query}", 7)) cap += ql;
        else if (!strncmp(tmpl + i, "{document}", 10)) cap += dl;
    }
    char *p = malloc(cap);
    if (!p) return NULL;
    for (size_t i = 0; i < tl;) {
        if (i + 7 <= tl && !strncmp(tmpl + i, "{query}", 7)) { memcpy(p + n, query, ql); n += ql; i += 7; }
        else if (i + 10 <= tl && !strncmp(tmpl + i, "{document}", 10)) { memcpy(p + n, doc, dl); n += dl; i += 10; }
        else p[n++] = tmpl[i++];
    }
    p[n] = 0;
    return p;
}

typedef struct rank_item { size_t index; float score; } rank_item;

static int cmp_rank(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : x->index < y->index ? -1 : x->index > y->index;
}

int srv_rerank(srv_call *c)
{
    char err[512];
    json_t *b = c->body;
    const char *model = NULL, *query = NULL;
    int64_t top_n = 0;
    int ret_docs = 0, r;
    if ((r = srv_json_str(b, "model", &model, err, sizeof err)) < 0) goto bad;
    if (r == 0 || !*model) { snprintf(err, sizeof err, "model: required"); goto bad; }
    if (srv_json_str(b, "query", &query, err, sizeof err) < 0) goto bad;
    if (!query || !*query) { snprintf(err, sizeof err, "query: expected a non-empty string"); goto bad; }
    if (srv_json_int(b, "top_n", 1, INT32_MAX, &top_n, err, sizeof err) < 0) goto bad;
    if (srv_json_bool(b, "return_documents", &ret_docs, err, sizeof err) < 0) goto bad;
    json_t *docs = json_object_get(b, "documents");
    if (!docs) docs = json_object_get(b, "texts");   /* TEI's name */
    if (!json_is_array(docs) || json_array_size(docs) == 0) {
        snprintf(err, sizeof err, "documents: expected a non-empty array of strings");
        goto bad;
    }
    size_t n = json_array_size(docs);
    if (n > 2048) { snprintf(err, sizeof err, "documents: at most 2048, got %zu", n); goto bad; }
    for (size_t i = 0; i < n; i++)
        if (!doc_text(json_array_get(docs, i))) {
            snprintf(err, sizeof err, "documents[%zu]: expected a string or {\"text\": string}", i);
            goto bad;
        }

    srv_model *m;
    double load_s;
    int http;
    if (srv_pool_acquire(c->s, model, &m, &load_s, &http, err, sizeof err) < 0)
        return srv_model_error(c, http, err);
    double keep = c->s->set.keep_alive;
    emb_inputs inp;
    memset(&inp, 0, sizeof inp);
    float *vec = NULL;
    json_t *j = NULL;
    rank_item *items = NULL;
    const int32_t E = m->model->hp.n_embd;
    const char *tmpl = NULL;
    size_t tl = 0;
    if (!m->model->cls_out) {
        snprintf(err, sizeof err, "model '%s' is not a reranker: it has no classifier head (cls.output.weight; "
                 "%s.pooling_type 4)", m->name, m->model->hp.arch_name);
        goto bad_model;
    }
    if (lamina_gguf_get_str(m->model->gguf, "tokenizer.chat_template.rerank", &tmpl, &tl, NULL, 0) < 0) tmpl = NULL;
    if (inputs_alloc(&inp, n) < 0) { snprintf(err, sizeof err, "out of memory"); http = 500; goto fail_model; }
    for (size_t i = 0; i < n; i++) {
        const char *d = doc_text(json_array_get(docs, i));
        size_t nt = 0;
        if (tmpl) {          /* the file's prompt, special tokens parsed */
            char *p = rerank_prompt(tmpl, tl, query, d);
            r = p ? lamina_tokenizer_encode(m->tok, p, strlen(p), LAMINA_TOKENIZE_PARSE_SPECIAL, &inp.toks[i], &nt,
                                            err, sizeof err)
                  : LAMINA_ENOMEM;
            free(p);
        } else {             /* the pair: [CLS] query [SEP] document [SEP] and the like */
            r = lamina_tokenizer_encode_pair(m->tok, query, strlen(query), d, strlen(d), &inp.toks[i], &nt, NULL,
                                             err, sizeof err);
        }
        if (r < 0) { if (r == LAMINA_ENOMEM) snprintf(err, sizeof err, "out of memory"); http = 500; goto fail_model; }
        inp.n[i] = nt > INT32_MAX ? INT32_MAX : (int32_t)nt;
    }
    if (inputs_fit(&inp, ctx_limit(m, 0), 0, "documents", 1, err, sizeof err) < 0) goto bad_model;
    vec = malloc(n * (size_t)E * sizeof *vec);
    items = calloc(n, sizeof *items);
    float *cls = malloc((size_t)m->model->hp.n_cls_out * sizeof *cls);
    if (!vec || !items || !cls) { free(cls); snprintf(err, sizeof err, "out of memory"); http = 500; goto fail_model; }
    if (embed_run(c, m, inp.toks, inp.n, n, lamina_model_rank_pooling(m->model), vec, &http, err, sizeof err) < 0) {
        free(cls);
        if (http == 503) c->retry_after = 1;
        goto fail_model;
    }
    for (size_t i = 0; i < n; i++) {
        if (lamina_model_classify(m->model, vec + i * (size_t)E, cls) < 0) {
            free(cls);
            snprintf(err, sizeof err, "out of memory");
            http = 500;
            goto fail_model;
        }
        items[i] = (rank_item){ i, cls[0] };
    }
    free(cls);
    srv_metrics_tokens(c->s->metrics, m->name, inp.total, 0);
    qsort(items, n, sizeof *items, cmp_rank);
    size_t k = top_n > 0 && (size_t)top_n < n ? (size_t)top_n : n;
    json_t *res = json_array();
    for (size_t i = 0; i < k; i++) {
        json_t *e = json_pack("{s:I, s:f}", "index", (json_int_t)items[i].index, "relevance_score",
                              (double)items[i].score);
        if (ret_docs)
            json_object_set_new(e, "document", json_pack("{s:s}", "text", doc_text(json_array_get(docs, items[i].index))));
        json_array_append_new(res, e);
    }
    j = json_pack("{s:s, s:s, s:o, s:{s:I, s:I}}", "model", m->name, "object", "list", "results", res,
                  "usage", "prompt_tokens", (json_int_t)inp.total, "total_tokens", (json_int_t)inp.total);
    snprintf(c->log, sizeof c->log, "%s %zu documents %lld tokens", m->name, n, (long long)inp.total);
    goto done;
bad_model:
    http = 400;
fail_model:
done:
    free(vec);
    free(items);
    inputs_free(&inp);
    srv_pool_release(c->s, m, keep);
    return j ? srv_reply_json(c, 200, j) : srv_reply_error(c, http, "%s", err);
bad:
    return srv_reply_error(c, 400, "%s", err);
}
