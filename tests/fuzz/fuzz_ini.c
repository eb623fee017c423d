/* fuzz_ini.c - libFuzzer harness for the INI loader (runtime/host/config.c):
 * lamina.ini is read from disk, so any bytes may be in it.  Each input is
 * written to an anonymous in-memory file and loaded with lamina_config_load
 * over the defaults, exactly as `lamina --config FILE` does; inputs without
 * a NUL byte are also parsed with lamina_config_load_string, which must
 * agree.  Checked: no crash, leak or sanitizer report; a failure returns a
 * negative code with a message; every list count stays within its array and
 * every string field stays NUL-terminated inside its buffer; lookups by
 * backend name find what was loaded.  Built by tests/fuzz.am. */
#define _GNU_SOURCE
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"
#include "lamina/lamina.h"

#define TERMINATED(field) (memchr((field), 0, sizeof(field)) != NULL)

static void check_list(const char (*a)[4096], int n, int max)
{
    if (n < 0 || n > max)
        abort();
    for (int i = 0; i < n; i++)
        if (memchr(a[i], 0, 4096) == NULL)
            abort();
}

static void check(const lamina_config *c)
{
    check_list(c->plugin_path, c->n_plugin_path, LAMINA_MAX_PATHS);
    check_list(c->model_dirs, c->n_model_dirs, LAMINA_MAX_PATHS);
    check_list(c->ollama_stores, c->n_ollama_stores, LAMINA_MAX_PATHS);
    if (c->n_backends < 0 || c->n_backends > LAMINA_MAX_BACKENDS)
        abort();
    for (int i = 0; i < c->n_backends; i++)
        if (!TERMINATED(c->backends[i]))
            abort();
    if (!TERMINATED(c->source) || !TERMINATED(c->cache_dir) || !TERMINATED(c->model_default) ||
        !TERMINATED(c->server_listen) || !TERMINATED(c->server_api_key) ||
        !TERMINATED(c->server_api_key_file) || !TERMINATED(c->server_cors_origins) ||
        !TERMINATED(c->server_allowed_hosts))
        abort();
    if (c->n_backend < 0 || c->n_backend > LAMINA_MAX_BACKENDS)
        abort();
    for (int i = 0; i < c->n_backend; i++) {
        const lamina_backend_config *b = &c->backend[i];
        if (!TERMINATED(b->name) || !TERMINATED(b->device) || !TERMINATED(b->min_version) ||
            !TERMINATED(b->max_version))
            abort();
        if (b->n_deny_versions < 0 || b->n_deny_versions > LAMINA_MAX_LIST ||
            b->n_allow_arch < 0 || b->n_allow_arch > LAMINA_MAX_LIST || b->n_env < 0 ||
            b->n_env > LAMINA_MAX_ENV)
            abort();
        for (int j = 0; j < b->n_deny_versions; j++)
            if (!TERMINATED(b->deny_versions[j]))
                abort();
        for (int j = 0; j < b->n_allow_arch; j++)
            if (!TERMINATED(b->allow_arch[j]))
                abort();
        for (int j = 0; j < b->n_env; j++)
            if (!TERMINATED(b->env[j]) || strchr(b->env[j], '=') == NULL)
                abort();
        /* the first section of a name is the one found */
        const lamina_backend_config *f = lamina_config_backend(c, b->name);
        if (f == NULL || strcmp(f->name, b->name) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lamina_config *a, *b;
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.ini", 0);
        a = malloc(sizeof *a);
        b = malloc(sizeof *b);
        if (fd < 0 || a == NULL || b == NULL)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();

    char err[1024];
    err[0] = 0;
    lamina_config_defaults(a);
    int rc = lamina_config_load(a, path, err, sizeof err);
    if (rc > 0 || (rc < 0 && err[0] == 0))
        abort();
    check(a);
    if (rc == 0 && strcmp(a->source, path) != 0)
        abort();

    if (memchr(data, 0, size) == NULL) {
        char *text = malloc(size + 1);
        if (text == NULL)
            abort();
        memcpy(text, data, size);
        text[size] = 0;
        char err2[1024];
        err2[0] = 0;
        lamina_config_defaults(b);
        int rc2 = lamina_config_load_string(b, text, path, err2, sizeof err2);
        free(text);
        if (rc2 != rc || (rc < 0 && strcmp(err, err2) != 0))
            abort();
        check(b);
    } else if (rc != LAMINA_EINVAL) {
        abort();   /* a NUL byte is refused */
    }
    return 0;
}
