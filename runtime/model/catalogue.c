/*
 * catalogue.c - model names, model directories, and file verification
 * (size always, SHA-256 once per file identity).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalogue.h"
#include "ollama_store.h"
#include "conf.h"

#define ERR(...) do { if (err) snprintf(err, err_size, __VA_ARGS__); } while (0)

#ifndef LAMINA_DATADIR
#define LAMINA_DATADIR "/usr/local/share/lamina"
#endif

/* ---- SHA-256 (FIPS 180-4) ---- */

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t len;
    uint8_t  buf[64];
    size_t   n;
} sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(sha256_ctx *c, const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
    uint32_t e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g; g = f; f = e; e = d + t1; d = cc; cc = b; b = a; a = t1 + t2;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
    c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void sha256_init(sha256_ctx *c)
{
    static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(c->h, h0, sizeof h0);
    c->len = 0;
    c->n = 0;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n)
{
    c->len += n;
    if (c->n) {
        size_t take = 64 - c->n < n ? 64 - c->n : n;
        memcpy(c->buf + c->n, p, take);
        c->n += take; p += take; n -= take;
        if (c->n == 64) { sha256_block(c, c->buf); c->n = 0; }
    }
    for (; n >= 64; p += 64, n -= 64) sha256_block(c, p);
    if (n) { memcpy(c->buf, p, n); c->n = n; }
}

static void sha256_final(sha256_ctx *c, char hex[65])
{
    uint64_t bits = c->len * 8;
    uint8_t pad = 0x80, zero = 0, lenb[8];
    sha256_update(c, &pad, 1);
    while (c->n != 56) sha256_update(c, &zero, 1);
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, lenb, 8);
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", c->h[i]);
}

int lamina_sha256_file(const char *path, char hex[65], char *err, size_t err_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { ERR("%s: %s", path, strerror(errno)); return LAMINA_ENOENT; }
    sha256_ctx c;
    sha256_init(&c);
    /* per call (the server verifies several models at once) */
    uint8_t *buf = malloc(1 << 16);
    if (!buf) { close(fd); ERR("out of memory"); return LAMINA_ENOMEM; }
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 16);
        if (r < 0) {
            if (errno == EINTR) continue;
            ERR("%s: read: %s", path, strerror(errno));
            close(fd);
            free(buf);
            return LAMINA_EIO;
        }
        if (r == 0) break;
        sha256_update(&c, buf, (size_t)r);
    }
    free(buf);
    close(fd);
    sha256_final(&c, hex);
    return 0;
}

/* ---- catalogue ---- */

typedef struct find_ctx {
    const char *name;
    lamina_catalogue_entry *e;
    int found;
    char bad[256];
} find_ctx;

static int cat_handler(void *user, const char *section, const char *key, const char *value)
{
    find_ctx *f = user;
    if (strcmp(section, f->name) != 0) return 1;
    f->found = 1;
    lamina_catalogue_entry *e = f->e;
    snprintf(e->name, sizeof e->name, "%s", section);
    if (strcmp(key, "file") == 0) snprintf(e->file, sizeof e->file, "%s", value);
    else if (strcmp(key, "source") == 0) snprintf(e->source, sizeof e->source, "%s", value);
    else if (strcmp(key, "description") == 0) snprintf(e->description, sizeof e->description, "%s", value);
    else if (strcmp(key, "sha256") == 0) snprintf(e->sha256, sizeof e->sha256, "%s", value);
    else if (strcmp(key, "size") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || *end || end == value) {
            snprintf(f->bad, sizeof f->bad, "[%s] size: not a number: '%s'", section, value);
            return 0;
        }
        e->size = v;
    } else {
        snprintf(f->bad, sizeof f->bad, "[%s] unknown key '%s'", section, key);
        return 0;
    }
    return 1;
}

static const char *catalogue_path(char *buf, size_t size)
{
    const char *p = lamina_env_get("LAMINA_CATALOGUE");
    if (p && *p) return p;
    snprintf(buf, size, "%s/models/catalogue.ini", LAMINA_DATADIR);
    return buf;
}

int lamina_catalogue_find(const char *name, lamina_catalogue_entry *out, char *err, size_t err_size)
{
    char pbuf[4096];
    const char *path = catalogue_path(pbuf, sizeof pbuf);
    find_ctx f = { .name = name, .e = out };
    memset(out, 0, sizeof *out);
    int rc = ini_parse(path, cat_handler, &f);
    if (rc == -1) { ERR("model catalogue %s: cannot open", path); return LAMINA_ENOENT; }
    if (rc != 0) {
        ERR("%s:%d: %s", path, rc, f.bad[0] ? f.bad : "syntax error");
        return LAMINA_EFORMAT;
    }
    if (!f.found) return LAMINA_ENOENT;
    if (!out->file[0]) { ERR("%s: [%s] has no 'file'", path, name); return LAMINA_EFORMAT; }
    return 0;
}

/* ---- verification stamp ---- */

static void stamp_path(const lamina_config *cfg, char *buf, size_t size)
{
    if (cfg && cfg->cache_dir[0]) { snprintf(buf, size, "%s/verified", cfg->cache_dir); return; }
    const char *x = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (x && *x) snprintf(buf, size, "%s/lamina/verified", x);
    else snprintf(buf, size, "%s/.cache/lamina/verified", home ? home : "/tmp");
}

static void ident(const struct stat *st, char *buf, size_t size)
{
    snprintf(buf, size, "%llu:%llu:%llu:%lld.%09ld", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (unsigned long long)st->st_size,
             (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
}

static int stamp_has(const char *stamp, const char *id, const char *sha)
{
    FILE *fp = fopen(stamp, "r");
    if (!fp) return 0;
    char line[512], want[512];
    snprintf(want, sizeof want, "%s %s\n", sha, id);
    int hit = 0;
    while (fgets(line, sizeof line, fp))
        if (strcmp(line, want) == 0) { hit = 1; break; }
    fclose(fp);
    return hit;
}

static void mkdirs(const char *file)
{
    char d[4096];
    snprintf(d, sizeof d, "%s", file);
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(d, 0700);
        *p = '/';
    }
}

static void stamp_add(const char *stamp, const char *id, const char *sha)
{
    mkdirs(stamp);
    FILE *fp = fopen(stamp, "a");
    if (!fp) return;                 /* verification is then simply redone */
    fprintf(fp, "%s %s\n", sha, id);
    fclose(fp);
}

static int verify(const lamina_config *cfg, const char *path, const lamina_catalogue_entry *e,
                  char *err, size_t err_size)
{
    struct stat st;
    if (stat(path, &st) != 0) { ERR("%s: %s", path, strerror(errno)); return LAMINA_ENOENT; }
    if (e->size && (uint64_t)st.st_size != e->size) {
        ERR("%s: size %llu bytes, the catalogue says %llu for '%s': the file is incomplete or a different model",
            path, (unsigned long long)st.st_size, (unsigned long long)e->size, e->name);
        return LAMINA_EFORMAT;
    }
    if (!e->sha256[0]) return 0;
    char id[256], stamp[4096], hex[65];
    ident(&st, id, sizeof id);
    stamp_path(cfg, stamp, sizeof stamp);
    if (stamp_has(stamp, id, e->sha256)) return 0;
    int rc = lamina_sha256_file(path, hex, err, err_size);
    if (rc < 0) return rc;
    if (strcmp(hex, e->sha256) != 0) {
        ERR("%s: SHA-256 %s does not match the catalogue's %s for '%s'", path, hex, e->sha256, e->name);
        return LAMINA_EFORMAT;
    }
    stamp_add(stamp, id, e->sha256);
    return 0;
}

int lamina_model_resolve(const lamina_config *cfg, const char *name, char *path_out,
                         size_t path_size, char *err, size_t err_size)
{
    if (!name || !*name) name = (cfg && cfg->model_default[0]) ? cfg->model_default : "gemma3-270m";
    /* a path: anything with a slash or a .gguf suffix (unless it is no
     * file but a model of an Ollama store: "user/model:tag") */
    size_t len = strlen(name);
    if (strchr(name, '/') && access(name, F_OK) != 0 && lamina_ollama_name_valid(name))
        return lamina_ollama_resolve(cfg, name, path_out, path_size, NULL, 0, err, err_size);
    if (strchr(name, '/') || (len > 5 && strcmp(name + len - 5, ".gguf") == 0)) {
        if (access(name, R_OK) != 0) {
            ERR("model file %s: %s", name, strerror(errno));
            return LAMINA_ENOENT;
        }
        snprintf(path_out, path_size, "%s", name);
        return 0;
    }
    for (const char *c = name; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.' || *c == ':')) {
            ERR("model name '%s': only letters, digits, '-', '_', '.' and ':' are allowed", name);
            return LAMINA_EINVAL;
        }
    }
    lamina_catalogue_entry e;
    char cerr[512] = "";
    int rc = lamina_catalogue_find(name, &e, cerr, sizeof cerr);
    if (rc == LAMINA_ENOENT && !cerr[0]) {
        rc = lamina_ollama_resolve(cfg, name, path_out, path_size, NULL, 0, err, err_size);
        if (rc == LAMINA_ENOENT)
            ERR("unknown model '%s': not in the catalogue, not in an Ollama store and not a file path", name);
        return rc;
    }
    if (rc < 0) { ERR("%s", cerr); return rc; }

    char dirs[LAMINA_MAX_PATHS + 4][4096];
    int nd = 0;
    if (cfg)
        for (int i = 0; i < cfg->n_model_dirs && nd < LAMINA_MAX_PATHS; i++)
            snprintf(dirs[nd++], sizeof dirs[0], "%s", cfg->model_dirs[i]);
    const char *v = lamina_env_get("LAMINA_MODELS");
    if (v && *v) snprintf(dirs[nd++], sizeof dirs[0], "%s", v);
    const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (x && *x) snprintf(dirs[nd++], sizeof dirs[0], "%s/lamina/models", x);
    else if (home) snprintf(dirs[nd++], sizeof dirs[0], "%s/.local/share/lamina/models", home);
    snprintf(dirs[nd++], sizeof dirs[0], "%s/models", LAMINA_DATADIR);

    char tried[2048] = "";
    for (int i = 0; i < nd; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dirs[i], e.file);
        if (access(p, R_OK) == 0) {
            if (strlen(p) >= path_size) { ERR("model path too long"); return LAMINA_ERANGE; }
            rc = verify(cfg, p, &e, err, err_size);
            if (rc < 0) return rc;
            snprintf(path_out, path_size, "%s", p);
            return 0;
        }
        size_t tl = strlen(tried);
        snprintf(tried + tl, sizeof tried - tl, "%s%s", tl ? ", " : "", dirs[i]);
    }
    ERR("model '%s' (%s) not found in: %s; it comes from %s (run ./setup.sh)", name, e.file, tried,
        e.source[0] ? e.source : "the catalogue's source");
    return LAMINA_ENOENT;
}
