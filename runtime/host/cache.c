/* cache.c - the probe cache (see cache.h). */
#include "config.h"
#include "conf.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cache.h"
#include "report.h"

#define CACHE_FORMAT 1

int lamina_cache_dir(const lamina_config *cfg, char *out, size_t size)
{
    if (cfg->cache_dir[0] != '\0') {
        snprintf(out, size, "%s", cfg->cache_dir);
        return 0;
    }
    const char *xdg = lamina_env_get("XDG_CACHE_HOME");
    if (xdg != NULL && xdg[0] == '/') {
        snprintf(out, size, "%s/lamina", xdg);
        return 0;
    }
    const char *home = lamina_env_get("HOME");
    if (home == NULL || home[0] != '/') {
        struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if (home == NULL || home[0] != '/')
        return LAMINA_ENOENT;
    snprintf(out, size, "%s/.cache/lamina", home);
    return 0;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void entry_path(const char *dir, const char *plugin, char *out, size_t size)
{
    snprintf(out, size, "%s/probe-%016llx.json", dir, (unsigned long long)fnv1a(plugin));
}

/* {"path","dev","ino","size","mtime_ns"} or {"path","missing":true}. */
static json_t *identity(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return json_pack("{s:s,s:b}", "path", path, "missing", 1);
    return json_pack("{s:s,s:I,s:I,s:I,s:I}", "path", path,
                     "dev", (json_int_t)st.st_dev, "ino", (json_int_t)st.st_ino,
                     "size", (json_int_t)st.st_size,
                     "mtime_ns", (json_int_t)st.st_mtim.tv_sec * 1000000000 +
                                 (json_int_t)st.st_mtim.tv_nsec);
}

static json_t *env_json(const lamina_backend_config *bc)
{
    json_t *a = json_array();
    for (int i = 0; a != NULL && bc != NULL && i < bc->n_env; i++)
        json_array_append_new(a, json_string(bc->env[i]));
    return a;
}

/* Everything in the key except the reported files. */
static json_t *key_json(const lamina_cache_key *key)
{
    json_t *k = json_object();
    if (k == NULL)
        return NULL;
    json_object_set_new(k, "format", json_integer(CACHE_FORMAT));
    json_object_set_new(k, "lamina", json_string(LAMINA_VERSION_STRING));
    json_object_set_new(k, "abi", json_pack("[ii]", LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR));
    json_object_set_new(k, "plugin", identity(key->plugin_path));
    json_object_set_new(k, "helper", identity(key->helper_path));
    json_object_set_new(k, "env", env_json(key->bc));
    json_object_set_new(k, "timeout_ms", json_integer(key->timeout_ms));
    json_object_set_new(k, "selftest", json_boolean(key->selftest));
    return k;
}

int lamina_cache_lookup(const char *dir, const lamina_cache_key *key,
                        lamina_plugin_report *out, const lamina_logger *lg)
{
    char path[4200];
    entry_path(dir, key->plugin_path, path, sizeof(path));
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    int hit = 0;
    json_t *want = NULL;
    if (root == NULL) {
        if (access(path, F_OK) == 0)
            lamina_log(lg, LAMINA_LOG_WARN, "probe cache entry %s is corrupt (%s, line %d); "
                       "ignoring it", path, je.text, je.line);
        return 0;
    }
    json_t *k = json_object_get(root, "key");
    json_t *files = json_object_get(root, "files");
    json_t *rep = json_object_get(root, "report");
    if (!json_is_object(k) || !json_is_array(files) || !json_is_object(rep)) {
        lamina_log(lg, LAMINA_LOG_WARN, "probe cache entry %s is corrupt (missing key, files "
                   "or report); ignoring it", path);
        goto out;
    }
    want = key_json(key);
    if (want == NULL)
        goto out;
    /* An entry made with the self-test also serves a probe-only request. */
    if (!key->selftest && json_is_true(json_object_get(k, "selftest")))
        json_object_set_new(want, "selftest", json_true());
    if (!json_equal(k, want))
        goto out;
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        const char *p = json_string_value(json_object_get(f, "path"));
        if (p == NULL)
            goto out;
        json_t *now = identity(p);
        int same = now != NULL && json_equal(now, f);
        json_decref(now);
        if (!same)
            goto out;
    }
    char err[256];
    if (lamina_report_plugin_parse(rep, out, err, sizeof(err)) < 0) {
        lamina_log(lg, LAMINA_LOG_WARN, "probe cache entry %s is corrupt (%s); ignoring it",
                   path, err);
        lamina_report_plugin_clear(out);
        memset(out, 0, sizeof(*out));
        goto out;
    }
    out->from_cache = 1;
    hit = 1;
out:
    json_decref(want);
    json_decref(root);
    return hit;
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

int lamina_cache_store(const char *dir, const lamina_cache_key *key,
                       const lamina_plugin_report *rep, const lamina_probe_files *files,
                       char *err, size_t err_size)
{
    int rc = 0, fd = -1, tmp_made = 0;
    char path[4200], tmp[4200];
    char *text = NULL;
    json_t *root = NULL;

    if (mkdir_p(dir) < 0)
        return lamina_set_err(err, err_size, LAMINA_EIO, "cannot create %s: %s", dir,
                              strerror(errno));
    entry_path(dir, key->plugin_path, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s/.probe-XXXXXX", dir);

    root = json_object();
    json_t *fl = json_array();
    json_t *rj = lamina_report_plugin_json(rep);
    json_t *kj = key_json(key);
    if (root == NULL || fl == NULL || rj == NULL || kj == NULL) {
        json_decref(fl);
        json_decref(rj);
        json_decref(kj);
        rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; files != NULL && i < files->n; i++)
        json_array_append_new(fl, identity(files->path[i]));
    json_object_set_new(rj, "from_cache", json_false());
    json_object_set_new(root, "key", kj);
    json_object_set_new(root, "files", fl);
    json_object_set_new(root, "report", rj);
    text = json_dumps(root, JSON_INDENT(1));
    if (text == NULL) {
        rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = lamina_set_err(err, err_size, LAMINA_EIO, "cannot write in %s: %s", dir,
                            strerror(errno));
        goto out;
    }
    tmp_made = 1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = lamina_set_err(err, err_size, LAMINA_EIO, "cannot write %s: %s", tmp,
                                strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = lamina_set_err(err, err_size, LAMINA_EIO, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = lamina_set_err(err, err_size, LAMINA_EIO, "cannot rename %s to %s: %s", tmp, path,
                            strerror(errno));
        goto out;
    }
    tmp_made = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    free(text);
    json_decref(root);
    return rc;
}
