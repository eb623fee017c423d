/*
 * ollama_store.h - models in an Ollama model store, read in place.
 *
 * A store is the directory Ollama keeps models in: $OLLAMA_MODELS, else
 * ~/.ollama/models, else the Linux service's /usr/share/ollama/.ollama/models,
 * plus [model] ollama_stores of lamina.ini.  Each model is an OCI image
 * manifest at manifests/HOST/NAMESPACE/MODEL/TAG (JSON: schemaVersion,
 * config, layers of {mediaType, digest, size}) whose layers are files
 * blobs/sha256-HEX.  The layer of media type application/vnd.ollama.image.model
 * is the GGUF file, used where it lies (never copied).  Nothing in a store is
 * ever written here; `lamina pull` (pull.h) and the store's writers
 * (store.h: uploads, create, copy, delete) write lamina's own store only.
 *
 * Names as Ollama's: MODEL[:TAG], NAMESPACE/MODEL[:TAG] or
 * HOST/NAMESPACE/MODEL[:TAG], with registry.ollama.ai, library and latest
 * implied.  Each part is letters, digits, '_', '-' and '.', starting with a
 * letter, digit or '_', never "..", at most 80 bytes; the whole name at most
 * 120.  A model is shown by its shortest name ("qwen2.5:7b-instruct",
 * "user/model:latest").
 *
 * Refused, with the reason: a projector layer (vision models) or an adapter
 * layer (LoRA), a manifest larger than 1 MiB or not valid JSON, a digest
 * other than sha256: and 64 lowercase hex digits, a blob missing or of
 * another size than the manifest says.
 *
 * Internal to liblamina.
 */
#ifndef LAMINA_OLLAMA_STORE_H
#define LAMINA_OLLAMA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "lamina/lamina.h"

#define LAMINA_MAX_STORES (LAMINA_MAX_PATHS + 3)

/* The store directories to look in, existing or not: lamina's own (see
 * lamina_ollama_own_store), the config's, then $OLLAMA_MODELS (or
 * ~/.ollama/models), then the service's.  Returns how many (at most
 * LAMINA_MAX_STORES). */
int lamina_ollama_stores(const lamina_config *cfg, char dirs[][4096]);

/* lamina's own store, the one `lamina pull` writes (same layout): [model]
 * store, else $XDG_DATA_HOME/lamina/store, else ~/.local/share/lamina/store.
 * 0, or LAMINA_ENOENT when there is neither a setting nor a home. */
int lamina_ollama_own_store(const lamina_config *cfg, char dir[4096]);

/* Split a valid name into its parts, the implied ones filled in (each
 * buffer at least 81 bytes).  1, or 0 for an invalid name. */
int lamina_ollama_name_parts(const char *name, char *host, char *ns, char *model, char *tag);

/* 1 when d is "sha256:" and 64 lowercase hex digits. */
int lamina_ollama_digest_valid(const char *d);

typedef struct lamina_ollama_model {
    char name[128];          /* shortest name, tag included */
    char model[4200];        /* the GGUF blob's path */
    char digest[72];         /* "sha256:..." of the model layer */
    uint64_t size;           /* of the model layer */
    char template_path[4200], system_path[4200], params_path[4200];   /* "" when absent */
    char broken[600];        /* lamina_ollama_list: why the model cannot be used, or "" */
} lamina_ollama_model;

/* What a model name looks like, for the error lines that refuse one. */
#define LAMINA_OLLAMA_NAME_FORM \
    "[host[:port]/][namespace/]model[:tag], each part letters, digits, '_', '-' and '.'"

/* 1 when `name` is a valid Ollama name (see above). */
int lamina_ollama_name_valid(const char *name);

/* Find a model by name in the stores.  LAMINA_ENOENT when no store has the
 * name (err says so), LAMINA_EINVAL for a malformed name, LAMINA_EFORMAT for
 * a broken manifest or blob and LAMINA_ENOTSUP for a layer lamina cannot
 * use (err names the file and the reason). */
int lamina_ollama_find(char dirs[][4096], int n_dirs, const char *name, lamina_ollama_model *out,
                       char *err, size_t err_size);

/* lamina_ollama_find in the stores of cfg (lamina_ollama_stores): the
 * GGUF blob's path into path, the shortest name into name (may be NULL). */
int lamina_ollama_resolve(const lamina_config *cfg, const char *model_name, char *path, size_t path_size,
                          char *name, size_t name_size, char *err, size_t err_size);

/* One layer (or the config) of an image manifest. */
typedef struct lamina_ollama_layer {
    char     media_type[128];
    char     digest[72];         /* "sha256:" and 64 lowercase hex digits */
    uint64_t size;
} lamina_ollama_layer;

#define LAMINA_OLLAMA_MAX_LAYERS 256
#define LAMINA_OLLAMA_MAX_MANIFEST (1u << 20)
#define LAMINA_OLLAMA_MAX_BLOB (UINT64_C(1) << 44)   /* 16 TiB: beyond is a broken manifest */

/* An image manifest: its config (has_config 0 when it has none) and
 * layers in order, each digest valid, each size at most
 * LAMINA_OLLAMA_MAX_BLOB, a digest named twice with the same size only
 * (kept once). */
typedef struct lamina_ollama_manifest {
    int has_config;
    lamina_ollama_layer config;
    lamina_ollama_layer *layers;  /* malloc'd; lamina_ollama_manifest_free */
    int n_layers;
} lamina_ollama_manifest;

/* Parse manifest JSON (at most LAMINA_OLLAMA_MAX_MANIFEST bytes, at least
 * one and fewer than LAMINA_OLLAMA_MAX_LAYERS layers).  0, or
 * LAMINA_EFORMAT with err naming what is wrong (the caller says where the
 * manifest came from), LAMINA_ENOMEM.  *out is zeroed on failure. */
int  lamina_ollama_manifest_parse(const char *text, size_t len, lamina_ollama_manifest *out,
                                  char *err, size_t err_size);
void lamina_ollama_manifest_free(lamina_ollama_manifest *m);

/* The manifest path of a valid name in a store:
 * STORE/manifests/HOST/NAMESPACE/MODEL/TAG.  0, or LAMINA_EINVAL (the
 * name) / LAMINA_ERANGE (too long) with err set. */
int  lamina_ollama_manifest_path(const char *store, const char *name, char *out, size_t size,
                                 char *err, size_t err_size);

/* Every model of the stores (the first store naming a model wins); fn
 * returns nonzero to stop.  A broken one (manifest unreadable or refused,
 * blob missing or of the wrong size, a layer lamina cannot use) comes
 * with its name and m->broken set to the reason. */
void lamina_ollama_list(char dirs[][4096], int n_dirs,
                        int (*fn)(void *ctx, const lamina_ollama_model *m), void *ctx);

#endif
