/*
 * api_openai.c - the OpenAI-compatible endpoints under /v1.
 *
 * /v1/chat/completions and /v1/completions answer one object, or with
 * "stream": true server-sent events ("data: {chunk}" ... "data: [DONE]"),
 * with usage (prompt_tokens, completion_tokens, total_tokens) in the reply
 * and, when stream_options.include_usage, in a last chunk with no
 * choices.  finish_reason is "stop" (end of turn or a stop string) or
 * "length" (max_tokens or the context).  Besides the standard sampling
 * fields, top_k, min_p and repeat_penalty are accepted as llama.cpp's
 * server does.  Tools with tool_choice ("auto", "none", "required", a
 * named function) and parallel_tool_calls give message.tool_calls
 * (streamed as one delta per complete call) and finish_reason
 * "tool_calls"; a thinking model's reasoning is reasoning_content, never
 * content (reasoning_effort and chat_template_kwargs reach the template).
 * logprobs (chat: true with top_logprobs; completions: a number) give
 * each generated token's log-probability under the model.  n (up to 16)
 * runs that many generations of the prompt together (seeds seed,
 * seed + 1, ...); streamed, each choice's chunks come in turn.  Image
 * parts are refused with 400.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "server/server.h"

static void make_id(const char *prefix, char *buf, size_t size)
{
    unsigned char r[12];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        static uint64_t n;
        uint64_t x = __atomic_add_fetch(&n, 1, __ATOMIC_RELAXED) ^ (uint64_t)(srv_wall() * 1e6);
        memcpy(r, &x, 8);
        memset(r + 8, 0, 4);
    }
    size_t at = (size_t)snprintf(buf, size, "%s", prefix);
    for (size_t i = 0; i < sizeof r && at + 2 < size; i++) at += (size_t)snprintf(buf + at, size - at, "%02x", r[i]);
}

int srv_oai_models(srv_call *c)
{
    return srv_reply_json(c, 200, srv_pool_openai_models(c->s, NULL));
}

int srv_oai_model(srv_call *c)
{
    const char *id = c->url + strlen("/v1/models/");
    json_t *m = srv_pool_openai_models(c->s, id);
    if (!m) return srv_reply_error(c, 404, "the model '%.100s' does not exist", id);
    return srv_reply_json(c, 200, m);
}

/* ------------------------------------------------------------------ */
/* Request fields                                                     */

static int num_field(json_t *b, const char *key, double lo, double hi, float *dst, char *err, size_t es)
{
    double v;
    int r = srv_json_num(b, key, &v, err, es);
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (v < lo || v > hi) { snprintf(err, es, "%s: must be from %g to %g, got %g", key, lo, hi, v); return -1; }
    *dst = (float)v;
    return 0;
}

static int parse_common(srv_call *c, const char **model, int *stream, int *include_usage, srv_gen_opts *o,
                        char *err, size_t es)
{
    json_t *b = c->body;
    int64_t i;
    int r;
    *model = NULL;
    if (srv_json_str(b, "model", model, err, es) < 0) return -1;
    if (!*model || !**model) { snprintf(err, es, "model is required"); return -1; }
    *stream = 0;
    if (srv_json_bool(b, "stream", stream, err, es) < 0) return -1;
    json_t *so = json_object_get(b, "stream_options");
    *include_usage = 0;
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) { snprintf(err, es, "stream_options: expected an object"); return -1; }
        if (srv_json_bool(so, "include_usage", include_usage, err, es) < 0) return -1;
    }
    if (num_field(b, "temperature", 0, 2, &o->sp.temperature, err, es) < 0 ||
        num_field(b, "top_p", 0, 1, &o->sp.top_p, err, es) < 0 ||
        num_field(b, "presence_penalty", -2, 2, &o->sp.presence_penalty, err, es) < 0 ||
        num_field(b, "frequency_penalty", -2, 2, &o->sp.frequency_penalty, err, es) < 0 ||
        num_field(b, "min_p", 0, 1, &o->sp.min_p, err, es) < 0 ||
        num_field(b, "repeat_penalty", 0.01, 100, &o->sp.repeat_penalty, err, es) < 0)
        return -1;
    if ((r = srv_json_int(b, "top_k", 0, 1 << 20, &i, err, es)) < 0) return -1;
    if (r) o->sp.top_k = (int32_t)i;
    if ((r = srv_json_int(b, "seed", INT64_MIN, INT64_MAX, &i, err, es)) < 0) return -1;
    if (r) o->sp.seed = (uint64_t)i;
    if ((r = srv_json_int(b, "max_completion_tokens", 0, 1 << 24, &i, err, es)) < 0) return -1;
    if (r) o->max_tokens = (int32_t)i;
    else {
        if ((r = srv_json_int(b, "max_tokens", 0, 1 << 24, &i, err, es)) < 0) return -1;
        if (r) o->max_tokens = (int32_t)i;
    }
    if ((r = srv_json_int(b, "n", 1, 16, &i, err, es)) < 0) {
        snprintf(err, es, "n: from 1 to 16 choices");
        return -1;
    }
    if (r) o->n_choices = (int)i;
    if (srv_parse_stop(json_object_get(b, "stop"), "stop", o, err, es) < 0) return -1;
    /* logprobs: chat takes true/false and top_logprobs, completions a number */
    json_t *lp = json_object_get(b, "logprobs");
    int64_t top = 0;
    int rt;
    if ((rt = srv_json_int(b, "top_logprobs", 0, LAMINA_MAX_TOP_LOGPROBS, &top, err, es)) < 0) return -1;
    if (json_is_true(lp)) o->logprobs = (int)top;
    else if (json_is_integer(lp)) {
        if (json_integer_value(lp) < 0 || json_integer_value(lp) > LAMINA_MAX_TOP_LOGPROBS) {
            snprintf(err, es, "logprobs: must be from 0 to %d", LAMINA_MAX_TOP_LOGPROBS);
            return -1;
        }
        o->logprobs = (int)json_integer_value(lp);
    } else if (lp && !json_is_null(lp) && !json_is_false(lp)) {
        snprintf(err, es, "logprobs: expected a boolean (chat) or a number (completions)");
        return -1;
    } else if (rt > 0 && top > 0) {
        snprintf(err, es, "top_logprobs: needs logprobs true");
        return -1;
    }
    json_t *rf = json_object_get(b, "response_format");
    if (rf && !json_is_null(rf)) {
        json_t *t = json_is_object(rf) ? json_object_get(rf, "type") : NULL;
        const char *ts = json_is_string(t) ? json_string_value(t) : "";
        if (!strcmp(ts, "json_object")) {
            /* JSON mode: some JSON object */
            json_t *obj = json_pack("{s:s}", "type", "object");
            int prc = obj ? srv_parse_format(obj, "response_format", o, err, es) : -1;
            json_decref(obj);
            if (prc < 0) return -1;
        } else if (!strcmp(ts, "json_schema")) {
            json_t *js = json_object_get(rf, "json_schema");
            if (!json_is_object(js)) {
                snprintf(err, es, "response_format.json_schema: expected an object with \"name\" and \"schema\"");
                return -1;
            }
            json_t *sc = json_object_get(js, "schema");
            if (sc && !json_is_object(sc) && !json_is_boolean(sc)) {
                snprintf(err, es, "response_format.json_schema.schema: expected a JSON schema object");
                return -1;
            }
            if (srv_parse_format(sc, "response_format", o, err, es) < 0) return -1;
        } else if (strcmp(ts, "text") != 0) {
            snprintf(err, es, "response_format: type must be \"text\", \"json_object\" or \"json_schema\"");
            return -1;
        }
    }
    /* llama-server's GBNF grammar, instead of a schema */
    if (srv_parse_grammar(json_object_get(b, "grammar"), "grammar", o, err, es) < 0) return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Replies                                                            */

/* usage of every choice: the prompt once, the completions summed */
static json_t *usage(const srv_job *j)
{
    int gen = 0;
    for (const srv_job *a = j; a; a = a->sib) gen += a->r->res.n_gen;
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", j->r->res.n_prompt, "completion_tokens", gen,
                     "total_tokens", j->r->res.n_prompt + gen);
}

static json_t *head(const srv_job *j, const char *object)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", j->id, "object", object, "created",
                     (json_int_t)j->created, "model", j->model, "system_fingerprint", "lamina-" LAMINA_VERSION_STRING);
}

/* choices[].logprobs of chat: {"content": entries}, or null */
static json_t *chat_logprobs(json_t *entries)
{
    return entries ? json_pack("{s:O}", "content", entries) : json_null();
}

static json_t *cmpl_logprobs(json_t *entries)
{
    return entries ? srv_logprobs_completions(entries) : json_null();
}

/* "tool_calls" when the reply called tools, else stop/length */
static const char *finish(const srv_job *j)
{
    if (j->reply && lamina_reply_n_calls(j->reply) > 0 && j->r->res.stop_reason != LAMINA_STOP_LENGTH &&
        j->r->res.stop_reason != LAMINA_STOP_CONTEXT)
        return "tool_calls";
    return srv_finish_reason(j->r);
}

static json_t *chat_chunk(srv_job *j, const srv_delta *d)
{
    json_t *o = head(j, "chat.completion.chunk");
    json_t *delta = json_object();
    if (j->n_chunks == 0) json_object_set_new(delta, "role", json_string("assistant"));
    if (d->content_len || (!d->thinking_len && !d->n_calls))
        json_object_set_new(delta, "content", srv_json_text(d->content, d->content_len));
    if (d->thinking_len) json_object_set_new(delta, "reasoning_content", srv_json_text(d->thinking, d->thinking_len));
    if (d->n_calls) json_object_set_new(delta, "tool_calls", srv_calls_openai(j, d->first_call, d->n_calls, 1));
    json_object_set_new(o, "choices", json_pack("[{s:i, s:o, s:o, s:n}]", "index", j->index, "delta", delta,
                                                "logprobs", chat_logprobs(j->chunk_lp), "finish_reason"));
    return o;
}

static json_t *chat_final(srv_job *j)
{
    json_t *o = head(j, "chat.completion.chunk");
    json_t *delta = j->n_chunks == 0 ? json_pack("{s:s, s:s}", "role", "assistant", "content", "") : json_object();
    json_object_set_new(o, "choices", json_pack("[{s:i, s:o, s:n, s:s}]", "index", j->index, "delta", delta,
                                                "logprobs", "finish_reason", finish(j)));
    return o;
}

static json_t *chunk_usage(srv_job *j)
{
    json_t *o = head(j, "chat.completion.chunk");
    if (!strncmp(j->id, "cmpl-", 5)) json_object_set_new(o, "object", json_string("text_completion"));
    json_object_set_new(o, "choices", json_array());
    json_object_set_new(o, "usage", usage(j));
    return o;
}

/* one choice of a chat completion */
static json_t *chat_choice(srv_job *j)
{
    const char *text = j->r->all ? j->r->all : "", *th = "";
    size_t len = j->r->all_n, tl = 0, nc = 0;
    if (j->reply) {
        text = lamina_reply_content(j->reply, &len);
        th = lamina_reply_thinking(j->reply, &tl);
        nc = lamina_reply_n_calls(j->reply);
    }
    json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                            nc && !len ? json_null() : srv_json_text(text, len));
    if (tl) json_object_set_new(msg, "reasoning_content", srv_json_text(th, tl));
    if (nc) json_object_set_new(msg, "tool_calls", srv_calls_openai(j, 0, nc, 0));
    return json_pack("{s:i, s:o, s:o, s:s}", "index", j->index, "message", msg, "logprobs",
                     chat_logprobs(j->r->lp_all), "finish_reason", finish(j));
}

static json_t *chat_whole(srv_job *j)
{
    json_t *o = head(j, "chat.completion");
    json_t *choices = json_array();
    for (srv_job *a = j; a; a = a->sib) json_array_append_new(choices, chat_choice(a));
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage(j));
    return o;
}

static json_t *cmpl_chunk(srv_job *j, const srv_delta *d)
{
    json_t *o = head(j, "text_completion");
    json_object_set_new(o, "choices", json_pack("[{s:o, s:i, s:o, s:n}]", "text", srv_json_text(d->content, d->content_len), "index", j->index,
                                                "logprobs", cmpl_logprobs(j->chunk_lp), "finish_reason"));
    return o;
}

static json_t *cmpl_final(srv_job *j)
{
    json_t *o = head(j, "text_completion");
    json_object_set_new(o, "choices", json_pack("[{s:s, s:i, s:n, s:s}]", "text", "", "index", j->index,
                                                "logprobs", "finish_reason", srv_finish_reason(j->r)));
    return o;
}

static json_t *cmpl_whole(srv_job *j)
{
    json_t *o = head(j, "text_completion");
    json_t *choices = json_array();
    for (srv_job *a = j; a; a = a->sib)
        json_array_append_new(choices, json_pack("{s:o, s:i, s:o, s:s}", "text",
                                                 srv_json_text(a->r->all ? a->r->all : "", a->r->all_n), "index",
                                                 a->index, "logprobs", cmpl_logprobs(a->r->lp_all), "finish_reason",
                                                 srv_finish_reason(a->r)));
    json_object_set_new(o, "choices", choices);
    json_object_set_new(o, "usage", usage(j));
    return o;
}

static const srv_fmt chat_fmt = { 1, chat_chunk, chat_final, chunk_usage, chat_whole };
static const srv_fmt cmpl_fmt = { 1, cmpl_chunk, cmpl_final, chunk_usage, cmpl_whole };

/* ------------------------------------------------------------------ */
/* POST /v1/chat/completions                                          */

/* A message's content: a string, null, or an array of text parts. */
static int content_text(json_t *v, size_t idx, char **out, char *err, size_t es)
{
    *out = NULL;
    if (!v || json_is_null(v)) { *out = strdup(""); return *out ? 0 : -1; }
    if (json_is_string(v)) { *out = strdup(json_string_value(v)); return *out ? 0 : -1; }
    if (!json_is_array(v)) {
        snprintf(err, es, "messages[%zu].content: expected a string or an array of parts", idx);
        return -1;
    }
    size_t total = 1;
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *p = json_array_get(v, i);
        json_t *t = json_is_object(p) ? json_object_get(p, "type") : NULL;
        json_t *tx = json_is_object(p) ? json_object_get(p, "text") : NULL;
        if (!t || !json_is_string(t) || strcmp(json_string_value(t), "text") != 0 || !json_is_string(tx)) {
            snprintf(err, es, "messages[%zu].content[%zu]: only {\"type\": \"text\", \"text\": ...} parts are supported",
                     idx, i);
            return -1;
        }
        total += strlen(json_string_value(tx));
    }
    char *s = malloc(total);
    if (!s) return -1;
    s[0] = 0;
    for (size_t i = 0; i < json_array_size(v); i++)
        strcat(s, json_string_value(json_object_get(json_array_get(v, i), "text")));
    *out = s;
    return 0;
}

/* tool_choice, parallel_tool_calls, reasoning_effort, chat_template_kwargs */
static int parse_chat_extras(json_t *b, srv_chat *ch, char *err, size_t es)
{
    if (srv_chat_tools(ch, json_object_get(b, "tools"), err, es) < 0) return -1;
    json_t *tc = json_object_get(b, "tool_choice");
    if (tc && !json_is_null(tc)) {
        const char *v = json_is_string(tc) ? json_string_value(tc) : NULL;
        json_t *fn = json_is_object(tc) ? json_object_get(json_object_get(tc, "function"), "name") : NULL;
        if (v && !strcmp(v, "auto")) ch->choice = LAMINA_TOOL_AUTO;
        else if (v && !strcmp(v, "none")) ch->choice = LAMINA_TOOL_NONE;
        else if (v && !strcmp(v, "required")) ch->choice = LAMINA_TOOL_REQUIRED;
        else if (json_is_string(fn) && json_string_length(fn) < sizeof ch->named) {
            ch->choice = LAMINA_TOOL_NAMED;
            snprintf(ch->named, sizeof ch->named, "%s", json_string_value(fn));
        } else {
            snprintf(err, es, "tool_choice: expected \"auto\", \"none\", \"required\" or "
                              "{\"type\": \"function\", \"function\": {\"name\": ...}}");
            return -1;
        }
        if (ch->choice >= LAMINA_TOOL_REQUIRED && !ch->tools) {
            snprintf(err, es, "tool_choice: a tool call is required but no tools are given");
            return -1;
        }
    }
    if (srv_json_bool(b, "parallel_tool_calls", &ch->parallel, err, es) < 0) return -1;
    const char *effort = NULL;
    if (srv_json_str(b, "reasoning_effort", &effort, err, es) < 0) return -1;
    json_t *kw = json_object_get(b, "chat_template_kwargs");
    if (kw && !json_is_null(kw)) {
        if (!json_is_object(kw)) { snprintf(err, es, "chat_template_kwargs: expected an object"); return -1; }
        if (json_object_get(kw, "messages") || json_object_get(kw, "tools")) {
            snprintf(err, es, "chat_template_kwargs: messages and tools are request fields, not template variables");
            return -1;
        }
        ch->kwargs = json_deep_copy(kw);
        json_t *et = json_object_get(kw, "enable_thinking");
        if (json_is_boolean(et)) ch->think = json_is_true(et);
    }
    if (effort) {
        if (!ch->kwargs) ch->kwargs = json_object();
        json_object_set_new(ch->kwargs, "reasoning_effort", json_string(effort));
        if (!strcmp(effort, "none")) ch->think = 0;
        else if (ch->think < 0) {   /* asks for reasoning, where the model can */
            ch->think = 1;
            ch->think_soft = 1;
        }
    }
    return 0;
}

/* messages and the chat fields into ch.  0 or -1. */
static int parse_chat(json_t *body, srv_chat *ch, char *err, size_t es)
{
    if (parse_chat_extras(body, ch, err, es) < 0) return -1;
    json_t *mv = json_object_get(body, "messages");
    if (!mv || !json_is_array(mv) || json_array_size(mv) == 0) {
        snprintf(err, es, "messages: expected a non-empty array");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(mv); i++) {
        json_t *e = json_array_get(mv, i);
        const char *role = NULL, *tcid = NULL, *name = NULL, *reasoning = NULL;
        char fe[300];
        if (!json_is_object(e)) { snprintf(err, es, "messages[%zu]: expected an object", i); return -1; }
        if (srv_json_str(e, "role", &role, fe, sizeof fe) < 0 || !role) {
            snprintf(err, es, "messages[%zu].role: expected a string", i);
            return -1;
        }
        if (srv_json_str(e, "tool_call_id", &tcid, fe, sizeof fe) < 0 || srv_json_str(e, "name", &name, fe, sizeof fe) < 0 ||
            srv_json_str(e, "reasoning_content", &reasoning, fe, sizeof fe) < 0) {
            snprintf(err, es, "messages[%zu].%s", i, fe);
            return -1;
        }
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool")) {
            snprintf(err, es, "messages[%zu].role: expected system, developer, user, assistant or tool, got '%.40s'",
                     i, role);
            return -1;
        }
        char *text;
        json_t *cv = json_object_get(e, "content");
        if (content_text(cv, i, &text, err, es) < 0) return -1;
        int rc = srv_chat_add(ch, i, role, (!cv || json_is_null(cv)) && !strcmp(role, "assistant") ? NULL : text,
                              json_object_get(e, "tool_calls"), tcid, !strcmp(role, "tool") ? name : NULL, reasoning,
                              err, es);
        free(text);
        if (rc < 0) return -1;
    }
    return 0;
}

int srv_oai_chat(srv_call *c)
{
    char err[512];
    srv_gen_opts o;
    srv_gen_opts_defaults(&o, c->s);
    const char *model;
    int stream, include_usage, rc, http = 400;
    srv_chat ch;
    srv_chat_init(&ch);
    if (parse_common(c, &model, &stream, &include_usage, &o, err, sizeof err) < 0 ||
        parse_chat(c->body, &ch, err, sizeof err) < 0)
        goto bad;
    srv_model *m;
    double load_s;
    if (srv_pool_acquire(c->s, model, &m, &load_s, &http, err, sizeof err) < 0) {
        srv_chat_clear(&ch);
        srv_gen_opts_clear(&o);
        return srv_model_error(c, http, err);
    }
    char *text = NULL;
    if (srv_model_generates(m, err, sizeof err) < 0) {
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    if (!lamina_chat_available(m->chat)) {
        snprintf(err, sizeof err, "model '%s' has no chat template lamina knows; use /v1/completions", m->name);
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    if (srv_model_defaults(m, c->body, SRV_OPENAI, &o, &ch, err, sizeof err) < 0) {
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    srv_job tmpl = { .include_usage = include_usage };
    if (srv_chat_prepare(m, &ch, &o, &text, &tmpl.reply, &http, err, sizeof err) < 0) {
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    make_id("chatcmpl-", tmpl.id, sizeof tmpl.id);
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

/* ------------------------------------------------------------------ */
/* POST /v1/completions                                               */

int srv_oai_completions(srv_call *c)
{
    char err[512];
    srv_gen_opts o;
    srv_gen_opts_defaults(&o, c->s);
    const char *model, *prompt = NULL;
    int stream, include_usage, echo = 0, rc;
    if (parse_common(c, &model, &stream, &include_usage, &o, err, sizeof err) < 0) goto bad;
    json_t *pv = json_object_get(c->body, "prompt");
    if (pv && json_is_string(pv)) prompt = json_string_value(pv);
    else if (pv && json_is_array(pv) && json_array_size(pv) == 1 && json_is_string(json_array_get(pv, 0)))
        prompt = json_string_value(json_array_get(pv, 0));
    else {
        snprintf(err, sizeof err, "prompt: expected a string (or an array of one string)");
        goto bad;
    }
    if (srv_json_bool(c->body, "echo", &echo, err, sizeof err) < 0) goto bad;
    if (echo) { snprintf(err, sizeof err, "echo: not supported"); goto bad; }
    const char *suffix = NULL;
    if (srv_json_str(c->body, "suffix", &suffix, err, sizeof err) < 0) goto bad;
    int64_t best;
    if (srv_json_int(c->body, "best_of", 1, 1, &best, err, sizeof err) < 0) {
        snprintf(err, sizeof err, "best_of: only 1 is supported");
        goto bad;
    }
    srv_model *m;
    double load_s;
    int http;
    if (srv_pool_acquire(c->s, model, &m, &load_s, &http, err, sizeof err) < 0) {
        srv_gen_opts_clear(&o);
        return srv_model_error(c, http, err);
    }
    if (!*prompt) {
        srv_pool_release(c->s, m, o.keep_alive);
        snprintf(err, sizeof err, "prompt: must not be empty");
        goto bad;
    }
    if (srv_model_defaults(m, c->body, SRV_OPENAI, &o, NULL, err, sizeof err) < 0) {
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    srv_job tmpl = { .include_usage = include_usage };
    make_id("cmpl-", tmpl.id, sizeof tmpl.id);
    if (suffix && *suffix) {   /* fill in the middle */
        lamina_token *fim;
        size_t nf;
        if (srv_fim_tokens(m, prompt, suffix, &fim, &nf, err, sizeof err) < 0) {
            srv_pool_release(c->s, m, o.keep_alive);
            goto bad;
        }
        rc = srv_start_job(c, m, fim, nf, "", 0, &o, stream, &cmpl_fmt, &tmpl, load_s);
        free(fim);
        srv_gen_opts_clear(&o);
        return rc;
    }
    rc = srv_start_job(c, m, NULL, 0, prompt, LAMINA_TOKENIZE_ADD_SPECIAL, &o, stream, &cmpl_fmt, &tmpl, load_s);
    srv_gen_opts_clear(&o);
    return rc;
bad:
    srv_gen_opts_clear(&o);
    return srv_reply_error(c, 400, "%s", err);
}

/* ------------------------------------------------------------------ */
/* llama-server's helpers: POST /apply-template, /tokenize, /detokenize */

/* The "model" field, loaded. */
static int helper_model(srv_call *c, srv_model **m, int *http, char *err, size_t es)
{
    const char *model = NULL;
    *http = 400;
    if (srv_json_str(c->body, "model", &model, err, es) < 0) return -1;
    if (!model || !*model) { snprintf(err, es, "model is required"); return -1; }
    double load_s;
    return srv_pool_acquire(c->s, model, m, &load_s, http, err, es);
}

int srv_llama_apply_template(srv_call *c)
{
    char err[512];
    int http = 400;
    srv_chat ch;
    srv_chat_init(&ch);
    srv_gen_opts o;
    srv_gen_opts_defaults(&o, c->s);
    srv_model *m = NULL;
    char *text = NULL;
    lamina_reply *reply = NULL;
    if (parse_chat(c->body, &ch, err, sizeof err) < 0) goto bad;
    if (helper_model(c, &m, &http, err, sizeof err) < 0) { m = NULL; goto bad; }
    if (!lamina_chat_available(m->chat)) {
        snprintf(err, sizeof err, "model '%s' has no chat template lamina knows", m->name);
        goto bad;
    }
    if (srv_chat_prepare(m, &ch, &o, &text, &reply, &http, err, sizeof err) < 0) goto bad;
    lamina_reply_free(reply);
    srv_pool_release(c->s, m, o.keep_alive);
    srv_chat_clear(&ch);
    srv_gen_opts_clear(&o);
    json_t *j = json_pack("{s:o}", "prompt", srv_json_text(text, strlen(text)));
    free(text);
    return srv_reply_json(c, 200, j);
bad:
    if (m) srv_pool_release(c->s, m, o.keep_alive);
    srv_chat_clear(&ch);
    srv_gen_opts_clear(&o);
    return http == 503 ? srv_model_error(c, http, err) : srv_reply_error(c, http, "%s", err);
}

int srv_llama_tokenize(srv_call *c)
{
    char err[512];
    int http, add_special = 0, parse_special = 1, with_pieces = 0;
    const char *content = NULL;
    srv_model *m;
    if (srv_json_str(c->body, "content", &content, err, sizeof err) < 0 ||
        srv_json_bool(c->body, "add_special", &add_special, err, sizeof err) < 0 ||
        srv_json_bool(c->body, "parse_special", &parse_special, err, sizeof err) < 0 ||
        srv_json_bool(c->body, "with_pieces", &with_pieces, err, sizeof err) < 0)
        return srv_reply_error(c, 400, "%s", err);
    if (!content) return srv_reply_error(c, 400, "content: expected a string");
    if (helper_model(c, &m, &http, err, sizeof err) < 0) return srv_model_error(c, http, err);
    lamina_token *ids = NULL;
    size_t n = 0;
    unsigned flags = (add_special ? LAMINA_TOKENIZE_ADD_SPECIAL : 0) | (parse_special ? LAMINA_TOKENIZE_PARSE_SPECIAL : 0);
    int rc = lamina_tokenizer_encode(m->tok, content, strlen(content), flags, &ids, &n, err, sizeof err);
    json_t *toks = json_array();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!with_pieces) {
            json_array_append_new(toks, json_integer(ids[i]));
            continue;
        }
        size_t pl;
        const char *p = lamina_tokenizer_piece(m->tok, ids[i], 1, &pl);
        json_array_append_new(toks, json_pack("{s:i, s:o}", "id", ids[i], "piece", srv_json_text(p, pl)));
    }
    free(ids);
    srv_pool_release(c->s, m, c->s->set.keep_alive);
    if (rc < 0) {
        json_decref(toks);
        return srv_reply_error(c, 500, "%s", err);
    }
    return srv_reply_json(c, 200, json_pack("{s:o}", "tokens", toks));
}

int srv_llama_detokenize(srv_call *c)
{
    char err[512];
    int http;
    json_t *tv = json_object_get(c->body, "tokens");
    if (!json_is_array(tv)) return srv_reply_error(c, 400, "tokens: expected an array of token ids");
    size_t n = json_array_size(tv);
    lamina_token *ids = malloc((n + 1) * sizeof *ids);
    if (!ids) return srv_reply_error(c, 500, "out of memory");
    srv_model *m;
    if (helper_model(c, &m, &http, err, sizeof err) < 0) {
        free(ids);
        return srv_model_error(c, http, err);
    }
    int32_t nv = lamina_tokenizer_n_vocab(m->tok);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(tv, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= nv) {
            free(ids);
            srv_pool_release(c->s, m, c->s->set.keep_alive);
            return srv_reply_error(c, 400, "tokens[%zu]: expected a token id below %d", i, (int)nv);
        }
        ids[i] = (lamina_token)json_integer_value(e);
    }
    char *text = NULL;
    size_t tl = 0;
    int rc = lamina_tokenizer_decode(m->tok, ids, n, LAMINA_DECODE_RENDER_SPECIAL, &text, &tl, err, sizeof err);
    free(ids);
    srv_pool_release(c->s, m, c->s->set.keep_alive);
    if (rc < 0) return srv_reply_error(c, 500, "%s", err);
    json_t *j = json_pack("{s:o}", "content", srv_json_text(text, tl));
    free(text);
    return srv_reply_json(c, 200, j);
}
