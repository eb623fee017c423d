/* rules.c - plugin-declared and user rules (see rules.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules.h"
#include "version.h"

const char *lamina_rule_name(uint32_t rule)
{
    switch (rule) {
    case LAMINA_RULE_NONE: return "none";
    case LAMINA_RULE_SAME_MAJOR: return "same-major";
    case LAMINA_RULE_SAME_MINOR: return "same-minor";
    case LAMINA_RULE_AT_LEAST: return "at-least";
    case LAMINA_RULE_EXACT: return "exact";
    case LAMINA_RULE_PRESENT: return "present";
    default: return "unknown";
    }
}

int lamina_rule_check_component(const lamina_component_report *c, char *why, size_t why_size)
{
    const char *found = c->found[0] ? c->found : NULL;
    const char *built = c->built[0] ? c->built : NULL;
    const char *rn = lamina_rule_name(c->rule);
    lamina_version vf, vb;
    int depth = 0;

    switch (c->rule) {
    case LAMINA_RULE_NONE:
        return 0;
    case LAMINA_RULE_PRESENT:
        if (found == NULL)
            return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                                  "component %s not found%s%s: plugin rule present", c->name,
                                  built ? ", built against " : "", built ? built : "");
        return 0;
    case LAMINA_RULE_SAME_MAJOR: depth = 1; break;
    case LAMINA_RULE_SAME_MINOR: depth = 2; break;
    case LAMINA_RULE_AT_LEAST:
    case LAMINA_RULE_EXACT: depth = 0; break;
    default:
        return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                              "component %s declares unknown rule %u", c->name, c->rule);
    }
    if (found == NULL)
        return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                              "component %s not found, built against %s: plugin rule %s",
                              c->name, built ? built : "(none)", rn);
    if (built == NULL)
        return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                              "component %s found %s, but the plugin gives no built-against "
                              "version for its rule %s", c->name, found, rn);
    if (lamina_version_parse(found, &vf) < 0 || lamina_version_parse(built, &vb) < 0)
        return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                              "component %s found '%s', built against '%s': not comparable "
                              "versions for plugin rule %s", c->name, found, built, rn);
    int cmp = lamina_version_cmp_parsed(&vf, &vb, depth);
    int ok = c->rule == LAMINA_RULE_AT_LEAST ? cmp >= 0 : cmp == 0;
    if (!ok)
        return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                              "component %s found %s, built against %s: plugin rule %s",
                              c->name, found, built, rn);
    return 0;
}

const char *lamina_rule_device_version(const lamina_device_info *info, const char **field)
{
    if (info->runtime_version != NULL && info->runtime_version[0]) {
        *field = "runtime_version";
        return info->runtime_version;
    }
    if (info->driver_version != NULL && info->driver_version[0]) {
        *field = "driver_version";
        return info->driver_version;
    }
    *field = "version";
    return NULL;
}

/* The arch up to the first ':' ("gfx906:sramecc+:xnack-" -> "gfx906"). */
static void arch_base(const char *arch, char *out, size_t size)
{
    snprintf(out, size, "%s", arch ? arch : "");
    char *colon = strchr(out, ':');
    if (colon != NULL)
        *colon = '\0';
}

static void join(char *out, size_t size, const char *items, size_t stride, int n)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n && o + 1 < size; i++) {
        int w = snprintf(out + o, size - o, "%s%s", i ? ", " : "", items + (size_t)i * stride);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (o >= size)
        out[size - 1] = '\0';
}

static int device_selected(const lamina_device_report *d, const char *sel)
{
    if (sel == NULL || sel[0] == '\0')
        return 1;
    char *end;
    long idx = strtol(sel, &end, 10);
    if (*end == '\0' && end != sel)
        return idx == (long)d->info.index;
    return d->info.name != NULL && strstr(d->info.name, sel) != NULL;
}

int lamina_rules_device(const lamina_plugin_report *p, const lamina_device_report *d,
                        int device_pos, const lamina_backend_config *bc,
                        char *why, size_t why_size)
{
    char who[400];
    char base[64];
    char list[512];
    const char *pname = p->name[0] ? p->name : "?";
    snprintf(who, sizeof(who), "%s, device %u (%s)", pname, d->info.index,
             d->info.name ? d->info.name : "unnamed");

    /* 2. The plugin's own rules. */
    for (int i = 0; i < p->n_components; i++) {
        char line[512];
        if (lamina_rule_check_component(&p->components[i], line, sizeof(line)) < 0)
            return lamina_set_err(why, why_size, LAMINA_EREJECTED, "%s: %s", who, line);
    }
    if (d->info.unusable != NULL)
        return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                              "%s: unusable: %s (reported by the plugin)", who, d->info.unusable);
    if (p->n_code_targets > 0) {
        arch_base(d->info.arch, base, sizeof(base));
        int hit = 0;
        for (int i = 0; i < p->n_code_targets && !hit; i++)
            hit = strcmp(p->code_targets[i], base) == 0;
        if (!hit) {
            join(list, sizeof(list), p->code_targets[0], sizeof(p->code_targets[0]),
                 p->n_code_targets);
            return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                                  "%s: arch %s is not among the plugin's code targets (%s): "
                                  "plugin rule code_targets", who,
                                  base[0] ? base : "(none)", list);
        }
    }
    if (bc == NULL)
        return 0;

    /* 3. The user's rules. */
    const char *sec = p->name[0] ? p->name : "?";
    if (!device_selected(d, bc->device))
        return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                              "%s: not selected: rule [backend.%s] device = %s",
                              who, sec, bc->device);
    if (bc->n_allow_arch > 0) {
        arch_base(d->info.arch, base, sizeof(base));
        int hit = 0;
        for (int i = 0; i < bc->n_allow_arch && !hit; i++)
            hit = strcmp(bc->allow_arch[i], base) == 0 ||
                  (d->info.arch != NULL && strcmp(bc->allow_arch[i], d->info.arch) == 0);
        if (!hit) {
            join(list, sizeof(list), bc->allow_arch[0], sizeof(bc->allow_arch[0]),
                 bc->n_allow_arch);
            return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                                  "%s: arch %s not in %s: rule [backend.%s] allow_arch", who,
                                  base[0] ? base : "(none)", list, sec);
        }
    }
    if (bc->min_version[0] || bc->max_version[0] || bc->n_deny_versions > 0) {
        const char *field;
        const char *ver = lamina_rule_device_version(&d->info, &field);
        lamina_version v;
        if (ver == NULL || lamina_version_parse(ver, &v) < 0)
            return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                                  "%s: %s '%s' is not a version, cannot check rule "
                                  "[backend.%s] %s", who, field, ver ? ver : "(none)", sec,
                                  bc->min_version[0] ? "min_version" :
                                  bc->max_version[0] ? "max_version" : "deny_versions");
        lamina_version lim;
        if (bc->min_version[0] && lamina_version_parse(bc->min_version, &lim) == 0 &&
            lamina_version_cmp_parsed(&v, &lim, 0) < 0)
            return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                                  "%s: %s %s < %s: rule [backend.%s] min_version", who, field,
                                  ver, bc->min_version, sec);
        if (bc->max_version[0] && lamina_version_parse(bc->max_version, &lim) == 0 &&
            lamina_version_cmp_parsed(&v, &lim, 0) > 0)
            return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                                  "%s: %s %s > %s: rule [backend.%s] max_version", who, field,
                                  ver, bc->max_version, sec);
        for (int i = 0; i < bc->n_deny_versions; i++) {
            if (lamina_version_parse(bc->deny_versions[i], &lim) == 0 &&
                lamina_version_cmp_parsed(&v, &lim, 0) == 0)
                return lamina_set_err(why, why_size, LAMINA_EREJECTED,
                                      "%s: %s %s = %s: rule [backend.%s] deny_versions", who,
                                      field, ver, bc->deny_versions[i], sec);
        }
    }
    return 0;
}

void lamina_rules_apply(lamina_plugin_report *p, const lamina_backend_config *bc,
                        int require_selftest)
{
    char line[512];

    /* 1. Isolation failures: the plugin's reason is already set. */
    if (p->failure[0] != '\0') {
        p->status = LAMINA_STATUS_REJECTED;
        for (int i = 0; i < p->n_devices; i++) {
            p->devices[i].status = LAMINA_STATUS_REJECTED;
            snprintf(p->devices[i].reason, sizeof(p->devices[i].reason), "%s", p->reason);
        }
        return;
    }
    p->status = LAMINA_STATUS_ACCEPTED;
    p->reason[0] = '\0';

    /* Component rules reject the plugin as a whole. */
    for (int i = 0; i < p->n_components; i++) {
        if (lamina_rule_check_component(&p->components[i], line, sizeof(line)) < 0) {
            p->status = LAMINA_STATUS_REJECTED;
            snprintf(p->reason, sizeof(p->reason), "%s: %s", p->name, line);
            break;
        }
    }
    if (p->status == LAMINA_STATUS_ACCEPTED && bc != NULL && !bc->enabled) {
        p->status = LAMINA_STATUS_DISABLED;
        snprintf(p->reason, sizeof(p->reason), "%s: disabled by [backend.%s] enabled = false",
                 p->name, p->name);
    }

    int usable = 0;
    for (int i = 0; i < p->n_devices; i++) {
        lamina_device_report *d = &p->devices[i];
        d->reason[0] = '\0';
        if (lamina_rules_device(p, d, i, bc, line, sizeof(line)) < 0) {
            d->status = LAMINA_STATUS_REJECTED;
            snprintf(d->reason, sizeof(d->reason), "%s", line);
            continue;
        }
        if (p->status == LAMINA_STATUS_DISABLED) {
            d->status = LAMINA_STATUS_DISABLED;
            snprintf(d->reason, sizeof(d->reason), "%s", p->reason);
            continue;
        }
        /* 4. The self-test. */
        if (d->selftest_run && !d->selftest_passed) {
            d->status = LAMINA_STATUS_REJECTED;
            snprintf(d->reason, sizeof(d->reason), "%s, device %u (%s): self-test failed: %s",
                     p->name, d->info.index, d->info.name ? d->info.name : "unnamed",
                     d->selftest_msg[0] ? d->selftest_msg : "no detail");
            continue;
        }
        if (!d->selftest_run && require_selftest) {
            d->status = LAMINA_STATUS_REJECTED;
            snprintf(d->reason, sizeof(d->reason), "%s, device %u (%s): self-test did not run%s%s",
                     p->name, d->info.index, d->info.name ? d->info.name : "unnamed",
                     d->selftest_msg[0] ? ": " : "", d->selftest_msg);
            continue;
        }
        d->status = LAMINA_STATUS_ACCEPTED;
        usable++;
    }
    if (p->status == LAMINA_STATUS_ACCEPTED && usable == 0) {
        p->status = LAMINA_STATUS_REJECTED;
        if (p->n_devices == 0)
            snprintf(p->reason, sizeof(p->reason), "%s: no device found", p->name);
        else
            snprintf(p->reason, sizeof(p->reason), "%s: no usable device (%s)", p->name,
                     p->devices[0].reason);
    }
}
