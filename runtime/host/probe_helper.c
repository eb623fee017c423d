/*
 * probe_helper.c - lamina-probe: load ONE plugin in a throw-away process,
 * probe it and self-test its devices, and report on fd 3.
 *
 *   lamina-probe [--no-selftest] [--cases] [--threads N] PLUGIN.so
 *
 * The protocol (one JSON object per line on LAMINA_PROBE_FD) is described
 * in probe.h.  Whatever the plugin does to this process (crash, hang, exit,
 * scribble on fd 3) is observed and named by the parent.  Exit status: 0
 * when a complete report was written (even one saying the plugin is
 * unusable), 2 on bad usage.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lamina/lamina.h"
#include "log.h"
#include "probe.h"
#include "report.h"
#include "rules.h"
#include "selftest.h"

/* Everything the helper learnt, mirrored in a report so that rules.c can
 * decide which devices to self-test. */
static lamina_plugin_report g_rep;
static const char *g_plugin_name = "?";
static int g_fd = LAMINA_PROBE_FD;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(g_fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            _exit(3);           /* the parent is gone: nothing to report to */
        }
        buf += w;
        len -= (size_t)w;
    }
}

/* Emit {"key": value} as one line; steals `value`. */
static void emit(const char *key, json_t *value)
{
    json_t *o = json_object();
    if (o == NULL || value == NULL || json_object_set_new(o, key, value) < 0) {
        json_decref(o);
        fprintf(stderr, "lamina-probe: out of memory\n");
        _exit(4);
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL) {
        fprintf(stderr, "lamina-probe: out of memory\n");
        _exit(4);
    }
    write_all(s, strlen(s));
    write_all("\n", 1);
    free(s);
}

static json_t *jstr(const char *s)
{
    char buf[4096];
    if (s == NULL)
        return json_null();
    lamina_report_str(buf, sizeof(buf), s);
    return json_string(buf);
}

static void emit_stage(const char *stage, int device)
{
    json_t *o = json_object();
    json_object_set_new(o, "stage", json_string(stage));
    if (device >= 0)
        json_object_set_new(o, "device", json_integer(device));
    /* {"stage":"x","device":N} is flattened on purpose: one key per line
     * except for stage, whose device rides along. */
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL)
        _exit(4);
    write_all(s, strlen(s));
    write_all("\n", 1);
    free(s);
}

static void emit_error(const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void emit_error(const char *kind, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *e = json_object();
    json_object_set_new(e, "kind", json_string(kind));
    json_object_set_new(e, "message", jstr(msg));
    emit("error", e);
}

/* ------------------------------------------------------------------------ */
/* Host services and the probe sink                                         */

static void host_log(void *ctx, int level, const char *plugin, const char *msg)
{
    static const char *const lv[] = { "error", "warning", "info", "debug" };
    (void)ctx;
    fprintf(stderr, "%s: %s: %s\n", plugin ? plugin : g_plugin_name,
            level >= 0 && level <= 3 ? lv[level] : "log", msg ? msg : "");
}

static void sink_component(void *ctx, const char *name, const char *found,
                           const char *built, uint32_t rule, const char *path)
{
    (void)ctx;
    json_t *c = json_object();
    json_object_set_new(c, "name", jstr(name ? name : "?"));
    json_object_set_new(c, "found", jstr(found));
    json_object_set_new(c, "built", jstr(built));
    json_object_set_new(c, "rule", json_integer(rule));
    json_object_set_new(c, "path", jstr(path));
    emit("component", c);
    if (g_rep.n_components < (int)(sizeof(g_rep.components) / sizeof(g_rep.components[0]))) {
        lamina_component_report *cr = &g_rep.components[g_rep.n_components++];
        memset(cr, 0, sizeof(*cr));
        lamina_report_str(cr->name, sizeof(cr->name), name ? name : "?");
        lamina_report_str(cr->found, sizeof(cr->found), found);
        lamina_report_str(cr->built, sizeof(cr->built), built);
        cr->rule = rule;
        lamina_report_str(cr->path, sizeof(cr->path), path);
    }
}

static void sink_file(void *ctx, const char *path)
{
    (void)ctx;
    if (path != NULL)
        emit("file", jstr(path));
}

static void sink_device(void *ctx, const lamina_device_info *dev)
{
    (void)ctx;
    if (dev == NULL || dev->struct_size < offsetof(lamina_device_info, name)) {
        fprintf(stderr, "lamina-probe: device() with a NULL or too small lamina_device_info\n");
        return;
    }
    lamina_device_report *d = lamina_report_add_device(&g_rep);
    if (d == NULL) {
        fprintf(stderr, "lamina-probe: too many devices, ignoring the rest\n");
        return;
    }
    lamina_report_device_from_info(d, dev);
    emit("device", lamina_report_device_json(d));
}

static void sink_note(void *ctx, const char *text)
{
    (void)ctx;
    if (text == NULL)
        return;
    emit("note", jstr(text));
    if (g_rep.n_notes < 8)
        lamina_report_str(g_rep.notes[g_rep.n_notes++], sizeof(g_rep.notes[0]), text);
}

/* ------------------------------------------------------------------------ */
/* Self-test                                                                */

typedef struct case_sink {
    json_t *list;               /* NULL when cases were not asked for */
} case_sink;

static void on_case(void *ctx, const lamina_selftest_result *r)
{
    case_sink *cs = ctx;
    if (cs->list == NULL)
        return;
    lamina_case_report c;
    memset(&c, 0, sizeof(c));
    c.op = r->op;
    c.type = r->type;
    lamina_report_str(c.name, sizeof(c.name), r->name);
    c.status = r->status;
    c.max_err = r->max_err;
    c.tol = r->tol;
    c.ms = r->ms;
    lamina_report_str(c.msg, sizeof(c.msg), r->msg);
    json_array_append_new(cs->list, lamina_report_case_json(&c));
}

static void selftest_device(const lamina_host *host, const lamina_plugin_desc *desc,
                            const lamina_device_report *d, int want_cases, int threads)
{
    const lamina_backend_iface *be_if = desc->backend;
    lamina_backend *be = NULL;
    char err[512] = "";
    lamina_selftest_summary sum;
    case_sink cs = { want_cases ? json_array() : NULL };
    json_t *o = json_object();
    double t0 = now_ms();
    int rc;

    memset(&sum, 0, sizeof(sum));
    json_object_set_new(o, "device", json_integer(d->info.index));
    if (be_if == NULL || !LAMINA_HAS_FN(be_if, open) || !LAMINA_HAS_FN(be_if, close) ||
        !LAMINA_HAS_FN(be_if, graph_compute) || !LAMINA_HAS_FN(be_if, buffer_alloc) ||
        !LAMINA_HAS_FN(be_if, supports_op) || !LAMINA_HAS_FN(be_if, buffer_upload) ||
        !LAMINA_HAS_FN(be_if, buffer_download) || !LAMINA_HAS_FN(be_if, buffer_free)) {
        json_object_set_new(o, "run", json_false());
        json_object_set_new(o, "message",
                            json_string("the descriptor's backend interface lacks a required "
                                        "function (open, close, buffer_*, supports_op, "
                                        "graph_compute)"));
        goto out;
    }
    lamina_backend_params params;
    memset(&params, 0, sizeof(params));
    params.struct_size = sizeof(params);
    params.device = d->info.index;
    params.n_threads = threads > 0 ? (uint32_t)threads : 0;
    rc = be_if->open(host, &params, &be, err, sizeof(err));
    if (rc != 0 || be == NULL) {
        json_object_set_new(o, "run", json_false());
        char msg[700];
        snprintf(msg, sizeof(msg), "open failed (%d): %s", rc, err[0] ? err : "no message");
        json_object_set_new(o, "message", jstr(msg));
        goto out;
    }
    rc = lamina_selftest_run_minor(be_if, be, desc->abi_minor, on_case, &cs, &sum, err, sizeof(err));
    json_object_set_new(o, "run", json_true());
    if (rc != 0) {
        json_object_set_new(o, "passed", json_false());
        json_object_set_new(o, "message", jstr(err[0] ? err : "self-test failed"));
    } else if (LAMINA_HAS_FN(desc, selftest)) {
        char perr[512] = "";
        rc = desc->selftest(host, d->info.index, perr, sizeof(perr));
        if (rc != 0) {
            char msg[700];
            snprintf(msg, sizeof(msg), "the plugin's own self-test failed (%d): %s", rc,
                     perr[0] ? perr : "no message");
            json_object_set_new(o, "passed", json_false());
            json_object_set_new(o, "message", jstr(msg));
        } else {
            json_object_set_new(o, "passed", json_true());
        }
    } else {
        json_object_set_new(o, "passed", json_true());
    }
    be_if->close(be);
out:
    json_object_set_new(o, "cases", json_integer(sum.cases));
    json_object_set_new(o, "unsupported", json_integer(sum.unsupported));
    json_object_set_new(o, "ms", json_real(sum.total_ms > 0 ? sum.total_ms : now_ms() - t0));
    json_object_set_new(o, "score_gflops", json_real(sum.score_gflops));
    if (cs.list != NULL)
        json_object_set_new(o, "case_list", cs.list);
    emit("selftest", o);
}

/* ------------------------------------------------------------------------ */

static int valid_plugin_name(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) >= sizeof(g_rep.name))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: lamina-probe [--no-selftest] [--cases] [--threads N] PLUGIN.so\n"
                    "(run by lamina with a report pipe on fd %d; see lamina-plugin(7))\n",
            LAMINA_PROBE_FD);
}

int main(int argc, char **argv)
{
    int no_selftest = 0, want_cases = 0, threads = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-selftest") == 0) {
            no_selftest = 1;
        } else if (strcmp(argv[i], "--cases") == 0) {
            want_cases = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (argv[i][0] == '-' || path != NULL) {
            usage();
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (path == NULL) {
        usage();
        return 2;
    }
    int fl = fcntl(g_fd, F_GETFD);
    if (fl < 0) {
        fprintf(stderr, "lamina-probe: no report pipe on fd %d\n", g_fd);
        usage();
        return 2;
    }
    /* Nothing the plugin starts may inherit the report pipe. */
    fcntl(g_fd, F_SETFD, fl | FD_CLOEXEC);

    json_t *hello = json_object();
    json_object_set_new(hello, "helper", json_string(LAMINA_VERSION_STRING));
    json_object_set_new(hello, "abi", json_pack("[iii]", LAMINA_PLUGIN_ABI_MAJOR,
                                                LAMINA_PLUGIN_ABI_MINOR,
                                                LAMINA_PLUGIN_ABI_MIN_MINOR));
    emit("hello", hello);

    /* 1. Load the one file. */
    emit_stage("load", -1);
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *e = dlerror();
        emit_error("dlopen", "%s", e ? e : "dlopen failed");
        goto done;
    }
    dlerror();
    void *sym = dlsym(dl, LAMINA_PLUGIN_ENTRY_NAME);
    if (sym == NULL) {
        emit_error("no-entry", "no symbol %s in %s", LAMINA_PLUGIN_ENTRY_NAME, path);
        goto done;
    }
    lamina_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof(entry));

    /* 2. Ask for the descriptor and check what the host can read. */
    static lamina_host host;
    host.struct_size = sizeof(host);
    host.abi_major = LAMINA_PLUGIN_ABI_MAJOR;
    host.abi_minor = LAMINA_PLUGIN_ABI_MINOR;
    host.abi_min_minor = LAMINA_PLUGIN_ABI_MIN_MINOR;
    host.host_version = LAMINA_VERSION_STRING;
    host.log = host_log;
    emit_stage("entry", -1);
    const lamina_plugin_desc *desc = entry(&host);
    if (desc == NULL) {
        emit_error("entry", "%s() returned no descriptor (the plugin refused this host)",
                   LAMINA_PLUGIN_ENTRY_NAME);
        goto done;
    }
    /* The numbers first (the first three fields exist in every version),
     * so that a refusal below is shown with them. */
    json_t *early = json_object();
    json_object_set_new(early, "abi_major", json_integer(desc->abi_major));
    json_object_set_new(early, "abi_minor", json_integer(desc->abi_minor));
    json_object_set_new(early, "desc_size", json_integer(desc->struct_size));
    emit("plugin", early);
    /* abi_minor < MIN_MINOR, written so that MIN_MINOR == 0 does not warn. */
    if (desc->abi_major != LAMINA_PLUGIN_ABI_MAJOR ||
        (uint64_t)desc->abi_minor + 1 < (uint64_t)LAMINA_PLUGIN_ABI_MIN_MINOR + 1) {
        emit_error("abi", "plugin ABI %u.%u, host speaks %d.%d-%d.%d", desc->abi_major,
                   desc->abi_minor, LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MIN_MINOR,
                   LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR);
        goto done;
    }
    if (desc->struct_size < LAMINA_PLUGIN_DESC_MIN_SIZE) {
        emit_error("abi", "descriptor struct_size %u < %zu that ABI %d.%d requires "
                   "(plugin says ABI %u.%u)", desc->struct_size,
                   (size_t)LAMINA_PLUGIN_DESC_MIN_SIZE, LAMINA_PLUGIN_ABI_MAJOR,
                   LAMINA_PLUGIN_ABI_MIN_MINOR, desc->abi_major, desc->abi_minor);
        goto done;
    }
    if (!valid_plugin_name(desc->name)) {
        emit_error("entry", "descriptor name '%s' is not [a-z0-9_-]{1,63}",
                   desc->name ? desc->name : "(null)");
        goto done;
    }
    g_plugin_name = desc->name;
    snprintf(g_rep.name, sizeof(g_rep.name), "%s", desc->name);

    json_t *pj = json_object();
    json_object_set_new(pj, "name", jstr(desc->name));
    json_object_set_new(pj, "version", jstr(desc->version));
    json_object_set_new(pj, "description", jstr(desc->description));
    json_object_set_new(pj, "abi_major", json_integer(desc->abi_major));
    json_object_set_new(pj, "abi_minor", json_integer(desc->abi_minor));
    json_object_set_new(pj, "desc_size", json_integer(desc->struct_size));
    json_object_set_new(pj, "flags", json_integer(desc->abi_minor >= 1 ? desc->flags : 0));
    json_t *ba = json_array();
    for (int i = 0; desc->built_against != NULL && i < 16 &&
                    desc->built_against[i].name != NULL; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "name", jstr(desc->built_against[i].name));
        json_object_set_new(c, "version", jstr(desc->built_against[i].version));
        json_array_append_new(ba, c);
    }
    json_object_set_new(pj, "built_against", ba);
    json_t *ct = json_array();
    for (int i = 0; desc->code_targets != NULL && i < 32 && desc->code_targets[i] != NULL; i++) {
        json_array_append_new(ct, jstr(desc->code_targets[i]));
        lamina_report_str(g_rep.code_targets[i], sizeof(g_rep.code_targets[0]),
                          desc->code_targets[i]);
        g_rep.n_code_targets = i + 1;
    }
    json_object_set_new(pj, "code_targets", ct);
    emit("plugin", pj);

    /* 3. Probe. */
    if (!LAMINA_HAS_FN(desc, probe)) {
        emit_error("probe", "the descriptor has no probe function");
        goto done;
    }
    lamina_probe_sink sink;
    memset(&sink, 0, sizeof(sink));
    sink.struct_size = sizeof(sink);
    sink.component = sink_component;
    sink.file = sink_file;
    sink.device = sink_device;
    sink.note = sink_note;
    emit_stage("probe", -1);
    char err[512] = "";
    double t0 = now_ms();
    int rc = desc->probe(&host, &sink, err, sizeof(err));
    json_t *pd = json_object();
    json_object_set_new(pd, "ms", json_real(now_ms() - t0));
    emit("probe_done", pd);
    if (rc != 0) {
        emit_error("probe", "probe failed (%d): %s", rc, err[0] ? err : "no message");
        goto done;
    }

    /* 4. Self-test every device the plugin's own rules allow. */
    if (!no_selftest) {
        for (int i = 0; i < g_rep.n_devices; i++) {
            char why[512];
            const lamina_device_report *d = &g_rep.devices[i];
            if (lamina_rules_device(&g_rep, d, i, NULL, why, sizeof(why)) < 0) {
                json_t *o = json_object();
                json_object_set_new(o, "device", json_integer(d->info.index));
                json_object_set_new(o, "run", json_false());
                json_object_set_new(o, "message", jstr(why));
                emit("selftest", o);
                continue;
            }
            emit_stage("selftest", (int)d->info.index);
            selftest_device(&host, desc, d, want_cases, threads);
        }
    }

done:
    emit("done", json_object());
    lamina_report_plugin_clear(&g_rep);
    /* The plugin stays loaded: its destructors and threads are not ours to
     * run at exit, and the report is complete. */
    fflush(stdout);
    fflush(stderr);
    return 0;
}
