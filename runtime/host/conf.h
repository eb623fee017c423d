/*
 * conf.h - internal helpers beside the public lamina_config_* API
 * (lamina/lamina.h).  Internal to liblamina.
 */
#ifndef LAMINA_RUNTIME_CONFIG_H
#define LAMINA_RUNTIME_CONFIG_H

#include "lamina/lamina.h"

/* getenv that returns NULL in a privileged process (set-user-ID,
 * capabilities: AT_SECURE), so that environment overrides cannot steer a
 * privileged lamina.  Every environment look-up of the core goes here. */
const char *lamina_env_get(const char *name);

/* Parse the INI text in `text` (as if read from `name`) over `cfg`.  Same
 * errors as lamina_config_load.  For tests and in-memory configs. */
int lamina_config_load_string(lamina_config *cfg, const char *text, const char *name,
                              char *err, size_t err_size);

/* Parse a [scheduler] backends value ("auto" or a comma-separated list of
 * plugin names) into cfg.  0 or LAMINA_EINVAL with a message saying why
 * (no "FILE:LINE" prefix). */
int lamina_config_set_backends(lamina_config *cfg, const char *value,
                               char *err, size_t err_size);

/* Number of host cores online (>= 1). */
int lamina_config_core_count(void);

#endif
