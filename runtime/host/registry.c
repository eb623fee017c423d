/* registry.c - the runtime: discovery, probe, rules, selection, loading
 * (see registry.h and lamina.h). */
#include "config.h"
#include "conf.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cache.h"
#include "discover.h"
#include "log.h"
#include "probe.h"
#include "registry.h"
#include "report.h"
#include "rules.h"

#ifndef LAMINA_HELPER_PATH
#define LAMINA_HELPER_PATH "/usr/local/libexec/lamina/lamina-probe"
#endif

typedef struct file_id {
    int valid;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id;

struct lamina_runtime {
    lamina_config cfg;
    lamina_logger log;
    int reprobe, no_selftest, want_cases;
    int only;                   /* one explicit file (plugin-check) */
    char helper[4096];
    char cache_dir[4096];       /* "" = no cache */
    lamina_plugin_dir *dirs;
    int n_dirs;
    lamina_plugin_report *plugins;
    int n_plugins;
    file_id *ids;               /* per plugin, at discovery */
    void **dl;                  /* per plugin, once loaded */
    const lamina_plugin_desc **desc;
    lamina_device_slot *slots;
    int n_slots;
    lamina_host host;
};

static void file_id_get(const char *path, file_id *id)
{
    struct stat st;
    memset(id, 0, sizeof(*id));
    if (stat(path, &st) == 0) {
        id->valid = 1;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        id->size = st.st_size;
        id->mtime = st.st_mtim;
    }
}

static int file_id_same(const file_id *a, const file_id *b)
{
    return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void host_log(void *ctx, int level, const char *plugin, const char *msg)
{
    lamina_runtime *rt = ctx;
    lamina_log(&rt->log, level, "%s: %s", plugin ? plugin : "plugin", msg ? msg : "");
}

/* ------------------------------------------------------------------------ */

static void set_label(const lamina_plugin_report *p, lamina_device_report *d)
{
    snprintf(d->label, sizeof(d->label), "%s:%u %s", p->name, d->info.index,
             d->info.name ? d->info.name : "");
}

/* The probe report for one candidate, from the cache or the helper. */
static void probe_one(lamina_runtime *rt, const lamina_candidate *c, lamina_plugin_report *p)
{
    const lamina_backend_config *bc = lamina_config_backend(&rt->cfg, c->stem);
    lamina_cache_key key = {
        .plugin_path = c->path,
        .helper_path = rt->helper,
        .bc = bc,
        .timeout_ms = rt->cfg.probe_timeout_ms,
        .selftest = !rt->no_selftest,
    };
    if (rt->cache_dir[0] && !rt->reprobe && !rt->want_cases &&
        lamina_cache_lookup(rt->cache_dir, &key, p, &rt->log) == 1) {
        snprintf(p->path, sizeof(p->path), "%s", c->path);
        snprintf(p->real_path, sizeof(p->real_path), "%s", c->real);
        if (p->name[0] == '\0')
            snprintf(p->name, sizeof(p->name), "%s", c->stem);
        return;
    }

    lamina_probe_files files = { NULL, 0 };
    int cacheable = 0;
    char err[512];
    int threads = bc->threads > 0 ? bc->threads : rt->cfg.threads;
    lamina_probe_request rq = {
        .plugin_path = c->path,
        .helper_path = rt->helper,
        .timeout_ms = rt->cfg.probe_timeout_ms,
        .no_selftest = rt->no_selftest,
        .want_cases = rt->want_cases,
        .threads = threads,
        .bc = bc,
    };
    int rc = lamina_probe_run(&rq, p, &files, &cacheable, err, sizeof(err));
    snprintf(p->path, sizeof(p->path), "%s", c->path);
    snprintf(p->real_path, sizeof(p->real_path), "%s", c->real);
    p->selftest_skipped = rt->no_selftest;
    if (p->name[0] == '\0')
        snprintf(p->name, sizeof(p->name), "%s", c->stem);
    if (rc == 0 && cacheable && rt->cache_dir[0] && !rt->want_cases) {
        if (lamina_cache_store(rt->cache_dir, &key, p, &files, err, sizeof(err)) < 0)
            lamina_log(&rt->log, LAMINA_LOG_WARN, "probe cache not written: %s", err);
    }
    lamina_probe_files_free(&files);
}

static int cmp_score(const void *a, const void *b)
{
    const lamina_device_slot *x = a, *y = b;
    if (x->device->score != y->device->score)
        return x->device->score > y->device->score ? -1 : 1;
    /* Stable: by plugin position, then device position (pointer order). */
    if (x->plugin != y->plugin)
        return x->plugin < y->plugin ? -1 : 1;
    return x->device < y->device ? -1 : (x->device > y->device);
}

static int add_slot(lamina_runtime *rt, lamina_plugin_report *p, lamina_device_report *d)
{
    lamina_device_slot *n = realloc(rt->slots, (size_t)(rt->n_slots + 1) * sizeof(*n));
    if (n == NULL)
        return LAMINA_ENOMEM;
    rt->slots = n;
    n[rt->n_slots].plugin = p;
    n[rt->n_slots].device = d;
    n[rt->n_slots].config = lamina_config_backend(&rt->cfg, p->name);
    rt->n_slots++;
    return 0;
}

static int select_devices(lamina_runtime *rt, char *err, size_t err_size)
{
    const lamina_config *cfg = &rt->cfg;
    if (cfg->backends_auto || rt->only) {
        for (int i = 0; i < rt->n_plugins; i++) {
            lamina_plugin_report *p = &rt->plugins[i];
            if (p->status != LAMINA_STATUS_ACCEPTED)
                continue;
            for (int k = 0; k < p->n_devices; k++)
                if (p->devices[k].status == LAMINA_STATUS_ACCEPTED &&
                    add_slot(rt, p, &p->devices[k]) < 0)
                    return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
        }
        if (rt->n_slots > 1)
            qsort(rt->slots, (size_t)rt->n_slots, sizeof(*rt->slots), cmp_score);
        return 0;
    }
    char list[600] = "";
    size_t o = 0;
    for (int b = 0; b < cfg->n_backends && o < sizeof(list); b++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", b ? ", " : "", cfg->backends[b]);
    for (int i = 0; i < rt->n_plugins; i++) {
        lamina_plugin_report *p = &rt->plugins[i];
        int listed = 0;
        for (int b = 0; b < cfg->n_backends && !listed; b++)
            listed = strcmp(cfg->backends[b], p->name) == 0;
        if (listed || p->status != LAMINA_STATUS_ACCEPTED)
            continue;
        p->status = LAMINA_STATUS_DISABLED;
        snprintf(p->reason, sizeof(p->reason), "%s: not in %s (%s)", p->name,
                 cfg->backends_from_env ? "$LAMINA_BACKENDS" : "[scheduler] backends", list);
        for (int k = 0; k < p->n_devices; k++) {
            if (p->devices[k].status != LAMINA_STATUS_ACCEPTED)
                continue;
            p->devices[k].status = LAMINA_STATUS_DISABLED;
            snprintf(p->devices[k].reason, sizeof(p->devices[k].reason), "%s", p->reason);
        }
    }
    for (int b = 0; b < cfg->n_backends; b++) {
        for (int i = 0; i < rt->n_plugins; i++) {
            lamina_plugin_report *p = &rt->plugins[i];
            if (p->status != LAMINA_STATUS_ACCEPTED || strcmp(p->name, cfg->backends[b]) != 0)
                continue;
            for (int k = 0; k < p->n_devices; k++)
                if (p->devices[k].status == LAMINA_STATUS_ACCEPTED &&
                    add_slot(rt, p, &p->devices[k]) < 0)
                    return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
        }
    }
    return 0;
}

int lamina_runtime_open(const lamina_runtime_options *opts, lamina_runtime **out,
                        char *err, size_t err_size)
{
    int rc = 0;
    lamina_candidate *cands = NULL;
    char *probed = NULL;
    int n_cands = 0;
    lamina_runtime *rt = calloc(1, sizeof(*rt));
    *out = NULL;
    if (rt == NULL)
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");

    const char *config_path = NULL, *only = NULL;
    if (opts != NULL) {
        if (opts->struct_size < offsetof(lamina_runtime_options, log_ctx) + sizeof(void *)) {
            rc = lamina_set_err(err, err_size, LAMINA_EINVAL,
                                "lamina_runtime_options.struct_size %u is too small",
                                opts->struct_size);
            goto fail;
        }
        config_path = opts->config_path;
        rt->reprobe = opts->reprobe;
        rt->no_selftest = opts->no_selftest;
        only = opts->only_plugin;
        rt->only = only != NULL;
        rt->log.fn = opts->log;
        rt->log.ctx = opts->log_ctx;
        if (LAMINA_HAS(opts, want_cases))
            rt->want_cases = opts->want_cases;
    }
    rt->host.struct_size = sizeof(rt->host);
    rt->host.abi_major = LAMINA_PLUGIN_ABI_MAJOR;
    rt->host.abi_minor = LAMINA_PLUGIN_ABI_MINOR;
    rt->host.abi_min_minor = LAMINA_PLUGIN_ABI_MIN_MINOR;
    rt->host.host_version = LAMINA_VERSION_STRING;
    rt->host.log_ctx = rt;
    rt->host.log = host_log;

    if ((rc = lamina_config_resolve(&rt->cfg, config_path, err, err_size)) < 0)
        goto fail;
    const char *helper = lamina_env_get("LAMINA_PROBE_HELPER");
    snprintf(rt->helper, sizeof(rt->helper), "%s",
             helper != NULL && helper[0] == '/' ? helper : LAMINA_HELPER_PATH);
    if (rt->cfg.cache && only == NULL &&
        lamina_cache_dir(&rt->cfg, rt->cache_dir, sizeof(rt->cache_dir)) < 0) {
        lamina_log(&rt->log, LAMINA_LOG_WARN,
                   "no probe cache: neither $XDG_CACHE_HOME nor a home directory is set");
        rt->cache_dir[0] = '\0';
    }

    if (only != NULL) {
        cands = calloc(1, sizeof(*cands));
        if (cands == NULL) {
            rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
            goto fail;
        }
        lamina_discover_file(only, cands);
        n_cands = 1;
        if (cands[0].refused)
            lamina_log(&rt->log, LAMINA_LOG_WARN, "%s", cands[0].why);
    } else if ((rc = lamina_discover(&rt->cfg, &rt->log, &cands, &n_cands, &rt->dirs,
                                     &rt->n_dirs, err, err_size)) < 0) {
        goto fail;
    }

    if (n_cands > 0) {
        rt->plugins = calloc((size_t)n_cands, sizeof(*rt->plugins));
        rt->ids = calloc((size_t)n_cands, sizeof(*rt->ids));
        rt->dl = calloc((size_t)n_cands, sizeof(*rt->dl));
        rt->desc = calloc((size_t)n_cands, sizeof(*rt->desc));
        probed = calloc((size_t)n_cands, 1);
        if (!rt->plugins || !rt->ids || !rt->dl || !rt->desc || !probed) {
            rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
            goto fail;
        }
    }
    rt->n_plugins = n_cands;
    for (int i = 0; i < n_cands; i++) {
        const lamina_candidate *c = &cands[i];
        lamina_plugin_report *p = &rt->plugins[i];
        snprintf(p->path, sizeof(p->path), "%s", c->path);
        snprintf(p->real_path, sizeof(p->real_path), "%s", c->real);
        snprintf(p->name, sizeof(p->name), "%s", c->stem);
        if (c->refused) {
            p->status = LAMINA_STATUS_REJECTED;
            snprintf(p->failure, sizeof(p->failure), "refused");
            snprintf(p->reason, sizeof(p->reason), "%s", c->why);
            continue;
        }
        file_id_get(c->real, &rt->ids[i]);
        const lamina_backend_config *bc = lamina_config_backend(&rt->cfg, c->stem);
        if (!bc->enabled && only == NULL) {
            p->status = LAMINA_STATUS_DISABLED;
            snprintf(p->reason, sizeof(p->reason),
                     "%s: disabled by [backend.%s] enabled = false (not probed)", c->stem, c->stem);
            continue;
        }
        probe_one(rt, c, p);
        probed[i] = 1;
    }

    /* Rules, then shadowing of duplicate names. */
    for (int i = 0; i < rt->n_plugins; i++) {
        lamina_plugin_report *p = &rt->plugins[i];
        if (!probed[i])
            continue;
        lamina_rules_apply(p, lamina_config_backend(&rt->cfg, p->name), !rt->no_selftest);
        for (int k = 0; k < p->n_devices; k++)
            set_label(p, &p->devices[k]);
        for (int j = 0; j < i; j++) {
            const lamina_plugin_report *q = &rt->plugins[j];
            if (q->failure[0] == '\0' && strcmp(q->name, p->name) == 0 &&
                p->status == LAMINA_STATUS_ACCEPTED) {
                p->status = LAMINA_STATUS_DISABLED;
                snprintf(p->failure, sizeof(p->failure), "shadowed");
                snprintf(p->reason, sizeof(p->reason),
                         "%s: shadowed by %s (same plugin name, found first)", p->name, q->path);
                for (int k = 0; k < p->n_devices; k++) {
                    p->devices[k].status = LAMINA_STATUS_DISABLED;
                    snprintf(p->devices[k].reason, sizeof(p->devices[k].reason), "%s", p->reason);
                }
                break;
            }
        }
    }
    if ((rc = select_devices(rt, err, err_size)) < 0)
        goto fail;
    free(cands);
    free(probed);
    *out = rt;
    return 0;

fail:
    free(cands);
    free(probed);
    lamina_runtime_close(rt);
    return rc;
}

void lamina_runtime_close(lamina_runtime *rt)
{
    if (rt == NULL)
        return;
    for (int i = 0; i < rt->n_plugins; i++) {
        lamina_report_plugin_clear(&rt->plugins[i]);
        if (rt->dl != NULL && rt->dl[i] != NULL)
            dlclose(rt->dl[i]);
    }
    free(rt->plugins);
    free(rt->ids);
    free(rt->dl);
    free(rt->desc);
    free(rt->slots);
    free(rt->dirs);
    free(rt);
}

const lamina_config *lamina_runtime_config(const lamina_runtime *rt)
{
    return &rt->cfg;
}

int lamina_runtime_plugin_count(const lamina_runtime *rt)
{
    return rt->n_plugins;
}

const lamina_plugin_report *lamina_runtime_plugin(const lamina_runtime *rt, int i)
{
    return i >= 0 && i < rt->n_plugins ? &rt->plugins[i] : NULL;
}

int lamina_runtime_device_count(const lamina_runtime *rt)
{
    return rt->n_slots;
}

const lamina_device_slot *lamina_runtime_device(const lamina_runtime *rt, int i)
{
    return i >= 0 && i < rt->n_slots ? &rt->slots[i] : NULL;
}

int lamina_runtime_dir_count(const lamina_runtime *rt)
{
    return rt->n_dirs;
}

const lamina_plugin_dir *lamina_runtime_dir(const lamina_runtime *rt, int i)
{
    return i >= 0 && i < rt->n_dirs ? &rt->dirs[i] : NULL;
}

const char *lamina_runtime_cache_dir(const lamina_runtime *rt)
{
    return rt->cache_dir;
}

const char *lamina_runtime_helper(const lamina_runtime *rt)
{
    return rt->helper;
}

/* ------------------------------------------------------------------------ */
/* Loading into this process                                                */

static int load_plugin(lamina_runtime *rt, int pi, const lamina_backend_config *bc,
                       char *err, size_t err_size)
{
    const lamina_plugin_report *p = &rt->plugins[pi];
    file_id now;
    file_id_get(p->real_path, &now);
    if (!file_id_same(&now, &rt->ids[pi]))
        return lamina_set_err(err, err_size, LAMINA_EVERSION,
                              "%s changed since it was probed; not loading it (run again)",
                              p->path);
    /* The backend's environment is set before loading: runtimes read it
     * when their libraries initialise. */
    for (int i = 0; i < bc->n_env; i++) {
        char name[256];
        const char *eq = strchr(bc->env[i], '=');
        if (eq == NULL)
            continue;
        size_t nl = (size_t)(eq - bc->env[i]);
        if (nl >= sizeof(name))
            continue;
        memcpy(name, bc->env[i], nl);
        name[nl] = '\0';
        if (setenv(name, eq + 1, 1) < 0)
            return lamina_set_err(err, err_size, LAMINA_ENOMEM, "setenv %s failed", name);
    }
    /* RTLD_NODELETE: once loaded, a plugin stays mapped until exit, and so
     * do the vendor libraries it loaded: their threads may outlive close(),
     * and unloading GPU drivers is a known source of crashes at exit. */
    void *dl = dlopen(p->real_path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (dl == NULL) {
        const char *e = dlerror();
        return lamina_set_err(err, err_size, LAMINA_EIO, "%s: %s", p->path,
                              e ? e : "dlopen failed");
    }
    dlerror();
    void *sym = dlsym(dl, LAMINA_PLUGIN_ENTRY_NAME);
    lamina_plugin_entry_fn entry = NULL;
    if (sym != NULL)
        memcpy(&entry, &sym, sizeof(entry));
    const lamina_plugin_desc *d = entry ? entry(&rt->host) : NULL;
    int rc = 0;
    if (d == NULL) {
        rc = lamina_set_err(err, err_size, LAMINA_EVERSION,
                            "%s: no descriptor on load, unlike when probed", p->path);
    } else if (d->abi_major != p->abi_major || d->abi_minor != p->abi_minor ||
               d->struct_size != p->desc_size || d->struct_size < LAMINA_PLUGIN_DESC_MIN_SIZE) {
        rc = lamina_set_err(err, err_size, LAMINA_EVERSION,
                            "%s: descriptor says ABI %u.%u size %u, probed ABI %u.%u size %u",
                            p->path, d->abi_major, d->abi_minor, d->struct_size, p->abi_major,
                            p->abi_minor, p->desc_size);
    } else if (d->name == NULL || strcmp(d->name, p->name) != 0 ||
               strcmp(d->version ? d->version : "", p->version) != 0) {
        rc = lamina_set_err(err, err_size, LAMINA_EVERSION,
                            "%s: descriptor says %s %s, probed %s %s", p->path,
                            d->name ? d->name : "(null)", d->version ? d->version : "",
                            p->name, p->version);
    } else if (d->backend == NULL || !LAMINA_HAS_FN(d->backend, open) ||
               !LAMINA_HAS_FN(d->backend, close)) {
        rc = lamina_set_err(err, err_size, LAMINA_EVERSION, "%s: no backend interface", p->path);
    }
    if (rc < 0) {
        dlclose(dl);
        return rc;
    }
    rt->dl[pi] = dl;
    rt->desc[pi] = d;
    return 0;
}

int lamina_runtime_open_backend(lamina_runtime *rt, int slot, lamina_be **out,
                                char *err, size_t err_size)
{
    *out = NULL;
    if (slot < 0 || slot >= rt->n_slots)
        return lamina_set_err(err, err_size, LAMINA_ENODEV, "no device slot %d (have %d)", slot,
                              rt->n_slots);
    const lamina_device_slot *s = &rt->slots[slot];
    int pi = (int)(s->plugin - rt->plugins);
    const lamina_backend_config *bc = s->config;
    int rc;
    if (rt->dl[pi] == NULL && (rc = load_plugin(rt, pi, bc, err, err_size)) < 0)
        return rc;
    const lamina_backend_iface *be_if = rt->desc[pi]->backend;

    lamina_backend_params params;
    memset(&params, 0, sizeof(params));
    params.struct_size = sizeof(params);
    params.device = s->device->info.index;
    int threads = bc->threads > 0 ? bc->threads
                : rt->cfg.threads > 0 ? rt->cfg.threads : lamina_config_core_count();
    params.n_threads = (uint32_t)threads;

    lamina_be *be = calloc(1, sizeof(*be));
    if (be == NULL)
        return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
    char perr[512] = "";
    rc = be_if->open(&rt->host, &params, &be->inst, perr, sizeof(perr));
    if (rc != 0 || be->inst == NULL) {
        free(be);
        return lamina_set_err(err, err_size, rc < 0 ? rc : LAMINA_EIO, "%s: open failed: %s",
                              s->device->label, perr[0] ? perr : "no message");
    }
    be->iface = be_if;
    be->slot = s;
    be->dl = rt->dl[pi];
    snprintf(be->label, sizeof(be->label), "%s", s->device->label);
    *out = be;
    return 0;
}

void lamina_be_close(lamina_be *be)
{
    if (be == NULL)
        return;
    if (be->iface != NULL && be->inst != NULL)
        be->iface->close(be->inst);
    free(be);
}

/* ------------------------------------------------------------------------ */

int lamina_runtime_write_json(const lamina_runtime *rt, FILE *fp)
{
    const lamina_config *cfg = &rt->cfg;
    json_t *root = json_object();
    if (root == NULL)
        return LAMINA_ENOMEM;
    json_object_set_new(root, "lamina_version", json_string(LAMINA_VERSION_STRING));
    json_object_set_new(root, "abi", json_pack("{s:i,s:i,s:i}", "major", LAMINA_PLUGIN_ABI_MAJOR,
                                               "minor", LAMINA_PLUGIN_ABI_MINOR, "min_minor",
                                               LAMINA_PLUGIN_ABI_MIN_MINOR));
    json_object_set_new(root, "config", cfg->source[0] ? json_string(cfg->source) : json_null());
    json_object_set_new(root, "helper", json_string(rt->helper));
    json_object_set_new(root, "cache_dir", rt->cache_dir[0] ? json_string(rt->cache_dir)
                                                            : json_null());
    json_t *order = json_array();
    if (cfg->backends_auto)
        json_array_append_new(order, json_string("auto"));
    for (int i = 0; !cfg->backends_auto && i < cfg->n_backends; i++)
        json_array_append_new(order, json_string(cfg->backends[i]));
    json_object_set_new(root, "order", order);
    json_object_set_new(root, "order_from_env", json_boolean(cfg->backends_from_env));
    json_t *dirs = json_array();
    for (int i = 0; i < rt->n_dirs; i++)
        json_array_append_new(dirs, json_pack("{s:s,s:s,s:b}", "path", rt->dirs[i].path,
                                              "status", rt->dirs[i].status, "from_env",
                                              i < cfg->n_plugin_path_env));
    json_object_set_new(root, "plugin_dirs", dirs);
    json_t *plugins = json_array();
    for (int i = 0; i < rt->n_plugins; i++)
        json_array_append_new(plugins, lamina_report_plugin_json(&rt->plugins[i]));
    json_object_set_new(root, "plugins", plugins);
    json_t *devs = json_array();
    for (int i = 0; i < rt->n_slots; i++) {
        const lamina_device_slot *s = &rt->slots[i];
        json_array_append_new(devs, json_pack("{s:i,s:s,s:i,s:s,s:f}", "slot", i,
                                              "plugin", s->plugin->name,
                                              "index", (int)s->device->info.index,
                                              "label", s->device->label,
                                              "score_gflops", s->device->score));
    }
    json_object_set_new(root, "devices", devs);
    int rc = json_dumpf(root, fp, JSON_INDENT(2)) == 0 ? 0 : LAMINA_EIO;
    fputc('\n', fp);
    json_decref(root);
    return rc;
}
