/*
 * api_ollama.c - the Ollama-compatible endpoints under /api.
 *
 * /api/generate and /api/chat stream NDJSON objects by default and answer
 * one object with "stream": false.  Durations are nanoseconds as Ollama
 * reports them: total_duration (arrival to reply), load_duration (loading
 * the model for this request), prompt_eval_duration (from getting a
 * sequence slot to the first token), eval_duration (first token to the
 * last); prompt_eval_count is the prompt's tokens, eval_count the tokens
 * generated.  suffix fills in the middle with the model's FIM tokens (400
 * naming why for a model without them).  Fields Ollama accepts that lamina
 * cannot honour (images, template) are refused with 400 instead of being
 * ignored; options
 * lamina has no use for (num_gpu, num_thread, ...) are ignored as Ollama
 * ignores unknown ones.  Chat takes tools (message.tool_calls in the
 * reply, "tool" messages with tool_name back) and think (message.thinking;
 * true, false, or a level "low", "medium", "high" given to the template as
 * reasoning_effort), through api_chat.c.  logprobs (with top_logprobs)
 * adds each generated token's log-probability, as Ollama 0.12 does.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

#define NS(s) ((json_int_t)((s) * 1e9))

int srv_api_version(srv_call *c)
{
    return srv_reply_json(c, 200, json_pack("{s:s}", "version", LAMINA_VERSION_STRING));
}

int srv_api_tags(srv_call *c)
{
    return srv_reply_json(c, 200, srv_pool_tags(&c->s->cfg, 1));
}

int srv_api_ps(srv_call *c)
{
    return srv_reply_json(c, 200, srv_pool_ps(c->s));
}

int srv_metrics_handler(srv_call *c)
{
    size_t len = 0;
    char *text = srv_metrics_render(c->s, &len);
    if (!text) return srv_reply_error(c, 500, "out of memory");
    int rc = srv_reply_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
    return rc;
}

/* "model", or the older "name". */
static int model_field(srv_call *c, const char **name, char *err, size_t es)
{
    *name = NULL;
    int r = srv_json_str(c->body, "model", name, err, es);
    if (r == 0) r = srv_json_str(c->body, "name", name, err, es);
    if (r < 0) return -1;
    if (r == 0 || !**name) { snprintf(err, es, "model is required"); return -1; }
    return 0;
}

int srv_api_show(srv_call *c)
{
    char err[512];
    const char *name;
    int verbose = 0, http = 500;
    if (model_field(c, &name, err, sizeof err) < 0 || srv_json_bool(c->body, "verbose", &verbose, err, sizeof err) < 0)
        return srv_reply_error(c, 400, "%s", err);
    json_t *j = srv_show(&c->s->cfg, name, verbose, &http, err, sizeof err);
    if (!j) return srv_reply_error(c, http, "%s", err);
    return srv_reply_json(c, 200, j);
}

/* ------------------------------------------------------------------ */
/* Options                                                            */

int srv_parse_stop(json_t *v, const char *field, srv_gen_opts *o, char *err, size_t es)
{
    if (!v || json_is_null(v)) return 0;
    const char *one[1] = { NULL };
    size_t n;
    if (json_is_string(v)) {
        one[0] = json_string_value(v);
        n = 1;
    } else if (json_is_array(v)) {
        n = json_array_size(v);
        if (n > LAMINA_MAX_STOP) {
            snprintf(err, es, "%s: at most %d stop strings, got %zu", field, LAMINA_MAX_STOP, n);
            return -1;
        }
    } else {
        snprintf(err, es, "%s: expected a string or an array of strings", field);
        return -1;
    }
    for (int i = 0; i < o->n_stop; i++) free(o->stop[i]);
    o->n_stop = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : NULL;
        const char *str = e ? (json_is_string(e) ? json_string_value(e) : NULL) : one[0];
        if (!str) { snprintf(err, es, "%s[%zu]: expected a string", field, i); return -1; }
        if (strlen(str) > 256) { snprintf(err, es, "%s[%zu]: longer than 256 bytes", field, i); return -1; }
        if (!*str) continue;
        o->stop[o->n_stop] = strdup(str);
        if (!o->stop[o->n_stop]) { snprintf(err, es, "out of memory"); return -1; }
        o->n_stop++;
    }
    return 0;
}

/* A number option within [lo, hi]. */
static int opt_num(json_t *opts, const char *key, double lo, double hi, float *dst, char *err, size_t es)
{
    double v;
    int r = srv_json_num(opts, key, &v, err, es);
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (v < lo || v > hi) { snprintf(err, es, "%s: must be from %g to %g, got %g", key, lo, hi, v); return -1; }
    *dst = (float)v;
    return 0;
}

static int parse_options(json_t *opts, srv_gen_opts *o, char *err, size_t es)
{
    if (!opts || json_is_null(opts)) return 0;
    if (!json_is_object(opts)) { snprintf(err, es, "options: expected an object"); return -1; }
    char e[400];
    int64_t i;
    int r;
    if (opt_num(opts, "temperature", 0, 100, &o->sp.temperature, e, sizeof e) < 0 ||
        opt_num(opts, "top_p", 0, 1, &o->sp.top_p, e, sizeof e) < 0 ||
        opt_num(opts, "min_p", 0, 1, &o->sp.min_p, e, sizeof e) < 0 ||
        opt_num(opts, "repeat_penalty", 0.01, 100, &o->sp.repeat_penalty, e, sizeof e) < 0 ||
        opt_num(opts, "presence_penalty", -100, 100, &o->sp.presence_penalty, e, sizeof e) < 0 ||
        opt_num(opts, "frequency_penalty", -100, 100, &o->sp.frequency_penalty, e, sizeof e) < 0)
        goto bad;
    if ((r = srv_json_int(opts, "top_k", 0, 1 << 20, &i, e, sizeof e)) < 0) goto bad;
    if (r) o->sp.top_k = (int32_t)i;
    if ((r = srv_json_int(opts, "repeat_last_n", -1, 1 << 20, &i, e, sizeof e)) < 0) goto bad;
    if (r) o->sp.repeat_last_n = i < 0 ? 4096 : (int32_t)i;   /* -1: Ollama's "the context" */
    if ((r = srv_json_int(opts, "seed", INT64_MIN, INT64_MAX, &i, e, sizeof e)) < 0) goto bad;
    if (r && i >= 0) o->sp.seed = (uint64_t)i;                 /* negative: random, as Ollama */
    if ((r = srv_json_int(opts, "num_predict", -2, 1 << 24, &i, e, sizeof e)) < 0) goto bad;
    if (r) o->max_tokens = i < 0 ? -1 : (int32_t)i;
    if ((r = srv_json_int(opts, "num_ctx", 1, 1 << 24, &i, e, sizeof e)) < 0) goto bad;
    if (r) o->num_ctx = (int32_t)i;
    if (srv_parse_stop(json_object_get(opts, "stop"), "stop", o, e, sizeof e) < 0) goto bad;
    return 0;
bad:
    snprintf(err, es, "invalid options: %s", e);
    return -1;
}

int srv_parse_options(json_t *opts, srv_gen_opts *o, char *err, size_t es)
{
    return parse_options(opts, o, err, es);
}

/* "think": true, false or a level; level gets the level's name. */
static int parse_think(json_t *b, srv_chat *ch, char *err, size_t es)
{
    json_t *th = json_object_get(b, "think");
    if (!th || json_is_null(th)) return 0;
    if (json_is_boolean(th)) {
        ch->think = json_is_true(th);
        return 0;
    }
    const char *lv = json_is_string(th) ? json_string_value(th) : "";
    if (strcmp(lv, "low") && strcmp(lv, "medium") && strcmp(lv, "high")) {
        snprintf(err, es, "think: expected true, false, \"low\", \"medium\" or \"high\"");
        return -1;
    }
    ch->think = 1;
    if (!ch->kwargs) ch->kwargs = json_object();
    json_object_set_new(ch->kwargs, "reasoning_effort", json_string(lv));
    return 0;
}

/* Top-level fields both endpoints share; refuses what cannot be done. */
static int parse_common(srv_call *c, const char **model, int *stream, srv_gen_opts *o, srv_chat *ch,
                        char *err, size_t es)
{
    json_t *b = c->body;
    if (model_field(c, model, err, es) < 0) return -1;
    *stream = 1;
    if (srv_json_bool(b, "stream", stream, err, es) < 0) return -1;
    if (srv_json_duration(b, "keep_alive", &o->keep_alive, err, es) < 0) return -1;
    if (parse_options(json_object_get(b, "options"), o, err, es) < 0) return -1;
    json_t *f = json_object_get(b, "format");
    /* structured output: "json" (any JSON value) or a JSON schema */
    if (json_is_string(f) && !strcmp(json_string_value(f), "json")) {
        if (srv_parse_format(NULL, "format", o, err, es) < 0) return -1;
    } else if (json_is_object(f)) {
        if (srv_parse_format(f, "format", o, err, es) < 0) return -1;
    } else if (f && !json_is_null(f) && !(json_is_string(f) && !*json_string_value(f))) {
        snprintf(err, es, "format: expected \"json\" or a JSON schema object");
        return -1;
    }
    /* an extension, as llama-server's: a GBNF grammar instead of format */
    if (srv_parse_grammar(json_object_get(b, "grammar"), "grammar", o, err, es) < 0) return -1;
    const char *t = NULL;
    if (srv_json_str(b, "template", &t, err, es) < 0) return -1;
    if (t && *t) { snprintf(err, es, "template: custom prompt templates are not supported"); return -1; }
    if (parse_think(b, ch, err, es) < 0) return -1;
    int lp = 0;
    int64_t top = 0;
    if (srv_json_bool(b, "logprobs", &lp, err, es) < 0 ||
        srv_json_int(b, "top_logprobs", 0, LAMINA_MAX_TOP_LOGPROBS, &top, err, es) < 0)
        return -1;
    if (lp) o->logprobs = (int)top;
    return 0;
}

static int has_images(json_t *o)
{
    json_t *im = json_object_get(o, "images");
    return im && !json_is_null(im) && (!json_is_array(im) || json_array_size(im) > 0);
}

/* ------------------------------------------------------------------ */
/* Replies                                                            */

static void put_timings(json_t *o, const srv_job *j)
{
    const srv_req *r = j->r;
    json_object_set_new(o, "total_duration", json_integer(NS(srv_now() - r->t_recv)));
    json_object_set_new(o, "load_duration", json_integer(NS(r->load_s)));
    json_object_set_new(o, "prompt_eval_count", json_integer(r->res.n_prompt));
    json_object_set_new(o, "prompt_eval_duration", json_integer(NS(r->res.prompt_s)));
    json_object_set_new(o, "eval_count", json_integer(r->res.n_gen));
    json_object_set_new(o, "eval_duration", json_integer(NS(r->res.gen_s)));
}

static json_t *base(const srv_job *j, int done)
{
    char when[48];
    srv_time_rfc3339(srv_wall(), when, sizeof when);
    return json_pack("{s:s, s:s, s:b}", "model", j->model, "created_at", when, "done", done);
}

/* "logprobs": the chunk's entries (streamed) or all (whole reply) */
static void put_logprobs(json_t *o, json_t *entries)
{
    if (entries) json_object_set(o, "logprobs", entries);
}

static json_t *gen_chunk(srv_job *j, const srv_delta *d)
{
    json_t *o = base(j, 0);
    put_logprobs(o, j->chunk_lp);
    json_object_set_new(o, "response", srv_json_text(d->content, d->content_len));
    if (d->thinking_len) json_object_set_new(o, "thinking", srv_json_text(d->thinking, d->thinking_len));
    return o;
}

static json_t *gen_end(srv_job *j, int whole)
{
    json_t *o = base(j, 1);
    const char *text = "", *th = "";
    size_t len = 0, tl = 0;
    if (whole && j->reply) {
        text = lamina_reply_content(j->reply, &len);
        th = lamina_reply_thinking(j->reply, &tl);
    } else if (whole && j->r->all) {
        text = j->r->all;
        len = j->r->all_n;
    }
    json_object_set_new(o, "response", srv_json_text(text, len));
    if (tl) json_object_set_new(o, "thinking", srv_json_text(th, tl));
    if (whole) put_logprobs(o, j->r->lp_all);
    json_object_set_new(o, "done_reason", json_string(srv_finish_reason(j->r)));
    if (j->echo_ctx) {
        json_t *ctx = json_array();
        for (int32_t i = 0; i < j->r->n_toks; i++) json_array_append_new(ctx, json_integer(j->r->toks[i]));
        json_object_set_new(o, "context", ctx);
    }
    put_timings(o, j);
    return o;
}

static json_t *gen_final(srv_job *j) { return gen_end(j, 0); }
static json_t *gen_whole(srv_job *j) { return gen_end(j, 1); }

static json_t *chat_msg(const char *text, size_t len)
{
    return json_pack("{s:s, s:o}", "role", "assistant", "content", srv_json_text(text, len));
}

/* message for a delta: content, thinking and the calls completed in it */
static json_t *delta_msg(const srv_job *j, const srv_delta *d)
{
    json_t *m = chat_msg(d->content, d->content_len);
    if (d->thinking_len) json_object_set_new(m, "thinking", srv_json_text(d->thinking, d->thinking_len));
    if (d->n_calls) json_object_set_new(m, "tool_calls", srv_calls_ollama(j, d->first_call, d->n_calls));
    return m;
}

static json_t *chat_chunk(srv_job *j, const srv_delta *d)
{
    json_t *o = base(j, 0);
    put_logprobs(o, j->chunk_lp);
    json_object_set_new(o, "message", delta_msg(j, d));
    return o;
}

static json_t *chat_end(srv_job *j, int whole)
{
    json_t *o = base(j, 1);
    srv_delta d = { .content = "", .thinking = "" };
    if (whole && j->reply) {
        d.content = lamina_reply_content(j->reply, &d.content_len);
        d.thinking = lamina_reply_thinking(j->reply, &d.thinking_len);
        d.n_calls = lamina_reply_n_calls(j->reply);
    } else if (whole && j->r->all) {
        d.content = j->r->all;
        d.content_len = j->r->all_n;
    }
    json_object_set_new(o, "message", delta_msg(j, &d));
    if (whole) put_logprobs(o, j->r->lp_all);
    json_object_set_new(o, "done_reason", json_string(srv_finish_reason(j->r)));
    put_timings(o, j);
    return o;
}

static json_t *chat_final(srv_job *j) { return chat_end(j, 0); }
static json_t *chat_whole(srv_job *j) { return chat_end(j, 1); }

static const srv_fmt gen_fmt = { 0, gen_chunk, gen_final, NULL, gen_whole };
static const srv_fmt chat_fmt = { 0, chat_chunk, chat_final, NULL, chat_whole };

/* A request that only loads (or, with keep_alive 0, unloads) the model. */
static int load_only(srv_call *c, srv_model *m, const srv_gen_opts *o, int chat, double load_s)
{
    json_t *j = json_pack("{s:s, s:s, s:b, s:s}", "model", m->name, "created_at", "", "done", 1,
                          "done_reason", o->keep_alive == 0 ? "unload" : "load");
    char when[48];
    srv_time_rfc3339(srv_wall(), when, sizeof when);
    json_object_set_new(j, "created_at", json_string(when));
    if (chat) json_object_set_new(j, "message", chat_msg("", 0));
    else json_object_set_new(j, "response", json_string(""));
    json_object_set_new(j, "load_duration", json_integer(NS(load_s)));
    json_object_set_new(j, "total_duration", json_integer(NS(srv_now() - c->t_recv)));
    srv_pool_release(c->s, m, o->keep_alive);
    return srv_reply_json(c, 200, j);
}

int srv_model_error(srv_call *c, int http, const char *err)
{
    if (http == 503) c->retry_after = 5;
    return srv_reply_error(c, http, "%s", err);
}

int srv_start_job(srv_call *c, srv_model *m, const lamina_token *ctx, size_t n_ctx, const char *text,
                  unsigned flags, const srv_gen_opts *o, int stream, const srv_fmt *fmt, const srv_job *tmpl,
                  double load_s)
{
    int echo_ctx = tmpl ? tmpl->echo_ctx : 0;
    char err[512];
    int http = 500;
    srv_req *r;
    if (srv_gen_start(c->s, m, ctx, n_ctx, text, flags, o, c->t_recv, !stream, echo_ctx, &r, &http,
                      err, sizeof err) < 0) {
        if (tmpl) lamina_reply_free(tmpl->reply);
        srv_pool_release(c->s, m, o->keep_alive);
        if (http == 503) {
            lamina_batcher_stats st = { 0 };
            pthread_mutex_lock(&c->s->pool_mu);
            if (m->b) lamina_batcher_stats_get(m->b, &st);
            pthread_mutex_unlock(&c->s->pool_mu);
            /* about how long until a slot frees: the average request time per slot */
            double per = st.n_finished ? st.busy_s / (double)st.n_finished : 1.0;
            c->retry_after = (int)ceil(per * (st.n_queued + 1) / (st.n_slots ? st.n_slots : 1));
            if (c->retry_after < 1) c->retry_after = 1;
            if (c->retry_after > 60) c->retry_after = 60;
        }
        return srv_reply_error(c, http, "%s", err);
    }
    r->load_s = load_s;
    srv_job *j = calloc(1, sizeof *j);
    if (!j) {
        if (tmpl) lamina_reply_free(tmpl->reply);
        srv_req_put(r);
        return srv_reply_error(c, 500, "out of memory");
    }
    if (tmpl) *j = *tmpl;
    j->r = r;
    j->fmt = fmt;
    j->created = srv_wall();
    snprintf(j->model, sizeof j->model, "%s", m->name);
    /* OpenAI n: the other choices, each a request of its own (seed + i),
     * generated in the same steps; each holds the model */
    srv_job *last = j;
    for (int i = 1; i < o->n_choices; i++) {
        srv_gen_opts oi = *o;
        oi.sp.seed = o->sp.seed + (uint64_t)i;
        srv_job *ji = calloc(1, sizeof *ji);
        srv_pool_hold(c->s, m);
        int bad = !ji || (j->reply && lamina_reply_clone(j->reply, &ji->reply) < 0);
        if (bad) snprintf(err, sizeof err, "out of memory"), http = 500;
        if (bad || srv_gen_start(c->s, m, ctx, n_ctx, text, flags, &oi, c->t_recv, !stream, echo_ctx, &ji->r,
                                 &http, err, sizeof err) < 0) {
            if (ji) lamina_reply_free(ji->reply);
            free(ji);
            srv_pool_release(c->s, m, o->keep_alive);
            srv_job_reply_free(j);
            return srv_reply_error(c, http, "%s", err);
        }
        ji->r->load_s = load_s;
        memcpy(ji->id, j->id, sizeof ji->id);
        ji->include_usage = j->include_usage;
        ji->index = i;
        ji->fmt = fmt;
        ji->created = j->created;
        snprintf(ji->model, sizeof ji->model, "%s", m->name);
        last->sib = ji;
        last = ji;
    }
    return srv_job_reply(c, j, stream);
}

/* ------------------------------------------------------------------ */
/* POST /api/generate                                                 */

int srv_api_generate(srv_call *c)
{
    char err[512];
    srv_gen_opts o;
    srv_gen_opts_defaults(&o, c->s);
    const char *model, *prompt = "", *system = NULL, *suffix = NULL;
    int stream = 1, raw = 0, rc;
    json_t *b = c->body;
    srv_chat ch;
    srv_chat_init(&ch);
    if (parse_common(c, &model, &stream, &o, &ch, err, sizeof err) < 0 ||
        srv_json_str(b, "prompt", &prompt, err, sizeof err) < 0 ||
        srv_json_str(b, "system", &system, err, sizeof err) < 0 ||
        srv_json_str(b, "suffix", &suffix, err, sizeof err) < 0 ||
        srv_json_bool(b, "raw", &raw, err, sizeof err) < 0)
        goto bad;
    if (!prompt) prompt = "";
    if (has_images(b)) { snprintf(err, sizeof err, "images: this model does not support images"); goto bad; }
    json_t *ctxv = json_object_get(b, "context");
    size_t n_ctx = 0;
    lamina_token *ctx = NULL;
    if (ctxv && !json_is_null(ctxv)) {
        if (!json_is_array(ctxv)) { snprintf(err, sizeof err, "context: expected an array of token ids"); goto bad; }
        n_ctx = json_array_size(ctxv);
        ctx = malloc((n_ctx + 1) * sizeof *ctx);
        if (!ctx) { snprintf(err, sizeof err, "out of memory"); goto bad; }
        for (size_t i = 0; i < n_ctx; i++) {
            json_t *e = json_array_get(ctxv, i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT32_MAX) {
                free(ctx);
                snprintf(err, sizeof err, "context[%zu]: expected a token id", i);
                goto bad;
            }
            ctx[i] = (lamina_token)json_integer_value(e);
        }
    }

    srv_model *m;
    double load_s;
    int http;
    if (srv_pool_acquire(c->s, model, &m, &load_s, &http, err, sizeof err) < 0) {
        free(ctx);
        srv_gen_opts_clear(&o);
        srv_chat_clear(&ch);
        return srv_model_error(c, http, err);
    }
    for (size_t i = 0; i < n_ctx; i++)
        if (ctx[i] >= lamina_tokenizer_n_vocab(m->tok)) {
            snprintf(err, sizeof err, "context[%zu]: token %d is outside the vocabulary (%d)", i, ctx[i],
                     lamina_tokenizer_n_vocab(m->tok));
            free(ctx);
            srv_pool_release(c->s, m, o.keep_alive);
            goto bad;
        }
    if (srv_model_defaults(m, b, SRV_OLLAMA, &o, NULL, err, sizeof err) < 0) {
        free(ctx);
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    if ((!system || !*system) && m->system) system = m->system;   /* the store model's */
    if (!*prompt && n_ctx == 0) {
        free(ctx);
        rc = load_only(c, m, &o, 0, load_s);
        srv_gen_opts_clear(&o);
        srv_chat_clear(&ch);
        return rc;
    }
    /* fill in the middle: the prompt is the prefix, tokens framed by the model's FIM tokens */
    if (suffix && *suffix) {
        if (n_ctx || raw) {
            snprintf(err, sizeof err, "suffix: cannot be combined with %s", n_ctx ? "context" : "raw");
            free(ctx);
            srv_pool_release(c->s, m, o.keep_alive);
            goto bad;
        }
        if (srv_fim_tokens(m, prompt, suffix, &ctx, &n_ctx, err, sizeof err) < 0) {
            srv_pool_release(c->s, m, o.keep_alive);
            goto bad;
        }
        srv_job tj = { .echo_ctx = 1 };
        rc = srv_start_job(c, m, ctx, n_ctx, "", 0, &o, stream, &gen_fmt, &tj, load_s);
        free(ctx);
        srv_gen_opts_clear(&o);
        srv_chat_clear(&ch);
        return rc;
    }
    /* the prompt text: raw, through the chat template of a chat model, or as is */
    char *text = NULL;
    unsigned flags = LAMINA_TOKENIZE_ADD_SPECIAL;
    srv_job tmpl = { .echo_ctx = 1 };
    if ((raw || !m->has_template) && ch.think == 1) {
        snprintf(err, sizeof err, "think: needs the model's chat template (not raw)");
        free(ctx);
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    if (raw) {
        text = strdup(prompt);
        flags |= LAMINA_TOKENIZE_PARSE_SPECIAL;
    } else if (m->has_template && lamina_chat_available(m->chat)) {
        if ((system && *system && srv_chat_add(&ch, 0, "system", system, NULL, NULL, NULL, NULL, err, sizeof err) < 0) ||
            srv_chat_add(&ch, 1, "user", prompt, NULL, NULL, NULL, NULL, err, sizeof err) < 0 ||
            srv_chat_prepare(m, &ch, &o, &text, &tmpl.reply, &http, err, sizeof err) < 0) {
            free(ctx);
            srv_pool_release(c->s, m, o.keep_alive);
            goto bad;
        }
        flags |= LAMINA_TOKENIZE_PARSE_SPECIAL;
    } else if (system && *system) {
        size_t n = strlen(system) + strlen(prompt) + 3;
        text = malloc(n);
        if (text) snprintf(text, n, "%s\n\n%s", system, prompt);
    } else {
        text = strdup(prompt);
    }
    if (!text) { free(ctx); srv_pool_release(c->s, m, o.keep_alive); snprintf(err, sizeof err, "out of memory"); goto bad; }
    if (n_ctx) flags &= ~LAMINA_TOKENIZE_ADD_SPECIAL;   /* the context already starts the sequence */
    rc = srv_start_job(c, m, ctx, n_ctx, text, flags, &o, stream, &gen_fmt, &tmpl, load_s);
    free(text);
    free(ctx);
    srv_gen_opts_clear(&o);
    srv_chat_clear(&ch);
    return rc;
bad:
    srv_gen_opts_clear(&o);
    srv_chat_clear(&ch);
    return srv_reply_error(c, 400, "%s", err);
}

/* ------------------------------------------------------------------ */
/* POST /api/chat                                                     */

int srv_api_chat(srv_call *c)
{
    char err[512];
    srv_gen_opts o;
    srv_gen_opts_defaults(&o, c->s);
    const char *model;
    int stream = 1, rc, http = 400;
    srv_chat ch;
    srv_chat_init(&ch);
    if (parse_common(c, &model, &stream, &o, &ch, err, sizeof err) < 0) goto bad;
    if (srv_chat_tools(&ch, json_object_get(c->body, "tools"), err, sizeof err) < 0) goto bad;
    json_t *mv = json_object_get(c->body, "messages");
    size_t nm = 0;
    if (mv && !json_is_null(mv)) {
        if (!json_is_array(mv)) { snprintf(err, sizeof err, "messages: expected an array"); goto bad; }
        nm = json_array_size(mv);
        for (size_t i = 0; i < nm; i++) {
            json_t *e = json_array_get(mv, i);
            char fe[300];
            const char *role = NULL, *content = NULL, *tool_name = NULL, *thinking = NULL;
            if (!json_is_object(e)) { snprintf(err, sizeof err, "messages[%zu]: expected an object", i); goto bad; }
            if (srv_json_str(e, "role", &role, fe, sizeof fe) < 0 || srv_json_str(e, "content", &content, fe, sizeof fe) < 0 ||
                srv_json_str(e, "tool_name", &tool_name, fe, sizeof fe) < 0 ||
                srv_json_str(e, "thinking", &thinking, fe, sizeof fe) < 0) {
                snprintf(err, sizeof err, "messages[%zu].%s", i, fe);
                goto bad;
            }
            if (!role || !*role) { snprintf(err, sizeof err, "messages[%zu].role is required", i); goto bad; }
            if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool")) {
                snprintf(err, sizeof err, "messages[%zu].role: expected system, user, assistant or tool, got '%.40s'", i, role);
                goto bad;
            }
            if (has_images(e)) { snprintf(err, sizeof err, "messages[%zu].images: this model does not support images", i); goto bad; }
            if (srv_chat_add(&ch, i, role, content ? content : "", json_object_get(e, "tool_calls"), NULL, tool_name,
                             thinking, err, sizeof err) < 0)
                goto bad;
        }
    }

    srv_model *m;
    double load_s;
    if (srv_pool_acquire(c->s, model, &m, &load_s, &http, err, sizeof err) < 0) {
        srv_chat_clear(&ch);
        srv_gen_opts_clear(&o);
        return srv_model_error(c, http, err);
    }
    if (nm > 0 && srv_model_defaults(m, c->body, SRV_OLLAMA, &o, &ch, err, sizeof err) < 0) {
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    if (nm == 0) {
        rc = load_only(c, m, &o, 1, load_s);
        srv_chat_clear(&ch);
        srv_gen_opts_clear(&o);
        return rc;
    }
    if (srv_model_generates(m, err, sizeof err) < 0) {
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    if (!lamina_chat_available(m->chat)) {
        srv_pool_release(c->s, m, o.keep_alive);
        snprintf(err, sizeof err, "model '%s' has no chat template lamina knows; use /api/generate", m->name);
        goto bad;
    }
    char *text = NULL;
    srv_job tmpl = { 0 };
    if (srv_chat_prepare(m, &ch, &o, &text, &tmpl.reply, &http, err, sizeof err) < 0) {
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    rc = srv_start_job(c, m, NULL, 0, text, LAMINA_TOKENIZE_ADD_SPECIAL | LAMINA_TOKENIZE_PARSE_SPECIAL, &o,
                       stream, &chat_fmt, &tmpl, load_s);
    free(text);
    srv_chat_clear(&ch);
    srv_gen_opts_clear(&o);
    return rc;
bad:
    srv_chat_clear(&ch);
    srv_gen_opts_clear(&o);
    return srv_reply_error(c, http, "%s", err);
}
