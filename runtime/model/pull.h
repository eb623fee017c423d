/*
 * pull.h - fetch a model from a registry into lamina's own store.
 *
 * The registry protocol is the OCI distribution one that Ollama's registry
 * speaks: GET BASE/v2/NAMESPACE/MODEL/manifests/TAG (an image manifest,
 * at most 1 MiB), then GET BASE/v2/NAMESPACE/MODEL/blobs/DIGEST for the
 * config and each layer.  A 401 with "WWW-Authenticate: Bearer realm=...,
 * service=..., scope=..." is answered by fetching a token from the realm
 * ({"token": ...} or {"access_token": ...}) and retrying with
 * "Authorization: Bearer TOKEN".  BASE is [model] registry for names on
 * registry.ollama.ai (the default host) and https://HOST otherwise
 * (http://HOST when insecure).
 *
 * The store gets Ollama's layout (see ollama_store.h): each blob is written
 * to blobs/sha256-HEX-partial, hashed while it streams, and renamed to
 * blobs/sha256-HEX only when its SHA-256 and size match the manifest; a
 * mismatch deletes the partial file and names the layer.  A partial file
 * left by an interrupted pull is hashed and resumed with an HTTP range
 * request (a registry that answers 200 instead of 206 starts it over); a
 * transfer that breaks off is resumed the same way up to 4 times.  Blobs
 * already in the store with the manifest's size are kept.  Names and
 * digests are validated before any path is made, sizes are checked against
 * the free space of the store before anything is written, and the manifest
 * is written last (a temporary file renamed into place).
 *
 * Pulls of one blob in one process share one download: a later pull waits
 * for the first and sees its progress.  Across processes the partial file
 * is locked (flock): a pull waits for the other process's, then resumes
 * or keeps what it left.  A pull whose progress callback
 * asks to stop gives up its interest; the download goes on while another
 * pull waits for it and stops (the partial file kept for a later resume)
 * when none does.
 *
 * Part of the lamina program (needs libcurl and libcrypto), not of
 * liblamina.
 */
#ifndef LAMINA_PULL_H
#define LAMINA_PULL_H

#include <stddef.h>
#include <stdint.h>

/* One progress report.  status is Ollama's: "pulling manifest",
 * "pulling HEX12" (digest, total, completed set), "verifying sha256
 * digest", "writing manifest", "success". */
typedef struct lamina_pull_progress {
    const char *status;
    const char *digest;         /* "sha256:..." or NULL */
    uint64_t total, completed;
} lamina_pull_progress;

/* Returns nonzero to stop (see above). */
typedef int (*lamina_pull_fn)(void *ctx, const lamina_pull_progress *p);

typedef struct lamina_pull_opts {
    const char *store;          /* the store directory (created if missing) */
    const char *registry;       /* base URL for registry.ollama.ai names */
    int insecure;               /* http:// for other hosts, no TLS verification */
    lamina_pull_fn progress;    /* may be NULL */
    void *ctx;
} lamina_pull_opts;

/* Pull `name` (an Ollama name, see ollama_store.h).  0, or < 0 with one
 * line in err: LAMINA_EINVAL (a bad name or registry URL), LAMINA_ENOENT
 * (the registry has no such model, tag or layer), LAMINA_EFORMAT (a
 * manifest that is not valid or too large, a bad digest or size, a layer
 * whose bytes do not match its digest or size, naming the layer),
 * LAMINA_EIO (the registry cannot be reached: "cannot reach registry URL:
 * REASON", or a transfer or write failed), LAMINA_ERANGE (not enough free
 * space), LAMINA_ECANCELED (stopped by the callback). */
int lamina_pull(const char *name, const lamina_pull_opts *o, char *err, size_t err_size);

#endif
