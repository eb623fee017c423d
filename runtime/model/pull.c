/* pull.c - fetch a model from a registry into lamina's own store (see pull.h). */
#include "config.h"

#include "pull.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "lamina/lamina.h"
#include "lamina/plugin.h"
#include "log.h"
#include "ollama_store.h"
#include "store.h"

#define DEFAULT_HOST "registry.ollama.ai"
#define MAX_MANIFEST LAMINA_OLLAMA_MAX_MANIFEST
#define MAX_TOKEN_BODY (64u << 10)
#define TRIES 5                              /* the first transfer of a blob and 4 resumes */
#define REPORT_EVERY 0.1                     /* seconds between progress reports of one blob */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;
static void curl_init(void) { curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* A pull                                                             */

typedef struct blob {
    char digest[72];
    uint64_t size;
} blob;

typedef struct sess {
    const lamina_pull_opts *o;
    char name[128];
    char host[81], ns[81], model[81], tag[81];
    char base[600];               /* registry URL, no trailing '/' */
    char *auth;                   /* "Authorization: Bearer ..." or NULL */
    int  stopped;                 /* the callback asked to stop */
    char *err;
    size_t es;
} sess;

static int report(sess *S, const char *status, const char *digest, uint64_t total, uint64_t completed)
{
    if (S->stopped) return 1;
    if (!S->o->progress) return 0;
    lamina_pull_progress p = { status, digest, total, completed };
    if (S->o->progress(S->o->ctx, &p)) S->stopped = 1;
    return S->stopped;
}

static void layer_status(const char *digest, char *out, size_t size)
{
    snprintf(out, size, "pulling %.12s", digest + 7);
}

/* ------------------------------------------------------------------ */
/* HTTP                                                               */

/* What the header callback keeps of the last response. */
typedef struct hdrs {
    char www_auth[2048];
    char content_range[128];
} hdrs;

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    hdrs *h = ud;
    size_t n = sz * nm;
    if (n >= 5 && !strncmp(p, "HTTP/", 5)) {     /* a new response (after a redirect or 100) */
        h->www_auth[0] = h->content_range[0] = 0;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon) return n;
    size_t kl = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    int vl = (int)(end - v);
    if (kl == 16 && !strncasecmp(p, "WWW-Authenticate", kl))
        snprintf(h->www_auth, sizeof h->www_auth, "%.*s", vl, v);
    else if (kl == 13 && !strncasecmp(p, "Content-Range", kl))
        snprintf(h->content_range, sizeof h->content_range, "%.*s", vl, v);
    return n;
}

/* A body kept in memory, at most max bytes. */
typedef struct membuf {
    char *p;
    size_t n, max;
    int over;
} membuf;

static size_t on_mem(char *p, size_t sz, size_t nm, void *ud)
{
    membuf *b = ud;
    size_t n = sz * nm;
    if (b->n + n > b->max) { b->over = 1; return 0; }
    char *q = realloc(b->p, b->n + n + 1);
    if (!q) return 0;
    memcpy(q + b->n, p, n);
    b->p = q;
    b->n += n;
    b->p[b->n] = 0;
    return n;
}

static CURL *easy(sess *S, const char *url, struct curl_slist *headers, char *errbuf)
{
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    errbuf[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);   /* blobs are served from a CDN */
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);  /* a stalled transfer: nothing for 60 s */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "lamina/" LAMINA_VERSION_STRING);
    if (S->o->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    return c;
}

/* One line for a transfer that failed with cc. */
static int net_err(sess *S, CURLcode cc, const char *errbuf, const char *what)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_RESOLVE_PROXY ||
        cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION ||
        (cc == CURLE_OPERATION_TIMEDOUT && !strcmp(what, "manifest")))
        return lamina_set_err(S->err, S->es, LAMINA_EIO, "cannot reach registry %s: %s", S->base, why);
    return lamina_set_err(S->err, S->es, LAMINA_EIO, "pulling %s from %s: %s", what, S->base, why);
}

/* The value of key in a Bearer challenge (key="value" pairs), or "". */
static void challenge_param(const char *ch, const char *key, char *out, size_t size)
{
    out[0] = 0;
    size_t kl = strlen(key);
    const char *p = ch;
    while ((p = strcasestr(p, key)) != NULL) {
        int start = p == ch || p[-1] == ' ' || p[-1] == ',';
        if (start && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t n = 0;
            if (*v == '"') {
                v++;
                while (v[n] && v[n] != '"') n++;
            } else {
                while (v[n] && v[n] != ',' && v[n] != ' ') n++;
            }
            if (n < size) snprintf(out, size, "%.*s", (int)n, v);
            return;
        }
        p += kl;
    }
}

/* Answer a 401's Bearer challenge: fetch a token from the realm into
 * S->auth.  0 or < 0 with the message. */
static int fetch_token(sess *S, const char *challenge)
{
    char realm[1024], service[256], scope[512], errbuf[CURL_ERROR_SIZE];
    if (strncasecmp(challenge, "Bearer ", 7))
        return lamina_set_err(S->err, S->es, LAMINA_EIO, "registry %s asks for authentication lamina cannot give (%.100s)",
                              S->base, challenge);
    challenge_param(challenge + 7, "realm", realm, sizeof realm);
    challenge_param(challenge + 7, "service", service, sizeof service);
    challenge_param(challenge + 7, "scope", scope, sizeof scope);
    if (strncmp(realm, "https://", 8) && strncmp(realm, "http://", 7))
        return lamina_set_err(S->err, S->es, LAMINA_EIO, "registry %s: a token realm that is not an http(s) URL",
                              S->base);
    CURL *c = curl_easy_init();
    if (!c) return lamina_set_err(S->err, S->es, LAMINA_ENOMEM, "out of memory");
    char *es = curl_easy_escape(c, service, 0), *esc = curl_easy_escape(c, scope, 0);
    curl_easy_cleanup(c);
    if (!es || !esc) {
        curl_free(es);
        curl_free(esc);
        return lamina_set_err(S->err, S->es, LAMINA_ENOMEM, "out of memory");
    }
    char url[2400];
    snprintf(url, sizeof url, "%s%cservice=%s&scope=%s", realm, strchr(realm, '?') ? '&' : '?', es, esc);
    curl_free(es);
    curl_free(esc);
    membuf b = { .max = MAX_TOKEN_BODY };
    c = easy(S, url, NULL, errbuf);
    if (!c) return lamina_set_err(S->err, S->es, LAMINA_ENOMEM, "out of memory");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_mem);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    int rc = 0;
    if (cc != CURLE_OK) {
        rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "registry %s: token from %s: %s", S->base, realm,
                            errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    if (code != 200) {
        rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "registry %s: the token service %s answered HTTP %ld",
                            S->base, realm, code);
        goto out;
    }
    json_t *j = json_loadb(b.p ? b.p : "", b.n, 0, NULL);
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (!tok || !tok[0]) tok = json_string_value(json_object_get(j, "access_token"));
    size_t tl = tok ? strlen(tok) : 0;
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f) tl = 0;   /* no header injection */
    if (tl == 0) {
        rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "registry %s: the token service %s gave no usable token",
                            S->base, realm);
    } else {
        free(S->auth);
        S->auth = malloc(tl + 32);
        if (!S->auth) rc = lamina_set_err(S->err, S->es, LAMINA_ENOMEM, "out of memory");
        else snprintf(S->auth, tl + 32, "Authorization: Bearer %s", tok);
    }
    json_decref(j);
out:
    free(b.p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The manifest                                                       */

static int get_manifest(sess *S, membuf *b)
{
    char url[1000], errbuf[CURL_ERROR_SIZE];
    snprintf(url, sizeof url, "%s/v2/%s/%s/manifests/%s", S->base, S->ns, S->model, S->tag);
    for (int attempt = 0;; attempt++) {
        struct curl_slist *h = curl_slist_append(NULL, "Accept: application/vnd.docker.distribution.manifest.v2+json, "
                                                       "application/vnd.oci.image.manifest.v1+json");
        if (h && S->auth) h = curl_slist_append(h, S->auth);
        hdrs hd = {0};
        free(b->p);
        *b = (membuf){ .max = MAX_MANIFEST };
        CURL *c = h ? easy(S, url, h, errbuf) : NULL;
        if (!c) { curl_slist_free_all(h); return lamina_set_err(S->err, S->es, LAMINA_ENOMEM, "out of memory"); }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_mem);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &hd);
        CURLcode cc = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        curl_slist_free_all(h);
        if (b->over)
            return lamina_set_err(S->err, S->es, LAMINA_EFORMAT, "registry %s: the manifest of %s is larger than %u bytes",
                                  S->base, S->name, MAX_MANIFEST);
        if (cc != CURLE_OK) return net_err(S, cc, errbuf, "manifest");
        if (code == 401 && attempt == 0 && hd.www_auth[0]) {
            int rc = fetch_token(S, hd.www_auth);
            if (rc < 0) return rc;
            continue;
        }
        if (code == 404)
            return lamina_set_err(S->err, S->es, LAMINA_ENOENT, "pull model manifest: %s not found in registry %s",
                                  S->name, S->base);
        if (code != 200)
            return lamina_set_err(S->err, S->es, LAMINA_EIO, "pull model manifest: registry %s answered HTTP %ld for %s",
                                  S->base, code, S->name);
        return 0;
    }
}

/* The config and layers of a manifest (ollama_store.c checks them), each
 * blob once. */
static int parse_manifest(sess *S, const membuf *b, blob **out, int *n_out)
{
    lamina_ollama_manifest m;
    char why[400];
    int rc = lamina_ollama_manifest_parse(b->p, b->n, &m, why, sizeof why);
    if (rc < 0)
        return lamina_set_err(S->err, S->es, rc, "registry %s: the manifest of %s: %s", S->base, S->name, why);
    blob *bl = calloc((size_t)m.n_layers + 1, sizeof *bl);
    int n = 0;
    if (!bl) { lamina_ollama_manifest_free(&m); return lamina_set_err(S->err, S->es, LAMINA_ENOMEM, "out of memory"); }
    for (int i = -1; i < m.n_layers; i++) {
        if (i < 0 && !m.has_config) continue;
        const lamina_ollama_layer *l = i < 0 ? &m.config : &m.layers[i];
        int dup = 0;
        for (int k = 0; k < n && !dup; k++) {
            if (strcmp(bl[k].digest, l->digest)) continue;
            dup = 1;
            if (bl[k].size != l->size) {
                rc = lamina_set_err(S->err, S->es, LAMINA_EFORMAT, "registry %s: manifest of %s: layer %s with two "
                                    "sizes", S->base, S->name, l->digest);
            }
        }
        if (dup) continue;
        snprintf(bl[n].digest, sizeof bl[n].digest, "%s", l->digest);
        bl[n++].size = l->size;
    }
    lamina_ollama_manifest_free(&m);
    if (rc < 0) { free(bl); return rc; }
    *out = bl;
    *n_out = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Files                                                              */

static int blob_path(sess *S, const char *digest, const char *suffix, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/blobs/sha256-%s%s", S->o->store, digest + 7, suffix);
    if (n < 0 || (size_t)n >= size) return lamina_set_err(S->err, S->es, LAMINA_ERANGE, "store path too long");
    return 0;
}

/* Size of a regular file, or -1. */
static int64_t file_size(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
    return (int64_t)st.st_size;
}

/* ------------------------------------------------------------------ */
/* Downloads shared by the pulls of one process                        */

typedef struct flight {
    char path[4200];              /* the blob's final path: the key */
    int interest;                 /* pulls that want it, its downloader included */
    int refs;                     /* pulls holding this record */
    int done, rc;
    char err[512];
    uint64_t total, completed;
    struct flight *next;
} flight;

static pthread_mutex_t fl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fl_cv = PTHREAD_COND_INITIALIZER;
static flight *flights;

static void flight_put_locked(flight *f)
{
    if (--f->refs == 0) free(f);
}

/* One transfer of a blob into its partial file. */
typedef struct dl {
    sess *S;
    flight *f;
    const blob *b;
    CURL *c;
    int fd;
    EVP_MD_CTX *md;
    uint64_t off;                 /* bytes in the partial file when the request went out */
    uint64_t completed;           /* bytes in the partial file (and hashed) */
    hdrs hd;
    int checked;                  /* the response's status was looked at */
    long code;
    int withdrawn;                /* this pull gave up its interest */
    int cancelled;                /* nobody wants the blob any more */
    char fail[300];               /* a local failure that ends the transfer */
    int fatal;                    /* ... after which the blob is not tried again */
    double last;
    uint64_t reported;            /* completed at the last report */
} dl;

static void dl_progress(dl *d, int force)
{
    double t = now_s();
    if (!force && (t - d->last < REPORT_EVERY || (d->completed == d->reported && t - d->last < 1))) return;
    d->last = t;
    d->reported = d->completed;
    pthread_mutex_lock(&fl_mu);
    d->f->completed = d->completed;
    pthread_mutex_unlock(&fl_mu);
    if (!d->withdrawn) {
        char st[32];
        layer_status(d->b->digest, st, sizeof st);
        if (report(d->S, st, d->b->digest, d->b->size, d->completed)) {
            d->withdrawn = 1;
            pthread_mutex_lock(&fl_mu);
            d->f->interest--;
            pthread_mutex_unlock(&fl_mu);
        }
    }
    if (d->withdrawn) {
        pthread_mutex_lock(&fl_mu);
        d->cancelled = d->f->interest == 0;
        pthread_mutex_unlock(&fl_mu);
    }
}

/* Truncate the partial file and start its hash over. */
static int restart_partial(dl *d)
{
    if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0) return -1;
    EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
    d->completed = 0;
    return 0;
}

static size_t on_blob(char *p, size_t sz, size_t nm, void *ud)
{
    dl *d = ud;
    size_t n = sz * nm;
    if (!d->checked) {            /* the first body bytes: the status is known */
        d->checked = 1;
        curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &d->code);
        if (d->code == 206) {
            unsigned long long start = 0;
            if (sscanf(d->hd.content_range, "bytes %llu-", &start) != 1 || start != d->off) {
                snprintf(d->fail, sizeof d->fail, "the registry answered a range request with another range (%.60s)",
                         d->hd.content_range);
                if (restart_partial(d) < 0) d->fatal = 1;   /* else the next try starts over */
                return 0;
            }
        } else if (d->code == 200 && d->off > 0) {   /* no ranges: the whole blob again */
            if (restart_partial(d) < 0) {
                snprintf(d->fail, sizeof d->fail, "truncating the partial file: %s", strerror(errno));
                d->fatal = 1;
                return 0;
            }
        }
    }
    if (d->code != 200 && d->code != 206) return n;   /* an error's body: dropped */
    if (d->completed + n > d->b->size) {
        snprintf(d->fail, sizeof d->fail, "the registry sent more than the manifest's %" PRIu64 " bytes", d->b->size);
        d->fatal = 1;
        return 0;
    }
    for (size_t w = 0; w < n;) {
        ssize_t k = write(d->fd, p + w, n - w);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            snprintf(d->fail, sizeof d->fail, "writing the partial file: %s", strerror(k < 0 ? errno : EIO));
            d->fatal = 1;
            return 0;
        }
        w += (size_t)k;
    }
    EVP_DigestUpdate(d->md, p, n);
    d->completed += n;
    dl_progress(d, 0);
    return d->cancelled ? 0 : n;
}

/* Between body bytes too (a stalled transfer): the pulls' interest. */
static int on_xfer(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    dl *d = ud;
    (void)dt; (void)dn; (void)ut; (void)un;
    dl_progress(d, 0);
    return d->cancelled;
}

/* Hash the bytes already in the partial file (a resumed download). */
static int hash_partial(dl *d, const char *partial)
{
    EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
    d->completed = 0;
    int fd = open(partial, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    char *buf = malloc(1 << 20);
    if (!buf) { close(fd); return -1; }
    ssize_t k;
    while ((k = read(fd, buf, 1 << 20)) > 0) {
        EVP_DigestUpdate(d->md, buf, (size_t)k);
        d->completed += (uint64_t)k;
    }
    free(buf);
    close(fd);
    return k < 0 ? -1 : 0;
}

/* Download one blob into the store (this pull owns the flight). */
static int download(sess *S, flight *f, const blob *b)
{
    char final[4200], partial[4300], url[1000], errbuf[CURL_ERROR_SIZE];
    int rc = blob_path(S, b->digest, "", final, sizeof final);
    if (rc == 0) rc = blob_path(S, b->digest, "-partial", partial, sizeof partial);
    if (rc < 0) return rc;
    snprintf(url, sizeof url, "%s/v2/%s/%s/blobs/%s", S->base, S->ns, S->model, b->digest);
    dl d = { .S = S, .f = f, .b = b, .fd = -1 };
    d.md = EVP_MD_CTX_new();
    if (!d.md) return lamina_set_err(S->err, S->es, LAMINA_ENOMEM, "out of memory");
    /* another process pulling the blob holds a lock on its partial file:
     * wait for it, then take what it left (the blob, or a partial file) */
    for (;;) {
        if (file_size(final) == (int64_t)b->size) goto out;
        d.fd = open(partial, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (d.fd < 0) {
            rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "cannot write %s: %s", partial, strerror(errno));
            goto out;
        }
        if (flock(d.fd, LOCK_EX | LOCK_NB) != 0) {
            dl_progress(&d, 0);
            close(d.fd);
            d.fd = -1;
            if (d.cancelled) break;
            struct timespec ts = { 0, 250 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        struct stat a, b2;
        if (fstat(d.fd, &a) == 0 && lstat(partial, &b2) == 0 && a.st_ino == b2.st_ino && a.st_dev == b2.st_dev)
            break;                /* locked, and still the partial file */
        close(d.fd);              /* renamed into place or removed meanwhile */
        d.fd = -1;
    }
    if (d.cancelled) {
        rc = lamina_set_err(S->err, S->es, LAMINA_ECANCELED, "pull cancelled");
        goto out;
    }
    if (hash_partial(&d, partial) < 0) {
        rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "cannot read %s: %s", partial, strerror(errno));
        goto out;
    }
    if ((d.completed > b->size && restart_partial(&d) < 0) || lseek(d.fd, 0, SEEK_END) < 0) {
        rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "%s: %s", partial, strerror(errno));
        goto out;
    }
    dl_progress(&d, 1);
    int tries = 0, authed = 0, need_get = b->size == 0;
    while (d.completed < b->size || need_get) {
        need_get = 0;
        if (d.cancelled) break;
        struct curl_slist *h = NULL;
        char range[64];
        d.off = d.completed;
        if (d.off > 0) {
            snprintf(range, sizeof range, "Range: bytes=%" PRIu64 "-", d.off);
            h = curl_slist_append(h, range);
        }
        if (S->auth) h = curl_slist_append(h, S->auth);
        d.c = easy(S, url, h, errbuf);
        if (!d.c) { curl_slist_free_all(h); rc = lamina_set_err(S->err, S->es, LAMINA_ENOMEM, "out of memory"); goto out; }
        memset(&d.hd, 0, sizeof d.hd);
        d.checked = 0;
        d.code = 0;
        d.fail[0] = 0;
        curl_easy_setopt(d.c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(d.c, CURLOPT_HEADERDATA, &d.hd);
        curl_easy_setopt(d.c, CURLOPT_WRITEFUNCTION, on_blob);
        curl_easy_setopt(d.c, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(d.c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(d.c, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(d.c, CURLOPT_XFERINFODATA, &d);
        CURLcode cc = curl_easy_perform(d.c);
        if (!d.checked) curl_easy_getinfo(d.c, CURLINFO_RESPONSE_CODE, &d.code);
        curl_easy_cleanup(d.c);
        d.c = NULL;
        curl_slist_free_all(h);
        if (d.cancelled) break;
        if (d.fail[0] && d.fatal) {
            if (strstr(d.fail, "more than")) unlink(partial);
            rc = lamina_set_err(S->err, S->es, strstr(d.fail, "more than") ? LAMINA_EFORMAT : LAMINA_EIO,
                                "layer %s: %s%s", b->digest, d.fail,
                                strstr(d.fail, "more than") ? "; the partial file was removed" : "");
            goto out;
        }
        if (d.code == 401 && !authed && d.hd.www_auth[0]) {
            authed = 1;
            if ((rc = fetch_token(S, d.hd.www_auth)) < 0) goto out;
            need_get = b->size == 0;
            continue;
        }
        if (d.code == 416 && d.off > 0 && tries++ < TRIES) {   /* the range is not there: start over */
            if (restart_partial(&d) < 0) {
                rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "%s: %s", partial, strerror(errno));
                goto out;
            }
            continue;
        }
        if (d.code == 404) {
            rc = lamina_set_err(S->err, S->es, LAMINA_ENOENT, "layer %s: not found in registry %s", b->digest, S->base);
            goto out;
        }
        if (d.code != 0 && d.code != 200 && d.code != 206 && d.code < 500) {
            rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "layer %s: registry %s answered HTTP %ld", b->digest,
                                S->base, d.code);
            goto out;
        }
        if (cc == CURLE_OK && d.code >= 200 && d.code < 300 && d.completed >= b->size) break;
        /* broken off, a server error or a short body: resume from what is there */
        if (++tries >= TRIES) {
            if (d.fail[0]) rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "layer %s: %s", b->digest, d.fail);
            else if (cc != CURLE_OK) rc = net_err(S, cc, errbuf, b->digest);
            else rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "layer %s: registry %s answered HTTP %ld (%" PRIu64
                                     " of %" PRIu64 " bytes)", b->digest, S->base, d.code, d.completed, b->size);
            goto out;
        }
        if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
            rc = net_err(S, cc, errbuf, b->digest);
            goto out;
        }
        struct timespec ts = { 0, 200 * 1000 * 1000 * (long)(tries < 4 ? tries : 4) };
        nanosleep(&ts, NULL);
    }
    if (d.cancelled) {                   /* the partial file stays for a later pull */
        rc = lamina_set_err(S->err, S->es, LAMINA_ECANCELED, "pull cancelled");
        goto out;
    }
    dl_progress(&d, 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    char hex[65];
    EVP_DigestFinal_ex(d.md, md, &mdl);
    lamina_store_hex(md, hex);
    if (strcmp(hex, b->digest + 7)) {
        unlink(partial);
        rc = lamina_set_err(S->err, S->es, LAMINA_EFORMAT, "layer %s: digest mismatch, the download is sha256:%s; "
                            "the partial file was removed", b->digest, hex);
        goto out;
    }
    if (fsync(d.fd) != 0 || rename(partial, final) != 0) {
        rc = lamina_set_err(S->err, S->es, LAMINA_EIO, "%s: %s", final, strerror(errno));
        goto out;
    }
out:
    if (d.fd >= 0) close(d.fd);
    EVP_MD_CTX_free(d.md);
    if (d.withdrawn && rc == 0) rc = lamina_set_err(S->err, S->es, LAMINA_ECANCELED, "pull cancelled");
    return rc;
}

/* A blob into the store: downloaded by this pull, or by another pull of
 * this process that this one waits for. */
static int get_blob(sess *S, const blob *b)
{
    char final[4200];
    int rc = blob_path(S, b->digest, "", final, sizeof final);
    if (rc < 0) return rc;
    char st[32];
    layer_status(b->digest, st, sizeof st);
again:
    if (file_size(final) == (int64_t)b->size) {   /* already there */
        return report(S, st, b->digest, b->size, b->size) ? lamina_set_err(S->err, S->es, LAMINA_ECANCELED, "pull cancelled") : 0;
    }
    pthread_mutex_lock(&fl_mu);
    flight *f = flights;
    while (f && strcmp(f->path, final)) f = f->next;
    if (f) {                      /* another pull downloads it: wait */
        f->interest++;
        f->refs++;
        int withdrawn = 0;
        while (!f->done) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
            pthread_cond_timedwait(&fl_cv, &fl_mu, &ts);
            if (f->done) break;
            uint64_t c = f->completed;
            pthread_mutex_unlock(&fl_mu);
            int stop = report(S, st, b->digest, b->size, c);
            pthread_mutex_lock(&fl_mu);
            if (stop) { withdrawn = 1; f->interest--; break; }
        }
        int frc = f->rc;
        if (!withdrawn && frc < 0 && S->err && S->es) snprintf(S->err, S->es, "%s", f->err);
        flight_put_locked(f);
        pthread_mutex_unlock(&fl_mu);
        if (withdrawn) return lamina_set_err(S->err, S->es, LAMINA_ECANCELED, "pull cancelled");
        if (frc == LAMINA_ECANCELED) goto again;   /* its pull gave up before this one came: try again */
        if (frc < 0) return frc;
        goto again;
    }
    f = calloc(1, sizeof *f);
    if (!f) { pthread_mutex_unlock(&fl_mu); return lamina_set_err(S->err, S->es, LAMINA_ENOMEM, "out of memory"); }
    snprintf(f->path, sizeof f->path, "%s", final);
    f->interest = f->refs = 1;
    f->total = b->size;
    f->next = flights;
    flights = f;
    pthread_mutex_unlock(&fl_mu);
    rc = download(S, f, b);
    pthread_mutex_lock(&fl_mu);
    f->done = 1;
    f->rc = rc;
    if (rc < 0 && S->err) snprintf(f->err, sizeof f->err, "%s", S->err);
    for (flight **pp = &flights; *pp; pp = &(*pp)->next)
        if (*pp == f) { *pp = f->next; break; }
    pthread_cond_broadcast(&fl_cv);
    flight_put_locked(f);
    pthread_mutex_unlock(&fl_mu);
    return rc;
}

/* ------------------------------------------------------------------ */

static int write_manifest(sess *S, const membuf *b)
{
    return lamina_store_write_manifest(S->o->store, S->name, b->p, b->n, 1, S->err, S->es);
}

int lamina_pull(const char *name, const lamina_pull_opts *o, char *err, size_t es)
{
    sess S = { .o = o, .err = err, .es = es };
    if (err && es) err[0] = 0;
    if (!lamina_ollama_name_parts(name, S.host, S.ns, S.model, S.tag))
        return lamina_set_err(err, es, LAMINA_EINVAL, "invalid model name '%.120s': " LAMINA_OLLAMA_NAME_FORM, name ? name : "");
    snprintf(S.name, sizeof S.name, "%s", name);
    if (!o->store || o->store[0] != '/')
        return lamina_set_err(err, es, LAMINA_EINVAL, "the model store must be an absolute path");
    if (!strcmp(S.host, DEFAULT_HOST)) {
        const char *r = o->registry && o->registry[0] ? o->registry : "https://" DEFAULT_HOST;
        if (strncmp(r, "https://", 8) && strncmp(r, "http://", 7))
            return lamina_set_err(err, es, LAMINA_EINVAL, "registry '%.200s' is not an http:// or https:// URL", r);
        snprintf(S.base, sizeof S.base, "%s", r);
        size_t n = strlen(S.base);
        while (n > 8 && S.base[n - 1] == '/') S.base[--n] = 0;
    } else {
        snprintf(S.base, sizeof S.base, "%s://%s", o->insecure ? "http" : "https", S.host);
    }
    pthread_once(&curl_once, curl_init);
    if (!curl_ok) return lamina_set_err(err, es, LAMINA_EIO, "libcurl failed to initialise");

    membuf m = {0};
    blob *bl = NULL;
    int nb = 0, rc;
    if (report(&S, "pulling manifest", NULL, 0, 0)) { rc = LAMINA_ECANCELED; goto cancelled; }
    if ((rc = get_manifest(&S, &m)) < 0 || (rc = parse_manifest(&S, &m, &bl, &nb)) < 0) goto out;

    /* room for what is missing, before anything is written */
    char blobs[4200];
    snprintf(blobs, sizeof blobs, "%s/blobs", o->store);
    if ((rc = lamina_store_mkdirs(blobs, err, es)) < 0) goto out;
    uint64_t need = 0;
    for (int i = 0; i < nb; i++) {
        char final[4200], partial[4300];
        if ((rc = blob_path(&S, bl[i].digest, "", final, sizeof final)) < 0 ||
            (rc = blob_path(&S, bl[i].digest, "-partial", partial, sizeof partial)) < 0)
            goto out;
        if (file_size(final) == (int64_t)bl[i].size) continue;
        int64_t have = file_size(partial);
        need += bl[i].size - (have > 0 && (uint64_t)have <= bl[i].size ? (uint64_t)have : 0);
    }
    struct statvfs sv;
    if (statvfs(blobs, &sv) == 0) {
        uint64_t avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
        if (need > avail) {
            rc = lamina_set_err(err, es, LAMINA_ERANGE, "not enough free space in %s: %s needs %" PRIu64
                                " more bytes, %" PRIu64 " are free", o->store, S.name, need, avail);
            goto out;
        }
    }
    for (int i = 0; i < nb; i++)
        if ((rc = get_blob(&S, &bl[i])) < 0) goto out;
    if (report(&S, "verifying sha256 digest", NULL, 0, 0) || report(&S, "writing manifest", NULL, 0, 0)) {
        rc = LAMINA_ECANCELED;
        goto cancelled;
    }
    if ((rc = write_manifest(&S, &m)) < 0) goto out;
    report(&S, "success", NULL, 0, 0);
    goto out;
cancelled:
    lamina_set_err(err, es, LAMINA_ECANCELED, "pull cancelled");
out:
    free(m.p);
    free(bl);
    free(S.auth);
    return rc;
}
