/* api_models.c - model management endpoints: POST /api/pull, and the
 * store's endpoints (HEAD/POST /api/blobs/:digest, POST /api/create,
 * POST /api/copy, DELETE /api/delete), which write lamina's own store
 * only (runtime/model/store.h); an Ollama store is read, never written.
 *
 * Blobs: the upload is a SRV_BODY_STREAM route, its body written and
 * hashed piece by piece (never whole in memory).  Create builds the layer
 * list (from's layers, the GGUF of files as the model layer, template,
 * system, parameters merged over from's, licenses), checks the GGUF with
 * lamina's reader, writes the config blob and the manifest.  Its request
 * is checked first (a 400 naming the field: quantize, adapters, messages,
 * modelfile, a malformed field); then, streamed, the work runs on a job
 * thread as a pull does and each status line ("reading model file",
 * "parsing GGUF", "using existing layer", "creating new layer", "writing
 * manifest", "success") goes out as it happens, a failure as the last
 * line {"error": ...}; with "stream": false the reply comes at the end
 * with the failure's HTTP status.  Delete
 * removes the manifest and the blobs no other manifest names; a model
 * being served keeps running (its file stays mapped) until idle.
 *
 * Pull:
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
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "catalogue.h"
#include "gguf.h"
#include "ollama_store.h"
#include "pull.h"
#include "server/server.h"
#include "store.h"

/* A job: a pull or a create on a thread of its own, whose NDJSON status
 * lines a streamed reply sends as they come (stream_next). */
typedef struct store_job store_job;
struct store_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv     *s;
    /* what runs: 0, or a LAMINA_E* code with err and (create) http set */
    int    (*run)(store_job *j, char *err, size_t err_size);
    char     name[256];
    char     store[4096];
    int      insecure;            /* pull */
    json_t  *body;                /* create: the request (a reference) */
    void    *plan;                /* create: its checked fields */
    int      stream;
    char    *out;                 /* NDJSON lines not yet sent */
    size_t   n, cap;
    int      done, rc, http;
    int      cancelled;           /* the client went away */
    char     err[1024];
    pthread_t th;
};

/* Append one JSON object as a line (mu held). */
static void put_line(store_job *j, json_t *o)
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
    store_job *j = ctx;
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

static int pull_run(store_job *j, char *err, size_t es)
{
    lamina_pull_opts o = { .store = j->store, .registry = j->s->cfg.model_registry, .insecure = j->insecure,
                           .progress = on_progress, .ctx = j };
    int rc = lamina_pull(j->name, &o, err, es);
    j->http = rc == LAMINA_EINVAL ? 400 : rc == LAMINA_ENOENT ? 404 : 500;
    return rc;
}

static void *job_thread(void *arg)
{
    store_job *j = arg;
    char err[1024] = "";
    int rc = j->run(j, err, sizeof err);
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
static void tick(store_job *j)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 250 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
}

static void job_free(store_job *j)
{
    pthread_mutex_lock(&j->mu);
    j->cancelled |= !j->done;
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->th, NULL);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    json_decref(j->body);
    free(j->plan);
    free(j->out);
    free(j);
}

/* A job that never started. */
static void job_drop(store_job *j)
{
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    json_decref(j->body);
    free(j->plan);
    free(j);
}

typedef struct job_stream {
    store_job *j;
    int fd;
} job_stream;

static int stream_next(void *ctx, char **buf, size_t *len)
{
    job_stream *ps = ctx;
    store_job *j = ps->j;
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
    job_stream *ps = ctx;
    job_free(ps->j);
    free(ps);
}

static store_job *job_new(srv_call *c, int stream)
{
    store_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->s = c->s;
    j->stream = stream;
    return j;
}

/* Start j (its run, name, store and the rest set) and reply: the stream of
 * its lines, or (stream false) waiting for it, {"status": "success"} or
 * its failure with j->http.  j is the reply's (or freed) afterwards. */
static int job_reply(srv_call *c, store_job *j)
{
    int e = pthread_create(&j->th, NULL, job_thread, j);
    if (e != 0) {
        job_drop(j);
        return srv_reply_error(c, 503, "cannot start the job: %s", strerror(e));
    }
    if (j->stream) {
        job_stream *ps = malloc(sizeof *ps);
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
    int rc = j->rc, http = j->http ? j->http : 500;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", j->err);
    pthread_mutex_unlock(&j->mu);
    job_free(j);
    if (rc == 0) return srv_reply_json(c, 200, json_pack("{s:s}", "status", "success"));
    return srv_reply_error(c, http, "%s", msg);
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
        return srv_reply_error(c, 400, "invalid model name '%.120s': " LAMINA_OLLAMA_NAME_FORM, name);
    snprintf(c->log, sizeof c->log, "model=%.120s", name);
    store_job *j = job_new(c, stream);
    if (!j) return srv_reply_error(c, 500, "out of memory");
    j->run = pull_run;
    j->insecure = insecure;
    snprintf(j->name, sizeof j->name, "%s", name);
    if (lamina_ollama_own_store(&c->s->cfg, j->store) < 0) {
        job_drop(j);
        return srv_reply_error(c, 500, "no model store: set [model] store");
    }
    return job_reply(c, j);
}

/* ------------------------------------------------------------------ */
/* The store: blobs, create, copy, delete                             */


#define BLOBS_PREFIX "/api/blobs/"

static int own_store(srv_call *c, char store[4096])
{
    return lamina_ollama_own_store(&c->s->cfg, store);
}

/* The digest of /api/blobs/DIGEST, or NULL (a 400 queued, *rc its result). */
static const char *url_digest(srv_call *c, int *rc)
{
    const char *d = c->url + strlen(BLOBS_PREFIX);
    if (lamina_ollama_digest_valid(d)) return d;
    *rc = srv_reply_error(c, 400, "invalid digest '%.80s': sha256: and 64 lowercase hex digits", d);
    return NULL;
}

/* The blob's path in lamina's store, else in a read-only store; 1 found. */
static int blob_find(srv *s, const char *digest, char *path, size_t size)
{
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(&s->cfg, dirs);
    for (int i = 0; i < nd; i++) {
        struct stat st;
        if (lamina_store_blob_path(dirs[i], digest, path, size, NULL, 0) == 0 && lstat(path, &st) == 0 &&
            S_ISREG(st.st_mode))
            return 1;
    }
    return 0;
}

int srv_api_blob_head(srv_call *c)
{
    int rc;
    const char *d = url_digest(c, &rc);
    if (!d) return rc;
    char path[4300];
    if (blob_find(c->s, d, path, sizeof path)) return srv_reply_text(c, 200, "text/plain; charset=utf-8", "", 0);
    return srv_reply_error(c, 404, "blob %s not found", d);
}

typedef struct blob_up {
    lamina_store_upload *u;
    int  rc;                      /* the first failure, its message in err */
    char err[600];
    char digest[72];
} blob_up;

static const srv_upload blob_upload;

int srv_api_blob_upload(srv_call *c)
{
    int rc;
    const char *d = url_digest(c, &rc);
    if (!d) return rc;
    char store[4096];
    if (own_store(c, store) < 0) return srv_reply_error(c, 500, "no model store: set [model] store");
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Length");
    uint64_t expect = cl ? strtoull(cl, NULL, 10) : 0;
    blob_up *b = calloc(1, sizeof *b);
    if (!b) return srv_reply_error(c, 500, "out of memory");
    snprintf(b->digest, sizeof b->digest, "%s", d);
    char err[600];
    if ((rc = lamina_store_upload_begin(store, d, expect, &b->u, err, sizeof err)) < 0) {
        free(b);
        return srv_reply_error(c, rc == LAMINA_ERANGE ? 507 : 500, "%s", err);
    }
    snprintf(c->log, sizeof c->log, "blob=%.19s", d);
    c->up = &blob_upload;
    c->up_st = b;
    return 0;
}

static void blob_data(void *st, const char *p, size_t n)
{
    blob_up *b = st;
    if (b->rc == 0) b->rc = lamina_store_upload_write(b->u, p, n, b->err, sizeof b->err);
}

static void blob_abort(void *st)
{
    blob_up *b = st;
    lamina_store_upload_abort(b->u);
    free(b);
}

static int blob_end(srv_call *c, void *st)
{
    blob_up *b = st;
    int rc = b->rc;
    char err[600];
    snprintf(err, sizeof err, "%s", b->err);
    if (rc < 0) lamina_store_upload_abort(b->u);
    else rc = lamina_store_upload_finish(b->u, err, sizeof err);
    free(b);
    if (rc == 0) return srv_reply_text(c, 201, "text/plain; charset=utf-8", "", 0);
    return srv_reply_error(c, rc == LAMINA_EFORMAT ? 400 : rc == LAMINA_ERANGE ? 507 : 500, "%s", err);
}

static const srv_upload blob_upload = { blob_data, blob_end, blob_abort };

/* ---- create ---- */

typedef struct layer_list {
    lamina_ollama_layer l[LAMINA_OLLAMA_MAX_LAYERS];
    int n;
} layer_list;

typedef struct create_ctx {
    srv *s;
    store_job *job;                 /* whose stream the status lines go to, or NULL */
    char store[4096];
    int http;                     /* the failure's status */
    char err[1024];
} create_ctx;

static int cfail(create_ctx *x, int http, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cfail(create_ctx *x, int http, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
    x->http = http;
    return -1;
}

/* A status line, out to the streamed reply as it happens. */
static void status_line(void *ud, const char *line)
{
    create_ctx *x = ud;
    if (!x->job || !x->job->stream) return;
    pthread_mutex_lock(&x->job->mu);
    if (!x->job->cancelled) put_line(x->job, json_pack("{s:s}", "status", line));
    pthread_mutex_unlock(&x->job->mu);
}

/* The manifest of `name` from lamina's store, else from a read-only
 * store with its blobs brought into lamina's (linked or copied); *text
 * (may be NULL) its bytes.  0, or -1 with x->err (404 when no store has
 * it). */
static int base_manifest(create_ctx *x, const char *name, const char *field, lamina_ollama_manifest *m,
                         char **text, size_t *len)
{
    char err[1024];
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(&x->s->cfg, dirs);
    int rc = lamina_store_import(x->store, dirs, nd, name, m, text, len, NULL, err, sizeof err);
    if (rc == LAMINA_ENOENT) return cfail(x, 404, "%s: model '%s' not found", field, name);
    if (rc < 0) return cfail(x, rc == LAMINA_EINVAL ? 400 : 500, "%s: %s", field, err);
    return 0;
}

/* A GGUF file from a model directory or the catalogue (a name lamina
 * serves that no store has) as a model layer. */
static int base_file(create_ctx *x, const char *name, layer_list *ll)
{
    char canon[128], path[4096], err[600];
    if (srv_model_resolve(&x->s->cfg, name, canon, sizeof canon, path, sizeof path, err, sizeof err) < 0)
        return cfail(x, 404, "from: %s", err);
    char what[4200];
    snprintf(what, sizeof what, "reading model file %s", path);   /* hashed: the slow step */
    status_line(x, what);
    int rc = lamina_store_add_file(x->store, path, &ll->l[ll->n], err, sizeof err);
    if (rc < 0) return cfail(x, rc == LAMINA_ENOENT ? 404 : 500, "from: %s", err);
    ll->n++;
    return 0;
}

/* The digest of an uploaded blob in lamina's store (brought over from a
 * read-only store when only there). */
static int take_blob(create_ctx *x, const char *file, const char *digest, uint64_t *size)
{
    char path[4300], err[600];
    if (!lamina_ollama_digest_valid(digest))
        return cfail(x, 400, "files: %s: invalid digest '%.80s': sha256: and 64 lowercase hex digits", file, digest);
    if (!blob_find(x->s, digest, path, sizeof path))
        return cfail(x, 400, "files: %s: blob %s not found; upload it first (POST /api/blobs/%s)", file, digest, digest);
    struct stat st;
    if (stat(path, &st) != 0) return cfail(x, 500, "%s: %s", path, strerror(errno));
    *size = (uint64_t)st.st_size;
    if (lamina_store_blob_adopt(x->store, path, digest, *size, err, sizeof err) < 0) return cfail(x, 500, "%s", err);
    return 0;
}

/* "key value" lines of a params object, as Ollama's show gives them. */
static void params_text(json_t *p, char **out)
{
    size_t cap = 256, n = 0;
    char *t = malloc(cap);
    if (!t) return;
    t[0] = 0;
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v) {
        size_t nv = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < nv; i++) {
            json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            char *vt = json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT);
            if (!vt) continue;
            size_t need = n + strlen(k) + strlen(vt) + 40;
            if (need > cap) {
                while (cap < need) cap *= 2;
                char *q = realloc(t, cap);
                if (!q) { free(vt); break; }
                t = q;
            }
            n += (size_t)snprintf(t + n, cap - n, "%-30s %s\n", k, vt);
            free(vt);
        }
    }
    *out = t;
}

/* A create request's fields, checked (pointers into the request body). */
typedef struct create_plan {
    const char *from, *tmpl, *system;
    const char *gguf_file, *gguf_digest;
    json_t *params, *license;
} create_plan;

/* Check a create request before any work: 0, or -1 with x->err and a 400. */
static int create_check(create_ctx *x, json_t *body, create_plan *cp)
{
    char err[600];
    const char *from = NULL, *tmpl = NULL, *system = NULL, *quantize = NULL;
    json_t *files = json_object_get(body, "files"), *adapters = json_object_get(body, "adapters");
    json_t *params = json_object_get(body, "parameters"), *license = json_object_get(body, "license");
    json_t *messages = json_object_get(body, "messages");
    memset(cp, 0, sizeof *cp);
    if (srv_json_str(body, "from", &from, err, sizeof err) < 0 || srv_json_str(body, "template", &tmpl, err, sizeof err) < 0 ||
        srv_json_str(body, "system", &system, err, sizeof err) < 0 ||
        srv_json_str(body, "quantize", &quantize, err, sizeof err) < 0)
        return cfail(x, 400, "%s", err);
    if (json_object_get(body, "modelfile") || json_object_get(body, "path"))
        return cfail(x, 400, "%s: the Modelfile form of /api/create is not supported; send from, files, template, "
                     "system and parameters", json_object_get(body, "modelfile") ? "modelfile" : "path");
    if (quantize && quantize[0])
        return cfail(x, 400, "quantize: lamina does not quantize models ('%.40s' asked); upload a GGUF file "
                     "quantized as wanted", quantize);
    if (adapters && !json_is_null(adapters) && (!json_is_object(adapters) || json_object_size(adapters)))
        return cfail(x, 400, "adapters: LoRA adapters are not supported");
    if (messages && !json_is_null(messages) && (!json_is_array(messages) || json_array_size(messages)))
        return cfail(x, 400, "messages: a model with stored messages is not supported (lamina would not "
                     "prepend them to conversations)");
    if (files && !json_is_null(files) && !json_is_object(files))
        return cfail(x, 400, "files: expected an object of file name to digest");
    if (params && !json_is_null(params)) {
        if (!json_is_object(params)) return cfail(x, 400, "parameters: expected an object");
        srv_gen_opts o;
        srv_gen_opts_defaults(&o, x->s);
        int prc = srv_parse_options(params, &o, err, sizeof err);
        srv_gen_opts_clear(&o);
        if (prc < 0) return cfail(x, 400, "parameters: %s", err);
    }
    if (license && !json_is_null(license) && !json_is_string(license)) {
        if (!json_is_array(license)) return cfail(x, 400, "license: expected a string or a list of strings");
        for (size_t i = 0; i < json_array_size(license); i++)
            if (!json_is_string(json_array_get(license, i)))
                return cfail(x, 400, "license[%zu]: expected a string", i);
    }
    /* the model file named in files */
    const char *gguf_file = NULL, *gguf_digest = NULL, *fname;
    json_t *fv;
    json_object_foreach(files, fname, fv) {
        if (!json_is_string(fv)) return cfail(x, 400, "files: %s: expected a digest string", fname);
        size_t fl = strlen(fname);
        if (fl < 5 || strcasecmp(fname + fl - 5, ".gguf"))
            return cfail(x, 400, "files: %s: only a GGUF file is taken (safetensors and other files are not "
                         "converted)", fname);
        if (gguf_file)
            return cfail(x, 400, "files: %s and %s: one GGUF file only (split models and projectors are not "
                         "supported)", gguf_file, fname);
        gguf_file = fname;
        gguf_digest = json_string_value(fv);
    }
    if (!gguf_file && !(from && from[0])) return cfail(x, 400, "neither 'from' nor a GGUF file in 'files'");
    if (from && from[0] && !lamina_ollama_name_valid(from)) return cfail(x, 400, "from: invalid model name '%.120s'", from);
    if (gguf_file && !lamina_ollama_digest_valid(gguf_digest))
        return cfail(x, 400, "files: %s: invalid digest '%.80s': sha256: and 64 lowercase hex digits", gguf_file,
                     gguf_digest);
    if (json_is_array(license) && json_array_size(license) >= LAMINA_OLLAMA_MAX_LAYERS)
        return cfail(x, 400, "license: too many licenses");
    *cp = (create_plan){ from, tmpl, system, gguf_file, gguf_digest, params, license };
    return 0;
}

/* The model of a checked request into lamina's store: 0, or -1 with
 * x->err and x->http. */
static int create_build(create_ctx *x, const create_plan *cp, const char *name)
{
    char err[600];
    const char *from = cp->from, *tmpl = cp->tmpl, *system = cp->system;
    const char *gguf_file = cp->gguf_file, *gguf_digest = cp->gguf_digest;
    json_t *params = cp->params, *license = cp->license;
    layer_list *ll = calloc(1, sizeof *ll);
    if (!ll) return cfail(x, 500, "out of memory");
    int rc = 0;
    if (from && from[0]) {
        lamina_ollama_manifest m;
        if (base_manifest(x, from, "from", &m, NULL, NULL) == 0) {
            for (int i = 0; i < m.n_layers && ll->n < LAMINA_OLLAMA_MAX_LAYERS - 1; i++) ll->l[ll->n++] = m.layers[i];
            lamina_ollama_manifest_free(&m);
        } else if (x->http != 404 || gguf_file || (rc = base_file(x, from, ll)) < 0) {
            rc = -1;   /* a model file lamina serves (no store has it) is taken as the model layer */
            goto out;
        }
    }
    if (gguf_file) {
        uint64_t size = 0;
        if ((rc = take_blob(x, gguf_file, gguf_digest, &size)) < 0) goto out;
        int k = 0;                                 /* the file replaces the base's model layer */
        for (int i = 0; i < ll->n; i++)
            if (strcmp(ll->l[i].media_type, LAMINA_MT_MODEL)) ll->l[k++] = ll->l[i];
        ll->n = k;
        lamina_ollama_layer *l = &ll->l[ll->n++];
        snprintf(l->media_type, sizeof l->media_type, "%s", LAMINA_MT_MODEL);
        snprintf(l->digest, sizeof l->digest, "%s", gguf_digest);
        l->size = size;
    }
    char what[200];
    snprintf(what, sizeof what, gguf_file ? "files: %.150s" : "from: %.150s", gguf_file ? gguf_file : from);
    const char *lic[LAMINA_OLLAMA_MAX_LAYERS];
    int n_lic = 0;
    if (json_is_string(license)) lic[n_lic++] = json_string_value(license);
    else if (json_is_array(license)) {
        for (size_t i = 0; i < json_array_size(license); i++) lic[n_lic++] = json_string_value(json_array_get(license, i));
    }
    char *pt = json_is_object(params) && json_object_size(params) ? json_dumps(params, JSON_COMPACT) : NULL;
    lamina_store_recipe r = { .layers = ll->l, .n_layers = ll->n, .tmpl = tmpl, .system = system, .params_json = pt,
                              .licenses = lic, .n_licenses = n_lic,
                              .set_licenses = json_is_string(license) || json_is_array(license), .what = what,
                              .ftype_name = srv_ftype_name, .status = status_line, .ud = x };
    rc = lamina_store_create(x->store, name, &r, err, sizeof err);
    free(pt);
    if (rc < 0) rc = cfail(x, rc == LAMINA_EINVAL ? 400 : rc == LAMINA_ENOENT || rc == LAMINA_EFORMAT ? 409 : 500, "%s", err);
out:
    free(ll);
    return rc;
}

static int name_field(srv_call *c, const char *key, const char **name, char *err, size_t es)
{
    if (srv_json_str(c->body, key, name, err, es) < 0) return -1;
    if (!*name && !strcmp(key, "model") && srv_json_str(c->body, "name", name, err, es) < 0) return -1;
    if (!*name || !(*name)[0]) { snprintf(err, es, "%s is required", key); return -1; }
    if (!lamina_ollama_name_valid(*name)) {
        snprintf(err, es, "%s: invalid model name '%.120s': " LAMINA_OLLAMA_NAME_FORM, key, *name);
        return -1;
    }
    return 0;
}

static int create_run(store_job *j, char *err, size_t es)
{
    create_ctx x = { .s = j->s, .job = j };
    snprintf(x.store, sizeof x.store, "%s", j->store);
    int rc = create_build(&x, j->plan, j->name);
    j->http = x.http ? x.http : 500;
    if (rc < 0) snprintf(err, es, "%s", x.err);
    return rc < 0 ? LAMINA_EIO : 0;
}

int srv_api_create(srv_call *c)
{
    char err[512];
    const char *name = NULL;
    int stream = 1;
    if (name_field(c, "model", &name, err, sizeof err) < 0 || srv_json_bool(c->body, "stream", &stream, err, sizeof err) < 0)
        return srv_reply_error(c, 400, "%s", err);
    snprintf(c->log, sizeof c->log, "model=%.120s", name);
    create_ctx x = { .s = c->s };
    create_plan *cp = malloc(sizeof *cp);
    if (!cp) return srv_reply_error(c, 500, "out of memory");
    if (create_check(&x, c->body, cp) < 0) { free(cp); return srv_reply_error(c, x.http ? x.http : 400, "%s", x.err); }
    store_job *j = job_new(c, stream);
    if (!j) { free(cp); return srv_reply_error(c, 500, "out of memory"); }
    j->run = create_run;
    j->plan = cp;
    j->body = json_incref(c->body);   /* cp points into it */
    snprintf(j->name, sizeof j->name, "%s", name);
    if (own_store(c, j->store) < 0) {
        job_drop(j);
        return srv_reply_error(c, 500, "no model store: set [model] store");
    }
    return job_reply(c, j);
}

/* ---- copy, delete ---- */

int srv_api_copy(srv_call *c)
{
    char err[1024];
    const char *src = NULL, *dst = NULL;
    if (name_field(c, "source", &src, err, sizeof err) < 0 || name_field(c, "destination", &dst, err, sizeof err) < 0)
        return srv_reply_error(c, 400, "%s", err);
    snprintf(c->log, sizeof c->log, "source=%.100s destination=%.100s", src, dst);
    create_ctx x = { .s = c->s };
    if (own_store(c, x.store) < 0) return srv_reply_error(c, 500, "no model store: set [model] store");
    lamina_ollama_manifest m;
    char *text = NULL;
    size_t len = 0;
    if (base_manifest(&x, src, "source", &m, &text, &len) < 0) return srv_reply_error(c, x.http, "%s", x.err);
    lamina_ollama_manifest_free(&m);
    int rc = lamina_store_write_manifest(x.store, dst, text, len, 1, err, sizeof err);
    free(text);
    if (rc < 0) return srv_reply_error(c, rc == LAMINA_ENOENT ? 409 : 500, "%s", err);
    return srv_reply_text(c, 200, "text/plain; charset=utf-8", "", 0);
}

int srv_api_delete(srv_call *c)
{
    char err[1024], store[4096];
    const char *name = NULL;
    if (name_field(c, "model", &name, err, sizeof err) < 0) return srv_reply_error(c, 400, "%s", err);
    snprintf(c->log, sizeof c->log, "model=%.120s", name);
    if (own_store(c, store) < 0) return srv_reply_error(c, 500, "no model store: set [model] store");
    int removed = 0;
    int rc = lamina_store_delete(store, name, &removed, err, sizeof err);
    if (rc == 0) {
        c->s->log(c->s, "deleted %s from %s (%d blob%s removed)", name, store, removed, removed == 1 ? "" : "s");
        return srv_reply_text(c, 200, "text/plain; charset=utf-8", "", 0);
    }
    if (rc != LAMINA_ENOENT) return srv_reply_error(c, rc == LAMINA_EINVAL ? 400 : 500, "%s", err);
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(&c->s->cfg, dirs);
    int d = lamina_store_which(dirs, nd, name);
    if (d >= 0 && strcmp(dirs[d], store))
        return srv_reply_error(c, 403, "model '%s' is in the Ollama store %s, which lamina does not write; "
                               "remove it with ollama rm", name, dirs[d]);
    return srv_reply_error(c, 404, "model '%s' not found in lamina's store %s", name, store);
}

/* ---- show ---- */

void srv_show_store_layers(const lamina_config *cfg, const char *name, const char *path, json_t *j)
{
    if (!j || !lamina_ollama_name_valid(name)) return;
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(cfg, dirs);
    lamina_ollama_manifest m;
    int d, rc = LAMINA_ENOENT;
    for (d = 0; d < nd && rc == LAMINA_ENOENT; d++) rc = lamina_store_read_manifest(dirs[d], name, &m, NULL, NULL, NULL, 0);
    if (rc < 0) return;
    const char *store = dirs[d - 1];
    char blob[4300];
    int ours = 0;
    for (int i = 0; i < m.n_layers; i++)
        if (!strcmp(m.layers[i].media_type, LAMINA_MT_MODEL) &&
            lamina_store_blob_path(store, m.layers[i].digest, blob, sizeof blob, NULL, 0) == 0 && !strcmp(blob, path))
            ours = 1;
    json_t *lic = NULL;
    for (int i = 0; ours && i < m.n_layers; i++) {
        const char *mt = m.layers[i].media_type;
        int kind = !strcmp(mt, LAMINA_MT_TEMPLATE) ? 1 : !strcmp(mt, LAMINA_MT_SYSTEM) ? 2
                 : !strcmp(mt, LAMINA_MT_PARAMS) ? 3 : !strcmp(mt, LAMINA_MT_LICENSE) ? 4 : 0;
        char *t = kind ? lamina_store_read_layer(store, &m.layers[i]) : NULL;
        if (!t) continue;
        if (kind == 1) json_object_set_new(j, "template", json_string(t));
        else if (kind == 2) json_object_set_new(j, "system", json_string(t));
        else if (kind == 4) {
            if (!lic) lic = json_array();
            json_array_append_new(lic, json_string(t));
        } else {
            json_t *p = json_loads(t, 0, NULL);
            char *pt = NULL;
            if (json_is_object(p)) params_text(p, &pt);
            if (pt) json_object_set_new(j, "parameters", json_string(pt));
            free(pt);
            json_decref(p);
        }
        free(t);
    }
    if (lic) {   /* Ollama's show joins several licenses into one text */
        size_t n = json_array_size(lic), tot = 1;
        for (size_t i = 0; i < n; i++) tot += json_string_length(json_array_get(lic, i)) + 1;
        char *t = malloc(tot);
        if (t) {
            size_t o = 0;
            for (size_t i = 0; i < n; i++)
                o += (size_t)snprintf(t + o, tot - o, "%s%s", i ? "\n" : "", json_string_value(json_array_get(lic, i)));
            json_object_set_new(j, "license", json_string(t));
            free(t);
        }
        json_decref(lic);
    }
    lamina_ollama_manifest_free(&m);
}
