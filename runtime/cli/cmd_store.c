/* cmd_store.c - `lamina create NAME [-f MODELFILE]`, `lamina rm NAME...`
 * and `lamina cp SOURCE DESTINATION`.  create reads an Ollama Modelfile
 * (model/modelfile.h) and writes the model as POST /api/create does
 * (lamina_store_create): a GGUF file of FROM is linked into the store
 * (copied only across file systems).  rm and cp:
 * models of lamina's own store ([model] store) removed (with the blobs no
 * other model uses) or given another name (the manifest copied, the blobs
 * shared; a read-only Ollama store's model has its blobs linked or copied
 * in), as `ollama rm` and `ollama cp` do (runtime/model/store.h).  A model
 * only an Ollama store has is never removed: lamina does not write there. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "catalogue.h"
#include "conf.h"
#include "log.h"
#include "modelfile.h"
#include "ollama_store.h"
#include "server/server.h"
#include "store.h"

#define MAX_MODELFILE (16u << 20)

/* The config and lamina's own store; 0, or the exit status. */
static int open_store(const cli_globals *g, const char *cmd, lamina_config *cfg, char store[4096])
{
    char err[1024];
    if (lamina_config_resolve(cfg, g->config_path, err, sizeof err) < 0) {
        cli_error("%s", err);
        return 1;
    }
    if (lamina_ollama_own_store(cfg, store) < 0) {
        cli_error("%s: no model store: set [model] store or HOME", cmd);
        return 1;
    }
    return 0;
}

int cmd_rm(const cli_globals *g, int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: lamina rm NAME...\nRemove models from lamina's store ([model] store) and the blobs no "
               "other model of it uses.\n");
        return 0;
    }
    if (argc < 2) {
        cli_error("usage: lamina rm NAME...");
        return 2;
    }
    lamina_config cfg;
    char store[4096], err[1024];
    int st = open_store(g, "rm", &cfg, store);
    if (st) return st;
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(&cfg, dirs);
    for (int i = 1; i < argc; i++) {
        int removed = 0;
        int rc = lamina_store_delete(store, argv[i], &removed, err, sizeof err);
        if (rc == 0) {
            printf("deleted '%s'\n", argv[i]);
            continue;
        }
        int d = rc == LAMINA_ENOENT ? lamina_store_which(dirs, nd, argv[i]) : -1;
        if (d >= 0 && strcmp(dirs[d], store))
            cli_error("rm: model '%s' is in the Ollama store %s, which lamina does not write; remove it with "
                      "ollama rm", argv[i], dirs[d]);
        else
            cli_error("rm: %s", err);
        st = 1;
    }
    return st;
}

int cmd_cp(const cli_globals *g, int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: lamina cp SOURCE DESTINATION\nCopy a model to a new name in lamina's store ([model] store); "
               "the blobs are shared.\n");
        return 0;
    }
    if (argc != 3) {
        cli_error("usage: lamina cp SOURCE DESTINATION");
        return 2;
    }
    lamina_config cfg;
    char store[4096], err[1024];
    int st = open_store(g, "cp", &cfg, store);
    if (st) return st;
    if (!lamina_ollama_name_valid(argv[2])) {
        cli_error("cp: invalid model name '%.120s': " LAMINA_OLLAMA_NAME_FORM, argv[2]);
        return 1;
    }
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(&cfg, dirs);
    lamina_ollama_manifest m;
    char *text = NULL;
    size_t len = 0;
    int rc = lamina_store_import(store, dirs, nd, argv[1], &m, &text, &len, NULL, err, sizeof err);
    if (rc == 0) {
        lamina_ollama_manifest_free(&m);
        rc = lamina_store_write_manifest(store, argv[2], text, len, 1, err, sizeof err);
        free(text);
    }
    if (rc < 0) {
        cli_error("cp: %s", err);
        return 1;
    }
    printf("copied '%s' to '%s'\n", argv[1], argv[2]);
    return 0;
}

/* The Modelfile's bytes, malloc'd and NUL-terminated. */
static int read_modelfile(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("create: %s: %s", path, strerror(errno));
        return 1;
    }
    char *t = malloc(MAX_MODELFILE + 1);
    size_t n = t ? fread(t, 1, MAX_MODELFILE + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!t || bad || n > MAX_MODELFILE) {
        cli_error("create: %s: %s", path, !t ? "out of memory" : bad ? "read error" : "larger than 16 MiB");
        free(t);
        return 1;
    }
    t[n] = 0;
    *text = t;
    *len = n;
    return 0;
}

/* A PARAMETER value as JSON: integer, number, true/false, else a string. */
static json_t *param_value(const char *v)
{
    char *end;
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (!*end && end != v && errno == 0) return json_integer(i);
    double d = strtod(v, &end);
    if (!*end && end != v) return json_real(d);
    if (!strcmp(v, "true") || !strcmp(v, "false")) return json_boolean(!strcmp(v, "true"));
    return json_string(v);
}

/* The PARAMETERs as a params object (stop collected in a list), each one
 * checked as a request's options would be; NULL with the exit status. */
static json_t *modelfile_params(const lamina_modelfile *mf, const char *where)
{
    json_t *p = json_object();
    for (int i = 0; p && i < mf->n_params; i++) {
        const lamina_modelfile_param *q = &mf->params[i];
        json_t *v = !strcmp(q->key, "stop") ? json_pack("[s]", q->value) : param_value(q->value);
        json_t *one = json_object();
        json_object_set(one, q->key, v);
        srv_gen_opts o;
        memset(&o, 0, sizeof o);
        char err[512];
        int rc = srv_parse_options(one, &o, err, sizeof err);
        srv_gen_opts_clear(&o);
        json_decref(one);
        if (rc < 0) {
            cli_error("create: %s:%d: PARAMETER %s: %s", where, q->line, q->key, err);
            json_decref(v);
            json_decref(p);
            return NULL;
        }
        json_t *have = json_object_get(p, q->key);
        if (json_is_array(have) && json_is_array(v)) {
            json_array_extend(have, v);
            json_decref(v);
        } else {
            json_object_set_new(p, q->key, v);
        }
    }
    return p;
}

static void print_status(void *ud, const char *line)
{
    (void)ud;
    printf("%s\n", line);
    fflush(stdout);
}

/* FROM: a GGUF path (relative to the Modelfile's folder), else a model of
 * the stores, else a name lamina serves (catalogue, model directories). */
static int from_layers(const lamina_config *cfg, const char *store, const char *mfpath, const lamina_modelfile *mf,
                       lamina_ollama_layer *layers, int *n, char *err, size_t es)
{
    const char *f = mf->from;
    char path[4600];
    if (f[0] == '/') snprintf(path, sizeof path, "%s", f);
    else if (f[0] == '~' && f[1] == '/' && getenv("HOME")) snprintf(path, sizeof path, "%s%s", getenv("HOME"), f + 1);
    else {
        const char *slash = strrchr(mfpath, '/');
        snprintf(path, sizeof path, "%.*s%s", slash ? (int)(slash - mfpath + 1) : 0, mfpath, f);
    }
    struct stat st;
    size_t fl = strlen(f);
    int looks_path = f[0] == '/' || f[0] == '.' || f[0] == '~' || (fl > 5 && !strcasecmp(f + fl - 5, ".gguf"));
    if (stat(path, &st) == 0 || looks_path) {
        if (stat(path, &st) != 0)
            return lamina_set_err(err, es, LAMINA_ENOENT, "%s:%d: FROM %s: %s", mfpath, mf->from_line, path,
                                  strerror(errno));
        int rc = lamina_store_add_file(store, path, &layers[0], err, es);
        if (rc == 0) *n = 1;
        return rc;
    }
    if (!lamina_ollama_name_valid(f))
        return lamina_set_err(err, es, LAMINA_EINVAL, "%s:%d: FROM %s: neither a file nor a model name", mfpath,
                              mf->from_line, f);
    char dirs[LAMINA_MAX_STORES][4096], e2[1024];
    int nd = lamina_ollama_stores(cfg, dirs);
    lamina_ollama_manifest m;
    int rc = lamina_store_import(store, dirs, nd, f, &m, NULL, NULL, NULL, e2, sizeof e2);
    if (rc == 0) {
        *n = 0;
        for (int i = 0; i < m.n_layers && *n < LAMINA_OLLAMA_MAX_LAYERS - 1; i++) layers[(*n)++] = m.layers[i];
        lamina_ollama_manifest_free(&m);
        return 0;
    }
    if (rc != LAMINA_ENOENT) return lamina_set_err(err, es, rc, "%s:%d: FROM %s: %s", mfpath, mf->from_line, f, e2);
    if (lamina_model_resolve(cfg, f, path, sizeof path, e2, sizeof e2) < 0)
        return lamina_set_err(err, es, LAMINA_ENOENT, "%s:%d: FROM %s: no file or model of that name: %s", mfpath,
                              mf->from_line, f, e2);
    rc = lamina_store_add_file(store, path, &layers[0], err, es);
    if (rc == 0) *n = 1;
    return rc;
}

int cmd_create(const cli_globals *g, int argc, char **argv)
{
    const char *name = NULL, *file = "Modelfile";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: lamina create NAME [-f MODELFILE]\nCreate a model in lamina's store ([model] store) from an "
                   "Ollama Modelfile (./Modelfile when -f is not given): FROM a GGUF file (linked into the store) or "
                   "a model, PARAMETER, TEMPLATE, SYSTEM, LICENSE.\n");
            return 0;
        }
        if ((!strcmp(argv[i], "-f") || !strcmp(argv[i], "--file")) && i + 1 < argc) file = argv[++i];
        else if (argv[i][0] == '-' || name) {
            cli_error("usage: lamina create NAME [-f MODELFILE]");
            return 2;
        } else name = argv[i];
    }
    if (!name) {
        cli_error("usage: lamina create NAME [-f MODELFILE]");
        return 2;
    }
    if (!lamina_ollama_name_valid(name)) {
        cli_error("create: invalid model name '%.120s': " LAMINA_OLLAMA_NAME_FORM, name);
        return 1;
    }
    char *text = NULL, err[1600];
    size_t len = 0;
    int st = read_modelfile(file, &text, &len);
    if (st) return st;
    lamina_modelfile mf;
    int rc = lamina_modelfile_parse(text, len, file, &mf, err, sizeof err);
    free(text);
    if (rc < 0) {
        cli_error("create: %s", err);
        return 1;
    }
    lamina_config cfg;
    char store[4096];
    json_t *params = NULL;
    char *pt = NULL;
    lamina_ollama_layer *layers = calloc(LAMINA_OLLAMA_MAX_LAYERS, sizeof *layers);
    if (!layers) { cli_error("create: out of memory"); st = 1; goto out; }
    if ((st = open_store(g, "create", &cfg, store))) goto out;
    if (!(params = modelfile_params(&mf, file))) { st = 1; goto out; }
    int n = 0;
    if (from_layers(&cfg, store, file, &mf, layers, &n, err, sizeof err) < 0) {
        cli_error("create: %s", err);
        st = 1;
        goto out;
    }
    pt = json_object_size(params) ? json_dumps(params, JSON_COMPACT) : NULL;
    char what[300];
    snprintf(what, sizeof what, "FROM %.250s", mf.from);
    lamina_store_recipe r = { .layers = layers, .n_layers = n, .tmpl = mf.template_text, .system = mf.system,
                              .params_json = pt, .licenses = (const char *const *)mf.licenses,
                              .n_licenses = mf.n_licenses, .set_licenses = mf.n_licenses > 0, .what = what,
                              .ftype_name = srv_ftype_name, .status = print_status };
    if (lamina_store_create(store, name, &r, err, sizeof err) < 0) {
        cli_error("create: %s", err);
        st = 1;
    }
out:
    free(pt);
    json_decref(params);
    free(layers);
    lamina_modelfile_free(&mf);
    return st;
}
