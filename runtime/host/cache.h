/*
 * cache.h - probe results kept between runs.
 *
 * One JSON file per plugin file, DIR/probe-<hash of the plugin path>.json,
 * DIR being [plugins] cache_dir, else $XDG_CACHE_HOME/lamina, else
 * ~/.cache/lamina.  An entry holds the probe report as the helper gave it
 * (before rules, which are applied afresh on every start) and its key:
 *   - the identity (device, inode, size, mtime in ns) of the plugin file, of
 *     the probe helper, and of every file the plugin reported through
 *     component(path) or file(path) (a file that was missing must still be
 *     missing);
 *   - the backend's env settings, the probe timeout, whether the self-test
 *     ran, the lamina version and the host ABI.
 * Any difference is a miss, so a stale verdict never outlives a change of
 * a file it depended on.  Entries are written to a temporary file and
 * renamed into place; an unreadable or corrupt entry is ignored (with a
 * warning) and rewritten.  Internal to liblamina.
 */
#ifndef LAMINA_CACHE_H
#define LAMINA_CACHE_H

#include <stddef.h>

#include "lamina/lamina.h"
#include "log.h"
#include "probe.h"

typedef struct lamina_cache_key {
    const char *plugin_path;    /* as discovered */
    const char *helper_path;
    const lamina_backend_config *bc; /* env; may be NULL */
    int timeout_ms;
    int selftest;               /* 1 when the entry must include the self-test */
} lamina_cache_key;

/* The cache directory for cfg into `out`; LAMINA_ENOENT when none can be
 * determined (no $XDG_CACHE_HOME and no home directory). */
int lamina_cache_dir(const lamina_config *cfg, char *out, size_t size);

/* Look up an entry.  Returns 1 and fills `out` (zeroed by the caller; owns
 * its devices afterwards) on a hit, 0 on a miss. */
int lamina_cache_lookup(const char *dir, const lamina_cache_key *key,
                        lamina_plugin_report *out, const lamina_logger *lg);

/* Store an entry atomically.  0, or negative with err set (the caller
 * warns; a cache that cannot be written is not fatal). */
int lamina_cache_store(const char *dir, const lamina_cache_key *key,
                       const lamina_plugin_report *rep, const lamina_probe_files *files,
                       char *err, size_t err_size);

#endif
