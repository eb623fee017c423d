/* store.c - writing lamina's own model store (see store.h). */
#include "config.h"

#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "catalogue.h"
#include "gguf.h"
#include "lamina/plugin.h"
#include "log.h"

#define COPY_CHUNK (1u << 20)

void lamina_store_hex(const unsigned char *md, char hex[65])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = d[md[i] >> 4];
        hex[2 * i + 1] = d[md[i] & 15];
    }
    hex[64] = 0;
}

int lamina_store_mkdirs(const char *path, char *err, size_t es)
{
    char p[4600];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return lamina_set_err(err, es, LAMINA_ERANGE, "path too long");
    for (char *c = p + 1;; c++) {
        if (*c == '/' || !*c) {
            char save = *c;
            *c = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                return lamina_set_err(err, es, LAMINA_EIO, "cannot create %s: %s", p, strerror(errno));
            *c = save;
            if (!save) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return lamina_set_err(err, es, LAMINA_EIO, "%s is not a directory", path);
    return 0;
}

int lamina_store_blob_path(const char *store, const char *digest, char *out, size_t size, char *err, size_t es)
{
    if (!lamina_ollama_digest_valid(digest))
        return lamina_set_err(err, es, LAMINA_EINVAL, "invalid digest '%.80s': sha256: and 64 lowercase hex digits",
                              digest ? digest : "");
    int n = snprintf(out, size, "%s/blobs/sha256-%s", store, digest + 7);
    if (n < 0 || (size_t)n >= size) return lamina_set_err(err, es, LAMINA_ERANGE, "store path too long");
    return 0;
}

int64_t lamina_store_blob_size(const char *store, const char *digest)
{
    char p[4300];
    struct stat st;
    if (lamina_store_blob_path(store, digest, p, sizeof p, NULL, 0) < 0 || lstat(p, &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    return (int64_t)st.st_size;
}

/* ------------------------------------------------------------------ */
/* The store's lock: a mutex in the process, flock across processes   */

static pthread_mutex_t store_mu = PTHREAD_MUTEX_INITIALIZER;

static int store_lock(const char *store, int *fd, char *err, size_t es)
{
    char p[4200];
    int rc = lamina_store_mkdirs(store, err, es);
    if (rc < 0) return rc;
    snprintf(p, sizeof p, "%s/.lock", store);
    pthread_mutex_lock(&store_mu);
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (*fd < 0 || flock(*fd, LOCK_EX) != 0) {
        int e = errno;
        if (*fd >= 0) close(*fd);
        pthread_mutex_unlock(&store_mu);
        return lamina_set_err(err, es, LAMINA_EIO, "cannot lock %s: %s", p, strerror(e));
    }
    return 0;
}

static void store_unlock(int fd)
{
    close(fd);
    pthread_mutex_unlock(&store_mu);
}

/* ------------------------------------------------------------------ */
/* Files written under a temporary name and renamed                   */

static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    for (size_t w = 0; w < n;) {
        ssize_t k = write(fd, p + w, n - w);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) { if (k == 0) errno = EIO; return -1; }
        w += (size_t)k;
    }
    return 0;
}

/* data into dir/.PREFIX-XXXXXX, then renamed to path. */
static int write_atomic(const char *dir, const char *prefix, const char *path, const void *data, size_t n,
                        char *err, size_t es)
{
    char tmp[4600];
    if (snprintf(tmp, sizeof tmp, "%s/.%s-XXXXXX", dir, prefix) >= (int)sizeof tmp)
        return lamina_set_err(err, es, LAMINA_ERANGE, "store path too long");
    int fd = mkstemp(tmp);
    if (fd < 0) return lamina_set_err(err, es, LAMINA_EIO, "cannot write in %s: %s", dir, strerror(errno));
    int ok = fchmod(fd, 0644) == 0 && write_all(fd, data, n) == 0 && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) { ok = 0; e = errno; }
    if (ok && rename(tmp, path) != 0) { ok = 0; e = errno; }
    if (!ok) {
        unlink(tmp);
        return lamina_set_err(err, es, LAMINA_EIO, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

static int check_blobs(const char *store, const lamina_ollama_manifest *m, char *err, size_t es)
{
    for (int i = -1; i < m->n_layers; i++) {
        if (i < 0 && !m->has_config) continue;
        const lamina_ollama_layer *l = i < 0 ? &m->config : &m->layers[i];
        int64_t have = lamina_store_blob_size(store, l->digest);
        if (have < 0) return lamina_set_err(err, es, LAMINA_ENOENT, "blob %s is not in the store", l->digest);
        if ((uint64_t)have != l->size)
            return lamina_set_err(err, es, LAMINA_EFORMAT, "blob %s has %" PRId64 " bytes, the manifest says %" PRIu64,
                                  l->digest, have, l->size);
    }
    return 0;
}

int lamina_store_write_manifest(const char *store, const char *name, const char *text, size_t len, int check,
                                char *err, size_t es)
{
    char path[4600], dir[4600];
    int rc = lamina_ollama_manifest_path(store, name, path, sizeof path, err, es);
    if (rc < 0) return rc;
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *tag = path + (slash - dir) + 1;
    *slash = 0;
    if ((rc = lamina_store_mkdirs(dir, err, es)) < 0) return rc;
    lamina_ollama_manifest m;
    if (check && (rc = lamina_ollama_manifest_parse(text, len, &m, err, es)) < 0) return rc;
    int fd;
    if ((rc = store_lock(store, &fd, err, es)) == 0) {
        if (!check || (rc = check_blobs(store, &m, err, es)) == 0)
            rc = write_atomic(dir, tag, path, text, len, err, es);   /* a dot name: never listed as a tag */
        store_unlock(fd);
    }
    if (check) lamina_ollama_manifest_free(&m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Blobs                                                              */

struct lamina_store_upload {
    char     tmp[4400], final[4300];
    char     digest[72];
    int      fd;
    EVP_MD_CTX *md;
    uint64_t n;
};

int lamina_store_upload_begin(const char *store, const char *digest, uint64_t expect, lamina_store_upload **out,
                              char *err, size_t es)
{
    *out = NULL;
    char blobs[4200];
    int rc;
    lamina_store_upload *u = calloc(1, sizeof *u);
    if (!u) return lamina_set_err(err, es, LAMINA_ENOMEM, "out of memory");
    u->fd = -1;
    if ((rc = lamina_store_blob_path(store, digest, u->final, sizeof u->final, err, es)) < 0) goto fail;
    snprintf(u->digest, sizeof u->digest, "%s", digest);
    snprintf(blobs, sizeof blobs, "%s/blobs", store);
    if ((rc = lamina_store_mkdirs(blobs, err, es)) < 0) goto fail;
    struct statvfs sv;
    if (expect && statvfs(blobs, &sv) == 0 && expect > (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize) {
        rc = lamina_set_err(err, es, LAMINA_ERANGE, "not enough free space in %s: the blob has %" PRIu64
                            " bytes, %" PRIu64 " are free", store, expect, (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize);
        goto fail;
    }
    snprintf(u->tmp, sizeof u->tmp, "%s/.upload-%.12s-XXXXXX", blobs, digest + 7);
    u->fd = mkstemp(u->tmp);
    if (u->fd < 0) { rc = lamina_set_err(err, es, LAMINA_EIO, "cannot write in %s: %s", blobs, strerror(errno)); goto fail; }
    if (fchmod(u->fd, 0644) != 0 || !(u->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(u->md, EVP_sha256(), NULL)) {
        rc = lamina_set_err(err, es, LAMINA_EIO, "cannot start writing %s", u->tmp);
        goto fail;
    }
    *out = u;
    return 0;
fail:
    lamina_store_upload_abort(u);
    return rc;
}

int lamina_store_upload_write(lamina_store_upload *u, const void *data, size_t n, char *err, size_t es)
{
    if (write_all(u->fd, data, n) != 0)
        return lamina_set_err(err, es, errno == ENOSPC ? LAMINA_ERANGE : LAMINA_EIO, "writing %s: %s", u->tmp,
                              strerror(errno));
    EVP_DigestUpdate(u->md, data, n);
    u->n += n;
    return 0;
}

uint64_t lamina_store_upload_size(const lamina_store_upload *u)
{
    return u->n;
}

void lamina_store_upload_abort(lamina_store_upload *u)
{
    if (!u) return;
    if (u->fd >= 0) {
        close(u->fd);
        unlink(u->tmp);
    }
    EVP_MD_CTX_free(u->md);
    free(u);
}

int lamina_store_upload_finish(lamina_store_upload *u, char *err, size_t es)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    char hex[65];
    int rc = 0;
    EVP_DigestFinal_ex(u->md, md, &mdl);
    lamina_store_hex(md, hex);
    if (strcmp(hex, u->digest + 7)) {
        rc = lamina_set_err(err, es, LAMINA_EFORMAT, "digest mismatch: expected %s, got sha256:%s (%" PRIu64 " bytes)",
                            u->digest, hex, u->n);
    } else {
        int ok = fsync(u->fd) == 0;
        ok = close(u->fd) == 0 && ok;
        u->fd = -1;
        if (!ok || rename(u->tmp, u->final) != 0) {
            rc = lamina_set_err(err, es, LAMINA_EIO, "cannot write %s: %s", u->final, strerror(errno));
            unlink(u->tmp);
        }
    }
    lamina_store_upload_abort(u);
    return rc;
}

int lamina_store_blob_put(const char *store, const void *data, size_t n, char digest[72], char *err, size_t es)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    char hex[65], final[4300], blobs[4200];
    if (!EVP_Digest(data, n, md, &mdl, EVP_sha256(), NULL)) return lamina_set_err(err, es, LAMINA_ENOMEM, "SHA-256 failed");
    lamina_store_hex(md, hex);
    snprintf(digest, 72, "sha256:%s", hex);
    int rc = lamina_store_blob_path(store, digest, final, sizeof final, err, es);
    if (rc < 0) return rc;
    if (lamina_store_blob_size(store, digest) == (int64_t)n) return 1;
    snprintf(blobs, sizeof blobs, "%s/blobs", store);
    if ((rc = lamina_store_mkdirs(blobs, err, es)) < 0) return rc;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "put-%.12s", hex);
    return write_atomic(blobs, prefix, final, data, n, err, es);
}

int lamina_store_blob_adopt(const char *store, const char *src, const char *digest, uint64_t size, char *err,
                            size_t es)
{
    char final[4300], blobs[4200];
    int rc = lamina_store_blob_path(store, digest, final, sizeof final, err, es);
    if (rc < 0) return rc;
    if (lamina_store_blob_size(store, digest) == (int64_t)size) return 0;
    struct stat st;
    if (stat(src, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
        return lamina_set_err(err, es, LAMINA_EFORMAT, "blob %s: %s is missing or not of %" PRIu64 " bytes", digest,
                              src, size);
    snprintf(blobs, sizeof blobs, "%s/blobs", store);
    if ((rc = lamina_store_mkdirs(blobs, err, es)) < 0) return rc;
    if (link(src, final) == 0) return 0;
    if (errno == EEXIST && lamina_store_blob_size(store, digest) == (int64_t)size) return 0;
    /* another file system (or no links there): a copy, hashed */
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return lamina_set_err(err, es, LAMINA_EIO, "cannot read %s: %s", src, strerror(errno));
    lamina_store_upload *u;
    char *buf = malloc(COPY_CHUNK);
    if (!buf) { close(in); return lamina_set_err(err, es, LAMINA_ENOMEM, "out of memory"); }
    if ((rc = lamina_store_upload_begin(store, digest, size, &u, err, es)) == 0) {
        ssize_t k;
        while (rc == 0 && (k = read(in, buf, COPY_CHUNK)) != 0) {
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) rc = lamina_set_err(err, es, LAMINA_EIO, "reading %s: %s", src, strerror(errno));
            else rc = lamina_store_upload_write(u, buf, (size_t)k, err, es);
        }
        if (rc == 0) rc = lamina_store_upload_finish(u, err, es);
        else lamina_store_upload_abort(u);
    }
    free(buf);
    close(in);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Manifests                                                          */

static int read_file(const char *path, char **text, size_t *len, char *err, size_t es)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return lamina_set_err(err, es, LAMINA_ENOENT, "%s: %s", path, errno ? strerror(errno) : "not a file");
    if (st.st_size > (off_t)LAMINA_OLLAMA_MAX_MANIFEST)
        return lamina_set_err(err, es, LAMINA_EFORMAT, "%s: a manifest of %lld bytes (at most %u)", path,
                              (long long)st.st_size, LAMINA_OLLAMA_MAX_MANIFEST);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return lamina_set_err(err, es, LAMINA_EIO, "cannot read %s: %s", path, strerror(errno));
    char *p = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    ssize_t k = 0;
    while (p && n <= (size_t)st.st_size && (k = read(fd, p + n, (size_t)st.st_size + 1 - n)) != 0) {
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) break;
        n += (size_t)k;
        if (n > (size_t)st.st_size) break;
    }
    close(fd);
    if (!p) return lamina_set_err(err, es, LAMINA_ENOMEM, "out of memory");
    if (k < 0 || n > (size_t)st.st_size) {
        free(p);
        return lamina_set_err(err, es, LAMINA_EIO, "cannot read %s: %s", path, k < 0 ? strerror(errno) : "it grew");
    }
    p[n] = 0;
    *text = p;
    *len = n;
    return 0;
}

static int read_manifest_at(const char *path, lamina_ollama_manifest *m, char **text, size_t *len, char *err,
                            size_t es)
{
    char *t = NULL;
    size_t n = 0;
    int rc = read_file(path, &t, &n, err, es);
    if (rc < 0) return rc;
    char why[400];
    rc = lamina_ollama_manifest_parse(t, n, m, why, sizeof why);
    if (rc < 0) {
        free(t);
        return lamina_set_err(err, es, rc, "%s: %s", path, why);
    }
    if (text) { *text = t; *len = n; }
    else free(t);
    return 0;
}

int lamina_store_read_manifest(const char *store, const char *name, lamina_ollama_manifest *m, char **text,
                               size_t *len, char *err, size_t es)
{
    char path[4600];
    memset(m, 0, sizeof *m);
    int rc = lamina_ollama_manifest_path(store, name, path, sizeof path, err, es);
    if (rc < 0) return rc;
    struct stat st;
    if (lstat(path, &st) != 0) return lamina_set_err(err, es, LAMINA_ENOENT, "model '%s' not found", name);
    return read_manifest_at(path, m, text, len, err, es);
}

int lamina_store_import(const char *store, char dirs[][4096], int nd, const char *name, lamina_ollama_manifest *m,
                        char **text, size_t *len, int *from, char *err, size_t es)
{
    int rc = LAMINA_ENOENT;
    for (int d = 0; d < nd; d++) {
        rc = lamina_store_read_manifest(dirs[d], name, m, text, len, err, es);
        if (rc == LAMINA_ENOENT) continue;
        if (rc < 0) return rc;
        if (from) *from = d;
        if (!strcmp(dirs[d], store)) return 0;
        for (int i = -1; i < m->n_layers && rc == 0; i++) {
            if (i < 0 && !m->has_config) continue;
            const lamina_ollama_layer *l = i < 0 ? &m->config : &m->layers[i];
            char src[4300];
            if ((rc = lamina_store_blob_path(dirs[d], l->digest, src, sizeof src, err, es)) == 0)
                rc = lamina_store_blob_adopt(store, src, l->digest, l->size, err, es);
        }
        if (rc < 0) {
            lamina_ollama_manifest_free(m);
            if (text) { free(*text); *text = NULL; }
        }
        return rc;
    }
    return lamina_set_err(err, es, LAMINA_ENOENT, "model '%s' not found", name);
}

int lamina_store_which(char dirs[][4096], int nd, const char *name)
{
    for (int d = 0; d < nd; d++) {
        char path[4600];
        struct stat st;
        if (lamina_ollama_manifest_path(dirs[d], name, path, sizeof path, NULL, 0) == 0 && lstat(path, &st) == 0)
            return d;
    }
    return -1;
}

/* Digests to remove unless a manifest names them. */
typedef struct gc {
    char (*cand)[72];
    int  *used;
    int   n;
    int   broken;                 /* a manifest could not be read: keep everything */
} gc;

static void gc_mark(gc *g, const char *digest)
{
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->cand[i], digest)) g->used[i] = 1;
}

/* Every manifest under dir, depth levels down (4 from manifests/). */
static void gc_walk(gc *g, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) { if (errno != ENOENT) g->broken = 1; return; }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;           /* ., .., temporary files */
        char p[4600];
        if (snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >= (int)sizeof p) { g->broken = 1; continue; }
        if (depth > 1) { gc_walk(g, p, depth - 1); continue; }
        lamina_ollama_manifest m;
        if (read_manifest_at(p, &m, NULL, NULL, NULL, 0) < 0) { g->broken = 1; continue; }
        if (m.has_config) gc_mark(g, m.config.digest);
        for (int i = 0; i < m.n_layers; i++) gc_mark(g, m.layers[i].digest);
        lamina_ollama_manifest_free(&m);
    }
    closedir(d);
}

int lamina_store_delete(const char *store, const char *name, int *removed, char *err, size_t es)
{
    char path[4600];
    if (removed) *removed = 0;
    int rc = lamina_ollama_manifest_path(store, name, path, sizeof path, err, es);
    if (rc < 0) return rc;
    int fd;
    if ((rc = store_lock(store, &fd, err, es)) < 0) return rc;
    lamina_ollama_manifest m;
    struct stat st;
    memset(&m, 0, sizeof m);
    if (lstat(path, &st) != 0) {
        rc = lamina_set_err(err, es, LAMINA_ENOENT, "model '%s' not found", name);
        goto out;
    }
    int readable = read_manifest_at(path, &m, NULL, NULL, NULL, 0) == 0;
    if (unlink(path) != 0) {
        rc = lamina_set_err(err, es, LAMINA_EIO, "cannot remove %s: %s", path, strerror(errno));
        goto out;
    }
    for (int up = 0; up < 3; up++) {               /* empty model, namespace and host folders */
        char *slash = strrchr(path, '/');
        *slash = 0;
        if (rmdir(path) != 0) break;
    }
    if (!readable) goto out;                       /* its blobs are unknown: all kept */
    gc g = { 0 };
    g.cand = calloc((size_t)m.n_layers + 1, sizeof *g.cand);
    g.used = calloc((size_t)m.n_layers + 1, sizeof *g.used);
    if (!g.cand || !g.used) { free(g.cand); free(g.used); goto out; }
    if (m.has_config) snprintf(g.cand[g.n++], 72, "%s", m.config.digest);
    for (int i = 0; i < m.n_layers; i++) snprintf(g.cand[g.n++], 72, "%s", m.layers[i].digest);
    char mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/manifests", store);
    gc_walk(&g, mdir, 4);
    for (int i = 0; i < g.n && !g.broken; i++) {
        char b[4300];
        if (g.used[i] || lamina_store_blob_path(store, g.cand[i], b, sizeof b, NULL, 0) < 0) continue;
        if (unlink(b) == 0 && removed) ++*removed;
    }
    free(g.cand);
    free(g.used);
out:
    lamina_ollama_manifest_free(&m);
    store_unlock(fd);
    return rc;
}

/* ---- create ---- */

#define MAX_SMALL_LAYER (1u << 20)   /* a template, system, params or license layer */
/* the config's platform, in Go's names as Ollama writes them */
#if defined(__aarch64__)
#define CONFIG_ARCH "arm64"
#elif defined(__x86_64__)
#define CONFIG_ARCH "amd64"
#else
#define CONFIG_ARCH "unknown"
#endif

int lamina_store_add_file(const char *store, const char *path, lamina_ollama_layer *l, char *err, size_t es)
{
    char hex[65];
    struct stat st;
    if (stat(path, &st) != 0) return lamina_set_err(err, es, LAMINA_ENOENT, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return lamina_set_err(err, es, LAMINA_EINVAL, "%s: not a regular file", path);
    int rc = lamina_sha256_file(path, hex, err, es);
    if (rc < 0) return rc;
    snprintf(l->digest, sizeof l->digest, "sha256:%s", hex);
    snprintf(l->media_type, sizeof l->media_type, "%s", LAMINA_MT_MODEL);
    l->size = (uint64_t)st.st_size;
    return lamina_store_blob_adopt(store, path, l->digest, l->size, err, es);
}

typedef struct layer_list {
    lamina_ollama_layer l[LAMINA_OLLAMA_MAX_LAYERS];
    int n;
} layer_list;

static void cstatus(const lamina_store_recipe *r, const char *fmt, const char *digest)
{
    if (!r->status) return;
    char st[160];
    snprintf(st, sizeof st, fmt, digest ? digest : "");
    r->status(r->ud, st);
}

/* A layer of media type mt with bytes data (NULL: none), replacing those
 * of that type when replace is nonzero. */
static int set_layer(const char *store, const lamina_store_recipe *r, layer_list *ll, const char *mt,
                     const void *data, size_t n, int replace, char *err, size_t es)
{
    if (replace) {
        int k = 0;
        for (int i = 0; i < ll->n; i++)
            if (strcmp(ll->l[i].media_type, mt)) ll->l[k++] = ll->l[i];
        ll->n = k;
    }
    if (!data) return 0;
    if (ll->n >= LAMINA_OLLAMA_MAX_LAYERS - 1)
        return lamina_set_err(err, es, LAMINA_EINVAL, "too many layers (at most %d)", LAMINA_OLLAMA_MAX_LAYERS - 1);
    lamina_ollama_layer *l = &ll->l[ll->n];
    int had = lamina_store_blob_put(store, data, n, l->digest, err, es);
    if (had < 0) return had;
    snprintf(l->media_type, sizeof l->media_type, "%s", mt);
    l->size = (uint64_t)n;
    ll->n++;
    cstatus(r, had ? "using existing layer %s" : "creating new layer %s", l->digest);
    return 0;
}

char *lamina_store_read_layer(const char *store, const lamina_ollama_layer *l)
{
    char path[4300];
    if (l->size > MAX_SMALL_LAYER || lamina_store_blob_path(store, l->digest, path, sizeof path, NULL, 0) < 0) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *t = malloc(l->size + 1);
    size_t n = t ? fread(t, 1, l->size, f) : 0;
    fclose(f);
    if (!t || n != l->size) { free(t); return NULL; }
    t[n] = 0;
    return t;
}

/* The model blob is a GGUF lamina opens; its architecture and file type. */
static int check_gguf(const char *store, const lamina_store_recipe *r, const char *digest, char *arch, size_t arch_size,
                      char *ftype, size_t ftype_size, char *err, size_t es)
{
    char path[4300], e2[600];
    const char *what = r->what ? r->what : "model";
    int rc = lamina_store_blob_path(store, digest, path, sizeof path, err, es);
    if (rc < 0) return rc;
    unsigned char magic[4] = { 0 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t k = fd >= 0 ? read(fd, magic, 4) : -1;
    if (fd >= 0) close(fd);
    if (k != 4 || memcmp(magic, "GGUF", 4))
        return lamina_set_err(err, es, LAMINA_EINVAL, "%s (%s) is not a GGUF file (its first bytes are not \"GGUF\")",
                              what, digest);
    lamina_gguf *g;
    if (lamina_gguf_open(path, &g, e2, sizeof e2) < 0)
        return lamina_set_err(err, es, LAMINA_EINVAL, "%s (%s) is not a GGUF file lamina can read: %s", what, digest, e2);
    const char *s;
    size_t sl;
    arch[0] = 0;
    if (lamina_gguf_get_str(g, "general.architecture", &s, &sl, NULL, 0) == 0) snprintf(arch, arch_size, "%.*s", (int)sl, s);
    int64_t ft = -1;
    lamina_gguf_get_i64(g, "general.file_type", &ft, NULL, 0);
    snprintf(ftype, ftype_size, "%s", ft >= 0 && r->ftype_name ? r->ftype_name(ft) : "unknown");
    lamina_gguf_close(g);
    return 0;
}

int lamina_store_create(const char *store, const char *name, const lamina_store_recipe *r, char *err, size_t es)
{
    if (r->n_layers < 0 || r->n_layers > LAMINA_OLLAMA_MAX_LAYERS - 1)
        return lamina_set_err(err, es, LAMINA_EINVAL, "too many layers (at most %d)", LAMINA_OLLAMA_MAX_LAYERS - 1);
    layer_list *ll = calloc(1, sizeof *ll);
    if (!ll) return lamina_set_err(err, es, LAMINA_ENOMEM, "out of memory");
    int rc = 0;
    json_t *params = NULL;
    char *ct = NULL, *mt = NULL;
    if (r->n_layers) memcpy(ll->l, r->layers, (size_t)r->n_layers * sizeof *ll->l);
    ll->n = r->n_layers;
    const lamina_ollama_layer *model = NULL;
    for (int i = 0; i < ll->n; i++)
        if (!strcmp(ll->l[i].media_type, LAMINA_MT_MODEL)) model = &ll->l[i];
    if (!model) { rc = lamina_set_err(err, es, LAMINA_EINVAL, "%s has no model layer", r->what ? r->what : "the model"); goto out; }
    cstatus(r, "parsing GGUF", NULL);
    char arch[64], ftype[16];
    if ((rc = check_gguf(store, r, model->digest, arch, sizeof arch, ftype, sizeof ftype, err, es)) < 0) goto out;
    cstatus(r, "using existing layer %s", model->digest);
    if (r->tmpl && (rc = set_layer(store, r, ll, LAMINA_MT_TEMPLATE, r->tmpl, strlen(r->tmpl), 1, err, es)) < 0) goto out;
    if (r->system && (rc = set_layer(store, r, ll, LAMINA_MT_SYSTEM, r->system, strlen(r->system), 1, err, es)) < 0)
        goto out;
    if (r->params_json) {
        json_error_t je;
        json_t *p = json_loads(r->params_json, 0, &je);
        if (!json_is_object(p)) {
            json_decref(p);
            rc = lamina_set_err(err, es, LAMINA_EINVAL, "parameters: expected a JSON object");
            goto out;
        }
        for (int i = 0; i < ll->n && !params; i++) {     /* the base's params, then these over them */
            if (strcmp(ll->l[i].media_type, LAMINA_MT_PARAMS)) continue;
            char *t = lamina_store_read_layer(store, &ll->l[i]);
            params = t ? json_loads(t, 0, NULL) : NULL;
            free(t);
            if (params && !json_is_object(params)) { json_decref(params); params = NULL; }
        }
        if (!params) params = json_object();
        json_object_update(params, p);
        json_decref(p);
        if (json_object_size(params)) {
            char *t = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
            rc = t ? set_layer(store, r, ll, LAMINA_MT_PARAMS, t, strlen(t), 1, err, es)
                   : lamina_set_err(err, es, LAMINA_ENOMEM, "out of memory");
            free(t);
            if (rc < 0) goto out;
        }
    }
    if (r->set_licenses) {
        set_layer(store, r, ll, LAMINA_MT_LICENSE, NULL, 0, 1, err, es);
        for (int i = 0; i < r->n_licenses; i++)
            if ((rc = set_layer(store, r, ll, LAMINA_MT_LICENSE, r->licenses[i], strlen(r->licenses[i]), 0, err, es)) < 0)
                goto out;
    }
    /* the config, then the manifest */
    json_t *diff = json_array(), *layers = json_array();
    for (int i = 0; i < ll->n; i++) {
        json_array_append_new(diff, json_string(ll->l[i].digest));
        json_array_append_new(layers, json_pack("{s:s, s:s, s:I}", "mediaType", ll->l[i].media_type, "digest",
                                                ll->l[i].digest, "size", (json_int_t)ll->l[i].size));
    }
    json_t *cfg = json_pack("{s:s, s:s, s:[s], s:s, s:s, s:s, s:{s:s, s:o}}", "model_format", "gguf", "model_family",
                            arch, "model_families", arch, "file_type", ftype, "architecture", CONFIG_ARCH, "os", "linux",
                            "rootfs", "type", "layers", "diff_ids", diff);
    ct = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
    json_decref(cfg);
    lamina_ollama_layer conf = { .size = ct ? strlen(ct) : 0 };
    snprintf(conf.media_type, sizeof conf.media_type, "%s", LAMINA_MT_CONFIG);
    if (!ct) rc = lamina_set_err(err, es, LAMINA_ENOMEM, "out of memory");
    else rc = lamina_store_blob_put(store, ct, strlen(ct), conf.digest, err, es);
    if (rc < 0) { json_decref(layers); goto out; }
    rc = 0;
    json_t *man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType", LAMINA_MT_MANIFEST,
                            "config", "mediaType", conf.media_type, "digest", conf.digest, "size", (json_int_t)conf.size,
                            "layers", layers);
    mt = man ? json_dumps(man, JSON_COMPACT) : NULL;
    json_decref(man);
    cstatus(r, "writing manifest", NULL);
    if (!mt) rc = lamina_set_err(err, es, LAMINA_ENOMEM, "out of memory");
    else rc = lamina_store_write_manifest(store, name, mt, strlen(mt), 1, err, es);
    if (rc == 0) cstatus(r, "success", NULL);
out:
    free(ct);
    free(mt);
    json_decref(params);
    free(ll);
    return rc;
}
