/* test_rules.c - version comparison, plugin-declared and user rules, and
 * the report JSON round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "report.h"
#include "rules.h"
#include "version.h"
#include "tap.h"

static int cmp(const char *a, const char *b)
{
    int c = 99;
    if (lamina_version_cmp(a, b, &c) < 0)
        return 99;
    return c;
}

static lamina_component_report comp(const char *found, const char *built, uint32_t rule)
{
    lamina_component_report c;
    memset(&c, 0, sizeof(c));
    snprintf(c.name, sizeof(c.name), "hip-runtime");
    snprintf(c.found, sizeof(c.found), "%s", found ? found : "");
    snprintf(c.built, sizeof(c.built), "%s", built ? built : "");
    c.rule = rule;
    return c;
}

static int comp_ok(const char *found, const char *built, uint32_t rule, char *why, size_t n)
{
    lamina_component_report c = comp(found, built, rule);
    why[0] = '\0';
    return lamina_rule_check_component(&c, why, n) == 0;
}

/* A plugin "gpu" with one device. */
static void make_plugin(lamina_plugin_report *p, const char *arch, const char *rt_ver,
                        const char *drv_ver)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "gpu");
    snprintf(p->version, sizeof(p->version), "1.0");
    lamina_device_report *d = lamina_report_add_device(p);
    d->info.index = 0;
    lamina_report_device_set(d, LAMINA_DS_NAME, "Radeon VII");
    lamina_report_device_set(d, LAMINA_DS_ARCH, arch);
    lamina_report_device_set(d, LAMINA_DS_RUNTIME_VERSION, rt_ver);
    lamina_report_device_set(d, LAMINA_DS_DRIVER_VERSION, drv_ver);
    d->selftest_run = 1;
    d->selftest_passed = 1;
}

int main(void)
{
    char why[512];

    /* Versions. */
    OK(cmp("7.2.0", "6.3.60303") > 0, "7.2.0 > 6.3.60303");
    OK(cmp("6.3.60303", "7.2.0") < 0, "6.3.60303 < 7.2.0");
    OK(cmp("1.10", "1.9") > 0, "1.10 > 1.9 (numeric, not lexical)");
    OK(cmp("7.2", "7.2.0") == 0, "7.2 == 7.2.0");
    OK(cmp("22.3.6-1+deb12", "22.3.6") == 0, "suffix ignored");
    OK(cmp("5.2.0-rc1", "5.2.1") < 0, "5.2.0-rc1 < 5.2.1");
    OK(cmp("abc", "1.0") == 99, "non-version refused");
    OK(cmp("", "1.0") == 99, "empty refused");
    OK(cmp("99999999999999999999999", "1") == 99, "overflow refused");
    OK(lamina_version_is_plain("6.3.1") && !lamina_version_is_plain("6.3.") &&
       !lamina_version_is_plain("6..3") && !lamina_version_is_plain("v6"), "plain versions");

    /* Component rules. */
    OK(comp_ok("6.3.1", "6.0.0", LAMINA_RULE_SAME_MAJOR, why, sizeof(why)), "same-major ok");
    OK(!comp_ok("5.2.0", "6.3.60303", LAMINA_RULE_SAME_MAJOR, why, sizeof(why)),
       "same-major violated");
    OK_HAS(why, "component hip-runtime found 5.2.0, built against 6.3.60303: plugin rule same-major",
           "same-major message names both values and the rule");
    OK(comp_ok("6.3.9", "6.3.1", LAMINA_RULE_SAME_MINOR, why, sizeof(why)), "same-minor ok");
    OK(!comp_ok("6.4.0", "6.3.1", LAMINA_RULE_SAME_MINOR, why, sizeof(why)), "same-minor violated");
    OK(comp_ok("7.0", "6.3.60303", LAMINA_RULE_AT_LEAST, why, sizeof(why)), "at-least ok");
    OK(!comp_ok("6.2", "6.3", LAMINA_RULE_AT_LEAST, why, sizeof(why)), "at-least violated");
    OK_HAS(why, "plugin rule at-least", "at-least message");
    OK(comp_ok("1.2.3", "1.2.3.0", LAMINA_RULE_EXACT, why, sizeof(why)), "exact ok");
    OK(!comp_ok("1.2.4", "1.2.3", LAMINA_RULE_EXACT, why, sizeof(why)), "exact violated");
    OK(comp_ok("x", NULL, LAMINA_RULE_PRESENT, why, sizeof(why)), "present ok");
    OK(!comp_ok(NULL, "1.0", LAMINA_RULE_PRESENT, why, sizeof(why)), "present violated");
    OK_HAS(why, "not found", "present message");
    OK(comp_ok(NULL, NULL, LAMINA_RULE_NONE, why, sizeof(why)), "none is informational");
    OK(!comp_ok(NULL, "1.0", LAMINA_RULE_AT_LEAST, why, sizeof(why)), "not found fails at-least");
    OK(!comp_ok("1.0", "1.0", 77, why, sizeof(why)), "unknown rule rejects");

    /* Device rules. */
    lamina_plugin_report p;
    lamina_backend_config bc;
    memset(&bc, 0, sizeof(bc));
    snprintf(bc.name, sizeof(bc.name), "gpu");
    bc.enabled = 1;

    make_plugin(&p, "gfx906:sramecc+:xnack-", "6.3.60303", "6.8.5");
    snprintf(p.code_targets[0], sizeof(p.code_targets[0]), "gfx906");
    snprintf(p.code_targets[1], sizeof(p.code_targets[1]), "gfx90a");
    p.n_code_targets = 2;
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) == 0,
       "arch up to ':' in code targets");
    lamina_report_device_set(&p.devices[0], LAMINA_DS_ARCH, "gfx1030");
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) < 0, "arch not in targets");
    OK_HAS(why, "gpu, device 0 (Radeon VII): arch gfx1030 is not among the plugin's code targets "
           "(gfx906, gfx90a)", "code target message");
    lamina_report_device_set(&p.devices[0], LAMINA_DS_ARCH, "gfx906");
    lamina_report_device_set(&p.devices[0], LAMINA_DS_UNUSABLE, "lacks shaderInt8");
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) < 0, "unusable device");
    OK_HAS(why, "unusable: lacks shaderInt8", "unusable message");
    lamina_report_device_set(&p.devices[0], LAMINA_DS_UNUSABLE, NULL);

    snprintf(bc.min_version, sizeof(bc.min_version), "7.0");
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) < 0, "min_version");
    OK_HAS(why, "runtime_version 6.3.60303 < 7.0: rule [backend.gpu] min_version",
           "min_version message (runtime_version first)");
    bc.min_version[0] = '\0';
    snprintf(bc.max_version, sizeof(bc.max_version), "6.2");
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) < 0, "max_version");
    OK_HAS(why, "runtime_version 6.3.60303 > 6.2: rule [backend.gpu] max_version", "max message");
    bc.max_version[0] = '\0';
    snprintf(bc.deny_versions[0], sizeof(bc.deny_versions[0]), "6.3.60303");
    bc.n_deny_versions = 1;
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) < 0, "deny_versions");
    OK_HAS(why, "= 6.3.60303: rule [backend.gpu] deny_versions", "deny message");
    bc.n_deny_versions = 0;
    lamina_report_device_set(&p.devices[0], LAMINA_DS_RUNTIME_VERSION, NULL);
    snprintf(bc.min_version, sizeof(bc.min_version), "7.0");
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) < 0, "driver_version used");
    OK_HAS(why, "driver_version 6.8.5 < 7.0", "driver_version when no runtime_version");
    bc.min_version[0] = '\0';
    snprintf(bc.allow_arch[0], sizeof(bc.allow_arch[0]), "gfx908");
    bc.n_allow_arch = 1;
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) < 0, "allow_arch");
    OK_HAS(why, "arch gfx906 not in gfx908: rule [backend.gpu] allow_arch", "allow_arch message");
    snprintf(bc.allow_arch[0], sizeof(bc.allow_arch[0]), "gfx906");
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) == 0, "allow_arch hit");
    snprintf(bc.device, sizeof(bc.device), "1");
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) < 0, "device = 1");
    snprintf(bc.device, sizeof(bc.device), "Radeon");
    OK(lamina_rules_device(&p, &p.devices[0], 0, &bc, why, sizeof(why)) == 0, "device by name");

    /* rules_apply: component rule rejects the plugin and its devices. */
    p.components[0] = comp("5.2.0", "6.3.60303", LAMINA_RULE_SAME_MAJOR);
    p.n_components = 1;
    lamina_rules_apply(&p, &bc, 1);
    OK(p.status == LAMINA_STATUS_REJECTED && p.devices[0].status == LAMINA_STATUS_REJECTED,
       "component violation rejects plugin and device");
    OK_HAS(p.devices[0].reason, "gpu, device 0 (Radeon VII): component hip-runtime found 5.2.0",
           "device line names plugin, device, values");
    p.n_components = 0;
    lamina_rules_apply(&p, &bc, 1);
    OK(p.status == LAMINA_STATUS_ACCEPTED && p.devices[0].status == LAMINA_STATUS_ACCEPTED,
       "fixed: accepted again (rules re-evaluated, not sticky)");
    p.devices[0].selftest_passed = 0;
    snprintf(p.devices[0].selftest_msg, sizeof(p.devices[0].selftest_msg), "op add: max error 1");
    lamina_rules_apply(&p, &bc, 1);
    OK(p.devices[0].status == LAMINA_STATUS_REJECTED && p.status == LAMINA_STATUS_REJECTED,
       "failed self-test rejects");
    OK_HAS(p.devices[0].reason, "self-test failed: op add: max error 1", "self-test reason");
    p.devices[0].selftest_passed = 1;
    bc.enabled = 0;
    lamina_rules_apply(&p, &bc, 1);
    OK(p.status == LAMINA_STATUS_DISABLED, "enabled = false disables");
    bc.enabled = 1;
    snprintf(p.failure, sizeof(p.failure), "crash");
    snprintf(p.reason, sizeof(p.reason), "gpu: crashed with SIGSEGV during probe");
    lamina_rules_apply(&p, &bc, 1);
    OK(p.status == LAMINA_STATUS_REJECTED && p.devices[0].status == LAMINA_STATUS_REJECTED,
       "isolation failure rejects everything");
    p.failure[0] = '\0';

    /* JSON round trip. */
    p.devices[0].cases = calloc(1, sizeof(lamina_case_report));
    p.devices[0].n_cases = 1;
    p.devices[0].cases[0].op = LAMINA_OP_ADD;
    p.devices[0].cases[0].max_err = 0.25;
    snprintf(p.devices[0].cases[0].name, sizeof(p.devices[0].cases[0].name), "add f32");
    snprintf(p.notes[0], sizeof(p.notes[0]), "bad utf8 \xff here");
    p.n_notes = 1;
    json_t *j = lamina_report_plugin_json(&p);
    OK(j != NULL, "to json");
    lamina_plugin_report q;
    memset(&q, 0, sizeof(q));
    char err[256] = "";
    int rc = lamina_report_plugin_parse(j, &q, err, sizeof(err));
    OK(rc == 0, "parse back (%s)", err);
    OK(q.n_devices == 1 && q.devices[0].info.name != NULL &&
       strcmp(q.devices[0].info.name, "Radeon VII") == 0 && q.devices[0].info.runtime_version == NULL &&
       q.devices[0].n_cases == 1 && q.devices[0].cases[0].max_err == 0.25 &&
       strcmp(q.name, "gpu") == 0, "round trip keeps fields (NULL stays NULL)");
    OK(strcmp(q.notes[0], "bad utf8 ? here") == 0, "invalid UTF-8 replaced");
    json_decref(j);
    lamina_report_plugin_clear(&q);
    lamina_report_plugin_clear(&p);

    json_t *bad = json_pack("{s:i}", "name", 3);
    memset(&q, 0, sizeof(q));
    OK(lamina_report_plugin_parse(bad, &q, err, sizeof(err)) < 0, "wrong type refused");
    json_decref(bad);
    lamina_report_plugin_clear(&q);
    return tap_done();
}
