/* cmd_plugin_check.c - `lamina plugin-check [--json] PATH.so`: run one
 * plugin file through the file checks, isolation, ABI and version rules and
 * the full self-test (never cached), and print a conformance report.
 * Exit 0 when it passes, 1 when not, 2 on bad usage. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lamina/lamina.h"
#include "report.h"
#include "rules.h"

static void log_to_stderr(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level <= LAMINA_LOG_WARN)
        fprintf(stderr, "lamina: %s: %s\n", level == LAMINA_LOG_ERROR ? "error" : "warning", msg);
}


static const char *type_name(uint32_t t)
{
    switch (t) {
    case LAMINA_TYPE_F32: return "f32";
    case LAMINA_TYPE_F16: return "f16";
    case LAMINA_TYPE_Q4_0: return "q4_0";
    case LAMINA_TYPE_Q4_1: return "q4_1";
    case LAMINA_TYPE_Q5_0: return "q5_0";
    case LAMINA_TYPE_Q5_1: return "q5_1";
    case LAMINA_TYPE_Q8_0: return "q8_0";
    case LAMINA_TYPE_Q8_1: return "q8_1";
    case LAMINA_TYPE_Q2_K: return "q2_K";
    case LAMINA_TYPE_Q3_K: return "q3_K";
    case LAMINA_TYPE_Q4_K: return "q4_K";
    case LAMINA_TYPE_Q5_K: return "q5_K";
    case LAMINA_TYPE_Q6_K: return "q6_K";
    case LAMINA_TYPE_Q8_K: return "q8_K";
    case LAMINA_TYPE_IQ4_NL: return "iq4_nl";
    case LAMINA_TYPE_IQ4_XS: return "iq4_xs";
    case LAMINA_TYPE_MXFP4: return "mxfp4";
    case LAMINA_TYPE_I32: return "i32";
    case LAMINA_TYPE_BF16: return "bf16";
    default: return "type?";
    }
}

static const char *case_status(int s)
{
    switch (s) {
    case 0: return "PASS ";
    case 1: return "FAIL ";
    case 2: return "UNSUP";
    case 3: return "ERROR";
    default: return "?    ";
    }
}

int cmd_plugin_check(const cli_globals *g, int argc, char **argv)
{
    int json = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: lamina [--config FILE] plugin-check [--json] PATH.so\n");
            return 0;
        } else if (argv[i][0] == '-' || path != NULL) {
            cli_error("plugin-check: unexpected argument '%s'", argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (path == NULL) {
        cli_error("plugin-check: which plugin file? (lamina plugin-check PATH.so)");
        return 2;
    }

    lamina_runtime_options o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    o.config_path = g->config_path;
    o.reprobe = 1;
    o.only_plugin = path;
    o.want_cases = 1;
    o.log = log_to_stderr;
    lamina_runtime *rt = NULL;
    char err[1024];
    if (lamina_runtime_open(&o, &rt, err, sizeof(err)) < 0) {
        cli_error("%s", err);
        return 1;
    }
    const lamina_plugin_report *p = lamina_runtime_plugin(rt, 0);
    int pass = p != NULL && p->status == LAMINA_STATUS_ACCEPTED;
    for (int k = 0; p != NULL && k < p->n_devices; k++)
        if (p->devices[k].selftest_run && !p->devices[k].selftest_passed)
            pass = 0;

    if (json) {
        lamina_runtime_write_json(rt, stdout);
        lamina_runtime_close(rt);
        return pass ? 0 : 1;
    }

    printf("plugin-check %s\n", path);
    if (p == NULL) {
        printf("  no report\nresult: FAIL\n");
        lamina_runtime_close(rt);
        return 1;
    }
    int refused = strcmp(p->failure, "refused") == 0;
    printf("  file checks:  %s\n", refused ? p->reason : "ok");
    if (!refused) {
        int isolated_fail = p->failure[0] != '\0';
        printf("  isolation:    %s%s\n", isolated_fail ? "FAIL: " : "ok",
               isolated_fail ? p->reason : "");
        if (p->desc_size > 0)
            printf("  descriptor:   name %s, version %s, ABI %u.%u (host %d.%d-%d.%d), "
                   "struct_size %u (host needs >= %zu)\n",
                   p->name, p->version[0] ? p->version : "?", p->abi_major, p->abi_minor,
                   LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MIN_MINOR, LAMINA_PLUGIN_ABI_MAJOR,
                   LAMINA_PLUGIN_ABI_MINOR, p->desc_size, (size_t)LAMINA_PLUGIN_DESC_MIN_SIZE);
        if (p->description[0])
            printf("                %s\n", p->description);
        printf("  probe:        %.1f ms, %d device(s)\n", p->probe_ms, p->n_devices);
        for (int i = 0; i < p->n_components; i++) {
            const lamina_component_report *c = &p->components[i];
            char why[512];
            int bad = lamina_rule_check_component(c, why, sizeof(why)) < 0;
            printf("  component:    %s found %s, built %s, rule %s: %s\n", c->name,
                   c->found[0] ? c->found : "(none)", c->built[0] ? c->built : "-",
                   lamina_rule_name(c->rule), bad ? "FAIL" : "ok");
        }
        for (int i = 0; i < p->n_notes; i++)
            printf("  note:         %s\n", p->notes[i]);
        for (int k = 0; k < p->n_devices; k++) {
            const lamina_device_report *d = &p->devices[k];
            printf("  device %u: %s (%s), driver %s %s, runtime %s, arch %s\n", d->info.index,
                   d->info.name ? d->info.name : "-", d->info.type ? d->info.type : "-",
                   d->info.driver_name ? d->info.driver_name : "-",
                   d->info.driver_version ? d->info.driver_version : "-",
                   d->info.runtime_version ? d->info.runtime_version : "-",
                   d->info.arch ? d->info.arch : "-");
            printf("    verdict: %s%s%s\n", lamina_report_status_name(d->status),
                   d->reason[0] ? ": " : "", d->reason);
            for (int c = 0; c < d->n_cases; c++) {
                const lamina_case_report *r = &d->cases[c];
                printf("    %s %-9s %-5s err %.3e tol %.3e %8.3f ms  %s%s%s\n",
                       case_status(r->status), lamina_op_name(r->op), type_name(r->type), r->max_err,
                       r->tol, r->ms, r->name, r->msg[0] ? ": " : "", r->msg);
            }
            if (d->selftest_run)
                printf("    self-test %s: %d cases, %d unsupported, %.1f ms, %.2f GFLOP/s%s%s\n",
                       d->selftest_passed ? "passed" : "FAILED", d->selftest_cases,
                       d->selftest_unsupported, d->selftest_ms, d->score,
                       d->selftest_msg[0] ? "; " : "", d->selftest_msg);
            else
                printf("    self-test not run%s%s\n", d->selftest_msg[0] ? ": " : "",
                       d->selftest_msg);
        }
    }
    if (g->verbose && p->stderr_tail[0])
        printf("  helper stderr (tail):\n%s\n", p->stderr_tail);
    if (!pass && p->reason[0])
        printf("  reason: %s\n", p->reason);
    printf("result: %s\n", pass ? "PASS" : "FAIL");
    lamina_runtime_close(rt);
    return pass ? 0 : 1;
}
