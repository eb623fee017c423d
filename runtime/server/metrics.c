/*
 * metrics.c - counters and histograms of the service, and GET /metrics in
 * the Prometheus text format (version 0.0.4).
 *
 * Label sets are bounded: endpoints are route labels (unknown paths are
 * "other"), models are validated names of models that were loaded (at
 * most MAX_MODELS; more are counted as "other").
 */
#include "config.h"

#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

#define MAX_REQ_KEYS 128
#define MAX_MODELS   64
#define MAX_EVENTS   32

static const double ttft_bounds[] = { 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
static const double tok_bounds[] = { 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
#define N_TTFT (sizeof ttft_bounds / sizeof ttft_bounds[0])
#define N_TOK  (sizeof tok_bounds / sizeof tok_bounds[0])

typedef struct hist {
    uint64_t bucket[16];          /* cumulative at render, per bound here */
    uint64_t count;
    double   sum;
} hist;

struct srv_metrics {
    pthread_mutex_t mu;
    struct { char endpoint[48]; int status; uint64_t n; } req[MAX_REQ_KEYS];
    int n_req;
    struct { char model[128]; uint64_t prompt, gen, requests; } mod[MAX_MODELS];
    int n_mod;
    struct { char name[32]; uint64_t n; } ev[MAX_EVENTS];
    int n_ev;
    hist ttft, tok;
};

int srv_metrics_create(srv_metrics **out)
{
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return LAMINA_ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return 0;
}

void srv_metrics_free(srv_metrics *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void srv_metrics_request(srv_metrics *m, const char *endpoint, int status)
{
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_req; i++)
        if (m->req[i].status == status && !strcmp(m->req[i].endpoint, endpoint)) break;
    if (i == m->n_req && m->n_req < MAX_REQ_KEYS) {
        snprintf(m->req[i].endpoint, sizeof m->req[i].endpoint, "%s", endpoint);
        m->req[i].status = status;
        m->n_req++;
    }
    if (i < m->n_req) m->req[i].n++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_tokens(srv_metrics *m, const char *model, int64_t prompt, int64_t gen)
{
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_mod; i++)
        if (!strcmp(m->mod[i].model, model)) break;
    if (i == m->n_mod) {
        /* the last entry, "other", collects the models beyond the table */
        const char *name = m->n_mod < MAX_MODELS - 1 ? model : "other";
        for (i = 0; i < m->n_mod; i++)
            if (!strcmp(m->mod[i].model, name)) break;
        if (i == m->n_mod) {
            snprintf(m->mod[i].model, sizeof m->mod[i].model, "%s", name);
            m->n_mod++;
        }
    }
    m->mod[i].prompt += prompt > 0 ? (uint64_t)prompt : 0;
    m->mod[i].gen += gen > 0 ? (uint64_t)gen : 0;
    m->mod[i].requests++;
    pthread_mutex_unlock(&m->mu);
}

static void observe(hist *h, const double *bounds, size_t n, double v)
{
    for (size_t i = 0; i < n; i++)
        if (v <= bounds[i]) { h->bucket[i]++; break; }
    h->count++;
    h->sum += v;
}

void srv_metrics_ttft(srv_metrics *m, double s)
{
    pthread_mutex_lock(&m->mu);
    observe(&m->ttft, ttft_bounds, N_TTFT, s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_token_latency(srv_metrics *m, double s)
{
    pthread_mutex_lock(&m->mu);
    observe(&m->tok, tok_bounds, N_TOK, s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_event(srv_metrics *m, const char *event)
{
    pthread_mutex_lock(&m->mu);
    int i;
    for (i = 0; i < m->n_ev; i++)
        if (!strcmp(m->ev[i].name, event)) break;
    if (i == m->n_ev && m->n_ev < MAX_EVENTS) {
        snprintf(m->ev[i].name, sizeof m->ev[i].name, "%s", event);
        m->n_ev++;
    }
    if (i < m->n_ev) m->ev[i].n++;
    pthread_mutex_unlock(&m->mu);
}

#if defined(__SANITIZE_ADDRESS__)
extern size_t __sanitizer_get_current_allocated_bytes(void);
#endif

uint64_t srv_heap_bytes(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return (uint64_t)__sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
#else
    return 0;
#endif
}

static uint64_t rss_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    if (!fp) return 0;
    unsigned long long size = 0, res = 0;
    int n = fscanf(fp, "%llu %llu", &size, &res);
    fclose(fp);
    return n == 2 ? (uint64_t)res * 4096u : 0;
}

/* Descriptors open in the process (not the one reading the list). */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    char self[16];
    snprintf(self, sizeof self, "%d", dirfd(d));
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.' && strcmp(e->d_name, self) != 0;
    closedir(d);
    return n;
}

/* ---- text output ---- */

typedef struct out { char *s; size_t n, cap; int oom; } out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    if (o->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(o->s + o->n, o->cap - o->n, fmt, ap);
        va_end(ap);
        if (w < 0) { o->oom = 1; return; }
        if ((size_t)w < o->cap - o->n) { o->n += (size_t)w; return; }
        size_t cap = (o->cap + (size_t)w + 1) * 2;
        char *s = realloc(o->s, cap);
        if (!s) { o->oom = 1; return; }
        o->s = s;
        o->cap = cap;
    }
}

/* A label value with \, " and newlines escaped (into a static-size buffer). */
static const char *esc(const char *v, char *buf, size_t size)
{
    size_t j = 0;
    for (const char *p = v; *p && j + 3 < size; p++) {
        if (*p == '\\' || *p == '"') { buf[j++] = '\\'; buf[j++] = *p; }
        else if (*p == '\n') { buf[j++] = '\\'; buf[j++] = 'n'; }
        else buf[j++] = *p;
    }
    buf[j] = 0;
    return buf;
}

static void put_hist(out *o, const char *name, const char *help, const hist *h, const double *bounds, size_t n)
{
    put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += h->bucket[i];
        put(o, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
    }
    put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)h->count,
        name, h->sum, name, (unsigned long long)h->count);
}

char *srv_metrics_render(srv *s, size_t *len)
{
    srv_metrics *m = s->metrics;
    out o = { 0 };
    char b1[512], b2[512], b3[512];

    put(&o, "# HELP lamina_build_info The lamina version.\n# TYPE lamina_build_info gauge\n"
            "lamina_build_info{version=\"%s\"} 1\n", LAMINA_VERSION_STRING);
    put(&o, "# HELP lamina_uptime_seconds Seconds since the server started.\n# TYPE lamina_uptime_seconds gauge\n"
            "lamina_uptime_seconds %.3f\n", srv_now() - s->t_start);
    put(&o, "# HELP lamina_http_connections Client connections open now (those over [server] max_connections "
            "included, until their 503 is sent).\n# TYPE lamina_http_connections gauge\nlamina_http_connections %d\n",
        srv_http_connections(s));

    pthread_mutex_lock(&m->mu);
    put(&o, "# HELP lamina_http_requests_total HTTP requests answered, by endpoint and status code.\n"
            "# TYPE lamina_http_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        put(&o, "lamina_http_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n",
            esc(m->req[i].endpoint, b1, sizeof b1), m->req[i].status, (unsigned long long)m->req[i].n);
    put(&o, "# HELP lamina_prompt_tokens_total Prompt tokens of finished generation requests.\n"
            "# TYPE lamina_prompt_tokens_total counter\n");
    for (int i = 0; i < m->n_mod; i++)
        put(&o, "lamina_prompt_tokens_total{model=\"%s\"} %llu\n", esc(m->mod[i].model, b1, sizeof b1),
            (unsigned long long)m->mod[i].prompt);
    put(&o, "# HELP lamina_generated_tokens_total Tokens generated.\n# TYPE lamina_generated_tokens_total counter\n");
    for (int i = 0; i < m->n_mod; i++)
        put(&o, "lamina_generated_tokens_total{model=\"%s\"} %llu\n", esc(m->mod[i].model, b1, sizeof b1),
            (unsigned long long)m->mod[i].gen);
    put(&o, "# HELP lamina_generation_requests_total Generation requests finished (any outcome).\n"
            "# TYPE lamina_generation_requests_total counter\n");
    for (int i = 0; i < m->n_mod; i++)
        put(&o, "lamina_generation_requests_total{model=\"%s\"} %llu\n", esc(m->mod[i].model, b1, sizeof b1),
            (unsigned long long)m->mod[i].requests);
    put(&o, "# HELP lamina_events_total Notable outcomes: cancelled (client went away), timeout, queue_full, load_failed, "
            "connection_overflow (503 over max_connections), connection_cap (closed unanswered over the hard cap), request_timeout (request not whole in "
            "header_timeout), write_timeout (reply not taken by the client in write_timeout), rate_limited (429), ...\n"
            "# TYPE lamina_events_total counter\n");
    for (int i = 0; i < m->n_ev; i++)
        put(&o, "lamina_events_total{event=\"%s\"} %llu\n", esc(m->ev[i].name, b1, sizeof b1),
            (unsigned long long)m->ev[i].n);
    put_hist(&o, "lamina_time_to_first_token_seconds",
             "From the request's arrival to its first generated token (queue and model load included).",
             &m->ttft, ttft_bounds, N_TTFT);
    put_hist(&o, "lamina_token_latency_seconds", "Time between consecutive generated tokens of one request.",
             &m->tok, tok_bounds, N_TOK);
    pthread_mutex_unlock(&m->mu);

    /* the models loaded now */
    put(&o, "# HELP lamina_models_loaded Models loaded now.\n# TYPE lamina_models_loaded gauge\n");
    pthread_mutex_lock(&s->pool_mu);
    int n_loaded = 0;
    for (srv_model *mm = s->models; mm; mm = mm->next) n_loaded += mm->state == SRV_READY;
    put(&o, "lamina_models_loaded %d\n", n_loaded);
    put(&o, "# HELP lamina_model_loads_total Models loaded since start.\n# TYPE lamina_model_loads_total counter\n"
            "lamina_model_loads_total %llu\n", (unsigned long long)s->loads);
    put(&o, "# HELP lamina_model_unloads_total Models unloaded since start.\n# TYPE lamina_model_unloads_total counter\n"
            "lamina_model_unloads_total %llu\n", (unsigned long long)s->unloads);
    put(&o, "# HELP lamina_queue_depth Requests waiting for a sequence slot.\n# TYPE lamina_queue_depth gauge\n");
    put(&o, "# HELP lamina_active_sequences Sequences being generated.\n# TYPE lamina_active_sequences gauge\n");
    put(&o, "# HELP lamina_sequence_slots Parallel sequences of a loaded model.\n# TYPE lamina_sequence_slots gauge\n");
    put(&o, "# HELP lamina_model_users Requests holding a loaded model (queued, generating, or sending what it "
            "generated).\n# TYPE lamina_model_users gauge\n");
    put(&o, "# HELP lamina_decode_steps_total Batched decode steps.\n# TYPE lamina_decode_steps_total counter\n");
    put(&o, "# HELP lamina_decoded_tokens_total Tokens through the model (prompt and generated).\n"
            "# TYPE lamina_decoded_tokens_total counter\n");
    put(&o, "# HELP lamina_device_failovers_total Devices lost while running the model (its layers moved to the backends left).\n"
            "# TYPE lamina_device_failovers_total counter\n");
    put(&o, "# HELP lamina_step_seconds_total Seconds in decode steps (model and sampling).\n"
            "# TYPE lamina_step_seconds_total counter\n");
    put(&o, "# HELP lamina_model_seconds_total Of those, seconds in the model's forward pass.\n"
            "# TYPE lamina_model_seconds_total counter\n");
    put(&o, "# HELP lamina_decode_steps_shared_total Decode steps that ran two or more sequences in one batch.\n"
            "# TYPE lamina_decode_steps_shared_total counter\n");
    put(&o, "# HELP lamina_model_bytes Memory of a loaded model (weights, KV cache, scratch).\n"
            "# TYPE lamina_model_bytes gauge\n");
    put(&o, "# HELP lamina_model_layers Layers of a loaded model per backend.\n# TYPE lamina_model_layers gauge\n");
    put(&o, "# HELP lamina_kv_cache_usage_ratio KV cache positions held by running requests over all positions (0..1).\n"
            "# TYPE lamina_kv_cache_usage_ratio gauge\n");
    int64_t all_wait = 0, all_run = 0, all_kv = 0, all_kv_size = 0;
    for (srv_model *mm = s->models; mm; mm = mm->next) {
        if (mm->state != SRV_READY) continue;
        lamina_batcher_stats st;
        lamina_batcher_stats_get(mm->b, &st);
        esc(mm->name, b1, sizeof b1);
        put(&o, "lamina_queue_depth{model=\"%s\"} %d\n", b1, st.n_queued);
        put(&o, "lamina_active_sequences{model=\"%s\"} %d\n", b1, st.n_active);
        put(&o, "lamina_sequence_slots{model=\"%s\"} %d\n", b1, st.n_slots);
        put(&o, "lamina_model_users{model=\"%s\"} %d\n", b1, mm->users);
        put(&o, "lamina_decode_steps_total{model=\"%s\"} %llu\n", b1, (unsigned long long)st.n_steps);
        put(&o, "lamina_decoded_tokens_total{model=\"%s\"} %llu\n", b1, (unsigned long long)st.n_decoded);
        put(&o, "lamina_decode_steps_shared_total{model=\"%s\"} %llu\n", b1, (unsigned long long)st.n_shared);
        put(&o, "lamina_device_failovers_total{model=\"%s\"} %llu\n", b1, (unsigned long long)st.n_failovers);
        put(&o, "lamina_step_seconds_total{model=\"%s\"} %.6f\n", b1, st.busy_s);
        put(&o, "lamina_model_seconds_total{model=\"%s\"} %.6f\n", b1, st.decode_s);
        put(&o, "lamina_model_bytes{model=\"%s\"} %llu\n", b1, (unsigned long long)mm->bytes);
        put(&o, "lamina_kv_cache_usage_ratio{model=\"%s\"} %.6f\n", b1,
            st.kv_size ? (double)st.kv_used / (double)st.kv_size : 0.0);
        all_wait += st.n_queued;
        all_run += st.n_active;
        all_kv += st.kv_used;
        all_kv_size += st.kv_size;
        const lamina_plan_part *parts;
        int np = lamina_engine_plan(mm->eng, &parts);
        for (int i = 0; i < np; i++) {
            int nl = parts[i].last - parts[i].first + 1;
            put(&o, "lamina_model_layers{model=\"%s\",backend=\"%s\"} %d\n", b1,
                esc(lamina_engine_part_label(mm->eng, i), b2, sizeof b2), nl > 0 ? nl : 0);
        }
    }
    pthread_mutex_unlock(&s->pool_mu);
    /* the same under the names Kubernetes inference routers read (the
     * Gateway API Inference Extension's endpoint picker, the vLLM
     * production-stack router): the whole server, every model together */
    double kvr = all_kv_size ? (double)all_kv / (double)all_kv_size : 0.0;
    put(&o, "# HELP vllm:num_requests_waiting Requests waiting for a sequence slot (all models).\n"
            "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting %lld\n", (long long)all_wait);
    put(&o, "# HELP vllm:num_requests_running Requests being generated (all models).\n"
            "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running %lld\n", (long long)all_run);
    put(&o, "# HELP vllm:kv_cache_usage_perc KV cache used by running requests (0..1, all models).\n"
            "# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc %.6f\n", kvr);
    put(&o, "# HELP vllm:gpu_cache_usage_perc The same, under the older name.\n"
            "# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc %.6f\n", kvr);

    /* plugins: isolation probe and self-test, as `lamina backends` shows */
    put(&o, "# HELP lamina_plugin_status Each plugin found: 1 with its status (accepted, rejected, disabled) and failure.\n"
            "# TYPE lamina_plugin_status gauge\n");
    int np = lamina_runtime_plugin_count(s->rt);
    static const char *const status_name[] = { "accepted", "rejected", "disabled" };
    for (int i = 0; i < np; i++) {
        const lamina_plugin_report *pr = lamina_runtime_plugin(s->rt, i);
        put(&o, "lamina_plugin_status{plugin=\"%s\",version=\"%s\",status=\"%s\",failure=\"%s\"} 1\n",
            esc(pr->name, b1, sizeof b1), esc(pr->version, b2, sizeof b2),
            pr->status >= 0 && pr->status <= 2 ? status_name[pr->status] : "unknown",
            esc(pr->failure, b3, sizeof b3));
    }
    put(&o, "# HELP lamina_plugin_selftest_passed Device self-test result: 1 passed, 0 failed (absent: not run).\n"
            "# TYPE lamina_plugin_selftest_passed gauge\n");
    put(&o, "# HELP lamina_plugin_selftest_cases Self-test cases run on the device.\n"
            "# TYPE lamina_plugin_selftest_cases gauge\n");
    put(&o, "# HELP lamina_plugin_score_gflops Matrix multiplication speed measured by the self-test.\n"
            "# TYPE lamina_plugin_score_gflops gauge\n");
    for (int i = 0; i < np; i++) {
        const lamina_plugin_report *pr = lamina_runtime_plugin(s->rt, i);
        for (int d = 0; d < pr->n_devices; d++) {
            const lamina_device_report *dr = &pr->devices[d];
            if (!dr->selftest_run) continue;
            esc(pr->name, b1, sizeof b1);
            esc(dr->label, b2, sizeof b2);
            put(&o, "lamina_plugin_selftest_passed{plugin=\"%s\",device=\"%s\"} %d\n", b1, b2, dr->selftest_passed ? 1 : 0);
            put(&o, "lamina_plugin_selftest_cases{plugin=\"%s\",device=\"%s\"} %d\n", b1, b2, dr->selftest_cases);
            put(&o, "lamina_plugin_score_gflops{plugin=\"%s\",device=\"%s\"} %.3f\n", b1, b2, dr->score);
        }
    }
    put(&o, "# HELP lamina_heap_bytes Heap memory in use by the server process.\n# TYPE lamina_heap_bytes gauge\n"
            "lamina_heap_bytes %llu\n", (unsigned long long)srv_heap_bytes());
    put(&o, "# HELP lamina_resident_bytes Resident memory of the server process.\n# TYPE lamina_resident_bytes gauge\n"
            "lamina_resident_bytes %llu\n", (unsigned long long)rss_bytes());
    put(&o, "# HELP lamina_open_fds File descriptors open in the server process (sockets, models, plugins).\n"
            "# TYPE lamina_open_fds gauge\nlamina_open_fds %d\n", open_fds());
    if (o.oom) { free(o.s); return NULL; }
    *len = o.n;
    return o.s;
}

/* ------------------------------------------------------------------ */
/* Health and readiness                                               */

static int health(srv_call *c, int ready)
{
    srv *s = c->s;
    json_t *bes = json_array();
    int np = lamina_runtime_plugin_count(s->rt);
    for (int i = 0; i < np; i++) {
        const lamina_plugin_report *pr = lamina_runtime_plugin(s->rt, i);
        if (pr->status != 0) continue;                  /* rejected or disabled */
        for (int d = 0; d < pr->n_devices; d++)
            if (!pr->devices[d].selftest_run || pr->devices[d].selftest_passed)
                json_array_append_new(bes, json_pack("{s:s, s:s}", "plugin", pr->name, "device",
                                                     pr->devices[d].label));
    }
    json_t *models = json_array();
    pthread_mutex_lock(&s->pool_mu);
    int down = s->shutting_down;
    for (srv_model *m = s->models; m; m = m->next)
        json_array_append_new(models, json_pack("{s:s, s:s}", "name", m->name, "state",
                                                m->state == SRV_READY ? "ready" : m->state == SRV_LOADING ? "loading"
                                                                                                          : "failed"));
    pthread_mutex_unlock(&s->pool_mu);
    const char *why = NULL;
    if (ready && (down || __atomic_load_n(&s->draining, __ATOMIC_SEQ_CST))) why = "shutting down";
    else if (s->preloading) why = "loading the preload model";
    else if (json_array_size(bes) == 0) why = "no backend passed its self-test (lamina backends says why)";
    json_t *j = json_pack("{s:s, s:o, s:o}", "status", why ? "unavailable" : "ok", "backends", bes, "models", models);
    if (why) {
        json_object_set_new(j, "reason", json_string(why));
        c->retry_after = 5;
    }
    return srv_reply_json(c, why ? 503 : 200, j);
}

int srv_health(srv_call *c) { return health(c, 0); }
int srv_ready(srv_call *c) { return health(c, 1); }
