/*
 * pool.c - the models the server knows and the ones it has loaded.
 *
 * Names: a client names a model by catalogue name (models/catalogue.ini)
 * or by the stem of a NAME.gguf file in the model directories ([model]
 * dirs, $LAMINA_MODELS, $XDG_DATA_HOME/lamina/models, the installed
 * share/lamina/models, the order lamina_model_resolve uses), optionally
 * with ":latest".  Names are checked character by character and never
 * taken as paths.
 *
 * Loading: on first use, one load at a time (s->load_mu); requests for a
 * model being loaded wait for it.  Before loading, the model's memory
 * (file, KV cache for every slot, scratch) is estimated and idle models
 * are unloaded, least recently used first, until it fits the budget and
 * the model count; if busy models hold the memory the request gets 503.
 * Each loaded model has its own backends, engine, batcher and worker
 * thread.  A model unloads keep_alive seconds after its last request.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalogue.h"
#include "conf.h"
#include "ollama_store.h"
#include "server/server.h"
#include "arch.h"

#ifndef LAMINA_DATADIR
#define LAMINA_DATADIR "/usr/local/share/lamina"
#endif

static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
/* lamina_model_resolve verifies a catalogue file's SHA-256 on first use
 * through a buffer shared by all callers: one resolution at a time. */
static pthread_mutex_t resolve_mu = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------------ */
/* Directories and names                                              */

#define MAX_DIRS (LAMINA_MAX_PATHS + 3)

static int model_dirs(const lamina_config *cfg, char dirs[][4096])
{
    int nd = 0;
    for (int i = 0; i < cfg->n_model_dirs && nd < LAMINA_MAX_PATHS; i++)
        snprintf(dirs[nd++], 4096, "%s", cfg->model_dirs[i]);
    const char *v = lamina_env_get("LAMINA_MODELS");
    if (v && *v) snprintf(dirs[nd++], 4096, "%s", v);
    const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (x && *x) snprintf(dirs[nd++], 4096, "%s/lamina/models", x);
    else if (home) snprintf(dirs[nd++], 4096, "%s/.local/share/lamina/models", home);
    snprintf(dirs[nd++], 4096, "%s/models", LAMINA_DATADIR);
    return nd;
}

static const char *catalogue_file(char *buf, size_t size)
{
    const char *p = lamina_env_get("LAMINA_CATALOGUE");
    if (p && *p) return p;
    snprintf(buf, size, "%s/models/catalogue.ini", LAMINA_DATADIR);
    return buf;
}

/* Letters, digits, '.', '_', '-', ':'; starting with a letter or digit;
 * no "..". */
static int valid_model_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 100) return 0;
    if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z') || (n[0] >= '0' && n[0] <= '9')))
        return 0;
    for (const char *c = n; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.' || *c == ':'))
            return 0;
    return strstr(n, "..") == NULL;
}

static int regular_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, R_OK) == 0;
}

/* A model of an Ollama store: canon is its shortest name without ":latest". */
static int store_resolve(const lamina_config *cfg, const char *name, char *canon, size_t canon_size, char *path,
                         size_t path_size, char *err, size_t err_size)
{
    char shown[128];
    int rc = lamina_ollama_resolve(cfg, name, path, path_size, shown, sizeof shown, err, err_size);
    if (rc < 0) return rc;
    size_t len = strlen(shown);
    if (len > 7 && !strcmp(shown + len - 7, ":latest")) shown[len - 7] = 0;
    snprintf(canon, canon_size, "%s", shown);
    return 0;
}

int srv_model_resolve(const lamina_config *cfg, const char *name, char *canon, size_t canon_size,
                      char *path, size_t path_size, char *err, size_t err_size)
{
    if (!name || !*name) name = cfg->model_default[0] ? cfg->model_default : "gemma3-270m";
    if (!valid_model_name(name)) {
        if (lamina_ollama_name_valid(name)) return store_resolve(cfg, name, canon, canon_size, path, path_size, err, err_size);
        snprintf(err, err_size, "invalid model name '%.100s': letters, digits, '.', '_', '-' and ':', or an Ollama "
                 "name [namespace/]model[:tag]", name);
        return LAMINA_EINVAL;
    }
    char c[128];
    snprintf(c, sizeof c, "%s", name);
    size_t len = strlen(c);
    if (len > 7 && !strcmp(c + len - 7, ":latest")) c[len - 7] = 0;
    snprintf(canon, canon_size, "%s", c);
    len = strlen(c);
    if (len > 5 && !strcmp(c + len - 5, ".gguf")) {
        snprintf(err, err_size, "model '%s' not found (name models without .gguf)", c);
        return LAMINA_ENOENT;
    }
    lamina_catalogue_entry e;
    char cerr[512] = "";
    if (lamina_catalogue_find(c, &e, cerr, sizeof cerr) == 0) {
        pthread_mutex_lock(&resolve_mu);
        int rc = lamina_model_resolve(cfg, c, path, path_size, err, err_size);
        pthread_mutex_unlock(&resolve_mu);
        return rc < 0 ? LAMINA_ENOENT : 0;
    }
    char dirs[MAX_DIRS][4096];
    int nd = model_dirs(cfg, dirs);
    for (int i = 0; i < nd; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s.gguf", dirs[i], c);
        if (regular_file(p) && strlen(p) < path_size) {
            snprintf(path, path_size, "%s", p);
            return 0;
        }
    }
    /* an Ollama store, by the name as given (its tag included) */
    if (lamina_ollama_name_valid(name)) {
        int rc = store_resolve(cfg, name, canon, canon_size, path, path_size, err, err_size);
        if (rc != LAMINA_ENOENT) return rc;
        snprintf(canon, canon_size, "%s", c);
    }
    snprintf(err, err_size, "model '%s' not found", c);
    return LAMINA_ENOENT;
}

/* ------------------------------------------------------------------ */
/* What a model file is (for tags, show, ps)                          */

typedef struct file_info {
    char     arch[32];
    char     quant[16];
    char     params[24];          /* "268.10M" */
    int64_t  n_params;
    int64_t  ctx_train;
    uint64_t size;
    double   mtime;               /* CLOCK_REALTIME seconds */
    char     digest[80];          /* "sha256:..." or "" */
} file_info;

const char *srv_ftype_name(int64_t t)
{
    switch (t) {
    case 0: return "F32"; case 1: return "F16"; case 2: return "Q4_0"; case 3: return "Q4_1";
    case 7: return "Q8_0"; case 8: return "Q5_0"; case 9: return "Q5_1"; case 10: return "Q2_K";
    case 11: return "Q3_K_S"; case 12: return "Q3_K_M"; case 13: return "Q3_K_L"; case 14: return "Q4_K_S";
    case 15: return "Q4_K_M"; case 16: return "Q5_K_S"; case 17: return "Q5_K_M"; case 18: return "Q6_K";
    case 32: return "BF16";
    default: return "unknown";
    }
}

/* SHA-256 of files other than catalogue entries, computed once per file
 * identity. */
static pthread_mutex_t digest_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { char path[4096]; uint64_t size; double mtime; char hex[65]; } digests[32];
static int n_digests;

static void file_digest(const char *path, uint64_t size, double mtime, const char *known, char *out, size_t out_size)
{
    if (known && known[0]) { snprintf(out, out_size, "sha256:%s", known); return; }
    pthread_mutex_lock(&digest_mu);
    for (int i = 0; i < n_digests; i++)
        if (!strcmp(digests[i].path, path) && digests[i].size == size && digests[i].mtime == mtime) {
            snprintf(out, out_size, "sha256:%s", digests[i].hex);
            pthread_mutex_unlock(&digest_mu);
            return;
        }
    pthread_mutex_unlock(&digest_mu);
    char hex[65];
    char e[256];
    pthread_mutex_lock(&resolve_mu);
    int rc = lamina_sha256_file(path, hex, e, sizeof e);
    pthread_mutex_unlock(&resolve_mu);
    if (rc < 0) { out[0] = 0; return; }
    pthread_mutex_lock(&digest_mu);
    int i = n_digests < 32 ? n_digests++ : 0;
    snprintf(digests[i].path, sizeof digests[i].path, "%s", path);
    digests[i].size = size;
    digests[i].mtime = mtime;
    memcpy(digests[i].hex, hex, sizeof hex);
    pthread_mutex_unlock(&digest_mu);
    snprintf(out, out_size, "sha256:%s", hex);
}

/* digest 0: fi->digest only when known (catalogue, store), no hashing. */
static int file_info_get(const char *path, const char *known_sha, file_info *fi, lamina_gguf **keep, int digest,
                         char *err, size_t err_size)
{
    memset(fi, 0, sizeof *fi);
    struct stat st;
    if (stat(path, &st) != 0) { snprintf(err, err_size, "%s: %s", path, strerror(errno)); return LAMINA_ENOENT; }
    fi->size = (uint64_t)st.st_size;
    fi->mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec * 1e-9;
    lamina_gguf *g;
    int rc = lamina_gguf_open(path, &g, err, err_size);
    if (rc < 0) return rc;
    const char *s;
    size_t sl;
    if (lamina_gguf_get_str(g, "general.architecture", &s, &sl, NULL, 0) == 0)
        snprintf(fi->arch, sizeof fi->arch, "%.*s", (int)sl, s);
    int64_t ft = -1;
    lamina_gguf_get_i64(g, "general.file_type", &ft, NULL, 0);
    snprintf(fi->quant, sizeof fi->quant, "%s", ft >= 0 ? srv_ftype_name(ft) : "unknown");
    char key[96];
    snprintf(key, sizeof key, "%s.context_length", fi->arch);
    lamina_gguf_get_i64(g, key, &fi->ctx_train, NULL, 0);
    for (int64_t i = 0; i < lamina_gguf_n_tensors(g); i++) {
        const lamina_gguf_tensor *t = lamina_gguf_tensor_at(g, i);
        fi->n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    double p = (double)fi->n_params;
    if (p >= 1e9) snprintf(fi->params, sizeof fi->params, "%.2fB", p / 1e9);
    else if (p >= 1e6) snprintf(fi->params, sizeof fi->params, "%.2fM", p / 1e6);
    else snprintf(fi->params, sizeof fi->params, "%.2fK", p / 1e3);
    if (digest || (known_sha && known_sha[0]))
        file_digest(path, fi->size, fi->mtime, known_sha, fi->digest, sizeof fi->digest);
    if (keep) *keep = g;
    else lamina_gguf_close(g);
    return 0;
}

static json_t *details_json(const file_info *fi)
{
    return json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "parent_model", "", "format", "gguf",
                     "family", fi->arch, "families", fi->arch, "parameter_size", fi->params,
                     "quantization_level", fi->quant);
}

/* ------------------------------------------------------------------ */
/* Listing                                                            */

typedef struct listed {
    char name[128];
    char path[4096];
    char real[4096];
    char sha[65];
    char broken[600];             /* why it cannot be used, or "" */
} listed;

typedef struct cat_list {
    listed *v;
    int n, cap;
    const lamina_config *cfg;
} cat_list;

static listed *list_slot(cat_list *l)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        listed *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        l->v = v;
        l->cap = cap;
    }
    listed *e = &l->v[l->n++];
    memset(e, 0, sizeof *e);
    return e;
}

/* Add a model unless its name is taken (or, same_file 0, its file is
 * listed under another name: a catalogue file in a model directory). */
static int list_add_file(cat_list *l, const char *name, const char *path, const char *sha, int same_file)
{
    char real[4096];
    if (!realpath(path, real)) return 0;
    for (int i = 0; i < l->n; i++)
        if ((!same_file && !strcmp(l->v[i].real, real)) || !strcmp(l->v[i].name, name)) return 0;
    listed *e = list_slot(l);
    if (!e) return -1;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->path, sizeof e->path, "%s", path);
    snprintf(e->real, sizeof e->real, "%s", real);
    snprintf(e->sha, sizeof e->sha, "%s", sha ? sha : "");
    return 0;
}

static int list_add(cat_list *l, const char *name, const char *path, const char *sha)
{
    return list_add_file(l, name, path, sha, 0);
}

typedef struct cat_scan {
    char name[64], file[256], sha[65];
    int have;
    char names[64][64];
    char files[64][256];
    char shas[64][65];
    int n;
} cat_scan;

static int cat_handler(void *user, const char *section, const char *key, const char *value)
{
    cat_scan *c = user;
    int i;
    for (i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], section)) break;
    if (i == c->n) {
        if (c->n == 64) return 1;
        snprintf(c->names[i], sizeof c->names[i], "%s", section);
        c->files[i][0] = c->shas[i][0] = 0;
        c->n++;
    }
    if (!strcmp(key, "file")) snprintf(c->files[i], sizeof c->files[i], "%s", value);
    else if (!strcmp(key, "sha256")) snprintf(c->shas[i], sizeof c->shas[i], "%s", value);
    return 1;
}

static int store_add(void *ctx, const lamina_ollama_model *m)
{
    cat_list *l = ctx;
    if (!m->broken[0]) return list_add_file(l, m->name, m->model, m->digest + 7, 1) < 0;   /* tags may share a blob */
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, m->name)) return 0;
    listed *e = list_slot(l);
    if (!e) return 1;
    snprintf(e->name, sizeof e->name, "%s", m->name);
    snprintf(e->broken, sizeof e->broken, "%s", m->broken);
    return 0;
}

/* Every model a client can name: catalogue entries whose file is present,
 * then the other NAME.gguf files of the model directories, then the models
 * of the Ollama stores (broken ones with their reason). */
static int list_models(const lamina_config *cfg, cat_list *l)
{
    memset(l, 0, sizeof *l);
    char dirs[MAX_DIRS][4096];
    int nd = model_dirs(cfg, dirs);
    char cbuf[4096];
    cat_scan *cs = calloc(1, sizeof *cs);
    if (!cs) return LAMINA_ENOMEM;
    ini_parse(catalogue_file(cbuf, sizeof cbuf), cat_handler, cs);
    for (int i = 0; i < cs->n; i++) {
        if (!cs->files[i][0] || strchr(cs->files[i], '/')) continue;
        for (int d = 0; d < nd; d++) {
            char p[4400];
            snprintf(p, sizeof p, "%s/%s", dirs[d], cs->files[i]);
            if (regular_file(p)) { list_add(l, cs->names[i], p, cs->shas[i]); break; }
        }
    }
    free(cs);
    for (int d = 0; d < nd; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) continue;
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            size_t len = strlen(de->d_name);
            if (len <= 5 || strcmp(de->d_name + len - 5, ".gguf") != 0) continue;
            char stem[128];
            if (len - 5 >= sizeof stem) continue;
            memcpy(stem, de->d_name, len - 5);
            stem[len - 5] = 0;
            if (!valid_model_name(stem)) continue;
            char p[4400];
            snprintf(p, sizeof p, "%s/%s", dirs[d], de->d_name);
            if (regular_file(p)) list_add(l, stem, p, NULL);
        }
        closedir(dir);
    }
    /* the Ollama stores' models, by their Ollama names */
    char sd[LAMINA_MAX_STORES][4096];
    int ns = lamina_ollama_stores(cfg, sd);
    lamina_ollama_list(sd, ns, store_add, l);
    return 0;
}

json_t *srv_pool_tags(const lamina_config *cfg, int hash_files)
{
    cat_list l;
    list_models(cfg, &l);
    json_t *arr = json_array(), *broken = json_array();
    for (int i = 0; i < l.n; i++) {
        file_info fi;
        char e[600];
        snprintf(e, sizeof e, "%s", l.v[i].broken);
        if (!e[0] && file_info_get(l.v[i].path, l.v[i].sha, &fi, NULL, hash_files, e, sizeof e) == 0) {
            char when[48];
            srv_time_rfc3339(fi.mtime, when, sizeof when);
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "name", l.v[i].name,
                                                 "model", l.v[i].name, "modified_at", when,
                                                 "size", (json_int_t)fi.size, "digest", fi.digest,
                                                 "details", details_json(&fi)));
        } else {
            json_array_append_new(broken, json_pack("{s:s, s:s}", "name", l.v[i].name, "error", e));
        }
    }
    free(l.v);
    json_t *out = json_pack("{s:o}", "models", arr);
    if (json_array_size(broken)) json_object_set_new(out, "broken", broken);
    else json_decref(broken);
    return out;
}

json_t *srv_pool_openai_models(srv *s, const char *only)
{
    cat_list l;
    list_models(&s->cfg, &l);
    json_t *arr = json_array();
    json_t *one = NULL;
    for (int i = 0; i < l.n; i++) {
        struct stat st;
        if (l.v[i].broken[0] || stat(l.v[i].path, &st) != 0) continue;
        json_t *m = json_pack("{s:s, s:s, s:I, s:s}", "id", l.v[i].name, "object", "model",
                              "created", (json_int_t)st.st_mtim.tv_sec, "owned_by", "lamina");
        if (only) {
            char c[128];
            snprintf(c, sizeof c, "%s", only);
            size_t len = strlen(c);
            if (len > 7 && !strcmp(c + len - 7, ":latest")) c[len - 7] = 0;
            if (!strcmp(c, l.v[i].name) && !one) one = m;
            else json_decref(m);
        } else {
            json_array_append_new(arr, m);
        }
    }
    free(l.v);
    if (only) { json_decref(arr); return one; }
    return json_pack("{s:s, s:o}", "object", "list", "data", arr);
}

/* One metadata value as JSON; arrays only when verbose (else null). */
static json_t *kv_json(const lamina_gguf *g, const char *key, uint32_t type, int verbose)
{
    int64_t i64;
    float f;
    int b;
    const char *str;
    size_t sl;
    switch (type) {
    case LAMINA_GGUF_STRING:
        if (lamina_gguf_get_str(g, key, &str, &sl, NULL, 0) == 0) return json_stringn(str, sl);
        return json_null();
    case LAMINA_GGUF_F32:
    case LAMINA_GGUF_F64:
        if (lamina_gguf_get_f32(g, key, &f, NULL, 0) == 0) return json_real(f);
        return json_null();
    case LAMINA_GGUF_BOOL:
        if (lamina_gguf_get_bool(g, key, &b, NULL, 0) == 0) return json_boolean(b);
        return json_null();
    case LAMINA_GGUF_ARRAY: {
        if (!verbose) return json_null();
        uint32_t et;
        uint64_t n;
        const void *data;
        if (lamina_gguf_get_arr(g, key, &et, &n, &data, NULL, 0) < 0) return json_null();
        json_t *a = json_array();
        for (uint64_t k = 0; k < n; k++) {
            if (et == LAMINA_GGUF_STRING) {
                if (lamina_gguf_arr_str(g, key, k, &str, &sl) == 0) json_array_append_new(a, json_stringn(str, sl));
            } else if (et == LAMINA_GGUF_F32 || et == LAMINA_GGUF_F64) {
                json_array_append_new(a, json_real(lamina_gguf_arr_f64(et, data, k)));
            } else {
                json_array_append_new(a, json_integer((json_int_t)lamina_gguf_arr_i64(et, data, k)));
            }
        }
        return a;
    }
    default:
        if (lamina_gguf_get_i64(g, key, &i64, NULL, 0) == 0) return json_integer((json_int_t)i64);
        return json_null();
    }
}

/* A token's id by its text in the file's vocabulary, without a tokenizer
 * (models not loaded): the special tokens FIM needs sit at the end, so
 * only the last 4096 entries are looked at. */
static lamina_token gguf_token_find(void *ctx, const char *text)
{
    const lamina_gguf *g = ctx;
    uint32_t et;
    uint64_t n;
    const void *d;
    size_t tl = strlen(text);
    if (lamina_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &d, NULL, 0) < 0 || et != LAMINA_GGUF_STRING)
        return LAMINA_TOKEN_NONE;
    for (uint64_t k = n; k-- > 0 && n - k <= 4096;) {
        const char *str;
        size_t sl;
        if (lamina_gguf_arr_str(g, "tokenizer.ggml.tokens", k, &str, &sl) == 0 && sl == tl && !memcmp(str, text, tl))
            return (lamina_token)k;
    }
    return LAMINA_TOKEN_NONE;
}

/* Ollama's capabilities: completion; tools (every chat model: templates
 * that take none get lamina's generic format); thinking (the template
 * thinks); insert (all three fill-in-the-middle tokens, as
 * srv_fim_tokens needs them); embedding (the file says
 * how to pool). */
static json_t *model_caps(const lamina_gguf *g, const char *tmpl)
{
    char key[96];
    int64_t pool = -1;
    const char *arch = NULL;
    size_t al = 0;
    if (lamina_gguf_get_str(g, "general.architecture", &arch, &al, NULL, 0) == 0 && al < 64) {
        /* an encoder (bert) gives embeddings and nothing else, and those
         * only when its file names a pooling that makes one vector per
         * input (mean, CLS or last); a cross-encoder (rank) scores pairs */
        char an[64];
        memcpy(an, arch, al);
        an[al] = 0;
        const lamina_arch_info *ai = lamina_arch_find(an);
        if (ai && (ai->flags & LAMINA_ARCH_F_ENCODER)) {
            snprintf(key, sizeof key, "%s.pooling_type", an);
            json_t *ec = json_array();
            if (lamina_gguf_get_i64(g, key, &pool, NULL, 0) == 0 && pool >= 1 && pool <= 3)
                json_array_append_new(ec, json_string("embedding"));
            return ec;
        }
    }
    json_t *caps = json_pack("[s, s]", "completion", "tools");
    if (lamina_template_thinks(tmpl)) json_array_append_new(caps, json_string("thinking"));
    lamina_token fim[3];
    uint32_t et;
    uint64_t n_vocab = 0;
    const void *d;
    if (lamina_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n_vocab, &d, NULL, 0) < 0 || et != LAMINA_GGUF_STRING)
        n_vocab = 0;
    if (n_vocab && srv_fim_ids(g, (int64_t)n_vocab, gguf_token_find, (void *)g, fim))
        json_array_append_new(caps, json_string("insert"));
    if (lamina_gguf_get_str(g, "general.architecture", &arch, &al, NULL, 0) == 0 && al < 64) {
        snprintf(key, sizeof key, "%.*s.pooling_type", (int)al, arch);
        if (lamina_gguf_get_i64(g, key, &pool, NULL, 0) == 0 && pool != 4)
            json_array_append_new(caps, json_string("embedding"));
    }
    return caps;
}

static json_t *show_file(const char *canon, const char *path, int verbose)
{
    lamina_catalogue_entry ce;
    const char *sha = lamina_catalogue_find(canon, &ce, NULL, 0) == 0 ? ce.sha256 : NULL;
    file_info fi;
    lamina_gguf *g = NULL;
    char e[512];
    if (file_info_get(path, sha, &fi, &g, 1, e, sizeof e) < 0) return NULL;
    json_t *info = json_object();
    for (int64_t i = 0; i < lamina_gguf_n_kv(g); i++) {
        const char *key = lamina_gguf_key(g, i);
        json_object_set_new(info, key, kv_json(g, key, lamina_gguf_kv_type(g, i), verbose));
    }
    json_object_set_new(info, "general.parameter_count", json_integer((json_int_t)fi.n_params));
    const char *tmpl = "";
    size_t tl = 0;
    lamina_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &tl, NULL, 0);
    char when[48];
    srv_time_rfc3339(fi.mtime, when, sizeof when);
    char modelfile[4400];
    snprintf(modelfile, sizeof modelfile, "# served by lamina %s\nFROM %s\n", LAMINA_VERSION_STRING, path);
    json_t *caps = model_caps(g, tl ? tmpl : NULL);
    json_t *out = json_pack("{s:s, s:s, s:s%, s:o, s:o, s:s, s:o}", "modelfile", modelfile, "parameters", "",
                            "template", tmpl, tl, "details", details_json(&fi), "model_info", info,
                            "modified_at", when, "capabilities", caps);
    lamina_gguf_close(g);
    return out;
}

json_t *srv_show(const lamina_config *cfg, const char *name, int verbose, int *http, char *err, size_t err_size)
{
    char canon[128], path[4096];
    int rc = srv_model_resolve(cfg, name, canon, sizeof canon, path, sizeof path, err, err_size);
    if (rc < 0) {
        *http = rc == LAMINA_EINVAL || rc == LAMINA_ENOTSUP ? 400 : rc == LAMINA_EFORMAT ? 500 : 404;
        return NULL;
    }
    json_t *j = show_file(canon, path, verbose);
    if (!j) {
        *http = 500;
        snprintf(err, err_size, "cannot read model '%s' (%s)", canon, path);
        return NULL;
    }
    srv_show_store_layers(cfg, canon, path, j);
    return j;
}

/* ------------------------------------------------------------------ */
/* Loading and unloading                                              */

static void *worker_main(void *arg)
{
    srv_model *m = arg;
    char err[512];
    while (!m->stop) {
        if (!lamina_batcher_wait(m->b, 0.5)) continue;
        if (m->stop) break;
        err[0] = 0;
        int rc = lamina_batcher_step(m->b, err, sizeof err);
        if (rc < 0) fprintf(stderr, "lamina serve: %s: decode failed: %s\n", m->name, err);
        else if (rc == 0 && err[0]) fprintf(stderr, "lamina serve: %s: %s; the requests carry on\n", m->name, err);
    }
    return NULL;
}

/* the chat's one-line reasons (a template not used, a fallback), in the log */
static void chat_log(void *ctx, int level, const char *msg)
{
    srv_model *m = ctx;
    (void)level;
    m->owner->log(m->owner, "%s: %s", m->name, msg);
}

/* A small layer file (at most 64 KiB), NUL-terminated; NULL when absent or larger. */
static char *read_small(const char *path)
{
    FILE *f = *path ? fopen(path, "rb") : NULL;
    if (!f) return NULL;
    char *buf = malloc(65537);
    size_t n = buf ? fread(buf, 1, 65537, f) : 0;
    fclose(f);
    if (!buf || n > 65536) { free(buf); return NULL; }
    buf[n] = 0;
    return buf;
}

/* An Ollama store model's params and system layers (when the file loaded
 * is that model's blob).  Unusable ones are logged and left out. */
static void store_defaults(srv *s, srv_model *m)
{
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(&s->cfg, dirs);
    lamina_ollama_model om;
    if (!lamina_ollama_name_valid(m->name) || lamina_ollama_find(dirs, nd, m->name, &om, NULL, 0) < 0 ||
        strcmp(om.model, m->path) != 0)
        return;
    char *p = read_small(om.params_path);
    if (p) {
        json_t *j = json_loads(p, 0, NULL);
        srv_gen_opts o;
        srv_gen_opts_defaults(&o, s);
        char e[400];
        if (json_is_object(j) && srv_parse_options(j, &o, e, sizeof e) == 0) m->defaults = j;
        else {
            json_decref(j);
            s->log(s, "%s: the store's params layer is not used (%s)", m->name, json_is_object(j) ? e : "not a JSON object");
        }
        srv_gen_opts_clear(&o);
        free(p);
    }
    m->system = read_small(om.system_path);
}

static void model_free(srv *s, srv_model *m)
{
    if (!m) return;
    if (m->thread_started) {
        m->stop = 1;
        lamina_batcher_wake(m->b);
        pthread_join(m->thread, NULL);
        m->thread_started = 0;
    }
    lamina_batcher_free(m->b);
    m->b = NULL;
    lamina_engine_free(m->eng);
    for (int i = 0; i < m->n_bes; i++) lamina_be_close(m->bes[i]);
    lamina_chat_close(m->chat);
    json_decref(m->defaults);
    free(m->system);
    lamina_tokenizer_free(m->tok);
    lamina_model_free(m->model);
    (void)s;
    free(m);
}

static int is_host(const lamina_be *be)
{
    const char *t = be->slot && be->slot->device ? be->slot->device->info.type : NULL;
    return t && !strcmp(t, "cpu");
}

static int slot_ctx(const srv *s, const lamina_model *model)
{
    int n = s->set.n_ctx > 0 ? s->set.n_ctx : s->cfg.n_ctx > 0 ? s->cfg.n_ctx : 2048;
    if (n > model->hp.n_ctx_train && model->hp.n_ctx_train > 0) n = model->hp.n_ctx_train;
    return n;
}

/* Tokens one engine step takes: a token of every slot and a prompt chunk;
 * for an encoder (bert) at least a whole context, since an encoder's input
 * is read in one step, never in chunks. */
static int batch_tokens(const srv *s, const lamina_model *model)
{
    int n = s->set.parallel + s->set.prompt_chunk;
    if (!model->hp.causal && slot_ctx(s, model) > n) n = slot_ctx(s, model);
    return n;
}

/* Bytes a model will use: its file (mapped or uploaded), the KV cache of
 * every slot, scratch for a batch and the logits. */
static uint64_t estimate_bytes(const srv *s, const lamina_model *model, uint64_t file_size)
{
    const lamina_hparams *hp = &model->hp;
    uint64_t ctx = (uint64_t)slot_ctx(s, model), seqs = (uint64_t)s->set.parallel;
    uint64_t kv = (uint64_t)hp->n_layer * seqs * ctx * (uint64_t)hp->n_head_kv *
                  (uint64_t)(hp->head_dim + hp->head_dim_v) * 2u;
    uint64_t T = (uint64_t)batch_tokens(s, model);
    uint64_t scratch = T * 4u * (4u * (uint64_t)hp->n_embd + 2u * (uint64_t)hp->n_ff +
                                 2u * (uint64_t)hp->n_head * (uint64_t)hp->head_dim) +
                       2u * seqs * (uint64_t)hp->n_vocab * 4u;
    return file_size + kv + scratch;
}

/* Load everything for m (pool entry in state LOADING).  No pool lock held. */
static int model_load(srv *s, srv_model *m, lamina_model *model, char *err, size_t err_size)
{
    int rc;
    m->model = model;
    if ((rc = lamina_tokenizer_load(model->gguf, &m->tok, err, err_size)) < 0) return rc;
    int n_slots = lamina_runtime_device_count(s->rt);
    for (int i = 0; i < n_slots && m->n_bes < LAMINA_MAX_BACKENDS; i++) {
        lamina_be *be = NULL;
        char e2[512] = "";
        if (lamina_runtime_open_backend(s->rt, i, &be, e2, sizeof e2) < 0) {
            fprintf(stderr, "lamina serve: %s: %s: passed over: %s\n", m->name,
                    lamina_runtime_device(s->rt, i)->device->label, e2);
            continue;
        }
        m->bes[m->n_bes++] = be;
    }
    if (m->n_bes == 0) {
        snprintf(err, err_size, "no usable backend (see `lamina backends`)");
        return LAMINA_ENODEV;
    }
    lamina_engine_params p;
    lamina_engine_params_default(&p);
    p.n_ctx = slot_ctx(s, model);
    p.n_seq = s->set.parallel;
    p.n_batch = batch_tokens(s, model);
    p.n_outputs = s->set.parallel;
    if (s->cfg.speculative)         /* rows for every slot's drafts */
        p.n_outputs = s->set.parallel * (1 + s->cfg.speculative_draft);
    p.gpu_layers = s->cfg.gpu_layers;
    p.reserve_bytes = s->cfg.reserve_mib << 20;
    if ((rc = lamina_engine_create(model, m->bes, m->n_bes, &p, &m->eng, err, err_size)) < 0) return rc;
    lamina_batcher_params bp = { .n_chunk = s->set.prompt_chunk, .max_queue = s->set.queue,
                                 .spec_draft = s->cfg.speculative ? s->cfg.speculative_draft : 0,
                                 .spec_ngram = s->cfg.speculative_ngram };
    if ((rc = lamina_batcher_create(m->eng, m->tok, &bp, &m->b, err, err_size)) < 0) return rc;
    m->has_template = lamina_tokenizer_chat_template(m->tok) != NULL;
    m->owner = s;
    lamina_logger lg = { chat_log, m };
    if ((rc = lamina_chat_open(m->tok, &lg, &m->chat, err, err_size)) < 0) return rc;
    store_defaults(s, m);
    /* memory actually used */
    const lamina_plan_part *parts;
    int np = lamina_engine_plan(m->eng, &parts);
    uint64_t total = lamina_gguf_file_size(model->gguf), dev = 0;
    for (int i = 0; i < np; i++) {
        uint64_t b = parts[i].weight_bytes + parts[i].kv_bytes + parts[i].scratch_bytes;
        total += parts[i].kv_bytes + parts[i].scratch_bytes + (is_host(m->bes[parts[i].be]) ? 0 : parts[i].weight_bytes);
        if (!is_host(m->bes[parts[i].be])) dev += b;
    }
    m->bytes = total;
    m->dev_bytes = dev;
    if (pthread_create(&m->thread, NULL, worker_main, m) != 0) {
        snprintf(err, err_size, "cannot start the model's worker thread");
        return LAMINA_ENOMEM;
    }
    m->thread_started = 1;
    char plan[4096];
    lamina_engine_describe_plan(m->eng, plan, sizeof plan);
    s->log(s, "loaded %s (%s, %d layers, %d sequences x %d positions) from %s\n%s", m->name,
           model->hp.arch_name, model->hp.n_layer, p.n_seq, p.n_ctx, m->path, plan);
    return 0;
}

static uint64_t pool_bytes_locked(const srv *s, const srv_model *except)
{
    uint64_t t = 0;
    for (const srv_model *m = s->models; m; m = m->next)
        if (m != except) t += m->state == SRV_READY ? m->bytes : m->est_bytes;
    return t;
}

static int pool_count_locked(const srv *s)
{
    int n = 0;
    for (const srv_model *m = s->models; m; m = m->next) n += m->state != SRV_FAILED;
    return n;
}

static void unlink_locked(srv *s, srv_model *m)
{
    for (srv_model **pp = &s->models; *pp; pp = &(*pp)->next)
        if (*pp == m) { *pp = m->next; m->next = NULL; return; }
}

/* The least recently used idle model, or NULL. */
static srv_model *lru_idle_locked(srv *s, const srv_model *except)
{
    srv_model *best = NULL;
    for (srv_model *m = s->models; m; m = m->next)
        if (m != except && m->state == SRV_READY && m->users == 0 && (!best || m->last_used < best->last_used))
            best = m;
    return best;
}

/* Free an unlinked model.  Backends are opened and closed under load_mu
 * (the runtime's plugin handles are shared): `locked` says whether the
 * caller holds it already. */
static void unload(srv *s, srv_model *m, const char *why, int locked)
{
    s->log(s, "unloading %s (%s)", m->name, why);
    if (!locked) pthread_mutex_lock(&load_mu);
    model_free(s, m);
    if (!locked) pthread_mutex_unlock(&load_mu);
    pthread_mutex_lock(&s->pool_mu);
    s->unloads++;
    pthread_mutex_unlock(&s->pool_mu);
}

int srv_pool_acquire(srv *s, const char *name, srv_model **out, double *load_s, int *http,
                     char *err, size_t err_size)
{
    char canon[128], path[4096], real[4096];
    *out = NULL;
    *load_s = 0;
    int rc = srv_model_resolve(&s->cfg, name, canon, sizeof canon, path, sizeof path, err, err_size);
    if (rc < 0) { *http = rc == LAMINA_EINVAL || rc == LAMINA_ENOTSUP ? 400 : rc == LAMINA_EFORMAT ? 500 : 404; return rc; }
    if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);

    pthread_mutex_lock(&s->pool_mu);
    for (;;) {
        if (s->shutting_down) {
            pthread_mutex_unlock(&s->pool_mu);
            snprintf(err, err_size, "the server is shutting down");
            *http = 503;
            return LAMINA_ECANCELED;
        }
        srv_model *m;
        for (m = s->models; m; m = m->next)
            if (!strcmp(m->real, real)) break;
        if (!m) break;
        if (m->state == SRV_READY) {
            m->users++;
            m->last_used = srv_now();
            pthread_mutex_unlock(&s->pool_mu);
            *out = m;
            return 0;
        }
        if (m->state == SRV_FAILED) {
            snprintf(err, err_size, "%s", m->load_err);
            pthread_mutex_unlock(&s->pool_mu);
            *http = 500;
            return LAMINA_EIO;
        }
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);    /* another request is loading it */
    }
    /* not loaded: an entry in LOADING holds its place */
    srv_model *m = calloc(1, sizeof *m);
    if (!m) { pthread_mutex_unlock(&s->pool_mu); *http = 500; snprintf(err, err_size, "out of memory"); return LAMINA_ENOMEM; }
    snprintf(m->name, sizeof m->name, "%s", canon);
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->real, sizeof m->real, "%s", real);
    m->state = SRV_LOADING;
    m->next = s->models;
    s->models = m;
    pthread_mutex_unlock(&s->pool_mu);

    double t0 = srv_now();
    pthread_mutex_lock(&load_mu);
    lamina_model *model = NULL;
    char e2[1024] = "";
    int code = 500;
    rc = lamina_model_load(path, &model, e2, sizeof e2);
    if (rc == 0) {
        lamina_catalogue_entry ce;
        const char *sha = lamina_catalogue_find(canon, &ce, NULL, 0) == 0 ? ce.sha256 : NULL;
        file_info fi;
        char e3[512];
        if (file_info_get(path, sha, &fi, NULL, 1, e3, sizeof e3) == 0) {
            snprintf(m->arch, sizeof m->arch, "%s", fi.arch);
            snprintf(m->quant, sizeof m->quant, "%s", fi.quant);
            snprintf(m->params, sizeof m->params, "%s", fi.params);
            snprintf(m->digest, sizeof m->digest, "%s", fi.digest);
        }
    }
    if (rc == 0) {
        /* room: the budget and the model count, unloading idle models */
        uint64_t need = estimate_bytes(s, model, lamina_gguf_file_size(model->gguf));
        for (;;) {
            pthread_mutex_lock(&s->pool_mu);
            m->est_bytes = need;
            uint64_t used = pool_bytes_locked(s, m);
            int count = pool_count_locked(s);
            srv_model *victim = NULL;
            if (used + need > s->set.memory_budget || count > s->set.max_models) {
                victim = lru_idle_locked(s, m);
                if (victim) unlink_locked(s, victim);
            }
            int fits = used + need <= s->set.memory_budget && count <= s->set.max_models;
            pthread_mutex_unlock(&s->pool_mu);
            if (victim) { unload(s, victim, "room for another model", 1); continue; }
            if (fits) break;
            if (need > s->set.memory_budget) {
                snprintf(e2, sizeof e2, "model '%s' needs about %llu MiB, more than the memory budget of %llu MiB "
                         "([server] memory_mib)", canon, (unsigned long long)(need >> 20),
                         (unsigned long long)(s->set.memory_budget >> 20));
                code = 500;
            } else {
                snprintf(e2, sizeof e2, "no room to load model '%s' now: busy models hold the memory budget "
                         "(%llu of %llu MiB) or the model count (%d); try again later", canon,
                         (unsigned long long)(used >> 20), (unsigned long long)(s->set.memory_budget >> 20),
                         s->set.max_models);
                code = 503;
            }
            rc = LAMINA_ENOMEM;
            break;
        }
    }
    if (rc == 0) rc = model_load(s, m, model, e2, sizeof e2);
    else lamina_model_free(model);
    pthread_mutex_unlock(&load_mu);

    pthread_mutex_lock(&s->pool_mu);
    if (rc == 0 && s->shutting_down) {             /* loaded while the server began to stop */
        rc = LAMINA_ECANCELED;
        code = 503;
        snprintf(e2, sizeof e2, "the server is shutting down");
    }
    if (rc < 0) {
        unlink_locked(s, m);
        pthread_cond_broadcast(&s->pool_cv);
        pthread_mutex_unlock(&s->pool_mu);
        snprintf(err, err_size, "%s", e2);
        pthread_mutex_lock(&load_mu);
        model_free(s, m);
        pthread_mutex_unlock(&load_mu);
        *http = code;
        return rc;
    }
    m->state = SRV_READY;
    m->users = 1;
    m->load_s = srv_now() - t0;
    m->last_used = srv_now();
    m->expires = -1;
    s->loads++;
    pthread_cond_broadcast(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
    *load_s = m->load_s;
    *out = m;
    return 0;
}

void srv_pool_release(srv *s, srv_model *m, double keep_alive)
{
    srv_model *gone = NULL;
    pthread_mutex_lock(&s->pool_mu);
    m->users--;
    m->keep_alive = keep_alive;
    double now = srv_now();
    m->last_used = now;
    m->expires = keep_alive < 0 ? -1 : now + keep_alive;
    if (m->users == 0 && keep_alive == 0 && !s->shutting_down) {
        unlink_locked(s, m);
        gone = m;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (gone) unload(s, gone, "keep_alive 0", 0);
}

void srv_pool_reap(srv *s)
{
    for (;;) {
        srv_model *gone = NULL;
        double now = srv_now();
        pthread_mutex_lock(&s->pool_mu);
        for (srv_model *m = s->models; m && !s->shutting_down; m = m->next)
            if (m->state == SRV_READY && m->users == 0 && m->expires >= 0 && now >= m->expires) { gone = m; break; }
        if (gone) unlink_locked(s, gone);
        pthread_mutex_unlock(&s->pool_mu);
        if (!gone) return;
        unload(s, gone, "keep_alive passed", 0);
    }
}

void srv_pool_hold(srv *s, srv_model *m)
{
    pthread_mutex_lock(&s->pool_mu);
    m->users++;
    pthread_mutex_unlock(&s->pool_mu);
}

int srv_pool_busy(srv *s)
{
    int n = 0;
    pthread_mutex_lock(&s->pool_mu);
    for (srv_model *m = s->models; m; m = m->next) n += m->users;
    pthread_mutex_unlock(&s->pool_mu);
    return n;
}

void srv_pool_stop(srv *s)
{
    pthread_mutex_lock(&s->pool_mu);
    s->shutting_down = 1;
    pthread_cond_broadcast(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
    /* no model is added or removed from here on (acquire refuses, release
     * and reap do not unload) */
    for (srv_model *m = s->models; m; m = m->next) {
        if (m->state != SRV_READY) continue;
        if (m->thread_started) {
            m->stop = 1;
            lamina_batcher_wake(m->b);
            pthread_join(m->thread, NULL);
            m->thread_started = 0;
        }
        /* every request still running or queued finishes as cancelled */
        pthread_mutex_lock(&s->pool_mu);
        lamina_batcher *b = m->b;
        m->b = NULL;
        m->state = SRV_FAILED;
        snprintf(m->load_err, sizeof m->load_err, "the server is shutting down");
        pthread_mutex_unlock(&s->pool_mu);
        lamina_batcher_free(b);
    }
}

void srv_pool_free(srv *s)
{
    srv_model *m = s->models;
    s->models = NULL;
    while (m) {
        srv_model *next = m->next;
        model_free(s, m);
        m = next;
    }
}

json_t *srv_pool_ps(srv *s)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&s->pool_mu);
    double now = srv_now(), wall = srv_wall();
    for (srv_model *m = s->models; m; m = m->next) {
        if (m->state != SRV_READY) continue;
        file_info fi;
        memset(&fi, 0, sizeof fi);
        snprintf(fi.arch, sizeof fi.arch, "%s", m->arch);
        snprintf(fi.quant, sizeof fi.quant, "%s", m->quant);
        snprintf(fi.params, sizeof fi.params, "%s", m->params);
        double exp_at;
        if (m->users > 0) exp_at = wall + (m->keep_alive > 0 ? m->keep_alive : s->set.keep_alive);
        else if (m->expires < 0) exp_at = wall + 100.0 * 365 * 86400;
        else exp_at = wall + (m->expires - now);
        if (m->users > 0 && (m->keep_alive < 0 || (m->keep_alive == 0 && s->set.keep_alive < 0)))
            exp_at = wall + 100.0 * 365 * 86400;
        char when[48];
        srv_time_rfc3339(exp_at, when, sizeof when);
        json_t *bes = json_array();
        const lamina_plan_part *parts;
        int np = lamina_engine_plan(m->eng, &parts);
        int L = m->model->hp.n_layer;
        for (int i = 0; i < np; i++) {
            int nl = parts[i].last - parts[i].first + 1;
            if (nl < 0) nl = 0;
            const lamina_be *be = m->bes[parts[i].be];
            json_array_append_new(bes, json_pack("{s:s, s:s, s:i, s:f, s:I}", "backend",
                                                 lamina_engine_part_label(m->eng, i), "plugin",
                                                 be->slot && be->slot->plugin ? be->slot->plugin->name : "",
                                                 "layers", nl, "share", L > 0 ? (double)nl / L : 0.0,
                                                 "bytes", (json_int_t)(parts[i].weight_bytes + parts[i].kv_bytes +
                                                                       parts[i].scratch_bytes)));
        }
        const lamina_engine_params *ep = lamina_engine_params_get(m->eng);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:s, s:o, s:s, s:I, s:i, s:i, s:o}",
                                             "name", m->name, "model", m->name, "size", (json_int_t)m->bytes,
                                             "digest", m->digest, "details", details_json(&fi),
                                             "expires_at", when, "size_vram", (json_int_t)m->dev_bytes,
                                             "context_length", ep->n_ctx, "parallel", ep->n_seq,
                                             "backends", bes));
    }
    pthread_mutex_unlock(&s->pool_mu);
    return json_pack("{s:o}", "models", arr);
}

/* ------------------------------------------------------------------ */
/* A store model's defaults                                           */

/* Whether an OpenAI request sets the option an Ollama params key names. */
static int openai_sets(json_t *body, const char *key)
{
    if (!strcmp(key, "num_predict")) return json_object_get(body, "max_tokens") || json_object_get(body, "max_completion_tokens");
    return json_object_get(body, key) != NULL;
}

int srv_model_defaults(const srv_model *m, json_t *body, int flavor, srv_gen_opts *o, srv_chat *ch,
                       char *err, size_t err_size)
{
    if (m->defaults) {
        json_t *opts = flavor == SRV_OLLAMA ? json_object_get(body, "options") : NULL;
        json_t *take = json_object();
        const char *key;
        json_t *v;
        json_object_foreach(m->defaults, key, v) {
            int set = flavor == SRV_OLLAMA ? json_is_object(opts) && json_object_get(opts, key) != NULL
                                           : openai_sets(body, key);
            if (!set) json_object_set(take, key, v);
        }
        int rc = srv_parse_options(take, o, err, err_size);   /* checked when loaded */
        json_decref(take);
        if (rc < 0) return -1;
    }
    if (m->system && ch) {
        for (size_t i = 0; i < json_array_size(ch->messages); i++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(ch->messages, i), "role")), "system"))
                return 0;
        json_t *sm = json_pack("{s:s, s:s}", "role", "system", "content", m->system);
        if (!sm || json_array_insert_new(ch->messages, 0, sm) < 0) {
            snprintf(err, err_size, "out of memory");
            return -1;
        }
    }
    return 0;
}
