/* ollama_store.c - models in an Ollama model store (see ollama_store.h). */
#include "config.h"

#include "ollama_store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "conf.h"
#include "lamina/plugin.h"
#include "log.h"

#define REGISTRY "registry.ollama.ai"
#define MAX_MANIFEST (1u << 20)
#define MAX_PART 80
#define MAX_NAME 120

#define MT_PREFIX "application/vnd.ollama.image."

int lamina_ollama_own_store(const lamina_config *cfg, char dir[4096])
{
    const char *x = lamina_env_get("XDG_DATA_HOME"), *home = getenv("HOME");
    if (cfg && cfg->model_store[0]) snprintf(dir, 4096, "%s", cfg->model_store);
    else if (x && x[0] == '/') snprintf(dir, 4096, "%s/lamina/store", x);
    else if (home && home[0] == '/') snprintf(dir, 4096, "%s/.local/share/lamina/store", home);
    else { dir[0] = 0; return LAMINA_ENOENT; }
    return 0;
}

int lamina_ollama_stores(const lamina_config *cfg, char dirs[][4096])
{
    int n = 0;
    if (lamina_ollama_own_store(cfg, dirs[n]) == 0) n++;
    for (int i = 0; cfg && i < cfg->n_ollama_stores && n < LAMINA_MAX_PATHS + 1; i++)
        snprintf(dirs[n++], 4096, "%s", cfg->ollama_stores[i]);
    const char *v = lamina_env_get("OLLAMA_MODELS"), *home = getenv("HOME");
    if (v && *v) snprintf(dirs[n++], 4096, "%s", v);
    else if (home && *home) snprintf(dirs[n++], 4096, "%s/.ollama/models", home);
    snprintf(dirs[n++], 4096, "/usr/share/ollama/.ollama/models");
    return n;
}

/* A name part: [A-Za-z0-9_][A-Za-z0-9_.-]*, not "..", 1..MAX_PART bytes. */
static int part_ok(const char *s, size_t n)
{
    if (n == 0 || n > MAX_PART) return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9') || s[0] == '_'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return 0;
        if (c == '.' && i + 1 < n && s[i + 1] == '.') return 0;
    }
    return 1;
}

/* A registry host: a name part, then optionally ":PORT" (1..65535), as
 * in "registry.example.com:5000/team/model:tag". */
static int host_ok(const char *s, size_t n)
{
    const char *c = memchr(s, ':', n);
    if (!c) return part_ok(s, n);
    if (n > MAX_PART) return 0;
    size_t h = (size_t)(c - s), pn = n - h - 1;
    if (!part_ok(s, h) || pn == 0 || pn > 5) return 0;
    unsigned port = 0;
    for (size_t i = 0; i < pn; i++) {
        if (c[1 + i] < '0' || c[1 + i] > '9') return 0;
        port = port * 10 + (unsigned)(c[1 + i] - '0');
    }
    return port >= 1 && port <= 65535;
}

typedef struct oname {
    char host[MAX_PART + 1], ns[MAX_PART + 1], model[MAX_PART + 1], tag[MAX_PART + 1];
} oname;

/* Split and check a name; fills in the implied parts. */
static int parse_name(const char *name, oname *o)
{
    size_t len = strlen(name);
    if (len == 0 || len > MAX_NAME) return 0;
    const char *colon = strrchr(name, ':'), *slash = strrchr(name, '/');
    size_t base = colon && (!slash || colon > slash) ? (size_t)(colon - name) : len;
    const char *tag = base < len ? name + base + 1 : "latest";
    if (!part_ok(tag, strlen(tag))) return 0;
    /* up to three parts before the tag */
    const char *parts[3];
    size_t plen[3];
    int np = 0;
    const char *p = name, *end = name + base;
    int slashes = 0;
    for (const char *c = p; c < end; c++) slashes += *c == '/';
    while (p < end) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
        /* the first of three parts is the host, the only one with a port */
        const int is_host = np == 0 && slashes == 2;
        if (np == 3 || !(is_host ? host_ok(p, n) : part_ok(p, n))) return 0;
        parts[np] = p;
        plen[np++] = n;
        p = q ? q + 1 : end;
        if (q && p == end) return 0;   /* a trailing slash */
    }
    if (np == 0) return 0;
    snprintf(o->host, sizeof o->host, "%s", REGISTRY);
    snprintf(o->ns, sizeof o->ns, "library");
    snprintf(o->model, sizeof o->model, "%.*s", (int)plen[np - 1], parts[np - 1]);
    if (np >= 2) snprintf(o->ns, sizeof o->ns, "%.*s", (int)plen[np - 2], parts[np - 2]);
    if (np == 3) snprintf(o->host, sizeof o->host, "%.*s", (int)plen[0], parts[0]);
    snprintf(o->tag, sizeof o->tag, "%s", tag);
    return 1;
}

int lamina_ollama_name_parts(const char *name, char *host, char *ns, char *model, char *tag)
{
    oname o;
    if (!name || !parse_name(name, &o)) return 0;
    memcpy(host, o.host, sizeof o.host);
    memcpy(ns, o.ns, sizeof o.ns);
    memcpy(model, o.model, sizeof o.model);
    memcpy(tag, o.tag, sizeof o.tag);
    return 1;
}

int lamina_ollama_name_valid(const char *name)
{
    oname o;
    return name && parse_name(name, &o);
}

/* The shortest name of host/ns/model:tag. */
static void short_name(const oname *o, char *out, size_t size)
{
    if (strcmp(o->host, REGISTRY)) snprintf(out, size, "%s/%s/%s:%s", o->host, o->ns, o->model, o->tag);
    else if (strcmp(o->ns, "library")) snprintf(out, size, "%s/%s:%s", o->ns, o->model, o->tag);
    else snprintf(out, size, "%s:%s", o->model, o->tag);
}

static int digest_ok(const char *d)
{
    if (strncmp(d, "sha256:", 7) || strlen(d) != 71) return 0;
    for (const char *c = d + 7; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'))) return 0;
    return 1;
}

int lamina_ollama_digest_valid(const char *d)
{
    return d && digest_ok(d);
}

/* Read a manifest file (lamina_ollama_manifest_parse) and fill m from its
 * layers. */
static int read_manifest(const char *store, const char *path, lamina_ollama_model *m, char *err, size_t es)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return lamina_set_err(err, es, LAMINA_ENOENT, "%s: %s", path, strerror(errno ? errno : ENOENT));
    if (st.st_size > (off_t)MAX_MANIFEST)
        return lamina_set_err(err, es, LAMINA_EFORMAT, "%s: a manifest of %lld bytes (at most %u)", path,
                              (long long)st.st_size, MAX_MANIFEST);
    FILE *f = fopen(path, "rb");
    char *text = f ? malloc((size_t)st.st_size + 1) : NULL;
    size_t n = text ? fread(text, 1, (size_t)st.st_size + 1, f) : 0;
    int rerr = f ? ferror(f) : 1;
    if (f) fclose(f);
    if (!text || rerr) {
        free(text);
        return lamina_set_err(err, es, f ? LAMINA_EIO : LAMINA_ENOENT, "%s: cannot read it", path);
    }
    lamina_ollama_manifest man;
    char why[400];
    int rc = lamina_ollama_manifest_parse(text, n, &man, why, sizeof why);
    free(text);
    if (rc < 0) return lamina_set_err(err, es, rc, "%s: not a manifest lamina can use: %s", path, why);
    m->model[0] = m->template_path[0] = m->system_path[0] = m->params_path[0] = 0;
    for (int i = 0; i < man.n_layers; i++) {
        const lamina_ollama_layer *l = &man.layers[i];
        const char *mt = l->media_type;
        const char *kind = strncmp(mt, MT_PREFIX, strlen(MT_PREFIX)) ? "" : mt + strlen(MT_PREFIX);
        char *dst = !strcmp(kind, "model") ? m->model : !strcmp(kind, "template") ? m->template_path
                  : !strcmp(kind, "system") ? m->system_path : !strcmp(kind, "params") ? m->params_path : NULL;
        if (!strcmp(kind, "projector") || !strcmp(kind, "adapter")) {
            rc = lamina_set_err(err, es, LAMINA_ENOTSUP, "%s: a%s %s layer (%s), which lamina does not use yet",
                                path, kind[0] == 'a' ? "n" : "", kind[0] == 'a' ? "LoRA adapter" : "vision projector", mt);
            goto out;
        }
        if (!dst) continue;   /* license, messages, ... */
        char blob[4200];
        snprintf(blob, sizeof blob, "%s/blobs/sha256-%s", store, l->digest + 7);
        if (stat(blob, &st) != 0 || !S_ISREG(st.st_mode)) {
            rc = lamina_set_err(err, es, LAMINA_EFORMAT, "%s: the %s layer's blob %s is missing", path, kind, blob);
            goto out;
        }
        if ((uint64_t)st.st_size != l->size) {
            rc = lamina_set_err(err, es, LAMINA_EFORMAT, "%s: blob %s has %lld bytes, the manifest says %llu", path,
                                blob, (long long)st.st_size, (unsigned long long)l->size);
            goto out;
        }
        snprintf(dst, 4200, "%s", blob);
        if (dst == m->model) {
            snprintf(m->digest, sizeof m->digest, "%s", l->digest);
            m->size = l->size;
        }
    }
    if (!m->model[0]) rc = lamina_set_err(err, es, LAMINA_EFORMAT, "%s: no model layer (%smodel)", path, MT_PREFIX);
out:
    lamina_ollama_manifest_free(&man);
    return rc;
}

int lamina_ollama_find(char dirs[][4096], int n_dirs, const char *name, lamina_ollama_model *out, char *err,
                       size_t es)
{
    oname o;
    if (!name || !parse_name(name, &o))
        return lamina_set_err(err, es, LAMINA_EINVAL,
                              "invalid model name '%.120s': " LAMINA_OLLAMA_NAME_FORM, name ? name : "");
    memset(out, 0, sizeof *out);
    short_name(&o, out->name, sizeof out->name);
    for (int d = 0; d < n_dirs; d++) {
        char path[4600];
        snprintf(path, sizeof path, "%s/manifests/%s/%s/%s/%s", dirs[d], o.host, o.ns, o.model, o.tag);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        return read_manifest(dirs[d], path, out, err, es);
    }
    return lamina_set_err(err, es, LAMINA_ENOENT, "model '%s' not found", out->name);
}

int lamina_ollama_resolve(const lamina_config *cfg, const char *model_name, char *path, size_t path_size,
                          char *name, size_t name_size, char *err, size_t es)
{
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(cfg, dirs);
    lamina_ollama_model om;
    int rc = lamina_ollama_find(dirs, nd, model_name, &om, err, es);
    if (rc < 0) return rc;
    if (strlen(om.model) >= path_size) return lamina_set_err(err, es, LAMINA_ERANGE, "%s: path too long", om.model);
    snprintf(path, path_size, "%s", om.model);
    if (name) snprintf(name, name_size, "%s", om.name);
    return 0;
}

/* The entries of a directory that are valid name parts. */
static int each_part(const char *dir, int (*fn)(void *, const char *), void *ctx)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int stop = 0;
    while (!stop && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && part_ok(de->d_name, strlen(de->d_name))) stop = fn(ctx, de->d_name);
    closedir(d);
    return stop;
}

typedef struct walk {
    char (*dirs)[4096];
    int n_dirs, d;
    int (*fn)(void *, const lamina_ollama_model *);
    void *ctx;
    oname o;
    char (*seen)[128];
    int n_seen, cap_seen;
} walk;

static int on_tag(void *c, const char *tag)
{
    walk *w = c;
    snprintf(w->o.tag, sizeof w->o.tag, "%s", tag);
    lamina_ollama_model m;
    memset(&m, 0, sizeof m);
    short_name(&w->o, m.name, sizeof m.name);
    for (int i = 0; i < w->n_seen; i++)
        if (!strcmp(w->seen[i], m.name)) return 0;   /* an earlier store has it */
    char path[4600];
    snprintf(path, sizeof path, "%s/manifests/%s/%s/%s/%s", w->dirs[w->d], w->o.host, w->o.ns, w->o.model, tag);
    if (read_manifest(w->dirs[w->d], path, &m, m.broken, sizeof m.broken) < 0) {
        m.model[0] = m.digest[0] = 0;
        if (!m.broken[0]) snprintf(m.broken, sizeof m.broken, "%s: cannot be read", path);
    } else {
        m.broken[0] = 0;
    }
    if (w->n_seen == w->cap_seen) {
        int cap = w->cap_seen ? 2 * w->cap_seen : 32;
        char (*s)[128] = realloc(w->seen, (size_t)cap * sizeof *s);
        if (!s) return 1;
        w->seen = s;
        w->cap_seen = cap;
    }
    snprintf(w->seen[w->n_seen++], 128, "%s", m.name);
    return w->fn(w->ctx, &m);
}

static int on_model(void *c, const char *model)
{
    walk *w = c;
    snprintf(w->o.model, sizeof w->o.model, "%s", model);
    char dir[4600];
    snprintf(dir, sizeof dir, "%s/manifests/%s/%s/%s", w->dirs[w->d], w->o.host, w->o.ns, model);
    return each_part(dir, on_tag, w);
}

static int on_ns(void *c, const char *ns)
{
    walk *w = c;
    snprintf(w->o.ns, sizeof w->o.ns, "%s", ns);
    char dir[4600];
    snprintf(dir, sizeof dir, "%s/manifests/%s/%s", w->dirs[w->d], w->o.host, ns);
    return each_part(dir, on_model, w);
}

static int on_host(void *c, const char *host)
{
    walk *w = c;
    snprintf(w->o.host, sizeof w->o.host, "%s", host);
    char dir[4600];
    snprintf(dir, sizeof dir, "%s/manifests/%s", w->dirs[w->d], host);
    return each_part(dir, on_ns, w);
}

void lamina_ollama_list(char dirs[][4096], int n_dirs, int (*fn)(void *ctx, const lamina_ollama_model *m),
                        void *ctx)
{
    walk w = { .dirs = dirs, .n_dirs = n_dirs, .fn = fn, .ctx = ctx };
    for (w.d = 0; w.d < n_dirs; w.d++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/manifests", dirs[w.d]);
        if (each_part(dir, on_host, &w)) break;
    }
    free(w.seen);
}

/* ------------------------------------------------------------------ */
/* Manifests as data (pull.c, store.c)                                */

/* One {mediaType, digest, size} object into l; what names it in messages. */
static int layer_of(json_t *o, const char *what, lamina_ollama_layer *l, char *err, size_t es)
{
    const char *mt = json_string_value(json_object_get(o, "mediaType"));
    const char *dg = json_string_value(json_object_get(o, "digest"));
    json_t *sz = json_object_get(o, "size");
    if (!json_is_object(o) || !mt || !dg || !json_is_integer(sz))
        return lamina_set_err(err, es, LAMINA_EFORMAT, "%s lacks mediaType, digest or size", what);
    if (!digest_ok(dg))
        return lamina_set_err(err, es, LAMINA_EFORMAT, "%s: digest '%.80s' is not sha256: and 64 hex digits", what, dg);
    if (strlen(mt) >= sizeof l->media_type)
        return lamina_set_err(err, es, LAMINA_EFORMAT, "%s: a media type of %zu bytes (at most %zu)", what, strlen(mt),
                              sizeof l->media_type - 1);
    json_int_t v = json_integer_value(sz);
    if (v < 0 || (uint64_t)v > LAMINA_OLLAMA_MAX_BLOB)
        return lamina_set_err(err, es, LAMINA_EFORMAT, "%s %s has size %lld", what, dg, (long long)v);
    snprintf(l->media_type, sizeof l->media_type, "%s", mt);
    snprintf(l->digest, sizeof l->digest, "%s", dg);
    l->size = (uint64_t)v;
    return 0;
}

int lamina_ollama_manifest_parse(const char *text, size_t len, lamina_ollama_manifest *out, char *err, size_t es)
{
    memset(out, 0, sizeof *out);
    if (len > LAMINA_OLLAMA_MAX_MANIFEST)
        return lamina_set_err(err, es, LAMINA_EFORMAT, "a manifest of %zu bytes (at most %u)", len,
                              LAMINA_OLLAMA_MAX_MANIFEST);
    json_error_t je;
    json_t *j = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return lamina_set_err(err, es, LAMINA_EFORMAT, "not JSON (line %d: %s)", je.line, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return lamina_set_err(err, es, LAMINA_EFORMAT, "not a JSON object");
    }
    json_t *layers = json_object_get(j, "layers"), *config = json_object_get(j, "config");
    int rc = 0;
    size_t n = json_array_size(layers);
    if (!json_is_array(layers) || n == 0 || n >= LAMINA_OLLAMA_MAX_LAYERS || (config && !json_is_object(config))) {
        rc = lamina_set_err(err, es, LAMINA_EFORMAT, "not an image manifest (layers: 1 to %d, config an object)",
                            LAMINA_OLLAMA_MAX_LAYERS - 1);
        goto out;
    }
    if (config) {
        if ((rc = layer_of(config, "the config", &out->config, err, es)) < 0) goto out;
        out->has_config = 1;
    }
    out->layers = calloc(n, sizeof *out->layers);
    if (!out->layers) { rc = lamina_set_err(err, es, LAMINA_ENOMEM, "out of memory"); goto out; }
    for (size_t i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "layer %zu", i);
        lamina_ollama_layer l;
        if ((rc = layer_of(json_array_get(layers, i), what, &l, err, es)) < 0) goto out;
        int dup = 0;
        for (int k = 0; k < out->n_layers && !dup; k++) {
            if (strcmp(out->layers[k].digest, l.digest)) continue;
            dup = 1;
            if (out->layers[k].size != l.size) {
                rc = lamina_set_err(err, es, LAMINA_EFORMAT, "layer %s with two sizes", l.digest);
                goto out;
            }
        }
        if (!dup) out->layers[out->n_layers++] = l;
    }
out:
    json_decref(j);
    if (rc < 0) lamina_ollama_manifest_free(out);
    return rc;
}

void lamina_ollama_manifest_free(lamina_ollama_manifest *m)
{
    if (!m) return;
    free(m->layers);
    memset(m, 0, sizeof *m);
}

int lamina_ollama_manifest_path(const char *store, const char *name, char *out, size_t size, char *err, size_t es)
{
    oname o;
    if (!name || !parse_name(name, &o))
        return lamina_set_err(err, es, LAMINA_EINVAL,
                              "invalid model name '%.120s': " LAMINA_OLLAMA_NAME_FORM, name ? name : "");
    int n = snprintf(out, size, "%s/manifests/%s/%s/%s/%s", store, o.host, o.ns, o.model, o.tag);
    if (n < 0 || (size_t)n >= size) return lamina_set_err(err, es, LAMINA_ERANGE, "store path too long");
    return 0;
}
