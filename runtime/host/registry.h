/*
 * registry.h - internals of lamina_runtime (lamina.h) that the CLI shows.
 *
 * lamina_runtime_open: resolve the config, discover candidates
 * (discover.h), take each one's probe report from the cache (cache.h) or
 * from an isolated probe (probe.h), then apply the rules (rules.h) and order
 * the eligible devices:
 *   - [scheduler] backends = auto (or $LAMINA_BACKENDS=auto): by self-test
 *     score (MUL_MAT GFLOP/s), highest first, ties in discovery order;
 *   - an explicit list: the listed plugins' devices in list order; accepted
 *     plugins missing from the list are DISABLED.
 * Two candidates with the same plugin name: the first found wins, later
 * ones are DISABLED as shadowed.  Internal to liblamina.
 */
#ifndef LAMINA_REGISTRY_H
#define LAMINA_REGISTRY_H

#include "lamina/lamina.h"
#include "discover.h"

/* The plugin directories searched, with their status. */
int lamina_runtime_dir_count(const lamina_runtime *rt);
const lamina_plugin_dir *lamina_runtime_dir(const lamina_runtime *rt, int i);

/* Where the probe cache lives ("" when disabled) and the helper used. */
const char *lamina_runtime_cache_dir(const lamina_runtime *rt);
const char *lamina_runtime_helper(const lamina_runtime *rt);

#endif
