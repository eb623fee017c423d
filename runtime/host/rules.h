/*
 * rules.h - which plugins and devices may be used.
 *
 * Applied to a probe report (fresh or cached) before selection, in order:
 *   1. isolation failures (the helper crashed, hung, ... : the plugin's
 *      `failure` is set) reject the plugin and every device;
 *   2. the plugin's own declared rules: every component reported through
 *      lamina_probe_sink.component with its lamina_version_rule (a violation
 *      rejects the whole plugin), the descriptor's code_targets against each
 *      device's arch up to the first ':', and a device's `unusable` text;
 *   3. the user's [backend.NAME] rules: enabled, device, allow_arch,
 *      min_version, max_version, deny_versions.  min/max/deny apply to the
 *      device's runtime_version when the plugin reports one, else to its
 *      driver_version;
 *   4. the self-test: a device whose self-test did not pass is rejected.
 * Each rejection is one line naming plugin, device, the values that
 * disagreed and the rule.  Internal to liblamina.
 */
#ifndef LAMINA_RULES_H
#define LAMINA_RULES_H

#include <stddef.h>

#include "lamina/lamina.h"

/* "same-major", "at-least", ...; "none" for 0, "unknown" otherwise. */
const char *lamina_rule_name(uint32_t rule);

/* Evaluate one declared component rule.  0 when satisfied, else
 * LAMINA_EREJECTED with `why` = "component hip-runtime found 5.2.0,
 * built against 6.3.60303: plugin rule same-major". */
int lamina_rule_check_component(const lamina_component_report *c, char *why, size_t why_size);

/* The version the INI min/max/deny rules look at: runtime_version when set,
 * else driver_version; NULL when neither is.  *field names which. */
const char *lamina_rule_device_version(const lamina_device_info *info, const char **field);

/* Steps 2 and 3 for one device (step 1 and 4 are the caller's).  0 when
 * accepted, else LAMINA_EREJECTED with the one-line reason in `why`.
 * `bc` may be NULL (no user rules).  `device_pos` is the device's position
 * in the report (used for "device = N" selection). */
int lamina_rules_device(const lamina_plugin_report *p, const lamina_device_report *d,
                        int device_pos, const lamina_backend_config *bc,
                        char *why, size_t why_size);

/* Apply all four steps to `p`, setting status and reason of the plugin and
 * of each device.  `bc` may be NULL.  `require_selftest`: 0 accepts devices
 * whose self-test was not run (probe-only mode). */
void lamina_rules_apply(lamina_plugin_report *p, const lamina_backend_config *bc,
                        int require_selftest);

#endif
