/* fuzz_manifest.c - libFuzzer harness for Ollama store manifests
 * (runtime/model/ollama_store.c): a store directory is written by another
 * program, so its manifests are untrusted.  An input is a model name, a
 * newline and a manifest.  The manifest is written into a store built once
 * in a temporary directory, as manifests/registry.ollama.ai/library/m/latest,
 * next to three blobs (digests sha256:111..1 of 4 bytes, sha256:222..2 of 10
 * bytes, sha256:333..3 of 0 bytes); then "m" is looked up, the fuzzed name
 * is checked and looked up, and the store is listed (the model once, usable
 * or broken with the reason the lookup gave).  Checked: no crash,
 * leak or sanitizer report; a failure gives a message; a model found is a
 * blob of this store of the size the manifest gives; a valid name never
 * climbs out of the store ("..", "/" at either end, empty parts).  The
 * manifest is also parsed as data (lamina_ollama_manifest_parse, what pull
 * and the store's writers read): valid digests, each once, sizes bounded.
 * Built by tests/fuzz.am. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lamina/plugin.h"
#include "ollama_store.h"

static char dirs[1][4096];
static char manifest[4600];

static void put(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0)
        abort();
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dirs[0], sizeof dirs[0], "%s/fuzz-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dirs[0]) == NULL)
        abort();
    const char *sub[] = {"/blobs", "/manifests", "/manifests/registry.ollama.ai",
                         "/manifests/registry.ollama.ai/library", "/manifests/registry.ollama.ai/library/m"};
    char p[4600];
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        snprintf(p, sizeof p, "%s%s", dirs[0], sub[i]);
        if (mkdir(p, 0700) != 0)
            abort();
    }
    static const struct { char digit; const char *data; } blobs[] = {{'1', "GGUF"}, {'2', "{{ .Prompt }}"}, {'3', ""}};
    for (size_t i = 0; i < 3; i++) {
        char hex[65];
        memset(hex, blobs[i].digit, 64);
        hex[64] = 0;
        snprintf(p, sizeof p, "%s/blobs/sha256-%s", dirs[0], hex);
        put(p, blobs[i].data, i == 1 ? 10 : strlen(blobs[i].data));
    }
    snprintf(manifest, sizeof manifest, "%s/manifests/registry.ollama.ai/library/m/latest", dirs[0]);
}

static void cleanup(void)
{
    char p[4600];
    unlink(manifest);
    for (char d = '1'; d <= '3'; d++) {
        char hex[65];
        memset(hex, d, 64);
        hex[64] = 0;
        snprintf(p, sizeof p, "%s/blobs/sha256-%s", dirs[0], hex);
        unlink(p);
    }
    const char *sub[] = {"/manifests/registry.ollama.ai/library/m", "/manifests/registry.ollama.ai/library",
                         "/manifests/registry.ollama.ai", "/manifests", "/blobs", ""};
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        snprintf(p, sizeof p, "%s%s", dirs[0], sub[i]);
        rmdir(p);
    }
}

static void check_model(const lamina_ollama_model *m)
{
    char blobs[4200];
    snprintf(blobs, sizeof blobs, "%s/blobs/sha256-", dirs[0]);
    struct stat st;
    if (m->name[0] == 0 || strncmp(m->model, blobs, strlen(blobs)) != 0 || stat(m->model, &st) != 0 ||
        (uint64_t)st.st_size != m->size || strncmp(m->digest, "sha256:", 7) != 0 ||
        strcmp(m->model + strlen(blobs), m->digest + 7) != 0)
        abort();
    const char *opt[] = {m->template_path, m->system_path, m->params_path};
    for (int i = 0; i < 3; i++)
        if (opt[i][0] && strncmp(opt[i], blobs, strlen(blobs)) != 0)
            abort();
}

/* The listing: the one model, usable (checked as found) or broken with
 * the reason lamina_ollama_find gave (ctx). */
typedef struct listing {
    int usable, broken;
    const char *find_err;
} listing;

static int on_model(void *ctx, const lamina_ollama_model *m)
{
    listing *l = ctx;
    if (strcmp(m->name, "m:latest") != 0)
        abort();
    if (m->broken[0]) {
        if (m->model[0] || strcmp(m->broken, l->find_err) != 0)
            abort();
        l->broken++;
    } else {
        check_model(m);
        l->usable++;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dirs[0][0] == 0) {
        setup();
        atexit(cleanup);
    }
    const uint8_t *nl = memchr(data, '\n', size);
    size_t name_len = nl ? (size_t)(nl - data) : 0;
    const uint8_t *body = nl ? nl + 1 : data;
    size_t body_len = size - (size_t)(body - data);
    put(manifest, body, body_len);

    lamina_ollama_model m;
    char err[1024];
    err[0] = 0;
    /* the manifest as data (pull and the store's writers): every layer
     * checked, digests valid, no digest twice */
    lamina_ollama_manifest man;
    int prc = lamina_ollama_manifest_parse((const char *)body, body_len, &man, err, sizeof err);
    if (prc > 0 || (prc < 0 && (err[0] == 0 || man.layers != NULL || man.n_layers != 0)))
        abort();
    for (int i = 0; prc == 0 && i < man.n_layers; i++) {
        if (!lamina_ollama_digest_valid(man.layers[i].digest) || man.layers[i].size > LAMINA_OLLAMA_MAX_BLOB)
            abort();
        for (int k = 0; k < i; k++)
            if (strcmp(man.layers[k].digest, man.layers[i].digest) == 0)
                abort();
    }
    if (prc == 0 && (man.n_layers < 1 || (man.has_config && !lamina_ollama_digest_valid(man.config.digest))))
        abort();
    lamina_ollama_manifest_free(&man);
    err[0] = 0;
    int rc = lamina_ollama_find(dirs, 1, "m", &m, err, sizeof err);
    if (rc > 0 || (rc < 0 && err[0] == 0) || rc == LAMINA_ENOENT || rc == LAMINA_EINVAL)
        abort();
    if (rc == 0) {
        check_model(&m);
        if (strcmp(m.name, "m:latest") != 0)
            abort();
    }
    listing li = { 0, 0, err };
    lamina_ollama_list(dirs, 1, on_model, &li);
    if (li.usable != (rc == 0) || li.broken != (rc != 0))
        abort();

    char name[256];
    if (name_len >= sizeof name)
        name_len = sizeof name - 1;
    memcpy(name, data, name_len);
    name[name_len] = 0;
    if (lamina_ollama_name_valid(name)) {
        size_t n = strlen(name);
        if (n == 0 || n > 120 || strstr(name, "..") || strstr(name, "//") || name[0] == '/' ||
            name[n - 1] == '/' || name[0] == '.' || strchr(name, '\\'))
            abort();
    }
    err[0] = 0;
    rc = lamina_ollama_find(dirs, 1, name, &m, err, sizeof err);
    if (rc > 0 || (rc < 0 && err[0] == 0))
        abort();
    if (rc == 0)
        check_model(&m);
    return 0;
}
