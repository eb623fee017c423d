/*
 * server.h - `lamina serve`: the HTTP service (Ollama- and
 * OpenAI-compatible API, /metrics) over the batch scheduler.
 *
 *   http.c        libmicrohttpd daemon: routing, limits, API key, CORS,
 *                 JSON bodies, replies, streamed replies
 *   pool.c        models by name (catalogue and model directories), load
 *                 on first use, keep-alive, memory budget, one batching
 *                 thread per loaded model
 *   gen.c         one generation request: prompt -> batcher -> text,
 *                 waiting, streaming, cancelling on disconnect
 *   api_ollama.c  the /api endpoints;  api_openai.c  the /v1 endpoints;
 *   api_chat.c    what both chat endpoints share: messages in the
 *                 template's shape, tools, thinking, the reply parser;
 *   metrics.c     GET /metrics
 *   json.c        JSON parsing with limits, typed field access, times
 *
 * Threads: libmicrohttpd runs one thread per connection; each loaded model
 * has one worker thread driving its batcher; the main thread (cmd_serve.c)
 * waits for signals and unloads idle models.  Part of the lamina program,
 * not of liblamina.
 */
#ifndef LAMINA_SERVER_H
#define LAMINA_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lamina/lamina.h"
#include "batcher.h"
#include "chat.h"
#include "engine.h"
#include "grammar.h"
#include "model.h"
#include "reply.h"
#include "tokenizer.h"

struct MHD_Connection;
struct MHD_Daemon;

typedef struct srv srv;
typedef struct srv_model srv_model;
typedef struct srv_req srv_req;
typedef struct srv_call srv_call;
typedef struct srv_upload srv_upload;

/* ------------------------------------------------------------------ */
/* Settings (from [server], LAMINA_HOST, the command line)            */

typedef struct srv_settings {
    char     host[256];           /* numeric address or name to bind */
    int      port;                /* 0: any free port */
    int      parallel;            /* sequences per model */
    int      queue;               /* waiting requests per model */
    int      n_ctx;               /* positions per sequence (0: see pool.c) */
    int      prompt_chunk;        /* prompt tokens per step */
    double   request_timeout;     /* seconds, 0 = none */
    double   keep_alive;          /* seconds, < 0 = forever */
    uint64_t memory_budget;       /* bytes for loaded models */
    int      max_models;
    char     api_key[256];        /* "" = none */
    int      allow_unauthenticated;
    char     cors[LAMINA_MAX_LIST][256];  /* allowed origins; "*" = any */
    int      n_cors;
    size_t   max_body;            /* bytes */
    int      max_json_depth;
    int      max_connections;
    int      quiet;               /* no access log */
    char     preload[256];        /* model to load at start, "" = none */
    char     hosts[LAMINA_MAX_LIST][256];   /* [server] allowed_hosts; "*" = any */
    int      n_hosts;
} srv_settings;

/* ------------------------------------------------------------------ */
/* Metrics (metrics.c)                                                */

typedef struct srv_metrics srv_metrics;

int  srv_metrics_create(srv_metrics **out);
void srv_metrics_free(srv_metrics *m);
/* endpoint: a route label ("/api/generate", "other"). */
void srv_metrics_request(srv_metrics *m, const char *endpoint, int status);
void srv_metrics_tokens(srv_metrics *m, const char *model, int64_t prompt, int64_t gen);
void srv_metrics_ttft(srv_metrics *m, double s);
void srv_metrics_token_latency(srv_metrics *m, double s);
/* A named event counter: "cancelled", "timeout", "queue_full", ... */
void srv_metrics_event(srv_metrics *m, const char *event);
/* The whole /metrics text (malloc'd, caller frees). */
char *srv_metrics_render(srv *s, size_t *len);
/* Bytes of heap in use by the process (allocator statistics). */
uint64_t srv_heap_bytes(void);

/* ------------------------------------------------------------------ */
/* Models (pool.c)                                                    */

enum srv_model_state { SRV_LOADING = 0, SRV_READY = 1, SRV_FAILED = 2 };

struct srv_model {
    char     name[128];           /* canonical name (":latest" removed) */
    char     path[4096];
    char     real[4096];          /* realpath: identity */
    int      state;
    char     load_err[512];
    int      users;               /* requests holding it */
    double   expires;             /* monotonic seconds when idle; < 0 never */
    double   keep_alive;          /* of the last request */
    double   last_used;
    double   load_s;
    uint64_t est_bytes;           /* reserved while loading */
    uint64_t bytes, dev_bytes;    /* after loading: total, on non-host backends */
    lamina_model     *model;
    lamina_tokenizer *tok;
    lamina_be        *bes[LAMINA_MAX_BACKENDS];
    int               n_bes;
    lamina_engine    *eng;
    lamina_batcher   *b;
    char     arch[32], quant[16], params[24], digest[80];   /* of the file */
    lamina_chat *chat;            /* the model's template or a built-in format */
    srv     *owner;               /* whose log the chat's warnings go to */
    int      has_template;        /* the file carries tokenizer.chat_template */
    json_t  *defaults;            /* an Ollama store model's default options
                                     (its params layer), or NULL */
    char    *system;              /* its default system prompt (system layer), or NULL */
    pthread_t thread;
    int      thread_started;
    volatile int stop;
    srv_model *next;
};

/* Validate a name from a client and find its file: catalogue names, then
 * NAME.gguf in the model directories.  Never a path.  Returns 0, or
 * LAMINA_EINVAL (malformed name) / LAMINA_ENOENT (unknown), message set.
 * canon gets the name without ":latest". */
int  srv_model_resolve(const lamina_config *cfg, const char *name, char *canon, size_t canon_size,
                       char *path, size_t path_size, char *err, size_t err_size);

/* Start draining: from here on new requests (but health) get 503.  Then
 * srv_in_flight counts what must still finish: requests already let in
 * (reading their body, waiting for a model, streaming their reply) and
 * model users.  The two sides order themselves so that a request is
 * either turned away or counted, never neither. */
void srv_start_drain(srv *s);
int  srv_in_flight(srv *s);
/* The model, loaded if needed (waiting for another request's load),
 * with one more user.  *load_s: seconds this call spent loading (0 when
 * it was loaded).  On failure returns < 0 with *http (400, 404, 500, 503)
 * and the message. */
int  srv_pool_acquire(srv *s, const char *name, srv_model **out, double *load_s, int *http,
                      char *err, size_t err_size);
/* One user less; the model stays loaded keep_alive seconds after its
 * last user (< 0: until shutdown; 0: unloaded now). */
void srv_pool_release(srv *s, srv_model *m, double keep_alive);
/* Unload idle models whose keep-alive has passed (main thread, 1 Hz). */
void srv_pool_reap(srv *s);
/* Requests holding a model now (in flight). */
int  srv_pool_busy(srv *s);
/* One more user of a model the caller already holds (srv_pool_release
 * each). */
void srv_pool_hold(srv *s, srv_model *m);
/* Stop every worker and cancel every request (first step of shutdown). */
void srv_pool_stop(srv *s);
/* Free every model (after the HTTP daemon stopped). */
void srv_pool_free(srv *s);

/* JSON for /api/tags, /api/ps, /v1/models (new references).  tags:
 * {"models": [...]} as Ollama's, plus "broken": [{name, error}] when a
 * model cannot be used (a store manifest or blob, an unreadable file);
 * hash_files 0 hashes no file (only known digests are given). */
json_t *srv_pool_tags(const lamina_config *cfg, int hash_files);
json_t *srv_pool_ps(srv *s);
json_t *srv_pool_openai_models(srv *s, const char *only);
/* general.file_type's name ("Q4_K_M"; static). */
const char *srv_ftype_name(int64_t t);
/* /api/show's body for a model name (`lamina show` prints it too), or
 * NULL with *http (400, 404, 500) and err. */
json_t *srv_show(const lamina_config *cfg, const char *name, int verbose, int *http, char *err, size_t err_size);

/* ------------------------------------------------------------------ */
/* Generation requests (gen.c)                                        */

typedef struct srv_gen_opts {
    lamina_sampler_params sp;
    int32_t  max_tokens;          /* < 0: until the context is full */
    int32_t  num_ctx;             /* 0: the slot's */
    char    *stop[LAMINA_MAX_STOP];  /* owned (free with srv_gen_opts_clear) */
    int      n_stop;
    double   keep_alive;
    lamina_grammar *grammar;      /* structured output (owned reference), or NULL */
    int      render_special;      /* control tokens in the text (tool-call markers) */
    int      logprobs;            /* < 0: none; else each token's log-probability
                                     with this many alternatives */
    int      n_choices;           /* OpenAI n: generations of one request (seeds seed, seed+1, ...) */
} srv_gen_opts;

void srv_gen_opts_defaults(srv_gen_opts *o, const srv *s);
void srv_gen_opts_clear(srv_gen_opts *o);
/* Structured output: schema NULL means any JSON value.  what names the
 * field in messages ("format", "response_format"); the message names an
 * unsupported keyword and its JSON path. */
int  srv_parse_format(json_t *schema, const char *what, srv_gen_opts *o, char *err, size_t err_size);
/* llama-server's `grammar` field: GBNF text (absent, null or "": none).
 * Refused next to a schema already in o (call it after the format). */
int  srv_parse_grammar(json_t *gbnf, const char *what, srv_gen_opts *o, char *err, size_t err_size);

struct srv_req {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int      refs;                /* the HTTP side and the batcher side */
    srv     *s;
    srv_model *model;
    uint64_t id;                  /* in the batcher */
    /* produced, not yet taken by the HTTP side */
    char    *out;
    size_t   out_n, out_cap;
    /* everything produced (non-streamed replies) */
    char    *all;
    size_t   all_n, all_cap;
    int      keep_all;
    int      done;
    int      cancelled;           /* the HTTP side gave up */
    lamina_batcher_result res;    /* tokens copied below */
    lamina_token *toks;
    int32_t  n_toks;
    int      keep_tokens;
    int      n_tokcb;
    double   t_recv;              /* request arrived (monotonic) */
    double   load_s;
    double   first_tok;           /* first token sampled (monotonic), 0 before */
    double   keep_alive;
    /* logprobs: entries {token, logprob, bytes, top_logprobs} not yet taken, and all */
    json_t  *lp_out, *lp_all;
};

/* 0 when model m generates text; -1 with the reason (an encoder gives
 * embeddings only). */
int  srv_model_generates(const srv_model *m, char *err, size_t err_size);
/* Tokenize and submit.  `text` is tokenized with flags; ctx_toks (may be
 * NULL) go before it.  On success *out holds a request (srv_req_put when
 * done with it).  On failure < 0 with *http and the message. */
int  srv_gen_start(srv *s, srv_model *m, const lamina_token *ctx_toks, size_t n_ctx_toks,
                   const char *text, unsigned tok_flags, const srv_gen_opts *o, double t_recv,
                   int keep_all, int keep_tokens, srv_req **out, int *http, char *err, size_t err_size);
/* Wait until the request is done, cancelling it when the client's
 * connection closes (fd < 0: no check). */
void srv_gen_wait(srv_req *r, int fd);
/* Wait for text or the end: moves pending text into (*text, *len)
 * (malloc'd, caller frees; NULL when none) and returns 1 when the
 * request is done and nothing is pending, 0 otherwise, -1 when the
 * client disconnected (the request is then cancelled). */
int  srv_gen_next(srv_req *r, int fd, char **text, size_t *len);
/* The logprob entries produced since the last call (new reference, an
 * array; NULL when the request has no logprobs). */
json_t *srv_gen_take_logprobs(srv_req *r);
/* The prefix, suffix and middle token ids of a model: the ids its file
 * names, else the first known text find() finds; 1 when all three are
 * there (missing ones are LAMINA_TOKEN_NONE). */
int  srv_fim_ids(const lamina_gguf *g, int64_t n_vocab, lamina_token (*find)(void *ctx, const char *text),
                 void *ctx, lamina_token ids[3]);
/* Fill in the middle: [BOS] FIM_PRE prefix FIM_SUF suffix FIM_MID, with the
 * ids the file names (tokenizer.ggml.fim_{pre,suf,mid}_token_id, or the
 * older {prefix,suffix,middle}_token_id) or the known FIM token texts
 * (Qwen, StarCoder, DeepSeek, CodeLlama).  *out malloc'd.  0, or -1 with
 * the message (naming "suffix") when the model has no FIM tokens. */
int  srv_fim_tokens(const srv_model *m, const char *prefix, const char *suffix, lamina_token **out,
                    size_t *n_out, char *err, size_t err_size);
/* Cancel (idempotent). */
void srv_gen_cancel(srv_req *r);
/* Drop the HTTP side's reference; releases the model when the last
 * reference goes. */
void srv_req_put(srv_req *r);
/* Ollama/OpenAI reason names: "stop", "length"; NULL for failures. */
const char *srv_finish_reason(const srv_req *r);
/* The HTTP status and message for a request that failed, or 0. */
int  srv_gen_failure(const srv_req *r, char *msg, size_t msg_size);
/* Whether the client's connection (fd) was closed. */
int  srv_peer_closed(int fd);

/* A generation being answered: the API's formatting hooks and state.
 * A chunk is a delta of the reply: text as generated, or (chat with a
 * reply parser) content, thinking and tool calls apart. */
typedef struct srv_job srv_job;
typedef lamina_reply_delta srv_delta;
typedef struct srv_fmt {
    int      sse;                 /* server-sent events (OpenAI), else NDJSON */
    json_t *(*chunk)(srv_job *j, const srv_delta *d);   /* streamed piece */
    json_t *(*final)(srv_job *j); /* last streamed object */
    json_t *(*usage)(srv_job *j); /* SSE: usage object after the last (may be NULL) */
    json_t *(*whole)(srv_job *j); /* the non-streamed reply */
} srv_fmt;

struct srv_job {
    srv     *s;
    srv_req *r;
    const srv_fmt *fmt;
    int      fd;
    char     model[128];
    char     id[64];              /* OpenAI id */
    double   created;             /* wall clock */
    int      n_chunks;
    json_t  *chunk_lp;            /* logprob entries of the chunk being made (borrowed), or NULL */
    int      include_usage;
    int      echo_ctx;            /* Ollama generate: return "context" */
    lamina_reply *reply;          /* chat: splits thinking and tool calls (owned), or NULL */
    int      index;               /* the choice (OpenAI n > 1) */
    srv_job *sib;                 /* the next choice's job (owned by the first), or NULL */
    srv_job *cur;                 /* streaming, first job only: the choice being sent */
    char   (*call_ids)[40];       /* OpenAI ids of the reply's calls, made as they come */
    size_t   n_call_ids;
    char     log[256];
};

/* Reply with the job's request (streamed or whole); frees the job and
 * the request in every case. */
int  srv_job_reply(srv_call *c, srv_job *j, int stream);
/* Free a job that was never replied with (and its other choices). */
void srv_job_reply_free(srv_job *j);

/* Submit a generation and reply with it (api_ollama.c): releases the
 * model on failure.  tmpl (may be NULL) gives the job's id, echo_ctx and
 * include_usage. */
int  srv_start_job(srv_call *c, srv_model *m, const lamina_token *ctx, size_t n_ctx, const char *text,
                   unsigned flags, const srv_gen_opts *o, int stream, const srv_fmt *fmt, const srv_job *tmpl,
                   double load_s);
/* The reply for a failed srv_pool_acquire. */
int  srv_model_error(srv_call *c, int http, const char *err);

/* ------------------------------------------------------------------ */
/* Chat requests (api_chat.c)                                         */

typedef struct srv_chat {
    json_t  *messages;            /* template shape (lamina_chat_apply_json), owned */
    json_t  *tools;               /* checked, owned; NULL: none */
    enum lamina_tool_choice choice;
    char     named[72];           /* LAMINA_TOOL_NAMED: the function */
    int      parallel;            /* several calls in one reply */
    int      think;               /* < 0: the template's default; 0, 1 */
    int      think_soft;          /* think 1 only where the model thinks (reasoning_effort) */
    json_t  *kwargs;              /* more template variables, owned, or NULL */
} srv_chat;

void srv_chat_init(srv_chat *ch);
void srv_chat_clear(srv_chat *ch);
/* One message in the template's shape.  content NULL: none; tool_calls
 * (may be NULL) as either API sends them: [{"id"?, "type"?, "function":
 * {"name", "arguments": object or JSON text}}].  idx names the message in
 * errors.  0, or -1 with the message. */
int  srv_chat_add(srv_chat *ch, size_t idx, const char *role, const char *content, json_t *tool_calls,
                  const char *tool_call_id, const char *name, const char *thinking, char *err, size_t err_size);
/* "tools" (NULL or null: none), checked into ch.  0 or -1. */
int  srv_chat_tools(srv_chat *ch, json_t *tools, char *err, size_t err_size);
/* The prompt for model m: the template with the tools, thinking and
 * kwargs; the tool plan's grammar and prefill into o and the prompt; the
 * reply parser for the job.  A structured output format (o->grammar)
 * together with a constraining tool plan is refused.  0, or -1 with *http
 * and the message. */
int  srv_chat_prepare(srv_model *m, srv_chat *ch, srv_gen_opts *o, char **prompt, lamina_reply **reply,
                      int *http, char *err, size_t err_size);
/* Run the whole generated text through the job's reply parser (non-streamed
 * replies).  0 or -1 (out of memory). */
int  srv_job_parse_all(srv_job *j);
/* The reply's calls [from, from + n) as Ollama's message.tool_calls
 * (arguments objects) or OpenAI's (ids, arguments as text; with_index for
 * stream deltas).  New references. */
json_t *srv_calls_ollama(const srv_job *j, size_t from, size_t n);
json_t *srv_calls_openai(srv_job *j, size_t from, size_t n, int with_index);

/* A logprobs object for a reply: OpenAI chat {"content": entries},
 * OpenAI completions {"tokens", "token_logprobs", "top_logprobs",
 * "text_offset"}; entries as they are for Ollama.  New reference. */
json_t *srv_logprobs_completions(json_t *entries);

/* A store model's defaults (pool.c): its params layer's options where
 * the request sets none of its own (flavor SRV_OLLAMA: body.options;
 * SRV_OPENAI: the top-level fields), into o; its system prompt as the
 * first message of ch when the request has no system message (ch may be
 * NULL).  0, or -1 with the message (out of memory). */
int  srv_model_defaults(const srv_model *m, json_t *body, int flavor, srv_gen_opts *o, srv_chat *ch,
                        char *err, size_t err_size);

/* Shared request parsing (api_ollama.c): stop strings (a string or an
 * array of at most LAMINA_MAX_STOP strings) into o. */
int  srv_parse_stop(json_t *v, const char *field, srv_gen_opts *o, char *err, size_t err_size);
/* Ollama's "options" object (NULL or null: none) into o; the message
 * names the option. */
int  srv_parse_options(json_t *opts, srv_gen_opts *o, char *err, size_t err_size);

/* ------------------------------------------------------------------ */
/* HTTP (http.c)                                                      */

enum srv_flavor { SRV_OLLAMA = 0, SRV_OPENAI = 1, SRV_PLAIN = 2 };

struct srv_call {
    srv     *s;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const char *endpoint;         /* route label for metrics */
    int      flavor;
    json_t  *body;                /* parsed object for POST routes, else NULL */
    const char *origin;           /* allowed Origin to echo, or NULL */
    double   t_recv;
    int      fd;                  /* the client socket */
    int      status;              /* of the reply queued */
    int      retry_after;         /* seconds, for a 503 (0: 1) */
    char     log[256];            /* extra words for the access log */
    const srv_upload *up;         /* SRV_BODY_STREAM routes: set by the handler */
    void    *up_st;
};

/* Replies: each queues the response on the connection and returns the
 * MHD result.  Steals the json reference. */
int  srv_reply_json(srv_call *c, int status, json_t *j);
int  srv_reply_text(srv_call *c, int status, const char *content_type, const char *text, size_t len);
/* An error in the call's flavour: Ollama {"error": msg}; OpenAI
 * {"error": {"message", "type", "param", "code"}}.  503 and 429 add
 * Retry-After. */
int  srv_reply_error(srv_call *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A streamed reply: `next` is called from the connection's thread to
 * fill *buf (malloc'd) with the next bytes; returns 0 with data, 1 at the
 * end, -1 to abort the connection.  `fin` releases ctx. */
typedef int  (*srv_stream_next_fn)(void *ctx, char **buf, size_t *len);
typedef void (*srv_stream_free_fn)(void *ctx);
int  srv_reply_stream(srv_call *c, const char *content_type, srv_stream_next_fn next,
                      srv_stream_free_fn fin, void *ctx);

/* A route whose body is handed to hooks piece by piece instead of being
 * buffered (its row's body is SRV_BODY_STREAM; no [server] max_body_kib
 * limit; the request's deadline is header_timeout from each piece).  Its
 * handler runs once the headers passed every check: it queues a reply,
 * or sets c->up and c->up_st.  data gets each piece (failures are kept in
 * the state for end); end runs when the body is whole, queues the reply
 * and frees the state; abort frees it when the connection ends before. */
#define SRV_BODY_STREAM 2
struct srv_upload {
    void (*data)(void *st, const char *p, size_t n);
    int  (*end)(srv_call *c, void *st);
    void (*abort)(void *st);
};

/* Endpoint handlers (api_*.c). */
int  srv_api_version(srv_call *c);
int  srv_api_tags(srv_call *c);
int  srv_api_show(srv_call *c);
int  srv_api_ps(srv_call *c);
int  srv_api_generate(srv_call *c);
int  srv_api_chat(srv_call *c);
int  srv_oai_models(srv_call *c);
int  srv_oai_model(srv_call *c);
int  srv_oai_chat(srv_call *c);
int  srv_oai_completions(srv_call *c);
/* llama-server's helpers (api_openai.c): POST /apply-template, /tokenize,
 * /detokenize, each with a "model" field */
int  srv_llama_apply_template(srv_call *c);
int  srv_llama_tokenize(srv_call *c);
int  srv_llama_detokenize(srv_call *c);
/* api_embed.c: POST /api/embed, /api/embeddings, /v1/embeddings */
int  srv_api_embed(srv_call *c);
int  srv_api_embeddings(srv_call *c);
int  srv_oai_embeddings(srv_call *c);
/* api_embed.c: POST /v1/rerank (and /rerank, /v1/reranking, /reranking) */
int  srv_rerank(srv_call *c);
/* api_models.c: POST /api/pull (streamed progress; needs the API key when one is set) */
int  srv_api_pull(srv_call *c);
/* api_models.c: the store's management (lamina's own store only):
 * HEAD and POST /api/blobs/:digest (streamed body), POST /api/create,
 * POST /api/copy, DELETE /api/delete. */
int  srv_api_blob_head(srv_call *c);
int  srv_api_blob_upload(srv_call *c);
int  srv_api_create(srv_call *c);
int  srv_api_copy(srv_call *c);
int  srv_api_delete(srv_call *c);
/* /api/show's fields from an Ollama store model's layers (template,
 * system, parameters, license) over those of its file: j is srv_show's
 * reply for `name` resolved to path; nothing changes for other models. */
void srv_show_store_layers(const lamina_config *cfg, const char *name, const char *path, json_t *j);
int  srv_metrics_handler(srv_call *c);
/* GET /health, /healthz (200 when a backend passed its self-test and no
 * preload is under way, else 503 with the reason) and /readyz (503 while
 * shutting down too); no API key needed (metrics.c) */
int  srv_health(srv_call *c);
int  srv_ready(srv_call *c);

/* ------------------------------------------------------------------ */
/* JSON helpers (json.c)                                              */

/* Parse an object, refusing nesting deeper than max_depth. */
int  srv_json_parse(const char *text, size_t len, int max_depth, json_t **out,
                    char *err, size_t err_size);
/* Typed optional fields: 0 absent (or null), 1 present, -1 wrong type
 * (message "FIELD: expected ..."). */
int  srv_json_str(json_t *o, const char *key, const char **out, char *err, size_t err_size);
int  srv_json_bool(json_t *o, const char *key, int *out, char *err, size_t err_size);
int  srv_json_num(json_t *o, const char *key, double *out, char *err, size_t err_size);
int  srv_json_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                  char *err, size_t err_size);
/* A JSON string of model output: invalid UTF-8 bytes (a model can emit
 * them) become U+FFFD.  New reference, NULL when out of memory. */
json_t *srv_json_text(const char *text, size_t len);
/* keep_alive: a number of seconds or a duration ("5m", "1h30m", "-1"). */
int  srv_json_duration(json_t *o, const char *key, double *out, char *err, size_t err_size);
/* RFC 3339 UTC with nanoseconds for a CLOCK_REALTIME time (buf >= 40). */
void srv_time_rfc3339(double t, char *buf, size_t size);
double srv_now(void);           /* CLOCK_MONOTONIC */
double srv_wall(void);          /* CLOCK_REALTIME */

/* ------------------------------------------------------------------ */
/* The server                                                         */

struct srv {
    srv_settings     set;
    lamina_config    cfg;
    lamina_runtime  *rt;
    struct MHD_Daemon *mhd;
    srv_metrics     *metrics;
    pthread_mutex_t  pool_mu;
    pthread_cond_t   pool_cv;
    srv_model       *models;
    int              shutting_down;
    uint64_t         loads, unloads;
    double           t_start;
    void           (*log)(srv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    int              verbose;
    int              loopback;        /* listening on a loopback address: Host is checked */
    volatile int     preloading;      /* the preload model is loading: not healthy yet */
    int              draining;        /* SIGTERM: new requests get 503, those in flight finish
                                         (srv_start_drain, atomic) */
    int              requests_active; /* requests let past the drain check whose reply
                                         is not sent yet (atomic) */
    struct srv_http *http;            /* http.c: open connections, request deadlines, rate limits */
};

/* Start the daemon on an already bound, listening socket. */
int  srv_http_start(srv *s, int listen_fd, char *err, size_t err_size);
/* Stop accepting; returns the listen socket to close. */
int  srv_http_quiesce(srv *s);
void srv_http_stop(srv *s);
/* Client connections open now (for /metrics). */
int  srv_http_connections(srv *s);

#endif
