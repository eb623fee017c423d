/*
 * testenv.h - what several C tests share (header-only): where the default
 * model is, a host for plugins opened directly, and backends opened from
 * an interface table without the runtime.
 */
#ifndef LAMINA_TESTS_TESTENV_H
#define LAMINA_TESTS_TESTENV_H

#include <stdio.h>
#include <stdlib.h>

#include "lamina/lamina.h"

#define TESTENV_UNUSED __attribute__((unused))

/* The default model: $LAMINA_DEFAULT_MODEL, else where setup.sh puts it
 * ($XDG_DATA_HOME or ~/.local/share, then lamina/models/). */
static TESTENV_UNUSED void test_default_model(char *out, size_t size)
{
    const char *env = getenv("LAMINA_DEFAULT_MODEL");
    if (env && *env) { snprintf(out, size, "%s", env); return; }
    const char *data = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (data && *data) snprintf(out, size, "%s/lamina/models/gemma-3-270m-q4_k_m.gguf", data);
    else snprintf(out, size, "%s/.local/share/lamina/models/gemma-3-270m-q4_k_m.gguf", home ? home : "");
}

/* Plugin log lines at warning level and above, as TAP comments. */
static TESTENV_UNUSED void test_host_log(void *ctx, int level, const char *plugin, const char *msg)
{
    (void)ctx;
    if (level <= LAMINA_LOG_WARN) printf("# [%s] %s\n", plugin, msg);
}
static TESTENV_UNUSED lamina_host test_host = { sizeof(lamina_host), LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR,
                                                LAMINA_PLUGIN_ABI_MIN_MINOR, LAMINA_VERSION_STRING, NULL,
                                                test_host_log };

/* A backend on device 0 of `iface` with 2 threads, labelled `label` (a
 * label starting "cpu" or "ref" makes it a host backend to the planner).
 * NULL after printing why; release with test_be_free. */
static TESTENV_UNUSED lamina_be *test_be_open(const lamina_backend_iface *iface, const char *label)
{
    lamina_be *be = calloc(1, sizeof *be);
    lamina_backend_params p = { sizeof p, 0, 2, 0 };
    char err[512] = "";
    if (!be) return NULL;
    be->iface = iface;
    snprintf(be->label, sizeof be->label, "%s", label);
    if (iface->open(&test_host, &p, &be->inst, err, sizeof err) < 0) {
        printf("# open %s: %s\n", label, err);
        free(be);
        return NULL;
    }
    return be;
}

static TESTENV_UNUSED void test_be_free(lamina_be *be)
{
    if (!be) return;
    be->iface->close(be->inst);
    free(be);
}

#endif
