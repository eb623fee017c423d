/* api_models.c - model management endpoints: POST /api/pull.
 *
 * A pull runs on a thread of its own (runtime/model/pull.h) into lamina's
 * store ([model] store), from [model] registry.  Streamed (the default),
 * the reply is Ollama's NDJSON progress: {"status": "pulling manifest"},
 * {"status": "pulling HEX12", "digest", "total", "completed"} per layer,
 * {"status": "verifying sha256 digest"}, {"status": "writing manifest"},
 * {"status": "success"}, or {"error": ...} as the last line.  With
 * "stream": false the reply is {"status": "success"} or the error with its
 * HTTP status (400 a bad name, 404 no such model or tag, 500 otherwise).
 *
 * A client that goes away gives up its interest in the pull: the download
 * stops (its partial file kept for a later pull) unless another pull of
 * this server waits for the same blob, in which case it goes on for that
 * one.  Shutting the server down stops every pull. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ollama_store.h"
#include "pull.h"
#include "server/server.h"

typedef struct pull_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv     *s;
    char     name[256];
    char     store[4096];
    int      insecure;
    int      stream;
    char    *out;                 /* NDJSON lines not yet sent */
    size_t   n, cap;
    int      done, rc;
    int      cancelled;           /* the client went away */
    char     err[1024];
    pthread_t th;
} pull_job;

/* Append one JSON object as a line (mu held). */
static void put_line(pull_job *j, json_t *o)
{
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!t) return;
    size_t k = strlen(t);
    if (j->n + k + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 1024;
        while (cap < j->n + k + 1) cap *= 2;
        char *p = realloc(j->out, cap);
        if (!p) { free(t); return; }
        j->out = p;
        j->cap = cap;
    }
    memcpy(j->out + j->n, t, k);
    j->out[j->n + k] = '\n';
    j->n += k + 1;
    free(t);
    pthread_cond_broadcast(&j->cv);
}

static int on_progress(void *ctx, const lamina_pull_progress *p)
{
    pull_job *j = ctx;
    pthread_mutex_lock(&j->mu);
    if (j->stream && !j->cancelled) {
        json_t *o = json_pack("{s:s}", "status", p->status);
        if (o && p->digest) {
            json_object_set_new(o, "digest", json_string(p->digest));
            json_object_set_new(o, "total", json_integer((json_int_t)p->total));
            json_object_set_new(o, "completed", json_integer((json_int_t)p->completed));
        }
        put_line(j, o);
    }
    int stop = j->cancelled || __atomic_load_n(&j->s->shutting_down, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&j->mu);
    return stop;
}

static void *pull_thread(void *arg)
{
    pull_job *j = arg;
    lamina_pull_opts o = { .store = j->store, .registry = j->s->cfg.model_registry, .insecure = j->insecure,
                           .progress = on_progress, .ctx = j };
    char err[1024];
    int rc = lamina_pull(j->name, &o, err, sizeof err);
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    if (rc < 0) {
        snprintf(j->err, sizeof j->err, "%s", err);
        if (j->stream) put_line(j, json_pack("{s:s}", "error", err));
    }
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Wait up to 250 ms for the job (mu held). */
static void tick(pull_job *j)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 250 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

static void job_free(pull_job *j)
{
    pthread_mutex_lock(&j->mu);
    j->cancelled |= !j->done;
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->th, NULL);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->out);
    free(j);
}

typedef struct pull_stream {
    pull_job *j;
    int fd;
} pull_stream;

static int stream_next(void *ctx, char **buf, size_t *len)
{
    pull_stream *ps = ctx;
    pull_job *j = ps->j;
    pthread_mutex_lock(&j->mu);
    while (j->n == 0 && !j->done) {
        tick(j);
        if (j->n == 0 && !j->done && srv_peer_closed(ps->fd)) {
            j->cancelled = 1;
            pthread_mutex_unlock(&j->mu);
            return -1;
        }
    }
    if (j->n > 0) {
        *buf = j->out;
        *len = j->n;
        j->out = NULL;
        j->n = j->cap = 0;
        pthread_mutex_unlock(&j->mu);
        return 0;
    }
    pthread_mutex_unlock(&j->mu);
    return 1;
}

static void stream_fin(void *ctx)
{
    pull_stream *ps = ctx;
    job_free(ps->j);
    free(ps);
}

int srv_api_pull(srv_call *c)
{
    char err[256];
    const char *name = NULL;
    int stream = 1, insecure = 0;
    if (srv_json_str(c->body, "model", &name, err, sizeof err) < 0 ||
        (!name && srv_json_str(c->body, "name", &name, err, sizeof err) < 0) ||
        srv_json_bool(c->body, "stream", &stream, err, sizeof err) < 0 ||
        srv_json_bool(c->body, "insecure", &insecure, err, sizeof err) < 0)
        return srv_reply_error(c, 400, "%s", err);
    if (!name || !name[0]) return srv_reply_error(c, 400, "model is required");
    if (!lamina_ollama_name_valid(name))
        return srv_reply_error(c, 400, "invalid model name '%.120s': [host/][namespace/]model[:tag], each part "
                               "letters, digits, '_', '-' and '.'", name);
    snprintf(c->log, sizeof c->log, "model=%.120s", name);
    pull_job *j = calloc(1, sizeof *j);
    if (!j) return srv_reply_error(c, 500, "out of memory");
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->s = c->s;
    j->stream = stream;
    j->insecure = insecure;
    snprintf(j->name, sizeof j->name, "%s", name);
    if (lamina_ollama_own_store(&c->s->cfg, j->store) < 0) {
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cv);
        free(j);
        return srv_reply_error(c, 500, "no model store: set [model] store");
    }
    int e = pthread_create(&j->th, NULL, pull_thread, j);
    if (e != 0) {
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->cv);
        free(j);
        return srv_reply_error(c, 503, "cannot start the pull: %s", strerror(e));
    }
    if (stream) {
        pull_stream *ps = malloc(sizeof *ps);
        if (!ps) { job_free(j); return srv_reply_error(c, 500, "out of memory"); }
        ps->j = j;
        ps->fd = c->fd;
        return srv_reply_stream(c, "application/x-ndjson", stream_next, stream_fin, ps);
    }
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        tick(j);
        if (!j->done && srv_peer_closed(c->fd)) j->cancelled = 1;
    }
    int rc = j->rc;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", j->err);
    pthread_mutex_unlock(&j->mu);
    job_free(j);
    if (rc == 0) return srv_reply_json(c, 200, json_pack("{s:s}", "status", "success"));
    return srv_reply_error(c, rc == LAMINA_EINVAL ? 400 : rc == LAMINA_ENOENT ? 404 : 500, "%s", msg);
}
