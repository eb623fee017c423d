/* cmd_backends.c - `lamina backends [--json]`: every candidate plugin, its
 * components, devices, probe and self-test results, and why anything was
 * refused. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lamina/lamina.h"
#include "registry.h"
#include "report.h"
#include "rules.h"

static void log_to_stderr(void *ctx, int level, const char *msg)
{
    const cli_globals *g = ctx;
    if (level >= LAMINA_LOG_INFO && (g == NULL || g->verbose == 0))
        return;
    fprintf(stderr, "lamina: %s: %s\n",
            level == LAMINA_LOG_ERROR ? "error" : level == LAMINA_LOG_WARN ? "warning" : "info",
            msg);
}

static const char *bytes(uint64_t b, char *buf, size_t size)
{
    if (b == 0)
        snprintf(buf, size, "unknown");
    else if (b >= (uint64_t)1 << 30)
        snprintf(buf, size, "%.1f GiB", (double)b / (double)(1u << 30));
    else
        snprintf(buf, size, "%.1f MiB", (double)b / (double)(1u << 20));
    return buf;
}

static const char *opt(const char *s)
{
    return s != NULL && s[0] ? s : "-";
}

static void print_plugin(const lamina_runtime *rt, const lamina_plugin_report *p, int verbose)
{
    char b1[32], b2[32];
    char abi[32];
    if (p->desc_size > 0 || p->abi_major > 0)
        snprintf(abi, sizeof(abi), "%u.%u", p->abi_major, p->abi_minor);
    else
        snprintf(abi, sizeof(abi), "?");
    printf("\n%s %s  ABI %s  %s  [%s]", p->name, p->version[0] ? p->version : "?", abi,
           p->path, lamina_report_status_name(p->status));
    if (p->probe_ms > 0 || p->from_cache)
        printf("  probe %.1f ms%s", p->probe_ms, p->from_cache ? " (cached)" : "");
    printf("\n");
    if (p->description[0])
        printf("  %s\n", p->description);
    if (p->reason[0])
        printf("  reason: %s\n", p->reason);
    if (p->real_path[0] && strcmp(p->real_path, p->path) != 0)
        printf("  file: %s\n", p->real_path);
    for (int i = 0; i < p->n_components; i++) {
        const lamina_component_report *c = &p->components[i];
        printf("  component %-20s found %-14s built %-14s rule %s%s%s\n", c->name,
               c->found[0] ? c->found : "(none)", c->built[0] ? c->built : "-",
               lamina_rule_name(c->rule), c->path[0] ? "  " : "", c->path);
    }
    if (p->n_code_targets > 0) {
        printf("  code targets:");
        for (int i = 0; i < p->n_code_targets; i++)
            printf(" %s", p->code_targets[i]);
        printf("\n");
    }
    for (int i = 0; i < p->n_notes; i++)
        printf("  note: %s\n", p->notes[i]);
    for (int k = 0; k < p->n_devices; k++) {
        const lamina_device_report *d = &p->devices[k];
        const lamina_device_info *in = &d->info;
        int slot = -1;
        for (int s = 0; s < lamina_runtime_device_count(rt); s++)
            if (lamina_runtime_device(rt, s)->device == d)
                slot = s;
        printf("  device %u: %s (%s)  [%s]", in->index, opt(in->name), opt(in->type),
               lamina_report_status_name(d->status));
        if (slot >= 0)
            printf("  slot %d", slot);
        printf("\n");
        printf("    driver %s %s, runtime %s, api %s, arch %s\n", opt(in->driver_name),
               opt(in->driver_version), opt(in->runtime_version), opt(in->api_version),
               opt(in->arch));
        printf("    memory %s total, %s free\n", bytes(in->mem_total, b1, sizeof(b1)),
               bytes(in->mem_free, b2, sizeof(b2)));
        if (verbose && in->features && in->features[0])
            printf("    features: %s\n", in->features);
        if (d->selftest_run)
            printf("    self-test %s: %d cases (%d unsupported) in %.1f ms, %.2f GFLOP/s\n",
                   d->selftest_passed ? "passed" : "FAILED", d->selftest_cases,
                   d->selftest_unsupported, d->selftest_ms, d->score);
        else if (p->selftest_skipped)
            printf("    self-test not run (probe only)\n");
        else if (d->selftest_msg[0])
            printf("    self-test not run: %s\n", d->selftest_msg);
        if (d->status != LAMINA_STATUS_ACCEPTED && d->reason[0] &&
            strcmp(d->reason, p->reason) != 0)
            printf("    reason: %s\n", d->reason);
    }
    if (verbose && p->stderr_tail[0]) {
        printf("  helper stderr (tail):\n");
        const char *s = p->stderr_tail;
        while (*s) {
            const char *nl = strchr(s, '\n');
            int n = nl ? (int)(nl - s) : (int)strlen(s);
            printf("    | %.*s\n", n, s);
            s += n + (nl != NULL);
        }
    }
}

int cmd_backends(const cli_globals *g, int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: lamina [--config FILE] [--reprobe] [-v] backends [--json]\n");
            return 0;
        } else {
            cli_error("backends: unknown argument '%s'", argv[i]);
            return 2;
        }
    }
    lamina_runtime_options o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    o.config_path = g->config_path;
    o.reprobe = g->reprobe;
    o.log = log_to_stderr;
    o.log_ctx = (void *)g;
    lamina_runtime *rt = NULL;
    char err[1024];
    if (lamina_runtime_open(&o, &rt, err, sizeof(err)) < 0) {
        cli_error("%s", err);
        return 1;
    }
    if (json) {
        int rc = lamina_runtime_write_json(rt, stdout);
        lamina_runtime_close(rt);
        return rc < 0 ? 1 : 0;
    }

    const lamina_config *cfg = lamina_runtime_config(rt);
    printf("lamina %s, plugin ABI %d.%d (accepts %d.%d-%d.%d)\n", LAMINA_VERSION_STRING,
           LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR, LAMINA_PLUGIN_ABI_MAJOR,
           LAMINA_PLUGIN_ABI_MIN_MINOR, LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR);
    printf("config: %s\n", cfg->source[0] ? cfg->source : "(built-in defaults)");
    printf("order: ");
    if (cfg->backends_auto)
        printf("auto (by self-test score)");
    for (int i = 0; !cfg->backends_auto && i < cfg->n_backends; i++)
        printf("%s%s", i ? ", " : "", cfg->backends[i]);
    printf("%s\n", cfg->backends_from_env ? " (from $LAMINA_BACKENDS)" : "");
    printf("plugin directories:\n");
    for (int i = 0; i < lamina_runtime_dir_count(rt); i++) {
        const lamina_plugin_dir *d = lamina_runtime_dir(rt, i);
        printf("  %s  %s%s\n", d->path, d->status,
               i < cfg->n_plugin_path_env ? " (from $LAMINA_PLUGIN_PATH)" : "");
    }
    const char *cd = lamina_runtime_cache_dir(rt);
    printf("probe cache: %s\n", cd[0] ? cd : "off");
    if (g->verbose)
        printf("probe helper: %s\n", lamina_runtime_helper(rt));

    int n = lamina_runtime_plugin_count(rt);
    if (n == 0)
        printf("\nno plugin found\n");
    for (int i = 0; i < n; i++)
        print_plugin(rt, lamina_runtime_plugin(rt, i), g->verbose);

    printf("\neligible devices, in order of preference:\n");
    int nd = lamina_runtime_device_count(rt);
    if (nd == 0)
        printf("  none\n");
    for (int i = 0; i < nd; i++) {
        const lamina_device_slot *s = lamina_runtime_device(rt, i);
        printf("  %d  %s  (%.2f GFLOP/s)\n", i, s->device->label, s->device->score);
    }
    lamina_runtime_close(rt);
    return 0;
}
