/*
 * config.c - lamina.ini: defaults, parsing (inih), environment overrides.
 *
 * Keys are defined by two tables below (global sections, and the keys of a
 * [backend.NAME] section); each row names the section, the key, how its
 * value is parsed and where it is stored.  Adding a key or a whole section
 * (e.g. [server]) is adding rows.  lamina.ini(5) documents every row.
 */
#include "config.h"
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "log.h"
#include "version.h"

#ifndef LAMINA_PLUGIN_DIR
#define LAMINA_PLUGIN_DIR "/usr/local/lib/lamina/plugins"
#endif
#ifndef LAMINA_SYSCONFDIR
#define LAMINA_SYSCONFDIR "/usr/local/etc"
#endif

const char *lamina_env_get(const char *name)
{
#ifdef HAVE_SECURE_GETENV
    return secure_getenv(name);
#else
    if (getuid() != geteuid() || getgid() != getegid())
        return NULL;
    return getenv(name);
#endif
}

int lamina_config_core_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    if (n > 1024)
        return 1024;
    return (int)n;
}

/* ------------------------------------------------------------------------ */
/* Value parsers.  Each returns 0, or -1 after writing what was expected    */
/* ("expected a number >= 0") into why.                                     */

enum key_type {
    K_INT,          /* int, [lo, hi] */
    K_INT64,        /* int64_t, [lo, hi] */
    K_FLOAT,        /* float, [flo, fhi] */
    K_BOOL,         /* int 0/1 */
    K_STRING,       /* char[size] */
    K_PATH,         /* char[size], absolute path, or "" */
    K_PATH_LIST,    /* char[max][size] + count */
    K_NAME_LIST,    /* char[max][size] + count: [A-Za-z0-9_.-]+ */
    K_VERSION,      /* char[size]: dotted numeric, or "" */
    K_VERSION_LIST, /* char[max][size] + count: dotted numerics */
    K_GPU_LAYERS,   /* int: auto = -1, all = -2, N >= 0 */
    K_AUTO_OFF,     /* int: auto (or a true boolean) = 1, off (a false one) = 0 */
    K_BACKENDS,     /* [scheduler] backends: auto or a name list */
    K_ENV_LIST      /* NAME=VALUE list, merged by name */
};

typedef struct key_def {
    const char *section;        /* "plugins"; NULL in the backend table */
    const char *key;
    enum key_type type;
    size_t off;                 /* into lamina_config / lamina_backend_config */
    size_t size;                /* element size for strings and lists */
    int max;                    /* list capacity */
    size_t count_off;           /* int count, for lists */
    int64_t lo, hi;             /* integer range */
    double flo, fhi;            /* float range */
} key_def;

#define CF(f)  offsetof(lamina_config, f)
#define BF(f)  offsetof(lamina_backend_config, f)
#define SZ(t, f) sizeof(((t *)0)->f)
#define ESZ(t, f) sizeof(((t *)0)->f[0])

static const key_def global_keys[] = {
    /* [plugins] */
    { "plugins", "path", K_PATH_LIST, CF(plugin_path), ESZ(lamina_config, plugin_path),
      LAMINA_MAX_PATHS, CF(n_plugin_path), 0, 0, 0, 0 },
    { "plugins", "probe_timeout_ms", K_INT, CF(probe_timeout_ms), 0, 0, 0,
      100, 3600000, 0, 0 },
    { "plugins", "cache", K_BOOL, CF(cache), 0, 0, 0, 0, 0, 0, 0 },
    { "plugins", "cache_dir", K_PATH, CF(cache_dir), SZ(lamina_config, cache_dir),
      0, 0, 0, 0, 0, 0 },
    /* [scheduler] */
    { "scheduler", "backends", K_BACKENDS, CF(backends), 0, 0, 0, 0, 0, 0, 0 },
    { "scheduler", "gpu_layers", K_GPU_LAYERS, CF(gpu_layers), 0, 0, 0, 0, 0, 0, 0 },
    { "scheduler", "reserve_mib", K_INT64, CF(reserve_mib), 0, 0, 0,
      0, INT64_C(1) << 40, 0, 0 },
    /* [model] */
    { "model", "default", K_STRING, CF(model_default), SZ(lamina_config, model_default),
      0, 0, 0, 0, 0, 0 },
    { "model", "dirs", K_PATH_LIST, CF(model_dirs), ESZ(lamina_config, model_dirs),
      LAMINA_MAX_PATHS, CF(n_model_dirs), 0, 0, 0, 0 },
    { "model", "ollama_stores", K_PATH_LIST, CF(ollama_stores), ESZ(lamina_config, ollama_stores),
      LAMINA_MAX_PATHS, CF(n_ollama_stores), 0, 0, 0, 0 },
    { "model", "store", K_PATH, CF(model_store), SZ(lamina_config, model_store), 0, 0, 0, 0, 0, 0 },
    { "model", "registry", K_STRING, CF(model_registry), SZ(lamina_config, model_registry), 0, 0, 0, 0, 0, 0 },
    { "model", "n_ctx", K_INT, CF(n_ctx), 0, 0, 0, 0, 1 << 24, 0, 0 },
    { "model", "threads", K_INT, CF(threads), 0, 0, 0, 0, 1024, 0, 0 },
    /* [generate] */
    { "generate", "temperature", K_FLOAT, CF(temperature), 0, 0, 0, 0, 0, 0.0, 100.0 },
    { "generate", "top_k", K_INT, CF(top_k), 0, 0, 0, 0, 1 << 20, 0, 0 },
    { "generate", "top_p", K_FLOAT, CF(top_p), 0, 0, 0, 0, 0, 0.0, 1.0 },
    { "generate", "min_p", K_FLOAT, CF(min_p), 0, 0, 0, 0, 0, 0.0, 1.0 },
    { "generate", "repeat_penalty", K_FLOAT, CF(repeat_penalty), 0, 0, 0, 0, 0, 0.01, 100.0 },
    { "generate", "repeat_last_n", K_INT, CF(repeat_last_n), 0, 0, 0, 0, 1 << 24, 0, 0 },
    { "generate", "seed", K_INT64, CF(seed), 0, 0, 0, -1, INT64_MAX, 0, 0 },
    { "generate", "max_tokens", K_INT, CF(max_tokens), 0, 0, 0, -1, 1 << 24, 0, 0 },
    { "generate", "speculative", K_AUTO_OFF, CF(speculative), 0, 0, 0, 0, 0, 0, 0 },
    { "generate", "speculative_draft", K_INT, CF(speculative_draft), 0, 0, 0, 1, 32, 0, 0 },
    { "generate", "speculative_ngram", K_INT, CF(speculative_ngram), 0, 0, 0, 1, 8, 0, 0 },
    /* [server] (lamina serve) */
    { "server", "listen", K_STRING, CF(server_listen), SZ(lamina_config, server_listen), 0, 0, 0, 0, 0, 0 },
    { "server", "parallel", K_INT, CF(server_parallel), 0, 0, 0, 1, 256, 0, 0 },
    { "server", "queue", K_INT, CF(server_queue), 0, 0, 0, 0, 65536, 0, 0 },
    { "server", "n_ctx", K_INT, CF(server_n_ctx), 0, 0, 0, 0, 1 << 24, 0, 0 },
    { "server", "prompt_chunk", K_INT, CF(server_prompt_chunk), 0, 0, 0, 1, 8192, 0, 0 },
    { "server", "request_timeout", K_INT, CF(server_request_timeout), 0, 0, 0, 0, 1 << 24, 0, 0 },
    { "server", "keep_alive", K_INT, CF(server_keep_alive), 0, 0, 0, -1, 1 << 30, 0, 0 },
    { "server", "memory_mib", K_INT64, CF(server_memory_mib), 0, 0, 0, 0, INT64_C(1) << 40, 0, 0 },
    { "server", "max_models", K_INT, CF(server_max_models), 0, 0, 0, 1, 64, 0, 0 },
    { "server", "api_key", K_STRING, CF(server_api_key), SZ(lamina_config, server_api_key), 0, 0, 0, 0, 0, 0 },
    { "server", "api_key_file", K_PATH, CF(server_api_key_file), SZ(lamina_config, server_api_key_file),
      0, 0, 0, 0, 0, 0 },
    { "server", "allow_unauthenticated", K_BOOL, CF(server_allow_unauthenticated), 0, 0, 0, 0, 0, 0, 0 },
    { "server", "allowed_hosts", K_STRING, CF(server_allowed_hosts), SZ(lamina_config, server_allowed_hosts),
      0, 0, 0, 0, 0, 0 },
    { "server", "cors_origins", K_STRING, CF(server_cors_origins), SZ(lamina_config, server_cors_origins),
      0, 0, 0, 0, 0, 0 },
    { "server", "max_body_kib", K_INT, CF(server_max_body_kib), 0, 0, 0, 1, 1 << 20, 0, 0 },
    { "server", "max_json_depth", K_INT, CF(server_max_json_depth), 0, 0, 0, 2, 1000, 0, 0 },
    { "server", "max_connections", K_INT, CF(server_max_connections), 0, 0, 0, 4, 4096, 0, 0 },
    { "server", "drain_timeout", K_INT, CF(server_drain_timeout), 0, 0, 0, 0, 86400, 0, 0 },
    { "server", "idle_timeout", K_INT, CF(server_idle_timeout), 0, 0, 0, 0, 86400, 0, 0 },
    { "server", "header_timeout", K_INT, CF(server_header_timeout), 0, 0, 0, 0, 3600, 0, 0 },
    { "server", "write_timeout", K_INT, CF(server_write_timeout), 0, 0, 0, 0, 3600, 0, 0 },
    { "server", "rate_limit", K_INT, CF(server_rate_limit), 0, 0, 0, 0, 1000000, 0, 0 },
    { "server", "rate_burst", K_INT, CF(server_rate_burst), 0, 0, 0, 0, 1000000, 0, 0 },
};

static const key_def backend_keys[] = {
    { NULL, "enabled", K_BOOL, BF(enabled), 0, 0, 0, 0, 0, 0, 0 },
    { NULL, "threads", K_INT, BF(threads), 0, 0, 0, 0, 1024, 0, 0 },
    { NULL, "device", K_STRING, BF(device), SZ(lamina_backend_config, device),
      0, 0, 0, 0, 0, 0 },
    { NULL, "min_version", K_VERSION, BF(min_version), SZ(lamina_backend_config, min_version),
      0, 0, 0, 0, 0, 0 },
    { NULL, "max_version", K_VERSION, BF(max_version), SZ(lamina_backend_config, max_version),
      0, 0, 0, 0, 0, 0 },
    { NULL, "deny_versions", K_VERSION_LIST, BF(deny_versions),
      ESZ(lamina_backend_config, deny_versions), LAMINA_MAX_LIST, BF(n_deny_versions),
      0, 0, 0, 0 },
    { NULL, "allow_arch", K_NAME_LIST, BF(allow_arch), ESZ(lamina_backend_config, allow_arch),
      LAMINA_MAX_LIST, BF(n_allow_arch), 0, 0, 0, 0 },
    { NULL, "env", K_ENV_LIST, BF(env), ESZ(lamina_backend_config, env), LAMINA_MAX_ENV,
      BF(n_env), 0, 0, 0, 0 },
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int parse_i64(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0 || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < N_ELEMS(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) { *out = 1; return 0; }
        if (strcasecmp(v, no[i]) == 0) { *out = 0; return 0; }
    }
    return -1;
}

static int valid_name(const char *s, const char *extra)
{
    if (*s == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' &&
            (extra == NULL || strchr(extra, *p) == NULL))
            return 0;
    }
    return 1;
}

static int valid_env_name(const char *s)
{
    if (!isalpha((unsigned char)*s) && *s != '_')
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    return 1;
}

/* Split a comma-separated list into trimmed items; empty items are an error
 * except for an entirely empty value (an empty list).  Calls fn per item. */
typedef int (*item_fn)(void *ctx, const char *item, char *why, size_t why_size);

static int for_each_item(const char *value, item_fn fn, void *ctx, char *why, size_t why_size)
{
    char *copy = strdup(value);
    if (copy == NULL) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    int rc = 0;
    char *all = trim(copy);
    if (*all != '\0') {
        char *p = all;
        for (;;) {
            char *comma = strchr(p, ',');
            if (comma != NULL)
                *comma = '\0';
            char *item = trim(p);
            if (*item == '\0') {
                snprintf(why, why_size, "expected a comma-separated list without empty items");
                rc = -1;
                break;
            }
            if ((rc = fn(ctx, item, why, why_size)) < 0)
                break;
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    }
    free(copy);
    return rc;
}

typedef struct list_ctx {
    const key_def *def;
    char *base;                 /* first element */
    int n;
    const char *expect;         /* for messages */
} list_ctx;

static int list_add(void *vctx, const char *item, char *why, size_t why_size)
{
    list_ctx *lc = vctx;
    const key_def *d = lc->def;
    if (lc->n >= d->max) {
        snprintf(why, why_size, "expected at most %d items", d->max);
        return -1;
    }
    if (strlen(item) >= d->size) {
        snprintf(why, why_size, "expected items shorter than %zu characters", d->size);
        return -1;
    }
    switch (d->type) {
    case K_PATH_LIST:
        if (item[0] != '/') {
            snprintf(why, why_size, "expected absolute directories (relative ones are refused)");
            return -1;
        }
        break;
    case K_NAME_LIST:
        if (!valid_name(item, ".")) {
            snprintf(why, why_size, "expected names of letters, digits, '_', '-', '.'");
            return -1;
        }
        break;
    case K_VERSION_LIST:
        if (!lamina_version_is_plain(item)) {
            snprintf(why, why_size, "expected dotted numeric versions such as 6.3.1");
            return -1;
        }
        break;
    default:
        break;
    }
    memcpy(lc->base + (size_t)lc->n * d->size, item, strlen(item) + 1);
    lc->n++;
    return 0;
}

/* env entries are merged by NAME: a later value replaces an earlier one. */
static int env_put(lamina_backend_config *bc, const char *name, const char *val,
                   char *why, size_t why_size)
{
    if (!valid_env_name(name)) {
        snprintf(why, why_size, "expected an environment variable name, got '%s'", name);
        return -1;
    }
    size_t need = strlen(name) + 1 + strlen(val) + 1;
    if (need > sizeof(bc->env[0])) {
        snprintf(why, why_size, "expected NAME=VALUE shorter than %zu characters",
                 sizeof(bc->env[0]));
        return -1;
    }
    size_t nl = strlen(name);
    int slot = bc->n_env;
    for (int i = 0; i < bc->n_env; i++) {
        if (strncmp(bc->env[i], name, nl) == 0 && bc->env[i][nl] == '=') {
            slot = i;
            break;
        }
    }
    if (slot == bc->n_env) {
        if (bc->n_env >= LAMINA_MAX_ENV) {
            snprintf(why, why_size, "expected at most %d variables", LAMINA_MAX_ENV);
            return -1;
        }
        bc->n_env++;
    }
    snprintf(bc->env[slot], sizeof(bc->env[slot]), "%s=%s", name, val);
    return 0;
}

static int env_item(void *vctx, const char *item, char *why, size_t why_size)
{
    lamina_backend_config *bc = vctx;
    const char *eq = strchr(item, '=');
    if (eq == NULL || eq == item) {
        snprintf(why, why_size, "expected NAME=VALUE items");
        return -1;
    }
    char name[256];
    size_t nl = (size_t)(eq - item);
    if (nl >= sizeof(name)) {
        snprintf(why, why_size, "expected a shorter variable name");
        return -1;
    }
    memcpy(name, item, nl);
    name[nl] = '\0';
    char *tn = trim(name);
    char val[256];
    snprintf(val, sizeof(val), "%s", eq + 1);
    return env_put(bc, tn, trim(val), why, why_size);
}

int lamina_config_set_backends(lamina_config *cfg, const char *value,
                               char *err, size_t err_size)
{
    char v[1024];
    snprintf(v, sizeof(v), "%s", value);
    char *t = trim(v);
    if (strcasecmp(t, "auto") == 0) {
        cfg->backends_auto = 1;
        cfg->n_backends = 0;
        return 0;
    }
    static const key_def d = { NULL, "backends", K_NAME_LIST, 0,
                               ESZ(lamina_config, backends), LAMINA_MAX_BACKENDS,
                               0, 0, 0, 0, 0 };
    char names[LAMINA_MAX_BACKENDS][32];
    list_ctx lc = { &d, &names[0][0], 0, NULL };
    char why[256] = "";
    if (*t == '\0' || for_each_item(t, list_add, &lc, why, sizeof(why)) < 0) {
        if (why[0] == '\0')
            snprintf(why, sizeof(why), "expected auto or a comma-separated list of plugin names");
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "%s", why);
    }
    for (int i = 0; i < lc.n; i++) {
        if (strcasecmp(names[i], "auto") == 0)
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "expected auto alone or a list of plugin names");
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                      "expected each plugin name once, '%s' repeats", names[i]);
    }
    memcpy(cfg->backends, names, sizeof(names));
    cfg->n_backends = lc.n;
    cfg->backends_auto = 0;
    return 0;
}

/* Store `value` per `d` at `base`; on failure fill `why` (the whole
 * explanation after "KEY: ", including the offending value). */
static int store_value(const key_def *d, char *base, const char *raw, char *why, size_t why_size)
{
    char buf[8192];
    snprintf(buf, sizeof(buf), "%s", raw);
    char *v = trim(buf);
    void *dst = base + d->off;

    switch (d->type) {
    case K_INT: {
        int64_t x;
        if (parse_i64(v, d->lo, d->hi, &x) < 0)
            goto range;
        *(int *)dst = (int)x;
        return 0;
    }
    case K_INT64: {
        int64_t x;
        if (parse_i64(v, d->lo, d->hi, &x) < 0)
            goto range;
        *(int64_t *)dst = x;
        return 0;
    }
    case K_FLOAT: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (*v == '\0' || *end != '\0' || errno != 0 || !isfinite(x) ||
            x < d->flo || x > d->fhi) {
            snprintf(why, why_size, "expected a number from %g to %g, got '%s'",
                     d->flo, d->fhi, v);
            return -1;
        }
        *(float *)dst = (float)x;
        return 0;
    }
    case K_BOOL:
        if (parse_bool(v, (int *)dst) < 0) {
            snprintf(why, why_size, "expected true, false, yes, no, 1 or 0, got '%s'", v);
            return -1;
        }
        return 0;
    case K_STRING:
        if (strlen(v) >= d->size) {
            snprintf(why, why_size, "expected at most %zu characters, got %zu",
                     d->size - 1, strlen(v));
            return -1;
        }
        memcpy(dst, v, strlen(v) + 1);
        return 0;
    case K_PATH:
        if (*v != '\0' && *v != '/') {
            snprintf(why, why_size, "expected an absolute path, got '%s'", v);
            return -1;
        }
        if (strlen(v) >= d->size) {
            snprintf(why, why_size, "expected a path shorter than %zu characters", d->size);
            return -1;
        }
        memcpy(dst, v, strlen(v) + 1);
        return 0;
    case K_VERSION:
        if (*v != '\0' && !lamina_version_is_plain(v)) {
            snprintf(why, why_size, "expected a dotted numeric version such as 6.3.1, got '%s'", v);
            return -1;
        }
        if (strlen(v) >= d->size) {
            snprintf(why, why_size, "expected a version shorter than %zu characters", d->size);
            return -1;
        }
        memcpy(dst, v, strlen(v) + 1);
        return 0;
    case K_PATH_LIST:
    case K_NAME_LIST:
    case K_VERSION_LIST: {
        /* Parse into a scratch copy so that a bad value changes nothing. */
        size_t bytes = (size_t)d->max * d->size;
        char *tmp = calloc(1, bytes);
        if (tmp == NULL) {
            snprintf(why, why_size, "out of memory");
            return -1;
        }
        list_ctx lc = { d, tmp, 0, NULL };
        char item_why[512] = "";
        if (for_each_item(v, list_add, &lc, item_why, sizeof(item_why)) < 0) {
            snprintf(why, why_size, "%s, got '%s'", item_why, v);
            free(tmp);
            return -1;
        }
        memcpy(dst, tmp, bytes);
        *(int *)(base + d->count_off) = lc.n;
        free(tmp);
        return 0;
    }
    case K_GPU_LAYERS: {
        int64_t x;
        if (strcasecmp(v, "auto") == 0)
            *(int *)dst = -1;
        else if (strcasecmp(v, "all") == 0)
            *(int *)dst = -2;
        else if (parse_i64(v, 0, INT_MAX, &x) == 0)
            *(int *)dst = (int)x;
        else {
            snprintf(why, why_size, "expected auto, all or a number >= 0, got '%s'", v);
            return -1;
        }
        return 0;
    }
    case K_AUTO_OFF:
        if (strcasecmp(v, "auto") == 0)
            *(int *)dst = 1;
        else if (parse_bool(v, (int *)dst) < 0) {
            snprintf(why, why_size, "expected auto or off, got '%s'", v);
            return -1;
        }
        return 0;
    case K_BACKENDS: {
        char msg[256];
        if (lamina_config_set_backends((lamina_config *)base, v, msg, sizeof(msg)) < 0) {
            snprintf(why, why_size, "%s, got '%s'", msg, v);
            return -1;
        }
        return 0;
    }
    case K_ENV_LIST: {
        lamina_backend_config *bc = (lamina_backend_config *)base;
        lamina_backend_config save = *bc;
        char item_why[512] = "";
        if (for_each_item(v, env_item, bc, item_why, sizeof(item_why)) < 0) {
            *bc = save;
            snprintf(why, why_size, "%s, got '%s'", item_why, v);
            return -1;
        }
        return 0;
    }
    }
    snprintf(why, why_size, "internal error: key type");
    return -1;

range:
    if (d->hi >= INT_MAX || d->hi == INT64_MAX)
        snprintf(why, why_size, "expected a whole number >= %lld, got '%s'",
                 (long long)d->lo, v);
    else
        snprintf(why, why_size, "expected a whole number from %lld to %lld, got '%s'",
                 (long long)d->lo, (long long)d->hi, v);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Defaults                                                                 */

static void backend_defaults(lamina_backend_config *bc, const char *name)
{
    memset(bc, 0, sizeof(*bc));
    snprintf(bc->name, sizeof(bc->name), "%s", name);
    bc->enabled = 1;
}

void lamina_config_defaults(lamina_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->plugin_path[0], sizeof(cfg->plugin_path[0]), "%s", LAMINA_PLUGIN_DIR);
    cfg->n_plugin_path = 1;
    cfg->probe_timeout_ms = 60000;
    cfg->cache = 1;
    cfg->backends_auto = 1;
    cfg->gpu_layers = -1;
    cfg->reserve_mib = 256;
    cfg->n_ctx = 0;
    cfg->threads = 0;
    snprintf(cfg->model_registry, sizeof(cfg->model_registry), "https://registry.ollama.ai");
    cfg->temperature = 0.8f;
    cfg->top_k = 40;
    cfg->top_p = 0.95f;
    cfg->min_p = 0.05f;
    cfg->repeat_penalty = 1.1f;
    cfg->repeat_last_n = 64;
    cfg->seed = -1;
    cfg->max_tokens = 256;
    cfg->speculative = 1;
    cfg->speculative_draft = 8;
    cfg->speculative_ngram = 3;
    snprintf(cfg->server_listen, sizeof(cfg->server_listen), "127.0.0.1:11434");
    cfg->server_parallel = 4;
    cfg->server_queue = 16;
    cfg->server_prompt_chunk = 128;
    cfg->server_request_timeout = 600;
    cfg->server_keep_alive = 300;
    cfg->server_max_models = 3;
    cfg->server_max_body_kib = 1024;
    cfg->server_max_json_depth = 32;
    cfg->server_max_connections = 64;
    cfg->server_drain_timeout = 30;
    cfg->server_idle_timeout = 120;
    cfg->server_header_timeout = 30;
    cfg->server_write_timeout = 60;
}

const lamina_backend_config *lamina_config_backend(const lamina_config *cfg, const char *name)
{
    static const lamina_backend_config dflt = { .enabled = 1 };
    for (int i = 0; cfg != NULL && name != NULL && i < cfg->n_backend; i++)
        if (strcmp(cfg->backend[i].name, name) == 0)
            return &cfg->backend[i];
    return &dflt;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */

typedef struct parse_ctx {
    lamina_config *cfg;
    char msg[1024];             /* first error, without "FILE:LINE: " */
    int failed;
    int line_hint;              /* line of the first error, from our own scan */
} parse_ctx;

static void fail(parse_ctx *pc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(parse_ctx *pc, const char *fmt, ...)
{
    if (pc->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pc->msg, sizeof(pc->msg), fmt, ap);
    va_end(ap);
    pc->failed = 1;
}

static int known_section(const char *s)
{
    if (strncmp(s, "backend.", 8) == 0)
        return valid_name(s + 8, NULL) && strlen(s + 8) < sizeof(((lamina_backend_config *)0)->name);
    for (size_t i = 0; i < N_ELEMS(global_keys); i++)
        if (strcmp(global_keys[i].section, s) == 0)
            return 1;
    return 0;
}

static lamina_backend_config *backend_section(parse_ctx *pc, const char *name)
{
    lamina_config *cfg = pc->cfg;
    for (int i = 0; i < cfg->n_backend; i++)
        if (strcmp(cfg->backend[i].name, name) == 0)
            return &cfg->backend[i];
    if (cfg->n_backend >= LAMINA_MAX_BACKENDS)
        return NULL;
    lamina_backend_config *bc = &cfg->backend[cfg->n_backend++];
    backend_defaults(bc, name);
    return bc;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *pc = user;
    char why[1024];

    if (!known_section(section)) {
        fail(pc, "unknown section [%s]", section);
        return 0;
    }
    if (strncmp(section, "backend.", 8) == 0) {
        lamina_backend_config *bc = backend_section(pc, section + 8);
        if (bc == NULL) {
            fail(pc, "[%s]: more than %d [backend.*] sections", section, LAMINA_MAX_BACKENDS);
            return 0;
        }
        if (strncmp(name, "env.", 4) == 0) {
            char v[256];
            snprintf(v, sizeof(v), "%s", value);
            if (env_put(bc, name + 4, trim(v), why, sizeof(why)) < 0) {
                fail(pc, "[%s] %s: %s", section, name, why);
                return 0;
            }
            return 1;
        }
        for (size_t i = 0; i < N_ELEMS(backend_keys); i++) {
            if (strcmp(backend_keys[i].key, name) != 0)
                continue;
            if (store_value(&backend_keys[i], (char *)bc, value, why, sizeof(why)) < 0) {
                fail(pc, "[%s] %s: %s", section, name, why);
                return 0;
            }
            return 1;
        }
        fail(pc, "[%s] unknown key '%s'", section, name);
        return 0;
    }
    for (size_t i = 0; i < N_ELEMS(global_keys); i++) {
        if (strcmp(global_keys[i].section, section) != 0 || strcmp(global_keys[i].key, name) != 0)
            continue;
        if (store_value(&global_keys[i], (char *)pc->cfg, value, why, sizeof(why)) < 0) {
            fail(pc, "[%s] %s: %s", section, name, why);
            return 0;
        }
        return 1;
    }
    fail(pc, "[%s] unknown key '%s'", section, name);
    return 0;
}

/* inih only calls the handler for keys, so an unknown section without keys
 * would pass unseen; look at every section header ourselves.  Returns the
 * line of the first unknown one (0 when none) and its message. */
static int scan_sections(const char *text, char *msg, size_t msg_size)
{
    int line = 0;
    const char *p = text;
    while (*p) {
        line++;
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *q = p;
        while (q < p + len && (*q == ' ' || *q == '\t'))
            q++;
        if (q < p + len && *q == '[') {
            const char *close = memchr(q, ']', len - (size_t)(q - p));
            if (close != NULL) {
                char sec[128];
                size_t sl = (size_t)(close - q - 1);
                if (sl >= sizeof(sec))
                    sl = sizeof(sec) - 1;
                memcpy(sec, q + 1, sl);
                sec[sl] = '\0';
                char *t = trim(sec);
                if (!known_section(t)) {
                    snprintf(msg, msg_size, "unknown section [%s]", t);
                    return line;
                }
            }
        }
        if (eol == NULL)
            break;
        p = eol + 1;
    }
    return 0;
}

int lamina_config_load_string(lamina_config *cfg, const char *text, const char *name,
                              char *err, size_t err_size)
{
    parse_ctx pc;
    memset(&pc, 0, sizeof(pc));
    pc.cfg = cfg;
    char scan_msg[256] = "";
    int scan_line = scan_sections(text, scan_msg, sizeof(scan_msg));

    int line = ini_parse_string(text, handler, &pc);
    if (line < 0)
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "%s: out of memory", name);
    if (scan_line > 0 && (line == 0 || scan_line < line))
        return lamina_set_err(err, err_size, LAMINA_EINVAL, "%s:%d: %s", name, scan_line, scan_msg);
    if (line > 0) {
        if (pc.failed)
            return lamina_set_err(err, err_size, LAMINA_EINVAL, "%s:%d: %s", name, line, pc.msg);
        return lamina_set_err(err, err_size, LAMINA_EINVAL,
                              "%s:%d: syntax error: expected [section] or key = value",
                              name, line);
    }
    return 0;
}

int lamina_config_load(lamina_config *cfg, const char *path, char *err, size_t err_size)
{
    int rc = 0;
    char *text = NULL;
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        if (errno == ENOENT)
            return lamina_set_err(err, err_size, LAMINA_ENOENT, "%s: no such file", path);
        return lamina_set_err(err, err_size, LAMINA_EIO, "%s: %s", path, strerror(errno));
    }
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            if (cap > (size_t)16 << 20) {
                rc = lamina_set_err(err, err_size, LAMINA_ERANGE, "%s: larger than 16 MiB", path);
                goto out;
            }
            size_t ncap = cap ? cap * 2 : 8192;
            char *n = realloc(text, ncap);
            if (n == NULL) {
                rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            text = n;
            cap = ncap;
        }
        size_t got = fread(text + len, 1, cap - len - 1, fp);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(fp)) {
        rc = lamina_set_err(err, err_size, LAMINA_EIO, "%s: read error", path);
        goto out;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        rc = lamina_set_err(err, err_size, LAMINA_EINVAL, "%s: contains a NUL byte", path);
        goto out;
    }
    rc = lamina_config_load_string(cfg, text, path, err, err_size);
    if (rc == 0)
        snprintf(cfg->source, sizeof(cfg->source), "%s", path);
out:
    free(text);
    fclose(fp);
    return rc;
}

int lamina_config_resolve(lamina_config *cfg, const char *path, char *err, size_t err_size)
{
    lamina_config_defaults(cfg);
    int rc;
    const char *env_cfg = lamina_env_get("LAMINA_CONFIG");
    if (path != NULL && *path != '\0') {
        if ((rc = lamina_config_load(cfg, path, err, err_size)) < 0)
            return rc;
    } else if (env_cfg != NULL && *env_cfg != '\0') {
        if ((rc = lamina_config_load(cfg, env_cfg, err, err_size)) < 0) {
            if (rc == LAMINA_ENOENT)
                lamina_set_err(err, err_size, rc, "%s (from $LAMINA_CONFIG): no such file", env_cfg);
            return rc;
        }
    } else {
        char def[4096];
        snprintf(def, sizeof(def), "%s/lamina/lamina.ini", LAMINA_SYSCONFDIR);
        rc = lamina_config_load(cfg, def, err, err_size);
        if (rc < 0 && rc != LAMINA_ENOENT)
            return rc;
    }

    const char *eb = lamina_env_get("LAMINA_BACKENDS");
    if (eb != NULL && *eb != '\0') {
        char why[256];
        if (lamina_config_set_backends(cfg, eb, why, sizeof(why)) < 0)
            return lamina_set_err(err, err_size, LAMINA_EINVAL,
                                  "$LAMINA_BACKENDS: %s, got '%s'", why, eb);
        cfg->backends_from_env = 1;
    }

    const char *ep = lamina_env_get("LAMINA_PLUGIN_PATH");
    if (ep != NULL && *ep != '\0') {
        char dirs[LAMINA_MAX_PATHS][4096];
        int n = 0;
        const char *p = ep;
        while (*p) {
            const char *colon = strchr(p, ':');
            size_t len = colon ? (size_t)(colon - p) : strlen(p);
            if (len > 0) {
                if (n >= LAMINA_MAX_PATHS)
                    return lamina_set_err(err, err_size, LAMINA_ERANGE,
                                          "$LAMINA_PLUGIN_PATH: more than %d directories",
                                          LAMINA_MAX_PATHS);
                if (len >= sizeof(dirs[0]))
                    return lamina_set_err(err, err_size, LAMINA_ERANGE,
                                          "$LAMINA_PLUGIN_PATH: directory name too long");
                memcpy(dirs[n], p, len);
                dirs[n][len] = '\0';
                n++;
            }
            if (colon == NULL)
                break;
            p = colon + 1;
        }
        /* The environment's directories go first; the file's (or the
         * default) follow, as many as still fit. */
        int keep = cfg->n_plugin_path;
        if (keep > LAMINA_MAX_PATHS - n)
            keep = LAMINA_MAX_PATHS - n;
        memmove(cfg->plugin_path[n], cfg->plugin_path[0], (size_t)keep * sizeof(cfg->plugin_path[0]));
        memcpy(cfg->plugin_path[0], dirs[0], (size_t)n * sizeof(dirs[0]));
        cfg->n_plugin_path = n + keep;
        cfg->n_plugin_path_env = n;
    }
    return 0;
}
