/*
 * discover.h - find candidate plugin files, refusing unsafe ones.
 *
 * The directories are lamina_config.plugin_path, in order ($LAMINA_PLUGIN_PATH
 * entries first, then the [plugins] path list or the built-in directory).
 * The working directory is never searched; relative entries are refused.
 * Every regular `*.so` (not starting with '.') in a directory is a candidate,
 * in name order.  Loading a shared object runs its code, so:
 *   - a directory that is writable by group or others, or owned by neither
 *     root nor the current user, is skipped with a warning;
 *   - a file that is writable by group or others, owned by neither root nor
 *     the current user, not a regular file, or a symlink that resolves
 *     outside its directory is refused: it becomes a candidate with
 *     `refused` set and the reason, and is never probed.
 * Internal to liblamina.
 */
#ifndef LAMINA_DISCOVER_H
#define LAMINA_DISCOVER_H

#include <stddef.h>

#include "lamina/lamina.h"
#include "log.h"

typedef struct lamina_candidate {
    char path[4096];            /* DIR/NAME.so as found */
    char real[4096];            /* resolved file (symlinks followed) */
    char stem[64];              /* NAME */
    int  refused;               /* 1: never probe; see why */
    char why[512];
} lamina_candidate;

typedef struct lamina_plugin_dir {
    char path[4096];
    char status[512];           /* "ok", "missing", or "refused: why" */
} lamina_plugin_dir;

/* Scan cfg's directories.  *cands and *dirs are malloc'd arrays owned by
 * the caller (free()).  Warnings go to `lg`.  0 or LAMINA_ENOMEM. */
int lamina_discover(const lamina_config *cfg, const lamina_logger *lg,
                    lamina_candidate **cands, int *n_cands,
                    lamina_plugin_dir **dirs, int *n_dirs,
                    char *err, size_t err_size);

/* Check one file the way discovery does (owner, mode, symlink target
 * inside `path`'s directory, and the directory itself) and fill `c`.
 * Used for an explicit file (plugin-check).  Returns 0; c->refused says. */
int lamina_discover_file(const char *path, lamina_candidate *c);

#endif
