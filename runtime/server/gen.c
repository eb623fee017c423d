/*
 * gen.c - one generation request between an HTTP connection thread and a
 * model's batcher.
 *
 * The batcher's callbacks (on the model's worker thread) append text and
 * finally mark the request done; the connection thread takes text as it
 * comes (streaming) or waits for the end.  The connection thread owns the
 * request: srv_req_put cancels it if needed, waits for the batcher's done
 * callback (at most one decode step away), releases the model and frees.
 * While waiting it polls the client socket: a peer that closed its end
 * cancels the request, which frees its slot at the next step.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server.h"

void srv_gen_opts_defaults(srv_gen_opts *o, const srv *s)
{
    memset(o, 0, sizeof *o);
    lamina_sampler_params_default(&o->sp);
    o->sp.temperature = s->cfg.temperature;
    o->sp.top_k = s->cfg.top_k;
    o->sp.top_p = s->cfg.top_p;
    o->sp.min_p = s->cfg.min_p;
    o->sp.repeat_penalty = s->cfg.repeat_penalty;
    o->sp.repeat_last_n = s->cfg.repeat_last_n;
    if (s->cfg.seed >= 0) o->sp.seed = (uint64_t)s->cfg.seed;
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        static uint64_t counter;
        o->sp.seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                     (__atomic_add_fetch(&counter, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED));
    }
    o->max_tokens = s->cfg.max_tokens;
    o->keep_alive = s->set.keep_alive;
    o->logprobs = -1;
    o->n_choices = 1;
}

void srv_gen_opts_clear(srv_gen_opts *o)
{
    for (int i = 0; i < o->n_stop; i++) free(o->stop[i]);
    o->n_stop = 0;
    lamina_grammar_unref(o->grammar);
    o->grammar = NULL;
}

int srv_parse_format(json_t *schema, const char *what, srv_gen_opts *o, char *err, size_t err_size)
{
    char e[400];
    lamina_grammar *g = NULL;
    int rc = lamina_grammar_compile(schema, &g, e, sizeof e);
    if (rc < 0) {
        snprintf(err, err_size, "%s schema: %s", what, e);
        return -1;
    }
    lamina_grammar_unref(o->grammar);
    o->grammar = g;
    return 0;
}

int srv_parse_grammar(json_t *gbnf, const char *what, srv_gen_opts *o, char *err, size_t err_size)
{
    if (!gbnf || json_is_null(gbnf) || (json_is_string(gbnf) && !*json_string_value(gbnf))) return 0;
    if (!json_is_string(gbnf)) {
        snprintf(err, err_size, "%s: expected a GBNF grammar as a string", what);
        return -1;
    }
    if (o->grammar) {
        snprintf(err, err_size, "%s: a grammar and a JSON schema (format, response_format) cannot both be given; "
                 "give one or the other", what);
        return -1;
    }
    char e[400];
    lamina_grammar *g = NULL;
    if (lamina_grammar_compile_gbnf(json_string_value(gbnf), json_string_length(gbnf), &g, e, sizeof e) < 0) {
        snprintf(err, err_size, "%s: %s", what, e);
        return -1;
    }
    o->grammar = g;
    return 0;
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *n = realloc(*p, c);
    if (!n) return -1;
    *p = n;
    *cap = c;
    return 0;
}

/* ---- batcher side (the model's worker thread) ---- */

static int on_text(void *ctx, const char *text, size_t len)
{
    srv_req *r = ctx;
    pthread_mutex_lock(&r->mu);
    int stop = r->cancelled;
    if (!stop && grow(&r->out, &r->out_cap, r->out_n + len) == 0) {
        memcpy(r->out + r->out_n, text, len);
        r->out_n += len;
    }
    if (!stop && r->keep_all && grow(&r->all, &r->all_cap, r->all_n + len + 1) == 0) {
        memcpy(r->all + r->all_n, text, len);
        r->all_n += len;
        r->all[r->all_n] = 0;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return stop;
}

static void on_token(void *ctx, lamina_token tok, double since_prev)
{
    srv_req *r = ctx;
    (void)tok;
    double now = srv_now();
    if (r->n_tokcb++ == 0) {
        r->first_tok = now;
        srv_metrics_ttft(r->s->metrics, now - r->t_recv);
    } else {
        srv_metrics_token_latency(r->s->metrics, since_prev);
    }
}

/* {id, token, logprob, bytes} of one token (id as llama-server adds it) */
static json_t *lp_entry(const lamina_tokenizer *tok, lamina_token t, float lp)
{
    size_t n;
    const char *p = lamina_tokenizer_piece(tok, t, 1, &n);
    json_t *bytes = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(bytes, json_integer((unsigned char)p[i]));
    return json_pack("{s:i, s:o, s:f, s:o}", "id", (int)t, "token", srv_json_text(p, n), "logprob",
                     isfinite(lp) ? lp : -9999.0, "bytes", bytes);
}

static void on_logprob(void *ctx, lamina_token t, float lp, const lamina_token *top, const float *top_lp, int n)
{
    srv_req *r = ctx;
    const lamina_tokenizer *tok = r->model->tok;
    json_t *e = lp_entry(tok, t, lp), *alts = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(alts, lp_entry(tok, top[i], top_lp[i]));
    json_object_set_new(e, "top_logprobs", alts);
    pthread_mutex_lock(&r->mu);
    if (r->lp_out) json_array_append(r->lp_out, e);
    if (r->lp_all) json_array_append(r->lp_all, e);
    pthread_mutex_unlock(&r->mu);
    json_decref(e);
}

json_t *srv_gen_take_logprobs(srv_req *r)
{
    pthread_mutex_lock(&r->mu);
    json_t *a = r->lp_out;
    if (a) r->lp_out = json_array();
    pthread_mutex_unlock(&r->mu);
    return a;
}

json_t *srv_logprobs_completions(json_t *entries)
{
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    size_t off = 0, i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        json_t *tk = json_object_get(e, "token");
        json_array_append(toks, tk);
        json_array_append(lps, json_object_get(e, "logprob"));
        json_array_append_new(offs, json_integer((json_int_t)off));
        off += json_array_size(json_object_get(e, "bytes"));
        json_t *top = json_object(), *a;
        size_t k;
        json_array_foreach(json_object_get(e, "top_logprobs"), k, a)
            json_object_set(top, json_string_value(json_object_get(a, "token")), json_object_get(a, "logprob"));
        json_array_append_new(tops, top);
    }
    return json_pack("{s:o, s:o, s:o, s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs", tops,
                     "text_offset", offs);
}

static void on_done(void *ctx, const lamina_batcher_result *res)
{
    srv_req *r = ctx;
    srv_metrics_tokens(r->s->metrics, r->model->name, res->n_prompt, res->n_gen);
    if (res->stop_reason == LAMINA_STOP_TIMEOUT) srv_metrics_event(r->s->metrics, "timeout");
    else if (res->stop_reason == LAMINA_STOP_CANCEL) srv_metrics_event(r->s->metrics, "cancelled");
    else if (res->stop_reason == LAMINA_STOP_ERROR) srv_metrics_event(r->s->metrics, "generation_failed");
    pthread_mutex_lock(&r->mu);
    r->res = *res;
    r->res.tokens = NULL;
    if (r->keep_tokens && res->n_tokens > 0) {
        r->toks = malloc((size_t)res->n_tokens * sizeof *r->toks);
        if (r->toks) {
            memcpy(r->toks, res->tokens, (size_t)res->n_tokens * sizeof *r->toks);
            r->n_toks = res->n_tokens;
        }
    }
    r->done = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ---- connection side ---- */

int srv_peer_closed(int fd)
{
    if (fd < 0) return 0;
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };
    int n = poll(&p, 1, 0);
    return n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

int srv_model_generates(const srv_model *m, char *err, size_t err_size)
{
    if (m->model->hp.causal) return 0;
    snprintf(err, err_size, "model '%s' is an encoder (%s): it gives embeddings (/api/embed, /v1/embeddings) "
             "and cannot generate text", m->name, m->model->hp.arch_name);
    return -1;
}

int srv_gen_start(srv *s, srv_model *m, const lamina_token *ctx_toks, size_t n_ctx_toks,
                  const char *text, unsigned tok_flags, const srv_gen_opts *o, double t_recv,
                  int keep_all, int keep_tokens, srv_req **out, int *http, char *err, size_t err_size)
{
    *out = NULL;
    if (srv_model_generates(m, err, err_size) < 0) {
        *http = 400;
        return LAMINA_EINVAL;
    }
    lamina_token *ids = NULL;
    size_t n = 0;
    int rc = lamina_tokenizer_encode(m->tok, text, strlen(text), tok_flags, &ids, &n, err, err_size);
    if (rc < 0) { *http = 500; return rc; }
    if (n_ctx_toks > 0) {
        lamina_token *all = malloc((n_ctx_toks + n + 1) * sizeof *all);
        if (!all) { free(ids); *http = 500; snprintf(err, err_size, "out of memory"); return LAMINA_ENOMEM; }
        memcpy(all, ctx_toks, n_ctx_toks * sizeof *all);
        if (n) memcpy(all + n_ctx_toks, ids, n * sizeof *all);
        free(ids);
        ids = all;
        n += n_ctx_toks;
    }
    if (n == 0) {
        free(ids);
        *http = 400;
        snprintf(err, err_size, "the prompt is empty after tokenization");
        return LAMINA_EINVAL;
    }
    srv_req *r = calloc(1, sizeof *r);
    if (!r) { free(ids); *http = 500; snprintf(err, err_size, "out of memory"); return LAMINA_ENOMEM; }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->s = s;
    r->model = m;
    r->t_recv = t_recv;
    r->keep_all = keep_all;
    r->keep_tokens = keep_tokens;
    r->keep_alive = o->keep_alive;

    lamina_batcher_request rq;
    memset(&rq, 0, sizeof rq);
    rq.prompt = ids;
    rq.n_prompt = n;
    rq.sampling = o->sp;
    rq.max_tokens = o->max_tokens;
    rq.n_ctx = o->num_ctx;
    for (int i = 0; i < o->n_stop; i++) rq.stop[i] = o->stop[i];
    rq.n_stop = o->n_stop;
    rq.grammar = o->grammar;
    rq.render_special = o->render_special;
    if (o->logprobs >= 0) {
        r->lp_out = json_array();
        if (keep_all) r->lp_all = json_array();
        rq.logprobs = o->logprobs;
        rq.logprob = on_logprob;
    }
    rq.deadline = s->set.request_timeout > 0 ? t_recv + s->set.request_timeout : 0;
    rq.text = on_text;
    rq.token = on_token;
    rq.done = on_done;
    rq.ctx = r;
    pthread_mutex_lock(&s->pool_mu);           /* m->b goes away only at shutdown, under this lock */
    rc = m->b ? lamina_batcher_submit(m->b, &rq, &r->id, err, err_size) : LAMINA_ECANCELED;
    pthread_mutex_unlock(&s->pool_mu);
    free(ids);
    if (rc < 0) {
        if (rc == LAMINA_ECANCELED) snprintf(err, err_size, "the server is shutting down");
        *http = rc == LAMINA_EREJECTED || rc == LAMINA_ECANCELED ? 503 : rc == LAMINA_ENOMEM ? 500 : 400;
        if (rc == LAMINA_EREJECTED) srv_metrics_event(s->metrics, "queue_full");
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        json_decref(r->lp_out);
        json_decref(r->lp_all);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void srv_gen_cancel(srv_req *r)
{
    pthread_mutex_lock(&r->mu);
    int was = r->cancelled, done = r->done;
    r->cancelled = 1;
    pthread_mutex_unlock(&r->mu);
    if (!was && !done) {
        pthread_mutex_lock(&r->s->pool_mu);   /* the batcher exists until shutdown stops the model */
        if (r->model->b) lamina_batcher_cancel(r->model->b, r->id);
        pthread_mutex_unlock(&r->s->pool_mu);
    }
}

static void wait_tick(srv_req *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

void srv_gen_wait(srv_req *r, int fd)
{
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        wait_tick(r);
        if (!r->done && !r->cancelled && srv_peer_closed(fd)) {
            pthread_mutex_unlock(&r->mu);
            srv_gen_cancel(r);
            pthread_mutex_lock(&r->mu);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

int srv_gen_next(srv_req *r, int fd, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    pthread_mutex_lock(&r->mu);
    while (r->out_n == 0 && !r->done) {
        wait_tick(r);
        if (r->out_n == 0 && !r->done && srv_peer_closed(fd)) {
            pthread_mutex_unlock(&r->mu);
            srv_gen_cancel(r);
            return -1;
        }
    }
    if (r->out_n > 0) {
        *text = r->out;
        *len = r->out_n;
        r->out = NULL;
        r->out_n = r->out_cap = 0;
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    pthread_mutex_unlock(&r->mu);
    return 1;
}

void srv_req_put(srv_req *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    int done = r->done;
    pthread_mutex_unlock(&r->mu);
    if (!done) {
        srv_gen_cancel(r);
        srv_gen_wait(r, -1);
    }
    srv_pool_release(r->s, r->model, r->keep_alive);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->out);
    free(r->all);
    free(r->toks);
    json_decref(r->lp_out);
    json_decref(r->lp_all);
    free(r);
}

const char *srv_finish_reason(const srv_req *r)
{
    switch (r->res.stop_reason) {
    case LAMINA_STOP_EOG:
    case LAMINA_STOP_STRING: return "stop";
    case LAMINA_STOP_LENGTH:
    case LAMINA_STOP_CONTEXT: return "length";
    default: return NULL;
    }
}

int srv_gen_failure(const srv_req *r, char *msg, size_t msg_size)
{
    switch (r->res.stop_reason) {
    case LAMINA_STOP_TIMEOUT:
        snprintf(msg, msg_size, "%s (the limit is %g s: [server] request_timeout)",
                 r->res.msg[0] ? r->res.msg : "the request took too long", r->s->set.request_timeout);
        return 504;
    case LAMINA_STOP_CANCEL:
        snprintf(msg, msg_size, "%s", r->res.msg[0] ? r->res.msg : "the request was cancelled");
        return 503;
    case LAMINA_STOP_ERROR:
        snprintf(msg, msg_size, "generation failed: %s", r->res.msg);
        return 500;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ */
/* Replying with a generation: streamed or whole                      */

static int dump_framed(const srv_job *j, json_t *o, char **buf, size_t *len)
{
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!t) return -1;
    size_t n = strlen(t);
    char *b = malloc(n + 16);
    if (!b) { free(t); return -1; }
    if (j->fmt->sse) { memcpy(b, "data: ", 6); memcpy(b + 6, t, n); memcpy(b + 6 + n, "\n\n", 2); n += 8; }
    else { memcpy(b, t, n); b[n++] = '\n'; }
    free(t);
    *buf = b;
    *len = n;
    return 0;
}

static int append(char **buf, size_t *len, const char *s, size_t n)
{
    char *b = realloc(*buf, *len + n);
    if (!b) return -1;
    memcpy(b + *len, s, n);
    *buf = b;
    *len += n;
    return 0;
}

static int delta_empty(const srv_delta *d)
{
    return !d->content_len && !d->thinking_len && !d->n_calls;
}

static int job_next(void *ctx, char **buf, size_t *len)
{
    srv_job *head = ctx;
    srv_job *j = head->cur ? head->cur : head;   /* the choice being sent */
    char *text;
    size_t n;
    int rc;
    srv_delta d;
    for (;;) {
        rc = srv_gen_next(j->r, j->fd, &text, &n);
        if (rc < 0) return -1;
        if (rc > 0) break;
        if (!j->reply) {
            memset(&d, 0, sizeof d);
            d.content = text;
            d.content_len = n;
            d.thinking = "";
        } else if (lamina_reply_feed(j->reply, text, n, &d) < 0) {
            free(text);
            return -1;
        }
        if (!delta_empty(&d) || !j->reply) {
            json_t *lp = srv_gen_take_logprobs(j->r);
            j->chunk_lp = lp;
            json_t *o = j->fmt->chunk(j, &d);
            j->chunk_lp = NULL;
            json_decref(lp);
            free(text);
            j->n_chunks++;
            return dump_framed(j, o, buf, len) < 0 ? -1 : 0;
        }
        free(text);   /* held back by the parser: wait for more */
    }
    /* the end */
    char msg[512];
    int status = srv_gen_failure(j->r, msg, sizeof msg);
    json_t *o;
    if (!status && j->reply) {
        /* what the parser held back */
        if (lamina_reply_finish(j->reply, &d) < 0) return -1;
        if (!delta_empty(&d)) {
            json_t *lp = srv_gen_take_logprobs(j->r);
            j->chunk_lp = lp;
            o = j->fmt->chunk(j, &d);
            j->chunk_lp = NULL;
            json_decref(lp);
            j->n_chunks++;
            if (dump_framed(j, o, buf, len) < 0) return -1;
            char *b2;
            size_t n2;
            if (dump_framed(j, j->fmt->final(j), &b2, &n2) < 0) return -1;
            int bad = append(buf, len, b2, n2);
            free(b2);
            if (bad < 0) return -1;
            goto tail;
        }
    }
    if (status) {
        snprintf(j->log, sizeof j->log, "%s", msg);
        o = j->fmt->sse ? json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", msg, "type",
                                    status == 504 ? "timeout_error" : "server_error", "param", "code")
                        : json_pack("{s:s}", "error", msg);
        if (dump_framed(j, o, buf, len) < 0) return -1;
        return 1;
    }
    o = j->fmt->final(j);
    if (dump_framed(j, o, buf, len) < 0) return -1;
tail:
    if (j->sib) {              /* the next choice (generated meanwhile): go on */
        head->cur = j->sib;
        return 0;
    }
    j = head;                  /* usage covers every choice */
    if (j->fmt->sse) {
        if (j->fmt->usage && j->include_usage) {
            char *b2;
            size_t n2;
            if (dump_framed(j, j->fmt->usage(j), &b2, &n2) == 0) {
                append(buf, len, b2, n2);
                free(b2);
            }
        }
        static const char done[] = "data: [DONE]\n\n";
        if (append(buf, len, done, sizeof done - 1) < 0) return -1;
    }
    return 1;
}

/* Free a job and its other choices' jobs. */
static void jobs_free(srv_job *j)
{
    while (j) {
        srv_job *next = j->sib;
        srv_req_put(j->r);
        lamina_reply_free(j->reply);
        free(j->call_ids);
        free(j);
        j = next;
    }
}

void srv_job_reply_free(srv_job *j)
{
    jobs_free(j);
}

static void job_free(void *ctx)
{
    srv_job *j = ctx;
    if (!j->s->set.quiet && j->log[0]) j->s->log(j->s, "%s: %s", j->model, j->log);
    jobs_free(j);
}

int srv_job_reply(srv_call *c, srv_job *j, int stream)
{
    j->fd = c->fd;
    j->s = c->s;
    if (stream)
        return srv_reply_stream(c, j->fmt->sse ? "text/event-stream" : "application/x-ndjson",
                                job_next, job_free, j);
    char msg[512];
    int status = 0, parsed = 0;
    for (srv_job *a = j; a; a = a->sib) {      /* every choice (they run together) */
        srv_gen_wait(a->r, c->fd);
        if (!status) status = srv_gen_failure(a->r, msg, sizeof msg);
        if (!status && srv_job_parse_all(a) < 0) parsed = -1;
    }
    int rc;
    if (status) {
        c->retry_after = 1;
        rc = srv_reply_error(c, status, "%s", msg);
    } else if (parsed < 0) {
        rc = srv_reply_error(c, 500, "out of memory");
    } else {
        rc = srv_reply_json(c, 200, j->fmt->whole(j));
        snprintf(c->log, sizeof c->log, "%s %d+%d tokens", j->model, j->r->res.n_prompt, j->r->res.n_gen);
    }
    jobs_free(j);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Fill in the middle                                                 */

/* The three FIM tokens, in infill order: the id the file names
 * (tokenizer.ggml.fim_X_token_id, or the older X_token_id), else the first
 * of the known texts that `find` finds in the vocabulary. */
static const struct {
    const char *key, *old_key;
    const char *texts[6];
} fim_kinds[3] = {
    { "tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id",
      { "<|fim_prefix|>", "<fim_prefix>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>", NULL } },
    { "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id",
      { "<|fim_suffix|>", "<fim_suffix>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>", NULL } },
    { "tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id",
      { "<|fim_middle|>", "<fim_middle>", "<fim-middle>", "<｜fim▁end｜>", "<MID>", NULL } },
};

int srv_fim_ids(const lamina_gguf *g, int64_t n_vocab, lamina_token (*find)(void *ctx, const char *text),
                void *ctx, lamina_token ids[3])
{
    int found = 1;
    for (int k = 0; k < 3; k++) {
        uint32_t v;
        ids[k] = LAMINA_TOKEN_NONE;
        if ((lamina_gguf_get_u32(g, fim_kinds[k].key, &v, NULL, 0) == 0 ||
             lamina_gguf_get_u32(g, fim_kinds[k].old_key, &v, NULL, 0) == 0) && (int64_t)v < n_vocab)
            ids[k] = (lamina_token)v;
        for (const char *const *t = fim_kinds[k].texts; ids[k] == LAMINA_TOKEN_NONE && *t; t++)
            ids[k] = find(ctx, *t);
        if (ids[k] == LAMINA_TOKEN_NONE) found = 0;
    }
    return found;
}

static lamina_token fim_find_tok(void *ctx, const char *text)
{
    return lamina_tokenizer_find(ctx, text, strlen(text));
}

int srv_fim_tokens(const srv_model *m, const char *prefix, const char *suffix, lamina_token **out, size_t *n_out,
                   char *err, size_t es)
{
    lamina_token ids[3];
    srv_fim_ids(m->model->gguf, lamina_tokenizer_n_vocab(m->tok), fim_find_tok, (void *)m->tok, ids);
    lamina_token p = ids[0], s = ids[1], d = ids[2];
    *out = NULL;
    *n_out = 0;
    if (p == LAMINA_TOKEN_NONE || s == LAMINA_TOKEN_NONE || d == LAMINA_TOKEN_NONE) {
        snprintf(err, es, "suffix: model '%s' has no fill-in-the-middle tokens (prefix, suffix and middle)", m->name);
        return -1;
    }
    lamina_token *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (lamina_tokenizer_encode(m->tok, prefix, strlen(prefix), 0, &a, &na, err, es) < 0 ||
        lamina_tokenizer_encode(m->tok, suffix, strlen(suffix), 0, &b, &nb, err, es) < 0) {
        free(a);
        return -1;
    }
    /* prefix, suffix, middle (llama.cpp's infill order), after BOS when the model adds one */
    lamina_token bos = lamina_tokenizer_bos(m->tok);
    int add_bos = lamina_tokenizer_add_bos(m->tok) && bos != LAMINA_TOKEN_NONE;
    lamina_token *t = malloc((na + nb + 4) * sizeof *t);
    if (!t) { free(a); free(b); snprintf(err, es, "out of memory"); return -1; }
    size_t n = 0;
    if (add_bos) t[n++] = bos;
    t[n++] = p;
    if (na) memcpy(t + n, a, na * sizeof *t);
    n += na;
    t[n++] = s;
    if (nb) memcpy(t + n, b, nb * sizeof *t);
    n += nb;
    t[n++] = d;
    free(a);
    free(b);
    *out = t;
    *n_out = n;
    return 0;
}
