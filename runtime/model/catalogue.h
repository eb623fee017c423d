/*
 * catalogue.h - short model names to files.
 *
 * The catalogue (models/catalogue.ini, installed as
 * DATADIR/models/catalogue.ini; $LAMINA_CATALOGUE overrides) has one
 * section per model: file name, where it comes from, size and SHA-256.
 * A name is looked up in the model directories: [model] dirs from the
 * configuration, then $LAMINA_MODELS, $XDG_DATA_HOME/lamina/models
 * (~/.local/share/lamina/models), DATADIR/models.  The size is checked on
 * every use, the SHA-256 on first use (remembered in the cache directory by
 * file identity).  Internal to liblamina.
 */
#ifndef LAMINA_CATALOGUE_H
#define LAMINA_CATALOGUE_H

#include <stddef.h>
#include <stdint.h>

#include "lamina/lamina.h"

typedef struct lamina_catalogue_entry {
    char name[64];
    char file[256];
    char source[256];
    char description[256];
    char sha256[65];
    uint64_t size;
} lamina_catalogue_entry;

/* Resolve a catalogue name or a path to a readable, verified model file.
 * Writes the path into path_out.  Errors say what was looked for where:
 * "model 'gemma3-270m' (gemma-3-270m-q4_k_m.gguf) not found in: ...;
 * run ./setup.sh or see models/README.md". */
int lamina_model_resolve(const lamina_config *cfg, const char *name_or_path,
                         char *path_out, size_t path_size, char *err, size_t err_size);

/* Look a name up in the catalogue file. LAMINA_ENOENT when absent. */
int lamina_catalogue_find(const char *name, lamina_catalogue_entry *out, char *err, size_t err_size);

/* SHA-256 of a file as 64 hex digits. */
int lamina_sha256_file(const char *path, char hex[65], char *err, size_t err_size);

#endif
