/* fuzz_request.c - libFuzzer harness for the request bodies of `lamina serve`
 * (runtime/server/api_*.c, json.c): every POST body is untrusted.  The first
 * input byte picks the endpoint; the rest is the body, parsed with
 * srv_json_parse under the default depth limit, exactly as http.c does,
 * and handed to the endpoint's handler.  The handlers parse and check every
 * field (options, stop strings, messages, tool calls, tools, format and
 * response_format schemas, think, logprobs, embedding inputs, rerank
 * documents) before they ask the pool for the model; here the pool knows no
 * model, so each request ends in a 400 (a field refused) or a 404 (the
 * model).  The transport and the pool are replaced below by doubles that
 * check what the handlers hand them: one reply per request, an error status
 * with a non-empty message, never a model.  Checked as well: no crash, leak
 * or sanitizer report.  Built by tests/fuzz.am. */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

static int replies;        /* replies queued for the current request */
static int last_status;

/* ---- the transport (http.c) ---- */

int srv_reply_json(srv_call *c, int status, json_t *j)
{
    (void)c;
    replies++;
    last_status = status;
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    free(s);
    json_decref(j);
    return 1;
}

int srv_reply_text(srv_call *c, int status, const char *content_type, const char *text, size_t len)
{
    (void)c;
    if (content_type == NULL || (len && text == NULL))
        abort();
    replies++;
    last_status = status;
    return 1;
}

int srv_reply_error(srv_call *c, int status, const char *fmt, ...)
{
    (void)c;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (status < 400 || status > 599 || n <= 0 || msg[0] == 0) {
        fprintf(stderr, "fuzz_request: error reply %d with message '%s'\n", status, msg);
        abort();
    }
    replies++;
    last_status = status;
    return 1;
}

int srv_reply_stream(srv_call *c, const char *content_type, srv_stream_next_fn next, srv_stream_free_fn fin,
                     void *ctx)
{
    (void)c, (void)content_type, (void)next, (void)fin, (void)ctx;
    abort();   /* only a loaded model streams */
}

/* ---- the pool (pool.c): no model is ever there ---- */

int srv_model_resolve(const lamina_config *cfg, const char *name, char *canon, size_t canon_size, char *path,
                      size_t path_size, char *err, size_t err_size)
{
    (void)cfg, (void)canon, (void)canon_size, (void)path, (void)path_size;
    if (name == NULL)
        abort();
    snprintf(err, err_size, "model '%.100s' not found", name);
    return LAMINA_ENOENT;
}

int srv_pool_acquire(srv *s, const char *name, srv_model **out, double *load_s, int *http, char *err,
                     size_t err_size)
{
    (void)s, (void)load_s;
    if (name == NULL || out == NULL || http == NULL)
        abort();
    *out = NULL;
    *http = 404;
    snprintf(err, err_size, "model '%.100s' not found", name);
    return -1;
}

/* Reached only with a model in hand, which this harness never gives out. */
void srv_pool_release(srv *s, srv_model *m, double keep_alive) { (void)s, (void)m, (void)keep_alive; abort(); }
void srv_pool_hold(srv *s, srv_model *m) { (void)s, (void)m; abort(); }
int srv_model_defaults(const srv_model *m, json_t *body, int flavor, srv_gen_opts *o, srv_chat *ch, char *err,
                       size_t err_size)
{
    (void)m, (void)body, (void)flavor, (void)o, (void)ch, (void)err, (void)err_size;
    abort();
}
json_t *srv_pool_tags(const lamina_config *cfg, int hash_files) { (void)cfg, (void)hash_files; abort(); }
json_t *srv_pool_ps(srv *s) { (void)s; abort(); }
json_t *srv_pool_openai_models(srv *s, const char *only) { (void)s, (void)only; abort(); }
json_t *srv_show(const lamina_config *cfg, const char *name, int verbose, int *http, char *err, size_t err_size)
{
    (void)cfg, (void)verbose;
    if (name == NULL || http == NULL)
        abort();
    *http = 404;
    snprintf(err, err_size, "model '%.100s' not found", name);
    return NULL;
}
char *srv_metrics_render(srv *s, size_t *len) { (void)s, (void)len; abort(); }
void srv_metrics_tokens(srv_metrics *m, const char *model, int64_t prompt, int64_t gen)
{
    (void)m, (void)model, (void)prompt, (void)gen;
    abort();
}
void srv_metrics_ttft(srv_metrics *m, double s) { (void)m, (void)s; abort(); }
void srv_metrics_token_latency(srv_metrics *m, double s) { (void)m, (void)s; abort(); }
void srv_metrics_event(srv_metrics *m, const char *event) { (void)m, (void)event; abort(); }

/* ---- the engine: never reached without a model ---- */

int lamina_batcher_submit(lamina_batcher *b, const lamina_batcher_request *r, uint64_t *id, char *err,
                          size_t err_size)
{
    (void)b, (void)r, (void)id, (void)err, (void)err_size;
    abort();
}
void lamina_batcher_cancel(lamina_batcher *b, uint64_t id) { (void)b, (void)id; abort(); }
void lamina_batcher_stats_get(lamina_batcher *b, lamina_batcher_stats *st) { (void)b, (void)st; abort(); }
const lamina_engine_params *lamina_engine_params_get(const lamina_engine *e) { (void)e; abort(); }
int lamina_model_classify(const lamina_model *m, const float *h, float *out) { (void)m, (void)h, (void)out; abort(); }
int lamina_model_rank_pooling(const lamina_model *m) { (void)m; abort(); }
int lamina_model_embed_pooling(const lamina_model *m, const char *name, char *err, size_t err_size)
{
    (void)m, (void)name, (void)err, (void)err_size;
    abort();
}
int32_t lamina_model_embed_ctx(const lamina_model *m, int32_t n_ctx, int32_t n_batch)
{
    (void)m, (void)n_ctx, (void)n_batch;
    abort();
}
void lamina_vec_normalise(float *v, int32_t d) { (void)v, (void)d; abort(); }

/* ---- the endpoints ---- */

static const struct {
    int (*fn)(srv_call *c);
    int flavor;
    const char *endpoint;
} endpoints[] = {
    {srv_api_generate, SRV_OLLAMA, "/api/generate"},
    {srv_api_chat, SRV_OLLAMA, "/api/chat"},
    {srv_api_show, SRV_OLLAMA, "/api/show"},
    {srv_api_embed, SRV_OLLAMA, "/api/embed"},
    {srv_api_embeddings, SRV_OLLAMA, "/api/embeddings"},
    {srv_oai_chat, SRV_OPENAI, "/v1/chat/completions"},
    {srv_oai_completions, SRV_OPENAI, "/v1/completions"},
    {srv_oai_embeddings, SRV_OPENAI, "/v1/embeddings"},
    {srv_rerank, SRV_PLAIN, "/v1/rerank"},
    {srv_llama_apply_template, SRV_PLAIN, "/apply-template"},
    {srv_llama_tokenize, SRV_PLAIN, "/tokenize"},
    {srv_llama_detokenize, SRV_PLAIN, "/detokenize"},
};
#define N_ENDPOINTS (sizeof endpoints / sizeof endpoints[0])

static srv *server;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (server == NULL) {
        server = calloc(1, sizeof *server);
        if (server == NULL)
            abort();
        lamina_config_defaults(&server->cfg);
        server->cfg.seed = 1;
        server->set.max_json_depth = server->cfg.server_max_json_depth;
        server->set.keep_alive = 300;
        server->set.parallel = 1;
    }
    if (size == 0)
        return 0;
    size_t which = data[0] % N_ENDPOINTS;
    json_t *body = NULL;
    char err[512];
    if (srv_json_parse((const char *)data + 1, size - 1, server->set.max_json_depth, &body, err, sizeof err) != 0) {
        if (body != NULL || err[0] == 0)
            abort();
        return 0;
    }
    srv_call c;
    memset(&c, 0, sizeof c);
    c.s = server;
    c.method = "POST";
    c.url = c.endpoint = endpoints[which].endpoint;
    c.flavor = endpoints[which].flavor;
    c.body = body;
    c.fd = -1;
    replies = 0;
    last_status = 0;
    endpoints[which].fn(&c);
    if (replies != 1 || (last_status != 400 && last_status != 404)) {
        fprintf(stderr, "fuzz_request: %s: %d replies, status %d\n", c.endpoint, replies, last_status);
        abort();
    }
    json_decref(body);
    return 0;
}
