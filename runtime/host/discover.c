/* discover.c - candidate plugin files (see discover.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discover.h"

/* Why `st` (a directory or a file) may not be trusted, or NULL. */
static const char *untrusted(const struct stat *st, char *buf, size_t size)
{
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        snprintf(buf, size, "owned by uid %u, neither root nor the current user (uid %u)",
                 (unsigned)st->st_uid, (unsigned)geteuid());
        return buf;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(buf, size, "writable by %s (mode %04o)",
                 (st->st_mode & S_IWOTH) ? ((st->st_mode & S_IWGRP) ? "group and others"
                                                                    : "others")
                                         : "group",
                 (unsigned)(st->st_mode & 07777));
        return buf;
    }
    return NULL;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_so_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0 && name[0] != '.';
}

/* Fill c for DIR/NAME; `dir_real` is the resolved directory. */
static void check_file(const char *dir, const char *dir_real, const char *name,
                       lamina_candidate *c)
{
    char why[400];
    struct stat lst, st;
    memset(c, 0, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "%s/%s", dir, name);
    size_t nl = strlen(name);
    if (nl > 3 && strcmp(name + nl - 3, ".so") == 0)
        nl -= 3;
    if (nl >= sizeof(c->stem))
        nl = sizeof(c->stem) - 1;
    memcpy(c->stem, name, nl);
    c->stem[nl] = '\0';
    snprintf(c->real, sizeof(c->real), "%s", c->path);

    if (lstat(c->path, &lst) < 0) {
        c->refused = 1;
        snprintf(c->why, sizeof(c->why), "%s: refused: %s", c->path, strerror(errno));
        return;
    }
    if (S_ISLNK(lst.st_mode)) {
        char *r = realpath(c->path, NULL);
        if (r == NULL) {
            c->refused = 1;
            snprintf(c->why, sizeof(c->why), "%s: refused: symlink does not resolve (%s)",
                     c->path, strerror(errno));
            return;
        }
        snprintf(c->real, sizeof(c->real), "%s", r);
        char *slash = strrchr(r, '/');
        size_t dl = slash ? (size_t)(slash - r) : 0;
        int inside = slash != NULL && strlen(dir_real) == (dl ? dl : 1) &&
                     strncmp(r, dir_real, dl ? dl : 1) == 0;
        free(r);
        if (!inside) {
            c->refused = 1;
            snprintf(c->why, sizeof(c->why),
                     "%s: refused: symlink resolves outside its directory (to %s)",
                     c->path, c->real);
            return;
        }
    }
    if (stat(c->path, &st) < 0) {
        c->refused = 1;
        snprintf(c->why, sizeof(c->why), "%s: refused: %s", c->path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        c->refused = 1;
        snprintf(c->why, sizeof(c->why), "%s: refused: not a regular file", c->path);
        return;
    }
    if (untrusted(&st, why, sizeof(why)) != NULL) {
        c->refused = 1;
        snprintf(c->why, sizeof(c->why), "%s: refused: %s", c->path, why);
        return;
    }
}

/* Check a directory.  Returns 1 usable, 0 missing (silently skipped),
 * -1 refused (status says why). */
static int check_dir(const char *dir, char *real, size_t real_size, char *status, size_t size)
{
    char why[400];
    struct stat st;
    if (dir[0] != '/') {
        snprintf(status, size, "refused: relative directory (only absolute ones are searched)");
        return -1;
    }
    if (stat(dir, &st) < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            snprintf(status, size, "missing");
            return 0;
        }
        snprintf(status, size, "refused: %s", strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(status, size, "refused: not a directory");
        return -1;
    }
    if (untrusted(&st, why, sizeof(why)) != NULL) {
        snprintf(status, size, "refused: %s", why);
        return -1;
    }
    char *r = realpath(dir, NULL);
    if (r == NULL) {
        snprintf(status, size, "refused: %s", strerror(errno));
        return -1;
    }
    snprintf(real, real_size, "%s", r);
    free(r);
    snprintf(status, size, "ok");
    return 1;
}

int lamina_discover_file(const char *path, lamina_candidate *c)
{
    char dir[4096], dir_real[4096], status[512];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        size_t dl = (size_t)(slash - path);
        if (dl >= sizeof(dir))
            dl = sizeof(dir) - 1;
        memcpy(dir, path, dl);
        dir[dl] = '\0';
    }
    /* An explicit file may be given relative to the working directory;
     * resolve the directory so the same checks apply. */
    char *r = realpath(dir, NULL);
    if (r == NULL) {
        memset(c, 0, sizeof(*c));
        snprintf(c->path, sizeof(c->path), "%s", path);
        c->refused = 1;
        snprintf(c->why, sizeof(c->why), "%s: refused: %s", path, strerror(errno));
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s", r);
    free(r);
    int ok = check_dir(dir, dir_real, sizeof(dir_real), status, sizeof(status));
    check_file(dir, ok > 0 ? dir_real : dir, name, c);
    if (!c->refused && ok <= 0) {
        c->refused = 1;
        snprintf(c->why, sizeof(c->why), "%s: refused: its directory %s is %s", c->path, dir,
                 status);
    }
    return 0;
}

int lamina_discover(const lamina_config *cfg, const lamina_logger *lg,
                    lamina_candidate **cands, int *n_cands,
                    lamina_plugin_dir **dirs, int *n_dirs,
                    char *err, size_t err_size)
{
    int rc = 0;
    lamina_candidate *cv = NULL;
    int nc = 0, cap = 0;
    lamina_plugin_dir *dv = NULL;
    char **names = NULL;
    int nn = 0, ncap = 0;
    DIR *dh = NULL;

    *cands = NULL;
    *n_cands = 0;
    *dirs = NULL;
    *n_dirs = 0;
    dv = calloc((size_t)(cfg->n_plugin_path > 0 ? cfg->n_plugin_path : 1), sizeof(*dv));
    if (dv == NULL)
        goto oom;

    for (int di = 0; di < cfg->n_plugin_path; di++) {
        const char *dir = cfg->plugin_path[di];
        char dir_real[4096];
        lamina_plugin_dir *pd = &dv[di];
        snprintf(pd->path, sizeof(pd->path), "%s", dir);
        int ok = check_dir(dir, dir_real, sizeof(dir_real), pd->status, sizeof(pd->status));
        if (ok < 0)
            lamina_log(lg, LAMINA_LOG_WARN, "plugin directory %s %s", dir, pd->status);
        if (ok <= 0)
            continue;

        dh = opendir(dir);
        if (dh == NULL) {
            snprintf(pd->status, sizeof(pd->status), "refused: %s", strerror(errno));
            lamina_log(lg, LAMINA_LOG_WARN, "plugin directory %s %s", dir, pd->status);
            continue;
        }
        struct dirent *de;
        while ((de = readdir(dh)) != NULL) {
            if (!has_so_suffix(de->d_name))
                continue;
            if (nn == ncap) {
                int ncap2 = ncap ? ncap * 2 : 16;
                char **n2 = realloc(names, (size_t)ncap2 * sizeof(*n2));
                if (n2 == NULL)
                    goto oom;
                names = n2;
                ncap = ncap2;
            }
            if ((names[nn] = strdup(de->d_name)) == NULL)
                goto oom;
            nn++;
        }
        closedir(dh);
        dh = NULL;
        if (nn > 1)   /* an empty directory has no array to sort */
            qsort(names, (size_t)nn, sizeof(*names), cmp_names);
        for (int i = 0; i < nn; i++) {
            if (nc == cap) {
                int cap2 = cap ? cap * 2 : 8;
                lamina_candidate *c2 = realloc(cv, (size_t)cap2 * sizeof(*c2));
                if (c2 == NULL)
                    goto oom;
                cv = c2;
                cap = cap2;
            }
            check_file(dir, dir_real, names[i], &cv[nc]);
            if (cv[nc].refused)
                lamina_log(lg, LAMINA_LOG_WARN, "%s", cv[nc].why);
            nc++;
        }
        for (int i = 0; i < nn; i++)
            free(names[i]);
        nn = 0;
    }
    *cands = cv;
    *n_cands = nc;
    *dirs = dv;
    *n_dirs = cfg->n_plugin_path;
    cv = NULL;
    dv = NULL;
    goto out;

oom:
    rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "plugin discovery: out of memory");
out:
    if (dh != NULL)
        closedir(dh);
    for (int i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    free(cv);
    free(dv);
    return rc;
}
