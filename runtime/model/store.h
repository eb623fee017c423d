/*
 * store.h - writing lamina's own model store ([model] store, see
 * ollama_store.h for the layout): blobs taken in while they stream and are
 * hashed, small blobs written whole, blobs of another store linked or
 * copied in, manifests written atomically, models removed with the blobs
 * no other manifest of the store uses.  Never an Ollama store of
 * [model] ollama_stores: the callers pass lamina's own store only.
 *
 * Every file is written under a unique temporary name in its directory
 * (a dot name or one ending in "-partial": never a blob or a tag) and
 * renamed into place, so concurrent writers of one blob or one manifest
 * never leave a torn file; the last rename wins, and both had the same
 * bytes for a blob.  Writing manifests and removing blobs take the store's
 * lock (STORE/.lock, flock, and a mutex within the process), so a blob a
 * new manifest names is never removed between its check and the manifest.
 *
 * Part of the lamina program (needs libcrypto), not of liblamina.  All
 * functions return 0 or a negative LAMINA_E* code with one line in err.
 */
#ifndef LAMINA_STORE_H
#define LAMINA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "ollama_store.h"

/* Media types of Ollama's layers and of the config. */
#define LAMINA_MT_MODEL    "application/vnd.ollama.image.model"
#define LAMINA_MT_TEMPLATE "application/vnd.ollama.image.template"
#define LAMINA_MT_SYSTEM   "application/vnd.ollama.image.system"
#define LAMINA_MT_PARAMS   "application/vnd.ollama.image.params"
#define LAMINA_MT_LICENSE  "application/vnd.ollama.image.license"
#define LAMINA_MT_CONFIG   "application/vnd.docker.container.image.v1+json"
#define LAMINA_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* 64 lowercase hex digits of a SHA-256 (md: 32 bytes). */
void lamina_store_hex(const unsigned char *md, char hex[65]);

/* mkdir -p. */
int lamina_store_mkdirs(const char *path, char *err, size_t err_size);

/* STORE/blobs/sha256-HEX of a valid digest (LAMINA_EINVAL otherwise). */
int lamina_store_blob_path(const char *store, const char *digest, char *out, size_t size,
                           char *err, size_t err_size);

/* Size of the blob in the store, or -1 when it is not there. */
int64_t lamina_store_blob_size(const char *store, const char *digest);

/* Write manifest bytes as the manifest of `name` (validated), atomically,
 * under the store's lock.  When check is nonzero the manifest is parsed
 * and every blob it names must be in the store with its size (under the
 * same lock: LAMINA_ENOENT naming the blob otherwise). */
int lamina_store_write_manifest(const char *store, const char *name, const char *text, size_t len, int check,
                                char *err, size_t err_size);

/* A blob streamed in: begin (digest validated; expect is the announced
 * size, 0 when unknown, checked against the free space), write any number
 * of pieces (hashed as they come), then finish (the SHA-256 must be the
 * digest: LAMINA_EFORMAT "digest mismatch: expected sha256:..., got
 * sha256:..." otherwise, the temporary file removed; else renamed into
 * place) or abort.  finish and abort free u. */
typedef struct lamina_store_upload lamina_store_upload;
int  lamina_store_upload_begin(const char *store, const char *digest, uint64_t expect, lamina_store_upload **out,
                               char *err, size_t err_size);
int  lamina_store_upload_write(lamina_store_upload *u, const void *data, size_t n, char *err, size_t err_size);
int  lamina_store_upload_finish(lamina_store_upload *u, char *err, size_t err_size);
void lamina_store_upload_abort(lamina_store_upload *u);
/* Bytes written so far. */
uint64_t lamina_store_upload_size(const lamina_store_upload *u);

/* A small blob from memory; its digest into digest (72 bytes).  0 when
 * written, 1 when the store had it. */
int lamina_store_blob_put(const char *store, const void *data, size_t n, char digest[72], char *err, size_t err_size);

/* The blob `digest` of `size` bytes at src (another store's) into this
 * store: kept when there, else a hard link, else a copy whose SHA-256 is
 * checked. */
int lamina_store_blob_adopt(const char *store, const char *src, const char *digest, uint64_t size,
                            char *err, size_t err_size);

/* Read the manifest of `name` from the store (LAMINA_ENOENT when it has
 * none; LAMINA_EFORMAT naming the file when broken).  *text (may be NULL)
 * gets the bytes, malloc'd, caller frees. */
int lamina_store_read_manifest(const char *store, const char *name, lamina_ollama_manifest *m, char **text,
                               size_t *len, char *err, size_t err_size);

/* The manifest of `name` from the first of dirs (the stores in order,
 * lamina's own among them or not) that has one, its blobs brought into
 * `store` (lamina_store_blob_adopt) when it came from another; *text (may
 * be NULL) gets its bytes (malloc'd, caller frees), *from (may be NULL)
 * the index of that store.  LAMINA_ENOENT when no store has it. */
int lamina_store_import(const char *store, char dirs[][4096], int n_dirs, const char *name,
                        lamina_ollama_manifest *m, char **text, size_t *len, int *from, char *err, size_t err_size);

/* The index of the first of dirs with a manifest for `name`, or -1. */
int lamina_store_which(char dirs[][4096], int n_dirs, const char *name);

/* A small layer's blob (template, system, params, license: at most 1 MiB),
 * NUL-terminated; NULL when too big or unreadable.  Caller frees. */
char *lamina_store_read_layer(const char *store, const lamina_ollama_layer *l);

/* Remove the manifest of `name` (LAMINA_ENOENT when the store has none),
 * then the blobs it named (config and layers) that no other manifest of
 * the store names; *removed (may be NULL) gets how many.  A manifest of
 * the store that cannot be read keeps every blob (nothing is removed but
 * the manifest). */
int lamina_store_delete(const char *store, const char *name, int *removed, char *err, size_t err_size);

/* A GGUF file as a model layer: hashed, then linked into the store (a
 * copy only when the store is on another file system); l gets its
 * digest, size and media type. */
int lamina_store_add_file(const char *store, const char *path, lamina_ollama_layer *l, char *err, size_t err_size);

/* What lamina_store_create makes a model of.  layers: the base model's
 * layers (its model layer among them, in the store already).  tmpl and
 * system (NULL: the base's) replace the base's layers of that kind;
 * params_json (a JSON object's text, or NULL) is merged over the base's
 * params layer; licenses (when set_licenses) replace the base's.
 * ftype_name (may be NULL) names general.file_type for the config. */
typedef struct lamina_store_recipe {
    const lamina_ollama_layer *layers;
    int n_layers;
    const char *tmpl, *system, *params_json;
    const char *const *licenses;
    int n_licenses, set_licenses;
    const char *what;                         /* the model's source, for errors ("from: x.gguf") */
    const char *(*ftype_name)(int64_t ft);
    void (*status)(void *ud, const char *line);   /* Ollama's status lines, in order (may be NULL) */
    void *ud;
} lamina_store_recipe;

/* Write the model `name` (validated by the caller): the model layer
 * checked as a GGUF lamina reads, the small layers, the config blob,
 * the manifest.  LAMINA_EINVAL for a recipe that does not make a model
 * (no model layer, not a GGUF, bad params), LAMINA_ENOENT or
 * LAMINA_EFORMAT when the manifest's blobs are not in the store, other
 * codes for I/O. */
int lamina_store_create(const char *store, const char *name, const lamina_store_recipe *r, char *err, size_t err_size);

#endif
