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
 * server does.  Features lamina cannot honour (n > 1, logprobs, tools,
 * response formats other than text, images) are refused with 400.
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
    if ((r = srv_json_int(b, "n", 1, 1, &i, err, es)) < 0) {
        snprintf(err, es, "n: only one choice per request is supported");
        return -1;
    }
    if (srv_parse_stop(json_object_get(b, "stop"), "stop", o, err, es) < 0) return -1;
    json_t *lp = json_object_get(b, "logprobs");
    if (lp && !json_is_null(lp) && !json_is_false(lp)) { snprintf(err, es, "logprobs: not supported"); return -1; }
    json_t *tools = json_object_get(b, "tools");
    if (tools && !json_is_null(tools) && (!json_is_array(tools) || json_array_size(tools) > 0)) {
        snprintf(err, es, "tools: tool calling is not supported");
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
    return 0;
}

/* ------------------------------------------------------------------ */
/* Replies                                                            */

static json_t *usage(const srv_job *j)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", j->r->res.n_prompt, "completion_tokens",
                     j->r->res.n_gen, "total_tokens", j->r->res.n_prompt + j->r->res.n_gen);
}

static json_t *head(const srv_job *j, const char *object)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:s}", "id", j->id, "object", object, "created",
                     (json_int_t)j->created, "model", j->model, "system_fingerprint", "lamina-" LAMINA_VERSION_STRING);
}

static json_t *chat_chunk(srv_job *j, const char *text, size_t len)
{
    json_t *o = head(j, "chat.completion.chunk");
    json_t *delta = j->n_chunks == 0 ? json_pack("{s:s, s:o}", "role", "assistant", "content", srv_json_text(text, len))
                                     : json_pack("{s:o}", "content", srv_json_text(text, len));
    json_object_set_new(o, "choices", json_pack("[{s:i, s:o, s:n, s:n}]", "index", 0, "delta", delta,
                                                "logprobs", "finish_reason"));
    return o;
}

static json_t *chat_final(srv_job *j)
{
    json_t *o = head(j, "chat.completion.chunk");
    json_t *delta = j->n_chunks == 0 ? json_pack("{s:s, s:s}", "role", "assistant", "content", "") : json_object();
    json_object_set_new(o, "choices", json_pack("[{s:i, s:o, s:n, s:s}]", "index", 0, "delta", delta,
                                                "logprobs", "finish_reason", srv_finish_reason(j->r)));
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

static json_t *chat_whole(srv_job *j)
{
    json_t *o = head(j, "chat.completion");
    json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                            srv_json_text(j->r->all ? j->r->all : "", j->r->all_n));
    json_object_set_new(o, "choices", json_pack("[{s:i, s:o, s:n, s:s}]", "index", 0, "message", msg,
                                                "logprobs", "finish_reason", srv_finish_reason(j->r)));
    json_object_set_new(o, "usage", usage(j));
    return o;
}

static json_t *cmpl_chunk(srv_job *j, const char *text, size_t len)
{
    json_t *o = head(j, "text_completion");
    json_object_set_new(o, "choices", json_pack("[{s:o, s:i, s:n, s:n}]", "text", srv_json_text(text, len), "index", 0,
                                                "logprobs", "finish_reason"));
    return o;
}

static json_t *cmpl_final(srv_job *j)
{
    json_t *o = head(j, "text_completion");
    json_object_set_new(o, "choices", json_pack("[{s:s, s:i, s:n, s:s}]", "text", "", "index", 0,
                                                "logprobs", "finish_reason", srv_finish_reason(j->r)));
    return o;
}

static json_t *cmpl_whole(srv_job *j)
{
    json_t *o = head(j, "text_completion");
    json_object_set_new(o, "choices", json_pack("[{s:o, s:i, s:n, s:s}]", "text",
                                                srv_json_text(j->r->all ? j->r->all : "", j->r->all_n), "index", 0, "logprobs", "finish_reason",
                                                srv_finish_reason(j->r)));
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

int srv_oai_chat(srv_call *c)
{
    char err[512];
    srv_gen_opts o;
    srv_gen_opts_defaults(&o, c->s);
    const char *model;
    int stream, include_usage, rc;
    lamina_chat_msg *msgs = NULL;
    size_t nm = 0;
    if (parse_common(c, &model, &stream, &include_usage, &o, err, sizeof err) < 0) goto bad;
    json_t *mv = json_object_get(c->body, "messages");
    if (!mv || !json_is_array(mv) || json_array_size(mv) == 0) {
        snprintf(err, sizeof err, "messages: expected a non-empty array");
        goto bad;
    }
    nm = json_array_size(mv);
    msgs = calloc(nm, sizeof *msgs);
    if (!msgs) { snprintf(err, sizeof err, "out of memory"); goto bad; }
    for (size_t i = 0; i < nm; i++) {
        json_t *e = json_array_get(mv, i);
        const char *role = NULL;
        char fe[300];
        if (!json_is_object(e)) { snprintf(err, sizeof err, "messages[%zu]: expected an object", i); goto bad; }
        if (srv_json_str(e, "role", &role, fe, sizeof fe) < 0 || !role) {
            snprintf(err, sizeof err, "messages[%zu].role: expected a string", i);
            goto bad;
        }
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool")) {
            snprintf(err, sizeof err, "messages[%zu].role: expected system, developer, user, assistant or tool, got '%.40s'",
                     i, role);
            goto bad;
        }
        char *text;
        if (content_text(json_object_get(e, "content"), i, &text, err, sizeof err) < 0) goto bad;
        msgs[i] = (lamina_chat_msg){ role, text };
    }
    srv_model *m;
    double load_s;
    int http;
    if (srv_pool_acquire(c->s, model, &m, &load_s, &http, err, sizeof err) < 0) {
        for (size_t i = 0; i < nm; i++) free((char *)msgs[i].content);
        free(msgs);
        srv_gen_opts_clear(&o);
        return srv_model_error(c, http, err);
    }
    char *text = NULL;
    if (!lamina_chat_available(m->chat)) {
        snprintf(err, sizeof err, "model '%s' has no chat template lamina knows; use /v1/completions", m->name);
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    if (lamina_chat_apply(m->chat, msgs, nm, 1, &text, NULL, err, sizeof err) < 0) {
        srv_pool_release(c->s, m, o.keep_alive);
        goto bad;
    }
    srv_job tmpl = { .include_usage = include_usage };
    make_id("chatcmpl-", tmpl.id, sizeof tmpl.id);
    rc = srv_start_job(c, m, NULL, 0, text, LAMINA_TOKENIZE_ADD_SPECIAL | LAMINA_TOKENIZE_PARSE_SPECIAL, &o,
                       stream, &chat_fmt, &tmpl, load_s);
    free(text);
    for (size_t i = 0; i < nm; i++) free((char *)msgs[i].content);
    free(msgs);
    srv_gen_opts_clear(&o);
    return rc;
bad:
    if (msgs)
        for (size_t i = 0; i < nm; i++) free((char *)msgs[i].content);
    free(msgs);
    srv_gen_opts_clear(&o);
    return srv_reply_error(c, 400, "%s", err);
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
    if (suffix && *suffix) { snprintf(err, sizeof err, "suffix: fill-in-the-middle is not supported"); goto bad; }
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
    srv_job tmpl = { .include_usage = include_usage };
    make_id("cmpl-", tmpl.id, sizeof tmpl.id);
    rc = srv_start_job(c, m, NULL, 0, prompt, LAMINA_TOKENIZE_ADD_SPECIAL, &o, stream, &cmpl_fmt, &tmpl, load_s);
    srv_gen_opts_clear(&o);
    return rc;
bad:
    srv_gen_opts_clear(&o);
    return srv_reply_error(c, 400, "%s", err);
}
